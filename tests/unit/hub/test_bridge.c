/* The hub bridge's desired-state cache (hub/bridge/desired.c) over a real store: which pods,
 * ConfigMaps and Secrets each node's document holds (what an agent receives), which nodes a
 * change marks dirty, the content digest, reloading after falling behind the change log, the
 * 4 MiB cap, and the string table (the seeded drv_map). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bridge/bridge_int.h"
#include "drover/json.h"
#include "drover/log.h"
#include "drover/model.h"
#include "drover/pki.h"
#include "drover/protocol.h"
#include "store/store.h"

struct fx {
    char dir[64];
    char path[128];
    drv_hstore_t *s;
    bdesired_t d;
};

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/drv-bridge-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/hub.db", f->dir);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_open(f->path, &f->s, &err) != DRV_OK) {
        fprintf(stderr, "open: %s\n", drv_error_msg(&err));
        nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        free(f);
        return -1;
    }
    /* Unenrolled nodes on a plain broker: Secrets in clear (test_sealed_and_signed below
     * covers keys and signatures). */
    bdesired_init(&f->d);
    f->d.clear_secrets = true;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    bdesired_free(&f->d);
    drv_hstore_close(f->s);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* ---- objects ---- */

static cJSON *normalized(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!j)
        fail_msg("bad test JSON: %.200s", text);
    drv_diags_t dg = {0};
    if (drv_model_normalize(j, &dg) != DRV_OK) {
        char *m = drv_diags_format(&dg, "  ");
        fail_msg("invalid test object %.300s:\n%s", text, m ? m : "");
    }
    drv_diags_free(&dg);
    return j;
}

static void create(struct fx *f, drv_kind_t kind, cJSON *obj)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_create(f->s, kind, obj, &err) != DRV_OK)
        fail_msg("create: %s", drv_error_msg(&err));
    cJSON_Delete(obj);
}

/* A pod in ns bound to node (NULL: unbound). spec_extra: more spec members (",\"volumes\":[..]"
 * or ""); ctr_extra: more members of its one container. */
static cJSON *pod_obj(const char *ns, const char *name, const char *node, const char *spec_extra,
                      const char *ctr_extra)
{
    size_t sz = 4096 + strlen(spec_extra) + strlen(ctr_extra);
    char *buf = malloc(sz);
    assert_non_null(buf);
    char nodef[128] = "";
    if (node)
        snprintf(nodef, sizeof(nodef), "\"nodeName\":\"%s\",", node);
    snprintf(buf, sz,
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"%s\",\"labels\":{\"app\":\"%s\"}},\"spec\":{%s\"containers\":[{"
             "\"name\":\"c\",\"image\":\"busybox:1.36\"%s}]%s}}",
             name, ns, name, nodef, ctr_extra, spec_extra);
    cJSON *j = normalized(buf);
    free(buf);
    return j;
}

static void mkpod(struct fx *f, const char *ns, const char *name, const char *node)
{
    create(f, DRV_KIND_POD, pod_obj(ns, name, node, "", ""));
}

static cJSON *cm_obj(const char *ns, const char *name, const char *value)
{
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"%s\"},\"data\":{\"k\":\"%s\"}}",
             name, ns, value);
    return normalized(buf);
}

static void mkcm(struct fx *f, const char *ns, const char *name, const char *value)
{
    create(f, DRV_KIND_CONFIGMAP, cm_obj(ns, name, value));
}

static void mksecret(struct fx *f, const char *ns, const char *name)
{
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"%s\"},\"data\":{\"password\":\"c2VjcmV0\"}}",
             name, ns);
    create(f, DRV_KIND_SECRET, normalized(buf));
}

static void set_cm(struct fx *f, const char *ns, const char *name, const char *value)
{
    cJSON *o = cm_obj(ns, name, value);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_update(f->s, DRV_KIND_CONFIGMAP, o, &err) != DRV_OK)
        fail_msg("update configmap: %s", drv_error_msg(&err));
    cJSON_Delete(o);
}

static void del(struct fx *f, drv_kind_t kind, const char *ns, const char *name)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_delete(f->s, kind, ns, name, NULL, &err) != DRV_OK)
        fail_msg("delete: %s", drv_error_msg(&err));
}

static cJSON *get(struct fx *f, drv_kind_t kind, const char *ns, const char *name)
{
    cJSON *o = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_get(f->s, kind, ns, name, &o, &err) != DRV_OK)
        fail_msg("get: %s", drv_error_msg(&err));
    return o;
}

/* Replaces the pod's spec.containers[0].image (a spec change). */
static void set_image(struct fx *f, const char *ns, const char *name, const char *image)
{
    cJSON *o = get(f, DRV_KIND_POD, ns, name);
    cJSON *c0 = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "spec"), "containers"),
        0);
    assert_non_null(c0);
    cJSON_ReplaceItemInObjectCaseSensitive(c0, "image", cJSON_CreateString(image));
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_update(f->s, DRV_KIND_POD, o, &err) != DRV_OK)
        fail_msg("update pod: %s", drv_error_msg(&err));
    cJSON_Delete(o);
}

static void set_status(struct fx *f, const char *ns, const char *name, const char *phase)
{
    char buf[256];
    snprintf(buf, sizeof(buf),
             "{\"phase\":\"%s\",\"podIP\":\"10.0.0.7\",\"conditions\":[{\"type\":\"Ready\","
             "\"status\":\"True\"}]}",
             phase);
    uint64_t rv = 0, before = drv_hstore_rv(f->s);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_update_status(f->s, DRV_KIND_POD, ns, name, cJSON_Parse(buf), &rv, &err) !=
        DRV_OK)
        fail_msg("update status: %s", drv_error_msg(&err));
    assert_true(rv > before); /* a real change, in the log */
}

/* ---- the cache ---- */

static void load(struct fx *f)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (bdesired_load(&f->d, f->s, &err) != DRV_OK)
        fail_msg("load: %s", drv_error_msg(&err));
    assert_int_equal(f->d.since_rv, drv_hstore_rv(f->s));
}

static void follow(struct fx *f)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (bdesired_follow(&f->d, f->s, &err) != DRV_OK)
        fail_msg("follow: %s", drv_error_msg(&err));
    assert_int_equal(f->d.since_rv, drv_hstore_rv(f->s));
}

/* As drv_bridge_tick does once it has (re)built the dirty nodes. */
static void clear_dirty(bdesired_t *d)
{
    for (size_t i = 0; i < d->nodes.cap; i++) {
        if (!d->nodes.keys[i] || !*d->nodes.keys[i])
            continue;
        bnode_t *n = d->nodes.vals[i];
        n->dirty = false;
    }
    d->ndirty = 0;
}

/* The dirty nodes' names, sorted, comma-separated ("" for none); checks ndirty agrees. */
static const char *dirty_list(bdesired_t *d)
{
    static char out[1024];
    const char *names[64];
    size_t nn = 0;
    for (size_t i = 0; i < d->nodes.cap; i++) {
        if (!d->nodes.keys[i] || !*d->nodes.keys[i])
            continue;
        bnode_t *n = d->nodes.vals[i];
        if (n->dirty && nn < 64)
            names[nn++] = n->name;
    }
    assert_int_equal(nn, d->ndirty);
    for (size_t i = 1; i < nn; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < nn; i++)
        len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", i ? "," : "", names[i]);
    return out;
}

typedef struct doc {
    drv_proto_desired_t p;
    drv_digest_t sum;
    char *payload;
    size_t len;
} doc_t;

