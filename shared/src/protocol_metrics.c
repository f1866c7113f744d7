/* The usage message (NodeMetricsReport, topic `metrics`; see protocol.h and docs/PROTOCOL.md
 * "Usage"): written by the agent, read by the hub through drover/json.h tables, every field
 * typed and bounded, every name checked, so that nothing a device sends is stored unchecked. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/buf.h"
#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/names.h"
#include "drover/protocol.h"

#define NS_PER_CORE_MAX DRV_PROTO_METRICS_CPU_MAX
#define BYTES_MAX DRV_PROTO_METRICS_BYTES_MAX
#define TEMP_MIN (-100000LL) /* -100 °C, in millidegrees */
#define TEMP_MAX 200000LL    /* 200 °C */
#define WINDOW_MAX_MS DRV_PROTO_METRICS_WINDOW_MAX_MS
#define TIME_MAX_MS (253402300799999LL) /* 9999-12-31 */

/* ---- writing ----------------------------------------------------------------------------- */

static bool put(drv_buf_t *b, const char *fmt, ...) DRV_PRINTF(2, 3);
static bool put(drv_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    drv_err_t rc = drv_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc == DRV_OK;
}

/* Names in this message are checked DNS names and uids: no character JSON must escape. */
static bool plain(const char *s)
{
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            return false;
    return true;
}

drv_err_t drv_proto_metrics_format(const drv_proto_metrics_t *m, char **out, size_t *len,
                                   drv_error_t *err)
{
    _cleanup_buf_ drv_buf_t b = DRV_BUF_INIT(DRV_PROTO_METRICS_MAX);
    bool ok = put(&b,
                  "{\"node\":\"%s\",\"seq\":%" PRIu64 ",\"time\":%" PRId64 ",\"window\":%" PRId64
                  ",\"usage\":{",
                  m->node, m->seq, m->time_ms, m->window_ms);
    const char *sep = "";
    if (ok && m->has_cpu) {
        ok = put(&b, "\"cpu\":%" PRId64, m->cpu_nanocores);
        sep = ",";
    }
    if (ok && m->has_memory) {
        ok = put(&b, "%s\"memory\":%" PRId64 ",\"memoryTotal\":%" PRId64, sep, m->memory_bytes,
                 m->memory_total_bytes);
        sep = ",";
    }
    if (ok && m->has_disk) {
        ok = put(&b, "%s\"diskFree\":%" PRId64 ",\"diskTotal\":%" PRId64, sep, m->disk_free_bytes,
                 m->disk_total_bytes);
        sep = ",";
    }
    if (ok && m->has_temp) {
        ok = put(&b, "%s\"temp\":%" PRId64, sep, m->temp_millicelsius);
        sep = ",";
    }
    if (ok && m->has_throttled)
        ok = put(&b, "%s\"throttled\":%" PRIu32, sep, m->throttled);
    ok = ok && put(&b, "}");
    if (ok && m->n_unsupported > 0) {
        ok = put(&b, ",\"unsupported\":[");
        for (size_t i = 0; ok && i < m->n_unsupported; i++)
            ok = plain(m->unsupported[i]) && put(&b, "%s\"%s\"", i ? "," : "", m->unsupported[i]);
        ok = ok && put(&b, "]");
    }
    ok = ok && put(&b, ",\"pods\":[");
    for (size_t i = 0; ok && i < m->n_pods; i++) {
        const drv_proto_pod_usage_t *p = &m->pods[i];
        ok = plain(p->ns) && plain(p->name) && plain(p->uid) &&
             put(&b, "%s{\"ns\":\"%s\",\"name\":\"%s\",\"uid\":\"%s\",\"containers\":[",
                 i ? "," : "", p->ns, p->name, p->uid);
        for (size_t j = 0; ok && j < p->n_ctrs; j++) {
            const drv_proto_ctr_usage_t *c = &p->ctrs[j];
            ok = plain(c->name) && put(&b, "%s{\"name\":\"%s\"", j ? "," : "", c->name);
            if (ok && c->has_cpu)
                ok = put(&b, ",\"cpu\":%" PRId64, c->cpu_nanocores);
            if (ok && c->has_memory)
                ok = put(&b, ",\"memory\":%" PRId64, c->memory_bytes);
            ok = ok && put(&b,
                           ",\"throttledPeriods\":%" PRIu64 ",\"throttledUsec\":%" PRIu64
                           ",\"oomKills\":%" PRIu64 ",\"restarts\":%" PRId32 "}",
                           c->throttled_periods, c->throttled_usec, c->oom_kills, c->restarts);
        }
        ok = ok && put(&b, "]}");
    }
    ok = ok && put(&b, "]}");
    if (!ok)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0,
                             "metrics: message over %u bytes or a name JSON must escape",
                             DRV_PROTO_METRICS_MAX);
    *out = drv_buf_steal(&b, len);
    return *out ? DRV_OK : drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
}

