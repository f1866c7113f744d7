/* The hub store: server-set fields, resourceVersion and generation rules, conflicts, status
 * kept apart, lists with selectors, the change log and its pruning, reopening, refusing newer
 * or foreign database files, corrupt rows, size limits, WAL mode and throughput. */
#include <errno.h>
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
#include <sqlite3.h>

#include "drover/json.h"
#include "drover/log.h"
#include "store/store.h"
#include "store/store_int.h"

struct fx {
    char dir[64];
    char path[128];
    drv_hstore_t *s;
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
    snprintf(f->dir, sizeof(f->dir), "/tmp/drv-hstore-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/hub.db", f->dir);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_open(f->path, &f->s, &err) != DRV_OK) {
        fprintf(stderr, "open: %s\n", drv_error_msg(&err));
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    drv_hstore_close(f->s);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
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

static cJSON *normalized(const char *text)
{
    cJSON *j = json(text);
    drv_diags_t d = {0};
    if (drv_model_normalize(j, &d) != DRV_OK) {
        char *m = drv_diags_format(&d, "  ");
        fail_msg("invalid test object %s:\n%s", text, m ? m : "");
    }
    drv_diags_free(&d);
    return j;
}

/* A normalized Pod; ns and labels (a JSON object text) may be NULL. */
static cJSON *pod(const char *ns, const char *name, const char *labels, const char *image)
{
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\"%s%s%s%s%s},"
             "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"%s\"}]}}",
             name, ns ? ",\"namespace\":\"" : "", ns ? ns : "", ns ? "\"" : "",
             labels ? ",\"labels\":" : "", labels ? labels : "", image);
    return normalized(buf);
}

static cJSON *configmap(const char *name, const char *value)
{
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\"},"
             "\"data\":{\"k\":\"%s\"}}",
             name, value);
    return normalized(buf);
}

static cJSON *node(const char *name)
{
    char buf[256];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\"}}", name);
    return normalized(buf);
}

static const char *meta(const cJSON *o, const char *key)
{
    const cJSON *v =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "metadata"), key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static uint64_t rv_of(const cJSON *o)
{
    const char *s = meta(o, "resourceVersion");
    assert_non_null(s);
    return strtoull(s, NULL, 10);
}

static int64_t gen_of(const cJSON *o)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(o, "metadata"), "generation");
    assert_true(cJSON_IsNumber(v));
    return (int64_t)v->valuedouble;
}

static void assert_same(const cJSON *a, const cJSON *b)
{
    char *x = drv_model_to_json(a, false), *y = drv_model_to_json(b, false);
    assert_string_equal(x, y);
    free(x);
    free(y);
}

static void create_ok(drv_hstore_t *s, drv_kind_t k, cJSON *o)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_create(s, k, o, &err) != DRV_OK)
        fail_msg("create: %s", drv_error_msg(&err));
}

static void update_ok(drv_hstore_t *s, drv_kind_t k, cJSON *o)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_update(s, k, o, &err) != DRV_OK)
        fail_msg("update: %s", drv_error_msg(&err));
}

static cJSON *get_ok(drv_hstore_t *s, drv_kind_t k, const char *ns, const char *name)
{
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *o = NULL;
    if (drv_hstore_get(s, k, ns, name, &o, &err) != DRV_OK)
        fail_msg("get %s: %s", name, drv_error_msg(&err));
    return o;
}

static void set_image(cJSON *p, const char *image)
{
    cJSON *c = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(p, "spec"), "containers"),
        0);
    cJSON_ReplaceItemInObjectCaseSensitive(c, "image", cJSON_CreateString(image));
}

/* The namespace lifecycle: the system namespaces, one made by its first object (labelled),
 * nothing new in one being terminated; without it (a bare store) none of this happens. */
static void test_namespaces(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *cm_bare = json("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
                          "\"name\":\"a\",\"namespace\":\"bare\"}}");
    create_ok(f->s, DRV_KIND_CONFIGMAP, cm_bare);
    cJSON_Delete(cm_bare);
    cJSON *none = NULL;
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_NAMESPACE, NULL, "bare", &none, &err),
                     DRV_ERR_NOTFOUND);
    assert_int_equal(drv_hstore_namespaces_enable(f->s, &err), DRV_OK);
    assert_int_equal(drv_hstore_namespaces_enable(f->s, &err), DRV_OK); /* twice is fine */
    cJSON *ns = get_ok(f->s, DRV_KIND_NAMESPACE, NULL, "kube-node-lease");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(ns, "status"), "phase")->valuestring, "Active");
    cJSON_Delete(ns);
    cJSON *cm_team = json("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
                          "\"name\":\"a\",\"namespace\":\"team\"}}");
    create_ok(f->s, DRV_KIND_CONFIGMAP, cm_team);
    cJSON_Delete(cm_team);
    ns = get_ok(f->s, DRV_KIND_NAMESPACE, "ignored", "team");
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(ns, "metadata"), "namespace"));
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(ns, "metadata"), "labels"),
                            DRV_HSTORE_NS_LABEL)
            ->valuestring,
        "team");
    cJSON_Delete(ns);
    assert_int_equal(drv_hstore_update_status(f->s, DRV_KIND_NAMESPACE, NULL, "team",
                                              json("{\"phase\":\"Terminating\"}"), NULL, &err),
                     DRV_OK);
    cJSON *cm = json("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                     "\"b\",\"namespace\":\"team\"}}");
    assert_int_equal(drv_model_normalize(cm, NULL), DRV_OK);
    assert_int_equal(drv_hstore_create(f->s, DRV_KIND_CONFIGMAP, cm, &err), DRV_ERR_PERM);
    assert_non_null(strstr(err.msg, "being terminated"));
    cJSON_Delete(cm);
    assert_true(drv_hstore_ns_protected("kube-public"));
    assert_false(drv_hstore_ns_protected("kube-node-lease"));
}

static void test_create_get_roundtrip(void **state)
{
    struct fx *f = *state;
    assert_int_equal(drv_hstore_rv(f->s), 0);
    cJSON *p = pod(NULL, "web", "{\"app\":\"web\"}", "nginx:1.25");
    create_ok(f->s, DRV_KIND_POD, p);
    assert_string_equal(meta(p, "namespace"), "default");
    assert_string_equal(meta(p, "resourceVersion"), "1");
    assert_int_equal(gen_of(p), 1);
    const char *uid = meta(p, "uid");
    assert_non_null(uid);
    assert_int_equal(strlen(uid), 36);
    assert_int_equal(uid[8], '-');
    assert_int_equal(uid[14], '4');           /* version 4 */
    assert_non_null(strchr("89ab", uid[19])); /* RFC 4122 variant */
    const char *ts = meta(p, "creationTimestamp");
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 20); /* 2026-11-25T10:00:00Z */
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[19], 'Z');
    assert_int_equal(drv_hstore_rv(f->s), 1);

    cJSON *g = get_ok(f->s, DRV_KIND_POD, "default", "web");
    assert_same(p, g);
    cJSON_Delete(g);
    g = get_ok(f->s, DRV_KIND_POD, NULL, "web"); /* NULL namespace: "default" */
    assert_same(p, g);
    cJSON_Delete(g);

    /* A second pod gets another uid. */
    cJSON *q = pod(NULL, "web2", NULL, "nginx:1.25");
    create_ok(f->s, DRV_KIND_POD, q);
    assert_string_not_equal(meta(q, "uid"), uid);
    cJSON_Delete(q);
    cJSON_Delete(p);
}

static void test_exists_and_notfound(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *p = pod("a", "web", NULL, "nginx");
    create_ok(f->s, DRV_KIND_POD, p);
    cJSON *again = pod("a", "web", NULL, "other");
    char *before = drv_model_to_json(again, false);
    assert_int_equal(drv_hstore_create(f->s, DRV_KIND_POD, again, &err), DRV_ERR_EXISTS);
    assert_non_null(strstr(drv_error_msg(&err), "web"));
    char *after = drv_model_to_json(again, false);
    assert_string_equal(before, after); /* untouched on failure */
    free(before);
    free(after);
    assert_int_equal(drv_hstore_rv(f->s), 1);
    /* Same name in another namespace or of another kind is another object. */
    cJSON *other = pod("b", "web", NULL, "nginx");
    create_ok(f->s, DRV_KIND_POD, other);
    cJSON *cm = configmap("web", "v");
    create_ok(f->s, DRV_KIND_CONFIGMAP, cm);

    cJSON *out = NULL;
    drv_error_clear(&err);
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_POD, "c", "web", &out, &err), DRV_ERR_NOTFOUND);
    assert_null(out);
    assert_non_null(strstr(drv_error_msg(&err), "web"));
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_POD, "a", "nope", NULL, &err),
                     DRV_ERR_NOTFOUND);
    cJSON *ghost = pod("a", "ghost", NULL, "nginx");
    assert_int_equal(drv_hstore_update(f->s, DRV_KIND_POD, ghost, &err), DRV_ERR_NOTFOUND);
    assert_int_equal(drv_hstore_update_status(f->s, DRV_KIND_POD, "a", "ghost",
                                              json("{\"phase\":\"Running\"}"), NULL, &err),
                     DRV_ERR_NOTFOUND);
    assert_int_equal(drv_hstore_rv(f->s), 3);
    cJSON_Delete(ghost);
    cJSON_Delete(cm);
    cJSON_Delete(other);
    cJSON_Delete(again);
    cJSON_Delete(p);
}

static void test_bad_input(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *p = pod(NULL, "web", NULL, "nginx");
    assert_int_equal(drv_hstore_create(f->s, DRV_KIND_CONFIGMAP, p, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "kind"));
    cJSON *noname = json("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{}}");
    assert_int_equal(drv_hstore_create(f->s, DRV_KIND_POD, noname, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "metadata.name"));
    cJSON *nometa = json("{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}");
    assert_int_equal(drv_hstore_create(f->s, DRV_KIND_POD, nometa, &err), DRV_ERR_INVALID);
    cJSON *arr = json("[1]");
    assert_int_equal(drv_hstore_create(f->s, DRV_KIND_POD, arr, &err), DRV_ERR_INVALID);
    assert_int_equal(drv_hstore_create(f->s, DRV_KIND_UNKNOWN, p, &err), DRV_ERR_INVALID);
    assert_int_equal(drv_hstore_rv(f->s), 0);
    create_ok(f->s, DRV_KIND_POD, p);
    assert_int_equal(
        drv_hstore_update_status(f->s, DRV_KIND_POD, NULL, "web", json("[1]"), NULL, &err),
        DRV_ERR_INVALID);
    assert_int_equal(drv_hstore_update_status(f->s, DRV_KIND_POD, NULL, "web", NULL, NULL, &err),
                     DRV_ERR_INVALID);
    cJSON *bad_rv = cJSON_Duplicate(p, true);
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(bad_rv, "metadata"),
                                           "resourceVersion", cJSON_CreateString("12abc"));
    assert_int_equal(drv_hstore_update(f->s, DRV_KIND_POD, bad_rv, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "metadata.resourceVersion"));
    cJSON_Delete(bad_rv);
    cJSON_Delete(arr);
    cJSON_Delete(nometa);
    cJSON_Delete(noname);
    cJSON_Delete(p);
}

static void test_generate_name(void **state)
{
    struct fx *f = *state;
    const char *text =
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"generateName\":\"web-\"},"
        "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"nginx\"}]}}";
    cJSON *a = normalized(text), *b = normalized(text);
    create_ok(f->s, DRV_KIND_POD, a);
    create_ok(f->s, DRV_KIND_POD, b);
    const char *na = meta(a, "name"), *nb = meta(b, "name");
    assert_non_null(na);
    assert_int_equal(strlen(na), 9);
    assert_memory_equal(na, "web-", 4);
    for (size_t i = 4; i < 9; i++)
        assert_non_null(strchr("bcdfghjklmnpqrstvwxz2456789", na[i]));
    assert_string_not_equal(na, nb);
    cJSON *g = get_ok(f->s, DRV_KIND_POD, "default", na);
    assert_same(a, g);
    cJSON_Delete(g);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void test_rv_strictly_increasing(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    uint64_t last = 0;
    cJSON *p = pod(NULL, "p", NULL, "nginx");
    cJSON *c = configmap("c", "1");
    cJSON *n = node("n1");
    create_ok(f->s, DRV_KIND_POD, p);
    assert_true(rv_of(p) > last);
    last = rv_of(p);
    create_ok(f->s, DRV_KIND_CONFIGMAP, c);
    assert_true(rv_of(c) > last);
    last = rv_of(c);
    create_ok(f->s, DRV_KIND_NODE, n);
    assert_true(rv_of(n) > last);
    last = rv_of(n);
    uint64_t rv = 0;
    assert_int_equal(drv_hstore_update_status(f->s, DRV_KIND_NODE, NULL, "n1",
                                              json("{\"phase\":\"x\"}"), &rv, &err),
                     DRV_OK);
    assert_true(rv > last);
    last = rv;
    cJSON *c2 = configmap("c", "2");
    update_ok(f->s, DRV_KIND_CONFIGMAP, c2);
    assert_true(rv_of(c2) > last);
    last = rv_of(c2);
    cJSON *gone = NULL;
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_POD, "default", "p", &gone, &err), DRV_OK);
    assert_true(rv_of(gone) > last);
    assert_int_equal(drv_hstore_rv(f->s), rv_of(gone));
    assert_int_equal(drv_hstore_rv(f->s), 6);
    cJSON_Delete(gone);
    cJSON_Delete(c2);
    cJSON_Delete(n);
    cJSON_Delete(c);
    cJSON_Delete(p);
}

