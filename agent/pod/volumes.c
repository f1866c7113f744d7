/* Pod volumes: emptyDir directories and tmpfs mounts, configMap and secret volumes written the
 * kubelet's atomic way (timestamped directory, "..data" symlink swapped by rename), hostPath
 * checks, and teardown that never follows a symlink out of the pod's directory. */
#include "pod/volumes.h"
#include "pod/pvc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "drover/base64.h"
#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/fsat.h"
#include "drover/json.h"
#include "drover/names.h"
#include "drover/path.h"
#include "drover/quantity.h"
#include "drover/vec.h"
#include "runtime/spec.h"

#define VOLUMES_SUBDIR "volumes"
#define DATA_LINK "..data"
#define DATA_TMP "..data_tmp"
#define LINK_TMP "..link_tmp"
/* A tmpfs page per small file, two copies during a swap, plus slack for directories. */
#define PAGE_GUESS 4096
#define SECRET_TMPFS_BYTES                                                                         \
    (2 * ((int64_t)DRV_VOLUMES_MAX_BYTES + (int64_t)DRV_VOLUMES_MAX_FILES * PAGE_GUESS) +          \
     1024 * 1024)
#define SECRET_TMPFS_INODES (4 * DRV_VOLUMES_MAX_FILES + 64)
/* Directory depth counted with open descriptors, so that a hostile emptyDir cannot exhaust
 * descriptors or the stack (removal has its own: DRV_FSAT_RM_MAX_DEPTH). */
#define COUNT_MAX_DEPTH 32
#define UMOUNT_MAX 16

typedef enum {
    VOL_EMPTYDIR,
    VOL_HOSTPATH,
    VOL_CONFIGMAP,
    VOL_SECRET,
    VOL_DOWNWARD,
    VOL_PVC,
    VOL_NONE
} vol_kind_t;

/* One file of a configMap or secret volume. */
typedef struct vfile {
    char *path;          /* cleaned relative path */
    unsigned char *data; /* content (NUL-terminated for convenience) */
    size_t len;
    mode_t mode;
} vfile_t;

typedef struct payload {
    drv_vec_t files; /* vfile_t, at most DRV_VOLUMES_MAX_FILES */
    size_t bytes;
    bool secret;      /* wipe the buffers on free */
    long gid;         /* the pod's fsGroup: files and directories are given to it; -1: none */
    const char **top; /* distinct first path components (point into files[].path copies) */
    char **top_own;
    size_t ntop;
} payload_t;

/* ---- small helpers ----------------------------------------------------------------------- */

static vol_kind_t vol_kind(const cJSON *v, const cJSON **src)
{
    static const struct {
        const char *key;
        vol_kind_t kind;
    } kinds[] = {{"emptyDir", VOL_EMPTYDIR},    {"hostPath", VOL_HOSTPATH},
                 {"configMap", VOL_CONFIGMAP},  {"secret", VOL_SECRET},
                 {"downwardAPI", VOL_DOWNWARD}, {"persistentVolumeClaim", VOL_PVC}};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        const cJSON *s = drv_json_get(v, kinds[i].key);
        if (cJSON_IsObject(s)) {
            *src = s;
            return kinds[i].kind;
        }
    }
    *src = NULL;
    return VOL_NONE;
}

static const cJSON *pod_volumes(const cJSON *pod)
{
    const cJSON *vols = drv_json_get(drv_json_get(pod, "spec"), "volumes");
    return cJSON_IsArray(vols) ? vols : NULL;
}

/* Volume names become directory names: only a DNS label (as the model checks) is accepted. */
static drv_err_t check_volume_name(const char *name, size_t idx, drv_error_t *err)
{
    char why[256];
    if (!name)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "volumes[%zu].name: required", idx);
    if (!drv_name_dns_label(name, why, sizeof(why)))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "volumes[%zu].name \"%.64s\": %s", idx, name,
                             why);
    return DRV_OK;
}

/* True if the directory fd is the root of a mount (parentfd is its parent directory). The
 * kernel says so since Linux 5.8, bind mounts of the same file system included; older kernels
 * only let a change of device tell. */
