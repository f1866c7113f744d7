/* The hub's controllers over a real store in a temporary directory: Deployments (replicas,
 * rolling update, Recreate, history, rollback, pause), DaemonSets, scheduling, and node
 * lifecycle (heartbeats, NotReady, eviction after the toleration, cordon and drain). Time is
 * passed in, so nothing sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctrl/ctrl.h"

#define T0 1800000000000LL /* a fixed "now" in ms: 2027-01-15 */

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
    snprintf(f->dir, sizeof(f->dir), "/tmp/drover-ctrl-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char path[128];
    snprintf(path, sizeof(path), "%s/hub.db", f->dir);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_open(path, &f->s, &err) != DRV_OK) {
        fprintf(stderr, "open store: %s\n", drv_error_msg(&err));
        return -1;
    }
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

static cJSON *json(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (j == NULL)
        fail_msg("bad test JSON: %s", text);
    return j;
}

static void create(drv_hstore_t *s, const char *text)
{
    cJSON *o = json(text);
    drv_diags_t d = {0};
    if (drv_model_normalize(o, &d) != DRV_OK) {
        char *m = drv_diags_format(&d, "");
        fail_msg("invalid test object: %s", m);
    }
    drv_diags_free(&d);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_create(s, drv_model_kind(o), o, &err) != DRV_OK)
        fail_msg("create: %s", drv_error_msg(&err));
    cJSON_Delete(o);
}

static void set_status(drv_hstore_t *s, drv_kind_t kind, const char *ns, const char *name,
                       const char *status)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_update_status(s, kind, ns, name, json(status), NULL, &err) != DRV_OK)
        fail_msg("status of %s: %s", name, drv_error_msg(&err));
}

static void fmt_time(int64_t ms, char out[32])
{
    drv_ctrl_time_format(ms, out, 32);
}

/* A node as its agent reports it: Ready, 4 cpu / 4Gi, arm64, heartbeat at hb_ms. */
static void add_node(drv_hstore_t *s, const char *name, const char *labels, const char *spec,
                     int64_t hb_ms)
{
    char buf[2048], ts[32];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\","
             "\"labels\":{%s}},\"spec\":{%s}}",
             name, labels, spec);
    create(s, buf);
    fmt_time(hb_ms, ts);
    snprintf(buf, sizeof(buf),
             "{\"allocatable\":{\"cpu\":\"4\",\"memory\":\"4Gi\",\"pods\":\"110\"},"
             "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\","
             "\"lastHeartbeatTime\":\"%s\",\"lastTransitionTime\":\"%s\"}],"
             "\"nodeInfo\":{\"architecture\":\"arm64\",\"operatingSystem\":\"linux\"}}",
             ts, ts);
    set_status(s, DRV_KIND_NODE, NULL, name, buf);
}

static void deployment(drv_hstore_t *s, const char *name, int replicas, const char *image,
                       const char *spec_extra, const char *pod_extra)
{
    char buf[4096];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"%s\"},"
             "\"spec\":{\"replicas\":%d,%s\"selector\":{\"matchLabels\":{\"app\":\"%s\"}},"
             "\"template\":{\"metadata\":{\"labels\":{\"app\":\"%s\"}},\"spec\":{%s"
             "\"containers\":[{\"name\":\"c\",\"image\":\"%s\"}]}}}}",
             name, replicas, spec_extra, name, name, pod_extra, image);
    create(s, buf);
}

static cJSON *get(drv_hstore_t *s, drv_kind_t kind, const char *name)
{
    cJSON *o = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_get(s, kind, "default", name, &o, &err) != DRV_OK)
        fail_msg("get %s: %s", name, drv_error_msg(&err));
    return o;
}

/* Replaces a Deployment's spec member (JSON text). */
static void set_spec(drv_hstore_t *s, const char *name, const char *key, const char *value)
{
    cJSON *d = get(s, DRV_KIND_DEPLOYMENT, name);
    cJSON *spec = cJSON_GetObjectItem(d, "spec");
    cJSON_DeleteItemFromObject(spec, key);
    cJSON_AddItemToObject(spec, key, json(value));
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_update(s, DRV_KIND_DEPLOYMENT, d, &err) != DRV_OK)
        fail_msg("update %s: %s", name, drv_error_msg(&err));
    cJSON_Delete(d);
}

static void set_image(drv_hstore_t *s, const char *name, const char *image)
{
    cJSON *d = get(s, DRV_KIND_DEPLOYMENT, name);
    cJSON *c = cJSON_GetArrayItem(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "spec"), "template"),
                                "spec"),
            "containers"),
        0);
    cJSON_ReplaceItemInObject(c, "image", cJSON_CreateString(image));
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_update(s, DRV_KIND_DEPLOYMENT, d, &err) != DRV_OK)
        fail_msg("update %s: %s", name, drv_error_msg(&err));
    cJSON_Delete(d);
}

static cJSON *pods(drv_hstore_t *s)
{
    cJSON *items = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_list(s, DRV_KIND_POD, NULL, NULL, &items, NULL, &err) != DRV_OK)
        fail_msg("list: %s", drv_error_msg(&err));
    return items;
}

static const char *meta(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static const char *spec_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "spec"), key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static const char *image_of(const cJSON *pod)
{
    const cJSON *c =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "spec"), "containers"), 0);
    return cJSON_GetObjectItem(c, "image")->valuestring;
}

/* Marks every pod that is not yet ready Ready since at_ms (as agents report). */
static void mark_ready(drv_hstore_t *s, int64_t at_ms)
{
    cJSON *all = pods(s), *p;
    char ts[32], buf[256];
    fmt_time(at_ms, ts);
    snprintf(buf, sizeof(buf),
             "{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\","
             "\"lastTransitionTime\":\"%s\"}]}",
             ts);
    cJSON_ArrayForEach(p, all)
    {
        if (!drv_ctrl_pod_ready(p))
            set_status(s, DRV_KIND_POD, meta(p, "namespace"), meta(p, "name"), buf);
    }
    cJSON_Delete(all);
}

static void count(drv_hstore_t *s, const char *image, size_t *total, size_t *with_image,
                  size_t *ready)
{
    cJSON *all = pods(s), *p;
    *total = *with_image = *ready = 0;
    cJSON_ArrayForEach(p, all)
    {
        (*total)++;
        *with_image += image && !strcmp(image_of(p), image);
        *ready += drv_ctrl_pod_ready(p);
    }
    cJSON_Delete(all);
}

static void reconcile(drv_hstore_t *s, const char *name, int64_t now)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_ctrl_deployment_reconcile(s, "default", name, now, &err) != DRV_OK)
        fail_msg("reconcile %s: %s", name, drv_error_msg(&err));
}

static int64_t status_int(drv_hstore_t *s, drv_kind_t kind, const char *name, const char *key)
{
    cJSON *o = get(s, kind, name);
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "status"), key);
    int64_t r = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
    cJSON_Delete(o);
    return r;
}

/* ---- Deployment ---- */

static void test_deployment_creates_owned_pods(void **state)
{
    struct fx *f = *state;
    deployment(f->s, "web", 3, "nginx:1.25", "", "");
    reconcile(f->s, "web", T0);
    cJSON *dep = get(f->s, DRV_KIND_DEPLOYMENT, "web");
    cJSON *all = pods(f->s), *p;
    assert_int_equal(cJSON_GetArraySize(all), 3);
    char hash[16];
    drv_ctrl_template_hash(cJSON_GetObjectItem(cJSON_GetObjectItem(dep, "spec"), "template"), hash,
                           sizeof(hash));
    assert_int_equal(strlen(hash), 10);
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "web-%s-", hash);
    /* The pods' controller is the ReplicaSet of the template, which the Deployment controls. */
    char rsname[64];
    snprintf(rsname, sizeof(rsname), "web-%s", hash);
    cJSON *rs = get(f->s, DRV_KIND_REPLICASET, rsname);
    const cJSON *rsref = drv_ctrl_controller_of(rs);
    assert_non_null(rsref);
    assert_string_equal(cJSON_GetObjectItem(rsref, "kind")->valuestring, "Deployment");
    assert_string_equal(cJSON_GetObjectItem(rsref, "uid")->valuestring, meta(dep, "uid"));
    cJSON_ArrayForEach(p, all)
    {
        const cJSON *ref = drv_ctrl_controller_of(p);
        assert_non_null(ref);
        assert_string_equal(cJSON_GetObjectItem(ref, "kind")->valuestring, "ReplicaSet");
        assert_string_equal(cJSON_GetObjectItem(ref, "name")->valuestring, rsname);
        assert_string_equal(cJSON_GetObjectItem(ref, "uid")->valuestring, meta(rs, "uid"));
        const cJSON *labels = cJSON_GetObjectItem(cJSON_GetObjectItem(p, "metadata"), "labels");
        assert_string_equal(cJSON_GetObjectItem(labels, "app")->valuestring, "web");
        assert_string_equal(cJSON_GetObjectItem(labels, "pod-template-hash")->valuestring, hash);
        assert_int_equal(strncmp(meta(p, "name"), prefix, strlen(prefix)), 0);
        assert_int_equal(strlen(meta(p, "name")), strlen(prefix) + 5);
        assert_string_equal(spec_str(p, "nodeName"), "");
    }
    const cJSON *ann = cJSON_GetObjectItem(cJSON_GetObjectItem(dep, "metadata"), "annotations");
    assert_string_equal(cJSON_GetObjectItem(ann, DRV_CTRL_ANN_REVISION)->valuestring, "1");
    assert_int_equal(status_int(f->s, DRV_KIND_DEPLOYMENT, "web", "replicas"), 3);
    assert_int_equal(status_int(f->s, DRV_KIND_DEPLOYMENT, "web", "updatedReplicas"), 3);
    assert_int_equal(status_int(f->s, DRV_KIND_DEPLOYMENT, "web", "readyReplicas"), 0);
    assert_int_equal(status_int(f->s, DRV_KIND_DEPLOYMENT, "web", "observedGeneration"), 1);
    /* Once agents report them ready, the status says so; a second run changes nothing. */
    mark_ready(f->s, T0);
    reconcile(f->s, "web", T0 + 1000);
    assert_int_equal(status_int(f->s, DRV_KIND_DEPLOYMENT, "web", "availableReplicas"), 3);
    /* The ReplicaSet as kubectl reads it: revision, selector and template with the hash,
     * counts from the pods. */
    assert_int_equal(status_int(f->s, DRV_KIND_REPLICASET, rsname, "readyReplicas"), 3);
    assert_int_equal(status_int(f->s, DRV_KIND_REPLICASET, rsname, "availableReplicas"), 3);
    assert_int_equal(status_int(f->s, DRV_KIND_REPLICASET, rsname, "fullyLabeledReplicas"), 3);
    cJSON_Delete(rs);
    rs = get(f->s, DRV_KIND_REPLICASET, rsname);
    const cJSON *rann = cJSON_GetObjectItem(cJSON_GetObjectItem(rs, "metadata"), "annotations");
    assert_string_equal(cJSON_GetObjectItem(rann, DRV_CTRL_ANN_REVISION)->valuestring, "1");
    assert_string_equal(
        cJSON_GetObjectItem(rann, "deployment.kubernetes.io/desired-replicas")->valuestring, "3");
    const cJSON *rspec = cJSON_GetObjectItem(rs, "spec");
    assert_int_equal(cJSON_GetObjectItem(rspec, "replicas")->valueint, 3);
    assert_string_equal(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(rspec, "selector"), "matchLabels"),
            "pod-template-hash")
            ->valuestring,
        hash);
    assert_string_equal(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(
                cJSON_GetObjectItem(cJSON_GetObjectItem(rspec, "template"), "metadata"), "labels"),
            "pod-template-hash")
            ->valuestring,
        hash);
    uint64_t rv = drv_hstore_rv(f->s);
    reconcile(f->s, "web", T0 + 2000);
    assert_int_equal(drv_hstore_rv(f->s), rv);
    /* Deleted with its Deployment, pods and all. */
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_DEPLOYMENT, "default", "web", NULL, &err),
                     DRV_OK);
    reconcile(f->s, "web", T0 + 3000);
    cJSON *left = pods(f->s), *rsl = NULL;
    assert_int_equal(cJSON_GetArraySize(left), 0);
    assert_int_equal(drv_hstore_list(f->s, DRV_KIND_REPLICASET, NULL, NULL, &rsl, NULL, &err),
                     DRV_OK);
    assert_int_equal(cJSON_GetArraySize(rsl), 0);
    cJSON_Delete(left);
    cJSON_Delete(rsl);
    cJSON_Delete(rs);
    cJSON_Delete(all);
    cJSON_Delete(dep);
}

