/* Namespace deletion: a Namespace goes with everything in it, as in Kubernetes. It is marked
 * Terminating first, so that nothing new lands in it (hub/store/namespaces.c refuses), then
 * its objects are deleted one by one through the store, so that watches and agents see each
 * deletion, and the Namespace last. */
#include "ctrl/ctrl_int.h"

#include <string.h>

#include "drover/cleanup.h"

/* Workloads before what they own, so that no controller round in between recreates pods. */
static const drv_kind_t order[] = {DRV_KIND_CRONJOB,    DRV_KIND_JOB,       DRV_KIND_HPA,
                                   DRV_KIND_DEPLOYMENT, DRV_KIND_DAEMONSET, DRV_KIND_REPLICASET,
                                   DRV_KIND_POD,        DRV_KIND_SERVICE,   DRV_KIND_CONFIGMAP,
                                   DRV_KIND_SECRET,     DRV_KIND_EVENT};

static drv_err_t delete_kind(drv_hstore_t *s, const char *ns, drv_kind_t kind, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *items = NULL;
    drv_err_t r = drv_hstore_list(s, kind, ns, NULL, &items, NULL, err);
    const cJSON *it;
    cJSON_ArrayForEach(it, (r == DRV_OK ? items : NULL))
    {
        drv_error_t e = DRV_ERROR_INIT;
        drv_err_t d = drv_hstore_delete(s, kind, ns, ctrl_meta(it, "name"), NULL, &e);
        if (d != DRV_OK && d != DRV_ERR_NOTFOUND)
            return drv_error_set(err, d, e.sys_errno, "namespace %s: delete %s %s: %s", ns,
                                 drv_kind_name(kind), ctrl_meta(it, "name"), drv_error_msg(&e));
    }
    return r;
}

/* Every namespaced kind is in order[]: a kind added later and forgotten there is still
 * deleted, after the others. */
static bool in_order(drv_kind_t k)
{
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        if (order[i] == k)
            return true;
    return false;
}

static drv_err_t finish(drv_hstore_t *s, const char *name, cJSON **deleted, drv_error_t *err)
{
    drv_err_t r = DRV_OK;
    for (size_t i = 0; r == DRV_OK && i < sizeof(order) / sizeof(order[0]); i++)
        r = delete_kind(s, name, order[i], err);
    for (int k = 1; r == DRV_OK && k < DRV_KIND__COUNT; k++)
        if (drv_kind_namespaced((drv_kind_t)k) && !in_order((drv_kind_t)k))
            r = delete_kind(s, name, (drv_kind_t)k, err);
    if (r != DRV_OK)
        return r;
    drv_error_t e = DRV_ERROR_INIT;
    r = drv_hstore_delete(s, DRV_KIND_NAMESPACE, NULL, name, deleted, &e);
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "namespace %s: %s", name, drv_error_msg(&e));
    return DRV_OK;
}

drv_err_t drv_ctrl_namespace_delete(drv_hstore_t *s, const char *name, cJSON **deleted,
                                    drv_error_t *err)
{
    if (drv_hstore_ns_protected(name))
        return drv_error_set(err, DRV_ERR_PERM, 0,
                             "namespaces \"%s\" is forbidden: this namespace may not be deleted",
                             name);
    _cleanup_cjson_ cJSON *ns = NULL;
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_get(s, DRV_KIND_NAMESPACE, NULL, name, &ns, &e);
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "namespaces \"%s\" %s", name,
                             r == DRV_ERR_NOTFOUND ? "not found" : drv_error_msg(&e));
    const cJSON *ost = drv_json_get(ns, "status");
    const char *phase = drv_json_str(ost, "phase");
    if (!phase || strcmp(phase, "Terminating")) {
        cJSON *st = cJSON_IsObject(ost) ? cJSON_Duplicate(ost, true) : cJSON_CreateObject();
        if (!st || !ctrl_set(st, "phase", cJSON_CreateString("Terminating"))) {
            cJSON_Delete(st);
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "namespace %s", name);
        }
        r = drv_hstore_update_status(s, DRV_KIND_NAMESPACE, NULL, name, st, NULL, &e);
        if (r != DRV_OK)
            return drv_error_set(err, r, e.sys_errno, "namespace %s: %s", name, drv_error_msg(&e));
    }
    return finish(s, name, deleted, err);
}

drv_err_t drv_ctrl_namespaces_reconcile(drv_hstore_t *s, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *all = NULL;
    drv_err_t r = drv_hstore_list(s, DRV_KIND_NAMESPACE, NULL, NULL, &all, NULL, err);
    drv_err_t first = DRV_OK;
    const cJSON *ns;
    cJSON_ArrayForEach(ns, (r == DRV_OK ? all : NULL))
    {
        const char *phase = drv_json_str(drv_json_get(ns, "status"), "phase");
        if (!phase || strcmp(phase, "Terminating"))
            continue;
        drv_error_t e = DRV_ERROR_INIT;
        drv_err_t f = finish(s, ctrl_meta(ns, "name"), NULL, &e);
        if (f != DRV_OK && f != DRV_ERR_NOTFOUND && first == DRV_OK) {
            first = f;
            drv_error_set(err, f, e.sys_errno, "%s", drv_error_msg(&e));
        }
    }
    return r != DRV_OK ? r : first;
}
