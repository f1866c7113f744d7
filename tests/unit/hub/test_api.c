/* hub/api: the REST API driven in-process over real sockets (the API's loop and the client
 * share this thread): status codes, Status bodies naming fields, hostile bodies answered
 * with errors, the watch limit, the route table and metrics gauges. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/api.h"
#include "api_client.h"
#include "drover/buf.h"
#include "drover/fmt.h"
#include "hub.h"
#include "store/store.h"

typedef struct {
    char dir[64];
    drv_hstore_t *store;
    drv_api_t *api;
} fx_t;

static int setup_opts(void **state, unsigned max_watches)
{
    fx_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/drv-api-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char db[128];
    snprintf(db, sizeof(db), "%s/hub.db", f->dir);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_open(db, &f->store, &err), DRV_OK);
    drv_api_opts_t o = {.store = f->store, .max_body = 64 * 1024, .max_watches = max_watches};
    assert_int_equal(drv_api_new(&o, &f->api, &err), DRV_OK);
    assert_true(drv_api_port(f->api) > 0);
    assert_true(drv_api_fd(f->api) >= 0);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_opts(state, 0);
}

static int setup_one_watch(void **state)
{
    return setup_opts(state, 1);
}

static int teardown(void **state)
{
    fx_t *f = *state;
    drv_api_free(f->api);
    drv_hstore_close(f->store);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static int connect_api(fx_t *f)
{
    return apic_connect(f->api);
}

/* Pumps the API while sending raw and reading into out until the peer closes, until stop
 * (if not NULL) appears in out, or 5 s pass. */
static void pump(fx_t *f, int fd, const char *raw, size_t rawlen, drv_buf_t *out, const char *stop)
{
    apic_pump(f->api, fd, raw, rawlen, out, stop, 5000);
}

/* One request; returns the status code, the body in *body (caller frees). */
static int http(fx_t *f, const char *method, const char *path, const char *ctype, const char *body,
                char **resp_body)
{
    char hdrs[256] = "";
    if (ctype)
        assert_int_equal(drv_fmt(hdrs, sizeof(hdrs), "Content-Type: %s\r\n", ctype), DRV_OK);
    drv_buf_t raw = DRV_BUF_INIT(1 << 24);
    apic_request(&raw, method, path, hdrs, body);
    int fd = connect_api(f);
    drv_buf_t out = DRV_BUF_INIT(1 << 24);
    pump(f, fd, raw.data, raw.len, &out, NULL);
    close(fd);
    drv_buf_free(&raw);
    const char *s = drv_buf_str(&out);
    int code = 0;
    assert_int_equal(sscanf(s, "HTTP/1.%*d %d", &code), 1);
    const char *b = strstr(s, "\r\n\r\n");
    if (resp_body)
        *resp_body = strdup(b ? b + 4 : "");
    drv_buf_free(&out);
    return code;
}

static const char *DEPLOY =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
    "\"labels\":{\"app\":\"web\"}},\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":"
    "{\"app\":\"web\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":"
    "{\"containers\":[{\"name\":\"c\",\"image\":\"nginx:1\"}]}}}}";

#define DPATH "/apis/apps/v1/namespaces/default/deployments"

