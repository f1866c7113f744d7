/* The hub scheduler: each filter with its kube-scheduler reason, the scores (least allocated,
 * spreading, name order on ties), the usage cache, hostile pods, and a throughput figure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "drover/json.h"
#include "sched/sched.h"

static cJSON *json(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (j == NULL)
        fail_msg("bad test JSON: %s", text);
    return j;
}

/* A Node as an agent reports it. extra_spec/labels are JSON object bodies (may be ""). */
static cJSON *node(const char *name, const char *cpu, const char *mem, const char *arch, bool ready,
                   const char *labels, const char *spec)
{
    char buf[2048];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\","
             "\"labels\":{%s}},\"spec\":{%s},\"status\":{\"allocatable\":{\"cpu\":\"%s\","
             "\"memory\":\"%s\",\"pods\":\"110\"},\"capacity\":{\"cpu\":\"%s\",\"memory\":\"%s\"},"
             "\"conditions\":[{\"type\":\"Ready\",\"status\":\"%s\"}],"
             "\"nodeInfo\":{\"architecture\":\"%s\",\"operatingSystem\":\"linux\"}}}",
             name, labels, spec, cpu, mem, cpu, mem, ready ? "True" : "False", arch);
    return json(buf);
}

/* A pod requesting cpu/mem (NULL: none); extra is more spec members (may be ""). */
static cJSON *pod(const char *name, const char *cpu, const char *mem, const char *extra,
                  const char *ports)
{
    char req[256] = "";
    if (cpu || mem)
        snprintf(req, sizeof(req), "\"resources\":{\"requests\":{%s%s%s%s%s%s%s}},",
                 cpu ? "\"cpu\":\"" : "", cpu ? cpu : "", cpu ? "\"" : "", cpu && mem ? "," : "",
                 mem ? "\"memory\":\"" : "", mem ? mem : "", mem ? "\"" : "");
    char buf[2048];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"default\",\"labels\":{\"app\":\"web\"}},\"spec\":{%s%s"
             "\"containers\":[{\"name\":\"c\",\"image\":\"busybox:1\",%s"
             "\"ports\":[%s]}]}}",
             name, extra, *extra ? "," : "", req, ports ? ports : "");
    return json(buf);
}

static cJSON *arr(cJSON *a, ...)
{
    cJSON *out = cJSON_CreateArray();
    va_list ap;
    va_start(ap, a);
    for (cJSON *x = a; x; x = va_arg(ap, cJSON *))
        cJSON_AddItemToArray(out, x);
    va_end(ap);
    return out;
}

static void bind_to(cJSON *p, const char *n)
{
    cJSON_AddStringToObject(cJSON_GetObjectItem(p, "spec"), "nodeName", n);
}

/* Places p over nodes/bound; returns the result and fills chosen/reason. */
static drv_err_t place(cJSON *p, cJSON *nodes, cJSON *bound, const char *const *plat,
                       char chosen[64], char reason[DRV_SCHED_REASON_MAX])
{
    drv_error_t err = DRV_ERROR_INIT;
    chosen[0] = reason[0] = '\0';
    return drv_sched_place(p, nodes, bound, plat, chosen, 64, reason, DRV_SCHED_REASON_MAX, &err);
}

static void test_each_filter_reason(void **state)
{
    (void)state;
    static const char *const arm64[] = {"linux/arm64", NULL};
    struct {
        cJSON *node;
        const char *pod_extra;
        const char *const *plat;
        const char *reason;
    } cases[] = {
        {node("n1", "2", "2Gi", "arm64", false, "", ""), "", NULL,
         "0/1 nodes are available: 1 node(s) were not ready."},
        {node("n1", "2", "2Gi", "arm64", true, "", "\"unschedulable\":true"), "", NULL,
         "0/1 nodes are available: 1 node(s) were unschedulable."},
        {node("n1", "2", "2Gi", "arm", true, "", ""), "", arm64,
         "0/1 nodes are available: 1 node(s) didn't match the image's platforms."},
        {node("n1", "2", "2Gi", "arm64", true, "\"disk\":\"hdd\"", ""),
         "\"nodeSelector\":{\"disk\":\"ssd\"}", NULL,
         "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."},
        {node("n1", "2", "2Gi", "arm64", true, "",
              "\"taints\":[{\"key\":\"gpu\",\"value\":\"yes\",\"effect\":\"NoSchedule\"}]"),
         "", NULL, "0/1 nodes are available: 1 node(s) had untolerated taint {gpu: yes}."},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *nodes = arr(cases[i].node, NULL);
        cJSON *p = pod("p", NULL, NULL, cases[i].pod_extra, NULL);
        char chosen[64], reason[DRV_SCHED_REASON_MAX];
        assert_int_equal(place(p, nodes, NULL, cases[i].plat, chosen, reason), DRV_ERR_NOTFOUND);
        assert_string_equal(reason, cases[i].reason);
        cJSON_Delete(p);
        cJSON_Delete(nodes);
    }
}

static void test_filters_pass_when_satisfied(void **state)
{
    (void)state;
    static const char *const plats[] = {"linux/amd64", "linux/arm/v7", NULL};
    cJSON *nodes = arr(node("n1", "2", "2Gi", "arm", true, "\"disk\":\"ssd\"",
                            "\"taints\":[{\"key\":\"gpu\",\"value\":\"yes\",\"effect\":"
                            "\"NoSchedule\"},{\"key\":\"soft\",\"effect\":\"PreferNoSchedule\"}]"),
                       NULL);
    cJSON *p = pod("p", "1", "1Gi",
                   "\"nodeSelector\":{\"disk\":\"ssd\"},\"tolerations\":[{\"key\":\"gpu\","
                   "\"operator\":\"Equal\",\"value\":\"yes\",\"effect\":\"NoSchedule\"}]",
                   NULL);
    char chosen[64], reason[DRV_SCHED_REASON_MAX];
    assert_int_equal(place(p, nodes, NULL, plats, chosen, reason), DRV_OK);
    assert_string_equal(chosen, "n1");
    cJSON_Delete(p);
    cJSON_Delete(nodes);
}