static void test_generation_only_on_spec_change(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *p = pod(NULL, "web", "{\"app\":\"web\"}", "nginx:1");
    create_ok(f->s, DRV_KIND_POD, p);
    uint64_t rv1 = rv_of(p);
    /* Metadata only: a new resourceVersion, the same generation. */
    cJSON *labels =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(p, "metadata"), "labels");
    cJSON_AddStringToObject(labels, "tier", "front");
    update_ok(f->s, DRV_KIND_POD, p);
    assert_true(rv_of(p) > rv1);
    assert_int_equal(gen_of(p), 1);
    /* Status only: same generation. */
    assert_int_equal(drv_hstore_update_status(f->s, DRV_KIND_POD, NULL, "web",
                                              json("{\"phase\":\"Running\"}"), NULL, &err),
                     DRV_OK);
    cJSON *g = get_ok(f->s, DRV_KIND_POD, NULL, "web");
    assert_int_equal(gen_of(g), 1);
    cJSON_Delete(g);
    /* The spec: generation 2; the client's generation is ignored. */
    set_image(p, "nginx:2");
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(p, "metadata"),
                                           "generation", cJSON_CreateNumber(77));
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(p, "metadata"),
                                            "resourceVersion");
    update_ok(f->s, DRV_KIND_POD, p);
    assert_int_equal(gen_of(p), 2);
    g = get_ok(f->s, DRV_KIND_POD, NULL, "web");
    assert_int_equal(gen_of(g), 2);
    assert_same(p, g);
    cJSON_Delete(g);
    cJSON_Delete(p);
}

static void test_conflict_and_overwrite(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *p = pod(NULL, "web", NULL, "nginx:1");
    create_ok(f->s, DRV_KIND_POD, p);
    cJSON *stale = cJSON_Duplicate(p, true);
    set_image(p, "nginx:2");
    update_ok(f->s, DRV_KIND_POD, p); /* carries the current rv: accepted */
    uint64_t now = drv_hstore_rv(f->s);
    set_image(stale, "nginx:3");
    assert_int_equal(drv_hstore_update(f->s, DRV_KIND_POD, stale, &err), DRV_ERR_CONFLICT);
    assert_non_null(strstr(drv_error_msg(&err), "modified"));
    assert_int_equal(drv_hstore_rv(f->s), now);
    cJSON *g = get_ok(f->s, DRV_KIND_POD, NULL, "web");
    assert_same(p, g);
    cJSON_Delete(g);
    /* Another uid (deleted and recreated under the same name): a conflict too. */
    cJSON *wrong_uid = cJSON_Duplicate(p, true);
    cJSON_ReplaceItemInObjectCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(wrong_uid, "metadata"), "uid",
        cJSON_CreateString("00000000-0000-4000-8000-000000000000"));
    assert_int_equal(drv_hstore_update(f->s, DRV_KIND_POD, wrong_uid, &err), DRV_ERR_CONFLICT);
    /* Without a resourceVersion: overwrite. */
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(stale, "metadata"),
                                            "resourceVersion");
    update_ok(f->s, DRV_KIND_POD, stale);
    assert_true(rv_of(stale) > now);
    g = get_ok(f->s, DRV_KIND_POD, NULL, "web");
    assert_same(stale, g);
    assert_string_equal(meta(g, "uid"), meta(p, "uid"));
    assert_string_equal(meta(g, "creationTimestamp"), meta(p, "creationTimestamp"));
    cJSON_Delete(g);
    cJSON_Delete(wrong_uid);
    cJSON_Delete(stale);
    cJSON_Delete(p);
}

static void test_identical_update_no_new_rv(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *p = pod(NULL, "web", "{\"a\":\"b\"}", "nginx");
    create_ok(f->s, DRV_KIND_POD, p);
    uint64_t rv = drv_hstore_rv(f->s);
    cJSON *same = pod(NULL, "web", "{\"a\":\"b\"}", "nginx"); /* no server fields at all */
    update_ok(f->s, DRV_KIND_POD, same);
    assert_int_equal(drv_hstore_rv(f->s), rv);
    assert_same(p, same); /* handed back as stored */
    update_ok(f->s, DRV_KIND_POD, p);
    assert_int_equal(drv_hstore_rv(f->s), rv);
    drv_hstore_event_t *ev = NULL;
    size_t n = 99;
    assert_int_equal(drv_hstore_changes(f->s, rv, DRV_KIND_UNKNOWN, 100, &ev, &n, &err), DRV_OK);
    assert_int_equal(n, 0);
    drv_hstore_events_free(ev, n);
    /* An identical status changes nothing either. */
    uint64_t srv = 0;
    assert_int_equal(drv_hstore_update_status(f->s, DRV_KIND_POD, NULL, "web",
                                              json("{\"phase\":\"Running\"}"), &srv, &err),
                     DRV_OK);
    assert_int_equal(srv, rv + 1);
    uint64_t srv2 = 0;
    assert_int_equal(drv_hstore_update_status(f->s, DRV_KIND_POD, NULL, "web",
                                              json("{\"phase\":\"Running\"}"), &srv2, &err),
                     DRV_OK);
    assert_int_equal(srv2, srv);
    assert_int_equal(drv_hstore_rv(f->s), srv);
    cJSON_Delete(same);
    cJSON_Delete(p);
}

static void test_status_kept_apart(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *p = pod(NULL, "web", NULL, "nginx:1");
    create_ok(f->s, DRV_KIND_POD, p);
    assert_null(cJSON_GetObjectItemCaseSensitive(p, "status"));
    assert_int_equal(drv_hstore_update_status(
                         f->s, DRV_KIND_POD, "default", "web",
                         json("{\"phase\":\"Running\",\"podIP\":\"10.0.0.2\"}"), NULL, &err),
                     DRV_OK);
    /* An update carrying another status changes the rest, not the status. */
    cJSON_AddItemToObject(p, "status", json("{\"phase\":\"Failed\"}"));
    set_image(p, "nginx:2");
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(p, "metadata"),
                                            "resourceVersion");
    update_ok(f->s, DRV_KIND_POD, p);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(p, "status");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(st, "phase")->valuestring, "Running");
    cJSON *g = get_ok(f->s, DRV_KIND_POD, NULL, "web");
    assert_same(p, g);
    st = cJSON_GetObjectItemCaseSensitive(g, "status");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(st, "podIP")->valuestring, "10.0.0.2");
    const cJSON *c = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(g, "spec"), "containers"),
        0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(c, "image")->valuestring, "nginx:2");
    cJSON_Delete(g);
    /* update_status replaces the status whole and leaves the spec. */
    uint64_t rv = 0;
    assert_int_equal(drv_hstore_update_status(f->s, DRV_KIND_POD, "default", "web",
                                              json("{\"phase\":\"Succeeded\"}"), &rv, &err),
                     DRV_OK);
    g = get_ok(f->s, DRV_KIND_POD, NULL, "web");
    assert_int_equal(rv_of(g), rv);
    st = cJSON_GetObjectItemCaseSensitive(g, "status");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(st, "phase")->valuestring, "Succeeded");
    assert_null(cJSON_GetObjectItemCaseSensitive(st, "podIP"));
    c = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(g, "spec"), "containers"),
        0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(c, "image")->valuestring, "nginx:2");
    /* Keys stay in canonical order with the status among them. */
    char *canon = drv_model_to_json(g, false), *plain = cJSON_PrintUnformatted(g);
    assert_string_equal(canon, plain);
    free(canon);
    free(plain);
    cJSON_Delete(g);
    cJSON_Delete(p);
}

static void names_of(const cJSON *items, char *out, size_t outsz)
{
    out[0] = '\0';
    size_t len = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, items)
    {
        const char *ns = meta(o, "namespace");
        len += (size_t)snprintf(out + len, outsz - len, "%s%s/%s", len ? " " : "", ns ? ns : "",
                                meta(o, "name"));
        assert_true(len < outsz);
    }
}

static void test_list_namespaces_and_selectors(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    static const struct {
        const char *ns, *name, *labels;
    } pods[] = {
        {"b", "web-1", "{\"app\":\"web\",\"env\":\"prod\"}"},
        {"a", "web-2", "{\"app\":\"web\",\"env\":\"dev\"}"},
        {"a", "db-1", "{\"app\":\"db\"}"},
        {"a", "bare", NULL},
    };
    for (size_t i = 0; i < sizeof(pods) / sizeof(pods[0]); i++) {
        cJSON *p = pod(pods[i].ns, pods[i].name, pods[i].labels, "nginx");
        create_ok(f->s, DRV_KIND_POD, p);
        cJSON_Delete(p);
    }
    cJSON *cm = configmap("web-1", "x");
    create_ok(f->s, DRV_KIND_CONFIGMAP, cm);
    cJSON_Delete(cm);
    char names[512];
    cJSON *items = NULL;
    uint64_t rv = 0;
    assert_int_equal(drv_hstore_list(f->s, DRV_KIND_POD, NULL, NULL, &items, &rv, &err), DRV_OK);
    names_of(items, names, sizeof(names));
    assert_string_equal(names, "a/bare a/db-1 a/web-2 b/web-1");
    assert_int_equal(rv, 5);
    /* Items carry their status when they have one. */
    cJSON_Delete(items);
    assert_int_equal(drv_hstore_list(f->s, DRV_KIND_POD, "a", NULL, &items, NULL, &err), DRV_OK);
    names_of(items, names, sizeof(names));
    assert_string_equal(names, "a/bare a/db-1 a/web-2");
    cJSON_Delete(items);
    assert_int_equal(drv_hstore_list(f->s, DRV_KIND_POD, "zzz", NULL, &items, NULL, &err), DRV_OK);
    assert_int_equal(cJSON_GetArraySize(items), 0);
    cJSON_Delete(items);

    drv_selector_t sel;
    assert_int_equal(drv_selector_parse("app=web", &sel, &err), DRV_OK);
    assert_int_equal(drv_hstore_list(f->s, DRV_KIND_POD, NULL, &sel, &items, NULL, &err), DRV_OK);
    names_of(items, names, sizeof(names));
    assert_string_equal(names, "a/web-2 b/web-1");
    cJSON_Delete(items);
    assert_int_equal(drv_hstore_list(f->s, DRV_KIND_POD, "a", &sel, &items, NULL, &err), DRV_OK);
    names_of(items, names, sizeof(names));
    assert_string_equal(names, "a/web-2");
    cJSON_Delete(items);
    drv_selector_free(&sel);
    assert_int_equal(drv_selector_parse("!app", &sel, &err), DRV_OK);
    assert_int_equal(drv_hstore_list(f->s, DRV_KIND_POD, NULL, &sel, &items, NULL, &err), DRV_OK);
    names_of(items, names, sizeof(names));
    assert_string_equal(names, "a/bare");
    cJSON_Delete(items);
    drv_selector_free(&sel);
    assert_int_equal(drv_selector_parse("env in (prod,staging)", &sel, &err), DRV_OK);
    assert_int_equal(drv_hstore_list(f->s, DRV_KIND_POD, NULL, &sel, &items, NULL, &err), DRV_OK);
    names_of(items, names, sizeof(names));
    assert_string_equal(names, "b/web-1");
    cJSON_Delete(items);
    drv_selector_free(&sel);
    assert_int_equal(drv_hstore_list(f->s, DRV_KIND_SERVICE, NULL, NULL, &items, NULL, &err),
                     DRV_OK);
    assert_int_equal(cJSON_GetArraySize(items), 0);
    cJSON_Delete(items);
}

