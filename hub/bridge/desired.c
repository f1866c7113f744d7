/* The desired state of every node, kept in memory from the store's change log: which pods are
 * bound to each node (as the text the agent gets), the ConfigMaps and Secrets, and which of
 * them each node's last document referenced, so that a change marks exactly the nodes whose
 * document changes. */
#include "bridge/bridge_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drover/buf.h"
#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/log.h"
#include "drover/json.h"
#include "drover/model.h"
#include "drover/vec.h"
#include "sched/volumes.h"

#define FOLLOW_BATCH 512

/* ---- the tables ---- */

/* What the hub holds for the nodes and objects of its store; far above any real fleet. */
#define BDESIRED_MAX_ENTRIES (1u << 20)

void bdesired_init(bdesired_t *d)
{
    drv_map_init(&d->nodes, BDESIRED_MAX_ENTRIES);
    drv_map_init_seeded(&d->pods, BDESIRED_MAX_ENTRIES, d->nodes.seed);
    drv_map_init_seeded(&d->cms, BDESIRED_MAX_ENTRIES, d->nodes.seed);
    drv_map_init_seeded(&d->secrets, BDESIRED_MAX_ENTRIES, d->nodes.seed);
    drv_map_init_seeded(&d->pvs, BDESIRED_MAX_ENTRIES, d->nodes.seed);
    bnet_init(d);
}

/* ---- objects ---- */

static bool obj_key(const cJSON *obj, char *out, size_t outsz)
{
    const cJSON *meta = drv_json_get(obj, "metadata");
    const char *ns = drv_json_str(meta, "namespace"), *name = drv_json_str(meta, "name");
    if (!name)
        return false;
    return (size_t)snprintf(out, outsz, "%s/%s", ns ? ns : "default", name) < outsz;
}

static bool copy_item(cJSON *dst, const cJSON *src, const char *k)
{
    const cJSON *v = drv_json_get(src, k);
    if (!v)
        return true;
    cJSON *dup = cJSON_Duplicate(v, true);
    return dup && cJSON_AddItemToObject(dst, k, dup);
}

cJSON *bdesired_strip_pod(const cJSON *pod)
{
    cJSON *out = cJSON_CreateObject(), *meta = cJSON_CreateObject();
    if (!out || !meta || !cJSON_AddItemToObject(out, "metadata", meta)) {
        cJSON_Delete(out);
        cJSON_Delete(meta);
        return NULL;
    }
    static const char *const mkeys[] = {"name",   "namespace",   "uid",
                                        "labels", "annotations", "ownerReferences"};
    bool ok = copy_item(out, pod, "apiVersion") && copy_item(out, pod, "kind") &&
              copy_item(out, pod, "spec");
    for (size_t i = 0; ok && i < sizeof(mkeys) / sizeof(mkeys[0]); i++)
        ok = copy_item(meta, drv_json_get(pod, "metadata"), mkeys[i]);
    if (!ok) {
        cJSON_Delete(out);
        return NULL;
    }
    drv_json_sort_keys(out);
    return out;
}

/* ConfigMaps and Secrets as agents get them: no status, no bookkeeping. */
static cJSON *strip_data_object(const cJSON *obj)
{
    cJSON *out = cJSON_CreateObject(), *meta = cJSON_CreateObject();
    if (!out || !meta || !cJSON_AddItemToObject(out, "metadata", meta)) {
        cJSON_Delete(out);
        cJSON_Delete(meta);
        return NULL;
    }
    static const char *const keys[] = {"apiVersion", "kind", "data",
                                       "binaryData", "type", "immutable"};
    bool ok = copy_item(meta, drv_json_get(obj, "metadata"), "name") &&
              copy_item(meta, drv_json_get(obj, "metadata"), "namespace") &&
              copy_item(meta, drv_json_get(obj, "metadata"), "labels");
    for (size_t i = 0; ok && i < sizeof(keys) / sizeof(keys[0]); i++)
        ok = copy_item(out, obj, keys[i]);
    if (!ok) {
        cJSON_Delete(out);
        return NULL;
    }
    drv_json_sort_keys(out);
    return out;
}

/* ---- nodes and pods ---- */

static void mark(bdesired_t *d, bnode_t *n)
{
    if (n && !n->dirty) {
        n->dirty = true;
        d->ndirty++;
    }
}

void bdesired_mark(bdesired_t *d, bnode_t *n)
{
    mark(d, n);
}

bnode_t *bdesired_node(bdesired_t *d, const char *name)
{
    bnode_t *n = drv_map_get(&d->nodes, name);
    if (n)
        return n;
    if (drv_proto_check_node(name, NULL) != DRV_OK)
        return NULL;
    n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->last_seen_ms = -1;
    if (drv_fmt(n->name, sizeof(n->name), "%s", name) != DRV_OK ||
        drv_map_put(&d->nodes, n->name, n) != DRV_OK) {
        free(n);
        return NULL;
    }
    return n;
}

static void pod_unlink(bdesired_t *d, bpod_t *p)
{
    bnode_t *n = p->node;
    if (!n)
        return;
    if (p->prev)
        p->prev->next = p->next;
    else
        n->pods = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
    p->node = NULL;
    n->npods--;
    mark(d, n);
}