static void test_toleration_rules(void **state)
{
    (void)state;
    struct {
        const char *tol, *taint;
        bool ok;
    } cases[] = {
        {"{\"operator\":\"Exists\"}", "{\"key\":\"a\",\"value\":\"b\",\"effect\":\"NoExecute\"}",
         true},
        {"{\"key\":\"a\",\"operator\":\"Exists\"}",
         "{\"key\":\"a\",\"value\":\"x\","
         "\"effect\":\"NoSchedule\"}",
         true},
        {"{\"key\":\"a\",\"operator\":\"Exists\",\"effect\":\"NoExecute\"}",
         "{\"key\":\"a\",\"effect\":\"NoSchedule\"}", false},
        {"{\"key\":\"a\",\"operator\":\"Equal\",\"value\":\"b\"}",
         "{\"key\":\"a\",\"value\":\"b\",\"effect\":\"NoSchedule\"}", true},
        {"{\"key\":\"a\",\"value\":\"b\"}",
         "{\"key\":\"a\",\"value\":\"c\",\"effect\":\"NoSchedule\"}", false},
        {"{\"key\":\"a\"}", "{\"key\":\"a\",\"effect\":\"NoSchedule\"}", true},
        {"{\"key\":\"b\",\"operator\":\"Exists\"}", "{\"key\":\"a\",\"effect\":\"NoSchedule\"}",
         false},
        {"{\"value\":\"b\"}", "{\"key\":\"a\",\"value\":\"b\",\"effect\":\"NoSchedule\"}", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *t = json(cases[i].tol), *taint = json(cases[i].taint);
        if (drv_sched_tolerates(t, taint) != cases[i].ok)
            fail_msg("case %zu: %s vs %s", i, cases[i].tol, cases[i].taint);
        cJSON_Delete(t);
        cJSON_Delete(taint);
    }
    /* NoExecute taints filter too; PreferNoSchedule does not. */
    cJSON *n = node("n", "1", "1Gi", "arm64", true, "",
                    "\"taints\":[{\"key\":\"x\",\"effect\":\"PreferNoSchedule\"},"
                    "{\"key\":\"y\",\"effect\":\"NoExecute\"}]");
    const cJSON *bad = drv_sched_untolerated_taint(n, NULL);
    assert_non_null(bad);
    assert_string_equal(cJSON_GetObjectItem(bad, "key")->valuestring, "y");
    cJSON *tols = json("[{\"operator\":\"Exists\"}]");
    assert_null(drv_sched_untolerated_taint(n, tols));
    cJSON_Delete(tols);
    cJSON_Delete(n);
}

static void test_kube_style_reason_histogram(void **state)
{
    (void)state;
    cJSON *nodes = arr(node("a", "1", "4Gi", "arm64", true, "", "\"unschedulable\":true"),
                       node("b", "1", "4Gi", "arm64", true, "", ""),
                       node("c", "500m", "4Gi", "arm64", true, "", ""), NULL);
    cJSON *p = pod("p", "2", "1Gi", "", NULL);
    char chosen[64], reason[DRV_SCHED_REASON_MAX];
    assert_int_equal(place(p, nodes, NULL, NULL, chosen, reason), DRV_ERR_NOTFOUND);
    assert_string_equal(
        reason, "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu.");
    cJSON_Delete(p);
    /* Both resources short on one node are both counted. */
    p = pod("p", "4", "8Gi", "", NULL);
    assert_int_equal(place(p, nodes, NULL, NULL, chosen, reason), DRV_ERR_NOTFOUND);
    assert_string_equal(reason, "0/3 nodes are available: 1 node(s) were unschedulable, 2 "
                                "Insufficient cpu, 2 Insufficient memory.");
    cJSON_Delete(p);
    cJSON_Delete(nodes);
    /* No nodes at all. */
    nodes = cJSON_CreateArray();
    p = pod("p", NULL, NULL, "", NULL);
    assert_int_equal(place(p, nodes, NULL, NULL, chosen, reason), DRV_ERR_NOTFOUND);
    assert_string_equal(reason, "0/0 nodes are available: no nodes registered.");
    cJSON_Delete(p);
    cJSON_Delete(nodes);
}

static void test_requests_subtract_bound_pods(void **state)
{
    (void)state;
    cJSON *nodes = arr(node("a", "2", "2Gi", "arm64", true, "", ""), NULL);
    cJSON *b1 = pod("b1", "1500m", "1Gi", "", NULL);
    bind_to(b1, "a");
    cJSON *bound = arr(b1, NULL);
    cJSON *p = pod("p", "600m", NULL, "", NULL);
    char chosen[64], reason[DRV_SCHED_REASON_MAX];
    assert_int_equal(place(p, nodes, bound, NULL, chosen, reason), DRV_ERR_NOTFOUND);
    assert_string_equal(reason, "0/1 nodes are available: 1 Insufficient cpu.");
    cJSON_Delete(p);
    p = pod("p", "500m", "1Gi", "", NULL);
    assert_int_equal(place(p, nodes, bound, NULL, chosen, reason), DRV_OK);
    assert_string_equal(chosen, "a");
    cJSON_Delete(p);
    /* A pod bound to an unknown node counts nowhere. */
    cJSON *ghost = pod("g", "2", NULL, "", NULL);
    bind_to(ghost, "gone");
    cJSON_AddItemToArray(bound, ghost);
    p = pod("p", "500m", NULL, "", NULL);
    assert_int_equal(place(p, nodes, bound, NULL, chosen, reason), DRV_OK);
    cJSON_Delete(p);
    cJSON_Delete(bound);
    cJSON_Delete(nodes);
}

static void test_init_containers_take_the_max(void **state)
{
    (void)state;
    cJSON *p =
        json("{\"spec\":{\"initContainers\":[{\"name\":\"i\",\"resources\":{\"requests\":"
             "{\"cpu\":\"3\"}}}],\"containers\":[{\"name\":\"a\",\"resources\":{\"requests\":"
             "{\"cpu\":\"1\",\"memory\":\"1Gi\"}}},{\"name\":\"b\",\"resources\":{"
             "\"requests\":{\"cpu\":\"500m\",\"memory\":\"512Mi\"}}}]}}");
    int64_t cpu = 0, mem = 0;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_sched_pod_requests(p, &cpu, &mem, &err), DRV_OK);
    assert_int_equal(cpu, 3000);
    assert_int_equal(mem, 1536LL * 1024 * 1024);
    cJSON_Delete(p);
}

