/* Child processes without a shell: spawn with chosen stdio, run to completion with a deadline
 * and captured (capped) output. The one fork/exec helper of Drover (the agent's crun and CNI
 * calls, the CLI's disk-image tools). The agent blocks SIGCHLD into a signalfd; waiting here
 * for a specific pid is safe because its event loop only reaps with WNOHANG between calls. */
#ifndef DROVER_PROC_H
#define DROVER_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "drover/buf.h"
#include "drover/error.h"

/* Starts argv[0] (looked up in PATH if it has no '/') with stdin/stdout/stderr on the given
 * fds (-1: /dev/null), all other fds closed, signal mask and dispositions reset. */
DRV_API DRV_NODISCARD drv_err_t drv_proc_spawn(char *const argv[], int in_fd, int out_fd,
                                               int err_fd, pid_t *pid, drv_error_t *err);

/* What drv_proc_start runs and how; zero-initialise, then set what differs. */
typedef struct drv_proc_opts {
    char *const *argv; /* argv[0] looked up in PATH if it has no '/' */
    char *const *envp; /* NULL: the caller's environment */
    int in_fd;         /* stdin, stdout, stderr: -1 for /dev/null (set them: 0 is stdin) */
    int out_fd;
    int err_fd;
    bool new_pgroup; /* its own process group (in place before this returns): killed as one */
} drv_proc_opts_t;

/* drv_proc_spawn with options. An exec failure is reported here (DRV_ERR_NOTFOUND for a
 * missing program), with the child already reaped. */
DRV_API DRV_NODISCARD drv_err_t drv_proc_start(const drv_proc_opts_t *o, pid_t *pid,
                                               drv_error_t *err);

/* Runs argv to completion: stdout and stderr go to out (may be NULL: discarded), capped at
 * out->max (the rest is read and dropped). After timeout_ms (0 = no deadline) the child is
 * killed with SIGKILL and DRV_ERR_TIMEOUT returned. *wait_status gets waitpid's status. */
DRV_API DRV_NODISCARD drv_err_t drv_proc_run(char *const argv[], int in_fd, drv_buf_t *out,
                                             unsigned timeout_ms, int *wait_status,
                                             drv_error_t *err);

/* "exit 3", "signal 9 (Killed)" for a wait status. */
DRV_API void drv_proc_describe(int wait_status, char *out, size_t outsz);

/* Monotonic clock in milliseconds. */
DRV_API long long drv_now_ms(void);

#endif
