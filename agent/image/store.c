/* The content-addressed image store: verified blobs, layers unpacked once per digest, image
 * records written crash-safely, resolution for the runtime, and garbage collection driven by
 * free disk space. Everything under the store directory is named by digest, so nothing from
 * a registry ever chooses a path. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "drover/cleanup.h"
#include "drover/json.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/fsat.h"
#include "drover/vec.h"
#include "image/unpack.h"

#define RECORD_MAX_BYTES (1u << 20)

struct drv_store {
    char dir[PATH_MAX];
    int lock_fd;
    int lock_depth;
    bool lock_exclusive;
};

static drv_err_t subpath(const drv_store_t *st, char *out, size_t outsz, const char *fmt, ...)
    DRV_PRINTF(4, 5);
static drv_err_t subpath(const drv_store_t *st, char *out, size_t outsz, const char *fmt, ...)
{
    char rel[512];
    va_list ap;
    va_start(ap, fmt);
    drv_err_t rc = drv_vfmt(rel, sizeof(rel), fmt, ap);
    va_end(ap);
    if (rc != DRV_OK)
        return rc;
    return drv_fmt(out, outsz, "%s/%s", st->dir, rel);
}

drv_err_t drv_store_open(const char *dir, drv_store_t **out, drv_error_t *err)
{
    if (dir == NULL || dir[0] == '\0')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "store: directory is empty");
    size_t dlen = strlen(dir);
    while (dlen > 1 && dir[dlen - 1] == '/')
        dlen--;
    /* room for "/blobs/sha256/<64 hex>.partial" and the layer temporaries under it */
    if (dlen + 256 >= PATH_MAX)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "store %s: path too long", dir);
    _cleanup_free_ drv_store_t *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "store %s: out of memory", dir);
    memcpy(st->dir, dir, dlen);
    st->dir[dlen] = '\0';
    st->lock_fd = -1;
    drv_err_t rc = drv_file_mkdir_p(st->dir, 0700, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "store %s", st->dir);
    static const char subs[][14] = {"blobs/sha256", "layers/sha256", "refs"};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        char p[PATH_MAX];
        if (subpath(st, p, sizeof(p), "%s", subs[i]) != DRV_OK)
            return drv_error_set(err, DRV_ERR_TOOBIG, 0, "store %s: path too long", st->dir);
        rc = drv_file_mkdir_p(p, 0755, err);
        if (rc != DRV_OK)
            return drv_error_wrap(err, "store %s", st->dir);
    }
    char lockp[PATH_MAX];
    if (subpath(st, lockp, sizeof(lockp), "lock") != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "store %s: path too long", st->dir);
    st->lock_fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (st->lock_fd < 0)
        return drv_error_set(err, drv_error_from_errno(errno), errno, "store %s: open %s", st->dir,
                             lockp);
    *out = TAKE_PTR(st);
    return DRV_OK;
}

void drv_store_close(drv_store_t *st)
{
    if (st == NULL)
        return;
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    free(st);
}

const char *drv_store_dir(const drv_store_t *st)
{
    return st->dir;
}

drv_err_t drv_store_lock(drv_store_t *st, bool exclusive, drv_error_t *err)
{
    if (st->lock_depth > 0 && (st->lock_exclusive || !exclusive)) {
        st->lock_depth++;
        return DRV_OK;
    }
    while (flock(st->lock_fd, exclusive ? LOCK_EX : LOCK_SH) != 0) {
        if (errno != EINTR)
            return drv_error_set(err, DRV_ERR_IO, errno, "store %s: lock", st->dir);
    }
    st->lock_exclusive = exclusive || st->lock_exclusive;
    st->lock_depth++;
    return DRV_OK;
}

void drv_store_unlock(drv_store_t *st)
{
    if (st->lock_depth == 0)
        return;
    if (--st->lock_depth == 0) {
        (void)flock(st->lock_fd, LOCK_UN);
        st->lock_exclusive = false;
    }
}

static void store_unlockp(drv_store_t **st)
{
    if (*st)
        drv_store_unlock(*st);
}
#define _cleanup_unlock_ __attribute__((cleanup(store_unlockp), unused))

