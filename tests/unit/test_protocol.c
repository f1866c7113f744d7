/* The hub <-> agent protocol: topics and messages round-trip, and every malformed or hostile
 * payload is refused with an error naming the field, never a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "drover/pki.h"
#include "drover/protocol.h"

#define ASSERT_ERR(call, code, part)                                                               \
    do {                                                                                           \
        drv_err_t rc_ = (call);                                                                    \
        if (rc_ != (code) || strstr(drv_error_msg(&err), (part)) == NULL)                          \
            fail_msg("%s: got %d \"%s\", want %d with \"%s\"", #call, rc_, drv_error_msg(&err),    \
                     (code), (part));                                                              \
        drv_error_clear(&err);                                                                     \
    } while (0)

static drv_err_t parse_desired_str(const char *s, const char *node, drv_proto_desired_t *d,
                                   drv_error_t *err)
{
    return drv_proto_desired_parse(s, strlen(s), node, d, err);
}

static void test_topics(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    char t[DRV_PROTO_TOPIC_MAX];
    assert_int_equal(drv_proto_topic(t, sizeof t, "pi-1", DRV_PROTO_DESIRED, NULL, &err), DRV_OK);
    assert_string_equal(t, "drover/v1/node/pi-1/desired");
    assert_int_equal(drv_proto_topic(t, sizeof t, "pi-1", DRV_PROTO_LOGS_RES, "r1", &err), DRV_OK);
    assert_string_equal(t, "drover/v1/node/pi-1/logs/res/r1");
    assert_int_equal(drv_proto_filter(t, sizeof t, NULL, DRV_PROTO_STATUS, &err), DRV_OK);
    assert_string_equal(t, "drover/v1/node/+/status");
    assert_int_equal(drv_proto_filter(t, sizeof t, "a.b", DRV_PROTO_LOGS_RES, &err), DRV_OK);
    assert_string_equal(t, "drover/v1/node/a.b/logs/res/+");

    /* Every kind round-trips through parse_topic. */
    for (int k = 0; k < DRV_PROTO__COUNT; k++) {
        assert_int_equal(drv_proto_topic(t, sizeof t, "edge-7.site", k, "abc_1", &err), DRV_OK);
        drv_proto_msg_t kind;
        char node[DRV_PROTO_NODE_MAX + 1], id[DRV_PROTO_ID_MAX + 1];
        assert_int_equal(drv_proto_parse_topic(t, &kind, node, id, &err), DRV_OK);
        assert_int_equal(kind, k);
        assert_string_equal(node, "edge-7.site");
        assert_string_equal(id, k == DRV_PROTO_LOGS_RES ? "abc_1" : "");
    }
    assert_true(drv_proto_retained(DRV_PROTO_DESIRED));
    assert_true(drv_proto_retained(DRV_PROTO_ONLINE));
    assert_false(drv_proto_retained(DRV_PROTO_STATUS));
    assert_int_equal(drv_proto_qos(DRV_PROTO_HEARTBEAT), 0);
    assert_int_equal(drv_proto_qos(DRV_PROTO_DESIRED), 1);

    /* Too small a buffer is an error, not a truncated topic. */
    char small[10];
    ASSERT_ERR(drv_proto_topic(small, sizeof small, "pi-1", DRV_PROTO_DESIRED, NULL, &err),
               DRV_ERR_RANGE, "too small");
}

static void test_bad_node_names(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    char t[DRV_PROTO_TOPIC_MAX];
    static const char *const bad[] = {"",
                                      "a/b",
                                      "a+b",
                                      "a#",
                                      "Upper",
                                      "-lead",
                                      "a..b",
                                      "this-name-is-much-too-long-for-a-node-name-because-it-"
                                      "exceeds-63"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        drv_error_clear(&err);
        assert_int_equal(drv_proto_check_node(bad[i], &err), DRV_ERR_INVALID);
        assert_non_null(strstr(drv_error_msg(&err), "node name"));
        assert_int_not_equal(drv_proto_topic(t, sizeof t, bad[i], DRV_PROTO_STATUS, NULL, &err),
                             DRV_OK);
    }
    ASSERT_ERR(drv_proto_check_node(NULL, &err), DRV_ERR_INVALID, "node name: required");
    ASSERT_ERR(drv_proto_filter(t, sizeof t, "a+", DRV_PROTO_STATUS, &err), DRV_ERR_INVALID,
               "node name");
    ASSERT_ERR(drv_proto_topic(t, sizeof t, "n", DRV_PROTO_LOGS_RES, "a/b", &err), DRV_ERR_INVALID,
               "id");
    ASSERT_ERR(drv_proto_topic(t, sizeof t, "n", DRV_PROTO_LOGS_RES, NULL, &err), DRV_ERR_INVALID,
               "id: required");
}

