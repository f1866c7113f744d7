/* The hub's REST API on libmicrohttpd in external epoll mode: request bodies are gathered
 * under a cap, routed through one route table, validated by drv_model_normalize and applied
 * to the store; errors answer with Kubernetes Status objects. Watches are SSE streams whose
 * connections are suspended while there is nothing to send and resumed by drv_api_notify(). */
#include "api/api.h"
#include "api/api_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "drover/fmt.h"
#include "drover/proc.h"
#include "drover/cleanup.h"
#include "drover/doc.h"
#include "drover/log.h"

/* ---- route table ---- */

#define M_ITEM (DRV_API_M_GET | DRV_API_M_PUT | DRV_API_M_PATCH | DRV_API_M_DELETE)
#define M_STATUS (DRV_API_M_GET | DRV_API_M_PUT | DRV_API_M_PATCH)
#define M_COLL (DRV_API_M_GET | DRV_API_M_POST)

#define NAMESPACED(prefix, plural, kind)                                                           \
    {prefix "/namespaces/{namespace}/" plural, M_COLL, kind, DRV_API_OP_COLLECTION},               \
        {prefix "/namespaces/{namespace}/" plural "/{name}", M_ITEM, kind, DRV_API_OP_ITEM},       \
        {prefix "/namespaces/{namespace}/" plural "/{name}/status", M_STATUS, kind,                \
         DRV_API_OP_STATUS},                                                                       \
    {                                                                                              \
        prefix "/" plural, DRV_API_M_GET, kind, DRV_API_OP_COLLECTION                              \
    }

