/* Tests for container root file systems: overlay of layers with the top layer winning, writes
 * landing in the container's upper directory, adoption of an existing mount, many layers
 * beyond the mount option page, removal of deep trees, and errors for bad layer lists.
 * Mounting needs root: run in a private mount namespace, skipped otherwise. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/rootfs.h"

static bool can_mount;

struct fx {
    char dir[64];
    char state[128]; /* the container's state directory */
};

static int rm_entry(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/drover-test-rootfs-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->state, sizeof(f->state), "%s/containers/c1", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_rootfs_unmount(f->state, true, &err) != DRV_OK)
        print_message("cleanup: %s\n", drv_error_msg(&err));
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static char *read_text(const char *path)
{
    static char buf[256];
    FILE *fp = fopen(path, "r");
    if (!fp)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* Layer i under <dir>/<prefix>i with a file "layer" saying which one, and "only<i>". */
static void make_layer(const char *dir, const char *prefix, int i, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%s%d", dir, prefix, i);
    assert_int_equal(mkdir(out, 0755), 0);
    char p[512], text[32];
    snprintf(p, sizeof(p), "%s/layer", out);
    snprintf(text, sizeof(text), "%d", i);
    write_file(p, text);
    snprintf(p, sizeof(p), "%s/only%d", out, i);
    write_file(p, text);
}

static void path_in(const struct fx *f, const char *rel, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%s", f->state, rel);
}

static void test_mount_two_layers(void **state)
{
    struct fx *f = *state;
    if (!can_mount)
        skip();
    char l0[256], l1[256], p[512];
    make_layer(f->dir, "layer", 0, l0, sizeof(l0));
    make_layer(f->dir, "layer", 1, l1, sizeof(l1));
    const char *layers[] = {l0, l1}; /* bottom first */
    bool adopted = true;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_rootfs_mount(layers, 2, f->state, &adopted, &err) != DRV_OK)
        fail_msg("%s", drv_error_msg(&err));
    assert_false(adopted);
    bool mounted = false;
    assert_int_equal(drv_rootfs_is_mounted(f->state, &mounted, &err), DRV_OK);
    assert_true(mounted);

    path_in(f, "rootfs/layer", p, sizeof(p));
    assert_string_equal(read_text(p), "1"); /* the top layer wins */
    path_in(f, "rootfs/only0", p, sizeof(p));
    assert_string_equal(read_text(p), "0");
    path_in(f, "rootfs/only1", p, sizeof(p));
    assert_string_equal(read_text(p), "1");
    /* Writes land in upper, never in a layer. */
    path_in(f, "rootfs/new", p, sizeof(p));
    write_file(p, "written");
    path_in(f, "upper/new", p, sizeof(p));
    assert_string_equal(read_text(p), "written");
    snprintf(p, sizeof(p), "%s/new", l1);
    assert_int_equal(access(p, F_OK), -1);
    char root[512];
    assert_int_equal(drv_rootfs_path(f->state, root, sizeof(root)), DRV_OK);
    path_in(f, "rootfs", p, sizeof(p));
    assert_string_equal(root, p);
    assert_int_equal(drv_rootfs_path(f->state, root, 8), DRV_ERR_TOOBIG);
}

static void test_adopt_existing_mount(void **state)
{
    struct fx *f = *state;
    if (!can_mount)
        skip();
    char l0[256], p[512];
    make_layer(f->dir, "layer", 0, l0, sizeof(l0));
    const char *layers[] = {l0};
    drv_error_t err = DRV_ERROR_INIT;
    bool adopted = true;
    assert_int_equal(drv_rootfs_mount(layers, 1, f->state, &adopted, &err), DRV_OK);
    assert_false(adopted);
    path_in(f, "rootfs/state", p, sizeof(p));
    write_file(p, "keep me");
    /* The agent restarts: the same call adopts the mount and keeps what the container wrote. */
    assert_int_equal(drv_rootfs_mount(layers, 1, f->state, &adopted, &err), DRV_OK);
    assert_true(adopted);
    assert_string_equal(read_text(p), "keep me");
    /* Exactly one overlay: one unmount leaves nothing mounted. */
    char target[512];
    path_in(f, "rootfs", target, sizeof(target));
    assert_int_equal(umount2(target, 0), 0);
    bool mounted = true;
    assert_int_equal(drv_rootfs_is_mounted(f->state, &mounted, &err), DRV_OK);
    assert_false(mounted);
    /* After a reboot the upper directory is mounted again with its data. */
    assert_int_equal(drv_rootfs_mount(layers, 1, f->state, &adopted, &err), DRV_OK);
    assert_false(adopted);
    assert_string_equal(read_text(p), "keep me");
}

