/* The scheduler's volume rule (volumes.h): claims bound to node-local volumes pin their pods
 * to the volume's node, as kube-scheduler's VolumeBinding and VolumeRestrictions plugins do
 * for local PersistentVolumes. */
#include "sched/volumes.h"

#include <string.h>

#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/quantity.h"

bool drv_sched_pod_uses_claims(const cJSON *pod)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, drv_json_at(pod, "spec.volumes"))
    {
        if (drv_json_get(v, "persistentVolumeClaim"))
            return true;
    }
    return false;
}

const char *drv_sched_pv_node(const cJSON *pv)
{
    const cJSON *t, *e;
    cJSON_ArrayForEach(t, drv_json_at(pv, "spec.nodeAffinity.required.nodeSelectorTerms"))
    {
        cJSON_ArrayForEach(e, drv_json_get(t, "matchExpressions"))
        {
            const char *k = drv_json_str(e, "key"), *op = drv_json_str(e, "operator");
            const cJSON *v0 = cJSON_GetArrayItem(drv_json_get(e, "values"), 0);
            if (k && op && !strcmp(k, "kubernetes.io/hostname") && !strcmp(op, "In") &&
                cJSON_IsString(v0))
                return v0->valuestring;
        }
    }
    return NULL;
}

static int64_t bytes_of(const char *q)
{
    int64_t v = 0;
    if (!q || drv_qty_parse_memory(q, &v, NULL, NULL) != DRV_OK)
        return 0;
    return v;
}

int64_t drv_sched_claim_request(const cJSON *pvc)
{
    return bytes_of(drv_json_str_at(pvc, "spec.resources.requests.storage"));
}

static const cJSON *find_named(const cJSON *arr, const char *ns, const char *name)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, arr)
    {
        const cJSON *m = drv_json_get(o, "metadata");
        const char *n = drv_json_str(m, "name"), *s = drv_json_str(m, "namespace");
        if (n && !strcmp(n, name) && (!ns || (s && !strcmp(s, ns))))
            return o;
    }
    return NULL;
}

static bool has_mode(const cJSON *spec, const char *mode)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, drv_json_get(spec, "accessModes"))
    {
        if (cJSON_IsString(m) && !strcmp(m->valuestring, mode))
            return true;
    }
    return false;
}

bool drv_sched_pv_fits(const cJSON *pv, const cJSON *pvc)
{
    const cJSON *ps = drv_json_get(pv, "spec"), *cs = drv_json_get(pvc, "spec");
    const char *pc = drv_json_str_or(ps, "storageClassName", "");
    const char *cc = drv_json_str_or(cs, "storageClassName", "");
    if (strcmp(pc, cc))
        return false;
    if (bytes_of(drv_json_str_at(ps, "capacity.storage")) < drv_sched_claim_request(pvc))
        return false;
    const cJSON *m;
    cJSON_ArrayForEach(m, drv_json_get(cs, "accessModes"))
    {
        if (!cJSON_IsString(m) || !has_mode(ps, m->valuestring))
            return false;
    }
    const cJSON *ref = drv_json_get(ps, "claimRef");
    if (!ref)
        return true;
    const char *rn = drv_json_str(ref, "name"), *rns = drv_json_str(ref, "namespace");
    const char *ruid = drv_json_str(ref, "uid");
    const cJSON *meta = drv_json_get(pvc, "metadata");
    return rn && rns && !strcmp(rn, drv_json_str_or(meta, "name", "")) &&
           !strcmp(rns, drv_json_str_or(meta, "namespace", "")) &&
           (!ruid || !*ruid || !strcmp(ruid, drv_json_str_or(meta, "uid", "")));
}

