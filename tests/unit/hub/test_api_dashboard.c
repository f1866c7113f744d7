/* hub/api: what the dashboard relies on (docs/DASHBOARD.md), driven over real sockets with
 * access control on: paged and sorted lists walked page by page, multi-document apply (all or
 * nothing, per-document causes, roles), the multi-kind event stream (kinds, heartbeats, order,
 * 410 as an ERROR event) and the session cookie's edge cases. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/api.h"
#include "api_client.h"
#include "auth/auth.h"
#include "drover/buf.h"
#include "drover/json.h"
#include "store/store.h"
#include "store/store_int.h"

typedef struct {
    char dir[64];
    drv_hstore_t *store;
    drv_auth_t *auth;
    drv_api_t *api;
    char admin[DRV_AUTH_TOKEN_MAX], oper[DRV_AUTH_TOKEN_MAX], viewer[DRV_AUTH_TOKEN_MAX];
} fx_t;

static int64_t fake_seen(void *ctx, const char *node)
{
    (void)ctx;
    return strcmp(node, "n1") ? -1 : INT64_C(1800000000000);
}

static void fake_late(void *ctx, int64_t now_ms, int64_t after_ms, cJSON *out)
{
    (void)ctx;
    (void)now_ms;
    (void)after_ms;
    cJSON_AddStringToObject(out, "n2", "2027-01-15T08:00:00Z");
}

static void make(fx_t *f, drv_auth_role_t role, int64_t ttl, char tok[DRV_AUTH_TOKEN_MAX])
{
    drv_error_t err = DRV_ERROR_INIT;
    drv_auth_spec_t s = {.kind = "api", .role = role, .ttl_s = ttl};
    if (drv_auth_create(f->store, &s, (int64_t)time(NULL), tok, NULL, &err) != DRV_OK)
        fail_msg("create: %s", drv_error_msg(&err));
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/drv-dash-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char db[128];
    snprintf(db, sizeof(db), "%s/hub.db", f->dir);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_open(db, &f->store, &err), DRV_OK);
    assert_int_equal(drv_auth_new(f->store, f->dir, 3600, &f->auth, &err), DRV_OK);
    drv_api_opts_t o = {.store = f->store,
                        .max_body = 256 * 1024,
                        .max_watches = 8,
                        .authorize = drv_auth_api_authorize,
                        .authorize_ctx = f->auth,
                        .tokens = drv_auth_api_tokens,
                        .tokens_ctx = f->store};
    assert_int_equal(drv_api_new(&o, &f->api, &err), DRV_OK);
    drv_api_set_session(f->api, drv_auth_api_session, f->auth);
    drv_api_set_heartbeats(f->api, fake_seen, fake_late, 10000, NULL);
    make(f, DRV_AUTH_ROLE_ADMIN, 0, f->admin);
    make(f, DRV_AUTH_ROLE_OPERATOR, 0, f->oper);
    make(f, DRV_AUTH_ROLE_VIEWER, 0, f->viewer);
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

/* Opens a connection and sends a request; hdrs: extra header lines, each ending in \r\n. */
static int send_req(fx_t *f, const char *method, const char *path, const char *hdrs,
                    const char *body)
{
    drv_buf_t raw = DRV_BUF_INIT(1 << 24);
    apic_request(&raw, method, path, hdrs, body);
    int fd = apic_connect(f->api);
    apic_pump(f->api, fd, raw.data, raw.len, NULL, NULL, 5000);
    drv_buf_free(&raw);
    return fd;
}

/* Pumps the API and reads fd into out until the peer closes, stop appears (if not NULL) or
 * ms pass. */
static void pump(fx_t *f, int fd, drv_buf_t *out, const char *stop, int64_t ms)
{
    apic_pump(f->api, fd, NULL, 0, out, stop, ms);
}

/* One request: the status code; the head in *head, the body in *body (caller frees; either
 * may be NULL). */
static int http(fx_t *f, const char *method, const char *path, const char *hdrs, const char *body,
                char **head, char **resp)
{
    int fd = send_req(f, method, path, hdrs, body);
    drv_buf_t out = DRV_BUF_INIT(1 << 24);
    pump(f, fd, &out, NULL, 5000);
    close(fd);
    const char *s = drv_buf_str(&out);
    int code = 0;
    if (sscanf(s, "HTTP/1.%*d %d", &code) != 1)
        fail_msg("%s %s: no HTTP answer", method, path);
    const char *b = strstr(s, "\r\n\r\n");
    if (head)
        *head = strndup(s, b ? (size_t)(b - s) : strlen(s));
    if (resp)
        *resp = strdup(b ? b + 4 : "");
    drv_buf_free(&out);
    return code;
}

static char *bearer(const char *tok, const char *more)
{
    char *h = NULL;
    assert_true(asprintf(&h, "Authorization: Bearer %s\r\n%s", tok, more ? more : "") > 0);
    return h;
}

/* A request with a token; the body parsed (caller frees). */
static int call(fx_t *f, const char *tok, const char *method, const char *path, const char *ctype,
                const char *body, cJSON **out)
{
    char ct[128] = "";
    if (ctype)
        snprintf(ct, sizeof(ct), "Content-Type: %s\r\n", ctype);
    char *h = bearer(tok, ct);
    char *b = NULL;
    int code = http(f, method, path, h, body, NULL, &b);
    free(h);
    if (out) {
        *out = cJSON_Parse(b);
        if (!*out)
            fail_msg("%s %s: %d, not JSON: %s", method, path, code, b);
    }
    free(b);
    return code;
}

