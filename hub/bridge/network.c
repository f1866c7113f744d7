/* The "network" section of every node's desired state (docs/PROTOCOL.md "Network"): peers,
 * Services with their endpoints, pod IPs, namespaces and NetworkPolicies, kept from the
 * store's change log. The cluster-wide part is built once per change and shared by every
 * node's document; only podCIDR, listenPort and peers are a node's own. */
#include "bridge/bridge_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/base64.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/log.h"
#include "drover/model.h"

#define BNET_MAX_ENTRIES (1u << 20)
#define BNET_KEEPALIVE_S 25
#define BNET_AFFINITY_TIMEOUT_S 10800

/* One object as the section needs it. */
typedef struct bnet_obj {
    char *key;
    char *group; /* slices: "ns/<service name>"; else NULL */
    char *text;  /* compact canonical JSON */
} bnet_obj_t;

typedef struct bpeer {
    bnode_t *n;
    drv_net_cidr_t cidr;
    bool clash; /* overlaps another peer's podCIDR */
} bpeer_t;

static void obj_free(bnet_obj_t *o)
{
    if (o) {
        free(o->key);
        free(o->group);
        free(o->text);
        free(o);
    }
}

/* ---- addresses ---- */

/* (drover/netstate.h has the parsers the agent checks the section with.) */
static bool cidr_parse(const char *s, drv_net_cidr_t *out)
{
    return drv_net_cidr_parse(s, false, out, NULL) == DRV_OK;
}

static bool cidr_inside(drv_net_cidr_t outer, drv_net_cidr_t inner)
{
    return inner.prefix >= outer.prefix && drv_net_cidr_contains(outer, inner.addr);
}

static bool ip_inside(drv_net_cidr_t c, const char *ip)
{
    uint32_t a;
    return ip && drv_net_ip_parse(ip, &a) && drv_net_cidr_contains(c, a);
}

bool bnet_addr_norm(const char *addr, char out[BNET_ADDR_MAX])
{
    unsigned char buf[16];
    if (!addr)
        return false;
    if (inet_pton(AF_INET, addr, buf) == 1)
        return inet_ntop(AF_INET, buf, out, BNET_ADDR_MAX) != NULL;
    if (inet_pton(AF_INET6, addr, buf) != 1)
        return false;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!memcmp(buf, mapped, sizeof(mapped)))
        return inet_ntop(AF_INET, buf + 12, out, BNET_ADDR_MAX) != NULL;
    return inet_ntop(AF_INET6, buf, out, BNET_ADDR_MAX) != NULL;
}

bool bnet_key_ok(const char *key)
{
    if (!key || strlen(key) != DRV_NET_KEY_LEN)
        return false;
    unsigned char *raw = NULL;
    size_t n = 0;
    if (drv_base64_decode(key, DRV_NET_KEY_LEN, &raw, &n) != DRV_OK)
        return false;
    free(raw);
    return n == 32;
}

/* "1".."65535" exactly; 0 otherwise. */
static uint16_t port_of(const char *s)
{
    if (!s || *s < '1' || *s > '9' || strlen(s) > 5)
        return 0;
    char *end = NULL;
    long v = strtol(s, &end, 10);
    return *end || v > 65535 ? 0 : (uint16_t)v;
}

/* ---- tables ---- */

void bnet_init(bdesired_t *d)
{
    bnet_t *net = &d->net;
    drv_map_init_seeded(&net->services, BNET_MAX_ENTRIES, d->nodes.seed);
    drv_map_init_seeded(&net->slices, BNET_MAX_ENTRIES, d->nodes.seed);
    drv_map_init_seeded(&net->pods, BNET_MAX_ENTRIES, d->nodes.seed);
    drv_map_init_seeded(&net->namespaces, BNET_MAX_ENTRIES, d->nodes.seed);
    drv_map_init_seeded(&net->policies, BNET_MAX_ENTRIES, d->nodes.seed);
    net->cluster_cidr = (drv_net_cidr_t){.addr = 0x0a2a0000u, .prefix = 16};
    net->service_cidr = (drv_net_cidr_t){.addr = 0x0a2b0000u, .prefix = 16};
    DRV_FMT_LIT(net->cluster_domain, "cluster.local");
    net->stale = true;
}

drv_err_t bnet_config(bdesired_t *d, const char *cluster_cidr, const char *service_cidr,
                      const char *domain, drv_error_t *err)
{
    bnet_t *net = &d->net;
    if (cluster_cidr && !cidr_parse(cluster_cidr, &net->cluster_cidr))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "bridge: cluster CIDR \"%.40s\": expected a.b.c.d/n", cluster_cidr);
    if (service_cidr && !cidr_parse(service_cidr, &net->service_cidr))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "bridge: service CIDR \"%.40s\": expected a.b.c.d/n", service_cidr);
    if (domain && drv_fmt(net->cluster_domain, sizeof(net->cluster_domain), "%s", domain) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "bridge: cluster domain: too long");
    net->stale = true;
    return DRV_OK;
}

