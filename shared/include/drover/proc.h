/* Child processes without a shell: spawn with chosen stdio, run to completion with a deadline,
 * input fed and output captured (capped). The one fork/exec helper of Drover (the agent's crun,
 * CNI and probe calls, the hub's broker, the CLI's disk-image tools). The agent blocks SIGCHLD into
 * a signalfd; waiting here for a specific pid is safe because its event loop only reaps with
 * WNOHANG between calls. */
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
    bool new_pgroup;  /* its own process group (in place before this returns): killed as one */
    const char *path; /* the program to exec; NULL: argv[0] */
    /* Run as uid/gid without supplementary groups (the caller must be allowed to switch). */
    bool set_ids;
    uid_t uid;
    gid_t gid;
    /* Signal the child gets when the thread that started it ends (PR_SET_PDEATHSIG), set
     * after the user switch (which clears it); 0: none. A caller that has already died by
     * then leaves a child that exits at once instead of running on. */
    int parent_death_signal;
} drv_proc_opts_t;

/* drv_proc_spawn with options. An exec or set-up failure (fds, user switch) is reported here
 * (DRV_ERR_NOTFOUND for a missing program), with the child already reaped. */
DRV_API DRV_NODISCARD drv_err_t drv_proc_start(const drv_proc_opts_t *o, pid_t *pid,
                                               drv_error_t *err);

/* Runs argv to completion: stdout and stderr go to out (may be NULL: discarded), capped at
 * out->max (the rest is read and dropped). After timeout_ms (0 = no deadline) the child is
 * killed with SIGKILL and DRV_ERR_TIMEOUT returned. *wait_status gets waitpid's status. */
DRV_API DRV_NODISCARD drv_err_t drv_proc_run(char *const argv[], int in_fd, drv_buf_t *out,
                                             unsigned timeout_ms, int *wait_status,
                                             drv_error_t *err);

/* What drv_proc_exec feeds a child and collects from it; zero-initialise, then set what
 * differs. The buffers belong to the caller. */
typedef struct drv_proc_io {
    const void *in; /* bytes written to its stdin, then end of file; NULL: the options' in_fd */
    size_t in_len;
    drv_buf_t *out;      /* its stdout, capped at out->max (the rest dropped); NULL: dropped */
    drv_buf_t *errout;   /* its stderr, capped likewise; NULL: into out with stdout */
    bool out_strict;     /* stdout beyond out->max kills the child: DRV_ERR_TOOBIG */
    unsigned timeout_ms; /* 0: no deadline */
} drv_proc_io_t;

/* Runs o->argv to completion with io (o's out_fd and err_fd are replaced by pipes). It ends
 * when the child has exited and its output is read (a grandchild holding the pipes open is
 * not waited for). Past the deadline, or on strict overflow, the child (and its group, with
 * new_pgroup) is killed with SIGKILL and DRV_ERR_TIMEOUT or DRV_ERR_TOOBIG returned. Start
 * failures as drv_proc_start. *wait_status (may be NULL) gets waitpid's status. */
DRV_API DRV_NODISCARD drv_err_t drv_proc_exec(const drv_proc_opts_t *o, const drv_proc_io_t *io,
                                              int *wait_status, drv_error_t *err);

/* "exit 3", "signal 9 (Killed)" for a wait status. */
DRV_API void drv_proc_describe(int wait_status, char *out, size_t outsz);

/* Monotonic clock in milliseconds. */
DRV_API long long drv_now_ms(void);
/* Wall clock: milliseconds since the Unix epoch (for timestamps shown to people and peers;
 * durations use drv_now_ms). */
DRV_API long long drv_wall_ms(void);

#endif
