/* The three patch formats of PATCH requests: RFC 7386 JSON merge patch, Kubernetes' strategic
 * merge patch (list merge keys and strategies from patchmeta.h, the $patch, $retainKeys,
 * $setElementOrder and $deleteFromPrimitiveList directives) and RFC 6902 JSON Patch. */
#ifndef DROVER_HUB_API_PATCH_H
#define DROVER_HUB_API_PATCH_H

#include <cjson/cJSON.h>

#include "drover/error.h"

typedef enum {
    DRV_API_PATCH_MERGE,     /* application/merge-patch+json */
    DRV_API_PATCH_STRATEGIC, /* application/strategic-merge-patch+json */
    DRV_API_PATCH_JSON,      /* application/json-patch+json */
} drv_api_patch_type_t;

/* Bounds on what one patch may make the hub do: operations of a JSON Patch (the apiserver's
 * limit), elements of one list merged by key, and the size (nodes plus string bytes) that
 * copy and add operations may grow a document to. */
#define DRV_API_PATCH_MAX_OPS 10000
#define DRV_API_PATCH_MAX_MERGE_LIST 4096
#define DRV_API_PATCH_MAX_WEIGHT (16u * 1024 * 1024)

/* Applies patch to *target. root_type is the OpenAPI type of the target for a strategic merge
 * patch (drv_api_patch_root(); NULL: no list has a merge strategy). On success *target is
 * replaced by the patched document (the old one freed); on failure *target is untouched and
 * err names the field or operation:
 *   DRV_ERR_PROTO    the patch is malformed (HTTP 400): not an object/array, a bad pointer,
 *                    an unknown or malformed directive, a list element without its merge key;
 *   DRV_ERR_INVALID  a well-formed patch that cannot apply to this target (HTTP 422): a JSON
 *                    Patch test that fails, a path that does not exist, an index out of range;
 *   DRV_ERR_TOOBIG   over one of the bounds above (HTTP 413);
 *   DRV_ERR_NOMEM. */
DRV_NODISCARD drv_err_t drv_api_patch_apply(drv_api_patch_type_t type, const char *root_type,
                                            cJSON **target, const cJSON *patch, drv_error_t *err);

#endif
