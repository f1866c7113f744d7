/* Tests for OCI/Docker manifests, indexes and image configs: what registries really send
 * parses; hostile or broken documents are refused with the field named; platform parsing and
 * the variant-aware choice of an index entry (arm/v7 takes v6, arm64 takes no variant). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/oci.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static const char oci_manifest[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D1
    "\",\"size\":1234},"
    "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" D2
    "\",\"size\":1084720},"
    "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" D3
    "\",\"size\":0,\"annotations\":{\"a\":\"b\"}}]}";

static const char docker_manifest[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
    "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"size\":1469,"
    "\"digest\":\"" D1 "\"},"
    "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
    "\"size\":2591575,\"digest\":\"" D2 "\"}]}";

static void test_oci_manifest(void **state)
{
    (void)state;
    drv_oci_manifest_t m;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_oci_manifest_parse(oci_manifest, strlen(oci_manifest), NULL, &m, &err),
                     DRV_OK);
    assert_int_equal(m.kind, DRV_OCI_MANIFEST);
    assert_string_equal(m.media_type, DRV_MT_OCI_MANIFEST);
    assert_int_equal(m.config.size, 1234);
    assert_int_equal(m.n_entries, 2);
    assert_int_equal(m.entries[0].size, 1084720);
    char s[DRV_DIGEST_STR_MAX];
    assert_string_equal(drv_digest_format(&m.entries[1].digest, s), D3);
    drv_oci_manifest_free(&m);
    drv_oci_manifest_free(&m); /* twice is harmless */
}

static void test_docker_manifest(void **state)
{
    (void)state;
    drv_oci_manifest_t m;
    assert_int_equal(
        drv_oci_manifest_parse(docker_manifest, strlen(docker_manifest), NULL, &m, NULL), DRV_OK);
    assert_int_equal(m.kind, DRV_OCI_MANIFEST);
    assert_string_equal(m.media_type, DRV_MT_DOCKER_MANIFEST);
    assert_int_equal(m.n_entries, 1);
    drv_oci_manifest_free(&m);
}

static void test_kind_from_content_type_or_keys(void **state)
{
    (void)state;
    /* no mediaType in the body: Content-Type decides, parameters ignored */
    const char *idx = "{\"schemaVersion\":2,\"manifests\":[]}";
    drv_oci_manifest_t m;
    assert_int_equal(
        drv_oci_manifest_parse(idx, strlen(idx), DRV_MT_DOCKER_LIST "; charset=utf-8", &m, NULL),
        DRV_OK);
    assert_int_equal(m.kind, DRV_OCI_INDEX);
    assert_string_equal(m.media_type, DRV_MT_DOCKER_LIST);
    drv_oci_manifest_free(&m);
    /* neither: the keys decide */
    assert_int_equal(drv_oci_manifest_parse(idx, strlen(idx), "application/json", &m, NULL),
                     DRV_OK);
    assert_int_equal(m.kind, DRV_OCI_INDEX);
    drv_oci_manifest_free(&m);
    const char *man =
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" DRV_MT_OCI_CONFIG "\",\"digest\":\"" D1
        "\",\"size\":1},\"layers\":[{\"mediaType\":"
        "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" D2 "\",\"size\":1}]}";
    assert_int_equal(drv_oci_manifest_parse(man, strlen(man), NULL, &m, NULL), DRV_OK);
    assert_int_equal(m.kind, DRV_OCI_MANIFEST);
    drv_oci_manifest_free(&m);
}

static const char oci_index[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":["
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1
    "\",\"size\":10,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D2
    "\",\"size\":11,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D3
    "\",\"size\":12,\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v6\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1
    "\",\"size\":13,\"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"},"
    "\"annotations\":{\"vnd.docker.reference.type\":\"attestation-manifest\"}}]}";

