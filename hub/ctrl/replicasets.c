/* The ReplicaSets of a Deployment, as records of its revisions that kubectl reads (rollout
 * history and undo, describe, get rs): one per kept revision, and one per template that still
 * has pods, named <deployment>-<pod-template-hash>, owned by the Deployment and owning its
 * pods. The Deployment controller (deployment.c) decides the pods; these only follow. */
#include "ctrl/ctrl_int.h"

#include <stdio.h>
#include <string.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"

#define ANN_DESIRED "deployment.kubernetes.io/desired-replicas"
#define ANN_MAX "deployment.kubernetes.io/max-replicas"

const char *ctrl_rs_hash(const cJSON *obj)
{
    return drv_json_str(drv_json_get(drv_json_get(obj, "metadata"), "labels"), DRV_CTRL_LABEL_HASH);
}

cJSON *ctrl_rs_find(const cJSON *rsets, const char *hash)
{
    cJSON *rs;
    cJSON_ArrayForEach(rs, rsets)
    {
        const char *h = ctrl_rs_hash(rs);
        if (h && hash && !strcmp(h, hash))
            return rs;
    }
    return NULL;
}

/* Annotations a ReplicaSet does not take from its Deployment (the controller's own, and
 * kubectl's copy of the manifest), as Kubernetes skips them. */
static bool own_annotation(const char *key)
{
    return !strncmp(key, "deployment.kubernetes.io/", 25) || !strncmp(key, "drover.io/", 10) ||
           !strcmp(key, "kubectl.kubernetes.io/last-applied-configuration");
}

static bool set_num_str(cJSON *obj, const char *key, int64_t v)
{
    char buf[32];
    return drv_fmt(buf, sizeof(buf), "%lld", (long long)v) == DRV_OK &&
           ctrl_set(obj, key, cJSON_CreateString(buf));
}

