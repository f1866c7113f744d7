/* The layer reader (image/tar.c) on archives made byte by byte: pax, GNU and v7 headers,
 * base-256 numbers, header-only types, compressed streams in several members, and every
 * refusal with the message a user reads. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "image/tar.h"

/* ---- building archives ------------------------------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t len;
    size_t cap;
} bytes_t;

static void put(bytes_t *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2 + 4096;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
}

static void put_zeros(bytes_t *b, size_t len)
{
    static const unsigned char z[4096];
    while (len > 0) {
        size_t k = len < sizeof z ? len : sizeof z;
        put(b, z, k);
        len -= k;
    }
}

static void pad(bytes_t *b)
{
    put_zeros(b, (512 - b->len % 512) % 512);
}

static void octal(unsigned char *f, size_t width, unsigned long long v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%0*llo", (int)width - 1, v);
    assert_true(n == (int)width - 1);
    memcpy(f, tmp, width);
}

enum { POSIX, GNU, V7 };

/* A header; the caller may change it before seal(). */
static void header(unsigned char h[512], int fmt, const char *name, char type,
                   unsigned long long size)
{
    memset(h, 0, 512);
    assert_true(strlen(name) <= 100);
    memcpy(h, name, strlen(name));
    octal(h + 100, 8, 0644);
    octal(h + 108, 8, 1000);
    octal(h + 116, 8, 1000);
    octal(h + 124, 12, size);
    octal(h + 136, 12, 1700000000);
    h[156] = (unsigned char)type;
    if (fmt == POSIX)
        memcpy(h + 257,
               "ustar\0"
               "00",
               8);
    else if (fmt == GNU)
        memcpy(h + 257, "ustar  \0", 8);
}

static void seal(unsigned char h[512])
{
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    char tmp[8];
    assert_int_equal(snprintf(tmp, sizeof tmp, "%06o", sum), 6);
    memcpy(h + 148, tmp, 7);
}

static void entry(bytes_t *b, int fmt, const char *name, char type, const void *data, size_t len)
{
    unsigned char h[512];
    header(h, fmt, name, type, len);
    seal(h);
    put(b, h, 512);
    put(b, data, len);
    pad(b);
}

/* A pax record "<len> key=value\n" (value of vlen bytes). */
static void pax_rec(bytes_t *b, const char *key, const void *value, size_t vlen)
{
    size_t body = 1 + strlen(key) + 1 + vlen + 1;
    size_t digits = 1;
    while (1) {
        size_t total = digits + body, d = 0;
        for (size_t t = total; t > 0; t /= 10)
            d++;
        if (d == digits)
            break;
        digits = d;
    }
    char num[32];
    int n = snprintf(num, sizeof num, "%zu ", digits + body);
    assert_true(n > 0);
    put(b, num, (size_t)n);
    put(b, key, strlen(key));
    put(b, "=", 1);
    put(b, value, vlen);
    put(b, "\n", 1);
}

static void end(bytes_t *b)
{
    put_zeros(b, 1024);
}

/* A readable fd holding data. */
static int memfd_of(const void *data, size_t len)
{
    int fd = memfd_create("layer", 0);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

static void gzip_member(bytes_t *out, const unsigned char *data, size_t len)
{
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)len) + 64;
    unsigned char *buf = malloc(cap);
    assert_non_null(buf);
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)len;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    put(out, buf, cap - z.avail_out);
    deflateEnd(&z);
    free(buf);
}

static void zstd_frame(bytes_t *out, const unsigned char *data, size_t len)
{
    size_t cap = ZSTD_compressBound(len);
    unsigned char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n = ZSTD_compress(buf, cap, data, len, 3);
    assert_false(ZSTD_isError(n));
    put(out, buf, n);
    free(buf);
}

/* ---- reading ----------------------------------------------------------------------------- */

typedef struct {
    int fd;
    drv_tar_t *t;
    drv_error_t err;
} reader_t;

static void open_bytes(reader_t *r, const bytes_t *b)
{
    r->fd = memfd_of(b->p, b->len);
    r->err = (drv_error_t)DRV_ERROR_INIT;
    assert_int_equal(drv_tar_open(r->fd, &r->t, &r->err), DRV_OK);
}

