/* A DaemonSet's or StatefulSet's ControllerRevisions, the records of its templates that kubectl
 * rollout history and undo read: one per distinct template, named <owner>-<hash>, owned by the
 * workload, whose data is the strategic merge patch that puts the template back and whose
 * revision numbers them, the current template's the highest. The DaemonSet controller
 * (daemonset.c) calls these on every round. */
#include "ctrl/ctrl_int.h"

#include <stdlib.h>
#include <string.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"

static const char *rev_hash(const cJSON *rev)
{
    return drv_json_str(drv_json_get(drv_json_get(rev, "metadata"), "labels"),
                        DRV_CTRL_LABEL_DS_HASH);
}

static int64_t rev_number(const cJSON *rev)
{
    return ctrl_int(rev, "revision", 0);
}

drv_err_t ctrl_dsrev_list(drv_hstore_t *s, const cJSON *ds, cJSON **out, drv_error_t *err)
{
    cJSON *all = NULL;
    drv_err_t r = drv_hstore_list(s, DRV_KIND_CONTROLLERREVISION, ctrl_meta(ds, "namespace"), NULL,
                                  &all, NULL, err);
    if (r != DRV_OK)
        return r;
    const char *uid = ctrl_meta(ds, "uid");
    cJSON *c = all ? all->child : NULL;
    while (c) {
        cJSON *next = c->next;
        const char *cuid = drv_json_str(drv_ctrl_controller_of(c), "uid");
        if (!cuid || strcmp(cuid, uid))
            cJSON_Delete(cJSON_DetachItemViaPointer(all, c));
        c = next;
    }
    *out = all;
    return DRV_OK;
}

/* {"spec":{"template":{...tpl..., "$patch":"replace"}}}: what kubectl rollout undo sends
 * back as a strategic merge patch, replacing the whole template. */
static cJSON *restore_patch(const cJSON *tpl)
{
    cJSON *data = cJSON_CreateObject();
    cJSON *spec = data ? cJSON_AddObjectToObject(data, "spec") : NULL;
    cJSON *t = cJSON_IsObject(tpl) ? cJSON_Duplicate(tpl, true) : NULL;
    if (t && !cJSON_AddStringToObject(t, "$patch", "replace")) {
        cJSON_Delete(t);
        t = NULL;
    }
    if (!ctrl_set(spec, "template", t)) { /* t consumed either way */
        cJSON_Delete(data);
        return NULL;
    }
    drv_json_sort_keys(data);
    return data;
}

/* The record of ds's template tpl (hash) with number revision, normalized. Labels are the
 * template's (so the DaemonSet's selector, which kubectl lists them by, matches) plus the
 * hash; annotations are the DaemonSet's at the time (kubectl shows their change-cause), as
 * Kubernetes' controller makes them. */
static cJSON *build(const cJSON *ds, const cJSON *tpl, const char *hash, int64_t revision,
                    drv_error_t *err)
{
    char name[256];
    /* <daemonset>-<hash>; a name at the limit is cut, never refused (records are found by
     * owner and hash, not by name). */
    if (drv_fmt(name, sizeof(name), "%.242s-%s", ctrl_meta(ds, "name"), hash) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "controllerrevision name"), NULL;
    _cleanup_cjson_ cJSON *rev = cJSON_CreateObject();
    cJSON *meta = NULL, *labels = NULL;
    const cJSON *tl = drv_json_get(drv_json_get(tpl, "metadata"), "labels");
    const cJSON *ann = drv_json_get(drv_json_get(ds, "metadata"), "annotations");
    bool ok =
        rev && cJSON_AddStringToObject(rev, "apiVersion", "apps/v1") &&
        cJSON_AddStringToObject(rev, "kind", "ControllerRevision") &&
        (meta = cJSON_AddObjectToObject(rev, "metadata")) &&
        cJSON_AddStringToObject(meta, "name", name) &&
        cJSON_AddStringToObject(meta, "namespace", ctrl_meta(ds, "namespace")) &&
        ctrl_set(meta, "labels",
                 labels = cJSON_IsObject(tl) ? cJSON_Duplicate(tl, true) : cJSON_CreateObject()) &&
        ctrl_set(labels, DRV_CTRL_LABEL_DS_HASH, cJSON_CreateString(hash)) &&
        (!cJSON_IsObject(ann) || ctrl_set(meta, "annotations", cJSON_Duplicate(ann, true))) &&
        ctrl_set(meta, "ownerReferences", ctrl_owner_refs(ds, drv_model_kind(ds))) &&
        ctrl_set(rev, "data", restore_patch(tpl)) &&
        cJSON_AddNumberToObject(rev, "revision", (double)revision);
    if (!ok)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "controllerrevision %s", name), NULL;
    drv_diags_t d = {0};
    drv_err_t r = drv_model_normalize(rev, &d);
    if (r != DRV_OK) {
        _cleanup_free_ char *msg = drv_diags_format(&d, "  ");
        drv_diags_free(&d);
        return drv_error_set(err, r, 0, "controllerrevision %s is invalid:\n%s", name,
                             msg ? msg : ""),
               NULL;
    }
    drv_diags_free(&d);
    cJSON *out = rev;
    rev = NULL;
    return out;
}