static const drv_api_route_t routes[] = {
    {"/healthz", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_HEALTHZ},
    {"/version", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_DISCOVERY},
    {"/api", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_DISCOVERY},
    {"/api/v1", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_DISCOVERY},
    {"/apis", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_DISCOVERY},
    {"/apis/apps/v1", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_DISCOVERY},
    {"/apis/autoscaling/v2", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_DISCOVERY},
    {"/apis/discovery.k8s.io/v1", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_DISCOVERY},
    {"/apis/networking.k8s.io/v1", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_DISCOVERY},
    {"/apis/storage.k8s.io/v1", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_DISCOVERY},
    {"/apis/scheduling.k8s.io/v1", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_DISCOVERY},
    {"/apis/rbac.authorization.k8s.io/v1", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_DISCOVERY},
    {"/apis/batch/v1", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_DISCOVERY},
    {"/openapi/v2", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_OPENAPI},
    {"/openapi/v3", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_OPENAPI},
    {"/openapi/v3/api/v1", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_OPENAPI},
    {"/openapi/v3/apis/apps/v1", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_OPENAPI},
    {"/openapi/v3/apis/autoscaling/v2", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_OPENAPI},
    {"/openapi/v3/apis/discovery.k8s.io/v1", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_OPENAPI},
    {"/openapi/v3/apis/networking.k8s.io/v1", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_OPENAPI},
    {"/openapi/v3/apis/storage.k8s.io/v1", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_OPENAPI},
    {"/openapi/v3/apis/scheduling.k8s.io/v1", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_OPENAPI},
    {"/openapi/v3/apis/rbac.authorization.k8s.io/v1", DRV_API_M_GET, DRV_KIND_UNKNOWN,
     DRV_API_OP_OPENAPI},
    {"/openapi/v3/apis/batch/v1", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_OPENAPI},
    {"/metrics", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_METRICS},
    NAMESPACED("/api/v1", "pods", DRV_KIND_POD),
    {"/api/v1/namespaces/{namespace}/pods/{name}/log", DRV_API_M_GET, DRV_KIND_POD, DRV_API_OP_LOG},
    NAMESPACED("/api/v1", "configmaps", DRV_KIND_CONFIGMAP),
    NAMESPACED("/api/v1", "secrets", DRV_KIND_SECRET),
    NAMESPACED("/api/v1", "services", DRV_KIND_SERVICE),
    NAMESPACED("/api/v1", "events", DRV_KIND_EVENT),
    /* A Service's endpoints, written by the hub's endpoints controller (no status). */
    {"/api/v1/namespaces/{namespace}/endpoints", M_COLL, DRV_KIND_ENDPOINTS, DRV_API_OP_COLLECTION},
    {"/api/v1/namespaces/{namespace}/endpoints/{name}", M_ITEM, DRV_KIND_ENDPOINTS,
     DRV_API_OP_ITEM},
    {"/api/v1/endpoints", DRV_API_M_GET, DRV_KIND_ENDPOINTS, DRV_API_OP_COLLECTION},
    {"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices", M_COLL,
     DRV_KIND_ENDPOINTSLICE, DRV_API_OP_COLLECTION},
    {"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices/{name}", M_ITEM,
     DRV_KIND_ENDPOINTSLICE, DRV_API_OP_ITEM},
    {"/apis/discovery.k8s.io/v1/endpointslices", DRV_API_M_GET, DRV_KIND_ENDPOINTSLICE,
     DRV_API_OP_COLLECTION},
    {"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies", M_COLL,
     DRV_KIND_NETWORKPOLICY, DRV_API_OP_COLLECTION},
    {"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{name}", M_ITEM,
     DRV_KIND_NETWORKPOLICY, DRV_API_OP_ITEM},
    {"/apis/networking.k8s.io/v1/networkpolicies", DRV_API_M_GET, DRV_KIND_NETWORKPOLICY,
     DRV_API_OP_COLLECTION},
    /* Node-local volumes: claims, the volumes the provisioner makes, their classes. */
    NAMESPACED("/api/v1", "persistentvolumeclaims", DRV_KIND_PVC),
    {"/api/v1/persistentvolumes", M_COLL, DRV_KIND_PV, DRV_API_OP_COLLECTION},
    {"/api/v1/persistentvolumes/{name}", M_ITEM, DRV_KIND_PV, DRV_API_OP_ITEM},
    {"/api/v1/persistentvolumes/{name}/status", M_STATUS, DRV_KIND_PV, DRV_API_OP_STATUS},
    {"/apis/storage.k8s.io/v1/storageclasses", M_COLL, DRV_KIND_STORAGECLASS,
     DRV_API_OP_COLLECTION},
    {"/apis/storage.k8s.io/v1/storageclasses/{name}", M_ITEM, DRV_KIND_STORAGECLASS,
     DRV_API_OP_ITEM},
    {"/apis/scheduling.k8s.io/v1/priorityclasses", M_COLL, DRV_KIND_PRIORITYCLASS,
     DRV_API_OP_COLLECTION},
    {"/apis/scheduling.k8s.io/v1/priorityclasses/{name}", M_ITEM, DRV_KIND_PRIORITYCLASS,
     DRV_API_OP_ITEM},
    /* ServiceAccounts and RBAC (no status): what pod tokens may do */
    {"/api/v1/namespaces/{namespace}/serviceaccounts", M_COLL, DRV_KIND_SERVICEACCOUNT,
     DRV_API_OP_COLLECTION},
    {"/api/v1/namespaces/{namespace}/serviceaccounts/{name}", M_ITEM, DRV_KIND_SERVICEACCOUNT,
     DRV_API_OP_ITEM},
    {"/api/v1/serviceaccounts", DRV_API_M_GET, DRV_KIND_SERVICEACCOUNT, DRV_API_OP_COLLECTION},
    {"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles", M_COLL, DRV_KIND_ROLE,
     DRV_API_OP_COLLECTION},
    {"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles/{name}", M_ITEM,
     DRV_KIND_ROLE, DRV_API_OP_ITEM},
    {"/apis/rbac.authorization.k8s.io/v1/roles", DRV_API_M_GET, DRV_KIND_ROLE,
     DRV_API_OP_COLLECTION},
    {"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings", M_COLL,
     DRV_KIND_ROLEBINDING, DRV_API_OP_COLLECTION},
    {"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings/{name}", M_ITEM,
     DRV_KIND_ROLEBINDING, DRV_API_OP_ITEM},
    {"/apis/rbac.authorization.k8s.io/v1/rolebindings", DRV_API_M_GET, DRV_KIND_ROLEBINDING,
     DRV_API_OP_COLLECTION},
    {"/apis/rbac.authorization.k8s.io/v1/clusterroles", M_COLL, DRV_KIND_CLUSTERROLE,
     DRV_API_OP_COLLECTION},
    {"/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}", M_ITEM, DRV_KIND_CLUSTERROLE,
     DRV_API_OP_ITEM},
    {"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", M_COLL, DRV_KIND_CLUSTERROLEBINDING,
     DRV_API_OP_COLLECTION},
    {"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{name}", M_ITEM,
     DRV_KIND_CLUSTERROLEBINDING, DRV_API_OP_ITEM},
    {"/api/v1/nodes", M_COLL, DRV_KIND_NODE, DRV_API_OP_COLLECTION},
    {"/api/v1/nodes/{name}", M_ITEM, DRV_KIND_NODE, DRV_API_OP_ITEM},
    {"/api/v1/nodes/{name}/status", M_STATUS, DRV_KIND_NODE, DRV_API_OP_STATUS},
    {"/api/v1/nodes/{name}/revoke", DRV_API_M_POST, DRV_KIND_UNKNOWN, DRV_API_OP_NODE_REVOKE},
    {"/api/v1/namespaces", M_COLL, DRV_KIND_NAMESPACE, DRV_API_OP_COLLECTION},
    {"/api/v1/namespaces/{name}", M_ITEM, DRV_KIND_NAMESPACE, DRV_API_OP_ITEM},
    {"/api/v1/namespaces/{name}/status", M_STATUS, DRV_KIND_NAMESPACE, DRV_API_OP_STATUS},
    NAMESPACED("/apis/apps/v1", "deployments", DRV_KIND_DEPLOYMENT),
    {"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale", M_STATUS, DRV_KIND_DEPLOYMENT,
     DRV_API_OP_SCALE},
    NAMESPACED("/apis/apps/v1", "daemonsets", DRV_KIND_DAEMONSET),
    NAMESPACED("/apis/apps/v1", "statefulsets", DRV_KIND_STATEFULSET),
    {"/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}/scale", M_STATUS,
     DRV_KIND_STATEFULSET, DRV_API_OP_SCALE},
    NAMESPACED("/apis/apps/v1", "replicasets", DRV_KIND_REPLICASET),
    /* A DaemonSet's history: read and deleted; writes are refused as a ReplicaSet's are. */
    {"/apis/apps/v1/namespaces/{namespace}/controllerrevisions", M_COLL,
     DRV_KIND_CONTROLLERREVISION, DRV_API_OP_COLLECTION},
    {"/apis/apps/v1/namespaces/{namespace}/controllerrevisions/{name}", M_ITEM,
     DRV_KIND_CONTROLLERREVISION, DRV_API_OP_ITEM},
    {"/apis/apps/v1/controllerrevisions", DRV_API_M_GET, DRV_KIND_CONTROLLERREVISION,
     DRV_API_OP_COLLECTION},
    NAMESPACED("/apis/autoscaling/v2", "horizontalpodautoscalers", DRV_KIND_HPA),
    NAMESPACED("/apis/batch/v1", "jobs", DRV_KIND_JOB),
    NAMESPACED("/apis/batch/v1", "cronjobs", DRV_KIND_CRONJOB),
    {"/api/v1/tokens", M_COLL, DRV_KIND_UNKNOWN, DRV_API_OP_TOKENS},
    {"/api/v1/tokens/{name}", DRV_API_M_GET | DRV_API_M_DELETE, DRV_KIND_UNKNOWN, DRV_API_OP_TOKEN},
    {"/api/v1/enroll", DRV_API_M_POST, DRV_KIND_UNKNOWN, DRV_API_OP_ENROLL},
    {"/api/v1/enroll/renew", DRV_API_M_POST, DRV_KIND_UNKNOWN, DRV_API_OP_ENROLL_RENEW},
    {"/api/v1/identities", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_IDENTITIES},
    {"/api/v1/identities/{name}", DRV_API_M_DELETE, DRV_KIND_UNKNOWN, DRV_API_OP_IDENTITY},
    {"/apis/metrics.k8s.io/v1beta1", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_USAGE},
    {"/apis/metrics.k8s.io/v1beta1/nodes", DRV_API_M_GET, DRV_KIND_NODE, DRV_API_OP_USAGE},
    {"/apis/metrics.k8s.io/v1beta1/nodes/{name}", DRV_API_M_GET, DRV_KIND_NODE, DRV_API_OP_USAGE},
    {"/apis/metrics.k8s.io/v1beta1/pods", DRV_API_M_GET, DRV_KIND_POD, DRV_API_OP_USAGE},
    {"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods", DRV_API_M_GET, DRV_KIND_POD,
     DRV_API_OP_USAGE},
    {"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/{name}", DRV_API_M_GET, DRV_KIND_POD,
     DRV_API_OP_USAGE},
    {"/apis/drover.io/v1/session", DRV_API_M_GET | DRV_API_M_POST | DRV_API_M_DELETE,
     DRV_KIND_UNKNOWN, DRV_API_OP_SESSION},
    {"/apis/drover.io/v1/watch", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_WATCH_ALL},
    {"/apis/drover.io/v1/apply", DRV_API_M_POST, DRV_KIND_UNKNOWN, DRV_API_OP_APPLY},
    {"/apis/drover.io/v1/usage/nodes/{name}", DRV_API_M_GET, DRV_KIND_NODE, DRV_API_OP_USAGE},
    {"/apis/drover.io/v1/usage/namespaces/{namespace}/pods/{name}", DRV_API_M_GET, DRV_KIND_POD,
     DRV_API_OP_USAGE},
    /* kubectl auth can-i / whoami (review.c); 1.27 asks authentication.k8s.io/v1beta1 */
    {"/apis/authorization.k8s.io/v1", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_DISCOVERY},
    {"/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", DRV_API_M_POST, DRV_KIND_UNKNOWN,
     DRV_API_OP_REVIEW},
    {"/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", DRV_API_M_POST, DRV_KIND_UNKNOWN,
     DRV_API_OP_REVIEW},
    {"/apis/authentication.k8s.io/v1", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_DISCOVERY},
    {"/apis/authentication.k8s.io/v1/selfsubjectreviews", DRV_API_M_POST, DRV_KIND_UNKNOWN,
     DRV_API_OP_REVIEW},
    {"/apis/authentication.k8s.io/v1beta1", DRV_API_M_GET, DRV_KIND_UNKNOWN, DRV_API_OP_DISCOVERY},
    {"/apis/authentication.k8s.io/v1beta1/selfsubjectreviews", DRV_API_M_POST, DRV_KIND_UNKNOWN,
     DRV_API_OP_REVIEW},
};

