/* Private to the supervisor: how it uses the runtime modules (volumes, sandbox, rootfs,
 * spec, probes) and the host (node facts, usage, log files). Kept apart so that
 * supervisor.c reads as the pod life cycle and nothing else. */
#ifndef DROVER_AGENT_POD_HOST_H
#define DROVER_AGENT_POD_HOST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <cjson/cJSON.h>

#include "config/config.h"
#include "drover/error.h"
#include "image/store.h"
#include "pod/pod.h"
#include "runtime/cni.h"
#include "runtime/seccomp.h"

struct drv_supervisor;
struct drv_prober;
struct pod_net;

/* fds one pod_host_wait watches: the daemon's and the DNS server's. */
#define POD_HOST_WAIT_FDS 40

typedef struct pod_host {
    struct drv_supervisor *sv;
    const drv_agent_config_t *cfg;
    drv_cni_config_t cni;
    char cni_state[300];
    drv_seccomp_profile_t *seccomp; /* loaded once */
    struct drv_prober *prober;
    char crun_path[256], crun_root[300];
    bool crun_cgroups;
    char host_ip[64];
    bool cgroups;
    const struct pod_net *net; /* the supervisor's (resolv.conf) */
    /* PersistentVolumeClaims (pod/pvc.h): the desired state's persistentVolumes (borrowed
     * from the supervisor's desired state, set at each apply), the storage directory, and the
     * Released volumes removed, for the status report (owned). */
    const cJSON *pvs;
    char storage_dir[256];
    cJSON *pvc_removed;
    long long pvc_last; /* ms of the last look for Released volumes */
} pod_host_t;

DRV_NODISCARD drv_err_t pod_host_init(pod_host_t *g, struct drv_supervisor *sv,
                                      const drv_agent_config_t *cfg, bool cgroups,
                                      drv_error_t *err);
void pod_host_fini(pod_host_t *g);

/* The node's address: the first IPv4 address of an interface that is up, not loopback and not
 * skip_if (the pod bridge) nor skip_if2 (the WireGuard interface), into out (>= 16 bytes); ""
 * when none. Pods' status.hostIP, and podIP under hostNetwork. */
void pod_host_internal_ip(const char *skip_if, const char *skip_if2, char *out, size_t outsz);

DRV_NODISCARD drv_err_t pod_host_volumes_prepare(pod_host_t *g, pod_t *p, const cJSON *configmaps,
                                                 const cJSON *secrets, drv_error_t *err);
/* Brings a running pod's configMap and secret volumes up to date (atomic swap, no-op when
 * unchanged), as the kubelet does when the objects change. */
DRV_NODISCARD drv_err_t pod_host_volumes_update(pod_host_t *g, pod_t *p, const cJSON *configmaps,
                                                const cJSON *secrets, drv_error_t *err);
DRV_NODISCARD drv_err_t pod_host_volumes_teardown(pod_host_t *g, pod_t *p, drv_error_t *err);

DRV_NODISCARD drv_err_t pod_host_sandbox_create(pod_host_t *g, pod_t *p, drv_error_t *err);
DRV_NODISCARD drv_err_t pod_host_sandbox_load(pod_host_t *g, pod_t *p, drv_error_t *err);
DRV_NODISCARD drv_err_t pod_host_sandbox_destroy(pod_host_t *g, pod_t *p, drv_error_t *err);

/* Where a container's files live: its rootfs overlay (image layers, writable layer) on disk
 * under the pod's directory, <state_dir>/pods/<uid>/containers/<name>; its crun bundle
 * (config.json, which holds env values taken from Secrets, and crun.log) on tmpfs,
 * <run_dir>/bundles/<uid>/<name>: rebuilt at every start, so a power cut loses nothing. A path
 * that does not fit out is DRV_ERR_TOOBIG. */
DRV_NODISCARD drv_err_t pod_host_rootfs_dir(const pod_t *p, const ctr_t *c, char *out, size_t outsz,
                                            drv_error_t *err);
DRV_NODISCARD drv_err_t pod_host_bundle_dir(const pod_host_t *g, const pod_t *p, const ctr_t *c,
                                            char *out, size_t outsz, drv_error_t *err);
/* Removes <run_dir>/bundles/<uid>. */
void pod_host_bundles_remove(const pod_host_t *g, const pod_t *p);

/* Resolves the image, mounts the rootfs (in pod_host_rootfs_dir) and writes
 * <bundle>/config.json (0600; bundle is pod_host_bundle_dir, on tmpfs). */
DRV_NODISCARD drv_err_t pod_host_container_prepare(pod_host_t *g, drv_store_t *store, pod_t *p,
                                                   ctr_t *c, const char *bundle, bool cgroups,
                                                   const cJSON *configmaps, const cJSON *secrets,
                                                   drv_error_t *err);
DRV_NODISCARD drv_err_t pod_host_container_release(pod_host_t *g, pod_t *p, ctr_t *c,
                                                   drv_error_t *err);

/* Probes. */
void pod_host_probes_reset(pod_host_t *g, ctr_t *c, long long now);
void pod_host_probes_cancel(pod_host_t *g, ctr_t *c);
void pod_host_probes_free(pod_host_t *g, ctr_t *c);
void pod_host_probes_tick(pod_host_t *g, struct drv_supervisor *sv, long long now);
/* Lets probes' exec children run `crun exec` against the agent's crun root. */
DRV_NODISCARD drv_err_t pod_host_set_crun(pod_host_t *g, const char *path, const char *root,
                                          bool cgroups, drv_error_t *err);
/* Whether the kernel's OOM killer killed a process of container c since its cgroup was made
 * (oom_kill in its memory.events); read after it exited, before it is deleted. */
bool pod_host_container_oom_killed(const pod_t *p, const ctr_t *c);
bool pod_host_probe_child_exited(pod_host_t *g, pid_t pid, int status);
/* Starts container c's lifecycle hook handler (exec in the container, or httpGet to the pod IP
 * unless it names a host) through the prober; its outcome lands in c->hook_result and
 * c->hook_detail. timeout_ms bounds it. */
DRV_NODISCARD drv_err_t pod_host_hook_start(pod_host_t *g, pod_t *p, ctr_t *c, const cJSON *handler,
                                            int64_t timeout_ms, drv_error_t *err);
/* Drops c's hook attempt, if any, without an outcome. */
void pod_host_hook_cancel(pod_host_t *g, ctr_t *c);
void pod_host_probe_status(const ctr_t *c, cJSON *container_status);
int pod_host_wait(pod_host_t *g, int *fds, short *revents, unsigned nfds, int timeout_ms);

/* Host. */
void pod_host_rotate_log(const char *path, uint64_t max_bytes, unsigned max_files);
void pod_host_sample_usage(pod_t **pods, size_t n, long long now);
cJSON *pod_host_node_status(const drv_agent_config_t *cfg);

/* supervisor.c */
void drv_supervisor_mark_dirty(struct drv_supervisor *sv);
/* Iterates pods for the probes (pod/host.c). */
size_t drv_supervisor_pods(struct drv_supervisor *sv, pod_t ***pods);

#endif
