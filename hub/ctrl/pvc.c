/* PersistentVolumeClaims: the built-in node-local provisioner (drover.io/local-path, as K3s's
 * local-path) and the binder. The scheduler calls drv_ctrl_pvc_bind once it chose a node for a
 * pod: each unbound claim of the pod gets a new PV on that node (or an Available one made by
 * hand), bound both ways. The reconcile round keeps the default StorageClass, gives claims
 * without a class the default one, and writes the claims' and volumes' phases (Bound,
 * Released, Lost, Failed). A Released volume with reclaim policy Delete is removed by its
 * node's agent, which says so in its status; the bridge then deletes the PV (bridge/storage.c). */
#include <stdlib.h>
#include <string.h>

#include "ctrl/ctrl_int.h"
#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/log.h"
#include "drover/model.h"
#include "sched/volumes.h"

#define COMPONENT "drover.io/local-path"
/* Where an agent that did not report its storage directory keeps volumes (its default). */
#define DEFAULT_STORAGE_DIR "/var/lib/drover/storage"

/* ---- the default StorageClass ---- */

drv_err_t drv_ctrl_storage_defaults(drv_hstore_t *s, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *cur = NULL;
    drv_err_t r =
        drv_hstore_get(s, DRV_KIND_STORAGECLASS, NULL, DRV_SCHED_DEFAULT_CLASS, &cur, NULL);
    if (r == DRV_OK)
        return DRV_OK;
    if (r != DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, 0, "storageclass %s", DRV_SCHED_DEFAULT_CLASS);
    _cleanup_cjson_ cJSON *sc = cJSON_Parse(
        "{\"apiVersion\":\"storage.k8s.io/v1\",\"kind\":\"StorageClass\",\"metadata\":{"
        "\"name\":\"" DRV_SCHED_DEFAULT_CLASS "\",\"annotations\":{\"" DRV_SCHED_ANN_DEFAULT_CLASS
        "\":\"true\"}},\"provisioner\":\"" DRV_SCHED_LOCAL_PROVISIONER "\","
        "\"reclaimPolicy\":\"Delete\",\"volumeBindingMode\":\"WaitForFirstConsumer\"}");
    if (!sc)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "storageclass");
    r = drv_model_normalize(sc, NULL);
    if (r == DRV_OK)
        r = drv_hstore_create(s, DRV_KIND_STORAGECLASS, sc, err);
    if (r == DRV_ERR_EXISTS)
        return DRV_OK;
    if (r == DRV_OK)
        drv_log_info("default StorageClass created", "name=%s provisioner=%s",
                     DRV_SCHED_DEFAULT_CLASS, DRV_SCHED_LOCAL_PROVISIONER);
    return r;
}

/* ---- binding ---- */

static const cJSON *find_named(const cJSON *arr, const char *ns, const char *name)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, arr)
    {
        if (!strcmp(ctrl_meta(o, "name"), name) && (!ns || !strcmp(ctrl_meta(o, "namespace"), ns)))
            return o;
    }
    return NULL;
}

static cJSON *str_array(const cJSON *src)
{
    return src ? cJSON_Duplicate(src, true) : cJSON_CreateArray();
}

/* The claim's status once bound to pv. */
static drv_err_t set_claim_bound(drv_hstore_t *s, const cJSON *pvc, const cJSON *pv,
                                 drv_error_t *err)
{
    cJSON *st = cJSON_CreateObject(), *cap = cJSON_CreateObject();
    const char *size = drv_json_str_at(pv, "spec.capacity.storage");
    bool ok =
        st && cap && cJSON_AddStringToObject(st, "phase", "Bound") &&
        cJSON_AddItemToObject(st, "accessModes", str_array(drv_json_at(pv, "spec.accessModes"))) &&
        cJSON_AddItemToObject(st, "capacity", cap) &&
        cJSON_AddStringToObject(cap, "storage", size ? size : "0");
    if (!ok) {
        bool attached = st && drv_json_get(st, "capacity") == cap;
        cJSON_Delete(st);
        if (!attached)
            cJSON_Delete(cap);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "claim status");
    }
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_update_status(s, DRV_KIND_PVC, ctrl_meta(pvc, "namespace"),
                                           ctrl_meta(pvc, "name"), st, NULL, &e);
    if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, e.sys_errno, "claim %s status: %s", ctrl_meta(pvc, "name"),
                             drv_error_msg(&e));
    return DRV_OK;
}