static void test_deployment_scales_up_and_down(void **state)
{
    struct fx *f = *state;
    deployment(f->s, "web", 3, "nginx:1.25", "", "");
    reconcile(f->s, "web", T0);
    mark_ready(f->s, T0);
    set_spec(f->s, "web", "replicas", "5");
    reconcile(f->s, "web", T0);
    size_t total, img, ready;
    count(f->s, NULL, &total, &img, &ready);
    assert_int_equal(total, 5);
    assert_int_equal(ready, 3);
    /* Scaling down removes the pods that are not ready first. */
    set_spec(f->s, "web", "replicas", "3");
    reconcile(f->s, "web", T0);
    count(f->s, NULL, &total, &img, &ready);
    assert_int_equal(total, 3);
    assert_int_equal(ready, 3);
    set_spec(f->s, "web", "replicas", "1");
    reconcile(f->s, "web", T0);
    count(f->s, NULL, &total, &img, &ready);
    assert_int_equal(total, 1);
    assert_int_equal(status_int(f->s, DRV_KIND_DEPLOYMENT, "web", "replicas"), 1);
    /* And up again: the deleted pods are gone from what the controller reads. */
    set_spec(f->s, "web", "replicas", "3");
    reconcile(f->s, "web", T0);
    count(f->s, NULL, &total, &img, &ready);
    assert_int_equal(total, 3);
    set_spec(f->s, "web", "replicas", "1");
    reconcile(f->s, "web", T0);
    count(f->s, NULL, &total, &img, &ready);
    assert_int_equal(total, 1);
    /* A pod its agent reports Failed is replaced. */
    cJSON *all = pods(f->s);
    const char *victim = meta(cJSON_GetArrayItem(all, 0), "name");
    set_status(f->s, DRV_KIND_POD, "default", victim,
               "{\"phase\":\"Failed\",\"reason\":\"Evicted\"}");
    reconcile(f->s, "web", T0);
    cJSON *after = pods(f->s);
    assert_int_equal(cJSON_GetArraySize(after), 1);
    assert_string_not_equal(meta(cJSON_GetArrayItem(after, 0), "name"), victim);
    cJSON_Delete(after);
    cJSON_Delete(all);
    set_spec(f->s, "web", "replicas", "0");
    reconcile(f->s, "web", T0);
    count(f->s, NULL, &total, &img, &ready);
    assert_int_equal(total, 0);
}

static void test_rolling_update_keeps_availability(void **state)
{
    struct fx *f = *state;
    deployment(f->s, "web", 3, "nginx:1.25",
               "\"strategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{\"maxSurge\":1,"
               "\"maxUnavailable\":1}},",
               "");
    reconcile(f->s, "web", T0);
    mark_ready(f->s, T0);
    set_image(f->s, "web", "nginx:1.26");
    int steps = 0;
    size_t total, img, ready;
    for (; steps < 20; steps++) {
        reconcile(f->s, "web", T0 + steps * 1000);
        count(f->s, "nginx:1.26", &total, &img, &ready);
        assert_true(ready >= 2); /* replicas - maxUnavailable */
        assert_true(total <= 4); /* replicas + maxSurge */
        if (img == 3 && total == 3 && ready == 3)
            break;
        mark_ready(f->s, T0 + steps * 1000); /* the agents start the new pods */
    }
    assert_true(steps > 1 && steps < 20);
    reconcile(f->s, "web", T0 + 60000);
    assert_int_equal(status_int(f->s, DRV_KIND_DEPLOYMENT, "web", "updatedReplicas"), 3);
    cJSON *dep = get(f->s, DRV_KIND_DEPLOYMENT, "web");
    const cJSON *ann = cJSON_GetObjectItem(cJSON_GetObjectItem(dep, "metadata"), "annotations");
    assert_string_equal(cJSON_GetObjectItem(ann, DRV_CTRL_ANN_REVISION)->valuestring, "2");
    cJSON_Delete(dep);
}

static void test_rolling_update_percentages_round_like_kubernetes(void **state)
{
    (void)state;
    cJSON *p25 = json("\"25%\""), *p50 = json("\"50%\""), *two = json("2"), *bad = json("\"x%\"");
    assert_int_equal(drv_ctrl_int_or_percent(p25, 3, true), 1);  /* 0.75 up */
    assert_int_equal(drv_ctrl_int_or_percent(p25, 3, false), 0); /* 0.75 down */
    assert_int_equal(drv_ctrl_int_or_percent(p50, 5, true), 3);
    assert_int_equal(drv_ctrl_int_or_percent(p50, 5, false), 2);
    assert_int_equal(drv_ctrl_int_or_percent(two, 5, false), 2);
    assert_int_equal(drv_ctrl_int_or_percent(bad, 5, false), 0);
    assert_int_equal(drv_ctrl_int_or_percent(NULL, 5, true), 0);
    cJSON_Delete(p25);
    cJSON_Delete(p50);
    cJSON_Delete(two);
    cJSON_Delete(bad);
}

static void roll_to_end(drv_hstore_t *s, const char *name, int64_t *now)
{
    for (int i = 0; i < 30; i++) {
        reconcile(s, name, *now);
        mark_ready(s, *now);
        *now += 1000;
    }
}

static void test_rollback_restores_old_template(void **state)
{
    struct fx *f = *state;
    int64_t now = T0;
    deployment(f->s, "web", 2, "nginx:1.25", "", "");
    roll_to_end(f->s, "web", &now);
    set_image(f->s, "web", "nginx:1.26");
    roll_to_end(f->s, "web", &now);
    size_t total, img, ready;
    count(f->s, "nginx:1.26", &total, &img, &ready);
    assert_int_equal(img, 2);
    drv_error_t err = DRV_ERROR_INIT;
    /* Unknown revision: a clear error listing what is kept. */
    assert_int_equal(drv_ctrl_deployment_rollback(f->s, "default", "web", 7, &err),
                     DRV_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "revision 7 not found (kept: 1, 2)"));
    assert_int_equal(drv_ctrl_deployment_rollback(f->s, "default", "nope", 0, &err),
                     DRV_ERR_NOTFOUND);
    assert_int_equal(drv_ctrl_deployment_rollback(f->s, "default", "web", 0, &err), DRV_OK);
    roll_to_end(f->s, "web", &now);
    count(f->s, "nginx:1.25", &total, &img, &ready);
    assert_int_equal(total, 2);
    assert_int_equal(img, 2);
    /* The old template became revision 3; 1 is no longer a separate entry. */
    cJSON *dep = get(f->s, DRV_KIND_DEPLOYMENT, "web");
    const cJSON *ann = cJSON_GetObjectItem(cJSON_GetObjectItem(dep, "metadata"), "annotations");
    assert_string_equal(cJSON_GetObjectItem(ann, DRV_CTRL_ANN_REVISION)->valuestring, "3");
    cJSON *hist = json(cJSON_GetObjectItem(ann, DRV_CTRL_ANN_HISTORY)->valuestring);
    assert_int_equal(cJSON_GetArraySize(hist), 2);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(hist, 0), "revision")->valueint, 2);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(hist, 1), "revision")->valueint, 3);
    cJSON_Delete(hist);
    cJSON_Delete(dep);
    /* Rolling back to an explicit revision works too. */
    assert_int_equal(drv_ctrl_deployment_rollback(f->s, "default", "web", 2, &err), DRV_OK);
    roll_to_end(f->s, "web", &now);
    count(f->s, "nginx:1.26", &total, &img, &ready);
    assert_int_equal(img, 2);
}

/* The ReplicaSet of d's revision rev (by its annotation), or NULL. */
static cJSON *rs_of_revision(drv_hstore_t *s, const char *rev)
{
    cJSON *all = NULL, *rs, *found = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_list(s, DRV_KIND_REPLICASET, "default", NULL, &all, NULL, &err),
                     DRV_OK);
    cJSON_ArrayForEach(rs, all)
    {
        const cJSON *ann = cJSON_GetObjectItem(cJSON_GetObjectItem(rs, "metadata"), "annotations");
        const cJSON *r = cJSON_GetObjectItem(ann, DRV_CTRL_ANN_REVISION);
        if (cJSON_IsString(r) && !strcmp(r->valuestring, rev))
            found = cJSON_Duplicate(rs, true);
    }
    cJSON_Delete(all);
    return found;
}

