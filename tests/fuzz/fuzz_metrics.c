/* libFuzzer target for the usage message (shared/src/protocol_metrics.c): any input parsed as
 * a NodeMetricsReport from node "pi-1"; what parses must hold what protocol.h promises and
 * write back to text that parses to the same values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drover/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    drv_proto_metrics_t m;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_proto_metrics_parse((const char *)data, size, "pi-1", &m, &err) != DRV_OK) {
        if (err.msg[0] == '\0')
            abort(); /* a refusal must say why */
        return 0;
    }
    if (m.n_pods > DRV_PROTO_METRICS_PODS_MAX || m.window_ms <= 0 || strcmp(m.node, "pi-1"))
        abort();
    for (size_t i = 0; i < m.n_pods; i++)
        if (m.pods[i].n_ctrs > DRV_PROTO_METRICS_CTRS_MAX)
            abort();
    char *text = NULL;
    size_t len = 0;
    if (drv_proto_metrics_format(&m, &text, &len, &err) == DRV_OK) {
        drv_proto_metrics_t back;
        if (drv_proto_metrics_parse(text, len, "pi-1", &back, &err) != DRV_OK)
            abort(); /* what was read must be writable and readable again */
        if (back.n_pods != m.n_pods || back.seq != m.seq || back.cpu_nanocores != m.cpu_nanocores)
            abort();
        drv_proto_metrics_free(&back);
        free(text);
    }
    drv_proto_metrics_free(&m);
    return 0;
}
