/* The HorizontalPodAutoscaler controller: every sync period, for each HPA, its Deployment's
 * replicas from the pods' current usage (hpa_calc.c does the arithmetic), written to the
 * Deployment's spec.replicas, with the status, conditions and events Kubernetes' controller
 * writes (pkg/controller/podautoscaler/horizontal.go). Usage comes from the caller's lookup;
 * a pod whose node is not Ready counts as having no metric (a partition never reads as idle). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctrl/ctrl_int.h"
#include "ctrl/hpa_calc.h"
#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/log.h"
#include "drover/map.h"
#include "drover/quantity.h"
#include "drover/selector.h"

#define HPA_MAX 10000      /* HPAs remembered */
#define HPA_METRICS_MAX 10 /* metrics per HPA */
#define COMPONENT "horizontal-pod-autoscaler"

typedef struct hpa_mem {
    char *key; /* "<ns>/<name>" (the map's key) */
    char uid[64];
    int64_t last_sync;
    bool seen;
    uint64_t warned[4];   /* hashes of the last warnings recorded (reason and message) */
    int64_t warned_ms[4]; /* and when */
    drv_hpa_memory_t m;
} hpa_mem_t;

#define HPA_WARN_REPEAT_MS (5 * 60 * 1000LL) /* the same warning again after this long */

/* A Warning event, unless the same one was recorded in the last 5 minutes: a metric that
 * stays missing must not add an event every sync (events live an hour). */
static void warn(drv_hstore_t *s, const cJSON *hpa, hpa_mem_t *mem, const char *reason,
                 const char *msg, int64_t now)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = reason; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    for (const char *p = msg; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    size_t oldest = 0;
    for (size_t i = 0; i < 4; i++) {
        if (mem->warned[i] == h && now - mem->warned_ms[i] < HPA_WARN_REPEAT_MS)
            return;
        if (mem->warned_ms[i] < mem->warned_ms[oldest])
            oldest = i;
    }
    mem->warned[oldest] = h;
    mem->warned_ms[oldest] = now;
    ctrl_event(s, hpa, DRV_KIND_HPA, "Warning", reason, msg, COMPONENT, now);
}

struct drv_ctrl_hpa {
    drv_map_t mems;
    int64_t sync_ms;
};

drv_err_t drv_ctrl_hpa_new(int64_t sync_ms, drv_ctrl_hpa_t **out, drv_error_t *err)
{
    drv_ctrl_hpa_t *h = calloc(1, sizeof(*h));
    if (!h)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    drv_map_init(&h->mems, HPA_MAX);
    h->sync_ms = sync_ms > 0 ? sync_ms : DRV_CTRL_HPA_SYNC_MS_DEFAULT;
    *out = h;
    return DRV_OK;
}

static void mem_free(hpa_mem_t *m)
{
    if (m) {
        free(m->key);
        free(m);
    }
}

void drv_ctrl_hpa_free(drv_ctrl_hpa_t *h)
{
    if (!h)
        return;
    size_t it = 0;
    const char *k;
    void *v;
    while (drv_map_next(&h->mems, &it, &k, &v))
        mem_free(v);
    drv_map_free(&h->mems);
    free(h);
}

/* ---- reading the spec -------------------------------------------------------------------- */

typedef struct metric {
    bool cpu;
    drv_hpa_target_t target;
} metric_t;

static void read_rules(const cJSON *r, bool up, drv_hpa_rules_t *out)
{
    if (up)
        drv_hpa_rules_default_up(out);
    else
        drv_hpa_rules_default_down(out);
    if (!cJSON_IsObject(r))
        return;
    out->window_s = (int32_t)drv_json_int_at(r, "stabilizationWindowSeconds", 0, 3600,
                                             up ? 0 : DRV_HPA_DOWN_WINDOW_DEFAULT_S);
    const char *sel = drv_json_str(r, "selectPolicy");
    if (sel && !strcmp(sel, "Min"))
        out->select = DRV_HPA_SELECT_MIN;
    else if (sel && !strcmp(sel, "Disabled"))
        out->select = DRV_HPA_SELECT_DISABLED;
    const cJSON *pols = drv_json_get(r, "policies");
    if (!cJSON_IsArray(pols))
        return;
    out->n_policies = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, pols)
    {
        if (out->n_policies == DRV_HPA_POLICIES_MAX)
            break;
        const char *type = drv_json_str(p, "type");
        out->policies[out->n_policies++] = (drv_hpa_policy_t){
            type && !strcmp(type, "Percent"),
            (int32_t)drv_json_int_at(p, "value", 1, INT32_MAX, 1),
            (int32_t)drv_json_int_at(p, "periodSeconds", 1, 1800, 15),
        };
    }
}