static void test_host_port_conflict(void **state)
{
    (void)state;
    cJSON *nodes = arr(node("a", "4", "4Gi", "arm64", true, "", ""), NULL);
    cJSON *b =
        pod("b", NULL, NULL, "", "{\"containerPort\":80,\"hostPort\":8080,\"protocol\":\"TCP\"}");
    bind_to(b, "a");
    cJSON *bound = arr(b, NULL);
    char chosen[64], reason[DRV_SCHED_REASON_MAX];
    cJSON *p = pod("p", NULL, NULL, "", "{\"containerPort\":80,\"hostPort\":8080}");
    assert_int_equal(place(p, nodes, bound, NULL, chosen, reason), DRV_ERR_NOTFOUND);
    assert_string_equal(
        reason,
        "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.");
    cJSON_Delete(p);
    /* The same port over UDP, or another port, is free. */
    p = pod("p", NULL, NULL, "", "{\"containerPort\":80,\"hostPort\":8080,\"protocol\":\"UDP\"}");
    assert_int_equal(place(p, nodes, bound, NULL, chosen, reason), DRV_OK);
    cJSON_Delete(p);
    p = pod("p", NULL, NULL, "", "{\"containerPort\":80,\"hostPort\":8081}");
    assert_int_equal(place(p, nodes, bound, NULL, chosen, reason), DRV_OK);
    cJSON_Delete(p);
    cJSON_Delete(bound);
    cJSON_Delete(nodes);
}

static void test_least_allocated_picks_emptier_node(void **state)
{
    (void)state;
    /* "a" sorts first but is busier: "b" wins on free resources. */
    cJSON *nodes = arr(node("a", "4", "4Gi", "arm64", true, "", ""),
                       node("b", "4", "4Gi", "arm64", true, "", ""), NULL);
    cJSON *busy = pod("busy", "3", "3Gi", "", NULL);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(busy, "metadata"), "labels",
                              json("{\"app\":\"other\"}"));
    bind_to(busy, "a");
    cJSON *bound = arr(busy, NULL);
    cJSON *p = pod("p", "500m", "256Mi", "", NULL);
    char chosen[64], reason[DRV_SCHED_REASON_MAX];
    assert_int_equal(place(p, nodes, bound, NULL, chosen, reason), DRV_OK);
    assert_string_equal(chosen, "b");
    /* A bigger node is emptier in proportion. */
    cJSON_Delete(nodes);
    nodes = arr(node("a", "2", "2Gi", "arm64", true, "", ""),
                node("z", "8", "8Gi", "arm64", true, "", ""), NULL);
    assert_int_equal(place(p, nodes, NULL, NULL, chosen, reason), DRV_OK);
    assert_string_equal(chosen, "z");
    cJSON_Delete(p);
    cJSON_Delete(bound);
    cJSON_Delete(nodes);
}

static void test_ties_go_to_smaller_name(void **state)
{
    (void)state;
    cJSON *nodes = arr(node("n3", "2", "2Gi", "arm64", true, "", ""),
                       node("n1", "2", "2Gi", "arm64", true, "", ""),
                       node("n2", "2", "2Gi", "arm64", true, "", ""), NULL);
    cJSON *p = pod("p", NULL, NULL, "", NULL);
    char chosen[64], reason[DRV_SCHED_REASON_MAX];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(place(p, nodes, NULL, NULL, chosen, reason), DRV_OK);
        assert_string_equal(chosen, "n1");
    }
    cJSON_Delete(p);
    cJSON_Delete(nodes);
}

static void test_spreading_three_replicas_three_nodes(void **state)
{
    (void)state;
    /* n1 is twice as big: least-allocated alone would stack replicas there. */
    cJSON *nodes = arr(node("n1", "8", "8Gi", "arm64", true, "", ""),
                       node("n2", "4", "4Gi", "arm64", true, "", ""),
                       node("n3", "4", "4Gi", "arm64", true, "", ""), NULL);
    drv_sched_cache_t c;
    drv_sched_cache_init(&c);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_sched_cache_set_nodes(&c, nodes, &err), DRV_OK);
    const char *ref = "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
                      "\"name\":\"web\",\"uid\":\"u-1\",\"controller\":true}]";
    bool used[3] = {false, false, false};
    for (int i = 0; i < 3; i++) {
        char buf[1024];
        snprintf(buf, sizeof(buf),
                 "{\"metadata\":{\"name\":\"web-%d\",%s},\"spec\":{\"containers\":[{\"name\":"
                 "\"c\",\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"}}}]}}",
                 i, ref);
        cJSON *p = json(buf);
        char chosen[64], reason[DRV_SCHED_REASON_MAX];
        assert_int_equal(drv_sched_place_cached(&c, p, NULL, chosen, sizeof(chosen), reason,
                                                sizeof(reason), &err),
                         DRV_OK);
        int idx = chosen[1] - '1';
        assert_in_range(idx, 0, 2);
        assert_false(used[idx]);
        used[idx] = true;
        bind_to(p, chosen);
        assert_int_equal(drv_sched_cache_add_pod(&c, p, &err), DRV_OK);
        cJSON_Delete(p);
    }
    assert_int_equal(drv_sched_cache_pods_on(&c, "n1"), 1);
    assert_int_equal(drv_sched_cache_pods_on(&c, "n2"), 1);
    assert_int_equal(drv_sched_cache_pods_on(&c, "n3"), 1);
    drv_sched_cache_free(&c);
    cJSON_Delete(nodes);
}

