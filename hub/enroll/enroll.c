/* Enrollment, renewal and revocation of node identities (enroll.h): the checks in the order
 * the protocol promises (token, CSR, name, held key), the certificate from the hub CA, the
 * identity row, the Node object and the broker ACL. */
#include "enroll/enroll.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "bridge/bridge.h"
#include "broker/broker.h"
#include "drover/base64.h"
#include "drover/cleanup.h"
#include "drover/digest.h"
#include "drover/fmt.h"
#include "drover/log.h"
#include "drover/model.h"
#include "drover/pki.h"
#include "drover/protocol.h"
#include "hub.h"
#include "identity/identity.h"

struct drv_enroll {
    drv_hstore_t *store;
    const drv_identity_t *identity;
    void (*on_change)(void *ctx);
    void (*on_new_key)(void *ctx, const char *node);
    void (*on_shut_out)(void *ctx, const char *node);
    void *ctx;
    int64_t (*now)(void);
};

static int64_t now_s(const drv_enroll_t *e)
{
    return e->now ? e->now() : (int64_t)time(NULL);
}

static void rfc3339(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if ((!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm)) &&
        drv_fmt(out, 32, "%lld", (long long)t) != DRV_OK)
        out[0] = '\0'; /* cannot happen: 20 digits at most */
}

/* "sha256:<hex>" of the DER of a PEM public key ("" if it does not decode). */
static void pubkey_fingerprint(const char *pem, char out[DRV_PKI_FINGERPRINT_MAX])
{
    out[0] = '\0';
    const char *b = strstr(pem, "-----BEGIN PUBLIC KEY-----");
    const char *end = strstr(pem, "-----END PUBLIC KEY-----");
    if (!b || !end || end < b)
        return;
    b += strlen("-----BEGIN PUBLIC KEY-----");
    char b64[512];
    size_t n = 0;
    for (const char *p = b; p < end && n + 1 < sizeof(b64); p++)
        if (*p != '\n' && *p != '\r' && *p != ' ')
            b64[n++] = *p;
    b64[n] = '\0';
    _cleanup_free_ unsigned char *der = NULL;
    size_t dlen = 0;
    if (drv_base64_decode(b64, n, &der, &dlen) != DRV_OK)
        return;
    drv_pki_fingerprint_der(der, dlen, out);
}

cJSON *drv_enroll_identity_json(const drv_hstore_identity_t *id)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    char na[32], cr[32], fp[DRV_PKI_FINGERPRINT_MAX];
    rfc3339(id->not_after, na);
    rfc3339(id->created, cr);
    pubkey_fingerprint(id->pubkey, fp);
    if (!cJSON_AddStringToObject(o, "node", id->node) ||
        !cJSON_AddStringToObject(o, "serial", id->serial) ||
        !cJSON_AddStringToObject(o, "notAfter", na) ||
        !cJSON_AddBoolToObject(o, "revoked", id->revoked) ||
        !cJSON_AddStringToObject(o, "created", cr) ||
        !cJSON_AddStringToObject(o, "fingerprint", fp)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The Node object of an enrolled device: created with the token's labels, or those labels
 * merged into an existing Node's. */
static drv_err_t node_upsert(drv_enroll_t *e, const char *node, const char *labels_json,
                             drv_error_t *err)
{
    _cleanup_cjson_ cJSON *labels = cJSON_Parse(labels_json && *labels_json ? labels_json : "{}");
    if (!cJSON_IsObject(labels))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "bootstrap token labels are not an object");
    _cleanup_cjson_ cJSON *obj = NULL;
    drv_error_t ge = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_get(e->store, DRV_KIND_NODE, NULL, node, &obj, &ge);
    bool create = r == DRV_ERR_NOTFOUND;
    if (r != DRV_OK && !create)
        return drv_error_set(err, r, ge.sys_errno, "%s", drv_error_msg(&ge));
    if (create) {
        obj = cJSON_CreateObject();
        cJSON *meta = cJSON_CreateObject();
        if (!obj || !meta || !cJSON_AddStringToObject(obj, "apiVersion", "v1") ||
            !cJSON_AddStringToObject(obj, "kind", "Node") ||
            !cJSON_AddItemToObject(obj, "metadata", meta) ||
            !cJSON_AddStringToObject(meta, "name", node)) {
            if (!cJSON_GetObjectItemCaseSensitive(obj, "metadata"))
                cJSON_Delete(meta);
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
        }
    } else if (!cJSON_GetArraySize(labels)) {
        return DRV_OK;
    }
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    cJSON *have = cJSON_GetObjectItemCaseSensitive(meta, "labels");
    if (!cJSON_IsObject(have)) {
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "labels");
        have = cJSON_AddObjectToObject(meta, "labels");
        if (!have)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    }
    const cJSON *l;
    cJSON_ArrayForEach(l, labels)
    {
        if (!cJSON_IsString(l))
            continue;
        cJSON *v = cJSON_CreateString(l->valuestring);
        if (!v)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
        if (cJSON_GetObjectItemCaseSensitive(have, l->string))
            cJSON_ReplaceItemInObjectCaseSensitive(have, l->string, v);
        else
            cJSON_AddItemToObject(have, l->string, v);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(meta, "resourceVersion"); /* overwrite */
    drv_diags_t diags = {0};
    r = drv_model_normalize(obj, &diags);
    if (r != DRV_OK) {
        _cleanup_free_ char *why = drv_diags_format(&diags, NULL);
        drv_diags_free(&diags);
        return drv_error_set(err, r, 0, "Node %s: %s", node, why ? why : "invalid");
    }
    drv_diags_free(&diags);
    r = create ? drv_hstore_create(e->store, DRV_KIND_NODE, obj, err)
               : drv_hstore_update(e->store, DRV_KIND_NODE, obj, err);
    if (r == DRV_OK && e->on_change)
        e->on_change(e->ctx);
    return r;
}

