/* Pod networking through CNI plugins (the containernetworking-plugins of Debian 12, v1.1.1):
 * the agent's one network is a "bridge" plugin (host-local IPAM) chained with "portmap" for
 * hostPorts. This module builds that network configuration list, runs the plugins the way the
 * CNI spec says (environment + config on stdin, fork/execve, no shell, a deadline per call)
 * and reads their results and errors under a size cap.
 *
 * cniVersion is 1.0.0: the v1.1.1 plugins support 0.1.0 to 1.0.0 (CNI_COMMAND=VERSION), and
 * 1.0.0 is the first version whose DEL and CHECK receive prevResult as a matter of course. */
#ifndef DROVER_AGENT_CNI_H
#define DROVER_AGENT_CNI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "drover/error.h"

#define DRV_CNI_VERSION "1.0.0"
#define DRV_CNI_DEFAULT_PLUGIN_DIR "/usr/lib/cni"
#define DRV_CNI_DEFAULT_SUBNET "10.88.0.0/16"
#define DRV_CNI_DEFAULT_BRIDGE "drover0"
#define DRV_CNI_DEFAULT_NETWORK "drover"
#define DRV_CNI_DEFAULT_TIMEOUT_MS 30000u
/* Largest plugin result accepted (stdout); larger output is an error, not a truncation. */
#define DRV_CNI_RESULT_MAX (256u * 1024u)
/* Plugin stderr kept for error messages (the rest is read and dropped). */
#define DRV_CNI_STDERR_MAX 2048u
#define DRV_CNI_IP_MAX 46 /* INET6_ADDRSTRLEN */
#define DRV_CNI_PORTS_MAX 64

/* The pod network, from the agent's configuration. Strings are borrowed (caller owns). */
typedef struct drv_cni_config {
    const char *plugin_dir;   /* NULL: DRV_CNI_DEFAULT_PLUGIN_DIR (also CNI_PATH) */
    const char *state_dir;    /* required for building the conflist: host-local keeps its
                                 leases in <state_dir>/cni/networks/<network>/ */
    const char *subnet;       /* IPv4 CIDR, prefix 8..30, no host bits; NULL: 10.88.0.0/16 */
    const char *bridge;       /* Linux bridge name (1..15 chars); NULL: "drover0" */
    const char *network_name; /* CNI network name; NULL: "drover" */
    unsigned timeout_ms;      /* deadline of one plugin call; 0: 30 s */
    unsigned mtu;             /* the pods' interface MTU (576..9000); 0: the bridge's default */
    /* the cluster network masquerades itself (agent/net/nft.c: not toward other nodes' pods,
     * whose policies must see the real pod address): the bridge plugin must not */
    bool no_ip_masq;
} drv_cni_config_t;

/* One hostPort mapping (Kubernetes containers[].ports[] with hostPort set). */
typedef struct drv_cni_port {
    uint16_t container_port; /* 1..65535 */
    uint16_t host_port;      /* 1..65535 */
    const char *protocol;    /* "TCP", "UDP", "SCTP" (any case); NULL: TCP */
    const char *host_ip;     /* address to bind on the node; NULL or "": all */
} drv_cni_port_t;

/* What a plugin call is about. Strings are borrowed. */
typedef struct drv_cni_pod {
    const char *container_id;    /* CNI_CONTAINERID: the pod UID */
    const char *netns;           /* CNI_NETNS: path of the pod's network namespace; may be NULL
                                    for DEL when the namespace is gone (ADD and CHECK need it) */
    const char *ifname;          /* CNI_IFNAME; NULL: "eth0" */
    const char *pod_name;        /* passed in CNI_ARGS as K8S_POD_NAME; may be NULL */
    const char *pod_namespace;   /* K8S_POD_NAMESPACE; may be NULL */
    const drv_cni_port_t *ports; /* runtimeConfig.portMappings; may be NULL when nports == 0 */
    size_t nports;
} drv_cni_pod_t;

/* The parts of a CNI result the agent uses. */
typedef struct drv_cni_result {
    char ip[DRV_CNI_IP_MAX];      /* pod IPv4 address, without prefix: "10.88.0.2" */
    unsigned prefix_len;          /* 16 */
    char gateway[DRV_CNI_IP_MAX]; /* "" if the plugin reported none */
    char *json;                   /* the whole result, compact JSON, malloc'd and owned by the
                                     struct: keep it as prevResult for DEL and CHECK */
} drv_cni_result_t;

/* Checks cfg (NULL fields mean their defaults), naming the field at fault ("cni.subnet: ..."). */
DRV_NODISCARD drv_err_t drv_cni_config_validate(const drv_cni_config_t *cfg, drv_error_t *err);

