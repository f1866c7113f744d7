/* Confined OCI layer extraction (see unpack.h). Every path operation is relative to a directory
 * fd inside the destination, reached with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) or a
 * component-by-component O_NOFOLLOW walk, so no entry name, planted symlink, hardlink or whiteout
 * can touch anything outside it. Byte and entry counts are capped against decompression bombs. */
#include "image/unpack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/fsat.h"
#include "drover/map.h"
#include "drover/log.h"
#include "drover/vec.h"
#include "image/tar.h"

#define UNPACK_DEFAULT_MAX_BYTES (8ULL << 30)
#define UNPACK_DEFAULT_MAX_ENTRIES 1000000ULL
#define UNPACK_PATH_MAX 4096         /* longest entry name accepted */
#define UNPACK_MAX_DEPTH 256         /* deepest entry accepted, in components */
#define UNPACK_CLEAR_MAX_DEPTH 320   /* opaque-directory clearing gives up below this (fds held) */
#define UNPACK_QUOTE_MAX 256         /* entry names in messages are cut to this */
#define UNPACK_NAMES_MAX (64u << 20) /* memory for the names a layer makes us remember */

#define WH_PREFIX ".wh."
#define WH_PREFIX_LEN 4
#define WH_OPAQUE ".wh..wh..opq"
#define OVERLAY_OPAQUE_XATTR "trusted.overlay.opaque"

/* An entry name split into components (no "", "." or ".." left), pointing into buf. */
typedef struct upath {
    char buf[UNPACK_PATH_MAX];
    const char *comp[UNPACK_MAX_DEPTH];
    size_t n;
} upath_t;

/* Set of cleaned relative paths (keys owned, strndup'd); used in APPLY mode to tell entries
 * of this layer (which whiteouts and opaque markers must spare) from those of earlier layers.
 * The layer chooses the names: the map is seeded, so they cannot be made to collide. */
struct pathset {
    drv_map_t map;
    size_t bytes; /* of the names remembered here and by record_dir, against UNPACK_NAMES_MAX */
};

/* Directory metadata applied once all entries are in (creating children changes mtimes, and a
 * read-only directory must stay writable while it is filled). */
struct dirmeta {
    char *path; /* cleaned relative path, "" for the root */
    mode_t mode;
    struct timespec ts[2];
};

struct unpack_ctx {
    drv_unpack_mode_t mode;
    const char *what;
    char what_q[UNPACK_QUOTE_MAX]; /* what, quoted for log lines */
    uint64_t max_bytes;
    uint64_t max_entries;
    bool preserve_owner;
    bool is_root;
    bool no_openat2;
    int rootfd;
    drv_tar_t *tar;
    const char *entry; /* raw name of the entry being processed, for messages; NULL between */
    uint64_t entries;
    uint64_t consumed; /* all entry data read, against max_bytes */
    uint64_t written;  /* file content written */
    struct pathset seen;
    drv_vec_t dirs;      /* struct dirmeta, in entry order; at most one per entry (and the root) */
    drv_map_t dir_index; /* path (the dirmeta's own string) -> its index in dirs */
    upath_t path;        /* the entry's own name */
    upath_t target;      /* a hardlink's target, or a path being re-resolved */
    drv_error_t *err;
};

/* Flags for open_dir(). */
enum {
    OPEN_CREATE = 1,     /* create missing directories (0755) */
    OPEN_MISSING_OK = 2, /* a missing component yields fd -1 and DRV_OK */
    OPEN_QUIET = 4,      /* any failure yields fd -1 and DRV_OK, err untouched */
};

/* ---- messages ---------------------------------------------------------------------------- */

/* Writes s into out for a message: printable ASCII as is, '"' and '\\' and everything else
 * escaped, cut with "..." to fit. Returns out. */
static const char *quote_name(const char *s, char *out, size_t outsz)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[5];
        size_t n;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            n = 2;
        } else if (*p >= 0x20 && *p < 0x7f) {
            esc[0] = (char)*p;
            n = 1;
        } else {
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hex[*p >> 4];
            esc[3] = hex[*p & 0xf];
            n = 4;
        }
        if (o + n + 4 >= outsz) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(out + o, esc, n);
        o += n;
    }
    out[o] = '\0';
    return out;
}

/* Records "<what>: entry \"<name>\": <detail>" (or "<what>: <detail>" between entries). */
static drv_err_t entry_fail(struct unpack_ctx *c, drv_err_t code, int errnum, const char *fmt, ...)
    DRV_PRINTF(4, 5);
static drv_err_t entry_fail(struct unpack_ctx *c, drv_err_t code, int errnum, const char *fmt, ...)
{
    char detail[600];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (n < 0)
        detail[0] = '\0';
    if (c->entry == NULL)
        return drv_error_set(c->err, code, errnum, "%s: %s", c->what, detail);
    char q[UNPACK_QUOTE_MAX];
    return drv_error_set(c->err, code, errnum, "%s: entry \"%s\": %s", c->what,
                         quote_name(c->entry, q, sizeof q), detail);
}

/* Reports the tar reader's own error (corrupt, truncated, not a tar) from terr. */
static drv_err_t tar_fail(struct unpack_ctx *c, const char *doing, const drv_error_t *terr)
{
    drv_err_t code = terr->code != DRV_OK ? terr->code : DRV_ERR_INVALID;
    return entry_fail(c, code, terr->sys_errno, "%s: %s", doing,
                      terr->msg[0] ? terr->msg : "unknown archive error");
}

/* ---- names ------------------------------------------------------------------------------- */

/* Splits raw into p: leading "/" and "." components dropped, ".." resolved lexically. A ".."
 * above the root is refused: names are never allowed to leave it. role names the string in
 * messages ("hardlink target"), NULL for the entry's own name. */
