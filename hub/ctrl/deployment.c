/* The Deployment controller. It decides a Deployment's pods itself: the pod-template-hash
 * label tells the current template's pods ("new") from the others ("old"). Revision history
 * lives in the Deployment's annotations and status (see ctrl.h); each kept revision, and each
 * template that still has pods, is also a ReplicaSet (replicasets.c) that owns those pods, so
 * that kubectl's rollout history and undo, describe and get rs work. Pods owned by the
 * Deployment itself (made before there were ReplicaSets) are still counted as its own. */
#include "ctrl/ctrl_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"

/* Keeps the history annotation well under the model's 256 KiB for all annotations. */
#define HISTORY_MAX_BYTES (128 * 1024)

/* The kept history, a new array (empty when absent or unreadable). */
static cJSON *history_of(const cJSON *dep)
{
    /* The annotation is what users and tools see; an update that replaces the metadata (an
     * apply of the manifest) drops it, so a copy lives in the status, which only the
     * controllers write. */
    const char *h = drv_json_str(drv_json_get(drv_json_get(dep, "metadata"), "annotations"),
                                 DRV_CTRL_ANN_HISTORY);
    cJSON *arr = h ? cJSON_Parse(h) : NULL;
    if (!cJSON_IsArray(arr) || !cJSON_GetArraySize(arr)) {
        cJSON_Delete(arr);
        const cJSON *kept = drv_json_get(drv_json_get(dep, "status"), "history");
        arr = cJSON_IsArray(kept) ? cJSON_Duplicate(kept, true) : cJSON_CreateArray();
    }
    return arr;
}

static int64_t history_max(const cJSON *hist)
{
    int64_t max = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, hist)
    {
        int64_t r = ctrl_int(e, "revision", 0);
        if (r > max)
            max = r;
    }
    return max;
}

static cJSON *history_find(const cJSON *hist, const char *key, const char *hash, int64_t rev)
{
    cJSON *e;
    cJSON_ArrayForEach(e, hist)
    {
        if (hash && !strcmp(key, "hash")) {
            const char *h = drv_json_str(e, "hash");
            if (h && !strcmp(h, hash))
                return e;
        } else if (ctrl_int(e, "revision", -1) == rev) {
            return e;
        }
    }
    return NULL;
}

/* Records the current template as the newest revision (unless it is already) and trims the
 * history to revisionHistoryLimit old revisions. Writes the Deployment (metadata only) when
 * something changed; dep is updated in place. */
static drv_err_t record_revision(drv_hstore_t *s, cJSON *dep, const char *hash, drv_error_t *err)
{
    const cJSON *spec = drv_json_get(dep, "spec");
    _cleanup_cjson_ cJSON *hist = history_of(dep);
    if (!hist)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "revision history");
    int64_t max = history_max(hist);
    cJSON *cur = history_find(hist, "hash", hash, 0);
    const char *ann_rev = drv_json_str(drv_json_get(drv_json_get(dep, "metadata"), "annotations"),
                                       DRV_CTRL_ANN_REVISION);
    char want[32];
    if (drv_fmt(want, sizeof(want), "%lld", (long long)max) != DRV_OK)
        return drv_error_set(err, DRV_ERR_RANGE, 0, "revision %lld", (long long)max);
    if (cur && ctrl_int(cur, "revision", -1) == max && ann_rev && !strcmp(ann_rev, want))
        return DRV_OK;
    if (!cur || ctrl_int(cur, "revision", -1) != max) {
        if (cur)
            cJSON_Delete(cJSON_DetachItemViaPointer(hist, cur));
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddNumberToObject(e, "revision", (double)(max + 1)) ||
            !cJSON_AddStringToObject(e, "hash", hash) ||
            !ctrl_set(e, "template", cJSON_Duplicate(drv_json_get(spec, "template"), true))) {
            cJSON_Delete(e);
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "revision history");
        }
        cJSON_AddItemToArray(hist, e);
        max++;
    }
    int64_t limit = ctrl_int(spec, "revisionHistoryLimit", 10);
    while (cJSON_GetArraySize(hist) > limit + 1)
        cJSON_DeleteItemFromArray(hist, 0);
    char *text = NULL;
    for (;;) {
        text = cJSON_PrintUnformatted(hist);
        if (!text)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "revision history");
        if (strlen(text) <= HISTORY_MAX_BYTES || cJSON_GetArraySize(hist) <= 1)
            break;
        free(text);
        cJSON_DeleteItemFromArray(hist, 0);
    }
    if (drv_fmt(want, sizeof(want), "%lld", (long long)max) != DRV_OK) {
        free(text);
        return drv_error_set(err, DRV_ERR_RANGE, 0, "revision %lld", (long long)max);
    }
    cJSON *meta = (cJSON *)drv_json_get(dep, "metadata");
    cJSON *ann = (cJSON *)drv_json_get(meta, "annotations");
    if (!cJSON_IsObject(ann)) {
        ann = cJSON_CreateObject();
        if (!ctrl_set(meta, "annotations", ann)) {
            free(text);
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "revision history");
        }
    }
    bool ok = ctrl_set(ann, DRV_CTRL_ANN_HISTORY, cJSON_CreateString(text)) &&
              ctrl_set(ann, DRV_CTRL_ANN_REVISION, cJSON_CreateString(want));
    free(text);
    if (!ok)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "revision history");
    drv_json_sort_keys(ann);
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_update(s, DRV_KIND_DEPLOYMENT, dep, &e);
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "deployment %s revision: %s",
                             ctrl_meta(dep, "name"), drv_error_msg(&e));
    return DRV_OK;
}

