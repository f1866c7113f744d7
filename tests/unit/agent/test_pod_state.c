/* The pod record state.json (pod/state.c, format in pod/pod.h): written with its version, read
 * back whole; a file from before versioning still loads (adoption after an agent upgrade); a
 * newer version and a corrupt file (wrong types, numbers out of range or beyond any integer)
 * are refused naming the field, applied not at all, and moved aside to state.json.bad. The
 * ASan+UBSan stage runs this: no double reaches an integer cast unchecked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drover/file.h"
#include "drover/log.h"
#include "pod/pod.h"

typedef struct fixture {
    pod_t pod;
    ctr_t ctrs[2];
    char dir[64];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/drover-pod-state.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->pod.dir, sizeof(f->pod.dir), "%s", f->dir);
    snprintf(f->pod.uid, sizeof(f->pod.uid), "u-1");
    snprintf(f->pod.ns, sizeof(f->pod.ns), "default");
    snprintf(f->pod.name, sizeof(f->pod.name), "web");
    snprintf(f->ctrs[0].name, sizeof(f->ctrs[0].name), "setup");
    f->ctrs[0].init = true;
    snprintf(f->ctrs[1].name, sizeof(f->ctrs[1].name), "app");
    f->pod.ctrs = f->ctrs;
    f->pod.n_ctrs = 2;
    f->pod.n_init = 1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    char path[128];
    snprintf(path, sizeof(path), "%s/state.json", f->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/state.json.bad", f->dir);
    unlink(path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void write_state(const fixture_t *f, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/state.json", f->dir);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_write_atomic(path, text, strlen(text), 0600, &err), DRV_OK);
}

static bool exists(const fixture_t *f, const char *name)
{
    char path[128];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    return stat(path, &st) == 0;
}

static void test_round_trip(void **state)
{
    fixture_t *f = *state;
    f->pod.start_time = 1700000000123;
    f->pod.init_next = 1;
    f->ctrs[1].state = CS_RUNNING;
    f->ctrs[1].pid = 4242;
    f->ctrs[1].restarts = 7;
    f->ctrs[1].backoff_ms = 40000;
    f->ctrs[1].started_at = 1700000000999;
    f->ctrs[1].last = (term_info_t){true, 137, 9, "OOMKilled", 1, 2};
    char *text = pod_state_format(&f->pod);
    assert_non_null(text);
    assert_non_null(strstr(text, "\"version\":1"));
    pod_t p2 = f->pod;
    ctr_t c2[2];
    memset(c2, 0, sizeof(c2));
    c2[0].init = true;
    memcpy(c2[0].name, "setup", 6);
    memcpy(c2[1].name, "app", 4);
    p2.ctrs = c2;
    p2.start_time = 0;
    p2.init_next = 0;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(pod_state_parse(text, strlen(text), &p2, &err), DRV_OK);
    free(text);
    assert_int_equal(p2.start_time, 1700000000123);
    assert_int_equal(p2.init_next, 1);
    assert_int_equal(c2[1].state, CS_RUNNING);
    assert_int_equal(c2[1].pid, 4242);
    assert_int_equal(c2[1].restarts, 7);
    assert_int_equal(c2[1].backoff_ms, 40000);
    assert_int_equal(c2[1].started_at, 1700000000999);
    assert_true(c2[1].last.valid);
    assert_int_equal(c2[1].last.exit_code, 137);
    assert_string_equal(c2[1].last.reason, "OOMKilled");
    assert_int_equal(c2[0].state, CS_WAITING);
    assert_false(c2[0].last.valid);

    /* Through the file: saved, then loaded into a fresh record. */
    pod_state_save(&f->pod);
    assert_true(exists(f, "state.json"));
    p2.start_time = 0;
    c2[1] = (ctr_t){0};
    memcpy(c2[1].name, "app", 4);
    pod_state_load(&p2);
    assert_int_equal(p2.start_time, 1700000000123);
    assert_int_equal(c2[1].restarts, 7);
    assert_false(exists(f, "state.json.bad"));
}

/* A record written before versioning (no "version") loads as before. */
static void test_unversioned(void **state)
{
    fixture_t *f = *state;
    write_state(f, "{\"containers\":{\"app\":{\"state\":\"terminated\",\"pid\":0,\"startedAt\":0,"
                   "\"restarts\":3,\"backoffMs\":20000,\"last\":{\"exitCode\":1,\"signal\":0,"
                   "\"reason\":\"Error\",\"startedAt\":5,\"finishedAt\":6}},\"gone\":{}},"
                   "\"uid\":\"u-1\",\"startTime\":1000,\"initNext\":1,\"podIP\":\"10.0.0.2\"}");
    pod_state_load(&f->pod);
    assert_int_equal(f->pod.start_time, 1000);
    assert_int_equal(f->pod.init_next, 1);
    assert_int_equal(f->ctrs[1].state, CS_TERMINATED);
    assert_int_equal(f->ctrs[1].restarts, 3);
    assert_int_equal(f->ctrs[1].last.exit_code, 1);
    assert_string_equal(f->ctrs[1].last.reason, "Error");
    assert_false(exists(f, "state.json.bad"));
    const char *v0 = "{\"version\":0,\"startTime\":5}";
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(pod_state_parse(v0, strlen(v0), &f->pod, &err), DRV_OK);
    assert_int_equal(f->pod.start_time, 5);
}