static void test_crud(void **state)
{
    fx_t *f = *state;
    char *b = NULL;
    assert_int_equal(http(f, "POST", DPATH, "application/json", DEPLOY, &b), 201);
    cJSON *o = cJSON_Parse(b);
    free(b);
    assert_non_null(o);
    cJSON *meta = cJSON_GetObjectItem(o, "metadata");
    assert_string_equal(cJSON_GetObjectItem(meta, "namespace")->valuestring, "default");
    assert_non_null(cJSON_GetObjectItem(meta, "uid"));
    cJSON_Delete(o);

    assert_int_equal(http(f, "POST", DPATH, "application/json", DEPLOY, &b), 409);
    assert_non_null(strstr(b, "\"reason\":\"AlreadyExists\""));
    free(b);
    assert_int_equal(http(f, "GET", DPATH "/web", NULL, NULL, &b), 200);
    free(b);
    assert_int_equal(http(f, "GET", DPATH "?labelSelector=app%3Dweb", NULL, NULL, &b), 200);
    assert_non_null(strstr(b, "\"kind\":\"DeploymentList\""));
    assert_non_null(strstr(b, "\"name\":\"web\""));
    free(b);
    assert_int_equal(http(f, "GET", DPATH "?labelSelector=app%3Dnone", NULL, NULL, &b), 200);
    assert_non_null(strstr(b, "\"items\":[]"));
    free(b);
    assert_int_equal(http(f, "GET", DPATH "?fieldSelector=metadata.name%3Dweb", NULL, NULL, &b),
                     200);
    assert_non_null(strstr(b, "\"name\":\"web\""));
    free(b);
    assert_int_equal(
        http(f, "GET",
             "/apis/apps/v1/deployments?fieldSelector=metadata.name!%3Dweb,spec.replicas%3D2", NULL,
             NULL, &b),
        200);
    assert_non_null(strstr(b, "\"items\":[]"));
    free(b);
    assert_int_equal(http(f, "GET", DPATH "?fieldSelector=spec.replicas%3D%3D2", NULL, NULL, &b),
                     200);
    assert_non_null(strstr(b, "\"name\":\"web\""));
    free(b);
    assert_int_equal(http(f, "GET", DPATH "?fieldSelector=%3Dx", NULL, NULL, &b), 400);
    assert_non_null(strstr(b, "fieldSelector"));
    free(b);
    assert_int_equal(http(f, "GET", DPATH "?fieldSelector=a..b%3Dx", NULL, NULL, &b), 400);
    free(b);

    /* Merge patch: null removes a label, a number changes replicas (generation 2). */
    assert_int_equal(http(f, "PATCH", DPATH "/web", "application/merge-patch+json",
                          "{\"metadata\":{\"labels\":{\"app\":null,\"x\":\"y\"}},"
                          "\"spec\":{\"replicas\":3}}",
                          &b),
                     200);
    o = cJSON_Parse(b);
    free(b);
    meta = cJSON_GetObjectItem(o, "metadata");
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(meta, "labels"), "app"));
    assert_int_equal(cJSON_GetObjectItem(meta, "generation")->valueint, 2);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "spec"), "replicas")->valueint, 3);
    cJSON_Delete(o);

    /* A patch that renames the object is refused. */
    assert_int_equal(http(f, "PATCH", DPATH "/web", "application/merge-patch+json",
                          "{\"metadata\":{\"name\":\"other\"}}", &b),
                     400);
    assert_non_null(strstr(b, "does not match"));
    free(b);
    /* JSON Patch and strategic merge patch apply (test_patch has their cases); a failed
     * JSON Patch test is a 422; server-side apply is refused with a 415 that says so. */
    assert_int_equal(http(f, "PATCH", DPATH "/web", "application/json-patch+json", "[]", &b), 200);
    free(b);
    assert_int_equal(http(f, "PATCH", DPATH "/web", "application/json-patch+json",
                          "[{\"op\":\"test\",\"path\":\"/spec/replicas\",\"value\":-1}]", &b),
                     422);
    assert_non_null(strstr(b, "value differs"));
    free(b);
    assert_int_equal(http(f, "PATCH", DPATH "/web", "application/strategic-merge-patch+json",
                          "{\"metadata\":{\"labels\":{\"smp\":\"yes\"}}}", &b),
                     200);
    free(b);
    assert_int_equal(http(f, "PATCH", DPATH "/web", "application/apply-patch+yaml", "{}", &b), 415);
    assert_non_null(strstr(b, "server-side apply"));
    free(b);
    assert_int_equal(http(f, "PATCH", DPATH "/nope", "application/merge-patch+json", "{}", &b),
                     404);
    free(b);

    /* Status subresource. */
    assert_int_equal(http(f, "PUT", DPATH "/web/status", "application/json",
                          "{\"status\":{\"readyReplicas\":1}}", &b),
                     200);
    assert_non_null(strstr(b, "\"readyReplicas\":1"));
    free(b);
    assert_int_equal(http(f, "PUT", DPATH "/web/status", "application/json", "{}", &b), 422);
    free(b);

    assert_int_equal(http(f, "DELETE", DPATH "/web", NULL, NULL, &b), 200);
    free(b);
    assert_int_equal(http(f, "GET", DPATH "/web", NULL, NULL, &b), 404);
    assert_non_null(strstr(b, "\"reason\":\"NotFound\""));
    free(b);
    assert_int_equal(http(f, "DELETE", DPATH "/web", NULL, NULL, &b), 404);
    free(b);
}

/* Namespaces as kubectl drives them: made by their first object, labelled with their name,
 * deleted with what is in it; the system ones stay; a terminating one takes nothing new.
 * ReplicaSets are the Deployment controller's: read, never written. */
static void test_namespaces_and_replicasets(void **state)
{
    fx_t *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_namespaces_enable(f->store, &err), DRV_OK);
    char *b = NULL;
    assert_int_equal(http(f, "GET", "/api/v1/namespaces/kube-system", NULL, NULL, &b), 200);
    assert_non_null(strstr(b, "\"phase\":\"Active\""));
    free(b);
    assert_int_equal(http(f, "POST", "/apis/apps/v1/namespaces/team/deployments",
                          "application/json", DEPLOY, &b),
                     201);
    free(b);
    assert_int_equal(http(f, "GET", "/api/v1/namespaces/team", NULL, NULL, &b), 200);
    assert_non_null(strstr(b, "\"kubernetes.io/metadata.name\":\"team\""));
    free(b);
    /* {name} of a namespace does not shadow a namespaced collection. */
    assert_int_equal(http(f, "GET", "/apis/apps/v1/namespaces/team/deployments", NULL, NULL, &b),
                     200);
    assert_non_null(strstr(b, "\"name\":\"web\""));
    free(b);
    assert_int_equal(http(f, "POST", "/api/v1/namespaces", "application/json",
                          "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{"
                          "\"name\":\"Bad_Name\"}}",
                          &b),
                     422);
    free(b);
    assert_int_equal(http(f, "DELETE", "/api/v1/namespaces/default", NULL, NULL, &b), 403);
    assert_non_null(strstr(b, "this namespace may not be deleted"));
    free(b);
    /* Terminating (a deletion that stopped part way): new content is refused. */
    assert_int_equal(http(f, "PATCH", "/api/v1/namespaces/team/status",
                          "application/merge-patch+json",
                          "{\"status\":{\"phase\":\"Terminating\"}}", &b),
                     200);
    free(b);
    assert_int_equal(http(f, "POST", "/api/v1/namespaces/team/configmaps", "application/json",
                          "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
                          "\"name\":\"c\"}}",
                          &b),
                     403);
    assert_non_null(strstr(b, "unable to create new content in namespace team because it is "
                              "being terminated"));
    free(b);
    assert_int_equal(http(f, "DELETE", "/api/v1/namespaces/team", NULL, NULL, &b), 200);
    free(b);
    assert_int_equal(
        http(f, "GET", "/apis/apps/v1/namespaces/team/deployments/web", NULL, NULL, &b), 404);
    free(b);
    assert_int_equal(http(f, "GET", "/api/v1/namespaces/team", NULL, NULL, &b), 404);
    free(b);
    /* ReplicaSets: listed, never written by a client. */
    assert_int_equal(http(f, "GET", "/apis/apps/v1/replicasets", NULL, NULL, &b), 200);
    assert_non_null(strstr(b, "\"kind\":\"ReplicaSetList\""));
    free(b);
    assert_int_equal(http(f, "POST", "/apis/apps/v1/namespaces/default/replicasets",
                          "application/json", "{}", &b),
                     405);
    assert_non_null(strstr(b, "change the Deployment"));
    free(b);
    assert_int_equal(http(f, "GET", "/api/v1", NULL, NULL, &b), 200);
    assert_non_null(strstr(b, "\"name\":\"namespaces\""));
    free(b);
    assert_int_equal(http(f, "GET", "/apis/apps/v1", NULL, NULL, &b), 200);
    assert_non_null(strstr(b, "\"name\":\"replicasets\""));
    free(b);
}

