/* Tests of the confined layer unpacker: ordinary layers come out right, and hostile ones (built
 * here with libarchive's writer) are refused with a clear error while a canary file outside the
 * destination stays untouched and nothing partial is left behind. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "image/unpack.h"

#define CANARY_DATA "canary\n"

enum { F_NONE, F_GZIP, F_ZSTD };

struct fx {
    char base[64];
    char outside[PATH_MAX];
    char canary[PATH_MAX];
    char dest[PATH_MAX];
    char blob[PATH_MAX];
};

/* ---- helpers ----------------------------------------------------------------------------- */

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        return rmdir(path);
    return unlink(path);
}

static void rm_rf(const char *path)
{
    (void)nftw(path, rm_cb, 32, FTW_DEPTH | FTW_PHYS);
}

static void write_text(const char *path, const char *data, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* Reads a small file into buf; returns its length or -1. */
static ssize_t read_text(const char *path, char *buf, size_t bufsz)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, bufsz - 1);
    close(fd);
    if (n >= 0)
        buf[n] = '\0';
    return n;
}

static void pathf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pathf(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && n < PATH_MAX);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->base, sizeof f->base, "/tmp/drv-unpack-XXXXXX");
    assert_non_null(mkdtemp(f->base));
    pathf(f->outside, "%s/outside", f->base);
    pathf(f->canary, "%s/canary", f->outside);
    pathf(f->dest, "%s/dest", f->base);
    pathf(f->blob, "%s/layer.tar", f->base);
    assert_int_equal(mkdir(f->outside, 0755), 0);
    write_text(f->canary, CANARY_DATA, 0644);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    rm_rf(f->base);
    free(f);
    return 0;
}

/* The canary is unchanged, nothing new appeared next to it or next to dest, and no temporary
 * directory is left. Called after every hostile layer. */
static void assert_outside_untouched(struct fx *f)
{
    char buf[64];
    struct stat st;
    assert_int_equal(lstat(f->canary, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_nlink, 1);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(read_text(f->canary, buf, sizeof buf), (ssize_t)strlen(CANARY_DATA));
    assert_string_equal(buf, CANARY_DATA);

    DIR *d = opendir(f->outside);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            assert_string_equal(de->d_name, "canary");
    }
    closedir(d);

    static const char *const allowed[] = {"outside", "dest", "layer", "l1", "l2", "merged"};
    d = opendir(f->base);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (strncmp(de->d_name, "dest.tmp-", 9) == 0)
            fail_msg("temporary directory left behind: %s", de->d_name);
        bool ok = false;
        for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
            if (strncmp(de->d_name, allowed[i], strlen(allowed[i])) == 0)
                ok = true;
        if (!ok)
            fail_msg("unexpected file next to the destination: %s", de->d_name);
    }
    closedir(d);
}

/* ---- building layers --------------------------------------------------------------------- */

