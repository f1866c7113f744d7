/* hub/auth RBAC and service account tokens: the RBAC kinds' validation naming fields, rule
 * matching (wildcards, subresources, resourceNames, paths), and the API over a real socket
 * with real ServiceAccount, Role, RoleBinding, ClusterRole and ClusterRoleBinding objects in a
 * real store: a pod's token lists the pods of its namespace, is refused (403) elsewhere and for
 * Secrets, and stops working (401) once its pod or account is gone, forged or expired. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/api.h"
#include "api_client.h"
#include "auth/auth.h"
#include "auth/rbac.h"
#include "auth/satoken.h"
#include "bridge/bridge_int.h"
#include "ctrl/ctrl.h"
#include "drover/buf.h"
#include "drover/doc.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/model.h"
#include "drover/pki.h"
#include "drover/protocol.h"
#include "store/store.h"

typedef struct {
    char dir[64];
    char db[128];
    drv_hstore_t *store;
    drv_auth_t *auth;
    drv_api_t *api;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/drv-rbac-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof(f->db), "%s/hub.db", f->dir);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_open(f->db, &f->store, &err), DRV_OK);
    assert_int_equal(drv_auth_new(f->store, f->dir, 3600, &f->auth, &err), DRV_OK);
    drv_api_opts_t o = {.store = f->store,
                        .max_body = 64 * 1024,
                        .authorize = drv_auth_api_authorize,
                        .authorize_ctx = f->auth};
    assert_int_equal(drv_api_new(&o, &f->api, &err), DRV_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    drv_api_free(f->api);
    drv_auth_free(f->auth);
    drv_hstore_close(f->store);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static cJSON *yaml(const char *text)
{
    drv_doc_list_t l = {0};
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_doc_parse(text, strlen(text), NULL, &l, &err) != DRV_OK)
        fail_msg("parse: %s", drv_error_msg(&err));
    assert_int_equal(l.count, 1);
    cJSON *root = l.docs[0].root;
    l.docs[0].root = NULL;
    drv_doc_list_free(&l);
    return root;
}

/* The problems of normalizing text, "path: msg" lines ("" when valid). */
static char *problems(const char *text)
{
    cJSON *o = yaml(text);
    drv_diags_t d = {0};
    drv_err_t r = drv_model_normalize(o, &d);
    assert_true(r == DRV_OK || r == DRV_ERR_INVALID);
    char *s = drv_diags_format(&d, NULL);
    drv_diags_free(&d);
    cJSON_Delete(o);
    assert_non_null(s);
    return s;
}

static void assert_has(const char *all, const char *line)
{
    if (!strstr(all, line))
        fail_msg("expected \"%s\" in:\n%s", line, all);
}

/* Normalizes and stores text as kind; the stored object (caller frees). */
static cJSON *put(fx_t *f, drv_kind_t kind, const char *text)
{
    cJSON *o = yaml(text);
    drv_diags_t d = {0};
    if (drv_model_normalize(o, &d) != DRV_OK) {
        char *s = drv_diags_format(&d, NULL);
        fail_msg("invalid: %s", s);
    }
    drv_diags_free(&d);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_create(f->store, kind, o, &err) != DRV_OK)
        fail_msg("create: %s", drv_error_msg(&err));
    return o;
}

static int http(fx_t *f, const char *method, const char *path, const char *token, char **resp)
{
    char hdrs[DRV_SATOKEN_MAX + 128];
    assert_int_equal(drv_fmt(hdrs, sizeof(hdrs), "%s%s%s", token ? "Authorization: Bearer " : "",
                             token ? token : "", token ? "\r\n" : ""),
                     DRV_OK);
    drv_buf_t raw = DRV_BUF_INIT(1 << 20);
    apic_request(&raw, method, path, hdrs, NULL);
    int fd = apic_connect(f->api);
    drv_buf_t out = DRV_BUF_INIT(1 << 22);
    apic_pump(f->api, fd, raw.data, raw.len, &out, NULL, 5000);
    close(fd);
    drv_buf_free(&raw);
    int code = 0;
    if (sscanf(drv_buf_str(&out), "HTTP/1.%*d %d", &code) != 1)
        fail_msg("%s %s: no HTTP answer", method, path);
    if (resp)
        *resp = strdup(drv_buf_str(&out));
    drv_buf_free(&out);
    return code;
}

static void expect(fx_t *f, const char *path, const char *token, int code, const char *says)
{
    char *resp = NULL;
    int got = http(f, "GET", path, token, &resp);
    if (got != code || (says && !strstr(resp, says)))
        fail_msg("GET %s: want %d%s%s, got:\n%s", path, code, says ? " saying " : "",
                 says ? says : "", resp);
    free(resp);
}

/* ---- validation ---- */

