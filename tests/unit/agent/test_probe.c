/* Container probes: the Kubernetes timing/verdict state machine on an injected clock, and the
 * asynchronous prober against real servers on 127.0.0.1 (HTTP, TCP, HTTPS) and exec probes
 * through a fake crun script. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drover/proc.h"
#include "probe/probe.h"

/* ---- helpers ---- */

static cJSON *json(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!j)
        fail_msg("bad test JSON: %s", text);
    return j;
}

static cJSON *container(const char *probes)
{
    char buf[4096];
    snprintf(buf, sizeof(buf),
             "{\"name\":\"app\",\"ports\":[{\"name\":\"web\",\"containerPort\":%s}]%s%s}", "8080",
             probes[0] ? "," : "", probes);
    return json(buf);
}

static drv_probe_state_t init_state(const char *probes)
{
    cJSON *c = container(probes);
    drv_probe_state_t st;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_probe_state_init(&st, c, &err) != DRV_OK)
        fail_msg("init: %s", drv_error_msg(&err));
    cJSON_Delete(c);
    return st;
}

/* Hands out the attempt due at now; fails unless it is of kind want. */
static uint32_t expect_due(drv_probe_state_t *st, int64_t now, drv_probe_kind_t want)
{
    drv_probe_kind_t k;
    uint32_t tok;
    if (!drv_probe_state_next(st, now, &k, &tok))
        fail_msg("nothing due at %lld, wanted %s", (long long)now, drv_probe_kind_name(want));
    assert_string_equal(drv_probe_kind_name(k), drv_probe_kind_name(want));
    return tok;
}

static void expect_none(drv_probe_state_t *st, int64_t now)
{
    drv_probe_kind_t k;
    uint32_t tok;
    if (drv_probe_state_next(st, now, &k, &tok))
        fail_msg("%s handed out at %lld", drv_probe_kind_name(k), (long long)now);
}

/* Runs one attempt of kind at now with result; returns the events. */
static unsigned attempt(drv_probe_state_t *st, int64_t now, drv_probe_kind_t kind,
                        drv_probe_result_t res)
{
    uint32_t tok = expect_due(st, now, kind);
    return drv_probe_state_result(st, kind, tok, res, now);
}

/* ---- specs and validation ---- */

static void test_spec_defaults(void **state)
{
    cJSON *p = json("{\"exec\":{\"command\":[\"true\"]}}");
    drv_probe_spec_t s;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_probe_spec_parse(p, &s, &err), DRV_OK);
    assert_int_equal(s.initial_delay_ms, 0);
    assert_int_equal(s.timeout_ms, 1000);
    assert_int_equal(s.period_ms, 10000);
    assert_int_equal(s.success_threshold, 1);
    assert_int_equal(s.failure_threshold, 3);
    cJSON_Delete(p);

    p = json("{\"initialDelaySeconds\":5,\"timeoutSeconds\":2,\"periodSeconds\":3,"
             "\"successThreshold\":2,\"failureThreshold\":7}");
    assert_int_equal(drv_probe_spec_parse(p, &s, &err), DRV_OK);
    assert_int_equal(s.initial_delay_ms, 5000);
    assert_int_equal(s.timeout_ms, 2000);
    assert_int_equal(s.period_ms, 3000);
    assert_int_equal(s.success_threshold, 2);
    assert_int_equal(s.failure_threshold, 7);
    cJSON_Delete(p);
}

static void test_spec_errors(void **state)
{
    static const struct {
        const char *probe, *msg;
    } cases[] = {
        {"{\"periodSeconds\":0}", "periodSeconds: must be an integer from 1 to 2147483647"},
        {"{\"periodSeconds\":1.5}", "periodSeconds: must be an integer"},
        {"{\"timeoutSeconds\":\"1\"}", "timeoutSeconds: must be an integer"},
        {"{\"initialDelaySeconds\":-1}", "initialDelaySeconds: must be an integer from 0"},
        {"{\"failureThreshold\":1e12}", "failureThreshold: must be an integer"},
        {"{\"successThreshold\":0}", "successThreshold: must be an integer from 1"},
        {"[1]", "must be an object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *p = json(cases[i].probe);
        drv_probe_spec_t s = {.period_ms = 42};
        drv_error_t err = DRV_ERROR_INIT;
        assert_int_equal(drv_probe_spec_parse(p, &s, &err), DRV_ERR_INVALID);
        if (!strstr(drv_error_msg(&err), cases[i].msg))
            fail_msg("%s: got \"%s\"", cases[i].probe, drv_error_msg(&err));
        assert_int_equal(s.period_ms, 42); /* untouched */
        cJSON_Delete(p);
    }
}

static void test_validate_errors(void **state)
{
    static const struct {
        const char *probe;
        drv_err_t code;
        const char *msg;
    } cases[] = {
        {"{}", DRV_ERR_INVALID, "must specify exactly one handler"},
        {"{\"exec\":{\"command\":[\"a\"]},\"tcpSocket\":{\"port\":1}}", DRV_ERR_INVALID,
         "exactly one handler"},
        {"{\"grpc\":{\"port\":\"x\"}}", DRV_ERR_INVALID, "grpc.port: must be a number"},
        {"{\"exec\":{}}", DRV_ERR_INVALID, "exec.command: required"},
        {"{\"exec\":{\"command\":[]}}", DRV_ERR_INVALID, "exec.command: must be a non-empty list"},
        {"{\"exec\":{\"command\":[\"a\",3]}}", DRV_ERR_INVALID,
         "exec.command[1]: must be a string"},
        {"{\"exec\":{\"command\":[\"\"]}}", DRV_ERR_INVALID, "exec.command[0]: must not be empty"},
        {"{\"httpGet\":{}}", DRV_ERR_INVALID, "httpGet.port: required"},
        {"{\"httpGet\":{\"port\":\"metrics\"}}", DRV_ERR_INVALID,
         "httpGet.port: no container port named \"metrics\""},
        {"{\"httpGet\":{\"port\":70000}}", DRV_ERR_INVALID, "httpGet.port: must be a number"},
        {"{\"httpGet\":{\"port\":80,\"path\":\"x\"}}", DRV_ERR_INVALID,
         "httpGet.path: must start with '/'"},
        {"{\"httpGet\":{\"port\":80,\"scheme\":\"FTP\"}}", DRV_ERR_INVALID, "httpGet.scheme"},
        {"{\"httpGet\":{\"port\":80,\"host\":\"evil.com/x@y\"}}", DRV_ERR_INVALID,
         "httpGet.host: must be a host name or an IP address"},
        {"{\"httpGet\":{\"port\":80,\"httpHeaders\":[{\"name\":\"X: y\",\"value\":\"v\"}]}}",
         DRV_ERR_INVALID, "httpGet.httpHeaders[0].name: invalid HTTP header name"},
        {"{\"httpGet\":{\"port\":80,\"httpHeaders\":[{\"name\":\"X\",\"value\":\"a\\r\\nB: c\"}]}}",
         DRV_ERR_INVALID, "httpGet.httpHeaders[0].value: may not contain line breaks"},
        {"{\"httpGet\":{\"port\":80,\"httpHeaders\":[\"X: y\"]}}", DRV_ERR_INVALID,
         "httpGet.httpHeaders[0]: must be an object"},
        {"{\"tcpSocket\":{\"port\":0}}", DRV_ERR_INVALID, "tcpSocket.port: must be a number"},
        {"{\"tcpSocket\":{\"port\":\"web\",\"host\":\"-x\"}}", DRV_ERR_INVALID, "tcpSocket.host"},
        {"{\"tcpSocket\":{\"port\":\"web\"},\"periodSeconds\":0}", DRV_ERR_INVALID,
         "periodSeconds"},
    };
    cJSON *ctr = container("");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *p = json(cases[i].probe);
        drv_error_t err = DRV_ERROR_INIT;
        drv_err_t r = drv_probe_validate(p, ctr, &err);
        if (r != cases[i].code || !strstr(drv_error_msg(&err), cases[i].msg))
            fail_msg("%s: got %d \"%s\"", cases[i].probe, r, drv_error_msg(&err));
        cJSON_Delete(p);
    }
    /* Hostile sizes are refused, not copied. */
    cJSON *big = json("{\"exec\":{\"command\":[]}}");
    cJSON *cmd = cJSON_GetObjectItem(cJSON_GetObjectItem(big, "exec"), "command");
    for (int i = 0; i < DRV_PROBE_EXEC_MAX_ARGS + 1; i++)
        cJSON_AddItemToArray(cmd, cJSON_CreateString("arg"));
    drv_error_t e2 = DRV_ERROR_INIT;
    assert_int_equal(drv_probe_validate(big, ctr, &e2), DRV_ERR_INVALID);
    assert_string_equal(drv_error_msg(&e2), "exec.command: more than 128 elements");
    cJSON_Delete(big);
    char *huge = malloc(70000);
    assert_non_null(huge);
    memset(huge, 'a', 69999);
    huge[0] = '/';
    huge[69999] = '\0';
    big = json("{\"httpGet\":{\"port\":80,\"httpHeaders\":[{\"name\":\"X\"}]}}");
    cJSON *hg = cJSON_GetObjectItem(big, "httpGet");
    cJSON_AddStringToObject(cJSON_GetArrayItem(cJSON_GetObjectItem(hg, "httpHeaders"), 0), "value",
                            huge);
    assert_int_equal(drv_probe_validate(big, ctr, &e2), DRV_ERR_INVALID);
    assert_string_equal(drv_error_msg(&e2), "httpGet.httpHeaders[0]: longer than 4093 bytes");
    cJSON_DeleteItemFromArray(cJSON_GetObjectItem(hg, "httpHeaders"), 0);
    cJSON_AddStringToObject(hg, "path", huge);
    assert_int_equal(drv_probe_validate(big, ctr, &e2), DRV_ERR_INVALID);
    assert_string_equal(drv_error_msg(&e2), "httpGet.path: longer than 2048 bytes");
    cJSON_Delete(big);
    free(huge);

    /* Good ones, including a named port. */
    cJSON *p = json("{\"tcpSocket\":{\"port\":\"web\"}}");
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_probe_validate(p, ctr, &err), DRV_OK);
    cJSON_Delete(p);
    cJSON_Delete(ctr);

    /* The container's state init names the probe. */
    cJSON *c = container("\"readinessProbe\":{\"httpGet\":{\"port\":\"nope\"}}");
    drv_probe_state_t st;
    assert_int_equal(drv_probe_state_init(&st, c, &err), DRV_ERR_INVALID);
    assert_string_equal(drv_error_msg(&err),
                        "readinessProbe: httpGet.port: no container port named \"nope\"");
    cJSON_Delete(c);
}

