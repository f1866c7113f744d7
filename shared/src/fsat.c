/* Files beneath a directory fd without following symlinks, and the one recursive removal of
 * Drover (see fsat.h). Every name is checked lexically first (relative, no ".."), then resolved
 * by openat2 or, where the kernel lacks it, by a walk with O_NOFOLLOW (fsat_int.h). */
#include "drover/fsat.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "fsat_int.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/* Passes of a removal: each one removes everything down to DRV_FSAT_RM_MAX_DEPTH, so this
 * bounds the depth removed at 64 * 4096 levels, far beyond what PATH_MAX lets anyone build. */
#define RM_MAX_PASSES 4096
/* openat2 fails with EAGAIN when a rename raced the lookup; a few retries, then the walk. */
#define OPENAT2_RETRIES 4

/* Checks rel lexically: relative, no ".." component, shorter than PATH_MAX. */
static drv_err_t check_rel(const char *rel, drv_error_t *err)
{
    if (rel == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "no path");
    size_t n = strnlen(rel, PATH_MAX);
    if (n >= PATH_MAX)
        return drv_error_set(err, DRV_ERR_TOOBIG, ENAMETOOLONG, "%.64s...", rel);
    if (rel[0] == '/')
        return drv_error_set(err, DRV_ERR_PERM, EXDEV, "%s: absolute path not allowed here", rel);
    for (const char *p = rel; *p;) {
        const char *e = strchrnul(p, '/');
        if (e - p == 2 && p[0] == '.' && p[1] == '.')
            return drv_error_set(err, DRV_ERR_PERM, EXDEV, "%s: \"..\" not allowed here", rel);
        p = *e ? e + 1 : e;
    }
    return DRV_OK;
}

/* The error for a failed open of rel, naming symlinks and escapes as such. */
static drv_err_t open_error(const char *rel, int e, drv_error_t *err)
{
    if (e == ELOOP)
        return drv_error_set(err, DRV_ERR_PERM, e, "%s: a symbolic link is never followed here",
                             rel);
    if (e == EXDEV)
        return drv_error_set(err, DRV_ERR_PERM, e, "%s: escapes its directory", rel);
    return drv_error_set(err, drv_error_from_errno(e), e, "%s", rel);
}