drv_err_t drv_store_blob_path(const drv_store_t *st, const drv_digest_t *d, char *out, size_t outsz)
{
    char hex[DRV_DIGEST_HEX_MAX];
    return subpath(st, out, outsz, "blobs/sha256/%s", drv_digest_hex(d, hex));
}

drv_err_t drv_store_layer_path(const drv_store_t *st, const drv_digest_t *d, char *out,
                               size_t outsz)
{
    char hex[DRV_DIGEST_HEX_MAX];
    return subpath(st, out, outsz, "layers/sha256/%s", drv_digest_hex(d, hex));
}

static bool path_is(const char *p, mode_t type)
{
    struct stat sb;
    return lstat(p, &sb) == 0 && (sb.st_mode & S_IFMT) == type;
}

bool drv_store_has_blob(const drv_store_t *st, const drv_digest_t *d)
{
    char p[PATH_MAX];
    return drv_store_blob_path(st, d, p, sizeof(p)) == DRV_OK && path_is(p, S_IFREG);
}

bool drv_store_has_layer(const drv_store_t *st, const drv_digest_t *d)
{
    char p[PATH_MAX];
    return drv_store_layer_path(st, d, p, sizeof(p)) == DRV_OK && path_is(p, S_IFDIR);
}

/* ---- blob writer ---- */

drv_err_t drv_blob_writer_restart(drv_blob_writer_t *w, drv_error_t *err)
{
    if (ftruncate(w->fd, 0) != 0 || lseek(w->fd, 0, SEEK_SET) != 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "truncate %s", w->partial);
    mbedtls_sha256_free(&w->hash.ctx);
    drv_sha256_init(&w->hash);
    w->offset = 0;
    return DRV_OK;
}

