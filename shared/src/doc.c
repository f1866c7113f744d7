/* Manifest documents: YAML streams (libyaml's event parser, YAML 1.2 core schema) and JSON text
 * (cJSON) turned into cJSON trees under hard limits, and cJSON trees written back as block
 * YAML. Every limit is checked before the work it bounds, so hostile input fails early. */
#include "drover/doc.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yaml.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/map.h"

const drv_doc_limits_t drv_doc_default_limits = {
    .max_input = 16u << 20,
    .max_scalar = 1u << 20,
    .max_depth = 64,
    .max_nodes = 1000000,
    .max_docs = 1000,
};

/* cJSON holds numbers as doubles: integers beyond 2^53 would silently change. */
#define TWO53 UINT64_C(9007199254740992)
/* Text (string values and keys) created for the whole input may reach this multiple of
 * max_input: without aliases it cannot exceed the input itself, so only alias expansion of
 * long strings hits it, which the node budget alone would not bound. */
#define TEXT_BUDGET_FACTOR 4
/* cJSON reads at most 63 characters of a number and fails confusingly on longer ones. */
#define JSON_NUMBER_MAX 63
#define YAML_TAG_PREFIX "tag:yaml.org,2002:"

/* ---- error helpers ---------------------------------------------------------------------- */

static drv_err_t fail_at(drv_error_t *err, drv_err_t code, size_t line, size_t col, const char *fmt,
                         ...) DRV_PRINTF(5, 6);

