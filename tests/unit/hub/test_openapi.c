/* The OpenAPI documents (hub/api/openapi.c): every reference resolves, every kind the store
 * knows has a schema with its group-version-kind, the write operations list fieldValidation
 * (what kubectl's QueryParamVerifierV3 looks for), the patch extensions are patchmeta's, and
 * the index's hashes are those of the documents served. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <string.h>

#include "api/openapi.h"
#include "api/patchmeta.h"
#include "drover/digest.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/model.h"

#define SCHEMAS "#/components/schemas/"

static const drv_oa_doc_t *docs(size_t *n)
{
    const drv_oa_doc_t *d = drv_oa_docs(n);
    assert_non_null(d);
    assert_int_equal(*n, 7); /* api/v1, apps, autoscaling, discovery, networking, storage,
                                scheduling */
    return d;
}

/* Checks every $ref under node against schemas; counts them. */
static void check_refs(const cJSON *node, const cJSON *schemas, size_t *count)
{
    for (const cJSON *c = node ? node->child : NULL; c; c = c->next) {
        if (c->string && !strcmp(c->string, "$ref")) {
            assert_true(cJSON_IsString(c));
            assert_int_equal(strncmp(c->valuestring, SCHEMAS, strlen(SCHEMAS)), 0);
            if (!cJSON_GetObjectItemCaseSensitive(schemas, c->valuestring + strlen(SCHEMAS)))
                fail_msg("unresolved $ref %s", c->valuestring);
            (*count)++;
        }
        check_refs(c, schemas, count);
    }
}

static void test_refs_resolve(void **state)
{
    (void)state;
    size_t n = 0;
    const drv_oa_doc_t *d = docs(&n);
    for (size_t i = 0; i < n; i++) {
        const cJSON *schemas = drv_json_at(d[i].json, "components.schemas");
        assert_non_null(schemas);
        size_t refs = 0;
        check_refs(d[i].json, schemas, &refs);
        assert_true(refs > 10);
        assert_string_equal(drv_json_str(d[i].json, "openapi"), "3.0.0");
    }
}

/* The schema in any document whose x-kubernetes-group-version-kind names g/v/k. */
static const cJSON *schema_with_gvk(const char *g, const char *v, const char *k)
{
    size_t n = 0;
    const drv_oa_doc_t *d = docs(&n);
    for (size_t i = 0; i < n; i++)
        for (const cJSON *s = drv_json_at(d[i].json, "components.schemas")->child; s; s = s->next) {
            const cJSON *ext = drv_json_get(s, "x-kubernetes-group-version-kind");
            for (const cJSON *e = ext ? ext->child : NULL; e; e = e->next)
                if (!strcmp(drv_json_str(e, "group"), g) &&
                    !strcmp(drv_json_str(e, "version"), v) && !strcmp(drv_json_str(e, "kind"), k))
                    return s;
        }
    return NULL;
}

static void test_every_kind_has_gvk(void **state)
{
    (void)state;
    for (int k = 1; k < DRV_KIND__COUNT; k++) {
        const char *api = drv_kind_api_version((drv_kind_t)k);
        const char *slash = strchr(api, '/');
        char group[64] = "";
        if (slash) {
            memcpy(group, api, (size_t)(slash - api));
            group[slash - api] = '\0';
        }
        const cJSON *s =
            schema_with_gvk(group, slash ? slash + 1 : api, drv_kind_name((drv_kind_t)k));
        if (!s)
            fail_msg("no schema for %s %s", api, drv_kind_name((drv_kind_t)k));
        assert_string_equal(s->string, drv_api_patch_root((drv_kind_t)k));
        assert_string_equal(drv_json_str(s, "type"), "object");
        assert_non_null(drv_json_at(s, "properties.metadata"));
        assert_non_null(drv_json_get(s, "description"));
    }
    /* the kinds added beside the store's: namespaces, replicasets, the scale subresource */
    assert_non_null(schema_with_gvk("", "v1", "Namespace"));
    assert_non_null(schema_with_gvk("apps", "v1", "ReplicaSet"));
    assert_non_null(schema_with_gvk("autoscaling", "v1", "Scale"));
    assert_non_null(schema_with_gvk("apps", "v1", "DeploymentList"));
}

