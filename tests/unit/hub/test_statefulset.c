/* The StatefulSet controller over a real store in a temporary directory: stable names and
 * labels, OrderedReady creation and scale-down (each step waits for the pods before it),
 * Parallel, RollingUpdate from the highest ordinal down to the partition with current and
 * update revisions, OnDelete, failed pods replaced under their name, and a deleted set's pods
 * and revisions collected. Time is passed in; nothing sleeps. Also the model's StatefulSet
 * rules. */
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

#define T0 1800000000000LL

struct fx {
    char dir[64];
    drv_hstore_t *s;
    int64_t now;
};

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/drover-sts-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char path[128];
    snprintf(path, sizeof(path), "%s/hub.db", f->dir);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_open(path, &f->s, &err) != DRV_OK)
        return -1;
    f->now = T0;
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
    if (!j)
        fail_msg("bad test JSON: %s", text);
    return j;
}

/* Normalizes text; the problems as one string (NULL when valid). */
static char *problems(const char *text, cJSON **out)
{
    cJSON *o = json(text);
    drv_diags_t d = {0};
    char *m = NULL;
    if (drv_model_normalize(o, &d) != DRV_OK)
        m = drv_diags_format(&d, "");
    drv_diags_free(&d);
    if (out)
        *out = o;
    else
        cJSON_Delete(o);
    return m;
}

static void create(drv_hstore_t *s, const char *text)
{
    cJSON *o = NULL;
    char *m = problems(text, &o);
    if (m)
        fail_msg("invalid test object: %s", m);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_create(s, drv_model_kind(o), o, &err) != DRV_OK)
        fail_msg("create: %s", drv_error_msg(&err));
    cJSON_Delete(o);
}

/* StatefulSet "web" of the given replicas and image; extra is more spec members ("k":v,). */
static void sts(drv_hstore_t *s, int replicas, const char *image, const char *extra)
{
    char buf[4096];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"apps/v1\",\"kind\":\"StatefulSet\",\"metadata\":{\"name\":\"web\"},"
             "\"spec\":{\"replicas\":%d,\"serviceName\":\"web\",%s"
             "\"selector\":{\"matchLabels\":{\"app\":\"web\"}},"
             "\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{"
             "\"containers\":[{\"name\":\"c\",\"image\":\"%s\"}]}}}}",
             replicas, extra, image);
    create(s, buf);
}

static cJSON *get(drv_hstore_t *s, drv_kind_t kind, const char *name)
{
    cJSON *o = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_get(s, kind, "default", name, &o, &err) != DRV_OK)
        return NULL;
    return o;
}

/* Replaces spec.<key> of web with value (JSON text), or its image when key is "image". */
static void set(drv_hstore_t *s, const char *key, const char *value)
{
    cJSON *d = get(s, DRV_KIND_STATEFULSET, "web");
    cJSON *spec = cJSON_GetObjectItem(d, "spec");
    if (!strcmp(key, "image")) {
        cJSON *c = cJSON_GetArrayItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(spec, "template"), "spec"),
                                "containers"),
            0);
        cJSON_ReplaceItemInObject(c, "image", cJSON_CreateString(value));
    } else {
        cJSON_DeleteItemFromObject(spec, key);
        cJSON_AddItemToObject(spec, key, json(value));
    }
    drv_diags_t dg = {0};
    assert_int_equal(drv_model_normalize(d, &dg), DRV_OK);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_update(s, DRV_KIND_STATEFULSET, d, &err) != DRV_OK)
        fail_msg("update: %s", drv_error_msg(&err));
    cJSON_Delete(d);
}

static void round_(struct fx *f)
{
    drv_error_t err = DRV_ERROR_INIT;
    f->now += 1000;
    if (drv_ctrl_statefulsets_reconcile(f->s, f->now, &err) != DRV_OK)
        fail_msg("reconcile: %s", drv_error_msg(&err));
}