static void pod_remove(bdesired_t *d, const char *key)
{
    bpod_t *p = drv_map_del(&d->pods, key);
    if (!p)
        return;
    pod_unlink(d, p);
    free(p->key);
    free(p->text);
    free(p);
}

/* A keyed 64-bit hash over a stream (SipHash-1-3 of 1 KiB blocks, each keyed with the hash
 * so far): the map's seed, random per hub run, makes a crafted collision infeasible. */
typedef struct hsink {
    const uint64_t *key;
    uint64_t h;
    size_t n;
    unsigned char buf[1024];
} hsink_t;

static void hs_fold(hsink_t *s)
{
    const uint64_t k[2] = {s->key[0] ^ s->h, s->key[1]};
    s->h = drv_map_hash(k, s->buf, s->n);
    s->n = 0;
}

static void hs_put(hsink_t *s, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len) {
        size_t take = sizeof(s->buf) - s->n < len ? sizeof(s->buf) - s->n : len;
        memcpy(s->buf + s->n, p, take);
        s->n += take;
        p += take;
        len -= take;
        if (s->n == sizeof(s->buf))
            hs_fold(s);
    }
}

/* Feeds j and its siblings into s: every member's key, type and value, in order. */
static void hash_json(hsink_t *s, const cJSON *j)
{
    for (; j; j = j->next) {
        unsigned char tag = (unsigned char)(j->type & 0xff);
        hs_put(s, &tag, 1);
        if (j->string)
            hs_put(s, j->string, strlen(j->string) + 1);
        if (cJSON_IsString(j) && j->valuestring)
            hs_put(s, j->valuestring, strlen(j->valuestring) + 1);
        else if (cJSON_IsNumber(j))
            hs_put(s, &j->valuedouble, sizeof(j->valuedouble));
        if (j->child) {
            hs_put(s, "{", 1);
            hash_json(s, j->child);
            hs_put(s, "}", 1);
        }
    }
}

/* bpod_t.meta_hash of pod: the metadata members the agent gets, kind and generation. */
static uint64_t pod_meta_hash(const bdesired_t *d, const cJSON *pod)
{
    static const char *const mkeys[] = {"name",        "namespace",       "uid",       "labels",
                                        "annotations", "ownerReferences", "generation"};
    const cJSON *meta = drv_json_get(pod, "metadata");
    hsink_t s = {.key = d->pods.seed};
    for (size_t i = 0; i < sizeof(mkeys) / sizeof(mkeys[0]); i++) {
        const cJSON *v = drv_json_get(meta, mkeys[i]);
        hs_put(&s, mkeys[i], strlen(mkeys[i]) + 1);
        if (v) { /* the member alone, not its siblings */
            cJSON one = *v;
            one.next = NULL;
            hash_json(&s, &one);
        }
    }
    const char *av = drv_json_str(pod, "apiVersion"), *kind = drv_json_str(pod, "kind");
    hs_put(&s, av ? av : "", av ? strlen(av) + 1 : 1);
    hs_put(&s, kind ? kind : "", kind ? strlen(kind) + 1 : 1);
    hs_fold(&s);
    return s.h;
}

/* The pod as it now is in the store (NULL: deleted). */
static void pod_set(bdesired_t *d, const char *key, const cJSON *pod)
{
    const char *node = pod ? drv_json_str(drv_json_get(pod, "spec"), "nodeName") : NULL;
    if (!node || !*node) {
        pod_remove(d, key);
        return;
    }
    /* Most changes a busy fleet makes are to pods' status (each report of each pod): those
     * are told apart without copying and printing the pod. */
    uint64_t mhash = pod_meta_hash(d, pod);
    bpod_t *had = drv_map_get(&d->pods, key);
    if (had && had->node && !strcmp(had->node->name, node) && had->meta_hash == mhash)
        return;
    cJSON *s = bdesired_strip_pod(pod);
    char *text = s ? cJSON_PrintUnformatted(s) : NULL;
    cJSON_Delete(s);
    bnode_t *n = bdesired_node(d, node);
    if (!text || !n) {
        free(text);
        drv_log_error("bridge: cannot hold a pod's desired state", "pod=%s node=%s", key, node);
        return;
    }
    bpod_t *p = had;
    const char *uid = drv_json_str_at(pod, "metadata.uid");
    if (p && p->node == n && !strcmp(p->text, text) && !strcmp(p->uid, uid ? uid : "")) {
        free(text); /* a status change: the document stays as it is */
        p->meta_hash = mhash;
        return;
    }
    if (!p) {
        p = calloc(1, sizeof(*p));
        char *k = strdup(key);
        if (!p || !k || drv_map_put(&d->pods, k, p) != DRV_OK) {
            free(p);
            free(k);
            free(text);
            return;
        }
        p->key = k;
    }
    if (p->node != n) {
        pod_unlink(d, p);
        p->node = n;
        p->next = n->pods;
        if (n->pods)
            n->pods->prev = p;
        n->pods = p;
        n->npods++;
    }
    free(p->text);
    p->text = text;
    p->meta_hash = mhash;
    drv_sha256_t th;
    drv_sha256_init(&th);
    drv_sha256_update(&th, text, strlen(text) + 1);
    drv_sha256_final(&th, &p->text_sum);
    if (drv_fmt(p->uid, sizeof(p->uid), "%s", uid ? uid : "") != DRV_OK)
        p->uid[0] = '\0'; /* no usage report can match it */
    mark(d, n);
}

