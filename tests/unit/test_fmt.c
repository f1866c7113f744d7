/* drv_fmt: formatting into fixed buffers that refuses truncation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "drover/fmt.h"

static void test_fits(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(drv_fmt(out, sizeof(out), "%s/%d", "/run", 42), DRV_OK);
    assert_string_equal(out, "/run/42");
    /* Exactly full: 15 characters and the NUL. */
    assert_int_equal(drv_fmt(out, sizeof(out), "%s", "123456789012345"), DRV_OK);
    assert_string_equal(out, "123456789012345");
    assert_int_equal(drv_fmt(out, sizeof(out), "%s", ""), DRV_OK);
    assert_string_equal(out, "");
}

static void test_truncation_refused(void **state)
{
    (void)state;
    char out[16];
    memcpy(out, "untouched", 10);
    /* One character too many: refused, and the buffer keeps what it held. */
    assert_int_equal(drv_fmt(out, sizeof(out), "%s", "1234567890123456"), DRV_ERR_TOOBIG);
    assert_string_equal(out, "untouched");
    assert_int_equal(drv_fmt(out, sizeof(out), "/var/lib/drover/%s", "pods"), DRV_ERR_TOOBIG);
    assert_string_equal(out, "untouched");
    char one[1];
    assert_int_equal(drv_fmt(one, sizeof(one), "%s", ""), DRV_OK);
    assert_int_equal(drv_fmt(one, sizeof(one), "x"), DRV_ERR_TOOBIG);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char out[4];
    assert_int_equal(drv_fmt(NULL, 4, "x"), DRV_ERR_INVALID);
    assert_int_equal(drv_fmt(out, 0, "x"), DRV_ERR_INVALID);
}

/* Text for people: cut with "..." when it does not fit, whole when it does. */
static void test_cut(void **state)
{
    (void)state;
    char out[10];
    drv_fmt_cut(out, sizeof(out), "%s", "short");
    assert_string_equal(out, "short");
    drv_fmt_cut(out, sizeof(out), "%s-%d", "a rather long message", 42);
    assert_string_equal(out, "a rath...");
    drv_fmt_cut(out, sizeof(out), "%s", "123456789");
    assert_string_equal(out, "123456789"); /* exactly fits */
    char tiny[3];
    drv_fmt_cut(tiny, sizeof(tiny), "%s", "abcdef");
    assert_string_equal(tiny, "ab");
}

/* A fixed name copied into an array: checked when compiled, whole at run time. */
static void test_lit(void **state)
{
    (void)state;
    struct {
        char ns[8];
    } r;
    memset(&r, 'x', sizeof(r));
    DRV_FMT_LIT(r.ns, "default"); /* exactly full */
    assert_string_equal(r.ns, "default");
    char tag[16];
    DRV_FMT_LIT(tag, "latest");
    assert_string_equal(tag, "latest");
}

/* A number as its author wrote it: the shortest text that reads back as the same double. */
static void test_double(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(drv_fmt_double(out, sizeof(out), 0.1), DRV_OK);
    assert_string_equal(out, "0.1");
    assert_int_equal(drv_fmt_double(out, sizeof(out), 2.0), DRV_OK);
    assert_string_equal(out, "2");
    assert_int_equal(drv_fmt_double(out, sizeof(out), 1.0 / 3.0), DRV_OK);
    assert_string_equal(out, "0.3333333333333333");
    assert_int_equal(drv_fmt_double(out, sizeof(out), -2.5e-7), DRV_OK);
    assert_string_equal(out, "-2.5e-07");
    char tiny[3];
    assert_int_equal(drv_fmt_double(tiny, sizeof(tiny), 0.125), DRV_ERR_TOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fits),          cmocka_unit_test(test_truncation_refused),
        cmocka_unit_test(test_bad_arguments), cmocka_unit_test(test_cut),
        cmocka_unit_test(test_lit),           cmocka_unit_test(test_double),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