struct podset {
    const cJSON **v;
    size_t n;
};

static drv_err_t write_status(drv_hstore_t *s, const cJSON *dep, size_t total, size_t updated,
                              size_t ready, size_t available, int64_t replicas, int64_t max_unavail,
                              bool paused, const char *failure, int64_t now_ms, drv_error_t *err)
{
    const cJSON *oa = ctrl_condition(dep, "Available"), *op = ctrl_condition(dep, "Progressing");
    bool avail_ok = (int64_t)available >= replicas - max_unavail;
    bool complete = (int64_t)updated == replicas && (int64_t)total == replicas &&
                    (int64_t)available == replicas;
    cJSON *st = cJSON_CreateObject(), *conds = cJSON_CreateArray();
    cJSON *ca =
        ctrl_make_condition(oa, "Available", avail_ok ? "True" : "False",
                            avail_ok ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
                            avail_ok ? "Deployment has minimum availability."
                                     : "Deployment does not have minimum availability.",
                            now_ms);
    /* Progress is any change in the counts or the spec; lastUpdateTime marks the last one,
     * and a rollout without progress for progressDeadlineSeconds is reported as stuck. */
    const cJSON *ost = drv_json_get(dep, "status");
    int64_t gen = ctrl_int(drv_json_get(dep, "metadata"), "generation", 1);
    bool progress = !op || ctrl_int(ost, "updatedReplicas", -1) != (int64_t)updated ||
                    ctrl_int(ost, "availableReplicas", -1) != (int64_t)available ||
                    ctrl_int(ost, "replicas", -1) != (int64_t)total ||
                    ctrl_int(ost, "observedGeneration", -1) != gen;
    int64_t last = progress ? -1 : drv_ctrl_time_parse(drv_json_str(op, "lastUpdateTime"));
    if (last < 0)
        last = now_ms;
    int64_t deadline = ctrl_int(drv_json_get(dep, "spec"), "progressDeadlineSeconds", 600);
    char msg[400];
    cJSON *cp;
    if (paused) {
        cp = ctrl_make_condition(op, "Progressing", "Unknown", "DeploymentPaused",
                                 "Deployment is paused", now_ms);
    } else if (complete) {
        cp = ctrl_make_condition(op, "Progressing", "True", "NewReplicaSetAvailable",
                                 "Deployment has successfully progressed.", now_ms);
    } else if (now_ms - last > deadline * 1000) {
        drv_fmt_cut(msg, sizeof(msg), "Deployment \"%.200s\" has timed out progressing.",
                    ctrl_meta(dep, "name"));
        cp = ctrl_make_condition(op, "Progressing", "False", "ProgressDeadlineExceeded", msg,
                                 now_ms);
    } else {
        cp = ctrl_make_condition(op, "Progressing", "True", "ReplicaSetUpdated",
                                 "Deployment is progressing.", now_ms);
    }
    char ts[32];
    drv_ctrl_time_format(last, ts, sizeof(ts));
    if (cp && !cJSON_AddStringToObject(cp, "lastUpdateTime", ts)) {
        cJSON_Delete(cp);
        cp = NULL;
    }
    if (!st || !conds || !ca || !cp) {
        cJSON_Delete(st);
        cJSON_Delete(conds);
        cJSON_Delete(ca);
        cJSON_Delete(cp);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "deployment status");
    }
    cJSON_AddItemToArray(conds, ca);
    cJSON_AddItemToArray(conds, cp);
    if (failure) {
        cJSON *cf = ctrl_make_condition(ctrl_condition(dep, "ReplicaFailure"), "ReplicaFailure",
                                        "True", "FailedCreate", failure, now_ms);
        if (!cf) {
            cJSON_Delete(st);
            cJSON_Delete(conds);
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "deployment status");
        }
        cJSON_AddItemToArray(conds, cf);
    }
    int64_t unavail = replicas - (int64_t)available;
    bool ok =
        ctrl_set(st, "conditions", conds) &&
        cJSON_AddNumberToObject(st, "observedGeneration",
                                (double)ctrl_int(drv_json_get(dep, "metadata"), "generation", 1)) &&
        cJSON_AddNumberToObject(st, "replicas", (double)total) &&
        cJSON_AddNumberToObject(st, "updatedReplicas", (double)updated) &&
        cJSON_AddNumberToObject(st, "readyReplicas", (double)ready) &&
        cJSON_AddNumberToObject(st, "availableReplicas", (double)available) &&
        cJSON_AddNumberToObject(st, "unavailableReplicas", (double)(unavail > 0 ? unavail : 0)) &&
        ctrl_set(st, "history", history_of(dep));
    if (!ok) {
        cJSON_Delete(st);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "deployment status");
    }
    drv_json_sort_keys(st);
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_update_status(s, DRV_KIND_DEPLOYMENT, ctrl_meta(dep, "namespace"),
                                           ctrl_meta(dep, "name"), st, NULL, &e);
    if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, e.sys_errno, "deployment %s status: %s",
                             ctrl_meta(dep, "name"), drv_error_msg(&e));
    return DRV_OK;
}