/* Checks hostPort mappings: ports in range, a known protocol, hostIP an address, no hostPort
 * and protocol twice. Errors name the entry: "ports[1].protocol: must be TCP, UDP or SCTP". */
DRV_NODISCARD drv_err_t drv_cni_ports_validate(const drv_cni_port_t *ports, size_t n,
                                               drv_error_t *err);

/* Builds the network configuration list for cfg (validated first):
 *   {cniVersion, name, plugins: [bridge (isGateway, ipMasq, hairpinMode, host-local IPAM with
 *    ranges [[{subnet}]], a default route and dataDir), portmap (capabilities.portMappings,
 *    snat)]}
 * without portmap unless portmap is set: a pod without host ports would only pay for one
 * more plugin run (a Go program's start, ~10 ms) that passes the result through.
 * *out is a new tree (caller frees with cJSON_Delete); untouched on failure. */
DRV_NODISCARD drv_err_t drv_cni_conflist_build(const drv_cni_config_t *cfg, bool portmap,
                                               cJSON **out, drv_error_t *err);

/* Checks that the plugins of the list (plus the host-local IPAM) are executable in the plugin
 * directory and that iptables, which ipMasq and portmap run, is on the PATH the plugins get.
 * The error says which Debian package is missing. */
DRV_NODISCARD drv_err_t drv_cni_preflight(const drv_cni_config_t *cfg, drv_error_t *err);

/* Attaches the pod: runs ADD of every plugin of conflist (NULL: built from cfg) in order,
 * each getting the previous plugin's result as prevResult, and parses the final result into
 * *out (free with drv_cni_result_free). All or nothing: if a plugin fails, DEL is run for the
 * whole list (best effort) before returning, and err reads "cni bridge ADD: <plugin's msg>". */
DRV_NODISCARD drv_err_t drv_cni_add(const drv_cni_config_t *cfg, const cJSON *conflist,
                                    const drv_cni_pod_t *pod, drv_cni_result_t *out,
                                    drv_error_t *err);

/* Detaches the pod: runs DEL of every plugin in reverse order with prev_result (the JSON of
 * the ADD result; NULL when unknown, e.g. after a crash during ADD). Every plugin is run even
 * if one fails; the first failure is returned. Deleting what was never added succeeds. */
DRV_NODISCARD drv_err_t drv_cni_del(const drv_cni_config_t *cfg, const cJSON *conflist,
                                    const drv_cni_pod_t *pod, const char *prev_result,
                                    drv_error_t *err);

/* Runs CHECK of every plugin in order with prev_result (required): DRV_OK if the pod's
 * network is still as ADD left it. (portmap v1.1.1's spurious IPv6 failure for an IPv4-only
 * pod, containernetworking/plugins#819, is recognised and ignored.) */
DRV_NODISCARD drv_err_t drv_cni_check(const drv_cni_config_t *cfg, const cJSON *conflist,
                                      const drv_cni_pod_t *pod, const char *prev_result,
                                      drv_error_t *err);

/* Parses a plugin's success output (len bytes, need not be NUL-terminated): the first IPv4
 * address in "ips" (preferring one on an interface inside the sandbox). Garbage, output over
 * DRV_CNI_RESULT_MAX, a result without an IPv4 address or with a malformed one is
 * DRV_ERR_PROTO with a message that says what is wrong. *out untouched on failure. */
DRV_NODISCARD drv_err_t drv_cni_result_parse(const char *data, size_t len, drv_cni_result_t *out,
                                             drv_error_t *err);

/* Turns a failed plugin call into err: the CNI error object {code, msg, details} on stdout if
 * there is one ("cni bridge ADD: failed to allocate ...: details (code 11)"), else the exit
 * status and the start of stderr (or of stdout). Returns the recorded code: DRV_ERR_AGAIN for
 * CNI's "try again later" (11), DRV_ERR_INVALID for bad config or environment (4, 6, 7),
 * DRV_ERR_UNSUPPORTED (1, 2), DRV_ERR_NOTFOUND (3), DRV_ERR_IO otherwise. Control characters
 * in the plugin's text become spaces. stdout_data and stderr_text may be NULL. */
DRV_NODISCARD drv_err_t drv_cni_plugin_error(const char *plugin, const char *command,
                                             int wait_status, const char *stdout_data,
                                             size_t stdout_len, const char *stderr_text,
                                             drv_error_t *err);

/* Frees what *r owns and zeroes it; safe on a zeroed or already freed result. */
void drv_cni_result_free(drv_cni_result_t *r);

#endif
