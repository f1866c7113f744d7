/* The token routes (/api/v1/tokens, /api/v1/tokens/{name}): the API only parses and answers;
 * what a token is and who may hold one is the owner's business (hub/auth, through
 * drv_api_opts_t.tokens), so that the API stays free of credentials. */
#include "api/api_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

enum MHD_Result drv_api_tokens(drv_api_req_t *rq, const drv_api_match_t *m)
{
    drv_api_t *api = rq->api;
    if (!api->tokens)
        return drv_api_reply_status(rq, 404, "NotFound",
                                    "token management is not enabled on this hub", NULL);
    unsigned bit = 0;
    if (!strcmp(rq->method, "POST"))
        bit = DRV_API_M_POST;
    else if (!strcmp(rq->method, "DELETE"))
        bit = DRV_API_M_DELETE;
    else
        bit = DRV_API_M_GET;
    cJSON *body = NULL;
    if (bit == DRV_API_M_POST) {
        const char *text = drv_buf_str(&rq->body);
        size_t i = 0;
        while (i < rq->body.len && isspace((unsigned char)text[i]))
            i++;
        if (i == rq->body.len)
            return drv_api_reply_status(rq, 400, NULL, "request body is empty", NULL);
        body = cJSON_ParseWithLength(text, rq->body.len);
        if (!cJSON_IsObject(body)) {
            cJSON_Delete(body);
            return drv_api_reply_status(rq, 400, NULL, "request body is not a JSON object", NULL);
        }
    }
    cJSON *out = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    const char *id = m->route->op == DRV_API_OP_TOKEN ? m->name : NULL;
    drv_err_t e = api->tokens(api->tokens_ctx, bit, id, body, &out, &err);
    cJSON_Delete(body);
    if (e != DRV_OK) {
        cJSON_Delete(out);
        return drv_api_reply_error(rq, e, drv_error_msg(&err));
    }
    enum MHD_Result r = drv_api_reply_json(rq, bit == DRV_API_M_POST ? 201 : 200, out);
    cJSON_Delete(out);
    return r;
}