static const char *str_at(const cJSON *o, const char *path)
{
    const cJSON *v = drv_json_at(o, path);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

#define PODS "/api/v1/namespaces/default/pods"

/* in with + / = escaped for a query string. */
static void qesc(const char *in, char *out, size_t outsz)
{
    out[0] = '\0';
    for (const char *p = in; *p; p++) {
        size_t l = strlen(out);
        if (*p == '+' || *p == '/' || *p == '=')
            snprintf(out + l, outsz - l, "%%%02X", (unsigned char)*p);
        else
            snprintf(out + l, outsz - l, "%c", *p);
    }
}

static void add_pod(fx_t *f, const char *name, const char *node, const char *phase)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
             "\"labels\":{\"app\":\"a\"}},\"spec\":{\"nodeName\":\"%s\",\"containers\":"
             "[{\"name\":\"c\",\"image\":\"busybox:1\"}]}}",
             name, node);
    assert_int_equal(call(f, f->admin, "POST", PODS, "application/json", body, NULL), 201);
    if (phase) {
        char path[256], st[128];
        snprintf(path, sizeof(path), PODS "/%s/status", name);
        snprintf(st, sizeof(st), "{\"status\":{\"phase\":\"%s\"}}", phase);
        cJSON *o = NULL;
        int c = call(f, f->admin, "PATCH", path, "application/merge-patch+json", st, &o);
        if (c != 200)
            fail_msg("status of %s: %d %s", name, c, cJSON_PrintUnformatted(o));
        cJSON_Delete(o);
    }
}

/* Walks a list page by page (limit per page, query: more parameters); the names in order
 * into names ("a,b,c,"). Checks remainingItemCount on every page against what is left. */
static void walk(fx_t *f, const char *query, int limit, char *names, size_t namesz,
                 void (*between)(fx_t *f, int page))
{
    char cont[12288] = "";
    names[0] = '\0';
    for (int page = 0; page < 50; page++) {
        char path[12800];
        snprintf(path, sizeof(path), PODS "?limit=%d%s%s%s", limit, query,
                 *cont ? "&continue=" : "", cont);
        cJSON *o = NULL;
        int c = call(f, f->admin, "GET", path, NULL, NULL, &o);
        if (c != 200)
            fail_msg("page %d of %s: %d %s", page, query, c, cJSON_PrintUnformatted(o));
        const cJSON *items = cJSON_GetObjectItem(o, "items");
        assert_true(cJSON_GetArraySize(items) <= limit);
        const cJSON *it;
        cJSON_ArrayForEach(it, items)
        {
            size_t l = strlen(names);
            snprintf(names + l, namesz - l, "%s,", str_at(it, "metadata.name"));
        }
        const char *next = str_at(o, "metadata.continue");
        const cJSON *rem = drv_json_at(o, "metadata.remainingItemCount");
        if (!next) {
            assert_null(rem);
            cJSON_Delete(o);
            return;
        }
        assert_true(cJSON_IsNumber(rem));
        /* What a fresh list holds after this page (5 objects unless they change between). */
        size_t seen = 0;
        for (const char *q = names; *q; q++)
            seen += *q == ',';
        if (!between && (size_t)rem->valuedouble != 5 - seen)
            fail_msg("%s: remainingItemCount %g after %s", query, rem->valuedouble, names);
        assert_true(rem->valuedouble >= 1);
        snprintf(cont, sizeof(cont), "%s", next);
        char esc[sizeof(cont)];
        qesc(cont, esc, sizeof(esc));
        snprintf(cont, sizeof(cont), "%s", esc);
        cJSON_Delete(o);
        if (between)
            between(f, page);
    }
    fail_msg("%s: the walk did not end in 50 pages: %s", query, names);
}

static void five_pods(fx_t *f)
{
    add_pod(f, "p3", "n2", "Running");
    add_pod(f, "p1", "n3", "Pending");
    add_pod(f, "p5", "n1", "Running");
    add_pod(f, "p2", "n5", "Failed");
    add_pod(f, "p4", "n4", "Succeeded");
}

static void test_paging(void **state)
{
    fx_t *f = *state;
    five_pods(f);
    char names[512];

    /* remainingItemCount on the first page: what a fresh list after it holds. */
    cJSON *o = NULL;
    assert_int_equal(call(f, f->admin, "GET", PODS "?limit=2", NULL, NULL, &o), 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "items")), 2);
    assert_int_equal((int)drv_json_at(o, "metadata.remainingItemCount")->valuedouble, 3);
    assert_non_null(str_at(o, "metadata.resourceVersion"));
    cJSON_Delete(o);

    walk(f, "", 2, names, sizeof(names), NULL);
    assert_string_equal(names, "p1,p2,p3,p4,p5,");
    /* The store's order with selectors (read a page at a time from the store). */
    walk(f, "&labelSelector=app%3Da", 2, names, sizeof(names), NULL);
    assert_string_equal(names, "p1,p2,p3,p4,p5,");
    walk(f, "&fieldSelector=metadata.namespace%3Ddefault", 3, names, sizeof(names), NULL);
    assert_string_equal(names, "p1,p2,p3,p4,p5,");
    assert_int_equal(call(f, f->admin, "GET", PODS "?limit=1&fieldSelector=status.phase%3DRunning",
                          NULL, NULL, &o),
                     200);
    assert_string_equal(
        str_at(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "items"), 0), "metadata.name"), "p3");
    assert_int_equal((int)drv_json_at(o, "metadata.remainingItemCount")->valuedouble, 1);
    cJSON_Delete(o);
    walk(f, "&sortBy=metadata.name", 2, names, sizeof(names), NULL);
    assert_string_equal(names, "p1,p2,p3,p4,p5,");
    walk(f, "&sortBy=-metadata.name", 2, names, sizeof(names), NULL);
    assert_string_equal(names, "p5,p4,p3,p2,p1,");
    walk(f, "&sortBy=spec.nodeName", 1, names, sizeof(names), NULL);
    assert_string_equal(names, "p5,p3,p1,p4,p2,");
    /* A status path; ties (two Running) by name, also when descending. */
    walk(f, "&sortBy=status.phase", 2, names, sizeof(names), NULL);
    assert_string_equal(names, "p2,p1,p3,p5,p4,");
    walk(f, "&sortBy=-status.phase", 2, names, sizeof(names), NULL);
    assert_string_equal(names, "p4,p3,p5,p1,p2,");
    walk(f, "&sortBy=status.phase&labelSelector=app%3Da", 3, names, sizeof(names), NULL);
    assert_string_equal(names, "p2,p1,p3,p5,p4,");
    /* A path that no object has, and one whose values are objects: every object once. */
    walk(f, "&sortBy=status.nothing", 2, names, sizeof(names), NULL);
    assert_string_equal(names, "p1,p2,p3,p4,p5,");
    walk(f, "&sortBy=metadata.labels", 2, names, sizeof(names), NULL);
    assert_string_equal(names, "p1,p2,p3,p4,p5,");
    walk(f, "&sortBy=-spec.containers", 2, names, sizeof(names), NULL);
    assert_string_equal(names, "p1,p2,p3,p4,p5,");

    /* limit: 0 is all of it; a larger limit than the list, one page without continue. */
    assert_int_equal(call(f, f->admin, "GET", PODS "?limit=0", NULL, NULL, &o), 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "items")), 5);
    assert_null(drv_json_at(o, "metadata.continue"));
    cJSON_Delete(o);
    assert_int_equal(call(f, f->admin, "GET", PODS "?limit=100000", NULL, NULL, &o), 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "items")), 5);
    assert_null(drv_json_at(o, "metadata.continue"));
    assert_null(drv_json_at(o, "metadata.remainingItemCount"));
    cJSON_Delete(o);
    const char *bad[] = {"-1", "abc", "2x", "99999999999999999999999", "%2B2", "1e3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[128];
        snprintf(path, sizeof(path), PODS "?limit=%s", bad[i]);
        assert_int_equal(call(f, f->admin, "GET", path, NULL, NULL, &o), 400);
        if (!strstr(str_at(o, "message"), "limit"))
            fail_msg("limit=%s: %s", bad[i], str_at(o, "message"));
        cJSON_Delete(o);
    }
    /* Paths that name nothing are refused, not silently left unsorted. */
    const char *badsort[] = {"-",
                             "a%20b",
                             "--metadata.name",
                             "metadata..name",
                             "metadata.",
                             ".name",
                             "spec.containers%5B0%5D.image"};
    for (size_t i = 0; i < sizeof(badsort) / sizeof(badsort[0]); i++) {
        char path[128];
        snprintf(path, sizeof(path), PODS "?sortBy=%s", badsort[i]);
        assert_int_equal(call(f, f->admin, "GET", path, NULL, NULL, &o), 400);
        if (!strstr(str_at(o, "message"), "sortBy"))
            fail_msg("sortBy=%s: %s", badsort[i], str_at(o, "message"));
        cJSON_Delete(o);
    }
}