static void test_unknown_topics(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    drv_proto_msg_t kind = DRV_PROTO__COUNT;
    char node[DRV_PROTO_NODE_MAX + 1] = "untouched";
    static const char *const unknown[] = {"drover/v2/node/a/desired",
                                          "drover/v1/node/a",
                                          "drover/v1/node/a/bogus",
                                          "drover/v1/node/a/desired/x",
                                          "drover/v1/node/a/logs/res",
                                          "other",
                                          ""};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        ASSERT_ERR(drv_proto_parse_topic(unknown[i], &kind, node, NULL, &err), DRV_ERR_NOTFOUND,
                   "topic");
    ASSERT_ERR(drv_proto_parse_topic("drover/v1/node/BAD/desired", &kind, node, NULL, &err),
               DRV_ERR_INVALID, "node name");
    ASSERT_ERR(drv_proto_parse_topic("drover/v1/node/+/desired", &kind, node, NULL, &err),
               DRV_ERR_INVALID, "node name");
    ASSERT_ERR(drv_proto_parse_topic("drover/v1/node/a/logs/res/x/y", &kind, node, NULL, &err),
               DRV_ERR_INVALID, "id");
    ASSERT_ERR(drv_proto_parse_topic(NULL, &kind, node, NULL, &err), DRV_ERR_NOTFOUND, "topic");
    /* Outputs untouched on failure. */
    assert_int_equal(kind, DRV_PROTO__COUNT);
    assert_string_equal(node, "untouched");
}

static void test_desired_roundtrip(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *pods = cJSON_Parse("[{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
                              "\"web\"},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":"
                              "\"nginx\"}]}}]");
    cJSON *cms = cJSON_Parse("[{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"cfg\"}}]");
    cJSON *d = drv_proto_desired_build("pi-1", 42, pods, cms, NULL, &err);
    assert_non_null(d);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(drv_proto_encode(d, DRV_PROTO_DESIRED, &text, &len, &err), DRV_OK);
    assert_int_equal(len, strlen(text));
    drv_proto_desired_t pd;
    assert_int_equal(drv_proto_desired_parse(text, len, "pi-1", &pd, &err), DRV_OK);
    assert_string_equal(pd.node, "pi-1");
    assert_int_equal(pd.generation, 42);
    assert_int_equal(cJSON_GetArraySize(pd.pods), 1);
    assert_int_equal(cJSON_GetArraySize(pd.config_maps), 1);
    assert_int_equal(cJSON_GetArraySize(pd.secrets), 0);
    assert_true(cJSON_Compare(pd.pods, pods, true));
    drv_proto_desired_free(&pd);
    free(text);
    cJSON_Delete(d);

    /* The largest exact generation is accepted; one more is refused by the builder. */
    d = drv_proto_desired_build("pi-1", DRV_PROTO_GEN_MAX, NULL, NULL, NULL, &err);
    assert_non_null(d);
    assert_int_equal(drv_proto_encode(d, DRV_PROTO_DESIRED, &text, &len, &err), DRV_OK);
    assert_int_equal(drv_proto_desired_parse(text, len, NULL, &pd, &err), DRV_OK);
    assert_true(pd.generation == DRV_PROTO_GEN_MAX);
    drv_proto_desired_free(&pd);
    free(text);
    cJSON_Delete(d);
    assert_null(drv_proto_desired_build("pi-1", DRV_PROTO_GEN_MAX + 1, NULL, NULL, NULL, &err));
    assert_non_null(strstr(drv_error_msg(&err), "generation"));
    drv_error_clear(&err);
    assert_null(drv_proto_desired_build("pi-1", 1, cms->child, NULL, NULL, &err));
    assert_non_null(strstr(drv_error_msg(&err), "pods: must be an array"));
    drv_error_clear(&err);
    assert_null(drv_proto_desired_build("a/b", 1, NULL, NULL, NULL, &err));
    assert_non_null(strstr(drv_error_msg(&err), "node name"));
    cJSON_Delete(pods);
    cJSON_Delete(cms);
}

