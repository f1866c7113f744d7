/* The "network" section of a node's desired state, read into drv_netstate_t: the one place the
 * agent turns that part of the hub's document into structs, refusing anything malformed or
 * contradictory with the field's path, so WireGuard, nftables and DNS never see a hostile tree. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "drover/base64.h"
#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/model.h"
#include "drover/names.h"
#include "drover/netstate.h"

#define PATH_MAX_LEN 96
#define NAMESPACES_MAX 10000  /* namespaces of the cluster */
#define POD_PORTS_MAX 1000    /* named container ports of one pod */
#define CLUSTER_PREFIX_MIN 8  /* the cluster CIDR gets a blackhole route: never 0.0.0.0/0 */
#define SERVICE_PREFIX_MIN 12 /* Kubernetes' own limit for an IPv4 service range */
#define POD_PREFIX_MAX 30     /* a node's range holds the gateway and at least one pod */
#define MTU_MIN 576
#define MTU_MAX 9000
#define AFFINITY_TIMEOUT_MAX 86400 /* Kubernetes' maximum for sessionAffinity ClientIP */

/* ---- field readers ---- */

static drv_err_t bad(drv_error_t *err, const char *path, const char *key, const char *fmt, ...)
    DRV_PRINTF(4, 5);

/* "<path>.<key>: <message>" (or "<path>: <message>" when key is NULL). */
static drv_err_t bad(drv_error_t *err, const char *path, const char *key, const char *fmt, ...)
{
    char msg[DRV_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    drv_vfmt_cut(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (key != NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.%s: %s", path, key, msg);
    return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: %s", path, msg);
}

static drv_err_t mkpath(char *out, const char *parent, const char *key, size_t i, drv_error_t *err)
{
    if (drv_fmt(out, PATH_MAX_LEN, "%s.%s[%zu]", parent, key, i) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.%s: path too long", parent, key);
    return DRV_OK;
}

static drv_err_t cidr_field(const char *s, const char *path, const char *key, drv_net_cidr_t *out,
                            drv_error_t *err)
{
    if (drv_net_cidr_parse(s, false, out, err) != DRV_OK)
        return drv_error_wrap(err, "%s.%s", path, key);
    return DRV_OK;
}

static drv_err_t ip_field(const char *s, const char *path, const char *key, uint32_t *out,
                          drv_error_t *err)
{
    if (!drv_net_ip_parse(s, out))
        return bad(err, path, key, "\"%.40s\": must be an IPv4 address (a.b.c.d)", s);
    return DRV_OK;
}

typedef bool (*name_check_t)(const char *s, char *why, size_t whysz);

/* An empty s passes when allow_empty. */
static drv_err_t name_field(const char *s, name_check_t check, bool allow_empty, const char *path,
                            const char *key, drv_error_t *err)
{
    char why[128];
    if (allow_empty && s[0] == '\0')
        return DRV_OK;
    if (!check(s, why, sizeof why))
        return bad(err, path, key, "\"%s\": %s", s, why);
    return DRV_OK;
}

static drv_err_t protocol_field(const char *s, const char *path, drv_error_t *err, uint8_t *out)
{
    if (s == NULL || strcmp(s, "TCP") == 0)
        *out = IPPROTO_TCP;
    else if (strcmp(s, "UDP") == 0)
        *out = IPPROTO_UDP;
    else if (strcmp(s, "SCTP") == 0)
        *out = IPPROTO_SCTP;
    else
        return bad(err, path, "protocol", "\"%.20s\": must be TCP, UDP or SCTP", s);
    return DRV_OK;
}

static const char *protocol_name(uint8_t p)
{
    return p == IPPROTO_UDP ? "UDP" : p == IPPROTO_SCTP ? "SCTP" : "TCP";
}

/* An array member of at most max elements (absent: NULL). */
static drv_err_t array_field(const cJSON *obj, const char *path, const char *key, size_t max,
                             const cJSON **out, size_t *n, drv_error_t *err)
{
    *out = NULL;
    *n = 0;
    drv_err_t rc = drv_json_read_array(obj, path, key, DRV_JSON_OPTIONAL, out, NULL, err);
    if (rc != DRV_OK)
        return rc;
    *n = drv_json_array_len(*out);
    if (*n > max)
        return bad(err, path, key, "%zu entries, more than the %zu allowed", *n, max);
    return DRV_OK;
}

/* A copy of a labels object after checking every key and value (absent: an empty object). */
static drv_err_t labels_field(const cJSON *obj, const char *path, cJSON **out, drv_error_t *err)
{
    const cJSON *labels = NULL;
    drv_err_t rc = drv_json_read_object(obj, path, "labels", DRV_JSON_OPTIONAL, &labels, NULL, err);
    if (rc != DRV_OK)
        return rc;
    char why[128];
    for (const cJSON *l = labels ? labels->child : NULL; l != NULL; l = l->next) {
        if (!drv_name_label_key(l->string, why, sizeof why))
            return bad(err, path, "labels", "key \"%.253s\": %s", l->string, why);
        if (!cJSON_IsString(l) || !drv_name_label_value(l->valuestring, why, sizeof why))
            return bad(err, path, "labels", "%.253s: %s", l->string,
                       cJSON_IsString(l) ? why : "must be a string");
    }
    *out = labels ? cJSON_Duplicate(labels, true) : cJSON_CreateObject();
    if (*out == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s.labels", path);
    return DRV_OK;
}

/* "a.b.c.d:port" or "[v6]:port", port 1-65535 without leading zeros. */
static bool endpoint_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s)
        return false;
    const char *p = colon + 1;
    unsigned port = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 5; p++, digits++)
        port = port * 10 + (unsigned)(*p - '0');
    if (digits == 0 || *p != '\0' || colon[1] == '0' || port > 65535)
        return false;
    char host[INET6_ADDRSTRLEN];
    size_t hl = (size_t)(colon - s);
    if (s[0] == '[') {
        if (hl < 3 || colon[-1] != ']' || hl - 2 >= sizeof host)
            return false;
        memcpy(host, s + 1, hl - 2);
        host[hl - 2] = '\0';
        struct in6_addr a6;
        return inet_pton(AF_INET6, host, &a6) == 1;
    }
    if (hl >= sizeof host)
        return false;
    memcpy(host, s, hl);
    host[hl] = '\0';
    uint32_t ip;
    return drv_net_ip_parse(host, &ip);
}

static drv_err_t key_field(const char *key, const char *path, drv_error_t *err)
{
    _cleanup_free_ unsigned char *raw = NULL;
    size_t n = 0;
    if (strlen(key) != DRV_NET_KEY_LEN || drv_base64_decode(key, strlen(key), &raw, &n) != DRV_OK ||
        n != 32)
        return bad(err, path, "publicKey",
                   "must be a WireGuard key: 32 bytes in base64 (%d "
                   "characters)",
                   DRV_NET_KEY_LEN);
    return DRV_OK;
}

/* ---- the sections ---- */

/* The ranges the cluster must never claim: its blackhole route would cut the device off. */
static drv_err_t cidr_not_reserved(drv_net_cidr_t c, const char *path, const char *key,
                                   drv_error_t *err)
{
    static const drv_net_cidr_t reserved[] = {
        {0x00000000u, 8},  /* this network */
        {0x7f000000u, 8},  /* loopback */
        {0xa9fe0000u, 16}, /* link-local */
        {0xe0000000u, 3},  /* multicast and reserved */
    };
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (drv_net_cidr_overlaps(c, reserved[i])) {
            char a[DRV_NET_CIDR_STR], b[DRV_NET_CIDR_STR];
            drv_net_cidr_format(c, a);
            drv_net_cidr_format(reserved[i], b);
            return bad(err, path, key, "%s overlaps the reserved range %s", a, b);
        }
    return DRV_OK;
}

static drv_err_t parse_top(const cJSON *net, drv_netstate_t *ns, drv_error_t *err)
{
    const char *pod = NULL, *cluster = NULL, *service = NULL;
    int64_t port = DRV_NET_DEFAULT_PORT, mtu = DRV_NET_DEFAULT_MTU, keepalive = 0;
    DRV_FMT_LIT(ns->cluster_domain, "cluster.local");
    const drv_json_field_t t[] = {
        {.key = "podCIDR", .type = DRV_JSON_T_STRING, .need = DRV_JSON_REQUIRED, .dest = &pod},
        {.key = "clusterCIDR",
         .type = DRV_JSON_T_STRING,
         .need = DRV_JSON_REQUIRED,
         .dest = &cluster},
        {.key = "serviceCIDR",
         .type = DRV_JSON_T_STRING,
         .need = DRV_JSON_REQUIRED,
         .dest = &service},
        {.key = "clusterDomain",
         .type = DRV_JSON_T_STRBUF,
         .dest = ns->cluster_domain,
         .size = sizeof ns->cluster_domain},
        {.key = "listenPort", .type = DRV_JSON_T_INT, .dest = &port, .min = 1, .max = 65535},
        {.key = "mtu", .type = DRV_JSON_T_INT, .dest = &mtu, .min = MTU_MIN, .max = MTU_MAX},
        {.key = "keepaliveSeconds", .type = DRV_JSON_T_INT, .dest = &keepalive, .max = 65535},
        {.key = "behindNat", .type = DRV_JSON_T_BOOL, .dest = &ns->behind_nat},
    };
    drv_err_t rc = drv_json_read_table(net, "network", t, DRV_JSON_TABLE_LEN(t), 0, err);
    if (rc != DRV_OK)
        return rc;
    ns->listen_port = (uint16_t)port;
    ns->mtu = (uint16_t)mtu;
    ns->keepalive_s = (uint16_t)keepalive;
    if ((rc = name_field(ns->cluster_domain, drv_name_dns_subdomain, false, "network",
                         "clusterDomain", err)) != DRV_OK ||
        (rc = cidr_field(cluster, "network", "clusterCIDR", &ns->cluster_cidr, err)) != DRV_OK ||
        (rc = cidr_field(service, "network", "serviceCIDR", &ns->service_cidr, err)) != DRV_OK ||
        (rc = cidr_field(pod, "network", "podCIDR", &ns->pod_cidr, err)) != DRV_OK)
        return rc;
    if (ns->cluster_cidr.prefix < CLUSTER_PREFIX_MIN)
        return bad(err, "network", "clusterCIDR", "\"%s\": the prefix must be /%d or longer",
                   cluster, CLUSTER_PREFIX_MIN);
    if (ns->service_cidr.prefix < SERVICE_PREFIX_MIN)
        return bad(err, "network", "serviceCIDR", "\"%s\": the prefix must be /%d or longer",
                   service, SERVICE_PREFIX_MIN);
    if ((rc = cidr_not_reserved(ns->cluster_cidr, "network", "clusterCIDR", err)) != DRV_OK ||
        (rc = cidr_not_reserved(ns->service_cidr, "network", "serviceCIDR", err)) != DRV_OK)
        return rc;
    if (drv_net_cidr_overlaps(ns->cluster_cidr, ns->service_cidr))
        return bad(err, "network", "serviceCIDR", "%s overlaps network.clusterCIDR (%s)", service,
                   cluster);
    if (ns->pod_cidr.prefix > POD_PREFIX_MAX)
        return bad(err, "network", "podCIDR", "\"%s\": the prefix must be /%d or shorter", pod,
                   POD_PREFIX_MAX);
    if (!drv_net_cidr_covers(ns->cluster_cidr, ns->pod_cidr))
        return bad(err, "network", "podCIDR", "%s is outside network.clusterCIDR (%s)", pod,
                   cluster);
    return DRV_OK;
}

static drv_err_t parse_peer(const cJSON *obj, const char *path, const drv_netstate_t *ns,
                            drv_net_peer_t *p, drv_error_t *err)
{
    const char *cidr = NULL;
    const drv_json_field_t t[] = {
        {.key = "node",
         .type = DRV_JSON_T_STRBUF,
         .need = DRV_JSON_REQUIRED,
         .dest = p->node,
         .size = sizeof p->node},
        {.key = "publicKey",
         .type = DRV_JSON_T_STRBUF,
         .need = DRV_JSON_REQUIRED,
         .dest = p->public_key,
         .size = sizeof p->public_key},
        {.key = "podCIDR", .type = DRV_JSON_T_STRING, .need = DRV_JSON_REQUIRED, .dest = &cidr},
        {.key = "endpoint",
         .type = DRV_JSON_T_STRBUF,
         .dest = p->endpoint,
         .size = sizeof p->endpoint},
        {.key = "via", .type = DRV_JSON_T_STRBUF, .dest = p->via, .size = sizeof p->via},
        {.key = "relay", .type = DRV_JSON_T_BOOL, .dest = &p->relay},
    };
    drv_err_t rc = drv_json_read_table(obj, path, t, DRV_JSON_TABLE_LEN(t), 0, err);
    if (rc != DRV_OK ||
        (rc = name_field(p->node, drv_name_dns_subdomain, false, path, "node", err)) != DRV_OK ||
        (rc = name_field(p->via, drv_name_dns_subdomain, true, path, "via", err)) != DRV_OK ||
        (rc = key_field(p->public_key, path, err)) != DRV_OK ||
        (rc = cidr_field(cidr, path, "podCIDR", &p->pod_cidr, err)) != DRV_OK)
        return rc;
    if (strcmp(p->node, ns->node) == 0)
        return bad(err, path, "node", "\"%s\" is this node", p->node);
    if (p->endpoint[0] != '\0' && !endpoint_ok(p->endpoint))
        return bad(err, path, "endpoint", "\"%s\": must be host:port (a.b.c.d:port or [v6]:port)",
                   p->endpoint);
    if (p->pod_cidr.prefix > POD_PREFIX_MAX)
        return bad(err, path, "podCIDR", "\"%s\": the prefix must be /%d or shorter", cidr,
                   POD_PREFIX_MAX);
    if (!drv_net_cidr_covers(ns->cluster_cidr, p->pod_cidr)) {
        char cl[DRV_NET_CIDR_STR];
        drv_net_cidr_format(ns->cluster_cidr, cl);
        return bad(err, path, "podCIDR", "%s is outside network.clusterCIDR (%s)", cidr, cl);
    }
    if (strcmp(p->via, p->node) == 0)
        return bad(err, path, "via", "\"%s\" is the peer itself", p->via);
    return DRV_OK;
}

/* A range and where it came from: idx SIZE_MAX is this node's podCIDR. */
typedef struct range_ref {
    uint32_t lo, hi;
    size_t idx;
} range_ref_t;

static int cmp_range(const void *a, const void *b)
{
    const range_ref_t *x = a, *y = b;
    if (x->lo != y->lo)
        return x->lo < y->lo ? -1 : 1;
    if (x->hi != y->hi)
        return x->hi < y->hi ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_peer_name(const void *a, const void *b)
{
    const drv_net_peer_t *x = *(const drv_net_peer_t *const *)a;
    const drv_net_peer_t *y = *(const drv_net_peer_t *const *)b;
    int c = strcmp(x->node, y->node);
    return c != 0 ? c : (x < y ? -1 : x > y);
}

static void range_name(size_t idx, char *out, size_t outsz)
{
    if (idx == SIZE_MAX)
        drv_fmt_cut(out, outsz, "network.podCIDR");
    else
        drv_fmt_cut(out, outsz, "network.peers[%zu].podCIDR", idx);
}

/* No two ranges among this node's and the peers' overlap; sorted by start, any overlap shows
 * between neighbours. */
static drv_err_t check_peer_ranges(const drv_netstate_t *ns, drv_error_t *err)
{
    _cleanup_free_ range_ref_t *r = calloc(ns->npeers + 1, sizeof *r);
    if (r == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "network.peers");
    for (size_t i = 0; i <= ns->npeers; i++) {
        drv_net_cidr_t c = i < ns->npeers ? ns->peers[i].pod_cidr : ns->pod_cidr;
        r[i].lo = c.addr;
        r[i].hi = c.addr | ~drv_net_prefix_mask(c.prefix);
        r[i].idx = i < ns->npeers ? i : SIZE_MAX;
    }
    qsort(r, ns->npeers + 1, sizeof *r, cmp_range);
    for (size_t i = 0; i + 1 <= ns->npeers; i++) {
        if (r[i].hi < r[i + 1].lo)
            continue;
        /* Name the later of the two in the document (this node's own range comes first). */
        const range_ref_t *subj = &r[i + 1], *other = &r[i];
        if (subj->idx == SIZE_MAX || (other->idx != SIZE_MAX && other->idx > subj->idx)) {
            subj = &r[i];
            other = &r[i + 1];
        }
        char an[48], bn[48], ac[19], bc[19];
        range_name(subj->idx, an, sizeof an);
        range_name(other->idx, bn, sizeof bn);
        drv_net_cidr_format(ns->peers[subj->idx].pod_cidr, ac);
        drv_net_cidr_format(other->idx == SIZE_MAX ? ns->pod_cidr : ns->peers[other->idx].pod_cidr,
                            bc);
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: %s overlaps %s (%s)", an, ac, bn, bc);
    }
    return DRV_OK;
}

static drv_err_t check_peers(const drv_netstate_t *ns, drv_error_t *err)
{
    drv_err_t rc = check_peer_ranges(ns, err);
    if (rc != DRV_OK || ns->npeers == 0)
        return rc;
    _cleanup_free_ const drv_net_peer_t **by_name = calloc(ns->npeers, sizeof *by_name);
    if (by_name == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "network.peers");
    for (size_t i = 0; i < ns->npeers; i++)
        by_name[i] = &ns->peers[i];
    qsort(by_name, ns->npeers, sizeof *by_name, cmp_peer_name);
    for (size_t i = 0; i + 1 < ns->npeers; i++)
        if (strcmp(by_name[i]->node, by_name[i + 1]->node) == 0)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "network.peers[%zu].node: \"%s\" is also network.peers[%zu]",
                                 (size_t)(by_name[i + 1] - ns->peers), by_name[i]->node,
                                 (size_t)(by_name[i] - ns->peers));
    for (size_t i = 0; i < ns->npeers; i++) {
        const drv_net_peer_t *p = &ns->peers[i];
        if (p->via[0] == '\0')
            continue;
        /* cmp_peer_name breaks ties by address: search by name alone. */
        const drv_net_peer_t *relay = NULL;
        size_t lo = 0, hi = ns->npeers;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = strcmp(by_name[mid]->node, p->via);
            if (c == 0) {
                relay = by_name[mid];
                break;
            }
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (relay == NULL)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "network.peers[%zu].via: \"%s\" names no peer", i, p->via);
        if (!relay->relay)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "network.peers[%zu].via: \"%s\" (network.peers[%zu]) is not a "
                                 "relay",
                                 i, p->via, (size_t)(relay - ns->peers));
        if (relay->via[0] != '\0')
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "network.peers[%zu].via: \"%s\" is itself reached via \"%s\"", i,
                                 p->via, relay->via);
    }
    return DRV_OK;
}