/* The selector of the Deployment plus the hash label. */
static cJSON *selector_with_hash(const cJSON *dep, const char *hash)
{
    const cJSON *sel = drv_json_get(drv_json_get(dep, "spec"), "selector");
    cJSON *out = cJSON_IsObject(sel) ? cJSON_Duplicate(sel, true) : cJSON_CreateObject();
    cJSON *ml = out ? cJSON_GetObjectItemCaseSensitive(out, "matchLabels") : NULL;
    if (out && !cJSON_IsObject(ml)) {
        ml = cJSON_CreateObject();
        if (!ctrl_set(out, "matchLabels", ml))
            ml = NULL;
    }
    if (!ml || !ctrl_set(ml, DRV_CTRL_LABEL_HASH, cJSON_CreateString(hash))) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

/* The template with the hash label. */
static cJSON *template_with_hash(const cJSON *tpl, const char *hash)
{
    cJSON *t = cJSON_Duplicate(tpl, true);
    cJSON *meta = t ? cJSON_GetObjectItemCaseSensitive(t, "metadata") : NULL;
    if (t && !cJSON_IsObject(meta)) {
        meta = cJSON_CreateObject();
        if (!ctrl_set(t, "metadata", meta))
            meta = NULL;
    }
    cJSON *labels = meta ? cJSON_GetObjectItemCaseSensitive(meta, "labels") : NULL;
    if (meta && !cJSON_IsObject(labels)) {
        labels = cJSON_CreateObject();
        if (!ctrl_set(meta, "labels", labels))
            labels = NULL;
    }
    if (!labels || !ctrl_set(labels, DRV_CTRL_LABEL_HASH, cJSON_CreateString(hash))) {
        cJSON_Delete(t);
        return NULL;
    }
    return t;
}

/* The ReplicaSet dep wants for template tpl (hash), normalized: revision 0 leaves out the
 * revision annotation (kept from old, if any). User annotations come from the Deployment for
 * its current template (current), else from old (may be NULL). */
static cJSON *build(const cJSON *dep, const cJSON *tpl, const char *hash, int64_t revision,
                    int64_t replicas, bool current, const cJSON *old, drv_error_t *err)
{
    const cJSON *dspec = drv_json_get(dep, "spec");
    int64_t want = ctrl_int(dspec, "replicas", 1);
    const cJSON *strategy = drv_json_get(dspec, "strategy");
    const char *stype = drv_json_str(strategy, "type");
    int64_t surge =
        stype && !strcmp(stype, "Recreate")
            ? 0
            : drv_ctrl_int_or_percent(
                  drv_json_get(drv_json_get(strategy, "rollingUpdate"), "maxSurge"), want, true);
    char name[256];
    /* Kubernetes' names are <deployment>-<hash>; a name at the limit is cut, never refused
     * (the controller finds its ReplicaSets by owner and hash, not by name). */
    if (drv_fmt(name, sizeof(name), "%.242s-%s", ctrl_meta(dep, "name"), hash) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "replicaset name"), NULL;
    _cleanup_cjson_ cJSON *rs = cJSON_CreateObject();
    cJSON *meta = NULL, *labels = NULL, *ann = NULL, *spec = NULL;
    const cJSON *tl = drv_json_get(drv_json_get(tpl, "metadata"), "labels");
    bool ok =
        rs && cJSON_AddStringToObject(rs, "apiVersion", "apps/v1") &&
        cJSON_AddStringToObject(rs, "kind", "ReplicaSet") &&
        (meta = cJSON_AddObjectToObject(rs, "metadata")) &&
        cJSON_AddStringToObject(meta, "name", name) &&
        cJSON_AddStringToObject(meta, "namespace", ctrl_meta(dep, "namespace")) &&
        ctrl_set(meta, "labels",
                 labels = cJSON_IsObject(tl) ? cJSON_Duplicate(tl, true) : cJSON_CreateObject()) &&
        ctrl_set(labels, DRV_CTRL_LABEL_HASH, cJSON_CreateString(hash)) &&
        (ann = cJSON_AddObjectToObject(meta, "annotations")) &&
        ctrl_set(meta, "ownerReferences", ctrl_owner_refs(dep, DRV_KIND_DEPLOYMENT)) &&
        (spec = cJSON_AddObjectToObject(rs, "spec")) &&
        cJSON_AddNumberToObject(spec, "replicas", (double)replicas) &&
        cJSON_AddNumberToObject(spec, "minReadySeconds",
                                (double)ctrl_int(dspec, "minReadySeconds", 0)) &&
        ctrl_set(spec, "selector", selector_with_hash(dep, hash)) &&
        ctrl_set(spec, "template", template_with_hash(tpl, hash));
    const cJSON *from = current ? drv_json_get(drv_json_get(dep, "metadata"), "annotations")
                                : drv_json_get(drv_json_get(old, "metadata"), "annotations");
    const cJSON *a;
    cJSON_ArrayForEach(a, (ok && cJSON_IsObject(from) ? from : NULL))
    {
        if (a->string && cJSON_IsString(a) && !own_annotation(a->string))
            ok = ok && ctrl_set(ann, a->string, cJSON_CreateString(a->valuestring));
    }
    const char *old_rev = drv_json_str(drv_json_get(drv_json_get(old, "metadata"), "annotations"),
                                       DRV_CTRL_ANN_REVISION);
    if (ok && revision > 0)
        ok = set_num_str(ann, DRV_CTRL_ANN_REVISION, revision);
    else if (ok && old_rev)
        ok = ctrl_set(ann, DRV_CTRL_ANN_REVISION, cJSON_CreateString(old_rev));
    ok = ok && set_num_str(ann, ANN_DESIRED, want) && set_num_str(ann, ANN_MAX, want + surge);
    if (!ok)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "replicaset %s", name), NULL;
    drv_diags_t d = {0};
    drv_err_t r = drv_model_normalize(rs, &d);
    if (r != DRV_OK) {
        _cleanup_free_ char *msg = drv_diags_format(&d, "  ");
        drv_diags_free(&d);
        return drv_error_set(err, r, 0, "replicaset %s is invalid:\n%s", name, msg ? msg : ""),
               NULL;
    }
    drv_diags_free(&d);
    cJSON *out = rs;
    rs = NULL;
    return out;
}

static bool same(const cJSON *a, const cJSON *b)
{
    if (!a || !b)
        return !a && !b;
    return cJSON_Compare(a, b, true);
}

/* Whether stored already says what want says (metadata the controller sets, and spec). */
static bool up_to_date(const cJSON *stored, const cJSON *want)
{
    const cJSON *sm = drv_json_get(stored, "metadata"), *wm = drv_json_get(want, "metadata");
    static const char *const keys[] = {"labels", "annotations", "ownerReferences"};
    for (size_t i = 0; i < 3; i++)
        if (!same(drv_json_get(sm, keys[i]), drv_json_get(wm, keys[i])))
            return false;
    return same(drv_json_get(stored, "spec"), drv_json_get(want, "spec"));
}

