/* The API's pod log route served through the MQTT bridge: a log request to the pod's node,
 * its chunks written to the HTTP stream, the agent's errors and silence turned into HTTP
 * errors. */
#include <stdio.h>
#include <string.h>

#include "bridge/bridge.h"
#include "drover/fmt.h"
#include "hub.h"

static void on_part(void *ctx, const drv_bridge_logs_part_t *part)
{
    drv_api_log_sink_t *sink = ctx;
    if (part->len)
        drv_api_log_write(sink, part->data, part->len);
    if (!part->eof)
        return;
    unsigned code = 0;
    if (part->timed_out)
        code = 504;
    else if (part->error)
        code = strstr(part->error, "not found") ? 404 : 400;
    drv_api_log_end(sink, code, part->error);
}

static drv_err_t start(void *ctx, const char *node, const char *ns, const char *pod,
                       const char *container, uint64_t tail_bytes, bool follow,
                       drv_api_log_sink_t *sink, char *handle, size_t handlesz, drv_error_t *err)
{
    drv_hub_t *hub = ctx;
    drv_proto_logs_req_t req = {.tail_bytes = tail_bytes, .follow = follow};
    if ((size_t)snprintf(req.pod, sizeof(req.pod), "%s", pod) >= sizeof(req.pod) ||
        (size_t)snprintf(req.namespace_, sizeof(req.namespace_), "%s", ns) >=
            sizeof(req.namespace_) ||
        (size_t)snprintf(req.container, sizeof(req.container), "%s", container) >=
            sizeof(req.container))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "pod, namespace or container too long");
    drv_err_t e = drv_bridge_logs_start(drv_hub_bridge(hub), node, &req, on_part, sink, err);
    if (e == DRV_OK && drv_fmt(handle, handlesz, "%s", req.id) != DRV_OK) {
        drv_bridge_logs_cancel(drv_hub_bridge(hub), req.id); /* the caller could not end it */
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "log request: handle too long");
    }
    return e;
}

static void cancel(void *ctx, const char *handle)
{
    drv_bridge_logs_cancel(drv_hub_bridge(ctx), handle);
}

void drv_hub_serve_logs(drv_hub_t *hub)
{
    drv_api_log_provider_t p = {.start = start, .cancel = cancel, .ctx = hub};
    drv_api_set_log_provider(drv_hub_api(hub), &p);
}
