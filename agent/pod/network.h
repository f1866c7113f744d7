/* Private to the supervisor: the node's part of the cluster network (issue 17). From the
 * desired state's network section it keeps the WireGuard mesh (net/wg), the nftables table of
 * Services and NetworkPolicies (net/nft) and the node's DNS server (net/dns) in step with the
 * pods this node runs, and says whether pods may start: policies must be enforceable before a
 * pod's network exists. Without a section (standalone, or `network: {mode: off}`) it does
 * nothing and the pods use the configured podSubnet. */
#ifndef DROVER_AGENT_POD_NETWORK_H
#define DROVER_AGENT_POD_NETWORK_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "config/config.h"
#include "drover/buf.h"
#include "drover/error.h"
#include "drover/netstate.h"
#include "pod/pod.h"
#include "runtime/cni.h"

#define POD_NET_MAX_FDS 24
#define POD_NET_HANDSHAKE_RECENT_S 180

struct drv_dns;
typedef struct pod_net {
    const drv_agent_config_t *cfg;
    bool enabled;                         /* cfg->cluster_network */
    char public_key[DRV_NET_KEY_LEN + 1]; /* "" until made */
    char key_error[256];
    drv_netstate_t ns; /* ns.present: the hub gave a section */
    char *section;     /* its text, to see changes */
    char subnet[20];   /* the CNI subnet while ns.present */
    char gateway[16];  /* podCIDR + 1: the bridge's address, where DNS listens */
    bool wg_dirty, nft_dirty;
    bool wg_ok, nft_ok, dns_ok;
    char wg_impl[16];
    char wg_error[300], nft_error[300], dns_error[300];
    unsigned long long local_hash;  /* of the local pods' addresses and labels last rendered */
    unsigned long long script_hash; /* of the table last applied */
    long long nft_retry_at;         /* a failed table is tried again from then on */
    long long dns_retry_at;         /* the same for a DNS server that could not start */
    struct drv_dns *dns;
    char dns_bound[16];
    long long last_handshakes;
    bool *recent; /* per ns.peers: handshake within POD_NET_HANDSHAKE_RECENT_S */
    size_t nrecent;
    bool status_dirty;
} pod_net_t;

DRV_NODISCARD drv_err_t pod_net_init(pod_net_t *n, const drv_agent_config_t *cfg, drv_error_t *err);
void pod_net_fini(pod_net_t *n);

/* The desired state's network section (NULL: none). A section that does not parse is
 * logged and the last good one kept (the pods keep their network). Sets cni's subnet, MTU and
 * masquerading to the section's when there is one. Returns true when it changed. */
bool pod_net_set(pod_net_t *n, const cJSON *network, drv_cni_config_t *cni);

/* Brings WireGuard, nftables and DNS in line with the section and the local pods (their
 * addresses once their sandboxes exist). Cheap when nothing changed; reads WireGuard's
 * handshakes every 10 s. force: render the table now (a pod just got its address). */
void pod_net_sync(pod_net_t *n, pod_t *const *pods, size_t npods, long long now, bool force);

/* Whether pods may be set up: false (with Kubernetes-style reason and message) while the
 * section's policies cannot be enforced. */
bool pod_net_ready(const pod_net_t *n, const char **reason, const char **message);

/* nodeStatus.network and the NetworkUnavailable condition, into the node status object. */
void pod_net_status(const pod_net_t *n, cJSON *node);

/* The pod's /etc/resolv.conf by its dnsPolicy (the host's file when there is no cluster
 * DNS). */
DRV_NODISCARD drv_err_t pod_net_resolv_conf(const pod_net_t *n, const cJSON *pod_spec,
                                            const char *pod_ns, const char *host_text,
                                            drv_buf_t *out, drv_error_t *err);

/* The DNS server's fds to poll, and serving one that is readable. */
size_t pod_net_fds(const pod_net_t *n, int *fds, size_t max);
void pod_net_handle(pod_net_t *n, int fd, long long now);
/* ms until the DNS server's next deadline (-1: none). */
int pod_net_next_wakeup(pod_net_t *n, long long now);

#endif