/* Re-hashes the first n bytes of the partial file. */
static drv_err_t rehash_partial(drv_blob_writer_t *w, uint64_t n, drv_error_t *err)
{
    uint8_t buf[65536];
    uint64_t off = 0;
    while (off < n) {
        size_t want = n - off < sizeof(buf) ? (size_t)(n - off) : sizeof(buf);
        ssize_t got = pread(w->fd, buf, want, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return drv_error_set(err, DRV_ERR_IO, got < 0 ? errno : 0, "read %s", w->partial);
        drv_sha256_update(&w->hash, buf, (size_t)got);
        off += (uint64_t)got;
    }
    w->offset = n;
    return DRV_OK;
}

static drv_err_t finish_rename(drv_blob_writer_t *w, drv_error_t *err)
{
    if (fsync(w->fd) != 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "fsync %s", w->partial);
    if (rename(w->partial, w->final) != 0)
        return drv_error_set(err, drv_error_from_errno(errno), errno, "rename %s", w->partial);
    return drv_file_sync_dir_of(w->final, err);
}

drv_err_t drv_store_blob_begin(drv_store_t *st, const drv_digest_t *d, uint64_t size,
                               drv_blob_writer_t *w, bool *done, drv_error_t *err)
{
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    w->size = size;
    w->digest = *d;
    *done = false;
    if (drv_store_blob_path(st, d, w->final, sizeof(w->final)) != DRV_OK ||
        drv_fmt(w->partial, sizeof(w->partial), "%s.partial", w->final) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "store %s: path too long", st->dir);
    for (int attempt = 0;; attempt++) {
        if (path_is(w->final, S_IFREG)) {
            *done = true;
            return DRV_OK;
        }
        _cleanup_close_ int fd = open(w->partial, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
            return drv_error_set(err, drv_error_from_errno(errno), errno, "open %s", w->partial);
        while (flock(fd, LOCK_EX) != 0)
            if (errno != EINTR)
                return drv_error_set(err, DRV_ERR_IO, errno, "lock %s", w->partial);
        /* Another process may have finished (renamed our inode away) while we waited. */
        struct stat a, b;
        if (fstat(fd, &a) != 0)
            return drv_error_set(err, DRV_ERR_IO, errno, "stat %s", w->partial);
        if (lstat(w->partial, &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
            if (attempt >= 10)
                return drv_error_set(err, DRV_ERR_AGAIN, 0, "%s: keeps changing", w->partial);
            continue;
        }
        if (!S_ISREG(a.st_mode))
            return drv_error_set(err, DRV_ERR_IO, 0, "%s: not a regular file", w->partial);
        w->fd = TAKE_FD(fd);
        drv_sha256_init(&w->hash);
        uint64_t have = (uint64_t)a.st_size;
        drv_err_t rc;
        if (have > size) {
            rc = drv_blob_writer_restart(w, err);
        } else {
            rc = rehash_partial(w, have, err);
            if (rc == DRV_OK && have == size) {
                /* complete already: keep it if it is right, else start over */
                drv_digest_t got;
                drv_sha256_final(&w->hash, &got);
                drv_sha256_init(&w->hash);
                if (drv_digest_equal(&got, d)) {
                    rc = finish_rename(w, err);
                    drv_blob_writer_abort(w, true); /* never unlink: the name may be reused */
                    if (rc == DRV_OK)
                        *done = true;
                    return rc;
                }
                rc = drv_blob_writer_restart(w, err);
            }
        }
        if (rc == DRV_OK && lseek(w->fd, (off_t)w->offset, SEEK_SET) < 0)
            rc = drv_error_set(err, DRV_ERR_IO, errno, "seek %s", w->partial);
        if (rc != DRV_OK)
            drv_blob_writer_abort(w, true);
        return rc;
    }
}

drv_err_t drv_blob_writer_write(drv_blob_writer_t *w, const void *data, size_t len,
                                drv_error_t *err)
{
    if (len > w->size - w->offset)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0,
                             "larger than the %llu bytes its descriptor gives",
                             (unsigned long long)w->size);
    drv_err_t rc = drv_file_write_all(w->fd, data, len, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "%s", w->partial);
    drv_sha256_update(&w->hash, data, len);
    w->offset += len;
    return DRV_OK;
}

drv_err_t drv_blob_writer_commit(drv_blob_writer_t *w, const char *what, drv_error_t *err)
{
    if (w->offset < w->size) {
        drv_err_t rc = drv_error_set(
            err, DRV_ERR_PROTO, 0, "%s%stransfer ended after %llu of %llu bytes", what ? what : "",
            what ? ": " : "", (unsigned long long)w->offset, (unsigned long long)w->size);
        drv_blob_writer_abort(w, true);
        return rc;
    }
    drv_digest_t got;
    drv_sha256_final(&w->hash, &got);
    drv_sha256_init(&w->hash);
    drv_err_t rc = drv_digest_verify(&w->digest, &got, what, err);
    if (rc != DRV_OK) {
        drv_blob_writer_abort(w, false);
        return rc;
    }
    rc = finish_rename(w, err);
    drv_blob_writer_abort(w, true); /* renamed (or complete and retried later): never unlink */
    return rc;
}

void drv_blob_writer_abort(drv_blob_writer_t *w, bool keep_partial)
{
    if (w->fd < 0)
        return;
    if (!keep_partial)
        (void)unlink(w->partial);
    mbedtls_sha256_free(&w->hash.ctx);
    close(w->fd);
    w->fd = -1;
}

drv_err_t drv_store_put_blob(drv_store_t *st, const drv_digest_t *d, const void *data, size_t len,
                             const char *what, drv_error_t *err)
{
    drv_digest_t got;
    drv_digest_of(data, len, &got);
    drv_err_t rc = drv_digest_verify(d, &got, what, err);
    if (rc != DRV_OK)
        return rc;
    drv_blob_writer_t w;
    bool done;
    rc = drv_store_blob_begin(st, d, len, &w, &done, err);
    if (rc != DRV_OK || done)
        return rc;
    if (w.offset > 0 && (rc = drv_blob_writer_restart(&w, err)) != DRV_OK) {
        drv_blob_writer_abort(&w, false);
        return rc;
    }
    rc = drv_blob_writer_write(&w, data, len, err);
    if (rc != DRV_OK) {
        drv_blob_writer_abort(&w, false);
        return rc;
    }
    return drv_blob_writer_commit(&w, what, err);
}

drv_err_t drv_store_read_blob(drv_store_t *st, const drv_digest_t *d, size_t max, char **out,
                              size_t *len, drv_error_t *err)
{
    char p[PATH_MAX], ds[DRV_DIGEST_STR_MAX];
    if (drv_store_blob_path(st, d, p, sizeof(p)) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "store %s: path too long", st->dir);
    _cleanup_free_ char *data = NULL;
    size_t n = 0;
    drv_err_t rc = drv_file_read_capped(p, max, &data, &n, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "blob %s", drv_digest_format(d, ds));
    drv_digest_t got;
    drv_digest_of(data, n, &got);
    char what[96];
    drv_fmt_cut(what, sizeof(what), "stored blob %s", drv_digest_format(d, ds));
    if ((rc = drv_digest_verify(d, &got, what, err)) != DRV_OK)
        return rc;
    *out = TAKE_PTR(data);
    if (len)
        *len = n;
    return DRV_OK;
}

/* ---- layers ---- */

drv_err_t drv_store_unpack_layer(drv_store_t *st, const drv_digest_t *d, const char *what,
                                 bool *unpacked, drv_error_t *err)
{
    if (unpacked)
        *unpacked = false;
    if (drv_store_has_layer(st, d))
        return DRV_OK;
    char blob[PATH_MAX], dest[PATH_MAX];
    if (drv_store_blob_path(st, d, blob, sizeof(blob)) != DRV_OK ||
        drv_store_layer_path(st, d, dest, sizeof(dest)) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "store %s: path too long", st->dir);
    if (!path_is(blob, S_IFREG)) {
        char ds[DRV_DIGEST_STR_MAX];
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "%s: blob %s is not in the store",
                             what ? what : "layer", drv_digest_format(d, ds));
    }
    drv_unpack_opts_t opts = {
        .mode = DRV_UNPACK_OVERLAY_LAYER,
        .what = what,
        .preserve_owner = geteuid() == 0,
    };
    drv_err_t rc = drv_unpack_layer(blob, dest, &opts, NULL, err);
    if (rc != DRV_OK) {
        /* another process unpacking the same layer got there first */
        if (drv_store_has_layer(st, d))
            return DRV_OK;
        return rc;
    }
    if (unpacked)
        *unpacked = true;
    return DRV_OK;
}

/* ---- image records ---- */

static drv_err_t record_path(const drv_store_t *st, const char *reference, char *out, size_t outsz)
{
    drv_digest_t key;
    char hex[DRV_DIGEST_HEX_MAX];
    drv_digest_of(reference, strlen(reference), &key);
    return subpath(st, out, outsz, "refs/%s.json", drv_digest_hex(&key, hex));
}

void drv_store_record_free(drv_store_record_t *rec)
{
    if (rec == NULL)
        return;
    free(rec->layers);
    rec->layers = NULL;
    rec->n_layers = 0;
}

drv_err_t drv_store_put_record(drv_store_t *st, const drv_store_record_t *rec, drv_error_t *err)
{
    char path[PATH_MAX], ds[DRV_DIGEST_STR_MAX], ps[DRV_PLATFORM_STR_MAX];
    if (record_path(st, rec->reference, path, sizeof(path)) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "store %s: path too long", st->dir);
    _cleanup_cjson_ cJSON *o = cJSON_CreateObject();
    cJSON *layers = cJSON_CreateArray();
    if (o == NULL || layers == NULL) {
        cJSON_Delete(layers);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "image record: out of memory");
    }
    cJSON_AddItemToObject(o, "layers", layers);
    bool ok = cJSON_AddStringToObject(o, "reference", rec->reference) &&
              cJSON_AddStringToObject(o, "manifest", drv_digest_format(&rec->manifest, ds)) &&
              (!rec->has_index ||
               cJSON_AddStringToObject(o, "index", drv_digest_format(&rec->index, ds))) &&
              cJSON_AddStringToObject(o, "platform",
                                      drv_platform_format(&rec->platform, ps, sizeof(ps))) &&
              cJSON_AddStringToObject(o, "config", drv_digest_format(&rec->config, ds)) &&
              cJSON_AddNumberToObject(o, "pulled", (double)rec->pulled);
    for (size_t i = 0; ok && i < rec->n_layers; i++) {
        cJSON *s = cJSON_CreateString(drv_digest_format(&rec->layers[i], ds));
        ok = s && cJSON_AddItemToArray(layers, s);
    }
    _cleanup_free_ char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    if (text == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "image record: out of memory");
    drv_err_t rc = drv_file_write_atomic(path, text, strlen(text), 0644, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "image record %s", rec->reference);
    return DRV_OK;
}