/* ControllerRevisions: a DaemonSet's controller writes them; clients read and delete. */
static void test_controllerrevisions(void **state)
{
    fx_t *f = *state;
    cJSON *cr =
        cJSON_Parse("{\"apiVersion\":\"apps/v1\",\"kind\":\"ControllerRevision\",\"metadata\":{"
                    "\"name\":\"ds-abc\",\"namespace\":\"default\",\"labels\":{\"app\":\"d\"},"
                    "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"DaemonSet\","
                    "\"name\":\"ds\",\"uid\":\"u1\",\"controller\":true}]},\"revision\":3,"
                    "\"data\":{\"spec\":{\"template\":{\"$patch\":\"replace\"}}}}");
    assert_non_null(cr);
    assert_int_equal(drv_model_normalize(cr, NULL), DRV_OK);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_create(f->store, DRV_KIND_CONTROLLERREVISION, cr, &err), DRV_OK);
    cJSON_Delete(cr);
    char *b = NULL;
    assert_int_equal(http(f, "GET",
                          "/apis/apps/v1/namespaces/default/controllerrevisions?"
                          "labelSelector=app%3Dd",
                          NULL, NULL, &b),
                     200);
    assert_non_null(strstr(b, "\"kind\":\"ControllerRevisionList\""));
    assert_non_null(strstr(b, "\"revision\":3"));
    assert_non_null(strstr(b, "\"$patch\":\"replace\""));
    free(b);
    assert_int_equal(http(f, "GET", "/apis/apps/v1/controllerrevisions", NULL, NULL, &b), 200);
    assert_non_null(strstr(b, "\"name\":\"ds-abc\""));
    free(b);
    assert_int_equal(http(f, "POST", "/apis/apps/v1/namespaces/default/controllerrevisions",
                          "application/json", "{}", &b),
                     405);
    assert_non_null(strstr(b, "change the DaemonSet"));
    free(b);
    assert_int_equal(http(f, "PATCH", "/apis/apps/v1/namespaces/default/controllerrevisions/ds-abc",
                          "application/merge-patch+json", "{\"revision\":9}", &b),
                     405);
    free(b);
    assert_int_equal(http(f, "GET",
                          "/apis/apps/v1/namespaces/default/controllerrevisions/ds-abc/status",
                          NULL, NULL, &b),
                     404);
    free(b);
    assert_int_equal(http(f, "GET", "/apis/apps/v1", NULL, NULL, &b), 200);
    assert_non_null(strstr(b, "\"name\":\"controllerrevisions\""));
    free(b);
    /* kubectl get controllerrevisions: NAME CONTROLLER REVISION AGE. */
    int fd = connect_api(f);
    const char *req = "GET /apis/apps/v1/namespaces/default/controllerrevisions HTTP/1.1\r\n"
                      "Host: x\r\nConnection: close\r\nAccept: "
                      "application/json;as=Table;v=v1;g=meta.k8s.io,application/json\r\n\r\n";
    drv_buf_t out = DRV_BUF_INIT(1 << 20);
    pump(f, fd, req, strlen(req), &out, NULL);
    close(fd);
    const char *t = drv_buf_str(&out);
    assert_non_null(strstr(t, "\"name\":\"Controller\""));
    assert_non_null(strstr(t, "\"name\":\"Revision\""));
    assert_non_null(strstr(t, "[\"ds-abc\",\"daemonset.apps/ds\",3,"));
    drv_buf_free(&out);
    assert_int_equal(http(f, "DELETE",
                          "/apis/apps/v1/namespaces/default/controllerrevisions/ds-abc", NULL, NULL,
                          &b),
                     200);
    free(b);
    assert_int_equal(http(f, "GET", "/apis/apps/v1/namespaces/default/controllerrevisions/ds-abc",
                          NULL, NULL, &b),
                     404);
    free(b);
}