/* Creates up to n pods from tpl; *made gets how many. A pod the model refuses (a template
 * stored without validation) stops the creation with its message in failure, not an error:
 * the status then says why. */
static drv_err_t create_pods(drv_hstore_t *s, const cJSON *dep, cJSON *rsets, const cJSON *hist,
                             const cJSON *tpl, const char *hash, bool current, int64_t n,
                             int64_t *made, char *failure, size_t failsz, int64_t now_ms,
                             drv_error_t *err)
{
    char prefix[300];
    if (drv_fmt(prefix, sizeof(prefix), "%s-%s", ctrl_meta(dep, "name"), hash) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "deployment %.64s: pod name prefix too long",
                             ctrl_meta(dep, "name"));
    *made = 0;
    if (n <= 0)
        return DRV_OK;
    /* The pods' owner: the ReplicaSet of this template (made now if new). */
    cJSON *rs = ctrl_rs_find(rsets, hash);
    if (!rs) {
        drv_error_t e = DRV_ERROR_INIT;
        int64_t rev = ctrl_int(history_find(hist, "hash", hash, 0), "revision", 0);
        drv_err_t r = ctrl_rs_put(s, dep, rsets, tpl, hash, rev, n, current, &rs, now_ms, &e);
        if (r == DRV_ERR_INVALID) {
            drv_fmt_cut(failure, failsz, "%s", drv_error_msg(&e));
            return DRV_OK;
        }
        if (r != DRV_OK)
            return drv_error_set(err, r, e.sys_errno, "%s", drv_error_msg(&e));
    }
    for (int64_t i = 0; i < n; i++) {
        /* A burst of pods: the hub's loop serves the API between two (drv_hstore_batch_point). */
        drv_err_t yr = drv_hstore_batch_point(s, err);
        if (yr != DRV_OK)
            return yr;
        drv_error_t e = DRV_ERROR_INIT;
        drv_err_t r = ctrl_create_pod(s, rs, DRV_KIND_REPLICASET, tpl, DRV_CTRL_LABEL_HASH, hash,
                                      prefix, NULL, &e);
        if (r == DRV_ERR_INVALID) {
            drv_fmt_cut(failure, failsz, "%s", drv_error_msg(&e));
            return DRV_OK;
        }
        if (r != DRV_OK)
            return drv_error_set(err, r, e.sys_errno, "%s", drv_error_msg(&e));
        (*made)++;
    }
    return DRV_OK;
}

/* Deletes up to n pods of set, in deletion order (only those not ready if only_unready); the
 * deleted ones leave the set. */
static drv_err_t delete_pods(drv_hstore_t *s, struct podset *set, int64_t n, bool only_unready,
                             size_t *deleted, drv_error_t *err)
{
    ctrl_sort_for_deletion(set->v, set->n);
    size_t w = 0, done = 0;
    for (size_t i = 0; i < set->n; i++) {
        const cJSON *p = set->v[i];
        if ((int64_t)done < n && (!only_unready || !drv_ctrl_pod_ready(p))) {
            drv_err_t r = ctrl_delete_pod(s, p, err);
            if (r != DRV_OK)
                return r;
            done++;
            continue;
        }
        set->v[w++] = p;
    }
    set->n = w;
    if (deleted)
        *deleted = done;
    return DRV_OK;
}

static size_t count_if(const struct podset *set, int64_t min_ready, int64_t now_ms, bool avail)
{
    size_t n = 0;
    for (size_t i = 0; i < set->n; i++)
        n += avail ? drv_ctrl_pod_available(set->v[i], min_ready, now_ms)
                   : drv_ctrl_pod_ready(set->v[i]);
    return n;
}

/* Pods of set with the hash label h: how many, ready, available. */
static void count_hash(const struct podset *set, const char *h, int64_t min_ready, int64_t now_ms,
                       int64_t c[3])
{
    for (size_t i = 0; i < set->n; i++) {
        const char *ph = ctrl_rs_hash(set->v[i]);
        if (!ph || strcmp(ph, h))
            continue;
        c[0]++;
        c[1] += drv_ctrl_pod_ready(set->v[i]);
        c[2] += drv_ctrl_pod_available(set->v[i], min_ready, now_ms);
    }
}

/* The ReplicaSets after a round: one per kept revision (spec.replicas what the round left of
 * it: the current one the Deployment's replicas once no old pods are left), one per other
 * template with pods left; the rest are deleted. made[i] pods of made_hash[i] were just
 * created (not ready). */
