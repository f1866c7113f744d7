/* Kubernetes resource quantities ("250m", "1.5Gi", "1e3") parsed into exact integers and
 * written back canonically. The arithmetic is done on decimal digits, so it is exact for any
 * input and needs nothing wider than uint64 (32-bit ARM has no __int128). */
#include "drover/quantity.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Longest quantity text accepted; real ones are a handful of characters. */
#define QTY_MAX_LEN 64
/* Room for the mantissa digits times 2^60 (at most 19 more digits). */
#define QTY_DIGITS_MAX (QTY_MAX_LEN + 20)
/* Exponents are clamped here: far beyond it every value is 0, 1 or too large. */
#define QTY_EXP_CLAMP 100000
/* 2^62 has 19 decimal digits, so no valid integer part is longer. */
#define QTY_INT_DIGITS_MAX 19

#define QTY_REGEX "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"

typedef struct {
    /* Significant digits, least significant first, no leading zeros; ndigits == 0 means 0. */
    uint8_t digits[QTY_DIGITS_MAX];
    size_t ndigits;
    int32_t exp10; /* value = digits * 10^exp10 * 2^exp2 */
    unsigned exp2;
    drv_qty_format_t fmt;
    bool negative;
} qty_num_t;

/* The names in place, not pointers: no relocation per entry (issue 19: the agent's size). */
typedef struct {
    char name[3];
    int exp10;
    unsigned exp2;
} qty_suffix_t;

static const qty_suffix_t qty_suffixes[] = {
    {"Ki", 0, 10}, {"Mi", 0, 20}, {"Gi", 0, 30}, {"Ti", 0, 40}, {"Pi", 0, 50},
    {"Ei", 0, 60}, {"n", -9, 0},  {"u", -6, 0},  {"m", -3, 0},  {"k", 3, 0},
    {"M", 6, 0},   {"G", 9, 0},   {"T", 12, 0},  {"P", 15, 0},  {"E", 18, 0},
};

/* Copies s into out as a printable, bounded excerpt for error messages. */
static void qty_quote(const char *s, char *out, size_t outsz)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    size_t i = 0;
    for (; s[i] != '\0' && i < 40; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            if (o + 2 > outsz)
                break;
            out[o++] = (char)c;
        } else {
            if (o + 5 > outsz)
                break;
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (s[i] != '\0' && o + 4 <= outsz) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static drv_err_t qty_syntax_error(const char *s, drv_error_t *err)
{
    char q[200];
    qty_quote(s, q, sizeof(q));
    return drv_error_set(err, DRV_ERR_INVALID, 0,
                         "\"%s\": quantities must match the regular expression " QTY_REGEX, q);
}

/* Reads "[+-]?digits" into *out, clamped to +-QTY_EXP_CLAMP. Returns false on bad syntax. */
static bool qty_parse_exponent(const char *p, int32_t *out)
{
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = (*p++ == '-');
    if (*p == '\0')
        return false;
    int32_t v = 0;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return false;
        if (v < QTY_EXP_CLAMP)
            v = v * 10 + (*p - '0');
    }
    if (v > QTY_EXP_CLAMP)
        v = QTY_EXP_CLAMP;
    *out = neg ? -v : v;
    return true;
}

/* Splits s into sign, mantissa digits, and suffix. Only syntax is checked here. */
static drv_err_t qty_scan(const char *s, qty_num_t *num, drv_error_t *err)
{
    memset(num, 0, sizeof(*num));
    if (s == NULL || s[0] == '\0')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "quantity must not be empty");
    if (strnlen(s, QTY_MAX_LEN + 1) > QTY_MAX_LEN) {
        char q[200];
        qty_quote(s, q, sizeof(q));
        return drv_error_set(err, DRV_ERR_INVALID, 0, "\"%s\": is too long (at most %d characters)",
                             q, QTY_MAX_LEN);
    }

    const char *p = s;
    if (*p == '+' || *p == '-')
        num->negative = (*p++ == '-');

    /* Mantissa, most significant digit first into a temporary buffer. */
    uint8_t msd[QTY_MAX_LEN];
    size_t n = 0;
    size_t ndig = 0;
    bool dot = false;
    int32_t exp10 = 0;
    for (;; p++) {
        if (*p == '.') {
            if (dot)
                return qty_syntax_error(s, err);
            dot = true;
        } else if (*p >= '0' && *p <= '9') {
            ndig++;
            if (dot)
                exp10--;
            if (n > 0 || *p != '0')
                msd[n++] = (uint8_t)(*p - '0');
        } else {
            break;
        }
    }
    if (ndig == 0)
        return qty_syntax_error(s, err);

    num->fmt = DRV_QTY_DECIMAL;
    if (*p != '\0') {
        bool found = false;
        for (size_t i = 0; i < sizeof(qty_suffixes) / sizeof(qty_suffixes[0]); i++) {
            if (strcmp(p, qty_suffixes[i].name) == 0) {
                exp10 += qty_suffixes[i].exp10;
                num->exp2 = qty_suffixes[i].exp2;
                num->fmt = qty_suffixes[i].exp2 ? DRV_QTY_BINARY : DRV_QTY_DECIMAL;
                found = true;
                break;
            }
        }
        if (!found) {
            int32_t e;
            if ((*p != 'e' && *p != 'E') || !qty_parse_exponent(p + 1, &e))
                return qty_syntax_error(s, err);
            exp10 += e;
            num->fmt = DRV_QTY_EXPONENT;
        }
    }

    for (size_t i = 0; i < n; i++)
        num->digits[i] = msd[n - 1 - i];
    num->ndigits = n;
    num->exp10 = exp10;
    return DRV_OK;
}

