/* Private to the model module: the validation context and field helpers shared by model.c
 * (objects, metadata, the simple kinds), model_pod.c (pods and workloads), model_hpa.c and
 * model_net.c (NetworkPolicy, Endpoints, EndpointSlice), and the kinds table's two builds
 * (model_kinds.c, model_agent.c). */
#ifndef DROVER_MODEL_INT_H
#define DROVER_MODEL_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "drover/model.h"

#define VPATH_MAX 512

typedef struct vctx {
    drv_diags_t *diags;
    char path[VPATH_MAX];
    size_t plen;
    size_t problems; /* counted even when diags is NULL or full */
    bool nomem;
} vctx_t;

/* Path handling: push returns the old length, to hand back to pop. */
size_t v_push_key(vctx_t *c, const char *key);
size_t v_push_index(vctx_t *c, size_t i);
size_t v_push_mapkey(vctx_t *c, const char *key); /* "[key]", for map entries */
void v_pop(vctx_t *c, size_t old);

/* Records a problem at the current path (or at path.key with v_failk). */
void v_fail(vctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void v_failk(vctx_t *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The fields of an object: names allowed (known); names Kubernetes has that Drover ignores
 * (dropped); names Kubernetes has that Drover does not support (a problem). Anything else is an
 * unknown field. Each list is a name list: the names one after the other, each ended by its NUL,
 * and an empty name last ("apiVersion\0" "kind\0"; the literal's own NUL ends it), or NULL for
 * none. Not arrays of pointers: in a position-independent program every pointer in a table is
 * a relocation fixed up at each start (24 bytes each on arm64), and the model has some 900 of
 * these names (issue 19: the device agent's size). */
void v_fields(vctx_t *c, cJSON *obj, const char *known, const char *ignored,
              const char *unsupported);
/* Whether s is in name list names (see v_fields). */
bool v_in_names(const char *names, const char *s);

/* Typed getters: return the member (NULL if absent or of the wrong type, which is recorded
 * as a problem); required members that are absent are recorded as "required". */
cJSON *v_obj(vctx_t *c, cJSON *parent, const char *key, bool required);
cJSON *v_arr(vctx_t *c, cJSON *parent, const char *key, bool required);
const char *v_str(vctx_t *c, cJSON *parent, const char *key, bool required);
/* Integer in [min, max]; *present says whether it was there and valid. */
bool v_int(vctx_t *c, cJSON *parent, const char *key, bool required, int64_t min, int64_t max,
           int64_t *out);
bool v_bool(vctx_t *c, cJSON *parent, const char *key, bool *out);
/* A string that must be one of values, a name list (see v_fields); NULL if absent or bad. A
 * list that allows the empty string starts with V_EMPTY_OK (a name list cannot hold ""). */
const char *v_enum(vctx_t *c, cJSON *parent, const char *key, bool required, const char *values);
#define V_EMPTY_OK "\1\0"
/* Array of strings (may be empty unless nonempty). */
void v_str_list(vctx_t *c, cJSON *parent, const char *key, bool nonempty);
/* Object of string values; keys and values checked by the given name rules (may be NULL). */
typedef bool (*vname_fn)(const char *s, char *why, size_t whysz);
void v_str_map(vctx_t *c, cJSON *parent, const char *key, vname_fn keyrule, vname_fn valrule);
/* A name checked with a rule, recording the rule's reason. */
void v_name(vctx_t *c, cJSON *parent, const char *key, bool required, vname_fn rule);
/* A path that must be absolute. */
const char *v_abspath(vctx_t *c, cJSON *parent, const char *key, bool required);

/* Defaults: added only when the member is absent. */
void v_default_str(vctx_t *c, cJSON *obj, const char *key, const char *value);
void v_default_int(vctx_t *c, cJSON *obj, const char *key, int64_t value);
void v_default_bool(vctx_t *c, cJSON *obj, const char *key, bool value);

/* Replaces obj[key] with a string value (used by canonicalisation). */
void v_set_str(vctx_t *c, cJSON *obj, const char *key, const char *value);

/* An int-or-string field (ports, maxSurge): returns true when present and valid. */
typedef enum { VIOS_PORT, VIOS_PERCENT } vios_kind_t;
bool v_int_or_string(vctx_t *c, cJSON *parent, const char *key, bool required, vios_kind_t kind);

/* Each element of the array parent.key must be an object, checked by fn at its index
 * (model_pod.c). */
typedef void (*velem_fn)(vctx_t *c, cJSON *elem, size_t i, void *arg);
void v_each(vctx_t *c, cJSON *parent, const char *key, bool required, velem_fn fn, void *arg);
/* Scheduling (model_sched.c): spec.affinity, topologySpreadConstraints; priorityClassName,
 * priority, preemptionPolicy. */
void v_affinity(vctx_t *c, cJSON *spec);
void v_topology_spread(vctx_t *c, cJSON *spec);
void v_pod_priority(vctx_t *c, cJSON *spec);
/* A PriorityClass (no spec: value, globalDefault, description, preemptionPolicy). */
void v_priority_class(vctx_t *c, cJSON *obj);
/* Pods and workloads (model_pod.c). */
/* PODCTX_JOB: a Job's template, whose restartPolicy must be OnFailure or Never. */
typedef enum { PODCTX_POD, PODCTX_TEMPLATE, PODCTX_JOB } podctx_t;
void v_pod_spec(vctx_t *c, cJSON *spec, podctx_t where);
void v_deployment_spec(vctx_t *c, cJSON *spec);
void v_daemonset_spec(vctx_t *c, cJSON *spec);
void v_replicaset_spec(vctx_t *c, cJSON *spec);
/* A workload's selector (at sel_key) and pod template, the template's pod spec checked as
 * where says. */
void v_template_ctx(vctx_t *c, cJSON *spec, const char *sel_key, bool selector_required,
                    podctx_t where);
/* Jobs and CronJobs (model_batch.c). */
void v_job_spec(vctx_t *c, cJSON *spec);
void v_cronjob_spec(vctx_t *c, cJSON *spec);
/* A workload's selector at spec.sel_key and its pod template (model_pod.c). */
void v_template(vctx_t *c, cJSON *spec, const char *sel_key, bool selector_required);
/* StatefulSets (model_apps.c). */
void v_statefulset_spec(vctx_t *c, cJSON *spec);
/* HorizontalPodAutoscalers (model_hpa.c). */
void v_hpa_spec(vctx_t *c, cJSON *spec);
void v_hpa_from_v1(vctx_t *c, cJSON *obj);
/* NetworkPolicy, Endpoints, EndpointSlice (model_net.c). */
void v_netpol_spec(vctx_t *c, cJSON *spec);
void v_endpoints(vctx_t *c, cJSON *obj);
void v_endpointslice(vctx_t *c, cJSON *obj);
/* PersistentVolumeClaim, PersistentVolume, StorageClass (model_storage.c). */
void v_pvc_spec(vctx_t *c, cJSON *spec);
void v_pv_spec(vctx_t *c, cJSON *spec);
void v_storageclass(vctx_t *c, cJSON *obj);
/* A structured label selector at parent.key (matchLabels, matchExpressions); its problems are
 * recorded at the field inside it (key.matchExpressions[0].operator). */
void v_label_selector(vctx_t *c, cJSON *parent, const char *key, bool required);
/* Whether s is an IPv4 address (host byte order in *out, may be NULL); else records why at the
 * current path, IPv6 refused by name. */
bool v_ipv4_value(vctx_t *c, const char *s, uint32_t *out);
/* ServiceAccount and the RBAC kinds (model_rbac.c); cluster: the ClusterRole/-Binding form. */
void v_serviceaccount(vctx_t *c, cJSON *obj);
void v_role(vctx_t *c, cJSON *obj, bool cluster);
void v_role_binding(vctx_t *c, cJSON *obj, bool cluster);
bool v_rbac_name(const char *s, char *why, size_t whysz);
/* A volume's projected source (its sources and their items; model_rbac.c). */
void v_projected_volume(vctx_t *c, cJSON *proj);
/* Metadata of an object or template (model.c). */
void v_object_meta(vctx_t *c, cJSON *meta, drv_kind_t kind, bool is_template);

/* The kinds without a pod template whose validators live in model.c (the others are in
 * model_*.c by area). */
void v_configmap(vctx_t *c, cJSON *obj);
void v_secret(vctx_t *c, cJSON *obj);
void v_service_spec(vctx_t *c, cJSON *spec);
void v_node_spec(vctx_t *c, cJSON *spec);
void v_namespace_spec(vctx_t *c, cJSON *spec);
void v_event(vctx_t *c, cJSON *obj);
void v_controller_revision(vctx_t *c, cJSON *obj);

/* An object of the apiVersion/kind/metadata/spec shape (model.c): its top-level fields, then
 * spec_fn on its spec (a missing spec is a problem, except for Node and Namespace, which get
 * an empty one). spec_fn may be NULL. */
typedef void (*vspec_fn)(vctx_t *c, cJSON *spec);
void v_spec_object(vctx_t *c, cJSON *obj, drv_kind_t kind, vspec_fn spec_fn);

/* Which kinds drv_model_normalize() validates, and how: the one table of kind → validator,
 * called after the kind, apiVersion and metadata were read. Two builds of these two functions
 * exist, each alone in its file so that the linker takes one or the other whole:
 *  - model_kinds.c (in libdrover-shared: the hub, the CLI, the tests): every kind;
 *  - model_agent.c (the object library drover-model-agent, linked into drover-agent ahead of
 *    libdrover-shared, so model_kinds.o is never taken from the archive): only what a device
 *    receives (Pod, ConfigMap, Secret, PersistentVolume), through the same validators; the
 *    other kinds are a problem naming the hub, and their validators are not in the agent.
 * v_kind_api returns the apiVersion that kind must have once obj is read (HPA's autoscaling/v1
 * form is converted there); v_kind_body validates what follows the metadata. */
const char *v_kind_api(vctx_t *c, cJSON *obj, drv_kind_t kind, const char *api);
void v_kind_body(vctx_t *c, cJSON *obj, drv_kind_t kind);

/* A reference to a Secret by name (obj[key], checked before): the names the agent gives the
 * Secrets it makes for pods' service account tokens ("drover-sa-token-", "drover-projected-")
 * are refused, so that no pod can read another pod's token through them. */
void v_secret_ref_reserved(vctx_t *c, cJSON *obj, const char *key);

#endif