/* ---- the state machine ---- */

static void test_state_no_probes(void **state)
{
    drv_probe_state_t st = init_state("");
    assert_false(drv_probe_state_ready(&st));
    drv_probe_state_container_started(&st, 1000);
    assert_true(drv_probe_state_started(&st));
    assert_true(drv_probe_state_ready(&st));
    assert_false(drv_probe_state_restart_needed(&st, NULL));
    assert_true(drv_probe_state_next_due(&st) == INT64_MAX);
    expect_none(&st, 1000000);
}

static void test_state_initial_delay_and_period(void **state)
{
    drv_probe_state_t st = init_state("\"livenessProbe\":{\"exec\":{\"command\":[\"x\"]},"
                                      "\"initialDelaySeconds\":5,\"periodSeconds\":10}");
    drv_probe_state_container_started(&st, 1000);
    assert_true(drv_probe_state_ready(&st)); /* no readiness probe */
    assert_int_equal(drv_probe_state_next_due(&st), 6000);
    expect_none(&st, 5999);
    uint32_t tok = expect_due(&st, 6000, DRV_PROBE_LIVENESS);
    expect_none(&st, 6000); /* in flight: not handed out twice */
    assert_true(drv_probe_state_next_due(&st) == INT64_MAX);
    assert_int_equal(drv_probe_state_result(&st, DRV_PROBE_LIVENESS, tok, DRV_PROBE_SUCCESS, 6100),
                     0);
    assert_int_equal(drv_probe_state_next_due(&st), 16000);
    expect_none(&st, 15999);
    attempt(&st, 16000, DRV_PROBE_LIVENESS, DRV_PROBE_SUCCESS);
    assert_int_equal(drv_probe_state_next_due(&st), 26000);
}

static void test_state_readiness_thresholds(void **state)
{
    drv_probe_state_t st = init_state("\"readinessProbe\":{\"tcpSocket\":{\"port\":\"web\"},"
                                      "\"periodSeconds\":1,\"successThreshold\":2,"
                                      "\"failureThreshold\":3}");
    drv_probe_state_container_started(&st, 0);
    assert_true(drv_probe_state_started(&st));
    assert_false(drv_probe_state_ready(&st)); /* not ready until it succeeds */
    static const struct {
        drv_probe_result_t res;
        unsigned ev;
        bool ready;
    } steps[] = {
        {DRV_PROBE_SUCCESS, 0, false},                  /* 1 of 2 */
        {DRV_PROBE_FAILURE, 0, false},                  /* run broken */
        {DRV_PROBE_SUCCESS, 0, false},                  /* 1 of 2 */
        {DRV_PROBE_SUCCESS, DRV_PROBE_EV_READY, true},  /* 2 of 2: ready */
        {DRV_PROBE_SUCCESS, 0, true},                   /* stays */
        {DRV_PROBE_FAILURE, 0, true},                   /* 1 of 3 */
        {DRV_PROBE_FAILURE, 0, true},                   /* 2 of 3 */
        {DRV_PROBE_SUCCESS, 0, true},                   /* resets the failures */
        {DRV_PROBE_FAILURE, 0, true},                   /* 1 */
        {DRV_PROBE_FAILURE, 0, true},                   /* 2 */
        {DRV_PROBE_FAILURE, DRV_PROBE_EV_READY, false}, /* 3: not ready */
        {DRV_PROBE_FAILURE, 0, false},                  /* no restart for readiness */
        {DRV_PROBE_SUCCESS, 0, false},
        {DRV_PROBE_SUCCESS, DRV_PROBE_EV_READY, true},
    };
    int64_t now = 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++, now += 1000) {
        unsigned ev = attempt(&st, now, DRV_PROBE_READINESS, steps[i].res);
        if (ev != steps[i].ev || drv_probe_state_ready(&st) != steps[i].ready)
            fail_msg("step %zu: events %#x ready %d", i, ev, drv_probe_state_ready(&st));
    }
    assert_false(drv_probe_state_restart_needed(&st, NULL));
}

static void test_state_liveness_restart(void **state)
{
    drv_probe_state_t st = init_state("\"livenessProbe\":{\"httpGet\":{\"port\":8080},"
                                      "\"periodSeconds\":2,\"failureThreshold\":3}");
    drv_probe_state_container_started(&st, 0);
    assert_int_equal(attempt(&st, 0, DRV_PROBE_LIVENESS, DRV_PROBE_FAILURE), 0);
    assert_int_equal(attempt(&st, 2000, DRV_PROBE_LIVENESS, DRV_PROBE_FAILURE), 0);
    assert_int_equal(attempt(&st, 4000, DRV_PROBE_LIVENESS, DRV_PROBE_SUCCESS), 0); /* reset */
    assert_int_equal(attempt(&st, 6000, DRV_PROBE_LIVENESS, DRV_PROBE_FAILURE), 0);
    assert_int_equal(attempt(&st, 8000, DRV_PROBE_LIVENESS, DRV_PROBE_FAILURE), 0);
    assert_false(drv_probe_state_restart_needed(&st, NULL));
    assert_int_equal(attempt(&st, 10000, DRV_PROBE_LIVENESS, DRV_PROBE_FAILURE),
                     DRV_PROBE_EV_RESTART);
    drv_probe_kind_t why = DRV_PROBE_READINESS;
    assert_true(drv_probe_state_restart_needed(&st, &why));
    assert_int_equal(why, DRV_PROBE_LIVENESS);
    /* On hold until the container is replaced. */
    expect_none(&st, 100000);
    assert_true(drv_probe_state_next_due(&st) == INT64_MAX);
    assert_true(drv_probe_state_ready(&st)); /* liveness does not decide readiness */
}

