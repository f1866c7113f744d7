/* WWW-Authenticate challenges as OCI registries send them ("Bearer realm=...,service=...,
 * scope=..."), parsed for the token request that follows. Used by the agent's registry client
 * and the hub's image platform lookups. */
#ifndef DROVER_CHALLENGE_H
#define DROVER_CHALLENGE_H

#include "drover/error.h"

/* A parsed WWW-Authenticate challenge. */
typedef struct drv_auth_challenge {
    char scheme[16]; /* "Bearer" or "Basic" as sent (compare case-insensitively) */
    char realm[1024];
    char service[256];
    char scope[512];
} drv_auth_challenge_t;

/* Parses the first challenge of a WWW-Authenticate value: scheme, then comma-separated
 * key=value or key="quoted \"value\"" parameters (unknown keys ignored). Too-long values,
 * unterminated quotes and a missing scheme are DRV_ERR_PROTO. */
DRV_API DRV_NODISCARD drv_err_t drv_challenge_parse(const char *header, drv_auth_challenge_t *out,
                                                    drv_error_t *err);

#endif
