/* The hub's controllers: reconcile functions that read the desired state from the store and
 * write the pods that realise it, run by the hub loop on every change and on a timer. Each is
 * idempotent (running it again on an unchanged store changes nothing) and takes the time as
 * now_ms (milliseconds since the Unix epoch) so that tests need no clock.
 *  - Deployment: pods owned directly (no ReplicaSet kind), labelled with the template's
 *    labels plus "pod-template-hash"; RollingUpdate (maxSurge/maxUnavailable), Recreate,
 *    revision history in the Deployment's annotations, rollback, pause;
 *  - DaemonSet: one pod bound to each matching node, rolling update by maxUnavailable or
 *    maxSurge (new pod beside the old one until it is available), OnDelete; its templates kept
 *    as ControllerRevisions (<daemonset>-<controller-revision-hash>, revisionHistoryLimit old
 *    ones), deleted with it;
 *  - node lifecycle: NotReady after the heartbeat grace period, pods replaced after their
 *    toleration, cordon and drain;
 *  - scheduling: binds pending pods with hub/sched and says why a pod cannot be placed.
 * Not thread-safe, like the store. */
#ifndef DROVER_HUB_CTRL_H
#define DROVER_HUB_CTRL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "drover/error.h"
#include "sched/sched.h"
#include "sched/volumes.h"
#include "store/store.h"

#define DRV_CTRL_NODE_GRACE_MS_DEFAULT 10000
#define DRV_CTRL_TOLERATION_MS_DEFAULT 3000

/* Annotations kept on a Deployment: the current revision number, and the kept revisions as a
 * JSON array of {"revision": n, "hash": "...", "template": {...}}, oldest first. The same array
 * is kept in status.history, which survives an update that replaces the annotations (an
 * apply of the user's manifest); the annotations are then written again. */
#define DRV_CTRL_ANN_REVISION "deployment.kubernetes.io/revision"
#define DRV_CTRL_ANN_HISTORY "drover.io/history"
#define DRV_CTRL_LABEL_HASH "pod-template-hash"
#define DRV_CTRL_LABEL_DS_HASH "controller-revision-hash"

/* ---- Deployment ---- */

/* Brings the pods of Deployment ns/name towards its spec and writes its status. A Deployment
 * that no longer exists has its pods deleted. DRV_ERR_CONFLICT when the Deployment changed
 * under us (run again). */
DRV_NODISCARD drv_err_t drv_ctrl_deployment_reconcile(drv_hstore_t *s, const char *ns,
                                                      const char *name, int64_t now_ms,
                                                      drv_error_t *err);

/* Every Deployment, then pods whose owning Deployment is gone. */
DRV_NODISCARD drv_err_t drv_ctrl_deployments_reconcile(drv_hstore_t *s, int64_t now_ms,
                                                       drv_error_t *err);

/* Sets the Deployment's template back to kept revision `revision` (0: the one before the
 * current). DRV_ERR_NOTFOUND names the revisions kept. The next reconcile rolls it out as a
 * new revision, as `kubectl rollout undo` does. */
DRV_NODISCARD drv_err_t drv_ctrl_deployment_rollback(drv_hstore_t *s, const char *ns,
                                                     const char *name, int64_t revision,
                                                     drv_error_t *err);

/* ---- DaemonSet ---- */

DRV_NODISCARD drv_err_t drv_ctrl_daemonset_reconcile(drv_hstore_t *s, const char *ns,
                                                     const char *name, int64_t now_ms,
                                                     drv_error_t *err);
DRV_NODISCARD drv_err_t drv_ctrl_daemonsets_reconcile(drv_hstore_t *s, int64_t now_ms,
                                                      drv_error_t *err);

/* ---- StatefulSet (statefulset.c) ---- */

/* Every StatefulSet one step towards its spec (pods <set>-<ordinal> made in order, removed in
 * reverse, replaced from the highest ordinal down to the partition on a template change, each
 * step of OrderedReady waiting for the pods before it to be Running and Ready), their claims
 * from volumeClaimTemplates, revisions and status; then the pods, revisions and owned claims of
 * StatefulSets that are gone. */
