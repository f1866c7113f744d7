/* The node-local provisioner and the scheduler's volume rule over a real store: the default
 * class, a claim bound on the node its first pod goes to (PV in the node's storage directory,
 * node affinity, claimRef), later pods pinned there, a volume made by hand bound by size and
 * class, a claim whose node is gone keeping its pod Pending with the reason, and the phases
 * Released / deleted-with-its-node. Time is passed in, nothing sleeps. */
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
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/drover-pvc-XXXXXX");
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

static void create(drv_hstore_t *s, const char *text)
{
    cJSON *o = cJSON_Parse(text);
    assert_non_null(o);
    drv_diags_t d = {0};
    if (drv_model_normalize(o, &d) != DRV_OK)
        fail_msg("invalid test object: %s", drv_diags_format(&d, ""));
    drv_diags_free(&d);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_create(s, drv_model_kind(o), o, &err) != DRV_OK)
        fail_msg("create: %s", drv_error_msg(&err));
    cJSON_Delete(o);
}

static void add_node(drv_hstore_t *s, const char *name, const char *dir)
{
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\","
             "\"labels\":{\"kubernetes.io/hostname\":\"%s\"},\"annotations\":{%s%s%s}}}",
             name, name, dir ? "\"drover.io/local-storage-path\":\"" : "", dir ? dir : "",
             dir ? "\"" : "");
    create(s, buf);
    char ts[32];
    drv_ctrl_time_format(T0, ts, sizeof(ts));
    snprintf(buf, sizeof(buf),
             "{\"allocatable\":{\"cpu\":\"4\",\"memory\":\"4Gi\",\"pods\":\"110\"},"
             "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\","
             "\"lastHeartbeatTime\":\"%s\",\"lastTransitionTime\":\"%s\"}],"
             "\"nodeInfo\":{\"architecture\":\"arm64\",\"operatingSystem\":\"linux\"}}",
             ts, ts);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(
        drv_hstore_update_status(s, DRV_KIND_NODE, NULL, name, cJSON_Parse(buf), NULL, &err),
        DRV_OK);
}

static void claim(drv_hstore_t *s, const char *name, const char *size, const char *cls)
{
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":"
             "\"%s\"},\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],\"resources\":{\"requests\":"
             "{\"storage\":\"%s\"}}%s%s%s}}",
             name, size, cls ? ",\"storageClassName\":\"" : "", cls ? cls : "", cls ? "\"" : "");
    create(s, buf);
}

static void pod(drv_hstore_t *s, const char *name, const char *claim_name)
{
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\"},\"spec\":{"
             "\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}],\"volumes\":[{\"name\":"
             "\"d\",\"persistentVolumeClaim\":{\"claimName\":\"%s\"}}]}}",
             name, claim_name);
    create(s, buf);
}

static cJSON *get(drv_hstore_t *s, drv_kind_t k, const char *ns, const char *name)
{
    cJSON *o = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_get(s, k, ns, name, &o, &err) != DRV_OK)
        return NULL;
    return o;
}

static void round_(drv_hstore_t *s)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_ctrl_pvcs_reconcile(s, T0, &err) != DRV_OK)
        fail_msg("pvcs: %s", drv_error_msg(&err));
    if (drv_ctrl_schedule(s, NULL, NULL, T0, NULL, &err) != DRV_OK)
        fail_msg("schedule: %s", drv_error_msg(&err));
    if (drv_ctrl_pvcs_reconcile(s, T0, &err) != DRV_OK)
        fail_msg("pvcs: %s", drv_error_msg(&err));
}

static const char *node_of(drv_hstore_t *s, const char *name, char out[64])
{
    cJSON *p = get(s, DRV_KIND_POD, "default", name);
    const char *n = drv_json_str_at(p, "spec.nodeName");
    snprintf(out, 64, "%s", n ? n : "");
    cJSON_Delete(p);
    return out;
}

