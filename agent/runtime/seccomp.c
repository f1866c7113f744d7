/* RuntimeDefault seccomp: the containers-common profile checked once at load, then filtered
 * per container like moby's profiles/seccomp (arches, capabilities, minKernel) into the OCI
 * linux.seccomp object crun installs. */
#include "runtime/seccomp.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "drover/namelist.h"
#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/json.h"

struct drv_seccomp_profile {
    cJSON *root; /* validated: every field below is known to have its documented type */
};

#define NAME_MAX_LEN 64
#define MAX_RULES 4096
#define MAX_NAMES 4096
#define MAX_ARGS 6

/* Name lists (drover/namelist.h): no relocations in the agent's binary. */
static const char actions[] = "SCMP_ACT_KILL\0"
                              "SCMP_ACT_KILL_PROCESS\0"
                              "SCMP_ACT_KILL_THREAD\0"
                              "SCMP_ACT_TRAP\0"
                              "SCMP_ACT_ERRNO\0"
                              "SCMP_ACT_TRACE\0"
                              "SCMP_ACT_ALLOW\0"
                              "SCMP_ACT_LOG\0"
                              "SCMP_ACT_NOTIFY\0";
static const char ops[] = "SCMP_CMP_NE\0"
                          "SCMP_CMP_LT\0"
                          "SCMP_CMP_LE\0"
                          "SCMP_CMP_EQ\0"
                          "SCMP_CMP_GE\0"
                          "SCMP_CMP_GT\0"
                          "SCMP_CMP_MASKED_EQ\0";

/* ---- validation ---- */

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

/* A whole number 0..max held exactly by a double. */
static bool uint_ok(const cJSON *n, double max)
{
    uint64_t u;
    return cJSON_IsNumber(n) && drv_json_to_uint(n->valuedouble, (uint64_t)max, &u);
}

static drv_err_t bad(drv_error_t *err, const char *what, const char *path, const char *msg)
{
    return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: %s: %s", what, path, msg);
}

/* An array of names (caps, arches) under key of obj; absent is fine. */
static drv_err_t check_name_list(const cJSON *obj, const char *key, const char *what,
                                 const char *path, drv_error_t *err)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    char p[160];
    drv_fmt_cut(p, sizeof(p), "%s.%s", path, key);
    if (!a || cJSON_IsNull(a))
        return DRV_OK;
    if (!cJSON_IsArray(a))
        return bad(err, what, p, "must be an array of names");
    int i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++)
        if (!cJSON_IsString(e) || !name_ok(e->valuestring)) {
            drv_fmt_cut(p, sizeof(p), "%s.%s[%d]", path, key, i);
            return bad(err, what, p, "must be a name of letters, digits and '_'");
        }
    return DRV_OK;
}

static bool kernel_version_ok(const char *s)
{
    unsigned a, b;
    char rest;
    return sscanf(s, "%u.%u%c", &a, &b, &rest) == 2 && a < 1000 && b < 1000;
}

static drv_err_t check_filter(const cJSON *rule, const char *key, const char *what, int i,
                              drv_error_t *err)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(rule, key);
    char p[128];
    drv_fmt_cut(p, sizeof(p), "syscalls[%d].%s", i, key);
    if (!f || cJSON_IsNull(f))
        return DRV_OK;
    if (!cJSON_IsObject(f))
        return bad(err, what, p, "must be an object");
    drv_err_t rc;
    if ((rc = check_name_list(f, "caps", what, p, err)) != DRV_OK ||
        (rc = check_name_list(f, "arches", what, p, err)) != DRV_OK)
        return rc;
    const cJSON *mk = cJSON_GetObjectItemCaseSensitive(f, "minKernel");
    if (mk && !cJSON_IsNull(mk) && (!cJSON_IsString(mk) || !kernel_version_ok(mk->valuestring))) {
        drv_fmt_cut(p, sizeof(p), "syscalls[%d].%s.minKernel", i, key);
        return bad(err, what, p, "must be a kernel version such as \"5.8\"");
    }
    return DRV_OK;
}