static void test_paging_tokens(void **state)
{
    fx_t *f = *state;
    five_pods(f);
    cJSON *o = NULL;
    assert_int_equal(call(f, f->admin, "GET", PODS "?limit=2&sortBy=metadata.name", NULL, NULL, &o),
                     200);
    char tok[1024];
    snprintf(tok, sizeof(tok), "%s", str_at(o, "metadata.continue"));
    cJSON_Delete(o);
    assert_true(strlen(tok) > 4);

    char path[4096];
    /* Garbage, tampered with, cut, made for another sortBy or for none: 400 naming continue. */
    char tampered[1024];
    snprintf(tampered, sizeof(tampered), "%s", tok);
    tampered[0] = tampered[0] == 'A' ? 'B' : 'A';
    char cut[1024];
    snprintf(cut, sizeof(cut), "%.*s", (int)strlen(tok) / 2, tok);
    const char *cases[][2] = {
        {"garbage!!", "&sortBy=metadata.name"},
        {tampered, "&sortBy=metadata.name"},
        {cut, "&sortBy=metadata.name"},
        {tok, "&sortBy=-metadata.name"},
        {tok, ""},
        {tok, "&sortBy=status.phase"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char esc[3072];
        qesc(cases[i][0], esc, sizeof(esc));
        snprintf(path, sizeof(path), PODS "?limit=2&continue=%s%s", esc, cases[i][1]);
        int c = call(f, f->admin, "GET", path, NULL, NULL, &o);
        if (c != 400 || !strstr(str_at(o, "message"), "continue"))
            fail_msg("case %zu: %d %s", i, c, cJSON_PrintUnformatted(o));
        cJSON_Delete(o);
    }
    /* An overlong token: 400, nothing held. */
    char *longtok = malloc(20001);
    memset(longtok, 'A', 20000);
    longtok[20000] = '\0';
    snprintf(path, sizeof(path), PODS "?continue=");
    char *lp = NULL;
    assert_true(asprintf(&lp, "%s%s", path, longtok) > 0);
    int c = call(f, f->admin, "GET", lp, NULL, NULL, &o);
    assert_true(c == 400 || c == 414 || c == 431);
    cJSON_Delete(o);
    free(lp);
    free(longtok);

    /* The token alone, no limit: the rest of the list. */
    char esc[3072];
    qesc(tok, esc, sizeof(esc));
    snprintf(path, sizeof(path), PODS "?continue=%s&sortBy=metadata.name", esc);
    assert_int_equal(call(f, f->admin, "GET", path, NULL, NULL, &o), 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "items")), 3);
    assert_string_equal(
        str_at(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "items"), 0), "metadata.name"), "p3");
    cJSON_Delete(o);
}

/* Between pages: the last item shown and one not yet shown go, one new comes after. */
static void churn(fx_t *f, int page)
{
    if (page != 0)
        return;
    assert_int_equal(call(f, f->admin, "DELETE", PODS "/p2", NULL, NULL, NULL), 200);
    assert_int_equal(call(f, f->admin, "DELETE", PODS "/p4", NULL, NULL, NULL), 200);
    add_pod(f, "p6", "n6", NULL);
    add_pod(f, "p0", "n0", NULL); /* before the cut: not shown, as in a fresh list */
}

static void drop_q3(fx_t *f, int page)
{
    if (page == 0)
        assert_int_equal(call(f, f->admin, "DELETE", PODS "/q3", NULL, NULL, NULL), 200);
}