static drv_err_t sync_rsets(drv_hstore_t *s, const cJSON *dep, cJSON *rsets, const cJSON *hist,
                            const char *hash, const struct podset *nw, const struct podset *old,
                            const char *const made_hash[2], const int64_t made[2], bool paused,
                            int64_t now_ms, drv_error_t *err)
{
    const cJSON *spec = drv_json_get(dep, "spec");
    int64_t replicas = ctrl_int(spec, "replicas", 1),
            min_ready = ctrl_int(spec, "minReadySeconds", 0);
    const cJSON *e;
    cJSON_ArrayForEach(e, hist)
    {
        const char *h = drv_json_str(e, "hash");
        const cJSON *tpl = drv_json_get(e, "template");
        if (!h || !cJSON_IsObject(tpl))
            continue;
        int64_t c[3] = {0, 0, 0};
        count_hash(nw, h, min_ready, now_ms, c);
        count_hash(old, h, min_ready, now_ms, c);
        for (int i = 0; i < 2; i++)
            c[0] += made_hash[i] && !strcmp(made_hash[i], h) ? made[i] : 0;
        bool current = !strcmp(h, hash);
        int64_t want = current && !old->n && !paused ? replicas : c[0];
        cJSON *rs = NULL;
        drv_error_t pe = DRV_ERROR_INIT;
        drv_err_t r = ctrl_rs_put(s, dep, rsets, tpl, h, ctrl_int(e, "revision", 0), want, current,
                                  &rs, now_ms, &pe);
        if (r == DRV_ERR_INVALID)
            continue; /* a template the model refuses (the status says so): no record of it */
        if (r != DRV_OK)
            return drv_error_set(err, r, pe.sys_errno, "%s", drv_error_msg(&pe));
        r = ctrl_rs_status(s, rs, c[0], c[1], c[2], err);
        if (r != DRV_OK)
            return r;
    }
    cJSON *rs = rsets ? rsets->child : NULL;
    while (rs) {
        cJSON *next = rs->next;
        const char *h = ctrl_rs_hash(rs);
        if (h && !history_find(hist, "hash", h, 0)) {
            int64_t c[3] = {0, 0, 0};
            count_hash(nw, h, min_ready, now_ms, c);
            count_hash(old, h, min_ready, now_ms, c);
            for (int i = 0; i < 2; i++)
                c[0] += made_hash[i] && !strcmp(made_hash[i], h) ? made[i] : 0;
            drv_err_t r;
            if (c[0]) { /* trimmed from the history while it still has pods: kept until then */
                cJSON *tpl =
                    cJSON_Duplicate(drv_json_get(drv_json_get(rs, "spec"), "template"), true);
                cJSON *cur = NULL;
                r = tpl ? ctrl_rs_put(s, dep, rsets, tpl, h, 0, c[0], !strcmp(h, hash), &cur,
                                      now_ms, err)
                        : drv_error_set(err, DRV_ERR_NOMEM, 0, "replicaset");
                cJSON_Delete(tpl);
                if (r == DRV_OK)
                    r = ctrl_rs_status(s, cur, c[0], c[1], c[2], err);
            } else {
                r = ctrl_rs_delete(s, rs, err);
                if (r == DRV_OK)
                    cJSON_Delete(cJSON_DetachItemViaPointer(rsets, rs));
            }
            if (r != DRV_OK)
                return r;
        }
        rs = next;
    }
    return DRV_OK;
}

/* owned: the Deployment's pods as listed before this round (borrowed); rsets: its
 * ReplicaSets (an array the round keeps up to date). */