static void test_validation(void **state)
{
    (void)state;
    char *p = problems("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"
                       "metadata: {name: r, namespace: a}\n"
                       "rules:\n- {apiGroups: [''], resources: [pods], verbs: [get, list]}\n"
                       "- {verbs: [get], nonResourceURLs: [/metrics]}\n- {resources: [pods]}\n");
    assert_has(p, "rules[1].nonResourceURLs: namespaced rules cannot apply to non-resource URLs");
    assert_has(p, "rules[2].verbs: required");
    assert_has(p, "rules[2].apiGroups: resource rules must supply at least one api group");
    free(p);
    p = problems("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
                 "metadata: {name: 'system:x'}\naggregationRule: {clusterRoleSelectors: []}\n"
                 "rules:\n- {verbs: [get], nonResourceURLs: ['/healthz*']}\n");
    assert_string_equal(p, "aggregationRule.clusterRoleSelectors: must have at least one "
                           "clusterRoleSelector\n");
    free(p);
    p = problems("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
                 "metadata: {name: 'influx:telegraf'}\naggregationRule:\n"
                 "  clusterRoleSelectors:\n  - matchLabels: {a: 'true'}\n"
                 "  - matchExpressions: [{key: b, operator: Sometimes}]\n  - {podSelector: {}}\n"
                 "rules: []\n");
    assert_has(p, "aggregationRule.clusterRoleSelectors[1]: ");
    assert_has(p, "aggregationRule.clusterRoleSelectors[2].podSelector: unknown field");
    assert_null(strstr(p, "clusterRoleSelectors[0]"));
    free(p);
    p = problems("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
                 "metadata: {name: b}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, "
                 "name: r}\nsubjects:\n- {kind: ServiceAccount, name: s}\n- {kind: Robot, name: "
                 "x}\n");
    assert_has(p, "roleRef.kind: unsupported value");
    assert_has(p, "subjects[0].namespace: required");
    assert_has(p, "subjects[1].kind: unsupported value");
    free(p);
    p = problems("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: s}\n"
                 "automountServiceAccountToken: 'no'\nimagePullSecrets: [{}]\n");
    assert_has(p, "automountServiceAccountToken: must be a boolean");
    assert_has(p, "imagePullSecrets[0].name: required");
    free(p);
    /* a valid binding is defaulted as the API server does: a User gets the RBAC group */
    cJSON *o = yaml("apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
                    "metadata: {name: b, namespace: a}\nroleRef: {apiGroup: "
                    "rbac.authorization.k8s.io, kind: ClusterRole, name: view}\n"
                    "subjects: [{kind: User, name: alice}, {kind: ServiceAccount, name: s}]\n");
    assert_int_equal(drv_model_normalize(o, NULL), DRV_OK);
    assert_string_equal(
        drv_json_str(cJSON_GetArrayItem(drv_json_get(o, "subjects"), 0), "apiGroup"),
        "rbac.authorization.k8s.io");
    cJSON_Delete(o);
    /* a pod names its account; serviceAccount follows it; a pod defaults to "default" */
    o = yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  serviceAccount: robot\n"
             "  automountServiceAccountToken: false\n  containers: [{name: c, image: busybox}]\n");
    assert_int_equal(drv_model_normalize(o, NULL), DRV_OK);
    assert_string_equal(drv_json_str_at(o, "spec.serviceAccountName"), "robot");
    assert_true(cJSON_IsFalse(drv_json_at(o, "spec.automountServiceAccountToken")));
    cJSON_Delete(o);
    o = yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
             "  containers: [{name: c, image: busybox}]\n");
    assert_int_equal(drv_model_normalize(o, NULL), DRV_OK);
    assert_string_equal(drv_json_str_at(o, "spec.serviceAccountName"), "default");
    cJSON_Delete(o);
    /* projected volumes, as Kubernetes' admission writes them, and what is refused in them */
    o = yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
             "  containers: [{name: c, image: busybox}]\n  volumes:\n  - name: kube-api-access-x\n"
             "    projected:\n      sources:\n      - serviceAccountToken: {path: token}\n"
             "      - configMap: {name: kube-root-ca.crt, items: [{key: ca.crt, path: ca.crt}]}\n"
             "      - downwardAPI: {items: [{path: namespace, fieldRef: {fieldPath: "
             "metadata.namespace}}]}\n");
    assert_int_equal(drv_model_normalize(o, NULL), DRV_OK);
    const cJSON *proj =
        drv_json_get(cJSON_GetArrayItem(drv_json_at(o, "spec.volumes"), 0), "projected");
    assert_int_equal(drv_json_int_or(proj, "defaultMode", 0), 0644);
    assert_int_equal(
        drv_json_int_or(drv_json_get(cJSON_GetArrayItem(drv_json_get(proj, "sources"), 0),
                                     "serviceAccountToken"),
                        "expirationSeconds", 0),
        3600);
    cJSON_Delete(o);
    p = problems("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
                 "  containers: [{name: c, image: busybox}]\n  volumes:\n  - name: v\n"
                 "    projected:\n      sources:\n"
                 "      - serviceAccountToken: {path: t, audience: vault, expirationSeconds: 60}\n"
                 "      - {secret: {name: s}, configMap: {name: c}}\n"
                 "      - downwardAPI: {items: [{path: t, fieldRef: {fieldPath: spec.nodeName}}]}\n"
                 "      - clusterTrustBundle: {name: x, path: y}\n");
    assert_has(p, "sources[0].serviceAccountToken.audience: unsupported value \"vault\"");
    assert_has(p, "sources[0].serviceAccountToken.expirationSeconds: ");
    assert_has(p, "sources[1]: may not specify more than 1 volume projection type");
    assert_has(p, "sources[2].downwardAPI.items[0].path: conflicting duplicate paths");
    assert_has(p, "sources[2].downwardAPI.items[0].fieldRef.fieldPath: unsupported value");
    assert_has(p, "sources[3].clusterTrustBundle: not supported by Drover");
    free(p);
    p = problems("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  serviceAccount: a\n"
                 "  serviceAccountName: b\n  containers: [{name: c, image: busybox}]\n");
    assert_has(p, "spec.serviceAccount: must equal serviceAccountName");
    free(p);
}

/* ---- rules ---- */