static void test_invalid_names_fields(void **state)
{
    fx_t *f = *state;
    char *b = NULL;
    assert_int_equal(http(f, "POST", DPATH, "application/json",
                          "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":"
                          "{\"name\":\"x\"},\"spec\":{\"selector\":{\"matchLabels\":{\"a\":\"b\"}},"
                          "\"template\":{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"spec\":"
                          "{\"containers\":[{\"name\":\"c\"}]}}}}",
                          &b),
                     422);
    cJSON *o = cJSON_Parse(b);
    free(b);
    assert_string_equal(cJSON_GetObjectItem(o, "reason")->valuestring, "Invalid");
    assert_int_equal(cJSON_GetObjectItem(o, "code")->valueint, 422);
    cJSON *causes = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "details"), "causes");
    bool found = false;
    cJSON *c;
    cJSON_ArrayForEach(c, causes)
    {
        if (!strcmp(cJSON_GetObjectItem(c, "field")->valuestring,
                    "spec.template.spec.containers[0].image"))
            found = true;
    }
    assert_true(found);
    cJSON_Delete(o);

    /* kind in the body other than the URL's. */
    assert_int_equal(http(f, "POST", DPATH, "application/json",
                          "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                          "\"a\"}}",
                          &b),
                     400);
    assert_non_null(strstr(b, "does not match"));
    free(b);
    /* metadata not an object. */
    assert_int_equal(http(f, "POST", "/api/v1/namespaces/default/configmaps", "application/json",
                          "{\"metadata\":7}", &b),
                     422);
    free(b);
    /* name in the body other than the URL's on PUT. */
    assert_int_equal(http(f, "PUT", "/api/v1/namespaces/default/configmaps/a", "application/json",
                          "{\"metadata\":{\"name\":\"b\"}}", &b),
                     400);
    free(b);
    /* Invalid namespace in the URL is a field problem, not a crash. */
    assert_int_equal(http(f, "POST", "/api/v1/namespaces/Bad_NS/configmaps", "application/json",
                          "{\"metadata\":{\"name\":\"a\"}}", &b),
                     422);
    assert_non_null(strstr(b, "metadata.namespace"));
    free(b);
    /* Cluster-scoped kind. */
    assert_int_equal(http(f, "POST", "/api/v1/nodes", "application/json",
                          "{\"metadata\":{\"name\":\"n1\"}}", &b),
                     201);
    free(b);
    assert_int_equal(http(f, "GET", "/api/v1/nodes/n1", NULL, NULL, &b), 200);
    free(b);
}

static void test_hostile_bodies(void **state)
{
    fx_t *f = *state;
    char *b = NULL;
    const char *cm = "/api/v1/namespaces/default/configmaps";
    assert_int_equal(http(f, "POST", cm, "application/json", "", &b), 400);
    free(b);
    assert_int_equal(http(f, "POST", cm, "application/json", "{\"a\":", &b), 400);
    free(b);
    assert_int_equal(http(f, "POST", cm, "application/json", "[1,2]", &b), 400);
    free(b);
    assert_int_equal(http(f, "POST", cm, "application/json", "{} {}", &b), 400);
    free(b);
    assert_int_equal(http(f, "POST", cm, "text/plain", "hi", &b), 415);
    free(b);
    /* Deep nesting. */
    drv_buf_t deep = DRV_BUF_INIT(1 << 20);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(drv_buf_puts(&deep, "{\"a\":"), DRV_OK);
    assert_int_equal(http(f, "POST", cm, "application/json", drv_buf_str(&deep), &b), 400);
    free(b);
    drv_buf_free(&deep);
    /* Over the body cap (64 KiB in this fixture): declared and actual. */
    drv_buf_t big = DRV_BUF_INIT(1 << 20);
    assert_int_equal(drv_buf_puts(&big, "{\"data\":{\"k\":\""), DRV_OK);
    for (int i = 0; i < 70000; i++)
        assert_int_equal(drv_buf_putc(&big, 'x'), DRV_OK);
    assert_int_equal(drv_buf_puts(&big, "\"}}"), DRV_OK);
    assert_int_equal(http(f, "POST", cm, "application/json", drv_buf_str(&big), &b), 413);
    assert_non_null(strstr(b, "RequestEntityTooLarge"));
    free(b);
    drv_buf_free(&big);
    /* Bad selector. */
    assert_int_equal(http(f, "GET", "/api/v1/pods?labelSelector=%28%28", NULL, NULL, &b), 400);
    free(b);
    /* YAML alias bomb answered, not expanded forever. */
    assert_int_equal(
        http(f, "POST", cm, "application/yaml",
             "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
             "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
             "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
             &b),
        400);
    free(b);
}