/* Multiplies the digit array by 2^exp2 in steps of 1024. */
static void qty_apply_binary(qty_num_t *num)
{
    for (unsigned k = 0; k < num->exp2; k += 10) {
        uint32_t carry = 0;
        for (size_t i = 0; i < num->ndigits; i++) {
            uint32_t v = (uint32_t)num->digits[i] * 1024u + carry;
            num->digits[i] = (uint8_t)(v % 10);
            carry = v / 10;
        }
        while (carry > 0 && num->ndigits < QTY_DIGITS_MAX) {
            num->digits[num->ndigits++] = (uint8_t)(carry % 10);
            carry /= 10;
        }
    }
    num->exp2 = 0;
}

/* Rounds digits * 10^(exp10 + unit_exp10) up to an integer. Returns false if above max. */
static bool qty_to_int(qty_num_t *num, int unit_exp10, int64_t *out)
{
    if (num->ndigits == 0) {
        *out = 0;
        return true;
    }
    qty_apply_binary(num);
    int32_t e = num->exp10 + unit_exp10;
    int32_t intdigits = (int32_t)num->ndigits + e;
    if (intdigits > QTY_INT_DIGITS_MAX)
        return false;
    if (intdigits <= 0) {
        *out = 1; /* a positive fraction below one unit */
        return true;
    }
    uint64_t v = 0;
    bool frac = false;
    for (int32_t pos = (int32_t)num->ndigits - 1; pos >= 0; pos--) {
        if (pos >= -e) {
            if (__builtin_mul_overflow(v, 10u, &v) ||
                __builtin_add_overflow(v, (uint64_t)num->digits[pos], &v))
                return false;
        } else if (num->digits[pos] != 0) {
            frac = true;
        }
    }
    for (int32_t k = 0; k < e; k++) {
        if (__builtin_mul_overflow(v, 10u, &v))
            return false;
    }
    if (frac && __builtin_add_overflow(v, 1u, &v))
        return false;
    if (v > (uint64_t)DRV_QTY_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}

static drv_err_t qty_parse(const char *s, int unit_exp10, int64_t *value, drv_qty_format_t *fmt,
                           drv_error_t *err, const char *max_text)
{
    qty_num_t num;
    drv_err_t rc = qty_scan(s, &num, err);
    if (rc != DRV_OK)
        return rc;
    char q[200];
    if (num.negative && num.ndigits > 0) {
        qty_quote(s, q, sizeof(q));
        return drv_error_set(err, DRV_ERR_RANGE, 0, "\"%s\": must not be negative", q);
    }
    int64_t v;
    if (!qty_to_int(&num, unit_exp10, &v)) {
        qty_quote(s, q, sizeof(q));
        return drv_error_set(err, DRV_ERR_RANGE, 0, "\"%s\": is too large (the maximum is %s)", q,
                             max_text);
    }
    *value = v;
    if (fmt != NULL)
        *fmt = num.fmt;
    return DRV_OK;
}

drv_err_t drv_qty_parse_cpu(const char *s, int64_t *millicores, drv_qty_format_t *fmt,
                            drv_error_t *err)
{
    return qty_parse(s, 3, millicores, fmt, err, "4611686018427387904m");
}

drv_err_t drv_qty_parse_memory(const char *s, int64_t *bytes, drv_qty_format_t *fmt,
                               drv_error_t *err)
{
    return qty_parse(s, 0, bytes, fmt, err, "4Ei");
}

/* Writes "<n><suffix>" to out only if it fits whole. */
static drv_err_t qty_emit(int64_t n, const char *suffix, char *out, size_t outsz)
{
    char tmp[40];
    int len = snprintf(tmp, sizeof(tmp), "%" PRId64 "%s", n, suffix);
    if (len < 0 || out == NULL || (size_t)len >= outsz)
        return DRV_ERR_TOOBIG;
    memcpy(out, tmp, (size_t)len + 1);
    return DRV_OK;
}

drv_err_t drv_qty_format_cpu(int64_t millicores, char *out, size_t outsz)
{
    if (millicores % 1000 == 0)
        return qty_emit(millicores / 1000, "", out, outsz);
    return qty_emit(millicores, "m", out, outsz);
}

drv_err_t drv_qty_format_memory(int64_t bytes, drv_qty_format_t fmt, char *out, size_t outsz)
{
    static const char bin[][3] = {"Ei", "Pi", "Ti", "Gi", "Mi", "Ki"};
    static const char dec[][2] = {"E", "P", "T", "G", "M", "k"};

    if (bytes != 0 && fmt == DRV_QTY_BINARY) {
        for (int i = 0; i < 6; i++) {
            int64_t unit = (int64_t)1 << (60 - 10 * i);
            if (bytes % unit == 0)
                return qty_emit(bytes / unit, bin[i], out, outsz);
        }
    }
    if (bytes != 0) {
        int64_t unit = 1000000000000000000; /* 10^18 */
        for (int i = 0; i < 6; i++, unit /= 1000) {
            if (bytes % unit == 0)
                return qty_emit(bytes / unit, dec[i], out, outsz);
        }
    }
    return qty_emit(bytes, "", out, outsz);
}