static void test_rollout_undo_through_replicasets(void **state)
{
    struct fx *f = *state;
    int64_t now = T0;
    deployment(f->s, "web", 2, "nginx:1.25", "", "");
    roll_to_end(f->s, "web", &now);
    set_image(f->s, "web", "nginx:1.26");
    roll_to_end(f->s, "web", &now);
    /* One ReplicaSet per revision; the old one scaled to 0. */
    cJSON *rs1 = rs_of_revision(f->s, "1"), *rs2 = rs_of_revision(f->s, "2");
    assert_non_null(rs1);
    assert_non_null(rs2);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(rs1, "spec"), "replicas")->valueint,
                     0);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(rs2, "spec"), "replicas")->valueint,
                     2);
    /* What kubectl rollout undo sends: revision 1's template without the hash label, and the
     * annotations replaced (the hub's drover.io/history dropped). */
    cJSON *dep = get(f->s, DRV_KIND_DEPLOYMENT, "web");
    cJSON *tpl =
        cJSON_Duplicate(cJSON_GetObjectItem(cJSON_GetObjectItem(rs1, "spec"), "template"), true);
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(cJSON_GetObjectItem(tpl, "metadata"), "labels"),
                               "pod-template-hash");
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(dep, "spec"), "template", tpl);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(dep, "metadata"), "annotations",
                              json("{\"deployment.kubernetes.io/revision\":\"2\"}"));
    cJSON_DeleteItemFromObject(dep, "status");
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_model_normalize(dep, NULL), DRV_OK);
    assert_int_equal(drv_hstore_update(f->s, DRV_KIND_DEPLOYMENT, dep, &err), DRV_OK);
    cJSON_Delete(dep);
    roll_to_end(f->s, "web", &now);
    size_t total, img, ready;
    count(f->s, "nginx:1.25", &total, &img, &ready);
    assert_int_equal(total, 2);
    assert_int_equal(img, 2);
    /* The old template is revision 3 now, in the same ReplicaSet; the history is back. */
    cJSON *rs3 = rs_of_revision(f->s, "3");
    assert_non_null(rs3);
    assert_string_equal(meta(rs3, "name"), meta(rs1, "name"));
    assert_string_equal(meta(rs3, "uid"), meta(rs1, "uid"));
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(rs3, "spec"), "replicas")->valueint,
                     2);
    cJSON *old = rs_of_revision(f->s, "2");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(old, "spec"), "replicas")->valueint,
                     0);
    assert_null(rs_of_revision(f->s, "1"));
    dep = get(f->s, DRV_KIND_DEPLOYMENT, "web");
    const cJSON *ann = cJSON_GetObjectItem(cJSON_GetObjectItem(dep, "metadata"), "annotations");
    assert_string_equal(cJSON_GetObjectItem(ann, DRV_CTRL_ANN_REVISION)->valuestring, "3");
    assert_non_null(cJSON_GetObjectItem(ann, DRV_CTRL_ANN_HISTORY));
    cJSON_Delete(dep);
    cJSON_Delete(old);
    cJSON_Delete(rs1);
    cJSON_Delete(rs2);
    cJSON_Delete(rs3);
}

/* Pods a Deployment owned itself (before ReplicaSets) stay its own until replaced. */
static void test_pods_owned_by_deployment_still_counted(void **state)
{
    struct fx *f = *state;
    int64_t now = T0;
    deployment(f->s, "web", 2, "nginx:1.25", "", "");
    roll_to_end(f->s, "web", &now);
    cJSON *dep = get(f->s, DRV_KIND_DEPLOYMENT, "web"), *all = pods(f->s), *p;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON_ArrayForEach(p, all)
    {
        cJSON *ref = (cJSON *)drv_ctrl_controller_of(p);
        cJSON_ReplaceItemInObject(ref, "kind", cJSON_CreateString("Deployment"));
        cJSON_ReplaceItemInObject(ref, "name", cJSON_CreateString("web"));
        cJSON_ReplaceItemInObject(ref, "uid", cJSON_CreateString(meta(dep, "uid")));
        assert_int_equal(drv_hstore_update(f->s, DRV_KIND_POD, p, &err), DRV_OK);
    }
    uint64_t rv = drv_hstore_rv(f->s);
    reconcile(f->s, "web", now);
    assert_int_equal(drv_ctrl_deployments_reconcile(f->s, now, &err), DRV_OK);
    assert_int_equal(drv_hstore_rv(f->s), rv);
    size_t total, img, ready;
    count(f->s, "nginx:1.25", &total, &img, &ready);
    assert_int_equal(total, 2);
    cJSON_Delete(all);
    cJSON_Delete(dep);
}

static void test_history_survives_apply_replacing_annotations(void **state)
{
    struct fx *f = *state;
    int64_t now = T0;
    deployment(f->s, "web", 2, "nginx:1.25", "", "");
    roll_to_end(f->s, "web", &now);
    /* The user applies the manifest again with a new image: metadata comes from the
     * manifest, without the controller's annotations. */
    cJSON *d = get(f->s, DRV_KIND_DEPLOYMENT, "web");
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(d, "metadata"), "annotations");
    cJSON *c = cJSON_GetArrayItem(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "spec"), "template"),
                                "spec"),
            "containers"),
        0);
    cJSON_ReplaceItemInObject(c, "image", cJSON_CreateString("nginx:1.26"));
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_update(f->s, DRV_KIND_DEPLOYMENT, d, &err), DRV_OK);
    cJSON_Delete(d);
    roll_to_end(f->s, "web", &now);
    d = get(f->s, DRV_KIND_DEPLOYMENT, "web");
    const cJSON *ann = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "metadata"), "annotations");
    assert_string_equal(cJSON_GetObjectItem(ann, DRV_CTRL_ANN_REVISION)->valuestring, "2");
    cJSON_Delete(d);
    /* So `rollout undo` still finds the previous image. */
    assert_int_equal(drv_ctrl_deployment_rollback(f->s, "default", "web", 0, &err), DRV_OK);
    roll_to_end(f->s, "web", &now);
    size_t total, img, ready;
    count(f->s, "nginx:1.25", &total, &img, &ready);
    assert_int_equal(total, 2);
    assert_int_equal(img, 2);
}

static void test_revision_history_limit(void **state)
{
    struct fx *f = *state;
    int64_t now = T0;
    deployment(f->s, "web", 1, "nginx:1.20", "\"revisionHistoryLimit\":1,", "");
    roll_to_end(f->s, "web", &now);
    set_image(f->s, "web", "nginx:1.21");
    roll_to_end(f->s, "web", &now);
    set_image(f->s, "web", "nginx:1.22");
    roll_to_end(f->s, "web", &now);
    cJSON *dep = get(f->s, DRV_KIND_DEPLOYMENT, "web");
    const cJSON *ann = cJSON_GetObjectItem(cJSON_GetObjectItem(dep, "metadata"), "annotations");
    cJSON *hist = json(cJSON_GetObjectItem(ann, DRV_CTRL_ANN_HISTORY)->valuestring);
    assert_int_equal(cJSON_GetArraySize(hist), 2); /* current + 1 old */
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(hist, 0), "revision")->valueint, 2);
    cJSON_Delete(hist);
    cJSON_Delete(dep);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_ctrl_deployment_rollback(f->s, "default", "web", 1, &err),
                     DRV_ERR_NOTFOUND);
}

static void test_pause_stops_progress(void **state)
{
    struct fx *f = *state;
    int64_t now = T0;
    deployment(f->s, "web", 2, "nginx:1.25", "", "");
    roll_to_end(f->s, "web", &now);
    set_spec(f->s, "web", "paused", "true");
    set_image(f->s, "web", "nginx:1.26");
    roll_to_end(f->s, "web", &now);
    size_t total, img, ready;
    count(f->s, "nginx:1.26", &total, &img, &ready);
    assert_int_equal(total, 2);
    assert_int_equal(img, 0);
    /* Scaling still works while paused, with the running template. */
    set_spec(f->s, "web", "replicas", "3");
    roll_to_end(f->s, "web", &now);
    count(f->s, "nginx:1.25", &total, &img, &ready);
    assert_int_equal(total, 3);
    assert_int_equal(img, 3);
    cJSON *dep = get(f->s, DRV_KIND_DEPLOYMENT, "web");
    const cJSON *c = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(dep, "status"), "conditions"), 1);
    assert_string_equal(cJSON_GetObjectItem(c, "reason")->valuestring, "DeploymentPaused");
    cJSON_Delete(dep);
    /* Resume: the rollout proceeds. */
    set_spec(f->s, "web", "paused", "false");
    roll_to_end(f->s, "web", &now);
    count(f->s, "nginx:1.26", &total, &img, &ready);
    assert_int_equal(total, 3);
    assert_int_equal(img, 3);
}

static void test_recreate_deletes_all_then_creates(void **state)
{
    struct fx *f = *state;
    deployment(f->s, "db", 3, "postgres:16", "\"strategy\":{\"type\":\"Recreate\"},", "");
    reconcile(f->s, "db", T0);
    mark_ready(f->s, T0);
    set_image(f->s, "db", "postgres:17");
    reconcile(f->s, "db", T0 + 1000);
    size_t total, img, ready;
    count(f->s, "postgres:17", &total, &img, &ready);
    assert_int_equal(total, 0); /* old ones gone before any new one exists */
    reconcile(f->s, "db", T0 + 2000);
    count(f->s, "postgres:17", &total, &img, &ready);
    assert_int_equal(total, 3);
    assert_int_equal(img, 3);
}

static void test_min_ready_seconds(void **state)
{
    struct fx *f = *state;
    deployment(f->s, "web", 2, "nginx:1.25", "\"minReadySeconds\":30,", "");
    reconcile(f->s, "web", T0);
    mark_ready(f->s, T0);
    reconcile(f->s, "web", T0 + 10000);
    assert_int_equal(status_int(f->s, DRV_KIND_DEPLOYMENT, "web", "readyReplicas"), 2);
    assert_int_equal(status_int(f->s, DRV_KIND_DEPLOYMENT, "web", "availableReplicas"), 0);
    reconcile(f->s, "web", T0 + 31000);
    assert_int_equal(status_int(f->s, DRV_KIND_DEPLOYMENT, "web", "availableReplicas"), 2);
}

