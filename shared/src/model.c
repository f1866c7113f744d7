/* The resource model: kinds, the validation helpers, object metadata, and the kinds without
 * pod templates (ConfigMap, Secret, Service, Node, Event). Pods and workloads are in
 * model_pod.c. Every problem is recorded with its field path; validation goes on after a
 * problem so that one run reports all of them. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "drover/json.h"
#include "drover/base64.h"
#include "drover/fmt.h"
#include "drover/names.h"
#include "model_int.h"

/* Kubernetes' object size limit, applied to ConfigMap and Secret data. */
#define DATA_MAX_BYTES (1024 * 1024)
#define ANNOTATIONS_MAX_BYTES (256 * 1024)

/* Every kind once, in the order drv_kind_parse() tries them: the enum's name, kind,
 * apiVersion, plural, kubectl's short name ("": none) and whether it is namespaced. The singular
 * ("pod") is the kind in lower case, which the case-insensitive match of the kind accepts. */
#define DRV_KINDS(X)                                                                               \
    X(POD, "Pod", "v1", "pods", "po", true)                                                        \
    X(DEPLOYMENT, "Deployment", "apps/v1", "deployments", "deploy", true)                          \
    X(DAEMONSET, "DaemonSet", "apps/v1", "daemonsets", "ds", true)                                 \
    X(CONFIGMAP, "ConfigMap", "v1", "configmaps", "cm", true)                                      \
    X(SECRET, "Secret", "v1", "secrets", "", true)                                                 \
    X(SERVICE, "Service", "v1", "services", "svc", true)                                           \
    X(NODE, "Node", "v1", "nodes", "no", false)                                                    \
    X(EVENT, "Event", "v1", "events", "ev", true)                                                  \
    X(HPA, "HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers", "hpa", true)   \
    X(NAMESPACE, "Namespace", "v1", "namespaces", "ns", false)                                     \
    X(REPLICASET, "ReplicaSet", "apps/v1", "replicasets", "rs", true)                              \
    /* Kubernetes gives ControllerRevisions no short name. */                                      \
    X(CONTROLLERREVISION, "ControllerRevision", "apps/v1", "controllerrevisions", "", true)        \
    X(ENDPOINTS, "Endpoints", "v1", "endpoints", "ep", true)                                       \
    /* Kubernetes gives EndpointSlices no short name. */                                           \
    X(ENDPOINTSLICE, "EndpointSlice", "discovery.k8s.io/v1", "endpointslices", "", true)           \
    X(NETWORKPOLICY, "NetworkPolicy", "networking.k8s.io/v1", "networkpolicies", "netpol", true)   \
    X(PVC, "PersistentVolumeClaim", "v1", "persistentvolumeclaims", "pvc", true)                   \
    X(PV, "PersistentVolume", "v1", "persistentvolumes", "pv", false)                              \
    X(STORAGECLASS, "StorageClass", "storage.k8s.io/v1", "storageclasses", "sc", false)            \
    X(STATEFULSET, "StatefulSet", "apps/v1", "statefulsets", "sts", true)                          \
    X(PRIORITYCLASS, "PriorityClass", "scheduling.k8s.io/v1", "priorityclasses", "pc", false)      \
    X(SERVICEACCOUNT, "ServiceAccount", "v1", "serviceaccounts", "sa", true)                       \
    X(ROLE, "Role", "rbac.authorization.k8s.io/v1", "roles", "", true)                             \
    X(ROLEBINDING, "RoleBinding", "rbac.authorization.k8s.io/v1", "rolebindings", "", true)        \
    X(CLUSTERROLE, "ClusterRole", "rbac.authorization.k8s.io/v1", "clusterroles", "", false)       \
    X(CLUSTERROLEBINDING, "ClusterRoleBinding", "rbac.authorization.k8s.io/v1",                    \
      "clusterrolebindings", "", false)                                                            \
    X(JOB, "Job", "batch/v1", "jobs", "", true)                                                    \
    X(CRONJOB, "CronJob", "batch/v1", "cronjobs", "cj", true)

/* The table holds offsets into one pool of its strings, not pointers: pointers in a position-
 * independent program are fixed up at every start (a relocation of 24 bytes each on arm64) and
 * land on pages written then; this way it is read-only data (issue 19: the device agent). */
static const struct kind_strs {
#define X(k, name, api, plural, short1, ns)                                                        \
    char k##_name[sizeof(name)], k##_api[sizeof(api)], k##_plural[sizeof(plural)],                 \
        k##_short[sizeof(short1)];
    DRV_KINDS(X)
#undef X
} kind_strs = {
#define X(k, name, api, plural, short1, ns) name, api, plural, short1,
    DRV_KINDS(X)
#undef X
};

static const struct kind_info {
    drv_kind_t kind;
    bool namespaced;
    uint16_t name, api, plural, short1; /* offsets into kind_strs */
} kinds[] = {
#define X(k, name, api, plural, short1, ns)                                                        \
    {DRV_KIND_##k,                                                                                 \
     ns,                                                                                           \
     offsetof(struct kind_strs, k##_name),                                                         \
     offsetof(struct kind_strs, k##_api),                                                          \
     offsetof(struct kind_strs, k##_plural),                                                       \
     offsetof(struct kind_strs, k##_short)},
    DRV_KINDS(X)
#undef X
};
#define KSTR(off) ((const char *)&kind_strs + (off))
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static const struct kind_info *info_of(drv_kind_t k)
{
    for (size_t i = 0; i < NKINDS; i++)
        if (kinds[i].kind == k)
            return &kinds[i];
    return NULL;
}

const char *drv_kind_name(drv_kind_t k)
{
    const struct kind_info *i = info_of(k);
    return i ? KSTR(i->name) : "";
}

const char *drv_kind_api_version(drv_kind_t k)
{
    const struct kind_info *i = info_of(k);
    return i ? KSTR(i->api) : "";
}

const char *drv_kind_plural(drv_kind_t k)
{
    const struct kind_info *i = info_of(k);
    return i ? KSTR(i->plural) : "";
}

bool drv_kind_namespaced(drv_kind_t k)
{
    const struct kind_info *i = info_of(k);
    return i && i->namespaced;
}

drv_kind_t drv_kind_parse(const char *s)
{
    if (!s)
        return DRV_KIND_UNKNOWN;
    for (size_t i = 0; i < NKINDS; i++) {
        const struct kind_info *k = &kinds[i];
        if (!strcasecmp(s, KSTR(k->name)) || !strcasecmp(s, KSTR(k->plural)) ||
            (*KSTR(k->short1) && !strcasecmp(s, KSTR(k->short1))))
            return k->kind;
    }
    return DRV_KIND_UNKNOWN;
}

drv_kind_t drv_model_kind(const cJSON *obj)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(obj, "kind");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, "apiVersion");
    if (!cJSON_IsString(k) || !cJSON_IsString(a))
        return DRV_KIND_UNKNOWN;
    for (size_t i = 0; i < NKINDS; i++)
        if (!strcmp(k->valuestring, KSTR(kinds[i].name)) &&
            !strcmp(a->valuestring, KSTR(kinds[i].api)))
            return kinds[i].kind;
    return DRV_KIND_UNKNOWN;
}

/* ---- diagnostics ---- */

void drv_diags_free(drv_diags_t *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->count; i++) {
        free(d->items[i].path);
        free(d->items[i].msg);
    }
    free(d->items);
    memset(d, 0, sizeof(*d));
}

char *drv_diags_format(const drv_diags_t *d, const char *prefix)
{
    size_t n = 1;
    const char *pre = prefix ? prefix : "";
    for (size_t i = 0; i < d->count; i++)
        n += strlen(pre) + strlen(d->items[i].path) + strlen(d->items[i].msg) + 4;
    n += strlen(pre) + 64; /* the "... and N more problems" line */
    char *out = malloc(n);
    if (!out)
        return NULL;
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < d->count; i++) {
        const drv_diag_t *g = &d->items[i];
        int w = snprintf(out + o, n - o, "%s%s%s%s\n", pre, g->path, *g->path ? ": " : "", g->msg);
        if (w > 0)
            o += (size_t)w;
    }
    if (d->dropped)
        drv_fmt_cut(out + o, n - o, "%s... and %zu more problems\n", pre, d->dropped);
    return out;
}

static void diag_add(vctx_t *c, const char *msg)
{
    c->problems++;
    drv_diags_t *d = c->diags;
    if (!d)
        return;
    if (d->count >= DRV_DIAGS_MAX) {
        d->dropped++;
        return;
    }
    if (d->count == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 8;
        drv_diag_t *n = realloc(d->items, ncap * sizeof(*n));
        if (!n) {
            c->nomem = true;
            return;
        }
        d->items = n;
        d->cap = ncap;
    }
    char *p = strdup(c->path), *m = strdup(msg);
    if (!p || !m) {
        free(p);
        free(m);
        c->nomem = true;
        return;
    }
    d->items[d->count].path = p;
    d->items[d->count].msg = m;
    d->count++;
}

/* ---- paths ---- */

/* Appends text to the path; a path that would overflow is cut (deep paths are rare and a
 * cut one still points the way). Returns the old length for v_pop. */
static size_t push_text(vctx_t *c, const char *a, const char *b, const char *z)
{
    size_t old = c->plen;
    int w = snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "%s%s%s", a, b, z);
    if (w < 0 || (size_t)w >= sizeof(c->path) - c->plen)
        c->plen = sizeof(c->path) - 1;
    else
        c->plen += (size_t)w;
    c->path[c->plen] = '\0';
    return old;
}

