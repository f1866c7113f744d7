/* Tests for durable files: atomic replacement that never leaves a mix or a stray temporary,
 * size-capped reads from files and pipes, quarantine, mkdir -p and directory sync. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drover/file.h"

struct fixture {
    char dir[64];
    char path[256];
};

static int rm_entry(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    chmod(p, 0700);
    return remove(p);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/drover-test-file-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/state.json", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    chmod(f->dir, 0700);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void write_plain(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static char *slurp(const char *path)
{
    char *out = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_read_capped(path, 1 << 20, &out, NULL, &err), DRV_OK);
    return out;
}

/* Number of entries in dir whose name contains ".tmp." */
static int count_temps(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static void test_write_then_read(void **state)
{
    struct fixture *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_write_atomic(f->path, "{\"v\":1}", 7, 0600, &err), DRV_OK);
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(drv_file_read_capped(f->path, 100, &out, &len, &err), DRV_OK);
    assert_int_equal(len, 7);
    assert_string_equal(out, "{\"v\":1}");
    free(out);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(count_temps(f->dir), 0);
}

static void test_write_replaces_and_leaves_no_temp(void **state)
{
    struct fixture *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    write_plain(f->path, "old contents that are longer", 28);
    assert_int_equal(drv_file_write_atomic(f->path, "new", 3, 0644, &err), DRV_OK);
    char *s = slurp(f->path);
    assert_string_equal(s, "new");
    free(s);
    /* empty contents are fine too */
    assert_int_equal(drv_file_write_atomic(f->path, NULL, 0, 0644, &err), DRV_OK);
    s = slurp(f->path);
    assert_string_equal(s, "");
    free(s);
    assert_int_equal(count_temps(f->dir), 0);
}

static void test_write_stale_temp_is_replaced(void **state)
{
    struct fixture *f = *state;
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", f->path, (long)getpid());
    /* a crashed earlier run with our pid, or a planted symlink: neither is followed */
    assert_int_equal(symlink("/etc/hostname", tmp), 0);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_write_atomic(f->path, "fresh", 5, 0644, &err), DRV_OK);
    char *s = slurp(f->path);
    assert_string_equal(s, "fresh");
    free(s);
    struct stat st;
    assert_int_equal(lstat(f->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(count_temps(f->dir), 0);
}

static void test_write_missing_dir(void **state)
{
    struct fixture *f = *state;
    char p[300];
    snprintf(p, sizeof(p), "%s/nope/state.json", f->dir);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_write_atomic(p, "x", 1, 0644, &err), DRV_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, p));
    assert_non_null(strstr(err.msg, "No such file or directory"));
    assert_int_equal(err.sys_errno, ENOENT);
}

/* Calls drv_file_write_atomic(path, "new") as an unprivileged user when we are root (root
 * ignores directory permissions), in a child; returns its result code. */
static drv_err_t write_new_unprivileged(const char *path)
{
    if (geteuid() != 0) {
        drv_error_t err = DRV_ERROR_INIT;
        return drv_file_write_atomic(path, "new", 3, 0644, &err);
    }
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(100);
        drv_error_t err = DRV_ERROR_INIT;
        _exit((int)drv_file_write_atomic(path, "new", 3, 0644, &err));
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 100);
    return (drv_err_t)WEXITSTATUS(status);
}

static void test_write_readonly_dir_keeps_old(void **state)
{
    struct fixture *f = *state;
    write_plain(f->path, "old", 3);
    assert_int_equal(chmod(f->dir, 0555), 0);
    drv_err_t rc = write_new_unprivileged(f->path);
    assert_int_equal(chmod(f->dir, 0700), 0);
    assert_int_equal(rc, DRV_ERR_PERM);
    char *s = slurp(f->path);
    assert_string_equal(s, "old");
    free(s);
    assert_int_equal(count_temps(f->dir), 0);
}

/* A write that fails midway (file size limit: EFBIG, as a full disk would give ENOSPC)
 * leaves the old contents and no temporary behind. Works as root too. */
static void test_write_failure_keeps_old(void **state)
{
    struct fixture *f = *state;
    write_plain(f->path, "old", 3);
    size_t n = 64 * 1024;
    char *data = malloc(n);
    assert_non_null(data);
    memset(data, 'n', n);

    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_sa;
    assert_int_equal(sigaction(SIGXFSZ, &ign, &old_sa), 0);
    struct rlimit lim = {4096, saved.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);

    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_file_write_atomic(f->path, data, n, 0644, &err);

    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    assert_int_equal(sigaction(SIGXFSZ, &old_sa, NULL), 0);

    assert_int_equal(rc, DRV_ERR_IO);
    assert_int_equal(err.sys_errno, EFBIG);
    assert_non_null(strstr(err.msg, "write"));
    char *s = slurp(f->path);
    assert_string_equal(s, "old");
    free(s);
    assert_int_equal(count_temps(f->dir), 0);
    free(data);
}