static drv_err_t fail_at(drv_error_t *err, drv_err_t code, size_t line, size_t col, const char *fmt,
                         ...)
{
    char msg[DRV_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    drv_vfmt_cut(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return drv_error_set(err, code, 0, "line %zu, column %zu: %s", line, col, msg);
}

/* 1-based line and column (in characters) of byte offset off. */
static void offset_pos(const char *data, size_t len, size_t off, size_t *line, size_t *col)
{
    size_t l = 1, c = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        unsigned char ch = (unsigned char)data[i];
        if (ch == '\n') {
            l++;
            c = 1;
        } else if (ch == '\r') {
            if (i + 1 < len && data[i + 1] == '\n')
                continue;
            l++;
            c = 1;
        } else if ((ch & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

/* A short printable rendering of s for error messages: at most ~60 bytes, cut on a UTF-8
 * boundary, control characters shown as '?'. */
static const char *show(const char *s, size_t n, char *buf, size_t cap)
{
    size_t lim = cap > 8 ? cap - 4 : 0;
    if (lim > 60)
        lim = 60;
    size_t o = 0;
    size_t i = 0;
    for (; i < n && o < lim; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[o++] = (ch < 0x20 || ch == 0x7F) ? '?' : (char)ch;
    }
    if (i < n) {
        while (o > 0 && ((unsigned char)buf[o - 1] & 0xC0) == 0x80)
            o--;
        if (o > 0 && ((unsigned char)buf[o - 1] & 0xC0) == 0xC0)
            o--;
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* Offset of the first byte that is not part of valid UTF-8 (no overlongs, surrogates or code
 * points above U+10FFFF), or len if all is valid. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (len - i < n)
            return i;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += n;
    }
    return len;
}

/* ---- hashed string sets (drv_map: one random seed per parse against flooding) ----------- */

/* The parsers store indexes (anchors) or nothing (key sets) as map values. Key sets are
 * bounded by the parse's own node limits, hence no map maximum of their own. */
static bool strmap_get(drv_map_t *m, const char *key, size_t *val)
{
    void *v = NULL;
    if (!drv_map_find(m, key, strlen(key), &v))
        return false;
    if (val != NULL)
        *val = (size_t)(uintptr_t)v;
    return true;
}

static drv_err_t strmap_put(drv_map_t *m, const char *key, size_t val)
{
    return drv_map_put(m, key, (void *)(uintptr_t)val);
}

/* ---- YAML 1.2 core schema ------------------------------------------------------------- */

static bool eq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static bool is_null_form(const char *s, size_t n)
{
    return n == 0 || eq(s, n, "~") || eq(s, n, "null") || eq(s, n, "Null") || eq(s, n, "NULL");
}

/* 1 true, 0 false, -1 not a boolean. */
static int bool_form(const char *s, size_t n)
{
    if (eq(s, n, "true") || eq(s, n, "True") || eq(s, n, "TRUE"))
        return 1;
    if (eq(s, n, "false") || eq(s, n, "False") || eq(s, n, "FALSE"))
        return 0;
    return -1;
}

static int digit_val(char c, unsigned base)
{
    int d;
    if (c >= '0' && c <= '9')
        d = c - '0';
    else if (c >= 'a' && c <= 'f')
        d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
        d = c - 'A' + 10;
    else
        return -1;
    return (unsigned)d < base ? d : -1;
}

/* Core-schema integer ([-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+): 1 and *v set, 0 if s is not
 * one, -1 if it is one beyond +-2^53. One exception to the core schema, because Kubernetes reads
 * YAML that way and manifests count on it: [-+]?0[0-7]+ is octal (`defaultMode: 0400` is 256,
 * owner read only, not 400 = 0620); "09" stays decimal. */
static int int_form(const char *s, size_t n, double *v)
{
    size_t i = 0;
    bool neg = false;
    unsigned base = 10;
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        base = s[1] == 'x' ? 16 : 8;
        i = 2;
    } else if (n > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n)
        return 0;
    if (base == 10 && n - i > 1 && s[i] == '0') {
        size_t k = i + 1;
        while (k < n && s[k] >= '0' && s[k] <= '7')
            k++;
        if (k == n)
            base = 8;
    }
    uint64_t acc = 0;
    bool over = false;
    for (; i < n; i++) {
        int d = digit_val(s[i], base);
        if (d < 0)
            return 0;
        if (!over) {
            acc = acc * base + (unsigned)d;
            over = acc > TWO53;
        }
    }
    if (over)
        return -1;
    *v = neg ? -(double)acc : (double)acc;
    return 1;
}

static size_t count_digits(const char *s, size_t n, size_t i)
{
    size_t k = i;
    while (k < n && s[k] >= '0' && s[k] <= '9')
        k++;
    return k - i;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool float_form(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    size_t d1 = count_digits(s, n, i);
    i += d1;
    if (i < n && s[i] == '.') {
        i++;
        size_t d2 = count_digits(s, n, i);
        i += d2;
        if (d1 == 0 && d2 == 0)
            return false;
    } else if (d1 == 0) {
        return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t d3 = count_digits(s, n, i);
        if (d3 == 0)
            return false;
        i += d3;
    }
    return i == n;
}

static bool infnan_form(const char *s, size_t n)
{
    if (eq(s, n, ".nan") || eq(s, n, ".NaN") || eq(s, n, ".NAN"))
        return true;
    if (n > 0 && (s[0] == '-' || s[0] == '+')) {
        s++;
        n--;
    }
    return eq(s, n, ".inf") || eq(s, n, ".Inf") || eq(s, n, ".INF");
}

/* strtod on n bytes that need not be NUL-terminated; false if the result is not finite. */
static bool parse_double(const char *s, size_t n, double *v)
{
    char small[128];
    _cleanup_free_ char *big = NULL;
    char *p = small;
    if (n >= sizeof small) {
        big = malloc(n + 1);
        if (big == NULL)
            return false;
        p = big;
    }
    memcpy(p, s, n);
    p[n] = '\0';
    *v = strtod(p, NULL);
    return isfinite(*v);
}

typedef enum {
    TAG_NONE,
    TAG_STR,
    TAG_INT,
    TAG_FLOAT,
    TAG_BOOL,
    TAG_NULL,
    TAG_MAP,
    TAG_SEQ,
    TAG_OTHER
} tag_kind_t;

static tag_kind_t tag_kind(const char *tag)
{
    static const struct {
        const char *name;
        tag_kind_t kind;
    } known[] = {{"str", TAG_STR},   {"int", TAG_INT}, {"float", TAG_FLOAT}, {"bool", TAG_BOOL},
                 {"null", TAG_NULL}, {"map", TAG_MAP}, {"seq", TAG_SEQ}};
    if (tag == NULL)
        return TAG_NONE;
    if (strcmp(tag, "!") == 0)
        return TAG_STR; /* the non-specific tag: a quoted-like string for scalars */
    size_t pl = strlen(YAML_TAG_PREFIX);
    if (strncmp(tag, YAML_TAG_PREFIX, pl) != 0)
        return TAG_OTHER;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(tag + pl, known[i].name) == 0)
            return known[i].kind;
    return TAG_OTHER;
}

/* "!!int" for the YAML namespace, the tag itself otherwise. */
static const char *show_tag(const char *tag, char *buf, size_t cap)
{
    size_t pl = strlen(YAML_TAG_PREFIX);
    char tmp[80];
    if (strncmp(tag, YAML_TAG_PREFIX, pl) == 0) {
        drv_fmt_cut(buf, cap, "!!%s", show(tag + pl, strlen(tag + pl), tmp, sizeof tmp));
        return buf;
    }
    return show(tag, strlen(tag), buf, cap);
}

typedef enum { SV_NULL, SV_BOOL, SV_NUM, SV_STR } sv_kind_t;

typedef struct sval {
    sv_kind_t kind;
    bool b;
    double num;
} sval_t;

/* Resolves a scalar's text by its tag, or for untagged plain scalars by the core schema. */
static drv_err_t resolve_scalar(drv_error_t *err, const char *s, size_t n, const char *tag,
                                bool plain, size_t line, size_t col, sval_t *v)
{
    char sb[80], tb[80];
    tag_kind_t tk = tag_kind(tag);
    *v = (sval_t){SV_STR, false, 0};
    switch (tk) {
    case TAG_STR:
        return DRV_OK;
    case TAG_NONE:
        if (!plain)
            return DRV_OK;
        break;
    case TAG_MAP:
    case TAG_SEQ:
        return fail_at(err, DRV_ERR_INVALID, line, col, "tag %s on a scalar",
                       show_tag(tag, tb, sizeof tb));
    case TAG_OTHER:
        return fail_at(err, DRV_ERR_INVALID, line, col, "unsupported tag %s",
                       show_tag(tag, tb, sizeof tb));
    default:
        break;
    }

    if ((tk == TAG_NONE || tk == TAG_NULL) && is_null_form(s, n)) {
        v->kind = SV_NULL;
        return DRV_OK;
    }
    int b;
    if ((tk == TAG_NONE || tk == TAG_BOOL) && (b = bool_form(s, n)) >= 0) {
        v->kind = SV_BOOL;
        v->b = b == 1;
        return DRV_OK;
    }
    if (tk == TAG_NONE || tk == TAG_INT || tk == TAG_FLOAT) {
        int r = int_form(s, n, &v->num);
        if (r < 0)
            return fail_at(err, DRV_ERR_INVALID, line, col,
                           "integer \"%s\" out of range (beyond +-2^53, the precision of JSON "
                           "numbers)",
                           show(s, n, sb, sizeof sb));
        if (r > 0) {
            v->kind = SV_NUM;
            return DRV_OK;
        }
    }
    if ((tk == TAG_NONE || tk == TAG_FLOAT) && float_form(s, n)) {
        if (!parse_double(s, n, &v->num))
            return fail_at(err, DRV_ERR_INVALID, line, col, "number \"%s\" out of range",
                           show(s, n, sb, sizeof sb));
        v->kind = SV_NUM;
        return DRV_OK;
    }
    if ((tk == TAG_NONE || tk == TAG_FLOAT) && infnan_form(s, n))
        return fail_at(err, DRV_ERR_INVALID, line, col, "\"%s\" is not representable in JSON",
                       show(s, n, sb, sizeof sb));
    if (tk != TAG_NONE)
        return fail_at(err, DRV_ERR_INVALID, line, col, "\"%s\" is not a valid %s",
                       show(s, n, sb, sizeof sb), show_tag(tag, tb, sizeof tb));
    return DRV_OK; /* a plain string */
}

/* Whether plain text s would be read back as something other than the string s, by us or by
 * a YAML 1.1 reader (yes/no/on/off, 1_000, 0b1, 1:20, dates), or is a merge key. */
static bool plain_would_change(const char *s, size_t n)
{
    static const char *const yaml11[] = {"y",  "Y",  "yes", "Yes", "YES", "n",   "N",   "no",
                                         "No", "NO", "on",  "On",  "ON",  "off", "Off", "OFF"};
    double d;
    if (is_null_form(s, n) || bool_form(s, n) >= 0 || int_form(s, n, &d) != 0 || float_form(s, n) ||
        infnan_form(s, n) || eq(s, n, "<<") || eq(s, n, "="))
        return true;
    for (size_t i = 0; i < sizeof yaml11 / sizeof yaml11[0]; i++)
        if (eq(s, n, yaml11[i]))
            return true;
    if ((s[0] >= '0' && s[0] <= '9') || s[0] == '-' || s[0] == '+' || s[0] == '.') {
        size_t i = 0;
        while (i < n && strchr("0123456789abcdefABCDEFxXoObB_:.+-tTzZ ", s[i]) != NULL &&
               s[i] != '\0')
            i++;
        if (i == n)
            return true;
    }
    return false;
}

/* ---- JSON ------------------------------------------------------------------------------- */

typedef struct jctx {
    const char *data; /* whole input, for positions */
    size_t len;
    const drv_doc_limits_t *lim;
    drv_error_t *err;
    uint64_t seed[2];
    bool truncated;     /* the scan ended inside a string or an open '{' / '[' */
    size_t open_string; /* start of a string the input ends in, or SIZE_MAX */
} jctx_t;

static drv_err_t jfail(const jctx_t *j, drv_err_t code, size_t off, const char *fmt, ...)
    DRV_PRINTF(4, 5);

static drv_err_t jfail(const jctx_t *j, drv_err_t code, size_t off, const char *fmt, ...)
{
    char msg[DRV_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    drv_vfmt_cut(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t line, col;
    offset_pos(j->data, j->len, off, &line, &col);
    return fail_at(j->err, code, line, col, "%s", msg);
}

static bool json_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int hex4(const char *s, size_t avail)
{
    if (avail < 4)
        return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int d = digit_val(s[i], 16);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Walks JSON text from start without building anything, enforcing what cJSON would not (or
 * would only enforce by recursing): nesting depth, value count, string length (decoded),
 * number range, control characters and NUL in strings. Syntax errors are left to cJSON.
 * With stop_key > 0 it instead stores in *found the offset of the stop_key-th object key
 * (1-based, in text order) and returns DRV_OK. */
static drv_err_t json_scan(jctx_t *j, size_t start, size_t stop_key, size_t *found)
{
    const char *d = j->data;
    size_t n = j->len;
    size_t depth = 0, values = 0, keys = 0;
    const bool check = stop_key == 0;
    size_t i = start;
    while (i < n) {
        unsigned char c = (unsigned char)d[i];
        if (json_ws((char)c) || c == ',' || c == ':') {
            i++;
        } else if (c == '{' || c == '[') {
            if (check && ++values > j->lim->max_nodes)
                return jfail(j, DRV_ERR_TOOBIG, i, "document too large: more than %zu values",
                             j->lim->max_nodes);
            if (check && ++depth > j->lim->max_depth)
                return jfail(j, DRV_ERR_INVALID, i, "nesting deeper than %u", j->lim->max_depth);
            i++;
        } else if (c == '}' || c == ']') {
            if (depth > 0)
                depth--;
            i++;
        } else if (c == '"') {
            size_t s = i++;
            size_t dlen = 0;
            while (i < n && d[i] != '"') {
                unsigned char ch = (unsigned char)d[i];
                if (ch == '\\') {
                    if (i + 1 < n && d[i + 1] == 'u') {
                        int cp = hex4(d + i + 2, n - i - 2);
                        if (cp == 0 && check)
                            return jfail(j, DRV_ERR_INVALID, i,
                                         "\\u0000 is not allowed in strings");
                        if (cp >= 0xD800 && cp <= 0xDBFF && i + 12 <= n && d[i + 6] == '\\' &&
                            d[i + 7] == 'u') {
                            dlen += 4;
                            i += 12;
                        } else {
                            dlen += cp < 0 ? 1 : cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
                            i += cp < 0 ? 2 : 6;
                        }
                    } else {
                        dlen++;
                        i += 2;
                    }
                } else if (ch < 0x20) {
                    if (check)
                        return jfail(j, DRV_ERR_INVALID, i,
                                     "control character 0x%02x in a string (escape it)", ch);
                    i++;
                } else {
                    dlen++;
                    i++;
                }
            }
            if (i < n)
                i++; /* closing quote */
            else if (check)
                j->open_string = s;
            if (check && dlen > j->lim->max_scalar)
                return jfail(j, DRV_ERR_TOOBIG, s,
                             "string of %zu bytes, more than the limit of %zu", dlen,
                             j->lim->max_scalar);
            size_t k = i;
            while (k < n && json_ws(d[k]))
                k++;
            if (k < n && d[k] == ':') {
                if (++keys == stop_key) {
                    *found = s;
                    return DRV_OK;
                }
            } else if (check && ++values > j->lim->max_nodes) {
                return jfail(j, DRV_ERR_TOOBIG, s, "document too large: more than %zu values",
                             j->lim->max_nodes);
            }
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t s = i;
            bool integral = true;
            while (i < n && (strchr("0123456789+-.eE", d[i]) != NULL && d[i] != '\0')) {
                if (d[i] == '.' || d[i] == 'e' || d[i] == 'E')
                    integral = false;
                i++;
            }
            if (!check)
                continue;
            char nb[80];
            if (++values > j->lim->max_nodes)
                return jfail(j, DRV_ERR_TOOBIG, s, "document too large: more than %zu values",
                             j->lim->max_nodes);
            if (i - s > JSON_NUMBER_MAX)
                return jfail(j, DRV_ERR_INVALID, s, "number \"%s\" longer than %d characters",
                             show(d + s, i - s, nb, sizeof nb), JSON_NUMBER_MAX);
            double v;
            if (integral && int_form(d + s, i - s, &v) < 0)
                return jfail(j, DRV_ERR_INVALID, s,
                             "integer %s out of range (beyond +-2^53, the precision of JSON "
                             "numbers)",
                             show(d + s, i - s, nb, sizeof nb));
            if (!integral && float_form(d + s, i - s) && !parse_double(d + s, i - s, &v))
                return jfail(j, DRV_ERR_INVALID, s, "number %s out of range",
                             show(d + s, i - s, nb, sizeof nb));
        } else if (c >= 'a' && c <= 'z') {
            if (check && ++values > j->lim->max_nodes)
                return jfail(j, DRV_ERR_TOOBIG, i, "document too large: more than %zu values",
                             j->lim->max_nodes);
            while (i < n && d[i] >= 'a' && d[i] <= 'z')
                i++;
        } else if (c < 0x20 && check) {
            return jfail(j, DRV_ERR_INVALID, i, "unexpected control character 0x%02x", c);
        } else {
            i++; /* cJSON reports it */
        }
    }
    if (depth > 0 || j->open_string != SIZE_MAX)
        j->truncated = true;
    if (!check)
        *found = n;
    return DRV_OK;
}

/* Duplicate keys, which cJSON keeps silently. *ord numbers keys in text order, which is the
 * order of this pre-order walk, so a duplicate can be located in the text. */
static drv_err_t json_check_keys(jctx_t *j, size_t start, const cJSON *node, size_t *ord)
{
    if (cJSON_IsObject(node)) {
        drv_map_t seen;
        drv_map_init_seeded(&seen, SIZE_MAX, j->seed);
        for (const cJSON *c = node->child; c != NULL; c = c->next) {
            ++*ord;
            if (strmap_get(&seen, c->string, NULL)) {
                drv_map_free(&seen);
                size_t off = j->len;
                drv_err_t rc = json_scan(j, start, *ord, &off);
                (void)rc;
                char kb[80];
                return jfail(j, DRV_ERR_INVALID, off, "duplicate key \"%s\"",
                             show(c->string, strlen(c->string), kb, sizeof kb));
            }
            if (strmap_put(&seen, c->string, 0) != DRV_OK) {
                drv_map_free(&seen);
                return drv_error_set(j->err, DRV_ERR_NOMEM, 0, "out of memory");
            }
            drv_err_t rc = json_check_keys(j, start, c, ord);
            if (rc != DRV_OK) {
                drv_map_free(&seen);
                return rc;
            }
        }
        drv_map_free(&seen);
    } else if (cJSON_IsArray(node)) {
        for (const cJSON *c = node->child; c != NULL; c = c->next) {
            drv_err_t rc = json_check_keys(j, start, c, ord);
            if (rc != DRV_OK)
                return rc;
        }
    }
    return DRV_OK;
}

static drv_err_t parse_json(const char *data, size_t len, size_t start, const drv_doc_limits_t *lim,
                            drv_doc_list_t *out, drv_error_t *err)
{
    jctx_t j = {data, len, lim, err, {0, 0}, false, SIZE_MAX};
    size_t bad = utf8_invalid_at((const unsigned char *)data, len);
    if (bad < len)
        return jfail(&j, DRV_ERR_INVALID, bad, "invalid UTF-8 (byte 0x%02x)",
                     (unsigned char)data[bad]);
    drv_err_t rc = json_scan(&j, start, 0, NULL);
    if (rc != DRV_OK)
        return rc;

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(data + start, len - start, &end, 0);
    if (root == NULL) {
        size_t off = end != NULL && end >= data ? (size_t)(end - data) : len;
        if (off > len)
            off = len;
        /* cJSON reports an error past the end as being at the last byte. */
        size_t k = off;
        while (k < len && json_ws(data[k]))
            k++;
        if (k >= len || off >= j.open_string || (j.truncated && off + 1 >= len))
            return jfail(&j, DRV_ERR_INVALID, len, "unexpected end of JSON input");
        char sb[80];
        size_t m = 0;
        while (off + m < len && m < 20 && data[off + m] != '\n' && data[off + m] != '\r')
            m++;
        return jfail(&j, DRV_ERR_INVALID, off,
                     "invalid JSON at \"%s\" (text starting with '{' or '[' is read as JSON)",
                     show(data + off, m, sb, sizeof sb));
    }
    size_t off = (size_t)(end - data);
    while (off < len && json_ws(data[off]))
        off++;
    if (off < len) {
        cJSON_Delete(root);
        return jfail(&j, DRV_ERR_INVALID, off, "unexpected text after the JSON value");
    }
    drv_map_seed(j.seed);
    size_t ord = 0;
    rc = json_check_keys(&j, start, root, &ord);
    if (rc != DRV_OK) {
        cJSON_Delete(root);
        return rc;
    }
    drv_doc_t *docs = calloc(1, sizeof *docs);
    if (docs == NULL) {
        cJSON_Delete(root);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    }
    size_t line, col;
    offset_pos(data, len, start, &line, &col);
    docs[0] = (drv_doc_t){root, 0, (unsigned)line};
    out->docs = docs;
    out->count = 1;
    return DRV_OK;
}

/* ---- YAML ------------------------------------------------------------------------------- */

/* An anchor of the current document. Scalars keep their text and are resolved again at each
 * alias (so an anchored key can be used as a value and the other way round); collections
 * point at the finished node, which stays unchanged until the document ends. */
typedef struct anchor {
    char *name;
    bool pending; /* the anchored collection is still open: an alias to it would recurse */
    const cJSON *node;
    char *text; /* scalar text, NUL-terminated */
    size_t len;
    char *tag;
    bool plain;
} anchor_t;

typedef struct frame {
    cJSON *node; /* the open mapping or sequence */
    bool is_map;
    bool have_key;
    bool key_is_merge;
    char *key;    /* pending key (cJSON_malloc'd) until its value arrives */
    char *anchor; /* to define when the collection closes */
    yaml_mark_t mark;
    size_t merge_anchor_seq;
    drv_map_t keys; /* keys of the mapping so far, pointing into its items */
    cJSON *merges;  /* merge sources, applied when the mapping closes */
} frame_t;

typedef struct yctx {
    const drv_doc_limits_t *lim;
    drv_error_t *err;
    uint64_t seed[2];
    size_t nodes;
    size_t text;
    size_t text_budget;
    bool aliases_used;

    frame_t *frames;
    size_t nframes, frames_cap;

    cJSON *root;
    size_t root_line;

    anchor_t *anchors;
    size_t nanchors, anchors_cap;
    drv_map_t anchor_names;
    size_t anchor_seq; /* bumped whenever a collection anchor is defined */
    cJSON *graveyard;  /* merge sources anchors may still point into, freed per document */

    drv_doc_t *docs;
    size_t ndocs, docs_cap;
} yctx_t;

#define MLINE(m) ((size_t)(m).line + 1)
#define MCOL(m) ((size_t)(m).column + 1)

static drv_err_t nomem(yctx_t *c)
{
    return drv_error_set(c->err, DRV_ERR_NOMEM, 0, "out of memory");
}

static drv_err_t count_node(yctx_t *c, yaml_mark_t m)
{
    if (c->nodes >= c->lim->max_nodes)
        return fail_at(c->err, DRV_ERR_TOOBIG, MLINE(m), MCOL(m),
                       "document too large: more than %zu values%s", c->lim->max_nodes,
                       c->aliases_used ? " after alias expansion" : "");
    c->nodes++;
    return DRV_OK;
}

static drv_err_t count_text(yctx_t *c, size_t n, yaml_mark_t m)
{
    if (n > c->text_budget - c->text)
        return fail_at(c->err, DRV_ERR_TOOBIG, MLINE(m), MCOL(m),
                       "document too large: more than %zu bytes of text after alias expansion",
                       c->text_budget);
    c->text += n;
    return DRV_OK;
}

static drv_err_t check_scalar_text(yctx_t *c, const char *s, size_t n, yaml_mark_t m)
{
    if (n > c->lim->max_scalar)
        return fail_at(c->err, DRV_ERR_TOOBIG, MLINE(m), MCOL(m),
                       "string of %zu bytes, more than the limit of %zu", n, c->lim->max_scalar);
    if (memchr(s, '\0', n) != NULL)
        return fail_at(c->err, DRV_ERR_INVALID, MLINE(m), MCOL(m),
                       "string contains a NUL character");
    return DRV_OK;
}

static char *dup_text(const char *s, size_t n)
{
    char *p = cJSON_malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* A new value from scalar text (NUL-terminated, checked by check_scalar_text). */
static drv_err_t scalar_node(yctx_t *c, const char *s, size_t n, const char *tag, bool plain,
                             yaml_mark_t m, cJSON **out)
{
    sval_t v;
    drv_err_t rc = resolve_scalar(c->err, s, n, tag, plain, MLINE(m), MCOL(m), &v);
    if (rc != DRV_OK)
        return rc;
    if ((rc = count_node(c, m)) != DRV_OK)
        return rc;
    cJSON *node = NULL;
    switch (v.kind) {
    case SV_NULL:
        node = cJSON_CreateNull();
        break;
    case SV_BOOL:
        node = cJSON_CreateBool(v.b);
        break;
    case SV_NUM:
        node = cJSON_CreateNumber(v.num);
        break;
    case SV_STR:
        if ((rc = count_text(c, n, m)) != DRV_OK)
            return rc;
        node = cJSON_CreateString(s);
        break;
    }
    if (node == NULL)
        return nomem(c);
    *out = node;
    return DRV_OK;
}

/* Deep copy of an anchored collection for an alias, counted against every budget. depth is
 * the nesting the copy's root will have. */
static drv_err_t copy_tree(yctx_t *c, const cJSON *src, size_t depth, yaml_mark_t m, cJSON **out)
{
    drv_err_t rc = count_node(c, m);
    if (rc != DRV_OK)
        return rc;
    cJSON *node = NULL;
    if (cJSON_IsNull(src)) {
        node = cJSON_CreateNull();
    } else if (cJSON_IsBool(src)) {
        node = cJSON_CreateBool(cJSON_IsTrue(src));
    } else if (cJSON_IsNumber(src)) {
        node = cJSON_CreateNumber(src->valuedouble);
    } else if (cJSON_IsString(src)) {
        if ((rc = count_text(c, strlen(src->valuestring), m)) != DRV_OK)
            return rc;
        node = cJSON_CreateString(src->valuestring);
    } else {
        if (depth > c->lim->max_depth)
            return fail_at(c->err, DRV_ERR_INVALID, MLINE(m), MCOL(m),
                           "nesting deeper than %u after alias expansion", c->lim->max_depth);
        node = cJSON_IsObject(src) ? cJSON_CreateObject() : cJSON_CreateArray();
        if (node == NULL)
            return nomem(c);
        for (const cJSON *ch = src->child; ch != NULL; ch = ch->next) {
            cJSON *cp = NULL;
            if ((rc = copy_tree(c, ch, depth + 1, m, &cp)) != DRV_OK) {
                cJSON_Delete(node);
                return rc;
            }
            if (ch->string != NULL) {
                size_t kl = strlen(ch->string);
                if ((rc = count_text(c, kl, m)) != DRV_OK ||
                    (cp->string = dup_text(ch->string, kl)) == NULL) {
                    cJSON_Delete(cp);
                    cJSON_Delete(node);
                    return rc != DRV_OK ? rc : nomem(c);
                }
            }
            cJSON_AddItemToArray(node, cp);
        }
    }
    if (node == NULL)
        return nomem(c);
    *out = node;
    return DRV_OK;
}

static void anchor_clear(anchor_t *a)
{
    free(a->text);
    free(a->tag);
    a->text = a->tag = NULL;
    a->node = NULL;
    a->len = 0;
    a->pending = false;
    a->plain = false;
}

/* The entry for name, created if new; a redefinition replaces the old one. */
static drv_err_t anchor_entry(yctx_t *c, const char *name, anchor_t **out)
{
    size_t idx;
    if (strmap_get(&c->anchor_names, name, &idx)) {
        anchor_clear(&c->anchors[idx]);
        *out = &c->anchors[idx];
        return DRV_OK;
    }
    if (c->nanchors == c->anchors_cap) {
        size_t ncap = c->anchors_cap ? c->anchors_cap * 2 : 16;
        anchor_t *na = realloc(c->anchors, ncap * sizeof *na);
        if (na == NULL)
            return nomem(c);
        c->anchors = na;
        c->anchors_cap = ncap;
    }
    anchor_t *a = &c->anchors[c->nanchors];
    *a = (anchor_t){0};
    if ((a->name = strdup(name)) == NULL)
        return nomem(c);
    if (strmap_put(&c->anchor_names, a->name, c->nanchors) != DRV_OK) {
        free(a->name);
        return nomem(c);
    }
    c->nanchors++;
    *out = a;
    return DRV_OK;
}

static drv_err_t anchor_scalar(yctx_t *c, const char *name, const char *s, size_t n,
                               const char *tag, bool plain)
{
    anchor_t *a;
    drv_err_t rc = anchor_entry(c, name, &a);
    if (rc != DRV_OK)
        return rc;
    a->text = malloc(n + 1);
    a->tag = tag != NULL ? strdup(tag) : NULL;
    if (a->text == NULL || (tag != NULL && a->tag == NULL))
        return nomem(c);
    memcpy(a->text, s, n);
    a->text[n] = '\0';
    a->len = n;
    a->plain = plain;
    return DRV_OK;
}

static void anchors_reset(yctx_t *c)
{
    for (size_t i = 0; i < c->nanchors; i++) {
        anchor_clear(&c->anchors[i]);
        free(c->anchors[i].name);
    }
    c->nanchors = 0;
    drv_map_free(&c->anchor_names);
    cJSON_Delete(c->graveyard);
    c->graveyard = NULL;
}

static void frame_free(frame_t *f)
{
    cJSON_Delete(f->node);
    cJSON_free(f->key);
    free(f->anchor);
    drv_map_free(&f->keys);
    cJSON_Delete(f->merges);
    *f = (frame_t){0};
}

static drv_err_t bury(yctx_t *c, cJSON *node)
{
    if (c->graveyard == NULL && (c->graveyard = cJSON_CreateArray()) == NULL) {
        cJSON_Delete(node);
        return nomem(c);
    }
    cJSON_AddItemToArray(c->graveyard, node);
    return DRV_OK;
}

/* Takes a mapping key. s is NUL-terminated scalar text. */
static drv_err_t take_key(yctx_t *c, frame_t *f, const char *s, size_t n, const char *tag,
                          bool plain, yaml_mark_t m)
{
    drv_err_t rc = check_scalar_text(c, s, n, m);
    if (rc != DRV_OK)
        return rc;
    if (plain && (tag == NULL || strcmp(tag, YAML_TAG_PREFIX "merge") == 0) && eq(s, n, "<<")) {
        f->have_key = true;
        f->key_is_merge = true;
        f->merge_anchor_seq = c->anchor_seq;
        return DRV_OK;
    }
    /* Keys are taken as their text ("1", "true"); only null is refused, and a tag other
     * than !!str must still fit its text. */
    bool is_null = tag == NULL && plain && is_null_form(s, n);
    if (tag != NULL) {
        sval_t v;
        if ((rc = resolve_scalar(c->err, s, n, tag, plain, MLINE(m), MCOL(m), &v)) != DRV_OK)
            return rc;
        is_null = v.kind == SV_NULL;
    }
    if (is_null)
        return fail_at(c->err, DRV_ERR_INVALID, MLINE(m), MCOL(m),
                       "a mapping key must not be null");
    if (strmap_get(&f->keys, s, NULL)) {
        char kb[80];
        return fail_at(c->err, DRV_ERR_INVALID, MLINE(m), MCOL(m), "duplicate key \"%s\"",
                       show(s, n, kb, sizeof kb));
    }
    if ((rc = count_text(c, n, m)) != DRV_OK)
        return rc;
    char *key = dup_text(s, n);
    if (key == NULL)
        return nomem(c);
    if (strmap_put(&f->keys, key, 0) != DRV_OK) {
        cJSON_free(key);
        return nomem(c);
    }
    f->key = key;
    f->have_key = true;
    return DRV_OK;
}

/* Moves the children of merge source src into mapping f unless f has the key already. */
static drv_err_t merge_one(yctx_t *c, frame_t *f, cJSON *src)
{
    while (src->child != NULL) {
        cJSON *item = cJSON_DetachItemViaPointer(src, src->child);
        if (strmap_get(&f->keys, item->string, NULL)) {
            cJSON_Delete(item);
            continue;
        }
        if (strmap_put(&f->keys, item->string, 0) != DRV_OK) {
            cJSON_Delete(item);
            return nomem(c);
        }
        cJSON_AddItemToArray(f->node, item);
    }
    return DRV_OK;
}

/* Explicit keys win over merged ones; among merge sources, earlier ones win (as go-yaml). */
static drv_err_t apply_merges(yctx_t *c, frame_t *f)
{
    for (cJSON *src = f->merges->child; src != NULL; src = src->next) {
        if (cJSON_IsObject(src)) {
            drv_err_t rc = merge_one(c, f, src);
            if (rc != DRV_OK)
                return rc;
        } else {
            for (cJSON *e = src->child; e != NULL; e = e->next) {
                drv_err_t rc = merge_one(c, f, e);
                if (rc != DRV_OK)
                    return rc;
            }
        }
    }
    cJSON_Delete(f->merges);
    f->merges = NULL;
    return DRV_OK;
}

/* Places a finished value (owned, taken even on failure) in the open collection, or makes it
 * the document root. */
static drv_err_t place_value(yctx_t *c, cJSON *node, yaml_mark_t m)
{
    if (c->nframes == 0) {
        c->root = node;
        return DRV_OK;
    }
    frame_t *f = &c->frames[c->nframes - 1];
    if (!f->is_map) {
        cJSON_AddItemToArray(f->node, node);
        return DRV_OK;
    }
    if (!f->key_is_merge) {
        node->string = f->key;
        f->key = NULL;
        f->have_key = false;
        cJSON_AddItemToArray(f->node, node);
        return DRV_OK;
    }

    f->have_key = false;
    f->key_is_merge = false;
    bool ok = cJSON_IsObject(node);
    if (cJSON_IsArray(node)) {
        ok = true;
        for (const cJSON *e = node->child; e != NULL; e = e->next)
            ok = ok && cJSON_IsObject(e);
    }
    if (!ok) {
        cJSON_Delete(node);
        return fail_at(c->err, DRV_ERR_INVALID, MLINE(m), MCOL(m),
                       "the merge key \"<<\" needs a mapping or a sequence of mappings");
    }
    drv_err_t rc;
    if (c->anchor_seq != f->merge_anchor_seq) {
        /* Anchors point into it: merge from a copy and keep it until the document ends. */
        cJSON *cp = NULL;
        rc = copy_tree(c, node, c->nframes + 1, m, &cp);
        drv_err_t brc = bury(c, node);
        if (rc != DRV_OK)
            return rc;
        if (brc != DRV_OK) {
            cJSON_Delete(cp);
            return brc;
        }
        node = cp;
    }
    if (f->merges == NULL && (f->merges = cJSON_CreateArray()) == NULL) {
        cJSON_Delete(node);
        return nomem(c);
    }
    cJSON_AddItemToArray(f->merges, node);
    return DRV_OK;
}

static drv_err_t on_scalar(yctx_t *c, const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    const char *anchor = (const char *)ev->data.scalar.anchor;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    yaml_mark_t m = ev->start_mark;
    drv_err_t rc;

    if (anchor != NULL && (rc = anchor_scalar(c, anchor, s, n, tag, plain)) != DRV_OK)
        return rc;
    frame_t *f = c->nframes ? &c->frames[c->nframes - 1] : NULL;
    if (f != NULL && f->is_map && !f->have_key)
        return take_key(c, f, s, n, tag, plain, m);
    if ((rc = check_scalar_text(c, s, n, m)) != DRV_OK)
        return rc;
    cJSON *node = NULL;
    if ((rc = scalar_node(c, s, n, tag, plain, m, &node)) != DRV_OK)
        return rc;
    return place_value(c, node, m);
}

static drv_err_t on_alias(yctx_t *c, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    yaml_mark_t m = ev->start_mark;
    char nb[80];
    size_t idx;
    c->aliases_used = true;
    if (!strmap_get(&c->anchor_names, name, &idx))
        return fail_at(c->err, DRV_ERR_INVALID, MLINE(m), MCOL(m), "unknown anchor \"%s\"",
                       show(name, strlen(name), nb, sizeof nb));
    const anchor_t *a = &c->anchors[idx];
    if (a->pending)
        return fail_at(c->err, DRV_ERR_INVALID, MLINE(m), MCOL(m),
                       "alias *%s refers to a node that contains it",
                       show(name, strlen(name), nb, sizeof nb));
    frame_t *f = c->nframes ? &c->frames[c->nframes - 1] : NULL;
    bool is_key = f != NULL && f->is_map && !f->have_key;
    drv_err_t rc;
    cJSON *node = NULL;
    if (a->text != NULL) {
        if (is_key)
            return take_key(c, f, a->text, a->len, a->tag, a->plain, m);
        if ((rc = scalar_node(c, a->text, a->len, a->tag, a->plain, m, &node)) != DRV_OK)
            return rc;
    } else {
        if (is_key)
            return fail_at(c->err, DRV_ERR_INVALID, MLINE(m), MCOL(m),
                           "a mapping key must be a scalar (alias *%s is a collection)",
                           show(name, strlen(name), nb, sizeof nb));
        if ((rc = copy_tree(c, a->node, c->nframes + 1, m, &node)) != DRV_OK)
            return rc;
    }
    return place_value(c, node, m);
}

static drv_err_t on_collection_start(yctx_t *c, const yaml_event_t *ev, bool is_map)
{
    yaml_mark_t m = ev->start_mark;
    const char *tag =
        (const char *)(is_map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag);
    const char *anchor =
        (const char *)(is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor);
    char tb[80];
    frame_t *top = c->nframes ? &c->frames[c->nframes - 1] : NULL;
    if (top != NULL && top->is_map && !top->have_key)
        return fail_at(c->err, DRV_ERR_INVALID, MLINE(m), MCOL(m),
                       "a mapping key must be a scalar, not a %s", is_map ? "mapping" : "sequence");
    if (c->nframes + 1 > c->lim->max_depth)
        return fail_at(c->err, DRV_ERR_INVALID, MLINE(m), MCOL(m), "nesting deeper than %u",
                       c->lim->max_depth);
    tag_kind_t tk = tag_kind(tag);
    if (!(tk == TAG_NONE || (tag != NULL && strcmp(tag, "!") == 0) ||
          tk == (is_map ? TAG_MAP : TAG_SEQ)))
        return fail_at(c->err, DRV_ERR_INVALID, MLINE(m), MCOL(m), "unsupported tag %s on a %s",
                       show_tag(tag, tb, sizeof tb), is_map ? "mapping" : "sequence");
    drv_err_t rc = count_node(c, m);
    if (rc != DRV_OK)
        return rc;
    if (c->nframes == c->frames_cap) {
        size_t ncap = c->frames_cap ? c->frames_cap * 2 : 16;
        frame_t *nf = realloc(c->frames, ncap * sizeof *nf);
        if (nf == NULL)
            return nomem(c);
        c->frames = nf;
        c->frames_cap = ncap;
    }
    frame_t *f = &c->frames[c->nframes];
    *f = (frame_t){0};
    f->is_map = is_map;
    f->mark = m;
    drv_map_init_seeded(&f->keys, SIZE_MAX, c->seed);
    f->node = is_map ? cJSON_CreateObject() : cJSON_CreateArray();
    if (f->node == NULL)
        return nomem(c);
    c->nframes++;
    if (anchor != NULL) {
        anchor_t *a;
        if ((rc = anchor_entry(c, anchor, &a)) != DRV_OK)
            return rc;
        a->pending = true;
        if ((f->anchor = strdup(anchor)) == NULL)
            return nomem(c);
    }
    return DRV_OK;
}

static drv_err_t on_collection_end(yctx_t *c)
{
    frame_t *f = &c->frames[c->nframes - 1];
    drv_err_t rc;
    if (f->merges != NULL && (rc = apply_merges(c, f)) != DRV_OK)
        return rc;
    if (f->anchor != NULL) {
        size_t idx;
        if (strmap_get(&c->anchor_names, f->anchor, &idx) && c->anchors[idx].pending) {
            c->anchors[idx].pending = false;
            c->anchors[idx].node = f->node;
            c->anchor_seq++;
        }
    }
    cJSON *node = f->node;
    yaml_mark_t m = f->mark;
    f->node = NULL;
    frame_free(f);
    c->nframes--;
    return place_value(c, node, m);
}

static drv_err_t on_document_end(yctx_t *c)
{
    cJSON *root = c->root;
    c->root = NULL;
    anchors_reset(c);
    if (root == NULL || cJSON_IsNull(root)) {
        cJSON_Delete(root);
        return DRV_OK;
    }
    if (c->ndocs >= c->lim->max_docs) {
        cJSON_Delete(root);
        return drv_error_set(c->err, DRV_ERR_TOOBIG, 0,
                             "line %zu: more than %zu documents in one stream", c->root_line,
                             c->lim->max_docs);
    }
    if (c->ndocs == c->docs_cap) {
        size_t ncap = c->docs_cap ? c->docs_cap * 2 : 4;
        drv_doc_t *nd = realloc(c->docs, ncap * sizeof *nd);
        if (nd == NULL) {
            cJSON_Delete(root);
            return nomem(c);
        }
        c->docs = nd;
        c->docs_cap = ncap;
    }
    c->docs[c->ndocs] = (drv_doc_t){root, (unsigned)c->ndocs, (unsigned)c->root_line};
    c->ndocs++;
    return DRV_OK;
}

static drv_err_t yaml_parser_failure(yctx_t *c, const yaml_parser_t *p, const char *data,
                                     size_t len)
{
    const char *problem = p->problem ? p->problem : "invalid YAML";
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return nomem(c);
    case YAML_READER_ERROR: {
        size_t line, col;
        offset_pos(data, len, p->problem_offset, &line, &col);
        if (p->problem_value != -1)
            return fail_at(c->err, DRV_ERR_INVALID, line, col, "%s (0x%x)", problem,
                           (unsigned)p->problem_value);
        return fail_at(c->err, DRV_ERR_INVALID, line, col, "%s", problem);
    }
    default:
        if (p->context != NULL)
            return fail_at(c->err, DRV_ERR_INVALID, MLINE(p->problem_mark), MCOL(p->problem_mark),
                           "%s (%s at line %zu, column %zu)", problem, p->context,
                           MLINE(p->context_mark), MCOL(p->context_mark));
        return fail_at(c->err, DRV_ERR_INVALID, MLINE(p->problem_mark), MCOL(p->problem_mark), "%s",
                       problem);
    }
}

static drv_err_t on_event(yctx_t *c, const yaml_event_t *ev)
{
    bool node_event = ev->type == YAML_SCALAR_EVENT || ev->type == YAML_ALIAS_EVENT ||
                      ev->type == YAML_SEQUENCE_START_EVENT || ev->type == YAML_MAPPING_START_EVENT;
    if (node_event && c->nframes == 0)
        c->root_line = MLINE(ev->start_mark);
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        c->root = NULL;
        return DRV_OK;
    case YAML_DOCUMENT_END_EVENT:
        return on_document_end(c);
    case YAML_SCALAR_EVENT:
        return on_scalar(c, ev);
    case YAML_ALIAS_EVENT:
        return on_alias(c, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_collection_start(c, ev, false);
    case YAML_MAPPING_START_EVENT:
        return on_collection_start(c, ev, true);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_collection_end(c);
    default:
        return DRV_OK;
    }
}

static void yctx_free(yctx_t *c)
{
    while (c->nframes > 0)
        frame_free(&c->frames[--c->nframes]);
    free(c->frames);
    cJSON_Delete(c->root);
    anchors_reset(c);
    free(c->anchors);
    for (size_t i = 0; i < c->ndocs; i++)
        cJSON_Delete(c->docs[i].root);
    free(c->docs);
}

static drv_err_t parse_yaml(const char *data, size_t len, const drv_doc_limits_t *lim,
                            drv_doc_list_t *out, drv_error_t *err)
{
    yctx_t c = {.lim = lim, .err = err};
    drv_map_seed(c.seed);
    drv_map_init_seeded(&c.anchor_names, SIZE_MAX, c.seed);
    c.text_budget = lim->max_input > SIZE_MAX / TEXT_BUDGET_FACTOR
                        ? SIZE_MAX
                        : lim->max_input * TEXT_BUDGET_FACTOR;

    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    drv_err_t rc = DRV_OK;
    for (bool done = false; !done && rc == DRV_OK;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = yaml_parser_failure(&c, &p, data, len);
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        rc = on_event(&c, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    if (rc != DRV_OK) {
        yctx_free(&c);
        return rc;
    }
    out->docs = c.docs;
    out->count = c.ndocs;
    c.docs = NULL;
    c.ndocs = 0;
    yctx_free(&c);
    return DRV_OK;
}

drv_err_t drv_doc_parse(const char *data, size_t len, const drv_doc_limits_t *lim,
                        drv_doc_list_t *out, drv_error_t *err)
{
    if (lim == NULL)
        lim = &drv_doc_default_limits;
    if (out == NULL || (data == NULL && len > 0))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "parse document: no input or output");
    if (len > lim->max_input)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0,
                             "input of %zu bytes, more than the limit of %zu", len, lim->max_input);
    if (len == 0) {
        out->docs = NULL;
        out->count = 0;
        return DRV_OK;
    }
    size_t i = 0;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < len && json_ws(data[i]))
        i++;
    if (i < len && (data[i] == '{' || data[i] == '['))
        return parse_json(data, len, i, lim, out, err);
    return parse_yaml(data, len, lim, out, err);
}

void drv_doc_list_free(drv_doc_list_t *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->count; i++)
        cJSON_Delete(list->docs[i].root);
    free(list->docs);
    list->docs = NULL;
    list->count = 0;
}

/* ---- YAML emitter ----------------------------------------------------------------------- */

typedef struct ectx {
    yaml_emitter_t em;
    drv_buf_t *out;
    drv_err_t write_rc;
    drv_error_t *err;
    char path[256];
} ectx_t;

static int emit_write(void *data, unsigned char *buffer, size_t size)
{
    ectx_t *e = data;
    drv_err_t rc = drv_buf_append(e->out, buffer, size);
    if (rc != DRV_OK) {
        e->write_rc = rc;
        return 0;
    }
    return 1;
}

static const char *epath(const ectx_t *e)
{
    return e->path[0] == '.' ? e->path + 1 : e->path[0] ? e->path : "(document)";
}

static drv_err_t emit_event(ectx_t *e, yaml_event_t *ev, int init_ok)
{
    if (!init_ok)
        return drv_error_set(e->err, DRV_ERR_NOMEM, 0, "emit YAML: %s: out of memory", epath(e));
    if (yaml_emitter_emit(&e->em, ev))
        return DRV_OK;
    if (e->write_rc != DRV_OK)
        return drv_error_set(e->err, e->write_rc, 0, "emit YAML: output buffer full (limit %zu)",
                             e->out->max);
    return drv_error_set(e->err, e->em.error == YAML_MEMORY_ERROR ? DRV_ERR_NOMEM : DRV_ERR_INVALID,
                         0, "emit YAML: %s: %s", epath(e),
                         e->em.problem ? e->em.problem : "emitter error");
}

static drv_err_t format_number(double d, char *buf, size_t cap)
{
    drv_err_t rc = drv_fmt_double(buf, cap, d);
    if (rc != DRV_OK || (d == floor(d) && fabs(d) <= (double)TWO53))
        return rc;
    /* An integral value beyond 2^53 printed as digits would read back as an integer out of
     * range: keep it a float. */
    if (strspn(buf, "-0123456789") == strlen(buf)) {
        size_t l = strlen(buf);
        return drv_fmt(buf + l, cap - l, ".0");
    }
    return DRV_OK;
}

static drv_err_t emit_string(ectx_t *e, const char *s, bool is_key)
{
    size_t n = strlen(s);
    if (utf8_invalid_at((const unsigned char *)s, n) < n)
        return drv_error_set(e->err, DRV_ERR_INVALID, 0, "emit YAML: %s: %s is not valid UTF-8",
                             epath(e), is_key ? "key" : "string");
    bool lf = memchr(s, '\n', n) != NULL;
    /* Line breaks a block scalar would turn into '\n' on reading: CR, NEL, LS, PS. */
    bool other_break = memchr(s, '\r', n) != NULL || strstr(s, "\xC2\x85") != NULL ||
                       strstr(s, "\xE2\x80\xA8") != NULL || strstr(s, "\xE2\x80\xA9") != NULL;
    yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
    int plain_implicit = 1;
    if (other_break || (lf && is_key))
        style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    else if (lf)
        style = YAML_LITERAL_SCALAR_STYLE;
    else if (n == 0 || plain_would_change(s, n))
        plain_implicit = 0; /* libyaml then picks a quoted style */
    yaml_event_t ev;
    int ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)n, plain_implicit,
                                          1, style);
    return emit_event(e, &ev, ok);
}

static drv_err_t emit_plain(ectx_t *e, const char *s)
{
    yaml_event_t ev;
    int ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1,
                                          YAML_PLAIN_SCALAR_STYLE);
    return emit_event(e, &ev, ok);
}

static drv_err_t emit_node(ectx_t *e, const cJSON *node, unsigned depth)
{
    yaml_event_t ev;
    drv_err_t rc;
    if (cJSON_IsNull(node))
        return emit_plain(e, "null");
    if (cJSON_IsBool(node))
        return emit_plain(e, cJSON_IsTrue(node) ? "true" : "false");
    if (cJSON_IsNumber(node)) {
        if (!isfinite(node->valuedouble))
            return drv_error_set(e->err, DRV_ERR_INVALID, 0,
                                 "emit YAML: %s: %g is not representable in JSON", epath(e),
                                 node->valuedouble);
        char nb[64];
        if ((rc = format_number(node->valuedouble, nb, sizeof nb)) != DRV_OK)
            return drv_error_set(e->err, rc, 0, "emit YAML: %s: %g: number too long", epath(e),
                                 node->valuedouble);
        return emit_plain(e, nb);
    }
    if (cJSON_IsString(node)) {
        if (node->valuestring == NULL)
            return drv_error_set(e->err, DRV_ERR_INVALID, 0, "emit YAML: %s: string without text",
                                 epath(e));
        return emit_string(e, node->valuestring, false);
    }
    bool is_map = cJSON_IsObject(node);
    if (!is_map && !cJSON_IsArray(node))
        return drv_error_set(e->err, DRV_ERR_INVALID, 0, "emit YAML: %s: unsupported value type",
                             epath(e));
    if (depth >= drv_doc_default_limits.max_depth)
        return drv_error_set(e->err, DRV_ERR_INVALID, 0, "emit YAML: %s: nesting deeper than %u",
                             epath(e), drv_doc_default_limits.max_depth);
    int ok =
        is_map
            ? yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE)
            : yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
    if ((rc = emit_event(e, &ev, ok)) != DRV_OK)
        return rc;
    size_t plen = strlen(e->path);
    size_t idx = 0;
    for (const cJSON *ch = node->child; ch != NULL; ch = ch->next, idx++) {
        if (is_map) {
            if (ch->string == NULL)
                return drv_error_set(e->err, DRV_ERR_INVALID, 0,
                                     "emit YAML: %s: member without a key", epath(e));
            drv_fmt_cut(e->path + plen, sizeof e->path - plen, ".%s", ch->string);
            if ((rc = emit_string(e, ch->string, true)) != DRV_OK)
                return rc;
        } else {
            drv_fmt_cut(e->path + plen, sizeof e->path - plen, "[%zu]", idx);
        }
        if ((rc = emit_node(e, ch, depth + 1)) != DRV_OK)
            return rc;
        e->path[plen] = '\0';
    }
    ok = is_map ? yaml_mapping_end_event_initialize(&ev) : yaml_sequence_end_event_initialize(&ev);
    return emit_event(e, &ev, ok);
}

drv_err_t drv_doc_emit_yaml(const cJSON *root, drv_buf_t *out, drv_error_t *err)
{
    if (root == NULL || out == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "emit YAML: no document or output");
    ectx_t *e = calloc(1, sizeof *e);
    if (e == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "emit YAML: out of memory");
    e->out = out;
    e->err = err;
    size_t start = out->len;
    if (!yaml_emitter_initialize(&e->em)) {
        free(e);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "emit YAML: out of memory");
    }
    yaml_emitter_set_output(&e->em, emit_write, e);
    yaml_emitter_set_unicode(&e->em, 1);
    yaml_emitter_set_width(&e->em, -1);
    yaml_emitter_set_indent(&e->em, 2);
    yaml_emitter_set_break(&e->em, YAML_LN_BREAK);

    yaml_event_t ev;
    int ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    drv_err_t rc = emit_event(e, &ev, ok);
    if (rc == DRV_OK) {
        ok = yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
        rc = emit_event(e, &ev, ok);
    }
    if (rc == DRV_OK)
        rc = emit_node(e, root, 0);
    if (rc == DRV_OK) {
        ok = yaml_document_end_event_initialize(&ev, 1);
        rc = emit_event(e, &ev, ok);
    }
    if (rc == DRV_OK) {
        ok = yaml_stream_end_event_initialize(&ev);
        rc = emit_event(e, &ev, ok);
    }
    if (rc == DRV_OK && !yaml_emitter_flush(&e->em))
        rc = e->write_rc != DRV_OK
                 ? drv_error_set(err, e->write_rc, 0, "emit YAML: output buffer full (limit %zu)",
                                 out->max)
                 : drv_error_set(err, DRV_ERR_IO, 0, "emit YAML: flush failed");
    yaml_emitter_delete(&e->em);
    free(e);
    if (rc != DRV_OK && out->len > start)
        drv_buf_truncate(out, start);
    return rc;
}
