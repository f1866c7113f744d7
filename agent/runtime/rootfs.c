/* Container root file systems as overlayfs mounts of an image's layers, adopted again after
 * an agent restart and removed without ever following a path out of the container's
 * directories. */
#include "runtime/rootfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drover/buf.h"
#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/fsat.h"

#ifndef OVERLAYFS_SUPER_MAGIC
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#endif

static const char *const subdirs[] = {"upper", "work", "lower"};

drv_err_t drv_rootfs_path(const char *dir, char *out, size_t outsz)
{
    return drv_fmt(out, outsz, "%s/rootfs", dir);
}

static drv_err_t sub_path(const char *dir, const char *name, char *out, size_t outsz,
                          drv_error_t *err)
{
    if (drv_fmt(out, outsz, "%s/%s", dir, name) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "rootfs %s: path too long", dir);
    return DRV_OK;
}

static drv_err_t check_mounted(const char *dir, bool *mounted, drv_error_t *err)
{
    char path[PATH_MAX];
    drv_err_t rc = sub_path(dir, "rootfs", path, sizeof(path), err);
    if (rc != DRV_OK)
        return rc;
    struct stat st, parent;
    struct statfs fs;
    if (stat(path, &st) != 0 || stat(dir, &parent) != 0) {
        if (errno == ENOENT) {
            *mounted = false;
            return DRV_OK;
        }
        return drv_error_set(err, DRV_ERR_IO, errno, "rootfs %s", path);
    }
    if (statfs(path, &fs) != 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "rootfs %s", path);
    bool is_mount = st.st_dev != parent.st_dev;
    if (is_mount && (unsigned long)fs.f_type != (unsigned long)OVERLAYFS_SUPER_MAGIC)
        return drv_error_set(err, DRV_ERR_CONFLICT, 0,
                             "rootfs %s: something other than an overlay is mounted there", path);
    *mounted = is_mount;
    return DRV_OK;
}

drv_err_t drv_rootfs_is_mounted(const char *dir, bool *mounted, drv_error_t *err)
{
    if (!dir || !mounted)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "rootfs: directory required");
    return check_mounted(dir, mounted, err);
}

/* Removes dir/name and everything in it (a non-directory is just unlinked), never entering
 * a mount; a missing one is fine. */
static drv_err_t rm_tree(const char *dir, const char *name, drv_error_t *err)
{
    char path[PATH_MAX];
    drv_err_t rc = sub_path(dir, name, path, sizeof(path), err);
    if (rc != DRV_OK)
        return rc;
    return drv_fsat_remove_tree_path(path, NULL, err);
}

/* ---- mounting ---- */

static bool overlay_knows_index(void)
{
    return access("/sys/module/overlay/parameters/index", F_OK) == 0;
}

static drv_err_t mount_error(const char *target, int e, drv_error_t *err)
{
    switch (e) {
    case ENODEV:
        return drv_error_set(err, DRV_ERR_UNSUPPORTED, e,
                             "mount overlay at %s: this kernel has no overlayfs (load the "
                             "\"overlay\" module); Drover needs it for container root file systems",
                             target);
    case EPERM:
        return drv_error_set(err, DRV_ERR_PERM, e,
                             "mount overlay at %s: needs root (CAP_SYS_ADMIN)", target);
    case EINVAL:
        return drv_error_set(err, DRV_ERR_IO, e,
                             "mount overlay at %s: rejected (is the state directory on a file "
                             "system overlayfs cannot write to, such as another overlay?)",
                             target);
    default:
        return drv_error_set(err, DRV_ERR_IO, e, "mount overlay at %s", target);
    }
}

/* The lowerdir list, topmost first: the layers' own paths, or (short) the names of the
 * symlinks in <dir>/lower. */