/* Builds node's document as the bridge would publish it and parses it as an agent does. */
static void build(struct fx *f, const char *node, uint64_t gen, doc_t *out)
{
    memset(out, 0, sizeof(*out));
    bnode_t *n = bdesired_node(&f->d, node);
    assert_non_null(n);
    drv_error_t err = DRV_ERROR_INIT;
    out->payload = bdesired_build(&f->d, n, gen, &out->sum, &out->len, NULL, &err);
    if (!out->payload)
        fail_msg("build %s: %s", node, drv_error_msg(&err));
    assert_int_equal(out->len, strlen(out->payload));
    if (drv_proto_desired_parse(out->payload, out->len, node, &out->p, &err) != DRV_OK)
        fail_msg("parse %s: %s", node, drv_error_msg(&err));
    assert_string_equal(out->p.node, node);
    assert_int_equal(out->p.generation, gen);
}

static void doc_free(doc_t *d)
{
    drv_proto_desired_free(&d->p);
    free(d->payload);
}

static const cJSON *meta_of(const cJSON *o)
{
    return cJSON_GetObjectItemCaseSensitive(o, "metadata");
}

static const char *mstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta_of(o), k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* "ns/name,ns/name" of the objects of arr, in order. */
static const char *keys_of(const cJSON *arr)
{
    static char out[4096];
    size_t len = 0;
    out[0] = '\0';
    const cJSON *o;
    cJSON_ArrayForEach(o, arr)
    {
        const char *ns = mstr(o, "namespace"), *name = mstr(o, "name");
        len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s/%s", len ? "," : "",
                                ns ? ns : "?", name ? name : "?");
        if (len >= sizeof(out))
            fail_msg("keys_of: too long");
    }
    return out;
}

/* The pod as an agent gets it: the store's uid, spec, labels; no status or bookkeeping. */
static void assert_agent_pod(struct fx *f, const cJSON *p, const char *node)
{
    const char *ns = mstr(p, "namespace"), *name = mstr(p, "name");
    assert_non_null(ns);
    assert_non_null(name);
    cJSON *stored = get(f, DRV_KIND_POD, ns, name);
    assert_non_null(mstr(p, "uid"));
    assert_string_equal(mstr(p, "uid"), mstr(stored, "uid"));
    assert_null(cJSON_GetObjectItemCaseSensitive(p, "status"));
    assert_null(mstr(p, "resourceVersion"));
    assert_null(mstr(p, "creationTimestamp"));
    assert_null(cJSON_GetObjectItemCaseSensitive(meta_of(p), "generation"));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "kind")), "Pod");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(p, "spec");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "nodeName")),
                        node);
    assert_true(cJSON_Compare(spec, cJSON_GetObjectItemCaseSensitive(stored, "spec"), true));
    assert_true(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(meta_of(p), "labels"),
                              cJSON_GetObjectItemCaseSensitive(meta_of(stored), "labels"), true));
    /* what the agent does next: the pod is a valid object */
    cJSON *copy = cJSON_Duplicate(p, true);
    drv_diags_t dg = {0};
    assert_int_equal(drv_model_normalize(copy, &dg), DRV_OK);
    drv_diags_free(&dg);
    cJSON_Delete(copy);
    cJSON_Delete(stored);
}

/* ---- documents ---- */

static void test_load_documents_per_node(void **state)
{
    struct fx *f = *state;
    mkpod(f, "default", "web-b", "pi-1");
    mkpod(f, "default", "web-a", "pi-1");
    mkpod(f, "zeta", "db", "pi-1");
    mkpod(f, "apps", "cache", "pi-1");
    mkpod(f, "default", "api", "pi-2");
    mkpod(f, "default", "pending", NULL);
    set_status(f, "default", "web-a", "Running");
    load(f);
    assert_string_equal(dirty_list(&f->d), "pi-1,pi-2");
    assert_null(drv_map_get(&f->d.pods, "default/pending"));

    doc_t d1, d2;
    build(f, "pi-1", 7, &d1);
    assert_string_equal(keys_of(d1.p.pods), "apps/cache,default/web-a,default/web-b,zeta/db");
    const cJSON *p;
    cJSON_ArrayForEach(p, d1.p.pods) assert_agent_pod(f, p, "pi-1");
    assert_int_equal(cJSON_GetArraySize(d1.p.config_maps), 0);
    assert_int_equal(cJSON_GetArraySize(d1.p.secrets), 0);
    assert_null(strstr(d1.payload, "pending"));
    assert_null(strstr(d1.payload, "Running")); /* web-a's status stays home */

    build(f, "pi-2", 7, &d2);
    assert_string_equal(keys_of(d2.p.pods), "default/api");
    assert_agent_pod(f, cJSON_GetArrayItem(d2.p.pods, 0), "pi-2");
    assert_null(strstr(d2.payload, "pending"));
    assert_false(drv_digest_equal(&d1.sum, &d2.sum));
    doc_free(&d1);
    doc_free(&d2);

    /* a node with nothing bound gets an empty document */
    doc_t d3;
    build(f, "pi-3", 1, &d3);
    assert_int_equal(cJSON_GetArraySize(d3.p.pods), 0);
    assert_int_equal(cJSON_GetArraySize(d3.p.config_maps), 0);
    doc_free(&d3);

    /* a bad node name has no entry */
    assert_null(bdesired_node(&f->d, "Bad_Node"));
    assert_null(bdesired_node(&f->d, ""));
}

static cJSON *pv_obj(const char *name, const char *node)
{
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolume\",\"metadata\":{\"name\":\"%s\"},"
             "\"spec\":{\"capacity\":{\"storage\":\"1Gi\"},\"accessModes\":[\"ReadWriteOnce\"],"
             "\"local\":{\"path\":\"/s/%s\"},\"nodeAffinity\":{\"required\":{\"nodeSelectorTerms\":"
             "[{\"matchExpressions\":[{\"key\":\"kubernetes.io/hostname\",\"operator\":\"In\","
             "\"values\":[\"%s\"]}]}]}}}}",
             name, name, node);
    return normalized(buf);
}

/* persistentVolumes: each node's document lists the PVs on it with their phase; a PV's change
 * marks its node only; a node without PVs gets no persistentVolumes member. */
static void test_persistent_volumes(void **state)
{
    struct fx *f = *state;
    mkpod(f, "default", "a", "pi-1");
    mkpod(f, "default", "b", "pi-2");
    create(f, DRV_KIND_PV, pv_obj("pv-b", "pi-1"));
    create(f, DRV_KIND_PV, pv_obj("pv-a", "pi-1"));
    load(f);
    doc_t d1, d2;
    build(f, "pi-1", 3, &d1);
    assert_int_equal(cJSON_GetArraySize(d1.p.persistent_volumes), 2);
    assert_string_equal(mstr(cJSON_GetArrayItem(d1.p.persistent_volumes, 0), "name"), "pv-a");
    build(f, "pi-2", 3, &d2);
    assert_int_equal(cJSON_GetArraySize(d2.p.persistent_volumes), 0);
    assert_null(strstr(d2.payload, "persistentVolumes"));
    doc_free(&d2);
    clear_dirty(&f->d);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_update_status(f->s, DRV_KIND_PV, NULL, "pv-a",
                                              cJSON_Parse("{\"phase\":\"Released\"}"), NULL, &err),
                     DRV_OK);
    follow(f);
    assert_string_equal(dirty_list(&f->d), "pi-1");
    doc_t d3;
    build(f, "pi-1", 4, &d3);
    assert_false(drv_digest_equal(&d1.sum, &d3.sum));
    assert_string_equal(
        drv_json_str_at(cJSON_GetArrayItem(d3.p.persistent_volumes, 0), "status.phase"),
        "Released");
    doc_free(&d1);
    doc_free(&d3);
    clear_dirty(&f->d);
    del(f, DRV_KIND_PV, NULL, "pv-a");
    follow(f);
    assert_string_equal(dirty_list(&f->d), "pi-1");
}

