/* Address allocation for the pod network: each Node's pod CIDR (a block of the cluster CIDR),
 * each Service's ClusterIP (from the service CIDR) and NodePorts. The store's objects are the
 * record (no table of our own): every decision scans them, so it survives restarts as is. */
#include "ctrl/ctrl_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/ipv4.h"
#include "drover/log.h"
#include "drover/map.h"

/* The refusals said already ("<uid> <message>": pod CIDR refused), so that a round does not
 * repeat the Event and the log line for every node a full range leaves out (a fleet bigger
 * than the range, round after round). Past the maximum it starts over. */
#define WARNED_MAX 131072

struct drv_ctrl_netalloc {
    drv_hstore_t *s;
    drv_ctrl_netcfg_t cfg;
    drv_map_t warned; /* key -> the same strdup'd key, freed with the map */
};

static void warned_clear(drv_ctrl_netalloc_t *na)
{
    size_t it = 0;
    void *k;
    while (drv_map_next(&na->warned, &it, NULL, &k))
        free(k);
    drv_map_free(&na->warned);
    drv_map_init(&na->warned, WARNED_MAX);
}

/* ---- addresses ---- */

/* The configured ranges as prefixes (drv_ctrl_netcfg_t keeps address and length apart). */
static drv_net_cidr_t cluster_of(const drv_ctrl_netcfg_t *cfg)
{
    return (drv_net_cidr_t){cfg->cluster_addr, (uint8_t)cfg->cluster_prefix};
}

static drv_net_cidr_t service_of(const drv_ctrl_netcfg_t *cfg)
{
    return (drv_net_cidr_t){cfg->service_addr, (uint8_t)cfg->service_prefix};
}

drv_err_t drv_ctrl_netcfg_init(drv_ctrl_netcfg_t *cfg, const char *cluster_cidr, int node_mask,
                               const char *service_cidr, drv_error_t *err)
{
    drv_ctrl_netcfg_t c = {0};
    drv_net_cidr_t cl, sv;
    if (!cluster_cidr)
        cluster_cidr = DRV_CTRL_CLUSTER_CIDR_DEFAULT;
    if (!service_cidr)
        service_cidr = DRV_CTRL_SERVICE_CIDR_DEFAULT;
    if (node_mask <= 0)
        node_mask = DRV_CTRL_NODE_MASK_DEFAULT;
    if (drv_net_cidr_parse(cluster_cidr, false, &cl, NULL) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "--cluster-cidr \"%s\": not an IPv4 CIDR such as 10.42.0.0/16 "
                             "(no host bits set)",
                             cluster_cidr);
    if (drv_net_cidr_parse(service_cidr, false, &sv, NULL) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "--service-cidr \"%s\": not an IPv4 CIDR such as 10.43.0.0/16 "
                             "(no host bits set)",
                             service_cidr);
    c.cluster_addr = cl.addr;
    c.cluster_prefix = cl.prefix;
    c.service_addr = sv.addr;
    c.service_prefix = sv.prefix;
    /* At most 2^16 node blocks and 2^20 service addresses, as Kubernetes allows: the
     * allocators keep one byte (or bit) per candidate. */
    if (node_mask > 30 || (unsigned)node_mask < c.cluster_prefix ||
        (unsigned)node_mask - c.cluster_prefix > 16)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "--node-cidr-mask-size %d: must be from the cluster CIDR's prefix "
                             "(/%u) to 16 more, and at most 30",
                             node_mask, c.cluster_prefix);
    if (c.service_prefix < 12 || c.service_prefix > 28)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "--service-cidr \"%s\": the prefix must be from /12 to /28",
                             service_cidr);
    if (drv_net_cidr_overlaps(cl, sv))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "--service-cidr %s overlaps --cluster-cidr %s", service_cidr,
                             cluster_cidr);
    c.node_mask = (unsigned)node_mask;
    *cfg = c;
    return DRV_OK;
}

void drv_ctrl_netcfg_format(const drv_ctrl_netcfg_t *cfg, char cluster[19], char service[19])
{
    drv_net_cidr_format(cluster_of(cfg), cluster);
    drv_net_cidr_format(service_of(cfg), service);
}

