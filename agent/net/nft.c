/* The node's nftables table, `table inet drover`, rendered from the netstate as one script that
 * replaces the table in a single transaction (no moment without rules), and applied with `nft`.
 * Layout (IPv4 only, as the pod network):
 *   nat: prerouting/output DNAT cluster DNS and Services through verdict maps
 *     (clusterIP . proto . port, node address . proto . port for LoadBalancer, proto . nodePort
 *     on local addresses) to one chain per Service port that load-balances (numgen random, or
 *     jhash of the client address for ClientIP affinity) over one chain per endpoint;
 *     postrouting masquerades marked packets (NodePort Cluster, hairpin, node to Service) and
 *     pods' traffic leaving the cluster CIDR.
 *   filter: forward/output drop cluster traffic that would leave in clear, reject Services
 *     without endpoints, then NetworkPolicy for this node's pods (egress, then ingress).
 * No user text reaches the script: chains and sets are named from indices.
 * Where it differs from kube-proxy and policy plug-ins: ClientIP affinity lasts as long as the
 * endpoint set, not timeoutSeconds; traffic between a pod and its own node (DNS on the
 * gateway, probes) is never subject to NetworkPolicy (Kubernetes leaves node traffic to the
 * implementation); externalTrafficPolicy Local is not short-circuited for the node's own
 * clients; an IPv6 ipBlock matches nothing (the pod network is IPv4). */
#include "net/nft.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/proc.h"
#include "drover/selector.h"
#include "drover/vec.h"

#define NFT_STDERR_MAX 4096
#define NFT_ERR_SHOWN 600
#define NFT_EXCEPT_MAX 256
#define NFT_DNS_PORT 53
#define NFT_DNS_OFFSET 10 /* the cluster DNS IP: serviceCIDR + 10 */
/* PATH for nft when the agent runs with a minimal environment. */
#define NFT_PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* A pod as policies see it: the netstate's, or the agent's own for this node. */
typedef struct nft_pod {
    uint32_t ip;
    const char *ns;
    const cJSON *labels;
    const cJSON *ports;
    bool local;
} nft_pod_t;

/* Map elements are collected, then sorted, so that a key given twice (two LoadBalancers on
 * one port) keeps its first owner instead of failing the whole transaction. */
typedef enum {
    EL_SVC,     /* clusterIP . proto . port : goto s<i>p<j> */
    EL_LB,      /* nodeIP . proto . port : goto x<i>p<j> */
    EL_NOEP,    /* clusterIP or nodeIP . proto . port, no endpoint: reject */
    EL_NP,      /* proto . nodePort : goto x<i>p<j> */
    EL_NOEP_NP, /* proto . nodePort, no endpoint: reject */
} nft_el_kind_t;

typedef struct nft_el {
    uint64_t key; /* bit 63: the proto . port space; ip << 24 | proto << 16 | port */
    size_t seq;
    nft_el_kind_t kind;
    char verdict[32];
} nft_el_t;

typedef struct nft_ctx {
    const drv_netstate_t *ns;
    const drv_nft_local_t *local;
    drv_error_t *err;
    drv_err_t rc; /* the first failure; later writes are skipped */
    drv_buf_t sets, chains, maps;
    drv_vec_t els;         /* nft_el_t */
    drv_vec_t pods;        /* nft_pod_t: every pod known, local ones flagged */
    bool *pol_in, *pol_eg; /* per policy: selects a local pod for ingress / egress */
} nft_ctx_t;

/* A NetworkPolicy peer, parsed. */
typedef struct nft_peer {
    bool has_pod, has_ns, has_block;
    bool skip; /* an IPv6 ipBlock: never matches this IPv4 table */
    drv_selector_t pod_sel, ns_sel;
    drv_net_cidr_t block;
    drv_net_cidr_t *except;
    size_t nexcept;
} nft_peer_t;

static void peer_free(nft_peer_t *p)
{
    drv_selector_free(&p->pod_sel);
    drv_selector_free(&p->ns_sel);
    free(p->except);
    memset(p, 0, sizeof(*p));
}

/* "a.b.c.d/n", host bits masked off (Kubernetes accepts them in ipBlock). false for anything
 * else, *v6 set for an IPv6 prefix. */
static bool parse_cidr(const char *s, drv_net_cidr_t *out, bool *v6)
{
    *v6 = strchr(s, ':') != NULL;
    return drv_net_cidr_parse(s, true, out, NULL) == DRV_OK;
}

static const char *proto_name(uint8_t p)
{
    switch (p) {
    case IPPROTO_UDP:
        return "udp";
    case IPPROTO_SCTP:
        return "sctp";
    default:
        return "tcp";
    }
}

/* Kubernetes' protocol names; NULL (absent) is TCP. 0 for anything else. */
static uint8_t proto_parse(const char *s)
{
    if (s == NULL || !strcmp(s, "TCP"))
        return IPPROTO_TCP;
    if (!strcmp(s, "UDP"))
        return IPPROTO_UDP;
    if (!strcmp(s, "SCTP"))
        return IPPROTO_SCTP;
    return 0;
}

static void put(nft_ctx_t *c, drv_buf_t *b, const char *fmt, ...) DRV_PRINTF(3, 4);
static void put(nft_ctx_t *c, drv_buf_t *b, const char *fmt, ...)
{
    if (c->rc != DRV_OK)
        return;
    va_list ap;
    va_start(ap, fmt);
    drv_err_t rc = drv_buf_vprintf(b, fmt, ap);
    va_end(ap);
    if (rc != DRV_OK)
        c->rc = drv_error_set(c->err, rc, 0, "nft: script over %zu bytes", b->max);
}