static void test_cluster_scoped_node(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *n = node("pi-1");
    create_ok(f->s, DRV_KIND_NODE, n);
    assert_null(meta(n, "namespace"));
    cJSON *g = get_ok(f->s, DRV_KIND_NODE, "ignored", "pi-1");
    assert_same(n, g);
    cJSON_Delete(g);
    cJSON *items = NULL;
    assert_int_equal(drv_hstore_list(f->s, DRV_KIND_NODE, "some-ns", NULL, &items, NULL, &err),
                     DRV_OK);
    assert_int_equal(cJSON_GetArraySize(items), 1);
    cJSON_Delete(items);
    /* The row's namespace really is "". */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT namespace FROM objects WHERE kind='Node'", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "");
    sqlite3_finalize(st);
    sqlite3_close(db);
    cJSON *again = node("pi-1");
    assert_int_equal(drv_hstore_create(f->s, DRV_KIND_NODE, again, &err), DRV_ERR_EXISTS);
    cJSON_Delete(again);
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_NODE, "x", "pi-1", NULL, &err), DRV_OK);
    cJSON_Delete(n);
}

static void test_create_with_status(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    /* The hub registers a node with the status its agent reported. */
    cJSON *n = node("pi-1");
    cJSON_AddItemToObject(n, "status", json("{\"nodeInfo\":{\"architecture\":\"arm64\"}}"));
    create_ok(f->s, DRV_KIND_NODE, n);
    cJSON *g = get_ok(f->s, DRV_KIND_NODE, NULL, "pi-1");
    assert_same(n, g);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(g, "status");
    assert_non_null(cJSON_GetObjectItemCaseSensitive(st, "nodeInfo"));
    cJSON_Delete(g);
    /* An update without a status keeps it. */
    cJSON *u = node("pi-1");
    cJSON_AddItemToObject(cJSON_GetObjectItemCaseSensitive(u, "metadata"), "labels",
                          json("{\"zone\":\"a\"}"));
    update_ok(f->s, DRV_KIND_NODE, u);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(u, "status"));
    drv_hstore_event_t *ev = NULL;
    size_t cnt = 0;
    assert_int_equal(drv_hstore_changes(f->s, 0, DRV_KIND_NODE, 10, &ev, &cnt, &err), DRV_OK);
    assert_int_equal(cnt, 2);
    assert_int_equal(ev[0].type, DRV_HSTORE_ADDED);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(ev[0].obj, "status"));
    assert_non_null(cJSON_GetObjectItemCaseSensitive(ev[1].obj, "status"));
    drv_hstore_events_free(ev, cnt);
    cJSON_Delete(u);
    cJSON_Delete(n);
}

static void test_delete(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *p = pod(NULL, "web", NULL, "nginx");
    create_ok(f->s, DRV_KIND_POD, p);
    assert_int_equal(drv_hstore_update_status(f->s, DRV_KIND_POD, NULL, "web",
                                              json("{\"phase\":\"Running\"}"), NULL, &err),
                     DRV_OK);
    cJSON *gone = NULL;
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_POD, NULL, "web", &gone, &err), DRV_OK);
    assert_non_null(gone);
    assert_string_equal(meta(gone, "uid"), meta(p, "uid"));
    assert_int_equal(rv_of(gone), 3);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(gone, "status"));
    cJSON *out = NULL;
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_POD, NULL, "web", &out, &err), DRV_ERR_NOTFOUND);
    /* The name is free again; the new object is another one. */
    cJSON *again = pod(NULL, "web", NULL, "nginx");
    create_ok(f->s, DRV_KIND_POD, again);
    assert_string_not_equal(meta(again, "uid"), meta(p, "uid"));
    assert_int_equal(gen_of(again), 1);
    assert_null(cJSON_GetObjectItemCaseSensitive(again, "status"));
    cJSON_Delete(again);
    cJSON_Delete(gone);
    cJSON_Delete(p);
}

/* drv_hstore_list_shared: one parse while nothing is written, a fresh listing after a write
 * (status included), a rolled-back batch or its end; Secrets are not shared. */
/* One page of a listing into names, with its remaining count. */
static size_t page_names(drv_hstore_t *s, const char *ns, const char *selq,
                         drv_hstore_filter_fn keep, const char *after_ns, const char *after_name,
                         size_t limit, char *names, size_t namesz)
{
    drv_error_t err = DRV_ERROR_INIT;
    drv_selector_t sel = {0};
    if (selq)
        assert_int_equal(drv_selector_parse(selq, &sel, &err), DRV_OK);
    cJSON *items = NULL;
    size_t rest = 99;
    uint64_t rv = 0;
    assert_int_equal(drv_hstore_list_page(s, DRV_KIND_POD, ns, selq ? &sel : NULL, keep, NULL,
                                          after_ns, after_name, limit, &items, &rest, &rv, &err),
                     DRV_OK);
    assert_int_equal(rv, drv_hstore_rv(s));
    names_of(items, names, namesz);
    cJSON_Delete(items);
    drv_selector_free(&sel);
    return rest;
}

static bool not_db(const cJSON *obj, void *ctx)
{
    (void)ctx;
    return strncmp(meta(obj, "name"), "db", 2) != 0;
}

/* Pages read from the index: the same objects in the same order as drv_hstore_list, after a
 * key that need not exist, with what follows counted with and without selectors. */
static void test_list_page(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *ns, *name, *labels;
    } pods[] = {
        {"b", "web-1", "{\"app\":\"web\"}"}, {"a", "web-2", "{\"app\":\"web\"}"},
        {"a", "db-1", "{\"app\":\"db\"}"},   {"a", "bare", NULL},
        {"c", "db-2", "{\"app\":\"db\"}"},   {"c", "web-3", "{\"app\":\"web\"}"},
    };
    for (size_t i = 0; i < sizeof(pods) / sizeof(pods[0]); i++) {
        cJSON *p = pod(pods[i].ns, pods[i].name, pods[i].labels, "nginx");
        create_ok(f->s, DRV_KIND_POD, p);
        cJSON_Delete(p);
    }
    char n[512];
    assert_int_equal(page_names(f->s, NULL, NULL, NULL, NULL, NULL, 0, n, sizeof(n)), 0);
    assert_string_equal(n, "a/bare a/db-1 a/web-2 b/web-1 c/db-2 c/web-3");
    assert_int_equal(page_names(f->s, NULL, NULL, NULL, NULL, NULL, 2, n, sizeof(n)), 4);
    assert_string_equal(n, "a/bare a/db-1");
    assert_int_equal(page_names(f->s, NULL, NULL, NULL, "a", "db-1", 2, n, sizeof(n)), 2);
    assert_string_equal(n, "a/web-2 b/web-1");
    /* A key that is no object (deleted since): the page starts after where it was. */
    assert_int_equal(page_names(f->s, NULL, NULL, NULL, "b", "a", 2, n, sizeof(n)), 1);
    assert_string_equal(n, "b/web-1 c/db-2");
    assert_int_equal(page_names(f->s, NULL, NULL, NULL, "c", "web-3", 2, n, sizeof(n)), 0);
    assert_string_equal(n, "");
    /* Exactly the rest: no more follow. */
    assert_int_equal(page_names(f->s, NULL, NULL, NULL, "b", "web-1", 2, n, sizeof(n)), 0);
    assert_string_equal(n, "c/db-2 c/web-3");
    /* A label selector: the page filled with matches, the rest counted from the labels. */
    assert_int_equal(page_names(f->s, NULL, "app=web", NULL, NULL, NULL, 2, n, sizeof(n)), 1);
    assert_string_equal(n, "a/web-2 b/web-1");
    assert_int_equal(page_names(f->s, NULL, "app=web", NULL, "b", "web-1", 2, n, sizeof(n)), 0);
    assert_string_equal(n, "c/web-3");
    assert_int_equal(page_names(f->s, NULL, "!app", NULL, NULL, NULL, 1, n, sizeof(n)), 0);
    assert_string_equal(n, "a/bare");
    /* A filter on the objects (the API's field selectors), with and without labels. */
    assert_int_equal(page_names(f->s, NULL, NULL, not_db, NULL, NULL, 2, n, sizeof(n)), 2);
    assert_string_equal(n, "a/bare a/web-2");
    assert_int_equal(page_names(f->s, NULL, "app", not_db, NULL, NULL, 1, n, sizeof(n)), 2);
    assert_string_equal(n, "a/web-2");
    /* One namespace; a key from another one places the page by the store's order. */
    assert_int_equal(page_names(f->s, "a", NULL, NULL, NULL, NULL, 2, n, sizeof(n)), 1);
    assert_string_equal(n, "a/bare a/db-1");
    assert_int_equal(page_names(f->s, "a", NULL, NULL, "a", "db-1", 2, n, sizeof(n)), 0);
    assert_string_equal(n, "a/web-2");
    assert_int_equal(page_names(f->s, "c", NULL, NULL, "a", "zzz", 1, n, sizeof(n)), 1);
    assert_string_equal(n, "c/db-2");
    assert_int_equal(page_names(f->s, "a", NULL, NULL, "b", "", 1, n, sizeof(n)), 0);
    assert_string_equal(n, "");
}

/* The canonical-text edits (store/canon.c) give exactly what printing the edited tree gives,
 * and refuse what is not strict compact JSON (the store then edits the tree). */
static void test_canon_edits(void **state)
{
    (void)state;
    static const char *const objs[] = {
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"generation\":3,\"labels\":"
        "{\"a\":\"x\\\"y\"},\"name\":\"p\",\"resourceVersion\":\"7\"},\"spec\":{\"c\":[1,-2.5,"
        "true,null,{\"k\":\"\\\\\"}]}}",
        "{\"metadata\":{\"generation\":1,\"resourceVersion\":\"1\"}}",
        "{\"data\":{},\"kind\":\"Secret\",\"metadata\":{\"generation\":1,\"labels\":null,"
        "\"resourceVersion\":\"12\"},\"type\":\"Opaque\",\"zz\":[]}",
        "{\"a\":\"status\",\"metadata\":{\"generation\":1,\"resourceVersion\":\"2\"},\"t\":1}",
    };
    for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++) {
        cJSON *o = json(objs[i]);
        char *canon = drv_model_to_json(o, false);
        assert_string_equal(canon, objs[i]); /* the inputs are canonical */
        cJSON *m = cJSON_GetObjectItem(o, "metadata");

        cJSON_ReplaceItemInObject(m, "resourceVersion", cJSON_CreateString("4242"));
        char *want = drv_model_to_json(o, false);
        char *got = hstore_canon_set_meta(objs[i], "resourceVersion", "\"4242\"");
        assert_non_null(got);
        assert_string_equal(got, want);
        free(got);
        free(want);

        cJSON *l = cJSON_GetObjectItem(m, "labels");
        char *lt = l ? drv_model_to_json(l, false) : strdup("");
        got = hstore_canon_meta_member(objs[i], "labels");
        assert_non_null(got);
        assert_string_equal(got, lt);
        free(got);
        free(lt);

        free(canon);
        canon = drv_model_to_json(o, false); /* with the new resourceVersion */
        cJSON *st = json("{\"phase\":\"Running\",\"x\":[{}]}");
        cJSON_AddItemToObject(o, "status", st);
        want = drv_model_to_json(o, false);
        got = hstore_canon_with(canon, "status", "{\"phase\":\"Running\",\"x\":[{}]}");
        assert_non_null(got);
        assert_string_equal(got, want);
        free(got);
        free(want);
        cJSON_DeleteItemFromObject(o, "status");

        cJSON_DeleteItemFromObject(o, "metadata");
        want = drv_model_to_json(o, false);
        got = hstore_canon_without(canon, "metadata");
        assert_non_null(got);
        assert_string_equal(got, want);
        free(got);
        free(want);
        free(canon);
        cJSON_Delete(o);
    }
    char *got = hstore_canon_with("{}", "status", "{}");
    assert_string_equal(got, "{\"status\":{}}");
    free(got);
    static const char *const bad[] = {
        "{\"oops",
        "{\"metadata\":{\"resourceVersion\":x}}",
        "{\"metadata\":{\"resourceVersion\":\"1\",}}",
        "{\"metadata\" :{\"resourceVersion\":\"1\"}}",
        "{\"metadata\":{\"resourceVersion\":\"1\"}} ",
        "{\"metadata\":{\"resourceVersion\":\"1\"},\"a\":[1 2]}",
        "{\"metadata\":{\"resourceVersion\":\"\\x\"}}",
        "{\"metadata\":{}}",
        "[]",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_null(hstore_canon_set_meta(bad[i], "resourceVersion", "\"2\""));
    /* A member already there is not added twice. */
    assert_null(hstore_canon_with("{\"status\":{}}", "status", "{}"));
}