static void test_state_startup_gating(void **state)
{
    drv_probe_state_t st =
        init_state("\"startupProbe\":{\"exec\":{\"command\":[\"x\"]},\"periodSeconds\":1,"
                   "\"failureThreshold\":30},"
                   "\"livenessProbe\":{\"exec\":{\"command\":[\"x\"]},\"periodSeconds\":10},"
                   "\"readinessProbe\":{\"exec\":{\"command\":[\"x\"]},\"periodSeconds\":5,"
                   "\"initialDelaySeconds\":2}");
    drv_probe_state_container_started(&st, 0);
    assert_false(drv_probe_state_started(&st));
    assert_false(drv_probe_state_ready(&st));
    for (int i = 0; i < 5; i++) {
        /* Only the startup probe runs, even though the others are past their delays. */
        assert_int_equal(attempt(&st, i * 1000, DRV_PROBE_STARTUP, DRV_PROBE_FAILURE), 0);
        expect_none(&st, i * 1000);
    }
    assert_int_equal(drv_probe_state_next_due(&st), 5000);
    unsigned ev = attempt(&st, 5000, DRV_PROBE_STARTUP, DRV_PROBE_SUCCESS);
    assert_int_equal(ev, DRV_PROBE_EV_STARTED); /* readiness probe still has to pass */
    assert_true(drv_probe_state_started(&st));
    assert_false(drv_probe_state_ready(&st));
    /* Liveness and readiness are due at once; startup never again. */
    assert_int_equal(drv_probe_state_next_due(&st), 0);
    uint32_t lt = expect_due(&st, 5000, DRV_PROBE_LIVENESS);
    uint32_t rt = expect_due(&st, 5000, DRV_PROBE_READINESS);
    expect_none(&st, 5000);
    assert_int_equal(drv_probe_state_result(&st, DRV_PROBE_READINESS, rt, DRV_PROBE_SUCCESS, 5001),
                     DRV_PROBE_EV_READY);
    assert_int_equal(drv_probe_state_result(&st, DRV_PROBE_LIVENESS, lt, DRV_PROBE_SUCCESS, 5001),
                     0);
    assert_true(drv_probe_state_ready(&st));
    assert_int_equal(drv_probe_state_next_due(&st), 10000); /* readiness, 5 s period */
    expect_none(&st, 9999);
    attempt(&st, 10000, DRV_PROBE_READINESS, DRV_PROBE_SUCCESS);
    attempt(&st, 15000, DRV_PROBE_LIVENESS, DRV_PROBE_SUCCESS); /* 10 s after 5000 */
    attempt(&st, 15000, DRV_PROBE_READINESS, DRV_PROBE_SUCCESS);
    expect_none(&st, 15000);
    assert_int_equal(drv_probe_state_next_due(&st), 20000);

    /* A startup probe alone: ready as soon as it succeeds. */
    st = init_state("\"startupProbe\":{\"exec\":{\"command\":[\"x\"]},\"initialDelaySeconds\":3}");
    drv_probe_state_container_started(&st, 0);
    expect_none(&st, 2999);
    assert_int_equal(attempt(&st, 3000, DRV_PROBE_STARTUP, DRV_PROBE_SUCCESS),
                     DRV_PROBE_EV_STARTED | DRV_PROBE_EV_READY);
    assert_true(drv_probe_state_ready(&st));
}

static void test_state_startup_failure(void **state)
{
    drv_probe_state_t st =
        init_state("\"startupProbe\":{\"tcpSocket\":{\"port\":1},\"periodSeconds\":1,"
                   "\"failureThreshold\":2},"
                   "\"livenessProbe\":{\"exec\":{\"command\":[\"x\"]}}");
    drv_probe_state_container_started(&st, 0);
    assert_int_equal(attempt(&st, 0, DRV_PROBE_STARTUP, DRV_PROBE_FAILURE), 0);
    assert_int_equal(attempt(&st, 1000, DRV_PROBE_STARTUP, DRV_PROBE_FAILURE),
                     DRV_PROBE_EV_RESTART);
    drv_probe_kind_t why = DRV_PROBE_LIVENESS;
    assert_true(drv_probe_state_restart_needed(&st, &why));
    assert_int_equal(why, DRV_PROBE_STARTUP);
    assert_false(drv_probe_state_started(&st));
    expect_none(&st, 60000); /* nothing runs any more: neither startup nor the gated liveness */
}

static void test_state_reset_on_restart(void **state)
{
    drv_probe_state_t st =
        init_state("\"livenessProbe\":{\"exec\":{\"command\":[\"x\"]},\"periodSeconds\":1,"
                   "\"failureThreshold\":1,\"initialDelaySeconds\":1},"
                   "\"readinessProbe\":{\"exec\":{\"command\":[\"x\"]},\"periodSeconds\":1,"
                   "\"successThreshold\":2}");
    drv_probe_state_container_started(&st, 0);
    assert_int_equal(attempt(&st, 0, DRV_PROBE_READINESS, DRV_PROBE_SUCCESS), 0); /* 1 of 2 */
    assert_int_equal(attempt(&st, 1000, DRV_PROBE_LIVENESS, DRV_PROBE_FAILURE),
                     DRV_PROBE_EV_RESTART);
    uint32_t old = expect_due(&st, 1000, DRV_PROBE_READINESS); /* in flight across the restart */

    drv_probe_state_container_stopped(&st);
    assert_false(drv_probe_state_ready(&st));
    assert_false(drv_probe_state_started(&st));
    expect_none(&st, 100000);
    assert_true(drv_probe_state_next_due(&st) == INT64_MAX);

    drv_probe_state_container_started(&st, 50000);
    assert_false(drv_probe_state_restart_needed(&st, NULL));
    assert_false(drv_probe_state_ready(&st));
    /* The attempt from the old container is stale and ignored. */
    assert_int_equal(
        drv_probe_state_result(&st, DRV_PROBE_READINESS, old, DRV_PROBE_SUCCESS, 50000), 0);
    assert_int_equal(drv_probe_state_next_due(&st), 50000); /* readiness: no delay */
    /* The success counted before the restart does not carry over: 1 of 2 again. */
    assert_int_equal(attempt(&st, 50000, DRV_PROBE_READINESS, DRV_PROBE_SUCCESS), 0);
    assert_false(drv_probe_state_ready(&st));
    expect_none(&st, 50999); /* liveness's delay counts from the new start */
    assert_int_equal(attempt(&st, 51000, DRV_PROBE_LIVENESS, DRV_PROBE_SUCCESS), 0);
    assert_int_equal(attempt(&st, 51000, DRV_PROBE_READINESS, DRV_PROBE_SUCCESS),
                     DRV_PROBE_EV_READY);
    assert_true(drv_probe_state_ready(&st));
}

static void test_state_slow_attempt_and_unknown(void **state)
{
    drv_probe_state_t st = init_state("\"readinessProbe\":{\"exec\":{\"command\":[\"x\"]},"
                                      "\"periodSeconds\":2,\"timeoutSeconds\":5,"
                                      "\"failureThreshold\":1}");
    drv_probe_state_container_started(&st, 0);
    uint32_t tok = expect_due(&st, 0, DRV_PROBE_READINESS);
    expect_none(&st, 4000); /* still in flight past its period */
    drv_probe_state_result(&st, DRV_PROBE_READINESS, tok, DRV_PROBE_SUCCESS, 4500);
    assert_true(drv_probe_state_ready(&st));
    assert_true(drv_probe_state_next_due(&st) <= 4500); /* overdue: at once */
    /* An attempt that could not be run is not counted, not even against failureThreshold 1. */
    assert_int_equal(attempt(&st, 4500, DRV_PROBE_READINESS, DRV_PROBE_UNKNOWN), 0);
    assert_true(drv_probe_state_ready(&st));
    assert_int_equal(drv_probe_state_next_due(&st), 6500);
    /* A result for a kind not in flight, or an unknown kind, is ignored. */
    assert_int_equal(
        drv_probe_state_result(&st, DRV_PROBE_READINESS, st.gen, DRV_PROBE_FAILURE, 6000), 0);
    assert_int_equal(
        drv_probe_state_result(&st, (drv_probe_kind_t)7, st.gen, DRV_PROBE_FAILURE, 6000), 0);
    assert_true(drv_probe_state_ready(&st));
    assert_int_equal(attempt(&st, 6500, DRV_PROBE_READINESS, DRV_PROBE_FAILURE),
                     DRV_PROBE_EV_READY);
}