static void add_el(nft_ctx_t *c, nft_el_kind_t kind, uint32_t ip, uint8_t proto, uint16_t port,
                   const char *verdict)
{
    if (c->rc != DRV_OK)
        return;
    nft_el_t e = {.seq = c->els.len, .kind = kind};
    bool np = kind == EL_NP || kind == EL_NOEP_NP;
    e.key = (np ? 1ull << 63 : 0) | (uint64_t)ip << 24 | (uint64_t)proto << 16 | port;
    if (drv_fmt(e.verdict, sizeof(e.verdict), "%s", verdict) != DRV_OK ||
        drv_vec_push(&c->els, &e) != DRV_OK)
        c->rc = drv_error_set(c->err, DRV_ERR_NOMEM, 0, "nft: map elements");
}

static bool valid_ifname(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > DRV_NFT_IFNAME_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

/* ---- pods ---- */

static const nft_pod_t *pod_at(const nft_ctx_t *c, size_t i)
{
    return drv_vec_at(&c->pods, i);
}

static nft_pod_t *pod_by_ip(const nft_ctx_t *c, uint32_t ip)
{
    for (size_t i = 0; i < c->pods.len; i++) {
        nft_pod_t *p = drv_vec_at(&c->pods, i);
        if (p->ip == ip)
            return p;
    }
    return NULL;
}

/* Every pod with an IP: the agent's own first (they may be newer than the hub's view). */
static drv_err_t pods_collect(nft_ctx_t *c)
{
    const drv_nft_local_t *l = c->local;
    for (size_t i = 0; i < l->npods; i++) {
        const drv_nft_pod_t *lp = &l->pods[i];
        if (lp->ip == 0 || lp->ns == NULL || pod_by_ip(c, lp->ip))
            continue;
        nft_pod_t p = {lp->ip, lp->ns, lp->labels, lp->ports, true};
        if (drv_vec_push(&c->pods, &p) != DRV_OK)
            return drv_error_set(c->err, DRV_ERR_NOMEM, 0, "nft: pods");
    }
    for (size_t i = 0; i < c->ns->npods; i++) {
        const drv_net_pod_t *np = &c->ns->pods[i];
        if (np->ip == 0 || pod_by_ip(c, np->ip))
            continue;
        nft_pod_t p = {np->ip, np->ns, np->labels, np->ports, !strcmp(np->node, c->ns->node)};
        if (drv_vec_push(&c->pods, &p) != DRV_OK)
            return drv_error_set(c->err, DRV_ERR_NOMEM, 0, "nft: pods");
    }
    return DRV_OK;
}

/* The container port named name for protocol proto, 0 if the pod has none. */
static uint16_t pod_named_port(const nft_pod_t *p, const char *name, uint8_t proto)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, p->ports)
    {
        const char *n = drv_json_str(it, "name");
        int64_t port = drv_json_int_or(it, "containerPort", 0);
        if (n && !strcmp(n, name) && proto_parse(drv_json_str(it, "protocol")) == proto &&
            port > 0 && port <= 65535)
            return (uint16_t)port;
    }
    return 0;
}

/* ---- Services ---- */

static bool peer_recent(const nft_ctx_t *c, const char *node)
{
    if (!strcmp(node, c->ns->node))
        return true;
    for (size_t i = 0; i < c->local->npeers; i++)
        if (c->local->peers[i].node && !strcmp(c->local->peers[i].node, node))
            return c->local->peers[i].recent;
    return false;
}

/* The endpoints of port j that may take traffic, in eps (indices): Ready ones (all but
 * terminating ones with publishNotReadyAddresses), else serving terminating ones (as
 * kube-proxy falls back); without a target port left out; on a peer without a recent
 * handshake left out when another one is usable. */
static size_t usable_endpoints(const nft_ctx_t *c, const drv_net_service_t *s, size_t j,
                               size_t *eps)
{
    size_t n = 0;
    for (int pass = 0; pass < 2 && n == 0; pass++)
        for (size_t k = 0; k < s->nendpoints; k++) {
            const drv_net_endpoint_t *e = &s->endpoints[k];
            if (e->target_ports == NULL || e->target_ports[j] == 0 || e->ip == 0)
                continue;
            bool ok = pass == 0 ? (e->ready || (s->publish_not_ready && !e->terminating))
                                : (e->serving && e->terminating);
            if (ok)
                eps[n++] = k;
        }
    size_t healthy = 0;
    for (size_t i = 0; i < n; i++)
        if (peer_recent(c, s->endpoints[eps[i]].node))
            eps[healthy++] = eps[i];
    return healthy > 0 ? healthy : n;
}

/* Load-balances over the endpoint chains of eps into chain body b. */
static void render_lb(nft_ctx_t *c, const drv_net_service_t *s, size_t i, size_t j,
                      const size_t *eps, size_t n)
{
    if (n == 1) {
        put(c, &c->chains, "\t\tgoto e%zup%zuk%zu\n", i, j, eps[0]);
        return;
    }
    /* ClientIP affinity: a hash of the client address picks the endpoint, so a client stays
     * with one endpoint for as long as the endpoint set is unchanged (not for exactly
     * timeoutSeconds as in Kubernetes: there is no per-client timer). */
    put(c, &c->chains, "\t\t%s mod %zu vmap { ",
        s->affinity_client_ip ? "jhash ip saddr" : "numgen random", n);
    for (size_t k = 0; k < n; k++)
        put(c, &c->chains, "%s%zu : goto e%zup%zuk%zu", k ? ", " : "", k, i, j, eps[k]);
    put(c, &c->chains, " }\n");
}

