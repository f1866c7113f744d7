/* libFuzzer target for the gRPC health answer reader (agent/probe/probe.c,
 * drv_grpc_health_parse): whatever a server sends back to a gRPC probe must be read within its
 * bounds, and a refusal must say why. Needs drover-agent-core. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "probe/probe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t status = 99;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_grpc_health_parse(data, size, &status, &err);
    if (rc != DRV_OK && (rc != DRV_ERR_PROTO || err.msg[0] == '\0' || status != 99))
        abort();
    char buf[32];
    if (rc == DRV_OK && !drv_grpc_status_name(status, buf, sizeof(buf))[0])
        abort();
    return 0;
}