size_t v_push_key(vctx_t *c, const char *key)
{
    return push_text(c, c->plen ? "." : "", key, "");
}

size_t v_push_index(vctx_t *c, size_t i)
{
    char num[24];
    drv_fmt_cut(num, sizeof(num), "%zu", i); /* a field path, for people: 20 digits fit */
    return push_text(c, "[", num, "]");
}

size_t v_push_mapkey(vctx_t *c, const char *key)
{
    return push_text(c, "[", key, "]");
}

void v_pop(vctx_t *c, size_t old)
{
    c->plen = old;
    c->path[old] = '\0';
}

__attribute__((format(printf, 2, 0))) static void vfail(vctx_t *c, const char *fmt, va_list ap)
{
    char msg[768];
    drv_vfmt_cut(msg, sizeof(msg), fmt, ap);
    diag_add(c, msg);
}

void v_fail(vctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(c, fmt, ap);
    va_end(ap);
}

void v_failk(vctx_t *c, const char *key, const char *fmt, ...)
{
    size_t old = v_push_key(c, key);
    va_list ap;
    va_start(ap, fmt);
    vfail(c, fmt, ap);
    va_end(ap);
    v_pop(c, old);
}

/* ---- field helpers ---- */

bool v_in_names(const char *names, const char *s)
{
    for (const char *n = names; n && *n; n += strlen(n) + 1)
        if (!strcmp(n, s))
            return true;
    return false;
}

static const char *type_name(const cJSON *n)
{
    if (cJSON_IsString(n))
        return "string";
    if (cJSON_IsNumber(n))
        return "number";
    if (cJSON_IsBool(n))
        return "boolean";
    if (cJSON_IsNull(n))
        return "null";
    if (cJSON_IsArray(n))
        return "array";
    if (cJSON_IsObject(n))
        return "object";
    return "unknown";
}

void v_fields(vctx_t *c, cJSON *obj, const char *known, const char *ignored,
              const char *unsupported)
{
    cJSON *it = obj ? obj->child : NULL;
    while (it) {
        cJSON *next = it->next;
        const char *k = it->string ? it->string : "";
        if (v_in_names(known, k)) {
            /* An explicit null means "not set", as in Kubernetes. */
            if (cJSON_IsNull(it))
                cJSON_Delete(cJSON_DetachItemViaPointer(obj, it));
        } else if (v_in_names(ignored, k)) {
            cJSON_Delete(cJSON_DetachItemViaPointer(obj, it));
        } else if (v_in_names(unsupported, k)) {
            v_failk(c, k, "not supported by Drover");
        } else {
            v_failk(c, k, "unknown field");
        }
        it = next;
    }
}

static cJSON *typed(vctx_t *c, cJSON *parent, const char *key, bool required,
                    cJSON_bool (*is)(const cJSON *), const char *want)
{
    cJSON *m = drv_json_get(parent, key);
    if (!m || cJSON_IsNull(m)) {
        if (required)
            v_failk(c, key, "required");
        return NULL;
    }
    if (!is(m)) {
        v_failk(c, key, "must be %s %s, not %s", strchr("aeiou", want[0]) ? "an" : "a", want,
                type_name(m));
        return NULL;
    }
    return m;
}

cJSON *v_obj(vctx_t *c, cJSON *parent, const char *key, bool required)
{
    return typed(c, parent, key, required, cJSON_IsObject, "object");
}

cJSON *v_arr(vctx_t *c, cJSON *parent, const char *key, bool required)
{
    return typed(c, parent, key, required, cJSON_IsArray, "array");
}

const char *v_str(vctx_t *c, cJSON *parent, const char *key, bool required)
{
    cJSON *m = typed(c, parent, key, required, cJSON_IsString, "string");
    if (m && required && !*m->valuestring) {
        v_failk(c, key, "required");
        return NULL;
    }
    return m ? m->valuestring : NULL;
}

bool v_int(vctx_t *c, cJSON *parent, const char *key, bool required, int64_t min, int64_t max,
           int64_t *out)
{
    cJSON *m = typed(c, parent, key, required, cJSON_IsNumber, "integer");
    if (!m)
        return false;
    double d = m->valuedouble;
    if (!isfinite(d) || d != floor(d)) {
        v_failk(c, key, "must be an integer");
        return false;
    }
    if (d < (double)min || d > (double)max) {
        v_failk(c, key, "must be between %lld and %lld, not %.0f", (long long)min, (long long)max,
                d);
        return false;
    }
    if (out)
        *out = (int64_t)d;
    return true;
}

bool v_bool(vctx_t *c, cJSON *parent, const char *key, bool *out)
{
    cJSON *m = typed(c, parent, key, false, cJSON_IsBool, "boolean");
    if (m && out)
        *out = cJSON_IsTrue(m);
    return m != NULL;
}

/* A name list's entry as a value: V_EMPTY_OK's entry stands for the empty string. */
static const char *enum_value(const char *n)
{
    return n[0] == '\1' && !n[1] ? "" : n;
}

