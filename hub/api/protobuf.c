/* Kubernetes' protobuf request bodies (application/vnd.kubernetes.protobuf, which kubectl 1.33's
 * typed commands send; 1.27's send JSON) turned into the JSON the same object has, so the model
 * validates a protobuf body exactly as it validates kubectl's JSON. Only the kinds Drover stores
 * are known. */
#include "api/api_int.h"

#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "drover/base64.h"
#include "drover/cleanup.h"
#include "drover/fmt.h"

/* The envelope (k8s.io/apimachinery/pkg/runtime/serializer/protobuf): 4 magic bytes, then a
 * runtime.Unknown {1 typeMeta {1 apiVersion, 2 kind}, 2 raw, 3 contentEncoding, 4 contentType}
 * whose raw is the object's own message. */
#define PB_MAGIC "k8s\0"
#define PB_MAGIC_LEN 4
#define PB_MAX_DEPTH 32 /* Deployment to an HTTP probe's header is 9; 32 leaves room */

/* What a field holds. PB_TIME .. PB_INTORSTR are apimachinery's messages that JSON shows as a
 * scalar; PB_SKIP is read past (status: the model ignores it on writes). */
typedef enum pb_kind {
    PB_STRING,
    PB_BYTES,
    PB_BOOL,
    PB_INT32,
    PB_INT64,
    PB_DOUBLE,
    PB_MSG,
    PB_TIME,
    PB_MICROTIME,
    PB_QUANTITY,
    PB_INTORSTR,
    PB_SKIP,
} pb_kind_t;

#define F_REP 1u     /* repeated: a JSON array */
#define F_MAP 2u     /* map<string, kind>: a JSON object */
#define F_PTR 4u     /* a pointer in Go: sent only when set, so its zero value is kept */
#define F_OMIT 8u    /* omitempty in Go: Go's protobuf sends the zero value, JSON leaves it out */
#define F_INLINE 16u /* an embedded Go struct: its members are the parent's in JSON */

typedef struct pb_msg pb_msg_t;
typedef struct pb_field {
    uint32_t num;
    const char *name; /* the JSON name */
    pb_kind_t kind;   /* for a map: the value's kind */
    unsigned flags;
    const pb_msg_t *msg; /* PB_MSG: its table; NULL: a message Drover does not run */
} pb_field_t;
struct pb_msg {
    const char *name; /* as Kubernetes' OpenAPI names it, for errors */
    const pb_field_t *fields;
    size_t n;
};
#define PB_N(a) (sizeof(a) / sizeof((a)[0]))

/* The tables: field numbers, names and scalar kinds from k8s.io/api (core/v1, apps/v1,
 * autoscaling/v2, policy/v1, scheduling/v1) and k8s.io/apimachinery (meta/v1) generated.proto;
 * F_PTR and F_OMIT from the Go fields of their types.go. Messages the model refuses (dnsConfig,
 * volume sources other than emptyDir, hostPath, configMap and secret, ...) have no table: a body
 * that sets them is refused here, naming the field. */
static const pb_msg_t m_meta_OwnerReference;
static const pb_msg_t m_meta_ObjectMeta;
static const pb_msg_t m_core_NamespaceSpec;
static const pb_msg_t m_core_Namespace;
static const pb_msg_t m_core_ConfigMap;
static const pb_msg_t m_core_Secret;
static const pb_msg_t m_core_ServicePort;
static const pb_msg_t m_core_ClientIPConfig;
static const pb_msg_t m_core_SessionAffinityConfig;
static const pb_msg_t m_core_ServiceSpec;
static const pb_msg_t m_core_Service;
static const pb_msg_t m_core_HostPathVolumeSource;
static const pb_msg_t m_core_EmptyDirVolumeSource;
static const pb_msg_t m_core_KeyToPath;
static const pb_msg_t m_core_SecretVolumeSource;
static const pb_msg_t m_core_LocalObjectReference;
static const pb_msg_t m_core_ConfigMapVolumeSource;
static const pb_msg_t m_core_VolumeSource;
static const pb_msg_t m_core_Volume;
static const pb_msg_t m_core_ContainerPort;
static const pb_msg_t m_core_ConfigMapEnvSource;
static const pb_msg_t m_core_SecretEnvSource;
static const pb_msg_t m_core_EnvFromSource;
static const pb_msg_t m_core_ConfigMapKeySelector;
static const pb_msg_t m_core_SecretKeySelector;
static const pb_msg_t m_core_EnvVarSource;
static const pb_msg_t m_core_EnvVar;
static const pb_msg_t m_core_ResourceRequirements;
static const pb_msg_t m_core_VolumeMount;
static const pb_msg_t m_core_ExecAction;
static const pb_msg_t m_core_HTTPHeader;
static const pb_msg_t m_core_HTTPGetAction;
static const pb_msg_t m_core_TCPSocketAction;
static const pb_msg_t m_core_ProbeHandler;
static const pb_msg_t m_core_Probe;
static const pb_msg_t m_core_Capabilities;
static const pb_msg_t m_core_SeccompProfile;
static const pb_msg_t m_core_SecurityContext;
static const pb_msg_t m_core_Container;
static const pb_msg_t m_core_PodSecurityContext;
static const pb_msg_t m_core_Toleration;
static const pb_msg_t m_core_PodSpec;
static const pb_msg_t m_core_Pod;
static const pb_msg_t m_meta_LabelSelectorRequirement;
static const pb_msg_t m_meta_LabelSelector;
static const pb_msg_t m_core_PodTemplateSpec;
static const pb_msg_t m_apps_RollingUpdateDeployment;
static const pb_msg_t m_apps_DeploymentStrategy;
static const pb_msg_t m_apps_DeploymentSpec;
static const pb_msg_t m_apps_Deployment;
static const pb_msg_t m_apps_RollingUpdateDaemonSet;
static const pb_msg_t m_apps_DaemonSetUpdateStrategy;
static const pb_msg_t m_apps_DaemonSetSpec;
static const pb_msg_t m_apps_DaemonSet;
static const pb_msg_t m_autoscaling_CrossVersionObjectReference;
static const pb_msg_t m_autoscaling_MetricTarget;
static const pb_msg_t m_autoscaling_ResourceMetricSource;
static const pb_msg_t m_autoscaling_MetricSpec;
static const pb_msg_t m_autoscaling_HPAScalingPolicy;
static const pb_msg_t m_autoscaling_HPAScalingRules;
static const pb_msg_t m_autoscaling_HorizontalPodAutoscalerBehavior;
static const pb_msg_t m_autoscaling_HorizontalPodAutoscalerSpec;
static const pb_msg_t m_autoscaling_HorizontalPodAutoscaler;
static const pb_msg_t m_meta_Preconditions;
static const pb_msg_t m_meta_DeleteOptions;
static const pb_msg_t m_policy_Eviction;

static const pb_field_t meta_OwnerReference_f[] = {
    {1, "kind", PB_STRING, 0, NULL},         {3, "name", PB_STRING, 0, NULL},
    {4, "uid", PB_STRING, 0, NULL},          {5, "apiVersion", PB_STRING, 0, NULL},
    {6, "controller", PB_BOOL, F_PTR, NULL}, {7, "blockOwnerDeletion", PB_BOOL, F_PTR, NULL},
};
static const pb_msg_t m_meta_OwnerReference = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference", meta_OwnerReference_f,
    PB_N(meta_OwnerReference_f)};
