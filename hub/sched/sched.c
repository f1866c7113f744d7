/* The scheduler: kube-scheduler's filters and scores over a per-node usage cache, so that a
 * placement is one pass over the nodes. See sched.h for the rules. */
#include "sched/sched.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/quantity.h"
#include "drover/selector.h"
#include "drover/vec.h"

struct port_use {
    uint32_t key; /* port << 2 | protocol */
    uint32_t count;
};

struct owner_use {
    uint64_t hash;
    uint32_t count;
};

/* What pod (anti-)affinity needs of a pod bound to a node: its namespace, labels and
 * affinity (for the symmetric rules), copied. */
struct pod_ref {
    char *key;  /* namespace/name */
    cJSON *obj; /* {"namespace", "labels", "affinity"} */
};

struct drv_sched_node {
    char *name;
    cJSON *obj; /* owned copy of the Node */
    const cJSON *labels, *taints;
    const char *os, *arch;
    bool ready, unschedulable;
    int64_t alloc_cpu, alloc_mem, alloc_pods; /* alloc_pods -1: no limit */
    int64_t used_cpu, used_mem;               /* requests, for fitting */
    int64_t score_cpu, score_mem;             /* requests with defaults, for scoring */
    size_t npods;
    drv_vec_t ports;  /* struct port_use, at most PORT_KEYS_MAX */
    drv_vec_t owners; /* struct owner_use, at most NODE_OWNERS_MAX */
    drv_vec_t pods;   /* struct pod_ref, at most NODE_PODS_MAX */
    size_t npodaff;   /* of those, pods with pod (anti-)affinity terms */
};

/* Distinct host ports a node can have in use: every port of three protocols. */
#define PORT_KEYS_MAX (3 * 65536)
/* Distinct owners (ReplicaSets, DaemonSets, ...) of the pods on one node. */
#define NODE_OWNERS_MAX 65536
/* Pods on one node the affinity rules look at. */
#define NODE_PODS_MAX 65536
/* Affinity terms of one pod, per kind (required/preferred, affinity/anti-affinity). */
#define POD_TERMS_MAX 32

#define POD_PORTS_MAX 64

/* What placement needs of a pod, read once. */
struct pod_info {
    int64_t cpu, mem, score_cpu, score_mem;
    uint32_t ports[POD_PORTS_MAX];
    size_t nports;
    uint64_t owner; /* 0: none */
    const cJSON *tolerations, *spec;
    const char *ns;
    const cJSON *labels, *affinity;
};

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

void drv_sched_cache_init(drv_sched_cache_t *c)
{
    c->nodes = NULL;
    c->n = 0;
    c->next_start = 0;
}

static void node_free(drv_sched_node_t *n)
{
    free(n->name);
    cJSON_Delete(n->obj);
    drv_vec_free(&n->ports);
    drv_vec_free(&n->owners);
    struct pod_ref *pr = n->pods.data;
    for (size_t i = 0; i < n->pods.len; i++) {
        free(pr[i].key);
        cJSON_Delete(pr[i].obj);
    }
    drv_vec_free(&n->pods);
}

void drv_sched_cache_free(drv_sched_cache_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        node_free(&c->nodes[i]);
    free(c->nodes);
    c->nodes = NULL;
    c->n = 0;
}

bool drv_sched_node_ready(const cJSON *node)
{
    const cJSON *conds = drv_json_get(drv_json_get(node, "status"), "conditions");
    const cJSON *cond;
    cJSON_ArrayForEach(cond, (cJSON_IsArray(conds) ? conds : NULL))
    {
        const char *type = drv_json_str(cond, "type");
        if (type && !strcmp(type, "Ready")) {
            const char *st = drv_json_str(cond, "status");
            return st && !strcmp(st, "True");
        }
    }
    return false;
}

/* A quantity from status.allocatable (or capacity); 0 when absent or unreadable. */
static int64_t node_qty(const cJSON *status, const char *res)
{
    const char *s = drv_json_str(drv_json_get(status, "allocatable"), res);
    if (!s)
        s = drv_json_str(drv_json_get(status, "capacity"), res);
    if (!s)
        return -1;
    int64_t v = 0;
    drv_err_t r;
    if (!strcmp(res, "cpu")) {
        r = drv_qty_parse_cpu(s, &v, NULL, NULL);
    } else if (!strcmp(res, "memory")) {
        r = drv_qty_parse_memory(s, &v, NULL, NULL);
    } else {
        char *end = NULL;
        long long n = strtoll(s, &end, 10);
        r = (end == s || *end || n < 0) ? DRV_ERR_INVALID : DRV_OK;
        v = n;
    }
    return r == DRV_OK ? v : 0;
}

static int node_cmp(const void *a, const void *b)
{
    return strcmp(((const drv_sched_node_t *)a)->name, ((const drv_sched_node_t *)b)->name);
}

static drv_sched_node_t *find_node(const drv_sched_cache_t *c, const char *name)
{
    if (!name || !c->n)
        return NULL;
    drv_sched_node_t key = {.name = (char *)name};
    return bsearch(&key, c->nodes, c->n, sizeof(*c->nodes), node_cmp);
}

drv_err_t drv_sched_cache_set_nodes(drv_sched_cache_t *c, const cJSON *nodes, drv_error_t *err)
{
    if (!cJSON_IsArray(nodes))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "nodes: must be a JSON array");
    size_t cap = (size_t)cJSON_GetArraySize(nodes), n = 0;
    drv_sched_node_t *arr = calloc(cap ? cap : 1, sizeof(*arr));
    if (!arr)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "scheduler cache");
    const cJSON *no;
    cJSON_ArrayForEach(no, nodes)
    {
        const char *name = drv_json_str(drv_json_get(no, "metadata"), "name");
        if (!name || !*name)
            continue;
        drv_sched_node_t *d = &arr[n];
        drv_vec_init(&d->ports, sizeof(struct port_use), PORT_KEYS_MAX);
        drv_vec_init(&d->owners, sizeof(struct owner_use), NODE_OWNERS_MAX);
        drv_vec_init(&d->pods, sizeof(struct pod_ref), NODE_PODS_MAX);
        d->name = strdup(name);
        d->obj = cJSON_Duplicate(no, true);
        if (!d->name || !d->obj) {
            node_free(d);
            for (size_t i = 0; i < n; i++)
                node_free(&arr[i]);
            free(arr);
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "scheduler cache");
        }
        n++;
        const cJSON *status = drv_json_get(d->obj, "status"), *spec = drv_json_get(d->obj, "spec");
        d->labels = drv_json_get(drv_json_get(d->obj, "metadata"), "labels");
        d->taints = drv_json_get(spec, "taints");
        d->unschedulable = cJSON_IsTrue(drv_json_get(spec, "unschedulable"));
        d->ready = drv_sched_node_ready(d->obj);
        d->os = drv_json_str(drv_json_get(status, "nodeInfo"), "operatingSystem");
        d->arch = drv_json_str(drv_json_get(status, "nodeInfo"), "architecture");
        d->alloc_cpu = node_qty(status, "cpu");
        d->alloc_mem = node_qty(status, "memory");
        d->alloc_pods = node_qty(status, "pods");
        if (d->alloc_cpu < 0)
            d->alloc_cpu = 0;
        if (d->alloc_mem < 0)
            d->alloc_mem = 0;
    }
    qsort(arr, n, sizeof(*arr), node_cmp);
    /* Drop duplicate names (keep the first), carry usage over from the old cache. */
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (w && !strcmp(arr[w - 1].name, arr[i].name)) {
            node_free(&arr[i]);
            continue;
        }
        arr[w] = arr[i];
        drv_sched_node_t *d = &arr[w++], *old = find_node(c, d->name);
        if (old) {
            d->used_cpu = old->used_cpu;
            d->used_mem = old->used_mem;
            d->score_cpu = old->score_cpu;
            d->score_mem = old->score_mem;
            d->npods = old->npods;
            d->ports = old->ports;
            d->owners = old->owners;
            d->pods = old->pods;
            d->npodaff = old->npodaff;
            drv_vec_init(&old->ports, sizeof(struct port_use), PORT_KEYS_MAX);
            drv_vec_init(&old->owners, sizeof(struct owner_use), NODE_OWNERS_MAX);
            drv_vec_init(&old->pods, sizeof(struct pod_ref), NODE_PODS_MAX);
        }
    }
    drv_sched_cache_free(c);
    c->nodes = arr;
    c->n = w;
    return DRV_OK;
}

