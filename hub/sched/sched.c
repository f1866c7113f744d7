/* The scheduler: kube-scheduler's filters and scores over a per-node usage cache, so that a
 * placement is one pass over the nodes. See sched.h for the rules. */
#include "sched/sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/quantity.h"
#include "drover/vec.h"

struct port_use {
    uint32_t key; /* port << 2 | protocol */
    uint32_t count;
};

struct owner_use {
    uint64_t hash;
    uint32_t count;
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
};

/* Distinct host ports a node can have in use: every port of three protocols. */
#define PORT_KEYS_MAX (3 * 65536)
/* Distinct owners (ReplicaSets, DaemonSets, ...) of the pods on one node. */
#define NODE_OWNERS_MAX 65536

#define POD_PORTS_MAX 64

/* What placement needs of a pod, read once. */
struct pod_info {
    int64_t cpu, mem, score_cpu, score_mem;
    uint32_t ports[POD_PORTS_MAX];
    size_t nports;
    uint64_t owner; /* 0: none */
    const cJSON *selector, *tolerations;
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
}

static void node_free(drv_sched_node_t *n)
{
    free(n->name);
    cJSON_Delete(n->obj);
    drv_vec_free(&n->ports);
    drv_vec_free(&n->owners);
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
            drv_vec_init(&old->ports, sizeof(struct port_use), PORT_KEYS_MAX);
            drv_vec_init(&old->owners, sizeof(struct owner_use), NODE_OWNERS_MAX);
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
    pi->selector = drv_json_get(spec, "nodeSelector");
    pi->tolerations = drv_json_get(spec, "tolerations");
    pi->owner = owner_key(pod);
    const cJSON *ctrs = drv_json_get(spec, "containers"), *ctr;
    cJSON_ArrayForEach(ctr, (cJSON_IsArray(ctrs) ? ctrs : NULL))
    {
        const cJSON *ports = drv_json_get(ctr, "ports"), *p;
        cJSON_ArrayForEach(p, (cJSON_IsArray(ports) ? ports : NULL))
        {
            const cJSON *hp = drv_json_get(p, "hostPort");
            if (!cJSON_IsNumber(hp) || hp->valuedouble < 1 || hp->valuedouble > 65535)
                continue;
            if (pi->nports == POD_PORTS_MAX)
                return drv_error_set(err, DRV_ERR_INVALID, 0,
                                     "spec.containers: more than %d hostPorts", POD_PORTS_MAX);
            pi->ports[pi->nports++] =
                ((uint32_t)hp->valuedouble << 2) | proto_code(drv_json_str(p, "protocol"));
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

static bool selector_ok(const drv_sched_node_t *n, const cJSON *selector)
{
    const cJSON *kv;
    cJSON_ArrayForEach(kv, (cJSON_IsObject(selector) ? selector : NULL))
    {
        const char *have = drv_json_str(n->labels, kv->string);
        if (!have || !cJSON_IsString(kv) || strcmp(have, kv->valuestring))
            return false;
    }
    return true;
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

drv_err_t drv_sched_place_cached(const drv_sched_cache_t *c, const cJSON *pod,
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
    if (!feasible || !la)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "scheduling");
    size_t nf = 0;
    uint32_t max_count = 0;
    for (size_t i = 0; i < c->n; i++) {
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
        if (!selector_ok(n, pi.selector)) {
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
        feasible[nf] = (uint32_t)i;
        la[nf++] = (free_milli(n->alloc_cpu, n->score_cpu, pi.score_cpu) +
                    free_milli(n->alloc_mem, n->score_mem, pi.score_mem)) /
                   2;
        const struct owner_use *ou = pi.owner ? find_owner(n, pi.owner) : NULL;
        if (ou && ou->count > max_count)
            max_count = ou->count;
    }
    if (!nf) {
        reasons_format(&rs, c->n, reason, reasonsz);
        return DRV_ERR_NOTFOUND;
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
        /* Nodes are sorted by name: the first of equal scores has the smaller name. */
        if (score > best_score) {
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
