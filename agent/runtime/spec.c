/* One container's OCI runtime config.json from its pod: kubelet's rules for command, args and
 * environment, containerd's defaults for capabilities, mounts, masked paths and resources,
 * and the RuntimeDefault seccomp profile. */
#include "runtime/spec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "drover/namelist.h"
#include "drover/base64.h"
#include "drover/buf.h"
#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/names.h"
#include "drover/path.h"
#include "drover/quantity.h"
#include "drover/vec.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

#define ENV_MAX_VARS 4096
#define ENV_MAX_BYTES (1u << 20)  /* all of the environment */
#define ARGS_MAX_BYTES (1u << 20) /* all of process.args */
#define MAX_DEVICES 4096
#define MAX_MOUNTS 1024
#define GIDS_MAX 64 /* additional groups of a container's user */
#define CPU_PERIOD 100000
#define MIN_CPU_QUOTA 1000 /* kubelet's minimum quota */
#define MIN_CPU_SHARES 2
#define MAX_CPU_SHARES 262144

typedef struct ctx {
    const drv_spec_input_t *in;
    const cJSON *spec;      /* pod.spec */
    const cJSON *ctr;       /* the container */
    const cJSON *psc, *csc; /* pod and container securityContext (may be NULL) */
    char where[96];         /* "spec.containers[0]": the prefix of every error */
    const char *rootprop;   /* linux.rootfsPropagation a propagating mount needs, or NULL */
    drv_error_t *err;
    bool nomem;
} ctx_t;

/* What the security context decides. */
typedef struct sec {
    bool privileged;
    bool ro_rootfs;
    bool no_new_privs;
    bool seccomp;  /* RuntimeDefault applies */
    uint64_t caps; /* bit n = capability n */
    uint32_t uid, gid;
    drv_vec_t gids; /* uint32_t: additional gids, primary first; at most GIDS_MAX */
} sec_t;

/* ---- small helpers ---- */