static void render_service(nft_ctx_t *c, size_t i, size_t *all, size_t *loc)
{
    const drv_net_service_t *s = &c->ns->services[i];
    if (s->headless || s->cluster_ip == 0)
        return; /* headless: DNS only */
    char cip[16], ccidr[DRV_NET_CIDR_STR], vd[32];
    drv_net_ip_format(s->cluster_ip, cip);
    drv_net_cidr_format(c->ns->cluster_cidr, ccidr);
    bool external = s->type != DRV_NET_SVC_CLUSTER_IP;
    for (size_t j = 0; j < s->nports && c->rc == DRV_OK; j++) {
        const drv_net_port_t *p = &s->ports[j];
        const char *proto = proto_name(p->protocol);
        size_t n = usable_endpoints(c, s, j, all), nl = 0;
        for (size_t k = 0; k < n; k++)
            if (!strcmp(s->endpoints[all[k]].node, c->ns->node))
                loc[nl++] = all[k];
        if (n == 0) {
            /* Like kube-proxy: no endpoint is a refusal the client sees at once. */
            add_el(c, EL_NOEP, s->cluster_ip, p->protocol, p->port, "");
            if (external && p->node_port)
                add_el(c, EL_NOEP_NP, 0, p->protocol, p->node_port, "");
            if (s->type == DRV_NET_SVC_LOAD_BALANCER)
                for (size_t a = 0; a < c->local->nnode_ips; a++)
                    add_el(c, EL_NOEP, c->local->node_ips[a], p->protocol, p->port, "");
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            const drv_net_endpoint_t *e = &s->endpoints[all[k]];
            char eip[16];
            drv_net_ip_format(e->ip, eip);
            /* A pod reaching itself through its Service (hairpin) is masqueraded so that
             * the reply comes back through the host's conntrack. */
            put(c, &c->chains,
                "\tchain e%zup%zuk%zu {\n\t\tip saddr %s meta mark set meta mark | 0x%x\n"
                "\t\tmeta l4proto %s dnat ip to %s:%u\n\t}\n",
                i, j, all[k], eip, DRV_NFT_MASQ_MARK, proto, eip, (unsigned)e->target_ports[j]);
        }
        /* The cluster path: from outside the cluster CIDR (the node itself, NodePort
         * clients) masquerade, so that replies from remote pods come back here. */
        put(c, &c->chains,
            "\tchain s%zup%zu {\n\t\tip saddr != %s meta mark set meta mark | 0x%x\n", i, j, ccidr,
            DRV_NFT_MASQ_MARK);
        if (s->internal_local && nl == 0)
            put(c, &c->chains, "\t\tdrop\n"); /* internalTrafficPolicy Local, none here */
        else if (s->internal_local)
            render_lb(c, s, i, j, loc, nl);
        else
            render_lb(c, s, i, j, all, n);
        put(c, &c->chains, "\t}\n");
        if (drv_fmt(vd, sizeof(vd), "goto s%zup%zu", i, j) == DRV_OK)
            add_el(c, EL_SVC, s->cluster_ip, p->protocol, p->port, vd);
        if (!external)
            continue;
        /* The external path (NodePort, LoadBalancer): externalTrafficPolicy Local keeps the
         * client's address and only local endpoints; Cluster masquerades so replies return. */
        put(c, &c->chains, "\tchain x%zup%zu {\n", i, j);
        if (s->external_local && nl == 0)
            put(c, &c->chains, "\t\tdrop\n");
        else if (s->external_local)
            render_lb(c, s, i, j, loc, nl);
        else {
            put(c, &c->chains, "\t\tmeta mark set meta mark | 0x%x\n", DRV_NFT_MASQ_MARK);
            render_lb(c, s, i, j, all, n);
        }
        put(c, &c->chains, "\t}\n");
        if (drv_fmt(vd, sizeof(vd), "goto x%zup%zu", i, j) != DRV_OK)
            continue;
        if (p->node_port)
            add_el(c, EL_NP, 0, p->protocol, p->node_port, vd);
        if (s->type == DRV_NET_SVC_LOAD_BALANCER)
            for (size_t a = 0; a < c->local->nnode_ips; a++)
                add_el(c, EL_LB, c->local->node_ips[a], p->protocol, p->port, vd);
    }
}