drv_err_t drv_ctrl_netalloc_new(drv_hstore_t *s, const drv_ctrl_netcfg_t *cfg,
                                drv_ctrl_netalloc_t **out, drv_error_t *err)
{
    drv_ctrl_netalloc_t *na = calloc(1, sizeof(*na));
    if (!na)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "address allocator");
    na->s = s;
    na->cfg = *cfg;
    drv_map_init(&na->warned, WARNED_MAX);
    *out = na;
    return DRV_OK;
}

void drv_ctrl_netalloc_free(drv_ctrl_netalloc_t *na)
{
    if (!na)
        return;
    warned_clear(na);
    drv_map_free(&na->warned);
    free(na);
}

/* A refusal naming field (copied to field, fieldsz bytes). */
__attribute__((format(printf, 5, 6))) static drv_err_t
refuse(char *field, size_t fieldsz, const char *path, drv_error_t *err, const char *fmt, ...)
{
    char msg[DRV_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    drv_vfmt_cut(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (field && fieldsz)
        drv_fmt_cut(field, fieldsz, "%s", path);
    return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: %s", path, msg);
}

static bool same_object(const cJSON *a, const cJSON *b)
{
    return !strcmp(ctrl_meta(a, "namespace"), ctrl_meta(b, "namespace")) &&
           !strcmp(ctrl_meta(a, "name"), ctrl_meta(b, "name"));
}

/* ---- Services ---- */

static bool svc_has_cluster_ip(const char *type)
{
    return strcmp(type, "ExternalName") != 0;
}

static bool svc_has_node_ports(const char *type)
{
    return !strcmp(type, "NodePort") || !strcmp(type, "LoadBalancer");
}

static bool set_str_list(cJSON *spec, const char *key, const char *v)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr || !cJSON_AddItemToArray(arr, cJSON_CreateString(v))) {
        cJSON_Delete(arr);
        return false;
    }
    return ctrl_set(spec, key, arr);
}

/* What other Services hold: used[i] for service address offset i, ports[p - MIN]. */
typedef struct svc_used {
    unsigned char *ips; /* one per address of the service CIDR */
    size_t nips;
    unsigned char ports[DRV_CTRL_NODEPORT_MAX - DRV_CTRL_NODEPORT_MIN + 1];
} svc_used_t;

static drv_err_t svc_used_fill(const drv_ctrl_netcfg_t *cfg, const cJSON *all, const cJSON *self,
                               svc_used_t *u, drv_error_t *err)
{
    u->nips = (size_t)1 << (32 - cfg->service_prefix);
    u->ips = calloc(u->nips, 1);
    if (!u->ips)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "service addresses");
    memset(u->ports, 0, sizeof(u->ports));
    u->ips[0] = u->ips[u->nips - 1] = 1; /* network and broadcast addresses */
    u->ips[1] = 1;                       /* the kubernetes Service's */
    if (u->nips > 10)
        u->ips[10] = 1; /* cluster DNS, which each agent answers */
    const cJSON *o;
    cJSON_ArrayForEach(o, all)
    {
        if (self && same_object(o, self))
            continue;
        const cJSON *spec = drv_json_get(o, "spec");
        uint32_t ip;
        if (drv_net_ip_parse(drv_json_str(spec, "clusterIP"), &ip) &&
            drv_net_cidr_contains(service_of(cfg), ip))
            u->ips[ip - cfg->service_addr] = 1;
        const cJSON *p;
        cJSON_ArrayForEach(p, drv_json_get(spec, "ports"))
        {
            int64_t np = ctrl_int(p, "nodePort", 0);
            if (np >= DRV_CTRL_NODEPORT_MIN && np <= DRV_CTRL_NODEPORT_MAX)
                u->ports[np - DRV_CTRL_NODEPORT_MIN] = 1;
        }
    }
    return DRV_OK;
}

/* The old port (of old's spec.ports) that p continues: same name, else same port+protocol. */
static const cJSON *old_port(const cJSON *old, const cJSON *p)
{
    const cJSON *q;
    const char *name = drv_json_str(p, "name"), *proto = drv_json_str_or(p, "protocol", "TCP");
    cJSON_ArrayForEach(q, drv_json_get(drv_json_get(old, "spec"), "ports"))
    {
        const char *qn = drv_json_str(q, "name");
        if (name && *name && qn && !strcmp(qn, name))
            return q;
        if ((!name || !*name) && ctrl_int(q, "port", -1) == ctrl_int(p, "port", -2) &&
            !strcmp(drv_json_str_or(q, "protocol", "TCP"), proto))
            return q;
    }
    return NULL;
}