DRV_NODISCARD drv_err_t drv_ctrl_statefulsets_reconcile(drv_hstore_t *s, int64_t now_ms,
                                                        drv_error_t *err);

/* ---- Node lifecycle ---- */

/* The hub's record of node's last heartbeat in ms since the epoch, or -1 if it has none (the
 * hub restarted): the Ready condition's lastHeartbeatTime in the Node's status is used then. */
typedef int64_t (*drv_ctrl_heartbeat_fn)(void *ctx, const char *node);
/* Told that the controller wrote, on node's behalf, status only its agent knows for sure (the
 * Node's Ready condition, its pods' readiness): the node's next sign of life must bring a full
 * status report that puts its truth back (drv_bridge_report_stale). */
typedef void (*drv_ctrl_overrode_fn)(void *ctx, const char *node);

typedef struct drv_ctrl_nodes_opts {
    int64_t grace_ms;                /* <= 0: DRV_CTRL_NODE_GRACE_MS_DEFAULT */
    int64_t default_toleration_ms;   /* <= 0: DRV_CTRL_TOLERATION_MS_DEFAULT */
    drv_ctrl_heartbeat_fn heartbeat; /* may be NULL */
    drv_ctrl_overrode_fn overrode;   /* may be NULL */
    void *ctx;                       /* for heartbeat and overrode */
} drv_ctrl_nodes_opts_t;

/* Marks nodes whose heartbeat is older than the grace period NotReady (Ready condition
 * status Unknown, reason NodeStatusUnknown) and deletes the pods on NotReady nodes whose
 * toleration has run out, so their owners replace them elsewhere and the node's desired
 * state no longer holds them. The toleration is the pod's NoExecute toleration for
 * node.kubernetes.io/unreachable (Ready Unknown) or node.kubernetes.io/not-ready (Ready
 * False); a matching toleration without tolerationSeconds, or with 0, never moves the pod;
 * no matching toleration means the default. Only pods with a controller owner other than a
 * DaemonSet or StatefulSet are moved (a StatefulSet's pod stays until its node is back or
 * deleted, never running twice under one name); owned pods bound to a node that no longer exists
 * are deleted too. Every pod on a NotReady node has its Ready condition set False (reason
 * NodeNotReady) at once, as its agent cannot report, so rollouts and status do not count it. A node
 * this controller marked (reason NodeStatusUnknown) whose heartbeat, as o->heartbeat reports it, is
 * again newer than the mark and within the grace period is set Ready again. Every node whose Ready
 * condition or pods this writes is passed to o->overrode. *evicted (may be NULL) gets how many pods
 * were deleted. Events: NodeNotReady and NodeReady on the node, TaintManagerEviction or NodeDeleted
 * on each pod deleted. */
DRV_NODISCARD drv_err_t drv_ctrl_nodes_reconcile(drv_hstore_t *s, const drv_ctrl_nodes_opts_t *o,
                                                 int64_t now_ms, size_t *evicted, drv_error_t *err);

/* Marks node NotReady now (the node's MQTT Will fired). No-op if it already is. */
DRV_NODISCARD drv_err_t drv_ctrl_node_mark_unreachable(drv_hstore_t *s, const char *node,
                                                       int64_t now_ms, drv_error_t *err);

/* Sets or clears spec.unschedulable. */
DRV_NODISCARD drv_err_t drv_ctrl_node_cordon(drv_hstore_t *s, const char *node, bool cordon,
                                             drv_error_t *err);

/* Cordons node and evicts (deletes) its pods that have a controller owner other than a
 * DaemonSet; their controllers recreate them elsewhere. Pods without an owner are left, as
 * `kubectl drain` refuses them without --force. *evicted (may be NULL) gets the count. An
 * Event (reason Evicted) is recorded for each pod. */