static struct archive *tb_open(const char *path, int filter)
{
    struct archive *a = archive_write_new();
    assert_non_null(a);
    if (filter == F_GZIP)
        assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    else if (filter == F_ZSTD)
        assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
    assert_int_equal(archive_write_set_format_pax(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    return a;
}

static struct archive_entry *tb_entry(const char *name, mode_t type, mode_t perm)
{
    struct archive_entry *e = archive_entry_new();
    assert_non_null(e);
    archive_entry_copy_pathname(e, name);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm);
    archive_entry_set_mtime(e, 1700000000, 0);
    return e;
}

static void tb_write(struct archive *a, struct archive_entry *e, const void *data, size_t len)
{
    archive_entry_set_size(e, (la_int64_t)len);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    if (len)
        assert_int_equal(archive_write_data(a, data, len), (la_ssize_t)len);
    archive_entry_free(e);
}

static void tb_file(struct archive *a, const char *name, const char *data, mode_t perm)
{
    tb_write(a, tb_entry(name, AE_IFREG, perm), data, strlen(data));
}

static void tb_dir(struct archive *a, const char *name, mode_t perm)
{
    tb_write(a, tb_entry(name, AE_IFDIR, perm), NULL, 0);
}

static void tb_symlink(struct archive *a, const char *name, const char *target)
{
    struct archive_entry *e = tb_entry(name, AE_IFLNK, 0777);
    archive_entry_copy_symlink(e, target);
    tb_write(a, e, NULL, 0);
}

static void tb_hardlink(struct archive *a, const char *name, const char *target)
{
    struct archive_entry *e = tb_entry(name, AE_IFREG, 0644);
    archive_entry_copy_hardlink(e, target);
    tb_write(a, e, NULL, 0);
}

/* A file of size zero bytes, written in chunks. */
static void tb_zeros(struct archive *a, const char *name, size_t size)
{
    static char zero[65536];
    struct archive_entry *e = tb_entry(name, AE_IFREG, 0644);
    archive_entry_set_size(e, (la_int64_t)size);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    for (size_t done = 0; done < size;) {
        size_t n = size - done < sizeof zero ? size - done : sizeof zero;
        assert_int_equal(archive_write_data(a, zero, n), (la_ssize_t)n);
        done += n;
    }
    archive_entry_free(e);
}

static void tb_close(struct archive *a)
{
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

/* ---- running the unpacker ---------------------------------------------------------------- */

static drv_err_t unpack_into(const char *blob, const char *dest, drv_unpack_mode_t mode,
                             uint64_t max_bytes, uint64_t max_entries, drv_unpack_stats_t *stats,
                             drv_error_t *err)
{
    drv_unpack_opts_t o = {
        .mode = mode,
        .max_bytes = max_bytes,
        .max_entries = max_entries,
        .what = "test layer",
        .preserve_owner = 1,
    };
    return drv_unpack_layer(blob, dest, &o, stats, err);
}

static drv_err_t unpack(struct fx *f, drv_unpack_mode_t mode, drv_error_t *err)
{
    return unpack_into(f->blob, f->dest, mode, 0, 0, NULL, err);
}

/* The layer must be refused with code and a message containing needle; dest must not exist
 * afterwards in OVERLAY mode, and nothing outside may change. */
static void expect_refused(struct fx *f, drv_unpack_mode_t mode, drv_err_t code, const char *needle)
{
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = unpack(f, mode, &err);
    if (rc != code || strstr(err.msg, needle) == NULL)
        fail_msg("expected %s containing '%s', got %s: %s", drv_strerror(code), needle,
                 drv_strerror(rc), err.msg);
    assert_true(strncmp(err.msg, "test layer: ", 12) == 0);
    if (mode == DRV_UNPACK_OVERLAY_LAYER)
        assert_false(exists(f->dest));
    assert_outside_untouched(f);
}

/* ---- ordinary layers --------------------------------------------------------------------- */

static void test_plain_layer(void **state)
{
    struct fx *f = *state;
    struct archive *a = tb_open(f->blob, F_NONE);
    tb_dir(a, "./", 0755);
    tb_dir(a, "etc/", 0750);
    tb_file(a, "etc/hostname", "box\n", 0644);
    tb_dir(a, "bin", 0755);
    tb_file(a, "bin/tool", "#!/bin/sh\n", 04755);
    tb_hardlink(a, "bin/tool-link", "bin/tool");
    tb_symlink(a, "lib", "usr/lib");
    tb_symlink(a, "abs", "/etc/passwd");        /* symlinks are data: they may point anywhere */
    tb_file(a, "usr/lib/libx.so", "ELF", 0644); /* parents implied */
    tb_dir(a, "ro", 0555);
    tb_file(a, "ro/inside", "x", 0444);
    tb_write(a, tb_entry("fifo", AE_IFIFO, 0600), NULL, 0);
    struct archive_entry *e = tb_entry("dev/null", AE_IFCHR, 0666);
    archive_entry_set_rdevmajor(e, 1);
    archive_entry_set_rdevminor(e, 3);
    tb_write(a, e, NULL, 0);
    e = tb_entry("attrs", AE_IFREG, 0755);
    archive_entry_xattr_add_entry(e, "user.note", "hello", 5);
    archive_entry_xattr_add_entry(e, "trusted.evil", "x", 1);
    static const unsigned char cap[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x20}; /* CAP_NET_RAW */
    archive_entry_xattr_add_entry(e, "security.capability", cap, sizeof cap);
    archive_entry_set_uid(e, 1234);
    archive_entry_set_gid(e, 5678);
    tb_write(a, e, "bin", 3);
    tb_close(a);

    drv_error_t err = DRV_ERROR_INIT;
    drv_unpack_stats_t stats = {0};
    drv_err_t rc = unpack_into(f->blob, f->dest, DRV_UNPACK_OVERLAY_LAYER, 0, 0, &stats, &err);
    if (rc != DRV_OK)
        fail_msg("unpack: %s", err.msg);
    assert_int_equal(stats.entries, 14);
    assert_int_equal(stats.bytes, strlen("box\n#!/bin/sh\nELFxbin"));

    char p[PATH_MAX], q[PATH_MAX], buf[256];
    struct stat st, st2;
    assert_int_equal(stat(f->dest, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    pathf(p, "%s/etc", f->dest);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0750);
    assert_int_equal(st.st_mtime, 1700000000); /* set after its children were created */
    pathf(p, "%s/etc/hostname", f->dest);
    assert_int_equal(read_text(p, buf, sizeof buf), 4);
    assert_string_equal(buf, "box\n");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mtime, 1700000000);

    pathf(p, "%s/bin/tool", f->dest);
    pathf(q, "%s/bin/tool-link", f->dest);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(stat(q, &st2), 0);
    assert_int_equal(st.st_mode & 07777, 04755); /* setuid kept */
    assert_int_equal(st.st_ino, st2.st_ino);
    assert_int_equal(st.st_nlink, 2);

    pathf(p, "%s/lib", f->dest);
    ssize_t n = readlink(p, buf, sizeof buf - 1);
    assert_int_equal(n, 7);
    buf[n] = '\0';
    assert_string_equal(buf, "usr/lib");
    pathf(p, "%s/abs", f->dest);
    n = readlink(p, buf, sizeof buf - 1);
    assert_int_equal(n, 11);
    pathf(p, "%s/usr/lib/libx.so", f->dest);
    assert_int_equal(read_text(p, buf, sizeof buf), 3);

    pathf(p, "%s/ro", f->dest);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0555);
    pathf(p, "%s/ro/inside", f->dest);
    assert_true(exists(p));

    pathf(p, "%s/fifo", f->dest);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    pathf(p, "%s/dev/null", f->dest);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISCHR(st.st_mode)); /* the tests run as root */
    assert_int_equal(major(st.st_rdev), 1);
    assert_int_equal(minor(st.st_rdev), 3);

    pathf(p, "%s/attrs", f->dest);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_uid, 1234);
    assert_int_equal(st.st_gid, 5678);
    assert_int_equal(getxattr(p, "user.note", buf, sizeof buf), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(getxattr(p, "trusted.evil", buf, sizeof buf), -1); /* skipped */
    /* Set after the chown that would have cleared it. */
    assert_int_equal(getxattr(p, "security.capability", buf, sizeof buf), (ssize_t)sizeof cap);
    assert_memory_equal(buf, cap, sizeof cap);
    assert_outside_untouched(f);
}

static void compressed_layer(struct fx *f, int filter)
{
    struct archive *a = tb_open(f->blob, filter);
    tb_dir(a, "app/", 0755);
    tb_file(a, "app/main.py", "print('hi')\n", 0644);
    tb_zeros(a, "app/zeros", 300000);
    tb_close(a);

    drv_error_t err = DRV_ERROR_INIT;
    drv_unpack_stats_t stats = {0};
    drv_err_t rc = unpack_into(f->blob, f->dest, DRV_UNPACK_OVERLAY_LAYER, 0, 0, &stats, &err);
    if (rc != DRV_OK)
        fail_msg("unpack: %s", err.msg);
    char p[PATH_MAX], buf[64];
    pathf(p, "%s/app/main.py", f->dest);
    assert_int_equal(read_text(p, buf, sizeof buf), 12);
    assert_string_equal(buf, "print('hi')\n");
    struct stat st;
    pathf(p, "%s/app/zeros", f->dest);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 300000);
    assert_int_equal(stats.entries, 3);
    assert_int_equal(stats.bytes, 300012);
    assert_outside_untouched(f);
}

static void test_gzip_layer(void **state)
{
    compressed_layer(*state, F_GZIP);
}

static void test_zstd_layer(void **state)
{
    compressed_layer(*state, F_ZSTD);
}

/* ---- hostile names ----------------------------------------------------------------------- */

