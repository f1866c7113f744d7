/* Strict RFC 4648 base64 with padding, and its URL-safe form without padding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drover/base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *drv_base64_encode(const void *data, size_t n)
{
    const unsigned char *p = data;
    if (n > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    char *out = malloc(drv_base64_encoded_len(n) + 1);
    if (!out)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

static int value_of(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

drv_err_t drv_base64_decode(const char *s, size_t len, unsigned char **out, size_t *outlen)
{
    if (len % 4 != 0)
        return DRV_ERR_INVALID;
    size_t pad = 0;
    if (len >= 1 && s[len - 1] == '=')
        pad++;
    if (len >= 2 && s[len - 2] == '=')
        pad++;
    size_t n = len / 4 * 3 - pad;
    unsigned char *buf = malloc(n + 1);
    if (!buf)
        return DRV_ERR_NOMEM;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        for (int j = 0; j < 4; j++) {
            char c = s[i + j];
            if (c == '=' && i + 4 == len && j >= 4 - (int)pad) {
                v[j] = 0;
                continue;
            }
            v[j] = value_of(c);
            if (v[j] < 0) {
                free(buf);
                return DRV_ERR_INVALID;
            }
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        unsigned char b[3] = {(unsigned char)(w >> 16), (unsigned char)(w >> 8), (unsigned char)w};
        for (int j = 0; j < 3 && o < n; j++)
            buf[o++] = b[j];
        /* Non-canonical encodings (bits set in the padding) are malformed. */
        if (i + 4 == len && ((pad == 1 && (v[2] & 3)) || (pad == 2 && (v[1] & 15)))) {
            free(buf);
            return DRV_ERR_INVALID;
        }
    }
    buf[n] = '\0';
    *out = buf;
    if (outlen)
        *outlen = n;
    return DRV_OK;
}

char *drv_base64url_encode(const void *data, size_t n)
{
    char *s = drv_base64_encode(data, n);
    if (!s)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; s[i] && s[i] != '='; i++)
        s[o++] = s[i] == '+' ? '-' : s[i] == '/' ? '_' : s[i];
    s[o] = '\0';
    return s;
}

drv_err_t drv_base64url_decode(const char *s, size_t len, unsigned char **out, size_t *outlen)
{
    if (len % 4 == 1 || len > SIZE_MAX - 4)
        return DRV_ERR_INVALID;
    size_t padded = (len + 3) / 4 * 4;
    char *t = malloc(padded + 1);
    if (!t)
        return DRV_ERR_NOMEM;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+' || c == '/' || c == '=') {
            free(t);
            return DRV_ERR_INVALID;
        }
        t[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    for (size_t i = len; i < padded; i++)
        t[i] = '=';
    t[padded] = '\0';
    drv_err_t e = drv_base64_decode(t, padded, out, outlen);
    free(t);
    return e;
}
