/* Durable files for state on SD cards: atomic replacement (temp, fsync, rename, fsync dir),
 * reads that check sizes before they allocate, and moving corrupt files aside. */
#include "drover/file.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"

/* First allocation for sources of unknown size (pipes); grows geometrically up to max. */
#define READ_INITIAL_CAP (64 * 1024)

/* Directory fsync is not supported everywhere (some FUSE and network file systems): that is
 * not a reason to fail a write that is otherwise done. */
static int fsync_dir_fd(int fd)
{
    if (fsync(fd) == 0)
        return 0;
    if (errno == EINVAL || errno == ENOTSUP || errno == EBADF)
        return 0;
    return -1;
}

/* Copies the directory part of path into dir ("." or "/" when there is none). */
static drv_err_t dir_of(const char *path, char *dir, size_t dirsz)
{
    const char *slash = strrchr(path, '/');
    size_t n;
    if (slash == NULL) {
        n = 1;
        path = ".";
    } else {
        n = (size_t)(slash - path);
        /* Trim repeated slashes before the last component: "a//b" -> "a". */
        while (n > 0 && path[n - 1] == '/')
            n--;
        if (n == 0)
            n = 1; /* "/x" or "//x": the root */
    }
    if (n >= dirsz)
        return DRV_ERR_TOOBIG;
    memcpy(dir, path, n);
    dir[n] = '\0';
    return DRV_OK;
}

drv_err_t drv_file_sync_dir_of(const char *path, drv_error_t *err)
{
    if (path == NULL || path[0] == '\0')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "sync directory: empty path");
    char dir[PATH_MAX];
    if (dir_of(path, dir, sizeof(dir)) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "sync directory of %.256s...: path too long",
                             path);
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return drv_error_set(err, drv_error_from_errno(errno), errno, "open directory %s", dir);
    if (fsync_dir_fd(fd) != 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "fsync directory %s", dir);
    return DRV_OK;
}

drv_err_t drv_file_write_all(int fd, const void *data, size_t len, drv_error_t *err)
{
    const char *p = data;
    while (len > 0) {
        size_t chunk = len > (size_t)SSIZE_MAX ? (size_t)SSIZE_MAX : len;
        ssize_t n = write(fd, p, chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return drv_error_set(err, drv_error_from_errno(errno), errno, "write");
        }
        if (n == 0)
            return drv_error_set(err, DRV_ERR_IO, EIO, "write: no progress");
        p += n;
        len -= (size_t)n;
    }
    return DRV_OK;
}

static drv_err_t write_replace(const char *path, const void *data, size_t len, mode_t mode,
                               bool durable, drv_error_t *err)
{
    if (path == NULL || path[0] == '\0')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "write file: empty path");
    if (data == NULL && len > 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "write %s: no data", path);
    size_t plen = strlen(path);
    if (path[plen - 1] == '/')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "write %s: path names a directory", path);

    char tmp[PATH_MAX];
    if (drv_fmt(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "write %.256s...: path too long", path);

    /* A temp left by a crashed run with our pid is stale; O_EXCL then refuses symlinks and
     * anything else someone placed there. */
    (void)unlink(tmp);
    _cleanup_close_ int fd =
        open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode & 07777);
    if (fd < 0)
        return drv_error_set(err, drv_error_from_errno(errno), errno, "write %s: create %s", path,
                             tmp);

    const char *step;
    if (drv_file_write_all(fd, data, len, NULL) != DRV_OK) {
        step = "write";
        goto fail;
    }
    if (durable && fsync(fd) != 0) {
        step = "fsync";
        goto fail;
    }
    int cfd = TAKE_FD(fd);
    if (close(cfd) != 0) {
        step = "close";
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        step = "rename";
        goto fail;
    }
    if (!durable)
        return DRV_OK;
    /* The new contents are in place; a failed directory sync only weakens durability across
     * a power cut, but the caller asked for durability, so report it. */
    drv_err_t rc = drv_file_sync_dir_of(path, err);
    if (rc != DRV_OK) {
        (void)drv_error_wrap(err, "write %s", path);
        return rc;
    }
    return DRV_OK;

fail:;
    int e = errno;
    (void)unlink(tmp);
    return drv_error_set(err, drv_error_from_errno(e), e, "write %s: %s %s", path, step, tmp);
}

drv_err_t drv_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                drv_error_t *err)
{
    return write_replace(path, data, len, mode, true, err);
}

drv_err_t drv_file_write_replace(const char *path, const void *data, size_t len, mode_t mode,
                                 drv_error_t *err)
{
    return write_replace(path, data, len, mode, false, err);
}