static const char *progressing_reason(drv_hstore_t *s, const char *name, char out[64])
{
    cJSON *d = get(s, DRV_KIND_DEPLOYMENT, name);
    const cJSON *conds = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "status"), "conditions"), *c;
    snprintf(out, 64, "none");
    cJSON_ArrayForEach(c, conds)
    {
        if (!strcmp(cJSON_GetObjectItem(c, "type")->valuestring, "Progressing"))
            snprintf(out, 64, "%s", cJSON_GetObjectItem(c, "reason")->valuestring);
    }
    cJSON_Delete(d);
    return out;
}

static void test_progress_deadline(void **state)
{
    struct fx *f = *state;
    char why[64];
    deployment(f->s, "web", 2, "nginx:1.25", "\"progressDeadlineSeconds\":60,", "");
    reconcile(f->s, "web", T0);
    assert_string_equal(progressing_reason(f->s, "web", why), "ReplicaSetUpdated");
    reconcile(f->s, "web", T0 + 50000);
    assert_string_equal(progressing_reason(f->s, "web", why), "ReplicaSetUpdated");
    /* No pod became ready for over a minute: the rollout is reported stuck... */
    reconcile(f->s, "web", T0 + 61000);
    assert_string_equal(progressing_reason(f->s, "web", why), "ProgressDeadlineExceeded");
    /* ...until it progresses again and completes. */
    mark_ready(f->s, T0 + 62000);
    reconcile(f->s, "web", T0 + 62000);
    assert_string_equal(progressing_reason(f->s, "web", why), "NewReplicaSetAvailable");
}

static void test_deleted_deployment_pods_collected(void **state)
{
    struct fx *f = *state;
    deployment(f->s, "web", 2, "nginx:1.25", "", "");
    deployment(f->s, "api", 1, "nginx:1.25", "", "");
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_ctrl_deployments_reconcile(f->s, T0, &err), DRV_OK);
    size_t total, img, ready;
    count(f->s, NULL, &total, &img, &ready);
    assert_int_equal(total, 3);
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_DEPLOYMENT, "default", "web", NULL, &err),
                     DRV_OK);
    assert_int_equal(drv_ctrl_deployments_reconcile(f->s, T0, &err), DRV_OK);
    count(f->s, NULL, &total, &img, &ready);
    assert_int_equal(total, 1);
    /* Reconciling a missing one by name does the same, and is no error. */
    assert_int_equal(drv_ctrl_deployment_reconcile(f->s, "default", "api", T0, &err), DRV_OK);
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_DEPLOYMENT, "default", "api", NULL, &err),
                     DRV_OK);
    assert_int_equal(drv_ctrl_deployment_reconcile(f->s, "default", "api", T0, &err), DRV_OK);
    count(f->s, NULL, &total, &img, &ready);
    assert_int_equal(total, 0);
}

static void test_broken_deployment_does_not_stop_others(void **state)
{
    struct fx *f = *state;
    /* Stored without passing the model (as a corrupted or hand-edited row could be): its
     * pods cannot be made, and the error names the field; the others still run. */
    cJSON *bad = json("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{"
                      "\"name\":\"aaa\",\"namespace\":\"default\"},\"spec\":{\"replicas\":1,"
                      "\"template\":{\"metadata\":{\"labels\":{\"app\":\"aaa\"}},\"spec\":{"
                      "\"containers\":[{\"name\":\"c\",\"image\":42}]}}}}");
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_create(f->s, DRV_KIND_DEPLOYMENT, bad, &err), DRV_OK);
    cJSON_Delete(bad);
    deployment(f->s, "web", 2, "nginx:1.25", "", "");
    drv_ctrl_nodes_opts_t o = {0};
    assert_int_equal(drv_ctrl_reconcile_all(f->s, &o, NULL, NULL, T0, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "spec.containers[0].image"));
    /* The Deployment's status says why (condition ReplicaFailure, as in Kubernetes). */
    cJSON *d = get(f->s, DRV_KIND_DEPLOYMENT, "aaa");
    const cJSON *conds = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "status"), "conditions"), *c;
    bool found = false;
    cJSON_ArrayForEach(c, conds)
    {
        if (!strcmp(cJSON_GetObjectItem(c, "type")->valuestring, "ReplicaFailure")) {
            found = true;
            assert_string_equal(cJSON_GetObjectItem(c, "reason")->valuestring, "FailedCreate");
            assert_non_null(
                strstr(cJSON_GetObjectItem(c, "message")->valuestring, "spec.containers[0].image"));
        }
    }
    assert_true(found);
    cJSON_Delete(d);
    size_t total, img, ready;
    count(f->s, "nginx:1.25", &total, &img, &ready);
    assert_int_equal(total, 2);
    assert_int_equal(img, 2);
}

static void test_garbage_history_annotation_is_survived(void **state)
{
    struct fx *f = *state;
    create(f->s, "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":"
                 "\"web\",\"annotations\":{\"drover.io/history\":\"[{not json\","
                 "\"deployment.kubernetes.io/revision\":\"x\"}},\"spec\":{\"replicas\":1,"
                 "\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"template\":{\"metadata\":"
                 "{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":\"c\","
                 "\"image\":\"nginx:1\"}]}}}}");
    reconcile(f->s, "web", T0);
    cJSON *dep = get(f->s, DRV_KIND_DEPLOYMENT, "web");
    const cJSON *ann = cJSON_GetObjectItem(cJSON_GetObjectItem(dep, "metadata"), "annotations");
    assert_string_equal(cJSON_GetObjectItem(ann, DRV_CTRL_ANN_REVISION)->valuestring, "1");
    cJSON_Delete(dep);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_ctrl_deployment_rollback(f->s, "default", "web", 0, &err),
                     DRV_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "no revision before 1"));
}

/* How many Events have reason and a message containing text. */
static int events(drv_hstore_t *s, const char *reason, const char *text)
{
    cJSON *items = NULL, *e;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_list(s, DRV_KIND_EVENT, NULL, NULL, &items, NULL, &err) != DRV_OK)
        fail_msg("list events: %s", drv_error_msg(&err));
    int n = 0;
    cJSON_ArrayForEach(e, items)
    {
        const cJSON *r = cJSON_GetObjectItem(e, "reason"), *m = cJSON_GetObjectItem(e, "message");
        n += cJSON_IsString(r) && !strcmp(r->valuestring, reason) && cJSON_IsString(m) &&
             strstr(m->valuestring, text) != NULL;
    }
    cJSON_Delete(items);
    return n;
}

static void test_hostile_history_annotation(void **state)
{
    struct fx *f = *state;
    /* Revision numbers out of any range, a template that is not a valid pod template. */
    create(f->s, "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":"
                 "\"web\",\"annotations\":{\"drover.io/history\":\"[{\\\"revision\\\":1e300,"
                 "\\\"hash\\\":\\\"x\\\",\\\"template\\\":{}},{\\\"revision\\\":2,\\\"hash\\\":"
                 "\\\"y\\\",\\\"template\\\":{\\\"spec\\\":{\\\"containers\\\":[{\\\"name\\\":"
                 "\\\"BAD NAME\\\"}]}}}]\"}},\"spec\":{\"replicas\":1,\"selector\":{"
                 "\"matchLabels\":{\"app\":\"web\"}},\"template\":{\"metadata\":{\"labels\":{"
                 "\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":"
                 "\"nginx:1\"}]}}}}");
    reconcile(f->s, "web", T0);
    drv_error_t err = DRV_ERROR_INIT;
    /* The current template became revision 3; revision 2 is refused with the field path. */
    assert_int_equal(drv_ctrl_deployment_rollback(f->s, "default", "web", 2, &err),
                     DRV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "revision 2 cannot be restored"));
    assert_non_null(strstr(err.msg, "spec.template.metadata.labels"));
    size_t total, img, ready;
    count(f->s, "nginx:1", &total, &img, &ready);
    assert_int_equal(img, 1); /* untouched */
}

/* ---- scheduling ---- */

static void test_schedule_spreads_and_reports_unschedulable(void **state)
{
    struct fx *f = *state;
    add_node(f->s, "n1", "", "", T0);
    add_node(f->s, "n2", "", "", T0);
    add_node(f->s, "n3", "", "", T0);
    deployment(f->s, "web", 3, "nginx:1.25", "", "");
    deployment(f->s, "big", 1, "nginx:1.25", "", "\"nodeSelector\":{\"disk\":\"ssd\"},");
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_ctrl_deployments_reconcile(f->s, T0, &err), DRV_OK);
    size_t bound = 0;
    assert_int_equal(drv_ctrl_schedule(f->s, NULL, NULL, T0, &bound, &err), DRV_OK);
    assert_int_equal(bound, 3);
    cJSON *all = pods(f->s), *p;
    bool seen[3] = {false, false, false};
    cJSON_ArrayForEach(p, all)
    {
        const char *n = spec_str(p, "nodeName");
        if (!strncmp(meta(p, "name"), "web-", 4)) {
            assert_int_equal(strlen(n), 2);
            assert_false(seen[n[1] - '1']);
            seen[n[1] - '1'] = true;
        } else {
            assert_string_equal(n, "");
            const cJSON *c = cJSON_GetArrayItem(
                cJSON_GetObjectItem(cJSON_GetObjectItem(p, "status"), "conditions"), 0);
            assert_string_equal(cJSON_GetObjectItem(c, "type")->valuestring, "PodScheduled");
            assert_string_equal(cJSON_GetObjectItem(c, "reason")->valuestring, "Unschedulable");
            assert_string_equal(
                cJSON_GetObjectItem(c, "message")->valuestring,
                "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.");
        }
    }
    cJSON_Delete(all);
    assert_int_equal(events(f->s, "FailedScheduling", "3 node(s) didn't match"), 1);
    /* Nothing changes on the next round (no status rewrite every tick, no new event). */
    uint64_t rv = drv_hstore_rv(f->s);
    assert_int_equal(drv_ctrl_schedule(f->s, NULL, NULL, T0 + 5000, &bound, &err), DRV_OK);
    assert_int_equal(bound, 0);
    assert_int_equal(drv_hstore_rv(f->s), rv);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_schedule_throughput_through_the_store(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 100; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%03d", i);
        add_node(f->s, name, "", "", T0);
    }
    deployment(f->s, "web", 1000, "nginx:1.25", "", "");
    double t0 = mono_s();
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_ctrl_deployments_reconcile(f->s, T0, &err), DRV_OK);
    double t1 = mono_s();
    size_t bound = 0;
    assert_int_equal(drv_ctrl_schedule(f->s, NULL, NULL, T0, &bound, &err), DRV_OK);
    double t2 = mono_s();
    assert_int_equal(bound, 1000);
    printf("controllers: 1000 pods created in %.2f s, bound over 100 nodes in %.2f s (%.0f pods/s "
           "including the store)\n",
           t1 - t0, t2 - t1, 1000 / (t2 - t1));
    /* Evenly spread: 10 on every node. */
    int per[100] = {0};
    cJSON *all = pods(f->s), *p;
    cJSON_ArrayForEach(p, all)
    {
        const char *n = spec_str(p, "nodeName");
        assert_int_equal(strlen(n), 4);
        per[strtol(n + 1, NULL, 10)]++;
    }
    cJSON_Delete(all);
    for (int i = 0; i < 100; i++)
        assert_int_equal(per[i], 10);
}