static const pb_field_t meta_ObjectMeta_f[] = {
    {1, "name", PB_STRING, F_OMIT, NULL},
    {2, "generateName", PB_STRING, F_OMIT, NULL},
    {3, "namespace", PB_STRING, F_OMIT, NULL},
    {4, "selfLink", PB_STRING, F_OMIT, NULL},
    {5, "uid", PB_STRING, F_OMIT, NULL},
    {6, "resourceVersion", PB_STRING, F_OMIT, NULL},
    {7, "generation", PB_INT64, F_OMIT, NULL},
    {8, "creationTimestamp", PB_TIME, F_OMIT, NULL},
    {9, "deletionTimestamp", PB_TIME, F_PTR, NULL},
    {10, "deletionGracePeriodSeconds", PB_INT64, F_PTR, NULL},
    {11, "labels", PB_STRING, F_MAP | F_OMIT, NULL},
    {12, "annotations", PB_STRING, F_MAP | F_OMIT, NULL},
    {13, "ownerReferences", PB_MSG, F_REP | F_OMIT, &m_meta_OwnerReference},
    {14, "finalizers", PB_STRING, F_REP | F_OMIT, NULL},
    {17, "managedFields", PB_MSG, F_REP | F_OMIT, NULL},
};
static const pb_msg_t m_meta_ObjectMeta = {"io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                                           meta_ObjectMeta_f, PB_N(meta_ObjectMeta_f)};
static const pb_field_t core_NamespaceSpec_f[] = {
    {1, "finalizers", PB_STRING, F_REP | F_OMIT, NULL},
};
static const pb_msg_t m_core_NamespaceSpec = {"io.k8s.api.core.v1.NamespaceSpec",
                                              core_NamespaceSpec_f, PB_N(core_NamespaceSpec_f)};
static const pb_field_t core_Namespace_f[] = {
    {1, "metadata", PB_MSG, 0, &m_meta_ObjectMeta},
    {2, "spec", PB_MSG, F_OMIT, &m_core_NamespaceSpec},
    {3, "status", PB_SKIP, F_OMIT, NULL},
};
static const pb_msg_t m_core_Namespace = {"io.k8s.api.core.v1.Namespace", core_Namespace_f,
                                          PB_N(core_Namespace_f)};
static const pb_field_t core_ConfigMap_f[] = {
    {1, "metadata", PB_MSG, 0, &m_meta_ObjectMeta},
    {2, "data", PB_STRING, F_MAP | F_OMIT, NULL},
    {3, "binaryData", PB_BYTES, F_MAP | F_OMIT, NULL},
    {4, "immutable", PB_BOOL, F_PTR, NULL},
};
static const pb_msg_t m_core_ConfigMap = {"io.k8s.api.core.v1.ConfigMap", core_ConfigMap_f,
                                          PB_N(core_ConfigMap_f)};
static const pb_field_t core_Secret_f[] = {
    {1, "metadata", PB_MSG, 0, &m_meta_ObjectMeta},
    {2, "data", PB_BYTES, F_MAP | F_OMIT, NULL},
    {3, "type", PB_STRING, F_OMIT, NULL},
    {4, "stringData", PB_STRING, F_MAP | F_OMIT, NULL},
    {5, "immutable", PB_BOOL, F_PTR, NULL},
};
static const pb_msg_t m_core_Secret = {"io.k8s.api.core.v1.Secret", core_Secret_f,
                                       PB_N(core_Secret_f)};
static const pb_field_t core_ServicePort_f[] = {
    {1, "name", PB_STRING, F_OMIT, NULL},    {2, "protocol", PB_STRING, F_OMIT, NULL},
    {3, "port", PB_INT32, 0, NULL},          {4, "targetPort", PB_INTORSTR, F_OMIT, NULL},
    {5, "nodePort", PB_INT32, F_OMIT, NULL}, {6, "appProtocol", PB_STRING, F_PTR, NULL},
};
static const pb_msg_t m_core_ServicePort = {"io.k8s.api.core.v1.ServicePort", core_ServicePort_f,
                                            PB_N(core_ServicePort_f)};
static const pb_field_t core_ClientIPConfig_f[] = {
    {1, "timeoutSeconds", PB_INT32, F_PTR, NULL},
};
static const pb_msg_t m_core_ClientIPConfig = {"io.k8s.api.core.v1.ClientIPConfig",
                                               core_ClientIPConfig_f, PB_N(core_ClientIPConfig_f)};
static const pb_field_t core_SessionAffinityConfig_f[] = {
    {1, "clientIP", PB_MSG, F_PTR, &m_core_ClientIPConfig},
};
static const pb_msg_t m_core_SessionAffinityConfig = {"io.k8s.api.core.v1.SessionAffinityConfig",
                                                      core_SessionAffinityConfig_f,
                                                      PB_N(core_SessionAffinityConfig_f)};
static const pb_field_t core_ServiceSpec_f[] = {
    {1, "ports", PB_MSG, F_REP | F_OMIT, &m_core_ServicePort},
    {2, "selector", PB_STRING, F_MAP | F_OMIT, NULL},
    {3, "clusterIP", PB_STRING, F_OMIT, NULL},
    {4, "type", PB_STRING, F_OMIT, NULL},
    {5, "externalIPs", PB_STRING, F_REP | F_OMIT, NULL},
    {7, "sessionAffinity", PB_STRING, F_OMIT, NULL},
    {8, "loadBalancerIP", PB_STRING, F_OMIT, NULL},
    {9, "loadBalancerSourceRanges", PB_STRING, F_REP | F_OMIT, NULL},
    {10, "externalName", PB_STRING, F_OMIT, NULL},
    {11, "externalTrafficPolicy", PB_STRING, F_OMIT, NULL},
    {12, "healthCheckNodePort", PB_INT32, F_OMIT, NULL},
    {13, "publishNotReadyAddresses", PB_BOOL, F_OMIT, NULL},
    {14, "sessionAffinityConfig", PB_MSG, F_PTR, &m_core_SessionAffinityConfig},
    {17, "ipFamilyPolicy", PB_STRING, F_PTR, NULL},
    {18, "clusterIPs", PB_STRING, F_REP | F_OMIT, NULL},
    {19, "ipFamilies", PB_STRING, F_REP | F_OMIT, NULL},
    {20, "allocateLoadBalancerNodePorts", PB_BOOL, F_PTR, NULL},
    {21, "loadBalancerClass", PB_STRING, F_PTR, NULL},
    {22, "internalTrafficPolicy", PB_STRING, F_PTR, NULL},
    {23, "trafficDistribution", PB_STRING, F_PTR, NULL},
};
static const pb_msg_t m_core_ServiceSpec = {"io.k8s.api.core.v1.ServiceSpec", core_ServiceSpec_f,
                                            PB_N(core_ServiceSpec_f)};
static const pb_field_t core_Service_f[] = {
    {1, "metadata", PB_MSG, 0, &m_meta_ObjectMeta},
    {2, "spec", PB_MSG, F_OMIT, &m_core_ServiceSpec},
    {3, "status", PB_SKIP, F_OMIT, NULL},
};
static const pb_msg_t m_core_Service = {"io.k8s.api.core.v1.Service", core_Service_f,
                                        PB_N(core_Service_f)};
static const pb_field_t core_HostPathVolumeSource_f[] = {
    {1, "path", PB_STRING, 0, NULL},
    {2, "type", PB_STRING, F_PTR, NULL},
};
static const pb_msg_t m_core_HostPathVolumeSource = {"io.k8s.api.core.v1.HostPathVolumeSource",
                                                     core_HostPathVolumeSource_f,
                                                     PB_N(core_HostPathVolumeSource_f)};
static const pb_field_t core_EmptyDirVolumeSource_f[] = {
    {1, "medium", PB_STRING, F_OMIT, NULL},
    {2, "sizeLimit", PB_QUANTITY, F_PTR, NULL},
    {3, "mode", PB_INT32, F_PTR, NULL},
};
static const pb_msg_t m_core_EmptyDirVolumeSource = {"io.k8s.api.core.v1.EmptyDirVolumeSource",
                                                     core_EmptyDirVolumeSource_f,
                                                     PB_N(core_EmptyDirVolumeSource_f)};
static const pb_field_t core_KeyToPath_f[] = {
    {1, "key", PB_STRING, 0, NULL},
    {2, "path", PB_STRING, 0, NULL},
    {3, "mode", PB_INT32, F_PTR, NULL},
    {4, "user", PB_INT64, F_PTR, NULL},
};
static const pb_msg_t m_core_KeyToPath = {"io.k8s.api.core.v1.KeyToPath", core_KeyToPath_f,
                                          PB_N(core_KeyToPath_f)};
static const pb_field_t core_SecretVolumeSource_f[] = {
    {1, "secretName", PB_STRING, F_OMIT, NULL},
    {2, "items", PB_MSG, F_REP | F_OMIT, &m_core_KeyToPath},
    {3, "defaultMode", PB_INT32, F_PTR, NULL},
    {4, "optional", PB_BOOL, F_PTR, NULL},
    {5, "defaultUser", PB_INT64, F_PTR, NULL},
};
static const pb_msg_t m_core_SecretVolumeSource = {"io.k8s.api.core.v1.SecretVolumeSource",
                                                   core_SecretVolumeSource_f,
                                                   PB_N(core_SecretVolumeSource_f)};
static const pb_field_t core_LocalObjectReference_f[] = {
    {1, "name", PB_STRING, F_OMIT, NULL},
};
static const pb_msg_t m_core_LocalObjectReference = {"io.k8s.api.core.v1.LocalObjectReference",
                                                     core_LocalObjectReference_f,
                                                     PB_N(core_LocalObjectReference_f)};
static const pb_field_t core_ConfigMapVolumeSource_f[] = {
    {1, "localObjectReference", PB_MSG, F_INLINE, &m_core_LocalObjectReference},
    {2, "items", PB_MSG, F_REP | F_OMIT, &m_core_KeyToPath},
    {3, "defaultMode", PB_INT32, F_PTR, NULL},
    {4, "optional", PB_BOOL, F_PTR, NULL},
    {5, "defaultUser", PB_INT64, F_PTR, NULL},
};
static const pb_msg_t m_core_ConfigMapVolumeSource = {"io.k8s.api.core.v1.ConfigMapVolumeSource",
                                                      core_ConfigMapVolumeSource_f,
                                                      PB_N(core_ConfigMapVolumeSource_f)};
static const pb_field_t core_ObjectFieldSelector_f[] = {
    {1, "apiVersion", PB_STRING, F_OMIT, NULL},
    {2, "fieldPath", PB_STRING, 0, NULL},
};
static const pb_msg_t m_core_ObjectFieldSelector = {"io.k8s.api.core.v1.ObjectFieldSelector",
                                                    core_ObjectFieldSelector_f,
                                                    PB_N(core_ObjectFieldSelector_f)};
static const pb_field_t core_ResourceFieldSelector_f[] = {
    {1, "containerName", PB_STRING, F_OMIT, NULL},
    {2, "resource", PB_STRING, 0, NULL},
    {3, "divisor", PB_QUANTITY, F_PTR, NULL},
};
static const pb_msg_t m_core_ResourceFieldSelector = {"io.k8s.api.core.v1.ResourceFieldSelector",
                                                      core_ResourceFieldSelector_f,
                                                      PB_N(core_ResourceFieldSelector_f)};
static const pb_field_t core_DownwardAPIVolumeFile_f[] = {
    {1, "path", PB_STRING, 0, NULL},
    {2, "fieldRef", PB_MSG, F_PTR, &m_core_ObjectFieldSelector},
    {3, "resourceFieldRef", PB_MSG, F_PTR, &m_core_ResourceFieldSelector},
    {4, "mode", PB_INT32, F_PTR, NULL},
};
static const pb_msg_t m_core_DownwardAPIVolumeFile = {"io.k8s.api.core.v1.DownwardAPIVolumeFile",
                                                      core_DownwardAPIVolumeFile_f,
                                                      PB_N(core_DownwardAPIVolumeFile_f)};
static const pb_field_t core_DownwardAPIVolumeSource_f[] = {
    {1, "items", PB_MSG, F_REP | F_OMIT, &m_core_DownwardAPIVolumeFile},
    {2, "defaultMode", PB_INT32, F_PTR, NULL},
};
static const pb_msg_t m_core_DownwardAPIVolumeSource = {
    "io.k8s.api.core.v1.DownwardAPIVolumeSource", core_DownwardAPIVolumeSource_f,
    PB_N(core_DownwardAPIVolumeSource_f)};
static const pb_field_t core_HostAlias_f[] = {
    {1, "ip", PB_STRING, 0, NULL},
    {2, "hostnames", PB_STRING, F_REP | F_OMIT, NULL},
};
static const pb_msg_t m_core_HostAlias = {"io.k8s.api.core.v1.HostAlias", core_HostAlias_f,
                                          PB_N(core_HostAlias_f)};
static const pb_field_t core_VolumeSource_f[] = {
    {1, "hostPath", PB_MSG, F_PTR, &m_core_HostPathVolumeSource},
    {2, "emptyDir", PB_MSG, F_PTR, &m_core_EmptyDirVolumeSource},
    {3, "gcePersistentDisk", PB_MSG, F_PTR, NULL},
    {4, "awsElasticBlockStore", PB_MSG, F_PTR, NULL},
    {5, "gitRepo", PB_MSG, F_PTR, NULL},
    {6, "secret", PB_MSG, F_PTR, &m_core_SecretVolumeSource},
    {7, "nfs", PB_MSG, F_PTR, NULL},
    {8, "iscsi", PB_MSG, F_PTR, NULL},
    {9, "glusterfs", PB_MSG, F_PTR, NULL},
    {10, "persistentVolumeClaim", PB_MSG, F_PTR, NULL},
    {11, "rbd", PB_MSG, F_PTR, NULL},
    {12, "flexVolume", PB_MSG, F_PTR, NULL},
    {13, "cinder", PB_MSG, F_PTR, NULL},
    {14, "cephfs", PB_MSG, F_PTR, NULL},
    {15, "flocker", PB_MSG, F_PTR, NULL},
    {16, "downwardAPI", PB_MSG, F_PTR, &m_core_DownwardAPIVolumeSource},
    {17, "fc", PB_MSG, F_PTR, NULL},
    {18, "azureFile", PB_MSG, F_PTR, NULL},
    {19, "configMap", PB_MSG, F_PTR, &m_core_ConfigMapVolumeSource},
    {20, "vsphereVolume", PB_MSG, F_PTR, NULL},
    {21, "quobyte", PB_MSG, F_PTR, NULL},
    {22, "azureDisk", PB_MSG, F_PTR, NULL},
    {23, "photonPersistentDisk", PB_MSG, F_PTR, NULL},
    {24, "portworxVolume", PB_MSG, F_PTR, NULL},
    {25, "scaleIO", PB_MSG, F_PTR, NULL},
    {26, "projected", PB_MSG, F_PTR, NULL},
    {27, "storageos", PB_MSG, F_PTR, NULL},
    {28, "csi", PB_MSG, F_PTR, NULL},
    {29, "ephemeral", PB_MSG, F_PTR, NULL},
    {30, "image", PB_MSG, F_PTR, NULL},
};
static const pb_msg_t m_core_VolumeSource = {"io.k8s.api.core.v1.VolumeSource", core_VolumeSource_f,
                                             PB_N(core_VolumeSource_f)};
static const pb_field_t core_Volume_f[] = {
    {1, "name", PB_STRING, 0, NULL},
    {2, "volumeSource", PB_MSG, F_INLINE, &m_core_VolumeSource},
};
static const pb_msg_t m_core_Volume = {"io.k8s.api.core.v1.Volume", core_Volume_f,
                                       PB_N(core_Volume_f)};
static const pb_field_t core_ContainerPort_f[] = {
    {1, "name", PB_STRING, F_OMIT, NULL},    {2, "hostPort", PB_INT32, F_OMIT, NULL},
    {3, "containerPort", PB_INT32, 0, NULL}, {4, "protocol", PB_STRING, F_OMIT, NULL},
    {5, "hostIP", PB_STRING, F_OMIT, NULL},
};
static const pb_msg_t m_core_ContainerPort = {"io.k8s.api.core.v1.ContainerPort",
                                              core_ContainerPort_f, PB_N(core_ContainerPort_f)};
static const pb_field_t core_ConfigMapEnvSource_f[] = {
    {1, "localObjectReference", PB_MSG, F_INLINE, &m_core_LocalObjectReference},
    {2, "optional", PB_BOOL, F_PTR, NULL},
};
static const pb_msg_t m_core_ConfigMapEnvSource = {"io.k8s.api.core.v1.ConfigMapEnvSource",
                                                   core_ConfigMapEnvSource_f,
                                                   PB_N(core_ConfigMapEnvSource_f)};
static const pb_field_t core_SecretEnvSource_f[] = {
    {1, "localObjectReference", PB_MSG, F_INLINE, &m_core_LocalObjectReference},
    {2, "optional", PB_BOOL, F_PTR, NULL},
};
static const pb_msg_t m_core_SecretEnvSource = {
    "io.k8s.api.core.v1.SecretEnvSource", core_SecretEnvSource_f, PB_N(core_SecretEnvSource_f)};
static const pb_field_t core_EnvFromSource_f[] = {
    {1, "prefix", PB_STRING, F_OMIT, NULL},
    {2, "configMapRef", PB_MSG, F_PTR, &m_core_ConfigMapEnvSource},
    {3, "secretRef", PB_MSG, F_PTR, &m_core_SecretEnvSource},
};
static const pb_msg_t m_core_EnvFromSource = {"io.k8s.api.core.v1.EnvFromSource",
                                              core_EnvFromSource_f, PB_N(core_EnvFromSource_f)};
static const pb_field_t core_ConfigMapKeySelector_f[] = {
    {1, "localObjectReference", PB_MSG, F_INLINE, &m_core_LocalObjectReference},
    {2, "key", PB_STRING, 0, NULL},
    {3, "optional", PB_BOOL, F_PTR, NULL},
};
static const pb_msg_t m_core_ConfigMapKeySelector = {"io.k8s.api.core.v1.ConfigMapKeySelector",
                                                     core_ConfigMapKeySelector_f,
                                                     PB_N(core_ConfigMapKeySelector_f)};
static const pb_field_t core_SecretKeySelector_f[] = {
    {1, "localObjectReference", PB_MSG, F_INLINE, &m_core_LocalObjectReference},
    {2, "key", PB_STRING, 0, NULL},
    {3, "optional", PB_BOOL, F_PTR, NULL},
};
static const pb_msg_t m_core_SecretKeySelector = {"io.k8s.api.core.v1.SecretKeySelector",
                                                  core_SecretKeySelector_f,
                                                  PB_N(core_SecretKeySelector_f)};
static const pb_field_t core_EnvVarSource_f[] = {
    {1, "fieldRef", PB_MSG, F_PTR, &m_core_ObjectFieldSelector},
    {2, "resourceFieldRef", PB_MSG, F_PTR, &m_core_ResourceFieldSelector},
    {3, "configMapKeyRef", PB_MSG, F_PTR, &m_core_ConfigMapKeySelector},
    {4, "secretKeyRef", PB_MSG, F_PTR, &m_core_SecretKeySelector},
    {5, "fileKeyRef", PB_MSG, F_PTR, NULL},
};
static const pb_msg_t m_core_EnvVarSource = {"io.k8s.api.core.v1.EnvVarSource", core_EnvVarSource_f,
                                             PB_N(core_EnvVarSource_f)};
static const pb_field_t core_EnvVar_f[] = {
    {1, "name", PB_STRING, 0, NULL},
    {2, "value", PB_STRING, F_OMIT, NULL},
    {3, "valueFrom", PB_MSG, F_PTR, &m_core_EnvVarSource},
};
static const pb_msg_t m_core_EnvVar = {"io.k8s.api.core.v1.EnvVar", core_EnvVar_f,
                                       PB_N(core_EnvVar_f)};
static const pb_field_t core_ResourceRequirements_f[] = {
    {1, "limits", PB_QUANTITY, F_MAP | F_OMIT, NULL},
    {2, "requests", PB_QUANTITY, F_MAP | F_OMIT, NULL},
    {3, "claims", PB_MSG, F_REP | F_OMIT, NULL},
};
static const pb_msg_t m_core_ResourceRequirements = {"io.k8s.api.core.v1.ResourceRequirements",
                                                     core_ResourceRequirements_f,
                                                     PB_N(core_ResourceRequirements_f)};
static const pb_field_t core_VolumeMount_f[] = {
    {1, "name", PB_STRING, 0, NULL},
    {2, "readOnly", PB_BOOL, F_OMIT, NULL},
    {3, "mountPath", PB_STRING, 0, NULL},
    {4, "subPath", PB_STRING, F_OMIT, NULL},
    {5, "mountPropagation", PB_STRING, F_PTR, NULL},
    {6, "subPathExpr", PB_STRING, F_OMIT, NULL},
    {7, "recursiveReadOnly", PB_STRING, F_PTR, NULL},
    {8, "bindMountOptions", PB_STRING, F_REP | F_OMIT, NULL},
};
static const pb_msg_t m_core_VolumeMount = {"io.k8s.api.core.v1.VolumeMount", core_VolumeMount_f,
                                            PB_N(core_VolumeMount_f)};
static const pb_field_t core_ExecAction_f[] = {
    {1, "command", PB_STRING, F_REP | F_OMIT, NULL},
};
static const pb_msg_t m_core_ExecAction = {"io.k8s.api.core.v1.ExecAction", core_ExecAction_f,
                                           PB_N(core_ExecAction_f)};
static const pb_field_t core_HTTPHeader_f[] = {
    {1, "name", PB_STRING, 0, NULL},
    {2, "value", PB_STRING, 0, NULL},
};
static const pb_msg_t m_core_HTTPHeader = {"io.k8s.api.core.v1.HTTPHeader", core_HTTPHeader_f,
                                           PB_N(core_HTTPHeader_f)};
static const pb_field_t core_HTTPGetAction_f[] = {
    {1, "path", PB_STRING, F_OMIT, NULL},
    {2, "port", PB_INTORSTR, 0, NULL},
    {3, "host", PB_STRING, F_OMIT, NULL},
    {4, "scheme", PB_STRING, F_OMIT, NULL},
    {5, "httpHeaders", PB_MSG, F_REP | F_OMIT, &m_core_HTTPHeader},
    {6, "protocol", PB_STRING, F_PTR, NULL},
};
static const pb_msg_t m_core_HTTPGetAction = {"io.k8s.api.core.v1.HTTPGetAction",
                                              core_HTTPGetAction_f, PB_N(core_HTTPGetAction_f)};
static const pb_field_t core_TCPSocketAction_f[] = {
    {1, "port", PB_INTORSTR, 0, NULL},
    {2, "host", PB_STRING, F_OMIT, NULL},
};
static const pb_msg_t m_core_TCPSocketAction = {
    "io.k8s.api.core.v1.TCPSocketAction", core_TCPSocketAction_f, PB_N(core_TCPSocketAction_f)};
static const pb_field_t core_ProbeHandler_f[] = {
    {1, "exec", PB_MSG, F_PTR, &m_core_ExecAction},
    {2, "httpGet", PB_MSG, F_PTR, &m_core_HTTPGetAction},
    {3, "tcpSocket", PB_MSG, F_PTR, &m_core_TCPSocketAction},
    {4, "grpc", PB_MSG, F_PTR, NULL},
};
static const pb_msg_t m_core_ProbeHandler = {"io.k8s.api.core.v1.ProbeHandler", core_ProbeHandler_f,
                                             PB_N(core_ProbeHandler_f)};
static const pb_field_t core_Probe_f[] = {
    {1, "handler", PB_MSG, F_INLINE, &m_core_ProbeHandler},
    {2, "initialDelaySeconds", PB_INT32, F_OMIT, NULL},
    {3, "timeoutSeconds", PB_INT32, F_OMIT, NULL},
    {4, "periodSeconds", PB_INT32, F_OMIT, NULL},
    {5, "successThreshold", PB_INT32, F_OMIT, NULL},
    {6, "failureThreshold", PB_INT32, F_OMIT, NULL},
    {7, "terminationGracePeriodSeconds", PB_INT64, F_PTR, NULL},
};
static const pb_msg_t m_core_Probe = {"io.k8s.api.core.v1.Probe", core_Probe_f, PB_N(core_Probe_f)};
static const pb_field_t core_Capabilities_f[] = {
    {1, "add", PB_STRING, F_REP | F_OMIT, NULL},
    {2, "drop", PB_STRING, F_REP | F_OMIT, NULL},
};
static const pb_msg_t m_core_Capabilities = {"io.k8s.api.core.v1.Capabilities", core_Capabilities_f,
                                             PB_N(core_Capabilities_f)};
static const pb_field_t core_SeccompProfile_f[] = {
    {1, "type", PB_STRING, 0, NULL},
    {2, "localhostProfile", PB_STRING, F_PTR, NULL},
};
static const pb_msg_t m_core_SeccompProfile = {"io.k8s.api.core.v1.SeccompProfile",
                                               core_SeccompProfile_f, PB_N(core_SeccompProfile_f)};
static const pb_field_t core_SecurityContext_f[] = {
    {1, "capabilities", PB_MSG, F_PTR, &m_core_Capabilities},
    {2, "privileged", PB_BOOL, F_PTR, NULL},
    {3, "seLinuxOptions", PB_MSG, F_PTR, NULL},
    {4, "runAsUser", PB_INT64, F_PTR, NULL},
    {5, "runAsNonRoot", PB_BOOL, F_PTR, NULL},
    {6, "readOnlyRootFilesystem", PB_BOOL, F_PTR, NULL},
    {7, "allowPrivilegeEscalation", PB_BOOL, F_PTR, NULL},
    {8, "runAsGroup", PB_INT64, F_PTR, NULL},
    {9, "procMount", PB_STRING, F_PTR, NULL},
    {10, "windowsOptions", PB_MSG, F_PTR, NULL},
    {11, "seccompProfile", PB_MSG, F_PTR, &m_core_SeccompProfile},
    {12, "appArmorProfile", PB_MSG, F_PTR, NULL},
};
static const pb_msg_t m_core_SecurityContext = {
    "io.k8s.api.core.v1.SecurityContext", core_SecurityContext_f, PB_N(core_SecurityContext_f)};
static const pb_field_t core_Container_f[] = {
    {1, "name", PB_STRING, 0, NULL},
    {2, "image", PB_STRING, F_OMIT, NULL},
    {3, "command", PB_STRING, F_REP | F_OMIT, NULL},
    {4, "args", PB_STRING, F_REP | F_OMIT, NULL},
    {5, "workingDir", PB_STRING, F_OMIT, NULL},
    {6, "ports", PB_MSG, F_REP | F_OMIT, &m_core_ContainerPort},
    {7, "env", PB_MSG, F_REP | F_OMIT, &m_core_EnvVar},
    {8, "resources", PB_MSG, F_OMIT, &m_core_ResourceRequirements},
    {9, "volumeMounts", PB_MSG, F_REP | F_OMIT, &m_core_VolumeMount},
    {10, "livenessProbe", PB_MSG, F_PTR, &m_core_Probe},
    {11, "readinessProbe", PB_MSG, F_PTR, &m_core_Probe},
    {12, "lifecycle", PB_MSG, F_PTR, NULL},
    {13, "terminationMessagePath", PB_STRING, F_OMIT, NULL},
    {14, "imagePullPolicy", PB_STRING, F_OMIT, NULL},
    {15, "securityContext", PB_MSG, F_PTR, &m_core_SecurityContext},
    {16, "stdin", PB_BOOL, F_OMIT, NULL},
    {17, "stdinOnce", PB_BOOL, F_OMIT, NULL},
    {18, "tty", PB_BOOL, F_OMIT, NULL},
    {19, "envFrom", PB_MSG, F_REP | F_OMIT, &m_core_EnvFromSource},
    {20, "terminationMessagePolicy", PB_STRING, F_OMIT, NULL},
    {21, "volumeDevices", PB_MSG, F_REP | F_OMIT, NULL},
    {22, "startupProbe", PB_MSG, F_PTR, &m_core_Probe},
    {23, "resizePolicy", PB_MSG, F_REP | F_OMIT, NULL},
    {24, "restartPolicy", PB_STRING, F_PTR, NULL},
    {25, "restartPolicyRules", PB_MSG, F_REP | F_OMIT, NULL},
};
static const pb_msg_t m_core_Container = {"io.k8s.api.core.v1.Container", core_Container_f,
                                          PB_N(core_Container_f)};
static const pb_field_t core_PodSecurityContext_f[] = {
    {1, "seLinuxOptions", PB_MSG, F_PTR, NULL},
    {2, "runAsUser", PB_INT64, F_PTR, NULL},
    {3, "runAsNonRoot", PB_BOOL, F_PTR, NULL},
    {4, "supplementalGroups", PB_INT64, F_REP | F_OMIT, NULL},
    {5, "fsGroup", PB_INT64, F_PTR, NULL},
    {6, "runAsGroup", PB_INT64, F_PTR, NULL},
    {7, "sysctls", PB_MSG, F_REP | F_OMIT, NULL},
    {8, "windowsOptions", PB_MSG, F_PTR, NULL},
    {9, "fsGroupChangePolicy", PB_STRING, F_PTR, NULL},
    {10, "seccompProfile", PB_MSG, F_PTR, &m_core_SeccompProfile},
    {11, "appArmorProfile", PB_MSG, F_PTR, NULL},
    {12, "supplementalGroupsPolicy", PB_STRING, F_PTR, NULL},
    {13, "seLinuxChangePolicy", PB_STRING, F_PTR, NULL},
};
static const pb_msg_t m_core_PodSecurityContext = {"io.k8s.api.core.v1.PodSecurityContext",
                                                   core_PodSecurityContext_f,
                                                   PB_N(core_PodSecurityContext_f)};
static const pb_field_t core_Toleration_f[] = {
    {1, "key", PB_STRING, F_OMIT, NULL},
    {2, "operator", PB_STRING, F_OMIT, NULL},
    {3, "value", PB_STRING, F_OMIT, NULL},
    {4, "effect", PB_STRING, F_OMIT, NULL},
    {5, "tolerationSeconds", PB_INT64, F_PTR, NULL},
};
static const pb_msg_t m_core_Toleration = {"io.k8s.api.core.v1.Toleration", core_Toleration_f,
                                           PB_N(core_Toleration_f)};
static const pb_field_t core_NodeSelectorRequirement_f[] = {
    {1, "key", PB_STRING, 0, NULL},
    {2, "operator", PB_STRING, 0, NULL},
    {3, "values", PB_STRING, F_REP | F_OMIT, NULL},
};
static const pb_msg_t m_core_NodeSelectorRequirement = {
    "io.k8s.api.core.v1.NodeSelectorRequirement", core_NodeSelectorRequirement_f,
    PB_N(core_NodeSelectorRequirement_f)};
static const pb_field_t core_NodeSelectorTerm_f[] = {
    {1, "matchExpressions", PB_MSG, F_REP | F_OMIT, &m_core_NodeSelectorRequirement},
    {2, "matchFields", PB_MSG, F_REP | F_OMIT, &m_core_NodeSelectorRequirement},
};
static const pb_msg_t m_core_NodeSelectorTerm = {
    "io.k8s.api.core.v1.NodeSelectorTerm", core_NodeSelectorTerm_f, PB_N(core_NodeSelectorTerm_f)};
static const pb_field_t core_NodeSelector_f[] = {
    {1, "nodeSelectorTerms", PB_MSG, F_REP, &m_core_NodeSelectorTerm},
};
static const pb_msg_t m_core_NodeSelector = {"io.k8s.api.core.v1.NodeSelector", core_NodeSelector_f,
                                             PB_N(core_NodeSelector_f)};
static const pb_field_t core_PreferredSchedulingTerm_f[] = {
    {1, "weight", PB_INT32, 0, NULL},
    {2, "preference", PB_MSG, 0, &m_core_NodeSelectorTerm},
};
static const pb_msg_t m_core_PreferredSchedulingTerm = {
    "io.k8s.api.core.v1.PreferredSchedulingTerm", core_PreferredSchedulingTerm_f,
    PB_N(core_PreferredSchedulingTerm_f)};
static const pb_field_t core_NodeAffinity_f[] = {
    {1, "requiredDuringSchedulingIgnoredDuringExecution", PB_MSG, F_PTR, &m_core_NodeSelector},
    {2, "preferredDuringSchedulingIgnoredDuringExecution", PB_MSG, F_REP | F_OMIT,
     &m_core_PreferredSchedulingTerm},
};
static const pb_msg_t m_core_NodeAffinity = {"io.k8s.api.core.v1.NodeAffinity", core_NodeAffinity_f,
                                             PB_N(core_NodeAffinity_f)};
static const pb_field_t core_PodAffinityTerm_f[] = {
    {1, "labelSelector", PB_MSG, F_PTR, &m_meta_LabelSelector},
    {2, "namespaces", PB_STRING, F_REP | F_OMIT, NULL},
    {3, "topologyKey", PB_STRING, 0, NULL},
    {4, "namespaceSelector", PB_MSG, F_PTR, &m_meta_LabelSelector},
    {5, "matchLabelKeys", PB_STRING, F_REP | F_OMIT, NULL},
    {6, "mismatchLabelKeys", PB_STRING, F_REP | F_OMIT, NULL},
};
static const pb_msg_t m_core_PodAffinityTerm = {
    "io.k8s.api.core.v1.PodAffinityTerm", core_PodAffinityTerm_f, PB_N(core_PodAffinityTerm_f)};
static const pb_field_t core_WeightedPodAffinityTerm_f[] = {
    {1, "weight", PB_INT32, 0, NULL},
    {2, "podAffinityTerm", PB_MSG, 0, &m_core_PodAffinityTerm},
};
static const pb_msg_t m_core_WeightedPodAffinityTerm = {
    "io.k8s.api.core.v1.WeightedPodAffinityTerm", core_WeightedPodAffinityTerm_f,
    PB_N(core_WeightedPodAffinityTerm_f)};
/* PodAffinity and PodAntiAffinity have the same fields. */
static const pb_field_t core_PodAffinity_f[] = {
    {1, "requiredDuringSchedulingIgnoredDuringExecution", PB_MSG, F_REP | F_OMIT,
     &m_core_PodAffinityTerm},
    {2, "preferredDuringSchedulingIgnoredDuringExecution", PB_MSG, F_REP | F_OMIT,
     &m_core_WeightedPodAffinityTerm},
};
static const pb_msg_t m_core_PodAffinity = {"io.k8s.api.core.v1.PodAffinity", core_PodAffinity_f,
                                            PB_N(core_PodAffinity_f)};
static const pb_msg_t m_core_PodAntiAffinity = {"io.k8s.api.core.v1.PodAntiAffinity",
                                                core_PodAffinity_f, PB_N(core_PodAffinity_f)};
static const pb_field_t core_Affinity_f[] = {
    {1, "nodeAffinity", PB_MSG, F_PTR, &m_core_NodeAffinity},
    {2, "podAffinity", PB_MSG, F_PTR, &m_core_PodAffinity},
    {3, "podAntiAffinity", PB_MSG, F_PTR, &m_core_PodAntiAffinity},
};
static const pb_msg_t m_core_Affinity = {"io.k8s.api.core.v1.Affinity", core_Affinity_f,
                                         PB_N(core_Affinity_f)};
static const pb_field_t core_TopologySpreadConstraint_f[] = {
    {1, "maxSkew", PB_INT32, 0, NULL},
    {2, "topologyKey", PB_STRING, 0, NULL},
    {3, "whenUnsatisfiable", PB_STRING, 0, NULL},
    {4, "labelSelector", PB_MSG, F_PTR, &m_meta_LabelSelector},
    {5, "minDomains", PB_INT32, F_PTR, NULL},
    {6, "nodeAffinityPolicy", PB_STRING, F_PTR, NULL},
    {7, "nodeTaintsPolicy", PB_STRING, F_PTR, NULL},
    {8, "matchLabelKeys", PB_STRING, F_REP | F_OMIT, NULL},
};
static const pb_msg_t m_core_TopologySpreadConstraint = {
    "io.k8s.api.core.v1.TopologySpreadConstraint", core_TopologySpreadConstraint_f,
    PB_N(core_TopologySpreadConstraint_f)};
static const pb_field_t core_PodSpec_f[] = {
    {1, "volumes", PB_MSG, F_REP | F_OMIT, &m_core_Volume},
    {2, "containers", PB_MSG, F_REP | F_OMIT, &m_core_Container},
    {3, "restartPolicy", PB_STRING, F_OMIT, NULL},
    {4, "terminationGracePeriodSeconds", PB_INT64, F_PTR, NULL},
    {5, "activeDeadlineSeconds", PB_INT64, F_PTR, NULL},
    {6, "dnsPolicy", PB_STRING, F_OMIT, NULL},
    {7, "nodeSelector", PB_STRING, F_MAP | F_OMIT, NULL},
    {8, "serviceAccountName", PB_STRING, F_OMIT, NULL},
    {9, "serviceAccount", PB_STRING, F_OMIT, NULL},
    {10, "nodeName", PB_STRING, F_OMIT, NULL},
    {11, "hostNetwork", PB_BOOL, F_OMIT, NULL},
    {12, "hostPID", PB_BOOL, F_OMIT, NULL},
    {13, "hostIPC", PB_BOOL, F_OMIT, NULL},
    {14, "securityContext", PB_MSG, F_PTR, &m_core_PodSecurityContext},
    {15, "imagePullSecrets", PB_MSG, F_REP | F_OMIT, &m_core_LocalObjectReference},
    {16, "hostname", PB_STRING, F_OMIT, NULL},
    {17, "subdomain", PB_STRING, F_OMIT, NULL},
    {18, "affinity", PB_MSG, F_PTR, &m_core_Affinity},
    {19, "schedulerName", PB_STRING, F_OMIT, NULL},
    {20, "initContainers", PB_MSG, F_REP | F_OMIT, &m_core_Container},
    {21, "automountServiceAccountToken", PB_BOOL, F_PTR, NULL},
    {22, "tolerations", PB_MSG, F_REP | F_OMIT, &m_core_Toleration},
    {23, "hostAliases", PB_MSG, F_REP | F_OMIT, &m_core_HostAlias},
    {24, "priorityClassName", PB_STRING, F_OMIT, NULL},
    {25, "priority", PB_INT32, F_PTR, NULL},
    {26, "dnsConfig", PB_MSG, F_PTR, NULL},
    {27, "shareProcessNamespace", PB_BOOL, F_PTR, NULL},
    {28, "readinessGates", PB_MSG, F_REP | F_OMIT, NULL},
    {29, "runtimeClassName", PB_STRING, F_PTR, NULL},
    {30, "enableServiceLinks", PB_BOOL, F_PTR, NULL},
    {31, "preemptionPolicy", PB_STRING, F_PTR, NULL},
    {32, "overhead", PB_QUANTITY, F_MAP | F_OMIT, NULL},
    {33, "topologySpreadConstraints", PB_MSG, F_REP | F_OMIT, &m_core_TopologySpreadConstraint},
    {34, "ephemeralContainers", PB_MSG, F_REP | F_OMIT, NULL},
    {35, "setHostnameAsFQDN", PB_BOOL, F_PTR, NULL},
    {36, "os", PB_MSG, F_PTR, NULL},
    {37, "hostUsers", PB_BOOL, F_PTR, NULL},
    {38, "schedulingGates", PB_MSG, F_REP | F_OMIT, NULL},
    {39, "resourceClaims", PB_MSG, F_REP | F_OMIT, NULL},
    {40, "resources", PB_MSG, F_PTR, &m_core_ResourceRequirements},
    {41, "hostnameOverride", PB_STRING, F_PTR, NULL},
    {43, "schedulingGroup", PB_MSG, F_PTR, NULL},
    {44, "evictionResponders", PB_MSG, F_REP | F_OMIT, NULL},
};
static const pb_msg_t m_core_PodSpec = {"io.k8s.api.core.v1.PodSpec", core_PodSpec_f,
                                        PB_N(core_PodSpec_f)};
static const pb_field_t core_Pod_f[] = {
    {1, "metadata", PB_MSG, 0, &m_meta_ObjectMeta},
    {2, "spec", PB_MSG, F_OMIT, &m_core_PodSpec},
    {3, "status", PB_SKIP, F_OMIT, NULL},
};
static const pb_msg_t m_core_Pod = {"io.k8s.api.core.v1.Pod", core_Pod_f, PB_N(core_Pod_f)};
static const pb_field_t meta_LabelSelectorRequirement_f[] = {
    {1, "key", PB_STRING, 0, NULL},
    {2, "operator", PB_STRING, 0, NULL},
    {3, "values", PB_STRING, F_REP | F_OMIT, NULL},
};
static const pb_msg_t m_meta_LabelSelectorRequirement = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement",
    meta_LabelSelectorRequirement_f, PB_N(meta_LabelSelectorRequirement_f)};