/* "web-0,web-1" : the names of the pods that exist, in ordinal order. */
static void names(drv_hstore_t *s, char *out, size_t outsz)
{
    cJSON *items = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_list(s, DRV_KIND_POD, NULL, NULL, &items, NULL, &err), DRV_OK);
    out[0] = '\0';
    for (int ord = 0; ord < 20; ord++) {
        char n[32];
        snprintf(n, sizeof(n), "web-%d", ord);
        const cJSON *p;
        cJSON_ArrayForEach(p, items)
        {
            const char *pn =
                cJSON_GetObjectItem(cJSON_GetObjectItem(p, "metadata"), "name")->valuestring;
            if (!strcmp(pn, n)) {
                size_t l = strlen(out);
                snprintf(out + l, outsz - l, "%s%s", l ? "," : "", n);
            }
        }
    }
    cJSON_Delete(items);
}

static void expect_pods(drv_hstore_t *s, const char *want)
{
    char have[512];
    names(s, have, sizeof(have));
    assert_string_equal(have, want);
}

/* What the agent reports: name Running and Ready since now (or Failed). */
static void report(struct fx *f, const char *name, const char *phase)
{
    char ts[32], buf[512];
    drv_ctrl_time_format(f->now, ts, sizeof(ts));
    bool running = !strcmp(phase, "Running");
    snprintf(buf, sizeof(buf),
             "{\"phase\":\"%s\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"%s\","
             "\"lastTransitionTime\":\"%s\"}]}",
             phase, running ? "True" : "False", ts);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_update_status(f->s, DRV_KIND_POD, "default", name, json(buf), NULL, &err) !=
        DRV_OK)
        fail_msg("status of %s: %s", name, drv_error_msg(&err));
}

static const char *label(const cJSON *o, const char *key)
{
    const cJSON *v =
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), "labels"), key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static const char *image_of(drv_hstore_t *s, const char *pod, char *buf, size_t bufsz)
{
    cJSON *p = get(s, DRV_KIND_POD, pod);
    if (!p)
        return "";
    const cJSON *c =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "spec"), "containers"), 0);
    snprintf(buf, bufsz, "%s", cJSON_GetObjectItem(c, "image")->valuestring);
    cJSON_Delete(p);
    return buf;
}

static int64_t status_int(drv_hstore_t *s, const char *key)
{
    cJSON *o = get(s, DRV_KIND_STATEFULSET, "web");
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "status"), key);
    int64_t n = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
    cJSON_Delete(o);
    return n;
}

static void status_str(drv_hstore_t *s, const char *key, char *out, size_t outsz)
{
    cJSON *o = get(s, DRV_KIND_STATEFULSET, "web");
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "status"), key);
    snprintf(out, outsz, "%s", cJSON_IsString(v) ? v->valuestring : "");
    cJSON_Delete(o);
}

/* Runs rounds, marking every new pod Running and Ready, until nothing changes. */
static void settle(struct fx *f)
{
    for (int i = 0; i < 30; i++) {
        round_(f);
        cJSON *items = NULL;
        drv_error_t err = DRV_ERROR_INIT;
        assert_int_equal(drv_hstore_list(f->s, DRV_KIND_POD, NULL, NULL, &items, NULL, &err),
                         DRV_OK);
        const cJSON *p;
        cJSON_ArrayForEach(p, items)
        {
            if (!cJSON_GetObjectItem(p, "status") ||
                !cJSON_GetObjectItem(cJSON_GetObjectItem(p, "status"), "phase"))
                report(f,
                       cJSON_GetObjectItem(cJSON_GetObjectItem(p, "metadata"), "name")->valuestring,
                       "Running");
        }
        cJSON_Delete(items);
    }
}

