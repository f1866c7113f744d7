/* libFuzzer target for hub/api/protobuf.c: the input is a request body declared
 * application/vnd.kubernetes.protobuf. Decoding either gives a JSON object with apiVersion and
 * kind, or fails with a reason; nothing is read past the input (ASan) or left allocated. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[512];
    cJSON *o = drv_api_protobuf_decode(data, size, why, sizeof(why));
    if (!o && !why[0]) {
        fprintf(stderr, "fuzz_protobuf: failed without a reason\n");
        abort();
    }
    if (o && (!cJSON_IsObject(o) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "kind")))) {
        fprintf(stderr, "fuzz_protobuf: decoded without a kind\n");
        abort();
    }
    cJSON_Delete(o);
    return 0;
}