/* Fills in svc's clusterIP(s) and nodePorts against the other Services (all, may include svc),
 * keeping what old (the stored version; NULL on create) had. */
static drv_err_t svc_alloc(const drv_ctrl_netcfg_t *cfg, const cJSON *all, const cJSON *old,
                           cJSON *svc, char *field, size_t fieldsz, drv_error_t *err)
{
    cJSON *spec = (cJSON *)drv_json_get(svc, "spec");
    if (!cJSON_IsObject(spec))
        return DRV_OK; /* the model refuses it */
    const cJSON *ospec = drv_json_get(old, "spec");
    const char *type = drv_json_str_or(spec, "type", "ClusterIP");
    svc_used_t u = {0};
    drv_err_t r = svc_used_fill(cfg, all, svc, &u, err);
    if (r != DRV_OK)
        return r;
    char ipbuf[DRV_NET_IP_STR], cidr[DRV_NET_CIDR_STR];
    drv_net_cidr_format(service_of(cfg), cidr);
    if (svc_has_cluster_ip(type)) {
        const char *cip = drv_json_str(spec, "clusterIP");
        const char *ocip = drv_json_str(ospec, "clusterIP");
        if ((!cip || !*cip) && ocip && *ocip) {
            /* An update that does not name it (a PUT of the manifest) keeps it. */
            cip = ocip;
            if (!ctrl_set(spec, "clusterIP", cJSON_CreateString(ocip)))
                r = drv_error_set(err, DRV_ERR_NOMEM, 0, "clusterIP");
        } else if (cip && ocip && *ocip && strcmp(cip, ocip)) {
            r = refuse(field, fieldsz, "spec.clusterIP", err,
                       "Invalid value: \"%.64s\": field is immutable", cip);
        }
        uint32_t ip = 0;
        if (r != DRV_OK) {
        } else if (cip && !strcmp(cip, "None")) {
            if (!set_str_list(spec, "clusterIPs", "None"))
                r = drv_error_set(err, DRV_ERR_NOMEM, 0, "clusterIPs");
        } else if (cip && *cip && !(ocip && !strcmp(cip, ocip))) {
            if (!drv_net_ip_parse(cip, &ip))
                r = refuse(field, fieldsz, "spec.clusterIP", err,
                           "Invalid value: \"%.64s\": must be a valid IPv4 address or \"None\"",
                           cip);
            else if (!drv_net_cidr_contains(service_of(cfg), ip))
                r = refuse(field, fieldsz, "spec.clusterIP", err,
                           "Invalid value: \"%s\": provided IP is not in the valid range. The "
                           "range of valid IPs is %s",
                           cip, cidr);
            else if (u.ips[ip - cfg->service_addr])
                r = refuse(field, fieldsz, "spec.clusterIP", err,
                           "Invalid value: \"%s\": provided IP is already allocated or reserved",
                           cip);
        } else if (!cip || !*cip) {
            size_t i = 2;
            while (i < u.nips && u.ips[i])
                i++;
            if (i >= u.nips)
                r = refuse(field, fieldsz, "spec.clusterIP", err,
                           "Internal error: failed to allocate a serviceIP: range is full (%s)",
                           cidr);
            else
                ip = cfg->service_addr + (uint32_t)i;
            drv_net_ip_format(ip, ipbuf);
            if (r == DRV_OK && !ctrl_set(spec, "clusterIP", cJSON_CreateString(ipbuf)))
                r = drv_error_set(err, DRV_ERR_NOMEM, 0, "clusterIP");
        }
        const char *now = drv_json_str(spec, "clusterIP");
        if (r == DRV_OK && now && strcmp(now, "None") && !set_str_list(spec, "clusterIPs", now))
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "clusterIPs");
    }
    cJSON *p;
    size_t i = 0;
    cJSON_ArrayForEach(
        p, (r == DRV_OK && svc_has_node_ports(type) ? drv_json_get(spec, "ports") : NULL))
    {
        char path[48];
        drv_fmt_cut(path, sizeof(path), "spec.ports[%zu].nodePort", i++);
        int64_t np = ctrl_int(p, "nodePort", 0);
        int64_t onp = ctrl_int(old_port(old, p), "nodePort", 0);
        if (np == 0 && onp > 0)
            np = onp; /* kept across updates that do not name it */
        else if (np && np != onp) {
            if (np < DRV_CTRL_NODEPORT_MIN || np > DRV_CTRL_NODEPORT_MAX) {
                r = refuse(field, fieldsz, path, err,
                           "Invalid value: %lld: provided port is not in the valid range. The "
                           "range of valid ports is %d-%d",
                           (long long)np, DRV_CTRL_NODEPORT_MIN, DRV_CTRL_NODEPORT_MAX);
                break;
            }
            if (u.ports[np - DRV_CTRL_NODEPORT_MIN]) {
                r = refuse(field, fieldsz, path, err,
                           "Invalid value: %lld: provided port is already allocated",
                           (long long)np);
                break;
            }
        } else if (np == 0) {
            int64_t k = 0;
            while (k <= DRV_CTRL_NODEPORT_MAX - DRV_CTRL_NODEPORT_MIN && u.ports[k])
                k++;
            if (k > DRV_CTRL_NODEPORT_MAX - DRV_CTRL_NODEPORT_MIN) {
                r = refuse(field, fieldsz, path, err,
                           "Internal error: failed to allocate a nodePort: range is full");
                break;
            }
            np = DRV_CTRL_NODEPORT_MIN + k;
        }
        if (np >= DRV_CTRL_NODEPORT_MIN && np <= DRV_CTRL_NODEPORT_MAX)
            u.ports[np - DRV_CTRL_NODEPORT_MIN] = 1; /* two ports of one Service differ */
        if (!ctrl_set(p, "nodePort", cJSON_CreateNumber((double)np))) {
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "nodePort");
            break;
        }
    }
    free(u.ips);
    return r;
}

