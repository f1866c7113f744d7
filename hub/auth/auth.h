/* API access control for the hub: bearer tokens kept in the hub store (only a SHA-256 of their
 * secret), roles, and the two hooks the API takes (drv_api_opts_t.authorize and .tokens).
 *
 * A token reads "drv1_<id>_<secret>": id is 8 random hex digits (public, names the token in
 * lists and logs), secret 32 random bytes in unpadded base64url. Kinds:
 *  - "api": a role, admin, operator or viewer:
 *      viewer   GET on everything except Secrets (and pod logs), /metrics;
 *      operator viewer + Secrets, pod logs, create/update/patch/delete of the namespaced kinds
 *               (status subresources included), update/patch of Nodes (cordon, drain);
 *               not ClusterRoles and ClusterRoleBindings (admin only: they reach beyond);
 *      admin    everything, token management included.
 *  - "bootstrap": for enrolling devices (uses left, node labels); it opens no API route.
 * A bearer token that is a JWT is a pod's service account token (satoken.h): valid while its
 * pod and its ServiceAccount exist, allowed what RBAC (rbac.h) gives the account.
 * GET /healthz needs no token. Not thread-safe: the hub's loop calls it. */
#ifndef DROVER_HUB_AUTH_H
#define DROVER_HUB_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "api/api.h"
#include "auth/satoken.h"
#include "drover/digest.h"
#include "drover/error.h"
#include "store/store.h"

#define DRV_AUTH_PREFIX "drv1_"
#define DRV_AUTH_ID_LEN 8
#define DRV_AUTH_SECRET_BYTES 32
#define DRV_AUTH_SECRET_LEN 43 /* base64url of 32 bytes, unpadded */
/* "drv1_" + id + "_" + secret + NUL */
#define DRV_AUTH_TOKEN_MAX (sizeof(DRV_AUTH_PREFIX) + DRV_AUTH_ID_LEN + 1 + DRV_AUTH_SECRET_LEN)
#define DRV_AUTH_TTL_MAX_S (10LL * 366 * 24 * 3600) /* ten years */
#define DRV_AUTH_USES_MAX 100000
#define DRV_AUTH_ADMIN_FILE "admin.token"

typedef enum {
    DRV_AUTH_ROLE_NONE = 0, /* bootstrap tokens */
    DRV_AUTH_ROLE_VIEWER,
    DRV_AUTH_ROLE_OPERATOR,
    DRV_AUTH_ROLE_ADMIN,
} drv_auth_role_t;

/* "viewer" -> DRV_AUTH_ROLE_VIEWER, ...; anything else DRV_ERR_INVALID naming the choices. */
DRV_NODISCARD drv_err_t drv_auth_role_parse(const char *s, drv_auth_role_t *out, drv_error_t *err);
/* "admin", "operator", "viewer", "" for NONE. */
const char *drv_auth_role_name(drv_auth_role_t role);

/* A duration "90s", "30m", "24h", "7d" (one number and one unit, or a bare number of seconds)
 * into seconds, 1 to DRV_AUTH_TTL_MAX_S. DRV_ERR_INVALID with the reason otherwise. */
DRV_NODISCARD drv_err_t drv_auth_parse_ttl(const char *s, int64_t *seconds, drv_error_t *err);

/* What a new token is to be. */
typedef struct drv_auth_spec {
    const char *kind;        /* "api" or "bootstrap" */
    drv_auth_role_t role;    /* api tokens: required; bootstrap: NONE */
    int64_t ttl_s;           /* 0: never expires */
    int64_t uses;            /* bootstrap: 1 to DRV_AUTH_USES_MAX, 0: unlimited; api: 0 */
    const char *description; /* may be NULL; at most 256 bytes, no control characters */
    const cJSON *labels;     /* bootstrap: node labels (object of strings) or NULL */
} drv_auth_spec_t;

/* Creates a token valid from now (Unix seconds); a full token table is first purged of the
 * tokens nobody can use any more (DRV_ERR_RANGE if that frees nothing): token (DRV_AUTH_TOKEN_MAX
 * bytes) gets the whole token, the only time it exists in clear; rec (may be NULL) the stored
 * record. A bad spec is DRV_ERR_INVALID naming the field. */
DRV_NODISCARD drv_err_t drv_auth_create(drv_hstore_t *store, const drv_auth_spec_t *spec,
                                        int64_t now, char token[DRV_AUTH_TOKEN_MAX],
                                        drv_hstore_token_t *rec, drv_error_t *err);

/* Splits a token into its id (DRV_AUTH_ID_LEN + 1 bytes) and the SHA-256 of its secret.
 * DRV_ERR_INVALID for anything that is not a well-formed token. */
DRV_NODISCARD drv_err_t drv_auth_parse_token(const char *token, char id[DRV_AUTH_ID_LEN + 1],
                                             drv_digest_t *secret_hash, drv_error_t *err);

/* Checks a token (the bare token, or an Authorization header value "Bearer <token>") at time
 * now: *out (may be NULL) gets its record. DRV_ERR_PERM with a reason fit for the client
 * when it is missing, malformed, unknown, wrong, revoked or expired (the reason never says
 * which of unknown and wrong); store failures as they come. The secret is compared in
 * constant time. */