const cJSON *drv_sched_pv_pick(const drv_sched_volctx_t *ctx, const cJSON *pvc)
{
    const cJSON *best = NULL, *pv;
    int64_t best_size = 0;
    cJSON_ArrayForEach(pv, ctx->pvs)
    {
        const char *phase = drv_json_str_at(pv, "status.phase");
        if (!drv_sched_pv_fits(pv, pvc))
            continue;
        /* Half bound to this very claim (the claim's write failed): finish that. */
        const char *ruid = drv_json_str_at(pv, "spec.claimRef.uid");
        if (ruid && *ruid && (!phase || strcmp(phase, "Released")))
            return pv;
        /* A Released volume keeps its data for its old claim: never given to another. */
        if (phase && strcmp(phase, "Available") && strcmp(phase, "Pending"))
            continue;
        int64_t size = bytes_of(drv_json_str_at(pv, "spec.capacity.storage"));
        /* One that names the claim first, then the smallest, as Kubernetes' binder. */
        if (drv_json_at(pv, "spec.claimRef"))
            return pv;
        if (!best || size < best_size) {
            best = pv;
            best_size = size;
        }
    }
    return best;
}

const cJSON *drv_sched_claim_class(const drv_sched_volctx_t *ctx, const cJSON *pvc)
{
    const char *cls = drv_json_str_at(pvc, "spec.storageClassName");
    if (cls)
        return *cls ? find_named(ctx->classes, NULL, cls) : NULL;
    /* Not given the default class yet (the claims' round does that): the newest default. */
    const cJSON *c, *best = NULL;
    cJSON_ArrayForEach(c, ctx->classes)
    {
        const char *d =
            drv_json_str(drv_json_at(c, "metadata.annotations"), DRV_SCHED_ANN_DEFAULT_CLASS);
        const char *t = drv_json_str_at(c, "metadata.creationTimestamp");
        if (d && !strcmp(d, "true") &&
            (!best || strcmp(t ? t : "", drv_json_str_or(drv_json_get(best, "metadata"),
                                                         "creationTimestamp", "")) > 0))
            best = c;
    }
    return best;
}