const char *v_enum(vctx_t *c, cJSON *parent, const char *key, bool required, const char *values)
{
    const char *s = v_str(c, parent, key, required);
    if (!s)
        return NULL;
    for (const char *n = values; *n; n += strlen(n) + 1)
        if (!strcmp(enum_value(n), s))
            return s;
    char allowed[256] = "";
    size_t o = 0;
    for (const char *n = values; *n && o < sizeof(allowed); n += strlen(n) + 1) {
        int w =
            snprintf(allowed + o, sizeof(allowed) - o, "%s\"%s\"", o ? ", " : "", enum_value(n));
        if (w > 0)
            o += (size_t)w;
    }
    v_failk(c, key, "unsupported value \"%s\": must be one of %s", s, allowed);
    return NULL;
}

void v_str_list(vctx_t *c, cJSON *parent, const char *key, bool nonempty)
{
    cJSON *a = v_arr(c, parent, key, nonempty);
    if (!a)
        return;
    size_t old = v_push_key(c, key);
    if (nonempty && cJSON_GetArraySize(a) == 0)
        v_fail(c, "must have at least one element");
    size_t i = 0;
    for (cJSON *e = a->child; e; e = e->next, i++) {
        if (!cJSON_IsString(e)) {
            size_t o2 = v_push_index(c, i);
            v_fail(c, "must be a string, not %s", type_name(e));
            v_pop(c, o2);
        }
    }
    v_pop(c, old);
}

void v_str_map(vctx_t *c, cJSON *parent, const char *key, vname_fn keyrule, vname_fn valrule)
{
    cJSON *m = v_obj(c, parent, key, false);
    if (!m)
        return;
    size_t old = v_push_key(c, key);
    for (cJSON *e = m->child; e; e = e->next) {
        size_t o2 = v_push_mapkey(c, e->string);
        char why[512];
        if (keyrule && !keyrule(e->string, why, sizeof(why)))
            v_fail(c, "invalid key: %s", why);
        if (!cJSON_IsString(e))
            v_fail(c, "must be a string, not %s", type_name(e));
        else if (valrule && !valrule(e->valuestring, why, sizeof(why)))
            v_fail(c, "invalid value \"%.64s\": %s", e->valuestring, why);
        v_pop(c, o2);
    }
    v_pop(c, old);
}

void v_name(vctx_t *c, cJSON *parent, const char *key, bool required, vname_fn rule)
{
    const char *s = v_str(c, parent, key, required);
    char why[512];
    if (s && !rule(s, why, sizeof(why)))
        v_failk(c, key, "invalid value \"%.64s\": %s", s, why);
}

const char *v_abspath(vctx_t *c, cJSON *parent, const char *key, bool required)
{
    const char *s = v_str(c, parent, key, required);
    if (s && s[0] != '/') {
        v_failk(c, key, "must be an absolute path");
        return NULL;
    }
    return s;
}

static void add_or_fail(vctx_t *c, cJSON *obj, const char *key, cJSON *item)
{
    if (!item || !cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        c->nomem = true;
    }
}

void v_default_str(vctx_t *c, cJSON *obj, const char *key, const char *value)
{
    if (obj && !drv_json_get(obj, key))
        add_or_fail(c, obj, key, cJSON_CreateString(value));
}

void v_default_int(vctx_t *c, cJSON *obj, const char *key, int64_t value)
{
    if (obj && !drv_json_get(obj, key))
        add_or_fail(c, obj, key, cJSON_CreateNumber((double)value));
}

void v_default_bool(vctx_t *c, cJSON *obj, const char *key, bool value)
{
    if (obj && !drv_json_get(obj, key))
        add_or_fail(c, obj, key, cJSON_CreateBool(value));
}

void v_set_str(vctx_t *c, cJSON *obj, const char *key, const char *value)
{
    cJSON *n = cJSON_CreateString(value);
    if (!n || !cJSON_ReplaceItemInObjectCaseSensitive(obj, key, n)) {
        cJSON_Delete(n);
        c->nomem = true;
    }
}

bool v_int_or_string(vctx_t *c, cJSON *parent, const char *key, bool required, vios_kind_t kind)
{
    cJSON *m = drv_json_get(parent, key);
    if (!m || cJSON_IsNull(m)) {
        if (required)
            v_failk(c, key, "required");
        return false;
    }
    if (cJSON_IsNumber(m)) {
        int64_t max = kind == VIOS_PORT ? 65535 : INT32_MAX;
        return v_int(c, parent, key, true, kind == VIOS_PORT ? 1 : 0, max, NULL);
    }
    if (!cJSON_IsString(m)) {
        v_failk(c, key, "must be an integer or a string, not %s", type_name(m));
        return false;
    }
    const char *s = m->valuestring;
    char why[512];
    if (kind == VIOS_PORT) {
        if (!drv_name_port_name(s, why, sizeof(why))) {
            v_failk(c, key, "invalid port name \"%.32s\": %s", s, why);
            return false;
        }
        return true;
    }
    /* "25%": digits then a percent sign; the value is checked by the caller's context. */
    size_t n = strlen(s);
    bool ok = n >= 2 && n <= 4 && s[n - 1] == '%';
    for (size_t i = 0; ok && i + 1 < n; i++)
        ok = isdigit((unsigned char)s[i]);
    if (!ok || strtol(s, NULL, 10) > 100) {
        v_failk(c, key,
                "invalid value \"%.32s\": must be an integer or a percentage from 0%% to 100%%", s);
        return false;
    }
    return true;
}

/* ---- metadata ---- */

static const char meta_known[] = "name\0"
                                 "generateName\0"
                                 "namespace\0"
                                 "labels\0"
                                 "annotations\0"
                                 "ownerReferences\0"
                                 "uid\0"
                                 "resourceVersion\0"
                                 "generation\0"
                                 "creationTimestamp\0";
static const char meta_ignored[] = "managedFields\0"
                                   "selfLink\0"
                                   "deletionTimestamp\0"
                                   "deletionGracePeriodSeconds\0";
static const char meta_unsupported[] = "finalizers\0";

static void v_owner_refs(vctx_t *c, cJSON *meta)
{
    static const char known[] = "apiVersion\0"
                                "kind\0"
                                "name\0"
                                "uid\0"
                                "controller\0"
                                "blockOwnerDeletion\0";
    cJSON *a = v_arr(c, meta, "ownerReferences", false);
    if (!a)
        return;
    size_t old = v_push_key(c, "ownerReferences"), i = 0;
    for (cJSON *e = a->child; e; e = e->next, i++) {
        size_t o2 = v_push_index(c, i);
        if (!cJSON_IsObject(e)) {
            v_fail(c, "must be an object");
        } else {
            v_fields(c, e, known, NULL, NULL);
            v_str(c, e, "apiVersion", true);
            v_str(c, e, "kind", true);
            v_str(c, e, "name", true);
            v_str(c, e, "uid", true);
            v_bool(c, e, "controller", NULL);
            v_bool(c, e, "blockOwnerDeletion", NULL);
        }
        v_pop(c, o2);
    }
    v_pop(c, old);
}