const drv_api_route_t *drv_api_routes(size_t *n)
{
    *n = sizeof(routes) / sizeof(routes[0]);
    return routes;
}

const char *drv_api_methods_str(unsigned methods, char *out, size_t outsz)
{
    static const char *const names[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    if (outsz == 0)
        return out;
    out[0] = '\0';
    for (unsigned i = 0; i < 5; i++)
        if (methods & (1u << i)) {
            size_t l = strlen(out);
            if (drv_fmt(out + l, outsz - l, "%s%s", l ? ", " : "", names[i]) != DRV_OK) {
                out[0] = '\0'; /* an Allow header: never a cut list */
                return out;
            }
        }
    return out;
}

int drv_api_print_routes(FILE *out)
{
    size_t n = 0;
    const drv_api_route_t *r = drv_api_routes(&n);
    for (size_t i = 0; i < n; i++) {
        char m[64];
        drv_api_methods_str(r[i].methods, m, sizeof(m));
        size_t k = 0;
        for (const char *p = m; *p; p++) /* "GET, POST" -> "GET,POST" */
            if (*p != ' ')
                m[k++] = *p;
        m[k] = '\0';
        if (fprintf(out, "%s %s\n", r[i].pattern, m) < 0)
            return -1;
    }
    return fflush(out) == 0 ? 0 : -1;
}

/* Matches path against pattern; captures {namespace} and {name} (pointers into path copies
 * in m). */
static bool route_match(const char *pattern, const char *path, drv_api_match_t *m)
{
    const char *p = pattern, *u = path;
    m->ns[0] = m->name[0] = '\0';
    while (*p && *u) {
        if (*p != '/' || *u != '/')
            return false;
        p++, u++;
        size_t pl = strcspn(p, "/"), ul = strcspn(u, "/");
        if (*p == '{') {
            if (ul == 0)
                return false;
            char *dst = NULL;
            size_t cap = 0;
            if (pl == strlen("{namespace}") && !strncmp(p, "{namespace}", pl))
                dst = m->ns, cap = sizeof(m->ns);
            else
                dst = m->name, cap = sizeof(m->name);
            if (ul >= cap)
                return false;
            memcpy(dst, u, ul);
            dst[ul] = '\0';
        } else if (pl != ul || strncmp(p, u, pl)) {
            return false;
        }
        p += pl, u += ul;
    }
    return *p == '\0' && *u == '\0';
}

const drv_api_route_t *drv_api_route_find(const char *path, unsigned method, drv_api_match_t *m,
                                          unsigned *methods)
{
    const drv_api_route_t *found = NULL;
    if (methods)
        *methods = 0;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        drv_api_match_t mm;
        if (!route_match(routes[i].pattern, path, &mm))
            continue;
        if (methods)
            *methods |= routes[i].methods;
        if (!found && (routes[i].methods & method)) {
            found = &routes[i];
            mm.route = found;
            if (m)
                *m = mm;
        }
    }
    return found;
}