static const char *const *only_amd64(void *ctx, const char *image)
{
    (void)ctx;
    (void)image;
    static const char *const p[] = {"linux/amd64", NULL};
    return p;
}

static void test_schedule_honours_image_platforms(void **state)
{
    struct fx *f = *state;
    add_node(f->s, "n1", "", "", T0);
    deployment(f->s, "web", 1, "nginx:1.25", "", "");
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_ctrl_deployments_reconcile(f->s, T0, &err), DRV_OK);
    size_t bound = 9;
    assert_int_equal(drv_ctrl_schedule(f->s, only_amd64, NULL, T0, &bound, &err), DRV_OK);
    assert_int_equal(bound, 0);
    cJSON *all = pods(f->s);
    const cJSON *c = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(all, 0), "status"),
                            "conditions"),
        0);
    assert_non_null(strstr(cJSON_GetObjectItem(c, "message")->valuestring, "platforms"));
    /* The message names what the image offers. */
    assert_non_null(strstr(cJSON_GetObjectItem(c, "message")->valuestring,
                           "The image nginx:1.25 offers linux/amd64."));
    cJSON_Delete(all);
}

static const char *const *still_looking(void *ctx, const char *image)
{
    (void)image;
    (*(int *)ctx)++;
    return DRV_CTRL_PLATFORMS_PENDING;
}

/* While the image's platforms are being looked up the pod waits, unbound and unmarked. */
static void test_schedule_waits_for_platforms(void **state)
{
    struct fx *f = *state;
    add_node(f->s, "n1", "", "", T0);
    deployment(f->s, "web", 1, "nginx:1.25", "", "");
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_ctrl_deployments_reconcile(f->s, T0, &err), DRV_OK);
    size_t bound = 9;
    int asked = 0;
    assert_int_equal(drv_ctrl_schedule(f->s, still_looking, &asked, T0, &bound, &err), DRV_OK);
    assert_int_equal(asked, 1);
    assert_int_equal(bound, 0);
    cJSON *all = pods(f->s);
    const cJSON *st = cJSON_GetObjectItem(cJSON_GetArrayItem(all, 0), "status");
    assert_null(cJSON_GetObjectItem(st, "conditions")); /* not marked unschedulable */
    cJSON_Delete(all);
    assert_int_equal(events(f->s, "FailedScheduling", ""), 0);
    /* Known at last (any node): bound. */
    assert_int_equal(drv_ctrl_schedule(f->s, NULL, NULL, T0, &bound, &err), DRV_OK);
    assert_int_equal(bound, 1);
}

/* ---- DaemonSet ---- */

static void daemonset(drv_hstore_t *s, const char *image, const char *pod_extra)
{
    char buf[2048];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"apps/v1\",\"kind\":\"DaemonSet\",\"metadata\":{\"name\":\"agent\"},"
             "\"spec\":{\"selector\":{\"matchLabels\":{\"app\":\"mon\"}},\"template\":{"
             "\"metadata\":{\"labels\":{\"app\":\"mon\"}},\"spec\":{%s\"containers\":[{\"name\":"
             "\"c\",\"image\":\"%s\"}]}}}}",
             pod_extra, image);
    create(s, buf);
}

static size_t pods_on(drv_hstore_t *s, const char *node)
{
    cJSON *all = pods(s), *p;
    size_t n = 0;
    cJSON_ArrayForEach(p, all)
    {
        n += !strcmp(spec_str(p, "nodeName"), node);
    }
    cJSON_Delete(all);
    return n;
}

static void ds_reconcile(drv_hstore_t *s, int64_t now)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_ctrl_daemonsets_reconcile(s, now, &err) != DRV_OK)
        fail_msg("daemonsets: %s", drv_error_msg(&err));
}

static void test_daemonset_one_pod_per_matching_node(void **state)
{
    struct fx *f = *state;
    add_node(f->s, "n1", "\"edge\":\"yes\"", "", T0);
    add_node(f->s, "n2", "\"edge\":\"yes\"", "", T0);
    add_node(f->s, "n3", "\"edge\":\"no\"", "", T0);
    add_node(f->s, "n4", "\"edge\":\"yes\"",
             "\"taints\":[{\"key\":\"dedicated\",\"value\":\"db\",\"effect\":\"NoSchedule\"}]", T0);
    daemonset(f->s, "mon:1", "\"nodeSelector\":{\"edge\":\"yes\"},");
    ds_reconcile(f->s, T0);
    assert_int_equal(pods_on(f->s, "n1"), 1);
    assert_int_equal(pods_on(f->s, "n2"), 1);
    assert_int_equal(pods_on(f->s, "n3"), 0);
    assert_int_equal(pods_on(f->s, "n4"), 0); /* tainted, not tolerated */
    assert_int_equal(status_int(f->s, DRV_KIND_DAEMONSET, "agent", "desiredNumberScheduled"), 2);
    /* Idempotent. */
    uint64_t rv = drv_hstore_rv(f->s);
    ds_reconcile(f->s, T0);
    assert_int_equal(drv_hstore_rv(f->s), rv);
    /* A node that joins later gets one; one that stops matching loses it. */
    add_node(f->s, "n5", "\"edge\":\"yes\"", "", T0);
    cJSON *n1 = get(f->s, DRV_KIND_NODE, "n1");
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(n1, "metadata"), "labels",
                              json("{\"edge\":\"no\"}"));
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_update(f->s, DRV_KIND_NODE, n1, &err), DRV_OK);
    cJSON_Delete(n1);
    ds_reconcile(f->s, T0);
    assert_int_equal(pods_on(f->s, "n5"), 1);
    assert_int_equal(pods_on(f->s, "n1"), 0);
    assert_int_equal(pods_on(f->s, "n2"), 1);
    /* A DaemonSet pod is bound directly: the scheduler has nothing to do. */
    size_t bound = 9;
    assert_int_equal(drv_ctrl_schedule(f->s, NULL, NULL, T0, &bound, &err), DRV_OK);
    assert_int_equal(bound, 0);
}

/* Required node affinity selects the nodes as nodeSelector does: how fleets target
 * hardware. */
static void test_daemonset_node_affinity(void **state)
{
    struct fx *f = *state;
    add_node(f->s, "n1", "\"kubernetes.io/arch\":\"arm64\"", "", T0);
    add_node(f->s, "n2", "\"kubernetes.io/arch\":\"amd64\"", "", T0);
    add_node(f->s, "n3", "", "", T0);
    daemonset(f->s, "mon:1",
              "\"affinity\":{\"nodeAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":"
              "{\"nodeSelectorTerms\":[{\"matchExpressions\":[{\"key\":\"kubernetes.io/arch\","
              "\"operator\":\"In\",\"values\":[\"arm64\",\"arm\"]}]}]}}},");
    ds_reconcile(f->s, T0);
    assert_int_equal(pods_on(f->s, "n1"), 1);
    assert_int_equal(pods_on(f->s, "n2"), 0);
    assert_int_equal(pods_on(f->s, "n3"), 0);
}

static void test_daemonset_toleration_and_rolling_update(void **state)
{
    struct fx *f = *state;
    for (int i = 1; i <= 4; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%d", i);
        add_node(f->s, name, "",
                 i == 4 ? "\"taints\":[{\"key\":\"dedicated\",\"effect\":\"NoExecute\"}]" : "", T0);
    }
    daemonset(f->s, "mon:1", "\"tolerations\":[{\"key\":\"dedicated\",\"operator\":\"Exists\"}],");
    ds_reconcile(f->s, T0);
    assert_int_equal(pods_on(f->s, "n4"), 1);
    mark_ready(f->s, T0);
    /* New image: at most one node (maxUnavailable 1) without a ready pod at any moment. */
    cJSON *ds = get(f->s, DRV_KIND_DAEMONSET, "agent");
    cJSON *c = cJSON_GetArrayItem(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(ds, "spec"), "template"),
                                "spec"),
            "containers"),
        0);
    cJSON_ReplaceItemInObject(c, "image", cJSON_CreateString("mon:2"));
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_update(f->s, DRV_KIND_DAEMONSET, ds, &err), DRV_OK);
    cJSON_Delete(ds);
    int step = 0;
    for (; step < 10; step++) {
        ds_reconcile(f->s, T0 + step * 1000);
        size_t total, img, ready;
        count(f->s, "mon:2", &total, &img, &ready);
        assert_int_equal(total, 4);
        assert_true(ready >= 3);
        if (img == 4 && ready == 4)
            break;
        mark_ready(f->s, T0 + step * 1000);
    }
    assert_true(step >= 4 && step < 10);
    assert_int_equal(status_int(f->s, DRV_KIND_DAEMONSET, "agent", "updatedNumberScheduled"), 4);
}

