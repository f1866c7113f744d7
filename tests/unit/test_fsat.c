/* Tests for the confined file helpers: nothing outside the directory is ever reached (symlinks
 * pointing out, "..", absolute names and symlinks), through openat2 and through the component
 * walk older kernels get; recursive removal that keeps out of mounts and removes any depth. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/fsat.h"
#include "fsat_int.h"

struct fixture {
    char top[64];   /* holds root/ and outside/ */
    char root[128]; /* the confining directory */
    char outside[128];
    int rootfd;
};

static void path_in(const struct fixture *f, const char *rel, char *out, size_t outsz)
{
    assert_int_equal(drv_fmt(out, outsz, "%s/%s", f->root, rel), DRV_OK);
}

static void make_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL || drv_fmt(f->top, sizeof(f->top), "/tmp/drover-test-fsat-XXXXXX") != DRV_OK ||
        mkdtemp(f->top) == NULL)
        return -1;
    if (drv_fmt(f->root, sizeof(f->root), "%s/root", f->top) != DRV_OK ||
        drv_fmt(f->outside, sizeof(f->outside), "%s/outside", f->top) != DRV_OK ||
        mkdir(f->root, 0755) != 0 || mkdir(f->outside, 0755) != 0)
        return -1;
    char p[256];
    if (drv_fmt(p, sizeof(p), "%s/secret", f->outside) != DRV_OK)
        return -1;
    make_file(p, "outside");
    f->rootfd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f->rootfd < 0)
        return -1;
    /* root/dir/file, root/out -> ../outside, root/abs -> <outside>/secret (absolute),
     * root/dir/in -> file (a symlink that stays inside: still never followed). */
    char q[256];
    path_in(f, "dir", p, sizeof(p));
    mkdir(p, 0755);
    path_in(f, "dir/file", p, sizeof(p));
    make_file(p, "inside");
    path_in(f, "out", p, sizeof(p));
    if (symlink("../outside", p) != 0)
        return -1;
    path_in(f, "abs", p, sizeof(p));
    if (drv_fmt(q, sizeof(q), "%s/secret", f->outside) != DRV_OK || symlink(q, p) != 0)
        return -1;
    path_in(f, "dir/in", p, sizeof(p));
    if (symlink("file", p) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    close(f->rootfd);
    /* The module under test is the removal; the fixture trusts it for the cleanup. */
    (void)!drv_fsat_remove_tree_path(f->top, NULL, NULL);
    free(f);
    return 0;
}

static void assert_secret_intact(const struct fixture *f)
{
    char p[256], buf[16] = {0};
    assert_int_equal(drv_fmt(p, sizeof(p), "%s/secret", f->outside), DRV_OK);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, sizeof(buf) - 1), 7);
    close(fd);
    assert_string_equal(buf, "outside");
}

static void test_open_inside(void **state)
{
    struct fixture *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    int fd = -1;
    assert_int_equal(drv_fsat_open(f->rootfd, "dir/file", O_RDONLY, 0, &fd, &err), DRV_OK);
    close(fd);
    assert_int_equal(drv_fsat_open(f->rootfd, "./dir//file", O_RDONLY, 0, &fd, &err), DRV_OK);
    close(fd);
    assert_int_equal(drv_fsat_open(f->rootfd, "", O_RDONLY | O_DIRECTORY, 0, &fd, &err), DRV_OK);
    close(fd);
    fd = -1;
    assert_int_equal(drv_fsat_open(f->rootfd, "dir/missing", O_RDONLY, 0, &fd, &err),
                     DRV_ERR_NOTFOUND);
    assert_int_equal(fd, -1);
    assert_int_equal(
        drv_fsat_open(f->rootfd, "dir/new", O_WRONLY | O_CREAT | O_EXCL, 0600, &fd, &err), DRV_OK);
    close(fd);
}

/* Every way out is refused, and the file outside is never opened for writing. */
static void test_open_refuses_escapes(void **state)
{
    struct fixture *f = *state;
    static const char *const escapes[] = {
        "out/secret", /* a symlink pointing out, in the middle */
        "out",        /* ... as the last component */
        "abs",        /* an absolute symlink */
        "dir/in",     /* a symlink that stays inside: never followed either */
        "../outside/secret",
        "dir/../../outside/secret",
        "dir/..",
        "/etc/passwd", /* an absolute name */
    };
    for (size_t i = 0; i < sizeof(escapes) / sizeof(escapes[0]); i++) {
        drv_error_t err = DRV_ERROR_INIT;
        int fd = -1;
        drv_err_t rc = drv_fsat_open(f->rootfd, escapes[i], O_WRONLY | O_TRUNC, 0, &fd, &err);
        if (rc != DRV_ERR_PERM)
            fail_msg("%s: %s", escapes[i], drv_error_msg(&err));
        assert_int_equal(fd, -1);
        rc = drv_fsat_open(f->rootfd, escapes[i], O_WRONLY | O_CREAT, 0644, &fd, &err);
        assert_int_equal(rc, DRV_ERR_PERM);
    }
    /* O_PATH would open a symlink itself: refused too. */
    int fd = -1;
    assert_int_equal(drv_fsat_open(f->rootfd, "abs", O_PATH, 0, &fd, NULL), DRV_ERR_PERM);
    assert_secret_intact(f);
}