/* Marks the Node NotReady, reason Revoked (no Node: nothing to do). */
static drv_err_t node_mark_revoked(drv_enroll_t *e, const char *node, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *obj = NULL;
    drv_error_t ge = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_get(e->store, DRV_KIND_NODE, NULL, node, &obj, &ge);
    if (r == DRV_ERR_NOTFOUND)
        return DRV_OK;
    if (r != DRV_OK)
        return drv_error_set(err, r, ge.sys_errno, "%s", drv_error_msg(&ge));
    const cJSON *ost = cJSON_GetObjectItemCaseSensitive(obj, "status");
    cJSON *st = cJSON_IsObject(ost) ? cJSON_Duplicate(ost, true) : cJSON_CreateObject();
    cJSON *conds = cJSON_CreateArray();
    cJSON *c = cJSON_CreateObject();
    char ts[32];
    rfc3339(now_s(e), ts);
    bool ok = st && conds && c && cJSON_AddStringToObject(c, "type", "Ready") &&
              cJSON_AddStringToObject(c, "status", "False") &&
              cJSON_AddStringToObject(c, "reason", "Revoked") &&
              cJSON_AddStringToObject(c, "message",
                                      "The node's identity was revoked: it can no longer reach "
                                      "the broker or renew its certificate.") &&
              cJSON_AddStringToObject(c, "lastTransitionTime", ts);
    const cJSON *oc;
    const cJSON *oconds = st ? cJSON_GetObjectItemCaseSensitive(st, "conditions") : NULL;
    cJSON_ArrayForEach(oc, oconds)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(oc, "type");
        if (ok && !(cJSON_IsString(t) && !strcmp(t->valuestring, "Ready"))) {
            cJSON *dup = cJSON_Duplicate(oc, true);
            ok = dup && cJSON_AddItemToArray(conds, dup);
        }
    }
    if (ok) {
        cJSON_AddItemToArray(conds, c);
        c = NULL;
        if (cJSON_GetObjectItemCaseSensitive(st, "conditions"))
            cJSON_ReplaceItemInObjectCaseSensitive(st, "conditions", conds);
        else
            cJSON_AddItemToObject(st, "conditions", conds);
        conds = NULL;
    }
    cJSON_Delete(c);
    cJSON_Delete(conds);
    if (!ok) {
        cJSON_Delete(st);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    }
    drv_json_sort_keys(st);
    r = drv_hstore_update_status(e->store, DRV_KIND_NODE, NULL, node, st, NULL, err);
    if (r == DRV_OK && e->on_change)
        e->on_change(e->ctx);
    return r == DRV_ERR_NOTFOUND ? DRV_OK : r;
}

