/* Streaming tar reader for OCI layers (see tar.h): a decompressing byte source (plain, gzip
 * through zlib, zstd through libzstd) under a header parser that works on 512-byte blocks. */
#include "image/tar.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "drover/cleanup.h"

#define TAR_BLOCK 512
#define TAR_IN_SIZE 65536
#define TAR_OUT_SIZE 65536
#define TAR_EXT_MAX (1u << 20) /* a pax header or GNU long name, like Go's maxSpecialFileSize */

typedef enum { SRC_MORE, SRC_DONE } src_state_t;

struct drv_tar {
    int fd;
    drv_tar_compression_t comp;
    z_stream z;
    bool z_ready;
    ZSTD_DCtx *zd;
    bool zframe_open; /* a zstd frame was started and not finished */
    unsigned char in[TAR_IN_SIZE];
    size_t in_pos;
    size_t in_len;
    bool in_eof;
    unsigned char out[TAR_OUT_SIZE];
    size_t out_pos;
    size_t out_len;
    src_state_t src; /* SRC_DONE: the decompressed stream has ended */
    uint64_t offset; /* of the tar stream, consumed */
    uint64_t limit;  /* on offset; 0: none */
    bool failed;
    bool ended;
    bool any_header;
    uint64_t left; /* of the current entry's data */
    uint64_t pad;  /* after it, to the next block */
    char name[DRV_TAR_NAME_MAX];
    char link[DRV_TAR_NAME_MAX];
    char *ext; /* the last pax header of the entry being read (NUL-terminated copy) */
    drv_tar_xattr_t xattrs[DRV_TAR_XATTR_MAX];
    drv_tar_entry_t entry;
};

/* What extension headers before an entry set; the entry's own header fills the rest. */
struct overrides {
    bool name, link, size, uid, gid, mtime, atime, devmajor, devminor;
    uint64_t size_v;
    int64_t uid_v, gid_v;
    struct timespec mtime_v, atime_v;
    uint32_t devmajor_v, devminor_v;
    size_t nxattrs;
};

static drv_err_t fail(drv_tar_t *t, drv_error_t *err, drv_err_t code, int errnum, const char *fmt,
                      ...) DRV_PRINTF(5, 6);
