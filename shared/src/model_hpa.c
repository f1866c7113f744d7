/* HorizontalPodAutoscaler (autoscaling/v2) validation and defaults, as Kubernetes validates
 * and defaults it (pkg/apis/autoscaling: validation.go, v2/defaults.go), cut to what Drover's
 * controller does: a Deployment as the target, Resource metrics on cpu or memory with
 * Utilization or AverageValue targets, and `behavior`. Valid Kubernetes that Drover does not
 * do (Pods, Object, External, ContainerResource metrics; other targets) is a problem that says
 * so, never silently ignored. */
#include <string.h>

#include "drover/json.h"
#include "drover/names.h"
#include "drover/quantity.h"
#include "model_int.h"

#define HPA_WINDOW_MAX 3600 /* stabilizationWindowSeconds */
#define HPA_PERIOD_MAX 1800 /* periodSeconds */
#define HPA_POLICIES_MAX 10
#define HPA_DEFAULT_CPU_UTILIZATION 80

static void v_target_ref(vctx_t *c, cJSON *spec)
{
    cJSON *ref = v_obj(c, spec, "scaleTargetRef", true);
    if (!ref)
        return;
    static const char known[] = "apiVersion\0"
                                "kind\0"
                                "name\0";
    size_t old = v_push_key(c, "scaleTargetRef");
    v_fields(c, ref, known, NULL, NULL);
    const char *kind = v_str(c, ref, "kind", true);
    const char *api = v_str(c, ref, "apiVersion", false);
    v_name(c, ref, "name", true, drv_name_dns_subdomain);
    if (kind && strcmp(kind, "Deployment") != 0)
        v_failk(c, "kind",
                "\"%.64s\" is not supported by Drover: the scale target must be a Deployment",
                kind);
    if (api && strcmp(api, "apps/v1") != 0)
        v_failk(c, "apiVersion", "must be apps/v1 (a Deployment), not \"%.64s\"", api);
    if (!api && kind && !strcmp(kind, "Deployment"))
        v_default_str(c, ref, "apiVersion", "apps/v1");
    v_pop(c, old);
}

/* spec.metrics[i].resource.target */
static void v_target(vctx_t *c, cJSON *res, const char *name)
{
    cJSON *t = v_obj(c, res, "target", true);
    if (!t)
        return;
    static const char known[] = "type\0"
                                "averageUtilization\0"
                                "averageValue\0";
    static const char unsupported[] = "value\0";
    static const char types[] = "Utilization\0"
                                "AverageValue\0"
                                "Value\0";
    size_t old = v_push_key(c, "target");
    v_fields(c, t, known, NULL, unsupported);
    const char *type = v_enum(c, t, "type", true, types);
    bool has_util = drv_json_get(t, "averageUtilization") != NULL;
    bool has_avg = drv_json_get(t, "averageValue") != NULL;
    if (type && !strcmp(type, "Value")) {
        v_failk(c, "type", "must be either Utilization or AverageValue for a resource metric");
    } else if (type && !strcmp(type, "Utilization")) {
        if (!has_util)
            v_failk(c, "averageUtilization", "required when the type is Utilization");
        else
            v_int(c, t, "averageUtilization", true, 1, INT32_MAX, NULL);
        if (has_avg)
            v_failk(c, "averageValue", "may not be set when the type is Utilization");
    } else if (type && !strcmp(type, "AverageValue")) {
        if (has_util)
            v_failk(c, "averageUtilization", "may not be set when the type is AverageValue");
        const char *q = v_str(c, t, "averageValue", true);
        if (q && name) {
            int64_t v = 0;
            drv_error_t err = DRV_ERROR_INIT;
            drv_err_t rc = !strcmp(name, "cpu") ? drv_qty_parse_cpu(q, &v, NULL, &err)
                                                : drv_qty_parse_memory(q, &v, NULL, &err);
            if (rc != DRV_OK)
                v_failk(c, "averageValue", "%s", drv_error_msg(&err));
            else if (v <= 0)
                v_failk(c, "averageValue", "must be greater than 0");
        }
    }
    v_pop(c, old);
}

