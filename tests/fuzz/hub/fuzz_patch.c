/* Fuzzes the hub's PATCH formats (hub/api/patch.c): the input is a target and a patch
 * separated by a NUL byte, both parsed as JSON, and the pair goes through merge patch,
 * strategic merge patch (as a Deployment) and JSON Patch. Looks for crashes, leaks, and a
 * target changed by a patch that failed. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/patch.h"
#include "api/patchmeta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *sep = memchr(data, 0, size);
    if (!sep)
        return 0;
    size_t tlen = (size_t)(sep - data);
    cJSON *target = cJSON_ParseWithLength((const char *)data, tlen);
    cJSON *patch = cJSON_ParseWithLength((const char *)sep + 1, size - tlen - 1);
    if (target && patch) {
        /* cJSON_Compare cannot tell a document with duplicate keys equal to a copy of it */
        cJSON *copy = cJSON_Duplicate(target, true);
        bool comparable = copy && cJSON_Compare(target, copy, true);
        cJSON_Delete(copy);
        static const drv_api_patch_type_t types[] = {DRV_API_PATCH_MERGE, DRV_API_PATCH_STRATEGIC,
                                                     DRV_API_PATCH_JSON};
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
            cJSON *t = cJSON_Duplicate(target, true);
            if (!t)
                break;
            cJSON *keep = t;
            drv_error_t err = DRV_ERROR_INIT;
            if (drv_api_patch_apply(types[i], drv_api_patch_root(DRV_KIND_DEPLOYMENT), &t, patch,
                                    &err) != DRV_OK &&
                (t != keep || (comparable && !cJSON_Compare(t, target, true))))
                abort(); /* a failed patch must leave the target as it was */
            cJSON_Delete(t);
        }
    }
    cJSON_Delete(target);
    cJSON_Delete(patch);
    return 0;
}
