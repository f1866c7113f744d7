/* The endpoints controller (hub/ctrl/endpoints.c) over a real store: ready, not ready and
 * terminating pods in EndpointSlices and Endpoints, named target ports resolved per pod into
 * separate slices, nothing rewritten when nothing changed, everything gone with the Service. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctrl/ctrl.h"
#include "drover/json.h"

#define T0 1800000000000LL

struct fx {
    char dir[64];
    drv_hstore_t *s;
};

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/drover-endpoints-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char path[128];
    snprintf(path, sizeof(path), "%s/hub.db", f->dir);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_open(path, &f->s, &err) != DRV_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    drv_hstore_close(f->s);
    nftw(f->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void put(drv_hstore_t *s, drv_kind_t k, const char *json)
{
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_create(s, k, o, &err), DRV_OK);
    cJSON_Delete(o);
}

/* A pod of app=web with ip, ready or not, terminating or not, whose container names port
 * "http" as http_port (0: no such port). */
static void pod(drv_hstore_t *s, const char *name, const char *ip, bool ready, bool terminating,
                int http_port)
{
    char j[1024], ports[128] = "[]";
    if (http_port)
        snprintf(ports, sizeof(ports), "[{\"name\":\"http\",\"containerPort\":%d}]", http_port);
    snprintf(j, sizeof(j),
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"default\",\"labels\":{\"app\":\"web\"}%s},"
             "\"spec\":{\"nodeName\":\"n1\",\"containers\":[{\"name\":\"c\",\"image\":\"x\","
             "\"ports\":%s}]},"
             "\"status\":{\"phase\":\"Running\",\"podIP\":\"%s\",\"conditions\":[{\"type\":"
             "\"Ready\",\"status\":\"%s\"}]}}",
             name, terminating ? ",\"deletionTimestamp\":\"2027-01-01T00:00:00Z\"" : "", ports, ip,
             ready ? "True" : "False");
    put(s, DRV_KIND_POD, j);
}

static void reconcile(drv_hstore_t *s)
{
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_ctrl_endpoints_reconcile(s, T0, &err), DRV_OK);
}

static cJSON *list(drv_hstore_t *s, drv_kind_t k)
{
    cJSON *o = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_list(s, k, "default", NULL, &o, NULL, &err), DRV_OK);
    return o;
}

/* The slice endpoint for ip in slices, or NULL. */
static const cJSON *endpoint(const cJSON *slices, const char *ip, const cJSON **slice)
{
    const cJSON *sl, *e;
    cJSON_ArrayForEach(sl, slices)
    {
        cJSON_ArrayForEach(e, drv_json_get(sl, "endpoints"))
        {
            const cJSON *a = cJSON_GetArrayItem(drv_json_get(e, "addresses"), 0);
            if (cJSON_IsString(a) && !strcmp(a->valuestring, ip)) {
                if (slice)
                    *slice = sl;
                return e;
            }
        }
    }
    return NULL;
}

static bool cond(const cJSON *e, const char *c)
{
    return cJSON_IsTrue(drv_json_get(drv_json_get(e, "conditions"), c));
}

static void test_conditions_and_ports(void **state)
{
    struct fx *f = *state;
    put(f->s, DRV_KIND_SERVICE,
        "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\","
        "\"namespace\":\"default\",\"uid\":\"u1\"},\"spec\":{\"selector\":{\"app\":\"web\"},"
        "\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":\"http\"}]}}");
    pod(f->s, "a", "10.42.0.2", true, false, 8080);
    pod(f->s, "b", "10.42.0.3", false, false, 8080);
    pod(f->s, "c", "10.42.0.4", true, true, 8080);
    pod(f->s, "d", "10.42.1.2", true, false, 9090); /* resolves differently */
    pod(f->s, "e", "10.42.1.3", true, false, 0);    /* lacks the port */
    put(f->s, DRV_KIND_POD,
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"other\",\"namespace\":"
        "\"default\",\"labels\":{\"app\":\"db\"}},\"spec\":{\"containers\":[]},\"status\":"
        "{\"podIP\":\"10.42.0.9\"}}");
    reconcile(f->s);
    cJSON *slices = list(f->s, DRV_KIND_ENDPOINTSLICE);
    assert_int_equal(cJSON_GetArraySize(slices), 3); /* 8080, 9090, no ports */
    const cJSON *sa = NULL, *sd = NULL, *se = NULL;
    const cJSON *a = endpoint(slices, "10.42.0.2", &sa), *b = endpoint(slices, "10.42.0.3", NULL),
                *c = endpoint(slices, "10.42.0.4", NULL), *d = endpoint(slices, "10.42.1.2", &sd),
                *e = endpoint(slices, "10.42.1.3", &se);
    assert_non_null(a), assert_non_null(b), assert_non_null(c), assert_non_null(d);
    assert_non_null(e);
    assert_null(endpoint(slices, "10.42.0.9", NULL));
    assert_true(cond(a, "ready") && cond(a, "serving") && !cond(a, "terminating"));
    assert_true(!cond(b, "ready") && !cond(b, "serving") && !cond(b, "terminating"));
    assert_true(!cond(c, "ready") && cond(c, "serving") && cond(c, "terminating"));
    assert_ptr_not_equal(sa, sd);
    assert_ptr_not_equal(sa, se);
    assert_int_equal(
        drv_json_int_at(cJSON_GetArrayItem(drv_json_get(sa, "ports"), 0), "port", 0, 65535, 0),
        8080);
    assert_int_equal(
        drv_json_int_at(cJSON_GetArrayItem(drv_json_get(sd, "ports"), 0), "port", 0, 65535, 0),
        9090);
    assert_int_equal(cJSON_GetArraySize(drv_json_get(se, "ports")), 0);
    const cJSON *labels = drv_json_get(drv_json_get(sa, "metadata"), "labels");
    assert_string_equal(drv_json_str(labels, "kubernetes.io/service-name"), "web");
    assert_string_equal(drv_json_str(labels, "endpointslice.kubernetes.io/managed-by"),
                        "endpointslice-controller.k8s.io");
    const char *sname = drv_json_str_at(sa, "metadata.name");
    assert_true(!strncmp(sname, "web-", 4) && strlen(sname) == 9);
    cJSON_Delete(slices);
    /* The v1 Endpoints: a ready, b not ready, c (terminating) left out. */
    cJSON *eps = list(f->s, DRV_KIND_ENDPOINTS);
    assert_int_equal(cJSON_GetArraySize(eps), 1);
    char *text = cJSON_PrintUnformatted(eps);
    assert_non_null(strstr(text, "\"addresses\":[{\"ip\":\"10.42.0.2\""));
    assert_non_null(strstr(text, "\"notReadyAddresses\":[{\"ip\":\"10.42.0.3\""));
    assert_null(strstr(text, "10.42.0.4"));
    free(text);
    cJSON_Delete(eps);
    /* Nothing changed: nothing written. */
    uint64_t rv = drv_hstore_rv(f->s);
    reconcile(f->s);
    assert_int_equal(drv_hstore_rv(f->s), rv);
    /* The Service goes: its slices and Endpoints too. */
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_SERVICE, "default", "web", NULL, &err),
                     DRV_OK);
    reconcile(f->s);
    slices = list(f->s, DRV_KIND_ENDPOINTSLICE);
    eps = list(f->s, DRV_KIND_ENDPOINTS);
    assert_int_equal(cJSON_GetArraySize(slices), 0);
    assert_int_equal(cJSON_GetArraySize(eps), 0);
    cJSON_Delete(slices);
    cJSON_Delete(eps);
}