static drv_err_t check_errno(const cJSON *obj, const char *key, const char *what, const char *path,
                             drv_error_t *err)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (e && !uint_ok(e, 4095)) {
        char p[128];
        drv_fmt_cut(p, sizeof(p), "%s%s%s", path, *path ? "." : "", key);
        return bad(err, what, p, "must be an errno number 0..4095");
    }
    return DRV_OK;
}

static drv_err_t check_rule(const cJSON *r, int i, const char *what, drv_error_t *err)
{
    char p[128];
    drv_fmt_cut(p, sizeof(p), "syscalls[%d]", i);
    if (!cJSON_IsObject(r))
        return bad(err, what, p, "must be an object");
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(r, "names");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(r, "name");
    if (names) {
        if (!cJSON_IsArray(names) || !names->child) {
            drv_fmt_cut(p, sizeof(p), "syscalls[%d].names", i);
            return bad(err, what, p, "must be a non-empty array of syscall names");
        }
        int j = 0;
        for (const cJSON *n = names->child; n; n = n->next, j++)
            if (!cJSON_IsString(n) || !name_ok(n->valuestring) || j >= MAX_NAMES) {
                drv_fmt_cut(p, sizeof(p), "syscalls[%d].names[%d]", i, j);
                return bad(err, what, p, "must be a syscall name");
            }
    } else if (!cJSON_IsString(name) || !name_ok(name->valuestring)) {
        return bad(err, what, p, "needs \"names\" (or \"name\")");
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(r, "action");
    if (!cJSON_IsString(act) || !drv_namelist_has(actions, act->valuestring)) {
        drv_fmt_cut(p, sizeof(p), "syscalls[%d].action", i);
        return bad(err, what, p, "must be a SCMP_ACT_* action");
    }
    drv_err_t rc = check_errno(r, "errnoRet", what, p, err);
    if (rc != DRV_OK)
        return rc;
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(r, "args");
    if (args && !cJSON_IsNull(args)) {
        if (!cJSON_IsArray(args) || cJSON_GetArraySize(args) > MAX_ARGS) {
            drv_fmt_cut(p, sizeof(p), "syscalls[%d].args", i);
            return bad(err, what, p, "must be an array of at most 6 argument conditions");
        }
        int j = 0;
        for (const cJSON *a = args->child; a; a = a->next, j++) {
            drv_fmt_cut(p, sizeof(p), "syscalls[%d].args[%d]", i, j);
            const cJSON *op = cJSON_GetObjectItemCaseSensitive(a, "op");
            if (!cJSON_IsObject(a))
                return bad(err, what, p, "must be an object");
            if (!uint_ok(cJSON_GetObjectItemCaseSensitive(a, "index"), 5))
                return bad(err, what, p, "index: must be 0..5");
            /* Values beyond 2^53 cannot be held exactly by JSON numbers here. */
            if (!uint_ok(cJSON_GetObjectItemCaseSensitive(a, "value"), 9007199254740992.0))
                return bad(err, what, p, "value: must be a whole number 0..2^53");
            const cJSON *v2 = cJSON_GetObjectItemCaseSensitive(a, "valueTwo");
            if (v2 && !uint_ok(v2, 9007199254740992.0))
                return bad(err, what, p, "valueTwo: must be a whole number 0..2^53");
            if (!cJSON_IsString(op) || !drv_namelist_has(ops, op->valuestring))
                return bad(err, what, p, "op: must be a SCMP_CMP_* operator");
        }
    }
    if ((rc = check_filter(r, "includes", what, i, err)) != DRV_OK ||
        (rc = check_filter(r, "excludes", what, i, err)) != DRV_OK)
        return rc;
    return DRV_OK;
}

static drv_err_t check_profile(const cJSON *root, const char *what, drv_error_t *err)
{
    if (!cJSON_IsObject(root))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: must be a JSON object", what);
    const cJSON *da = cJSON_GetObjectItemCaseSensitive(root, "defaultAction");
    if (!cJSON_IsString(da) || !drv_namelist_has(actions, da->valuestring))
        return bad(err, what, "defaultAction", "must be a SCMP_ACT_* action");
    drv_err_t rc = check_errno(root, "defaultErrnoRet", what, "", err);
    if (rc != DRV_OK)
        return rc;
    const cJSON *am = cJSON_GetObjectItemCaseSensitive(root, "archMap");
    if (am && !cJSON_IsNull(am)) {
        if (!cJSON_IsArray(am))
            return bad(err, what, "archMap", "must be an array");
        int i = 0;
        for (const cJSON *e = am->child; e; e = e->next, i++) {
            char p[64];
            drv_fmt_cut(p, sizeof(p), "archMap[%d]", i);
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, "architecture");
            if (!cJSON_IsObject(e) || !cJSON_IsString(a) || !name_ok(a->valuestring))
                return bad(err, what, p, "needs an \"architecture\" name");
            if ((rc = check_name_list(e, "subArchitectures", what, p, err)) != DRV_OK)
                return rc;
        }
    }
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(root, "syscalls");
    if (!cJSON_IsArray(sc))
        return bad(err, what, "syscalls", "must be an array");
    int i = 0;
    for (const cJSON *r = sc->child; r; r = r->next, i++) {
        if (i >= MAX_RULES)
            return bad(err, what, "syscalls", "more than 4096 rules");
        if ((rc = check_rule(r, i, what, err)) != DRV_OK)
            return rc;
    }
    return DRV_OK;
}