static bool allows(const char *rule, drv_rbac_request_t rq)
{
    char text[512];
    assert_int_equal(drv_fmt(text, sizeof(text), "rule: %s\n", rule), DRV_OK);
    cJSON *r = yaml(text);
    bool ok = drv_rbac_rule_allows(drv_json_get(r, "rule"), &rq);
    cJSON_Delete(r);
    return ok;
}

static void test_rules(void **state)
{
    (void)state;
    drv_rbac_request_t list_pods = {.verb = "list", .group = "", .resource = "pods", .ns = "a"};
    drv_rbac_request_t get_log = {
        .verb = "get", .group = "", .resource = "pods", .subresource = "log", .name = "x"};
    drv_rbac_request_t scale = {.verb = "patch",
                                .group = "apps",
                                .resource = "deployments",
                                .subresource = "scale",
                                .name = "web"};
    drv_rbac_request_t metrics = {.verb = "get", .path = "/metrics"};
    assert_true(allows("{apiGroups: [''], resources: [pods], verbs: [list]}", list_pods));
    assert_false(allows("{apiGroups: [''], resources: [pods], verbs: [get]}", list_pods));
    assert_false(allows("{apiGroups: [apps], resources: [pods], verbs: [list]}", list_pods));
    assert_true(allows("{apiGroups: ['*'], resources: ['*'], verbs: ['*']}", list_pods));
    /* a subresource is its own resource */
    assert_false(allows("{apiGroups: [''], resources: [pods], verbs: [get]}", get_log));
    assert_true(allows("{apiGroups: [''], resources: [pods/log], verbs: [get]}", get_log));
    assert_true(allows("{apiGroups: [''], resources: ['*/log'], verbs: [get]}", get_log));
    assert_true(
        allows("{apiGroups: [apps], resources: [deployments/scale], verbs: [patch]}", scale));
    /* resourceNames: that object only, never a list */
    assert_true(allows("{apiGroups: [apps], resources: [deployments/scale], verbs: [patch], "
                       "resourceNames: [web]}",
                       scale));
    assert_false(allows("{apiGroups: [apps], resources: [deployments/scale], verbs: [patch], "
                        "resourceNames: [db]}",
                        scale));
    assert_false(allows("{apiGroups: [''], resources: [pods], verbs: [list], resourceNames: [x]}",
                        list_pods));
    /* paths */
    assert_true(allows("{verbs: [get], nonResourceURLs: [/metrics]}", metrics));
    assert_true(allows("{verbs: [get], nonResourceURLs: ['/met*']}", metrics));
    assert_false(allows("{verbs: [get], nonResourceURLs: [/healthz]}", metrics));
    assert_false(allows("{apiGroups: ['*'], resources: ['*'], verbs: ['*']}", metrics));
}

/* ---- tokens over the API ---- */

typedef struct {
    cJSON *pod, *sa;
} bound_t;

/* A token of pod ns/name for account sa (both stored), valid from now for ttl seconds. */
static char *token_for(fx_t *f, const cJSON *pod, const cJSON *sa, int64_t iat, int64_t ttl)
{
    drv_satoken_claims_t c = {.iat = iat, .nbf = iat, .exp = iat + ttl};
    drv_fmt_cut(c.ns, sizeof(c.ns), "%s", drv_json_str_at(pod, "metadata.namespace"));
    drv_fmt_cut(c.pod, sizeof(c.pod), "%s", drv_json_str_at(pod, "metadata.name"));
    drv_fmt_cut(c.pod_uid, sizeof(c.pod_uid), "%s", drv_json_str_at(pod, "metadata.uid"));
    drv_fmt_cut(c.sa, sizeof(c.sa), "%s", drv_json_str_at(sa, "metadata.name"));
    drv_fmt_cut(c.sa_uid, sizeof(c.sa_uid), "%s", drv_json_str_at(sa, "metadata.uid"));
    drv_fmt_cut(c.node, sizeof(c.node), "dev1");
    drv_fmt_cut(c.node_uid, sizeof(c.node_uid), "n-1");
    char *jwt = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_satoken_issue(drv_auth_satoken(f->auth), &c, &jwt, &err) != DRV_OK)
        fail_msg("issue: %s", drv_error_msg(&err));
    return jwt;
}