static void test_write_over_directory_fails_cleanly(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(mkdir(f->path, 0755), 0);
    char inner[300];
    snprintf(inner, sizeof(inner), "%s/keep", f->path);
    write_plain(inner, "k", 1);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_not_equal(drv_file_write_atomic(f->path, "x", 1, 0644, &err), DRV_OK);
    assert_non_null(strstr(err.msg, "rename"));
    assert_int_equal(count_temps(f->dir), 0);
    char *s = slurp(inner);
    assert_string_equal(s, "k");
    free(s);

    assert_int_equal(drv_file_write_atomic("", "x", 1, 0644, &err), DRV_ERR_INVALID);
    assert_int_equal(drv_file_write_atomic(NULL, "x", 1, 0644, &err), DRV_ERR_INVALID);
    assert_int_equal(drv_file_write_atomic(f->path, NULL, 1, 0644, &err), DRV_ERR_INVALID);
}

static void test_read_too_big_refused(void **state)
{
    struct fixture *f = *state;
    size_t n = 2 * 1024 * 1024;
    char *data = calloc(1, n);
    assert_non_null(data);
    write_plain(f->path, data, n);
    free(data);
    char *out = (char *)0x1; /* must stay untouched */
    size_t len = 77;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_read_capped(f->path, 1024 * 1024, &out, &len, &err), DRV_ERR_TOOBIG);
    assert_ptr_equal(out, (char *)0x1);
    assert_int_equal(len, 77);
    assert_non_null(strstr(err.msg, f->path));
    assert_non_null(strstr(err.msg, "maximum"));
}

/* A sparse file of a terabyte is refused from its size alone, at once: reading it up to the
 * cap first would take a while and allocate the cap. */
static void test_read_size_checked_before_allocation(void **state)
{
    struct fixture *f = *state;
    int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    if (ftruncate(fd, (off_t)1 << 40) != 0) {
        close(fd);
        skip(); /* the file system has no sparse files */
    }
    close(fd);
    char *out = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_read_capped(f->path, 1 << 20, &out, NULL, &err), DRV_ERR_TOOBIG);
    assert_null(out);
}

static void test_read_exact_max_and_empty(void **state)
{
    struct fixture *f = *state;
    write_plain(f->path, "12345", 5);
    char *out = NULL;
    size_t len = 0;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_read_capped(f->path, 5, &out, &len, &err), DRV_OK);
    assert_string_equal(out, "12345");
    assert_int_equal(len, 5);
    free(out);
    out = NULL;
    assert_int_equal(drv_file_read_capped(f->path, 4, &out, &len, &err), DRV_ERR_TOOBIG);
    assert_null(out);

    write_plain(f->path, "", 0);
    assert_int_equal(drv_file_read_capped(f->path, 0, &out, &len, &err), DRV_OK);
    assert_string_equal(out, "");
    assert_int_equal(len, 0);
    free(out);
}

static void test_read_missing_and_directory(void **state)
{
    struct fixture *f = *state;
    char *out = (char *)0x1;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_read_capped(f->path, 100, &out, NULL, &err), DRV_ERR_NOTFOUND);
    assert_ptr_equal(out, (char *)0x1);
    assert_non_null(strstr(err.msg, f->path));
    assert_int_equal(drv_file_read_capped(f->dir, 100, &out, NULL, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "directory"));
    assert_ptr_equal(out, (char *)0x1);
    assert_int_equal(drv_file_read_capped("", 100, &out, NULL, &err), DRV_ERR_INVALID);
    assert_int_equal(drv_file_read_fd_capped(-1, 100, &out, NULL, &err), DRV_ERR_INVALID);
}

/* Forks a writer that puts n bytes of 'p' into a pipe; returns the read end. */
static int pipe_from_child(size_t n, pid_t *pid)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    *pid = fork();
    assert_true(*pid >= 0);
    if (*pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        close(fds[0]);
        char chunk[4096];
        memset(chunk, 'p', sizeof(chunk));
        while (n > 0) {
            size_t k = n < sizeof(chunk) ? n : sizeof(chunk);
            ssize_t w = write(fds[1], chunk, k);
            if (w <= 0)
                _exit(1);
            n -= (size_t)w;
        }
        _exit(0);
    }
    close(fds[1]);
    return fds[0];
}

static void test_read_from_pipe(void **state)
{
    (void)state;
    /* larger than the first allocation for unknown sizes */
    size_t n = 300 * 1000;
    pid_t pid;
    int fd = pipe_from_child(n, &pid);
    char *out = NULL;
    size_t len = 0;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_read_fd_capped(fd, 1 << 20, &out, &len, &err), DRV_OK);
    assert_int_equal(len, n);
    assert_int_equal(out[0], 'p');
    assert_int_equal(out[n - 1], 'p');
    assert_int_equal(out[n], '\0');
    free(out);
    /* the descriptor stays open */
    assert_true(fcntl(fd, F_GETFD) >= 0);
    close(fd);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
}