static bool is_mount_root(int parentfd, int fd)
{
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH, 0, &sx) == 0 &&
        (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
        return (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
    struct stat pst, st;
    if (fstat(parentfd, &pst) < 0 || fstat(fd, &st) < 0)
        return false;
    return pst.st_dev != st.st_dev;
}

/* True if the directory fd is the root of a tmpfs mounted on it. */
static bool is_tmpfs_mount(int parentfd, int fd)
{
    struct statfs sfs;
    return is_mount_root(parentfd, fd) && fstatfs(fd, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC;
}

static int open_dir_at(int dirfd, const char *name)
{
    return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Gives directory fd mode; with an fsGroup (gid >= 0) also to that group, group-readable and
 * setgid, as the kubelet's SetVolumeOwnership does for read-only volumes. */
static int set_group(int fd, long gid, mode_t mode)
{
    if (gid < 0)
        return fchmod(fd, mode);
    if (fchown(fd, (uid_t)-1, (gid_t)gid) < 0)
        return -1;
    return fchmod(fd, mode | 0550 | S_ISGID);
}

/* Unmounts everything stacked on <vdir>/<name> (lazily). */
static drv_err_t unmount_all(int vfd, const char *vdir, const char *name, drv_error_t *err)
{
    char path[PATH_MAX];
    if (drv_fmt(path, sizeof(path), "%s/%s", vdir, name) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s/%s: path too long", vdir, name);
    for (int i = 0; i < UMOUNT_MAX; i++) {
        if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
            continue;
        if (errno == EINVAL || errno == ENOENT)
            return DRV_OK;
        int e = errno;
        /* Without the privilege to unmount, a plain directory is still fine. */
        int fd = open_dir_at(vfd, name);
        bool plain = fd < 0 ? errno == ENOTDIR || errno == ELOOP : !is_mount_root(vfd, fd);
        if (fd >= 0)
            close(fd);
        if (plain)
            return DRV_OK;
        return drv_error_set(err, drv_error_from_errno(e), e, "unmount %s", path);
    }
    return drv_error_set(err, DRV_ERR_IO, 0, "unmount %s: still mounted after %d unmounts", path,
                         UMOUNT_MAX);
}

/* ---- payload: the files a configMap or secret volume should hold -------------------------- */

static void payload_free(payload_t *p)
{
    vfile_t *f = p->files.data;
    for (size_t i = 0; i < p->files.len; i++) {
        if (p->secret && f[i].data)
            explicit_bzero(f[i].data, f[i].len);
        free(f[i].data);
        free(f[i].path);
    }
    drv_vec_free(&p->files);
    for (size_t i = 0; i < p->ntop; i++)
        free(p->top_own[i]);
    free(p->top_own);
    free((void *)p->top);
    memset(p, 0, sizeof(*p));
}

/* Checks an items[].path: relative, no ".." element, not starting with ".." (the layout's own
 * names), and cleans it ("a//b/./c" is "a/b/c"). */
static bool clean_item_path(const char *p, char *out, size_t outsz)
{
    if (!p || !*p || p[0] == '/')
        return false;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.')
            return false;
        s += n;
        while (*s == '/')
            s++;
    }
    if (drv_path_clean(p, out, outsz) != DRV_OK)
        return false;
    if (!strcmp(out, ".") || !strncmp(out, "..", 2) || out[0] == '/')
        return false;
    return true;
}

/* Adds a file taking ownership of data (freed, and wiped for secrets, on any failure). */
static drv_err_t payload_add(payload_t *p, const char *what, const char *path, unsigned char *data,
                             size_t len, mode_t mode, drv_error_t *err)
{
    /* Room first, so that nothing can fail once the path is copied. */
    drv_err_t r = drv_vec_reserve(&p->files, 1);
    const vfile_t *f = p->files.data;
    if (r == DRV_ERR_TOOBIG) {
        r = drv_error_set(err, r, 0, "%s: more than %d files", what, DRV_VOLUMES_MAX_FILES);
    } else if (r != DRV_OK) {
        r = drv_error_set(err, DRV_ERR_NOMEM, 0, "%s: out of memory", what);
    } else if (len > DRV_VOLUMES_MAX_BYTES - p->bytes) {
        r = drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: content over %d bytes", what,
                          DRV_VOLUMES_MAX_BYTES);
    } else {
        for (size_t i = 0; i < p->files.len; i++) {
            const char *o = f[i].path;
            size_t ol = strlen(o), nl = strlen(path);
            bool clash = !strcmp(o, path) ||
                         (ol < nl && !strncmp(o, path, ol) && path[ol] == '/') ||
                         (nl < ol && !strncmp(o, path, nl) && o[nl] == '/');
            if (clash) {
                r = drv_error_set(err, DRV_ERR_INVALID, 0, "%s: path \"%s\" conflicts with \"%s\"",
                                  what, path, o);
                break;
            }
        }
    }
    char *pcopy = NULL;
    if (r == DRV_OK && !(pcopy = strdup(path)))
        r = drv_error_set(err, DRV_ERR_NOMEM, 0, "%s: out of memory", what);
    if (r != DRV_OK) {
        if (p->secret && data)
            explicit_bzero(data, len);
        free(data);
        return r;
    }
    /* With an fsGroup the group may read every file, as the kubelet's SetVolumeOwnership
     * makes it for read-only volumes. */
    vfile_t nf = {pcopy, data, len, (mode | (p->gid >= 0 ? 0440 : 0)) & 07777};
    (void)!drv_vec_push(&p->files, &nf); /* reserved above */
    p->bytes += len;
    return DRV_OK;
}

/* The bytes of key in obj: ConfigMap data (text) or binaryData / Secret data (base64).
 * DRV_ERR_NOTFOUND when absent. */
static drv_err_t lookup_key(const cJSON *obj, bool secret, const char *key, const char *what,
                            unsigned char **out, size_t *len, drv_error_t *err)
{
    const cJSON *text = secret ? NULL : drv_json_get(drv_json_get(obj, "data"), key);
    const cJSON *b64 = drv_json_get(drv_json_get(obj, secret ? "data" : "binaryData"), key);
    if (cJSON_IsString(text)) {
        size_t n = strlen(text->valuestring);
        unsigned char *d = malloc(n + 1);
        if (!d)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s: out of memory", what);
        memcpy(d, text->valuestring, n + 1);
        *out = d;
        *len = n;
        return DRV_OK;
    }
    if (!cJSON_IsString(b64))
        return DRV_ERR_NOTFOUND;
    drv_err_t r = drv_base64_decode(b64->valuestring, strlen(b64->valuestring), out, len);
    if (r == DRV_ERR_NOMEM)
        return drv_error_set(err, r, 0, "%s: out of memory", what);
    if (r != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: %s[%s]: illegal base64 data", what,
                             secret ? "data" : "binaryData", key);
    return DRV_OK;
}

static drv_err_t payload_tops(payload_t *p, const char *what, drv_error_t *err)
{
    size_t nfiles = p->files.len;
    const vfile_t *f = p->files.data;
    if (nfiles == 0)
        return DRV_OK;
    p->top = calloc(nfiles, sizeof(*p->top));
    p->top_own = calloc(nfiles, sizeof(*p->top_own));
    if (!p->top || !p->top_own)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s: out of memory", what);
    for (size_t i = 0; i < nfiles; i++) {
        const char *path = f[i].path;
        size_t n = strcspn(path, "/");
        bool seen = false;
        for (size_t j = 0; j < p->ntop && !seen; j++)
            seen = strlen(p->top[j]) == n && !strncmp(p->top[j], path, n);
        if (seen)
            continue;
        char *t = strndup(path, n);
        if (!t)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s: out of memory", what);
        p->top_own[p->ntop] = t;
        p->top[p->ntop++] = t;
    }
    return DRV_OK;
}

/* A file mode member (defaultMode, mode): dflt when absent or not a number; out of range (or
 * fractional) reads as -1, which every caller refuses. */
static int64_t mode_of(const cJSON *parent, const char *key, int64_t dflt)
{
    if (!cJSON_IsNumber(drv_json_get(parent, key)))
        return dflt;
    return drv_json_int_at(parent, key, 0, 07777, -1);
}

static void payload_init(payload_t *p, bool secret, long gid)
{
    memset(p, 0, sizeof(*p));
    drv_vec_init(&p->files, sizeof(vfile_t), DRV_VOLUMES_MAX_FILES);
    p->secret = secret;
    p->gid = gid;
}

/* The pod's securityContext.fsGroup, or -1. */
static long pod_fsgroup(const cJSON *pod)
{
    int64_t g;
    const cJSON *sc = drv_json_get(drv_json_get(pod, "spec"), "securityContext");
    return drv_json_int(sc, "fsGroup", &g) && g >= 0 && g < (int64_t)UINT32_MAX ? (long)g : -1;
}

/* Adds the files of a configMap (secret = false) or secret source to p: name_key names the
 * object ("name", or "secretName" in a secret volume), defmode the mode of files without
 * items[].mode. On failure p holds what was added before (the caller frees it). */
static drv_err_t payload_keyed(const char *vname, const cJSON *vsrc, bool secret,
                               const char *name_key, int64_t defmode,
                               const drv_volume_sources_t *sources, payload_t *p, drv_error_t *err)
{
    const char *kind = secret ? "secret" : "configMap";
    const char *oname = drv_json_str(vsrc, name_key);
    bool optional = cJSON_IsTrue(drv_json_get(vsrc, "optional"));
    char what[256];
    if (!oname)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "volume \"%s\": %s.%s: required", vname, kind,
                             name_key);
    if (defmode < 0 || defmode > 0777)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "volume \"%s\": %s.defaultMode: must be between 0 and 0777", vname,
                             kind);
    drv_fmt_cut(what, sizeof(what), "volume \"%s\": %s \"%s\"", vname, kind, oname);
    const cJSON *map = sources ? (secret ? sources->secrets : sources->configmaps) : NULL;
    const cJSON *obj = cJSON_IsObject(map) ? drv_json_get(map, oname) : NULL;
    if (!cJSON_IsObject(obj)) {
        if (optional)
            return DRV_OK;
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "%s not found", what);
    }
    const cJSON *items = drv_json_get(vsrc, "items");
    drv_err_t r = DRV_OK;
    if (cJSON_IsArray(items) && cJSON_GetArraySize(items) > 0) {
        size_t i = 0;
        for (const cJSON *it = items->child; it; it = it->next, i++) {
            const char *key = drv_json_str(it, "key"), *path = drv_json_str(it, "path");
            char clean[PATH_MAX];
            if (!key || !path)
                r = drv_error_set(err, DRV_ERR_INVALID, 0, "%s: items[%zu]: key and path required",
                                  what, i);
            else if (!clean_item_path(path, clean, sizeof(clean)))
                r = drv_error_set(err, DRV_ERR_INVALID, 0,
                                  "%s: items[%zu].path \"%.200s\": must be a relative path "
                                  "without '..'",
                                  what, i, path);
            int64_t mode = mode_of(it, "mode", defmode);
            if (r == DRV_OK && (mode < 0 || mode > 0777))
                r = drv_error_set(err, DRV_ERR_INVALID, 0,
                                  "%s: items[%zu].mode: must be between 0 and 0777", what, i);
            if (r != DRV_OK)
                break;
            unsigned char *data = NULL;
            size_t len = 0;
            r = lookup_key(obj, secret, key, what, &data, &len, err);
            if (r == DRV_ERR_NOTFOUND) {
                r = DRV_OK;
                if (optional)
                    continue;
                r = drv_error_set(err, DRV_ERR_NOTFOUND, 0, "%s has no key \"%.253s\"", what, key);
            }
            if (r == DRV_OK)
                r = payload_add(p, what, clean, data, len, (mode_t)mode, err);
            if (r != DRV_OK)
                break;
        }
    } else {
        const char *maps[2] = {secret ? NULL : "data", secret ? "data" : "binaryData"};
        for (int m = 0; m < 2 && r == DRV_OK; m++) {
            const cJSON *dm = maps[m] ? drv_json_get(obj, maps[m]) : NULL;
            for (const cJSON *e = dm ? dm->child : NULL; e && r == DRV_OK; e = e->next) {
                char why[256] = "";
                if (!e->string || !drv_name_config_key(e->string, why, sizeof(why))) {
                    r = drv_error_set(err, DRV_ERR_INVALID, 0, "%s: %s[%.253s]: invalid key: %s",
                                      what, maps[m], e->string ? e->string : "", why);
                    break;
                }
                unsigned char *data = NULL;
                size_t len = 0;
                if (!cJSON_IsString(e))
                    r = drv_error_set(err, DRV_ERR_INVALID, 0, "%s: %s[%s]: must be a string", what,
                                      maps[m], e->string);
                else if (m == 0)
                    r = lookup_key(obj, false, e->string, what, &data, &len, err);
                else {
                    drv_err_t d =
                        drv_base64_decode(e->valuestring, strlen(e->valuestring), &data, &len);
                    if (d == DRV_ERR_NOMEM)
                        r = drv_error_set(err, d, 0, "%s: out of memory", what);
                    else if (d != DRV_OK)
                        r = drv_error_set(err, DRV_ERR_INVALID, 0,
                                          "%s: %s[%s]: illegal base64 data", what, maps[m],
                                          e->string);
                }
                if (r == DRV_OK)
                    r = payload_add(p, what, e->string, data, len, (mode_t)defmode, err);
            }
        }
    }
    return r;
}