static drv_err_t reconcile(drv_hstore_t *s, cJSON *dep, const cJSON *const *owned, size_t nowned,
                           cJSON *rsets, int64_t now_ms, drv_error_t *err)
{
    const cJSON *spec = drv_json_get(dep, "spec");
    const cJSON *tpl = drv_json_get(spec, "template");
    if (!cJSON_IsObject(tpl))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "deployment %s: spec.template: required",
                             ctrl_meta(dep, "name"));
    int64_t replicas = ctrl_int(spec, "replicas", 1);
    int64_t min_ready = ctrl_int(spec, "minReadySeconds", 0);
    bool paused = cJSON_IsTrue(drv_json_get(spec, "paused"));
    const cJSON *strategy = drv_json_get(spec, "strategy");
    const char *stype = drv_json_str(strategy, "type");
    bool recreate = stype && !strcmp(stype, "Recreate");
    const cJSON *ru = drv_json_get(strategy, "rollingUpdate");
    int64_t max_surge = 0, max_unavail = 0;
    if (!recreate) {
        max_surge =
            drv_ctrl_int_or_percent(ru ? drv_json_get(ru, "maxSurge") : NULL, replicas, true);
        max_unavail = drv_ctrl_int_or_percent(ru ? drv_json_get(ru, "maxUnavailable") : NULL,
                                              replicas, false);
        if (!ru) {
            max_surge = (replicas * 25 + 99) / 100;
            max_unavail = replicas * 25 / 100;
        }
        if (max_surge == 0 && max_unavail == 0)
            max_unavail = 1;
    }
    char hash[16];
    drv_ctrl_template_hash(tpl, hash, sizeof(hash));
    drv_err_t r = DRV_OK;
    if (!paused) {
        r = record_revision(s, dep, hash, err);
        if (r != DRV_OK)
            return r;
        /* The store rewrote dep in place: pointers into it are stale. */
        spec = drv_json_get(dep, "spec");
        tpl = drv_json_get(spec, "template");
        if (!cJSON_IsObject(tpl))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "deployment %s: spec.template: required",
                                 ctrl_meta(dep, "name"));
    }

    _cleanup_cjson_ cJSON *hist = history_of(dep);
    if (!hist)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "revision history");
    char other_hash[16] = ""; /* the template of pods made while paused, if not the current */
    _cleanup_free_ const cJSON **nv = calloc(nowned + 1, sizeof(*nv));
    _cleanup_free_ const cJSON **ov = calloc(nowned + 1, sizeof(*ov));
    if (!nv || !ov)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "deployment");
    struct podset nw = {nv, 0}, old = {ov, 0};
    for (size_t i = 0; i < nowned; i++) {
        const cJSON *p = owned[i];
        if (ctrl_pod_finished(p)) {
            /* Failed (evicted by its agent, say): replaced like a missing one. */
            r = ctrl_delete_pod(s, p, err);
            if (r != DRV_OK)
                return r;
            continue;
        }
        const char *h =
            drv_json_str(drv_json_get(drv_json_get(p, "metadata"), "labels"), DRV_CTRL_LABEL_HASH);
        if (h && !strcmp(h, hash))
            nw.v[nw.n++] = p;
        else
            old.v[old.n++] = p;
    }
    /* Pods created in this round (not ready yet): of the current template, of another. */
    int64_t created = 0, created_other = 0;
    char failure[DRV_ERROR_MSG_MAX] = "";

    if (paused) {
        /* No rollout while paused; only the number of pods follows spec.replicas, new pods
         * taking the template of the newest revision that has pods. */
        int64_t total = (int64_t)(nw.n + old.n);
        if (total < replicas) {
            const cJSON *use_tpl = tpl;
            const char *use_hash = hash;
            char hbuf[16];
            if (!nw.n && old.n) {
                int64_t best = -1;
                const cJSON *bt = NULL;
                for (size_t i = 0; i < old.n; i++) {
                    const char *h =
                        drv_json_str(drv_json_get(drv_json_get(old.v[i], "metadata"), "labels"),
                                     DRV_CTRL_LABEL_HASH);
                    const cJSON *e = h ? history_find(hist, "hash", h, 0) : NULL;
                    if (e && ctrl_int(e, "revision", 0) > best) {
                        best = ctrl_int(e, "revision", 0);
                        bt = drv_json_get(e, "template");
                    }
                }
                if (bt) {
                    drv_ctrl_template_hash(bt, hbuf, sizeof(hbuf));
                    memcpy(other_hash, hbuf, sizeof(other_hash));
                    r = create_pods(s, dep, rsets, hist, bt, hbuf, false, replicas - total,
                                    &created_other, failure, sizeof(failure), now_ms, err);
                    if (r != DRV_OK)
                        return r;
                    use_tpl = NULL;
                }
            }
            if (use_tpl) {
                r = create_pods(s, dep, rsets, hist, use_tpl, use_hash, true, replicas - total,
                                &created, failure, sizeof(failure), now_ms, err);
                if (r != DRV_OK)
                    return r;
            }
        } else if (total > replicas) {
            size_t del = 0;
            r = delete_pods(s, &old, total - replicas, false, &del, err);
            if (r == DRV_OK && (int64_t)del < total - replicas)
                r = delete_pods(s, &nw, total - replicas - (int64_t)del, false, NULL, err);
            if (r != DRV_OK)
                return r;
        }
    } else if (recreate) {
        if (old.n) {
            r = delete_pods(s, &old, (int64_t)old.n, false, NULL, err);
            if (r != DRV_OK)
                return r;
            /* New pods come on the next round, once the old ones are gone. */
        } else if ((int64_t)nw.n < replicas) {
            r = create_pods(s, dep, rsets, hist, tpl, hash, true, replicas - (int64_t)nw.n,
                            &created, failure, sizeof(failure), now_ms, err);
        } else if ((int64_t)nw.n > replicas) {
            r = delete_pods(s, &nw, (int64_t)nw.n - replicas, false, NULL, err);
        }
    } else if (!old.n) {
        if ((int64_t)nw.n < replicas) {
            r = create_pods(s, dep, rsets, hist, tpl, hash, true, replicas - (int64_t)nw.n,
                            &created, failure, sizeof(failure), now_ms, err);
        } else if ((int64_t)nw.n > replicas) {
            r = delete_pods(s, &nw, (int64_t)nw.n - replicas, false, NULL, err);
        }
    } else {
        /* Rolling update. Scale the new pods up within the surge... */
        int64_t total = (int64_t)(nw.n + old.n);
        int64_t room = replicas + max_surge - total;
        int64_t want_new = (int64_t)nw.n + (room > 0 ? room : 0);
        if (want_new > replicas)
            want_new = replicas;
        if (want_new > (int64_t)nw.n) {
            r = create_pods(s, dep, rsets, hist, tpl, hash, true, want_new - (int64_t)nw.n,
                            &created, failure, sizeof(failure), now_ms, err);
            if (r != DRV_OK)
                return r;
            total += created;
            want_new = (int64_t)nw.n + created;
        } else if ((int64_t)nw.n > replicas) {
            r = delete_pods(s, &nw, (int64_t)nw.n - replicas, false, NULL, err);
            if (r != DRV_OK)
                return r;
            total = (int64_t)(nw.n + old.n);
            want_new = (int64_t)nw.n;
        }
        /* ...and the old ones down while at least replicas - maxUnavailable stay available.
         * Pods just created are not available, so they count as new unavailable ones. */
        int64_t min_avail = replicas - max_unavail;
        int64_t new_avail = (int64_t)count_if(&nw, min_ready, now_ms, true);
        int64_t new_unavail = want_new - new_avail;
        int64_t max_down = total - min_avail - new_unavail;
        if (max_down > 0) {
            size_t del = 0;
            /* Unavailable old pods go first: removing them costs no availability. */
            r = delete_pods(s, &old, max_down, true, &del, err);
            if (r != DRV_OK)
                return r;
            total -= (int64_t)del;
        }
        int64_t old_avail = (int64_t)count_if(&old, min_ready, now_ms, true);
        int64_t can = new_avail + old_avail - min_avail;
        if (can > 0) {
            r = delete_pods(s, &old, can, false, NULL, err);
            if (r != DRV_OK)
                return r;
        }
    }
    if (r != DRV_OK)
        return r;
    const char *made_hash[2] = {hash, other_hash[0] ? other_hash : NULL};
    const int64_t made[2] = {created, created_other};
    r = sync_rsets(s, dep, rsets, hist, hash, &nw, &old, made_hash, made, paused, now_ms, err);
    if (r != DRV_OK)
        return r;

    /* Status: the pods left plus those just created (neither ready nor available). */
    size_t total = nw.n + old.n + (size_t)(created + created_other);
    size_t updated = nw.n + (size_t)created;
    size_t ready = count_if(&nw, 0, now_ms, false) + count_if(&old, 0, now_ms, false);
    size_t available =
        count_if(&nw, min_ready, now_ms, true) + count_if(&old, min_ready, now_ms, true);
    r = write_status(s, dep, total, updated, ready, available, replicas, max_unavail, paused,
                     failure[0] ? failure : NULL, now_ms, err);
    if (r == DRV_OK && failure[0])
        r = drv_error_set(err, DRV_ERR_INVALID, 0, "%s", failure);
    return r;
}