static void test_routes_and_methods(void **state)
{
    fx_t *f = *state;
    char *b = NULL;
    assert_int_equal(http(f, "GET", "/healthz", NULL, NULL, &b), 200);
    assert_string_equal(b, "ok");
    free(b);
    assert_int_equal(http(f, "GET", "/api/v1/namespaces/default/widgets", NULL, NULL, &b), 404);
    free(b);
    assert_int_equal(http(f, "GET", "/api/v1/namespaces//pods", NULL, NULL, &b), 404);
    free(b);
    assert_int_equal(http(f, "DELETE", "/api/v1/pods", NULL, NULL, &b), 405);
    assert_non_null(strstr(b, "MethodNotAllowed"));
    free(b);
    assert_int_equal(http(f, "POST", "/healthz", "application/json", "{}", &b), 405);
    free(b);
    assert_int_equal(http(f, "OPTIONS", "/api/v1/pods", NULL, NULL, &b), 405);
    free(b);

    size_t n = 0;
    const drv_api_route_t *r = drv_api_routes(&n);
    assert_true(n >= 30);
    for (int k = 1; k < DRV_KIND__COUNT; k++) {
        bool coll = false, item = false, status = false;
        for (size_t i = 0; i < n; i++) {
            if (r[i].kind != (drv_kind_t)k)
                continue;
            assert_non_null(strstr(r[i].pattern, drv_kind_plural((drv_kind_t)k)));
            coll |= r[i].op == DRV_API_OP_COLLECTION && (r[i].methods & DRV_API_M_POST);
            item |= r[i].op == DRV_API_OP_ITEM && (r[i].methods & DRV_API_M_DELETE);
            status |= r[i].op == DRV_API_OP_STATUS;
        }
        /* ControllerRevisions, Endpoints, EndpointSlices, NetworkPolicies, StorageClasses and
         * PriorityClasses have no status, as in Kubernetes. */
        assert_true(coll && item &&
                    (status || k == DRV_KIND_CONTROLLERREVISION || k == DRV_KIND_ENDPOINTS ||
                     k == DRV_KIND_ENDPOINTSLICE || k == DRV_KIND_NETWORKPOLICY ||
                     k == DRV_KIND_STORAGECLASS || k == DRV_KIND_PRIORITYCLASS ||
                     (k >= DRV_KIND_SERVICEACCOUNT && k <= DRV_KIND_CLUSTERROLEBINDING)));
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            assert_string_not_equal(r[i].pattern, r[j].pattern);
}

static void test_metrics_gauges(void **state)
{
    fx_t *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_api_set_gauge(f->api, "drover_nodes{state=\"Ready\"}", 3, &err), DRV_OK);
    assert_int_equal(drv_api_set_gauge(f->api, "drover_nodes{state=\"Ready\"}", 4, &err), DRV_OK);
    assert_int_equal(drv_api_set_gauge(f->api, "drover_nodes{state=\"NotReady\"}", 1, &err),
                     DRV_OK);
    assert_int_equal(drv_api_set_gauge(f->api, "9bad", 1, &err), DRV_ERR_INVALID);
    assert_int_equal(drv_api_set_gauge(f->api, "a b", 1, &err), DRV_ERR_INVALID);
    assert_int_equal(drv_api_set_gauge(f->api, "x{y=\"1\"", 1, &err), DRV_ERR_INVALID);
    assert_int_equal(drv_api_set_gauge(f->api, "", 1, &err), DRV_ERR_INVALID);
    char *b = NULL;
    assert_int_equal(http(f, "GET", "/healthz", NULL, NULL, &b), 200);
    free(b);
    assert_int_equal(http(f, "GET", "/metrics", NULL, NULL, &b), 200);
    assert_non_null(strstr(b, "drover_nodes{state=\"Ready\"} 4\n"));
    assert_non_null(strstr(b, "drover_nodes{state=\"NotReady\"} 1\n"));
    assert_non_null(strstr(b, "# TYPE drover_nodes gauge\n"));
    assert_non_null(strstr(b, "drover_api_requests_total{method=\"GET\",code=\"200\"} 1\n"));
    assert_non_null(strstr(b, "drover_objects{kind=\"Pod\"} 0\n"));
    assert_non_null(strstr(b, "drover_store_resource_version 0\n"));
    free(b);
}

static void test_watch(void **state)
{
    fx_t *f = *state;
    int w1 = connect_api(f);
    const char *wreq = "GET /api/v1/namespaces/default/configmaps?watch=1 HTTP/1.1\r\n"
                       "Host: x\r\nAccept: text/event-stream\r\n\r\n";
    drv_buf_t out = DRV_BUF_INIT(1 << 20);
    pump(f, w1, wreq, strlen(wreq), &out, ": watching");
    assert_non_null(strstr(drv_buf_str(&out), "text/event-stream"));
    /* The limit in this fixture is one stream. */
    char *b = NULL;
    assert_int_equal(http(f, "GET", "/api/v1/configmaps?watch=true", NULL, NULL, &b), 429);
    free(b);
    assert_int_equal(http(f, "POST", "/api/v1/namespaces/default/configmaps", "application/json",
                          "{\"metadata\":{\"name\":\"c1\"}}", &b),
                     201);
    free(b);
    assert_int_equal(http(f, "POST", "/api/v1/namespaces/other/configmaps", "application/json",
                          "{\"metadata\":{\"name\":\"c2\"}}", &b),
                     201);
    free(b);
    assert_int_equal(http(f, "DELETE", "/api/v1/namespaces/default/configmaps/c1", NULL, NULL, &b),
                     200);
    free(b);
    pump(f, w1, NULL, 0, &out, "event: DELETED");
    const char *s = drv_buf_str(&out);
    const char *a = strstr(s, "event: ADDED\nid: 1\ndata: {");
    const char *d = strstr(s, "event: DELETED\nid: 3\n");
    assert_non_null(a);
    assert_non_null(d);
    assert_true(a < d);
    assert_null(strstr(s, "\"c2\"")); /* another namespace */
    close(w1);
    drv_buf_free(&out);
    /* The stream's slot is free again once the client has gone. */
    int64_t end = apic_now_ms() + 3000;
    int code = 0;
    while (apic_now_ms() < end) {
        int w2 = connect_api(f);
        drv_buf_t o2 = DRV_BUF_INIT(1 << 20);
        const char *r2 = "GET /api/v1/configmaps?watch=1&resourceVersion=1"
                         "&fieldSelector=metadata.namespace%3Dother HTTP/1.1\r\n"
                         "Host: x\r\nAccept: text/event-stream\r\n\r\n";
        pump(f, w2, r2, strlen(r2), &o2, "\r\n\r\n");
        code = 0;
        if (sscanf(drv_buf_str(&o2), "HTTP/1.%*d %d", &code) != 1)
            code = 0;
        if (code == 200) {
            pump(f, w2, NULL, 0, &o2, "\"c2\"");
            assert_null(strstr(drv_buf_str(&o2), "id: 1\n"));
            assert_non_null(strstr(drv_buf_str(&o2), "event: ADDED\nid: 2\n"));
            /* c1's deletion (rv 3, read in the same batch) is in namespace default. */
            assert_null(strstr(drv_buf_str(&o2), "event: DELETED"));
        }
        close(w2);
        drv_buf_free(&o2);
        if (code == 200)
            break;
    }
    assert_int_equal(code, 200);
    /* Bad resourceVersion. */
    assert_int_equal(
        http(f, "GET", "/api/v1/configmaps?watch=1&resourceVersion=-3", NULL, NULL, &b), 400);
    free(b);
}