/* Builds the files of a configMap (secret = false) or secret volume from its source. */
static drv_err_t payload_build(const char *vname, const cJSON *vsrc, bool secret, long gid,
                               const drv_volume_sources_t *sources, payload_t *p, drv_error_t *err)
{
    char what[128];
    drv_fmt_cut(what, sizeof(what), "volume \"%s\"", vname);
    payload_init(p, secret, gid);
    drv_err_t r = payload_keyed(vname, vsrc, secret, secret ? "secretName" : "name",
                                mode_of(vsrc, "defaultMode", 0644), sources, p, err);
    if (r == DRV_OK)
        r = payload_tops(p, what, err);
    if (r != DRV_OK)
        payload_free(p);
    return r;
}

/* ---- downwardAPI ---------------------------------------------------------------------- */

/* A label or annotation map as the kubelet writes it: 'key="value"' lines sorted by key,
 * the value quoted as Go's %q does, no newline after the last. */
static drv_err_t format_map(const cJSON *map, drv_buf_t *out)
{
    size_t n = 0;
    for (const cJSON *e = cJSON_IsObject(map) ? map->child : NULL; e; e = e->next)
        n++;
    if (n == 0)
        return DRV_OK;
    _cleanup_free_ const cJSON **v = calloc(n, sizeof(*v));
    if (!v)
        return DRV_ERR_NOMEM;
    size_t i = 0;
    for (const cJSON *e = map->child; e; e = e->next)
        v[i++] = e;
    for (size_t a = 1; a < n; a++) /* insertion sort: maps are small */
        for (size_t b = a; b > 0 && strcmp(v[b - 1]->string, v[b]->string) > 0; b--) {
            const cJSON *t = v[b];
            v[b] = v[b - 1];
            v[b - 1] = t;
        }
    drv_err_t r = DRV_OK;
    for (i = 0; i < n && r == DRV_OK; i++) {
        const char *val = cJSON_IsString(v[i]) ? v[i]->valuestring : "";
        r = drv_buf_printf(out, "%s%s=\"", i ? "\n" : "", v[i]->string);
        for (const unsigned char *c = (const unsigned char *)val; *c && r == DRV_OK; c++) {
            static const char esc[] = "\a\b\f\n\r\t\v", letter[] = "abfnrtv";
            const char *x = *c ? strchr(esc, *c) : NULL;
            if (*c == '"' || *c == '\\')
                r = drv_buf_printf(out, "\\%c", *c);
            else if (x)
                r = drv_buf_printf(out, "\\%c", letter[x - esc]);
            else if (*c < 0x20 || *c == 0x7f)
                r = drv_buf_printf(out, "\\x%02x", *c);
            else
                r = drv_buf_putc(out, (char)*c);
        }
        if (r == DRV_OK)
            r = drv_buf_putc(out, '"');
    }
    return r;
}

/* The text a downwardAPI item's fieldRef gives: metadata.name, namespace, uid, labels,
 * annotations, and one label or annotation by key ("metadata.labels['app']"). */
static drv_err_t field_text(const cJSON *pod, const char *path, drv_buf_t *out, const char *what,
                            size_t i, drv_error_t *err)
{
    const cJSON *meta = drv_json_get(pod, "metadata");
    static const char *const plain[] = {"name", "namespace", "uid"};
    for (size_t k = 0; k < 3; k++) {
        char full[32];
        if (drv_fmt(full, sizeof(full), "metadata.%s", plain[k]) == DRV_OK && !strcmp(path, full)) {
            const char *v = drv_json_str(meta, plain[k]);
            if (!v && k == 1)
                v = "default";
            return drv_buf_puts(out, v ? v : "") == DRV_OK
                       ? DRV_OK
                       : drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: items[%zu]: too long", what, i);
        }
    }
    static const char *const maps[] = {"labels", "annotations"};
    for (size_t k = 0; k < 2; k++) {
        char full[32];
        if (drv_fmt(full, sizeof(full), "metadata.%s", maps[k]) != DRV_OK)
            continue;
        size_t fl = strlen(full), pl = strlen(path);
        drv_err_t r = DRV_ERR_NOTFOUND;
        if (!strcmp(path, full)) {
            r = format_map(drv_json_get(meta, maps[k]), out);
        } else if (!strncmp(path, full, fl) && !strncmp(path + fl, "['", 2) && pl >= fl + 4 &&
                   !strcmp(path + pl - 2, "']")) {
            char key[320];
            if (pl - fl - 4 >= sizeof(key))
                return drv_error_set(err, DRV_ERR_INVALID, 0,
                                     "%s: items[%zu].fieldRef: key too long", what, i);
            memcpy(key, path + fl + 2, pl - fl - 4);
            key[pl - fl - 4] = '\0';
            const char *v = drv_json_str(drv_json_get(meta, maps[k]), key);
            r = drv_buf_puts(out, v ? v : "");
        }
        if (r == DRV_ERR_NOTFOUND)
            continue;
        return r == DRV_OK ? DRV_OK
                           : drv_error_set(err, r == DRV_ERR_NOMEM ? r : DRV_ERR_TOOBIG, 0,
                                           "%s: items[%zu]: %s too large", what, i, maps[k]);
    }
    return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                         "%s: items[%zu].fieldRef.fieldPath: unsupported value \"%.64s\"", what, i,
                         path);
}