/* A sort key as long as a big annotation still pages: the token carries it whole. */
static void test_paging_long_keys(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < 5; i++) {
        char *body = NULL;
        char note[3001];
        memset(note, 'a' + (4 - i), sizeof(note) - 1);
        note[sizeof(note) - 1] = '\0';
        assert_true(asprintf(&body,
                             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
                             "\"q%d\",\"annotations\":{\"note\":\"%s\"}},\"spec\":{"
                             "\"containers\":[{\"name\":\"c\",\"image\":\"busybox:1\"}]}}",
                             i, note) > 0);
        int c = call(f, f->admin, "POST", PODS, "application/json", body, NULL);
        free(body);
        assert_int_equal(c, 201);
    }
    char names[512];
    walk(f, "&sortBy=metadata.annotations.note", 2, names, sizeof(names), NULL);
    assert_string_equal(names, "q4,q3,q2,q1,q0,");
    walk(f, "&sortBy=-metadata.annotations.note", 2, names, sizeof(names), NULL);
    assert_string_equal(names, "q0,q1,q2,q3,q4,");
    /* The last item shown goes before the next page: the cut key still places it. */
    walk(f, "&sortBy=metadata.annotations.note", 2, names, sizeof(names), drop_q3);
    assert_string_equal(names, "q4,q3,q2,q1,q0,");
}

static void test_paging_churn(void **state)
{
    fx_t *f = *state;
    five_pods(f);
    char names[512];
    walk(f, "&sortBy=metadata.name", 2, names, sizeof(names), churn);
    assert_string_equal(names, "p1,p2,p3,p5,p6,");
}

#define APPLY "/apis/drover.io/v1/apply"

static const char *CM_YAML = "apiVersion: v1\n"
                             "kind: ConfigMap\n"
                             "metadata:\n"
                             "  name: cm1\n"
                             "data:\n"
                             "  a: \"1\"\n";

#define DEPLOY_YAML                                                                                \
    "apiVersion: apps/v1\n"                                                                        \
    "kind: Deployment\n"                                                                           \
    "metadata:\n"                                                                                  \
    "  name: web\n"                                                                                \
    "  namespace: prod\n"                                                                          \
    "spec:\n"                                                                                      \
    "  replicas: 2\n"                                                                              \
    "  selector:\n"                                                                                \
    "    matchLabels: {app: web}\n"                                                                \
    "  template:\n"                                                                                \
    "    metadata:\n"                                                                              \
    "      labels: {app: web}\n"                                                                   \
    "    spec:\n"                                                                                  \
    "      containers:\n"                                                                          \
    "      - name: c\n"                                                                            \
    "        image: %s\n"

static char *two_docs(const char *image)
{
    char *dep = NULL, *out = NULL;
    assert_true(asprintf(&dep, DEPLOY_YAML, image) > 0);
    assert_true(asprintf(&out, "---\n%s---\n%s", CM_YAML, dep) > 0);
    free(dep);
    return out;
}

static void expect_results(const cJSON *o, const char *want)
{
    char got[256] = "";
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(o, "items"))
    {
        size_t l = strlen(got);
        snprintf(got + l, sizeof(got) - l, "%s/%s/%s=%s,", str_at(it, "kind"),
                 str_at(it, "namespace"), str_at(it, "name"), str_at(it, "result"));
    }
    assert_string_equal(got, want);
}

static void nothing_written(fx_t *f)
{
    assert_int_equal(
        call(f, f->admin, "GET", "/api/v1/namespaces/default/configmaps/cm1", NULL, NULL, NULL),
        404);
    assert_int_equal(
        call(f, f->admin, "GET", "/apis/apps/v1/namespaces/prod/deployments/web", NULL, NULL, NULL),
        404);
}

static void test_apply(void **state)
{
    fx_t *f = *state;
    cJSON *o = NULL;
    /* The second document has no image: 422, its cause in document 1, nothing written. */
    char *y = two_docs("\"\"");
    int c = call(f, f->oper, "POST", APPLY, "application/yaml", y, &o);
    free(y);
    if (c != 422)
        fail_msg("bad second document: %d %s", c, cJSON_PrintUnformatted(o));
    const cJSON *causes = drv_json_at(o, "details.causes");
    assert_true(cJSON_GetArraySize(causes) >= 1);
    const cJSON *c0 = cJSON_GetArrayItem(causes, 0);
    assert_int_equal(drv_json_at(c0, "document")->valueint, 1);
    if (!strstr(str_at(c0, "field"), "spec.template.spec.containers[0].image"))
        fail_msg("field: %s", str_at(c0, "field"));
    assert_non_null(str_at(c0, "message"));
    assert_int_equal((int)drv_json_at(o, "code")->valuedouble, 422);
    cJSON_Delete(o);
    nothing_written(f);

    /* Good: created; again: unchanged; one changed: configured, the other unchanged. */
    y = two_docs("nginx:1");
    assert_int_equal(call(f, f->oper, "POST", APPLY, "application/yaml", y, &o), 200);
    expect_results(o, "ConfigMap/default/cm1=created,Deployment/prod/web=created,");
    cJSON_Delete(o);
    assert_int_equal(call(f, f->oper, "POST", APPLY, "application/yaml", y, &o), 200);
    expect_results(o, "ConfigMap/default/cm1=unchanged,Deployment/prod/web=unchanged,");
    cJSON_Delete(o);
    /* The controller's annotations (as the Deployment controller writes them) stay: the same
     * manifest again is still unchanged, and they are still there. */
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *dep = NULL;
    assert_int_equal(drv_hstore_get(f->store, DRV_KIND_DEPLOYMENT, "prod", "web", &dep, &err),
                     DRV_OK);
    cJSON *ann = cJSON_AddObjectToObject(cJSON_GetObjectItem(dep, "metadata"), "annotations");
    cJSON_AddStringToObject(ann, "deployment.kubernetes.io/revision", "1");
    cJSON_AddStringToObject(ann, "note", "by hand");
    assert_int_equal(drv_hstore_update(f->store, DRV_KIND_DEPLOYMENT, dep, &err), DRV_OK);
    cJSON_Delete(dep);
    assert_int_equal(call(f, f->oper, "POST", APPLY, "application/yaml", y, &o), 200);
    expect_results(o, "ConfigMap/default/cm1=unchanged,Deployment/prod/web=configured,");
    cJSON_Delete(o);
    assert_int_equal(call(f, f->oper, "POST", APPLY, "application/yaml", y, &o), 200);
    expect_results(o, "ConfigMap/default/cm1=unchanged,Deployment/prod/web=unchanged,");
    cJSON_Delete(o);
    assert_int_equal(
        call(f, f->admin, "GET", "/apis/apps/v1/namespaces/prod/deployments/web", NULL, NULL, &o),
        200);
    assert_string_equal(
        drv_json_str(drv_json_at(o, "metadata.annotations"), "deployment.kubernetes.io/revision"),
        "1");
    cJSON_Delete(o);
    free(y);
    y = two_docs("nginx:2");
    assert_int_equal(call(f, f->oper, "POST", APPLY, "application/yaml", y, &o), 200);
    expect_results(o, "ConfigMap/default/cm1=unchanged,Deployment/prod/web=configured,");
    cJSON_Delete(o);
    free(y);
    assert_int_equal(
        call(f, f->admin, "GET", "/apis/apps/v1/namespaces/prod/deployments/web", NULL, NULL, &o),
        200);
    assert_string_equal(
        str_at(cJSON_GetArrayItem(drv_json_at(o, "spec.template.spec.containers"), 0), "image"),
        "nginx:2");
    cJSON_Delete(o);

    /* JSON takes one object. */
    assert_int_equal(call(f, f->oper, "POST", APPLY, "application/json",
                          "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                          "\"cm2\"},\"data\":{\"x\":\"y\"}}",
                          &o),
                     200);
    expect_results(o, "ConfigMap/default/cm2=created,");
    cJSON_Delete(o);
}

