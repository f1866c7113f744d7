/* libFuzzer target for manifest documents: any input either parses or fails with a located
 * message, and every document parsed survives emit -> parse unchanged (cJSON_Compare). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/doc.h"

static void die(const char *what, const char *detail, const char *yaml)
{
    fprintf(stderr, "fuzz_doc: %s: %s\n%s\n", what, detail, yaml ? yaml : "");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Smaller budgets than the defaults keep every run fast; the logic is the same. */
    drv_doc_limits_t lim = drv_doc_default_limits;
    lim.max_input = 1u << 20;
    lim.max_nodes = 20000;
    lim.max_docs = 100;
    drv_doc_list_t list = {0};
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_doc_parse((const char *)data, size, &lim, &list, &err) != DRV_OK) {
        if (strncmp(drv_error_msg(&err), "line ", 5) != 0 && err.code != DRV_ERR_NOMEM)
            die("error without a position", drv_error_msg(&err), NULL);
        return 0;
    }
    for (size_t i = 0; i < list.count; i++) {
        const cJSON *root = list.docs[i].root;
        if (root == NULL || list.docs[i].index != i || list.docs[i].line == 0)
            die("bad document entry", "", NULL);
        drv_buf_t yaml = DRV_BUF_INIT(SIZE_MAX / 2);
        if (drv_doc_emit_yaml(root, &yaml, &err) != DRV_OK)
            die("emit failed", drv_error_msg(&err), NULL);
        /* Alias expansion may make the text longer than the input was. */
        drv_doc_limits_t again_lim = lim;
        again_lim.max_input = yaml.len + 1;
        drv_doc_list_t again = {0};
        if (drv_doc_parse(yaml.data, yaml.len, &again_lim, &again, &err) != DRV_OK)
            die("re-parse failed", drv_error_msg(&err), yaml.data);
        if (again.count != 1 || !cJSON_Compare(root, again.docs[0].root, 1))
            die("round trip changed the document", "", yaml.data);
        drv_doc_list_free(&again);
        drv_buf_free(&yaml);
    }
    drv_doc_list_free(&list);
    return 0;
}