/* An index of objects by their controller's uid (pods by Deployment or ReplicaSet, ReplicaSets
 * by Deployment), sorted for binary search. */
struct owned {
    const char *uid;
    cJSON *obj;
};

static int owned_cmp(const void *a, const void *b)
{
    return strcmp(((const struct owned *)a)->uid, ((const struct owned *)b)->uid);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Indexes the objects of list controlled by one of kinds (NULL-terminated); *idx is malloc'd. */
static drv_err_t index_owned(const cJSON *list, const char *const *kinds, struct owned **idx,
                             size_t *n, drv_error_t *err)
{
    *n = 0;
    *idx = calloc((size_t)cJSON_GetArraySize(list) + 1, sizeof(**idx));
    if (!*idx)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "deployments");
    cJSON *o;
    cJSON_ArrayForEach(o, list)
    {
        const cJSON *ref = drv_ctrl_controller_of(o);
        const char *k = drv_json_str(ref, "kind"), *uid = drv_json_str(ref, "uid");
        for (const char *const *w = kinds; k && uid && *w; w++)
            if (!strcmp(k, *w)) {
                (*idx)[(*n)++] = (struct owned){uid, o};
                break;
            }
    }
    qsort(*idx, *n, sizeof(**idx), owned_cmp);
    return DRV_OK;
}

/* The first entry of idx with uid, or n. */
static size_t owned_first(const struct owned *idx, size_t n, const char *uid)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(idx[mid].uid, uid) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* One Deployment's round from the indexes: its ReplicaSets (copied into a new array), the
 * pods it or they control. */
static drv_err_t reconcile_indexed(drv_hstore_t *s, cJSON *dep, const struct owned *pidx, size_t np,
                                   const struct owned *ridx, size_t nr, const cJSON **group,
                                   int64_t now_ms, drv_error_t *err)
{
    const char *uid = ctrl_meta(dep, "uid");
    _cleanup_cjson_ cJSON *rsets = cJSON_CreateArray();
    if (!rsets)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "deployment");
    size_t ng = 0;
    for (size_t i = owned_first(pidx, np, uid); i < np && !strcmp(pidx[i].uid, uid); i++)
        group[ng++] = pidx[i].obj;
    for (size_t j = owned_first(ridx, nr, uid); j < nr && !strcmp(ridx[j].uid, uid); j++) {
        cJSON *copy = cJSON_Duplicate(ridx[j].obj, true);
        if (!copy || !cJSON_AddItemToArray(rsets, copy)) {
            cJSON_Delete(copy);
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "deployment");
        }
        const char *rsuid = ctrl_meta(ridx[j].obj, "uid");
        for (size_t i = owned_first(pidx, np, rsuid); i < np && !strcmp(pidx[i].uid, rsuid); i++)
            group[ng++] = pidx[i].obj;
    }
    return reconcile(s, dep, group, ng, rsets, now_ms, err);
}