static void free_map(drv_map_t *m)
{
    void *v;
    for (size_t it = 0; drv_map_next(m, &it, NULL, &v);)
        obj_free(v);
    drv_map_free(m);
}

void bnet_clear(bdesired_t *d)
{
    bnet_t *net = &d->net;
    drv_map_t *maps[] = {&net->services, &net->slices, &net->pods, &net->namespaces,
                         &net->policies};
    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
        free_map(maps[i]);
        drv_map_init_seeded(maps[i], BNET_MAX_ENTRIES, d->nodes.seed);
    }
    /* What the Nodes say is read again; what the broker saw stays. */
    void *v;
    for (size_t it = 0; drv_map_next(&d->nodes, &it, NULL, &v);) {
        bnode_t *n = v;
        bnode_net_t keep = {0};
        memcpy(keep.observed, n->net.observed, sizeof(keep.observed));
        n->net = keep;
    }
    net->changed = net->stale = true;
}

void bnet_free(bdesired_t *d)
{
    bnet_t *net = &d->net;
    free_map(&net->services);
    free_map(&net->slices);
    free_map(&net->pods);
    free_map(&net->namespaces);
    free_map(&net->policies);
    cJSON_Delete(net->shared);
    net->shared = NULL;
    free(net->peers);
    net->peers = NULL;
}

/* Sets key's entry to text (taken; NULL removes it); a change marks the network changed. */
static void put(bnet_t *net, drv_map_t *m, const char *key, char *group, char *text)
{
    bnet_obj_t *old = drv_map_get(m, key);
    if (!text) {
        free(group);
        if (old) {
            drv_map_del(m, key);
            obj_free(old);
            net->changed = true;
        }
        return;
    }
    if (old && !strcmp(old->text, text) &&
        ((!old->group && !group) || (old->group && group && !strcmp(old->group, group)))) {
        free(text);
        free(group);
        return;
    }
    if (old) {
        free(old->text);
        free(old->group);
        old->text = text;
        old->group = group;
    } else {
        bnet_obj_t *o = calloc(1, sizeof(*o));
        if (!o || !(o->key = strdup(key)) || drv_map_put(m, o->key, o) != DRV_OK) {
            if (o)
                free(o->key);
            free(o);
            free(text);
            free(group);
            drv_log_error("bridge: cannot hold a network object", "key=%s", key);
            return;
        }
        o->text = text;
        o->group = group;
    }
    net->changed = true;
}

/* The compact canonical text of o (taken); NULL without memory. */
static char *text_of(cJSON *o)
{
    char *t = NULL;
    if (o) {
        drv_json_sort_keys(o);
        t = cJSON_PrintUnformatted(o);
    }
    cJSON_Delete(o);
    return t;
}

static bool add_copy(cJSON *dst, const char *k, const cJSON *v)
{
    cJSON *c = v ? cJSON_Duplicate(v, true) : cJSON_CreateObject();
    if (c && cJSON_AddItemToObject(dst, k, c))
        return true;
    cJSON_Delete(c);
    return false;
}

/* A pods[] entry: a pod with an IP of its own on the pod network (bound, not host-network,
 * not finished). */