static void test_token_rbac(void **state)
{
    fx_t *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    int64_t now = (int64_t)time(NULL);
    cJSON *sa =
        put(f, DRV_KIND_SERVICEACCOUNT,
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: lister, namespace: a}\n");
    cJSON *pod = put(f, DRV_KIND_POD,
                     "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\nspec:\n"
                     "  serviceAccountName: lister\n  containers: [{name: c, image: busybox}]\n");
    cJSON_Delete(put(f, DRV_KIND_POD,
                     "apiVersion: v1\nkind: Pod\nmetadata: {name: q, namespace: b}\nspec:\n"
                     "  containers: [{name: c, image: busybox}]\n"));
    cJSON_Delete(put(f, DRV_KIND_ROLE,
                     "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"
                     "metadata: {name: pod-reader, namespace: a}\nrules:\n"
                     "- {apiGroups: [''], resources: [pods], verbs: [get, list, watch]}\n"));
    char *tok = token_for(f, pod, sa, now, 3607);
    assert_true(drv_satoken_looks_like(tok));

    /* no binding yet: authenticated, but allowed nothing */
    expect(f, "/api/v1/namespaces/a/pods", tok, 403,
           "pods is forbidden: User \\\"system:serviceaccount:a:lister\\\" cannot list resource "
           "\\\"pods\\\" in API group \\\"\\\" in the namespace \\\"a\\\"");
    /* discovery is open to every authenticated client, as system:discovery */
    expect(f, "/api/v1", tok, 200, NULL);

    cJSON_Delete(put(f, DRV_KIND_ROLEBINDING,
                     "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
                     "metadata: {name: read-pods, namespace: a}\n"
                     "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: "
                     "pod-reader}\nsubjects: [{kind: ServiceAccount, name: lister}]\n"));
    expect(f, "/api/v1/namespaces/a/pods", tok, 200, "\"name\":\"p\"");
    expect(f, "/api/v1/namespaces/a/pods/p", tok, 200, NULL);
    expect(f, "/api/v1/namespaces/b/pods", tok, 403, "in the namespace \\\"b\\\"");
    expect(f, "/api/v1/namespaces/a/secrets", tok, 403, "cannot list resource \\\"secrets\\\"");
    expect(f, "/api/v1/namespaces/a/pods/p/log", tok, 403, "pods/log");
    expect(f, "/api/v1/pods", tok, 403, "at the cluster scope");
    expect(f, "/api/v1/tokens", tok, 403, NULL);
    /* RBAC objects are never written with a token (no escalation check), even when a rule
     * allows it */
    cJSON_Delete(put(f, DRV_KIND_ROLE,
                     "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"
                     "metadata: {name: rbac-admin, namespace: a}\nrules:\n"
                     "- {apiGroups: ['*'], resources: ['*'], verbs: ['*']}\n"));
    cJSON_Delete(put(f, DRV_KIND_ROLEBINDING,
                     "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
                     "metadata: {name: too-much, namespace: a}\n"
                     "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: "
                     "rbac-admin}\nsubjects: [{kind: ServiceAccount, name: lister}]\n"));
    expect(f, "/apis/rbac.authorization.k8s.io/v1/namespaces/a/rolebindings", tok, 200, NULL);
    char *resp = NULL;
    assert_int_equal(http(f, "DELETE",
                          "/apis/rbac.authorization.k8s.io/v1/namespaces/a/"
                          "rolebindings/too-much",
                          tok, &resp),
                     403);
    assert_non_null(strstr(resp, "may not write RBAC objects"));
    free(resp);
    assert_int_equal(drv_hstore_delete(f->store, DRV_KIND_ROLEBINDING, "a", "too-much", NULL, &err),
                     DRV_OK);
    assert_int_equal(http(f, "DELETE", "/api/v1/namespaces/a/pods/p", tok, NULL), 403);

    /* a ClusterRole bound to every service account of the fleet, cluster-wide */
    cJSON_Delete(put(f, DRV_KIND_CLUSTERROLE,
                     "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
                     "metadata: {name: ns-viewer}\nrules:\n"
                     "- {apiGroups: [''], resources: [namespaces], verbs: [list]}\n"
                     "- {verbs: [get], nonResourceURLs: [/metrics]}\n"));
    expect(f, "/api/v1/namespaces", tok, 403, NULL);
    cJSON_Delete(put(f, DRV_KIND_CLUSTERROLEBINDING,
                     "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
                     "metadata: {name: all-sa}\nroleRef: {apiGroup: rbac.authorization.k8s.io, "
                     "kind: ClusterRole, name: ns-viewer}\n"
                     "subjects: [{kind: Group, name: 'system:serviceaccounts'}]\n"));
    expect(f, "/api/v1/namespaces", tok, 200, NULL);
    expect(f, "/metrics", tok, 200, NULL);

    /* an aggregated ClusterRole (telegraf's chart binds one): the rules of the ClusterRoles its
     * selectors pick, read at each request */
    cJSON_Delete(put(f, DRV_KIND_CLUSTERROLE,
                     "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
                     "metadata: {name: 'influx:telegraf'}\naggregationRule:\n"
                     "  clusterRoleSelectors:\n"
                     "  - matchLabels: {rbac.authorization.k8s.io/aggregate-view-telegraf: "
                     "'true'}\nrules: []\n"));
    cJSON_Delete(put(f, DRV_KIND_CLUSTERROLEBINDING,
                     "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
                     "metadata: {name: telegraf}\nroleRef: {apiGroup: rbac.authorization.k8s.io, "
                     "kind: ClusterRole, name: 'influx:telegraf'}\n"
                     "subjects: [{kind: ServiceAccount, name: lister, namespace: a}]\n"));
    expect(f, "/api/v1/nodes", tok, 403, NULL);
    cJSON_Delete(put(f, DRV_KIND_CLUSTERROLE,
                     "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
                     "metadata:\n  name: influx-stats-viewer\n  labels: "
                     "{rbac.authorization.k8s.io/aggregate-view-telegraf: 'true'}\nrules:\n"
                     "- {apiGroups: [''], resources: [nodes, nodes/stats], verbs: [get, list]}\n"));
    expect(f, "/api/v1/nodes", tok, 200, NULL);

    /* a forged signature, a token past its exp, or from a key of another hub: 401 */
    char *forged = strdup(tok);
    size_t n = strlen(forged);
    forged[n - 3] = forged[n - 3] == 'A' ? 'B' : 'A';
    expect(f, "/api/v1/namespaces/a/pods", forged, 401, "signature");
    free(forged);
    char *old = token_for(f, pod, sa, now - 4000, 3607);
    expect(f, "/api/v1/namespaces/a/pods", old, 401, "expired");
    free(old);
    drv_satoken_t *other = NULL;
    assert_int_equal(drv_satoken_new(NULL, &other, &err), DRV_OK);
    drv_satoken_claims_t c;
    assert_int_equal(drv_satoken_verify(drv_auth_satoken(f->auth), tok, now, &c, &err), DRV_OK);
    assert_string_equal(c.pod, "p");
    assert_int_equal(c.exp - c.iat, 3607);
    assert_int_equal(drv_satoken_verify(other, tok, now, &c, &err), DRV_ERR_PERM);
    drv_satoken_free(other);

    /* the pod deleted: its token is worthless, even for a pod made again under its name */
    assert_int_equal(drv_hstore_delete(f->store, DRV_KIND_POD, "a", "p", NULL, &err), DRV_OK);
    expect(f, "/api/v1/namespaces/a/pods", tok, 401, "pod a/p is gone");
    cJSON *pod2 = put(f, DRV_KIND_POD,
                      "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\nspec:\n"
                      "  serviceAccountName: lister\n  containers: [{name: c, image: busybox}]\n");
    expect(f, "/api/v1/namespaces/a/pods", tok, 401, "pod a/p is gone");
    char *tok2 = token_for(f, pod2, sa, now, 3607);
    expect(f, "/api/v1/namespaces/a/pods", tok2, 200, NULL);
    /* the account deleted: 401 too */
    assert_int_equal(
        drv_hstore_delete(f->store, DRV_KIND_SERVICEACCOUNT, "a", "lister", NULL, &err), DRV_OK);
    expect(f, "/api/v1/namespaces/a/pods", tok2, 401, "service account a/lister is gone");
    free(tok2);
    free(tok);
    cJSON_Delete(pod2);
    cJSON_Delete(pod);
    cJSON_Delete(sa);
}