/* ---- Nodes ---- */

/* A node's pod CIDR, if it is a well-formed block inside the cluster CIDR: the range of node
 * blocks it covers [*first, *last]. */
static bool node_blocks(const drv_ctrl_netcfg_t *cfg, const char *cidr, size_t *first, size_t *last)
{
    drv_net_cidr_t c;
    if (drv_net_cidr_parse(cidr, false, &c, NULL) != DRV_OK ||
        !drv_net_cidr_covers(cluster_of(cfg), c))
        return false;
    unsigned shift = 32 - cfg->node_mask;
    *first = (c.addr - cfg->cluster_addr) >> shift;
    uint32_t end = c.addr | ~drv_net_prefix_mask(c.prefix);
    *last = (end - cfg->cluster_addr) >> shift;
    return true;
}

/* Why node's podCIDR cannot be kept (NULL if it can), against used (one byte per block). */
static const char *node_cidr_problem(const drv_ctrl_netcfg_t *cfg, const char *cidr,
                                     const unsigned char *used, char *why, size_t whysz)
{
    size_t first, last;
    char cl[DRV_NET_CIDR_STR];
    drv_net_cidr_format(cluster_of(cfg), cl);
    drv_net_cidr_t c;
    if (drv_net_cidr_parse(cidr, false, &c, NULL) != DRV_OK) {
        drv_fmt_cut(why, whysz, "Invalid value: \"%.64s\": must be an IPv4 CIDR such as %s", cidr,
                    "10.42.1.0/24");
        return why;
    }
    if (!node_blocks(cfg, cidr, &first, &last)) {
        drv_fmt_cut(why, whysz, "Invalid value: \"%s\": not inside the cluster CIDR %s", cidr, cl);
        return why;
    }
    for (size_t b = first; used && b <= last; b++)
        if (used[b]) {
            drv_fmt_cut(why, whysz, "Invalid value: \"%s\": overlaps another Node's pod CIDR",
                        cidr);
            return why;
        }
    return NULL;
}

static int node_cmp(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    int c = strcmp(ctrl_meta(x, "creationTimestamp"), ctrl_meta(y, "creationTimestamp"));
    return c ? c : strcmp(ctrl_meta(x, "name"), ctrl_meta(y, "name"));
}

static bool set_pod_cidr(cJSON *node, const char *cidr)
{
    cJSON *spec = (cJSON *)drv_json_get(node, "spec");
    if (!cJSON_IsObject(spec)) {
        spec = cJSON_CreateObject();
        if (!ctrl_set(node, "spec", spec))
            return false;
    }
    return ctrl_set(spec, "podCIDR", cJSON_CreateString(cidr)) &&
           set_str_list(spec, "podCIDRs", cidr);
}