/* ---- the prober: fixtures ---- */

static pid_t server_pid = -1;
static int server_port, closed_port;
static char tmpdir[64], fake_crun[128];

static void respond(int fd, int code, const char *extra, const char *body)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", code,
                     strlen(body), extra);
    if (write(fd, head, (size_t)n) < 0 || write(fd, body, strlen(body)) < 0)
        return;
}

/* One request per connection (in its own process so that a slow answer blocks nothing). */
static void serve(int fd)
{
    char req[8192];
    size_t n = 0;
    while (n < sizeof(req) - 1) {
        ssize_t r = read(fd, req + n, sizeof(req) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    req[n] = '\0';
    char path[256] = "";
    if (sscanf(req, "GET %255s ", path) != 1)
        return;
    if (!strcmp(path, "/ok") || !strncmp(path, "/ok?", 4))
        respond(fd, 200, "", "fine");
    else if (!strcmp(path, "/fail"))
        respond(fd, 500, "", "broken\n\x01 db down");
    else if (!strcmp(path, "/redirect"))
        respond(fd, 302, "Location: http://example.invalid/\r\n", "");
    else if (!strcmp(path, "/slow")) {
        sleep(3);
        respond(fd, 200, "", "late");
    } else if (!strcmp(path, "/hdr"))
        respond(fd, strcasestr(req, "\r\nX-Probe-Token: s3cret\r\n") ? 200 : 401, "", "");
    else if (!strcmp(path, "/host"))
        respond(fd, strcasestr(req, "\r\nHost: probe.example\r\n") ? 200 : 400, "", "");
    else if (!strcmp(path, "/ua"))
        respond(fd, strcasestr(req, "\r\nUser-Agent: kube-probe/") ? 200 : 400, "", "");
    else if (!strcmp(path, "/hook-ua"))
        respond(fd, strcasestr(req, "\r\nUser-Agent: kube-lifecycle/") ? 200 : 400, "", "");
    else if (!strcmp(path, "/a%20b"))
        respond(fd, 200, "", "");
    else if (!strcmp(path, "/big")) {
        static char body[1 << 20];
        memset(body, 'b', sizeof(body) - 1);
        respond(fd, 200, "", body);
    } else
        respond(fd, 404, "", "no such page");
}

static int listen_on(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

static int setup_group(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    int lfd = listen_on(&server_port);
    if (lfd < 0 || listen(lfd, 64) < 0)
        return -1;
    int cfd = listen_on(&closed_port); /* bound, never listening: connections are refused */
    if (cfd < 0)
        return -1;
    close(cfd);
    server_pid = fork();
    if (server_pid < 0)
        return -1;
    if (server_pid == 0) {
        setpgid(0, 0);
        signal(SIGCHLD, SIG_IGN);
        for (;;) {
            int c = accept(lfd, NULL, NULL);
            if (c < 0)
                continue;
            if (fork() == 0) {
                serve(c);
                shutdown(c, SHUT_WR);
                _exit(0);
            }
            close(c);
        }
    }
    setpgid(server_pid, server_pid);
    close(lfd);

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/drv-probe-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(fake_crun, sizeof(fake_crun), "%s/crun", tmpdir);
    FILE *f = fopen(fake_crun, "w");
    if (!f)
        return -1;
    fputs("#!/bin/sh\n"
          "# Stands in for crun: [--root R] [--global-opt...] exec <id> <command...>\n"
          "if [ \"$1\" = --root ]; then FAKE_ROOT=$2; export FAKE_ROOT; shift 2; fi\n"
          "while [ \"${1#--}\" != \"$1\" ]; do FAKE_OPTS=\"$FAKE_OPTS $1\"; shift; done\n"
          "export FAKE_OPTS\n"
          "[ \"$1\" = exec ] || { echo \"fake crun: expected exec, got $1\"; exit 90; }\n"
          "FAKE_ID=$2; export FAKE_ID; shift 2\n"
          "exec \"$@\"\n",
          f);
    fclose(f);
    chmod(fake_crun, 0755);
    return 0;
}

static int teardown_group(void **state)
{
    if (server_pid > 0) {
        kill(-server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
    }
    unlink(fake_crun);
    rmdir(tmpdir);
    return 0;
}

typedef struct rec {
    int calls;
    drv_probe_result_t res;
    char detail[DRV_PROBER_DETAIL_MAX];
    int64_t at;
} rec_t;

static int total_calls;

static void on_result(void *ctx, drv_probe_result_t res, const char *detail)
{
    rec_t *r = ctx;
    r->calls++;
    r->res = res;
    snprintf(r->detail, sizeof(r->detail), "%s", detail);
    r->at = drv_now_ms();
    total_calls++;
}

static void reap(drv_prober_t *pr)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
        if (!drv_prober_child_exited(pr, pid, st))
            fail_msg("reaped a child that is not a probe's: %d", (int)pid);
}

/* Runs the loop until want callbacks in total arrived (and every probe child is reaped), or
 * max_ms passed. */
static void pump(drv_prober_t *pr, int want, int max_ms)
{
    int64_t end = drv_now_ms() + max_ms;
    while ((total_calls < want || drv_prober_children(pr) > 0) && drv_now_ms() < end) {
        drv_error_t err = DRV_ERROR_INIT;
        if (drv_prober_wait(pr, NULL, 0, 50, NULL, &err) != DRV_OK)
            fail_msg("wait: %s", drv_error_msg(&err));
        reap(pr);
        drv_prober_process(pr, drv_now_ms());
    }
}

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

static drv_prober_t *new_prober(unsigned max)
{
    drv_prober_opts_t o = {.max_attempts = max};
    drv_prober_t *pr = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_prober_new(&o, &pr, &err) != DRV_OK)
        fail_msg("prober: %s", drv_error_msg(&err));
    total_calls = 0;
    return pr;
}

static void start_ok(drv_prober_t *pr, const char *probe_text, const cJSON *ctr,
                     const drv_prober_exec_t *ex, rec_t *r)
{
    cJSON *p = json(probe_text);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_prober_start(pr, p, ctr, "127.0.0.1", ex, on_result, r, &err) != DRV_OK)
        fail_msg("start %s: %s", probe_text, drv_error_msg(&err));
    cJSON_Delete(p);
}

static void start_http(drv_prober_t *pr, const char *path, int timeout, rec_t *r)
{
    char text[512];
    snprintf(text, sizeof(text),
             "{\"httpGet\":{\"path\":\"%s\",\"port\":%d},\"timeoutSeconds\":%d}", path, server_port,
             timeout);
    start_ok(pr, text, NULL, NULL, r);
}

/* ---- the prober: HTTP and TCP ---- */

static void test_http_statuses(void **state)
{
    drv_prober_t *pr = new_prober(0);
    static const struct {
        const char *path;
        drv_probe_result_t res;
        const char *detail;
    } cases[] = {
        {"/ok", DRV_PROBE_SUCCESS, "HTTP probe succeeded with statuscode: 200"},
        {"/ok?verbose=1", DRV_PROBE_SUCCESS, "statuscode: 200"},
        {"/fail", DRV_PROBE_FAILURE, "HTTP probe failed with statuscode: 500: broken   db down"},
        {"/redirect", DRV_PROBE_SUCCESS, "statuscode: 302"}, /* not followed */
        {"/missing", DRV_PROBE_FAILURE, "statuscode: 404: no such page"},
        {"/big", DRV_PROBE_SUCCESS, "statuscode: 200"}, /* body cut off, not waited for */
        {"/ua", DRV_PROBE_SUCCESS, "statuscode: 200"},
        {"/a b", DRV_PROBE_SUCCESS, "statuscode: 200"}, /* encoded as /a%20b */
    };
    enum { N = sizeof(cases) / sizeof(cases[0]) };
    rec_t r[N];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < N; i++)
        start_http(pr, cases[i].path, 5, &r[i]);
    assert_int_equal(total_calls, 0); /* never called back from start */
    assert_int_equal(drv_prober_pending(pr), N);
    pump(pr, N, 10000);
    for (int i = 0; i < N; i++) {
        if (r[i].calls != 1 || r[i].res != cases[i].res || !strstr(r[i].detail, cases[i].detail))
            fail_msg("%s: calls %d result %d detail \"%s\"", cases[i].path, r[i].calls, r[i].res,
                     r[i].detail);
    }
    assert_int_equal(drv_prober_pending(pr), 0);
    drv_prober_free(pr);
}

