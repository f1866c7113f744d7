/* The device agent's kinds table (shared/src/model_agent.c, linked into every program that
 * links drover-agent-core in place of the hub's model_kinds.c): what a device receives is
 * validated and defaulted by the same validators as on the hub, and every other kind is
 * refused with a problem that names the kind and the hub. */
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

static drv_err_t norm(const char *json, cJSON **out, char **problems)
{
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    drv_diags_t d = {0};
    drv_err_t rc = drv_model_normalize(o, &d);
    *problems = drv_diags_format(&d, NULL);
    drv_diags_free(&d);
    *out = o;
    return rc;
}

static void test_pod_defaults(void **state)
{
    (void)state;
    cJSON *o;
    char *p;
    assert_int_equal(norm("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\"},"
                          "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}}",
                          &o, &p),
                     DRV_OK);
    /* Kubernetes' defaults, as the hub's table gives them (test_model.c). */
    cJSON *spec = drv_json_get(o, "spec");
    assert_string_equal(drv_json_str(spec, "restartPolicy"), "Always");
    assert_string_equal(drv_json_str(drv_json_get(o, "metadata"), "namespace"), "default");
    cJSON *c0 = cJSON_GetArrayItem(drv_json_get(spec, "containers"), 0);
    assert_string_equal(drv_json_str(c0, "imagePullPolicy"), "Always");
    free(p);
    cJSON_Delete(o);
}

static void test_pod_problems(void **state)
{
    (void)state;
    cJSON *o;
    char *p;
    assert_int_equal(norm("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\"},"
                          "\"spec\":{\"containers\":[{\"name\":\"c\"}],\"bogus\":1}}",
                          &o, &p),
                     DRV_ERR_INVALID);
    assert_non_null(strstr(p, "spec.containers[0].image: required"));
    assert_non_null(strstr(p, "spec.bogus"));
    free(p);
    cJSON_Delete(o);
}

static void test_device_kinds(void **state)
{
    (void)state;
    static const char *const good[] = {
        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"},"
        "\"data\":{\"k\":\"v\"}}",
        "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"a\"},"
        "\"stringData\":{\"k\":\"v\"}}",
        "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolume\",\"metadata\":{\"name\":\"pv1\"},"
        "\"spec\":{\"capacity\":{\"storage\":\"1Gi\"},\"accessModes\":[\"ReadWriteOnce\"],"
        "\"hostPath\":{\"path\":\"/x\"}}}",
        /* The network section's policies: netstate.c normalises each on the device. */
        "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\",\"metadata\":"
        "{\"name\":\"p\",\"namespace\":\"default\"},\"spec\":{\"podSelector\":{}}}",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cJSON *o;
        char *p;
        drv_err_t rc = norm(good[i], &o, &p);
        if (rc != DRV_OK)
            fail_msg("%s: %s", good[i], p);
        free(p);
        cJSON_Delete(o);
    }
}

static void test_hub_kinds_refused(void **state)
{
    (void)state;
    cJSON *o;
    char *p;
    assert_int_equal(norm("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":"
                          "{\"name\":\"a\"},\"spec\":{}}",
                          &o, &p),
                     DRV_ERR_INVALID);
    assert_non_null(strstr(p, "kind: Deployment is checked by the hub, not on a device"));
    free(p);
    cJSON_Delete(o);
    /* An unknown kind gets the same answer as on the hub. */
    assert_int_equal(
        norm("{\"apiVersion\":\"v1\",\"kind\":\"Nope\",\"metadata\":{\"name\":\"a\"}}", &o, &p),
        DRV_ERR_INVALID);
    assert_non_null(strstr(p, "unsupported kind \"Nope\""));
    free(p);
    cJSON_Delete(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pod_defaults),
        cmocka_unit_test(test_pod_problems),
        cmocka_unit_test(test_device_kinds),
        cmocka_unit_test(test_hub_kinds_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