static int el_cmp(const void *a, const void *b)
{
    const nft_el_t *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Emits the elements of one kind, each key once (its first owner). */
static void render_elements(nft_ctx_t *c, nft_el_kind_t kind)
{
    bool first = true;
    for (size_t i = 0; i < c->els.len && c->rc == DRV_OK; i++) {
        const nft_el_t *e = drv_vec_at(&c->els, i);
        if (i > 0 && ((const nft_el_t *)drv_vec_at(&c->els, i - 1))->key == e->key)
            continue;
        if (e->kind != kind)
            continue;
        char ip[16];
        drv_net_ip_format((uint32_t)(e->key >> 24), ip);
        uint8_t proto = (uint8_t)(e->key >> 16);
        unsigned port = (unsigned)(e->key & 0xffff);
        put(c, &c->maps, "%s", first ? "\t\telements = { " : ",\n\t\t\t     ");
        first = false;
        if (kind == EL_NP || kind == EL_NOEP_NP)
            put(c, &c->maps, "%s . %u", proto_name(proto), port);
        else
            put(c, &c->maps, "%s . %s . %u", ip, proto_name(proto), port);
        if (e->verdict[0])
            put(c, &c->maps, " : %s", e->verdict);
    }
    if (!first)
        put(c, &c->maps, " }\n");
}

static void render_service_maps(nft_ctx_t *c)
{
    if (c->els.len > 1)
        qsort(c->els.data, c->els.len, sizeof(nft_el_t), el_cmp);
    static const struct {
        char kw[4], name[16], type[48]; /* in place: no pointers to relocate (issue 19) */
        nft_el_kind_t kind;
    } maps[] = {
        {"map", "svc_ports", "ipv4_addr . inet_proto . inet_service : verdict", EL_SVC},
        {"map", "lb_ports", "ipv4_addr . inet_proto . inet_service : verdict", EL_LB},
        {"map", "node_ports", "inet_proto . inet_service : verdict", EL_NP},
        {"set", "no_endpoints", "ipv4_addr . inet_proto . inet_service", EL_NOEP},
        {"set", "no_endpoints_np", "inet_proto . inet_service", EL_NOEP_NP},
    };
    for (size_t m = 0; m < sizeof(maps) / sizeof(maps[0]); m++) {
        put(c, &c->maps, "\t%s %s {\n\t\ttype %s\n", maps[m].kw, maps[m].name, maps[m].type);
        render_elements(c, maps[m].kind);
        put(c, &c->maps, "\t}\n");
    }
    put(c, &c->maps, "\tset cluster_ips {\n\t\ttype ipv4_addr\n");
    bool first = true;
    for (size_t i = 0; i < c->ns->nservices; i++) {
        const drv_net_service_t *s = &c->ns->services[i];
        if (s->headless || s->cluster_ip == 0)
            continue;
        char ip[16];
        drv_net_ip_format(s->cluster_ip, ip);
        put(c, &c->maps, "%s%s", first ? "\t\telements = { " : ", ", ip);
        first = false;
    }
    put(c, &c->maps, "%s\t}\n", first ? "" : " }\n");
}

/* ---- NetworkPolicy ---- */

/* The labels of namespace name; a namespace the netstate lacks has only its name label, put
 * in *tmp (the caller deletes it). */
static const cJSON *ns_labels(const nft_ctx_t *c, const char *name, cJSON **tmp)
{
    for (size_t i = 0; i < c->ns->nnamespaces; i++)
        if (!strcmp(c->ns->namespaces[i].name, name))
            return c->ns->namespaces[i].labels;
    *tmp = cJSON_CreateObject();
    if (*tmp)
        cJSON_AddStringToObject(*tmp, "kubernetes.io/metadata.name", name);
    return *tmp;
}

static drv_err_t peer_parse(const cJSON *j, const char *path, nft_peer_t *out, drv_error_t *err)
{
    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(j))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: not an object", path);
    const cJSON *ps = drv_json_get(j, "podSelector");
    const cJSON *nss = drv_json_get(j, "namespaceSelector");
    const cJSON *ipb = drv_json_get(j, "ipBlock");
    drv_err_t rc = DRV_OK;
    if (ps && !cJSON_IsNull(ps)) {
        out->has_pod = true;
        if ((rc = drv_selector_from_json(ps, &out->pod_sel, err)) != DRV_OK)
            return drv_error_wrap(err, "%s.podSelector", path);
    }
    if (nss && !cJSON_IsNull(nss)) {
        out->has_ns = true;
        if ((rc = drv_selector_from_json(nss, &out->ns_sel, err)) != DRV_OK) {
            peer_free(out);
            return drv_error_wrap(err, "%s.namespaceSelector", path);
        }
    }
    if (ipb && !cJSON_IsNull(ipb)) {
        bool v6 = false;
        const char *cidr = drv_json_str(ipb, "cidr");
        if (out->has_pod || out->has_ns) {
            peer_free(out);
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "%s.ipBlock: may not be combined with selectors", path);
        }
        out->has_block = true;
        if (cidr == NULL || !parse_cidr(cidr, &out->block, &v6)) {
            if (cidr && v6) {
                out->skip = true;
                return DRV_OK;
            }
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.ipBlock.cidr: not a CIDR", path);
        }
        const cJSON *ex = drv_json_get(ipb, "except");
        size_t nex = drv_json_array_len(ex);
        if (nex > NFT_EXCEPT_MAX)
            return drv_error_set(err, DRV_ERR_RANGE, 0, "%s.ipBlock.except: over %d entries", path,
                                 NFT_EXCEPT_MAX);
        if (nex) {
            out->except = calloc(nex, sizeof(*out->except));
            if (out->except == NULL)
                return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s.ipBlock.except", path);
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, ex)
        {
            drv_net_cidr_t e;
            if (!cJSON_IsString(it) || !parse_cidr(it->valuestring, &e, &v6)) {
                peer_free(out);
                return drv_error_set(err, DRV_ERR_INVALID, 0,
                                     "%s.ipBlock.except[%zu]: not an IPv4 CIDR", path,
                                     out->nexcept);
            }
            out->except[out->nexcept++] = e;
        }
    }
    if (!out->has_pod && !out->has_ns && !out->has_block)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s: no podSelector, namespaceSelector "
                             "or ipBlock",
                             path);
    return DRV_OK;
}

static bool peer_matches(const nft_ctx_t *c, const nft_peer_t *peer, const char *pol_ns,
                         const nft_pod_t *p)
{
    if (peer->skip)
        return false;
    if (peer->has_block) {
        if (!drv_net_cidr_contains(peer->block, p->ip))
            return false;
        for (size_t i = 0; i < peer->nexcept; i++)
            if (drv_net_cidr_contains(peer->except[i], p->ip))
                return false;
        return true;
    }
    if (peer->has_ns) {
        _cleanup_cjson_ cJSON *tmp = NULL;
        if (!drv_selector_matches(&peer->ns_sel, ns_labels(c, p->ns, &tmp)))
            return false;
    } else if (strcmp(p->ns, pol_ns) != 0)
        return false;
    return !peer->has_pod || drv_selector_matches(&peer->pod_sel, p->labels);
}

/* The source (ingress) or destination (egress) match of a peer: a named set of pod IPs, or
 * the ipBlock inline with its exceptions. */
static void peer_match_text(nft_ctx_t *c, const nft_peer_t *peer, const char *dir, const char *set,
                            drv_buf_t *b)
{
    if (!peer->has_block) {
        put(c, b, "ip %s @%s ", dir, set);
        return;
    }
    char cs[DRV_NET_CIDR_STR];
    drv_net_cidr_format(peer->block, cs);
    put(c, b, "ip %s %s ", dir, cs);
    for (size_t i = 0; i < peer->nexcept; i++) {
        drv_net_cidr_format(peer->except[i], cs);
        if (i == 0)
            put(c, b, "ip %s != { %s", dir, cs);
        else
            put(c, b, ", %s", cs);
    }
    if (peer->nexcept)
        put(c, b, " } ");
}

/* A NetworkPolicyPort. */
typedef struct nft_port {
    uint8_t proto;
    uint16_t port, end; /* port 0: every port of proto */
    const char *name;   /* a named port, else NULL */
} nft_port_t;