static drv_err_t parse_peers(const cJSON *net, drv_netstate_t *ns, drv_error_t *err)
{
    const cJSON *arr = NULL;
    size_t n = 0;
    drv_err_t rc = array_field(net, "network", "peers", DRV_NET_PEERS_MAX, &arr, &n, err);
    if (rc != DRV_OK)
        return rc;
    if (n > 0 && (ns->peers = calloc(n, sizeof *ns->peers)) == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "network.peers");
    ns->npeers = n;
    size_t i = 0;
    for (const cJSON *e = arr ? arr->child : NULL; e != NULL && i < n; e = e->next, i++) {
        char path[PATH_MAX_LEN];
        if ((rc = mkpath(path, "network", "peers", i, err)) != DRV_OK ||
            (rc = parse_peer(e, path, ns, &ns->peers[i], err)) != DRV_OK)
            return rc;
    }
    return check_peers(ns, err);
}

/* -- services -- */

static drv_err_t parse_port(const cJSON *obj, const char *path, drv_net_svc_type_t type,
                            drv_net_port_t *p, drv_error_t *err)
{
    const char *proto = NULL;
    int64_t port = 0, node_port = 0;
    const drv_json_field_t t[] = {
        {.key = "name", .type = DRV_JSON_T_STRBUF, .dest = p->name, .size = sizeof p->name},
        {.key = "protocol", .type = DRV_JSON_T_STRING, .dest = &proto},
        {.key = "port",
         .type = DRV_JSON_T_INT,
         .need = DRV_JSON_REQUIRED,
         .dest = &port,
         .min = 1,
         .max = 65535},
        {.key = "nodePort", .type = DRV_JSON_T_INT, .dest = &node_port, .max = 65535},
    };
    drv_err_t rc = drv_json_read_table(obj, path, t, DRV_JSON_TABLE_LEN(t), 0, err);
    if (rc != DRV_OK ||
        (rc = name_field(p->name, drv_name_dns_label, true, path, "name", err)) != DRV_OK ||
        (rc = protocol_field(proto, path, err, &p->protocol)) != DRV_OK)
        return rc;
    if (type == DRV_NET_SVC_CLUSTER_IP && node_port != 0)
        return bad(err, path, "nodePort", "must be 0 for a ClusterIP Service");
    if (type == DRV_NET_SVC_NODE_PORT && node_port == 0)
        return bad(err, path, "nodePort", "required for a NodePort Service");
    p->port = (uint16_t)port;
    p->node_port = (uint16_t)node_port;
    return DRV_OK;
}

