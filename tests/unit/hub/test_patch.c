/* The hub's PATCH formats (hub/api/patch.c) against the patches kubectl sends: client-side
 * apply of an edited manifest (captured from kubectl 1.31 -v=9), scale, label, rollout undo's
 * JSON Patch, and the strategic merge patch directives; malformed patches are 400s (PROTO),
 * patches that cannot apply 422s (INVALID), and neither touches the target. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/patch.h"
#include "api/patchmeta.h"
#include "drover/cleanup.h"
#include "drover/fmt.h"

#define DEPLOY "io.k8s.api.apps.v1.Deployment"

/* The live Deployment kubectl applied first: two env vars, two ports, server-set fields. */
static const char *LIVE =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
    "\"namespace\":\"default\",\"uid\":\"u1\",\"labels\":{\"app\":\"web\",\"tier\":\"a\"},"
    "\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":\"old\"}},"
    "\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},"
    "\"strategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{\"maxSurge\":\"25%\","
    "\"maxUnavailable\":\"25%\"}},"
    "\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{"
    "\"name\":\"web\",\"image\":\"nginx:1.25\",\"imagePullPolicy\":\"IfNotPresent\","
    "\"env\":[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"B\",\"value\":\"2\"}],"
    "\"ports\":[{\"containerPort\":80,\"protocol\":\"TCP\"},{\"containerPort\":443,"
    "\"protocol\":\"TCP\"}]}]}}}}";

static drv_err_t run(drv_api_patch_type_t type, const char *target, const char *patch, cJSON **out,
                     drv_error_t *err)
{
    cJSON *t = cJSON_Parse(target);
    _cleanup_cjson_ cJSON *p = cJSON_Parse(patch);
    assert_non_null(t);
    assert_non_null(p);
    cJSON *before = cJSON_Duplicate(t, true);
    cJSON *orig = t;
    drv_err_t e = drv_api_patch_apply(type, DEPLOY, &t, p, err);
    if (e != DRV_OK) {
        /* untouched on failure */
        assert_ptr_equal(t, orig);
        assert_true(cJSON_Compare(t, before, true));
    }
    cJSON_Delete(before);
    *out = t;
    return e;
}

/* Asserts that patching target gives want (JSON; lists compared in order). */
static void ok(drv_api_patch_type_t type, const char *target, const char *patch, const char *want)
{
    drv_error_t err = DRV_ERROR_INIT;
    _cleanup_cjson_ cJSON *got = NULL;
    drv_err_t e = run(type, target, patch, &got, &err);
    if (e != DRV_OK)
        fail_msg("patch failed: %s", drv_error_msg(&err));
    _cleanup_cjson_ cJSON *w = cJSON_Parse(want);
    assert_non_null(w);
    if (!cJSON_Compare(got, w, true)) {
        _cleanup_free_ char *g = cJSON_PrintUnformatted(got);
        fail_msg("got  %s\nwant %s", g, want);
    }
}

/* Asserts that the patch fails with code and a message containing msg. */
static void bad(drv_api_patch_type_t type, const char *target, const char *patch, drv_err_t code,
                const char *msg)
{
    drv_error_t err = DRV_ERROR_INIT;
    _cleanup_cjson_ cJSON *got = NULL;
    drv_err_t e = run(type, target, patch, &got, &err);
    if (e != code || !strstr(drv_error_msg(&err), msg))
        fail_msg("want %s \"%s\", got %s \"%s\"", drv_strerror(code), msg, drv_strerror(e),
                 drv_error_msg(&err));
}

/* A field of the result of a successful patch. */
static cJSON *patched_at(drv_api_patch_type_t type, const char *target, const char *patch,
                         cJSON **doc)
{
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t e = run(type, target, patch, doc, &err);
    if (e != DRV_OK)
        fail_msg("patch failed: %s", drv_error_msg(&err));
    return *doc;
}

