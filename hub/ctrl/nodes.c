/* Node lifecycle: a node that stops sending heartbeats becomes NotReady after the grace
 * period, and its pods are deleted once their toleration runs out so their owners place
 * replacements elsewhere (the node's desired state then no longer holds them, so a node that
 * returns stops them: no workload runs twice). Also cordon and drain. */
#include "ctrl/ctrl_int.h"
#include "drover/fmt.h"
#include "drover/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/cleanup.h"

#define TAINT_UNREACHABLE "node.kubernetes.io/unreachable"
#define TAINT_NOT_READY "node.kubernetes.io/not-ready"

/* Writes node's status with its Ready condition set to Unknown since now_ms. */
static drv_err_t set_unknown(drv_hstore_t *s, const cJSON *node, const char *message,
                             int64_t now_ms, drv_error_t *err)
{
    const cJSON *ost = drv_json_get(node, "status");
    const cJSON *old = ctrl_condition(node, "Ready");
    cJSON *st = cJSON_IsObject(ost) ? cJSON_Duplicate(ost, true) : cJSON_CreateObject();
    cJSON *conds = cJSON_CreateArray();
    cJSON *c = ctrl_make_condition(NULL, "Ready", "Unknown", "NodeStatusUnknown", message, now_ms);
    if (!st || !conds || !c) {
        cJSON_Delete(st);
        cJSON_Delete(conds);
        cJSON_Delete(c);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "node status");
    }
    const char *hb = drv_json_str(old, "lastHeartbeatTime");
    bool ok = !hb || cJSON_AddStringToObject(c, "lastHeartbeatTime", hb);
    const cJSON *oc;
    cJSON_ArrayForEach(oc, drv_json_get(st, "conditions"))
    {
        const char *t = drv_json_str(oc, "type");
        if (!t || strcmp(t, "Ready")) {
            cJSON *dup = cJSON_Duplicate(oc, true);
            ok = ok && dup && cJSON_AddItemToArray(conds, dup);
        }
    }
    cJSON_AddItemToArray(conds, c);
    ok = ctrl_set(st, "conditions", conds) && ok;
    if (!ok) {
        cJSON_Delete(st);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "node status");
    }
    drv_json_sort_keys(st);
    ctrl_event(s, node, DRV_KIND_NODE, "Normal", "NodeNotReady", message, "drover-node-controller",
               now_ms);
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r =
        drv_hstore_update_status(s, DRV_KIND_NODE, NULL, ctrl_meta(node, "name"), st, NULL, &e);
    if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, e.sys_errno, "node %s status: %s", ctrl_meta(node, "name"),
                             drv_error_msg(&e));
    return DRV_OK;
}

static int64_t since_of(const cJSON *cond)
{
    return drv_ctrl_time_parse(drv_json_str(cond, "lastTransitionTime"));
}

/* Writes node's status with its Ready condition True again, heartbeat at hb_ms. */
static drv_err_t set_ready(drv_hstore_t *s, const cJSON *node, int64_t hb_ms, int64_t now_ms,
                           drv_error_t *err)
{
    const cJSON *ost = drv_json_get(node, "status");
    cJSON *st = cJSON_IsObject(ost) ? cJSON_Duplicate(ost, true) : cJSON_CreateObject();
    cJSON *conds = cJSON_CreateArray();
    cJSON *c = ctrl_make_condition(NULL, "Ready", "True", "NodeHeartbeatResumed",
                                   "Node is sending heartbeats again.", now_ms);
    char ts[32];
    drv_ctrl_time_format(hb_ms, ts, sizeof(ts));
    if (!st || !conds || !c || !cJSON_AddStringToObject(c, "lastHeartbeatTime", ts)) {
        cJSON_Delete(st);
        cJSON_Delete(conds);
        cJSON_Delete(c);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "node status");
    }
    bool ok = true;
    const cJSON *oc;
    cJSON_ArrayForEach(oc, drv_json_get(st, "conditions"))
    {
        const char *t = drv_json_str(oc, "type");
        if (!t || strcmp(t, "Ready")) {
            cJSON *dup = cJSON_Duplicate(oc, true);
            ok = ok && dup && cJSON_AddItemToArray(conds, dup);
        }
    }
    cJSON_AddItemToArray(conds, c);
    ok = ctrl_set(st, "conditions", conds) && ok;
    if (!ok) {
        cJSON_Delete(st);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "node status");
    }
    drv_json_sort_keys(st);
    ctrl_event(s, node, DRV_KIND_NODE, "Normal", "NodeReady", "Node is sending heartbeats again.",
               "drover-node-controller", now_ms);
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r =
        drv_hstore_update_status(s, DRV_KIND_NODE, NULL, ctrl_meta(node, "name"), st, NULL, &e);
    if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, e.sys_errno, "node %s status: %s", ctrl_meta(node, "name"),
                             drv_error_msg(&e));
    return DRV_OK;
}

