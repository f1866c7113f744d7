/* The API's types for the OpenAPI documents (openapi.h): for each Kubernetes type Drover
 * serves, the fields its validators accept (shared/src/model*.c, their known[] lists) and what
 * Drover does with each. Fields a validator refuses as unsupported are left out on purpose. */
#include <string.h>

#include "api/openapi.h"

#define CORE "io.k8s.api.core.v1."
#define APPS "io.k8s.api.apps.v1."
#define AS1 "io.k8s.api.autoscaling.v1."
#define AS2 "io.k8s.api.autoscaling.v2."
#define DISC "io.k8s.api.discovery.v1."
#define NET "io.k8s.api.networking.v1."
#define STORAGE "io.k8s.api.storage.v1."
#define SCHED "io.k8s.api.scheduling.v1."
#define META "io.k8s.apimachinery.pkg.apis.meta.v1."
#define QUANTITY "io.k8s.apimachinery.pkg.api.resource.Quantity"
#define INTSTR "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
#define TIME META "Time"

#define L DRV_OA_LIST
#define M DRV_OA_MAP
#define R DRV_OA_REQUIRED
#define END                                                                                        \
    {                                                                                              \
        NULL, NULL, 0, NULL                                                                        \
    }

/* Every object's apiVersion and kind. */
#define TYPEMETA                                                                                   \
    {"apiVersion", "string", 0,                                                                    \
     "The schema version of this object, e.g. v1 or apps/v1; Drover accepts only the version "     \
     "it serves for the kind."},                                                                   \
    {                                                                                              \
        "kind", "string", 0, "The kind of this object, in CamelCase (Pod, Deployment, ...)."       \
    }
#define OBJMETA                                                                                    \
    {                                                                                              \
        "metadata", META "ObjectMeta", 0,                                                          \
            "Name, namespace, labels and the bookkeeping Drover keeps for this object."            \
    }

/* ---- meta/v1 ---- */

static const drv_oa_field_t object_meta[] = {
    {"name", "string", 0,
     "The object's name, unique in its namespace for its kind. Required unless generateName is "
     "given; it cannot change after creation."},
    {"generateName", "string", 0,
     "A prefix from which Drover makes a unique name (adding 5 random characters) when name is "
     "empty."},
    {"namespace", "string", 0,
     "The namespace the object lives in; empty means \"default\". Nodes and Namespaces have none."},
    {"labels", "string", M,
     "Key/value pairs that selectors match (Deployments, DaemonSets, Services, kubectl -l)."},
    {"annotations", "string", M,
     "Key/value pairs for tools and people; Drover stores them untouched (at most 256 KiB in "
     "all)."},
    {"ownerReferences", META "OwnerReference", L,
     "The objects this one belongs to; Drover's controllers set them on the Pods they make and "
     "delete the Pods with their owner."},
    {"uid", "string", 0, "A unique id Drover gives the object when it is created. Read-only."},
    {"resourceVersion", "string", 0,
     "The store's version of this object. Send it back on an update to have Drover refuse the "
     "write (409 Conflict) if the object changed meanwhile; watches resume from it."},
    {"generation", "integer", 0,
     "A counter Drover raises each time the desired state (spec) changes. Read-only."},
    {"creationTimestamp", TIME, 0, "When Drover created the object (RFC 3339, UTC). Read-only."},
    END};

static const drv_oa_field_t owner_ref[] = {
    {"apiVersion", "string", R, "The owner's apiVersion."},
    {"kind", "string", R, "The owner's kind."},
    {"name", "string", R, "The owner's name."},
    {"uid", "string", R, "The owner's uid."},
    {"controller", "boolean", 0, "True when the owner is the object's managing controller."},
    {"blockOwnerDeletion", "boolean", 0,
     "Accepted for compatibility; Drover deletes owned objects after their owner either way."},
    END};

static const drv_oa_field_t list_meta[] = {
    {"resourceVersion", "string", 0,
     "The store's version when the list was read; watch from it to get every later change."},
    {"continue", "string", 0,
     "Set when more items follow (a list asked with limit): pass it as ?continue= for the next "
     "page."},
    {"remainingItemCount", "integer", 0, "How many items follow this page, when known."},
    END};

static const drv_oa_field_t label_selector[] = {
    {"matchLabels", "string", M, "Labels an object must all carry (key = value) to match."},
    {"matchExpressions", META "LabelSelectorRequirement", L,
     "Set-based requirements, all of which must hold."},
    END};

static const drv_oa_field_t label_selector_req[] = {
    {"key", "string", R, "The label key the requirement is about."},
    {"operator", "string", R, "In, NotIn, Exists or DoesNotExist."},
    {"values", "string", L,
     "The values for In and NotIn (non-empty); empty for Exists and DoesNotExist."},
    END};

static const drv_oa_field_t status_fields[] = {
    TYPEMETA,
    {"metadata", META "ListMeta", 0, "Unused in Drover's answers."},
    {"status", "string", 0, "Success or Failure."},
    {"message", "string", 0, "What went wrong, in words, naming the field at fault."},
    {"reason", "string", 0, "A CamelCase reason (NotFound, Conflict, BadRequest, ...)."},
    {"details", META "StatusDetails", 0, "More about the failure: the fields at fault."},
    {"code", "int32", 0, "The HTTP status code of the answer."},
    END};

static const drv_oa_field_t status_details[] = {
    {"name", "string", 0, "The name of the object concerned, when there is one."},
    {"kind", "string", 0, "The kind of the object concerned."},
    {"causes", META "StatusCause", L, "One entry per problem found."},
    END};

static const drv_oa_field_t status_cause[] = {
    {"reason", "string", 0, "A CamelCase reason, e.g. FieldValueInvalid."},
    {"message", "string", 0, "What is wrong with the field."},
    {"field", "string", 0, "The path of the field at fault, e.g. spec.containers[0].image."},
    END};

/* ---- core/v1: containers ---- */

static const drv_oa_field_t container[] = {
    {"name", "string", R,
     "The container's name (a DNS label), unique in the Pod; logs and status refer to it."},
    {"image", "string", R,
     "The OCI image the device's agent pulls and runs, e.g. docker.io/library/nginx:1.25. "
     "Images for the device's architecture are picked from multi-arch indexes."},
    {"imagePullPolicy", "string", 0,
     "Always, IfNotPresent or Never: when the agent pulls the image again. Defaults to Always for "
     "a :latest or untagged image, else IfNotPresent."},
    {"command", "string", L, "Replaces the image's ENTRYPOINT."},
    {"args", "string", L, "Replaces the image's CMD."},
    {"workingDir", "string", 0, "The working directory; the image's when empty."},
    {"env", CORE "EnvVar", L, "Environment variables set in the container."},
    {"envFrom", CORE "EnvFromSource", L,
     "ConfigMaps and Secrets whose every key becomes an environment variable."},
    {"ports", CORE "ContainerPort", L,
     "Ports the container listens on; with hostPort the agent forwards the device's port."},
    {"resources", CORE "ResourceRequirements", 0,
     "CPU and memory requests (used to place the Pod on a device with room) and limits (enforced "
     "by the agent through cgroups)."},
    {"volumeMounts", CORE "VolumeMount", L, "Where the Pod's volumes appear in this container."},
    {"livenessProbe", CORE "Probe", 0, "The agent restarts the container when this check fails."},
    {"readinessProbe", CORE "Probe", 0,
     "The Pod counts as Ready (and is a Service endpoint) only while this check passes."},
    {"startupProbe", CORE "Probe", 0,
     "Holds the other probes back until it passes once; failing it restarts the container."},
    {"securityContext", CORE "SecurityContext", 0,
     "User, capabilities and other privileges the container runs with."},
    END};

static const drv_oa_field_t env_var[] = {
    {"name", "string", R, "The variable's name."},
    {"value", "string", 0,
     "The value; $(OTHER) expands to an earlier variable. Empty when valueFrom is given."},
    {"valueFrom", CORE "EnvVarSource", 0, "Where the value comes from instead."},
    END};

static const drv_oa_field_t env_var_source[] = {
    {"configMapKeyRef", CORE "ConfigMapKeySelector", 0, "A key of a ConfigMap in the namespace."},
    {"secretKeyRef", CORE "SecretKeySelector", 0,
     "A key of a Secret in the namespace (sent to the device sealed to its key)."},
    {"fieldRef", CORE "ObjectFieldSelector", 0,
     "A field of the Pod, e.g. metadata.name, metadata.namespace, spec.nodeName or status.podIP."},
    {"resourceFieldRef", CORE "ResourceFieldSelector", 0,
     "A container's CPU or memory limit or request."},
    END};

static const drv_oa_field_t resource_field_selector[] = {
    {"containerName", "string", 0, "The container; this one when empty (required in volumes)."},
    {"resource", "string", R,
     "limits.cpu, limits.memory, requests.cpu or requests.memory; an unset limit is the "
     "device's allocatable."},
    {"divisor", QUANTITY, 0, "The unit of the value (default 1; 1m for millicores, 1Mi...)."},
    END};

static const drv_oa_field_t downward_volume[] = {
    {"items", CORE "DownwardAPIVolumeFile", L, "The files of the volume."},
    {"defaultMode", "int32", 0, "The files' mode bits (default 0644)."},
    END};

static const drv_oa_field_t downward_file[] = {
    {"path", "string", R, "The relative file path."},
    {"fieldRef", CORE "ObjectFieldSelector", 0,
     "metadata.name, namespace, uid, labels or annotations (or one of them by key)."},
    {"resourceFieldRef", CORE "ResourceFieldSelector", 0, "A container's limit or request."},
    {"mode", "int32", 0, "The file's mode bits; defaultMode when unset."},
    END};