void v_object_meta(vctx_t *c, cJSON *meta, drv_kind_t kind, bool is_template)
{
    /* The hub's own finalizer of a claim in use (hub/ctrl/pvc.c), as a client sends it back. */
    const cJSON *fin = drv_json_get(meta, "finalizers");
    const cJSON *f0 = cJSON_GetArrayItem(fin, 0);
    if (kind == DRV_KIND_PVC && cJSON_GetArraySize(fin) == 1 && cJSON_IsString(f0) &&
        !strcmp(f0->valuestring, "kubernetes.io/pvc-protection"))
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "finalizers");
    v_fields(c, meta, meta_known, meta_ignored, meta_unsupported);
    const struct kind_info *ki = info_of(kind);
    /* Namespace names are DNS labels (they appear in DNS names of Services), as in
     * Kubernetes. */
    vname_fn rule = kind == DRV_KIND_SERVICE     ? drv_name_dns1035_label
                    : kind == DRV_KIND_NAMESPACE ? drv_name_dns_label
                                                 : drv_name_dns_subdomain;
    if (kind >= DRV_KIND_ROLE && kind <= DRV_KIND_CLUSTERROLEBINDING)
        rule = v_rbac_name;
    if (!is_template) {
        bool has_generate = drv_json_get(meta, "generateName") != NULL;
        v_name(c, meta, "name", !has_generate, rule);
        /* A Job's name is a label value of its pods (63); a CronJob's Jobs add 11 (52). */
        size_t name_max = kind == DRV_KIND_JOB ? 63 : kind == DRV_KIND_CRONJOB ? 52 : 0;
        const char *nm = drv_json_str(meta, "name");
        if (name_max && nm && strlen(nm) > name_max)
            v_failk(c, "name", "invalid value \"%.64s\": must be no more than %zu characters", nm,
                    name_max);
        const char *g = v_str(c, meta, "generateName", false);
        char why[512];
        /* generateName gets a 5-character suffix; the prefix must be valid on its own. */
        if (g && *g && !rule(g, why, sizeof(why)) && !(g[strlen(g) - 1] == '-'))
            v_failk(c, "generateName", "invalid value \"%.64s\": %s", g, why);
        if (ki && ki->namespaced) {
            v_name(c, meta, "namespace", false, drv_name_dns_label);
            v_default_str(c, meta, "namespace", "default");
        } else {
            cJSON_DeleteItemFromObjectCaseSensitive(meta, "namespace");
        }
    } else {
        /* A template's name and namespace come from its owner; Kubernetes ignores them. */
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "name");
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "namespace");
    }
    v_str_map(c, meta, "labels", drv_name_label_key, drv_name_label_value);
    v_str_map(c, meta, "annotations", drv_name_label_key, NULL);
    cJSON *ann = drv_json_get(meta, "annotations");
    if (cJSON_IsObject(ann)) {
        size_t total = 0;
        for (cJSON *e = ann->child; e; e = e->next)
            total += strlen(e->string) + (cJSON_IsString(e) ? strlen(e->valuestring) : 0);
        if (total > ANNOTATIONS_MAX_BYTES)
            v_failk(c, "annotations", "may not have more than %d bytes in total, has %zu",
                    ANNOTATIONS_MAX_BYTES, total);
    }
    v_owner_refs(c, meta);
    v_str(c, meta, "uid", false);
    v_str(c, meta, "resourceVersion", false);
    v_int(c, meta, "generation", false, 0, INT64_MAX / 2, NULL);
    v_str(c, meta, "creationTimestamp", false);
}

/* ---- ConfigMap and Secret ---- */

static size_t v_data_map(vctx_t *c, cJSON *obj, const char *key, bool base64, cJSON *other)
{
    cJSON *m = v_obj(c, obj, key, false);
    size_t total = 0;
    if (!m)
        return 0;
    size_t old = v_push_key(c, key);
    for (cJSON *e = m->child; e; e = e->next) {
        size_t o2 = v_push_mapkey(c, e->string);
        char why[512];
        if (!drv_name_config_key(e->string, why, sizeof(why)))
            v_fail(c, "invalid key: %s", why);
        if (other && drv_json_get(other, e->string))
            v_fail(c, "duplicate of key \"%s\" in %s", e->string,
                   other->string ? other->string : "");
        if (!cJSON_IsString(e)) {
            v_fail(c, "must be a string, not %s", type_name(e));
        } else if (base64) {
            unsigned char *raw = NULL;
            size_t rawlen = 0;
            drv_err_t r = drv_base64_decode(e->valuestring, strlen(e->valuestring), &raw, &rawlen);
            if (r == DRV_ERR_NOMEM)
                c->nomem = true;
            else if (r != DRV_OK)
                v_fail(c, "illegal base64 data");
            free(raw);
            total += rawlen;
        } else {
            total += strlen(e->valuestring);
        }
        v_pop(c, o2);
    }
    v_pop(c, old);
    return total;
}

static const char cm_known[] = "apiVersion\0"
                               "kind\0"
                               "metadata\0"
                               "data\0"
                               "binaryData\0"
                               "immutable\0";

void v_configmap(vctx_t *c, cJSON *obj)
{
    v_fields(c, obj, cm_known, NULL, NULL);
    size_t total = v_data_map(c, obj, "data", false, NULL);
    total += v_data_map(c, obj, "binaryData", true, drv_json_get(obj, "data"));
    v_bool(c, obj, "immutable", NULL);
    if (total > DATA_MAX_BYTES)
        v_fail(c, "data: too long: must have at most %d bytes, has %zu", DATA_MAX_BYTES, total);
}

/* Folds stringData into data (base64), stringData winning, as the API server does. */
static void fold_string_data(vctx_t *c, cJSON *obj)
{
    cJSON *sd = drv_json_get(obj, "stringData");
    if (!cJSON_IsObject(sd))
        return;
    cJSON *data = drv_json_get(obj, "data");
    if (!data) {
        data = cJSON_AddObjectToObject(obj, "data");
        if (!data) {
            c->nomem = true;
            return;
        }
    }
    for (cJSON *e = sd->child; e; e = e->next) {
        if (!cJSON_IsString(e))
            continue;
        char *enc = drv_base64_encode(e->valuestring, strlen(e->valuestring));
        cJSON *n = enc ? cJSON_CreateString(enc) : NULL;
        free(enc);
        if (!n) {
            c->nomem = true;
            return;
        }
        if (drv_json_get(data, e->string))
            cJSON_ReplaceItemInObjectCaseSensitive(data, e->string, n);
        else if (!cJSON_AddItemToObject(data, e->string, n)) {
            cJSON_Delete(n);
            c->nomem = true;
            return;
        }
    }
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "stringData");
}

void v_secret(vctx_t *c, cJSON *obj)
{
    static const char known[] = "apiVersion\0"
                                "kind\0"
                                "metadata\0"
                                "data\0"
                                "stringData\0"
                                "type\0"
                                "immutable\0"
                                "sealedData\0";
    v_fields(c, obj, known, NULL, NULL);
    /* The form a node receives (docs/PROTOCOL.md): the data sealed to its key, checked once
     * opened (drv_proto_secret_unseal). */
    const char *sealed = v_str(c, obj, "sealedData", false);
    if (sealed) {
        if (drv_json_get(obj, "data") || drv_json_get(obj, "stringData"))
            v_failk(c, "sealedData", "cannot be combined with data or stringData");
        else if (!*sealed || strlen(sealed) > (size_t)DATA_MAX_BYTES * 2)
            v_failk(c, "sealedData", "must be a sealed blob of at most %d bytes",
                    DATA_MAX_BYTES * 2);
        if (!v_str(c, obj, "type", false))
            v_default_str(c, obj, "type", "Opaque");
        return;
    }
    size_t total = v_data_map(c, obj, "data", true, NULL);
    total += v_data_map(c, obj, "stringData", false, NULL);
    v_bool(c, obj, "immutable", NULL);
    if (total > DATA_MAX_BYTES)
        v_fail(c, "data: too long: must have at most %d bytes, has %zu", DATA_MAX_BYTES, total);
    const char *type = v_str(c, obj, "type", false);
    if (!type || !*type) {
        cJSON_DeleteItemFromObjectCaseSensitive(obj, "type");
        v_default_str(c, obj, "type", "Opaque");
        type = "Opaque";
    }
    if (c->problems)
        return;
    fold_string_data(c, obj);
    cJSON *data = drv_json_get(obj, "data");
    static const struct {
        const char *type;
        const char *need[2];
    } reqs[] = {
        {"kubernetes.io/tls", {"tls.crt", "tls.key"}},
        {"kubernetes.io/dockerconfigjson", {".dockerconfigjson", NULL}},
        {"kubernetes.io/dockercfg", {".dockercfg", NULL}},
        {"kubernetes.io/ssh-auth", {"ssh-privatekey", NULL}},
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        if (strcmp(type, reqs[i].type))
            continue;
        for (int j = 0; j < 2 && reqs[i].need[j]; j++)
            if (!drv_json_get(data, reqs[i].need[j]))
                v_fail(c, "data[%s]: required for a Secret of type %s", reqs[i].need[j], type);
    }
    if (!strcmp(type, "kubernetes.io/basic-auth") && !drv_json_get(data, "username") &&
        !drv_json_get(data, "password"))
        v_fail(
            c,
            "data: a Secret of type kubernetes.io/basic-auth needs \"username\" or \"password\"");
    if (!strcmp(type, "kubernetes.io/service-account-token"))
        v_failk(c, "type", "unsupported value \"%s\": Drover has no service accounts", type);
}