static drv_err_t port_parse(const cJSON *j, const char *path, nft_port_t *out, drv_error_t *err)
{
    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(j))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: not an object", path);
    const cJSON *pr = drv_json_get(j, "protocol");
    out->proto = proto_parse(cJSON_IsString(pr) ? pr->valuestring : NULL);
    if (out->proto == 0 || (pr && !cJSON_IsString(pr) && !cJSON_IsNull(pr)))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.protocol: not TCP, UDP or SCTP", path);
    const cJSON *port = drv_json_get(j, "port");
    int64_t v = 0, e = 0;
    if (cJSON_IsString(port)) {
        out->name = port->valuestring;
    } else if (cJSON_IsNumber(port)) {
        if (!drv_json_to_int(port->valuedouble, 1, 65535, &v))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.port: not 1-65535", path);
        out->port = (uint16_t)v;
    } else if (port && !cJSON_IsNull(port)) {
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.port: not a number or a name", path);
    }
    const cJSON *end = drv_json_get(j, "endPort");
    if (end && !cJSON_IsNull(end)) {
        if (!cJSON_IsNumber(end) || out->port == 0 ||
            !drv_json_to_int(end->valuedouble, out->port, 65535, &e))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "%s.endPort: needs a numeric port and not below it", path);
        out->end = (uint16_t)e;
    }
    return DRV_OK;
}

/* Which directions a policy governs: policyTypes, or when absent Ingress plus Egress if it has
 * egress rules (the API server's defaulting). */
static drv_err_t policy_types(const cJSON *spec, const char *path, bool *in, bool *eg,
                              drv_error_t *err)
{
    const cJSON *types = drv_json_get(spec, "policyTypes");
    *in = *eg = false;
    if (types == NULL || cJSON_IsNull(types)) {
        *in = true;
        *eg = drv_json_get(spec, "egress") != NULL && !cJSON_IsNull(drv_json_get(spec, "egress"));
        return DRV_OK;
    }
    if (!cJSON_IsArray(types))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.policyTypes: not an array", path);
    const cJSON *it;
    cJSON_ArrayForEach(it, types)
    {
        if (cJSON_IsString(it) && !strcmp(it->valuestring, "Ingress"))
            *in = true;
        else if (cJSON_IsString(it) && !strcmp(it->valuestring, "Egress"))
            *eg = true;
        else
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.policyTypes: only Ingress and Egress",
                                 path);
    }
    return DRV_OK;
}

/* The rules of policy q in one direction. sets_phase: declares the named sets its peers and
 * (egress) named ports need; else appends pod p's allow rules to its chain. */