drv_err_t drv_file_read_fd_capped(int fd, size_t max, char **out, size_t *len, drv_error_t *err)
{
    if (fd < 0 || out == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "read: bad arguments");
    /* Leave room for the probe byte past max and the NUL. */
    if (max > SIZE_MAX - 2)
        max = SIZE_MAX - 2;

    struct stat st;
    if (fstat(fd, &st) != 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "fstat");
    if (S_ISDIR(st.st_mode))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "is a directory");

    size_t cap; /* data bytes the buffer holds, without the NUL */
    if (S_ISREG(st.st_mode)) {
        if (st.st_size < 0)
            return drv_error_set(err, DRV_ERR_IO, 0, "negative file size");
        if ((uintmax_t)st.st_size > (uintmax_t)max)
            return drv_error_set(err, DRV_ERR_TOOBIG, 0,
                                 "file is %jd bytes, more than the maximum of %zu",
                                 (intmax_t)st.st_size, max);
        /* One byte more than the size, to notice a file that grew while we read. */
        cap = (size_t)st.st_size + 1;
    } else {
        cap = max + 1 < READ_INITIAL_CAP ? max + 1 : READ_INITIAL_CAP;
    }

    _cleanup_free_ char *buf = malloc(cap + 1);
    if (buf == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "allocating %zu bytes", cap + 1);
    size_t used = 0;
    for (;;) {
        if (used == cap) {
            if (used > max)
                break;
            size_t ncap = cap < (max + 1) / 2 ? cap * 2 : max + 1;
            if (ncap <= cap)
                ncap = cap + 1;
            char *p = realloc(buf, ncap + 1);
            if (p == NULL)
                return drv_error_set(err, DRV_ERR_NOMEM, 0, "allocating %zu bytes", ncap + 1);
            buf = p;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + used, cap - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return drv_error_set(err, drv_error_from_errno(errno), errno, "read");
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > max)
            break;
    }
    if (used > max)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "more than the maximum of %zu bytes", max);

    buf[used] = '\0';
    *out = TAKE_PTR(buf);
    if (len != NULL)
        *len = used;
    return DRV_OK;
}

drv_err_t drv_file_read_capped(const char *path, size_t max, char **out, size_t *len,
                               drv_error_t *err)
{
    if (path == NULL || path[0] == '\0' || out == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "read file: empty path");
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return drv_error_set(err, drv_error_from_errno(errno), errno, "read %s", path);
    drv_err_t rc = drv_file_read_fd_capped(fd, max, out, len, err);
    if (rc != DRV_OK) {
        (void)drv_error_wrap(err, "read %s", path);
        return rc;
    }
    return DRV_OK;
}

drv_err_t drv_file_quarantine(const char *path, drv_error_t *err)
{
    if (path == NULL || path[0] == '\0')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "quarantine: empty path");
    char bad[PATH_MAX];
    if (drv_fmt(bad, sizeof(bad), "%s.bad", path) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "quarantine %.256s...: path too long", path);
    if (rename(path, bad) != 0)
        return drv_error_set(err, drv_error_from_errno(errno), errno, "quarantine %s: rename to %s",
                             path, bad);
    drv_err_t rc = drv_file_sync_dir_of(path, err);
    if (rc != DRV_OK) {
        (void)drv_error_wrap(err, "quarantine %s", path);
        return rc;
    }
    return DRV_OK;
}

static drv_err_t mkdir_p(const char *path, mode_t mode, bool sync, drv_error_t *err)
{
    if (path == NULL || path[0] == '\0')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "mkdir: empty path");
    char buf[PATH_MAX];
    size_t n = strnlen(path, sizeof(buf));
    if (n >= sizeof(buf))
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "mkdir %.256s...: path too long", path);
    memcpy(buf, path, n + 1);

    /* Create each prefix in turn; the final component is handled by the last iteration. */
    for (size_t i = 1; i <= n; i++) {
        if (i < n && buf[i] != '/')
            continue;
        if (i < n && buf[i - 1] == '/')
            continue; /* "a//b": the prefix "a/" was done already */
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, mode) != 0) {
            int e = errno;
            struct stat st;
            if (e == EEXIST || e == EROFS || e == EACCES || e == EPERM) {
                /* Existing directories are fine, even on read-only file systems. */
                if (stat(buf, &st) == 0) {
                    if (!S_ISDIR(st.st_mode))
                        return drv_error_set(err, DRV_ERR_EXISTS, 0,
                                             "mkdir %s: %s exists and is not a directory", path,
                                             buf);
                    buf[i] = saved;
                    continue;
                }
            }
            return drv_error_set(err, drv_error_from_errno(e), e, "mkdir %s: create %s", path, buf);
        }
        drv_err_t rc = sync ? drv_file_sync_dir_of(buf, err) : DRV_OK;
        if (rc != DRV_OK) {
            (void)drv_error_wrap(err, "mkdir %s", path);
            return rc;
        }
        buf[i] = saved;
    }
    return DRV_OK;
}

drv_err_t drv_file_mkdir_p(const char *path, mode_t mode, drv_error_t *err)
{
    return mkdir_p(path, mode, true, err);
}

drv_err_t drv_file_mkdir_p_unsynced(const char *path, mode_t mode, drv_error_t *err)
{
    return mkdir_p(path, mode, false, err);
}