static const drv_oa_field_t host_alias[] = {
    {"ip", "string", R, "The address."},
    {"hostnames", "string", L, "Names for it in the Pod's /etc/hosts."},
    END};

static const drv_oa_field_t local_object_ref[] = {
    {"name", "string", 0, "The object's name, in the Pod's namespace."}, END};

static const drv_oa_field_t key_selector[] = {
    {"name", "string", 0, "The ConfigMap's or Secret's name."},
    {"key", "string", R, "The key whose value is used."},
    {"optional", "boolean", 0,
     "When true, a missing object or key leaves the variable unset instead of failing the Pod."},
    END};

static const drv_oa_field_t object_field_selector[] = {
    {"fieldPath", "string", R, "The path of the Pod's field, e.g. metadata.labels['app']."},
    {"apiVersion", "string", 0, "The version the path is written in; v1."},
    END};

static const drv_oa_field_t env_from[] = {
    {"prefix", "string", 0, "Put before every key to make the variable's name."},
    {"configMapRef", CORE "ConfigMapEnvSource", 0, "A ConfigMap whose keys become variables."},
    {"secretRef", CORE "SecretEnvSource", 0, "A Secret whose keys become variables."},
    END};

static const drv_oa_field_t env_source_ref[] = {
    {"name", "string", 0, "The object's name, in the Pod's namespace."},
    {"optional", "boolean", 0, "When true, a missing object is not an error."},
    END};

static const drv_oa_field_t container_port[] = {
    {"name", "string", 0, "A name (IANA service name) Services and probes may refer to."},
    {"containerPort", "int32", R, "The port the container listens on (1-65535)."},
    {"hostPort", "int32", 0,
     "The device's port the agent forwards to containerPort; no two Pods on a device may use the "
     "same one."},
    {"protocol", "string", 0, "TCP (the default), UDP or SCTP."},
    {"hostIP", "string", 0, "The device's address to bind hostPort on; all when empty."},
    END};

static const drv_oa_field_t resource_reqs[] = {
    {"requests", QUANTITY, M,
     "What the container needs (cpu, memory): the scheduler only places the Pod on a device "
     "with that much unreserved."},
    {"limits", QUANTITY, M,
     "The most the container may use (cpu, memory), enforced through cgroups by the agent."},
    END};

static const drv_oa_field_t volume_mount[] = {
    {"name", "string", R, "The name of one of the Pod's volumes."},
    {"mountPath", "string", R, "Where in the container the volume appears; unique per container."},
    {"readOnly", "boolean", 0, "Mount read-only."},
    {"subPath", "string", 0, "Mount this path inside the volume instead of its root."},
    {"mountPropagation", "string", 0,
     "None (the default), HostToContainer (mounts made later on the device show inside) or "
     "Bidirectional (both ways; privileged containers only)."},
    END};

static const drv_oa_field_t probe[] = {
    {"exec", CORE "ExecAction", 0, "Run a command in the container; exit status 0 passes."},
    {"httpGet", CORE "HTTPGetAction", 0, "An HTTP GET; a status from 200 to 399 passes."},
    {"tcpSocket", CORE "TCPSocketAction", 0, "A TCP connect; passes when it is accepted."},
    {"initialDelaySeconds", "int32", 0, "Seconds after the container starts before the first try."},
    {"timeoutSeconds", "int32", 0, "Seconds before a try counts as failed (default 1)."},
    {"periodSeconds", "int32", 0, "Seconds between tries (default 10)."},
    {"successThreshold", "int32", 0,
     "Consecutive passes that count as success after a failure (default 1; 1 for liveness "
     "and startup)."},
    {"failureThreshold", "int32", 0, "Consecutive failures that count as failure (default 3)."},
    {"terminationGracePeriodSeconds", "integer", 0,
     "For liveness and startup probes: how long a failing container gets to stop before it is "
     "killed; the Pod's when unset."},
    END};

static const drv_oa_field_t exec_action[] = {
    {"command", "string", L, "The command and its arguments, run without a shell."}, END};

static const drv_oa_field_t http_get[] = {
    {"path", "string", 0, "The path to request."},
    {"port", INTSTR, R, "The port, by number or by the name of one of the container's ports."},
    {"host", "string", 0, "The host to connect to; the Pod's address when empty."},
    {"scheme", "string", 0, "HTTP (the default) or HTTPS (the certificate is not checked)."},
    {"httpHeaders", CORE "HTTPHeader", L, "Headers sent with the request."},
    END};

static const drv_oa_field_t http_header[] = {{"name", "string", R, "The header's name."},
                                             {"value", "string", R, "The header's value."},
                                             END};

static const drv_oa_field_t tcp_socket[] = {
    {"port", INTSTR, R, "The port, by number or by the name of one of the container's ports."},
    {"host", "string", 0, "The host to connect to; the Pod's address when empty."},
    END};

static const drv_oa_field_t security_context[] = {
    {"runAsUser", "integer", 0, "The user id the process runs as; the image's when unset."},
    {"runAsGroup", "integer", 0, "The group id the process runs as."},
    {"runAsNonRoot", "boolean", 0, "When true, the agent refuses to start the container as root."},
    {"readOnlyRootFilesystem", "boolean", 0, "Mount the image's filesystem read-only."},
    {"privileged", "boolean", 0,
     "Run with all capabilities and the device's devices; for hardware access on edge devices."},
    {"allowPrivilegeEscalation", "boolean", 0,
     "When false, the process cannot gain privileges (no_new_privs)."},
    {"capabilities", CORE "Capabilities", 0,
     "Linux capabilities added to or dropped from the default set."},
    {"seccompProfile", CORE "SeccompProfile", 0, "The seccomp filter the container runs under."},
    END};

static const drv_oa_field_t capabilities[] = {
    {"add", "string", L, "Capabilities to add, e.g. NET_ADMIN."},
    {"drop", "string", L, "Capabilities to drop; ALL drops every one."},
    END};

static const drv_oa_field_t seccomp_profile[] = {
    {"type", "string", R, "RuntimeDefault (the runtime's filter) or Unconfined (none)."}, END};

/* ---- core/v1: pods ---- */

static const drv_oa_field_t pod[] = {
    TYPEMETA,
    OBJMETA,
    {"spec", CORE "PodSpec", 0, "What the Pod runs and where; fixed once the Pod is created."},
    {"status", CORE "PodStatus", 0,
     "What the device's agent last reported. Read-only here; the status subresource writes it."},
    END};

static const drv_oa_field_t pod_spec[] = {
    {"containers", CORE "Container", L | R, "The containers the Pod runs (at least one)."},
    {"initContainers", CORE "Container", L,
     "Containers run one after the other to completion before the others start."},
    {"volumes", CORE "Volume", L, "Volumes the containers may mount."},
    {"restartPolicy", "string", 0,
     "Always (the default), OnFailure or Never: when the agent restarts an exited container. "
     "Deployments and DaemonSets need Always."},
    {"nodeSelector", "string", M, "Labels a device must carry for the Pod to be placed on it."},
    {"nodeName", "string", 0,
     "The device the Pod runs on. Set by the scheduler; set it yourself to skip scheduling."},
    {"tolerations", CORE "Toleration", L, "Taints of devices this Pod may still be placed on."},
    {"hostNetwork", "boolean", 0, "Share the device's network namespace instead of a Pod network."},
    {"hostPID", "boolean", 0, "Share the device's process namespace."},
    {"hostIPC", "boolean", 0, "Share the device's IPC namespace."},
    {"hostname", "string", 0, "The hostname inside the Pod; the Pod's name when empty."},
    {"terminationGracePeriodSeconds", "integer", 0,
     "Seconds the containers get to stop after SIGTERM before SIGKILL (default 30)."},
    {"securityContext", CORE "PodSecurityContext", 0,
     "Defaults for every container's user and seccomp filter."},
    {"dnsPolicy", "string", 0,
     "ClusterFirst (the default), ClusterFirstWithHostNet or Default (the device's resolver)."},
    {"imagePullSecrets", CORE "LocalObjectReference", L,
     "Secrets (kubernetes.io/dockerconfigjson or dockercfg) with credentials for the images' "
     "registries, sent to the device sealed to its key."},
    {"hostAliases", CORE "HostAlias", L, "Entries added to the Pod's /etc/hosts."},
    {"affinity", CORE "Affinity", 0,
     "Node affinity and pod affinity/anti-affinity: where the scheduler must or should place the "
     "Pod."},
    {"priorityClassName", "string", 0,
     "A PriorityClass (system-node-critical and system-cluster-critical are built in); gives "
     "priority."},
    {"priority", "integer", 0,
     "Set from priorityClassName when the Pod is created; higher is scheduled first."},
    {"preemptionPolicy", "string", 0,
     "PreemptLowerPriority (the default) or Never; Drover never preempts a running Pod."},
    {"topologySpreadConstraints", CORE "TopologySpreadConstraint", L,
     "How evenly the Pod's kind must or should spread over the domains of a node label."},
    END};

static const drv_oa_field_t spread[] = {
    {"maxSkew", "integer", R,
     "The most the count of matching Pods may differ between the domains (at least 1)."},
    {"topologyKey", "string", R, "The node label whose values are the domains."},
    {"whenUnsatisfiable", "string", R,
     "DoNotSchedule (a rule: the Pod stays Pending) or ScheduleAnyway (a preference)."},
    {"labelSelector", META "LabelSelector", 0,
     "The Pods counted (in the Pod's namespace); none when absent."},
    {"minDomains", "integer", 0,
     "With DoNotSchedule: fewer domains than this count as empty ones."},
    {"nodeAffinityPolicy", "string", 0,
     "Honor (the default): only nodes that pass the Pod's node affinity count; or Ignore."},
    {"nodeTaintsPolicy", "string", 0,
     "Ignore (the default): every node counts; Honor: only nodes whose taints the Pod "
     "tolerates."},
    END};