static void test_apply_refused(void **state)
{
    fx_t *f = *state;
    cJSON *o = NULL;
    /* Garbage YAML, an empty body, a document without a name, an unknown kind. */
    const struct {
        const char *body;
        int code;
        const char *says; /* in the message (400) or the first cause's field (422) */
    } bodies[] = {
        {"key: [unclosed\n  - {", 400, "request body: line 2"},
        {"   \n", 400, "empty"},
        {"- a\n- b\n", 422, ""},
        {"apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", 422, "metadata.name"},
        {"apiVersion: v1\nkind: Gizmo\nmetadata: {name: g}\n", 422, "kind"},
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        int c = call(f, f->oper, "POST", APPLY, "application/yaml", bodies[i].body, &o);
        const char *m = str_at(o, "message");
        const char *got =
            c == 422 ? str_at(cJSON_GetArrayItem(drv_json_at(o, "details.causes"), 0), "field") : m;
        if (c != bodies[i].code || !m || !*m || !got || !strstr(got, bodies[i].says) ||
            (c == 422 && strcmp(got, bodies[i].says)))
            fail_msg("body %zu: %d %s", i, c, cJSON_PrintUnformatted(o));

        cJSON_Delete(o);
    }

    /* More than 100 documents: refused, nothing written. */
    drv_buf_t b = DRV_BUF_INIT(1 << 22);
    for (int i = 0; i < 101; i++)
        assert_int_equal(drv_buf_printf(&b,
                                        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: "
                                        "{name: m%d}\ndata: {a: b}\n",
                                        i),
                         DRV_OK);
    int c = call(f, f->oper, "POST", APPLY, "application/yaml", drv_buf_str(&b), &o);
    if (c != 400 && c != 413 && c != 422)
        fail_msg("101 documents: %d", c);
    assert_non_null(strstr(str_at(o, "message"), "100"));
    cJSON_Delete(o);
    drv_buf_free(&b);
    assert_int_equal(
        call(f, f->admin, "GET", "/api/v1/namespaces/default/configmaps/m0", NULL, NULL, NULL),
        404);

    /* A body over the API's limit. */
    char *big = malloc(300 * 1024);
    memset(big, '#', 300 * 1024 - 1);
    big[300 * 1024 - 1] = '\0';
    c = call(f, f->oper, "POST", APPLY, "application/yaml", big, NULL);
    assert_int_equal(c, 413);
    free(big);

    /* A viewer: 403 and nothing written. */
    char *y = two_docs("nginx:1");
    assert_int_equal(call(f, f->viewer, "POST", APPLY, "application/yaml", y, &o), 403);
    cJSON_Delete(o);
    nothing_written(f);

    /* A viewer's session, with its CSRF token: 403; an operator's without it: 403. */
    for (int k = 0; k < 2; k++) {
        char sin[256];
        snprintf(sin, sizeof(sin), "{\"token\":\"%s\"}", k ? f->oper : f->viewer);
        char *head = NULL, *resp = NULL;
        assert_int_equal(http(f, "POST", "/apis/drover.io/v1/session",
                              "Content-Type: application/json\r\n", sin, &head, &resp),
                         201);
        const char *sc = strstr(head, "drover_session=");
        assert_non_null(sc);
        char cookie[256];
        snprintf(cookie, sizeof(cookie), "%.*s", (int)strcspn(sc, ";\r"), sc);
        cJSON *s = cJSON_Parse(resp);
        char hdrs[600];
        snprintf(hdrs, sizeof(hdrs), "Cookie: %s\r\nContent-Type: application/yaml\r\n%s%s%s",
                 cookie, k ? "" : "X-CSRF-Token: ", k ? "" : str_at(s, "csrfToken"),
                 k ? "" : "\r\n");
        char *rb = NULL;
        assert_int_equal(http(f, "POST", APPLY, hdrs, y, NULL, &rb), 403);
        if (k)
            assert_non_null(strstr(rb, "CSRF"));
        free(rb);
        cJSON_Delete(s);
        free(head);
        free(resp);
    }
    nothing_written(f);
    free(y);

    /* A cluster-scoped kind: apply answers as the route itself does for this role. */
    const char *node = "apiVersion: v1\nkind: Node\nmetadata: {name: nx}\n";
    int want =
        call(f, f->oper, "POST", "/api/v1/nodes", "application/json",
             "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"ny\"}}", NULL);
    c = call(f, f->oper, "POST", APPLY, "application/yaml", node, NULL);
    assert_int_equal(c == 200, want == 201);
}