static void test_unmount_and_remove(void **state)
{
    struct fx *f = *state;
    if (!can_mount)
        skip();
    char l0[256], p[512];
    make_layer(f->dir, "layer", 0, l0, sizeof(l0));
    const char *layers[] = {l0};
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_rootfs_mount(layers, 1, f->state, NULL, &err), DRV_OK);
    path_in(f, "config.json", p, sizeof(p));
    write_file(p, "{}");
    /* A tree deeper than the remover's recursion limit, written through the overlay. */
    char deep[8192];
    int n = snprintf(deep, sizeof(deep), "%s/rootfs", f->state);
    for (int i = 0; i < 100; i++) {
        n += snprintf(deep + n, sizeof(deep) - (size_t)n, "/d");
        assert_int_equal(mkdir(deep, 0755), 0);
    }
    snprintf(deep + n, sizeof(deep) - (size_t)n, "/f");
    write_file(deep, "x");
    assert_int_equal(drv_rootfs_unmount(f->state, true, &err), DRV_OK);
    const char *gone[] = {"rootfs", "upper", "work", "lower"};
    for (int i = 0; i < 4; i++) {
        path_in(f, gone[i], p, sizeof(p));
        assert_int_equal(access(p, F_OK), -1);
    }
    /* The bundle's own files and the layers stay. */
    path_in(f, "config.json", p, sizeof(p));
    assert_int_equal(access(p, F_OK), 0);
    snprintf(p, sizeof(p), "%s/layer", l0);
    assert_string_equal(read_text(p), "0");
    /* Unmounting what is not mounted is fine. */
    assert_int_equal(drv_rootfs_unmount(f->state, true, &err), DRV_OK);
    bool mounted = true;
    assert_int_equal(drv_rootfs_is_mounted("/nonexistent/dir", &mounted, &err), DRV_OK);
    assert_false(mounted);
}

static void test_many_layers_beyond_a_page(void **state)
{
    struct fx *f = *state;
    if (!can_mount)
        skip();
    /* 60 layers with long paths: well over 4096 bytes of lowerdir. */
    enum { N = 60 };
    char base[256];
    snprintf(base, sizeof(base), "%s/layers/sha256", f->dir);
    char p[512];
    snprintf(p, sizeof(p), "%s/layers", f->dir);
    mkdir(p, 0755);
    mkdir(base, 0755);
    static char paths[N][256];
    const char *layers[N];
    for (int i = 0; i < N; i++) {
        make_layer(base, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd", i,
                   paths[i], sizeof(paths[i]));
        layers[i] = paths[i];
    }
    drv_error_t err = DRV_ERROR_INIT;
    char cwd_before[512], cwd_after[512];
    assert_non_null(getcwd(cwd_before, sizeof(cwd_before)));
    if (drv_rootfs_mount(layers, N, f->state, NULL, &err) != DRV_OK)
        fail_msg("%s", drv_error_msg(&err));
    assert_non_null(getcwd(cwd_after, sizeof(cwd_after)));
    assert_string_equal(cwd_before, cwd_after);
    path_in(f, "rootfs/layer", p, sizeof(p));
    assert_string_equal(read_text(p), "59");
    path_in(f, "rootfs/only0", p, sizeof(p));
    assert_string_equal(read_text(p), "0");
    path_in(f, "lower/0", p, sizeof(p));
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(drv_rootfs_unmount(f->state, true, &err), DRV_OK);
    assert_int_equal(lstat(p, &st), -1);
}

