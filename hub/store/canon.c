/* Edits of the store's canonical object text (drv_model_to_json: compact, keys sorted) without
 * parsing it into a tree: a write changes metadata.resourceVersion or metadata.generation, or
 * puts the status in, and the text that comes out is byte for byte what printing the changed
 * tree gives. The text read is the store's own, but a row may be corrupt: every walk is bounded
 * by the text's length and gives up (false, NULL) on anything that is not such an object, and
 * the caller then takes the tree path. */
#include "store/store_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define CANON_DEPTH_MAX 1000 /* cJSON's nesting limit: no stored text is deeper */

/* The walk is strict JSON without whitespace: anything else (which the store never writes) is
 * left to the tree path, so that a text this file edits is one cJSON would have parsed. */

/* The end of the JSON string opening at t[i] ('"'); 0 if it is not one. *esc: it holds an
 * escape. */
static size_t skip_string(const char *t, size_t len, size_t i, bool *esc)
{
    for (i++; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c < 0x20)
            return 0;
        if (c == '"')
            return i + 1;
        if (c != '\\')
            continue;
        *esc = true;
        if (++i >= len || !strchr("\"\\/bfnrtu", t[i]))
            return 0;
        /* cJSON prints only control characters as \u00XX (the rest as UTF-8): anything else,
         * a surrogate above all, is left to cJSON. */
        if (t[i] == 'u') {
            if (len - i < 5 || t[i + 1] != '0' || t[i + 2] != '0' ||
                !isxdigit((unsigned char)t[i + 3]) || !isxdigit((unsigned char)t[i + 4]))
                return 0;
            i += 4;
        }
    }
    return 0;
}

static size_t skip_digits(const char *t, size_t len, size_t i)
{
    size_t s = i;
    while (i < len && t[i] >= '0' && t[i] <= '9')
        i++;
    return i > s ? i : 0;
}

static size_t skip_number(const char *t, size_t len, size_t i)
{
    if (i < len && t[i] == '-')
        i++;
    if (!(i = skip_digits(t, len, i)))
        return 0;
    if (i < len && t[i] == '.' && !(i = skip_digits(t, len, i + 1)))
        return 0;
    if (i < len && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        if (i < len && (t[i] == '+' || t[i] == '-'))
            i++;
        if (!(i = skip_digits(t, len, i)))
            return 0;
    }
    return i;
}

/* The end of the value starting at t[i]; 0 if it is not one that ends within len. */
static size_t skip_value(const char *t, size_t len, size_t i, unsigned depth)
{
    bool esc = false;
    if (i >= len || depth > CANON_DEPTH_MAX)
        return 0;
    char open = t[i];
    if (open == '"')
        return skip_string(t, len, i, &esc);
    if (open == '{' || open == '[') {
        char close = open == '{' ? '}' : ']';
        if (++i < len && t[i] == close)
            return i + 1;
        for (;;) {
            if (open == '{') {
                if (i >= len || t[i] != '"' || !(i = skip_string(t, len, i, &esc)) || i >= len ||
                    t[i] != ':')
                    return 0;
                i++;
            }
            if (!(i = skip_value(t, len, i, depth + 1)) || i >= len)
                return 0;
            if (t[i] == close)
                return i + 1;
            if (t[i++] != ',')
                return 0;
        }
    }
    static const char *const words[] = {"true", "false", "null"};
    for (size_t w = 0; w < 3; w++) {
        size_t n = strlen(words[w]);
        if (len - i >= n && !memcmp(t + i, words[w], n))
            return i + n;
    }
    return skip_number(t, len, i);
}

