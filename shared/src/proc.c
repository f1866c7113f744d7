/* Child processes without a shell (see proc.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/proc.h"

long long drv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void drv_proc_describe(int st, char *out, size_t outsz)
{
    if (WIFEXITED(st))
        drv_fmt_cut(out, outsz, "exit %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        drv_fmt_cut(out, outsz, "signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        drv_fmt_cut(out, outsz, "status 0x%x", st);
}

/* In the child: put fd on target (or /dev/null), without closing it when it is already there. */
static int dup_to(int fd, int target)
{
    if (fd < 0) {
        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (fd < 0)
            return -1;
    }
    if (fd == target)
        return fcntl(fd, F_SETFD, 0); /* keep it across exec */
    return dup2(fd, target) < 0 ? -1 : 0;
}

drv_err_t drv_proc_spawn(char *const argv[], int in_fd, int out_fd, int err_fd, pid_t *pid,
                         drv_error_t *err)
{
    drv_proc_opts_t o = {.argv = argv, .in_fd = in_fd, .out_fd = out_fd, .err_fd = err_fd};
    return drv_proc_start(&o, pid, err);
}

drv_err_t drv_proc_start(const drv_proc_opts_t *o, pid_t *pid, drv_error_t *err)
{
    char *const *argv = o->argv;
    if (argv == NULL || argv[0] == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "run: no program");
    /* The child reports an exec failure through a close-on-exec pipe. */
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "pipe");
    pid_t p = fork();
    if (p < 0) {
        int e = errno;
        close(pfd[0]);
        close(pfd[1]);
        return drv_error_set(err, DRV_ERR_IO, e, "fork %s", argv[0]);
    }
    if (p == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int s = 1; s < NSIG; s++)
            signal(s, SIG_DFL);
        /* Move the wanted fds above 2 first so that dup2 onto 0..2 cannot clobber them. */
        int fds[3] = {o->in_fd, o->out_fd, o->err_fd};
        for (int i = 0; i < 3; i++)
            if (fds[i] >= 0 && fds[i] <= 2)
                fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
        int e = 0;
        if (o->new_pgroup && setpgid(0, 0) != 0)
            e = errno;
        for (int i = 0; i < 3 && !e; i++)
            if (dup_to(fds[i], i) != 0)
                e = errno;
        if (!e) {
            /* Close everything else: the child must not hold the agent's sockets or pidfds. */
            if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
                for (int fd = 3; fd < 1024; fd++)
                    if (fd != pfd[1])
                        fcntl(fd, F_SETFD, FD_CLOEXEC);
            }
            if (o->envp != NULL)
                execvpe(argv[0], argv, o->envp);
            else
                execvp(argv[0], argv);
            e = errno;
        }
        ssize_t w = write(pfd[1], &e, sizeof(e));
        (void)w;
        _exit(127);
    }
    close(pfd[1]);
    int child_errno = 0;
    ssize_t n;
    do
        n = read(pfd[0], &child_errno, sizeof(child_errno));
    while (n < 0 && errno == EINTR);
    close(pfd[0]);
    if (n == sizeof(child_errno)) {
        waitpid(p, NULL, 0);
        return drv_error_set(err, child_errno == ENOENT ? DRV_ERR_NOTFOUND : DRV_ERR_IO,
                             child_errno, "exec %s", argv[0]);
    }
    *pid = p;
    return DRV_OK;
}

drv_err_t drv_proc_run(char *const argv[], int in_fd, drv_buf_t *out, unsigned timeout_ms,
                       int *wait_status, drv_error_t *err)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "pipe");
    pid_t pid;
    drv_err_t r = drv_proc_spawn(argv, in_fd, pfd[1], pfd[1], &pid, err);
    close(pfd[1]);
    if (r != DRV_OK) {
        close(pfd[0]);
        return r;
    }
    /* Watch the child itself too: a grandchild that inherited the pipe (a daemonizing
     * program) must not keep us waiting for an end of file that never comes. */
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    long long deadline = timeout_ms ? drv_now_ms() + timeout_ms : 0;
    bool timed_out = false, exited = false;
    char chunk[4096];
    fcntl(pfd[0], F_SETFL, O_NONBLOCK);
    for (;;) {
        int wait_ms = -1;
        if (deadline) {
            long long left = deadline - drv_now_ms();
            if (left <= 0) {
                timed_out = true;
                kill(pid, SIGKILL);
                break;
            }
            wait_ms = (int)left;
        }
        struct pollfd p[2] = {{pfd[0], POLLIN, 0}, {pidfd, POLLIN, 0}};
        int pr = poll(p, pidfd >= 0 && !exited ? 2 : 1, exited ? 0 : wait_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pidfd >= 0 && (p[1].revents & POLLIN))
            exited = true;
        ssize_t n = read(pfd[0], chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (exited)
                break; /* the child is gone and nothing more is buffered */
            continue;
        }
        if (n <= 0)
            break;
        if (out && out->len < out->max) {
            size_t room = out->max - out->len;
            (void)!drv_buf_append(out, chunk, (size_t)n < room ? (size_t)n : room);
        }
    }
    if (pidfd >= 0)
        close(pidfd);
    close(pfd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (wait_status)
        *wait_status = st;
    if (timed_out)
        return drv_error_set(err, DRV_ERR_TIMEOUT, 0, "%s: no answer within %u ms", argv[0],
                             timeout_ms);
    return DRV_OK;
}
