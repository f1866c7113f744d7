/* The hub's REST API: Kubernetes paths and semantics over HTTP (libmicrohttpd), JSON bodies
 * (YAML accepted too), Server-Sent-Event watches resumable by resourceVersion, /healthz and
 * /metrics. Single-threaded: the daemon has no threads of its own; the hub's one event loop
 * polls drv_api_fd() and calls drv_api_run(), so the store is only touched from that loop.
 * Everything a client can make the hub hold is bounded (body size, connections, watches). */
#ifndef DROVER_HUB_API_H
#define DROVER_HUB_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "drover/buf.h"
#include "drover/error.h"
#include "drover/model.h"
#include "store/store.h"

#define DRV_API_DEFAULT_BIND "127.0.0.1"
#define DRV_API_DEFAULT_MAX_BODY (3u * 1024 * 1024)
#define DRV_API_DEFAULT_MAX_CONNS 256u
#define DRV_API_DEFAULT_MAX_WATCHES 128u
#define DRV_API_KEEPALIVE_MS 15000
/* How often a Kubernetes watch that allows bookmarks gets one. */
#define DRV_API_BOOKMARK_MS 10000
#define DRV_API_MAX_GAUGES 256

typedef struct drv_api drv_api_t;
typedef struct drv_api_route drv_api_route_t;

/* Who made a request, as the authorizer knows it: Kubernetes' UserInfo, which a
 * SelfSubjectReview (kubectl auth whoami) answers. */
#define DRV_API_USER_GROUPS 4
typedef struct drv_api_user {
    bool known;         /* the authorizer filled it in */
    char username[320]; /* "drover:token:<id>", "system:serviceaccount:<ns>:<name>" */
    char uid[64];       /* the token's id; a service account's uid */
    char role[16];      /* "admin", "operator", "viewer" */
    char groups[DRV_API_USER_GROUPS][96];
    size_t ngroups;
    char description[257]; /* the token's; "" none */
} drv_api_user_t;

/* ---- access control ----
 * With an authorizer set, every request except GET /healthz is put to it as soon as its
 * headers have arrived, before any of its body is read; a request to an unknown path too
 * (route NULL), so that an unauthenticated client learns nothing, not even which paths exist.
 * The API answers a refusal with a Kubernetes Status: 401 Unauthorized (with
 * WWW-Authenticate: Bearer) or 403 Forbidden. Watch streams are GETs on a collection and go
 * through the same check. Without an authorizer every request is allowed. */
typedef struct drv_api_authz {
    const char *authorization;    /* the Authorization header as sent; NULL: none */
    unsigned method;              /* one DRV_API_M_* bit (HEAD is GET); 0: another method */
    const drv_api_route_t *route; /* NULL: no route serves this path with this method */
    const char *ns;               /* {namespace} from the path; "" when none */
    const char *name;             /* {name} from the path; "" when none */
    drv_kind_t kind;              /* the route's kind; DRV_KIND_UNKNOWN without one */
    bool watch;                   /* a GET on a collection with ?watch=true */
    /* The dashboard's credentials (docs/DASHBOARD.md), used when there is no Authorization
     * header: the drover_session cookie, the X-CSRF-Token header (required with the cookie
     * on everything but GET), and whether an Origin header names another origin than the
     * request's Host (refused with a cookie). */
    const char *session;
    const char *csrf;
    bool cross_origin;
    /* May be NULL; else, when the request is let through (0) on a credential, the authorizer
     * fills it with who that credential is. */
    drv_api_user_t *user;
} drv_api_authz_t;

/* 0: let the request through; 401: no or bad credentials; 403: not allowed (any other value
 * is taken as 403). msg (msgsz bytes) gets the reason shown in the Status. All pointers are
 * valid only during the call. */
typedef unsigned (*drv_api_authorize_fn)(void *ctx, const drv_api_authz_t *req, char *msg,
                                         size_t msgsz);

/* Token management behind /api/v1/tokens (routes DRV_API_OP_TOKENS / DRV_API_OP_TOKEN):
 * method DRV_API_M_GET with id NULL lists, with an id gets one; DRV_API_M_POST creates from
 * body (a JSON object); DRV_API_M_DELETE revokes id. On DRV_OK *out is the JSON answer (the
 * API frees it; 201 for a create, 200 otherwise); errors map to Statuses as the store's do
 * (DRV_ERR_INVALID 400, DRV_ERR_NOTFOUND 404, DRV_ERR_CONFLICT 409, ...). */
typedef drv_err_t (*drv_api_tokens_fn)(void *ctx, unsigned method, const char *id,
                                       const cJSON *body, cJSON **out, drv_error_t *err);