static void test_desired_malformed(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    drv_proto_desired_t d;
    memset(&d, 0x5a, sizeof d);
    const drv_proto_desired_t before = d;
#define HDR "{\"apiVersion\":\"drover/v1\",\"kind\":\"NodeDesiredState\",\"node\":\"n1\","
    static const struct {
        const char *in;
        const char *part;
    } cases[] = {
        {"", "desired state: empty payload"},
        {"   ", "empty payload"},
        {"garbage", "desired state: must be a JSON object"},
        {"[1,2]", "must be a JSON object"},
        {"{\"kind\":", "desired state"},
        {HDR "\"generation\":1,\"pods\":[", "desired state"},
        {"{\"kind\":\"Pod\"}", "kind: must be \"NodeDesiredState\""},
        {"{\"apiVersion\":\"drover/v2\",\"kind\":\"NodeDesiredState\"}", "apiVersion"},
        {HDR "\"generation\":-1}", "desired state: generation: must be a non-negative integer"},
        {HDR "\"generation\":1.5}", "generation: must be a non-negative integer"},
        {HDR "\"generation\":\"7\"}", "generation: must be a non-negative integer"},
        {HDR "\"generation\":1e300}", "generation"},
        {HDR "\"generation\":99999999999999999999}", "out of range"},
        {HDR "\"generation\":9007199254740992}", "generation"},
        {HDR "\"pods\":[]}", "generation: required"},
        {HDR "\"generation\":1,\"pods\":{}}", "pods: must be an array"},
        {HDR "\"generation\":1,\"pods\":[{},3]}", "pods[1]: must be an object"},
        {HDR "\"generation\":1,\"secrets\":\"x\"}", "secrets: must be an array"},
        {HDR "\"generation\":1,\"generation\":2}", "desired state"}, /* duplicate key */
        {"{\"kind\":\"NodeDesiredState\",\"node\":\"A/B\",\"generation\":1}", "node name"},
        {"{\"kind\":\"NodeDesiredState\",\"node\":5,\"generation\":1}", "node: must be a string"},
        {"{\"kind\":\"NodeDesiredState\",\"node\":\"other\",\"generation\":1}",
         "does not match the topic's node"},
        {HDR "\"generation\":1} trailing", "desired state"},
    };
#undef HDR
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        drv_error_clear(&err);
        drv_err_t rc = parse_desired_str(cases[i].in, "n1", &d, &err);
        if (rc == DRV_OK || strstr(drv_error_msg(&err), cases[i].part) == NULL)
            fail_msg("case %zu %s: got %d \"%s\", want \"%s\"", i, cases[i].in, rc,
                     drv_error_msg(&err), cases[i].part);
        assert_memory_equal(&d, &before, sizeof d);
    }
    /* Truncations of a valid document never parse and never crash. */
    const char *ok = "{\"kind\":\"NodeDesiredState\",\"node\":\"n1\",\"generation\":3,\"pods\":[{"
                     "\"metadata\":{\"name\":\"a\"}}]}";
    for (size_t n = 0; n < strlen(ok); n++) {
        assert_int_not_equal(drv_proto_desired_parse(ok, n, "n1", &d, &err), DRV_OK);
        drv_error_clear(&err);
    }
    assert_int_equal(drv_proto_desired_parse(ok, strlen(ok), "n1", &d, &err), DRV_OK);
    drv_proto_desired_free(&d);
    /* Embedded NUL */
    assert_int_not_equal(drv_proto_desired_parse("{\"a\":\"\0\"}", 9, NULL, &d, &err), DRV_OK);
    drv_error_clear(&err);
    /* NULL payload with a length */
    ASSERT_ERR(drv_proto_desired_parse(NULL, 5, NULL, &d, &err), DRV_ERR_INVALID, "no payload");
}

static void test_oversize(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    size_t big = DRV_PROTO_DESIRED_MAX + 1;
    char *p = malloc(big);
    assert_non_null(p);
    memset(p, ' ', big);
    p[0] = '{';
    p[big - 1] = '}';
    drv_proto_desired_t d;
    ASSERT_ERR(drv_proto_desired_parse(p, big, NULL, &d, &err), DRV_ERR_TOOBIG,
               "desired state: payload of 4194305 bytes exceeds the 4194304-byte limit");
    drv_proto_status_t s;
    ASSERT_ERR(drv_proto_status_parse(p, DRV_PROTO_MSG_MAX + 1, NULL, &s, &err), DRV_ERR_TOOBIG,
               "status report: payload");
    drv_proto_heartbeat_t hb;
    ASSERT_ERR(drv_proto_heartbeat_parse(p, DRV_PROTO_MSG_MAX + 1, NULL, &hb, &err), DRV_ERR_TOOBIG,
               "heartbeat");
    free(p);

    /* The encoder refuses to produce what the peer would refuse. */
    cJSON *o = cJSON_CreateObject();
    char *huge = malloc(DRV_PROTO_MSG_MAX + 10);
    memset(huge, 'x', DRV_PROTO_MSG_MAX + 9);
    huge[DRV_PROTO_MSG_MAX + 9] = '\0';
    cJSON_AddStringToObject(o, "x", huge);
    free(huge);
    char *text = NULL;
    size_t len = 0;
    ASSERT_ERR(drv_proto_encode(o, DRV_PROTO_STATUS, &text, &len, &err), DRV_ERR_TOOBIG,
               "status: message of");
    assert_null(text);
    assert_int_equal(drv_proto_encode(o, DRV_PROTO_DESIRED, &text, &len, &err), DRV_OK);
    free(text);
    cJSON_Delete(o);

    /* Deep nesting is refused, not recursed into. */
    char deep[4096];
    size_t n = 0;
    deep[n++] = '{';
    memcpy(deep + n, "\"a\":", 4);
    n += 4;
    for (int i = 0; i < 1000; i++)
        deep[n++] = '[';
    deep[n] = '\0';
    assert_int_not_equal(drv_proto_desired_parse(deep, n, NULL, &d, &err), DRV_OK);
}