static void test_only_referenced_data(void **state)
{
    struct fx *f = *state;
    /* pi-1: every way a pod can name a ConfigMap or Secret */
    create(f, DRV_KIND_POD,
           pod_obj("apps", "full", "pi-1",
                   ",\"volumes\":[{\"name\":\"v1\",\"configMap\":{\"name\":\"vol-cm\"}},"
                   "{\"name\":\"v2\",\"secret\":{\"secretName\":\"vol-sec\"}}]",
                   ",\"envFrom\":[{\"configMapRef\":{\"name\":\"envfrom-cm\"}},"
                   "{\"secretRef\":{\"name\":\"envfrom-sec\"}}],"
                   "\"env\":[{\"name\":\"A\",\"valueFrom\":{\"configMapKeyRef\":{\"name\":"
                   "\"keyref-cm\",\"key\":\"k\"}}},{\"name\":\"B\",\"valueFrom\":{"
                   "\"secretKeyRef\":{\"name\":\"keyref-sec\",\"key\":\"password\"}}},"
                   "{\"name\":\"C\",\"valueFrom\":{\"configMapKeyRef\":{\"name\":"
                   "\"missing-cm\",\"key\":\"k\"}}}]"));
    /* pi-2: one ConfigMap, by an init container */
    cJSON *p2 = pod_obj("apps", "other", "pi-2", "", "");
    cJSON *init = cJSON_Parse("[{\"name\":\"init\",\"image\":\"busybox:1.36\",\"envFrom\":[{"
                              "\"configMapRef\":{\"name\":\"init-cm\"}}]}]");
    cJSON_AddItemToObject(cJSON_GetObjectItemCaseSensitive(p2, "spec"), "initContainers", init);
    drv_diags_t dg = {0};
    assert_int_equal(drv_model_normalize(p2, &dg), DRV_OK);
    drv_diags_free(&dg);
    create(f, DRV_KIND_POD, p2);

    static const char *const cms[] = {"vol-cm", "envfrom-cm", "keyref-cm", "init-cm", "unused-cm"};
    for (size_t i = 0; i < sizeof(cms) / sizeof(cms[0]); i++) {
        mkcm(f, "apps", cms[i], "v");
        mkcm(f, "default", cms[i], "other-namespace");
    }
    static const char *const secs[] = {"vol-sec", "envfrom-sec", "keyref-sec", "unused-sec"};
    for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]); i++) {
        mksecret(f, "apps", secs[i]);
        mksecret(f, "default", secs[i]);
    }
    load(f);

    doc_t d;
    build(f, "pi-1", 3, &d);
    assert_string_equal(keys_of(d.p.pods), "apps/full");
    /* sorted by name; missing-cm is simply not there */
    assert_string_equal(keys_of(d.p.config_maps), "apps/envfrom-cm,apps/keyref-cm,apps/vol-cm");
    assert_string_equal(keys_of(d.p.secrets), "apps/envfrom-sec,apps/keyref-sec,apps/vol-sec");
    const cJSON *o;
    cJSON_ArrayForEach(o, d.p.config_maps)
    {
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "kind")),
                            "ConfigMap");
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                                cJSON_GetObjectItemCaseSensitive(o, "data"), "k")),
                            "v");
        assert_null(mstr(o, "resourceVersion"));
        assert_null(mstr(o, "creationTimestamp"));
        assert_null(mstr(o, "uid"));
        cJSON *copy = cJSON_Duplicate(o, true);
        assert_int_equal(drv_model_normalize(copy, &dg), DRV_OK);
        drv_diags_free(&dg);
        cJSON_Delete(copy);
    }
    cJSON_ArrayForEach(o, d.p.secrets)
    {
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                                cJSON_GetObjectItemCaseSensitive(o, "data"), "password")),
                            "c2VjcmV0");
        assert_null(mstr(o, "resourceVersion"));
    }
    assert_null(strstr(d.payload, "unused"));
    assert_null(strstr(d.payload, "other-namespace"));
    assert_null(strstr(d.payload, "init-cm"));
    doc_free(&d);

    build(f, "pi-2", 3, &d);
    assert_string_equal(keys_of(d.p.config_maps), "apps/init-cm");
    assert_int_equal(cJSON_GetArraySize(d.p.secrets), 0);
    doc_free(&d);

    /* the missing ConfigMap appears: pi-1 (whose document named it) is marked, and gets it */
    clear_dirty(&f->d);
    mkcm(f, "apps", "missing-cm", "late");
    mkcm(f, "default", "missing-cm", "late"); /* another namespace: marks nothing more */
    follow(f);
    assert_string_equal(dirty_list(&f->d), "pi-1");
    build(f, "pi-1", 4, &d);
    assert_string_equal(keys_of(d.p.config_maps),
                        "apps/envfrom-cm,apps/keyref-cm,apps/missing-cm,apps/vol-cm");
    doc_free(&d);

    /* a referenced Secret deleted: marked, and gone from the document */
    clear_dirty(&f->d);
    del(f, DRV_KIND_SECRET, "apps", "vol-sec");
    follow(f);
    assert_string_equal(dirty_list(&f->d), "pi-1");
    build(f, "pi-1", 5, &d);
    assert_string_equal(keys_of(d.p.secrets), "apps/envfrom-sec,apps/keyref-sec");
    doc_free(&d);
}

/* The model refuses projected volumes and imagePullSecrets, but the cache follows what they
 * name in a pod that reached the store anyway (written straight to it). */
static void test_projected_and_pull_secrets(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod_obj("default", "proj", "pi-1", "", "");
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(p, "spec");
    cJSON_AddItemToObject(spec, "volumes",
                          cJSON_Parse("[{\"name\":\"all\",\"projected\":{\"sources\":[{"
                                      "\"configMap\":{\"name\":\"proj-cm\"}},{\"secret\":{"
                                      "\"name\":\"proj-sec\"}}]}}]"));
    cJSON_AddItemToObject(spec, "imagePullSecrets", cJSON_Parse("[{\"name\":\"pull\"}]"));
    create(f, DRV_KIND_POD, p);
    mkcm(f, "default", "proj-cm", "v");
    mksecret(f, "default", "proj-sec");
    mksecret(f, "default", "pull");
    mksecret(f, "other", "pull");
    mkcm(f, "default", "unrelated", "v");
    load(f);
    doc_t d;
    build(f, "pi-1", 1, &d);
    assert_string_equal(keys_of(d.p.config_maps), "default/proj-cm");
    assert_string_equal(keys_of(d.p.secrets), "default/proj-sec,default/pull");
    doc_free(&d);
    clear_dirty(&f->d);
    del(f, DRV_KIND_SECRET, "default", "pull");
    follow(f);
    assert_string_equal(dirty_list(&f->d), "pi-1");
}

/* A pod naming more than 256 ConfigMaps/Secrets in all (counting repeats: here 300 env
 * entries reading keys of one ConfigMap) still gets every object it uses: the Secret named
 * after them must be in the document. */
