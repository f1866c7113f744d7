/* The node's part of the cluster network: the glue between the desired state's network
 * section, the pods the supervisor runs, and net/wg, net/nft and net/dns (pod/network.h). */
#include "pod/network.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/log.h"
#include "net/dns.h"
#include "net/nft.h"
#include "net/wg.h"
#include "proc/proc.h"

#define HANDSHAKE_PERIOD_MS 10000
#define NFT_SCRIPT_CAP (64u << 20)
#define MAX_NODE_IPS 16

static void wg_opts(const pod_net_t *n, drv_wg_opts_t *o, char *identity, size_t isz)
{
    *o = (drv_wg_opts_t){0};
    o->ifname = n->cfg->wg_interface;
    if (drv_fmt(identity, isz, "%s/identity", n->cfg->state_dir) == DRV_OK)
        o->identity_dir = identity;
    o->run_dir = n->cfg->run_dir;
    if (n->cfg->wg_tool_dir[0])
        o->tool_path = n->cfg->wg_tool_dir;
    /* Keep-alives toward every peer, NAT or not: besides keeping a NAT's mappings open they
     * keep every tunnel's handshake young, and a handshake younger than 180 s is how this node
     * tells a live peer from a cut-off one (its endpoints are left out while another is
     * usable), even while the hub is away. 25 s: one small packet per peer. */
    o->behind_nat = true;
}

drv_err_t pod_net_init(pod_net_t *n, const drv_agent_config_t *cfg, drv_error_t *err)
{
    *n = (pod_net_t){.cfg = cfg, .enabled = cfg->cluster_network};
    (void)err;
    if (!n->enabled)
        return DRV_OK;
    /* The key is made on the device at its first start and never leaves it; its public half
     * goes to the hub in the status reports. A failure is reported, not fatal: the pods that
     * need no other device still run. */
    char identity[300];
    drv_error_t kerr = DRV_ERROR_INIT;
    if (drv_fmt(identity, sizeof(identity), "%s/identity", cfg->state_dir) != DRV_OK ||
        drv_file_mkdir_p(identity, 0700, &kerr) != DRV_OK ||
        drv_wg_key_load_or_create(identity, n->public_key, &kerr) != DRV_OK) {
        drv_fmt_cut(n->key_error, sizeof(n->key_error), "WireGuard key: %s", drv_error_msg(&kerr));
        drv_log_error("cannot make the node's WireGuard key", "error=\"%s\"", n->key_error);
        n->public_key[0] = '\0';
    }
    return DRV_OK;
}

void pod_net_fini(pod_net_t *n)
{
    drv_dns_close(n->dns);
    drv_netstate_free(&n->ns);
    free(n->section);
    free(n->recent);
    *n = (pod_net_t){0};
}

bool pod_net_set(pod_net_t *n, const cJSON *network, drv_cni_config_t *cni)
{
    if (!n->enabled)
        return false;
    _cleanup_free_ char *text = network ? cJSON_PrintUnformatted(network) : NULL;
    if (network && !text)
        return false;
    if ((!text && !n->section) || (text && n->section && !strcmp(text, n->section)))
        return false;
    drv_netstate_t ns = {0};
    drv_error_t err = DRV_ERROR_INIT;
    if (network && drv_netstate_parse(network, n->cfg->node_name, &ns, &err) != DRV_OK) {
        drv_log_error("the hub's network section is refused; keeping the last one", "error=\"%s\"",
                      drv_error_msg(&err));
        return false;
    }
    drv_netstate_free(&n->ns);
    n->ns = ns;
    free(n->section);
    n->section = TAKE_PTR(text);
    free(n->recent);
    n->recent = NULL;
    n->nrecent = 0;
    n->wg_dirty = n->nft_dirty = n->status_dirty = true;
    if (n->ns.present) {
        drv_net_cidr_format(n->ns.pod_cidr, n->subnet);
        uint32_t gw = 0;
        if (drv_net_cidr_nth(n->ns.pod_cidr, 1, &gw))
            drv_net_ip_format(gw, n->gateway);
        cni->subnet = n->subnet;
        cni->mtu = n->ns.mtu;
        cni->no_ip_masq = true;
        drv_log_info("cluster network", "pod_cidr=%s peers=%zu services=%zu policies=%zu",
                     n->subnet, n->ns.npeers, n->ns.nservices, n->ns.npolicies);
    } else {
        /* The hub sends no section any more: what the last one set up goes, so that no stale
         * Service or policy stays in force. */
        drv_error_t e = DRV_ERROR_INIT;
        drv_wg_opts_t o;
        char identity[300];
        wg_opts(n, &o, identity, sizeof(identity));
        if (n->nft_ok && drv_nft_remove(&e) != DRV_OK)
            drv_log_warn("cannot remove the nftables table", "error=\"%s\"", drv_error_msg(&e));
        if (n->wg_ok && drv_wg_remove(&o, &e) != DRV_OK)
            drv_log_warn("cannot remove the WireGuard interface", "error=\"%s\"",
                         drv_error_msg(&e));
        drv_dns_close(n->dns);
        n->dns = NULL;
        n->wg_ok = n->nft_ok = n->dns_ok = false;
        n->script_hash = 0;
        n->subnet[0] = n->gateway[0] = '\0';
        cni->subnet = n->cfg->pod_subnet;
        cni->mtu = 0;
        cni->no_ip_masq = false;
        drv_log_info("no cluster network any more: mesh, table and DNS removed", NULL);
    }
    return true;
}

