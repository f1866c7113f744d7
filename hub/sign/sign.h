/* ES256 signatures for the hub's hot paths (the desired state of every node it publishes),
 * made with OpenSSL's libcrypto: its P-256 code signs in about 25 us on this machine where
 * mbedTLS (drv_pki_sign) takes about 0.9 ms, which made signing the hub's largest cost in a
 * burst of placements. The signature is the same as drv_pki_sign's: a DER ECDSA-Sig-Value over
 * SHA-256 of the message, base64, which drv_pki_verify (agents, mbedTLS) checks. */
#ifndef DROVER_HUB_SIGN_H
#define DROVER_HUB_SIGN_H

#include <stddef.h>

#include "drover/error.h"

typedef struct drv_hsign drv_hsign_t;

/* A signer for key_pem (an EC P-256 private key, SEC1 or PKCS#8 PEM); anything else is
 * DRV_ERR_INVALID naming what was found. The key is parsed once; one signer may sign from
 * several threads at once. */
DRV_NODISCARD drv_err_t drv_hsign_new(const char *key_pem, drv_hsign_t **out, drv_error_t *err);
void drv_hsign_free(drv_hsign_t *s);

/* *sig_b64 (malloc'd, caller frees) gets the signature of the len bytes at msg. */
DRV_NODISCARD drv_err_t drv_hsign_sign(drv_hsign_t *s, const void *msg, size_t len, char **sig_b64,
                                       drv_error_t *err);

#endif