/* Sets spec.volumeName and the binder's annotations on the claim (a copy of the listed one). */
static drv_err_t bind_claim(drv_hstore_t *s, const cJSON *pvc, const char *pv_name, const char *cls,
                            const char *node, bool provisioned, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *c = cJSON_Duplicate(pvc, true);
    cJSON *meta = c ? drv_json_get(c, "metadata") : NULL;
    cJSON *ann = meta ? drv_json_get(meta, "annotations") : NULL;
    if (meta && !cJSON_IsObject(ann))
        ann = cJSON_AddObjectToObject(meta, "annotations");
    bool ok = ann && ctrl_set(drv_json_get(c, "spec"), "volumeName", cJSON_CreateString(pv_name)) &&
              ctrl_set(ann, "pv.kubernetes.io/bind-completed", cJSON_CreateString("yes")) &&
              ctrl_set(ann, "pv.kubernetes.io/bound-by-controller", cJSON_CreateString("yes"));
    if (ok && node)
        ok = ctrl_set(ann, DRV_SCHED_ANN_SELECTED_NODE, cJSON_CreateString(node));
    /* Bound before the claims' round gave it the default class: the class it was bound by. */
    if (ok && cls && *cls && !drv_json_at(c, "spec.storageClassName"))
        ok = ctrl_set(drv_json_get(c, "spec"), "storageClassName", cJSON_CreateString(cls));
    if (ok && provisioned)
        ok = ctrl_set(ann, "volume.kubernetes.io/storage-provisioner",
                      cJSON_CreateString(DRV_SCHED_LOCAL_PROVISIONER));
    if (!ok)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "claim %s", ctrl_meta(pvc, "name"));
    cJSON_DeleteItemFromObjectCaseSensitive(c, "status");
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_update(s, DRV_KIND_PVC, c, &e);
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "bind claim %s/%s: %s",
                             ctrl_meta(pvc, "namespace"), ctrl_meta(pvc, "name"),
                             drv_error_msg(&e));
    return DRV_OK;
}

static cJSON *claim_ref(const cJSON *pvc)
{
    cJSON *ref = cJSON_CreateObject();
    if (!ref || !cJSON_AddStringToObject(ref, "apiVersion", "v1") ||
        !cJSON_AddStringToObject(ref, "kind", "PersistentVolumeClaim") ||
        !cJSON_AddStringToObject(ref, "namespace", ctrl_meta(pvc, "namespace")) ||
        !cJSON_AddStringToObject(ref, "name", ctrl_meta(pvc, "name")) ||
        !cJSON_AddStringToObject(ref, "uid", ctrl_meta(pvc, "uid"))) {
        cJSON_Delete(ref);
        return NULL;
    }
    return ref;
}