/* Every property of every schema has a description. */
static void test_descriptions(void **state)
{
    (void)state;
    size_t n = 0;
    const drv_oa_doc_t *d = docs(&n);
    for (size_t i = 0; i < n; i++)
        for (const cJSON *s = drv_json_at(d[i].json, "components.schemas")->child; s; s = s->next) {
            assert_non_null(drv_json_str(s, "description"));
            for (const cJSON *p = drv_json_at(s, "properties") ? drv_json_at(s, "properties")->child
                                                               : NULL;
                 p; p = p->next) {
                const char *desc = drv_json_str(p, "description");
                if (!desc || !*desc)
                    fail_msg("%s.%s has no description", s->string, p->string);
            }
        }
}

static bool has_param(const cJSON *op, const char *name)
{
    for (const cJSON *p = drv_json_get(op, "parameters")->child; p; p = p->next)
        if (!strcmp(drv_json_str(p, "name"), name) && !strcmp(drv_json_str(p, "in"), "query"))
            return true;
    return false;
}

static void test_write_ops_have_field_validation(void **state)
{
    (void)state;
    static const char *const writes[] = {"post", "put", "patch"};
    size_t n = 0, patches = 0;
    const drv_oa_doc_t *d = docs(&n);
    for (size_t i = 0; i < n; i++)
        for (const cJSON *p = drv_json_get(d[i].json, "paths")->child; p; p = p->next)
            for (size_t w = 0; w < 3; w++) {
                const cJSON *op = drv_json_get(p, writes[w]);
                if (!op)
                    continue;
                if (!has_param(op, "fieldValidation"))
                    fail_msg("%s %s: no fieldValidation", writes[w], p->string);
                assert_non_null(drv_json_get(op, "x-kubernetes-group-version-kind"));
                if (w == 2) {
                    patches++;
                    assert_non_null(drv_json_at(op, "requestBody.content")
                                        ? drv_json_get(drv_json_at(op, "requestBody.content"),
                                                       "application/strategic-merge-patch+json")
                                        : NULL);
                }
            }
    assert_true(patches >= 10);
    /* what QueryParamVerifierV3 reads for a Deployment */
    const cJSON *item = drv_json_get(drv_json_get(d[1].json, "paths"),
                                     "/apis/apps/v1/namespaces/{namespace}/deployments/{name}");
    assert_non_null(item);
    const cJSON *gvk = drv_json_at(item, "patch.x-kubernetes-group-version-kind");
    assert_string_equal(drv_json_str(gvk, "group"), "apps");
    assert_string_equal(drv_json_str(gvk, "kind"), "Deployment");
    assert_string_equal(drv_json_str(gvk, "version"), "v1");
}

/* The type a property refers to (its items' or values' for a list or map), NULL for a
 * primitive. */
static const char *prop_ref(const cJSON *p)
{
    const cJSON *v = drv_json_get(p, "items");
    if (!v)
        v = drv_json_get(p, "additionalProperties");
    if (!v)
        v = p;
    const cJSON *all = drv_json_get(v, "allOf");
    const char *ref = all && all->child ? drv_json_str(all->child, "$ref") : NULL;
    return ref ? ref + strlen(SCHEMAS) : NULL;
}

