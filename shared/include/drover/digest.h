/* Content digests (OCI "sha256:<hex>"): streaming SHA-256 over mbedTLS, parsing and formatting
 * of digest strings, and verification that names the expected and the actual digest. Only
 * sha256 is supported; other OCI algorithms are refused with DRV_ERR_UNSUPPORTED. */
#ifndef DROVER_DIGEST_H
#define DROVER_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <mbedtls/sha256.h>
#include "drover/error.h"

#define DRV_DIGEST_LEN 32     /* raw bytes */
#define DRV_DIGEST_HEX_MAX 65 /* 64 hex digits + NUL */
#define DRV_DIGEST_STR_MAX 72 /* "sha256:" + 64 hex digits + NUL */

typedef struct drv_digest {
    uint8_t bytes[DRV_DIGEST_LEN];
} drv_digest_t;

/* A running hash. Init, update any number of times, final once; init again to reuse. The
 * context holds no heap memory, so a hash abandoned halfway needs no cleanup. */
typedef struct drv_sha256 {
    mbedtls_sha256_context ctx;
    uint64_t total; /* bytes hashed so far */
} drv_sha256_t;

DRV_API void drv_sha256_init(drv_sha256_t *h);
DRV_API void drv_sha256_update(drv_sha256_t *h, const void *data, size_t len);
DRV_API void drv_sha256_final(drv_sha256_t *h, drv_digest_t *out);

/* The digest of len bytes at data. */
DRV_API void drv_digest_of(const void *data, size_t len, drv_digest_t *out);

/* Hashes the whole file at path (regular files only), streaming. *size (may be NULL) gets
 * its length. Missing file: DRV_ERR_NOTFOUND. */
DRV_API DRV_NODISCARD drv_err_t drv_digest_file(const char *path, drv_digest_t *out, uint64_t *size,
                                                drv_error_t *err);

/* Parses "sha256:<64 lowercase hex digits>" (the OCI form). Another valid algorithm
 * ("sha512:...") is DRV_ERR_UNSUPPORTED, anything else DRV_ERR_INVALID; the message quotes
 * (a cut-down copy of) the input. s may be NULL (DRV_ERR_INVALID). */
DRV_API DRV_NODISCARD drv_err_t drv_digest_parse(const char *s, drv_digest_t *out,
                                                 drv_error_t *err);

/* Parses exactly 64 lowercase hex digits, no prefix (a file name in a blob store). */
DRV_API DRV_NODISCARD drv_err_t drv_digest_parse_hex(const char *hex, drv_digest_t *out,
                                                     drv_error_t *err);

/* "sha256:<hex>" into out (at least DRV_DIGEST_STR_MAX bytes). Returns out. */
DRV_API const char *drv_digest_format(const drv_digest_t *d, char out[DRV_DIGEST_STR_MAX]);
/* "<hex>" into out (at least DRV_DIGEST_HEX_MAX bytes). Returns out. */
DRV_API const char *drv_digest_hex(const drv_digest_t *d, char out[DRV_DIGEST_HEX_MAX]);

/* Constant-time comparison. */
DRV_API bool drv_digest_equal(const drv_digest_t *a, const drv_digest_t *b);

/* DRV_OK if actual equals expected; otherwise DRV_ERR_INTEGRITY with
 * "<what>: digest mismatch: expected sha256:..., got sha256:..." (what may be NULL). */
DRV_API DRV_NODISCARD drv_err_t drv_digest_verify(const drv_digest_t *expected,
                                                  const drv_digest_t *actual, const char *what,
                                                  drv_error_t *err);

/* Hashes data and verifies it against the digest string expected ("sha256:..."): parse
 * errors as drv_digest_parse, a mismatch as drv_digest_verify. */
DRV_API DRV_NODISCARD drv_err_t drv_digest_check(const char *expected, const void *data, size_t len,
                                                 const char *what, drv_error_t *err);

#endif