int fsat_open_walk(int dirfd, const char *rel, int flags, mode_t mode)
{
    char buf[PATH_MAX];
    size_t n = strnlen(rel, sizeof(buf));
    if (n >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, rel, n + 1);
    _cleanup_close_ int cur = -1; /* -1: still dirfd */
    char *p = buf;
    for (;;) {
        while (*p == '/')
            p++;
        char *slash = strchr(p, '/');
        char *rest = slash;
        while (rest && *rest == '/')
            rest++;
        bool last = rest == NULL || *rest == '\0';
        if (slash)
            *slash = '\0';
        const char *name = *p ? p : ".";
        int at = cur >= 0 ? cur : dirfd;
        int fd = last ? openat(at, name, flags | O_NOFOLLOW | O_CLOEXEC, mode)
                 : strcmp(name, ".") != 0
                     ? openat(at, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                     : -2;
        if (fd == -1) {
            int e = errno;
            struct stat st;
            /* With O_DIRECTORY|O_NOFOLLOW a symlink reads as "not a directory": say what it
             * is, on every kernel (and under qemu-user) alike. */
            if (e == ENOTDIR && fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISLNK(st.st_mode))
                e = ELOOP;
            errno = e;
            return -1;
        }
        if (last)
            return fd;
        if (fd >= 0) {
            if (cur >= 0)
                close(cur);
            cur = fd;
        }
        p = rest;
    }
}

drv_err_t drv_fsat_open(int dirfd, const char *rel, int flags, mode_t mode, int *fd,
                        drv_error_t *err)
{
    drv_err_t rc = check_rel(rel, err);
    if (rc != DRV_OK)
        return rc;
    if (rel[0] == '\0')
        rel = ".";
    if (!(flags & O_CREAT) && (flags & O_TMPFILE) != O_TMPFILE)
        mode = 0; /* openat2 refuses a mode it would not use */
    int r = -1;
    bool walk = false;
    for (int i = 0;; i++) {
        struct open_how how = {.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
                               .mode = mode,
                               .resolve =
                                   RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
        r = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
        if (r >= 0 || errno != EAGAIN || i == OPENAT2_RETRIES) {
            walk = r < 0 && (errno == ENOSYS || errno == EAGAIN);
            break;
        }
    }
    if (walk)
        r = fsat_open_walk(dirfd, rel, flags, mode);
    if (r < 0)
        return open_error(rel, errno, err);
    _cleanup_close_ int got = r;
    if (flags & O_PATH) {
        /* O_PATH|O_NOFOLLOW opens a symlink itself; this module never hands one out. */
        struct stat st;
        if (fstat(got, &st) != 0)
            return drv_error_set(err, DRV_ERR_IO, errno, "%s", rel);
        if (S_ISLNK(st.st_mode))
            return open_error(rel, ELOOP, err);
    }
    *fd = TAKE_FD(got);
    return DRV_OK;
}

/* Splits rel into its parent, opened beneath dirfd as an O_PATH directory (*parent, caller
 * closes), and its last component (*base, pointing into rel). The last component must name
 * an entry: not empty, not ".". */
static drv_err_t open_parent(int dirfd, const char *rel, int *parent, const char **base,
                             drv_error_t *err)
{
    drv_err_t rc = check_rel(rel, err);
    if (rc != DRV_OK)
        return rc;
    size_t n = strlen(rel);
    size_t b = n;
    while (b > 0 && rel[b - 1] != '/')
        b--;
    if (n == b || (n - b == 1 && rel[b] == '.'))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: does not name an entry", rel);
    char dir[PATH_MAX];
    memcpy(dir, rel, b);
    dir[b] = '\0';
    rc = drv_fsat_open(dirfd, dir, O_PATH | O_DIRECTORY, 0, parent, err);
    if (rc != DRV_OK)
        return rc;
    *base = rel + b;
    return DRV_OK;
}

drv_err_t drv_fsat_read(int dirfd, const char *rel, size_t max, char **out, size_t *len,
                        drv_error_t *err)
{
    _cleanup_close_ int fd = -1;
    /* O_NONBLOCK: a FIFO placed at rel must not hang the reader; it is refused below. */
    drv_err_t rc = drv_fsat_open(dirfd, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK, 0, &fd, err);
    if (rc != DRV_OK)
        return rc;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "%s", rel);
    if (!S_ISREG(st.st_mode))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: not a regular file", rel);
    rc = drv_file_read_fd_capped(fd, max, out, len, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "%s", rel);
    return DRV_OK;
}

drv_err_t drv_fsat_write(int dirfd, const char *rel, const void *data, size_t len, mode_t mode,
                         drv_error_t *err)
{
    _cleanup_close_ int parent = -1;
    const char *base;
    drv_err_t rc = open_parent(dirfd, rel, &parent, &base, err);
    if (rc != DRV_OK)
        return rc;
    char tmp[NAME_MAX + 1];
    /* The base name is cut to keep the temporary within NAME_MAX: it only has to be unique
     * among the writes of this process, which are sequential. */
    if (drv_fmt(tmp, sizeof(tmp), ".%.200s.tmp.%ld", base, (long)getpid()) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, ENAMETOOLONG, "%s", rel);
    (void)unlinkat(parent, tmp, 0);
    _cleanup_close_ int fd =
        openat(parent, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 07777);
    if (fd < 0)
        return drv_error_set(err, drv_error_from_errno(errno), errno, "%s: create", rel);
    const char *step = "write";
    int e = 0;
    if (fchmod(fd, mode & 07777) != 0) {
        step = "chmod";
        e = errno;
    } else if ((rc = drv_file_write_all(fd, data, len, err)) != DRV_OK) {
        e = err ? err->sys_errno : EIO;
    } else if (close(TAKE_FD(fd)) != 0) {
        step = "close";
        e = errno;
    } else if (renameat(parent, tmp, parent, base) != 0) {
        step = "rename";
        e = errno;
    } else {
        return DRV_OK;
    }
    (void)unlinkat(parent, tmp, 0);
    return drv_error_set(err, drv_error_from_errno(e), e, "%s: %s", rel, step);
}

drv_err_t drv_fsat_mkdir(int dirfd, const char *rel, mode_t mode, drv_error_t *err)
{
    _cleanup_close_ int parent = -1;
    const char *base;
    drv_err_t rc = open_parent(dirfd, rel, &parent, &base, err);
    if (rc != DRV_OK)
        return rc;
    if (mkdirat(parent, base, mode) == 0)
        return DRV_OK;
    int e = errno;
    struct stat st;
    if (e == EEXIST && fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(st.st_mode))
            return DRV_OK;
        return drv_error_set(err, DRV_ERR_EXISTS, 0, "%s: exists and is not a directory", rel);
    }
    return drv_error_set(err, drv_error_from_errno(e), e, "%s: mkdir", rel);
}

