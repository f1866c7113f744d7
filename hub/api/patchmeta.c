/* The patch metadata table (patchmeta.h): Kubernetes' patchStrategy and patchMergeKey tags of
 * the API types the hub serves, and the edges from each kind's root type down to them. */
#include "api/patchmeta.h"

#include <string.h>

#define CORE "io.k8s.api.core.v1."
#define APPS "io.k8s.api.apps.v1."
#define META "io.k8s.apimachinery.pkg.apis.meta.v1."
#define AUTOSCALING "io.k8s.api.autoscaling.v2."
#define DISC "io.k8s.api.discovery.v1."
#define NET "io.k8s.api.networking.v1."
#define STORAGE "io.k8s.api.storage.v1."

typedef struct edge {
    const char *parent, *field;
    drv_api_patch_meta_t meta;
} edge_t;

/* {type, list, merge, retainKeys, mergeKey}. A list with neither merge nor retainKeys is atomic
 * (+listType=atomic or set upstream, no patchStrategy): a patch replaces it whole; its entry
 * still names the elements' type so the patch can walk into them. */
static const edge_t edges[] = {
    /* metadata */
    {CORE "Pod", "metadata", {META "ObjectMeta", false, false, false, NULL}},
    {CORE "ConfigMap", "metadata", {META "ObjectMeta", false, false, false, NULL}},
    {CORE "Secret", "metadata", {META "ObjectMeta", false, false, false, NULL}},
    {CORE "Service", "metadata", {META "ObjectMeta", false, false, false, NULL}},
    {CORE "Event", "metadata", {META "ObjectMeta", false, false, false, NULL}},
    {CORE "Node", "metadata", {META "ObjectMeta", false, false, false, NULL}},
    {CORE "Namespace", "metadata", {META "ObjectMeta", false, false, false, NULL}},
    {APPS "Deployment", "metadata", {META "ObjectMeta", false, false, false, NULL}},
    {APPS "DaemonSet", "metadata", {META "ObjectMeta", false, false, false, NULL}},
    {APPS "ReplicaSet", "metadata", {META "ObjectMeta", false, false, false, NULL}},
    {CORE "Endpoints", "metadata", {META "ObjectMeta", false, false, false, NULL}},
    {DISC "EndpointSlice", "metadata", {META "ObjectMeta", false, false, false, NULL}},
    {NET "NetworkPolicy", "metadata", {META "ObjectMeta", false, false, false, NULL}},
    {AUTOSCALING "HorizontalPodAutoscaler",
     "metadata",
     {META "ObjectMeta", false, false, false, NULL}},
    {CORE "PersistentVolumeClaim", "metadata", {META "ObjectMeta", false, false, false, NULL}},
    {CORE "PersistentVolume", "metadata", {META "ObjectMeta", false, false, false, NULL}},
    {STORAGE "StorageClass", "metadata", {META "ObjectMeta", false, false, false, NULL}},
    {CORE "PodTemplateSpec", "metadata", {META "ObjectMeta", false, false, false, NULL}},
    {META "ObjectMeta", "finalizers", {NULL, true, true, false, NULL}},
    {META "ObjectMeta", "ownerReferences", {META "OwnerReference", true, true, false, "uid"}},
    /* volumes: lists atomic, as upstream (no patchStrategy) */
    {CORE "PersistentVolumeClaim",
     "spec",
     {CORE "PersistentVolumeClaimSpec", false, false, false, NULL}},
    {CORE "PersistentVolumeClaimSpec", "accessModes", {NULL, true, false, false, NULL}},
    {CORE "PersistentVolume", "spec", {CORE "PersistentVolumeSpec", false, false, false, NULL}},
    {CORE "PersistentVolumeSpec", "accessModes", {NULL, true, false, false, NULL}},
    {CORE "PersistentVolumeSpec",
     "nodeAffinity",
     {CORE "VolumeNodeAffinity", false, false, false, NULL}},
    {CORE "VolumeNodeAffinity", "required", {CORE "NodeSelector", false, false, false, NULL}},
    {CORE "NodeSelector", "nodeSelectorTerms", {CORE "NodeSelectorTerm", true, false, false, NULL}},
    /* pods */
    {CORE "Pod", "spec", {CORE "PodSpec", false, false, false, NULL}},
    {CORE "Pod", "status", {CORE "PodStatus", false, false, false, NULL}},
    {CORE "PodSpec", "containers", {CORE "Container", true, true, false, "name"}},
    {CORE "PodSpec", "initContainers", {CORE "Container", true, true, false, "name"}},
    {CORE "PodSpec", "ephemeralContainers", {CORE "EphemeralContainer", true, true, false, "name"}},
    {CORE "PodSpec", "volumes", {CORE "Volume", true, true, true, "name"}},
    {CORE "PodSpec", "imagePullSecrets", {CORE "LocalObjectReference", true, true, false, "name"}},
    {CORE "PodSpec", "hostAliases", {CORE "HostAlias", true, true, false, "ip"}},
    {CORE "PodSpec",
     "topologySpreadConstraints",
     {CORE "TopologySpreadConstraint", true, true, false, "topologyKey"}},
    {CORE "PodSpec", "tolerations", {CORE "Toleration", true, false, false, NULL}},
    {CORE "Container", "env", {CORE "EnvVar", true, true, false, "name"}},
    {CORE "Container", "ports", {CORE "ContainerPort", true, true, false, "containerPort"}},
    {CORE "Container", "volumeMounts", {CORE "VolumeMount", true, true, false, "mountPath"}},
    {CORE "Container", "volumeDevices", {CORE "VolumeDevice", true, true, false, "devicePath"}},
    {CORE "Container", "resources", {CORE "ResourceRequirements", false, false, false, NULL}},
    {CORE "EphemeralContainer", "env", {CORE "EnvVar", true, true, false, "name"}},
    {CORE "EphemeralContainer",
     "ports",
     {CORE "ContainerPort", true, true, false, "containerPort"}},
    {CORE "EphemeralContainer",
     "volumeMounts",
     {CORE "VolumeMount", true, true, false, "mountPath"}},
    {CORE "PodStatus", "conditions", {CORE "PodCondition", true, true, false, "type"}},
    {CORE "PodStatus", "podIPs", {CORE "PodIP", true, true, false, "ip"}},
    /* workloads */
    {APPS "Deployment", "spec", {APPS "DeploymentSpec", false, false, false, NULL}},
    {APPS "Deployment", "status", {APPS "DeploymentStatus", false, false, false, NULL}},
    {APPS "DeploymentSpec", "template", {CORE "PodTemplateSpec", false, false, false, NULL}},
    {APPS "DeploymentSpec", "strategy", {APPS "DeploymentStrategy", false, false, true, NULL}},
    {APPS "DeploymentStatus",
     "conditions",
     {APPS "DeploymentCondition", true, true, false, "type"}},
    {APPS "DaemonSet", "spec", {APPS "DaemonSetSpec", false, false, false, NULL}},
    {APPS "DaemonSet", "status", {APPS "DaemonSetStatus", false, false, false, NULL}},
    {APPS "DaemonSetSpec", "template", {CORE "PodTemplateSpec", false, false, false, NULL}},
    {APPS "DaemonSetStatus", "conditions", {APPS "DaemonSetCondition", true, true, false, "type"}},
    {APPS "ReplicaSet", "spec", {APPS "ReplicaSetSpec", false, false, false, NULL}},
    {APPS "ReplicaSet", "status", {APPS "ReplicaSetStatus", false, false, false, NULL}},
    {APPS "ReplicaSetSpec", "template", {CORE "PodTemplateSpec", false, false, false, NULL}},
    {APPS "ReplicaSetStatus",
     "conditions",
     {APPS "ReplicaSetCondition", true, true, false, "type"}},
    {CORE "PodTemplateSpec", "spec", {CORE "PodSpec", false, false, false, NULL}},
    /* services, nodes, namespaces */
    {CORE "Service", "spec", {CORE "ServiceSpec", false, false, false, NULL}},
    {CORE "ServiceSpec", "ports", {CORE "ServicePort", true, true, false, "port"}},
    {CORE "ServiceSpec",
     "sessionAffinityConfig",
     {CORE "SessionAffinityConfig", false, false, false, NULL}},
    {CORE "ServiceSpec", "clusterIPs", {NULL, true, false, false, NULL}},
    {CORE "ServiceSpec", "ipFamilies", {NULL, true, false, false, NULL}},
    {CORE "SessionAffinityConfig", "clientIP", {CORE "ClientIPConfig", false, false, false, NULL}},
    {CORE "Node", "spec", {CORE "NodeSpec", false, false, false, NULL}},
    {CORE "Node", "status", {CORE "NodeStatus", false, false, false, NULL}},
    {CORE "NodeSpec", "podCIDRs", {NULL, true, true, false, NULL}},
    {CORE "NodeSpec", "taints", {CORE "Taint", true, false, false, NULL}},
    {CORE "NodeStatus", "conditions", {CORE "NodeCondition", true, true, false, "type"}},
    {CORE "NodeStatus", "addresses", {CORE "NodeAddress", true, true, false, "type"}},
    {CORE "Namespace", "status", {CORE "NamespaceStatus", false, false, false, NULL}},
    {CORE "NamespaceStatus", "conditions", {CORE "NamespaceCondition", true, true, false, "type"}},
    /* endpoints (v1), endpoint slices (discovery.k8s.io/v1): every list atomic upstream */
    {CORE "Endpoints", "subsets", {CORE "EndpointSubset", true, false, false, NULL}},
    {CORE "EndpointSubset", "addresses", {CORE "EndpointAddress", true, false, false, NULL}},
    {CORE "EndpointSubset",
     "notReadyAddresses",
     {CORE "EndpointAddress", true, false, false, NULL}},
    {CORE "EndpointSubset", "ports", {CORE "EndpointPort", true, false, false, NULL}},
    {DISC "EndpointSlice", "endpoints", {DISC "Endpoint", true, false, false, NULL}},
    {DISC "EndpointSlice", "ports", {DISC "EndpointPort", true, false, false, NULL}},
    {DISC "Endpoint", "addresses", {NULL, true, false, false, NULL}},
    {DISC "Endpoint", "conditions", {DISC "EndpointConditions", false, false, false, NULL}},
    {DISC "Endpoint", "hints", {DISC "EndpointHints", false, false, false, NULL}},
    {DISC "EndpointHints", "forZones", {DISC "ForZone", true, false, false, NULL}},
    {DISC "EndpointHints", "forNodes", {DISC "ForNode", true, false, false, NULL}},
    /* networking.k8s.io/v1: every list atomic upstream */
    {NET "NetworkPolicy", "spec", {NET "NetworkPolicySpec", false, false, false, NULL}},
    {NET "NetworkPolicySpec", "podSelector", {META "LabelSelector", false, false, false, NULL}},
    {NET "NetworkPolicySpec",
     "ingress",
     {NET "NetworkPolicyIngressRule", true, false, false, NULL}},
    {NET "NetworkPolicySpec", "egress", {NET "NetworkPolicyEgressRule", true, false, false, NULL}},
    {NET "NetworkPolicySpec", "policyTypes", {NULL, true, false, false, NULL}},
    {NET "NetworkPolicyIngressRule", "ports", {NET "NetworkPolicyPort", true, false, false, NULL}},
    {NET "NetworkPolicyIngressRule", "from", {NET "NetworkPolicyPeer", true, false, false, NULL}},
    {NET "NetworkPolicyEgressRule", "ports", {NET "NetworkPolicyPort", true, false, false, NULL}},
    {NET "NetworkPolicyEgressRule", "to", {NET "NetworkPolicyPeer", true, false, false, NULL}},
    {NET "NetworkPolicyPeer", "podSelector", {META "LabelSelector", false, false, false, NULL}},
    {NET "NetworkPolicyPeer",
     "namespaceSelector",
     {META "LabelSelector", false, false, false, NULL}},
    {NET "NetworkPolicyPeer", "ipBlock", {NET "IPBlock", false, false, false, NULL}},
    {NET "IPBlock", "except", {NULL, true, false, false, NULL}},
    /* autoscaling/v2 */
    {AUTOSCALING "HorizontalPodAutoscaler",
     "status",
     {AUTOSCALING "HorizontalPodAutoscalerStatus", false, false, false, NULL}},
    {AUTOSCALING "HorizontalPodAutoscalerStatus",
     "conditions",
     {AUTOSCALING "HorizontalPodAutoscalerCondition", true, true, false, "type"}},
};

