/* Bearer tokens for the hub's API: creation (random id and secret, only the secret's SHA-256
 * stored), verification in constant time, the role matrix, the API's two hooks and the first
 * admin token written to the data directory. */
#include "auth/auth.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "drover/base64.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/log.h"
#include "drover/pki.h"
#include "auth/rbac.h"

#define CREATE_TRIES 8
#define LABEL_KEY_MAX 63
#define LABEL_VALUE_MAX 63

static const char *const role_names[] = {"", "viewer", "operator", "admin"};

drv_err_t drv_auth_role_parse(const char *s, drv_auth_role_t *out, drv_error_t *err)
{
    for (int r = DRV_AUTH_ROLE_VIEWER; r <= DRV_AUTH_ROLE_ADMIN; r++)
        if (s && !strcmp(s, role_names[r])) {
            *out = (drv_auth_role_t)r;
            return DRV_OK;
        }
    return drv_error_set(err, DRV_ERR_INVALID, 0,
                         "role: \"%.32s\" is not a role (admin, operator or viewer)", s ? s : "");
}

const char *drv_auth_role_name(drv_auth_role_t role)
{
    return role >= DRV_AUTH_ROLE_NONE && role <= DRV_AUTH_ROLE_ADMIN ? role_names[role] : "";
}

drv_err_t drv_auth_parse_ttl(const char *s, int64_t *seconds, drv_error_t *err)
{
    if (!s || !*s)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "ttl: empty (e.g. 90s, 30m, 24h, 7d)");
    const char *p = s;
    long long v = 0;
    if (*p < '0' || *p > '9')
        goto bad;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > DRV_AUTH_TTL_MAX_S)
            goto range;
        v = v * 10 + (*p - '0');
    }
    long long mul = 1;
    if (*p) {
        switch (*p) {
        case 's':
            mul = 1;
            break;
        case 'm':
            mul = 60;
            break;
        case 'h':
            mul = 3600;
            break;
        case 'd':
            mul = 86400;
            break;
        default:
            goto bad;
        }
        if (p[1])
            goto bad;
    }
    if (v > DRV_AUTH_TTL_MAX_S / mul)
        goto range;
    v *= mul;
    if (v < 1)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "ttl: \"%.32s\": must be at least 1s", s);
    *seconds = v;
    return DRV_OK;
range:
    return drv_error_set(err, DRV_ERR_INVALID, 0, "ttl: \"%.32s\": longer than ten years", s);
bad:
    return drv_error_set(err, DRV_ERR_INVALID, 0,
                         "ttl: \"%.32s\": expected a number and a unit (s, m, h or d), e.g. 24h",
                         s);
}

/* ---- tokens ---- */

static bool is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

drv_err_t drv_auth_parse_token(const char *token, char id[DRV_AUTH_ID_LEN + 1],
                               drv_digest_t *secret_hash, drv_error_t *err)
{
    const size_t pl = strlen(DRV_AUTH_PREFIX);
    if (!token || strncmp(token, DRV_AUTH_PREFIX, pl))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "not a Drover token (drv1_...)");
    const char *p = token + pl;
    for (size_t i = 0; i < DRV_AUTH_ID_LEN; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "malformed token id");
    if (p[DRV_AUTH_ID_LEN] != '_')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "malformed token");
    const char *sec = p + DRV_AUTH_ID_LEN + 1;
    size_t n = 0;
    while (n <= DRV_AUTH_SECRET_LEN && sec[n] && is_b64url(sec[n]))
        n++;
    if (n != DRV_AUTH_SECRET_LEN || sec[n])
        return drv_error_set(err, DRV_ERR_INVALID, 0, "malformed token secret");
    memcpy(id, p, DRV_AUTH_ID_LEN);
    id[DRV_AUTH_ID_LEN] = '\0';
    drv_digest_of(sec, DRV_AUTH_SECRET_LEN, secret_hash);
    return DRV_OK;
}

static bool text_ok(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f || n >= max)
            return false;
    return true;
}

static bool label_key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > LABEL_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == '/'))
            return false;
    }
    return true;
}

