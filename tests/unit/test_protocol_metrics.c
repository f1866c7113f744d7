/* The usage message (shared/src/protocol_metrics.c): what the agent writes the hub reads back
 * whole, and everything a hostile device could send instead is refused naming the field. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/protocol.h"

static drv_proto_metrics_t sample(drv_proto_pod_usage_t *pods, size_t n)
{
    drv_proto_metrics_t m = {.seq = 7,
                             .time_ms = 1765090000123LL,
                             .window_ms = 15000,
                             .has_cpu = true,
                             .cpu_nanocores = 1234567890,
                             .has_memory = true,
                             .memory_bytes = 300LL << 20,
                             .memory_total_bytes = 512LL << 20,
                             .has_disk = true,
                             .disk_free_bytes = 2LL << 30,
                             .disk_total_bytes = 8LL << 30,
                             .has_temp = true,
                             .temp_millicelsius = 48500,
                             .has_throttled = true,
                             .throttled = 0x50005,
                             .n_unsupported = 1,
                             .pods = pods,
                             .n_pods = n};
    memcpy(m.node, "pi-1", 5);
    memcpy(m.unsupported[0], "cpu.pressure", 13);
    return m;
}

static void test_round_trip(void **state)
{
    (void)state;
    drv_proto_pod_usage_t pods[2] = {0};
    memcpy(pods[0].ns, "default", 8);
    memcpy(pods[0].name, "web-7c9f-x2b", 13);
    memcpy(pods[0].uid, "5e0c1f00-aaaa-bbbb-cccc-0123456789ab", 37);
    pods[0].n_ctrs = 2;
    pods[0].ctrs[0] = (drv_proto_ctr_usage_t){.has_cpu = true,
                                              .cpu_nanocores = 43000000,
                                              .has_memory = true,
                                              .memory_bytes = 5 << 20,
                                              .throttled_periods = 3,
                                              .throttled_usec = 120000,
                                              .oom_kills = 1,
                                              .restarts = 2};
    memcpy(pods[0].ctrs[0].name, "web", 4);
    memcpy(pods[0].ctrs[1].name, "sidecar", 8); /* no cpu or memory: not measurable */
    memcpy(pods[1].ns, "kube-system", 12);
    memcpy(pods[1].name, "dns", 4);
    memcpy(pods[1].uid, "u2", 3);
    drv_proto_metrics_t m = sample(pods, 2);

    char *text = NULL;
    size_t len = 0;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_proto_metrics_format(&m, &text, &len, &err), DRV_OK);
    assert_int_equal(strlen(text), len);
    drv_proto_metrics_t back;
    assert_int_equal(drv_proto_metrics_parse(text, len, "pi-1", &back, &err), DRV_OK);
    assert_string_equal(back.node, "pi-1");
    assert_int_equal(back.seq, 7);
    assert_int_equal(back.time_ms, 1765090000123LL);
    assert_int_equal(back.window_ms, 15000);
    assert_true(back.has_cpu && back.has_memory && back.has_disk && back.has_temp &&
                back.has_throttled);
    assert_int_equal(back.cpu_nanocores, 1234567890);
    assert_int_equal(back.memory_total_bytes, 512LL << 20);
    assert_int_equal(back.disk_free_bytes, 2LL << 30);
    assert_int_equal(back.temp_millicelsius, 48500);
    assert_int_equal(back.throttled, 0x50005);
    assert_int_equal(back.n_unsupported, 1);
    assert_string_equal(back.unsupported[0], "cpu.pressure");
    assert_int_equal(back.n_pods, 2);
    assert_string_equal(back.pods[0].name, "web-7c9f-x2b");
    assert_int_equal(back.pods[0].n_ctrs, 2);
    assert_true(back.pods[0].ctrs[0].has_cpu);
    assert_int_equal(back.pods[0].ctrs[0].cpu_nanocores, 43000000);
    assert_int_equal(back.pods[0].ctrs[0].oom_kills, 1);
    assert_int_equal(back.pods[0].ctrs[0].restarts, 2);
    assert_false(back.pods[0].ctrs[1].has_cpu);
    assert_false(back.pods[0].ctrs[1].has_memory);
    assert_string_equal(back.pods[1].ns, "kube-system");
    assert_int_equal(back.pods[1].n_ctrs, 0);
    drv_proto_metrics_free(&back);
    free(text);

    /* A device that measures nothing still reports (and says so). */
    drv_proto_metrics_t none = {.time_ms = 1, .window_ms = 1};
    memcpy(none.node, "pi-2", 5);
    assert_int_equal(drv_proto_metrics_format(&none, &text, &len, &err), DRV_OK);
    assert_int_equal(drv_proto_metrics_parse(text, len, NULL, &back, &err), DRV_OK);
    assert_false(back.has_cpu || back.has_memory || back.has_disk);
    drv_proto_metrics_free(&back);
    free(text);
}

