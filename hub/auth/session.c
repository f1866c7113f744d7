/* The dashboard's sessions (docs/DASHBOARD.md): an API token is exchanged once for a cookie
 *   v1.<token id>.<expiry, Unix s>.<nonce, 32 hex>.<HMAC-SHA256 of the rest, 64 hex>
 * signed with a key the hub keeps in <data dir>/session.key, so that sessions survive a hub
 * restart and the hub stores nothing per session. A session is only as good as its token:
 * every request looks the token up (revoked or expired: refused), and the session ends at the
 * token's own expiry at the latest. The CSRF token is an HMAC of the nonce: the page gets it
 * in the sign-in answer (and again from GET), never from the cookie, which it cannot read. A
 * sign-out remembers the nonce until the session would have expired (in memory: a sign-out
 * before a hub restart holds until then, and the cookie is cleared in the browser anyway). */
#include "auth/auth.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <mbedtls/md.h>

#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/log.h"
#include "drover/pki.h"

#define KEY_LEN 32
#define NONCE_LEN 16
#define KEY_FILE "session.key"
#define SIGNED_OUT_MAX 4096
/* Sign-outs one token may have remembered at a time: a holder of one token signing in and out
 * in a loop cannot fill the table for everybody else. */
#define SIGNED_OUT_PER_TOKEN 64

typedef struct signed_out {
    char nonce[NONCE_LEN * 2 + 1];
    char token[17];
    int64_t expires;
} signed_out_t;

struct drv_auth {
    drv_hstore_t *store;
    drv_satoken_t *satoken; /* service account tokens' issuer */
    unsigned char key[KEY_LEN];
    int64_t ttl_s;
    signed_out_t out[SIGNED_OUT_MAX];
    size_t nout;
};

static void hex(const unsigned char *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static bool unhex(const char *s, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + k];
            if (c >= '0' && c <= '9')
                v = v * 16 + (unsigned)(c - '0');
            else if (c >= 'a' && c <= 'f')
                v = v * 16 + (unsigned)(c - 'a' + 10);
            else
                return false;
        }
        out[i] = (unsigned char)v;
    }
    return s[2 * n] == '\0';
}

static bool hmac(const drv_auth_t *a, const char *msg, unsigned char out[32])
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    return md &&
           mbedtls_md_hmac(md, a->key, KEY_LEN, (const unsigned char *)msg, strlen(msg), out) == 0;
}

/* The key from dir/session.key, made (crash-safe, 0600) on the first start. */
static drv_err_t load_key(drv_auth_t *a, const char *dir, drv_error_t *err)
{
    if (!dir)
        return drv_pki_random(a->key, KEY_LEN, err);
    char path[4096];
    if (drv_fmt(path, sizeof(path), "%s/" KEY_FILE, dir) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "session key: data folder path too long");
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    drv_error_t rerr = DRV_ERROR_INIT;
    drv_err_t e = drv_file_read_capped(path, 256, &text, &len, &rerr);
    if (e == DRV_OK) {
        while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
            text[--len] = '\0';
        if (len == KEY_LEN * 2 && unhex(text, a->key, KEY_LEN))
            return DRV_OK;
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s: not a session key (%d hex digits); remove it to make a new "
                             "one (every dashboard session then ends)",
                             path, KEY_LEN * 2);
    }
    if (e != DRV_ERR_NOTFOUND) {
        if (err)
            *err = rerr;
        return drv_error_wrap(err, "session key %s", path);
    }
    if ((e = drv_pki_random(a->key, KEY_LEN, err)) != DRV_OK)
        return e;
    char out[KEY_LEN * 2 + 2];
    hex(a->key, KEY_LEN, out);
    out[KEY_LEN * 2] = '\n';
    out[KEY_LEN * 2 + 1] = '\0';
    e = drv_file_write_atomic(path, out, strlen(out), 0600, err);
    explicit_bzero(out, sizeof(out));
    return e == DRV_OK ? DRV_OK : drv_error_wrap(err, "session key %s", path);
}