drv_err_t drv_ctrl_node_mark_unreachable(drv_hstore_t *s, const char *name, int64_t now_ms,
                                         drv_error_t *err)
{
    _cleanup_cjson_ cJSON *node = NULL;
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_get(s, DRV_KIND_NODE, NULL, name, &node, &e);
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "node %s: %s", name, drv_error_msg(&e));
    const char *st = drv_json_str(ctrl_condition(node, "Ready"), "status");
    if (st && strcmp(st, "True"))
        return DRV_OK;
    return set_unknown(s, node, "Node went offline (its connection's Will was delivered).", now_ms,
                       err);
}

struct bad_node {
    const char *name;
    bool not_ready; /* Ready False (else Unknown: unreachable) */
    int64_t since;
    int64_t hb; /* last heartbeat, -1 if unknown */
};

static int bad_cmp(const void *a, const void *b)
{
    return strcmp(((const struct bad_node *)a)->name, ((const struct bad_node *)b)->name);
}

/* How long pod tolerates its node being NotReady with taint key: ms, or -1 for ever. */
static int64_t toleration_ms(const cJSON *pod, const char *key, int64_t def_ms)
{
    cJSON *taint = cJSON_CreateObject();
    if (!taint || !cJSON_AddStringToObject(taint, "key", key) ||
        !cJSON_AddStringToObject(taint, "effect", "NoExecute")) {
        cJSON_Delete(taint);
        return def_ms;
    }
    const cJSON *tols = drv_json_get(drv_json_get(pod, "spec"), "tolerations"), *t;
    int64_t best = -2;
    cJSON_ArrayForEach(t, (cJSON_IsArray(tols) ? tols : NULL))
    {
        if (!drv_sched_tolerates(t, taint))
            continue;
        const cJSON *secs = drv_json_get(t, "tolerationSeconds");
        /* Drover: absent or 0 means never move (pinned or stateful work); otherwise the
         * shortest of the matching tolerations counts, as in Kubernetes. */
        if (!cJSON_IsNumber(secs) || secs->valuedouble <= 0) {
            best = -1;
            break;
        }
        /* Beyond a thousand years counts as a thousand years (and stays in range). */
        double sec = secs->valuedouble > 3.2e10 ? 3.2e10 : secs->valuedouble;
        int64_t v = (int64_t)sec * 1000;
        if (best == -2 || v < best)
            best = v;
    }
    cJSON_Delete(taint);
    return best == -2 ? def_ms : best;
}

