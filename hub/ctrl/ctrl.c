/* Controller plumbing shared by the Deployment, DaemonSet and node controllers (times,
 * readiness, owned pods, pod creation), plus the scheduling pass and the whole round. */
#include "ctrl/ctrl_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/log.h"
#include "drover/proc.h"

const char *ctrl_meta(const cJSON *o, const char *key)
{
    const char *v = drv_json_str(drv_json_get(o, "metadata"), key);
    return v ? v : "";
}

int64_t ctrl_int(const cJSON *o, const char *key, int64_t def)
{
    /* Bounded well inside int64, so that seconds * 1000 cannot overflow. */
    return drv_json_int_at(o, key, -CTRL_INT_LIMIT, CTRL_INT_LIMIT, def);
}

bool ctrl_set(cJSON *obj, const char *key, cJSON *item)
{
    if (!item || !cJSON_IsObject(obj)) {
        cJSON_Delete(item);
        return false;
    }
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item);
    return cJSON_AddItemToObject(obj, key, item);
}

const cJSON *ctrl_condition(const cJSON *obj, const char *type)
{
    const cJSON *conds = drv_json_get(drv_json_get(obj, "status"), "conditions"), *c;
    cJSON_ArrayForEach(c, (cJSON_IsArray(conds) ? conds : NULL))
    {
        const char *t = drv_json_str(c, "type");
        if (t && !strcmp(t, type))
            return c;
    }
    return NULL;
}

int64_t drv_ctrl_time_parse(const char *s)
{
    if (!s)
        return -1;
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    int64_t ms = 0;
    if (*p == '.') {
        int64_t scale = 100;
        for (p++; *p >= '0' && *p <= '9'; p++) {
            ms += (*p - '0') * scale;
            scale /= 10;
        }
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int h = (p[1] - '0') * 10 + (p[2] - '0'), m = (p[4] - '0') * 10 + (p[5] - '0');
        off = (int64_t)(h * 60 + m) * 60 * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    /* Days from the civil date in 64 bits (no timegm: time_t is 32 bits on some targets). */
    int64_t y = (int64_t)tm.tm_year + 1900, m = tm.tm_mon + 1, d = tm.tm_mday;
    if (y < 1970 || y > 9999)
        return -1;
    y -= m <= 2;
    int64_t era = y / 400, yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    int64_t t = days * 86400 + tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
    if (t - off < 0)
        return -1;
    return (t - off) * 1000 + ms;
}

void drv_ctrl_time_format(int64_t ms, char *out, size_t outsz)
{
    if (!outsz)
        return;
    if (ms < 0 || ms > 253402300799999LL) {
        out[0] = '\0';
        return;
    }
    /* Civil date from days, in 64 bits (time_t is 32 bits on some targets). */
    int64_t secs = ms / 1000, days = secs / 86400, rem = secs % 86400;
    int64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);
    if (drv_fmt(out, outsz, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lldZ", (long long)y,
                (long long)m, (long long)d, (long long)(rem / 3600), (long long)(rem / 60 % 60),
                (long long)(rem % 60)) != DRV_OK &&
        outsz > 0)
        out[0] = '\0'; /* never a cut time */
}

bool drv_ctrl_pod_ready(const cJSON *pod)
{
    const char *st = drv_json_str(ctrl_condition(pod, "Ready"), "status");
    return st && !strcmp(st, "True");
}

bool drv_ctrl_pod_available(const cJSON *pod, int64_t min_ready_s, int64_t now_ms)
{
    if (!drv_ctrl_pod_ready(pod))
        return false;
    if (min_ready_s <= 0)
        return true;
    int64_t since =
        drv_ctrl_time_parse(drv_json_str(ctrl_condition(pod, "Ready"), "lastTransitionTime"));
    return since >= 0 && now_ms - since >= min_ready_s * 1000;
}

const cJSON *drv_ctrl_controller_of(const cJSON *obj)
{
    const cJSON *refs = drv_json_get(drv_json_get(obj, "metadata"), "ownerReferences"), *r;
    cJSON_ArrayForEach(r, (cJSON_IsArray(refs) ? refs : NULL))
    {
        if (cJSON_IsTrue(drv_json_get(r, "controller")))
            return r;
    }
    return NULL;
}