static const cJSON *at(const cJSON *o, const char *dotted)
{
    char buf[256];
    drv_fmt_cut(buf, sizeof(buf), "%s", dotted);
    const cJSON *cur = o;
    for (char *tok = buf, *next; tok && cur; tok = next) {
        next = strchr(tok, '.');
        if (next)
            *next++ = '\0';
        char *br = strchr(tok, '[');
        if (br) {
            *br = '\0';
            cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
            cur = cJSON_GetArrayItem(cur, (int)strtol(br + 1, NULL, 10));
        } else {
            cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
        }
    }
    return cur;
}

/* kubectl apply of the manifest with env B and port 443 removed and label tier a->b, exactly
 * as kubectl 1.31 sent it. */
static void test_kubectl_apply_edit(void **state)
{
    (void)state;
    const char *patch =
        "{\"metadata\":{\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":"
        "\"new\"},\"labels\":{\"tier\":\"b\"}},\"spec\":{\"template\":{\"spec\":{"
        "\"$setElementOrder/containers\":[{\"name\":\"web\"}],\"containers\":[{"
        "\"$setElementOrder/env\":[{\"name\":\"A\"}],\"$setElementOrder/ports\":[{"
        "\"containerPort\":80}],\"env\":[{\"$patch\":\"delete\",\"name\":\"B\"}],\"name\":"
        "\"web\",\"ports\":[{\"$patch\":\"delete\",\"containerPort\":443}]}]}}}}";
    _cleanup_cjson_ cJSON *d = NULL;
    patched_at(DRV_API_PATCH_STRATEGIC, LIVE, patch, &d);
    const cJSON *c = at(d, "spec.template.spec.containers[0]");
    assert_int_equal(cJSON_GetArraySize(at(d, "spec.template.spec.containers")), 1);
    assert_string_equal(cJSON_GetStringValue(at(c, "imagePullPolicy")), "IfNotPresent");
    assert_int_equal(cJSON_GetArraySize(at(c, "env")), 1);
    assert_string_equal(cJSON_GetStringValue(at(c, "env[0].name")), "A");
    assert_int_equal(cJSON_GetArraySize(at(c, "ports")), 1);
    assert_int_equal((int)cJSON_GetNumberValue(at(c, "ports[0].containerPort")), 80);
    assert_string_equal(cJSON_GetStringValue(at(c, "ports[0].protocol")), "TCP");
    assert_string_equal(cJSON_GetStringValue(at(d, "metadata.labels.tier")), "b");
    assert_string_equal(cJSON_GetStringValue(at(d, "metadata.labels.app")), "web");
    assert_string_equal(cJSON_GetStringValue(at(d, "metadata.uid")), "u1");
    _cleanup_free_ char *s = cJSON_PrintUnformatted(d);
    assert_null(strstr(s, "$")); /* no directive survives */
}

static void test_scale_label_annotate(void **state)
{
    (void)state;
    _cleanup_cjson_ cJSON *d = NULL;
    patched_at(DRV_API_PATCH_STRATEGIC, LIVE,
               "{\"spec\":{\"replicas\":5},\"metadata\":{\"labels\":{\"color\":\"red\","
               "\"tier\":null},\"annotations\":{\"note\":\"hi\"}}}",
               &d);
    assert_int_equal((int)cJSON_GetNumberValue(at(d, "spec.replicas")), 5);
    assert_string_equal(cJSON_GetStringValue(at(d, "metadata.labels.color")), "red");
    assert_null(at(d, "metadata.labels.tier"));
    assert_string_equal(cJSON_GetStringValue(at(d, "metadata.annotations.note")), "hi");
}

