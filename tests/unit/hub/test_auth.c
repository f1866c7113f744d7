/* hub/auth: token format and verification (garbage, forged, revoked, expired), the secret
 * never stored, spec validation naming fields, the role matrix over the API's whole route
 * table, the first admin token file, and the API enforcing it all over real sockets (401 with
 * a Status on every route without a token, 403 by role, the watch stream, 413 with a token). */
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/api.h"
#include "api_client.h"
#include "auth/auth.h"
#include "drover/buf.h"
#include "drover/fmt.h"
#include "drover/file.h"
#include "drover/log.h"
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
    snprintf(f->dir, sizeof(f->dir), "/tmp/drv-auth-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof(f->db), "%s/hub.db", f->dir);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_open(f->db, &f->store, &err), DRV_OK);
    assert_int_equal(drv_auth_new(f->store, f->dir, 3600, &f->auth, &err), DRV_OK);
    drv_api_opts_t o = {.store = f->store,
                        .max_body = 64 * 1024,
                        .authorize = drv_auth_api_authorize,
                        .authorize_ctx = f->auth,
                        .tokens = drv_auth_api_tokens,
                        .tokens_ctx = f->store};
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

/* One request over a real socket, the API pumped on this thread; the status code, the whole
 * response (head and body) in *resp (caller frees; may be NULL). A watch answers headers and
 * then streams: stop reading at the first event or keep-alive. */
static int http(fx_t *f, const char *method, const char *path, const char *token, const char *body,
                char **resp)
{
    char hdrs[512];
    assert_int_equal(drv_fmt(hdrs, sizeof(hdrs), "Content-Type: application/json\r\n%s%s%s",
                             token ? "Authorization: Bearer " : "", token ? token : "",
                             token ? "\r\n" : ""),
                     DRV_OK);
    drv_buf_t raw = DRV_BUF_INIT(1 << 20);
    apic_request(&raw, method, path, hdrs, body);
    int fd = apic_connect(f->api);
    drv_buf_t out = DRV_BUF_INIT(1 << 22);
    apic_pump(f->api, fd, raw.data, raw.len, &out, "text/event-stream", 5000);
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

static void make(fx_t *f, const char *kind, drv_auth_role_t role, int64_t ttl, int64_t now,
                 char tok[DRV_AUTH_TOKEN_MAX], drv_hstore_token_t *rec)
{
    drv_error_t err = DRV_ERROR_INIT;
    drv_auth_spec_t s = {.kind = kind, .role = role, .ttl_s = ttl};
    if (drv_auth_create(f->store, &s, now, tok, rec, &err) != DRV_OK)
        fail_msg("create: %s", drv_error_msg(&err));
}

static void test_ttl(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    int64_t s = 0;
    assert_int_equal(drv_auth_parse_ttl("24h", &s, &err), DRV_OK);
    assert_int_equal(s, 86400);
    assert_int_equal(drv_auth_parse_ttl("1s", &s, &err), DRV_OK);
    assert_int_equal(s, 1);
    assert_int_equal(drv_auth_parse_ttl("30m", &s, &err), DRV_OK);
    assert_int_equal(s, 1800);
    assert_int_equal(drv_auth_parse_ttl("7d", &s, &err), DRV_OK);
    assert_int_equal(drv_auth_parse_ttl("45", &s, &err), DRV_OK);
    assert_int_equal(s, 45);
    const char *bad[] = {"",      "h",  "0s", "-1h", "1x", "1hh", "1.5h", "99999999999999999999d",
                         "4000d", " 1h"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        drv_error_clear(&err);
        assert_int_equal(drv_auth_parse_ttl(bad[i], &s, &err), DRV_ERR_INVALID);
        assert_non_null(strstr(drv_error_msg(&err), "ttl"));
    }
}

static void test_token_lifecycle(void **state)
{
    fx_t *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    int64_t now = 1700000000;
    char tok[DRV_AUTH_TOKEN_MAX];
    drv_hstore_token_t rec, got;
    make(f, "api", DRV_AUTH_ROLE_VIEWER, 3600, now, tok, &rec);
    assert_int_equal(strlen(tok), DRV_AUTH_TOKEN_MAX - 1);
    assert_memory_equal(tok, "drv1_", 5);
    assert_memory_equal(tok + 5, rec.id, 8);
    assert_int_equal(tok[13], '_');
    assert_int_equal(rec.expires, now + 3600);

    assert_int_equal(drv_auth_authenticate(f->store, tok, now, &got, &err), DRV_OK);
    assert_string_equal(got.role, "viewer");
    char hdr[128];
    snprintf(hdr, sizeof(hdr), "Bearer  %s", tok);
    assert_int_equal(drv_auth_authenticate(f->store, hdr, now, NULL, &err), DRV_OK);
    snprintf(hdr, sizeof(hdr), "bearer %s", tok);
    assert_int_equal(drv_auth_authenticate(f->store, hdr, now, NULL, &err), DRV_OK);

    /* Forged: the right id with another secret; a flipped last character; truncated;
     * garbage; another scheme; nothing. */
    char forged[DRV_AUTH_TOKEN_MAX];
    memcpy(forged, tok, sizeof(forged));
    forged[20] = forged[20] == 'A' ? 'B' : 'A';
    const char *refused[] = {forged,
                             "drv1_00000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                             "drv1_zzzzzzzz_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                             "garbage",
                             "Basic dXNlcjpwYXNz",
                             "Bearer ",
                             "",
                             NULL};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        drv_error_clear(&err);
        assert_int_equal(drv_auth_authenticate(f->store, refused[i], now, NULL, &err),
                         DRV_ERR_PERM);
    }
    char cut[DRV_AUTH_TOKEN_MAX];
    size_t tl = strlen(tok);
    assert_true(tl > 1 && tl < sizeof(cut));
    memcpy(cut, tok, tl - 1); /* the token without its last character */
    cut[tl - 1] = '\0';
    assert_int_equal(drv_auth_authenticate(f->store, cut, now, NULL, &err), DRV_ERR_PERM);
    char longer[DRV_AUTH_TOKEN_MAX + 2];
    snprintf(longer, sizeof(longer), "%sA", tok);
    assert_int_equal(drv_auth_authenticate(f->store, longer, now, NULL, &err), DRV_ERR_PERM);

    /* Expired at its time, not before. */
    assert_int_equal(drv_auth_authenticate(f->store, tok, now + 3599, NULL, &err), DRV_OK);
    drv_error_clear(&err);
    assert_int_equal(drv_auth_authenticate(f->store, tok, now + 3600, NULL, &err), DRV_ERR_PERM);
    assert_non_null(strstr(drv_error_msg(&err), "expired"));
    /* Revoked. */
    assert_int_equal(drv_hstore_token_revoke(f->store, rec.id, &err), DRV_OK);
    drv_error_clear(&err);
    assert_int_equal(drv_auth_authenticate(f->store, tok, now, NULL, &err), DRV_ERR_PERM);
    assert_non_null(strstr(drv_error_msg(&err), "revoked"));

    /* Only the hash is stored: the secret appears nowhere in the database files. */
    drv_hstore_close(f->store);
    f->store = NULL;
    const char *sfx[] = {"", "-wal"};
    for (int i = 0; i < 2; i++) {
        char p[160];
        snprintf(p, sizeof(p), "%s%s", f->db, sfx[i]);
        char *data = NULL;
        size_t len = 0;
        if (drv_file_read_capped(p, 64 << 20, &data, &len, &err) != DRV_OK)
            continue;
        assert_null(memmem(data, len, tok + 14, DRV_AUTH_SECRET_LEN));
        free(data);
    }
    assert_int_equal(drv_hstore_open(f->db, &f->store, &err), DRV_OK);
}

static void test_spec_refused(void **state)
{
    fx_t *f = *state;
    char tok[DRV_AUTH_TOKEN_MAX];
    cJSON *labels = cJSON_Parse("{\"site\":\"a\"}");
    cJSON *badlabels = cJSON_Parse("{\"bad key\":\"a\"}");
    cJSON *numlabel = cJSON_Parse("{\"k\":1}");
    const struct {
        drv_auth_spec_t spec;
        const char *field;
    } cases[] = {
        {{.kind = "api"}, "role"},
        {{.kind = "root", .role = DRV_AUTH_ROLE_ADMIN}, "kind"},
        {{.kind = NULL, .role = DRV_AUTH_ROLE_ADMIN}, "kind"},
        {{.kind = "bootstrap", .role = DRV_AUTH_ROLE_VIEWER}, "role"},
        {{.kind = "api", .role = DRV_AUTH_ROLE_VIEWER, .uses = 3}, "uses"},
        {{.kind = "api", .role = DRV_AUTH_ROLE_VIEWER, .labels = labels}, "labels"},
        {{.kind = "bootstrap", .uses = DRV_AUTH_USES_MAX + 1}, "uses"},
        {{.kind = "bootstrap", .labels = badlabels}, "labels"},
        {{.kind = "bootstrap", .labels = numlabel}, "labels.k"},
        {{.kind = "api", .role = DRV_AUTH_ROLE_VIEWER, .description = "a\nb"}, "description"},
        {{.kind = "api", .role = DRV_AUTH_ROLE_VIEWER, .ttl_s = -1}, "ttl"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        drv_error_t err = DRV_ERROR_INIT;
        assert_int_equal(drv_auth_create(f->store, &cases[i].spec, 1, tok, NULL, &err),
                         DRV_ERR_INVALID);
        if (strncmp(drv_error_msg(&err), cases[i].field, strlen(cases[i].field)))
            fail_msg("case %zu: \"%s\" does not name %s", i, drv_error_msg(&err), cases[i].field);
    }
    drv_hstore_token_t *all = NULL;
    size_t n = 9;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_token_list(f->store, &all, &n, &err), DRV_OK);
    assert_int_equal(n, 0); /* nothing half-made */
    free(all);
    /* A bootstrap token with uses and labels is fine. */
    drv_auth_spec_t ok = {.kind = "bootstrap", .uses = 5, .labels = labels, .ttl_s = 60};
    drv_hstore_token_t rec;
    assert_int_equal(drv_auth_create(f->store, &ok, 1, tok, &rec, &err), DRV_OK);
    assert_int_equal(rec.uses_left, 5);
    assert_string_equal(rec.labels, "{\"site\":\"a\"}");
    cJSON_Delete(labels);
    cJSON_Delete(badlabels);
    cJSON_Delete(numlabel);
}

/* A full token table: creating purges what can never be used again, and only when nothing
 * can go is it refused. */
static void test_table_full(void **state)
{
    fx_t *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    char tok[DRV_AUTH_TOKEN_MAX];
    drv_hstore_token_t rec;
    for (int i = 0; i < DRV_HSTORE_TOKENS_MAX; i++) {
        drv_hstore_token_t t = {.kind = "api", .role = "viewer", .created = 1};
        snprintf(t.id, sizeof(t.id), "%08x", (unsigned)i);
        t.revoked = i < 10;
        assert_int_equal(drv_hstore_token_add(f->store, &t, &err), DRV_OK);
    }
    drv_auth_spec_t s = {.kind = "api", .role = DRV_AUTH_ROLE_VIEWER};
    assert_int_equal(drv_auth_create(f->store, &s, 2, tok, &rec, &err), DRV_OK);
    drv_hstore_token_t g;
    assert_int_equal(drv_hstore_token_get(f->store, "00000000", &g, &err), DRV_ERR_NOTFOUND);
    assert_int_equal(drv_hstore_token_get(f->store, "00000010", &g, &err), DRV_OK);
    for (int i = 0; i < 9; i++)
        assert_int_equal(drv_auth_create(f->store, &s, 2, tok, &rec, &err), DRV_OK);
    drv_error_clear(&err);
    assert_int_equal(drv_auth_create(f->store, &s, 2, tok, &rec, &err), DRV_ERR_RANGE);
    assert_non_null(strstr(drv_error_msg(&err), "full"));
}

/* The role matrix over every route and method of the API's own table. */
static void test_role_matrix(void **state)
{
    (void)state;
    size_t n = 0;
    const drv_api_route_t *r = drv_api_routes(&n);
    bool saw_tokens = false;
    for (size_t i = 0; i < n; i++) {
        for (unsigned m = DRV_API_M_GET; m <= DRV_API_M_DELETE; m <<= 1) {
            if (!(r[i].methods & m))
                continue;
            bool get = m == DRV_API_M_GET;
            bool tokens = r[i].op == DRV_API_OP_TOKENS || r[i].op == DRV_API_OP_TOKEN ||
                          r[i].op == DRV_API_OP_NODE_REVOKE || r[i].op == DRV_API_OP_IDENTITIES ||
                          r[i].op == DRV_API_OP_IDENTITY; /* admin only */
            bool enroll = r[i].op == DRV_API_OP_ENROLL || r[i].op == DRV_API_OP_ENROLL_RENEW ||
                          r[i].op == DRV_API_OP_SESSION || /* the handler checks its own */
                          r[i].op == DRV_API_OP_REVIEW;    /* about oneself: any role */
            bool secret = r[i].kind == DRV_KIND_SECRET;
            bool log = r[i].op == DRV_API_OP_LOG;
            bool node_write = r[i].kind == DRV_KIND_NODE && !get;
            /* cluster-wide RBAC: admin only (no escalation check) */
            bool cluster_rbac = !get && (r[i].kind == DRV_KIND_CLUSTERROLE ||
                                         r[i].kind == DRV_KIND_CLUSTERROLEBINDING);
            saw_tokens |= tokens;
            assert_true(drv_auth_allows(DRV_AUTH_ROLE_ADMIN, m, &r[i]));
            assert_false(drv_auth_allows(DRV_AUTH_ROLE_NONE, m, &r[i]));
            bool viewer = enroll || (get && !secret && !log && !tokens);
            if (drv_auth_allows(DRV_AUTH_ROLE_VIEWER, m, &r[i]) != viewer)
                fail_msg("viewer %u on %s", m, r[i].pattern);
            bool op = enroll || (!tokens && !cluster_rbac &&
                                 (!node_write || (r[i].op != DRV_API_OP_COLLECTION &&
                                                  (m == DRV_API_M_PUT || m == DRV_API_M_PATCH))));
            if (drv_auth_allows(DRV_AUTH_ROLE_OPERATOR, m, &r[i]) != op)
                fail_msg("operator %u on %s", m, r[i].pattern);
        }
    }
    assert_true(saw_tokens);
}

static void test_ensure_admin(void **state)
{
    fx_t *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    char path[256];
    bool created = false;
    int64_t now = (int64_t)time(NULL);
    assert_int_equal(
        drv_auth_ensure_admin(f->store, f->dir, now, path, sizeof(path), &created, &err), DRV_OK);
    assert_true(created);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    char *tok = NULL;
    size_t len = 0;
    assert_int_equal(drv_file_read_capped(path, 256, &tok, &len, &err), DRV_OK);
    assert_int_equal(tok[len - 1], '\n');
    tok[len - 1] = '\0';
    drv_hstore_token_t t;
    assert_int_equal(drv_auth_authenticate(f->store, tok, now, &t, &err), DRV_OK);
    assert_string_equal(t.role, "admin");
    /* Again: there is one, nothing new, the file stays. */
    assert_int_equal(
        drv_auth_ensure_admin(f->store, f->dir, now, path, sizeof(path), &created, &err), DRV_OK);
    assert_false(created);
    /* Revoked (an admin locked out): the next start makes a new one. */
    assert_int_equal(drv_hstore_token_revoke(f->store, t.id, &err), DRV_OK);
    assert_int_equal(
        drv_auth_ensure_admin(f->store, f->dir, now, path, sizeof(path), &created, &err), DRV_OK);
    assert_true(created);
    char *tok2 = NULL;
    assert_int_equal(drv_file_read_capped(path, 256, &tok2, &len, &err), DRV_OK);
    assert_string_not_equal(tok, tok2);
    free(tok);
    free(tok2);
}

/* Fills {namespace} and {name} in a route pattern. */
static void fill(const char *pattern, char *out, size_t outsz)
{
    size_t o = 0;
    for (const char *p = pattern; *p && o + 16 < outsz;) {
        if (!strncmp(p, "{namespace}", 11)) {
            o += (size_t)snprintf(out + o, outsz - o, "default");
            p += 11;
        } else if (!strncmp(p, "{name}", 6)) {
            o += (size_t)snprintf(out + o, outsz - o, "x");
            p += 6;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

static const char *method_name(unsigned m)
{
    return m == DRV_API_M_GET     ? "GET"
           : m == DRV_API_M_POST  ? "POST"
           : m == DRV_API_M_PUT   ? "PUT"
           : m == DRV_API_M_PATCH ? "PATCH"
                                  : "DELETE";
}

static void test_api_enforces(void **state)
{
    fx_t *f = *state;
    int64_t now = (int64_t)time(NULL);
    char viewer[DRV_AUTH_TOKEN_MAX], op[DRV_AUTH_TOKEN_MAX], admin[DRV_AUTH_TOKEN_MAX],
        boot[DRV_AUTH_TOKEN_MAX], old[DRV_AUTH_TOKEN_MAX];
    drv_hstore_token_t rec;
    make(f, "api", DRV_AUTH_ROLE_VIEWER, 0, now, viewer, &rec);
    make(f, "api", DRV_AUTH_ROLE_OPERATOR, 0, now, op, &rec);
    make(f, "api", DRV_AUTH_ROLE_ADMIN, 0, now, admin, &rec);
    make(f, "bootstrap", DRV_AUTH_ROLE_NONE, 0, now, boot, &rec);
    make(f, "api", DRV_AUTH_ROLE_ADMIN, 1, now - 10, old, &rec); /* expired */

    char *b = NULL;
    assert_int_equal(http(f, "GET", "/healthz", NULL, NULL, &b), 200);
    free(b);
    size_t n = 0;
    const drv_api_route_t *r = drv_api_routes(&n);
    for (size_t i = 0; i < n; i++) {
        char path[256];
        fill(r[i].pattern, path, sizeof(path));
        for (unsigned m = DRV_API_M_GET; m <= DRV_API_M_DELETE; m <<= 1) {
            if (!(r[i].methods & m) || r[i].op == DRV_API_OP_HEALTHZ)
                continue;
            if (r[i].op == DRV_API_OP_ENROLL || r[i].op == DRV_API_OP_ENROLL_RENEW) {
                /* Let through without an API token: this API has no enrollment handler. */
                int c = http(f, "POST", path, NULL, "{}", &b);
                if (c != 404 || !strstr(b, "enrollment is not enabled"))
                    fail_msg("POST %s without a token: %d %s", path, c, b);
                free(b);
                continue;
            }
            if (r[i].op == DRV_API_OP_SESSION) {
                /* Signing in takes its token in the body: this API has no session handler. */
                int c = http(f, method_name(m), path, NULL, "{}", &b);
                if (c != 404 || !strstr(b, "sign-in is not enabled"))
                    fail_msg("%s %s without a token: %d %s", method_name(m), path, c, b);
                free(b);
                continue;
            }
            const char *meth = method_name(m);
            const char *body = m == DRV_API_M_GET || m == DRV_API_M_DELETE ? NULL : "{}";
            int c = http(f, meth, path, NULL, body, &b);
            if (c != 401 || !strstr(b, "\"kind\":\"Status\"") || !strstr(b, "Unauthorized") ||
                !strstr(b, "WWW-Authenticate: Bearer"))
                fail_msg("%s %s without a token: %d %s", meth, path, c, b);
            free(b);
            c = http(f, meth, path, "drv1_garbage", body, &b);
            free(b);
            assert_int_equal(c, 401);
            c = http(f, meth, path, old, body, &b);
            if (c != 401 || !strstr(b, "expired"))
                fail_msg("%s %s with an expired token: %d %s", meth, path, c, b);
            free(b);
            c = http(f, meth, path, boot, body, &b);
            if (c != 403 || !strstr(b, "Forbidden"))
                fail_msg("%s %s with a bootstrap token: %d %s", meth, path, c, b);
            free(b);
        }
    }
    /* Unknown paths: 401 without a token (nothing to learn), 404 with one. */
    assert_int_equal(http(f, "GET", "/api/v1/widgets", NULL, NULL, &b), 401);
    free(b);
    assert_int_equal(http(f, "GET", "/api/v1/widgets", viewer, NULL, &b), 404);
    free(b);

    static const char *DEPLOY =
        "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\"},"
        "\"spec\":{\"replicas\":1,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"template\":"
        "{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":\"c\","
        "\"image\":\"nginx:1\"}]}}}}";
    static const char *SECRET = "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":"
                                "{\"name\":\"s\"},\"data\":{\"k\":\"aGlkZGVu\"}}";
#define DEP "/apis/apps/v1/namespaces/default/deployments"
#define SEC "/api/v1/namespaces/default/secrets"
    /* viewer */
    assert_int_equal(http(f, "GET", "/api/v1/namespaces/default/pods", viewer, NULL, &b), 200);
    free(b);
    assert_int_equal(http(f, "GET", "/metrics", viewer, NULL, &b), 200);
    free(b);
    assert_int_equal(http(f, "POST", DEP, viewer, DEPLOY, &b), 403);
    assert_non_null(strstr(b, "\"reason\":\"Forbidden\""));
    assert_non_null(strstr(b, "may not create deployments"));
    free(b);
    assert_int_equal(http(f, "GET", SEC, viewer, NULL, &b), 403);
    free(b);
    assert_int_equal(http(f, "GET", SEC "?watch=true", viewer, NULL, &b), 403);
    assert_non_null(strstr(b, "may not watch secrets"));
    free(b);
    assert_int_equal(http(f, "GET", "/api/v1/secrets?watch=1", viewer, NULL, &b), 403);
    free(b);
    assert_int_equal(http(f, "GET", "/api/v1/tokens", viewer, NULL, &b), 403);
    free(b);
    assert_int_equal(http(f, "GET", "/api/v1/pods?watch=true", viewer, NULL, &b), 200);
    assert_non_null(strstr(b, "application/json")); /* Kubernetes' watch encoding */
    free(b);
    /* operator */
    assert_int_equal(http(f, "POST", DEP, op, DEPLOY, &b), 201);
    free(b);
    assert_int_equal(http(f, "POST", SEC, op, SECRET, &b), 201);
    free(b);
    assert_int_equal(http(f, "GET", SEC "/s", op, NULL, &b), 200);
    free(b);
    assert_int_equal(http(f, "GET", SEC "/s", viewer, NULL, &b), 403);
    assert_null(strstr(b, "aGlkZGVu"));
    free(b);
    assert_int_equal(http(f, "DELETE", DEP "/web", op, NULL, &b), 200);
    free(b);
    assert_int_equal(http(f, "POST", "/api/v1/tokens", op, "{\"role\":\"viewer\"}", &b), 403);
    free(b);
    assert_int_equal(http(f, "DELETE", "/api/v1/nodes/n1", op, NULL, &b), 403);
    free(b);
    /* admin: tokens */
    assert_int_equal(http(f, "POST", "/api/v1/tokens", admin,
                          "{\"role\":\"viewer\",\"ttl\":\"1h\",\"description\":\"ci\"}", &b),
                     201);
    char *j = strstr(b, "\r\n\r\n");
    cJSON *o = cJSON_Parse(j ? j + 4 : "");
    free(b);
    assert_non_null(o);
    const char *newtok = cJSON_GetObjectItem(o, "token")->valuestring;
    const char *id = cJSON_GetObjectItem(o, "id")->valuestring;
    assert_string_equal(cJSON_GetObjectItem(o, "role")->valuestring, "viewer");
    assert_int_equal(http(f, "GET", "/api/v1/pods", newtok, NULL, &b), 200);
    free(b);
    assert_int_equal(http(f, "GET", "/api/v1/tokens", admin, NULL, &b), 200);
    assert_non_null(strstr(b, id));
    assert_null(strstr(b, "\"token\""));
    assert_null(strstr(b, newtok + 14));
    free(b);
    char tpath[64];
    snprintf(tpath, sizeof(tpath), "/api/v1/tokens/%s", id);
    assert_int_equal(http(f, "DELETE", tpath, admin, NULL, &b), 200);
    assert_non_null(strstr(b, "\"revoked\":true"));
    free(b);
    assert_int_equal(http(f, "GET", "/api/v1/pods", newtok, NULL, &b), 401);
    assert_non_null(strstr(b, "revoked"));
    free(b);
    assert_int_equal(http(f, "DELETE", "/api/v1/tokens/ffffffff", admin, NULL, &b), 404);
    free(b);
    assert_int_equal(http(f, "POST", "/api/v1/tokens", admin, "{\"role\":\"root\"}", &b), 400);
    assert_non_null(strstr(b, "role"));
    free(b);
    assert_int_equal(http(f, "POST", "/api/v1/tokens", admin, "{\"rol\":\"viewer\"}", &b), 400);
    free(b);
    assert_int_equal(http(f, "POST", "/api/v1/tokens", admin, "[1]", &b), 400);
    free(b);
    /* Numbers that do not fit an integer are refused by name, before any conversion (a cast of
     * 1e300 to an integer is undefined behaviour: the ASan+UBSan stage runs this). */
    static const char *const bad_numbers[] = {
        "{\"kind\":\"bootstrap\",\"uses\":1e300}",
        "{\"kind\":\"bootstrap\",\"uses\":-1e300}",
        "{\"kind\":\"bootstrap\",\"uses\":1.5}",
        "{\"kind\":\"bootstrap\",\"uses\":9223372036854775808}",
        "{\"kind\":\"bootstrap\",\"uses\":\"3\"}",
        "{\"role\":\"viewer\",\"ttlSeconds\":1e300}",
        "{\"role\":\"viewer\",\"ttlSeconds\":-9.3e18}",
    };
    for (size_t i = 0; i < sizeof(bad_numbers) / sizeof(bad_numbers[0]); i++) {
        assert_int_equal(http(f, "POST", "/api/v1/tokens", admin, bad_numbers[i], &b), 400);
        assert_non_null(strstr(b, strstr(bad_numbers[i], "uses") ? "uses: must be a whole number"
                                                                 : "ttlSeconds: must be a whole"));
        free(b);
    }
    assert_int_equal(http(f, "POST", "/api/v1/tokens", admin,
                          "{\"kind\":\"bootstrap\",\"uses\":3,\"ttl\":\"24h\",\"labels\":"
                          "{\"site\":\"north\"}}",
                          &b),
                     201);
    assert_non_null(strstr(b, "\"usesLeft\":3"));
    free(b);
    /* A body over the cap is 413 with a valid token. */
    char *big = malloc(70 * 1024);
    memset(big, ' ', 70 * 1024 - 1);
    big[70 * 1024 - 1] = '\0';
    assert_int_equal(http(f, "POST", DEP, admin, big, &b), 413);
    free(b);
    assert_int_equal(http(f, "POST", DEP, NULL, big, &b), 401);
    free(b);
    free(big);
    cJSON_Delete(o);
}

/* Signs in with tok through the session route: the cookie's value into cookie, the CSRF token
 * into csrf. */
static void sign_in(fx_t *f, const char *tok, char *cookie, size_t csz, char *csrf, size_t xsz)
{
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "token", tok);
    cJSON *out = NULL;
    char set[512];
    unsigned code = 0;
    if (drv_auth_api_session(f->auth, DRV_API_M_POST, NULL, NULL, false, body, &out, set,
                             sizeof(set), &code, &err) != DRV_OK)
        fail_msg("sign-in: %s", drv_error_msg(&err));
    assert_int_equal(code, 201);
    const char *v = set + strlen(DRV_API_SESSION_COOKIE "=");
    size_t n = strcspn(v, ";");
    assert_true(n < csz);
    memcpy(cookie, v, n);
    cookie[n] = '\0';
    snprintf(csrf, xsz, "%s", cJSON_GetObjectItem(out, "csrfToken")->valuestring);
    cJSON_Delete(out);
    cJSON_Delete(body);
}

static drv_err_t sign_out(fx_t *f, const char *cookie, const char *csrf, unsigned *code)
{
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *out = NULL;
    char set[512];
    drv_err_t e = drv_auth_api_session(f->auth, DRV_API_M_DELETE, cookie, csrf, false, NULL, &out,
                                       set, sizeof(set), code, &err);
    cJSON_Delete(out);
    return e;
}

/* Sign-out needs the session's CSRF token, and one token signing in and out in a loop cannot
 * fill the remembered sign-outs for everybody else. */
static void test_sign_out(void **state)
{
    fx_t *f = *state;
    int64_t now = time(NULL);
    char viewer[DRV_AUTH_TOKEN_MAX], op[DRV_AUTH_TOKEN_MAX];
    drv_hstore_token_t rec;
    make(f, "api", DRV_AUTH_ROLE_VIEWER, 0, now, viewer, &rec);
    make(f, "api", DRV_AUTH_ROLE_OPERATOR, 0, now, op, &rec);
    char cookie[256], csrf[128];
    unsigned code = 0;
    drv_error_t err = DRV_ERROR_INIT;
    sign_in(f, op, cookie, sizeof(cookie), csrf, sizeof(csrf));
    assert_int_equal(sign_out(f, cookie, NULL, &code), DRV_ERR_PERM);
    assert_int_equal(code, 403);
    assert_int_equal(sign_out(f, cookie, "00", &code), DRV_ERR_PERM);
    assert_int_equal(drv_auth_session_check(f->auth, cookie, now, NULL, &err), DRV_OK);
    for (int i = 0; i < 4200; i++) {
        char c[256], x[128];
        sign_in(f, viewer, c, sizeof(c), x, sizeof(x));
        assert_int_equal(sign_out(f, c, x, &code), DRV_OK);
    }
    assert_int_equal(sign_out(f, cookie, csrf, &code), DRV_OK);
    assert_int_equal(drv_auth_session_check(f->auth, cookie, now, NULL, &err), DRV_ERR_PERM);
}

/* One request with a body of blen bytes (may hold NULs) and the headers hdrs ("K: V\r\n"...). */
static int http_raw(fx_t *f, const char *path, const char *hdrs, const void *body, size_t blen,
                    char **resp)
{
    drv_buf_t raw = DRV_BUF_INIT(1 << 20);
    assert_int_equal(drv_buf_printf(&raw,
                                    "POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                    "Content-Length: %zu\r\n%s\r\n",
                                    path, blen, hdrs),
                     DRV_OK);
    assert_int_equal(drv_buf_append(&raw, body, blen), DRV_OK);
    int fd = apic_connect(f->api);
    drv_buf_t out = DRV_BUF_INIT(1 << 22);
    apic_pump(f->api, fd, raw.data, raw.len, &out, NULL, 5000);
    close(fd);
    drv_buf_free(&raw);
    int code = 0;
    if (sscanf(drv_buf_str(&out), "HTTP/1.%*d %d", &code) != 1)
        fail_msg("POST %s: no HTTP answer", path);
    *resp = strdup(drv_buf_str(&out));
    drv_buf_free(&out);
    return code;
}

/* The JSON body of a whole response. */
static cJSON *body_of(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    assert_non_null(b);
    cJSON *o = cJSON_Parse(b + 4);
    assert_non_null(o);
    return o;
}

#define SSAR "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
#define SSRR "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"

/* kubectl auth can-i: a SelfSubjectAccessReview of verb on resource (group, subresource) in
 * default by tok: the answer's status.allowed; its reason into reason (may be NULL). */
static bool can_i(fx_t *f, const char *tok, const char *verb, const char *group,
                  const char *resource, const char *sub, char *reason, size_t rsz)
{
    char body[512], *b = NULL;
    assert_int_equal(drv_fmt(body, sizeof(body),
                             "{\"kind\":\"SelfSubjectAccessReview\",\"apiVersion\":"
                             "\"authorization.k8s.io/v1\",\"metadata\":{\"creationTimestamp\":"
                             "null},\"spec\":{\"resourceAttributes\":{\"namespace\":\"default\","
                             "\"verb\":\"%s\",\"group\":\"%s\",\"resource\":\"%s\","
                             "\"subresource\":\"%s\"}},\"status\":{\"allowed\":false}}",
                             verb, group, resource, sub),
                     DRV_OK);
    int c = http(f, "POST", SSAR, tok, body, &b);
    if (c != 201)
        fail_msg("can-i %s %s: %d %s", verb, resource, c, b);
    cJSON *o = body_of(b);
    assert_string_equal(cJSON_GetObjectItem(o, "kind")->valuestring, "SelfSubjectAccessReview");
    assert_string_equal(cJSON_GetObjectItem(o, "apiVersion")->valuestring,
                        "authorization.k8s.io/v1");
    const cJSON *st = cJSON_GetObjectItem(o, "status");
    bool allowed = cJSON_IsTrue(cJSON_GetObjectItem(st, "allowed"));
    /* denied only for a refusal by the role, never with allowed */
    if (allowed)
        assert_null(cJSON_GetObjectItem(st, "denied"));
    const cJSON *why = cJSON_GetObjectItem(st, "reason");
    if (reason)
        snprintf(reason, rsz, "%s%s", cJSON_IsString(why) ? why->valuestring : "",
                 cJSON_IsTrue(cJSON_GetObjectItem(st, "denied")) ? " [denied]" : "");
    cJSON_Delete(o);
    free(b);
    return allowed;
}

/* kubectl auth can-i and whoami: each role's answers are what the requests themselves get, a
 * review needs a valid token like any request, protobuf bodies as kubectl 1.33 sends them, the
 * session cookie, and the rules of a role. */
static void test_reviews(void **state)
{
    fx_t *f = *state;
    int64_t now = (int64_t)time(NULL);
    char viewer[DRV_AUTH_TOKEN_MAX], op[DRV_AUTH_TOKEN_MAX], admin[DRV_AUTH_TOKEN_MAX],
        boot[DRV_AUTH_TOKEN_MAX], why[512];
    drv_hstore_token_t vrec, rec;
    make(f, "api", DRV_AUTH_ROLE_VIEWER, 0, now, viewer, &vrec);
    make(f, "api", DRV_AUTH_ROLE_OPERATOR, 0, now, op, &rec);
    make(f, "api", DRV_AUTH_ROLE_ADMIN, 0, now, admin, &rec);
    make(f, "bootstrap", DRV_AUTH_ROLE_NONE, 0, now, boot, &rec);

    assert_false(can_i(f, viewer, "create", "apps", "deployments", "", why, sizeof(why)));
    assert_non_null(strstr(why, "role viewer"));
    assert_non_null(strstr(why, "[denied]"));
    assert_true(can_i(f, op, "create", "apps", "deployments", "", why, sizeof(why)));
    assert_non_null(strstr(why, "operator"));
    assert_true(can_i(f, viewer, "list", "apps", "deployments", "", NULL, 0));
    assert_true(can_i(f, viewer, "watch", "", "pods", "", NULL, 0));
    assert_false(can_i(f, viewer, "get", "", "secrets", "", NULL, 0));
    assert_false(can_i(f, viewer, "list", "", "secrets", "", NULL, 0));
    assert_true(can_i(f, op, "get", "", "secrets", "", NULL, 0));
    assert_false(can_i(f, viewer, "get", "", "pods", "log", NULL, 0));
    assert_true(can_i(f, op, "get", "", "pods", "log", NULL, 0));
    assert_false(can_i(f, op, "delete", "", "nodes", "", why, sizeof(why)));
    assert_null(strstr(why, "namespace")); /* nodes are in none */
    assert_true(can_i(f, op, "patch", "", "nodes", "", NULL, 0));
    assert_false(can_i(f, op, "create", "", "nodes", "", NULL, 0));
    assert_true(can_i(f, admin, "delete", "", "nodes", "", NULL, 0));
    assert_true(can_i(f, op, "update", "apps", "deployments", "scale", NULL, 0));
    assert_false(can_i(f, op, "create", "", "tokens", "", NULL, 0));
    assert_true(can_i(f, admin, "*", "*", "*", "", NULL, 0));
    assert_false(can_i(f, op, "*", "*", "*", "", NULL, 0));
    /* not served: no, with a reason, and not a refusal by the role */
    assert_false(can_i(f, admin, "get", "", "widgets", "", why, sizeof(why)));
    assert_non_null(strstr(why, "no resource widgets"));
    assert_null(strstr(why, "[denied]"));
    assert_false(can_i(f, admin, "deletecollection", "", "pods", "", why, sizeof(why)));
    assert_non_null(strstr(why, "deletecollection"));
    assert_false(can_i(f, admin, "create", "", "deployments", "", NULL, 0)); /* apps' */

    char *b = NULL;
    /* paths */
    static const char *const paths[][3] = {
        {"/metrics", "get", "1"},       {"/healthz", "get", "1"}, {"/api/v1/tokens", "post", "0"},
        {"/api/v1/tokens", "get", "0"}, {"/nope", "get", "0"},
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char body[256];
        assert_int_equal(drv_fmt(body, sizeof(body),
                                 "{\"spec\":{\"nonResourceAttributes\":{\"path\":\"%s\","
                                 "\"verb\":\"%s\"}}}",
                                 paths[i][0], paths[i][1]),
                         DRV_OK);
        assert_int_equal(http(f, "POST", SSAR, viewer, body, &b), 201);
        cJSON *o = body_of(b);
        bool allowed =
            cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "status"), "allowed"));
        if (allowed != (paths[i][2][0] == '1'))
            fail_msg("viewer %s %s: %s", paths[i][1], paths[i][0], b);
        cJSON_Delete(o);
        free(b);
    }
    /* bad reviews name the field */
    assert_int_equal(http(f, "POST", SSAR, viewer, "{\"spec\":{}}", &b), 400);
    assert_non_null(strstr(b, "exactly one of"));
    free(b);
    assert_int_equal(
        http(f, "POST", SSAR, viewer, "{\"spec\":{\"resourceAttributes\":{\"verb\":\"get\"}}}", &b),
        400);
    assert_non_null(strstr(b, "spec.resourceAttributes.resource"));
    free(b);
    assert_int_equal(http(f, "POST", SSAR, viewer, "{\"kind\":\"Pod\",\"spec\":{}}", &b), 400);
    free(b);

    /* kubectl 1.33 sends protobuf: "can-i delete nodes" in default, as it was on the wire */
    static const unsigned char pb[] = {
        0x6b, 0x38, 0x73, 0x00, 0x0a, 0x32, 0x0a, 0x17, 0x61, 0x75, 0x74, 0x68, 0x6f, 0x72,
        0x69, 0x7a, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2e, 0x6b, 0x38, 0x73, 0x2e, 0x69, 0x6f,
        0x2f, 0x76, 0x31, 0x12, 0x17, 0x53, 0x65, 0x6c, 0x66, 0x53, 0x75, 0x62, 0x6a, 0x65,
        0x63, 0x74, 0x41, 0x63, 0x63, 0x65, 0x73, 0x73, 0x52, 0x65, 0x76, 0x69, 0x65, 0x77,
        0x12, 0x40, 0x0a, 0x10, 0x0a, 0x00, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00,
        0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x12, 0x22, 0x0a, 0x20, 0x0a, 0x07, 0x64, 0x65,
        0x66, 0x61, 0x75, 0x6c, 0x74, 0x12, 0x06, 0x64, 0x65, 0x6c, 0x65, 0x74, 0x65, 0x1a,
        0x00, 0x22, 0x00, 0x2a, 0x05, 0x6e, 0x6f, 0x64, 0x65, 0x73, 0x32, 0x00, 0x3a, 0x00,
        0x1a, 0x08, 0x08, 0x00, 0x12, 0x00, 0x1a, 0x00, 0x20, 0x00, 0x1a, 0x00, 0x22, 0x00};
    char hdrs[256];
    const char *toks[] = {op, admin};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(drv_fmt(hdrs, sizeof(hdrs),
                                 "Content-Type: application/vnd.kubernetes.protobuf\r\n"
                                 "Authorization: Bearer %s\r\n",
                                 toks[i]),
                         DRV_OK);
        assert_int_equal(http_raw(f, SSAR, hdrs, pb, sizeof(pb), &b), 201);
        cJSON *o = body_of(b);
        const cJSON *ra = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "spec"), "resourceAttributes");
        assert_string_equal(cJSON_GetObjectItem(ra, "resource")->valuestring, "nodes");
        assert_int_equal(
            cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "status"), "allowed")), i == 1);
        cJSON_Delete(o);
        free(b);
    }

    /* never without a valid API token */
    static const char *const routes[] = {SSAR, SSRR,
                                         "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                         "/apis/authentication.k8s.io/v1beta1/selfsubjectreviews"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(http(f, "POST", routes[i], NULL, "{}", &b), 401);
        free(b);
        assert_int_equal(http(f, "POST", routes[i], "drv1_garbage", "{}", &b), 401);
        free(b);
        assert_int_equal(http(f, "POST", routes[i], boot, "{}", &b), 403);
        free(b);
    }

    /* whoami, v1 (kubectl 1.28+) and v1beta1 (1.27) */
    static const char *const versions[] = {"v1", "v1beta1"};
    for (size_t i = 0; i < 2; i++) {
        char path[96], want[64];
        assert_int_equal(drv_fmt(path, sizeof(path),
                                 "/apis/authentication.k8s.io/%s/selfsubjectreviews", versions[i]),
                         DRV_OK);
        assert_int_equal(http(f, "POST", path, viewer, "{}", &b), 201);
        cJSON *o = body_of(b);
        assert_int_equal(drv_fmt(want, sizeof(want), "authentication.k8s.io/%s", versions[i]),
                         DRV_OK);
        assert_string_equal(cJSON_GetObjectItem(o, "apiVersion")->valuestring, want);
        assert_string_equal(cJSON_GetObjectItem(o, "kind")->valuestring, "SelfSubjectReview");
        const cJSON *ui = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "status"), "userInfo");
        assert_int_equal(drv_fmt(want, sizeof(want), "drover:token:%s", vrec.id), DRV_OK);
        assert_string_equal(cJSON_GetObjectItem(ui, "username")->valuestring, want);
        assert_string_equal(cJSON_GetObjectItem(ui, "uid")->valuestring, vrec.id);
        const cJSON *g = cJSON_GetObjectItem(ui, "groups");
        assert_int_equal(cJSON_GetArraySize(g), 2);
        assert_string_equal(cJSON_GetArrayItem(g, 0)->valuestring, "drover:viewer");
        assert_string_equal(cJSON_GetArrayItem(g, 1)->valuestring, "system:authenticated");
        cJSON_Delete(o);
        free(b);
    }

    /* the dashboard's session: whoami with the cookie (and its CSRF token, as for any POST) */
    char cookie[256], csrf[128];
    sign_in(f, op, cookie, sizeof(cookie), csrf, sizeof(csrf));
    assert_int_equal(drv_fmt(hdrs, sizeof(hdrs),
                             "Content-Type: application/json\r\nCookie: %s=%s\r\n"
                             "X-CSRF-Token: %s\r\n",
                             DRV_API_SESSION_COOKIE, cookie, csrf),
                     DRV_OK);
    assert_int_equal(
        http_raw(f, "/apis/authentication.k8s.io/v1/selfsubjectreviews", hdrs, "{}", 2, &b), 201);
    assert_non_null(strstr(b, "\"drover:operator\""));
    free(b);
    assert_int_equal(drv_fmt(hdrs, sizeof(hdrs),
                             "Content-Type: application/json\r\nCookie: %s=%s\r\n",
                             DRV_API_SESSION_COOKIE, cookie),
                     DRV_OK);
    assert_int_equal(
        http_raw(f, "/apis/authentication.k8s.io/v1/selfsubjectreviews", hdrs, "{}", 2, &b), 403);
    free(b);

    /* kubectl auth can-i --list: the viewer's rules have no Secrets and no logs */
    assert_int_equal(http(f, "POST", SSRR, viewer, "{\"spec\":{\"namespace\":\"default\"}}", &b),
                     201);
    cJSON *o = body_of(b);
    const cJSON *st = cJSON_GetObjectItem(o, "status");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(st, "incomplete")));
    bool saw_pods = false;
    const cJSON *rule = NULL;
    cJSON_ArrayForEach(rule, cJSON_GetObjectItem(st, "resourceRules"))
    {
        const char *res =
            cJSON_GetArrayItem(cJSON_GetObjectItem(rule, "resources"), 0)->valuestring;
        assert_string_not_equal(res, "secrets");
        assert_string_not_equal(res, "pods/log");
        const cJSON *v = NULL;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(rule, "verbs"))
        {
            if (strcmp(v->valuestring, "create")) /* only the reviews */
                assert_true(!strcmp(v->valuestring, "get") || !strcmp(v->valuestring, "list") ||
                            !strcmp(v->valuestring, "watch"));
        }
        saw_pods |= !strcmp(res, "pods");
    }
    assert_true(saw_pods);
    assert_non_null(cJSON_GetArrayItem(cJSON_GetObjectItem(st, "nonResourceRules"), 0));
    cJSON_Delete(o);
    free(b);
}

int main(void)
{
    drv_log_set_level(DRV_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ttl),
        cmocka_unit_test_setup_teardown(test_token_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spec_refused, setup, teardown),
        cmocka_unit_test(test_role_matrix),
        cmocka_unit_test_setup_teardown(test_table_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ensure_admin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_enforces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reviews, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