static drv_err_t container_requests(const cJSON *ctr, const char *path, int64_t *cpu, int64_t *mem,
                                    bool *has_cpu, bool *has_mem, drv_error_t *err)
{
    const cJSON *req = drv_json_get(drv_json_get(ctr, "resources"), "requests");
    const char *c = drv_json_str(req, "cpu"), *m = drv_json_str(req, "memory");
    drv_error_t e = DRV_ERROR_INIT;
    *cpu = *mem = 0;
    *has_cpu = c != NULL;
    *has_mem = m != NULL;
    if (c && drv_qty_parse_cpu(c, cpu, NULL, &e) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.resources.requests.cpu: %s", path,
                             drv_error_msg(&e));
    if (m && drv_qty_parse_memory(m, mem, NULL, &e) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.resources.requests.memory: %s", path,
                             drv_error_msg(&e));
    return DRV_OK;
}

/* Requests for fitting and, with Kubernetes' non-zero defaults, for scoring. */
static drv_err_t pod_requests(const cJSON *pod, int64_t out[4], drv_error_t *err)
{
    const cJSON *spec = drv_json_get(pod, "spec");
    int64_t sum[4] = {0}, init[4] = {0};
    static const char *const lists[2] = {"containers", "initContainers"};
    for (int l = 0; l < 2; l++) {
        const cJSON *arr = drv_json_get(spec, lists[l]), *ctr;
        int i = 0;
        cJSON_ArrayForEach(ctr, (cJSON_IsArray(arr) ? arr : NULL))
        {
            char path[64];
            drv_fmt_cut(path, sizeof(path), "spec.%s[%d]", lists[l], i++);
            int64_t c, m;
            bool hc, hm;
            drv_err_t r = container_requests(ctr, path, &c, &m, &hc, &hm, err);
            if (r != DRV_OK)
                return r;
            int64_t v[4] = {c, m, hc ? c : DRV_SCHED_DEFAULT_CPU_MILLI,
                            hm ? m : DRV_SCHED_DEFAULT_MEMORY};
            for (int k = 0; k < 4; k++) {
                if (l == 0)
                    sum[k] = sum[k] > DRV_QTY_MAX - v[k] ? DRV_QTY_MAX : sum[k] + v[k];
                else if (v[k] > init[k])
                    init[k] = v[k];
            }
        }
    }
    for (int k = 0; k < 4; k++)
        out[k] = sum[k] > init[k] ? sum[k] : init[k];
    return DRV_OK;
}

drv_err_t drv_sched_pod_requests(const cJSON *pod, int64_t *cpu_milli, int64_t *mem_bytes,
                                 drv_error_t *err)
{
    int64_t v[4];
    drv_err_t r = pod_requests(pod, v, err);
    if (r != DRV_OK)
        return r;
    *cpu_milli = v[0];
    *mem_bytes = v[1];
    return DRV_OK;
}

static uint32_t proto_code(const char *p)
{
    if (p && !strcmp(p, "UDP"))
        return 1;
    if (p && !strcmp(p, "SCTP"))
        return 2;
    return 0;
}

/* The controller owner's uid, else the pod's labels: pods with the same key are spread. */
static uint64_t owner_key(const cJSON *pod)
{
    const cJSON *meta = drv_json_get(pod, "metadata"),
                *refs = drv_json_get(meta, "ownerReferences"), *ref;
    cJSON_ArrayForEach(ref, (cJSON_IsArray(refs) ? refs : NULL))
    {
        const char *uid = drv_json_str(ref, "uid");
        if (cJSON_IsTrue(drv_json_get(ref, "controller")) && uid)
            return fnv1a(fnv1a(14695981039346656037ULL, "uid:"), uid) | 1;
    }
    const cJSON *labels = drv_json_get(meta, "labels"), *l;
    if (!cJSON_IsObject(labels) || !labels->child)
        return 0;
    uint64_t h = fnv1a(14695981039346656037ULL, "labels:");
    cJSON_ArrayForEach(l, labels)
    {
        if (strcmp(l->string, "pod-template-hash") == 0 ||
            strcmp(l->string, "controller-revision-hash") == 0)
            continue;
        h = fnv1a(fnv1a(fnv1a(h, l->string), "="), cJSON_IsString(l) ? l->valuestring : "");
        h = fnv1a(h, ",");
    }
    return h | 1;
}

static drv_err_t pod_info_read(const cJSON *pod, struct pod_info *pi, drv_error_t *err)
{
    memset(pi, 0, sizeof(*pi));
    if (!cJSON_IsObject(pod) || !cJSON_IsObject(drv_json_get(pod, "spec")))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "spec: required");
    int64_t v[4];
    drv_err_t r = pod_requests(pod, v, err);
    if (r != DRV_OK)
        return r;
    pi->cpu = v[0];
    pi->mem = v[1];
    pi->score_cpu = v[2];
    pi->score_mem = v[3];
    const cJSON *spec = drv_json_get(pod, "spec");
    pi->tolerations = drv_json_get(spec, "tolerations");
    pi->owner = owner_key(pod);
    pi->spec = spec;
    pi->ns = drv_json_str(drv_json_get(pod, "metadata"), "namespace");
    if (!pi->ns)
        pi->ns = "default";
    pi->labels = drv_json_get(drv_json_get(pod, "metadata"), "labels");
    pi->affinity = drv_json_get(spec, "affinity");
    /* Under hostNetwork every container port is a host port (the model defaults hostPort to
     * it; a pod stored before that default still holds the port). Init containers that keep
     * running (restartPolicy Always) hold theirs too. */
    bool hostnet = cJSON_IsTrue(drv_json_get(spec, "hostNetwork"));
    static const char *const lists[] = {"containers", "initContainers"};
    for (int l = 0; l < 2; l++) {
        const cJSON *ctrs = drv_json_get(spec, lists[l]), *ctr;
        cJSON_ArrayForEach(ctr, (cJSON_IsArray(ctrs) ? ctrs : NULL))
        {
            const char *rp = drv_json_str(ctr, "restartPolicy");
            if (l == 1 && !(rp && !strcmp(rp, "Always")))
                continue;
            const cJSON *ports = drv_json_get(ctr, "ports"), *p;
            cJSON_ArrayForEach(p, (cJSON_IsArray(ports) ? ports : NULL))
            {
                const cJSON *hp = drv_json_get(p, "hostPort");
                if (hostnet && (!cJSON_IsNumber(hp) || hp->valuedouble == 0))
                    hp = drv_json_get(p, "containerPort");
                if (!cJSON_IsNumber(hp) || hp->valuedouble < 1 || hp->valuedouble > 65535)
                    continue;
                uint32_t key =
                    ((uint32_t)hp->valuedouble << 2) | proto_code(drv_json_str(p, "protocol"));
                bool dup = false;
                for (size_t k = 0; k < pi->nports && !dup; k++)
                    dup = pi->ports[k] == key;
                if (dup)
                    continue;
                if (pi->nports == POD_PORTS_MAX)
                    return drv_error_set(err, DRV_ERR_INVALID, 0, "spec.%s: more than %d hostPorts",
                                         lists[l], POD_PORTS_MAX);
                pi->ports[pi->nports++] = key;
            }
        }
    }
    return DRV_OK;
}

