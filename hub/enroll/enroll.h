/* Device enrollment and revocation on the hub: a device with a bootstrap token sends a CSR
 * (POST /api/v1/enroll) and gets a client certificate of the hub CA for its node name, the CA
 * and the key that signs desired state; it renews with a CSR of the same key
 * (POST /api/v1/enroll/renew); an admin revokes it (POST /api/v1/nodes/NAME/revoke). Each
 * identity is a row of the hub store (drv_hstore_identity_t); with the hub's TLS broker the
 * broker ACL (hub/broker) is rewritten from the non-revoked identities on every change.
 * docs/PROTOCOL.md "Enrollment". Not thread-safe: the hub's loop calls it. */
#ifndef DROVER_HUB_ENROLL_H
#define DROVER_HUB_ENROLL_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "api/api.h"
#include "drover/error.h"
#include "identity/identity.h"
#include "store/store.h"

#define DRV_ENROLL_CERT_DAYS 90u /* an issued node certificate's validity */
/* Names a device may not take ("drover-hub", the hub's own broker user, and every other
 * "drover-" name): 403. */
#define DRV_ENROLL_RESERVED_PREFIX "drover-"

struct drv_hub;
typedef struct drv_enroll drv_enroll_t;

typedef struct drv_enroll_opts {
    drv_hstore_t *store;                 /* required, borrowed */
    const struct drv_identity *identity; /* required, borrowed: CA, signing key */
    /* Called when node may no longer reach the broker (revoked, or its identity forgotten):
     * with the hub's TLS broker, its connections are closed at once (drv_bridge_kick); its
     * next CONNECT asks the hub (drv_broker_identity_fn), which refuses it. May be NULL. */
    void (*on_shut_out)(void *ctx, const char *node);
    /* Called after the store's objects changed (a Node created, labelled or marked revoked),
     * so that watches and controllers see it; may be NULL. */
    void (*on_change)(void *ctx);
    /* Called when node got a certificate for a key it did not have (a first enrollment, or
     * the name enrolled again after a forget): what is sealed to its old key must be sealed
     * again (the bridge). May be NULL. */
    void (*on_new_key)(void *ctx, const char *node);
    void *ctx;
    int64_t (*now)(void); /* unix seconds; NULL: time(NULL) (tests move it) */
} drv_enroll_opts_t;

/* Checks opts. *out is owned by the caller (drv_enroll_free). */
DRV_NODISCARD drv_err_t drv_enroll_new(const drv_enroll_opts_t *opts, drv_enroll_t **out,
                                       drv_error_t *err);
void drv_enroll_free(drv_enroll_t *e);

/* The API's enrollment routes (drv_api_enroll_fn; ctx is the drv_enroll_t):
 *  ENROLL        {"token", "csr"} (or the token as "Authorization: Bearer"): 201 Enrollment;
 *                token refused 401, reserved name or revoked node 403, name held by another
 *                key 409, bad CSR or field 400 naming it.
 *  ENROLL_RENEW  {"csr"}: 201 Enrollment (no labels); unknown 404, other key 409, revoked 403.
 *  NODE_REVOKE   name: 200 the identity; unknown 404.
 *  IDENTITIES    200 {"items": [...]}.
 *  IDENTITY      (DELETE) name: forgets a revoked identity whose last certificate has expired
 *                (the name is free again), 200 Status; not revoked or still valid 409. */
DRV_NODISCARD drv_err_t drv_enroll_api(void *ctx, unsigned op, const char *name,
                                       const char *authorization, const cJSON *body, cJSON **out,
                                       unsigned *code, drv_error_t *err);

/* One identity as GET /api/v1/identities lists it (new tree, caller owns). */
cJSON *drv_enroll_identity_json(const drv_hstore_identity_t *id);

/* Creates the enrollment for a running hub (store, identity, change hooks from hub.h) and
 * serves it on the hub's API; with HTTPS, the API then serves its certificate followed by the
 * CA's, the chain a device pins the CA in. broker_tls: the hub runs its own TLS broker in data_dir.
 * The module is freed with the hub. */
DRV_NODISCARD drv_err_t drv_enroll_attach(struct drv_hub *hub, const char *data_dir,
                                          bool broker_tls, drv_error_t *err);

#endif