static void test_publish_not_ready(void **state)
{
    struct fx *f = *state;
    put(f->s, DRV_KIND_SERVICE,
        "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\","
        "\"namespace\":\"default\"},\"spec\":{\"selector\":{\"app\":\"web\"},"
        "\"publishNotReadyAddresses\":true,\"ports\":[{\"port\":80}]}}");
    pod(f->s, "b", "10.42.0.3", false, false, 0);
    reconcile(f->s);
    cJSON *slices = list(f->s, DRV_KIND_ENDPOINTSLICE);
    const cJSON *b = endpoint(slices, "10.42.0.3", NULL);
    assert_non_null(b);
    assert_true(cond(b, "ready") && !cond(b, "serving"));
    cJSON_Delete(slices);
}

static void node(drv_hstore_t *s, const char *name, bool ready, const char *internal,
                 const char *external)
{
    char j[1024], ext[128] = "";
    if (external)
        snprintf(ext, sizeof(ext), ",{\"type\":\"ExternalIP\",\"address\":\"%s\"}", external);
    snprintf(j, sizeof(j),
             "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\"},"
             "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"%s\"}],"
             "\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"%s\"}%s]}}",
             name, ready ? "True" : "False", internal, ext);
    put(s, DRV_KIND_NODE, j);
}

static cJSON *lb_ingress_of(drv_hstore_t *s, const char *name)
{
    cJSON *o = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_get(s, DRV_KIND_SERVICE, "default", name, &o, &err), DRV_OK);
    cJSON *ing = cJSON_Duplicate(drv_json_at(o, "status.loadBalancer.ingress"), true);
    cJSON_Delete(o);
    return ing;
}

/* A LoadBalancer Service is served on the Ready devices' own addresses (ExternalIP first),
 * and its status says so, as kubectl's EXTERNAL-IP shows it; a ClusterIP Service gets none. */
static void test_load_balancer_status(void **state)
{
    struct fx *f = *state;
    node(f->s, "n2", true, "192.168.1.12", NULL);
    node(f->s, "n1", true, "192.168.1.11", "203.0.113.7");
    node(f->s, "n3", false, "192.168.1.13", NULL);
    put(f->s, DRV_KIND_SERVICE,
        "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"lb\","
        "\"namespace\":\"default\"},\"spec\":{\"type\":\"LoadBalancer\",\"selector\":"
        "{\"app\":\"web\"},\"ports\":[{\"port\":80,\"nodePort\":30080}]}}");
    put(f->s, DRV_KIND_SERVICE,
        "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\","
        "\"namespace\":\"default\"},\"spec\":{\"selector\":{\"app\":\"web\"},"
        "\"ports\":[{\"port\":80}]}}");
    reconcile(f->s);
    cJSON *ing = lb_ingress_of(f->s, "lb");
    assert_int_equal(cJSON_GetArraySize(ing), 2);
    assert_string_equal(drv_json_str(cJSON_GetArrayItem(ing, 0), "ip"), "192.168.1.12");
    assert_string_equal(drv_json_str(cJSON_GetArrayItem(ing, 1), "ip"), "203.0.113.7");
    cJSON_Delete(ing);
    assert_null(lb_ingress_of(f->s, "web"));
    /* Nothing changed: no new write. */
    cJSON *before = NULL, *after = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_SERVICE, "default", "lb", &before, &err),
                     DRV_OK);
    reconcile(f->s);
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_SERVICE, "default", "lb", &after, &err), DRV_OK);
    assert_string_equal(drv_json_at(before, "metadata.resourceVersion")->valuestring,
                        drv_json_at(after, "metadata.resourceVersion")->valuestring);
    cJSON_Delete(before);
    cJSON_Delete(after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_conditions_and_ports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_not_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_balancer_status, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
