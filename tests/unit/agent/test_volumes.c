/* Tests of pod volumes: configMap and secret files in the kubelet's atomic layout, updates that
 * swap "..data" in one step, hostPath type checks, emptyDir directories and tmpfs mounts, and
 * hostile input (item paths, planted symlinks) refused or defused with the outside untouched.
 * Mounting needs root: those tests run in a forked child inside its own mount namespace. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/magic.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "drover/base64.h"
#include "drover/model.h"
#include "pod/volumes.h"

#define CANARY_DATA "canary\n"

struct fx {
    char base[64];
    char pod_dir[PATH_MAX];
    char vols[PATH_MAX];
    char outside[PATH_MAX];
    char canary[PATH_MAX];
    cJSON *cms;
    cJSON *secrets;
    drv_volume_sources_t src;
};

/* ---- helpers ----------------------------------------------------------------------------- */

static void pathf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pathf(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && n < PATH_MAX);
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        return rmdir(path);
    return unlink(path);
}

static void rm_rf(const char *path)
{
    (void)nftw(path, rm_cb, 32, FTW_DEPTH | FTW_PHYS);
}

static void write_text(const char *path, const char *data, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* Reads a small file (following symlinks) into buf; returns its length or -1. */
static ssize_t slurp(const char *path, char *buf, size_t bufsz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, bufsz - 1);
    close(fd);
    if (n >= 0)
        buf[n] = '\0';
    return n;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* JSON written with single quotes (the tests' data has no apostrophes). */
static cJSON *parse_q(const char *text)
{
    char *t = strdup(text);
    assert_non_null(t);
    for (char *p = t; *p; p++)
        if (*p == '\'')
            *p = '"';
    cJSON *o = cJSON_Parse(t);
    free(t);
    assert_non_null(o);
    return o;
}

static cJSON *normalized(const char *text)
{
    cJSON *o = parse_q(text);
    drv_diags_t d = {0};
    drv_err_t r = drv_model_normalize(o, &d);
    if (r != DRV_OK) {
        char *m = drv_diags_format(&d, NULL);
        fail_msg("normalize: %s", m ? m : "?");
    }
    drv_diags_free(&d);
    return o;
}

/* A Pod with the given spec.volumes (JSON, single quotes); normalized unless raw. */
static cJSON *pod_with(const char *volumes, bool raw)
{
    char text[8192];
    int n = snprintf(text, sizeof text,
                     "{'apiVersion':'v1','kind':'Pod','metadata':{'name':'p'},'spec':{"
                     "'containers':[{'name':'c','image':'alpine'}],'volumes':%s}}",
                     volumes);
    assert_true(n > 0 && n < (int)sizeof text);
    return raw ? parse_q(text) : normalized(text);
}

static void put_object(cJSON *map, const char *text)
{
    cJSON *o = normalized(text);
    const char *name = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), "name")->valuestring;
    cJSON_DeleteItemFromObjectCaseSensitive(map, name);
    cJSON_AddItemToObject(map, name, o);
}

static char *b64(const char *s)
{
    char *e = drv_base64_encode(s, strlen(s));
    assert_non_null(e);
    return e;
}

/* A Secret named name with data key=value pairs (NULL-terminated list). */
static void put_secret(struct fx *f, const char *name, ...)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "v1");
    cJSON_AddStringToObject(o, "kind", "Secret");
    cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(cJSON_GetObjectItem(o, "metadata"), "name", name);
    cJSON *data = cJSON_AddObjectToObject(o, "data");
    va_list ap;
    va_start(ap, name);
    for (const char *k; (k = va_arg(ap, const char *)) != NULL;) {
        char *v = b64(va_arg(ap, const char *));
        cJSON_AddStringToObject(data, k, v);
        free(v);
    }
    va_end(ap);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    put_object(f->secrets, text);
    free(text);
}

static void assert_outside_untouched(struct fx *f)
{
    char buf[64];
    struct stat st;
    assert_int_equal(lstat(f->canary, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(slurp(f->canary, buf, sizeof buf), (ssize_t)strlen(CANARY_DATA));
    assert_string_equal(buf, CANARY_DATA);
    DIR *d = opendir(f->outside);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            assert_string_equal(de->d_name, "canary");
    closedir(d);
}

/* vol/key is a symlink "..data/key" and reads content with the given mode (of the file). */
static void assert_key(const char *vol, const char *key, const char *content, mode_t mode)
{
    char p[PATH_MAX], target[PATH_MAX], want[PATH_MAX], buf[4096];
    pathf(p, "%s/%s", vol, key);
    ssize_t n = readlink(p, target, sizeof target - 1);
    if (n < 0)
        fail_msg("%s: not a symlink (%s)", p, strerror(errno));
    target[n] = '\0';
    pathf(want, "..data/%s", key);
    assert_string_equal(target, want);
    n = slurp(p, buf, sizeof buf);
    if (n < 0)
        fail_msg("%s: %s", p, strerror(errno));
    assert_int_equal(n, (ssize_t)strlen(content));
    assert_memory_equal(buf, content, (size_t)n);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, mode);
}

/* The timestamped directory "..data" points at (into out). */
static void data_target(const char *vol, char *out)
{
    char p[PATH_MAX];
    pathf(p, "%s/..data", vol);
    ssize_t n = readlink(p, out, PATH_MAX - 1);
    assert_true(n > 2);
    out[n] = '\0';
    assert_memory_equal(out, "..", 2);
    assert_null(strchr(out, '/'));
}

/* Names in dir other than . and .., sorted and joined by ",". */
static void list_dir(const char *dir, char *out, size_t outsz)
{
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort);
    assert_true(n >= 0);
    out[0] = '\0';
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        const char *nm = list[i]->d_name;
        if (strcmp(nm, ".") && strcmp(nm, "..")) {
            int w = snprintf(out + len, outsz - len, "%s%s", len ? "," : "", nm);
            assert_true(w >= 0 && (size_t)w < outsz - len);
            len += (size_t)w;
        }
        free(list[i]);
    }
    free(list);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->base, sizeof f->base, "/tmp/drv-vol-XXXXXX");
    assert_non_null(mkdtemp(f->base));
    pathf(f->pod_dir, "%s/pod", f->base);
    pathf(f->vols, "%s/volumes", f->pod_dir);
    pathf(f->outside, "%s/outside", f->base);
    pathf(f->canary, "%s/canary", f->outside);
    assert_int_equal(mkdir(f->outside, 0755), 0);
    write_text(f->canary, CANARY_DATA, 0644);
    f->cms = cJSON_CreateObject();
    f->secrets = cJSON_CreateObject();
    f->src.configmaps = f->cms;
    f->src.secrets = f->secrets;
    put_object(f->cms, "{'apiVersion':'v1','kind':'ConfigMap','metadata':{'name':'app'},"
                       "'data':{'app.conf':'port=80\\n','motd':'hello'}}");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_volumes_teardown(f->pod_dir, &err) != DRV_OK)
        print_message("teardown: %s\n", drv_error_msg(&err));
    rm_rf(f->base);
    cJSON_Delete(f->cms);
    cJSON_Delete(f->secrets);
    free(f);
    return 0;
}