static drv_err_t build_options(const char *const *layers, size_t n, const char *dir,
                               bool short_form, drv_buf_t *b)
{
    drv_err_t rc = drv_buf_puts(b, "lowerdir=");
    for (size_t i = n; i-- > 0 && rc == DRV_OK;) {
        if (short_form)
            rc = drv_buf_printf(b, "%zu", i);
        else
            rc = drv_buf_puts(b, layers[i]);
        if (rc == DRV_OK && i > 0)
            rc = drv_buf_putc(b, ':');
    }
    if (rc != DRV_OK)
        return rc;
    if (short_form)
        rc = drv_buf_puts(b, ",upperdir=../upper,workdir=../work");
    else
        rc = drv_buf_printf(b, ",upperdir=%s/upper,workdir=%s/work", dir, dir);
    if (rc == DRV_OK && overlay_knows_index())
        rc = drv_buf_puts(b, ",index=off");
    return rc;
}

/* Mounts with options relative to <dir>/lower, from a child so that this process's working
 * directory never changes. */
static int mount_relative(const char *dir, const char *opts)
{
    char lower[PATH_MAX];
    if (drv_fmt(lower, sizeof(lower), "%s/lower", dir) != DRV_OK) {
        errno = ENAMETOOLONG;
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (chdir(lower) != 0)
            _exit(errno & 0xff);
        if (mount("overlay", "../rootfs", "overlay", 0, opts) != 0)
            _exit(errno & 0xff);
        _exit(0);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (!WIFEXITED(status)) {
        errno = EIO;
        return -1;
    }
    if (WEXITSTATUS(status) != 0) {
        errno = WEXITSTATUS(status);
        return -1;
    }
    return 0;
}

static drv_err_t make_links(const char *const *layers, size_t n, const char *dir, drv_error_t *err)
{
    drv_err_t rc = rm_tree(dir, "lower", err);
    if (rc != DRV_OK)
        return rc;
    char path[PATH_MAX];
    if ((rc = sub_path(dir, "lower", path, sizeof(path), err)) != DRV_OK)
        return rc;
    if (mkdir(path, 0700) != 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "mkdir %s", path);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "open %s", path);
    for (size_t i = 0; i < n; i++) {
        char name[24];
        if (drv_fmt(name, sizeof(name), "%zu", i) != DRV_OK || symlinkat(layers[i], fd, name) != 0)
            return drv_error_set(err, DRV_ERR_IO, errno, "symlink %s/%s", path, name);
    }
    return DRV_OK;
}

static drv_err_t check_layers(const char *const *layers, size_t n, const char *dir,
                              drv_error_t *err)
{
    if (!dir || dir[0] != '/')
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "rootfs: state directory must be an absolute path");
    if (strlen(dir) > PATH_MAX - 64)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "rootfs %.64s...: path too long", dir);
    if (!layers || n == 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "rootfs %s: the image has no layers", dir);
    if (n > DRV_ROOTFS_MAX_LAYERS)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0,
                             "rootfs %s: %zu layers, overlayfs stacks at most %d", dir, n,
                             DRV_ROOTFS_MAX_LAYERS);
    for (size_t i = 0; i < n; i++) {
        const char *l = layers[i];
        if (!l || l[0] != '/' || strpbrk(l, ",:\\") || strlen(l) >= PATH_MAX)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "rootfs %s: layer %zu \"%s\": must be an absolute path without "
                                 "',', ':' or '\\'",
                                 dir, i, l ? l : "(null)");
        struct stat st;
        if (stat(l, &st) != 0)
            return drv_error_set(err, DRV_ERR_NOTFOUND, errno, "rootfs %s: layer %zu %s", dir, i,
                                 l);
        if (!S_ISDIR(st.st_mode))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "rootfs %s: layer %zu %s: not a directory", dir, i, l);
    }
    return DRV_OK;
}

