/* Driving the crun program. The agent is crun's only user on the device: containers live in
 * their own state root (<run_dir>/crun), and run detached with the agent as their subreaper,
 * so that no shim process sits beside each container. */
#ifndef DROVER_AGENT_CRUN_H
#define DROVER_AGENT_CRUN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "drover/error.h"

typedef struct drv_crun {
    char path[256]; /* the crun program */
    char root[300]; /* --root: crun's state directory */
    bool cgroups;   /* false: --cgroup-manager=disabled */
} drv_crun_t;

/* Runs the bundle detached as id: the container's stdout and stderr go to log_fd (appended),
 * stdin is /dev/null. *pid is the container's init process. crun's own messages go to
 * <bundle>/crun.log and are quoted in err on failure. */
DRV_NODISCARD drv_err_t drv_crun_run(const drv_crun_t *c, const char *id, const char *bundle,
                                     int log_fd, pid_t *pid, drv_error_t *err);
/* Sends sig to the container's processes (all of them with all=true). */
DRV_NODISCARD drv_err_t drv_crun_kill(const drv_crun_t *c, const char *id, int sig, bool all,
                                      drv_error_t *err);
/* Forgets a stopped container (force: a running one too, killing it). Unknown ids are fine. */
DRV_NODISCARD drv_err_t drv_crun_delete(const drv_crun_t *c, const char *id, bool force,
                                        drv_error_t *err);

/* What crun knows of id: status "created", "running", "stopped", "paused"; DRV_ERR_NOTFOUND
 * when it knows nothing. */
DRV_NODISCARD drv_err_t drv_crun_state(const drv_crun_t *c, const char *id, char *status,
                                       size_t statussz, pid_t *pid, drv_error_t *err);

/* The argv prefix for `crun --root R [--cgroup-manager=disabled]` (for exec probes); writes
 * up to 4 pointers into argv (pointing into c) and returns how many. */
size_t drv_crun_argv_prefix(const drv_crun_t *c, char **argv);

#endif
