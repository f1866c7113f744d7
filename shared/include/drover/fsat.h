/* Files beneath a directory fd, never reached through a symlink (crun's *_at helpers): the
 * agent opens, creates, reads, writes and removes inside image layers, container root file
 * systems and pod volumes whose contents an image or a user chose. A name given here is
 * relative, has no ".." component and is resolved without following any symlink, so nothing
 * outside the directory is ever touched. openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) does
 * this on Linux 5.6 and later; older kernels and qemu-user get a component walk with
 * O_NOFOLLOW. */
#ifndef DROVER_FSAT_H
#define DROVER_FSAT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "drover/error.h"

/* The one depth limit of recursive removal: directories deeper than this below the removed
 * one are first moved up into it and removed in a further pass, so any depth is removed with
 * at most this many directory fds open. */
#define DRV_FSAT_RM_MAX_DEPTH 64

/* Opens rel beneath dirfd with open(2) flags (O_CLOEXEC and O_NOFOLLOW are always added;
 * O_CREAT takes mode). A symlink anywhere in rel, including its last component, fails with
 * DRV_ERR_PERM (errno ELOOP); an absolute rel or a ".." component with DRV_ERR_PERM (EXDEV);
 * other failures map errno (drv_error_from_errno). rel "" or "." opens dirfd itself. *fd
 * (caller closes) is only set on success. */
DRV_API DRV_NODISCARD drv_err_t drv_fsat_open(int dirfd, const char *rel, int flags, mode_t mode,
                                              int *fd, drv_error_t *err);

/* Reads the whole regular file rel beneath dirfd as drv_file_read_fd_capped does (*out
 * malloc'd, NUL-terminated, caller frees; larger than max: DRV_ERR_TOOBIG). */
DRV_API DRV_NODISCARD drv_err_t drv_fsat_read(int dirfd, const char *rel, size_t max, char **out,
                                              size_t *len, drv_error_t *err);

/* Replaces the file rel beneath dirfd with data by a temporary in the same directory and a
 * rename (no fsync: see drv_file_write_replace); a symlink at rel is replaced, never
 * followed. The parent directory must exist. */
DRV_API DRV_NODISCARD drv_err_t drv_fsat_write(int dirfd, const char *rel, const void *data,
                                               size_t len, mode_t mode, drv_error_t *err);

/* Creates the directory rel beneath dirfd (its parent must exist); an existing directory is
 * fine, anything else there is DRV_ERR_EXISTS. */
DRV_API DRV_NODISCARD drv_err_t drv_fsat_mkdir(int dirfd, const char *rel, mode_t mode,
                                               drv_error_t *err);

/* Removes rel beneath dirfd and, for a directory, everything below it, without following a
 * symlink and without ever entering another mount: a mount point met inside is left in place
 * and the removal fails with DRV_ERR_IO (errno EXDEV) after removing everything else.
 * Directories the tree made unreadable are made readable first. A missing rel is fine. With
 * bytes non-NULL the sizes of the regular files removed are added to *bytes. */
DRV_API DRV_NODISCARD drv_err_t drv_fsat_remove_tree(int dirfd, const char *rel, uint64_t *bytes,
                                                     drv_error_t *err);

/* Empties the directory rel beneath dirfd ("" or "." for dirfd itself) by the rules of
 * drv_fsat_remove_tree, keeping the directory. */
DRV_API DRV_NODISCARD drv_err_t drv_fsat_clear_dir(int dirfd, const char *rel, uint64_t *bytes,
                                                   drv_error_t *err);

/* drv_fsat_remove_tree for a path the caller trusts up to its last component (a state
 * directory it made): the directories leading to it are opened normally, the last component
 * is removed as drv_fsat_remove_tree does. */
DRV_API DRV_NODISCARD drv_err_t drv_fsat_remove_tree_path(const char *path, uint64_t *bytes,
                                                          drv_error_t *err);

#endif