static drv_err_t path_parse(struct unpack_ctx *c, const char *raw, const char *role, upath_t *p)
{
    char q[UNPACK_QUOTE_MAX];
    size_t len = strlen(raw);
    if (len >= sizeof p->buf) {
        if (role)
            return entry_fail(c, DRV_ERR_INVALID, 0, "%s is longer than %d bytes", role,
                              UNPACK_PATH_MAX - 1);
        return entry_fail(c, DRV_ERR_INVALID, 0, "name is longer than %d bytes",
                          UNPACK_PATH_MAX - 1);
    }
    memcpy(p->buf, raw, len + 1);
    p->n = 0;
    char *s = p->buf;
    while (*s) {
        if (*s == '/') {
            *s++ = '\0';
            continue;
        }
        char *start = s;
        while (*s && *s != '/')
            s++;
        if (*s)
            *s++ = '\0';
        if (strcmp(start, ".") == 0)
            continue;
        if (strcmp(start, "..") == 0) {
            if (p->n == 0) {
                if (role)
                    return entry_fail(c, DRV_ERR_INVALID, 0, "%s \"%s\" escapes the layer root",
                                      role, quote_name(raw, q, sizeof q));
                return entry_fail(c, DRV_ERR_INVALID, 0, "escapes the layer root");
            }
            p->n--;
            continue;
        }
        if (p->n == UNPACK_MAX_DEPTH)
            return entry_fail(c, DRV_ERR_INVALID, 0, "%s%snested deeper than %d directories",
                              role ? role : "", role ? " is " : "is ", UNPACK_MAX_DEPTH);
        if (strlen(start) > NAME_MAX)
            return entry_fail(c, DRV_ERR_INVALID, 0, "%s%shas a component longer than %d bytes",
                              role ? role : "", role ? " " : "", NAME_MAX);
        p->comp[p->n++] = start;
    }
    return DRV_OK;
}

/* Writes the first k components of p joined with "/" into out (never longer than the raw name,
 * so UNPACK_PATH_MAX is enough). Returns the length. */
static size_t path_join(const upath_t *p, size_t k, char *out, size_t outsz)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < k; i++) {
        size_t l = strlen(p->comp[i]);
        if (o + l + 2 > outsz)
            break;
        if (i > 0)
            out[o++] = '/';
        memcpy(out + o, p->comp[i], l);
        o += l;
        out[o] = '\0';
    }
    return o;
}

/* Whether a symlink whose text is target, stored depth components below the root, may point
 * outside it (absolute, or climbing above the root lexically). */
static bool symlink_escapes(const char *target, size_t depth)
{
    if (target[0] == '/')
        return true;
    const char *s = target;
    while (*s) {
        const char *e = strchrnul(s, '/');
        size_t l = (size_t)(e - s);
        if (l == 2 && s[0] == '.' && s[1] == '.') {
            if (depth == 0)
                return true;
            depth--;
        } else if (l > 0 && !(l == 1 && s[0] == '.')) {
            depth++;
        }
        s = *e ? e + 1 : e;
    }
    return false;
}

/* ---- path set ---------------------------------------------------------------------------- */

static void pathset_init(struct pathset *set, size_t max)
{
    drv_map_init(&set->map, max);
    set->bytes = 0;
}

static bool pathset_has(struct pathset *set, const char *s, size_t len)
{
    return drv_map_find(&set->map, s, len, NULL);
}

static drv_err_t pathset_add(struct pathset *set, const char *s, size_t len)
{
    if (pathset_has(set, s, len))
        return DRV_OK;
    if (len + 1 > UNPACK_NAMES_MAX - set->bytes)
        return DRV_ERR_RANGE; /* the names' memory budget */
    set->bytes += len + 1;
    char *copy = strndup(s, len);
    if (copy == NULL)
        return DRV_ERR_NOMEM;
    drv_err_t rc = drv_map_put(&set->map, copy, NULL);
    if (rc != DRV_OK)
        free(copy);
    return rc;
}

static void pathset_free(struct pathset *set)
{
    const char *key;
    for (size_t it = 0; drv_map_next(&set->map, &it, &key, NULL);)
        free((char *)key);
    drv_map_free(&set->map);
}

/* Remembers p and all its ancestors as written by this layer. */
static drv_err_t mark_seen(struct unpack_ctx *c, const upath_t *p)
{
    char rel[UNPACK_PATH_MAX];
    for (size_t k = 1; k <= p->n; k++) {
        size_t len = path_join(p, k, rel, sizeof rel);
        drv_err_t rc = pathset_add(&c->seen, rel, len);
        if (rc == DRV_ERR_TOOBIG)
            return entry_fail(c, rc, 0, "more than %zu distinct paths", c->seen.map.max);
        if (rc == DRV_ERR_RANGE)
            return entry_fail(c, DRV_ERR_TOOBIG, 0, "the layer's names take more than %d MiB",
                              UNPACK_NAMES_MAX >> 20);
        if (rc != DRV_OK)
            return entry_fail(c, DRV_ERR_NOMEM, 0, "out of memory tracking paths");
    }
    return DRV_OK;
}

/* ---- confined file system operations ----------------------------------------------------- */

static int sys_openat2(int atfd, const char *path, uint64_t flags, uint64_t resolve)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = flags;
    how.resolve = resolve;
    return (int)syscall(SYS_openat2, atfd, path, &how, sizeof how);
}

/* Opens (O_RDONLY|O_DIRECTORY) the directory made of the first k components of p, never
 * following a symlink and never leaving the root. Fast path: one openat2 with RESOLVE_BENEATH
 * and RESOLVE_NO_SYMLINKS. Otherwise (missing component, symlink, no openat2) a walk one
 * component at a time with O_NOFOLLOW, which creates what is missing and names what is wrong.
 * role names the directory in messages ("parent"). */