/* Adds the files of a downwardAPI source (the volume's, or a projected volume's) to p. */
static drv_err_t payload_downward(const char *what, const cJSON *pod, const cJSON *src,
                                  int64_t defmode, payload_t *p, drv_error_t *err)
{
    const cJSON *items = drv_json_get(src, "items");
    size_t i = 0;
    for (const cJSON *it = cJSON_IsArray(items) ? items->child : NULL; it; it = it->next, i++) {
        const char *path = drv_json_str(it, "path");
        char clean[PATH_MAX];
        if (!path || !clean_item_path(path, clean, sizeof(clean)))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "%s: items[%zu].path: must be a relative path without '..'", what,
                                 i);
        int64_t mode = mode_of(it, "mode", defmode);
        if (mode < 0 || mode > 0777)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "%s: items[%zu].mode: must be between 0 and 0777", what, i);
        drv_buf_t text = DRV_BUF_INIT(DRV_VOLUMES_MAX_BYTES);
        const cJSON *fr = drv_json_get(it, "fieldRef"), *rf = drv_json_get(it, "resourceFieldRef");
        drv_err_t r;
        if (cJSON_IsObject(fr)) {
            const char *fp = drv_json_str(fr, "fieldPath");
            r = field_text(pod, fp ? fp : "", &text, what, i, err);
        } else if (cJSON_IsObject(rf)) {
            char val[32];
            drv_error_t rerr = DRV_ERROR_INIT;
            r = drv_spec_resource_value(pod, drv_json_str(rf, "containerName"),
                                        drv_json_str(rf, "resource"), drv_json_str(rf, "divisor"),
                                        val, sizeof(val), &rerr);
            if (r != DRV_OK)
                r = drv_error_set(err, r, 0, "%s: items[%zu].resourceFieldRef: %s", what, i,
                                  drv_error_msg(&rerr));
            else if (drv_buf_puts(&text, val) != DRV_OK)
                r = drv_error_set(err, DRV_ERR_NOMEM, 0, "%s: out of memory", what);
        } else {
            r = drv_error_set(err, DRV_ERR_INVALID, 0,
                              "%s: items[%zu]: one of fieldRef and resourceFieldRef required", what,
                              i);
        }
        if (r == DRV_OK) {
            size_t len = text.len;
            unsigned char *data = (unsigned char *)drv_buf_steal(&text, NULL);
            if (!data)
                data = (unsigned char *)strdup("");
            r = data ? payload_add(p, what, clean, data, len, (mode_t)mode, err)
                     : drv_error_set(err, DRV_ERR_NOMEM, 0, "%s: out of memory", what);
        }
        drv_buf_free(&text);
        if (r != DRV_OK)
            return r;
    }
    return DRV_OK;
}

/* The payload of a projected volume: its sources in order, then the caller's extra files. */
static drv_err_t payload_projected(const char *what, const cJSON *pod, const cJSON *proj,
                                   const drv_volume_sources_t *sources,
                                   const drv_volume_file_t *extra, size_t n_extra, payload_t *p,
                                   drv_error_t *err)
{
    const cJSON *srcs = drv_json_get(proj, "sources");
    int64_t defmode = mode_of(proj, "defaultMode", 0644);
    bool secret = n_extra > 0;
    for (const cJSON *s = cJSON_IsArray(srcs) ? srcs->child : NULL; s; s = s->next)
        secret = secret || drv_json_get(s, "secret");
    payload_init(p, secret, pod_fsgroup(pod));
    if (defmode < 0 || defmode > 0777)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: defaultMode: must be between 0 and 0777",
                             what);
    drv_err_t r = DRV_OK;
    for (const cJSON *s = cJSON_IsArray(srcs) ? srcs->child : NULL; s && r == DRV_OK; s = s->next) {
        const cJSON *src;
        if ((src = drv_json_get(s, "configMap")))
            r = payload_keyed(what, src, false, "name", defmode, sources, p, err);
        else if ((src = drv_json_get(s, "secret")))
            r = payload_keyed(what, src, true, "name", defmode, sources, p, err);
        else if ((src = drv_json_get(s, "downwardAPI")))
            r = payload_downward(what, pod, src, defmode, p, err);
    }
    for (size_t i = 0; i < n_extra && r == DRV_OK; i++) {
        char clean[PATH_MAX];
        if (!extra[i].path || !clean_item_path(extra[i].path, clean, sizeof(clean))) {
            r = drv_error_set(err, DRV_ERR_INVALID, 0, "%s: file \"%.64s\": bad path", what,
                              extra[i].path ? extra[i].path : "");
            break;
        }
        unsigned char *data = malloc(extra[i].len + 1);
        if (!data) {
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "%s: out of memory", what);
            break;
        }
        if (extra[i].len)
            memcpy(data, extra[i].data, extra[i].len);
        data[extra[i].len] = '\0';
        r = payload_add(p, what, clean, data, extra[i].len,
                        (mode_t)(extra[i].mode ? extra[i].mode : (unsigned)defmode), err);
    }
    if (r == DRV_OK)
        r = payload_tops(p, what, err);
    if (r != DRV_OK)
        payload_free(p);
    return r;
}

/* ---- the atomic writer ------------------------------------------------------------------- */

/* Opens the directory that holds path's last component below root, creating the missing
 * directories (0755) when create is set, never following a symlink. *leaf points into path. */
static int open_parent(int root, const char *path, bool create, long gid, const char **leaf)
{
    int fd = dup(root);
    if (fd < 0)
        return -1;
    const char *s = path;
    for (;;) {
        const char *slash = strchr(s, '/');
        if (!slash) {
            *leaf = s;
            return fd;
        }
        char comp[NAME_MAX + 1];
        size_t n = (size_t)(slash - s);
        if (n == 0 || n > NAME_MAX) {
            close(fd);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(comp, s, n);
        comp[n] = '\0';
        if (create && mkdirat(fd, comp, 0755) == 0) {
            int nfd = open_dir_at(fd, comp);
            if (nfd >= 0 && set_group(nfd, gid, 0755) < 0) {
                close(nfd);
                nfd = -1;
            }
            close(fd);
            fd = nfd;
        } else if (create && errno != EEXIST) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        } else {
            int nfd = open_dir_at(fd, comp);
            close(fd);
            fd = nfd;
        }
        if (fd < 0)
            return -1;
        s = slash + 1;
    }
}

static drv_err_t write_file(int tsfd, const vfile_t *f, long gid, const char *what,
                            drv_error_t *err)
{
    const char *leaf;
    _cleanup_close_ int dfd = open_parent(tsfd, f->path, true, gid, &leaf);
    if (dfd < 0)
        return drv_error_set(
            err, errno == ENOTDIR || errno == ELOOP ? DRV_ERR_INVALID : drv_error_from_errno(errno),
            errno, "%s: write %s", what, f->path);
    _cleanup_close_ int fd =
        openat(dfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return drv_error_set(err, drv_error_from_errno(errno), errno, "%s: write %s", what,
                             f->path);
    if (drv_file_write_all(fd, f->data, f->len, err) != DRV_OK)
        return drv_error_wrap(err, "%s: %s", what, f->path);
    if ((gid >= 0 && fchown(fd, (uid_t)-1, (gid_t)gid) < 0) || fchmod(fd, f->mode) < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "%s: chmod %s", what, f->path);
    return DRV_OK;
}

/* The timestamped directory "..data" names, if it is a plausible one. */
static bool read_data_link(int vfd, char *out, size_t outsz)
{
    ssize_t n = readlinkat(vfd, DATA_LINK, out, outsz - 1);
    if (n <= 2 || (size_t)n >= outsz - 1)
        return false;
    out[n] = '\0';
    return !strchr(out, '/') && !strncmp(out, "..", 2) && strcmp(out, DATA_LINK) &&
           strcmp(out, DATA_TMP) && strcmp(out, LINK_TMP);
}

static bool file_matches(int tsfd, const vfile_t *f)
{
    const char *leaf;
    _cleanup_close_ int dfd = open_parent(tsfd, f->path, false, -1, &leaf);
    struct stat st;
    /* Only a regular file is opened: a device or FIFO planted here must not be touched. */
    if (dfd < 0 || fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
        return false;
    _cleanup_close_ int fd = openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size != f->len ||
        (st.st_mode & 07777) != f->mode)
        return false;
    unsigned char buf[4096];
    size_t off = 0;
    while (off < f->len) {
        size_t want = f->len - off < sizeof(buf) ? f->len - off : sizeof(buf);
        ssize_t n = read(fd, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || memcmp(buf, f->data + off, (size_t)n) != 0)
            return false;
        off += (size_t)n;
    }
    return true;
}

/* Counts the non-directory entries below fd (at most limit + 1, depth-limited). */
static bool count_files(int fd, int depth, size_t limit, size_t *count)
{
    if (depth > COUNT_MAX_DEPTH)
        return false;
    int dfd = dup(fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return false;
    }
    rewinddir(d); /* the descriptor's offset is shared with the original */
    bool ok = true;
    struct dirent *e;
    while (ok && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            ok = false;
        } else if (S_ISDIR(st.st_mode)) {
            int sub = open_dir_at(fd, e->d_name);
            ok = sub >= 0 && count_files(sub, depth + 1, limit, count);
            if (sub >= 0)
                close(sub);
        } else if (++*count > limit) {
            ok = false;
        }
    }
    closedir(d);
    return ok;
}