drv_err_t drv_auth_new(drv_hstore_t *store, const char *data_dir, int64_t session_ttl_s,
                       drv_auth_t **out, drv_error_t *err)
{
    if (session_ttl_s <= 0 || session_ttl_s > DRV_AUTH_SESSION_TTL_MAX_S)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "session lifetime: %lld s is not between 1 s and %lld s",
                             (long long)session_ttl_s, (long long)DRV_AUTH_SESSION_TTL_MAX_S);
    drv_auth_t *a = calloc(1, sizeof(*a));
    if (!a)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    a->store = store;
    a->ttl_s = session_ttl_s;
    drv_err_t e = load_key(a, data_dir, err);
    if (e == DRV_OK)
        e = drv_satoken_new(data_dir, &a->satoken, err);
    if (e != DRV_OK) {
        drv_auth_free(a);
        return e;
    }
    *out = a;
    return DRV_OK;
}

void drv_auth_free(drv_auth_t *a)
{
    if (!a)
        return;
    explicit_bzero(a->key, sizeof(a->key));
    drv_satoken_free(a->satoken);
    free(a);
}

drv_hstore_t *drv_auth_store(const drv_auth_t *a)
{
    return a->store;
}

drv_satoken_t *drv_auth_satoken(const drv_auth_t *a)
{
    return a ? a->satoken : NULL;
}

static bool csrf_of(const drv_auth_t *a, const char *nonce, char out[DRV_AUTH_CSRF_MAX])
{
    char msg[64];
    unsigned char mac[32];
    if (drv_fmt(msg, sizeof(msg), "csrf.%s", nonce) != DRV_OK || !hmac(a, msg, mac))
        return false;
    hex(mac, 16, out);
    return true;
}

static bool signed_out(drv_auth_t *a, const char *nonce, int64_t now)
{
    bool found = false;
    size_t k = 0;
    for (size_t i = 0; i < a->nout; i++) { /* drops the expired ones on the way */
        if (a->out[i].expires <= now)
            continue;
        found |= !strcmp(a->out[i].nonce, nonce);
        a->out[k++] = a->out[i];
    }
    a->nout = k;
    return found;
}