static struct port_use *find_port(const drv_sched_node_t *n, uint32_t key)
{
    struct port_use *p = n->ports.data;
    for (size_t i = 0; i < n->ports.len; i++)
        if (p[i].key == key)
            return &p[i];
    return NULL;
}

static struct owner_use *find_owner(const drv_sched_node_t *n, uint64_t hash)
{
    struct owner_use *o = n->owners.data;
    for (size_t i = 0; i < n->owners.len; i++)
        if (o[i].hash == hash)
            return &o[i];
    return NULL;
}

static bool has_pod_terms(const cJSON *affinity)
{
    return drv_json_get(affinity, "podAffinity") || drv_json_get(affinity, "podAntiAffinity");
}

static char *pod_key(const cJSON *pod, const struct pod_info *pi)
{
    const char *name = drv_json_str(drv_json_get(pod, "metadata"), "name");
    size_t len = strlen(pi->ns) + strlen(name ? name : "") + 2;
    char *k = malloc(len);
    if (k && drv_fmt(k, len, "%s/%s", pi->ns, name ? name : "") != DRV_OK) {
        free(k);
        return NULL;
    }
    return k;
}

static drv_err_t pod_ref_make(const cJSON *pod, const struct pod_info *pi, struct pod_ref *ref)
{
    ref->key = pod_key(pod, pi);
    ref->obj = cJSON_CreateObject();
    bool ok = ref->key && ref->obj && cJSON_AddStringToObject(ref->obj, "namespace", pi->ns);
    if (ok && pi->labels)
        ok = cJSON_AddItemToObject(ref->obj, "labels", cJSON_Duplicate(pi->labels, true));
    if (ok && pi->affinity)
        ok = cJSON_AddItemToObject(ref->obj, "affinity", cJSON_Duplicate(pi->affinity, true));
    if (ok && drv_json_get(drv_json_get(pod, "metadata"), "deletionTimestamp"))
        ok = cJSON_AddTrueToObject(ref->obj, "deleting") != NULL;
    if (ok)
        return DRV_OK;
    free(ref->key);
    cJSON_Delete(ref->obj);
    ref->key = NULL;
    ref->obj = NULL;
    return DRV_ERR_NOMEM;
}

drv_err_t drv_sched_cache_add_pod(drv_sched_cache_t *c, const cJSON *pod, drv_error_t *err)
{
    drv_sched_node_t *n = find_node(c, drv_json_str(drv_json_get(pod, "spec"), "nodeName"));
    if (!n)
        return DRV_OK;
    struct pod_info pi;
    drv_err_t r = pod_info_read(pod, &pi, err);
    if (r != DRV_OK)
        return r;
    /* Reserve first so that a failure leaves the node unchanged (and the pushes below cannot
     * fail). */
    size_t new_ports = 0;
    for (size_t i = 0; i < pi.nports; i++)
        new_ports += find_port(n, pi.ports[i]) == NULL;
    bool new_owner = pi.owner && find_owner(n, pi.owner) == NULL;
    r = drv_vec_reserve(&n->ports, new_ports);
    if (r == DRV_ERR_TOOBIG)
        return drv_error_set(err, r, 0, "scheduler cache: node %s: more than %d host ports in use",
                             n->name, PORT_KEYS_MAX);
    if (r == DRV_OK)
        r = drv_vec_reserve(&n->owners, new_owner);
    if (r == DRV_ERR_TOOBIG)
        return drv_error_set(err, r, 0, "scheduler cache: node %s: pods of more than %d owners",
                             n->name, NODE_OWNERS_MAX);
    struct pod_ref ref = {NULL, NULL};
    if (r == DRV_OK)
        r = pod_ref_make(pod, &pi, &ref);
    if (r == DRV_OK) {
        r = drv_vec_push(&n->pods, &ref);
        if (r != DRV_OK) {
            free(ref.key);
            cJSON_Delete(ref.obj);
        }
    }
    if (r == DRV_ERR_TOOBIG)
        return drv_error_set(err, r, 0, "scheduler cache: node %s: more than %d pods", n->name,
                             NODE_PODS_MAX);
    if (r != DRV_OK)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "scheduler cache");
    for (size_t i = 0; i < pi.nports; i++) {
        struct port_use *pu = find_port(n, pi.ports[i]);
        struct port_use nu = {pi.ports[i], 1};
        if (pu)
            pu->count++;
        else
            (void)!drv_vec_push(&n->ports, &nu); /* reserved above */
    }
    if (pi.owner) {
        struct owner_use *ou = find_owner(n, pi.owner);
        struct owner_use nu = {pi.owner, 1};
        if (ou)
            ou->count++;
        else
            (void)!drv_vec_push(&n->owners, &nu); /* reserved above */
    }
    n->npodaff += has_pod_terms(pi.affinity);
    n->used_cpu += pi.cpu;
    n->used_mem += pi.mem;
    n->score_cpu += pi.score_cpu;
    n->score_mem += pi.score_mem;
    n->npods++;
    return DRV_OK;
}

void drv_sched_cache_remove_pod(drv_sched_cache_t *c, const cJSON *pod)
{
    drv_sched_node_t *n = find_node(c, drv_json_str(drv_json_get(pod, "spec"), "nodeName"));
    struct pod_info pi;
    if (!n || !n->npods || pod_info_read(pod, &pi, NULL) != DRV_OK)
        return;
    for (size_t i = 0; i < pi.nports; i++) {
        struct port_use *pu = find_port(n, pi.ports[i]);
        if (pu && --pu->count == 0)
            drv_vec_remove(&n->ports, (size_t)(pu - (struct port_use *)n->ports.data));
    }
    struct owner_use *ou = pi.owner ? find_owner(n, pi.owner) : NULL;
    if (ou && --ou->count == 0)
        drv_vec_remove(&n->owners, (size_t)(ou - (struct owner_use *)n->owners.data));
    _cleanup_free_ char *key = pod_key(pod, &pi);
    struct pod_ref *pr = n->pods.data;
    for (size_t i = 0; key && i < n->pods.len; i++) {
        if (!strcmp(pr[i].key, key)) {
            n->npodaff -= has_pod_terms(drv_json_get(pr[i].obj, "affinity")) && n->npodaff;
            free(pr[i].key);
            cJSON_Delete(pr[i].obj);
            drv_vec_remove(&n->pods, i);
            break;
        }
    }
    n->used_cpu -= pi.cpu;
    n->used_mem -= pi.mem;
    n->score_cpu -= pi.score_cpu;
    n->score_mem -= pi.score_mem;
    n->npods--;
}