DRV_NODISCARD drv_err_t drv_ctrl_node_drain(drv_hstore_t *s, const char *node, int64_t now_ms,
                                            size_t *evicted, drv_error_t *err);

/* ---- Namespaces (namespaces.c) ---- */

/* Deletes Namespace name and everything namespaced in it: marks it Terminating (so that the
 * store refuses new objects in it), deletes every object of every namespaced kind in it
 * through drv_hstore_delete (watches see each DELETED, agents stop the pods), workloads
 * first, then the Namespace. *deleted (may be NULL) gets it as it was deleted. default,
 * kube-system and kube-public are DRV_ERR_PERM; an absent one DRV_ERR_NOTFOUND. A failure
 * part way leaves it Terminating; drv_ctrl_namespaces_reconcile finishes it. */
DRV_NODISCARD drv_err_t drv_ctrl_namespace_delete(drv_hstore_t *s, const char *name,
                                                  cJSON **deleted, drv_error_t *err);

/* Finishes the deletion of every Namespace left Terminating. */
DRV_NODISCARD drv_err_t drv_ctrl_namespaces_reconcile(drv_hstore_t *s, drv_error_t *err);

/* ---- Scheduling ---- */

/* The platforms ("os/arch[/variant]", NULL-terminated) an image offers, or NULL if unknown
 * (any node then). The array must stay valid until the next call. */
typedef const char *const *(*drv_ctrl_platforms_fn)(void *ctx, const char *image);
/* What a drv_ctrl_platforms_fn returns while it is still finding out: the pod waits (stays
 * Pending, unmarked) for a later round. */
extern const char *const DRV_CTRL_PLATFORMS_PENDING[];

/* Binds every pending pod (no spec.nodeName) to a node chosen by hub/sched, oldest first.
 * A pod that fits nowhere stays Pending with condition PodScheduled False, reason
 * Unschedulable, and the scheduler's message, and a Warning Event FailedScheduling says the
 * same (once per distinct message). platforms may be NULL. *bound (may be NULL)
 * gets how many pods were bound. */
DRV_NODISCARD drv_err_t drv_ctrl_schedule(drv_hstore_t *s, drv_ctrl_platforms_fn platforms,
                                          void *ctx, int64_t now_ms, size_t *bound,
                                          drv_error_t *err);

/* One round of everything, in order: namespaces, nodes, Deployments, DaemonSets, scheduling,
 * the Services' endpoints. Each
 * runs even when one before it failed; the first error is returned. Run it on changes (debounced)
 * and on a timer of about a second: it lists the pods and nodes it needs each time. */
DRV_NODISCARD drv_err_t drv_ctrl_reconcile_all(drv_hstore_t *s, const drv_ctrl_nodes_opts_t *o,
                                               drv_ctrl_platforms_fn platforms, void *ctx,
                                               int64_t now_ms, drv_error_t *err);

/* ---- PersistentVolumeClaims (pvc.c) ----
 * The node-local provisioner drover.io/local-path and the binder. */

/* Creates the default StorageClass local-path (WaitForFirstConsumer, Delete, annotated the
 * default class) when it does not exist. */
DRV_NODISCARD drv_err_t drv_ctrl_storage_defaults(drv_hstore_t *s, drv_error_t *err);
/* Binds every unbound claim of pod, which is about to be bound to node: a new PV
 * pvc-<claim uid> in the node's storage directory (Node annotation drover.io/local-storage-path)
 * for a claim of the local-path class, else the Available PV that fits it best; the claim
 * gets spec.volumeName, annotation volume.kubernetes.io/selected-node and status Bound. */
DRV_NODISCARD drv_err_t drv_ctrl_pvc_bind(drv_hstore_t *s, const drv_sched_volctx_t *ctx,
                                          const cJSON *pod, const char *node, int64_t now_ms,
                                          drv_error_t *err);
