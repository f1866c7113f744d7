/* The resource model: Node, Pod, Deployment, DaemonSet, ConfigMap, Secret, Service, Event,
 * HorizontalPodAutoscaler, Namespace, ReplicaSet, in their Kubernetes JSON shape (apiVersion v1 /
 * apps/v1). An object is held as a cJSON tree; drv_model_normalize() is the single gate every
 * object passes, from a file, the API or MQTT: it validates against the subset Drover supports,
 * applies Kubernetes' defaults and puts it in canonical form (keys sorted, quantities canonical,
 * stringData folded into data). After it succeeds, code may read the tree without re-checking
 * types. */
#ifndef DROVER_MODEL_H
#define DROVER_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "drover/error.h"

typedef enum {
    DRV_KIND_UNKNOWN = 0,
    DRV_KIND_POD,
    DRV_KIND_DEPLOYMENT,
    DRV_KIND_DAEMONSET,
    DRV_KIND_CONFIGMAP,
    DRV_KIND_SECRET,
    DRV_KIND_SERVICE,
    DRV_KIND_NODE,
    DRV_KIND_EVENT,
    DRV_KIND_HPA,        /* autoscaling/v2 HorizontalPodAutoscaler */
    DRV_KIND_NAMESPACE,  /* v1 Namespace, cluster-scoped */
    DRV_KIND_REPLICASET, /* apps/v1 ReplicaSet: written only by the Deployment controller */
    /* apps/v1 ControllerRevision: a DaemonSet's template history, written by its controller */
    DRV_KIND_CONTROLLERREVISION,
    /* v1 Endpoints and discovery.k8s.io/v1 EndpointSlice: written by the hub's endpoints
     * controller from the pods a Service selects */
    DRV_KIND_ENDPOINTS,
    DRV_KIND_ENDPOINTSLICE,
    DRV_KIND_NETWORKPOLICY, /* networking.k8s.io/v1 NetworkPolicy */
    /* v1 PersistentVolumeClaim and PersistentVolume (cluster-scoped), storage.k8s.io/v1
     * StorageClass (cluster-scoped): node-local volumes (shared/src/model_storage.c) */
    DRV_KIND_PVC,
    DRV_KIND_PV,
    DRV_KIND_STORAGECLASS,
    DRV_KIND_PRIORITYCLASS, /* scheduling.k8s.io/v1 PriorityClass, cluster-scoped */
    /* v1 ServiceAccount and rbac.authorization.k8s.io/v1: what pod tokens may do */
    DRV_KIND_SERVICEACCOUNT,
    DRV_KIND_ROLE,
    DRV_KIND_ROLEBINDING,
    DRV_KIND_CLUSTERROLE,
    DRV_KIND_CLUSTERROLEBINDING,
    DRV_KIND_JOB,         /* batch/v1 Job */
    DRV_KIND_CRONJOB,     /* batch/v1 CronJob */
    DRV_KIND_STATEFULSET, /* apps/v1 StatefulSet */
    DRV_KIND__COUNT
} drv_kind_t;

/* "Pod", "Deployment", ...; "" for UNKNOWN. */
DRV_API const char *drv_kind_name(drv_kind_t kind);
/* "v1" or "apps/v1". */
DRV_API const char *drv_kind_api_version(drv_kind_t kind);
/* Lower-case plural used in API paths: "pods", "deployments", ... */
DRV_API const char *drv_kind_plural(drv_kind_t kind);
/* Whether objects of kind live in a namespace (false for Node, Namespace and UNKNOWN). */
DRV_API bool drv_kind_namespaced(drv_kind_t kind);
/* Accepts the kind name, plural, singular and kubectl short names ("deploy", "ds", "cm", "po",
 * "svc", "no", "ev", "ns", "rs"), case-insensitively. */
DRV_API drv_kind_t drv_kind_parse(const char *s);
/* The kind an object declares (kind and apiVersion must agree), or UNKNOWN. */
DRV_API drv_kind_t drv_model_kind(const cJSON *obj);

/* The two PriorityClasses Kubernetes builds in (served by the hub even before it stores them). */
#define DRV_PRIORITY_NODE_CRITICAL "system-node-critical"
#define DRV_PRIORITY_NODE_CRITICAL_VALUE 2000001000
#define DRV_PRIORITY_CLUSTER_CRITICAL "system-cluster-critical"
#define DRV_PRIORITY_CLUSTER_CRITICAL_VALUE 2000000000
/* The value of built-in PriorityClass name, or -1 when it is not one. */
DRV_API int64_t drv_priority_class_builtin(const char *name);