drv_err_t ctrl_rs_put(drv_hstore_t *s, const cJSON *dep, cJSON *rsets, const cJSON *tpl,
                      const char *hash, int64_t revision, int64_t replicas, bool current,
                      cJSON **out, int64_t now_ms, drv_error_t *err)
{
    cJSON *old = ctrl_rs_find(rsets, hash);
    _cleanup_cjson_ cJSON *want = build(dep, tpl, hash, revision, replicas, current, old, err);
    if (!want)
        return err ? err->code : DRV_ERR_INVALID;
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = DRV_OK;
    if (old && up_to_date(old, want)) {
        *out = old;
        return DRV_OK;
    }
    if (old) {
        /* Over the stored one by name (the name may have been cut another way before). */
        if (!ctrl_set((cJSON *)drv_json_get(want, "metadata"), "name",
                      cJSON_CreateString(ctrl_meta(old, "name"))))
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "replicaset");
        r = drv_hstore_update(s, DRV_KIND_REPLICASET, want, &e);
    } else {
        r = drv_hstore_create(s, DRV_KIND_REPLICASET, want, &e);
    }
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "replicaset %s/%s: %s",
                             ctrl_meta(dep, "namespace"), ctrl_meta(want, "name"),
                             drv_error_msg(&e));
    /* What kubectl describe deployment shows: each change of a ReplicaSet's size. */
    int64_t from = old ? ctrl_int(drv_json_get(old, "spec"), "replicas", 0) : 0,
            to = ctrl_int(drv_json_get(want, "spec"), "replicas", 0);
    if (from != to) {
        char msg[400];
        drv_fmt_cut(msg, sizeof(msg), "Scaled %s replica set %s from %lld to %lld",
                    to > from ? "up" : "down", ctrl_meta(want, "name"), (long long)from,
                    (long long)to);
        ctrl_event(s, dep, DRV_KIND_DEPLOYMENT, "Normal", "ScalingReplicaSet", msg,
                   "deployment-controller", now_ms);
    }
    /* want is now as stored (uid, status kept by update): it replaces old in rsets. */
    if (old) {
        cJSON_ReplaceItemViaPointer(rsets, old, want);
    } else if (!cJSON_AddItemToArray(rsets, want)) {
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "replicaset");
    }
    *out = want;
    want = NULL;
    return DRV_OK;
}

drv_err_t ctrl_rs_status(drv_hstore_t *s, const cJSON *rs, int64_t replicas, int64_t ready,
                         int64_t available, drv_error_t *err)
{
    cJSON *st = cJSON_CreateObject();
    bool ok =
        st && cJSON_AddNumberToObject(st, "availableReplicas", (double)available) &&
        cJSON_AddNumberToObject(st, "fullyLabeledReplicas", (double)replicas) &&
        cJSON_AddNumberToObject(st, "observedGeneration",
                                (double)ctrl_int(drv_json_get(rs, "metadata"), "generation", 1)) &&
        cJSON_AddNumberToObject(st, "readyReplicas", (double)ready) &&
        cJSON_AddNumberToObject(st, "replicas", (double)replicas);
    if (!ok) {
        cJSON_Delete(st);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "replicaset status");
    }
    if (same(drv_json_get(rs, "status"), st)) {
        cJSON_Delete(st);
        return DRV_OK;
    }
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_update_status(s, DRV_KIND_REPLICASET, ctrl_meta(rs, "namespace"),
                                           ctrl_meta(rs, "name"), st, NULL, &e);
    if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, e.sys_errno, "replicaset %s status: %s", ctrl_meta(rs, "name"),
                             drv_error_msg(&e));
    return DRV_OK;
}

drv_err_t ctrl_rs_delete(drv_hstore_t *s, const cJSON *rs, drv_error_t *err)
{
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_delete(s, DRV_KIND_REPLICASET, ctrl_meta(rs, "namespace"),
                                    ctrl_meta(rs, "name"), NULL, &e);
    if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, e.sys_errno, "delete replicaset %s/%s: %s",
                             ctrl_meta(rs, "namespace"), ctrl_meta(rs, "name"), drv_error_msg(&e));
    return DRV_OK;
}