/* A new PV for pvc on node, in the node's storage directory. */
static drv_err_t provision(drv_hstore_t *s, const drv_sched_volctx_t *ctx, const cJSON *pvc,
                           const cJSON *cls, const char *node, int64_t now_ms, drv_error_t *err)
{
    const cJSON *n = find_named(ctx->nodes, NULL, node);
    const char *dir =
        drv_json_str(drv_json_at(n, "metadata.annotations"), DRV_SCHED_ANN_STORAGE_DIR);
    if (!dir || dir[0] != '/')
        dir = DEFAULT_STORAGE_DIR;
    char name[300], path[1024];
    if (drv_fmt(name, sizeof(name), "pvc-%s", ctrl_meta(pvc, "uid")) != DRV_OK ||
        drv_fmt(path, sizeof(path), "%s/%s_%s_%s", dir, name, ctrl_meta(pvc, "namespace"),
                ctrl_meta(pvc, "name")) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "volume path for claim %s: too long",
                             ctrl_meta(pvc, "name"));
    const char *size = drv_json_str_at(pvc, "spec.resources.requests.storage");
    _cleanup_cjson_ cJSON *pv = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(pv, "metadata");
    cJSON *ann = meta ? cJSON_AddObjectToObject(meta, "annotations") : NULL;
    cJSON *spec = cJSON_AddObjectToObject(pv, "spec");
    cJSON *cap = spec ? cJSON_AddObjectToObject(spec, "capacity") : NULL;
    cJSON *local = spec ? cJSON_AddObjectToObject(spec, "local") : NULL;
    cJSON *terms = cJSON_CreateArray(), *term = cJSON_CreateObject(), *exprs = cJSON_CreateArray(),
          *ex = cJSON_CreateObject(), *vals = cJSON_CreateArray();
    cJSON *aff = cJSON_CreateObject(), *req = cJSON_CreateObject();
    bool ok = pv && meta && ann && spec && cap && local && terms && term && exprs && ex && vals &&
              aff && req;
    if (ok) {
        cJSON_AddItemToArray(vals, cJSON_CreateString(node));
        cJSON_AddStringToObject(ex, "key", "kubernetes.io/hostname");
        cJSON_AddStringToObject(ex, "operator", "In");
        cJSON_AddItemToObject(ex, "values", vals);
        cJSON_AddItemToArray(exprs, ex);
        cJSON_AddItemToObject(term, "matchExpressions", exprs);
        cJSON_AddItemToArray(terms, term);
        cJSON_AddItemToObject(req, "nodeSelectorTerms", terms);
        cJSON_AddItemToObject(aff, "required", req);
        cJSON_AddItemToObject(spec, "nodeAffinity", aff);
    } else {
        cJSON_Delete(terms);
        cJSON_Delete(term);
        cJSON_Delete(exprs);
        cJSON_Delete(ex);
        cJSON_Delete(vals);
        cJSON_Delete(aff);
        cJSON_Delete(req);
    }
    ok = ok && cJSON_AddStringToObject(pv, "apiVersion", "v1") &&
         cJSON_AddStringToObject(pv, "kind", "PersistentVolume") &&
         cJSON_AddStringToObject(meta, "name", name) &&
         cJSON_AddStringToObject(ann, DRV_SCHED_ANN_PROVISIONED_BY, DRV_SCHED_LOCAL_PROVISIONER) &&
         cJSON_AddStringToObject(cap, "storage", size ? size : "1") &&
         cJSON_AddItemToObject(spec, "accessModes",
                               str_array(drv_json_at(pvc, "spec.accessModes"))) &&
         cJSON_AddStringToObject(spec, "persistentVolumeReclaimPolicy",
                                 drv_json_str_or(cls, "reclaimPolicy", "Delete")) &&
         cJSON_AddStringToObject(spec, "storageClassName", ctrl_meta(cls, "name")) &&
         cJSON_AddStringToObject(spec, "volumeMode", "Filesystem") &&
         cJSON_AddItemToObject(spec, "claimRef", claim_ref(pvc)) &&
         cJSON_AddStringToObject(local, "path", path);
    if (!ok)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "volume for claim %s", ctrl_meta(pvc, "name"));
    drv_diags_t d = {0};
    drv_err_t r = drv_model_normalize(pv, &d);
    if (r != DRV_OK) {
        _cleanup_free_ char *why = drv_diags_format(&d, NULL);
        drv_diags_free(&d);
        return drv_error_set(err, r, 0, "volume for claim %s: %s", ctrl_meta(pvc, "name"),
                             why ? why : "invalid");
    }
    drv_diags_free(&d);
    cJSON *st = cJSON_AddObjectToObject(pv, "status");
    if (!st || !cJSON_AddStringToObject(st, "phase", "Bound"))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "volume for claim %s", ctrl_meta(pvc, "name"));
    drv_error_t e = DRV_ERROR_INIT;
    r = drv_hstore_create(s, DRV_KIND_PV, pv, &e);
    if (r != DRV_OK && r != DRV_ERR_EXISTS)
        return drv_error_set(err, r, e.sys_errno, "create volume %s: %s", name, drv_error_msg(&e));
    r = bind_claim(s, pvc, name, ctrl_meta(cls, "name"), node, true, err);
    if (r == DRV_OK)
        r = set_claim_bound(s, pvc, pv, err);
    if (r == DRV_OK) {
        char msg[600];
        drv_fmt_cut(msg, sizeof(msg), "Successfully provisioned volume %s on node %s using %s",
                    name, node, DRV_SCHED_LOCAL_PROVISIONER);
        ctrl_event(s, pvc, DRV_KIND_PVC, "Normal", "ProvisioningSucceeded", msg, COMPONENT, now_ms);
    }
    return r;
}