/* Sets the pod's Ready (and ContainersReady) condition False, reason NodeNotReady. */
static drv_err_t mark_pod_not_ready(drv_hstore_t *s, const cJSON *pod, int64_t now_ms,
                                    drv_error_t *err)
{
    cJSON *st = cJSON_Duplicate(drv_json_get(pod, "status"), true);
    cJSON *conds = cJSON_CreateArray();
    if (!st || !conds) {
        cJSON_Delete(st);
        cJSON_Delete(conds);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "pod status");
    }
    bool ok = true;
    const cJSON *oc;
    cJSON_ArrayForEach(oc, drv_json_get(st, "conditions"))
    {
        const char *t = drv_json_str(oc, "type");
        cJSON *c = t && (!strcmp(t, "Ready") || !strcmp(t, "ContainersReady"))
                       ? ctrl_make_condition(oc, t, "False", "NodeNotReady",
                                             "The pod's node is not ready.", now_ms)
                       : cJSON_Duplicate(oc, true);
        ok = ok && c && cJSON_AddItemToArray(conds, c);
    }
    ok = ctrl_set(st, "conditions", conds) && ok;
    if (!ok) {
        cJSON_Delete(st);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "pod status");
    }
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_update_status(s, DRV_KIND_POD, ctrl_meta(pod, "namespace"),
                                           ctrl_meta(pod, "name"), st, NULL, &e);
    if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, e.sys_errno, "pod %s status: %s", ctrl_meta(pod, "name"),
                             drv_error_msg(&e));
    return DRV_OK;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool movable(const cJSON *pod)
{
    const char *k = drv_json_str(drv_ctrl_controller_of(pod), "kind");
    return k && strcmp(k, "DaemonSet");
}

/* A StatefulSet's pod on a node that cannot be reached may still run there: made again
 * elsewhere it would run twice under one name (Kubernetes keeps such a pod Terminating until
 * its kubelet confirms or the Node is deleted). It stays until then. */
static bool evictable(const cJSON *pod)
{
    const char *k = drv_json_str(drv_ctrl_controller_of(pod), "kind");
    return movable(pod) && strcmp(k, "StatefulSet");
}

static void overrode(const drv_ctrl_nodes_opts_t *o, const char *node)
{
    if (o && o->overrode && node)
        o->overrode(o->ctx, node);
}