static drv_err_t fail(drv_tar_t *t, drv_error_t *err, drv_err_t code, int errnum, const char *fmt,
                      ...)
{
    t->failed = true;
    va_list ap;
    va_start(ap, fmt);
    drv_err_t rc = drv_error_vset(err, code, errnum, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- the byte source --------------------------------------------------------------------- */

/* Makes at least want bytes (want <= TAR_IN_SIZE) of raw input available, fewer only at its end. */
static drv_err_t in_fill(drv_tar_t *t, size_t want, drv_error_t *err)
{
    if (t->in_pos > 0 && t->in_len - t->in_pos < want) {
        memmove(t->in, t->in + t->in_pos, t->in_len - t->in_pos);
        t->in_len -= t->in_pos;
        t->in_pos = 0;
    }
    while (!t->in_eof && t->in_len - t->in_pos < want) {
        ssize_t r = read(t->fd, t->in + t->in_len, sizeof t->in - t->in_len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return fail(t, err, DRV_ERR_IO, errno, "read");
        }
        if (r == 0)
            t->in_eof = true;
        t->in_len += (size_t)r;
    }
    return DRV_OK;
}

static bool is_gzip(const unsigned char *p, size_t n)
{
    return n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

static drv_err_t gzip_step(drv_tar_t *t, drv_error_t *err)
{
    drv_err_t rc = in_fill(t, 1, err);
    if (rc != DRV_OK)
        return rc;
    t->z.next_in = t->in + t->in_pos;
    t->z.avail_in = (uInt)(t->in_len - t->in_pos);
    t->z.next_out = t->out;
    t->z.avail_out = sizeof t->out;
    int zr = inflate(&t->z, Z_NO_FLUSH);
    t->in_pos = t->in_len - t->z.avail_in;
    t->out_len = sizeof t->out - t->z.avail_out;
    if (zr == Z_STREAM_END) {
        /* Another gzip member may follow (pigz, concatenated streams); anything else ends it. */
        rc = in_fill(t, 2, err);
        if (rc != DRV_OK)
            return rc;
        if (!is_gzip(t->in + t->in_pos, t->in_len - t->in_pos))
            t->src = SRC_DONE;
        else if (inflateReset(&t->z) != Z_OK)
            return fail(t, err, DRV_ERR_INVALID, 0, "gzip: cannot reset the decompressor");
        return DRV_OK;
    }
    if (zr == Z_MEM_ERROR)
        return fail(t, err, DRV_ERR_NOMEM, ENOMEM, "gzip: out of memory");
    if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT || zr == Z_STREAM_ERROR)
        return fail(t, err, DRV_ERR_INVALID, 0, "gzip: %s",
                    t->z.msg ? t->z.msg : "corrupt compressed data");
    if (t->out_len == 0 && t->in_eof && t->in_pos == t->in_len)
        return fail(t, err, DRV_ERR_INVALID, 0, "gzip: compressed data ends early");
    return DRV_OK;
}

static drv_err_t zstd_step(drv_tar_t *t, drv_error_t *err)
{
    drv_err_t rc = in_fill(t, 1, err);
    if (rc != DRV_OK)
        return rc;
    if (t->in_pos == t->in_len && !t->zframe_open) {
        t->src = SRC_DONE; /* every frame ended with the input */
        return DRV_OK;
    }
    ZSTD_inBuffer zin = {t->in, t->in_len, t->in_pos};
    ZSTD_outBuffer zout = {t->out, sizeof t->out, 0};
    size_t zr = ZSTD_decompressStream(t->zd, &zout, &zin);
    t->in_pos = zin.pos;
    t->out_len = zout.pos;
    if (ZSTD_isError(zr)) {
        if (ZSTD_getErrorCode(zr) == ZSTD_error_memory_allocation)
            return fail(t, err, DRV_ERR_NOMEM, ENOMEM, "zstd: out of memory");
        return fail(t, err, DRV_ERR_INVALID, 0, "zstd: %s", ZSTD_getErrorName(zr));
    }
    t->zframe_open = zr != 0;
    if (t->out_len == 0 && t->zframe_open && t->in_eof && t->in_pos == t->in_len)
        return fail(t, err, DRV_ERR_INVALID, 0, "zstd: compressed data ends early");
    return DRV_OK;
}

/* Refills the output buffer once it is used up: afterwards it holds at least one byte, or the
 * stream has ended. */
static drv_err_t out_fill(drv_tar_t *t, drv_error_t *err)
{
    t->out_pos = 0;
    t->out_len = 0;
    while (t->out_len == 0 && t->src == SRC_MORE) {
        drv_err_t rc = DRV_OK;
        switch (t->comp) {
        case DRV_TAR_PLAIN:
            rc = in_fill(t, 1, err);
            if (rc == DRV_OK && t->in_pos == t->in_len) {
                t->src = SRC_DONE;
            } else if (rc == DRV_OK) {
                size_t n = t->in_len - t->in_pos;
                memcpy(t->out, t->in + t->in_pos, n);
                t->in_pos += n;
                t->out_len = n;
            }
            break;
        case DRV_TAR_GZIP:
            rc = gzip_step(t, err);
            break;
        case DRV_TAR_ZSTD:
            rc = zstd_step(t, err);
            break;
        }
        if (rc != DRV_OK)
            return rc;
    }
    return DRV_OK;
}

/* Up to max bytes of the tar stream at *p; *n == 0 only at the stream's end. */
static drv_err_t take(drv_tar_t *t, uint64_t max, const unsigned char **p, size_t *n,
                      drv_error_t *err)
{
    if (t->out_pos == t->out_len) {
        drv_err_t rc = out_fill(t, err);
        if (rc != DRV_OK)
            return rc;
    }
    size_t avail = t->out_len - t->out_pos;
    size_t k = max < avail ? (size_t)max : avail;
    if (t->limit && k > 0 && t->offset + k > t->limit)
        return fail(t, err, DRV_ERR_TOOBIG, 0,
                    "the archive expands beyond %llu bytes (decompression bomb?)",
                    (unsigned long long)t->limit);
    *p = t->out + t->out_pos;
    *n = k;
    t->out_pos += k;
    t->offset += k;
    return DRV_OK;
}

static drv_err_t truncated(drv_tar_t *t, drv_error_t *err)
{
    return fail(t, err, DRV_ERR_INVALID, 0, "archive ends early at byte %llu (truncated)",
                (unsigned long long)t->offset);
}

/* Exactly n bytes into dst (NULL: dropped). *got tells how many came before the end. */
static drv_err_t read_exact(drv_tar_t *t, void *dst, uint64_t n, uint64_t *got, drv_error_t *err)
{
    uint64_t done = 0;
    while (done < n) {
        const unsigned char *p;
        size_t k;
        drv_err_t rc = take(t, n - done, &p, &k, err);
        if (rc != DRV_OK)
            return rc;
        if (k == 0)
            break;
        if (dst)
            memcpy((unsigned char *)dst + done, p, k);
        done += k;
    }
    if (got)
        *got = done;
    else if (done < n)
        return truncated(t, err);
    return DRV_OK;
}

/* ---- numbers and fields ------------------------------------------------------------------ */

/* A header number: octal (leading spaces, ended by a space or NUL, or the field's end) or
 * base-256 (first byte 0x80 positive, 0xff negative). */
static bool parse_number(const unsigned char *f, size_t len, int64_t *out)
{
    if (len > 0 && (f[0] == 0x80 || f[0] == 0xff)) {
        bool neg = f[0] == 0xff;
        uint64_t v = 0;
        for (size_t i = 1; i < len; i++) {
            unsigned b = neg ? (unsigned)(unsigned char)~f[i] : f[i];
            if (v > (UINT64_MAX >> 8))
                return false;
            v = (v << 8) | b;
        }
        if (v > (uint64_t)INT64_MAX)
            return false;
        *out = neg ? -(int64_t)v - 1 : (int64_t)v;
        return true;
    }
    size_t i = 0;
    while (i < len && f[i] == ' ')
        i++;
    uint64_t v = 0;
    for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
        if (v > ((uint64_t)INT64_MAX >> 3))
            return false;
        v = (v << 3) | (uint64_t)(f[i] - '0');
    }
    for (; i < len; i++)
        if (f[i] != ' ' && f[i] != '\0')
            return false;
    *out = (int64_t)v;
    return true;
}

/* A time in seconds as time_t, which is 32 bits on armhf: clamped rather than wrapped. */
static time_t to_time(int64_t sec)
{
    const int64_t max = sizeof(time_t) == 8 ? INT64_MAX : INT32_MAX;
    if (sec > max)
        return (time_t)max;
    if (sec < -max)
        return (time_t)-max;
    return (time_t)sec;
}

/* Copies a fixed-width, possibly unterminated header string. */
static void field_str(const unsigned char *f, size_t len, char *out)
{
    size_t n = strnlen((const char *)f, len);
    memcpy(out, f, n);
    out[n] = '\0';
}

/* Decimal, for pax values: an unsigned integer, all of s. */
static bool parse_decimal(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* A pax time: [-]seconds[.fraction]. */
static bool parse_time(const char *s, size_t len, struct timespec *out)
{
    bool neg = len > 0 && s[0] == '-';
    const char *p = s + neg;
    const char *end = s + len;
    const char *dot = memchr(p, '.', (size_t)(end - p));
    uint64_t sec;
    if (!parse_decimal(p, (size_t)((dot ? dot : end) - p), &sec) || sec > (uint64_t)INT64_MAX)
        return false;
    long nsec = 0;
    if (dot) {
        long scale = 100000000;
        for (const char *q = dot + 1; q < end; q++) {
            if (*q < '0' || *q > '9')
                return false;
            nsec += (*q - '0') * scale;
            scale /= 10;
        }
    }
    int64_t secs = (int64_t)sec;
    if (neg) {
        secs = -secs;
        if (nsec > 0) {
            secs -= 1; /* -1.25 is 2 s before 0.75 */
            nsec = 1000000000 - nsec;
        }
    }
    out->tv_sec = to_time(secs);
    out->tv_nsec = nsec;
    return true;
}

static bool set_name(char *dst, const char *src, size_t len)
{
    if (len >= DRV_TAR_NAME_MAX || memchr(src, '\0', len) != NULL)
        return false;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return true;
}

/* ---- extension headers ------------------------------------------------------------------- */

static drv_err_t pax_record(drv_tar_t *t, struct overrides *o, char *key, char *val, size_t vlen,
                            drv_error_t *err)
{
    uint64_t u;
    if (strcmp(key, "path") == 0 || strcmp(key, "linkpath") == 0) {
        bool is_path = key[0] == 'p';
        if (vlen == 0) {
            *(is_path ? &o->name : &o->link) = false;
        } else if (!set_name(is_path ? t->name : t->link, val, vlen)) {
            return fail(t, err, DRV_ERR_INVALID, 0, "pax %s is longer than %d bytes or holds NUL",
                        key, DRV_TAR_NAME_MAX - 1);
        } else {
            *(is_path ? &o->name : &o->link) = true;
        }
    } else if (strcmp(key, "size") == 0) {
        if (vlen == 0)
            o->size = false;
        else if (!parse_decimal(val, vlen, &u) || u > (uint64_t)INT64_MAX)
            return fail(t, err, DRV_ERR_INVALID, 0, "pax size is not a number in range");
        else {
            o->size = true;
            o->size_v = u;
        }
    } else if (strcmp(key, "uid") == 0 || strcmp(key, "gid") == 0) {
        bool is_uid = key[0] == 'u';
        if (vlen == 0) {
            *(is_uid ? &o->uid : &o->gid) = false;
        } else if (!parse_decimal(val, vlen, &u) || u > (uint64_t)INT64_MAX) {
            return fail(t, err, DRV_ERR_INVALID, 0, "pax %s is not a number in range", key);
        } else {
            *(is_uid ? &o->uid : &o->gid) = true;
            *(is_uid ? &o->uid_v : &o->gid_v) = (int64_t)u;
        }
    } else if (strcmp(key, "mtime") == 0 || strcmp(key, "atime") == 0) {
        bool is_m = key[0] == 'm';
        if (vlen == 0) {
            *(is_m ? &o->mtime : &o->atime) = false;
        } else if (!parse_time(val, vlen, is_m ? &o->mtime_v : &o->atime_v)) {
            return fail(t, err, DRV_ERR_INVALID, 0, "pax %s is not a time", key);
        } else {
            *(is_m ? &o->mtime : &o->atime) = true;
        }
    } else if (strcmp(key, "SCHILY.devmajor") == 0 || strcmp(key, "SCHILY.devminor") == 0) {
        bool is_major = key[11] == 'a';
        if (!parse_decimal(val, vlen, &u) || u > UINT32_MAX)
            return fail(t, err, DRV_ERR_INVALID, 0, "pax %s is not a number in range", key);
        *(is_major ? &o->devmajor : &o->devminor) = true;
        *(is_major ? &o->devmajor_v : &o->devminor_v) = (uint32_t)u;
    } else if (strncmp(key, "SCHILY.xattr.", 13) == 0) {
        const char *name = key + 13;
        if (name[0] == '\0')
            return fail(t, err, DRV_ERR_INVALID, 0, "pax extended attribute without a name");
        if (o->nxattrs == DRV_TAR_XATTR_MAX)
            return fail(t, err, DRV_ERR_INVALID, 0, "more than %d extended attributes on one entry",
                        DRV_TAR_XATTR_MAX);
        t->xattrs[o->nxattrs++] = (drv_tar_xattr_t){name, val, vlen};
    } else if (strncmp(key, "GNU.sparse.", 11) == 0) {
        return fail(t, err, DRV_ERR_UNSUPPORTED, 0, "sparse files are not supported");
    }
    /* Other keys (ctime, uname, gname, comment, hdrcharset, LIBARCHIVE.*, ...) change nothing
     * a layer's files get. */
    return DRV_OK;
}

/* Parses a pax header's records, "<length> <key>=<value>\n" each; keys and values stay in buf
 * (which must outlive the entry, for the extended attributes). */
static drv_err_t pax_parse(drv_tar_t *t, char *buf, size_t len, struct overrides *o,
                           drv_error_t *err)
{
    o->nxattrs = 0; /* a later pax header replaces the attributes of an earlier one */
    size_t pos = 0;
    while (pos < len) {
        size_t i = pos;
        uint64_t rlen = 0;
        while (i < len && buf[i] >= '0' && buf[i] <= '9' && i - pos < 8)
            rlen = rlen * 10 + (uint64_t)(buf[i++] - '0');
        if (i == pos || i >= len || buf[i] != ' ' || rlen > len - pos || rlen < i - pos + 3)
            return fail(t, err, DRV_ERR_INVALID, 0, "pax header: bad record at byte %zu", pos);
        size_t end = pos + (size_t)rlen; /* one past the record's '\n' */
        if (buf[end - 1] != '\n')
            return fail(t, err, DRV_ERR_INVALID, 0, "pax header: record at byte %zu has no end",
                        pos);
        char *key = buf + i + 1;
        char *eq = memchr(key, '=', (size_t)(buf + end - 1 - key));
        if (eq == NULL || eq == key)
            return fail(t, err, DRV_ERR_INVALID, 0, "pax header: record at byte %zu has no key",
                        pos);
        if (memchr(key, '\0', (size_t)(eq - key)) != NULL)
            return fail(t, err, DRV_ERR_INVALID, 0, "pax header: key with NUL at byte %zu", pos);
        *eq = '\0';
        char *val = eq + 1;
        size_t vlen = (size_t)(buf + end - 1 - val);
        drv_err_t rc = pax_record(t, o, key, val, vlen, err);
        if (rc != DRV_OK)
            return rc;
        pos = end;
    }
    return DRV_OK;
}

/* Reads an extension header's data (size bytes and the padding) into a fresh NUL-terminated
 * buffer. */
static drv_err_t ext_read(drv_tar_t *t, int64_t size, const char *what, char **out,
                          drv_error_t *err)
{
    if (size < 0 || (uint64_t)size > TAR_EXT_MAX)
        return fail(t, err, DRV_ERR_INVALID, 0, "%s of %lld bytes (at most %u)", what,
                    (long long)size, TAR_EXT_MAX);
    _cleanup_free_ char *buf = malloc((size_t)size + 1);
    if (buf == NULL)
        return fail(t, err, DRV_ERR_NOMEM, ENOMEM, "out of memory");
    drv_err_t rc = read_exact(t, buf, (uint64_t)size, NULL, err);
    if (rc == DRV_OK)
        rc = read_exact(t, NULL, (TAR_BLOCK - (uint64_t)size % TAR_BLOCK) % TAR_BLOCK, NULL, err);
    if (rc != DRV_OK)
        return rc;
    buf[size] = '\0';
    *out = TAKE_PTR(buf);
    return DRV_OK;
}

/* ---- headers ----------------------------------------------------------------------------- */

static bool checksum_ok(const unsigned char *h)
{
    int64_t stored;
    if (!parse_number(h + 148, 8, &stored))
        return false;
    uint64_t usum = 0;
    int64_t ssum = 0;
    for (size_t i = 0; i < TAR_BLOCK; i++) {
        unsigned char b = (i >= 148 && i < 156) ? ' ' : h[i];
        usum += b;
        ssum += (signed char)b;
    }
    return (int64_t)usum == stored || ssum == stored;
}

static bool all_zero(const unsigned char *h)
{
    for (size_t i = 0; i < TAR_BLOCK; i++)
        if (h[i] != 0)
            return false;
    return true;
}

static drv_err_t header_number(drv_tar_t *t, const unsigned char *h, size_t off, size_t len,
                               const char *field, int64_t *out, drv_error_t *err)
{
    if (!parse_number(h + off, len, out))
        return fail(t, err, DRV_ERR_INVALID, 0, "header at byte %llu: %s is not a number in range",
                    (unsigned long long)(t->offset - TAR_BLOCK), field);
    return DRV_OK;
}

/* Fills t->entry from header h and the overrides. */
static drv_err_t make_entry(drv_tar_t *t, const unsigned char *h, const struct overrides *o,
                            drv_error_t *err)
{
    drv_tar_entry_t *e = &t->entry;
    *e = (drv_tar_entry_t){0};
    bool posix = memcmp(h + 257, "ustar\0", 6) == 0;
    bool gnu = memcmp(h + 257, "ustar  \0", 8) == 0;
    if (!o->name) {
        char prefix[156], name[101];
        field_str(h + 345, posix ? 155 : 0, prefix);
        field_str(h, 100, name);
        /* both fit: 155 + 1 + 100 < DRV_TAR_NAME_MAX */
        size_t pl = strlen(prefix), nl = strlen(name);
        memcpy(t->name, prefix, pl);
        if (pl > 0)
            t->name[pl++] = '/';
        memcpy(t->name + pl, name, nl + 1);
    }
    if (!o->link)
        field_str(h + 157, 100, t->link);

    int64_t mode, uid, gid, size, mtime, major, minor, atime = 0;
    drv_err_t rc = header_number(t, h, 100, 8, "mode", &mode, err);
    if (rc == DRV_OK)
        rc = header_number(t, h, 108, 8, "uid", &uid, err);
    if (rc == DRV_OK)
        rc = header_number(t, h, 116, 8, "gid", &gid, err);
    if (rc == DRV_OK)
        rc = header_number(t, h, 124, 12, "size", &size, err);
    if (rc == DRV_OK)
        rc = header_number(t, h, 136, 12, "mtime", &mtime, err);
    if (rc == DRV_OK)
        rc = header_number(t, h, 329, 8, "devmajor", &major, err);
    if (rc == DRV_OK)
        rc = header_number(t, h, 337, 8, "devminor", &minor, err);
    if (rc == DRV_OK && gnu)
        rc = header_number(t, h, 345, 12, "atime", &atime, err);
    if (rc != DRV_OK)
        return rc;

    e->name = t->name;
    e->link = "";
    e->perm = (unsigned)(mode & 07777);
    e->uid = o->uid ? o->uid_v : uid;
    e->gid = o->gid ? o->gid_v : gid;
    if (e->uid < 0 || e->gid < 0)
        return fail(t, err, DRV_ERR_INVALID, 0, "entry \"%.200s\": negative uid or gid", t->name);
    if (o->mtime)
        e->mtime = o->mtime_v;
    else
        e->mtime = (struct timespec){.tv_sec = to_time(mtime)};
    if (o->atime)
        e->atime = o->atime_v;
    else if (gnu && atime > 0)
        e->atime = (struct timespec){.tv_sec = to_time(atime)};
    else
        e->atime = e->mtime;
    int64_t dmaj = o->devmajor ? (int64_t)o->devmajor_v : major;
    int64_t dmin = o->devminor ? (int64_t)o->devminor_v : minor;
    if (dmaj < 0 || dmaj > UINT32_MAX || dmin < 0 || dmin > UINT32_MAX)
        return fail(t, err, DRV_ERR_INVALID, 0, "entry \"%.200s\": device number out of range",
                    t->name);
    e->devmajor = (uint32_t)dmaj;
    e->devminor = (uint32_t)dmin;
    e->xattrs = t->xattrs;
    e->nxattrs = o->nxattrs;

    uint64_t data = o->size ? o->size_v : (uint64_t)(size < 0 ? 0 : size);
    if (!o->size && size < 0)
        return fail(t, err, DRV_ERR_INVALID, 0, "entry \"%.200s\": negative size", t->name);
    size_t nlen = strlen(t->name);
    switch (h[156]) {
    case '1':
        e->type = DRV_TAR_HARDLINK;
        break;
    case '2':
        e->type = DRV_TAR_SYMLINK;
        break;
    case '3':
        e->type = DRV_TAR_CHAR;
        break;
    case '4':
        e->type = DRV_TAR_BLOCK;
        break;
    case '5':
    case 'D': /* GNU dumpdir: a directory and a listing of it */
        e->type = DRV_TAR_DIR;
        break;
    case '6':
        e->type = DRV_TAR_FIFO;
        break;
    default: /* '0', '\0', '7' and types this reader does not know: regular files (POSIX) */
        e->type = nlen > 0 && t->name[nlen - 1] == '/' && (h[156] == '0' || h[156] == '\0')
                      ? DRV_TAR_DIR /* a pre-POSIX directory */
                      : DRV_TAR_FILE;
        break;
    }
    if (e->type == DRV_TAR_HARDLINK || e->type == DRV_TAR_SYMLINK)
        e->link = t->link;
    /* Only files have data; other entries' size fields are skipped over, like Go's reader
     * does, except a directory's, whose data (a GNU dumpdir) is there to be skipped. */
    e->size = e->type == DRV_TAR_FILE ? data : 0;
    t->left = e->type == DRV_TAR_FILE || h[156] == 'D' ? data : 0;
    t->pad = (TAR_BLOCK - t->left % TAR_BLOCK) % TAR_BLOCK;
    return DRV_OK;
}

drv_err_t drv_tar_next(drv_tar_t *t, const drv_tar_entry_t **entry, drv_error_t *err)
{
    *entry = NULL;
    if (t->failed)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "archive reader failed earlier");
    if (t->ended)
        return DRV_OK;
    drv_err_t rc = read_exact(t, NULL, t->left + t->pad, NULL, err);
    if (rc != DRV_OK)
        return rc;
    t->left = t->pad = 0;
    free(t->ext);
    t->ext = NULL;

    struct overrides o = {0};
    bool pending = false; /* an extension header waits for its entry */
    for (;;) {
        unsigned char h[TAR_BLOCK];
        uint64_t got;
        rc = read_exact(t, h, TAR_BLOCK, &got, err);
        if (rc != DRV_OK)
            return rc;
        if (got == 0 && t->any_header && !pending) {
            t->ended = true; /* no end-of-archive blocks: accepted, as libarchive and Go do */
            return DRV_OK;
        }
        if (got < TAR_BLOCK) {
            if (!t->any_header)
                return fail(t, err, DRV_ERR_INVALID, 0, "not a tar archive (%llu bytes)",
                            (unsigned long long)got);
            return truncated(t, err);
        }
        if (all_zero(h)) {
            if (pending)
                return fail(t, err, DRV_ERR_INVALID, 0,
                            "extension header at byte %llu has no entry after it",
                            (unsigned long long)(t->offset - TAR_BLOCK));
            t->ended = true;
            return DRV_OK;
        }
        if (!checksum_ok(h)) {
            if (!t->any_header)
                return fail(t, err, DRV_ERR_INVALID, 0, "not a tar archive");
            return fail(t, err, DRV_ERR_INVALID, 0, "header at byte %llu: bad checksum",
                        (unsigned long long)(t->offset - TAR_BLOCK));
        }
        t->any_header = true;
        int64_t size;
        rc = header_number(t, h, 124, 12, "size", &size, err);
        if (rc != DRV_OK)
            return rc;
        char type = (char)h[156];
        if (type == 'x') {
            free(t->ext);
            t->ext = NULL;
            rc = ext_read(t, size, "pax header", &t->ext, err);
            if (rc == DRV_OK)
                rc = pax_parse(t, t->ext, (size_t)size, &o, err);
            if (rc != DRV_OK)
                return rc;
            pending = true;
        } else if (type == 'L' || type == 'K') {
            _cleanup_free_ char *buf = NULL;
            rc = ext_read(t, size, type == 'L' ? "GNU long name" : "GNU long link name", &buf, err);
            if (rc != DRV_OK)
                return rc;
            size_t n = strlen(buf); /* the stored name ends at its NUL */
            if (n >= DRV_TAR_NAME_MAX)
                return fail(t, err, DRV_ERR_INVALID, 0, "%s is longer than %d bytes",
                            type == 'L' ? "GNU long name" : "GNU long link name",
                            DRV_TAR_NAME_MAX - 1);
            memcpy(type == 'L' ? t->name : t->link, buf, n + 1);
            *(type == 'L' ? &o.name : &o.link) = true;
            pending = true;
        } else if (type == 'g' || type == 'V') {
            /* a pax global header or a volume label: read past, they name no file */
            if (size < 0)
                return fail(t, err, DRV_ERR_INVALID, 0, "negative size");
            rc = read_exact(t, NULL,
                            (uint64_t)size + (TAR_BLOCK - (uint64_t)size % TAR_BLOCK) % TAR_BLOCK,
                            NULL, err);
            if (rc != DRV_OK)
                return rc;
        } else if (type == 'S') {
            return fail(t, err, DRV_ERR_UNSUPPORTED, 0, "sparse files are not supported");
        } else if (type == 'M' || type == 'N') {
            return fail(t, err, DRV_ERR_UNSUPPORTED, 0,
                        "GNU multi-volume or old long-name entries are not supported");
        } else {
            rc = make_entry(t, h, &o, err);
            if (rc != DRV_OK)
                return rc;
            *entry = &t->entry;
            return DRV_OK;
        }
    }
}

drv_err_t drv_tar_read(drv_tar_t *t, const void **buf, size_t *len, drv_error_t *err)
{
    *buf = NULL;
    *len = 0;
    if (t->failed)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "archive reader failed earlier");
    if (t->left == 0)
        return DRV_OK;
    const unsigned char *p;
    size_t n;
    drv_err_t rc = take(t, t->left, &p, &n, err);
    if (rc != DRV_OK)
        return rc;
    if (n == 0)
        return truncated(t, err);
    t->left -= n;
    *buf = p;
    *len = n;
    return DRV_OK;
}