static drv_err_t parse_endpoint(const cJSON *obj, const char *path, const drv_netstate_t *ns,
                                size_t nports, drv_net_endpoint_t *e, drv_error_t *err)
{
    const char *ip = NULL;
    const cJSON *tps = NULL;
    bool has_serving = false;
    e->ready = true; /* EndpointSlice: an absent condition reads as ready, serving = ready */
    const drv_json_field_t t[] = {
        {.key = "ip", .type = DRV_JSON_T_STRING, .need = DRV_JSON_REQUIRED, .dest = &ip},
        {.key = "node",
         .type = DRV_JSON_T_STRBUF,
         .need = DRV_JSON_REQUIRED,
         .dest = e->node,
         .size = sizeof e->node},
        {.key = "pod", .type = DRV_JSON_T_STRBUF, .dest = e->pod, .size = sizeof e->pod},
        {.key = "hostname",
         .type = DRV_JSON_T_STRBUF,
         .dest = e->hostname,
         .size = sizeof e->hostname},
        {.key = "ready", .type = DRV_JSON_T_BOOL, .dest = &e->ready},
        {.key = "serving", .type = DRV_JSON_T_BOOL, .dest = &e->serving, .present = &has_serving},
        {.key = "terminating", .type = DRV_JSON_T_BOOL, .dest = &e->terminating},
        {.key = "targetPorts", .type = DRV_JSON_T_ARRAY, .need = DRV_JSON_REQUIRED, .dest = &tps},
    };
    drv_err_t rc = drv_json_read_table(obj, path, t, DRV_JSON_TABLE_LEN(t), 0, err);
    if (rc != DRV_OK || (rc = ip_field(ip, path, "ip", &e->ip, err)) != DRV_OK ||
        (rc = name_field(e->node, drv_name_dns_subdomain, false, path, "node", err)) != DRV_OK ||
        (rc = name_field(e->pod, drv_name_dns_subdomain, true, path, "pod", err)) != DRV_OK ||
        (rc = name_field(e->hostname, drv_name_dns_label, true, path, "hostname", err)) != DRV_OK)
        return rc;
    if (!has_serving)
        e->serving = e->ready;
    if (!drv_net_cidr_contains(ns->cluster_cidr, e->ip)) {
        char cl[DRV_NET_CIDR_STR];
        drv_net_cidr_format(ns->cluster_cidr, cl);
        return bad(err, path, "ip", "%s is outside network.clusterCIDR (%s)", ip, cl);
    }
    size_t n = drv_json_array_len(tps);
    if (n != nports)
        return bad(err, path, "targetPorts", "%zu given, want one per Service port (%zu)", n,
                   nports);
    if (n > 0 && (e->target_ports = calloc(n, sizeof *e->target_ports)) == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s.targetPorts", path);
    size_t i = 0;
    for (const cJSON *v = tps->child; v != NULL && i < n; v = v->next, i++) {
        int64_t tp = 0;
        if (!cJSON_IsNumber(v) || !drv_json_to_int(v->valuedouble, 0, 65535, &tp))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "%s.targetPorts[%zu]: must be a whole number from 0 to 65535",
                                 path, i);
        e->target_ports[i] = (uint16_t)tp;
    }
    return DRV_OK;
}