int64_t drv_ctrl_int_or_percent(const cJSON *v, int64_t total, bool round_up)
{
    if (cJSON_IsNumber(v))
        return !(v->valuedouble > 0)  ? 0
               : v->valuedouble > 1e9 ? 1000000000
                                      : (int64_t)v->valuedouble;
    if (!cJSON_IsString(v))
        return 0;
    char *end = NULL;
    long pct = strtol(v->valuestring, &end, 10);
    if (end == v->valuestring || strcmp(end, "%") || pct < 0 || pct > 100)
        return 0;
    int64_t x = total * pct;
    return round_up ? (x + 99) / 100 : x / 100;
}

static const char HASH_ALPHABET[] = "bcdfghjklmnpqrstvwxz2456789";

void drv_ctrl_template_hash(const cJSON *tpl, char *out, size_t outsz)
{
    _cleanup_free_ char *text = drv_model_to_json(tpl, false);
    uint64_t h = 14695981039346656037ULL;
    for (const char *p = text ? text : ""; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    }
    size_t i = 0;
    for (; i < 10 && i + 1 < outsz; i++) {
        out[i] = HASH_ALPHABET[h % (sizeof(HASH_ALPHABET) - 1)];
        h /= sizeof(HASH_ALPHABET) - 1;
    }
    if (outsz)
        out[i] = '\0';
}