static void test_status(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *ns =
        cJSON_Parse("{\"capacity\":{\"cpu\":\"4\"},\"nodeInfo\":{\"architecture\":"
                    "\"arm64\"},\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}");
    cJSON *pods = cJSON_Parse("[{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"uid\":"
                              "\"u1\"},\"status\":{\"phase\":\"Running\"}}]");
    cJSON *s = drv_proto_status_build("pi-1", 9, ns, pods, &err);
    assert_non_null(s);
    char *text = NULL;
    size_t len;
    assert_int_equal(drv_proto_encode(s, DRV_PROTO_STATUS, &text, &len, &err), DRV_OK);
    drv_proto_status_t st;
    assert_int_equal(drv_proto_status_parse(text, len, "pi-1", &st, &err), DRV_OK);
    assert_int_equal(st.observed_generation, 9);
    assert_true(cJSON_Compare(st.node_status, ns, true));
    assert_true(cJSON_Compare(st.pods, pods, true));
    assert_int_equal(strlen(st.time), 20);
    drv_proto_status_free(&st);
    free(text);
    cJSON_Delete(s);
    cJSON_Delete(ns);
    cJSON_Delete(pods);

#define ST "{\"kind\":\"NodeStatusReport\",\"node\":\"pi-1\",\"observedGeneration\":1,"
    static const struct {
        const char *in;
        const char *part;
    } cases[] = {
        {ST "\"time\":\"2026-01-02T03:04:05Z\",\"nodeStatus\":[]}",
         "nodeStatus: must be an object"},
        {ST "\"time\":\"yesterday\",\"nodeStatus\":{}}", "time: must be an RFC 3339 time"},
        {ST "\"nodeStatus\":{}}", "time: required"},
        {ST "\"time\":\"2026-01-02T03:04:05Z\",\"nodeStatus\":{},\"pods\":[{\"status\":{}}]}",
         "pods[0].metadata: must be an object"},
        {ST "\"time\":\"2026-01-02T03:04:05Z\",\"nodeStatus\":{},\"pods\":[{\"metadata\":{"
            "\"name\":\"a\"},\"status\":{}}]}",
         "pods[0].metadata: name and namespace"},
        {ST "\"time\":\"2026-01-02T03:04:05Z\",\"nodeStatus\":{},\"pods\":[{\"metadata\":{"
            "\"name\":\"a\",\"namespace\":\"b\"},\"status\":7}]}",
         "pods[0].status: must be an object"},
        {"{\"kind\":\"NodeStatusReport\",\"node\":\"pi-1\",\"observedGeneration\":true}",
         "observedGeneration: must be a non-negative integer"},
    };
#undef ST
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        drv_error_clear(&err);
        drv_err_t rc = drv_proto_status_parse(cases[i].in, strlen(cases[i].in), "pi-1", &st, &err);
        if (rc == DRV_OK || strstr(drv_error_msg(&err), cases[i].part) == NULL)
            fail_msg("case %zu: got %d \"%s\", want \"%s\"", i, rc, drv_error_msg(&err),
                     cases[i].part);
    }
}

static void test_heartbeat(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    drv_proto_heartbeat_t hb = {.node = "pi-1", .seq = 17, .observed_generation = 4};
    char buf[256];
    assert_int_equal(drv_proto_heartbeat_format(&hb, buf, sizeof buf, &err), DRV_OK);
    drv_proto_heartbeat_t out;
    assert_int_equal(drv_proto_heartbeat_parse(buf, strlen(buf), "pi-1", &out, &err), DRV_OK);
    assert_string_equal(out.node, "pi-1");
    assert_int_equal(out.seq, 17);
    assert_int_equal(out.observed_generation, 4);
    assert_int_equal(strlen(out.time), 20);
    ASSERT_ERR(drv_proto_heartbeat_parse(buf, strlen(buf), "pi-2", &out, &err), DRV_ERR_INVALID,
               "heartbeat: node: \"pi-1\" does not match");
    const char *neg = "{\"node\":\"pi-1\",\"seq\":-3,\"observedGeneration\":0}";
    ASSERT_ERR(drv_proto_heartbeat_parse(neg, strlen(neg), NULL, &out, &err), DRV_ERR_INVALID,
               "heartbeat: seq: must be a non-negative integer");
    char small[20];
    ASSERT_ERR(drv_proto_heartbeat_format(&hb, small, sizeof small, &err), DRV_ERR_RANGE,
               "too small");
    /* A caller's time cannot smuggle JSON into the message. */
    snprintf(hb.time, sizeof hb.time, "2026-01-01T00:00:00Z\",\"x\":\"");
    ASSERT_ERR(drv_proto_heartbeat_format(&hb, buf, sizeof buf, &err), DRV_ERR_INVALID,
               "heartbeat: time");
    ASSERT_ERR(drv_proto_online_format(true, "now\"}", NULL, buf, sizeof buf, &err),
               DRV_ERR_INVALID, "online: time");
}

