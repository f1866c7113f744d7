/* Tests for the error convention: codes, messages with errno text, wrapping with context and
 * the bounded message size. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "drover/error.h"

static void test_strerror_every_code(void **state)
{
    (void)state;
    for (int i = 0; i < DRV_ERR__COUNT; i++) {
        const char *s = drv_strerror((drv_err_t)i);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, "unknown error");
        for (int j = 0; j < i; j++)
            assert_string_not_equal(s, drv_strerror((drv_err_t)j));
    }
    assert_string_equal(drv_strerror(DRV_ERR_INVALID), "invalid input");
    assert_string_equal(drv_strerror(DRV_ERR_TOOBIG), "too big");
    assert_string_equal(drv_strerror(DRV_ERR_INTEGRITY), "integrity check failed");
    assert_string_equal(drv_strerror(DRV_ERR__COUNT), "unknown error");
    assert_string_equal(drv_strerror((drv_err_t)-1), "unknown error");
    assert_string_equal(drv_strerror((drv_err_t)9999), "unknown error");
}

static void test_set_appends_errno_text(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_error_set(&err, DRV_ERR_IO, ENOENT, "open %s", "/etc/drover.yaml");
    assert_int_equal(rc, DRV_ERR_IO);
    assert_int_equal(err.code, DRV_ERR_IO);
    assert_int_equal(err.sys_errno, ENOENT);
    assert_string_equal(drv_error_msg(&err), "open /etc/drover.yaml: No such file or directory");
}

static void test_set_without_errno(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_error_set(&err, DRV_ERR_INVALID, 0, "spec.replicas: %d < 0", -3),
                     DRV_ERR_INVALID);
    assert_int_equal(err.sys_errno, 0);
    assert_string_equal(err.msg, "spec.replicas: -3 < 0");
}

static void test_set_null_context_returns_code(void **state)
{
    (void)state;
    assert_int_equal(drv_error_set(NULL, DRV_ERR_TIMEOUT, EINTR, "wait"), DRV_ERR_TIMEOUT);
}

static void test_set_overwrites_previous(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    (void)drv_error_set(&err, DRV_ERR_IO, EACCES, "first");
    (void)drv_error_set(&err, DRV_ERR_PROTO, 0, "second");
    assert_int_equal(err.code, DRV_ERR_PROTO);
    assert_int_equal(err.sys_errno, 0);
    assert_string_equal(err.msg, "second");
}

static void test_long_message_truncated(void **state)
{
    (void)state;
    char big[4 * DRV_ERROR_MSG_MAX];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    drv_error_t err = DRV_ERROR_INIT;
    (void)drv_error_set(&err, DRV_ERR_INVALID, EIO, "%s", big);
    assert_int_equal(strlen(err.msg), DRV_ERROR_MSG_MAX - 1);
    assert_int_equal(err.msg[DRV_ERROR_MSG_MAX - 1], '\0');
    assert_int_equal(err.sys_errno, EIO);

    /* errno text still fits when the message is just short of the limit */
    big[DRV_ERROR_MSG_MAX - 40] = '\0';
    (void)drv_error_set(&err, DRV_ERR_IO, EIO, "%s", big);
    assert_non_null(strstr(err.msg, ": Input/output error"));
}

static void test_wrap_prefixes_context(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    (void)drv_error_set(&err, DRV_ERR_INVALID, 0, "entry ../etc/passwd escapes the root");
    (void)drv_error_wrap(&err, "layer %s", "sha256:abc");
    assert_int_equal(drv_error_wrap(&err, "pull %s", "alpine:3.19"), DRV_ERR_INVALID);
    assert_string_equal(err.msg,
                        "pull alpine:3.19: layer sha256:abc: entry ../etc/passwd escapes the root");
}

static void test_wrap_without_message_uses_code_name(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    err.code = DRV_ERR_NOTFOUND;
    assert_int_equal(drv_error_wrap(&err, "node %s", "pi-3"), DRV_ERR_NOTFOUND);
    assert_string_equal(err.msg, "node pi-3: not found");

    drv_error_t empty = DRV_ERROR_INIT;
    assert_int_equal(drv_error_wrap(&empty, "ctx"), DRV_ERR_INVALID);
    assert_int_equal(empty.code, DRV_ERR_INVALID);
    assert_string_equal(empty.msg, "ctx: invalid input");
}

static void test_wrap_null_and_truncation(void **state)
{
    (void)state;
    assert_int_equal(drv_error_wrap(NULL, "ctx %d", 1), DRV_ERR_INVALID);

    drv_error_t err = DRV_ERROR_INIT;
    (void)drv_error_set(&err, DRV_ERR_IO, 0, "inner");
    for (int i = 0; i < 500; i++)
        (void)drv_error_wrap(&err, "level%d", i);
    assert_int_equal(err.code, DRV_ERR_IO);
    assert_true(strlen(err.msg) <= DRV_ERROR_MSG_MAX - 1);
    assert_memory_equal(err.msg, "level499: level498: ", 20);
}

static void test_msg_fallback_and_clear(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    assert_string_equal(drv_error_msg(&err), "success");
    err.code = DRV_ERR_AGAIN;
    assert_string_equal(drv_error_msg(&err), drv_strerror(DRV_ERR_AGAIN));
    (void)drv_error_set(&err, DRV_ERR_IO, EPIPE, "send");
    drv_error_clear(&err);
    assert_int_equal(err.code, DRV_OK);
    assert_int_equal(err.sys_errno, 0);
    assert_string_equal(drv_error_msg(&err), "success");
    drv_error_clear(NULL);
    assert_non_null(drv_error_msg(NULL));
}

/* The one errno mapping: what callers branch on (missing, denied, exists, full). */
static void test_from_errno(void **state)
{
    (void)state;
    assert_int_equal(drv_error_from_errno(ENOENT), DRV_ERR_NOTFOUND);
    assert_int_equal(drv_error_from_errno(ENOTDIR), DRV_ERR_NOTFOUND);
    assert_int_equal(drv_error_from_errno(EACCES), DRV_ERR_PERM);
    assert_int_equal(drv_error_from_errno(EPERM), DRV_ERR_PERM);
    assert_int_equal(drv_error_from_errno(EROFS), DRV_ERR_PERM);
    assert_int_equal(drv_error_from_errno(EEXIST), DRV_ERR_EXISTS);
    assert_int_equal(drv_error_from_errno(ENOMEM), DRV_ERR_NOMEM);
    assert_int_equal(drv_error_from_errno(ENOSPC), DRV_ERR_TOOBIG);
    assert_int_equal(drv_error_from_errno(ENAMETOOLONG), DRV_ERR_TOOBIG);
    assert_int_equal(drv_error_from_errno(EAGAIN), DRV_ERR_AGAIN);
    assert_int_equal(drv_error_from_errno(EIO), DRV_ERR_IO);
    assert_int_equal(drv_error_from_errno(0), DRV_ERR_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_every_code),
        cmocka_unit_test(test_set_appends_errno_text),
        cmocka_unit_test(test_set_without_errno),
        cmocka_unit_test(test_set_null_context_returns_code),
        cmocka_unit_test(test_set_overwrites_previous),
        cmocka_unit_test(test_long_message_truncated),
        cmocka_unit_test(test_wrap_prefixes_context),
        cmocka_unit_test(test_wrap_without_message_uses_code_name),
        cmocka_unit_test(test_wrap_null_and_truncation),
        cmocka_unit_test(test_msg_fallback_and_clear),
        cmocka_unit_test(test_from_errno),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