static const drv_oa_field_t affinity[] = {
    {"nodeAffinity", CORE "NodeAffinity", 0, "Rules on the labels of the device."},
    {"podAffinity", CORE "PodAffinity", 0, "Be near Pods that match (same topology domain)."},
    {"podAntiAffinity", CORE "PodAntiAffinity", 0,
     "Stay away from Pods that match (another topology domain)."},
    END};

static const drv_oa_field_t node_affinity[] = {
    {"requiredDuringSchedulingIgnoredDuringExecution", CORE "NodeSelector", 0,
     "Devices the Pod may only be placed on."},
    {"preferredDuringSchedulingIgnoredDuringExecution", CORE "PreferredSchedulingTerm", L,
     "Devices preferred, by weight."},
    END};

/* NodeSelector, NodeSelectorTerm, NodeSelectorRequirement: with PersistentVolume's below. */

static const drv_oa_field_t preferred_term[] = {
    {"weight", "integer", R, "1 to 100: how much a device that matches is preferred."},
    {"preference", CORE "NodeSelectorTerm", R, "The term a preferred device matches."},
    END};

static const drv_oa_field_t pod_affinity[] = {
    {"requiredDuringSchedulingIgnoredDuringExecution", CORE "PodAffinityTerm", L,
     "Terms that must all hold."},
    {"preferredDuringSchedulingIgnoredDuringExecution", CORE "WeightedPodAffinityTerm", L,
     "Terms preferred, by weight."},
    END};

static const drv_oa_field_t pod_affinity_term[] = {
    {"labelSelector", META "LabelSelector", 0, "The Pods the term is about; none when absent."},
    {"namespaces", "string", L, "Their namespaces; the Pod's own when empty."},
    {"namespaceSelector", META "LabelSelector", 0,
     "Only {} (every namespace) is served: list namespaces instead."},
    {"topologyKey", "string", R,
     "The node label whose value is the domain: kubernetes.io/hostname (the device), a zone "
     "label, ..."},
    END};

static const drv_oa_field_t weighted_pod_affinity_term[] = {
    {"weight", "integer", R, "1 to 100: how much a device that satisfies the term is preferred."},
    {"podAffinityTerm", CORE "PodAffinityTerm", R, "The term."},
    END};

static const drv_oa_field_t pod_security[] = {
    {"runAsUser", "integer", 0, "The user id containers run as unless they say otherwise."},
    {"runAsGroup", "integer", 0, "The group id containers run as unless they say otherwise."},
    {"runAsNonRoot", "boolean", 0, "When true, no container may start as root."},
    {"seccompProfile", CORE "SeccompProfile", 0, "The default seccomp filter."},
    {"fsGroup", "integer", 0,
     "A group added to every container; the Pod's volumes are given to it (setgid)."},
    {"fsGroupChangePolicy", "string", 0,
     "Always (the default) or OnRootMismatch: when volumes are walked to give them to fsGroup."},
    {"supplementalGroups", "integer", L, "Groups added to every container's process."},
    END};

static const drv_oa_field_t volume[] = {
    {"name", "string", R, "The volume's name (a DNS label), unique in the Pod."},
    {"emptyDir", CORE "EmptyDirVolumeSource", 0,
     "An empty directory that lives as long as the Pod on its device."},
    {"hostPath", CORE "HostPathVolumeSource", 0, "A file or directory of the device."},
    {"configMap", CORE "ConfigMapVolumeSource", 0, "A ConfigMap's keys as files."},
    {"secret", CORE "SecretVolumeSource", 0,
     "A Secret's keys as files (on a tmpfs; sent to the device sealed to its key)."},
    {"downwardAPI", CORE "DownwardAPIVolumeSource", 0,
     "The Pod's own metadata and its containers' resources as files."},
    {"persistentVolumeClaim", CORE "PersistentVolumeClaimVolumeSource", 0,
     "A claim's volume: a directory on the device the claim is bound to, kept across the "
     "Pod's restarts."},
    END};

static const drv_oa_field_t pvc_volume[] = {
    {"claimName", "string", R, "The PersistentVolumeClaim's name, in the Pod's namespace."},
    {"readOnly", "boolean", 0, "Mount the volume read-only (default false)."},
    END};

static const drv_oa_field_t empty_dir[] = {
    {"medium", "string", 0, "\"\" (the device's disk) or Memory (a tmpfs)."},
    {"sizeLimit", QUANTITY, 0, "The most the directory may hold."},
    END};

static const drv_oa_field_t host_path[] = {
    {"path", "string", R, "The path on the device."},
    {"type", "string", 0,
     "What must be there: \"\" (anything), DirectoryOrCreate, Directory, FileOrCreate, File, "
     "Socket, CharDevice or BlockDevice."},
    END};

static const drv_oa_field_t key_to_path[] = {
    {"key", "string", R, "The key to project."},
    {"path", "string", R, "The relative file path it is written to."},
    {"mode", "int32", 0, "The file's mode bits; defaultMode when unset."},
    END};

static const drv_oa_field_t configmap_volume[] = {
    {"name", "string", 0, "The ConfigMap's name, in the Pod's namespace."},
    {"items", CORE "KeyToPath", L, "Only these keys, at these paths; every key when empty."},
    {"defaultMode", "int32", 0, "The files' mode bits (default 0644)."},
    {"optional", "boolean", 0, "When true, a missing ConfigMap gives an empty volume."},
    END};

static const drv_oa_field_t secret_volume[] = {
    {"secretName", "string", 0, "The Secret's name, in the Pod's namespace."},
    {"items", CORE "KeyToPath", L, "Only these keys, at these paths; every key when empty."},
    {"defaultMode", "int32", 0, "The files' mode bits (default 0644)."},
    {"optional", "boolean", 0, "When true, a missing Secret gives an empty volume."},
    END};

static const drv_oa_field_t toleration[] = {
    {"key", "string", 0, "The taint key tolerated; empty with operator Exists tolerates all."},
    {"operator", "string", 0, "Equal (the default: key and value match) or Exists (key only)."},
    {"value", "string", 0, "The taint value matched with Equal."},
    {"effect", "string", 0, "NoSchedule, PreferNoSchedule or NoExecute; all when empty."},
    {"tolerationSeconds", "integer", 0,
     "With NoExecute: how long the Pod stays on a device after the taint appears."},
    END};

static const drv_oa_field_t pod_status[] = {
    {"phase", "string", 0, "Pending, Running, Succeeded, Failed or Unknown."},
    {"conditions", CORE "PodCondition", L,
     "PodScheduled, Initialized, ContainersReady and Ready, as the agent reports them."},
    {"message", "string", 0, "Why the Pod is in this phase, in words."},
    {"reason", "string", 0, "Why the Pod is in this phase, in CamelCase."},
    {"hostIP", "string", 0, "The device's address."},
    {"podIP", "string", 0, "The Pod's address on its device."},
    {"podIPs", CORE "PodIP", L, "The Pod's addresses."},
    {"startTime", TIME, 0, "When the agent accepted the Pod."},
    {"containerStatuses", "object", L,
     "Each container's state, restarts and image, from the agent."},
    {"initContainerStatuses", "object", L, "Each init container's state, from the agent."},
    END};

static const drv_oa_field_t condition[] = {
    {"type", "string", R, "What the condition is about."},
    {"status", "string", R, "True, False or Unknown."},
    {"reason", "string", 0, "Why, in CamelCase."},
    {"message", "string", 0, "Why, in words."},
    {"lastTransitionTime", TIME, 0, "When status last changed."},
    {"lastUpdateTime", TIME, 0, "When the condition was last written (Deployments)."},
    {"lastProbeTime", TIME, 0, "When it was last checked (Pods)."},
    {"lastHeartbeatTime", TIME, 0, "The device's last sign of life (Nodes)."},
    END};

static const drv_oa_field_t pod_ip[] = {{"ip", "string", R, "An address of the Pod."}, END};

static const drv_oa_field_t pod_template[] = {
    {"metadata", META "ObjectMeta", 0,
     "Labels and annotations of the Pods made from the template (name and namespace are the "
     "controller's)."},
    {"spec", CORE "PodSpec", 0, "The Pods' spec."},
    END};

/* ---- core/v1: config, services, events, nodes, namespaces ---- */

static const drv_oa_field_t configmap[] = {
    TYPEMETA,
    OBJMETA,
    {"data", "string", M, "Text values by key (keys: letters, digits, '-', '_', '.')."},
    {"binaryData", "string", M,
     "Binary values by key, base64-encoded; keys may not repeat data's."},
    {"immutable", "boolean", 0, "When true, data and binaryData can no longer change."},
    END};

static const drv_oa_field_t secret[] = {
    TYPEMETA,
    OBJMETA,
    {"data", "string", M,
     "Values by key, base64-encoded. Drover encrypts them at rest and sends them to a device "
     "only sealed to that device's key."},
    {"stringData", "string", M,
     "Values by key as plain text, for writing only: folded into data (winning over it)."},
    {"type", "string", 0,
     "Opaque (the default), kubernetes.io/tls, kubernetes.io/dockerconfigjson, ...: some types "
     "require keys (tls.crt and tls.key for TLS)."},
    {"immutable", "boolean", 0, "When true, the data can no longer change."},
    {"sealedData", "string", 0,
     "Drover's own: the data sealed to one device's key, as devices receive it. Not with data or "
     "stringData."},
    END};

