/* Tests for the bounded growable array: the hard maximum, failure atomicity (a refused or
 * failed allocation leaves the array as it was), overflow-safe sizes and ownership hand-over.
 * realloc is wrapped (-Wl,--wrap=realloc, tests/CMakeLists.txt) so that a test can make the
 * next allocation fail. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "drover/vec.h"

void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);

static int fail_reallocs; /* the next this many reallocs fail */

/* checksrc: allow nonstatic-local: the linker's --wrap calls it by this name */
void *__wrap_realloc(void *p, size_t n)
{
    if (fail_reallocs > 0) {
        fail_reallocs--;
        return NULL;
    }
    return __real_realloc(p, n);
}

typedef struct pair {
    int a;
    char b[12];
} pair_t;

static void test_empty_array(void **state)
{
    (void)state;
    drv_vec_t v = DRV_VEC_INIT(pair_t, 4);
    assert_null(v.data);
    assert_int_equal(drv_vec_len(&v), 0);
    assert_null(drv_vec_at(&v, 0));
    assert_null(drv_vec_last(&v));
    size_t n = 99;
    assert_null(drv_vec_steal(&v, &n));
    assert_int_equal(n, 0);
    drv_vec_free(&v);
}

static void test_push_copies_and_at_reads(void **state)
{
    (void)state;
    _cleanup_vec_ drv_vec_t v;
    drv_vec_init(&v, sizeof(pair_t), 1000);
    for (int i = 0; i < 100; i++) {
        pair_t p = {i, "x"};
        p.b[1] = (char)('a' + i % 26);
        assert_int_equal(drv_vec_push(&v, &p), DRV_OK);
    }
    assert_int_equal(drv_vec_len(&v), 100);
    for (int i = 0; i < 100; i++) {
        const pair_t *p = drv_vec_at(&v, (size_t)i);
        assert_non_null(p);
        assert_int_equal(p->a, i);
        assert_int_equal(p->b[1], 'a' + i % 26);
    }
    assert_ptr_equal(drv_vec_last(&v), drv_vec_at(&v, 99));
    assert_null(drv_vec_at(&v, 100));
    /* NULL pushes a zero-filled element */
    assert_int_equal(drv_vec_push(&v, NULL), DRV_OK);
    const pair_t *z = drv_vec_last(&v);
    assert_int_equal(z->a, 0);
    assert_int_equal(z->b[0], '\0');
}

static void test_push_past_max_fails_and_keeps_contents(void **state)
{
    (void)state;
    _cleanup_vec_ drv_vec_t v = DRV_VEC_INIT(int, 3);
    for (int i = 1; i <= 3; i++)
        assert_int_equal(drv_vec_push(&v, &i), DRV_OK);
    void *data = v.data;
    size_t cap = v.cap;
    int four = 4;
    assert_int_equal(drv_vec_push(&v, &four), DRV_ERR_TOOBIG);
    assert_int_equal(drv_vec_reserve(&v, 1), DRV_ERR_TOOBIG);
    assert_int_equal(drv_vec_reserve(&v, SIZE_MAX), DRV_ERR_TOOBIG);
    assert_ptr_equal(v.data, data);
    assert_int_equal(v.cap, cap);
    assert_int_equal(v.len, 3);
    assert_int_equal(*(int *)drv_vec_at(&v, 2), 3);
    /* growth never allocates beyond max */
    assert_true(v.cap <= 3);
    assert_int_equal(drv_vec_reserve(&v, 0), DRV_OK);
}

static void test_reserve_makes_pushes_infallible(void **state)
{
    (void)state;
    _cleanup_vec_ drv_vec_t v = DRV_VEC_INIT(long, 100);
    assert_int_equal(drv_vec_reserve(&v, 50), DRV_OK);
    assert_true(v.cap >= 50);
    assert_int_equal(v.len, 0);
    fail_reallocs = 1000;
    for (long i = 0; i < 50; i++)
        assert_int_equal(drv_vec_push(&v, &i), DRV_OK);
    fail_reallocs = 0;
    assert_int_equal(v.len, 50);
}