static drv_err_t record_digest(const cJSON *o, const char *key, bool required, drv_digest_t *out,
                               bool *present, drv_error_t *err)
{
    const char *s = NULL;
    drv_err_t rc = drv_json_read_string(
        o, NULL, key, required ? DRV_JSON_REQUIRED : DRV_JSON_OPTIONAL, &s, present, err);
    if (rc != DRV_OK || s == NULL)
        return rc;
    rc = drv_digest_parse(s, out, err);
    return rc == DRV_OK ? rc : drv_error_wrap(err, "%s", key);
}

/* Parses record text; errors name the field. */
static drv_err_t parse_record(const char *text, size_t len, drv_store_record_t *out,
                              drv_error_t *err)
{
    _cleanup_cjson_ cJSON *o = cJSON_ParseWithLength(text, len);
    if (o == NULL || !cJSON_IsObject(o))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "not a JSON object");
    drv_store_record_t r;
    memset(&r, 0, sizeof(r));
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(o, "reference");
    if (!cJSON_IsString(ref) ||
        drv_fmt(r.reference, sizeof(r.reference), "%s", ref->valuestring) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "reference: must be a string");
    drv_err_t rc;
    if ((rc = record_digest(o, "manifest", true, &r.manifest, NULL, err)) != DRV_OK ||
        (rc = record_digest(o, "index", false, &r.index, &r.has_index, err)) != DRV_OK ||
        (rc = record_digest(o, "config", true, &r.config, NULL, err)) != DRV_OK)
        return rc;
    const cJSON *plat = cJSON_GetObjectItemCaseSensitive(o, "platform");
    if (!cJSON_IsString(plat))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "platform: must be a string");
    if ((rc = drv_platform_parse(plat->valuestring, &r.platform, err)) != DRV_OK)
        return rc;
    r.pulled = drv_json_int_or(o, "pulled", 0);
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(o, "layers");
    if (!cJSON_IsArray(layers))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "layers: must be an array");
    int n = cJSON_GetArraySize(layers);
    if (n < 1 || n > DRV_OCI_MAX_LAYERS)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "layers: must have 1 to %d entries",
                             DRV_OCI_MAX_LAYERS);
    _cleanup_free_ drv_digest_t *ls = calloc((size_t)n, sizeof(*ls));
    if (ls == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, layers)
    {
        if (!cJSON_IsString(e))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "layers[%zu]: must be a string", i);
        if ((rc = drv_digest_parse(e->valuestring, &ls[i], err)) != DRV_OK)
            return drv_error_wrap(err, "layers[%zu]", i);
        i++;
    }
    r.layers = TAKE_PTR(ls);
    r.n_layers = i;
    *out = r;
    return DRV_OK;
}