/* Says (once per node and message, while the hub runs) why a node's pod CIDR is refused. */
static void node_warn(drv_ctrl_netalloc_t *na, const cJSON *node, const char *reason,
                      const char *msg, int64_t now_ms)
{
    char key[400];
    drv_fmt_cut(key, sizeof(key), "%s %s", ctrl_meta(node, "uid"), msg);
    if (drv_map_get(&na->warned, key))
        return;
    if (na->warned.n >= WARNED_MAX)
        warned_clear(na);
    char *k = strdup(key);
    if (k && drv_map_put(&na->warned, k, k) != DRV_OK)
        free(k);
    ctrl_event(na->s, node, DRV_KIND_NODE, "Warning", reason, msg, "drover-ipam", now_ms);
    drv_log_warn("pod CIDR", "node=%s error=\"%s\"", ctrl_meta(node, "name"), msg);
}

static drv_err_t nodes_alloc(drv_ctrl_netalloc_t *na, int64_t now_ms, drv_error_t *err)
{
    const drv_ctrl_netcfg_t *cfg = &na->cfg;
    _cleanup_cjson_ cJSON *nodes = NULL;
    drv_err_t r = drv_hstore_list(na->s, DRV_KIND_NODE, NULL, NULL, &nodes, NULL, err);
    if (r != DRV_OK)
        return r;
    size_t n = (size_t)cJSON_GetArraySize(nodes),
           nblocks = (size_t)1 << (cfg->node_mask - cfg->cluster_prefix);
    if (!n)
        return DRV_OK;
    _cleanup_free_ cJSON **order = calloc(n, sizeof(*order));
    _cleanup_free_ unsigned char *used = calloc(nblocks, 1);
    _cleanup_free_ unsigned char *ok = calloc(n, 1);
    if (!order || !used || !ok)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "pod CIDRs");
    size_t i = 0;
    for (cJSON *nd = nodes->child; nd; nd = nd->next)
        order[i++] = nd;
    /* The oldest node keeps a contested block. */
    qsort(order, n, sizeof(*order), node_cmp);
    for (i = 0; i < n; i++) {
        const char *cidr = drv_json_str(drv_json_get(order[i], "spec"), "podCIDR");
        if (!cidr || !*cidr)
            continue;
        char why[300];
        if (node_cidr_problem(cfg, cidr, used, why, sizeof(why))) {
            char msg[400];
            drv_fmt_cut(msg, sizeof(msg), "spec.podCIDR: %s", why);
            node_warn(na, order[i], "CIDRAssignmentFailed", msg, now_ms);
            continue;
        }
        size_t first, last;
        (void)node_blocks(cfg, cidr, &first, &last);
        for (size_t b = first; b <= last; b++)
            used[b] = 1;
        ok[i] = 1;
    }
    size_t next = 0;
    for (i = 0; i < n && r == DRV_OK; i++) {
        const cJSON *spec = drv_json_get(order[i], "spec");
        const char *cidr = drv_json_str(spec, "podCIDR");
        const cJSON *list = drv_json_get(spec, "podCIDRs");
        if (cidr && *cidr && ok[i] &&
            !(cJSON_GetArraySize(list) == 1 && cJSON_IsString(list->child) &&
              !strcmp(list->child->valuestring, cidr))) {
            /* A kept one (set by hand) gets its podCIDRs as Kubernetes shows both. */
            _cleanup_free_ char *keep = strdup(cidr);
            drv_error_t e = DRV_ERROR_INIT;
            if (!keep || !set_pod_cidr(order[i], keep))
                return drv_error_set(err, DRV_ERR_NOMEM, 0, "pod CIDR");
            drv_err_t ur = drv_hstore_update(na->s, DRV_KIND_NODE, order[i], &e);
            if (ur != DRV_OK && ur != DRV_ERR_NOTFOUND && ur != DRV_ERR_CONFLICT)
                r = drv_error_set(err, ur, e.sys_errno, "node %s: %s", ctrl_meta(order[i], "name"),
                                  drv_error_msg(&e));
            continue;
        }
        if (cidr && *cidr)
            continue;
        while (next < nblocks && used[next])
            next++;
        if (next >= nblocks) {
            char msg[200], cl[DRV_NET_CIDR_STR];
            drv_net_cidr_format(cluster_of(cfg), cl);
            drv_fmt_cut(msg, sizeof(msg),
                        "spec.podCIDR: no free /%u block left in the cluster CIDR %s",
                        cfg->node_mask, cl);
            node_warn(na, order[i], "CIDRNotAvailable", msg, now_ms);
            continue;
        }
        char block[DRV_NET_CIDR_STR];
        drv_net_cidr_format(
            (drv_net_cidr_t){cfg->cluster_addr + (uint32_t)(next << (32 - cfg->node_mask)),
                             (uint8_t)cfg->node_mask},
            block);
        used[next] = 1;
        if (!set_pod_cidr(order[i], block))
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "pod CIDR");
        drv_error_t e = DRV_ERROR_INIT;
        drv_err_t ur = drv_hstore_update(na->s, DRV_KIND_NODE, order[i], &e);
        if (ur == DRV_ERR_NOTFOUND || ur == DRV_ERR_CONFLICT)
            continue; /* changed since listed: the next round */
        if (ur != DRV_OK)
            r = drv_error_set(err, ur, e.sys_errno, "node %s: pod CIDR %s: %s",
                              ctrl_meta(order[i], "name"), block, drv_error_msg(&e));
        else
            drv_log_info("pod CIDR assigned", "node=%s podCIDR=%s", ctrl_meta(order[i], "name"),
                         block);
    }
    return r;
}

