/* Service account tokens (satoken.h): issue and verify ES256 JSON Web Tokens. JWS wants the
 * signature as r|s (32 bytes each); drv_pki_sign gives DER, so it is converted both ways here. */
#include "auth/satoken.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "drover/base64.h"
#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/log.h"
#include "drover/map.h"
#include "drover/model.h"
#include "drover/pki.h"

#define KEY_MAX 4096
#define LEEWAY_S 60
#define SIG_RAW 64

/* One pod's current token. */
typedef struct issued {
    char uid[64]; /* the pod's, the map's key */
    char sa_uid[64];
    char *jwt;
    int64_t iat, exp;
} issued_t;

struct drv_satoken {
    char *key; /* PEM, wiped on free */
    char *pub;
    drv_map_t issued;   /* pod uid -> issued_t */
    int64_t last_prune; /* Unix s */
};

static void issued_free(issued_t *i)
{
    if (!i)
        return;
    if (i->jwt) {
        explicit_bzero(i->jwt, strlen(i->jwt));
        free(i->jwt);
    }
    free(i);
}

static void free_pem(char **p)
{
    if (*p)
        drv_pki_secret_free(*p);
    *p = NULL;
}

drv_err_t drv_satoken_new(const char *data_dir, drv_satoken_t **out, drv_error_t *err)
{
    drv_satoken_t *t = calloc(1, sizeof(*t));
    if (!t)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "service account key");
    drv_map_init(&t->issued, DRV_SATOKEN_CACHE_MAX);
    drv_err_t e = DRV_OK;
    char path[PATH_MAX];
    if (data_dir) {
        e = drv_fmt(path, sizeof(path), "%s/%s", data_dir, DRV_SATOKEN_KEY_FILE);
        if (e != DRV_OK)
            e = drv_error_set(err, DRV_ERR_INVALID, 0, "service account key: path too long");
        size_t len = 0;
        if (e == DRV_OK) {
            drv_error_t re = DRV_ERROR_INIT;
            e = drv_file_read_capped(path, KEY_MAX, &t->key, &len, &re);
            if (e == DRV_OK)
                e = drv_pki_key_check(t->key, err);
            else if (e != DRV_ERR_NOTFOUND)
                e = drv_error_set(err, e, re.sys_errno, "%s", drv_error_msg(&re));
        }
        if (e == DRV_ERR_NOTFOUND) {
            char dir[PATH_MAX];
            e = drv_fmt(dir, sizeof(dir), "%s/pki", data_dir);
            if (e == DRV_OK && mkdir(dir, 0700) != 0 && errno != EEXIST)
                e = drv_error_set(err, DRV_ERR_IO, errno, "mkdir %s", dir);
            if (e == DRV_OK)
                e = drv_pki_key_generate(&t->key, err);
            if (e == DRV_OK)
                e = drv_file_write_atomic(path, t->key, strlen(t->key), 0600, err);
            if (e == DRV_OK)
                drv_log_info("service account signing key created", "file=%s", path);
        }
    } else {
        e = drv_pki_key_generate(&t->key, err);
    }
    if (e == DRV_OK)
        e = drv_pki_key_public(t->key, &t->pub, err);
    if (e != DRV_OK) {
        drv_satoken_free(t);
        return data_dir ? drv_error_wrap(err, "service account key %s", path) : e;
    }
    *out = t;
    return DRV_OK;
}

void drv_satoken_free(drv_satoken_t *t)
{
    if (!t)
        return;
    free_pem(&t->key);
    free(t->pub);
    void *v;
    for (size_t it = 0; drv_map_next(&t->issued, &it, NULL, &v);)
        issued_free(v);
    drv_map_free(&t->issued);
    free(t);
}

/* ---- signatures: DER <-> r|s ---- */

/* One DER INTEGER at *p (end: the sequence's end) into 32 bytes, big-endian. */
static bool der_int(const unsigned char **p, const unsigned char *end, unsigned char out[32])
{
    if (end - *p < 2 || (*p)[0] != 0x02)
        return false;
    size_t n = (*p)[1];
    const unsigned char *v = *p + 2;
    if (n == 0 || n > 33 || (size_t)(end - v) < n)
        return false;
    while (n > 32 && *v == 0) {
        v++;
        n--;
    }
    if (n > 32)
        return false;
    memset(out, 0, 32);
    memcpy(out + 32 - n, v, n);
    *p = v + n;
    return true;
}