static size_t read_metrics(const cJSON *spec, metric_t *out)
{
    size_t n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, drv_json_get(spec, "metrics"))
    {
        if (n == HPA_METRICS_MAX)
            break;
        const char *name = drv_json_str_at(m, "resource.name");
        const char *type = drv_json_str_at(m, "resource.target.type");
        if (!name || !type)
            continue; /* validation let nothing else in */
        metric_t *x = &out[n];
        x->cpu = !strcmp(name, "cpu");
        x->target.cpu = x->cpu;
        x->target.utilization = !strcmp(type, "Utilization");
        if (x->target.utilization) {
            x->target.percent =
                (int32_t)drv_json_int_at(m, "resource.target.averageUtilization", 1, INT32_MAX, 80);
        } else {
            const char *q = drv_json_str_at(m, "resource.target.averageValue");
            int64_t v = 0;
            drv_error_t e = DRV_ERROR_INIT;
            if (!q ||
                (x->cpu ? drv_qty_parse_cpu(q, &v, NULL, &e)
                        : drv_qty_parse_memory(q, &v, NULL, &e)) != DRV_OK ||
                v <= 0)
                continue;
            x->target.avg_value = v;
        }
        n++;
    }
    return n;
}

/* ---- the pods ---------------------------------------------------------------------------- */

static int64_t rfc3339_ms(const char *s)
{
    struct tm tm = {0};
    if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
        return -1;
    return (int64_t)timegm(&tm) * 1000;
}

static drv_hpa_phase_t phase_of(const char *p)
{
    if (!p || !strcmp(p, "Pending"))
        return DRV_HPA_PHASE_PENDING;
    if (!strcmp(p, "Running"))
        return DRV_HPA_PHASE_RUNNING;
    if (!strcmp(p, "Succeeded"))
        return DRV_HPA_PHASE_SUCCEEDED;
    if (!strcmp(p, "Failed"))
        return DRV_HPA_PHASE_FAILED;
    return DRV_HPA_PHASE_UNKNOWN;
}

/* The pod's requests for the resource, summed over its containers. */
static void requests_of(const cJSON *pod, bool cpu, drv_hpa_pod_t *out)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, drv_json_at(pod, "spec.containers"))
    {
        const char *q =
            drv_json_str_at(c, cpu ? "resources.requests.cpu" : "resources.requests.memory");
        int64_t v = 0;
        drv_error_t e = DRV_ERROR_INIT;
        if (!q || (cpu ? drv_qty_parse_cpu(q, &v, NULL, &e)
                       : drv_qty_parse_memory(q, &v, NULL, &e)) != DRV_OK) {
            out->no_request = true;
            out->missing_request = drv_json_str(c, "name");
            return;
        }
        if (__builtin_add_overflow(out->request, v, &out->request) || out->request > (1LL << 60))
            out->request = 1LL << 60; /* absurd requests must not overflow the arithmetic */
    }
}

typedef struct round {
    drv_hstore_t *s;
    drv_ctrl_pod_usage_fn usage;
    void *ctx;
    cJSON *nodes;    /* every Node */
    drv_map_t ready; /* the names of the Ready ones (keys point into nodes) */
    int64_t now;
} round_t;

static bool node_ready(round_t *r, const char *node)
{
    return node && *node && drv_map_get(&r->ready, node) != NULL;
}

static void pod_view(round_t *r, const cJSON *pod, bool cpu, drv_hpa_pod_t *out)
{
    memset(out, 0, sizeof(*out));
    out->name = ctrl_meta(pod, "name");
    out->deleting = drv_json_at(pod, "metadata.deletionTimestamp") != NULL;
    out->phase = phase_of(drv_json_str_at(pod, "status.phase"));
    const cJSON *rc = ctrl_condition(pod, "Ready");
    if (rc) {
        out->has_ready = true;
        const char *st = drv_json_str(rc, "status");
        out->ready = st && !strcmp(st, "True");
        out->ready_ms = rfc3339_ms(drv_json_str(rc, "lastTransitionTime"));
    }
    int64_t start = rfc3339_ms(drv_json_str_at(pod, "status.startTime"));
    out->has_start = start >= 0;
    out->start_ms = start;
    requests_of(pod, cpu, out);
    drv_ctrl_usage_t u;
    const char *uid = ctrl_meta(pod, "uid");
    if (node_ready(r, drv_json_str_at(pod, "spec.nodeName")) && r->usage(r->ctx, uid, r->now, &u) &&
        (cpu ? u.has_cpu : u.has_memory)) {
        out->has_metric = true;
        out->value = cpu ? u.cpu_millicores : u.memory_bytes;
        out->metric_ms = u.sample_ms;
        out->metric_window_ms = u.window_ms;
    }
}