/* A ConfigMap or Secret as agents get it; the table's key is the entry's own. */
typedef struct bdata {
    char *key;
    char *text;
} bdata_t;

static void bdata_free(bdata_t *e)
{
    if (e) {
        free(e->key);
        free(e->text);
        free(e);
    }
}

/* A ConfigMap or Secret changed: mark the nodes whose last document used it. */
static void data_set(bdesired_t *d, drv_map_t *m, char tag, const char *key, const cJSON *obj)
{
    bdata_t *old = drv_map_get(m, key);
    if (obj) {
        cJSON *s = strip_data_object(obj);
        char *text = s ? cJSON_PrintUnformatted(s) : NULL;
        cJSON_Delete(s);
        if (!text)
            return;
        if (old && !strcmp(old->text, text)) {
            free(text);
            return;
        }
        if (old) {
            free(old->text);
            old->text = text;
        } else {
            bdata_t *e = calloc(1, sizeof(*e));
            if (!e || !(e->key = strdup(key)) || drv_map_put(m, e->key, e) != DRV_OK) {
                if (e)
                    free(e->key);
                free(e);
                free(text);
                return;
            }
            e->text = text;
        }
    } else if (old) {
        drv_map_del(m, key);
        bdata_free(old);
    } else {
        return;
    }
    char needle[600];
    /* A key too long to search for: every node that refers to anything may use it. */
    bool all = drv_fmt(needle, sizeof(needle), "\n%c:%s\n", tag, key) != DRV_OK;
    void *v;
    for (size_t it = 0; drv_map_next(&d->nodes, &it, NULL, &v);) {
        bnode_t *n = v;
        if (n->refs && (all || strstr(n->refs, needle)))
            mark(d, n);
    }
}

/* ---- persistent volumes ----
 * Each node's document lists the PVs on it (sched/volumes.h drv_sched_pv_node), in every
 * phase: the agent mounts Bound ones and removes the directory of Released ones whose policy
 * is Delete. */

typedef struct bpv {
    char *name;
    char node[DRV_PROTO_NODE_MAX + 1]; /* "" when the PV names no node */
    char *text;
} bpv_t;

static void bpv_free(bpv_t *v)
{
    if (v) {
        free(v->name);
        free(v->text);
        free(v);
    }
}

/* A PV as agents get it: no bookkeeping but its uid. */
static cJSON *strip_pv(const cJSON *pv)
{
    cJSON *out = cJSON_CreateObject(), *meta = cJSON_CreateObject();
    if (!out || !meta || !cJSON_AddItemToObject(out, "metadata", meta)) {
        cJSON_Delete(out);
        cJSON_Delete(meta);
        return NULL;
    }
    static const char *const mkeys[] = {"name", "uid", "labels", "annotations"};
    bool ok = copy_item(out, pv, "apiVersion") && copy_item(out, pv, "kind") &&
              copy_item(out, pv, "spec");
    for (size_t i = 0; ok && i < sizeof(mkeys) / sizeof(mkeys[0]); i++)
        ok = copy_item(meta, drv_json_get(pv, "metadata"), mkeys[i]);
    const char *phase = drv_json_str_at(pv, "status.phase");
    cJSON *st = ok && phase ? cJSON_AddObjectToObject(out, "status") : NULL;
    if (!ok || (phase && (!st || !cJSON_AddStringToObject(st, "phase", phase)))) {
        cJSON_Delete(out);
        return NULL;
    }
    drv_json_sort_keys(out);
    return out;
}

static void mark_named(bdesired_t *d, const char *node)
{
    if (node && *node)
        mark(d, drv_map_get(&d->nodes, node));
}

static void pv_set(bdesired_t *d, const char *name, const cJSON *pv)
{
    bpv_t *old = drv_map_get(&d->pvs, name);
    if (!pv) {
        if (old) {
            drv_map_del(&d->pvs, name);
            mark_named(d, old->node);
            bpv_free(old);
        }
        return;
    }
    const char *node = drv_sched_pv_node(pv);
    cJSON *s = strip_pv(pv);
    char *text = s ? cJSON_PrintUnformatted(s) : NULL;
    cJSON_Delete(s);
    if (!text)
        return;
    if (old && !strcmp(old->text, text)) {
        free(text);
        return;
    }
    if (old) {
        mark_named(d, old->node);
        free(old->text);
        old->text = text;
    } else {
        bpv_t *e = calloc(1, sizeof(*e));
        if (!e || !(e->name = strdup(name)) || drv_map_put(&d->pvs, e->name, e) != DRV_OK) {
            if (e)
                free(e->name);
            free(e);
            free(text);
            return;
        }
        e->text = text;
        old = e;
    }
    if (drv_fmt(old->node, sizeof(old->node), "%s", node ? node : "") != DRV_OK)
        old->node[0] = '\0';
    if (old->node[0])
        mark(d, bdesired_node(d, old->node));
}

static int cmp_pv(const void *a, const void *b)
{
    return strcmp((*(bpv_t *const *)a)->name, (*(bpv_t *const *)b)->name);
}