/* Every namespace gets its default account; a pod naming a missing one is refused (403). */
static void test_default_accounts(void **state)
{
    fx_t *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_namespaces_enable(f->store, &err), DRV_OK);
    cJSON_Delete(put(f, DRV_KIND_NAMESPACE,
                     "apiVersion: v1\nkind: Namespace\nmetadata: {name: "
                     "edge}\n"));
    assert_int_equal(drv_ctrl_serviceaccounts_reconcile(f->store, NULL, &err), DRV_OK);
    cJSON *sa = NULL;
    assert_int_equal(
        drv_hstore_get(f->store, DRV_KIND_SERVICEACCOUNT, "edge", "default", &sa, &err), DRV_OK);
    cJSON_Delete(sa);
    assert_int_equal(
        drv_hstore_get(f->store, DRV_KIND_SERVICEACCOUNT, "default", "default", &sa, &err), DRV_OK);
    cJSON_Delete(sa);
    /* again: nothing new */
    uint64_t rv = drv_hstore_rv(f->store);
    assert_int_equal(drv_ctrl_serviceaccounts_reconcile(f->store, NULL, &err), DRV_OK);
    assert_int_equal(drv_hstore_rv(f->store), rv);
    /* The hub CA in every namespace as kube-root-ca.crt, put back when changed. */
    static const char ca[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    assert_int_equal(drv_ctrl_serviceaccounts_reconcile(f->store, ca, &err), DRV_OK);
    cJSON *cm = NULL;
    assert_int_equal(
        drv_hstore_get(f->store, DRV_KIND_CONFIGMAP, "edge", "kube-root-ca.crt", &cm, &err),
        DRV_OK);
    assert_string_equal(drv_json_str(drv_json_get(cm, "data"), "ca.crt"), ca);
    /* someone writes over it */
    cJSON *data = (cJSON *)drv_json_get(cm, "data");
    cJSON_ReplaceItemInObjectCaseSensitive(data, "ca.crt", cJSON_CreateString("forged"));
    assert_int_equal(drv_hstore_update(f->store, DRV_KIND_CONFIGMAP, cm, &err), DRV_OK);
    cJSON_Delete(cm);
    assert_int_equal(drv_ctrl_serviceaccounts_reconcile(f->store, ca, &err), DRV_OK);
    assert_int_equal(
        drv_hstore_get(f->store, DRV_KIND_CONFIGMAP, "edge", "kube-root-ca.crt", &cm, &err),
        DRV_OK);
    assert_string_equal(drv_json_str(drv_json_get(cm, "data"), "ca.crt"), ca);
    cJSON_Delete(cm);
    rv = drv_hstore_rv(f->store);
    assert_int_equal(drv_ctrl_serviceaccounts_reconcile(f->store, ca, &err), DRV_OK);
    assert_int_equal(drv_hstore_rv(f->store), rv);
    cJSON *pod = yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: edge}\nspec:\n"
                      "  serviceAccountName: robot\n  containers: [{name: c, image: busybox}]\n");
    assert_int_equal(drv_model_normalize(pod, NULL), DRV_OK);
    char field[64] = "";
    assert_int_equal(drv_ctrl_serviceaccount_admit(f->store, DRV_KIND_POD, true, pod, field,
                                                   sizeof(field), &err),
                     DRV_ERR_PERM);
    assert_string_equal(drv_error_msg(&err),
                        "pods \"p\" is forbidden: error looking up service account edge/robot: "
                        "serviceaccount \"robot\" not found");
    cJSON_Delete(put(f, DRV_KIND_SERVICEACCOUNT,
                     "apiVersion: v1\nkind: ServiceAccount\n"
                     "metadata: {name: robot, namespace: edge}\n"));
    assert_int_equal(drv_ctrl_serviceaccount_admit(f->store, DRV_KIND_POD, true, pod, field,
                                                   sizeof(field), &err),
                     DRV_OK);
    cJSON_Delete(pod);
}

