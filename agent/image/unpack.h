/* Confined OCI layer unpacking. A layer (tar, gzip- or zstd-compressed, detected from the
 * content) is extracted so that no entry can reach outside the destination: not by "..",
 * absolute names, a symlink planted by an earlier entry (or an earlier layer) and then written
 * through, a hardlink to a file outside, or a whiteout naming something outside. */
#ifndef DROVER_AGENT_UNPACK_H
#define DROVER_AGENT_UNPACK_H

#include <stdint.h>
#include "drover/error.h"

typedef enum {
    /* Extract into a fresh directory as one overlayfs lower layer: whiteouts become overlay
     * whiteouts (0/0 character devices) and opaque markers the trusted.overlay.opaque xattr.
     * dest must not exist; it appears complete (rename of a temporary) or not at all. */
    DRV_UNPACK_OVERLAY_LAYER = 0,
    /* Extract on top of an existing tree (flattening layers in order): whiteouts delete the
     * named path, opaque markers empty the directory, both confined to dest. */
    DRV_UNPACK_APPLY,
} drv_unpack_mode_t;

typedef struct drv_unpack_opts {
    drv_unpack_mode_t mode;
    uint64_t max_bytes;   /* cap on decompressed bytes of file content (0 = 8 GiB) */
    uint64_t max_entries; /* cap on entries (0 = 1,000,000) */
    const char *what;     /* for error messages, e.g. "alpine:3.19 layer sha256:ab12..." */
    int preserve_owner;   /* chown to the tar's uid/gid (needs root); else leave as caller */
} drv_unpack_opts_t;

typedef struct drv_unpack_stats {
    uint64_t entries;
    uint64_t bytes; /* decompressed file content written */
    /* Slots examined in the table of this layer's entry names (APPLY mode): linear in the
     * entries whatever their names, which the tests check against hash flooding. */
    uint64_t name_probes;
} drv_unpack_stats_t;

/* Unpacks the layer blob at blob_path into dest. On error nothing partial is left (OVERLAY
 * mode: the temporary is removed; APPLY mode: entries written before the failing one stay,
 * the caller discards the tree) and err names opts->what, and the entry:
 *   "alpine:3.19 layer sha256:ab12: entry \"../etc/passwd\": escapes the layer root"
 * stats may be NULL; it is written only on success.
 *
 * Policy. Names are taken relative to the layer root ("/etc/x" is "etc/x"); a ".." that would
 * climb above it is refused. Symlinks are data and may point anywhere, but are never followed
 * to place an entry: an entry (or hardlink target, or whiteout) whose parent path crosses a
 * symlink is refused, whether the symlink points outside or not; an entry named like an
 * existing symlink replaces the symlink. A hardlink must name an existing non-directory of the
 * tree; a symlink that may point outside cannot be its target. Only user.* and
 * security.capability extended attributes are applied. Device nodes need root (else skipped);
 * OVERLAY whiteouts and opaque markers need root too (mknod 0/0, trusted.* xattr).
 *
 * Errors: DRV_ERR_INVALID (hostile or corrupt layer, bad argument), DRV_ERR_TOOBIG (over
 * max_bytes or max_entries; checked against declared sizes before data is read),
 * DRV_ERR_EXISTS (OVERLAY: dest exists), DRV_ERR_NOTFOUND (no blob; APPLY: no dest),
 * DRV_ERR_PERM (ownership or overlay markers without privileges), DRV_ERR_IO, DRV_ERR_NOMEM.
 * OVERLAY temporaries are "<dest>.tmp-XXXXXX" next to dest; after a crash the caller's store
 * removes stale ones. Not thread-safe per dest; distinct dests may be unpacked concurrently. */
DRV_NODISCARD drv_err_t drv_unpack_layer(const char *blob_path, const char *dest,
                                         const drv_unpack_opts_t *opts, drv_unpack_stats_t *stats,
                                         drv_error_t *err);

#endif