/* Opens the multi-kind stream; the connection's fd. */
static int open_stream(fx_t *f, const char *query, const char *more_hdrs, drv_buf_t *out,
                       const char *stop)
{
    char path[512];
    snprintf(path, sizeof(path), "/apis/drover.io/v1/watch%s", query);
    char *h = bearer(f->viewer, more_hdrs);
    int fd = send_req(f, "GET", path, h, NULL);
    free(h);
    pump(f, fd, out, stop, 3000);
    return fd;
}

static void test_watch_kinds(void **state)
{
    fx_t *f = *state;
    cJSON *o = NULL;
    const char *cases[][2] = {
        {"", "kinds"},
        {"?kinds=", "kinds"},
        {"?kinds=pods,gizmos", "gizmos"},
        {"?kinds=pods,secrets", "Secret"},
        {"?kinds=Secret", "Secret"},
        {"?kinds=pods,,nodes", "kinds"},
        {"?kinds=podspodspodspodspodspodspodspodspodspodspodspodspodspodspodspodspods", "kinds"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[256];
        snprintf(path, sizeof(path), "/apis/drover.io/v1/watch%s", cases[i][0]);
        int c = call(f, f->admin, "GET", path, NULL, NULL, &o);
        if (c != 400 || !strstr(str_at(o, "message"), cases[i][1]))
            fail_msg("%s: %d %s", path, c, cJSON_PrintUnformatted(o));
        cJSON_Delete(o);
    }
    assert_int_equal(call(f, f->admin, "GET",
                          "/apis/drover.io/v1/watch?kinds=pods&resourceVersion=x", NULL, NULL, &o),
                     400);
    assert_non_null(strstr(str_at(o, "message"), "resourceVersion"));
    cJSON_Delete(o);
}

static void test_watch_all(void **state)
{
    fx_t *f = *state;
    /* From now: a HEARTBEAT first, with now and late. */
    drv_buf_t s = DRV_BUF_INIT(1 << 22);
    int fd = open_stream(f, "?kinds=pods,configmaps,nodes", NULL, &s, "event: HEARTBEAT");
    const char *t = drv_buf_str(&s);
    assert_int_equal(strncmp(t, "HTTP/1.1 200", 12), 0);
    assert_non_null(strstr(t, "text/event-stream"));
    const char *hb = strstr(t, "event: HEARTBEAT\ndata: ");
    assert_non_null(hb);
    assert_null(strstr(t, "event: ADDED"));
    cJSON *beat = cJSON_Parse(hb + strlen("event: HEARTBEAT\ndata: "));
    assert_non_null(beat);
    const char *now = str_at(beat, "now");
    assert_non_null(now);
    int y, mo, d, h, mi, se, ms;
    char z = 0;
    assert_int_equal(
        sscanf(now, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &se, &ms, &z), 8);
    assert_int_equal(z, 'Z');
    assert_true(y >= 2024);
    assert_string_equal(str_at(beat, "late.n2"), "2027-01-15T08:00:00Z");
    cJSON_Delete(beat);

    /* Changes of several kinds, one stream, in order, id = resourceVersion; a Deployment (not
     * asked for) left out. */
    add_pod(f, "w1", "n1", NULL);
    assert_int_equal(call(f, f->admin, "POST", "/api/v1/namespaces/default/configmaps",
                          "application/json",
                          "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                          "\"c1\"},\"data\":{}}",
                          NULL),
                     201);
    char *dep = NULL;
    assert_true(asprintf(&dep, DEPLOY_YAML, "nginx:1") > 0);
    assert_int_equal(call(f, f->admin, "POST", APPLY, "application/yaml", dep, NULL), 200);
    free(dep);
    assert_int_equal(call(f, f->admin, "POST", "/api/v1/nodes", "application/json",
                          "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"n1\"},"
                          "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
                          NULL),
                     201);
    assert_int_equal(call(f, f->admin, "PATCH", "/api/v1/nodes/n1/status",
                          "application/merge-patch+json",
                          "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":"
                          "\"True\",\"lastHeartbeatTime\":\"2020-01-01T00:00:00Z\"}]}}",
                          NULL),
                     200);
    assert_int_equal(call(f, f->admin, "DELETE", PODS "/w1", NULL, NULL, NULL), 200);
    pump(f, fd, &s, "event: DELETED", 3000);
    close(fd);
    t = drv_buf_str(&s);
    const char *want[] = {
        "event: ADDED\nid: ", "\"kind\":\"Pod\"",  "event: ADDED\nid: ",   "\"kind\":\"ConfigMap\"",
        "event: ADDED\nid: ", "\"kind\":\"Node\"", "event: DELETED\nid: ", "\"kind\":\"Pod\""};
    const char *p = strstr(t, "event: HEARTBEAT"); /* the buffer may have moved */
    unsigned long long last = 0;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const char *q = strstr(p, want[i]);
        if (!q)
            fail_msg("no %s after %s", want[i], p);
        if (!strncmp(want[i], "event:", 6)) {
            unsigned long long id = strtoull(q + strlen(want[i]), NULL, 10);
            assert_true(id > last);
            last = id;
        }
        p = q + 1;
    }
    assert_null(strstr(t, "Deployment"));
    /* A Node's lastHeartbeatTime is the owner's. */
    if (!strstr(t, "\"lastHeartbeatTime\":\"2027-01-15T08:00:00Z\""))
        fail_msg("node: %s", strstr(t, "\"kind\":\"Node\""));
    drv_buf_free(&s);
    cJSON *o = NULL;
    assert_int_equal(call(f, f->viewer, "GET", "/api/v1/nodes/n1", NULL, NULL, &o), 200);
    assert_string_equal(
        str_at(cJSON_GetArrayItem(drv_json_at(o, "status.conditions"), 0), "lastHeartbeatTime"),
        "2027-01-15T08:00:00Z");
    cJSON_Delete(o);
    assert_int_equal(call(f, f->viewer, "GET", "/api/v1/nodes?limit=1", NULL, NULL, &o), 200);
    char *txt = cJSON_PrintUnformatted(o);
    assert_non_null(strstr(txt, "2027-01-15T08:00:00Z"));
    free(txt);
    cJSON_Delete(o);

    /* From a resourceVersion: the same events again, a HEARTBEAT after them. */
    drv_buf_t s2 = DRV_BUF_INIT(1 << 22);
    fd = open_stream(f, "?kinds=configmaps,pods&resourceVersion=0", NULL, &s2, "event: HEARTBEAT");
    close(fd);
    t = drv_buf_str(&s2);
    const char *a = strstr(t, "\"kind\":\"Pod\""), *b = strstr(t, "\"kind\":\"ConfigMap\"");
    assert_true(a && b && a < b);
    assert_null(strstr(t, "\"kind\":\"Node\""));
    drv_buf_free(&s2);
    /* Last-Event-ID (EventSource's reconnection) wins over the query. */
    drv_buf_t s3 = DRV_BUF_INIT(1 << 22);
    char lei[64];
    snprintf(lei, sizeof(lei), "Last-Event-ID: %llu\r\n", last - 1);
    fd = open_stream(f, "?kinds=pods&resourceVersion=0", lei, &s3, "event: HEARTBEAT");
    close(fd);
    t = drv_buf_str(&s3);
    assert_non_null(strstr(t, "event: DELETED"));
    assert_null(strstr(t, "event: ADDED"));
    drv_buf_free(&s3);
}