static void test_provision_and_pin(void **state)
{
    struct fx *f = *state;
    add_node(f->s, "a", "/srv/a/storage");
    add_node(f->s, "b", "/srv/b/storage");
    claim(f->s, "data", "1Gi", NULL);
    round_(f->s);
    cJSON *sc = get(f->s, DRV_KIND_STORAGECLASS, NULL, "local-path");
    assert_non_null(sc);
    assert_string_equal(drv_json_str(sc, "volumeBindingMode"), "WaitForFirstConsumer");
    cJSON_Delete(sc);
    cJSON *c = get(f->s, DRV_KIND_PVC, "default", "data");
    assert_string_equal(drv_json_str_at(c, "spec.storageClassName"), "local-path");
    assert_string_equal(drv_json_str_at(c, "status.phase"), "Pending");
    assert_null(drv_json_str_at(c, "spec.volumeName"));
    char uid[64];
    snprintf(uid, sizeof(uid), "%s", drv_json_str_at(c, "metadata.uid"));
    cJSON_Delete(c);

    pod(f->s, "p1", "data");
    round_(f->s);
    char n1[64];
    node_of(f->s, "p1", n1);
    assert_true(n1[0]);
    c = get(f->s, DRV_KIND_PVC, "default", "data");
    char pvname[128], path[256];
    snprintf(pvname, sizeof(pvname), "pvc-%s", uid);
    assert_string_equal(drv_json_str_at(c, "spec.volumeName"), pvname);
    assert_string_equal(drv_json_str_at(c, "status.phase"), "Bound");
    assert_string_equal(drv_json_str_at(c, "status.capacity.storage"), "1Gi");
    assert_string_equal(
        drv_json_str(drv_json_at(c, "metadata.annotations"), "volume.kubernetes.io/selected-node"),
        n1);
    cJSON_Delete(c);
    cJSON *pv = get(f->s, DRV_KIND_PV, NULL, pvname);
    assert_non_null(pv);
    snprintf(path, sizeof(path), "/srv/%s/storage/%s_default_data", n1, pvname);
    assert_string_equal(drv_json_str_at(pv, "spec.local.path"), path);
    assert_string_equal(drv_sched_pv_node(pv), n1);
    assert_string_equal(drv_json_str_at(pv, "spec.persistentVolumeReclaimPolicy"), "Delete");
    assert_string_equal(drv_json_str_at(pv, "spec.claimRef.uid"), uid);
    assert_string_equal(drv_json_str_at(pv, "status.phase"), "Bound");
    cJSON_Delete(pv);

    /* Every later pod of the claim goes where the volume is, though the other node is empty. */
    char name[16], n[64];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "q%d", i);
        pod(f->s, name, "data");
    }
    round_(f->s);
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "q%d", i);
        assert_string_equal(node_of(f->s, name, n), n1);
    }

    /* The claim deleted: Released, and with its node gone, deleted. */
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_PVC, "default", "data", NULL, &err), DRV_OK);
    round_(f->s);
    pv = get(f->s, DRV_KIND_PV, NULL, pvname);
    assert_string_equal(drv_json_str_at(pv, "status.phase"), "Released");
    cJSON_Delete(pv);
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_NODE, NULL, n1, NULL, &err), DRV_OK);
    round_(f->s);
    assert_null(get(f->s, DRV_KIND_PV, NULL, pvname));
}

static void test_node_gone_keeps_pod_pending(void **state)
{
    struct fx *f = *state;
    add_node(f->s, "a", NULL);
    claim(f->s, "db", "100Mi", NULL);
    pod(f->s, "p1", "db");
    round_(f->s);
    char n[64];
    assert_string_equal(node_of(f->s, "p1", n), "a");
    cJSON *c = get(f->s, DRV_KIND_PVC, "default", "db");
    char pvname[128];
    snprintf(pvname, sizeof(pvname), "%s", drv_json_str_at(c, "spec.volumeName"));
    cJSON_Delete(c);
    cJSON *pv = get(f->s, DRV_KIND_PV, NULL, pvname);
    /* No storage directory reported: the agent's default. */
    assert_non_null(strstr(drv_json_str_at(pv, "spec.local.path"), "/var/lib/drover/storage/pvc-"));
    cJSON_Delete(pv);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_NODE, NULL, "a", NULL, &err), DRV_OK);
    add_node(f->s, "b", NULL);
    pod(f->s, "p2", "db");
    round_(f->s);
    assert_string_equal(node_of(f->s, "p2", n), "");
    cJSON *p = get(f->s, DRV_KIND_POD, "default", "p2");
    const cJSON *cond = cJSON_GetArrayItem(drv_json_at(p, "status.conditions"), 0);
    const char *msg = drv_json_str(cond, "message");
    assert_non_null(msg);
    assert_non_null(strstr(msg, "\"db\""));
    assert_non_null(strstr(msg, "node \"a\", which is gone"));
    cJSON_Delete(p);
    /* Still one volume for the claim, still bound to it. */
    cJSON *all = NULL;
    assert_int_equal(drv_hstore_list(f->s, DRV_KIND_PV, NULL, NULL, &all, NULL, &err), DRV_OK);
    assert_int_equal(cJSON_GetArraySize(all), 1);
    cJSON_Delete(all);
}