/* Deletes the claim ns/name, or, while a pod (not finished) uses it, marks it being deleted
 * (metadata.deletionTimestamp, finalizer kubernetes.io/pvc-protection) for the reconcile round
 * to delete once no pod uses it, as Kubernetes' protection does. *out gets the object. */
DRV_NODISCARD drv_err_t drv_ctrl_pvc_delete(drv_hstore_t *s, const char *ns, const char *name,
                                            int64_t now_ms, cJSON **out, drv_error_t *err);
/* The default class on claims without one, and the phases of claims (Pending, Bound, Lost)
 * and volumes (Available, Bound, Released, Failed); a Released Delete volume whose node is
 * gone is deleted (nobody is left to remove its directory). */
DRV_NODISCARD drv_err_t drv_ctrl_pvcs_reconcile(drv_hstore_t *s, int64_t now_ms, drv_error_t *err);

/* ---- Pod and Service addresses (netalloc.c) ----
 * Each Node gets a block of the cluster CIDR as spec.podCIDR (and spec.podCIDRs: [same]) on
 * the first round that sees it without one, lowest free block first, and keeps it; a
 * user-set one is kept when inside the cluster CIDR and overlapping no other Node's (the
 * oldest Node keeps a contested block), else a Warning Event (CIDRAssignmentFailed) names
 * spec.podCIDR. Services get spec.clusterIP(s) from the service CIDR (the network address,
 * .1 (kubernetes) and .10 (cluster DNS) reserved) and a nodePort (30000-32767) on each port
 * of a NodePort or LoadBalancer Service, when the API creates them (drv_ctrl_netalloc_admit)
 * or, for Services stored without, on the next round. The store's objects are the record. */
#define DRV_CTRL_CLUSTER_CIDR_DEFAULT "10.42.0.0/16"
#define DRV_CTRL_SERVICE_CIDR_DEFAULT "10.43.0.0/16"
#define DRV_CTRL_NODE_MASK_DEFAULT 24
#define DRV_CTRL_NODEPORT_MIN 30000
#define DRV_CTRL_NODEPORT_MAX 32767

typedef struct drv_ctrl_netcfg {
    uint32_t cluster_addr; /* host byte order */
    unsigned cluster_prefix;
    unsigned node_mask; /* each Node's block: /node_mask */
    uint32_t service_addr;
    unsigned service_prefix;
} drv_ctrl_netcfg_t;

/* From the hub's flags (NULL / <= 0: the defaults); errors name the flag. */
DRV_NODISCARD drv_err_t drv_ctrl_netcfg_init(drv_ctrl_netcfg_t *cfg, const char *cluster_cidr,
                                             int node_mask, const char *service_cidr,
                                             drv_error_t *err);
/* "10.42.0.0/16" and "10.43.0.0/16" of cfg. */
void drv_ctrl_netcfg_format(const drv_ctrl_netcfg_t *cfg, char cluster[19], char service[19]);

typedef struct drv_ctrl_netalloc drv_ctrl_netalloc_t;
/* s is borrowed and must outlive the allocator. */
DRV_NODISCARD drv_err_t drv_ctrl_netalloc_new(drv_hstore_t *s, const drv_ctrl_netcfg_t *cfg,
                                              drv_ctrl_netalloc_t **out, drv_error_t *err);
void drv_ctrl_netalloc_free(drv_ctrl_netalloc_t *na);

/* For the API, before it stores obj (normalized; a Service or a Node, other kinds pass) as a
 * new object (create) or a new version: fills in the Service's clusterIP(s) and missing
 * nodePorts, keeping the stored version's when an update does not name them; keeps a Node's
 * podCIDR. A given address that is taken, outside its range or a change of one is
 * DRV_ERR_INVALID with field (fieldsz bytes) naming it ("spec.clusterIP",
 * "spec.ports[0].nodePort", "spec.podCIDR") and err saying why, as Kubernetes says it.
 * ctx is a drv_ctrl_netalloc_t. */
