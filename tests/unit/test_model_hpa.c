/* HorizontalPodAutoscaler validation and defaults (shared/src/model_hpa.c): Kubernetes'
 * defaults land in the object, its rules name the field, and valid Kubernetes that Drover does
 * not do says so. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "drover/json.h"
#include "drover/model.h"

#define HEAD                                                                                       \
    "{\"apiVersion\":\"autoscaling/v2\",\"kind\":\"HorizontalPodAutoscaler\","                     \
    "\"metadata\":{\"name\":\"web\",\"namespace\":\"default\"},"

/* Normalizes json; returns the object (caller deletes) and the problems as one string. */
static cJSON *norm(const char *json, drv_err_t *rc, char **problems)
{
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    drv_diags_t d = {0};
    *rc = drv_model_normalize(o, &d);
    *problems = drv_diags_format(&d, NULL);
    drv_diags_free(&d);
    return o;
}

static void ok(const char *json, cJSON **out)
{
    drv_err_t rc;
    char *p;
    cJSON *o = norm(json, &rc, &p);
    if (rc != DRV_OK)
        fail_msg("refused: %s", p ? p : "?");
    free(p);
    *out = o;
}

static void bad(const char *json, const char *expect)
{
    drv_err_t rc;
    char *p;
    cJSON *o = norm(json, &rc, &p);
    if (rc == DRV_OK || !p || !strstr(p, expect))
        fail_msg("expected \"%s\", got %d: %s", expect, (int)rc, p ? p : "");
    free(p);
    cJSON_Delete(o);
}

static void test_defaults(void **state)
{
    (void)state;
    cJSON *o;
    ok(HEAD "\"spec\":{\"scaleTargetRef\":{\"kind\":\"Deployment\",\"name\":\"web\"},"
            "\"maxReplicas\":5}}",
       &o);
    assert_int_equal(drv_json_int_at(o, "spec.minReplicas", 0, 100, -1), 1);
    assert_string_equal(drv_json_str_at(o, "spec.scaleTargetRef.apiVersion"), "apps/v1");
    const cJSON *m = cJSON_GetArrayItem(drv_json_at(o, "spec.metrics"), 0);
    assert_string_equal(drv_json_str_at(m, "resource.name"), "cpu");
    assert_int_equal(drv_json_int_at(m, "resource.target.averageUtilization", 0, 100, -1), 80);
    assert_null(drv_json_at(o, "spec.behavior")); /* no behavior: none added */
    cJSON_Delete(o);

    /* A behavior with only scaleDown's window: the rest filled as Kubernetes does. */
    ok(HEAD "\"spec\":{\"scaleTargetRef\":{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
            "\"name\":\"web\"},\"minReplicas\":2,\"maxReplicas\":5,\"metrics\":[{\"type\":"
            "\"Resource\",\"resource\":{\"name\":\"memory\",\"target\":{\"type\":\"AverageValue\","
            "\"averageValue\":\"200Mi\"}}}],\"behavior\":{\"scaleDown\":"
            "{\"stabilizationWindowSeconds\":30}}}}",
       &o);
    assert_int_equal(
        drv_json_int_at(o, "spec.behavior.scaleDown.stabilizationWindowSeconds", 0, 5000, -1), 30);
    assert_string_equal(drv_json_str_at(o, "spec.behavior.scaleDown.selectPolicy"), "Max");
    assert_int_equal(drv_json_array_len(drv_json_at(o, "spec.behavior.scaleDown.policies")), 1);
    assert_int_equal(drv_json_array_len(drv_json_at(o, "spec.behavior.scaleUp.policies")), 2);
    assert_int_equal(
        drv_json_int_at(o, "spec.behavior.scaleUp.stabilizationWindowSeconds", 0, 5000, -1), 0);
    cJSON_Delete(o);
}

#define REF "\"scaleTargetRef\":{\"kind\":\"Deployment\",\"name\":\"web\"},"