static drv_err_t render_rules(nft_ctx_t *c, size_t q, bool ingress, const nft_pod_t *p,
                              bool sets_phase)
{
    const drv_net_policy_t *pol = &c->ns->policies[q];
    const cJSON *rules = drv_json_at(pol->object, ingress ? "spec.ingress" : "spec.egress");
    const char *dir = ingress ? "saddr" : "daddr";
    const char *d = ingress ? "i" : "e";
    const char *verdict = ingress ? "accept" : "return";
    char path[DRV_NET_NAME_MAX * 2 + 96];
    const cJSON *rule;
    size_t r = 0;
    if (rules && !cJSON_IsNull(rules) && !cJSON_IsArray(rules))
        return drv_error_set(c->err, DRV_ERR_INVALID, 0,
                             "networkPolicies[%s/%s].spec.%s: not an array", pol->ns, pol->name,
                             ingress ? "ingress" : "egress");
    cJSON_ArrayForEach(rule, rules)
    {
        const cJSON *peers = drv_json_get(rule, ingress ? "from" : "to");
        const cJSON *ports = drv_json_get(rule, "ports");
        size_t npeers = drv_json_array_len(peers), nports = drv_json_array_len(ports);
        drv_fmt_cut(path, sizeof(path), "networkPolicies[%s/%s].spec.%s[%zu]", pol->ns, pol->name,
                    ingress ? "ingress" : "egress", r);
        if (!cJSON_IsObject(rule))
            return drv_error_set(c->err, DRV_ERR_INVALID, 0, "%s: not an object", path);
        for (size_t k = 0; k < (npeers ? npeers : 1) && c->rc == DRV_OK; k++) {
            nft_peer_t peer = {0};
            char ppath[sizeof(path) + 32], set[48];
            drv_fmt_cut(ppath, sizeof(ppath), "%s.%s[%zu]", path, ingress ? "from" : "to", k);
            if (drv_fmt(set, sizeof(set), "q%zu%s%zup%zu", q, d, r, k) != DRV_OK)
                return drv_error_set(c->err, DRV_ERR_RANGE, 0, "%s: set name", ppath);
            if (npeers && peer_parse(cJSON_GetArrayItem(peers, (int)k), ppath, &peer, c->err))
                return c->err ? c->err->code : DRV_ERR_INVALID;
            if (sets_phase && npeers && !peer.has_block) {
                put(c, &c->sets, "\tset %s {\n\t\ttype ipv4_addr\n", set);
                bool first = true;
                for (size_t i = 0; i < c->pods.len; i++) {
                    const nft_pod_t *o = pod_at(c, i);
                    if (!peer_matches(c, &peer, pol->ns, o))
                        continue;
                    char ip[16];
                    drv_net_ip_format(o->ip, ip);
                    put(c, &c->sets, "%s%s", first ? "\t\telements = { " : ", ", ip);
                    first = false;
                }
                put(c, &c->sets, "%s\t}\n", first ? "" : " }\n");
            }
            for (size_t j = 0; j < (nports ? nports : 1) && c->rc == DRV_OK; j++) {
                nft_port_t port = {0};
                char tpath[sizeof(ppath) + 32], nset[48];
                drv_fmt_cut(tpath, sizeof(tpath), "%s.ports[%zu]", path, j);
                if (nports && port_parse(cJSON_GetArrayItem(ports, (int)j), tpath, &port, c->err)) {
                    peer_free(&peer);
                    return c->err ? c->err->code : DRV_ERR_INVALID;
                }
                bool named_egress = port.name && !ingress;
                if (drv_fmt(nset, sizeof(nset), "q%zue%zun%zu", q, r, j) != DRV_OK) {
                    peer_free(&peer);
                    return drv_error_set(c->err, DRV_ERR_RANGE, 0, "%s: set name", tpath);
                }
                if (sets_phase) {
                    /* An egress named port is the destination pod's: one set of
                     * (pod IP, protocol, its port) over the pods any peer matches. */
                    if (!named_egress || k != 0)
                        continue;
                    put(c, &c->sets, "\tset %s {\n\t\ttype ipv4_addr . inet_proto . inet_service\n",
                        nset);
                    bool first = true;
                    for (size_t i = 0; i < c->pods.len; i++) {
                        const nft_pod_t *o = pod_at(c, i);
                        bool any = npeers == 0;
                        for (size_t pk = 0; pk < npeers && !any; pk++) {
                            nft_peer_t pp;
                            char pkpath[sizeof(path) + 32];
                            drv_fmt_cut(pkpath, sizeof(pkpath), "%s.to[%zu]", path, pk);
                            if (peer_parse(cJSON_GetArrayItem(peers, (int)pk), pkpath, &pp,
                                           c->err) != DRV_OK) {
                                peer_free(&peer);
                                return c->err ? c->err->code : DRV_ERR_INVALID;
                            }
                            any = peer_matches(c, &pp, pol->ns, o);
                            peer_free(&pp);
                        }
                        uint16_t n = any ? pod_named_port(o, port.name, port.proto) : 0;
                        if (n == 0)
                            continue;
                        char ip[16];
                        drv_net_ip_format(o->ip, ip);
                        put(c, &c->sets, "%s%s . %s . %u", first ? "\t\telements = { " : ", ", ip,
                            proto_name(port.proto), (unsigned)n);
                        first = false;
                    }
                    put(c, &c->sets, "%s\t}\n", first ? "" : " }\n");
                    continue;
                }
                if (peer.skip)
                    continue;
                if (named_egress) {
                    if (k == 0)
                        put(c, &c->chains, "\t\tip daddr . meta l4proto . th dport @%s %s\n", nset,
                            verdict);
                    continue;
                }
                uint16_t num = port.port;
                if (port.name && (num = pod_named_port(p, port.name, port.proto)) == 0)
                    continue; /* the pod lacks that named port: this entry allows nothing */
                put(c, &c->chains, "\t\t");
                if (npeers)
                    peer_match_text(c, &peer, dir, set, &c->chains);
                if (nports && num && port.end > num)
                    put(c, &c->chains, "meta l4proto %s th dport %u-%u ", proto_name(port.proto),
                        (unsigned)num, (unsigned)port.end);
                else if (nports && num)
                    put(c, &c->chains, "meta l4proto %s th dport %u ", proto_name(port.proto),
                        (unsigned)num);
                else if (nports)
                    put(c, &c->chains, "meta l4proto %s ", proto_name(port.proto));
                put(c, &c->chains, "%s\n", verdict);
            }
            peer_free(&peer);
        }
        r++;
    }
    return c->rc;
}

/* Whether policy q (its selector parsed in sel) selects pod p. */
static bool policy_selects(const nft_ctx_t *c, size_t q, const drv_selector_t *sel,
                           const nft_pod_t *p)
{
    return !strcmp(c->ns->policies[q].ns, p->ns) && drv_selector_matches(sel, p->labels);
}

static void selectors_free(drv_selector_t *sels, size_t n)
{
    for (size_t i = 0; i < n; i++)
        drv_selector_free(&sels[i]);
    free(sels);
}

/* Sets and per-pod chains of NetworkPolicy; the ingress_pods / egress_pods verdict maps send
 * each selected local pod's new connections to its chain. */