static void test_read_pipe_over_max(void **state)
{
    (void)state;
    pid_t pid;
    int fd = pipe_from_child(200 * 1000, &pid);
    char *out = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_read_fd_capped(fd, 100 * 1000, &out, NULL, &err), DRV_ERR_TOOBIG);
    assert_null(out);
    close(fd); /* the writer gets SIGPIPE */
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);

    /* exactly max through a pipe is fine */
    fd = pipe_from_child(1000, &pid);
    size_t len = 0;
    assert_int_equal(drv_file_read_fd_capped(fd, 1000, &out, &len, &err), DRV_OK);
    assert_int_equal(len, 1000);
    free(out);
    close(fd);
    assert_int_equal(waitpid(pid, &status, 0), pid);
}

static void test_read_char_device(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 9;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_read_capped("/dev/null", 10, &out, &len, &err), DRV_OK);
    assert_int_equal(len, 0);
    assert_string_equal(out, "");
    free(out);
    out = NULL;
    /* an endless device stops at max */
    assert_int_equal(drv_file_read_capped("/dev/zero", 100000, &out, &len, &err), DRV_ERR_TOOBIG);
    assert_null(out);
}

static void test_quarantine(void **state)
{
    struct fixture *f = *state;
    char bad[300];
    snprintf(bad, sizeof(bad), "%s.bad", f->path);
    write_plain(bad, "older corruption", 16);
    write_plain(f->path, "{corrupt", 8);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_quarantine(f->path, &err), DRV_OK);
    assert_int_equal(access(f->path, F_OK), -1);
    char *s = slurp(bad);
    assert_string_equal(s, "{corrupt");
    free(s);
    assert_int_equal(drv_file_quarantine(f->path, &err), DRV_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, f->path));
    assert_int_equal(drv_file_quarantine("", &err), DRV_ERR_INVALID);
}

static void test_mkdir_p(void **state)
{
    struct fixture *f = *state;
    char p[300];
    snprintf(p, sizeof(p), "%s/a/b//c/d/", f->dir);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_mkdir_p(p, 0750, &err), DRV_OK);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* again: existing directories are fine */
    assert_int_equal(drv_file_mkdir_p(p, 0750, &err), DRV_OK);
    assert_int_equal(drv_file_mkdir_p("/", 0750, &err), DRV_OK);
    assert_int_equal(drv_file_mkdir_p(f->dir, 0750, &err), DRV_OK);

    /* a file in the way */
    write_plain(f->path, "x", 1);
    snprintf(p, sizeof(p), "%s/sub", f->path);
    assert_int_not_equal(drv_file_mkdir_p(p, 0750, &err), DRV_OK);
    assert_non_null(strstr(err.msg, f->path));
    assert_int_equal(drv_file_mkdir_p(f->path, 0750, &err), DRV_ERR_EXISTS);
    assert_non_null(strstr(err.msg, "not a directory"));
    assert_int_equal(drv_file_mkdir_p("", 0750, &err), DRV_ERR_INVALID);
}

/* The unsynced variant makes the same directories and keeps the same errors. */
static void test_mkdir_p_unsynced(void **state)
{
    struct fixture *f = *state;
    char p[300];
    snprintf(p, sizeof(p), "%s/u/v//w/", f->dir);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_mkdir_p_unsynced(p, 0700, &err), DRV_OK);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(drv_file_mkdir_p_unsynced(p, 0700, &err), DRV_OK);
    write_plain(f->path, "x", 1);
    assert_int_equal(drv_file_mkdir_p_unsynced(f->path, 0700, &err), DRV_ERR_EXISTS);
    assert_int_equal(drv_file_mkdir_p_unsynced("", 0700, &err), DRV_ERR_INVALID);
}

static void test_mkdir_relative_and_sync_dir(void **state)
{
    struct fixture *f = *state;
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(f->dir), 0);
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc1 = drv_file_mkdir_p("rel/x", 0755, &err);
    drv_err_t rc2 = drv_file_sync_dir_of("plainname", &err);
    drv_err_t rc3 = drv_file_sync_dir_of("rel/x/file", &err);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc1, DRV_OK);
    assert_int_equal(rc2, DRV_OK);
    assert_int_equal(rc3, DRV_OK);

    assert_int_equal(drv_file_sync_dir_of("/etc", &err), DRV_OK);
    char p[300];
    snprintf(p, sizeof(p), "%s/missing/file", f->dir);
    assert_int_equal(drv_file_sync_dir_of(p, &err), DRV_ERR_NOTFOUND);
    assert_int_equal(drv_file_sync_dir_of("", &err), DRV_ERR_INVALID);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_write_then_read),
        T(test_write_replaces_and_leaves_no_temp),
        T(test_write_stale_temp_is_replaced),
        T(test_write_missing_dir),
        T(test_write_readonly_dir_keeps_old),
        T(test_write_failure_keeps_old),
        T(test_write_over_directory_fails_cleanly),
        T(test_read_too_big_refused),
        T(test_read_size_checked_before_allocation),
        T(test_read_exact_max_and_empty),
        T(test_read_missing_and_directory),
        T(test_read_from_pipe),
        T(test_read_pipe_over_max),
        T(test_read_char_device),
        T(test_quarantine),
        T(test_mkdir_p),
        T(test_mkdir_p_unsynced),
        T(test_mkdir_relative_and_sync_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