/* ---- reading ----------------------------------------------------------------------------- */

static drv_err_t read_ctr(const cJSON *o, const char *path, drv_proto_ctr_usage_t *c,
                          drv_error_t *err)
{
    int64_t restarts = 0;
    const drv_json_field_t t[] = {
        {.key = "name",
         .type = DRV_JSON_T_STRBUF,
         .need = DRV_JSON_REQUIRED,
         .dest = c->name,
         .size = sizeof(c->name)},
        {.key = "cpu",
         .type = DRV_JSON_T_INT,
         .dest = &c->cpu_nanocores,
         .min = 0,
         .max = NS_PER_CORE_MAX,
         .present = &c->has_cpu},
        {.key = "memory",
         .type = DRV_JSON_T_INT,
         .dest = &c->memory_bytes,
         .min = 0,
         .max = BYTES_MAX,
         .present = &c->has_memory},
        {.key = "throttledPeriods", .type = DRV_JSON_T_UINT, .dest = &c->throttled_periods},
        {.key = "throttledUsec", .type = DRV_JSON_T_UINT, .dest = &c->throttled_usec},
        {.key = "oomKills", .type = DRV_JSON_T_UINT, .dest = &c->oom_kills},
        {.key = "restarts", .type = DRV_JSON_T_INT, .dest = &restarts, .min = 0, .max = INT32_MAX},
    };
    drv_err_t rc = drv_json_read_table(o, path, t, DRV_JSON_TABLE_LEN(t), DRV_JSON_STRICT, err);
    if (rc != DRV_OK)
        return rc;
    c->restarts = (int32_t)restarts;
    char why[160];
    if (!drv_name_dns_label(c->name, why, sizeof(why)))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.name: %s", path, why);
    return DRV_OK;
}

static bool uid_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > DRV_PROTO_UID_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-'))
            return false;
    return true;
}

