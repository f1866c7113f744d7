/* Log serving without a broker: chunks captured from the send function. The whole log across
 * rotated files in order, tailBytes, a follow that sees new bytes and survives copytruncate,
 * cancel, the pod going away, the follow limit, and a client that cannot take more yet. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/file.h"
#include "drover/protocol.h"
#include "link/link.h"
#include "link/link_int.h"

typedef struct capture {
    char data[8192]; /* the chunks' data, concatenated */
    size_t len;
    unsigned chunks, eofs;
    char error[256];
    uint64_t next_seq;
    bool refuse; /* answer DRV_ERR_AGAIN */
} capture_t;

static drv_err_t send_cb(void *ud, const char *id, const cJSON *chunk)
{
    capture_t *c = ud;
    if (c->refuse)
        return DRV_ERR_AGAIN;
    drv_error_t err = DRV_ERROR_INIT;
    char *text;
    size_t len;
    assert_int_equal(drv_proto_encode(chunk, DRV_PROTO_LOGS_RES, &text, &len, &err), DRV_OK);
    drv_proto_logs_chunk_t ch;
    assert_int_equal(drv_proto_logs_chunk_parse(text, len, &ch, &err), DRV_OK);
    free(text);
    assert_string_equal(ch.id, id);
    assert_int_equal(ch.seq, c->next_seq);
    c->next_seq++;
    assert_true(c->len + ch.len <= sizeof(c->data));
    if (ch.len)
        memcpy(c->data + c->len, ch.data, ch.len);
    c->len += ch.len;
    c->chunks++;
    if (ch.eof)
        c->eofs++;
    if (ch.error[0])
        snprintf(c->error, sizeof(c->error), "%s", ch.error);
    drv_proto_logs_chunk_free(&ch);
    return DRV_OK;
}

typedef struct fixture {
    char dir[128];
    char log[300];
    drv_agent_config_t cfg;
    cJSON *sv;
} fixture_t;

static void write_file(const char *path, const char *text, bool append)
{
    int fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/drover-test-link-logs.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    drv_agent_config_defaults(&f->cfg);
    snprintf(f->cfg.state_dir, sizeof(f->cfg.state_dir), "%s", f->dir);
    f->cfg.log_max_files = 2;
    char d[200];
    snprintf(d, sizeof(d), "%s/pods/u1/logs", f->dir);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_mkdir_p(d, 0700, &err), DRV_OK);
    snprintf(f->log, sizeof(f->log), "%s/main.log", d);
    char p[320];
    snprintf(p, sizeof(p), "%s.2", f->log);
    write_file(p, "one\n", false);
    snprintf(p, sizeof(p), "%s.1", f->log);
    write_file(p, "two\n", false);
    write_file(f->log, "three\n", false);
    f->sv = cJSON_Parse("{\"node\":{\"name\":\"n1\"},\"pods\":[{\"metadata\":{\"name\":\"web\","
                        "\"namespace\":\"default\",\"uid\":\"u1\"},\"status\":{"
                        "\"containerStatuses\":[{\"name\":\"main\"}]}}]}");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return 1;
    cJSON_Delete(f->sv);
    free(f);
    return 0;
}

static drv_proto_logs_req_t req_for(const char *id, uint64_t tail, bool follow)
{
    drv_proto_logs_req_t r = {.tail_bytes = tail, .follow = follow};
    snprintf(r.id, sizeof(r.id), "%s", id);
    snprintf(r.pod, sizeof(r.pod), "web");
    snprintf(r.namespace_, sizeof(r.namespace_), "default");
    return r;
}

static void test_whole_and_tail(void **state)
{
    fixture_t *f = *state;
    capture_t c = {0};
    drv_link_logs_t *lg = drv_link_logs_new(&f->cfg, send_cb, &c);
    drv_proto_logs_req_t r = req_for("r1", 0, false);
    drv_link_logs_request(lg, f->sv, &r, 0);
    drv_link_logs_pump(lg, f->sv, 0);
    assert_int_equal(c.eofs, 1);
    assert_int_equal(c.len, 14);
    assert_memory_equal(c.data, "one\ntwo\nthree\n", 14);
    assert_int_equal(drv_link_logs_count(lg, NULL), 0);
    drv_link_logs_free(lg, NULL);

    capture_t t = {0};
    lg = drv_link_logs_new(&f->cfg, send_cb, &t);
    r = req_for("r2", 8, false); /* "o\nthree\n": starts inside the rotated .1 */
    drv_link_logs_request(lg, f->sv, &r, 0);
    drv_link_logs_pump(lg, f->sv, 0);
    assert_int_equal(t.eofs, 1);
    assert_int_equal(t.len, 8);
    assert_memory_equal(t.data, "o\nthree\n", 8);
    drv_link_logs_free(lg, NULL);

    capture_t e = {0};
    lg = drv_link_logs_new(&f->cfg, send_cb, &e);
    r = req_for("r3", 0, false);
    snprintf(r.pod, sizeof(r.pod), "gone");
    drv_link_logs_request(lg, f->sv, &r, 0);
    assert_int_equal(e.eofs, 1);
    assert_non_null(strstr(e.error, "pod default/gone: not found"));
    assert_int_equal(drv_link_logs_count(lg, NULL), 0);
    drv_link_logs_free(lg, NULL);
}