static void test_allocation_failure_keeps_contents(void **state)
{
    (void)state;
    _cleanup_vec_ drv_vec_t v = DRV_VEC_INIT(int, 1000);
    /* the first allocation */
    fail_reallocs = 1;
    int x = 7;
    assert_int_equal(drv_vec_push(&v, &x), DRV_ERR_NOMEM);
    assert_null(v.data);
    assert_int_equal(v.len, 0);
    assert_int_equal(v.cap, 0);
    /* a growth after that: the elements stay where they were */
    do
        assert_int_equal(drv_vec_push(&v, &x), DRV_OK);
    while (v.len < v.cap);
    void *data = v.data;
    size_t len = v.len, cap = v.cap;
    fail_reallocs = 1;
    int y = 8;
    assert_int_equal(drv_vec_push(&v, &y), DRV_ERR_NOMEM);
    assert_ptr_equal(v.data, data);
    assert_int_equal(v.len, len);
    assert_int_equal(v.cap, cap);
    assert_int_equal(*(int *)drv_vec_last(&v), 7);
    /* and the next push, with memory again, works */
    assert_int_equal(drv_vec_push(&v, &y), DRV_OK);
    assert_int_equal(*(int *)drv_vec_last(&v), 8);
    assert_true(v.cap > cap);
}

static void test_failed_growth_is_atomic(void **state)
{
    (void)state;
    _cleanup_vec_ drv_vec_t v = DRV_VEC_INIT(int, 1000);
    int x = 3;
    while (v.len < 8)
        assert_int_equal(drv_vec_push(&v, &x), DRV_OK);
    assert_int_equal(v.len, v.cap);
    void *data = v.data;
    size_t cap = v.cap;
    fail_reallocs = 1;
    assert_int_equal(drv_vec_reserve(&v, 5), DRV_ERR_NOMEM);
    assert_ptr_equal(v.data, data);
    assert_int_equal(v.cap, cap);
    assert_int_equal(v.len, 8);
    assert_int_equal(*(int *)drv_vec_last(&v), 3);
}

static void test_sizes_cannot_overflow(void **state)
{
    (void)state;
    /* elements so large that a count of them overflows size_t: refused before realloc */
    _cleanup_vec_ drv_vec_t v;
    drv_vec_init(&v, SIZE_MAX / 4, SIZE_MAX);
    assert_int_equal(drv_vec_reserve(&v, 5), DRV_ERR_NOMEM);
    assert_null(v.data);
    assert_int_equal(drv_vec_reserve(&v, SIZE_MAX), DRV_ERR_NOMEM);
    drv_vec_t zero;
    drv_vec_init(&zero, 0, 10);
    assert_int_equal(drv_vec_push(&zero, NULL), DRV_ERR_INVALID);
}

static void test_remove_and_steal(void **state)
{
    (void)state;
    _cleanup_vec_ drv_vec_t v = DRV_VEC_INIT(int, 10);
    for (int i = 0; i < 5; i++)
        assert_int_equal(drv_vec_push(&v, &i), DRV_OK);
    drv_vec_remove(&v, 1);
    drv_vec_remove(&v, 3); /* the last one */
    drv_vec_remove(&v, 9); /* out of range: nothing */
    assert_int_equal(v.len, 3);
    size_t n = 0;
    int *p = drv_vec_steal(&v, &n);
    assert_int_equal(n, 3);
    assert_int_equal(p[0], 0);
    assert_int_equal(p[1], 2);
    assert_int_equal(p[2], 3);
    free(p);
    assert_null(v.data);
    assert_int_equal(v.len, 0);
    assert_int_equal(v.cap, 0);
    /* reusable after a steal, with the same maximum */
    for (int i = 0; i < 10; i++)
        assert_int_equal(drv_vec_push(&v, &i), DRV_OK);
    assert_int_equal(drv_vec_push(&v, &n), DRV_ERR_TOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_array),
        cmocka_unit_test(test_push_copies_and_at_reads),
        cmocka_unit_test(test_push_past_max_fails_and_keeps_contents),
        cmocka_unit_test(test_reserve_makes_pushes_infallible),
        cmocka_unit_test(test_allocation_failure_keeps_contents),
        cmocka_unit_test(test_failed_growth_is_atomic),
        cmocka_unit_test(test_sizes_cannot_overflow),
        cmocka_unit_test(test_remove_and_steal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