static void test_many_references(void **state)
{
    struct fx *f = *state;
    size_t sz = 300 * 128 + 256;
    char *ctr = malloc(sz);
    assert_non_null(ctr);
    size_t len = (size_t)snprintf(ctr, sz, ",\"env\":[");
    for (int i = 0; i < 300; i++)
        len += (size_t)snprintf(ctr + len, sz - len,
                                "%s{\"name\":\"V%d\",\"valueFrom\":{\"configMapKeyRef\":{"
                                "\"name\":\"settings\",\"key\":\"k\"}}}",
                                i ? "," : "", i);
    snprintf(ctr + len, sz - len, "]");
    /* the Secret comes after them, in a second container */
    cJSON *p = pod_obj("default", "wide", "pi-1", "", ctr);
    free(ctr);
    cJSON_AddItemToArray(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(p, "spec"), "containers"),
        cJSON_Parse("{\"name\":\"side\",\"image\":\"busybox:1.36\",\"envFrom\":[{"
                    "\"secretRef\":{\"name\":\"creds\"}}]}"));
    drv_diags_t dg = {0};
    assert_int_equal(drv_model_normalize(p, &dg), DRV_OK);
    drv_diags_free(&dg);
    create(f, DRV_KIND_POD, p);
    mkcm(f, "default", "settings", "v");
    mksecret(f, "default", "creds");
    load(f);
    doc_t d;
    build(f, "pi-1", 1, &d);
    assert_string_equal(keys_of(d.p.config_maps), "default/settings");
    assert_string_equal(keys_of(d.p.secrets), "default/creds");
    doc_free(&d);
}

/* The node key callback of test_sealed_and_signed: pi-1 is enrolled, nobody else. */
static const char *enrolled_pub;
static bool pi2_revoked;
static drv_err_t node_key(void *ctx, const char *node, char **pub_pem, drv_error_t *err)
{
    (void)ctx;
    if (pi2_revoked && !strcmp(node, "pi-2"))
        return drv_error_set(err, DRV_ERR_PERM, 0, "node %s: revoked", node);
    if (strcmp(node, "pi-1"))
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "node %s: not enrolled", node);
    *pub_pem = strdup(enrolled_pub);
    return DRV_OK;
}

/* With a signing key and node keys: the document is signed (and opens only with the hub's
 * public key), an enrolled node's Secrets are sealed to its key (no clear value in the
 * payload), and an unenrolled node on a TLS broker gets no Secret at all. */
static void test_sealed_and_signed(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    char *hub_key = NULL, *hub_pub = NULL, *node_priv = NULL, *node_pub = NULL;
    assert_int_equal(drv_pki_key_generate(&hub_key, &err), DRV_OK);
    assert_int_equal(drv_pki_key_public(hub_key, &hub_pub, &err), DRV_OK);
    assert_int_equal(drv_pki_key_generate(&node_priv, &err), DRV_OK);
    assert_int_equal(drv_pki_key_public(node_priv, &node_pub, &err), DRV_OK);
    enrolled_pub = node_pub;
    f->d.signing_key = hub_key;
    f->d.node_key = node_key;
    f->d.clear_secrets = false;
    static const char *const nodes[] = {"pi-1", "pi-2"};
    for (size_t i = 0; i < 2; i++) {
        char name[16];
        snprintf(name, sizeof(name), "web-%zu", i);
        create(f, DRV_KIND_POD,
               pod_obj("default", name, nodes[i], "",
                       ",\"envFrom\":[{\"secretRef\":{\"name\":\"creds\"}}]"));
    }
    mksecret(f, "default", "creds");
    load(f);
    for (size_t i = 0; i < 2; i++) {
        bnode_t *n = bdesired_node(&f->d, nodes[i]);
        drv_digest_t sum;
        size_t len = 0;
        char *env = bdesired_build(&f->d, n, 7, &sum, &len, NULL, &err);
        if (!env)
            fail_msg("build: %s", drv_error_msg(&err));
        assert_null(strstr(env, "c2VjcmV0")); /* the value, base64 */
        char *doc = NULL;
        size_t dlen = 0;
        assert_int_equal(drv_proto_desired_open(env, len, hub_pub, &doc, &dlen, &err), DRV_OK);
        assert_int_equal(drv_proto_desired_open(env, len, node_pub, &doc, &dlen, &err),
                         DRV_ERR_INTEGRITY);
        drv_error_clear(&err);
        drv_proto_desired_t p;
        assert_int_equal(drv_proto_desired_parse(doc, dlen, nodes[i], &p, &err), DRV_OK);
        if (i == 0) {
            assert_int_equal(cJSON_GetArraySize(p.secrets), 1);
            cJSON *sec = cJSON_Duplicate(cJSON_GetArrayItem(p.secrets, 0), 1);
            assert_true(drv_proto_secret_is_sealed(sec));
            assert_int_equal(drv_proto_secret_unseal(sec, "pi-1", node_priv, &err), DRV_OK);
            assert_string_equal(
                cJSON_GetObjectItem(cJSON_GetObjectItem(sec, "data"), "password")->valuestring,
                "c2VjcmV0");
            cJSON_Delete(sec);
        } else {
            assert_int_equal(cJSON_GetArraySize(p.secrets), 0);
        }
        drv_proto_desired_free(&p);
        free(doc);
        free(env);
    }
    /* On a plain broker an unenrolled node gets its Secrets in clear; a revoked one never. */
    f->d.clear_secrets = true;
    for (int rv = 0; rv < 2; rv++) {
        pi2_revoked = rv == 1;
        drv_digest_t sum;
        size_t len = 0;
        char *env = bdesired_build(&f->d, bdesired_node(&f->d, "pi-2"), 9, &sum, &len, NULL, &err);
        assert_non_null(env);
        char *doc = NULL;
        size_t dlen = 0;
        assert_int_equal(drv_proto_desired_open(env, len, hub_pub, &doc, &dlen, &err), DRV_OK);
        drv_proto_desired_t p;
        assert_int_equal(drv_proto_desired_parse(doc, dlen, "pi-2", &p, &err), DRV_OK);
        assert_int_equal(cJSON_GetArraySize(p.secrets), rv == 1 ? 0 : 1);
        drv_proto_desired_free(&p);
        free(doc);
        free(env);
    }
    pi2_revoked = false;
    f->d.clear_secrets = false;
    /* The same content sealed to a new key of the node (enrolled again) is a new document. */
    bnode_t *n1 = bdesired_node(&f->d, "pi-1");
    drv_digest_t s1, s2, s3;
    size_t l1 = 0;
    free(bdesired_build(&f->d, n1, 8, &s1, &l1, NULL, &err));
    free(bdesired_build(&f->d, n1, 8, &s2, &l1, NULL, &err));
    char *k3 = NULL, *p3 = NULL;
    assert_int_equal(drv_pki_key_generate(&k3, &err), DRV_OK);
    assert_int_equal(drv_pki_key_public(k3, &p3, &err), DRV_OK);
    enrolled_pub = p3;
    free(bdesired_build(&f->d, n1, 8, &s3, &l1, NULL, &err));
    assert_true(drv_digest_equal(&s1, &s2));
    assert_false(drv_digest_equal(&s1, &s3));
    drv_pki_secret_free(k3);
    free(p3);
    f->d.signing_key = NULL;
    drv_pki_secret_free(hub_key);
    drv_pki_secret_free(node_priv);
    free(hub_pub);
    free(node_pub);
}

/* A node whose pods name ConfigMaps by more than 1 MiB of "c:namespace/name" text in all
 * (4200 distinct names of 253 bytes, none there yet; the document is ~1.3 MiB, under the cap):
 * one of them appearing must still mark the node. */
