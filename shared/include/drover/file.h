/* Durable files for state on SD cards: crash-safe replacement (temp, fsync, rename, fsync dir)
 * and reads that check the size before they allocate. */
#ifndef DROVER_FILE_H
#define DROVER_FILE_H

#include <stddef.h>
#include <sys/types.h>
#include "drover/error.h"

/* Replaces path with data atomically: after a crash at any point the file holds either the
 * old or the new contents, never a mix. The temporary is "<path>.tmp.<pid>" in the same
 * directory and is removed on failure. */
DRV_API DRV_NODISCARD drv_err_t drv_file_write_atomic(const char *path, const void *data,
                                                      size_t len, mode_t mode, drv_error_t *err);

/* Replaces path with data by rename (readers never see a torn file) but without fsync: for
 * files that are regenerated whenever they are needed (an OCI bundle's config.json, a pod's
 * /etc/hosts), where durability would only wear the SD card and cost time. */
DRV_API DRV_NODISCARD drv_err_t drv_file_write_replace(const char *path, const void *data,
                                                       size_t len, mode_t mode, drv_error_t *err);

/* Reads the whole file into a malloc'd, NUL-terminated buffer (*out, caller frees; *len
 * without the NUL, len may be NULL). A file larger than max fails with DRV_ERR_TOOBIG before
 * any large allocation; a missing file with DRV_ERR_NOTFOUND. On failure *out is untouched. */
DRV_API DRV_NODISCARD drv_err_t drv_file_read_capped(const char *path, size_t max, char **out,
                                                     size_t *len, drv_error_t *err);

/* Same, from an open descriptor (a pipe or stdin too); the fd stays open. */
DRV_API DRV_NODISCARD drv_err_t drv_file_read_fd_capped(int fd, size_t max, char **out, size_t *len,
                                                        drv_error_t *err);

/* Writes all len bytes to fd, retrying short writes and EINTR (a pipe, a socket, a file). On
 * failure err carries errno; how much was written is unknown. */
DRV_API DRV_NODISCARD drv_err_t drv_file_write_all(int fd, const void *data, size_t len,
                                                   drv_error_t *err);

/* Moves a corrupt file aside to "<path>.bad" (replacing an older .bad) so that the next
 * start does not trip over it again. */
DRV_API DRV_NODISCARD drv_err_t drv_file_quarantine(const char *path, drv_error_t *err);

/* mkdir -p with mode for created directories; existing directories are fine. Each directory
 * it creates is made durable (its parent fsync()ed). */
DRV_API DRV_NODISCARD drv_err_t drv_file_mkdir_p(const char *path, mode_t mode, drv_error_t *err);

/* The same without the fsyncs: for directories that are made again whenever they are needed
 * (under /run, a container's bundle, scratch and log directories), where each fsync would be
 * a write to the SD card on a pod's start. */
DRV_API DRV_NODISCARD drv_err_t drv_file_mkdir_p_unsynced(const char *path, mode_t mode,
                                                          drv_error_t *err);

/* fsync()s the directory holding path (after a rename or create in it). */
DRV_API DRV_NODISCARD drv_err_t drv_file_sync_dir_of(const char *path, drv_error_t *err);

#endif