/* A watch from a resourceVersion older than the retained change log is 410 Gone. */
static void test_watch_too_old(void **state)
{
    fx_t *f = *state;
    char *b = NULL;
    assert_int_equal(http(f, "POST", "/api/v1/namespaces/default/configmaps", "application/json",
                          "{\"metadata\":{\"name\":\"busy\"}}", &b),
                     201);
    free(b);
    /* A stream open from the start that cannot keep up ends with an ERROR event (410). */
    int w = connect_api(f);
    const char *wreq =
        "GET /api/v1/configmaps?watch=1 HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n";
    drv_buf_t out = DRV_BUF_INIT(1 << 20);
    pump(f, w, wreq, strlen(wreq), &out, ": watching");
    drv_error_t err = DRV_ERROR_INIT;
    for (int i = 0; i <= DRV_HSTORE_LOG_KEEP; i++) {
        cJSON *st = cJSON_CreateObject();
        cJSON_AddNumberToObject(st, "i", i);
        assert_int_equal(drv_hstore_update_status(f->store, DRV_KIND_CONFIGMAP, "default", "busy",
                                                  st, NULL, &err),
                         DRV_OK);
    }
    drv_api_notify(f->api);
    pump(f, w, NULL, 0, &out, "0\r\n\r\n"); /* the stream's last chunk */
    const char *s = drv_buf_str(&out);
    assert_non_null(strstr(s, "event: ERROR\ndata: {"));
    assert_non_null(strstr(s, "\"code\":410"));
    assert_null(strstr(s, "event: MODIFIED"));
    close(w);
    drv_buf_free(&out);
    /* An SSE client asking for a resourceVersion the log no longer has: 410 at once. */
    drv_buf_t raw = DRV_BUF_INIT(1 << 16), o2 = DRV_BUF_INIT(1 << 20);
    apic_request(&raw, "GET", "/api/v1/configmaps?watch=1&resourceVersion=1",
                 "Accept: text/event-stream\r\n", NULL);
    w = connect_api(f);
    pump(f, w, raw.data, raw.len, &o2, NULL);
    close(w);
    assert_non_null(strstr(drv_buf_str(&o2), " 410 "));
    assert_non_null(strstr(drv_buf_str(&o2), "\"reason\":\"Expired\""));
    drv_buf_free(&raw);
    drv_buf_free(&o2);
    /* Kubernetes' clients get it as the apiserver sends it: an ERROR event in a 200 stream. */
    assert_int_equal(http(f, "GET", "/api/v1/configmaps?watch=1&resourceVersion=1", NULL, NULL, &b),
                     200);
    assert_non_null(strstr(b, "{\"type\":\"ERROR\",\"object\":{"));
    assert_non_null(strstr(b, "\"reason\":\"Expired\""));
    assert_non_null(strstr(b, "too old resource version"));
    free(b);
}

/* Kubernetes' watch encoding (kubectl, client-go, the official clients): JSON lines, the current
 * state first when no resourceVersion is given, bookmarks on request, timeoutSeconds. */
static void test_watch_kubernetes(void **state)
{
    fx_t *f = *state;
    char *b = NULL;
    assert_int_equal(http(f, "POST", "/api/v1/namespaces/default/configmaps", "application/json",
                          "{\"metadata\":{\"name\":\"before\",\"labels\":{\"a\":\"1\"}}}", &b),
                     201);
    free(b);
    assert_int_equal(http(f, "POST", "/api/v1/namespaces/default/configmaps", "application/json",
                          "{\"metadata\":{\"name\":\"other\"}}", &b),
                     201);
    free(b);
    int w = connect_api(f);
    const char *wreq = "GET /api/v1/namespaces/default/configmaps?watch=true&labelSelector=a%3D1"
                       "&allowWatchBookmarks=true&sendInitialEvents=true&timeoutSeconds=30 "
                       "HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n";
    drv_buf_t out = DRV_BUF_INIT(1 << 20);
    pump(f, w, wreq, strlen(wreq), &out, "initial-events-end");
    const char *s = drv_buf_str(&out);
    assert_non_null(strstr(s, "Content-Type: application/json"));
    const char *added = strstr(s, "{\"type\":\"ADDED\",\"object\":{");
    assert_non_null(added);
    assert_non_null(strstr(added, "\"name\":\"before\""));
    assert_null(strstr(s, "\"name\":\"other\"")); /* the label selector holds */
    const char *bm = strstr(s, "{\"type\":\"BOOKMARK\",\"object\":{");
    assert_non_null(bm);
    assert_true(added < bm);
    assert_null(strstr(s, "event: ")); /* no SSE framing */
    assert_int_equal(http(f, "PATCH", "/api/v1/namespaces/default/configmaps/before",
                          "application/merge-patch+json", "{\"data\":{\"k\":\"v\"}}", &b),
                     200);
    free(b);
    pump(f, w, NULL, 0, &out, "MODIFIED");
    s = drv_buf_str(&out);
    const char *mod = strstr(s, "{\"type\":\"MODIFIED\",\"object\":{");
    assert_non_null(mod);
    assert_non_null(strchr(mod, '\n')); /* one event a line */
    close(w);
    drv_buf_free(&out);
    /* timeoutSeconds ends the stream: the final chunk arrives. */
    w = connect_api(f);
    const char *treq = "GET /api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1"
                       "&timeoutSeconds=1 HTTP/1.1\r\nHost: x\r\n\r\n";
    drv_buf_t o3 = DRV_BUF_INIT(1 << 20);
    int64_t t0 = apic_now_ms();
    pump(f, w, treq, strlen(treq), &o3, "\r\n0\r\n\r\n");
    assert_non_null(strstr(drv_buf_str(&o3), "\r\n0\r\n\r\n"));
    assert_true(apic_now_ms() - t0 < 5000);
    close(w);
    drv_buf_free(&o3);
}