static void test_cache_keeps_usage_across_node_updates(void **state)
{
    (void)state;
    cJSON *nodes = arr(node("a", "1", "1Gi", "arm64", true, "", ""), NULL);
    drv_sched_cache_t c;
    drv_sched_cache_init(&c);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_sched_cache_set_nodes(&c, nodes, &err), DRV_OK);
    cJSON *b =
        pod("b", "800m", NULL, "", "{\"containerPort\":1,\"hostPort\":53,\"protocol\":\"UDP\"}");
    bind_to(b, "a");
    assert_int_equal(drv_sched_cache_add_pod(&c, b, &err), DRV_OK);
    /* The node reports again (say a label changed): usage stays. */
    assert_int_equal(drv_sched_cache_set_nodes(&c, nodes, &err), DRV_OK);
    assert_int_equal(drv_sched_cache_pods_on(&c, "a"), 1);
    cJSON *p = pod("p", "500m", NULL, "", NULL);
    char chosen[64], reason[DRV_SCHED_REASON_MAX];
    assert_int_equal(
        drv_sched_place_cached(&c, p, NULL, chosen, sizeof(chosen), reason, sizeof(reason), &err),
        DRV_ERR_NOTFOUND);
    cJSON *q =
        pod("q", NULL, NULL, "", "{\"containerPort\":1,\"hostPort\":53,\"protocol\":\"UDP\"}");
    assert_int_equal(
        drv_sched_place_cached(&c, q, NULL, chosen, sizeof(chosen), reason, sizeof(reason), &err),
        DRV_ERR_NOTFOUND);
    /* Removing the bound pod frees both. */
    drv_sched_cache_remove_pod(&c, b);
    assert_int_equal(drv_sched_cache_pods_on(&c, "a"), 0);
    assert_int_equal(
        drv_sched_place_cached(&c, p, NULL, chosen, sizeof(chosen), reason, sizeof(reason), &err),
        DRV_OK);
    assert_int_equal(
        drv_sched_place_cached(&c, q, NULL, chosen, sizeof(chosen), reason, sizeof(reason), &err),
        DRV_OK);
    /* A node that leaves takes its usage with it; short output buffers are refused. */
    cJSON *none = cJSON_CreateArray();
    assert_int_equal(drv_sched_cache_set_nodes(&c, none, &err), DRV_OK);
    assert_int_equal(drv_sched_cache_pods_on(&c, "a"), 0);
    assert_int_equal(drv_sched_cache_set_nodes(&c, nodes, &err), DRV_OK);
    char tiny[1];
    assert_int_equal(
        drv_sched_place_cached(&c, p, NULL, tiny, sizeof(tiny), reason, sizeof(reason), &err),
        DRV_ERR_TOOBIG);
    cJSON_Delete(none);
    cJSON_Delete(p);
    cJSON_Delete(q);
    cJSON_Delete(b);
    drv_sched_cache_free(&c);
    cJSON_Delete(nodes);
}

/* A pod in namespace ns with labels (a JSON object body) and more spec members (may be "").
 */
static cJSON *lpod(const char *name, const char *ns, const char *labels, const char *extra)
{
    char buf[4096];
    snprintf(buf, sizeof(buf),
             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\",\"labels\":{%s}},"
             "\"spec\":{%s%s\"containers\":[{\"name\":\"c\",\"image\":\"busybox:1\"}]}}",
             name, ns, labels, extra, *extra ? "," : "");
    return json(buf);
}

#define REQ "\"requiredDuringSchedulingIgnoredDuringExecution\""
#define PREF "\"preferredDuringSchedulingIgnoredDuringExecution\""

/* Places p over nodes/bound and checks the node chosen (or, chosen NULL, the reason). */
static void expect(cJSON *p, cJSON *nodes, cJSON *bound, const char *want, const char *why)
{
    char chosen[64], reason[DRV_SCHED_REASON_MAX];
    drv_err_t r = place(p, nodes, bound, NULL, chosen, reason);
    if (want) {
        if (r != DRV_OK)
            fail_msg("expected %s, got %d: %s", want, r, reason);
        assert_string_equal(chosen, want);
    } else {
        assert_int_equal(r, DRV_ERR_NOTFOUND);
        assert_string_equal(reason, why);
    }
    cJSON_Delete(p);
}