static const pb_field_t meta_LabelSelector_f[] = {
    {1, "matchLabels", PB_STRING, F_MAP | F_OMIT, NULL},
    {2, "matchExpressions", PB_MSG, F_REP | F_OMIT, &m_meta_LabelSelectorRequirement},
};
static const pb_msg_t m_meta_LabelSelector = {"io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
                                              meta_LabelSelector_f, PB_N(meta_LabelSelector_f)};
static const pb_field_t core_PodTemplateSpec_f[] = {
    {1, "metadata", PB_MSG, 0, &m_meta_ObjectMeta},
    {2, "spec", PB_MSG, F_OMIT, &m_core_PodSpec},
};
static const pb_msg_t m_core_PodTemplateSpec = {
    "io.k8s.api.core.v1.PodTemplateSpec", core_PodTemplateSpec_f, PB_N(core_PodTemplateSpec_f)};
static const pb_field_t apps_RollingUpdateDeployment_f[] = {
    {1, "maxUnavailable", PB_INTORSTR, F_PTR, NULL},
    {2, "maxSurge", PB_INTORSTR, F_PTR, NULL},
};
static const pb_msg_t m_apps_RollingUpdateDeployment = {
    "io.k8s.api.apps.v1.RollingUpdateDeployment", apps_RollingUpdateDeployment_f,
    PB_N(apps_RollingUpdateDeployment_f)};
