/* A streaming reader for the tar archives OCI layers are: ustar, pax and GNU headers, plain or
 * gzip- or zstd-compressed, read once from a file descriptor with fixed buffers. It only reads:
 * what the names mean, and whether they are safe to create, is image/unpack.c's concern.
 *
 * What it reads like Go's archive/tar, which writes most layers: the pax keys path, linkpath,
 * size, uid, gid, mtime, atime, SCHILY.xattr.* and SCHILY.devmajor/devminor (pax global
 * headers are read and ignored, as libarchive and Go do); GNU long names and long link names;
 * base-256 numbers; only regular files carry data (hardlink, symlink, directory, device and
 * fifo entries are header-only whatever their size field says); an unknown entry type is a
 * regular file (POSIX). Refused with a message: sparse files (GNU or pax), multi-volume
 * archives, a bad header checksum, numbers out of range, names over DRV_TAR_NAME_MAX - 1 bytes,
 * extension headers over 1 MiB, other compressions (xz, bzip2), and any truncation. */
#ifndef DROVER_AGENT_IMAGE_TAR_H
#define DROVER_AGENT_IMAGE_TAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "drover/error.h"

#define DRV_TAR_NAME_MAX 4096 /* longest entry name or link target, with its NUL */
#define DRV_TAR_XATTR_MAX 64  /* extended attributes per entry */

typedef struct drv_tar drv_tar_t;

typedef enum {
    DRV_TAR_FILE,
    DRV_TAR_DIR,
    DRV_TAR_SYMLINK,
    DRV_TAR_HARDLINK,
    DRV_TAR_CHAR,
    DRV_TAR_BLOCK,
    DRV_TAR_FIFO,
} drv_tar_type_t;

typedef enum {
    DRV_TAR_PLAIN,
    DRV_TAR_GZIP,
    DRV_TAR_ZSTD,
} drv_tar_compression_t;

typedef struct drv_tar_xattr {
    const char *name; /* NUL-terminated, not empty */
    const void *value;
    size_t size;
} drv_tar_xattr_t;

/* One entry's header. Every pointer is owned by the reader and valid until the next
 * drv_tar_next() or drv_tar_free(). */
typedef struct drv_tar_entry {
    const char *name; /* as stored: may start with "/" or "./", contain "..", end in "/" */
    const char *link; /* symlink target or hardlink target; "" for other types */
    drv_tar_type_t type;
    unsigned perm; /* mode & 07777 */
    int64_t uid;   /* >= 0 */
    int64_t gid;   /* >= 0 */
    uint64_t size; /* bytes of data drv_tar_read() gives: 0 for every type but files */
    struct timespec mtime;
    struct timespec atime; /* mtime when the archive has none */
    uint32_t devmajor;
    uint32_t devminor;
    const drv_tar_xattr_t *xattrs;
    size_t nxattrs;
} drv_tar_entry_t;

/* Starts reading fd (not closed by the reader) and tells the compression from its first bytes.
 * Fails with DRV_ERR_INVALID when the data is neither a tar archive's nor gzip or zstd. */
DRV_NODISCARD drv_err_t drv_tar_open(int fd, drv_tar_t **out, drv_error_t *err);

DRV_NODISCARD drv_tar_compression_t drv_tar_compression(const drv_tar_t *t);

/* The next entry, skipping whatever data of the previous one was not read. *entry is NULL at the
 * end of the archive. Any error is final: the reader gives nothing more. */
DRV_NODISCARD drv_err_t drv_tar_next(drv_tar_t *t, const drv_tar_entry_t **entry, drv_error_t *err);

/* The next piece of the current entry's data: *len bytes at *buf (valid until the next call),
 * *len == 0 once all of entry->size was given. A truncated archive is an error. */
DRV_NODISCARD drv_err_t drv_tar_read(drv_tar_t *t, const void **buf, size_t *len, drv_error_t *err);

/* Caps the uncompressed tar stream at max bytes, headers and skipped data included (0: no cap):
 * past it every call fails with DRV_ERR_TOOBIG. Extension headers and skipped records carry no
 * file data, so a cap on file data alone would let them expand without end. */
void drv_tar_set_limit(drv_tar_t *t, uint64_t max);

/* Bytes of the uncompressed tar stream read so far. */
DRV_NODISCARD uint64_t drv_tar_offset(const drv_tar_t *t);

void drv_tar_free(drv_tar_t *t);

#endif