#define FNV_START 1469598103934665603ULL

/* FNV-1a: h with the len bytes of data folded in. */
static unsigned long long fnv(unsigned long long h, const void *data, size_t len)
{
    for (size_t i = 0; i < len; i++)
        h = (h ^ ((const unsigned char *)data)[i]) * 1099511628211ULL;
    return h;
}

/* A hash of the local pods' addresses, names and labels: whether the table must be rendered
 * again. */
static unsigned long long local_hash(pod_t *const *pods, size_t npods)
{
    unsigned long long h = FNV_START;
    for (size_t i = 0; i < npods; i++) {
        const pod_t *p = pods[i];
        if (!p->pod_ip[0])
            continue;
        _cleanup_free_ char *labels = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(p->obj, "metadata"), "labels"));
        const char *parts[] = {p->pod_ip, p->ns, p->name, labels ? labels : ""};
        for (size_t k = 0; k < 4; k++) {
            h = fnv(h, parts[k], strlen(parts[k]));
            h = fnv(h, "\xff", 1); /* a separator no text holds */
        }
    }
    return h;
}

/* The node's own IPv4 addresses but the pods' bridge and the tunnel. */
static size_t node_ips(const pod_net_t *n, const char *bridge, uint32_t *out, size_t max)
{
    struct ifaddrs *ifa = NULL;
    size_t k = 0;
    if (getifaddrs(&ifa) != 0)
        return 0;
    for (struct ifaddrs *i = ifa; i && k < max; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK) ||
            (bridge && !strcmp(i->ifa_name, bridge)) || !strcmp(i->ifa_name, n->cfg->wg_interface))
            continue;
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)i->ifa_addr;
        out[k++] = ntohl(sin->sin_addr.s_addr);
    }
    freeifaddrs(ifa);
    return k;
}

static void read_handshakes(pod_net_t *n)
{
    drv_wg_opts_t o;
    char identity[300];
    wg_opts(n, &o, identity, sizeof(identity));
    drv_wg_peer_stat_t *st = NULL;
    size_t nst = 0;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_wg_handshakes(&o, &st, &nst, &err) != DRV_OK) {
        drv_log_debug("cannot read WireGuard handshakes", "error=\"%s\"", drv_error_msg(&err));
        return;
    }
    if (!n->recent || n->nrecent != n->ns.npeers) {
        free(n->recent);
        n->recent = calloc(n->ns.npeers ? n->ns.npeers : 1, sizeof(bool));
        n->nrecent = n->recent ? n->ns.npeers : 0;
        /* Until the first reading every peer counts as healthy. */
        for (size_t i = 0; i < n->nrecent; i++)
            n->recent[i] = true;
    }
    long long now_s = (long long)time(NULL);
    for (size_t i = 0; i < n->nrecent; i++) {
        bool recent = false;
        for (size_t j = 0; j < nst; j++) {
            if (strcmp(st[j].public_key, n->ns.peers[i].public_key))
                continue;
            long long age = drv_wg_handshake_age(&st[j], now_s);
            recent = age >= 0 && age <= POD_NET_HANDSHAKE_RECENT_S;
        }
        if (recent != n->recent[i]) {
            drv_log_info(recent ? "peer reachable" : "peer has no recent handshake", "peer=%s",
                         n->ns.peers[i].node);
            n->recent[i] = recent;
            n->nft_dirty = true;
        }
    }
    free(st);
}