static char *pod_text(const bnet_t *net, const cJSON *pod)
{
    const cJSON *spec = drv_json_get(pod, "spec"), *st = drv_json_get(pod, "status");
    const char *ip = drv_json_str(st, "podIP"), *node = drv_json_str(spec, "nodeName");
    const char *phase = drv_json_str(st, "phase");
    if (!ip_inside(net->cluster_cidr, ip) || !node || !*node ||
        drv_json_true(spec, "hostNetwork") ||
        (phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"))))
        return NULL;
    const cJSON *meta = drv_json_get(pod, "metadata");
    cJSON *o = cJSON_CreateObject(), *ports = cJSON_CreateArray();
    if (!o || !ports || !cJSON_AddItemToObject(o, "ports", ports)) {
        cJSON_Delete(o);
        cJSON_Delete(ports);
        return NULL;
    }
    bool ok =
        cJSON_AddStringToObject(o, "ip", ip) &&
        cJSON_AddStringToObject(o, "namespace", drv_json_str_or(meta, "namespace", "default")) &&
        cJSON_AddStringToObject(o, "name", drv_json_str_or(meta, "name", "")) &&
        cJSON_AddStringToObject(o, "node", node) &&
        add_copy(o, "labels", drv_json_get(meta, "labels"));
    /* Named ports only: what a policy's named port resolves to. */
    const cJSON *c, *p;
    cJSON_ArrayForEach(c, drv_json_get(spec, "containers"))
    {
        cJSON_ArrayForEach(p, drv_json_get(c, "ports"))
        {
            const char *name = drv_json_str(p, "name");
            int64_t cp = 0;
            if (!ok || !name || !*name || !drv_json_int(p, "containerPort", &cp))
                continue;
            cJSON *e = cJSON_CreateObject();
            ok = e && cJSON_AddItemToArray(ports, e) && cJSON_AddStringToObject(e, "name", name) &&
                 cJSON_AddStringToObject(e, "protocol", drv_json_str_or(p, "protocol", "TCP")) &&
                 cJSON_AddNumberToObject(e, "containerPort", (double)cp);
        }
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return text_of(o);
}

static char *ns_text(const cJSON *ns)
{
    const cJSON *meta = drv_json_get(ns, "metadata");
    const char *name = drv_json_str(meta, "name");
    cJSON *o = cJSON_CreateObject();
    if (!o || !name || !cJSON_AddStringToObject(o, "name", name) ||
        !add_copy(o, "labels", drv_json_get(meta, "labels"))) {
        cJSON_Delete(o);
        return NULL;
    }
    /* Kubernetes sets it on every namespace; policies select namespaces by it. */
    cJSON *l = drv_json_get(o, "labels");
    cJSON_DeleteItemFromObjectCaseSensitive(l, "kubernetes.io/metadata.name");
    if (!cJSON_AddStringToObject(l, "kubernetes.io/metadata.name", name)) {
        cJSON_Delete(o);
        return NULL;
    }
    return text_of(o);
}

/* An object as agents get it: no status, no bookkeeping. */
static char *stripped_text(const cJSON *obj, bool spec_only)
{
    const cJSON *meta = drv_json_get(obj, "metadata");
    cJSON *o = cJSON_CreateObject(), *m = cJSON_CreateObject();
    if (!o || !m || !cJSON_AddItemToObject(o, "metadata", m)) {
        cJSON_Delete(o);
        cJSON_Delete(m);
        return NULL;
    }
    static const char *const mkeys[] = {"name", "namespace", "uid", "labels"};
    bool ok = true;
    for (size_t i = 0; ok && i < sizeof(mkeys) / sizeof(mkeys[0]); i++)
        if (drv_json_get(meta, mkeys[i]))
            ok = add_copy(m, mkeys[i], drv_json_get(meta, mkeys[i]));
    static const char *const keys[] = {"apiVersion",  "kind",      "spec",
                                       "addressType", "endpoints", "ports"};
    for (size_t i = 0; ok && i < sizeof(keys) / sizeof(keys[0]); i++)
        if (drv_json_get(obj, keys[i]) && (!spec_only || !strcmp(keys[i], "spec")))
            ok = add_copy(o, keys[i], drv_json_get(obj, keys[i]));
    if (spec_only) /* a Service: uid and labels change nothing agents do */
        cJSON_DeleteItemFromObjectCaseSensitive(o, "metadata");
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return text_of(o);
}

void bnet_apply(bdesired_t *d, drv_kind_t kind, const char *key, const cJSON *obj)
{
    bnet_t *net = &d->net;
    switch (kind) {
    case DRV_KIND_POD: {
        /* Pods' addresses are in the documents only while a NetworkPolicy exists
         * (shared_build): without one, a pod that gets its IP changes no node's document, and
         * marking every node for it made each status report of a burst build the whole fleet's
         * documents again (to find them unchanged). */
        bool was = net->changed;
        put(net, &net->pods, key, NULL, obj ? pod_text(net, obj) : NULL);
        if (!was && net->changed && net->policies.n == 0) {
            net->changed = false;
            net->stale = true;
        }
        break;
    }
    case DRV_KIND_SERVICE:
        put(net, &net->services, key, NULL, obj ? stripped_text(obj, true) : NULL);
        break;
    case DRV_KIND_ENDPOINTSLICE: {
        const cJSON *meta = drv_json_get(obj, "metadata");
        const char *svc = drv_json_str(drv_json_get(meta, "labels"), "kubernetes.io/service-name");
        char *group = NULL;
        if (obj && svc &&
            asprintf(&group, "%s/%s", drv_json_str_or(meta, "namespace", "default"), svc) < 0)
            group = NULL;
        put(net, &net->slices, key, group, group ? stripped_text(obj, false) : NULL);
        break;
    }
    case DRV_KIND_NAMESPACE: {
        const char *name = drv_json_str(drv_json_get(obj, "metadata"), "name");
        const char *slash = strchr(key, '/');
        put(net, &net->namespaces,
            name    ? name
            : slash ? slash + 1
                    : key,
            NULL, obj ? ns_text(obj) : NULL);
        break;
    }
    case DRV_KIND_NETWORKPOLICY:
        put(net, &net->policies, key, NULL, obj ? stripped_text(obj, false) : NULL);
        break;
    default:
        break;
    }
}

/* ---- nodes ---- */

/* Where n's peers send their first handshake. */
static void node_endpoint(const bnode_net_t *f, char *out, size_t outsz)
{
    out[0] = '\0';
    if (f->endpoint_set[0]) {
        drv_fmt_cut(out, outsz, "%s", f->endpoint_set);
        return;
    }
    const char *obs = f->observed[0] ? f->observed : f->observed_ann;
    const char *host = NULL;
    char needle[BNET_ADDR_MAX + 2];
    if (obs[0]) {
        /* Seen from another address than any it has: a NAT between it and the hub. */
        if (drv_fmt(needle, sizeof(needle), "\n%s\n", obs) == DRV_OK &&
            strstr(f->addresses, needle))
            host = obs;
    } else if (f->first_internal[0]) {
        host = f->first_internal; /* no broker plugin: no observed address to check */
    }
    if (!host)
        return;
    uint16_t port = f->port ? f->port : DRV_NET_DEFAULT_PORT;
    if (drv_fmt(out, outsz, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, (unsigned)port) !=
        DRV_OK)
        out[0] = '\0';
}

static bool is_peer(const bnode_net_t *f)
{
    return f->exists && f->key[0] && f->pod_cidr[0];
}

/* Recomputes n's endpoint. What its peers see changed: every node is marked; what only its
 * own section says (a node with no key yet): n alone. */
static void node_settle(bdesired_t *d, bnode_t *n, const bnode_net_t *before)
{
    node_endpoint(&n->net, n->net.endpoint, sizeof(n->net.endpoint));
    const bnode_net_t *a = before, *b = &n->net;
    bool own =
        strcmp(a->pod_cidr, b->pod_cidr) || a->port != b->port || strcmp(a->endpoint, b->endpoint);
    if ((is_peer(a) || is_peer(b)) && (own || strcmp(a->key, b->key) ||
                                       a->relay_label != b->relay_label || a->exists != b->exists))
        d->net.changed = true;
    else if (own)
        bdesired_mark(d, n);
}

void bnet_node(bdesired_t *d, bnode_t *n, const cJSON *obj)
{
    bnode_net_t before = n->net, *f = &n->net;
    char observed[BNET_ADDR_MAX];
    memcpy(observed, f->observed, sizeof(observed));
    memset(f, 0, sizeof(*f));
    memcpy(f->observed, observed, sizeof(observed)); /* the broker's word, not the store's */
    if (obj) {
        const cJSON *meta = drv_json_get(obj, "metadata"), *ann = drv_json_get(meta, "annotations");
        f->exists = true;
        const char *cidr = drv_json_str(drv_json_get(obj, "spec"), "podCIDR");
        drv_net_cidr_t c;
        if (cidr && cidr_parse(cidr, &c))
            drv_fmt_cut(f->pod_cidr, sizeof(f->pod_cidr), "%s", cidr);
        const char *key = drv_json_str(ann, BNET_ANN_KEY);
        if (bnet_key_ok(key))
            memcpy(f->key, key, DRV_NET_KEY_LEN + 1);
        f->port = port_of(drv_json_str(ann, BNET_ANN_PORT));
        const char *ep = drv_json_str(ann, BNET_ANN_ENDPOINT);
        if (ep && strchr(ep, ':') && !strpbrk(ep, " \t\n\"") &&
            drv_fmt(f->endpoint_set, sizeof(f->endpoint_set), "%s", ep) != DRV_OK)
            f->endpoint_set[0] = '\0';
        if (!bnet_addr_norm(drv_json_str(ann, BNET_ANN_OBSERVED), f->observed_ann))
            f->observed_ann[0] = '\0';
        const char *relay = drv_json_str(drv_json_get(meta, "labels"), BNET_LABEL_RELAY);
        f->relay_label = relay && !strcmp(relay, "true");
        size_t used = 0;
        const cJSON *a;
        cJSON_ArrayForEach(a, drv_json_get(drv_json_get(obj, "status"), "addresses"))
        {
            const char *type = drv_json_str(a, "type");
            char addr[BNET_ADDR_MAX];
            if (!type || (strcmp(type, "InternalIP") && strcmp(type, "ExternalIP")) ||
                !bnet_addr_norm(drv_json_str(a, "address"), addr))
                continue;
            if (!strcmp(type, "InternalIP") && !f->first_internal[0])
                memcpy(f->first_internal, addr, sizeof(addr));
            int w = snprintf(f->addresses + used, sizeof(f->addresses) - used, "%s%s\n",
                             used ? "" : "\n", addr);
            if (w < 0 || (size_t)w >= sizeof(f->addresses) - used) {
                f->addresses[used] = '\0'; /* the first addresses are kept whole */
                break;
            }
            used += (size_t)w;
        }
    }
    node_settle(d, n, &before);
}

void bnet_observed(bdesired_t *d, bnode_t *n, const char *addr)
{
    bnode_net_t before = n->net;
    if (!bnet_addr_norm(addr, n->net.observed))
        n->net.observed[0] = '\0';
    node_settle(d, n, &before);
    bnet_settle(d);
}

void bnet_settle(bdesired_t *d)
{
    if (!d->net.changed)
        return;
    d->net.changed = false;
    d->net.stale = true;
    void *v;
    for (size_t it = 0; drv_map_next(&d->nodes, &it, NULL, &v);)
        bdesired_mark(d, v);
}

/* ---- the shared part ---- */

static int cmp_obj(const void *a, const void *b)
{
    return strcmp((*(bnet_obj_t *const *)a)->key, (*(bnet_obj_t *const *)b)->key);
}

static int cmp_slice(const void *a, const void *b)
{
    const bnet_obj_t *x = *(bnet_obj_t *const *)a, *y = *(bnet_obj_t *const *)b;
    int c = strcmp(x->group, y->group);
    return c ? c : strcmp(x->key, y->key);
}

/* The entries of m in order (cmp), a malloc'd array of *n. */
static bnet_obj_t **sorted(const drv_map_t *m, int (*cmp)(const void *, const void *), size_t *n)
{
    bnet_obj_t **v = calloc(m->n ? m->n : 1, sizeof(*v));
    void *val;
    *n = 0;
    for (size_t it = 0; v && *n < m->n && drv_map_next(m, &it, NULL, &val);)
        v[(*n)++] = val;
    if (v && *n > 1)
        qsort(v, *n, sizeof(*v), cmp);
    return v;
}

/* Appends every entry's text, parsed, to arr; entries the filter refuses are left out. */
static bool add_texts(cJSON *arr, bnet_obj_t **v, size_t n, const bnet_t *net, bool pods)
{
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_Parse(v[i]->text);
        if (o && pods && !ip_inside(net->cluster_cidr, drv_json_str(o, "ip"))) {
            cJSON_Delete(o); /* not on the pod network (the parser would refuse the section) */
            continue;
        }
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            return false;
        }
    }
    return true;
}

static bool str_or_empty_eq(const char *a, const char *b)
{
    return !strcmp(a ? a : "", b ? b : "");
}

/* The endpoints of a Service from its slices (svc_ports: its ports; targetPorts by name). */
static bool add_endpoints(cJSON *eps, const cJSON *svc_ports, bnet_obj_t **slices, size_t nsl,
                          const bnet_t *net)
{
    drv_map_t seen; /* one entry per address, the first slice's */
    drv_map_init(&seen, DRV_NET_ENDPOINTS_MAX);
    cJSON *parsed = cJSON_CreateArray(); /* keeps the keys of seen alive */
    bool ok = parsed != NULL;
    for (size_t s = 0; ok && s < nsl; s++) {
        cJSON *sl = cJSON_Parse(slices[s]->text);
        if (!sl || !cJSON_AddItemToArray(parsed, sl)) {
            cJSON_Delete(sl);
            ok = false;
            break;
        }
        const char *at = drv_json_str(sl, "addressType");
        if (at && strcmp(at, "IPv4"))
            continue;
        const cJSON *ports = drv_json_get(sl, "ports"), *ep;
        cJSON_ArrayForEach(ep, drv_json_get(sl, "endpoints"))
        {
            const cJSON *cond = drv_json_get(ep, "conditions"),
                        *ref = drv_json_get(ep, "targetRef");
            bool ready = true, serving, terminating = false;
            drv_json_bool(cond, "ready", &ready); /* unset: ready (as Kubernetes reads it) */
            serving = ready;
            drv_json_bool(cond, "serving", &serving);
            drv_json_bool(cond, "terminating", &terminating);
            const char *kind = drv_json_str(ref, "kind");
            const cJSON *a;
            cJSON_ArrayForEach(a, drv_json_get(ep, "addresses"))
            {
                const char *ip = cJSON_GetStringValue(a);
                if (!ok || !ip_inside(net->cluster_cidr, ip) || drv_map_get(&seen, ip) ||
                    cJSON_GetArraySize(eps) >= DRV_NET_ENDPOINTS_MAX)
                    continue;
                cJSON *e = cJSON_CreateObject();
                if (!e || !cJSON_AddItemToArray(eps, e)) {
                    cJSON_Delete(e);
                    ok = false;
                    break;
                }
                cJSON *tp = cJSON_AddArrayToObject(e, "targetPorts");
                ok = tp && cJSON_AddStringToObject(e, "ip", ip) &&
                     cJSON_AddStringToObject(e, "node", drv_json_str_or(ep, "nodeName", "")) &&
                     cJSON_AddStringToObject(
                         e, "pod",
                         kind && !strcmp(kind, "Pod") ? drv_json_str_or(ref, "name", "") : "") &&
                     cJSON_AddStringToObject(e, "hostname", drv_json_str_or(ep, "hostname", "")) &&
                     cJSON_AddBoolToObject(e, "ready", ready) &&
                     cJSON_AddBoolToObject(e, "serving", serving) &&
                     cJSON_AddBoolToObject(e, "terminating", terminating) &&
                     drv_map_put(&seen, ip, e) == DRV_OK;
                if (!ok)
                    break;
                /* One per Service port: the slice's port of that name and protocol. */
                const cJSON *sp;
                cJSON_ArrayForEach(sp, svc_ports)
                {
                    int64_t num = 0;
                    const cJSON *p;
                    cJSON_ArrayForEach(p, ports)
                    {
                        if (str_or_empty_eq(drv_json_str(p, "name"), drv_json_str(sp, "name")) &&
                            !strcmp(drv_json_str_or(p, "protocol", "TCP"),
                                    drv_json_str_or(sp, "protocol", "TCP")) &&
                            drv_json_int(p, "port", &num) && num > 0 && num <= 65535)
                            break;
                        num = 0;
                    }
                    ok = ok && cJSON_AddItemToArray(tp, cJSON_CreateNumber((double)num));
                }
            }
        }
    }
    drv_map_free(&seen);
    cJSON_Delete(parsed);
    return ok;
}

/* services[]: every Service with an address (ExternalName and not yet allocated ones are
 * left out), with the endpoints of its slices. */
static bool add_services(cJSON *arr, bnet_t *net)
{
    size_t ns = 0, nsl = 0;
    bnet_obj_t **svcs = sorted(&net->services, cmp_obj, &ns);
    bnet_obj_t **slices = sorted(&net->slices, cmp_slice, &nsl);
    bool ok = svcs && slices;
    size_t j = 0;
    for (size_t i = 0; ok && i < ns && (size_t)cJSON_GetArraySize(arr) < DRV_NET_SERVICES_MAX;
         i++) {
        while (j < nsl && strcmp(slices[j]->group, svcs[i]->key) < 0)
            j++;
        size_t k = j;
        while (k < nsl && !strcmp(slices[k]->group, svcs[i]->key))
            k++;
        cJSON *o = cJSON_Parse(svcs[i]->text);
        const cJSON *spec = drv_json_get(o, "spec");
        const char *type = drv_json_str_or(spec, "type", "ClusterIP");
        const char *ip = drv_json_str(spec, "clusterIP");
        const char *slash = strchr(svcs[i]->key, '/');
        bool known = !strcmp(type, "ClusterIP") || !strcmp(type, "NodePort") ||
                     !strcmp(type, "LoadBalancer");
        if (!o || !slash || !known || !ip ||
            (strcmp(ip, "None") && !ip_inside(net->service_cidr, ip))) {
            cJSON_Delete(o);
            ok = o != NULL;
            continue;
        }
        int64_t timeout = drv_json_int_at(spec, "sessionAffinityConfig.clientIP.timeoutSeconds", 1,
                                          86400, BNET_AFFINITY_TIMEOUT_S);
        char nsbuf[DRV_NET_LABEL_MAX + 1];
        if (drv_fmt(nsbuf, sizeof(nsbuf), "%.*s", (int)(slash - svcs[i]->key), svcs[i]->key) !=
            DRV_OK) {
            cJSON_Delete(o);
            continue;
        }
        cJSON *e = cJSON_CreateObject(), *ports = NULL, *eps = NULL;
        if (!e || !cJSON_AddItemToArray(arr, e)) {
            cJSON_Delete(e);
            cJSON_Delete(o);
            ok = false;
            break;
        }
        ok = cJSON_AddStringToObject(e, "namespace", nsbuf) &&
             cJSON_AddStringToObject(e, "name", slash + 1) &&
             cJSON_AddStringToObject(e, "type", type) &&
             cJSON_AddStringToObject(e, "clusterIP", ip) &&
             cJSON_AddStringToObject(e, "sessionAffinity",
                                     drv_json_str_or(spec, "sessionAffinity", "None")) &&
             cJSON_AddNumberToObject(e, "affinityTimeoutSeconds", (double)timeout) &&
             cJSON_AddStringToObject(e, "internalTrafficPolicy",
                                     drv_json_str_or(spec, "internalTrafficPolicy", "Cluster")) &&
             cJSON_AddStringToObject(e, "externalTrafficPolicy",
                                     drv_json_str_or(spec, "externalTrafficPolicy", "Cluster")) &&
             cJSON_AddBoolToObject(e, "publishNotReadyAddresses",
                                   drv_json_true(spec, "publishNotReadyAddresses")) &&
             (ports = cJSON_AddArrayToObject(e, "ports")) != NULL &&
             (eps = cJSON_AddArrayToObject(e, "endpoints")) != NULL;
        const cJSON *p;
        cJSON_ArrayForEach(p, drv_json_get(spec, "ports"))
        {
            int64_t port = 0;
            if (!ok || !drv_json_int(p, "port", &port) ||
                cJSON_GetArraySize(ports) >= DRV_NET_PORTS_MAX)
                continue;
            cJSON *q = cJSON_CreateObject();
            ok = q && cJSON_AddItemToArray(ports, q) &&
                 cJSON_AddStringToObject(q, "name", drv_json_str_or(p, "name", "")) &&
                 cJSON_AddStringToObject(q, "protocol", drv_json_str_or(p, "protocol", "TCP")) &&
                 cJSON_AddNumberToObject(q, "port", (double)port) &&
                 cJSON_AddNumberToObject(q, "nodePort", (double)drv_json_int_or(p, "nodePort", 0));
        }
        if (ok)
            ok = add_endpoints(eps, ports, slices + j, k - j, net);
        cJSON_Delete(o);
        j = k;
    }
    free(svcs);
    free(slices);
    return ok;
}

static int cmp_peer(const void *a, const void *b)
{
    return strcmp(((const bpeer_t *)a)->n->name, ((const bpeer_t *)b)->n->name);
}

static int cmp_peer_addr(const void *a, const void *b)
{
    const bpeer_t *x = *(bpeer_t *const *)a, *y = *(bpeer_t *const *)b;
    return x->cidr.addr < y->cidr.addr ? -1 : x->cidr.addr > y->cidr.addr;
}

static uint64_t cidr_end(drv_net_cidr_t c)
{
    return (uint64_t)c.addr + (1ull << (32 - c.prefix));
}

/* Every node with a key and a podCIDR inside the cluster CIDR, by name; overlapping
 * podCIDRs (never allocated so, but a user may set one) mark both clashing, found by one
 * sweep in address order. */
static bool peers_build(bdesired_t *d)
{
    bnet_t *net = &d->net;
    bpeer_t *peers = calloc(d->nodes.n ? d->nodes.n : 1, sizeof(*peers));
    bpeer_t **by_addr = calloc(d->nodes.n ? d->nodes.n : 1, sizeof(*by_addr));
    if (!peers || !by_addr) {
        free(peers);
        free(by_addr);
        return false;
    }
    size_t np = 0;
    void *v;
    for (size_t it = 0; np < d->nodes.n && drv_map_next(&d->nodes, &it, NULL, &v);) {
        bnode_t *o = v;
        drv_net_cidr_t c;
        if (is_peer(&o->net) && cidr_parse(o->net.pod_cidr, &c) &&
            cidr_inside(net->cluster_cidr, c))
            peers[np++] = (bpeer_t){.n = o, .cidr = c};
    }
    qsort(peers, np, sizeof(*peers), cmp_peer);
    for (size_t i = 0; i < np; i++)
        by_addr[i] = &peers[i];
    qsort(by_addr, np, sizeof(*by_addr), cmp_peer_addr);
    bpeer_t *far = NULL; /* of those so far, the one reaching furthest */
    for (size_t i = 0; i < np; i++) {
        bpeer_t *p = by_addr[i];
        if (far && p->cidr.addr < cidr_end(far->cidr))
            p->clash = far->clash = true;
        if (!far || cidr_end(p->cidr) > cidr_end(far->cidr))
            far = p;
    }
    free(by_addr);
    net->relay = NULL;
    for (size_t i = 0; i < np && !net->relay; i++)
        if (!peers[i].clash && peers[i].n->net.relay_label && peers[i].n->net.endpoint[0])
            net->relay = peers[i].n;
    free(net->peers);
    net->peers = peers;
    net->npeers = np;
    return true;
}

static drv_err_t shared_build(bdesired_t *d, drv_error_t *err)
{
    bnet_t *net = &d->net;
    if (net->shared && !net->stale)
        return DRV_OK;
    if (!peers_build(d))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "network section: peers");
    cJSON *s = cJSON_CreateObject();
    char cc[19], sc[19];
    drv_net_cidr_format(net->cluster_cidr, cc);
    drv_net_cidr_format(net->service_cidr, sc);
    bool ok = s && cJSON_AddStringToObject(s, "clusterCIDR", cc) &&
              cJSON_AddStringToObject(s, "serviceCIDR", sc) &&
              cJSON_AddStringToObject(s, "clusterDomain", net->cluster_domain) &&
              cJSON_AddNumberToObject(s, "mtu", DRV_NET_DEFAULT_MTU) &&
              cJSON_AddNumberToObject(s, "keepaliveSeconds", BNET_KEEPALIVE_S);
    cJSON *svcs = ok ? cJSON_AddArrayToObject(s, "services") : NULL;
    ok = svcs && add_services(svcs, net);
    struct {
        const char *name;
        drv_map_t *m;
        bool pods;
    } lists[] = {{"pods", &net->pods, true},
                 {"namespaces", &net->namespaces, false},
                 {"networkPolicies", &net->policies, false}};
    /* Every pod's address and labels, and the namespaces' labels, serve one purpose on the
     * devices: NetworkPolicy peers. Without a policy they stay out, so that a fleet's documents
     * (every node's holds this part, the broker keeps each) do not grow with every pod: 5,000
     * pods on 1,000 simulated nodes took the broker from 83 to 397 MiB. */
    bool policies = net->policies.n > 0;
    for (size_t i = 0; ok && i < sizeof(lists) / sizeof(lists[0]); i++) {
        cJSON *arr = cJSON_AddArrayToObject(s, lists[i].name);
        if (arr && !policies && lists[i].m != &net->policies)
            continue;
        size_t n = 0;
        bnet_obj_t **v = arr ? sorted(lists[i].m, cmp_obj, &n) : NULL;
        ok = v && add_texts(arr, v, n, net, lists[i].pods);
        free(v);
    }
    char *text = ok ? cJSON_PrintUnformatted(s) : NULL;
    if (!text) {
        cJSON_Delete(s);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "network section");
    }
    drv_digest_of(text, strlen(text), &net->shared_sum);
    free(text);
    cJSON_Delete(net->shared);
    net->shared = s;
    net->stale = false;
    return DRV_OK;
}