static drv_err_t read_pod(const cJSON *o, const char *path, drv_proto_pod_usage_t *p,
                          drv_error_t *err)
{
    const cJSON *ctrs = NULL;
    const drv_json_field_t t[] = {
        {.key = "ns",
         .type = DRV_JSON_T_STRBUF,
         .need = DRV_JSON_REQUIRED,
         .dest = p->ns,
         .size = sizeof(p->ns)},
        {.key = "name",
         .type = DRV_JSON_T_STRBUF,
         .need = DRV_JSON_REQUIRED,
         .dest = p->name,
         .size = sizeof(p->name)},
        {.key = "uid",
         .type = DRV_JSON_T_STRBUF,
         .need = DRV_JSON_REQUIRED,
         .dest = p->uid,
         .size = sizeof(p->uid)},
        {.key = "containers", .type = DRV_JSON_T_ARRAY, .need = DRV_JSON_REQUIRED, .dest = &ctrs},
    };
    drv_err_t rc = drv_json_read_table(o, path, t, DRV_JSON_TABLE_LEN(t), DRV_JSON_STRICT, err);
    if (rc != DRV_OK)
        return rc;
    char why[160];
    if (!drv_name_dns_label(p->ns, why, sizeof(why)))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.ns: %s", path, why);
    if (!drv_name_dns_subdomain(p->name, why, sizeof(why)))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.name: %s", path, why);
    if (!uid_ok(p->uid))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s.uid: must be 1-%d characters of [A-Za-z0-9-]", path,
                             DRV_PROTO_UID_MAX);
    size_t n = drv_json_array_len(ctrs);
    if (n > DRV_PROTO_METRICS_CTRS_MAX)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s.containers: more than %d", path,
                             DRV_PROTO_METRICS_CTRS_MAX);
    size_t i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, ctrs)
    {
        char cp[96];
        drv_fmt_cut(cp, sizeof(cp), "%s.containers[%zu]", path, i);
        rc = read_ctr(c, cp, &p->ctrs[i], err);
        if (rc != DRV_OK)
            return rc;
        for (size_t k = 0; k < i; k++)
            if (strcmp(p->ctrs[k].name, p->ctrs[i].name) == 0)
                return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.name: \"%s\" twice", cp,
                                     p->ctrs[i].name);
        i++;
    }
    p->n_ctrs = i;
    return DRV_OK;
}

