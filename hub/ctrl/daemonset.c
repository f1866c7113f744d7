/* The DaemonSet controller: one pod bound directly to each node that matches the template's
 * nodeSelector and required node affinity and whose NoSchedule/NoExecute taints it tolerates
 * (cordoned and NotReady nodes included, as in Kubernetes), nodes that join later included;
 * pods on nodes that no longer match are deleted; a template change rolls out node by node
 * within maxUnavailable, or with maxSurge by starting the new pod beside the old one. Each
 * template it has had is kept as a ControllerRevision (dsrevisions.c) for kubectl rollout
 * history and undo. */
#include "ctrl/ctrl_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/cleanup.h"

static bool node_matches(const cJSON *node, const cJSON *podspec)
{
    return drv_sched_node_affinity_ok(node, podspec) &&
           drv_sched_untolerated_taint(node, drv_json_get(podspec, "tolerations")) == NULL;
}

static int by_node_cmp(const void *a, const void *b)
{
    const cJSON *pa = *(const cJSON *const *)a, *pb = *(const cJSON *const *)b;
    const char *na = drv_json_str(drv_json_get(pa, "spec"), "nodeName");
    const char *nb = drv_json_str(drv_json_get(pb, "spec"), "nodeName");
    return strcmp(na ? na : "", nb ? nb : "");
}

static const char *hash_of(const cJSON *pod)
{
    return drv_json_str(drv_json_get(drv_json_get(pod, "metadata"), "labels"),
                        DRV_CTRL_LABEL_DS_HASH);
}