/* The dashboard's workloads of batch/v1 and apps/v1, and the claims of its StatefulSets, come
 * through the stream too; kinds not asked for (the Pod) stay out. */
static void test_watch_workload_kinds(void **state)
{
    fx_t *f = *state;
    drv_buf_t s = DRV_BUF_INIT(1 << 22);
    int fd = open_stream(f, "?kinds=statefulsets,jobs,cronjobs,persistentvolumeclaims", NULL, &s,
                         "event: HEARTBEAT");
    static const char *const docs =
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\n"
        "spec:\n  serviceName: db\n  replicas: 2\n  selector: {matchLabels: {app: db}}\n"
        "  template:\n    metadata: {labels: {app: db}}\n"
        "    spec: {containers: [{name: c, image: busybox}]}\n"
        "---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: once}\n"
        "spec:\n  template:\n    spec:\n      restartPolicy: Never\n"
        "      containers: [{name: c, image: busybox}]\n"
        "---\napiVersion: batch/v1\nkind: CronJob\nmetadata: {name: tick}\n"
        "spec:\n  schedule: '*/5 * * * *'\n  jobTemplate:\n    spec:\n      template:\n"
        "        spec:\n          restartPolicy: Never\n"
        "          containers: [{name: c, image: busybox}]\n"
        "---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data-db-0}\n"
        "spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n";
    cJSON *o = NULL;
    int c = call(f, f->admin, "POST", APPLY, "application/yaml", docs, &o);
    if (c != 200)
        fail_msg("apply: %d %s", c, cJSON_PrintUnformatted(o));
    cJSON_Delete(o);
    add_pod(f, "w2", "n1", NULL);
    pump(f, fd, &s, "\"kind\":\"PersistentVolumeClaim\"", 3000);
    close(fd);
    const char *t = drv_buf_str(&s);
    const char *want[] = {"\"kind\":\"StatefulSet\"", "\"kind\":\"Job\"", "\"kind\":\"CronJob\"",
                          "\"kind\":\"PersistentVolumeClaim\""};
    const char *p = strstr(t, "event: HEARTBEAT");
    assert_non_null(p);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const char *q = strstr(p, want[i]);
        if (!q)
            fail_msg("no %s after %s", want[i], p);
        p = q + 1;
    }
    assert_null(strstr(t, "\"kind\":\"Pod\""));
    drv_buf_free(&s);
}

static size_t count(const char *s, const char *what)
{
    size_t n = 0;
    for (const char *p = strstr(s, what); p; p = strstr(p + 1, what))
        n++;
    return n;
}

/* A quiet stream still gets a HEARTBEAT every 5 s (the page's watchdog counts on it), each
 * with a later now. */
static void test_watch_heartbeats(void **state)
{
    fx_t *f = *state;
    drv_buf_t s = DRV_BUF_INIT(1 << 20);
    int fd = open_stream(f, "?kinds=nodes", NULL, &s, "event: HEARTBEAT");
    assert_int_equal(count(drv_buf_str(&s), "event: HEARTBEAT"), 1);
    int64_t t0 = apic_now_ms();
    while (count(drv_buf_str(&s), "event: HEARTBEAT") < 2 && apic_now_ms() - t0 < 7000)
        pump(f, fd, &s, NULL, 100);
    close(fd);
    int64_t waited = apic_now_ms() - t0;
    const char *t = drv_buf_str(&s);
    if (count(t, "event: HEARTBEAT") != 2 || waited < 4000)
        fail_msg("after %lld ms: %s", (long long)waited, t);
    const char *a = strstr(t, "\"now\":\""), *b = strstr(a + 1, "\"now\":\"");
    assert_true(strncmp(a, b, 35) < 0);
    drv_buf_free(&s);
}

static void test_watch_expired(void **state)
{
    fx_t *f = *state;
    drv_hstore_set_log_keep(f->store, 2);
    for (int i = 0; i < 6; i++) {
        char n[16];
        snprintf(n, sizeof(n), "x%d", i);
        add_pod(f, n, "n1", NULL);
    }
    /* Too old, by the query or by Last-Event-ID, and newer than the store: a stream that
     * carries ERROR 410 (an EventSource cannot read a refused request's status). */
    const char *q[][2] = {{"?kinds=pods&resourceVersion=1", NULL},
                          {"?kinds=pods,nodes", "Last-Event-ID: 1\r\n"},
                          {"?kinds=pods&resourceVersion=999999", NULL}};
    for (size_t i = 0; i < 3; i++) {
        drv_buf_t s = DRV_BUF_INIT(1 << 20);
        int fd = open_stream(f, q[i][0], q[i][1], &s, NULL);
        close(fd);
        const char *t = drv_buf_str(&s);
        if (strncmp(t, "HTTP/1.1 200", 12) || !strstr(t, "event: ERROR\ndata: ") ||
            !strstr(t, "\"code\":410"))
            fail_msg("%s: %s", q[i][0], t);
        assert_null(strstr(t, "event: ADDED"));
        drv_buf_free(&s);
    }
}

