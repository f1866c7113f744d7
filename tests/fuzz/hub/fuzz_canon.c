/* Fuzzes the store's canonical-text edits (hub/store/canon.c): any text that an edit accepts
 * must be JSON that cJSON parses, and for a canonical text (what drv_model_to_json prints) the
 * edit must give exactly what printing the edited tree gives. Looks for reads past the text. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drover/model.h"
#include "store/store_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const char *got, cJSON *tree)
{
    char *want = drv_model_to_json(tree, false);
    if (got && want && strcmp(got, want) != 0)
        abort();
    free(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *t = malloc(size + 1);
    if (!t)
        return 0;
    memcpy(t, data, size);
    t[size] = '\0';
    char *rv = hstore_canon_set_meta(t, "resourceVersion", "\"9\"");
    char *st = hstore_canon_with(t, "status", "{\"phase\":\"Running\"}");
    char *cut = hstore_canon_without(t, "metadata");
    char *labels = hstore_canon_meta_member(t, "labels");
    cJSON *tree = cJSON_Parse(t);
    if ((rv || st || cut || labels) && !tree)
        abort(); /* accepted a text that is not JSON */
    char *canon = tree ? drv_model_to_json(tree, false) : NULL;
    if (canon && strcmp(canon, t) == 0) {
        cJSON *m = cJSON_GetObjectItemCaseSensitive(tree, "metadata");
        if (rv && cJSON_GetObjectItemCaseSensitive(m, "resourceVersion")) {
            cJSON *c = cJSON_Duplicate(tree, true);
            cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "metadata"),
                                                   "resourceVersion", cJSON_CreateString("9"));
            same(rv, c);
            cJSON_Delete(c);
        }
        if (st) {
            cJSON *c = cJSON_Duplicate(tree, true);
            cJSON_AddItemToObject(c, "status", cJSON_Parse("{\"phase\":\"Running\"}"));
            same(st, c);
            cJSON_Delete(c);
        }
        if (cut) {
            cJSON *c = cJSON_Duplicate(tree, true);
            cJSON_DeleteItemFromObjectCaseSensitive(c, "metadata");
            same(cut, c);
            cJSON_Delete(c);
        }
    }
    free(canon);
    cJSON_Delete(tree);
    free(rv);
    free(st);
    free(cut);
    free(labels);
    free(t);
    return 0;
}
