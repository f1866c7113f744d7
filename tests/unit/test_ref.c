/* Tests for image references: Docker's normalisation (docker.io, library/, latest), registry
 * hosts with ports and IPv6, digests, canonical formatting, and every malformed reference
 * refused with a message that says which part is wrong. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "drover/ref.h"

#define HEX "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void expect_ref(const char *in, const char *domain, const char *path, const char *tag,
                       const char *digest, const char *canon)
{
    drv_image_ref_t r;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_image_ref_parse(in, &r, &err) != DRV_OK)
        fail_msg("\"%s\": %s", in, err.msg);
    assert_string_equal(r.domain, domain);
    assert_string_equal(r.path, path);
    assert_string_equal(r.tag, tag);
    assert_string_equal(r.digest, digest);
    char s[DRV_REF_STR_MAX];
    assert_string_equal(drv_image_ref_format(&r, s, sizeof(s)), canon);
    /* the canonical form parses to the same thing */
    drv_image_ref_t again;
    assert_int_equal(drv_image_ref_parse(s, &again, NULL), DRV_OK);
    assert_memory_equal(&r, &again, sizeof(r));
}

static void test_docker_hub_defaults(void **state)
{
    (void)state;
    expect_ref("busybox", "docker.io", "library/busybox", "latest", "",
               "docker.io/library/busybox:latest");
    expect_ref("busybox:1.36", "docker.io", "library/busybox", "1.36", "",
               "docker.io/library/busybox:1.36");
    expect_ref("grafana/agent:v0.39.1", "docker.io", "grafana/agent", "v0.39.1", "",
               "docker.io/grafana/agent:v0.39.1");
    expect_ref("docker.io/busybox", "docker.io", "library/busybox", "latest", "",
               "docker.io/library/busybox:latest");
    expect_ref("index.docker.io/library/alpine:3.19", "docker.io", "library/alpine", "3.19", "",
               "docker.io/library/alpine:3.19");
    drv_image_ref_t r;
    assert_int_equal(drv_image_ref_parse("alpine", &r, NULL), DRV_OK);
    assert_string_equal(drv_image_ref_api_host(&r), "registry-1.docker.io");
    assert_string_equal(drv_image_ref_manifest_ref(&r), "latest");
    char name[DRV_REF_STR_MAX];
    assert_string_equal(drv_image_ref_name(&r, name, sizeof(name)), "docker.io/library/alpine");
}

static void test_registries(void **state)
{
    (void)state;
    expect_ref("127.0.0.1:5000/busybox:1", "127.0.0.1:5000", "busybox", "1", "",
               "127.0.0.1:5000/busybox:1");
    expect_ref("localhost/app", "localhost", "app", "latest", "", "localhost/app:latest");
    expect_ref("localhost:5000/team/app", "localhost:5000", "team/app", "latest", "",
               "localhost:5000/team/app:latest");
    expect_ref("ghcr.io/org/sub/img:tag_1.2-3", "ghcr.io", "org/sub/img", "tag_1.2-3", "",
               "ghcr.io/org/sub/img:tag_1.2-3");
    expect_ref("[::1]:5000/app:2", "[::1]:5000", "app", "2", "", "[::1]:5000/app:2");
    expect_ref("Registry.Example.com/app", "Registry.Example.com", "app", "latest", "",
               "Registry.Example.com/app:latest");
    /* no domain part: "localhost:5000" alone is an image with a tag, as Docker reads it */
    expect_ref("localhost:5000", "docker.io", "library/localhost", "5000", "",
               "docker.io/library/localhost:5000");
    drv_image_ref_t r;
    assert_int_equal(drv_image_ref_parse("127.0.0.1:5000/x", &r, NULL), DRV_OK);
    assert_string_equal(drv_image_ref_api_host(&r), "127.0.0.1:5000");
}

static void test_digests(void **state)
{
    (void)state;
    expect_ref("busybox@sha256:" HEX, "docker.io", "library/busybox", "", "sha256:" HEX,
               "docker.io/library/busybox@sha256:" HEX);
    expect_ref("host:5000/app:1@sha256:" HEX, "host:5000", "app", "1", "sha256:" HEX,
               "host:5000/app:1@sha256:" HEX);
    drv_image_ref_t r;
    assert_int_equal(drv_image_ref_parse("host:5000/app:1@sha256:" HEX, &r, NULL), DRV_OK);
    assert_string_equal(drv_image_ref_manifest_ref(&r), "sha256:" HEX); /* the digest wins */
}

static void test_path_separators(void **state)
{
    (void)state;
    expect_ref("x/a.b_c__d-e---f/g", "docker.io", "x/a.b_c__d-e---f/g", "latest", "",
               "docker.io/x/a.b_c__d-e---f/g:latest");
    /* a first component with a dot is a registry, as Docker reads it */
    expect_ref("a.b/c", "a.b", "c", "latest", "", "a.b/c:latest");
}