/* A Node written through the API: its pod CIDR may be set once, inside the cluster CIDR and
 * free, and never changed. */
static drv_err_t node_admit(drv_ctrl_netalloc_t *na, const cJSON *old, cJSON *node, char *field,
                            size_t fieldsz, drv_error_t *err)
{
    cJSON *spec = (cJSON *)drv_json_get(node, "spec");
    const char *cidr = drv_json_str(spec, "podCIDR");
    const char *ocidr = drv_json_str(drv_json_get(old, "spec"), "podCIDR");
    if (ocidr && *ocidr) {
        if (!cidr || !*cidr)
            return set_pod_cidr(node, ocidr) ? DRV_OK
                                             : drv_error_set(err, DRV_ERR_NOMEM, 0, "podCIDR");
        if (strcmp(cidr, ocidr))
            return refuse(field, fieldsz, "spec.podCIDR", err,
                          "Forbidden: node updates may not change podCIDR except from \"\" to "
                          "valid");
        return set_pod_cidr(node, ocidr) ? DRV_OK : drv_error_set(err, DRV_ERR_NOMEM, 0, "podCIDR");
    }
    if (!cidr || !*cidr)
        return DRV_OK; /* the controller picks one */
    _cleanup_cjson_ cJSON *nodes = NULL;
    drv_err_t r = drv_hstore_list(na->s, DRV_KIND_NODE, NULL, NULL, &nodes, NULL, err);
    if (r != DRV_OK)
        return r;
    size_t nblocks = (size_t)1 << (na->cfg.node_mask - na->cfg.cluster_prefix), first, last;
    _cleanup_free_ unsigned char *used = calloc(nblocks, 1);
    if (!used)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "pod CIDRs");
    const cJSON *o;
    cJSON_ArrayForEach(o, nodes)
    {
        const char *oc = drv_json_str(drv_json_get(o, "spec"), "podCIDR");
        if (!same_object(o, node) && node_blocks(&na->cfg, oc, &first, &last))
            for (size_t b = first; b <= last; b++)
                used[b] = 1;
    }
    char why[300];
    if (node_cidr_problem(&na->cfg, cidr, used, why, sizeof(why)))
        return refuse(field, fieldsz, "spec.podCIDR", err, "%s", why);
    return set_pod_cidr(node, cidr) ? DRV_OK : drv_error_set(err, DRV_ERR_NOMEM, 0, "podCIDR");
}

/* ---- entry points ---- */

