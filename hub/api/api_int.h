/* Private to hub/api: the API's state shared by the daemon (api.c), the resource handlers
 * (resource.c) and the watch streams (watch.c). */
#ifndef DROVER_HUB_API_INT_H
#define DROVER_HUB_API_INT_H

#include <microhttpd.h>
#include <sys/socket.h>
#include <stdint.h>

#include "api/api.h"
#include "drover/buf.h"
#include "drover/doc.h"
#include "drover/selector.h"

#define DRV_API_MAX_REQSTATS 128
#define DRV_API_MAX_INFLIGHT (64u * 1024 * 1024) /* request bodies held at once, all clients */

typedef struct drv_api_reqstat {
    char method[8];
    unsigned code;
    uint64_t n;
} drv_api_reqstat_t;

typedef struct drv_api_gauge {
    char series[256];
    double value;
} drv_api_gauge_t;

typedef struct drv_api_watch drv_api_watch_t;

struct drv_api {
    struct MHD_Daemon *mhd;
    drv_hstore_t *store;
    uint16_t port;
    int epoll_fd;
    size_t max_body;
    size_t inflight; /* request body bytes held now */
    unsigned max_watches;
    unsigned nwatches;
    uint64_t streamed; /* bytes handed to MHD by watch streams, ever (drv_api_run) */
    bool stopping;
    void (*on_change)(void *ctx);
    void *on_change_ctx;
    drv_api_watch_t *watches; /* open streams, doubly linked */
    drv_api_log_provider_t log_provider;
    drv_api_log_sink_t *logs; /* open log streams, doubly linked */
    unsigned nlogs;
    drv_api_reqstat_t reqstats[DRV_API_MAX_REQSTATS];
    size_t nreqstats;
    drv_api_gauge_t gauges[DRV_API_MAX_GAUGES];
    size_t ngauges;
    drv_api_authorize_fn authorize;
    void *authorize_ctx;
    drv_api_tokens_fn tokens;
    void *tokens_ctx;
    drv_api_enroll_fn enroll;
    void *enroll_ctx;
    drv_api_usage_fn usage;
    drv_api_prometheus_fn prometheus;
    void *usage_ctx;
    drv_api_admit_fn admit; /* drv_api_set_admit */
    void *admit_ctx;
    drv_api_seen_fn seen;
    drv_api_late_fn late;
    int64_t late_after_ms;
    void *heartbeats_ctx;
    drv_api_session_fn session;
    void *session_ctx;
    drv_api_status_written_fn status_written;
    void *status_written_ctx;
    char *tls_key, *tls_cert;  /* HTTPS: copies MHD reads from; the key wiped on free */
    unsigned flags, max_conns; /* how MHD was started (drv_api_set_tls_cert restarts it) */
    struct sockaddr_storage addr;
};

/* One request in progress (MHD's con_cls). */
typedef struct drv_api_req {
    drv_api_t *api;
    struct MHD_Connection *conn;
    char method[16];
    const char *url; /* MHD's, valid during the request */
    drv_buf_t body;
    size_t held; /* of api->inflight */
    bool too_big;
    bool busy; /* refused: the in-flight budget was exhausted */
    bool responded;
    bool dry;            /* dryRun=All: the store rolls the write back (drv_hstore_set_dry_run) */
    char warnings[1024]; /* Warning header values ("299 - \"...\""), one a line; "" none */
    drv_api_log_sink_t *log; /* a log request waiting for its first bytes */
} drv_api_req_t;

typedef struct drv_api_match {
    const drv_api_route_t *route;
    char ns[256];
    char name[256];
} drv_api_match_t;

/* Puts the request to the authorizer as method on route (ns, name may be NULL): 0 allowed,
 * else 401/403 with the reason in msg. */
unsigned drv_api_authorize_as(drv_api_req_t *rq, const drv_api_route_t *route, unsigned method,
                              const char *ns, const char *name, bool watch, char *msg,
                              size_t msgsz);

/* The same, and user (may be NULL) gets who the credentials are when they are let through. */
unsigned drv_api_authorize_user(drv_api_req_t *rq, const drv_api_route_t *route, unsigned method,
                                const char *ns, const char *name, bool watch, drv_api_user_t *user,
                                char *msg, size_t msgsz);
