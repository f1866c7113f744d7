/* Test driver for agent/net/nft.c (used by test_nft.sh): reads a JSON file shaped like the
 * desired state's "network" section plus what the agent knows locally, renders the node's
 * table and prints, checks (nft -c) or applies it.
 *   nft_driver print|check|apply FILE      nft_driver remove
 * FILE: {"node": "n1", "network": {...as in the spec...},
 *        "local": {"bridge": "drv1", "wg": "drover-wg", "nodeIPs": [...], "dns": "10.42.1.1",
 *                  "recentPeers": ["n2"]}}
 * Local pods are the network's pods on "node". The loader is a test's: it trusts its input
 * (the agent gets these structs from the shared netstate parser). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/json.h"
#include "net/nft.h"

static uint32_t ip_of(const char *s)
{
    struct in_addr a;
    if (s == NULL || inet_pton(AF_INET, s, &a) != 1)
        return 0;
    return ntohl(a.s_addr);
}

static drv_net_cidr_t cidr_of(const char *s)
{
    drv_net_cidr_t c = {0, 0};
    char ip[32];
    const char *slash = s ? strchr(s, '/') : NULL;
    if (slash == NULL || (size_t)(slash - s) >= sizeof(ip))
        return c;
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = '\0';
    c.addr = ip_of(ip);
    c.prefix = (uint8_t)strtoul(slash + 1, NULL, 10);
    return c;
}

static void copy(char *dst, size_t n, const char *src)
{
    if (src)
        (void)snprintf(dst, n, "%s", src);
}

static uint8_t proto_of(const char *s)
{
    if (s && !strcmp(s, "UDP"))
        return IPPROTO_UDP;
    if (s && !strcmp(s, "SCTP"))
        return IPPROTO_SCTP;
    return IPPROTO_TCP;
}

static void load(const cJSON *root, drv_netstate_t *ns)
{
    const cJSON *net = drv_json_get(root, "network"), *it;
    ns->present = true;
    copy(ns->node, sizeof(ns->node), drv_json_str(root, "node"));
    ns->pod_cidr = cidr_of(drv_json_str(net, "podCIDR"));
    ns->cluster_cidr = cidr_of(drv_json_str(net, "clusterCIDR"));
    ns->service_cidr = cidr_of(drv_json_str(net, "serviceCIDR"));
    const cJSON *svcs = drv_json_get(net, "services");
    ns->services = calloc(drv_json_array_len(svcs) + 1, sizeof(*ns->services));
    cJSON_ArrayForEach(it, svcs)
    {
        drv_net_service_t *s = &ns->services[ns->nservices++];
        copy(s->ns, sizeof(s->ns), drv_json_str(it, "namespace"));
        copy(s->name, sizeof(s->name), drv_json_str(it, "name"));
        const char *type = drv_json_str_or(it, "type", "ClusterIP");
        s->type = !strcmp(type, "NodePort")       ? DRV_NET_SVC_NODE_PORT
                  : !strcmp(type, "LoadBalancer") ? DRV_NET_SVC_LOAD_BALANCER
                                                  : DRV_NET_SVC_CLUSTER_IP;
        const char *cip = drv_json_str_or(it, "clusterIP", "None");
        s->headless = !strcmp(cip, "None");
        s->cluster_ip = s->headless ? 0 : ip_of(cip);
        s->affinity_client_ip = !strcmp(drv_json_str_or(it, "sessionAffinity", ""), "ClientIP");
        s->internal_local = !strcmp(drv_json_str_or(it, "internalTrafficPolicy", ""), "Local");
        s->external_local = !strcmp(drv_json_str_or(it, "externalTrafficPolicy", ""), "Local");
        const cJSON *ports = drv_json_get(it, "ports"), *p;
        s->ports = calloc(drv_json_array_len(ports) + 1, sizeof(*s->ports));
        cJSON_ArrayForEach(p, ports)
        {
            drv_net_port_t *sp = &s->ports[s->nports++];
            copy(sp->name, sizeof(sp->name), drv_json_str(p, "name"));
            sp->protocol = proto_of(drv_json_str(p, "protocol"));
            sp->port = (uint16_t)drv_json_int_or(p, "port", 0);
            sp->node_port = (uint16_t)drv_json_int_or(p, "nodePort", 0);
        }
        const cJSON *eps = drv_json_get(it, "endpoints"), *e;
        s->endpoints = calloc(drv_json_array_len(eps) + 1, sizeof(*s->endpoints));
        cJSON_ArrayForEach(e, eps)
        {
            drv_net_endpoint_t *ep = &s->endpoints[s->nendpoints++];
            ep->ip = ip_of(drv_json_str(e, "ip"));
            copy(ep->node, sizeof(ep->node), drv_json_str(e, "node"));
            ep->ready = drv_json_true(e, "ready");
            ep->serving = drv_json_true(e, "serving");
            ep->terminating = drv_json_true(e, "terminating");
            ep->target_ports = calloc(s->nports + 1, sizeof(uint16_t));
            const cJSON *tp = drv_json_get(e, "targetPorts");
            for (size_t j = 0; j < s->nports; j++)
                ep->target_ports[j] =
                    (uint16_t)cJSON_GetNumberValue(cJSON_GetArrayItem(tp, (int)j));
        }
    }
    const cJSON *pods = drv_json_get(net, "pods");
    ns->pods = calloc(drv_json_array_len(pods) + 1, sizeof(*ns->pods));
    cJSON_ArrayForEach(it, pods)
    {
        drv_net_pod_t *p = &ns->pods[ns->npods++];
        p->ip = ip_of(drv_json_str(it, "ip"));
        copy(p->ns, sizeof(p->ns), drv_json_str(it, "namespace"));
        copy(p->name, sizeof(p->name), drv_json_str(it, "name"));
        copy(p->node, sizeof(p->node), drv_json_str(it, "node"));
        p->labels = drv_json_get(it, "labels");
        p->ports = drv_json_get(it, "ports");
    }
    const cJSON *nss = drv_json_get(net, "namespaces");
    ns->namespaces = calloc(drv_json_array_len(nss) + 1, sizeof(*ns->namespaces));
    cJSON_ArrayForEach(it, nss)
    {
        drv_net_namespace_t *n = &ns->namespaces[ns->nnamespaces++];
        copy(n->name, sizeof(n->name), drv_json_str(it, "name"));
        n->labels = drv_json_get(it, "labels");
    }
    const cJSON *pols = drv_json_get(net, "networkPolicies");
    ns->policies = calloc(drv_json_array_len(pols) + 1, sizeof(*ns->policies));
    cJSON_ArrayForEach(it, pols)
    {
        drv_net_policy_t *q = &ns->policies[ns->npolicies++];
        copy(q->ns, sizeof(q->ns), drv_json_str_at(it, "metadata.namespace"));
        copy(q->name, sizeof(q->name), drv_json_str_at(it, "metadata.name"));
        q->object = (cJSON *)it;
    }
}

int main(int argc, char **argv)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (argc == 2 && !strcmp(argv[1], "remove")) {
        if (drv_nft_remove(&err) != DRV_OK) {
            fprintf(stderr, "%s\n", drv_error_msg(&err));
            return 1;
        }
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: nft_driver print|check|apply FILE | remove\n");
        return 2;
    }
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if (drv_file_read_capped(argv[2], 16u << 20, &text, &len, &err) != DRV_OK) {
        fprintf(stderr, "%s\n", drv_error_msg(&err));
        return 2;
    }
    _cleanup_cjson_ cJSON *root = cJSON_Parse(text);
    if (root == NULL) {
        fprintf(stderr, "%s: not JSON\n", argv[2]);
        return 2;
    }
    drv_netstate_t ns = {0};
    load(root, &ns);
    const cJSON *loc = drv_json_get(root, "local"), *it;
    drv_nft_local_t local = {.bridge = drv_json_str_or(loc, "bridge", "drv1"),
                             .wg_if = drv_json_str_or(loc, "wg", "drover-wg"),
                             .dns_ip = ip_of(drv_json_str(loc, "dns"))};
    uint32_t node_ips[16];
    cJSON_ArrayForEach(it, drv_json_get(loc, "nodeIPs"))
    {
        if (local.nnode_ips < 16)
            node_ips[local.nnode_ips++] = ip_of(it->valuestring);
    }
    local.node_ips = node_ips;
    drv_nft_peer_health_t peers[16];
    cJSON_ArrayForEach(it, drv_json_get(loc, "recentPeers"))
    {
        if (local.npeers < 16)
            peers[local.npeers++] = (drv_nft_peer_health_t){it->valuestring, true};
    }
    local.peers = peers;
    drv_nft_pod_t *lp = calloc(ns.npods + 1, sizeof(*lp));
    for (size_t i = 0; i < ns.npods; i++)
        if (!strcmp(ns.pods[i].node, ns.node))
            lp[local.npods++] = (drv_nft_pod_t){ns.pods[i].ip, ns.pods[i].ns, ns.pods[i].name,
                                                ns.pods[i].labels, ns.pods[i].ports};
    local.pods = lp;

    _cleanup_buf_ drv_buf_t out = DRV_BUF_INIT(DRV_NFT_SCRIPT_MAX);
    int rc = 0;
    if (drv_nft_render(&ns, &local, &out, &err) != DRV_OK) {
        fprintf(stderr, "render: %s\n", drv_error_msg(&err));
        rc = 1;
    } else if (!strcmp(argv[1], "print")) {
        fputs(drv_buf_str(&out), stdout);
    } else if (!strcmp(argv[1], "check") || !strcmp(argv[1], "apply")) {
        drv_err_t r = !strcmp(argv[1], "check") ? drv_nft_check(out.data, out.len, &err)
                                                : drv_nft_apply(out.data, out.len, &err);
        if (r != DRV_OK) {
            fprintf(stderr, "%s\n", drv_error_msg(&err));
            rc = 1;
        }
    } else {
        fprintf(stderr, "unknown command %s\n", argv[1]);
        rc = 2;
    }
    for (size_t i = 0; i < ns.nservices; i++) {
        for (size_t k = 0; k < ns.services[i].nendpoints; k++)
            free(ns.services[i].endpoints[k].target_ports);
        free(ns.services[i].endpoints);
        free(ns.services[i].ports);
    }
    free(ns.services);
    free(ns.pods);
    free(ns.namespaces);
    free(ns.policies);
    free(lp);
    return rc;
}