/* A new token and its record, not stored yet. */
static drv_err_t make_token(const drv_auth_spec_t *spec, int64_t now,
                            char token[DRV_AUTH_TOKEN_MAX], drv_hstore_token_t *rec,
                            drv_error_t *err)
{
    bool boot = spec->kind && !strcmp(spec->kind, "bootstrap");
    if (!spec->kind || (!boot && strcmp(spec->kind, "api")))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "kind: \"%.32s\" is not a token kind (api or bootstrap)",
                             spec->kind ? spec->kind : "");
    if (!boot && (spec->role < DRV_AUTH_ROLE_VIEWER || spec->role > DRV_AUTH_ROLE_ADMIN))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "role: required for an api token (admin, operator or viewer)");
    if (boot && spec->role != DRV_AUTH_ROLE_NONE)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "role: a bootstrap token has no role (it can only enrol a device)");
    if (spec->ttl_s < 0 || spec->ttl_s > DRV_AUTH_TTL_MAX_S)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "ttl: must be 1s to ten years");
    if (spec->uses < 0 || spec->uses > DRV_AUTH_USES_MAX || (!boot && spec->uses))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             boot ? "uses: must be 1 to %d (or absent: unlimited)"
                                  : "uses: only a bootstrap token has uses (max %d)",
                             DRV_AUTH_USES_MAX);
    if (spec->labels && !boot)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "labels: only a bootstrap token carries node labels");
    if (spec->description && !text_ok(spec->description, sizeof(rec->description)))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "description: at most %zu bytes, no control characters",
                             sizeof(rec->description) - 1);
    drv_hstore_token_t t = {.created = now,
                            .expires = spec->ttl_s ? now + spec->ttl_s : 0,
                            .uses_left = boot && spec->uses ? spec->uses : -1};
    if (drv_fmt(t.kind, sizeof(t.kind), "%s", spec->kind) != DRV_OK ||
        drv_fmt(t.role, sizeof(t.role), "%s", drv_auth_role_name(spec->role)) != DRV_OK ||
        drv_fmt(t.description, sizeof(t.description), "%s",
                spec->description ? spec->description : "") != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "token kind, role or description too long");
    if (spec->labels) {
        if (!cJSON_IsObject(spec->labels))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "labels: must be an object");
        const cJSON *l;
        cJSON_ArrayForEach(l, spec->labels)
        {
            if (!label_key_ok(l->string))
                return drv_error_set(err, DRV_ERR_INVALID, 0,
                                     "labels: \"%.64s\": a key is 1 to %d letters, digits, "
                                     "'-', '_', '.' or '/'",
                                     l->string, LABEL_KEY_MAX);
            if (!cJSON_IsString(l) || strlen(l->valuestring) > LABEL_VALUE_MAX ||
                !text_ok(l->valuestring, LABEL_VALUE_MAX + 1))
                return drv_error_set(err, DRV_ERR_INVALID, 0,
                                     "labels.%s: must be a string of at most %d characters",
                                     l->string, LABEL_VALUE_MAX);
        }
        char *s = cJSON_PrintUnformatted(spec->labels);
        if (!s)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "labels");
        bool fits = drv_fmt(t.labels, sizeof(t.labels), "%s", s) == DRV_OK;
        free(s);
        if (!fits)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "labels: more than %zu bytes",
                                 sizeof(t.labels) - 1);
    }
    unsigned char idb[DRV_AUTH_ID_LEN / 2], sec[DRV_AUTH_SECRET_BYTES];
    drv_err_t e = drv_pki_random(idb, sizeof(idb), err);
    if (e == DRV_OK)
        e = drv_pki_random(sec, sizeof(sec), err);
    if (e != DRV_OK)
        return e;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(idb); i++) {
        t.id[2 * i] = hex[idb[i] >> 4];
        t.id[2 * i + 1] = hex[idb[i] & 15];
    }
    t.id[DRV_AUTH_ID_LEN] = '\0';
    char *b = drv_base64_encode(sec, sizeof(sec));
    explicit_bzero(sec, sizeof(sec));
    if (!b)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "token");
    char secret[DRV_AUTH_SECRET_LEN + 1];
    for (size_t i = 0; i < DRV_AUTH_SECRET_LEN; i++)
        secret[i] = b[i] == '+' ? '-' : b[i] == '/' ? '_' : b[i];
    secret[DRV_AUTH_SECRET_LEN] = '\0';
    explicit_bzero(b, strlen(b));
    free(b);
    drv_digest_t h;
    drv_digest_of(secret, DRV_AUTH_SECRET_LEN, &h);
    memcpy(t.hash, h.bytes, sizeof(t.hash));
    size_t pl = strlen(DRV_AUTH_PREFIX);
    memcpy(token, DRV_AUTH_PREFIX, pl);
    memcpy(token + pl, t.id, DRV_AUTH_ID_LEN);
    token[pl + DRV_AUTH_ID_LEN] = '_';
    memcpy(token + pl + DRV_AUTH_ID_LEN + 1, secret, DRV_AUTH_SECRET_LEN + 1);
    explicit_bzero(secret, sizeof(secret));
    *rec = t;
    return DRV_OK;
}

