/* Tests for lexical path cleaning and contained joins, including hostile names from image
 * layers and manifests. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "drover/path.h"

static void test_clean_table(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"", "."},
        {".", "."},
        {"./", "."},
        {"/", "/"},
        {"//", "/"},
        {"///a//b///", "/a/b"},
        {"a/./b/", "a/b"},
        {"a/b/..", "a"},
        {"a/..", "."},
        {"a/../b", "b"},
        {"a/b/../../c/./d", "c/d"},
        {"/..", "/"},
        {"/../x", "/x"},
        {"/a/../../..", "/"},
        {"...", "..."},
        {"..a/b..", "..a/b.."},
        {"a/.hidden/", "a/.hidden"},
        {"abc", "abc"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64];
        assert_int_equal(drv_path_clean(cases[i][0], out, sizeof(out)), DRV_OK);
        assert_string_equal(out, cases[i][1]);
    }
}

static void test_clean_rejects_climbing_relative(void **state)
{
    (void)state;
    static const char *const bad[] = {"..", "../", "../x", "a/../../x", "./../a", "a/b/../../.."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[64] = "untouched";
        assert_int_equal(drv_path_clean(bad[i], out, sizeof(out)), DRV_ERR_INVALID);
        assert_string_equal(out, "untouched");
    }
    char out[8];
    assert_int_equal(drv_path_clean(NULL, out, sizeof(out)), DRV_ERR_INVALID);
}

static void test_clean_output_size(void **state)
{
    (void)state;
    char out[6] = "keep!";
    assert_int_equal(drv_path_clean("abcdef", out, sizeof(out)), DRV_ERR_TOOBIG);
    assert_string_equal(out, "keep!");
    assert_int_equal(drv_path_clean("abcde", out, sizeof(out)), DRV_OK);
    assert_string_equal(out, "abcde");
    /* the cleaned length counts, not the input length */
    assert_int_equal(drv_path_clean("a/./././././././b", out, sizeof(out)), DRV_OK);
    assert_string_equal(out, "a/b");
    assert_int_equal(drv_path_clean("x", out, 0), DRV_ERR_TOOBIG);
}

static void test_clean_very_long_input(void **state)
{
    (void)state;
    /* 64 KiB of "a/": longer than the stack scratch, cleans to something long */
    size_t n = 64 * 1024;
    char *in = malloc(n + 1);
    assert_non_null(in);
    for (size_t i = 0; i < n; i += 2) {
        in[i] = 'a';
        in[i + 1] = '/';
    }
    in[n] = '\0';
    char out[4096];
    assert_int_equal(drv_path_clean(in, out, sizeof(out)), DRV_ERR_TOOBIG);
    char *big = malloc(n + 1);
    assert_non_null(big);
    assert_int_equal(drv_path_clean(in, big, n + 1), DRV_OK);
    assert_int_equal(strlen(big), n - 1);
    free(big);
    free(in);

    /* absurd inputs are refused outright */
    size_t huge = 2 * 1024 * 1024;
    in = malloc(huge + 1);
    assert_non_null(in);
    memset(in, 'b', huge);
    in[huge] = '\0';
    assert_int_equal(drv_path_clean(in, out, sizeof(out)), DRV_ERR_TOOBIG);
    assert_int_equal(drv_path_join("/srv", in, out, sizeof(out)), DRV_ERR_TOOBIG);
    free(in);
}

static void test_join_accepts_contained(void **state)
{
    (void)state;
    static const char *const cases[][3] = {
        {"/srv", "a/../b", "/srv/b"},
        {"/srv", "a/b/c", "/srv/a/b/c"},
        {"/srv", "/etc/passwd", "/srv/etc/passwd"},
        {"/srv", "//etc//./passwd/", "/srv/etc/passwd"},
        {"/srv/", "a", "/srv/a"},
        {"/srv///", "a", "/srv/a"},
        {"/", "a", "/a"},
        {"///", "a/b", "/a/b"},
        {"/", "", "/"},
        {"/srv", "", "/srv"},
        {"/srv", ".", "/srv"},
        {"/srv", "a/..", "/srv"},
        {"rootfs", "usr/bin/sh", "rootfs/usr/bin/sh"},
        {"/srv", "..foo", "/srv/..foo"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64];
        assert_int_equal(drv_path_join(cases[i][0], cases[i][1], out, sizeof(out)), DRV_OK);
        assert_string_equal(out, cases[i][2]);
    }
}

