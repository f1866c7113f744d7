/* The hub's scheduler: picks a node for a pod, as kube-scheduler does, in two phases.
 * Filters (a node failing one is out, with a reason): node Ready, not cordoned
 * (spec.unschedulable), OS/architecture among the image's platforms, nodeSelector and
 * required node affinity, NoSchedule and NoExecute taints tolerated, cpu/memory requests fit
 * allocatable minus what the pods bound there request, free hostPorts (every container port
 * under hostNetwork), pod count under allocatable.pods, required pod affinity and
 * anti-affinity (the pod's own, and the anti-affinity of the pods already bound) over the
 * topology domains of their topologyKey (a node label: kubernetes.io/hostname, zone, ...).
 * Scores: least allocated (mean free fraction of cpu and memory after placing) plus spreading
 * (fewer pods of the same owner on the node is better) plus, weighted 2, preferred node
 * affinity and preferred inter-pod (anti-)affinity; ties go to the smaller node name.
 * The cache keeps per-node usage that the caller updates as pods are bound and removed, so a
 * placement costs O(nodes). Pure logic: no store, no clock. */
#ifndef DROVER_HUB_SCHED_H
#define DROVER_HUB_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "drover/error.h"

/* Requests Kubernetes assumes for scoring a container that states none (not for fitting). */
#define DRV_SCHED_DEFAULT_CPU_MILLI 100
#define DRV_SCHED_DEFAULT_MEMORY (200 * 1024 * 1024)

/* Size for reason buffers: "0/1000 nodes are available: ..." */
#define DRV_SCHED_REASON_MAX 512

typedef struct drv_sched_node drv_sched_node_t; /* private */

typedef struct drv_sched_cache {
    drv_sched_node_t *nodes; /* sorted by name; private */
    size_t n;
    size_t next_start; /* where the next sampled search begins (see drv_sched_nodes_to_find) */
} drv_sched_cache_t;

/* How many feasible nodes a placement looks for among n before it stops searching, as
 * kube-scheduler's default percentageOfNodesToScore: all of them under 100 nodes; else 50 %
 * less one percentage point per 125 nodes, at least 5 %, and at least 100 nodes. Each
 * placement of a cache begins where the previous one stopped (round robin), so that every node
 * is looked at in turn and a pod costs O(sample), not O(nodes), on a big fleet. */
size_t drv_sched_nodes_to_find(size_t n);

/* An empty cache (equivalent to zero-initialising it). */
void drv_sched_cache_init(drv_sched_cache_t *c);
void drv_sched_cache_free(drv_sched_cache_t *c);

/* Replaces the cache's nodes with the Node objects of the JSON array nodes (each is copied;
 * the array stays the caller's). Usage recorded for a node of the same name is kept, so a
 * node status change needs no re-adding of pods. Objects without metadata.name are skipped. */
DRV_NODISCARD drv_err_t drv_sched_cache_set_nodes(drv_sched_cache_t *c, const cJSON *nodes,
                                                  drv_error_t *err);

/* Records a pod as bound to spec.nodeName (its requests, hostPorts and owner count there).
 * A pod without nodeName or on a node the cache does not know is ignored (returns DRV_OK).
 * The pod is not kept. remove undoes add (for a pod deleted or moved). */
DRV_NODISCARD drv_err_t drv_sched_cache_add_pod(drv_sched_cache_t *c, const cJSON *pod,
                                                drv_error_t *err);
void drv_sched_cache_remove_pod(drv_sched_cache_t *c, const cJSON *pod);

/* Pods recorded on node name (0 for an unknown node). */
size_t drv_sched_cache_pods_on(const drv_sched_cache_t *c, const char *name);

/* Chooses a node for pod. platforms: NULL (any) or a NULL-terminated list of "os/arch" or
 * "os/arch/variant" the pod's images offer (a node matches on os and architecture).
 * On DRV_OK the node's name is written to node (nodesz bytes, DRV_ERR_TOOBIG if short).
 * When no node fits, returns DRV_ERR_NOTFOUND and writes a kube-scheduler style reason
 * ("0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu.") to reason
 * (may be NULL). The cache's usage is not changed (only where the next search begins): add
 * the pod once it is bound. A pod whose
 * requests cannot be read is DRV_ERR_INVALID with err naming the field. */
DRV_NODISCARD drv_err_t drv_sched_place_cached(drv_sched_cache_t *c, const cJSON *pod,
                                               const char *const *platforms, char *node,
                                               size_t nodesz, char *reason, size_t reasonsz,
                                               drv_error_t *err);

/* One-shot form: nodes and bound_pods (JSON arrays, bound_pods may be NULL) are read into a
 * temporary cache. Same results as drv_sched_place_cached. */
DRV_NODISCARD drv_err_t drv_sched_place(const cJSON *pod, const cJSON *nodes,
                                        const cJSON *bound_pods, const char *const *platforms,
                                        char *node, size_t nodesz, char *reason, size_t reasonsz,
                                        drv_error_t *err);

/* Kubernetes toleration matching: true when toleration t ({key, operator, value, effect})
 * tolerates taint ({key, value, effect}); an empty effect matches every effect, operator
 * Exists with an empty key matches every taint. */
bool drv_sched_tolerates(const cJSON *toleration, const cJSON *taint);

/* The first NoSchedule/NoExecute taint of node (a Node object) that tolerations (a JSON array,
 * may be NULL) do not tolerate, or NULL. Borrowed from node. */
const cJSON *drv_sched_untolerated_taint(const cJSON *node, const cJSON *tolerations);

/* Whether node (a Node object) passes podspec's nodeSelector and required node affinity
 * (nodeSelectorTerms ORed, each term's matchExpressions and matchFields ANDed). */
bool drv_sched_node_affinity_ok(const cJSON *node, const cJSON *podspec);

/* Whether the Node's status has condition Ready with status "True". */
bool drv_sched_node_ready(const cJSON *node);

/* The pod's effective requests: max(sum of containers, largest init container) per resource,
 * in millicores and bytes; absent requests count as 0. */
DRV_NODISCARD drv_err_t drv_sched_pod_requests(const cJSON *pod, int64_t *cpu_milli,
                                               int64_t *mem_bytes, drv_error_t *err);

#endif
