/* Private helpers shared by the pki_*.c files: the module's DRBG as an mbedTLS f_rng, loading
 * and checking keys, and errors that carry mbedTLS's reason. */
#ifndef DROVER_PKI_INT_H
#define DROVER_PKI_INT_H

#include <mbedtls/pk.h>
#include "drover/pki.h"

#define DRV_PKI_HIDDEN __attribute__((visibility("hidden")))

/* mbedTLS f_rng over the module's CTR_DRBG (p_rng is ignored). */
DRV_PKI_HIDDEN int drv_pki_int_rng(void *p_rng, unsigned char *out, size_t n);

/* strnlen(s) when s is set and at most max bytes; else DRV_ERR_INVALID/DRV_ERR_TOOBIG naming
 * what. */
DRV_PKI_HIDDEN DRV_NODISCARD drv_err_t drv_pki_int_text(const char *s, size_t max, const char *what,
                                                        size_t *len, drv_error_t *err);
/* Records code with "<message>: <mbedTLS's reason>". */
DRV_PKI_HIDDEN DRV_NODISCARD drv_err_t drv_pki_int_fail(drv_error_t *err, drv_err_t code,
                                                        int mbed_rc, const char *fmt, ...)
    DRV_PRINTF(4, 5);
/* DRV_OK if pk is an EC key on P-256; DRV_ERR_UNSUPPORTED naming what and the key otherwise. */
DRV_PKI_HIDDEN DRV_NODISCARD drv_err_t drv_pki_int_check_p256(mbedtls_pk_context *pk,
                                                              const char *what, drv_error_t *err);
/* Parses a P-256 private key PEM into pk (initialised by the caller; pk_free it). */
DRV_PKI_HIDDEN DRV_NODISCARD drv_err_t drv_pki_int_load_key(const char *pem, mbedtls_pk_context *pk,
                                                            const char *what, drv_error_t *err);
/* Parses a P-256 public key PEM into pk (initialised by the caller). */
DRV_PKI_HIDDEN DRV_NODISCARD drv_err_t drv_pki_int_load_pub(const char *pem, mbedtls_pk_context *pk,
                                                            const char *what, drv_error_t *err);
/* PEM of pk's public key, malloc'd. */
DRV_PKI_HIDDEN DRV_NODISCARD drv_err_t drv_pki_int_pub_pem(mbedtls_pk_context *pk, char **out,
                                                           drv_error_t *err);
/* Copies n bytes into a new NUL-terminated string (NULL if out of memory). */
DRV_PKI_HIDDEN char *drv_pki_int_strndup(const unsigned char *p, size_t n);

#endif