/* Binds the Available PV pv (made by hand) to pvc. */
static drv_err_t bind_static(drv_hstore_t *s, const cJSON *pvc, const cJSON *pv, const char *node,
                             int64_t now_ms, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *c = cJSON_Duplicate(pv, true);
    if (!c || !ctrl_set(drv_json_get(c, "spec"), "claimRef", claim_ref(pvc)))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "volume %s", ctrl_meta(pv, "name"));
    cJSON_DeleteItemFromObjectCaseSensitive(c, "status");
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_update(s, DRV_KIND_PV, c, &e);
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "bind volume %s: %s", ctrl_meta(pv, "name"),
                             drv_error_msg(&e));
    cJSON *st = cJSON_CreateObject();
    if (!st || !cJSON_AddStringToObject(st, "phase", "Bound")) {
        cJSON_Delete(st);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "volume status");
    }
    r = drv_hstore_update_status(s, DRV_KIND_PV, NULL, ctrl_meta(pv, "name"), st, NULL, &e);
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "volume %s status: %s", ctrl_meta(pv, "name"),
                             drv_error_msg(&e));
    r = bind_claim(s, pvc, ctrl_meta(pv, "name"), drv_json_str_at(pv, "spec.storageClassName"),
                   node, false, err);
    if (r == DRV_OK)
        r = set_claim_bound(s, pvc, pv, err);
    if (r == DRV_OK) {
        char msg[400];
        drv_fmt_cut(msg, sizeof(msg), "bound to volume %s", ctrl_meta(pv, "name"));
        ctrl_event(s, pvc, DRV_KIND_PVC, "Normal", "Bound", msg, "drover-volume-binder", now_ms);
    }
    return r;
}

drv_err_t drv_ctrl_pvc_bind(drv_hstore_t *s, const drv_sched_volctx_t *ctx, const cJSON *pod,
                            const char *node, int64_t now_ms, drv_error_t *err)
{
    const char *ns = ctrl_meta(pod, "namespace");
    const cJSON *v;
    cJSON_ArrayForEach(v, drv_json_at(pod, "spec.volumes"))
    {
        const char *cn = drv_json_str(drv_json_get(v, "persistentVolumeClaim"), "claimName");
        const cJSON *pvc = cn ? find_named(ctx->pvcs, ns, cn) : NULL;
        if (!pvc)
            continue;
        const char *vn = drv_json_str_at(pvc, "spec.volumeName");
        if (vn && *vn)
            continue; /* bound already */
        const cJSON *cls = drv_sched_claim_class(ctx, pvc);
        const char *prov = drv_json_str(cls, "provisioner");
        drv_err_t r;
        if (prov && !strcmp(prov, DRV_SCHED_LOCAL_PROVISIONER)) {
            r = provision(s, ctx, pvc, cls, node, now_ms, err);
        } else {
            const cJSON *pv = drv_sched_pv_pick(ctx, pvc);
            if (!pv)
                return drv_error_set(err, DRV_ERR_NOTFOUND, 0,
                                     "persistentvolumeclaim \"%s\": no available volume fits it",
                                     cn);
            r = bind_static(s, pvc, pv, node, now_ms, err);
        }
        if (r != DRV_OK)
            return r;
    }
    return DRV_OK;
}

/* ---- protection: a claim in use is deleted once no pod uses it ---- */

#define PVC_FINALIZER "kubernetes.io/pvc-protection"

