/* The node's nftables table (`table inet drover`): Services (ClusterIP, NodePort, LoadBalancer
 * on the node's addresses, cluster DNS), pod masquerade, the fail-closed rule that keeps
 * cluster traffic off every interface but WireGuard, and NetworkPolicy for the local pods,
 * rendered from the netstate as one nft script that `nft -f -` applies atomically. */
#ifndef DROVER_AGENT_NFT_H
#define DROVER_AGENT_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "drover/buf.h"
#include "drover/error.h"
#include "drover/netstate.h"

#define DRV_NFT_TABLE "drover"
#define DRV_NFT_IFNAME_MAX 15
#define DRV_NFT_SCRIPT_MAX (64u << 20) /* a suggested cap for the caller's output buffer */
#define DRV_NFT_TIMEOUT_MS 30000u
/* The packet mark bit that asks postrouting to masquerade (kube-proxy's choice of bit). */
#define DRV_NFT_MASQ_MARK 0x4000u

/* A pod of this node as the agent knows it, possibly before the hub has its IP. All pointers
 * are borrowed for the duration of the render. */
typedef struct drv_nft_pod {
    uint32_t ip; /* host order */
    const char *ns;
    const char *name;
    const cJSON *labels; /* object of strings; NULL: none */
    const cJSON *ports;  /* array of {"name","protocol","containerPort"}; NULL: none */
} drv_nft_pod_t;

/* Whether a peer node's last WireGuard handshake is recent (<= 180 s). A peer not listed
 * counts as not recent. */
typedef struct drv_nft_peer_health {
    const char *node;
    bool recent;
} drv_nft_peer_health_t;

/* What only the agent knows; everything borrowed for the duration of the render. */
typedef struct drv_nft_local {
    const char *bridge; /* the pods' bridge ("drv1") */
    const char *wg_if;  /* the WireGuard interface ("drover-wg") */
    /* The node's own IPv4 addresses (host order): LoadBalancer services are served on them at
     * their port (like K3s ServiceLB). NodePorts are served on every local address. */
    const uint32_t *node_ips;
    size_t nnode_ips;
    /* Where the node's DNS listens (the bridge gateway, podCIDR + 1); the cluster DNS IP
     * (serviceCIDR + 10) is DNAT'd to it on udp and tcp 53. 0: no DNAT. */
    uint32_t dns_ip;
    const drv_nft_pod_t *pods; /* this node's pods, may repeat those of the netstate */
    size_t npods;
    const drv_nft_peer_health_t *peers;
    size_t npeers;
} drv_nft_local_t;

/* Appends to out the script that replaces `table inet drover` in one transaction. Fails
 * (out then as it was) on a netstate without a network section, a bad interface name, a
 * NetworkPolicy it cannot read (named in the message: the old table stays, fail closed) or an
 * out over its maximum. */
DRV_NODISCARD drv_err_t drv_nft_render(const drv_netstate_t *ns, const drv_nft_local_t *local,
                                       drv_buf_t *out, drv_error_t *err);

/* Runs `nft -f -` with script on stdin; the error carries nft's stderr (cut). */
DRV_NODISCARD drv_err_t drv_nft_apply(const char *script, size_t len, drv_error_t *err);
/* `nft -c -f -`: checks the script against the kernel without applying it. */
DRV_NODISCARD drv_err_t drv_nft_check(const char *script, size_t len, drv_error_t *err);
/* Deletes the table (absent: fine). */
DRV_NODISCARD drv_err_t drv_nft_remove(drv_error_t *err);

#endif