static void prepare_ok(struct fx *f, const cJSON *pod)
{
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t r = drv_volumes_prepare(pod, f->pod_dir, &f->src, &err);
    if (r != DRV_OK)
        fail_msg("prepare: %s", drv_error_msg(&err));
}

static drv_err_t prepare_err(struct fx *f, const cJSON *pod, drv_error_t *err)
{
    drv_error_clear(err);
    return drv_volumes_prepare(pod, f->pod_dir, &f->src, err);
}

static void assert_msg_has(const drv_error_t *err, const char *needle)
{
    if (!strstr(drv_error_msg(err), needle))
        fail_msg("error \"%s\" lacks \"%s\"", drv_error_msg(err), needle);
}

/* ---- configMap volumes ------------------------------------------------------------------- */

static void test_configmap_files(void **state)
{
    struct fx *f = *state;
    cJSON *pod = pod_with("[{'name':'cfg','configMap':{'name':'app'}}]", false);
    prepare_ok(f, pod);
    char vol[PATH_MAX], ts[PATH_MAX], p[PATH_MAX], names[1024];
    pathf(vol, "%s/cfg", f->vols);
    assert_key(vol, "app.conf", "port=80\n", 0644);
    assert_key(vol, "motd", "hello", 0644);
    data_target(vol, ts);
    list_dir(vol, names, sizeof names);
    char want[PATH_MAX];
    pathf(want, "%s,..data,app.conf,motd", ts);
    assert_string_equal(names, want);
    /* The files themselves live in the timestamped directory. */
    pathf(p, "%s/%s/motd", vol, ts);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    /* The volumes directory is private to the agent; the volume readable by any user. */
    assert_int_equal(stat(f->vols, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(stat(vol, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    /* Preparing again (agent restart) changes nothing. */
    prepare_ok(f, pod);
    char ts2[PATH_MAX];
    data_target(vol, ts2);
    assert_string_equal(ts, ts2);
    cJSON_Delete(pod);
}

static void test_configmap_items_nested_modes(void **state)
{
    struct fx *f = *state;
    cJSON *pod = pod_with("[{'name':'cfg','configMap':{'name':'app','items':["
                          "{'key':'app.conf','path':'conf/nested/app.conf','mode':384},"
                          "{'key':'motd','path':'etc//motd.txt'}]}}]",
                          false);
    prepare_ok(f, pod);
    char vol[PATH_MAX], p[PATH_MAX], buf[256], names[1024], ts[PATH_MAX], want[PATH_MAX];
    pathf(vol, "%s/cfg", f->vols);
    data_target(vol, ts);
    /* Only the items, under their paths; top-level names are symlinks into ..data. */
    list_dir(vol, names, sizeof names);
    pathf(want, "%s,..data,conf,etc", ts);
    assert_string_equal(names, want);
    pathf(p, "%s/conf", vol);
    ssize_t n = readlink(p, buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "..data/conf");
    struct stat st;
    pathf(p, "%s/conf/nested/app.conf", vol);
    assert_int_equal(slurp(p, buf, sizeof buf), 8);
    assert_string_equal(buf, "port=80\n");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    pathf(p, "%s/conf/nested", vol);
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0755);
    pathf(p, "%s/etc/motd.txt", vol);
    assert_int_equal(slurp(p, buf, sizeof buf), 5);
    assert_string_equal(buf, "hello");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    cJSON_Delete(pod);
}

static void test_configmap_default_mode(void **state)
{
    struct fx *f = *state;
    cJSON *pod = pod_with("[{'name':'cfg','configMap':{'name':'app','defaultMode':288}}]", false);
    prepare_ok(f, pod);
    char vol[PATH_MAX];
    pathf(vol, "%s/cfg", f->vols);
    assert_key(vol, "app.conf", "port=80\n", 0440);
    assert_key(vol, "motd", "hello", 0440);
    cJSON_Delete(pod);
}

static void test_configmap_binary_data(void **state)
{
    struct fx *f = *state;
    /* "\x00\x01\xfeBIN" */
    put_object(f->cms, "{'apiVersion':'v1','kind':'ConfigMap','metadata':{'name':'bin'},"
                       "'data':{'text':'t'},'binaryData':{'blob.bin':'AAH+QklO'}}");
    cJSON *pod = pod_with("[{'name':'b','configMap':{'name':'bin'}}]", false);
    prepare_ok(f, pod);
    char vol[PATH_MAX], p[PATH_MAX], buf[64];
    pathf(vol, "%s/b", f->vols);
    assert_key(vol, "text", "t", 0644);
    pathf(p, "%s/blob.bin", vol);
    assert_int_equal(slurp(p, buf, sizeof buf), 6);
    assert_memory_equal(buf,
                        "\x00\x01\xfe"
                        "BIN",
                        6);
    cJSON_Delete(pod);
}

static void test_configmap_optional_missing(void **state)
{
    struct fx *f = *state;
    cJSON *pod = pod_with("[{'name':'cfg','configMap':{'name':'nope','optional':true}}]", false);
    prepare_ok(f, pod);
    char vol[PATH_MAX], names[1024], ts[PATH_MAX], want[PATH_MAX];
    pathf(vol, "%s/cfg", f->vols);
    data_target(vol, ts);
    list_dir(vol, names, sizeof names);
    pathf(want, "%s,..data", ts);
    assert_string_equal(names, want);
    char inner[PATH_MAX];
    pathf(inner, "%s/%s", vol, ts);
    list_dir(inner, names, sizeof names);
    assert_string_equal(names, "");
    cJSON_Delete(pod);
}

static void test_configmap_missing_notfound(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *pod = pod_with("[{'name':'cfg','configMap':{'name':'nope'}}]", false);
    assert_int_equal(prepare_err(f, pod, &err), DRV_ERR_NOTFOUND);
    assert_string_equal(drv_error_msg(&err), "volume \"cfg\": configMap \"nope\" not found");
    char p[PATH_MAX];
    pathf(p, "%s/cfg", f->vols);
    assert_false(exists(p));
    cJSON_Delete(pod);

    pod = pod_with("[{'name':'s','secret':{'secretName':'gone'}}]", false);
    assert_int_equal(prepare_err(f, pod, &err), DRV_ERR_NOTFOUND);
    assert_string_equal(drv_error_msg(&err), "volume \"s\": secret \"gone\" not found");
    cJSON_Delete(pod);
}

static void test_configmap_missing_key(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *pod = pod_with("[{'name':'cfg','configMap':{'name':'app','items':["
                          "{'key':'motd','path':'m'},{'key':'absent','path':'a'}]}}]",
                          false);
    assert_int_equal(prepare_err(f, pod, &err), DRV_ERR_NOTFOUND);
    assert_string_equal(drv_error_msg(&err),
                        "volume \"cfg\": configMap \"app\" has no key \"absent\"");
    char vol[PATH_MAX];
    pathf(vol, "%s/cfg", f->vols);
    assert_false(exists(vol));
    cJSON_Delete(pod);

    /* Optional: the missing key is skipped, the others are there. */
    pod = pod_with("[{'name':'cfg','configMap':{'name':'app','optional':true,'items':["
                   "{'key':'motd','path':'m'},{'key':'absent','path':'a'}]}}]",
                   false);
    prepare_ok(f, pod);
    char p[PATH_MAX];
    pathf(p, "%s/m", vol);
    char buf[64];
    assert_int_equal(slurp(p, buf, sizeof buf), 5);
    pathf(p, "%s/a", vol);
    assert_false(exists(p));
    cJSON_Delete(pod);
}

static void test_items_conflict_refused(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *pod = pod_with("[{'name':'cfg','configMap':{'name':'app','items':["
                          "{'key':'motd','path':'x'},{'key':'app.conf','path':'x/y'}]}}]",
                          false);
    assert_int_equal(prepare_err(f, pod, &err), DRV_ERR_INVALID);
    assert_msg_has(&err, "volume \"cfg\": configMap \"app\": path \"x/y\" conflicts with \"x\"");
    cJSON_Delete(pod);
}

/* ---- updates ----------------------------------------------------------------------------- */

static void test_update_swaps_data(void **state)
{
    struct fx *f = *state;
    cJSON *pod = pod_with("[{'name':'cfg','configMap':{'name':'app'}}]", false);
    prepare_ok(f, pod);
    char vol[PATH_MAX], old_ts[PATH_MAX], new_ts[PATH_MAX], p[PATH_MAX], names[1024],
        want[PATH_MAX];
    pathf(vol, "%s/cfg", f->vols);
    data_target(vol, old_ts);

    put_object(f->cms, "{'apiVersion':'v1','kind':'ConfigMap','metadata':{'name':'app'},"
                       "'data':{'app.conf':'port=8080\\n','new.key':'fresh'}}");
    bool changed = false;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_volumes_update(pod, f->pod_dir, &f->src, &changed, &err), DRV_OK);
    assert_true(changed);
    data_target(vol, new_ts);
    assert_string_not_equal(old_ts, new_ts);
    assert_key(vol, "app.conf", "port=8080\n", 0644);
    assert_key(vol, "new.key", "fresh", 0644);
    /* The removed key and the old timestamped directory are gone. */
    pathf(p, "%s/motd", vol);
    assert_false(exists(p));
    pathf(p, "%s/%s", vol, old_ts);
    assert_false(exists(p));
    list_dir(vol, names, sizeof names);
    pathf(want, "%s,..data,app.conf,new.key", new_ts);
    assert_string_equal(names, want);
    cJSON_Delete(pod);
}

static void test_update_no_change(void **state)
{
    struct fx *f = *state;
    cJSON *pod =
        pod_with("[{'name':'cfg','configMap':{'name':'app'}},{'name':'e','emptyDir':{}}]", false);
    prepare_ok(f, pod);
    char vol[PATH_MAX], ts[PATH_MAX], ts2[PATH_MAX];
    pathf(vol, "%s/cfg", f->vols);
    data_target(vol, ts);
    bool changed = true;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_volumes_update(pod, f->pod_dir, &f->src, &changed, &err), DRV_OK);
    assert_false(changed);
    data_target(vol, ts2);
    assert_string_equal(ts, ts2);

    /* A file edited behind the agent's back counts as a change and is repaired. */
    char p[PATH_MAX];
    pathf(p, "%s/%s/motd", vol, ts);
    assert_int_equal(chmod(p, 0666), 0);
    assert_int_equal(drv_volumes_update(pod, f->pod_dir, &f->src, &changed, &err), DRV_OK);
    assert_true(changed);
    assert_key(vol, "motd", "hello", 0644);

    /* So does a stray entry next to the keys (a crash's leftover): it is removed. */
    pathf(p, "%s/..data_tmp", vol);
    assert_int_equal(symlink("nowhere", p), 0);
    pathf(p, "%s/stray", vol);
    write_text(p, "x", 0644);
    assert_int_equal(drv_volumes_update(pod, f->pod_dir, &f->src, &changed, &err), DRV_OK);
    assert_true(changed);
    char names[1024], want[PATH_MAX];
    data_target(vol, ts);
    list_dir(vol, names, sizeof names);
    pathf(want, "%s,..data,app.conf,motd", ts);
    assert_string_equal(names, want);
    cJSON_Delete(pod);
}

static void test_update_missing_object(void **state)
{
    struct fx *f = *state;
    cJSON *pod = pod_with("[{'name':'cfg','configMap':{'name':'app'}},"
                          "{'name':'opt','configMap':{'name':'app','optional':true}}]",
                          false);
    prepare_ok(f, pod);
    cJSON_DeleteItemFromObjectCaseSensitive(f->cms, "app");
    bool changed = false;
    drv_error_t err = DRV_ERROR_INIT;
    /* The required one keeps its content and reports; the optional one is emptied. */
    assert_int_equal(drv_volumes_update(pod, f->pod_dir, &f->src, &changed, &err),
                     DRV_ERR_NOTFOUND);
    assert_string_equal(drv_error_msg(&err), "volume \"cfg\": configMap \"app\" not found");
    assert_true(changed);
    char vol[PATH_MAX], p[PATH_MAX];
    pathf(vol, "%s/cfg", f->vols);
    assert_key(vol, "motd", "hello", 0644);
    pathf(p, "%s/opt/motd", f->vols);
    assert_false(exists(p));

    /* A volume that was never prepared is reported, not created. */
    cJSON *other = pod_with("[{'name':'late','configMap':{'name':'x','optional':true}}]", false);
    assert_int_equal(drv_volumes_update(other, f->pod_dir, &f->src, &changed, &err),
                     DRV_ERR_NOTFOUND);
    assert_string_equal(drv_error_msg(&err), "volume \"late\": not prepared");
    assert_false(changed);
    cJSON_Delete(other);
    cJSON_Delete(pod);
}

/* ---- hostile input ----------------------------------------------------------------------- */

static void test_malicious_item_paths(void **state)
{
    struct fx *f = *state;
    static const char *const bad[] = {"../../etc/x", "/etc/x", "a/../../x", "..data/x",
                                      "..",          ".",      ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char vols[512];
        snprintf(vols, sizeof vols,
                 "[{'name':'cfg','configMap':{'name':'app','items':[{'key':'motd','path':'%s'}]}}]",
                 bad[i]);
        cJSON *pod = pod_with(vols, true); /* the model would refuse these; defend anyway */
        drv_error_t err = DRV_ERROR_INIT;
        assert_int_equal(prepare_err(f, pod, &err), DRV_ERR_INVALID);
        char want[256];
        snprintf(want, sizeof want,
                 "volume \"cfg\": configMap \"app\": items[0].path \"%s\": must be a relative "
                 "path without '..'",
                 bad[i]);
        assert_string_equal(drv_error_msg(&err), want);
        char p[PATH_MAX];
        pathf(p, "%s/cfg", f->vols);
        assert_false(exists(p));
        cJSON_Delete(pod);
    }
    assert_outside_untouched(f);
    assert_false(exists("/etc/x"));
}

static void test_planted_symlinks_not_followed(void **state)
{
    struct fx *f = *state;
    cJSON *pod = pod_with("[{'name':'cfg','configMap':{'name':'app'}}]", false);
    prepare_ok(f, pod);
    char vol[PATH_MAX], p[PATH_MAX], ts[PATH_MAX];
    pathf(vol, "%s/cfg", f->vols);
    data_target(vol, ts);
    /* A key replaced by a symlink to a file outside, "..data" pointed at the outside
     * directory, and a file of the timestamped directory replaced by a symlink outside. */
    pathf(p, "%s/motd", vol);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(symlink(f->canary, p), 0);
    pathf(p, "%s/%s/app.conf", vol, ts);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(symlink(f->canary, p), 0);
    pathf(p, "%s/..data", vol);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(symlink(f->outside, p), 0);
    /* A planted directory in place of a new key's symlink. */
    pathf(p, "%s/new.key", vol);
    assert_int_equal(mkdir(p, 0755), 0);

    put_object(f->cms, "{'apiVersion':'v1','kind':'ConfigMap','metadata':{'name':'app'},"
                       "'data':{'app.conf':'x=1','motd':'changed','new.key':'n'}}");
    bool changed = false;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_volumes_update(pod, f->pod_dir, &f->src, &changed, &err), DRV_OK);
    assert_true(changed);
    assert_outside_untouched(f);
    assert_key(vol, "motd", "changed", 0644);
    assert_key(vol, "app.conf", "x=1", 0644);
    assert_key(vol, "new.key", "n", 0644);
    char ts2[PATH_MAX];
    data_target(vol, ts2);
    assert_string_not_equal(ts, ts2);

    /* The volume directory itself replaced by a symlink outside: update refuses it. */
    assert_int_equal(drv_volumes_teardown(f->pod_dir, &err), DRV_OK);
    assert_int_equal(mkdir(f->vols, 0700), 0);
    assert_int_equal(symlink(f->outside, vol), 0);
    assert_int_equal(drv_volumes_update(pod, f->pod_dir, &f->src, &changed, &err),
                     DRV_ERR_NOTFOUND);
    assert_false(changed);
    /* and prepare replaces the symlink by a directory of its own. */
    prepare_ok(f, pod);
    struct stat st;
    assert_int_equal(lstat(vol, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_outside_untouched(f);
    cJSON_Delete(pod);
}

static void test_size_caps(void **state)
{
    struct fx *f = *state;
    size_t big = DRV_VOLUMES_MAX_BYTES / 2 + 10;
    char *val = malloc(big + 1);
    assert_non_null(val);
    memset(val, 'x', big);
    val[big] = '\0';
    /* Two keys of just over half a MiB: each object is under the API's limit only if it is
     * built by hand, so build the object without the model. */
    cJSON *cm = cJSON_CreateObject();
    cJSON *data = cJSON_AddObjectToObject(cm, "data");
    cJSON_AddStringToObject(data, "a", val);
    cJSON_AddStringToObject(data, "b", val);
    cJSON_AddItemToObject(f->cms, "huge", cm);
    free(val);
    cJSON *pod = pod_with("[{'name':'cfg','configMap':{'name':'huge'}}]", false);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(prepare_err(f, pod, &err), DRV_ERR_TOOBIG);
    assert_msg_has(&err, "volume \"cfg\": configMap \"huge\": content over 1048576 bytes");
    char p[PATH_MAX];
    pathf(p, "%s/cfg", f->vols);
    assert_false(exists(p));
    cJSON_Delete(pod);

    /* Too many files. */
    cm = cJSON_CreateObject();
    data = cJSON_AddObjectToObject(cm, "data");
    for (int i = 0; i <= DRV_VOLUMES_MAX_FILES; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        cJSON_AddStringToObject(data, k, "");
    }
    cJSON_AddItemToObject(f->cms, "many", cm);
    pod = pod_with("[{'name':'cfg','configMap':{'name':'many'}}]", false);
    assert_int_equal(prepare_err(f, pod, &err), DRV_ERR_TOOBIG);
    assert_msg_has(&err, "more than 1024 files");
    cJSON_Delete(pod);
}

/* ---- hostPath ---------------------------------------------------------------------------- */

static void test_hostpath_directory_or_create(void **state)
{
    struct fx *f = *state;
    char dir[PATH_MAX], vols[PATH_MAX + 128];
    pathf(dir, "%s/host/data/deep", f->base);
    snprintf(vols, sizeof vols,
             "[{'name':'data','hostPath':{'path':'%s','type':'DirectoryOrCreate'}}]", dir);
    cJSON *pod = pod_with(vols, false);
    mode_t old = umask(077);
    prepare_ok(f, pod);
    umask(old);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0755);
    /* Existing: fine, untouched. */
    prepare_ok(f, pod);
    char out[PATH_MAX];
    assert_int_equal(drv_volumes_host_path(pod, f->pod_dir, "data", out, sizeof out), DRV_OK);
    assert_string_equal(out, dir);
    cJSON_Delete(pod);

    /* DirectoryOrCreate on a file is refused. */
    snprintf(vols, sizeof vols,
             "[{'name':'data','hostPath':{'path':'%s','type':'DirectoryOrCreate'}}]", f->canary);
    pod = pod_with(vols, false);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(prepare_err(f, pod, &err), DRV_ERR_INVALID);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "volume \"data\": hostPath %s: not a directory", f->canary);
    assert_string_equal(drv_error_msg(&err), want);
    cJSON_Delete(pod);
}