static drv_err_t open_dir(struct unpack_ctx *c, const upath_t *p, size_t k, int flags,
                          const char *role, int *out)
{
    char rel[UNPACK_PATH_MAX];
    char q[UNPACK_QUOTE_MAX];
    *out = -1;
    if (k == 0) {
        int fd = fcntl(c->rootfd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
            return (flags & OPEN_QUIET) ? DRV_OK : entry_fail(c, DRV_ERR_IO, errno, "dup");
        *out = fd;
        return DRV_OK;
    }
    if (!c->no_openat2) {
        path_join(p, k, rel, sizeof rel);
        int fd = sys_openat2(c->rootfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                             RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
        if (fd >= 0) {
            *out = fd;
            return DRV_OK;
        }
        if (errno == ENOSYS)
            c->no_openat2 = true;
        /* Anything else falls to the walk, which creates or names the culprit. */
    }
    _cleanup_close_ int cur = fcntl(c->rootfd, F_DUPFD_CLOEXEC, 0);
    if (cur < 0)
        return (flags & OPEN_QUIET) ? DRV_OK : entry_fail(c, DRV_ERR_IO, errno, "dup");
    for (size_t i = 0; i < k; i++) {
        const char *name = p->comp[i];
        int fd = openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT && (flags & OPEN_CREATE)) {
            if (mkdirat(cur, name, 0755) < 0 && errno != EEXIST) {
                int e = errno;
                if (flags & OPEN_QUIET)
                    return DRV_OK;
                path_join(p, i + 1, rel, sizeof rel);
                return entry_fail(c, DRV_ERR_IO, e, "create directory \"%s\"",
                                  quote_name(rel, q, sizeof q));
            }
            fd = openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0 && fchmod(fd, 0755) < 0) {
                int e = errno;
                close(fd);
                errno = e;
                fd = -1;
            }
        }
        if (fd < 0) {
            int e = errno;
            if (flags & OPEN_QUIET)
                return DRV_OK;
            if (e == ENOENT && (flags & OPEN_MISSING_OK))
                return DRV_OK;
            path_join(p, i + 1, rel, sizeof rel);
            quote_name(rel, q, sizeof q);
            struct stat st;
            if ((e == ENOTDIR || e == ELOOP) && fstatat(cur, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (S_ISLNK(st.st_mode))
                    return entry_fail(c, DRV_ERR_INVALID, 0,
                                      "%s \"%s\" is a symbolic link; entries are never written "
                                      "through one",
                                      role, q);
                return entry_fail(c, DRV_ERR_INVALID, 0, "%s \"%s\" is not a directory", role, q);
            }
            if (e == ENOENT)
                return entry_fail(c, DRV_ERR_NOTFOUND, 0, "%s \"%s\" does not exist", role, q);
            return entry_fail(c, DRV_ERR_IO, e, "open %s \"%s\"", role, q);
        }
        close(cur);
        cur = fd;
    }
    *out = TAKE_FD(cur);
    return DRV_OK;
}

/* Removes name in atfd and, for a directory, everything below it (drv_fsat_remove_tree:
 * symlinks removed, never followed). A missing name is fine. Returns 0, or -1 with errno set
 * for the entry's message. */
static int remove_at(int atfd, const char *name)
{
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t rc = atfd == AT_FDCWD ? drv_fsat_remove_tree_path(name, NULL, &e)
                                    : drv_fsat_remove_tree(atfd, name, NULL, &e);
    if (rc == DRV_OK)
        return 0;
    errno = e.sys_errno ? e.sys_errno : EIO;
    return -1;
}

/* Makes room for a new entry called name in atfd. An existing non-directory is unlinked; an
 * existing directory is kept when keep_dir (*kept set), else removed recursively. */
static drv_err_t clear_slot(struct unpack_ctx *c, int atfd, const char *name, bool keep_dir,
                            bool *kept)
{
    struct stat st;
    if (kept)
        *kept = false;
    if (fstatat(atfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return DRV_OK;
        return entry_fail(c, DRV_ERR_IO, errno, "stat");
    }
    if (S_ISDIR(st.st_mode) && keep_dir) {
        if (kept)
            *kept = true;
        return DRV_OK;
    }
    if (remove_at(atfd, name) < 0)
        return entry_fail(c, DRV_ERR_IO, errno, "replace existing %s",
                          S_ISDIR(st.st_mode) ? "directory" : "file");
    return DRV_OK;
}

/* ---- entry metadata ---------------------------------------------------------------------- */

static drv_err_t entry_owner(struct unpack_ctx *c, const drv_tar_entry_t *e, uid_t *uid, gid_t *gid)
{
    int64_t u = e->uid;
    int64_t g = e->gid;
    if (u < 0 || u >= (int64_t)UINT32_MAX)
        return entry_fail(c, DRV_ERR_INVALID, 0, "uid %lld out of range", (long long)u);
    if (g < 0 || g >= (int64_t)UINT32_MAX)
        return entry_fail(c, DRV_ERR_INVALID, 0, "gid %lld out of range", (long long)g);
    *uid = (uid_t)u;
    *gid = (gid_t)g;
    return DRV_OK;
}

static void entry_times(const drv_tar_entry_t *e, struct timespec ts[2])
{
    ts[1] = e->mtime;
    ts[0] = e->atime;
    for (int i = 0; i < 2; i++)
        if (ts[i].tv_nsec < 0 || ts[i].tv_nsec > 999999999)
            ts[i].tv_nsec = 0;
}

/* Applies user.* and security.capability; other namespaces (trusted.*, security.selinux, ...)
 * in a layer are not the image's to set on the host and are skipped. */
static drv_err_t apply_xattrs(struct unpack_ctx *c, int fd, const drv_tar_entry_t *e)
{
    char q[UNPACK_QUOTE_MAX];
    for (size_t i = 0; i < e->nxattrs; i++) {
        const char *name = e->xattrs[i].name;
        const void *value = e->xattrs[i].value;
        size_t size = e->xattrs[i].size;
        if (strncmp(name, "user.", 5) != 0 && strcmp(name, "security.capability") != 0) {
            drv_log_debug("unpack: skipping extended attribute", "layer=%s xattr=%s", c->what_q,
                          drv_log_quote(name, q, sizeof q));
            continue;
        }
        if (fsetxattr(fd, name, value, size, 0) < 0) {
            int e2 = errno;
            if (e2 == ENOTSUP || e2 == EPERM) {
                drv_log_warn("unpack: cannot set extended attribute", "layer=%s xattr=%s errno=%d",
                             c->what_q, drv_log_quote(name, q, sizeof q), e2);
                continue;
            }
            return entry_fail(c, DRV_ERR_IO, e2, "set extended attribute \"%s\"",
                              quote_name(name, q, sizeof q));
        }
    }
    return DRV_OK;
}

/* Owner (per preserve_owner), then mode (after chown, which clears setuid bits), then xattrs
 * (after chown, which clears security.capability). */
static drv_err_t apply_fd_meta(struct unpack_ctx *c, int fd, const drv_tar_entry_t *e, mode_t mode)
{
    if (c->preserve_owner) {
        uid_t uid = 0;
        gid_t gid = 0;
        drv_err_t rc = entry_owner(c, e, &uid, &gid);
        if (rc != DRV_OK)
            return rc;
        if (fchown(fd, uid, gid) < 0)
            return entry_fail(c, errno == EPERM ? DRV_ERR_PERM : DRV_ERR_IO, errno,
                              "chown to %u:%u", (unsigned)uid, (unsigned)gid);
    }
    if (fchmod(fd, mode) < 0)
        return entry_fail(c, DRV_ERR_IO, errno, "chmod");
    return apply_xattrs(c, fd, e);
}

/* Owner, mode and times of a node that cannot be opened (symlink, device, fifo), by name. */
static drv_err_t apply_name_meta(struct unpack_ctx *c, int atfd, const char *name,
                                 const drv_tar_entry_t *e, bool is_symlink)
{
    if (c->preserve_owner) {
        uid_t uid = 0;
        gid_t gid = 0;
        drv_err_t rc = entry_owner(c, e, &uid, &gid);
        if (rc != DRV_OK)
            return rc;
        if (fchownat(atfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
            return entry_fail(c, errno == EPERM ? DRV_ERR_PERM : DRV_ERR_IO, errno,
                              "chown to %u:%u", (unsigned)uid, (unsigned)gid);
    }
    /* fchmodat follows symlinks, so only for the device or fifo just made here. */
    if (!is_symlink && fchmodat(atfd, name, e->perm, 0) < 0)
        return entry_fail(c, DRV_ERR_IO, errno, "chmod");
    struct timespec ts[2];
    entry_times(e, ts);
    if (utimensat(atfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return entry_fail(c, DRV_ERR_IO, errno, "set times");
    return DRV_OK;
}

/* ---- entry data -------------------------------------------------------------------------- */

static drv_err_t toobig(struct unpack_ctx *c)
{
    return entry_fail(c, DRV_ERR_TOOBIG, 0,
                      "layer expands beyond the limit of %llu bytes (decompression bomb?)",
                      (unsigned long long)c->max_bytes);
}

/* Reads the entry's data through the byte cap, writing it into fd (or dropping it with fd -1);
 * no byte may reach past limit, the declared size. Sets *end to the end of the data. */
static drv_err_t copy_data(struct unpack_ctx *c, int fd, uint64_t limit, uint64_t *end)
{
    uint64_t pos = 0;
    if (end)
        *end = 0;
    for (;;) {
        const void *buf;
        size_t len;
        drv_error_t terr = DRV_ERROR_INIT;
        if (drv_tar_read(c->tar, &buf, &len, &terr) != DRV_OK)
            return tar_fail(c, "corrupt or truncated layer", &terr);
        if (len == 0)
            return DRV_OK;
        if (len > c->max_bytes - c->consumed)
            return toobig(c);
        c->consumed += len;
        if (fd < 0)
            continue;
        if (pos > limit || len > limit - pos)
            return entry_fail(c, DRV_ERR_INVALID, 0, "data beyond the declared size");
        const char *p = buf;
        size_t left = len;
        while (left > 0) {
            ssize_t w = pwrite(fd, p, left, (off_t)pos);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                return entry_fail(c, DRV_ERR_IO, errno, "write");
            }
            p += w;
            left -= (size_t)w;
            pos += (uint64_t)w;
        }
        c->written += len;
        if (end)
            *end = pos;
    }
}

static drv_err_t write_file(struct unpack_ctx *c, int pfd, const char *name,
                            const drv_tar_entry_t *e)
{
    uint64_t size = e->size;
    /* The declared size is checked before any byte is read, so a bomb stops at its first
     * header. */
    if (size > c->max_bytes - c->consumed)
        return toobig(c);
    drv_err_t rc = clear_slot(c, pfd, name, false, NULL);
    if (rc != DRV_OK)
        return rc;
    _cleanup_close_ int fd =
        openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return entry_fail(c, DRV_ERR_IO, errno, "create file");
    uint64_t end;
    rc = copy_data(c, fd, size, &end);
    if (rc != DRV_OK)
        return rc;
    if (end < size && ftruncate(fd, (off_t)size) < 0)
        return entry_fail(c, DRV_ERR_IO, errno, "set size");
    rc = apply_fd_meta(c, fd, e, e->perm);
    if (rc != DRV_OK)
        return rc;
    struct timespec ts[2];
    entry_times(e, ts);
    if (futimens(fd, ts) < 0)
        return entry_fail(c, DRV_ERR_IO, errno, "set times");
    return DRV_OK;
}

/* Remembers a directory's mode and times for finish_dirs(): once a path (a directory named
 * again takes the later entry's), so that a layer naming one directory a million times holds
 * one copy; the names count against the same budget as the paths seen. */
static drv_err_t record_dir(struct unpack_ctx *c, const char *rel, const drv_tar_entry_t *e)
{
    void *at = NULL;
    if (drv_map_find(&c->dir_index, rel, strlen(rel), &at)) {
        struct dirmeta *d = drv_vec_at(&c->dirs, (size_t)(uintptr_t)at);
        d->mode = e->perm;
        entry_times(e, d->ts);
        return DRV_OK;
    }
    size_t len = strlen(rel) + 1;
    if (len > UNPACK_NAMES_MAX - c->seen.bytes)
        return entry_fail(c, DRV_ERR_TOOBIG, 0, "the layer's names take more than %d MiB",
                          UNPACK_NAMES_MAX >> 20);
    struct dirmeta d = {.path = strdup(rel), .mode = e->perm};
    if (d.path == NULL)
        return entry_fail(c, DRV_ERR_NOMEM, 0, "out of memory");
    entry_times(e, d.ts);
    size_t index = c->dirs.len;
    drv_err_t rc = drv_vec_push(&c->dirs, &d);
    if (rc == DRV_OK) {
        rc = drv_map_put(&c->dir_index, d.path, (void *)(uintptr_t)index);
        if (rc != DRV_OK)
            c->dirs.len--; /* not remembered at all: the path is freed below */
    }
    if (rc != DRV_OK) {
        free(d.path);
        if (rc == DRV_ERR_TOOBIG)
            return entry_fail(c, rc, 0, "layer has more than %zu directories", c->dirs.max);
        return entry_fail(c, DRV_ERR_NOMEM, 0, "out of memory");
    }
    c->seen.bytes += len;
    return DRV_OK;
}

/* Directories are made owner-writable while the layer is extracted; the exact mode and times
 * come from record_dir() at the end. */
static drv_err_t make_dir(struct unpack_ctx *c, int pfd, const char *name, const upath_t *p,
                          const drv_tar_entry_t *e)
{
    bool kept;
    drv_err_t rc = clear_slot(c, pfd, name, true, &kept);
    if (rc != DRV_OK)
        return rc;
    if (!kept && mkdirat(pfd, name, 0700) < 0)
        return entry_fail(c, DRV_ERR_IO, errno, "create directory");
    _cleanup_close_ int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return entry_fail(c, DRV_ERR_IO, errno, "open directory");
    rc = apply_fd_meta(c, fd, e, (e->perm) | S_IRWXU);
    if (rc != DRV_OK)
        return rc;
    char rel[UNPACK_PATH_MAX];
    path_join(p, p->n, rel, sizeof rel);
    return record_dir(c, rel, e);
}

static drv_err_t make_symlink(struct unpack_ctx *c, int pfd, const char *name,
                              const drv_tar_entry_t *e)
{
    const char *target = e->link;
    if (target[0] == '\0')
        return entry_fail(c, DRV_ERR_INVALID, 0, "symbolic link without a target");
    drv_err_t rc = clear_slot(c, pfd, name, false, NULL);
    if (rc != DRV_OK)
        return rc;
    /* The target is data: it may point anywhere, it is never followed here. */
    if (symlinkat(target, pfd, name) < 0)
        return entry_fail(c, DRV_ERR_IO, errno, "create symbolic link");
    return apply_name_meta(c, pfd, name, e, true);
}

static drv_err_t make_node(struct unpack_ctx *c, int pfd, const char *name,
                           const drv_tar_entry_t *e, mode_t type)
{
    if (type != S_IFIFO && !c->is_root) {
        drv_log_debug("unpack: skipping device node (not root)", "layer=%s", c->what_q);
        return DRV_OK;
    }
    drv_err_t rc = clear_slot(c, pfd, name, false, NULL);
    if (rc != DRV_OK)
        return rc;
    dev_t dev = type == S_IFIFO ? 0 : makedev(e->devmajor, e->devminor);
    if (mknodat(pfd, name, type | 0600, dev) < 0) {
        if (errno == EPERM && type != S_IFIFO) {
            drv_log_debug("unpack: skipping device node (not permitted)", "layer=%s", c->what_q);
            return DRV_OK;
        }
        return entry_fail(c, DRV_ERR_IO, errno, "create %s",
                          type == S_IFIFO ? "fifo" : "device node");
    }
    return apply_name_meta(c, pfd, name, e, false);
}

static drv_err_t make_hardlink(struct unpack_ctx *c, int pfd, const char *name, const char *raw)
{
    char q[UNPACK_QUOTE_MAX];
    upath_t *t = &c->target;
    drv_err_t rc = path_parse(c, raw, "hardlink target", t);
    if (rc != DRV_OK)
        return rc;
    if (t->n == 0)
        return entry_fail(c, DRV_ERR_INVALID, 0, "hardlink target names the layer root");
    quote_name(raw, q, sizeof q);
    _cleanup_close_ int tfd = -1;
    rc = open_dir(c, t, t->n - 1, 0, "hardlink target directory", &tfd);
    if (rc == DRV_ERR_NOTFOUND)
        return entry_fail(c, DRV_ERR_INVALID, 0, "hardlink target \"%s\" does not exist", q);
    if (rc != DRV_OK)
        return rc;
    const char *tname = t->comp[t->n - 1];
    struct stat tst;
    if (fstatat(tfd, tname, &tst, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return entry_fail(c, DRV_ERR_INVALID, 0, "hardlink target \"%s\" does not exist", q);
        return entry_fail(c, DRV_ERR_IO, errno, "stat hardlink target \"%s\"", q);
    }
    if (S_ISDIR(tst.st_mode))
        return entry_fail(c, DRV_ERR_INVALID, 0, "hardlink target \"%s\" is a directory", q);
    if (S_ISLNK(tst.st_mode)) {
        char buf[PATH_MAX];
        ssize_t n = readlinkat(tfd, tname, buf, sizeof buf - 1);
        if (n < 0)
            return entry_fail(c, DRV_ERR_IO, errno, "read hardlink target \"%s\"", q);
        buf[n] = '\0';
        if (symlink_escapes(buf, t->n - 1))
            return entry_fail(c, DRV_ERR_INVALID, 0,
                              "hardlink target \"%s\" is a symbolic link pointing outside the "
                              "layer root",
                              q);
    }
    struct stat st;
    if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == tst.st_dev &&
        st.st_ino == tst.st_ino)
        return DRV_OK; /* already the same file (a link to itself, or a repeated entry) */
    rc = clear_slot(c, pfd, name, false, NULL);
    if (rc != DRV_OK)
        return rc;
    /* Flags 0: a symlink target is linked as the symlink itself, never followed. */
    if (linkat(tfd, tname, pfd, name, 0) < 0)
        return entry_fail(c, DRV_ERR_IO, errno, "create hardlink to \"%s\"", q);
    return DRV_OK;
}

/* ---- whiteouts --------------------------------------------------------------------------- */

/* Removes everything below atfd (whose path is prefix, length plen, in a buffer of
 * UNPACK_PATH_MAX) that this layer has not written itself. */
static drv_err_t clear_except_seen(struct unpack_ctx *c, int atfd, char *prefix, size_t plen,
                                   unsigned depth)
{
    if (depth >= UNPACK_CLEAR_MAX_DEPTH)
        return entry_fail(c, DRV_ERR_INVALID, 0, "directory tree too deep to clear");
    int fd = fcntl(atfd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return entry_fail(c, DRV_ERR_IO, errno, "dup");
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int e = errno;
        close(fd);
        return entry_fail(c, DRV_ERR_IO, e, "read directory");
    }
    drv_err_t rc = DRV_OK;
    struct dirent *de;
    while (rc == DRV_OK && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        size_t nl = strlen(de->d_name);
        size_t clen = plen + (plen ? 1 : 0) + nl;
        bool keep = false;
        if (clen < UNPACK_PATH_MAX) {
            if (plen)
                prefix[plen] = '/';
            memcpy(prefix + plen + (plen ? 1 : 0), de->d_name, nl + 1);
            keep = pathset_has(&c->seen, prefix, clen);
        }
        if (!keep) {
            if (remove_at(dirfd(d), de->d_name) < 0)
                rc = entry_fail(c, DRV_ERR_IO, errno, "remove \"%s\" for opaque directory",
                                de->d_name);
        } else {
            int cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (cfd >= 0) {
                rc = clear_except_seen(c, cfd, prefix, clen, depth + 1);
                close(cfd);
            }
        }
        prefix[plen] = '\0';
    }
    closedir(d);
    return rc;
}

/* ".wh..wh..opq" in the directory made of all but the last component of p. */
static drv_err_t opaque(struct unpack_ctx *c, const upath_t *p)
{
    _cleanup_close_ int fd = -1;
    if (c->mode == DRV_UNPACK_OVERLAY_LAYER) {
        drv_err_t rc = open_dir(c, p, p->n - 1, OPEN_CREATE, "parent", &fd);
        if (rc != DRV_OK)
            return rc;
        if (fsetxattr(fd, OVERLAY_OPAQUE_XATTR, "y", 1, 0) < 0)
            return entry_fail(c, errno == EPERM ? DRV_ERR_PERM : DRV_ERR_IO, errno,
                              "mark directory opaque (" OVERLAY_OPAQUE_XATTR ", needs root)");
        return DRV_OK;
    }
    drv_err_t rc = open_dir(c, p, p->n - 1, OPEN_MISSING_OK, "parent", &fd);
    if (rc != DRV_OK || fd < 0)
        return rc; /* nothing below to hide */
    char prefix[UNPACK_PATH_MAX];
    size_t plen = path_join(p, p->n - 1, prefix, sizeof prefix);
    return clear_except_seen(c, fd, prefix, plen, 0);
}

/* ".wh.NAME": hides NAME of lower layers. Only the entry's own directory is concerned, and NAME
 * must be a plain name. */
static drv_err_t whiteout(struct unpack_ctx *c, const upath_t *p, const char *wname)
{
    char q[UNPACK_QUOTE_MAX];
    if (strcmp(p->comp[p->n - 1], WH_OPAQUE) == 0)
        return opaque(c, p);
    if (strncmp(wname, WH_PREFIX, WH_PREFIX_LEN) == 0) {
        /* Other aufs metadata (.wh..wh.plnk, .wh..wh.aufs): not part of the image. */
        drv_log_debug("unpack: skipping aufs metadata", "layer=%s", c->what_q);
        return DRV_OK;
    }
    if (wname[0] == '\0')
        return entry_fail(c, DRV_ERR_INVALID, 0, "whiteout without a name");
    if (strcmp(wname, "..") == 0)
        return entry_fail(c, DRV_ERR_INVALID, 0, "whiteout escapes the layer root");
    if (strcmp(wname, ".") == 0)
        return entry_fail(c, DRV_ERR_INVALID, 0, "whiteout names its own directory");

    _cleanup_close_ int pfd = -1;
    if (c->mode == DRV_UNPACK_OVERLAY_LAYER) {
        drv_err_t rc = open_dir(c, p, p->n - 1, OPEN_CREATE, "parent", &pfd);
        if (rc != DRV_OK)
            return rc;
        struct stat st;
        if (fstatat(pfd, wname, &st, AT_SYMLINK_NOFOLLOW) == 0)
            return DRV_OK; /* written by this layer: a whiteout only hides lower layers */
        if (mknodat(pfd, wname, S_IFCHR | 0, makedev(0, 0)) < 0)
            return entry_fail(c, errno == EPERM ? DRV_ERR_PERM : DRV_ERR_IO, errno,
                              "create overlay whiteout \"%s\" (a 0/0 character device, needs "
                              "root)",
                              quote_name(wname, q, sizeof q));
        return DRV_OK;
    }
    drv_err_t rc = open_dir(c, p, p->n - 1, OPEN_MISSING_OK, "parent", &pfd);
    if (rc != DRV_OK || pfd < 0)
        return rc; /* nothing there to delete */
    char rel[UNPACK_PATH_MAX];
    size_t len = path_join(p, p->n - 1, rel, sizeof rel);
    int n = snprintf(rel + len, sizeof rel - len, "%s%s", len ? "/" : "", wname);
    if (n > 0 && (size_t)n < sizeof rel - len && pathset_has(&c->seen, rel, len + (size_t)n))
        return DRV_OK; /* written by this layer: a whiteout only hides lower layers */
    if (remove_at(pfd, wname) < 0)
        return entry_fail(c, DRV_ERR_IO, errno, "remove \"%s\"", quote_name(wname, q, sizeof q));
    return DRV_OK;
}

/* ---- the loop ---------------------------------------------------------------------------- */

static drv_err_t process_entry(struct unpack_ctx *c, const drv_tar_entry_t *e)
{
    upath_t *p = &c->path;
    drv_err_t rc = path_parse(c, c->entry, NULL, p);
    if (rc != DRV_OK)
        return rc;
    const char *hl = e->type == DRV_TAR_HARDLINK ? e->link : NULL;

    if (p->n == 0) {
        if (hl != NULL || e->type != DRV_TAR_DIR)
            return entry_fail(c, DRV_ERR_INVALID, 0, "names the layer root but is not a directory");
        rc = apply_fd_meta(c, c->rootfd, e, (e->perm) | S_IRWXU);
        if (rc == DRV_OK)
            rc = record_dir(c, "", e);
        return rc != DRV_OK ? rc : copy_data(c, -1, UINT64_MAX, NULL);
    }

    const char *base = p->comp[p->n - 1];
    if (hl == NULL && strncmp(base, WH_PREFIX, WH_PREFIX_LEN) == 0) {
        rc = whiteout(c, p, base + WH_PREFIX_LEN);
        return rc != DRV_OK ? rc : copy_data(c, -1, UINT64_MAX, NULL);
    }

    _cleanup_close_ int pfd = -1;
    rc = open_dir(c, p, p->n - 1, OPEN_CREATE, "parent", &pfd);
    if (rc != DRV_OK)
        return rc;
    if (hl != NULL) {
        rc = make_hardlink(c, pfd, base, hl);
    } else {
        switch (e->type) {
        case DRV_TAR_FILE:
            rc = write_file(c, pfd, base, e);
            break;
        case DRV_TAR_DIR:
            rc = make_dir(c, pfd, base, p, e);
            break;
        case DRV_TAR_SYMLINK:
            rc = make_symlink(c, pfd, base, e);
            break;
        case DRV_TAR_CHAR:
            rc = make_node(c, pfd, base, e, S_IFCHR);
            break;
        case DRV_TAR_BLOCK:
            rc = make_node(c, pfd, base, e, S_IFBLK);
            break;
        case DRV_TAR_FIFO:
            rc = make_node(c, pfd, base, e, S_IFIFO);
            break;
        case DRV_TAR_HARDLINK:
            break; /* handled above */
        }
    }
    if (rc != DRV_OK)
        return rc;
    /* Whatever data the entry still carries (a hardlink's, a device's) passes the byte cap. */
    rc = copy_data(c, -1, UINT64_MAX, NULL);
    if (rc == DRV_OK && c->mode == DRV_UNPACK_APPLY)
        rc = mark_seen(c, p);
    return rc;
}

/* Exact modes and times of directories, deepest (latest) first so that a directory made
 * read-only does not lock out its children; the last entry for a path wins. */
static drv_err_t finish_dirs(struct unpack_ctx *c)
{
    struct pathset done;
    pathset_init(&done, SIZE_MAX);
    drv_err_t rc = DRV_OK;
    for (size_t i = c->dirs.len; i-- > 0 && rc == DRV_OK;) {
        const struct dirmeta *d = drv_vec_at(&c->dirs, i);
        size_t len = strlen(d->path);
        if (pathset_has(&done, d->path, len))
            continue;
        if (pathset_add(&done, d->path, len) != DRV_OK) {
            rc = entry_fail(c, DRV_ERR_NOMEM, 0, "out of memory");
            break;
        }
        c->entry = d->path[0] ? d->path : ".";
        _cleanup_close_ int fd = -1;
        if (d->path[0] == '\0') {
            fd = fcntl(c->rootfd, F_DUPFD_CLOEXEC, 0);
        } else {
            upath_t *p = &c->target;
            if (path_parse(c, d->path, NULL, p) != DRV_OK || p->n == 0)
                continue;
            _cleanup_close_ int pfd = -1;
            (void)open_dir(c, p, p->n - 1, OPEN_QUIET, "parent", &pfd);
            if (pfd < 0)
                continue; /* replaced by a later entry */
            fd = openat(pfd, p->comp[p->n - 1], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0)
            continue; /* replaced by a later entry */
        if (fchmod(fd, d->mode) < 0)
            rc = entry_fail(c, DRV_ERR_IO, errno, "chmod");
        else if (futimens(fd, d->ts) < 0)
            rc = entry_fail(c, DRV_ERR_IO, errno, "set times");
    }
    c->entry = NULL;
    pathset_free(&done);
    return rc;
}

static drv_err_t run(struct unpack_ctx *c, int blobfd)
{
    drv_error_t terr = DRV_ERROR_INIT;
    if (drv_tar_open(blobfd, &c->tar, &terr) != DRV_OK)
        return tar_fail(c, "not a readable tar archive (plain, gzip or zstd)", &terr);
    /* The whole stream, not only file data, is capped: the cap on file data plus room for
     * every entry's headers (a 1.5 KiB average: a header, a pax record, padding) and 64 MiB. */
    uint64_t headers = c->max_entries > (UINT64_MAX >> 11) ? UINT64_MAX : c->max_entries * 1536;
    uint64_t limit = c->max_bytes + headers;
    limit =
        limit < c->max_bytes || limit + (64ULL << 20) < limit ? UINT64_MAX : limit + (64ULL << 20);
    drv_tar_set_limit(c->tar, limit);
    for (;;) {
        c->entry = NULL;
        const drv_tar_entry_t *e;
        if (drv_tar_next(c->tar, &e, &terr) != DRV_OK)
            return tar_fail(c,
                            drv_tar_offset(c->tar) <= 512 ? "not a readable tar archive"
                                                          : "corrupt or truncated layer",
                            &terr);
        if (e == NULL)
            break;
        if (++c->entries > c->max_entries)
            return entry_fail(c, DRV_ERR_TOOBIG, 0, "layer has more than %llu entries",
                              (unsigned long long)c->max_entries);
        if (e->name[0] == '\0')
            return entry_fail(c, DRV_ERR_INVALID, 0, "entry %llu has no name",
                              (unsigned long long)c->entries);
        c->entry = e->name;
        drv_err_t rc = process_entry(c, e);
        if (rc != DRV_OK)
            return rc;
    }
    c->entry = NULL;
    return finish_dirs(c);
}

static void ctx_free(struct unpack_ctx *c)
{
    drv_tar_free(c->tar);
    c->tar = NULL;
    for (size_t i = 0; i < c->dirs.len; i++)
        free(((struct dirmeta *)drv_vec_at(&c->dirs, i))->path);
    drv_vec_free(&c->dirs);
    drv_map_free(&c->dir_index);
    pathset_free(&c->seen);
    if (c->rootfd >= 0)
        close(c->rootfd);
    c->rootfd = -1;
}

/* fsyncs the directory that holds path. */
static int sync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        dir[0] = '.';
        dir[1] = '\0';
    } else if (slash == path) {
        dir[0] = '/';
        dir[1] = '\0';
    } else {
        size_t l = (size_t)(slash - path);
        if (l >= sizeof dir)
            return -1;
        memcpy(dir, path, l);
        dir[l] = '\0';
    }
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0)
        return -1;
    return 0;
}

drv_err_t drv_unpack_layer(const char *blob_path, const char *dest, const drv_unpack_opts_t *opts,
                           drv_unpack_stats_t *stats, drv_error_t *err)
{
    if (opts == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "unpack: opts: required");
    const char *what = opts->what && opts->what[0] ? opts->what : "layer";
    if (blob_path == NULL || blob_path[0] == '\0')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: blob path: required", what);
    if (dest == NULL || dest[0] == '\0')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: destination: required", what);
    if (opts->mode != DRV_UNPACK_OVERLAY_LAYER && opts->mode != DRV_UNPACK_APPLY)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: opts.mode: unknown mode %d", what,
                             (int)opts->mode);

    /* dest without trailing slashes, so that "<dest>.tmp-XXXXXX" is a sibling. */
    char dpath[PATH_MAX];
    size_t dlen = strlen(dest);
    while (dlen > 1 && dest[dlen - 1] == '/')
        dlen--;
    if (dlen >= sizeof dpath)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: destination: path too long", what);
    memcpy(dpath, dest, dlen);
    dpath[dlen] = '\0';

    _cleanup_close_ int blobfd = open(blob_path, O_RDONLY | O_CLOEXEC);
    if (blobfd < 0)
        return drv_error_set(err, errno == ENOENT ? DRV_ERR_NOTFOUND : DRV_ERR_IO, errno,
                             "%s: open %s", what, blob_path);

    struct unpack_ctx c = {
        .mode = opts->mode,
        .what = what,
        .max_bytes = opts->max_bytes ? opts->max_bytes : UNPACK_DEFAULT_MAX_BYTES,
        .max_entries = opts->max_entries ? opts->max_entries : UNPACK_DEFAULT_MAX_ENTRIES,
        .preserve_owner = opts->preserve_owner != 0,
        .is_root = geteuid() == 0,
        .rootfd = -1,
        .err = err,
    };

    drv_vec_init(&c.dirs, sizeof(struct dirmeta),
                 c.max_entries >= SIZE_MAX ? SIZE_MAX : (size_t)c.max_entries + 1);
    drv_map_init(&c.dir_index, c.max_entries >= SIZE_MAX ? SIZE_MAX : (size_t)c.max_entries + 1);
    /* Every entry and its ancestors; layers without directory entries need the slack. */
    pathset_init(&c.seen, c.max_entries > (SIZE_MAX - 4096) / 4 ? SIZE_MAX
                                                                : (size_t)c.max_entries * 4 + 4096);
    drv_log_quote(what, c.what_q, sizeof c.what_q);
    char tmp[PATH_MAX + sizeof ".tmp-XXXXXX"] = "";
    if (c.mode == DRV_UNPACK_OVERLAY_LAYER) {
        struct stat st;
        if (lstat(dpath, &st) == 0)
            return drv_error_set(err, DRV_ERR_EXISTS, 0, "%s: destination %s exists already", what,
                                 dpath);
        if (errno != ENOENT)
            return drv_error_set(err, DRV_ERR_IO, errno, "%s: stat %s", what, dpath);
        if (drv_fmt(tmp, sizeof tmp, "%s.tmp-XXXXXX", dpath) != DRV_OK)
            return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: destination %s: path too long", what,
                                 dpath);
        if (mkdtemp(tmp) == NULL)
            return drv_error_set(err, errno == ENOENT ? DRV_ERR_NOTFOUND : DRV_ERR_IO, errno,
                                 "%s: create temporary directory next to %s", what, dpath);
        c.rootfd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (c.rootfd < 0 || fchmod(c.rootfd, 0755) < 0) {
            int e = errno;
            (void)remove_at(AT_FDCWD, tmp);
            if (c.rootfd >= 0)
                close(c.rootfd);
            return drv_error_set(err, DRV_ERR_IO, e, "%s: open %s", what, tmp);
        }
    } else {
        c.rootfd = open(dpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (c.rootfd < 0) {
            int e = errno;
            drv_err_t code = e == ENOENT    ? DRV_ERR_NOTFOUND
                             : e == ENOTDIR ? DRV_ERR_INVALID
                                            : DRV_ERR_IO;
            return drv_error_set(err, code, e, "%s: open destination %s", what, dpath);
        }
    }

    drv_err_t rc = run(&c, blobfd);
    if (rc == DRV_OK && c.mode == DRV_UNPACK_OVERLAY_LAYER) {
        /* Complete on disk before it appears under its final name. */
        if (syncfs(c.rootfd) < 0) {
            rc = drv_error_set(err, DRV_ERR_IO, errno, "%s: sync %s", what, tmp);
        } else if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dpath, RENAME_NOREPLACE) < 0) {
            int e = errno;
            if (e == EEXIST || e == ENOTEMPTY)
                rc = drv_error_set(err, DRV_ERR_EXISTS, 0, "%s: destination %s exists already",
                                   what, dpath);
            else
                rc = drv_error_set(err, DRV_ERR_IO, e, "%s: rename %s to %s", what, tmp, dpath);
        } else if (sync_parent(dpath) < 0) {
            drv_log_warn("unpack: cannot sync directory", "layer=%s errno=%d", c.what_q, errno);
        }
    }
    uint64_t entries = c.entries, written = c.written, probes = c.seen.map.probes;
    ctx_free(&c);
    if (rc != DRV_OK) {
        if (c.mode == DRV_UNPACK_OVERLAY_LAYER && remove_at(AT_FDCWD, tmp) < 0)
            drv_log_warn("unpack: cannot remove temporary directory", "layer=%s errno=%d", c.what_q,
                         errno);
        return rc;
    }
    if (stats) {
        stats->entries = entries;
        stats->bytes = written;
        stats->name_probes = probes;
    }
    return DRV_OK;
}