static const pb_field_t apps_DeploymentStrategy_f[] = {
    {1, "type", PB_STRING, F_OMIT, NULL},
    {2, "rollingUpdate", PB_MSG, F_PTR, &m_apps_RollingUpdateDeployment},
};
static const pb_msg_t m_apps_DeploymentStrategy = {"io.k8s.api.apps.v1.DeploymentStrategy",
                                                   apps_DeploymentStrategy_f,
                                                   PB_N(apps_DeploymentStrategy_f)};
static const pb_field_t apps_DeploymentSpec_f[] = {
    {1, "replicas", PB_INT32, F_PTR, NULL},
    {2, "selector", PB_MSG, F_PTR, &m_meta_LabelSelector},
    {3, "template", PB_MSG, 0, &m_core_PodTemplateSpec},
    {4, "strategy", PB_MSG, 0, &m_apps_DeploymentStrategy},
    {5, "minReadySeconds", PB_INT32, F_OMIT, NULL},
    {6, "revisionHistoryLimit", PB_INT32, F_PTR, NULL},
    {7, "paused", PB_BOOL, F_OMIT, NULL},
    {9, "progressDeadlineSeconds", PB_INT32, F_PTR, NULL},
};
static const pb_msg_t m_apps_DeploymentSpec = {"io.k8s.api.apps.v1.DeploymentSpec",
                                               apps_DeploymentSpec_f, PB_N(apps_DeploymentSpec_f)};
