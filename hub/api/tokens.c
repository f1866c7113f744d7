/* The token routes (/api/v1/tokens, /api/v1/tokens/{name}) and the enrollment routes
 * (/api/v1/enroll, /api/v1/enroll/renew, /api/v1/nodes/{name}/revoke, /api/v1/identities): the
 * API only parses and answers; what a token or an identity is and who may hold one is the
 * owner's business (hub/auth and hub/enroll, through drv_api_opts_t), so that the API stays
 * free of credentials. */
#include "api/api_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"

/* The request body as a JSON object into *body; false when the reply (400) is queued in *r. */
static bool body_object(drv_api_req_t *rq, cJSON **body, enum MHD_Result *r)
{
    const char *text = drv_buf_str(&rq->body);
    size_t i = 0;
    while (i < rq->body.len && isspace((unsigned char)text[i]))
        i++;
    if (i == rq->body.len) {
        *r = drv_api_reply_status(rq, 400, NULL, "request body is empty", NULL);
        return false;
    }
    *body = cJSON_ParseWithLength(text, rq->body.len);
    if (!cJSON_IsObject(*body)) {
        cJSON_Delete(*body);
        *body = NULL;
        *r = drv_api_reply_status(rq, 400, NULL, "request body is not a JSON object", NULL);
        return false;
    }
    return true;
}

void drv_api_set_enroll(drv_api_t *api, drv_api_enroll_fn fn, void *ctx)
{
    api->enroll = fn;
    api->enroll_ctx = ctx;
}

enum MHD_Result drv_api_enroll(drv_api_req_t *rq, const drv_api_match_t *m)
{
    drv_api_t *api = rq->api;
    if (!api->enroll)
        return drv_api_reply_status(rq, 404, "NotFound", "enrollment is not enabled on this hub",
                                    NULL);
    drv_api_op_t op = m->route->op;
    if (rq->body.len > DRV_API_ENROLL_MAX_BODY) {
        char msg[128];
        drv_fmt_cut(msg, sizeof(msg), "request body is larger than the limit of %u bytes",
                    DRV_API_ENROLL_MAX_BODY);
        return drv_api_reply_status(rq, 413, NULL, msg, NULL);
    }
    cJSON *body = NULL;
    enum MHD_Result r = MHD_NO;
    if (!strcmp(rq->method, "POST") && op != DRV_API_OP_NODE_REVOKE && !body_object(rq, &body, &r))
        return r;
    const char *authz =
        MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    cJSON *out = NULL;
    unsigned code = 0;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t e =
        api->enroll(api->enroll_ctx, op, *m->name ? m->name : NULL, authz, body, &out, &code, &err);
    cJSON_Delete(body);
    if (e != DRV_OK) {
        cJSON_Delete(out);
        if (code == 401) /* as the authorizer answers a refused token */
            return drv_api_reply_unauthorized(rq, drv_error_msg(&err));
        if (code >= 400 && code < 600)
            return drv_api_reply_status(rq, code, NULL, drv_error_msg(&err), NULL);
        return drv_api_reply_error(rq, e, drv_error_msg(&err));
    }
    r = drv_api_reply_json(rq, code ? code : 200, out);
    cJSON_Delete(out);
    return r;
}

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

void drv_api_set_session(drv_api_t *api, drv_api_session_fn fn, void *ctx)
{
    api->session = fn;
    api->session_ctx = ctx;
}

/* /apis/drover.io/v1/session: the dashboard's sign-in (POST), its session (GET), sign-out
 * (DELETE), through the owner's drv_api_session_fn; the answer may set the cookie. */
enum MHD_Result drv_api_session(drv_api_req_t *rq, const drv_api_match_t *m)
{
    (void)m;
    drv_api_t *api = rq->api;
    if (!api->session)
        return drv_api_reply_status(rq, 404, "NotFound",
                                    "sign-in is not enabled on this hub (it runs without access "
                                    "control: --no-auth)",
                                    NULL);
    unsigned bit = !strcmp(rq->method, "POST")     ? DRV_API_M_POST
                   : !strcmp(rq->method, "DELETE") ? DRV_API_M_DELETE
                                                   : DRV_API_M_GET;
    /* A page of another origin can neither sign a browser in to an account of its choosing
     * (a form post is never application/json without a CORS preflight, which the hub never
     * grants) nor sign it out. */
    if (drv_api_cross_origin(rq->conn))
        return drv_api_reply_status(rq, 403, NULL, "forbidden: a request from another origin",
                                    NULL);
    _cleanup_cjson_ cJSON *body = NULL;
    if (bit == DRV_API_M_POST) {
        char mt[64];
        drv_api_media_type(rq, mt, sizeof(mt));
        if (strcmp(mt, "application/json"))
            return drv_api_reply_status(rq, 415, NULL,
                                        "Content-Type: sign-in takes application/json", NULL);
        body = cJSON_ParseWithLength(drv_buf_str(&rq->body), rq->body.len);
        if (!cJSON_IsObject(body))
            return drv_api_reply_status(
                rq, 400, NULL, "request body is not a JSON object ({\"token\": ...})", NULL);
    }
    const char *cookie =
        MHD_lookup_connection_value(rq->conn, MHD_COOKIE_KIND, DRV_API_SESSION_COOKIE);
    _cleanup_cjson_ cJSON *out = NULL;
    char set_cookie[512];
    unsigned code = 0;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t e =
        api->session(api->session_ctx, bit, cookie,
                     MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "X-CSRF-Token"),
                     api->tls_key != NULL, body, &out, set_cookie, sizeof(set_cookie), &code, &err);
    if (e != DRV_OK) {
        if (code == 401)
            return drv_api_reply_unauthorized(rq, drv_error_msg(&err));
        if (code >= 400 && code < 600)
            return drv_api_reply_status(rq, code, NULL, drv_error_msg(&err), NULL);
        return drv_api_reply_error(rq, e, drv_error_msg(&err));
    }
    char *s = cJSON_PrintUnformatted(out);
    if (!s)
        return drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (*set_cookie)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, set_cookie);
    return drv_api_queue(rq, code ? code : 200, resp);
}