static void test_online(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    char buf[128];
    drv_proto_online_t o;
    assert_int_equal(
        drv_proto_online_format(true, "2026-11-25T13:12:41Z", NULL, buf, sizeof buf, &err), DRV_OK);
    assert_int_equal(drv_proto_online_parse(buf, strlen(buf), &o, &err), DRV_OK);
    assert_true(o.online);
    assert_string_equal(o.time, "2026-11-25T13:12:41Z");
    assert_int_equal(drv_proto_online_format(false, NULL, NULL, buf, sizeof buf, &err), DRV_OK);
    assert_string_equal(buf, "{\"online\":false}");
    assert_int_equal(drv_proto_online_parse(buf, strlen(buf), &o, &err), DRV_OK);
    assert_false(o.online);
    assert_string_equal(o.time, "");
    ASSERT_ERR(drv_proto_online_parse("{\"online\":1}", 12, &o, &err), DRV_ERR_INVALID,
               "online: online: must be true or false");
    ASSERT_ERR(drv_proto_online_parse("{}", 2, &o, &err), DRV_ERR_INVALID, "online: required");
    /* The agent run's instance id, in presence messages and the Will. */
    assert_int_equal(drv_proto_online_format(false, NULL, "3f9a-b7", buf, sizeof buf, &err),
                     DRV_OK);
    assert_string_equal(buf, "{\"online\":false,\"instance\":\"3f9a-b7\"}");
    assert_int_equal(drv_proto_online_parse(buf, strlen(buf), &o, &err), DRV_OK);
    assert_string_equal(o.instance, "3f9a-b7");
    assert_int_equal(
        drv_proto_online_format(true, "2026-11-25T13:12:41Z", "a1", buf, sizeof buf, &err), DRV_OK);
    assert_int_equal(drv_proto_online_parse(buf, strlen(buf), &o, &err), DRV_OK);
    assert_true(o.online);
    assert_string_equal(o.time, "2026-11-25T13:12:41Z");
    assert_string_equal(o.instance, "a1");
    ASSERT_ERR(drv_proto_online_format(true, NULL, "a\",\"x", buf, sizeof buf, &err),
               DRV_ERR_INVALID, "online: instance");
    const char *bad = "{\"online\":true,\"instance\":\"a b\"}";
    ASSERT_ERR(drv_proto_online_parse(bad, strlen(bad), &o, &err), DRV_ERR_INVALID,
               "online: instance: must be 1-40 characters");
    const char *longer =
        "{\"online\":true,\"instance\":\"0123456789012345678901234567890123456789x\"}";
    ASSERT_ERR(drv_proto_online_parse(longer, strlen(longer), &o, &err), DRV_ERR_INVALID,
               "online: instance");
    /* And in heartbeats; absent reads as "". */
    drv_proto_heartbeat_t hb = {.seq = 3, .observed_generation = 7}, hb2;
    snprintf(hb.node, sizeof hb.node, "pi-1");
    snprintf(hb.instance, sizeof hb.instance, "c0ffee");
    assert_int_equal(drv_proto_heartbeat_format(&hb, buf, sizeof buf, &err), DRV_OK);
    assert_int_equal(drv_proto_heartbeat_parse(buf, strlen(buf), "pi-1", &hb2, &err), DRV_OK);
    assert_string_equal(hb2.instance, "c0ffee");
    const char *old = "{\"node\":\"pi-1\",\"seq\":1,\"observedGeneration\":0}";
    assert_int_equal(drv_proto_heartbeat_parse(old, strlen(old), "pi-1", &hb2, &err), DRV_OK);
    assert_string_equal(hb2.instance, "");
}

static void test_events(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *e = drv_proto_event_build("pi-1", "Node", "pi-1", NULL, "Warning", "DesiredStateRefused",
                                     "desired state: generation: bad", &err);
    assert_non_null(e);
    char *text;
    size_t len;
    assert_int_equal(drv_proto_encode(e, DRV_PROTO_EVENTS, &text, &len, &err), DRV_OK);
    cJSON *back = NULL;
    assert_int_equal(drv_proto_event_parse(text, len, &back, &err), DRV_OK);
    assert_string_equal(cJSON_GetObjectItem(back, "reason")->valuestring, "DesiredStateRefused");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(back, "source"), "host")->valuestring, "pi-1");
    cJSON_Delete(back);
    free(text);
    cJSON_Delete(e);
    const char *bad = "{\"kind\":\"Event\",\"involvedObject\":{}}";
    ASSERT_ERR(drv_proto_event_parse(bad, strlen(bad), &back, &err), DRV_ERR_INVALID,
               "event: reason: required");
    bad = "{\"kind\":\"Pod\"}";
    ASSERT_ERR(drv_proto_event_parse(bad, strlen(bad), &back, &err), DRV_ERR_INVALID,
               "event: kind: must be \"Event\"");
    bad = "{\"kind\":\"Event\",\"reason\":\"x\"}";
    ASSERT_ERR(drv_proto_event_parse(bad, strlen(bad), &back, &err), DRV_ERR_INVALID,
               "involvedObject: must be an object");
}