static void test_ordered_creation_and_names(void **state)
{
    struct fx *f = *state;
    sts(f->s, 3, "kv:1", "");
    round_(f);
    expect_pods(f->s, "web-0");
    round_(f); /* web-0 is not Running and Ready yet: nothing more */
    expect_pods(f->s, "web-0");
    report(f, "web-0", "Running");
    round_(f);
    expect_pods(f->s, "web-0,web-1");
    report(f, "web-1", "Running");
    round_(f);
    expect_pods(f->s, "web-0,web-1,web-2");

    cJSON *p = get(f->s, DRV_KIND_POD, "web-1");
    assert_non_null(p);
    const cJSON *spec = cJSON_GetObjectItem(p, "spec");
    assert_string_equal(cJSON_GetObjectItem(spec, "hostname")->valuestring, "web-1");
    assert_string_equal(cJSON_GetObjectItem(spec, "subdomain")->valuestring, "web");
    assert_string_equal(label(p, "statefulset.kubernetes.io/pod-name"), "web-1");
    assert_string_equal(label(p, "apps.kubernetes.io/pod-index"), "1");
    assert_string_equal(label(p, "app"), "web");
    char rev[128];
    status_str(f->s, "updateRevision", rev, sizeof(rev));
    assert_string_equal(label(p, "controller-revision-hash"), rev);
    assert_int_equal(strncmp(rev, "web-", 4), 0);
    const cJSON *ref = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(p, "metadata"), "ownerReferences"), 0);
    assert_string_equal(cJSON_GetObjectItem(ref, "kind")->valuestring, "StatefulSet");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(ref, "controller")));
    cJSON_Delete(p);

    report(f, "web-2", "Running");
    round_(f);
    assert_int_equal(status_int(f->s, "replicas"), 3);
    assert_int_equal(status_int(f->s, "readyReplicas"), 3);
    assert_int_equal(status_int(f->s, "currentReplicas"), 3);
    assert_int_equal(status_int(f->s, "updatedReplicas"), 3);
    char cur[128];
    status_str(f->s, "currentRevision", cur, sizeof(cur));
    assert_string_equal(cur, rev);
    cJSON *r = get(f->s, DRV_KIND_CONTROLLERREVISION, rev);
    assert_non_null(r); /* the revision record kubectl rollout history reads */
    cJSON_Delete(r);
}

static void test_ordered_scale_down_and_failed_pod(void **state)
{
    struct fx *f = *state;
    sts(f->s, 3, "kv:1", "");
    settle(f);
    expect_pods(f->s, "web-0,web-1,web-2");
    /* A failed pod comes back under its own name. */
    report(f, "web-1", "Failed");
    round_(f);
    expect_pods(f->s, "web-0,web-1,web-2");
    cJSON *p = get(f->s, DRV_KIND_POD, "web-1");
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "status"), "phase")); /* a new one */
    cJSON_Delete(p);
    /* Scale-down waits while web-1 is not Ready, then removes the highest ordinal first. */
    set(f->s, "replicas", "1");
    round_(f);
    expect_pods(f->s, "web-0,web-1,web-2");
    report(f, "web-1", "Running");
    round_(f);
    expect_pods(f->s, "web-0,web-1");
    round_(f);
    expect_pods(f->s, "web-0");
    assert_int_equal(status_int(f->s, "replicas"), 1);
}

static int count_events(drv_hstore_t *s, const char *reason)
{
    cJSON *items = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_list(s, DRV_KIND_EVENT, NULL, NULL, &items, NULL, &err), DRV_OK);
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, items)
    {
        const cJSON *r = cJSON_GetObjectItem(e, "reason");
        n += cJSON_IsString(r) && !strcmp(r->valuestring, reason);
    }
    cJSON_Delete(items);
    return n;
}

static void test_parallel(void **state)
{
    struct fx *f = *state;
    sts(f->s, 3, "kv:1", "\"podManagementPolicy\":\"Parallel\",");
    round_(f);
    expect_pods(f->s, "web-0,web-1,web-2");
    assert_int_equal(count_events(f->s, "SuccessfulCreate"), 3);
    assert_int_equal(count_events(f->s, "SuccessfulDelete"), 0);
    round_(f);
    assert_int_equal(count_events(f->s, "SuccessfulDelete"), 0);
    set(f->s, "replicas", "0");
    round_(f);
    expect_pods(f->s, "");
}