static const char *const POD_OWNERS[] = {"Deployment", "ReplicaSet", NULL};
static const char *const RS_OWNERS[] = {"Deployment", NULL};

/* Deletes what Deployment ns/name (gone) controlled: its ReplicaSets and their pods, and the
 * pods it controlled itself. */
static drv_err_t delete_gone(drv_hstore_t *s, const char *ns, const char *name, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *pods = NULL, *rsets = NULL;
    drv_err_t r = drv_hstore_list(s, DRV_KIND_POD, ns, NULL, &pods, NULL, err);
    if (r == DRV_OK)
        r = drv_hstore_list(s, DRV_KIND_REPLICASET, ns, NULL, &rsets, NULL, err);
    if (r != DRV_OK)
        return r;
    const cJSON *p;
    cJSON_ArrayForEach(p, pods)
    {
        const cJSON *ref = drv_ctrl_controller_of(p);
        const char *k = drv_json_str(ref, "kind"), *n = drv_json_str(ref, "name");
        const cJSON *rs = NULL;
        if (k && n && !strcmp(k, "ReplicaSet")) {
            const cJSON *c;
            cJSON_ArrayForEach(c, rsets)
            {
                if (!strcmp(ctrl_meta(c, "name"), n))
                    rs = c;
            }
            ref = drv_ctrl_controller_of(rs);
            k = drv_json_str(ref, "kind"), n = drv_json_str(ref, "name");
        }
        if (k && n && !strcmp(k, "Deployment") && !strcmp(n, name) &&
            (r = ctrl_delete_pod(s, p, err)) != DRV_OK)
            return r;
    }
    const cJSON *rs;
    cJSON_ArrayForEach(rs, rsets)
    {
        const cJSON *ref = drv_ctrl_controller_of(rs);
        const char *k = drv_json_str(ref, "kind"), *n = drv_json_str(ref, "name");
        if (k && n && !strcmp(k, "Deployment") && !strcmp(n, name) &&
            (r = ctrl_rs_delete(s, rs, err)) != DRV_OK)
            return r;
    }
    return DRV_OK;
}

/* The pods and ReplicaSets of namespace ns (NULL: all), each indexed by its controller's uid. */
static drv_err_t load_owned(drv_hstore_t *s, const char *ns, cJSON **pods, cJSON **rsets,
                            struct owned **pidx, size_t *np, struct owned **ridx, size_t *nr,
                            drv_error_t *err)
{
    drv_err_t r = drv_hstore_list(s, DRV_KIND_POD, ns, NULL, pods, NULL, err);
    if (r == DRV_OK)
        r = drv_hstore_list(s, DRV_KIND_REPLICASET, ns, NULL, rsets, NULL, err);
    if (r == DRV_OK)
        r = index_owned(*pods, POD_OWNERS, pidx, np, err);
    if (r == DRV_OK)
        r = index_owned(*rsets, RS_OWNERS, ridx, nr, err);
    return r;
}

drv_err_t drv_ctrl_deployment_reconcile(drv_hstore_t *s, const char *ns, const char *name,
                                        int64_t now_ms, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *dep = NULL;
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_get(s, DRV_KIND_DEPLOYMENT, ns, name, &dep, &e);
    if (r == DRV_ERR_NOTFOUND)
        return delete_gone(s, ns, name, err);
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "deployment %s/%s: %s", ns, name,
                             drv_error_msg(&e));
    _cleanup_cjson_ cJSON *pods = NULL, *rsets = NULL;
    _cleanup_free_ struct owned *pidx = NULL, *ridx = NULL;
    size_t np = 0, nr = 0;
    r = load_owned(s, ns, &pods, &rsets, &pidx, &np, &ridx, &nr, err);
    if (r != DRV_OK)
        return r;
    _cleanup_free_ const cJSON **group = calloc(np + 1, sizeof(*group));
    if (!group)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "deployment");
    return reconcile_indexed(s, dep, pidx, np, ridx, nr, group, now_ms, err);
}

