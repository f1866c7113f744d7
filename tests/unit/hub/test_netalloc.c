/* The address allocators (hub/ctrl/netalloc.c) over a real store: Nodes' pod CIDRs without
 * overlaps, also across a reopened store; ClusterIPs and NodePorts given at create, refused
 * when taken or out of range (naming the field), and an exhausted range. */
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
    char dir[64], path[128];
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
    snprintf(f->dir, sizeof(f->dir), "/tmp/drover-netalloc-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/hub.db", f->dir);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_open(f->path, &f->s, &err) != DRV_OK)
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

static void node(drv_hstore_t *s, const char *name, const char *cidr)
{
    char j[256];
    snprintf(j, sizeof(j),
             "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\"},"
             "\"spec\":{%s%s%s}}",
             name, cidr ? "\"podCIDR\":\"" : "", cidr ? cidr : "", cidr ? "\"" : "");
    put(s, DRV_KIND_NODE, j);
}

static char *pod_cidr(drv_hstore_t *s, const char *name)
{
    cJSON *o = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_get(s, DRV_KIND_NODE, NULL, name, &o, &err), DRV_OK);
    const char *c = drv_json_str(drv_json_get(o, "spec"), "podCIDR");
    const cJSON *cs = cJSON_GetArrayItem(drv_json_get(drv_json_get(o, "spec"), "podCIDRs"), 0);
    if (c && cs)
        assert_string_equal(c, cJSON_IsString(cs) ? cs->valuestring : "");
    char *r = strdup(c ? c : "");
    cJSON_Delete(o);
    return r;
}

static void expect_cidr(drv_hstore_t *s, const char *name, const char *want)
{
    char *c = pod_cidr(s, name);
    assert_string_equal(c, want);
    free(c);
}

static drv_ctrl_netalloc_t *alloc(drv_hstore_t *s, const char *cluster, int mask,
                                  const char *service)
{
    drv_ctrl_netcfg_t cfg;
    drv_ctrl_netalloc_t *na = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_ctrl_netcfg_init(&cfg, cluster, mask, service, &err), DRV_OK);
    assert_int_equal(drv_ctrl_netalloc_new(s, &cfg, &na, &err), DRV_OK);
    return na;
}

static void round_ok(drv_ctrl_netalloc_t *na)
{
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_ctrl_netalloc_reconcile(na, T0, &err), DRV_OK);
}

static size_t count_events(drv_hstore_t *s, const char *reason)
{
    cJSON *evs = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_list(s, DRV_KIND_EVENT, NULL, NULL, &evs, NULL, &err), DRV_OK);
    size_t n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, evs)
    {
        const char *r = drv_json_str(e, "reason");
        n += r && !strcmp(r, reason);
    }
    cJSON_Delete(evs);
    return n;
}

static void test_node_cidrs_across_restart(void **state)
{
    struct fx *f = *state;
    drv_ctrl_netalloc_t *na = alloc(f->s, NULL, 0, NULL);
    node(f->s, "a", NULL);
    node(f->s, "b", "10.42.1.0/24"); /* user-set, free: kept */
    node(f->s, "c", NULL);
    round_ok(na);
    expect_cidr(f->s, "a", "10.42.0.0/24");
    expect_cidr(f->s, "b", "10.42.1.0/24");
    expect_cidr(f->s, "c", "10.42.2.0/24");
    uint64_t rv = drv_hstore_rv(f->s);
    round_ok(na);
    assert_int_equal(drv_hstore_rv(f->s), rv); /* nothing to do: nothing written */
    drv_ctrl_netalloc_free(na);
    /* A restarted hub: a new allocator over the reopened store knows the blocks in use. */
    drv_hstore_close(f->s);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_open(f->path, &f->s, &err), DRV_OK);
    na = alloc(f->s, NULL, 0, NULL);
    node(f->s, "d", NULL);
    round_ok(na);
    expect_cidr(f->s, "a", "10.42.0.0/24");
    expect_cidr(f->s, "d", "10.42.3.0/24");
    drv_ctrl_netalloc_free(na);
}