static void random_suffix(char out[6])
{
    unsigned char b[5] = {0};
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        /* Without entropy, fall back to the clock: names only need to differ. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
        for (int i = 0; i < 5; i++, x >>= 8)
            b[i] = (unsigned char)(x ^ (uint64_t)i * 131);
    }
    for (int i = 0; i < 5; i++)
        out[i] = HASH_ALPHABET[b[i] % (sizeof(HASH_ALPHABET) - 1)];
    out[5] = '\0';
}

drv_err_t ctrl_owned_pods(drv_hstore_t *s, const char *ns, const char *uid, cJSON **out,
                          drv_error_t *err)
{
    cJSON *all = NULL;
    drv_err_t r = drv_hstore_list(s, DRV_KIND_POD, ns, NULL, &all, NULL, err);
    if (r != DRV_OK)
        return r;
    cJSON *p = all ? all->child : NULL;
    while (p) {
        cJSON *next = p->next;
        const char *puid = drv_json_str(drv_ctrl_controller_of(p), "uid");
        if (!puid || strcmp(puid, uid))
            cJSON_Delete(cJSON_DetachItemViaPointer(all, p));
        p = next;
    }
    *out = all;
    return DRV_OK;
}

cJSON *ctrl_owner_refs(const cJSON *owner, drv_kind_t kind)
{
    cJSON *ref = cJSON_CreateObject();
    cJSON *refs = cJSON_CreateArray();
    if (!ref || !refs || !cJSON_AddStringToObject(ref, "apiVersion", drv_kind_api_version(kind)) ||
        !cJSON_AddStringToObject(ref, "kind", drv_kind_name(kind)) ||
        !cJSON_AddStringToObject(ref, "name", ctrl_meta(owner, "name")) ||
        !cJSON_AddStringToObject(ref, "uid", ctrl_meta(owner, "uid")) ||
        !cJSON_AddBoolToObject(ref, "controller", true) ||
        !cJSON_AddBoolToObject(ref, "blockOwnerDeletion", true)) {
        cJSON_Delete(ref);
        cJSON_Delete(refs);
        return NULL;
    }
    cJSON_AddItemToArray(refs, ref);
    return refs;
}

drv_err_t ctrl_create_pod(drv_hstore_t *s, const cJSON *owner, drv_kind_t kind, const cJSON *tpl,
                          const char *hash_label, const char *hash, const char *prefix,
                          const char *node, drv_error_t *err)
{
    const cJSON *tmeta = drv_json_get(tpl, "metadata");
    cJSON *pod = cJSON_CreateObject();
    cJSON *meta = cJSON_CreateObject();
    bool ok = pod && meta && cJSON_AddStringToObject(pod, "apiVersion", "v1") &&
              cJSON_AddStringToObject(pod, "kind", "Pod");
    if (!ok)
        cJSON_Delete(meta);
    else
        ok = ctrl_set(pod, "metadata", meta); /* consumes meta */
    const cJSON *labels = drv_json_get(tmeta, "labels"), *ann = drv_json_get(tmeta, "annotations");
    cJSON *l = cJSON_IsObject(labels) ? cJSON_Duplicate(labels, true) : cJSON_CreateObject();
    ok =
        ok && l && ctrl_set(l, hash_label, cJSON_CreateString(hash)) && ctrl_set(meta, "labels", l);
    if (ok && cJSON_IsObject(ann))
        ok = ctrl_set(meta, "annotations", cJSON_Duplicate(ann, true));
    ok = ok && cJSON_AddStringToObject(meta, "namespace", ctrl_meta(owner, "namespace")) &&
         ctrl_set(meta, "ownerReferences", ctrl_owner_refs(owner, kind));
    cJSON *spec = ok ? cJSON_Duplicate(drv_json_get(tpl, "spec"), true) : NULL;
    ok = ok && spec && ctrl_set(pod, "spec", spec);
    if (ok && node)
        ok = ctrl_set(spec, "nodeName", cJSON_CreateString(node));
    else if (ok)
        cJSON_DeleteItemFromObjectCaseSensitive(spec, "nodeName");
    if (!ok) {
        cJSON_Delete(pod);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "making a pod for %s",
                             ctrl_meta(owner, "name"));
    }
    /* Names stay DNS labels (63 characters) like Kubernetes' generated names. */
    char base[64];
    if (drv_fmt(base, sizeof(base), "%.57s", prefix) != DRV_OK) {
        cJSON_Delete(pod);
        return drv_error_set(err, DRV_ERR_INVALID, 0, "pod name prefix %.64s", prefix);
    }
    size_t bl = strlen(base);
    while (bl && (base[bl - 1] == '.' || base[bl - 1] == '-'))
        base[--bl] = '\0';
    drv_err_t r = DRV_ERR_EXISTS;
    for (int attempt = 0; attempt < 8 && r == DRV_ERR_EXISTS; attempt++) {
        char name[80], sfx[6];
        random_suffix(sfx);
        if (drv_fmt(name, sizeof(name), "%s-%s", base, sfx) != DRV_OK) {
            r = drv_error_set(err, DRV_ERR_INVALID, 0, "pod name %s-%s: too long", base, sfx);
            break;
        }
        cJSON *try = cJSON_Duplicate(pod, true);
        if (!try ||
            !ctrl_set((cJSON *)drv_json_get(try, "metadata"), "name", cJSON_CreateString(name))) {
            cJSON_Delete(try);
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "making a pod");
            break;
        }
        drv_diags_t d = {0};
        r = drv_model_normalize(try, &d);
        if (r != DRV_OK) {
            _cleanup_free_ char *msg = drv_diags_format(&d, "  ");
            drv_diags_free(&d);
            cJSON_Delete(try);
            r = drv_error_set(err, r, 0, "pod for %s %s/%s is invalid:\n%s", drv_kind_name(kind),
                              ctrl_meta(owner, "namespace"), ctrl_meta(owner, "name"),
                              msg ? msg : "");
            break;
        }
        drv_diags_free(&d);
        drv_error_t e = DRV_ERROR_INIT;
        r = drv_hstore_create(s, DRV_KIND_POD, try, &e);
        cJSON_Delete(try);
        if (r != DRV_OK && r != DRV_ERR_EXISTS)
            r = drv_error_set(err, r, e.sys_errno, "create pod %s: %s", name, drv_error_msg(&e));
    }
    cJSON_Delete(pod);
    if (r == DRV_ERR_EXISTS)
        return drv_error_set(err, r, 0, "no free pod name for prefix %s", base);
    return r;
}

drv_err_t ctrl_delete_pod(drv_hstore_t *s, const cJSON *pod, drv_error_t *err)
{
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_delete(s, DRV_KIND_POD, ctrl_meta(pod, "namespace"),
                                    ctrl_meta(pod, "name"), NULL, &e);
    if (r == DRV_ERR_NOTFOUND)
        return DRV_OK;
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "delete pod %s/%s: %s",
                             ctrl_meta(pod, "namespace"), ctrl_meta(pod, "name"),
                             drv_error_msg(&e));
    return DRV_OK;
}