/* The node's PVs, sorted by name, into arr; their text into the digest. */
static drv_err_t collect_pvs(bdesired_t *d, const bnode_t *n, cJSON *arr, drv_sha256_t *h,
                             drv_error_t *err)
{
    size_t cnt = 0, cap = 0;
    bpv_t **list = NULL;
    void *v;
    for (size_t it = 0; drv_map_next(&d->pvs, &it, NULL, &v);) {
        bpv_t *e = v;
        if (strcmp(e->node, n->name))
            continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 8;
            bpv_t **nl = realloc(list, cap * sizeof(*nl));
            if (!nl) {
                free(list);
                return drv_error_set(err, DRV_ERR_NOMEM, 0, "desired state of %s", n->name);
            }
            list = nl;
        }
        list[cnt++] = e;
    }
    if (cnt > 1)
        qsort(list, cnt, sizeof(*list), cmp_pv);
    for (size_t i = 0; i < cnt; i++) {
        cJSON *o = cJSON_Parse(list[i]->text);
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            free(list);
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "desired state of %s", n->name);
        }
        drv_sha256_update(h, "v", 1);
        drv_sha256_update(h, list[i]->text, strlen(list[i]->text) + 1);
    }
    free(list);
    return DRV_OK;
}

/* A ServiceAccount ("ns/name") came, changed or went: its namespace's pods may get, keep or
 * lose a token (accounts change seldom: every pod is looked at). */
static void accounts_changed(bdesired_t *d, const char *key)
{
    if (!d->sa_token)
        return;
    size_t nslen = strcspn(key, "/");
    void *v;
    for (size_t it = 0; drv_map_next(&d->pods, &it, NULL, &v);) {
        bpod_t *p = v;
        if (p->node && !strncmp(p->key, key, nslen) && p->key[nslen] == '/')
            mark(d, p->node);
    }
}

static void apply_object(bdesired_t *d, drv_kind_t kind, const cJSON *obj, bool deleted)
{
    char key[520];
    if (!obj || !obj_key(obj, key, sizeof(key)))
        return;
    bnet_apply(d, kind, key, deleted ? NULL : obj);
    switch (kind) {
    case DRV_KIND_POD:
        pod_set(d, key, deleted ? NULL : obj);
        break;
    case DRV_KIND_CONFIGMAP:
        data_set(d, &d->cms, 'c', key, deleted ? NULL : obj);
        break;
    case DRV_KIND_SECRET:
        data_set(d, &d->secrets, 's', key, deleted ? NULL : obj);
        break;
    case DRV_KIND_PV:
        pv_set(d, drv_json_str_at(obj, "metadata.name"), deleted ? NULL : obj);
        break;
    case DRV_KIND_NODE: {
        /* A node that appears gets a document at once (empty, or replacing a stale retained
         * one); one that is deleted loses its pods through the controllers. */
        const char *name = drv_json_str(drv_json_get(obj, "metadata"), "name");
        bnode_t *n = name ? bdesired_node(d, name) : NULL;
        if (n)
            bnet_node(d, n, deleted ? NULL : obj);
        if (n && !deleted && !n->published)
            mark(d, n);
        break;
    }
    case DRV_KIND_SERVICEACCOUNT:
        accounts_changed(d, key);
        break;
    default:
        break;
    }
}

static void free_data_map(drv_map_t *m)
{
    void *v;
    for (size_t it = 0; drv_map_next(m, &it, NULL, &v);)
        bdata_free(v);
    drv_map_free(m);
}

static void clear_objects(bdesired_t *d)
{
    void *v;
    for (size_t it = 0; drv_map_next(&d->pods, &it, NULL, &v);) {
        bpod_t *p = v;
        free(p->key);
        free(p->text);
        free(p);
    }
    drv_map_free(&d->pods);
    for (size_t it = 0; drv_map_next(&d->nodes, &it, NULL, &v);) {
        bnode_t *n = v;
        n->pods = NULL;
        n->npods = 0;
    }
    free_data_map(&d->cms);
    free_data_map(&d->secrets);
    for (size_t it = 0; drv_map_next(&d->pvs, &it, NULL, &v);)
        bpv_free(v);
    drv_map_free(&d->pvs);
    bnet_clear(d);
}

drv_err_t bdesired_load(bdesired_t *d, drv_hstore_t *s, drv_error_t *err)
{
    clear_objects(d);
    uint64_t rv = drv_hstore_rv(s);
    static const drv_kind_t kinds[] = {
        DRV_KIND_NODE,      DRV_KIND_CONFIGMAP,     DRV_KIND_SECRET,
        DRV_KIND_POD,       DRV_KIND_SERVICE,       DRV_KIND_ENDPOINTSLICE,
        DRV_KIND_NAMESPACE, DRV_KIND_NETWORKPOLICY, DRV_KIND_PV};
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        cJSON *items = NULL;
        drv_err_t e = drv_hstore_list(s, kinds[k], NULL, NULL, &items, NULL, err);
        if (e != DRV_OK)
            return drv_error_wrap(err, "bridge: list %s", drv_kind_plural(kinds[k]));
        const cJSON *it;
        cJSON_ArrayForEach(it, items)
        {
            apply_object(d, kinds[k], it, false);
        }
        cJSON_Delete(items);
    }
    /* Every node's document is built again; unchanged ones are not republished. */
    void *v;
    for (size_t it = 0; drv_map_next(&d->nodes, &it, NULL, &v);)
        mark(d, v);
    bnet_settle(d);
    d->since_rv = rv;
    return DRV_OK;
}