static void test_many_distinct_references(void **state)
{
    struct fx *f = *state;
    char base[249];
    memset(base, 'c', sizeof(base) - 1);
    base[sizeof(base) - 1] = '\0';
    size_t sz = 200 * 400 + 64;
    char *vols = malloc(sz);
    assert_non_null(vols);
    for (int p = 0; p < 21; p++) {
        size_t len = (size_t)snprintf(vols, sz, ",\"volumes\":[");
        for (int v = 0; v < 200; v++)
            len += (size_t)snprintf(vols + len, sz - len,
                                    "%s{\"name\":\"v%d\",\"configMap\":{\"name\":\"%s-%04d\"}}",
                                    v ? "," : "", v, base, p * 200 + v);
        snprintf(vols + len, sz - len, "]");
        char name[32];
        snprintf(name, sizeof(name), "p%02d", p);
        create(f, DRV_KIND_POD, pod_obj("default", name, "pi-1", vols, ""));
    }
    free(vols);
    load(f);
    doc_t d;
    build(f, "pi-1", 1, &d);
    assert_int_equal(cJSON_GetArraySize(d.p.pods), 21);
    assert_int_equal(cJSON_GetArraySize(d.p.config_maps), 0);
    print_message("    document of %zu bytes\n", d.len);
    doc_free(&d);
    clear_dirty(&f->d);
    char cm[300];
    snprintf(cm, sizeof(cm), "%s-%04d", base, 1234);
    mkcm(f, "default", cm, "now");
    follow(f);
    assert_string_equal(dirty_list(&f->d), "pi-1");
    build(f, "pi-1", 2, &d);
    assert_int_equal(cJSON_GetArraySize(d.p.config_maps), 1);
    doc_free(&d);
}

/* ---- following changes ---- */

static void test_follow_marks_exactly(void **state)
{
    struct fx *f = *state;
    create(f, DRV_KIND_POD,
           pod_obj("default", "a", "pi-1",
                   ",\"volumes\":[{\"name\":\"cfg\",\"configMap\":{\"name\":\"shared\"}}]", ""));
    create(f, DRV_KIND_POD,
           pod_obj("default", "b", "pi-2", "",
                   ",\"envFrom\":[{\"configMapRef\":{\"name\":\"shared\"}}]"));
    create(f, DRV_KIND_POD,
           pod_obj("default", "c", "pi-3", "",
                   ",\"env\":[{\"name\":\"X\",\"valueFrom\":{\"configMapKeyRef\":{\"name\":"
                   "\"only-c\",\"key\":\"k\"}}}]"));
    mkcm(f, "default", "shared", "1");
    mkcm(f, "default", "only-c", "1");
    mkcm(f, "default", "nobody", "1");
    load(f);
    assert_string_equal(dirty_list(&f->d), "pi-1,pi-2,pi-3");
    doc_t d1, d2, d3;
    build(f, "pi-1", 10, &d1);
    build(f, "pi-2", 10, &d2);
    build(f, "pi-3", 10, &d3);
    clear_dirty(&f->d);

    /* status only: nothing */
    set_status(f, "default", "a", "Running");
    set_status(f, "default", "c", "Failed");
    follow(f);
    assert_int_equal(f->d.ndirty, 0);
    assert_string_equal(dirty_list(&f->d), "");
    doc_t again;
    build(f, "pi-1", 11, &again);
    assert_true(drv_digest_equal(&again.sum, &d1.sum));
    doc_free(&again);

    /* a spec change: that node */
    set_image(f, "default", "a", "busybox:1.37");
    follow(f);
    assert_string_equal(dirty_list(&f->d), "pi-1");
    build(f, "pi-1", 12, &again);
    assert_false(drv_digest_equal(&again.sum, &d1.sum));
    assert_non_null(strstr(again.payload, "busybox:1.37"));
    doc_free(&again);
    clear_dirty(&f->d);

    /* a label change reaches the agent too */
    cJSON *o = get(f, DRV_KIND_POD, "default", "b");
    cJSON_ReplaceItemInObjectCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "metadata"), "labels"),
        "app", cJSON_CreateString("b2"));
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_update(f->s, DRV_KIND_POD, o, &err), DRV_OK);
    cJSON_Delete(o);
    follow(f);
    assert_string_equal(dirty_list(&f->d), "pi-2");
    clear_dirty(&f->d);

    /* a new pod: its node only (a node never seen before gets an entry) */
    mkpod(f, "default", "new", "pi-3");
    mkpod(f, "default", "fresh", "pi-9");
    mkpod(f, "default", "unbound", NULL);
    follow(f);
    assert_string_equal(dirty_list(&f->d), "pi-3,pi-9");
    clear_dirty(&f->d);

    /* a deleted pod: its node only; an unbound one deleted: none */
    del(f, DRV_KIND_POD, "default", "new");
    del(f, DRV_KIND_POD, "default", "unbound");
    follow(f);
    assert_string_equal(dirty_list(&f->d), "pi-3");
    build(f, "pi-3", 13, &again);
    assert_string_equal(keys_of(again.p.pods), "default/c");
    assert_true(drv_digest_equal(&again.sum, &d3.sum)); /* back to what it was */
    doc_free(&again);
    clear_dirty(&f->d);

    /* a pod moved to another node (nodeName rewritten): both nodes */
    mkpod(f, "default", "mover", "pi-2");
    follow(f);
    clear_dirty(&f->d);
    o = get(f, DRV_KIND_POD, "default", "mover");
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "spec"), "nodeName",
                                           cJSON_CreateString("pi-9"));
    assert_int_equal(drv_hstore_update(f->s, DRV_KIND_POD, o, &err), DRV_OK);
    cJSON_Delete(o);
    follow(f);
    assert_string_equal(dirty_list(&f->d), "pi-2,pi-9");
    build(f, "pi-9", 13, &again);
    assert_string_equal(keys_of(again.p.pods), "default/fresh,default/mover");
    doc_free(&again);
    build(f, "pi-2", 13, &again);
    assert_string_equal(keys_of(again.p.pods), "default/b");
    doc_free(&again);
    clear_dirty(&f->d);

    /* a pending pod bound by the scheduler: that node */
    mkpod(f, "default", "later", NULL);
    follow(f);
    assert_string_equal(dirty_list(&f->d), "");
    o = get(f, DRV_KIND_POD, "default", "later");
    cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(o, "spec"), "nodeName", "pi-3");
    assert_int_equal(drv_hstore_update(f->s, DRV_KIND_POD, o, &err), DRV_OK);
    cJSON_Delete(o);
    follow(f);
    assert_string_equal(dirty_list(&f->d), "pi-3");
    build(f, "pi-3", 13, &again);
    assert_string_equal(keys_of(again.p.pods), "default/c,default/later");
    doc_free(&again);
    clear_dirty(&f->d);

    /* a Node object registered: its (so far unpublished) node gets a document */
    cJSON *nd = normalized("{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{"
                           "\"name\":\"pi-7\"}}");
    create(f, DRV_KIND_NODE, nd);
    follow(f);
    assert_string_equal(dirty_list(&f->d), "pi-7");
    clear_dirty(&f->d);

    /* a ConfigMap change: the nodes whose document used it */
    set_cm(f, "default", "shared", "2");
    follow(f);
    assert_string_equal(dirty_list(&f->d), "pi-1,pi-2");
    build(f, "pi-2", 14, &again);
    assert_false(drv_digest_equal(&again.sum, &d2.sum));
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(again.p.config_maps, 0), "data"),
            "k")),
        "2");
    doc_free(&again);
    clear_dirty(&f->d);

    set_cm(f, "default", "only-c", "2");
    follow(f);
    assert_string_equal(dirty_list(&f->d), "pi-3");
    clear_dirty(&f->d);

    /* unreferenced ConfigMaps: none (also one of the same name elsewhere) */
    set_cm(f, "default", "nobody", "2");
    mkcm(f, "default", "brand-new", "1");
    mkcm(f, "other", "shared", "1");
    del(f, DRV_KIND_CONFIGMAP, "default", "nobody");
    follow(f);
    assert_string_equal(dirty_list(&f->d), "");

    /* a referenced ConfigMap deleted: its users */
    del(f, DRV_KIND_CONFIGMAP, "default", "shared");
    follow(f);
    assert_string_equal(dirty_list(&f->d), "pi-1,pi-2");
    build(f, "pi-1", 15, &again);
    assert_int_equal(cJSON_GetArraySize(again.p.config_maps), 0);
    doc_free(&again);
    clear_dirty(&f->d);

    /* nothing new: nothing */
    follow(f);
    assert_string_equal(dirty_list(&f->d), "");

    doc_free(&d1);
    doc_free(&d2);
    doc_free(&d3);
}