static void test_ordinals_start(void **state)
{
    struct fx *f = *state;
    sts(f->s, 2, "kv:1", "\"podManagementPolicy\":\"Parallel\",\"ordinals\":{\"start\":5},");
    round_(f);
    cJSON *a = get(f->s, DRV_KIND_POD, "web-5"), *b = get(f->s, DRV_KIND_POD, "web-6");
    assert_non_null(a);
    assert_non_null(b);
    expect_pods(f->s, "web-5,web-6");
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void test_rolling_update_with_partition(void **state)
{
    struct fx *f = *state;
    sts(f->s, 3, "kv:1", "");
    settle(f);
    char old[128], upd[128], buf[64];
    status_str(f->s, "currentRevision", old, sizeof(old));
    set(f->s, "updateStrategy", "{\"type\":\"RollingUpdate\",\"rollingUpdate\":{\"partition\":1}}");
    set(f->s, "image", "kv:2");
    round_(f); /* the highest ordinal goes first */
    expect_pods(f->s, "web-0,web-1");
    round_(f); /* and comes back from the new template */
    expect_pods(f->s, "web-0,web-1,web-2");
    assert_string_equal(image_of(f->s, "web-2", buf, sizeof(buf)), "kv:2");
    round_(f); /* web-1 waits until web-2 is Running and Ready */
    expect_pods(f->s, "web-0,web-1,web-2");
    assert_string_equal(image_of(f->s, "web-1", buf, sizeof(buf)), "kv:1");
    settle(f);
    assert_string_equal(image_of(f->s, "web-2", buf, sizeof(buf)), "kv:2");
    assert_string_equal(image_of(f->s, "web-1", buf, sizeof(buf)), "kv:2");
    /* Below the partition the pod keeps the current revision, even when it is made again. */
    assert_string_equal(image_of(f->s, "web-0", buf, sizeof(buf)), "kv:1");
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_POD, "default", "web-0", NULL, &err), DRV_OK);
    settle(f);
    assert_string_equal(image_of(f->s, "web-0", buf, sizeof(buf)), "kv:1");
    status_str(f->s, "updateRevision", upd, sizeof(upd));
    status_str(f->s, "currentRevision", buf, sizeof(buf));
    assert_string_equal(buf, old);
    assert_string_not_equal(upd, old);
    assert_int_equal(status_int(f->s, "updatedReplicas"), 2);
    assert_int_equal(status_int(f->s, "currentReplicas"), 1);
    /* Partition 0: the last pod updates and the update becomes current. */
    set(f->s, "updateStrategy", "{\"type\":\"RollingUpdate\",\"rollingUpdate\":{\"partition\":0}}");
    settle(f);
    assert_string_equal(image_of(f->s, "web-0", buf, sizeof(buf)), "kv:2");
    status_str(f->s, "currentRevision", buf, sizeof(buf));
    assert_string_equal(buf, upd);
    assert_int_equal(status_int(f->s, "currentReplicas"), 3);
    assert_int_equal(status_int(f->s, "updatedReplicas"), 3);
}

static void test_on_delete(void **state)
{
    struct fx *f = *state;
    sts(f->s, 2, "kv:1", "\"updateStrategy\":{\"type\":\"OnDelete\"},");
    settle(f);
    set(f->s, "image", "kv:2");
    settle(f);
    char buf[64];
    assert_string_equal(image_of(f->s, "web-0", buf, sizeof(buf)), "kv:1");
    assert_string_equal(image_of(f->s, "web-1", buf, sizeof(buf)), "kv:1");
    assert_int_equal(status_int(f->s, "updatedReplicas"), 0);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_POD, "default", "web-1", NULL, &err), DRV_OK);
    settle(f);
    assert_string_equal(image_of(f->s, "web-1", buf, sizeof(buf)), "kv:2");
    assert_string_equal(image_of(f->s, "web-0", buf, sizeof(buf)), "kv:1");
    assert_int_equal(status_int(f->s, "updatedReplicas"), 1);
}

static void test_deleted_set_collected(void **state)
{
    struct fx *f = *state;
    sts(f->s, 2, "kv:1", "");
    settle(f);
    /* A pod of that name that is not the set's is left alone. */
    create(f->s, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"other\"},"
                 "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]}}");
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_STATEFULSET, "default", "web", NULL, &err),
                     DRV_OK);
    round_(f);
    expect_pods(f->s, "");
    cJSON *o = get(f->s, DRV_KIND_POD, "other");
    assert_non_null(o);
    cJSON_Delete(o);
    cJSON *revs = NULL;
    assert_int_equal(
        drv_hstore_list(f->s, DRV_KIND_CONTROLLERREVISION, NULL, NULL, &revs, NULL, &err), DRV_OK);
    assert_int_equal(cJSON_GetArraySize(revs), 0);
    cJSON_Delete(revs);
}

/* A pod on a node that stopped answering is not made again elsewhere (it may still run
 * there): it stays, marked not Ready, until the node is back or deleted. */