drv_err_t drv_auth_create(drv_hstore_t *store, const drv_auth_spec_t *spec, int64_t now,
                          char token[DRV_AUTH_TOKEN_MAX], drv_hstore_token_t *rec, drv_error_t *err)
{
    bool purged_once = false;
    for (int i = 0; i < CREATE_TRIES; i++) {
        drv_hstore_token_t t;
        char tok[DRV_AUTH_TOKEN_MAX];
        drv_err_t e = make_token(spec, now, tok, &t, err);
        if (e == DRV_OK)
            e = drv_hstore_token_add(store, &t, err);
        size_t purged = 0;
        if (e == DRV_ERR_RANGE && !purged_once) {
            /* The table is full: make room by dropping the tokens nobody can use any more. */
            purged_once = true;
            drv_error_t perr = DRV_ERROR_INIT;
            if (drv_hstore_token_purge(store, now, &purged, &perr) == DRV_OK && purged) {
                drv_log_info("api tokens purged", "count=%zu", purged);
                e = drv_hstore_token_add(store, &t, err);
            }
        }
        if (e == DRV_ERR_EXISTS)
            continue; /* an id clash: draw again */
        if (e != DRV_OK)
            return e;
        memcpy(token, tok, DRV_AUTH_TOKEN_MAX);
        explicit_bzero(tok, sizeof(tok));
        if (rec)
            *rec = t;
        drv_log_info("api token created", "id=%s kind=%s role=%s", t.id, t.kind, t.role);
        return DRV_OK;
    }
    return drv_error_set(err, DRV_ERR_EXISTS, 0, "token: no free id after %d tries", CREATE_TRIES);
}

drv_err_t drv_auth_authenticate(drv_hstore_t *store, const char *credential, int64_t now,
                                drv_hstore_token_t *out, drv_error_t *err)
{
    if (!credential || !*credential)
        return drv_error_set(err, DRV_ERR_PERM, 0,
                             "a bearer token is required (Authorization: Bearer drv1_...)");
    const char *tok = credential;
    if (!strncasecmp(tok, "Bearer", 6) && (tok[6] == ' ' || tok[6] == '\t')) {
        tok += 6;
        while (*tok == ' ' || *tok == '\t')
            tok++;
    } else if (strncmp(tok, DRV_AUTH_PREFIX, strlen(DRV_AUTH_PREFIX))) {
        return drv_error_set(err, DRV_ERR_PERM, 0,
                             "only bearer tokens are accepted (Authorization: Bearer drv1_...)");
    }
    char id[DRV_AUTH_ID_LEN + 1];
    drv_digest_t h;
    drv_error_t perr = DRV_ERROR_INIT;
    if (drv_auth_parse_token(tok, id, &h, &perr) != DRV_OK)
        return drv_error_set(err, DRV_ERR_PERM, 0, "invalid token: %s", drv_error_msg(&perr));
    drv_hstore_token_t t;
    drv_error_t gerr = DRV_ERROR_INIT;
    drv_err_t e = drv_hstore_token_get(store, id, &t, &gerr);
    drv_digest_t stored;
    if (e == DRV_ERR_NOTFOUND) {
        /* Same work as a known id, and the same answer as a wrong secret. */
        memset(&t, 0, sizeof(t));
    } else if (e != DRV_OK) {
        if (err)
            *err = gerr;
        return e;
    }
    memcpy(stored.bytes, t.hash, sizeof(stored.bytes));
    bool match = drv_digest_equal(&stored, &h);
    if (e == DRV_ERR_NOTFOUND || !match)
        return drv_error_set(err, DRV_ERR_PERM, 0, "invalid token");
    if (t.revoked)
        return drv_error_set(err, DRV_ERR_PERM, 0, "token %s has been revoked", t.id);
    if (t.expires && now >= t.expires)
        return drv_error_set(err, DRV_ERR_PERM, 0, "token %s has expired", t.id);
    if (out)
        *out = t;
    return DRV_OK;
}

/* Whether two strings of the same length are equal, in time independent of where they
 * differ. */
bool drv_auth_same(const char *x, const char *y)
{
    size_t n = strlen(x);
    if (n != strlen(y))
        return false;
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)(x[i] ^ y[i]);
    return d == 0;
}

/* ---- roles ---- */

