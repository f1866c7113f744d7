/* WWW-Authenticate challenges, as OCI registries send them (see drover/challenge.h). */
#include "drover/challenge.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static drv_err_t copy_param(char *dst, size_t dstsz, const char *src, size_t n, const char *key,
                            drv_error_t *err)
{
    if (n >= dstsz)
        return drv_error_set(err, DRV_ERR_PROTO, 0, "WWW-Authenticate: %s is longer than %zu bytes",
                             key, dstsz - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return DRV_OK;
}

drv_err_t drv_challenge_parse(const char *header, drv_auth_challenge_t *out, drv_error_t *err)
{
    drv_auth_challenge_t c;
    memset(&c, 0, sizeof(c));
    const char *p = header ? header : "";
    while (*p == ' ' || *p == '\t')
        p++;
    size_t sl = 0;
    while (isalnum((unsigned char)p[sl]) || p[sl] == '-' || p[sl] == '_')
        sl++;
    if (sl == 0)
        return drv_error_set(err, DRV_ERR_PROTO, 0, "WWW-Authenticate: no auth scheme");
    drv_err_t rc = copy_param(c.scheme, sizeof(c.scheme), p, sl, "scheme", err);
    if (rc != DRV_OK)
        return rc;
    p += sl;
    char value[2048];
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        const char *k = p;
        while (*p && *p != '=' && *p != ',' && *p != ' ')
            p++;
        size_t kl = (size_t)(p - k);
        while (*p == ' ')
            p++;
        if (*p != '=') {
            /* a token68 or the start of the next challenge: this one is over */
            break;
        }
        p++;
        while (*p == ' ')
            p++;
        size_t vl = 0;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '\0')
                    return drv_error_set(err, DRV_ERR_PROTO, 0,
                                         "WWW-Authenticate: unterminated quote");
                if (*p == '"') {
                    p++;
                    break;
                }
                if (*p == '\\' && p[1] != '\0')
                    p++;
                if (vl + 1 >= sizeof(value))
                    return drv_error_set(err, DRV_ERR_PROTO, 0, "WWW-Authenticate: value too long");
                value[vl++] = *p++;
            }
        } else {
            while (*p && *p != ',' && *p != ' ') {
                if (vl + 1 >= sizeof(value))
                    return drv_error_set(err, DRV_ERR_PROTO, 0, "WWW-Authenticate: value too long");
                value[vl++] = *p++;
            }
        }
        value[vl] = '\0';
        char *dst = NULL;
        size_t dstsz = 0;
        const char *name = NULL;
        if (kl == 5 && !strncasecmp(k, "realm", 5)) {
            dst = c.realm, dstsz = sizeof(c.realm), name = "realm";
        } else if (kl == 7 && !strncasecmp(k, "service", 7)) {
            dst = c.service, dstsz = sizeof(c.service), name = "service";
        } else if (kl == 5 && !strncasecmp(k, "scope", 5)) {
            dst = c.scope, dstsz = sizeof(c.scope), name = "scope";
        }
        if (dst && (rc = copy_param(dst, dstsz, value, vl, name, err)) != DRV_OK)
            return rc;
    }
    *out = c;
    return DRV_OK;
}