static drv_err_t render_policies(nft_ctx_t *c)
{
    const drv_netstate_t *ns = c->ns;
    size_t np = ns->npolicies;
    drv_selector_t *sels = np ? calloc(np, sizeof(*sels)) : NULL;
    bool *tin = np ? calloc(np, sizeof(bool)) : NULL, *teg = np ? calloc(np, sizeof(bool)) : NULL;
    drv_err_t rc = DRV_OK;
    if (np && (sels == NULL || tin == NULL || teg == NULL)) {
        rc = drv_error_set(c->err, DRV_ERR_NOMEM, 0, "nft: policies");
        goto out;
    }
    for (size_t q = 0; q < np; q++) {
        const drv_net_policy_t *pol = &ns->policies[q];
        char path[DRV_NET_NAME_MAX * 2 + 64];
        drv_fmt_cut(path, sizeof(path), "networkPolicies[%s/%s].spec", pol->ns, pol->name);
        const cJSON *spec = drv_json_get(pol->object, "spec");
        bool in = false, eg = false;
        if (!cJSON_IsObject(spec)) {
            rc = drv_error_set(c->err, DRV_ERR_INVALID, 0, "%s: not an object", path);
            goto out;
        }
        if ((rc = policy_types(spec, path, &in, &eg, c->err)) != DRV_OK)
            goto out;
        const cJSON *ps = drv_json_get(spec, "podSelector");
        if ((rc = drv_selector_from_json(ps, &sels[q], c->err)) != DRV_OK) {
            rc = drv_error_wrap(c->err, "%s.podSelector", path);
            goto out;
        }
        bool any = false;
        for (size_t i = 0; i < c->pods.len && !any; i++)
            any = pod_at(c, i)->local && policy_selects(c, q, &sels[q], pod_at(c, i));
        tin[q] = in && any;
        teg[q] = eg && any;
        if (tin[q] && (rc = render_rules(c, q, true, NULL, true)) != DRV_OK)
            goto out;
        if (teg[q] && (rc = render_rules(c, q, false, NULL, true)) != DRV_OK)
            goto out;
    }
    drv_buf_t in_el = DRV_BUF_INIT(c->maps.max), eg_el = DRV_BUF_INIT(c->maps.max);
    put(c, &c->sets, "\tset local_pods {\n\t\ttype ipv4_addr\n");
    bool first = true;
    for (size_t i = 0; i < c->pods.len && rc == DRV_OK; i++) {
        const nft_pod_t *p = pod_at(c, i);
        if (!p->local)
            continue;
        char ip[16];
        drv_net_ip_format(p->ip, ip);
        put(c, &c->sets, "%s%s", first ? "\t\telements = { " : ", ", ip);
        first = false;
        for (int dirn = 0; dirn < 2 && rc == DRV_OK; dirn++) {
            bool ingress = dirn == 0, selected = false;
            for (size_t q = 0; q < np && rc == DRV_OK; q++) {
                if (!(ingress ? tin[q] : teg[q]) || !policy_selects(c, q, &sels[q], p))
                    continue;
                if (!selected)
                    put(c, &c->chains, "\tchain %s%zu {\n", ingress ? "in" : "out", i);
                selected = true;
                rc = render_rules(c, q, ingress, p, false);
            }
            if (!selected)
                continue;
            /* Selected for this direction: what no rule allowed is denied. */
            put(c, &c->chains, "\t\tdrop\n\t}\n");
            drv_buf_t *el = ingress ? &in_el : &eg_el;
            put(c, el, "%s%s : jump %s%zu", el->len ? ", " : "\t\telements = { ", ip,
                ingress ? "in" : "out", i);
        }
    }
    put(c, &c->sets, "%s\t}\n", first ? "" : " }\n");
    put(c, &c->maps, "\tmap ingress_pods {\n\t\ttype ipv4_addr : verdict\n%s%s\t}\n",
        drv_buf_str(&in_el), in_el.len ? " }\n" : "");
    put(c, &c->maps, "\tmap egress_pods {\n\t\ttype ipv4_addr : verdict\n%s%s\t}\n",
        drv_buf_str(&eg_el), eg_el.len ? " }\n" : "");
    drv_buf_free(&in_el);
    drv_buf_free(&eg_el);
    if (rc == DRV_OK)
        rc = c->rc;
out:
    selectors_free(sels, np);
    free(tin);
    free(teg);
    return rc;
}

/* ---- the table ---- */

static void render_base(nft_ctx_t *c, drv_buf_t *b)
{
    const drv_netstate_t *ns = c->ns;
    const drv_nft_local_t *l = c->local;
    char ccidr[DRV_NET_CIDR_STR], pcidr[DRV_NET_CIDR_STR], dnsv[16], dnsl[16];
    drv_net_cidr_format(ns->cluster_cidr, ccidr);
    drv_net_cidr_format(ns->pod_cidr, pcidr);
    drv_net_ip_format(ns->service_cidr.addr + NFT_DNS_OFFSET, dnsv);
    drv_net_ip_format(l->dns_ip, dnsl);
    put(c, b,
        "\tchain reject_svc {\n\t\tmeta l4proto tcp reject with tcp reset\n"
        "\t\treject with icmpx type port-unreachable\n\t}\n");
    static const char *const nat_hooks[] = {"prerouting", "output"};
    for (size_t h = 0; h < 2; h++) {
        /* -100: dstnat, a name nft only takes for prerouting. */
        put(c, b, "\tchain nat_%s {\n\t\ttype nat hook %s priority -100; policy accept;\n",
            nat_hooks[h], nat_hooks[h]);
        if (l->dns_ip)
            put(c, b, "\t\tip daddr %s meta l4proto { tcp, udp } th dport %d dnat ip to %s\n", dnsv,
                NFT_DNS_PORT, dnsl);
        put(c, b,
            "\t\tip daddr . meta l4proto . th dport vmap @svc_ports\n"
            "\t\tip daddr . meta l4proto . th dport vmap @lb_ports\n"
            "\t\tfib daddr type local meta l4proto . th dport vmap @node_ports\n\t}\n");
    }
    put(c, b,
        "\tchain nat_postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
        "\t\tmeta mark & 0x%x == 0x%x masquerade\n"
        "\t\tip saddr %s ip daddr != %s masquerade\n\t}\n",
        DRV_NFT_MASQ_MARK, DRV_NFT_MASQ_MARK, pcidr, ccidr);
    /* Fail closed: cluster traffic for another node leaves through WireGuard or not at all. */
    static const char *const filter_hooks[] = {"forward", "output"};
    for (size_t h = 0; h < 2; h++) {
        put(c, b,
            "\tchain filter_%s {\n\t\ttype filter hook %s priority filter; policy accept;\n"
            "\t\tip daddr %s ip daddr != %s oifname != \"%s\" drop\n"
            "\t\tip daddr . meta l4proto . th dport @no_endpoints goto reject_svc\n"
            "\t\tip daddr @cluster_ips goto reject_svc\n",
            filter_hooks[h], filter_hooks[h], ccidr, pcidr, l->wg_if);
        if (h == 0)
            /* NetworkPolicy: replies and established flows pass; pods of this podCIDR the
             * table does not know (yet) talk to no one; egress then ingress. */
            put(c, b,
                "\t\tct state established,related accept\n"
                "\t\tip saddr %s ip saddr != @local_pods drop\n"
                "\t\tip daddr %s ip daddr != @local_pods drop\n"
                "\t\tip saddr vmap @egress_pods\n"
                "\t\tip daddr vmap @ingress_pods\n",
                pcidr, pcidr);
        put(c, b, "\t}\n");
    }
    put(c, b,
        "\tchain filter_input {\n\t\ttype filter hook input priority filter; policy accept;\n"
        "\t\tip daddr . meta l4proto . th dport @no_endpoints goto reject_svc\n"
        "\t\tfib daddr type local meta l4proto . th dport @no_endpoints_np goto reject_svc\n"
        "\t}\n");
}