drv_err_t drv_ctrl_nodes_reconcile(drv_hstore_t *s, const drv_ctrl_nodes_opts_t *o, int64_t now_ms,
                                   size_t *evicted, drv_error_t *err)
{
    int64_t grace = o && o->grace_ms > 0 ? o->grace_ms : DRV_CTRL_NODE_GRACE_MS_DEFAULT;
    int64_t deftol = o && o->default_toleration_ms > 0 ? o->default_toleration_ms
                                                       : DRV_CTRL_TOLERATION_MS_DEFAULT;
    _cleanup_cjson_ cJSON *nodes = NULL;
    const cJSON *pods = NULL; /* the round's shared listing (read only, the store's) */
    drv_err_t r = drv_hstore_list(s, DRV_KIND_NODE, NULL, NULL, &nodes, NULL, err);
    if (r != DRV_OK)
        return r;
    size_t n_evicted = 0, marked = 0;
    cJSON *node;
    cJSON_ArrayForEach(node, nodes)
    {
        const char *name = ctrl_meta(node, "name");
        const cJSON *ready = ctrl_condition(node, "Ready");
        const char *st = drv_json_str(ready, "status");
        int64_t hb = o && o->heartbeat ? o->heartbeat(o->ctx, name) : -1;
        if (hb < 0)
            hb = drv_ctrl_time_parse(drv_json_str(ready, "lastHeartbeatTime"));
        if (st && !strcmp(st, "True") && hb >= 0 && now_ms - hb > grace) {
            char msg[128];
            drv_fmt_cut(msg, sizeof(msg), "Node stopped sending heartbeats for more than %lld s.",
                        (long long)(grace / 1000));
            r = set_unknown(s, node, msg, now_ms, err);
            if (r != DRV_OK)
                return r;
            overrode(o, name);
            marked++;
        } else if (st && strcmp(st, "True") && o && o->heartbeat && hb >= 0 &&
                   now_ms - hb <= grace && hb >= since_of(ready) + 1000 &&
                   !strcmp(drv_json_str(ready, "reason") ? drv_json_str(ready, "reason") : "",
                           "NodeStatusUnknown")) {
            /* We marked it, and it is beating again: Ready, even before its next full status
             * report (an agent that never knew it was gone has nothing to report). The mark's
             * time has whole seconds: only a beat after that second is surely newer (a beat
             * sent just before the mark, in the same second, is not). */
            r = set_ready(s, node, hb, now_ms, err);
            if (r != DRV_OK)
                return r;
            overrode(o, name); /* its pods were marked not Ready meanwhile */
            marked++;
        }
    }
    if (marked) {
        /* Read the nodes again: their conditions have just changed. */
        cJSON_Delete(nodes);
        nodes = NULL;
        r = drv_hstore_list(s, DRV_KIND_NODE, NULL, NULL, &nodes, NULL, err);
    }
    if (r == DRV_OK)
        r = drv_hstore_list_shared(s, DRV_KIND_POD, &pods, err);
    if (r != DRV_OK)
        return r;
    /* The NotReady nodes, sorted by name, so that one pass over the pods finds theirs. */
    size_t nnodes = (size_t)cJSON_GetArraySize(nodes), nbad = 0;
    _cleanup_free_ struct bad_node *bad = calloc(nnodes + 1, sizeof(*bad));
    if (!bad)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "node lifecycle");
    cJSON_ArrayForEach(node, nodes)
    {
        const cJSON *ready = ctrl_condition(node, "Ready");
        const char *st = drv_json_str(ready, "status");
        if (!st || !strcmp(st, "True"))
            continue;
        int64_t since = drv_ctrl_time_parse(drv_json_str(ready, "lastTransitionTime"));
        bad[nbad].name = ctrl_meta(node, "name");
        bad[nbad].not_ready = !strcmp(st, "False");
        bad[nbad].since = since < 0 ? now_ms : since;
        bad[nbad].hb = o && o->heartbeat ? o->heartbeat(o->ctx, ctrl_meta(node, "name")) : -1;
        if (bad[nbad].hb < 0)
            bad[nbad].hb = drv_ctrl_time_parse(drv_json_str(ready, "lastHeartbeatTime"));
        if (bad[nbad].name)
            nbad++;
    }
    qsort(bad, nbad, sizeof(*bad), bad_cmp);
    /* Most of the fleet NotReady at once says more about the hub's view (its broker, its
     * network, its own stall) than about the devices: as Kubernetes does for a disrupted zone
     * (unhealthyZoneThreshold 0.55), pods are then not moved, only marked. */
    bool disrupted = nnodes >= 3 && nbad * 100 > nnodes * 55;
    if (disrupted && nbad)
        drv_log_warn("node lifecycle: most nodes are NotReady; not evicting their pods",
                     "not_ready=%zu nodes=%zu", nbad, nnodes);
    const cJSON *p;
    cJSON_ArrayForEach(p, (nbad ? pods : NULL))
    {
        const char *nn = drv_json_str(drv_json_get(p, "spec"), "nodeName");
        if (!nn || !*nn)
            continue;
        struct bad_node want = {.name = nn};
        const struct bad_node *b = bsearch(&want, bad, nbad, sizeof(*bad), bad_cmp);
        if (!b)
            continue;
        const char *key = b->not_ready ? TAINT_NOT_READY : TAINT_UNREACHABLE;
        /* Its agent cannot say so: the pod is no longer known to be ready. */
        if (drv_ctrl_pod_ready(p)) {
            r = mark_pod_not_ready(s, p, now_ms, err);
            if (r != DRV_OK)
                return r;
            overrode(o, nn);
        }
        if (disrupted || !evictable(p))
            continue;
        int64_t tol = toleration_ms(p, key, deftol);
        /* The toleration runs from the NotReady mark, but never from before the node has been
         * silent for the grace period: a Will marks the node at once (its pods stop counting
         * as ready), yet a link that drops and comes back within grace + toleration keeps its
         * pods, and a silent loss and a Will are both moved grace + toleration after the last
         * heartbeat. */
        int64_t start = b->since;
        if (b->hb >= 0 && b->hb + grace > start)
            start = b->hb + grace;
        if (tol < 0 || now_ms < start + tol)
            continue;
        char msg[400];
        drv_fmt_cut(msg, sizeof(msg),
                    "Node %.200s is %s: deleting the pod so that its owner replaces it elsewhere",
                    b->name, b->not_ready ? "not ready" : "unreachable");
        ctrl_event(s, p, DRV_KIND_POD, "Normal", "TaintManagerEviction", msg,
                   "drover-node-controller", now_ms);
        r = ctrl_delete_pod(s, p, err);
        if (r != DRV_OK)
            return r;
        n_evicted++;
    }
    /* Owned pods bound to a node that was deleted: their owners replace them. */
    size_t nn_count = (size_t)cJSON_GetArraySize(nodes), k = 0;
    _cleanup_free_ const char **names = calloc(nn_count + 1, sizeof(*names));
    if (!names)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "node lifecycle");
    cJSON_ArrayForEach(node, nodes)
    {
        names[k++] = ctrl_meta(node, "name");
    }
    qsort(names, k, sizeof(*names), name_cmp);
    cJSON_ArrayForEach(p, pods)
    {
        const char *nn = drv_json_str(drv_json_get(p, "spec"), "nodeName");
        if (!nn || !*nn || !movable(p) || bsearch(&nn, names, k, sizeof(*names), name_cmp))
            continue;
        char msg[300];
        drv_fmt_cut(msg, sizeof(msg), "Node %.200s no longer exists", nn);
        ctrl_event(s, p, DRV_KIND_POD, "Normal", "NodeDeleted", msg, "drover-node-controller",
                   now_ms);
        r = ctrl_delete_pod(s, p, err);
        if (r != DRV_OK)
            return r;
        n_evicted++;
    }
    if (evicted)
        *evicted = n_evicted;
    return DRV_OK;
}

