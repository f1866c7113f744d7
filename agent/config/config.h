/* The agent's configuration file (/etc/drover/agent.yaml; YAML or JSON). Every key is
 * optional and documented in README.md; an unknown key or a value of the wrong type is an
 * error that names it ("registries.insecure[1]: must be a string"), so a typo never passes
 * silently as a default. */
#ifndef DROVER_AGENT_CONFIG_H
#define DROVER_AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "drover/error.h"
#include "image/mirror.h"

#define DRV_AGENT_CONFIG_PATH "/etc/drover/agent.yaml"
#define DRV_CONFIG_MAX_REGISTRIES 32
#define DRV_CONFIG_MAX_LABELS 32

typedef enum {
    DRV_CGROUPS_AUTO = 0, /* use cgroup v2 when crun can; otherwise see allow_no_cgroups */
    DRV_CGROUPS_REQUIRED, /* refuse to run pods without enforceable limits */
    DRV_CGROUPS_DISABLED, /* never set limits (development only) */
} drv_cgroups_mode_t;

typedef struct drv_registry_conf {
    char host[256]; /* "host[:port]" as in image references */
    bool insecure;  /* plain HTTP */
    char username[256];
    char password[256];
} drv_registry_conf_t;

typedef struct drv_label_conf {
    char key[320]; /* [prefix/]name, as in metadata.labels */
    char value[64];
} drv_label_conf_t;

typedef struct drv_agent_config {
    char node_name[64];         /* default: the host name; "" until a pattern is filled */
    char node_name_pattern[64]; /* nodeName with {serial}/{hostname}/{mac}: config/nodename.h
                                 * fills node_name from it; "" for a literal name */
    char state_dir[256];        /* default /var/lib/drover: images, pods, desired state */
    char run_dir[256];          /* default /run/drover: namespaces, sockets (tmpfs) */
    char storage_dir[256];      /* storage.dir: node-local volumes; "" = <stateDir>/storage */
    char manifest_dir[256];     /* default /etc/drover/manifests: static pods */
    char platform[64];          /* default: this machine's ("linux/arm64/v8") */
    char log_level[16];         /* default info */
    drv_cgroups_mode_t cgroups;
    bool allow_no_cgroups;     /* run without limits where cgroups cannot be used */
    char crun_path[256];       /* default "crun" (looked up in PATH) */
    char seccomp_profile[256]; /* default /usr/share/containers/seccomp.json */
    /* network */
    char pod_subnet[64];      /* default 10.88.0.0/16 */
    char bridge[16];          /* default drover0 */
    char cni_plugin_dir[256]; /* default /usr/lib/cni */
    /* the cluster network (agent/pod/network.c): with a hub that sends one, the node's pod
     * subnet, WireGuard peers, Services, DNS and NetworkPolicy come from its desired state */
    bool cluster_network;  /* network.mode: auto (default) or off (the local podSubnet only) */
    char wg_interface[16]; /* network.wireguardInterface; default drover-wg */
    char wg_tool_dir[256]; /* network.toolDir: where ip, wg, wireguard-go, nft are; "" PATH */
    /* container logs */
    uint64_t log_max_bytes; /* per file before rotation; default 10 MiB */
    unsigned log_max_files; /* rotated files kept; default 2 */
    /* images */
    uint64_t max_layer_bytes;    /* decompressed cap per layer; default 8 GiB */
    unsigned gc_high_percent;    /* disk use that starts image GC; default 85 */
    unsigned gc_low_percent;     /* disk use GC brings it down to; default 75 */
    unsigned default_pids_limit; /* per container; default 1024 */
    drv_registry_conf_t registries[DRV_CONFIG_MAX_REGISTRIES];
    size_t n_registries;
    /* registries.mirrors (K3s's registries.yaml form): tried before the registry itself */
    drv_mirror_conf_t mirrors[DRV_MIRROR_MAX];
    size_t n_mirrors;
    /* hub link (agent/link/): an empty broker means standalone, static manifests only */
    char hub_broker[256]; /* hub.broker: "tcp://HOST:PORT", or "ssl://" / "mqtts://" for TLS */
    /* enrollment (agent/enroll/): where to get the node's certificate on first start */
    char hub_url[256];            /* hub.url: "https://HOST:PORT" of the hub's API */
    char hub_ca_fingerprint[72];  /* hub.caFingerprint: "sha256:<64 lowercase hex>" */
    char hub_token[256];          /* hub.token: a bootstrap token "drv1_..." */
    char hub_token_file[256];     /* hub.tokenFile: a file holding the token (preferred) */
    unsigned hub_heartbeat_s;     /* hub.heartbeatSeconds; default 2 */
    unsigned hub_keepalive_s;     /* hub.keepaliveSeconds; default 10 */
    unsigned metrics_interval_s;  /* metrics.intervalSeconds: usage sampled (0: never); 15 */
    unsigned metrics_keepalive_s; /* metrics.keepaliveSeconds: sent unchanged at least; 60 */
    drv_label_conf_t labels[DRV_CONFIG_MAX_LABELS]; /* labels: extra node labels */
    size_t n_labels;
} drv_agent_config_t;

/* Fills cfg with the defaults. */
void drv_agent_config_defaults(drv_agent_config_t *cfg);

/* Loads path over the defaults. A missing file is DRV_ERR_NOTFOUND (callers decide whether
 * that is fine); every problem in the file is reported in err, one per line. */
DRV_NODISCARD drv_err_t drv_agent_config_load(const char *path, drv_agent_config_t *cfg,
                                              drv_error_t *err);

/* Same, from text in memory (source names it in errors). */
DRV_NODISCARD drv_err_t drv_agent_config_parse(const char *source, const char *text, size_t len,
                                               drv_agent_config_t *cfg, drv_error_t *err);

/* The registry entry for host, or NULL. */
const drv_registry_conf_t *drv_agent_config_registry(const drv_agent_config_t *cfg,
                                                     const char *host);

#endif