DRV_NODISCARD drv_err_t drv_ctrl_netalloc_admit(void *ctx, drv_kind_t kind, bool create, cJSON *obj,
                                                char *field, size_t fieldsz, drv_error_t *err);

/* ---- ServiceAccounts (serviceaccounts.c) ----
 * Every Active namespace gets a "default" ServiceAccount and, with ca_pem (the hub CA; NULL:
 * none), the ConfigMap "kube-root-ca.crt" holding it under "ca.crt" (kept equal to it), as
 * Kubernetes' root CA publisher makes it: in-cluster clients and projected volumes read it. */
DRV_NODISCARD drv_err_t drv_ctrl_serviceaccounts_reconcile(drv_hstore_t *s, const char *ca_pem,
                                                           drv_error_t *err);
/* Admission of a new pod (other kinds and updates pass): its spec.serviceAccountName must exist
 * in its namespace, else DRV_ERR_PERM with Kubernetes' message (403). "default" missing passes:
 * the namespace is new and the next round makes it. An update of a RoleBinding or
 * ClusterRoleBinding may not change its roleRef (DRV_ERR_INVALID, field "roleRef"). */
DRV_NODISCARD drv_err_t drv_ctrl_serviceaccount_admit(drv_hstore_t *s, drv_kind_t kind, bool create,
                                                      const cJSON *obj, char *field, size_t fieldsz,
                                                      drv_error_t *err);

/* One round: pod CIDRs for the Nodes lacking one, addresses for Services stored without. */
DRV_NODISCARD drv_err_t drv_ctrl_netalloc_reconcile(drv_ctrl_netalloc_t *na, int64_t now_ms,
                                                    drv_error_t *err);

/* ---- Endpoints and EndpointSlices (endpoints.c) ----
 * For each Service with a selector, the pods of its namespace it selects that have an IP and
 * have not finished, as one v1 Endpoints (named as the Service) and EndpointSlices
 * (<service>-<suffix>, label kubernetes.io/service-name, managed-by
 * endpointslice-controller.k8s.io, owned by the Service): one slice per distinct set of
 * resolved target ports, as Kubernetes groups them. Conditions ready (Ready condition True and
 * not terminating), serving (Ready), terminating (deletionTimestamp set); a not-ready address
 * counts as ready with publishNotReadyAddresses. Written only when what they say changes;
 * deleted with their Service (or its selector). */
DRV_NODISCARD drv_err_t drv_ctrl_endpoints_reconcile(drv_hstore_t *s, int64_t now_ms,
                                                     drv_error_t *err);

/* ---- Helpers shared by the controllers and the API ---- */

/* Pod readiness: status.conditions Ready is "True". */
bool drv_ctrl_pod_ready(const cJSON *pod);

/* Ready for at least min_ready_s seconds at now_ms (by the condition's lastTransitionTime). */
bool drv_ctrl_pod_available(const cJSON *pod, int64_t min_ready_s, int64_t now_ms);

/* RFC 3339 "2026-01-02T03:04:05Z" (fraction and offset accepted) to ms since the epoch;
 * -1 if malformed. */
int64_t drv_ctrl_time_parse(const char *s);

/* ---- Event retention ---- */

/* ---- HorizontalPodAutoscalers (hpa.c) ----
 * Each HPA is synced every sync period (Kubernetes' --horizontal-pod-autoscaler-sync-period,
 * 15 s): its Deployment's spec.replicas from its pods' current usage, and its status. The
 * recommendations and scale events its behaviour needs are kept in memory, as Kubernetes does. */
#define DRV_CTRL_HPA_SYNC_MS_DEFAULT 15000

typedef struct drv_ctrl_hpa drv_ctrl_hpa_t;

/* A pod's current usage (cpu in millicores), as the usage history has it. */
typedef struct drv_ctrl_usage {
    bool has_cpu;
    int64_t cpu_millicores;
    bool has_memory;
    int64_t memory_bytes;
    int64_t sample_ms, window_ms;
} drv_ctrl_usage_t;