static void test_daemonset_surge_update(void **state)
{
    struct fx *f = *state;
    add_node(f->s, "n1", "", "", T0);
    add_node(f->s, "n2", "", "", T0);
    add_node(f->s, "n3", "", "", T0);
    create(f->s, "{\"apiVersion\":\"apps/v1\",\"kind\":\"DaemonSet\",\"metadata\":{\"name\":"
                 "\"agent\"},\"spec\":{\"updateStrategy\":{\"rollingUpdate\":{\"maxSurge\":1,"
                 "\"maxUnavailable\":0}},\"selector\":{\"matchLabels\":{\"app\":\"mon\"}},"
                 "\"template\":{\"metadata\":{\"labels\":{\"app\":\"mon\"}},\"spec\":{"
                 "\"containers\":[{\"name\":\"c\",\"image\":\"mon:1\"}]}}}}");
    ds_reconcile(f->s, T0);
    mark_ready(f->s, T0);
    cJSON *ds = get(f->s, DRV_KIND_DAEMONSET, "agent");
    cJSON *c = cJSON_GetArrayItem(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(ds, "spec"), "template"),
                                "spec"),
            "containers"),
        0);
    cJSON_ReplaceItemInObject(c, "image", cJSON_CreateString("mon:2"));
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_update(f->s, DRV_KIND_DAEMONSET, ds, &err), DRV_OK);
    cJSON_Delete(ds);
    int step = 0;
    for (; step < 12; step++) {
        ds_reconcile(f->s, T0 + step * 1000);
        size_t total, img, ready;
        count(f->s, "mon:2", &total, &img, &ready);
        assert_true(total <= 4); /* one node at a time has two pods */
        /* Every node keeps a ready pod throughout (maxUnavailable 0). */
        const char *names[] = {"n1", "n2", "n3"};
        for (int k = 0; k < 3; k++) {
            cJSON *all = pods(f->s), *p;
            bool ok = false;
            cJSON_ArrayForEach(p, all)
            {
                ok = ok || (!strcmp(spec_str(p, "nodeName"), names[k]) && drv_ctrl_pod_ready(p));
            }
            cJSON_Delete(all);
            assert_true(ok);
        }
        if (img == 3 && total == 3 && ready == 3)
            break;
        mark_ready(f->s, T0 + step * 1000);
    }
    assert_true(step >= 3 && step < 12);
}

/* Sets the DaemonSet's container image and, when limit >= 0, its revisionHistoryLimit. */
static void ds_set(drv_hstore_t *s, const char *image, int limit)
{
    cJSON *ds = get(s, DRV_KIND_DAEMONSET, "agent");
    cJSON *spec = cJSON_GetObjectItem(ds, "spec");
    cJSON *c = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(spec, "template"), "spec"),
                            "containers"),
        0);
    cJSON_ReplaceItemInObject(c, "image", cJSON_CreateString(image));
    if (limit >= 0)
        cJSON_ReplaceItemInObject(spec, "revisionHistoryLimit", cJSON_CreateNumber(limit));
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_update(s, DRV_KIND_DAEMONSET, ds, &err) != DRV_OK)
        fail_msg("update agent: %s", drv_error_msg(&err));
    cJSON_Delete(ds);
}

static cJSON *revisions(drv_hstore_t *s)
{
    cJSON *items = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_list(s, DRV_KIND_CONTROLLERREVISION, NULL, NULL, &items, NULL, &err) != DRV_OK)
        fail_msg("list: %s", drv_error_msg(&err));
    return items;
}

/* The revision number of the record whose data sets image ("" when none), and how many. */
static int64_t revision_of(drv_hstore_t *s, const char *image, size_t *n)
{
    cJSON *all = revisions(s), *r;
    int64_t rev = -1;
    *n = 0;
    cJSON_ArrayForEach(r, all)
    {
        (*n)++;
        const cJSON *t = cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(r, "data"), "spec"), "template");
        const cJSON *c = cJSON_GetArrayItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(t, "spec"), "containers"), 0);
        if (!strcmp(cJSON_GetObjectItem(c, "image")->valuestring, image))
            rev = (int64_t)cJSON_GetObjectItem(r, "revision")->valuedouble;
    }
    cJSON_Delete(all);
    return rev;
}

/* The ControllerRevisions kubectl rollout history|undo daemonset reads: one per template, owned
 * by the DaemonSet, selected by its selector, data the patch that restores the template. */
static void test_daemonset_controller_revisions(void **state)
{
    struct fx *f = *state;
    add_node(f->s, "n1", "", "", T0);
    daemonset(f->s, "mon:1", "");
    ds_reconcile(f->s, T0);
    cJSON *all = revisions(f->s), *ds = get(f->s, DRV_KIND_DAEMONSET, "agent");
    assert_int_equal(cJSON_GetArraySize(all), 1);
    cJSON *r = cJSON_GetArrayItem(all, 0);
    cJSON *labels = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "metadata"), "labels");
    const char *hash = cJSON_GetObjectItem(labels, "controller-revision-hash")->valuestring;
    char name[64];
    snprintf(name, sizeof(name), "agent-%s", hash);
    assert_string_equal(meta(r, "name"), name);
    assert_string_equal(cJSON_GetObjectItem(labels, "app")->valuestring, "mon");
    assert_int_equal(cJSON_GetObjectItem(r, "revision")->valuedouble, 1);
    const cJSON *ref = drv_ctrl_controller_of(r);
    assert_string_equal(cJSON_GetObjectItem(ref, "kind")->valuestring, "DaemonSet");
    assert_string_equal(cJSON_GetObjectItem(ref, "uid")->valuestring, meta(ds, "uid"));
    /* data: the template and a replace directive, nothing else. */
    cJSON *data = cJSON_Duplicate(cJSON_GetObjectItem(r, "data"), true);
    cJSON *t = cJSON_GetObjectItem(cJSON_GetObjectItem(data, "spec"), "template");
    assert_string_equal(cJSON_GetObjectItem(t, "$patch")->valuestring, "replace");
    cJSON_DeleteItemFromObject(t, "$patch");
    assert_true(
        cJSON_Compare(t, cJSON_GetObjectItem(cJSON_GetObjectItem(ds, "spec"), "template"), true));
    assert_int_equal(cJSON_GetArraySize(data), 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(data, "spec")), 1);
    cJSON_Delete(data);
    /* The pods carry the record's hash. */
    cJSON *pl = pods(f->s);
    assert_int_equal(cJSON_GetArraySize(pl), 1);
    assert_string_equal(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(pl, 0), "metadata"),
                                "labels"),
            "controller-revision-hash")
            ->valuestring,
        hash);
    cJSON_Delete(pl);
    cJSON_Delete(all);
    cJSON_Delete(ds);
    uint64_t rv = drv_hstore_rv(f->s);
    ds_reconcile(f->s, T0);
    assert_int_equal(drv_hstore_rv(f->s), rv); /* nothing rewritten */

    /* A new template: a new record, one number up. */
    size_t n = 0;
    ds_set(f->s, "mon:2", -1);
    ds_reconcile(f->s, T0 + 1000);
    assert_int_equal(revision_of(f->s, "mon:1", &n), 1);
    assert_int_equal(revision_of(f->s, "mon:2", &n), 2);
    assert_int_equal(n, 2);
    /* Back to the first template (rollout undo): its record becomes revision 3. */
    ds_set(f->s, "mon:1", -1);
    ds_reconcile(f->s, T0 + 2000);
    assert_int_equal(revision_of(f->s, "mon:1", &n), 3);
    assert_int_equal(revision_of(f->s, "mon:2", &n), 2);
    assert_int_equal(n, 2);
    /* revisionHistoryLimit 1: one old record besides the current one, the newest. */
    ds_set(f->s, "mon:3", 1);
    ds_reconcile(f->s, T0 + 3000);
    assert_int_equal(revision_of(f->s, "mon:3", &n), 4);
    assert_int_equal(revision_of(f->s, "mon:1", &n), 3);
    assert_int_equal(revision_of(f->s, "mon:2", &n), -1);
    assert_int_equal(n, 2);
    /* An old record whose template still has a pod stays (a slow rollout, OnDelete). */
    mark_ready(f->s, T0 + 3000);
    cJSON *d = get(f->s, DRV_KIND_DAEMONSET, "agent");
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(d, "spec"), "updateStrategy",
                              json("{\"type\":\"OnDelete\"}"));
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_update(f->s, DRV_KIND_DAEMONSET, d, &err), DRV_OK);
    cJSON_Delete(d);
    ds_set(f->s, "mon:4", 0);
    ds_reconcile(f->s, T0 + 4000);
    assert_int_equal(revision_of(f->s, "mon:4", &n), 5);
    assert_int_equal(revision_of(f->s, "mon:3", &n), 4); /* its pod still runs */
    assert_int_equal(n, 2);
    /* Deleted with their DaemonSet; another DaemonSet's records are not touched. */
    create(f->s, "{\"apiVersion\":\"apps/v1\",\"kind\":\"DaemonSet\",\"metadata\":{\"name\":"
                 "\"other\"},\"spec\":{\"selector\":{\"matchLabels\":{\"app\":\"o\"}},"
                 "\"template\":{\"metadata\":{\"labels\":{\"app\":\"o\"}},\"spec\":{"
                 "\"containers\":[{\"name\":\"c\",\"image\":\"o:1\"}]}}}}");
    ds_reconcile(f->s, T0 + 5000);
    assert_int_equal(revision_of(f->s, "o:1", &n), 1);
    assert_int_equal(n, 3);
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_DAEMONSET, "default", "agent", NULL, &err),
                     DRV_OK);
    assert_int_equal(drv_ctrl_daemonset_reconcile(f->s, "default", "agent", T0 + 6000, &err),
                     DRV_OK);
    assert_int_equal(revision_of(f->s, "o:1", &n), 1);
    assert_int_equal(n, 1);
    assert_int_equal(pods_on(f->s, "n1"), 1);
    /* Deleted and made again before a round collected its history: the new one's record
     * replaces the leftover of the same name. */
    daemonset(f->s, "mon:1", "");
    ds_reconcile(f->s, T0 + 7000);
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_DAEMONSET, "default", "agent", NULL, &err),
                     DRV_OK);
    daemonset(f->s, "mon:1", "");
    if (drv_ctrl_daemonset_reconcile(f->s, "default", "agent", T0 + 8000, &err) != DRV_OK)
        fail_msg("reconcile: %s", drv_error_msg(&err));
    ds = get(f->s, DRV_KIND_DAEMONSET, "agent");
    all = revisions(f->s);
    assert_int_equal(cJSON_GetArraySize(all), 2);
    cJSON_ArrayForEach(r, all)
    {
        if (!strcmp(cJSON_GetObjectItem(drv_ctrl_controller_of(r), "name")->valuestring, "agent"))
            assert_string_equal(cJSON_GetObjectItem(drv_ctrl_controller_of(r), "uid")->valuestring,
                                meta(ds, "uid"));
    }
    cJSON_Delete(all);
    cJSON_Delete(ds);
}

/* ---- node lifecycle ---- */

struct hb {
    const char *name[4];
    int64_t at[4];
};

static int64_t heartbeat(void *ctx, const char *node)
{
    struct hb *h = ctx;
    for (int i = 0; i < 4; i++)
        if (h->name[i] && !strcmp(h->name[i], node))
            return h->at[i];
    return -1;
}

