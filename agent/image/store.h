/* The device's image store: content-addressed blobs, layers unpacked once per digest, and
 * image records (reference -> manifest, config, layers) that the runtime resolves.
 *   <dir>/blobs/sha256/<hex>          verified blobs (manifests, configs, layers)
 *   <dir>/blobs/sha256/<hex>.partial  a download in progress, resumable
 *   <dir>/layers/sha256/<hex>/        a layer blob unpacked as an overlayfs lower layer
 *   <dir>/refs/<sha256 of ref>.json   one image record, written atomically
 * A blob appears under its final name only after its digest was verified; an image record
 * only after all its blobs and layers are in place. Pulls and resolves hold a shared lock on
 * <dir>/lock, garbage collection an exclusive one. */
#ifndef DROVER_AGENT_STORE_H
#define DROVER_AGENT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "drover/digest.h"
#include "drover/error.h"
#include "image/oci.h"
#include "image/ref.h"

#define DRV_STORE_DEFAULT_DIR "/var/lib/drover/images"

typedef struct drv_store drv_store_t;

/* Opens the store at dir, creating it (0700) and its subdirectories as needed. *out is owned
 * by the caller (drv_store_close). */
DRV_API DRV_NODISCARD drv_err_t drv_store_open(const char *dir, drv_store_t **out,
                                               drv_error_t *err);
DRV_API void drv_store_close(drv_store_t *st);
/* The directory given to drv_store_open. Valid while st is open. */
DRV_API const char *drv_store_dir(const drv_store_t *st);

/* Takes the store lock (blocks): shared for adding content, exclusive for removing it. One
 * lock per drv_store_t; taking it again converts it. */
DRV_API DRV_NODISCARD drv_err_t drv_store_lock(drv_store_t *st, bool exclusive, drv_error_t *err);
DRV_API void drv_store_unlock(drv_store_t *st);

/* Path of the blob / unpacked layer for d, whether present or not. outsz >= PATH_MAX never
 * fails; a shorter buffer that cannot hold it gives DRV_ERR_TOOBIG. */
DRV_API DRV_NODISCARD drv_err_t drv_store_blob_path(const drv_store_t *st, const drv_digest_t *d,
                                                    char *out, size_t outsz);
DRV_API DRV_NODISCARD drv_err_t drv_store_layer_path(const drv_store_t *st, const drv_digest_t *d,
                                                     char *out, size_t outsz);
DRV_API bool drv_store_has_blob(const drv_store_t *st, const drv_digest_t *d);
DRV_API bool drv_store_has_layer(const drv_store_t *st, const drv_digest_t *d);

/* Stores len bytes as the blob d after checking they hash to d (DRV_ERR_INTEGRITY naming
 * what, expected and actual digest). Present already: nothing written. */
DRV_API DRV_NODISCARD drv_err_t drv_store_put_blob(drv_store_t *st, const drv_digest_t *d,
                                                   const void *data, size_t len, const char *what,
                                                   drv_error_t *err);

/* Reads the blob d (at most max bytes, else DRV_ERR_TOOBIG) into a malloc'd NUL-terminated
 * buffer (*out, caller frees) and verifies its digest again. Missing: DRV_ERR_NOTFOUND. */
DRV_API DRV_NODISCARD drv_err_t drv_store_read_blob(drv_store_t *st, const drv_digest_t *d,
                                                    size_t max, char **out, size_t *len,
                                                    drv_error_t *err);

/* Streaming writer for one blob download. Begin opens "<blob>.partial" (locked against other
 * processes; waits for one that is writing it), keeping the bytes already there: it re-hashes
 * them, so offset tells where to resume (a partial longer than size, or of the full size but
 * the wrong content, is started over). If the blob is already complete, *done is set and
 * nothing needs writing. */
typedef struct drv_blob_writer {
    int fd;
    drv_sha256_t hash;
    uint64_t offset; /* bytes in the partial file so far */
    uint64_t size;   /* the descriptor's size: the exact final length */
    drv_digest_t digest;
    char partial[4096];
    char final[4096];
} drv_blob_writer_t;

DRV_API DRV_NODISCARD drv_err_t drv_store_blob_begin(drv_store_t *st, const drv_digest_t *d,
                                                     uint64_t size, drv_blob_writer_t *w,
                                                     bool *done, drv_error_t *err);
/* Empties the partial file and the hash (a server that ignored our Range request). */
DRV_API DRV_NODISCARD drv_err_t drv_blob_writer_restart(drv_blob_writer_t *w, drv_error_t *err);
/* Appends; more bytes than size is DRV_ERR_TOOBIG ("larger than its descriptor's N bytes"). */
DRV_API DRV_NODISCARD drv_err_t drv_blob_writer_write(drv_blob_writer_t *w, const void *data,
                                                      size_t len, drv_error_t *err);
