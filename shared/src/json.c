/* Typed JSON field reads (drover/json.h): look-ups, checked number conversion, and errors that
 * name the field path. Every module reads cJSON values through these. */
#include "drover/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define TWO_POW_63 9223372036854775808.0  /* 2^63: the first double above INT64_MAX */
#define TWO_POW_64 18446744073709551616.0 /* 2^64: the first double above UINT64_MAX */

cJSON *drv_json_get(const cJSON *obj, const char *key)
{
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

const char *drv_json_str(const cJSON *obj, const char *key)
{
    const cJSON *m = drv_json_get(obj, key);
    return cJSON_IsString(m) ? m->valuestring : NULL;
}

const char *drv_json_str_or(const cJSON *obj, const char *key, const char *dflt)
{
    const char *s = drv_json_str(obj, key);
    return s ? s : dflt;
}

bool drv_json_true(const cJSON *obj, const char *key)
{
    return cJSON_IsTrue(drv_json_get(obj, key));
}

bool drv_json_bool(const cJSON *obj, const char *key, bool *out)
{
    const cJSON *m = drv_json_get(obj, key);
    if (!cJSON_IsBool(m))
        return false;
    *out = cJSON_IsTrue(m);
    return true;
}

bool drv_json_int(const cJSON *obj, const char *key, int64_t *out)
{
    const cJSON *m = drv_json_get(obj, key);
    return cJSON_IsNumber(m) && drv_json_to_int(m->valuedouble, INT64_MIN, INT64_MAX, out);
}

int64_t drv_json_int_or(const cJSON *obj, const char *key, int64_t dflt)
{
    int64_t v = dflt;
    (void)drv_json_int(obj, key, &v);
    return v;
}

cJSON *drv_json_at(const cJSON *obj, const char *dotted)
{
    char key[128];
    cJSON *cur = (cJSON *)obj;
    while (cur != NULL) {
        size_t l = strcspn(dotted, ".");
        if (l >= sizeof(key))
            return NULL;
        memcpy(key, dotted, l);
        key[l] = '\0';
        cur = drv_json_get(cur, key);
        if (dotted[l] == '\0')
            return cur;
        dotted += l + 1;
    }
    return NULL;
}

const char *drv_json_str_at(const cJSON *obj, const char *dotted)
{
    const cJSON *m = drv_json_at(obj, dotted);
    return cJSON_IsString(m) ? m->valuestring : NULL;
}

int64_t drv_json_int_at(const cJSON *obj, const char *dotted, int64_t min, int64_t max,
                        int64_t dflt)
{
    const cJSON *m = drv_json_at(obj, dotted);
    int64_t v;
    if (!cJSON_IsNumber(m) || !drv_json_to_int(m->valuedouble, min, max, &v))
        return dflt;
    return v;
}

size_t drv_json_array_len(const cJSON *arr)
{
    return cJSON_IsArray(arr) ? (size_t)cJSON_GetArraySize(arr) : 0;
}

bool drv_json_to_int(double v, int64_t min, int64_t max, int64_t *out)
{
    /* In this order: NaN and the infinities fail isfinite; the range test against the exact
     * powers of two keeps the cast defined; only then is the value compared as an integer. */
    if (!isfinite(v) || v != floor(v) || v < -TWO_POW_63 || v >= TWO_POW_63)
        return false;
    int64_t i = (int64_t)v;
    if (i < min || i > max)
        return false;
    *out = i;
    return true;
}

bool drv_json_to_uint(double v, uint64_t max, uint64_t *out)
{
    if (!isfinite(v) || v != floor(v) || v < 0 || v >= TWO_POW_64)
        return false;
    uint64_t u = (uint64_t)v;
    if (u > max)
        return false;
    *out = u;
    return true;
}

/* ---- strict reads ---- */

/* "path." or "" for the error prefix. */
#define PFX(path) ((path) && *(path) ? (path) : ""), ((path) && *(path) ? "." : "")

static drv_err_t bad(drv_error_t *err, const char *path, const char *key, const char *what)
{
    return drv_error_set(err, DRV_ERR_INVALID, 0, "%s%s%s: %s", PFX(path), key, what);
}

/* The member to read into *m, or NULL with *rc set: DRV_OK when it is absent and may be. */
static const cJSON *member(const cJSON *obj, const char *path, const char *key,
                           drv_json_need_t need, bool *present, drv_err_t *rc, drv_error_t *err)
{
    const cJSON *m = drv_json_get(obj, key);
    bool absent = m == NULL || (need != DRV_JSON_OPTIONAL && cJSON_IsNull(m));
    if (present)
        *present = !absent;
    *rc = DRV_OK;
    if (absent) {
        if (need == DRV_JSON_REQUIRED)
            *rc = bad(err, path, key, "required");
        return NULL;
    }
    return m;
}

/* A member of one cJSON type (cJSON_Object, cJSON_Array, cJSON_String) into *out. */
static drv_err_t read_node(const cJSON *obj, const char *path, const char *key,
                           drv_json_need_t need, int type, const char *what, const cJSON **out,
                           bool *present, drv_error_t *err)
{
    drv_err_t rc;
    const cJSON *m = member(obj, path, key, need, present, &rc, err);
    if (m == NULL)
        return rc;
    if ((m->type & 0xFF) != type || (type == cJSON_String && m->valuestring == NULL))
        return bad(err, path, key, what);
    *out = m;
    return DRV_OK;
}

drv_err_t drv_json_read_object(const cJSON *obj, const char *path, const char *key,
                               drv_json_need_t need, const cJSON **out, bool *present,
                               drv_error_t *err)
{
    return read_node(obj, path, key, need, cJSON_Object, "must be an object", out, present, err);
}

drv_err_t drv_json_read_array(const cJSON *obj, const char *path, const char *key,
                              drv_json_need_t need, const cJSON **out, bool *present,
                              drv_error_t *err)
{
    return read_node(obj, path, key, need, cJSON_Array, "must be an array", out, present, err);
}

drv_err_t drv_json_read_string(const cJSON *obj, const char *path, const char *key,
                               drv_json_need_t need, const char **out, bool *present,
                               drv_error_t *err)
{
    const cJSON *m = NULL;
    drv_err_t rc =
        read_node(obj, path, key, need, cJSON_String, "must be a string", &m, present, err);
    if (m != NULL)
        *out = m->valuestring;
    return rc;
}

drv_err_t drv_json_read_strbuf(const cJSON *obj, const char *path, const char *key,
                               drv_json_need_t need, char *buf, size_t bufsz, bool *present,
                               drv_error_t *err)
{
    const char *s = NULL;
    drv_err_t rc = drv_json_read_string(obj, path, key, need, &s, present, err);
    if (rc != DRV_OK || s == NULL)
        return rc;
    size_t n = strlen(s);
    if (bufsz == 0 || n >= bufsz)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s%s%s: must be no more than %zu characters",
                             PFX(path), key, bufsz ? bufsz - 1 : 0);
    memcpy(buf, s, n + 1);
    return DRV_OK;
}