cJSON *ctrl_make_condition(const cJSON *old, const char *type, const char *status,
                           const char *reason, const char *message, int64_t now_ms)
{
    cJSON *c = cJSON_CreateObject();
    char ts[32];
    const char *ost = drv_json_str(old, "status"), *olt = drv_json_str(old, "lastTransitionTime");
    if (!ost || !olt || strcmp(ost, status) || drv_fmt(ts, sizeof(ts), "%s", olt) != DRV_OK)
        drv_ctrl_time_format(now_ms, ts, sizeof(ts));
    if (!c || !cJSON_AddStringToObject(c, "type", type) ||
        !cJSON_AddStringToObject(c, "status", status) ||
        !cJSON_AddStringToObject(c, "reason", reason) ||
        !cJSON_AddStringToObject(c, "message", message ? message : "") ||
        !cJSON_AddStringToObject(c, "lastTransitionTime", ts)) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

void ctrl_event(drv_hstore_t *s, const cJSON *obj, drv_kind_t kind, const char *type,
                const char *reason, const char *message, const char *component, int64_t now_ms)
{
    char name[256], ts[32];
    /* Kubernetes names events <object>.<hex time>; here the time and a hash of what is said,
     * so that two things said of one object in the same round (a Deployment scaling one
     * ReplicaSet up and another down) are two events. The same thing said twice in one
     * millisecond is one. */
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = reason; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    for (const char *p = message; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    if (drv_fmt(name, sizeof(name), "%.200s.%llx%04x", ctrl_meta(obj, "name"),
                (unsigned long long)now_ms, (unsigned)(h & 0xffff)) != DRV_OK) {
        drv_log_warn("controllers: event not recorded: name too long", "reason=%s", reason);
        return;
    }
    drv_ctrl_time_format(now_ms, ts, sizeof(ts));
    const char *ns = ctrl_meta(obj, "namespace");
    cJSON *ev = cJSON_CreateObject(), *meta = cJSON_CreateObject(), *io = cJSON_CreateObject(),
          *src = cJSON_CreateObject();
    bool ok = ev && meta && io && src;
    if (ok) {
        cJSON_AddItemToObject(ev, "metadata", meta);
        cJSON_AddItemToObject(ev, "involvedObject", io);
        cJSON_AddItemToObject(ev, "source", src);
    } else {
        cJSON_Delete(meta);
        cJSON_Delete(io);
        cJSON_Delete(src);
    }
    ok = ok && cJSON_AddStringToObject(ev, "apiVersion", "v1") &&
         cJSON_AddStringToObject(ev, "kind", "Event") &&
         cJSON_AddStringToObject(meta, "name", name) &&
         cJSON_AddStringToObject(meta, "namespace", *ns ? ns : "default") &&
         cJSON_AddStringToObject(io, "kind", drv_kind_name(kind)) &&
         cJSON_AddStringToObject(io, "apiVersion", drv_kind_api_version(kind)) &&
         cJSON_AddStringToObject(io, "name", ctrl_meta(obj, "name")) &&
         cJSON_AddStringToObject(io, "uid", ctrl_meta(obj, "uid")) &&
         (!*ns || cJSON_AddStringToObject(io, "namespace", ns)) &&
         cJSON_AddStringToObject(ev, "reason", reason) &&
         cJSON_AddStringToObject(ev, "message", message) &&
         cJSON_AddStringToObject(ev, "type", type) &&
         cJSON_AddStringToObject(src, "component", component) &&
         cJSON_AddStringToObject(ev, "firstTimestamp", ts) &&
         cJSON_AddStringToObject(ev, "lastTimestamp", ts) &&
         cJSON_AddNumberToObject(ev, "count", 1);
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = ok ? drv_model_normalize(ev, NULL) : DRV_ERR_NOMEM;
    if (r == DRV_OK)
        r = drv_hstore_create(s, DRV_KIND_EVENT, ev, &e);
    if (r != DRV_OK && r != DRV_ERR_EXISTS) {
        char q1[128], q2[300];
        drv_log_warn("event not recorded", "reason=%s object=%s error=%s", reason,
                     drv_log_quote(ctrl_meta(obj, "name"), q1, sizeof(q1)),
                     drv_log_quote(e.code ? drv_error_msg(&e) : drv_strerror(r), q2, sizeof(q2)));
    }
    cJSON_Delete(ev);
}

bool ctrl_pod_finished(const cJSON *pod)
{
    const char *ph = drv_json_str(drv_json_get(pod, "status"), "phase");
    return ph && (!strcmp(ph, "Failed") || !strcmp(ph, "Succeeded"));
}

static int deletion_cmp(const void *a, const void *b)
{
    const cJSON *pa = *(const cJSON *const *)a, *pb = *(const cJSON *const *)b;
    bool ra = drv_ctrl_pod_ready(pa), rb = drv_ctrl_pod_ready(pb);
    if (ra != rb)
        return ra ? 1 : -1;
    int c = strcmp(ctrl_meta(pb, "creationTimestamp"), ctrl_meta(pa, "creationTimestamp"));
    if (c)
        return c;
    return strcmp(ctrl_meta(pb, "name"), ctrl_meta(pa, "name"));
}

void ctrl_sort_for_deletion(const cJSON **pods, size_t n)
{
    if (n > 1)
        qsort(pods, n, sizeof(*pods), deletion_cmp);
}

/* ---- scheduling ---- */

/* The scheduling queue: higher spec.priority first (kube-scheduler's PrioritySort), then the
 * older pod. */
static int pending_cmp(const void *a, const void *b)
{
    const cJSON *pa = *(const cJSON *const *)a, *pb = *(const cJSON *const *)b;
    int64_t qa = drv_json_int_or(drv_json_get(pa, "spec"), "priority", 0),
            qb = drv_json_int_or(drv_json_get(pb, "spec"), "priority", 0);
    if (qa != qb)
        return qa > qb ? -1 : 1;
    int c = strcmp(ctrl_meta(pa, "creationTimestamp"), ctrl_meta(pb, "creationTimestamp"));
    if (!c)
        c = strcmp(ctrl_meta(pa, "namespace"), ctrl_meta(pb, "namespace"));
    return c ? c : strcmp(ctrl_meta(pa, "name"), ctrl_meta(pb, "name"));
}

static drv_err_t mark_unschedulable(drv_hstore_t *s, const cJSON *pod, const char *why,
                                    int64_t now_ms, drv_error_t *err)
{
    const cJSON *old = ctrl_condition(pod, "PodScheduled");
    const char *om = drv_json_str(old, "message");
    if (om && !strcmp(om, why))
        return DRV_OK; /* said already: no rewrite on every round */
    const cJSON *ost = drv_json_get(pod, "status");
    cJSON *st = cJSON_IsObject(ost) ? cJSON_Duplicate(ost, true) : cJSON_CreateObject();
    cJSON *conds = cJSON_CreateArray();
    cJSON *c = ctrl_make_condition(old, "PodScheduled", "False", "Unschedulable", why, now_ms);
    if (!st || !conds || !c) {
        cJSON_Delete(st);
        cJSON_Delete(conds);
        cJSON_Delete(c);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "pod status");
    }
    bool ok = true;
    const cJSON *oc;
    cJSON_ArrayForEach(oc, drv_json_get(st, "conditions"))
    {
        const char *t = drv_json_str(oc, "type");
        if (!t || strcmp(t, "PodScheduled")) {
            cJSON *dup = cJSON_Duplicate(oc, true);
            ok = ok && dup && cJSON_AddItemToArray(conds, dup);
        }
    }
    cJSON_AddItemToArray(conds, c);
    ok = ctrl_set(st, "conditions", conds) && ok &&
         (drv_json_get(st, "phase") || cJSON_AddStringToObject(st, "phase", "Pending"));
    if (!ok) {
        cJSON_Delete(st);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "pod status");
    }
    ctrl_event(s, pod, DRV_KIND_POD, "Warning", "FailedScheduling", why, "drover-scheduler",
               now_ms);
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_update_status(s, DRV_KIND_POD, ctrl_meta(pod, "namespace"),
                                           ctrl_meta(pod, "name"), st, NULL, &e);
    if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, e.sys_errno, "pod %s status: %s", ctrl_meta(pod, "name"),
                             drv_error_msg(&e));
    return DRV_OK;
}