/* Checks length and digest, then fsync, rename to the final name, fsync the directory.
 * A short blob is DRV_ERR_PROTO and stays resumable; a wrong digest is DRV_ERR_INTEGRITY
 * ("<what>: digest mismatch: expected ..., got ...") and the partial file is deleted. The
 * writer is closed either way. */
DRV_API DRV_NODISCARD drv_err_t drv_blob_writer_commit(drv_blob_writer_t *w, const char *what,
                                                       drv_error_t *err);
/* Closes without committing; keep_partial false deletes the partial file. */
DRV_API void drv_blob_writer_abort(drv_blob_writer_t *w, bool keep_partial);

/* Unpacks the layer blob d into layers/sha256/<hex> unless that exists already. what names
 * the layer in errors. *unpacked (may be NULL) tells whether work was done. */
DRV_API DRV_NODISCARD drv_err_t drv_store_unpack_layer(drv_store_t *st, const drv_digest_t *d,
                                                       const char *what, bool *unpacked,
                                                       drv_error_t *err);

/* An image record: what a reference resolved to when it was pulled. */
typedef struct drv_store_record {
    char reference[DRV_REF_STR_MAX]; /* canonical, drv_image_ref_format */
    drv_digest_t manifest;           /* the platform's image manifest */
    bool has_index;
    drv_digest_t index; /* the index it was chosen from, if any */
    drv_platform_t platform;
    drv_digest_t config;
    drv_digest_t *layers; /* bottom first; owned by the record */
    size_t n_layers;
    int64_t pulled; /* unix time of the pull */
} drv_store_record_t;

/* Writes the record (crash-safe). All its blobs and layers must be present. */
DRV_API DRV_NODISCARD drv_err_t drv_store_put_record(drv_store_t *st, const drv_store_record_t *rec,
                                                     drv_error_t *err);
/* Reads the record for a canonical reference. Missing: DRV_ERR_NOTFOUND. A corrupt record
 * is moved aside (.bad) and reported. */
DRV_API DRV_NODISCARD drv_err_t drv_store_get_record(drv_store_t *st, const char *reference,
                                                     drv_store_record_t *out, drv_error_t *err);
DRV_API void drv_store_record_free(drv_store_record_t *rec);

/* What the runtime needs to start a container from an image. */
typedef struct drv_image {
    char reference[DRV_REF_STR_MAX];
    char manifest_digest[DRV_DIGEST_STR_MAX];
    char config_digest[DRV_DIGEST_STR_MAX];
    drv_platform_t platform;
    char **layer_dirs; /* absolute, bottom layer first, NULL-terminated */
    size_t n_layers;
    drv_oci_config_t config;
} drv_image_t;

/* Resolves image (any form drv_image_ref_parse takes: "busybox", "host:5000/app:1") to its
 * unpacked layers and parsed config, unpacking a layer again from its blob if its directory
 * is missing. Not pulled: DRV_ERR_NOTFOUND ("image ...: not in the store, pull it first").
 * *out is owned by the caller (drv_image_free). Takes the shared lock. */
DRV_API DRV_NODISCARD drv_err_t drv_store_resolve(drv_store_t *st, const char *image,
                                                  drv_image_t **out, drv_error_t *err);
DRV_API void drv_image_free(drv_image_t *img);

/* Garbage collection. */
#define DRV_STORE_GC_ALL UINT64_MAX /* target_free: remove every image not kept */

typedef struct drv_gc_stats {
    size_t images_removed;
    size_t blobs_removed; /* including abandoned partial downloads */
    size_t layers_removed;
    uint64_t bytes_removed; /* sizes of removed blobs and layer files */
    uint64_t free_before;   /* statvfs available bytes */
    uint64_t free_after;
} drv_gc_stats_t;

/* When the file system holding the store has less than target_free bytes available, removes
 * blobs, partial downloads and layers no image record refers to, then image records not in
 * keep (oldest pull first, each followed by a sweep of what only it used) until target_free
 * is available or nothing more may go. keep holds references in any drv_image_ref_parse form
 * or manifest digests ("sha256:..."); an invalid entry fails with DRV_ERR_INVALID before
 * anything is removed. DRV_STORE_GC_ALL removes every image not kept. stats may be NULL.
 * Takes the exclusive lock. */
DRV_API DRV_NODISCARD drv_err_t drv_store_gc(drv_store_t *st, const char *const *keep,
                                             size_t n_keep, uint64_t target_free,
                                             drv_gc_stats_t *stats, drv_error_t *err);

#endif