static void test_list_merge_by_key(void **state)
{
    (void)state;
    const char *live = "{\"spec\":{\"template\":{\"spec\":{\"containers\":["
                       "{\"name\":\"a\",\"image\":\"x\"},{\"name\":\"b\",\"image\":\"y\"}]}}}}";
    /* merge into b, append c; a untouched */
    ok(DRV_API_PATCH_STRATEGIC, live,
       "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"b\",\"image\":\"y2\"},"
       "{\"name\":\"c\",\"image\":\"z\"}]}}}}",
       "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"x\"},"
       "{\"name\":\"b\",\"image\":\"y2\"},{\"name\":\"c\",\"image\":\"z\"}]}}}}");
    /* $patch: delete of a container */
    ok(DRV_API_PATCH_STRATEGIC, live,
       "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"$patch\":\"delete\","
       "\"name\":\"a\"}]}}}}",
       "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"b\",\"image\":\"y\"}]}}}"
       "}");
    /* $patch: replace as a list element replaces the list */
    ok(DRV_API_PATCH_STRATEGIC, live,
       "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"$patch\":\"replace\"},"
       "{\"name\":\"z\",\"image\":\"q\"}]}}}}",
       "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"z\",\"image\":\"q\"}]}}}"
       "}");
    /* $setElementOrder reorders the named elements; one it does not name keeps its place
     * relative to them in the live list (b came before c there), as upstream's
     * mergeSortedSlice interleaves */
    ok(DRV_API_PATCH_STRATEGIC,
       "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"a\"},{\"name\":\"b\"},"
       "{\"name\":\"c\"}]}}}}",
       "{\"spec\":{\"template\":{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"c\"},"
       "{\"name\":\"a\"}]}}}}",
       "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"b\"},{\"name\":\"c\"},"
       "{\"name\":\"a\"}]}}}}");
    /* a list without a strategy (tolerations) is replaced whole */
    ok(DRV_API_PATCH_STRATEGIC,
       "{\"spec\":{\"template\":{\"spec\":{\"tolerations\":[{\"key\":\"a\"},{\"key\":\"b\"}]}}}"
       "}",
       "{\"spec\":{\"template\":{\"spec\":{\"tolerations\":[{\"key\":\"c\"}]}}}}",
       "{\"spec\":{\"template\":{\"spec\":{\"tolerations\":[{\"key\":\"c\"}]}}}}");
}

static void test_retain_keys(void **state)
{
    (void)state;
    _cleanup_cjson_ cJSON *d = NULL;
    patched_at(DRV_API_PATCH_STRATEGIC, LIVE,
               "{\"spec\":{\"strategy\":{\"$retainKeys\":[\"type\"],\"type\":\"Recreate\"}}}", &d);
    assert_string_equal(cJSON_GetStringValue(at(d, "spec.strategy.type")), "Recreate");
    assert_null(at(d, "spec.strategy.rollingUpdate"));
    assert_null(at(d, "spec.strategy.$retainKeys"));
    bad(DRV_API_PATCH_STRATEGIC, LIVE,
        "{\"spec\":{\"strategy\":{\"$retainKeys\":[\"type\"],\"rollingUpdate\":{}}}}",
        DRV_ERR_PROTO, "spec.strategy: field \"rollingUpdate\" is set but not in $retainKeys");
    bad(DRV_API_PATCH_STRATEGIC, LIVE, "{\"spec\":{\"strategy\":{\"$retainKeys\":\"type\"}}}",
        DRV_ERR_PROTO, "spec.strategy: $retainKeys");
}

static void test_primitive_lists(void **state)
{
    (void)state;
    const char *live = "{\"metadata\":{\"finalizers\":[\"a\",\"b\",\"c\"]}}";
    ok(DRV_API_PATCH_STRATEGIC, live,
       "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"b\"],\"finalizers\":[\"c\","
       "\"d\"]}}",
       "{\"metadata\":{\"finalizers\":[\"a\",\"c\",\"d\"]}}");
    bad(DRV_API_PATCH_STRATEGIC, live,
        "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":\"b\"}}", DRV_ERR_PROTO,
        "metadata: $deleteFromPrimitiveList/finalizers: not a list");
}