static const drv_oa_field_t service[] = {
    TYPEMETA,
    OBJMETA,
    {"spec", CORE "ServiceSpec", R, "Which Pods the Service sends traffic to, and on which ports."},
    {"status", CORE "ServiceStatus", 0, "Unused by Drover; kept as written."},
    END};

static const drv_oa_field_t service_spec[] = {
    {"type", "string", 0,
     "ClusterIP (the default), NodePort (also on a port of every device) or LoadBalancer "
     "(served as NodePort: Drover runs no external load balancer). ExternalName is refused."},
    {"selector", "string", M, "Labels of the Pods that are the Service's endpoints."},
    {"ports", CORE "ServicePort", L,
     "The ports the Service exposes (at least one unless headless)."},
    {"clusterIP", "string", 0,
     "The Service's virtual IPv4 address, picked by the hub from its service range when empty; "
     "None makes a headless Service (DNS answers with the Pods' addresses)."},
    {"clusterIPs", "string", L,
     "The same address as clusterIP, as a list of one (Drover's Services are IPv4 only); "
     "each is filled from the other."},
    {"sessionAffinity", "string", 0,
     "None (the default) or ClientIP: a client keeps reaching the same Pod while it keeps "
     "talking."},
    {"sessionAffinityConfig", CORE "SessionAffinityConfig", 0,
     "Settings of ClientIP affinity; dropped when sessionAffinity is None."},
    {"ipFamilies", "string", L, "IPv4, the only family Drover serves (the default)."},
    {"ipFamilyPolicy", "string", 0,
     "SingleStack (the default) or PreferDualStack, which gets IPv4 alone; RequireDualStack is "
     "refused."},
    {"internalTrafficPolicy", "string", 0,
     "Cluster (the default: any ready Pod) or Local (only Pods on the client's own device) for "
     "traffic to the cluster address."},
    {"externalTrafficPolicy", "string", 0,
     "For NodePort and LoadBalancer Services: Cluster (the default: any ready Pod) or Local "
     "(only Pods on the device the traffic arrived at, keeping the client's address)."},
    {"publishNotReadyAddresses", "boolean", 0,
     "When true, Pods count as endpoints (and get DNS records) before they are Ready."},
    {"allocateLoadBalancerNodePorts", "boolean", 0,
     "For LoadBalancer Services: true (the default and the only value Drover accepts), as its "
     "ports are served on every device's node ports."},
    END};

static const drv_oa_field_t session_affinity_config[] = {
    {"clientIP", CORE "ClientIPConfig", 0, "Settings of ClientIP affinity."}, END};

static const drv_oa_field_t client_ip_config[] = {
    {"timeoutSeconds", "int32", 0,
     "Seconds a client without traffic keeps its Pod (1-86400, default 10800)."},
    END};

static const drv_oa_field_t service_port[] = {
    {"name", "string", 0, "The port's name; required when there are several ports."},
    {"protocol", "string", 0, "TCP (the default), UDP or SCTP."},
    {"port", "int32", R, "The port the Service listens on."},
    {"targetPort", INTSTR, 0, "The Pods' port, by number or name; port when unset."},
    {"nodePort", "int32", 0,
     "For NodePort and LoadBalancer Services: the port on every device (30000-32767), picked "
     "by the hub when unset."},
    {"appProtocol", "string", 0, "The application protocol; informational."},
    END};

static const drv_oa_field_t service_status[] = {
    {"loadBalancer", "object", 0,
     "Unused: Drover runs no external load balancers (a LoadBalancer Service is reached on "
     "the devices' node ports)."},
    END};

/* ---- core/v1: endpoints ---- */

static const drv_oa_field_t endpoints[] = {
    TYPEMETA,
    OBJMETA,
    {"subsets", CORE "EndpointSubset", L,
     "Groups of addresses that serve the same ports. The hub's endpoints controller writes "
     "them for Services with a selector; for a Service without one, write them yourself."},
    END};

static const drv_oa_field_t endpoint_subset[] = {
    {"addresses", CORE "EndpointAddress", L, "Addresses of Pods that are Ready."},
    {"notReadyAddresses", CORE "EndpointAddress", L,
     "Addresses of Pods not (yet) Ready: not sent traffic unless the Service publishes them."},
    {"ports", CORE "EndpointPort", L,
     "The ports these addresses serve; names are required when there are several."},
    END};

static const drv_oa_field_t endpoint_address[] = {
    {"ip", "string", R,
     "The IPv4 address (not loopback, link-local or unspecified; IPv6 is refused)."},
    {"hostname", "string", 0, "The address's hostname (a DNS label), for headless Services."},
    {"nodeName", "string", 0, "The device the address lives on."},
    {"targetRef", CORE "ObjectReference", 0, "The Pod behind the address."},
    END};

static const drv_oa_field_t endpoint_port[] = {
    {"name", "string", 0, "The port's name, that of the Service port it serves."},
    {"port", "int32", R, "The port number (1-65535)."},
    {"protocol", "string", 0, "TCP (the default), UDP or SCTP."},
    {"appProtocol", "string", 0, "The application protocol; informational."},
    END};

/* ---- discovery.k8s.io/v1 ---- */

static const drv_oa_field_t endpoint_slice[] = {
    TYPEMETA,
    OBJMETA,
    {"addressType", "string", R,
     "IPv4: the only address type Drover serves (IPv6 and FQDN are refused)."},
    {"endpoints", DISC "Endpoint", L,
     "The endpoints, at most 1000. The hub writes a slice per Service with a selector (label "
     "kubernetes.io/service-name names it); the devices route to every endpoint listed."},
    {"ports", DISC "EndpointPort", L, "The ports every endpoint of the slice serves."},
    END};

static const drv_oa_field_t slice_endpoint[] = {
    {"addresses", "string", L | R, "The endpoint's IPv4 addresses (1 to 100)."},
    {"conditions", DISC "EndpointConditions", 0, "Whether the endpoint takes traffic."},
    {"hostname", "string", 0, "The endpoint's hostname (a DNS label), for headless Services."},
    {"nodeName", "string", 0, "The device the endpoint lives on."},
    {"zone", "string", 0, "The zone the endpoint is in; informational."},
    {"targetRef", CORE "ObjectReference", 0, "The Pod behind the endpoint."},
    {"hints", DISC "EndpointHints", 0,
     "Topology hints, kept as written: Drover routes to every endpoint anyway."},
    END};

static const drv_oa_field_t slice_conditions[] = {
    {"ready", "boolean", 0, "The endpoint takes new traffic (unset counts as true)."},
    {"serving", "boolean", 0, "The endpoint answers, even while it is terminating."},
    {"terminating", "boolean", 0, "The endpoint's Pod is shutting down."},
    END};

static const drv_oa_field_t slice_hints[] = {
    {"forZones", DISC "ForZone", L, "Zones that should use the endpoint (at most 8)."},
    {"forNodes", DISC "ForNode", L, "Devices that should use the endpoint."},
    END};

static const drv_oa_field_t hint_name[] = {{"name", "string", R, "The zone's or node's name."},
                                           END};

static const drv_oa_field_t slice_port[] = {
    {"name", "string", 0, "The port's name, that of the Service port it serves."},
    {"port", "int32", 0, "The port number (1-65535)."},
    {"protocol", "string", 0, "TCP (the default), UDP or SCTP."},
    {"appProtocol", "string", 0, "The application protocol; informational."},
    END};

/* ---- scheduling.k8s.io/v1 ---- */

static const drv_oa_field_t priority_class[] = {
    TYPEMETA,
    OBJMETA,
    {"value", "integer", R,
     "The priority of Pods that name this class; higher is scheduled first. At most 1e9 for "
     "classes users make."},
    {"globalDefault", "boolean", 0,
     "When true, Pods that name no class get this one (at most one class should say so)."},
    {"description", "string", 0, "What the class is for."},
    {"preemptionPolicy", "string", 0,
     "PreemptLowerPriority (the default) or Never; Drover never preempts a running Pod."},
    END};

/* ---- networking.k8s.io/v1 ---- */

static const drv_oa_field_t netpol[] = {
    TYPEMETA,
    OBJMETA,
    {"spec", NET "NetworkPolicySpec", 0,
     "Which Pods the policy isolates and the traffic it lets through; every device enforces "
     "it with nftables."},
    END};

static const drv_oa_field_t netpol_spec[] = {
    {"podSelector", META "LabelSelector", R,
     "The Pods of the namespace the policy applies to; empty selects them all."},
    {"policyTypes", "string", L,
     "Ingress, Egress or both: the directions in which selected Pods are isolated. Defaults to "
     "Ingress, plus Egress when egress rules are given."},
    {"ingress", NET "NetworkPolicyIngressRule", L,
     "Traffic a selected Pod may receive (when isolated for Ingress); none allows nothing in."},
    {"egress", NET "NetworkPolicyEgressRule", L,
     "Traffic a selected Pod may send (when isolated for Egress); none allows nothing out."},
    END};

static const drv_oa_field_t netpol_ingress[] = {
    {"ports", NET "NetworkPolicyPort", L, "Ports allowed; every port when empty."},
    {"from", NET "NetworkPolicyPeer", L, "Sources allowed; any source when empty."},
    END};

static const drv_oa_field_t netpol_egress[] = {
    {"ports", NET "NetworkPolicyPort", L, "Ports allowed; every port when empty."},
    {"to", NET "NetworkPolicyPeer", L, "Destinations allowed; any destination when empty."},
    END};

static const drv_oa_field_t netpol_port[] = {
    {"protocol", "string", 0, "TCP (the default), UDP or SCTP."},
    {"port", INTSTR, 0,
     "The port, by number or by the name of a container port of the Pods; every port when "
     "unset."},
    {"endPort", "int32", 0,
     "With a numeric port: the last port of a range starting at port (not below it)."},
    END};