static DRV_PRINTF(4, 5) drv_err_t fail(ctx_t *c, drv_err_t code, int errnum, const char *fmt, ...)
{
    char msg[DRV_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    drv_vfmt_cut(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return drv_error_set(c->err, code, errnum, "%s%s", c->where, msg);
}

static drv_err_t nomem(ctx_t *c)
{
    return fail(c, DRV_ERR_NOMEM, 0, ": out of memory building the runtime config");
}

static cJSON *add_obj(ctx_t *c, cJSON *o, const char *k)
{
    cJSON *r = cJSON_AddObjectToObject(o, k);
    if (!r)
        c->nomem = true;
    return r;
}

static cJSON *add_arr(ctx_t *c, cJSON *o, const char *k)
{
    cJSON *r = cJSON_AddArrayToObject(o, k);
    if (!r)
        c->nomem = true;
    return r;
}

static void add_str(ctx_t *c, cJSON *o, const char *k, const char *v)
{
    if (!cJSON_AddStringToObject(o, k, v))
        c->nomem = true;
}

static void add_num(ctx_t *c, cJSON *o, const char *k, double v)
{
    if (!cJSON_AddNumberToObject(o, k, v))
        c->nomem = true;
}

static void add_bool(ctx_t *c, cJSON *o, const char *k, bool v)
{
    if (!cJSON_AddBoolToObject(o, k, v))
        c->nomem = true;
}

static void push(ctx_t *c, cJSON *a, cJSON *item)
{
    if (!item || !a || !cJSON_AddItemToArray(a, item)) {
        cJSON_Delete(item);
        c->nomem = true;
    }
}

static void push_str(ctx_t *c, cJSON *a, const char *s)
{
    push(c, a, cJSON_CreateString(s));
}

static cJSON *push_obj(ctx_t *c, cJSON *a)
{
    cJSON *o = cJSON_CreateObject();
    push(c, a, o);
    return c->nomem ? NULL : o;
}

/* Digits only, value <= max. */
static bool parse_uint(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        if (v > (max - (uint64_t)(s[i] - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* ---- environment ---- */

typedef struct envlist {
    drv_vec_t vars; /* char *: "KEY=value", malloc'd; at most ENV_MAX_VARS */
    size_t bytes;
} envlist_t;

#define ENVLIST_INIT                                                                               \
    {                                                                                              \
        DRV_VEC_INIT(char *, ENV_MAX_VARS), 0                                                      \
    }

static char **env_vars(const envlist_t *e)
{
    return e->vars.data;
}

static void env_free(envlist_t *e)
{
    for (size_t i = 0; i < e->vars.len; i++)
        free(env_vars(e)[i]);
    drv_vec_free(&e->vars);
    e->bytes = 0;
}

static void env_freep(envlist_t *e)
{
    env_free(e);
}

#define _cleanup_env_ __attribute__((cleanup(env_freep)))

static ssize_t env_find(const envlist_t *e, const char *key, size_t klen)
{
    char **v = env_vars(e);
    for (size_t i = 0; i < e->vars.len; i++)
        if (!strncmp(v[i], key, klen) && v[i][klen] == '=')
            return (ssize_t)i;
    return -1;
}

/* Sets key to value (vlen bytes): replaced in place if present, else appended. */
static drv_err_t env_setn(ctx_t *c, envlist_t *e, const char *key, size_t klen, const char *val,
                          size_t vlen)
{
    if (memchr(val, '\0', vlen))
        return fail(c, DRV_ERR_INVALID, 0, ": environment variable %.*s: value contains a NUL byte",
                    (int)klen, key);
    ssize_t at = env_find(e, key, klen);
    size_t old = at >= 0 ? strlen(env_vars(e)[at]) + 1 : 0;
    if (e->bytes - old + klen + vlen + 2 > ENV_MAX_BYTES)
        return fail(c, DRV_ERR_TOOBIG, 0, ": environment larger than %u bytes", ENV_MAX_BYTES);
    char *s = malloc(klen + vlen + 2);
    if (!s)
        return nomem(c);
    memcpy(s, key, klen);
    s[klen] = '=';
    memcpy(s + klen + 1, val, vlen);
    s[klen + 1 + vlen] = '\0';
    if (at >= 0) {
        free(env_vars(e)[at]);
        env_vars(e)[at] = s;
    } else {
        drv_err_t rc = drv_vec_push(&e->vars, &s);
        if (rc != DRV_OK) {
            free(s);
            if (rc == DRV_ERR_TOOBIG)
                return fail(c, rc, 0, ": more than %d environment variables", ENV_MAX_VARS);
            return nomem(c);
        }
    }
    e->bytes = e->bytes - old + klen + vlen + 2;
    return DRV_OK;
}

static drv_err_t env_set(ctx_t *c, envlist_t *e, const char *key, const char *val, size_t vlen)
{
    return env_setn(c, e, key, strlen(key), val, vlen);
}

/* "KEY=value" from an image: KEY=value set, entries without '=' ignored. */
static drv_err_t env_set_kv(ctx_t *c, envlist_t *e, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return DRV_OK;
    return env_setn(c, e, kv, (size_t)(eq - kv), eq + 1, strlen(eq + 1));
}

char *drv_spec_expand(const char *s, const char *const *env, size_t n, size_t max)
{
    drv_buf_t b = DRV_BUF_INIT(max);
    bool ok = true;
    size_t checkpoint = 0, len = strlen(s);
    for (size_t i = 0; i < len && ok; i++) {
        if (s[i] != '$' || i + 1 >= len)
            continue;
        ok = drv_buf_append(&b, s + checkpoint, i - checkpoint) == DRV_OK;
        const char *r = s + i + 1;
        size_t advance = 1;
        if (r[0] == '$') {
            ok = ok && drv_buf_putc(&b, '$') == DRV_OK;
        } else if (r[0] == '(') {
            const char *close = strchr(r + 1, ')');
            if (!close) {
                ok = ok && drv_buf_puts(&b, "$(") == DRV_OK;
            } else {
                size_t nlen = (size_t)(close - (r + 1));
                const char *val = NULL;
                for (size_t k = n; k-- > 0 && !val;)
                    if (!strncmp(env[k], r + 1, nlen) && env[k][nlen] == '=')
                        val = env[k] + nlen + 1;
                if (val)
                    ok = ok && drv_buf_puts(&b, val) == DRV_OK;
                else
                    ok = ok && drv_buf_append(&b, s + i, nlen + 3) == DRV_OK;
                advance = nlen + 2;
            }
        } else {
            ok = ok && drv_buf_append(&b, s + i, 2) == DRV_OK;
        }
        i += advance;
        checkpoint = i + 1;
    }
    if (ok && checkpoint < len)
        ok = drv_buf_append(&b, s + checkpoint, len - checkpoint) == DRV_OK;
    if (!ok) {
        drv_buf_free(&b);
        return NULL;
    }
    return drv_buf_steal(&b, NULL);
}

static char *expand_env(ctx_t *c, const char *s, const envlist_t *e)
{
    char *r = drv_spec_expand(s, (const char *const *)env_vars(e), e->vars.len, ENV_MAX_BYTES);
    if (!r)
        c->nomem = true;
    return r;
}

/* A ConfigMap's or Secret's value for key: malloc'd in *out (*outlen bytes); a Secret's data
 * is base64-decoded. DRV_ERR_NOTFOUND if the key is absent. */
static drv_err_t source_value(ctx_t *c, const cJSON *obj, bool secret, const char *key, char **out,
                              size_t *outlen, const char *field)
{
    const char *v = drv_json_str(drv_json_get(obj, "data"), key);
    if (!v)
        return DRV_ERR_NOTFOUND;
    if (secret) {
        unsigned char *dec = NULL;
        if (drv_base64_decode(v, strlen(v), &dec, outlen) != DRV_OK)
            return fail(c, DRV_ERR_INVALID, 0, "%s: secret \"%s\": data[%s] is not valid base64",
                        field, drv_json_str(drv_json_get(obj, "metadata"), "name"), key);
        if (memchr(dec, '\0', *outlen)) {
            free(dec);
            return fail(c, DRV_ERR_INVALID, 0,
                        "%s: secret \"%s\": data[%s] contains a NUL byte, which an environment "
                        "variable cannot hold",
                        field, drv_json_str(drv_json_get(obj, "metadata"), "name"), key);
        }
        *out = (char *)dec;
        return DRV_OK;
    }
    *out = strdup(v);
    if (!*out)
        return nomem(c);
    *outlen = strlen(v);
    return DRV_OK;
}

/* A Secret still sealed (sealedData) reaches the spec only through a caller's mistake: it
 * says so rather than "no key". */
static drv_err_t check_opened(ctx_t *c, const cJSON *obj, const char *field, const char *name)
{
    if (drv_json_get(obj, "sealedData") && !drv_json_get(obj, "data"))
        return fail(c, DRV_ERR_INVALID, 0, "%s: secret \"%s\" is sealed (sealedData not opened)",
                    field, name ? name : "");
    return DRV_OK;
}

static const char *pod_namespace(ctx_t *c)
{
    const char *ns = drv_json_str(drv_json_get(c->in->pod, "metadata"), "namespace");
    return ns ? ns : "default";
}

/* metadata.labels['k'] and metadata.annotations['k']: the value ("" when absent);
 * *subscripted tells such a path from any other. */
static const char *meta_subscript(const cJSON *pod, const char *path, bool *subscripted)
{
    static const char *const maps[] = {"labels", "annotations"};
    *subscripted = false;
    for (int i = 0; i < 2; i++) {
        char prefix[32];
        if (drv_fmt(prefix, sizeof(prefix), "metadata.%s['", maps[i]) != DRV_OK)
            return NULL;
        size_t pl = strlen(prefix), n = strlen(path);
        if (strncmp(path, prefix, pl) || n < pl + 2 || strcmp(path + n - 2, "']"))
            continue;
        *subscripted = true;
        char key[320];
        if (n - pl - 2 >= sizeof(key))
            return "";
        memcpy(key, path + pl, n - pl - 2);
        key[n - pl - 2] = '\0';
        const char *v = drv_json_str(drv_json_get(drv_json_get(pod, "metadata"), maps[i]), key);
        return v ? v : "";
    }
    return NULL;
}

static drv_err_t env_value_from(ctx_t *c, const cJSON *vf, const char *field, char **out,
                                size_t *outlen, bool *skip)
{
    const drv_spec_input_t *in = c->in;
    const cJSON *ref;
    for (int s = 0; s < 2; s++) {
        const char *kind = s ? "secretKeyRef" : "configMapKeyRef";
        if (!(ref = drv_json_get(vf, kind)))
            continue;
        const char *name = drv_json_str(ref, "name"), *key = drv_json_str(ref, "key");
        bool optional = false;
        drv_json_bool(ref, "optional", &optional);
        const cJSON *obj = name ? drv_json_get(s ? in->secrets : in->configmaps, name) : NULL;
        if (!obj) {
            if (optional) {
                *skip = true;
                return DRV_OK;
            }
            return fail(c, DRV_ERR_NOTFOUND, 0, "%s.valueFrom.%s: %s \"%s\" not found", field, kind,
                        s ? "secret" : "configmap", name ? name : "");
        }
        drv_err_t rc = s ? check_opened(c, obj, field, name) : DRV_OK;
        if (rc != DRV_OK)
            return rc;
        rc = source_value(c, obj, s, key ? key : "", out, outlen, field);
        if (rc == DRV_ERR_NOTFOUND) {
            if (optional) {
                *skip = true;
                return DRV_OK;
            }
            return fail(c, DRV_ERR_NOTFOUND, 0, "%s.valueFrom.%s: couldn't find key %s in %s %s/%s",
                        field, kind, key ? key : "", s ? "Secret" : "ConfigMap", pod_namespace(c),
                        name);
        }
        return rc;
    }
    if ((ref = drv_json_get(vf, "fieldRef"))) {
        const char *path = drv_json_str(ref, "fieldPath");
        const drv_spec_fields_t *f = &in->fields;
        const char *meta_name = drv_json_str(drv_json_get(in->pod, "metadata"), "name");
        const char *v = NULL;
        bool subscripted = false;
        if (!path)
            path = "";
        if (!strcmp(path, "metadata.name"))
            v = f->pod_name ? f->pod_name : meta_name;
        else if (!strcmp(path, "metadata.namespace"))
            v = f->pod_namespace ? f->pod_namespace : pod_namespace(c);
        else if (!strcmp(path, "metadata.uid"))
            v = f->pod_uid;
        else if (!strcmp(path, "spec.nodeName"))
            v = f->node_name ? f->node_name : drv_json_str(c->spec, "nodeName");
        else if (!strcmp(path, "status.podIP"))
            v = f->pod_ip;
        else if (!strcmp(path, "status.hostIP") || !strcmp(path, "status.hostIPs"))
            v = f->host_ip;
        else if (!strcmp(path, "status.podIPs"))
            v = f->pod_ip;
        else if (!strcmp(path, "spec.serviceAccountName"))
            v = drv_json_str(c->spec, "serviceAccountName");
        else if ((v = meta_subscript(in->pod, path, &subscripted)) != NULL || subscripted)
            ;
        else
            return fail(c, DRV_ERR_UNSUPPORTED, 0,
                        "%s.valueFrom.fieldRef.fieldPath: unsupported value \"%s\"", field, path);
        *out = strdup(v ? v : "");
        if (!*out)
            return nomem(c);
        *outlen = strlen(*out);
        return DRV_OK;
    }
    if ((ref = drv_json_get(vf, "resourceFieldRef"))) {
        const char *cname = drv_json_str(ref, "containerName");
        char val[32];
        drv_error_t rerr = DRV_ERROR_INIT;
        drv_err_t rc = drv_spec_resource_value(
            in->pod, cname && *cname ? cname : drv_json_str(c->ctr, "name"),
            drv_json_str(ref, "resource"), drv_json_str(ref, "divisor"), val, sizeof(val), &rerr);
        if (rc != DRV_OK)
            return fail(c, rc, 0, "%s.valueFrom.resourceFieldRef: %s", field, drv_error_msg(&rerr));
        *out = strdup(val);
        if (!*out)
            return nomem(c);
        *outlen = strlen(*out);
        return DRV_OK;
    }
    return fail(c, DRV_ERR_UNSUPPORTED, 0, "%s.valueFrom: no supported source", field);
}

/* kubelet's container environment: envFrom (in order), then env (values expanded against
 * what is defined so far). */
static drv_err_t kube_env(ctx_t *c, envlist_t *e)
{
    const cJSON *ef = drv_json_get(c->ctr, "envFrom");
    size_t i = 0;
    for (const cJSON *src = cJSON_IsArray(ef) ? ef->child : NULL; src; src = src->next, i++) {
        char field[64];
        drv_fmt_cut(field, sizeof(field), ".envFrom[%zu]", i);
        bool secret = drv_json_get(src, "secretRef") != NULL;
        const cJSON *ref = drv_json_get(src, secret ? "secretRef" : "configMapRef");
        const char *name = drv_json_str(ref, "name"), *prefix = drv_json_str(src, "prefix");
        bool optional = false;
        drv_json_bool(ref, "optional", &optional);
        const cJSON *obj =
            name ? drv_json_get(secret ? c->in->secrets : c->in->configmaps, name) : NULL;
        if (!obj) {
            if (optional)
                continue;
            return fail(c, DRV_ERR_NOTFOUND, 0, "%s.%s: %s \"%s\" not found", field,
                        secret ? "secretRef" : "configMapRef", secret ? "secret" : "configmap",
                        name ? name : "");
        }
        drv_err_t orc = secret ? check_opened(c, obj, field, name) : DRV_OK;
        if (orc != DRV_OK)
            return orc;
        const cJSON *data = drv_json_get(obj, "data");
        for (const cJSON *kv = cJSON_IsObject(data) ? data->child : NULL; kv; kv = kv->next) {
            char key[512];
            if ((size_t)snprintf(key, sizeof(key), "%s%s", prefix ? prefix : "", kv->string) >=
                    sizeof(key) ||
                !drv_name_env_var(key, NULL, 0))
                continue; /* kubelet skips keys that are not valid variable names */
            _cleanup_free_ char *val = NULL;
            size_t vlen = 0;
            drv_err_t rc = source_value(c, obj, secret, kv->string, &val, &vlen, field);
            if (rc == DRV_OK)
                rc = env_set(c, e, key, val, vlen);
            if (rc != DRV_OK)
                return rc;
        }
    }
    const cJSON *env = drv_json_get(c->ctr, "env");
    i = 0;
    for (const cJSON *v = cJSON_IsArray(env) ? env->child : NULL; v; v = v->next, i++) {
        char field[64];
        drv_fmt_cut(field, sizeof(field), ".env[%zu]", i);
        const char *name = drv_json_str(v, "name");
        if (!name || !drv_name_env_var(name, NULL, 0))
            return fail(c, DRV_ERR_INVALID, 0, "%s.name: invalid environment variable name", field);
        const cJSON *vf = drv_json_get(v, "valueFrom");
        drv_err_t rc;
        if (vf) {
            _cleanup_free_ char *val = NULL;
            size_t vlen = 0;
            bool skip = false;
            rc = env_value_from(c, vf, field, &val, &vlen, &skip);
            if (rc == DRV_OK && !skip)
                rc = env_set(c, e, name, val, vlen);
        } else {
            const char *raw = drv_json_str(v, "value");
            _cleanup_free_ char *val = expand_env(c, raw ? raw : "", e);
            if (!val)
                return nomem(c);
            rc = env_set(c, e, name, val, strlen(val));
        }
        if (rc != DRV_OK)
            return rc;
    }
    return DRV_OK;
}

/* ---- /etc/passwd and /etc/group of the image ---- */

/* Reads <rootfs>/etc/<name> without leaving the rootfs (symlinks resolved inside it).
 * A missing file gives *out = NULL and DRV_OK. */
static drv_err_t read_etc(ctx_t *c, int rootfd, const char *name, char **out)
{
    char rel[32];
    if (drv_fmt(rel, sizeof(rel), "etc/%s", name) != DRV_OK)
        return fail(c, DRV_ERR_TOOBIG, 0, ": /etc/%s: name too long", name);
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
    _cleanup_close_ int fd = (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
    if (fd < 0 && errno == ENOSYS) {
        /* Before Linux 5.6: refuse symlinks instead of resolving them in the root. */
        _cleanup_close_ int etc =
            openat(rootfd, "etc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        fd = etc < 0 ? -1
                     : openat(etc, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    }
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) {
            *out = NULL;
            return DRV_OK;
        }
        return fail(c, DRV_ERR_IO, errno, ": image file /etc/%s", name);
    }
    struct stat st;
    if (fstat(fd, &st) != 0)
        return fail(c, DRV_ERR_IO, errno, ": image file /etc/%s", name);
    if (!S_ISREG(st.st_mode)) {
        *out = NULL;
        return DRV_OK;
    }
    if ((uint64_t)st.st_size > DRV_SPEC_ETC_FILE_MAX)
        return fail(c, DRV_ERR_TOOBIG, 0, ": image file /etc/%s: larger than %u bytes", name,
                    DRV_SPEC_ETC_FILE_MAX);
    drv_error_t e2 = DRV_ERROR_INIT;
    if (drv_file_read_fd_capped(fd, DRV_SPEC_ETC_FILE_MAX, out, NULL, &e2) != DRV_OK)
        return fail(c, e2.code, 0, ": image file /etc/%s: %s", name, drv_error_msg(&e2));
    return DRV_OK;
}

/* Splits a passwd/group line into up to max ':'-separated fields (start, length). */
typedef struct field {
    const char *s;
    size_t n;
} field_t;

static size_t split_line(const char *line, size_t len, field_t *f, size_t max)
{
    size_t n = 0;
    const char *p = line, *end = line + len;
    while (n < max) {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        f[n].s = p;
        f[n].n = colon ? (size_t)(colon - p) : (size_t)(end - p);
        n++;
        if (!colon)
            break;
        p = colon + 1;
    }
    return n;
}

typedef bool (*line_fn)(const field_t *f, size_t n, void *arg);

/* Calls fn for each non-empty, non-comment line of data until it returns true. */
static bool each_line(const char *data, line_fn fn, void *arg)
{
    for (const char *p = data; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (len > 0 && p[0] != '#') {
            field_t f[7];
            size_t n = split_line(p, len, f, 7);
            if (fn(f, n, arg))
                return true;
        }
        p = nl ? nl + 1 : NULL;
    }
    return false;
}

typedef struct pwq {
    const char *name; /* match by name, or */
    uint64_t uid;     /* by uid when name is NULL */
    bool found;
    uint32_t out_uid, out_gid;
    char out_name[256];
} pwq_t;

static bool pw_match(const field_t *f, size_t n, void *arg)
{
    pwq_t *q = arg;
    uint64_t uid, gid;
    if (n < 4 || !parse_uint(f[2].s, f[2].n, UINT32_MAX, &uid) ||
        !parse_uint(f[3].s, f[3].n, UINT32_MAX, &gid) || f[0].n >= sizeof(q->out_name))
        return false;
    if (q->name ? (strlen(q->name) != f[0].n || memcmp(q->name, f[0].s, f[0].n)) : uid != q->uid)
        return false;
    q->found = true;
    q->out_uid = (uint32_t)uid;
    q->out_gid = (uint32_t)gid;
    memcpy(q->out_name, f[0].s, f[0].n);
    q->out_name[f[0].n] = '\0';
    return true;
}

typedef struct grq {
    const char *name; /* a group by name (lookup) */
    bool found;
    uint32_t gid;
    const char *member; /* or: every group listing member */
    sec_t *sec;
    bool nomem;
} grq_t;

static bool gids_add(sec_t *s, uint32_t gid)
{
    const uint32_t *g = s->gids.data;
    for (size_t i = 0; i < s->gids.len; i++)
        if (g[i] == gid)
            return true;
    /* Past GIDS_MAX, more groups than any image has: keep the first ones. */
    drv_err_t rc = drv_vec_push(&s->gids, &gid);
    return rc == DRV_OK || rc == DRV_ERR_TOOBIG;
}

static bool gr_match(const field_t *f, size_t n, void *arg)
{
    grq_t *q = arg;
    uint64_t gid;
    if (n < 3 || !parse_uint(f[2].s, f[2].n, UINT32_MAX, &gid))
        return false;
    if (q->name) {
        if (strlen(q->name) != f[0].n || memcmp(q->name, f[0].s, f[0].n))
            return false;
        q->found = true;
        q->gid = (uint32_t)gid;
        return true;
    }
    /* Supplementary groups only: not the group named like the user. */
    size_t ml = strlen(q->member);
    if (n < 4 || (f[0].n == ml && !memcmp(f[0].s, q->member, ml)))
        return false;
    for (const char *p = f[3].s, *end = f[3].s + f[3].n; p < end;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t len = comma ? (size_t)(comma - p) : (size_t)(end - p);
        if (len == ml && !memcmp(p, q->member, ml)) {
            if (!gids_add(q->sec, (uint32_t)gid))
                q->nomem = true;
            break;
        }
        p = comma ? comma + 1 : end;
    }
    return false;
}

/* The user: runAsUser/runAsGroup (container over pod) else the image's User, resolved with
 * the image's /etc/passwd and /etc/group like containerd; additional gids from /etc/group. */
static drv_err_t resolve_user(ctx_t *c, sec_t *s)
{
    int64_t v;
    bool have_uid = false, have_gid = false;
    uint64_t uid = 0, gid = 0;
    if (drv_json_int(c->csc, "runAsUser", &v) || drv_json_int(c->psc, "runAsUser", &v)) {
        have_uid = true;
        uid = (uint64_t)v;
    }
    if (drv_json_int(c->csc, "runAsGroup", &v) || drv_json_int(c->psc, "runAsGroup", &v)) {
        have_gid = true;
        gid = (uint64_t)v;
    }

    _cleanup_close_ int rootfd = open(c->in->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return fail(c, DRV_ERR_IO, errno, ": rootfs %s", c->in->rootfs);
    _cleanup_free_ char *passwd = NULL;
    _cleanup_free_ char *group = NULL;
    drv_err_t rc = read_etc(c, rootfd, "passwd", &passwd);
    if (rc == DRV_OK)
        rc = read_etc(c, rootfd, "group", &group);
    if (rc != DRV_OK)
        return rc;

    pwq_t pw = {0};
    const char *image_user = c->in->image ? c->in->image->user : NULL;
    if (!have_uid && image_user && *image_user) {
        /* "user[:group]" with names or numbers. */
        char ubuf[256], gbuf[256];
        const char *colon = strchr(image_user, ':');
        size_t ul = colon ? (size_t)(colon - image_user) : strlen(image_user);
        if (ul >= sizeof(ubuf) || (colon && strlen(colon + 1) >= sizeof(gbuf)))
            return fail(c, DRV_ERR_INVALID, 0, ": image user \"%.64s...\" is too long", image_user);
        memcpy(ubuf, image_user, ul);
        ubuf[ul] = '\0';
        if (!parse_uint(ubuf, ul, UINT32_MAX - 1, &uid)) {
            pw.name = ubuf;
            each_line(passwd, pw_match, &pw);
            if (!pw.found)
                return fail(c, DRV_ERR_NOTFOUND, 0,
                            ": image user \"%s\": unable to find user %s: no matching entries in "
                            "passwd file",
                            image_user, ubuf);
            uid = pw.out_uid;
        }
        if (colon && !have_gid) {
            if (drv_fmt(gbuf, sizeof(gbuf), "%s", colon + 1) != DRV_OK)
                return fail(c, DRV_ERR_INVALID, 0, ": image user \"%.64s...\" is too long",
                            image_user);
            if (!parse_uint(gbuf, strlen(gbuf), UINT32_MAX - 1, &gid)) {
                grq_t gq = {.name = gbuf};
                each_line(group, gr_match, &gq);
                if (!gq.found)
                    return fail(c, DRV_ERR_NOTFOUND, 0,
                                ": image user \"%s\": unable to find group %s: no matching entries "
                                "in group file",
                                image_user, gbuf);
                gid = gq.gid;
            }
            have_gid = true;
        }
    }
    if (!pw.found) {
        pw.name = NULL;
        pw.uid = uid;
        each_line(passwd, pw_match, &pw);
    }
    if (!have_gid)
        gid = pw.found ? pw.out_gid : 0;
    s->uid = (uint32_t)uid;
    s->gid = (uint32_t)gid;

    bool nonroot = false;
    if (!drv_json_bool(c->csc, "runAsNonRoot", &nonroot))
        drv_json_bool(c->psc, "runAsNonRoot", &nonroot);
    if (nonroot && uid == 0)
        return fail(c, DRV_ERR_PERM, 0,
                    have_uid ? ".securityContext.runAsNonRoot: container's runAsUser breaks "
                               "non-root policy"
                             : ".securityContext.runAsNonRoot: container has runAsNonRoot and "
                               "image will run as root");

    if (!gids_add(s, s->gid))
        return nomem(c);
    if (pw.found) {
        grq_t gq = {.member = pw.out_name, .sec = s};
        each_line(group, gr_match, &gq);
        if (gq.nomem)
            return nomem(c);
    }
    /* The pod's supplementalGroups, then its fsGroup, as the kubelet adds them. */
    const cJSON *sg = drv_json_get(c->psc, "supplementalGroups");
    for (const cJSON *g = cJSON_IsArray(sg) ? sg->child : NULL; g; g = g->next)
        if (cJSON_IsNumber(g) && g->valuedouble >= 0 && g->valuedouble <= UINT32_MAX - 1 &&
            !gids_add(s, (uint32_t)g->valuedouble))
            return nomem(c);
    if (drv_json_int(c->psc, "fsGroup", &v) && v >= 0 && v < UINT32_MAX &&
        !gids_add(s, (uint32_t)v))
        return nomem(c);
    return DRV_OK;
}

/* ---- capabilities ---- */

/* A name list (drover/namelist.h): the capability numbered k is its k-th name. */
static const char cap_names[] = "CAP_CHOWN\0"
                                "CAP_DAC_OVERRIDE\0"
                                "CAP_DAC_READ_SEARCH\0"
                                "CAP_FOWNER\0"
                                "CAP_FSETID\0"
                                "CAP_KILL\0"
                                "CAP_SETGID\0"
                                "CAP_SETUID\0"
                                "CAP_SETPCAP\0"
                                "CAP_LINUX_IMMUTABLE\0"
                                "CAP_NET_BIND_SERVICE\0"
                                "CAP_NET_BROADCAST\0"
                                "CAP_NET_ADMIN\0"
                                "CAP_NET_RAW\0"
                                "CAP_IPC_LOCK\0"
                                "CAP_IPC_OWNER\0"
                                "CAP_SYS_MODULE\0"
                                "CAP_SYS_RAWIO\0"
                                "CAP_SYS_CHROOT\0"
                                "CAP_SYS_PTRACE\0"
                                "CAP_SYS_PACCT\0"
                                "CAP_SYS_ADMIN\0"
                                "CAP_SYS_BOOT\0"
                                "CAP_SYS_NICE\0"
                                "CAP_SYS_RESOURCE\0"
                                "CAP_SYS_TIME\0"
                                "CAP_SYS_TTY_CONFIG\0"
                                "CAP_MKNOD\0"
                                "CAP_LEASE\0"
                                "CAP_AUDIT_WRITE\0"
                                "CAP_AUDIT_CONTROL\0"
                                "CAP_SETFCAP\0"
                                "CAP_MAC_OVERRIDE\0"
                                "CAP_MAC_ADMIN\0"
                                "CAP_SYSLOG\0"
                                "CAP_WAKE_ALARM\0"
                                "CAP_BLOCK_SUSPEND\0"
                                "CAP_AUDIT_READ\0"
                                "CAP_PERFMON\0"
                                "CAP_BPF\0"
                                "CAP_CHECKPOINT_RESTORE\0";
#define N_CAPS 41 /* the names in cap_names */

/* containerd's default set. */
static const int default_caps[] = {0 /* CHOWN */,
                                   1 /* DAC_OVERRIDE */,
                                   4 /* FSETID */,
                                   3 /* FOWNER */,
                                   27 /* MKNOD */,
                                   13 /* NET_RAW */,
                                   6 /* SETGID */,
                                   7 /* SETUID */,
                                   31 /* SETFCAP */,
                                   8 /* SETPCAP */,
                                   10 /* NET_BIND_SERVICE */,
                                   18 /* SYS_CHROOT */,
                                   5 /* KILL */,
                                   29 /* AUDIT_WRITE */};

/* Every capability this kernel knows (up to the ones Drover knows). */
static uint64_t all_caps(void)
{
    int last = N_CAPS - 1;
    char buf[16] = {0};
    _cleanup_close_ int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        uint64_t v;
        if (n > 0 && buf[n - 1] == '\n')
            n--;
        if (n > 0 && parse_uint(buf, (size_t)n, 63, &v) && (int)v < last)
            last = (int)v;
    }
    uint64_t all = last >= 63 ? ~(uint64_t)0 : (((uint64_t)1 << (last + 1)) - 1);
    /* Only those this process may pass on, as containerd's WithAllCurrentCapabilities: an
     * agent run with a reduced bounding set (a container, systemd's CapabilityBoundingSet)
     * would otherwise see crun's capset fail for every privileged container. */
    for (int i = 0; i <= last && i < 64; i++)
        if (prctl(PR_CAPBSET_READ, (unsigned long)i, 0, 0, 0) == 0)
            all &= ~((uint64_t)1 << i);
    return all;
}

/* "chown", "CHOWN" or "CAP_CHOWN": its number, or -1. */
static int cap_lookup(const char *s)
{
    char up[48];
    size_t n = strlen(s);
    const char *p = s;
    if (n >= 4 && !strncasecmp(s, "CAP_", 4))
        p = s + 4;
    if (strlen(p) + 5 > sizeof(up))
        return -1;
    memcpy(up, "CAP_", 4);
    size_t i = 0;
    for (; p[i]; i++)
        up[4 + i] = (p[i] >= 'a' && p[i] <= 'z') ? (char)(p[i] - 'a' + 'A') : p[i];
    up[4 + i] = '\0';
    return drv_namelist_index(cap_names, up);
}

static bool list_has_all(const cJSON *a)
{
    for (const cJSON *e = cJSON_IsArray(a) ? a->child : NULL; e; e = e->next)
        if (cJSON_IsString(e) && !strcasecmp(e->valuestring, "ALL"))
            return true;
    return false;
}

/* containerd's order: add ALL, drop ALL, then the named adds, then the named drops. */
static drv_err_t resolve_caps(ctx_t *c, sec_t *s)
{
    uint64_t all = all_caps();
    if (s->privileged) {
        s->caps = all;
        return DRV_OK;
    }
    s->caps = 0;
    for (size_t i = 0; i < sizeof(default_caps) / sizeof(default_caps[0]); i++)
        s->caps |= (uint64_t)1 << default_caps[i];
    const cJSON *caps = drv_json_get(c->csc, "capabilities");
    const cJSON *add = drv_json_get(caps, "add"), *drop = drv_json_get(caps, "drop");
    if (list_has_all(add))
        s->caps = all;
    if (list_has_all(drop))
        s->caps = 0;
    for (int pass = 0; pass < 2; pass++) {
        const cJSON *list = pass ? drop : add;
        size_t i = 0;
        for (const cJSON *e = cJSON_IsArray(list) ? list->child : NULL; e; e = e->next, i++) {
            if (!cJSON_IsString(e) || !strcasecmp(e->valuestring, "ALL"))
                continue;
            int k = cap_lookup(e->valuestring);
            if (k < 0)
                return fail(c, DRV_ERR_INVALID, 0,
                            ".securityContext.capabilities.%s[%zu]: unknown capability \"%.40s\"",
                            pass ? "drop" : "add", i, e->valuestring);
            if (pass)
                s->caps &= ~((uint64_t)1 << k);
            else
                s->caps |= ((uint64_t)1 << k) & all;
        }
    }
    return DRV_OK;
}

static cJSON *caps_array(ctx_t *c, uint64_t caps)
{
    cJSON *a = cJSON_CreateArray();
    if (!a) {
        c->nomem = true;
        return NULL;
    }
    int k = 0;
    for (const char *n = cap_names; n; n = drv_namelist_next(n), k++)
        if (caps & ((uint64_t)1 << k))
            push_str(c, a, n);
    return a;
}

/* ---- security context ---- */

static drv_err_t resolve_security(ctx_t *c, sec_t *s)
{
    bool v = false;
    s->privileged = drv_json_bool(c->csc, "privileged", &v) && v;
    v = false;
    s->ro_rootfs = drv_json_bool(c->csc, "readOnlyRootFilesystem", &v) && v;
    /* Drover's default is no_new_privs on, unless escalation is asked for or privileged. */
    bool escalate = false;
    drv_json_bool(c->csc, "allowPrivilegeEscalation", &escalate);
    s->no_new_privs = !(s->privileged || escalate);
    const char *prof = drv_json_str(drv_json_get(c->csc, "seccompProfile"), "type");
    if (!prof)
        prof = drv_json_str(drv_json_get(c->psc, "seccompProfile"), "type");
    s->seccomp = !s->privileged && !(prof && !strcmp(prof, "Unconfined"));
    drv_err_t rc = resolve_caps(c, s);
    if (rc == DRV_OK)
        rc = resolve_user(c, s);
    return rc;
}

/* ---- process ---- */

static void push_expanded(ctx_t *c, cJSON *arr, const char *s, const envlist_t *e, size_t *bytes)
{
    char *x = expand_env(c, s, e);
    if (!x)
        return;
    *bytes += strlen(x) + 1;
    push_str(c, arr, x);
    free(x);
}

static drv_err_t build_args(ctx_t *c, cJSON *proc, const envlist_t *kenv)
{
    const cJSON *cmd = drv_json_get(c->ctr, "command"), *args = drv_json_get(c->ctr, "args");
    const drv_oci_config_t *img = c->in->image;
    cJSON *out = add_arr(c, proc, "args");
    if (!out)
        return nomem(c);
    size_t bytes = 0;
    if (drv_json_array_len(cmd) > 0) {
        for (const cJSON *e = cmd->child; e; e = e->next)
            push_expanded(c, out, e->valuestring, kenv, &bytes);
    } else if (img) {
        for (size_t i = 0; i < img->n_entrypoint; i++) {
            bytes += strlen(img->entrypoint[i]) + 1;
            push_str(c, out, img->entrypoint[i]);
        }
    }
    if (drv_json_array_len(args) > 0) {
        for (const cJSON *e = args->child; e; e = e->next)
            push_expanded(c, out, e->valuestring, kenv, &bytes);
    } else if (drv_json_array_len(cmd) == 0 && img) {
        for (size_t i = 0; i < img->n_cmd; i++) {
            bytes += strlen(img->cmd[i]) + 1;
            push_str(c, out, img->cmd[i]);
        }
    }
    if (c->nomem)
        return nomem(c);
    if (bytes > ARGS_MAX_BYTES)
        return fail(c, DRV_ERR_TOOBIG, 0, ": command and args larger than %u bytes",
                    ARGS_MAX_BYTES);
    if (cJSON_GetArraySize(out) == 0)
        return fail(c, DRV_ERR_INVALID, 0,
                    ": no command specified: the container has no command and the image no "
                    "entrypoint or cmd");
    return DRV_OK;
}

static const char *pod_hostname(ctx_t *c, char *buf, size_t bufsz)
{
    bool hostnet = false;
    drv_json_bool(c->spec, "hostNetwork", &hostnet);
    if (c->in->hostname)
        return c->in->hostname;
    if (hostnet) {
        if (gethostname(buf, bufsz) == 0) {
            buf[bufsz - 1] = '\0';
            return buf;
        }
        return "localhost";
    }
    const char *h = drv_json_str(c->spec, "hostname");
    if (h && *h)
        return h;
    h = drv_json_str(drv_json_get(c->in->pod, "metadata"), "name");
    return h ? h : "localhost";
}

static drv_err_t build_process(ctx_t *c, cJSON *root, const sec_t *s, const char *hostname)
{
    cJSON *proc = add_obj(c, root, "process");
    if (!proc)
        return nomem(c);
    add_bool(c, proc, "terminal", false);

    _cleanup_env_ envlist_t kenv = ENVLIST_INIT;
    _cleanup_env_ envlist_t env = ENVLIST_INIT;
    drv_err_t rc = kube_env(c, &kenv);
    if (rc != DRV_OK)
        return rc;
    rc = build_args(c, proc, &kenv);
    if (rc != DRV_OK)
        return rc;

    /* containerd's order: default PATH, HOSTNAME, the image's Env, then the container's. */
    rc = env_set(c, &env, "PATH", DRV_SPEC_DEFAULT_PATH, strlen(DRV_SPEC_DEFAULT_PATH));
    if (rc == DRV_OK)
        rc = env_set(c, &env, "HOSTNAME", hostname, strlen(hostname));
    const drv_oci_config_t *img = c->in->image;
    for (size_t i = 0; rc == DRV_OK && img && i < img->n_env; i++)
        rc = env_set_kv(c, &env, img->env[i]);
    for (size_t i = 0; rc == DRV_OK && i < kenv.vars.len; i++)
        rc = env_set_kv(c, &env, env_vars(&kenv)[i]);
    if (rc != DRV_OK)
        return rc;
    cJSON *ea = add_arr(c, proc, "env");
    for (size_t i = 0; i < env.vars.len; i++)
        push_str(c, ea, env_vars(&env)[i]);

    const char *cwd = drv_json_str(c->ctr, "workingDir");
    char cwdbuf[PATH_MAX];
    if (!cwd || !*cwd) {
        cwd = img && img->working_dir && *img->working_dir ? img->working_dir : "/";
        if (cwd[0] != '/') {
            if (drv_fmt(cwdbuf, sizeof(cwdbuf), "/%s", cwd) != DRV_OK)
                return fail(c, DRV_ERR_TOOBIG, 0, ": image working directory too long");
            cwd = cwdbuf;
        }
    }
    add_str(c, proc, "cwd", cwd);

    cJSON *user = add_obj(c, proc, "user");
    add_num(c, user, "uid", s->uid);
    add_num(c, user, "gid", s->gid);
    cJSON *ag = add_arr(c, user, "additionalGids");
    const uint32_t *gids = s->gids.data;
    for (size_t i = 0; i < s->gids.len; i++)
        push(c, ag, cJSON_CreateNumber(gids[i]));

    cJSON *caps = add_obj(c, proc, "capabilities");
    if (caps) {
        const char *sets[] = {"bounding", "effective", "permitted"};
        for (size_t i = 0; i < 3; i++) {
            cJSON *a = caps_array(c, s->caps);
            if (a && !cJSON_AddItemToObject(caps, sets[i], a)) {
                cJSON_Delete(a);
                c->nomem = true;
            }
        }
        add_arr(c, caps, "inheritable");
        add_arr(c, caps, "ambient");
    }

    /* RLIMIT_NOFILE never above what this process may have: crun fails otherwise. */
    struct rlimit rl;
    uint64_t nofile = DRV_SPEC_NOFILE_MAX;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && rl.rlim_max < nofile)
        nofile = rl.rlim_max;
    cJSON *rls = add_arr(c, proc, "rlimits");
    cJSON *r = push_obj(c, rls);
    add_str(c, r, "type", "RLIMIT_NOFILE");
    add_num(c, r, "hard", (double)nofile);
    add_num(c, r, "soft", (double)nofile);
    add_bool(c, proc, "noNewPrivileges", s->no_new_privs);
    return c->nomem ? nomem(c) : DRV_OK;
}

/* ---- mounts ---- */

typedef struct umnt {
    const char *dest; /* borrowed from the pod or a literal */
    char *src;        /* malloc'd */
    bool rbind, ro;
    const char *propagation; /* "rprivate", "rslave" (HostToContainer), "rshared" */
} umnt_t;

/* The mounts of a container: a drv_vec_t of umnt_t, at most MAX_MOUNTS. */
typedef drv_vec_t umnts_t;

static void umnts_free(umnts_t *m)
{
    umnt_t *v = m->data;
    for (size_t i = 0; i < m->len; i++)
        free(v[i].src);
    drv_vec_free(m);
}

static drv_err_t umnt_add(ctx_t *c, umnts_t *m, const char *dest, const char *src, bool rbind,
                          bool ro)
{
    umnt_t u = {dest, strdup(src), rbind, ro, "rprivate"};
    if (!u.src)
        return nomem(c);
    drv_err_t rc = drv_vec_push(m, &u);
    if (rc != DRV_OK) {
        free(u.src);
        if (rc == DRV_ERR_TOOBIG)
            return fail(c, rc, 0, ".volumeMounts: more than %d mounts", MAX_MOUNTS);
        return nomem(c);
    }
    return DRV_OK;
}

static size_t path_depth(const char *p)
{
    size_t n = 0;
    for (; *p; p++)
        if (*p == '/' && p[1] && p[1] != '/')
            n++;
    return n;
}

static int open_beneath(int dirfd, const char *path, int flags)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

/* Checks that sub (clean, relative) stays inside base when symlinks are followed, creating
 * missing directories like kubelet (with the base directory's mode). */
static drv_err_t subpath_prepare(ctx_t *c, const char *base, const char *sub, const char *field)
{
    _cleanup_close_ int basefd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (basefd < 0)
        return fail(c, DRV_ERR_IO, errno, "%s.subPath: volume directory %s", field, base);
    _cleanup_close_ int fd = open_beneath(basefd, sub, O_PATH);
    if (fd >= 0)
        return DRV_OK;
    if (errno == ENOSYS)
        return fail(c, DRV_ERR_UNSUPPORTED, 0,
                    "%s.subPath: needs Linux 5.6 or later (openat2) to be checked safely", field);
    if (errno == EXDEV || errno == ELOOP)
        return fail(c, DRV_ERR_PERM, 0, "%s.subPath: \"%s\" leaves the volume through a symlink",
                    field, sub);
    if (errno != ENOENT)
        return fail(c, DRV_ERR_IO, errno, "%s.subPath: %s/%s", field, base, sub);
    struct stat st;
    if (fstat(basefd, &st) != 0)
        return fail(c, DRV_ERR_IO, errno, "%s.subPath: %s", field, base);
    /* Create component by component, each parent opened beneath the base. */
    char prefix[PATH_MAX];
    size_t len = strlen(sub);
    if (len >= sizeof(prefix))
        return fail(c, DRV_ERR_TOOBIG, 0, "%s.subPath: too long", field);
    for (size_t i = 0; i <= len; i++) {
        if (i < len && sub[i] != '/')
            continue;
        memcpy(prefix, sub, i);
        prefix[i] = '\0';
        _cleanup_close_ int cur = open_beneath(basefd, prefix, O_PATH);
        if (cur >= 0)
            continue;
        if (errno != ENOENT)
            return fail(c, errno == EXDEV || errno == ELOOP ? DRV_ERR_PERM : DRV_ERR_IO, errno,
                        "%s.subPath: %s", field, prefix);
        const char *slash = strrchr(prefix, '/');
        _cleanup_close_ int parent = -1;
        if (slash) {
            char pp[PATH_MAX];
            memcpy(pp, prefix, (size_t)(slash - prefix));
            pp[slash - prefix] = '\0';
            parent = open_beneath(basefd, pp, O_PATH | O_DIRECTORY);
        } else {
            parent = fcntl(basefd, F_DUPFD_CLOEXEC, 0);
        }
        if (parent < 0)
            return fail(c, DRV_ERR_IO, errno, "%s.subPath: %s", field, prefix);
        if (mkdirat(parent, slash ? slash + 1 : prefix, st.st_mode & 07777) != 0 && errno != EEXIST)
            return fail(c, DRV_ERR_IO, errno, "%s.subPath: create %s", field, prefix);
    }
    _cleanup_close_ int again = open_beneath(basefd, sub, O_PATH);
    if (again < 0)
        return fail(c, DRV_ERR_PERM, errno, "%s.subPath: \"%s\"", field, sub);
    return DRV_OK;
}

static const cJSON *find_volume(ctx_t *c, const char *name)
{
    const cJSON *vols = drv_json_get(c->spec, "volumes");
    for (const cJSON *v = cJSON_IsArray(vols) ? vols->child : NULL; v; v = v->next)
        if (drv_json_str(v, "name") && !strcmp(drv_json_str(v, "name"), name))
            return v;
    return NULL;
}

static drv_err_t volume_mounts(ctx_t *c, umnts_t *m, bool privileged)
{
    const cJSON *vms = drv_json_get(c->ctr, "volumeMounts");
    size_t i = 0;
    for (const cJSON *vm = cJSON_IsArray(vms) ? vms->child : NULL; vm; vm = vm->next, i++) {
        char field[64];
        drv_fmt_cut(field, sizeof(field), ".volumeMounts[%zu]", i);
        const char *name = drv_json_str(vm, "name"), *dest = drv_json_str(vm, "mountPath");
        const char *sub = drv_json_str(vm, "subPath");
        bool ro = false;
        drv_json_bool(vm, "readOnly", &ro);
        const cJSON *vol = name ? find_volume(c, name) : NULL;
        if (!vol)
            return fail(c, DRV_ERR_INVALID, 0, "%s.name: volume \"%s\" not found", field,
                        name ? name : "");
        if (!dest || dest[0] != '/')
            return fail(c, DRV_ERR_INVALID, 0, "%s.mountPath: must be an absolute path", field);
        char base[PATH_MAX];
        bool rbind = false;
        const cJSON *hp = drv_json_get(vol, "hostPath");
        if (hp) {
            const char *p = drv_json_str(hp, "path");
            if (!p || p[0] != '/')
                return fail(c, DRV_ERR_INVALID, 0, "%s: hostPath of volume \"%s\" is not absolute",
                            field, name);
            if (drv_fmt(base, sizeof(base), "%s", p) != DRV_OK)
                return fail(c, DRV_ERR_TOOBIG, 0, "%s: hostPath of volume \"%s\" is too long",
                            field, name);
            rbind = true;
        } else if (drv_json_get(vol, "emptyDir") || drv_json_get(vol, "configMap") ||
                   drv_json_get(vol, "secret") || drv_json_get(vol, "downwardAPI") ||
                   drv_json_get(vol, "persistentVolumeClaim")) {
            /* A claim's directory is bind-mounted there by pod/pvc.c. */
            ro = ro ||
                 cJSON_IsTrue(drv_json_get(drv_json_get(vol, "persistentVolumeClaim"), "readOnly"));
            if (!c->in->volumes_dir)
                return fail(c, DRV_ERR_INVALID, 0, "%s: no volumes directory for volume \"%s\"",
                            field, name);
            if (drv_path_join(c->in->volumes_dir, name, base, sizeof(base)) != DRV_OK)
                return fail(c, DRV_ERR_INVALID, 0, "%s: bad volume path for \"%s\"", field, name);
        } else {
            return fail(c, DRV_ERR_UNSUPPORTED, 0, "%s: volume \"%s\" has no supported source",
                        field, name);
        }
        char src[PATH_MAX];
        if (sub && *sub) {
            char clean[PATH_MAX];
            drv_err_t rc = drv_path_clean(sub, clean, sizeof(clean));
            if (rc != DRV_OK || sub[0] == '/' || !drv_path_is_contained(sub) ||
                drv_path_join(base, clean, src, sizeof(src)) != DRV_OK)
                return fail(c, DRV_ERR_INVALID, 0,
                            "%s.subPath: must be a relative path without '..'", field);
            if (strcmp(clean, ".")) {
                rc = subpath_prepare(c, base, clean, field);
                if (rc != DRV_OK)
                    return rc;
            }
        } else if (drv_fmt(src, sizeof(src), "%s", base) != DRV_OK) {
            return fail(c, DRV_ERR_TOOBIG, 0, "%s: path of volume \"%s\" is too long", field, name);
        }
        drv_err_t rc = umnt_add(c, m, dest, src, rbind, ro);
        if (rc != DRV_OK)
            return rc;
        /* mountPropagation as containerd maps it; Bidirectional only for privileged
         * containers (the model checks it too). */
        const char *prop = drv_json_str(vm, "mountPropagation");
        if (prop && !strcmp(prop, "HostToContainer")) {
            ((umnt_t *)drv_vec_at(m, m->len - 1))->propagation = "rslave";
        } else if (prop && !strcmp(prop, "Bidirectional")) {
            if (!privileged)
                return fail(c, DRV_ERR_INVALID, 0,
                            "%s.mountPropagation: Bidirectional is only allowed for privileged "
                            "containers",
                            field);
            ((umnt_t *)drv_vec_at(m, m->len - 1))->propagation = "rshared";
        }
    }
    return DRV_OK;
}

static bool umnts_has(const umnts_t *m, const char *dest)
{
    char a[PATH_MAX], b[PATH_MAX];
    if (drv_path_clean(dest, a, sizeof(a)) != DRV_OK)
        return false;
    const umnt_t *v = m->data;
    for (size_t i = 0; i < m->len; i++)
        if (drv_path_clean(v[i].dest, b, sizeof(b)) == DRV_OK && !strcmp(a, b))
            return true;
    return false;
}

static void add_mount(ctx_t *c, cJSON *mounts, const char *dest, const char *type, const char *src,
                      const char *const *opts)
{
    cJSON *o = push_obj(c, mounts);
    add_str(c, o, "destination", dest);
    add_str(c, o, "type", type);
    add_str(c, o, "source", src);
    cJSON *oa = add_arr(c, o, "options");
    for (; *opts; opts++)
        push_str(c, oa, *opts);
}

static drv_err_t build_mounts(ctx_t *c, cJSON *root, const sec_t *s)
{
    __attribute__((cleanup(umnts_free))) umnts_t um = DRV_VEC_INIT(umnt_t, MAX_MOUNTS);
    drv_err_t rc = volume_mounts(c, &um, s->privileged);
    if (rc != DRV_OK)
        return rc;
    /* The pod's /etc files, unless the container mounts its own. */
    const char *etc[3][2] = {{"/etc/hosts", c->in->hosts},
                             {"/etc/hostname", c->in->hostname_file},
                             {"/etc/resolv.conf", c->in->resolv_conf}};
    for (int i = 0; i < 3; i++)
        if (etc[i][1] && !umnts_has(&um, etc[i][0]) &&
            (rc = umnt_add(c, &um, etc[i][0], etc[i][1], false, s->ro_rootfs)) != DRV_OK)
            return rc;
    /* Parents before children: stable sort by depth, as containerd does. */
    umnt_t *v = um.data;
    for (size_t i = 1; i < um.len; i++) {
        umnt_t t = v[i];
        size_t j = i, d = path_depth(t.dest);
        for (; j > 0 && path_depth(v[j - 1].dest) > d; j--)
            v[j] = v[j - 1];
        v[j] = t;
    }

    bool hostipc = false;
    drv_json_bool(c->spec, "hostIPC", &hostipc);
    cJSON *mounts = add_arr(c, root, "mounts");
    static const char *const o_proc[] = {"nosuid", "noexec", "nodev", NULL};
    static const char *const o_dev[] = {"nosuid", "strictatime", "mode=755", "size=65536k", NULL};
    static const char *const o_pts[] = {"nosuid",    "noexec", "newinstance", "ptmxmode=0666",
                                        "mode=0620", "gid=5",  NULL};
    static const char *const o_shm[] = {"nosuid",    "noexec",      "nodev",
                                        "mode=1777", "size=65536k", NULL};
    static const char *const o_shm_bind[] = {"rbind", "rprivate", "rw", NULL};
    static const char *const o_mq[] = {"nosuid", "noexec", "nodev", NULL};
    static const char *const o_sys_ro[] = {"nosuid", "noexec", "nodev", "ro", NULL};
    static const char *const o_sys_rw[] = {"nosuid", "noexec", "nodev", "rw", NULL};
    static const char *const o_cg_ro[] = {"nosuid", "noexec", "nodev", "relatime", "ro", NULL};
    static const char *const o_cg_rw[] = {"nosuid", "noexec", "nodev", "relatime", "rw", NULL};
    bool user_dev = umnts_has(&um, "/dev");
    struct {
        const char *dest, *type, *src;
        const char *const *opts;
    } defs[] = {
        {"/proc", "proc", "proc", o_proc},
        {"/dev", "tmpfs", "tmpfs", o_dev},
        {"/dev/pts", "devpts", "devpts", o_pts},
        {"/dev/shm", "tmpfs", "shm", o_shm},
        {"/dev/mqueue", "mqueue", "mqueue", o_mq},
        {"/sys", "sysfs", "sysfs", s->privileged ? o_sys_rw : o_sys_ro},
        {"/sys/fs/cgroup", "cgroup", "cgroup", s->privileged ? o_cg_rw : o_cg_ro},
    };
    if (c->in->shm_path || hostipc) {
        defs[3].type = "bind";
        defs[3].src = c->in->shm_path && !hostipc ? c->in->shm_path : "/dev/shm";
        defs[3].opts = o_shm_bind;
    }
    for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
        if (umnts_has(&um, defs[i].dest) || (user_dev && !strncmp(defs[i].dest, "/dev/", 5)))
            continue;
        add_mount(c, mounts, defs[i].dest, defs[i].type, defs[i].src, defs[i].opts);
    }
    const char *rootprop = NULL;
    for (size_t i = 0; i < um.len; i++) {
        const char *opts[] = {v[i].rbind ? "rbind" : "bind", v[i].propagation,
                              v[i].ro ? "ro" : "rw", NULL};
        add_mount(c, mounts, v[i].dest, "bind", v[i].src, opts);
        /* A propagating mount needs the container's root to propagate too (containerd). */
        if (!strcmp(v[i].propagation, "rshared"))
            rootprop = "rshared";
        else if (!strcmp(v[i].propagation, "rslave") && !rootprop)
            rootprop = "rslave";
    }
    c->rootprop = rootprop;
    return c->nomem ? nomem(c) : DRV_OK;
}

/* ---- linux ---- */

static void add_namespace(ctx_t *c, cJSON *ns, const char *type, const char *path)
{
    cJSON *o = push_obj(c, ns);
    add_str(c, o, "type", type);
    if (path)
        add_str(c, o, "path", path);
}

static drv_err_t build_resources(ctx_t *c, cJSON *lnx)
{
    const cJSON *res = drv_json_get(c->ctr, "resources");
    const cJSON *lim = drv_json_get(res, "limits"), *req = drv_json_get(res, "requests");
    cJSON *r = add_obj(c, lnx, "resources");
    drv_error_t qe = DRV_ERROR_INIT;
    int64_t v;
    const char *q;
    if ((q = drv_json_str(lim, "memory"))) {
        if (drv_qty_parse_memory(q, &v, NULL, &qe) != DRV_OK)
            return fail(c, DRV_ERR_INVALID, 0, ".resources.limits.memory: %s", drv_error_msg(&qe));
        cJSON *m = add_obj(c, r, "memory");
        add_num(c, m, "limit", (double)v);
    }
    cJSON *cpu = add_obj(c, r, "cpu");
    int64_t shares = MIN_CPU_SHARES;
    if ((q = drv_json_str(req, "cpu"))) {
        if (drv_qty_parse_cpu(q, &v, NULL, &qe) != DRV_OK)
            return fail(c, DRV_ERR_INVALID, 0, ".resources.requests.cpu: %s", drv_error_msg(&qe));
        if (v > (int64_t)MAX_CPU_SHARES * 1000 / 1024 + 1)
            shares = MAX_CPU_SHARES;
        else
            shares = v * 1024 / 1000;
        if (shares < MIN_CPU_SHARES)
            shares = MIN_CPU_SHARES;
        if (shares > MAX_CPU_SHARES)
            shares = MAX_CPU_SHARES;
    }
    add_num(c, cpu, "shares", (double)shares);
    if ((q = drv_json_str(lim, "cpu"))) {
        if (drv_qty_parse_cpu(q, &v, NULL, &qe) != DRV_OK)
            return fail(c, DRV_ERR_INVALID, 0, ".resources.limits.cpu: %s", drv_error_msg(&qe));
        if (v > 0) {
            int64_t quota = v > INT64_MAX / CPU_PERIOD ? INT64_MAX / 1000 : v * CPU_PERIOD / 1000;
            if (quota < MIN_CPU_QUOTA)
                quota = MIN_CPU_QUOTA;
            add_num(c, cpu, "quota", (double)quota);
            add_num(c, cpu, "period", CPU_PERIOD);
        }
    }
    int64_t pids = c->in->pids_limit ? c->in->pids_limit : DRV_SPEC_DEFAULT_PIDS_LIMIT;
    if (pids > 0) {
        cJSON *p = add_obj(c, r, "pids");
        add_num(c, p, "limit", (double)pids);
    }
    return c->nomem ? nomem(c) : DRV_OK;
}

/* Host devices for a privileged container (runc's HostDevices rules), except the ones crun
 * always creates. */
static void host_devices(ctx_t *c, cJSON *devs, int fd, const char *rel, int depth, size_t *count)
{
    static const char *const skip_dirs[] = {"pts",  "shm",         "fd",    "mqueue",
                                            ".lxc", ".lxd-mounts", ".udev", NULL};
    static const char *const skip_top[] = {"null",    "zero", "full",    "tty", "random",
                                           "urandom", "ptmx", "console", NULL};
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    for (struct dirent *e; (e = readdir(d)) && *count < MAX_DEVICES && !c->nomem;) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        bool skip = false;
        for (const char *const *s = depth == 0 ? skip_top : NULL; s && *s && !skip; s++)
            skip = !strcmp(*s, e->d_name);
        if (skip)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", rel, e->d_name) >= sizeof(path))
            continue;
        if (S_ISDIR(st.st_mode)) {
            for (const char *const *s = skip_dirs; *s && !skip; s++)
                skip = !strcmp(*s, e->d_name);
            int sub = skip || depth >= 4 ? -1
                                         : openat(dirfd(d), e->d_name,
                                                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                host_devices(c, devs, sub, path, depth + 1, count);
            continue;
        }
        if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
            continue;
        cJSON *o = push_obj(c, devs);
        add_str(c, o, "path", path);
        add_str(c, o, "type", S_ISCHR(st.st_mode) ? "c" : "b");
        add_num(c, o, "major", major(st.st_rdev));
        add_num(c, o, "minor", minor(st.st_rdev));
        add_num(c, o, "fileMode", st.st_mode & 07777);
        add_num(c, o, "uid", st.st_uid);
        add_num(c, o, "gid", st.st_gid);
        (*count)++;
    }
    closedir(d);
}

static drv_err_t build_seccomp(ctx_t *c, cJSON *lnx, const sec_t *s)
{
    const drv_seccomp_profile_t *prof = c->in->seccomp;
    drv_seccomp_profile_t *loaded = NULL;
    drv_error_t e2 = DRV_ERROR_INIT;
    if (!prof) {
        const char *path = c->in->seccomp_path ? c->in->seccomp_path : DRV_SECCOMP_DEFAULT_PATH;
        if (drv_seccomp_load(path, &loaded, &e2) != DRV_OK)
            return fail(c, e2.code, 0, ": RuntimeDefault seccomp profile: %s", drv_error_msg(&e2));
        prof = loaded;
    }
    const char *names[64];
    size_t n = 0;
    int k = 0;
    for (const char *nm = cap_names; nm; nm = drv_namelist_next(nm), k++)
        if (s->caps & ((uint64_t)1 << k))
            names[n++] = nm;
    drv_seccomp_target_t t = {c->in->arch, names, n, c->in->kernel_release};
    cJSON *sc = NULL;
    drv_err_t rc = drv_seccomp_build(prof, &t, &sc, &e2);
    drv_seccomp_free(loaded);
    if (rc != DRV_OK)
        return fail(c, rc, 0, ": seccomp: %s", drv_error_msg(&e2));
    if (!cJSON_AddItemToObject(lnx, "seccomp", sc)) {
        cJSON_Delete(sc);
        return nomem(c);
    }
    return DRV_OK;
}

static drv_err_t build_linux(ctx_t *c, cJSON *root, const sec_t *s)
{
    const drv_spec_input_t *in = c->in;
    bool hostnet = false, hostpid = false, hostipc = false;
    drv_json_bool(c->spec, "hostNetwork", &hostnet);
    drv_json_bool(c->spec, "hostPID", &hostpid);
    drv_json_bool(c->spec, "hostIPC", &hostipc);
    cJSON *lnx = add_obj(c, root, "linux");
    if (!lnx)
        return nomem(c);
    cJSON *ns = add_arr(c, lnx, "namespaces");
    if (!hostpid)
        add_namespace(c, ns, "pid", NULL);
    if (!hostnet)
        add_namespace(c, ns, "network", in->netns_path);
    if (!hostipc)
        add_namespace(c, ns, "ipc", in->ipcns_path);
    if (!hostnet)
        add_namespace(c, ns, "uts", in->utsns_path);
    add_namespace(c, ns, "mount", NULL);
    add_namespace(c, ns, "cgroup", NULL);
    if (c->rootprop)
        add_str(c, lnx, "rootfsPropagation", c->rootprop);

    if (in->cgroups_path) {
        add_str(c, lnx, "cgroupsPath", in->cgroups_path);
        drv_err_t rc = build_resources(c, lnx);
        if (rc != DRV_OK)
            return rc;
    }
    if (s->privileged) {
        const char *dev = in->dev_dir ? in->dev_dir : "/dev";
        cJSON *devs = add_arr(c, lnx, "devices");
        int fd = open(dev, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        size_t count = 0;
        if (fd >= 0)
            host_devices(c, devs, fd, "/dev", 0, &count);
    } else {
        static const char *const masked[] = {"/proc/acpi",
                                             "/proc/asound",
                                             "/proc/kcore",
                                             "/proc/keys",
                                             "/proc/latency_stats",
                                             "/proc/timer_list",
                                             "/proc/timer_stats",
                                             "/proc/sched_debug",
                                             "/proc/scsi",
                                             "/sys/firmware",
                                             "/sys/devices/virtual/powercap",
                                             NULL};
        static const char *const ro[] = {
            "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL};
        cJSON *m = add_arr(c, lnx, "maskedPaths");
        for (const char *const *p = masked; *p; p++)
            push_str(c, m, *p);
        cJSON *r = add_arr(c, lnx, "readonlyPaths");
        for (const char *const *p = ro; *p; p++)
            push_str(c, r, *p);
    }
    if (s->seccomp) {
        drv_err_t rc = build_seccomp(c, lnx, s);
        if (rc != DRV_OK)
            return rc;
    }
    return c->nomem ? nomem(c) : DRV_OK;
}

/* ---- the whole ---- */

/* Finds the container in the pod (the same object, else by name: a copy is fine) for the
 * field paths of errors. */
static bool locate(ctx_t *c)
{
    static const char *const lists[] = {"containers", "initContainers"};
    const char *name = drv_json_str(c->ctr, "name");
    for (int pass = 0; pass < 2; pass++)
        for (int l = 0; l < 2; l++) {
            const cJSON *a = drv_json_get(c->spec, lists[c->in->is_init ? 1 - l : l]);
            size_t i = 0;
            for (const cJSON *e = cJSON_IsArray(a) ? a->child : NULL; e; e = e->next, i++) {
                const char *en = drv_json_str(e, "name");
                if (pass == 0 ? e == c->ctr : (name && en && !strcmp(name, en))) {
                    drv_fmt_cut(c->where, sizeof(c->where), "spec.%s[%zu]",
                                lists[c->in->is_init ? 1 - l : l], i);
                    return true;
                }
            }
        }
    return false;
}

drv_err_t drv_spec_build(const drv_spec_input_t *in, cJSON **config_json, drv_error_t *err)
{
    if (!in || !config_json || !cJSON_IsObject(in->pod) || !cJSON_IsObject(in->container))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "runtime spec: pod and container required");
    ctx_t c = {.in = in, .spec = drv_json_get(in->pod, "spec"), .ctr = in->container, .err = err};
    c.psc = drv_json_get(c.spec, "securityContext");
    c.csc = drv_json_get(c.ctr, "securityContext");
    if (!locate(&c)) {
        const char *name = drv_json_str(in->container, "name");
        drv_fmt_cut(c.where, sizeof(c.where), "container \"%.60s\"", name ? name : "?");
        return fail(&c, DRV_ERR_INVALID, 0, ": not a container of the pod");
    }
    if (!in->rootfs || in->rootfs[0] != '/')
        return fail(&c, DRV_ERR_INVALID, 0, ": rootfs must be an absolute path");

    sec_t s = {.gids = DRV_VEC_INIT(uint32_t, GIDS_MAX)};
    char hbuf[256];
    const char *hostname = pod_hostname(&c, hbuf, sizeof(hbuf));
    cJSON *root = cJSON_CreateObject();
    drv_err_t rc = root ? resolve_security(&c, &s) : nomem(&c);
    if (rc == DRV_OK) {
        add_str(&c, root, "ociVersion", DRV_SPEC_OCI_VERSION);
        rc = build_process(&c, root, &s, hostname);
    }
    if (rc == DRV_OK) {
        cJSON *r = add_obj(&c, root, "root");
        add_str(&c, r, "path", in->rootfs);
        add_bool(&c, r, "readonly", s.ro_rootfs);
        bool hostnet = false;
        drv_json_bool(c.spec, "hostNetwork", &hostnet);
        if (!hostnet)
            add_str(&c, root, "hostname", hostname);
        rc = build_mounts(&c, root, &s);
    }
    if (rc == DRV_OK)
        rc = build_linux(&c, root, &s);
    if (rc == DRV_OK) {
        cJSON *an = add_obj(&c, root, "annotations");
        const cJSON *meta = drv_json_get(in->pod, "metadata");
        const char *pn = drv_json_str(meta, "name"), *cn = drv_json_str(in->container, "name");
        add_str(&c, an, "io.kubernetes.pod.name", pn ? pn : "");
        add_str(&c, an, "io.kubernetes.pod.namespace", pod_namespace(&c));
        add_str(&c, an, "io.kubernetes.container.name", cn ? cn : "");
        add_str(&c, an, "io.drover.container.init", in->is_init ? "true" : "false");
        if (c.nomem)
            rc = nomem(&c);
    }
    drv_vec_free(&s.gids);
    if (rc != DRV_OK) {
        cJSON_Delete(root);
        return rc;
    }
    *config_json = root;
    return DRV_OK;
}

/* ---- resourceFieldRef, /etc/hosts ---- */

static const cJSON *find_container(const cJSON *pod, const char *name)
{
    static const char *const lists[] = {"containers", "initContainers"};
    const cJSON *spec = drv_json_get(pod, "spec");
    for (int l = 0; l < 2 && name; l++) {
        const cJSON *a = drv_json_get(spec, lists[l]);
        for (const cJSON *e = cJSON_IsArray(a) ? a->child : NULL; e; e = e->next)
            if (drv_json_str(e, "name") && !strcmp(drv_json_str(e, "name"), name))
                return e;
    }
    return NULL;
}

void drv_spec_node_allocatable(int64_t *millicores, int64_t *bytes)
{
    struct sysinfo si;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t mem = sysinfo(&si) == 0 ? (uint64_t)si.totalram * si.mem_unit : 0;
    uint64_t reserve = mem / 20 > (64u << 20) ? mem / 20 : (64u << 20);
    *millicores = cpus > 0 ? (int64_t)cpus * 1000 - 100 : 0;
    *bytes = mem > reserve ? (int64_t)(mem - reserve) : 0;
}

drv_err_t drv_spec_resource_value(const cJSON *pod, const char *container, const char *resource,
                                  const char *divisor, char *out, size_t outsz, drv_error_t *err)
{
    if (!pod || !resource || !out || outsz == 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "resource: required");
    bool limits = !strncmp(resource, "limits.", 7), requests = !strncmp(resource, "requests.", 9);
    const char *res = limits ? resource + 7 : requests ? resource + 9 : "";
    bool cpu = !strcmp(res, "cpu");
    if (!cpu && strcmp(res, "memory"))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "resource \"%.64s\": unsupported: Drover gives limits and requests "
                             "of cpu and memory",
                             resource);
    const cJSON *ctr = find_container(pod, container);
    if (!ctr)
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0,
                             "containerName: container \"%.64s\" not found",
                             container ? container : "");
    const char *q = drv_json_str(
        drv_json_get(drv_json_get(ctr, "resources"), limits ? "limits" : "requests"), res);
    int64_t v = 0, d = cpu ? 1000 : 1;
    drv_error_t qerr = DRV_ERROR_INIT;
    if (q) {
        if ((cpu ? drv_qty_parse_cpu(q, &v, NULL, &qerr)
                 : drv_qty_parse_memory(q, &v, NULL, &qerr)) != DRV_OK)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s \"%.32s\": %s", resource, q,
                                 drv_error_msg(&qerr));
    } else if (limits) {
        int64_t mc, mb;
        drv_spec_node_allocatable(&mc, &mb);
        v = cpu ? mc : mb;
    }
    if (divisor && *divisor && strcmp(divisor, "0")) {
        if ((cpu ? drv_qty_parse_cpu(divisor, &d, NULL, &qerr)
                 : drv_qty_parse_memory(divisor, &d, NULL, &qerr)) != DRV_OK ||
            d <= 0)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "divisor \"%.32s\": invalid", divisor);
    }
    int64_t r = v / d + (v % d != 0);
    if (drv_fmt(out, outsz, "%lld", (long long)r) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: value too long", resource);
    return DRV_OK;
}

drv_err_t drv_spec_hosts_file(const cJSON *pod, const char *pod_ip, const char *hostname,
                              const char *base, drv_buf_t *out)
{
    drv_buf_reset(out);
    drv_err_t r;
    if (base)
        r = drv_buf_puts(out, base);
    else
        r = drv_buf_puts(out, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    /* A pod with spec.subdomain (a StatefulSet's) also has its DNS name, first, as the kubelet
     * writes it: "<ip>\t<hostname>.<subdomain>.<ns>.svc.cluster.local\t<hostname>". */
    const char *sub = drv_json_str(drv_json_get(pod, "spec"), "subdomain");
    const char *ns = drv_json_str(drv_json_get(pod, "metadata"), "namespace");
    if (r == DRV_OK && !base && pod_ip && *pod_ip && sub && *sub && hostname && *hostname)
        r = drv_buf_printf(out, "%s\t%s.%s.%s.svc.cluster.local\t%s\n", pod_ip, hostname, sub,
                           ns && *ns ? ns : "default", hostname);
    else if (r == DRV_OK && !base && pod_ip && *pod_ip)
        r = drv_buf_printf(out, "%s\t%s\n", pod_ip, hostname ? hostname : "");
    const cJSON *ha = drv_json_get(drv_json_get(pod, "spec"), "hostAliases");
    if (r != DRV_OK || !cJSON_IsArray(ha) || !ha->child)
        return r;
    if (base && out->len && drv_buf_str(out)[out->len - 1] != '\n')
        r = drv_buf_putc(out, '\n');
    if (r == DRV_OK)
        r = drv_buf_puts(out, "\n# Entries added by HostAliases.\n");
    for (const cJSON *a = ha->child; a && r == DRV_OK; a = a->next) {
        const char *ip = drv_json_str(a, "ip");
        const cJSON *names = drv_json_get(a, "hostnames");
        if (!ip)
            continue;
        r = drv_buf_puts(out, ip);
        for (const cJSON *n = cJSON_IsArray(names) ? names->child : NULL; n && r == DRV_OK;
             n = n->next)
            if (cJSON_IsString(n))
                r = drv_buf_printf(out, "\t%s", n->valuestring);
        if (r == DRV_OK)
            r = drv_buf_putc(out, '\n');
    }
    return r;
}