drv_err_t drv_json_read_bool(const cJSON *obj, const char *path, const char *key,
                             drv_json_need_t need, bool *out, bool *present, drv_error_t *err)
{
    drv_err_t rc;
    const cJSON *m = member(obj, path, key, need, present, &rc, err);
    if (m == NULL)
        return rc;
    if (!cJSON_IsBool(m))
        return bad(err, path, key, "must be true or false");
    *out = cJSON_IsTrue(m);
    return DRV_OK;
}

drv_err_t drv_json_read_int(const cJSON *obj, const char *path, const char *key,
                            drv_json_need_t need, int64_t min, int64_t max, int64_t *out,
                            bool *present, drv_error_t *err)
{
    drv_err_t rc;
    const cJSON *m = member(obj, path, key, need, present, &rc, err);
    if (m == NULL)
        return rc;
    if (!cJSON_IsNumber(m) || !drv_json_to_int(m->valuedouble, min, max, out))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s%s%s: must be a whole number from %" PRId64 " to %" PRId64,
                             PFX(path), key, min, max);
    return DRV_OK;
}

drv_err_t drv_json_read_uint(const cJSON *obj, const char *path, const char *key,
                             drv_json_need_t need, uint64_t max, uint64_t *out, bool *present,
                             drv_error_t *err)
{
    drv_err_t rc;
    const cJSON *m = member(obj, path, key, need, present, &rc, err);
    if (m == NULL)
        return rc;
    if (!cJSON_IsNumber(m) || !drv_json_to_uint(m->valuedouble, max, out))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s%s%s: must be a whole number from 0 to %" PRIu64, PFX(path), key,
                             max);
    return DRV_OK;
}