static void test_refused(void **state)
{
    (void)state;
    bad(HEAD "\"spec\":{\"maxReplicas\":3}}", "spec.scaleTargetRef: required");
    bad(HEAD "\"spec\":{" REF "\"minReplicas\":0,\"maxReplicas\":3}}", "spec.minReplicas");
    bad(HEAD "\"spec\":{" REF "\"minReplicas\":4,\"maxReplicas\":3}}",
        "spec.maxReplicas: must be greater than or equal to `minReplicas`");
    bad(HEAD "\"spec\":{" REF "\"minReplicas\":1}}", "spec.maxReplicas: required");
    bad(HEAD "\"spec\":{\"scaleTargetRef\":{\"kind\":\"StatefulSet\",\"name\":\"db\"},"
             "\"maxReplicas\":3}}",
        "spec.scaleTargetRef.kind: \"StatefulSet\" is not supported by Drover");
    bad(HEAD "\"spec\":{" REF "\"maxReplicas\":3,\"metrics\":[{\"type\":\"External\","
             "\"external\":{}}]}}",
        "spec.metrics[0].type: External metrics are not supported by Drover");
    bad(HEAD "\"spec\":{" REF "\"maxReplicas\":3,\"metrics\":[{\"type\":\"Resource\","
             "\"resource\":{\"name\":\"cpu\",\"target\":{\"type\":\"Utilization\"}}}]}}",
        "spec.metrics[0].resource.target.averageUtilization: required");
    bad(HEAD "\"spec\":{" REF "\"maxReplicas\":3,\"metrics\":[{\"type\":\"Resource\","
             "\"resource\":{\"name\":\"cpu\",\"target\":{\"type\":\"Utilization\","
             "\"averageUtilization\":0}}}]}}",
        "spec.metrics[0].resource.target.averageUtilization");
    bad(HEAD "\"spec\":{" REF "\"maxReplicas\":3,\"metrics\":[{\"type\":\"Resource\","
             "\"resource\":{\"name\":\"cpu\",\"target\":{\"type\":\"Value\",\"value\":\"1\"}}}]}}",
        "must be either Utilization or AverageValue");
    bad(HEAD "\"spec\":{" REF "\"maxReplicas\":3,\"metrics\":[{\"type\":\"Resource\","
             "\"resource\":{\"name\":\"cpu\",\"target\":{\"type\":\"AverageValue\","
             "\"averageValue\":\"lots\"}}}]}}",
        "spec.metrics[0].resource.target.averageValue");
    bad(HEAD "\"spec\":{" REF "\"maxReplicas\":3,\"metrics\":[{\"type\":\"Resource\","
             "\"resource\":{\"name\":\"gpu\",\"target\":{\"type\":\"Utilization\","
             "\"averageUtilization\":50}}}]}}",
        "spec.metrics[0].resource.name");
    bad(HEAD "\"spec\":{" REF "\"maxReplicas\":3,\"behavior\":{\"scaleUp\":{\"policies\":[]}}}}",
        "spec.behavior.scaleUp.policies: must specify at least one Policy");
    bad(HEAD "\"spec\":{" REF "\"maxReplicas\":3,\"behavior\":{\"scaleDown\":{\"policies\":"
             "[{\"type\":\"Pods\",\"value\":1,\"periodSeconds\":1801}]}}}}",
        "spec.behavior.scaleDown.policies[0].periodSeconds");
    bad(HEAD "\"spec\":{" REF "\"maxReplicas\":3,\"behavior\":{\"scaleDown\":"
             "{\"stabilizationWindowSeconds\":3601}}}}",
        "spec.behavior.scaleDown.stabilizationWindowSeconds");
    bad(HEAD "\"spec\":{" REF "\"maxReplicas\":3,\"behavior\":{\"scaleUp\":"
             "{\"selectPolicy\":\"Sometimes\"}}}}",
        "spec.behavior.scaleUp.selectPolicy");
    bad("{\"apiVersion\":\"autoscaling/v1\",\"kind\":\"HorizontalPodAutoscaler\","
        "\"metadata\":{\"name\":\"web\"},\"spec\":{" REF "\"maxReplicas\":3,\"metrics\":[]}}",
        "spec: autoscaling/v1 has no metrics or behavior: use apiVersion autoscaling/v2");
    bad("{\"apiVersion\":\"autoscaling/v2beta2\",\"kind\":\"HorizontalPodAutoscaler\","
        "\"metadata\":{\"name\":\"web\"},\"spec\":{" REF "\"maxReplicas\":3}}",
        "apiVersion: \"autoscaling/v2beta2\" is not supported for HorizontalPodAutoscaler: use "
        "autoscaling/v2");
}

/* autoscaling/v1, as many manifests still are: read as the v2 object it stands for. */
static void test_v1(void **state)
{
    (void)state;
    cJSON *o;
    ok("{\"apiVersion\":\"autoscaling/v1\",\"kind\":\"HorizontalPodAutoscaler\","
       "\"metadata\":{\"name\":\"php-apache\"},\"spec\":{\"scaleTargetRef\":{\"apiVersion\":"
       "\"apps/v1\",\"kind\":\"Deployment\",\"name\":\"php-apache\"},\"minReplicas\":1,"
       "\"maxReplicas\":10,\"targetCPUUtilizationPercentage\":50}}",
       &o);
    assert_string_equal(drv_json_str(o, "apiVersion"), "autoscaling/v2");
    assert_null(drv_json_at(o, "spec.targetCPUUtilizationPercentage"));
    const cJSON *m = cJSON_GetArrayItem(drv_json_at(o, "spec.metrics"), 0);
    assert_string_equal(drv_json_str_at(m, "resource.name"), "cpu");
    assert_int_equal(drv_json_int_at(m, "resource.target.averageUtilization", 0, 100, -1), 50);
    cJSON_Delete(o);
    /* without a target: Kubernetes' default, cpu at 80 % */
    ok("{\"apiVersion\":\"autoscaling/v1\",\"kind\":\"HorizontalPodAutoscaler\","
       "\"metadata\":{\"name\":\"web\"},\"spec\":{" REF "\"maxReplicas\":3}}",
       &o);
    m = cJSON_GetArrayItem(drv_json_at(o, "spec.metrics"), 0);
    assert_int_equal(drv_json_int_at(m, "resource.target.averageUtilization", 0, 100, -1), 80);
    cJSON_Delete(o);
    bad("{\"apiVersion\":\"autoscaling/v1\",\"kind\":\"HorizontalPodAutoscaler\","
        "\"metadata\":{\"name\":\"web\"},\"spec\":{" REF "\"maxReplicas\":3,"
        "\"targetCPUUtilizationPercentage\":0}}",
        "spec.targetCPUUtilizationPercentage: must be a whole number from 1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_v1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