static void test_dotdot_escape(void **state)
{
    struct fx *f = *state;
    static const char *const names[] = {"../pwned", "../outside/canary", "a/../../pwned",
                                        "./../outside/pwned", "/../pwned"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct archive *a = tb_open(f->blob, F_NONE);
        tb_file(a, "ok", "fine", 0644);
        tb_file(a, names[i], "pwned", 0644);
        tb_close(a);
        char needle[128];
        snprintf(needle, sizeof needle, "test layer: entry \"%s\": escapes the layer root",
                 names[i]);
        expect_refused(f, DRV_UNPACK_OVERLAY_LAYER, DRV_ERR_INVALID, needle);
    }
    /* "a/../b" stays inside and is b. */
    struct archive *a = tb_open(f->blob, F_NONE);
    tb_file(a, "a/../b", "fine", 0644);
    tb_close(a);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(unpack(f, DRV_UNPACK_OVERLAY_LAYER, &err), DRV_OK);
    char p[PATH_MAX];
    pathf(p, "%s/b", f->dest);
    assert_true(exists(p));
    assert_outside_untouched(f);
}

static void test_absolute_path(void **state)
{
    struct fx *f = *state;
    struct archive *a = tb_open(f->blob, F_NONE);
    tb_file(a, f->canary, "pwned", 0644); /* "/tmp/drv-unpack-.../outside/canary" */
    tb_file(a, "/etc/drv-unpack-test", "pwned", 0644);
    tb_close(a);
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = unpack(f, DRV_UNPACK_OVERLAY_LAYER, &err);
    if (rc != DRV_OK)
        fail_msg("unpack: %s", err.msg);
    /* Absolute names are taken relative to the layer root. */
    char p[PATH_MAX], buf[64];
    pathf(p, "%s%s", f->dest, f->canary);
    assert_int_equal(read_text(p, buf, sizeof buf), 5);
    assert_string_equal(buf, "pwned");
    pathf(p, "%s/etc/drv-unpack-test", f->dest);
    assert_true(exists(p));
    assert_false(exists("/etc/drv-unpack-test"));
    assert_outside_untouched(f);
}

/* ---- planted symlinks -------------------------------------------------------------------- */

static void test_symlink_write_through_dir(void **state)
{
    struct fx *f = *state;
    const char *targets[] = {f->outside, "../outside", "../../../../../../../../../../..", "/"};
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        struct archive *a = tb_open(f->blob, F_NONE);
        tb_symlink(a, "evil", targets[i]);
        tb_file(a, "evil/pwned", "pwned", 0644);
        tb_close(a);
        expect_refused(f, DRV_UNPACK_OVERLAY_LAYER, DRV_ERR_INVALID,
                       "entry \"evil/pwned\": parent \"evil\" is a symbolic link");
    }
    /* The same with the symlink planted by an earlier layer (APPLY mode, flattening). */
    assert_int_equal(mkdir(f->dest, 0755), 0);
    char p[PATH_MAX];
    pathf(p, "%s/evil", f->dest);
    assert_int_equal(symlink(f->outside, p), 0);
    struct archive *a = tb_open(f->blob, F_GZIP);
    tb_file(a, "evil/pwned", "pwned", 0644);
    tb_close(a);
    expect_refused(f, DRV_UNPACK_APPLY, DRV_ERR_INVALID, "parent \"evil\" is a symbolic link");
    /* Nor through a directory entry naming the symlink's children. */
    a = tb_open(f->blob, F_NONE);
    tb_dir(a, "evil/sub/", 0755);
    tb_close(a);
    expect_refused(f, DRV_UNPACK_APPLY, DRV_ERR_INVALID, "is a symbolic link");
}

static void test_symlink_to_canary_replaced(void **state)
{
    struct fx *f = *state;
    struct archive *a = tb_open(f->blob, F_NONE);
    tb_symlink(a, "link", f->canary);
    tb_file(a, "link", "pwned", 0644);
    tb_symlink(a, "rel", "../outside/canary");
    tb_file(a, "rel", "pwned", 0644);
    tb_close(a);
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = unpack(f, DRV_UNPACK_OVERLAY_LAYER, &err);
    if (rc != DRV_OK)
        fail_msg("unpack: %s", err.msg);
    char p[PATH_MAX], buf[64];
    struct stat st;
    pathf(p, "%s/link", f->dest);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode)); /* the symlink was replaced, not written through */
    assert_int_equal(read_text(p, buf, sizeof buf), 5);
    assert_outside_untouched(f);

    /* APPLY onto a tree where an earlier layer left the symlink. */
    rm_rf(f->dest);
    assert_int_equal(mkdir(f->dest, 0755), 0);
    assert_int_equal(symlink(f->canary, p), 0);
    a = tb_open(f->blob, F_NONE);
    tb_file(a, "link", "pwned", 0600);
    tb_hardlink(a, "link2", "link");
    tb_close(a);
    rc = unpack(f, DRV_UNPACK_APPLY, &err);
    if (rc != DRV_OK)
        fail_msg("unpack: %s", err.msg);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_nlink, 2);
    assert_outside_untouched(f);
}

static void test_symlink_parent_chain(void **state)
{
    struct fx *f = *state;
    struct archive *a = tb_open(f->blob, F_NONE);
    tb_symlink(a, "a", "b");
    tb_symlink(a, "b", f->outside);
    tb_file(a, "a/pwned", "pwned", 0644);
    tb_close(a);
    expect_refused(f, DRV_UNPACK_OVERLAY_LAYER, DRV_ERR_INVALID, "parent \"a\" is a symbolic link");

    a = tb_open(f->blob, F_NONE);
    tb_dir(a, "d/", 0755);
    tb_symlink(a, "d/e", "../../outside");
    tb_file(a, "d/e/pwned", "pwned", 0644);
    tb_close(a);
    expect_refused(f, DRV_UNPACK_OVERLAY_LAYER, DRV_ERR_INVALID,
                   "parent \"d/e\" is a symbolic link");

    /* Deep in the path, with the symlink in the middle. */
    a = tb_open(f->blob, F_GZIP);
    tb_dir(a, "x/y/", 0755);
    tb_symlink(a, "x/y/z", "/");
    tb_file(a, "x/y/z/tmp/pwned", "pwned", 0644);
    tb_close(a);
    expect_refused(f, DRV_UNPACK_OVERLAY_LAYER, DRV_ERR_INVALID,
                   "parent \"x/y/z\" is a symbolic link");
    assert_false(exists("/tmp/pwned"));

    /* Symlinks are never followed to create entries, even ones that stay inside. */
    a = tb_open(f->blob, F_NONE);
    tb_dir(a, "real/", 0755);
    tb_symlink(a, "alias", "real");
    tb_file(a, "alias/f", "x", 0644);
    tb_close(a);
    expect_refused(f, DRV_UNPACK_OVERLAY_LAYER, DRV_ERR_INVALID,
                   "parent \"alias\" is a symbolic link");
}