static const char *selected(const char *index_json, const char *platform, drv_err_t *rc,
                            drv_error_t *err)
{
    static char out[DRV_DIGEST_STR_MAX];
    drv_oci_manifest_t m;
    drv_platform_t p;
    assert_int_equal(drv_platform_parse(platform, &p, NULL), DRV_OK);
    assert_int_equal(drv_oci_manifest_parse(index_json, strlen(index_json), NULL, &m, NULL),
                     DRV_OK);
    const drv_oci_descriptor_t *d = NULL;
    *rc = drv_oci_index_select(&m, &p, &d, err);
    out[0] = '\0';
    if (*rc == DRV_OK)
        drv_digest_format(&d->digest, out);
    drv_oci_manifest_free(&m);
    return out;
}

static void test_index_select(void **state)
{
    (void)state;
    drv_err_t rc;
    drv_error_t err = DRV_ERROR_INIT;
    assert_string_equal(selected(oci_index, "linux/amd64", &rc, &err), D1);
    /* arm64 (= arm64/v8) takes an entry without a variant */
    assert_string_equal(selected(oci_index, "linux/arm64", &rc, &err), D2);
    assert_string_equal(selected(oci_index, "linux/aarch64", &rc, &err), D2);
    /* arm/v7 takes v6 when there is no v7 */
    assert_string_equal(selected(oci_index, "linux/arm/v7", &rc, &err), D3);
    assert_string_equal(selected(oci_index, "linux/armhf", &rc, &err), D3);
    assert_string_equal(selected(oci_index, "linux/arm/v6", &rc, &err), D3);
    /* but v5 cannot run v6 */
    assert_string_equal(selected(oci_index, "linux/arm/v5", &rc, &err), "");
    assert_int_equal(rc, DRV_ERR_NOTFOUND);
    assert_string_equal(err.msg, "no image for platform linux/arm/v5 in the index (has: "
                                 "linux/amd64, linux/arm64, linux/arm/v6, unknown/unknown)");
    assert_string_equal(selected(oci_index, "windows/amd64", &rc, &err), "");
    assert_int_equal(rc, DRV_ERR_NOTFOUND);
}

static void test_index_select_prefers_exact(void **state)
{
    (void)state;
    const char *idx =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
        "\"manifests\":["
        "{\"mediaType\":\"" DRV_MT_OCI_MANIFEST "\",\"digest\":\"" D1
        "\",\"size\":1,\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v6\"}}"
        ","
        "{\"mediaType\":\"" DRV_MT_OCI_MANIFEST "\",\"digest\":\"" D2
        "\",\"size\":1,\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}}"
        ","
        "{\"mediaType\":\"" DRV_MT_OCI_MANIFEST "\",\"digest\":\"" D3
        "\",\"size\":1,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":"
        "\"v8\"}}]}";
    drv_err_t rc;
    assert_string_equal(selected(idx, "linux/arm/v7", &rc, NULL), D2);
    assert_string_equal(selected(idx, "linux/arm/v6", &rc, NULL), D1);
    assert_string_equal(selected(idx, "linux/arm64/v8", &rc, NULL), D3);
    assert_string_equal(selected(idx, "linux/arm64", &rc, NULL), D3);
    /* a plain "arm" index entry counts as v7 */
    const char *bare =
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" DRV_MT_DOCKER_MANIFEST
        "\",\"digest\":\"" D1 "\",\"size\":1,\"platform\":{\"architecture\":\"arm\","
        "\"os\":\"linux\"}}]}";
    assert_string_equal(selected(bare, "linux/arm/v7", &rc, NULL), D1);
    assert_string_equal(selected(bare, "linux/arm/v6", &rc, NULL), "");
    /* entries without a platform, or nested indexes, are never chosen */
    const char *odd = "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" DRV_MT_OCI_MANIFEST
                      "\",\"digest\":\"" D1 "\",\"size\":1},{\"mediaType\":\"" DRV_MT_OCI_INDEX
                      "\",\"digest\":\"" D2 "\",\"size\":1,\"platform\":{\"architecture\":"
                      "\"amd64\",\"os\":\"linux\"}}]}";
    drv_error_t err = DRV_ERROR_INIT;
    assert_string_equal(selected(odd, "linux/amd64", &rc, &err), "");
    assert_int_equal(rc, DRV_ERR_NOTFOUND);
}