size_t drv_sched_cache_pods_on(const drv_sched_cache_t *c, const char *name)
{
    const drv_sched_node_t *n = find_node(c, name);
    return n ? n->npods : 0;
}

bool drv_sched_tolerates(const cJSON *t, const cJSON *taint)
{
    const char *teff = drv_json_str(t, "effect"), *eff = drv_json_str(taint, "effect");
    if (teff && *teff && (!eff || strcmp(teff, eff)))
        return false;
    const char *op = drv_json_str(t, "operator");
    bool exists = op && !strcmp(op, "Exists");
    const char *tkey = drv_json_str(t, "key"), *key = drv_json_str(taint, "key");
    if (tkey && *tkey) {
        if (!key || strcmp(tkey, key))
            return false;
    } else if (!exists) {
        return false;
    }
    if (exists)
        return true;
    const char *tv = drv_json_str(t, "value"), *v = drv_json_str(taint, "value");
    return !strcmp(tv ? tv : "", v ? v : "");
}

static const cJSON *untolerated(const cJSON *taints, const cJSON *tolerations)
{
    const cJSON *taint;
    cJSON_ArrayForEach(taint, (cJSON_IsArray(taints) ? taints : NULL))
    {
        const char *eff = drv_json_str(taint, "effect");
        if (!eff || (strcmp(eff, "NoSchedule") && strcmp(eff, "NoExecute")))
            continue;
        bool ok = false;
        const cJSON *t;
        cJSON_ArrayForEach(t, (cJSON_IsArray(tolerations) ? tolerations : NULL))
        {
            if (drv_sched_tolerates(t, taint)) {
                ok = true;
                break;
            }
        }
        if (!ok)
            return taint;
    }
    return NULL;
}

const cJSON *drv_sched_untolerated_taint(const cJSON *node, const cJSON *tolerations)
{
    return untolerated(drv_json_get(drv_json_get(node, "spec"), "taints"), tolerations);
}

static bool platform_ok(const drv_sched_node_t *n, const char *const *platforms)
{
    if (!platforms)
        return true;
    const char *os = n->os && *n->os ? n->os : "linux";
    if (!n->arch)
        return false;
    for (const char *const *p = platforms; *p; p++) {
        const char *slash = strchr(*p, '/');
        if (!slash)
            continue;
        size_t oslen = (size_t)(slash - *p);
        const char *arch = slash + 1, *end = strchr(arch, '/');
        size_t alen = end ? (size_t)(end - arch) : strlen(arch);
        if (strlen(os) == oslen && !strncmp(os, *p, oslen) && strlen(n->arch) == alen &&
            !strncmp(n->arch, arch, alen))
            return true;
    }
    return false;
}

/* ---- node affinity ---- */

#define REQUIRED "requiredDuringSchedulingIgnoredDuringExecution"
#define PREFERRED "preferredDuringSchedulingIgnoredDuringExecution"

static bool parse_ll(const char *s, long long *out)
{
    char *end = NULL;
    if (!s || !*s)
        return false;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return !*end && !errno;
}

/* One requirement of a node selector term against a node: a label (matchExpressions) or,
 * field, the node's name (matchFields metadata.name). NotIn and DoesNotExist match a node
 * without the label, Gt and Lt compare integers, as in Kubernetes. */
static bool node_req_ok(const cJSON *node, const cJSON *req, bool field)
{
    const cJSON *meta = drv_json_get(node, "metadata");
    const char *key = drv_json_str(req, "key"), *op = drv_json_str(req, "operator");
    if (!key || !op)
        return false;
    const char *have = NULL;
    if (!field)
        have = drv_json_str(drv_json_get(meta, "labels"), key);
    else if (!strcmp(key, "metadata.name"))
        have = drv_json_str(meta, "name");
    if (!strcmp(op, "Exists"))
        return have != NULL;
    if (!strcmp(op, "DoesNotExist"))
        return have == NULL;
    const cJSON *vals = drv_json_get(req, "values"), *v;
    if (!strcmp(op, "In") || !strcmp(op, "NotIn")) {
        bool in = false;
        cJSON_ArrayForEach(v, (cJSON_IsArray(vals) ? vals : NULL))
        {
            if (have && cJSON_IsString(v) && !strcmp(have, v->valuestring))
                in = true;
        }
        return !strcmp(op, "In") ? in : !in;
    }
    long long a, b;
    const cJSON *v0 = cJSON_GetArrayItem(vals, 0);
    if (!parse_ll(have, &a) || !cJSON_IsString(v0) || !parse_ll(v0->valuestring, &b))
        return false;
    if (!strcmp(op, "Gt"))
        return a > b;
    if (!strcmp(op, "Lt"))
        return a < b;
    return false;
}

/* A term's requirements all hold (AND); a term without any matches no node. */
static bool node_term_ok(const cJSON *node, const cJSON *term)
{
    const cJSON *exprs = drv_json_get(term, "matchExpressions"),
                *fields = drv_json_get(term, "matchFields"), *r;
    if (!cJSON_GetArraySize(exprs) && !cJSON_GetArraySize(fields))
        return false;
    cJSON_ArrayForEach(r, (cJSON_IsArray(exprs) ? exprs : NULL))
    {
        if (!node_req_ok(node, r, false))
            return false;
    }
    cJSON_ArrayForEach(r, (cJSON_IsArray(fields) ? fields : NULL))
    {
        if (!node_req_ok(node, r, true))
            return false;
    }
    return true;
}

bool drv_sched_node_affinity_ok(const cJSON *node, const cJSON *podspec)
{
    const cJSON *labels = drv_json_get(drv_json_get(node, "metadata"), "labels");
    const cJSON *sel = drv_json_get(podspec, "nodeSelector"), *kv;
    cJSON_ArrayForEach(kv, (cJSON_IsObject(sel) ? sel : NULL))
    {
        const char *have = drv_json_str(labels, kv->string);
        if (!have || !cJSON_IsString(kv) || strcmp(have, kv->valuestring))
            return false;
    }
    const cJSON *req =
        drv_json_get(drv_json_get(drv_json_get(podspec, "affinity"), "nodeAffinity"), REQUIRED);
    if (!cJSON_IsObject(req))
        return true;
    /* Terms are ORed; no term at all matches no node. */
    const cJSON *terms = drv_json_get(req, "nodeSelectorTerms"), *t;
    cJSON_ArrayForEach(t, (cJSON_IsArray(terms) ? terms : NULL))
    {
        if (node_term_ok(node, t))
            return true;
    }
    return false;
}