static const drv_oa_field_t netpol_peer[] = {
    {"podSelector", META "LabelSelector", 0,
     "Pods, in the policy's namespace or in those namespaceSelector picks."},
    {"namespaceSelector", META "LabelSelector", 0,
     "Namespaces whose Pods (all, or those podSelector picks) are the peer."},
    {"ipBlock", NET "IPBlock", 0,
     "An IPv4 range; not combined with the selectors. Meant for addresses outside the pod "
     "network."},
    END};

static const drv_oa_field_t ip_block[] = {
    {"cidr", "string", R, "The range, e.g. 192.168.1.0/24 (IPv6 is refused)."},
    {"except", "string", L, "Ranges inside cidr that are left out."},
    END};

static const drv_oa_field_t event[] = {
    TYPEMETA,
    OBJMETA,
    {"involvedObject", CORE "ObjectReference", R, "The object the event is about."},
    {"reason", "string", 0, "Why it happened, in CamelCase (Scheduled, Pulled, BackOff, ...)."},
    {"message", "string", 0, "What happened, in words."},
    {"type", "string", 0, "Normal (the default) or Warning."},
    {"count", "int32", 0, "How many times it happened."},
    {"firstTimestamp", TIME, 0, "When it first happened."},
    {"lastTimestamp", TIME, 0, "When it last happened."},
    {"eventTime", "string", 0, "When it happened, with microseconds."},
    {"source", CORE "EventSource", 0, "Who reported it."},
    {"reportingComponent", "string", 0, "The component that reported it, e.g. drover-hub."},
    {"reportingInstance", "string", 0, "Which instance of it."},
    {"action", "string", 0, "What was done."},
    END};

static const drv_oa_field_t object_ref[] = {
    {"apiVersion", "string", 0, "The object's apiVersion."},
    {"kind", "string", R, "The object's kind."},
    {"name", "string", R, "The object's name."},
    {"namespace", "string", 0, "The object's namespace."},
    {"uid", "string", 0, "The object's uid."},
    {"resourceVersion", "string", 0, "The object's resourceVersion at the time."},
    {"fieldPath", "string", 0, "The part of the object, e.g. spec.containers{web}."},
    END};

static const drv_oa_field_t event_source[] = {
    {"component", "string", 0, "The reporting component."},
    {"host", "string", 0, "The device it ran on."},
    END};

static const drv_oa_field_t node[] = {
    TYPEMETA,
    OBJMETA,
    {"spec", CORE "NodeSpec", 0, "What the hub may place on the device (cordon, taints)."},
    {"status", CORE "NodeStatus", 0,
     "What the device's agent reports: readiness, addresses, capacity. Read-only here."},
    END};

static const drv_oa_field_t node_spec[] = {
    {"unschedulable", "boolean", 0,
     "When true (kubectl cordon), the scheduler places no new Pods on the device."},
    {"podCIDR", "string", 0,
     "The device's block of the pod network (e.g. 10.42.1.0/24), given by the hub when the "
     "Node is made and never changed afterwards; its Pods get their addresses from it."},
    {"podCIDRs", "string", L, "The same block as podCIDR, as a list of one."},
    {"taints", CORE "Taint", L, "Taints keep Pods that do not tolerate them off the device."},
    END};

static const drv_oa_field_t taint[] = {
    {"key", "string", R, "The taint's key."},
    {"value", "string", 0, "The taint's value."},
    {"effect", "string", R,
     "NoSchedule, PreferNoSchedule, or NoExecute (also evicts Pods that do not tolerate it)."},
    {"timeAdded", TIME, 0, "When a NoExecute taint was added."},
    END};

static const drv_oa_field_t node_status[] = {
    {"conditions", CORE "NodeCondition", L,
     "Ready (from the device's heartbeats over MQTT) and the pressure conditions."},
    {"addresses", CORE "NodeAddress", L, "The device's addresses."},
    {"capacity", QUANTITY, M, "The device's resources (cpu, memory, pods)."},
    {"allocatable", QUANTITY, M, "What of the capacity Pods may request."},
    {"nodeInfo", "object", 0, "The device's OS, architecture, kernel and agent versions."},
    {"phase", "string", 0, "Unused."},
    END};

static const drv_oa_field_t node_address[] = {
    {"type", "string", R, "InternalIP, ExternalIP or Hostname."},
    {"address", "string", R, "The address."},
    END};

static const drv_oa_field_t namespace_[] = {
    TYPEMETA,
    OBJMETA,
    {"spec", CORE "NamespaceSpec", 0, "Nothing Drover uses; may be empty."},
    {"status", CORE "NamespaceStatus", 0, "Whether the namespace is Active or being deleted."},
    END};

static const drv_oa_field_t namespace_spec[] = {
    {"finalizers", "string", L, "Accepted for compatibility; Drover keeps none."}, END};

static const drv_oa_field_t namespace_status[] = {
    {"phase", "string", 0, "Active, or Terminating while its objects are deleted."},
    {"conditions", CORE "NamespaceCondition", L, "Conditions of the deletion."},
    END};

/* ---- volumes: core/v1 PersistentVolumeClaim, PersistentVolume; storage.k8s.io/v1 ---- */

static const drv_oa_field_t pvc[] = {
    TYPEMETA,
    OBJMETA,
    {"spec", CORE "PersistentVolumeClaimSpec", R, "The storage the claim asks for."},
    {"status", CORE "PersistentVolumeClaimStatus", 0, "Whether the claim is bound. Read-only."},
    END};

static const drv_oa_field_t pvc_spec[] = {
    {"accessModes", "string", L,
     "ReadWriteOnce, ReadOnlyMany (one device) or ReadWriteOncePod; ReadWriteMany is refused: "
     "volumes are node-local."},
    {"resources", CORE "VolumeResourceRequirements", R, "The storage requested."},
    {"storageClassName", "string", 0,
     "The class; unset: the default class (local-path, Drover's node-local provisioner)."},
    {"volumeName", "string", 0, "The PersistentVolume bound to the claim."},
    {"volumeMode", "string", 0, "Filesystem (the only mode Drover has)."},
    END};

static const drv_oa_field_t volume_resources[] = {
    {"requests", QUANTITY, M, "storage: the least size wanted."},
    {"limits", QUANTITY, M, "storage: the most size wanted."},
    END};

static const drv_oa_field_t pvc_status[] = {
    {"phase", "string", 0, "Pending, Bound or Lost."},
    {"accessModes", "string", L, "The bound volume's access modes."},
    {"capacity", QUANTITY, M, "The bound volume's size."},
    END};

static const drv_oa_field_t pv[] = {
    TYPEMETA,
    OBJMETA,
    {"spec", CORE "PersistentVolumeSpec", R, "Where the volume is and who may use it."},
    {"status", CORE "PersistentVolumeStatus", 0, "The volume's phase. Read-only."},
    END};

static const drv_oa_field_t pv_spec[] = {
    {"capacity", QUANTITY, M, "storage: the volume's size."},
    {"accessModes", "string", L, "ReadWriteOnce, ReadOnlyMany or ReadWriteOncePod."},
    {"persistentVolumeReclaimPolicy", "string", 0,
     "Delete (the directory is removed when the claim goes) or Retain (the default for a "
     "volume made by hand)."},
    {"storageClassName", "string", 0, "The class claims must ask for to bind to it."},
    {"volumeMode", "string", 0, "Filesystem."},
    {"claimRef", CORE "ObjectReference", 0, "The claim bound to the volume."},
    {"nodeAffinity", CORE "VolumeNodeAffinity", 0,
     "The device the volume is on (kubernetes.io/hostname); Pods using it go there."},
    {"hostPath", CORE "HostPathVolumeSource", 0, "A directory of the device."},
    {"local", CORE "LocalVolumeSource", 0, "A directory of the device named in nodeAffinity."},
    END};

static const drv_oa_field_t pv_status[] = {
    {"phase", "string", 0, "Available, Bound, Released or Failed."},
    {"reason", "string", 0, "Why the volume is in its phase."},
    {"message", "string", 0, "More on the phase."},
    END};

static const drv_oa_field_t volume_node_affinity[] = {
    {"required", CORE "NodeSelector", 0, "The nodes the volume can be used on."}, END};

static const drv_oa_field_t node_selector[] = {
    {"nodeSelectorTerms", CORE "NodeSelectorTerm", L | R, "Terms ORed together."}, END};

static const drv_oa_field_t node_selector_term[] = {
    {"matchExpressions", CORE "NodeSelectorRequirement", L, "Requirements on node labels."},
    {"matchFields", CORE "NodeSelectorRequirement", L, "Requirements on node fields."},
    END};

static const drv_oa_field_t node_selector_req[] = {
    {"key", "string", R, "The label key."},
    {"operator", "string", R, "In, NotIn, Exists, DoesNotExist, Gt or Lt."},
    {"values", "string", L, "The values the operator compares with."},
    END};

static const drv_oa_field_t local_volume[] = {
    {"path", "string", R, "The directory on the device."},
    {"fsType", "string", 0, "Unused: a local volume is a directory."},
    END};

static const drv_oa_field_t storage_class[] = {
    TYPEMETA,
    OBJMETA,
    {"provisioner", "string", R,
     "Who makes the class's volumes: drover.io/local-path (the hub's node-local provisioner); "
     "claims of other classes bind only to volumes made by hand."},
    {"parameters", "string", M, "Parameters for the provisioner; local-path takes none."},
    {"reclaimPolicy", "string", 0, "Delete (the default) or Retain, for the volumes it makes."},
    {"volumeBindingMode", "string", 0,
     "Immediate (the default) or WaitForFirstConsumer; local-path always waits for the first "
     "Pod, whose node the volume is made on."},
    {"allowVolumeExpansion", "boolean", 0, "false: node-local volumes do not grow."},
    END};