static void test_hostpath_files(void **state)
{
    struct fx *f = *state;
    char vols[PATH_MAX + 128], want[PATH_MAX + 128], file[PATH_MAX];
    drv_error_t err = DRV_ERROR_INIT;

    /* File on a directory. */
    snprintf(vols, sizeof vols, "[{'name':'f','hostPath':{'path':'%s','type':'File'}}]",
             f->outside);
    cJSON *pod = pod_with(vols, false);
    assert_int_equal(prepare_err(f, pod, &err), DRV_ERR_INVALID);
    snprintf(want, sizeof want, "volume \"f\": hostPath %s: not a file", f->outside);
    assert_string_equal(drv_error_msg(&err), want);
    cJSON_Delete(pod);

    /* FileOrCreate creates an empty 0644 file, but not its parent. */
    pathf(file, "%s/created.sock", f->base);
    snprintf(vols, sizeof vols, "[{'name':'f','hostPath':{'path':'%s','type':'FileOrCreate'}}]",
             file);
    pod = pod_with(vols, false);
    prepare_ok(f, pod);
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_size, 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    cJSON_Delete(pod);
    pathf(file, "%s/no/such/file", f->base);
    snprintf(vols, sizeof vols, "[{'name':'f','hostPath':{'path':'%s','type':'FileOrCreate'}}]",
             file);
    pod = pod_with(vols, false);
    assert_int_equal(prepare_err(f, pod, &err), DRV_ERR_NOTFOUND);
    cJSON_Delete(pod);

    /* Directory that does not exist. */
    pathf(file, "%s/missing", f->base);
    snprintf(vols, sizeof vols, "[{'name':'d','hostPath':{'path':'%s','type':'Directory'}}]", file);
    pod = pod_with(vols, false);
    assert_int_equal(prepare_err(f, pod, &err), DRV_ERR_NOTFOUND);
    snprintf(want, sizeof want, "volume \"d\": hostPath %s: does not exist (type Directory)", file);
    assert_string_equal(drv_error_msg(&err), want);
    assert_false(exists(file));
    cJSON_Delete(pod);

    /* No type: nothing is checked, and a missing path becomes a directory, as containerd
     * makes it for the kubelet. */
    snprintf(vols, sizeof vols, "[{'name':'d','hostPath':{'path':'%s/a/b'}}]", file);
    pod = pod_with(vols, false);
    prepare_ok(f, pod);
    char made[PATH_MAX];
    pathf(made, "%s/a/b", file);
    struct stat mst;
    assert_int_equal(stat(made, &mst), 0);
    assert_true(S_ISDIR(mst.st_mode));
    cJSON_Delete(pod);
}