/* ---- Service ---- */

/* Kubernetes' default and ceiling for sessionAffinityConfig.clientIP.timeoutSeconds. */
#define AFFINITY_TIMEOUT_DEFAULT 10800
#define AFFINITY_TIMEOUT_MAX 86400

/* parent[key] as an object, added when absent; NULL when parent is NULL or the member is of
 * another type (already recorded as a problem). */
static cJSON *obj_member(vctx_t *c, cJSON *parent, const char *key)
{
    if (!parent)
        return NULL;
    cJSON *m = drv_json_get(parent, key);
    if (!m && !(m = cJSON_AddObjectToObject(parent, key)))
        c->nomem = true;
    return cJSON_IsObject(m) ? m : NULL;
}

/* sessionAffinity None|ClientIP; sessionAffinityConfig validated, kept with ClientIP (its
 * timeout defaulted) and cleared under None, as Kubernetes defaults it. */
static void v_session_affinity(vctx_t *c, cJSON *spec)
{
    static const char affinities[] = "None\0"
                                     "ClientIP\0";
    static const char known[] = "clientIP\0";
    static const char cknown[] = "timeoutSeconds\0";
    v_enum(c, spec, "sessionAffinity", false, affinities);
    v_default_str(c, spec, "sessionAffinity", "None");
    const char *aff = drv_json_str(spec, "sessionAffinity");
    cJSON *cfg = v_obj(c, spec, "sessionAffinityConfig", false);
    if (cfg) {
        size_t old = v_push_key(c, "sessionAffinityConfig");
        v_fields(c, cfg, known, NULL, NULL);
        cJSON *cip = v_obj(c, cfg, "clientIP", false);
        if (cip) {
            size_t o2 = v_push_key(c, "clientIP");
            v_fields(c, cip, cknown, NULL, NULL);
            v_int(c, cip, "timeoutSeconds", false, 1, AFFINITY_TIMEOUT_MAX, NULL);
            v_pop(c, o2);
        }
        v_pop(c, old);
        /* Kubernetes' defaulting clears it under None (it has no effect there), which also lets
         * `kubectl apply` turn ClientIP off while the stored object still holds the config. */
        if (aff && !strcmp(aff, "None"))
            cJSON_DeleteItemFromObjectCaseSensitive(spec, "sessionAffinityConfig");
    }
    if (aff && !strcmp(aff, "ClientIP")) {
        cJSON *cip = obj_member(c, obj_member(c, spec, "sessionAffinityConfig"), "clientIP");
        v_default_int(c, cip, "timeoutSeconds", AFFINITY_TIMEOUT_DEFAULT);
    }
}

/* Drover's Services are single-stack IPv4: ipFamilyPolicy and ipFamilies accept what that
 * serves (PreferDualStack then gets IPv4 alone, as on a single-stack Kubernetes cluster) and
 * refuse the rest by name. */
static void v_ip_families(vctx_t *c, cJSON *spec)
{
    static const char policies[] = "SingleStack\0"
                                   "PreferDualStack\0"
                                   "RequireDualStack\0";
    const char *pol = v_enum(c, spec, "ipFamilyPolicy", false, policies);
    if (pol && !strcmp(pol, "RequireDualStack"))
        v_failk(c, "ipFamilyPolicy",
                "\"RequireDualStack\" is not supported by Drover: Services are IPv4 only "
                "(use SingleStack or PreferDualStack)");
    v_default_str(c, spec, "ipFamilyPolicy", "SingleStack");
    cJSON *fam = v_arr(c, spec, "ipFamilies", false);
    if (fam) {
        size_t old = v_push_key(c, "ipFamilies"), i = 0;
        for (cJSON *e = fam->child; e; e = e->next, i++) {
            size_t o2 = v_push_index(c, i);
            if (!cJSON_IsString(e))
                v_fail(c, "must be a string, not %s", type_name(e));
            else if (!strcmp(e->valuestring, "IPv6"))
                v_fail(c, "\"IPv6\" is not supported by Drover: Services are IPv4 only");
            else if (strcmp(e->valuestring, "IPv4"))
                v_fail(c, "unsupported value \"%.32s\": must be one of \"IPv4\", \"IPv6\"",
                       e->valuestring);
            else if (e != fam->child)
                v_fail(c, "duplicate value \"IPv4\"");
            v_pop(c, o2);
        }
        v_pop(c, old);
    }
    if (drv_json_get(spec, "ipFamilies") && (!fam || cJSON_GetArraySize(fam) > 0))
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(spec, "ipFamilies");
    cJSON *arr = cJSON_AddArrayToObject(spec, "ipFamilies");
    cJSON *v4 = cJSON_CreateString("IPv4");
    if (!arr || !v4 || !cJSON_AddItemToArray(arr, v4)) {
        cJSON_Delete(v4);
        c->nomem = true;
    }
}

/* "" (the hub allocates one), "None" (headless) or an IPv4 address, at the current path. */
static bool cluster_ip_ok(vctx_t *c, const char *s)
{
    return !*s || !strcmp(s, "None") || v_ipv4_value(c, s, NULL);
}

/* clusterIP and clusterIPs: one address, the same in both; each filled from the other as the
 * API server does. Returns clusterIP when valid (NULL when absent or bad). */