static bool is_top(const payload_t *p, const char *name)
{
    for (size_t i = 0; i < p->ntop; i++)
        if (!strcmp(p->top[i], name))
            return true;
    return false;
}

static bool link_is(int vfd, const char *name, const char *target)
{
    char buf[PATH_MAX];
    ssize_t n = readlinkat(vfd, name, buf, sizeof(buf) - 1);
    if (n < 0)
        return false;
    buf[n] = '\0';
    return !strcmp(buf, target);
}

/* True if the volume directory holds exactly p, in the kubelet layout with current ts dir. */
static bool payload_matches(int vfd, const char *cur, const payload_t *p)
{
    _cleanup_close_ int tsfd = open_dir_at(vfd, cur);
    if (tsfd < 0)
        return false;
    const vfile_t *f = p->files.data;
    for (size_t i = 0; i < p->files.len; i++)
        if (!file_matches(tsfd, &f[i]))
            return false;
    size_t count = 0;
    if (!count_files(tsfd, 0, p->files.len, &count) || count != p->files.len)
        return false;
    int dfd = dup(vfd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return false;
    }
    rewinddir(d); /* the descriptor's offset is shared with the original */
    bool ok = true;
    size_t tops = 0;
    struct dirent *e;
    while (ok && (e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, DATA_LINK) || !strcmp(n, cur))
            continue;
        char target[NAME_MAX + 16];
        ok = drv_fmt(target, sizeof(target), DATA_LINK "/%s", n) == DRV_OK && is_top(p, n) &&
             link_is(vfd, n, target);
        tops++;
    }
    closedir(d);
    return ok && tops == p->ntop;
}

/* Makes "..<UTC timestamp>" in vfd; name receives it. */
static drv_err_t make_ts_dir(int vfd, char *name, size_t namesz, long gid, const char *what,
                             drv_error_t *err)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char base[64];
    if (drv_fmt(base, sizeof(base), "..%04d_%02d_%02d_%02d_%02d_%02d.%03ld", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                ts.tv_nsec / 1000000) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: cannot name a directory by the time",
                             what);
    for (unsigned i = 0; i < 1000; i++) {
        drv_err_t fr =
            i == 0 ? drv_fmt(name, namesz, "%s", base) : drv_fmt(name, namesz, "%s-%u", base, i);
        if (fr != DRV_OK)
            return drv_error_set(err, fr, 0, "%s: name for %s too long", what, base);
        if (mkdirat(vfd, name, 0755) == 0) {
            _cleanup_close_ int fd = open_dir_at(vfd, name);
            if (fd < 0 || set_group(fd, gid, 0755) < 0) {
                int e = errno;
                (void)!drv_fsat_remove_tree(vfd, name, NULL, NULL);
                return drv_error_set(err, DRV_ERR_IO, e, "%s: create %s", what, name);
            }
            return DRV_OK;
        }
        if (errno != EEXIST)
            return drv_error_set(err, drv_error_from_errno(errno), errno, "%s: create %s", what,
                                 base);
    }
    return drv_error_set(err, DRV_ERR_IO, 0, "%s: cannot find a free name for %s", what, base);
}

/* Replaces name in vfd by a symlink to target, atomically, whatever name was (a planted
 * directory is removed first; a symlink or file is replaced by the rename itself). */
static drv_err_t replace_link(int vfd, const char *tmp, const char *name, const char *target,
                              const char *what, drv_error_t *err)
{
    if (drv_fsat_remove_tree(vfd, tmp, NULL, err) != DRV_OK)
        return drv_error_wrap(err, "%s", what);
    if (symlinkat(target, vfd, tmp) < 0)
        return drv_error_set(err, drv_error_from_errno(errno), errno, "%s: symlink %s", what, tmp);
    if (renameat(vfd, tmp, vfd, name) < 0) {
        if (errno != EISDIR && errno != ENOTEMPTY && errno != EEXIST)
            return drv_error_set(err, drv_error_from_errno(errno), errno, "%s: rename %s", what,
                                 name);
        if (drv_fsat_remove_tree(vfd, name, NULL, err) != DRV_OK)
            return drv_error_wrap(err, "%s", what);
        if (renameat(vfd, tmp, vfd, name) < 0)
            return drv_error_set(err, drv_error_from_errno(errno), errno, "%s: replace %s", what,
                                 name);
    }
    return DRV_OK;
}

/* Writes p into the volume directory vfd the kubelet's way; *changed says whether it did. */
static drv_err_t atomic_write(int vfd, const payload_t *p, const char *what, bool *changed,
                              drv_error_t *err)
{
    char cur[NAME_MAX + 1];
    bool have_cur = read_data_link(vfd, cur, sizeof(cur));
    *changed = false;
    if (have_cur && payload_matches(vfd, cur, p))
        return DRV_OK;

    char ts[96];
    drv_err_t r = make_ts_dir(vfd, ts, sizeof(ts), p->gid, what, err);
    if (r != DRV_OK)
        return r;
    {
        _cleanup_close_ int tsfd = open_dir_at(vfd, ts);
        if (tsfd < 0)
            r = drv_error_set(err, DRV_ERR_IO, errno, "%s: open %s", what, ts);
        for (size_t i = 0; r == DRV_OK && i < p->files.len; i++)
            r = write_file(tsfd, drv_vec_at(&p->files, i), p->gid, what, err);
    }
    if (r == DRV_OK)
        r = replace_link(vfd, DATA_TMP, DATA_LINK, ts, what, err);
    if (r != DRV_OK) {
        (void)!drv_fsat_remove_tree(vfd, ts, NULL, NULL);
        return r;
    }
    *changed = true;

    /* The new content is visible through "..data" now; make the user-visible names point at
     * it and drop everything else (old timestamped directories, keys no longer there). */
    for (size_t i = 0; i < p->ntop; i++) {
        char target[NAME_MAX + 16];
        if (drv_fmt(target, sizeof(target), DATA_LINK "/%s", p->top[i]) != DRV_OK)
            return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: %s: name too long", what, p->top[i]);
        if (link_is(vfd, p->top[i], target))
            continue;
        r = replace_link(vfd, LINK_TMP, p->top[i], target, what, err);
        if (r != DRV_OK)
            return r;
    }
    int dfd = dup(vfd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return drv_error_set(err, DRV_ERR_IO, errno, "%s: read directory", what);
    }
    rewinddir(d); /* the descriptor's offset is shared with the original */
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, DATA_LINK) || !strcmp(n, ts) ||
            is_top(p, n))
            continue;
        if (r == DRV_OK) {
            if ((r = drv_fsat_remove_tree(vfd, n, NULL, err)) != DRV_OK)
                (void)drv_error_wrap(err, "%s", what);
        } else {
            (void)!drv_fsat_remove_tree(vfd, n, NULL, NULL);
        }
    }
    closedir(d);
    return r;
}