const char *drv_api_patch_root(drv_kind_t kind)
{
    switch (kind) {
    case DRV_KIND_POD:
        return CORE "Pod";
    case DRV_KIND_DEPLOYMENT:
        return APPS "Deployment";
    case DRV_KIND_DAEMONSET:
        return APPS "DaemonSet";
    case DRV_KIND_CONFIGMAP:
        return CORE "ConfigMap";
    case DRV_KIND_SECRET:
        return CORE "Secret";
    case DRV_KIND_SERVICE:
        return CORE "Service";
    case DRV_KIND_NODE:
        return CORE "Node";
    case DRV_KIND_EVENT:
        return CORE "Event";
    case DRV_KIND_HPA:
        return AUTOSCALING "HorizontalPodAutoscaler";
    case DRV_KIND_NAMESPACE:
        return CORE "Namespace";
    case DRV_KIND_REPLICASET:
        return APPS "ReplicaSet";
    case DRV_KIND_CONTROLLERREVISION:
        return APPS "ControllerRevision";
    case DRV_KIND_ENDPOINTS:
        return CORE "Endpoints";
    case DRV_KIND_ENDPOINTSLICE:
        return DISC "EndpointSlice";
    case DRV_KIND_NETWORKPOLICY:
        return NET "NetworkPolicy";
    case DRV_KIND_PVC:
        return CORE "PersistentVolumeClaim";
    case DRV_KIND_PV:
        return CORE "PersistentVolume";
    case DRV_KIND_STORAGECLASS:
        return STORAGE "StorageClass";
    case DRV_KIND_PRIORITYCLASS:
        return "io.k8s.api.scheduling.v1.PriorityClass";
    default:
        return NULL;
    }
}

bool drv_api_patch_meta(const char *type, const char *field, drv_api_patch_meta_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!type || !field)
        return false;
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
        if (!strcmp(edges[i].parent, type) && !strcmp(edges[i].field, field)) {
            *out = edges[i].meta;
            return true;
        }
    return false;
}
