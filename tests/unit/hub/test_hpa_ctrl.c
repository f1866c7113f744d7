/* The HorizontalPodAutoscaler controller (hub/ctrl/hpa.c) over a real store: what it writes to
 * the Deployment, the HPA's status and conditions, and its events, as Kubernetes' controller
 * writes them; a node that is not Ready makes its pods' usage missing, never zero. Usage comes
 * from a table the test fills; time is passed in. */
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
    drv_ctrl_hpa_t *h;
};

/* usage by pod uid: millicores; < 0: none */
static struct {
    char uid[64];
    int64_t mcpu;
} g_usage[16];
static size_t g_nusage;

static bool usage(void *ctx, const char *uid, int64_t now_ms, drv_ctrl_usage_t *out)
{
    (void)ctx;
    for (size_t i = 0; i < g_nusage; i++)
        if (!strcmp(g_usage[i].uid, uid) && g_usage[i].mcpu >= 0) {
            *out = (drv_ctrl_usage_t){.has_cpu = true,
                                      .cpu_millicores = g_usage[i].mcpu,
                                      .has_memory = true,
                                      .memory_bytes = 1 << 20,
                                      .sample_ms = now_ms - 1000,
                                      .window_ms = 15000};
            return true;
        }
    return false;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/drover-hpa-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char path[128];
    snprintf(path, sizeof(path), "%s/hub.db", f->dir);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_open(path, &f->s, &err) != DRV_OK ||
        drv_ctrl_hpa_new(15000, &f->h, &err) != DRV_OK)
        return -1;
    g_nusage = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    drv_ctrl_hpa_free(f->h);
    drv_hstore_close(f->s);
    nftw(f->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void create(drv_hstore_t *s, const char *text)
{
    cJSON *o = cJSON_Parse(text);
    assert_non_null(o);
    drv_diags_t d = {0};
    if (drv_model_normalize(o, &d) != DRV_OK)
        fail_msg("invalid test object: %s", drv_diags_format(&d, ""));
    drv_diags_free(&d);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_create(s, drv_model_kind(o), o, &err) != DRV_OK)
        fail_msg("create: %s", drv_error_msg(&err));
    cJSON_Delete(o);
}

static void set_status(drv_hstore_t *s, drv_kind_t kind, const char *name, const char *status)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_update_status(s, kind, kind == DRV_KIND_NODE ? NULL : "default", name,
                                 cJSON_Parse(status), NULL, &err) != DRV_OK)
        fail_msg("status of %s: %s", name, drv_error_msg(&err));
}

static cJSON *get(drv_hstore_t *s, drv_kind_t kind, const char *name)
{
    cJSON *o = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_get(s, kind, kind == DRV_KIND_NODE ? NULL : "default", name, &o, &err) != DRV_OK)
        fail_msg("get %s: %s", name, drv_error_msg(&err));
    return o;
}

static void node(drv_hstore_t *s, const char *name, bool ready)
{
    char t[512];
    snprintf(t, sizeof(t),
             "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\"}}", name);
    cJSON *o = cJSON_Parse(t);
    drv_error_t err = DRV_ERROR_INIT;
    drv_diags_t d = {0};
    assert_int_equal(drv_model_normalize(o, &d), DRV_OK);
    drv_diags_free(&d);
    if (drv_hstore_create(s, DRV_KIND_NODE, o, &err) != DRV_OK && err.code != DRV_ERR_EXISTS)
        fail_msg("node: %s", drv_error_msg(&err));
    cJSON_Delete(o);
    snprintf(t, sizeof(t), "{\"conditions\":[{\"type\":\"Ready\",\"status\":\"%s\"}]}",
             ready ? "True" : "Unknown");
    set_status(s, DRV_KIND_NODE, name, t);
}