/* ---- recursive removal ---------------------------------------------------------------- */

typedef struct rm_ctx {
    int rootfd;     /* the directory being removed: deep subtrees are moved up into it */
    dev_t dev;      /* its device: a directory on another is a mount and never entered */
    unsigned seq;   /* names for moved subtrees */
    bool again;     /* something was moved up: another pass is needed */
    uint64_t bytes; /* sizes of the regular files removed */
    int first_errno;
    char first_name[NAME_MAX + 1]; /* the entry of the first failure, for the message */
} rm_ctx_t;

static void rm_fail(rm_ctx_t *c, const char *name, int e)
{
    if (c->first_errno != 0)
        return;
    c->first_errno = e ? e : EIO;
    size_t n = strnlen(name, sizeof(c->first_name) - 1);
    memcpy(c->first_name, name, n);
    c->first_name[n] = '\0';
}

/* True if the open directory fd is the root of a mount, or on another device than dev. */
static bool is_other_mount(int fd, dev_t dev)
{
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE, &sx) != 0)
        return true; /* cannot tell: do not enter */
    if (makedev(sx.stx_dev_major, sx.stx_dev_minor) != dev)
        return true;
    /* A bind mount of the same file system keeps st_dev; the kernel marks its root. */
    return (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
           (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* Opens the directory name in dirfd for reading, making it readable first if the tree
 * (an image layer) left it without owner permissions. */
static int rm_open_dir(int dirfd, const char *name, mode_t mode)
{
    if ((mode & 0700) != 0700)
        (void)fchmodat(dirfd, name, (mode & 07777) | 0700, 0);
    return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

static void rm_contents(rm_ctx_t *c, int fd, int depth);

/* Removes name in dirfd (at depth below the root) and what it holds; failures are recorded
 * in c and the walk goes on, so that as much as possible goes. */
static void rm_entry(rm_ctx_t *c, int dirfd, const char *name, int depth)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT)
            rm_fail(c, name, errno);
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(dirfd, name, 0) == 0) {
            if (S_ISREG(st.st_mode))
                c->bytes += (uint64_t)st.st_size;
        } else if (errno != ENOENT) {
            rm_fail(c, name, errno);
        }
        return;
    }
    if (st.st_dev != c->dev) {
        rm_fail(c, name, EXDEV);
        return;
    }
    if (depth >= DRV_FSAT_RM_MAX_DEPTH) {
        char moved[32];
        int r = -1;
        errno = ENAMETOOLONG;
        do {
            if (drv_fmt(moved, sizeof(moved), ".drv-rm-%u", c->seq++) != DRV_OK)
                break;
            r = renameat2(dirfd, name, c->rootfd, moved, RENAME_NOREPLACE);
        } while (r != 0 && errno == EEXIST && c->seq < UINT_MAX);
        if (r != 0)
            rm_fail(c, name, errno);
        else
            c->again = true;
        return;
    }
    int fd = rm_open_dir(dirfd, name, st.st_mode);
    if (fd < 0) {
        if (errno != ENOENT)
            rm_fail(c, name, errno);
        return;
    }
    /* Checked on the open fd, so a mount that appeared since the stat is seen too. */
    if (is_other_mount(fd, c->dev)) {
        close(fd);
        rm_fail(c, name, EXDEV);
        return;
    }
    rm_contents(c, fd, depth + 1);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT &&
        !(errno == ENOTEMPTY && c->first_errno != 0))
        rm_fail(c, name, errno);
}

/* Removes what the directory fd (consumed) holds. */
static void rm_contents(rm_ctx_t *c, int fd, int depth)
{
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        rm_fail(c, ".", errno);
        close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        rm_entry(c, dirfd(d), de->d_name, depth);
    }
    closedir(d);
}