static bool der_to_raw(const unsigned char *der, size_t len, unsigned char raw[SIG_RAW])
{
    if (len < 8 || der[0] != 0x30 || der[1] != len - 2)
        return false;
    const unsigned char *p = der + 2, *end = der + len;
    return der_int(&p, end, raw) && der_int(&p, end, raw + 32) && p == end;
}

/* r|s into DER (at most 72 bytes). */
static size_t raw_to_der(const unsigned char raw[SIG_RAW], unsigned char der[72])
{
    size_t o = 2;
    for (int k = 0; k < 2; k++) {
        const unsigned char *v = raw + 32 * k;
        size_t n = 32;
        while (n > 1 && *v == 0) {
            v++;
            n--;
        }
        bool pad = *v & 0x80;
        der[o++] = 0x02;
        der[o++] = (unsigned char)(n + pad);
        if (pad)
            der[o++] = 0;
        memcpy(der + o, v, n);
        o += n;
    }
    der[0] = 0x30;
    der[1] = (unsigned char)(o - 2);
    return o;
}

/* ---- issue ---- */

static cJSON *claims_json(const drv_satoken_claims_t *c)
{
    char sub[400];
    drv_fmt_cut(sub, sizeof(sub), "system:serviceaccount:%s:%s", c->ns, c->sa);
    cJSON *o = cJSON_CreateObject(), *k8s = NULL, *x = NULL;
    bool ok = o && cJSON_AddStringToObject(o, "iss", DRV_SATOKEN_ISSUER) &&
              (x = cJSON_AddArrayToObject(o, "aud")) &&
              cJSON_AddItemToArray(x, cJSON_CreateString(DRV_SATOKEN_ISSUER)) &&
              cJSON_AddStringToObject(o, "sub", sub) &&
              cJSON_AddNumberToObject(o, "iat", (double)c->iat) &&
              cJSON_AddNumberToObject(o, "nbf", (double)c->nbf) &&
              cJSON_AddNumberToObject(o, "exp", (double)c->exp) &&
              (k8s = cJSON_AddObjectToObject(o, "kubernetes.io")) &&
              cJSON_AddStringToObject(k8s, "namespace", c->ns);
    static const char *const parts[] = {"pod", "serviceaccount", "node"};
    const char *names[] = {c->pod, c->sa, c->node}, *uids[] = {c->pod_uid, c->sa_uid, c->node_uid};
    for (size_t i = 0; ok && i < 3; i++) {
        if (!*names[i])
            continue;
        ok = (x = cJSON_AddObjectToObject(k8s, parts[i])) &&
             cJSON_AddStringToObject(x, "name", names[i]) &&
             cJSON_AddStringToObject(x, "uid", uids[i]);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

drv_err_t drv_satoken_issue(const drv_satoken_t *t, const drv_satoken_claims_t *c, char **jwt,
                            drv_error_t *err)
{
    static const char header[] = "{\"alg\":\"ES256\",\"typ\":\"JWT\"}";
    _cleanup_cjson_ cJSON *claims = claims_json(c);
    _cleanup_free_ char *payload = claims ? cJSON_PrintUnformatted(claims) : NULL;
    _cleanup_free_ char *h64 = drv_base64url_encode(header, strlen(header));
    _cleanup_free_ char *p64 = payload ? drv_base64url_encode(payload, strlen(payload)) : NULL;
    if (!h64 || !p64)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "service account token");
    size_t hl = strlen(h64), pl = strlen(p64);
    _cleanup_free_ char *input = malloc(hl + 1 + pl + 1);
    if (!input)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "service account token");
    memcpy(input, h64, hl);
    input[hl] = '.';
    memcpy(input + hl + 1, p64, pl + 1);
    _cleanup_free_ char *sig_b64 = NULL;
    drv_err_t e = drv_pki_sign(t->key, input, hl + 1 + pl, &sig_b64, err);
    if (e != DRV_OK)
        return drv_error_wrap(err, "service account token");
    _cleanup_free_ unsigned char *der = NULL;
    size_t dl = 0;
    unsigned char raw[SIG_RAW];
    if (drv_base64_decode(sig_b64, strlen(sig_b64), &der, &dl) != DRV_OK ||
        !der_to_raw(der, dl, raw))
        return drv_error_set(err, DRV_ERR_INTEGRITY, 0, "service account token: signature form");
    _cleanup_free_ char *s64 = drv_base64url_encode(raw, sizeof(raw));
    size_t sl = s64 ? strlen(s64) : 0;
    char *out = s64 ? malloc(hl + pl + sl + 3) : NULL;
    if (!out)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "service account token");
    memcpy(out, input, hl + 1 + pl);
    out[hl + 1 + pl] = '.';
    memcpy(out + hl + pl + 2, s64, sl + 1);
    *jwt = out;
    return DRV_OK;
}