/* ---- apps/v1 ---- */

static const drv_oa_field_t deployment[] = {
    TYPEMETA,
    OBJMETA,
    {"spec", APPS "DeploymentSpec", R, "The Pods wanted and how to roll out a change."},
    {"status", APPS "DeploymentStatus", 0,
     "What the hub's deployment controller observed. Read-only."},
    END};

static const drv_oa_field_t deployment_spec[] = {
    {"replicas", "int32", 0,
     "How many Pods to run (default 1, at most 100000); an HPA or kubectl scale may change it."},
    {"selector", META "LabelSelector", R,
     "Which Pods belong to the Deployment; must match the template's labels; fixed after "
     "creation."},
    {"template", CORE "PodTemplateSpec", R, "The Pods to make."},
    {"strategy", APPS "DeploymentStrategy", 0, "How old Pods are replaced by new ones."},
    {"revisionHistoryLimit", "int32", 0,
     "How many old ReplicaSets to keep for rollbacks (default 10)."},
    {"minReadySeconds", "int32", 0,
     "Seconds a new Pod must be Ready before it counts as available."},
    {"paused", "boolean", 0, "When true, the controller makes no rollout progress."},
    {"progressDeadlineSeconds", "int32", 0,
     "Seconds without progress before the rollout is reported as failed (default 600; more "
     "than minReadySeconds)."},
    END};

static const drv_oa_field_t deployment_strategy[] = {
    {"type", "string", 0,
     "Recreate (Drover's default: every old Pod stops before new ones start, which suits "
     "devices with one of each) or RollingUpdate."},
    {"rollingUpdate", APPS "RollingUpdateDeployment", 0, "The RollingUpdate's pace."},
    END};

static const drv_oa_field_t rolling_deployment[] = {
    {"maxSurge", INTSTR, 0,
     "How many Pods over replicas may exist during the update (default 25%)."},
    {"maxUnavailable", INTSTR, 0,
     "How many Pods under replicas may be unavailable during the update (default 25%)."},
    END};

static const drv_oa_field_t deployment_status[] = {
    {"observedGeneration", "integer", 0, "The generation the controller last acted on."},
    {"replicas", "int32", 0, "Pods the Deployment has."},
    {"updatedReplicas", "int32", 0, "Pods made from the current template."},
    {"readyReplicas", "int32", 0, "Pods that are Ready."},
    {"availableReplicas", "int32", 0, "Pods Ready for at least minReadySeconds."},
    {"unavailableReplicas", "int32", 0, "Pods still missing to reach replicas."},
    {"conditions", APPS "DeploymentCondition", L, "Available and Progressing."},
    END};

static const drv_oa_field_t daemonset[] = {
    TYPEMETA,
    OBJMETA,
    {"spec", APPS "DaemonSetSpec", R, "The Pod to run on every matching device."},
    {"status", APPS "DaemonSetStatus", 0,
     "What the hub's daemonset controller observed. Read-only."},
    END};

static const drv_oa_field_t daemonset_spec[] = {
    {"selector", META "LabelSelector", R,
     "Which Pods belong to the DaemonSet; must match the template's labels."},
    {"template", CORE "PodTemplateSpec", R,
     "The Pod to make on each device its nodeSelector and tolerations allow."},
    {"updateStrategy", APPS "DaemonSetUpdateStrategy", 0, "How Pods are replaced after a change."},
    {"revisionHistoryLimit", "int32", 0, "How many old revisions to keep."},
    {"minReadySeconds", "int32", 0,
     "Seconds a new Pod must be Ready before it counts as available."},
    END};

static const drv_oa_field_t daemonset_strategy[] = {
    {"type", "string", 0,
     "OnDelete (Drover's default: a device gets the new Pod when its old one is deleted) or "
     "RollingUpdate."},
    {"rollingUpdate", APPS "RollingUpdateDaemonSet", 0, "The RollingUpdate's pace."},
    END};

static const drv_oa_field_t rolling_daemonset[] = {
    {"maxSurge", INTSTR, 0, "How many devices may run an old and a new Pod at once (default 0)."},
    {"maxUnavailable", INTSTR, 0,
     "How many devices may be without an available Pod during the update (default 1)."},
    END};

static const drv_oa_field_t daemonset_status[] = {
    {"observedGeneration", "integer", 0, "The generation the controller last acted on."},
    {"desiredNumberScheduled", "int32", 0, "Devices that should run the Pod."},
    {"currentNumberScheduled", "int32", 0, "Devices that run a Pod of the DaemonSet."},
    {"updatedNumberScheduled", "int32", 0, "Devices that run the current template."},
    {"numberReady", "int32", 0, "Devices whose Pod is Ready."},
    {"numberAvailable", "int32", 0, "Devices whose Pod is available."},
    {"numberUnavailable", "int32", 0, "Devices without an available Pod."},
    {"numberMisscheduled", "int32", 0, "Devices that run the Pod but should not."},
    {"conditions", APPS "DaemonSetCondition", L, "Conditions of the DaemonSet."},
    END};

static const drv_oa_field_t replicaset[] = {
    TYPEMETA,
    OBJMETA,
    {"spec", APPS "ReplicaSetSpec", 0,
     "The Pods of one revision of a Deployment. Drover's deployment controller manages these; "
     "they are for reading."},
    {"status", APPS "ReplicaSetStatus", 0, "What the controller observed. Read-only."},
    END};

static const drv_oa_field_t replicaset_spec[] = {
    {"replicas", "int32", 0, "How many Pods of this revision are wanted."},
    {"selector", META "LabelSelector", 0, "Which Pods belong to it."},
    {"template", CORE "PodTemplateSpec", 0, "The revision's Pod template."},
    {"minReadySeconds", "int32", 0, "Seconds a Pod must be Ready before it counts as available."},
    END};

static const drv_oa_field_t replicaset_status[] = {
    {"replicas", "int32", 0, "Pods of this revision."},
    {"fullyLabeledReplicas", "int32", 0, "Pods carrying all the template's labels."},
    {"readyReplicas", "int32", 0, "Pods that are Ready."},
    {"availableReplicas", "int32", 0, "Pods available."},
    {"observedGeneration", "integer", 0, "The generation last acted on."},
    {"conditions", APPS "ReplicaSetCondition", L, "Conditions of the ReplicaSet."},
    END};

static const drv_oa_field_t controller_revision[] = {
    TYPEMETA,
    OBJMETA,
    {"data", "object", 0,
     "The strategic merge patch that puts this revision's Pod template back into its "
     "DaemonSet ({\"spec\":{\"template\":{...,\"$patch\":\"replace\"}}}): what kubectl "
     "rollout undo sends."},
    {"revision", "integer", R,
     "The revision's number; the DaemonSet's current template has the highest. Going back to "
     "an older template gives its record the next number."},
    END};

/* ---- autoscaling ---- */

static const drv_oa_field_t scale[] = {
    TYPEMETA,
    OBJMETA,
    {"spec", AS1 "ScaleSpec", 0, "The replicas wanted (what kubectl scale writes)."},
    {"status", AS1 "ScaleStatus", 0, "The replicas there are. Read-only."},
    END};

static const drv_oa_field_t scale_spec[] = {
    {"replicas", "int32", 0, "How many Pods the Deployment should run."}, END};

static const drv_oa_field_t scale_status[] = {
    {"replicas", "int32", R, "How many Pods the Deployment has."},
    {"selector", "string", 0, "The Deployment's selector, as a label query."},
    END};

static const drv_oa_field_t hpa[] = {
    TYPEMETA,
    OBJMETA,
    {"spec", AS2 "HorizontalPodAutoscalerSpec", R,
     "What to scale, between which bounds, on which metrics."},
    {"status", AS2 "HorizontalPodAutoscalerStatus", 0,
     "What the hub's autoscaler last measured and decided. Read-only."},
    END};

static const drv_oa_field_t hpa_spec[] = {
    {"scaleTargetRef", AS2 "CrossVersionObjectReference", R,
     "The workload to scale: a Deployment in the same namespace."},
    {"minReplicas", "int32", 0, "The fewest replicas (default 1)."},
    {"maxReplicas", "int32", R, "The most replicas; not below minReplicas."},
    {"metrics", AS2 "MetricSpec", L,
     "What to measure: resource metrics (cpu, memory) from the devices' agents; 80% cpu when "
     "empty."},
    {"behavior", AS2 "HorizontalPodAutoscalerBehavior", 0, "How fast to scale up and down."},
    END};

static const drv_oa_field_t cross_ref[] = {
    {"apiVersion", "string", 0, "The target's apiVersion (apps/v1)."},
    {"kind", "string", R, "The target's kind (Deployment)."},
    {"name", "string", R, "The target's name."},
    END};

static const drv_oa_field_t metric_spec[] = {
    {"type", "string", R, "Resource: the only metric type Drover measures."},
    {"resource", AS2 "ResourceMetricSource", 0, "The resource and its target."},
    END};

static const drv_oa_field_t resource_metric[] = {
    {"name", "string", R, "cpu or memory."},
    {"target", AS2 "MetricTarget", R, "The value to keep the Pods at."},
    END};

static const drv_oa_field_t metric_target[] = {
    {"type", "string", R, "Utilization (of the Pods' requests) or AverageValue."},
    {"averageUtilization", "int32", 0, "For Utilization: the percentage of the requests."},
    {"averageValue", QUANTITY, 0, "For AverageValue: the amount per Pod."},
    END};

static const drv_oa_field_t hpa_behavior[] = {
    {"scaleUp", AS2 "HPAScalingRules", 0, "Rules for scaling up."},
    {"scaleDown", AS2 "HPAScalingRules", 0, "Rules for scaling down."},
    END};