const char *const DRV_CTRL_PLATFORMS_PENDING[] = {"(pending)", NULL};

drv_err_t drv_ctrl_schedule(drv_hstore_t *s, drv_ctrl_platforms_fn platforms, void *ctx,
                            int64_t now_ms, size_t *bound, drv_error_t *err)
{
    cJSON *nodes = NULL, *own = NULL;
    const cJSON *pods = NULL;
    drv_sched_cache_t cache;
    drv_sched_cache_init(&cache);
    size_t nbound = 0, npending = 0;
    const cJSON **pending = NULL;
    /* The round's shared listing (parsed once for every controller); a pod is copied when it
     * is bound. The volume rule reads the pods bound earlier in the pass from the list
     * itself, so with claims about the pass works on a list of its own, bound in place. */
    drv_err_t r = drv_hstore_list_shared(s, DRV_KIND_POD, &pods, err);
    const cJSON *p;
    cJSON_ArrayForEach(p, (r == DRV_OK ? pods : NULL))
    {
        const char *nn = drv_json_str(drv_json_get(p, "spec"), "nodeName");
        if ((!nn || !*nn) && drv_sched_pod_uses_claims(p)) {
            r = drv_hstore_list(s, DRV_KIND_POD, NULL, NULL, &own, NULL, err);
            pods = own;
            break;
        }
    }
    if (r == DRV_OK) {
        pending = calloc((size_t)cJSON_GetArraySize(pods) + 1, sizeof(*pending));
        if (!pending)
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "scheduling");
    }
    cJSON_ArrayForEach(p, (r == DRV_OK ? pods : NULL))
    {
        const char *nn = drv_json_str(drv_json_get(p, "spec"), "nodeName");
        if (!nn || !*nn)
            pending[npending++] = p;
    }
    /* The nodes and their usage only when there is something to place. */
    if (r == DRV_OK && npending)
        r = drv_hstore_list(s, DRV_KIND_NODE, NULL, NULL, &nodes, NULL, err);
    if (r == DRV_OK && npending)
        r = drv_sched_cache_set_nodes(&cache, nodes, err);
    cJSON_ArrayForEach(p, (r == DRV_OK && npending ? pods : NULL))
    {
        const char *nn = drv_json_str(drv_json_get(p, "spec"), "nodeName");
        if (nn && *nn && drv_sched_cache_add_pod(&cache, p, NULL) != DRV_OK)
            continue; /* unreadable requests: counted as nothing */
    }
    if (npending > 1)
        qsort(pending, npending, sizeof(*pending), pending_cmp);
    /* The volume rule (sched/volumes.h) reads claims and volumes: only when a pod has some. */
    cJSON *pvcs = NULL, *pvs = NULL, *classes = NULL;
    drv_sched_volctx_t vctx = {.nodes = nodes, .pods = pods};
    for (size_t i = 0; r == DRV_OK && i < npending && !pvcs; i++)
        if (drv_sched_pod_uses_claims(pending[i]) &&
            (r = drv_hstore_list(s, DRV_KIND_PVC, NULL, NULL, &pvcs, NULL, err)) == DRV_OK &&
            (r = drv_hstore_list(s, DRV_KIND_PV, NULL, NULL, &pvs, NULL, err)) == DRV_OK)
            r = drv_hstore_list(s, DRV_KIND_STORAGECLASS, NULL, NULL, &classes, NULL, err);
    vctx.pvcs = pvcs, vctx.pvs = pvs, vctx.classes = classes;
    for (size_t i = 0; r == DRV_OK && i < npending; i++) {
        /* Thousands to place: the hub's loop serves the API between two (the listing and the
         * node cache stay this pass's; a pod changed meanwhile fails its bind's version check
         * and waits for the next round). */
        if (i > 0 && (r = drv_hstore_batch_point(s, err)) != DRV_OK)
            break;
        const cJSON *pod = pending[i];
        char node[256], why[DRV_SCHED_REASON_MAX];
        const char *image = drv_json_str(
            cJSON_GetArrayItem(drv_json_get(drv_json_get(pod, "spec"), "containers"), 0), "image");
        const char *const *plats = platforms && image ? platforms(ctx, image) : NULL;
        if (plats == DRV_CTRL_PLATFORMS_PENDING)
            continue; /* its image's platforms are being looked up: a later round */
        drv_error_t e = DRV_ERROR_INIT;
        char pinned[256] = "";
        cJSON *pinned_pod = NULL; /* the pod held to its claims' node by a nodeSelector */
        if (pvcs && drv_sched_pod_uses_claims(pod)) {
            if (drv_sched_volumes_node(&vctx, pod, pinned, sizeof(pinned), why, sizeof(why)) !=
                DRV_OK) {
                r = mark_unschedulable(s, pod, why, now_ms, err);
                continue;
            }
            pinned_pod = pinned[0] ? cJSON_Duplicate(pod, true) : NULL;
            cJSON *sel =
                pinned_pod ? drv_json_get(drv_json_get(pinned_pod, "spec"), "nodeSelector") : NULL;
            if (pinned_pod && !sel)
                sel = cJSON_AddObjectToObject(drv_json_get(pinned_pod, "spec"), "nodeSelector");
            if (pinned_pod && !ctrl_set(sel, "kubernetes.io/hostname", cJSON_CreateString(pinned)))
                r = drv_error_set(err, DRV_ERR_NOMEM, 0, "scheduling");
        }
        drv_err_t pr = r != DRV_OK
                           ? r
                           : drv_sched_place_cached(&cache, pinned_pod ? pinned_pod : pod, plats,
                                                    node, sizeof(node), why, sizeof(why), &e);
        cJSON_Delete(pinned_pod);
        if (r != DRV_OK)
            break;
        if (pr == DRV_OK && pvcs && drv_sched_pod_uses_claims(pod)) {
            /* The claims are bound (volumes made) on the node before the pod is. */
            drv_error_t be = DRV_ERROR_INIT;
            if (drv_ctrl_pvc_bind(s, &vctx, pod, node, now_ms, &be) != DRV_OK) {
                r = mark_unschedulable(s, pod, drv_error_msg(&be), now_ms, err);
                continue;
            }
        }
        if (pr == DRV_ERR_NOTFOUND) {
            /* Say which platforms the image has when that is what kept it off the nodes. */
            size_t wl = strlen(why);
            if (plats && strstr(why, "image's platforms") && wl + 16 < sizeof(why)) {
                int n = snprintf(why + wl, sizeof(why) - wl, " The image %.200s offers", image);
                for (size_t k = 0; n > 0 && plats[k]; k++) {
                    wl = strlen(why);
                    n = snprintf(why + wl, sizeof(why) - wl, "%s %s", k ? "," : "", plats[k]);
                }
                wl = strlen(why);
                if (wl + 1 < sizeof(why))
                    drv_fmt_cut(why + wl, sizeof(why) - wl, ".");
            }
            r = mark_unschedulable(s, pod, why, now_ms, err);
            continue;
        }
        if (pr != DRV_OK) {
            /* A pod the scheduler cannot read is reported on the pod, not fatal to the rest. */
            r = mark_unschedulable(s, pod, drv_error_msg(&e), now_ms, err);
            continue;
        }
        /* own: bound in place (the volume rule reads it); else a copy of the shared pod. */
        cJSON *bind = own ? (cJSON *)pod : cJSON_Duplicate(pod, true);
        if (!bind ||
            !ctrl_set((cJSON *)drv_json_get(bind, "spec"), "nodeName", cJSON_CreateString(node))) {
            if (bind != pod)
                cJSON_Delete(bind);
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "binding");
            break;
        }
        pr = drv_hstore_update(s, DRV_KIND_POD, bind, &e);
        if (pr == DRV_OK)
            r = drv_sched_cache_add_pod(&cache, bind, err);
        if (pr == DRV_OK) {
            char msg[600];
            drv_fmt_cut(msg, sizeof(msg), "Successfully assigned %s/%s to %s",
                        ctrl_meta(bind, "namespace"), ctrl_meta(bind, "name"), node);
            ctrl_event(s, bind, DRV_KIND_POD, "Normal", "Scheduled", msg, "drover-scheduler",
                       now_ms);
            nbound++;
        }
        if (bind != pod)
            cJSON_Delete(bind);
        if (pr == DRV_ERR_NOTFOUND || pr == DRV_ERR_CONFLICT)
            continue; /* deleted or changed since listed: the next round sees it */
        if (pr != DRV_OK) {
            r = drv_error_set(err, pr, e.sys_errno, "bind pod %s to %s: %s", ctrl_meta(pod, "name"),
                              node, drv_error_msg(&e));
            break;
        }
    }
    free(pending);
    cJSON_Delete(pvcs);
    cJSON_Delete(pvs);
    cJSON_Delete(classes);
    drv_sched_cache_free(&cache);
    cJSON_Delete(nodes);
    cJSON_Delete(own);
    if (r == DRV_OK && bound)
        *bound = nbound;
    return r;
}