drv_err_t bdesired_follow(bdesired_t *d, drv_hstore_t *s, drv_error_t *err)
{
    for (int round = 0; round < 64 && d->since_rv < drv_hstore_rv(s); round++) {
        drv_hstore_event_t *ev = NULL;
        size_t n = 0;
        drv_error_t e2 = DRV_ERROR_INIT;
        drv_err_t e =
            drv_hstore_changes(s, d->since_rv, DRV_KIND_UNKNOWN, FOLLOW_BATCH, &ev, &n, &e2);
        if (e == DRV_ERR_RANGE) {
            drv_log_warn("bridge: fell behind the change log; reloading", "rv=%llu",
                         (unsigned long long)d->since_rv);
            return bdesired_load(d, s, err);
        }
        if (e != DRV_OK)
            return drv_error_set(err, e, e2.sys_errno, "bridge: change log: %s",
                                 drv_error_msg(&e2));
        for (size_t i = 0; i < n; i++) {
            apply_object(d, ev[i].kind, ev[i].obj, ev[i].type == DRV_HSTORE_DELETED);
            d->since_rv = ev[i].rv;
        }
        drv_hstore_events_free(ev, n);
        if (n == 0) {
            d->since_rv = drv_hstore_rv(s);
            break;
        }
    }
    /* Once per batch: a burst of pod IPs marks every node once, not once per pod. */
    bnet_settle(d);
    return DRV_OK;
}

/* ---- documents ---- */

static int cmp_pod(const void *a, const void *b)
{
    return strcmp((*(bpod_t *const *)a)->key, (*(bpod_t *const *)b)->key);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ConfigMap and Secret references of one node's pods, duplicates included (each pod is
 * size-capped; this bounds their sum). */
#define REFS_MAX 65536

typedef struct refs {
    drv_vec_t v;      /* char *: "c:ns/name", malloc'd; at most REFS_MAX */
    drv_err_t failed; /* DRV_ERR_NOMEM or DRV_ERR_TOOBIG: the caller must not trust the list */
} refs_t;

static void ref_add(refs_t *r, char tag, const char *ns, const char *name)
{
    if (!name || r->failed != DRV_OK)
        return;
    char *s = NULL;
    if (asprintf(&s, "%c:%s/%s", tag, ns ? ns : "default", name) < 0) {
        r->failed = DRV_ERR_NOMEM;
        return;
    }
    r->failed = drv_vec_push(&r->v, &s);
    if (r->failed != DRV_OK)
        free(s);
}

/* Adds "c:ns/name" for every ConfigMap and "s:ns/name" for every Secret pod uses (duplicates
 * allowed; the caller sorts and skips them). */
static void collect_refs(const cJSON *pod, refs_t *r)
{
    const char *ns = drv_json_str(drv_json_get(pod, "metadata"), "namespace");
    const cJSON *spec = drv_json_get(pod, "spec");
    const cJSON *v;
    cJSON_ArrayForEach(v, drv_json_get(spec, "volumes"))
    {
        ref_add(r, 'c', ns, drv_json_str(drv_json_get(v, "configMap"), "name"));
        ref_add(r, 's', ns, drv_json_str(drv_json_get(v, "secret"), "secretName"));
        const cJSON *src;
        cJSON_ArrayForEach(src, drv_json_get(drv_json_get(v, "projected"), "sources"))
        {
            ref_add(r, 'c', ns, drv_json_str(drv_json_get(src, "configMap"), "name"));
            ref_add(r, 's', ns, drv_json_str(drv_json_get(src, "secret"), "name"));
        }
    }
    static const char *const lists[] = {"initContainers", "containers"};
    for (size_t l = 0; l < 2; l++) {
        const cJSON *c;
        cJSON_ArrayForEach(c, drv_json_get(spec, lists[l]))
        {
            const cJSON *e;
            cJSON_ArrayForEach(e, drv_json_get(c, "envFrom"))
            {
                ref_add(r, 'c', ns, drv_json_str(drv_json_get(e, "configMapRef"), "name"));
                ref_add(r, 's', ns, drv_json_str(drv_json_get(e, "secretRef"), "name"));
            }
            cJSON_ArrayForEach(e, drv_json_get(c, "env"))
            {
                const cJSON *vf = drv_json_get(e, "valueFrom");
                ref_add(r, 'c', ns, drv_json_str(drv_json_get(vf, "configMapKeyRef"), "name"));
                ref_add(r, 's', ns, drv_json_str(drv_json_get(vf, "secretKeyRef"), "name"));
            }
        }
    }
    cJSON_ArrayForEach(v, drv_json_get(spec, "imagePullSecrets"))
    {
        ref_add(r, 's', ns, drv_json_str(v, "name"));
    }
}

