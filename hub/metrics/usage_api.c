/* The usage API (see metrics.h): metrics.k8s.io/v1beta1 NodeMetrics and PodMetrics as
 * metrics-server writes them (cpu in nanocores "…n", memory in "…Ki"), the history endpoint for
 * charts, and the Prometheus gauges. Objects come from the store (names, labels, selectors), the
 * figures from drv_metrics: a node or pod without a current sample is left out of lists and is
 * 404 on its own. */
#include "metrics/metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/selector.h"
#include "store/store.h"

#define API_VERSION "metrics.k8s.io/v1beta1"
#define HISTORY_POINTS_MAX 600
#define WINDOW_MAX_MS (24LL * 3600 * 1000)

static void rfc3339(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
        memcpy(out, "1970-01-01T00:00:00Z", 21);
}

static bool add_qty(cJSON *o, const char *key, int64_t v, const char *unit)
{
    char q[48];
    if (drv_fmt(q, sizeof(q), "%" PRId64 "%s", v, unit) != DRV_OK)
        return false;
    return cJSON_AddStringToObject(o, key, q) != NULL;
}

/* "usage": {"cpu": "<n>n", "memory": "<k>Ki"} */
static bool add_usage(cJSON *o, bool has_cpu, int64_t cpu, bool has_mem, int64_t mem)
{
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    if (!u)
        return false;
    if (has_cpu && !add_qty(u, "cpu", cpu, "n"))
        return false;
    if (has_mem && !add_qty(u, "memory", mem / 1024, "Ki"))
        return false;
    return true;
}