/* Stores rev over the record it replaces (by name). */
static drv_err_t put(drv_hstore_t *s, cJSON *rev, bool create, drv_error_t *err)
{
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = create ? drv_hstore_create(s, DRV_KIND_CONTROLLERREVISION, rev, &e)
                         : drv_hstore_update(s, DRV_KIND_CONTROLLERREVISION, rev, &e);
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "controllerrevision %s/%s: %s",
                             ctrl_meta(rev, "namespace"), ctrl_meta(rev, "name"),
                             drv_error_msg(&e));
    return DRV_OK;
}

/* The record named as rev is a leftover of an earlier DaemonSet of ds's name (deleted and made
 * again before a round collected its history): it goes, so that ds's own takes the name. Any
 * other holder of the name is DRV_ERR_EXISTS. */
static drv_err_t drop_leftover(drv_hstore_t *s, const cJSON *ds, const cJSON *rev, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *old = NULL;
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_get(s, DRV_KIND_CONTROLLERREVISION, ctrl_meta(rev, "namespace"),
                                 ctrl_meta(rev, "name"), &old, &e);
    if (r == DRV_ERR_NOTFOUND)
        return DRV_OK;
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "controllerrevision %s: %s",
                             ctrl_meta(rev, "name"), drv_error_msg(&e));
    const cJSON *ref = drv_ctrl_controller_of(old);
    const char *k = drv_json_str(ref, "kind"), *n = drv_json_str(ref, "name");
    const char *uid = drv_json_str(ref, "uid");
    const char *kind = drv_json_str(ds, "kind");
    if (!k || !kind || strcmp(k, kind) || !n || strcmp(n, ctrl_meta(ds, "name")) || !uid ||
        !strcmp(uid, ctrl_meta(ds, "uid")))
        return drv_error_set(
            err, DRV_ERR_EXISTS, 0,
            "controllerrevision %s/%s exists and is not a leftover of daemonset %s",
            ctrl_meta(rev, "namespace"), ctrl_meta(rev, "name"), ctrl_meta(ds, "name"));
    return ctrl_dsrev_delete(s, old, err);
}

drv_err_t ctrl_dsrev_record(drv_hstore_t *s, const cJSON *ds, cJSON *revs, const cJSON *tpl,
                            const char *hash, drv_error_t *err)
{
    cJSON *cur = NULL, *c;
    int64_t max_old = 0;
    cJSON_ArrayForEach(c, revs)
    {
        const char *h = rev_hash(c);
        if (!cur && h && !strcmp(h, hash))
            cur = c;
        else if (rev_number(c) > max_old)
            max_old = rev_number(c);
    }
    _cleanup_cjson_ cJSON *data = restore_patch(tpl);
    if (!data)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "controllerrevision");
    if (cur && rev_number(cur) > max_old && cJSON_Compare(drv_json_get(cur, "data"), data, true))
        return DRV_OK;
    if (!cur) {
        _cleanup_cjson_ cJSON *rev = build(ds, tpl, hash, max_old + 1, err);
        if (!rev)
            return err ? err->code : DRV_ERR_INVALID;
        drv_err_t r = put(s, rev, true, err);
        if (r == DRV_ERR_EXISTS && (r = drop_leftover(s, ds, rev, err)) == DRV_OK)
            r = put(s, rev, true, err);
        if (r != DRV_OK)
            return r;
        if (!cJSON_AddItemToArray(revs, rev))
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "controllerrevision");
        rev = NULL; /* revs holds it */
        return DRV_OK;
    }
    /* The template went back to an older record's (kubectl rollout undo): that record becomes
     * the newest, as Kubernetes renumbers it. A record whose data differs (written by another
     * version) is brought up to date on the way. */
    _cleanup_cjson_ cJSON *upd = cJSON_Duplicate(cur, true);
    if (!upd || !ctrl_set(upd, "data", TAKE_PTR(data)) ||
        (rev_number(cur) <= max_old &&
         !ctrl_set(upd, "revision", cJSON_CreateNumber((double)(max_old + 1)))))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "controllerrevision");
    cJSON_DeleteItemFromObjectCaseSensitive(drv_json_get(upd, "metadata"), "resourceVersion");
    drv_err_t r = put(s, upd, false, err);
    if (r == DRV_OK && cJSON_ReplaceItemViaPointer(revs, cur, upd))
        upd = NULL; /* revs holds it */
    return r;
}