static void test_parse_listen(void **state)
{
    (void)state;
    char a[64];
    uint16_t p = 0;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hub_parse_listen("127.0.0.1:8080", a, sizeof(a), &p, &err), DRV_OK);
    assert_string_equal(a, "127.0.0.1");
    assert_int_equal(p, 8080);
    assert_int_equal(drv_hub_parse_listen("[::1]:0", a, sizeof(a), &p, &err), DRV_OK);
    assert_string_equal(a, "::1");
    assert_int_equal(p, 0);
    assert_int_equal(drv_hub_parse_listen("127.0.0.1", a, sizeof(a), &p, &err), DRV_ERR_INVALID);
    assert_int_equal(drv_hub_parse_listen("127.0.0.1:99999", a, sizeof(a), &p, &err),
                     DRV_ERR_INVALID);
    assert_int_equal(drv_hub_parse_listen(":80", a, sizeof(a), &p, &err), DRV_ERR_INVALID);
    assert_int_equal(drv_hub_parse_listen("[::1:80", a, sizeof(a), &p, &err), DRV_ERR_INVALID);
    /* A bind address that is no IP is refused by the API. */
    drv_api_t *api = NULL;
    drv_api_opts_t o = {.bind_addr = "localhost", .store = (drv_hstore_t *)1};
    assert_int_equal(drv_api_new(&o, &api, &err), DRV_ERR_INVALID);
    assert_null(api);
}

/* What kubectl leans on besides CRUD: the scale subresource, dryRun=All (nothing kept),
 * DeleteOptions (preconditions, propagationPolicy) and Tables in watch events. */
