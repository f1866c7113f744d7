/* Label selectors: the Kubernetes string grammar ("a=b,c!=d,e in (x,y),!f") and the structured
 * LabelSelector form, both turned into one list of requirements, and matching of label sets.
 * Keys and values are checked with the label rules of names.h; sizes are capped. */
#include "drover/selector.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/fmt.h"
#include "drover/names.h"

#define SEL_QUOTE_MAX 64
#define SEL_WHY_MAX 512

/* ---- building ---------------------------------------------------------------------------- */

static void req_clear(drv_sel_req_t *r)
{
    free(r->key);
    for (size_t i = 0; i < r->nvalues; i++)
        free(r->values[i]);
    free(r->values);
    memset(r, 0, sizeof(*r));
}

void drv_selector_free(drv_selector_t *sel)
{
    if (sel == NULL)
        return;
    for (size_t i = 0; i < sel->nreqs; i++)
        req_clear(&sel->reqs[i]);
    free(sel->reqs);
    sel->reqs = NULL;
    sel->nreqs = 0;
}

bool drv_selector_empty(const drv_selector_t *sel)
{
    return sel == NULL || sel->nreqs == 0;
}

/* Copies s into out as a printable, bounded excerpt for error messages. */
static void sel_quote(const char *s, size_t len, char *out, size_t outsz)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    size_t i = 0;
    for (; i < len && i < SEL_QUOTE_MAX; i++) {
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
    if (i < len && o + 4 <= outsz) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* Appends a new requirement with a copy of key; *out points at it on success. */
static drv_err_t sel_add_req(drv_selector_t *sel, drv_sel_op_t op, const char *key, size_t keylen,
                             drv_sel_req_t **out, drv_error_t *err)
{
    if (sel->nreqs >= DRV_SEL_MAX_REQS)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "more than %d requirements", DRV_SEL_MAX_REQS);
    drv_sel_req_t *reqs = realloc(sel->reqs, (sel->nreqs + 1) * sizeof(*reqs));
    if (reqs == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    sel->reqs = reqs;
    drv_sel_req_t *r = &reqs[sel->nreqs];
    memset(r, 0, sizeof(*r));
    r->key = strndup(key, keylen);
    if (r->key == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    r->op = op;
    sel->nreqs++;
    *out = r;
    return DRV_OK;
}

/* Adds a value to r unless it is there already (values form a set, as in Kubernetes). */
static drv_err_t sel_add_value(drv_sel_req_t *r, const char *v, size_t len, drv_error_t *err)
{
    for (size_t i = 0; i < r->nvalues; i++) {
        if (strlen(r->values[i]) == len && memcmp(r->values[i], v, len) == 0)
            return DRV_OK;
    }
    if (r->nvalues >= DRV_SEL_MAX_VALUES)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "more than %d values", DRV_SEL_MAX_VALUES);
    char **values = realloc(r->values, (r->nvalues + 1) * sizeof(*values));
    if (values == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    r->values = values;
    values[r->nvalues] = strndup(v, len);
    if (values[r->nvalues] == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    r->nvalues++;
    return DRV_OK;
}

/* Label rules apply to a bounded copy: a key is at most 253 + 1 + 63 characters. */
static bool sel_check(bool is_key, const char *s, size_t len, char *why, size_t whysz)
{
    char buf[320];
    if (len >= sizeof(buf)) {
        drv_fmt_cut(why, whysz, "must be no more than %d characters", is_key ? 317 : 63);
        return false;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    return is_key ? drv_name_label_key(buf, why, whysz) : drv_name_label_value(buf, why, whysz);
}

/* ---- string form ------------------------------------------------------------------------- */

typedef enum {
    TOK_END,
    TOK_IDENT,
    TOK_IN,
    TOK_NOTIN,
    TOK_EQ,     /* = */
    TOK_DEQ,    /* == */
    TOK_NE,     /* != */
    TOK_NOT,    /* ! */
    TOK_LPAREN, /* ( */
    TOK_RPAREN, /* ) */
    TOK_COMMA,
    TOK_GT, /* > */
    TOK_LT, /* < */
} tok_kind_t;

typedef struct {
    tok_kind_t kind;
    const char *text;
    size_t len;
    size_t pos;
} tok_t;

typedef struct {
    const char *s;
    size_t pos;
    drv_error_t *err;
} lexer_t;

static bool lex_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool lex_special(char c)
{
    return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '>' || c == '<';
}

static tok_t lex_peek(const lexer_t *lx)
{
    const char *s = lx->s;
    size_t p = lx->pos;
    while (lex_space(s[p]))
        p++;
    tok_t t = {TOK_END, s + p, 0, p};
    char c = s[p];
    if (c == '\0')
        return t;
    if (lex_special(c)) {
        t.len = 1;
        switch (c) {
        case '=':
            t.kind = TOK_EQ;
            if (s[p + 1] == '=') {
                t.kind = TOK_DEQ;
                t.len = 2;
            }
            break;
        case '!':
            t.kind = TOK_NOT;
            if (s[p + 1] == '=') {
                t.kind = TOK_NE;
                t.len = 2;
            }
            break;
        case '(':
            t.kind = TOK_LPAREN;
            break;
        case ')':
            t.kind = TOK_RPAREN;
            break;
        case ',':
            t.kind = TOK_COMMA;
            break;
        case '>':
            t.kind = TOK_GT;
            break;
        default:
            t.kind = TOK_LT;
            break;
        }
        return t;
    }
    while (s[p + t.len] != '\0' && !lex_space(s[p + t.len]) && !lex_special(s[p + t.len]))
        t.len++;
    t.kind = TOK_IDENT;
    if (t.len == 2 && memcmp(t.text, "in", 2) == 0)
        t.kind = TOK_IN;
    else if (t.len == 5 && memcmp(t.text, "notin", 5) == 0)
        t.kind = TOK_NOTIN;
    return t;
}

static tok_t lex_next(lexer_t *lx)
{
    tok_t t = lex_peek(lx);
    lx->pos = t.pos + t.len;
    return t;
}

/* In value position the keywords are plain words ("env in (in, notin)" is valid). */
static bool tok_is_word(const tok_t *t)
{
    return t->kind == TOK_IDENT || t->kind == TOK_IN || t->kind == TOK_NOTIN;
}

static drv_err_t lex_error(lexer_t *lx, const tok_t *t, const char *expected)
{
    char sq[SEL_QUOTE_MAX * 4 + 8];
    char tq[SEL_QUOTE_MAX * 4 + 8];
    sel_quote(lx->s, strlen(lx->s), sq, sizeof(sq));
    if (t->kind == TOK_END)
        return drv_error_set(lx->err, DRV_ERR_INVALID, 0,
                             "\"%s\": expected %s at position %zu, found end of string", sq,
                             expected, t->pos);
    sel_quote(t->text, t->len, tq, sizeof(tq));
    return drv_error_set(lx->err, DRV_ERR_INVALID, 0,
                         "\"%s\": expected %s at position %zu, found '%s'", sq, expected, t->pos,
                         tq);
}

static drv_err_t lex_check(lexer_t *lx, const tok_t *t, bool is_key)
{
    char why[SEL_WHY_MAX];
    if (sel_check(is_key, t->text, t->len, why, sizeof(why)))
        return DRV_OK;
    char q[SEL_QUOTE_MAX * 4 + 8];
    sel_quote(t->text, t->len, q, sizeof(q));
    return drv_error_set(lx->err, DRV_ERR_INVALID, 0, "%s \"%s\" at position %zu: %s",
                         is_key ? "key" : "value", q, t->pos, why);
}

static drv_err_t lex_add_value(lexer_t *lx, drv_sel_req_t *r, const tok_t *t)
{
    drv_err_t rc = lex_check(lx, t, false);
    if (rc == DRV_OK)
        rc = sel_add_value(r, t->text, t->len, lx->err);
    return rc;
}

/* "(" value {"," value} ")" where a value may be empty: "(a,)" holds "a" and "". */
static drv_err_t parse_value_set(lexer_t *lx, drv_sel_req_t *r)
{
    tok_t t = lex_next(lx);
    if (t.kind != TOK_LPAREN)
        return lex_error(lx, &t, "'('");
    t = lex_peek(lx);
    if (t.kind == TOK_RPAREN)
        return drv_error_set(lx->err, DRV_ERR_INVALID, 0,
                             "key \"%s\": for 'in', 'notin' operators, values set can't be empty",
                             r->key);
    for (;;) {
        t = lex_peek(lx);
        tok_t v = t;
        if (tok_is_word(&t))
            lex_next(lx);
        else
            v.len = 0;
        drv_err_t rc = lex_add_value(lx, r, &v);
        if (rc != DRV_OK)
            return rc;
        t = lex_next(lx);
        if (t.kind == TOK_RPAREN)
            return DRV_OK;
        if (t.kind != TOK_COMMA)
            return lex_error(lx, &t, "',' or ')'");
    }
}

static drv_err_t parse_requirement(lexer_t *lx, drv_selector_t *sel)
{
    bool negated = false;
    tok_t t = lex_next(lx);
    if (t.kind == TOK_NOT) {
        negated = true;
        t = lex_next(lx);
    }
    if (t.kind != TOK_IDENT)
        return lex_error(lx, &t, "a label key");
    drv_err_t rc = lex_check(lx, &t, true);
    if (rc != DRV_OK)
        return rc;
    tok_t key = t;
    drv_sel_req_t *r;

    t = lex_peek(lx);
    if (negated || t.kind == TOK_END || t.kind == TOK_COMMA)
        return sel_add_req(sel, negated ? DRV_SEL_NOTEXISTS : DRV_SEL_EXISTS, key.text, key.len, &r,
                           lx->err);

    t = lex_next(lx);
    switch (t.kind) {
    case TOK_IN:
    case TOK_NOTIN:
        rc = sel_add_req(sel, t.kind == TOK_IN ? DRV_SEL_IN : DRV_SEL_NOTIN, key.text, key.len, &r,
                         lx->err);
        return rc != DRV_OK ? rc : parse_value_set(lx, r);
    case TOK_EQ:
    case TOK_DEQ:
    case TOK_NE: {
        rc = sel_add_req(sel, t.kind == TOK_NE ? DRV_SEL_NE : DRV_SEL_EQ, key.text, key.len, &r,
                         lx->err);
        if (rc != DRV_OK)
            return rc;
        tok_t v = lex_peek(lx);
        if (tok_is_word(&v))
            lex_next(lx);
        else if (v.kind == TOK_END || v.kind == TOK_COMMA)
            v.len = 0; /* "a=" selects the empty value, as in Kubernetes */
        else
            return lex_error(lx, &v, "a label value");
        return lex_add_value(lx, r, &v);
    }
    case TOK_GT:
    case TOK_LT:
        return drv_error_set(lx->err, DRV_ERR_UNSUPPORTED, 0,
                             "operator '%c' at position %zu is not supported", t.text[0], t.pos);
    default:
        return lex_error(lx, &t, "one of '=', '==', '!=', 'in', 'notin'");
    }
}

drv_err_t drv_selector_parse(const char *s, drv_selector_t *out, drv_error_t *err)
{
    if (s == NULL)
        s = "";
    lexer_t lx = {s, 0, err};
    drv_selector_t sel = {NULL, 0};
    drv_err_t rc = DRV_OK;

    tok_t t = lex_peek(&lx);
    while (t.kind != TOK_END) {
        rc = parse_requirement(&lx, &sel);
        if (rc != DRV_OK)
            break;
        t = lex_next(&lx);
        if (t.kind == TOK_END)
            break;
        if (t.kind != TOK_COMMA) {
            rc = lex_error(&lx, &t, "',' or end of string");
            break;
        }
    }
    if (rc != DRV_OK) {
        drv_selector_free(&sel);
        return rc;
    }
    *out = sel;
    return DRV_OK;
}

/* ---- structured form --------------------------------------------------------------------- */

static drv_err_t json_check(const char *path, bool is_key, const char *s, drv_error_t *err)
{
    char why[SEL_WHY_MAX];
    if (sel_check(is_key, s, strlen(s), why, sizeof(why)))
        return DRV_OK;
    char q[SEL_QUOTE_MAX * 4 + 8];
    sel_quote(s, strlen(s), q, sizeof(q));
    return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: invalid %s \"%s\": %s", path,
                         is_key ? "key" : "value", q, why);
}

static drv_err_t json_match_labels(const cJSON *ml, drv_selector_t *sel, drv_error_t *err)
{
    if (ml == NULL || cJSON_IsNull(ml))
        return DRV_OK;
    if (!cJSON_IsObject(ml))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "matchLabels: must be an object");
    const cJSON *it;
    cJSON_ArrayForEach(it, ml)
    {
        const char *key = it->string != NULL ? it->string : "";
        drv_err_t rc = json_check("matchLabels", true, key, err);
        if (rc != DRV_OK)
            return rc;
        char path[SEL_QUOTE_MAX * 4 + 32];
        char q[SEL_QUOTE_MAX * 4 + 8];
        sel_quote(key, strlen(key), q, sizeof(q));
        drv_fmt_cut(path, sizeof(path), "matchLabels.%s", q);
        if (!cJSON_IsString(it) || it->valuestring == NULL)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: must be a string", path);
        rc = json_check(path, false, it->valuestring, err);
        drv_sel_req_t *r;
        if (rc == DRV_OK)
            rc = sel_add_req(sel, DRV_SEL_EQ, key, strlen(key), &r, err);
        if (rc == DRV_OK)
            rc = sel_add_value(r, it->valuestring, strlen(it->valuestring), err);
        if (rc != DRV_OK)
            return rc;
    }
    return DRV_OK;
}

static drv_err_t json_expression(const cJSON *ex, int idx, drv_selector_t *sel, drv_error_t *err)
{
    char path[64];
    drv_fmt_cut(path, sizeof(path), "matchExpressions[%d]", idx);
    if (!cJSON_IsObject(ex))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: must be an object", path);

    const cJSON *key = cJSON_GetObjectItemCaseSensitive(ex, "key");
    if (key == NULL || cJSON_IsNull(key))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.key: required", path);
    if (!cJSON_IsString(key) || key->valuestring == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.key: must be a string", path);
    char fpath[96];
    drv_fmt_cut(fpath, sizeof(fpath), "%s.key", path);
    drv_err_t rc = json_check(fpath, true, key->valuestring, err);
    if (rc != DRV_OK)
        return rc;

    const cJSON *op = cJSON_GetObjectItemCaseSensitive(ex, "operator");
    if (op == NULL || cJSON_IsNull(op))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.operator: required", path);
    if (!cJSON_IsString(op) || op->valuestring == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.operator: must be a string", path);
    drv_sel_op_t kind;
    const char *o = op->valuestring;
    if (strcmp(o, "In") == 0) {
        kind = DRV_SEL_IN;
    } else if (strcmp(o, "NotIn") == 0) {
        kind = DRV_SEL_NOTIN;
    } else if (strcmp(o, "Exists") == 0) {
        kind = DRV_SEL_EXISTS;
    } else if (strcmp(o, "DoesNotExist") == 0) {
        kind = DRV_SEL_NOTEXISTS;
    } else {
        char q[SEL_QUOTE_MAX * 4 + 8];
        sel_quote(o, strlen(o), q, sizeof(q));
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s.operator: \"%s\" is not a valid label selector operator (use "
                             "In, NotIn, Exists or DoesNotExist)",
                             path, q);
    }

    const cJSON *values = cJSON_GetObjectItemCaseSensitive(ex, "values");
    if (values != NULL && !cJSON_IsNull(values) && !cJSON_IsArray(values))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.values: must be an array", path);
    int nvalues = cJSON_IsArray(values) ? cJSON_GetArraySize(values) : 0;
    bool set_op = kind == DRV_SEL_IN || kind == DRV_SEL_NOTIN;
    if (set_op && nvalues == 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s.values: must be specified when `operator` is 'In' or 'NotIn'",
                             path);
    if (!set_op && nvalues > 0)
        return drv_error_set(
            err, DRV_ERR_INVALID, 0,
            "%s.values: may not be specified when `operator` is 'Exists' or 'DoesNotExist'", path);
    if (nvalues > DRV_SEL_MAX_VALUES)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s.values: more than %d values", path,
                             DRV_SEL_MAX_VALUES);

    drv_sel_req_t *r;
    rc = sel_add_req(sel, kind, key->valuestring, strlen(key->valuestring), &r, err);
    if (rc != DRV_OK)
        return rc;
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, values)
    {
        drv_fmt_cut(fpath, sizeof(fpath), "%s.values[%d]", path, i++);
        if (!cJSON_IsString(v) || v->valuestring == NULL)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: must be a string", fpath);
        rc = json_check(fpath, false, v->valuestring, err);
        if (rc == DRV_OK)
            rc = sel_add_value(r, v->valuestring, strlen(v->valuestring), err);
        if (rc != DRV_OK)
            return rc;
    }
    return DRV_OK;
}

static drv_err_t json_match_expressions(const cJSON *me, drv_selector_t *sel, drv_error_t *err)
{
    if (me == NULL || cJSON_IsNull(me))
        return DRV_OK;
    if (!cJSON_IsArray(me))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "matchExpressions: must be an array");
    int idx = 0;
    const cJSON *ex;
    cJSON_ArrayForEach(ex, me)
    {
        if (sel->nreqs >= DRV_SEL_MAX_REQS)
            return drv_error_set(err, DRV_ERR_TOOBIG, 0, "more than %d requirements",
                                 DRV_SEL_MAX_REQS);
        drv_err_t rc = json_expression(ex, idx++, sel, err);
        if (rc != DRV_OK)
            return rc;
    }
    return DRV_OK;
}