/* ---- per-kind preparation ---------------------------------------------------------------- */

/* Opens (creating with mode if missing) the directory <vdir>/<name>. */
static drv_err_t open_volume_dir(int vfd, const char *name, mode_t mode, bool *created, int *out,
                                 const char *what, drv_error_t *err)
{
    struct stat st;
    *created = false;
    if (fstatat(vfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno != ENOENT)
            return drv_error_set(err, drv_error_from_errno(errno), errno, "%s: stat", what);
        if (mkdirat(vfd, name, mode) < 0)
            return drv_error_set(err, drv_error_from_errno(errno), errno, "%s: mkdir", what);
        *created = true;
    } else if (!S_ISDIR(st.st_mode)) {
        /* Not something the agent made: replace it rather than use it. */
        if (unlinkat(vfd, name, 0) < 0 || mkdirat(vfd, name, mode) < 0)
            return drv_error_set(err, drv_error_from_errno(errno), errno,
                                 "%s: replace non-directory", what);
        *created = true;
    }
    int fd = open_dir_at(vfd, name);
    if (fd < 0)
        return drv_error_set(err, drv_error_from_errno(errno), errno, "%s: open", what);
    if (*created && fchmod(fd, mode) < 0) {
        int e = errno;
        close(fd);
        return drv_error_set(err, DRV_ERR_IO, e, "%s: chmod", what);
    }
    *out = fd;
    return DRV_OK;
}

/* Mounts a fresh tmpfs on <vdir>/<name> unless one is there already; *fd is reopened. */
static drv_err_t ensure_tmpfs(int vfd, const char *vdir, const char *name, const char *opts,
                              int *fd, const char *what, drv_error_t *err)
{
    if (is_tmpfs_mount(vfd, *fd))
        return DRV_OK;
    if (is_mount_root(vfd, *fd))
        return drv_error_set(err, DRV_ERR_CONFLICT, 0,
                             "%s: %s/%s is a mount point but not a tmpfs; not touching it", what,
                             vdir, name);
    /* Whatever lies in the directory beneath would be hidden; nothing of ours is there. */
    if (drv_fsat_clear_dir(*fd, "", NULL, err) != DRV_OK)
        return drv_error_wrap(err, "%s", what);
    char path[PATH_MAX];
    if (drv_fmt(path, sizeof(path), "%s/%s", vdir, name) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: path too long", what);
    if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
        return drv_error_set(err, drv_error_from_errno(errno), errno, "%s: mount tmpfs on %s", what,
                             path);
    int nfd = open_dir_at(vfd, name);
    if (nfd < 0 || !is_tmpfs_mount(vfd, nfd)) {
        int e = errno;
        if (nfd >= 0)
            close(nfd);
        (void)umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
        return drv_error_set(err, DRV_ERR_IO, nfd < 0 ? e : 0,
                             "%s: tmpfs on %s not found after "
                             "mounting it",
                             what, path);
    }
    close(*fd);
    *fd = nfd;
    return DRV_OK;
}

/* Size of a Memory emptyDir: sizeLimit, else the sum of the containers' memory limits when
 * every container has one, else the default. */
static int64_t memory_size(const cJSON *pod, const cJSON *ed)
{
    int64_t b = 0;
    const char *sl = drv_json_str(ed, "sizeLimit");
    if (sl && drv_qty_parse_memory(sl, &b, NULL, NULL) == DRV_OK && b > 0)
        return b;
    const cJSON *ctrs = drv_json_get(drv_json_get(pod, "spec"), "containers");
    int64_t sum = 0;
    bool all = cJSON_IsArray(ctrs) && ctrs->child;
    for (const cJSON *c = cJSON_IsArray(ctrs) ? ctrs->child : NULL; c && all; c = c->next) {
        const char *m =
            drv_json_str(drv_json_get(drv_json_get(c, "resources"), "limits"), "memory");
        all = m && drv_qty_parse_memory(m, &b, NULL, NULL) == DRV_OK && b > 0 &&
              b <= DRV_QTY_MAX - sum;
        if (all)
            sum += b;
    }
    return all ? sum : DRV_VOLUMES_MEMORY_DEFAULT;
}

static drv_err_t prepare_hostpath(const cJSON *hp, const char *vname, drv_error_t *err)
{
    const char *path = drv_json_str(hp, "path");
    const char *type = drv_json_str(hp, "type");
    if (!path || path[0] != '/')
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "volume \"%s\": hostPath.path: must be an absolute path", vname);
    struct stat st;
    bool exists = stat(path, &st) == 0;
    if (!type || !*type) {
        /* No check asked for; a missing path becomes a directory, as containerd and Docker
         * make it for the kubelet (node agents' manifests mount /var/lib/docker/containers
         * or /run/utmp whether the device has them or not). */
        if (exists || errno != ENOENT)
            return DRV_OK;
        drv_err_t r = drv_file_mkdir_p(path, 0755, err);
        return r == DRV_OK || !err ? r : drv_error_wrap(err, "volume \"%s\": hostPath", vname);
    }
    if (!exists && errno != ENOENT)
        return drv_error_set(err, drv_error_from_errno(errno), errno, "volume \"%s\": hostPath %s",
                             vname, path);
    if (!strcmp(type, "DirectoryOrCreate")) {
        if (!exists) {
            drv_err_t r = drv_file_mkdir_p(path, 0755, err);
            if (r != DRV_OK)
                return err ? drv_error_wrap(err, "volume \"%s\": hostPath", vname) : r;
            if (chmod(path, 0755) < 0) /* whatever the agent's umask */
                return drv_error_set(err, DRV_ERR_IO, errno, "volume \"%s\": hostPath %s: chmod",
                                     vname, path);
            return DRV_OK;
        }
        if (!S_ISDIR(st.st_mode))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "volume \"%s\": hostPath %s: not a directory", vname, path);
        return DRV_OK;
    }
    if (!strcmp(type, "FileOrCreate")) {
        if (!exists) {
            int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
            if (fd < 0)
                return drv_error_set(err, drv_error_from_errno(errno), errno,
                                     "volume \"%s\": hostPath %s: create", vname, path);
            int r = fchmod(fd, 0644);
            int e = errno;
            close(fd);
            if (r < 0)
                return drv_error_set(err, DRV_ERR_IO, e, "volume \"%s\": hostPath %s: chmod", vname,
                                     path);
            return DRV_OK;
        }
        if (!S_ISREG(st.st_mode))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "volume \"%s\": hostPath %s: not a file",
                                 vname, path);
        return DRV_OK;
    }
    static const struct {
        const char *type;
        mode_t fmt;
        const char *noun;
    } checks[] = {{"Directory", S_IFDIR, "directory"},
                  {"File", S_IFREG, "file"},
                  {"Socket", S_IFSOCK, "socket"},
                  {"CharDevice", S_IFCHR, "character device"},
                  {"BlockDevice", S_IFBLK, "block device"}};
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        if (strcmp(type, checks[i].type))
            continue;
        if (!exists)
            return drv_error_set(err, DRV_ERR_NOTFOUND, 0,
                                 "volume \"%s\": hostPath %s: does not exist (type %s)", vname,
                                 path, type);
        if ((st.st_mode & S_IFMT) != checks[i].fmt)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "volume \"%s\": hostPath %s: not a %s",
                                 vname, path, checks[i].noun);
        return DRV_OK;
    }
    return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                         "volume \"%s\": hostPath.type: unsupported value \"%s\"", vname, type);
}

/* Writes a configMap, secret or downwardAPI volume; with must_exist (update) the directory
 * must be there. */