static void test_hostpath_devices(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *pod =
        pod_with("[{'name':'null','hostPath':{'path':'/dev/null','type':'CharDevice'}}]", false);
    prepare_ok(f, pod);
    cJSON_Delete(pod);

    pod = pod_with("[{'name':'dev','hostPath':{'path':'/dev/null','type':'BlockDevice'}}]", false);
    assert_int_equal(prepare_err(f, pod, &err), DRV_ERR_INVALID);
    assert_string_equal(drv_error_msg(&err),
                        "volume \"dev\": hostPath /dev/null: not a block device");
    cJSON_Delete(pod);

    char vols[PATH_MAX + 128], want[PATH_MAX + 128];
    snprintf(vols, sizeof vols, "[{'name':'dev','hostPath':{'path':'%s','type':'CharDevice'}}]",
             f->canary);
    pod = pod_with(vols, false);
    assert_int_equal(prepare_err(f, pod, &err), DRV_ERR_INVALID);
    snprintf(want, sizeof want, "volume \"dev\": hostPath %s: not a character device", f->canary);
    assert_string_equal(drv_error_msg(&err), want);
    cJSON_Delete(pod);

    /* A real unix socket passes as Socket; a file does not. */
    char sock[PATH_MAX];
    pathf(sock, "%s/s.sock", f->base);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(sock) < sizeof sa.sun_path);
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    snprintf(vols, sizeof vols, "[{'name':'s','hostPath':{'path':'%s','type':'Socket'}}]", sock);
    pod = pod_with(vols, false);
    prepare_ok(f, pod);
    cJSON_Delete(pod);
    close(fd);
    snprintf(vols, sizeof vols, "[{'name':'s','hostPath':{'path':'%s','type':'Socket'}}]",
             f->canary);
    pod = pod_with(vols, false);
    assert_int_equal(prepare_err(f, pod, &err), DRV_ERR_INVALID);
    assert_msg_has(&err, ": not a socket");
    cJSON_Delete(pod);
}

