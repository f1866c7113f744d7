/* Typed, bounds-checked reads of cJSON objects: the one place Drover turns a parsed JSON value
 * into a C value. Every error names the field by its path ("spec.containers[1].image: must be
 * a string"), and numbers become integers only after they were checked finite, whole and in
 * range (casting 1e300 to an integer is undefined behaviour). A whole object can be read
 * through one table of fields (Greengrass lite's GGL_MAP_SCHEMA idea): drv_json_read_table. */
#ifndef DROVER_JSON_H
#define DROVER_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "drover/error.h"

/* ---- lenient look-ups: NULL (or the default) when absent or of another type ---- */

/* Member key of obj when obj is an object, else NULL (obj may be NULL). The result points into
 * obj (owned by it, valid while obj is); it is not const because cJSON's own getter is not. */
DRV_API cJSON *drv_json_get(const cJSON *obj, const char *key);
/* The string member key of obj, or NULL. Valid while obj is. */
DRV_API const char *drv_json_str(const cJSON *obj, const char *key);
/* drv_json_str with a default for an absent or non-string member. */
DRV_API const char *drv_json_str_or(const cJSON *obj, const char *key, const char *dflt);
/* True only when member key of obj is JSON true. */
DRV_API bool drv_json_true(const cJSON *obj, const char *key);
/* When member key of obj is a boolean: *out set, true returned; else false, *out untouched. */
DRV_API bool drv_json_bool(const cJSON *obj, const char *key, bool *out);
/* When member key of obj is a whole number within int64: *out set, true returned; else false
 * (absent, another type, fractional, beyond int64, not finite), *out untouched. */
DRV_API bool drv_json_int(const cJSON *obj, const char *key, int64_t *out);
/* The whole number member key of obj, or dflt when it is absent, not a number, fractional or
 * beyond int64 (never a cast of an unchecked double). */
DRV_API int64_t drv_json_int_or(const cJSON *obj, const char *key, int64_t dflt);
/* The member at a dotted path of plain keys ("metadata.name", "status.replicas"), or NULL. Keys
 * containing '.' cannot be reached this way (use drv_json_get). */
DRV_API cJSON *drv_json_at(const cJSON *obj, const char *dotted);
/* The string at a dotted path, or NULL. */
DRV_API const char *drv_json_str_at(const cJSON *obj, const char *dotted);
/* The whole number at a dotted path when it lies in [min, max], else dflt (absent, not a
 * number, fractional, out of range, not finite). */
DRV_API int64_t drv_json_int_at(const cJSON *obj, const char *dotted, int64_t min, int64_t max,
                                int64_t dflt);
/* Whether a and b name the same object: equal metadata.name, and metadata.namespace equal with
 * an absent one read as "default". False when either has no name. */
DRV_API bool drv_json_same_object(const cJSON *a, const cJSON *b);
/* Number of elements of an array, 0 for anything else (NULL included). */
DRV_API size_t drv_json_array_len(const cJSON *arr);

/* ---- safe number conversion ---- */

/* v as an int64 in [min, max]: false (and *out untouched) unless v is finite, whole and in
 * range. The checks come before any cast. */
DRV_API bool drv_json_to_int(double v, int64_t min, int64_t max, int64_t *out);
/* v as a uint64 in [0, max], likewise. */
DRV_API bool drv_json_to_uint(double v, uint64_t max, uint64_t *out);

/* ---- strict field reads with a field path in the error ---- */

/* Whether a field must be there. JSON null counts as absent for REQUIRED ("required") and
 * NULLABLE, and as a value of the wrong type for OPTIONAL. */
typedef enum {
    DRV_JSON_OPTIONAL = 0, /* absent: the destination is left untouched */
    DRV_JSON_REQUIRED,     /* absent or null: "<path>: required" */
    DRV_JSON_NULLABLE,     /* absent or null: left untouched */
} drv_json_need_t;

/* Each reader below reads member key of obj, whose own path is path (NULL or "" at the top:
 * the error then names just key; else "path.key"). It returns DRV_OK and sets *out, or
 * DRV_ERR_INVALID with the message "<path.key>: <what is wrong>" in err and *out untouched.
 * present (may be NULL) tells whether the member was there. obj must be an object or NULL. */
