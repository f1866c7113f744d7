/* Child processes without a shell (see proc.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <limits.h>
#include <sys/prctl.h>
#include <sys/socket.h>
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

long long drv_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
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

/* What the child reports through its close-on-exec pipe when it cannot exec. */
enum child_stage { STAGE_FDS, STAGE_IDS, STAGE_EXEC };
struct child_fail {
    int stage;
    int errnum;
};

drv_err_t drv_proc_start(const drv_proc_opts_t *o, pid_t *pid, drv_error_t *err)
{
    char *const *argv = o->argv;
    if (argv == NULL || argv[0] == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "run: no program");
    const char *prog = o->path != NULL ? o->path : argv[0];
    /* The child reports an exec failure through a close-on-exec pipe. */
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "pipe");
    pid_t parent = getpid();
    pid_t p = fork();
    if (p < 0) {
        int e = errno;
        close(pfd[0]);
        close(pfd[1]);
        return drv_error_set(err, DRV_ERR_IO, e, "fork %s", prog);
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
        struct child_fail f = {STAGE_FDS, 0};
        if (o->new_pgroup && setpgid(0, 0) != 0)
            f.errnum = errno;
        for (int i = 0; i < 3 && !f.errnum; i++)
            if (dup_to(fds[i], i) != 0)
                f.errnum = errno;
        if (!f.errnum) {
            /* Close everything else: the child must not hold the agent's sockets or pidfds. */
            if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
                for (int fd = 3; fd < 1024; fd++)
                    if (fd != pfd[1])
                        fcntl(fd, F_SETFD, FD_CLOEXEC);
            }
            f.stage = STAGE_IDS;
            if (o->set_ids &&
                (setgroups(0, NULL) != 0 || setgid(o->gid) != 0 || setuid(o->uid) != 0))
                f.errnum = errno;
        }
        if (!f.errnum && o->parent_death_signal != 0) {
            prctl(PR_SET_PDEATHSIG, o->parent_death_signal);
            if (getppid() != parent)
                _exit(0); /* the caller died before the signal was armed */
        }
        if (!f.errnum) {
            f.stage = STAGE_EXEC;
            if (o->envp != NULL)
                execvpe(prog, argv, o->envp);
            else
                execvp(prog, argv);
            f.errnum = errno;
        }
        ssize_t w = write(pfd[1], &f, sizeof(f));
        (void)w;
        _exit(127);
    }
    close(pfd[1]);
    struct child_fail f = {0, 0};
    ssize_t n;
    do
        n = read(pfd[0], &f, sizeof(f));
    while (n < 0 && errno == EINTR);
    close(pfd[0]);
    if (n == sizeof(f)) {
        waitpid(p, NULL, 0);
        if (f.stage == STAGE_IDS)
            return drv_error_set(err, DRV_ERR_PERM, f.errnum, "run %s as uid %u gid %u", prog,
                                 (unsigned)o->uid, (unsigned)o->gid);
        if (f.stage == STAGE_FDS)
            return drv_error_set(err, DRV_ERR_IO, f.errnum, "run %s: set up its stdio", prog);
        return drv_error_set(err, f.errnum == ENOENT ? DRV_ERR_NOTFOUND : DRV_ERR_IO, f.errnum,
                             "exec %s", prog);
    }
    *pid = p;
    return DRV_OK;
}