static void test_patch_extensions_match_patchmeta(void **state)
{
    (void)state;
    size_t n = 0, checked = 0;
    const drv_oa_doc_t *d = docs(&n);
    for (size_t i = 0; i < n; i++)
        for (const cJSON *s = drv_json_at(d[i].json, "components.schemas")->child; s; s = s->next) {
            const cJSON *props = drv_json_get(s, "properties");
            for (const cJSON *p = props ? props->child : NULL; p; p = p->next) {
                drv_api_patch_meta_t pm;
                bool has = drv_api_patch_meta(s->string, p->string, &pm);
                const char *strategy = drv_json_str(p, "x-kubernetes-patch-strategy");
                const char *key = drv_json_str(p, "x-kubernetes-patch-merge-key");
                if (!has) {
                    assert_null(strategy);
                    assert_null(key);
                    continue;
                }
                checked++;
                const char *want = pm.merge && pm.retain_keys ? "merge,retainKeys"
                                   : pm.merge                 ? "merge"
                                   : pm.retain_keys           ? "retainKeys"
                                                              : NULL;
                if (want)
                    assert_string_equal(strategy, want);
                else
                    assert_null(strategy);
                if (pm.merge_key)
                    assert_string_equal(key, pm.merge_key);
                else
                    assert_null(key);
                assert_int_equal(pm.list, drv_json_get(p, "items") != NULL);
                if (pm.type)
                    assert_string_equal(prop_ref(p), pm.type);
            }
        }
    assert_true(checked >= 30);
    /* the ones kubectl's patches depend on most */
    const cJSON *c = drv_json_at(schema_with_gvk("", "v1", "Pod"), "properties");
    assert_non_null(c);
    const cJSON *spec = NULL;
    for (const cJSON *s = drv_json_at(docs(&n)[0].json, "components.schemas")->child; s;
         s = s->next)
        if (!strcmp(s->string, "io.k8s.api.core.v1.PodSpec"))
            spec = s;
    assert_non_null(spec);
    assert_string_equal(
        drv_json_str(drv_json_at(spec, "properties.containers"), "x-kubernetes-patch-merge-key"),
        "name");
    assert_string_equal(
        drv_json_str(drv_json_at(spec, "properties.volumes"), "x-kubernetes-patch-strategy"),
        "merge,retainKeys");
}

/* The schema named name in any document. */
static const cJSON *schema_named(const char *name)
{
    size_t n = 0;
    const drv_oa_doc_t *d = docs(&n);
    for (size_t i = 0; i < n; i++) {
        const cJSON *s =
            cJSON_GetObjectItemCaseSensitive(drv_json_at(d[i].json, "components.schemas"), name);
        if (s)
            return s;
    }
    return NULL;
}

/* The network kinds: what kubectl explain walks, and their lists atomic as upstream has them
 * (no patch strategy: a strategic merge patch replaces them whole). */
