/* The cluster network as one node sees it: the "network" section of its desired state
 * (docs/PROTOCOL.md "Network"), parsed and checked once, so the agent's WireGuard, nftables
 * and DNS modules read plain structs and never a hostile tree. Built by the hub's bridge. */
#ifndef DROVER_NETSTATE_H
#define DROVER_NETSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "drover/error.h"
/* the CIDR type and the address helpers (drv_net_cidr_parse, ...) */
#include "drover/ipv4.h"
#include "drover/selector.h"

#define DRV_NET_NAME_MAX 253    /* node, pod names (DNS subdomains) */
#define DRV_NET_LABEL_MAX 63    /* namespace, service, port names (DNS labels) */
#define DRV_NET_KEY_LEN 44      /* a WireGuard key in base64 (32 bytes) */
#define DRV_NET_ENDPOINT_MAX 63 /* "a.b.c.d:port" or "[v6]:port" */
#define DRV_NET_DOMAIN_MAX 200
#define DRV_NET_PEERS_MAX 4096
#define DRV_NET_SERVICES_MAX 20000
#define DRV_NET_PORTS_MAX 100       /* per Service */
#define DRV_NET_ENDPOINTS_MAX 10000 /* per Service */
#define DRV_NET_PODS_MAX 200000
#define DRV_NET_POLICIES_MAX 10000
#define DRV_NET_DEFAULT_PORT 51820
#define DRV_NET_DEFAULT_MTU 1380 /* a 1500 link minus WireGuard over IPv6 (80), minus 40 spare */

typedef struct drv_net_peer {
    char node[DRV_NET_NAME_MAX + 1];
    char public_key[DRV_NET_KEY_LEN + 1];
    drv_net_cidr_t pod_cidr;
    /* Where to send the first handshake, "" when the peer is behind a NAT (it calls us; we
     * answer the address its packets come from). */
    char endpoint[DRV_NET_ENDPOINT_MAX + 1];
    /* "" direct; else the peer's traffic goes through that relay peer (both ends behind NAT):
     * its pod_cidr is routed and allowed on the relay's entry instead. */
    char via[DRV_NET_NAME_MAX + 1];
    bool relay; /* forwards between peers that cannot reach each other */
} drv_net_peer_t;

typedef enum {
    DRV_NET_SVC_CLUSTER_IP = 0,
    DRV_NET_SVC_NODE_PORT,
    DRV_NET_SVC_LOAD_BALANCER,
} drv_net_svc_type_t;

typedef struct drv_net_port {
    char name[DRV_NET_LABEL_MAX + 1]; /* "" for a Service's only unnamed port */
    uint8_t protocol;                 /* IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP */
    uint16_t port;                    /* the Service's port */
    uint16_t node_port;               /* 0 unless NodePort/LoadBalancer */
} drv_net_port_t;

typedef struct drv_net_endpoint {
    uint32_t ip;                          /* the pod's IP, host order */
    char node[DRV_NET_NAME_MAX + 1];      /* where it runs */
    char pod[DRV_NET_NAME_MAX + 1];       /* its name ("" if none) */
    char hostname[DRV_NET_LABEL_MAX + 1]; /* spec.hostname/subdomain's A record, "" if none */
    bool ready, serving, terminating;     /* EndpointSlice conditions */
    uint16_t *target_ports;               /* owned: one per Service port (named ports resolved
                                           * by the hub for this pod); 0 = this pod lacks it */
} drv_net_endpoint_t;

typedef struct drv_net_service {
    char ns[DRV_NET_LABEL_MAX + 1];
    char name[DRV_NET_LABEL_MAX + 1];
    drv_net_svc_type_t type;
    bool headless;               /* clusterIP None: DNS gives the endpoints' addresses */
    uint32_t cluster_ip;         /* 0 when headless */
    bool affinity_client_ip;     /* sessionAffinity ClientIP */
    uint32_t affinity_timeout_s; /* sessionAffinityConfig.clientIP.timeoutSeconds (10800) */
    bool internal_local;         /* internalTrafficPolicy Local */
    bool external_local;         /* externalTrafficPolicy Local */
    bool publish_not_ready;      /* publishNotReadyAddresses */
    drv_net_port_t *ports;       /* owned */
    size_t nports;
    drv_net_endpoint_t *endpoints; /* owned */
    size_t nendpoints;
} drv_net_service_t;