/* A pod's token as the bridge gets it: the same until 80 % of its life, none without automount;
 * on the wire sealed to the node, opening only for that node and pod. */
static void test_pod_tokens(void **state)
{
    fx_t *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    drv_satoken_t *t = drv_auth_satoken(f->auth);
    int64_t now = (int64_t)time(NULL);
    cJSON_Delete(put(f, DRV_KIND_SERVICEACCOUNT,
                     "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default}\n"));
    cJSON_Delete(put(f, DRV_KIND_SERVICEACCOUNT,
                     "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: quiet}\n"
                     "automountServiceAccountToken: false\n"));
    cJSON *pod = put(f, DRV_KIND_POD,
                     "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
                     "  containers: [{name: c, image: busybox}]\n");
    const char *tok = NULL;
    int64_t exp = 0, due = 0;
    assert_int_equal(
        drv_satoken_for_pod(t, f->store, "dev1", pod, now, &tok, &exp, &due, NULL, &err), DRV_OK);
    char *first = strdup(tok);
    assert_int_equal(exp, now + DRV_SATOKEN_TTL_DEFAULT_S);
    assert_int_equal(due, now + DRV_SATOKEN_TTL_DEFAULT_S * 8 / 10);
    assert_int_equal(
        drv_satoken_for_pod(t, f->store, "dev1", pod, now + 100, &tok, &exp, &due, NULL, &err),
        DRV_OK);
    assert_string_equal(tok, first);
    assert_int_equal(
        drv_satoken_for_pod(t, f->store, "dev1", pod, due, &tok, &exp, &due, NULL, &err), DRV_OK);
    assert_string_not_equal(tok, first);
    drv_satoken_claims_t c;
    assert_int_equal(drv_satoken_verify(t, tok, now + 3000, &c, &err), DRV_OK);
    assert_string_equal(c.node, "dev1");
    assert_string_equal(c.sa, "default");

    /* on the wire */
    char *key = NULL, *pub = NULL, *other = NULL;
    assert_int_equal(drv_pki_key_generate(&key, &err), DRV_OK);
    assert_int_equal(drv_pki_key_public(key, &pub, &err), DRV_OK);
    assert_int_equal(drv_pki_key_generate(&other, &err), DRV_OK);
    const char *uid = drv_json_str_at(pod, "metadata.uid");
    cJSON *w = drv_proto_satoken_build("dev1", uid, first, exp, pub, &err);
    assert_non_null(w);
    char *wire = cJSON_PrintUnformatted(w);
    assert_null(strstr(wire, first));
    free(wire);
    char got_uid[65], *open = NULL;
    assert_int_equal(drv_proto_satoken_open(w, "dev1", key, got_uid, &open, &err), DRV_OK);
    assert_string_equal(open, first);
    assert_string_equal(got_uid, uid);
    free(open);
    assert_int_equal(drv_proto_satoken_open(w, "dev2", key, got_uid, &open, &err),
                     DRV_ERR_INTEGRITY);
    assert_int_equal(drv_proto_satoken_open(w, "dev1", other, got_uid, &open, &err),
                     DRV_ERR_INTEGRITY);
    cJSON_Delete(w);
    drv_pki_secret_free(key);
    drv_pki_secret_free(other);
    free(pub);
    free(first);
    cJSON_Delete(pod);

    /* no automount: by the account, or by the pod over its account */
    pod = put(f, DRV_KIND_POD,
              "apiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec:\n"
              "  serviceAccountName: quiet\n"
              "  containers: [{name: c, image: busybox}]\n");
    assert_int_equal(
        drv_satoken_for_pod(t, f->store, "dev1", pod, now, &tok, &exp, &due, NULL, &err),
        DRV_ERR_NOTFOUND);
    cJSON_Delete(pod);
    /* a projected token without the mount: issued for the volume only, as long as it asks */
    pod = put(f, DRV_KIND_POD,
              "apiVersion: v1\nkind: Pod\nmetadata: {name: s}\nspec:\n"
              "  serviceAccountName: quiet\n  containers: [{name: c, image: busybox}]\n"
              "  volumes:\n  - name: t\n    projected:\n      sources:\n"
              "      - serviceAccountToken: {path: token, expirationSeconds: 900}\n");
    bool mount = true;
    assert_int_equal(
        drv_satoken_for_pod(t, f->store, "dev1", pod, now, &tok, &exp, &due, &mount, &err), DRV_OK);
    assert_false(mount);
    assert_int_equal(exp, now + 900);
    cJSON_Delete(pod);
    pod = put(f, DRV_KIND_POD,
              "apiVersion: v1\nkind: Pod\nmetadata: {name: r}\nspec:\n"
              "  serviceAccountName: quiet\n  automountServiceAccountToken: true\n"
              "  containers: [{name: c, image: busybox}]\n");
    assert_int_equal(
        drv_satoken_for_pod(t, f->store, "dev1", pod, now, &tok, &exp, &due, NULL, &err), DRV_OK);
    cJSON_Delete(pod);
    /* a binding's roleRef is fixed; its subjects are not */
    char field[64] = "";
    cJSON *b = put(f, DRV_KIND_ROLEBINDING,
                   "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
                   "metadata: {name: b, namespace: edge}\nroleRef: {apiGroup: "
                   "rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects: []\n");
    cJSON *b2 = yaml("apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
                     "metadata: {name: b, namespace: edge}\nroleRef: {apiGroup: "
                     "rbac.authorization.k8s.io, kind: ClusterRole, name: view}\n"
                     "subjects: [{kind: Group, name: x}]\n");
    assert_int_equal(drv_model_normalize(b2, NULL), DRV_OK);
    assert_int_equal(drv_ctrl_serviceaccount_admit(f->store, DRV_KIND_ROLEBINDING, false, b2, field,
                                                   sizeof(field), &err),
                     DRV_OK);
    cJSON_ReplaceItemInObject(drv_json_get(b2, "roleRef"), "name", cJSON_CreateString("edit"));
    assert_int_equal(drv_ctrl_serviceaccount_admit(f->store, DRV_KIND_ROLEBINDING, false, b2, field,
                                                   sizeof(field), &err),
                     DRV_ERR_INVALID);
    assert_string_equal(field, "roleRef");
    cJSON_Delete(b2);
    cJSON_Delete(b);
}