static drv_err_t parse_service(const cJSON *obj, const char *path, const drv_netstate_t *ns,
                               drv_net_service_t *s, drv_error_t *err)
{
    const char *type = NULL, *cip = NULL, *affinity = NULL, *itp = NULL, *etp = NULL;
    int64_t timeout = 10800;
    const drv_json_field_t t[] = {
        {.key = "namespace",
         .type = DRV_JSON_T_STRBUF,
         .need = DRV_JSON_REQUIRED,
         .dest = s->ns,
         .size = sizeof s->ns},
        {.key = "name",
         .type = DRV_JSON_T_STRBUF,
         .need = DRV_JSON_REQUIRED,
         .dest = s->name,
         .size = sizeof s->name},
        {.key = "type", .type = DRV_JSON_T_STRING, .dest = &type},
        {.key = "clusterIP", .type = DRV_JSON_T_STRING, .need = DRV_JSON_REQUIRED, .dest = &cip},
        {.key = "sessionAffinity", .type = DRV_JSON_T_STRING, .dest = &affinity},
        {.key = "affinityTimeoutSeconds",
         .type = DRV_JSON_T_INT,
         .dest = &timeout,
         .min = 1,
         .max = AFFINITY_TIMEOUT_MAX},
        {.key = "internalTrafficPolicy", .type = DRV_JSON_T_STRING, .dest = &itp},
        {.key = "externalTrafficPolicy", .type = DRV_JSON_T_STRING, .dest = &etp},
        {.key = "publishNotReadyAddresses", .type = DRV_JSON_T_BOOL, .dest = &s->publish_not_ready},
    };
    drv_err_t rc = drv_json_read_table(obj, path, t, DRV_JSON_TABLE_LEN(t), 0, err);
    if (rc != DRV_OK ||
        (rc = name_field(s->ns, drv_name_dns_label, false, path, "namespace", err)) != DRV_OK ||
        (rc = name_field(s->name, drv_name_dns1035_label, false, path, "name", err)) != DRV_OK)
        return rc;
    if (type == NULL || strcmp(type, "ClusterIP") == 0)
        s->type = DRV_NET_SVC_CLUSTER_IP;
    else if (strcmp(type, "NodePort") == 0)
        s->type = DRV_NET_SVC_NODE_PORT;
    else if (strcmp(type, "LoadBalancer") == 0)
        s->type = DRV_NET_SVC_LOAD_BALANCER;
    else
        return bad(err, path, "type", "\"%.40s\": must be ClusterIP, NodePort or LoadBalancer",
                   type);
    if (strcmp(cip, "None") == 0) {
        s->headless = true;
        if (s->type != DRV_NET_SVC_CLUSTER_IP)
            return bad(err, path, "clusterIP", "None (headless) needs type ClusterIP");
    } else {
        if ((rc = ip_field(cip, path, "clusterIP", &s->cluster_ip, err)) != DRV_OK)
            return rc;
        if (!drv_net_cidr_contains(ns->service_cidr, s->cluster_ip)) {
            char sc[DRV_NET_CIDR_STR];
            drv_net_cidr_format(ns->service_cidr, sc);
            return bad(err, path, "clusterIP", "%s is outside network.serviceCIDR (%s)", cip, sc);
        }
    }
    if (affinity != NULL && strcmp(affinity, "ClientIP") != 0 && strcmp(affinity, "None") != 0)
        return bad(err, path, "sessionAffinity", "\"%.40s\": must be None or ClientIP", affinity);
    s->affinity_client_ip = affinity != NULL && strcmp(affinity, "ClientIP") == 0;
    s->affinity_timeout_s = (uint32_t)timeout;
    const char *const pol[2] = {itp, etp};
    static const char pol_key[2][22] = {"internalTrafficPolicy", "externalTrafficPolicy"};
    for (int i = 0; i < 2; i++)
        if (pol[i] != NULL && strcmp(pol[i], "Cluster") != 0 && strcmp(pol[i], "Local") != 0)
            return bad(err, path, pol_key[i], "\"%.40s\": must be Cluster or Local", pol[i]);
    s->internal_local = itp != NULL && strcmp(itp, "Local") == 0;
    s->external_local = etp != NULL && strcmp(etp, "Local") == 0;

    const cJSON *arr = NULL;
    size_t n = 0;
    if ((rc = array_field(obj, path, "ports", DRV_NET_PORTS_MAX, &arr, &n, err)) != DRV_OK)
        return rc;
    if (n > 0 && (s->ports = calloc(n, sizeof *s->ports)) == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s.ports", path);
    s->nports = n;
    size_t i = 0;
    for (const cJSON *e = arr ? arr->child : NULL; e != NULL && i < n; e = e->next, i++) {
        char pp[PATH_MAX_LEN];
        if ((rc = mkpath(pp, path, "ports", i, err)) != DRV_OK ||
            (rc = parse_port(e, pp, s->type, &s->ports[i], err)) != DRV_OK)
            return rc;
        const drv_net_port_t *p = &s->ports[i];
        if (n > 1 && p->name[0] == '\0')
            return bad(err, pp, "name", "required when a Service has more than one port");
        for (size_t j = 0; j < i; j++) {
            const drv_net_port_t *q = &s->ports[j];
            if (p->name[0] != '\0' && strcmp(p->name, q->name) == 0)
                return bad(err, pp, "name", "\"%s\" is also %s.ports[%zu]", p->name, path, j);
            if (p->protocol == q->protocol && p->port == q->port)
                return bad(err, pp, "port", "%u/%s is also %s.ports[%zu]", p->port,
                           protocol_name(p->protocol), path, j);
        }
    }

    if ((rc = array_field(obj, path, "endpoints", DRV_NET_ENDPOINTS_MAX, &arr, &n, err)) != DRV_OK)
        return rc;
    if (n > 0 && (s->endpoints = calloc(n, sizeof *s->endpoints)) == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s.endpoints", path);
    s->nendpoints = n;
    i = 0;
    for (const cJSON *e = arr ? arr->child : NULL; e != NULL && i < n; e = e->next, i++) {
        char ep[PATH_MAX_LEN];
        if ((rc = mkpath(ep, path, "endpoints", i, err)) != DRV_OK ||
            (rc = parse_endpoint(e, ep, ns, s->nports, &s->endpoints[i], err)) != DRV_OK)
            return rc;
    }
    return DRV_OK;
}

/* A value claimed once across all Services (a cluster IP, a protocol's node port), with its
 * owner for the message. */
typedef struct claim {
    uint32_t key;
    size_t svc, port;
} claim_t;

static int cmp_claim(const void *a, const void *b)
{
    const claim_t *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    if (x->svc != y->svc)
        return x->svc < y->svc ? -1 : 1;
    return x->port < y->port ? -1 : x->port > y->port;
}

static drv_err_t check_services(const drv_netstate_t *ns, drv_error_t *err)
{
    size_t nports = 0;
    for (size_t i = 0; i < ns->nservices; i++)
        nports += ns->services[i].nports;
    size_t cap = ns->nservices > nports ? ns->nservices : nports;
    if (cap == 0)
        return DRV_OK;
    _cleanup_free_ claim_t *c = calloc(cap, sizeof *c);
    if (c == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "network.services");
    size_t n = 0;
    for (size_t i = 0; i < ns->nservices; i++)
        if (!ns->services[i].headless)
            c[n++] = (claim_t){ns->services[i].cluster_ip, i, 0};
    qsort(c, n, sizeof *c, cmp_claim);
    for (size_t i = 0; i + 1 < n; i++)
        if (c[i].key == c[i + 1].key) {
            char ip[DRV_NET_IP_STR];
            drv_net_ip_format(c[i].key, ip);
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "network.services[%zu].clusterIP: %s is also "
                                 "network.services[%zu]'s",
                                 c[i + 1].svc, ip, c[i].svc);
        }
    n = 0;
    for (size_t i = 0; i < ns->nservices; i++)
        for (size_t j = 0; j < ns->services[i].nports; j++) {
            const drv_net_port_t *p = &ns->services[i].ports[j];
            if (p->node_port != 0)
                c[n++] = (claim_t){(uint32_t)p->protocol << 16 | p->node_port, i, j};
        }
    qsort(c, n, sizeof *c, cmp_claim);
    for (size_t i = 0; i + 1 < n; i++)
        if (c[i].key == c[i + 1].key)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "network.services[%zu].ports[%zu].nodePort: %u/%s is also "
                                 "network.services[%zu].ports[%zu]'s",
                                 c[i + 1].svc, c[i + 1].port, c[i].key & 0xffff,
                                 protocol_name((uint8_t)(c[i].key >> 16)), c[i].svc, c[i].port);
    return DRV_OK;
}