static void sync_wg(pod_net_t *n)
{
    drv_wg_opts_t o;
    char identity[300];
    wg_opts(n, &o, identity, sizeof(identity));
    drv_wg_state_t st = {0};
    drv_error_t err = DRV_ERROR_INIT;
    bool was = n->wg_ok;
    if (drv_wg_apply(&o, &n->ns, &st, &err) != DRV_OK) {
        n->wg_ok = false;
        drv_fmt_cut(n->wg_error, sizeof(n->wg_error), "%s", drv_error_msg(&err));
        drv_log_error("cannot set up the WireGuard mesh; other devices' pods are unreachable "
                      "(never in clear)",
                      "error=\"%s\"", n->wg_error);
    } else {
        n->wg_ok = true;
        n->wg_error[0] = '\0';
        drv_fmt_cut(n->wg_impl, sizeof(n->wg_impl), "%s", drv_wg_impl_name(st.impl));
        n->wg_dirty = false;
        drv_log_info("WireGuard mesh", "interface=%s impl=%s peers=%zu routes=%zu",
                     n->cfg->wg_interface, n->wg_impl, st.npeers, st.nroutes);
    }
    if (was != n->wg_ok)
        n->status_dirty = true;
}

static void sync_dns(pod_net_t *n)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (n->dns && strcmp(n->dns_bound, n->gateway)) {
        drv_dns_close(n->dns);
        n->dns = NULL;
    }
    if (!n->dns) {
        drv_dns_opts_t o = {.cluster_domain = n->ns.cluster_domain};
        if (drv_dns_open(n->gateway, 53, &o, &n->dns, &err) != DRV_OK) {
            n->dns_ok = false;
            drv_fmt_cut(n->dns_error, sizeof(n->dns_error), "DNS on %s:53: %s", n->gateway,
                        drv_error_msg(&err));
            drv_log_error("cannot serve DNS", "error=\"%s\"", n->dns_error);
            return;
        }
        drv_fmt_cut(n->dns_bound, sizeof(n->dns_bound), "%s", n->gateway);
    }
    if (drv_dns_update(n->dns, &n->ns, &err) != DRV_OK) {
        n->dns_ok = false;
        drv_fmt_cut(n->dns_error, sizeof(n->dns_error), "DNS records: %s", drv_error_msg(&err));
        drv_log_error("cannot update DNS records", "error=\"%s\"", n->dns_error);
        return;
    }
    n->dns_ok = true;
    n->dns_error[0] = '\0';
}

/* Whether traffic between two pods on the bridge passes the inet forward hook (br_netfilter,
 * bridge-nf-call-iptables = 1): without it NetworkPolicy would not see same-device traffic.
 * Switched on when the module is there; false, with why, when it cannot be. */
static bool bridge_filtering(char *why, size_t whysz)
{
    static const char *const path = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if (drv_file_read_capped(path, 64, &text, &len, NULL) != DRV_OK) {
        drv_fmt_cut(why, whysz,
                    "the br_netfilter kernel module is not loaded (no %s): NetworkPolicy cannot "
                    "see traffic between pods of this device (load it: modprobe br_netfilter)",
                    path);
        return false;
    }
    if (text[0] == '1')
        return true;
    drv_error_t err = DRV_ERROR_INIT;
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_TRUNC);
    if (fd >= 0 && drv_file_write_all(fd, "1\n", 2, &err) == DRV_OK)
        return true;
    drv_fmt_cut(why, whysz, "cannot switch %s on: %s", path,
                fd < 0 ? strerror(errno) : drv_error_msg(&err));
    return false;
}