static void test_logs(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    drv_proto_logs_req_t req = {.id = "q1", .pod = "web", .tail_bytes = 4096};
    cJSON *r = drv_proto_logs_req_build(&req, &err);
    assert_non_null(r);
    char *text;
    size_t len;
    assert_int_equal(drv_proto_encode(r, DRV_PROTO_LOGS_REQ, &text, &len, &err), DRV_OK);
    drv_proto_logs_req_t back;
    assert_int_equal(drv_proto_logs_req_parse(text, len, &back, &err), DRV_OK);
    assert_string_equal(back.id, "q1");
    assert_string_equal(back.pod, "web");
    assert_string_equal(back.namespace_, "default");
    assert_int_equal(back.tail_bytes, 4096);
    assert_false(back.follow);
    free(text);
    cJSON_Delete(r);
    const char *bad = "{\"id\":\"../x\",\"pod\":\"web\"}";
    ASSERT_ERR(drv_proto_logs_req_parse(bad, strlen(bad), &back, &err), DRV_ERR_INVALID,
               "logs request: id: must consist of");
    bad = "{\"id\":\"a\",\"pod\":\"web\",\"tailBytes\":-1}";
    ASSERT_ERR(drv_proto_logs_req_parse(bad, strlen(bad), &back, &err), DRV_ERR_INVALID,
               "tailBytes: must be a non-negative integer");
    bad = "{\"id\":\"a\"}";
    ASSERT_ERR(drv_proto_logs_req_parse(bad, strlen(bad), &back, &err), DRV_ERR_INVALID,
               "pod: required");
    /* A cancel names only the request it stops; unknown fields stay ignored. */
    assert_false(back.cancel);
    const char *cancel = "{\"id\":\"q1\",\"cancel\":true,\"later\":1}";
    assert_int_equal(drv_proto_logs_req_parse(cancel, strlen(cancel), &back, &err), DRV_OK);
    assert_true(back.cancel);
    assert_string_equal(back.id, "q1");
    bad = "{\"id\":\"a\",\"pod\":\"web\",\"cancel\":\"yes\"}";
    ASSERT_ERR(drv_proto_logs_req_parse(bad, strlen(bad), &back, &err), DRV_ERR_INVALID, "cancel");
    drv_proto_logs_req_t creq = {.id = "q2", .cancel = true};
    cJSON *cr = drv_proto_logs_req_build(&creq, &err);
    assert_non_null(cr);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cr, "cancel")));
    cJSON_Delete(cr);

    /* Binary data survives a chunk. */
    unsigned char bin[300];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (unsigned char)(i * 7);
    cJSON *c = drv_proto_logs_chunk_build("q1", 3, bin, sizeof bin, true, &err);
    assert_non_null(c);
    assert_int_equal(drv_proto_encode(c, DRV_PROTO_LOGS_RES, &text, &len, &err), DRV_OK);
    drv_proto_logs_chunk_t ch;
    assert_int_equal(drv_proto_logs_chunk_parse(text, len, &ch, &err), DRV_OK);
    assert_int_equal(ch.seq, 3);
    assert_true(ch.eof);
    assert_int_equal(ch.len, sizeof bin);
    assert_memory_equal(ch.data, bin, sizeof bin);
    drv_proto_logs_chunk_free(&ch);
    free(text);
    cJSON_Delete(c);
    bad = "{\"id\":\"q\",\"seq\":0,\"data\":\"@@@\"}";
    ASSERT_ERR(drv_proto_logs_chunk_parse(bad, strlen(bad), &ch, &err), DRV_ERR_INVALID,
               "logs chunk: data: must be base64");
    bad = "{\"id\":\"q\",\"seq\":0,\"data\":5}";
    ASSERT_ERR(drv_proto_logs_chunk_parse(bad, strlen(bad), &ch, &err), DRV_ERR_INVALID,
               "data: must be a base64 string");
    assert_null(drv_proto_logs_chunk_build("q", 0, bin, DRV_PROTO_LOGS_CHUNK_MAX + 1, false, &err));
    drv_error_clear(&err);
    /* An empty final chunk. */
    c = drv_proto_logs_chunk_build("q", 9, NULL, 0, true, &err);
    assert_non_null(c);
    assert_int_equal(drv_proto_encode(c, DRV_PROTO_LOGS_RES, &text, &len, &err), DRV_OK);
    assert_int_equal(drv_proto_logs_chunk_parse(text, len, &ch, &err), DRV_OK);
    assert_int_equal(ch.len, 0);
    assert_null(ch.data);
    assert_true(ch.eof);
    assert_string_equal(ch.error, "");
    free(text);
    cJSON_Delete(c);
    /* An error answer. */
    c = drv_proto_logs_error_build("q", 0, "pod default/web: not found", &err);
    assert_non_null(c);
    assert_int_equal(drv_proto_encode(c, DRV_PROTO_LOGS_RES, &text, &len, &err), DRV_OK);
    assert_int_equal(drv_proto_logs_chunk_parse(text, len, &ch, &err), DRV_OK);
    assert_true(ch.eof);
    assert_string_equal(ch.error, "pod default/web: not found");
    free(text);
    cJSON_Delete(c);
    bad = "{\"id\":\"q\",\"seq\":0,\"error\":[]}";
    ASSERT_ERR(drv_proto_logs_chunk_parse(bad, strlen(bad), &ch, &err), DRV_ERR_INVALID,
               "logs chunk: error: must be a string");
}