bool drv_auth_allows(drv_auth_role_t role, unsigned method, const drv_api_route_t *route)
{
    if (role < DRV_AUTH_ROLE_VIEWER || role > DRV_AUTH_ROLE_ADMIN)
        return false;
    if (!route || role == DRV_AUTH_ROLE_ADMIN)
        return true;
    switch (route->op) {
    case DRV_API_OP_HEALTHZ:
        return true;
    case DRV_API_OP_METRICS:
    case DRV_API_OP_USAGE:
    case DRV_API_OP_DISCOVERY:
    case DRV_API_OP_OPENAPI:
        return method == DRV_API_M_GET;
    case DRV_API_OP_TOKENS:
    case DRV_API_OP_TOKEN:
    case DRV_API_OP_NODE_REVOKE:
    case DRV_API_OP_IDENTITIES:
    case DRV_API_OP_IDENTITY:
        return false; /* admin only */
    case DRV_API_OP_ENROLL:
    case DRV_API_OP_ENROLL_RENEW:
    case DRV_API_OP_SESSION:
        return true; /* no API token needed: the handler checks its own */
    case DRV_API_OP_WATCH_ALL:
        return method == DRV_API_M_GET; /* never Secrets: the stream leaves them out */
    case DRV_API_OP_REVIEW:
        /* about oneself: each question inside is put to this matrix by the handler */
        return method == DRV_API_M_POST;
    case DRV_API_OP_APPLY:
        /* each object is then put to the authorizer as its own POST or PUT */
        return role >= DRV_AUTH_ROLE_OPERATOR && method == DRV_API_M_POST;
    case DRV_API_OP_LOG:
        return role >= DRV_AUTH_ROLE_OPERATOR && method == DRV_API_M_GET;
    case DRV_API_OP_COLLECTION:
    case DRV_API_OP_ITEM:
    case DRV_API_OP_STATUS:
    case DRV_API_OP_SCALE:
        if (method == DRV_API_M_GET)
            return route->kind != DRV_KIND_SECRET || role >= DRV_AUTH_ROLE_OPERATOR;
        if (role < DRV_AUTH_ROLE_OPERATOR)
            return false;
        if (route->kind == DRV_KIND_NODE) /* cordon, drain; Nodes come from their agents */
            return route->op != DRV_API_OP_COLLECTION &&
                   (method == DRV_API_M_PUT || method == DRV_API_M_PATCH);
        /* cluster-wide RBAC reaches beyond what an operator holds (no escalation check) */
        if (route->kind == DRV_KIND_CLUSTERROLE || route->kind == DRV_KIND_CLUSTERROLEBINDING)
            return role >= DRV_AUTH_ROLE_ADMIN;
        return true;
    }
    return false;
}

static const char *verb(const drv_api_authz_t *req)
{
    switch (req->method) {
    case DRV_API_M_GET:
        if (req->route && req->route->op == DRV_API_OP_COLLECTION)
            return req->watch ? "watch" : "list";
        return "get";
    case DRV_API_M_POST:
        return "create";
    case DRV_API_M_PUT:
        return "update";
    case DRV_API_M_PATCH:
        return "patch";
    case DRV_API_M_DELETE:
        return "delete";
    default:
        return "use";
    }
}

static const char *resource(const drv_api_route_t *r)
{
    switch (r->op) {
    case DRV_API_OP_METRICS:
        return "metrics";
    case DRV_API_OP_LOG:
        return "pods/log";
    case DRV_API_OP_TOKENS:
    case DRV_API_OP_TOKEN:
        return "tokens";
    case DRV_API_OP_NODE_REVOKE:
        return "nodes/revoke";
    case DRV_API_OP_IDENTITIES:
    case DRV_API_OP_IDENTITY:
        return "identities";
    case DRV_API_OP_STATUS:
        return r->kind == DRV_KIND_NODE ? "nodes/status" : "status";
    case DRV_API_OP_SCALE:
        return "deployments/scale";
    default:
        return r->kind != DRV_KIND_UNKNOWN ? drv_kind_plural(r->kind) : r->pattern;
    }
}

void drv_auth_user(const drv_hstore_token_t *t, drv_api_user_t *out)
{
    memset(out, 0, sizeof(*out));
    out->known = true;
    /* ids and roles are short and fixed in form: none of these is ever cut */
    drv_fmt_cut(out->username, sizeof(out->username), "drover:token:%s", t->id);
    drv_fmt_cut(out->uid, sizeof(out->uid), "%s", t->id);
    drv_fmt_cut(out->role, sizeof(out->role), "%s", t->role);
    if (*t->role)
        drv_fmt_cut(out->groups[out->ngroups++], sizeof(out->groups[0]), "drover:%s", t->role);
    drv_fmt_cut(out->groups[out->ngroups++], sizeof(out->groups[0]), "system:authenticated");
    drv_fmt_cut(out->description, sizeof(out->description), "%s", t->description);
}

/* ---- service account tokens ---- */

/* The group of a kind's apiVersion ("" for v1). */
static void group_of(drv_kind_t k, char *out, size_t outsz)
{
    const char *gv = drv_kind_api_version(k), *slash = strchr(gv, '/');
    drv_fmt_cut(out, outsz, "%.*s", slash ? (int)(slash - gv) : 0, gv);
}

/* What req asks in RBAC's terms; false: a route no service account may use. *open: one every
 * authenticated client may use (discovery, OpenAPI, reviews about oneself: Kubernetes'
 * system:discovery and system:basic-user). */