/* Whether a ConfigMap marks a node follows the node's last built document: once the pod that
 * used it is gone (and the document rebuilt), a change marks nothing. */
static void test_refs_follow_last_document(void **state)
{
    struct fx *f = *state;
    create(f, DRV_KIND_POD,
           pod_obj("default", "a", "pi-1",
                   ",\"volumes\":[{\"name\":\"cfg\",\"configMap\":{\"name\":\"cfg\"}}]", ""));
    mkpod(f, "default", "b", "pi-1");
    mkcm(f, "default", "cfg", "1");
    load(f);
    doc_t d;
    build(f, "pi-1", 1, &d);
    doc_free(&d);
    clear_dirty(&f->d);

    del(f, DRV_KIND_POD, "default", "a");
    follow(f);
    assert_string_equal(dirty_list(&f->d), "pi-1");
    build(f, "pi-1", 2, &d);
    assert_int_equal(cJSON_GetArraySize(d.p.config_maps), 0);
    doc_free(&d);
    clear_dirty(&f->d);

    set_cm(f, "default", "cfg", "2");
    follow(f);
    assert_string_equal(dirty_list(&f->d), "");
}

/* ---- the digest ---- */

static void test_digest(void **state)
{
    struct fx *f = *state;
    create(f, DRV_KIND_POD,
           pod_obj("default", "a", "pi-1",
                   ",\"volumes\":[{\"name\":\"cfg\",\"configMap\":{\"name\":\"cfg\"}}]", ""));
    mkpod(f, "default", "b", "pi-1");
    mkcm(f, "default", "cfg", "1");
    load(f);
    doc_t g1, g2;
    build(f, "pi-1", 1, &g1);
    build(f, "pi-1", 9000000000000ull, &g2);
    assert_true(drv_digest_equal(&g1.sum, &g2.sum)); /* generation is not content */
    assert_string_not_equal(g1.payload, g2.payload);
    assert_int_equal(g2.p.generation, 9000000000000ull);

    /* a second cache loaded from the same store (a hub restart): the same digest */
    bdesired_t other = {0};
    bdesired_init(&other);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(bdesired_load(&other, f->s, &err), DRV_OK);
    drv_digest_t sum;
    size_t len = 0;
    char *payload =
        bdesired_build(&other, bdesired_node(&other, "pi-1"), 1, &sum, &len, NULL, &err);
    assert_non_null(payload);
    assert_true(drv_digest_equal(&sum, &g1.sum));
    assert_string_equal(payload, g1.payload);
    free(payload);
    bdesired_free(&other);

    /* a status change, then a change undone: the same digest */
    set_status(f, "default", "b", "Running");
    set_image(f, "default", "b", "busybox:1.37");
    set_image(f, "default", "b", "busybox:1.36");
    follow(f);
    doc_t same;
    build(f, "pi-1", 2, &same);
    assert_true(drv_digest_equal(&same.sum, &g1.sum));
    doc_free(&same);

    /* different content: a different digest (pod spec, ConfigMap data, a pod more or less) */
    drv_digest_t seen[4];
    set_image(f, "default", "b", "busybox:1.37");
    follow(f);
    build(f, "pi-1", 3, &same);
    seen[0] = same.sum;
    doc_free(&same);
    set_cm(f, "default", "cfg", "2");
    follow(f);
    build(f, "pi-1", 3, &same);
    seen[1] = same.sum;
    doc_free(&same);
    mkpod(f, "default", "c", "pi-1");
    follow(f);
    build(f, "pi-1", 3, &same);
    seen[2] = same.sum;
    doc_free(&same);
    del(f, DRV_KIND_POD, "default", "a");
    follow(f);
    build(f, "pi-1", 3, &same);
    seen[3] = same.sum;
    doc_free(&same);
    for (size_t i = 0; i < 4; i++) {
        assert_false(drv_digest_equal(&seen[i], &g1.sum));
        for (size_t j = 0; j < i; j++)
            assert_false(drv_digest_equal(&seen[i], &seen[j]));
    }
    doc_free(&g1);
    doc_free(&g2);
}

/* ---- falling behind ---- */

static void test_fell_behind_reloads(void **state)
{
    struct fx *f = *state;
    create(f, DRV_KIND_POD,
           pod_obj("default", "a", "pi-1",
                   ",\"volumes\":[{\"name\":\"cfg\",\"configMap\":{\"name\":\"cfg\"}}]", ""));
    mkpod(f, "default", "b", "pi-1");
    mkpod(f, "default", "c", "pi-2");
    mkcm(f, "default", "cfg", "1");
    mkcm(f, "default", "noise", "0");
    load(f);
    doc_t d;
    build(f, "pi-1", 1, &d);
    doc_free(&d);
    build(f, "pi-2", 1, &d);
    doc_free(&d);
    clear_dirty(&f->d);
    uint64_t since = f->d.since_rv;

    /* behind the follower's back: pod b deleted, pod d added on pi-2, cfg changed, pod a moved
     * on in spec; then more than the log keeps */
    del(f, DRV_KIND_POD, "default", "b");
    mkpod(f, "default", "d", "pi-2");
    mkpod(f, "default", "e", "pi-3");
    set_cm(f, "default", "cfg", "2");
    set_image(f, "default", "a", "busybox:1.37");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char v[32];
    for (int i = 1; i <= DRV_HSTORE_LOG_KEEP + 1; i++) {
        snprintf(v, sizeof(v), "%d", i);
        set_cm(f, "default", "noise", v);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    print_message("    %d store updates in %.2f s\n", DRV_HSTORE_LOG_KEEP + 1,
                  (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    drv_hstore_event_t *ev = NULL;
    size_t n = 0;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_changes(f->s, since, DRV_KIND_UNKNOWN, 1, &ev, &n, &err),
                     DRV_ERR_RANGE); /* really behind */

    follow(f); /* reloads */
    assert_string_equal(dirty_list(&f->d), "pi-1,pi-2,pi-3");
    build(f, "pi-1", 2, &d);
    assert_string_equal(keys_of(d.p.pods), "default/a");
    assert_non_null(strstr(d.payload, "busybox:1.37"));
    assert_string_equal(keys_of(d.p.config_maps), "default/cfg");
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(d.p.config_maps, 0), "data"), "k")),
        "2");
    doc_free(&d);
    build(f, "pi-2", 2, &d);
    assert_string_equal(keys_of(d.p.pods), "default/c,default/d");
    doc_free(&d);
    build(f, "pi-3", 2, &d);
    assert_string_equal(keys_of(d.p.pods), "default/e");
    doc_free(&d);
    assert_int_equal(f->d.pods.n, 4);

    /* and it follows on from there */
    clear_dirty(&f->d);
    set_cm(f, "default", "cfg", "3");
    set_cm(f, "default", "noise", "x");
    follow(f);
    assert_string_equal(dirty_list(&f->d), "pi-1");
}