/* A running, ready pod of the Deployment "web" on node n1, started an hour before T0. */
static void pod(drv_hstore_t *s, const char *name, const char *nodename, int64_t mcpu)
{
    char t[1024];
    snprintf(t, sizeof(t),
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"default\",\"labels\":{\"app\":\"web\"}},\"spec\":{\"nodeName\":"
             "\"%s\",\"containers\":[{\"name\":\"c\",\"image\":\"busybox\",\"resources\":"
             "{\"requests\":{\"cpu\":\"100m\"}}}]}}",
             name, nodename);
    create(s, t);
    set_status(s, DRV_KIND_POD, name,
               "{\"phase\":\"Running\",\"startTime\":\"2027-01-15T07:00:00Z\",\"conditions\":"
               "[{\"type\":\"Ready\",\"status\":\"True\","
               "\"lastTransitionTime\":\"2027-01-15T07:00:10Z\"}]}");
    cJSON *o = get(s, DRV_KIND_POD, name);
    snprintf(g_usage[g_nusage].uid, sizeof(g_usage[0].uid), "%s",
             drv_json_str_at(o, "metadata.uid"));
    g_usage[g_nusage++].mcpu = mcpu;
    cJSON_Delete(o);
}

static const char *condition(const cJSON *hpa, const char *type, const char **reason)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, drv_json_at(hpa, "status.conditions"))
    {
        if (!strcmp(drv_json_str(c, "type"), type)) {
            *reason = drv_json_str(c, "reason");
            return drv_json_str(c, "status");
        }
    }
    *reason = "";
    return "";
}

static int count_events(drv_hstore_t *s, const char *reason, char *msg, size_t msgsz)
{
    cJSON *items = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_list(s, DRV_KIND_EVENT, NULL, NULL, &items, NULL, &err), DRV_OK);
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, items)
    {
        if (!strcmp(drv_json_str_or(e, "reason", ""), reason)) {
            n++;
            if (msg)
                snprintf(msg, msgsz, "%s", drv_json_str_or(e, "message", ""));
        }
    }
    cJSON_Delete(items);
    return n;
}

static void reconcile(struct fx *f, int64_t now)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_ctrl_hpas_reconcile(f->s, f->h, usage, NULL, now, &err) != DRV_OK)
        fail_msg("reconcile: %s", drv_error_msg(&err));
}