drv_err_t drv_ctrl_node_cordon(drv_hstore_t *s, const char *name, bool cordon, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *node = NULL;
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_get(s, DRV_KIND_NODE, NULL, name, &node, &e);
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "node %s: %s", name, drv_error_msg(&e));
    cJSON *spec = (cJSON *)drv_json_get(node, "spec");
    if (!cJSON_IsObject(spec)) {
        spec = cJSON_CreateObject();
        if (!ctrl_set(node, "spec", spec))
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "cordon");
    }
    if (cJSON_IsTrue(drv_json_get(spec, "unschedulable")) == cordon)
        return DRV_OK;
    if (cordon ? !ctrl_set(spec, "unschedulable", cJSON_CreateTrue())
               : (cJSON_DeleteItemFromObjectCaseSensitive(spec, "unschedulable"), false))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "cordon");
    r = drv_hstore_update(s, DRV_KIND_NODE, node, &e);
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "%s node %s: %s", cordon ? "cordon" : "uncordon",
                             name, drv_error_msg(&e));
    return DRV_OK;
}

drv_err_t drv_ctrl_node_drain(drv_hstore_t *s, const char *name, int64_t now_ms, size_t *evicted,
                              drv_error_t *err)
{
    drv_err_t r = drv_ctrl_node_cordon(s, name, true, err);
    if (r != DRV_OK)
        return r;
    _cleanup_cjson_ cJSON *pods = NULL;
    r = drv_hstore_list(s, DRV_KIND_POD, NULL, NULL, &pods, NULL, err);
    if (r != DRV_OK)
        return r;
    size_t n = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, pods)
    {
        const char *nn = drv_json_str(drv_json_get(p, "spec"), "nodeName");
        if (!nn || strcmp(nn, name) || !movable(p))
            continue;
        ctrl_event(s, p, DRV_KIND_POD, "Normal", "Evicted", "Evicted by drain of its node",
                   "drover-node-controller", now_ms);
        r = ctrl_delete_pod(s, p, err);
        if (r != DRV_OK)
            return r;
        n++;
    }
    if (evicted)
        *evicted = n;
    return DRV_OK;
}