/* ---- hardlinks --------------------------------------------------------------------------- */

static void test_hardlink_outside(void **state)
{
    struct fx *f = *state;
    struct archive *a = tb_open(f->blob, F_NONE);
    tb_hardlink(a, "h", "../outside/canary");
    tb_close(a);
    expect_refused(f, DRV_UNPACK_OVERLAY_LAYER, DRV_ERR_INVALID,
                   "entry \"h\": hardlink target \"../outside/canary\" escapes the layer root");

    /* An absolute target means the file of that name inside the layer, which is not there. */
    a = tb_open(f->blob, F_NONE);
    tb_hardlink(a, "h", f->canary);
    tb_close(a);
    expect_refused(f, DRV_UNPACK_OVERLAY_LAYER, DRV_ERR_INVALID, "does not exist");

    a = tb_open(f->blob, F_NONE);
    tb_hardlink(a, "h", "/etc/passwd");
    tb_close(a);
    expect_refused(f, DRV_UNPACK_OVERLAY_LAYER, DRV_ERR_INVALID,
                   "hardlink target \"/etc/passwd\" does not exist");

    a = tb_open(f->blob, F_NONE);
    tb_dir(a, "d/", 0755);
    tb_hardlink(a, "h", "d");
    tb_close(a);
    expect_refused(f, DRV_UNPACK_OVERLAY_LAYER, DRV_ERR_INVALID, "is a directory");
}

static void test_hardlink_via_symlink(void **state)
{
    struct fx *f = *state;
    struct archive *a = tb_open(f->blob, F_NONE);
    tb_symlink(a, "s", f->outside);
    tb_hardlink(a, "h", "s/canary");
    tb_close(a);
    expect_refused(f, DRV_UNPACK_OVERLAY_LAYER, DRV_ERR_INVALID,
                   "hardlink target directory \"s\" is a symbolic link");

    a = tb_open(f->blob, F_NONE);
    tb_symlink(a, "sl", f->canary);
    tb_hardlink(a, "h", "sl");
    tb_close(a);
    expect_refused(f, DRV_UNPACK_OVERLAY_LAYER, DRV_ERR_INVALID,
                   "hardlink target \"sl\" is a symbolic link pointing outside");

    a = tb_open(f->blob, F_NONE);
    tb_dir(a, "d/", 0755);
    tb_symlink(a, "d/up", "../../outside/canary");
    tb_hardlink(a, "h", "d/up");
    tb_close(a);
    expect_refused(f, DRV_UNPACK_OVERLAY_LAYER, DRV_ERR_INVALID, "pointing outside");

    /* A symlink that stays inside may be hardlinked: the link is the symlink itself. */
    a = tb_open(f->blob, F_NONE);
    tb_file(a, "t", "x", 0644);
    tb_symlink(a, "in", "t");
    tb_hardlink(a, "h", "in");
    tb_close(a);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(unpack(f, DRV_UNPACK_OVERLAY_LAYER, &err), DRV_OK);
    char p[PATH_MAX];
    struct stat st;
    pathf(p, "%s/h", f->dest);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_outside_untouched(f);
}

/* ---- whiteouts --------------------------------------------------------------------------- */

static void test_whiteout_escape(void **state)
{
    struct fx *f = *state;
    for (int mode = DRV_UNPACK_OVERLAY_LAYER; mode <= DRV_UNPACK_APPLY; mode++) {
        if (mode == DRV_UNPACK_APPLY)
            assert_int_equal(mkdir(f->dest, 0755), 0);
        struct archive *a = tb_open(f->blob, F_NONE);
        tb_file(a, "d/.wh...", "", 0644);
        tb_close(a);
        expect_refused(f, mode, DRV_ERR_INVALID, "entry \"d/.wh...\": whiteout escapes");

        a = tb_open(f->blob, F_NONE);
        tb_file(a, ".wh...", "", 0644);
        tb_close(a);
        expect_refused(f, mode, DRV_ERR_INVALID, "whiteout escapes the layer root");

        a = tb_open(f->blob, F_NONE);
        tb_file(a, "../.wh.outside", "", 0644);
        tb_close(a);
        expect_refused(f, mode, DRV_ERR_INVALID, "escapes the layer root");

        a = tb_open(f->blob, F_NONE);
        tb_file(a, "../outside/.wh.canary", "", 0644);
        tb_close(a);
        expect_refused(f, mode, DRV_ERR_INVALID, "escapes the layer root");

        a = tb_open(f->blob, F_NONE);
        tb_file(a, "x/.wh..", "", 0644);
        tb_close(a);
        expect_refused(f, mode, DRV_ERR_INVALID, "whiteout names its own directory");
    }
    /* A whiteout through a symlink planted by an earlier layer. */
    char p[PATH_MAX];
    pathf(p, "%s/evil", f->dest);
    assert_int_equal(symlink(f->outside, p), 0);
    struct archive *a = tb_open(f->blob, F_NONE);
    tb_file(a, "evil/.wh.canary", "", 0644);
    tb_close(a);
    expect_refused(f, DRV_UNPACK_APPLY, DRV_ERR_INVALID, "parent \"evil\" is a symbolic link");
    a = tb_open(f->blob, F_NONE);
    tb_file(a, "evil/.wh..wh..opq", "", 0644);
    tb_close(a);
    expect_refused(f, DRV_UNPACK_APPLY, DRV_ERR_INVALID, "parent \"evil\" is a symbolic link");
    /* Whiting out the symlink itself removes the link, not what it points to. */
    a = tb_open(f->blob, F_NONE);
    tb_file(a, ".wh.evil", "", 0644);
    tb_close(a);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(unpack(f, DRV_UNPACK_APPLY, &err), DRV_OK);
    assert_false(exists(p));
    assert_outside_untouched(f);
}

