/* The pod network between devices: this node's WireGuard key, its interface (kernel WireGuard,
 * else Debian's userspace wireguard-go) configured from the hub's netstate (peers, relays,
 * keep-alives), the routes to the other nodes' pods and a fail-closed blackhole for the rest
 * of the cluster CIDR, and the peers' handshake ages. Tools (ip, wg, wireguard-go) run through
 * the shared process runner: no shell, a deadline, capped output. */
#ifndef DROVER_AGENT_WG_H
#define DROVER_AGENT_WG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "drover/buf.h"
#include "drover/error.h"
#include "drover/netstate.h"

#define DRV_WG_DEFAULT_IFNAME "drover-wg"
#define DRV_WG_KEY_FILE "wireguard.key"
#define DRV_WG_DEFAULT_TOOL_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define DRV_WG_DEFAULT_SYSCTL "/proc/sys/net/ipv4/ip_forward"
#define DRV_WG_DEFAULT_TIMEOUT_MS 10000u
#define DRV_WG_BLACKHOLE_METRIC 4000
/* The routing protocol number marking Drover's routes (ip route ... proto 156), so that a
 * removal finds them all and never touches anybody else's. */
#define DRV_WG_RT_PROTO 156
#define DRV_WG_IFNAME_MAX 15

typedef enum {
    DRV_WG_IMPL_NONE = 0,
    DRV_WG_IMPL_KERNEL,
    DRV_WG_IMPL_USERSPACE,
} drv_wg_impl_t;

/* How the interface is made and named. Strings are borrowed; zero-initialise, then set what
 * differs. */
typedef struct drv_wg_opts {
    const char *ifname;       /* NULL: DRV_WG_DEFAULT_IFNAME */
    const char *identity_dir; /* required by apply: holds DRV_WG_KEY_FILE */
    const char *run_dir;      /* required by apply: the syncconf file goes there (0600) */
    const char *tool_path;    /* PATH for ip, wg, wireguard-go; NULL: DRV_WG_DEFAULT_TOOL_PATH */
    const char *sysctl_path;  /* ip_forward switch; NULL: DRV_WG_DEFAULT_SYSCTL */
    /* This node has no public endpoint of its own (the hub gave it none): it sends
     * keep-alives to every peer so that its NAT keeps the mapping open. */
    bool behind_nat;
    bool no_kernel;      /* do not try kernel WireGuard (tests, or a known-broken module) */
    unsigned timeout_ms; /* per tool call; 0: DRV_WG_DEFAULT_TIMEOUT_MS */
} drv_wg_opts_t;

/* What drv_wg_apply did. */
typedef struct drv_wg_state {
    drv_wg_impl_t impl;
    char public_key[DRV_NET_KEY_LEN + 1];
    size_t npeers;  /* [Peer] sections configured */
    size_t nroutes; /* pod CIDR routes through the interface */
    bool created;   /* the interface was made by this call */
} drv_wg_state_t;

/* One peer as `wg show NAME dump` reports it. */
typedef struct drv_wg_peer_stat {
    char public_key[DRV_NET_KEY_LEN + 1];
    char endpoint[DRV_NET_ENDPOINT_MAX + 1]; /* "" when none is known yet */
    long long latest_handshake;              /* Unix seconds; 0: never */
    uint64_t rx_bytes, tx_bytes;
    unsigned keepalive_s; /* 0: off */
} drv_wg_peer_stat_t;

/* "kernel", "userspace" or "none" (what the agent reports as nodeStatus.network.wireguard). */
const char *drv_wg_impl_name(drv_wg_impl_t impl);

/* The node's X25519 key in <identity_dir>/wireguard.key (base64 and a newline, the format of
 * `wg genkey`, mode 0600): loaded, or made on first use and written crash-safely. A corrupt
 * file is moved aside (.bad) and replaced, with a warning. pub gets the base64 public key (what
 * `wg pubkey` prints). The private key is never logged. */
DRV_NODISCARD drv_err_t drv_wg_key_load_or_create(const char *identity_dir,
                                                  char pub[DRV_NET_KEY_LEN + 1], drv_error_t *err);

/* The base64 public key of a base64 private key (clamped as WireGuard does). */
DRV_NODISCARD drv_err_t drv_wg_key_public(const char *priv_b64, char pub[DRV_NET_KEY_LEN + 1],
                                          drv_error_t *err);

/* Renders the `wg syncconf` file for ns into out: [Interface] PrivateKey, ListenPort; one
 * [Peer] per directly reached peer, AllowedIPs its pod CIDR plus those of the peers routed
 * `via` it, Endpoint when known, PersistentKeepalive when this node is behind NAT or the peer
 * has no endpoint. Peers reached through a relay have no section of their own. */
DRV_NODISCARD drv_err_t drv_wg_render(const drv_wg_opts_t *o, const drv_netstate_t *ns,
                                      const char *priv_b64, drv_buf_t *out, drv_error_t *err);

/* Makes the interface match ns: created if missing (kernel, else wireguard-go), MTU, address
 * (the pod CIDR's network address /32), up, peers through `wg syncconf` (live sessions kept),
 * routes to every peer's pod CIDR (stale ones on the interface removed), the blackhole route
 * for the cluster CIDR (metric 4000) and IPv4 forwarding on. Neither kernel WireGuard nor
 * wireguard-go available: DRV_ERR_UNSUPPORTED with a message saying so. */
DRV_NODISCARD drv_err_t drv_wg_apply(const drv_wg_opts_t *o, const drv_netstate_t *ns,
                                     drv_wg_state_t *st, drv_error_t *err);

/* Parses `wg show NAME dump` (interface line, then one line per peer, tab-separated) strictly:
 * a wrong field count, a bad key, number or endpoint is an error naming the line and field
 * (never quoting the interface line, which holds the private key). *peers is malloc'd (caller
 * frees; NULL when there are none). */
DRV_NODISCARD drv_err_t drv_wg_dump_parse(const char *text, drv_wg_peer_stat_t **peers,
                                          size_t *npeers, drv_error_t *err);

/* The interface's peers now (`wg show NAME dump`, parsed as above). */
DRV_NODISCARD drv_err_t drv_wg_handshakes(const drv_wg_opts_t *o, drv_wg_peer_stat_t **peers,
                                          size_t *npeers, drv_error_t *err);

/* Seconds since the peer's latest handshake at now_s (Unix seconds); -1 when it never had one. */
long long drv_wg_handshake_age(const drv_wg_peer_stat_t *p, long long now_s);

/* Deletes the interface (wireguard-go exits when its device goes) and every route of Drover's
 * (proto DRV_WG_RT_PROTO), the blackhole included. A missing interface is fine. */
DRV_NODISCARD drv_err_t drv_wg_remove(const drv_wg_opts_t *o, drv_error_t *err);

#endif