/* ---- the daemon ---- */

static unsigned method_bit(const char *method)
{
    static const struct {
        const char *name;
        unsigned bit;
    } ms[] = {{"GET", DRV_API_M_GET}, {"HEAD", DRV_API_M_GET},    {"POST", DRV_API_M_POST},
              {"PUT", DRV_API_M_PUT}, {"PATCH", DRV_API_M_PATCH}, {"DELETE", DRV_API_M_DELETE}};
    for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
        if (!strcmp(method, ms[i].name))
            return ms[i].bit;
    return 0;
}

void drv_api_changed(drv_api_t *api)
{
    if (api->on_change)
        api->on_change(api->on_change_ctx);
    drv_api_notify(api);
}

static void count_request(drv_api_t *api, const char *method, unsigned code)
{
    for (size_t i = 0; i < api->nreqstats; i++) {
        if (api->reqstats[i].code == code && !strcmp(api->reqstats[i].method, method)) {
            api->reqstats[i].n++;
            return;
        }
    }
    if (api->nreqstats < DRV_API_MAX_REQSTATS) {
        drv_api_reqstat_t *r = &api->reqstats[api->nreqstats++];
        if (drv_fmt(r->method, sizeof(r->method), "%s", method_bit(method) ? method : "OTHER") !=
            DRV_OK)
            DRV_FMT_LIT(r->method, "OTHER");
        r->code = code;
        r->n = 1;
    }
}

enum MHD_Result drv_api_queue(drv_api_req_t *rq, unsigned code, struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    rq->responded = true;
    count_request(rq->api, rq->method, code);
    /* On every answer: no type sniffing, no Referer leaving the hub, never framed. (No
     * Access-Control-* header ever: the API is not for other origins' scripts.) */
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    /* Warnings for the client to show (kubectl prints "Warning: ..."), one header each. */
    for (char *w = rq->warnings; *w;) {
        char *nl = strchr(w, '\n');
        if (nl)
            *nl = '\0';
        MHD_add_response_header(resp, "Warning", w);
        if (!nl)
            break;
        w = nl + 1;
    }
    rq->warnings[0] = '\0';
    if (drv_log_get_level() <= DRV_LOG_DEBUG) {
        char q[300];
        drv_log_debug("api request", "method=%s path=%s code=%u", rq->method,
                      drv_log_quote(rq->url ? rq->url : "", q, sizeof(q)), code);
    }
    enum MHD_Result r = MHD_queue_response(rq->conn, code, resp);
    MHD_destroy_response(resp);
    return r;
}

enum MHD_Result drv_api_reply_text(drv_api_req_t *rq, unsigned code, const char *ctype, char *body,
                                   size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    return drv_api_queue(rq, code, resp);
}

enum MHD_Result drv_api_reply_json(drv_api_req_t *rq, unsigned code, const cJSON *obj)
{
    char *s = cJSON_PrintUnformatted(obj);
    if (!s)
        return drv_api_reply_status(rq, 500, "InternalError", "out of memory", NULL);
    return drv_api_reply_text(rq, code, "application/json", s, strlen(s));
}

static const char *status_reason(unsigned code)
{
    switch (code) {
    case 400:
        return "BadRequest";
    case 404:
        return "NotFound";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 405:
        return "MethodNotAllowed";
    case 409:
        return "Conflict";
    case 410:
        return "Expired";
    case 413:
        return "RequestEntityTooLarge";
    case 415:
        return "UnsupportedMediaType";
    case 429:
        return "TooManyRequests";
    case 503:
        return "ServiceUnavailable";
    default:
        return "InternalError";
    }
}

cJSON *drv_api_status_json(unsigned code, const char *reason, const char *msg,
                           const drv_diags_t *diags)
{
    cJSON *st = cJSON_CreateObject();
    if (!st)
        return NULL;
    cJSON_AddStringToObject(st, "kind", "Status");
    cJSON_AddStringToObject(st, "apiVersion", "v1");
    cJSON_AddObjectToObject(st, "metadata");
    cJSON_AddStringToObject(st, "status", "Failure");
    cJSON_AddStringToObject(st, "message", msg);
    cJSON_AddStringToObject(st, "reason", reason ? reason : status_reason(code));
    cJSON_AddNumberToObject(st, "code", code);
    if (diags && diags->count) {
        cJSON *det = cJSON_AddObjectToObject(st, "details");
        cJSON *causes = det ? cJSON_AddArrayToObject(det, "causes") : NULL;
        for (size_t i = 0; causes && i < diags->count; i++) {
            cJSON *c = cJSON_CreateObject();
            if (!c)
                break;
            cJSON_AddStringToObject(c, "reason", "FieldValueInvalid");
            cJSON_AddStringToObject(c, "field", diags->items[i].path);
            cJSON_AddStringToObject(c, "message", diags->items[i].msg);
            cJSON_AddItemToArray(causes, c);
        }
    }
    return st;
}

enum MHD_Result drv_api_reply_status(drv_api_req_t *rq, unsigned code, const char *reason,
                                     const char *msg, const drv_diags_t *diags)
{
    cJSON *st = drv_api_status_json(code, reason, msg, diags);
    char *s = st ? cJSON_PrintUnformatted(st) : NULL;
    cJSON_Delete(st);
    if (!s) {
        static const char fallback[] = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":"
                                       "\"Failure\",\"message\":\"out of memory\",\"code\":500}";
        struct MHD_Response *resp = MHD_create_response_from_buffer(
            sizeof(fallback) - 1, (void *)fallback, MHD_RESPMEM_PERSISTENT);
        return drv_api_queue(rq, 500, resp);
    }
    if (code >= 500 || code == 413)
        drv_log_warn("api request failed", "method=%s code=%u", rq->method, code);
    return drv_api_reply_text(rq, code, "application/json", s, strlen(s));
}

