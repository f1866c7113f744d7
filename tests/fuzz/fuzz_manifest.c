/* libFuzzer target for the manifest parser: YAML/JSON documents through the resource model.
 * Checks that nothing crashes or leaks, that a valid object's canonical JSON normalizes
 * again to the same bytes, and that a problem report is never empty. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drover/manifest.h"
#include "drover/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    drv_manifest_set_t set = {0};
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_manifest_load_text("fuzz", (const char *)data, size, &set, &err) != DRV_OK) {
        if (!*drv_error_msg(&err))
            abort();
        return 0;
    }
    for (size_t i = 0; i < set.count; i++) {
        drv_diags_t diags = {0};
        drv_err_t r = drv_model_normalize(set.items[i].obj, &diags);
        if (r == DRV_ERR_INVALID && diags.count == 0)
            abort(); /* invalid without saying why */
        if (r == DRV_OK) {
            char *once = drv_model_to_json(set.items[i].obj, false);
            cJSON *again = once ? cJSON_Parse(once) : NULL;
            if (!once || !again || drv_model_normalize(again, NULL) != DRV_OK)
                abort(); /* canonical output must stay valid */
            char *twice = drv_model_to_json(again, false);
            if (!twice || strcmp(once, twice))
                abort(); /* and normalizing must be idempotent */
            free(once);
            free(twice);
            cJSON_Delete(again);
        }
        drv_diags_free(&diags);
    }
    drv_manifest_set_free(&set);
    return 0;
}