/* The walk older kernels and qemu-user get: the same answers. */
static void test_walk_refuses_symlinks(void **state)
{
    struct fixture *f = *state;
    int fd = fsat_open_walk(f->rootfd, "dir/file", O_RDONLY, 0);
    assert_true(fd >= 0);
    close(fd);
    fd = fsat_open_walk(f->rootfd, "dir/./file", O_RDONLY, 0);
    assert_true(fd >= 0);
    close(fd);
    static const char *const links[] = {"out/secret", "out", "abs", "dir/in", "abs/x"};
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
        errno = 0;
        assert_int_equal(fsat_open_walk(f->rootfd, links[i], O_WRONLY | O_TRUNC, 0), -1);
        if (strcmp(links[i], "abs/x") == 0)
            assert_true(errno == ELOOP || errno == ENOTDIR);
        else
            assert_int_equal(errno, ELOOP);
    }
    assert_int_equal(fsat_open_walk(f->rootfd, "dir/missing/x", O_RDONLY, 0), -1);
    assert_int_equal(errno, ENOENT);
    assert_secret_intact(f);
}

static void test_read_write_mkdir(void **state)
{
    struct fixture *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_fsat_write(f->rootfd, "dir/cfg", "hello", 5, 0640, &err), DRV_OK);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(drv_fsat_read(f->rootfd, "dir/cfg", 64, &data, &len, &err), DRV_OK);
    assert_string_equal(data, "hello");
    free(data);
    data = NULL;
    assert_int_equal(drv_fsat_read(f->rootfd, "dir/cfg", 4, &data, &len, &err), DRV_ERR_TOOBIG);
    assert_null(data);
    /* Reading through a symlink is refused; writing over one replaces the link itself. */
    assert_int_equal(drv_fsat_read(f->rootfd, "abs", 64, &data, &len, &err), DRV_ERR_PERM);
    assert_int_equal(drv_fsat_write(f->rootfd, "abs", "x", 1, 0644, &err), DRV_OK);
    assert_secret_intact(f);
    assert_int_equal(drv_fsat_write(f->rootfd, "out/secret", "x", 1, 0644, &err), DRV_ERR_PERM);
    assert_secret_intact(f);
    /* No temporary is left behind. */
    struct stat st;
    char p[256];
    path_in(f, "dir/.cfg.tmp", p, sizeof(p));
    assert_int_equal(fstatat(f->rootfd, "dir/cfg", &st, 0), 0);
    assert_int_equal(st.st_mode & 0777, 0640);

    assert_int_equal(drv_fsat_mkdir(f->rootfd, "dir/sub", 0750, &err), DRV_OK);
    assert_int_equal(drv_fsat_mkdir(f->rootfd, "dir/sub", 0750, &err), DRV_OK);
    assert_int_equal(drv_fsat_mkdir(f->rootfd, "dir/cfg", 0750, &err), DRV_ERR_EXISTS);
    assert_int_equal(drv_fsat_mkdir(f->rootfd, "out/sub", 0750, &err), DRV_ERR_PERM);
    assert_int_equal(drv_fsat_mkdir(f->rootfd, "dir/..", 0750, &err), DRV_ERR_PERM);
}

static void test_remove_keeps_outside(void **state)
{
    struct fixture *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    char p[256];
    path_in(f, "dir/locked", p, sizeof(p));
    assert_int_equal(mkdir(p, 0755), 0);
    path_in(f, "dir/locked/f", p, sizeof(p));
    make_file(p, "12345");
    path_in(f, "dir/locked", p, sizeof(p));
    assert_int_equal(chmod(p, 0), 0); /* a layer's unreadable directory */
    path_in(f, "dir/link-out", p, sizeof(p));
    assert_int_equal(symlink(f->outside, p), 0);
    uint64_t bytes = 0;
    assert_int_equal(drv_fsat_remove_tree(f->rootfd, "dir", &bytes, &err), DRV_OK);
    assert_int_equal(bytes, 6 + 5); /* "inside" and "12345" */
    struct stat st;
    assert_int_equal(fstatat(f->rootfd, "dir", &st, AT_SYMLINK_NOFOLLOW), -1);
    assert_secret_intact(f);
    /* The symlink pointing out is removed, its target kept. */
    assert_int_equal(drv_fsat_remove_tree(f->rootfd, "out", NULL, &err), DRV_OK);
    assert_secret_intact(f);
    assert_int_equal(drv_fsat_remove_tree(f->rootfd, "out/secret", NULL, &err), DRV_OK);
    assert_int_equal(drv_fsat_remove_tree(f->rootfd, "missing", NULL, &err), DRV_OK);
    assert_int_equal(drv_fsat_remove_tree(f->rootfd, "../outside", NULL, &err), DRV_ERR_PERM);
    assert_int_equal(drv_fsat_remove_tree(f->rootfd, ".", NULL, &err), DRV_ERR_INVALID);
    assert_secret_intact(f);
}