static void test_bad_layer_lists(void **state)
{
    struct fx *f = *state;
    char l0[256];
    make_layer(f->dir, "layer", 0, l0, sizeof(l0));
    drv_error_t err = DRV_ERROR_INIT;
    const char *one[] = {l0};
    assert_int_equal(drv_rootfs_mount(one, 0, f->state, NULL, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "no layers"));
    assert_int_equal(drv_rootfs_mount(one, 1, "relative/state", NULL, &err), DRV_ERR_INVALID);
    const char *missing[] = {l0, "/nonexistent/layer"};
    assert_int_equal(drv_rootfs_mount(missing, 2, f->state, NULL, &err), DRV_ERR_NOTFOUND);
    assert_non_null(strstr(drv_error_msg(&err), "layer 1 /nonexistent/layer"));
    const char *colon[] = {"/tmp/a:b"};
    assert_int_equal(drv_rootfs_mount(colon, 1, f->state, NULL, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "layer 0"));
    const char *many[DRV_ROOTFS_MAX_LAYERS + 1];
    for (int i = 0; i <= DRV_ROOTFS_MAX_LAYERS; i++)
        many[i] = l0;
    assert_int_equal(drv_rootfs_mount(many, DRV_ROOTFS_MAX_LAYERS + 1, f->state, NULL, &err),
                     DRV_ERR_TOOBIG);
    char file[512];
    snprintf(file, sizeof(file), "%s/layer", l0);
    const char *notdir[] = {file};
    assert_int_equal(drv_rootfs_mount(notdir, 1, f->state, NULL, &err), DRV_ERR_INVALID);
    /* Nothing was left behind by the failed calls. */
    assert_int_equal(access(f->state, F_OK), -1);
}

static void test_failed_mount_leaves_nothing(void **state)
{
    struct fx *f = *state;
    if (!can_mount)
        skip();
    char l0[256], nested[512];
    make_layer(f->dir, "layer", 0, l0, sizeof(l0));
    const char *layers[] = {l0};
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_rootfs_mount(layers, 1, f->state, NULL, &err), DRV_OK);
    /* An overlay cannot take its upper directory from another overlay. */
    snprintf(nested, sizeof(nested), "%s/rootfs/nested", f->state);
    drv_err_t rc = drv_rootfs_mount(layers, 1, nested, NULL, &err);
    assert_int_not_equal(rc, DRV_OK);
    assert_non_null(strstr(drv_error_msg(&err), "mount overlay"));
    assert_int_equal(access(nested, F_OK), -1);
}

static void test_something_else_mounted(void **state)
{
    struct fx *f = *state;
    if (!can_mount)
        skip();
    char target[512];
    snprintf(target, sizeof(target), "%s/containers", f->dir);
    mkdir(target, 0700);
    mkdir(f->state, 0700);
    path_in(f, "rootfs", target, sizeof(target));
    assert_int_equal(mkdir(target, 0755), 0);
    assert_int_equal(mount("tmpfs", target, "tmpfs", 0, NULL), 0);
    drv_error_t err = DRV_ERROR_INIT;
    bool mounted;
    assert_int_equal(drv_rootfs_is_mounted(f->state, &mounted, &err), DRV_ERR_CONFLICT);
    char l0[256];
    make_layer(f->dir, "layer", 0, l0, sizeof(l0));
    const char *layers[] = {l0};
    assert_int_equal(drv_rootfs_mount(layers, 1, f->state, NULL, &err), DRV_ERR_CONFLICT);
    assert_non_null(strstr(drv_error_msg(&err), "something other than an overlay"));
    assert_int_equal(umount2(target, 0), 0);
}

int main(void)
{
    /* A private mount namespace: nothing mounted here can outlive the test. */
    if (geteuid() == 0 && unshare(CLONE_NEWNS) == 0 &&
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
        can_mount = true;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mount_two_layers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adopt_existing_mount, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unmount_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_layers_beyond_a_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_layer_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_mount_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_something_else_mounted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