enum MHD_Result drv_api_reply_unauthorized(drv_api_req_t *rq, const char *msg)
{
    cJSON *st = drv_api_status_json(401, "Unauthorized", msg, NULL);
    char *s = st ? cJSON_PrintUnformatted(st) : NULL;
    cJSON_Delete(st);
    struct MHD_Response *resp =
        s ? MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!resp) {
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"drover\"");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return drv_api_queue(rq, 401, resp);
}

enum MHD_Result drv_api_reply_error(drv_api_req_t *rq, drv_err_t e, const char *msg)
{
    switch (e) {
    case DRV_ERR_NOTFOUND:
        return drv_api_reply_status(rq, 404, "NotFound", msg, NULL);
    case DRV_ERR_PERM: /* e.g. new content in a namespace being deleted */
        return drv_api_reply_status(rq, 403, "Forbidden", msg, NULL);
    case DRV_ERR_EXISTS:
        return drv_api_reply_status(rq, 409, "AlreadyExists", msg, NULL);
    case DRV_ERR_CONFLICT:
        return drv_api_reply_status(rq, 409, "Conflict", msg, NULL);
    case DRV_ERR_RANGE:
        return drv_api_reply_status(rq, 410, "Expired", msg, NULL);
    case DRV_ERR_INVALID:
        return drv_api_reply_status(rq, 400, "BadRequest", msg, NULL);
    case DRV_ERR_UNSUPPORTED:
        return drv_api_reply_status(rq, 400, "BadRequest", msg, NULL);
    case DRV_ERR_TOOBIG:
        return drv_api_reply_status(rq, 413, NULL, msg, NULL);
    case DRV_ERR_AGAIN:
    case DRV_ERR_TIMEOUT:
        return drv_api_reply_status(rq, 503, NULL, msg, NULL);
    default:
        return drv_api_reply_status(rq, 500, NULL, msg, NULL);
    }
}

static enum MHD_Result dispatch(drv_api_req_t *rq)
{
    const char *url = rq->url;
    unsigned bit = method_bit(rq->method);
    bool path_known = false;
    unsigned allowed = 0;
    size_t n = sizeof(routes) / sizeof(routes[0]);
    for (size_t i = 0; i < n; i++) {
        drv_api_match_t m;
        if (!route_match(routes[i].pattern, url, &m))
            continue;
        path_known = true;
        allowed |= routes[i].methods;
        if (!(bit & routes[i].methods))
            continue;
        m.route = &routes[i];
        return drv_api_handle(rq, &m);
    }
    if (!path_known)
        return drv_api_reply_status(rq, 404, "NotFound",
                                    "the server could not find the requested resource", NULL);
    char msg[160];
    drv_fmt_cut(msg, sizeof(msg), "method %.16s is not allowed on this resource", rq->method);
    cJSON *st = drv_api_status_json(405, "MethodNotAllowed", msg, NULL);
    char *s = st ? cJSON_PrintUnformatted(st) : NULL;
    cJSON_Delete(st);
    if (!s)
        return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(s);
        return MHD_NO;
    }
    char allow[64];
    drv_api_methods_str(allowed, allow, sizeof(allow));
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return drv_api_queue(rq, 405, resp);
}

/* Puts a new request to the authorizer (when there is one), before its body is read. Returns
 * true when it may go on; otherwise the refusal is queued in *r. */
/* Whether url is one of the enrollment routes or the sign-in (reachable without an API
 * token). */
static bool enroll_route(const char *url)
{
    drv_api_match_t m = {0};
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if ((routes[i].op == DRV_API_OP_ENROLL || routes[i].op == DRV_API_OP_ENROLL_RENEW ||
             routes[i].op == DRV_API_OP_SESSION) &&
            route_match(routes[i].pattern, url, &m))
            return true;
    return false;
}

/* Whether a browser says the request comes from a page of another origin: Sec-Fetch-Site
 * other than same-origin/none, or an Origin header that is not this scheme://Host. */
bool drv_api_cross_origin(struct MHD_Connection *conn)
{
    const char *site = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-Fetch-Site");
    if (site && strcmp(site, "same-origin") && strcmp(site, "none"))
        return true;
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if (!origin)
        return false;
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    const char *o = !strncmp(origin, "https://", 8)  ? origin + 8
                    : !strncmp(origin, "http://", 7) ? origin + 7
                                                     : NULL;
    return !o || !host || strcasecmp(o, host) != 0;
}

/* Puts a request to the authorizer as if it were method on route (with ns, name): the
 * request's own credentials. 0: allowed; else 401/403 with the reason in msg. */
unsigned drv_api_authorize_as(drv_api_req_t *rq, const drv_api_route_t *route, unsigned method,
                              const char *ns, const char *name, bool watch, char *msg, size_t msgsz)
{
    return drv_api_authorize_user(rq, route, method, ns, name, watch, NULL, msg, msgsz);
}

unsigned drv_api_authorize_user(drv_api_req_t *rq, const drv_api_route_t *route, unsigned method,
                                const char *ns, const char *name, bool watch, drv_api_user_t *user,
                                char *msg, size_t msgsz)
{
    drv_api_t *api = rq->api;
    if (!api->authorize)
        return 0;
    drv_api_authz_t az = {
        .authorization =
            MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
        .method = method,
        .route = route,
        .ns = ns ? ns : "",
        .name = name ? name : "",
        .kind = route ? route->kind : DRV_KIND_UNKNOWN,
        .watch = watch,
        .session = MHD_lookup_connection_value(rq->conn, MHD_COOKIE_KIND, DRV_API_SESSION_COOKIE),
        .csrf = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "X-CSRF-Token"),
        .cross_origin = drv_api_cross_origin(rq->conn),
        .user = user,
    };
    if (msgsz)
        msg[0] = '\0';
    return api->authorize(api->authorize_ctx, &az, msg, msgsz);
}