static void refused(const char *json, const char *expect)
{
    drv_proto_metrics_t m;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_proto_metrics_parse(json, strlen(json), "pi-1", &m, &err);
    if (rc == DRV_OK) {
        drv_proto_metrics_free(&m);
        fail_msg("accepted: %s", json);
    }
    if (strstr(err.msg, expect) == NULL)
        fail_msg("for %s: expected \"%s\" in \"%s\"", json, expect, err.msg);
}

#define HEAD "{\"node\":\"pi-1\",\"seq\":1,\"time\":1765090000000,\"window\":15000,"

static void test_hostile(void **state)
{
    (void)state;
    refused("not json", "not JSON");
    refused("{}", "node: required");
    refused("{\"node\":\"pi-2\",\"seq\":1,\"time\":1,\"window\":1,\"usage\":{},\"pods\":[]}",
            "does not match the topic's \"pi-1\"");
    refused("{\"node\":\"../x\",\"seq\":1,\"time\":1,\"window\":1,\"usage\":{},\"pods\":[]}",
            "metrics: node");
    refused(HEAD "\"usage\":{\"cpu\":-1},\"pods\":[]}", "usage.cpu");
    refused(HEAD "\"usage\":{\"cpu\":1e300},\"pods\":[]}", "usage.cpu");
    refused(HEAD "\"usage\":{\"cpu\":1.5},\"pods\":[]}", "usage.cpu");
    refused(HEAD "\"usage\":{\"memory\":10,\"memoryTotal\":5},\"pods\":[]}", "memoryTotal");
    refused(HEAD "\"usage\":{\"temp\":999999},\"pods\":[]}", "usage.temp");
    refused(HEAD "\"usage\":{\"evil\":1},\"pods\":[]}", "unknown field");
    refused(HEAD "\"usage\":{},\"pods\":[],\"extra\":1}", "unknown field");
    refused("{\"node\":\"pi-1\",\"seq\":1,\"time\":1,\"window\":0,\"usage\":{},\"pods\":[]}",
            "window");
    refused(HEAD "\"usage\":{},\"pods\":[{\"ns\":\"Bad_NS\",\"name\":\"a\",\"uid\":\"u\","
                 "\"containers\":[]}]}",
            "pods[0].ns");
    refused(HEAD "\"usage\":{},\"pods\":[{\"ns\":\"d\",\"name\":\"a\",\"uid\":\"u/../x\","
                 "\"containers\":[]}]}",
            "pods[0].uid");
    refused(HEAD "\"usage\":{},\"pods\":[{\"ns\":\"d\",\"name\":\"a\",\"uid\":\"u\","
                 "\"containers\":[{\"name\":\"c\",\"restarts\":-1}]}]}",
            "pods[0].containers[0].restarts");
    refused(HEAD "\"usage\":{},\"pods\":[{\"ns\":\"d\",\"name\":\"a\",\"uid\":\"u\","
                 "\"containers\":[{\"name\":\"c\"},{\"name\":\"c\"}]}]}",
            "twice");
    refused(HEAD "\"usage\":{},\"pods\":[{\"ns\":\"d\",\"name\":\"a\",\"uid\":\"u\","
                 "\"containers\":[]},{\"ns\":\"d\",\"name\":\"b\",\"uid\":\"u\","
                 "\"containers\":[]}]}",
            "twice");

    /* Caps: more pods than allowed, a payload over the size cap. */
    size_t cap = 64 + (DRV_PROTO_METRICS_PODS_MAX + 1) * 64;
    char *big = malloc(cap);
    assert_non_null(big);
    size_t n = (size_t)snprintf(big, cap, HEAD "\"usage\":{},\"pods\":[");
    for (int i = 0; i <= DRV_PROTO_METRICS_PODS_MAX; i++)
        n += (size_t)snprintf(big + n, cap - n,
                              "%s{\"ns\":\"d\",\"name\":\"p%d\",\"uid\":\"u%d\",\"containers\":[]}",
                              i ? "," : "", i, i);
    n += (size_t)snprintf(big + n, cap - n, "]}");
    assert_true(n < cap);
    refused(big, "pods: more than 256");
    free(big);
    size_t huge = DRV_PROTO_METRICS_MAX + 1;
    char *h = malloc(huge + 1);
    assert_non_null(h);
    memset(h, ' ', huge);
    h[huge] = '\0';
    refused(h, "over the cap");
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