/* Empties the open directory root (on device dev) in passes; what names it in messages. */
static drv_err_t rm_empty(int root, dev_t dev, const char *what, uint64_t *bytes, drv_error_t *err)
{
    rm_ctx_t c = {.rootfd = root, .dev = dev};
    for (int pass = 0;; pass++) {
        c.again = false;
        int fd = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            rm_fail(&c, ".", errno);
            break;
        }
        rm_contents(&c, fd, 1);
        if (!c.again)
            break;
        if (pass + 1 >= RM_MAX_PASSES) {
            rm_fail(&c, ".", ELOOP);
            break;
        }
    }
    if (bytes)
        *bytes += c.bytes;
    if (c.first_errno != 0) {
        if (c.first_errno == EXDEV)
            return drv_error_set(err, DRV_ERR_IO, EXDEV,
                                 "remove %s: %s is a mount point, not entered", what, c.first_name);
        return drv_error_set(err, drv_error_from_errno(c.first_errno), c.first_errno,
                             "remove %s: %s", what, c.first_name);
    }
    return DRV_OK;
}

/* Removes base in parent (an fd the caller resolved); what names the tree in messages. */
static drv_err_t remove_tree_at(int parent, const char *base, const char *what, uint64_t *bytes,
                                drv_error_t *err)
{
    struct stat st;
    if (fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            return DRV_OK;
        return drv_error_set(err, drv_error_from_errno(errno), errno, "remove %s", what);
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(parent, base, 0) != 0 && errno != ENOENT)
            return drv_error_set(err, drv_error_from_errno(errno), errno, "remove %s", what);
        if (bytes && S_ISREG(st.st_mode))
            *bytes += (uint64_t)st.st_size;
        return DRV_OK;
    }
    _cleanup_close_ int root = rm_open_dir(parent, base, st.st_mode);
    if (root < 0)
        return drv_error_set(err, drv_error_from_errno(errno), errno, "remove %s", what);
    struct stat pst;
    if (fstat(parent, &pst) != 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "remove %s", what);
    if (is_other_mount(root, pst.st_dev))
        return drv_error_set(err, DRV_ERR_IO, EXDEV, "remove %s: a mount point, not entered", what);
    drv_err_t rc = rm_empty(root, pst.st_dev, what, bytes, err);
    if (rc != DRV_OK)
        return rc;
    if (unlinkat(parent, base, AT_REMOVEDIR) != 0 && errno != ENOENT)
        return drv_error_set(err, drv_error_from_errno(errno), errno, "remove %s", what);
    return DRV_OK;
}

drv_err_t drv_fsat_remove_tree(int dirfd, const char *rel, uint64_t *bytes, drv_error_t *err)
{
    _cleanup_close_ int parent = -1;
    const char *base;
    drv_err_t rc = open_parent(dirfd, rel, &parent, &base, err);
    if (rc == DRV_ERR_NOTFOUND)
        return DRV_OK; /* a missing parent: nothing to remove */
    if (rc != DRV_OK)
        return drv_error_wrap(err, "remove");
    return remove_tree_at(parent, base, rel, bytes, err);
}

drv_err_t drv_fsat_clear_dir(int dirfd, const char *rel, uint64_t *bytes, drv_error_t *err)
{
    _cleanup_close_ int fd = -1;
    drv_err_t rc = drv_fsat_open(dirfd, rel, O_RDONLY | O_DIRECTORY, 0, &fd, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "clear");
    struct stat st;
    if (fstat(fd, &st) != 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "clear %s", rel);
    return rm_empty(fd, st.st_dev, rel[0] ? rel : ".", bytes, err);
}

drv_err_t drv_fsat_remove_tree_path(const char *path, uint64_t *bytes, drv_error_t *err)
{
    if (path == NULL || path[0] == '\0')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "remove: empty path");
    size_t n = strnlen(path, PATH_MAX);
    if (n >= PATH_MAX)
        return drv_error_set(err, DRV_ERR_TOOBIG, ENAMETOOLONG, "remove %.64s...", path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    size_t b = n;
    while (b > 0 && path[b - 1] != '/')
        b--;
    char dir[PATH_MAX], base[PATH_MAX];
    memcpy(base, path + b, n - b);
    base[n - b] = '\0';
    if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "remove %s: does not name an entry", path);
    if (b == 0) {
        memcpy(dir, ".", 2);
    } else {
        size_t d = b;
        while (d > 1 && path[d - 1] == '/')
            d--;
        memcpy(dir, path, d);
        dir[d] = '\0';
    }
    _cleanup_close_ int parent = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (parent < 0) {
        if (errno == ENOENT)
            return DRV_OK;
        return drv_error_set(err, drv_error_from_errno(errno), errno, "remove %s", path);
    }
    return remove_tree_at(parent, base, path, bytes, err);
}