/* The node's enrolled key into *pub (NULL: none); *revoked when its identity is revoked. */
static drv_err_t node_pub(bdesired_t *d, bnode_t *n, char **pub, bool *revoked, drv_error_t *err)
{
    *pub = NULL;
    *revoked = false;
    if (!d->node_key)
        return DRV_OK;
    drv_err_t e = d->node_key(d->node_key_ctx, n->name, pub, err);
    if (e == DRV_ERR_NOTFOUND || e == DRV_ERR_PERM) {
        drv_error_clear(err);
        *pub = NULL;
        *revoked = e == DRV_ERR_PERM;
        return DRV_OK;
    }
    return e == DRV_OK ? DRV_OK : drv_error_wrap(err, "desired state of %s: node key", n->name);
}

/* Seals every Secret of the document to the node's key pub; without a key, keeps them in
 * clear if allowed (never for a revoked node), else drops them (the pods wait, as for a
 * missing Secret). */
static drv_err_t seal_secrets(bdesired_t *d, bnode_t *n, const char *pub, bool revoked,
                              cJSON *secrets, drv_error_t *err)
{
    if (cJSON_GetArraySize(secrets) == 0)
        return DRV_OK;
    if (!pub) {
        if (d->clear_secrets && !revoked)
            return DRV_OK;
        drv_log_warn(revoked ? "bridge: node is revoked: its Secrets are left out of its "
                               "desired state"
                             : "bridge: node has no enrolled key: its Secrets are left out of "
                               "its desired state",
                     "node=%s secrets=%d", n->name, cJSON_GetArraySize(secrets));
        while (cJSON_GetArraySize(secrets) > 0)
            cJSON_DeleteItemFromArray(secrets, 0);
        return DRV_OK;
    }
    cJSON *s;
    cJSON_ArrayForEach(s, secrets)
    {
        drv_err_t e = drv_proto_secret_seal(s, n->name, pub, err);
        if (e != DRV_OK)
            return drv_error_wrap(err, "desired state of %s", n->name);
    }
    return DRV_OK;
}

/* ---- service account tokens ---- */

/* One entry per pod of the document that gets a token, in clear (sealed later, once the
 * document is known to have changed), into *out; each pod's uid and token expiry go into h (a
 * token changes with its expiry, so a renewed one is new content), and the earliest renewal
 * into n->token_due and d->token_refresh_at. */
static drv_err_t sa_tokens(bdesired_t *d, bnode_t *n, const cJSON *pods, drv_sha256_t *h,
                           cJSON **out, drv_error_t *err)
{
    *out = NULL;
    n->token_due = 0;
    if (!d->sa_token)
        return DRV_OK;
    int64_t now = (int64_t)time(NULL);
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "desired state of %s", n->name);
    const cJSON *pod;
    cJSON_ArrayForEach(pod, pods)
    {
        const char *tok = NULL;
        int64_t exp = 0, due = 0;
        bool mount = true;
        drv_error_t te = DRV_ERROR_INIT;
        drv_err_t e =
            d->sa_token(d->sa_token_ctx, n->name, pod, now, &tok, &exp, &due, &mount, &te);
        if (e == DRV_ERR_NOTFOUND)
            continue;
        if (e != DRV_OK) {
            cJSON_Delete(arr);
            return drv_error_set(err, e, te.sys_errno, "desired state of %s: %s", n->name,
                                 drv_error_msg(&te));
        }
        const char *uid = drv_json_str(drv_json_get(pod, "metadata"), "uid");
        cJSON *ent = cJSON_CreateObject();
        /* not sealed yet: only the pod and the expiry, hashed below, then sealed if needed */
        if (!ent || !cJSON_AddStringToObject(ent, "podUID", uid ? uid : "") ||
            !cJSON_AddStringToObject(ent, "token", tok) ||
            !cJSON_AddNumberToObject(ent, "exp", (double)exp) ||
            !cJSON_AddBoolToObject(ent, "automount", mount) || !cJSON_AddItemToArray(arr, ent)) {
            cJSON_Delete(ent);
            cJSON_Delete(arr);
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "desired state of %s", n->name);
        }
        char line[128];
        drv_fmt_cut(line, sizeof(line), "t%s/%lld/%d", uid ? uid : "", (long long)exp, mount);
        drv_sha256_update(h, line, strlen(line) + 1);
        if (!n->token_due || due < n->token_due)
            n->token_due = due;
        if (!d->token_refresh_at || due < d->token_refresh_at)
            d->token_refresh_at = due;
    }
    *out = arr;
    return DRV_OK;
}

/* Replaces each entry of toks by its wire form, sealed to pub (in clear without one when
 * allowed; left out otherwise, and for a revoked node). */
static drv_err_t seal_tokens(bdesired_t *d, bnode_t *n, const char *pub, bool revoked, cJSON *toks,
                             cJSON **out, drv_error_t *err)
{
    *out = cJSON_CreateArray();
    if (!*out)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "desired state of %s", n->name);
    if (!pub && (revoked || !d->clear_secrets)) {
        if (cJSON_GetArraySize(toks) > 0)
            drv_log_warn("bridge: node has no usable key: its pods' service account tokens are "
                         "left out of its desired state",
                         "node=%s tokens=%d", n->name, cJSON_GetArraySize(toks));
        return DRV_OK;
    }
    const cJSON *t;
    cJSON_ArrayForEach(t, toks)
    {
        cJSON *w =
            drv_proto_satoken_build(n->name, drv_json_str(t, "podUID"), drv_json_str(t, "token"),
                                    (int64_t)drv_json_get(t, "exp")->valuedouble, pub, err);
        /* absent: mounted (the common case, and what an older agent assumes) */
        if (w && cJSON_IsFalse(drv_json_get(t, "automount")) &&
            !cJSON_AddFalseToObject(w, "automount")) {
            cJSON_Delete(w);
            w = NULL;
        }
        if (!w || !cJSON_AddItemToArray(*out, w)) {
            cJSON_Delete(w);
            cJSON_Delete(*out);
            *out = NULL;
            return drv_error_wrap(err, "desired state of %s", n->name);
        }
    }
    return DRV_OK;
}