/* The shared listing equals a fresh drv_hstore_list, printed. */
static void shared_is_fresh(drv_hstore_t *s, drv_kind_t kind)
{
    drv_error_t err = DRV_ERROR_INIT;
    const cJSON *shared = NULL;
    cJSON *fresh = NULL;
    assert_int_equal(drv_hstore_list_shared(s, kind, &shared, &err), DRV_OK);
    assert_int_equal(drv_hstore_list(s, kind, NULL, NULL, &fresh, NULL, &err), DRV_OK);
    char *a = cJSON_PrintUnformatted(shared), *b = cJSON_PrintUnformatted(fresh);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, b);
    free(a);
    free(b);
    cJSON_Delete(fresh);
}

static void put_pod(drv_hstore_t *s, const char *ns, const char *name, const char *image)
{
    cJSON *p = pod(ns, name, "{\"app\":\"x\"}", image);
    create_ok(s, DRV_KIND_POD, p);
    cJSON_Delete(p);
}

/* A shared listing kept across writes and batches is brought up to date from the change log:
 * creates before, between and after the listed objects, in other namespaces, updates of spec
 * and status, deletes of the first and last, an object made and deleted, several writes to one
 * object, other kinds' writes between, and more changes than rows (listed afresh). */
static void test_list_shared_catch_up(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    const char *names[] = {"m", "c", "x", "f", "q"};
    for (size_t i = 0; i < 5; i++) {
        put_pod(f->s, "b", names[i], "nginx");
        put_pod(f->s, "d", names[i], "nginx");
    }
    shared_is_fresh(f->s, DRV_KIND_POD);
    assert_int_equal(drv_hstore_batch_begin(f->s, &err), DRV_OK);
    put_pod(f->s, "b", "a", "nginx");  /* before the first */
    put_pod(f->s, "b", "g", "nginx");  /* between */
    put_pod(f->s, "e", "a", "nginx");  /* after the last */
    put_pod(f->s, "a", "zz", "nginx"); /* a namespace before every other */
    put_pod(f->s, "c", "t", "nginx");  /* made, then deleted */
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_POD, "c", "t", NULL, &err), DRV_OK);
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_POD, "d", "x", NULL, &err), DRV_OK);
    assert_int_equal(drv_hstore_update_status(f->s, DRV_KIND_POD, "b", "m",
                                              json("{\"phase\":\"Running\"}"), NULL, &err),
                     DRV_OK);
    assert_int_equal(drv_hstore_update_status(f->s, DRV_KIND_POD, "b", "m",
                                              json("{\"phase\":\"Failed\"}"), NULL, &err),
                     DRV_OK);
    cJSON *cm = configmap("cfg", "v");
    create_ok(f->s, DRV_KIND_CONFIGMAP, cm);
    cJSON_Delete(cm);
    cJSON *got = NULL;
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_POD, "d", "f", &got, &err), DRV_OK);
    cJSON_ReplaceItemInObjectCaseSensitive(
        cJSON_GetArrayItem(drv_json_get(drv_json_get(got, "spec"), "containers"), 0), "image",
        cJSON_CreateString("nginx:2"));
    update_ok(f->s, DRV_KIND_POD, got);
    cJSON_Delete(got);
    shared_is_fresh(f->s, DRV_KIND_POD); /* inside the batch */
    assert_int_equal(drv_hstore_batch_end(f->s, &err), DRV_OK);
    shared_is_fresh(f->s, DRV_KIND_POD); /* kept after it */
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_POD, "a", "zz", NULL, &err), DRV_OK);
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_POD, "e", "a", NULL, &err), DRV_OK);
    shared_is_fresh(f->s, DRV_KIND_POD); /* the first and the last deleted */
    /* Several neighbours deleted at once (a Deployment scaled down): each search after the
     * first compares with the ones already taken out. */
    static const char *const gone[] = {"c", "f", "g", "m", "q"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_POD, "b", gone[i], NULL, &err), DRV_OK);
    shared_is_fresh(f->s, DRV_KIND_POD);
    char name[16];
    for (int i = 0; i < 120; i++) { /* more changes than rows */
        snprintf(name, sizeof(name), "n%03d", i);
        put_pod(f->s, i % 2 ? "b" : "z", name, "nginx");
    }
    shared_is_fresh(f->s, DRV_KIND_POD);
    shared_is_fresh(f->s, DRV_KIND_CONFIGMAP);
}

struct yield_probe {
    drv_hstore_t *s;
    int calls;
    size_t pods_seen; /* the pods committed when the loop was served */
};

/* What the hub's loop does when a round gives way: its own batch (the bridge's), a write. */
static void on_yield(void *ctx)
{
    struct yield_probe *y = ctx;
    drv_error_t err = DRV_ERROR_INIT;
    y->calls++;
    assert_int_equal(drv_hstore_batch_begin(y->s, &err), DRV_OK); /* none open: committed */
    cJSON *items = NULL;
    assert_int_equal(drv_hstore_list(y->s, DRV_KIND_POD, NULL, NULL, &items, NULL, &err), DRV_OK);
    y->pods_seen = (size_t)cJSON_GetArraySize(items);
    cJSON_Delete(items);
    char name[32];
    snprintf(name, sizeof(name), "api-%d", y->calls);
    cJSON *cm = configmap(name, "v");
    create_ok(y->s, DRV_KIND_CONFIGMAP, cm);
    cJSON_Delete(cm);
    assert_int_equal(drv_hstore_batch_end(y->s, &err), DRV_OK);
}

/* drv_hstore_batch_point: nothing outside a batch or before its time; when due, the writes so
 * far are committed, the callback may open its own batch and write, and the round's batch goes
 * on after it (its writes and the callback's all kept). */
static void test_batch_yield(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    struct yield_probe y = {.s = f->s};
    assert_int_equal(drv_hstore_batch_point(f->s, &err), DRV_OK); /* no batch: nothing */
    assert_int_equal(drv_hstore_batch_begin(f->s, &err), DRV_OK);
    drv_hstore_batch_set_yield(f->s, 60000, on_yield, &y);
    put_pod(f->s, "default", "p0", "nginx");
    assert_int_equal(drv_hstore_batch_point(f->s, &err), DRV_OK);
    assert_int_equal(y.calls, 0); /* not yet due */
    drv_hstore_batch_set_yield(f->s, 1, on_yield, &y);
    char name[16];
    for (int i = 1; i <= 5; i++) {
        struct timespec ts = {0, 2 * 1000000L};
        nanosleep(&ts, NULL);
        assert_int_equal(drv_hstore_batch_point(f->s, &err), DRV_OK);
        assert_int_equal(y.calls, i);
        assert_int_equal(y.pods_seen, (size_t)i);
        snprintf(name, sizeof(name), "p%d", i);
        put_pod(f->s, "default", name, "nginx");
    }
    assert_int_equal(drv_hstore_batch_end(f->s, &err), DRV_OK);
    assert_int_equal(drv_hstore_batch_point(f->s, &err), DRV_OK); /* ended: no more */
    assert_int_equal(y.calls, 5);
    cJSON *items = NULL;
    assert_int_equal(drv_hstore_list(f->s, DRV_KIND_POD, NULL, NULL, &items, NULL, &err), DRV_OK);
    assert_int_equal(cJSON_GetArraySize(items), 6);
    cJSON_Delete(items);
    assert_int_equal(drv_hstore_list(f->s, DRV_KIND_CONFIGMAP, NULL, NULL, &items, NULL, &err),
                     DRV_OK);
    assert_int_equal(cJSON_GetArraySize(items), 5);
    cJSON_Delete(items);
    shared_is_fresh(f->s, DRV_KIND_POD);
}

static void test_list_shared(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *a = pod(NULL, "a", NULL, "nginx"), *b = pod(NULL, "b", NULL, "nginx");
    create_ok(f->s, DRV_KIND_POD, a);
    const cJSON *l1 = NULL, *l2 = NULL;
    assert_int_equal(drv_hstore_list_shared(f->s, DRV_KIND_POD, &l1, &err), DRV_OK);
    assert_int_equal(cJSON_GetArraySize(l1), 1);
    assert_int_equal(drv_hstore_list_shared(f->s, DRV_KIND_POD, &l2, &err), DRV_OK);
    assert_ptr_equal(l1, l2); /* nothing written: the same listing */
    create_ok(f->s, DRV_KIND_POD, b);
    assert_int_equal(cJSON_GetArraySize(l1), 1); /* still valid after a write ... */
    assert_int_equal(drv_hstore_list_shared(f->s, DRV_KIND_POD, &l2, &err), DRV_OK);
    assert_int_equal(cJSON_GetArraySize(l2), 2); /* ... which the next call sees */
    assert_int_equal(drv_hstore_update_status(f->s, DRV_KIND_POD, NULL, "a",
                                              json("{\"phase\":\"Running\"}"), NULL, &err),
                     DRV_OK);
    assert_int_equal(drv_hstore_list_shared(f->s, DRV_KIND_POD, &l1, &err), DRV_OK);
    assert_string_equal(drv_json_str(drv_json_get(cJSON_GetArrayItem(l1, 0), "status"), "phase"),
                        "Running");
    /* A batch rolled back: the listing made inside it is not served afterwards. */
    assert_int_equal(drv_hstore_batch_begin(f->s, &err), DRV_OK);
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_POD, NULL, "b", NULL, &err), DRV_OK);
    assert_int_equal(drv_hstore_list_shared(f->s, DRV_KIND_POD, &l1, &err), DRV_OK);
    assert_int_equal(cJSON_GetArraySize(l1), 1);
    drv_hstore_batch_abort(f->s);
    assert_int_equal(drv_hstore_list_shared(f->s, DRV_KIND_POD, &l1, &err), DRV_OK);
    assert_int_equal(cJSON_GetArraySize(l1), 2);
    assert_int_equal(drv_hstore_list_shared(f->s, DRV_KIND_SECRET, &l1, &err), DRV_ERR_INVALID);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void test_changes(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *p = pod(NULL, "web", NULL, "nginx:1");
    create_ok(f->s, DRV_KIND_POD, p); /* 1 ADDED pod */
    cJSON *c = configmap("conf", "1");
    create_ok(f->s, DRV_KIND_CONFIGMAP, c); /* 2 ADDED cm */
    set_image(p, "nginx:2");
    update_ok(f->s, DRV_KIND_POD, p); /* 3 MODIFIED pod */
    assert_int_equal(drv_hstore_update_status(f->s, DRV_KIND_POD, NULL, "web",
                                              json("{\"phase\":\"Running\"}"), NULL, &err),
                     DRV_OK); /* 4 MODIFIED pod (status) */
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_CONFIGMAP, NULL, "conf", NULL, &err),
                     DRV_OK); /* 5 DELETED cm */
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_POD, NULL, "web", NULL, &err),
                     DRV_OK); /* 6 DELETED pod */

    drv_hstore_event_t *ev = NULL;
    size_t n = 0;
    assert_int_equal(drv_hstore_changes(f->s, 0, DRV_KIND_UNKNOWN, 100, &ev, &n, &err), DRV_OK);
    assert_int_equal(n, 6);
    static const drv_hstore_change_t types[] = {DRV_HSTORE_ADDED,    DRV_HSTORE_ADDED,
                                                DRV_HSTORE_MODIFIED, DRV_HSTORE_MODIFIED,
                                                DRV_HSTORE_DELETED,  DRV_HSTORE_DELETED};
    static const drv_kind_t kinds[] = {DRV_KIND_POD, DRV_KIND_CONFIGMAP, DRV_KIND_POD,
                                       DRV_KIND_POD, DRV_KIND_CONFIGMAP, DRV_KIND_POD};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ev[i].rv, i + 1);
        assert_int_equal(ev[i].type, types[i]);
        assert_int_equal(ev[i].kind, kinds[i]);
        assert_int_equal(rv_of(ev[i].obj), i + 1); /* the object as it then was */
    }
    /* The status change carries the status; the spec change the new image. */
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(ev[3].obj, "status");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(st, "phase")->valuestring, "Running");
    assert_null(cJSON_GetObjectItemCaseSensitive(ev[0].obj, "status"));
    assert_int_equal(gen_of(ev[2].obj), 2);
    assert_string_equal(drv_hstore_change_name(ev[4].type), "DELETED");
    drv_hstore_events_free(ev, n);

    assert_int_equal(drv_hstore_changes(f->s, 3, DRV_KIND_UNKNOWN, 100, &ev, &n, &err), DRV_OK);
    assert_int_equal(n, 3);
    assert_int_equal(ev[0].rv, 4);
    drv_hstore_events_free(ev, n);
    assert_int_equal(drv_hstore_changes(f->s, 0, DRV_KIND_CONFIGMAP, 100, &ev, &n, &err), DRV_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ev[0].rv, 2);
    assert_int_equal(ev[1].rv, 5);
    assert_int_equal(ev[1].type, DRV_HSTORE_DELETED);
    drv_hstore_events_free(ev, n);
    assert_int_equal(drv_hstore_changes(f->s, 1, DRV_KIND_POD, 2, &ev, &n, &err), DRV_OK);
    assert_int_equal(n, 2); /* at most max */
    assert_int_equal(ev[0].rv, 3);
    assert_int_equal(ev[1].rv, 4);
    drv_hstore_events_free(ev, n);
    assert_int_equal(drv_hstore_changes(f->s, 6, DRV_KIND_UNKNOWN, 100, &ev, &n, &err), DRV_OK);
    assert_int_equal(n, 0);
    assert_null(ev);
    assert_int_equal(drv_hstore_changes(f->s, 0, DRV_KIND_SECRET, 100, &ev, &n, &err), DRV_OK);
    assert_int_equal(n, 0);
    drv_hstore_events_free(ev, n);
    /* From the future (a store that lost its last transactions): list again. */
    assert_int_equal(drv_hstore_changes(f->s, 7, DRV_KIND_UNKNOWN, 100, &ev, &n, &err),
                     DRV_ERR_RANGE);
    assert_string_equal(drv_hstore_change_name(DRV_HSTORE_ADDED), "ADDED");
    assert_string_equal(drv_hstore_change_name(DRV_HSTORE_MODIFIED), "MODIFIED");
    cJSON_Delete(c);
    cJSON_Delete(p);
}