static const pb_field_t apps_Deployment_f[] = {
    {1, "metadata", PB_MSG, 0, &m_meta_ObjectMeta},
    {2, "spec", PB_MSG, F_OMIT, &m_apps_DeploymentSpec},
    {3, "status", PB_SKIP, F_OMIT, NULL},
};
static const pb_msg_t m_apps_Deployment = {"io.k8s.api.apps.v1.Deployment", apps_Deployment_f,
                                           PB_N(apps_Deployment_f)};
static const pb_field_t apps_RollingUpdateDaemonSet_f[] = {
    {1, "maxUnavailable", PB_INTORSTR, F_PTR, NULL},
    {2, "maxSurge", PB_INTORSTR, F_PTR, NULL},
};
static const pb_msg_t m_apps_RollingUpdateDaemonSet = {"io.k8s.api.apps.v1.RollingUpdateDaemonSet",
                                                       apps_RollingUpdateDaemonSet_f,
                                                       PB_N(apps_RollingUpdateDaemonSet_f)};
static const pb_field_t apps_DaemonSetUpdateStrategy_f[] = {
    {1, "type", PB_STRING, F_OMIT, NULL},
    {2, "rollingUpdate", PB_MSG, F_PTR, &m_apps_RollingUpdateDaemonSet},
};
static const pb_msg_t m_apps_DaemonSetUpdateStrategy = {
    "io.k8s.api.apps.v1.DaemonSetUpdateStrategy", apps_DaemonSetUpdateStrategy_f,
    PB_N(apps_DaemonSetUpdateStrategy_f)};
static const pb_field_t apps_DaemonSetSpec_f[] = {
    {1, "selector", PB_MSG, F_PTR, &m_meta_LabelSelector},
    {2, "template", PB_MSG, 0, &m_core_PodTemplateSpec},
    {3, "updateStrategy", PB_MSG, F_OMIT, &m_apps_DaemonSetUpdateStrategy},
    {4, "minReadySeconds", PB_INT32, F_OMIT, NULL},
    {6, "revisionHistoryLimit", PB_INT32, F_PTR, NULL},
};
static const pb_msg_t m_apps_DaemonSetSpec = {"io.k8s.api.apps.v1.DaemonSetSpec",
                                              apps_DaemonSetSpec_f, PB_N(apps_DaemonSetSpec_f)};
static const pb_field_t apps_DaemonSet_f[] = {
    {1, "metadata", PB_MSG, 0, &m_meta_ObjectMeta},
    {2, "spec", PB_MSG, F_OMIT, &m_apps_DaemonSetSpec},
    {3, "status", PB_SKIP, F_OMIT, NULL},
};
static const pb_msg_t m_apps_DaemonSet = {"io.k8s.api.apps.v1.DaemonSet", apps_DaemonSet_f,
                                          PB_N(apps_DaemonSet_f)};
static const pb_field_t autoscaling_CrossVersionObjectReference_f[] = {
    {1, "kind", PB_STRING, 0, NULL},
    {2, "name", PB_STRING, 0, NULL},
    {3, "apiVersion", PB_STRING, F_OMIT, NULL},
};
static const pb_msg_t m_autoscaling_CrossVersionObjectReference = {
    "io.k8s.api.autoscaling.v2.CrossVersionObjectReference",
    autoscaling_CrossVersionObjectReference_f, PB_N(autoscaling_CrossVersionObjectReference_f)};
static const pb_field_t autoscaling_MetricTarget_f[] = {
    {1, "type", PB_STRING, 0, NULL},
    {2, "value", PB_QUANTITY, F_PTR, NULL},
    {3, "averageValue", PB_QUANTITY, F_PTR, NULL},
    {4, "averageUtilization", PB_INT32, F_PTR, NULL},
};
static const pb_msg_t m_autoscaling_MetricTarget = {"io.k8s.api.autoscaling.v2.MetricTarget",
                                                    autoscaling_MetricTarget_f,
                                                    PB_N(autoscaling_MetricTarget_f)};