DRV_NODISCARD drv_err_t drv_auth_authenticate(drv_hstore_t *store, const char *credential,
                                              int64_t now, drv_hstore_token_t *out,
                                              drv_error_t *err);

/* Whether x and y are the same string, compared in constant time for strings of one length. */
bool drv_auth_same(const char *x, const char *y);

/* Whether a role may use route with method (one DRV_API_M_* bit). route NULL (an unknown
 * path) is allowed to any role (the API then answers 404/405). */
bool drv_auth_allows(drv_auth_role_t role, unsigned method, const drv_api_route_t *route);

/* ---- the dashboard's sessions (session.c, docs/DASHBOARD.md) ----
 * An API token exchanged for a signed cookie: no state per session on the hub, the key in
 * <data dir>/session.key (sessions survive a restart), the token looked up on every request
 * (revoked or expired: the session ends with it). */
#define DRV_AUTH_SESSION_TTL_DEFAULT_S (12 * 3600)
#define DRV_AUTH_SESSION_TTL_MAX_S (30LL * 24 * 3600)
#define DRV_AUTH_CSRF_MAX 33 /* 32 hex digits + NUL */

typedef struct drv_auth drv_auth_t;

typedef struct drv_auth_session {
    drv_hstore_token_t token;
    int64_t expires; /* Unix seconds */
    char nonce[33];
    char csrf[DRV_AUTH_CSRF_MAX];
} drv_auth_session_t;

/* Access control over store: the session key read from data_dir/session.key, made there on
 * the first start (data_dir NULL: a key in memory only, for tests). session_ttl_s: how long
 * a session lasts (1 s to DRV_AUTH_SESSION_TTL_MAX_S). */
DRV_NODISCARD drv_err_t drv_auth_new(drv_hstore_t *store, const char *data_dir,
                                     int64_t session_ttl_s, drv_auth_t **out, drv_error_t *err);
void drv_auth_free(drv_auth_t *a);
drv_hstore_t *drv_auth_store(const drv_auth_t *a);
/* The service account tokens' issuer (satoken.h), made with the access control (its key in
 * <data_dir>/pki/serviceaccount.key); NULL for a NULL a. */
drv_satoken_t *drv_auth_satoken(const drv_auth_t *a);
/* A session cookie's value checked at now: signature, expiry, sign-out, its token (present,
 * an API token, not revoked, not expired). *out (may be NULL) gets the session with its CSRF
 * token. DRV_ERR_PERM with a reason fit for the client otherwise. */
DRV_NODISCARD drv_err_t drv_auth_session_check(drv_auth_t *a, const char *cookie, int64_t now,
                                               drv_auth_session_t *out, drv_error_t *err);
/* The API's session route (drv_api_session_fn); ctx is the drv_auth_t. */
DRV_NODISCARD drv_err_t drv_auth_api_session(void *ctx, unsigned method, const char *cookie,
                                             const char *csrf, bool secure, const cJSON *body,
                                             cJSON **out, char *set_cookie, size_t scsz,
                                             unsigned *code, drv_error_t *err);

/* Who a token is, as the API tells it (kubectl auth whoami): username "drover:token:<id>", uid
 * the id, groups "drover:<role>" and "system:authenticated", its description. */
void drv_auth_user(const drv_hstore_token_t *t, drv_api_user_t *out);

/* The API's authorizer (drv_api_authorize_fn); ctx is the drv_auth_t. A request without an
 * Authorization header may come with a session cookie instead: refused when cross-origin,
 * and for anything but GET without the session's CSRF token. A request let through on a
 * token or a session gets req->user (when set) filled by drv_auth_user. */
unsigned drv_auth_api_authorize(void *ctx, const drv_api_authz_t *req, char *msg, size_t msgsz);
/* The API's token routes (drv_api_tokens_fn); ctx is the drv_hstore_t. Create takes
 * {"kind": "api"|"bootstrap", "role", "ttl": "24h" (or "ttlSeconds": N), "uses", "labels",
 * "description"} and answers the record with "token" set; list answers {"items": [...]};
 * a record never carries the secret or its hash. */
DRV_NODISCARD drv_err_t drv_auth_api_tokens(void *ctx, unsigned method, const char *id,
                                            const cJSON *body, cJSON **out, drv_error_t *err);
/* One token's record as the API shows it (new tree, caller owns). */
cJSON *drv_auth_token_json(const drv_hstore_token_t *t, int64_t now);

/* On a hub started with access control: if no admin token is usable (present, not revoked,
 * not expired), creates one and writes it to <data_dir>/admin.token (mode 0600, crash-safe;
 * the file is written before the token is stored, so a crash between the two leaves no
 * token nobody knows). path (pathsz bytes) gets the file's path; *created whether a token was
 * made. The token itself is never logged. */
DRV_NODISCARD drv_err_t drv_auth_ensure_admin(drv_hstore_t *store, const char *data_dir,
                                              int64_t now, char *path, size_t pathsz, bool *created,
                                              drv_error_t *err);

#endif