static void test_node_affinity_required(void **state)
{
    (void)state;
    cJSON *nodes = arr(node("n1", "2", "2Gi", "arm64", true, "\"hw\":\"pi4\",\"cores\":\"4\"", ""),
                       node("n2", "2", "2Gi", "arm64", true, "\"hw\":\"pi3\",\"cores\":\"2\"", ""),
                       node("n3", "2", "2Gi", "arm64", true, "\"gpu\":\"yes\"", ""), NULL);
    struct {
        const char *terms, *want;
    } cases[] = {
        {"[{\"matchExpressions\":[{\"key\":\"hw\",\"operator\":\"In\",\"values\":[\"pi3\"]}]}]",
         "n2"},
        /* NotIn and DoesNotExist match a node without the label. */
        {"[{\"matchExpressions\":[{\"key\":\"hw\",\"operator\":\"NotIn\",\"values\":[\"pi4\","
         "\"pi3\"]}]}]",
         "n3"},
        {"[{\"matchExpressions\":[{\"key\":\"gpu\",\"operator\":\"Exists\"}]}]", "n3"},
        {"[{\"matchExpressions\":[{\"key\":\"gpu\",\"operator\":\"DoesNotExist\"},{\"key\":"
         "\"hw\",\"operator\":\"NotIn\",\"values\":[\"pi4\"]}]}]",
         "n2"},
        {"[{\"matchExpressions\":[{\"key\":\"cores\",\"operator\":\"Gt\",\"values\":[\"3\"]}]}]",
         "n1"},
        {"[{\"matchExpressions\":[{\"key\":\"cores\",\"operator\":\"Lt\",\"values\":[\"3\"]}]}]",
         "n2"},
        {"[{\"matchFields\":[{\"key\":\"metadata.name\",\"operator\":\"In\",\"values\":[\"n3\"]}]}"
         "]",
         "n3"},
        /* Terms are ORed: the first node that matches either. */
        {"[{\"matchExpressions\":[{\"key\":\"hw\",\"operator\":\"In\",\"values\":[\"none\"]}]},"
         "{\"matchExpressions\":[{\"key\":\"hw\",\"operator\":\"In\",\"values\":[\"pi3\"]}]}]",
         "n2"},
        {"[{\"matchExpressions\":[{\"key\":\"hw\",\"operator\":\"In\",\"values\":[\"pi5\"]}]}]",
         NULL},
        /* An empty term matches no node. */
        {"[{}]", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char extra[1024];
        snprintf(extra, sizeof(extra),
                 "\"affinity\":{\"nodeAffinity\":{" REQ ":{\"nodeSelectorTerms\":%s}}}",
                 cases[i].terms);
        expect(lpod("p", "default", "", extra), nodes, NULL, cases[i].want,
               "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.");
    }
    /* nodeSelector and node affinity must both hold. */
    expect(lpod("p", "default", "",
                "\"nodeSelector\":{\"hw\":\"pi4\"},\"affinity\":{\"nodeAffinity\":{" REQ
                ":{\"nodeSelectorTerms\":[{\"matchExpressions\":[{\"key\":\"cores\",\"operator\":"
                "\"Lt\",\"values\":[\"3\"]}]}]}}}"),
           nodes, NULL, NULL,
           "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.");
    cJSON_Delete(nodes);
}

static void test_node_affinity_preferred(void **state)
{
    (void)state;
    /* n2 is the busier node: least-allocated alone would pick n1. */
    cJSON *nodes = arr(node("n1", "4", "4Gi", "arm64", true, "\"zone\":\"a\"", ""),
                       node("n2", "4", "4Gi", "arm64", true, "\"zone\":\"b\"", ""), NULL);
    cJSON *b = pod("b", "2", "2Gi", "", NULL);
    bind_to(b, "n2");
    cJSON *bound = arr(b, NULL);
    expect(lpod("p", "default", "", ""), nodes, bound, "n1", NULL);
    expect(lpod("p", "default", "",
                "\"affinity\":{\"nodeAffinity\":{" PREF ":[{\"weight\":1,\"preference\":{"
                "\"matchExpressions\":[{\"key\":\"zone\",\"operator\":\"In\",\"values\":[\"b\"]}"
                "]}}]}}"),
           nodes, bound, "n2", NULL);
    cJSON_Delete(bound);
    cJSON_Delete(nodes);
}

/* The Deployment pattern: one replica per node through required anti-affinity on
 * kubernetes.io/hostname, the replica too many stays unplaced with Kubernetes' reason. */
static void test_pod_anti_affinity_spreads_one_per_node(void **state)
{
    (void)state;
    cJSON *nodes =
        arr(node("n1", "4", "4Gi", "arm64", true, "\"kubernetes.io/hostname\":\"n1\"", ""),
            node("n2", "4", "4Gi", "arm64", true, "\"kubernetes.io/hostname\":\"n2\"", ""),
            node("n3", "4", "4Gi", "arm64", true, "\"kubernetes.io/hostname\":\"n3\"", ""), NULL);
    drv_sched_cache_t c;
    drv_sched_cache_init(&c);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_sched_cache_set_nodes(&c, nodes, &err), DRV_OK);
    const char *anti = "\"affinity\":{\"podAntiAffinity\":{" REQ ":[{\"labelSelector\":{"
                       "\"matchLabels\":{\"app\":\"web\"}},\"topologyKey\":"
                       "\"kubernetes.io/hostname\"}]}}";
    cJSON *placed[3];
    bool used[3] = {false, false, false};
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof(name), "w%d", i);
        placed[i] = lpod(name, "default", "\"app\":\"web\"", anti);
        char chosen[64], reason[DRV_SCHED_REASON_MAX];
        assert_int_equal(drv_sched_place_cached(&c, placed[i], NULL, chosen, sizeof(chosen), reason,
                                                sizeof(reason), &err),
                         DRV_OK);
        int k = chosen[1] - '1';
        assert_in_range(k, 0, 2);
        assert_false(used[k]);
        used[k] = true;
        bind_to(placed[i], chosen);
        assert_int_equal(drv_sched_cache_add_pod(&c, placed[i], &err), DRV_OK);
    }
    cJSON *extra = lpod("w3", "default", "\"app\":\"web\"", anti);
    char chosen[64], reason[DRV_SCHED_REASON_MAX];
    assert_int_equal(drv_sched_place_cached(&c, extra, NULL, chosen, sizeof(chosen), reason,
                                            sizeof(reason), &err),
                     DRV_ERR_NOTFOUND);
    assert_string_equal(reason,
                        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.");
    /* Another app is not concerned, in this namespace or another. */
    cJSON *other = lpod("o", "default", "\"app\":\"db\"", "");
    assert_int_equal(drv_sched_place_cached(&c, other, NULL, chosen, sizeof(chosen), reason,
                                            sizeof(reason), &err),
                     DRV_OK);
    cJSON_Delete(other);
    /* Symmetry: a web pod without terms of its own is kept off by theirs. */
    other = lpod("x", "default", "\"app\":\"web\"", "");
    assert_int_equal(drv_sched_place_cached(&c, other, NULL, chosen, sizeof(chosen), reason,
                                            sizeof(reason), &err),
                     DRV_ERR_NOTFOUND);
    assert_string_equal(reason, "0/3 nodes are available: 3 node(s) didn't satisfy existing pods "
                                "anti-affinity rules.");
    cJSON_Delete(other);
    /* ... but not in another namespace (the terms name none, so their own). */
    other = lpod("x", "other", "\"app\":\"web\"", "");
    assert_int_equal(drv_sched_place_cached(&c, other, NULL, chosen, sizeof(chosen), reason,
                                            sizeof(reason), &err),
                     DRV_OK);
    cJSON_Delete(other);
    /* A replica deleted frees its node for the extra one. */
    drv_sched_cache_remove_pod(&c, placed[1]);
    assert_int_equal(drv_sched_place_cached(&c, extra, NULL, chosen, sizeof(chosen), reason,
                                            sizeof(reason), &err),
                     DRV_OK);
    assert_string_equal(chosen, drv_json_str(drv_json_get(placed[1], "spec"), "nodeName"));
    cJSON_Delete(extra);
    for (int i = 0; i < 3; i++)
        cJSON_Delete(placed[i]);
    drv_sched_cache_free(&c);
    cJSON_Delete(nodes);
}