static void sync_nft(pod_net_t *n, pod_t *const *pods, size_t npods, unsigned long long hash)
{
    char why[300];
    if (n->ns.npolicies > 0 && !bridge_filtering(why, sizeof(why))) {
        if (n->nft_ok || strcmp(n->nft_error, why)) {
            drv_log_error("NetworkPolicy cannot be enforced: pods do not start", "error=\"%s\"",
                          why);
            n->status_dirty = true;
        }
        n->nft_ok = false;
        drv_fmt_cut(n->nft_error, sizeof(n->nft_error), "%s", why);
        return;
    }
    _cleanup_free_ drv_nft_pod_t *lp = calloc(npods ? npods : 1, sizeof(*lp));
    _cleanup_free_ drv_nft_peer_health_t *ph = calloc(n->ns.npeers ? n->ns.npeers : 1, sizeof(*ph));
    _cleanup_cjson_ cJSON *ports = cJSON_CreateArray(); /* owns the pods' named ports */
    if (!lp || !ph || !ports)
        return;
    size_t k = 0;
    for (size_t i = 0; i < npods; i++) {
        const pod_t *p = pods[i];
        uint32_t ip;
        if (!p->pod_ip[0] || !drv_net_ip_parse(p->pod_ip, &ip))
            continue;
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(p->obj, "metadata");
        const cJSON *spec = cJSON_GetObjectItemCaseSensitive(p->obj, "spec");
        cJSON *named = cJSON_CreateArray();
        if (!named || !cJSON_AddItemToArray(ports, named)) {
            cJSON_Delete(named);
            return;
        }
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "containers"))
        {
            const cJSON *pt;
            cJSON_ArrayForEach(pt, cJSON_GetObjectItemCaseSensitive(c, "ports"))
            {
                if (drv_json_str(pt, "name"))
                    cJSON_AddItemToArray(named, cJSON_Duplicate(pt, 1));
            }
        }
        lp[k++] = (drv_nft_pod_t){.ip = ip,
                                  .ns = p->ns,
                                  .name = p->name,
                                  .labels = cJSON_GetObjectItemCaseSensitive(meta, "labels"),
                                  .ports = named};
    }
    for (size_t i = 0; i < n->ns.npeers; i++)
        ph[i] = (drv_nft_peer_health_t){.node = n->ns.peers[i].node,
                                        .recent = i < n->nrecent ? n->recent[i] : true};
    uint32_t ips[MAX_NODE_IPS];
    uint32_t dns_ip = 0;
    drv_net_ip_parse(n->gateway, &dns_ip);
    drv_nft_local_t local = {.bridge = n->cfg->bridge,
                             .wg_if = n->cfg->wg_interface,
                             .node_ips = ips,
                             .nnode_ips = node_ips(n, n->cfg->bridge, ips, MAX_NODE_IPS),
                             .dns_ip = dns_ip,
                             .pods = lp,
                             .npods = k,
                             .peers = ph,
                             .npeers = n->ns.npeers};
    drv_buf_t script = DRV_BUF_INIT(NFT_SCRIPT_CAP);
    drv_error_t err = DRV_ERROR_INIT;
    long long t0 = drv_now_ms();
    bool was = n->nft_ok;
    drv_err_t r = drv_nft_render(&n->ns, &local, &script, &err);
    /* The same script again (a pod's labels changed nothing the table uses, a peer's health
     * flapped back): nft would replace the table with itself, 0.6 s at 1,000 Services. */
    unsigned long long sh = r == DRV_OK ? fnv(FNV_START, script.data, script.len) : 0;
    bool same = r == DRV_OK && n->nft_ok && sh == n->script_hash;
    if (r == DRV_OK && !same)
        r = drv_nft_apply(drv_buf_str(&script), script.len, &err);
    if (r != DRV_OK) {
        n->nft_ok = false;
        drv_fmt_cut(n->nft_error, sizeof(n->nft_error), "nftables: %s", drv_error_msg(&err));
        drv_log_error(
            "cannot apply the node's nftables table (with NetworkPolicies: pods do not start)",
            "error=\"%s\"", n->nft_error);
    } else {
        n->nft_ok = true;
        n->nft_error[0] = '\0';
        n->nft_dirty = false;
        n->local_hash = hash;
        n->script_hash = sh;
        drv_log_debug(same ? "nftables table unchanged" : "nftables table applied",
                      "bytes=%zu local_pods=%zu ms=%lld", script.len, k, drv_now_ms() - t0);
    }
    drv_buf_free(&script);
    if (was != n->nft_ok)
        n->status_dirty = true;
}

void pod_net_sync(pod_net_t *n, pod_t *const *pods, size_t npods, long long now, bool force)
{
    if (!n->enabled || !n->ns.present)
        return;
    bool fresh = n->wg_dirty; /* a new section: DNS too */
    if (n->wg_dirty)
        sync_wg(n);
    /* DNS that failed (its address taken, ...) is tried again every 10 s. */
    if (fresh || (!n->dns_ok && now >= n->dns_retry_at)) {
        sync_dns(n);
        if (!n->dns_ok)
            n->dns_retry_at = now + HANDSHAKE_PERIOD_MS;
    }
    if (now - n->last_handshakes >= HANDSHAKE_PERIOD_MS) {
        n->last_handshakes = now;
        if (n->wg_ok)
            read_handshakes(n);
        else
            n->wg_dirty = true; /* try again */
    }
    unsigned long long h = local_hash(pods, npods);
    /* A table that failed is tried again every 10 s, not at every tick. */
    bool retry = !n->nft_ok && now >= n->nft_retry_at;
    if (force || n->nft_dirty || (n->nft_ok && h != n->local_hash) || retry) {
        sync_nft(n, pods, npods, h);
        if (!n->nft_ok)
            n->nft_retry_at = now + HANDSHAKE_PERIOD_MS;
    }
}