static drv_err_t read_record_file(const char *path, drv_store_record_t *out, drv_error_t *err)
{
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    drv_err_t rc = drv_file_read_capped(path, RECORD_MAX_BYTES, &text, &len, err);
    if (rc != DRV_OK)
        return rc;
    rc = parse_record(text, len, out, err);
    if (rc != DRV_OK) {
        drv_error_t qerr = DRV_ERROR_INIT;
        bool moved = drv_file_quarantine(path, &qerr) == DRV_OK;
        return drv_error_wrap(err, "image record %s is corrupt%s", path,
                              moved ? " (moved aside to .bad)" : "");
    }
    return DRV_OK;
}

drv_err_t drv_store_get_record(drv_store_t *st, const char *reference, drv_store_record_t *out,
                               drv_error_t *err)
{
    char path[PATH_MAX];
    if (record_path(st, reference, path, sizeof(path)) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "store %s: path too long", st->dir);
    if (!path_is(path, S_IFREG))
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "image %s: not in the store", reference);
    drv_store_record_t r;
    drv_err_t rc = read_record_file(path, &r, err);
    if (rc != DRV_OK)
        return rc;
    if (strcmp(r.reference, reference) != 0) {
        drv_store_record_free(&r);
        drv_error_t qerr = DRV_ERROR_INIT;
        if (drv_file_quarantine(path, &qerr) != DRV_OK) {
            /* reported below either way */
        }
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "image record %s is for another reference (moved aside to .bad)",
                             path);
    }
    *out = r;
    return DRV_OK;
}

/* ---- resolve ---- */