static void test_unreachable_node_keeps_pod(void **state)
{
    struct fx *f = *state;
    char ts[32], buf[1024];
    drv_ctrl_time_format(f->now, ts, sizeof(ts));
    create(f->s, "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"n1\"},"
                 "\"spec\":{}}");
    snprintf(buf, sizeof(buf),
             "{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\","
             "\"lastHeartbeatTime\":\"%s\",\"lastTransitionTime\":\"%s\"}]}",
             ts, ts);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(
        drv_hstore_update_status(f->s, DRV_KIND_NODE, NULL, "n1", json(buf), NULL, &err), DRV_OK);
    sts(f->s, 1, "kv:1", "");
    round_(f);
    cJSON *p = get(f->s, DRV_KIND_POD, "web-0");
    cJSON_AddStringToObject(cJSON_GetObjectItem(p, "spec"), "nodeName", "n1");
    assert_int_equal(drv_hstore_update(f->s, DRV_KIND_POD, p, &err), DRV_OK);
    cJSON_Delete(p);
    report(f, "web-0", "Running");
    char uid[64];
    p = get(f->s, DRV_KIND_POD, "web-0");
    snprintf(uid, sizeof(uid), "%s",
             cJSON_GetObjectItem(cJSON_GetObjectItem(p, "metadata"), "uid")->valuestring);
    cJSON_Delete(p);
    drv_ctrl_nodes_opts_t o = {.grace_ms = 10000, .default_toleration_ms = 10000};
    for (int i = 0; i < 5; i++) { /* well past the grace period and the toleration */
        f->now += 10000;
        assert_int_equal(drv_ctrl_nodes_reconcile(f->s, &o, f->now, NULL, &err), DRV_OK);
        round_(f);
    }
    p = get(f->s, DRV_KIND_POD, "web-0");
    assert_non_null(p);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "metadata"), "uid")->valuestring,
                        uid);
    cJSON_Delete(p);
    assert_int_equal(status_int(f->s, "readyReplicas"), 0);
    /* The node deleted: the pod goes and is made again. */
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_NODE, NULL, "n1", NULL, &err), DRV_OK);
    assert_int_equal(drv_ctrl_nodes_reconcile(f->s, &o, f->now, NULL, &err), DRV_OK);
    round_(f);
    p = get(f->s, DRV_KIND_POD, "web-0");
    assert_non_null(p);
    assert_string_not_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(p, "metadata"), "uid")->valuestring, uid);
    cJSON_Delete(p);
}

#define CLAIMS                                                                                     \
    "\"volumeClaimTemplates\":[{\"metadata\":{\"name\":\"data\",\"labels\":{\"tier\":\"db\"}},"    \
    "\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],\"resources\":{\"requests\":{\"storage\":"      \
    "\"64Mi\"}}}}],"

static cJSON *claim(drv_hstore_t *s, const char *name)
{
    return get(s, drv_kind_parse("PersistentVolumeClaim"), name);
}

/* Each pod gets its own claim <template>-<set>-<ordinal>, kept (Retain, the default) when the
 * set scales down or is deleted, and found again by the pod made again. */
static void test_claims_retained(void **state)
{
    struct fx *f = *state;
    if (drv_kind_parse("PersistentVolumeClaim") == DRV_KIND_UNKNOWN)
        skip();
    sts(f->s, 2, "kv:1", CLAIMS);
    settle(f);
    expect_pods(f->s, "web-0,web-1");
    cJSON *c = claim(f->s, "data-web-1");
    assert_non_null(c);
    assert_string_equal(label(c, "tier"), "db");
    assert_string_equal(label(c, "app"), "web"); /* the selector's labels */
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "metadata"), "ownerReferences"));
    cJSON_Delete(c);
    cJSON *p = get(f->s, DRV_KIND_POD, "web-1");
    const cJSON *v =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "spec"), "volumes"), 0);
    assert_string_equal(cJSON_GetObjectItem(v, "name")->valuestring, "data");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(v, "persistentVolumeClaim"), "claimName")
            ->valuestring,
        "data-web-1");
    cJSON_Delete(p);
    set(f->s, "replicas", "1");
    settle(f);
    expect_pods(f->s, "web-0");
    c = claim(f->s, "data-web-1");
    assert_non_null(c); /* whenScaled: Retain */
    cJSON_Delete(c);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_STATEFULSET, "default", "web", NULL, &err),
                     DRV_OK);
    round_(f);
    expect_pods(f->s, "");
    c = claim(f->s, "data-web-0");
    assert_non_null(c); /* whenDeleted: Retain */
    cJSON_Delete(c);
}