bool pod_net_ready(const pod_net_t *n, const char **reason, const char **message)
{
    /* Without policies there is nothing a pod could run unprotected from: a device without
     * nftables still runs its pods (NetworkUnavailable says Services do not work there). */
    if (!n->enabled || !n->ns.present || n->nft_ok || n->ns.npolicies == 0)
        return true;
    *reason = "NetworkPolicyUnenforceable";
    *message = n->nft_error[0] ? n->nft_error : "the node's nftables table is not in place yet";
    return false;
}

void pod_net_status(const pod_net_t *n, cJSON *node)
{
    if (!n->enabled || !node)
        return;
    cJSON *net = cJSON_AddObjectToObject(node, "network");
    if (!net)
        return;
    if (n->public_key[0])
        cJSON_AddStringToObject(net, "publicKey", n->public_key);
    cJSON_AddNumberToObject(net, "listenPort",
                            n->ns.present && n->ns.listen_port ? n->ns.listen_port
                                                               : DRV_NET_DEFAULT_PORT);
    cJSON_AddStringToObject(net, "wireguard", n->wg_ok ? n->wg_impl : "none");
    if (n->ns.present)
        cJSON_AddStringToObject(net, "podCIDR", n->subnet);
    if (!n->ns.present)
        return;
    /* Kubernetes' NetworkUnavailable condition: the mesh, the table and DNS in place. */
    const char *why = !n->wg_ok    ? n->wg_error
                      : !n->nft_ok ? n->nft_error
                      : !n->dns_ok ? n->dns_error
                                   : NULL;
    cJSON *conds = cJSON_GetObjectItemCaseSensitive(node, "conditions");
    cJSON *c = cJSON_CreateObject();
    if (!conds || !c || !cJSON_AddItemToArray(conds, c)) {
        cJSON_Delete(c);
        return;
    }
    cJSON_AddStringToObject(c, "type", "NetworkUnavailable");
    cJSON_AddStringToObject(c, "status", why ? "True" : "False");
    cJSON_AddStringToObject(c, "reason",
                            why ? (!n->wg_ok    ? "WireGuardUnavailable"
                                   : !n->nft_ok ? "NftablesUnavailable"
                                                : "DNSUnavailable")
                                : "DroverNetworkReady");
    cJSON_AddStringToObject(c, "message", why ? why : "WireGuard mesh, Services and DNS in place");
    if (!n->nft_ok && n->ns.npolicies > 0) {
        /* Policies cannot be enforced: the node is not Ready (no pod runs unprotected). */
        cJSON *r;
        cJSON_ArrayForEach(r, conds)
        {
            const char *type = drv_json_str(r, "type");
            if (!type || strcmp(type, "Ready"))
                continue;
            cJSON_DeleteItemFromObjectCaseSensitive(r, "status");
            cJSON_DeleteItemFromObjectCaseSensitive(r, "reason");
            cJSON_DeleteItemFromObjectCaseSensitive(r, "message");
            cJSON_AddStringToObject(r, "status", "False");
            cJSON_AddStringToObject(r, "reason", "NetworkPolicyUnenforceable");
            cJSON_AddStringToObject(r, "message", n->nft_error);
        }
    }
}

drv_err_t pod_net_resolv_conf(const pod_net_t *n, const cJSON *pod_spec, const char *pod_ns,
                              const char *host_text, drv_buf_t *out, drv_error_t *err)
{
    bool cluster = n->enabled && n->ns.present && n->dns_ok;
    return drv_dns_resolv_conf(
        drv_json_str(pod_spec, "dnsPolicy"), drv_json_true(pod_spec, "hostNetwork"), pod_ns,
        cluster ? n->ns.cluster_domain : "cluster.local", cluster ? n->gateway : NULL,
        cJSON_GetObjectItemCaseSensitive(pod_spec, "dnsConfig"), host_text, out, err);
}

size_t pod_net_fds(const pod_net_t *n, int *fds, size_t max)
{
    return n->dns ? drv_dns_fds(n->dns, fds, max) : 0;
}

void pod_net_handle(pod_net_t *n, int fd, long long now)
{
    if (n->dns)
        drv_dns_handle_fd(n->dns, fd, now);
}

int pod_net_next_wakeup(pod_net_t *n, long long now)
{
    if (!n->dns)
        return -1;
    drv_dns_tick(n->dns, now);
    return drv_dns_next_wakeup(n->dns, now);
}
