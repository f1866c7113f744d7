/* The namespace lifecycle the hub runs its store with: the system namespaces exist, a
 * namespace comes into being with the first object written into it, and one being terminated
 * takes nothing new. Deleting a namespace's contents is the controllers' (hub/ctrl). */
#include "store/store_int.h"

#include <string.h>

#include "drover/cleanup.h"
#include "drover/json.h"

static const char *const system_ns[] = {"default", "kube-system", "kube-public", "kube-node-lease"};

bool drv_hstore_ns_protected(const char *name)
{
    /* kube-node-lease may go, as in Kubernetes. */
    for (size_t i = 0; i < 3; i++)
        if (name && !strcmp(name, system_ns[i]))
            return true;
    return false;
}

/* Creates Namespace name (Active, labelled with its name). */
static drv_err_t ns_create(drv_hstore_t *s, const char *name, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *ns = cJSON_CreateObject();
    cJSON *meta = NULL, *labels = NULL;
    bool ok = ns && cJSON_AddStringToObject(ns, "apiVersion", "v1") &&
              cJSON_AddStringToObject(ns, "kind", "Namespace") &&
              (meta = cJSON_AddObjectToObject(ns, "metadata")) &&
              cJSON_AddStringToObject(meta, "name", name) &&
              (labels = cJSON_AddObjectToObject(meta, "labels")) &&
              cJSON_AddStringToObject(labels, DRV_HSTORE_NS_LABEL, name);
    if (!ok)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "namespace %s", name);
    drv_diags_t d = {0};
    drv_err_t r = drv_model_normalize(ns, &d);
    if (r != DRV_OK) {
        _cleanup_free_ char *msg = drv_diags_format(&d, NULL);
        drv_diags_free(&d);
        return drv_error_set(err, r, 0, "namespace \"%.64s\": %s", name,
                             msg ? msg : drv_strerror(r));
    }
    drv_diags_free(&d);
    r = drv_hstore_create(s, DRV_KIND_NAMESPACE, ns, err);
    return r == DRV_ERR_EXISTS ? DRV_OK : r;
}

drv_err_t hstore_ns_admit(drv_hstore_t *s, const char *ns, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *cur = NULL;
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_get(s, DRV_KIND_NAMESPACE, NULL, ns, &cur, &e);
    if (r == DRV_ERR_NOTFOUND)
        return ns_create(s, ns, err);
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "namespace %s: %s", ns, drv_error_msg(&e));
    const char *phase = drv_json_str(drv_json_get(cur, "status"), "phase");
    if (phase && !strcmp(phase, "Terminating"))
        return drv_error_set(err, DRV_ERR_PERM, 0,
                             "unable to create new content in namespace %s because it is being "
                             "terminated",
                             ns);
    return DRV_OK;
}

drv_err_t drv_hstore_namespaces_enable(drv_hstore_t *s, drv_error_t *err)
{
    for (size_t i = 0; i < sizeof(system_ns) / sizeof(system_ns[0]); i++) {
        drv_err_t r = hstore_ns_admit(s, system_ns[i], err);
        if (r != DRV_OK)
            return r;
    }
    hstore_set_namespaces(s, true);
    return DRV_OK;
}