static void close_reader(reader_t *r)
{
    drv_tar_free(r->t);
    close(r->fd);
}

static const drv_tar_entry_t *next_ok(reader_t *r)
{
    const drv_tar_entry_t *e = NULL;
    drv_err_t rc = drv_tar_next(r->t, &e, &r->err);
    if (rc != DRV_OK)
        fail_msg("drv_tar_next: %s", r->err.msg);
    return e;
}

/* Reads all of the current entry's data into a fresh buffer; returns its length. */
static size_t read_all(reader_t *r, unsigned char **out)
{
    bytes_t b = {0};
    for (;;) {
        const void *p;
        size_t n;
        assert_int_equal(drv_tar_read(r->t, &p, &n, &r->err), DRV_OK);
        if (n == 0)
            break;
        put(&b, p, n);
    }
    *out = b.p;
    return b.len;
}

/* Reads entries until one fails; returns its code and leaves the message in r->err. */
static drv_err_t read_until_error(reader_t *r)
{
    for (int i = 0; i < 100; i++) {
        const drv_tar_entry_t *e = NULL;
        drv_err_t rc = drv_tar_next(r->t, &e, &r->err);
        if (rc != DRV_OK)
            return rc;
        if (e == NULL)
            return DRV_OK;
        for (;;) {
            const void *p;
            size_t n;
            rc = drv_tar_read(r->t, &p, &n, &r->err);
            if (rc != DRV_OK)
                return rc;
            if (n == 0)
                break;
        }
    }
    return DRV_OK;
}