/* Every pod IP of the cluster with what NetworkPolicy selectors look at. */
typedef struct drv_net_pod {
    uint32_t ip;
    char ns[DRV_NET_LABEL_MAX + 1];
    char name[DRV_NET_NAME_MAX + 1];
    char node[DRV_NET_NAME_MAX + 1];
    cJSON *labels; /* owned object of strings (never NULL after parse) */
    /* owned array of {"name","protocol","containerPort"}: the named container ports a
     * policy's named port resolves to (never NULL after parse) */
    cJSON *ports;
} drv_net_pod_t;

typedef struct drv_net_namespace {
    char name[DRV_NET_LABEL_MAX + 1];
    cJSON *labels; /* owned, includes kubernetes.io/metadata.name */
} drv_net_namespace_t;

typedef struct drv_net_policy {
    char ns[DRV_NET_LABEL_MAX + 1];
    char name[DRV_NET_NAME_MAX + 1];
    cJSON *object; /* owned: the NetworkPolicy as drv_model_normalize left it */
} drv_net_policy_t;

typedef struct drv_netstate {
    bool present; /* the desired state had a network section */
    char node[DRV_NET_NAME_MAX + 1];
    drv_net_cidr_t pod_cidr;     /* this node's (assigned by the hub) */
    drv_net_cidr_t cluster_cidr; /* every node's pod_cidr is inside */
    drv_net_cidr_t service_cidr;
    char cluster_domain[DRV_NET_DOMAIN_MAX + 1]; /* "cluster.local" */
    uint16_t listen_port;                        /* this node's WireGuard port */
    uint16_t mtu;                                /* the WireGuard interface's MTU (and the pods') */
    uint16_t keepalive_s;                        /* persistent keep-alive toward peers (0: off) */
    /* the hub sees this node from an address it does not have: peers cannot call it, so it
     * sends keep-alives toward every peer to keep its NAT's mapping open */
    bool behind_nat;
    drv_net_peer_t *peers; /* owned, every other node with a key and a pod_cidr */
    size_t npeers;
    drv_net_service_t *services; /* owned */
    size_t nservices;
    drv_net_pod_t *pods; /* owned */
    size_t npods;
    drv_net_namespace_t *namespaces; /* owned */
    size_t nnamespaces;
    drv_net_policy_t *policies; /* owned */
    size_t npolicies;
} drv_netstate_t;

/* Parses the "network" object of a desired state for node `node`. A missing section (NULL)
 * gives present = false and succeeds. Checks everything a hostile or broken hub could put
 * there, naming the field ("network.peers[2].podCIDR: overlaps network.podCIDR"): CIDRs
 * well-formed and masked, every peer's pod_cidr inside cluster_cidr and overlapping no other
 * (nor this node's), keys 32 bytes of base64, no peer named like this node, no duplicate
 * peer, via naming a peer that is a relay, endpoints host:port, service IPs inside
 * service_cidr and unique, ports 1-65535 and unique per protocol, target_ports one per port,
 * endpoint and pod IPs inside cluster_cidr, policies NetworkPolicy objects; counts under the
 * maxima. On failure out is zeroed. */
DRV_API DRV_NODISCARD drv_err_t drv_netstate_parse(const cJSON *network, const char *node,
                                                   drv_netstate_t *out, drv_error_t *err);
DRV_API void drv_netstate_free(drv_netstate_t *ns);

const drv_net_service_t *drv_netstate_service(const drv_netstate_t *ns, const char *namesp,
                                              const char *name);

#endif