static void test_follow(void **state)
{
    fixture_t *f = *state;
    capture_t c = {0};
    drv_link_logs_t *lg = drv_link_logs_new(&f->cfg, send_cb, &c);
    drv_proto_logs_req_t r = req_for("f", 6, true);
    drv_link_logs_request(lg, f->sv, &r, 0);
    drv_link_logs_pump(lg, f->sv, 0);
    assert_int_equal(c.len, 6);
    assert_int_equal(c.eofs, 0);
    assert_true(drv_link_logs_next_wakeup(lg, 0) > 0);
    /* A redelivered request changes nothing. */
    drv_link_logs_request(lg, f->sv, &r, 10);
    assert_int_equal(drv_link_logs_count(lg, NULL), 1);

    write_file(f->log, "four\n", true);
    drv_link_logs_pump(lg, f->sv, 100); /* not yet due */
    assert_int_equal(c.len, 6);
    drv_link_logs_pump(lg, f->sv, 600);
    assert_int_equal(c.len, 11);
    assert_memory_equal(c.data, "three\nfour\n", 11);

    /* copytruncate: more was written, copied to .1, the file truncated, then new output. */
    write_file(f->log, "five\n", true);
    char p1[320];
    snprintf(p1, sizeof(p1), "%s.1", f->log);
    write_file(p1, "three\nfour\nfive\n", false);
    write_file(f->log, "six\n", false);
    drv_link_logs_pump(lg, f->sv, 1200);
    assert_int_equal(c.len, 20);
    assert_memory_equal(c.data, "three\nfour\nfive\nsix\n", 20);
    assert_int_equal(c.eofs, 0);

    /* A client that cannot take more: nothing lost, sent when it can. */
    write_file(f->log, "seven\n", true);
    c.refuse = true;
    drv_link_logs_pump(lg, f->sv, 1800);
    c.refuse = false;
    drv_link_logs_pump(lg, f->sv, 1850); /* retry not due yet */
    assert_int_equal(c.len, 20);
    drv_link_logs_pump(lg, f->sv, 1950);
    assert_int_equal(c.len, 26);
    assert_memory_equal(c.data + 20, "seven\n", 6);

    /* Cancel: an eof chunk, the session gone; a second cancel does nothing. */
    drv_proto_logs_req_t cancel = {.cancel = true};
    snprintf(cancel.id, sizeof(cancel.id), "f");
    drv_link_logs_request(lg, f->sv, &cancel, 2000);
    assert_int_equal(c.eofs, 1);
    assert_int_equal(drv_link_logs_count(lg, NULL), 0);
    drv_link_logs_request(lg, f->sv, &cancel, 2000);
    assert_int_equal(c.eofs, 1);
    drv_link_logs_free(lg, NULL);
}

static void test_follow_ends(void **state)
{
    fixture_t *f = *state;
    capture_t c = {0};
    drv_link_logs_t *lg = drv_link_logs_new(&f->cfg, send_cb, &c);
    drv_proto_logs_req_t r = req_for("f", 1, true);
    drv_link_logs_request(lg, f->sv, &r, 0);
    drv_link_logs_pump(lg, f->sv, 0);
    assert_int_equal(c.eofs, 0);
    /* The pod is gone: the follow ends with eof. */
    cJSON *none = cJSON_Parse("{\"node\":{\"name\":\"n1\"},\"pods\":[]}");
    drv_link_logs_pump(lg, none, 600);
    assert_int_equal(c.eofs, 1);
    assert_int_equal(drv_link_logs_count(lg, NULL), 0);
    drv_link_logs_free(lg, NULL);
    cJSON_Delete(none);

    /* Ten minutes: eof. */
    capture_t t = {0};
    lg = drv_link_logs_new(&f->cfg, send_cb, &t);
    drv_link_logs_request(lg, f->sv, &r, 0);
    drv_link_logs_pump(lg, f->sv, 0);
    drv_link_logs_pump(lg, f->sv, DRV_LINK_FOLLOW_MAX_MS + 1);
    assert_int_equal(t.eofs, 1);
    drv_link_logs_free(lg, NULL);

    /* At most DRV_LINK_MAX_FOLLOWS at once; the next gets an error chunk. */
    capture_t m = {0};
    lg = drv_link_logs_new(&f->cfg, send_cb, &m);
    for (int i = 0; i < DRV_LINK_MAX_FOLLOWS; i++) {
        char id[8];
        snprintf(id, sizeof(id), "f%d", i);
        drv_proto_logs_req_t q = req_for(id, 1, true);
        drv_link_logs_request(lg, f->sv, &q, 0);
    }
    unsigned follows = 0;
    assert_int_equal(drv_link_logs_count(lg, &follows), DRV_LINK_MAX_FOLLOWS);
    assert_int_equal(follows, DRV_LINK_MAX_FOLLOWS);
    drv_proto_logs_req_t q = req_for("extra", 1, true);
    drv_link_logs_request(lg, f->sv, &q, 0);
    assert_int_equal(m.eofs, 1);
    assert_non_null(strstr(m.error, "too many logs followed at once"));
    assert_int_equal(drv_link_logs_count(lg, NULL), DRV_LINK_MAX_FOLLOWS);
    drv_link_logs_free(lg, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_whole_and_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow_ends, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