static const pb_field_t autoscaling_ResourceMetricSource_f[] = {
    {1, "name", PB_STRING, 0, NULL},
    {2, "target", PB_MSG, 0, &m_autoscaling_MetricTarget},
};
static const pb_msg_t m_autoscaling_ResourceMetricSource = {
    "io.k8s.api.autoscaling.v2.ResourceMetricSource", autoscaling_ResourceMetricSource_f,
    PB_N(autoscaling_ResourceMetricSource_f)};
static const pb_field_t autoscaling_MetricSpec_f[] = {
    {1, "type", PB_STRING, 0, NULL},
    {2, "object", PB_MSG, F_PTR, NULL},
    {3, "pods", PB_MSG, F_PTR, NULL},
    {4, "resource", PB_MSG, F_PTR, &m_autoscaling_ResourceMetricSource},
    {5, "external", PB_MSG, F_PTR, NULL},
    {7, "containerResource", PB_MSG, F_PTR, NULL},
};
static const pb_msg_t m_autoscaling_MetricSpec = {"io.k8s.api.autoscaling.v2.MetricSpec",
                                                  autoscaling_MetricSpec_f,
                                                  PB_N(autoscaling_MetricSpec_f)};
static const pb_field_t autoscaling_HPAScalingPolicy_f[] = {
    {1, "type", PB_STRING, 0, NULL},
    {2, "value", PB_INT32, 0, NULL},
    {3, "periodSeconds", PB_INT32, 0, NULL},
};
static const pb_msg_t m_autoscaling_HPAScalingPolicy = {
    "io.k8s.api.autoscaling.v2.HPAScalingPolicy", autoscaling_HPAScalingPolicy_f,
    PB_N(autoscaling_HPAScalingPolicy_f)};
static const pb_field_t autoscaling_HPAScalingRules_f[] = {
    {1, "selectPolicy", PB_STRING, F_PTR, NULL},
    {2, "policies", PB_MSG, F_REP | F_OMIT, &m_autoscaling_HPAScalingPolicy},
    {3, "stabilizationWindowSeconds", PB_INT32, F_PTR, NULL},
    {4, "tolerance", PB_QUANTITY, F_PTR, NULL},
};
static const pb_msg_t m_autoscaling_HPAScalingRules = {"io.k8s.api.autoscaling.v2.HPAScalingRules",
                                                       autoscaling_HPAScalingRules_f,
                                                       PB_N(autoscaling_HPAScalingRules_f)};
static const pb_field_t autoscaling_HorizontalPodAutoscalerBehavior_f[] = {
    {1, "scaleUp", PB_MSG, F_PTR, &m_autoscaling_HPAScalingRules},
    {2, "scaleDown", PB_MSG, F_PTR, &m_autoscaling_HPAScalingRules},
};
static const pb_msg_t m_autoscaling_HorizontalPodAutoscalerBehavior = {
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerBehavior",
    autoscaling_HorizontalPodAutoscalerBehavior_f,
    PB_N(autoscaling_HorizontalPodAutoscalerBehavior_f)};
static const pb_field_t autoscaling_HorizontalPodAutoscalerSpec_f[] = {
    {1, "scaleTargetRef", PB_MSG, 0, &m_autoscaling_CrossVersionObjectReference},
    {2, "minReplicas", PB_INT32, F_PTR, NULL},
    {3, "maxReplicas", PB_INT32, 0, NULL},
    {4, "metrics", PB_MSG, F_REP | F_OMIT, &m_autoscaling_MetricSpec},
    {5, "behavior", PB_MSG, F_PTR, &m_autoscaling_HorizontalPodAutoscalerBehavior},
};
static const pb_msg_t m_autoscaling_HorizontalPodAutoscalerSpec = {
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec",
    autoscaling_HorizontalPodAutoscalerSpec_f, PB_N(autoscaling_HorizontalPodAutoscalerSpec_f)};
static const pb_field_t autoscaling_HorizontalPodAutoscaler_f[] = {
    {1, "metadata", PB_MSG, 0, &m_meta_ObjectMeta},
    {2, "spec", PB_MSG, F_OMIT, &m_autoscaling_HorizontalPodAutoscalerSpec},
    {3, "status", PB_SKIP, F_OMIT, NULL},
};
static const pb_msg_t m_autoscaling_HorizontalPodAutoscaler = {
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler", autoscaling_HorizontalPodAutoscaler_f,
    PB_N(autoscaling_HorizontalPodAutoscaler_f)};
static const pb_field_t meta_Preconditions_f[] = {
    {1, "uid", PB_STRING, F_PTR, NULL},
    {2, "resourceVersion", PB_STRING, F_PTR, NULL},
};
static const pb_msg_t m_meta_Preconditions = {"io.k8s.apimachinery.pkg.apis.meta.v1.Preconditions",
                                              meta_Preconditions_f, PB_N(meta_Preconditions_f)};
static const pb_field_t meta_DeleteOptions_f[] = {
    {1, "gracePeriodSeconds", PB_INT64, F_PTR, NULL},
    {2, "preconditions", PB_MSG, F_PTR, &m_meta_Preconditions},
    {3, "orphanDependents", PB_BOOL, F_PTR, NULL},
    {4, "propagationPolicy", PB_STRING, F_PTR, NULL},
    {5, "dryRun", PB_STRING, F_REP | F_OMIT, NULL},
    {6, "ignoreStoreReadErrorWithClusterBreakingPotential", PB_BOOL, F_PTR, NULL},
};
static const pb_msg_t m_meta_DeleteOptions = {"io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
                                              meta_DeleteOptions_f, PB_N(meta_DeleteOptions_f)};
static const pb_field_t policy_Eviction_f[] = {
    {1, "metadata", PB_MSG, 0, &m_meta_ObjectMeta},
    {2, "deleteOptions", PB_MSG, F_PTR, &m_meta_DeleteOptions},
};
static const pb_msg_t m_policy_Eviction = {"io.k8s.api.policy.v1.Eviction", policy_Eviction_f,
                                           PB_N(policy_Eviction_f)};
/* authorization.k8s.io/v1, what kubectl auth can-i asks (review.c); the selectors (1.31+)
 * change no answer there */
static const pb_field_t authz_ResourceAttributes_f[] = {
    {1, "namespace", PB_STRING, F_OMIT, NULL},   {2, "verb", PB_STRING, F_OMIT, NULL},
    {3, "group", PB_STRING, F_OMIT, NULL},       {4, "version", PB_STRING, F_OMIT, NULL},
    {5, "resource", PB_STRING, F_OMIT, NULL},    {6, "subresource", PB_STRING, F_OMIT, NULL},
    {7, "name", PB_STRING, F_OMIT, NULL},        {8, "fieldSelector", PB_SKIP, F_OMIT, NULL},
    {9, "labelSelector", PB_SKIP, F_OMIT, NULL},
};
static const pb_msg_t m_authz_ResourceAttributes = {
    "io.k8s.api.authorization.v1.ResourceAttributes", authz_ResourceAttributes_f,
    PB_N(authz_ResourceAttributes_f)};
static const pb_field_t authz_NonResourceAttributes_f[] = {
    {1, "path", PB_STRING, F_OMIT, NULL},
    {2, "verb", PB_STRING, F_OMIT, NULL},
};
static const pb_msg_t m_authz_NonResourceAttributes = {
    "io.k8s.api.authorization.v1.NonResourceAttributes", authz_NonResourceAttributes_f,
    PB_N(authz_NonResourceAttributes_f)};
static const pb_field_t authz_SelfSubjectAccessReviewSpec_f[] = {
    {1, "resourceAttributes", PB_MSG, F_PTR, &m_authz_ResourceAttributes},
    {2, "nonResourceAttributes", PB_MSG, F_PTR, &m_authz_NonResourceAttributes},
};
static const pb_msg_t m_authz_SelfSubjectAccessReviewSpec = {
    "io.k8s.api.authorization.v1.SelfSubjectAccessReviewSpec", authz_SelfSubjectAccessReviewSpec_f,
    PB_N(authz_SelfSubjectAccessReviewSpec_f)};
static const pb_field_t authz_SelfSubjectAccessReview_f[] = {
    {1, "metadata", PB_MSG, 0, &m_meta_ObjectMeta},
    {2, "spec", PB_MSG, 0, &m_authz_SelfSubjectAccessReviewSpec},
    {3, "status", PB_SKIP, F_OMIT, NULL},
};
static const pb_msg_t m_authz_SelfSubjectAccessReview = {
    "io.k8s.api.authorization.v1.SelfSubjectAccessReview", authz_SelfSubjectAccessReview_f,
    PB_N(authz_SelfSubjectAccessReview_f)};
static const pb_field_t authz_SelfSubjectRulesReviewSpec_f[] = {
    {1, "namespace", PB_STRING, F_OMIT, NULL},
};
static const pb_msg_t m_authz_SelfSubjectRulesReviewSpec = {
    "io.k8s.api.authorization.v1.SelfSubjectRulesReviewSpec", authz_SelfSubjectRulesReviewSpec_f,
    PB_N(authz_SelfSubjectRulesReviewSpec_f)};
static const pb_field_t authz_SelfSubjectRulesReview_f[] = {
    {1, "metadata", PB_MSG, 0, &m_meta_ObjectMeta},
    {2, "spec", PB_MSG, 0, &m_authz_SelfSubjectRulesReviewSpec},
    {3, "status", PB_SKIP, F_OMIT, NULL},
};
static const pb_msg_t m_authz_SelfSubjectRulesReview = {
    "io.k8s.api.authorization.v1.SelfSubjectRulesReview", authz_SelfSubjectRulesReview_f,
    PB_N(authz_SelfSubjectRulesReview_f)};

static const pb_field_t sched_PriorityClass_f[] = {
    {1, "metadata", PB_MSG, 0, &m_meta_ObjectMeta},  {2, "value", PB_INT32, 0, NULL},
    {3, "globalDefault", PB_BOOL, F_OMIT, NULL},     {4, "description", PB_STRING, F_OMIT, NULL},
    {5, "preemptionPolicy", PB_STRING, F_PTR, NULL},
};
static const pb_msg_t m_sched_PriorityClass = {"io.k8s.api.scheduling.v1.PriorityClass",
                                               sched_PriorityClass_f, PB_N(sched_PriorityClass_f)};

/* The kinds a body may hold, by typeMeta. */
static const struct pb_kindent {
    const char *api_version, *kind;
    const pb_msg_t *msg;
} pb_kinds[] = {
    {"v1", "Namespace", &m_core_Namespace},
    {"v1", "ConfigMap", &m_core_ConfigMap},
    {"v1", "Secret", &m_core_Secret},
    {"v1", "Service", &m_core_Service},
    {"v1", "Pod", &m_core_Pod},
    {"apps/v1", "Deployment", &m_apps_Deployment},
    {"scheduling.k8s.io/v1", "PriorityClass", &m_sched_PriorityClass},
    {"apps/v1", "DaemonSet", &m_apps_DaemonSet},
    {"autoscaling/v2", "HorizontalPodAutoscaler", &m_autoscaling_HorizontalPodAutoscaler},
    {"policy/v1", "Eviction", &m_policy_Eviction},
    {"v1", "DeleteOptions", &m_meta_DeleteOptions},
    {"meta.k8s.io/v1", "DeleteOptions", &m_meta_DeleteOptions},
    {"authorization.k8s.io/v1", "SelfSubjectAccessReview", &m_authz_SelfSubjectAccessReview},
    {"authorization.k8s.io/v1", "SelfSubjectRulesReview", &m_authz_SelfSubjectRulesReview},
};