static void test_newer_version(void **state)
{
    fixture_t *f = *state;
    const char *v2 = "{\"version\":2,\"startTime\":\"moved\"}";
    drv_error_t err = DRV_ERROR_INIT;
    f->pod.start_time = 77;
    assert_int_equal(pod_state_parse(v2, strlen(v2), &f->pod, &err), DRV_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "version 2 is newer than this agent reads (1)"));
    assert_int_equal(f->pod.start_time, 77);
    write_state(f, v2);
    pod_state_load(&f->pod);
    assert_false(exists(f, "state.json"));
    assert_true(exists(f, "state.json.bad"));
    assert_int_equal(f->pod.start_time, 77);
}

static void test_corrupt(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"[1,2]", "not a JSON object"},
        {"{\"startTime\":", "not a JSON object"},
        {"{\"version\":1e300}", "version: must be a whole number"},
        {"{\"version\":-1}", "version: must be a whole number"},
        {"{\"startTime\":1e300}", "startTime: must be a whole number"},
        {"{\"startTime\":-1e300}", "startTime: must be a whole number"},
        {"{\"startTime\":1e999}", "startTime: must be a whole number"},
        {"{\"startTime\":9223372036854775808}", "startTime: must be a whole number"},
        {"{\"startTime\":1.5}", "startTime: must be a whole number"},
        {"{\"startTime\":\"now\"}", "startTime: must be a whole number"},
        {"{\"initNext\":2}", "initNext: must be a whole number from 0 to 1"},
        {"{\"uid\":7}", "uid: must be a string"},
        {"{\"containers\":[]}", "containers: must be an object"},
        {"{\"containers\":{\"app\":3}}", "containers.app: must be an object"},
        {"{\"containers\":{\"app\":{\"pid\":1e300}}}", "containers.app.pid: must be a whole"},
        {"{\"containers\":{\"app\":{\"pid\":-2}}}", "containers.app.pid: must be a whole"},
        {"{\"containers\":{\"app\":{\"restarts\":1e19}}}", "containers.app.restarts: must be"},
        {"{\"containers\":{\"app\":{\"restarts\":true}}}", "containers.app.restarts: must be"},
        {"{\"containers\":{\"app\":{\"backoffMs\":1e300}}}", "containers.app.backoffMs: must"},
        {"{\"containers\":{\"app\":{\"backoffMs\":300001}}}", "containers.app.backoffMs: must"},
        {"{\"containers\":{\"app\":{\"startedAt\":-1e300}}}", "containers.app.startedAt: must"},
        {"{\"containers\":{\"app\":{\"state\":\"zombie\"}}}", "containers.app.state: must be"},
        {"{\"containers\":{\"app\":{\"state\":1}}}", "containers.app.state: must be a string"},
        {"{\"containers\":{\"app\":{\"last\":[]}}}", "containers.app.last: must be an object"},
        {"{\"containers\":{\"app\":{\"last\":{\"exitCode\":1e300}}}}",
         "containers.app.last.exitCode: must be a whole number"},
        {"{\"containers\":{\"app\":{\"last\":{\"signal\":-9.3e18}}}}",
         "containers.app.last.signal: must be a whole number"},
        {"{\"containers\":{\"app\":{\"last\":{\"finishedAt\":2e16}}}}",
         "containers.app.last.finishedAt: must be a whole number"},
        {"{\"containers\":{\"app\":{\"last\":{\"reason\":\"0123456789012345678901234567890123"
         "\"}}}}",
         "containers.app.last.reason: must be no more than 31 characters"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* Valid fields ahead of the bad one are not applied either. */
        f->pod.start_time = 11;
        f->ctrs[1].restarts = 2;
        f->ctrs[1].state = CS_WAITING;
        drv_error_t err = DRV_ERROR_INIT;
        assert_int_not_equal(pod_state_parse(cases[i].text, strlen(cases[i].text), &f->pod, &err),
                             DRV_OK);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("case %zu (%s): got \"%s\", want \"%s\"", i, cases[i].text, err.msg,
                     cases[i].msg);
        assert_int_equal(f->pod.start_time, 11);
        assert_int_equal(f->ctrs[1].restarts, 2);
        /* Through the file: moved aside, nothing applied, the pod starts from no record. */
        write_state(f, cases[i].text);
        pod_state_load(&f->pod);
        assert_false(exists(f, "state.json"));
        assert_true(exists(f, "state.json.bad"));
        assert_int_equal(f->pod.start_time, 11);
        assert_int_equal(f->ctrs[1].state, CS_WAITING);
    }
    /* A bad field after good ones: none applied. */
    const char *mixed = "{\"startTime\":99,\"containers\":{\"app\":{\"restarts\":9,"
                        "\"state\":\"running\",\"pid\":1e300}}}";
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(pod_state_parse(mixed, strlen(mixed), &f->pod, &err), DRV_ERR_INVALID);
    assert_int_equal(f->pod.start_time, 11);
    assert_int_equal(f->ctrs[1].restarts, 2);
    assert_int_equal(f->ctrs[1].state, CS_WAITING);
}

int main(void)
{
    drv_log_set_level(DRV_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unversioned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