static void test_static_volume_and_missing_claim(void **state)
{
    struct fx *f = *state;
    add_node(f->s, "a", NULL);
    add_node(f->s, "b", NULL);
    create(f->s, "{\"apiVersion\":\"storage.k8s.io/v1\",\"kind\":\"StorageClass\",\"metadata\":"
                 "{\"name\":\"manual\"},\"provisioner\":\"kubernetes.io/no-provisioner\"}");
#define PVT(name, size, node)                                                                      \
    "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolume\",\"metadata\":{\"name\":\"" name          \
    "\"},\"spec\":{\"capacity\":{\"storage\":\"" size "\"},\"accessModes\":[\"ReadWriteOnce\"],"   \
    "\"storageClassName\":\"manual\",\"local\":{\"path\":\"/mnt/x\"},\"nodeAffinity\":{"           \
    "\"required\":{\"nodeSelectorTerms\":[{\"matchExpressions\":[{\"key\":"                        \
    "\"kubernetes.io/hostname\",\"operator\":\"In\",\"values\":[\"" node "\"]}]}]}}}}"
    create(f->s, PVT("small", "1Gi", "a"));
    create(f->s, PVT("big", "10Gi", "b"));
    claim(f->s, "want5", "5Gi", "manual");
    pod(f->s, "p", "want5");
    pod(f->s, "orphan", "nothere");
    round_(f->s);
    char n[64];
    assert_string_equal(node_of(f->s, "p", n), "b");
    cJSON *pv = get(f->s, DRV_KIND_PV, NULL, "big");
    assert_string_equal(drv_json_str_at(pv, "spec.claimRef.name"), "want5");
    assert_string_equal(drv_json_str_at(pv, "status.phase"), "Bound");
    cJSON_Delete(pv);
    pv = get(f->s, DRV_KIND_PV, NULL, "small");
    assert_string_equal(drv_json_str_at(pv, "status.phase"), "Available");
    cJSON_Delete(pv);
    assert_string_equal(node_of(f->s, "orphan", n), "");
    cJSON *p = get(f->s, DRV_KIND_POD, "default", "orphan");
    const cJSON *cond = cJSON_GetArrayItem(drv_json_at(p, "status.conditions"), 0);
    assert_string_equal(drv_json_str(cond, "message"),
                        "persistentvolumeclaim \"nothere\" not found");
    cJSON_Delete(p);
    /* A claim of no class binds at once to a volume of no class, without a pod. */
    create(f->s, "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolume\",\"metadata\":{\"name\":"
                 "\"plain\"},\"spec\":{\"capacity\":{\"storage\":\"2Gi\"},\"accessModes\":["
                 "\"ReadWriteOnce\"],\"hostPath\":{\"path\":\"/srv/plain\"}}}");
    claim(f->s, "noclass", "1Gi", "");
    round_(f->s);
    round_(f->s);
    cJSON *c = get(f->s, DRV_KIND_PVC, "default", "noclass");
    assert_string_equal(drv_json_str_at(c, "spec.volumeName"), "plain");
    assert_string_equal(drv_json_str_at(c, "status.phase"), "Bound");
    cJSON_Delete(c);
    /* Too big for every volume: Pending, said so. */
    claim(f->s, "huge", "100Gi", "manual");
    pod(f->s, "h", "huge");
    round_(f->s);
    assert_string_equal(node_of(f->s, "h", n), "");
}

/* A pod scheduled before the claims' round gave its claim the default class still gets its
 * volume, and the claim the class. */
