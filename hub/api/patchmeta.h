/* Kubernetes' patch metadata for the kinds the hub serves: for a field of a type, the type of
 * its value (or of its list's elements) and its strategic-merge-patch strategy and merge key.
 * One table serves both the server's strategic merge patch (patch.c) and the OpenAPI documents
 * (x-kubernetes-patch-strategy, x-kubernetes-patch-merge-key), so that what kubectl computes
 * from the OpenAPI and what the hub applies agree. Type names are the OpenAPI definitions'
 * ("io.k8s.api.core.v1.Container"). Fields not in the table have no strategy: objects merge
 * key by key, lists are replaced whole (Kubernetes' defaults). */
#ifndef DROVER_HUB_API_PATCHMETA_H
#define DROVER_HUB_API_PATCHMETA_H

#include <stdbool.h>
#include <stddef.h>

#include "drover/model.h"

typedef struct drv_api_patch_meta {
    const char *type;      /* the field's type (a list's element type); NULL: not a known type */
    bool list;             /* the field is a list */
    bool merge;            /* patchStrategy merge: a list merged by merge_key (or a set of
                              primitives when merge_key is NULL) */
    bool retain_keys;      /* patchStrategy retainKeys */
    const char *merge_key; /* patchMergeKey; NULL when none */
} drv_api_patch_meta_t;

/* The OpenAPI type name of a kind's objects ("io.k8s.api.apps.v1.Deployment"), NULL when the
 * kind has none. */
const char *drv_api_patch_root(drv_kind_t kind);

/* The metadata of field in type; false (and *out zeroed) when the table has nothing for it. */
bool drv_api_patch_meta(const char *type, const char *field, drv_api_patch_meta_t *out);

#endif
