/* Tests for the bounded growing buffer: the hard maximum, failure atomicity, overflow-safe
 * sizes and ownership hand-over. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "drover/buf.h"

static void test_empty_buffer_is_empty_string(void **state)
{
    (void)state;
    drv_buf_t b = DRV_BUF_INIT(16);
    assert_string_equal(drv_buf_str(&b), "");
    assert_int_equal(b.len, 0);
    assert_null(b.data);
    drv_buf_free(&b);
}

static void test_append_nul_terminates(void **state)
{
    (void)state;
    _cleanup_buf_ drv_buf_t b;
    drv_buf_init(&b, 64);
    assert_int_equal(drv_buf_append(&b, "abc", 3), DRV_OK);
    assert_int_equal(drv_buf_puts(&b, "def"), DRV_OK);
    assert_int_equal(drv_buf_putc(&b, '!'), DRV_OK);
    assert_int_equal(b.len, 7);
    assert_string_equal(drv_buf_str(&b), "abcdef!");
    assert_int_equal(b.data[b.len], '\0');
    /* binary data with NULs keeps its length */
    assert_int_equal(drv_buf_append(&b, "\0x", 2), DRV_OK);
    assert_int_equal(b.len, 9);
    assert_int_equal(b.data[8], 'x');
    assert_int_equal(b.data[9], '\0');
}

static void test_append_past_max_fails_and_keeps_contents(void **state)
{
    (void)state;
    _cleanup_buf_ drv_buf_t b = DRV_BUF_INIT(10);
    assert_int_equal(drv_buf_puts(&b, "12345678"), DRV_OK);
    char *data = b.data;
    size_t cap = b.cap;
    assert_int_equal(drv_buf_puts(&b, "abc"), DRV_ERR_TOOBIG);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.len, 8);
    assert_string_equal(drv_buf_str(&b), "12345678");
    assert_int_equal(drv_buf_putc(&b, 'x'), DRV_OK);
    assert_int_equal(drv_buf_putc(&b, 'y'), DRV_OK);
    assert_int_equal(drv_buf_putc(&b, 'z'), DRV_ERR_TOOBIG);
    assert_int_equal(drv_buf_printf(&b, "%d", 1), DRV_ERR_TOOBIG);
    assert_int_equal(b.len, 10);
    assert_string_equal(drv_buf_str(&b), "12345678xy");
}

static void test_exact_max_fits(void **state)
{
    (void)state;
    _cleanup_buf_ drv_buf_t b = DRV_BUF_INIT(5);
    assert_int_equal(drv_buf_append(&b, "hello", 5), DRV_OK);
    assert_string_equal(drv_buf_str(&b), "hello");
    assert_int_equal(drv_buf_append(&b, "", 0), DRV_OK);
    /* never allocates more than max + 1 */
    assert_true(b.cap <= 6);
}

static void test_max_zero(void **state)
{
    (void)state;
    _cleanup_buf_ drv_buf_t b = DRV_BUF_INIT(0);
    assert_int_equal(drv_buf_putc(&b, 'a'), DRV_ERR_TOOBIG);
    assert_int_equal(b.len, 0);
    assert_string_equal(drv_buf_str(&b), "");
}

static void test_printf_large_and_over_max(void **state)
{
    (void)state;
    _cleanup_buf_ drv_buf_t b = DRV_BUF_INIT(2000);
    char big[1001];
    memset(big, 'q', 1000);
    big[1000] = '\0';
    assert_int_equal(drv_buf_printf(&b, "<%s>", big), DRV_OK);
    assert_int_equal(b.len, 1002);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[1001], '>');
    assert_int_equal(drv_buf_printf(&b, "%s", big), DRV_ERR_TOOBIG);
    assert_int_equal(b.len, 1002);
    assert_int_equal(b.data[1002], '\0');
    assert_int_equal(drv_buf_printf(&b, " n=%d s=%s", 42, "ok"), DRV_OK);
    assert_string_equal(drv_buf_str(&b) + 1002, " n=42 s=ok");
}