static void test_bind_before_default_class(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_ctrl_storage_defaults(f->s, &err), DRV_OK);
    add_node(f->s, "a", NULL);
    claim(f->s, "fresh", "1Gi", NULL);
    pod(f->s, "p", "fresh");
    assert_int_equal(drv_ctrl_schedule(f->s, NULL, NULL, T0, NULL, &err), DRV_OK);
    char n[64];
    assert_string_equal(node_of(f->s, "p", n), "a");
    cJSON *c = get(f->s, DRV_KIND_PVC, "default", "fresh");
    assert_string_equal(drv_json_str_at(c, "spec.storageClassName"), "local-path");
    assert_string_equal(drv_json_str_at(c, "status.phase"), "Bound");
    cJSON_Delete(c);
}

/* A pod created bound to its node (as a DaemonSet's) gets its claim bound there. */
static void test_pod_placed_without_scheduler(void **state)
{
    struct fx *f = *state;
    add_node(f->s, "a", "/srv/a");
    add_node(f->s, "b", "/srv/b");
    claim(f->s, "local", "1Gi", NULL);
    create(f->s, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"ds-x\"},"
                 "\"spec\":{\"nodeName\":\"b\",\"containers\":[{\"name\":\"c\",\"image\":"
                 "\"busybox\"}],\"volumes\":[{\"name\":\"d\",\"persistentVolumeClaim\":{"
                 "\"claimName\":\"local\"}}]}}");
    round_(f->s);
    round_(f->s);
    cJSON *c = get(f->s, DRV_KIND_PVC, "default", "local");
    assert_string_equal(drv_json_str_at(c, "status.phase"), "Bound");
    char pvname[128];
    snprintf(pvname, sizeof(pvname), "%s", drv_json_str_at(c, "spec.volumeName"));
    cJSON_Delete(c);
    cJSON *pv = get(f->s, DRV_KIND_PV, NULL, pvname);
    assert_string_equal(drv_sched_pv_node(pv), "b");
    assert_non_null(strstr(drv_json_str_at(pv, "spec.local.path"), "/srv/b/pvc-"));
    cJSON_Delete(pv);
}

/* A claim in use is kept (Terminating) until its pods are gone, and takes no new pod. */
static void test_protection(void **state)
{
    struct fx *f = *state;
    add_node(f->s, "a", NULL);
    claim(f->s, "db", "1Gi", NULL);
    pod(f->s, "p1", "db");
    round_(f->s);
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *out = NULL;
    assert_int_equal(drv_ctrl_pvc_delete(f->s, "default", "db", T0, &out, &err), DRV_OK);
    assert_non_null(drv_json_str_at(out, "metadata.deletionTimestamp"));
    const cJSON *f0 = cJSON_GetArrayItem(drv_json_at(out, "metadata.finalizers"), 0);
    assert_true(cJSON_IsString(f0));
    assert_string_equal(f0->valuestring, "kubernetes.io/pvc-protection");
    cJSON_Delete(out);
    pod(f->s, "p2", "db");
    round_(f->s);
    cJSON *c = get(f->s, DRV_KIND_PVC, "default", "db");
    assert_non_null(c); /* still there: p1 uses it */
    cJSON_Delete(c);
    char n[64];
    assert_string_equal(node_of(f->s, "p2", n), "");
    cJSON *p = get(f->s, DRV_KIND_POD, "default", "p2");
    assert_string_equal(
        drv_json_str(cJSON_GetArrayItem(drv_json_at(p, "status.conditions"), 0), "message"),
        "persistentvolumeclaim \"db\" is being deleted");
    cJSON_Delete(p);
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_POD, "default", "p1", NULL, &err), DRV_OK);
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_POD, "default", "p2", NULL, &err), DRV_OK);
    round_(f->s);
    assert_null(get(f->s, DRV_KIND_PVC, "default", "db"));
    /* A claim no pod uses goes at once. */
    claim(f->s, "free", "1Gi", NULL);
    assert_int_equal(drv_ctrl_pvc_delete(f->s, "default", "free", T0, &out, &err), DRV_OK);
    cJSON_Delete(out);
    assert_null(get(f->s, DRV_KIND_PVC, "default", "free"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_provision_and_pin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_gone_keeps_pod_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_volume_and_missing_claim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pod_placed_without_scheduler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bind_before_default_class, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
