/* Pod priority over a real store: the built-in PriorityClasses exist, a Pod gets spec.priority
 * and preemptionPolicy from its class (or the globalDefault one) when it is created, an unknown
 * class or a disagreeing priority is refused with Kubernetes' message, and the scheduler takes
 * the higher priority first when both cannot fit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctrl/ctrl.h"
#include "drover/json.h"

#define T0 1800000000000LL

struct fx {
    char dir[64];
    drv_hstore_t *s;
};

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/drover-prio-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char path[128];
    snprintf(path, sizeof(path), "%s/hub.db", f->dir);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_open(path, &f->s, &err) != DRV_OK ||
        drv_hstore_priority_classes_enable(f->s, &err) != DRV_OK) {
        fprintf(stderr, "store: %s\n", drv_error_msg(&err));
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    drv_hstore_close(f->s);
    nftw(f->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Normalizes and creates text; returns the store's answer, err's message in msg. */
static drv_err_t create(drv_hstore_t *s, const char *text, char msg[512])
{
    cJSON *o = cJSON_Parse(text);
    assert_non_null(o);
    drv_diags_t d = {0};
    if (drv_model_normalize(o, &d) != DRV_OK) {
        char *m = drv_diags_format(&d, "");
        fail_msg("invalid test object: %s", m);
    }
    drv_diags_free(&d);
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_create(s, drv_model_kind(o), o, &err);
    snprintf(msg, 512, "%s", r == DRV_OK ? "" : drv_error_msg(&err));
    cJSON_Delete(o);
    return r;
}

static drv_err_t create_pod(drv_hstore_t *s, const char *name, const char *extra, char msg[512])
{
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\"},\"spec\":{%s"
             "\"containers\":[{\"name\":\"c\",\"image\":\"busybox:1\",\"resources\":{"
             "\"requests\":{\"cpu\":\"3\"}}}]}}",
             name, extra);
    return create(s, buf, msg);
}

static cJSON *pod_spec(drv_hstore_t *s, const char *name)
{
    cJSON *p = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_get(s, DRV_KIND_POD, "default", name, &p, &err), DRV_OK);
    return p;
}

static void test_builtin_classes_stored(void **state)
{
    struct fx *f = *state;
    cJSON *pc = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(
        drv_hstore_get(f->s, DRV_KIND_PRIORITYCLASS, NULL, "system-node-critical", &pc, &err),
        DRV_OK);
    assert_int_equal(drv_json_int_or(pc, "value", 0), 2000001000);
    assert_string_equal(drv_json_str(pc, "preemptionPolicy"), "PreemptLowerPriority");
    cJSON_Delete(pc);
    /* Enabling again (a hub restart) is a no-op. */
    assert_int_equal(drv_hstore_priority_classes_enable(f->s, &err), DRV_OK);
}