/* ---- verify ---- */

bool drv_satoken_looks_like(const char *cred)
{
    if (!cred || strncmp(cred, "eyJ", 3))
        return false;
    int dots = 0;
    for (const char *p = cred; *p; p++) {
        if (*p == '.')
            dots++;
        else if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                   (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return false;
    }
    return dots == 2;
}

/* part (len bytes of base64url) decoded as a JSON object. */
static cJSON *part_json(const char *part, size_t len)
{
    unsigned char *raw = NULL;
    size_t n = 0;
    if (drv_base64url_decode(part, len, &raw, &n) != DRV_OK)
        return NULL;
    cJSON *o = cJSON_ParseWithLength((const char *)raw, n);
    free(raw);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static bool copy_str(const cJSON *o, const char *key, char *out, size_t outsz, bool required)
{
    const char *s = drv_json_str(o, key);
    if (!s)
        return !required;
    size_t n = strlen(s);
    if ((required && n == 0) || n >= outsz)
        return false;
    memcpy(out, s, n + 1);
    return true;
}

static bool num_claim(const cJSON *o, const char *key, int64_t *out)
{
    const cJSON *v = drv_json_get(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e15)
        return false;
    *out = (int64_t)v->valuedouble;
    return true;
}

static bool aud_ok(const cJSON *aud)
{
    if (cJSON_IsString(aud))
        return !strcmp(aud->valuestring, DRV_SATOKEN_ISSUER);
    if (!cJSON_IsArray(aud))
        return false;
    const cJSON *a;
    cJSON_ArrayForEach(a, aud)
    {
        if (cJSON_IsString(a) && !strcmp(a->valuestring, DRV_SATOKEN_ISSUER))
            return true;
    }
    return false;
}

drv_err_t drv_satoken_verify(const drv_satoken_t *t, const char *jwt, int64_t now,
                             drv_satoken_claims_t *out, drv_error_t *err)
{
    if (!jwt || strlen(jwt) > DRV_SATOKEN_MAX || !drv_satoken_looks_like(jwt))
        return drv_error_set(err, DRV_ERR_PERM, 0, "invalid bearer token");
    const char *d1 = strchr(jwt, '.'), *d2 = strchr(d1 + 1, '.');
    _cleanup_cjson_ cJSON *hdr = part_json(jwt, (size_t)(d1 - jwt));
    const char *alg = drv_json_str(hdr, "alg");
    if (!alg || strcmp(alg, "ES256"))
        return drv_error_set(err, DRV_ERR_PERM, 0, "invalid bearer token: not an ES256 token");
    unsigned char *sig = NULL;
    size_t sl = 0;
    if (drv_base64url_decode(d2 + 1, strlen(d2 + 1), &sig, &sl) != DRV_OK || sl != SIG_RAW) {
        free(sig);
        return drv_error_set(err, DRV_ERR_PERM, 0, "invalid bearer token: signature");
    }
    unsigned char der[72];
    size_t dl = raw_to_der(sig, der);
    free(sig);
    _cleanup_free_ char *der64 = drv_base64_encode(der, dl);
    if (!der64)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "service account token");
    drv_error_t ve = DRV_ERROR_INIT;
    drv_err_t e = drv_pki_verify(t->pub, jwt, (size_t)(d2 - jwt), der64, &ve);
    if (e == DRV_ERR_NOMEM)
        return drv_error_set(err, e, 0, "service account token");
    if (e != DRV_OK)
        return drv_error_set(err, DRV_ERR_PERM, 0, "invalid bearer token: signature");
    _cleanup_cjson_ cJSON *pl = part_json(d1 + 1, (size_t)(d2 - d1 - 1));
    const char *iss = drv_json_str(pl, "iss");
    if (!iss || strcmp(iss, DRV_SATOKEN_ISSUER) || !aud_ok(drv_json_get(pl, "aud")))
        return drv_error_set(err, DRV_ERR_PERM, 0, "invalid bearer token: issuer or audience");
    drv_satoken_claims_t c;
    memset(&c, 0, sizeof(c));
    if (!num_claim(pl, "exp", &c.exp) || !num_claim(pl, "iat", &c.iat))
        return drv_error_set(err, DRV_ERR_PERM, 0, "invalid bearer token: exp and iat required");
    if (!num_claim(pl, "nbf", &c.nbf))
        c.nbf = c.iat;
    if (now >= c.exp)
        return drv_error_set(err, DRV_ERR_PERM, 0, "service account token has expired");
    if (now + LEEWAY_S < c.nbf)
        return drv_error_set(err, DRV_ERR_PERM, 0, "service account token is not valid yet");
    const cJSON *k = drv_json_get(pl, "kubernetes.io");
    const cJSON *pod = drv_json_get(k, "pod"), *sa = drv_json_get(k, "serviceaccount"),
                *node = drv_json_get(k, "node");
    if (!copy_str(k, "namespace", c.ns, sizeof(c.ns), true) ||
        !copy_str(pod, "name", c.pod, sizeof(c.pod), true) ||
        !copy_str(pod, "uid", c.pod_uid, sizeof(c.pod_uid), true) ||
        !copy_str(sa, "name", c.sa, sizeof(c.sa), true) ||
        !copy_str(sa, "uid", c.sa_uid, sizeof(c.sa_uid), true) ||
        !copy_str(node, "name", c.node, sizeof(c.node), false) ||
        !copy_str(node, "uid", c.node_uid, sizeof(c.node_uid), false))
        return drv_error_set(err, DRV_ERR_PERM, 0,
                             "invalid bearer token: not bound to a pod and a service account");
    char sub[400];
    drv_fmt_cut(sub, sizeof(sub), "system:serviceaccount:%s:%s", c.ns, c.sa);
    const char *psub = drv_json_str(pl, "sub");
    if (!psub || strcmp(psub, sub))
        return drv_error_set(err, DRV_ERR_PERM, 0, "invalid bearer token: subject");
    if (out)
        *out = c;
    return DRV_OK;
}

/* ---- tokens of pods ---- */

static int64_t refresh_of(const issued_t *i)
{
    return i->iat + (i->exp - i->iat) * 8 / 10;
}

/* The shortest expirationSeconds of the pod's projected serviceAccountToken sources (at least
 * DRV_SATOKEN_TTL_MIN_S); 0: it has none. */
static int64_t projected_ttl(const cJSON *spec)
{
    int64_t ttl = 0;
    const cJSON *v, *src;
    cJSON_ArrayForEach(v, drv_json_get(spec, "volumes"))
    {
        cJSON_ArrayForEach(src, drv_json_get(drv_json_get(v, "projected"), "sources"))
        {
            const cJSON *t = drv_json_get(src, "serviceAccountToken");
            if (!t)
                continue;
            const cJSON *e = drv_json_get(t, "expirationSeconds");
            int64_t s = cJSON_IsNumber(e) ? (int64_t)e->valuedouble : 3600;
            if (s < DRV_SATOKEN_TTL_MIN_S)
                s = DRV_SATOKEN_TTL_MIN_S;
            if (!ttl || s < ttl)
                ttl = s;
        }
    }
    return ttl;
}

/* Room for one more: expired tokens go (their pods' nodes got new ones or the pods are gone). */
static void prune(drv_satoken_t *t, int64_t now)
{
    const char *k;
    void *v;
    for (size_t it = 0; drv_map_next(&t->issued, &it, &k, &v);) {
        issued_t *i = v;
        if (now >= i->exp) {
            drv_map_del(&t->issued, k);
            issued_free(i);
        }
    }
}

drv_err_t drv_satoken_for_pod(drv_satoken_t *t, drv_hstore_t *s, const char *node, const cJSON *pod,
                              int64_t now, const char **jwt, int64_t *exp, int64_t *refresh_at,
                              bool *mount, drv_error_t *err)
{
    const cJSON *meta = drv_json_get(pod, "metadata"), *spec = drv_json_get(pod, "spec");
    const char *ns = drv_json_str_or(meta, "namespace", "default");
    const char *name = drv_json_str(meta, "name"), *uid = drv_json_str(meta, "uid");
    const char *sa_name = drv_json_str_or(spec, "serviceAccountName", "default");
    if (!name || !uid || !*uid || strlen(uid) >= sizeof(((issued_t *)0)->uid))
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "pod without a uid");
    const cJSON *pod_auto = drv_json_get(spec, "automountServiceAccountToken");
    int64_t ttl = projected_ttl(spec);
    if (cJSON_IsFalse(pod_auto) && !ttl)
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "pod %s/%s: no token mounted", ns, name);
    _cleanup_cjson_ cJSON *sa = NULL;
    drv_error_t ge = DRV_ERROR_INIT;
    drv_err_t e = drv_hstore_get(s, DRV_KIND_SERVICEACCOUNT, ns, sa_name, &sa, &ge);
    if (e != DRV_OK)
        return drv_error_set(err, e, ge.sys_errno, "service account %s/%s: %s", ns, sa_name,
                             drv_error_msg(&ge));
    bool mounted = cJSON_IsBool(pod_auto)
                       ? cJSON_IsTrue(pod_auto)
                       : !cJSON_IsFalse(drv_json_get(sa, "automountServiceAccountToken"));
    if (!mounted && !ttl)
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "pod %s/%s: no token mounted", ns, name);
    if (!ttl || (mounted && ttl > DRV_SATOKEN_TTL_DEFAULT_S))
        ttl = DRV_SATOKEN_TTL_DEFAULT_S;
    const char *sa_uid = drv_json_str_or(drv_json_get(sa, "metadata"), "uid", "");
    issued_t *i = drv_map_get(&t->issued, uid);
    if (i && (strcmp(i->sa_uid, sa_uid) || now >= refresh_of(i) || now < i->iat)) {
        drv_map_del(&t->issued, uid);
        issued_free(i);
        i = NULL;
    }
    if (!i) {
        drv_satoken_claims_t c = {.iat = now, .nbf = now, .exp = now + ttl};
        _cleanup_cjson_ cJSON *nobj = NULL;
        if (drv_hstore_get(s, DRV_KIND_NODE, NULL, node, &nobj, &ge) == DRV_OK)
            drv_fmt_cut(c.node_uid, sizeof(c.node_uid), "%s",
                        drv_json_str_or(drv_json_get(nobj, "metadata"), "uid", ""));
        if (drv_fmt(c.ns, sizeof(c.ns), "%s", ns) != DRV_OK ||
            drv_fmt(c.pod, sizeof(c.pod), "%s", name) != DRV_OK ||
            drv_fmt(c.pod_uid, sizeof(c.pod_uid), "%s", uid) != DRV_OK ||
            drv_fmt(c.sa, sizeof(c.sa), "%s", sa_name) != DRV_OK ||
            drv_fmt(c.sa_uid, sizeof(c.sa_uid), "%s", sa_uid) != DRV_OK ||
            drv_fmt(c.node, sizeof(c.node), "%s", node) != DRV_OK)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "pod %s/%s: a name too long", ns, name);
        i = calloc(1, sizeof(*i));
        if (!i)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "service account token");
        memcpy(i->uid, uid, strlen(uid) + 1);
        drv_fmt_cut(i->sa_uid, sizeof(i->sa_uid), "%s", sa_uid);
        i->iat = c.iat;
        i->exp = c.exp;
        e = drv_satoken_issue(t, &c, &i->jwt, err);
        /* the tokens of pods long gone go once they expire (a verified token still needs its
         * pod: keeping them is a matter of memory only) */
        if (e == DRV_OK && (t->issued.n >= DRV_SATOKEN_CACHE_MAX || now - t->last_prune >= 600)) {
            prune(t, now);
            t->last_prune = now;
        }
        if (e == DRV_OK)
            e = drv_map_put(&t->issued, i->uid, i);
        if (e != DRV_OK) {
            issued_free(i);
            return e == DRV_ERR_TOOBIG || e == DRV_ERR_NOMEM
                       ? drv_error_set(err, e, 0, "service account tokens: table full")
                       : e;
        }
    }
    *jwt = i->jwt;
    if (mount)
        *mount = mounted;
    if (exp)
        *exp = i->exp;
    if (refresh_at)
        *refresh_at = refresh_of(i);
    return DRV_OK;
}
