/* A container's root file system: the image's unpacked layers stacked read-only with
 * overlayfs under a writable upper directory that belongs to the container. Layout under the
 * container's state directory (the OCI bundle directory):
 *   <dir>/rootfs   the overlay mount point (config.json's root.path)
 *   <dir>/upper    the container's writes
 *   <dir>/work     overlayfs' work directory
 *   <dir>/lower/   short symlinks to the layers, only when the mount options would not fit in
 *                  a page (many layers or long paths)
 * Needs CAP_SYS_ADMIN and a kernel with overlayfs; there is no copying fallback. */
#ifndef DROVER_AGENT_ROOTFS_H
#define DROVER_AGENT_ROOTFS_H

#include <stdbool.h>
#include <stddef.h>
#include "drover/error.h"

#define DRV_ROOTFS_MAX_LAYERS 500 /* overlayfs' own limit on lower layers */

/* Mounts the overlay of layers (n_layers absolute directories, bottom layer first, as in the
 * image manifest and drv_image_t.layer_dirs) at <dir>/rootfs, creating dir (0700) and its
 * subdirectories as needed; an existing upper/work (after a reboot) is reused. If an overlay
 * is mounted there already (the agent restarted), it is adopted as it is: *adopted (may be
 * NULL) is set and nothing is remounted. Without overlayfs support the error says so. On
 * failure, directories this call created are removed again. */
DRV_API DRV_NODISCARD drv_err_t drv_rootfs_mount(const char *const *layers, size_t n_layers,
                                                 const char *dir, bool *adopted, drv_error_t *err);

/* Whether an overlay is mounted at <dir>/rootfs. A missing dir is "not mounted". */
DRV_API DRV_NODISCARD drv_err_t drv_rootfs_is_mounted(const char *dir, bool *mounted,
                                                      drv_error_t *err);

/* Unmounts <dir>/rootfs (lazily if it is busy; not mounted is fine), and with remove deletes
 * rootfs, upper, work and lower under dir (never crossing into another mount), leaving dir
 * and anything else in it. */
DRV_API DRV_NODISCARD drv_err_t drv_rootfs_unmount(const char *dir, bool remove, drv_error_t *err);

/* "<dir>/rootfs" into out; DRV_ERR_TOOBIG if it does not fit. */
DRV_API DRV_NODISCARD drv_err_t drv_rootfs_path(const char *dir, char *out, size_t outsz);

#endif