static const char *v_cluster_ip(vctx_t *c, cJSON *spec)
{
    const char *cip = v_str(c, spec, "clusterIP", false);
    if (cip) {
        size_t old = v_push_key(c, "clusterIP");
        if (!cluster_ip_ok(c, cip))
            cip = NULL;
        v_pop(c, old);
    }
    cJSON *ips = v_arr(c, spec, "clusterIPs", false);
    const char *first = NULL;
    if (ips) {
        size_t old = v_push_key(c, "clusterIPs"), i = 0;
        if (cJSON_GetArraySize(ips) > 1)
            v_fail(c, "may hold one address: Drover's Services are single-stack IPv4");
        for (cJSON *e = ips->child; e; e = e->next, i++) {
            size_t o2 = v_push_index(c, i);
            if (!cJSON_IsString(e))
                v_fail(c, "must be a string, not %s", type_name(e));
            else if (cluster_ip_ok(c, e->valuestring) && i == 0)
                first = e->valuestring;
            if (i == 0 && first && cip && *cip && *first && strcmp(first, cip))
                v_fail(c, "must be the same as clusterIP (\"%s\"), not \"%.64s\"", cip, first);
            v_pop(c, o2);
        }
        v_pop(c, old);
    }
    if (c->problems)
        return cip;
    if (first && *first && (!cip || !*cip)) {
        cJSON_DeleteItemFromObjectCaseSensitive(spec, "clusterIP");
        v_default_str(c, spec, "clusterIP", first);
        cip = drv_json_str(spec, "clusterIP");
    } else if (cip && *cip && (!ips || cJSON_GetArraySize(ips) == 0)) {
        cJSON_DeleteItemFromObjectCaseSensitive(spec, "clusterIPs");
        cJSON *arr = cJSON_AddArrayToObject(spec, "clusterIPs");
        cJSON *one = cJSON_CreateString(cip);
        if (!arr || !one || !cJSON_AddItemToArray(arr, one)) {
            cJSON_Delete(one);
            c->nomem = true;
        }
    }
    return cip;
}

/* spec.ports: names (required when more than one) and port/protocol pairs unique, targetPort
 * defaulted to port, nodePorts only for NodePort and LoadBalancer Services, in Drover's range
 * and unique per protocol. */
static void v_service_ports(vctx_t *c, cJSON *spec, bool headless, bool external)
{
    static const char pknown[] = "name\0"
                                 "protocol\0"
                                 "port\0"
                                 "targetPort\0"
                                 "nodePort\0"
                                 "appProtocol\0";
    static const char protocols[] = "TCP\0"
                                    "UDP\0"
                                    "SCTP\0";
    cJSON *ports = v_arr(c, spec, "ports", !headless);
    if (!ports)
        return;
    int nports = cJSON_GetArraySize(ports);
    if (nports == 0 && !headless)
        v_failk(c, "ports", "required");
    size_t old = v_push_key(c, "ports"), i = 0;
    for (cJSON *p = ports->child; p; p = p->next, i++) {
        size_t o2 = v_push_index(c, i);
        if (!cJSON_IsObject(p)) {
            v_fail(c, "must be an object");
            v_pop(c, o2);
            continue;
        }
        v_fields(c, p, pknown, NULL, NULL);
        v_name(c, p, "name", nports > 1, drv_name_dns_label);
        const char *name = drv_json_str(p, "name");
        const char *proto = v_enum(c, p, "protocol", false, protocols);
        v_default_str(c, p, "protocol", "TCP");
        proto = proto ? proto : drv_json_str(p, "protocol");
        v_name(c, p, "appProtocol", false, drv_name_label_key);
        int64_t port = 0, node_port = 0;
        bool has_port = v_int(c, p, "port", true, 1, 65535, &port);
        if (has_port && !drv_json_get(p, "targetPort"))
            v_default_int(c, p, "targetPort", port);
        else
            v_int_or_string(c, p, "targetPort", false, VIOS_PORT);
        bool has_np = false;
        if (drv_json_get(p, "nodePort")) {
            if (!external)
                v_failk(c, "nodePort", "may only be set for a NodePort or LoadBalancer Service");
            else
                has_np = v_int(c, p, "nodePort", false, 30000, 32767, &node_port);
        }
        size_t j = 0;
        for (cJSON *q = ports->child; q != p; q = q->next, j++) {
            const char *qn = drv_json_str(q, "name"), *qp = drv_json_str(q, "protocol");
            int64_t qport = drv_json_int_or(q, "port", -1),
                    qnp = drv_json_int_or(q, "nodePort", -1);
            if (name && qn && !strcmp(qn, name))
                v_failk(c, "name", "duplicate value \"%s\" (also in ports[%zu])", name, j);
            bool same_proto = proto && qp && !strcmp(proto, qp);
            if (has_port && same_proto && qport == port)
                v_fail(c, "duplicate port %lld/%s (also in ports[%zu])", (long long)port, proto, j);
            if (has_np && same_proto && qnp == node_port)
                v_failk(c, "nodePort", "duplicate value %lld (also in ports[%zu])",
                        (long long)node_port, j);
        }
        v_pop(c, o2);
    }
    v_pop(c, old);
}

/* Every field of a Service spec is honoured (validated and kept for the hub and the agents) or
 * refused by name; none is dropped. */
void v_service_spec(vctx_t *c, cJSON *spec)
{
    static const char known[] = "type\0"
                                "selector\0"
                                "ports\0"
                                "clusterIP\0"
                                "clusterIPs\0"
                                "sessionAffinity\0"
                                "sessionAffinityConfig\0"
                                "ipFamilies\0"
                                "ipFamilyPolicy\0"
                                "internalTrafficPolicy\0"
                                "externalTrafficPolicy\0"
                                "publishNotReadyAddresses\0"
                                "allocateLoadBalancerNodePorts\0";
    static const char unsupported[] = "externalName\0"
                                      "externalIPs\0"
                                      "loadBalancerIP\0"
                                      "loadBalancerSourceRanges\0"
                                      "loadBalancerClass\0"
                                      "healthCheckNodePort\0"
                                      "topologyKeys\0"
                                      "trafficDistribution\0";
    static const char types[] = "ClusterIP\0"
                                "NodePort\0"
                                "LoadBalancer\0";
    static const char policies[] = "Cluster\0"
                                   "Local\0";
    v_fields(c, spec, known, NULL, unsupported);
    const char *type = drv_json_str(spec, "type");
    if (type && !strcmp(type, "ExternalName")) {
        v_failk(c, "type",
                "\"ExternalName\" is not supported by Drover (ClusterIP, NodePort and "
                "LoadBalancer are)");
        type = NULL;
    } else {
        type = v_enum(c, spec, "type", false, types);
        v_default_str(c, spec, "type", "ClusterIP");
        type = type ? type : drv_json_str(spec, "type");
    }
    bool external = type && (!strcmp(type, "NodePort") || !strcmp(type, "LoadBalancer"));
    v_session_affinity(c, spec);
    v_ip_families(c, spec);
    v_str_map(c, spec, "selector", drv_name_label_key, drv_name_label_value);
    const char *cip = v_cluster_ip(c, spec);
    bool headless = cip && !strcmp(cip, "None");
    if (headless && external)
        v_failk(c, "clusterIP", "may not be \"None\" for a %s Service", type);
    v_enum(c, spec, "internalTrafficPolicy", false, policies);
    v_default_str(c, spec, "internalTrafficPolicy", "Cluster");
    if (drv_json_get(spec, "externalTrafficPolicy") && !external)
        v_failk(c, "externalTrafficPolicy",
                "may only be set for a NodePort or LoadBalancer Service");
    else if (external)
        v_enum(c, spec, "externalTrafficPolicy", false, policies);
    if (external)
        v_default_str(c, spec, "externalTrafficPolicy", "Cluster");
    v_bool(c, spec, "publishNotReadyAddresses", NULL);
    bool alloc = true;
    if (drv_json_get(spec, "allocateLoadBalancerNodePorts")) {
        if (!type || strcmp(type, "LoadBalancer"))
            v_failk(c, "allocateLoadBalancerNodePorts",
                    "may only be set for a LoadBalancer Service");
        else if (v_bool(c, spec, "allocateLoadBalancerNodePorts", &alloc) && !alloc)
            v_failk(c, "allocateLoadBalancerNodePorts",
                    "false is not supported by Drover: a LoadBalancer Service gets node ports");
    }
    if (type && !strcmp(type, "LoadBalancer"))
        v_default_bool(c, spec, "allocateLoadBalancerNodePorts", true);
    v_service_ports(c, spec, headless, external);
}

