/* The model's kinds table, every kind: which validator drv_model_normalize() runs after the
 * metadata. Alone in its file so that the device agent can link its own, smaller table
 * (model_agent.c) in its place; see model_int.h. */
#include <string.h>

#include "model_int.h"

const char *v_kind_api(vctx_t *c, cJSON *obj, drv_kind_t kind, const char *api)
{
    if (kind == DRV_KIND_HPA && !strcmp(api, "autoscaling/v1")) {
        v_hpa_from_v1(c, obj);
        return drv_kind_api_version(kind);
    }
    return api;
}

static void v_pod_object_spec(vctx_t *c, cJSON *spec)
{
    v_pod_spec(c, spec, PODCTX_POD);
}

void v_kind_body(vctx_t *c, cJSON *obj, drv_kind_t kind)
{
    switch (kind) {
    case DRV_KIND_CONFIGMAP:
        v_configmap(c, obj);
        break;
    case DRV_KIND_SECRET:
        v_secret(c, obj);
        break;
    case DRV_KIND_EVENT:
        v_event(c, obj);
        break;
    case DRV_KIND_CONTROLLERREVISION:
        v_controller_revision(c, obj);
        break;
    case DRV_KIND_ENDPOINTS:
        v_endpoints(c, obj);
        break;
    case DRV_KIND_ENDPOINTSLICE:
        v_endpointslice(c, obj);
        break;
    case DRV_KIND_STORAGECLASS:
        v_storageclass(c, obj);
        break;
    case DRV_KIND_PRIORITYCLASS:
        v_priority_class(c, obj);
        break;
    case DRV_KIND_SERVICEACCOUNT:
        v_serviceaccount(c, obj);
        break;
    case DRV_KIND_ROLE:
    case DRV_KIND_CLUSTERROLE:
        v_role(c, obj, kind == DRV_KIND_CLUSTERROLE);
        break;
    case DRV_KIND_ROLEBINDING:
    case DRV_KIND_CLUSTERROLEBINDING:
        v_role_binding(c, obj, kind == DRV_KIND_CLUSTERROLEBINDING);
        break;
    case DRV_KIND_POD:
        v_spec_object(c, obj, kind, v_pod_object_spec);
        break;
    case DRV_KIND_DEPLOYMENT:
        v_spec_object(c, obj, kind, v_deployment_spec);
        break;
    case DRV_KIND_DAEMONSET:
        v_spec_object(c, obj, kind, v_daemonset_spec);
        break;
    case DRV_KIND_STATEFULSET:
        v_spec_object(c, obj, kind, v_statefulset_spec);
        break;
    case DRV_KIND_SERVICE:
        v_spec_object(c, obj, kind, v_service_spec);
        break;
    case DRV_KIND_NODE:
        v_spec_object(c, obj, kind, v_node_spec);
        break;
    case DRV_KIND_HPA:
        v_spec_object(c, obj, kind, v_hpa_spec);
        break;
    case DRV_KIND_NAMESPACE:
        v_spec_object(c, obj, kind, v_namespace_spec);
        break;
    case DRV_KIND_REPLICASET:
        v_spec_object(c, obj, kind, v_replicaset_spec);
        break;
    case DRV_KIND_NETWORKPOLICY:
        v_spec_object(c, obj, kind, v_netpol_spec);
        break;
    case DRV_KIND_PVC:
        v_spec_object(c, obj, kind, v_pvc_spec);
        break;
    case DRV_KIND_PV:
        v_spec_object(c, obj, kind, v_pv_spec);
        break;
    case DRV_KIND_JOB:
        v_spec_object(c, obj, kind, v_job_spec);
        break;
    case DRV_KIND_CRONJOB:
        v_spec_object(c, obj, kind, v_cronjob_spec);
        break;
    default:
        v_spec_object(c, obj, kind, NULL);
        break;
    }
}