static void test_strategic_malformed(void **state)
{
    (void)state;
    bad(DRV_API_PATCH_STRATEGIC, LIVE, "[1]", DRV_ERR_PROTO, "is a JSON object");
    bad(DRV_API_PATCH_STRATEGIC, LIVE,
        "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"web\"},{\"name\":\"x\"},"
        "{\"image\":\"y\"}]}}}}",
        DRV_ERR_PROTO, "spec.template.spec.containers: element 2 has no merge key \"name\"");
    bad(DRV_API_PATCH_STRATEGIC, LIVE, "{\"spec\":{\"$patch\":\"explode\"}}", DRV_ERR_PROTO,
        "spec: unknown $patch directive");
    bad(DRV_API_PATCH_STRATEGIC, LIVE, "{\"metadata\":{\"$frobnicate\":1}}", DRV_ERR_PROTO,
        "metadata: unknown directive \"$frobnicate\"");
    bad(DRV_API_PATCH_STRATEGIC, LIVE,
        "{\"spec\":{\"template\":{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"a\"}],"
        "\"containers\":[{\"name\":\"b\"}]}}}}",
        DRV_ERR_PROTO, "$setElementOrder/containers");
}

/* kubectl rollout undo: a JSON Patch replacing the template and the annotations. */
static void test_json_patch_rollout_undo(void **state)
{
    (void)state;
    _cleanup_cjson_ cJSON *d = NULL;
    patched_at(DRV_API_PATCH_JSON, LIVE,
               "[{\"op\":\"replace\",\"path\":\"/spec/template\",\"value\":{\"metadata\":{"
               "\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":\"web\","
               "\"image\":\"nginx:1.24\"}]}}},{\"op\":\"replace\",\"path\":"
               "\"/metadata/annotations\",\"value\":{\"deployment.kubernetes.io/revision\":"
               "\"1\"}}]",
               &d);
    assert_string_equal(cJSON_GetStringValue(at(d, "spec.template.spec.containers[0].image")),
                        "nginx:1.24");
    assert_null(at(d, "spec.template.spec.containers[0].env"));
    assert_int_equal(cJSON_GetArraySize(at(d, "metadata.annotations")), 1);
}

static void test_json_patch_ops(void **state)
{
    (void)state;
    const char *doc = "{\"a\":{\"b\":[1,2,3]},\"m~n\":1,\"x/y\":2}";
    ok(DRV_API_PATCH_JSON, doc,
       "[{\"op\":\"add\",\"path\":\"/a/b/-\",\"value\":4},{\"op\":\"add\",\"path\":\"/a/b/0\","
       "\"value\":0},{\"op\":\"remove\",\"path\":\"/m~0n\"},{\"op\":\"replace\",\"path\":"
       "\"/x~1y\",\"value\":3},{\"op\":\"copy\",\"from\":\"/a/b\",\"path\":\"/c\"},{\"op\":"
       "\"move\",\"from\":\"/c/1\",\"path\":\"/d\"},{\"op\":\"test\",\"path\":\"/d\",\"value\":1}"
       "]",
       "{\"a\":{\"b\":[0,1,2,3,4]},\"x/y\":3,\"c\":[0,2,3,4],\"d\":1}");
    bad(DRV_API_PATCH_JSON, doc,
        "[{\"op\":\"test\",\"path\":\"/a/b/0\",\"value\":1},{\"op\":\"test\",\"path\":"
        "\"/a/b/1\",\"value\":1}]",
        DRV_ERR_INVALID, "op 1 (test /a/b/1): value differs");
    /* the first op's effect is not kept when a later one fails */
    bad(DRV_API_PATCH_JSON, doc,
        "[{\"op\":\"remove\",\"path\":\"/a\"},{\"op\":\"remove\",\"path\":\"/nope\"}]",
        DRV_ERR_INVALID, "op 1 (remove /nope): path does not exist");
    bad(DRV_API_PATCH_JSON, doc, "[{\"op\":\"add\",\"path\":\"/a/b/4\",\"value\":1}]",
        DRV_ERR_INVALID, "out of range");
    bad(DRV_API_PATCH_JSON, doc,
        "[{\"op\":\"add\",\"path\":\"/a/b/99999999999999999999\",\"value\":1}]", DRV_ERR_INVALID,
        "out of range");
    bad(DRV_API_PATCH_JSON, doc, "[{\"op\":\"replace\",\"path\":\"/a/b/01\",\"value\":1}]",
        DRV_ERR_INVALID, "does not exist");
    bad(DRV_API_PATCH_JSON, doc, "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/c\"}]",
        DRV_ERR_INVALID, "into itself");
    bad(DRV_API_PATCH_JSON, doc, "[{\"op\":\"add\",\"path\":\"/q/r\",\"value\":1}]",
        DRV_ERR_INVALID, "parent does not exist");
}