static void test_http_timeout(void **state)
{
    drv_prober_t *pr = new_prober(0);
    rec_t r = {0};
    int64_t t0 = drv_now_ms();
    start_http(pr, "/slow", 1, &r);
    pump(pr, 1, 5000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.res, DRV_PROBE_FAILURE);
    assert_non_null(strstr(r.detail, "timed out after 1 s"));
    int64_t took = r.at - t0;
    if (took < 900 || took > 2500)
        fail_msg("timeout took %lld ms", (long long)took);
    drv_prober_free(pr);
}

static void test_http_named_port_and_headers(void **state)
{
    drv_prober_t *pr = new_prober(0);
    char text[256];
    snprintf(text, sizeof(text),
             "{\"name\":\"app\",\"ports\":[{\"name\":\"dns\",\"containerPort\":53},"
             "{\"name\":\"http\",\"containerPort\":%d}]}",
             server_port);
    cJSON *ctr = json(text);
    rec_t r[5];
    memset(r, 0, sizeof(r));
    start_ok(pr,
             "{\"httpGet\":{\"path\":\"/hdr\",\"port\":\"http\",\"httpHeaders\":"
             "[{\"name\":\"X-Probe-Token\",\"value\":\"s3cret\"}]}}",
             ctr, NULL, &r[0]);
    start_ok(pr, "{\"httpGet\":{\"path\":\"/hdr\",\"port\":\"http\"}}", ctr, NULL, &r[1]);
    start_ok(pr,
             "{\"httpGet\":{\"path\":\"/host\",\"port\":\"http\",\"httpHeaders\":"
             "[{\"name\":\"Host\",\"value\":\"probe.example\"}]}}",
             ctr, NULL, &r[2]);
    start_ok(pr, "{\"tcpSocket\":{\"port\":\"http\"}}", ctr, NULL, &r[3]);
    /* An explicit host instead of the pod IP. */
    snprintf(text, sizeof(text),
             "{\"httpGet\":{\"path\":\"/ok\",\"port\":%d,\"host\":\"127.0.0.1\"}}", server_port);
    cJSON *p = json(text);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_prober_start(pr, p, NULL, NULL, NULL, on_result, &r[4], &err), DRV_OK);
    cJSON_Delete(p);
    pump(pr, 5, 10000);
    assert_int_equal(r[0].res, DRV_PROBE_SUCCESS);
    assert_int_equal(r[1].res, DRV_PROBE_FAILURE); /* the server wants the header */
    assert_non_null(strstr(r[1].detail, "statuscode: 401"));
    assert_int_equal(r[2].res, DRV_PROBE_SUCCESS);
    assert_int_equal(r[3].res, DRV_PROBE_SUCCESS);
    assert_int_equal(r[4].res, DRV_PROBE_SUCCESS);
    for (int i = 0; i < 5; i++)
        assert_int_equal(r[i].calls, 1);
    cJSON_Delete(ctr);
    drv_prober_free(pr);
}

static void test_tcp_open_closed(void **state)
{
    drv_prober_t *pr = new_prober(0);
    rec_t open = {0}, closed = {0}, http_closed = {0};
    char text[128];
    snprintf(text, sizeof(text), "{\"tcpSocket\":{\"port\":%d}}", server_port);
    start_ok(pr, text, NULL, NULL, &open);
    snprintf(text, sizeof(text), "{\"tcpSocket\":{\"port\":%d}}", closed_port);
    start_ok(pr, text, NULL, NULL, &closed);
    snprintf(text, sizeof(text), "{\"httpGet\":{\"port\":%d}}", closed_port);
    start_ok(pr, text, NULL, NULL, &http_closed);
    pump(pr, 3, 5000);
    assert_int_equal(open.calls, 1);
    assert_int_equal(open.res, DRV_PROBE_SUCCESS);
    assert_non_null(strstr(open.detail, "established"));
    assert_int_equal(closed.calls, 1);
    assert_int_equal(closed.res, DRV_PROBE_FAILURE);
    assert_non_null(strstr(closed.detail, "dial tcp 127.0.0.1:"));
    assert_int_equal(http_closed.res, DRV_PROBE_FAILURE);
    assert_non_null(strstr(http_closed.detail, "GET http://127.0.0.1:"));

    /* The probe's connection is closed right after it is established, as kubelet does. */
    int port;
    int lfd = listen_on(&port);
    assert_true(lfd >= 0);
    assert_int_equal(listen(lfd, 4), 0);
    rec_t mine = {0};
    snprintf(text, sizeof(text), "{\"tcpSocket\":{\"port\":%d}}", port);
    start_ok(pr, text, NULL, NULL, &mine);
    pump(pr, 4, 3000);
    assert_int_equal(mine.res, DRV_PROBE_SUCCESS);
    int c = accept(lfd, NULL, NULL);
    assert_true(c >= 0);
    struct pollfd pfd = {.fd = c, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 1000), 1);
    char byte;
    assert_int_equal(read(c, &byte, 1), 0); /* EOF: nothing sent, nothing kept open */
    close(c);
    close(lfd);
    drv_prober_free(pr);
}

/* HTTPS against `openssl s_server -www` with a throw-away self-signed certificate: kubelet
 * does not verify probe certificates, neither do we. */
static void test_https_insecure(void **state)
{
    if (access("/usr/bin/openssl", X_OK) != 0) {
        skip();
        return;
    }
    char key[160], crt[160], cmd[768];
    snprintf(key, sizeof(key), "%s/key.pem", tmpdir);
    snprintf(crt, sizeof(crt), "%s/crt.pem", tmpdir);
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
             "-nodes -keyout %s -out %s -subj /CN=probe -days 1 >/dev/null 2>&1",
             key, crt);
    assert_int_equal(system(cmd), 0);
    int port;
    int fd = listen_on(&port);
    assert_true(fd >= 0);
    close(fd);
    char accept_arg[32];
    snprintf(accept_arg, sizeof(accept_arg), "127.0.0.1:%d", port);
    pid_t srv = fork();
    assert_true(srv >= 0);
    if (srv == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execl("/usr/bin/openssl", "openssl", "s_server", "-accept", accept_arg, "-cert", crt,
              "-key", key, "-www", "-naccept", "4", (char *)NULL);
        _exit(127);
    }
    /* Wait until it listens. */
    bool up = false;
    for (int i = 0; i < 100 && !up; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        up = connect(c, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(c);
        if (!up)
            usleep(30000);
    }
    assert_true(up);
    drv_prober_t *pr = new_prober(0);
    rec_t r = {0};
    snprintf(cmd, sizeof(cmd),
             "{\"httpGet\":{\"port\":%d,\"scheme\":\"HTTPS\"},\"timeoutSeconds\":5}", port);
    start_ok(pr, cmd, NULL, NULL, &r);
    int64_t end = drv_now_ms() + 8000;
    while (r.calls == 0 && drv_now_ms() < end) {
        drv_error_t err = DRV_ERROR_INIT;
        assert_int_equal(drv_prober_wait(pr, NULL, 0, 50, NULL, &err), DRV_OK);
        drv_prober_process(pr, drv_now_ms());
    }
    kill(srv, SIGKILL);
    waitpid(srv, NULL, 0);
    unlink(key);
    unlink(crt);
    assert_int_equal(r.calls, 1);
    if (r.res != DRV_PROBE_SUCCESS)
        fail_msg("https: %s", r.detail);
    assert_non_null(strstr(r.detail, "statuscode: 200"));
    drv_prober_free(pr);
}