static void test_kubectl_extras(void **state)
{
    fx_t *f = *state;
    char *b = NULL;
    assert_int_equal(http(f, "POST", DPATH, "application/json", DEPLOY, &b), 201);
    cJSON *o = cJSON_Parse(b);
    free(b);
    char uid[64];
    snprintf(uid, sizeof(uid), "%s",
             cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), "uid")->valuestring);
    cJSON_Delete(o);
    /* Scale: read, merge-patched (kubectl scale), refused when negative. */
    assert_int_equal(http(f, "GET", DPATH "/web/scale", NULL, NULL, &b), 200);
    assert_non_null(strstr(b, "\"kind\":\"Scale\""));
    assert_non_null(strstr(b, "\"apiVersion\":\"autoscaling/v1\""));
    assert_non_null(strstr(b, "\"selector\":\"app=web\""));
    assert_non_null(strstr(b, "\"replicas\":2"));
    free(b);
    assert_int_equal(http(f, "PATCH", DPATH "/web/scale", "application/merge-patch+json",
                          "{\"spec\":{\"replicas\":5}}", &b),
                     200);
    assert_non_null(strstr(b, "\"spec\":{\"replicas\":5}"));
    free(b);
    assert_int_equal(http(f, "GET", DPATH "/web", NULL, NULL, &b), 200);
    assert_non_null(strstr(b, "\"replicas\":5"));
    free(b);
    assert_int_equal(
        http(f, "PUT", DPATH "/web/scale", "application/json", "{\"spec\":{\"replicas\":-1}}", &b),
        422);
    assert_non_null(strstr(b, "spec.replicas"));
    free(b);
    assert_int_equal(http(f, "GET", DPATH "/nope/scale", NULL, NULL, &b), 404);
    free(b);
    /* dryRun=All: the answer is what would be stored; nothing is. */
    assert_int_equal(http(f, "POST", "/api/v1/namespaces/default/configmaps?dryRun=All",
                          "application/json", "{\"metadata\":{\"name\":\"dry\"}}", &b),
                     201);
    assert_non_null(strstr(b, "\"name\":\"dry\""));
    free(b);
    assert_int_equal(http(f, "GET", "/api/v1/namespaces/default/configmaps/dry", NULL, NULL, &b),
                     404);
    free(b);
    assert_int_equal(http(f, "PATCH", DPATH "/web?dryRun=All", "application/merge-patch+json",
                          "{\"spec\":{\"replicas\":7}}", &b),
                     200);
    assert_non_null(strstr(b, "\"replicas\":7"));
    free(b);
    assert_int_equal(http(f, "GET", DPATH "/web", NULL, NULL, &b), 200);
    assert_non_null(strstr(b, "\"replicas\":5"));
    free(b);
    assert_int_equal(http(f, "DELETE", DPATH "/web?dryRun=All", NULL, NULL, &b), 200);
    free(b);
    assert_int_equal(http(f, "GET", DPATH "/web", NULL, NULL, &b), 200);
    free(b);
    assert_int_equal(http(f, "DELETE", DPATH "/web?dryRun=Some", NULL, NULL, &b), 400);
    assert_non_null(strstr(b, "dryRun"));
    free(b);
    /* DeleteOptions in the body. */
    assert_int_equal(http(f, "DELETE", DPATH "/web", "application/json",
                          "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"preconditions\":"
                          "{\"uid\":\"00000000-0000-0000-0000-000000000000\"}}",
                          &b),
                     409);
    assert_non_null(strstr(b, "Precondition failed"));
    free(b);
    assert_int_equal(http(f, "DELETE", DPATH "/web", "application/json",
                          "{\"propagationPolicy\":\"Orphan\"}", &b),
                     422);
    free(b);
    assert_int_equal(http(f, "DELETE", DPATH "/web", "application/json",
                          "{\"propagationPolicy\":\"Sideways\"}", &b),
                     400);
    free(b);
    assert_int_equal(http(f, "DELETE", DPATH "/web", "application/json", "{not json", &b), 400);
    assert_non_null(strstr(b, "request body"));
    free(b);
    assert_int_equal(http(f, "DELETE", DPATH "/web", "application/json", "[1]", &b), 400);
    assert_non_null(strstr(b, "DeleteOptions"));
    free(b);
    char body[256];
    snprintf(body, sizeof(body),
             "{\"propagationPolicy\":\"Foreground\",\"preconditions\":{\"uid\":\"%s\"}}", uid);
    assert_int_equal(http(f, "DELETE", DPATH "/web", "application/json", body, &b), 200);
    free(b);
    /* A watch that asks for Tables (kubectl get -w) gets one-row Tables, columns once. */
    int w = connect_api(f);
    const char *wreq =
        "GET /api/v1/namespaces/default/configmaps?watch=true&resourceVersion=0 HTTP/1.1\r\n"
        "Host: x\r\nAccept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json\r\n\r\n";
    drv_buf_t out = DRV_BUF_INIT(1 << 20);
    pump(f, w, wreq, strlen(wreq), &out, "\r\n\r\n");
    assert_int_equal(http(f, "POST", "/api/v1/namespaces/default/configmaps", "application/json",
                          "{\"metadata\":{\"name\":\"t1\"}}", &b),
                     201);
    free(b);
    assert_int_equal(http(f, "POST", "/api/v1/namespaces/default/configmaps", "application/json",
                          "{\"metadata\":{\"name\":\"t2\"}}", &b),
                     201);
    free(b);
    pump(f, w, NULL, 0, &out, "\"t2\"");
    const char *s = drv_buf_str(&out);
    const char *first = strstr(s, "{\"type\":\"ADDED\",\"object\":{");
    assert_non_null(first);
    assert_non_null(strstr(first, "\"kind\":\"Table\""));
    const char *cols = strstr(s, "\"columnDefinitions\"");
    assert_non_null(cols);
    assert_null(strstr(cols + 1, "\"columnDefinitions\":[{")); /* once only */
    close(w);
    drv_buf_free(&out);
    /* fieldValidation: Strict (the default) refuses an unknown field, Ignore drops it, Warn
     * drops it and says so in a Warning header; a field Kubernetes has and Drover does not run
     * stays an error whatever the client asks. */
    const char *typo =
        "{\"metadata\":{\"name\":\"fv\",\"labls\":{\"a\":\"b\"}},\"data\":{\"k\":\"v\"}}";
    assert_int_equal(http(f, "POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
                          "application/json", typo, &b),
                     422);
    assert_non_null(strstr(b, "metadata.labls"));
    free(b);
    assert_int_equal(http(f, "POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Nope",
                          "application/json", typo, &b),
                     400);
    free(b);
    assert_int_equal(http(f, "POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Ignore",
                          "application/json", typo, &b),
                     201);
    assert_null(strstr(b, "labls"));
    assert_non_null(strstr(b, "\"k\":\"v\""));
    free(b);
    drv_buf_t wr = DRV_BUF_INIT(1 << 16), wo = DRV_BUF_INIT(1 << 20);
    apic_request(&wr, "PUT", "/api/v1/namespaces/default/configmaps/fv?fieldValidation=Warn",
                 "Content-Type: application/json\r\n", typo);
    w = connect_api(f);
    pump(f, w, wr.data, wr.len, &wo, NULL);
    close(w);
    assert_non_null(strstr(drv_buf_str(&wo), " 200 "));
    assert_non_null(
        strstr(drv_buf_str(&wo), "Warning: 299 - \"unknown field \\\"metadata.labls\\\"\""));
    drv_buf_free(&wr);
    drv_buf_free(&wo);
    assert_int_equal(http(f, "POST", "/api/v1/namespaces/default/pods?fieldValidation=Ignore",
                          "application/json",
                          "{\"metadata\":{\"name\":\"g\"},\"spec\":{\"containers\":[{\"name\":"
                          "\"c\",\"image\":\"busybox\",\"stdin\":true}]}}",
                          &b),
                     422);
    assert_non_null(strstr(b, "not supported by Drover"));
    free(b);
    /* Aggregated discovery, as kubectl 1.26+ asks for it: both roots in one answer each. */
    drv_buf_t raw = DRV_BUF_INIT(1 << 16), o2 = DRV_BUF_INIT(1 << 20);
    apic_request(&raw, "GET", "/apis",
                 "Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                 "application/json\r\n",
                 NULL);
    w = connect_api(f);
    pump(f, w, raw.data, raw.len, &o2, NULL);
    close(w);
    s = drv_buf_str(&o2);
    assert_non_null(strstr(s, "Content-Type: application/json;g=apidiscovery.k8s.io;v=v2;"
                              "as=APIGroupDiscoveryList"));
    assert_non_null(strstr(s, "\"kind\":\"APIGroupDiscoveryList\""));
    assert_non_null(strstr(s, "\"subresource\":\"scale\",\"responseKind\":{\"group\":"
                              "\"autoscaling\",\"version\":\"v1\",\"kind\":\"Scale\"}"));
    assert_non_null(strstr(s, "\"categories\":[\"all\"]"));
    drv_buf_free(&raw);
    drv_buf_free(&o2);
    assert_int_equal(http(f, "GET", "/apis", NULL, NULL, &b), 200); /* no Accept: legacy */
    assert_non_null(strstr(b, "\"kind\":\"APIGroupList\""));
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_names_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_namespaces_and_replicasets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_controllerrevisions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routes_and_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_gauges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch, setup_one_watch, teardown),
        cmocka_unit_test_setup_teardown(test_watch_too_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_kubernetes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kubectl_extras, setup, teardown),
        cmocka_unit_test(test_parse_listen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
