/* The OpenAPI documents the hub serves (openapi.c) so that kubectl validates, explains and
 * computes patches: one OpenAPI 3.0 document per served group version, their index, and a
 * minimal Swagger 2.0 document. They are generated from one table of the API's types and their
 * fields (openapi_types.c), which describes what Drover accepts (shared/src/model*.c). */
#ifndef DROVER_HUB_API_OPENAPI_H
#define DROVER_HUB_API_OPENAPI_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

/* Field flags. */
#define DRV_OA_LIST 1u     /* a list of type */
#define DRV_OA_MAP 2u      /* an object whose values are of type */
#define DRV_OA_REQUIRED 4u /* Drover refuses the object without it */

typedef struct drv_oa_field {
    const char *name;
    /* "string", "integer" (64-bit), "int32", "boolean", "number", "object" (anything), or
     * a type of the table by its full name ("io.k8s.api.core.v1.Container") */
    const char *type;
    unsigned flags;
    const char *desc;
} drv_oa_field_t;

typedef struct drv_oa_type {
    const char *name; /* "io.k8s.api.core.v1.Pod" */
    const char *desc;
    /* A type written as a primitive (Quantity, Time, IntOrString): its OpenAPI type and
     * format; NULL for an object with fields. */
    const char *prim, *format;
    const drv_oa_field_t *fields; /* ended by a NULL name; NULL for a primitive */
} drv_oa_type_t;

/* The table (openapi_types.c), ended by an entry whose name is NULL. */
extern const drv_oa_type_t drv_oa_types[];
/* The type named name, NULL when the table has none. */
const drv_oa_type_t *drv_oa_type(const char *name);

/* A kind the API serves, as the documents show it. */
typedef struct drv_oa_kind {
    const char *doc; /* the document's path under /openapi/v3: "api/v1", "apis/apps/v1" */
    const char *group, *version, *kind;
    const char *plural;
    const char *type; /* full type name */
    bool namespaced;
    bool status; /* has a status subresource */
    bool scale;  /* has a scale subresource (autoscaling/v1 Scale) */
    bool log;    /* pods/log */
    bool create; /* POST on the collection (not for read-mostly kinds) */
} drv_oa_kind_t;

/* The served kinds (ended by an entry whose doc is NULL). */
extern const drv_oa_kind_t drv_oa_kinds[];

/* The documents, built once on first use and kept for the life of the process (the
 * tables are constant). Every pointer returned stays owned by this module. */
typedef struct drv_oa_doc {
    const char *path; /* "api/v1", ... */
    const cJSON *json;
    const char *text; /* json printed, what is served */
    size_t len;
    const char *hash; /* upper-case hex SHA-256 of text: the index's ?hash= and the ETag */
} drv_oa_doc_t;

/* The v3 documents (*n gets their count); NULL when memory ran out. */
const drv_oa_doc_t *drv_oa_docs(size_t *n);
/* The v3 index ({"paths": {"api/v1": {"serverRelativeURL": ...}}}). */
const drv_oa_doc_t *drv_oa_index(void);

#endif