/* ---- a node's own part ---- */

drv_err_t bnet_part(bdesired_t *d, bnode_t *n, drv_sha256_t *h, cJSON **part, drv_error_t *err)
{
    bnet_t *net = &d->net;
    *part = NULL;
    drv_net_cidr_t own;
    if (!n->net.pod_cidr[0] || !cidr_parse(n->net.pod_cidr, &own))
        return DRV_OK; /* no podCIDR yet: the agent keeps its local subnet */
    if (!cidr_inside(net->cluster_cidr, own)) {
        drv_log_warn("bridge: node's podCIDR is outside the cluster CIDR: no network section",
                     "node=%s podCIDR=%s", n->name, n->net.pod_cidr);
        return DRV_OK;
    }
    drv_err_t e = shared_build(d, err);
    if (e != DRV_OK)
        return e;
    cJSON *p = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    if (!p || !arr || !cJSON_AddItemToObject(p, "peers", arr)) {
        cJSON_Delete(p);
        cJSON_Delete(arr);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "network section of %s", n->name);
    }
    const bpeer_t *peers = net->peers;
    size_t np = net->npeers;
    const char *relay = net->relay ? net->relay->name : NULL;
    bool ok = cJSON_AddStringToObject(p, "podCIDR", n->net.pod_cidr) &&
              cJSON_AddNumberToObject(p, "listenPort",
                                      n->net.port ? n->net.port : DRV_NET_DEFAULT_PORT) &&
              cJSON_AddBoolToObject(p, "behindNat", !n->net.endpoint[0]);
    for (size_t i = 0; ok && i < np && (size_t)cJSON_GetArraySize(arr) < DRV_NET_PEERS_MAX; i++) {
        const bnode_t *o = peers[i].n;
        if (o == n || peers[i].clash || drv_net_cidr_overlaps(own, peers[i].cidr)) {
            if (o != n)
                drv_log_debug("bridge: peer left out: its podCIDR overlaps another's",
                              "node=%s peer=%s", n->name, o->name);
            continue;
        }
        /* Both behind a NAT: neither can reach the other; the relay forwards. */
        bool via = relay && !n->net.endpoint[0] && !o->net.endpoint[0] && strcmp(relay, o->name) &&
                   strcmp(relay, n->name);
        cJSON *pe = cJSON_CreateObject();
        if (pe && !cJSON_AddItemToArray(arr, pe)) {
            cJSON_Delete(pe);
            pe = NULL;
        }
        ok = pe && cJSON_AddStringToObject(pe, "node", o->name) &&
             cJSON_AddStringToObject(pe, "publicKey", o->net.key) &&
             cJSON_AddStringToObject(pe, "podCIDR", o->net.pod_cidr) &&
             cJSON_AddStringToObject(pe, "endpoint", o->net.endpoint) &&
             cJSON_AddStringToObject(pe, "via", via ? relay : "") &&
             cJSON_AddBoolToObject(pe, "relay", o->net.relay_label && o->net.endpoint[0]);
    }
    char *text = ok ? cJSON_PrintUnformatted(p) : NULL;
    if (!text) {
        cJSON_Delete(p);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "network section of %s", n->name);
    }
    drv_sha256_update(h, "n", 1);
    drv_sha256_update(h, net->shared_sum.bytes, sizeof(net->shared_sum.bytes));
    drv_sha256_update(h, text, strlen(text) + 1);
    free(text);
    *part = p;
    return DRV_OK;
}

drv_err_t bnet_attach(bdesired_t *d, cJSON *doc, cJSON *part, drv_error_t *err)
{
    bool ok = part && d->net.shared;
    const cJSON *m;
    cJSON_ArrayForEach(m, (ok ? d->net.shared : NULL))
    {
        ok = ok && add_copy(part, m->string, m);
    }
    if (!ok || !cJSON_AddItemToObject(doc, "network", part)) {
        cJSON_Delete(part);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "network section");
    }
    return DRV_OK;
}