/* Enrollment behind the DRV_API_OP_ENROLL... routes: op is the route's, name its {name} (NULL
 * if none), authorization the request's Authorization header (NULL if none), body the request
 * body (a JSON object; NULL for GET and DELETE). On DRV_OK *out is the JSON answer (the API
 * frees it) and *code its HTTP status (0: 200). On failure *code may name the status (401,
 * 403, ...); 0 maps err's code as the store's errors are. Bodies over DRV_API_ENROLL_MAX_BODY
 * are refused (413) before the call. */
#define DRV_API_ENROLL_MAX_BODY (64u * 1024)
typedef drv_err_t (*drv_api_enroll_fn)(void *ctx, unsigned op /* drv_api_op_t */, const char *name,
                                       const char *authorization, const cJSON *body, cJSON **out,
                                       unsigned *code, drv_error_t *err);

typedef struct drv_api_opts {
    const char *bind_addr; /* IPv4 or IPv6 literal; NULL: DRV_API_DEFAULT_BIND */
    uint16_t port;         /* 0: pick a free port (drv_api_port() tells) */
    drv_hstore_t *store;   /* required; borrowed, must outlive the API */
    size_t max_body;       /* request body cap in bytes (over it: 413); 0: default */
    unsigned max_conns;    /* concurrent connections; 0: default */
    unsigned max_watches;  /* concurrent watch streams (over it: 429); 0: default */
    /* Called (may be NULL) after every write the API made to the store, on the loop's thread,
     * so that controllers can react; it may write to the store itself. */
    void (*on_change)(void *ctx);
    void *on_change_ctx;
    /* Access control (see above); NULL: none. */
    drv_api_authorize_fn authorize;
    void *authorize_ctx;
    /* Token management; NULL: the token routes answer 404 with a message saying so. */
    drv_api_tokens_fn tokens;
    void *tokens_ctx;
    /* Enrollment; NULL: those routes answer 404 with a message saying so (see also
     * drv_api_set_enroll). */
    drv_api_enroll_fn enroll;
    void *enroll_ctx;
    /* HTTPS: both PEM texts (the server's private key and its certificate, optionally followed
     * by the chain) or neither (plain HTTP). Copied; the caller may wipe its key afterwards. */
    const char *tls_key_pem;
    const char *tls_cert_pem;
} drv_api_opts_t;

/* The dashboard's sign-in behind /apis/drover.io/v1/session (route DRV_API_OP_SESSION; put
 * to the authorizer like every route, which lets it through: the handler checks what it is
 * given). method: POST signs in with body {"token": ...}; GET tells the session cookie names
 * (cookie: the drover_session cookie's value, NULL if none); DELETE signs out (csrf: the
 * X-CSRF-Token header, NULL if none, which must be the session's). Requests from another
 * origin, and a sign-in that is not application/json, are refused before it is called. On DRV_OK
 * *out is the answer (the API frees it), *code its status (0: 200) and set_cookie (scsz bytes) a
 * Set-Cookie header value to send ("" for none); secure: the API serves HTTPS (the cookie then says
 * Secure). On failure *code may name the status (401), else err's code maps. */
#define DRV_API_SESSION_COOKIE "drover_session"
typedef drv_err_t (*drv_api_session_fn)(void *ctx, unsigned method, const char *cookie,
                                        const char *csrf, bool secure, const cJSON *body,
                                        cJSON **out, char *set_cookie, size_t scsz, unsigned *code,
                                        drv_error_t *err);
void drv_api_set_session(drv_api_t *api, drv_api_session_fn fn, void *ctx);

/* Admission before the API stores a created (create true) or replaced object: fn may change obj
 * (normalized; the hub's allocators fill in a Service's clusterIP and nodePorts) or refuse it
 * with DRV_ERR_INVALID, field (fieldsz bytes) naming the field and err saying why: the client
 * gets 422 Invalid with that cause. Other errors map as the store's. NULL fn: none. */
typedef drv_err_t (*drv_api_admit_fn)(void *ctx, drv_kind_t kind, bool create, cJSON *obj,
                                      char *field, size_t fieldsz, drv_error_t *err);
void drv_api_set_admit(drv_api_t *api, drv_api_admit_fn fn, void *ctx);

/* Sets (or replaces) the enrollment handler after drv_api_new, for an owner that is created
 * after the API. */
void drv_api_set_enroll(drv_api_t *api, drv_api_enroll_fn fn, void *ctx);

/* Usage (metrics.k8s.io/v1beta1 and /apis/drover.io/v1/usage, route op DRV_API_OP_USAGE):
 * pattern is the matched route's, ns and name its parameters (NULL when absent),
 * label_selector and window the query's (NULL when absent). On DRV_OK *out is the answer (the
 * API frees it, 200); errors map as the store's (NOTFOUND 404, INVALID 400). */