/* Topologies other than the host: a node label's value is the domain. */
static void test_pod_affinity_by_zone(void **state)
{
    (void)state;
    cJSON *nodes = arr(node("n1", "4", "4Gi", "arm64", true, "\"zone\":\"a\"", ""),
                       node("n2", "4", "4Gi", "arm64", true, "\"zone\":\"a\"", ""),
                       node("n3", "4", "4Gi", "arm64", true, "\"zone\":\"b\"", ""),
                       node("n4", "8", "8Gi", "arm64", true, "", ""), NULL);
    cJSON *db = lpod("db", "data", "\"app\":\"db\"", "");
    bind_to(db, "n1");
    cJSON *bound = arr(db, NULL);
    const char *with = "\"affinity\":{\"podAffinity\":{" REQ ":[{\"labelSelector\":{"
                       "\"matchLabels\":{\"app\":\"db\"}},\"namespaces\":[\"data\"],"
                       "\"topologyKey\":\"zone\"}]}}";
    const char *without = "\"affinity\":{\"podAntiAffinity\":{" REQ ":[{\"labelSelector\":{"
                          "\"matchLabels\":{\"app\":\"db\"}},\"namespaceSelector\":{},"
                          "\"topologyKey\":\"zone\"}]}}";
    /* With the db: n1 and n2 (zone a); n2 is emptier. */
    expect(lpod("p", "default", "\"app\":\"web\"", with), nodes, bound, "n2", NULL);
    /* Away from it: n3, or n4 which has no zone at all (the biggest, so chosen). */
    expect(lpod("p", "default", "\"app\":\"web\"", without), nodes, bound, "n4", NULL);
    /* The term names no namespace, so its own ("default"): no db there, and the pod does not
     * match its own term, so no node will do. */
    expect(lpod("p", "default", "\"app\":\"web\"",
                "\"affinity\":{\"podAffinity\":{" REQ ":[{\"labelSelector\":{\"matchLabels\":{"
                "\"app\":\"db\"}},\"topologyKey\":\"zone\"}]}}"),
           nodes, bound, NULL,
           "0/4 nodes are available: 4 node(s) didn't match pod affinity rules.");
    /* The first pod of a group with affinity to its own kind goes anywhere that has the key. */
    expect(lpod("p", "default", "\"app\":\"cache\"",
                "\"affinity\":{\"podAffinity\":{" REQ ":[{\"labelSelector\":{\"matchLabels\":{"
                "\"app\":\"cache\"}},\"topologyKey\":\"zone\"}]}}"),
           nodes, bound, "n2", NULL);
    cJSON_Delete(bound);
    cJSON_Delete(nodes);
}

static void test_pod_affinity_preferred(void **state)
{
    (void)state;
    cJSON *nodes =
        arr(node("n1", "4", "4Gi", "arm64", true, "\"kubernetes.io/hostname\":\"n1\"", ""),
            node("n2", "4", "4Gi", "arm64", true, "\"kubernetes.io/hostname\":\"n2\"", ""), NULL);
    /* A cache on n2, which is also the busier node. */
    cJSON *cache = pod("cache", "1", "1Gi", "", NULL);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(cache, "metadata"), "labels",
                              json("{\"app\":\"cache\"}"));
    bind_to(cache, "n2");
    cJSON *bound = arr(cache, NULL);
    const char *near = "\"affinity\":{\"podAffinity\":{" PREF ":[{\"weight\":100,"
                       "\"podAffinityTerm\":{\"labelSelector\":{\"matchLabels\":{\"app\":"
                       "\"cache\"}},\"topologyKey\":\"kubernetes.io/hostname\"}}]}}";
    const char *far = "\"affinity\":{\"podAntiAffinity\":{" PREF ":[{\"weight\":100,"
                      "\"podAffinityTerm\":{\"labelSelector\":{\"matchLabels\":{\"app\":"
                      "\"cache\"}},\"topologyKey\":\"kubernetes.io/hostname\"}}]}}";
    expect(lpod("p", "default", "", near), nodes, bound, "n2", NULL);
    expect(lpod("p", "default", "", far), nodes, bound, "n1", NULL);
    cJSON_Delete(bound);
    cJSON_Delete(nodes);
}