drv_err_t drv_ctrl_deployments_reconcile(drv_hstore_t *s, int64_t now_ms, drv_error_t *err)
{
    /* One listing of the pods and ReplicaSets for every Deployment, indexed by their
     * controller's uid, so that a round costs O(n log n), not O(deployments x pods). */
    _cleanup_cjson_ cJSON *deps = NULL, *rsets = NULL;
    const cJSON *pods = NULL; /* the round's shared listing, read only */
    _cleanup_free_ struct owned *pidx = NULL, *ridx = NULL;
    size_t np = 0, nr = 0;
    drv_err_t r = drv_hstore_list(s, DRV_KIND_DEPLOYMENT, NULL, NULL, &deps, NULL, err);
    if (r == DRV_OK)
        r = drv_hstore_list_shared(s, DRV_KIND_POD, &pods, err);
    if (r == DRV_OK)
        r = drv_hstore_list(s, DRV_KIND_REPLICASET, NULL, NULL, &rsets, NULL, err);
    if (r == DRV_OK)
        r = index_owned(pods, POD_OWNERS, &pidx, &np, err);
    if (r == DRV_OK)
        r = index_owned(rsets, RS_OWNERS, &ridx, &nr, err);
    if (r != DRV_OK)
        return r;
    size_t nd = (size_t)cJSON_GetArraySize(deps);
    _cleanup_free_ const cJSON **group = calloc(np + 1, sizeof(*group));
    /* The uids that may control pods: live Deployments and their ReplicaSets. */
    _cleanup_free_ const char **live = calloc(nd + nr + 1, sizeof(*live));
    _cleanup_free_ const char **depuids = calloc(nd + 1, sizeof(*depuids));
    if (!group || !live || !depuids)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "deployments");
    size_t nl = 0, k = 0;
    drv_err_t first = DRV_OK;
    cJSON *d;
    cJSON_ArrayForEach(d, deps)
    {
        /* One broken Deployment must not stop the others; the first error is returned. */
        drv_error_t e = DRV_ERROR_INIT;
        r = reconcile_indexed(s, d, pidx, np, ridx, nr, group, now_ms, &e);
        if (r != DRV_OK && first == DRV_OK) {
            first = r;
            drv_error_set(err, r, e.sys_errno, "%s", drv_error_msg(&e));
        }
        const char *uid = ctrl_meta(d, "uid"); /* after: d may have been rewritten in place */
        depuids[k++] = uid;
        live[nl++] = uid;
        for (size_t j = owned_first(ridx, nr, uid); j < nr && !strcmp(ridx[j].uid, uid); j++)
            live[nl++] = ctrl_meta(ridx[j].obj, "uid");
    }
    /* Pods whose owning Deployment or ReplicaSet is gone (or was replaced: another uid), and
     * ReplicaSets whose Deployment is. */
    qsort(live, nl, sizeof(*live), str_cmp);
    qsort(depuids, k, sizeof(*depuids), str_cmp);
    for (size_t i = 0; i < np; i++) {
        if (bsearch(&pidx[i].uid, live, nl, sizeof(*live), str_cmp))
            continue;
        r = ctrl_delete_pod(s, pidx[i].obj, err);
        if (r != DRV_OK)
            return r;
    }
    for (size_t j = 0; j < nr; j++) {
        if (bsearch(&ridx[j].uid, depuids, k, sizeof(*depuids), str_cmp))
            continue;
        r = ctrl_rs_delete(s, ridx[j].obj, err);
        if (r != DRV_OK)
            return r;
    }
    return first;
}

drv_err_t drv_ctrl_deployment_rollback(drv_hstore_t *s, const char *ns, const char *name,
                                       int64_t revision, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *dep = NULL;
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_get(s, DRV_KIND_DEPLOYMENT, ns, name, &dep, &e);
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "deployment %s/%s: %s", ns, name,
                             drv_error_msg(&e));
    _cleanup_cjson_ cJSON *hist = history_of(dep);
    if (!hist)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "revision history");
    int64_t cur = history_max(hist);
    if (revision <= 0) {
        int64_t prev = 0;
        const cJSON *h;
        cJSON_ArrayForEach(h, hist)
        {
            int64_t v = ctrl_int(h, "revision", 0);
            if (v < cur && v > prev)
                prev = v;
        }
        if (!prev)
            return drv_error_set(err, DRV_ERR_NOTFOUND, 0,
                                 "deployment %s/%s: no revision before %lld to roll back to", ns,
                                 name, (long long)cur);
        revision = prev;
    }
    const cJSON *entry = history_find(hist, "revision", NULL, revision);
    const cJSON *tpl = drv_json_get(entry, "template");
    if (!cJSON_IsObject(tpl)) {
        char kept[256] = "";
        size_t len = 0;
        const cJSON *h;
        cJSON_ArrayForEach(h, hist)
        {
            if (len < sizeof(kept))
                len += (size_t)snprintf(kept + len, sizeof(kept) - len, "%s%lld", len ? ", " : "",
                                        (long long)ctrl_int(h, "revision", 0));
        }
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0,
                             "deployment %s/%s: revision %lld not found (kept: %s)", ns, name,
                             (long long)revision, len ? kept : "none");
    }
    if (!ctrl_set((cJSON *)drv_json_get(dep, "spec"), "template", cJSON_Duplicate(tpl, true)))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "rollback");
    /* The history is an annotation anyone may edit: the template must pass the model again. */
    _cleanup_cjson_ cJSON *check = cJSON_Duplicate(dep, true);
    drv_diags_t d = {0};
    r = check ? drv_model_normalize(check, &d) : DRV_ERR_NOMEM;
    if (r != DRV_OK) {
        _cleanup_free_ char *msg = drv_diags_format(&d, NULL);
        drv_diags_free(&d);
        return drv_error_set(err, r, 0, "deployment %s/%s: revision %lld cannot be restored: %s",
                             ns, name, (long long)revision, msg ? msg : drv_strerror(r));
    }
    drv_diags_free(&d);
    r = drv_hstore_update(s, DRV_KIND_DEPLOYMENT, dep, &e);
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "deployment %s/%s rollback: %s", ns, name,
                             drv_error_msg(&e));
    return DRV_OK;
}
