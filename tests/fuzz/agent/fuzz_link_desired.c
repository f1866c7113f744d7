/* libFuzzer target for the agent's acceptance of a hub desired state (agent/link/link.c): the
 * input is an MQTT payload on the node's desired topic. Checks that nothing crashes or leaks,
 * that a refusal always says why, and that an accepted document has the three arrays and pods
 * with a uid and this node's name. Needs drover-agent-core. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "link/link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    drv_link_desired_t d = {0};
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_link_desired_check((const char *)data, size, "n1", 1, &d, &err) != DRV_OK) {
        if (err.msg[0] == '\0')
            abort();
        return 0;
    }
    if (d.stale) {
        if (d.desired || d.generation > 1)
            abort();
        return 0;
    }
    const cJSON *pods = cJSON_GetObjectItemCaseSensitive(d.desired, "pods"), *p;
    if (!cJSON_IsArray(pods) ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(d.desired, "configMaps")) ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(d.desired, "secrets")))
        abort();
    cJSON_ArrayForEach(p, pods)
    {
        const cJSON *uid = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(p, "metadata"), "uid");
        const cJSON *node = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(p, "spec"), "nodeName");
        if (!cJSON_IsString(uid) || !uid->valuestring[0] || strchr(uid->valuestring, '/') ||
            !cJSON_IsString(node) || strcmp(node->valuestring, "n1"))
            abort();
    }
    drv_link_desired_free(&d);
    return 0;
}