/* Issues a client certificate for csr (whose CN is node) and records the identity. */
static drv_err_t issue(drv_enroll_t *e, const char *csr, const char *node, const char *pub,
                       const drv_hstore_identity_t *old, cJSON **out, drv_error_t *err)
{
    drv_pki_issue_t io = {.usage = DRV_PKI_CLIENT_AUTH, .days = DRV_ENROLL_CERT_DAYS};
    _cleanup_free_ char *cert = NULL;
    drv_err_t r = drv_pki_issue_csr(drv_identity_ca_key(e->identity),
                                    drv_identity_ca_cert(e->identity), csr, &io, &cert, err);
    if (r != DRV_OK)
        return drv_error_wrap(err, "issue the certificate of %s", node);
    drv_pki_cert_info_t info;
    r = drv_pki_cert_info(cert, &info, err);
    if (r != DRV_OK)
        return r;
    drv_hstore_identity_t id = {.not_after = info.not_after,
                                .created = old ? old->created : now_s(e)};
    if (drv_fmt(id.node, sizeof(id.node), "%s", node) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "node name too long");
    if ((size_t)snprintf(id.pubkey, sizeof(id.pubkey), "%s", pub) >= sizeof(id.pubkey))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "csr: public key too long");
    if ((size_t)snprintf(id.serial, sizeof(id.serial), "%.40s", info.serial) >= sizeof(id.serial) ||
        strlen(info.serial) >= sizeof(id.serial))
        return drv_error_set(err, DRV_ERR_RANGE, 0, "certificate serial longer than %zu digits",
                             sizeof(id.serial) - 1);
    r = drv_hstore_identity_put(e->store, &id, err);
    if (r != DRV_OK)
        return r;
    char ra[32];
    rfc3339(info.not_before + (info.not_after - info.not_before) * 2 / 3, ra);
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "apiVersion", "drover/v1") ||
        !cJSON_AddStringToObject(o, "kind", "Enrollment") ||
        !cJSON_AddStringToObject(o, "node", node) ||
        !cJSON_AddStringToObject(o, "certificate", cert) ||
        !cJSON_AddStringToObject(o, "ca", drv_identity_ca_cert(e->identity)) ||
        !cJSON_AddStringToObject(o, "signingKey", drv_identity_signing_pub(e->identity)) ||
        !cJSON_AddStringToObject(o, "renewAfter", ra)) {
        cJSON_Delete(o);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    }
    *out = o;
    return DRV_OK;
}

/* body.csr parsed: its CN into cn, its public key into *pub. 400 naming the field. */
static drv_err_t parse_csr(const cJSON *body, const char **csr, char cn[DRV_PKI_CN_MAX + 1],
                           char **pub, unsigned *code, drv_error_t *err)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(body, "csr");
    *code = 400;
    if (!c)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "csr: required");
    if (!cJSON_IsString(c) || !*c->valuestring)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "csr: must be a PEM certificate request");
    drv_err_t r = drv_pki_csr_parse(c->valuestring, cn, pub, err);
    if (r != DRV_OK) {
        drv_error_wrap(err, "csr");
        return r == DRV_ERR_NOMEM ? r : DRV_ERR_INVALID;
    }
    *csr = c->valuestring;
    *code = 0;
    return DRV_OK;
}

