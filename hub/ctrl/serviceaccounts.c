/* ServiceAccounts as Kubernetes keeps them: every Active namespace has a "default" one (made
 * by the hub, as the ServiceAccount controller does), and a pod may only name an account that
 * exists (the ServiceAccount admission: 403 "error looking up service account"). Also the one
 * RBAC rule that needs the stored object: a binding's roleRef never changes. Every namespace
 * also gets the hub CA as the ConfigMap kube-root-ca.crt (Kubernetes' root CA publisher). */
#include "ctrl/ctrl_int.h"

#include <string.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/model.h"

#define DEFAULT_SA "default"

static drv_err_t make_default(drv_hstore_t *s, const char *ns, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *sa = cJSON_CreateObject();
    cJSON *meta = sa ? cJSON_AddObjectToObject(sa, "metadata") : NULL;
    if (!meta || !cJSON_AddStringToObject(sa, "apiVersion", "v1") ||
        !cJSON_AddStringToObject(sa, "kind", "ServiceAccount") ||
        !cJSON_AddStringToObject(meta, "name", DEFAULT_SA) ||
        !cJSON_AddStringToObject(meta, "namespace", ns))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "service account");
    if (drv_model_normalize(sa, NULL) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "namespace %s: default service account", ns);
    drv_err_t r = drv_hstore_create(s, DRV_KIND_SERVICEACCOUNT, sa, err);
    /* Terminating meanwhile (PERM), or made by someone else (EXISTS): nothing to do. */
    if (r == DRV_ERR_EXISTS || r == DRV_ERR_PERM) {
        drv_error_clear(err);
        return DRV_OK;
    }
    return r;
}

#define ROOT_CA_CM "kube-root-ca.crt"

/* The namespace's kube-root-ca.crt ConfigMap made, or put back to ca_pem. */
static drv_err_t root_ca(drv_hstore_t *s, const char *ns, const char *ca_pem, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *cur = NULL;
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_get(s, DRV_KIND_CONFIGMAP, ns, ROOT_CA_CM, &cur, &e);
    if (r == DRV_OK) {
        const char *have = drv_json_str(drv_json_get(cur, "data"), "ca.crt");
        if (have && !strcmp(have, ca_pem))
            return DRV_OK;
    } else if (r != DRV_ERR_NOTFOUND) {
        *err = e;
        return r;
    }
    _cleanup_cjson_ cJSON *cm = cJSON_CreateObject();
    cJSON *meta = cm ? cJSON_AddObjectToObject(cm, "metadata") : NULL;
    cJSON *data = cm ? cJSON_AddObjectToObject(cm, "data") : NULL;
    if (!meta || !data || !cJSON_AddStringToObject(cm, "apiVersion", "v1") ||
        !cJSON_AddStringToObject(cm, "kind", "ConfigMap") ||
        !cJSON_AddStringToObject(meta, "name", ROOT_CA_CM) ||
        !cJSON_AddStringToObject(meta, "namespace", ns) ||
        !cJSON_AddStringToObject(data, "ca.crt", ca_pem))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "namespace %s: %s", ns, ROOT_CA_CM);
    if (drv_model_normalize(cm, NULL) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "namespace %s: %s", ns, ROOT_CA_CM);
    if (cur) {
        /* someone changed it: the hub's CA again, over the same object */
        const char *rv = drv_json_str(drv_json_get(cur, "metadata"), "resourceVersion");
        if (rv && !cJSON_AddStringToObject(meta, "resourceVersion", rv))
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "namespace %s: %s", ns, ROOT_CA_CM);
        r = drv_hstore_update(s, DRV_KIND_CONFIGMAP, cm, err);
    } else {
        r = drv_hstore_create(s, DRV_KIND_CONFIGMAP, cm, err);
    }
    /* Terminating meanwhile (PERM), or a race (EXISTS, CONFLICT): the next round. */
    if (r == DRV_ERR_EXISTS || r == DRV_ERR_PERM || r == DRV_ERR_CONFLICT) {
        drv_error_clear(err);
        return DRV_OK;
    }
    return r;
}