static char *sign_in(fx_t *f, const char *tok, char cookie[256], char csrf[128])
{
    char sin[256];
    snprintf(sin, sizeof(sin), "{\"token\":\"%s\"}", tok);
    char *head = NULL, *resp = NULL;
    assert_int_equal(http(f, "POST", "/apis/drover.io/v1/session",
                          "Content-Type: application/json\r\n", sin, &head, &resp),
                     201);
    const char *sc = strstr(head, "drover_session=");
    assert_non_null(sc);
    snprintf(cookie, 256, "%.*s", (int)strcspn(sc, ";\r"), sc);
    cJSON *s = cJSON_Parse(resp);
    snprintf(csrf, 128, "%s", str_at(s, "csrfToken"));
    cJSON_Delete(s);
    free(resp);
    return head;
}

static int with_cookie(fx_t *f, const char *method, const char *path, const char *cookie_hdr,
                       const char *csrf, const char *body)
{
    char h[8400];
    snprintf(h, sizeof(h), "Cookie: %s\r\nContent-Type: application/json\r\n%s%s%s", cookie_hdr,
             csrf ? "X-CSRF-Token: " : "", csrf ? csrf : "", csrf ? "\r\n" : "");
    return http(f, method, path, h, body, NULL, NULL);
}

static void test_session_cookies(void **state)
{
    fx_t *f = *state;
    char oc[256], ocsrf[128], vc[256], vcsrf[128];
    free(sign_in(f, f->oper, oc, ocsrf));
    free(sign_in(f, f->viewer, vc, vcsrf));
    const char *cm = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                     "\"s1\"},\"data\":{}}";
    const char *CMS = "/api/v1/namespaces/default/configmaps";

    /* Among other cookies. */
    char hdr[8192];
    snprintf(hdr, sizeof(hdr), "theme=dark; %s; lang=en", oc);
    assert_int_equal(with_cookie(f, "GET", "/apis/drover.io/v1/session", hdr, NULL, NULL), 200);
    /* Another session's CSRF token does not do. */
    assert_int_equal(with_cookie(f, "POST", CMS, oc, vcsrf, cm), 403);
    assert_int_equal(with_cookie(f, "POST", CMS, oc, "", cm), 403);
    /* The cookie's fields are all signed: another token id, a later expiry, another nonce. */
    const char *val = oc + strlen("drover_session=");
    for (int field = 1; field <= 3; field++) {
        char forged[256];
        snprintf(forged, sizeof(forged), "%s", val);
        char *p = forged;
        for (int k = 0; k < field; k++)
            p = strchr(p, '.') + 1;
        *p = *p == '1' ? '2' : '1';
        snprintf(hdr, sizeof(hdr), "drover_session=%s", forged);
        assert_int_equal(with_cookie(f, "GET", "/apis/drover.io/v1/session", hdr, NULL, NULL), 401);
        assert_int_equal(with_cookie(f, "GET", PODS, hdr, NULL, NULL), 401);
    }
    /* Overlong, empty, a huge expiry, leading dots, a duplicate whose first is garbage. */
    char longv[4200];
    memset(longv, 'a', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    const char *bad[] = {longv, "", "v1.........",
                         "v1.abcdefab.99999999999999999999999.0123456789abcdef0123456789abcdef."
                         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                         ".v1.a.b.c.d"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(hdr, sizeof(hdr), "drover_session=%s", bad[i]);
        int c = with_cookie(f, "GET", PODS, hdr, NULL, NULL);
        if (c != 401)
            fail_msg("cookie %zu: %d", i, c);
    }
    /* Only the exact form the hub signed: no empty fields, no dot at either end. */
    const char *dot = strchr(val, '.');
    char v2[300];
    snprintf(v2, sizeof(v2), ".%s", val);
    snprintf(hdr, sizeof(hdr), "drover_session=%s", v2);
    assert_int_equal(with_cookie(f, "GET", PODS, hdr, NULL, NULL), 401);
    snprintf(v2, sizeof(v2), "%.*s.%s", (int)(dot - val), val, dot); /* v1..<id>... */
    snprintf(hdr, sizeof(hdr), "drover_session=%s", v2);
    assert_int_equal(with_cookie(f, "GET", PODS, hdr, NULL, NULL), 401);
    snprintf(hdr, sizeof(hdr), "drover_session=%s.", val);
    assert_int_equal(with_cookie(f, "GET", PODS, hdr, NULL, NULL), 401);
    snprintf(hdr, sizeof(hdr), "drover_session=%s", val);
    assert_int_equal(with_cookie(f, "GET", PODS, hdr, NULL, NULL), 200);
    snprintf(hdr, sizeof(hdr), "drover_session=garbage; %s", oc);
    assert_int_equal(with_cookie(f, "GET", PODS, hdr, NULL, NULL), 401);
    /* A bearer token wins over the cookie (the CLI never sends one). */
    char h2[1024];
    snprintf(h2, sizeof(h2),
             "Authorization: Bearer %s\r\nCookie: %s\r\nContent-Type: "
             "application/json\r\n",
             f->viewer, oc);
    assert_int_equal(http(f, "POST", CMS, h2, cm, NULL, NULL), 403);

    /* A session never outlives its token: Max-Age and expires are the token's. */
    char shortt[DRV_AUTH_TOKEN_MAX], sc[256], scsrf[128];
    make(f, DRV_AUTH_ROLE_VIEWER, 60, shortt);
    char *head = sign_in(f, shortt, sc, scsrf);
    const char *ma = strstr(head, "Max-Age=");
    assert_non_null(ma);
    long age = strtol(ma + 8, NULL, 10);
    assert_true(age > 0 && age <= 60);
    free(head);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging_churn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging_long_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_workload_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_heartbeats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_cookies, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