/* false when the pod (by uid) has no current sample. */
typedef bool (*drv_ctrl_pod_usage_fn)(void *ctx, const char *uid, int64_t now_ms,
                                      drv_ctrl_usage_t *out);

DRV_NODISCARD drv_err_t drv_ctrl_hpa_new(int64_t sync_ms, drv_ctrl_hpa_t **out, drv_error_t *err);
void drv_ctrl_hpa_free(drv_ctrl_hpa_t *h);
DRV_NODISCARD drv_err_t drv_ctrl_hpas_reconcile(drv_hstore_t *s, drv_ctrl_hpa_t *h,
                                                drv_ctrl_pod_usage_fn usage, void *ctx,
                                                int64_t now_ms, drv_error_t *err);

/* ---- Jobs (job.c) and CronJobs (cronjob.c) ----
 * Every Job: its pods towards completions with parallelism, counted once each (see job.c),
 * its status and conditions (Complete/SuccessCriteriaMet, Failed/FailureTarget with reason
 * BackoffLimitExceeded, DeadlineExceeded or PodFailurePolicy, Suspended), the Job deleted
 * ttlSecondsAfterFinished after it finished. Pods of Jobs that no longer exist are deleted.
 * Every CronJob: a Job <cronjob>-<minutes since the epoch> at each time of its schedule
 * (Kubernetes' rules for missed times, concurrencyPolicy, startingDeadlineSeconds), its
 * finished Jobs beyond the history limits deleted, and its status. now_ms is the clock. */
#define DRV_CTRL_LABEL_JOB_UID "batch.kubernetes.io/controller-uid"
#define DRV_CTRL_LABEL_JOB_NAME "batch.kubernetes.io/job-name"
#define DRV_CTRL_ANN_JOB_INDEX "batch.kubernetes.io/job-completion-index"
#define DRV_CTRL_ANN_JOB_TRACKING "drover.io/job-tracking"
#define DRV_CTRL_ANN_CRON_SCHEDULED "batch.kubernetes.io/cronjob-scheduled-timestamp"
DRV_NODISCARD drv_err_t drv_ctrl_jobs_reconcile(drv_hstore_t *s, int64_t now_ms, drv_error_t *err);
DRV_NODISCARD drv_err_t drv_ctrl_cronjobs_reconcile(drv_hstore_t *s, int64_t now_ms,
                                                    drv_error_t *err);

#define DRV_CTRL_EVENT_TTL_MS_DEFAULT (3600 * 1000) /* as Kubernetes' --event-ttl */
/* Deletes the Events that last happened (lastTimestamp, eventTime, firstTimestamp or
 * creation) more than ttl_ms ago (<= 0: DRV_CTRL_EVENT_TTL_MS_DEFAULT), or carry no time at
 * all. *deleted (may be NULL) gets how many. */
DRV_NODISCARD drv_err_t drv_ctrl_events_expire(drv_hstore_t *s, int64_t now_ms, int64_t ttl_ms,
                                               size_t *deleted, drv_error_t *err);

/* ms since the epoch to "2026-01-02T03:04:05Z" (out at least 21 bytes, else ""). */
void drv_ctrl_time_format(int64_t ms, char *out, size_t outsz);

/* The controller ownerReference of obj (borrowed), or NULL. */
const cJSON *drv_ctrl_controller_of(const cJSON *obj);

/* Resolves an int-or-percent (maxSurge, maxUnavailable) against total, rounding up or down
 * as Kubernetes does. NULL or malformed is 0. */
int64_t drv_ctrl_int_or_percent(const cJSON *v, int64_t total, bool round_up);

/* A short hash of a pod template's canonical JSON (10 characters of [bcdfghjklmnpqrstvwxz2-9]),
 * as used in the pod-template-hash label. out at least 11 bytes. */
void drv_ctrl_template_hash(const cJSON *tpl, char *out, size_t outsz);

#endif
