/* The dashboard's files (docs/DASHBOARD.md): "/" and "/ui" redirect to "/ui/", which is
 * index.html; "/ui/NAME" is any other file of hub/ui/. They are embedded in the binary, need
 * no credentials (they hold no data: everything the page shows comes from the API, under its
 * RBAC), and go out with a strict Content-Security-Policy and an ETag (no-cache: the browser
 * asks again and gets 304 while the hub's files are the same). */
#include "api/api_int.h"

#include <string.h>

bool drv_api_ui_path(const char *url)
{
    return !strcmp(url, "/") || !strcmp(url, "/ui") || !strncmp(url, "/ui/", 4);
}

static const drv_ui_file_t *find(const char *name)
{
    for (size_t i = 0; i < drv_ui_nfiles; i++)
        if (!strcmp(drv_ui_files[i].name, name))
            return &drv_ui_files[i];
    return NULL;
}

enum MHD_Result drv_api_ui_serve(drv_api_req_t *rq)
{
    if (strcmp(rq->method, "GET") && strcmp(rq->method, "HEAD"))
        return drv_api_reply_status(rq, 405, NULL, "the dashboard's files are only read (GET)",
                                    NULL);
    const char *url = rq->url;
    if (!strcmp(url, "/") || !strcmp(url, "/ui")) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        if (!resp)
            return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, "/ui/");
        return drv_api_queue(rq, 302, resp);
    }
    const char *name = url + 4;
    const drv_ui_file_t *f = find(*name ? name : "index.html");
    if (!f || strchr(name, '/'))
        return drv_api_reply_status(rq, 404, "NotFound", "the dashboard has no such file", NULL);
    const char *inm =
        MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    bool same = inm && !strcmp(inm, f->etag);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        same ? 0 : f->len, same ? (void *)"" : (void *)f->data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    if (!same)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, f->type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, f->etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "Content-Security-Policy", DRV_API_UI_CSP);
    MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
    return drv_api_queue(rq, same ? 304 : 200, resp);
}