typedef drv_err_t (*drv_api_usage_fn)(void *ctx, const char *pattern, const char *ns,
                                      const char *name, const char *label_selector,
                                      const char *window, cJSON **out, drv_error_t *err);
/* Appends more series to /metrics (Prometheus text). */
typedef drv_err_t (*drv_api_prometheus_fn)(void *ctx, struct drv_buf *out);
/* Sets the usage handler and the extra /metrics series (either may be NULL: the usage routes
 * then answer 404 saying so). */
void drv_api_set_usage(drv_api_t *api, drv_api_usage_fn fn, drv_api_prometheus_fn prom, void *ctx);

/* Heartbeats, kept in the owner's memory (the MQTT bridge), not in the store: seen gives a
 * node's last sign of life (ms since the epoch; -1: unknown), which the API shows as its
 * Ready condition's lastHeartbeatTime in lists, gets and watch events; late adds to out (a
 * JSON object) "<node>": "<last seen, RFC 3339>" for every node silent for more than
 * after_ms at now_ms, which the dashboard's stream sends every DRV_API_HEARTBEAT_MS. Either
 * may be NULL. */
#define DRV_API_HEARTBEAT_MS 5000
typedef int64_t (*drv_api_seen_fn)(void *ctx, const char *node);
typedef void (*drv_api_late_fn)(void *ctx, int64_t now_ms, int64_t after_ms, cJSON *out);
void drv_api_set_heartbeats(drv_api_t *api, drv_api_seen_fn seen, drv_api_late_fn late,
                            int64_t late_after_ms, void *ctx);

/* Binds and starts listening. *out is owned by the caller (drv_api_free). */
DRV_NODISCARD drv_err_t drv_api_new(const drv_api_opts_t *opts, drv_api_t **out, drv_error_t *err);
/* Stops serving: open watch streams end, connections close. NULL is allowed. */
void drv_api_free(drv_api_t *api);

/* Serves another certificate (PEM, optionally followed by its chain) with the same private
 * key: the HTTPS server restarts on the same listening socket. For the owner, right after
 * drv_api_new (open watch or log streams: DRV_ERR_AGAIN); connections in progress are
 * dropped. A certificate that does not load is DRV_ERR_INVALID and the old one stays.
 * Without HTTPS: DRV_ERR_INVALID. */
DRV_NODISCARD drv_err_t drv_api_set_tls_cert(drv_api_t *api, const char *cert_pem,
                                             drv_error_t *err);

/* The port actually bound. */
uint16_t drv_api_port(const drv_api_t *api);
/* Whether the API serves HTTPS. */
bool drv_api_tls(const drv_api_t *api);

/* One file descriptor (an epoll set) that becomes readable when drv_api_run() has work; the
 * caller polls it for POLLIN. Owned by the API. */
int drv_api_fd(const drv_api_t *api);
/* Milliseconds until drv_api_run() must be called even without activity on drv_api_fd()
 * (connection timeouts, watch keep-alives); -1 for no deadline. */
int drv_api_timeout_ms(const drv_api_t *api);
/* One non-blocking round: accepts, reads, answers, streams. */
void drv_api_run(drv_api_t *api);

/* The store changed outside the API (controllers, MQTT): wake the watch streams so they send
 * the new events. Cheap; call after every batch of writes. The API calls it itself after its
 * own writes. */
void drv_api_notify(drv_api_t *api);

/* Sets a gauge shown by /metrics, the whole series given as Prometheus writes it, e.g.
 * "drover_nodes{state=\"Ready\"}". A name that is not a valid metric name, or labels not in
 * braces, is DRV_ERR_INVALID; more than DRV_API_MAX_GAUGES series is DRV_ERR_RANGE. */
DRV_NODISCARD drv_err_t drv_api_set_gauge(drv_api_t *api, const char *series, double value,
                                          drv_error_t *err);

/* ---- pod logs ----
 * GET /api/v1/namespaces/NS/pods/NAME/log?container=C&tailLines=N&follow=true answers
 * text/plain with the log, streamed; the bytes come from a provider (the hub's MQTT bridge
 * asking the node's agent). The API checks the pod, its node and the container name first
 * (404, 400), then waits for the provider's first bytes or its error. */
typedef struct drv_api_log_sink drv_api_log_sink_t;

typedef struct drv_api_log_provider {
    /* Starts fetching; the provider then calls drv_api_log_write and finally drv_api_log_end
     * on sink (never from inside start). handle (handlesz bytes) names the fetch for cancel.
     * An error answers the request (DRV_ERR_AGAIN: 503). tail_bytes 0: the whole log. */
    drv_err_t (*start)(void *ctx, const char *node, const char *ns, const char *pod,
                       const char *container, uint64_t tail_bytes, bool follow,
                       drv_api_log_sink_t *sink, char *handle, size_t handlesz, drv_error_t *err);
    /* The reader went away before drv_api_log_end: stop, and never touch sink again. */
    void (*cancel)(void *ctx, const char *handle);
    void *ctx;
} drv_api_log_provider_t;

