/* The usage routes (DRV_API_OP_USAGE): metrics.k8s.io/v1beta1 and the usage history, answered
 * by the handler the hub sets (drv_api_set_usage), which knows where usage is kept. */
#include <microhttpd.h>

#include "api/api.h"
#include "api/api_int.h"
#include "drover/cleanup.h"

void drv_api_set_usage(drv_api_t *api, drv_api_usage_fn fn, drv_api_prometheus_fn prom, void *ctx)
{
    api->usage = fn;
    api->prometheus = prom;
    api->usage_ctx = ctx;
}

enum MHD_Result drv_api_usage(drv_api_req_t *rq, const drv_api_match_t *m)
{
    drv_api_t *api = rq->api;
    if (!api->usage)
        return drv_api_reply_status(rq, 404, "NotFound",
                                    "usage is not collected on this hub (it has no broker)", NULL);
    const char *sel = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "labelSelector");
    const char *window = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "window");
    cJSON *out = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t e = api->usage(api->usage_ctx, m->route->pattern, *m->ns ? m->ns : NULL,
                             *m->name ? m->name : NULL, sel, window, &out, &err);
    if (e != DRV_OK) {
        cJSON_Delete(out);
        return drv_api_reply_error(rq, e, drv_error_msg(&err));
    }
    enum MHD_Result r = drv_api_reply_json(rq, 200, out);
    cJSON_Delete(out);
    return r;
}