static cJSON *meta(const cJSON *obj, int64_t now_ms)
{
    cJSON *m = cJSON_CreateObject();
    if (!m)
        return NULL;
    const char *name = drv_json_str_at(obj, "metadata.name");
    const char *ns = drv_json_str_at(obj, "metadata.namespace");
    char now[32];
    rfc3339(now_ms, now);
    const cJSON *labels = drv_json_at(obj, "metadata.labels");
    if ((name && !cJSON_AddStringToObject(m, "name", name)) ||
        (ns && !cJSON_AddStringToObject(m, "namespace", ns)) ||
        !cJSON_AddStringToObject(m, "creationTimestamp", now) ||
        (cJSON_IsObject(labels) &&
         !cJSON_AddItemToObject(m, "labels", cJSON_Duplicate(labels, true)))) {
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}

static bool stamp(cJSON *o, const drv_metrics_usage_t *u)
{
    char ts[32], win[32];
    rfc3339(u->ms, ts);
    if (drv_fmt(win, sizeof(win), "%" PRId64 ".%03" PRId64 "s", u->window_ms / 1000,
                u->window_ms % 1000) != DRV_OK)
        return false;
    return cJSON_AddStringToObject(o, "timestamp", ts) && cJSON_AddStringToObject(o, "window", win);
}

/* NodeMetrics for a stored Node, NULL when it has no current sample (or out of memory). */
static cJSON *node_metrics(drv_metrics_t *m, const cJSON *node, int64_t now_ms)
{
    const char *name = drv_json_str_at(node, "metadata.name");
    drv_metrics_node_usage_t nu;
    if (!name || !drv_metrics_node_latest(m, name, now_ms, &nu) || !nu.u.has_cpu ||
        !nu.u.has_memory)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON *md = meta(node, now_ms);
    if (!o || !md || !cJSON_AddStringToObject(o, "kind", "NodeMetrics") ||
        !cJSON_AddStringToObject(o, "apiVersion", API_VERSION) ||
        !cJSON_AddItemToObject(o, "metadata", md) || (md = NULL, !stamp(o, &nu.u)) ||
        !add_usage(o, true, nu.u.cpu_nanocores, true, nu.u.memory_bytes)) {
        cJSON_Delete(md);
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* PodMetrics for a stored Pod, NULL unless every container has a current cpu and memory. */
static cJSON *pod_metrics(drv_metrics_t *m, const cJSON *pod, int64_t now_ms)
{
    const char *uid = drv_json_str_at(pod, "metadata.uid");
    drv_metrics_pod_usage_t pu;
    if (!uid || !drv_metrics_pod_latest(m, uid, now_ms, &pu) || pu.n_ctrs == 0 || !pu.u.has_cpu ||
        !pu.u.has_memory)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON *md = meta(pod, now_ms);
    cJSON *ctrs = NULL;
    if (!o || !md || !cJSON_AddStringToObject(o, "kind", "PodMetrics") ||
        !cJSON_AddStringToObject(o, "apiVersion", API_VERSION) ||
        !cJSON_AddItemToObject(o, "metadata", md) || (md = NULL, !stamp(o, &pu.u)) ||
        !(ctrs = cJSON_AddArrayToObject(o, "containers"))) {
        cJSON_Delete(md);
        cJSON_Delete(o);
        return NULL;
    }
    for (size_t i = 0; i < pu.n_ctrs; i++) {
        const drv_metrics_ctr_usage_t *c = &pu.ctrs[i];
        cJSON *co = cJSON_CreateObject();
        if (!co || !cJSON_AddItemToArray(ctrs, co) ||
            !cJSON_AddStringToObject(co, "name", c->name) ||
            !add_usage(co, true, c->cpu_nanocores, true, c->memory_bytes)) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

static cJSON *list_of(const char *kind)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "kind", kind) ||
        !cJSON_AddStringToObject(o, "apiVersion", API_VERSION) ||
        !cJSON_AddObjectToObject(o, "metadata") || !cJSON_AddArrayToObject(o, "items")) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static drv_err_t discovery(cJSON **out, drv_error_t *err)
{
    static const char doc[] =
        "{\"kind\":\"APIResourceList\",\"apiVersion\":\"v1\",\"groupVersion\":\"" API_VERSION
        "\",\"resources\":["
        "{\"name\":\"nodes\",\"singularName\":\"\",\"namespaced\":false,\"kind\":\"NodeMetrics\","
        "\"verbs\":[\"get\",\"list\"]},"
        "{\"name\":\"pods\",\"singularName\":\"\",\"namespaced\":true,\"kind\":\"PodMetrics\","
        "\"verbs\":[\"get\",\"list\"]}]}";
    *out = cJSON_Parse(doc);
    return *out ? DRV_OK : drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
}

/* "15m", "1h", "90s", "24h" -> ms, at most 24 h. */
static drv_err_t parse_window(const char *s, int64_t *ms, drv_error_t *err)
{
    if (s == NULL || !*s) {
        *ms = 3600 * 1000;
        return DRV_OK;
    }
    char *end;
    long long v = strtoll(s, &end, 10);
    int64_t unit = !strcmp(end, "s")   ? 1000
                   : !strcmp(end, "m") ? 60000
                   : !strcmp(end, "h") ? 3600000
                                       : 0;
    if (end == s || v <= 0 || unit == 0 || v > WINDOW_MAX_MS / unit)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "window \"%.40s\": must be a duration like 15m, 1h or 24h, at most "
                             "24h",
                             s);
    *ms = (int64_t)v * unit;
    return DRV_OK;
}

static drv_err_t history(drv_metrics_t *m, drv_hstore_t *store, bool node, const char *ns,
                         const char *name, const char *window, int64_t now_ms, cJSON **out,
                         drv_error_t *err)
{
    int64_t win = 0;
    drv_err_t rc = parse_window(window, &win, err);
    if (rc != DRV_OK)
        return rc;
    _cleanup_cjson_ cJSON *obj = NULL;
    rc = drv_hstore_get(store, node ? DRV_KIND_NODE : DRV_KIND_POD, node ? NULL : ns, name, &obj,
                        err);
    if (rc != DRV_OK)
        return rc;
    _cleanup_free_ drv_metrics_point_t *pts = calloc(HISTORY_POINTS_MAX, sizeof(*pts));
    if (!pts)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    size_t n = node ? drv_metrics_node_history(m, name, now_ms - win, pts, HISTORY_POINTS_MAX)
                    : drv_metrics_pod_history(m, drv_json_str_at(obj, "metadata.uid"), now_ms - win,
                                              pts, HISTORY_POINTS_MAX);
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = NULL;
    char wtext[24];
    drv_fmt_cut(wtext, sizeof(wtext), "%" PRId64 "s", win / 1000);
    if (!o || !cJSON_AddStringToObject(o, "kind", "UsageHistory") ||
        !cJSON_AddStringToObject(o, "apiVersion", "drover.io/v1") ||
        !cJSON_AddStringToObject(o, node ? "node" : "pod", name) ||
        (!node && !cJSON_AddStringToObject(o, "namespace", ns)) ||
        !cJSON_AddStringToObject(o, "window", wtext) ||
        !(arr = cJSON_AddArrayToObject(o, "points"))) {
        cJSON_Delete(o);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        cJSON *p = cJSON_CreateObject();
        if (!p || !cJSON_AddItemToArray(arr, p) ||
            !cJSON_AddNumberToObject(p, "time", (double)pts[i].ms) ||
            !(pts[i].cpu_nanocores >= 0
                  ? cJSON_AddNumberToObject(p, "cpuNanocores", (double)pts[i].cpu_nanocores)
                  : cJSON_AddNullToObject(p, "cpuNanocores")) ||
            !(pts[i].memory_bytes >= 0
                  ? cJSON_AddNumberToObject(p, "memoryBytes", (double)pts[i].memory_bytes)
                  : cJSON_AddNullToObject(p, "memoryBytes"))) {
            cJSON_Delete(o);
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
        }
    }
    *out = o;
    return DRV_OK;
}

drv_err_t drv_usage_api(drv_metrics_t *m, drv_hstore_t *store, drv_usage_op_t op, const char *ns,
                        const char *name, const char *label_selector, const char *window,
                        int64_t now_ms, cJSON **out, drv_error_t *err)
{
    switch (op) {
    case DRV_USAGE_DISCOVERY:
        return discovery(out, err);
    case DRV_USAGE_NODE_HISTORY:
    case DRV_USAGE_POD_HISTORY:
        return history(m, store, op == DRV_USAGE_NODE_HISTORY, ns, name, window, now_ms, out, err);
    case DRV_USAGE_NODE:
    case DRV_USAGE_POD: {
        bool node = op == DRV_USAGE_NODE;
        _cleanup_cjson_ cJSON *obj = NULL;
        drv_err_t rc = drv_hstore_get(store, node ? DRV_KIND_NODE : DRV_KIND_POD, node ? NULL : ns,
                                      name, &obj, err);
        if (rc != DRV_OK)
            return rc;
        cJSON *o = node ? node_metrics(m, obj, now_ms) : pod_metrics(m, obj, now_ms);
        if (!o)
            return drv_error_set(err, DRV_ERR_NOTFOUND, 0,
                                 "%s.metrics.k8s.io \"%s\" not found: no current usage sample",
                                 node ? "nodemetrics" : "podmetrics", name);
        *out = o;
        return DRV_OK;
    }
    case DRV_USAGE_NODES:
    case DRV_USAGE_PODS: {
        bool node = op == DRV_USAGE_NODES;
        drv_selector_t sel = {0};
        drv_err_t rc = DRV_OK;
        if (label_selector && *label_selector)
            rc = drv_selector_parse(label_selector, &sel, err);
        if (rc != DRV_OK)
            return drv_error_wrap(err, "labelSelector");
        _cleanup_cjson_ cJSON *items = NULL;
        rc = drv_hstore_list(store, node ? DRV_KIND_NODE : DRV_KIND_POD, node ? NULL : ns, &sel,
                             &items, NULL, err);
        drv_selector_free(&sel);
        if (rc != DRV_OK)
            return rc;
        cJSON *list = list_of(node ? "NodeMetricsList" : "PodMetricsList");
        cJSON *arr = list ? cJSON_GetObjectItemCaseSensitive(list, "items") : NULL;
        if (!arr) {
            cJSON_Delete(list);
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, items)
        {
            cJSON *o = node ? node_metrics(m, it, now_ms) : pod_metrics(m, it, now_ms);
            if (o && !cJSON_AddItemToArray(arr, o))
                cJSON_Delete(o);
        }
        *out = list;
        return DRV_OK;
    }
    }
    return drv_error_set(err, DRV_ERR_INVALID, 0, "usage: unknown request");
}

/* ---- Prometheus -------------------------------------------------------------------------- */

typedef struct prom {
    drv_buf_t *out;
    size_t max_pods, listed, unlisted;
    bool ok;
} prom_t;

static bool prom_node(void *ctx, const char *node, const drv_metrics_node_usage_t *u)
{
    prom_t *p = ctx;
    if (u->u.has_cpu)
        p->ok = p->ok && drv_buf_printf(p->out, "drover_node_cpu_usage_cores{node=\"%s\"} %.6f\n",
                                        node, (double)u->u.cpu_nanocores / 1e9) == DRV_OK;
    if (u->u.has_memory)
        p->ok =
            p->ok && drv_buf_printf(p->out,
                                    "drover_node_memory_used_bytes{node=\"%s\"} %" PRId64 "\n"
                                    "drover_node_memory_total_bytes{node=\"%s\"} %" PRId64 "\n",
                                    node, u->u.memory_bytes, node, u->memory_total_bytes) == DRV_OK;
    if (u->has_disk)
        p->ok = p->ok &&
                drv_buf_printf(p->out, "drover_node_disk_free_bytes{node=\"%s\"} %" PRId64 "\n",
                               node, u->disk_free_bytes) == DRV_OK;
    if (u->has_temp)
        p->ok =
            p->ok && drv_buf_printf(p->out, "drover_node_temperature_celsius{node=\"%s\"} %.3f\n",
                                    node, (double)u->temp_millicelsius / 1000) == DRV_OK;
    if (u->has_throttled)
        p->ok = p->ok && drv_buf_printf(p->out, "drover_node_throttled{node=\"%s\"} %u\n", node,
                                        u->throttled != 0) == DRV_OK;
    return p->ok;
}

static bool prom_pod(void *ctx, const char *uid, const drv_metrics_pod_usage_t *u)
{
    (void)uid;
    prom_t *p = ctx;
    if (p->listed >= p->max_pods) {
        p->unlisted++;
        return true;
    }
    p->listed++;
    if (u->u.has_cpu)
        p->ok = p->ok &&
                drv_buf_printf(p->out,
                               "drover_pod_cpu_usage_cores{namespace=\"%s\",pod=\"%s\","
                               "node=\"%s\"} %.6f\n",
                               u->ns, u->name, u->node, (double)u->u.cpu_nanocores / 1e9) == DRV_OK;
    if (u->u.has_memory)
        p->ok = p->ok && drv_buf_printf(p->out,
                                        "drover_pod_memory_working_set_bytes{namespace=\"%s\","
                                        "pod=\"%s\",node=\"%s\"} %" PRId64 "\n",
                                        u->ns, u->name, u->node, u->u.memory_bytes) == DRV_OK;
    return p->ok;
}

drv_err_t drv_usage_prometheus(drv_metrics_t *m, int64_t now_ms, size_t max_pods,
                               struct drv_buf *out)
{
    prom_t p = {.out = out, .max_pods = max_pods, .ok = true};
    p.ok = drv_buf_puts(out, "# TYPE drover_node_cpu_usage_cores gauge\n"
                             "# TYPE drover_node_memory_used_bytes gauge\n"
                             "# TYPE drover_node_memory_total_bytes gauge\n"
                             "# TYPE drover_node_disk_free_bytes gauge\n"
                             "# TYPE drover_node_temperature_celsius gauge\n"
                             "# TYPE drover_node_throttled gauge\n") == DRV_OK;
    drv_metrics_each_node(m, now_ms, prom_node, &p);
    p.ok =
        p.ok && drv_buf_puts(out, "# TYPE drover_pod_cpu_usage_cores gauge\n"
                                  "# TYPE drover_pod_memory_working_set_bytes gauge\n") == DRV_OK;
    drv_metrics_each_pod(m, now_ms, prom_pod, &p);
    drv_metrics_stats_t st;
    drv_metrics_stats(m, &st);
    p.ok = p.ok && drv_buf_printf(out,
                                  "# TYPE drover_usage_pods_unlisted gauge\n"
                                  "drover_usage_pods_unlisted %zu\n"
                                  "# TYPE drover_usage_series gauge\n"
                                  "drover_usage_series{kind=\"node\"} %zu\n"
                                  "drover_usage_series{kind=\"pod\"} %zu\n"
                                  "# TYPE drover_usage_history_bytes gauge\n"
                                  "drover_usage_history_bytes %zu\n"
                                  "# TYPE drover_usage_series_without_history gauge\n"
                                  "drover_usage_series_without_history %zu\n"
                                  "# TYPE drover_usage_reports_total counter\n"
                                  "drover_usage_reports_total %" PRIu64 "\n"
                                  "# TYPE drover_usage_reports_refused_total counter\n"
                                  "drover_usage_reports_refused_total %" PRIu64 "\n",
                                  p.unlisted, st.nodes, st.pods, st.history_bytes,
                                  st.without_history, st.reports, st.refused) == DRV_OK;
    return p.ok ? DRV_OK : DRV_ERR_TOOBIG;
}