static const char *ready_status(drv_hstore_t *s, const char *node, char out[16])
{
    cJSON *n = get(s, DRV_KIND_NODE, node);
    const cJSON *conds = cJSON_GetObjectItem(cJSON_GetObjectItem(n, "status"), "conditions"), *c;
    snprintf(out, 16, "none");
    cJSON_ArrayForEach(c, conds)
    {
        if (!strcmp(cJSON_GetObjectItem(c, "type")->valuestring, "Ready"))
            snprintf(out, 16, "%s", cJSON_GetObjectItem(c, "status")->valuestring);
    }
    cJSON_Delete(n);
    return out;
}

static void all_round(drv_hstore_t *s, const drv_ctrl_nodes_opts_t *o, int64_t now)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_ctrl_reconcile_all(s, o, NULL, NULL, now, &err) != DRV_OK)
        fail_msg("round: %s", drv_error_msg(&err));
}

static void test_node_lost_pods_replaced_after_toleration(void **state)
{
    struct fx *f = *state;
    struct hb h = {{"n1", "n2", "n3", NULL}, {T0, T0, T0, 0}};
    drv_ctrl_nodes_opts_t o = {.heartbeat = heartbeat, .ctx = &h};
    add_node(f->s, "n1", "", "", T0);
    add_node(f->s, "n2", "", "", T0);
    add_node(f->s, "n3", "", "", T0);
    deployment(f->s, "web", 3, "nginx:1.25", "", "");
    all_round(f->s, &o, T0);
    mark_ready(f->s, T0);
    assert_int_equal(pods_on(f->s, "n2"), 1);
    /* n2 goes silent; the others keep beating. */
    char st[16];
    for (int64_t t = T0 + 1000; t <= T0 + 10000; t += 1000) {
        h.at[0] = h.at[2] = t;
        all_round(f->s, &o, t);
    }
    assert_string_equal(ready_status(f->s, "n2", st), "True"); /* 10 s: not yet */
    h.at[0] = h.at[2] = T0 + 11000;
    all_round(f->s, &o, T0 + 11000);
    assert_string_equal(ready_status(f->s, "n2", st), "Unknown");
    assert_int_equal(pods_on(f->s, "n2"), 1); /* tolerated 3 s from the mark */
    /* ...but no longer counted as ready: its agent cannot report. */
    size_t total, img, ready;
    count(f->s, NULL, &total, &img, &ready);
    assert_int_equal(ready, 2);
    assert_int_equal(status_int(f->s, DRV_KIND_DEPLOYMENT, "web", "readyReplicas"), 2);
    h.at[0] = h.at[2] = T0 + 13999;
    all_round(f->s, &o, T0 + 13999);
    assert_int_equal(pods_on(f->s, "n2"), 1);
    h.at[0] = h.at[2] = T0 + 14000;
    size_t evicted = 0;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_ctrl_nodes_reconcile(f->s, &o, T0 + 14000, &evicted, &err), DRV_OK);
    assert_int_equal(evicted, 1);
    assert_int_equal(events(f->s, "NodeNotReady", "heartbeats"), 1);
    assert_int_equal(events(f->s, "TaintManagerEviction", "Node n2 is unreachable"), 1);
    all_round(f->s, &o, T0 + 14000);
    /* Replaced elsewhere: 3 pods, none on n2. */
    count(f->s, NULL, &total, &img, &ready);
    assert_int_equal(total, 3);
    assert_int_equal(pods_on(f->s, "n2"), 0);
    assert_int_equal(pods_on(f->s, "n1") + pods_on(f->s, "n3"), 3);
    /* n2's heartbeats resume: Ready again, before any full status report. */
    h.at[0] = h.at[1] = h.at[2] = T0 + 25000;
    all_round(f->s, &o, T0 + 25000);
    assert_string_equal(ready_status(f->s, "n2", st), "True");
    assert_int_equal(events(f->s, "NodeReady", "heartbeats again"), 1);
    /* Its own report keeps it Ready; nothing of web is bound there. */
    char ts[32], buf[512];
    fmt_time(T0 + 30000, ts);
    snprintf(buf, sizeof(buf),
             "{\"allocatable\":{\"cpu\":\"4\",\"memory\":\"4Gi\"},\"conditions\":[{\"type\":"
             "\"Ready\",\"status\":\"True\",\"lastHeartbeatTime\":\"%s\"}],\"nodeInfo\":"
             "{\"architecture\":\"arm64\"}}",
             ts);
    set_status(f->s, DRV_KIND_NODE, NULL, "n2", buf);
    h.at[0] = h.at[1] = h.at[2] = T0 + 30000;
    all_round(f->s, &o, T0 + 30000);
    assert_string_equal(ready_status(f->s, "n2", st), "True");
    count(f->s, NULL, &total, &img, &ready);
    assert_int_equal(total, 3);
}

/* Events older than the TTL go (what devices record cannot grow the store for ever); the
 * time is lastTimestamp, else the first one there; one without any time goes too. */
static void put_event(drv_hstore_t *s, const char *name, const char *field, int64_t at_ms)
{
    char ts[40];
    drv_ctrl_time_format(at_ms, ts, sizeof(ts));
    cJSON *ev = cJSON_CreateObject(), *md = cJSON_AddObjectToObject(ev, "metadata"),
          *io = cJSON_AddObjectToObject(ev, "involvedObject");
    cJSON_AddStringToObject(ev, "apiVersion", "v1");
    cJSON_AddStringToObject(ev, "kind", "Event");
    cJSON_AddStringToObject(md, "name", name);
    cJSON_AddStringToObject(md, "namespace", "default");
    cJSON_AddStringToObject(io, "kind", "Node");
    cJSON_AddStringToObject(io, "name", "n1");
    cJSON_AddStringToObject(ev, "reason", "Aged");
    cJSON_AddStringToObject(ev, "message", name);
    cJSON_AddStringToObject(ev, "type", "Normal");
    cJSON_AddStringToObject(ev, field, ts);
    drv_diags_t d = {0};
    if (drv_model_normalize(ev, &d) != DRV_OK) {
        char *t = drv_diags_format(&d, "");
        fail_msg("event %s: %s", name, t);
    }
    drv_diags_free(&d);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_create(s, DRV_KIND_EVENT, ev, &err) != DRV_OK)
        fail_msg("create event %s: %s", name, drv_error_msg(&err));
    cJSON_Delete(ev);
}

static void test_events_expire(void **state)
{
    struct fx *f = *state;
    const int64_t ttl = DRV_CTRL_EVENT_TTL_MS_DEFAULT;
    put_event(f->s, "old-last", "lastTimestamp", T0 - ttl - 1000);
    put_event(f->s, "new-last", "lastTimestamp", T0 - ttl + 1000);
    put_event(f->s, "old-first", "firstTimestamp", T0 - 2 * ttl);
    put_event(f->s, "new-event-time", "eventTime", T0 - 5000);
    size_t gone = 99;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_ctrl_events_expire(f->s, T0, 0, &gone, &err), DRV_OK);
    assert_int_equal(gone, 2);
    assert_int_equal(events(f->s, "Aged", "old-"), 0);
    assert_int_equal(events(f->s, "Aged", "new-"), 2);
    /* A shorter TTL of its own. */
    assert_int_equal(drv_ctrl_events_expire(f->s, T0, 10000, &gone, &err), DRV_OK);
    assert_int_equal(gone, 1);
    assert_int_equal(events(f->s, "Aged", "new-event-time"), 1);
    assert_int_equal(events(f->s, "Aged", "new-last"), 0);
}

/* What the hub writes on a node's behalf is handed to o->overrode (the bridge then asks the
 * node for a full report): the mark, its pods' readiness, the return; nothing for nodes that
 * keep beating, nothing in the steady state. */
struct overrides {
    struct hb hb;
    char seen[256];
    int calls;
};

static int64_t ov_heartbeat(void *ctx, const char *node)
{
    return heartbeat(&((struct overrides *)ctx)->hb, node);
}

static void ov_overrode(void *ctx, const char *node)
{
    struct overrides *v = ctx;
    v->calls++;
    size_t n = strlen(v->seen);
    if (!strstr(v->seen, node))
        snprintf(v->seen + n, sizeof(v->seen) - n, "%s ", node);
}

static void test_node_overrides_reported(void **state)
{
    struct fx *f = *state;
    struct overrides v = {.hb = {{"n1", "n2", NULL, NULL}, {T0, T0, 0, 0}}};
    drv_ctrl_nodes_opts_t o = {.heartbeat = ov_heartbeat, .overrode = ov_overrode, .ctx = &v};
    add_node(f->s, "n1", "", "", T0);
    add_node(f->s, "n2", "", "", T0);
    deployment(f->s, "web", 2, "nginx:1.25", "", "");
    all_round(f->s, &o, T0);
    mark_ready(f->s, T0);
    all_round(f->s, &o, T0 + 1000);
    assert_int_equal(v.calls, 0); /* all beating: the hub writes nothing over them */
    assert_int_equal(pods_on(f->s, "n2"), 1);
    /* n2 silent past the grace period: marked, and its pod marked not Ready. */
    v.hb.at[0] = T0 + 11000;
    all_round(f->s, &o, T0 + 11000);
    char st[16];
    assert_string_equal(ready_status(f->s, "n2", st), "Unknown");
    assert_string_equal(v.seen, "n2 ");
    assert_true(v.calls >= 2); /* the node, then its pod */
    /* Back before its toleration ran out: Ready again, and told once more. */
    int before = v.calls;
    v.hb.at[0] = v.hb.at[1] = T0 + 14000;
    all_round(f->s, &o, T0 + 14000);
    assert_string_equal(ready_status(f->s, "n2", st), "True");
    assert_int_equal(v.calls, before + 1);
    assert_int_equal(pods_on(f->s, "n2"), 1); /* not evicted */
    /* Steady again: nothing more. */
    before = v.calls;
    v.hb.at[0] = v.hb.at[1] = T0 + 15000;
    all_round(f->s, &o, T0 + 15000);
    assert_int_equal(v.calls, before);
    assert_string_equal(v.seen, "n2 ");
}

/* Two of three nodes silent at once (more than 55 %): the hub's view is suspect, as for a
 * disrupted zone in Kubernetes: the nodes are marked NotReady and their pods not ready, but
 * nothing is evicted; once one comes back (1 of 3 lost), eviction resumes. */