/* ---- emptyDir, host paths, failure cleanup, teardown ------------------------------------- */

static void test_emptydir_disk(void **state)
{
    struct fx *f = *state;
    cJSON *pod = pod_with("[{'name':'scratch','emptyDir':{}}]", false);
    mode_t old = umask(022);
    prepare_ok(f, pod);
    umask(old);
    char vol[PATH_MAX], p[PATH_MAX], buf[32];
    pathf(vol, "%s/scratch", f->vols);
    struct stat st;
    assert_int_equal(lstat(vol, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0777);
    /* Content survives a second prepare (agent restart). */
    pathf(p, "%s/kept", vol);
    write_text(p, "data", 0600);
    prepare_ok(f, pod);
    assert_int_equal(slurp(p, buf, sizeof buf), 4);
    cJSON_Delete(pod);
}

static void test_host_path_lookup(void **state)
{
    struct fx *f = *state;
    cJSON *pod = pod_with("[{'name':'scratch','emptyDir':{}},"
                          "{'name':'cfg','configMap':{'name':'app'}},"
                          "{'name':'dev','hostPath':{'path':'/dev/null'}}]",
                          false);
    char out[PATH_MAX], want[PATH_MAX];
    assert_int_equal(drv_volumes_host_path(pod, f->pod_dir, "scratch", out, sizeof out), DRV_OK);
    pathf(want, "%s/scratch", f->vols);
    assert_string_equal(out, want);
    assert_int_equal(drv_volumes_host_path(pod, f->pod_dir, "cfg", out, sizeof out), DRV_OK);
    pathf(want, "%s/cfg", f->vols);
    assert_string_equal(out, want);
    assert_int_equal(drv_volumes_host_path(pod, f->pod_dir, "dev", out, sizeof out), DRV_OK);
    assert_string_equal(out, "/dev/null");
    assert_int_equal(drv_volumes_host_path(pod, f->pod_dir, "nope", out, sizeof out),
                     DRV_ERR_NOTFOUND);
    char small[8] = "keep";
    assert_int_equal(drv_volumes_host_path(pod, f->pod_dir, "cfg", small, sizeof small),
                     DRV_ERR_TOOBIG);
    assert_string_equal(small, "keep");
    assert_int_equal(drv_volumes_host_path(pod, f->pod_dir, NULL, out, sizeof out),
                     DRV_ERR_INVALID);
    cJSON_Delete(pod);
}

static void test_prepare_failure_leaves_nothing(void **state)
{
    struct fx *f = *state;
    cJSON *pod = pod_with("[{'name':'scratch','emptyDir':{}},"
                          "{'name':'cfg','configMap':{'name':'app'}},"
                          "{'name':'bad','configMap':{'name':'missing'}}]",
                          false);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(prepare_err(f, pod, &err), DRV_ERR_NOTFOUND);
    char names[256];
    list_dir(f->vols, names, sizeof names);
    assert_string_equal(names, "");
    cJSON_Delete(pod);
}

static void test_teardown_disk(void **state)
{
    struct fx *f = *state;
    cJSON *pod = pod_with("[{'name':'scratch','emptyDir':{}},"
                          "{'name':'cfg','configMap':{'name':'app'}}]",
                          false);
    prepare_ok(f, pod);
    /* What a container might leave in its emptyDir: symlinks out, a deep tree. */
    char vol[PATH_MAX], p[PATH_MAX];
    pathf(vol, "%s/scratch", f->vols);
    pathf(p, "%s/to-canary", vol);
    assert_int_equal(symlink(f->canary, p), 0);
    pathf(p, "%s/to-outside", vol);
    assert_int_equal(symlink(f->outside, p), 0);
    int fd = open(vol, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(mkdirat(fd, "d", 0755), 0);
        int nfd = openat(fd, "d", O_RDONLY | O_DIRECTORY);
        assert_true(nfd >= 0);
        if (i % 10 == 0) {
            int ffd = openat(nfd, "f", O_WRONLY | O_CREAT, 0644);
            assert_true(ffd >= 0);
            close(ffd);
            assert_int_equal(symlinkat(f->outside, nfd, "out"), 0);
        }
        close(fd);
        fd = nfd;
    }
    close(fd);

    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_volumes_teardown(f->pod_dir, &err), DRV_OK);
    assert_false(exists(f->vols));
    assert_true(exists(f->pod_dir));
    assert_outside_untouched(f);
    /* Idempotent, also without the pod directory at all. */
    assert_int_equal(drv_volumes_teardown(f->pod_dir, &err), DRV_OK);
    assert_int_equal(rmdir(f->pod_dir), 0);
    assert_int_equal(drv_volumes_teardown(f->pod_dir, &err), DRV_OK);
    /* A volumes "directory" that is a symlink is removed, not followed. */
    assert_int_equal(mkdir(f->pod_dir, 0700), 0);
    assert_int_equal(symlink(f->outside, f->vols), 0);
    assert_int_equal(drv_volumes_teardown(f->pod_dir, &err), DRV_OK);
    assert_false(exists(f->vols));
    assert_outside_untouched(f);
    cJSON_Delete(pod);
}