static int by_revision(const void *a, const void *b)
{
    int64_t x = rev_number(*(const cJSON *const *)a), y = rev_number(*(const cJSON *const *)b);
    return x < y ? -1 : x > y;
}

/* Whether a pod of pods carries hash, or the revision's name <owner>-<hash> (a StatefulSet's
 * pods carry that). */
static bool hash_in_use(const cJSON *ds, const cJSON *pods, const char *hash)
{
    char name[256];
    if (!hash || drv_fmt(name, sizeof(name), "%.242s-%s", ctrl_meta(ds, "name"), hash) != DRV_OK)
        name[0] = '\0';
    const cJSON *p;
    cJSON_ArrayForEach(p, pods)
    {
        const char *h = drv_json_str(drv_json_get(drv_json_get(p, "metadata"), "labels"),
                                     DRV_CTRL_LABEL_DS_HASH);
        if (h && hash && (!strcmp(h, hash) || !strcmp(h, name)))
            return true;
    }
    return false;
}

drv_err_t ctrl_dsrev_prune(drv_hstore_t *s, const cJSON *ds, const cJSON *revs, const char *hash,
                           const cJSON *pods, drv_error_t *err)
{
    int64_t limit = ctrl_int(drv_json_get(ds, "spec"), "revisionHistoryLimit", 10);
    size_t n = drv_json_array_len(revs), nold = 0;
    _cleanup_free_ const cJSON **old = calloc(n + 1, sizeof(*old));
    if (!old)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "controllerrevisions");
    const cJSON *c;
    cJSON_ArrayForEach(c, revs)
    {
        const char *h = rev_hash(c);
        if (!h || strcmp(h, hash))
            old[nold++] = c;
    }
    if (limit < 0 || (int64_t)nold <= limit)
        return DRV_OK;
    qsort(old, nold, sizeof(*old), by_revision);
    /* Oldest first; a template that still has pods (a rollout under way, OnDelete) keeps its
     * record, as in Kubernetes. */
    int64_t extra = (int64_t)nold - limit;
    for (size_t i = 0; i < nold && extra > 0; i++) {
        if (hash_in_use(ds, pods, rev_hash(old[i])))
            continue;
        drv_err_t r = ctrl_dsrev_delete(s, old[i], err);
        if (r != DRV_OK)
            return r;
        extra--;
    }
    return DRV_OK;
}

drv_err_t ctrl_dsrev_delete(drv_hstore_t *s, const cJSON *rev, drv_error_t *err)
{
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_delete(s, DRV_KIND_CONTROLLERREVISION, ctrl_meta(rev, "namespace"),
                                    ctrl_meta(rev, "name"), NULL, &e);
    if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, e.sys_errno, "delete controllerrevision %s/%s: %s",
                             ctrl_meta(rev, "namespace"), ctrl_meta(rev, "name"),
                             drv_error_msg(&e));
    return DRV_OK;
}

drv_err_t ctrl_dsrev_collect(drv_hstore_t *s, const char *ns, const cJSON *daemonsets,
                             drv_error_t *err)
{
    _cleanup_cjson_ cJSON *all = NULL;
    drv_err_t r = drv_hstore_list(s, DRV_KIND_CONTROLLERREVISION, ns, NULL, &all, NULL, err);
    if (r != DRV_OK)
        return r;
    const cJSON *c, *d;
    cJSON_ArrayForEach(c, all)
    {
        const cJSON *ref = drv_ctrl_controller_of(c);
        const char *k = drv_json_str(ref, "kind"), *uid = drv_json_str(ref, "uid");
        if (!k || strcmp(k, "DaemonSet") || !uid)
            continue;
        bool found = false;
        cJSON_ArrayForEach(d, daemonsets)
        {
            if (!strcmp(ctrl_meta(d, "uid"), uid)) {
                found = true;
                break;
            }
        }
        if (!found && (r = ctrl_dsrev_delete(s, c, err)) != DRV_OK)
            return r;
    }
    return DRV_OK;
}