/* ---- the prober: exec ---- */

static void test_exec_results(void **state)
{
    int fds = count_fds();
    drv_prober_t *pr = new_prober(0);
    drv_prober_exec_t ex = {.crun = fake_crun, .container_id = "ctr-1"};
    rec_t ok = {0}, bad = {0}, out = {0}, sig = {0}, flood = {0};
    start_ok(pr, "{\"exec\":{\"command\":[\"/bin/true\"]}}", NULL, &ex, &ok);
    start_ok(pr, "{\"exec\":{\"command\":[\"/bin/false\"]}}", NULL, &ex, &bad);
    start_ok(pr,
             "{\"exec\":{\"command\":[\"/bin/sh\",\"-c\",\"echo not healthy; echo 'disk full' "
             ">&2; exit 3\"]}}",
             NULL, &ex, &out);
    start_ok(pr, "{\"exec\":{\"command\":[\"/bin/sh\",\"-c\",\"kill -TERM $$\"]}}", NULL, &ex,
             &sig);
    /* A megabyte of output: read and dropped past the head, the child never blocks. */
    start_ok(pr,
             "{\"exec\":{\"command\":[\"/bin/sh\",\"-c\",\"head -c 1000000 /dev/zero | tr "
             "'\\\\0' x; echo\"]},\"timeoutSeconds\":10}",
             NULL, &ex, &flood);
    assert_int_equal(total_calls, 0);
    assert_int_equal(drv_prober_children(pr), 5);
    pump(pr, 5, 10000);
    assert_int_equal(ok.calls, 1);
    assert_int_equal(ok.res, DRV_PROBE_SUCCESS);
    assert_int_equal(bad.res, DRV_PROBE_FAILURE);
    assert_string_equal(bad.detail, "command exited with status 1");
    assert_int_equal(out.res, DRV_PROBE_FAILURE);
    assert_string_equal(out.detail, "command exited with status 3: not healthy disk full");
    assert_int_equal(sig.res, DRV_PROBE_FAILURE);
    assert_string_equal(sig.detail, "command killed by signal 15");
    assert_int_equal(flood.res, DRV_PROBE_SUCCESS);
    assert_true(strlen(flood.detail) >= 200 && flood.detail[0] == 'x');
    assert_int_equal(drv_prober_children(pr), 0);
    assert_int_equal(drv_prober_pending(pr), 0);
    assert_true(count_fds() <= fds + 2); /* no pipe left open (curl may hold a wakeup pair) */
    drv_prober_free(pr);
    assert_int_equal(count_fds(), fds);
}

static void test_exec_timeout(void **state)
{
    drv_prober_t *pr = new_prober(0);
    drv_prober_exec_t ex = {.crun = fake_crun, .container_id = "ctr-1"};
    rec_t r = {0};
    int64_t t0 = drv_now_ms();
    start_ok(pr, "{\"exec\":{\"command\":[\"/bin/sleep\",\"5\"]},\"timeoutSeconds\":1}", NULL, &ex,
             &r);
    pump(pr, 1, 6000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.res, DRV_PROBE_FAILURE);
    assert_string_equal(r.detail, "command timed out after 1 s");
    int64_t took = r.at - t0;
    if (took < 900 || took > 2500)
        fail_msg("exec timeout took %lld ms", (long long)took);
    /* The child was killed and reaped, not left to sleep on. */
    assert_int_equal(drv_prober_children(pr), 0);
    assert_true(drv_now_ms() - t0 < 4000);
    drv_prober_free(pr);
}

static void test_exec_argv(void **state)
{
    drv_prober_t *pr = new_prober(0);
    const char *check = "{\"exec\":{\"command\":[\"/bin/sh\",\"-c\",\"echo "
                        "id=$FAKE_ID root=$FAKE_ROOT opts=$FAKE_OPTS args=$#\",\"sh\",\"a b\","
                        "\"c\"]}}";
    drv_prober_exec_t ex = {
        .crun = fake_crun, .root = "/run/drover/crun", .container_id = "pod_c1"};
    const char *prefix[] = {fake_crun, "--root", "/r", "--cgroup-manager=disabled"};
    drv_prober_exec_t ex2 = {.argv_prefix = prefix, .n_prefix = 4, .container_id = "c2"};
    rec_t r1 = {0}, r2 = {0};
    start_ok(pr, check, NULL, &ex, &r1);
    start_ok(pr, check, NULL, &ex2, &r2);
    pump(pr, 2, 5000);
    assert_int_equal(r1.res, DRV_PROBE_SUCCESS);
    assert_string_equal(r1.detail, "id=pod_c1 root=/run/drover/crun opts= args=2");
    assert_int_equal(r2.res, DRV_PROBE_SUCCESS);
    assert_string_equal(r2.detail, "id=c2 root=/r opts= --cgroup-manager=disabled args=2");
    drv_prober_free(pr);
}

/* ---- the prober: errors, cancel, limits, the wait ---- */

/* ---- gRPC health answers ---- */

static void test_grpc_health_parse(void **state)
{
    static const struct {
        const char *name;
        const char *bytes;
        size_t len;
        drv_err_t rc;
        uint64_t status;
        const char *msg;
    } cases[] = {
        {"serving", "\0\0\0\0\2\x08\x01", 7, DRV_OK, DRV_GRPC_SERVING, NULL},
        {"not serving", "\0\0\0\0\2\x08\x02", 7, DRV_OK, DRV_GRPC_NOT_SERVING, NULL},
        {"empty message: UNKNOWN", "\0\0\0\0\0", 5, DRV_OK, DRV_GRPC_UNKNOWN, NULL},
        {"unknown fields skipped",
         "\0\0\0\0\x0e\x12\x03"
         "abc\x08\x01\x1d\1\2\3\4\x20\x05",
         19, DRV_OK, DRV_GRPC_SERVING, NULL},
        {"no message", "\0\0\0", 3, DRV_ERR_PROTO, 0, "no message"},
        {"compressed", "\1\0\0\0\2\x08\x01", 7, DRV_ERR_PROTO, 0, "compressed"},
        {"longer than received", "\0\0\0\0\x09\x08\x01", 7, DRV_ERR_PROTO, 0,
         "9 bytes, 2 received"},
        {"length past the end",
         "\0\0\0\0\4\x12\x20"
         "ab",
         9, DRV_ERR_PROTO, 0, "truncated"},
        {"varint past the end", "\0\0\0\0\3\x08\xff\xff", 8, DRV_ERR_PROTO, 0, "bad varint"},
        {"wire type 3", "\0\0\0\0\1\x0b", 6, DRV_ERR_PROTO, 0, "wire type 3"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t st = 77;
        drv_error_t err = DRV_ERROR_INIT;
        drv_err_t rc =
            drv_grpc_health_parse((const uint8_t *)cases[i].bytes, cases[i].len, &st, &err);
        if (rc != cases[i].rc || (rc == DRV_OK && st != cases[i].status) ||
            (rc != DRV_OK && (st != 77 || !strstr(drv_error_msg(&err), cases[i].msg))))
            fail_msg("%s: rc %d status %llu error \"%s\"", cases[i].name, rc,
                     (unsigned long long)st, drv_error_msg(&err));
    }
    char buf[32];
    assert_string_equal(drv_grpc_status_name(2, buf, sizeof(buf)), "NOT_SERVING");
    assert_string_equal(drv_grpc_status_name(9, buf, sizeof(buf)), "status 9");
    assert_string_equal(drv_grpc_code_name(5, buf, sizeof(buf)), "NotFound");
    assert_string_equal(drv_grpc_code_name(12, buf, sizeof(buf)), "Unimplemented");
    assert_string_equal(drv_grpc_code_name(99, buf, sizeof(buf)), "Code(99)");
    /* The probe's checks: the port is a number only; the service a string. */
    static const char *const bad[] = {"{\"grpc\":{\"port\":\"web\"}}", "{\"grpc\":{}}",
                                      "{\"grpc\":{\"port\":9,\"service\":1}}"};
    static const char *const why[] = {"grpc.port: must be a number", "grpc.port: required",
                                      "grpc.service: must be a string"};
    for (size_t i = 0; i < 3; i++) {
        cJSON *p = json(bad[i]);
        drv_error_t err = DRV_ERROR_INIT;
        assert_int_equal(drv_probe_validate(p, NULL, &err), DRV_ERR_INVALID);
        assert_non_null(strstr(drv_error_msg(&err), why[i]));
        cJSON_Delete(p);
    }
    cJSON *p = json("{\"grpc\":{\"port\":9090,\"service\":\"x\"}}");
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_probe_validate(p, NULL, &err), DRV_OK);
    cJSON_Delete(p);
}