static void test_priority_set_at_create(void **state)
{
    struct fx *f = *state;
    char msg[512];
    assert_int_equal(
        create_pod(f->s, "crit", "\"priorityClassName\":\"system-cluster-critical\",", msg),
        DRV_OK);
    cJSON *p = pod_spec(f->s, "crit");
    assert_int_equal(drv_json_int_or(drv_json_get(p, "spec"), "priority", 0), 2000000000);
    assert_string_equal(drv_json_str(drv_json_get(p, "spec"), "preemptionPolicy"),
                        "PreemptLowerPriority");
    cJSON_Delete(p);
    /* A built-in class deleted is still known. */
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(
        drv_hstore_delete(f->s, DRV_KIND_PRIORITYCLASS, NULL, "system-node-critical", NULL, &err),
        DRV_OK);
    assert_int_equal(
        create_pod(f->s, "node-crit", "\"priorityClassName\":\"system-node-critical\",", msg),
        DRV_OK);
    p = pod_spec(f->s, "node-crit");
    assert_int_equal(drv_json_int_or(drv_json_get(p, "spec"), "priority", 0), 2000001000);
    cJSON_Delete(p);
    /* Unknown class, priority or policy disagreeing: refused, as Kubernetes' admission. */
    assert_int_equal(create_pod(f->s, "x", "\"priorityClassName\":\"gold\",", msg), DRV_ERR_PERM);
    assert_string_equal(msg, "pods \"x\" is forbidden: no PriorityClass with name gold was found");
    assert_int_equal(create(f->s,
                            "{\"apiVersion\":\"scheduling.k8s.io/v1\",\"kind\":\"PriorityClass\","
                            "\"metadata\":{\"name\":\"gold\"},\"value\":1000,"
                            "\"preemptionPolicy\":\"Never\"}",
                            msg),
                     DRV_OK);
    assert_int_equal(create_pod(f->s, "x", "\"priorityClassName\":\"gold\",\"priority\":5,", msg),
                     DRV_ERR_PERM);
    assert_string_equal(msg, "pods \"x\" is forbidden: the integer value of priority (5) must "
                             "not be provided in pod "
                             "spec; priority admission controller computed 1000 from the given "
                             "PriorityClass name");
    assert_int_equal(create_pod(f->s, "x",
                                "\"priorityClassName\":\"gold\",\"preemptionPolicy\":"
                                "\"PreemptLowerPriority\",",
                                msg),
                     DRV_ERR_PERM);
    assert_int_equal(create_pod(f->s, "gold", "\"priorityClassName\":\"gold\",", msg), DRV_OK);
    p = pod_spec(f->s, "gold");
    assert_int_equal(drv_json_int_or(drv_json_get(p, "spec"), "priority", 0), 1000);
    assert_string_equal(drv_json_str(drv_json_get(p, "spec"), "preemptionPolicy"), "Never");
    cJSON_Delete(p);
    /* No class and no default: nothing written (priority 0). Then a globalDefault class. */
    assert_int_equal(create_pod(f->s, "plain", "", msg), DRV_OK);
    p = pod_spec(f->s, "plain");
    assert_null(drv_json_get(drv_json_get(p, "spec"), "priority"));
    cJSON_Delete(p);
    assert_int_equal(create_pod(f->s, "zero", "\"priority\":0,", msg), DRV_OK);
    assert_int_equal(create_pod(f->s, "x", "\"priority\":7,", msg), DRV_ERR_PERM);
    assert_int_equal(create(f->s,
                            "{\"apiVersion\":\"scheduling.k8s.io/v1\",\"kind\":\"PriorityClass\","
                            "\"metadata\":{\"name\":\"normal\"},\"value\":100,"
                            "\"globalDefault\":true}",
                            msg),
                     DRV_OK);
    /* With two globalDefault classes the smaller value wins, as Kubernetes. */
    assert_int_equal(create(f->s,
                            "{\"apiVersion\":\"scheduling.k8s.io/v1\",\"kind\":\"PriorityClass\","
                            "\"metadata\":{\"name\":\"more\"},\"value\":200,"
                            "\"globalDefault\":true}",
                            msg),
                     DRV_OK);
    assert_int_equal(create_pod(f->s, "plain2", "", msg), DRV_OK);
    p = pod_spec(f->s, "plain2");
    assert_int_equal(drv_json_int_or(drv_json_get(p, "spec"), "priority", 0), 100);
    assert_string_equal(drv_json_str(drv_json_get(p, "spec"), "priorityClassName"), "normal");
    cJSON_Delete(p);
}

/* Two pending pods, room for one: the higher priority is bound even though the other is older
 * and first by name. */
static void test_queue_by_priority(void **state)
{
    struct fx *f = *state;
    char msg[512];
    assert_int_equal(create(f->s,
                            "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":"
                            "\"n1\"},\"spec\":{}}",
                            msg),
                     DRV_OK);
    cJSON *st = cJSON_Parse("{\"allocatable\":{\"cpu\":\"4\",\"memory\":\"4Gi\",\"pods\":\"110\"},"
                            "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],"
                            "\"nodeInfo\":{\"architecture\":\"arm64\",\"operatingSystem\":"
                            "\"linux\"}}");
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_update_status(f->s, DRV_KIND_NODE, NULL, "n1", st, NULL, &err),
                     DRV_OK);
    assert_int_equal(create_pod(f->s, "a-low", "", msg), DRV_OK);
    assert_int_equal(
        create_pod(f->s, "b-high", "\"priorityClassName\":\"system-cluster-critical\",", msg),
        DRV_OK);
    size_t bound = 0;
    assert_int_equal(drv_ctrl_schedule(f->s, NULL, NULL, T0, &bound, &err), DRV_OK);
    assert_int_equal(bound, 1);
    cJSON *hi = pod_spec(f->s, "b-high"), *lo = pod_spec(f->s, "a-low");
    assert_string_equal(drv_json_str_or(drv_json_get(hi, "spec"), "nodeName", ""), "n1");
    assert_null(drv_json_str(drv_json_get(lo, "spec"), "nodeName"));
    cJSON_Delete(hi);
    cJSON_Delete(lo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_builtin_classes_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority_set_at_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_by_priority, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