static drv_err_t reconcile(drv_hstore_t *s, const cJSON *ds, int64_t now_ms, drv_error_t *err)
{
    const cJSON *spec = drv_json_get(ds, "spec"), *tpl = drv_json_get(spec, "template");
    if (!cJSON_IsObject(tpl))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "daemonset %s: spec.template: required",
                             ctrl_meta(ds, "name"));
    const cJSON *podspec = drv_json_get(tpl, "spec");
    int64_t min_ready = ctrl_int(spec, "minReadySeconds", 0);
    const cJSON *us = drv_json_get(spec, "updateStrategy");
    const char *utype = drv_json_str(us, "type");
    bool on_delete = utype && !strcmp(utype, "OnDelete");
    char hash[16];
    drv_ctrl_template_hash(tpl, hash, sizeof(hash));

    /* The template's record first, as Kubernetes' controller does: its hash is the pods'
     * controller-revision-hash. */
    _cleanup_cjson_ cJSON *nodes = NULL, *pods = NULL, *revs = NULL;
    drv_err_t r = ctrl_dsrev_list(s, ds, &revs, err);
    if (r == DRV_OK)
        r = ctrl_dsrev_record(s, ds, revs, tpl, hash, err);
    if (r == DRV_OK)
        r = drv_hstore_list(s, DRV_KIND_NODE, NULL, NULL, &nodes, NULL, err);
    if (r == DRV_OK)
        r = ctrl_owned_pods(s, ctrl_meta(ds, "namespace"), ctrl_meta(ds, "uid"), &pods, err);
    if (r != DRV_OK)
        return r;
    size_t np = (size_t)cJSON_GetArraySize(pods);
    _cleanup_free_ const cJSON **pv = calloc(np + 1, sizeof(*pv));
    if (!pv)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "daemonset");
    size_t i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, pods)
    {
        pv[i++] = p;
    }
    qsort(pv, np, sizeof(*pv), by_node_cmp);

    size_t desired = 0, misscheduled = 0;
    const cJSON *n;
    cJSON_ArrayForEach(n, nodes)
    {
        desired += node_matches(n, podspec);
    }
    const cJSON *ru = drv_json_get(us, "rollingUpdate");
    int64_t max_unavail =
        drv_ctrl_int_or_percent(drv_json_get(ru, "maxUnavailable"), (int64_t)desired, true);
    int64_t max_surge =
        drv_ctrl_int_or_percent(drv_json_get(ru, "maxSurge"), (int64_t)desired, true);
    if (max_unavail == 0 && max_surge == 0)
        max_unavail = 1;

    /* Pods on nodes that are gone or no longer match. */
    for (i = 0; i < np; i++) {
        const char *nn = drv_json_str(drv_json_get(pv[i], "spec"), "nodeName");
        bool ok = false;
        cJSON_ArrayForEach(n, nodes)
        {
            if (nn && !strcmp(ctrl_meta(n, "name"), nn)) {
                ok = node_matches(n, podspec);
                break;
            }
        }
        if (!ok) {
            misscheduled++;
            r = ctrl_delete_pod(s, pv[i], err);
            if (r != DRV_OK)
                return r;
            pv[i] = NULL;
        }
    }

    /* Per matching node: the best pod of the current template and the best other one
     * (ready preferred); extra pods are deleted. */
    struct slot {
        const cJSON *node, *cur, *old;
    };
    _cleanup_free_ struct slot *slots =
        calloc((size_t)cJSON_GetArraySize(nodes) + 1, sizeof(*slots));
    if (!slots)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "daemonset");
    size_t ns = 0, cursor = 0;
    cJSON_ArrayForEach(n, nodes)
    {
        const char *name = ctrl_meta(n, "name");
        struct slot sl = {n, NULL, NULL};
        /* pv is sorted by node name, like the node list: one merge pass. */
        for (; cursor < np; cursor++) {
            const cJSON *c = pv[cursor];
            const char *nn = c ? drv_json_str(drv_json_get(c, "spec"), "nodeName") : NULL;
            if (c && strcmp(nn ? nn : "", name) > 0)
                break;
            if (!c || !nn || strcmp(nn, name))
                continue;
            if (ctrl_pod_finished(c)) {
                r = ctrl_delete_pod(s, c, err);
                if (r != DRV_OK)
                    return r;
                continue;
            }
            bool is_cur = hash_of(c) && !strcmp(hash_of(c), hash);
            const cJSON **keep = is_cur ? &sl.cur : &sl.old;
            const cJSON *drop = c;
            if (!*keep || (drv_ctrl_pod_ready(c) && !drv_ctrl_pod_ready(*keep))) {
                drop = *keep;
                *keep = c;
            }
            if (drop) {
                r = ctrl_delete_pod(s, drop, err);
                if (r != DRV_OK)
                    return r;
            }
        }
        if (node_matches(n, podspec))
            slots[ns++] = sl;
    }

    /* Nodes without a pod get one now; count the nodes without an available pod. */
    size_t unavailable = 0, surging = 0;
    for (size_t k = 0; k < ns; k++) {
        struct slot *sl = &slots[k];
        bool avail = (sl->cur && drv_ctrl_pod_available(sl->cur, min_ready, now_ms)) ||
                     (sl->old && drv_ctrl_pod_available(sl->old, min_ready, now_ms));
        unavailable += !avail;
        surging += sl->cur && sl->old;
        if (!sl->cur && !sl->old) {
            r = ctrl_create_pod(s, ds, DRV_KIND_DAEMONSET, tpl, DRV_CTRL_LABEL_DS_HASH, hash,
                                ctrl_meta(ds, "name"), ctrl_meta(sl->node, "name"), err);
            if (r != DRV_OK)
                return r;
        }
    }

    /* Rolling update, node by node. Without surge: an old pod that is not available is
     * replaced at once, an available one while at most maxUnavailable nodes lack an
     * available pod. With surge: the new pod starts beside the old one (at most maxSurge
     * nodes at a time) and the old one goes once the new one is available. */
    int64_t budget = max_unavail - (int64_t)unavailable;
    for (int pass = 0; pass < 2 && !on_delete; pass++) {
        for (size_t k = 0; k < ns; k++) {
            struct slot *sl = &slots[k];
            if (!sl->old)
                continue;
            bool old_avail = drv_ctrl_pod_available(sl->old, min_ready, now_ms);
            bool del = false, add = false;
            if (sl->cur) {
                /* Both: the old one goes when the new one can take over (or is pointless). */
                del = pass == 0 && (max_surge == 0 || !old_avail ||
                                    drv_ctrl_pod_available(sl->cur, min_ready, now_ms));
            } else if (!old_avail) {
                del = add = pass == 0;
            } else if (pass == 1 && max_surge > 0) {
                add = (int64_t)surging < max_surge;
                surging += add;
            } else if (pass == 1 && budget > 0) {
                del = add = true;
                budget--;
            }
            if (del) {
                r = ctrl_delete_pod(s, sl->old, err);
                if (r != DRV_OK)
                    return r;
                if (sl->cur && surging)
                    surging--; /* this node's surge is over */
                sl->old = NULL;
            }
            if (add) {
                r = ctrl_create_pod(s, ds, DRV_KIND_DAEMONSET, tpl, DRV_CTRL_LABEL_DS_HASH, hash,
                                    ctrl_meta(ds, "name"), ctrl_meta(sl->node, "name"), err);
                if (r != DRV_OK)
                    return r;
            }
        }
    }

    /* Status from the store as it now is; old records go once no pod runs their template. */
    _cleanup_cjson_ cJSON *now_pods = NULL;
    r = ctrl_owned_pods(s, ctrl_meta(ds, "namespace"), ctrl_meta(ds, "uid"), &now_pods, err);
    if (r == DRV_OK)
        r = ctrl_dsrev_prune(s, ds, revs, hash, now_pods, err);
    if (r != DRV_OK)
        return r;
    size_t current = 0, ready = 0, updated = 0, available = 0;
    cJSON_ArrayForEach(p, now_pods)
    {
        current++;
        ready += drv_ctrl_pod_ready(p);
        available += drv_ctrl_pod_available(p, min_ready, now_ms);
        updated += hash_of(p) && !strcmp(hash_of(p), hash);
    }
    cJSON *st = cJSON_CreateObject();
    bool ok =
        st && cJSON_AddNumberToObject(st, "desiredNumberScheduled", (double)desired) &&
        cJSON_AddNumberToObject(st, "currentNumberScheduled", (double)current) &&
        cJSON_AddNumberToObject(st, "numberMisscheduled", (double)misscheduled) &&
        cJSON_AddNumberToObject(st, "numberReady", (double)ready) &&
        cJSON_AddNumberToObject(st, "numberAvailable", (double)available) &&
        cJSON_AddNumberToObject(st, "numberUnavailable",
                                (double)(desired > available ? desired - available : 0)) &&
        cJSON_AddNumberToObject(st, "updatedNumberScheduled", (double)updated) &&
        cJSON_AddNumberToObject(st, "observedGeneration",
                                (double)ctrl_int(drv_json_get(ds, "metadata"), "generation", 1));
    if (!ok) {
        cJSON_Delete(st);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "daemonset status");
    }
    drv_json_sort_keys(st);
    drv_error_t e = DRV_ERROR_INIT;
    r = drv_hstore_update_status(s, DRV_KIND_DAEMONSET, ctrl_meta(ds, "namespace"),
                                 ctrl_meta(ds, "name"), st, NULL, &e);
    if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, e.sys_errno, "daemonset %s status: %s", ctrl_meta(ds, "name"),
                             drv_error_msg(&e));
    return DRV_OK;
}