typedef struct pb_rd {
    const uint8_t *p, *end;
} pb_rd_t;

typedef struct pb_ctx {
    char *why;
    size_t whysz;
} pb_ctx_t;

/* Records the first failure; always returns NULL for the callers' convenience. */
static void *pb_fail(pb_ctx_t *c, const pb_msg_t *m, const pb_field_t *f, uint32_t num,
                     const char *fmt, ...) DRV_PRINTF(5, 6);
static void *pb_fail(pb_ctx_t *c, const pb_msg_t *m, const pb_field_t *f, uint32_t num,
                     const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    drv_vfmt_cut(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (f)
        drv_fmt_cut(c->why, c->whysz, "%s: field %u (%s): %s", m->name, (unsigned)f->num, f->name,
                    what);
    else if (num)
        drv_fmt_cut(c->why, c->whysz, "%s: field %u: %s", m->name, (unsigned)num, what);
    else
        drv_fmt_cut(c->why, c->whysz, "%s: %s", m->name, what);
    return NULL;
}

static bool pb_varint(pb_rd_t *r, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end)
            return false;
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1)
            return false; /* more than 64 bits */
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* A length-delimited value: its bytes, checked against what remains before anything reads
 * them. */
static bool pb_bytes(pb_rd_t *r, pb_rd_t *out)
{
    uint64_t n;
    if (!pb_varint(r, &n) || n > (uint64_t)(r->end - r->p))
        return false;
    out->p = r->p;
    out->end = r->p + n;
    r->p += n;
    return true;
}

/* Reads past a value of wire type wt. */
static bool pb_skip(pb_rd_t *r, unsigned wt)
{
    uint64_t v;
    pb_rd_t sub;
    switch (wt) {
    case 0:
        return pb_varint(r, &v);
    case 1:
    case 5: {
        size_t n = wt == 1 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n)
            return false;
        r->p += n;
        return true;
    }
    case 2:
        return pb_bytes(r, &sub);
    default:
        return false; /* groups (3, 4) are not used by Kubernetes */
    }
}

static bool pb_tag(pb_rd_t *r, uint32_t *num, unsigned *wt)
{
    uint64_t t;
    if (!pb_varint(r, &t) || (t >> 3) == 0 || (t >> 3) > 0x1fffffff)
        return false;
    *num = (uint32_t)(t >> 3);
    *wt = (unsigned)(t & 7);
    return true;
}

static unsigned pb_wire_type(pb_kind_t k)
{
    switch (k) {
    case PB_BOOL:
    case PB_INT32:
    case PB_INT64:
        return 0;
    case PB_DOUBLE:
        return 1;
    default:
        return 2;
    }
}

/* Whether s (n bytes) is UTF-8 without NUL (cJSON strings end at a NUL; JSON bodies are UTF-8). */
static bool pb_utf8(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t b = s[i];
        size_t len;
        uint32_t cp;
        if (b == 0)
            return false;
        if (b < 0x80) {
            i++;
            continue;
        }
        if ((b & 0xe0) == 0xc0) {
            len = 2;
            cp = b & 0x1f;
        } else if ((b & 0xf0) == 0xe0) {
            len = 3;
            cp = b & 0x0f;
        } else if ((b & 0xf8) == 0xf0) {
            len = 4;
            cp = b & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

static cJSON *pb_string(pb_ctx_t *c, const pb_msg_t *m, const pb_field_t *f, pb_rd_t v, bool *zero)
{
    size_t n = (size_t)(v.end - v.p);
    if (!pb_utf8(v.p, n))
        return pb_fail(c, m, f, 0, "not a UTF-8 string without NUL bytes");
    _cleanup_free_ char *s = malloc(n + 1);
    if (!s)
        return pb_fail(c, m, f, 0, "out of memory");
    memcpy(s, v.p, n);
    s[n] = '\0';
    *zero = n == 0;
    cJSON *j = cJSON_CreateString(s);
    return j ? j : pb_fail(c, m, f, 0, "out of memory");
}

/* meta/v1 Time and MicroTime {1 seconds, 2 nanos}: RFC 3339 in UTC, as their JSON; Time
 * without its fraction, as Kubernetes writes it. */
static cJSON *pb_time(pb_ctx_t *c, const pb_msg_t *m, const pb_field_t *f, pb_rd_t v, bool micro,
                      bool *zero)
{
    int64_t secs = 0, nanos = 0;
    while (v.p < v.end) {
        uint32_t num;
        unsigned wt;
        uint64_t x;
        if (!pb_tag(&v, &num, &wt) || wt != 0 || (num != 1 && num != 2) || !pb_varint(&v, &x))
            return pb_fail(c, m, f, 0, "not a Time {seconds, nanos}");
        if (num == 1)
            secs = (int64_t)x;
        else
            nanos = (int32_t)(uint32_t)x;
    }
    /* 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z, as RFC 3339 allows. */
    if (secs < -62135596800LL || secs > 253402300799LL || nanos < 0 || nanos > 999999999)
        return pb_fail(c, m, f, 0, "time out of range");
    *zero = secs == 0 && nanos == 0;
    time_t t = (time_t)secs;
    struct tm tm;
    char day[32], out[48];
    if (!gmtime_r(&t, &tm) || !strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm))
        return pb_fail(c, m, f, 0, "time out of range");
    drv_err_t e = micro ? drv_fmt(out, sizeof(out), "%s.%06dZ", day, (int)(nanos / 1000))
                        : drv_fmt(out, sizeof(out), "%sZ", day);
    if (e != DRV_OK)
        return pb_fail(c, m, f, 0, "time out of range");
    cJSON *j = cJSON_CreateString(out);
    return j ? j : pb_fail(c, m, f, 0, "out of memory");
}

/* api/resource Quantity {1 string}: its string. */
static cJSON *pb_quantity(pb_ctx_t *c, const pb_msg_t *m, const pb_field_t *f, pb_rd_t v,
                          bool *zero)
{
    pb_rd_t s = {v.p, v.p};
    while (v.p < v.end) {
        uint32_t num;
        unsigned wt;
        if (!pb_tag(&v, &num, &wt) || num != 1 || wt != 2 || !pb_bytes(&v, &s))
            return pb_fail(c, m, f, 0, "not a Quantity {string}");
    }
    return pb_string(c, m, f, s, zero);
}

/* util/intstr IntOrString {1 type, 2 intVal, 3 strVal}: a JSON number or string. */
static cJSON *pb_intorstr(pb_ctx_t *c, const pb_msg_t *m, const pb_field_t *f, pb_rd_t v,
                          bool *zero)
{
    uint64_t type = 0, iv = 0;
    pb_rd_t s = {v.p, v.p};
    while (v.p < v.end) {
        uint32_t num;
        unsigned wt;
        bool ok = pb_tag(&v, &num, &wt);
        if (ok && num == 1 && wt == 0)
            ok = pb_varint(&v, &type);
        else if (ok && num == 2 && wt == 0)
            ok = pb_varint(&v, &iv);
        else if (ok && num == 3 && wt == 2)
            ok = pb_bytes(&v, &s);
        else
            ok = false;
        if (!ok)
            return pb_fail(c, m, f, 0, "not an IntOrString {type, intVal, strVal}");
    }
    if (type == 1)
        return pb_string(c, m, f, s, zero);
    if (type != 0)
        return pb_fail(c, m, f, 0, "IntOrString type %llu is neither 0 (int) nor 1 (string)",
                       (unsigned long long)type);
    *zero = iv == 0;
    cJSON *j = cJSON_CreateNumber((double)(int32_t)(uint32_t)iv);
    return j ? j : pb_fail(c, m, f, 0, "out of memory");
}

static cJSON *pb_message(pb_ctx_t *c, const pb_msg_t *m, pb_rd_t r, unsigned depth);

/* One value of field f (kind k) whose wire value is in v (a varint in x for wire type 0, 8
 * bytes for wire type 1). *zero: it is the zero value Go's protobuf sends for unset fields. */
static cJSON *pb_value(pb_ctx_t *c, const pb_msg_t *m, const pb_field_t *f, pb_kind_t k, uint64_t x,
                       pb_rd_t v, unsigned depth, bool *zero)
{
    cJSON *j = NULL;
    switch (k) {
    case PB_STRING:
        return pb_string(c, m, f, v, zero);
    case PB_BYTES: {
        _cleanup_free_ char *b = drv_base64_encode(v.p, (size_t)(v.end - v.p));
        if (!b)
            return pb_fail(c, m, f, 0, "out of memory");
        *zero = v.p == v.end;
        j = cJSON_CreateString(b);
        break;
    }
    case PB_BOOL:
        *zero = x == 0;
        j = cJSON_CreateBool(x != 0);
        break;
    case PB_INT32:
        *zero = x == 0;
        j = cJSON_CreateNumber((double)(int32_t)(uint32_t)x);
        break;
    case PB_INT64:
        *zero = x == 0;
        j = cJSON_CreateNumber((double)(int64_t)x);
        break;
    case PB_DOUBLE: {
        double d;
        uint64_t bits = 0;
        for (int i = 7; i >= 0; i--)
            bits = bits << 8 | v.p[i];
        memcpy(&d, &bits, sizeof(d));
        if (d != d || d - d != 0)
            return pb_fail(c, m, f, 0, "not a finite number");
        *zero = d == 0;
        j = cJSON_CreateNumber(d);
        break;
    }
    case PB_TIME:
    case PB_MICROTIME:
        return pb_time(c, m, f, v, k == PB_MICROTIME, zero);
    case PB_QUANTITY:
        return pb_quantity(c, m, f, v, zero);
    case PB_INTORSTR:
        return pb_intorstr(c, m, f, v, zero);
    case PB_MSG:
        if (!f->msg)
            return pb_fail(c, m, f, 0, "not supported by Drover");
        j = pb_message(c, f->msg, v, depth + 1);
        if (!j)
            return NULL;
        *zero = !j->child;
        return j;
    case PB_SKIP:
        break;
    }
    return j ? j : pb_fail(c, m, f, 0, "out of memory");
}

/* Reads one wire value of field f: a varint into *x, anything else into *v. */
static bool pb_read(pb_ctx_t *c, const pb_msg_t *m, const pb_field_t *f, pb_kind_t k, unsigned wt,
                    pb_rd_t *r, uint64_t *x, pb_rd_t *v)
{
    unsigned want = pb_wire_type(k);
    if (wt != want) {
        pb_fail(c, m, f, 0, "wire type %u where %u was expected", wt, want);
        return false;
    }
    bool ok = false;
    if (wt == 0) {
        ok = pb_varint(r, x);
    } else if (wt == 1) {
        ok = r->end - r->p >= 8;
        if (ok) {
            v->p = r->p;
            v->end = r->p + 8;
            r->p += 8;
        }
    } else {
        ok = pb_bytes(r, v);
    }
    if (!ok)
        pb_fail(c, m, f, 0, "truncated or malformed value");
    return ok;
}

/* A map entry {1 key, 2 value} into obj (the last of a repeated key wins, as in Go). */
static bool pb_map_entry(pb_ctx_t *c, const pb_msg_t *m, const pb_field_t *f, pb_rd_t e, cJSON *obj,
                         unsigned depth)
{
    pb_rd_t key = {e.p, e.p}, val = {e.p, e.p};
    uint64_t x = 0;
    while (e.p < e.end) {
        uint32_t num;
        unsigned wt;
        if (!pb_tag(&e, &num, &wt) || (num != 1 && num != 2)) {
            pb_fail(c, m, f, 0, "malformed map entry");
            return false;
        }
        if (num == 1 ? !pb_read(c, m, f, PB_STRING, wt, &e, &x, &key)
                     : !pb_read(c, m, f, f->kind, wt, &e, &x, &val))
            return false;
    }
    if (f->kind == PB_DOUBLE && val.end - val.p != 8) {
        pb_fail(c, m, f, 0, "map value missing");
        return false;
    }
    bool zero;
    _cleanup_cjson_ cJSON *k = pb_string(c, m, f, key, &zero);
    cJSON *v = k ? pb_value(c, m, f, f->kind, x, val, depth, &zero) : NULL;
    if (!v)
        return false;
    if (cJSON_GetObjectItemCaseSensitive(obj, k->valuestring))
        cJSON_DeleteItemFromObjectCaseSensitive(obj, k->valuestring);
    if (!cJSON_AddItemToObject(obj, k->valuestring, v)) {
        cJSON_Delete(v);
        pb_fail(c, m, f, 0, "out of memory");
        return false;
    }
    return true;
}

/* The array or object a repeated or map field collects into, made on its first value. */
static cJSON *pb_collect(pb_ctx_t *c, const pb_msg_t *m, const pb_field_t *f, cJSON *obj)
{
    cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, f->name);
    if (a)
        return a;
    a = (f->flags & F_MAP) ? cJSON_AddObjectToObject(obj, f->name)
                           : cJSON_AddArrayToObject(obj, f->name);
    return a ? a : pb_fail(c, m, f, 0, "out of memory");
}