static void test_grpc_unreachable(void **state)
{
    /* No server: the failure names the target; the transfer is HTTP/2 prior knowledge. */
    drv_prober_t *pr = new_prober(0);
    rec_t r = {0};
    char text[128];
    snprintf(text, sizeof(text), "{\"grpc\":{\"port\":%d},\"timeoutSeconds\":2}", closed_port);
    start_ok(pr, text, NULL, NULL, &r);
    /* An HTTP/1.1 server is no gRPC server: a failure, never a success. */
    rec_t h1 = {0};
    snprintf(text, sizeof(text), "{\"grpc\":{\"port\":%d},\"timeoutSeconds\":2}", server_port);
    start_ok(pr, text, NULL, NULL, &h1);
    pump(pr, 2, 8000);
    assert_int_equal(r.res, DRV_PROBE_FAILURE);
    assert_non_null(strstr(r.detail, "failed to connect service"));
    assert_int_equal(h1.calls, 1);
    assert_int_equal(h1.res, DRV_PROBE_FAILURE);
    drv_prober_free(pr);
}

/* ---- lifecycle hooks through the prober ---- */

static void start_hook(drv_prober_t *pr, const char *handler, const drv_prober_exec_t *ex,
                       int64_t timeout_ms, rec_t *r)
{
    cJSON *h = json(handler);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_prober_start_hook(pr, h, NULL, "127.0.0.1", ex, timeout_ms, on_result, r, &err) !=
        DRV_OK)
        fail_msg("hook %s: %s", handler, drv_error_msg(&err));
    cJSON_Delete(h);
}

static void test_hooks(void **state)
{
    drv_prober_t *pr = new_prober(0);
    drv_prober_exec_t ex = {.crun = fake_crun, .container_id = "ctr-1"};
    rec_t fail500 = {0}, ua = {0}, refused = {0}, ok = {0}, bad = {0}, slow = {0};
    char text[256];
    /* The kubelet fails an HTTP hook only when no answer comes: a 500 is a success. */
    snprintf(text, sizeof(text), "{\"httpGet\":{\"path\":\"/fail\",\"port\":%d}}", server_port);
    start_hook(pr, text, NULL, 5000, &fail500);
    snprintf(text, sizeof(text), "{\"httpGet\":{\"path\":\"/hook-ua\",\"port\":%d}}", server_port);
    start_hook(pr, text, NULL, 5000, &ua);
    snprintf(text, sizeof(text), "{\"httpGet\":{\"port\":%d}}", closed_port);
    start_hook(pr, text, NULL, 5000, &refused);
    start_hook(pr, "{\"exec\":{\"command\":[\"/bin/true\"]}}", &ex, 5000, &ok);
    start_hook(pr, "{\"exec\":{\"command\":[\"/bin/sh\",\"-c\",\"echo nope; exit 4\"]}}", &ex, 5000,
               &bad);
    /* preStop's bound is what is left of the grace period, in ms. */
    start_hook(pr, "{\"exec\":{\"command\":[\"/bin/sleep\",\"5\"]}}", &ex, 300, &slow);
    int64_t t0 = drv_now_ms();
    pump(pr, 6, 10000);
    assert_int_equal(fail500.res, DRV_PROBE_SUCCESS);
    assert_non_null(strstr(fail500.detail, "statuscode: 500"));
    assert_int_equal(ua.res, DRV_PROBE_SUCCESS);
    assert_non_null(strstr(ua.detail, "statuscode: 200"));
    assert_int_equal(refused.res, DRV_PROBE_FAILURE);
    assert_int_equal(ok.res, DRV_PROBE_SUCCESS);
    assert_int_equal(bad.res, DRV_PROBE_FAILURE);
    assert_string_equal(bad.detail, "command exited with status 4: nope");
    assert_int_equal(slow.res, DRV_PROBE_FAILURE);
    assert_true(slow.at - t0 < 3000);
    /* Handlers the prober does not run: sleep is the supervisor's timer; two at once. */
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *h = json("{\"sleep\":{\"seconds\":1}}");
    assert_int_equal(
        drv_prober_start_hook(pr, h, NULL, "127.0.0.1", &ex, 1000, on_result, &ok, &err),
        DRV_ERR_INVALID);
    cJSON_Delete(h);
    drv_prober_free(pr);
}