static bool authorized(drv_api_req_t *rq, const char *url, enum MHD_Result *r)
{
    drv_api_t *api = rq->api;
    if (!api->authorize)
        return true;
    unsigned bit = method_bit(rq->method);
    drv_api_match_t m = {0}, found = {0};
    size_t n = sizeof(routes) / sizeof(routes[0]);
    for (size_t i = 0; i < n && !found.route; i++) {
        if (route_match(routes[i].pattern, url, &m) && (bit & routes[i].methods)) {
            found = m;
            found.route = &routes[i];
        }
    }
    if (found.route && found.route->op == DRV_API_OP_HEALTHZ)
        return true; /* liveness probes carry no credentials */
    bool watch = found.route && found.route->op == DRV_API_OP_COLLECTION && bit == DRV_API_M_GET &&
                 drv_api_wants_watch(rq->conn);
    char msg[256] = "";
    unsigned code =
        drv_api_authorize_as(rq, found.route, bit, found.ns, found.name, watch, msg, sizeof(msg));
    if (code == 0)
        return true;
    if (code == 401) {
        *r = drv_api_reply_unauthorized(rq, *msg ? msg : "Unauthorized");
        return false;
    }
    *r = drv_api_reply_status(rq, 403, "Forbidden", *msg ? msg : "Forbidden", NULL);
    return false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    drv_api_t *api = cls;
    drv_api_req_t *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof(*rq));
        if (!rq)
            return MHD_NO;
        rq->api = api;
        rq->conn = conn;
        /* Longer than any method served: a 405, counted and logged as "OTHER". */
        if (drv_fmt(rq->method, sizeof(rq->method), "%s", method) != DRV_OK)
            DRV_FMT_LIT(rq->method, "OTHER");
        rq->url = url;
        /* The enrollment routes answer callers without an API token: their small cap holds
         * from the first byte, so that anonymous bodies cannot take the shared budget. */
        size_t cap = enroll_route(url) ? DRV_API_ENROLL_MAX_BODY : api->max_body;
        drv_buf_init(&rq->body, cap);
        *con_cls = rq;
        if (drv_api_ui_path(url))
            return drv_api_ui_serve(rq);
        enum MHD_Result ar = MHD_NO;
        if (!authorized(rq, url, &ar))
            return ar;
        /* A declared length over the general cap is refused before any of the body is read;
         * a body over the enrollment cap is read and dropped (answering early makes clients
         * see a reset instead of the 413), never kept. */
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull(cl, &end, 10);
            if (errno || end == cl || v > api->max_body) {
                char msg[128];
                drv_fmt_cut(msg, sizeof(msg), "request body is larger than the limit of %zu bytes",
                            cap);
                return drv_api_reply_status(rq, 413, NULL, msg, NULL);
            }
        }
        return MHD_YES;
    }
    rq->url = url;
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rq->too_big || rq->busy || rq->responded)
            return MHD_YES;
        if (api->inflight + n > DRV_API_MAX_INFLIGHT) {
            rq->busy = true; /* all bodies together stay under a budget */
        } else if (drv_buf_append(&rq->body, upload_data, n) != DRV_OK) {
            rq->too_big = true;
        } else {
            api->inflight += n;
            rq->held += n;
            return MHD_YES;
        }
        api->inflight -= rq->held;
        rq->held = 0;
        drv_buf_free(&rq->body);
        return MHD_YES;
    }
    if (rq->responded)
        return MHD_YES;
    if (rq->log)
        return drv_api_log_continue(rq);
    if (rq->busy)
        return drv_api_reply_status(rq, 503, NULL, "too many request bodies in flight; retry later",
                                    NULL);
    if (rq->too_big) {
        char msg[128];
        drv_fmt_cut(msg, sizeof(msg), "request body is larger than the limit of %zu bytes",
                    rq->body.max);
        return drv_api_reply_status(rq, 413, NULL, msg, NULL);
    }
    return dispatch(rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    drv_api_req_t *rq = *con_cls;
    if (!rq)
        return;
    rq->api->inflight -= rq->held;
    drv_api_log_abandon(rq);
    drv_buf_free(&rq->body);
    free(rq);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    drv_vfmt_cut(line, sizeof(line), fmt, ap);
    size_t l = strlen(line);
    while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
        line[--l] = '\0';
    char q[600];
    drv_log_warn("http server", "detail=%s", drv_log_quote(line, q, sizeof(q)));
}

static void tls_free(drv_api_t *api)
{
    if (api->tls_key)
        explicit_bzero(api->tls_key, strlen(api->tls_key));
    free(api->tls_key);
    free(api->tls_cert);
    api->tls_key = api->tls_cert = NULL;
}

/* HTTPS options for MHD (into items, ended by MHD_OPTION_END), from copies api keeps. */
static drv_err_t tls_options(drv_api_t *api, const drv_api_opts_t *opts, unsigned *flags,
                             struct MHD_OptionItem items[3], drv_error_t *err)
{
    if (!opts->tls_key_pem && !opts->tls_cert_pem)
        return DRV_OK;
    if (!opts->tls_key_pem || !opts->tls_cert_pem || !*opts->tls_key_pem || !*opts->tls_cert_pem)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "api: TLS needs both a private key and a certificate");
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                             "api: this libmicrohttpd was built without TLS support");
    api->tls_key = strdup(opts->tls_key_pem);
    api->tls_cert = strdup(opts->tls_cert_pem);
    if (!api->tls_key || !api->tls_cert) {
        tls_free(api);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "api: out of memory");
    }
    *flags |= MHD_USE_TLS;
    items[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, api->tls_key};
    items[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, api->tls_cert};
    items[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    return DRV_OK;
}

/* Starts MHD on a new socket bound to api->addr, or on listen_fd (>= 0) taken over from a
 * quiesced daemon. */