static bool external_type(const char *type)
{
    return type && (!strcmp(type, "NodePort") || !strcmp(type, "LoadBalancer"));
}

/* Clears spec[key] when old's spec holds the same value. */
static void drop_if_same(cJSON *spec, const cJSON *old_spec, const char *key)
{
    const cJSON *a = drv_json_get(spec, key), *b = drv_json_get(old_spec, key);
    if (a && b && cJSON_Compare(a, b, true))
        cJSON_DeleteItemFromObjectCaseSensitive(spec, key);
}

void drv_model_service_drop_type_fields(const cJSON *old, cJSON *obj)
{
    cJSON *spec = drv_json_get(obj, "spec");
    const cJSON *ospec = drv_json_get(old, "spec");
    if (!cJSON_IsObject(spec) || !cJSON_IsObject(ospec))
        return;
    const char *type = drv_json_str_or(spec, "type", "ClusterIP");
    const char *otype = drv_json_str_or(ospec, "type", "ClusterIP");
    if (!strcmp(type, otype))
        return;
    if (strcmp(type, "LoadBalancer"))
        drop_if_same(spec, ospec, "allocateLoadBalancerNodePorts");
    if (external_type(type))
        return;
    drop_if_same(spec, ospec, "externalTrafficPolicy");
    /* nodePorts go only when all of them are the old ones (none changed by the user). */
    const cJSON *ports = drv_json_get(spec, "ports"), *oports = drv_json_get(ospec, "ports");
    if (!cJSON_IsArray(ports) || !cJSON_IsArray(oports))
        return;
    const cJSON *q = oports->child;
    for (const cJSON *p = ports->child; p; p = p->next, q = q ? q->next : NULL) {
        const cJSON *np = drv_json_get(p, "nodePort");
        if (np && (!q || !cJSON_Compare(np, drv_json_get(q, "nodePort"), true)))
            return;
    }
    for (cJSON *p = ports->child; p; p = p->next)
        cJSON_DeleteItemFromObjectCaseSensitive(p, "nodePort");
}

/* ---- Node ---- */

/* "a.b.c.d/n", no host bits set. */
static bool v_ipv4_cidr(const char *s)
{
    unsigned a[4], p;
    char tail;
    if (sscanf(s, "%3u.%3u.%3u.%3u/%2u%c", &a[0], &a[1], &a[2], &a[3], &p, &tail) != 5 || p > 32 ||
        !isdigit((unsigned char)s[0]) || strchr(s, '+') || strchr(s, '-') || strchr(s, ' '))
        return false;
    uint32_t ip = 0;
    for (int i = 0; i < 4; i++) {
        if (a[i] > 255)
            return false;
        ip = ip << 8 | a[i];
    }
    uint32_t mask = p ? ~(uint32_t)0 << (32 - p) : 0;
    return (ip & ~mask) == 0;
}

void v_node_spec(vctx_t *c, cJSON *spec)
{
    /* podCIDR(s): the node's block of the pod network, given by the hub (hub/ctrl/netalloc.c);
     * kept, so that rewriting a Node never loses it. */
    static const char known[] = "unschedulable\0"
                                "taints\0"
                                "podCIDR\0"
                                "podCIDRs\0";
    static const char ignored[] = "providerID\0"
                                  "externalID\0";
    static const char unsupported[] = "configSource\0";
    static const char effects[] = "NoSchedule\0"
                                  "PreferNoSchedule\0"
                                  "NoExecute\0";
    v_fields(c, spec, known, ignored, unsupported);
    v_bool(c, spec, "unschedulable", NULL);
    const char *pc = v_str(c, spec, "podCIDR", false);
    if (pc && !v_ipv4_cidr(pc))
        v_failk(c, "podCIDR", "\"%.64s\" is not an IPv4 CIDR such as 10.42.1.0/24", pc);
    cJSON *pcs = v_arr(c, spec, "podCIDRs", false);
    size_t pold = v_push_key(c, "podCIDRs"), pi = 0;
    for (cJSON *x = pcs ? pcs->child : NULL; x; x = x->next, pi++) {
        size_t o2 = v_push_index(c, pi);
        if (!cJSON_IsString(x) || !v_ipv4_cidr(x->valuestring))
            v_fail(c, "must be an IPv4 CIDR such as 10.42.1.0/24");
        else if (pi == 0 && pc && strcmp(pc, x->valuestring))
            v_fail(c, "must equal spec.podCIDR \"%.64s\"", pc);
        v_pop(c, o2);
    }
    v_pop(c, pold);
    cJSON *taints = v_arr(c, spec, "taints", false);
    if (!taints)
        return;
    size_t old = v_push_key(c, "taints"), i = 0;
    for (cJSON *t = taints->child; t; t = t->next, i++) {
        static const char tknown[] = "key\0"
                                     "value\0"
                                     "effect\0"
                                     "timeAdded\0";
        size_t o2 = v_push_index(c, i);
        if (!cJSON_IsObject(t)) {
            v_fail(c, "must be an object");
        } else {
            v_fields(c, t, tknown, NULL, NULL);
            v_name(c, t, "key", true, drv_name_label_key);
            v_name(c, t, "value", false, drv_name_label_value);
            v_enum(c, t, "effect", true, effects);
            v_str(c, t, "timeAdded", false);
        }
        v_pop(c, o2);
    }
    v_pop(c, old);
}

/* ---- Namespace ---- */

void v_namespace_spec(vctx_t *c, cJSON *spec)
{
    static const char known[] = "finalizers\0";
    v_fields(c, spec, known, NULL, NULL);
    v_str_list(c, spec, "finalizers", false);
}

/* ---- Event ---- */

void v_event(vctx_t *c, cJSON *obj)
{
    static const char known[] = "apiVersion\0"
                                "kind\0"
                                "metadata\0"
                                "involvedObject\0"
                                "reason\0"
                                "message\0"
                                "type\0"
                                "count\0"
                                "firstTimestamp\0"
                                "lastTimestamp\0"
                                "eventTime\0"
                                "source\0"
                                "reportingComponent\0"
                                "reportingInstance\0"
                                "action\0";
    static const char ignored[] = "series\0"
                                  "related\0";
    static const char types[] = "Normal\0"
                                "Warning\0";
    v_fields(c, obj, known, ignored, NULL);
    cJSON *io = v_obj(c, obj, "involvedObject", true);
    if (io) {
        static const char ioknown[] = "apiVersion\0"
                                      "kind\0"
                                      "name\0"
                                      "namespace\0"
                                      "uid\0"
                                      "resourceVersion\0"
                                      "fieldPath\0";
        size_t old = v_push_key(c, "involvedObject");
        v_fields(c, io, ioknown, NULL, NULL);
        v_str(c, io, "kind", true);
        v_str(c, io, "name", true);
        for (const char *k = ioknown; *k; k += strlen(k) + 1)
            if (strcmp(k, "kind") && strcmp(k, "name"))
                v_str(c, io, k, false);
        v_pop(c, old);
    }
    v_str(c, obj, "reason", false);
    v_str(c, obj, "message", false);
    v_enum(c, obj, "type", false, types);
    v_default_str(c, obj, "type", "Normal");
    v_int(c, obj, "count", false, 0, INT32_MAX, NULL);
    v_str(c, obj, "firstTimestamp", false);
    v_str(c, obj, "lastTimestamp", false);
    v_str(c, obj, "eventTime", false);
    v_str(c, obj, "reportingComponent", false);
    v_str(c, obj, "reportingInstance", false);
    v_str(c, obj, "action", false);
    cJSON *src = v_obj(c, obj, "source", false);
    if (src) {
        static const char sknown[] = "component\0"
                                     "host\0";
        size_t old = v_push_key(c, "source");
        v_fields(c, src, sknown, NULL, NULL);
        v_str(c, src, "component", false);
        v_str(c, src, "host", false);
        v_pop(c, old);
    }
}