drv_err_t drv_selector_from_json(const cJSON *json, drv_selector_t *out, drv_error_t *err)
{
    if (json == NULL || cJSON_IsNull(json))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "selector: required");
    if (!cJSON_IsObject(json))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "selector: must be an object");
    drv_selector_t sel = {NULL, 0};
    drv_err_t rc =
        json_match_labels(cJSON_GetObjectItemCaseSensitive(json, "matchLabels"), &sel, err);
    if (rc == DRV_OK)
        rc = json_match_expressions(cJSON_GetObjectItemCaseSensitive(json, "matchExpressions"),
                                    &sel, err);
    if (rc != DRV_OK) {
        drv_selector_free(&sel);
        return rc;
    }
    *out = sel;
    return DRV_OK;
}

/* ---- matching ---------------------------------------------------------------------------- */

static bool req_has_value(const drv_sel_req_t *r, const char *v)
{
    for (size_t i = 0; i < r->nvalues; i++) {
        if (strcmp(r->values[i], v) == 0)
            return true;
    }
    return false;
}

bool drv_selector_matches(const drv_selector_t *sel, const cJSON *labels)
{
    if (sel == NULL)
        return true;
    if (!cJSON_IsObject(labels))
        labels = NULL;
    for (size_t i = 0; i < sel->nreqs; i++) {
        const drv_sel_req_t *r = &sel->reqs[i];
        /* A label that is not a string is malformed; it counts as absent. */
        const cJSON *l = labels ? cJSON_GetObjectItemCaseSensitive(labels, r->key) : NULL;
        const char *v = (cJSON_IsString(l) && l->valuestring != NULL) ? l->valuestring : NULL;
        bool ok;
        switch (r->op) {
        case DRV_SEL_EQ:
        case DRV_SEL_IN:
            ok = v != NULL && req_has_value(r, v);
            break;
        case DRV_SEL_NE:
        case DRV_SEL_NOTIN:
            ok = v == NULL || !req_has_value(r, v);
            break;
        case DRV_SEL_EXISTS:
            ok = v != NULL;
            break;
        case DRV_SEL_NOTEXISTS:
            ok = v == NULL;
            break;
        default:
            ok = false;
            break;
        }
        if (!ok)
            return false;
    }
    return true;
}