/* ---- life cycle -------------------------------------------------------------------------- */

drv_err_t drv_tar_open(int fd, drv_tar_t **out, drv_error_t *err)
{
    drv_tar_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "out of memory");
    t->fd = fd;
    drv_err_t rc = in_fill(t, 6, err);
    if (rc != DRV_OK) {
        drv_tar_free(t);
        return rc;
    }
    const unsigned char *p = t->in;
    size_t n = t->in_len;
    if (is_gzip(p, n)) {
        t->comp = DRV_TAR_GZIP;
        if (inflateInit2(&t->z, 15 + 16) != Z_OK) {
            drv_tar_free(t);
            return drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "gzip: cannot start decompressor");
        }
        t->z_ready = true;
    } else if (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd) {
        t->comp = DRV_TAR_ZSTD;
        t->zd = ZSTD_createDCtx();
        if (t->zd == NULL) {
            drv_tar_free(t);
            return drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "zstd: cannot start decompressor");
        }
    } else if ((n >= 6 && memcmp(p,
                                 "\xfd"
                                 "7zXZ\0",
                                 6) == 0) ||
               (n >= 3 && memcmp(p, "BZh", 3) == 0)) {
        const char *what = p[0] == 'B' ? "bzip2" : "xz";
        drv_tar_free(t);
        return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                             "compressed with %s: only gzip, zstd or none are supported", what);
    } else {
        t->comp = DRV_TAR_PLAIN;
    }
    *out = t;
    return DRV_OK;
}

drv_tar_compression_t drv_tar_compression(const drv_tar_t *t)
{
    return t->comp;
}

void drv_tar_set_limit(drv_tar_t *t, uint64_t max)
{
    t->limit = max;
}

uint64_t drv_tar_offset(const drv_tar_t *t)
{
    return t->offset;
}

void drv_tar_free(drv_tar_t *t)
{
    if (t == NULL)
        return;
    if (t->z_ready)
        inflateEnd(&t->z);
    ZSTD_freeDCtx(t->zd);
    free(t->ext);
    free(t);
}