static void test_backoff(void **state)
{
    (void)state;
    drv_proto_backoff_t a, b, c;
    drv_proto_backoff_init(&a, 500, 30000, 1);
    drv_proto_backoff_init(&b, 500, 30000, 1);
    drv_proto_backoff_init(&c, 500, 30000, 2);
    uint32_t ceil = 500;
    int differ = 0;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(a.cur_ms, ceil);
        uint32_t da = drv_proto_backoff_next(&a);
        uint32_t db = drv_proto_backoff_next(&b);
        uint32_t dc = drv_proto_backoff_next(&c);
        assert_int_equal(da, db); /* same seed, same sequence: reproducible */
        assert_true(da <= ceil);
        assert_true(dc <= ceil);
        differ += da != dc;
        ceil = ceil * 2 > 30000 ? 30000 : ceil * 2;
    }
    assert_int_equal(a.cur_ms, 30000);
    assert_true(differ >= 15); /* two seeds do not move in lockstep */
    drv_proto_backoff_reset(&a);
    assert_int_equal(a.cur_ms, 500);

    /* Full jitter: 1000 clients at the 30 s ceiling spread over the whole window. */
    unsigned buckets[10] = {0};
    for (uint64_t s = 1; s <= 1000; s++) {
        drv_proto_backoff_t x;
        drv_proto_backoff_init(&x, 30000, 30000, s);
        uint32_t d = drv_proto_backoff_next(&x);
        assert_true(d <= 30000);
        buckets[d * 10 / 30001]++;
    }
    for (int i = 0; i < 10; i++)
        assert_in_range(buckets[i], 50, 150);
    /* Seed 0 draws a random seed. */
    drv_proto_backoff_init(&a, 0, 0, 0);
    assert_int_equal(a.min_ms, 1);
    assert_true(a.rng != 0);
}

/* Signed desired state: the exact bytes round-trip; a changed byte, another key, no signature
 * and a mangled envelope are each refused with their own error. */