drv_err_t drv_seccomp_parse(const char *data, size_t len, const char *what,
                            drv_seccomp_profile_t **out, drv_error_t *err)
{
    if (!what)
        what = "seccomp profile";
    if (!data || len > DRV_SECCOMP_MAX_BYTES)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: larger than %u bytes", what,
                             DRV_SECCOMP_MAX_BYTES);
    cJSON *root = cJSON_ParseWithLength(data, len);
    if (!root)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: not valid JSON", what);
    drv_err_t rc = check_profile(root, what, err);
    if (rc != DRV_OK) {
        cJSON_Delete(root);
        return rc;
    }
    drv_seccomp_profile_t *p = calloc(1, sizeof(*p));
    if (!p) {
        cJSON_Delete(root);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s: out of memory", what);
    }
    p->root = root;
    *out = p;
    return DRV_OK;
}

drv_err_t drv_seccomp_load(const char *path, drv_seccomp_profile_t **out, drv_error_t *err)
{
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    drv_err_t rc = drv_file_read_capped(path, DRV_SECCOMP_MAX_BYTES, &data, &len, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "seccomp profile %s", path);
    return drv_seccomp_parse(data, len, path, out, err);
}

void drv_seccomp_free(drv_seccomp_profile_t *p)
{
    if (!p)
        return;
    cJSON_Delete(p->root);
    free(p);
}

/* ---- building ---- */

struct arch_info {
    char names[40]; /* accepted spellings: a name list (drover/namelist.h) */
    char go[8];     /* the arch name the profile's includes/excludes use */
    char scmp[24];
};

static const struct arch_info arch_table[] = {
    {"x86_64\0amd64\0", "amd64", "SCMP_ARCH_X86_64"},
    {"aarch64\0arm64\0armv8l\0", "arm64", "SCMP_ARCH_AARCH64"},
    {"arm\0armv7l\0armv6l\0armhf\0armel\0", "arm", "SCMP_ARCH_ARM"},
};

static const struct arch_info *arch_lookup(const char *arch, char *buf, size_t bufsz)
{
    if (!arch) {
        struct utsname u;
        if (uname(&u) != 0)
            return NULL;
        if (drv_fmt(buf, bufsz, "%s", u.machine) != DRV_OK)
            return NULL;
        arch = buf;
    }
    for (size_t i = 0; i < sizeof(arch_table) / sizeof(arch_table[0]); i++)
        if (drv_namelist_has(arch_table[i].names, arch))
            return &arch_table[i];
    return NULL;
}