static void test_network_kinds(void **state)
{
    (void)state;
    const cJSON *np = schema_with_gvk("networking.k8s.io", "v1", "NetworkPolicy");
    assert_non_null(np);
    assert_string_equal(np->string, "io.k8s.api.networking.v1.NetworkPolicy");
    const cJSON *spec = schema_named("io.k8s.api.networking.v1.NetworkPolicySpec");
    assert_non_null(spec);
    const cJSON *ingress = drv_json_at(spec, "properties.ingress");
    assert_string_equal(drv_json_str(ingress, "type"), "array");
    assert_string_equal(prop_ref(ingress), "io.k8s.api.networking.v1.NetworkPolicyIngressRule");
    assert_null(drv_json_get(ingress, "x-kubernetes-patch-strategy"));
    const cJSON *peer = schema_named("io.k8s.api.networking.v1.NetworkPolicyPeer");
    assert_string_equal(prop_ref(drv_json_at(peer, "properties.ipBlock")),
                        "io.k8s.api.networking.v1.IPBlock");
    assert_string_equal(
        prop_ref(drv_json_at(schema_named("io.k8s.api.networking.v1.NetworkPolicyPort"),
                             "properties.port")),
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString");

    const cJSON *eps = schema_with_gvk("discovery.k8s.io", "v1", "EndpointSlice");
    assert_non_null(eps);
    const cJSON *req = drv_json_get(eps, "required");
    assert_string_equal(cJSON_GetArrayItem(req, 0)->valuestring, "addressType");
    assert_non_null(schema_with_gvk("discovery.k8s.io", "v1", "EndpointSliceList"));
    assert_non_null(schema_with_gvk("", "v1", "Endpoints"));
    assert_non_null(schema_named("io.k8s.api.core.v1.EndpointAddress"));

    /* the Service's recent fields, and the Node's pod network block */
    const cJSON *ss = schema_named("io.k8s.api.core.v1.ServiceSpec");
    static const char *const fields[] = {"sessionAffinityConfig",
                                         "internalTrafficPolicy",
                                         "externalTrafficPolicy",
                                         "ipFamilyPolicy",
                                         "ipFamilies",
                                         "clusterIPs",
                                         "publishNotReadyAddresses",
                                         "allocateLoadBalancerNodePorts"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (!drv_json_get(drv_json_get(ss, "properties"), fields[i]))
            fail_msg("ServiceSpec has no %s", fields[i]);
    const cJSON *timeout =
        drv_json_at(schema_named("io.k8s.api.core.v1.ClientIPConfig"), "properties.timeoutSeconds");
    assert_string_equal(drv_json_str(timeout, "format"), "int32");
    assert_non_null(drv_json_at(schema_named("io.k8s.api.core.v1.NodeSpec"), "properties.podCIDR"));

    /* every kind's paths are in its group version's document */
    size_t n = 0;
    const drv_oa_doc_t *d = docs(&n);
    assert_non_null(
        drv_json_get(drv_json_get(d[4].json, "paths"),
                     "/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{name}"));
    assert_non_null(
        drv_json_get(drv_json_get(d[3].json, "paths"), "/apis/discovery.k8s.io/v1/endpointslices"));
    assert_non_null(
        drv_json_get(drv_json_get(d[0].json, "paths"), "/api/v1/namespaces/{namespace}/endpoints"));
}

static void test_index_hashes(void **state)
{
    (void)state;
    size_t n = 0;
    const drv_oa_doc_t *d = docs(&n);
    const drv_oa_doc_t *ix = drv_oa_index();
    assert_non_null(ix);
    const cJSON *paths = drv_json_get(ix->json, "paths");
    assert_int_equal(cJSON_GetArraySize(paths), (int)n);
    for (size_t i = 0; i < n; i++) {
        /* the text served is the document, and printing it again gives the same bytes */
        char *again = cJSON_PrintUnformatted(d[i].json);
        assert_non_null(again);
        assert_string_equal(again, d[i].text);
        cJSON_free(again);
        assert_int_equal(d[i].len, strlen(d[i].text));
        drv_digest_t dg;
        char hex[DRV_DIGEST_HEX_MAX];
        drv_digest_of(d[i].text, d[i].len, &dg);
        drv_digest_hex(&dg, hex);
        for (char *p = hex; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        assert_string_equal(hex, d[i].hash);
        char want[256];
        assert_int_equal(drv_fmt(want, sizeof(want), "/openapi/v3/%s?hash=%s", d[i].path, hex),
                         DRV_OK);
        assert_string_equal(drv_json_str(drv_json_get(paths, d[i].path), "serverRelativeURL"),
                            want);
    }
    assert_string_equal(d[0].path, "api/v1");
    assert_string_equal(d[1].path, "apis/apps/v1");
    assert_string_equal(d[2].path, "apis/autoscaling/v2");
    assert_string_equal(d[3].path, "apis/discovery.k8s.io/v1");
    assert_string_equal(d[4].path, "apis/networking.k8s.io/v1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refs_resolve),
        cmocka_unit_test(test_every_kind_has_gvk),
        cmocka_unit_test(test_descriptions),
        cmocka_unit_test(test_write_ops_have_field_validation),
        cmocka_unit_test(test_patch_extensions_match_patchmeta),
        cmocka_unit_test(test_network_kinds),
        cmocka_unit_test(test_index_hashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