/* Whether the pod has no nodeSelector entry and no required node affinity, so that
 * drv_sched_node_affinity_ok passes every node: known once per pod, not asked per node (with
 * 10,000 nodes the per-node lookups in the pod spec were most of a placement). */
static bool node_rules_none(const cJSON *podspec)
{
    const cJSON *sel = drv_json_get(podspec, "nodeSelector");
    const cJSON *req =
        drv_json_get(drv_json_get(drv_json_get(podspec, "affinity"), "nodeAffinity"), REQUIRED);
    return !(cJSON_IsObject(sel) && sel->child) && !cJSON_IsObject(req);
}

/* Whether the pod has no preferred node affinity term (node_pref_score 0 on every node). */
static bool node_prefs_none(const cJSON *podspec)
{
    const cJSON *prefs =
        drv_json_get(drv_json_get(drv_json_get(podspec, "affinity"), "nodeAffinity"), PREFERRED);
    return !(cJSON_IsArray(prefs) && prefs->child);
}

/* Sum of the weights of the preferred node affinity terms the node matches. */
static int64_t node_pref_score(const cJSON *node, const cJSON *podspec)
{
    const cJSON *prefs =
        drv_json_get(drv_json_get(drv_json_get(podspec, "affinity"), "nodeAffinity"), PREFERRED);
    const cJSON *p;
    int64_t sum = 0;
    cJSON_ArrayForEach(p, (cJSON_IsArray(prefs) ? prefs : NULL))
    {
        if (node_term_ok(node, drv_json_get(p, "preference")))
            sum += drv_json_int_or(p, "weight", 0);
    }
    return sum;
}

/* ---- inter-pod affinity ---- */

/* A pod affinity term, its selector parsed once per placement. */
struct term {
    const cJSON *json;
    const char *topo;   /* topologyKey */
    const char *own_ns; /* namespace of the pod the term belongs to */
    drv_selector_t sel;
    bool has_sel; /* no (or a bad) labelSelector matches no pod */
    int64_t weight;
};

static void term_init(struct term *t, const cJSON *json, const char *own_ns, int64_t weight)
{
    memset(t, 0, sizeof(*t));
    t->json = json;
    t->topo = drv_json_str(json, "topologyKey");
    t->own_ns = own_ns;
    t->weight = weight;
    const cJSON *ls = drv_json_get(json, "labelSelector");
    t->has_sel = cJSON_IsObject(ls) && drv_selector_from_json(ls, &t->sel, NULL) == DRV_OK;
}

static void terms_free(struct term *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].has_sel)
            drv_selector_free(&t[i].sel);
}

/* The pod's own namespace unless the term lists namespaces; namespaceSelector {} is every
 * namespace (the model refuses any other namespaceSelector). */
static bool term_matches(const struct term *t, const char *ns, const cJSON *labels)
{
    if (!t->has_sel || !t->topo)
        return false;
    if (!cJSON_IsObject(drv_json_get(t->json, "namespaceSelector"))) {
        const cJSON *nss = drv_json_get(t->json, "namespaces"), *n;
        bool in = false;
        if (cJSON_GetArraySize(nss) > 0) {
            cJSON_ArrayForEach(n, nss)
            {
                if (cJSON_IsString(n) && !strcmp(n->valuestring, ns))
                    in = true;
            }
        } else {
            in = !strcmp(ns, t->own_ns);
        }
        if (!in)
            return false;
    }
    return drv_selector_matches(&t->sel, labels);
}

/* Terms of one kind ("podAffinity"/"podAntiAffinity", required or preferred) of affinity;
 * preferred terms carry sign * their weight, required ones sign. */
static size_t terms_read(const cJSON *affinity, const char *kind, bool required, const char *ns,
                         int64_t sign, struct term *out)
{
    const cJSON *arr = drv_json_get(drv_json_get(affinity, kind), required ? REQUIRED : PREFERRED);
    const cJSON *e;
    size_t n = 0;
    cJSON_ArrayForEach(e, (cJSON_IsArray(arr) ? arr : NULL))
    {
        if (n == POD_TERMS_MAX)
            break;
        if (required)
            term_init(&out[n++], e, ns, sign);
        else
            term_init(&out[n++], drv_json_get(e, "podAffinityTerm"), ns,
                      sign * drv_json_int_or(e, "weight", 0));
    }
    return n;
}

/* Counts per topology domain (a node label key and value). tag says what is counted:
 * TAG_AFF + i and TAG_ANTI + i pods matching the pod's i-th required term, TAG_EXIST_ANTI
 * existing pods whose required anti-affinity the pod matches, TAG_SCORE the preferred
 * weights. */
struct dom {
    int tag;
    const char *key, *value;
    int64_t n;
};
#define TAG_AFF 0
#define TAG_ANTI POD_TERMS_MAX
#define TAG_EXIST_ANTI (2 * POD_TERMS_MAX)
#define TAG_SCORE (2 * POD_TERMS_MAX + 1)
/* Distinct domains counted for one placement. */
#define DOMS_MAX (1 << 20)

static drv_err_t dom_add(drv_vec_t *v, int tag, const char *key, const cJSON *labels, int64_t n)
{
    const char *value = key ? drv_json_str(labels, key) : NULL;
    if (!value)
        return DRV_OK; /* a node without the label is in no domain of that key */
    struct dom *d = v->data;
    for (size_t i = 0; i < v->len; i++) {
        if (d[i].tag == tag && !strcmp(d[i].key, key) && !strcmp(d[i].value, value)) {
            d[i].n += n;
            return DRV_OK;
        }
    }
    struct dom nd = {tag, key, value, n};
    return drv_vec_push(v, &nd);
}

static int64_t dom_sum(const drv_vec_t *v, int tag, const cJSON *labels)
{
    const struct dom *d = v->data;
    int64_t sum = 0;
    for (size_t i = 0; i < v->len; i++) {
        if (d[i].tag != tag)
            continue;
        const char *have = drv_json_str(labels, d[i].key);
        if (have && !strcmp(have, d[i].value))
            sum += d[i].n;
    }
    return sum;
}

/* The incoming pod's terms and what the pods already bound say about each domain. */
struct interpod {
    struct term aff[POD_TERMS_MAX], anti[POD_TERMS_MAX], pref[2 * POD_TERMS_MAX];
    size_t naff, nanti, npref;
    drv_vec_t dom;
    bool aff_seen; /* some bound pod matches all the required affinity terms */
    bool self_ok;  /* the pod matches all its own required affinity terms */
    bool active;   /* any rule at all: otherwise nothing to filter or score */
};

static void interpod_free(struct interpod *ip)
{
    terms_free(ip->aff, ip->naff);
    terms_free(ip->anti, ip->nanti);
    terms_free(ip->pref, ip->npref);
    drv_vec_free(&ip->dom);
}

static bool matches_all(const struct term *t, size_t n, const char *ns, const cJSON *labels)
{
    for (size_t i = 0; i < n; i++)
        if (!term_matches(&t[i], ns, labels))
            return false;
    return n > 0;
}