/* ---- the 4 MiB cap ---- */

static void test_document_over_cap(void **state)
{
    struct fx *f = *state;
    size_t big = 250 * 1024; /* under the 256 KiB annotation limit */
    char *val = malloc(big + 1);
    assert_non_null(val);
    memset(val, 'x', big);
    val[big] = '\0';
    int npods = 20; /* 20 x 250 KiB = 5 MiB */
    for (int i = 0; i < npods; i++) {
        char name[32];
        snprintf(name, sizeof(name), "big-%02d", i);
        cJSON *p = pod_obj("default", name, "pi-1", "", "");
        cJSON *a = cJSON_CreateObject();
        assert_non_null(a);
        assert_non_null(cJSON_AddStringToObject(a, "note", val));
        cJSON_AddItemToObject(cJSON_GetObjectItemCaseSensitive(p, "metadata"), "annotations", a);
        drv_diags_t dg = {0};
        assert_int_equal(drv_model_normalize(p, &dg), DRV_OK);
        drv_diags_free(&dg);
        create(f, DRV_KIND_POD, p);
    }
    free(val);
    mkpod(f, "default", "small", "pi-2");
    load(f);

    bnode_t *n = bdesired_node(&f->d, "pi-1");
    drv_digest_t sum;
    size_t len = 0;
    drv_error_t err = DRV_ERROR_INIT;
    char *payload = bdesired_build(&f->d, n, 5, &sum, &len, NULL, &err);
    assert_null(payload);
    assert_int_equal(err.code, DRV_ERR_TOOBIG);
    print_message("    over the cap: %s\n", drv_error_msg(&err));

    /* the other node is not affected */
    doc_t d;
    build(f, "pi-2", 5, &d);
    assert_string_equal(keys_of(d.p.pods), "default/small");
    doc_free(&d);

    /* fewer pods: it fits again */
    clear_dirty(&f->d);
    for (int i = 0; i < 8; i++) {
        char name[32];
        snprintf(name, sizeof(name), "big-%02d", i);
        del(f, DRV_KIND_POD, "default", name);
    }
    follow(f);
    assert_string_equal(dirty_list(&f->d), "pi-1");
    build(f, "pi-1", 6, &d);
    assert_int_equal(cJSON_GetArraySize(d.p.pods), npods - 8);
    assert_true(d.len <= DRV_PROTO_DESIRED_MAX);
    doc_free(&d);
}

/* ---- the signer (signer.c) ---- */

typedef struct collected {
    size_t n;
    char node[8][DRV_PROTO_NODE_MAX + 1];
    uint64_t gen[8];
    bool latest[8];
    drv_err_t rc[8];
    char *payload[8];
} collected_t;

static void on_result(void *ctx, const bsigner_result_t *r)
{
    collected_t *c = ctx;
    assert_true(c->n < 8);
    snprintf(c->node[c->n], sizeof(c->node[0]), "%s", r->node->name);
    c->gen[c->n] = r->generation;
    c->latest[c->n] = r->latest;
    c->rc[c->n] = r->rc;
    c->payload[c->n] = r->payload ? strdup(r->payload) : NULL;
    c->n++;
}

static void collected_free(collected_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->payload[i]);
    memset(c, 0, sizeof(*c));
}

static cJSON *prepared(struct fx *f, const char *node, uint64_t gen, drv_digest_t *sum)
{
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *doc = bdesired_prepare(&f->d, bdesired_node(&f->d, node), gen, sum, NULL, &err);
    if (!doc)
        fail_msg("prepare %s: %s", node, drv_error_msg(&err));
    return doc;
}

/* One job per node waits: a newer document replaces the waiting one in its place; the queue is
 * bounded (DRV_ERR_AGAIN, nothing waits on it); a result names whether it is still the node's
 * latest document. */
static void test_signer_coalesces(void **state)
{
    struct fx *f = *state;
    mkpod(f, "default", "a", "pi-1");
    mkpod(f, "default", "b", "pi-2");
    mkpod(f, "default", "c", "pi-3");
    load(f);
    bsigner_t *s = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(bsigner_new(NULL, NULL, 2, false, &s, &err), DRV_OK);
    bnode_t *n1 = bdesired_node(&f->d, "pi-1"), *n3 = bdesired_node(&f->d, "pi-3");
    drv_digest_t sum;
    assert_int_equal(bsigner_submit(s, n1, prepared(f, "pi-1", 5, &sum), 5, &sum, &err), DRV_OK);
    assert_int_equal(bsigner_submit(s, n1, prepared(f, "pi-1", 6, &sum), 6, &sum, &err), DRV_OK);
    assert_int_equal(bsigner_submit(s, bdesired_node(&f->d, "pi-2"), prepared(f, "pi-2", 6, &sum),
                                    6, &sum, &err),
                     DRV_OK);
    bsigner_stats_t st;
    bsigner_stats(s, &st);
    assert_int_equal(st.waiting, 2);
    assert_int_equal(st.coalesced, 1);
    /* full: refused at once, the document freed (the bridge keeps the node marked) */
    assert_int_equal(bsigner_submit(s, n3, prepared(f, "pi-3", 6, &sum), 6, &sum, &err),
                     DRV_ERR_AGAIN);
    assert_null(n3->sign_waiting);
    assert_int_equal(bsigner_pending(s), 2);

    bsigner_run_one(s);
    bsigner_run_one(s);
    collected_t c = {0};
    assert_int_equal(bsigner_collect(s, on_result, &c), 2);
    assert_int_equal(bsigner_pending(s), 0);
    /* in the order handed over; pi-1 only once, with its newest document */
    assert_string_equal(c.node[0], "pi-1");
    assert_int_equal(c.gen[0], 6);
    assert_true(c.latest[0]);
    assert_string_equal(c.node[1], "pi-2");
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(c.rc[i], DRV_OK);
        drv_proto_desired_t p;
        assert_non_null(c.payload[i]);
        assert_int_equal(
            drv_proto_desired_parse(c.payload[i], strlen(c.payload[i]), c.node[i], &p, &err),
            DRV_OK);
        assert_int_equal(p.generation, 6);
        drv_proto_desired_free(&p);
    }
    collected_free(&c);

    /* a job already taken (running or done) is not replaced: the newer one queues behind it,
     * and the older one's result says it is no longer the latest */
    assert_int_equal(bsigner_submit(s, n1, prepared(f, "pi-1", 7, &sum), 7, &sum, &err), DRV_OK);
    bsigner_run_one(s);
    assert_int_equal(bsigner_submit(s, n1, prepared(f, "pi-1", 8, &sum), 8, &sum, &err), DRV_OK);
    assert_int_equal(bsigner_collect(s, on_result, &c), 1);
    assert_int_equal(c.gen[0], 7);
    assert_false(c.latest[0]);
    bsigner_run_one(s);
    assert_int_equal(bsigner_collect(s, on_result, &c), 1);
    assert_int_equal(c.gen[1], 8);
    assert_true(c.latest[1]);
    collected_free(&c);
    bsigner_stats(s, &st);
    assert_int_equal(st.submitted, 4);
    assert_int_equal(st.done, 4);
    assert_int_equal(st.full, 1);
    /* freed with a job waiting: dropped, the node no longer points at it */
    assert_int_equal(bsigner_submit(s, n3, prepared(f, "pi-3", 9, &sum), 9, &sum, &err), DRV_OK);
    assert_non_null(n3->sign_waiting);
    bsigner_free(s);
    assert_null(n3->sign_waiting);
}