static void free_strv(char **v)
{
    if (v == NULL)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

void drv_image_free(drv_image_t *img)
{
    if (img == NULL)
        return;
    free_strv(img->layer_dirs);
    drv_oci_config_free(&img->config);
    free(img);
}

static void image_freep(drv_image_t **p)
{
    drv_image_free(*p);
}

static void record_freep(drv_store_record_t *r)
{
    drv_store_record_free(r);
}

drv_err_t drv_store_resolve(drv_store_t *st, const char *image, drv_image_t **out, drv_error_t *err)
{
    drv_image_ref_t ref;
    char canon[DRV_REF_STR_MAX], ds[DRV_DIGEST_STR_MAX];
    drv_err_t rc = drv_image_ref_parse(image, &ref, err);
    if (rc != DRV_OK)
        return rc;
    drv_image_ref_format(&ref, canon, sizeof(canon));
    if ((rc = drv_store_lock(st, false, err)) != DRV_OK)
        return rc;
    _cleanup_unlock_ drv_store_t *locked = st;

    __attribute__((cleanup(record_freep))) drv_store_record_t rec = {0};
    rc = drv_store_get_record(st, canon, &rec, err);
    if (rc == DRV_ERR_NOTFOUND)
        return drv_error_set(err, rc, 0, "image %s: not in the store, pull it first", canon);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "image %s", canon);

    __attribute__((cleanup(image_freep))) drv_image_t *img = calloc(1, sizeof(*img));
    if (img == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "image %s: out of memory", canon);
    if (drv_fmt(img->reference, sizeof(img->reference), "%s", canon) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "image %s: reference too long", canon);
    drv_digest_format(&rec.manifest, img->manifest_digest);
    drv_digest_format(&rec.config, img->config_digest);
    img->platform = rec.platform;

    _cleanup_free_ char *cfg = NULL;
    size_t cfglen = 0;
    rc = drv_store_read_blob(st, &rec.config, DRV_OCI_CONFIG_MAX_BYTES, &cfg, &cfglen, err);
    if (rc == DRV_OK)
        rc = drv_oci_config_parse(cfg, cfglen, &img->config, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "image %s: config %s", canon, img->config_digest);

    img->layer_dirs = calloc(rec.n_layers + 1, sizeof(char *));
    if (img->layer_dirs == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "image %s: out of memory", canon);
    for (size_t i = 0; i < rec.n_layers; i++) {
        char what[DRV_REF_STR_MAX + 96], dir[PATH_MAX];
        drv_fmt_cut(what, sizeof(what), "%s layer %s", canon,
                    drv_digest_format(&rec.layers[i], ds));
        if (!drv_store_has_layer(st, &rec.layers[i])) {
            rc = drv_store_unpack_layer(st, &rec.layers[i], what, NULL, err);
            if (rc == DRV_ERR_NOTFOUND)
                return drv_error_set(err, rc, 0,
                                     "image %s: layer %s is missing from the store, pull the image "
                                     "again",
                                     canon, ds);
            if (rc != DRV_OK)
                return drv_error_wrap(err, "image %s", canon);
        }
        if (drv_store_layer_path(st, &rec.layers[i], dir, sizeof(dir)) != DRV_OK ||
            (img->layer_dirs[i] = strdup(dir)) == NULL)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "image %s: out of memory", canon);
        img->n_layers = i + 1;
    }
    *out = TAKE_PTR(img);
    return DRV_OK;
}

/* ---- garbage collection ---- */

static uint64_t avail_bytes(const drv_store_t *st)
{
    struct statvfs sv;
    if (statvfs(st->dir, &sv) != 0)
        return 0;
    return (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
}

#define GC_RECORDS_MAX 65536 /* image records a collection reads */

/* One image record under refs/, its file, and whether this collection removed it. */
typedef struct gc_rec {
    drv_store_record_t rec;
    char *path;
    bool gone;
} gc_rec_t;

typedef struct gc_state {
    drv_store_t *st;
    drv_vec_t recs; /* gc_rec_t */
    drv_gc_stats_t stats;
} gc_state_t;

static gc_rec_t *gc_rec(const gc_state_t *g, size_t i)
{
    return drv_vec_at(&g->recs, i);
}

static int digest_cmp(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(drv_digest_t));
}

static bool is_hex_name(const char *name)
{
    drv_digest_t d;
    return strlen(name) == 64 && drv_digest_parse_hex(name, &d, NULL) == DRV_OK;
}