static void expect_manifest_error(const char *json, drv_err_t code, const char *needle)
{
    drv_oci_manifest_t m;
    memset(&m, 0x77, sizeof(m));
    drv_oci_manifest_t before = m;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_oci_manifest_parse(json, strlen(json), NULL, &m, &err);
    if (rc != code)
        fail_msg("%s: expected %d, got %d (%s)", json, code, rc, err.msg);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
    assert_memory_equal(&m, &before, sizeof(m));
}

#define CFG "\"config\":{\"mediaType\":\"" DRV_MT_OCI_CONFIG "\",\"digest\":\"" D1 "\",\"size\":5}"
#define LAYER(extra)                                                                               \
    "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" D2              \
    "\",\"size\":5" extra "}"

static void test_manifest_rejects(void **state)
{
    (void)state;
    expect_manifest_error("", DRV_ERR_INVALID, "not valid JSON");
    expect_manifest_error("{\"schemaVersion\":2", DRV_ERR_INVALID, "not valid JSON");
    expect_manifest_error("[]", DRV_ERR_INVALID, "must be a JSON object");
    expect_manifest_error("{}", DRV_ERR_INVALID, "schemaVersion: required");
    expect_manifest_error("{\"schemaVersion\":1,\"fsLayers\":[]}", DRV_ERR_UNSUPPORTED, "schema 1");
    expect_manifest_error("{\"schemaVersion\":3}", DRV_ERR_UNSUPPORTED, "only 2");
    expect_manifest_error("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.cncf.helm.chart\"}",
                          DRV_ERR_UNSUPPORTED, "not an image manifest or index");
    expect_manifest_error("{\"schemaVersion\":2,\"mediaType\":5}", DRV_ERR_INVALID,
                          "mediaType: must be a string");
    expect_manifest_error("{\"schemaVersion\":2}", DRV_ERR_INVALID, "neither only");
    expect_manifest_error("{\"schemaVersion\":2,\"mediaType\":\"" DRV_MT_OCI_MANIFEST
                          "\",\"layers\":[" LAYER("") "]}",
                          DRV_ERR_INVALID, "config: required");
    expect_manifest_error("{\"schemaVersion\":2,\"mediaType\":\"" DRV_MT_OCI_MANIFEST "\"," CFG "}",
                          DRV_ERR_INVALID, "layers: required");
    expect_manifest_error("{\"schemaVersion\":2,\"mediaType\":\"" DRV_MT_OCI_MANIFEST "\"," CFG
                          ",\"layers\":{}}",
                          DRV_ERR_INVALID, "layers: must be an array");
    expect_manifest_error("{\"schemaVersion\":2,\"mediaType\":\"" DRV_MT_OCI_MANIFEST "\"," CFG
                          ",\"layers\":[]}",
                          DRV_ERR_INVALID, "layers: must not be empty");
    expect_manifest_error("{\"schemaVersion\":2,\"mediaType\":\"" DRV_MT_OCI_MANIFEST "\"," CFG
                          ",\"layers\":[" LAYER("") ",5]}",
                          DRV_ERR_INVALID, "layers[1]: must be an object");
    expect_manifest_error(
        "{\"schemaVersion\":2,\"mediaType\":\"" DRV_MT_OCI_MANIFEST "\"," CFG
        ",\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":"
        "\"sha256:12\",\"size\":1}]}",
        DRV_ERR_INVALID, "layers[0].digest: digest \"sha256:12\"");
    expect_manifest_error(
        "{\"schemaVersion\":2,\"mediaType\":\"" DRV_MT_OCI_MANIFEST "\"," CFG
        ",\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" D2
        "\",\"size\":-1}]}",
        DRV_ERR_INVALID, "layers[0].size: must be a non-negative integer");
    expect_manifest_error(
        "{\"schemaVersion\":2,\"mediaType\":\"" DRV_MT_OCI_MANIFEST "\"," CFG
        ",\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" D2
        "\",\"size\":1.5}]}",
        DRV_ERR_INVALID, "layers[0].size");
    expect_manifest_error(
        "{\"schemaVersion\":2,\"mediaType\":\"" DRV_MT_OCI_MANIFEST "\"," CFG
        ",\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" D2
        "\",\"size\":1e300}]}",
        DRV_ERR_INVALID, "layers[0].size");
    expect_manifest_error("{\"schemaVersion\":2,\"mediaType\":\"" DRV_MT_OCI_MANIFEST "\"," CFG
                          ",\"layers\":[{\"digest\":\"" D2 "\",\"size\":1}]}",
                          DRV_ERR_INVALID, "layers[0].mediaType: required");
    expect_manifest_error(
        "{\"schemaVersion\":2,\"mediaType\":\"" DRV_MT_OCI_MANIFEST "\"," CFG
        ",\"layers\":[{\"mediaType\":\"application/x-tar\",\"digest\":\"" D2 "\",\"size\":1}]}",
        DRV_ERR_UNSUPPORTED, "layers[0].mediaType: \"application/x-tar\" is not a supported");
    expect_manifest_error(
        "{\"schemaVersion\":2,\"mediaType\":\"" DRV_MT_OCI_MANIFEST
        "\",\"config\":{\"mediaType\":\"application/vnd.cncf.helm.config.v1+json\",\"digest\":\"" D1
        "\",\"size\":5},\"layers\":[" LAYER("") "]}",
        DRV_ERR_UNSUPPORTED, "not a container image config");
    expect_manifest_error("{\"schemaVersion\":2,\"mediaType\":\"" DRV_MT_OCI_MANIFEST
                          "\",\"config\":{\"mediaType\":\"" DRV_MT_OCI_CONFIG "\",\"digest\":\"" D1
                          "\",\"size\":4194305},\"layers\":[" LAYER("") "]}",
                          DRV_ERR_TOOBIG, "config.size");
    expect_manifest_error(
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" DRV_MT_OCI_MANIFEST
        "\",\"digest\":\"" D1 "\",\"size\":1,\"platform\":{\"os\":\"linux\"}}]}",
        DRV_ERR_INVALID, "manifests[0].platform.architecture: required");
    expect_manifest_error(
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" DRV_MT_OCI_MANIFEST
        "\",\"digest\":\"" D1 "\",\"size\":1,\"platform\":\"linux\"}]}",
        DRV_ERR_INVALID, "manifests[0].platform: must be an object");
    char longmt[300];
    snprintf(longmt, sizeof(longmt), "%s", "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"");
    size_t n = strlen(longmt);
    memset(longmt + n, 'x', 200);
    snprintf(longmt + n + 200, sizeof(longmt) - n - 200, "\",\"digest\":\"x\",\"size\":1}]}");
    expect_manifest_error(longmt, DRV_ERR_INVALID, "manifests[0].mediaType: longer than");
}

static void test_manifest_caps(void **state)
{
    (void)state;
    /* 257 layers: over the cap, refused before any allocation per layer */
    size_t cap = 300 * 200 + 1024;
    char *json = malloc(cap);
    assert_non_null(json);
    size_t n = (size_t)snprintf(json, cap,
                                "{\"schemaVersion\":2,\"mediaType\":\"" DRV_MT_OCI_MANIFEST
                                "\"," CFG ",\"layers\":[");
    for (int i = 0; i < DRV_OCI_MAX_LAYERS + 1; i++)
        n += (size_t)snprintf(json + n, cap - n, "%s" LAYER(""), i ? "," : "");
    snprintf(json + n, cap - n, "]}");
    expect_manifest_error(json, DRV_ERR_TOOBIG, "layers: 257 entries, more than the 256 allowed");
    free(json);
    /* more than 4 MiB of text: refused without parsing */
    size_t big = DRV_OCI_MANIFEST_MAX_BYTES + 1;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, ' ', big);
    drv_oci_manifest_t m;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_oci_manifest_parse(huge, big, NULL, &m, &err), DRV_ERR_TOOBIG);
    free(huge);
    /* deep nesting does not crash */
    char deep[20000];
    memset(deep, '[', sizeof(deep));
    assert_int_equal(drv_oci_manifest_parse(deep, sizeof(deep), NULL, &m, &err), DRV_ERR_INVALID);
}