static struct MHD_Daemon *start_mhd(drv_api_t *api, int listen_fd, struct MHD_OptionItem tls[3])
{
    uint16_t port =
        ntohs(api->addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&api->addr)->sin6_port
                                              : ((struct sockaddr_in *)&api->addr)->sin_port);
    if (listen_fd >= 0)
        return MHD_start_daemon(
            api->flags, port, NULL, NULL, on_request, api, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
            api, MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_CONNECTION_LIMIT, api->max_conns,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
            api, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    return MHD_start_daemon(
        api->flags, port, NULL, NULL, on_request, api, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, api,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&api->addr, MHD_OPTION_CONNECTION_LIMIT,
        api->max_conns, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, api, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
}

drv_err_t drv_api_set_tls_cert(drv_api_t *api, const char *cert_pem, drv_error_t *err)
{
    if (!api->tls_key)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "api: not serving HTTPS");
    if (!cert_pem || !*cert_pem)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "api: certificate: required");
    if (api->watches || api->logs)
        return drv_error_set(err, DRV_ERR_AGAIN, 0, "api: requests in progress");
    char *cert = strdup(cert_pem);
    if (!cert)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "api: out of memory");
    MHD_socket fd = MHD_quiesce_daemon(api->mhd);
    if (fd == MHD_INVALID_SOCKET) {
        free(cert);
        return drv_error_set(err, DRV_ERR_IO, 0, "api: cannot take over the listening socket");
    }
    MHD_stop_daemon(api->mhd);
    struct MHD_OptionItem tls[3] = {{MHD_OPTION_HTTPS_MEM_KEY, 0, api->tls_key},
                                    {MHD_OPTION_HTTPS_MEM_CERT, 0, cert},
                                    {MHD_OPTION_END, 0, NULL}};
    api->mhd = start_mhd(api, fd, tls);
    drv_err_t r = DRV_OK;
    if (api->mhd) {
        free(api->tls_cert);
        api->tls_cert = cert;
    } else {
        int e = errno;
        free(cert);
        tls[1].value = (intptr_t)0;
        tls[1].ptr_value = api->tls_cert;
        api->mhd = start_mhd(api, fd, tls); /* back to the old certificate */
        r = drv_error_set(err, DRV_ERR_INVALID, e, "api: the new certificate is not usable");
        if (!api->mhd) {
            close(fd);
            return drv_error_set(err, DRV_ERR_IO, e, "api: cannot restart the HTTPS server");
        }
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(api->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    api->epoll_fd = di ? di->epoll_fd : -1;
    return r;
}

drv_err_t drv_api_new(const drv_api_opts_t *opts, drv_api_t **out, drv_error_t *err)
{
    if (!opts || !opts->store)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "api: a store is required");
    const char *bind = opts->bind_addr ? opts->bind_addr : DRV_API_DEFAULT_BIND;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, bind, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(opts->port);
    } else if (inet_pton(AF_INET6, bind, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(opts->port);
        flags |= MHD_USE_IPv6;
    } else {
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "api: bind address \"%.64s\" is not an IPv4 or IPv6 address", bind);
    }
    drv_api_t *api = calloc(1, sizeof(*api));
    if (!api)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "api: out of memory");
    api->store = opts->store;
    api->on_change = opts->on_change;
    api->on_change_ctx = opts->on_change_ctx;
    api->authorize = opts->authorize;
    api->authorize_ctx = opts->authorize_ctx;
    api->tokens = opts->tokens;
    api->tokens_ctx = opts->tokens_ctx;
    api->enroll = opts->enroll;
    api->enroll_ctx = opts->enroll_ctx;
    api->max_body = opts->max_body ? opts->max_body : DRV_API_DEFAULT_MAX_BODY;
    api->max_watches = opts->max_watches ? opts->max_watches : DRV_API_DEFAULT_MAX_WATCHES;
    unsigned max_conns = opts->max_conns ? opts->max_conns : DRV_API_DEFAULT_MAX_CONNS;
    struct MHD_OptionItem tls[3] = {{MHD_OPTION_END, 0, NULL}};
    drv_err_t te = tls_options(api, opts, &flags, tls, err);
    if (te != DRV_OK) {
        free(api);
        return te;
    }
    api->flags = flags;
    api->max_conns = max_conns;
    memcpy(&api->addr, &ss, sizeof(ss));
    api->mhd = start_mhd(api, -1, tls);
    if (!api->mhd) {
        int e = errno;
        tls_free(api);
        free(api);
        if (opts->tls_key_pem)
            return drv_error_set(err, DRV_ERR_IO, e,
                                 "api: listen with TLS on %s port %u (is the key and "
                                 "certificate pair usable?)",
                                 bind, (unsigned)opts->port);
        return drv_error_set(err, DRV_ERR_IO, e, "api: listen on %s port %u", bind,
                             (unsigned)opts->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(api->mhd, MHD_DAEMON_INFO_BIND_PORT);
    api->port = di ? di->port : opts->port;
    di = MHD_get_daemon_info(api->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    api->epoll_fd = di ? di->epoll_fd : -1;
    *out = api;
    return DRV_OK;
}

void drv_api_free(drv_api_t *api)
{
    if (!api)
        return;
    api->stopping = true;
    drv_api_notify(api);
    drv_api_log_tick(api);
    MHD_stop_daemon(api->mhd);
    tls_free(api);
    free(api);
}

uint16_t drv_api_port(const drv_api_t *api)
{
    return api->port;
}

bool drv_api_tls(const drv_api_t *api)
{
    return api->tls_key != NULL;
}

int drv_api_fd(const drv_api_t *api)
{
    return api->epoll_fd;
}

int drv_api_timeout_ms(const drv_api_t *api)
{
    int64_t best = -1;
    MHD_UNSIGNED_LONG_LONG t = 0;
    if (MHD_get_timeout(api->mhd, &t) == MHD_YES)
        best = t > 3600000 ? 3600000 : (int64_t)t;
    int64_t k = drv_api_watch_deadline_ms(api);
    if (k >= 0 && (best < 0 || k < best))
        best = k;
    k = drv_api_log_deadline_ms(api);
    if (k >= 0 && (best < 0 || k < best))
        best = k;
    return (int)best;
}

#define API_STREAM_RUNS 64 /* MHD runs per loop pass while watch streams move */
#define API_STREAM_MS 5    /* and for at most this long */

void drv_api_run(drv_api_t *api)
{
    drv_api_watch_tick(api);
    drv_api_log_tick(api);
    /* MHD takes one buffer (tens of KiB) of a stream per run: while watch streams take what
     * they are given, run again, so that a watcher behind a burst of thousands of changes
     * catches up in a few loop passes, not in thousands of them. */
    long long until = drv_now_ms() + API_STREAM_MS;
    for (int i = 0; i < API_STREAM_RUNS; i++) {
        uint64_t before = api->streamed;
        MHD_run(api->mhd);
        if (api->streamed == before || drv_now_ms() >= until)
            break;
    }
}

static bool metric_name_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

drv_err_t drv_api_set_gauge(drv_api_t *api, const char *series, double value, drv_error_t *err)
{
    size_t len = series ? strlen(series) : 0;
    size_t nl = series ? strcspn(series, "{") : 0;
    if (len == 0 || len >= sizeof(api->gauges[0].series) || !metric_name_ok(series, nl) ||
        (nl < len && (series[len - 1] != '}' || strchr(series, '\n'))))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "metrics: \"%.64s\" is not a metric series (name{labels})",
                             series ? series : "");
    for (size_t i = 0; i < api->ngauges; i++) {
        if (!strcmp(api->gauges[i].series, series)) {
            api->gauges[i].value = value;
            return DRV_OK;
        }
    }
    if (api->ngauges >= DRV_API_MAX_GAUGES)
        return drv_error_set(err, DRV_ERR_RANGE, 0, "metrics: more than %d gauge series",
                             DRV_API_MAX_GAUGES);
    if (drv_fmt(api->gauges[api->ngauges].series, sizeof(api->gauges[0].series), "%s", series) !=
        DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "metrics: gauge series name too long");
    api->gauges[api->ngauges++].value = value;
    return DRV_OK;
}

static int gauge_cmp(const void *a, const void *b)
{
    return strcmp(((const drv_api_gauge_t *)a)->series, ((const drv_api_gauge_t *)b)->series);
}

enum MHD_Result drv_api_metrics(drv_api_req_t *rq)
{
    drv_api_t *api = rq->api;
    _cleanup_buf_ drv_buf_t b = DRV_BUF_INIT(4 * 1024 * 1024);
    drv_err_t e = drv_buf_puts(&b, "# HELP drover_api_requests_total API requests answered.\n"
                                   "# TYPE drover_api_requests_total counter\n");
    for (size_t i = 0; e == DRV_OK && i < api->nreqstats; i++)
        e = drv_buf_printf(&b, "drover_api_requests_total{method=\"%s\",code=\"%u\"} %llu\n",
                           api->reqstats[i].method, api->reqstats[i].code,
                           (unsigned long long)api->reqstats[i].n);
    if (e == DRV_OK)
        e = drv_buf_puts(&b, "# HELP drover_objects Objects in the store by kind.\n"
                             "# TYPE drover_objects gauge\n");
    for (int k = 1; e == DRV_OK && k < DRV_KIND__COUNT; k++) {
        cJSON *items = NULL;
        drv_error_t lerr = DRV_ERROR_INIT;
        if (drv_hstore_list(api->store, (drv_kind_t)k, NULL, NULL, &items, NULL, &lerr) != DRV_OK)
            continue;
        e = drv_buf_printf(&b, "drover_objects{kind=\"%s\"} %d\n", drv_kind_name((drv_kind_t)k),
                           cJSON_GetArraySize(items));
        cJSON_Delete(items);
    }
    if (e == DRV_OK)
        e = drv_buf_printf(&b,
                           "# HELP drover_store_resource_version The store's resourceVersion.\n"
                           "# TYPE drover_store_resource_version gauge\n"
                           "drover_store_resource_version %llu\n"
                           "# HELP drover_api_watches Open watch streams.\n"
                           "# TYPE drover_api_watches gauge\n"
                           "drover_api_watches %u\n",
                           (unsigned long long)drv_hstore_rv(api->store), api->nwatches);
    qsort(api->gauges, api->ngauges, sizeof(api->gauges[0]), gauge_cmp);
    char last[128] = "";
    for (size_t i = 0; e == DRV_OK && i < api->ngauges; i++) {
        const char *s = api->gauges[i].series;
        size_t nl = strcspn(s, "{");
        if (nl >= sizeof(last))
            nl = sizeof(last) - 1;
        if (strlen(last) != nl || strncmp(last, s, nl)) {
            memcpy(last, s, nl);
            last[nl] = '\0';
            e = drv_buf_printf(&b, "# TYPE %s gauge\n", last);
        }
        if (e == DRV_OK)
            e = drv_buf_printf(&b, "%s %.17g\n", s, api->gauges[i].value);
    }
    if (e == DRV_OK && api->prometheus)
        e = api->prometheus(api->usage_ctx, &b);
    if (e != DRV_OK)
        return drv_api_reply_error(rq, e, "metrics: output too large");
    size_t len = 0;
    char *s = drv_buf_steal(&b, &len);
    if (!s)
        return drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
    return drv_api_reply_text(rq, 200, "text/plain; version=0.0.4; charset=utf-8", s, len);
}

void drv_api_set_status_written(drv_api_t *api, drv_api_status_written_fn fn, void *ctx)
{
    api->status_written = fn;
    api->status_written_ctx = ctx;
}

bool drv_api_wants_watch(struct MHD_Connection *conn)
{
    static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True"};
    const char *w = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "watch");
    for (size_t i = 0; w && i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!strcmp(w, yes[i]))
            return true;
    return false;
}