/* Deletes blobs, partial downloads, leftovers and layers no live record refers to. */
static drv_err_t gc_sweep(gc_state_t *g, drv_error_t *err)
{
    size_t nmarks = 0;
    for (size_t i = 0; i < drv_vec_len(&g->recs); i++)
        if (!gc_rec(g, i)->gone)
            nmarks += 3 + gc_rec(g, i)->rec.n_layers;
    _cleanup_free_ drv_digest_t *marks = calloc(nmarks ? nmarks : 1, sizeof(*marks));
    if (marks == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "gc: out of memory");
    size_t m = 0;
    for (size_t i = 0; i < drv_vec_len(&g->recs); i++) {
        if (gc_rec(g, i)->gone)
            continue;
        const drv_store_record_t *r = &gc_rec(g, i)->rec;
        marks[m++] = r->manifest;
        marks[m++] = r->config;
        if (r->has_index)
            marks[m++] = r->index;
        for (size_t k = 0; k < r->n_layers; k++)
            marks[m++] = r->layers[k];
    }
    qsort(marks, m, sizeof(*marks), digest_cmp);

    static const char dirs[][14] = {"blobs/sha256", "layers/sha256"};
    for (size_t di = 0; di < 2; di++) {
        char path[PATH_MAX];
        if (subpath(g->st, path, sizeof(path), "%s", dirs[di]) != DRV_OK)
            return drv_error_set(err, DRV_ERR_TOOBIG, 0, "gc: path too long");
        _cleanup_close_ int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            return drv_error_set(err, DRV_ERR_IO, errno, "gc: open %s", path);
        int dup_fd = dup(dfd);
        _cleanup_closedir_ DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
        if (d == NULL) {
            if (dup_fd >= 0)
                close(dup_fd);
            return drv_error_set(err, DRV_ERR_IO, errno, "gc: read %s", path);
        }
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            if (is_hex_name(de->d_name)) {
                drv_digest_t dg;
                if (drv_digest_parse_hex(de->d_name, &dg, NULL) == DRV_OK &&
                    bsearch(&dg, marks, m, sizeof(*marks), digest_cmp) != NULL)
                    continue;
                if (di == 0)
                    g->stats.blobs_removed++;
                else
                    g->stats.layers_removed++;
            } else if (di == 0 && strlen(de->d_name) == 72 &&
                       !strcmp(de->d_name + 64, ".partial")) {
                g->stats.blobs_removed++;
            }
            if (drv_fsat_remove_tree(dfd, de->d_name, &g->stats.bytes_removed, err) != DRV_OK)
                return drv_error_wrap(err, "gc: %s", path);
        }
        if (fsync(dfd) != 0 && errno != EINVAL)
            return drv_error_set(err, DRV_ERR_IO, errno, "gc: fsync %s", path);
    }
    return DRV_OK;
}

static void gc_state_free(gc_state_t *g)
{
    for (size_t i = 0; i < drv_vec_len(&g->recs); i++) {
        drv_store_record_free(&gc_rec(g, i)->rec);
        free(gc_rec(g, i)->path);
    }
    drv_vec_free(&g->recs);
}

/* Loads every record under refs/ (corrupt ones are moved aside and left out). */
static drv_err_t gc_load(gc_state_t *g, drv_error_t *err)
{
    char path[PATH_MAX];
    if (subpath(g->st, path, sizeof(path), "refs") != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "gc: path too long");
    _cleanup_closedir_ DIR *d = opendir(path);
    if (d == NULL)
        return drv_error_set(err, DRV_ERR_IO, errno, "gc: open %s", path);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        char file[PATH_MAX];
        if (drv_fmt(file, sizeof(file), "%s/%s", path, de->d_name) != DRV_OK)
            continue;
        if (strstr(de->d_name, ".json.tmp.") != NULL) {
            (void)unlink(file); /* an atomic write that never finished */
            continue;
        }
        if (len != 69 || strcmp(de->d_name + 64, ".json") != 0)
            continue;
        gc_rec_t gr = {.gone = false};
        drv_error_t rerr = DRV_ERROR_INIT;
        if (read_record_file(file, &gr.rec, &rerr) != DRV_OK)
            continue; /* moved aside: it protects nothing */
        gr.path = strdup(file);
        drv_err_t pr = gr.path ? drv_vec_push(&g->recs, &gr) : DRV_ERR_NOMEM;
        if (pr != DRV_OK) {
            drv_store_record_free(&gr.rec);
            free(gr.path);
            return pr == DRV_ERR_TOOBIG
                       ? drv_error_set(err, pr, 0, "gc: more than %d image records", GC_RECORDS_MAX)
                       : drv_error_set(err, pr, 0, "gc: out of memory");
        }
    }
    return DRV_OK;
}