/* What one bound pod's own terms say about the incoming pod: its required anti-affinity
 * keeps the incoming pod out of its domain, its preferred terms (and its required affinity,
 * with weight 1 as kube-scheduler's hardPodAffinityWeight) score it. */
static drv_err_t interpod_existing(struct interpod *ip, const struct pod_info *pi, const cJSON *ref,
                                   const cJSON *nlabels)
{
    const cJSON *aff = drv_json_get(ref, "affinity");
    if (!aff)
        return DRV_OK;
    const char *ns = drv_json_str_or(ref, "namespace", "default");
    struct term *t = malloc(sizeof(*t) * POD_TERMS_MAX);
    if (!t)
        return DRV_ERR_NOMEM;
    static const struct {
        const char *kind;
        bool required;
        int64_t sign;
        int tag;
    } kinds[] = {{"podAntiAffinity", true, 1, TAG_EXIST_ANTI},
                 {"podAffinity", true, 1, TAG_SCORE},
                 {"podAffinity", false, 1, TAG_SCORE},
                 {"podAntiAffinity", false, -1, TAG_SCORE}};
    drv_err_t r = DRV_OK;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]) && r == DRV_OK; k++) {
        size_t n = terms_read(aff, kinds[k].kind, kinds[k].required, ns, kinds[k].sign, t);
        for (size_t i = 0; i < n && r == DRV_OK; i++)
            if (term_matches(&t[i], pi->ns, pi->labels))
                r = dom_add(&ip->dom, kinds[k].tag, t[i].topo, nlabels, t[i].weight);
        terms_free(t, n);
    }
    free(t);
    return r;
}

static drv_err_t interpod_prepare(const drv_sched_cache_t *c, const struct pod_info *pi,
                                  struct interpod *ip)
{
    memset(ip, 0, sizeof(*ip));
    drv_vec_init(&ip->dom, sizeof(struct dom), DOMS_MAX);
    const cJSON *aff = pi->affinity;
    ip->naff = terms_read(aff, "podAffinity", true, pi->ns, 1, ip->aff);
    ip->nanti = terms_read(aff, "podAntiAffinity", true, pi->ns, 1, ip->anti);
    ip->npref = terms_read(aff, "podAffinity", false, pi->ns, 1, ip->pref);
    ip->npref += terms_read(aff, "podAntiAffinity", false, pi->ns, -1, ip->pref + ip->npref);
    ip->self_ok = matches_all(ip->aff, ip->naff, pi->ns, pi->labels);
    drv_err_t r = DRV_OK;
    bool own = ip->naff || ip->nanti || ip->npref;
    /* Without terms of its own, only the bound pods that have some can concern the pod:
     * the common case costs nothing more than before. */
    for (size_t i = 0; i < c->n && r == DRV_OK; i++) {
        const drv_sched_node_t *n = &c->nodes[i];
        const struct pod_ref *pr = n->pods.data;
        if (!own && !n->npodaff)
            continue;
        for (size_t j = 0; j < n->pods.len && r == DRV_OK; j++) {
            const cJSON *ref = pr[j].obj;
            const char *ns = drv_json_str_or(ref, "namespace", "default");
            const cJSON *labels = drv_json_get(ref, "labels");
            if (!own && !has_pod_terms(drv_json_get(ref, "affinity")))
                continue;
            ip->active = true;
            if (matches_all(ip->aff, ip->naff, ns, labels)) {
                ip->aff_seen = true;
                for (size_t k = 0; k < ip->naff && r == DRV_OK; k++)
                    r = dom_add(&ip->dom, TAG_AFF + (int)k, ip->aff[k].topo, n->labels, 1);
            }
            for (size_t k = 0; k < ip->nanti && r == DRV_OK; k++)
                if (term_matches(&ip->anti[k], ns, labels))
                    r = dom_add(&ip->dom, TAG_ANTI + (int)k, ip->anti[k].topo, n->labels, 1);
            for (size_t k = 0; k < ip->npref && r == DRV_OK; k++)
                if (term_matches(&ip->pref[k], ns, labels))
                    r = dom_add(&ip->dom, TAG_SCORE, ip->pref[k].topo, n->labels,
                                ip->pref[k].weight);
            if (r == DRV_OK)
                r = interpod_existing(ip, pi, ref, n->labels);
        }
    }
    ip->active = ip->active || own;
    return r;
}

/* ---- topology spread ---- */

/* One of the pod's topologySpreadConstraints and the matching pods per domain of its key, over
 * the nodes it considers (nodeAffinityPolicy Honor: those that pass the pod's node affinity;
 * nodeTaintsPolicy Honor: those whose taints it tolerates; the defaults are Honor and Ignore). */
struct spread {
    const char *topo;
    int64_t max_skew, min_domains;
    bool hard;     /* DoNotSchedule (else ScheduleAnyway: a score) */
    int self;      /* 1 when the pod matches its own selector */
    int64_t min;   /* the fewest matching pods in a domain */
    drv_vec_t dom; /* struct dom, tag 0 */
};

struct spreads {
    struct spread s[POD_TERMS_MAX];
    size_t n;
};

static void spreads_free(struct spreads *sp)
{
    for (size_t i = 0; i < sp->n; i++)
        drv_vec_free(&sp->s[i].dom);
    sp->n = 0;
}

static bool spread_node_counts(const cJSON *c, const struct pod_info *pi, const drv_sched_node_t *n)
{
    const char *pol = drv_json_str(c, "nodeAffinityPolicy");
    if ((!pol || !strcmp(pol, "Honor")) && !drv_sched_node_affinity_ok(n->obj, pi->spec))
        return false;
    pol = drv_json_str(c, "nodeTaintsPolicy");
    return !(pol && !strcmp(pol, "Honor") && untolerated(n->taints, pi->tolerations));
}

static drv_err_t spreads_prepare(const drv_sched_cache_t *c, const struct pod_info *pi,
                                 struct spreads *sp)
{
    sp->n = 0;
    const cJSON *arr = drv_json_get(pi->spec, "topologySpreadConstraints"), *e;
    drv_err_t r = DRV_OK;
    cJSON_ArrayForEach(e, (cJSON_IsArray(arr) ? arr : NULL))
    {
        if (sp->n == POD_TERMS_MAX || r != DRV_OK)
            break;
        struct spread *s = &sp->s[sp->n++];
        memset(s, 0, sizeof(*s));
        drv_vec_init(&s->dom, sizeof(struct dom), DOMS_MAX);
        s->topo = drv_json_str(e, "topologyKey");
        s->max_skew = drv_json_int_or(e, "maxSkew", 1);
        s->min_domains = drv_json_int_or(e, "minDomains", 1);
        const char *w = drv_json_str(e, "whenUnsatisfiable");
        s->hard = !w || !strcmp(w, "DoNotSchedule");
        drv_selector_t sel;
        const cJSON *ls = drv_json_get(e, "labelSelector");
        bool has_sel = cJSON_IsObject(ls) && drv_selector_from_json(ls, &sel, NULL) == DRV_OK;
        s->self = has_sel && drv_selector_matches(&sel, pi->labels);
        for (size_t i = 0; i < c->n && r == DRV_OK; i++) {
            const drv_sched_node_t *n = &c->nodes[i];
            if (!s->topo || !drv_json_str(n->labels, s->topo) || !spread_node_counts(e, pi, n))
                continue;
            int64_t cnt = 0;
            const struct pod_ref *pr = n->pods.data;
            for (size_t j = 0; has_sel && j < n->pods.len; j++) {
                const cJSON *ref = pr[j].obj;
                cnt += !drv_json_get(ref, "deleting") &&
                       !strcmp(drv_json_str_or(ref, "namespace", "default"), pi->ns) &&
                       drv_selector_matches(&sel, drv_json_get(ref, "labels"));
            }
            r = dom_add(&s->dom, 0, s->topo, n->labels, cnt);
        }
        if (has_sel)
            drv_selector_free(&sel);
        const struct dom *d = s->dom.data;
        for (size_t k = 0; k < s->dom.len; k++)
            if (k == 0 || d[k].n < s->min)
                s->min = d[k].n;
        /* Fewer domains than minDomains: the missing ones count as empty. */
        if (s->hard && (int64_t)s->dom.len < s->min_domains)
            s->min = 0;
    }
    return r;
}