static void test_json_patch_malformed(void **state)
{
    (void)state;
    const char *doc = "{\"a\":1}";
    bad(DRV_API_PATCH_JSON, doc, "{\"op\":\"add\"}", DRV_ERR_PROTO, "list of operations");
    bad(DRV_API_PATCH_JSON, doc, "[1]", DRV_ERR_PROTO, "op 0: an operation is an object");
    bad(DRV_API_PATCH_JSON, doc, "[{\"op\":\"frob\",\"path\":\"/a\"}]", DRV_ERR_PROTO,
        "unknown op");
    bad(DRV_API_PATCH_JSON, doc, "[{\"op\":\"add\",\"path\":\"a\",\"value\":1}]", DRV_ERR_PROTO,
        "path: a JSON Pointer starts with \"/\"");
    bad(DRV_API_PATCH_JSON, doc, "[{\"op\":\"add\",\"path\":\"/a~2\",\"value\":1}]", DRV_ERR_PROTO,
        "\"~\" must be followed by 0 or 1");
    bad(DRV_API_PATCH_JSON, doc, "[{\"op\":\"add\",\"path\":\"/b\"}]", DRV_ERR_PROTO,
        "\"value\": required");
    bad(DRV_API_PATCH_JSON, doc, "[{\"op\":\"copy\",\"path\":\"/b\"}]", DRV_ERR_PROTO,
        "\"from\": required");
}

static void test_json_patch_bounds(void **state)
{
    (void)state;
    /* too many operations */
    size_t n = DRV_API_PATCH_MAX_OPS + 1, cap = n * 40 + 8, o = 0;
    _cleanup_free_ char *ops = malloc(cap);
    assert_non_null(ops);
    ops[o++] = '[';
    for (size_t i = 0; i < n; i++) {
        drv_fmt_cut(ops + o, cap - o, "%s{\"op\":\"test\",\"path\":\"\",\"value\":{}}",
                    i ? "," : "");
        o += strlen(ops + o);
    }
    ops[o++] = ']';
    ops[o] = '\0';
    bad(DRV_API_PATCH_JSON, "{}", ops, DRV_ERR_TOOBIG, "at most 10000 operations");
    /* copy doubling the document: stopped by the growth bound */
    o = 0;
    ops[o++] = '[';
    for (size_t i = 0; i < 64; i++) {
        drv_fmt_cut(ops + o, cap - o, "%s{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/a/b%zu\"}",
                    i ? "," : "", i);
        o += strlen(ops + o);
    }
    ops[o++] = ']';
    ops[o] = '\0';
    bad(DRV_API_PATCH_JSON, "{\"a\":{\"s\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}", ops,
        DRV_ERR_TOOBIG, "grow past");
}

static void test_merge_patch(void **state)
{
    (void)state;
    ok(DRV_API_PATCH_MERGE, "{\"a\":{\"b\":1,\"c\":2},\"l\":[1,2]}",
       "{\"a\":{\"b\":null,\"d\":3},\"l\":[3]}", "{\"a\":{\"c\":2,\"d\":3},\"l\":[3]}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kubectl_apply_edit),
        cmocka_unit_test(test_scale_label_annotate),
        cmocka_unit_test(test_list_merge_by_key),
        cmocka_unit_test(test_retain_keys),
        cmocka_unit_test(test_primitive_lists),
        cmocka_unit_test(test_strategic_malformed),
        cmocka_unit_test(test_json_patch_rollout_undo),
        cmocka_unit_test(test_json_patch_ops),
        cmocka_unit_test(test_json_patch_malformed),
        cmocka_unit_test(test_json_patch_bounds),
        cmocka_unit_test(test_merge_patch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