static drv_err_t parse_services(const cJSON *net, drv_netstate_t *ns, drv_error_t *err)
{
    const cJSON *arr = NULL;
    size_t n = 0;
    drv_err_t rc = array_field(net, "network", "services", DRV_NET_SERVICES_MAX, &arr, &n, err);
    if (rc != DRV_OK)
        return rc;
    if (n > 0 && (ns->services = calloc(n, sizeof *ns->services)) == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "network.services");
    ns->nservices = n;
    size_t i = 0;
    for (const cJSON *e = arr ? arr->child : NULL; e != NULL && i < n; e = e->next, i++) {
        char path[PATH_MAX_LEN];
        if ((rc = mkpath(path, "network", "services", i, err)) != DRV_OK ||
            (rc = parse_service(e, path, ns, &ns->services[i], err)) != DRV_OK)
            return rc;
    }
    return check_services(ns, err);
}

/* -- pods, namespaces, policies -- */

/* The pod's container ports rebuilt as {"name","protocol","containerPort"} after checking. */
static drv_err_t pod_ports(const cJSON *obj, const char *path, cJSON **out, drv_error_t *err)
{
    const cJSON *arr = NULL;
    size_t n = 0;
    drv_err_t rc = array_field(obj, path, "ports", POD_PORTS_MAX, &arr, &n, err);
    if (rc != DRV_OK)
        return rc;
    _cleanup_cjson_ cJSON *ports = cJSON_CreateArray();
    if (ports == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s.ports", path);
    size_t i = 0;
    for (const cJSON *e = arr ? arr->child : NULL; e != NULL && i < n; e = e->next, i++) {
        char pp[PATH_MAX_LEN];
        char name[16] = "";
        const char *proto_s = NULL;
        int64_t port = 0;
        uint8_t proto = 0;
        const drv_json_field_t t[] = {
            {.key = "name", .type = DRV_JSON_T_STRBUF, .dest = name, .size = sizeof name},
            {.key = "protocol", .type = DRV_JSON_T_STRING, .dest = &proto_s},
            {.key = "containerPort",
             .type = DRV_JSON_T_INT,
             .need = DRV_JSON_REQUIRED,
             .dest = &port,
             .min = 1,
             .max = 65535},
        };
        if ((rc = mkpath(pp, path, "ports", i, err)) != DRV_OK ||
            (rc = drv_json_read_table(e, pp, t, DRV_JSON_TABLE_LEN(t), 0, err)) != DRV_OK ||
            (rc = name_field(name, drv_name_port_name, true, pp, "name", err)) != DRV_OK ||
            (rc = protocol_field(proto_s, pp, err, &proto)) != DRV_OK)
            return rc;
        cJSON *p = cJSON_CreateObject();
        if (p == NULL || !cJSON_AddItemToArray(ports, p) ||
            cJSON_AddStringToObject(p, "name", name) == NULL ||
            cJSON_AddStringToObject(p, "protocol", protocol_name(proto)) == NULL ||
            cJSON_AddNumberToObject(p, "containerPort", (double)port) == NULL)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s.ports", path);
    }
    *out = TAKE_PTR(ports);
    return DRV_OK;
}

static drv_err_t parse_pod(const cJSON *obj, const char *path, const drv_netstate_t *ns,
                           drv_net_pod_t *p, drv_error_t *err)
{
    const char *ip = NULL;
    const drv_json_field_t t[] = {
        {.key = "ip", .type = DRV_JSON_T_STRING, .need = DRV_JSON_REQUIRED, .dest = &ip},
        {.key = "namespace",
         .type = DRV_JSON_T_STRBUF,
         .need = DRV_JSON_REQUIRED,
         .dest = p->ns,
         .size = sizeof p->ns},
        {.key = "name",
         .type = DRV_JSON_T_STRBUF,
         .need = DRV_JSON_REQUIRED,
         .dest = p->name,
         .size = sizeof p->name},
        {.key = "node",
         .type = DRV_JSON_T_STRBUF,
         .need = DRV_JSON_REQUIRED,
         .dest = p->node,
         .size = sizeof p->node},
    };
    drv_err_t rc = drv_json_read_table(obj, path, t, DRV_JSON_TABLE_LEN(t), 0, err);
    if (rc != DRV_OK || (rc = ip_field(ip, path, "ip", &p->ip, err)) != DRV_OK ||
        (rc = name_field(p->ns, drv_name_dns_label, false, path, "namespace", err)) != DRV_OK ||
        (rc = name_field(p->name, drv_name_dns_subdomain, false, path, "name", err)) != DRV_OK ||
        (rc = name_field(p->node, drv_name_dns_subdomain, false, path, "node", err)) != DRV_OK)
        return rc;
    if (!drv_net_cidr_contains(ns->cluster_cidr, p->ip)) {
        char cl[DRV_NET_CIDR_STR];
        drv_net_cidr_format(ns->cluster_cidr, cl);
        return bad(err, path, "ip", "%s is outside network.clusterCIDR (%s)", ip, cl);
    }
    if ((rc = labels_field(obj, path, &p->labels, err)) != DRV_OK)
        return rc;
    return pod_ports(obj, path, &p->ports, err);
}

static drv_err_t parse_pods(const cJSON *net, drv_netstate_t *ns, drv_error_t *err)
{
    const cJSON *arr = NULL;
    size_t n = 0;
    drv_err_t rc = array_field(net, "network", "pods", DRV_NET_PODS_MAX, &arr, &n, err);
    if (rc != DRV_OK)
        return rc;
    if (n > 0 && (ns->pods = calloc(n, sizeof *ns->pods)) == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "network.pods");
    ns->npods = n;
    size_t i = 0;
    for (const cJSON *e = arr ? arr->child : NULL; e != NULL && i < n; e = e->next, i++) {
        char path[PATH_MAX_LEN];
        if ((rc = mkpath(path, "network", "pods", i, err)) != DRV_OK ||
            (rc = parse_pod(e, path, ns, &ns->pods[i], err)) != DRV_OK)
            return rc;
    }
    return DRV_OK;
}

static drv_err_t parse_namespaces(const cJSON *net, drv_netstate_t *ns, drv_error_t *err)
{
    const cJSON *arr = NULL;
    size_t n = 0;
    drv_err_t rc = array_field(net, "network", "namespaces", NAMESPACES_MAX, &arr, &n, err);
    if (rc != DRV_OK)
        return rc;
    if (n > 0 && (ns->namespaces = calloc(n, sizeof *ns->namespaces)) == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "network.namespaces");
    ns->nnamespaces = n;
    size_t i = 0;
    for (const cJSON *e = arr ? arr->child : NULL; e != NULL && i < n; e = e->next, i++) {
        char path[PATH_MAX_LEN];
        drv_net_namespace_t *nsp = &ns->namespaces[i];
        if ((rc = mkpath(path, "network", "namespaces", i, err)) != DRV_OK ||
            (rc = drv_json_read_strbuf(e, path, "name", DRV_JSON_REQUIRED, nsp->name,
                                       sizeof nsp->name, NULL, err)) != DRV_OK ||
            (rc = name_field(nsp->name, drv_name_dns_label, false, path, "name", err)) != DRV_OK ||
            (rc = labels_field(e, path, &nsp->labels, err)) != DRV_OK)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(ns->namespaces[j].name, nsp->name) == 0)
                return bad(err, path, "name", "\"%s\" is also network.namespaces[%zu]", nsp->name,
                           j);
        /* Kubernetes sets this label on every namespace; namespaceSelectors rely on it. */
        cJSON_DeleteItemFromObjectCaseSensitive(nsp->labels, "kubernetes.io/metadata.name");
        if (cJSON_AddStringToObject(nsp->labels, "kubernetes.io/metadata.name", nsp->name) == NULL)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s.labels", path);
    }
    return DRV_OK;
}