static void test_platform_parse(void **state)
{
    (void)state;
    drv_platform_t p;
    char s[DRV_PLATFORM_STR_MAX];
    struct {
        const char *in, *out;
    } ok[] = {
        {"linux/amd64", "linux/amd64"},       {"linux/x86_64", "linux/amd64"},
        {"linux/arm64", "linux/arm64/v8"},    {"linux/aarch64", "linux/arm64/v8"},
        {"linux/arm64/v8", "linux/arm64/v8"}, {"linux/arm", "linux/arm/v7"},
        {"linux/armhf", "linux/arm/v7"},      {"linux/armel", "linux/arm/v6"},
        {"linux/arm/v6", "linux/arm/v6"},     {"linux/arm/6", "linux/arm/v6"},
        {"Linux/ARM64", "linux/arm64/v8"},    {"linux/riscv64", "linux/riscv64"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        drv_error_t err = DRV_ERROR_INIT;
        if (drv_platform_parse(ok[i].in, &p, &err) != DRV_OK)
            fail_msg("%s: %s", ok[i].in, err.msg);
        assert_string_equal(drv_platform_format(&p, s, sizeof(s)), ok[i].out);
    }
    const char *bad[] = {NULL,
                         "",
                         "linux",
                         "linux/",
                         "/amd64",
                         "linux/arm/",
                         "a/b/c/d",
                         "linux/am d64",
                         "linux/amd64;rm",
                         "linux/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        drv_error_t err = DRV_ERROR_INIT;
        if (drv_platform_parse(bad[i], &p, &err) != DRV_ERR_INVALID)
            fail_msg("%s accepted", bad[i] ? bad[i] : "(null)");
        assert_non_null(strstr(err.msg, "platform"));
    }
    drv_platform_default(&p);
    assert_string_equal(p.os, "linux");
#if defined(__x86_64__)
    assert_string_equal(drv_platform_format(&p, s, sizeof(s)), "linux/amd64");
#elif defined(__aarch64__)
    assert_string_equal(drv_platform_format(&p, s, sizeof(s)), "linux/arm64/v8");
#endif
}

static void test_platform_match(void **state)
{
    (void)state;
    drv_platform_t want, have;
    assert_int_equal(drv_platform_parse("linux/arm/v7", &want, NULL), DRV_OK);
    memset(&have, 0, sizeof(have));
    snprintf(have.os, sizeof(have.os), "linux");
    snprintf(have.arch, sizeof(have.arch), "arm");
    snprintf(have.variant, sizeof(have.variant), "v7");
    int exact = drv_platform_match(&want, &have);
    snprintf(have.variant, sizeof(have.variant), "v6");
    int v6 = drv_platform_match(&want, &have);
    snprintf(have.variant, sizeof(have.variant), "v8");
    int v8 = drv_platform_match(&want, &have);
    assert_true(exact > v6);
    assert_true(v6 >= 0);
    assert_int_equal(v8, -1);
    snprintf(have.arch, sizeof(have.arch), "arm64");
    assert_int_equal(drv_platform_match(&want, &have), -1);
}

static const char config_json[] =
    "{\"architecture\":\"arm64\",\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/bin\",\"A=b=c\"],"
    "\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo hi\"],\"WorkingDir\":\"/srv\","
    "\"User\":\"1000:1000\",\"Labels\":{\"x\":\"y\"}},\"rootfs\":{\"type\":\"layers\","
    "\"diff_ids\":[\"" D1 "\",\"" D2 "\"]},\"history\":[]}";

static void test_config(void **state)
{
    (void)state;
    drv_oci_config_t c;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_oci_config_parse(config_json, strlen(config_json), &c, &err), DRV_OK);
    assert_string_equal(c.platform.arch, "arm64");
    assert_int_equal(c.n_env, 2);
    assert_string_equal(c.env[1], "A=b=c");
    assert_null(c.env[2]);
    assert_int_equal(c.n_entrypoint, 2);
    assert_string_equal(c.entrypoint[0], "/bin/sh");
    assert_int_equal(c.n_cmd, 1);
    assert_string_equal(c.cmd[0], "echo hi");
    assert_string_equal(c.working_dir, "/srv");
    assert_string_equal(c.user, "1000:1000");
    assert_int_equal(c.n_diff_ids, 2);
    drv_oci_config_free(&c);
    drv_oci_config_free(&c);

    /* a minimal config: empty strings, NULL vectors */
    const char *min = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":null}";
    assert_int_equal(drv_oci_config_parse(min, strlen(min), &c, &err), DRV_OK);
    assert_string_equal(c.working_dir, "");
    assert_string_equal(c.user, "");
    assert_null(c.cmd);
    assert_int_equal(c.n_cmd, 0);
    drv_oci_config_free(&c);
}