/* Whether a pod of pods (not finished) names the claim ns/name. */
static bool claim_in_use(const cJSON *pods, const char *ns, const char *name)
{
    const cJSON *p, *v;
    cJSON_ArrayForEach(p, pods)
    {
        if (strcmp(ctrl_meta(p, "namespace"), ns) || ctrl_pod_finished(p))
            continue;
        cJSON_ArrayForEach(v, drv_json_at(p, "spec.volumes"))
        {
            const char *cn = drv_json_str(drv_json_get(v, "persistentVolumeClaim"), "claimName");
            if (cn && !strcmp(cn, name))
                return true;
        }
    }
    return false;
}

drv_err_t drv_ctrl_pvc_delete(drv_hstore_t *s, const char *ns, const char *name, int64_t now_ms,
                              cJSON **out, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *pvc = NULL, *pods = NULL;
    drv_err_t r = drv_hstore_get(s, DRV_KIND_PVC, ns, name, &pvc, err);
    if (r == DRV_OK)
        r = drv_hstore_list(s, DRV_KIND_POD, ns, NULL, &pods, NULL, err);
    if (r != DRV_OK)
        return r;
    if (!claim_in_use(pods, ns, name))
        return drv_hstore_delete(s, DRV_KIND_PVC, ns, name, out, err);
    if (!*ctrl_meta(pvc, "deletionTimestamp")) {
        char ts[40];
        drv_ctrl_time_format(now_ms, ts, sizeof(ts));
        cJSON *fin = cJSON_CreateArray();
        cJSON *meta = drv_json_get(pvc, "metadata");
        if (!fin || !cJSON_AddItemToArray(fin, cJSON_CreateString(PVC_FINALIZER)) ||
            !ctrl_set(meta, "finalizers", fin) ||
            !ctrl_set(meta, "deletionTimestamp", cJSON_CreateString(ts))) {
            if (!drv_json_get(meta, "finalizers"))
                cJSON_Delete(fin);
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "claim %s", name);
        }
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "resourceVersion");
        r = drv_hstore_update(s, DRV_KIND_PVC, pvc, err);
        if (r != DRV_OK)
            return r;
        drv_log_info("claim in use: deleted once its pods are gone", "claim=%s/%s", ns, name);
    }
    *out = TAKE_PTR(pvc);
    return DRV_OK;
}

/* Deletes the claims being deleted (deletionTimestamp) that no pod uses any more. */
static drv_err_t finish_deletions(drv_hstore_t *s, const cJSON *pvcs, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *pods = NULL;
    const cJSON *pvc;
    cJSON_ArrayForEach(pvc, pvcs)
    {
        if (!*ctrl_meta(pvc, "deletionTimestamp"))
            continue;
        drv_err_t r =
            pods ? DRV_OK : drv_hstore_list(s, DRV_KIND_POD, NULL, NULL, &pods, NULL, err);
        if (r != DRV_OK)
            return r;
        if (claim_in_use(pods, ctrl_meta(pvc, "namespace"), ctrl_meta(pvc, "name")))
            continue;
        drv_error_t e = DRV_ERROR_INIT;
        r = drv_hstore_delete(s, DRV_KIND_PVC, ctrl_meta(pvc, "namespace"), ctrl_meta(pvc, "name"),
                              NULL, &e);
        if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
            return drv_error_set(err, r, e.sys_errno, "delete claim %s: %s", ctrl_meta(pvc, "name"),
                                 drv_error_msg(&e));
        if (r == DRV_OK)
            drv_log_info("claim deleted: no pod uses it any more", "claim=%s/%s",
                         ctrl_meta(pvc, "namespace"), ctrl_meta(pvc, "name"));
    }
    return DRV_OK;
}

/* ---- the round: default class, phases ---- */