/* ---- tmpfs (root, private mount namespace) ----------------------------------------------- */

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                  \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static bool on_tmpfs(const char *path)
{
    struct statfs s;
    return statfs(path, &s) == 0 && s.f_type == TMPFS_MAGIC;
}

/* True if path is a mount point in this namespace. */
static bool mounted(const char *path)
{
    FILE *m = fopen("/proc/self/mountinfo", "r");
    if (!m)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, m)) {
        char mp[PATH_MAX];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && !strcmp(mp, path))
            found = true;
    }
    fclose(m);
    return found;
}

static bool key_is(const char *vol, const char *key, const char *content, mode_t mode)
{
    char p[PATH_MAX], buf[256];
    pathf(p, "%s/%s", vol, key);
    struct stat st;
    ssize_t n = slurp(p, buf, sizeof buf);
    if (n != (ssize_t)strlen(content) || memcmp(buf, content, (size_t)n) || stat(p, &st) < 0 ||
        (st.st_mode & 07777) != mode) {
        fprintf(stderr, "%s: \"%s\" mode %o\n", p, n >= 0 ? buf : "?", st.st_mode & 07777);
        return false;
    }
    return true;
}

static void run_in_mount_ns(struct fx *f, int (*fn)(struct fx *f))
{
    if (geteuid() != 0) {
        print_message("not root: skipping the tmpfs checks\n");
        skip();
    }
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
            _exit(77);
        int rc = fn(f);
        fflush(NULL);
        _exit(rc);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        print_message("no private mount namespace here: skipping the tmpfs checks\n");
        skip();
    }
    assert_int_equal(WEXITSTATUS(status), 0);
}

static int secret_body(struct fx *f)
{
    put_secret(f, "db", "username", "admin", "password", "s3cret", NULL);
    cJSON *pod = pod_with("[{'name':'creds','secret':{'secretName':'db'}},"
                          "{'name':'pw','secret':{'secretName':'db','defaultMode':288,'items':["
                          "{'key':'password','path':'deep/pw','mode':256},"
                          "{'key':'username','path':'user'}]}}]",
                          false);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_volumes_prepare(pod, f->pod_dir, &f->src, &err) != DRV_OK) {
        fprintf(stderr, "prepare: %s\n", drv_error_msg(&err));
        return 1;
    }
    char vol[PATH_MAX], pw[PATH_MAX];
    pathf(vol, "%s/creds", f->vols);
    pathf(pw, "%s/pw", f->vols);
    CHECK(on_tmpfs(vol) && mounted(vol));
    CHECK(on_tmpfs(pw) && mounted(pw));
    CHECK(!on_tmpfs(f->vols));
    struct stat st;
    CHECK(stat(vol, &st) == 0 && (st.st_mode & 07777) == 0755);
    CHECK(key_is(vol, "username", "admin", 0644));
    CHECK(key_is(vol, "password", "s3cret", 0644));
    CHECK(key_is(pw, "deep/pw", "s3cret", 0400));
    CHECK(key_is(pw, "user", "admin", 0440));

    /* Update swaps in the tmpfs; no change, no rewrite. */
    bool changed = true;
    CHECK(drv_volumes_update(pod, f->pod_dir, &f->src, &changed, &err) == DRV_OK && !changed);
    put_secret(f, "db", "username", "root", "password", "n3w", NULL);
    CHECK(drv_volumes_update(pod, f->pod_dir, &f->src, &changed, &err) == DRV_OK && changed);
    CHECK(key_is(vol, "password", "n3w", 0644));
    CHECK(key_is(pw, "deep/pw", "n3w", 0400));

    /* Re-preparing keeps the same mount (nothing stacked). */
    CHECK(drv_volumes_prepare(pod, f->pod_dir, &f->src, &err) == DRV_OK);

    /* Beneath the tmpfs, on disk, there is nothing. */
    CHECK(umount2(vol, MNT_DETACH) == 0);
    CHECK(!mounted(vol));
    DIR *d = opendir(vol);
    CHECK(d != NULL);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        entries += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    CHECK(entries == 0);

    /* An update refuses to write secret data to a volume that is no longer a tmpfs. */
    CHECK(drv_volumes_update(pod, f->pod_dir, &f->src, &changed, &err) == DRV_ERR_IO);
    CHECK(strstr(drv_error_msg(&err), "volume \"creds\": not a tmpfs mount") != NULL);
    d = opendir(vol);
    CHECK(d != NULL);
    entries = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        entries += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    CHECK(entries == 0);

    CHECK(drv_volumes_teardown(f->pod_dir, &err) == DRV_OK);
    CHECK(!mounted(pw) && !exists(f->vols));
    CHECK(drv_volumes_teardown(f->pod_dir, &err) == DRV_OK);
    cJSON_Delete(pod);
    return 0;
}

static void test_secret_on_tmpfs(void **state)
{
    run_in_mount_ns(*state, secret_body);
}