static void test_pruning(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    drv_hstore_set_log_keep(f->s, 10);
    for (int i = 0; i < 30; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        cJSON *c = configmap("c", v);
        if (i == 0)
            create_ok(f->s, DRV_KIND_CONFIGMAP, c);
        else
            update_ok(f->s, DRV_KIND_CONFIGMAP, c);
        cJSON_Delete(c);
    }
    assert_int_equal(drv_hstore_rv(f->s), 30);
    drv_hstore_event_t *ev = NULL;
    size_t n = 0;
    assert_int_equal(drv_hstore_changes(f->s, 0, DRV_KIND_UNKNOWN, 100, &ev, &n, &err),
                     DRV_ERR_RANGE);
    assert_non_null(strstr(drv_error_msg(&err), "too old"));
    assert_int_equal(drv_hstore_changes(f->s, 19, DRV_KIND_CONFIGMAP, 100, &ev, &n, &err),
                     DRV_ERR_RANGE);
    assert_int_equal(drv_hstore_changes(f->s, 20, DRV_KIND_UNKNOWN, 100, &ev, &n, &err), DRV_OK);
    assert_int_equal(n, 10);
    assert_int_equal(ev[0].rv, 21);
    assert_int_equal(ev[9].rv, 30);
    drv_hstore_events_free(ev, n);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM changes", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 10);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_reopen(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *p = pod("ns1", "web", "{\"app\":\"web\"}", "nginx");
    create_ok(f->s, DRV_KIND_POD, p);
    assert_int_equal(drv_hstore_update_status(f->s, DRV_KIND_POD, "ns1", "web",
                                              json("{\"phase\":\"Running\"}"), NULL, &err),
                     DRV_OK);
    cJSON *before = get_ok(f->s, DRV_KIND_POD, "ns1", "web");
    drv_hstore_close(f->s);
    f->s = NULL;
    assert_int_equal(drv_hstore_open(f->path, &f->s, &err), DRV_OK);
    assert_int_equal(drv_hstore_rv(f->s), 2);
    cJSON *after = get_ok(f->s, DRV_KIND_POD, "ns1", "web");
    assert_same(before, after);
    cJSON *c = configmap("c", "v");
    create_ok(f->s, DRV_KIND_CONFIGMAP, c);
    assert_int_equal(rv_of(c), 3);
    drv_hstore_event_t *ev = NULL;
    size_t n = 0;
    assert_int_equal(drv_hstore_changes(f->s, 0, DRV_KIND_UNKNOWN, 100, &ev, &n, &err), DRV_OK);
    assert_int_equal(n, 3);
    drv_hstore_events_free(ev, n);
    cJSON_Delete(c);
    cJSON_Delete(after);
    cJSON_Delete(before);
    cJSON_Delete(p);
}

static void exec_on(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

static void test_newer_schema_refused(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    drv_hstore_close(f->s);
    f->s = NULL;
    exec_on(f->path, "UPDATE meta SET value = 99 WHERE key = 'schema_version'");
    drv_hstore_t *s = NULL;
    assert_int_equal(drv_hstore_open(f->path, &s, &err), DRV_ERR_UNSUPPORTED);
    assert_null(s);
    assert_non_null(strstr(drv_error_msg(&err), "99"));
    assert_non_null(strstr(drv_error_msg(&err), "newer"));
    /* Back to ours: it opens again (nothing was changed by the refusal). */
    char sql[96];
    snprintf(sql, sizeof(sql), "UPDATE meta SET value = %d WHERE key = 'schema_version'",
             DRV_HSTORE_SCHEMA_VERSION);
    exec_on(f->path, sql);
    assert_int_equal(drv_hstore_open(f->path, &f->s, &err), DRV_OK);
}

static void test_foreign_files_refused(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    char path[160];
    snprintf(path, sizeof(path), "%s/garbage.db", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 512; i++)
        fputs("this is not a database at all. ", fp);
    fclose(fp);
    drv_hstore_t *s = NULL;
    assert_int_equal(drv_hstore_open(path, &s, &err), DRV_ERR_INVALID);
    assert_null(s);
    assert_non_null(strstr(drv_error_msg(&err), "garbage.db"));
    assert_non_null(strstr(drv_error_msg(&err), "not a Drover hub store"));
    /* An SQLite database of something else. */
    snprintf(path, sizeof(path), "%s/other.db", f->dir);
    exec_on(path, "CREATE TABLE t (x)");
    drv_error_clear(&err);
    assert_int_equal(drv_hstore_open(path, &s, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "not a Drover hub store"));
    /* A directory where the file should be. */
    assert_int_equal(drv_hstore_open(f->dir, &s, &err), DRV_ERR_IO);
    assert_int_equal(drv_hstore_open("", &s, &err), DRV_ERR_INVALID);
}

static void test_corrupt_row(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *a = pod(NULL, "a", NULL, "nginx"), *b = pod(NULL, "b", NULL, "nginx");
    create_ok(f->s, DRV_KIND_POD, a);
    create_ok(f->s, DRV_KIND_POD, b);
    exec_on(f->path, "UPDATE objects SET body = '{\"oops' WHERE name = 'a';"
                     "UPDATE objects SET status = 'nope' WHERE name = 'b'");
    cJSON *out = NULL;
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_POD, NULL, "a", &out, &err), DRV_ERR_IO);
    assert_null(out);
    assert_non_null(strstr(drv_error_msg(&err), "Pod default/a"));
    assert_non_null(strstr(drv_error_msg(&err), "corrupt"));
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_POD, NULL, "b", &out, &err), DRV_ERR_IO);
    assert_non_null(strstr(drv_error_msg(&err), "status"));
    assert_int_equal(drv_hstore_update(f->s, DRV_KIND_POD, a, &err), DRV_ERR_IO);
    cJSON *c = pod(NULL, "c", NULL, "nginx");
    create_ok(f->s, DRV_KIND_POD, c);
    /* The list skips the bad rows and still answers. */
    FILE *log = tmpfile();
    drv_log_set_stream(log);
    cJSON *items = NULL;
    assert_int_equal(drv_hstore_list(f->s, DRV_KIND_POD, NULL, NULL, &items, NULL, &err), DRV_OK);
    drv_log_set_stream(NULL);
    fclose(log);
    assert_int_equal(cJSON_GetArraySize(items), 1);
    assert_string_equal(meta(cJSON_GetArrayItem(items, 0), "name"), "c");
    cJSON_Delete(items);
    /* A bad change-log entry is skipped too; the watch goes on with the others. */
    exec_on(f->path, "UPDATE changes SET body = 'x' WHERE rv = 1;"
                     "UPDATE changes SET type = 'EXPLODED' WHERE rv = 2");
    drv_hstore_event_t *ev = NULL;
    size_t n = 0;
    log = tmpfile();
    drv_log_set_stream(log);
    assert_int_equal(drv_hstore_changes(f->s, 0, DRV_KIND_POD, 100, &ev, &n, &err), DRV_OK);
    drv_log_set_stream(NULL);
    fclose(log);
    assert_int_equal(n, 1);
    assert_int_equal(ev[0].rv, 3);
    drv_hstore_events_free(ev, n);
    /* And the bad row can be deleted. */
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_POD, NULL, "a", &out, &err), DRV_OK);
    assert_null(out);
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_POD, NULL, "a", &out, &err), DRV_ERR_NOTFOUND);
    cJSON_Delete(c);
    cJSON_Delete(b);
    cJSON_Delete(a);
}

static void test_too_big(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    size_t big = DRV_HSTORE_OBJECT_MAX + 16;
    char *v = malloc(big + 1);
    memset(v, 'x', big);
    v[big] = '\0';
    cJSON *cm =
        json("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"big\"}}");
    cJSON_AddItemToObject(cm, "data", cJSON_CreateObject());
    cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(cm, "data"), "k", v);
    assert_int_equal(drv_hstore_create(f->s, DRV_KIND_CONFIGMAP, cm, &err), DRV_ERR_TOOBIG);
    assert_non_null(strstr(drv_error_msg(&err), "big"));
    assert_int_equal(drv_hstore_rv(f->s), 0);
    cJSON *small = configmap("big", "y");
    create_ok(f->s, DRV_KIND_CONFIGMAP, small);
    assert_int_equal(drv_hstore_update(f->s, DRV_KIND_CONFIGMAP, cm, &err), DRV_ERR_TOOBIG);
    cJSON *status = cJSON_CreateObject();
    cJSON_AddStringToObject(status, "blob", v);
    assert_int_equal(
        drv_hstore_update_status(f->s, DRV_KIND_CONFIGMAP, NULL, "big", status, NULL, &err),
        DRV_ERR_TOOBIG);
    assert_int_equal(drv_hstore_rv(f->s), 1);
    cJSON *g = get_ok(f->s, DRV_KIND_CONFIGMAP, NULL, "big");
    assert_same(small, g);
    cJSON_Delete(g);
    cJSON_Delete(small);
    cJSON_Delete(cm);
    free(v);
}

static void test_wal_mode_and_permissions(void **state)
{
    struct fx *f = *state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema_version'", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), DRV_HSTORE_SCHEMA_VERSION);
    sqlite3_finalize(st);
    sqlite3_close(db);
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600); /* it holds Secrets */
}

/* A database written by a version-1 hub (objects, change log, no tokens table) opens: it is
 * migrated to the current version in place, its objects and resourceVersion kept. */