drv_err_t drv_proc_run(char *const argv[], int in_fd, drv_buf_t *out, unsigned timeout_ms,
                       int *wait_status, drv_error_t *err)
{
    drv_proc_opts_t o = {.argv = argv, .in_fd = in_fd, .out_fd = -1, .err_fd = -1};
    drv_proc_io_t io = {.out = out, .timeout_ms = timeout_ms};
    return drv_proc_exec(&o, &io, wait_status, err);
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* One output stream of the child: its pipe and where it goes. */
struct stream {
    int fd; /* -1 once at end of file */
    drv_buf_t *buf;
    bool strict;
};

enum read_result { READ_DATA, READ_AGAIN, READ_END, READ_OVER };

/* Reads one chunk of s into its buffer (capped, or READ_OVER when strict). */
static enum read_result stream_read(struct stream *s)
{
    char chunk[4096];
    ssize_t n = read(s->fd, chunk, sizeof(chunk));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return READ_AGAIN;
    if (n <= 0) {
        close_fd(&s->fd);
        return READ_END;
    }
    drv_buf_t *b = s->buf;
    if (b == NULL)
        return READ_DATA;
    size_t room = b->max - b->len;
    if ((size_t)n > room && s->strict)
        return READ_OVER;
    if (room > 0)
        (void)!drv_buf_append(b, chunk, (size_t)n < room ? (size_t)n : room);
    return READ_DATA;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

drv_err_t drv_proc_exec(const drv_proc_opts_t *o, const drv_proc_io_t *io, int *wait_status,
                        drv_error_t *err)
{
    if (o == NULL || io == NULL || o->argv == NULL || o->argv[0] == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "run: no program");
    const char *prog = o->path != NULL ? o->path : o->argv[0];
    /* stdin through a socket, so that a child that stops reading gives EPIPE without SIGPIPE
     * (send's MSG_NOSIGNAL), whatever the caller's disposition. */
    int inp[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1};
    bool feed = io->in != NULL;
    if ((feed && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, inp) != 0) ||
        pipe2(outp, O_CLOEXEC) != 0 || (io->errout != NULL && pipe2(errp, O_CLOEXEC) != 0)) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            close_fd(&inp[i]);
            close_fd(&outp[i]);
            close_fd(&errp[i]);
        }
        return drv_error_set(err, DRV_ERR_IO, e, "run %s: pipes", prog);
    }
    drv_proc_opts_t so = *o;
    so.in_fd = feed ? inp[1] : o->in_fd;
    so.out_fd = outp[1];
    so.err_fd = io->errout != NULL ? errp[1] : outp[1];
    pid_t pid;
    drv_err_t r = drv_proc_start(&so, &pid, err);
    close_fd(&inp[1]);
    close_fd(&outp[1]);
    close_fd(&errp[1]);
    if (r != DRV_OK) {
        close_fd(&inp[0]);
        close_fd(&outp[0]);
        close_fd(&errp[0]);
        return r;
    }

    /* Watch the child itself too: a grandchild that inherited the pipes (a daemonizing
     * program) must not keep us waiting for an end of file that never comes. */
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    long long deadline = io->timeout_ms ? drv_now_ms() + io->timeout_ms : 0;
    int in_fd = inp[0];
    size_t in_off = 0;
    if (in_fd >= 0 && io->in_len == 0)
        close_fd(&in_fd);
    struct stream st[2] = {{outp[0], io->out, io->out_strict}, {errp[0], io->errout, false}};
    for (int i = 0; i < 2; i++)
        if (st[i].fd >= 0)
            fcntl(st[i].fd, F_SETFL, O_NONBLOCK);
    bool timed_out = false, over = false, exited = false;
    for (;;) {
        if (exited) {
            /* Gone: take what it left in the pipes, without waiting for their end. */
            for (int i = 0; i < 2 && !over; i++) {
                enum read_result rr = READ_DATA;
                while (st[i].fd >= 0 && rr == READ_DATA)
                    rr = stream_read(&st[i]);
                over = rr == READ_OVER;
            }
            break;
        }
        if (pidfd < 0 && in_fd < 0 && st[0].fd < 0 && st[1].fd < 0)
            break; /* no pidfd (an old kernel): the end of the pipes has to do */
        int wait_ms = -1;
        if (deadline) {
            long long left = deadline - drv_now_ms();
            if (left <= 0) {
                timed_out = true;
                break;
            }
            wait_ms = left > INT_MAX ? INT_MAX : (int)left;
        }
        struct pollfd p[4];
        int np = 0, ip_in = -1, ip_st[2] = {-1, -1}, ip_pid = -1;
        if (in_fd >= 0) {
            ip_in = np;
            p[np++] = (struct pollfd){in_fd, POLLOUT, 0};
        }
        for (int i = 0; i < 2; i++) {
            if (st[i].fd >= 0) {
                ip_st[i] = np;
                p[np++] = (struct pollfd){st[i].fd, POLLIN, 0};
            }
        }
        if (pidfd >= 0) {
            ip_pid = np;
            p[np++] = (struct pollfd){pidfd, POLLIN, 0};
        }
        if (poll(p, (nfds_t)np, wait_ms) < 0) {
            if (errno == EINTR)
                continue;
            r = drv_error_set(err, DRV_ERR_IO, errno, "run %s: poll", prog);
            break;
        }
        if (ip_in >= 0 && p[ip_in].revents) {
            const char *in = io->in;
            ssize_t w = send(in_fd, in + in_off, io->in_len - in_off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                in_off += (size_t)w;
            /* A child that exits without reading all of its stdin is its own business: its
             * exit status and output decide. */
            if (in_off == io->in_len || (w < 0 && errno != EAGAIN && errno != EINTR))
                close_fd(&in_fd);
        }
        for (int i = 0; i < 2 && !over; i++)
            if (ip_st[i] >= 0 && p[ip_st[i]].revents)
                over = stream_read(&st[i]) == READ_OVER;
        if (over)
            break;
        if (ip_pid >= 0 && (p[ip_pid].revents & POLLIN))
            exited = true;
    }
    close_fd(&in_fd);
    close_fd(&st[0].fd);
    close_fd(&st[1].fd);
    if (pidfd >= 0)
        close(pidfd);

    /* Without a pidfd the child may still run after closing its pipes: wait out the rest of
     * the deadline for it. */
    int status = 0;
    bool reaped = false;
    while (!exited && !timed_out && !over && r == DRV_OK) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            reaped = true;
            break;
        }
        if (w < 0 && errno != EINTR)
            break;
        if (deadline && drv_now_ms() >= deadline)
            timed_out = true;
        else
            sleep_ms(5);
    }
    if (timed_out || over || r != DRV_OK) {
        if (o->new_pgroup)
            kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
    }
    if (!reaped)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    if (wait_status)
        *wait_status = status;
    if (r != DRV_OK)
        return r;
    if (timed_out)
        return drv_error_set(err, DRV_ERR_TIMEOUT, 0, "%s: no answer within %u ms", prog,
                             io->timeout_ms);
    if (over)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: output over the %zu byte limit", prog,
                             io->out->max);
    return DRV_OK;
}