/* Called after a client wrote the status of a Node, or of a Pod bound to a node (the status
 * subresource), with that node's name: what only its agent knows for sure was overwritten
 * (the hub then asks the node for a full report: drv_bridge_report_stale). */
typedef void (*drv_api_status_written_fn)(void *ctx, const char *node);
void drv_api_set_status_written(drv_api_t *api, drv_api_status_written_fn fn, void *ctx);

/* Without a provider the log route answers 503. p is copied. */
void drv_api_set_log_provider(drv_api_t *api, const drv_api_log_provider_t *p);
/* Log bytes for the reader (buffered up to a cap; beyond it the stream ends with a note). */
void drv_api_log_write(drv_api_log_sink_t *sink, const void *data, size_t len);
/* No more bytes. error non-NULL: why; if nothing was sent yet, the request is answered with
 * HTTP code (e.g. 404, 400, 504) and error as its message. */
void drv_api_log_end(drv_api_log_sink_t *sink, unsigned code, const char *error);

/* The route table, for documentation and for the authorization layer. */
enum {
    DRV_API_M_GET = 1u << 0,
    DRV_API_M_POST = 1u << 1,
    DRV_API_M_PUT = 1u << 2,
    DRV_API_M_PATCH = 1u << 3,
    DRV_API_M_DELETE = 1u << 4,
};

typedef enum {
    DRV_API_OP_COLLECTION, /* list/watch (GET), create (POST) */
    DRV_API_OP_ITEM,       /* get, update, patch, delete */
    DRV_API_OP_STATUS,     /* the status subresource: get, update, patch */
    DRV_API_OP_HEALTHZ,
    DRV_API_OP_METRICS,
    DRV_API_OP_LOG,    /* a pod's container log (GET), from its node's agent */
    DRV_API_OP_TOKENS, /* the API tokens: list (GET), create (POST) */
    DRV_API_OP_TOKEN,  /* one token: get (GET), revoke (DELETE) */
    /* Enrollment (through drv_api_opts_t.enroll). The first two need no API token: the
     * authorizer lets them through and the owner checks a bootstrap token / the CSR. */
    DRV_API_OP_ENROLL,       /* a device enrols (POST) */
    DRV_API_OP_ENROLL_RENEW, /* an enrolled device renews its certificate (POST) */
    DRV_API_OP_NODE_REVOKE,  /* /api/v1/nodes/{name}/revoke (POST) */
    DRV_API_OP_IDENTITIES,   /* the enrolled identities: list (GET) */
    DRV_API_OP_IDENTITY,     /* one identity: forget (DELETE) */
    DRV_API_OP_USAGE,        /* current usage and its history (GET) */
    DRV_API_OP_DISCOVERY,    /* /api, /apis, /version and the group versions' lists (GET) */
    DRV_API_OP_SESSION,      /* the dashboard's sign-in: POST, GET, DELETE (no API token) */
    DRV_API_OP_WATCH_ALL,    /* one event stream of several kinds (GET; never Secrets) */
    DRV_API_OP_APPLY,        /* create-or-replace of manifests (POST; each object authorized
                                as the POST/PUT on its own route) */
    DRV_API_OP_SCALE,        /* a Deployment's scale subresource (autoscaling/v1 Scale): get,
                                update, patch */
    DRV_API_OP_OPENAPI,      /* /openapi/v2 and /openapi/v3/... documents (GET) */
    DRV_API_OP_REVIEW,       /* questions about oneself (POST, any role): SelfSubjectAccessReview,
                                SelfSubjectRulesReview, SelfSubjectReview */
} drv_api_op_t;

struct drv_api_route {
    const char *pattern; /* "/api/v1/namespaces/{namespace}/pods/{name}"; "{...}" is one
                            non-empty path segment */
    unsigned methods;    /* DRV_API_M_* bits */
    drv_kind_t kind;     /* DRV_KIND_UNKNOWN for /healthz and /metrics */
    drv_api_op_t op;
};

/* Every route the API serves (static storage); *n gets the count. */
const drv_api_route_t *drv_api_routes(size_t *n);
/* "GET, POST" for DRV_API_M_* bits, into out (at least 40 bytes, else ""). Returns out. */
const char *drv_api_methods_str(unsigned methods, char *out, size_t outsz);
/* Writes every route to out, one a line: "PATTERN METHOD,METHOD,..." (drover-hub
 * --print-routes). Returns 0, or -1 when out could not be written. */
int drv_api_print_routes(FILE *out);

#endif