drv_err_t drv_ctrl_reconcile_all(drv_hstore_t *s, const drv_ctrl_nodes_opts_t *o,
                                 drv_ctrl_platforms_fn platforms, void *ctx, int64_t now_ms,
                                 drv_error_t *err)
{
    /* Every controller runs even if one before it failed; the first error is returned. */
    drv_error_t e[8] = {DRV_ERROR_INIT, DRV_ERROR_INIT, DRV_ERROR_INIT, DRV_ERROR_INIT,
                        DRV_ERROR_INIT, DRV_ERROR_INIT, DRV_ERROR_INIT, DRV_ERROR_INIT};
    drv_err_t r[8];
    int64_t t[9];
    size_t bound = 0;
    /* Between two controllers, the loop may be served (drv_hstore_batch_point): on a big
     * fleet each of them reads every pod, and the API should not wait for all of them. */
    drv_error_t ye = DRV_ERROR_INIT;
    drv_err_t yr = DRV_OK; /* a failed commit there: the round's error (its writes are lost) */
    t[0] = drv_now_ms();
    r[0] = drv_ctrl_namespaces_reconcile(s, &e[0]);
    t[1] = drv_now_ms();
    r[1] = drv_ctrl_nodes_reconcile(s, o, now_ms, NULL, &e[1]);
    yr = drv_hstore_batch_point(s, &ye); /* failed: the writes after it commit singly */
    t[2] = drv_now_ms();
    r[2] = drv_ctrl_deployments_reconcile(s, now_ms, &e[2]);
    yr = yr == DRV_OK ? drv_hstore_batch_point(s, &ye) : yr;
    t[3] = drv_now_ms();
    r[3] = drv_ctrl_daemonsets_reconcile(s, now_ms, &e[3]);
    t[4] = drv_now_ms();
    r[4] = drv_ctrl_statefulsets_reconcile(s, now_ms, &e[4]);
    yr = yr == DRV_OK ? drv_hstore_batch_point(s, &ye) : yr;
    t[5] = drv_now_ms();
    r[5] = drv_ctrl_schedule(s, platforms, ctx, now_ms, &bound, &e[5]);
    yr = yr == DRV_OK ? drv_hstore_batch_point(s, &ye) : yr;
    t[6] = drv_now_ms();
    /* After the pods changed: the Services' endpoints follow them in the same round. */
    r[6] = drv_ctrl_endpoints_reconcile(s, now_ms, &e[6]);
    t[7] = drv_now_ms();
    /* Claims' and volumes' phases, after the scheduler bound some. */
    r[7] = drv_ctrl_pvcs_reconcile(s, now_ms, &e[7]);
    t[8] = drv_now_ms();
    if (t[8] - t[0] >= 10) /* where a long round went, for profiles (--log-level debug) */
        drv_log_debug("controllers",
                      "ms=%lld namespaces=%lld nodes=%lld deployments=%lld "
                      "daemonsets=%lld statefulsets=%lld schedule=%lld bound=%zu endpoints=%lld "
                      "pvcs=%lld",
                      (long long)(t[8] - t[0]), (long long)(t[1] - t[0]), (long long)(t[2] - t[1]),
                      (long long)(t[3] - t[2]), (long long)(t[4] - t[3]), (long long)(t[5] - t[4]),
                      (long long)(t[6] - t[5]), bound, (long long)(t[7] - t[6]),
                      (long long)(t[8] - t[7]));
    for (int i = 0; i < 8; i++)
        if (r[i] != DRV_OK)
            return drv_error_set(err, r[i], e[i].sys_errno, "%s", drv_error_msg(&e[i]));
    if (yr != DRV_OK)
        return drv_error_set(err, yr, ye.sys_errno, "%s", drv_error_msg(&ye));
    return DRV_OK;
}