static bool rbac_request(const drv_api_authz_t *req, drv_rbac_request_t *rq, char *group,
                         size_t gsz, bool *open)
{
    const drv_api_route_t *r = req->route;
    *open = false;
    memset(rq, 0, sizeof(*rq));
    rq->verb = verb(req);
    rq->ns = req->ns;
    rq->name = req->name;
    rq->subresource = "";
    if (!r) {
        *open = true; /* unknown paths answer 404 */
        return true;
    }
    switch (r->op) {
    case DRV_API_OP_HEALTHZ:
    case DRV_API_OP_DISCOVERY:
    case DRV_API_OP_OPENAPI:
        *open = req->method == DRV_API_M_GET;
        return *open;
    case DRV_API_OP_REVIEW:
        *open = req->method == DRV_API_M_POST;
        return *open;
    case DRV_API_OP_APPLY: /* each object is put to the authorizer on its own */
        *open = req->method == DRV_API_M_POST;
        return *open;
    case DRV_API_OP_METRICS:
        rq->path = "/metrics";
        return true;
    case DRV_API_OP_USAGE:
        drv_fmt_cut(group, gsz, "metrics.k8s.io");
        rq->group = group;
        rq->resource = drv_kind_plural(r->kind);
        return r->kind != DRV_KIND_UNKNOWN;
    case DRV_API_OP_COLLECTION:
    case DRV_API_OP_ITEM:
    case DRV_API_OP_STATUS:
    case DRV_API_OP_SCALE:
    case DRV_API_OP_LOG:
        group_of(r->kind, group, gsz);
        rq->group = group;
        rq->resource = drv_kind_plural(r->kind);
        rq->subresource = r->op == DRV_API_OP_STATUS  ? "status"
                          : r->op == DRV_API_OP_SCALE ? "scale"
                          : r->op == DRV_API_OP_LOG   ? "log"
                                                      : "";
        if (r->op == DRV_API_OP_LOG)
            rq->verb = "get";
        return true;
    default: /* tokens, identities, enrollment, the dashboard's streams: Drover's own */
        return false;
    }
}

/* A service account token: verified, its pod and account still there, then RBAC. */
static unsigned sa_authorize(drv_auth_t *a, const drv_api_authz_t *req, const char *jwt, char *msg,
                             size_t msgsz)
{
    drv_hstore_t *s = drv_auth_store(a);
    drv_satoken_claims_t c;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t e = drv_satoken_verify(drv_auth_satoken(a), jwt, (int64_t)time(NULL), &c, &err);
    if (e == DRV_OK) {
        /* Bound to the pod: a token never outlives it (nor a pod of the same name). */
        cJSON *pod = NULL, *sa = NULL;
        drv_error_t ge = DRV_ERROR_INIT;
        e = drv_hstore_get(s, DRV_KIND_POD, c.ns, c.pod, &pod, &ge);
        const cJSON *pm = drv_json_get(pod, "metadata");
        if (e == DRV_OK && (strcmp(drv_json_str_or(pm, "uid", ""), c.pod_uid) ||
                            drv_json_get(pm, "deletionTimestamp")))
            e = DRV_ERR_NOTFOUND;
        /* ... and to the account the pod runs as now (a pod's account cannot change through
         * the API, but a token must not outlive a change either). */
        const cJSON *ps = drv_json_get(pod, "spec");
        const char *pod_sa = drv_json_str(ps, "serviceAccountName");
        if (e == DRV_OK && strcmp(pod_sa && *pod_sa ? pod_sa : "default", c.sa))
            e = DRV_ERR_NOTFOUND;
        if (e == DRV_ERR_NOTFOUND)
            e = drv_error_set(&err, DRV_ERR_PERM, 0,
                              "service account token: pod %s/%s is gone or terminating", c.ns,
                              c.pod);
        if (e == DRV_OK)
            e = drv_hstore_get(s, DRV_KIND_SERVICEACCOUNT, c.ns, c.sa, &sa, &ge);
        if (e == DRV_OK &&
            strcmp(drv_json_str_or(drv_json_get(sa, "metadata"), "uid", ""), c.sa_uid))
            e = DRV_ERR_NOTFOUND;
        if (e == DRV_ERR_NOTFOUND)
            e = drv_error_set(&err, DRV_ERR_PERM, 0,
                              "service account token: service account %s/%s is gone", c.ns, c.sa);
        else if (e != DRV_OK && e != DRV_ERR_PERM)
            err = ge;
        cJSON_Delete(pod);
        cJSON_Delete(sa);
    }
    if (e != DRV_OK) {
        if (e != DRV_ERR_PERM)
            drv_log_error("api: cannot check a service account token", "error=%s",
                          drv_error_msg(&err));
        drv_fmt_cut(msg, msgsz, "Unauthorized: %s",
                    e == DRV_ERR_PERM ? drv_error_msg(&err) : "credentials cannot be checked now");
        return 401;
    }
    char user[320], g1[96], group[64];
    drv_fmt_cut(user, sizeof(user), "system:serviceaccount:%s:%s", c.ns, c.sa);
    drv_fmt_cut(g1, sizeof(g1), "system:serviceaccounts:%s", c.ns);
    const char *groups[] = {"system:serviceaccounts", g1, "system:authenticated"};
    drv_rbac_subject_t who = {user, groups, 3};
    drv_rbac_request_t rq;
    bool open = false, allowed = false;
    if (rbac_request(req, &rq, group, sizeof(group), &open) && !open) {
        drv_error_t rerr = DRV_ERROR_INIT;
        if (drv_rbac_allowed(s, &who, &rq, &allowed, NULL, 0, &rerr) != DRV_OK) {
            drv_log_error("api: cannot evaluate RBAC", "error=%s", drv_error_msg(&rerr));
            drv_fmt_cut(msg, msgsz, "Unauthorized: credentials cannot be checked now");
            return 401;
        }
    }
    /* Kubernetes lets a subject grant only what it holds; Drover does not check that, so a
     * token may not write RBAC objects at all, whatever its rules say. */
    if (!open && allowed && req->method != DRV_API_M_GET && req->route &&
        req->route->kind >= DRV_KIND_ROLE && req->route->kind <= DRV_KIND_CLUSTERROLEBINDING) {
        drv_fmt_cut(msg, msgsz,
                    "%s is forbidden: User \"%s\" may not write RBAC objects: Drover does not "
                    "check privilege escalation, so service account tokens never write them",
                    rq.resource, user);
        return 403;
    }
    if (!open && !allowed) {
        /* Kubernetes' wording, so that clients and people recognise it */
        char what[320];
        if (rq.resource)
            drv_fmt_cut(what, sizeof(what), *req->name ? "%s \"%s\"" : "%s%s", rq.resource,
                        req->name);
        if (rq.resource && *req->ns)
            drv_fmt_cut(msg, msgsz,
                        "%s is forbidden: User \"%s\" cannot %s resource \"%s%s%s\" in API "
                        "group \"%s\" in the namespace \"%s\"",
                        what, user, rq.verb, rq.resource, *rq.subresource ? "/" : "",
                        rq.subresource, rq.group, req->ns);
        else if (rq.resource)
            drv_fmt_cut(msg, msgsz,
                        "%s is forbidden: User \"%s\" cannot %s resource \"%s%s%s\" in API "
                        "group \"%s\" at the cluster scope",
                        what, user, rq.verb, rq.resource, *rq.subresource ? "/" : "",
                        rq.subresource, rq.group);
        else
            drv_fmt_cut(msg, msgsz, "forbidden: User \"%s\" cannot %s %s", user, rq.verb,
                        rq.path ? rq.path : (req->route ? req->route->pattern : "this path"));
        return 403;
    }
    if (req->user) {
        drv_api_user_t *u = req->user;
        memset(u, 0, sizeof(*u));
        u->known = true;
        drv_fmt_cut(u->username, sizeof(u->username), "%s", user);
        drv_fmt_cut(u->uid, sizeof(u->uid), "%s", c.sa_uid);
        for (size_t i = 0; i < 3; i++)
            drv_fmt_cut(u->groups[u->ngroups++], sizeof(u->groups[0]), "%s", groups[i]);
    }
    return 0;
}

