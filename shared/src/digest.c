/* SHA-256 content digests in the OCI "sha256:<hex>" form, over mbedTLS 2.28's sha256 module.
 * Everything that comes from a registry or a store is checked with these before it is used. */
#include "drover/digest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drover/cleanup.h"

#define SHA256_PREFIX "sha256:"
#define SHA256_PREFIX_LEN 7

void drv_sha256_init(drv_sha256_t *h)
{
    mbedtls_sha256_init(&h->ctx);
    /* With a valid context and is224 == 0 these cannot fail in 2.28 (no hardware offload). */
    (void)mbedtls_sha256_starts_ret(&h->ctx, 0);
    h->total = 0;
}

void drv_sha256_update(drv_sha256_t *h, const void *data, size_t len)
{
    if (len == 0)
        return;
    (void)mbedtls_sha256_update_ret(&h->ctx, data, len);
    h->total += len;
}

void drv_sha256_final(drv_sha256_t *h, drv_digest_t *out)
{
    (void)mbedtls_sha256_finish_ret(&h->ctx, out->bytes);
    mbedtls_sha256_free(&h->ctx);
}

void drv_digest_of(const void *data, size_t len, drv_digest_t *out)
{
    drv_sha256_t h;
    drv_sha256_init(&h);
    drv_sha256_update(&h, data, len);
    drv_sha256_final(&h, out);
}

drv_err_t drv_digest_file(const char *path, drv_digest_t *out, uint64_t *size, drv_error_t *err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return drv_error_set(err, errno == ENOENT ? DRV_ERR_NOTFOUND : DRV_ERR_IO, errno, "open %s",
                             path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "stat %s", path);
    if (!S_ISREG(st.st_mode))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: not a regular file", path);
    drv_sha256_t h;
    drv_sha256_init(&h);
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            mbedtls_sha256_free(&h.ctx);
            return drv_error_set(err, DRV_ERR_IO, e, "read %s", path);
        }
        if (n == 0)
            break;
        drv_sha256_update(&h, buf, (size_t)n);
    }
    uint64_t total = h.total;
    drv_sha256_final(&h, out);
    if (size)
        *size = total;
    return DRV_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Copies at most 80 characters of s for an error message, replacing control bytes. */
static const char *quote_input(const char *s, char *out, size_t outsz)
{
    size_t i = 0;
    for (; s[i] != '\0' && i + 4 < outsz && i < 80; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (s[i] != '\0' && i + 4 < outsz) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
    return out;
}

static drv_err_t parse_hex(const char *hex, const char *whole, drv_digest_t *out, drv_error_t *err)
{
    char q[96];
    size_t n = strnlen(hex, 2 * DRV_DIGEST_LEN + 1);
    if (n != 2 * DRV_DIGEST_LEN)
        return drv_error_set(
            err, DRV_ERR_INVALID, 0, "digest \"%s\": sha256 needs 64 hex digits, found %s%zu",
            quote_input(whole, q, sizeof(q)), n > 2 * DRV_DIGEST_LEN ? "more than " : "",
            n > 2 * DRV_DIGEST_LEN ? (size_t)(2 * DRV_DIGEST_LEN) : n);
    drv_digest_t d;
    for (size_t i = 0; i < DRV_DIGEST_LEN; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "digest \"%s\": only lowercase hex digits [0-9a-f] are allowed",
                                 quote_input(whole, q, sizeof(q)));
        d.bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = d;
    return DRV_OK;
}

drv_err_t drv_digest_parse_hex(const char *hex, drv_digest_t *out, drv_error_t *err)
{
    if (hex == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "digest: missing");
    return parse_hex(hex, hex, out, err);
}

/* OCI digest grammar: algorithm ::= component ([+._-] component)*, component ::= [a-z0-9]+ */
static bool valid_algorithm(const char *s, size_t n)
{
    if (n == 0)
        return false;
    bool need_alnum = true;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (alnum) {
            need_alnum = false;
        } else if ((c == '+' || c == '.' || c == '_' || c == '-') && !need_alnum) {
            need_alnum = true;
        } else {
            return false;
        }
    }
    return !need_alnum;
}

drv_err_t drv_digest_parse(const char *s, drv_digest_t *out, drv_error_t *err)
{
    char q[96];
    if (s == NULL || *s == '\0')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "digest: missing");
    if (strncmp(s, SHA256_PREFIX, SHA256_PREFIX_LEN) == 0)
        return parse_hex(s + SHA256_PREFIX_LEN, s, out, err);
    const char *colon = strchr(s, ':');
    if (colon == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "digest \"%s\": expected \"sha256:<64 hex digits>\"",
                             quote_input(s, q, sizeof(q)));
    if (valid_algorithm(s, (size_t)(colon - s)) && colon[1] != '\0')
        return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                             "digest \"%s\": algorithm \"%.*s\" is not supported (only sha256)",
                             quote_input(s, q, sizeof(q)), (int)(colon - s < 32 ? colon - s : 32),
                             s);
    return drv_error_set(err, DRV_ERR_INVALID, 0,
                         "digest \"%s\": expected \"sha256:<64 hex digits>\"",
                         quote_input(s, q, sizeof(q)));
}

const char *drv_digest_hex(const drv_digest_t *d, char out[DRV_DIGEST_HEX_MAX])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < DRV_DIGEST_LEN; i++) {
        out[2 * i] = digits[d->bytes[i] >> 4];
        out[2 * i + 1] = digits[d->bytes[i] & 0xf];
    }
    out[2 * DRV_DIGEST_LEN] = '\0';
    return out;
}

const char *drv_digest_format(const drv_digest_t *d, char out[DRV_DIGEST_STR_MAX])
{
    memcpy(out, SHA256_PREFIX, SHA256_PREFIX_LEN);
    drv_digest_hex(d, out + SHA256_PREFIX_LEN);
    return out;
}

bool drv_digest_equal(const drv_digest_t *a, const drv_digest_t *b)
{
    uint8_t diff = 0;
    for (size_t i = 0; i < DRV_DIGEST_LEN; i++)
        diff |= (uint8_t)(a->bytes[i] ^ b->bytes[i]);
    return diff == 0;
}

drv_err_t drv_digest_verify(const drv_digest_t *expected, const drv_digest_t *actual,
                            const char *what, drv_error_t *err)
{
    if (drv_digest_equal(expected, actual))
        return DRV_OK;
    char e[DRV_DIGEST_STR_MAX], a[DRV_DIGEST_STR_MAX];
    return drv_error_set(err, DRV_ERR_INTEGRITY, 0, "%s%sdigest mismatch: expected %s, got %s",
                         what ? what : "", what ? ": " : "", drv_digest_format(expected, e),
                         drv_digest_format(actual, a));
}

drv_err_t drv_digest_check(const char *expected, const void *data, size_t len, const char *what,
                           drv_error_t *err)
{
    drv_digest_t want, got;
    drv_err_t rc = drv_digest_parse(expected, &want, err);
    if (rc != DRV_OK)
        return what ? drv_error_wrap(err, "%s", what) : rc;
    drv_digest_of(data, len, &got);
    return drv_digest_verify(&want, &got, what, err);
}