static void v_metric(vctx_t *c, cJSON *m)
{
    static const char known[] = "type\0"
                                "resource\0";
    static const char unsupported[] = "pods\0"
                                      "object\0"
                                      "external\0"
                                      "containerResource\0";
    static const char types[] = "Resource\0"
                                "Pods\0"
                                "Object\0"
                                "ContainerResource\0"
                                "External\0";
    v_fields(c, m, known, NULL, unsupported);
    const char *type = v_enum(c, m, "type", true, types);
    if (type && strcmp(type, "Resource") != 0) {
        v_failk(c, "type",
                "%s metrics are not supported by Drover (Resource metrics on cpu and memory are)",
                type);
        return;
    }
    cJSON *res = v_obj(c, m, "resource", type != NULL);
    if (!res)
        return;
    static const char rknown[] = "name\0"
                                 "target\0";
    static const char names[] = "cpu\0"
                                "memory\0";
    size_t old = v_push_key(c, "resource");
    v_fields(c, res, rknown, NULL, NULL);
    const char *name = v_enum(c, res, "name", true, names);
    v_target(c, res, name);
    v_pop(c, old);
}

static void add_policy(vctx_t *c, cJSON *arr, const char *type, int value, int period)
{
    cJSON *p = cJSON_CreateObject();
    if (!p || !cJSON_AddItemToArray(arr, p) || !cJSON_AddStringToObject(p, "type", type) ||
        !cJSON_AddNumberToObject(p, "value", value) ||
        !cJSON_AddNumberToObject(p, "periodSeconds", period))
        c->nomem = true;
}

/* spec.behavior.scaleUp / scaleDown: validated, then the defaults of GenerateHPAScale*Rules. */
static void v_rules(vctx_t *c, cJSON *beh, const char *key, bool up)
{
    cJSON *r = v_obj(c, beh, key, false);
    if (!r && !drv_json_get(beh, key)) {
        r = cJSON_AddObjectToObject(beh, key);
        if (!r) {
            c->nomem = true;
            return;
        }
    }
    if (!r)
        return;
    static const char known[] = "stabilizationWindowSeconds\0"
                                "selectPolicy\0"
                                "policies\0";
    static const char selects[] = "Max\0"
                                  "Min\0"
                                  "Disabled\0";
    size_t old = v_push_key(c, key);
    v_fields(c, r, known, NULL, NULL);
    v_int(c, r, "stabilizationWindowSeconds", false, 0, HPA_WINDOW_MAX, NULL);
    if (up)
        v_default_int(c, r, "stabilizationWindowSeconds", 0);
    v_enum(c, r, "selectPolicy", false, selects);
    v_default_str(c, r, "selectPolicy", "Max");
    cJSON *pol = v_arr(c, r, "policies", false);
    if (!pol && !drv_json_get(r, "policies")) {
        pol = cJSON_AddArrayToObject(r, "policies");
        if (!pol) {
            c->nomem = true;
        } else if (up) {
            add_policy(c, pol, "Pods", 4, 15);
            add_policy(c, pol, "Percent", 100, 15);
        } else {
            add_policy(c, pol, "Percent", 100, 15);
        }
    } else if (pol) {
        size_t n = (size_t)cJSON_GetArraySize(pol);
        if (n == 0)
            v_failk(c, "policies", "must specify at least one Policy");
        else if (n > HPA_POLICIES_MAX)
            v_failk(c, "policies", "at most %d policies", HPA_POLICIES_MAX);
        static const char pknown[] = "type\0"
                                     "value\0"
                                     "periodSeconds\0";
        static const char ptypes[] = "Pods\0"
                                     "Percent\0";
        size_t o2 = v_push_key(c, "policies");
        size_t i = 0;
        cJSON *p;
        cJSON_ArrayForEach(p, pol)
        {
            size_t o3 = v_push_index(c, i++);
            if (!cJSON_IsObject(p)) {
                v_fail(c, "must be an object");
            } else {
                v_fields(c, p, pknown, NULL, NULL);
                v_enum(c, p, "type", true, ptypes);
                v_int(c, p, "value", true, 1, INT32_MAX, NULL);
                v_int(c, p, "periodSeconds", true, 1, HPA_PERIOD_MAX, NULL);
            }
            v_pop(c, o3);
        }
        v_pop(c, o2);
    }
    v_pop(c, old);
}