drv_err_t drv_selector_format(const drv_selector_t *sel, char *out, size_t outsz)
{
    static const char *const ops[] = {[DRV_SEL_EQ] = "=",
                                      [DRV_SEL_NE] = "!=",
                                      [DRV_SEL_IN] = " in ",
                                      [DRV_SEL_NOTIN] = " notin "};
    size_t len = 0;
    if (outsz == 0)
        return DRV_ERR_RANGE;
    out[0] = '\0';
    for (size_t i = 0; i < sel->nreqs; i++) {
        const drv_sel_req_t *r = &sel->reqs[i];
        drv_err_t e = drv_fmt(out + len, outsz - len, "%s%s%s", i ? "," : "",
                              r->op == DRV_SEL_NOTEXISTS ? "!" : "", r->key);
        for (size_t v = 0; e == DRV_OK && v < r->nvalues; v++) {
            len += strlen(out + len);
            bool set = r->op == DRV_SEL_IN || r->op == DRV_SEL_NOTIN;
            e = drv_fmt(out + len, outsz - len, "%s%s%s%s", v ? "," : ops[r->op],
                        v == 0 && set ? "(" : "", r->values[v],
                        set && v + 1 == r->nvalues ? ")" : "");
        }
        if (e != DRV_OK) {
            out[0] = '\0';
            return DRV_ERR_RANGE;
        }
        len += strlen(out + len);
    }
    return DRV_OK;
}