drv_err_t drv_auth_session_check(drv_auth_t *a, const char *cookie, int64_t now,
                                 drv_auth_session_t *out, drv_error_t *err)
{
    if (!cookie || !*cookie)
        return drv_error_set(err, DRV_ERR_PERM, 0, "not signed in");
    /* v1.<8 hex>.<digits>.<32 hex>.<64 hex> */
    char buf[160];
    if (strlen(cookie) >= sizeof(buf) || drv_fmt(buf, sizeof(buf), "%s", cookie) != DRV_OK)
        return drv_error_set(err, DRV_ERR_PERM, 0, "not a session cookie");
    char *parts[5] = {0};
    char *save = NULL;
    size_t n = 0;
    for (char *p = strtok_r(buf, ".", &save); p && n < 5; p = strtok_r(NULL, ".", &save))
        parts[n++] = p;
    if (n != 5 || strtok_r(NULL, ".", &save) || strcmp(parts[0], "v1") ||
        strlen(parts[1]) != DRV_AUTH_ID_LEN || strlen(parts[3]) != NONCE_LEN * 2 ||
        strlen(parts[4]) != 64 || strspn(parts[2], "0123456789") != strlen(parts[2]) ||
        strlen(parts[2]) > 18 || !*parts[2])
        return drv_error_set(err, DRV_ERR_PERM, 0, "not a session cookie");
    unsigned char mac[32], want[32];
    char msg[96];
    /* strtok_r skips empty fields: only the exact signed form is one (no ".." or edge dots). */
    if (!unhex(parts[4], mac, 32) ||
        drv_fmt(msg, sizeof(msg), "v1.%s.%s.%s", parts[1], parts[2], parts[3]) != DRV_OK ||
        strlen(msg) + 1 + 64 != strlen(cookie) || !hmac(a, msg, want))
        return drv_error_set(err, DRV_ERR_PERM, 0, "not a session cookie");
    unsigned char diff = 0;
    for (size_t i = 0; i < 32; i++)
        diff |= (unsigned char)(mac[i] ^ want[i]);
    if (diff)
        return drv_error_set(err, DRV_ERR_PERM, 0, "the session is not this hub's");
    int64_t exp = strtoll(parts[2], NULL, 10);
    if (now >= exp)
        return drv_error_set(err, DRV_ERR_PERM, 0, "the session has expired; sign in again");
    if (signed_out(a, parts[3], now))
        return drv_error_set(err, DRV_ERR_PERM, 0, "the session was signed out");
    drv_hstore_token_t t;
    drv_error_t gerr = DRV_ERROR_INIT;
    drv_err_t e = drv_hstore_token_get(a->store, parts[1], &t, &gerr);
    if (e == DRV_ERR_NOTFOUND)
        return drv_error_set(err, DRV_ERR_PERM, 0, "the session's token %s no longer exists",
                             parts[1]);
    if (e != DRV_OK) {
        if (err)
            *err = gerr;
        return e;
    }
    if (t.revoked)
        return drv_error_set(err, DRV_ERR_PERM, 0, "the session's token %s has been revoked", t.id);
    if (t.expires && now >= t.expires)
        return drv_error_set(err, DRV_ERR_PERM, 0, "the session's token %s has expired", t.id);
    if (out) {
        memset(out, 0, sizeof(*out));
        out->token = t;
        out->expires = exp;
        if (drv_fmt(out->nonce, sizeof(out->nonce), "%s", parts[3]) != DRV_OK ||
            !csrf_of(a, parts[3], out->csrf))
            return drv_error_set(err, DRV_ERR_PERM, 0, "not a session cookie");
    }
    return DRV_OK;
}

static void rfc3339(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
        out[0] = '\0';
}

