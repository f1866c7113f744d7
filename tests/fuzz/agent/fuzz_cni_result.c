/* libFuzzer target for the CNI plugin output readers (agent/runtime/cni.c): the input is what a
 * plugin printed on stdout, read both as a success result and as an error object. Checks that
 * nothing crashes or leaks, that a parsed result has an IPv4 address, and that an error always
 * comes with a message. Needs drover-agent-core. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    drv_cni_result_t r;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_cni_result_parse((const char *)data, size, &r, &err) == DRV_OK) {
        struct in_addr a;
        if (inet_pton(AF_INET, r.ip, &a) != 1 || r.prefix_len > 32 || r.json == NULL)
            abort();
        drv_cni_result_free(&r);
    } else if (err.msg[0] == '\0') {
        abort();
    }
    drv_error_t perr = DRV_ERROR_INIT;
    if (drv_cni_plugin_error("bridge", "ADD", 1 << 8, (const char *)data, size, NULL, &perr) ==
            DRV_OK ||
        strncmp(perr.msg, "cni bridge ADD: ", 16) != 0)
        abort();
    return 0;
}