static const drv_oa_field_t hpa_rules[] = {
    {"stabilizationWindowSeconds", "int32", 0,
     "Seconds of past recommendations considered, to avoid flapping (0-3600)."},
    {"selectPolicy", "string", 0, "Max (the default), Min or Disabled."},
    {"policies", AS2 "HPAScalingPolicy", L, "How much may change per period."},
    END};

static const drv_oa_field_t hpa_policy[] = {
    {"type", "string", R, "Pods or Percent."},
    {"value", "int32", R, "The amount (more than 0)."},
    {"periodSeconds", "int32", R, "The period it applies to (1-1800)."},
    END};

static const drv_oa_field_t hpa_status[] = {
    {"observedGeneration", "integer", 0, "The generation last acted on."},
    {"lastScaleTime", TIME, 0, "When the autoscaler last changed the replicas."},
    {"currentReplicas", "int32", 0, "Replicas the target had at the last look."},
    {"desiredReplicas", "int32", 0, "Replicas the autoscaler wants."},
    {"currentMetrics", "object", L, "The metrics' last measured values."},
    {"conditions", AS2 "HorizontalPodAutoscalerCondition", L,
     "AbleToScale, ScalingActive and ScalingLimited."},
    END};

#define OBJ(n, d, f)                                                                               \
    {                                                                                              \
        n, d, NULL, NULL, f                                                                        \
    }

const drv_oa_type_t drv_oa_types[] = {
    {QUANTITY,
     "An amount such as 500m (CPU) or 128Mi (memory): a number with an optional SI or binary "
     "suffix.",
     "string", NULL, NULL},
    {INTSTR, "A number or a string (a port name, or a percentage such as 25%).", "string",
     "int-or-string", NULL},
    {TIME, "A time in RFC 3339 form, UTC, to the second.", "string", "date-time", NULL},
    OBJ(META "ObjectMeta",
        "What every stored object has: its name, namespace, labels and bookkeeping.", object_meta),
    OBJ(META "OwnerReference", "A reference to an object that owns this one.", owner_ref),
    OBJ(META "ListMeta", "What a list answer carries beside its items.", list_meta),
    OBJ(META "LabelSelector",
        "A label query: every given condition must hold; an empty selector matches everything.",
        label_selector),
    OBJ(META "LabelSelectorRequirement", "One set-based condition on a label.", label_selector_req),
    OBJ(META "Status", "Drover's answer to a failed request or to a delete.", status_fields),
    OBJ(META "StatusDetails", "Details of a Status.", status_details),
    OBJ(META "StatusCause", "One problem of a failed request.", status_cause),
    {META "Patch", "A patch body: a merge patch or a strategic merge patch, as JSON.", "object",
     NULL, NULL},
    OBJ(CORE "Pod", "A group of containers run together on one device by its Drover agent.", pod),
    OBJ(CORE "PodSpec", "What a Pod runs and where.", pod_spec),
    OBJ(CORE "PodStatus", "A Pod's state as its device's agent reports it.", pod_status),
    OBJ(CORE "PodCondition", "One aspect of a Pod's state.", condition),
    OBJ(CORE "PodIP", "An address of a Pod.", pod_ip),
    OBJ(CORE "PodTemplateSpec", "The Pods a controller makes.", pod_template),
    OBJ(CORE "PodSecurityContext", "Privileges shared by a Pod's containers.", pod_security),
    OBJ(CORE "Affinity", "Scheduling rules of a Pod.", affinity),
    OBJ(CORE "TopologySpreadConstraint", "How a Pod's kind spreads over a node label's values.",
        spread),
    OBJ(SCHED "PriorityClass", "A name for a Pod priority, which orders the scheduling queue.",
        priority_class),
    OBJ(CORE "NodeAffinity", "Rules on the labels of the device a Pod goes to.", node_affinity),
    OBJ(CORE "PreferredSchedulingTerm", "A node selector term with a weight.", preferred_term),
    OBJ(CORE "PodAffinity", "Rules to be near other Pods.", pod_affinity),
    OBJ(CORE "PodAntiAffinity", "Rules to stay away from other Pods.", pod_affinity),
    OBJ(CORE "PodAffinityTerm", "Pods in a topology domain.", pod_affinity_term),
    OBJ(CORE "WeightedPodAffinityTerm", "A pod affinity term with a weight.",
        weighted_pod_affinity_term),
    OBJ(CORE "Container", "One container of a Pod, run by the device's agent with crun.",
        container),
    OBJ(CORE "EnvVar", "An environment variable.", env_var),
    OBJ(CORE "EnvVarSource", "Where an environment variable's value comes from.", env_var_source),
    OBJ(CORE "ConfigMapKeySelector", "A key of a ConfigMap.", key_selector),
    OBJ(CORE "SecretKeySelector", "A key of a Secret.", key_selector),
    OBJ(CORE "ObjectFieldSelector", "A field of the Pod.", object_field_selector),
    OBJ(CORE "ResourceFieldSelector", "A container's limit or request.", resource_field_selector),
    OBJ(CORE "DownwardAPIVolumeSource", "The Pod's metadata and resources as files.",
        downward_volume),
    OBJ(CORE "DownwardAPIVolumeFile", "One file of a downwardAPI volume.", downward_file),
    OBJ(CORE "HostAlias", "An /etc/hosts entry.", host_alias),
    OBJ(CORE "LocalObjectReference", "An object of the same namespace, by name.", local_object_ref),
    OBJ(CORE "EnvFromSource", "A ConfigMap or Secret whose keys all become variables.", env_from),
    OBJ(CORE "ConfigMapEnvSource", "A ConfigMap for envFrom.", env_source_ref),
    OBJ(CORE "SecretEnvSource", "A Secret for envFrom.", env_source_ref),
    OBJ(CORE "ContainerPort", "A port a container listens on.", container_port),
    OBJ(CORE "ResourceRequirements", "A container's requests and limits.", resource_reqs),
    OBJ(CORE "VolumeMount", "Where a volume appears in a container.", volume_mount),
    OBJ(CORE "Probe", "A periodic check of a container, run by the agent.", probe),
    OBJ(CORE "ExecAction", "A command run in the container.", exec_action),
    OBJ(CORE "HTTPGetAction", "An HTTP GET request.", http_get),
    OBJ(CORE "HTTPHeader", "An HTTP header.", http_header),
    OBJ(CORE "TCPSocketAction", "A TCP connection attempt.", tcp_socket),
    OBJ(CORE "SecurityContext", "A container's privileges.", security_context),
    OBJ(CORE "Capabilities", "Linux capabilities to add and drop.", capabilities),
    OBJ(CORE "SeccompProfile", "A seccomp filter.", seccomp_profile),
    OBJ(CORE "Volume", "A volume a Pod's containers may mount; exactly one source is given.",
        volume),
    OBJ(CORE "EmptyDirVolumeSource", "An empty directory for the Pod's life.", empty_dir),
    OBJ(CORE "HostPathVolumeSource", "A path of the device.", host_path),
    OBJ(CORE "KeyToPath", "A key written to a file.", key_to_path),
    OBJ(CORE "ConfigMapVolumeSource", "A ConfigMap as files.", configmap_volume),
    OBJ(CORE "SecretVolumeSource", "A Secret as files.", secret_volume),
    OBJ(CORE "Toleration", "A taint a Pod tolerates.", toleration),
    OBJ(CORE "PersistentVolumeClaimVolumeSource", "A claim's volume mounted in a Pod.", pvc_volume),
    OBJ(CORE "PersistentVolumeClaim", "A request for storage, bound to a volume on one device.",
        pvc),
    OBJ(CORE "PersistentVolumeClaimSpec", "The storage a claim asks for.", pvc_spec),
    OBJ(CORE "VolumeResourceRequirements", "The size a claim asks for.", volume_resources),
    OBJ(CORE "PersistentVolumeClaimStatus", "A claim's state.", pvc_status),
    OBJ(CORE "PersistentVolume", "A directory on one device, bound to one claim.", pv),
    OBJ(CORE "PersistentVolumeSpec", "Where a volume is and who may use it.", pv_spec),
    OBJ(CORE "PersistentVolumeStatus", "A volume's state.", pv_status),
    OBJ(CORE "VolumeNodeAffinity", "The nodes a volume can be used on.", volume_node_affinity),
    OBJ(CORE "NodeSelector", "Terms that select nodes.", node_selector),
    OBJ(CORE "NodeSelectorTerm", "Requirements a node must all meet.", node_selector_term),
    OBJ(CORE "NodeSelectorRequirement", "A requirement on a node's label or field.",
        node_selector_req),
    OBJ(CORE "LocalVolumeSource", "A directory of a device.", local_volume),
    OBJ(STORAGE "StorageClass", "A kind of storage and who provisions it.", storage_class),
    OBJ(CORE "ConfigMap", "Configuration data by key, for Pods' variables and files.", configmap),
    OBJ(CORE "Secret", "Sensitive data by key, encrypted by the hub and sealed to each device.",
        secret),
    OBJ(CORE "Service", "A stable address for a set of Pods, served on the devices.", service),
    OBJ(CORE "ServiceSpec", "Which Pods a Service sends traffic to, and how.", service_spec),
    OBJ(CORE "ServicePort", "A port a Service exposes.", service_port),
    OBJ(CORE "SessionAffinityConfig", "Settings of a Service's session affinity.",
        session_affinity_config),
    OBJ(CORE "ClientIPConfig", "Settings of ClientIP session affinity.", client_ip_config),
    OBJ(CORE "ServiceStatus", "A Service's status.", service_status),
    OBJ(CORE "Endpoints",
        "The addresses behind a Service, as one object named after it: what older clients read.",
        endpoints),
    OBJ(CORE "EndpointSubset", "Addresses that serve the same ports.", endpoint_subset),
    OBJ(CORE "EndpointAddress", "One address behind a Service.", endpoint_address),
    OBJ(CORE "EndpointPort", "A port the addresses of a subset serve.", endpoint_port),
    OBJ(DISC "EndpointSlice",
        "A part of the endpoints of a Service: what the devices route and answer DNS from.",
        endpoint_slice),
    OBJ(DISC "Endpoint", "One endpoint of a slice: a Pod's address and state.", slice_endpoint),
    OBJ(DISC "EndpointConditions", "The state of an endpoint.", slice_conditions),
    OBJ(DISC "EndpointHints", "Where an endpoint should be used.", slice_hints),
    OBJ(DISC "ForZone", "A zone an endpoint is meant for.", hint_name),
    OBJ(DISC "ForNode", "A device an endpoint is meant for.", hint_name),
    OBJ(DISC "EndpointPort", "A port the endpoints of a slice serve.", slice_port),
    OBJ(NET "NetworkPolicy",
        "Limits the traffic to and from a namespace's Pods; enforced on every device.", netpol),
    OBJ(NET "NetworkPolicySpec", "What a NetworkPolicy isolates and allows.", netpol_spec),
    OBJ(NET "NetworkPolicyIngressRule", "Traffic allowed in: from these peers on these ports.",
        netpol_ingress),
    OBJ(NET "NetworkPolicyEgressRule", "Traffic allowed out: to these peers on these ports.",
        netpol_egress),
    OBJ(NET "NetworkPolicyPort", "A port or a range of ports.", netpol_port),
    OBJ(NET "NetworkPolicyPeer",
        "A peer: Pods by their and their namespaces' labels, or an IP range.", netpol_peer),
    OBJ(NET "IPBlock", "An IPv4 range with holes.", ip_block),
    OBJ(CORE "Event", "A record of something that happened to an object.", event),
    OBJ(CORE "ObjectReference", "A reference to an object.", object_ref),
    OBJ(CORE "EventSource", "Who reported an event.", event_source),
    OBJ(CORE "Node", "A device running the Drover agent, registered when it enrolls.", node),
    OBJ(CORE "NodeSpec", "What may be placed on a device.", node_spec),
    OBJ(CORE "Taint", "A mark that keeps Pods off a device unless they tolerate it.", taint),
    OBJ(CORE "NodeStatus", "A device's state as its agent reports it.", node_status),
    OBJ(CORE "NodeCondition", "One aspect of a device's state.", condition),
    OBJ(CORE "NodeAddress", "An address of a device.", node_address),
    OBJ(CORE "Namespace", "A scope for names; deleting it deletes what it holds.", namespace_),
    OBJ(CORE "NamespaceSpec", "A namespace's spec.", namespace_spec),
    OBJ(CORE "NamespaceStatus", "A namespace's state.", namespace_status),
    OBJ(CORE "NamespaceCondition", "One aspect of a namespace's deletion.", condition),
    OBJ(APPS "Deployment",
        "Keeps a number of identical Pods running and rolls out changes to them.", deployment),
    OBJ(APPS "DeploymentSpec", "A Deployment's desired state.", deployment_spec),
    OBJ(APPS "DeploymentStrategy", "How a Deployment replaces its Pods.", deployment_strategy),
    OBJ(APPS "RollingUpdateDeployment", "The pace of a rolling update.", rolling_deployment),
    OBJ(APPS "DeploymentStatus", "A Deployment's observed state.", deployment_status),
    OBJ(APPS "DeploymentCondition", "One aspect of a Deployment's state.", condition),
    OBJ(APPS "DaemonSet", "Runs one Pod on every device that matches.", daemonset),
    OBJ(APPS "DaemonSetSpec", "A DaemonSet's desired state.", daemonset_spec),
    OBJ(APPS "DaemonSetUpdateStrategy", "How a DaemonSet replaces its Pods.", daemonset_strategy),
    OBJ(APPS "RollingUpdateDaemonSet", "The pace of a rolling update.", rolling_daemonset),
    OBJ(APPS "DaemonSetStatus", "A DaemonSet's observed state.", daemonset_status),
    OBJ(APPS "DaemonSetCondition", "One aspect of a DaemonSet's state.", condition),
    OBJ(APPS "ReplicaSet", "One revision of a Deployment's Pods.", replicaset),
    OBJ(APPS "ReplicaSetSpec", "A ReplicaSet's desired state.", replicaset_spec),
    OBJ(APPS "ReplicaSetStatus", "A ReplicaSet's observed state.", replicaset_status),
    OBJ(APPS "ReplicaSetCondition", "One aspect of a ReplicaSet's state.", condition),
    OBJ(APPS "ControllerRevision",
        "One Pod template a DaemonSet has had, kept by Drover's DaemonSet controller for "
        "kubectl rollout history and undo; for reading.",
        controller_revision),
    OBJ(AS1 "Scale", "A Deployment's replicas, read and written through its scale subresource.",
        scale),
    OBJ(AS1 "ScaleSpec", "The replicas wanted.", scale_spec),
    OBJ(AS1 "ScaleStatus", "The replicas there are.", scale_status),
    OBJ(AS2 "HorizontalPodAutoscaler",
        "Scales a Deployment between bounds from the CPU and memory its Pods use, measured by "
        "the devices' agents.",
        hpa),
    OBJ(AS2 "HorizontalPodAutoscalerSpec", "An autoscaler's target, bounds and metrics.", hpa_spec),
    OBJ(AS2 "CrossVersionObjectReference", "The workload an autoscaler scales.", cross_ref),
    OBJ(AS2 "MetricSpec", "One metric an autoscaler follows.", metric_spec),
    OBJ(AS2 "ResourceMetricSource", "A resource metric and its target.", resource_metric),
    OBJ(AS2 "MetricTarget", "The value a metric is kept at.", metric_target),
    OBJ(AS2 "HorizontalPodAutoscalerBehavior", "How fast an autoscaler changes the replicas.",
        hpa_behavior),
    OBJ(AS2 "HPAScalingRules", "Limits on scaling in one direction.", hpa_rules),
    OBJ(AS2 "HPAScalingPolicy", "One limit on how much may change per period.", hpa_policy),
    OBJ(AS2 "HorizontalPodAutoscalerStatus", "What an autoscaler measured and decided.",
        hpa_status),
    OBJ(AS2 "HorizontalPodAutoscalerCondition", "One aspect of an autoscaler's state.", condition),
    {NULL, NULL, NULL, NULL, NULL},
};