/* Under hostNetwork every container port is held on the node, hostPort written or not. */
/* topologySpreadConstraints: the skew between the fullest and emptiest domains of the key. */
static void test_topology_spread(void **state)
{
    (void)state;
    cJSON *nodes = arr(node("n1", "4", "4Gi", "arm64", true, "\"zone\":\"a\"", ""),
                       node("n2", "4", "4Gi", "arm64", true, "\"zone\":\"a\"", ""),
                       node("n3", "2", "2Gi", "arm64", true, "\"zone\":\"b\"", ""),
                       node("n4", "8", "8Gi", "arm64", true, "", ""), NULL);
    cJSON *w1 = lpod("w1", "default", "\"app\":\"web\"", "");
    bind_to(w1, "n1");
    cJSON *other = lpod("o", "other", "\"app\":\"web\"", ""); /* another namespace: not counted */
    bind_to(other, "n3");
    cJSON *bound = arr(w1, other, NULL);
#define ZONE                                                                                       \
    "\"topologySpreadConstraints\":[{\"maxSkew\":1,\"topologyKey\":\"zone\","                      \
    "\"whenUnsatisfiable\":\"%s\",\"labelSelector\":{\"matchLabels\":{\"app\":\"web\"}}%s}]"
    char extra[512];
    /* Zone a has 1, b none: a second in a would make the skew 2. n4 has no zone. */
    snprintf(extra, sizeof(extra), ZONE, "DoNotSchedule", "");
    expect(lpod("w2", "default", "\"app\":\"web\"", extra), nodes, bound, "n3", NULL);
    /* A pod the selector does not match does not count itself: zone a is fine (and n2 the
     * emptiest there); a node without the key is still out. */
    expect(lpod("x", "default", "\"app\":\"db\"", extra), nodes, bound, "n2", NULL);
    cJSON_Delete(nodes);
    nodes = arr(node("n1", "4", "4Gi", "arm64", true, "\"zone\":\"a\"", ""),
                node("n2", "4", "4Gi", "arm64", true, "\"zone\":\"a\"", "\"unschedulable\":true"),
                node("n3", "2", "2Gi", "arm64", true, "\"zone\":\"b\"", "\"unschedulable\":true"),
                node("n4", "8", "8Gi", "arm64", true, "", ""), NULL);
    expect(lpod("w2", "default", "\"app\":\"web\"", extra), nodes, bound, NULL,
           "0/4 nodes are available: 1 node(s) didn't match pod topology spread constraints, 1 "
           "node(s) didn't match pod topology spread constraints (missing required label), 2 "
           "node(s) were unschedulable.");
    /* ScheduleAnyway: only a preference, for the emptier zone over the roomier node. */
    snprintf(extra, sizeof(extra), ZONE, "ScheduleAnyway", "");
    cJSON_Delete(nodes);
    nodes = arr(node("n1", "8", "8Gi", "arm64", true, "\"zone\":\"a\"", ""),
                node("n3", "2", "2Gi", "arm64", true, "\"zone\":\"b\"", ""), NULL);
    expect(lpod("w2", "default", "\"app\":\"web\"", extra), nodes, bound, "n3", NULL);
    expect(lpod("x", "default", "\"app\":\"db\"", ""), nodes, bound, "n1", NULL);
    /* minDomains: with one zone and minDomains 2, the missing zone counts as empty. */
    cJSON_Delete(nodes);
    nodes = arr(node("n1", "8", "8Gi", "arm64", true, "\"zone\":\"a\"", ""), NULL);
    snprintf(extra, sizeof(extra), ZONE, "DoNotSchedule", "");
    expect(lpod("w2", "default", "\"app\":\"web\"", extra), nodes, bound, "n1", NULL);
    snprintf(extra, sizeof(extra), ZONE, "DoNotSchedule", ",\"minDomains\":2");
    expect(lpod("w2", "default", "\"app\":\"web\"", extra), nodes, bound, NULL,
           "0/1 nodes are available: 1 node(s) didn't match pod topology spread constraints.");
    cJSON_Delete(bound);
    cJSON_Delete(nodes);
}

static void test_host_network_ports_counted(void **state)
{
    (void)state;
    cJSON *nodes = arr(node("a", "4", "4Gi", "arm64", true, "", ""), NULL);
    cJSON *b = pod("b", NULL, NULL, "\"hostNetwork\":true", "{\"containerPort\":9100}");
    bind_to(b, "a");
    cJSON *bound = arr(b, NULL);
    expect(pod("p", NULL, NULL, "", "{\"containerPort\":80,\"hostPort\":9100}"), nodes, bound, NULL,
           "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod "
           "ports.");
    expect(pod("p", NULL, NULL, "\"hostNetwork\":true", "{\"containerPort\":9100}"), nodes, bound,
           NULL,
           "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod "
           "ports.");
    expect(pod("p", NULL, NULL, "", "{\"containerPort\":9100}"), nodes, bound, "a", NULL);
    cJSON_Delete(bound);
    cJSON_Delete(nodes);
}

static void test_hostile_input(void **state)
{
    (void)state;
    cJSON *nodes = arr(node("a", "1", "1Gi", "arm64", true, "", ""), NULL);
    char chosen[64], reason[DRV_SCHED_REASON_MAX];
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *p = pod("p", "lots", NULL, "", NULL);
    assert_int_equal(
        drv_sched_place(p, nodes, NULL, NULL, chosen, sizeof(chosen), reason, sizeof(reason), &err),
        DRV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "spec.containers[0].resources.requests.cpu"));
    cJSON_Delete(p);
    cJSON *s = json("\"not a pod\"");
    assert_int_equal(
        drv_sched_place(s, nodes, NULL, NULL, chosen, sizeof(chosen), reason, sizeof(reason), &err),
        DRV_ERR_INVALID);
    assert_int_equal(
        drv_sched_place(s, s, NULL, NULL, chosen, sizeof(chosen), reason, sizeof(reason), &err),
        DRV_ERR_INVALID);
    cJSON_Delete(s);
    /* Nodes with garbage status are simply not ready / have nothing allocatable. */
    cJSON *junk = json("[{\"metadata\":{\"name\":\"j\"},\"status\":{\"allocatable\":{\"cpu\":"
                       "\"-5\",\"memory\":7},\"conditions\":\"yes\"}},{\"metadata\":{}},3]");
    p = pod("p", NULL, NULL, "", NULL);
    assert_int_equal(
        drv_sched_place(p, junk, NULL, NULL, chosen, sizeof(chosen), reason, sizeof(reason), &err),
        DRV_ERR_NOTFOUND);
    assert_string_equal(reason, "0/1 nodes are available: 1 node(s) were not ready.");
    cJSON_Delete(p);
    cJSON_Delete(junk);
    cJSON_Delete(nodes);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_throughput_10k_pods_1k_nodes(void **state)
{
    (void)state;
    cJSON *nodes = cJSON_CreateArray();
    for (int i = 0; i < 1000; i++) {
        char name[32];
        snprintf(name, sizeof(name), "node-%04d", i);
        cJSON_AddItemToArray(
            nodes, node(name, i % 2 ? "4" : "2", "4Gi", "arm64", true, "\"zone\":\"z1\"", ""));
    }
    drv_sched_cache_t c;
    drv_sched_cache_init(&c);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_sched_cache_set_nodes(&c, nodes, &err), DRV_OK);
    double t0 = now_s();
    for (int i = 0; i < 10000; i++) {
        char buf[512];
        snprintf(buf, sizeof(buf),
                 "{\"metadata\":{\"name\":\"p%d\",\"ownerReferences\":[{\"kind\":\"Deployment\","
                 "\"name\":\"d\",\"uid\":\"u%d\",\"controller\":true}]},\"spec\":{\"containers\":"
                 "[{\"name\":\"c\",\"resources\":{\"requests\":{\"cpu\":\"50m\",\"memory\":"
                 "\"32Mi\"}}}]}}",
                 i, i % 20);
        cJSON *p = json(buf);
        char chosen[64], reason[DRV_SCHED_REASON_MAX];
        assert_int_equal(drv_sched_place_cached(&c, p, NULL, chosen, sizeof(chosen), reason,
                                                sizeof(reason), &err),
                         DRV_OK);
        bind_to(p, chosen);
        assert_int_equal(drv_sched_cache_add_pod(&c, p, &err), DRV_OK);
        cJSON_Delete(p);
    }
    double dt = now_s() - t0;
    printf("scheduler: 10000 pods over 1000 nodes in %.2f s: %.0f pods/s\n", dt, 10000 / dt);
    /* Spread evenly: every node got some, none more than a few over the mean. */
    for (size_t i = 0; i < c.n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "node-%04zu", i);
        assert_in_range(drv_sched_cache_pods_on(&c, name), 1, 30);
    }
    const char *f = getenv("DROVER_TEST_TIME_FACTOR");
    double factor = f ? strtod(f, NULL) : 1;
    assert_true(dt < 10 * (factor > 0 ? factor : 1));
    drv_sched_cache_free(&c);
    cJSON_Delete(nodes);
}