drv_err_t drv_ctrl_serviceaccounts_reconcile(drv_hstore_t *s, const char *ca_pem, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *all = NULL;
    drv_err_t r = drv_hstore_list(s, DRV_KIND_NAMESPACE, NULL, NULL, &all, NULL, err);
    if (r != DRV_OK)
        return r;
    const cJSON *ns;
    cJSON_ArrayForEach(ns, all)
    {
        const char *phase = drv_json_str(drv_json_get(ns, "status"), "phase");
        if (phase && strcmp(phase, "Active"))
            continue;
        const char *name = ctrl_meta(ns, "name");
        _cleanup_cjson_ cJSON *sa = NULL;
        drv_error_t e = DRV_ERROR_INIT;
        r = drv_hstore_get(s, DRV_KIND_SERVICEACCOUNT, name, DEFAULT_SA, &sa, &e);
        if (r == DRV_ERR_NOTFOUND)
            r = make_default(s, name, &e);
        if (r == DRV_OK && ca_pem && *ca_pem)
            r = root_ca(s, name, ca_pem, &e);
        if (r != DRV_OK)
            return drv_error_set(err, r, e.sys_errno, "namespace %s: %s", name, drv_error_msg(&e));
    }
    return DRV_OK;
}

/* A binding's roleRef cannot change (Kubernetes: delete and create it again). */
static drv_err_t binding_update(drv_hstore_t *s, drv_kind_t kind, const cJSON *obj, char *field,
                                size_t fieldsz, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *cur = NULL;
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r =
        drv_hstore_get(s, kind, ctrl_meta(obj, "namespace"), ctrl_meta(obj, "name"), &cur, &e);
    if (r == DRV_ERR_NOTFOUND)
        return DRV_OK; /* the update then says so */
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "%s", drv_error_msg(&e));
    if (cJSON_Compare(drv_json_get(cur, "roleRef"), drv_json_get(obj, "roleRef"), true))
        return DRV_OK;
    drv_fmt_cut(field, fieldsz, "roleRef");
    return drv_error_set(err, DRV_ERR_INVALID, 0, "roleRef: cannot change roleRef");
}

drv_err_t drv_ctrl_serviceaccount_admit(drv_hstore_t *s, drv_kind_t kind, bool create,
                                        const cJSON *obj, char *field, size_t fieldsz,
                                        drv_error_t *err)
{
    if ((kind == DRV_KIND_ROLEBINDING || kind == DRV_KIND_CLUSTERROLEBINDING) && !create)
        return binding_update(s, kind, obj, field, fieldsz, err);
    if (kind != DRV_KIND_POD || !create)
        return DRV_OK;
    const char *sa = drv_json_str(drv_json_get(obj, "spec"), "serviceAccountName");
    const char *ns = ctrl_meta(obj, "namespace");
    if (!sa || !*sa)
        return DRV_OK;
    _cleanup_cjson_ cJSON *cur = NULL;
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_get(s, DRV_KIND_SERVICEACCOUNT, *ns ? ns : "default", sa, &cur, &e);
    /* The default account of a namespace made a moment ago (by this very pod) comes with the
     * next controller round: not worth refusing the pod for. */
    if (r == DRV_ERR_NOTFOUND && !strcmp(sa, DEFAULT_SA))
        return DRV_OK;
    if (r == DRV_ERR_NOTFOUND) {
        drv_fmt_cut(field, fieldsz, "spec.serviceAccountName");
        return drv_error_set(err, DRV_ERR_PERM, 0,
                             "pods \"%s\" is forbidden: error looking up service account %s/%s: "
                             "serviceaccount \"%s\" not found",
                             ctrl_meta(obj, "name"), *ns ? ns : "default", sa, sa);
    }
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "service account %s: %s", sa, drv_error_msg(&e));
    return DRV_OK;
}