drv_err_t drv_ctrl_netalloc_admit(void *ctx, drv_kind_t kind, bool create, cJSON *obj, char *field,
                                  size_t fieldsz, drv_error_t *err)
{
    drv_ctrl_netalloc_t *na = ctx;
    if (field && fieldsz)
        field[0] = '\0';
    if (!na || (kind != DRV_KIND_SERVICE && kind != DRV_KIND_NODE))
        return DRV_OK;
    _cleanup_cjson_ cJSON *old = NULL;
    if (!create) {
        drv_error_t e = DRV_ERROR_INIT;
        drv_err_t gr = drv_hstore_get(na->s, kind, ctrl_meta(obj, "namespace"),
                                      ctrl_meta(obj, "name"), &old, &e);
        if (gr != DRV_OK && gr != DRV_ERR_NOTFOUND)
            return drv_error_set(err, gr, e.sys_errno, "%s", drv_error_msg(&e));
    }
    if (kind == DRV_KIND_NODE)
        return node_admit(na, old, obj, field, fieldsz, err);
    _cleanup_cjson_ cJSON *all = NULL;
    drv_err_t r = drv_hstore_list(na->s, DRV_KIND_SERVICE, NULL, NULL, &all, NULL, err);
    if (r != DRV_OK)
        return r;
    return svc_alloc(&na->cfg, all, old, obj, field, fieldsz, err);
}

/* Services stored without addresses (created before this hub allocated them, or by something
 * other than the API) get them. */
static drv_err_t services_alloc(drv_ctrl_netalloc_t *na, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *all = NULL;
    drv_err_t r = drv_hstore_list(na->s, DRV_KIND_SERVICE, NULL, NULL, &all, NULL, err);
    if (r != DRV_OK)
        return r;
    cJSON *svc;
    cJSON_ArrayForEach(svc, all)
    {
        const cJSON *spec = drv_json_get(svc, "spec");
        const char *type = drv_json_str_or(spec, "type", "ClusterIP");
        const char *cip = drv_json_str(spec, "clusterIP");
        bool need = svc_has_cluster_ip(type) && (!cip || !*cip);
        const cJSON *p;
        cJSON_ArrayForEach(p, (svc_has_node_ports(type) ? drv_json_get(spec, "ports") : NULL))
        {
            if (ctrl_int(p, "nodePort", 0) == 0)
                need = true;
        }
        if (!need)
            continue;
        /* Allocated in place in all, so that the next ones see what this one got. */
        _cleanup_cjson_ cJSON *was = cJSON_Duplicate(svc, true);
        if (!was)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "service");
        char field[64];
        drv_error_t e = DRV_ERROR_INIT;
        drv_err_t ar = svc_alloc(&na->cfg, all, was, svc, field, sizeof(field), &e);
        if (ar == DRV_ERR_INVALID) {
            drv_log_warn("service addresses", "service=%s/%s error=\"%s\"",
                         ctrl_meta(svc, "namespace"), ctrl_meta(svc, "name"), drv_error_msg(&e));
            continue;
        }
        if (ar != DRV_OK)
            return drv_error_set(err, ar, e.sys_errno, "%s", drv_error_msg(&e));
        _cleanup_cjson_ cJSON *upd = cJSON_Duplicate(svc, true);
        if (!upd)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "service");
        cJSON_DeleteItemFromObjectCaseSensitive(upd, "status");
        ar = drv_hstore_update(na->s, DRV_KIND_SERVICE, upd, &e);
        if (ar == DRV_ERR_NOTFOUND || ar == DRV_ERR_CONFLICT)
            continue;
        if (ar != DRV_OK)
            return drv_error_set(err, ar, e.sys_errno, "service %s/%s: %s",
                                 ctrl_meta(svc, "namespace"), ctrl_meta(svc, "name"),
                                 drv_error_msg(&e));
    }
    return DRV_OK;
}

drv_err_t drv_ctrl_netalloc_reconcile(drv_ctrl_netalloc_t *na, int64_t now_ms, drv_error_t *err)
{
    drv_error_t e1 = DRV_ERROR_INIT, e2 = DRV_ERROR_INIT;
    drv_err_t r1 = nodes_alloc(na, now_ms, &e1);
    drv_err_t r2 = services_alloc(na, &e2);
    if (r1 != DRV_OK)
        return drv_error_set(err, r1, e1.sys_errno, "pod CIDRs: %s", drv_error_msg(&e1));
    if (r2 != DRV_OK)
        return drv_error_set(err, r2, e2.sys_errno, "service addresses: %s", drv_error_msg(&e2));
    return DRV_OK;
}