static void test_most_nodes_lost_no_eviction(void **state)
{
    struct fx *f = *state;
    struct hb h = {{"n1", "n2", "n3", NULL}, {T0, T0, T0, 0}};
    drv_ctrl_nodes_opts_t o = {.heartbeat = heartbeat, .ctx = &h};
    add_node(f->s, "n1", "", "", T0);
    add_node(f->s, "n2", "", "", T0);
    add_node(f->s, "n3", "", "", T0);
    deployment(f->s, "web", 3, "nginx:1.25", "", "");
    all_round(f->s, &o, T0);
    mark_ready(f->s, T0);
    char st[16];
    for (int64_t t = T0 + 1000; t <= T0 + 40000; t += 1000) {
        h.at[0] = t; /* only n1 beats */
        all_round(f->s, &o, t);
    }
    assert_string_equal(ready_status(f->s, "n2", st), "Unknown");
    assert_string_equal(ready_status(f->s, "n3", st), "Unknown");
    assert_int_equal(pods_on(f->s, "n2"), 1);
    assert_int_equal(pods_on(f->s, "n3"), 1);
    size_t total, img, ready;
    count(f->s, NULL, &total, &img, &ready);
    assert_int_equal(total, 3);
    assert_int_equal(ready, 1);
    /* n3 is back: 1 of 3 NotReady; n2's pod is moved. */
    for (int64_t t = T0 + 41000; t <= T0 + 45000; t += 1000) {
        h.at[0] = h.at[2] = t;
        all_round(f->s, &o, t);
    }
    assert_string_equal(ready_status(f->s, "n3", st), "True");
    assert_int_equal(pods_on(f->s, "n2"), 0);
    count(f->s, NULL, &total, &img, &ready);
    assert_int_equal(total, 3);
}

static void test_toleration_seconds_zero_never_moves(void **state)
{
    struct fx *f = *state;
    struct hb h = {{"n1", "n2", NULL, NULL}, {T0, T0, 0, 0}};
    drv_ctrl_nodes_opts_t o = {.heartbeat = heartbeat, .ctx = &h};
    add_node(f->s, "n1", "", "", T0);
    add_node(f->s, "n2", "", "", T0);
    deployment(f->s, "pinned", 1, "db:1", "",
               "\"tolerations\":[{\"key\":\"node.kubernetes.io/unreachable\",\"operator\":"
               "\"Exists\",\"effect\":\"NoExecute\",\"tolerationSeconds\":0}],");
    deployment(f->s, "slow", 1, "app:1", "",
               "\"tolerations\":[{\"key\":\"node.kubernetes.io/unreachable\",\"operator\":"
               "\"Exists\",\"effect\":\"NoExecute\",\"tolerationSeconds\":60}],");
    /* Both land on n1: n2 is cordoned for now. */
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_ctrl_node_cordon(f->s, "n2", true, &err), DRV_OK);
    all_round(f->s, &o, T0);
    assert_int_equal(pods_on(f->s, "n1"), 2);
    assert_int_equal(drv_ctrl_node_cordon(f->s, "n2", false, &err), DRV_OK);
    /* n1's Will fires. */
    assert_int_equal(drv_ctrl_node_mark_unreachable(f->s, "n1", T0 + 1000, &err), DRV_OK);
    char st[16];
    assert_string_equal(ready_status(f->s, "n1", st), "Unknown");
    h.at[1] = T0 + 30000;
    all_round(f->s, &o, T0 + 30000);
    assert_int_equal(pods_on(f->s, "n1"), 2);
    /* The Will came 1 s after n1's last beat: "slow"'s 60 s run from the end of the 10 s
     * grace, not from the Will. */
    h.at[1] = T0 + 62000;
    all_round(f->s, &o, T0 + 62000);
    assert_int_equal(pods_on(f->s, "n1"), 2);
    h.at[1] = T0 + 70000;
    all_round(f->s, &o, T0 + 70000);
    all_round(f->s, &o, T0 + 70000);
    assert_int_equal(pods_on(f->s, "n1"), 1); /* "slow" moved after 10 + 60 s */
    assert_int_equal(pods_on(f->s, "n2"), 1);
    h.at[1] = T0 + 3600000;
    all_round(f->s, &o, T0 + 3600000);
    assert_int_equal(pods_on(f->s, "n1"), 1); /* "pinned" never */
    /* Marking an unknown node is a clear error. */
    assert_int_equal(drv_ctrl_node_mark_unreachable(f->s, "ghost", T0, &err), DRV_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "ghost"));
}

static void test_cordon_and_drain(void **state)
{
    struct fx *f = *state;
    drv_ctrl_nodes_opts_t o = {0};
    add_node(f->s, "n1", "", "", T0);
    add_node(f->s, "n2", "", "", T0);
    deployment(f->s, "web", 2, "nginx:1.25", "", "");
    daemonset(f->s, "mon:1", "");
    create(f->s, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"bare\"},"
                 "\"spec\":{\"nodeName\":\"n1\",\"containers\":[{\"name\":\"c\",\"image\":"
                 "\"busybox:1\"}]}}");
    all_round(f->s, &o, T0);
    assert_int_equal(pods_on(f->s, "n1"), 3); /* web, mon, bare */
    drv_error_t err = DRV_ERROR_INIT;
    size_t evicted = 0;
    assert_int_equal(drv_ctrl_node_drain(f->s, "n1", T0 + 500, &evicted, &err), DRV_OK);
    assert_int_equal(evicted, 1);
    assert_int_equal(events(f->s, "Evicted", "drain"), 1);
    cJSON *n1 = get(f->s, DRV_KIND_NODE, "n1");
    assert_true(
        cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(n1, "spec"), "unschedulable")));
    cJSON_Delete(n1);
    all_round(f->s, &o, T0 + 1000);
    assert_int_equal(pods_on(f->s, "n1"), 2); /* the DaemonSet pod and the bare pod stay */
    assert_int_equal(pods_on(f->s, "n2"), 3); /* both web replicas and mon */
    /* Uncordon: new replicas may land there again. */
    assert_int_equal(drv_ctrl_node_cordon(f->s, "n1", false, &err), DRV_OK);
    set_spec(f->s, "web", "replicas", "3");
    all_round(f->s, &o, T0 + 2000);
    assert_int_equal(pods_on(f->s, "n1"), 3);
    assert_int_equal(drv_ctrl_node_drain(f->s, "ghost", T0, NULL, &err), DRV_ERR_NOTFOUND);
}

static void test_deleted_node_pods_replaced(void **state)
{
    struct fx *f = *state;
    drv_ctrl_nodes_opts_t o = {0};
    add_node(f->s, "n1", "", "", T0);
    add_node(f->s, "n2", "", "", T0);
    deployment(f->s, "web", 2, "nginx:1.25", "", "");
    create(f->s, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"later\"},"
                 "\"spec\":{\"nodeName\":\"n9\",\"containers\":[{\"name\":\"c\",\"image\":"
                 "\"busybox:1\"}]}}");
    all_round(f->s, &o, T0);
    assert_int_equal(pods_on(f->s, "n1"), 1);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_NODE, NULL, "n1", NULL, &err), DRV_OK);
    all_round(f->s, &o, T0 + 1000);
    assert_int_equal(pods_on(f->s, "n1"), 0);
    assert_int_equal(pods_on(f->s, "n2"), 2);
    assert_int_equal(pods_on(f->s, "n9"), 1); /* a bare pod waits for its node to join */
    assert_int_equal(events(f->s, "NodeDeleted", "n1"), 1);
}

static void test_time_helpers(void **state)
{
    (void)state;
    assert_int_equal(drv_ctrl_time_parse("1970-01-01T00:00:01Z"), 1000);
    assert_int_equal(drv_ctrl_time_parse("1970-01-01T00:00:01.250Z"), 1250);
    assert_int_equal(drv_ctrl_time_parse("1970-01-01T01:00:00+01:00"), 0);
    assert_int_equal(drv_ctrl_time_parse("yesterday"), -1);
    assert_int_equal(drv_ctrl_time_parse("1970-01-01T00:00:01"), -1);
    assert_int_equal(drv_ctrl_time_parse(NULL), -1);
    char ts[32];
    drv_ctrl_time_format(T0, ts, sizeof(ts));
    assert_string_equal(ts, "2027-01-15T08:00:00Z");
    assert_int_equal(drv_ctrl_time_parse(ts), T0);
    /* Past 2038 and leap days, on every target. */
    assert_int_equal(drv_ctrl_time_parse("2100-03-01T00:00:00Z"), 4107542400000LL);
    drv_ctrl_time_format(4107542400000LL - 1000, ts, sizeof(ts));
    assert_string_equal(ts, "2100-02-28T23:59:59Z");
    drv_ctrl_time_format(951782400000LL, ts, sizeof(ts));
    assert_string_equal(ts, "2000-02-29T00:00:00Z");
    assert_int_equal(drv_ctrl_time_parse("99999-01-01T00:00:00Z"), -1);
}

#define FT(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FT(test_deployment_creates_owned_pods),
        FT(test_deployment_scales_up_and_down),
        FT(test_rolling_update_keeps_availability),
        cmocka_unit_test(test_rolling_update_percentages_round_like_kubernetes),
        FT(test_rollback_restores_old_template),
        FT(test_rollout_undo_through_replicasets),
        FT(test_pods_owned_by_deployment_still_counted),
        FT(test_history_survives_apply_replacing_annotations),
        FT(test_revision_history_limit),
        FT(test_pause_stops_progress),
        FT(test_recreate_deletes_all_then_creates),
        FT(test_min_ready_seconds),
        FT(test_progress_deadline),
        FT(test_deleted_deployment_pods_collected),
        FT(test_broken_deployment_does_not_stop_others),
        FT(test_garbage_history_annotation_is_survived),
        FT(test_hostile_history_annotation),
        FT(test_schedule_spreads_and_reports_unschedulable),
        FT(test_schedule_honours_image_platforms),
        FT(test_schedule_waits_for_platforms),
        FT(test_schedule_throughput_through_the_store),
        FT(test_daemonset_one_pod_per_matching_node),
        FT(test_daemonset_node_affinity),
        FT(test_daemonset_toleration_and_rolling_update),
        FT(test_daemonset_surge_update),
        FT(test_daemonset_controller_revisions),
        FT(test_node_lost_pods_replaced_after_toleration),
        FT(test_node_overrides_reported),
        FT(test_events_expire),
        FT(test_most_nodes_lost_no_eviction),
        FT(test_toleration_seconds_zero_never_moves),
        FT(test_cordon_and_drain),
        FT(test_deleted_node_pods_replaced),
        cmocka_unit_test(test_time_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