/* On its thread: documents come back signed (they open with the hub's public key), and a
 * document over the size cap comes back as a failure naming the node. */
static void test_signer_thread(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    char *key = NULL, *pub = NULL;
    assert_int_equal(drv_pki_key_generate(&key, &err), DRV_OK);
    assert_int_equal(drv_pki_key_public(key, &pub, &err), DRV_OK);
    mkpod(f, "default", "a", "pi-1");
    mkpod(f, "default", "b", "pi-2");
    load(f);
    bsigner_t *s = NULL;
    assert_int_equal(bsigner_new(key, NULL, 16, true, &s, &err), DRV_OK);
    drv_digest_t sum;
    static const char *const nodes[] = {"pi-1", "pi-2"};
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(bsigner_submit(s, bdesired_node(&f->d, nodes[i]),
                                        prepared(f, nodes[i], 3, &sum), 3, &sum, &err),
                         DRV_OK);
    /* Both back before the next for pi-1, which would otherwise replace pi-1's document if
     * the thread has not taken it yet (coalescing, tested above). */
    collected_t c = {0};
    for (int i = 0; i < 1000 && c.n < 2; i++) {
        bsigner_collect(s, on_result, &c);
        if (c.n < 2) {
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    assert_int_equal(c.n, 2);
    /* a document far over 4 MiB: one ConfigMap-sized annotation is not needed, a big doc is */
    cJSON *big = prepared(f, "pi-1", 4, &sum);
    char *val = malloc(5u << 20);
    assert_non_null(val);
    memset(val, 'x', (5u << 20) - 1);
    val[(5u << 20) - 1] = '\0';
    assert_non_null(cJSON_AddStringToObject(big, "padding", val));
    free(val);
    assert_int_equal(bsigner_submit(s, bdesired_node(&f->d, "pi-1"), big, 4, &sum, &err), DRV_OK);
    for (int i = 0; i < 1000 && c.n < 3; i++) {
        bsigner_collect(s, on_result, &c);
        if (c.n < 3) {
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    assert_int_equal(c.n, 3);
    assert_int_equal(bsigner_pending(s), 0);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(c.rc[i], DRV_OK);
        char *doc = NULL;
        size_t dlen = 0;
        assert_int_equal(
            drv_proto_desired_open(c.payload[i], strlen(c.payload[i]), pub, &doc, &dlen, &err),
            DRV_OK);
        assert_non_null(strstr(doc, nodes[i]));
        free(doc);
    }
    assert_int_equal(c.rc[2], DRV_ERR_TOOBIG);
    assert_null(c.payload[2]);
    assert_true(c.latest[2]);
    collected_free(&c);
    bsigner_free(s);
    drv_pki_secret_free(key);
    free(pub);
}

/* ---- the table ---- */

static void test_bmap(void **state)
{
    (void)state;
    enum { N = 10000 };
    drv_map_t m;
    drv_map_init(&m, SIZE_MAX);
    assert_null(drv_map_get(&m, "absent"));
    assert_null(drv_map_del(&m, "absent"));
    char(*keys)[16] = calloc(N, sizeof(*keys));
    assert_non_null(keys);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "ns/key-%d", i);
        assert_int_equal(drv_map_put(&m, keys[i], &keys[i]), DRV_OK);
        assert_int_equal(m.n, (size_t)i + 1);
        assert_true(m.n * 10 < m.cap * 7 + 10); /* load kept under 70% */
    }
    size_t cap = m.cap;
    assert_true(cap >= N);
    assert_int_equal(cap & (cap - 1), 0);
    for (int i = 0; i < N; i++)
        assert_ptr_equal(drv_map_get(&m, keys[i]), &keys[i]);
    assert_null(drv_map_get(&m, "ns/key-10000"));
    assert_null(drv_map_get(&m, "ns/key-"));

    /* replace: same count */
    static int other;
    assert_int_equal(drv_map_put(&m, keys[7], &other), DRV_OK);
    assert_int_equal(m.n, N);
    assert_ptr_equal(drv_map_get(&m, keys[7]), &other);
    assert_int_equal(drv_map_put(&m, keys[7], &keys[7]), DRV_OK);

    /* delete every other key: tombstones, lookups past them still work */
    for (int i = 0; i < N; i += 2)
        assert_ptr_equal(drv_map_del(&m, keys[i]), &keys[i]);
    assert_int_equal(m.n, N / 2);
    assert_int_equal(m.tombs, N / 2);
    for (int i = 0; i < N; i++) {
        if (i % 2)
            assert_ptr_equal(drv_map_get(&m, keys[i]), &keys[i]);
        else
            assert_null(drv_map_get(&m, keys[i]));
    }
    assert_null(drv_map_del(&m, keys[0])); /* twice */
    assert_int_equal(m.tombs, N / 2);

    /* put back: the tombstones are reused, the table does not grow */
    for (int i = 0; i < N; i += 2)
        assert_int_equal(drv_map_put(&m, keys[i], &keys[i]), DRV_OK);
    assert_int_equal(m.n, N);
    assert_int_equal(m.tombs, 0);
    assert_int_equal(m.cap, cap);
    for (int i = 0; i < N; i++)
        assert_ptr_equal(drv_map_get(&m, keys[i]), &keys[i]);

    /* delete everything */
    for (int i = 0; i < N; i++)
        assert_ptr_equal(drv_map_del(&m, keys[i]), &keys[i]);
    assert_int_equal(m.n, 0);
    for (int i = 0; i < N; i++)
        assert_null(drv_map_get(&m, keys[i]));
    drv_map_free(&m);
    assert_int_equal(m.cap, 0);
    assert_null(drv_map_get(&m, keys[0]));

    /* churn: few live keys, many distinct ones over time: tombstones are swept, the table
     * stays small and lookups terminate */
    enum { LIVE = 10, CHURN = 100000 };
    char ring[LIVE][32];
    for (int i = 0; i < CHURN; i++) {
        char *k = ring[i % LIVE];
        if (i >= LIVE) {
            assert_ptr_equal(drv_map_del(&m, k), k);
        }
        snprintf(k, sizeof(ring[0]), "churn/%d", i);
        assert_int_equal(drv_map_put(&m, k, k), DRV_OK);
        assert_int_equal(m.n, i < LIVE ? (size_t)i + 1 : (size_t)LIVE);
    }
    assert_int_equal(m.cap, 64);
    for (int i = 0; i < LIVE; i++)
        assert_ptr_equal(drv_map_get(&m, ring[i]), ring[i]);
    assert_null(drv_map_get(&m, "churn/0"));
    drv_map_free(&m);
    free(keys);
}

int main(void)
{
    drv_log_set_level(DRV_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_documents_per_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_referenced_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistent_volumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_projected_and_pull_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_references, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_and_signed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_distinct_references, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow_marks_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refs_follow_last_document, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fell_behind_reloads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_document_over_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signer_coalesces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signer_thread, setup, teardown),
        cmocka_unit_test(test_bmap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