static drv_err_t set_phase(drv_hstore_t *s, drv_kind_t kind, const cJSON *obj, const char *phase,
                           const char *reason, const char *message, drv_error_t *err)
{
    const cJSON *old = drv_json_get(obj, "status");
    const char *op = drv_json_str(old, "phase"), *om = drv_json_str(old, "message");
    if (op && !strcmp(op, phase) && !strcmp(om ? om : "", message ? message : ""))
        return DRV_OK;
    cJSON *st = cJSON_IsObject(old) ? cJSON_Duplicate(old, true) : cJSON_CreateObject();
    bool ok = st && ctrl_set(st, "phase", cJSON_CreateString(phase));
    cJSON_DeleteItemFromObjectCaseSensitive(st, "reason");
    cJSON_DeleteItemFromObjectCaseSensitive(st, "message");
    if (ok && reason)
        ok = ctrl_set(st, "reason", cJSON_CreateString(reason));
    if (ok && message)
        ok = ctrl_set(st, "message", cJSON_CreateString(message));
    if (!ok) {
        cJSON_Delete(st);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "status");
    }
    drv_error_t e = DRV_ERROR_INIT;
    const char *ns = ctrl_meta(obj, "namespace");
    drv_err_t r =
        drv_hstore_update_status(s, kind, *ns ? ns : NULL, ctrl_meta(obj, "name"), st, NULL, &e);
    if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, e.sys_errno, "%s %s status: %s", drv_kind_name(kind),
                             ctrl_meta(obj, "name"), drv_error_msg(&e));
    return DRV_OK;
}

/* The class a claim without storageClassName gets: the one annotated default (the newest when
 * several are, as Kubernetes since 1.26), or NULL. */
static const char *default_class(const cJSON *classes)
{
    const cJSON *c, *best = NULL;
    cJSON_ArrayForEach(c, classes)
    {
        const char *d =
            drv_json_str(drv_json_at(c, "metadata.annotations"), DRV_SCHED_ANN_DEFAULT_CLASS);
        if (d && !strcmp(d, "true") &&
            (!best ||
             strcmp(ctrl_meta(c, "creationTimestamp"), ctrl_meta(best, "creationTimestamp")) > 0))
            best = c;
    }
    return best ? ctrl_meta(best, "name") : NULL;
}

/* A claim of a class without the local-path provisioner and with binding mode Immediate (or of
 * no class) is bound to a fitting volume made by hand at once, as Kubernetes' binder does,
 * without waiting for a pod. */
static drv_err_t bind_immediate(drv_hstore_t *s, const drv_sched_volctx_t *ctx, const cJSON *pvc,
                                int64_t now_ms, drv_error_t *err)
{
    const cJSON *cls = drv_sched_claim_class(ctx, pvc);
    const char *prov = drv_json_str(cls, "provisioner");
    const char *mode = drv_json_str_or(cls, "volumeBindingMode", "Immediate");
    const char *cname = drv_json_str_at(pvc, "spec.storageClassName");
    if ((prov && !strcmp(prov, DRV_SCHED_LOCAL_PROVISIONER)) || strcmp(mode, "Immediate") ||
        (!cls && cname && *cname))
        return DRV_OK;
    const cJSON *pv = drv_sched_pv_pick(ctx, pvc);
    if (!pv)
        return DRV_OK;
    drv_err_t r = bind_static(s, pvc, pv, NULL, now_ms, err);
    return r == DRV_ERR_CONFLICT || r == DRV_ERR_NOTFOUND ? DRV_OK : r;
}