void bdesired_tokens_due(bdesired_t *d, int64_t now)
{
    if (!d->token_refresh_at || now < d->token_refresh_at)
        return;
    /* the nodes marked set theirs again when built */
    int64_t next = 0;
    void *v;
    for (size_t it = 0; drv_map_next(&d->nodes, &it, NULL, &v);) {
        bnode_t *n = v;
        if (!n->token_due)
            continue;
        if (now >= n->token_due) {
            n->token_due = 0;
            mark(d, n);
        } else if (!next || n->token_due < next) {
            next = n->token_due;
        }
    }
    d->token_refresh_at = next;
}

char *bdesired_finish(struct drv_hsign *sign, const char *node, const cJSON *doc, size_t *len,
                      drv_error_t *err)
{
    char *text = NULL;
    size_t tlen = 0;
    if (drv_proto_encode(doc, DRV_PROTO_DESIRED, &text, &tlen, err) != DRV_OK) {
        drv_error_wrap(err, "desired state of %s", node);
        return NULL;
    }
    if (!sign) {
        *len = tlen;
        return text;
    }
    char *env = NULL, *sig = NULL;
    drv_err_t e = drv_hsign_sign(sign, text, tlen, &sig, err);
    if (e == DRV_OK)
        e = drv_proto_desired_envelope(text, tlen, sig, &env, len, err);
    free(sig);
    free(text);
    if (e != DRV_OK) {
        drv_error_wrap(err, "desired state of %s", node);
        return NULL;
    }
    return env;
}

char *bdesired_build(bdesired_t *d, bnode_t *n, uint64_t gen, drv_digest_t *sum, size_t *len,
                     bool *unchanged, drv_error_t *err)
{
    if (d->sign && d->sign_for != d->signing_key) { /* the key was changed (tests) */
        drv_hsign_free(d->sign);
        d->sign = NULL;
    }
    if (!d->sign && d->signing_key) {
        if (drv_hsign_new(d->signing_key, &d->sign, err) != DRV_OK)
            return NULL;
        d->sign_for = d->signing_key;
    }
    cJSON *doc = bdesired_prepare(d, n, gen, sum, unchanged, err);
    if (!doc)
        return NULL;
    char *out = bdesired_finish(d->signing_key ? d->sign : NULL, n->name, doc, len, err);
    cJSON_Delete(doc);
    return out;
}