unsigned drv_auth_api_authorize(void *ctx, const drv_api_authz_t *req, char *msg, size_t msgsz)
{
    drv_auth_t *a = ctx;
    /* Enrollment needs no API token (a device has none): its handler checks the bootstrap
     * token, or for a renewal the enrolled key; the dashboard's sign-in checks what it is
     * given. */
    if (req->route &&
        (req->route->op == DRV_API_OP_ENROLL || req->route->op == DRV_API_OP_ENROLL_RENEW ||
         req->route->op == DRV_API_OP_SESSION))
        return 0;
    drv_hstore_token_t t;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t e;
    if ((!req->authorization || !*req->authorization) && req->session && *req->session) {
        if (req->cross_origin) {
            drv_fmt_cut(msg, msgsz, "forbidden: a request from another origin");
            return 403;
        }
        drv_auth_session_t s;
        e = drv_auth_session_check(a, req->session, (int64_t)time(NULL), &s, &err);
        if (e == DRV_OK && req->method != DRV_API_M_GET &&
            (!req->csrf || strlen(req->csrf) != strlen(s.csrf) ||
             !drv_auth_same(req->csrf, s.csrf))) {
            drv_fmt_cut(msg, msgsz, "forbidden: CSRF token missing or wrong (X-CSRF-Token)");
            return 403;
        }
        t = s.token;
    } else {
        const char *cred = req->authorization ? req->authorization : "";
        if (!strncasecmp(cred, "Bearer ", 7))
            cred += 7;
        if (drv_satoken_looks_like(cred))
            return sa_authorize(a, req, cred, msg, msgsz);
        e = drv_auth_authenticate(drv_auth_store(a), req->authorization, (int64_t)time(NULL), &t,
                                  &err);
    }
    if (e != DRV_OK) {
        if (e != DRV_ERR_PERM)
            drv_log_error("api: cannot check a token", "error=%s", drv_error_msg(&err));
        drv_fmt_cut(msg, msgsz, "Unauthorized: %s",
                    e == DRV_ERR_PERM ? drv_error_msg(&err) : "credentials cannot be checked now");
        return 401;
    }
    if (strcmp(t.kind, "api")) {
        drv_fmt_cut(msg, msgsz, "forbidden: token %s is a %s token: it can only enrol a device",
                    t.id, t.kind);
        return 403;
    }
    drv_auth_role_t role = DRV_AUTH_ROLE_NONE;
    drv_error_t rerr = DRV_ERROR_INIT;
    if (drv_auth_role_parse(t.role, &role, &rerr) != DRV_OK ||
        !drv_auth_allows(role, req->method, req->route)) {
        drv_fmt_cut(msg, msgsz, "forbidden: token %s (role %s) may not %s %s%s%s", t.id,
                    *t.role ? t.role : "none", verb(req),
                    req->route ? resource(req->route) : "this", *req->ns ? " in namespace " : "",
                    req->ns);
        return 403;
    }
    if (req->user)
        drv_auth_user(&t, req->user);
    return 0;
}