static drv_err_t parse_policy(const cJSON *obj, const char *path, drv_net_policy_t *p,
                              drv_error_t *err)
{
    if (!cJSON_IsObject(obj))
        return bad(err, path, NULL, "must be an object");
    if (drv_model_kind(obj) != DRV_KIND_NETWORKPOLICY)
        return bad(err, path, "kind", "must be NetworkPolicy (apiVersion networking.k8s.io/v1)");
    _cleanup_cjson_ cJSON *copy = cJSON_Duplicate(obj, true);
    if (copy == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s", path);
    drv_diags_t diags = {0};
    drv_err_t rc = drv_model_normalize(copy, &diags);
    if (rc != DRV_OK) {
        if (rc == DRV_ERR_INVALID && diags.count > 0)
            bad(err, path, NULL, "%s%s%s", diags.items[0].path,
                diags.items[0].path[0] != '\0' ? ": " : "", diags.items[0].msg);
        else
            drv_error_set(err, rc, 0, "%s: %s", path, drv_strerror(rc));
        drv_diags_free(&diags);
        return rc;
    }
    drv_diags_free(&diags);
    const char *name = drv_json_str_at(copy, "metadata.name");
    const char *nsname = drv_json_str_at(copy, "metadata.namespace");
    if (name == NULL)
        return bad(err, path, "metadata.name", "required");
    if (drv_fmt(p->name, sizeof p->name, "%s", name) != DRV_OK ||
        drv_fmt(p->ns, sizeof p->ns, "%s", nsname ? nsname : "default") != DRV_OK)
        return bad(err, path, "metadata", "name or namespace too long");
    p->object = TAKE_PTR(copy);
    return DRV_OK;
}

static drv_err_t parse_policies(const cJSON *net, drv_netstate_t *ns, drv_error_t *err)
{
    const cJSON *arr = NULL;
    size_t n = 0;
    drv_err_t rc =
        array_field(net, "network", "networkPolicies", DRV_NET_POLICIES_MAX, &arr, &n, err);
    if (rc != DRV_OK)
        return rc;
    if (n > 0 && (ns->policies = calloc(n, sizeof *ns->policies)) == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "network.networkPolicies");
    ns->npolicies = n;
    size_t i = 0;
    for (const cJSON *e = arr ? arr->child : NULL; e != NULL && i < n; e = e->next, i++) {
        char path[PATH_MAX_LEN];
        if ((rc = mkpath(path, "network", "networkPolicies", i, err)) != DRV_OK ||
            (rc = parse_policy(e, path, &ns->policies[i], err)) != DRV_OK)
            return rc;
    }
    return DRV_OK;
}

/* ---- public ---- */

static void netstate_freep(drv_netstate_t *ns)
{
    drv_netstate_free(ns);
}

drv_err_t drv_netstate_parse(const cJSON *network, const char *node, drv_netstate_t *out,
                             drv_error_t *err)
{
    __attribute__((cleanup(netstate_freep))) drv_netstate_t ns = {0};
    memset(out, 0, sizeof *out);
    char why[128];
    if (node == NULL || !drv_name_dns_subdomain(node, why, sizeof why))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "network: node \"%.64s\": %s",
                             node ? node : "", node ? why : "required");
    if (drv_fmt(ns.node, sizeof ns.node, "%s", node) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "network: node name too long");
    if (network == NULL || cJSON_IsNull(network)) {
        memcpy(out->node, ns.node, sizeof out->node);
        return DRV_OK;
    }
    if (!cJSON_IsObject(network))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "network: must be an object");
    drv_err_t rc;
    if ((rc = parse_top(network, &ns, err)) != DRV_OK ||
        (rc = parse_peers(network, &ns, err)) != DRV_OK ||
        (rc = parse_services(network, &ns, err)) != DRV_OK ||
        (rc = parse_pods(network, &ns, err)) != DRV_OK ||
        (rc = parse_namespaces(network, &ns, err)) != DRV_OK ||
        (rc = parse_policies(network, &ns, err)) != DRV_OK)
        return rc;
    ns.present = true;
    *out = ns;
    memset(&ns, 0, sizeof ns);
    return DRV_OK;
}