static int memory_body(struct fx *f)
{
    cJSON *pod = pod_with("[{'name':'cache','emptyDir':{'medium':'Memory','sizeLimit':'1Mi'}},"
                          "{'name':'big','emptyDir':{'medium':'Memory'}}]",
                          false);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_volumes_prepare(pod, f->pod_dir, &f->src, &err) != DRV_OK) {
        fprintf(stderr, "prepare: %s\n", drv_error_msg(&err));
        return 1;
    }
    char vol[PATH_MAX], big[PATH_MAX], p[PATH_MAX];
    pathf(vol, "%s/cache", f->vols);
    pathf(big, "%s/big", f->vols);
    struct statfs s;
    CHECK(statfs(vol, &s) == 0 && s.f_type == TMPFS_MAGIC);
    CHECK((uint64_t)s.f_blocks * (uint64_t)s.f_bsize == 1024 * 1024);
    CHECK(statfs(big, &s) == 0 && s.f_type == TMPFS_MAGIC);
    CHECK((uint64_t)s.f_blocks * (uint64_t)s.f_bsize == DRV_VOLUMES_MEMORY_DEFAULT);
    struct stat st;
    CHECK(stat(vol, &st) == 0 && (st.st_mode & 07777) == 0777);
    pathf(p, "%s/kept", vol);
    write_text(p, "x", 0644);
    /* A second prepare keeps the mount and its content. */
    CHECK(drv_volumes_prepare(pod, f->pod_dir, &f->src, &err) == DRV_OK);
    CHECK(exists(p));
    CHECK(drv_volumes_teardown(f->pod_dir, &err) == DRV_OK);
    CHECK(!mounted(vol) && !mounted(big) && !exists(f->vols));
    CHECK(drv_volumes_teardown(f->pod_dir, &err) == DRV_OK);
    cJSON_Delete(pod);

    /* Without sizeLimit but with memory limits on every container: their sum. */
    pod =
        normalized("{'apiVersion':'v1','kind':'Pod','metadata':{'name':'p'},'spec':{"
                   "'containers':[{'name':'a','image':'x','resources':{'limits':{'memory':'8Mi'}}},"
                   "{'name':'b','image':'x','resources':{'limits':{'memory':'4Mi'}}}],"
                   "'volumes':[{'name':'m','emptyDir':{'medium':'Memory'}}]}}");
    CHECK(drv_volumes_prepare(pod, f->pod_dir, &f->src, &err) == DRV_OK);
    pathf(vol, "%s/m", f->vols);
    CHECK(statfs(vol, &s) == 0 && s.f_type == TMPFS_MAGIC);
    CHECK((uint64_t)s.f_blocks * (uint64_t)s.f_bsize == 12 * 1024 * 1024);
    CHECK(drv_volumes_teardown(f->pod_dir, &err) == DRV_OK);
    CHECK(!mounted(vol));
    cJSON_Delete(pod);
    return 0;
}

static void test_emptydir_memory_tmpfs(void **state)
{
    run_in_mount_ns(*state, memory_body);
}

/* A failing prepare unmounts the tmpfs it mounted before the failure. */
static int failure_body(struct fx *f)
{
    put_secret(f, "db", "k", "v", NULL);
    cJSON *pod = pod_with("[{'name':'s','secret':{'secretName':'db'}},"
                          "{'name':'m','emptyDir':{'medium':'Memory'}},"
                          "{'name':'x','secret':{'secretName':'db','items':[{'key':'nokey',"
                          "'path':'p'}]}}]",
                          false);
    drv_error_t err = DRV_ERROR_INIT;
    CHECK(drv_volumes_prepare(pod, f->pod_dir, &f->src, &err) == DRV_ERR_NOTFOUND);
    CHECK(!strcmp(drv_error_msg(&err), "volume \"x\": secret \"db\" has no key \"nokey\""));
    char p[PATH_MAX];
    pathf(p, "%s/s", f->vols);
    CHECK(!mounted(p) && !exists(p));
    pathf(p, "%s/m", f->vols);
    CHECK(!mounted(p) && !exists(p));
    cJSON_Delete(pod);
    return 0;
}

static void test_prepare_failure_unmounts(void **state)
{
    run_in_mount_ns(*state, failure_body);
}

/* Other file systems mounted where the agent would clean are never emptied. */
static int mount_guard_body(struct fx *f)
{
    drv_error_t err = DRV_ERROR_INIT;
    char x[PATH_MAX], sub[PATH_MAX];
    pathf(x, "%s/x", f->vols);
    CHECK(mkdir(f->pod_dir, 0700) == 0 && mkdir(f->vols, 0700) == 0 && mkdir(x, 0777) == 0);
    CHECK(mount(f->outside, x, NULL, MS_BIND, NULL) == 0);
    cJSON *pod = pod_with("[{'name':'x','emptyDir':{'medium':'Memory'}}]", false);
    CHECK(drv_volumes_prepare(pod, f->pod_dir, &f->src, &err) == DRV_ERR_CONFLICT);
    CHECK(strstr(drv_error_msg(&err), "is a mount point but not a tmpfs") != NULL);
    CHECK(umount2(x, 0) == 0);
    cJSON_Delete(pod);

    /* A bind mount inside a disk emptyDir stops teardown instead of being emptied. */
    pod = pod_with("[{'name':'scratch','emptyDir':{}}]", false);
    CHECK(drv_volumes_prepare(pod, f->pod_dir, &f->src, &err) == DRV_OK);
    pathf(sub, "%s/scratch/sub", f->vols);
    CHECK(mkdir(sub, 0755) == 0);
    CHECK(mount(f->outside, sub, NULL, MS_BIND, NULL) == 0);
    CHECK(drv_volumes_teardown(f->pod_dir, &err) != DRV_OK);
    CHECK(exists(f->canary));
    CHECK(umount2(sub, 0) == 0);
    CHECK(drv_volumes_teardown(f->pod_dir, &err) == DRV_OK && !exists(f->vols));
    CHECK(exists(f->canary));
    cJSON_Delete(pod);
    return 0;
}

static void test_mounts_never_emptied(void **state)
{
    run_in_mount_ns(*state, mount_guard_body);
}

/* ---- downwardAPI, projected, fsGroup ---------------------------------------------------- */

static cJSON *downward_pod(const char *labels)
{
    char text[4096];
    int n = snprintf(
        text, sizeof text,
        "{'apiVersion':'v1','kind':'Pod','metadata':{'name':'p','namespace':'prod','uid':'u-1',"
        "'labels':%s,'annotations':{'note':'say \\\"hi\\\"\\nbye'}},'spec':{"
        "'securityContext':{'fsGroup':2000},"
        "'containers':[{'name':'c','image':'alpine','resources':{'limits':{'cpu':'250m',"
        "'memory':'64Mi'}}}],'volumes':[{'name':'info','downwardAPI':{'items':["
        "{'path':'name','fieldRef':{'fieldPath':'metadata.name'}},"
        "{'path':'ns','fieldRef':{'fieldPath':'metadata.namespace'}},"
        "{'path':'uid','fieldRef':{'fieldPath':'metadata.uid'}},"
        "{'path':'labels','fieldRef':{'fieldPath':'metadata.labels'}},"
        "{'path':'annotations','fieldRef':{'fieldPath':'metadata.annotations'}},"
        "{'path':'sub/app','fieldRef':{'fieldPath':'SUBSCRIPT'}},"
        "{'path':'cpu_m','resourceFieldRef':{'containerName':'c','resource':'limits.cpu',"
        "'divisor':'1m'},'mode':384},"
        "{'path':'mem_mi','resourceFieldRef':{'containerName':'c','resource':'limits.memory',"
        "'divisor':'1Mi'}}]}},{'name':'scratch','emptyDir':{}}]}}",
        labels);
    assert_true(n > 0 && n < (int)sizeof text);
    /* parse_q turns every ' into ": the label subscript, which needs its own, is set after. */
    cJSON *o = parse_q(text);
    cJSON *items = cJSON_GetObjectItem(
        cJSON_GetObjectItem(
            cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "spec"), "volumes"), 0),
            "downwardAPI"),
        "items");
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 5), "fieldRef"),
                              "fieldPath", cJSON_CreateString("metadata.labels['app']"));
    drv_diags_t d = {0};
    if (drv_model_normalize(o, &d) != DRV_OK)
        fail_msg("normalize: %s", drv_diags_format(&d, NULL));
    drv_diags_free(&d);
    return o;
}

