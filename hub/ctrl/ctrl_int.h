/* Private to hub/ctrl: JSON accessors and the pod-making helpers the controllers share. */
#ifndef DROVER_HUB_CTRL_INT_H
#define DROVER_HUB_CTRL_INT_H

#include "ctrl/ctrl.h"
#include "drover/json.h"

/* metadata.<key> as a string, or "" */
const char *ctrl_meta(const cJSON *o, const char *key);
/* The whole number o.key (a plain key) within +-CTRL_INT_LIMIT, else def. */
#define CTRL_INT_LIMIT 9000000000000000LL
int64_t ctrl_int(const cJSON *o, const char *key, int64_t def);

/* The status condition of type, or NULL (borrowed). */
const cJSON *ctrl_condition(const cJSON *obj, const char *type);

/* Sets obj's key to a new item, replacing any (item is consumed, even on failure). */
bool ctrl_set(cJSON *obj, const char *key, cJSON *item);

/* The pods of ns (NULL: all) whose controller ownerReference has uid; a new array. */
DRV_NODISCARD drv_err_t ctrl_owned_pods(drv_hstore_t *s, const char *ns, const char *uid,
                                        cJSON **out, drv_error_t *err);

/* Makes, normalizes and stores a pod from owner's spec.template: labels plus
 * hash_label=hash, controller ownerReference to owner (kind), name prefix + 5 random
 * characters, spec.nodeName = node (may be NULL). */
DRV_NODISCARD drv_err_t ctrl_create_pod(drv_hstore_t *s, const cJSON *owner, drv_kind_t kind,
                                        const cJSON *tpl, const char *hash_label, const char *hash,
                                        const char *prefix, const char *node, drv_error_t *err);

DRV_NODISCARD drv_err_t ctrl_delete_pod(drv_hstore_t *s, const cJSON *pod, drv_error_t *err);

/* A condition {type, status, reason, message, lastTransitionTime}, keeping the transition
 * time of old (may be NULL) when its status is the same. */
cJSON *ctrl_make_condition(const cJSON *old, const char *type, const char *status,
                           const char *reason, const char *message, int64_t now_ms);

/* Records an Event about obj (of kind) with reason and message, type "Normal" or "Warning",
 * from component. Best effort: a failure is logged, never returned (events are advisory). */
/* ownerReferences naming owner (of kind) as its controller: a new one-element array, NULL on
 * allocation failure. */
cJSON *ctrl_owner_refs(const cJSON *owner, drv_kind_t kind);
void ctrl_event(drv_hstore_t *s, const cJSON *obj, drv_kind_t kind, const char *type,
                const char *reason, const char *message, const char *component, int64_t now_ms);

/* status.phase is Failed or Succeeded: the pod will not run again and is replaced. */
bool ctrl_pod_finished(const cJSON *pod);

/* Orders pods for scale-down: not ready first, then newest, then by name (descending). */
void ctrl_sort_for_deletion(const cJSON **pods, size_t n);

/* ---- Jobs (job.c) ---- */

/* "Complete" or "Failed" when job has that condition True (*at, may be NULL, gets its
 * transition time in ms), else NULL. */
const char *ctrl_job_finished(const cJSON *job, int64_t *at);

/* ---- a Deployment's ReplicaSets (replicasets.c) ---- */

/* The pod-template-hash label of obj, or NULL. */
const char *ctrl_rs_hash(const cJSON *obj);
/* The ReplicaSet of rsets (an array) for hash, or NULL (borrowed). */
cJSON *ctrl_rs_find(const cJSON *rsets, const char *hash);
/* Makes the stored ReplicaSet of dep for template tpl (of hash) say revision (0: keep the one
 * it has), spec.replicas replicas, and dep's selector, owner, annotations (dep's own ones for
 * its current template), creating it when rsets (dep's, as listed) has none; rsets is kept
 * up to date and *out points into it. Nothing is written when nothing changes; a change of
 * spec.replicas is told in a ScalingReplicaSet event on dep at now_ms. */
DRV_NODISCARD drv_err_t ctrl_rs_put(drv_hstore_t *s, const cJSON *dep, cJSON *rsets,
                                    const cJSON *tpl, const char *hash, int64_t revision,
                                    int64_t replicas, bool current, cJSON **out, int64_t now_ms,
                                    drv_error_t *err);
/* Writes rs's status from its pods' counts (nothing when unchanged). */
DRV_NODISCARD drv_err_t ctrl_rs_status(drv_hstore_t *s, const cJSON *rs, int64_t replicas,
                                       int64_t ready, int64_t available, drv_error_t *err);
DRV_NODISCARD drv_err_t ctrl_rs_delete(drv_hstore_t *s, const cJSON *rs, drv_error_t *err);

/* ---- a DaemonSet's ControllerRevisions (dsrevisions.c) ---- */

/* The ControllerRevisions of ds's namespace that ds controls (by uid); a new array. */
DRV_NODISCARD drv_err_t ctrl_dsrev_list(drv_hstore_t *s, const cJSON *ds, cJSON **out,
                                        drv_error_t *err);
/* Makes ds's records (revs, as listed; kept up to date) hold its current template tpl of hash
 * as the newest: a new record numbered one past the others, or the template's existing record
 * renumbered so when an older one is newer. Nothing is written when nothing changes. */
DRV_NODISCARD drv_err_t ctrl_dsrev_record(drv_hstore_t *s, const cJSON *ds, cJSON *revs,
                                          const cJSON *tpl, const char *hash, drv_error_t *err);
/* Deletes the oldest records of revs beyond ds's spec.revisionHistoryLimit, never the one of
 * the current hash nor one whose hash a pod of pods (ds's) still carries. */
DRV_NODISCARD drv_err_t ctrl_dsrev_prune(drv_hstore_t *s, const cJSON *ds, const cJSON *revs,
                                         const char *hash, const cJSON *pods, drv_error_t *err);
DRV_NODISCARD drv_err_t ctrl_dsrev_delete(drv_hstore_t *s, const cJSON *rev, drv_error_t *err);
/* Deletes the records in ns (NULL: all) controlled by a DaemonSet not among daemonsets. */
DRV_NODISCARD drv_err_t ctrl_dsrev_collect(drv_hstore_t *s, const char *ns, const cJSON *daemonsets,
                                           drv_error_t *err);

#endif