/* ---- ControllerRevision ---- */

/* A DaemonSet's template history as its controller writes it (the API refuses writes): data is
 * the strategic merge patch that restores the template, kept as it is (kubectl applies it), and
 * revision orders the records. */
void v_controller_revision(vctx_t *c, cJSON *obj)
{
    static const char known[] = "apiVersion\0"
                                "kind\0"
                                "metadata\0"
                                "data\0"
                                "revision\0";
    v_fields(c, obj, known, NULL, NULL);
    v_obj(c, obj, "data", false);
    /* int64 in Kubernetes; bounded where a JSON number is still exact. */
    v_int(c, obj, "revision", true, 0, (1LL << 53) - 1, NULL);
}

/* ---- objects ---- */

void v_spec_object(vctx_t *c, cJSON *obj, drv_kind_t kind, vspec_fn spec_fn)
{
    static const char known[] = "apiVersion\0"
                                "kind\0"
                                "metadata\0"
                                "spec\0";
    static const char ignored[] = "status\0";
    v_fields(c, obj, known, ignored, NULL);
    bool required = kind != DRV_KIND_NODE && kind != DRV_KIND_NAMESPACE;
    cJSON *spec = v_obj(c, obj, "spec", required);
    if (!spec) {
        if (!required && !drv_json_get(obj, "spec"))
            add_or_fail(c, obj, "spec", cJSON_CreateObject());
        return;
    }
    size_t old = v_push_key(c, "spec");
    if (spec_fn)
        spec_fn(c, spec);
    v_pop(c, old);
}

drv_err_t drv_model_normalize(cJSON *obj, drv_diags_t *diags)
{
    vctx_t c = {.diags = diags};
    if (!cJSON_IsObject(obj)) {
        v_fail(&c, "a manifest must be a mapping (an object), not %s",
               obj ? type_name(obj) : "nothing");
        return c.nomem ? DRV_ERR_NOMEM : DRV_ERR_INVALID;
    }
    const char *kind_s = v_str(&c, obj, "kind", true);
    const char *api = v_str(&c, obj, "apiVersion", true);
    if (!kind_s || !api)
        return c.nomem ? DRV_ERR_NOMEM : DRV_ERR_INVALID;
    drv_kind_t kind = DRV_KIND_UNKNOWN;
    for (size_t i = 0; i < NKINDS; i++)
        if (!strcmp(kind_s, KSTR(kinds[i].name)))
            kind = kinds[i].kind;
    if (kind == DRV_KIND_UNKNOWN) {
        v_failk(&c, "kind",
                "unsupported kind \"%.64s\": Drover supports Pod, Deployment, DaemonSet, "
                "StatefulSet, ReplicaSet, ControllerRevision, ConfigMap, Secret, Service, "
                "Endpoints, EndpointSlice, NetworkPolicy, Node, Namespace, Event, "
                "HorizontalPodAutoscaler, PersistentVolumeClaim, PersistentVolume, "
                "StorageClass, PriorityClass, ServiceAccount, Role, RoleBinding, ClusterRole, "
                "ClusterRoleBinding, Job and CronJob",
                kind_s);
        return c.nomem ? DRV_ERR_NOMEM : DRV_ERR_INVALID;
    }
    api = v_kind_api(&c, obj, kind, api);
    if (strcmp(api, drv_kind_api_version(kind))) {
        v_failk(&c, "apiVersion", "\"%.64s\" is not supported for %s: use %s", api, kind_s,
                drv_kind_api_version(kind));
    }
    cJSON *meta = v_obj(&c, obj, "metadata", true);
    if (meta) {
        size_t old = v_push_key(&c, "metadata");
        v_object_meta(&c, meta, kind, false);
        v_pop(&c, old);
    }
    v_kind_body(&c, obj, kind);
    if (c.nomem)
        return DRV_ERR_NOMEM;
    if (c.problems)
        return DRV_ERR_INVALID;
    drv_json_sort_keys(obj);
    return DRV_OK;
}

/* ---- canonical form ---- */

static int key_cmp(const cJSON *a, const cJSON *b)
{
    return strcmp(a->string ? a->string : "", b->string ? b->string : "");
}

/* Stable merge sort of a cJSON child list (keeps prev/next links valid). */
static cJSON *sort_list(cJSON *head, size_t n)
{
    if (n < 2)
        return head;
    size_t half = n / 2;
    cJSON *mid = head;
    for (size_t i = 0; i < half; i++)
        mid = mid->next;
    mid->prev->next = NULL;
    cJSON *a = sort_list(head, half), *b = sort_list(mid, n - half);
    cJSON dummy = {0};
    cJSON *tail = &dummy;
    while (a && b) {
        cJSON **pick = key_cmp(a, b) <= 0 ? &a : &b;
        tail->next = *pick;
        (*pick)->prev = tail;
        tail = *pick;
        *pick = (*pick)->next;
    }
    for (cJSON *rest = a ? a : b; rest; rest = rest->next) {
        tail->next = rest;
        rest->prev = tail;
        tail = rest;
    }
    cJSON *first = dummy.next;
    /* cJSON keeps the last element in first->prev. */
    first->prev = tail;
    tail->next = NULL;
    return first;
}

void drv_json_sort_keys(cJSON *node)
{
    if (!node)
        return;
    size_t n = 0;
    for (cJSON *c = node->child; c; c = c->next) {
        drv_json_sort_keys(c);
        n++;
    }
    if (cJSON_IsObject(node) && n > 1)
        node->child = sort_list(node->child, n);
}

char *drv_model_to_json(const cJSON *obj, bool pretty)
{
    cJSON *copy = cJSON_Duplicate(obj, 1);
    if (!copy)
        return NULL;
    drv_json_sort_keys(copy);
    char *s = pretty ? cJSON_Print(copy) : cJSON_PrintUnformatted(copy);
    cJSON_Delete(copy);
    if (!s || !pretty)
        return s;
    /* cJSON indents with tabs (strings never hold a raw tab: it escapes them); use two
     * spaces, as kubectl does. */
    size_t tabs = 0, n = 0;
    for (const char *p = s; *p; p++, n++)
        tabs += *p == '\t';
    char *out = malloc(n + tabs + 1);
    if (!out) {
        free(s);
        return NULL;
    }
    char *o = out;
    bool line_start = true;
    for (const char *p = s; *p; p++) {
        if (*p == '\t' && line_start) {
            *o++ = ' ';
            *o++ = ' ';
        } else if (*p == '\t') {
            *o++ = ' '; /* the tab cJSON puts after a colon */
        } else {
            *o++ = *p;
        }
        line_start = *p == '\n' || (line_start && *p == '\t');
    }
    *o = '\0';
    free(s);
    return out;
}