/* ---- status ------------------------------------------------------------------------------ */

typedef struct conds {
    const char *able, *able_reason;
    char able_msg[256];
    const char *active, *active_reason;
    char active_msg[512];
    const char *limited, *limited_reason;
    char limited_msg[256];
} conds_t;

static cJSON *metric_status(const metric_t *m, const drv_hpa_proposal_t *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *res = o ? cJSON_AddObjectToObject(o, "resource") : NULL;
    cJSON *cur = res ? cJSON_AddObjectToObject(res, "current") : NULL;
    char q[64];
    if (m->cpu)
        drv_fmt_cut(q, sizeof(q), "%" PRId64 "m", p->avg_value);
    else if (drv_qty_format_memory(p->avg_value, DRV_QTY_BINARY, q, sizeof(q)) != DRV_OK)
        drv_fmt_cut(q, sizeof(q), "%" PRId64, p->avg_value);
    if (!cur || !cJSON_AddStringToObject(o, "type", "Resource") ||
        !cJSON_AddStringToObject(res, "name", m->cpu ? "cpu" : "memory") ||
        (m->target.utilization &&
         !cJSON_AddNumberToObject(cur, "averageUtilization", p->utilization)) ||
        !cJSON_AddStringToObject(cur, "averageValue", q)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *conditions(const cJSON *hpa, const conds_t *c, int64_t now)
{
    cJSON *arr = cJSON_CreateArray();
    const char *types[] = {"AbleToScale", "ScalingActive", "ScalingLimited"};
    const char *st[] = {c->able, c->active, c->limited};
    const char *rs[] = {c->able_reason, c->active_reason, c->limited_reason};
    const char *ms[] = {c->able_msg, c->active_msg, c->limited_msg};
    for (int i = 0; arr && i < 3; i++) {
        const cJSON *old = ctrl_condition(hpa, types[i]);
        if (!st[i]) {
            /* not decided this round: keep what was there */
            if (old) {
                cJSON *dup = cJSON_Duplicate(old, true);
                if (!dup || !cJSON_AddItemToArray(arr, dup))
                    cJSON_Delete(dup);
            }
            continue;
        }
        cJSON *cd = ctrl_make_condition(old, types[i], st[i], rs[i], ms[i], now);
        if (!cd || !cJSON_AddItemToArray(arr, cd)) {
            cJSON_Delete(cd);
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

static void write_status(drv_hstore_t *s, const cJSON *hpa, int32_t current, int32_t desired,
                         cJSON *metrics, const conds_t *c, bool rescaled, int64_t now)
{
    cJSON *st = cJSON_CreateObject();
    char ts[32];
    drv_ctrl_time_format(now, ts, sizeof(ts));
    const cJSON *last = drv_json_at(hpa, "status.lastScaleTime");
    bool ok = st && cJSON_AddNumberToObject(st, "currentReplicas", current) &&
              cJSON_AddNumberToObject(st, "desiredReplicas", desired) &&
              cJSON_AddNumberToObject(
                  st, "observedGeneration",
                  (double)drv_json_int_at(hpa, "metadata.generation", 0, CTRL_INT_LIMIT, 1));
    if (ok && (rescaled || cJSON_IsString(last)))
        ok = cJSON_AddStringToObject(st, "lastScaleTime", rescaled ? ts : last->valuestring);
    if (ok && metrics) {
        ok = cJSON_AddItemToObject(st, "currentMetrics", metrics);
        metrics = NULL;
    }
    cJSON *conds = ok ? conditions(hpa, c, now) : NULL;
    ok = ok && conds && cJSON_AddItemToObject(st, "conditions", conds);
    if (!ok) {
        cJSON_Delete(metrics);
        cJSON_Delete(st);
        return;
    }
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_update_status(s, DRV_KIND_HPA, ctrl_meta(hpa, "namespace"),
                                 ctrl_meta(hpa, "name"), st, NULL, &err) != DRV_OK &&
        err.code != DRV_ERR_NOTFOUND)
        drv_log_warn("hpa: status not written", "hpa=%s/%s error=\"%s\"",
                     ctrl_meta(hpa, "namespace"), ctrl_meta(hpa, "name"), drv_error_msg(&err));
}

/* ---- one HPA ----------------------------------------------------------------------------- */

/* Sets spec.replicas of the Deployment dep to n. */
static drv_err_t rescale(drv_hstore_t *s, cJSON *dep, int32_t n, drv_error_t *err)
{
    cJSON *spec = drv_json_get(dep, "spec");
    if (!spec)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "deployment without spec");
    cJSON *num = cJSON_CreateNumber(n);
    if (!num || !cJSON_ReplaceItemInObjectCaseSensitive(spec, "replicas", num)) {
        if (num && cJSON_AddItemToObject(spec, "replicas", num))
            return drv_hstore_update(s, DRV_KIND_DEPLOYMENT, dep, err);
        cJSON_Delete(num);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    }
    return drv_hstore_update(s, DRV_KIND_DEPLOYMENT, dep, err);
}

static const char *metric_name(const metric_t *m)
{
    if (m->target.utilization)
        return m->cpu ? "cpu resource utilization (percentage of request)"
                      : "memory resource utilization (percentage of request)";
    return m->cpu ? "cpu resource" : "memory resource";
}

static void reconcile_one(round_t *r, drv_ctrl_hpa_t *h, const cJSON *hpa)
{
    const char *ns = ctrl_meta(hpa, "namespace"), *name = ctrl_meta(hpa, "name");
    char key[400];
    if (drv_fmt(key, sizeof(key), "%s/%s", ns, name) != DRV_OK)
        return;
    hpa_mem_t *mem = drv_map_get(&h->mems, key);
    if (mem && strcmp(mem->uid, ctrl_meta(hpa, "uid")) != 0) {
        drv_map_del(&h->mems, key); /* deleted and made again: start afresh */
        mem_free(mem);
        mem = NULL;
    }
    if (!mem) {
        mem = calloc(1, sizeof(*mem));
        if (!mem || drv_fmt(mem->uid, sizeof(mem->uid), "%s", ctrl_meta(hpa, "uid")) != DRV_OK ||
            !(mem->key = strdup(key)) || drv_map_put(&h->mems, mem->key, mem) != DRV_OK) {
            mem_free(mem);
            return;
        }
        mem->last_sync = r->now - h->sync_ms; /* due now */
    }
    mem->seen = true;
    if (r->now - mem->last_sync < h->sync_ms)
        return;
    mem->last_sync = r->now;

    const cJSON *spec = drv_json_get(hpa, "spec");
    drv_hpa_spec_t hs = {
        .min_replicas = (int32_t)drv_json_int_at(spec, "minReplicas", 1, INT32_MAX, 1),
        .max_replicas = (int32_t)drv_json_int_at(spec, "maxReplicas", 1, INT32_MAX, 1),
    };
    const cJSON *beh = drv_json_get(spec, "behavior");
    hs.has_behavior = cJSON_IsObject(beh);
    read_rules(drv_json_get(beh, "scaleUp"), true, &hs.up);
    read_rules(drv_json_get(beh, "scaleDown"), false, &hs.down);
    metric_t metrics[HPA_METRICS_MAX];
    size_t n_metrics = read_metrics(spec, metrics);

    conds_t c = {0};
    const char *target = drv_json_str_at(spec, "scaleTargetRef.name");
    _cleanup_cjson_ cJSON *dep = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (!target || drv_hstore_get(r->s, DRV_KIND_DEPLOYMENT, ns, target, &dep, &err) != DRV_OK) {
        c.able = "False";
        c.able_reason = "FailedGetScale";
        drv_fmt_cut(c.able_msg, sizeof(c.able_msg),
                    "the HPA controller was unable to get the target's current scale: "
                    "deployments.apps \"%s\" not found",
                    target ? target : "");
        warn(r->s, hpa, mem, "FailedGetScale", c.able_msg, r->now);
        write_status(r->s, hpa,
                     (int32_t)drv_json_int_at(hpa, "status.currentReplicas", 0, INT32_MAX, 0),
                     (int32_t)drv_json_int_at(hpa, "status.desiredReplicas", 0, INT32_MAX, 0), NULL,
                     &c, false, r->now);
        return;
    }
    int32_t current = (int32_t)drv_json_int_at(dep, "spec.replicas", 0, INT32_MAX, 1);
    drv_hpa_calc_init(&mem->m, current, r->now);
    c.able = "True";
    c.able_reason = "SucceededGetScale";
    drv_fmt_cut(c.able_msg, sizeof(c.able_msg),
                "the HPA controller was able to get the target's current scale");

    int32_t desired = 0;
    const char *reason = "";
    char reason_buf[200] = "";
    cJSON *mstatus = NULL;
    bool rescale_wanted = false;
    if (current == 0 && hs.min_replicas != 0) {
        desired = 0;
        c.active = "False";
        c.active_reason = "ScalingDisabled";
        drv_fmt_cut(c.active_msg, sizeof(c.active_msg),
                    "scaling is disabled since the replica count of the target is zero");
    } else if (current > hs.max_replicas) {
        desired = hs.max_replicas;
        reason = "Current number of replicas above Spec.MaxReplicas";
        rescale_wanted = true;
    } else if (current < hs.min_replicas) {
        desired = hs.min_replicas;
        reason = "Current number of replicas below Spec.MinReplicas";
        rescale_wanted = true;
    } else {
        /* computeReplicasForMetrics */
        _cleanup_cjson_ cJSON *pods = NULL;
        drv_selector_t sel = {0};
        drv_err_t lr = drv_selector_from_json(drv_json_at(dep, "spec.selector"), &sel, &err);
        if (lr == DRV_OK)
            lr = drv_hstore_list(r->s, DRV_KIND_POD, ns, &sel, &pods, NULL, &err);
        drv_selector_free(&sel);
        size_t np = lr == DRV_OK ? drv_json_array_len(pods) : 0;
        _cleanup_free_ drv_hpa_pod_t *views = np ? calloc(np, sizeof(*views)) : NULL;
        mstatus = cJSON_CreateArray();
        size_t invalid = 0;
        char first_err[400] = "";
        const char *first_reason = "FailedGetResourceMetric";
        int32_t best = -1;
        const metric_t *best_metric = NULL;
        for (size_t k = 0; k < n_metrics; k++) {
            const metric_t *m = &metrics[k];
            size_t i = 0;
            const cJSON *p;
            if (np && views)
                cJSON_ArrayForEach(p, pods) pod_view(r, p, m->cpu, &views[i++]);
            drv_hpa_proposal_t prop;
            drv_error_t me = DRV_ERROR_INIT;
            drv_err_t cr =
                lr != DRV_OK
                    ? drv_error_set(&me, DRV_ERR_IO, 0, "%s", drv_error_msg(&err))
                    : drv_hpa_calc_replicas(views, np, &m->target, current, r->now, &prop, &me);
            if (cr != DRV_OK) {
                if (invalid++ == 0)
                    drv_fmt_cut(first_err, sizeof(first_err), "failed to get %s utilization: %s",
                                m->cpu ? "cpu" : "memory", drv_error_msg(&me));
                char msg[512];
                drv_fmt_cut(msg, sizeof(msg), "failed to get %s utilization: %s",
                            m->cpu ? "cpu" : "memory", drv_error_msg(&me));
                warn(r->s, hpa, mem, "FailedGetResourceMetric", msg, r->now);
                continue;
            }
            cJSON *ms = metric_status(m, &prop);
            if (ms && !cJSON_AddItemToArray(mstatus, ms))
                cJSON_Delete(ms);
            if (prop.replicas > best) {
                best = prop.replicas;
                best_metric = m;
            }
        }
        if (invalid >= n_metrics || (invalid > 0 && best < current)) {
            c.active = "False";
            c.active_reason = first_reason;
            drv_fmt_cut(c.active_msg, sizeof(c.active_msg), "%s", first_err);
            char msg[600];
            drv_fmt_cut(msg, sizeof(msg),
                        "invalid metrics (%zu invalid out of %zu), first error is: %s", invalid,
                        n_metrics, first_err);
            warn(r->s, hpa, mem, "FailedComputeMetricsReplicas", msg, r->now);
            write_status(r->s, hpa, current, current, mstatus, &c, false, r->now);
            return;
        }
        c.active = "True";
        c.active_reason = "ValidMetricFound";
        drv_fmt_cut(c.active_msg, sizeof(c.active_msg),
                    "the HPA was able to successfully calculate a replica count from %s",
                    best_metric ? metric_name(best_metric) : "cpu resource");
        desired = best;
        if (desired > current) {
            drv_fmt_cut(reason_buf, sizeof(reason_buf), "%s above target",
                        best_metric ? metric_name(best_metric) : "");
            reason = reason_buf;
        } else if (desired < current) {
            reason = "All metrics below target";
        }
        drv_hpa_normalized_t nz;
        drv_hpa_calc_normalize(&hs, &mem->m, current, desired, r->now, &nz);
        desired = nz.replicas;
        c.able_reason = nz.able_reason;
        drv_fmt_cut(c.able_msg, sizeof(c.able_msg), "%s", nz.able_message);
        c.limited = nz.limited ? "True" : "False";
        c.limited_reason = nz.limited_reason;
        drv_fmt_cut(c.limited_msg, sizeof(c.limited_msg), "%s", nz.limited_message);
        rescale_wanted = desired != current;
    }

    bool rescaled = false;
    if (rescale_wanted && desired != current) {
        drv_error_t ue = DRV_ERROR_INIT;
        char msg[400];
        if (rescale(r->s, dep, desired, &ue) == DRV_OK) {
            rescaled = true;
            drv_hpa_calc_record_scale(&hs, &mem->m, current, desired, r->now);
            drv_fmt_cut(msg, sizeof(msg), "New size: %d; reason: %s", desired, reason);
            ctrl_event(r->s, hpa, DRV_KIND_HPA, "Normal", "SuccessfulRescale", msg, COMPONENT,
                       r->now);
            c.able = "True";
            c.able_reason = "SucceededRescale";
            drv_fmt_cut(c.able_msg, sizeof(c.able_msg),
                        "the HPA controller was able to update the target scale to %d", desired);
            drv_log_info("hpa: rescaled", "hpa=%s/%s from=%d to=%d reason=\"%s\"", ns, name,
                         current, desired, reason);
        } else {
            drv_fmt_cut(msg, sizeof(msg), "New size: %d; reason: %s; error: %s", desired, reason,
                        drv_error_msg(&ue));
            warn(r->s, hpa, mem, "FailedRescale", msg, r->now);
            c.able = "False";
            c.able_reason = "FailedUpdateScale";
            drv_fmt_cut(c.able_msg, sizeof(c.able_msg),
                        "the HPA controller was unable to update the target scale: %s",
                        drv_error_msg(&ue));
            desired = current;
        }
    } else if (!rescale_wanted) {
        desired = current == 0 && hs.min_replicas != 0 ? 0 : current;
    }
    write_status(r->s, hpa, current, desired, mstatus, &c, rescaled, r->now);
}

drv_err_t drv_ctrl_hpas_reconcile(drv_hstore_t *s, drv_ctrl_hpa_t *h, drv_ctrl_pod_usage_fn usage,
                                  void *ctx, int64_t now_ms, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *hpas = NULL;
    drv_err_t rc = drv_hstore_list(s, DRV_KIND_HPA, NULL, NULL, &hpas, NULL, err);
    if (rc != DRV_OK)
        return rc;
    size_t it = 0;
    const char *k;
    void *v;
    while (drv_map_next(&h->mems, &it, &k, &v))
        ((hpa_mem_t *)v)->seen = false;
    if (drv_json_array_len(hpas) > 0) {
        round_t r = {.s = s, .usage = usage, .ctx = ctx, .now = now_ms};
        rc = drv_hstore_list(s, DRV_KIND_NODE, NULL, NULL, &r.nodes, NULL, err);
        if (rc != DRV_OK)
            return rc;
        drv_map_init(&r.ready, (size_t)drv_json_array_len(r.nodes) + 1);
        const cJSON *n;
        cJSON_ArrayForEach(n, r.nodes)
        {
            const char *st = drv_json_str(ctrl_condition(n, "Ready"), "status");
            const char *name = drv_json_str_at(n, "metadata.name");
            if (name && st && !strcmp(st, "True") &&
                drv_map_put(&r.ready, name, (void *)n) != DRV_OK) {
                drv_map_free(&r.ready);
                cJSON_Delete(r.nodes);
                return drv_error_set(err, DRV_ERR_NOMEM, 0, "hpa: out of memory");
            }
        }
        const cJSON *hpa;
        cJSON_ArrayForEach(hpa, hpas) reconcile_one(&r, h, hpa);
        drv_map_free(&r.ready);
        cJSON_Delete(r.nodes);
    }
    /* Forget deleted HPAs. */
    it = 0;
    while (drv_map_next(&h->mems, &it, &k, &v)) {
        hpa_mem_t *m = v;
        if (!m->seen) {
            drv_map_del(&h->mems, m->key); /* the entry just returned: allowed */
            mem_free(m);
        }
    }
    return DRV_OK;
}