/* whenScaled: Delete removes the claims of the ordinals a scale-down removed; whenDeleted:
 * Delete makes the set their owner, and they go with it. */
static void test_claims_deleted(void **state)
{
    struct fx *f = *state;
    if (drv_kind_parse("PersistentVolumeClaim") == DRV_KIND_UNKNOWN)
        skip();
    sts(f->s, 3, "kv:1",
        CLAIMS "\"persistentVolumeClaimRetentionPolicy\":{\"whenScaled\":\"Delete\","
               "\"whenDeleted\":\"Delete\"},");
    settle(f);
    expect_pods(f->s, "web-0,web-1,web-2");
    cJSON *c = claim(f->s, "data-web-2");
    assert_non_null(c);
    const cJSON *ref = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(c, "metadata"), "ownerReferences"), 0);
    assert_string_equal(cJSON_GetObjectItem(ref, "kind")->valuestring, "StatefulSet");
    cJSON_Delete(c);
    /* A pod deleted (not scaled away) keeps its claim. */
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_POD, "default", "web-1", NULL, &err), DRV_OK);
    settle(f);
    c = claim(f->s, "data-web-1");
    assert_non_null(c);
    cJSON_Delete(c);
    set(f->s, "replicas", "2");
    settle(f);
    expect_pods(f->s, "web-0,web-1");
    assert_null(claim(f->s, "data-web-2"));
    c = claim(f->s, "data-web-1");
    assert_non_null(c);
    cJSON_Delete(c);
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_STATEFULSET, "default", "web", NULL, &err),
                     DRV_OK);
    round_(f);
    assert_null(claim(f->s, "data-web-0"));
    assert_null(claim(f->s, "data-web-1"));
}

