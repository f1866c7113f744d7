/* Registry mirrors (agent/image/mirror.c): which sources an image is pulled from, in which order,
 * and what rewrites make of its repository. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "image/mirror.h"

static drv_mirror_conf_t mirror(const char *registry, const char *ep1, const char *ep2)
{
    drv_mirror_conf_t m;
    memset(&m, 0, sizeof(m));
    memcpy(m.registry, registry, strlen(registry) + 1);
    const char *eps[] = {ep1, ep2};
    for (size_t i = 0; i < 2; i++)
        if (eps[i])
            assert_true(drv_mirror_parse_endpoint(eps[i], &m.endpoints[m.n_endpoints++], NULL, 0));
    return m;
}

static void add_rewrite(drv_mirror_conf_t *m, const char *pattern, const char *replace)
{
    assert_true(drv_mirror_check_rewrite(pattern, replace, NULL, 0));
    drv_mirror_rewrite_t *rw = &m->rewrites[m->n_rewrites++];
    memcpy(rw->pattern, pattern, strlen(pattern) + 1);
    memcpy(rw->replace, replace, strlen(replace) + 1);
}

static void sources(const drv_mirror_conf_t *ms, size_t n, const char *image,
                    drv_mirror_source_t *out, size_t *n_out)
{
    drv_image_ref_t ref;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_image_ref_parse(image, &ref, &err), DRV_OK);
    assert_int_equal(drv_mirror_sources(ms, n, &ref, out, n_out, &err), DRV_OK);
}

static void test_endpoints_then_upstream(void **state)
{
    drv_mirror_conf_t ms[] = {
        mirror("docker.io", "http://127.0.0.1:5000", "https://m.example/v2/")};
    drv_mirror_source_t s[DRV_MIRROR_MAX_SOURCES];
    size_t n = 0;
    sources(ms, 1, "mysql:8.0", s, &n);
    assert_int_equal(n, 3);
    assert_string_equal(s[0].ref.domain, "127.0.0.1:5000");
    assert_string_equal(s[0].ref.path, "library/mysql"); /* as K3s: the path is the registry's */
    assert_string_equal(s[0].ref.tag, "8.0");
    assert_true(s[0].plain_http);
    assert_false(s[0].upstream);
    assert_string_equal(s[1].ref.domain, "m.example");
    assert_false(s[1].plain_http);
    assert_string_equal(s[2].ref.domain, "docker.io");
    assert_true(s[2].upstream);

    /* Another registry has no mirror: only itself. A digest is kept. */
    sources(ms, 1,
            "quay.io/prometheus/node-exporter@sha256:"
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            s, &n);
    assert_int_equal(n, 1);
    assert_true(s[0].upstream);
    assert_string_equal(s[0].ref.domain, "quay.io");

    /* The API host names docker.io too. */
    drv_mirror_conf_t api[] = {mirror("registry-1.docker.io", "http://127.0.0.1:5000", NULL)};
    sources(api, 1, "busybox", s, &n);
    assert_int_equal(n, 2);
    assert_string_equal(s[0].ref.domain, "127.0.0.1:5000");
}

static void test_wildcard_and_exact(void **state)
{
    drv_mirror_conf_t ms[] = {mirror("*", "http://127.0.0.1:5000", NULL),
                              mirror("ghcr.io", "https://ghcr-cache.example", NULL)};
    drv_mirror_source_t s[DRV_MIRROR_MAX_SOURCES];
    size_t n = 0;
    sources(ms, 2, "ghcr.io/home-assistant/home-assistant:2024.10.1", s, &n);
    assert_int_equal(n, 2);
    assert_string_equal(s[0].ref.domain, "ghcr-cache.example"); /* the registry's own entry wins */
    assert_string_equal(s[0].ref.path, "home-assistant/home-assistant");
    sources(ms, 2, "cr.fluentbit.io/fluent/fluent-bit:3.1.9", s, &n);
    assert_int_equal(n, 2);
    assert_string_equal(s[0].ref.domain, "127.0.0.1:5000");
    assert_string_equal(s[0].ref.path, "fluent/fluent-bit");
    assert_string_equal(s[1].ref.domain, "cr.fluentbit.io");
}

static void test_mirror_of_itself(void **state)
{
    /* Declaring a plain-HTTP registry as its own mirror (K3s's way) gives one source. */
    drv_mirror_conf_t ms[] = {mirror("127.0.0.1:5000", "http://127.0.0.1:5000", NULL)};
    drv_mirror_source_t s[DRV_MIRROR_MAX_SOURCES];
    size_t n = 0;
    sources(ms, 1, "127.0.0.1:5000/app:1", s, &n);
    assert_int_equal(n, 1);
    assert_true(s[0].plain_http);
    assert_false(s[0].upstream);
    const char *hosts[4];
    assert_int_equal(drv_mirror_plain_hosts(ms, 1, hosts, 4), 1);
    assert_string_equal(hosts[0], "127.0.0.1:5000");
}

static void test_rewrites(void **state)
{
    drv_mirror_conf_t ms[] = {mirror("docker.io", "http://127.0.0.1:5000", NULL)};
    add_rewrite(&ms[0], "^library/(.*)", "hub/${1}");
    add_rewrite(&ms[0], "^(rancher)/(.*)$", "mirrored/$1-$2$$");
    drv_mirror_source_t s[DRV_MIRROR_MAX_SOURCES];
    size_t n = 0;
    sources(ms, 1, "wordpress:6.2.1-apache", s, &n);
    assert_string_equal(s[0].ref.path, "hub/wordpress");
    assert_string_equal(s[1].ref.path, "library/wordpress"); /* never rewritten upstream */
    sources(ms, 1, "someone/library/x:1", s, &n);
    assert_string_equal(s[0].ref.path, "someone/library/x"); /* anchored: no match */

    /* A rewrite to something that is no repository name is an error naming it. */
    drv_image_ref_t ref;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_image_ref_parse("rancher/k3s:v1", &ref, &err), DRV_OK);
    assert_int_equal(drv_mirror_sources(ms, 1, &ref, s, &n, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "not a repository name"));

    char why[256];
    assert_false(drv_mirror_check_rewrite("(a", "x", why, sizeof(why)));
    assert_false(drv_mirror_check_rewrite("a", "$1", why, sizeof(why)));
    assert_non_null(strstr(why, "group $1, the pattern has 0"));
    assert_false(drv_mirror_check_rewrite("(a)", "$", why, sizeof(why)));
}

static void test_endpoint_forms(void **state)
{
    drv_mirror_endpoint_t e;
    char why[256];
    assert_true(drv_mirror_parse_endpoint("http://[::1]:5000", &e, why, sizeof(why)));
    assert_string_equal(e.host, "[::1]:5000");
    assert_true(drv_mirror_parse_endpoint("https://registry.example", &e, why, sizeof(why)));
    assert_false(e.plain_http);
    assert_false(drv_mirror_parse_endpoint("ftp://x", &e, why, sizeof(why)));
    assert_false(drv_mirror_parse_endpoint("http://", &e, why, sizeof(why)));
    assert_false(drv_mirror_parse_endpoint("http://::1:5000", &e, why, sizeof(why)));
    assert_false(drv_mirror_parse_endpoint("http://u@h:5000", &e, why, sizeof(why)));
    assert_false(drv_mirror_parse_endpoint("http://h:0", &e, why, sizeof(why)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoints_then_upstream), cmocka_unit_test(test_wildcard_and_exact),
        cmocka_unit_test(test_mirror_of_itself),        cmocka_unit_test(test_rewrites),
        cmocka_unit_test(test_endpoint_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