/* ---- the bridge: tokens in desired state ---- */

static char *node_pub_pem;

static drv_err_t node_key(void *ctx, const char *node, char **pub, drv_error_t *err)
{
    (void)ctx;
    if (strcmp(node, "dev1"))
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "no key");
    *pub = strdup(node_pub_pem);
    return DRV_OK;
}

static drv_err_t sa_token(void *ctx, const char *node, const cJSON *pod, int64_t now,
                          const char **token, int64_t *exp, int64_t *due, bool *mount,
                          drv_error_t *err)
{
    fx_t *f = ctx;
    return drv_satoken_for_pod(drv_auth_satoken(f->auth), f->store, node, pod, now, token, exp, due,
                               mount, err);
}

/* The bridge puts each pod's token in its node's document, sealed to that node (left out for
 * a node without a key), and marks the node again when the token is due for renewal. */
static void test_desired_tokens(void **state)
{
    fx_t *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    char *key = NULL;
    assert_int_equal(drv_pki_key_generate(&key, &err), DRV_OK);
    assert_int_equal(drv_pki_key_public(key, &node_pub_pem, &err), DRV_OK);
    cJSON_Delete(put(f, DRV_KIND_SERVICEACCOUNT,
                     "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default}\n"));
    cJSON *p1 = put(f, DRV_KIND_POD,
                    "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  nodeName: dev1\n"
                    "  containers: [{name: c, image: busybox}]\n");
    cJSON_Delete(put(f, DRV_KIND_POD,
                     "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  nodeName: dev2\n"
                     "  containers: [{name: c, image: busybox}]\n"));
    bdesired_t d;
    memset(&d, 0, sizeof(d));
    bdesired_init(&d);
    d.node_key = node_key;
    d.sa_token = sa_token;
    d.sa_token_ctx = f;
    assert_int_equal(bdesired_load(&d, f->store, &err), DRV_OK);
    int64_t now = (int64_t)time(NULL);
    for (int i = 0; i < 2; i++) {
        const char *name = i ? "dev2" : "dev1";
        bnode_t *n = bdesired_node(&d, name);
        drv_digest_t sum;
        size_t len = 0;
        char *payload = bdesired_build(&d, n, 1, &sum, &len, NULL, &err);
        if (!payload)
            fail_msg("build: %s", drv_error_msg(&err));
        drv_proto_desired_t doc;
        assert_int_equal(drv_proto_desired_parse(payload, len, name, &doc, &err), DRV_OK);
        if (i == 1) { /* no key: nothing in clear, nothing at all */
            assert_int_equal(cJSON_GetArraySize(doc.sa_tokens), 0);
        } else {
            assert_int_equal(cJSON_GetArraySize(doc.sa_tokens), 1);
            const cJSON *t = cJSON_GetArrayItem(doc.sa_tokens, 0);
            assert_null(drv_json_get(t, "token"));
            char uid[65], *tok = NULL;
            assert_int_equal(drv_proto_satoken_open(t, "dev1", key, uid, &tok, &err), DRV_OK);
            assert_string_equal(uid, drv_json_str_at(p1, "metadata.uid"));
            drv_satoken_claims_t c;
            assert_int_equal(drv_satoken_verify(drv_auth_satoken(f->auth), tok, now, &c, &err),
                             DRV_OK);
            assert_string_equal(c.pod, "a");
            assert_string_equal(c.node, "dev1");
            free(tok);
            assert_non_null(strstr(payload, "expirationTimestamp"));
        }
        drv_proto_desired_free(&doc);
        free(payload);
        n->dirty = false;
    }
    d.ndirty = 0;
    /* renewal: nothing due before 80 % of the tokens' life, then the nodes whose pods have
     * one (dev2's held back for want of a key: it may have enrolled meanwhile) */
    bdesired_tokens_due(&d, now + 100);
    assert_int_equal(d.ndirty, 0);
    bdesired_tokens_due(&d, now + DRV_SATOKEN_TTL_DEFAULT_S);
    assert_int_equal(d.ndirty, 2);
    assert_true(bdesired_node(&d, "dev1")->dirty);
    assert_int_equal(d.token_refresh_at, 0); /* set again as they are built */

    /* a pod whose account comes after it (a namespace made by its first pod): its node is
     * built again when the account appears */
    bdesired_node(&d, "dev1")->dirty = bdesired_node(&d, "dev2")->dirty = false;
    d.ndirty = 0;
    cJSON_Delete(put(f, DRV_KIND_POD,
                     "apiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: fresh}\nspec:\n"
                     "  nodeName: dev2\n  containers: [{name: c, image: busybox}]\n"));
    assert_int_equal(bdesired_follow(&d, f->store, &err), DRV_OK);
    bdesired_node(&d, "dev2")->dirty = false;
    d.ndirty = 0;
    cJSON_Delete(put(f, DRV_KIND_SERVICEACCOUNT,
                     "apiVersion: v1\nkind: ServiceAccount\n"
                     "metadata: {name: default, namespace: fresh}\n"));
    assert_int_equal(bdesired_follow(&d, f->store, &err), DRV_OK);
    assert_int_equal(d.ndirty, 1);
    assert_true(bdesired_node(&d, "dev2")->dirty);
    bdesired_free(&d);
    cJSON_Delete(p1);
    drv_pki_secret_free(key);
    free(node_pub_pem);
}

