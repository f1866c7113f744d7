/* The scheduler's volume rule: where a pod that uses PersistentVolumeClaims may go. A claim
 * bound to a node-local volume pins the pod to the volume's node; a claim whose volume's node
 * is gone keeps the pod Pending (its data is there, never re-created empty elsewhere); an
 * unbound claim of the local-path provisioner leaves the choice to the other rules (the volume
 * is then made on the chosen node); an unbound claim of another class needs an Available
 * volume made by hand that fits it. Pure logic over the lists the caller read from the store. */
#ifndef DROVER_HUB_SCHED_VOLUMES_H
#define DROVER_HUB_SCHED_VOLUMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "drover/error.h"

/* The built-in provisioner and its default class (created by the hub when missing). */
#define DRV_SCHED_LOCAL_PROVISIONER "drover.io/local-path"
#define DRV_SCHED_DEFAULT_CLASS "local-path"
#define DRV_SCHED_ANN_DEFAULT_CLASS "storageclass.kubernetes.io/is-default-class"
#define DRV_SCHED_ANN_SELECTED_NODE "volume.kubernetes.io/selected-node"
#define DRV_SCHED_ANN_PROVISIONED_BY "pv.kubernetes.io/provisioned-by"
/* On a Node: the directory its agent keeps local volumes in (agent config storage.dir). */
#define DRV_SCHED_ANN_STORAGE_DIR "drover.io/local-storage-path"

/* What the rule reads: JSON arrays as listed from the store (any may be NULL: none). */
typedef struct drv_sched_volctx {
    const cJSON *pvcs, *pvs, *classes, *nodes, *pods;
} drv_sched_volctx_t;

/* Whether the pod has a persistentVolumeClaim volume. */
bool drv_sched_pod_uses_claims(const cJSON *pod);

/* The node a PV lives on: the first value of a kubernetes.io/hostname In expression of its
 * spec.nodeAffinity, or NULL (a hostPath PV without affinity: any node). Borrowed. */
const char *drv_sched_pv_node(const cJSON *pv);

/* The claim's storage request in bytes (0 when unreadable). */
int64_t drv_sched_claim_request(const cJSON *pvc);

/* Whether the Available PV pv can serve claim pvc: same class, capacity >= request, every
 * requested access mode offered, no claimRef or one naming this claim. */
bool drv_sched_pv_fits(const cJSON *pv, const cJSON *pvc);

/* The smallest PV of ctx->pvs that fits pvc (drv_sched_pv_fits) and is not already claimed by
 * another claim, or NULL. Borrowed. */
const cJSON *drv_sched_pv_pick(const drv_sched_volctx_t *ctx, const cJSON *pvc);

/* The StorageClass named by the claim; for a claim without storageClassName the default
 * class (the newest annotated default); NULL: none, or a claim with class "". Borrowed. */
const cJSON *drv_sched_claim_class(const drv_sched_volctx_t *ctx, const cJSON *pvc);

/* The volume rule for pod. DRV_OK: node gets the node its claims pin it to, or "" when any
 * node will do. DRV_ERR_NOTFOUND: the pod cannot be placed now; why (whysz bytes) says which
 * claim and why, as kube-scheduler words it where it has words for it. DRV_ERR_TOOBIG: node
 * is too short. */
DRV_NODISCARD drv_err_t drv_sched_volumes_node(const drv_sched_volctx_t *ctx, const cJSON *pod,
                                               char *node, size_t nodesz, char *why, size_t whysz);

#endif