/* Whether another pod than pod, not finished, uses the claim ns/name. */
static bool claim_used_elsewhere(const drv_sched_volctx_t *ctx, const cJSON *pod, const char *ns,
                                 const char *name)
{
    const char *uid = drv_json_str_at(pod, "metadata.uid");
    const cJSON *p, *v;
    cJSON_ArrayForEach(p, ctx->pods)
    {
        const char *pu = drv_json_str_at(p, "metadata.uid"),
                   *pns = drv_json_str_at(p, "metadata.namespace");
        const char *phase = drv_json_str_at(p, "status.phase");
        if ((uid && pu && !strcmp(uid, pu)) || !pns || strcmp(pns, ns) ||
            (phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"))))
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

/* Adds want to the pin in node; false (with why) when it conflicts with another claim's. */
static bool pin(char *node, size_t nodesz, const char *want, char *why, size_t whysz, drv_err_t *r)
{
    if (!want || !*want)
        return true;
    if (node[0] && strcmp(node, want)) {
        drv_fmt_cut(why, whysz,
                    "the pod's claims are on different nodes (%s and "
                    "%s): node(s) had volume node affinity conflict.",
                    node, want);
        *r = DRV_ERR_NOTFOUND;
        return false;
    }
    if (drv_fmt(node, nodesz, "%s", want) != DRV_OK) {
        *r = DRV_ERR_TOOBIG;
        return false;
    }
    return true;
}

drv_err_t drv_sched_volumes_node(const drv_sched_volctx_t *ctx, const cJSON *pod, char *node,
                                 size_t nodesz, char *why, size_t whysz)
{
    if (nodesz == 0)
        return DRV_ERR_TOOBIG;
    node[0] = '\0';
    const char *ns = drv_json_str_or(drv_json_get(pod, "metadata"), "namespace", "default");
    drv_err_t r = DRV_OK;
    const cJSON *v;
    cJSON_ArrayForEach(v, drv_json_at(pod, "spec.volumes"))
    {
        const char *cn = drv_json_str(drv_json_get(v, "persistentVolumeClaim"), "claimName");
        if (!cn)
            continue;
        const cJSON *pvc = find_named(ctx->pvcs, ns, cn);
        if (!pvc) {
            drv_fmt_cut(why, whysz, "persistentvolumeclaim \"%s\" not found", cn);
            return DRV_ERR_NOTFOUND;
        }
        if (drv_json_str_at(pvc, "metadata.deletionTimestamp")) {
            drv_fmt_cut(why, whysz, "persistentvolumeclaim \"%s\" is being deleted", cn);
            return DRV_ERR_NOTFOUND;
        }
        if (has_mode(drv_json_get(pvc, "spec"), "ReadWriteOncePod") &&
            claim_used_elsewhere(ctx, pod, ns, cn)) {
            drv_fmt_cut(why, whysz,
                        "a pod uses PersistentVolumeClaim "
                        "\"%s\" with the same ReadWriteOncePod access mode.",
                        cn);
            return DRV_ERR_NOTFOUND;
        }
        const char *vn = drv_json_str_at(pvc, "spec.volumeName");
        if (vn && *vn) {
            const cJSON *pv = find_named(ctx->pvs, NULL, vn);
            if (!pv) {
                drv_fmt_cut(why, whysz,
                            "persistentvolumeclaim \"%s\" is bound to volume \"%s\", which does "
                            "not exist: the pod waits (Drover never makes a claim's volume "
                            "again elsewhere)",
                            cn, vn);
                return DRV_ERR_NOTFOUND;
            }
            const char *pn = drv_sched_pv_node(pv);
            if (pn && !find_named(ctx->nodes, NULL, pn)) {
                drv_fmt_cut(why, whysz,
                            "persistentvolumeclaim \"%s\" is bound to volume \"%s\" on node "
                            "\"%s\", which is gone: the pod waits for the node (Drover never "
                            "makes a claim's volume again elsewhere)",
                            cn, vn, pn);
                return DRV_ERR_NOTFOUND;
            }
            if (!pin(node, nodesz, pn, why, whysz, &r))
                return r;
            continue;
        }
        /* Being provisioned: the node was chosen already. */
        const char *sel =
            drv_json_str(drv_json_at(pvc, "metadata.annotations"), DRV_SCHED_ANN_SELECTED_NODE);
        if (sel && *sel) {
            if (!pin(node, nodesz, sel, why, whysz, &r))
                return r;
            continue;
        }
        const cJSON *cls = drv_sched_claim_class(ctx, pvc);
        const char *prov = drv_json_str(cls, "provisioner");
        if (prov && !strcmp(prov, DRV_SCHED_LOCAL_PROVISIONER))
            continue; /* made on the node chosen */
        const cJSON *pv = drv_sched_pv_pick(ctx, pvc);
        if (!pv) {
            const char *cname = drv_json_str_at(pvc, "spec.storageClassName");
            if (cname && *cname && !cls)
                drv_fmt_cut(why, whysz,
                            "persistentvolumeclaim \"%s\": storageclass.storage.k8s.io \"%s\" "
                            "not found",
                            cn, cname);
            else
                drv_fmt_cut(why, whysz,
                            "persistentvolumeclaim \"%s\": node(s) "
                            "didn't find available persistent volumes to bind.",
                            cn);
            return DRV_ERR_NOTFOUND;
        }
        const char *pn = drv_sched_pv_node(pv);
        if (pn && !find_named(ctx->nodes, NULL, pn)) {
            drv_fmt_cut(why, whysz,
                        "persistentvolumeclaim \"%s\": its only fitting volume \"%s\" is on node "
                        "\"%s\", which is gone",
                        cn, drv_json_str_or(drv_json_get(pv, "metadata"), "name", ""), pn);
            return DRV_ERR_NOTFOUND;
        }
        if (!pin(node, nodesz, pn, why, whysz, &r))
            return r;
    }
    return DRV_OK;
}