/* One validation problem: the field path and what is wrong with it. */
typedef struct drv_diag {
    char *path; /* "spec.template.spec.containers[0].image"; "" for the document itself */
    char *msg;  /* "required" */
} drv_diag_t;

#define DRV_DIAGS_MAX 200

/* Every problem found, up to DRV_DIAGS_MAX (more are counted in dropped). */
typedef struct drv_diags {
    drv_diag_t *items;
    size_t count;
    size_t cap;
    size_t dropped;
} drv_diags_t;

DRV_API void drv_diags_free(drv_diags_t *d);
/* Formats all problems as "path: msg" lines, each prefixed with prefix (may be NULL), into a
 * malloc'd string (caller frees); NULL on allocation failure. */
DRV_API char *drv_diags_format(const drv_diags_t *d, const char *prefix);

/* Validates obj in place, applies defaults and canonicalizes it. Every problem in the
 * document is added to diags (may be NULL); returns DRV_OK, DRV_ERR_INVALID if there were
 * problems (obj is then left in an unspecified but freeable state), or DRV_ERR_NOMEM.
 * Informational fields (status, metadata.uid/creationTimestamp/managedFields/...) are
 * dropped; a field Kubernetes has but Drover does not support is a problem that names it. */
DRV_API DRV_NODISCARD drv_err_t drv_model_normalize(cJSON *obj, drv_diags_t *diags);

/* For an update of a Service (obj replacing old) before obj is normalized: the fields only
 * another type has (externalTrafficPolicy and nodePorts outside NodePort/LoadBalancer,
 * allocateLoadBalancerNodePorts outside LoadBalancer) are cleared when they hold old's value,
 * as Kubernetes' update strategy does, so that `kubectl apply` can change the type back to
 * ClusterIP while the stored object still holds the server's defaults. Does nothing when the
 * type did not change. */
DRV_API void drv_model_service_drop_type_fields(const cJSON *old, cJSON *obj);

/* Whether Job obj (normalized) may replace old (as stored): as in Kubernetes, its template,
 * selector, completions, completionMode and podFailurePolicy are fixed once it exists. False
 * with Kubernetes' message in msg (msgsz bytes), naming the field. */
DRV_API bool drv_model_job_update_ok(const cJSON *old, const cJSON *obj, char *msg, size_t msgsz);

/* Whether Pod obj (normalized) may replace old (as stored): as in Kubernetes, a pod's spec
 * changes only in its containers' images, activeDeadlineSeconds (set, or lowered),
 * terminationGracePeriodSeconds and added tolerations; its account, node, volumes and commands
 * are fixed once it exists. False with Kubernetes' message in msg (msgsz bytes). */
DRV_API bool drv_model_pod_update_ok(const cJSON *old, const cJSON *obj, char *msg, size_t msgsz);

/* Whether StatefulSet obj (normalized) may replace old (as stored): Kubernetes allows changes
 * to replicas, ordinals, template, updateStrategy, revisionHistoryLimit,
 * persistentVolumeClaimRetentionPolicy and minReadySeconds only. False with Kubernetes'
 * message in msg (msgsz bytes). */
DRV_API bool drv_model_statefulset_update_ok(const cJSON *old, const cJSON *obj, char *msg,
                                             size_t msgsz);

/* For an update of a PersistentVolumeClaim (obj replacing old): the fields the hub set after
 * creation (spec.volumeName once bound, spec.storageClassName given from the default class)
 * are carried over when obj leaves them out, so that applying the user's manifest again never
 * unbinds a claim (Kubernetes refuses such a change: a claim's spec is immutable). */
DRV_API void drv_model_pvc_keep_binding(const cJSON *old, cJSON *obj);

/* Canonical JSON text of a normalized object (keys sorted at every level), malloc'd, caller
 * frees; NULL on allocation failure. pretty: indented by two spaces, else compact. */
DRV_API char *drv_model_to_json(const cJSON *obj, bool pretty);

/* Sorts the keys of every object in the tree, recursively (canonical order). */
DRV_API void drv_json_sort_keys(cJSON *node);

#endif