cJSON *bdesired_prepare(bdesired_t *d, bnode_t *n, uint64_t gen, drv_digest_t *sum, bool *unchanged,
                        drv_error_t *err)
{
    bpod_t **pods = calloc(n->npods ? n->npods : 1, sizeof(*pods));
    cJSON *jpods = cJSON_CreateArray(), *jcms = cJSON_CreateArray(),
          *jsecrets = cJSON_CreateArray(), *jpvs = cJSON_CreateArray();
    refs_t refs = {DRV_VEC_INIT(char *, REFS_MAX), DRV_OK};
    cJSON *out = NULL;
    char *pub = NULL;                      /* the node's key, when it has Secrets */
    cJSON *net = NULL;                     /* the node's own part of its network section */
    cJSON *toks = NULL, *wire_toks = NULL; /* its pods' service account tokens */
    bool revoked = false;
    drv_sha256_t h;
    drv_sha256_init(&h);
    if (!pods || !jpods || !jcms || !jsecrets || !jpvs) {
        drv_error_set(err, DRV_ERR_NOMEM, 0, "desired state of %s", n->name);
        goto done;
    }
    size_t np = 0;
    for (bpod_t *p = n->pods; p && np < n->npods; p = p->next)
        pods[np++] = p;
    qsort(pods, np, sizeof(*pods), cmp_pod);
    for (size_t i = 0; i < np; i++) {
        cJSON *pod = cJSON_Parse(pods[i]->text);
        if (!pod || !cJSON_AddItemToArray(jpods, pod)) {
            cJSON_Delete(pod);
            drv_error_set(err, DRV_ERR_NOMEM, 0, "desired state of %s", n->name);
            goto done;
        }
        drv_sha256_update(&h, "p", 1);
        drv_sha256_update(&h, &pods[i]->text_sum, sizeof(pods[i]->text_sum));
        collect_refs(pod, &refs);
    }
    if (refs.failed == DRV_ERR_TOOBIG) {
        drv_error_set(err, DRV_ERR_TOOBIG, 0,
                      "desired state of %s: more than %d ConfigMap and Secret references", n->name,
                      REFS_MAX);
        goto done;
    }
    if (refs.failed != DRV_OK) {
        drv_error_set(err, DRV_ERR_NOMEM, 0, "desired state of %s: references", n->name);
        goto done;
    }
    char **rv = refs.v.data;
    if (refs.v.len)
        qsort(rv, refs.v.len, sizeof(*rv), cmp_str);
    /* The list is at most a few times the pods' own size (each name comes from them). */
    drv_buf_t rb = DRV_BUF_INIT(4 * (size_t)DRV_PROTO_DESIRED_MAX);
    bool rok = drv_buf_putc(&rb, '\n') == DRV_OK;
    for (size_t i = 0; i < refs.v.len; i++) {
        if (i && !strcmp(rv[i], rv[i - 1]))
            continue;
        rok = rok && drv_buf_printf(&rb, "%s\n", rv[i]) == DRV_OK;
        const bdata_t *ent = drv_map_get(rv[i][0] == 'c' ? &d->cms : &d->secrets, rv[i] + 2);
        const char *text = ent ? ent->text : NULL;
        if (!text)
            continue; /* not there (yet): the agent reports the pod waiting for it */
        cJSON *obj = cJSON_Parse(text);
        if (!obj || !cJSON_AddItemToArray(rv[i][0] == 'c' ? jcms : jsecrets, obj)) {
            cJSON_Delete(obj);
            drv_buf_free(&rb);
            drv_error_set(err, DRV_ERR_NOMEM, 0, "desired state of %s", n->name);
            goto done;
        }
        drv_sha256_update(&h, rv[i], 1);
        drv_sha256_update(&h, text, strlen(text) + 1);
    }
    if (!rok) {
        drv_buf_free(&rb);
        drv_error_set(err, DRV_ERR_NOMEM, 0, "desired state of %s: references", n->name);
        goto done;
    }
    free(n->refs);
    n->refs = drv_buf_steal(&rb, NULL);
    if (sa_tokens(d, n, jpods, &h, &toks, err) != DRV_OK)
        goto done;
    /* Secrets and tokens are sealed to the node's key: a new key (the name enrolled again
     * after a forget, or enrolled at last) is new content. */
    if (cJSON_GetArraySize(jsecrets) > 0 || cJSON_GetArraySize(toks) > 0) {
        if (node_pub(d, n, &pub, &revoked, err) != DRV_OK)
            goto done;
        drv_sha256_update(&h, revoked ? "r" : "k", 1);
        if (pub)
            drv_sha256_update(&h, pub, strlen(pub) + 1);
    }
    if (collect_pvs(d, n, jpvs, &h, err) != DRV_OK)
        goto done;
    if (bnet_part(d, n, &h, &net, err) != DRV_OK)
        goto done;
    drv_sha256_final(&h, sum);
    if (unchanged && n->published && drv_digest_equal(sum, &n->sum) && !n->force) {
        *unchanged = true;
        goto done;
    }
    if (seal_secrets(d, n, pub, revoked, jsecrets, err) != DRV_OK)
        goto done;
    if (toks && seal_tokens(d, n, pub, revoked, toks, &wire_toks, err) != DRV_OK)
        goto done;
    cJSON *doc = drv_proto_desired_build(n->name, gen, jpods, jcms, jsecrets, err);
    if (doc && cJSON_GetArraySize(wire_toks) > 0 &&
        !cJSON_AddItemToObject(doc, "serviceAccountTokens", TAKE_PTR(wire_toks))) {
        cJSON_Delete(doc);
        doc = NULL;
        drv_error_set(err, DRV_ERR_NOMEM, 0, "desired state of %s", n->name);
    }
    /* (drv_proto_desired_build_net takes the section once protocol.c has it.) */
    if (doc && net && bnet_attach(d, doc, TAKE_PTR(net), err) != DRV_OK) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    /* Absent when empty: a node without volumes gets the document it always got. */
    if (doc && cJSON_GetArraySize(jpvs) > 0) {
        if (cJSON_AddItemToObject(doc, "persistentVolumes", jpvs)) {
            jpvs = NULL;
        } else {
            cJSON_Delete(doc);
            doc = NULL;
            drv_error_set(err, DRV_ERR_NOMEM, 0, "desired state of %s", n->name);
        }
    }
    out = doc;
done:
    cJSON_Delete(net);
    if (toks) /* the tokens in clear: wiped, never left in freed memory */
        for (cJSON *t = toks->child; t; t = t->next) {
            cJSON *tv = drv_json_get(t, "token");
            if (cJSON_IsString(tv))
                explicit_bzero(tv->valuestring, strlen(tv->valuestring));
        }
    cJSON_Delete(toks);
    cJSON_Delete(wire_toks);
    free(pub);
    for (size_t i = 0; i < refs.v.len; i++)
        free(*(char **)drv_vec_at(&refs.v, i));
    drv_vec_free(&refs.v);
    free(pods);
    cJSON_Delete(jpods);
    cJSON_Delete(jcms);
    cJSON_Delete(jsecrets);
    cJSON_Delete(jpvs);
    return out;
}

void bdesired_free(bdesired_t *d)
{
    clear_objects(d);
    void *v;
    for (size_t it = 0; drv_map_next(&d->nodes, &it, NULL, &v);) {
        bnode_t *n = v;
        free(n->refs);
        free(n);
    }
    drv_map_free(&d->nodes);
    bnet_free(d);
    drv_hsign_free(d->sign);
    d->sign = NULL;
}