void v_hpa_spec(vctx_t *c, cJSON *spec)
{
    static const char known[] = "scaleTargetRef\0"
                                "minReplicas\0"
                                "maxReplicas\0"
                                "metrics\0"
                                "behavior\0";
    v_fields(c, spec, known, NULL, NULL);
    v_target_ref(c, spec);
    int64_t min = 1, max = 0;
    bool has_min = v_int(c, spec, "minReplicas", false, 1, INT32_MAX, &min);
    if (!has_min && !drv_json_get(spec, "minReplicas"))
        v_default_int(c, spec, "minReplicas", 1);
    if (v_int(c, spec, "maxReplicas", true, 1, INT32_MAX, &max) && max < min)
        v_failk(c, "maxReplicas", "must be greater than or equal to `minReplicas`");

    cJSON *metrics = v_arr(c, spec, "metrics", false);
    if (!metrics && !drv_json_get(spec, "metrics")) {
        /* Kubernetes' default: cpu at 80 % of requests. */
        cJSON *def = cJSON_Parse("[{\"type\":\"Resource\",\"resource\":{\"name\":\"cpu\","
                                 "\"target\":{\"type\":\"Utilization\","
                                 "\"averageUtilization\":80}}}]");
        if (!def || !cJSON_AddItemToObject(spec, "metrics", def)) {
            cJSON_Delete(def);
            c->nomem = true;
        }
    } else if (metrics) {
        size_t old = v_push_key(c, "metrics");
        size_t i = 0;
        cJSON *m;
        cJSON_ArrayForEach(m, metrics)
        {
            size_t o2 = v_push_index(c, i++);
            if (!cJSON_IsObject(m))
                v_fail(c, "must be an object");
            else
                v_metric(c, m);
            v_pop(c, o2);
        }
        v_pop(c, old);
    }
    cJSON *beh = v_obj(c, spec, "behavior", false);
    if (beh) {
        static const char bknown[] = "scaleUp\0"
                                     "scaleDown\0";
        size_t old = v_push_key(c, "behavior");
        v_fields(c, beh, bknown, NULL, NULL);
        v_rules(c, beh, "scaleUp", true);
        v_rules(c, beh, "scaleDown", false);
        v_pop(c, old);
    }
}

/* An autoscaling/v1 HorizontalPodAutoscaler, the form many manifests still use, read as the v2
 * object it stands for (as the API server converts it): targetCPUUtilizationPercentage becomes
 * a cpu Utilization metric; the stored and served object is autoscaling/v2. */
void v_hpa_from_v1(vctx_t *c, cJSON *obj)
{
    cJSON *spec = drv_json_get(obj, "spec");
    if (cJSON_IsObject(spec)) {
        size_t old = v_push_key(c, "spec");
        if (drv_json_get(spec, "metrics") || drv_json_get(spec, "behavior"))
            v_fail(c, "autoscaling/v1 has no metrics or behavior: use apiVersion autoscaling/v2");
        cJSON *t = drv_json_get(spec, "targetCPUUtilizationPercentage");
        int64_t pct = 0;
        if (t && (!cJSON_IsNumber(t) || !drv_json_to_int(t->valuedouble, 1, INT32_MAX, &pct))) {
            v_failk(c, "targetCPUUtilizationPercentage", "must be a whole number from 1");
        } else if (t) {
            cJSON *m = cJSON_CreateArray(), *e = cJSON_CreateObject(), *r = NULL, *tg = NULL;
            bool ok = m && e && cJSON_AddItemToArray(m, e) &&
                      cJSON_AddStringToObject(e, "type", "Resource") &&
                      (r = cJSON_AddObjectToObject(e, "resource")) &&
                      cJSON_AddStringToObject(r, "name", "cpu") &&
                      (tg = cJSON_AddObjectToObject(r, "target")) &&
                      cJSON_AddStringToObject(tg, "type", "Utilization") &&
                      cJSON_AddNumberToObject(tg, "averageUtilization", (double)pct);
            if (!ok) {
                if (!m || cJSON_GetArraySize(m) == 0)
                    cJSON_Delete(e); /* not in m: m does not free it */
                cJSON_Delete(m);
                c->nomem = true;
            } else {
                cJSON_DeleteItemFromObjectCaseSensitive(spec, "targetCPUUtilizationPercentage");
                if (!cJSON_AddItemToObject(spec, "metrics", m)) {
                    cJSON_Delete(m);
                    c->nomem = true;
                }
            }
        }
        v_pop(c, old);
    }
    v_set_str(c, obj, "apiVersion", "autoscaling/v2");
}
