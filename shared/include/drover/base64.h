/* Standard base64 (RFC 4648, with padding), as Kubernetes uses for Secret and ConfigMap
 * binary data. Decoding is strict: no whitespace, no missing padding, no stray characters. */
#ifndef DROVER_BASE64_H
#define DROVER_BASE64_H

#include <stddef.h>
#include "drover/error.h"

/* Encoded length of n bytes, without the NUL. */
static inline size_t drv_base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

/* Encodes n bytes into a malloc'd NUL-terminated string (caller frees); NULL if out of memory. */
DRV_API char *drv_base64_encode(const void *data, size_t n);

/* Decodes s (len characters) into a malloc'd buffer (caller frees, NUL-terminated for
 * convenience, *outlen without it). DRV_ERR_INVALID for malformed input, with *out untouched. */
DRV_API DRV_NODISCARD drv_err_t drv_base64_decode(const char *s, size_t len, unsigned char **out,
                                                  size_t *outlen);

/* base64url without padding (RFC 4648 section 5), as JSON Web Tokens use it: encodes n bytes
 * into a malloc'd string (NULL if out of memory); decodes strictly (no '=', no '+' or '/', no
 * stray bits), as drv_base64_decode. */
DRV_API char *drv_base64url_encode(const void *data, size_t n);
DRV_API DRV_NODISCARD drv_err_t drv_base64url_decode(const char *s, size_t len, unsigned char **out,
                                                     size_t *outlen);

#endif