static drv_err_t do_enroll(drv_enroll_t *e, const char *authorization, const cJSON *body,
                           cJSON **out, unsigned *code, drv_error_t *err)
{
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(body, "token");
    if (tok && !cJSON_IsString(tok)) {
        *code = 400;
        return drv_error_set(err, DRV_ERR_INVALID, 0, "token: must be a string");
    }
    const char *cred = tok ? tok->valuestring : authorization;
    if (!cred || !*cred) {
        *code = 401;
        return drv_error_set(err, DRV_ERR_PERM, 0,
                             "a bootstrap token is required (\"token\" in the body or "
                             "Authorization: Bearer)");
    }
    int64_t now = now_s(e);
    drv_hstore_token_t t;
    drv_error_t ae = DRV_ERROR_INIT;
    drv_err_t r = drv_auth_authenticate(e->store, cred, now, &t, &ae);
    if (r == DRV_ERR_PERM) {
        *code = 401;
        return drv_error_set(err, r, 0, "bootstrap token refused: %s", drv_error_msg(&ae));
    }
    if (r != DRV_OK)
        return drv_error_set(err, r, ae.sys_errno, "%s", drv_error_msg(&ae));
    if (strcmp(t.kind, "bootstrap")) {
        *code = 401;
        return drv_error_set(err, DRV_ERR_PERM, 0,
                             "bootstrap token refused: token %s is not a bootstrap token", t.id);
    }
    if (t.uses_left == 0) {
        *code = 401;
        return drv_error_set(err, DRV_ERR_PERM, 0, "bootstrap token refused: no uses left");
    }
    const char *csr = NULL;
    char cn[DRV_PKI_CN_MAX + 1];
    _cleanup_free_ char *pub = NULL;
    r = parse_csr(body, &csr, cn, &pub, code, err);
    if (r != DRV_OK)
        return r;
    if (!strncmp(cn, DRV_ENROLL_RESERVED_PREFIX, strlen(DRV_ENROLL_RESERVED_PREFIX))) {
        *code = 403;
        return drv_error_set(err, DRV_ERR_PERM, 0,
                             "csr: node name \"%s\" is reserved (names starting with \"%s\")", cn,
                             DRV_ENROLL_RESERVED_PREFIX);
    }
    drv_hstore_identity_t old;
    drv_error_t ge = DRV_ERROR_INIT;
    r = drv_hstore_identity_get(e->store, cn, &old, &ge);
    bool have = r == DRV_OK;
    if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, ge.sys_errno, "%s", drv_error_msg(&ge));
    if (have && old.revoked) {
        *code = 403;
        return drv_error_set(err, DRV_ERR_PERM, 0,
                             "node %s is revoked (drover node forget %s frees the name)", cn, cn);
    }
    if (have && strcmp(old.pubkey, pub)) {
        *code = 409;
        return drv_error_set(err, DRV_ERR_CONFLICT, 0, "node name %s is enrolled with another key",
                             cn);
    }
    /* The certificate first, then the token's use, in one transaction: a certificate that
     * cannot be issued costs no use, and a use is never taken without an identity. */
    _cleanup_cjson_ cJSON *o = NULL;
    if ((r = drv_hstore_batch_begin(e->store, err)) != DRV_OK)
        return r;
    r = issue(e, csr, cn, pub, have ? &old : NULL, &o, err);
    if (r != DRV_OK && !*code)
        *code = 503; /* the hub's own trouble (CA expired, identity table full, store) */
    if (r == DRV_OK && t.uses_left > 0) {
        r = drv_hstore_token_use(e->store, t.id, &ae);
        if (r == DRV_ERR_PERM) {
            *code = 401;
            drv_error_set(err, r, 0, "bootstrap token refused: no uses left");
        } else if (r != DRV_OK) {
            drv_error_set(err, r, ae.sys_errno, "%s", drv_error_msg(&ae));
        }
    }
    if (r != DRV_OK) {
        drv_hstore_batch_abort(e->store); /* neither the identity nor the use */
        return r;
    }
    drv_error_t be = DRV_ERROR_INIT;
    drv_err_t br = drv_hstore_batch_end(e->store, &be);
    if (br != DRV_OK)
        return drv_error_set(err, br, be.sys_errno, "%s", drv_error_msg(&be));
    _cleanup_cjson_ cJSON *labels = cJSON_Parse(*t.labels ? t.labels : "{}");
    if (!cJSON_IsObject(labels)) {
        cJSON_Delete(labels);
        labels = cJSON_CreateObject();
    }
    if (!labels || !cJSON_AddItemToObject(o, "labels", labels))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    labels = NULL;
    drv_error_t ne = DRV_ERROR_INIT;
    if (node_upsert(e, cn, t.labels, &ne) != DRV_OK)
        drv_log_error("enroll: cannot create or label the Node", "node=%s error=\"%s\"", cn,
                      drv_error_msg(&ne));
    if (!have && e->on_new_key)
        e->on_new_key(e->ctx, cn);
    drv_log_info("node enrolled", "node=%s token=%s again=%s", cn, t.id, have ? "yes" : "no");
    *out = TAKE_PTR(o);
    *code = 201;
    return DRV_OK;
}