const char *drv_seccomp_arch_name(const char *arch)
{
    char buf[65];
    const struct arch_info *a = arch_lookup(arch, buf, sizeof(buf));
    return a ? a->scmp : NULL;
}

/* major*1000+minor, or -1. */
static long kernel_code(const char *s)
{
    unsigned a = 0, b = 0;
    if (sscanf(s, "%u.%u", &a, &b) != 2 || a >= 1000 || b >= 1000)
        return -1;
    return (long)a * 1000 + b;
}

static bool list_has(const cJSON *a, const char *s)
{
    for (const cJSON *e = cJSON_IsArray(a) ? a->child : NULL; e; e = e->next)
        if (!strcmp(e->valuestring, s))
            return true;
    return false;
}

static bool caps_have(const drv_seccomp_target_t *t, const char *cap)
{
    for (size_t i = 0; i < t->n_caps; i++)
        if (t->caps[i] && !strcmp(t->caps[i], cap))
            return true;
    return false;
}

/* moby's rule order: excluded arches, included arches, excluded caps (any present), excluded
 * minKernel (kernel at or above), included caps (all present), included minKernel. */
static bool rule_applies(const cJSON *r, const struct arch_info *a, const drv_seccomp_target_t *t,
                         long kernel)
{
    const cJSON *inc = cJSON_GetObjectItemCaseSensitive(r, "includes");
    const cJSON *exc = cJSON_GetObjectItemCaseSensitive(r, "excludes");
    const cJSON *ea = cJSON_GetObjectItemCaseSensitive(exc, "arches");
    const cJSON *ia = cJSON_GetObjectItemCaseSensitive(inc, "arches");
    if (list_has(ea, a->go))
        return false;
    if (cJSON_GetArraySize(ia) > 0 && !list_has(ia, a->go))
        return false;
    const cJSON *ec = cJSON_GetObjectItemCaseSensitive(exc, "caps");
    for (const cJSON *c = cJSON_IsArray(ec) ? ec->child : NULL; c; c = c->next)
        if (caps_have(t, c->valuestring))
            return false;
    const cJSON *emk = cJSON_GetObjectItemCaseSensitive(exc, "minKernel");
    if (cJSON_IsString(emk) && kernel >= kernel_code(emk->valuestring))
        return false;
    const cJSON *ic = cJSON_GetObjectItemCaseSensitive(inc, "caps");
    for (const cJSON *c = cJSON_IsArray(ic) ? ic->child : NULL; c; c = c->next)
        if (!caps_have(t, c->valuestring))
            return false;
    const cJSON *imk = cJSON_GetObjectItemCaseSensitive(inc, "minKernel");
    if (cJSON_IsString(imk) && kernel < kernel_code(imk->valuestring))
        return false;
    return true;
}