static void test_apply_whiteout_deletes(void **state)
{
    struct fx *f = *state;
    assert_int_equal(mkdir(f->dest, 0755), 0);
    struct archive *a = tb_open(f->blob, F_NONE);
    tb_file(a, "d/sub/f", "1", 0644);
    tb_dir(a, "d/sub/locked", 0);
    tb_file(a, "g", "2", 0644);
    tb_symlink(a, "l", f->outside);
    tb_file(a, "keep", "3", 0644);
    tb_file(a, "e/x", "4", 0644);
    tb_close(a);
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = unpack(f, DRV_UNPACK_APPLY, &err);
    if (rc != DRV_OK)
        fail_msg("layer 1: %s", err.msg);

    a = tb_open(f->blob, F_GZIP);
    tb_file(a, ".wh.d", "", 0644);
    tb_file(a, ".wh.g", "", 0644);
    tb_file(a, ".wh.l", "", 0644);
    tb_file(a, ".wh.missing", "", 0644);
    tb_file(a, "nothere/.wh.x", "", 0644);
    tb_file(a, "new", "5", 0644);
    tb_file(a, ".wh.new", "", 0644); /* same layer: a whiteout only hides lower layers */
    tb_file(a, "e/.wh.x", "", 0644);
    tb_close(a);
    rc = unpack(f, DRV_UNPACK_APPLY, &err);
    if (rc != DRV_OK)
        fail_msg("layer 2: %s", err.msg);

    char p[PATH_MAX];
    static const char *const gone[] = {"d",     "g",     "l",       "e/x",
                                       ".wh.d", ".wh.g", ".wh.new", "nothere"};
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
        pathf(p, "%s/%s", f->dest, gone[i]);
        if (exists(p))
            fail_msg("%s should be gone", gone[i]);
    }
    static const char *const kept[] = {"keep", "new", "e"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        pathf(p, "%s/%s", f->dest, kept[i]);
        if (!exists(p))
            fail_msg("%s should be kept", kept[i]);
    }
    assert_outside_untouched(f);
}

static void test_apply_opaque(void **state)
{
    struct fx *f = *state;
    assert_int_equal(mkdir(f->dest, 0755), 0);
    struct archive *a = tb_open(f->blob, F_NONE);
    tb_file(a, "o/old1", "1", 0644);
    tb_file(a, "o/sub/old2", "2", 0644);
    tb_file(a, "o/mixed/old3", "3", 0644);
    tb_symlink(a, "o/ln", f->outside);
    tb_file(a, "other/stay", "4", 0644);
    tb_close(a);
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = unpack(f, DRV_UNPACK_APPLY, &err);
    if (rc != DRV_OK)
        fail_msg("layer 1: %s", err.msg);

    a = tb_open(f->blob, F_NONE);
    tb_dir(a, "o/", 0755);
    tb_file(a, "o/new", "n", 0644);
    tb_file(a, "o/mixed/new2", "n", 0644); /* written before the marker: kept */
    tb_file(a, "o/.wh..wh..opq", "", 0644);
    tb_file(a, "o/later/x", "n", 0644);
    tb_file(a, "absent/.wh..wh..opq", "", 0644); /* nothing to empty */
    tb_close(a);
    rc = unpack(f, DRV_UNPACK_APPLY, &err);
    if (rc != DRV_OK)
        fail_msg("layer 2: %s", err.msg);

    char p[PATH_MAX];
    static const char *const gone[] = {"o/old1", "o/sub", "o/mixed/old3", "o/ln", "o/.wh..wh..opq"};
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
        pathf(p, "%s/%s", f->dest, gone[i]);
        if (exists(p))
            fail_msg("%s should be gone", gone[i]);
    }
    static const char *const kept[] = {"o/new", "o/mixed/new2", "o/later/x", "other/stay"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        pathf(p, "%s/%s", f->dest, kept[i]);
        if (!exists(p))
            fail_msg("%s should be kept", kept[i]);
    }
    assert_outside_untouched(f);
}

/* Mounts l2 over l1 read-only in a private mount namespace of a child and checks what a
 * container would see. Returns the child's exit code: 0 ok, 77 overlay unavailable. */
static int overlay_check(const char *l1, const char *l2, const char *merged)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) < 0)
            _exit(77);
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
            _exit(77);
        char opts[2 * PATH_MAX + 32];
        snprintf(opts, sizeof opts, "lowerdir=%s:%s", l2, l1);
        if (mount("overlay", merged, "overlay", MS_RDONLY, opts) < 0)
            _exit(77);
        char p[PATH_MAX + 32];
        struct stat st;
        snprintf(p, sizeof p, "%s/d/gone", merged);
        if (lstat(p, &st) == 0)
            _exit(1); /* whited out: hidden */
        snprintf(p, sizeof p, "%s/d/stay", merged);
        if (lstat(p, &st) < 0)
            _exit(2);
        snprintf(p, sizeof p, "%s/o/hidden", merged);
        if (lstat(p, &st) == 0)
            _exit(3); /* opaque: lower content hidden */
        snprintf(p, sizeof p, "%s/o/new", merged);
        if (lstat(p, &st) < 0)
            _exit(4);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_overlay_conversion(void **state)
{
    struct fx *f = *state;
    char l1[PATH_MAX], l2[PATH_MAX], merged[PATH_MAX], p[PATH_MAX], buf[8];
    pathf(l1, "%s/l1", f->base);
    pathf(l2, "%s/l2", f->base);
    pathf(merged, "%s/merged", f->base);

    struct archive *a = tb_open(f->blob, F_NONE);
    tb_file(a, "d/gone", "1", 0644);
    tb_file(a, "d/stay", "2", 0644);
    tb_file(a, "o/hidden", "3", 0644);
    tb_close(a);
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = unpack_into(f->blob, l1, DRV_UNPACK_OVERLAY_LAYER, 0, 0, NULL, &err);
    if (rc != DRV_OK)
        fail_msg("layer 1: %s", err.msg);

    a = tb_open(f->blob, F_NONE);
    tb_dir(a, "d/", 0755);
    tb_file(a, "d/.wh.gone", "", 0644);
    tb_dir(a, "o/", 0755);
    tb_file(a, "o/.wh..wh..opq", "", 0644);
    tb_file(a, "o/new", "4", 0644);
    tb_file(a, "implied/.wh.x", "", 0644);
    tb_close(a);
    rc = unpack_into(f->blob, l2, DRV_UNPACK_OVERLAY_LAYER, 0, 0, NULL, &err);
    if (rc != DRV_OK)
        fail_msg("layer 2: %s", err.msg);

    struct stat st;
    pathf(p, "%s/d/gone", l2);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    assert_int_equal(st.st_rdev, makedev(0, 0));
    pathf(p, "%s/implied/x", l2);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    pathf(p, "%s/d/.wh.gone", l2);
    assert_false(exists(p));
    pathf(p, "%s/o/.wh..wh..opq", l2);
    assert_false(exists(p));
    pathf(p, "%s/o", l2);
    assert_int_equal(lgetxattr(p, "trusted.overlay.opaque", buf, sizeof buf), 1);
    assert_int_equal(buf[0], 'y');
    assert_outside_untouched(f);

    assert_int_equal(mkdir(merged, 0755), 0);
    int code = overlay_check(l1, l2, merged);
    if (code == 77)
        print_message("overlay mount not possible here; skipping the mounted check\n");
    else
        assert_int_equal(code, 0);
}