static void test_model(void **state)
{
    (void)state;
    static const char head[] =
        "{\"apiVersion\":\"apps/v1\",\"kind\":\"StatefulSet\",\"metadata\":{\"name\":\"db\"},"
        "\"spec\":{\"selector\":{\"matchLabels\":{\"a\":\"b\"}},\"template\":{\"metadata\":{"
        "\"labels\":{\"a\":\"b\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"%s}]"
        "%s}}%s}}";
    char buf[2048];
    cJSON *o = NULL;
    /* Kubernetes' defaults. */
    snprintf(buf, sizeof(buf), head, "", "", "");
    char *m = problems(buf, &o);
    assert_null(m);
    const cJSON *spec = cJSON_GetObjectItem(o, "spec");
    assert_int_equal(cJSON_GetObjectItem(spec, "replicas")->valueint, 1);
    assert_string_equal(cJSON_GetObjectItem(spec, "podManagementPolicy")->valuestring,
                        "OrderedReady");
    const cJSON *us = cJSON_GetObjectItem(spec, "updateStrategy");
    assert_string_equal(cJSON_GetObjectItem(us, "type")->valuestring, "RollingUpdate");
    assert_int_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(us, "rollingUpdate"), "partition")->valueint, 0);
    assert_int_equal(cJSON_GetObjectItem(spec, "revisionHistoryLimit")->valueint, 10);
    const cJSON *rp = cJSON_GetObjectItem(spec, "persistentVolumeClaimRetentionPolicy");
    assert_string_equal(cJSON_GetObjectItem(rp, "whenDeleted")->valuestring, "Retain");
    assert_string_equal(cJSON_GetObjectItem(rp, "whenScaled")->valuestring, "Retain");
    cJSON_Delete(o);

    /* Each bad field named once, with the reason. */
    snprintf(buf, sizeof(buf), head, "", "",
             ",\"podManagementPolicy\":\"Random\",\"updateStrategy\":{\"type\":\"RollingUpdate\","
             "\"rollingUpdate\":{\"maxUnavailable\":2,\"partition\":-1}}");
    m = problems(buf, NULL);
    assert_non_null(m);
    assert_non_null(strstr(m, "spec.podManagementPolicy"));
    assert_non_null(strstr(m, "spec.updateStrategy.rollingUpdate.maxUnavailable: not supported"));
    assert_non_null(strstr(m, "spec.updateStrategy.rollingUpdate.partition"));
    assert_null(strstr(strstr(m, "maxUnavailable") + 1, "maxUnavailable"));
    free(m);
    snprintf(buf, sizeof(buf), head, "", "",
             ",\"updateStrategy\":{\"type\":\"OnDelete\",\"rollingUpdate\":{}}");
    m = problems(buf, NULL);
    assert_non_null(m);
    assert_non_null(strstr(m, "spec.updateStrategy.rollingUpdate: only allowed"));
    free(m);
    /* restartPolicy of a workload's template. */
    snprintf(buf, sizeof(buf), head, "", ",\"restartPolicy\":\"Never\"", "");
    m = problems(buf, NULL);
    assert_non_null(m);
    assert_non_null(strstr(m, "restartPolicy"));
    free(m);
    /* The template may mount a claim template by name; the claim is checked as a claim. */
    snprintf(buf, sizeof(buf), head, ",\"volumeMounts\":[{\"name\":\"data\",\"mountPath\":\"/d\"}]",
             "",
             ",\"volumeClaimTemplates\":[{\"metadata\":{\"name\":\"data\"},\"spec\":{"
             "\"accessModes\":[\"ReadWriteOnce\"],\"resources\":{\"requests\":{\"storage\":"
             "\"1Gi\"}}}}]");
    m = problems(buf, &o);
    if (drv_kind_parse("PersistentVolumeClaim") == DRV_KIND_UNKNOWN) {
        /* Without the claim kind the template is refused for that reason, and only that. */
        assert_non_null(m);
        assert_non_null(strstr(m, "volumeClaimTemplates[0]"));
        assert_null(strstr(m, "not found in spec.volumes"));
    } else {
        assert_null(m);
        /* The placeholder volume used to check the mounts is not kept. */
        assert_null(cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "spec"), "template"),
                                "spec"),
            "volumes"));
    }
    free(m);
    cJSON_Delete(o);
    /* A mount of a volume that is neither a volume nor a claim template is still refused. */
    snprintf(buf, sizeof(buf), head, ",\"volumeMounts\":[{\"name\":\"nope\",\"mountPath\":\"/d\"}]",
             "", "");
    m = problems(buf, NULL);
    assert_non_null(m);
    assert_non_null(strstr(m, "volume \"nope\" not found"));
    free(m);
    /* A pod's subdomain is a DNS label. */
    m = problems("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},\"spec\":{"
                 "\"hostname\":\"p\",\"subdomain\":\"Not_A_Label\",\"containers\":[{\"name\":"
                 "\"c\",\"image\":\"i\"}]}}",
                 NULL);
    assert_non_null(m);
    assert_non_null(strstr(m, "spec.subdomain"));
    free(m);
    assert_int_equal(drv_kind_parse("sts"), DRV_KIND_STATEFULSET);

    /* Updates: the template and replicas may change, the service name may not. */
    cJSON *a = NULL, *b = NULL, *c = NULL;
    snprintf(buf, sizeof(buf), head, "", "", ",\"serviceName\":\"db\",\"replicas\":1");
    assert_null(problems(buf, &a));
    snprintf(buf, sizeof(buf), head, ",\"args\":[\"x\"]", "",
             ",\"serviceName\":\"db\",\"replicas\":3,\"updateStrategy\":{\"type\":\"OnDelete\"}");
    assert_null(problems(buf, &b));
    snprintf(buf, sizeof(buf), head, "", "", ",\"serviceName\":\"other\",\"replicas\":1");
    assert_null(problems(buf, &c));
    char why[400] = "";
    assert_true(drv_model_statefulset_update_ok(a, b, why, sizeof(why)));
    assert_false(drv_model_statefulset_update_ok(a, c, why, sizeof(why)));
    assert_non_null(strstr(why, "are forbidden"));
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
}

#define FT(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FT(test_ordered_creation_and_names),
        FT(test_ordered_scale_down_and_failed_pod),
        FT(test_parallel),
        FT(test_ordinals_start),
        FT(test_rolling_update_with_partition),
        FT(test_on_delete),
        FT(test_deleted_set_collected),
        FT(test_unreachable_node_keeps_pod),
        FT(test_claims_retained),
        FT(test_claims_deleted),
        cmocka_unit_test(test_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