static drv_err_t claims_round(drv_hstore_t *s, const drv_sched_volctx_t *ctx, int64_t now_ms,
                              drv_error_t *err)
{
    const char *def = default_class(ctx->classes);
    const cJSON *pvc;
    cJSON_ArrayForEach(pvc, ctx->pvcs)
    {
        const cJSON *spec = drv_json_get(pvc, "spec");
        drv_err_t r = DRV_OK;
        if (def && !drv_json_get(spec, "storageClassName") &&
            !drv_json_str_at(pvc, "spec.volumeName")) {
            _cleanup_cjson_ cJSON *c = cJSON_Duplicate(pvc, true);
            if (!c ||
                !ctrl_set(drv_json_get(c, "spec"), "storageClassName", cJSON_CreateString(def)))
                return drv_error_set(err, DRV_ERR_NOMEM, 0, "claim");
            cJSON_DeleteItemFromObjectCaseSensitive(c, "status");
            drv_error_t e = DRV_ERROR_INIT;
            r = drv_hstore_update(s, DRV_KIND_PVC, c, &e);
            if (r == DRV_ERR_CONFLICT || r == DRV_ERR_NOTFOUND)
                continue;
            if (r != DRV_OK)
                return drv_error_set(err, r, e.sys_errno, "claim %s: %s", ctrl_meta(pvc, "name"),
                                     drv_error_msg(&e));
            continue; /* the rest from what is stored now, next round */
        }
        const char *vn = drv_json_str(spec, "volumeName");
        if (!vn || !*vn) {
            r = set_phase(s, DRV_KIND_PVC, pvc, "Pending", NULL, NULL, err);
            if (r == DRV_OK && !*ctrl_meta(pvc, "deletionTimestamp"))
                r = bind_immediate(s, ctx, pvc, now_ms, err);
        } else {
            const cJSON *pv = find_named(ctx->pvs, NULL, vn);
            const char *ruid = drv_json_str_at(pv, "spec.claimRef.uid");
            if (!pv)
                r = set_phase(s, DRV_KIND_PVC, pvc, "Lost", NULL, NULL, err);
            else if (ruid && !strcmp(ruid, ctrl_meta(pvc, "uid")) &&
                     strcmp(drv_json_str_or(drv_json_get(pvc, "status"), "phase", ""), "Bound"))
                r = set_claim_bound(s, pvc, pv, err);
        }
        if (r != DRV_OK)
            return r;
    }
    return DRV_OK;
}

static drv_err_t volumes_round(drv_hstore_t *s, const drv_sched_volctx_t *ctx, int64_t now_ms,
                               drv_error_t *err)
{
    const cJSON *pv;
    cJSON_ArrayForEach(pv, ctx->pvs)
    {
        const cJSON *ref = drv_json_at(pv, "spec.claimRef");
        const char *phase = drv_json_str_or(drv_json_get(pv, "status"), "phase", "");
        drv_err_t r = DRV_OK;
        if (!ref) {
            r = set_phase(s, DRV_KIND_PV, pv, "Available", NULL, NULL, err);
            if (r != DRV_OK)
                return r;
            continue;
        }
        const cJSON *pvc = find_named(ctx->pvcs, drv_json_str_or(ref, "namespace", ""),
                                      drv_json_str_or(ref, "name", ""));
        const char *ruid = drv_json_str(ref, "uid");
        bool claimed = pvc && (!ruid || !*ruid || !strcmp(ruid, ctrl_meta(pvc, "uid")));
        if (claimed && strcmp(phase, "Released")) {
            r = set_phase(s, DRV_KIND_PV, pv, "Bound", NULL, NULL, err);
        } else if (!claimed && ruid && *ruid) {
            const char *policy = drv_json_str_at(pv, "spec.persistentVolumeReclaimPolicy");
            const char *by =
                drv_json_str(drv_json_at(pv, "metadata.annotations"), DRV_SCHED_ANN_PROVISIONED_BY);
            const char *node = drv_sched_pv_node(pv);
            bool ours = by && !strcmp(by, DRV_SCHED_LOCAL_PROVISIONER);
            if (policy && !strcmp(policy, "Delete") && !ours) {
                r = set_phase(s, DRV_KIND_PV, pv, "Failed", "VolumeFailedDelete",
                              "Drover deletes only the volumes its local-path provisioner made; "
                              "remove this one's data and the volume by hand",
                              err);
            } else if (policy && !strcmp(policy, "Delete") && node &&
                       !find_named(ctx->nodes, NULL, node)) {
                /* Its node is gone: nothing is left to clean, nobody to say it was. */
                drv_error_t e = DRV_ERROR_INIT;
                r = drv_hstore_delete(s, DRV_KIND_PV, NULL, ctrl_meta(pv, "name"), NULL, &e);
                if (r == DRV_OK)
                    drv_log_info("volume deleted: its claim and its node are gone",
                                 "volume=%s node=%s", ctrl_meta(pv, "name"), node);
                else if (r == DRV_ERR_NOTFOUND)
                    r = DRV_OK;
                else
                    r = drv_error_set(err, r, e.sys_errno, "delete volume %s: %s",
                                      ctrl_meta(pv, "name"), drv_error_msg(&e));
            } else if (strcmp(phase, "Released")) {
                char msg[600];
                drv_fmt_cut(msg, sizeof(msg), "claim %s/%s is gone; reclaim policy %s",
                            drv_json_str_or(ref, "namespace", ""), drv_json_str_or(ref, "name", ""),
                            policy ? policy : "Retain");
                r = set_phase(s, DRV_KIND_PV, pv, "Released", NULL, NULL, err);
                if (r == DRV_OK)
                    ctrl_event(s, pv, DRV_KIND_PV, "Normal", "VolumeReleased", msg,
                               "drover-volume-binder", now_ms);
            }
        } else if (!claimed && strcmp(phase, "Available")) {
            r = set_phase(s, DRV_KIND_PV, pv, "Available", NULL, NULL, err);
        }
        if (r != DRV_OK)
            return r;
    }
    return DRV_OK;
}