static drv_err_t do_renew(drv_enroll_t *e, const cJSON *body, cJSON **out, unsigned *code,
                          drv_error_t *err)
{
    const char *csr = NULL;
    char cn[DRV_PKI_CN_MAX + 1];
    _cleanup_free_ char *pub = NULL;
    drv_err_t r = parse_csr(body, &csr, cn, &pub, code, err);
    if (r != DRV_OK)
        return r;
    drv_hstore_identity_t old;
    r = drv_hstore_identity_get(e->store, cn, &old, err);
    if (r == DRV_ERR_NOTFOUND) {
        *code = 404;
        return r;
    }
    if (r != DRV_OK)
        return r;
    if (old.revoked) {
        *code = 403;
        return drv_error_set(err, DRV_ERR_PERM, 0, "node %s is revoked", cn);
    }
    if (strcmp(old.pubkey, pub)) {
        *code = 409;
        return drv_error_set(err, DRV_ERR_CONFLICT, 0, "csr: node %s is enrolled with another key",
                             cn);
    }
    r = issue(e, csr, cn, pub, &old, out, err);
    if (r != DRV_OK) {
        *code = 503; /* the hub's own trouble (CA expired, store) */
        return r;
    }
    drv_log_info("node certificate renewed", "node=%s", cn);
    *code = 201;
    return DRV_OK;
}

static drv_err_t do_revoke(drv_enroll_t *e, const char *name, cJSON **out, unsigned *code,
                           drv_error_t *err)
{
    drv_err_t r = drv_hstore_identity_revoke(e->store, name, err);
    if (r != DRV_OK) {
        *code = r == DRV_ERR_NOTFOUND ? 404 : 0;
        return r;
    }
    if (e->on_shut_out)
        e->on_shut_out(e->ctx, name);
    drv_error_t ne = DRV_ERROR_INIT;
    if (node_mark_revoked(e, name, &ne) != DRV_OK)
        drv_log_error("revoke: cannot mark the Node NotReady", "node=%s error=\"%s\"", name,
                      drv_error_msg(&ne));
    drv_hstore_identity_t id;
    r = drv_hstore_identity_get(e->store, name, &id, err);
    if (r != DRV_OK)
        return r;
    drv_log_info("node revoked", "node=%s", name);
    *out = drv_enroll_identity_json(&id);
    return *out ? DRV_OK : drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
}

static drv_err_t do_list(drv_enroll_t *e, cJSON **out, drv_error_t *err)
{
    _cleanup_free_ drv_hstore_identity_t *ids = NULL;
    size_t n = 0;
    drv_err_t r = drv_hstore_identity_list(e->store, &ids, &n, err);
    if (r != DRV_OK)
        return r;
    _cleanup_cjson_ cJSON *o = cJSON_CreateObject();
    cJSON *items = o ? cJSON_AddArrayToObject(o, "items") : NULL;
    if (!items || !cJSON_AddStringToObject(o, "kind", "IdentityList"))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    for (size_t i = 0; i < n; i++) {
        cJSON *it = drv_enroll_identity_json(&ids[i]);
        if (!it || !cJSON_AddItemToArray(items, it)) {
            cJSON_Delete(it);
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
        }
    }
    *out = TAKE_PTR(o);
    return DRV_OK;
}

static drv_err_t do_forget(drv_enroll_t *e, const char *name, cJSON **out, unsigned *code,
                           drv_error_t *err)
{
    /* The broker knows a device by its certificate's CN only: while a certificate issued for
     * the name is valid, a freed name enrolled again would let its holder back in. */
    drv_hstore_identity_t id;
    drv_err_t r = drv_hstore_identity_get(e->store, name, &id, err);
    if (r != DRV_OK) {
        *code = r == DRV_ERR_NOTFOUND ? 404 : 0;
        return r;
    }
    if (!id.revoked) {
        *code = 409;
        return drv_error_set(err, DRV_ERR_CONFLICT, 0,
                             "node %s is not revoked: revoke it first (drover node revoke %s)",
                             name, name);
    }
    if (id.not_after > now_s(e)) {
        char na[32];
        rfc3339(id.not_after, na);
        *code = 409;
        return drv_error_set(err, DRV_ERR_CONFLICT, 0,
                             "node %s: its last certificate stays valid until %s; until then the "
                             "name cannot be freed (a device holding that certificate would "
                             "reach the broker again if the name were enrolled anew)",
                             name, na);
    }
    r = drv_hstore_identity_delete(e->store, name, err);
    if (r != DRV_OK) {
        *code = r == DRV_ERR_NOTFOUND ? 404 : 0;
        return r;
    }
    if (e->on_shut_out)
        e->on_shut_out(e->ctx, name);
    drv_log_info("node identity forgotten", "node=%s", name);
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "kind", "Status") ||
        !cJSON_AddStringToObject(o, "apiVersion", "v1") ||
        !cJSON_AddStringToObject(o, "status", "Success")) {
        cJSON_Delete(o);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    }
    *out = o;
    return DRV_OK;
}