drv_err_t drv_rootfs_mount(const char *const *layers, size_t n_layers, const char *dir,
                           bool *adopted, drv_error_t *err)
{
    drv_err_t rc = check_layers(layers, n_layers, dir, err);
    if (rc != DRV_OK)
        return rc;
    struct stat st;
    bool dir_existed = stat(dir, &st) == 0;
    if (!dir_existed && (rc = drv_file_mkdir_p_unsynced(dir, 0700, err)) != DRV_OK)
        return rc;
    bool mounted = false;
    if ((rc = check_mounted(dir, &mounted, err)) != DRV_OK)
        return rc;
    if (mounted) {
        if (adopted)
            *adopted = true;
        return DRV_OK;
    }

    static const struct {
        const char *name;
        mode_t mode;
    } dirs[] = {{"rootfs", 0755}, {"upper", 0755}, {"work", 0700}};
    bool created[3] = {false, false, false};
    char target[PATH_MAX];
    drv_buf_t opts = DRV_BUF_INIT(1u << 16);
    for (size_t i = 0; i < 3 && rc == DRV_OK; i++) {
        char p[PATH_MAX];
        rc = sub_path(dir, dirs[i].name, p, sizeof(p), err);
        if (rc == DRV_OK && mkdir(p, dirs[i].mode) == 0)
            created[i] = true;
        else if (rc == DRV_OK && errno != EEXIST)
            rc = drv_error_set(err, DRV_ERR_IO, errno, "mkdir %s", p);
    }
    if (rc == DRV_OK)
        rc = sub_path(dir, "rootfs", target, sizeof(target), err);

    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        page = 4096;
    bool relative = false;
    if (rc == DRV_OK) {
        if (build_options(layers, n_layers, dir, false, &opts) != DRV_OK ||
            opts.len >= (size_t)page) {
            relative = true;
            drv_buf_reset(&opts);
            if (build_options(layers, n_layers, dir, true, &opts) != DRV_OK ||
                opts.len >= (size_t)page)
                rc = drv_error_set(err, DRV_ERR_TOOBIG, 0,
                                   "rootfs %s: overlay options do not fit in a page", dir);
            else
                rc = make_links(layers, n_layers, dir, err);
        }
    }
    if (rc == DRV_OK) {
        int r = relative ? mount_relative(dir, drv_buf_str(&opts))
                         : mount("overlay", target, "overlay", 0, drv_buf_str(&opts));
        if (r != 0)
            rc = mount_error(target, errno, err);
    }
    drv_buf_free(&opts);
    if (rc != DRV_OK) {
        /* Leave nothing this call made; an upper dir that was there (with data) stays. */
        drv_error_t ignore = DRV_ERROR_INIT;
        if (relative)
            (void)rm_tree(dir, "lower", &ignore);
        for (size_t i = 0; i < 3; i++)
            if (created[i])
                (void)rm_tree(dir, dirs[i].name, &ignore);
        if (!dir_existed)
            (void)rmdir(dir);
        return rc;
    }
    if (adopted)
        *adopted = false;
    return DRV_OK;
}

drv_err_t drv_rootfs_unmount(const char *dir, bool remove, drv_error_t *err)
{
    if (!dir || dir[0] != '/')
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "rootfs: state directory must be an absolute path");
    char target[PATH_MAX];
    drv_err_t rc = sub_path(dir, "rootfs", target, sizeof(target), err);
    if (rc != DRV_OK)
        return rc;
    /* Overlays stacked by earlier failed adoptions come off one by one. */
    for (int i = 0; i < 16; i++) {
        bool mounted = false;
        if ((rc = check_mounted(dir, &mounted, err)) != DRV_OK)
            return rc;
        if (!mounted)
            break;
        if (umount2(target, UMOUNT_NOFOLLOW) != 0) {
            if (errno != EBUSY || umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW) != 0)
                return drv_error_set(err, DRV_ERR_IO, errno, "unmount %s", target);
        }
    }
    if (!remove)
        return DRV_OK;
    bool mounted = false;
    if ((rc = check_mounted(dir, &mounted, err)) != DRV_OK)
        return rc;
    if (mounted)
        return drv_error_set(err, DRV_ERR_CONFLICT, 0, "rootfs %s: still mounted", target);
    if ((rc = rm_tree(dir, "rootfs", err)) != DRV_OK)
        return rc;
    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++)
        if ((rc = rm_tree(dir, subdirs[i], err)) != DRV_OK)
            return rc;
    return DRV_OK;
}