static void test_v1_database_migrates(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    char path[160];
    snprintf(path, sizeof(path), "%s/v1.db", f->dir);
    exec_on(path, "PRAGMA journal_mode = WAL;"
                  "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
                  "INSERT INTO meta (key, value) VALUES ('rv', 7);"
                  "INSERT INTO meta (key, value) VALUES ('schema_version', 1);"
                  "CREATE TABLE objects ("
                  " kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,"
                  " uid TEXT NOT NULL, rv INTEGER NOT NULL, generation INTEGER NOT NULL,"
                  " created TEXT NOT NULL, body TEXT NOT NULL, status TEXT, labels TEXT,"
                  " PRIMARY KEY (kind, namespace, name));"
                  "CREATE TABLE changes ("
                  " rv INTEGER PRIMARY KEY, kind TEXT NOT NULL, namespace TEXT NOT NULL,"
                  " name TEXT NOT NULL, type TEXT NOT NULL, body TEXT NOT NULL);"
                  "CREATE INDEX changes_by_kind ON changes (kind, rv);"
                  "INSERT INTO objects VALUES ('ConfigMap', 'default', 'old',"
                  " '0b7c3c8e-1111-4222-8333-444455556666', 7, 1, '2026-01-01T00:00:00Z',"
                  " '{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
                  "{\"name\":\"old\",\"namespace\":\"default\"},\"data\":{\"k\":\"v\"}}',"
                  " NULL, '{}');"
                  "INSERT INTO changes VALUES (7, 'ConfigMap', 'default', 'old', 'ADDED',"
                  " '{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
                  "{\"name\":\"old\",\"namespace\":\"default\"}}');");
    drv_hstore_t *s = NULL;
    if (drv_hstore_open(path, &s, &err) != DRV_OK)
        fail_msg("open v1: %s", drv_error_msg(&err));
    assert_int_equal(drv_hstore_rv(s), 7);
    cJSON *cm = get_ok(s, DRV_KIND_CONFIGMAP, "default", "old");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cm, "data"), "k")->valuestring,
                        "v");
    cJSON_Delete(cm);
    /* The new table works, and the version is recorded. */
    drv_hstore_token_t t = {.id = "abcd0123", .kind = "api", .role = "viewer", .created = 5};
    assert_int_equal(drv_hstore_token_add(s, &t, &err), DRV_OK);
    drv_hstore_close(s);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema_version'", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), DRV_HSTORE_SCHEMA_VERSION);
    sqlite3_finalize(st);
    sqlite3_close(db);
    /* Reopened (no migration left to run), the token is still there. */
    assert_int_equal(drv_hstore_open(path, &s, &err), DRV_OK);
    drv_hstore_token_t g;
    assert_int_equal(drv_hstore_token_get(s, "abcd0123", &g, &err), DRV_OK);
    assert_string_equal(g.role, "viewer");
    drv_hstore_close(s);
}

static void test_tokens(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    drv_hstore_token_t t = {.id = "00aa11bb",
                            .kind = "bootstrap",
                            .description = "flash batch 3",
                            .created = 100,
                            .expires = 200,
                            .uses_left = 2,
                            .labels = "{\"site\":\"a\"}"};
    memset(t.hash, 0x5a, sizeof(t.hash));
    uint64_t rv = drv_hstore_rv(f->s);
    assert_int_equal(drv_hstore_token_add(f->s, &t, &err), DRV_OK);
    assert_int_equal(drv_hstore_rv(f->s), rv); /* not an object: no resourceVersion */
    assert_int_equal(drv_hstore_token_add(f->s, &t, &err), DRV_ERR_EXISTS);
    drv_hstore_token_t bad = t;
    bad.id[0] = '\0';
    assert_int_equal(drv_hstore_token_add(f->s, &bad, &err), DRV_ERR_INVALID);
    drv_hstore_token_t g;
    assert_int_equal(drv_hstore_token_get(f->s, "00aa11bb", &g, &err), DRV_OK);
    assert_memory_equal(g.hash, t.hash, sizeof(t.hash));
    assert_string_equal(g.kind, "bootstrap");
    assert_string_equal(g.description, "flash batch 3");
    assert_string_equal(g.labels, "{\"site\":\"a\"}");
    assert_int_equal(g.expires, 200);
    assert_false(g.revoked);
    assert_int_equal(drv_hstore_token_get(f->s, "nope", &g, &err), DRV_ERR_NOTFOUND);
    /* Uses run out. */
    assert_int_equal(drv_hstore_token_use(f->s, "00aa11bb", &err), DRV_OK);
    assert_int_equal(drv_hstore_token_use(f->s, "00aa11bb", &err), DRV_OK);
    assert_int_equal(drv_hstore_token_use(f->s, "00aa11bb", &err), DRV_ERR_PERM);
    assert_int_equal(drv_hstore_token_get(f->s, "00aa11bb", &g, &err), DRV_OK);
    assert_int_equal(g.uses_left, 0);
    /* Revoke, twice, and an unknown one. */
    assert_int_equal(drv_hstore_token_revoke(f->s, "00aa11bb", &err), DRV_OK);
    assert_int_equal(drv_hstore_token_revoke(f->s, "00aa11bb", &err), DRV_OK);
    assert_int_equal(drv_hstore_token_revoke(f->s, "ffffffff", &err), DRV_ERR_NOTFOUND);
    drv_hstore_token_t t2 = {.id = "22cc33dd", .kind = "api", .role = "admin", .created = 150};
    assert_int_equal(drv_hstore_token_add(f->s, &t2, &err), DRV_OK);
    drv_hstore_token_t *all = NULL;
    size_t n = 0;
    assert_int_equal(drv_hstore_token_list(f->s, &all, &n, &err), DRV_OK);
    assert_int_equal(n, 2);
    assert_string_equal(all[0].id, "00aa11bb");
    assert_true(all[0].revoked);
    assert_string_equal(all[1].role, "admin");
    free(all);
    /* Purge: the revoked one and an expired one go, the live ones stay. */
    drv_hstore_token_t t3 = {.id = "44ee55ff", .kind = "api", .role = "viewer", .expires = 300};
    drv_hstore_token_t t4 = {.id = "66aa77bb", .kind = "api", .role = "viewer", .expires = 900};
    assert_int_equal(drv_hstore_token_add(f->s, &t3, &err), DRV_OK);
    assert_int_equal(drv_hstore_token_add(f->s, &t4, &err), DRV_OK);
    size_t purged = 0;
    assert_int_equal(drv_hstore_token_purge(f->s, 300, &purged, &err), DRV_OK);
    assert_int_equal(purged, 2);
    assert_int_equal(drv_hstore_token_get(f->s, "00aa11bb", &g, &err), DRV_ERR_NOTFOUND);
    assert_int_equal(drv_hstore_token_get(f->s, "44ee55ff", &g, &err), DRV_ERR_NOTFOUND);
    assert_int_equal(drv_hstore_token_get(f->s, "22cc33dd", &g, &err), DRV_OK);
    assert_int_equal(drv_hstore_token_get(f->s, "66aa77bb", &g, &err), DRV_OK);
}

/* Node identities (schema 3): put/get round trip, re-issue replaces the certificate but keeps
 * created, revoke keeps the row (the name stays taken), delete frees it, invalid rows refused,
 * and a version-2 database (tokens, no identities) migrates and gets the table. */
static void test_identities(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    drv_hstore_identity_t id = {.node = "dev-a",
                                .pubkey = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC "
                                          "KEY-----\n",
                                .serial = "0a1b2c",
                                .not_after = 5000,
                                .created = 1000};
    uint64_t rv = drv_hstore_rv(f->s);
    drv_hstore_identity_t g;
    assert_int_equal(drv_hstore_identity_get(f->s, "dev-a", &g, &err), DRV_ERR_NOTFOUND);
    assert_int_equal(drv_hstore_identity_put(f->s, &id, &err), DRV_OK);
    assert_int_equal(drv_hstore_rv(f->s), rv); /* not an object */
    assert_int_equal(drv_hstore_identity_get(f->s, "dev-a", &g, &err), DRV_OK);
    assert_string_equal(g.node, "dev-a");
    assert_string_equal(g.pubkey, id.pubkey);
    assert_string_equal(g.serial, "0a1b2c");
    assert_int_equal(g.not_after, 5000);
    assert_int_equal(g.created, 1000);
    assert_false(g.revoked);
    /* Re-issued: new serial and expiry, created kept. */
    drv_hstore_identity_t re = id;
    snprintf(re.serial, sizeof(re.serial), "ffee");
    re.not_after = 9000;
    re.created = 8000;
    assert_int_equal(drv_hstore_identity_put(f->s, &re, &err), DRV_OK);
    assert_int_equal(drv_hstore_identity_get(f->s, "dev-a", &g, &err), DRV_OK);
    assert_string_equal(g.serial, "ffee");
    assert_int_equal(g.not_after, 9000);
    assert_int_equal(g.created, 1000);
    /* Invalid rows name the field. */
    drv_hstore_identity_t bad = id;
    bad.node[0] = '\0';
    assert_int_equal(drv_hstore_identity_put(f->s, &bad, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "node"));
    bad = id;
    bad.pubkey[0] = '\0';
    assert_int_equal(drv_hstore_identity_put(f->s, &bad, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "pubkey"));
    bad = id;
    bad.serial[0] = '\0';
    assert_int_equal(drv_hstore_identity_put(f->s, &bad, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "serial"));
    bad = id;
    memset(bad.serial, 'a', sizeof(bad.serial)); /* no terminator */
    assert_int_equal(drv_hstore_identity_put(f->s, &bad, &err), DRV_ERR_INVALID);
    /* A second node; the list is ordered by name. */
    drv_hstore_identity_t b = id;
    snprintf(b.node, sizeof(b.node), "dev-0");
    assert_int_equal(drv_hstore_identity_put(f->s, &b, &err), DRV_OK);
    drv_hstore_identity_t *all = NULL;
    size_t n = 0;
    assert_int_equal(drv_hstore_identity_list(f->s, &all, &n, &err), DRV_OK);
    assert_int_equal(n, 2);
    assert_string_equal(all[0].node, "dev-0");
    assert_string_equal(all[1].node, "dev-a");
    free(all);
    /* Revoke: kept, marked; twice is fine; unknown is NOTFOUND. */
    assert_int_equal(drv_hstore_identity_revoke(f->s, "dev-a", &err), DRV_OK);
    assert_int_equal(drv_hstore_identity_revoke(f->s, "dev-a", &err), DRV_OK);
    assert_int_equal(drv_hstore_identity_revoke(f->s, "dev-z", &err), DRV_ERR_NOTFOUND);
    assert_int_equal(drv_hstore_identity_get(f->s, "dev-a", &g, &err), DRV_OK);
    assert_true(g.revoked);
    /* Survives a reopen. */
    drv_hstore_close(f->s);
    assert_int_equal(drv_hstore_open(f->path, &f->s, &err), DRV_OK);
    assert_int_equal(drv_hstore_identity_get(f->s, "dev-a", &g, &err), DRV_OK);
    assert_true(g.revoked);
    assert_string_equal(g.serial, "ffee");
    /* Delete frees the name. */
    assert_int_equal(drv_hstore_identity_delete(f->s, "dev-a", &err), DRV_OK);
    assert_int_equal(drv_hstore_identity_delete(f->s, "dev-a", &err), DRV_ERR_NOTFOUND);
    assert_int_equal(drv_hstore_identity_get(f->s, "dev-a", &g, &err), DRV_ERR_NOTFOUND);
    assert_int_equal(drv_hstore_identity_list(f->s, &all, &n, &err), DRV_OK);
    assert_int_equal(n, 1);
    free(all);
}