static drv_err_t write_keyed(int vfd, const char *vdir, const char *vname, const cJSON *pod,
                             const cJSON *src, vol_kind_t kind, const drv_volume_sources_t *sources,
                             bool must_exist, bool *created, bool *changed, drv_error_t *err)
{
    char what[128];
    bool secret = kind == VOL_SECRET;
    long gid = pod_fsgroup(pod);
    drv_fmt_cut(what, sizeof(what), "volume \"%s\"", vname);
    *created = false;
    *changed = false;
    if (must_exist) {
        struct stat st;
        if (fstatat(vfd, vname, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
            return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "%s: not prepared", what);
    }
    payload_t p;
    drv_err_t r;
    if (kind == VOL_DOWNWARD) {
        payload_init(&p, false, gid);
        r = payload_downward(what, pod, src, mode_of(src, "defaultMode", 0644), &p, err);
        if (r == DRV_OK)
            r = payload_tops(&p, what, err);
        if (r != DRV_OK)
            payload_free(&p);
    } else {
        r = payload_build(vname, src, secret, gid, sources, &p, err);
    }
    if (r != DRV_OK)
        return r;
    int fd = -1;
    r = open_volume_dir(vfd, vname, 0755, created, &fd, what, err);
    if (r == DRV_OK && secret) {
        char opts[128];
        if (drv_fmt(opts, sizeof(opts), "mode=0755,size=%lld,nr_inodes=%d",
                    (long long)SECRET_TMPFS_BYTES, SECRET_TMPFS_INODES) != DRV_OK)
            r = drv_error_set(err, DRV_ERR_INVALID, 0, "%s: tmpfs options", what);
        else if (must_exist && !is_tmpfs_mount(vfd, fd))
            r = drv_error_set(err, DRV_ERR_IO, 0,
                              "%s: not a tmpfs mount; refusing to write secret data", what);
        else
            r = ensure_tmpfs(vfd, vdir, vname, opts, &fd, what, err);
    }
    if (r == DRV_OK && set_group(fd, gid, 0755) < 0)
        r = drv_error_set(err, DRV_ERR_IO, errno, "%s: chown to fsGroup", what);
    if (r == DRV_OK)
        r = atomic_write(fd, &p, what, changed, err);
    if (fd >= 0)
        close(fd);
    payload_free(&p);
    return r;
}

/* Opens <pod_dir>/volumes (creating it 0700 when create); *vdir receives its path. */
static drv_err_t open_volumes_root(const char *pod_dir, bool create, char *vdir, size_t vdirsz,
                                   int *out, drv_error_t *err)
{
    if (!pod_dir || !*pod_dir)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "pod directory: required");
    if (drv_fmt(vdir, vdirsz, "%s/" VOLUMES_SUBDIR, pod_dir) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: path too long", pod_dir);
    if (create) {
        /* No fsync on the start path: the pod's first state.json (pod_state_save, once its
         * first container runs) makes the pod's directory and volumes/ durable. */
        drv_err_t r = drv_file_mkdir_p_unsynced(vdir, 0700, err);
        if (r != DRV_OK)
            return r;
    }
    int fd = open(vdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return drv_error_set(err, drv_error_from_errno(errno), errno, "open %s", vdir);
    *out = fd;
    return DRV_OK;
}

static void undo_volume(int vfd, const char *vdir, const char *name)
{
    drv_error_t ignored = DRV_ERROR_INIT;
    (void)unmount_all(vfd, vdir, name, &ignored);
    (void)!drv_fsat_remove_tree(vfd, name, NULL, NULL);
}

/* ---- public ------------------------------------------------------------------------------ */

drv_err_t drv_volumes_prepare(const cJSON *pod, const char *pod_dir,
                              const drv_volume_sources_t *sources, drv_error_t *err)
{
    if (!pod)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "pod: required");
    const cJSON *vols = pod_volumes(pod);
    size_t n = vols ? (size_t)cJSON_GetArraySize(vols) : 0;
    size_t i = 0;
    for (const cJSON *v = vols ? vols->child : NULL; v; v = v->next, i++) {
        drv_err_t r = check_volume_name(drv_json_str(v, "name"), i, err);
        if (r != DRV_OK)
            return r;
    }
    char vdir[PATH_MAX];
    _cleanup_close_ int vfd = -1;
    drv_err_t r = open_volumes_root(pod_dir, true, vdir, sizeof(vdir), &vfd, err);
    if (r != DRV_OK)
        return r;
    _cleanup_free_ bool *created = calloc(n ? n : 1, sizeof(*created));
    if (!created)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");

    i = 0;
    for (const cJSON *v = vols ? vols->child : NULL; v && r == DRV_OK; v = v->next, i++) {
        const char *name = drv_json_str(v, "name");
        const cJSON *src;
        char what[128];
        drv_fmt_cut(what, sizeof(what), "volume \"%s\"", name);
        vol_kind_t kind = vol_kind(v, &src);
        switch (kind) {
        case VOL_EMPTYDIR: {
            bool memory =
                drv_json_str(src, "medium") && !strcmp(drv_json_str(src, "medium"), "Memory");
            int fd = -1;
            r = open_volume_dir(vfd, name, 0777, &created[i], &fd, what, err);
            if (r == DRV_OK && memory) {
                char opts[96];
                r = drv_fmt(opts, sizeof(opts), "mode=0777,size=%lld",
                            (long long)memory_size(pod, src)) == DRV_OK
                        ? ensure_tmpfs(vfd, vdir, name, opts, &fd, what, err)
                        : drv_error_set(err, DRV_ERR_INVALID, 0, "%s: tmpfs options", what);
            }
            /* fsGroup: the volume's root is the group's, setgid, group-writable (kubelet). */
            long gid = pod_fsgroup(pod);
            if (r == DRV_OK && gid >= 0 &&
                (fchown(fd, (uid_t)-1, (gid_t)gid) < 0 || fchmod(fd, 0777 | S_ISGID) < 0))
                r = drv_error_set(err, DRV_ERR_IO, errno, "%s: chown to fsGroup %ld", what, gid);
            if (fd >= 0)
                close(fd);
            break;
        }
        case VOL_HOSTPATH:
            r = prepare_hostpath(src, name, err);
            break;
        case VOL_CONFIGMAP:
        case VOL_SECRET:
        case VOL_DOWNWARD: {
            bool changed;
            r = write_keyed(vfd, vdir, name, pod, src, kind, sources, false, &created[i], &changed,
                            err);
            break;
        }
        case VOL_PVC:
            /* Never undone by remove: the mount holds the claim's data. */
            r = pod_pvc_prepare(
                vfd, vdir, name, pod, src, sources ? sources->persistent_volumes : NULL,
                sources && sources->storage_dir ? sources->storage_dir : "/var/lib/drover/storage",
                err);
            break;
        case VOL_NONE:
            r = drv_error_set(err, DRV_ERR_UNSUPPORTED, 0, "%s: no supported volume source", what);
            break;
        }
    }
    if (r != DRV_OK) {
        i = 0;
        for (const cJSON *v = vols->child; v; v = v->next, i++)
            if (created[i])
                undo_volume(vfd, vdir, drv_json_str(v, "name"));
    }
    return r;
}

drv_err_t drv_volumes_host_path(const cJSON *pod, const char *pod_dir, const char *volume_name,
                                char *out, size_t outsz)
{
    if (!pod || !pod_dir || !volume_name || !out || outsz == 0)
        return DRV_ERR_INVALID;
    const cJSON *vols = pod_volumes(pod);
    for (const cJSON *v = vols ? vols->child : NULL; v; v = v->next) {
        const char *name = drv_json_str(v, "name");
        if (!name || strcmp(name, volume_name))
            continue;
        const cJSON *src;
        vol_kind_t k = vol_kind(v, &src);
        if (k == VOL_NONE)
            return DRV_ERR_INVALID;
        if (k == VOL_HOSTPATH) {
            const char *hp = drv_json_str(src, "path");
            if (!hp)
                return DRV_ERR_INVALID;
            return drv_fmt(out, outsz, "%s", hp);
        }
        if (check_volume_name(name, 0, NULL) != DRV_OK)
            return DRV_ERR_INVALID;
        return drv_fmt(out, outsz, "%s/" VOLUMES_SUBDIR "/%s", pod_dir, name);
    }
    return DRV_ERR_NOTFOUND;
}

drv_err_t drv_volumes_update(const cJSON *pod, const char *pod_dir,
                             const drv_volume_sources_t *sources, bool *changed, drv_error_t *err)
{
    bool any = false;
    if (changed)
        *changed = false;
    if (!pod)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "pod: required");
    const cJSON *vols = pod_volumes(pod);
    size_t i = 0;
    for (const cJSON *v = vols ? vols->child : NULL; v; v = v->next, i++) {
        drv_err_t r = check_volume_name(drv_json_str(v, "name"), i, err);
        if (r != DRV_OK)
            return r;
    }
    char vdir[PATH_MAX];
    _cleanup_close_ int vfd = -1;
    bool keyed = false;
    for (const cJSON *v = vols ? vols->child : NULL; v; v = v->next) {
        const cJSON *src;
        vol_kind_t k = vol_kind(v, &src);
        keyed = keyed || k == VOL_CONFIGMAP || k == VOL_SECRET || k == VOL_DOWNWARD;
    }
    if (!keyed)
        return DRV_OK;
    drv_err_t r = open_volumes_root(pod_dir, false, vdir, sizeof(vdir), &vfd, err);
    if (r != DRV_OK)
        return r;
    drv_err_t first = DRV_OK;
    for (const cJSON *v = vols->child; v; v = v->next) {
        const cJSON *src;
        vol_kind_t k = vol_kind(v, &src);
        if (k != VOL_CONFIGMAP && k != VOL_SECRET && k != VOL_DOWNWARD)
            continue;
        drv_error_t e1 = DRV_ERROR_INIT;
        bool created = false, ch = false;
        r = write_keyed(vfd, vdir, drv_json_str(v, "name"), pod, src, k, sources, true, &created,
                        &ch, &e1);
        any = any || ch;
        if (r != DRV_OK && first == DRV_OK) {
            first = r;
            if (err)
                *err = e1;
        }
    }
    if (changed)
        *changed = any;
    return first;
}