/* ---- limits and broken input ------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_decompression_bomb(void **state)
{
    struct fx *f = *state;
    struct archive *a = tb_open(f->blob, F_GZIP);
    tb_file(a, "small", "x", 0644);
    tb_zeros(a, "bomb", 32u << 20);
    tb_close(a);
    struct stat st;
    assert_int_equal(stat(f->blob, &st), 0);
    assert_true(st.st_size < 64 * 1024); /* a few KB expanding to 32 MiB */

    double t0 = now_s();
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = unpack_into(f->blob, f->dest, DRV_UNPACK_OVERLAY_LAYER, 1u << 20, 0, NULL, &err);
    assert_int_equal(rc, DRV_ERR_TOOBIG);
    assert_true(now_s() - t0 < 2.0);
    assert_non_null(strstr(err.msg, "test layer: entry \"bomb\": layer expands beyond the limit "
                                    "of 1048576 bytes"));
    assert_false(exists(f->dest));
    assert_outside_untouched(f);

    /* Many files each under the limit, together over it. */
    a = tb_open(f->blob, F_GZIP);
    for (int i = 0; i < 16; i++) {
        char name[32];
        snprintf(name, sizeof name, "part%02d", i);
        tb_zeros(a, name, 256u << 10);
    }
    tb_close(a);
    rc = unpack_into(f->blob, f->dest, DRV_UNPACK_OVERLAY_LAYER, 1u << 20, 0, NULL, &err);
    assert_int_equal(rc, DRV_ERR_TOOBIG);
    assert_non_null(strstr(err.msg, "entry \"part04\""));
    assert_false(exists(f->dest));
    assert_outside_untouched(f);
}

/* A hand-made ustar header (the writer would not produce these): typeflag, size as declared,
 * followed by data_len bytes of data padded to 512. */
static void raw_entry(FILE *out, const char *name, char type, unsigned long long size,
                      const char *link, size_t data_len)
{
    unsigned char h[512];
    memset(h, 0, sizeof h);
    snprintf((char *)h, 100, "%s", name);
    snprintf((char *)h + 100, 8, "%07o", 0755);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    snprintf((char *)h + 124, 12, "%011llo", size);
    snprintf((char *)h + 136, 12, "%011o", 1700000000);
    h[156] = (unsigned char)type;
    if (link)
        snprintf((char *)h + 157, 100, "%s", link);
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof h; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    assert_int_equal(fwrite(h, 1, sizeof h, out), sizeof h);
    static const unsigned char zero[512];
    for (size_t done = 0; done < data_len; done += 512)
        assert_int_equal(fwrite(zero, 1, 512, out), 512);
}

static void raw_end(FILE *out)
{
    static const unsigned char zero[1024];
    assert_int_equal(fwrite(zero, 1, sizeof zero, out), sizeof zero);
    assert_int_equal(fclose(out), 0);
}

/* Headers that lie about sizes: refused quickly, cleanly, with nothing left behind. */
static void test_raw_headers(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    double t0 = now_s();

    /* A file declaring 8 GiB - 1 with only 4 KiB behind it: truncated. */
    FILE *out = fopen(f->blob, "wb");
    assert_non_null(out);
    raw_entry(out, "f", '0', 077777777777ULL, NULL, 4096);
    raw_end(out);
    drv_err_t rc = unpack(f, DRV_UNPACK_OVERLAY_LAYER, &err);
    assert_int_equal(rc, DRV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "entry \"f\": corrupt or truncated layer"));
    assert_false(exists(f->dest));
    assert_outside_untouched(f);
    /* The same under a 1 MiB cap: stopped at the header. */
    rc = unpack_into(f->blob, f->dest, DRV_UNPACK_OVERLAY_LAYER, 1u << 20, 0, NULL, &err);
    assert_int_equal(rc, DRV_ERR_TOOBIG);
    assert_false(exists(f->dest));

    /* A hardlink declaring 8 GiB of data, to a target that is not there. */
    out = fopen(f->blob, "wb");
    assert_non_null(out);
    raw_entry(out, "h", '1', 077777777777ULL, "f", 4096);
    raw_end(out);
    rc = unpack(f, DRV_UNPACK_OVERLAY_LAYER, &err);
    assert_int_equal(rc, DRV_ERR_INVALID);
    assert_false(exists(f->dest));

    /* A directory declaring data, followed by that data and a file. */
    out = fopen(f->blob, "wb");
    assert_non_null(out);
    raw_entry(out, "d/", '5', 1024, NULL, 1024);
    raw_entry(out, "d/f", '0', 0, NULL, 0);
    raw_end(out);
    rc = unpack(f, DRV_UNPACK_OVERLAY_LAYER, &err);
    if (rc != DRV_OK)
        assert_false(exists(f->dest));
    assert_outside_untouched(f);
    assert_true(now_s() - t0 < 3.0);
}

static void test_entry_cap(void **state)
{
    struct fx *f = *state;
    struct archive *a = tb_open(f->blob, F_NONE);
    for (int i = 0; i < 50; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%02d", i);
        tb_file(a, name, "", 0644);
    }
    tb_close(a);
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = unpack_into(f->blob, f->dest, DRV_UNPACK_OVERLAY_LAYER, 0, 10, NULL, &err);
    assert_int_equal(rc, DRV_ERR_TOOBIG);
    assert_non_null(strstr(err.msg, "layer has more than 10 entries"));
    assert_false(exists(f->dest));
    assert_outside_untouched(f);

    drv_unpack_stats_t stats = {0};
    rc = unpack_into(f->blob, f->dest, DRV_UNPACK_OVERLAY_LAYER, 0, 50, &stats, &err);
    assert_int_equal(rc, DRV_OK);
    assert_int_equal(stats.entries, 50);
}

/* One directory named thousands of times: remembered once, the last entry's mode wins. */
static void test_repeated_directory(void **state)
{
    struct fx *f = *state;
    struct archive *a = tb_open(f->blob, F_GZIP);
    for (int i = 0; i < 3000; i++)
        tb_dir(a, "d", i == 2999 ? 0711 : 0755);
    tb_file(a, "d/f", "x", 0644);
    tb_close(a);
    drv_error_t err = DRV_ERROR_INIT;
    drv_unpack_stats_t stats = {0};
    assert_int_equal(unpack_into(f->blob, f->dest, DRV_UNPACK_OVERLAY_LAYER, 0, 0, &stats, &err),
                     DRV_OK);
    assert_int_equal(stats.entries, 3001);
    char p[PATH_MAX];
    pathf(p, "%s/d", f->dest);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0711);
    assert_outside_untouched(f);
}