drv_err_t drv_ctrl_daemonset_reconcile(drv_hstore_t *s, const char *ns, const char *name,
                                       int64_t now_ms, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *ds = NULL;
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_get(s, DRV_KIND_DAEMONSET, ns, name, &ds, &e);
    if (r == DRV_ERR_NOTFOUND) {
        /* Gone: its history and its pods go with it. */
        _cleanup_cjson_ cJSON *pods = NULL, *left = NULL;
        r = drv_hstore_list(s, DRV_KIND_DAEMONSET, ns, NULL, &left, NULL, err);
        if (r == DRV_OK)
            r = ctrl_dsrev_collect(s, ns, left, err);
        if (r == DRV_OK)
            r = drv_hstore_list(s, DRV_KIND_POD, ns, NULL, &pods, NULL, err);
        const cJSON *p;
        cJSON_ArrayForEach(p, (r == DRV_OK ? pods : NULL))
        {
            const cJSON *ref = drv_ctrl_controller_of(p);
            const char *k = drv_json_str(ref, "kind"), *n = drv_json_str(ref, "name");
            if (k && n && !strcmp(k, "DaemonSet") && !strcmp(n, name)) {
                r = ctrl_delete_pod(s, p, err);
                if (r != DRV_OK)
                    break;
            }
        }
        return r;
    }
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "daemonset %s/%s: %s", ns, name,
                             drv_error_msg(&e));
    return reconcile(s, ds, now_ms, err);
}

drv_err_t drv_ctrl_daemonsets_reconcile(drv_hstore_t *s, int64_t now_ms, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *all = NULL;
    const cJSON *pods = NULL; /* the round's shared listing */
    drv_err_t r = drv_hstore_list(s, DRV_KIND_DAEMONSET, NULL, NULL, &all, NULL, err);
    if (r != DRV_OK)
        return r;
    drv_err_t first = DRV_OK;
    const cJSON *d;
    cJSON_ArrayForEach(d, all)
    {
        drv_error_t e = DRV_ERROR_INIT;
        r = reconcile(s, d, now_ms, &e);
        if (r != DRV_OK && first == DRV_OK) {
            first = r;
            drv_error_set(err, r, e.sys_errno, "%s", drv_error_msg(&e));
        }
    }
    r = ctrl_dsrev_collect(s, NULL, all, err);
    if (r == DRV_OK)
        r = drv_hstore_list_shared(s, DRV_KIND_POD, &pods, err);
    if (r != DRV_OK)
        return r;
    const cJSON *p;
    cJSON_ArrayForEach(p, pods)
    {
        const cJSON *ref = drv_ctrl_controller_of(p);
        const char *k = drv_json_str(ref, "kind"), *uid = drv_json_str(ref, "uid");
        if (!k || strcmp(k, "DaemonSet") || !uid)
            continue;
        bool found = false;
        cJSON_ArrayForEach(d, all)
        {
            if (!strcmp(ctrl_meta(d, "uid"), uid)) {
                found = true;
                break;
            }
        }
        if (!found) {
            r = ctrl_delete_pod(s, p, err);
            if (r != DRV_OK)
                return r;
        }
    }
    return first;
}