drv_err_t drv_volumes_teardown(const char *pod_dir, drv_error_t *err)
{
    if (!pod_dir || !*pod_dir)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "pod directory: required");
    _cleanup_close_ int pfd = open(pod_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0) {
        if (errno == ENOENT)
            return DRV_OK;
        return drv_error_set(err, drv_error_from_errno(errno), errno, "open %s", pod_dir);
    }
    char vdir[PATH_MAX];
    if (drv_fmt(vdir, sizeof(vdir), "%s/" VOLUMES_SUBDIR, pod_dir) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: path too long", pod_dir);
    struct stat st;
    if (fstatat(pfd, VOLUMES_SUBDIR, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return DRV_OK;
        return drv_error_set(err, drv_error_from_errno(errno), errno, "stat %s", vdir);
    }
    if (S_ISDIR(st.st_mode)) {
        _cleanup_close_ int vfd = open_dir_at(pfd, VOLUMES_SUBDIR);
        if (vfd < 0)
            return drv_error_set(err, drv_error_from_errno(errno), errno, "open %s", vdir);
        int dfd = dup(vfd);
        _cleanup_closedir_ DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        if (!d) {
            if (dfd >= 0)
                close(dfd);
            return drv_error_set(err, DRV_ERR_IO, errno, "read %s", vdir);
        }
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            drv_err_t r = unmount_all(vfd, vdir, e->d_name, err);
            if (r != DRV_OK)
                return r;
        }
    }
    if (drv_fsat_remove_tree(pfd, VOLUMES_SUBDIR, NULL, err) != DRV_OK)
        return drv_error_wrap(err, "%s", vdir);
    return DRV_OK;
}

drv_err_t drv_volumes_write_projected(const cJSON *pod, const char *dir, const cJSON *projected,
                                      const drv_volume_sources_t *sources,
                                      const drv_volume_file_t *extra, size_t n_extra, bool *changed,
                                      drv_error_t *err)
{
    bool ch = false;
    if (changed)
        *changed = false;
    if (!pod || !dir || !cJSON_IsObject(projected) || (n_extra && !extra))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "projected volume: pod, dir and source required");
    char what[160];
    drv_fmt_cut(what, sizeof(what), "projected volume %s", dir);
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return drv_error_set(err, drv_error_from_errno(errno), errno, "%s: open", what);
    payload_t p;
    drv_err_t r = payload_projected(what, pod, projected, sources, extra, n_extra, &p, err);
    if (r != DRV_OK)
        return r;
    if (set_group(fd, p.gid, 0755) < 0)
        r = drv_error_set(err, DRV_ERR_IO, errno, "%s: chown to fsGroup", what);
    if (r == DRV_OK)
        r = atomic_write(fd, &p, what, &ch, err);
    payload_free(&p);
    if (changed)
        *changed = ch;
    return r;
}

/* Gives fd (an entry of a writable volume) to gid with group rw (and x, setgid for a
 * directory), then its children when it is a directory. */
static drv_err_t own_tree(int fd, long gid, int depth, const char *dir, drv_error_t *err)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "fsGroup: %s: stat", dir);
    mode_t want = st.st_mode & 07777;
    want |= S_ISDIR(st.st_mode) ? (0770 | S_ISGID) : 0660;
    if ((st.st_gid != (gid_t)gid && fchown(fd, (uid_t)-1, (gid_t)gid) < 0) ||
        ((st.st_mode & 07777) != want && fchmod(fd, want) < 0))
        return drv_error_set(err, DRV_ERR_IO, errno, "fsGroup: %s: chown/chmod", dir);
    if (!S_ISDIR(st.st_mode))
        return DRV_OK;
    if (depth >= DRV_FSAT_RM_MAX_DEPTH)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "fsGroup: %s: deeper than %d directories", dir,
                             DRV_FSAT_RM_MAX_DEPTH);
    int dfd = dup(fd);
    _cleanup_closedir_ DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return drv_error_set(err, DRV_ERR_IO, errno, "fsGroup: %s: read", dir);
    }
    rewinddir(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        struct stat cst;
        if (fstatat(fd, e->d_name, &cst, AT_SYMLINK_NOFOLLOW) < 0)
            continue; /* gone meanwhile */
        if (S_ISLNK(cst.st_mode)) {
            (void)fchownat(fd, e->d_name, (uid_t)-1, (gid_t)gid, AT_SYMLINK_NOFOLLOW);
            continue;
        }
        if (!S_ISDIR(cst.st_mode) && !S_ISREG(cst.st_mode))
            continue; /* sockets, FIFOs, devices: left alone, never opened */
        _cleanup_close_ int cfd =
            openat(fd, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (cfd < 0)
            continue;
        drv_err_t r = own_tree(cfd, gid, depth + 1, dir, err);
        if (r != DRV_OK)
            return r;
    }
    return DRV_OK;
}

drv_err_t drv_volumes_apply_fsgroup(const cJSON *pod, const char *dir, drv_error_t *err)
{
    long gid = pod_fsgroup(pod);
    if (gid < 0)
        return DRV_OK;
    if (!dir)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "fsGroup: directory required");
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return drv_error_set(err, drv_error_from_errno(errno), errno, "fsGroup: open %s", dir);
    const char *policy = drv_json_str(drv_json_get(drv_json_get(pod, "spec"), "securityContext"),
                                      "fsGroupChangePolicy");
    struct stat st;
    if (policy && !strcmp(policy, "OnRootMismatch") && fstat(fd, &st) == 0 &&
        st.st_gid == (gid_t)gid && (st.st_mode & (0770 | S_ISGID)) == (0770 | S_ISGID))
        return DRV_OK;
    return own_tree(fd, gid, 0, dir, err);
}