/* A request with a body (a patch); the answer's status code, the whole answer in *resp. */
static int http_body(fx_t *f, const char *method, const char *path, const char *token,
                     const char *ctype, const char *body, char **resp, int ms)
{
    char hdrs[DRV_SATOKEN_MAX + 256];
    assert_int_equal(drv_fmt(hdrs, sizeof(hdrs), "Authorization: Bearer %s\r\n%s%s%s", token,
                             ctype ? "Content-Type: " : "", ctype ? ctype : "",
                             ctype ? "\r\n" : ""),
                     DRV_OK);
    drv_buf_t raw = DRV_BUF_INIT(1 << 20);
    apic_request(&raw, method, path, hdrs, body);
    int fd = apic_connect(f->api);
    drv_buf_t out = DRV_BUF_INIT(1 << 22);
    apic_pump(f->api, fd, raw.data, raw.len, &out, NULL, ms);
    close(fd);
    drv_buf_free(&raw);
    int code = 0;
    if (sscanf(drv_buf_str(&out), "HTTP/1.%*d %d", &code) != 1)
        fail_msg("%s %s: no HTTP answer", method, path);
    if (resp)
        *resp = strdup(drv_buf_str(&out));
    drv_buf_free(&out);
    return code;
}

/* A token that may patch pods cannot move its pod to a stronger account, node or command (a
 * pod's spec is fixed but for images, as in Kubernetes), and ?watch=TRUE is a watch to the
 * authorizer as it is to the handler. */
static void test_no_escalation_through_pods(void **state)
{
    fx_t *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    int64_t now = (int64_t)time(NULL);
    cJSON *low = put(f, DRV_KIND_SERVICEACCOUNT,
                     "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: low, namespace: a}\n");
    cJSON_Delete(
        put(f, DRV_KIND_SERVICEACCOUNT,
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: boss, namespace: a}\n"));
    cJSON *pod = put(f, DRV_KIND_POD,
                     "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\nspec:\n"
                     "  serviceAccountName: low\n  containers: [{name: c, image: busybox}]\n");
    cJSON_Delete(put(f, DRV_KIND_ROLE,
                     "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"
                     "metadata: {name: podpatch, namespace: a}\nrules:\n"
                     "- {apiGroups: [''], resources: [pods], verbs: [get, list, patch, update]}\n"
                     "- {apiGroups: [''], resources: [configmaps], verbs: [list]}\n"));
    cJSON_Delete(put(f, DRV_KIND_ROLEBINDING,
                     "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
                     "metadata: {name: b1, namespace: a}\nroleRef: {apiGroup: "
                     "rbac.authorization.k8s.io, kind: Role, name: podpatch}\n"
                     "subjects: [{kind: ServiceAccount, name: low}]\n"));
    char *tok = token_for(f, pod, low, now, 3607);
    static const char *const patches[] = {
        "{\"spec\":{\"serviceAccountName\":\"boss\",\"serviceAccount\":\"boss\"}}",
        "{\"spec\":{\"nodeName\":\"evil-node\"}}",
        "{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\",\"command\":[\"sh\"]}]}}",
    };
    for (size_t i = 0; i < sizeof(patches) / sizeof(patches[0]); i++) {
        char *resp = NULL;
        int code = http_body(f, "PATCH", "/api/v1/namespaces/a/pods/p", tok,
                             "application/merge-patch+json", patches[i], &resp, 3000);
        if (code != 422 || !strstr(resp, "pod updates may not change fields"))
            fail_msg("PATCH %s: want 422, got:\n%s", patches[i], resp);
        free(resp);
    }
    /* the image may change, as in Kubernetes (kubectl set image: a strategic merge patch) */
    assert_int_equal(
        http_body(f, "PATCH", "/api/v1/namespaces/a/pods/p", tok,
                  "application/strategic-merge-patch+json",
                  "{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox:2\"}]}}", NULL,
                  3000),
        200);
    cJSON *np = NULL;
    assert_int_equal(drv_hstore_get(f->store, DRV_KIND_POD, "a", "p", &np, &err), DRV_OK);
    assert_string_equal(drv_json_str_at(np, "spec.serviceAccountName"), "low");
    cJSON_Delete(np);
    expect(f, "/api/v1/namespaces/a/pods", tok, 200, NULL);
    expect(f, "/api/v1/namespaces/a/configmaps", tok, 200, NULL);
    expect(f, "/api/v1/namespaces/a/configmaps?watch=TRUE", tok, 403, NULL);
    expect(f, "/api/v1/namespaces/a/configmaps?watch=1", tok, 403, NULL);
    free(tok);
    cJSON_Delete(pod);
    cJSON_Delete(low);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_rules),
        cmocka_unit_test_setup_teardown(test_token_rbac, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_accounts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pod_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_desired_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_escalation_through_pods, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