/* Far deeper than the depth limit: removed in passes, with a bounded number of open fds. */
static void test_remove_deep(void **state)
{
    struct fixture *f = *state;
    const int depth = DRV_FSAT_RM_MAX_DEPTH * 5 + 3;
    int fd = openat(f->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_int_equal(mkdirat(fd, "deep", 0755), 0);
    for (int i = 0; i < depth; i++) {
        int nfd = openat(fd, i == 0 ? "deep" : "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(nfd >= 0);
        close(fd);
        fd = nfd;
        assert_int_equal(mkdirat(fd, "d", 0755), 0);
        int ffd = openat(fd, "f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(ffd >= 0);
        assert_int_equal(write(ffd, "x", 1), 1);
        close(ffd);
    }
    close(fd);
    drv_error_t err = DRV_ERROR_INIT;
    uint64_t bytes = 0;
    assert_int_equal(drv_fsat_remove_tree(f->rootfd, "deep", &bytes, &err), DRV_OK);
    assert_int_equal(bytes, (uint64_t)depth);
    struct stat st;
    assert_int_equal(fstatat(f->rootfd, "deep", &st, AT_SYMLINK_NOFOLLOW), -1);
}

/* A mount inside the tree (a tmpfs, then a bind mount of the same file system, which keeps
 * st_dev) is never entered; everything else goes. Needs root for a private mount namespace. */
static void test_remove_never_crosses_mount(void **state)
{
    struct fixture *f = *state;
    if (geteuid() != 0) {
        skip();
        return;
    }
    assert_int_equal(unshare(CLONE_NEWNS), 0);
    assert_int_equal(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
    /* An fd opened before unshare still sees the old namespace's mounts: reopen. */
    close(f->rootfd);
    f->rootfd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(f->rootfd >= 0);
    char m[256], p[256], src[256];
    path_in(f, "vol", p, sizeof(p));
    assert_int_equal(mkdir(p, 0755), 0);
    path_in(f, "vol/tmp", m, sizeof(m));
    assert_int_equal(mkdir(m, 0755), 0);
    assert_int_equal(mount("tmpfs", m, "tmpfs", 0, "size=1m"), 0);
    path_in(f, "vol/tmp/keep", p, sizeof(p));
    make_file(p, "keep");
    path_in(f, "vol/other", p, sizeof(p));
    make_file(p, "gone");

    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_fsat_remove_tree(f->rootfd, "vol", NULL, &err), DRV_ERR_IO);
    if (err.sys_errno != EXDEV)
        fail_msg("%s", drv_error_msg(&err));
    struct stat st;
    path_in(f, "vol/tmp/keep", p, sizeof(p));
    assert_int_equal(stat(p, &st), 0);
    path_in(f, "vol/other", p, sizeof(p));
    assert_int_equal(stat(p, &st), -1);
    /* The mount point itself named: refused before anything is touched. */
    assert_int_equal(drv_fsat_remove_tree(f->rootfd, "vol/tmp", NULL, &err), DRV_ERR_IO);
    path_in(f, "vol/tmp/keep", p, sizeof(p));
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(umount2(m, MNT_DETACH), 0);

    /* A bind mount of a directory of the same file system. */
    assert_int_equal(drv_fmt(src, sizeof(src), "%s", f->outside), DRV_OK);
    assert_int_equal(mount(src, m, NULL, MS_BIND, NULL), 0);
    assert_int_equal(drv_fsat_remove_tree(f->rootfd, "vol", NULL, &err), DRV_ERR_IO);
    assert_int_equal(err.sys_errno, EXDEV);
    assert_int_equal(umount2(m, MNT_DETACH), 0);
    assert_secret_intact(f);
    assert_int_equal(drv_fsat_remove_tree(f->rootfd, "vol", NULL, &err), DRV_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_inside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_walk_refuses_symlinks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_write_mkdir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_keeps_outside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_deep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_never_crosses_mount, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
