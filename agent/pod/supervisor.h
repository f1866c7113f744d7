/* The pod supervisor: keeps the pods of the desired state running on this device. It pulls
 * their images (in a forked child, so the event loop never blocks on a registry), prepares
 * volumes and the pod sandbox, runs init containers in order and then the app containers
 * with crun, restarts them per restartPolicy with Kubernetes' back-off, runs probes, stops
 * pods that are no longer desired (SIGTERM, then SIGKILL after the grace period), and after
 * an agent restart adopts the containers that are still running instead of recreating them.
 * It is driven by one event loop (daemon.c): tick, child exits, probe completions. */
#ifndef DROVER_AGENT_SUPERVISOR_H
#define DROVER_AGENT_SUPERVISOR_H

#include <stdbool.h>
#include <sys/types.h>
#include <cjson/cJSON.h>

#include "config/config.h"
#include "drover/error.h"

typedef struct drv_supervisor drv_supervisor_t;

/* What the supervisor makes of the host's cgroups at start. */
typedef struct drv_cgroup_verdict {
    bool limits;       /* pods run with cgroup v2 limits */
    bool ready;        /* false: the node reports Ready=False (reason, message), no pod starts */
    char reason[48];   /* "CgroupControllersMissing" when !ready */
    char message[400]; /* why, and what to change ("... add cgroup_enable=memory ... to
                        * cmdline.txt"); with limits off but ready, the note for the status */
} drv_cgroup_verdict_t;

/* The decision, from what the host shows: v2 (/sys/fs/cgroup is cgroup2), controllers (its
 * cgroup.controllers, NULL if unreadable) and proc_cgroups (/proc/cgroups, NULL if
 * unreadable). Limits need the memory, cpu and pids controllers; without them the node is
 * NotReady with reason CgroupControllersMissing (cgroups auto or required), unless cgroups is
 * auto and allowNoCgroups is set (pods then run without limits). cgroups disabled: no limits,
 * ready. */
void drv_supervisor_cgroup_decide(drv_cgroups_mode_t mode, bool allow_no_cgroups, bool v2,
                                  const char *controllers, const char *proc_cgroups,
                                  drv_cgroup_verdict_t *out);

/* cfg must outlive the supervisor. */
DRV_NODISCARD drv_err_t drv_supervisor_new(const drv_agent_config_t *cfg, drv_supervisor_t **out,
                                           drv_error_t *err);
/* Frees memory only: containers keep running (a restarted agent adopts them). */
void drv_supervisor_free(drv_supervisor_t *sv);

/* Replaces the desired state, {"pods": [...], "configMaps": [...], "secrets": [...]} of
 * normalized objects, every pod with metadata.uid set; takes ownership of desired. The state
 * is persisted crash-safely (<state_dir>/desired.json) before it is acted on. */
DRV_NODISCARD drv_err_t drv_supervisor_set_desired(drv_supervisor_t *sv, cJSON *desired,
                                                   drv_error_t *err);

/* Loads the persisted desired state and the pods' runtime records, adopting containers that
 * still run. Called once at start-up, before the first tick. */
DRV_NODISCARD drv_err_t drv_supervisor_restore(drv_supervisor_t *sv, drv_error_t *err);

/* Does what is due at now (monotonic ms): starts, restarts, stops, probes. */
void drv_supervisor_tick(drv_supervisor_t *sv, long long now);
/* A child the agent reaped: a container's init process, a pull child, a probe. */
void drv_supervisor_child_exited(drv_supervisor_t *sv, pid_t pid, int wait_status);
/* How long the event loop may sleep before the next tick is due (ms, at most 1000). */
int drv_supervisor_next_wakeup(drv_supervisor_t *sv, long long now);
/* Waits for work: probe I/O, the given fds, or the timeout (wraps the prober's poll). Returns
 * the number of extra fds that are readable (their revents are set), or -1 on error. */
int drv_supervisor_wait(drv_supervisor_t *sv, int *fds, short *revents, unsigned nfds,
                        int timeout_ms);

/* The observed state: node and pods, Kubernetes-shaped (see README). Caller frees. */
cJSON *drv_supervisor_status(drv_supervisor_t *sv);

/* True when the status changed since the last call (so that it is written only then). */
bool drv_supervisor_status_dirty(drv_supervisor_t *sv);

/* The oldest Event (core/v1, drv_proto_event_build: FailedPostStartHook, FailedPreStopHook)
 * not yet taken, NULL when none; the caller owns it. At most 64 wait; older ones are dropped. */
cJSON *drv_supervisor_take_event(drv_supervisor_t *sv);

/* How many pods the supervisor holds: desired ones and those still stopping. */
size_t drv_supervisor_pod_count(const drv_supervisor_t *sv);

#endif