static void truncate_file(const char *path, off_t len)
{
    assert_int_equal(truncate(path, len), 0);
}

static void test_corrupt_archive(void **state)
{
    struct fx *f = *state;
    struct stat st;

    /* Truncated gzip. */
    struct archive *a = tb_open(f->blob, F_GZIP);
    tb_file(a, "a", "aaaa", 0644);
    tb_zeros(a, "b", 1u << 20);
    tb_file(a, "c", "cccc", 0644);
    tb_close(a);
    assert_int_equal(stat(f->blob, &st), 0);
    truncate_file(f->blob, st.st_size / 2);
    expect_refused(f, DRV_UNPACK_OVERLAY_LAYER, DRV_ERR_INVALID, "corrupt or truncated layer");

    /* Truncated plain tar, in the middle of a file's data. */
    a = tb_open(f->blob, F_NONE);
    tb_file(a, "a", "aaaa", 0644);
    tb_zeros(a, "b", 100000);
    tb_close(a);
    truncate_file(f->blob, 512 * 4 + 5000);
    expect_refused(f, DRV_UNPACK_OVERLAY_LAYER, DRV_ERR_INVALID,
                   "entry \"b\": corrupt or truncated layer");

    /* Not an archive at all; an empty file. */
    write_text(f->blob, "this is not a tar archive, just some text that goes on for a while", 0644);
    expect_refused(f, DRV_UNPACK_OVERLAY_LAYER, DRV_ERR_INVALID, "test layer: ");
    write_text(f->blob, "", 0644);
    expect_refused(f, DRV_UNPACK_OVERLAY_LAYER, DRV_ERR_INVALID, "test layer: ");

    /* A tar header with a bad checksum. */
    a = tb_open(f->blob, F_NONE);
    tb_file(a, "a", "aaaa", 0644);
    tb_close(a);
    int fd = open(f->blob, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "XXXX", 4, 100), 4);
    close(fd);
    expect_refused(f, DRV_UNPACK_OVERLAY_LAYER, DRV_ERR_INVALID, "test layer: ");

    /* A missing blob. */
    unlink(f->blob);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(unpack(f, DRV_UNPACK_OVERLAY_LAYER, &err), DRV_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "test layer: open "));
    assert_outside_untouched(f);
}

static void test_dest_exists(void **state)
{
    struct fx *f = *state;
    struct archive *a = tb_open(f->blob, F_NONE);
    tb_file(a, "new", "x", 0644);
    tb_close(a);
    assert_int_equal(mkdir(f->dest, 0755), 0);
    char p[PATH_MAX];
    pathf(p, "%s/mine", f->dest);
    write_text(p, "mine", 0600);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(unpack(f, DRV_UNPACK_OVERLAY_LAYER, &err), DRV_ERR_EXISTS);
    assert_non_null(strstr(err.msg, "exists already"));
    assert_true(exists(p));
    pathf(p, "%s/new", f->dest);
    assert_false(exists(p));
    /* A dangling symlink counts as existing too. */
    rm_rf(f->dest);
    assert_int_equal(symlink(f->outside, f->dest), 0);
    assert_int_equal(unpack(f, DRV_UNPACK_OVERLAY_LAYER, &err), DRV_ERR_EXISTS);
    unlink(f->dest);
    assert_outside_untouched(f);
}

static void test_bad_arguments(void **state)
{
    struct fx *f = *state;
    struct archive *a = tb_open(f->blob, F_NONE);
    tb_file(a, "new", "x", 0644);
    tb_close(a);
    drv_error_t err = DRV_ERROR_INIT;
    drv_unpack_opts_t o = {.mode = DRV_UNPACK_OVERLAY_LAYER, .what = "w"};
    assert_int_equal(drv_unpack_layer(f->blob, f->dest, NULL, NULL, &err), DRV_ERR_INVALID);
    assert_int_equal(drv_unpack_layer(NULL, f->dest, &o, NULL, &err), DRV_ERR_INVALID);
    assert_int_equal(drv_unpack_layer(f->blob, "", &o, NULL, &err), DRV_ERR_INVALID);
    assert_string_equal(err.msg, "w: destination: required");
    o.mode = (drv_unpack_mode_t)7;
    assert_int_equal(drv_unpack_layer(f->blob, f->dest, &o, NULL, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "opts.mode"));
    o.mode = DRV_UNPACK_APPLY;
    assert_int_equal(drv_unpack_layer(f->blob, f->dest, &o, NULL, &err), DRV_ERR_NOTFOUND);
    /* A NULL error context is allowed; a trailing slash on dest is fine. */
    char d[PATH_MAX];
    pathf(d, "%s/", f->dest);
    o.mode = DRV_UNPACK_OVERLAY_LAYER;
    assert_int_equal(drv_unpack_layer(f->blob, d, &o, NULL, NULL), DRV_OK);
    pathf(d, "%s/new", f->dest);
    assert_true(exists(d));
    assert_outside_untouched(f);
}

static void test_replace_and_owner(void **state)
{
    struct fx *f = *state;
    assert_int_equal(mkdir(f->dest, 0755), 0);
    struct archive *a = tb_open(f->blob, F_NONE);
    tb_file(a, "x/y/z", "deep", 0644);
    tb_file(a, "file", "old", 0644);
    tb_close(a);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(unpack(f, DRV_UNPACK_APPLY, &err), DRV_OK);

    a = tb_open(f->blob, F_NONE);
    tb_file(a, "x", "now a file", 0600); /* replaces a directory tree */
    tb_dir(a, "file/", 0700);            /* replaces a file */
    struct archive_entry *e = tb_entry("suid", AE_IFREG, 06755);
    archive_entry_set_uid(e, 1000);
    archive_entry_set_gid(e, 1000);
    tb_write(a, e, "x", 1);
    tb_close(a);
    drv_unpack_opts_t o = {.mode = DRV_UNPACK_APPLY, .what = "test layer", .preserve_owner = 0};
    drv_err_t rc = drv_unpack_layer(f->blob, f->dest, &o, NULL, &err);
    if (rc != DRV_OK)
        fail_msg("unpack: %s", err.msg);
    char p[PATH_MAX], buf[64];
    struct stat st;
    pathf(p, "%s/x", f->dest);
    assert_int_equal(read_text(p, buf, sizeof buf), 10);
    pathf(p, "%s/file", f->dest);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    pathf(p, "%s/suid", f->dest);
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_uid, 0); /* preserve_owner off: left as the caller */
    assert_int_equal(st.st_mode & 07777, 06755);

    o.preserve_owner = 1;
    rc = drv_unpack_layer(f->blob, f->dest, &o, NULL, &err);
    if (rc != DRV_OK)
        fail_msg("unpack: %s", err.msg);
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_uid, 1000);
    assert_int_equal(st.st_mode & 07777, 06755); /* chmod after chown keeps the bits */
    assert_outside_untouched(f);
}