static cJSON *session_json(const drv_auth_session_t *s)
{
    cJSON *o = cJSON_CreateObject();
    char ts[32];
    rfc3339(s->expires, ts);
    if (!o || !cJSON_AddStringToObject(o, "kind", "Session") ||
        !cJSON_AddStringToObject(o, "apiVersion", "drover.io/v1") ||
        !cJSON_AddStringToObject(o, "tokenId", s->token.id) ||
        !cJSON_AddStringToObject(o, "role", s->token.role) ||
        !cJSON_AddStringToObject(o, "description", s->token.description) ||
        !cJSON_AddStringToObject(o, "expires", ts) ||
        !cJSON_AddStringToObject(o, "csrfToken", s->csrf)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static drv_err_t sign_in(drv_auth_t *a, const cJSON *body, bool secure, int64_t now, cJSON **out,
                         char *set_cookie, size_t scsz, unsigned *code, drv_error_t *err)
{
    const char *tok = drv_json_str(body, "token");
    if (!tok || !*tok) {
        *code = 400;
        return drv_error_set(err, DRV_ERR_INVALID, 0, "token: an API token is required");
    }
    drv_auth_session_t s;
    memset(&s, 0, sizeof(s));
    drv_err_t e = drv_auth_authenticate(a->store, tok, now, &s.token, err);
    if (e != DRV_OK) {
        *code = e == DRV_ERR_PERM ? 401 : 0;
        return e;
    }
    if (strcmp(s.token.kind, "api")) {
        *code = 403;
        return drv_error_set(err, DRV_ERR_PERM, 0,
                             "token %s is a %s token: it can only enrol a device", s.token.id,
                             s.token.kind);
    }
    unsigned char nonce[NONCE_LEN];
    if ((e = drv_pki_random(nonce, sizeof(nonce), err)) != DRV_OK)
        return e;
    hex(nonce, NONCE_LEN, s.nonce);
    s.expires = now + a->ttl_s;
    if (s.token.expires && s.token.expires < s.expires)
        s.expires = s.token.expires;
    char msg[96], cookie[160];
    unsigned char mac[32];
    char machex[65];
    if (drv_fmt(msg, sizeof(msg), "v1.%s.%lld.%s", s.token.id, (long long)s.expires, s.nonce) !=
            DRV_OK ||
        !hmac(a, msg, mac))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "cannot sign the session");
    hex(mac, 32, machex);
    if (drv_fmt(cookie, sizeof(cookie), "%s.%s", msg, machex) != DRV_OK ||
        !csrf_of(a, s.nonce, s.csrf) ||
        drv_fmt(set_cookie, scsz,
                DRV_API_SESSION_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld%s",
                cookie, (long long)(s.expires - now), secure ? "; Secure" : "") != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "cannot sign the session");
    if (!(*out = session_json(&s)))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    *code = 201;
    drv_log_info("dashboard sign-in", "token=%s role=%s", s.token.id, s.token.role);
    return DRV_OK;
}

/* Remembers a session signed out until it expires, within the table's and the token's caps
 * (over them the sign-out is logged and the cookie, cleared in the browser, still holds). */
static void remember_sign_out(drv_auth_t *a, const drv_auth_session_t *s, int64_t now)
{
    (void)signed_out(a, "", now); /* drops the expired ones */
    size_t mine = 0;
    for (size_t i = 0; i < a->nout; i++)
        mine += !strcmp(a->out[i].token, s->token.id);
    if (a->nout >= SIGNED_OUT_MAX || mine >= SIGNED_OUT_PER_TOKEN) {
        drv_log_warn("dashboard sign-out: too many signed-out sessions remembered; this one "
                     "holds until it expires or its token is revoked",
                     "token=%s", s->token.id);
        return;
    }
    signed_out_t *o = &a->out[a->nout];
    if (drv_fmt(o->nonce, sizeof(o->nonce), "%s", s->nonce) != DRV_OK ||
        drv_fmt(o->token, sizeof(o->token), "%s", s->token.id) != DRV_OK)
        return;
    o->expires = s->expires;
    a->nout++;
}

drv_err_t drv_auth_api_session(void *ctx, unsigned method, const char *cookie, const char *csrf,
                               bool secure, const cJSON *body, cJSON **out, char *set_cookie,
                               size_t scsz, unsigned *code, drv_error_t *err)
{
    drv_auth_t *a = ctx;
    int64_t now = (int64_t)time(NULL);
    set_cookie[0] = '\0';
    *code = 0;
    if (method == DRV_API_M_POST)
        return sign_in(a, body, secure, now, out, set_cookie, scsz, code, err);
    drv_auth_session_t s;
    drv_err_t e = drv_auth_session_check(a, cookie, now, &s, err);
    if (method == DRV_API_M_DELETE) {
        if (e == DRV_OK &&
            (!csrf || strlen(csrf) != strlen(s.csrf) || !drv_auth_same(csrf, s.csrf))) {
            *code = 403;
            return drv_error_set(err, DRV_ERR_PERM, 0,
                                 "forbidden: CSRF token missing or wrong (X-CSRF-Token)");
        }
        if (e == DRV_OK)
            remember_sign_out(a, &s, now);
        if (drv_fmt(set_cookie, scsz,
                    DRV_API_SESSION_COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0%s",
                    secure ? "; Secure" : "") != DRV_OK)
            set_cookie[0] = '\0';
        *out = cJSON_CreateObject();
        if (!*out || !cJSON_AddStringToObject(*out, "kind", "Status") ||
            !cJSON_AddStringToObject(*out, "status", "Success"))
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
        return DRV_OK;
    }
    if (e != DRV_OK) {
        *code = e == DRV_ERR_PERM ? 401 : 0;
        return e;
    }
    if (!(*out = session_json(&s)))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    return DRV_OK;
}