/* A version-2 database (tokens, no identities table) migrates to 3 and keeps its tokens. */
static void test_v2_database_migrates(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    char path[160];
    snprintf(path, sizeof(path), "%s/v2.db", f->dir);
    exec_on(path, "PRAGMA journal_mode = WAL;"
                  "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
                  "INSERT INTO meta (key, value) VALUES ('rv', 3);"
                  "INSERT INTO meta (key, value) VALUES ('schema_version', 2);"
                  "CREATE TABLE objects ("
                  " kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,"
                  " uid TEXT NOT NULL, rv INTEGER NOT NULL, generation INTEGER NOT NULL,"
                  " created TEXT NOT NULL, body TEXT NOT NULL, status TEXT, labels TEXT,"
                  " PRIMARY KEY (kind, namespace, name));"
                  "CREATE TABLE changes ("
                  " rv INTEGER PRIMARY KEY, kind TEXT NOT NULL, namespace TEXT NOT NULL,"
                  " name TEXT NOT NULL, type TEXT NOT NULL, body TEXT NOT NULL);"
                  "CREATE INDEX changes_by_kind ON changes (kind, rv);"
                  "CREATE TABLE tokens ("
                  " id TEXT PRIMARY KEY, kind TEXT NOT NULL, role TEXT NOT NULL,"
                  " hash BLOB NOT NULL, description TEXT NOT NULL DEFAULT '',"
                  " created INTEGER NOT NULL, expires INTEGER NOT NULL DEFAULT 0,"
                  " revoked INTEGER NOT NULL DEFAULT 0, uses_left INTEGER NOT NULL DEFAULT -1,"
                  " labels TEXT NOT NULL DEFAULT '{}');"
                  "INSERT INTO tokens (id, kind, role, hash, created) VALUES"
                  " ('abcd0123', 'bootstrap', '', x'00', 5);");
    drv_hstore_t *s = NULL;
    if (drv_hstore_open(path, &s, &err) != DRV_OK)
        fail_msg("open v2: %s", drv_error_msg(&err));
    assert_int_equal(drv_hstore_rv(s), 3);
    drv_hstore_token_t t;
    assert_int_equal(drv_hstore_token_get(s, "abcd0123", &t, &err), DRV_OK);
    assert_string_equal(t.kind, "bootstrap");
    drv_hstore_identity_t id = {.node = "n1", .pubkey = "k", .serial = "01", .created = 1};
    assert_int_equal(drv_hstore_identity_put(s, &id, &err), DRV_OK);
    drv_hstore_close(s);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema_version'", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 3);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_bulk_creates(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *tpl = pod(NULL, "x", "{\"app\":\"bulk\"}", "registry.local/app:1");
    double t0 = now_s();
    for (int i = 0; i < 2000; i++) {
        cJSON *p = cJSON_Duplicate(tpl, true);
        char name[32];
        snprintf(name, sizeof(name), "pod-%04d", i);
        cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(p, "metadata"),
                                               "name", cJSON_CreateString(name));
        if (drv_hstore_create(f->s, DRV_KIND_POD, p, &err) != DRV_OK)
            fail_msg("create %s: %s", name, drv_error_msg(&err));
        cJSON_Delete(p);
    }
    double dt = now_s() - t0;
    printf("hub store: 2000 creates (one transaction each) in %.3f s: %.0f/s\n", dt, 2000 / dt);
    double factor = 1;
    const char *tf = getenv("DROVER_TEST_TIME_FACTOR");
    if (tf && *tf) {
        char *end = NULL;
        errno = 0;
        double v = strtod(tf, &end);
        if (errno == 0 && *end == '\0' && v >= 1)
            factor = v;
    }
    assert_true(dt < 3.0 * factor);
    cJSON *items = NULL;
    t0 = now_s();
    assert_int_equal(drv_hstore_list(f->s, DRV_KIND_POD, NULL, NULL, &items, NULL, &err), DRV_OK);
    printf("hub store: list of 2000 pods in %.3f s\n", now_s() - t0);
    assert_int_equal(cJSON_GetArraySize(items), 2000);
    cJSON_Delete(items);
    cJSON_Delete(tpl);
}

/* A batch: one transaction for many writes; a failing write inside it leaves the others; the
 * writes survive a reopen once the batch ends; a batch does not nest. */
static void test_batch(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_batch_begin(f->s, &err), DRV_OK);
    assert_int_equal(drv_hstore_batch_begin(f->s, &err), DRV_ERR_INVALID);
    cJSON *tpl = pod(NULL, "x", "{\"app\":\"batch\"}", "registry.local/app:1");
    double t0 = now_s();
    for (int i = 0; i < 2000; i++) {
        cJSON *p = cJSON_Duplicate(tpl, true);
        char name[32];
        snprintf(name, sizeof(name), "pod-%04d", i % 1999); /* the last one clashes */
        cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(p, "metadata"),
                                               "name", cJSON_CreateString(name));
        drv_err_t e = drv_hstore_create(f->s, DRV_KIND_POD, p, &err);
        assert_int_equal(e, i < 1999 ? DRV_OK : DRV_ERR_EXISTS);
        cJSON_Delete(p);
    }
    uint64_t rv = drv_hstore_rv(f->s);
    assert_int_equal(drv_hstore_batch_end(f->s, &err), DRV_OK);
    printf("hub store: 2000 creates in one batch in %.3f s\n", now_s() - t0);
    assert_int_equal(drv_hstore_batch_end(f->s, &err), DRV_OK); /* none open: nothing to do */
    drv_hstore_close(f->s);
    f->s = NULL;
    assert_int_equal(drv_hstore_open(f->path, &f->s, &err), DRV_OK);
    assert_int_equal(drv_hstore_rv(f->s), rv);
    cJSON *items = NULL;
    assert_int_equal(drv_hstore_list(f->s, DRV_KIND_POD, NULL, NULL, &items, NULL, &err), DRV_OK);
    assert_int_equal(cJSON_GetArraySize(items), 1999);
    cJSON_Delete(items);
    cJSON_Delete(tpl);
}

/* ---- Secrets encrypted at rest ---- */

#define SECRET_PLAIN "hunter2-QZX-7731-distinct"
#define SECRET_B64 "aHVudGVyMi1RWlgtNzczMS1kaXN0aW5jdA==" /* base64 of SECRET_PLAIN */
#define SECRET_PLAIN2 "swordfish-KJH-4402-other"

static cJSON *secret(const char *name, const char *plain)
{
    char buf[512];
    snprintf(
        buf, sizeof(buf),
        "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"%s\","
        "\"labels\":{\"app\":\"web\"}},\"type\":\"Opaque\",\"stringData\":{\"password\":\"%s\"}}",
        name, plain);
    return normalized(buf);
}

static drv_hstore_key_t test_key(const char *id, unsigned char fill)
{
    drv_hstore_key_t k;
    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "%s", id);
    memset(k.key, fill, sizeof(k.key));
    return k;
}

static void set_keys_ok(drv_hstore_t *s, const drv_hstore_key_t *keys, size_t n)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_set_keys(s, keys, n, &err) != DRV_OK)
        fail_msg("set keys: %s", drv_error_msg(&err));
}

/* The password of a Secret as the store hands it back (base64 under data). */
static const char *password(const cJSON *o)
{
    const cJSON *v =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "data"), "password");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* true if the bytes of the file at path contain needle; a missing file contains nothing. */
static bool file_has(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return false;
    size_t cap = 1 << 20, len = 0, k;
    char *buf = malloc(cap);
    assert_non_null(buf);
    while ((k = fread(buf + len, 1, cap - len, fp)) > 0) {
        len += k;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(fp);
    bool found = memmem(buf, len, needle, strlen(needle)) != NULL;
    free(buf);
    return found;
}

static void assert_nowhere_on_disk(const struct fx *f, const char *needle)
{
    char p[160];
    assert_false(file_has(f->path, needle));
    snprintf(p, sizeof(p), "%s-wal", f->path);
    assert_false(file_has(p, needle));
    snprintf(p, sizeof(p), "%s-shm", f->path);
    assert_false(file_has(p, needle));
}

/* Counts rows of a query's single text column containing needle (NULL: all rows). */
static int count_rows(const char *path, const char *sql, const char *needle)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (!needle || (t && strstr(t, needle)))
            n++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void test_secret_sealed_round_trip(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    drv_hstore_key_t k1 = test_key("k1", 0x11);
    set_keys_ok(f->s, &k1, 1);
    cJSON *a = secret("db-pass", SECRET_PLAIN);
    create_ok(f->s, DRV_KIND_SECRET, a);
    assert_string_equal(password(a), SECRET_B64);
    cJSON *out = NULL;
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_SECRET, NULL, "db-pass", &out, &err), DRV_OK);
    assert_same(out, a);
    cJSON_Delete(out);
    /* Storing the same object again changes nothing (no new resourceVersion). */
    uint64_t rv = drv_hstore_rv(f->s);
    update_ok(f->s, DRV_KIND_SECRET, a);
    assert_int_equal(drv_hstore_rv(f->s), rv);
    assert_string_equal(password(a), SECRET_B64);
    /* A real change; a status write keeps the data. */
    cJSON *b = secret("db-pass", SECRET_PLAIN2);
    update_ok(f->s, DRV_KIND_SECRET, b);
    assert_int_equal(gen_of(b), 2);
    assert_int_equal(drv_hstore_update_status(f->s, DRV_KIND_SECRET, NULL, "db-pass",
                                              json("{\"note\":\"x\"}"), NULL, &err),
                     DRV_OK);
    cJSON *items = NULL;
    assert_int_equal(drv_hstore_list(f->s, DRV_KIND_SECRET, NULL, NULL, &items, NULL, &err),
                     DRV_OK);
    assert_int_equal(cJSON_GetArraySize(items), 1);
    assert_string_equal(password(cJSON_GetArrayItem(items, 0)), password(b));
    cJSON_Delete(items);
    /* The watch sees plain objects: ADDED with the first value, MODIFIED with the second. */
    drv_hstore_event_t *ev = NULL;
    size_t n = 0;
    assert_int_equal(drv_hstore_changes(f->s, 0, DRV_KIND_SECRET, 100, &ev, &n, &err), DRV_OK);
    assert_int_equal(n, 3);
    assert_string_equal(password(ev[0].obj), SECRET_B64);
    assert_string_equal(password(ev[1].obj), password(b));
    assert_string_equal(password(ev[2].obj), password(b));
    drv_hstore_events_free(ev, n);
    /* On disk: sealed in the row and in every change-log entry; the rest stays readable. */
    assert_int_equal(count_rows(f->path, "SELECT body FROM objects", "\"drover.sealed\":\"k1:"), 1);
    assert_int_equal(count_rows(f->path, "SELECT body FROM changes", "\"drover.sealed\":\"k1:"), 3);
    assert_int_equal(count_rows(f->path, "SELECT body FROM objects", "\"db-pass\""), 1);
    assert_int_equal(count_rows(f->path, "SELECT body FROM changes", "\"data\""), 0);
    assert_nowhere_on_disk(f, SECRET_PLAIN);
    assert_nowhere_on_disk(f, SECRET_B64);
    assert_nowhere_on_disk(f, password(b));
    /* After a checkpoint too, and after a delete (whose log entry is sealed as well). */
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_SECRET, NULL, "db-pass", &out, &err), DRV_OK);
    assert_string_equal(password(out), password(b));
    cJSON_Delete(out);
    exec_on(f->path, "PRAGMA wal_checkpoint(TRUNCATE)");
    assert_nowhere_on_disk(f, SECRET_B64);
    assert_nowhere_on_disk(f, password(b));
    assert_int_equal(count_rows(f->path, "SELECT body FROM changes", "\"drover.sealed\":\"k1:"), 4);
    /* Other kinds are not touched. */
    cJSON *cm = configmap("plain", "visible-value");
    create_ok(f->s, DRV_KIND_CONFIGMAP, cm);
    assert_int_equal(count_rows(f->path, "SELECT body FROM objects", "visible-value"), 1);
    cJSON_Delete(cm);
    cJSON_Delete(b);
    cJSON_Delete(a);
}

static void test_secret_without_keys_plain(void **state)
{
    struct fx *f = *state;
    cJSON *a = secret("a", SECRET_PLAIN);
    create_ok(f->s, DRV_KIND_SECRET, a);
    /* No keys: stored as plain JSON, as before encryption existed. */
    assert_int_equal(count_rows(f->path, "SELECT body FROM objects", SECRET_B64), 1);
    /* Keys set later: the plain row still reads, and drv_hstore_reseal seals it. */
    drv_hstore_key_t k1 = test_key("k1", 0x11);
    set_keys_ok(f->s, &k1, 1);
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *out = NULL;
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_SECRET, NULL, "a", &out, &err), DRV_OK);
    assert_string_equal(password(out), SECRET_B64);
    cJSON_Delete(out);
    drv_hstore_reseal_t st;
    assert_int_equal(drv_hstore_reseal(f->s, true, &st, &err), DRV_OK);
    assert_int_equal(st.checked, 2); /* the row and its ADDED entry */
    assert_int_equal(st.resealed, 2);
    assert_int_equal(st.failed, 0);
    assert_int_equal(count_rows(f->path, "SELECT body FROM objects", SECRET_B64), 0);
    assert_int_equal(count_rows(f->path, "SELECT body FROM changes", SECRET_B64), 0);
    assert_nowhere_on_disk(f, SECRET_B64);
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_SECRET, NULL, "a", &out, &err), DRV_OK);
    assert_string_equal(password(out), SECRET_B64);
    cJSON_Delete(out);
    /* Nothing left to do the second time. */
    assert_int_equal(drv_hstore_reseal(f->s, true, &st, &err), DRV_OK);
    assert_int_equal(st.resealed, 0);
    cJSON_Delete(a);
}