static void test_join_refuses_escapes(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "../../etc/passwd",      "a/../../b", "..", "../", "/../x", "/..", "./..", "a/./../../x",
        "a/b/c/../../../../etc",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[64] = "untouched";
        assert_int_equal(drv_path_join("/srv/root", bad[i], out, sizeof(out)), DRV_ERR_INVALID);
        assert_string_equal(out, "untouched");
        assert_false(drv_path_is_contained(bad[i]));
    }
}

static void test_join_bad_arguments(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(drv_path_join("", "a", out, sizeof(out)), DRV_ERR_INVALID);
    assert_int_equal(drv_path_join(NULL, "a", out, sizeof(out)), DRV_ERR_INVALID);
    assert_int_equal(drv_path_join("/srv", NULL, out, sizeof(out)), DRV_ERR_INVALID);
    char small[11] = "keep";
    assert_int_equal(drv_path_join("/srv", "abcdef", small, sizeof(small)), DRV_ERR_TOOBIG);
    assert_string_equal(small, "keep");
    assert_int_equal(drv_path_join("/srv", "abcde", small, sizeof(small)), DRV_OK);
    assert_string_equal(small, "/srv/abcde");
}

static void test_is_contained(void **state)
{
    (void)state;
    assert_true(drv_path_is_contained(""));
    assert_true(drv_path_is_contained("."));
    assert_true(drv_path_is_contained("a"));
    assert_true(drv_path_is_contained("a/../b"));
    assert_true(drv_path_is_contained("a/b/../../"));
    assert_true(drv_path_is_contained("...")); /* a name, not a parent */
    assert_false(drv_path_is_contained("a/../../b"));
    assert_false(drv_path_is_contained("../x"));
    assert_false(drv_path_is_contained("/etc/passwd"));
    assert_false(drv_path_is_contained(NULL));
}

/* Random names over {a, ., /}: every accepted join stays under the root, has no "." or ".."
 * components, and acceptance matches drv_path_is_contained. */
static void test_join_random_property(void **state)
{
    (void)state;
    static const char alphabet[] = "a./";
    unsigned seed = 12345;
    for (int iter = 0; iter < 20000; iter++) {
        char rel[24];
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % (sizeof(rel) - 1);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            rel[i] = alphabet[(seed >> 16) % 3];
        }
        rel[n] = '\0';
        char out[64];
        drv_err_t rc = drv_path_join("/r", rel, out, sizeof(out));
        const char *stripped = rel;
        while (*stripped == '/')
            stripped++;
        assert_int_equal(rc == DRV_OK, drv_path_is_contained(stripped));
        if (rc != DRV_OK) {
            assert_int_equal(rc, DRV_ERR_INVALID);
            continue;
        }
        assert_true(strcmp(out, "/r") == 0 || strncmp(out, "/r/", 3) == 0);
        assert_null(strstr(out, "//"));
        assert_null(strstr(out, "/../"));
        assert_null(strstr(out, "/./"));
        size_t ol = strlen(out);
        assert_false(ol >= 3 && strcmp(out + ol - 3, "/..") == 0);
        assert_false(ol >= 2 && strcmp(out + ol - 2, "/.") == 0);
        assert_true(out[ol - 1] != '/');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_table),
        cmocka_unit_test(test_clean_rejects_climbing_relative),
        cmocka_unit_test(test_clean_output_size),
        cmocka_unit_test(test_clean_very_long_input),
        cmocka_unit_test(test_join_accepts_contained),
        cmocka_unit_test(test_join_refuses_escapes),
        cmocka_unit_test(test_join_bad_arguments),
        cmocka_unit_test(test_is_contained),
        cmocka_unit_test(test_join_random_property),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