drv_err_t drv_proto_metrics_parse(const char *payload, size_t len, const char *expect_node,
                                  drv_proto_metrics_t *out, drv_error_t *err)
{
    memset(out, 0, sizeof(*out));
    if (len > DRV_PROTO_METRICS_MAX)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "metrics: %zu bytes, over the cap of %u", len,
                             DRV_PROTO_METRICS_MAX);
    _cleanup_cjson_ cJSON *root = cJSON_ParseWithLength(payload, len);
    if (root == NULL)
        return drv_error_set(err, DRV_ERR_PROTO, 0, "metrics: not JSON");
    drv_proto_metrics_t m;
    memset(&m, 0, sizeof(m));
    const cJSON *usage = NULL, *pods = NULL, *unsupported = NULL;
    int64_t seq = 0;
    const drv_json_field_t top[] = {
        {.key = "node",
         .type = DRV_JSON_T_STRBUF,
         .need = DRV_JSON_REQUIRED,
         .dest = m.node,
         .size = sizeof(m.node)},
        {.key = "seq",
         .type = DRV_JSON_T_INT,
         .need = DRV_JSON_REQUIRED,
         .dest = &seq,
         .min = 0,
         .max = (int64_t)DRV_PROTO_GEN_MAX},
        {.key = "time",
         .type = DRV_JSON_T_INT,
         .need = DRV_JSON_REQUIRED,
         .dest = &m.time_ms,
         .min = 1,
         .max = TIME_MAX_MS},
        {.key = "window",
         .type = DRV_JSON_T_INT,
         .need = DRV_JSON_REQUIRED,
         .dest = &m.window_ms,
         .min = 1,
         .max = WINDOW_MAX_MS},
        {.key = "usage", .type = DRV_JSON_T_OBJECT, .need = DRV_JSON_REQUIRED, .dest = &usage},
        {.key = "unsupported", .type = DRV_JSON_T_ARRAY, .dest = &unsupported},
        {.key = "pods", .type = DRV_JSON_T_ARRAY, .need = DRV_JSON_REQUIRED, .dest = &pods},
    };
    drv_err_t rc =
        drv_json_read_table(root, NULL, top, DRV_JSON_TABLE_LEN(top), DRV_JSON_STRICT, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "metrics");
    m.seq = (uint64_t)seq;
    if (drv_proto_check_node(m.node, err) != DRV_OK)
        return drv_error_wrap(err, "metrics: node");
    if (expect_node && strcmp(m.node, expect_node) != 0)
        return drv_error_set(err, DRV_ERR_PROTO, 0,
                             "metrics: node \"%s\" does not match the topic's \"%s\"", m.node,
                             expect_node);
    uint64_t throttled = 0;
    const drv_json_field_t u[] = {
        {.key = "cpu",
         .type = DRV_JSON_T_INT,
         .dest = &m.cpu_nanocores,
         .min = 0,
         .max = NS_PER_CORE_MAX,
         .present = &m.has_cpu},
        {.key = "memory",
         .type = DRV_JSON_T_INT,
         .dest = &m.memory_bytes,
         .min = 0,
         .max = BYTES_MAX,
         .present = &m.has_memory},
        {.key = "memoryTotal",
         .type = DRV_JSON_T_INT,
         .dest = &m.memory_total_bytes,
         .min = 0,
         .max = BYTES_MAX},
        {.key = "diskFree",
         .type = DRV_JSON_T_INT,
         .dest = &m.disk_free_bytes,
         .min = 0,
         .max = BYTES_MAX,
         .present = &m.has_disk},
        {.key = "diskTotal",
         .type = DRV_JSON_T_INT,
         .dest = &m.disk_total_bytes,
         .min = 0,
         .max = BYTES_MAX},
        {.key = "temp",
         .type = DRV_JSON_T_INT,
         .dest = &m.temp_millicelsius,
         .min = TEMP_MIN,
         .max = TEMP_MAX,
         .present = &m.has_temp},
        {.key = "throttled",
         .type = DRV_JSON_T_UINT,
         .dest = &throttled,
         .umax = UINT32_MAX,
         .present = &m.has_throttled},
    };
    rc = drv_json_read_table(usage, "usage", u, DRV_JSON_TABLE_LEN(u), DRV_JSON_STRICT, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "metrics");
    m.throttled = (uint32_t)throttled;
    if (m.has_memory && m.memory_total_bytes < m.memory_bytes)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "metrics: usage.memoryTotal: below usage.memory");
    if (m.has_disk && m.disk_total_bytes < m.disk_free_bytes)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "metrics: usage.diskTotal: below usage.diskFree");

    size_t nu = drv_json_array_len(unsupported);
    if (nu > DRV_PROTO_METRICS_UNSUPPORTED_MAX)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "metrics: unsupported: more than %d",
                             DRV_PROTO_METRICS_UNSUPPORTED_MAX);
    for (size_t i = 0; i < nu; i++) {
        const cJSON *s = cJSON_GetArrayItem(unsupported, (int)i);
        const char *v = cJSON_IsString(s) ? s->valuestring : NULL;
        if (!v || !v[0] || strlen(v) >= sizeof(m.unsupported[0]) || !plain(v))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "metrics: unsupported[%zu]: must be a name of 1-%zu characters", i,
                                 sizeof(m.unsupported[0]) - 1);
        memcpy(m.unsupported[i], v, strlen(v) + 1);
    }
    m.n_unsupported = nu;

    size_t np = drv_json_array_len(pods);
    if (np > DRV_PROTO_METRICS_PODS_MAX)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "metrics: pods: more than %d",
                             DRV_PROTO_METRICS_PODS_MAX);
    if (np > 0) {
        m.pods = calloc(np, sizeof(*m.pods));
        if (m.pods == NULL)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    }
    size_t i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, pods)
    {
        char pp[32];
        drv_fmt_cut(pp, sizeof(pp), "pods[%zu]", i);
        rc = read_pod(p, pp, &m.pods[i], err);
        for (size_t k = 0; rc == DRV_OK && k < i; k++)
            if (strcmp(m.pods[k].uid, m.pods[i].uid) == 0)
                rc = drv_error_set(err, DRV_ERR_INVALID, 0, "%s.uid: \"%s\" twice", pp,
                                   m.pods[i].uid);
        if (rc != DRV_OK) {
            free(m.pods);
            return drv_error_wrap(err, "metrics");
        }
        i++;
    }
    m.n_pods = i;
    *out = m;
    return DRV_OK;
}

void drv_proto_metrics_free(drv_proto_metrics_t *m)
{
    if (m == NULL)
        return;
    free(m->pods);
    m->pods = NULL;
    m->n_pods = 0;
}