/* kube-scheduler's default percentageOfNodesToScore: every node under 100, then 50 % less a
 * point per 125 nodes, at least 5 % and at least 100 nodes. */
static void test_nodes_to_find_like_kube_scheduler(void **state)
{
    (void)state;
    assert_int_equal(drv_sched_nodes_to_find(0), 0);
    assert_int_equal(drv_sched_nodes_to_find(3), 3);
    assert_int_equal(drv_sched_nodes_to_find(99), 99);
    assert_int_equal(drv_sched_nodes_to_find(100), 100);
    assert_int_equal(drv_sched_nodes_to_find(150), 100);   /* 49 % is 73: at least 100 */
    assert_int_equal(drv_sched_nodes_to_find(300), 144);   /* 48 % */
    assert_int_equal(drv_sched_nodes_to_find(1000), 420);  /* 42 % */
    assert_int_equal(drv_sched_nodes_to_find(5000), 500);  /* 10 % */
    assert_int_equal(drv_sched_nodes_to_find(10000), 500); /* 5 % */
    assert_int_equal(drv_sched_nodes_to_find(50000), 2500);
}

/* On 300 nodes a placement stops after 144 feasible ones and the next begins where it stopped;
 * the nodes it looks at still go through every filter, and one feasible node anywhere (past
 * the end: the search wraps) is found. */
static void test_sampled_search_rotates_and_filters(void **state)
{
    (void)state;
    cJSON *nodes = cJSON_CreateArray();
    for (int i = 0; i < 300; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%03d", i);
        cJSON_AddItemToArray(
            nodes, node(name, "4", "8Gi", "amd64", true, i == 10 ? "\"disk\":\"ssd\"" : "", ""));
    }
    drv_sched_cache_t c;
    drv_sched_cache_init(&c);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_sched_cache_set_nodes(&c, nodes, &err), DRV_OK);
    char chosen[64], reason[DRV_SCHED_REASON_MAX];
    cJSON *p = pod("p", "100m", "64Mi", "", NULL);
    assert_int_equal(
        drv_sched_place_cached(&c, p, NULL, chosen, sizeof(chosen), reason, sizeof(reason), &err),
        DRV_OK);
    assert_string_equal(chosen, "n000"); /* nodes 0-143 looked at, all equal: the first */
    assert_int_equal(c.next_start, 144);
    assert_int_equal(
        drv_sched_place_cached(&c, p, NULL, chosen, sizeof(chosen), reason, sizeof(reason), &err),
        DRV_OK);
    assert_string_equal(chosen, "n144");
    assert_int_equal(c.next_start, 288);
    /* Only n010 has the label: the search from 288 wraps round to it. */
    cJSON *sel = pod("s", "100m", "64Mi", "\"nodeSelector\":{\"disk\":\"ssd\"}", NULL);
    assert_int_equal(
        drv_sched_place_cached(&c, sel, NULL, chosen, sizeof(chosen), reason, sizeof(reason), &err),
        DRV_OK);
    assert_string_equal(chosen, "n010");
    /* Nowhere: every node looked at, and the reason counts them all. */
    cJSON *none = pod("x", "100m", "64Mi", "\"nodeSelector\":{\"disk\":\"nvme\"}", NULL);
    assert_int_equal(drv_sched_place_cached(&c, none, NULL, chosen, sizeof(chosen), reason,
                                            sizeof(reason), &err),
                     DRV_ERR_NOTFOUND);
    assert_non_null(strstr(reason, "0/300 nodes are available: 300 node(s) didn't match"));
    cJSON_Delete(p);
    cJSON_Delete(sel);
    cJSON_Delete(none);
    drv_sched_cache_free(&c);
    cJSON_Delete(nodes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nodes_to_find_like_kube_scheduler),
        cmocka_unit_test(test_sampled_search_rotates_and_filters),
        cmocka_unit_test(test_each_filter_reason),
        cmocka_unit_test(test_filters_pass_when_satisfied),
        cmocka_unit_test(test_toleration_rules),
        cmocka_unit_test(test_kube_style_reason_histogram),
        cmocka_unit_test(test_requests_subtract_bound_pods),
        cmocka_unit_test(test_init_containers_take_the_max),
        cmocka_unit_test(test_host_port_conflict),
        cmocka_unit_test(test_least_allocated_picks_emptier_node),
        cmocka_unit_test(test_ties_go_to_smaller_name),
        cmocka_unit_test(test_spreading_three_replicas_three_nodes),
        cmocka_unit_test(test_cache_keeps_usage_across_node_updates),
        cmocka_unit_test(test_node_affinity_required),
        cmocka_unit_test(test_node_affinity_preferred),
        cmocka_unit_test(test_pod_anti_affinity_spreads_one_per_node),
        cmocka_unit_test(test_pod_affinity_by_zone),
        cmocka_unit_test(test_pod_affinity_preferred),
        cmocka_unit_test(test_host_network_ports_counted),
        cmocka_unit_test(test_topology_spread),
        cmocka_unit_test(test_hostile_input),
        cmocka_unit_test(test_throughput_10k_pods_1k_nodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