/* ---- the token routes ---- */

static void rfc3339(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if ((!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm)) &&
        drv_fmt(out, 32, "%lld", (long long)t) != DRV_OK)
        out[0] = '\0'; /* cannot happen: 20 digits at most */
}

cJSON *drv_auth_token_json(const drv_hstore_token_t *t, int64_t now)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    char ts[32];
    cJSON_AddStringToObject(o, "id", t->id);
    cJSON_AddStringToObject(o, "kind", t->kind);
    if (*t->role)
        cJSON_AddStringToObject(o, "role", t->role);
    cJSON_AddStringToObject(o, "description", t->description);
    rfc3339(t->created, ts);
    cJSON_AddStringToObject(o, "created", ts);
    if (t->expires) {
        rfc3339(t->expires, ts);
        cJSON_AddStringToObject(o, "expires", ts);
    } else {
        cJSON_AddNullToObject(o, "expires");
    }
    cJSON_AddBoolToObject(o, "revoked", t->revoked);
    bool boot = !strcmp(t->kind, "bootstrap");
    const char *state = t->revoked                        ? "revoked"
                        : t->expires && now >= t->expires ? "expired"
                        : boot && t->uses_left == 0       ? "used"
                                                          : "active";
    cJSON_AddStringToObject(o, "state", state);
    if (boot) {
        if (t->uses_left >= 0)
            cJSON_AddNumberToObject(o, "usesLeft", (double)t->uses_left);
        else
            cJSON_AddNullToObject(o, "usesLeft");
        cJSON *l = cJSON_Parse(*t->labels ? t->labels : "{}");
        if (!cJSON_IsObject(l)) {
            cJSON_Delete(l);
            l = cJSON_CreateObject();
        }
        cJSON_AddItemToObject(o, "labels", l);
    }
    return o;
}

static drv_err_t create_from(drv_hstore_t *store, const cJSON *body, cJSON **out, drv_error_t *err)
{
    drv_auth_spec_t spec = {.kind = "api"};
    const char *role = NULL, *ttl = NULL;
    bool have_ttl_s = false;
    int64_t ttl_s = 0;
    /* The order names the fields in the "unknown field" message. */
    const drv_json_field_t fields[] = {
        {.key = "kind", .type = DRV_JSON_T_STRING, .dest = &spec.kind},
        {.key = "role", .type = DRV_JSON_T_STRING, .dest = &role},
        {.key = "ttl", .type = DRV_JSON_T_STRING, .dest = &ttl},
        {.key = "ttlSeconds",
         .type = DRV_JSON_T_INT,
         .dest = &ttl_s,
         .min = 1,
         .max = DRV_AUTH_TTL_MAX_S,
         .present = &have_ttl_s},
        {.key = "uses",
         .type = DRV_JSON_T_INT,
         .dest = &spec.uses,
         .min = 1,
         .max = DRV_AUTH_USES_MAX},
        {.key = "labels", .type = DRV_JSON_T_ANY, .dest = &spec.labels},
        {.key = "description", .type = DRV_JSON_T_STRING, .dest = &spec.description},
    };
    drv_err_t e =
        drv_json_read_table(body, NULL, fields, DRV_JSON_TABLE_LEN(fields), DRV_JSON_STRICT, err);
    if (e == DRV_OK && role)
        e = drv_auth_role_parse(role, &spec.role, err);
    if (e == DRV_OK && ttl)
        e = drv_auth_parse_ttl(ttl, &spec.ttl_s, err);
    if (e != DRV_OK)
        return e;
    if (have_ttl_s)
        spec.ttl_s = ttl_s;
    int64_t now = (int64_t)time(NULL);
    char token[DRV_AUTH_TOKEN_MAX];
    drv_hstore_token_t rec;
    e = drv_auth_create(store, &spec, now, token, &rec, err);
    if (e == DRV_ERR_RANGE) /* the table is full: a clash with current state, not a 410 */
        e = DRV_ERR_CONFLICT;
    if (e != DRV_OK)
        return e;
    cJSON *o = drv_auth_token_json(&rec, now);
    if (!o || !cJSON_AddStringToObject(o, "token", token)) {
        explicit_bzero(token, sizeof(token));
        cJSON_Delete(o);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "token");
    }
    explicit_bzero(token, sizeof(token));
    *out = o;
    return DRV_OK;
}