/* The first route serving method (DRV_API_M_* bits) on path, with its parameters in m (may be
 * NULL), or NULL; methods (may be NULL) gets every method some route serves on path (0: no
 * route knows the path). */
const drv_api_route_t *drv_api_route_find(const char *path, unsigned method, drv_api_match_t *m,
                                          unsigned *methods);

/* The API wrote to the store: wake the watches, tell the owner. */
void drv_api_changed(drv_api_t *api);

/* Responses; each counts the request for /metrics. body/obj ownership: reply_text takes body
 * (malloc'd), reply_json only reads obj. */
enum MHD_Result drv_api_queue(drv_api_req_t *rq, unsigned code, struct MHD_Response *resp);
enum MHD_Result drv_api_reply_text(drv_api_req_t *rq, unsigned code, const char *ctype, char *body,
                                   size_t len);
enum MHD_Result drv_api_reply_json(drv_api_req_t *rq, unsigned code, const cJSON *obj);
/* A Kubernetes Status; reason NULL: derived from code; diags (may be NULL) become
 * details.causes. */
enum MHD_Result drv_api_reply_status(drv_api_req_t *rq, unsigned code, const char *reason,
                                     const char *msg, const drv_diags_t *diags);
/* 401 with a Kubernetes Status and WWW-Authenticate: Bearer (a missing or refused token). */
enum MHD_Result drv_api_reply_unauthorized(drv_api_req_t *rq, const char *msg);
enum MHD_Result drv_api_reply_error(drv_api_req_t *rq, drv_err_t e, const char *msg);
cJSON *drv_api_status_json(unsigned code, const char *reason, const char *msg,
                           const drv_diags_t *diags);

/* fieldsel.c: ?fieldSelector= (=, ==, != on dotted paths; missing fields read as ""). */
#define DRV_API_FIELDSEL_MAX 8
typedef struct drv_api_fieldreq {
    char path[128];
    char value[256];
    bool neg;
} drv_api_fieldreq_t;
typedef struct drv_api_fieldsel {
    drv_api_fieldreq_t reqs[DRV_API_FIELDSEL_MAX];
    size_t n;
} drv_api_fieldsel_t;
/* false with the reason in why on a malformed selector. */
bool drv_api_fieldsel_parse(const char *s, drv_api_fieldsel_t *out, char *why, size_t whysz);
bool drv_api_fieldsel_matches(const drv_api_fieldsel_t *fs, const cJSON *obj);
/* Drops the items (a JSON array) that fs does not match. */
void drv_api_fieldsel_filter(const drv_api_fieldsel_t *fs, cJSON *items);

/* page.c: sorts items (a JSON array, in place) by sort_by ("PATH" or "-PATH"; NULL or "":
 * the store's order) and keeps the page after cont (a continue token; NULL: the first) of at
 * most limit items (NULL, "" or "0": all), adding continue and remainingItemCount to meta
 * when more follow. false with the reason (naming the parameter) in why. */
bool drv_api_page(cJSON *items, const char *sort_by, const char *limit, const char *cont,
                  cJSON *meta, char *why, size_t whysz);

/* page.c, a list in the store's own order (no sortBy) read a page at a time from the store
 * (drv_hstore_list_page) instead of cut from the whole list: drv_api_page_query checks the
 * same parameters as drv_api_page and, when paged is true, gives the page's limit (0: all)
 * and the continue token's key (NULL: the first page; the strings point into tree). Free with
 * drv_api_pageq_free. drv_api_page_done adds continue and remainingItemCount to meta when
 * remaining objects follow the page's last item, with the tokens drv_api_page makes. */
typedef struct drv_api_pageq {
    bool paged;
    unsigned long limit;
    const char *after_ns, *after_name;
    cJSON *tree;
} drv_api_pageq_t;
bool drv_api_page_query(const char *sort_by, const char *limit, const char *cont,
                        drv_api_pageq_t *q, char *why, size_t whysz);
void drv_api_pageq_free(drv_api_pageq_t *q);
bool drv_api_page_done(cJSON *items, size_t remaining, cJSON *meta);