static void expect_config_error(const char *json, drv_err_t code, const char *needle)
{
    drv_oci_config_t c;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_oci_config_parse(json, strlen(json), &c, &err);
    if (rc != code)
        fail_msg("%s: expected %d, got %d (%s)", json, code, rc, err.msg);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
}

static void test_config_rejects(void **state)
{
    (void)state;
    expect_config_error("nope", DRV_ERR_INVALID, "not valid JSON");
    expect_config_error("{\"os\":\"linux\"}", DRV_ERR_INVALID, "architecture: required");
    expect_config_error("{\"os\":\"linux\",\"architecture\":\"amd64\",\"config\":[]}",
                        DRV_ERR_INVALID, "config: must be an object");
    expect_config_error(
        "{\"os\":\"linux\",\"architecture\":\"amd64\",\"config\":{\"Env\":\"A=b\"}}",
        DRV_ERR_INVALID, "config.Env: must be an array of strings");
    expect_config_error("{\"os\":\"linux\",\"architecture\":\"amd64\",\"config\":{\"Env\":[1]}}",
                        DRV_ERR_INVALID, "config.Env[0]: must be a string");
    expect_config_error(
        "{\"os\":\"linux\",\"architecture\":\"amd64\",\"config\":{\"Env\":[\"NOVALUE\"]}}",
        DRV_ERR_INVALID, "config.Env[0]: must be KEY=value");
    expect_config_error(
        "{\"os\":\"linux\",\"architecture\":\"amd64\",\"config\":{\"Cmd\":[\"a\",null]}}",
        DRV_ERR_INVALID, "config.Cmd[1]: must be a string");
    expect_config_error("{\"os\":\"linux\",\"architecture\":\"amd64\",\"config\":{\"User\":0}}",
                        DRV_ERR_INVALID, "config.User: must be a string");
    expect_config_error(
        "{\"os\":\"linux\",\"architecture\":\"amd64\",\"rootfs\":{\"diff_ids\":[\"x\"]}}",
        DRV_ERR_INVALID, "rootfs.diff_ids[0]");
    size_t big = DRV_OCI_CONFIG_MAX_BYTES + 1;
    char *huge = calloc(1, big);
    assert_non_null(huge);
    drv_oci_config_t c;
    assert_int_equal(drv_oci_config_parse(huge, big, &c, NULL), DRV_ERR_TOOBIG);
    free(huge);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oci_manifest),
        cmocka_unit_test(test_docker_manifest),
        cmocka_unit_test(test_kind_from_content_type_or_keys),
        cmocka_unit_test(test_index_select),
        cmocka_unit_test(test_index_select_prefers_exact),
        cmocka_unit_test(test_manifest_rejects),
        cmocka_unit_test(test_manifest_caps),
        cmocka_unit_test(test_platform_parse),
        cmocka_unit_test(test_platform_match),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_config_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
