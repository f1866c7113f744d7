/* Tests for the seeded string map: put, replace, find by (ptr, len), delete with slot reuse,
 * iteration, the hard maximum, and per-map seeds. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/map.h"

static void test_put_get_replace(void **state)
{
    (void)state;
    drv_map_t m;
    drv_map_init(&m, 100);
    int a = 1, b = 2;
    assert_null(drv_map_get(&m, "x"));
    assert_int_equal(drv_map_put(&m, "alpha", &a), DRV_OK);
    assert_int_equal(drv_map_put(&m, "beta", &b), DRV_OK);
    assert_ptr_equal(drv_map_get(&m, "alpha"), &a);
    assert_ptr_equal(drv_map_get(&m, "beta"), &b);
    assert_int_equal(drv_map_put(&m, "alpha", &b), DRV_OK);
    assert_ptr_equal(drv_map_get(&m, "alpha"), &b);
    assert_int_equal(m.n, 2);
    /* A prefix of a longer buffer, without its NUL. */
    void *v = NULL;
    assert_true(drv_map_find(&m, "betamax", 4, &v));
    assert_ptr_equal(v, &b);
    assert_false(drv_map_find(&m, "bet", 3, NULL));
    /* A NULL value is a value. */
    assert_int_equal(drv_map_put(&m, "none", NULL), DRV_OK);
    assert_true(drv_map_find(&m, "none", 4, &v));
    assert_null(v);
    drv_map_free(&m);
}

static void test_many_and_delete(void **state)
{
    (void)state;
    enum { N = 5000 };
    static char names[N][16];
    drv_map_t m;
    drv_map_init(&m, N);
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "k%zu", i);
        assert_int_equal(drv_map_put(&m, names[i], names[i]), DRV_OK);
    }
    assert_int_equal(m.n, N);
    for (size_t i = 0; i < N; i += 2)
        assert_ptr_equal(drv_map_del(&m, names[i]), names[i]);
    assert_null(drv_map_del(&m, "k0"));
    assert_int_equal(m.n, N / 2);
    for (size_t i = 0; i < N; i++)
        assert_true((drv_map_get(&m, names[i]) != NULL) == (i % 2 == 1));
    /* Deleted slots are reused; deletes and inserts in turn do not grow the table forever. */
    size_t cap = m.cap;
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < N; i += 2)
            assert_int_equal(drv_map_put(&m, names[i], names[i]), DRV_OK);
        for (size_t i = 0; i < N; i += 2)
            assert_non_null(drv_map_del(&m, names[i]));
    }
    assert_true(m.cap <= cap * 2);
    size_t seen = 0;
    const char *k;
    void *v;
    for (size_t it = 0; drv_map_next(&m, &it, &k, &v);) {
        assert_ptr_equal(k, v);
        seen++;
    }
    assert_int_equal(seen, N / 2);
    drv_map_free(&m);
    assert_int_equal(m.cap, 0);
}

/* The maximum is hard: the insert past it fails and changes nothing; replacing still works. */
static void test_max(void **state)
{
    (void)state;
    drv_map_t m;
    drv_map_init(&m, 3);
    int x;
    assert_int_equal(drv_map_put(&m, "a", &x), DRV_OK);
    assert_int_equal(drv_map_put(&m, "b", &x), DRV_OK);
    assert_int_equal(drv_map_put(&m, "c", &x), DRV_OK);
    assert_int_equal(drv_map_put(&m, "d", &x), DRV_ERR_TOOBIG);
    assert_null(drv_map_get(&m, "d"));
    assert_int_equal(m.n, 3);
    assert_int_equal(drv_map_put(&m, "a", NULL), DRV_OK);
    assert_non_null(drv_map_del(&m, "b"));
    assert_int_equal(drv_map_put(&m, "d", &x), DRV_OK);
    drv_map_free(&m);
    drv_map_t none;
    drv_map_init(&none, 0);
    assert_int_equal(drv_map_put(&none, "a", &x), DRV_ERR_TOOBIG);
    assert_int_equal(drv_map_put(&none, NULL, &x), DRV_ERR_INVALID);
    drv_map_free(&none);
}

/* Each map draws its own seed; init_seeded shares one; the hash depends on it. */
static void test_seeds(void **state)
{
    (void)state;
    drv_map_t a, b, c;
    drv_map_init(&a, 1);
    drv_map_init(&b, 1);
    drv_map_init_seeded(&c, 1, a.seed);
    assert_true(a.seed[0] != b.seed[0] || a.seed[1] != b.seed[1]);
    assert_memory_equal(a.seed, c.seed, sizeof a.seed);
    assert_true(drv_map_hash(a.seed, "name", 4) != drv_map_hash(b.seed, "name", 4));
    assert_int_equal(drv_map_hash(a.seed, "name", 4), drv_map_hash(c.seed, "name", 4));
    /* The length is part of the hash: "" and a lone NUL differ. */
    const uint64_t k[2] = {UINT64_C(0x0706050403020100), UINT64_C(0x0f0e0d0c0b0a0908)};
    assert_true(drv_map_hash(k, "", 0) != drv_map_hash(k, "\0", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_replace),
        cmocka_unit_test(test_many_and_delete),
        cmocka_unit_test(test_max),
        cmocka_unit_test(test_seeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