drv_err_t drv_store_gc(drv_store_t *st, const char *const *keep, size_t n_keep,
                       uint64_t target_free, drv_gc_stats_t *stats, drv_error_t *err)
{
    /* the keep list in canonical form, checked before anything is touched */
    _cleanup_free_ char(*keep_refs)[DRV_REF_STR_MAX] = NULL;
    _cleanup_free_ drv_digest_t *keep_digests = NULL;
    size_t nk_refs = 0, nk_digests = 0;
    if (n_keep > 0) {
        keep_refs = calloc(n_keep, sizeof(*keep_refs));
        keep_digests = calloc(n_keep, sizeof(*keep_digests));
        if (keep_refs == NULL || keep_digests == NULL)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "gc: out of memory");
    }
    for (size_t i = 0; i < n_keep; i++) {
        drv_err_t rc;
        if (keep[i] && !strncmp(keep[i], "sha256:", 7)) {
            rc = drv_digest_parse(keep[i], &keep_digests[nk_digests], err);
            if (rc == DRV_OK)
                nk_digests++;
        } else {
            drv_image_ref_t r;
            rc = drv_image_ref_parse(keep[i], &r, err);
            if (rc == DRV_OK)
                drv_image_ref_format(&r, keep_refs[nk_refs++], DRV_REF_STR_MAX);
        }
        if (rc != DRV_OK)
            return drv_error_wrap(err, "gc: keep[%zu]", i);
    }

    drv_err_t rc = drv_store_lock(st, true, err);
    if (rc != DRV_OK)
        return rc;
    _cleanup_unlock_ drv_store_t *locked = st;

    gc_state_t g;
    memset(&g, 0, sizeof(g));
    g.st = st;
    drv_vec_init(&g.recs, sizeof(gc_rec_t), GC_RECORDS_MAX);
    g.stats.free_before = avail_bytes(st);
    if (g.stats.free_before >= target_free) {
        g.stats.free_after = g.stats.free_before;
        if (stats)
            *stats = g.stats;
        return DRV_OK;
    }
    rc = gc_load(&g, err);
    if (rc == DRV_OK)
        rc = gc_sweep(&g, err);
    while (rc == DRV_OK && avail_bytes(st) < target_free) {
        /* the oldest pull that nobody keeps */
        size_t n = drv_vec_len(&g.recs), victim = n;
        for (size_t i = 0; i < n; i++) {
            const gc_rec_t *c = gc_rec(&g, i);
            if (c->gone)
                continue;
            bool kept = false;
            for (size_t k = 0; k < nk_refs && !kept; k++)
                kept = !strcmp(keep_refs[k], c->rec.reference);
            for (size_t k = 0; k < nk_digests && !kept; k++)
                kept = drv_digest_equal(&keep_digests[k], &c->rec.manifest) ||
                       (c->rec.has_index && drv_digest_equal(&keep_digests[k], &c->rec.index));
            if (!kept && (victim == n || c->rec.pulled < gc_rec(&g, victim)->rec.pulled))
                victim = i;
        }
        if (victim == n)
            break;
        gc_rec_t *v = gc_rec(&g, victim);
        if (unlink(v->path) != 0 && errno != ENOENT) {
            rc = drv_error_set(err, DRV_ERR_IO, errno, "gc: remove %s", v->path);
            break;
        }
        drv_error_t serr = DRV_ERROR_INIT;
        if (drv_file_sync_dir_of(v->path, &serr) != DRV_OK) {
            /* the unlink stands; a lost fsync only delays it */
        }
        v->gone = true;
        g.stats.images_removed++;
        rc = gc_sweep(&g, err);
    }
    g.stats.free_after = avail_bytes(st);
    if (stats)
        *stats = g.stats;
    gc_state_free(&g);
    return rc;
}