static const char *spreads_filter(const struct spreads *sp, const drv_sched_node_t *n)
{
    for (size_t k = 0; k < sp->n; k++) {
        const struct spread *s = &sp->s[k];
        if (!s->hard)
            continue;
        if (!s->topo || !drv_json_str(n->labels, s->topo))
            return "node(s) didn't match pod topology spread constraints (missing required label)";
        if (dom_sum(&s->dom, 0, n->labels) + s->self - s->min > s->max_skew)
            return "node(s) didn't match pod topology spread constraints";
    }
    return NULL;
}

/* ScheduleAnyway constraints: the fewer matching pods in the node's domains the better (the
 * score is their negated sum; a node without a key gets the worst). */
static int64_t spreads_score(const struct spreads *sp, const drv_sched_node_t *n)
{
    int64_t sum = 0;
    for (size_t k = 0; k < sp->n; k++) {
        const struct spread *s = &sp->s[k];
        if (s->hard)
            continue;
        if (!s->topo || !drv_json_str(n->labels, s->topo))
            sum += INT32_MAX;
        else
            sum += dom_sum(&s->dom, 0, n->labels);
    }
    return -sum;
}

/* The reason a node fails the inter-pod rules, or NULL. */
static const char *interpod_filter(const struct interpod *ip, const drv_sched_node_t *n)
{
    if (!ip->active)
        return NULL;
    bool ok = true;
    for (size_t k = 0; k < ip->naff && ok; k++)
        ok = ip->aff[k].topo && drv_json_str(n->labels, ip->aff[k].topo) &&
             dom_sum(&ip->dom, TAG_AFF + (int)k, n->labels) > 0;
    if (!ok && !ip->aff_seen && ip->self_ok) {
        /* The first pod of a group that wants to be with its own kind: any node that has
         * the topology labels, as in Kubernetes. */
        ok = true;
        for (size_t k = 0; k < ip->naff && ok; k++)
            ok = ip->aff[k].topo && drv_json_str(n->labels, ip->aff[k].topo);
    }
    if (!ok)
        return "node(s) didn't match pod affinity rules";
    for (size_t k = 0; k < ip->nanti; k++)
        if (dom_sum(&ip->dom, TAG_ANTI + (int)k, n->labels) > 0)
            return "node(s) didn't match pod anti-affinity rules";
    if (dom_sum(&ip->dom, TAG_EXIST_ANTI, n->labels) > 0)
        return "node(s) didn't satisfy existing pods anti-affinity rules";
    return NULL;
}

#define REASONS_MAX 16

struct reasons {
    struct {
        char msg[160];
        size_t count;
    } r[REASONS_MAX];
    size_t n;
};