static void test_size_overflow_is_refused(void **state)
{
    (void)state;
    _cleanup_buf_ drv_buf_t b = DRV_BUF_INIT(SIZE_MAX);
    assert_int_equal(drv_buf_puts(&b, "abc"), DRV_OK);
    /* lengths that would wrap size_t must not be attempted (the pointer is never read) */
    assert_int_equal(drv_buf_append(&b, "x", SIZE_MAX), DRV_ERR_TOOBIG);
    assert_int_equal(drv_buf_append(&b, "x", SIZE_MAX - 3), DRV_ERR_TOOBIG);
    assert_int_equal(drv_buf_append(&b, "x", SIZE_MAX - 2), DRV_ERR_TOOBIG);
    assert_string_equal(drv_buf_str(&b), "abc");
    assert_int_equal(b.len, 3);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    _cleanup_buf_ drv_buf_t b = DRV_BUF_INIT(10);
    assert_int_equal(drv_buf_puts(&b, NULL), DRV_ERR_INVALID);
    assert_int_equal(drv_buf_append(&b, NULL, 3), DRV_ERR_INVALID);
    assert_int_equal(drv_buf_append(NULL, "x", 1), DRV_ERR_INVALID);
    assert_int_equal(drv_buf_append(&b, NULL, 0), DRV_OK);
    assert_int_equal(b.len, 0);
}

static void test_self_append_survives_realloc(void **state)
{
    (void)state;
    _cleanup_buf_ drv_buf_t b = DRV_BUF_INIT(1 << 20);
    assert_int_equal(drv_buf_puts(&b, "abcdefgh"), DRV_OK);
    for (int i = 0; i < 10; i++)
        assert_int_equal(drv_buf_append(&b, b.data, b.len), DRV_OK);
    assert_int_equal(b.len, 8 << 10);
    for (size_t i = 0; i < b.len; i++)
        assert_int_equal(b.data[i], "abcdefgh"[i % 8]);
}

static void test_growth_is_geometric(void **state)
{
    (void)state;
    _cleanup_buf_ drv_buf_t b = DRV_BUF_INIT(1 << 20);
    int reallocs = 0;
    size_t cap = 0;
    for (int i = 0; i < 100000; i++) {
        assert_int_equal(drv_buf_putc(&b, 'a'), DRV_OK);
        if (b.cap != cap) {
            reallocs++;
            cap = b.cap;
        }
    }
    assert_true(reallocs < 20);
    assert_true(b.cap <= (1 << 20) + 1);
}

static void test_truncate_and_reset(void **state)
{
    (void)state;
    _cleanup_buf_ drv_buf_t b = DRV_BUF_INIT(100);
    assert_int_equal(drv_buf_puts(&b, "hello world"), DRV_OK);
    drv_buf_truncate(&b, 5);
    assert_string_equal(drv_buf_str(&b), "hello");
    drv_buf_truncate(&b, 50); /* beyond len: ignored */
    assert_string_equal(drv_buf_str(&b), "hello");
    char *data = b.data;
    drv_buf_reset(&b);
    assert_string_equal(drv_buf_str(&b), "");
    assert_ptr_equal(b.data, data); /* allocation kept */
    assert_int_equal(drv_buf_puts(&b, "again"), DRV_OK);
    assert_string_equal(drv_buf_str(&b), "again");
}

static void test_steal_hands_over_ownership(void **state)
{
    (void)state;
    drv_buf_t b = DRV_BUF_INIT(100);
    size_t len = 99;
    char *s = drv_buf_steal(&b, &len);
    assert_non_null(s);
    assert_string_equal(s, "");
    assert_int_equal(len, 0);
    free(s);

    assert_int_equal(drv_buf_puts(&b, "payload"), DRV_OK);
    s = drv_buf_steal(&b, &len);
    assert_string_equal(s, "payload");
    assert_int_equal(len, 7);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 100);
    free(s);
    /* the buffer is usable again afterwards */
    assert_int_equal(drv_buf_puts(&b, "x"), DRV_OK);
    drv_buf_free(&b);
    drv_buf_free(&b); /* idempotent */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_buffer_is_empty_string),
        cmocka_unit_test(test_append_nul_terminates),
        cmocka_unit_test(test_append_past_max_fails_and_keeps_contents),
        cmocka_unit_test(test_exact_max_fits),
        cmocka_unit_test(test_max_zero),
        cmocka_unit_test(test_printf_large_and_over_max),
        cmocka_unit_test(test_size_overflow_is_refused),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_self_append_survives_realloc),
        cmocka_unit_test(test_growth_is_geometric),
        cmocka_unit_test(test_truncate_and_reset),
        cmocka_unit_test(test_steal_hands_over_ownership),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
