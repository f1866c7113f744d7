/* The hub's identity, kept in <data>/pki/ (0700): the fleet CA (ca.key, ca.crt), the server
 * certificate the API and the broker present (server.key, server.crt; CN drover-hub, SANs
 * localhost, 127.0.0.1, ::1, the listen address unless it is a wildcard, and every configured
 * name), and the P-256 key that signs desired state (signing.key, signing.pub). Created on the
 * first start, loaded and checked on every later one. Private keys are 0600 and never logged. */
#ifndef DROVER_HUB_IDENTITY_H
#define DROVER_HUB_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"
#include "drover/pki.h"

#define DRV_IDENTITY_CA_DAYS 3650u    /* the CA's validity */
#define DRV_IDENTITY_SERVER_DAYS 397u /* a server certificate's validity */
#define DRV_IDENTITY_RENEW_DAYS 30    /* a server certificate this close to expiry is renewed */
#define DRV_IDENTITY_SERVER_CN "drover-hub"

typedef struct drv_identity drv_identity_t;

typedef struct drv_identity_opts {
    const char *data_dir; /* required; the files go in <data_dir>/pki */
    /* The address the API listens on (an IP literal; "0.0.0.0", "::" and "" are wildcards and
     * not put in the certificate); NULL: none. */
    const char *listen_addr;
    /* Further names (--san): each an IPv4/IPv6 address or a DNS name. */
    const char *const *sans;
    size_t n_sans;
    int64_t now; /* unix time; 0: time(NULL) (tests move it) */
} drv_identity_opts_t;

/* Creates what is missing and checks what exists:
 * - ca.key/ca.crt: the key must match the certificate, which must be a CA valid now; a
 *   certificate without its key is an error (the fleet pins the CA: it is never replaced
 *   silently); a key without its certificate (a crash between the two writes) gets one.
 * - server.key/server.crt: the key must match, the certificate must be issued by ca.crt for
 *   server use (else an error naming the file); expired, expiring within
 *   DRV_IDENTITY_RENEW_DAYS or not naming every configured SAN: re-issued (same key).
 * - signing.key: a valid P-256 key; signing.pub is rewritten when missing or not its own.
 * Every write is crash-safe (drv_file_write_atomic). *out is owned by the caller. */
DRV_NODISCARD drv_err_t drv_identity_load(const drv_identity_opts_t *opts, drv_identity_t **out,
                                          drv_error_t *err);
/* Wipes the private keys and frees. NULL is a no-op. */
void drv_identity_free(drv_identity_t *id);

/* PEM text and facts, borrowed, valid until drv_identity_free. */
const char *drv_identity_ca_cert(const drv_identity_t *id);
const char *drv_identity_ca_key(const drv_identity_t *id); /* secret */
const char *drv_identity_server_cert(const drv_identity_t *id);
const char *drv_identity_server_key(const drv_identity_t *id);  /* secret */
const char *drv_identity_signing_key(const drv_identity_t *id); /* secret */
const char *drv_identity_signing_pub(const drv_identity_t *id);
/* "sha256:<hex>" of the CA certificate's DER: what devices pin. */
const char *drv_identity_ca_fingerprint(const drv_identity_t *id);
/* <data_dir>/pki and <data_dir>/pki/ca.crt. */
const char *drv_identity_dir(const drv_identity_t *id);
const char *drv_identity_ca_path(const drv_identity_t *id);
/* Whether this load created the CA, and whether it (re)issued the server certificate. */
bool drv_identity_created(const drv_identity_t *id);
bool drv_identity_reissued(const drv_identity_t *id);

#endif