static void reason_add(struct reasons *rs, const char *msg)
{
    for (size_t i = 0; i < rs->n; i++) {
        if (!strcmp(rs->r[i].msg, msg)) {
            rs->r[i].count++;
            return;
        }
    }
    if (rs->n == REASONS_MAX) {
        rs->r[REASONS_MAX - 1].count++;
        drv_fmt_cut(rs->r[REASONS_MAX - 1].msg, sizeof(rs->r[0].msg), "%s",
                    "node(s) did not fit for other reasons");
        return;
    }
    drv_fmt_cut(rs->r[rs->n].msg, sizeof(rs->r[0].msg), "%s", msg);
    rs->r[rs->n++].count = 1;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void reasons_format(const struct reasons *rs, size_t nnodes, char *out, size_t outsz)
{
    if (!out || !outsz)
        return;
    if (!nnodes) {
        drv_fmt_cut(out, outsz, "0/0 nodes are available: no nodes registered.");
        return;
    }
    char items[REASONS_MAX][200];
    char *ptrs[REASONS_MAX];
    for (size_t i = 0; i < rs->n; i++) {
        drv_fmt_cut(items[i], sizeof(items[i]), "%zu %s", rs->r[i].count, rs->r[i].msg);
        ptrs[i] = items[i];
    }
    qsort(ptrs, rs->n, sizeof(ptrs[0]), str_cmp);
    size_t len = (size_t)snprintf(out, outsz, "0/%zu nodes are available: ", nnodes);
    for (size_t i = 0; i < rs->n && len < outsz; i++)
        len += (size_t)snprintf(out + len, outsz - len, "%s%s", i ? ", " : "", ptrs[i]);
    if (len < outsz)
        drv_fmt_cut(out + len, outsz - len, ".");
}

/* Free fraction after placing, in thousandths. */
static int64_t free_milli(int64_t alloc, int64_t used, int64_t req)
{
    if (alloc <= 0)
        return 0;
    int64_t left = alloc - used - req;
    if (left <= 0)
        return 0;
    /* alloc and left are at most 2^62: divide first to stay in range. */
    return left >= INT64_MAX / 1000 ? (left / (alloc / 1000 + 1)) : left * 1000 / alloc;
}

size_t drv_sched_nodes_to_find(size_t n)
{
    /* kube-scheduler's numFeasibleNodesToFind with percentageOfNodesToScore unset. */
    if (n < 100)
        return n;
    size_t pct = n / 125 >= 45 ? 5 : 50 - n / 125;
    size_t k = n * pct / 100;
    return k < 100 ? 100 : k;
}

drv_err_t drv_sched_place_cached(drv_sched_cache_t *c, const cJSON *pod,
                                 const char *const *platforms, char *node, size_t nodesz,
                                 char *reason, size_t reasonsz, drv_error_t *err)
{
    struct pod_info pi;
    drv_err_t r = pod_info_read(pod, &pi, err);
    if (r != DRV_OK)
        return r;
    struct reasons rs = {.n = 0};
    _cleanup_free_ uint32_t *feasible = malloc((c->n ? c->n : 1) * sizeof(*feasible));
    _cleanup_free_ int64_t *la = malloc((c->n ? c->n : 1) * sizeof(*la));
    _cleanup_free_ int64_t *na = malloc((c->n ? c->n : 1) * sizeof(*na));
    _cleanup_free_ int64_t *ipw = malloc((c->n ? c->n : 1) * sizeof(*ipw));
    _cleanup_free_ int64_t *tsw = malloc((c->n ? c->n : 1) * sizeof(*tsw));
    _cleanup_free_ struct interpod *ip = calloc(1, sizeof(*ip));
    _cleanup_free_ struct spreads *sp = calloc(1, sizeof(*sp));
    if (!feasible || !la || !na || !ipw || !tsw || !ip || !sp)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "scheduling");
    r = interpod_prepare(c, &pi, ip);
    if (r == DRV_OK)
        r = spreads_prepare(c, &pi, sp);
    if (r != DRV_OK) {
        interpod_free(ip);
        spreads_free(sp);
        return drv_error_set(err, r, 0, "scheduling: affinity and spread: more than %d domains",
                             DOMS_MAX);
    }
    size_t nf = 0;
    uint32_t max_count = 0;
    bool any_node = node_rules_none(pi.spec), no_prefs = node_prefs_none(pi.spec);
    /* A big fleet is searched from where the last placement stopped, until enough feasible
     * nodes are found; every node searched goes through every filter. */
    size_t want = drv_sched_nodes_to_find(c->n);
    size_t start = want < c->n && c->next_start < c->n ? c->next_start : 0, seen = 0;
    for (; seen < c->n && nf < want; seen++) {
        size_t i = start + seen < c->n ? start + seen : start + seen - c->n;
        const drv_sched_node_t *n = &c->nodes[i];
        if (!n->ready) {
            reason_add(&rs, "node(s) were not ready");
            continue;
        }
        if (n->unschedulable) {
            reason_add(&rs, "node(s) were unschedulable");
            continue;
        }
        if (!platform_ok(n, platforms)) {
            reason_add(&rs, "node(s) didn't match the image's platforms");
            continue;
        }
        if (!any_node && !drv_sched_node_affinity_ok(n->obj, pi.spec)) {
            reason_add(&rs, "node(s) didn't match Pod's node affinity/selector");
            continue;
        }
        const cJSON *taint = untolerated(n->taints, pi.tolerations);
        if (taint) {
            char msg[160];
            const char *v = drv_json_str(taint, "value");
            drv_fmt_cut(msg, sizeof(msg), "node(s) had untolerated taint {%.60s: %.60s}",
                        drv_json_str(taint, "key") ? drv_json_str(taint, "key") : "", v ? v : "");
            reason_add(&rs, msg);
            continue;
        }
        bool fits = true;
        if (n->alloc_pods >= 0 && (int64_t)n->npods + 1 > n->alloc_pods) {
            reason_add(&rs, "Too many pods");
            fits = false;
        }
        if (pi.cpu > 0 && n->used_cpu + pi.cpu > n->alloc_cpu) {
            reason_add(&rs, "Insufficient cpu");
            fits = false;
        }
        if (pi.mem > 0 && n->used_mem + pi.mem > n->alloc_mem) {
            reason_add(&rs, "Insufficient memory");
            fits = false;
        }
        if (!fits)
            continue;
        bool port_clash = false;
        for (size_t k = 0; k < pi.nports && !port_clash; k++)
            port_clash = find_port(n, pi.ports[k]) != NULL;
        if (port_clash) {
            reason_add(&rs, "node(s) didn't have free ports for the requested pod ports");
            continue;
        }
        const char *why = interpod_filter(ip, n);
        if (!why)
            why = spreads_filter(sp, n);
        if (why) {
            reason_add(&rs, why);
            continue;
        }
        tsw[nf] = spreads_score(sp, n);
        na[nf] = no_prefs ? 0 : node_pref_score(n->obj, pi.spec);
        ipw[nf] = ip->active ? dom_sum(&ip->dom, TAG_SCORE, n->labels) : 0;
        feasible[nf] = (uint32_t)i;
        la[nf++] = (free_milli(n->alloc_cpu, n->score_cpu, pi.score_cpu) +
                    free_milli(n->alloc_mem, n->score_mem, pi.score_mem)) /
                   2;
        const struct owner_use *ou = pi.owner ? find_owner(n, pi.owner) : NULL;
        if (ou && ou->count > max_count)
            max_count = ou->count;
    }
    if (want < c->n)
        c->next_start = (start + seen) % c->n;
    interpod_free(ip);
    spreads_free(sp);
    if (!nf) {
        reasons_format(&rs, c->n, reason, reasonsz);
        return DRV_ERR_NOTFOUND;
    }
    /* Node and inter-pod affinity scores normalised to 0-1000 over the feasible nodes and
     * weighted 2, as kube-scheduler's default profile weighs them against the others. */
    int64_t na_max = 0, ip_min = 0, ip_max = 0, ts_min = 0, ts_max = 0;
    for (size_t k = 0; k < nf; k++) {
        na_max = na[k] > na_max ? na[k] : na_max;
        ip_min = k == 0 || ipw[k] < ip_min ? ipw[k] : ip_min;
        ip_max = k == 0 || ipw[k] > ip_max ? ipw[k] : ip_max;
        ts_min = k == 0 || tsw[k] < ts_min ? tsw[k] : ts_min;
        ts_max = k == 0 || tsw[k] > ts_max ? tsw[k] : ts_max;
    }
    size_t best = 0;
    int64_t best_score = -1;
    for (size_t k = 0; k < nf; k++) {
        const drv_sched_node_t *n = &c->nodes[feasible[k]];
        int64_t spread = 1000;
        if (max_count) {
            const struct owner_use *ou = find_owner(n, pi.owner);
            spread = (int64_t)(max_count - (ou ? ou->count : 0)) * 1000 / max_count;
        }
        int64_t score = la[k] + spread;
        if (na_max > 0)
            score += 2 * (na[k] * 1000 / na_max);
        if (ip_max > ip_min)
            score += 2 * ((ipw[k] - ip_min) * 1000 / (ip_max - ip_min));
        if (ts_max > ts_min)
            score += 2 * ((tsw[k] - ts_min) * 1000 / (ts_max - ts_min));
        /* Nodes are sorted by name: of equal scores the smaller name (index) wins, also when
         * the search began in the middle. */
        if (score > best_score || (score == best_score && feasible[k] < best)) {
            best_score = score;
            best = feasible[k];
        }
    }
    const char *name = c->nodes[best].name;
    if (strlen(name) >= nodesz)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "node name \"%.64s\" longer than %zu", name,
                             nodesz);
    memcpy(node, name, strlen(name) + 1);
    return DRV_OK;
}

drv_err_t drv_sched_place(const cJSON *pod, const cJSON *nodes, const cJSON *bound_pods,
                          const char *const *platforms, char *node, size_t nodesz, char *reason,
                          size_t reasonsz, drv_error_t *err)
{
    drv_sched_cache_t c;
    drv_sched_cache_init(&c);
    drv_err_t r = drv_sched_cache_set_nodes(&c, nodes, err);
    const cJSON *p;
    cJSON_ArrayForEach(p, (r == DRV_OK && cJSON_IsArray(bound_pods) ? bound_pods : NULL))
    {
        r = drv_sched_cache_add_pod(&c, p, err);
        if (r != DRV_OK)
            break;
    }
    if (r == DRV_OK)
        r = drv_sched_place_cached(&c, pod, platforms, node, nodesz, reason, reasonsz, err);
    drv_sched_cache_free(&c);
    return r;
}