static void test_hostile_names_quoted(void **state)
{
    struct fx *f = *state;
    struct archive *a = tb_open(f->blob, F_NONE);
    tb_file(a, "../\n\"evil\x1b[31m", "x", 0644);
    tb_close(a);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(unpack(f, DRV_UNPACK_OVERLAY_LAYER, &err), DRV_ERR_INVALID);
    assert_null(strchr(err.msg, '\n'));
    assert_null(strchr(err.msg, '\x1b'));
    assert_non_null(strstr(err.msg, "entry \"../\\x0a\\\"evil\\x1b[31m\": escapes"));

    /* Overlong and overdeep names are refused cleanly. */
    char name[5000];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    a = tb_open(f->blob, F_NONE);
    tb_file(a, name, "x", 0644);
    tb_close(a);
    expect_refused(f, DRV_UNPACK_OVERLAY_LAYER, DRV_ERR_INVALID, "longer than");
    for (size_t i = 0; i + 1 < 600; i += 2)
        name[i + 1] = '/';
    name[600] = '\0';
    a = tb_open(f->blob, F_NONE);
    tb_file(a, name, "x", 0644);
    tb_close(a);
    expect_refused(f, DRV_UNPACK_OVERLAY_LAYER, DRV_ERR_INVALID, "nested deeper than");
}

/* ---- hash flooding ------------------------------------------------------------------------- */

#define FNV_OFFSET UINT64_C(14695981039346656037)
#define FNV_PRIME UINT64_C(1099511628211)
#define FLOOD_MASK UINT64_C(0xffff) /* every table of up to 65536 slots */
#define FLOOD_TARGET UINT64_C(0x5a5a)

/* 64-bit FNV-1a, the unseeded hash the table of entry names used to have. */
static uint64_t old_fnv1a(const char *s, size_t len)
{
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * FNV_PRIME;
    return h;
}

static bool is_alnum_byte(unsigned v)
{
    return (v >= '0' && v <= '9') || (v >= 'a' && v <= 'z') || (v >= 'A' && v <= 'Z');
}

/* A name "c<i>-xyz" whose old hash is FLOOD_TARGET in its low 16 bits, so that all of them
 * fall into one probe chain of any table up to 65536 slots. The low bits of FNV-1a depend only
 * on the low bits of its state (the multiplier is odd, so it is invertible): the last byte is
 * solved for, the two before it searched. */
static void colliding_name(unsigned i, char *out, size_t outsz)
{
    static const char alnum[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    uint64_t inv = FNV_PRIME; /* Newton's iteration for the inverse modulo 2^64 */
    for (int k = 0; k < 6; k++)
        inv *= 2 - FNV_PRIME * inv;
    uint64_t u = (FLOOD_TARGET * inv) & FLOOD_MASK;
    for (unsigned pad = 0; pad < 8; pad++) {
        int n = snprintf(out, outsz, "c%u-%.*s", i, (int)pad, "xxxxxxxx");
        assert_true(n > 0 && (size_t)n + 4 < outsz);
        uint64_t h = old_fnv1a(out, (size_t)n);
        for (size_t a = 0; a < sizeof(alnum) - 1; a++) {
            for (size_t b = 0; b < sizeof(alnum) - 1; b++) {
                uint64_t x =
                    (((h ^ (unsigned char)alnum[a]) * FNV_PRIME) ^ (unsigned char)alnum[b]) *
                    FNV_PRIME;
                if (((x ^ u) & (FLOOD_MASK & ~UINT64_C(0xff))) != 0)
                    continue;
                unsigned c = (unsigned)((x ^ u) & 0xff);
                if (!is_alnum_byte(c))
                    continue;
                out[n] = alnum[a];
                out[n + 1] = alnum[b];
                out[n + 2] = (char)c;
                out[n + 3] = '\0';
                assert_int_equal(old_fnv1a(out, (size_t)n + 3) & FLOOD_MASK, FLOOD_TARGET);
                return;
            }
        }
    }
    fail_msg("no colliding name for %u", i);
}

/* Unpacks (APPLY) a layer of n empty files with colliding names; returns the probe count. */
static uint64_t flood_probes(struct fx *f, unsigned n)
{
    rm_rf(f->dest);
    assert_int_equal(mkdir(f->dest, 0755), 0);
    struct archive *a = tb_open(f->blob, F_NONE);
    for (unsigned i = 0; i < n; i++) {
        char name[64];
        colliding_name(i, name, sizeof name);
        tb_file(a, name, "", 0644);
    }
    tb_close(a);
    drv_error_t err = DRV_ERROR_INIT;
    drv_unpack_stats_t st = {0};
    drv_err_t rc = unpack_into(f->blob, f->dest, DRV_UNPACK_APPLY, 0, 0, &st, &err);
    if (rc != DRV_OK)
        fail_msg("unpack: %s", err.msg);
    assert_int_equal(st.entries, n);
    return st.name_probes;
}

/* Names chosen to collide under the old unseeded hash cost the seeded table a bounded number
 * of probes each: four times the entries, about four times the probes (the old table needed
 * sixteen times as many, every insert walking the whole chain). Counted, not timed. */
static void test_colliding_names_linear(void **state)
{
    struct fx *f = *state;
    const unsigned n = 1000;
    uint64_t p1 = flood_probes(f, n);
    uint64_t p4 = flood_probes(f, 4 * n);
    print_message("probes: %u entries %llu, %u entries %llu\n", n, (unsigned long long)p1, 4 * n,
                  (unsigned long long)p4);
    assert_true(p1 > 0);
    assert_true(p4 < 8 * p1);
    /* And each lookup is short: a few slots on average, not a chain of thousands. */
    assert_true(p4 < (uint64_t)4 * n * 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plain_layer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gzip_layer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zstd_layer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dotdot_escape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absolute_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_write_through_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_to_canary_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_parent_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hardlink_outside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hardlink_via_symlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whiteout_escape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_whiteout_deletes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_opaque, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlay_conversion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decompression_bomb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeated_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_archive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dest_exists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_and_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_names_quoted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_colliding_names_linear, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