/* table.c: server-side tables (meta.k8s.io Table), what `kubectl get` asks for with
 * Accept: application/json;as=Table;v=v1;g=meta.k8s.io. drv_api_table renders items (a JSON
 * array of objects of kind kind_name, only read: the caller keeps it) as a Table of version
 * "v1" or "v1beta1", one row per item, with a copy of meta (NULL: {}) as its metadata
 * (resourceVersion, continue, remainingItemCount). include is ?includeObject= (NULL or "":
 * Metadata, each row's object a PartialObjectMetadata; Object: the whole object; None: no
 * object). headers: put the columnDefinitions in; a watch sends them in its first event only
 * and omits them from every later event (Kubernetes' watch encoder does the same), a list or a
 * get always. now_ms (wall clock) dates AGE and LAST SEEN. NULL on failure, with *code 406 (no
 * columns for the kind), 400 (includeObject) or 500 (memory) and the reason in why. */
cJSON *drv_api_table(const char *kind_name, const char *version, const cJSON *items,
                     const cJSON *meta, const char *include, bool headers, int64_t now_ms,
                     unsigned *code, char *why, size_t whysz);
/* Whether drv_api_table has columns for the kind. */
bool drv_api_table_renders(const char *kind_name);
/* Whether the request's Accept header prefers a Table (by q, then order) over plain JSON: then
 * version (n bytes) gets its "v1" or "v1beta1" and *only_table tells that no plain JSON form
 * (application/json or a wildcard) is acceptable at all (a kind without columns is then
 * answered 406). False for a missing header or a plain form first. */
bool drv_api_accepts_table(struct MHD_Connection *conn, char *version, size_t n, bool *only_table);
/* The same on a header value (NULL: none). */
bool drv_api_accepts_table_header(const char *accept, char *version, size_t n, bool *only_table);
/* Answers a list (meta: the list's metadata) or a get (meta NULL: the one item's
 * resourceVersion) as a Table of version, with the request's ?includeObject=. */
enum MHD_Result drv_api_reply_table(drv_api_req_t *rq, const char *kind_name, const cJSON *items,
                                    const cJSON *meta, const char *version);

/* resource.c: every route's handler. */
enum MHD_Result drv_api_handle(drv_api_req_t *rq, const drv_api_match_t *m);
/* resource.c: the request body as one object (JSON, YAML or Kubernetes protobuf, by its
 * Content-Type; caller owns it), or NULL with the refusal queued in *r. */
cJSON *drv_api_read_object(drv_api_req_t *rq, enum MHD_Result *r);
/* review.c: SelfSubjectAccessReview, SelfSubjectRulesReview, SelfSubjectReview. */
enum MHD_Result drv_api_review(drv_api_req_t *rq, const drv_api_match_t *m);
enum MHD_Result drv_api_metrics(drv_api_req_t *rq);

/* tokens.c: /api/v1/tokens through the owner's drv_api_tokens_fn. */
enum MHD_Result drv_api_tokens(drv_api_req_t *rq, const drv_api_match_t *m);

/* tokens.c: the enrollment routes through the owner's drv_api_enroll_fn. */
enum MHD_Result drv_api_enroll(drv_api_req_t *rq, const drv_api_match_t *m);
enum MHD_Result drv_api_usage(drv_api_req_t *rq, const drv_api_match_t *m);
/* resource.c: the request's media type without parameters, lower-cased, into out ("" when
 * there is no Content-Type). */
void drv_api_media_type(drv_api_req_t *rq, char *out, size_t outsz);
/* resource.c: the request body parsed into docs (JSON or YAML, within the API's body cap); on
 * failure a 400 naming the problem is queued (*r) and false returned. */
bool drv_api_body_docs(drv_api_req_t *rq, drv_doc_list_t *docs, enum MHD_Result *r);
/* protobuf.c: a Kubernetes protobuf body (application/vnd.kubernetes.protobuf: "k8s\0" and a
 * runtime.Unknown) as the JSON object kubectl would have sent, for the kinds Drover stores. NULL
 * with the reason, naming the message and field, in why (whysz > 0). The caller owns the result. */