drv_err_t drv_enroll_api(void *ctx, unsigned op, const char *name, const char *authorization,
                         const cJSON *body, cJSON **out, unsigned *code, drv_error_t *err)
{
    drv_enroll_t *e = ctx;
    *code = 0;
    switch (op) {
    case DRV_API_OP_ENROLL:
        return do_enroll(e, authorization, body, out, code, err);
    case DRV_API_OP_ENROLL_RENEW:
        return do_renew(e, body, out, code, err);
    case DRV_API_OP_NODE_REVOKE:
        return do_revoke(e, name ? name : "", out, code, err);
    case DRV_API_OP_IDENTITIES:
        return do_list(e, out, err);
    case DRV_API_OP_IDENTITY:
        return do_forget(e, name ? name : "", out, code, err);
    default:
        *code = 404;
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "no such enrollment route");
    }
}

drv_err_t drv_enroll_new(const drv_enroll_opts_t *opts, drv_enroll_t **out, drv_error_t *err)
{
    if (!opts || !opts->store || !opts->identity)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "enroll: a store and an identity are "
                             "required");
    drv_enroll_t *e = calloc(1, sizeof(*e));
    if (!e)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "enroll: out of memory");
    e->store = opts->store;
    e->identity = opts->identity;
    e->on_change = opts->on_change;
    e->on_new_key = opts->on_new_key;
    e->on_shut_out = opts->on_shut_out;
    e->ctx = opts->ctx;
    e->now = opts->now;
    *out = e;
    return DRV_OK;
}

void drv_enroll_free(drv_enroll_t *e)
{
    free(e); /* owns nothing else: drv_hub_own frees it with free() too */
}

static void hub_changed(void *ctx)
{
    drv_hub_changed(ctx);
}

static void hub_new_key(void *ctx, const char *node)
{
    drv_bridge_t *b = drv_hub_bridge(ctx);
    if (b)
        drv_bridge_node_rekeyed(b, node);
}

static void hub_shut_out(void *ctx, const char *node)
{
    drv_bridge_t *b = drv_hub_bridge(ctx);
    if (b)
        drv_bridge_kick(b, node);
}

/* With HTTPS: the API serves server.crt followed by ca.crt, so that a device finds the CA in
 * the chain and pins it by its fingerprint (docs/PROTOCOL.md "Enrollment"). */
static drv_err_t serve_chain(struct drv_hub *hub, drv_error_t *err)
{
    drv_api_t *api = drv_hub_api(hub);
    if (!drv_api_tls(api))
        return DRV_OK;
    const struct drv_identity *id = drv_hub_identity(hub);
    const char *srv = drv_identity_server_cert(id), *ca = drv_identity_ca_cert(id);
    size_t ls = strlen(srv), lc = strlen(ca);
    _cleanup_free_ char *chain = malloc(ls + 1 + lc + 1);
    if (!chain)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    memcpy(chain, srv, ls);
    size_t n = ls;
    if (ls && srv[ls - 1] != '\n')
        chain[n++] = '\n';
    memcpy(chain + n, ca, lc + 1);
    if (drv_api_set_tls_cert(api, chain, err) != DRV_OK)
        return drv_error_wrap(err, "serve the certificate chain");
    return DRV_OK;
}

drv_err_t drv_enroll_attach(struct drv_hub *hub, const char *data_dir, bool broker_tls,
                            drv_error_t *err)
{
    (void)data_dir;
    drv_enroll_opts_t o = {.store = drv_hub_store(hub),
                           .identity = drv_hub_identity(hub),
                           .on_change = hub_changed,
                           .on_new_key = hub_new_key,
                           .on_shut_out = broker_tls ? hub_shut_out : NULL,
                           .ctx = hub};
    drv_enroll_t *e = NULL;
    drv_err_t r = drv_enroll_new(&o, &e, err);
    if (r != DRV_OK)
        return drv_error_wrap(err, "enrollment");
    drv_hub_own(hub, e);
    drv_api_set_enroll(drv_hub_api(hub), drv_enroll_api, e);
    return serve_chain(hub, err);
}