static const char DEPLOY[] =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
    "\"namespace\":\"default\"},\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":{\"app\":"
    "\"web\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":"
    "[{\"name\":\"c\",\"image\":\"busybox\",\"resources\":{\"requests\":{\"cpu\":\"100m\"}}}]}}}}";

static void test_scale_up(void **state)
{
    struct fx *f = *state;
    node(f->s, "n1", true);
    create(f->s, DEPLOY);
    pod(f->s, "web-a", "n1", 150);
    pod(f->s, "web-b", "n1", 150);
    create(f->s, "{\"apiVersion\":\"autoscaling/v2\",\"kind\":\"HorizontalPodAutoscaler\","
                 "\"metadata\":{\"name\":\"web\",\"namespace\":\"default\"},\"spec\":"
                 "{\"scaleTargetRef\":{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
                 "\"name\":\"web\"},\"minReplicas\":1,\"maxReplicas\":10,\"metrics\":[{\"type\":"
                 "\"Resource\",\"resource\":{\"name\":\"cpu\",\"target\":{\"type\":"
                 "\"Utilization\",\"averageUtilization\":50}}}]}}");
    reconcile(f, T0);
    /* 150 % of requests against 50 %: 3 x 2 = 6, limited to max(2 x 2, 4) = 4 */
    cJSON *d = get(f->s, DRV_KIND_DEPLOYMENT, "web");
    assert_int_equal(drv_json_int_at(d, "spec.replicas", 0, 100, -1), 4);
    cJSON_Delete(d);
    cJSON *h = get(f->s, DRV_KIND_HPA, "web");
    assert_int_equal(drv_json_int_at(h, "status.currentReplicas", 0, 100, -1), 2);
    assert_int_equal(drv_json_int_at(h, "status.desiredReplicas", 0, 100, -1), 4);
    assert_non_null(drv_json_str_at(h, "status.lastScaleTime"));
    const cJSON *m = cJSON_GetArrayItem(drv_json_at(h, "status.currentMetrics"), 0);
    assert_int_equal(drv_json_int_at(m, "resource.current.averageUtilization", 0, 1000, -1), 150);
    assert_string_equal(drv_json_str_at(m, "resource.current.averageValue"), "150m");
    const char *why;
    assert_string_equal(condition(h, "AbleToScale", &why), "True");
    assert_string_equal(why, "SucceededRescale");
    assert_string_equal(condition(h, "ScalingActive", &why), "True");
    assert_string_equal(why, "ValidMetricFound");
    assert_string_equal(condition(h, "ScalingLimited", &why), "True");
    assert_string_equal(why, "ScaleUpLimit");
    cJSON_Delete(h);
    char msg[256];
    assert_int_equal(count_events(f->s, "SuccessfulRescale", msg, sizeof(msg)), 1);
    assert_string_equal(msg, "New size: 4; reason: cpu resource utilization (percentage of "
                             "request) above target");
    /* Not before the sync period: nothing changes */
    reconcile(f, T0 + 5000);
    assert_int_equal(count_events(f->s, "SuccessfulRescale", NULL, 0), 1);
}

/* A node that stops answering: its pods' usage is missing. Missing pods count at 100 % of
 * their request on a scale-down: no scale-down from a partition. */
static void test_partition_is_not_idle(void **state)
{
    struct fx *f = *state;
    node(f->s, "n1", true);
    node(f->s, "n2", true);
    create(f->s, DEPLOY);
    pod(f->s, "web-a", "n1", 50);
    pod(f->s, "web-b", "n2", 50);
    create(f->s, "{\"apiVersion\":\"autoscaling/v2\",\"kind\":\"HorizontalPodAutoscaler\","
                 "\"metadata\":{\"name\":\"web\",\"namespace\":\"default\"},\"spec\":"
                 "{\"scaleTargetRef\":{\"kind\":\"Deployment\",\"name\":\"web\"},"
                 "\"maxReplicas\":10,\"behavior\":{\"scaleDown\":{\"stabilizationWindowSeconds\":"
                 "0}}}}");
    reconcile(f, T0); /* default target: cpu 80 %; 50 % -> ceil(0.625 x 2) = 2: no change */
    cJSON *d = get(f->s, DRV_KIND_DEPLOYMENT, "web");
    assert_int_equal(drv_json_int_at(d, "spec.replicas", 0, 100, -1), 2);
    cJSON_Delete(d);
    /* n2 goes NotReady; its pod reports nothing; n1's is idle. */
    node(f->s, "n2", false);
    g_usage[0].mcpu = 5;
    reconcile(f, T0 + 16000);
    d = get(f->s, DRV_KIND_DEPLOYMENT, "web");
    /* 5 % on one pod, the other at 100 %: (5 + 100) / 200 = 52 % -> 0.65: ceil(1.3) = 2 */
    assert_int_equal(drv_json_int_at(d, "spec.replicas", 0, 100, -1), 2);
    cJSON_Delete(d);
    /* Both gone silent: no metrics at all: ScalingActive False, nothing scaled, one warning
     * however often it is tried. */
    node(f->s, "n1", false);
    reconcile(f, T0 + 32000);
    reconcile(f, T0 + 48000);
    cJSON *h = get(f->s, DRV_KIND_HPA, "web");
    const char *why;
    assert_string_equal(condition(h, "ScalingActive", &why), "False");
    assert_string_equal(why, "FailedGetResourceMetric");
    cJSON_Delete(h);
    d = get(f->s, DRV_KIND_DEPLOYMENT, "web");
    assert_int_equal(drv_json_int_at(d, "spec.replicas", 0, 100, -1), 2);
    cJSON_Delete(d);
    assert_int_equal(count_events(f->s, "FailedGetResourceMetric", NULL, 0), 1);
}

static void test_target_missing(void **state)
{
    struct fx *f = *state;
    create(f->s, "{\"apiVersion\":\"autoscaling/v2\",\"kind\":\"HorizontalPodAutoscaler\","
                 "\"metadata\":{\"name\":\"web\",\"namespace\":\"default\"},\"spec\":"
                 "{\"scaleTargetRef\":{\"kind\":\"Deployment\",\"name\":\"nope\"},"
                 "\"maxReplicas\":3}}");
    reconcile(f, T0);
    cJSON *h = get(f->s, DRV_KIND_HPA, "web");
    const char *why;
    assert_string_equal(condition(h, "AbleToScale", &why), "False");
    assert_string_equal(why, "FailedGetScale");
    cJSON_Delete(h);
    char msg[256];
    assert_int_equal(count_events(f->s, "FailedGetScale", msg, sizeof(msg)), 1);
    assert_non_null(strstr(msg, "deployments.apps \"nope\" not found"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scale_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partition_is_not_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_target_missing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
