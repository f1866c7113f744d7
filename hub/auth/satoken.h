/* Service account tokens: JSON Web Tokens (ES256) the hub issues to a pod for its
 * ServiceAccount, bound to the pod (its uid) as Kubernetes' bound tokens are, and verified when
 * a client in the pod calls the API. The signing key is <data dir>/pki/serviceaccount.key,
 * separate from the key that signs desired state.
 *
 * Claims: iss and aud DRV_SATOKEN_ISSUER, sub "system:serviceaccount:<ns>:<sa>", iat, nbf, exp,
 * and "kubernetes.io": {namespace, pod: {name, uid}, serviceaccount: {name, uid}, node: {name,
 * uid}}. Verification here covers the signature, the header, the times and the claims' form;
 * the caller checks the pod and the account still exist (auth.c). */
#ifndef DROVER_HUB_SATOKEN_H
#define DROVER_HUB_SATOKEN_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "drover/error.h"
#include "store/store.h"

#define DRV_SATOKEN_ISSUER "https://kubernetes.default.svc.cluster.local"
#define DRV_SATOKEN_KEY_FILE "pki/serviceaccount.key"
#define DRV_SATOKEN_TTL_DEFAULT_S 3607 /* Kubernetes' default for the mounted token */
#define DRV_SATOKEN_TTL_MIN_S 600
#define DRV_SATOKEN_MAX 4096 /* a token longer than this is refused unread */

typedef struct drv_satoken drv_satoken_t;

typedef struct drv_satoken_claims {
    char ns[64];
    char pod[254], pod_uid[64];
    char sa[254], sa_uid[64];
    char node[254], node_uid[64];
    int64_t iat, nbf, exp; /* Unix seconds */
} drv_satoken_claims_t;

/* The issuer with the key of data_dir/DRV_SATOKEN_KEY_FILE, made there (mode 0600) on the first
 * start; data_dir NULL: a key in memory only (tests). */
DRV_NODISCARD drv_err_t drv_satoken_new(const char *data_dir, drv_satoken_t **out,
                                        drv_error_t *err);
void drv_satoken_free(drv_satoken_t *t);

/* A signed token of claims (iat, nbf and exp as given) into *jwt (malloc'd; the caller wipes and
 * frees it). */
DRV_NODISCARD drv_err_t drv_satoken_issue(const drv_satoken_t *t, const drv_satoken_claims_t *c,
                                          char **jwt, drv_error_t *err);

/* Checks jwt at now: form, alg ES256, signature, iss, aud, nbf/exp (60 s leeway for clocks,
 * none on exp), and the kubernetes.io claims; *out gets them. DRV_ERR_PERM with a reason fit for
 * the client otherwise (it never holds the token). */
DRV_NODISCARD drv_err_t drv_satoken_verify(const drv_satoken_t *t, const char *jwt, int64_t now,
                                           drv_satoken_claims_t *out, drv_error_t *err);

/* The token of pod (as stored, or as desired state carries it: metadata name, namespace, uid
 * and spec) running on node, at now (Unix seconds): the one issued before while it is younger
 * than 80 % of its life and its account the same, else a new one (DRV_SATOKEN_TTL_DEFAULT_S).
 * *jwt is borrowed (valid until the next call); *refresh_at (may be NULL) says when a new one
 * will be due; *mount (may be NULL) whether it is mounted at the Kubernetes path
 * (automountServiceAccountToken: the pod's, else its account's, else true). A pod with a
 * projected serviceAccountToken source gets one even without that mount, living as long as the
 * shortest expirationSeconds of those sources. DRV_ERR_NOTFOUND when the pod gets none (no
 * mount, no projected token), or its account is missing. At most
 * DRV_SATOKEN_CACHE_MAX tokens are kept; expired ones are dropped first. */
#define DRV_SATOKEN_CACHE_MAX 100000
DRV_NODISCARD drv_err_t drv_satoken_for_pod(drv_satoken_t *t, drv_hstore_t *s, const char *node,
                                            const cJSON *pod, int64_t now, const char **jwt,
                                            int64_t *exp, int64_t *refresh_at, bool *mount,
                                            drv_error_t *err);

/* Whether cred (a bare token) has the form of a JWT (three base64url parts): the authenticator
 * sends those here and the rest to the API token check. */
bool drv_satoken_looks_like(const char *cred);

#endif