static bool add_rule(cJSON *list, const cJSON *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(list, o)) {
        cJSON_Delete(o);
        return false;
    }
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(r, "names");
    cJSON *n;
    if (names) {
        n = cJSON_Duplicate(names, true);
    } else {
        const char *one = cJSON_GetObjectItemCaseSensitive(r, "name")->valuestring;
        n = cJSON_CreateStringArray(&one, 1);
    }
    if (!n || !cJSON_AddItemToObject(o, "names", n)) {
        cJSON_Delete(n);
        return false;
    }
    if (!cJSON_AddStringToObject(o, "action",
                                 cJSON_GetObjectItemCaseSensitive(r, "action")->valuestring))
        return false;
    const cJSON *er = cJSON_GetObjectItemCaseSensitive(r, "errnoRet");
    if (er && !cJSON_AddNumberToObject(o, "errnoRet", er->valuedouble))
        return false;
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(r, "args");
    if (cJSON_IsArray(args) && args->child) {
        cJSON *oa = cJSON_AddArrayToObject(o, "args");
        if (!oa)
            return false;
        for (const cJSON *a = args->child; a; a = a->next) {
            cJSON *x = cJSON_CreateObject();
            if (!x || !cJSON_AddItemToArray(oa, x)) {
                cJSON_Delete(x);
                return false;
            }
            const cJSON *v2 = cJSON_GetObjectItemCaseSensitive(a, "valueTwo");
            if (!cJSON_AddNumberToObject(
                    x, "index", cJSON_GetObjectItemCaseSensitive(a, "index")->valuedouble) ||
                !cJSON_AddNumberToObject(
                    x, "value", cJSON_GetObjectItemCaseSensitive(a, "value")->valuedouble) ||
                !cJSON_AddNumberToObject(x, "valueTwo", v2 ? v2->valuedouble : 0) ||
                !cJSON_AddStringToObject(x, "op",
                                         cJSON_GetObjectItemCaseSensitive(a, "op")->valuestring))
                return false;
        }
    }
    return true;
}

static bool add_arches(cJSON *o, const cJSON *root, const struct arch_info *a)
{
    cJSON *list = cJSON_AddArrayToObject(o, "architectures");
    if (!list || !cJSON_AddItemToArray(list, cJSON_CreateString(a->scmp)))
        return false;
    const cJSON *am = cJSON_GetObjectItemCaseSensitive(root, "archMap");
    for (const cJSON *e = cJSON_IsArray(am) ? am->child : NULL; e; e = e->next) {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(e, "architecture")->valuestring, a->scmp))
            continue;
        const cJSON *subs = cJSON_GetObjectItemCaseSensitive(e, "subArchitectures");
        for (const cJSON *s = cJSON_IsArray(subs) ? subs->child : NULL; s; s = s->next) {
            if (list_has(list, s->valuestring))
                continue;
            cJSON *n = cJSON_CreateString(s->valuestring);
            if (!n || !cJSON_AddItemToArray(list, n)) {
                cJSON_Delete(n);
                return false;
            }
        }
    }
    return true;
}

drv_err_t drv_seccomp_build(const drv_seccomp_profile_t *p, const drv_seccomp_target_t *target,
                            cJSON **out, drv_error_t *err)
{
    if (!p || !target || !out)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "seccomp: missing profile or target");
    char machine[65];
    const struct arch_info *a = arch_lookup(target->arch, machine, sizeof(machine));
    if (!a)
        return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                             "seccomp: architecture \"%s\" is not supported (x86_64, aarch64, arm)",
                             target->arch ? target->arch : machine);
    long kernel;
    if (target->kernel_release) {
        kernel = kernel_code(target->kernel_release);
    } else {
        struct utsname u;
        kernel = uname(&u) == 0 ? kernel_code(u.release) : -1;
    }
    if (kernel < 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "seccomp: cannot read kernel release \"%s\"",
                             target->kernel_release ? target->kernel_release : "(uname)");

    cJSON *o = cJSON_CreateObject();
    const cJSON *root = p->root;
    const cJSON *der = cJSON_GetObjectItemCaseSensitive(root, "defaultErrnoRet");
    bool ok = o &&
              cJSON_AddStringToObject(
                  o, "defaultAction",
                  cJSON_GetObjectItemCaseSensitive(root, "defaultAction")->valuestring) &&
              (!der || cJSON_AddNumberToObject(o, "defaultErrnoRet", der->valuedouble)) &&
              add_arches(o, root, a);
    cJSON *list = ok ? cJSON_AddArrayToObject(o, "syscalls") : NULL;
    ok = list != NULL;
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(root, "syscalls");
    for (const cJSON *r = sc->child; r && ok; r = r->next)
        if (rule_applies(r, a, target, kernel))
            ok = add_rule(list, r);
    if (!ok) {
        cJSON_Delete(o);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "seccomp: out of memory");
    }
    *out = o;
    return DRV_OK;
}