static void expect_error(const bytes_t *b, drv_err_t code, const char *msg)
{
    reader_t r;
    r.fd = memfd_of(b->p, b->len);
    r.err = (drv_error_t)DRV_ERROR_INIT;
    drv_err_t rc = drv_tar_open(r.fd, &r.t, &r.err);
    if (rc == DRV_OK) {
        rc = read_until_error(&r);
        drv_tar_free(r.t);
    }
    close(r.fd);
    if (rc != code || strstr(r.err.msg, msg) == NULL)
        fail_msg("expected %d \"%s\", got %d \"%s\"", (int)code, msg, (int)rc, r.err.msg);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_pax(void **state)
{
    (void)state;
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    longname[0] = 'd';
    longname[1] = '/';
    const unsigned char capability[] = {1, 0, 0, 2, 0, 0x20, 0, 0};

    bytes_t pax = {0};
    pax_rec(&pax, "path", longname, strlen(longname));
    pax_rec(&pax, "uid", "4000000000", 10);
    pax_rec(&pax, "mtime", "-1.25", 5);
    pax_rec(&pax, "atime", "1700000001.5", 12);
    pax_rec(&pax, "SCHILY.xattr.security.capability", capability, sizeof capability);
    pax_rec(&pax, "SCHILY.xattr.user.empty", "", 0);
    pax_rec(&pax, "comment", "ignored", 7);
    bytes_t global = {0};
    pax_rec(&global, "path", "not-applied", 11);

    bytes_t b = {0};
    entry(&b, POSIX, "pax_global_header", 'g', global.p, global.len);
    entry(&b, POSIX, "PaxHeaders/x", 'x', pax.p, pax.len);
    entry(&b, POSIX, "short", '0', "hello", 5);
    entry(&b, POSIX, "plain", '0', "x", 1);
    end(&b);

    reader_t r;
    open_bytes(&r, &b);
    assert_int_equal(drv_tar_compression(r.t), DRV_TAR_PLAIN);
    const drv_tar_entry_t *e = next_ok(&r);
    assert_non_null(e);
    assert_string_equal(e->name, longname);
    assert_int_equal(e->type, DRV_TAR_FILE);
    assert_int_equal(e->uid, 4000000000LL);
    assert_int_equal(e->gid, 1000);
    assert_int_equal(e->perm, 0644);
    assert_int_equal(e->mtime.tv_sec, -2);
    assert_int_equal(e->mtime.tv_nsec, 750000000);
    assert_int_equal(e->atime.tv_sec, 1700000001);
    assert_int_equal(e->atime.tv_nsec, 500000000);
    assert_int_equal(e->nxattrs, 2);
    assert_string_equal(e->xattrs[0].name, "security.capability");
    assert_int_equal(e->xattrs[0].size, sizeof capability);
    assert_memory_equal(e->xattrs[0].value, capability, sizeof capability);
    assert_string_equal(e->xattrs[1].name, "user.empty");
    assert_int_equal(e->xattrs[1].size, 0);
    unsigned char *data;
    assert_int_equal(read_all(&r, &data), 5);
    assert_memory_equal(data, "hello", 5);
    free(data);

    /* The next entry gets nothing of the pax header. */
    e = next_ok(&r);
    assert_string_equal(e->name, "plain");
    assert_int_equal(e->uid, 1000);
    assert_int_equal(e->mtime.tv_sec, 1700000000);
    assert_int_equal(e->atime.tv_sec, 1700000000);
    assert_int_equal(e->nxattrs, 0);
    assert_null(next_ok(&r));
    assert_null(next_ok(&r)); /* and stays at the end */
    close_reader(&r);
    free(pax.p);
    free(global.p);
    free(b.p);
}

static void test_gnu_and_base256(void **state)
{
    (void)state;
    char longname[1000], longlink[700];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    memset(longlink, 'b', sizeof longlink - 1);
    longlink[sizeof longlink - 1] = '\0';

    bytes_t b = {0};
    entry(&b, GNU, "././@LongLink", 'L', longname, strlen(longname) + 1);
    entry(&b, GNU, "././@LongLink", 'K', longlink, strlen(longlink));
    entry(&b, GNU, "cut-name", '2', NULL, 0);
    /* base-256 size (70000) and uid (2^40) */
    unsigned char h[512];
    header(h, GNU, "big", '0', 0);
    memset(h + 124, 0, 12);
    h[124] = 0x80;
    h[133] = 0x01;
    h[134] = 0x11;
    h[135] = 0x70;
    memset(h + 108, 0, 8);
    h[108] = 0x80;
    h[110] = 0x01;
    seal(h);
    put(&b, h, 512);
    put_zeros(&b, 70000);
    pad(&b);
    /* a pre-POSIX directory: type '0' and a name ending in '/' */
    entry(&b, V7, "olddir/", '0', NULL, 0);
    /* a symlink declaring a size but carrying no data (header-only, as in Go) */
    header(h, POSIX, "sym", '2', 4096);
    memcpy(h + 157, "target", 6);
    seal(h);
    put(&b, h, 512);
    /* an unknown type: a regular file */
    entry(&b, POSIX, "odd", 'Z', "data", 4);
    /* no end-of-archive blocks: accepted */

    reader_t r;
    open_bytes(&r, &b);
    const drv_tar_entry_t *e = next_ok(&r);
    assert_string_equal(e->name, longname);
    assert_string_equal(e->link, longlink);
    assert_int_equal(e->type, DRV_TAR_SYMLINK);
    e = next_ok(&r);
    assert_string_equal(e->name, "big");
    assert_int_equal(e->size, 70000);
    assert_int_equal(e->uid, 1LL << 40);
    unsigned char *data;
    assert_int_equal(read_all(&r, &data), 70000);
    free(data);
    e = next_ok(&r);
    assert_string_equal(e->name, "olddir/");
    assert_int_equal(e->type, DRV_TAR_DIR);
    e = next_ok(&r);
    assert_string_equal(e->name, "sym");
    assert_int_equal(e->type, DRV_TAR_SYMLINK);
    assert_string_equal(e->link, "target");
    assert_int_equal(e->size, 0);
    e = next_ok(&r);
    assert_string_equal(e->name, "odd");
    assert_int_equal(e->type, DRV_TAR_FILE);
    assert_int_equal(read_all(&r, &data), 4);
    free(data);
    assert_null(next_ok(&r));
    close_reader(&r);
    free(b.p);
}

/* A tar split over two gzip members (pigz, concatenated streams) with garbage after them; the
 * same over two zstd frames. Data crosses the reader's buffers. */
static void test_compressed_members(void **state)
{
    (void)state;
    unsigned char *big = malloc(200000);
    assert_non_null(big);
    for (size_t i = 0; i < 200000; i++)
        big[i] = (unsigned char)(i * 7 + i / 1000);
    bytes_t t = {0};
    entry(&t, POSIX, "one", '0', "1", 1);
    entry(&t, POSIX, "big", '0', big, 200000);
    entry(&t, POSIX, "three", '0', "333", 3);
    end(&t);
    size_t half = 512 * 3 + 1000;

    for (int z = 0; z < 2; z++) {
        bytes_t c = {0};
        if (z == 0) {
            gzip_member(&c, t.p, half);
            gzip_member(&c, t.p + half, t.len - half);
            put(&c, "trailing garbage", 16);
        } else {
            zstd_frame(&c, t.p, half);
            zstd_frame(&c, t.p + half, t.len - half);
        }
        reader_t r;
        open_bytes(&r, &c);
        assert_int_equal(drv_tar_compression(r.t), z == 0 ? DRV_TAR_GZIP : DRV_TAR_ZSTD);
        assert_string_equal(next_ok(&r)->name, "one");
        const drv_tar_entry_t *e = next_ok(&r);
        assert_string_equal(e->name, "big");
        unsigned char *data;
        assert_int_equal(read_all(&r, &data), 200000);
        assert_memory_equal(data, big, 200000);
        free(data);
        assert_string_equal(next_ok(&r)->name, "three"); /* data of "three" left unread */
        assert_null(next_ok(&r));
        close_reader(&r);

        /* Cut short: the reader says so. */
        c.len = c.len * 3 / 4;
        expect_error(&c, DRV_ERR_INVALID, z == 0 ? "gzip: " : "zstd: ");
        free(c.p);
    }
    free(t.p);
    free(big);
}

static void test_refusals(void **state)
{
    (void)state;
    bytes_t b = {0};

    /* not a tar: text, nothing, another compression */
    put(&b, "just some text, not an archive", 30);
    expect_error(&b, DRV_ERR_INVALID, "not a tar archive");
    b.len = 0;
    expect_error(&b, DRV_ERR_INVALID, "not a tar archive (0 bytes)");
    put(&b,
        "\xfd"
        "7zXZ\0\0\0\0",
        10);
    expect_error(&b, DRV_ERR_UNSUPPORTED, "compressed with xz");
    b.len = 0;
    put(&b, "BZh91AY&SY", 10);
    expect_error(&b, DRV_ERR_UNSUPPORTED, "compressed with bzip2");

    /* a bad checksum on the second header */
    b.len = 0;
    entry(&b, POSIX, "a", '0', "x", 1);
    entry(&b, POSIX, "b", '0', "y", 1);
    b.p[512 * 2 + 5] ^= 1;
    end(&b);
    expect_error(&b, DRV_ERR_INVALID, "header at byte 1024: bad checksum");

    /* truncated: in a header, in data */
    b.len = 0;
    entry(&b, POSIX, "a", '0', "x", 1);
    entry(&b, POSIX, "b", '0', NULL, 0);
    b.len -= 100;
    expect_error(&b, DRV_ERR_INVALID, "ends early");
    b.len = 0;
    unsigned char h[512];
    header(h, POSIX, "f", '0', 100000);
    seal(h);
    put(&b, h, 512);
    put_zeros(&b, 4096);
    expect_error(&b, DRV_ERR_INVALID, "archive ends early at byte 4608 (truncated)");

    /* sparse, multi-volume */
    b.len = 0;
    entry(&b, GNU, "s", 'S', NULL, 0);
    end(&b);
    expect_error(&b, DRV_ERR_UNSUPPORTED, "sparse files are not supported");
    bytes_t pax = {0};
    pax_rec(&pax, "GNU.sparse.major", "1", 1);
    b.len = 0;
    entry(&b, POSIX, "x", 'x', pax.p, pax.len);
    entry(&b, POSIX, "s", '0', NULL, 0);
    end(&b);
    expect_error(&b, DRV_ERR_UNSUPPORTED, "sparse files are not supported");
    b.len = 0;
    entry(&b, GNU, "m", 'M', NULL, 0);
    end(&b);
    expect_error(&b, DRV_ERR_UNSUPPORTED, "multi-volume");

    /* pax records that lie */
    const char *bad[] = {"9 path=abc\n", "99 path=a\n",  "x path=a\n",     "12 pathabcd\n",
                         "11 size=-1\n", "11 uid=1e3\n", "13 mtime=1.x\n", "7 =abc\n"};
    const char *why[] = {"no end",   "bad record", "bad record", "no key",
                         "pax size", "pax uid",    "pax mtime",  "no key"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b.len = 0;
        entry(&b, POSIX, "x", 'x', bad[i], strlen(bad[i]));
        entry(&b, POSIX, "f", '0', NULL, 0);
        end(&b);
        expect_error(&b, DRV_ERR_INVALID, why[i]);
    }

    /* an extension header over 1 MiB is refused before it is read */
    b.len = 0;
    header(h, POSIX, "x", 'x', 2u << 20);
    seal(h);
    put(&b, h, 512);
    expect_error(&b, DRV_ERR_INVALID, "pax header of 2097152 bytes (at most 1048576)");

    /* a name of 4096 bytes (a GNU long name), an extension header with no entry after it */
    char *name = malloc(4097);
    assert_non_null(name);
    memset(name, 'n', 4096);
    name[4096] = '\0';
    b.len = 0;
    entry(&b, GNU, "././@LongLink", 'L', name, 4097);
    entry(&b, GNU, "f", '0', NULL, 0);
    end(&b);
    expect_error(&b, DRV_ERR_INVALID, "GNU long name is longer than 4095 bytes");
    free(name);
    b.len = 0;
    entry(&b, GNU, "././@LongLink", 'L', "n", 2);
    end(&b);
    expect_error(&b, DRV_ERR_INVALID, "has no entry after it");

    /* a negative size in base-256, a size that is not a number */
    b.len = 0;
    header(h, POSIX, "neg", '0', 0);
    memset(h + 124, 0xff, 12);
    seal(h);
    put(&b, h, 512);
    end(&b);
    expect_error(&b, DRV_ERR_INVALID, "negative size");
    b.len = 0;
    header(h, POSIX, "nan", '0', 0);
    memcpy(h + 124, "12x45", 5);
    seal(h);
    put(&b, h, 512);
    end(&b);
    expect_error(&b, DRV_ERR_INVALID, "size is not a number in range");

    free(pax.p);
    free(b.p);
}

/* Records that carry no file data (a pax global header, a volume label, extension headers)
 * still count against the stream's cap: a cap on file data alone let them expand for ever. */
static void test_stream_limit(void **state)
{
    (void)state;
    bytes_t b = {0};
    unsigned char h[512];
    header(h, POSIX, "pax_global_header", 'g', 4u << 20);
    seal(h);
    put(&b, h, 512);
    put_zeros(&b, 4u << 20);
    entry(&b, POSIX, "f", '0', "x", 1);
    end(&b);
    bytes_t z = {0};
    gzip_member(&z, b.p, b.len); /* 4 MiB of zeros: a few KB */
    reader_t r;
    open_bytes(&r, &z);
    drv_tar_set_limit(r.t, 1u << 20);
    const drv_tar_entry_t *e = NULL;
    assert_int_equal(drv_tar_next(r.t, &e, &r.err), DRV_ERR_TOOBIG);
    assert_non_null(strstr(r.err.msg, "expands beyond 1048576 bytes"));
    close_reader(&r);
    /* The same without a cap reads through. */
    open_bytes(&r, &z);
    e = next_ok(&r);
    assert_string_equal(e->name, "f");
    close_reader(&r);
    free(b.p);
    free(z.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pax),
        cmocka_unit_test(test_gnu_and_base256),
        cmocka_unit_test(test_compressed_members),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_stream_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