DRV_API DRV_NODISCARD drv_err_t drv_json_read_object(const cJSON *obj, const char *path,
                                                     const char *key, drv_json_need_t need,
                                                     const cJSON **out, bool *present,
                                                     drv_error_t *err);
DRV_API DRV_NODISCARD drv_err_t drv_json_read_array(const cJSON *obj, const char *path,
                                                    const char *key, drv_json_need_t need,
                                                    const cJSON **out, bool *present,
                                                    drv_error_t *err);
/* *out points into obj (valid while obj is). */
DRV_API DRV_NODISCARD drv_err_t drv_json_read_string(const cJSON *obj, const char *path,
                                                     const char *key, drv_json_need_t need,
                                                     const char **out, bool *present,
                                                     drv_error_t *err);
/* A string copied into buf (bufsz bytes, NUL included): longer ones are refused, not cut. */
DRV_API DRV_NODISCARD drv_err_t drv_json_read_strbuf(const cJSON *obj, const char *path,
                                                     const char *key, drv_json_need_t need,
                                                     char *buf, size_t bufsz, bool *present,
                                                     drv_error_t *err);
DRV_API DRV_NODISCARD drv_err_t drv_json_read_bool(const cJSON *obj, const char *path,
                                                   const char *key, drv_json_need_t need, bool *out,
                                                   bool *present, drv_error_t *err);
/* A whole number in [min, max] ("must be a whole number from min to max"). */
DRV_API DRV_NODISCARD drv_err_t drv_json_read_int(const cJSON *obj, const char *path,
                                                  const char *key, drv_json_need_t need,
                                                  int64_t min, int64_t max, int64_t *out,
                                                  bool *present, drv_error_t *err);
/* A whole number in [0, max]. */
DRV_API DRV_NODISCARD drv_err_t drv_json_read_uint(const cJSON *obj, const char *path,
                                                   const char *key, drv_json_need_t need,
                                                   uint64_t max, uint64_t *out, bool *present,
                                                   drv_error_t *err);
/* A finite number in [min, max]. */
DRV_API DRV_NODISCARD drv_err_t drv_json_read_double(const cJSON *obj, const char *path,
                                                     const char *key, drv_json_need_t need,
                                                     double min, double max, double *out,
                                                     bool *present, drv_error_t *err);

/* ---- declarative reads: one table for a whole object ---- */

typedef enum {
    DRV_JSON_T_ANY = 0, /* dest: const cJSON ** (any type) */
    DRV_JSON_T_OBJECT,  /* dest: const cJSON ** */
    DRV_JSON_T_ARRAY,   /* dest: const cJSON ** */
    DRV_JSON_T_STRING,  /* dest: const char ** (points into the object) */
    DRV_JSON_T_STRBUF,  /* dest: char[size] */
    DRV_JSON_T_BOOL,    /* dest: bool * */
    DRV_JSON_T_INT,     /* dest: int64_t *, in [min, max] */
    DRV_JSON_T_UINT,    /* dest: uint64_t *, in [0, umax] */
    DRV_JSON_T_DOUBLE,  /* dest: double *, finite, in [dmin, dmax] */
} drv_json_type_t;

/* One field of a table. Bounds left at zero mean the whole range of the type (INT: int64,
 * UINT: uint64, DOUBLE: any finite value). present (may be NULL) says whether it was there. */
typedef struct drv_json_field {
    const char *key;
    drv_json_type_t type;
    drv_json_need_t need;
    void *dest;
    size_t size; /* STRBUF: bytes at dest */
    int64_t min, max;
    uint64_t umax;
    double dmin, dmax;
    bool *present;
} drv_json_field_t;

/* Table options. */
#define DRV_JSON_STRICT 1u /* a member no field names is refused: "<key>: unknown field (a, b)" */

/* Reads obj (whose path is path, as above) through the n fields of table, in table order; the
 * first bad field stops the read with its error ("<path.key>: must be ..."). obj that is not
 * an object fails with "<path>: must be an object". On failure some destinations may already
 * be set: read into locals when that matters. */
DRV_API DRV_NODISCARD drv_err_t drv_json_read_table(const cJSON *obj, const char *path,
                                                    const drv_json_field_t *table, size_t n,
                                                    unsigned flags, drv_error_t *err);

#define DRV_JSON_TABLE_LEN(t) (sizeof(t) / sizeof((t)[0]))

#endif
