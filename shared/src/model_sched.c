/* Validation of what steers scheduling: a pod's affinity (node affinity, pod affinity and
 * anti-affinity) and priority fields. The rules are Kubernetes'; what the scheduler does with
 * them is in hub/sched/sched.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drover/json.h"
#include "drover/names.h"
#include "model_int.h"

#define REQUIRED "requiredDuringSchedulingIgnoredDuringExecution"
#define PREFERRED "preferredDuringSchedulingIgnoredDuringExecution"

static bool is_op(const char *op, const char *a, const char *b)
{
    return op && (!strcmp(op, a) || !strcmp(op, b));
}

/* One requirement of a node selector term; arg non-NULL for matchFields, whose only key is
 * metadata.name (the node's name) with In or NotIn and a single value, as in Kubernetes. */
static void v_node_req(vctx_t *c, cJSON *e, size_t i, void *arg)
{
    static const char known[] = "key\0"
                                "operator\0"
                                "values\0";
    static const char ops[] = "In\0"
                              "NotIn\0"
                              "Exists\0"
                              "DoesNotExist\0"
                              "Gt\0"
                              "Lt\0";
    static const char fops[] = "In\0"
                               "NotIn\0";
    bool field = arg != NULL;
    (void)i;
    v_fields(c, e, known, NULL, NULL);
    const char *key = v_str(c, e, "key", true);
    char why[512];
    if (key && field && strcmp(key, "metadata.name"))
        v_failk(c, "key", "unsupported value \"%.64s\": only \"metadata.name\" is supported", key);
    else if (key && !field && !drv_name_label_key(key, why, sizeof(why)))
        v_failk(c, "key", "invalid value \"%.64s\": %s", key, why);
    const char *op = v_enum(c, e, "operator", true, field ? fops : ops);
    v_str_list(c, e, "values", false);
    cJSON *vals = drv_json_get(e, "values");
    int n = cJSON_IsArray(vals) ? cJSON_GetArraySize(vals) : 0;
    if (is_op(op, "In", "NotIn") && n == 0)
        v_failk(c, "values", "must be specified when `operator` is 'In' or 'NotIn'");
    else if (is_op(op, "In", "NotIn") && field && n != 1)
        v_failk(c, "values",
                "must be only one value when `operator` is 'In' or 'NotIn' for node field "
                "selector");
    else if (is_op(op, "Exists", "DoesNotExist") && n != 0)
        v_failk(c, "values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
    else if (is_op(op, "Gt", "Lt") && n != 1)
        v_failk(c, "values", "must be specified single value when `operator` is 'Lt' or 'Gt'");
    size_t old = v_push_key(c, "values"), k = 0;
    for (cJSON *v = cJSON_IsArray(vals) ? vals->child : NULL; v; v = v->next, k++) {
        if (!cJSON_IsString(v))
            continue; /* said by v_str_list */
        size_t o2 = v_push_index(c, k);
        if (is_op(op, "Gt", "Lt")) {
            char *end = NULL;
            errno = 0;
            (void)strtoll(v->valuestring, &end, 10);
            if (!*v->valuestring || *end || errno)
                v_fail(c, "invalid value \"%.64s\": must be an integer", v->valuestring);
        } else if (!field && !drv_name_label_value(v->valuestring, why, sizeof(why))) {
            v_fail(c, "invalid value \"%.64s\": %s", v->valuestring, why);
        }
        v_pop(c, o2);
    }
    v_pop(c, old);
}

static int field_marker;

static void v_node_term(vctx_t *c, cJSON *t, size_t i, void *arg)
{
    static const char known[] = "matchExpressions\0"
                                "matchFields\0";
    (void)i;
    (void)arg;
    v_fields(c, t, known, NULL, NULL);
    v_each(c, t, "matchExpressions", false, v_node_req, NULL);
    v_each(c, t, "matchFields", false, v_node_req, &field_marker);
}

static void v_node_pref(vctx_t *c, cJSON *p, size_t i, void *arg)
{
    static const char known[] = "weight\0"
                                "preference\0";
    v_fields(c, p, known, NULL, NULL);
    v_int(c, p, "weight", true, 1, 100, NULL);
    cJSON *pref = v_obj(c, p, "preference", true);
    if (!pref)
        return;
    size_t old = v_push_key(c, "preference");
    v_node_term(c, pref, i, arg);
    v_pop(c, old);
}

static void v_node_affinity(vctx_t *c, cJSON *na)
{
    static const char known[] = REQUIRED "\0" PREFERRED "\0";
    static const char rknown[] = "nodeSelectorTerms\0";
    v_fields(c, na, known, NULL, NULL);
    cJSON *req = v_obj(c, na, REQUIRED, false);
    if (req) {
        size_t old = v_push_key(c, REQUIRED);
        v_fields(c, req, rknown, NULL, NULL);
        v_each(c, req, "nodeSelectorTerms", true, v_node_term, NULL);
        v_pop(c, old);
    }
    v_each(c, na, PREFERRED, false, v_node_pref, NULL);
}

/* A pod affinity term. namespaceSelector is served only as {} (every namespace): the
 * scheduler does not read Namespace labels. */
static void v_pod_term(vctx_t *c, cJSON *t, size_t i, void *arg)
{
    static const char known[] = "labelSelector\0"
                                "namespaces\0"
                                "topologyKey\0"
                                "namespaceSelector\0";
    static const char unsupported[] = "matchLabelKeys\0"
                                      "mismatchLabelKeys\0";
    (void)i;
    (void)arg;
    v_fields(c, t, known, NULL, unsupported);
    v_label_selector(c, t, "labelSelector", false);
    v_str_list(c, t, "namespaces", false);
    cJSON *nss = drv_json_get(t, "namespaces");
    size_t old = v_push_key(c, "namespaces"), k = 0;
    char why[512];
    for (cJSON *n = cJSON_IsArray(nss) ? nss->child : NULL; n; n = n->next, k++) {
        size_t o2 = v_push_index(c, k);
        if (cJSON_IsString(n) && !drv_name_dns_label(n->valuestring, why, sizeof(why)))
            v_fail(c, "invalid value \"%.64s\": %s", n->valuestring, why);
        v_pop(c, o2);
    }
    v_pop(c, old);
    const char *tk = v_str(c, t, "topologyKey", true); /* "" is "required" too */
    if (tk && !drv_name_label_key(tk, why, sizeof(why)))
        v_failk(c, "topologyKey", "invalid value \"%.64s\": %s", tk, why);
    cJSON *nsel = v_obj(c, t, "namespaceSelector", false);
    if (nsel && nsel->child)
        v_failk(c, "namespaceSelector",
                "not supported by Drover unless empty ({}, every namespace): list the "
                "namespaces in `namespaces`");
}

static void v_pod_pref(vctx_t *c, cJSON *p, size_t i, void *arg)
{
    static const char known[] = "weight\0"
                                "podAffinityTerm\0";
    v_fields(c, p, known, NULL, NULL);
    v_int(c, p, "weight", true, 1, 100, NULL);
    cJSON *term = v_obj(c, p, "podAffinityTerm", true);
    if (!term)
        return;
    size_t old = v_push_key(c, "podAffinityTerm");
    v_pod_term(c, term, i, arg);
    v_pop(c, old);
}

static void v_pod_affinity(vctx_t *c, cJSON *aff, const char *key)
{
    static const char known[] = REQUIRED "\0" PREFERRED "\0";
    cJSON *pa = v_obj(c, aff, key, false);
    if (!pa)
        return;
    size_t old = v_push_key(c, key);
    v_fields(c, pa, known, NULL, NULL);
    v_each(c, pa, REQUIRED, false, v_pod_term, NULL);
    v_each(c, pa, PREFERRED, false, v_pod_pref, NULL);
    v_pop(c, old);
}

void v_affinity(vctx_t *c, cJSON *spec)
{
    static const char known[] = "nodeAffinity\0"
                                "podAffinity\0"
                                "podAntiAffinity\0";
    cJSON *aff = v_obj(c, spec, "affinity", false);
    if (!aff)
        return;
    size_t old = v_push_key(c, "affinity");
    v_fields(c, aff, known, NULL, NULL);
    cJSON *na = v_obj(c, aff, "nodeAffinity", false);
    if (na) {
        size_t o2 = v_push_key(c, "nodeAffinity");
        v_node_affinity(c, na);
        v_pop(c, o2);
    }
    v_pod_affinity(c, aff, "podAffinity");
    v_pod_affinity(c, aff, "podAntiAffinity");
    v_pop(c, old);
}

static void v_spread(vctx_t *c, cJSON *t, size_t i, void *arg)
{
    static const char known[] = "maxSkew\0"
                                "topologyKey\0"
                                "whenUnsatisfiable\0"
                                "labelSelector\0"
                                "minDomains\0"
                                "nodeAffinityPolicy\0"
                                "nodeTaintsPolicy\0";
    static const char unsupported[] = "matchLabelKeys\0";
    static const char whens[] = "DoNotSchedule\0"
                                "ScheduleAnyway\0";
    static const char policies[] = "Honor\0"
                                   "Ignore\0";
    cJSON *all = arg;
    v_fields(c, t, known, NULL, unsupported);
    int64_t skew = 0;
    if (v_int(c, t, "maxSkew", true, INT32_MIN, INT32_MAX, &skew) && skew < 1)
        v_failk(c, "maxSkew", "must be greater than zero");
    const char *tk = v_str(c, t, "topologyKey", true);
    char why[512];
    if (tk && !drv_name_label_key(tk, why, sizeof(why)))
        v_failk(c, "topologyKey", "invalid value \"%.64s\": %s", tk, why);
    const char *when = v_enum(c, t, "whenUnsatisfiable", true, whens);
    v_label_selector(c, t, "labelSelector", false);
    int64_t md = 0;
    if (v_int(c, t, "minDomains", false, INT32_MIN, INT32_MAX, &md)) {
        if (md < 1)
            v_failk(c, "minDomains", "must be greater than zero");
        else if (when && strcmp(when, "DoNotSchedule"))
            v_failk(c, "minDomains", "can only use minDomains if whenUnsatisfiable=DoNotSchedule");
    }
    v_enum(c, t, "nodeAffinityPolicy", false, policies);
    v_enum(c, t, "nodeTaintsPolicy", false, policies);
    /* One constraint per topologyKey and whenUnsatisfiable, as Kubernetes. */
    size_t k = 0;
    for (cJSON *o = all ? all->child : NULL; o && k < i && tk && when; o = o->next, k++) {
        const char *ok = drv_json_str(o, "topologyKey"), *ow = drv_json_str(o, "whenUnsatisfiable");
        if (ok && ow && !strcmp(ok, tk) && !strcmp(ow, when))
            v_failk(c, "topologyKey", "duplicate value \"{%.64s, %s}\" (also in [%zu])", tk, when,
                    k);
    }
}

void v_topology_spread(vctx_t *c, cJSON *spec)
{
    v_each(c, spec, "topologySpreadConstraints", false, v_spread,
           drv_json_get(spec, "topologySpreadConstraints"));
}

/* Kubernetes' limits: user classes at most 1e9; the "system-" prefix is reserved for the two
 * built-in classes, at their own values. */
#define USER_PRIORITY_MAX 1000000000

void v_priority_class(vctx_t *c, cJSON *obj)
{
    static const char known[] = "apiVersion\0"
                                "kind\0"
                                "metadata\0"
                                "value\0"
                                "globalDefault\0"
                                "description\0"
                                "preemptionPolicy\0";
    static const char policies[] = "PreemptLowerPriority\0"
                                   "Never\0";
    v_fields(c, obj, known, NULL, NULL);
    int64_t value = 0;
    bool have = v_int(c, obj, "value", true, INT32_MIN, INT32_MAX, &value);
    const char *name = drv_json_str(drv_json_get(obj, "metadata"), "name");
    int64_t sys = name ? drv_priority_class_builtin(name) : -1;
    if (name && !strncmp(name, "system-", 7) && sys < 0)
        v_failk(c, "metadata.name",
                "priority class names with 'system-' prefix are reserved "
                "for system use only");
    else if (have && sys >= 0 && value != sys)
        v_failk(c, "value", "value of %s PriorityClass must be %lld", name, (long long)sys);
    else if (have && sys < 0 && value > USER_PRIORITY_MAX)
        v_failk(c, "value", "maximum allowed value of a user defined priority is %d",
                USER_PRIORITY_MAX);
    v_bool(c, obj, "globalDefault", NULL);
    v_default_bool(c, obj, "globalDefault", false);
    v_str(c, obj, "description", false);
    v_enum(c, obj, "preemptionPolicy", false, policies);
    v_default_str(c, obj, "preemptionPolicy", "PreemptLowerPriority");
}

int64_t drv_priority_class_builtin(const char *name)
{
    if (!strcmp(name, DRV_PRIORITY_NODE_CRITICAL))
        return DRV_PRIORITY_NODE_CRITICAL_VALUE;
    if (!strcmp(name, DRV_PRIORITY_CLUSTER_CRITICAL))
        return DRV_PRIORITY_CLUSTER_CRITICAL_VALUE;
    return -1;
}

void v_pod_priority(vctx_t *c, cJSON *spec)
{
    static const char policies[] = "PreemptLowerPriority\0"
                                   "Never\0";
    v_name(c, spec, "priorityClassName", false, drv_name_dns_subdomain);
    v_int(c, spec, "priority", false, INT32_MIN, INT32_MAX, NULL);
    v_enum(c, spec, "preemptionPolicy", false, policies);
}
