/* The device agent's kinds table: what a device receives (docs/PROTOCOL.md, desired state) and
 * reads from its static manifests — Pod, ConfigMap, Secret, PersistentVolume, and the
 * NetworkPolicies of the network section (netstate.c normalises each) — through the
 * same validators as the hub's table (model_kinds.c). Every other kind is a problem naming the
 * hub, so that their validators, tables and messages stay out of the agent (the agent links
 * this file ahead of libdrover-shared; see model_int.h). */
#include "model_int.h"

const char *v_kind_api(vctx_t *c, cJSON *obj, drv_kind_t kind, const char *api)
{
    (void)c;
    (void)obj;
    (void)kind;
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
    case DRV_KIND_POD:
        v_spec_object(c, obj, kind, v_pod_object_spec);
        break;
    case DRV_KIND_PV:
        v_spec_object(c, obj, kind, v_pv_spec);
        break;
    case DRV_KIND_NETWORKPOLICY:
        v_spec_object(c, obj, kind, v_netpol_spec);
        break;
    default:
        v_failk(c, "kind",
                "%s is checked by the hub, not on a device: the agent takes Pod, ConfigMap, "
                "Secret, PersistentVolume and NetworkPolicy",
                drv_kind_name(kind));
        break;
    }
}