static void expect_bad(const char *in, drv_err_t code, const char *needle)
{
    drv_image_ref_t r;
    memset(&r, 0x5a, sizeof(r));
    drv_image_ref_t before = r;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_image_ref_parse(in, &r, &err);
    if (rc != code)
        fail_msg("\"%s\": expected code %d, got %d (%s)", in ? in : "(null)", code, rc, err.msg);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("\"%s\": message \"%s\" lacks \"%s\"", in ? in : "(null)", err.msg, needle);
    assert_memory_equal(&r, &before, sizeof(r));
}

static void test_rejects(void **state)
{
    (void)state;
    expect_bad(NULL, DRV_ERR_INVALID, "empty");
    expect_bad("", DRV_ERR_INVALID, "empty");
    expect_bad("Busybox", DRV_ERR_INVALID, "must be lowercase");
    expect_bad("host:5000/App", DRV_ERR_INVALID, "must be lowercase");
    expect_bad("busy box", DRV_ERR_INVALID, "space");
    expect_bad("busybox\n", DRV_ERR_INVALID, "space");
    expect_bad("bus\xc3\xa9", DRV_ERR_INVALID, "non-ASCII");
    expect_bad("busybox:", DRV_ERR_INVALID, "tag must be");
    expect_bad("busybox:-x", DRV_ERR_INVALID, "tag must be");
    expect_bad("busybox:a/b", DRV_ERR_INVALID, "registry must be"); /* "busybox:a" is a host */
    expect_bad(":tag", DRV_ERR_INVALID, "repository name is missing");
    expect_bad("host:5000/", DRV_ERR_INVALID, "repository");
    expect_bad("host:5000//app", DRV_ERR_INVALID, "repository path");
    expect_bad("app/", DRV_ERR_INVALID, "repository path");
    expect_bad("-app", DRV_ERR_INVALID, "repository path");
    expect_bad("app-", DRV_ERR_INVALID, "repository path");
    expect_bad("a..b", DRV_ERR_INVALID, "repository path");
    expect_bad("a___b", DRV_ERR_INVALID, "repository path");
    expect_bad("host:0/app", DRV_ERR_INVALID, "registry must be");
    expect_bad("host:70000/app", DRV_ERR_INVALID, "registry must be");
    expect_bad("host:/app", DRV_ERR_INVALID, "registry must be");
    expect_bad("-host.com/app", DRV_ERR_INVALID, "registry must be");
    expect_bad("ho_st.com/app", DRV_ERR_INVALID, "registry must be");
    expect_bad("[::1/app", DRV_ERR_INVALID, "registry must be");
    expect_bad("busybox@sha256:abc", DRV_ERR_INVALID, "64 hex digits");
    expect_bad("busybox@", DRV_ERR_INVALID, "digest");
    expect_bad("busybox@sha512:" HEX HEX, DRV_ERR_UNSUPPORTED, "not supported");
    expect_bad("a@sha256:" HEX "@sha256:" HEX, DRV_ERR_INVALID, "digest");
    /* the message quotes the input, without raw control characters */
    drv_image_ref_t r;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_image_ref_parse("Evil\x1b[2J", &r, &err), DRV_ERR_INVALID);
    assert_null(strchr(err.msg, '\x1b'));
    assert_non_null(strstr(err.msg, "image \"Evil?[2J\""));
}

static void test_lengths(void **state)
{
    (void)state;
    char in[600];
    /* a 128-character tag is fine, 129 is not */
    memset(in, 0, sizeof(in));
    memcpy(in, "app:", 4);
    memset(in + 4, 't', 128);
    drv_image_ref_t r;
    assert_int_equal(drv_image_ref_parse(in, &r, NULL), DRV_OK);
    in[4 + 128] = 't';
    expect_bad(in, DRV_ERR_INVALID, "tag must be 1-128");
    /* the whole name (domain/path) at most 255 characters */
    memset(in, 0, sizeof(in));
    memcpy(in, "h.io/", 5);
    memset(in + 5, 'a', 250);
    assert_int_equal(drv_image_ref_parse(in, &r, NULL), DRV_OK);
    in[5 + 250] = 'a';
    expect_bad(in, DRV_ERR_INVALID, "255 characters");
    /* docker.io adds library/: counted too */
    memset(in, 0, sizeof(in));
    memset(in, 'a', 240);
    expect_bad(in, DRV_ERR_INVALID, "255 characters");
    memset(in, 'a', sizeof(in) - 1);
    in[sizeof(in) - 1] = '\0';
    expect_bad(in, DRV_ERR_INVALID, "too long");
}

static void test_format_cuts(void **state)
{
    (void)state;
    drv_image_ref_t r;
    assert_int_equal(drv_image_ref_parse("busybox", &r, NULL), DRV_OK);
    char small[10];
    drv_image_ref_format(&r, small, sizeof(small));
    assert_string_equal(small, "docker.io");
    drv_image_ref_format(&r, small, 0); /* no write at all */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docker_hub_defaults),
        cmocka_unit_test(test_registries),
        cmocka_unit_test(test_digests),
        cmocka_unit_test(test_path_separators),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_format_cuts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