drv_err_t drv_json_read_double(const cJSON *obj, const char *path, const char *key,
                               drv_json_need_t need, double min, double max, double *out,
                               bool *present, drv_error_t *err)
{
    drv_err_t rc;
    const cJSON *m = member(obj, path, key, need, present, &rc, err);
    if (m == NULL)
        return rc;
    double v = m->valuedouble;
    if (!cJSON_IsNumber(m) || !isfinite(v) || !(v >= min && v <= max))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s%s%s: must be a number from %g to %g",
                             PFX(path), key, min, max);
    *out = v;
    return DRV_OK;
}

/* ---- tables ---- */

static drv_err_t read_field(const cJSON *obj, const char *path, const drv_json_field_t *f,
                            drv_error_t *err)
{
    switch (f->type) {
    case DRV_JSON_T_ANY: {
        drv_err_t rc;
        const cJSON *m = member(obj, path, f->key, f->need, f->present, &rc, err);
        if (m != NULL)
            *(const cJSON **)f->dest = m;
        return rc;
    }
    case DRV_JSON_T_OBJECT:
        return drv_json_read_object(obj, path, f->key, f->need, f->dest, f->present, err);
    case DRV_JSON_T_ARRAY:
        return drv_json_read_array(obj, path, f->key, f->need, f->dest, f->present, err);
    case DRV_JSON_T_STRING:
        return drv_json_read_string(obj, path, f->key, f->need, f->dest, f->present, err);
    case DRV_JSON_T_STRBUF:
        return drv_json_read_strbuf(obj, path, f->key, f->need, f->dest, f->size, f->present, err);
    case DRV_JSON_T_BOOL:
        return drv_json_read_bool(obj, path, f->key, f->need, f->dest, f->present, err);
    case DRV_JSON_T_INT: {
        bool whole = f->min == 0 && f->max == 0;
        return drv_json_read_int(obj, path, f->key, f->need, whole ? INT64_MIN : f->min,
                                 whole ? INT64_MAX : f->max, f->dest, f->present, err);
    }
    case DRV_JSON_T_UINT:
        return drv_json_read_uint(obj, path, f->key, f->need, f->umax ? f->umax : UINT64_MAX,
                                  f->dest, f->present, err);
    case DRV_JSON_T_DOUBLE: {
        bool whole = f->dmin == 0 && f->dmax == 0;
        return drv_json_read_double(obj, path, f->key, f->need, whole ? -HUGE_VAL : f->dmin,
                                    whole ? HUGE_VAL : f->dmax, f->dest, f->present, err);
    }
    }
    return drv_error_set(err, DRV_ERR_INVALID, 0, "%s%s%s: unknown field type", PFX(path), f->key);
}

/* "<key>: unknown field (a, b, c)" for a member the table does not name. */
static drv_err_t unknown(const cJSON *obj, const char *path, const drv_json_field_t *table,
                         size_t n, drv_error_t *err)
{
    for (const cJSON *m = obj->child; m != NULL; m = m->next) {
        size_t i = 0;
        while (i < n && strcmp(table[i].key, m->string) != 0)
            i++;
        if (i < n)
            continue;
        char known[512];
        size_t used = 0;
        known[0] = '\0';
        for (i = 0; i < n && used < sizeof(known); i++) {
            int w =
                snprintf(known + used, sizeof(known) - used, "%s%s", i ? ", " : "", table[i].key);
            if (w < 0 || (size_t)w >= sizeof(known) - used) {
                known[used] = '\0'; /* a cut list is dropped whole, not half a key */
                break;
            }
            used += (size_t)w;
        }
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s%s%.64s: unknown field (%s)", PFX(path),
                             m->string, known);
    }
    return DRV_OK;
}

drv_err_t drv_json_read_table(const cJSON *obj, const char *path, const drv_json_field_t *table,
                              size_t n, unsigned flags, drv_error_t *err)
{
    if (!cJSON_IsObject(obj))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: must be an object",
                             path && *path ? path : "document");
    if (flags & DRV_JSON_STRICT) {
        drv_err_t rc = unknown(obj, path, table, n, err);
        if (rc != DRV_OK)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        drv_err_t rc = read_field(obj, path, &table[i], err);
        if (rc != DRV_OK)
            return rc;
    }
    return DRV_OK;
}

bool drv_json_same_object(const cJSON *a, const cJSON *b)
{
    const char *na = drv_json_str_at(a, "metadata.name"), *nb = drv_json_str_at(b, "metadata.name");
    const char *sa = drv_json_str_at(a, "metadata.namespace");
    const char *sb = drv_json_str_at(b, "metadata.namespace");
    return na && nb && !strcmp(na, nb) && !strcmp(sa ? sa : "default", sb ? sb : "default");
}