static void test_secret_swapped_refused(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    drv_hstore_key_t k1 = test_key("k1", 0x11);
    set_keys_ok(f->s, &k1, 1);
    cJSON *a = secret("a", SECRET_PLAIN), *b = secret("b", SECRET_PLAIN2);
    create_ok(f->s, DRV_KIND_SECRET, a);
    create_ok(f->s, DRV_KIND_SECRET, b);
    /* Someone with the database file moves a's ciphertext onto b. */
    exec_on(f->path, "UPDATE objects SET body = json_set(body, '$.\"drover.sealed\"', "
                     "(SELECT json_extract(body, '$.\"drover.sealed\"') FROM objects WHERE name = "
                     "'a')) WHERE name = 'b'");
    cJSON *out = NULL;
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_SECRET, NULL, "b", &out, &err),
                     DRV_ERR_INTEGRITY);
    assert_null(out);
    assert_non_null(strstr(drv_error_msg(&err), "Secret default/b"));
    assert_non_null(strstr(drv_error_msg(&err), "k1"));
    assert_int_equal(drv_hstore_update(f->s, DRV_KIND_SECRET, b, &err), DRV_ERR_INTEGRITY);
    /* a is untouched; the list skips b (logged) and still answers. */
    FILE *log = tmpfile();
    drv_log_set_stream(log);
    cJSON *items = NULL;
    assert_int_equal(drv_hstore_list(f->s, DRV_KIND_SECRET, NULL, NULL, &items, NULL, &err),
                     DRV_OK);
    drv_log_set_stream(NULL);
    fclose(log);
    assert_int_equal(cJSON_GetArraySize(items), 1);
    assert_string_equal(password(cJSON_GetArrayItem(items, 0)), SECRET_B64);
    cJSON_Delete(items);
    /* A strict re-encryption stops at b and changes nothing; a lenient one counts it. */
    drv_hstore_reseal_t st;
    assert_int_equal(drv_hstore_reseal(f->s, true, &st, &err), DRV_ERR_INTEGRITY);
    assert_non_null(strstr(drv_error_msg(&err), "default/b"));
    log = tmpfile();
    drv_log_set_stream(log);
    assert_int_equal(drv_hstore_reseal(f->s, false, &st, &err), DRV_OK);
    drv_log_set_stream(NULL);
    fclose(log);
    assert_int_equal(st.failed, 1);
    assert_non_null(strstr(st.first_error, "default/b"));
    /* And b can be deleted. */
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_SECRET, NULL, "b", &out, &err), DRV_OK);
    assert_null(out);
    cJSON_Delete(b);
    cJSON_Delete(a);
}

static void test_secret_wrong_or_missing_key(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    drv_hstore_key_t k1 = test_key("k1", 0x11);
    set_keys_ok(f->s, &k1, 1);
    cJSON *a = secret("a", SECRET_PLAIN);
    create_ok(f->s, DRV_KIND_SECRET, a);
    cJSON *out = NULL;
    /* Another key under the same id: does not decrypt. */
    drv_hstore_key_t wrong = test_key("k1", 0x22);
    set_keys_ok(f->s, &wrong, 1);
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_SECRET, NULL, "a", &out, &err),
                     DRV_ERR_INTEGRITY);
    assert_non_null(strstr(drv_error_msg(&err), "does not decrypt"));
    drv_hstore_reseal_t st;
    FILE *log = tmpfile();
    drv_log_set_stream(log);
    assert_int_equal(drv_hstore_reseal(f->s, false, &st, &err), DRV_OK);
    drv_log_set_stream(NULL);
    fclose(log);
    assert_int_equal(st.failed, st.checked); /* what the hub refuses to start with */
    /* A key file without k1. */
    drv_hstore_key_t k9 = test_key("k9", 0x11);
    set_keys_ok(f->s, &k9, 1);
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_SECRET, NULL, "a", &out, &err),
                     DRV_ERR_INTEGRITY);
    assert_non_null(strstr(drv_error_msg(&err), "key \"k1\", which is not in the key file"));
    /* No keys at all. */
    set_keys_ok(f->s, NULL, 0);
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_SECRET, NULL, "a", &out, &err),
                     DRV_ERR_INTEGRITY);
    assert_non_null(strstr(drv_error_msg(&err), "no keys loaded"));
    /* The watch skips the entry and says why. */
    drv_hstore_event_t *ev = NULL;
    size_t n = 0;
    log = tmpfile();
    drv_log_set_stream(log);
    assert_int_equal(drv_hstore_changes(f->s, 0, DRV_KIND_SECRET, 100, &ev, &n, &err), DRV_OK);
    drv_log_set_stream(NULL);
    fclose(log);
    assert_int_equal(n, 0);
    /* Bad key sets. */
    drv_hstore_key_t two[2] = {test_key("k1", 1), test_key("k1", 2)};
    assert_int_equal(drv_hstore_set_keys(f->s, two, 2, &err), DRV_ERR_INVALID);
    two[1].id[0] = '\0';
    assert_int_equal(drv_hstore_set_keys(f->s, two, 2, &err), DRV_ERR_INVALID);
    cJSON_Delete(a);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    chmod(path, mode);
}

static void test_secret_key_file(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    char kp[160];
    snprintf(kp, sizeof(kp), "%s/secret.keys", f->dir);
    drv_hstore_key_t keys[DRV_HSTORE_KEYS_MAX], again[DRV_HSTORE_KEYS_MAX];
    size_t n = 0, m = 0;
    bool created = false;
    assert_int_equal(drv_hstore_keys_load(kp, keys, &n, &err), DRV_ERR_NOTFOUND);
    assert_int_equal(drv_hstore_keys_ensure(kp, keys, &n, &created, &err), DRV_OK);
    assert_true(created);
    assert_int_equal(n, 1);
    assert_string_equal(keys[0].id, "k1");
    struct stat sb;
    assert_int_equal(stat(kp, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(drv_hstore_keys_ensure(kp, again, &m, &created, &err), DRV_OK);
    assert_false(created);
    assert_int_equal(m, 1);
    assert_memory_equal(again[0].key, keys[0].key, sizeof(keys[0].key));
    /* Readable by others: refused. */
    chmod(kp, 0644);
    assert_int_equal(drv_hstore_keys_load(kp, keys, &n, &err), DRV_ERR_PERM);
    assert_non_null(strstr(drv_error_msg(&err), "chmod 600"));
    /* Malformed files: the line is named. */
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"", "no key"},
        {"# only a comment\n", "no key"},
        {"k1\n", "line 1"},
        {"k1 bm90IDMyIGJ5dGVz\n", "not the base64 of 32 bytes"},
        {"# c\nk/1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "line 2: key id"},
        {"k1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
         "k1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
         "given twice"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(kp, bad[i].text, 0600);
        assert_int_equal(drv_hstore_keys_load(kp, keys, &n, &err), DRV_ERR_INVALID);
        if (!strstr(drv_error_msg(&err), bad[i].want))
            fail_msg("%zu: \"%s\" lacks \"%s\"", i, drv_error_msg(&err), bad[i].want);
    }
    write_file(kp, "# c\r\n\r\nmain AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n", 0600);
    assert_int_equal(drv_hstore_keys_load(kp, keys, &n, &err), DRV_OK);
    assert_int_equal(n, 1);
    assert_string_equal(keys[0].id, "main");
}

static void test_secret_rotation(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    char kp[160];
    snprintf(kp, sizeof(kp), "%s/secret.keys", f->dir);
    drv_hstore_key_t keys[DRV_HSTORE_KEYS_MAX];
    size_t n = 0;
    bool created = false;
    assert_int_equal(drv_hstore_keys_ensure(kp, keys, &n, &created, &err), DRV_OK);
    set_keys_ok(f->s, keys, n);
    cJSON *a = secret("a", SECRET_PLAIN), *b = secret("b", SECRET_PLAIN2);
    create_ok(f->s, DRV_KIND_SECRET, a);
    create_ok(f->s, DRV_KIND_SECRET, b);
    char id[DRV_PKI_KEY_ID_MAX];
    drv_hstore_reseal_t st;
    /* Not while the store is open elsewhere (a running hub would go on with the old key). */
    assert_int_equal(drv_hstore_keys_rotate(f->path, kp, id, &st, &err), DRV_ERR_AGAIN);
    assert_non_null(strstr(drv_error_msg(&err), "stop it first"));
    drv_hstore_key_t same[DRV_HSTORE_KEYS_MAX];
    size_t ns = 0;
    assert_int_equal(drv_hstore_keys_load(kp, same, &ns, &err), DRV_OK);
    assert_int_equal(ns, 1);
    assert_memory_equal(same[0].key, keys[0].key, sizeof(keys[0].key));
    drv_hstore_close(f->s);
    f->s = NULL;
    assert_int_equal(drv_hstore_keys_rotate(f->path, kp, id, &st, &err), DRV_OK);
    assert_string_equal(id, "k2");
    assert_int_equal(st.resealed, 4); /* two rows, two ADDED entries */
    /* The old key is gone from the file; every row opens with the new one alone. */
    drv_hstore_key_t now[DRV_HSTORE_KEYS_MAX];
    size_t m = 0;
    assert_int_equal(drv_hstore_keys_load(kp, now, &m, &err), DRV_OK);
    assert_int_equal(m, 1);
    assert_string_equal(now[0].id, "k2");
    assert_memory_not_equal(now[0].key, keys[0].key, sizeof(keys[0].key));
    assert_int_equal(drv_hstore_open(f->path, &f->s, &err), DRV_OK);
    set_keys_ok(f->s, now, m);
    cJSON *out = NULL;
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_SECRET, NULL, "a", &out, &err), DRV_OK);
    assert_string_equal(password(out), SECRET_B64);
    cJSON_Delete(out);
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_SECRET, NULL, "b", &out, &err), DRV_OK);
    assert_string_equal(password(out), password(b));
    cJSON_Delete(out);
    drv_hstore_event_t *ev = NULL;
    size_t ne = 0;
    assert_int_equal(drv_hstore_changes(f->s, 0, DRV_KIND_SECRET, 100, &ev, &ne, &err), DRV_OK);
    assert_int_equal(ne, 2);
    drv_hstore_events_free(ev, ne);
    assert_int_equal(count_rows(f->path, "SELECT body FROM objects", "\"k1:"), 0);
    assert_int_equal(count_rows(f->path, "SELECT body FROM changes", "\"k1:"), 0);
    assert_nowhere_on_disk(f, SECRET_B64);
    /* The old key no longer opens anything: it really is dropped. */
    set_keys_ok(f->s, keys, 1);
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_SECRET, NULL, "a", &out, &err),
                     DRV_ERR_INTEGRITY);
    /* A rotation that meets a row it cannot open stops, and keeps the old key for reading. */
    set_keys_ok(f->s, now, m);
    exec_on(f->path, "UPDATE objects SET body = json_set(body, '$.\"drover.sealed\"', "
                     "(SELECT json_extract(body, '$.\"drover.sealed\"') FROM objects WHERE name = "
                     "'a')) WHERE name = 'b'");
    drv_hstore_close(f->s);
    f->s = NULL;
    assert_int_equal(drv_hstore_keys_rotate(f->path, kp, id, &st, &err), DRV_ERR_INTEGRITY);
    assert_non_null(strstr(drv_error_msg(&err), "default/b"));
    assert_int_equal(drv_hstore_keys_load(kp, keys, &n, &err), DRV_OK);
    assert_int_equal(n, 2);
    assert_string_equal(keys[0].id, "k3");
    assert_string_equal(keys[1].id, "k2");
    assert_int_equal(drv_hstore_open(f->path, &f->s, &err), DRV_OK);
    set_keys_ok(f->s, keys, n);
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_SECRET, NULL, "a", &out, &err), DRV_OK);
    cJSON_Delete(out);
    /* A missing key file: a clear error, nothing created. */
    drv_hstore_close(f->s);
    f->s = NULL;
    assert_int_equal(unlink(kp), 0);
    assert_int_equal(drv_hstore_keys_rotate(f->path, kp, id, &st, &err), DRV_ERR_NOTFOUND);
    assert_non_null(strstr(drv_error_msg(&err), "secret.keys"));
    assert_int_equal(drv_hstore_open(f->path, &f->s, &err), DRV_OK);
    cJSON_Delete(b);
    cJSON_Delete(a);
}

int main(void)
{
    drv_log_set_level(DRV_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_get_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_namespaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exists_and_notfound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generate_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rv_strictly_increasing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generation_only_on_spec_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_and_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identical_update_no_new_rv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_kept_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_namespaces_and_selectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_scoped_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_with_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_page, setup, teardown),
        cmocka_unit_test(test_canon_edits),
        cmocka_unit_test_setup_teardown(test_list_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_shared_catch_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_yield, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pruning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v2_database_migrates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_files_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_mode_and_permissions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v1_database_migrates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_creates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_sealed_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_without_keys_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_swapped_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_wrong_or_missing_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_rotation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
