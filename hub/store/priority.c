/* Pod priority as Kubernetes' Priority admission sets it when a pod is created: the pod's
 * priorityClassName (or, without one, the class marked globalDefault) gives spec.priority and
 * spec.preemptionPolicy; a class that does not exist, or a priority that disagrees with the
 * class, is refused. The two built-in classes are stored at start and known even if deleted. */
#include "store/store_int.h"

#include <string.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/json.h"

static drv_err_t pc_create(drv_hstore_t *s, const char *name, int64_t value, const char *desc,
                           drv_error_t *err)
{
    _cleanup_cjson_ cJSON *pc = cJSON_CreateObject();
    cJSON *meta = NULL;
    bool ok = pc && cJSON_AddStringToObject(pc, "apiVersion", "scheduling.k8s.io/v1") &&
              cJSON_AddStringToObject(pc, "kind", "PriorityClass") &&
              (meta = cJSON_AddObjectToObject(pc, "metadata")) &&
              cJSON_AddStringToObject(meta, "name", name) &&
              cJSON_AddNumberToObject(pc, "value", (double)value) &&
              cJSON_AddStringToObject(pc, "description", desc);
    if (!ok)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "priority class %s", name);
    drv_diags_t d = {0};
    drv_err_t r = drv_model_normalize(pc, &d);
    if (r != DRV_OK) {
        _cleanup_free_ char *msg = drv_diags_format(&d, NULL);
        drv_diags_free(&d);
        return drv_error_set(err, r, 0, "priority class %s: %s", name, msg ? msg : drv_strerror(r));
    }
    drv_diags_free(&d);
    r = drv_hstore_create(s, DRV_KIND_PRIORITYCLASS, pc, err);
    return r == DRV_ERR_EXISTS ? DRV_OK : r;
}

drv_err_t drv_hstore_priority_classes_enable(drv_hstore_t *s, drv_error_t *err)
{
    drv_err_t r = pc_create(s, DRV_PRIORITY_NODE_CRITICAL, DRV_PRIORITY_NODE_CRITICAL_VALUE,
                            "Used for system critical pods that must not be moved from their "
                            "current node.",
                            err);
    if (r == DRV_OK)
        r = pc_create(s, DRV_PRIORITY_CLUSTER_CRITICAL, DRV_PRIORITY_CLUSTER_CRITICAL_VALUE,
                      "Used for system critical pods that must run in the cluster, but can be "
                      "moved to another node if necessary.",
                      err);
    if (r == DRV_OK)
        hstore_set_priorities(s, true);
    return r;
}

/* The class Pods without one get: the globalDefault class (of smallest value if several, as
 * Kubernetes), or NULL. */
static drv_err_t default_class(drv_hstore_t *s, cJSON **out, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *all = NULL;
    *out = NULL;
    drv_err_t r = drv_hstore_list(s, DRV_KIND_PRIORITYCLASS, NULL, NULL, &all, NULL, err);
    if (r != DRV_OK)
        return r;
    cJSON *pc, *best = NULL;
    cJSON_ArrayForEach(pc, all)
    {
        if (cJSON_IsTrue(drv_json_get(pc, "globalDefault")) &&
            (!best || drv_json_int_or(pc, "value", 0) < drv_json_int_or(best, "value", 0)))
            best = pc;
    }
    if (best)
        *out = cJSON_DetachItemViaPointer(all, best);
    return DRV_OK;
}

static bool set_member(cJSON *obj, const char *key, cJSON *v)
{
    if (!v)
        return false;
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    return cJSON_AddItemToObject(obj, key, v);
}

drv_err_t hstore_priority_admit(drv_hstore_t *s, cJSON *pod, drv_error_t *err)
{
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
    if (!cJSON_IsObject(spec))
        return DRV_OK;
    /* Kubernetes' admission errors name the object: pods "web-1" is forbidden: ... */
    char who[300] = "pods is forbidden: ";
    const char *pname = drv_json_str_at(pod, "metadata.name");
    if (pname && *pname)
        drv_fmt_cut(who, sizeof(who), "pods \"%.253s\" is forbidden: ", pname);
    const char *name = drv_json_str(spec, "priorityClassName");
    _cleanup_cjson_ cJSON *pc = NULL;
    int64_t value = 0;
    const char *policy = "PreemptLowerPriority";
    drv_err_t r = DRV_OK;
    if (!name || !*name) {
        r = default_class(s, &pc, err);
        if (r != DRV_OK)
            return r;
        const cJSON *given = drv_json_get(spec, "priority");
        if (!pc && cJSON_IsNumber(given) && given->valuedouble != 0)
            return drv_error_set(err, DRV_ERR_PERM, 0,
                                 "%sthe integer value of priority (%lld) must not be provided in "
                                 "pod spec; priority admission controller computed 0 from the "
                                 "given PriorityClass name",
                                 who, (long long)given->valuedouble);
        if (!pc)
            return DRV_OK; /* no class: priority 0, left unwritten */
        if (!set_member(spec, "priorityClassName",
                        cJSON_CreateString(drv_json_str_at(pc, "metadata.name"))))
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "pod priority");
    } else {
        drv_error_t e = DRV_ERROR_INIT;
        r = drv_hstore_get(s, DRV_KIND_PRIORITYCLASS, NULL, name, &pc, &e);
        if (r == DRV_ERR_NOTFOUND && drv_priority_class_builtin(name) >= 0)
            r = DRV_OK; /* built in: known even when not stored */
        else if (r == DRV_ERR_NOTFOUND)
            return drv_error_set(err, DRV_ERR_PERM, 0,
                                 "%sno PriorityClass with name %.253s was found", who, name);
        else if (r != DRV_OK)
            return drv_error_set(err, r, e.sys_errno, "priority class %s: %s", name,
                                 drv_error_msg(&e));
    }
    name = drv_json_str(spec, "priorityClassName");
    value = pc ? drv_json_int_or(pc, "value", 0) : drv_priority_class_builtin(name);
    policy = pc ? drv_json_str_or(pc, "preemptionPolicy", policy) : policy;
    const cJSON *given = drv_json_get(spec, "priority");
    if (cJSON_IsNumber(given) && (int64_t)given->valuedouble != value)
        return drv_error_set(err, DRV_ERR_PERM, 0,
                             "%sthe integer value of priority (%lld) must not be provided in pod "
                             "spec; priority admission controller computed %lld from the given "
                             "PriorityClass name",
                             who, (long long)given->valuedouble, (long long)value);
    const char *gp = drv_json_str(spec, "preemptionPolicy");
    if (gp && strcmp(gp, policy))
        return drv_error_set(err, DRV_ERR_PERM, 0,
                             "%sthe string value of PreemptionPolicy (%.32s) must not be provided "
                             "in pod spec; priority admission controller computed %s from the "
                             "given PriorityClass name",
                             who, gp, policy);
    if (!set_member(spec, "priority", cJSON_CreateNumber((double)value)) ||
        !set_member(spec, "preemptionPolicy", cJSON_CreateString(policy)))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "pod priority");
    return DRV_OK;
}