/* One occurrence of field f (wire type wt) from r into obj. */
static bool pb_field(pb_ctx_t *c, const pb_msg_t *m, const pb_field_t *f, unsigned wt, pb_rd_t *r,
                     cJSON *obj, unsigned depth)
{
    uint64_t x = 0;
    pb_rd_t v = {r->p, r->p};
    bool zero = false;
    if (f->kind == PB_SKIP) {
        if (!pb_skip(r, wt)) {
            pb_fail(c, m, f, 0, "truncated or malformed value");
            return false;
        }
        return true;
    }
    if (f->flags & F_MAP) {
        cJSON *map;
        if (wt != 2 || !pb_bytes(r, &v)) {
            pb_fail(c, m, f, 0, "malformed map entry");
            return false;
        }
        return (map = pb_collect(c, m, f, obj)) && pb_map_entry(c, m, f, v, map, depth);
    }
    if (f->kind == PB_MSG && !f->msg) {
        /* A message Drover does not run: only Go's empty zero value of a non-pointer passes. */
        if (!pb_read(c, m, f, f->kind, wt, r, &x, &v))
            return false;
        if (!(f->flags & (F_PTR | F_REP)) && v.p == v.end)
            return true;
        pb_fail(c, m, f, 0, "not supported by Drover");
        return false;
    }
    if (f->flags & F_REP) {
        cJSON *arr = pb_collect(c, m, f, obj);
        if (!arr)
            return false;
        unsigned want = pb_wire_type(f->kind);
        if (wt == 2 && want != 2) { /* a packed run of scalars */
            pb_rd_t run;
            if (!pb_bytes(r, &run)) {
                pb_fail(c, m, f, 0, "truncated or malformed value");
                return false;
            }
            while (run.p < run.end) {
                cJSON *e = pb_read(c, m, f, f->kind, want, &run, &x, &v)
                               ? pb_value(c, m, f, f->kind, x, v, depth, &zero)
                               : NULL;
                if (!e)
                    return false;
                cJSON_AddItemToArray(arr, e);
            }
            return true;
        }
        cJSON *e = pb_read(c, m, f, f->kind, wt, r, &x, &v)
                       ? pb_value(c, m, f, f->kind, x, v, depth, &zero)
                       : NULL;
        if (!e)
            return false;
        cJSON_AddItemToArray(arr, e);
        return true;
    }
    if (cJSON_GetObjectItemCaseSensitive(obj, f->name)) {
        pb_fail(c, m, f, 0, "set twice");
        return false;
    }
    cJSON *j = pb_read(c, m, f, f->kind, wt, r, &x, &v)
                   ? pb_value(c, m, f, f->kind, x, v, depth, &zero)
                   : NULL;
    if (!j)
        return false;
    if (f->flags & F_INLINE) {
        while (j->child) {
            cJSON *it = cJSON_DetachItemViaPointer(j, j->child);
            if (cJSON_GetObjectItemCaseSensitive(obj, it->string)) {
                cJSON_Delete(it);
                cJSON_Delete(j);
                pb_fail(c, m, f, 0, "sets a field twice");
                return false;
            }
            cJSON_AddItemToArray(obj, it); /* keeps it->string: an object's member */
        }
        cJSON_Delete(j);
        return true;
    }
    /* Go's protobuf sends a non-pointer field even when unset; JSON leaves out an omitempty
     * one, and an empty struct or zero Time tells nothing. A pointer's zero value is meant. */
    bool msg_like = f->kind == PB_MSG || f->kind == PB_TIME || f->kind == PB_MICROTIME;
    if (zero && !(f->flags & F_PTR) && ((f->flags & F_OMIT) || msg_like)) {
        cJSON_Delete(j);
        return true;
    }
    cJSON_AddItemToObject(obj, f->name, j);
    return true;
}

static cJSON *pb_message(pb_ctx_t *c, const pb_msg_t *m, pb_rd_t r, unsigned depth)
{
    if (depth > PB_MAX_DEPTH)
        return pb_fail(c, m, NULL, 0, "nested more than %d deep", PB_MAX_DEPTH);
    _cleanup_cjson_ cJSON *obj = cJSON_CreateObject();
    if (!obj)
        return pb_fail(c, m, NULL, 0, "out of memory");
    while (r.p < r.end) {
        uint32_t num;
        unsigned wt;
        if (!pb_tag(&r, &num, &wt))
            return pb_fail(c, m, NULL, 0, "malformed field tag");
        const pb_field_t *f = NULL;
        for (size_t i = 0; i < m->n && !f; i++)
            if (m->fields[i].num == num)
                f = &m->fields[i];
        if (!f)
            return pb_fail(c, m, NULL, num, "not supported by Drover");
        if (!pb_field(c, m, f, wt, &r, obj, depth))
            return NULL;
    }
    return TAKE_PTR(obj);
}

cJSON *drv_api_protobuf_decode(const void *data, size_t len, char *why, size_t whysz)
{
    static const pb_msg_t envelope = {"protobuf envelope", NULL, 0};
    pb_ctx_t c = {why, whysz};
    why[0] = '\0';
    if (len < PB_MAGIC_LEN || memcmp(data, PB_MAGIC, PB_MAGIC_LEN))
        return pb_fail(&c, &envelope, NULL, 0, "does not start with \"k8s\\0\"");
    pb_rd_t r = {(const uint8_t *)data + PB_MAGIC_LEN, (const uint8_t *)data + len};
    pb_rd_t tm = {r.p, r.p}, raw = {r.p, r.p}, enc = {r.p, r.p}, ctype = {r.p, r.p};
    while (r.p < r.end) {
        uint32_t num;
        unsigned wt;
        pb_rd_t *dst = NULL;
        if (!pb_tag(&r, &num, &wt))
            return pb_fail(&c, &envelope, NULL, 0, "malformed field tag");
        dst = num == 1 ? &tm : num == 2 ? &raw : num == 3 ? &enc : num == 4 ? &ctype : NULL;
        if (!dst || wt != 2)
            return pb_fail(&c, &envelope, NULL, num, "not a runtime.Unknown field");
        if (!pb_bytes(&r, dst))
            return pb_fail(&c, &envelope, NULL, num, "length past the end of the body");
    }
    if (enc.p != enc.end)
        return pb_fail(&c, &envelope, NULL, 0, "contentEncoding \"%.*s\" is not supported",
                       (int)(enc.end - enc.p > 32 ? 32 : enc.end - enc.p), (const char *)enc.p);
    static const char proto_ct[] = "application/vnd.kubernetes.protobuf";
    size_t ctlen = (size_t)(ctype.end - ctype.p);
    if (ctlen && (ctlen != sizeof(proto_ct) - 1 || memcmp(ctype.p, proto_ct, ctlen)))
        return pb_fail(&c, &envelope, NULL, 0, "contentType of raw is not %s", proto_ct);
    char api_version[64] = "", kind[64] = "";
    while (tm.p < tm.end) {
        uint32_t num;
        unsigned wt;
        pb_rd_t s;
        if (!pb_tag(&tm, &num, &wt) || (num != 1 && num != 2) || wt != 2 || !pb_bytes(&tm, &s))
            return pb_fail(&c, &envelope, NULL, 0, "malformed typeMeta");
        char *dst = num == 1 ? api_version : kind;
        size_t n = (size_t)(s.end - s.p);
        if (n >= sizeof(api_version) || !pb_utf8(s.p, n))
            return pb_fail(&c, &envelope, NULL, 0, "malformed typeMeta");
        memcpy(dst, s.p, n);
        dst[n] = '\0';
    }
    const pb_msg_t *m = NULL;
    for (size_t i = 0; i < PB_N(pb_kinds) && !m; i++)
        if (!strcmp(pb_kinds[i].api_version, api_version) && !strcmp(pb_kinds[i].kind, kind))
            m = pb_kinds[i].msg;
    if (!m)
        return pb_fail(&c, &envelope, NULL, 0,
                       "kind \"%s\" of apiVersion \"%s\" is not one Drover reads as protobuf; "
                       "send it as application/json",
                       kind, api_version);
    _cleanup_cjson_ cJSON *obj = pb_message(&c, m, raw, 1);
    if (!obj)
        return NULL;
    /* apiVersion and kind first, as kubectl's JSON has them. */
    _cleanup_cjson_ cJSON *out = cJSON_CreateObject();
    if (!out || !cJSON_AddStringToObject(out, "apiVersion", api_version) ||
        !cJSON_AddStringToObject(out, "kind", kind))
        return pb_fail(&c, &envelope, NULL, 0, "out of memory");
    while (obj->child) {
        cJSON *it = cJSON_DetachItemViaPointer(obj, obj->child);
        cJSON_AddItemToArray(out, it); /* keeps it->string: an object's member */
    }
    return TAKE_PTR(out);
}