static void test_downward_api(void **state)
{
    struct fx *f = *state;
    cJSON *pod = downward_pod("{'app':'web','tier':'front'}");
    prepare_ok(f, pod);
    char vol[PATH_MAX];
    pathf(vol, "%s/info", f->vols);
    /* fsGroup: files group-readable (0644 | 0440), given to the group. */
    assert_key(vol, "name", "p", 0644);
    assert_key(vol, "ns", "prod", 0644);
    assert_key(vol, "uid", "u-1", 0644);
    assert_key(vol, "labels", "app=\"web\"\ntier=\"front\"", 0644);
    assert_key(vol, "annotations", "note=\"say \\\"hi\\\"\\nbye\"", 0644);
    assert_key(vol, "cpu_m", "250", 0640);
    assert_key(vol, "mem_mi", "64", 0644);
    char p[PATH_MAX], buf[64];
    pathf(p, "%s/sub/app", vol);
    assert_int_equal(slurp(p, buf, sizeof buf), 3);
    assert_string_equal(buf, "web");
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_gid, 2000);
    assert_int_equal(stat(vol, &st), 0);
    assert_int_equal(st.st_gid, 2000);
    assert_true(st.st_mode & S_ISGID);
    /* The emptyDir's root: the group's, setgid, writable by all as before. */
    pathf(p, "%s/scratch", f->vols);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_gid, 2000);
    assert_int_equal(st.st_mode & 07777, 02777);

    /* New labels: the files follow on update; unchanged, nothing is rewritten. */
    cJSON *pod2 = downward_pod("{'app':'api'}");
    bool changed = false;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_volumes_update(pod2, f->pod_dir, &f->src, &changed, &err), DRV_OK);
    assert_true(changed);
    assert_key(vol, "labels", "app=\"api\"", 0644);
    assert_int_equal(drv_volumes_update(pod2, f->pod_dir, &f->src, &changed, &err), DRV_OK);
    assert_false(changed);
    cJSON_Delete(pod);
    cJSON_Delete(pod2);
}

static void test_projected_writer(void **state)
{
    struct fx *f = *state;
    put_secret(f, "db", "user", "admin", "pass", "s3cret", NULL);
    cJSON *pod = downward_pod("{'app':'web'}");
    cJSON *proj = parse_q("{'defaultMode':420,'sources':["
                          "{'serviceAccountToken':{'path':'token'}},"
                          "{'configMap':{'name':'app','items':[{'key':'motd','path':'motd'}]}},"
                          "{'secret':{'name':'db','items':[{'key':'pass','path':'db/pass',"
                          "'mode':256}]}},"
                          "{'secret':{'name':'gone','optional':true}},"
                          "{'downwardAPI':{'items':[{'path':'namespace','fieldRef':"
                          "{'fieldPath':'metadata.namespace'}}]}}]}");
    char dir[PATH_MAX];
    pathf(dir, "%s/proj", f->base);
    assert_int_equal(mkdir(dir, 0755), 0);
    drv_volume_file_t tok = {"token", "eyJ.token", 9, 0};
    bool changed = false;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t r = drv_volumes_write_projected(pod, dir, proj, &f->src, &tok, 1, &changed, &err);
    if (r != DRV_OK)
        fail_msg("projected: %s", drv_error_msg(&err));
    assert_true(changed);
    assert_key(dir, "token", "eyJ.token", 0644); /* 0644 | fsGroup's 0440 */
    assert_key(dir, "motd", "hello", 0644);
    assert_key(dir, "namespace", "prod", 0644);
    char p[PATH_MAX], buf[64];
    pathf(p, "%s/db/pass", dir);
    assert_int_equal(slurp(p, buf, sizeof buf), 6);
    assert_string_equal(buf, "s3cret");
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0440);
    /* Same content: untouched. A new token: swapped in. */
    assert_int_equal(drv_volumes_write_projected(pod, dir, proj, &f->src, &tok, 1, &changed, &err),
                     DRV_OK);
    assert_false(changed);
    drv_volume_file_t tok2 = {"token", "eyJ.other", 9, 0};
    assert_int_equal(drv_volumes_write_projected(pod, dir, proj, &f->src, &tok2, 1, &changed, &err),
                     DRV_OK);
    assert_true(changed);
    assert_key(dir, "token", "eyJ.other", 0644);
    /* A file on a path a source uses: refused, naming both. */
    drv_volume_file_t clash = {"motd", "x", 1, 0};
    assert_int_equal(
        drv_volumes_write_projected(pod, dir, proj, &f->src, &clash, 1, &changed, &err),
        DRV_ERR_INVALID);
    assert_msg_has(&err, "conflicts with");
    cJSON_Delete(proj);
    cJSON_Delete(pod);
}

static void test_apply_fsgroup(void **state)
{
    struct fx *f = *state;
    char dir[PATH_MAX], p[PATH_MAX];
    pathf(dir, "%s/pvc", f->base);
    assert_int_equal(mkdir(dir, 0755), 0);
    pathf(p, "%s/sub", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    pathf(p, "%s/sub/file", dir);
    write_text(p, "x", 0600);
    pathf(p, "%s/link", dir);
    assert_int_equal(symlink(f->canary, p), 0);
    cJSON *pod = normalized("{'apiVersion':'v1','kind':'Pod','metadata':{'name':'p'},'spec':{"
                            "'securityContext':{'fsGroup':2000,'fsGroupChangePolicy':"
                            "'OnRootMismatch'},'containers':[{'name':'c','image':'alpine'}]}}");
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_volumes_apply_fsgroup(pod, dir, &err), DRV_OK);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_gid, 2000);
    assert_int_equal(st.st_mode & 07777, 02775);
    pathf(p, "%s/sub", dir);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 02770);
    pathf(p, "%s/sub/file", dir);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_gid, 2000);
    assert_int_equal(st.st_mode & 07777, 0660);
    assert_outside_untouched(f); /* the symlink was not followed */
    struct stat cst;
    assert_int_equal(stat(f->canary, &cst), 0);
    assert_int_not_equal(cst.st_gid, 2000);
    /* OnRootMismatch: a root that matches is not walked again. */
    assert_int_equal(chmod(p, 0600), 0);
    assert_int_equal(drv_volumes_apply_fsgroup(pod, dir, &err), DRV_OK);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    cJSON_Delete(pod);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_configmap_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_configmap_items_nested_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_configmap_default_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_configmap_binary_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_configmap_optional_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_configmap_missing_notfound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_configmap_missing_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_items_conflict_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_swaps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_no_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_missing_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malicious_item_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_planted_symlinks_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostpath_directory_or_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostpath_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostpath_devices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emptydir_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_path_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepare_failure_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_teardown_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_on_tmpfs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emptydir_memory_tmpfs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepare_failure_unmounts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mounts_never_emptied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_downward_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_projected_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_fsgroup, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