drv_err_t drv_auth_api_tokens(void *ctx, unsigned method, const char *id, const cJSON *body,
                              cJSON **out, drv_error_t *err)
{
    drv_hstore_t *store = ctx;
    int64_t now = (int64_t)time(NULL);
    drv_hstore_token_t t;
    drv_err_t e;
    switch (method) {
    case DRV_API_M_POST:
        return create_from(store, body, out, err);
    case DRV_API_M_DELETE:
        e = drv_hstore_token_revoke(store, id, err);
        if (e == DRV_OK)
            e = drv_hstore_token_get(store, id, &t, err);
        if (e != DRV_OK)
            return e;
        drv_log_info("api token revoked", "id=%s", t.id);
        break;
    case DRV_API_M_GET:
        if (!id) {
            drv_hstore_token_t *all = NULL;
            size_t n = 0;
            e = drv_hstore_token_list(store, &all, &n, err);
            if (e != DRV_OK)
                return e;
            cJSON *o = cJSON_CreateObject();
            cJSON *items = o ? cJSON_AddArrayToObject(o, "items") : NULL;
            for (size_t i = 0; items && i < n; i++) {
                cJSON *j = drv_auth_token_json(&all[i], now);
                if (!j || !cJSON_AddItemToArray(items, j)) {
                    cJSON_Delete(j);
                    items = NULL;
                }
            }
            free(all);
            if (!items) {
                cJSON_Delete(o);
                return drv_error_set(err, DRV_ERR_NOMEM, 0, "list tokens");
            }
            *out = o;
            return DRV_OK;
        }
        e = drv_hstore_token_get(store, id, &t, err);
        if (e != DRV_OK)
            return e;
        break;
    default:
        return drv_error_set(err, DRV_ERR_INVALID, 0, "tokens: unsupported method");
    }
    cJSON *o = drv_auth_token_json(&t, now);
    if (!o)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "token");
    *out = o;
    return DRV_OK;
}

/* ---- the first admin token ---- */

drv_err_t drv_auth_ensure_admin(drv_hstore_t *store, const char *data_dir, int64_t now, char *path,
                                size_t pathsz, bool *created, drv_error_t *err)
{
    *created = false;
    int n = snprintf(path, pathsz, "%s/%s", data_dir, DRV_AUTH_ADMIN_FILE);
    if (n < 0 || (size_t)n >= pathsz)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "data directory path too long");
    drv_hstore_token_t *all = NULL;
    size_t count = 0;
    drv_err_t e = drv_hstore_token_list(store, &all, &count, err);
    if (e != DRV_OK)
        return e;
    bool have = false;
    for (size_t i = 0; i < count && !have; i++)
        have = !strcmp(all[i].kind, "api") && !strcmp(all[i].role, "admin") && !all[i].revoked &&
               (!all[i].expires || now < all[i].expires);
    free(all);
    if (have)
        return DRV_OK;
    drv_auth_spec_t spec = {
        .kind = "api", .role = DRV_AUTH_ROLE_ADMIN, .description = "first admin (admin.token)"};
    for (int i = 0; i < CREATE_TRIES; i++) {
        char token[DRV_AUTH_TOKEN_MAX + 1];
        drv_hstore_token_t t;
        e = make_token(&spec, now, token, &t, err);
        if (e != DRV_OK)
            return e;
        size_t len = strlen(token);
        token[len] = '\n';
        e = drv_file_write_atomic(path, token, len + 1, 0600, err);
        explicit_bzero(token, sizeof(token));
        if (e != DRV_OK)
            return drv_error_wrap(err, "write %s", path);
        e = drv_hstore_token_add(store, &t, err);
        if (e == DRV_ERR_EXISTS)
            continue;
        if (e != DRV_OK) {
            (void)unlink(path); /* it names a token that was never stored */
            return e;
        }
        *created = true;
        drv_log_info("api admin token created", "id=%s file=%s", t.id, path);
        return DRV_OK;
    }
    (void)unlink(path);
    return drv_error_set(err, DRV_ERR_EXISTS, 0, "token: no free id after %d tries", CREATE_TRIES);
}