static void test_node_cidr_refused_and_exhausted(void **state)
{
    struct fx *f = *state;
    /* Two /24 blocks in a /23. */
    drv_ctrl_netalloc_t *na = alloc(f->s, "10.42.0.0/23", 24, NULL);
    node(f->s, "a", "10.42.0.0/24");
    node(f->s, "b", "10.42.0.0/24"); /* taken by the older a */
    node(f->s, "c", "10.50.0.0/24"); /* outside */
    node(f->s, "d", NULL);
    node(f->s, "e", NULL); /* none left */
    round_ok(na);
    round_ok(na); /* says it once, not every round */
    expect_cidr(f->s, "a", "10.42.0.0/24");
    expect_cidr(f->s, "b", "10.42.0.0/24"); /* left as set, with a warning */
    expect_cidr(f->s, "d", "10.42.1.0/24");
    expect_cidr(f->s, "e", "");
    assert_int_equal(count_events(f->s, "CIDRAssignmentFailed"), 2);
    assert_int_equal(count_events(f->s, "CIDRNotAvailable"), 1);
    /* Through the API: a taken one is refused naming spec.podCIDR. */
    cJSON *n = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"f\"},"
                           "\"spec\":{\"podCIDR\":\"10.42.1.0/24\"}}");
    char field[64];
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(
        drv_ctrl_netalloc_admit(na, DRV_KIND_NODE, true, n, field, sizeof(field), &err),
        DRV_ERR_INVALID);
    assert_string_equal(field, "spec.podCIDR");
    cJSON_Delete(n);
    drv_ctrl_netalloc_free(na);
}

/* Admits and stores a Service; returns the admission's result, field gets the field. */
static drv_err_t svc(drv_hstore_t *s, drv_ctrl_netalloc_t *na, const char *name, const char *spec,
                     char *field, size_t fsz)
{
    char j[512];
    snprintf(j, sizeof(j),
             "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"default\"},\"spec\":%s}",
             name, spec);
    cJSON *o = cJSON_Parse(j);
    assert_non_null(o);
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t r = drv_ctrl_netalloc_admit(na, DRV_KIND_SERVICE, true, o, field, fsz, &err);
    if (r == DRV_OK)
        assert_int_equal(drv_hstore_create(s, DRV_KIND_SERVICE, o, &err), DRV_OK);
    cJSON_Delete(o);
    return r;
}

static const char *svc_field(drv_hstore_t *s, const char *name, const char *path, char *out,
                             size_t outsz)
{
    cJSON *o = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_get(s, DRV_KIND_SERVICE, "default", name, &o, &err), DRV_OK);
    /* a dotted path whose numeric parts index arrays */
    const cJSON *v = o;
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); v && k; k = strtok_r(NULL, ".", &save))
        v = (*k >= '0' && *k <= '9') ? cJSON_GetArrayItem(v, (int)strtol(k, NULL, 10))
                                     : drv_json_get(v, k);
    if (cJSON_IsString(v))
        snprintf(out, outsz, "%s", v->valuestring);
    else if (cJSON_IsNumber(v))
        snprintf(out, outsz, "%d", v->valueint);
    else
        snprintf(out, outsz, "-");
    cJSON_Delete(o);
    return out;
}