bool hstore_canon_find(const char *t, size_t len, const char *key, hstore_canon_span_t *out)
{
    size_t klen = strlen(key), i = 1;
    *out = (hstore_canon_span_t){0};
    if (len < 2 || t[0] != '{' || t[len - 1] != '}')
        return false;
    if (len == 2) {
        out->insert = 1;
        return true;
    }
    bool insert_set = false;
    for (;;) {
        if (i >= len || t[i] != '"')
            return false;
        bool esc = false;
        size_t kend = skip_string(t, len, i, &esc);
        if (!kend || esc || kend >= len || t[kend] != ':') /* escaped keys: no byte order here */
            return false;
        size_t kl = kend - i - 2, vend = skip_value(t, len, kend + 1, 1);
        if (!vend)
            return false;
        int c = strncmp(t + i + 1, key, kl < klen ? kl : klen);
        c = c ? c : (kl > klen) - (kl < klen);
        if (c == 0 && !out->found) {
            *out = (hstore_canon_span_t){
                .found = true, .at = i, .val = kend + 1, .end = vend, .insert = out->insert};
        } else if (c > 0 && !insert_set) {
            out->insert = i;
            insert_set = true;
        }
        if (vend == len - 1)
            break;
        if (t[vend] != ',')
            return false;
        i = vend + 1;
    }
    if (!insert_set)
        out->insert = len - 1;
    return true;
}

/* A malloc'd copy of t with [at, end) replaced by the n bytes of with. */
static char *splice(const char *t, size_t len, size_t at, size_t end, const char *with, size_t n)
{
    char *s = malloc(len - (end - at) + n + 1);
    if (!s)
        return NULL;
    memcpy(s, t, at);
    memcpy(s + at, with, n);
    memcpy(s + at + n, t + end, len - end);
    s[len - (end - at) + n] = '\0';
    return s;
}

char *hstore_canon_set_meta(const char *t, const char *key, const char *value)
{
    size_t len = strlen(t);
    hstore_canon_span_t m, k;
    if (!hstore_canon_find(t, len, "metadata", &m) || !m.found ||
        !hstore_canon_find(t + m.val, m.end - m.val, key, &k) || !k.found)
        return NULL;
    return splice(t, len, m.val + k.val, m.val + k.end, value, strlen(value));
}

char *hstore_canon_meta_member(const char *t, const char *key)
{
    size_t len = strlen(t);
    hstore_canon_span_t m, k;
    if (!hstore_canon_find(t, len, "metadata", &m) || !m.found ||
        !hstore_canon_find(t + m.val, m.end - m.val, key, &k))
        return NULL;
    if (!k.found)
        return strdup("");
    return strndup(t + m.val + k.val, k.end - k.val);
}

char *hstore_canon_without(const char *t, const char *key)
{
    size_t len = strlen(t);
    hstore_canon_span_t m;
    if (!hstore_canon_find(t, len, key, &m))
        return NULL;
    if (!m.found)
        return strdup(t);
    /* The member and one comma: the one after it, or before it when it is the last. */
    size_t at = m.at, end = m.end;
    if (t[end] == ',')
        end++;
    else if (t[at - 1] == ',')
        at--;
    return splice(t, len, at, end, "", 0);
}

char *hstore_canon_with(const char *t, const char *key, const char *value)
{
    size_t len = strlen(t), klen = strlen(key), vlen = strlen(value);
    hstore_canon_span_t m;
    if (!hstore_canon_find(t, len, key, &m) || m.found)
        return NULL;
    bool last = t[m.insert] == '}', alone = len == 2;
    /* ,"key":value  or  "key":value, */
    size_t n = klen + vlen + 3 + !alone;
    char *mem = malloc(n + 1), *p = mem;
    if (!mem)
        return NULL;
    if (last && !alone)
        *p++ = ',';
    *p++ = '"';
    memcpy(p, key, klen);
    p += klen;
    *p++ = '"';
    *p++ = ':';
    memcpy(p, value, vlen);
    p += vlen;
    if (!last)
        *p++ = ',';
    char *s = splice(t, len, m.insert, m.insert, mem, (size_t)(p - mem));
    free(mem);
    return s;
}