const drv_oa_type_t *drv_oa_type(const char *name)
{
    for (const drv_oa_type_t *t = drv_oa_types; t->name; t++)
        if (!strcmp(t->name, name))
            return t;
    return NULL;
}

/* {doc, group, version, kind, plural, type, namespaced, status, scale, log, create} */
const drv_oa_kind_t drv_oa_kinds[] = {
    {"api/v1", "", "v1", "Pod", "pods", CORE "Pod", true, true, false, true, true},
    {"api/v1", "", "v1", "ConfigMap", "configmaps", CORE "ConfigMap", true, false, false, false,
     true},
    {"api/v1", "", "v1", "Secret", "secrets", CORE "Secret", true, false, false, false, true},
    {"api/v1", "", "v1", "Service", "services", CORE "Service", true, true, false, false, true},
    {"api/v1", "", "v1", "Event", "events", CORE "Event", true, false, false, false, true},
    {"api/v1", "", "v1", "Endpoints", "endpoints", CORE "Endpoints", true, false, false, false,
     true},
    {"api/v1", "", "v1", "Node", "nodes", CORE "Node", false, true, false, false, true},
    {"api/v1", "", "v1", "Namespace", "namespaces", CORE "Namespace", false, true, false, false,
     true},
    {"apis/apps/v1", "apps", "v1", "Deployment", "deployments", APPS "Deployment", true, true, true,
     false, true},
    {"apis/apps/v1", "apps", "v1", "DaemonSet", "daemonsets", APPS "DaemonSet", true, true, false,
     false, true},
    {"apis/apps/v1", "apps", "v1", "ReplicaSet", "replicasets", APPS "ReplicaSet", true, true,
     false, false, false},
    {"apis/apps/v1", "apps", "v1", "ControllerRevision", "controllerrevisions",
     APPS "ControllerRevision", true, false, false, false, false},
    {"apis/autoscaling/v2", "autoscaling", "v2", "HorizontalPodAutoscaler",
     "horizontalpodautoscalers", AS2 "HorizontalPodAutoscaler", true, true, false, false, true},
    {"apis/discovery.k8s.io/v1", "discovery.k8s.io", "v1", "EndpointSlice", "endpointslices",
     DISC "EndpointSlice", true, false, false, false, true},
    {"apis/networking.k8s.io/v1", "networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies",
     NET "NetworkPolicy", true, false, false, false, true},
    {"api/v1", "", "v1", "PersistentVolumeClaim", "persistentvolumeclaims",
     CORE "PersistentVolumeClaim", true, true, false, false, true},
    {"api/v1", "", "v1", "PersistentVolume", "persistentvolumes", CORE "PersistentVolume", false,
     true, false, false, true},
    {"apis/storage.k8s.io/v1", "storage.k8s.io", "v1", "StorageClass", "storageclasses",
     STORAGE "StorageClass", false, false, false, false, true},
    {"apis/scheduling.k8s.io/v1", "scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses",
     SCHED "PriorityClass", false, false, false, false, true},
    {NULL, NULL, NULL, NULL, NULL, NULL, false, false, false, false, false},
};