static void test_service_addresses(void **state)
{
    struct fx *f = *state;
    drv_ctrl_netalloc_t *na = alloc(f->s, NULL, 0, "10.43.0.0/28");
    char field[64], v[64];
    const char *cip = "{\"ports\":[{\"port\":80}]}";
    assert_int_equal(svc(f->s, na, "a", cip, field, sizeof(field)), DRV_OK);
    assert_string_equal(svc_field(f->s, "a", "spec.clusterIP", v, sizeof(v)), "10.43.0.2");
    assert_string_equal(svc_field(f->s, "a", "spec.clusterIPs.0", v, sizeof(v)), "10.43.0.2");
    /* Given and taken, outside, reserved (.10 is the cluster DNS). */
    assert_int_equal(svc(f->s, na, "b", "{\"clusterIP\":\"10.43.0.2\",\"ports\":[{\"port\":80}]}",
                         field, sizeof(field)),
                     DRV_ERR_INVALID);
    assert_string_equal(field, "spec.clusterIP");
    assert_int_equal(svc(f->s, na, "b", "{\"clusterIP\":\"10.44.0.2\",\"ports\":[{\"port\":80}]}",
                         field, sizeof(field)),
                     DRV_ERR_INVALID);
    assert_int_equal(svc(f->s, na, "b", "{\"clusterIP\":\"10.43.0.10\",\"ports\":[{\"port\":80}]}",
                         field, sizeof(field)),
                     DRV_ERR_INVALID);
    assert_int_equal(svc(f->s, na, "b", "{\"clusterIP\":\"10.43.0.9\",\"ports\":[{\"port\":80}]}",
                         field, sizeof(field)),
                     DRV_OK);
    assert_int_equal(svc(f->s, na, "h", "{\"clusterIP\":\"None\",\"ports\":[{\"port\":80}]}", field,
                         sizeof(field)),
                     DRV_OK);
    /* NodePorts: lowest free; a given one taken is refused naming the port. */
    assert_int_equal(svc(f->s, na, "np",
                         "{\"type\":\"NodePort\",\"ports\":[{\"name\":\"a\",\"port\":80},"
                         "{\"name\":\"b\",\"port\":81,\"nodePort\":30001}]}",
                         field, sizeof(field)),
                     DRV_OK);
    assert_string_equal(svc_field(f->s, "np", "spec.ports.0.nodePort", v, sizeof(v)), "30000");
    assert_string_equal(svc_field(f->s, "np", "spec.ports.1.nodePort", v, sizeof(v)), "30001");
    assert_int_equal(svc(f->s, na, "np2",
                         "{\"type\":\"NodePort\",\"ports\":[{\"port\":80,\"nodePort\":30001}]}",
                         field, sizeof(field)),
                     DRV_ERR_INVALID);
    assert_string_equal(field, "spec.ports[0].nodePort");
    /* The /28 has 16 addresses: network, broadcast, .1 and .10 reserved, 12 to give; 3 used
     * (a, b, np). */
    for (int i = 0; i < 9; i++) {
        char name[8];
        snprintf(name, sizeof(name), "x%d", i);
        assert_int_equal(svc(f->s, na, name, cip, field, sizeof(field)), DRV_OK);
    }
    assert_int_equal(svc(f->s, na, "full", cip, field, sizeof(field)), DRV_ERR_INVALID);
    assert_string_equal(field, "spec.clusterIP");
    /* An update that does not name the address keeps it; one that changes it is refused. */
    cJSON *o =
        cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":"
                    "\"a\",\"namespace\":\"default\"},\"spec\":{\"ports\":[{\"port\":80}]}}");
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(
        drv_ctrl_netalloc_admit(na, DRV_KIND_SERVICE, false, o, field, sizeof(field), &err),
        DRV_OK);
    assert_string_equal(drv_json_str(drv_json_get(o, "spec"), "clusterIP"), "10.43.0.2");
    cJSON_ReplaceItemInObject((cJSON *)drv_json_get(o, "spec"), "clusterIP",
                              cJSON_CreateString("10.43.0.3"));
    assert_int_equal(
        drv_ctrl_netalloc_admit(na, DRV_KIND_SERVICE, false, o, field, sizeof(field), &err),
        DRV_ERR_INVALID);
    cJSON_Delete(o);
    drv_ctrl_netalloc_free(na);
}

static void test_service_stored_without(void **state)
{
    struct fx *f = *state;
    /* Stored before the hub allocated (or by something other than the API): the round fills
     * them in, without reusing an address in use. */
    put(f->s, DRV_KIND_SERVICE,
        "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"old\"},"
        "\"spec\":{\"clusterIP\":\"10.43.0.2\",\"ports\":[{\"port\":80}]}}");
    put(f->s, DRV_KIND_SERVICE,
        "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"new\"},"
        "\"spec\":{\"type\":\"NodePort\",\"ports\":[{\"port\":80}]}}");
    drv_ctrl_netalloc_t *na = alloc(f->s, NULL, 0, NULL);
    round_ok(na);
    char v[64];
    assert_string_equal(svc_field(f->s, "new", "spec.clusterIP", v, sizeof(v)), "10.43.0.3");
    assert_string_equal(svc_field(f->s, "new", "spec.ports.0.nodePort", v, sizeof(v)), "30000");
    drv_ctrl_netalloc_free(na);
}

static void test_netcfg_errors(void **state)
{
    (void)state;
    drv_ctrl_netcfg_t cfg;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_ctrl_netcfg_init(&cfg, "10.42.0.1/16", 24, NULL, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "--cluster-cidr"));
    assert_int_equal(drv_ctrl_netcfg_init(&cfg, NULL, 24, "10.42.0.0/16", &err), DRV_ERR_INVALID);
    assert_int_equal(drv_ctrl_netcfg_init(&cfg, NULL, 8, NULL, &err), DRV_ERR_INVALID);
    assert_int_equal(drv_ctrl_netcfg_init(&cfg, NULL, 0, NULL, &err), DRV_OK);
    assert_int_equal(cfg.node_mask, 24);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_node_cidrs_across_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_cidr_refused_and_exhausted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_addresses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_stored_without, setup, teardown),
        cmocka_unit_test_setup_teardown(test_netcfg_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