drv_err_t drv_nft_render(const drv_netstate_t *ns, const drv_nft_local_t *local, drv_buf_t *out,
                         drv_error_t *err)
{
    if (ns == NULL || !ns->present)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "nft: no network section");
    if (local == NULL || !valid_ifname(local->bridge) || !valid_ifname(local->wg_if))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "nft: bad bridge or WireGuard interface "
                             "name");
    if (local->npods && local->pods == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "nft: local pods missing");
    nft_ctx_t c = {.ns = ns, .local = local, .err = err};
    drv_buf_init(&c.sets, out->max);
    drv_buf_init(&c.chains, out->max);
    drv_buf_init(&c.maps, out->max);
    drv_vec_init(&c.els, sizeof(nft_el_t), SIZE_MAX / sizeof(nft_el_t));
    drv_vec_init(&c.pods, sizeof(nft_pod_t), DRV_NET_PODS_MAX + local->npods);
    _cleanup_buf_ drv_buf_t base = DRV_BUF_INIT(out->max);
    size_t maxeps = 1;
    for (size_t i = 0; i < ns->nservices; i++)
        if (ns->services[i].nendpoints > maxeps)
            maxeps = ns->services[i].nendpoints;
    _cleanup_free_ size_t *all = calloc(maxeps, sizeof(size_t));
    _cleanup_free_ size_t *loc = calloc(maxeps, sizeof(size_t));
    drv_err_t rc = all && loc ? pods_collect(&c) : drv_error_set(err, DRV_ERR_NOMEM, 0, "nft");
    for (size_t i = 0; rc == DRV_OK && i < ns->nservices && c.rc == DRV_OK; i++)
        render_service(&c, i, all, loc);
    if (rc == DRV_OK && c.rc == DRV_OK)
        render_service_maps(&c);
    if (rc == DRV_OK && c.rc == DRV_OK)
        rc = render_policies(&c);
    if (rc == DRV_OK && c.rc == DRV_OK)
        render_base(&c, &base);
    if (rc == DRV_OK)
        rc = c.rc;
    size_t start = out->len;
    if (rc == DRV_OK) {
        /* Create-if-missing, delete, define: one transaction, so the old table is in force
         * until the new one is, and a failing script leaves the old one. */
        put(&c, out,
            "table inet " DRV_NFT_TABLE " {}\ndelete table inet " DRV_NFT_TABLE
            "\ntable inet " DRV_NFT_TABLE " {\n");
        put(&c, out, "%s", drv_buf_str(&c.sets));
        put(&c, out, "%s", drv_buf_str(&c.chains));
        put(&c, out, "%s", drv_buf_str(&c.maps));
        put(&c, out, "%s}\n", drv_buf_str(&base));
        rc = c.rc;
        if (rc != DRV_OK)
            drv_buf_truncate(out, start);
    }
    drv_buf_free(&c.sets);
    drv_buf_free(&c.chains);
    drv_buf_free(&c.maps);
    drv_vec_free(&c.els);
    drv_vec_free(&c.pods);
    return rc;
}

/* ---- running nft ---- */

static drv_err_t nft_run(const char *const *args, const char *script, size_t len, drv_error_t *err)
{
    char *argv[6] = {0};
    size_t n = 0;
    for (; args[n] && n < 5; n++)
        argv[n] = (char *)args[n];
    static char e_path[] = NFT_PATH_ENV;
    char *envp[] = {e_path, NULL};
    drv_proc_opts_t o = {.argv = argv, .envp = envp, .in_fd = -1, .new_pgroup = true};
    _cleanup_buf_ drv_buf_t ebuf = DRV_BUF_INIT(NFT_STDERR_MAX);
    drv_proc_io_t io = {
        .in = script, .in_len = len, .errout = &ebuf, .timeout_ms = DRV_NFT_TIMEOUT_MS};
    _cleanup_buf_ drv_buf_t obuf = DRV_BUF_INIT(NFT_STDERR_MAX);
    io.out = &obuf;
    int status = 0;
    drv_error_t perr = DRV_ERROR_INIT;
    drv_err_t rc = drv_proc_exec(&o, &io, &status, &perr);
    if (rc == DRV_ERR_TIMEOUT)
        return drv_error_set(err, rc, 0, "nft: no answer within %u ms, killed", DRV_NFT_TIMEOUT_MS);
    if (rc != DRV_OK)
        return drv_error_set(err, rc, perr.sys_errno, "nft: cannot run: %s", drv_error_msg(&perr));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char how[64], shown[NFT_ERR_SHOWN];
        drv_proc_describe(status, how, sizeof(how));
        drv_fmt_cut(shown, sizeof(shown), "%s", drv_buf_str(&ebuf));
        size_t sl = strlen(shown);
        while (sl && (shown[sl - 1] == '\n' || shown[sl - 1] == ' '))
            shown[--sl] = '\0';
        return drv_error_set(err, DRV_ERR_IO, 0, "nft %s: %s: %s", args[1], how, shown);
    }
    return DRV_OK;
}

drv_err_t drv_nft_apply(const char *script, size_t len, drv_error_t *err)
{
    /* On the stack, not static: a static table of pointers is relocated at each start. */
    const char *const args[] = {"nft", "-f", "-", NULL};
    return nft_run(args, script, len, err);
}

drv_err_t drv_nft_check(const char *script, size_t len, drv_error_t *err)
{
    const char *const args[] = {"nft", "-c", "-f", "-", NULL};
    return nft_run(args, script, len, err);
}

drv_err_t drv_nft_remove(drv_error_t *err)
{
    static const char script[] = "table inet " DRV_NFT_TABLE " {}\n"
                                 "delete table inet " DRV_NFT_TABLE "\n";
    return drv_nft_apply(script, sizeof(script) - 1, err);
}