static void test_desired_signed(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    char *key = NULL, *pub = NULL, *key2 = NULL, *pub2 = NULL;
    assert_int_equal(drv_pki_key_generate(&key, &err), DRV_OK);
    assert_int_equal(drv_pki_key_public(key, &pub, &err), DRV_OK);
    assert_int_equal(drv_pki_key_generate(&key2, &err), DRV_OK);
    assert_int_equal(drv_pki_key_public(key2, &pub2, &err), DRV_OK);
    const char *doc =
        "{\"apiVersion\":\"drover/v1\",\"kind\":\"NodeDesiredState\",\"node\":\"pi-1\","
        "\"generation\":7,\"pods\":[{\"a\":\"q\\\"uote \\u00e9\"}]}";
    char *env = NULL;
    size_t envlen = 0;
    assert_int_equal(drv_proto_desired_sign(doc, strlen(doc), key, &env, &envlen, &err), DRV_OK);
    assert_int_equal(envlen, strlen(env));
    assert_non_null(strstr(env, "\"kind\":\"SignedNodeDesiredState\""));
    char *got = NULL;
    size_t gotlen = 0;
    assert_int_equal(drv_proto_desired_open(env, envlen, pub, &got, &gotlen, &err), DRV_OK);
    assert_int_equal(gotlen, strlen(doc));
    assert_string_equal(got, doc);
    drv_proto_desired_t d;
    assert_int_equal(drv_proto_desired_parse(got, gotlen, "pi-1", &d, &err), DRV_OK);
    assert_int_equal(d.generation, 7);
    drv_proto_desired_free(&d);
    free(got);
    /* Another key. */
    ASSERT_ERR(drv_proto_desired_open(env, envlen, pub2, &got, &gotlen, &err), DRV_ERR_INTEGRITY,
               "signature: does not verify");
    /* The generation changed inside the signed text. */
    char *t = strdup(env);
    char *g = strstr(t, "generation\\\":7");
    assert_non_null(g);
    g[strlen("generation\\\":")] = '9';
    ASSERT_ERR(drv_proto_desired_open(t, strlen(t), pub, &got, &gotlen, &err), DRV_ERR_INTEGRITY,
               "signature");
    free(t);
    /* The node moved. */
    t = strdup(env);
    g = strstr(t, "pi-1");
    g[3] = '2';
    ASSERT_ERR(drv_proto_desired_open(t, strlen(t), pub, &got, &gotlen, &err), DRV_ERR_INTEGRITY,
               "signature");
    free(t);
    /* Unsigned, and envelopes missing their parts. */
    ASSERT_ERR(drv_proto_desired_open(doc, strlen(doc), pub, &got, &gotlen, &err), DRV_ERR_PERM,
               "desired state: not signed");
    const char *bad[][2] = {
        {"{\"kind\":\"SignedNodeDesiredState\",\"alg\":\"ES256\",\"payload\":\"{}\"}", "signature"},
        {"{\"kind\":\"SignedNodeDesiredState\",\"alg\":\"none\",\"signature\":\"AA\",\"payload\":"
         "\"{}\"}",
         "alg"},
        {"{\"kind\":\"SignedNodeDesiredState\",\"alg\":\"ES256\",\"signature\":\"AA\"}", "payload"},
        {"{\"kind\":\"SignedNodeDesiredState\",\"alg\":\"ES256\",\"signature\":\"!!\",\"payload\":"
         "\"{}\"}",
         "signature"},
        {"{\"kind\":\"Other\"}", "kind"},
        {"[1]", "JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        drv_err_t rc =
            drv_proto_desired_open(bad[i][0], strlen(bad[i][0]), pub, &got, &gotlen, &err);
        if (rc == DRV_OK || !strstr(drv_error_msg(&err), bad[i][1]))
            fail_msg("%s: got %d \"%s\"", bad[i][0], rc, drv_error_msg(&err));
        drv_error_clear(&err);
    }
    free(env);
    drv_pki_secret_free(key);
    drv_pki_secret_free(key2);
    free(pub);
    free(pub2);
}

/* A sealed Secret opens only for its node and name, and only unaltered. */
static void test_secret_sealed(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    char *key = NULL, *pub = NULL, *key2 = NULL;
    assert_int_equal(drv_pki_key_generate(&key, &err), DRV_OK);
    assert_int_equal(drv_pki_key_public(key, &pub, &err), DRV_OK);
    assert_int_equal(drv_pki_key_generate(&key2, &err), DRV_OK);
    const char *src = "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"db\","
                      "\"namespace\":\"prod\"},\"type\":\"Opaque\",\"data\":{\"pw\":"
                      "\"aHVudGVyMg==\"},\"stringData\":{\"user\":\"root\"}}";
    cJSON *s = cJSON_Parse(src);
    assert_false(drv_proto_secret_is_sealed(s));
    assert_int_equal(drv_proto_secret_seal(s, "pi-1", pub, &err), DRV_OK);
    assert_true(drv_proto_secret_is_sealed(s));
    char *text = cJSON_PrintUnformatted(s);
    assert_null(strstr(text, "aHVudGVyMg"));
    assert_null(strstr(text, "root"));
    assert_null(cJSON_GetObjectItem(s, "data"));
    free(text);
    /* Other node, other key, other name, a flipped character: each refused, s unchanged. */
    ASSERT_ERR(drv_proto_secret_unseal(s, "pi-2", key, &err), DRV_ERR_INTEGRITY,
               "Secret prod/db: sealedData: does not open");
    ASSERT_ERR(drv_proto_secret_unseal(s, "pi-1", key2, &err), DRV_ERR_INTEGRITY, "sealedData");
    cJSON *other = cJSON_Duplicate(s, 1);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(other, "metadata"), "name",
                              cJSON_CreateString("db2"));
    ASSERT_ERR(drv_proto_secret_unseal(other, "pi-1", key, &err), DRV_ERR_INTEGRITY, "db2");
    cJSON_Delete(other);
    other = cJSON_Duplicate(s, 1);
    char *blob = cJSON_GetObjectItem(other, "sealedData")->valuestring;
    blob[10] = blob[10] == 'A' ? 'B' : 'A';
    ASSERT_ERR(drv_proto_secret_unseal(other, "pi-1", key, &err), DRV_ERR_INTEGRITY, "sealedData");
    cJSON_Delete(other);
    assert_true(drv_proto_secret_is_sealed(s));
    /* The right key. */
    assert_int_equal(drv_proto_secret_unseal(s, "pi-1", key, &err), DRV_OK);
    assert_false(drv_proto_secret_is_sealed(s));
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "data"), "pw")->valuestring,
                        "aHVudGVyMg==");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(s, "stringData"), "user")->valuestring, "root");
    /* Unsealing a clear Secret is a no-op. */
    assert_int_equal(drv_proto_secret_unseal(s, "pi-1", key, &err), DRV_OK);
    cJSON_Delete(s);
    drv_pki_secret_free(key);
    drv_pki_secret_free(key2);
    free(pub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topics),
        cmocka_unit_test(test_bad_node_names),
        cmocka_unit_test(test_unknown_topics),
        cmocka_unit_test(test_desired_roundtrip),
        cmocka_unit_test(test_desired_malformed),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_heartbeat),
        cmocka_unit_test(test_online),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_logs),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_desired_signed),
        cmocka_unit_test(test_secret_sealed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