static void test_start_errors(void **state)
{
    drv_prober_t *pr = new_prober(0);
    rec_t r = {0};
    static const struct {
        const char *probe, *ip, *crun, *id;
        drv_err_t code;
        const char *msg;
    } cases[] = {
        {"{\"httpGet\":{\"port\":80}}", NULL, NULL, NULL, DRV_ERR_INVALID,
         "httpGet.host: not set and the pod has no IP"},
        {"{\"tcpSocket\":{\"port\":80}}", "10.0.0.1/8", NULL, NULL, DRV_ERR_INVALID,
         "tcpSocket: bad pod IP"},
        {"{\"exec\":{\"command\":[\"x\"]}}", NULL, "/bin/sh", NULL, DRV_ERR_INVALID,
         "exec: no container"},
        {"{\"exec\":{\"command\":[\"x\"]}}", NULL, "/bin/sh", "--help", DRV_ERR_INVALID,
         "exec: no container"},
        {"{\"exec\":{\"command\":[\"x\"]}}", NULL, NULL, "c1", DRV_ERR_INVALID,
         "exec: no crun program"},
        {"{\"exec\":{\"command\":[\"x\"]}}", NULL, "/nonexistent/crun", "c1", DRV_ERR_IO,
         "exec probe: run /nonexistent/crun: No such file or directory"},
        {"{\"exec\":{\"command\":[\"x\"]},\"timeoutSeconds\":0}", NULL, "/bin/sh", "c1",
         DRV_ERR_INVALID, "timeoutSeconds"},
        {"\"not a probe\"", NULL, NULL, NULL, DRV_ERR_INVALID, "must be an object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *p = json(cases[i].probe);
        drv_prober_exec_t ex = {.crun = cases[i].crun, .container_id = cases[i].id};
        drv_error_t err = DRV_ERROR_INIT;
        drv_err_t rc = drv_prober_start(pr, p, NULL, cases[i].ip, &ex, on_result, &r, &err);
        if (rc != cases[i].code || !strstr(drv_error_msg(&err), cases[i].msg))
            fail_msg("case %zu: %d \"%s\"", i, rc, drv_error_msg(&err));
        cJSON_Delete(p);
    }
    assert_int_equal(drv_prober_pending(pr), 0);
    assert_int_equal(drv_prober_children(pr), 0);
    pump(pr, 0, 100);
    assert_int_equal(r.calls, 0); /* a refused start is never called back */
    drv_prober_free(pr);
}

static void test_cancel(void **state)
{
    int fds = count_fds();
    drv_prober_t *pr = new_prober(0);
    drv_prober_exec_t ex = {.crun = fake_crun, .container_id = "c"};
    rec_t a = {0}, b = {0};
    start_http(pr, "/slow", 1, &a);
    start_ok(pr, "{\"exec\":{\"command\":[\"/bin/sleep\",\"5\"]},\"timeoutSeconds\":1}", NULL, &ex,
             &a);
    start_http(pr, "/ok", 1, &b);
    drv_prober_process(pr, drv_now_ms());
    assert_int_equal(drv_prober_cancel(pr, &a), 2);
    assert_int_equal(drv_prober_cancel(pr, &a), 0);
    assert_int_equal(drv_prober_pending(pr), 1);
    int64_t t0 = drv_now_ms();
    pump(pr, 1, 3000); /* b completes; the killed exec child is reaped */
    assert_int_equal(b.calls, 1);
    assert_int_equal(drv_prober_children(pr), 0);
    assert_true(drv_now_ms() - t0 < 900); /* killed, not waited for */
    /* Nothing for a, even after their timeouts would have passed. */
    int64_t end = t0 + 1300;
    while (drv_now_ms() < end) {
        drv_error_t err = DRV_ERROR_INIT;
        assert_int_equal(drv_prober_wait(pr, NULL, 0, 100, NULL, &err), DRV_OK);
        drv_prober_process(pr, drv_now_ms());
    }
    assert_int_equal(a.calls, 0);
    drv_prober_free(pr);
    assert_int_equal(count_fds(), fds); /* sockets and pipes of cancelled attempts closed */
}

static void test_capacity(void **state)
{
    drv_prober_t *pr = new_prober(2);
    drv_prober_exec_t ex = {.crun = fake_crun, .container_id = "c"};
    rec_t r[3];
    memset(r, 0, sizeof(r));
    start_ok(pr, "{\"exec\":{\"command\":[\"/bin/sleep\",\"5\"]}}", NULL, &ex, &r[0]);
    start_http(pr, "/ok", 5, &r[1]);
    cJSON *p = json("{\"exec\":{\"command\":[\"/bin/true\"]}}");
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_prober_start(pr, p, NULL, NULL, &ex, on_result, &r[2], &err),
                     DRV_ERR_AGAIN);
    assert_non_null(strstr(drv_error_msg(&err), "too many probe attempts in flight (2)"));
    /* A cancelled exec still holds its slot until its child is reaped. */
    assert_int_equal(drv_prober_cancel(pr, &r[0]), 1);
    pump(pr, 1, 3000);
    assert_int_equal(r[1].calls, 1);
    assert_int_equal(drv_prober_children(pr), 0);
    assert_int_equal(drv_prober_start(pr, p, NULL, NULL, &ex, on_result, &r[2], &err), DRV_OK);
    pump(pr, 2, 3000);
    assert_int_equal(r[2].calls, 1);
    assert_int_equal(r[2].res, DRV_PROBE_SUCCESS);
    cJSON_Delete(p);
    drv_prober_free(pr);
}

static void test_wait_extra_fds(void **state)
{
    drv_prober_t *pr = new_prober(0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct curl_waitfd w = {.fd = p[0], .events = CURL_WAIT_POLLIN};
    drv_error_t err = DRV_ERROR_INIT;
    int64_t t0 = drv_now_ms();
    int n = -1;
    assert_int_equal(drv_prober_wait(pr, &w, 1, 150, &n, &err), DRV_OK);
    assert_true(drv_now_ms() - t0 >= 140); /* nothing to do: the full timeout */
    assert_int_equal(w.revents, 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    t0 = drv_now_ms();
    assert_int_equal(drv_prober_wait(pr, &w, 1, 5000, &n, &err), DRV_OK);
    assert_true(drv_now_ms() - t0 < 1000);
    assert_true(w.revents & CURL_WAIT_POLLIN);
    assert_true(n >= 1);
    /* An exec deadline shortens an unlimited wait. */
    drv_prober_exec_t ex = {.crun = fake_crun, .container_id = "c"};
    rec_t r = {0};
    start_ok(pr, "{\"exec\":{\"command\":[\"/bin/sleep\",\"5\"]},\"timeoutSeconds\":1}", NULL, &ex,
             &r);
    struct curl_waitfd none = {.fd = p[1], .events = 0};
    t0 = drv_now_ms();
    assert_int_equal(drv_prober_wait(pr, &none, 1, -1, NULL, &err), DRV_OK);
    assert_true(drv_now_ms() - t0 < 1800);
    /* Too many fds is an error, not an overflow. */
    struct curl_waitfd many[DRV_PROBER_MAX_EXTRA_FDS + 1];
    memset(many, 0, sizeof(many));
    assert_int_equal(drv_prober_wait(pr, many, DRV_PROBER_MAX_EXTRA_FDS + 1, 0, NULL, &err),
                     DRV_ERR_RANGE);
    pump(pr, 1, 3000);
    assert_int_equal(r.res, DRV_PROBE_FAILURE);
    close(p[0]);
    close(p[1]);
    drv_prober_free(pr);
}

/* The supervisor schedules the next attempt from inside the callback. */
typedef struct chain {
    drv_prober_t *pr;
    int left;
    int calls;
} chain_t;

static void on_chain(void *ctx, drv_probe_result_t res, const char *detail)
{
    chain_t *c = ctx;
    c->calls++;
    total_calls++;
    assert_int_equal(res, DRV_PROBE_SUCCESS);
    if (--c->left > 0) {
        char text[128];
        snprintf(text, sizeof(text), "{\"tcpSocket\":{\"port\":%d}}", server_port);
        cJSON *p = json(text);
        drv_error_t err = DRV_ERROR_INIT;
        assert_int_equal(drv_prober_start(c->pr, p, NULL, "127.0.0.1", NULL, on_chain, c, &err),
                         DRV_OK);
        cJSON_Delete(p);
        int before = c->calls;
        drv_prober_cancel(c->pr, (void *)&before); /* no-op for another ctx */
        assert_int_equal(c->calls, before);
    }
}

static void test_callback_chain(void **state)
{
    drv_prober_t *pr = new_prober(1); /* the slot is free again inside the callback */
    chain_t c = {.pr = pr, .left = 4};
    char text[128];
    snprintf(text, sizeof(text), "{\"tcpSocket\":{\"port\":%d}}", server_port);
    cJSON *p = json(text);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_prober_start(pr, p, NULL, "127.0.0.1", NULL, on_chain, &c, &err), DRV_OK);
    cJSON_Delete(p);
    pump(pr, 4, 5000);
    assert_int_equal(c.calls, 4);
    assert_int_equal(drv_prober_pending(pr), 0);
    drv_prober_free(pr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_defaults),
        cmocka_unit_test(test_spec_errors),
        cmocka_unit_test(test_validate_errors),
        cmocka_unit_test(test_state_no_probes),
        cmocka_unit_test(test_state_initial_delay_and_period),
        cmocka_unit_test(test_state_readiness_thresholds),
        cmocka_unit_test(test_state_liveness_restart),
        cmocka_unit_test(test_state_startup_gating),
        cmocka_unit_test(test_state_startup_failure),
        cmocka_unit_test(test_state_reset_on_restart),
        cmocka_unit_test(test_state_slow_attempt_and_unknown),
        cmocka_unit_test(test_http_statuses),
        cmocka_unit_test(test_http_timeout),
        cmocka_unit_test(test_http_named_port_and_headers),
        cmocka_unit_test(test_tcp_open_closed),
        cmocka_unit_test(test_https_insecure),
        cmocka_unit_test(test_exec_results),
        cmocka_unit_test(test_exec_timeout),
        cmocka_unit_test(test_exec_argv),
        cmocka_unit_test(test_hooks),
        cmocka_unit_test(test_grpc_health_parse),
        cmocka_unit_test(test_grpc_unreachable),
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_wait_extra_fds),
        cmocka_unit_test(test_callback_chain),
    };
    return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