cJSON *drv_api_protobuf_decode(const void *data, size_t len, char *why, size_t whysz);
/* api.c: whether a browser says the request comes from a page of another origin. */
bool drv_api_cross_origin(struct MHD_Connection *conn);

/* Whether the request asks for a watch (?watch=, true in Go's strconv.ParseBool forms, as the
 * apiserver reads it): the one reading the authorizer and the handler share, so a request is
 * never authorized as a list and then served as a watch. */
bool drv_api_wants_watch(struct MHD_Connection *conn);
/* tokens.c: the dashboard's sign-in through the owner's drv_api_session_fn. */
enum MHD_Result drv_api_session(drv_api_req_t *rq, const drv_api_match_t *m);
enum MHD_Result drv_api_discovery(drv_api_req_t *rq, const drv_api_match_t *m);
/* openapi.c: /openapi/v2, /openapi/v3 and its group versions' documents. */
enum MHD_Result drv_api_openapi(drv_api_req_t *rq, const drv_api_match_t *m);

/* logs.c */
enum MHD_Result drv_api_log_start(drv_api_req_t *rq, const drv_api_match_t *m);
/* The access handler was called again for a request waiting in drv_api_log_start. */
enum MHD_Result drv_api_log_continue(drv_api_req_t *rq);
/* The request ended before its log response was queued. */
void drv_api_log_abandon(drv_api_req_t *rq);
/* Wakes streams whose reader hung up; frees nothing. */
void drv_api_log_tick(drv_api_t *api);
int64_t drv_api_log_deadline_ms(const drv_api_t *api);
/* True when the peer of a (suspended) connection has hung up. */
bool drv_api_peer_gone(struct MHD_Connection *conn);

/* ui.c: the dashboard's files (hub/ui/, embedded at build time by cmake/EmbedFiles.cmake into
 * drv_ui_files, ended by an entry whose name is NULL). */
typedef struct drv_ui_file {
    const char *name; /* "index.html"; NULL ends the table */
    const char *type; /* media type */
    const unsigned char *data;
    size_t len;
    const char *etag; /* "\"<hex>\"" */
} drv_ui_file_t;
extern const drv_ui_file_t drv_ui_files[];
extern const size_t drv_ui_nfiles;
/* The Content-Security-Policy of the dashboard's pages. */
#define DRV_API_UI_CSP                                                                             \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; form-action 'self'; "               \
    "frame-ancestors 'none'; base-uri 'none'"
/* Whether url is the dashboard's: "/", "/ui" or under "/ui/" (served without credentials:
 * the files hold no data). */
bool drv_api_ui_path(const char *url);
/* Answers a request for one of the dashboard's paths. */
enum MHD_Result drv_api_ui_serve(drv_api_req_t *rq);

/* watch.c */
/* Takes sel's contents; fs is copied. */
enum MHD_Result drv_api_watch_start(drv_api_req_t *rq, drv_kind_t kind, const char *ns,
                                    drv_selector_t *sel, const drv_api_fieldsel_t *fs);
/* GET /apis/drover.io/v1/watch?kinds=a,b,...: one stream of several kinds, with HEARTBEAT
 * events (docs/DASHBOARD.md). */
enum MHD_Result drv_api_watch_all(drv_api_req_t *rq);
/* A Node as the API shows it: its Ready condition's lastHeartbeatTime from the owner's
 * heartbeats (drv_api_set_heartbeats). obj: a Node (anything else is left alone). */
void drv_api_show_node(drv_api_t *api, cJSON *obj);
/* resource.c: puts obj (of kind k, normalized) to the admission hook (drv_api_set_admit);
 * false when it refused or failed, *r then being the reply (422 naming the field). */
bool drv_api_admit(drv_api_req_t *rq, drv_kind_t k, bool create, cJSON *obj, enum MHD_Result *r);

/* apply.c: POST /apis/drover.io/v1/apply. */
enum MHD_Result drv_api_apply(drv_api_req_t *rq);
/* Resumes streams whose keep-alive is due. */
void drv_api_watch_tick(drv_api_t *api);
/* Milliseconds until the next keep-alive is due; -1 if no stream is open. */
int64_t drv_api_watch_deadline_ms(const drv_api_t *api);

#endif