void drv_netstate_free(drv_netstate_t *ns)
{
    if (ns == NULL)
        return;
    for (size_t i = 0; ns->services && i < ns->nservices; i++) {
        drv_net_service_t *s = &ns->services[i];
        for (size_t j = 0; s->endpoints && j < s->nendpoints; j++)
            free(s->endpoints[j].target_ports);
        free(s->endpoints);
        free(s->ports);
    }
    for (size_t i = 0; ns->pods && i < ns->npods; i++) {
        cJSON_Delete(ns->pods[i].labels);
        cJSON_Delete(ns->pods[i].ports);
    }
    for (size_t i = 0; ns->namespaces && i < ns->nnamespaces; i++)
        cJSON_Delete(ns->namespaces[i].labels);
    for (size_t i = 0; ns->policies && i < ns->npolicies; i++)
        cJSON_Delete(ns->policies[i].object);
    free(ns->peers);
    free(ns->services);
    free(ns->pods);
    free(ns->namespaces);
    free(ns->policies);
    memset(ns, 0, sizeof *ns);
}

const drv_net_service_t *drv_netstate_service(const drv_netstate_t *ns, const char *namesp,
                                              const char *name)
{
    if (ns == NULL || namesp == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < ns->nservices; i++)
        if (strcmp(ns->services[i].ns, namesp) == 0 && strcmp(ns->services[i].name, name) == 0)
            return &ns->services[i];
    return NULL;
}