/* Pods placed without the scheduler (spec.nodeName given: a DaemonSet's, or written so) get
 * their unbound claims bound on their node, as the scheduler would have done. */
static drv_err_t bind_for_placed_pods(drv_hstore_t *s, const drv_sched_volctx_t *ctx,
                                      int64_t now_ms, drv_error_t *err)
{
    bool unbound = false;
    const cJSON *pvc;
    cJSON_ArrayForEach(pvc, ctx->pvcs)
    {
        const char *vn = drv_json_str_at(pvc, "spec.volumeName");
        unbound = unbound || !vn || !*vn;
    }
    if (!unbound)
        return DRV_OK;
    _cleanup_cjson_ cJSON *pods = NULL;
    drv_err_t r = drv_hstore_list(s, DRV_KIND_POD, NULL, NULL, &pods, NULL, err);
    const cJSON *p;
    cJSON_ArrayForEach(p, (r == DRV_OK ? pods : NULL))
    {
        const char *node = drv_json_str_at(p, "spec.nodeName");
        if (!node || !*node || ctrl_pod_finished(p) || !drv_sched_pod_uses_claims(p))
            continue;
        drv_error_t e = DRV_ERROR_INIT;
        drv_err_t br = drv_ctrl_pvc_bind(s, ctx, p, node, now_ms, &e);
        /* One that cannot be bound now (no volume fits, changed meanwhile): a later round. */
        if (br != DRV_OK && br != DRV_ERR_NOTFOUND && br != DRV_ERR_CONFLICT &&
            br != DRV_ERR_EXISTS)
            return drv_error_set(err, br, e.sys_errno, "%s", drv_error_msg(&e));
    }
    return r;
}

drv_err_t drv_ctrl_pvcs_reconcile(drv_hstore_t *s, int64_t now_ms, drv_error_t *err)
{
    drv_err_t r = drv_ctrl_storage_defaults(s, err);
    _cleanup_cjson_ cJSON *pvcs = NULL, *pvs = NULL, *classes = NULL, *nodes = NULL;
    if (r == DRV_OK)
        r = drv_hstore_list(s, DRV_KIND_PVC, NULL, NULL, &pvcs, NULL, err);
    if (r == DRV_OK)
        r = drv_hstore_list(s, DRV_KIND_PV, NULL, NULL, &pvs, NULL, err);
    if (r != DRV_OK || (!cJSON_GetArraySize(pvcs) && !cJSON_GetArraySize(pvs)))
        return r;
    if (r == DRV_OK)
        r = drv_hstore_list(s, DRV_KIND_STORAGECLASS, NULL, NULL, &classes, NULL, err);
    if (r == DRV_OK)
        r = drv_hstore_list(s, DRV_KIND_NODE, NULL, NULL, &nodes, NULL, err);
    drv_sched_volctx_t ctx = {.pvcs = pvcs, .pvs = pvs, .classes = classes, .nodes = nodes};
    if (r == DRV_OK)
        r = finish_deletions(s, pvcs, err);
    if (r == DRV_OK)
        r = claims_round(s, &ctx, now_ms, err);
    if (r == DRV_OK)
        r = bind_for_placed_pods(s, &ctx, now_ms, err);
    if (r == DRV_OK)
        r = volumes_round(s, &ctx, now_ms, err);
    return r;
}
