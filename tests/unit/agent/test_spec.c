/* Tests for the OCI runtime config built from a pod: the command, environment, working
 * directory and user rules of Kubernetes, capabilities and privileged mode, mounts for every
 * volume type, resources, namespaces and seccomp, and clear errors for what cannot run. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drover/model.h"
#include "runtime/seccomp.h"
#include "runtime/spec.h"

/* ---- fixture ---- */

struct fx {
    char dir[64];
    char rootfs[128];
    char vols[128];
    char hostdir[128];
    drv_oci_config_t img;
    cJSON *cms, *secrets;
    drv_seccomp_profile_t *prof;
};

static char *img_env[] = {"PATH=/img/bin:/bin", "IMG_ONLY=1", "SHARED=from-image", NULL};
static char *img_entry[] = {"/entry.sh", NULL};
static char *img_cmd[] = {"serve", "--port=80", NULL};

static const char profile[] =
    "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":38,"
    "\"archMap\":[{\"architecture\":\"SCMP_ARCH_X86_64\",\"subArchitectures\":"
    "[\"SCMP_ARCH_X86\"]}],\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\"},"
    "{\"names\":[\"bpf\"],\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"caps\":"
    "[\"CAP_SYS_ADMIN\"]}}]}";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int rm_entry(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/drover-test-spec-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char p[256];
    snprintf(f->rootfs, sizeof(f->rootfs), "%s/rootfs", f->dir);
    snprintf(f->vols, sizeof(f->vols), "%s/volumes", f->dir);
    snprintf(f->hostdir, sizeof(f->hostdir), "%s/host", f->dir);
    mkdir(f->rootfs, 0755);
    snprintf(p, sizeof(p), "%s/etc", f->rootfs);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/etc/passwd", f->rootfs);
    write_file(p, "# comment\nroot:x:0:0:root:/root:/bin/sh\n"
                  "app:x:1000:1001:App:/home/app:/bin/sh\n"
                  "nobody:x:65534:65534:nobody:/:/bin/false\n");
    snprintf(p, sizeof(p), "%s/etc/group", f->rootfs);
    write_file(p, "root:x:0:\napp:x:1001:\nstaff:x:50:app,other\nvideo:x:44:app\n"
                  "audio:x:29:other\n");
    mkdir(f->vols, 0755);
    mkdir(f->hostdir, 0755);
    const char *vdirs[] = {"cache", "cfg", "creds", "data"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s/%s", f->vols, vdirs[i]);
        mkdir(p, 0750);
    }
    snprintf(p, sizeof(p), "%s/cfg/app.conf", f->vols);
    write_file(p, "x=1\n");

    f->img.env = img_env;
    f->img.n_env = 3;
    f->img.entrypoint = img_entry;
    f->img.n_entrypoint = 1;
    f->img.cmd = img_cmd;
    f->img.n_cmd = 2;
    f->img.working_dir = "/srv";
    f->img.user = "";

    f->cms = cJSON_Parse("{\"app-config\":{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
                         "\"metadata\":{\"name\":\"app-config\",\"namespace\":\"prod\"},"
                         "\"data\":{\"mode\":\"fast\",\"level\":\"3\",\"bad=key\":\"x\"}}}");
    /* "s3cret" and "admin" */
    f->secrets = cJSON_Parse("{\"db\":{\"apiVersion\":\"v1\",\"kind\":\"Secret\","
                             "\"metadata\":{\"name\":\"db\",\"namespace\":\"prod\"},"
                             "\"type\":\"Opaque\",\"data\":{\"pass\":\"czNjcmV0\","
                             "\"user\":\"YWRtaW4=\"}}}");
    drv_error_t err = DRV_ERROR_INIT;
    if (!f->cms || !f->secrets ||
        drv_seccomp_parse(profile, strlen(profile), "fixture", &f->prof, &err) != DRV_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    cJSON_Delete(f->cms);
    cJSON_Delete(f->secrets);
    drv_seccomp_free(f->prof);
    free(f);
    return 0;
}

/* A normalized pod: spec_extra is spliced into spec, containers is the array's content. */
static cJSON *pod(const char *spec_extra, const char *containers)
{
    char text[8192];
    snprintf(text, sizeof(text),
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web\","
             "\"namespace\":\"prod\"},\"spec\":{%s%s\"containers\":[%s]}}",
             spec_extra, *spec_extra ? "," : "", containers);
    cJSON *p = cJSON_Parse(text);
    assert_non_null(p);
    drv_diags_t d = {0};
    if (drv_model_normalize(p, &d) != DRV_OK) {
        char *msg = drv_diags_format(&d, "  ");
        fail_msg("pod does not normalize:\n%s\n%s", msg, text);
    }
    drv_diags_free(&d);
    return p;
}

static const cJSON *container(const cJSON *p, const char *list, int i)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "spec"), list), i);
}

static drv_spec_input_t input(struct fx *f, const cJSON *p)
{
    drv_spec_input_t in = {0};
    in.pod = p;
    in.container = container(p, "containers", 0);
    in.image = &f->img;
    in.rootfs = f->rootfs;
    in.netns_path = "/run/drover/pods/uid1/net";
    in.ipcns_path = "/run/drover/pods/uid1/ipc";
    in.utsns_path = "/run/drover/pods/uid1/uts";
    in.configmaps = f->cms;
    in.secrets = f->secrets;
    in.fields.pod_uid = "0b4e6c2a-uid";
    in.fields.node_name = "pi-7";
    in.fields.pod_ip = "10.42.0.7";
    in.fields.host_ip = "192.168.1.20";
    in.volumes_dir = f->vols;
    in.resolv_conf = "/run/drover/pods/uid1/resolv.conf";
    in.hosts = "/run/drover/pods/uid1/hosts";
    in.hostname_file = "/run/drover/pods/uid1/hostname";
    in.cgroups_path = "/drover.slice/pod-uid1/app";
    in.seccomp = f->prof;
    in.arch = "x86_64";
    in.kernel_release = "6.1.0";
    return in;
}

static cJSON *build_ok(const drv_spec_input_t *in)
{
    cJSON *out = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_spec_build(in, &out, &err) != DRV_OK)
        fail_msg("drv_spec_build: %s", drv_error_msg(&err));
    assert_non_null(out);
    return out;
}

static void build_err(const drv_spec_input_t *in, drv_err_t code, const char *needle)
{
    cJSON *out = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_spec_build(in, &out, &err);
    if (rc != code)
        fail_msg("expected error %d, got %d: %s", code, rc, drv_error_msg(&err));
    assert_null(out);
    if (!strstr(drv_error_msg(&err), needle))
        fail_msg("error \"%s\" lacks \"%s\"", drv_error_msg(&err), needle);
}

/* "a.b.c" through nested objects. */
static const cJSON *at(const cJSON *o, const char *path)
{
    char key[128];
    for (const char *k = path; *k && o;) {
        const char *dot = strchr(k, '.');
        size_t n = dot ? (size_t)(dot - k) : strlen(k);
        snprintf(key, sizeof(key), "%.*s", (int)n, k);
        o = cJSON_GetObjectItemCaseSensitive(o, key);
        k += n + (dot ? 1 : 0);
    }
    return o;
}

static const char *at_str(const cJSON *o, const char *path)
{
    const cJSON *v = at(o, path);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double at_num(const cJSON *o, const char *path)
{
    const cJSON *v = at(o, path);
    if (!cJSON_IsNumber(v))
        fail_msg("%s: not a number", path);
    return v->valuedouble;
}

static bool has_str(const cJSON *arr, const char *s)
{
    for (const cJSON *e = cJSON_IsArray(arr) ? arr->child : NULL; e; e = e->next)
        if (cJSON_IsString(e) && !strcmp(e->valuestring, s))
            return true;
    return false;
}

/* process.args joined with spaces. */
static char *args_of(const cJSON *cfg)
{
    static char buf[1024];
    size_t len = 0;
    buf[0] = '\0';
    for (const cJSON *e = at(cfg, "process.args")->child; e && len < sizeof(buf); e = e->next)
        len +=
            (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", len ? " " : "", e->valuestring);
    return buf;
}

static const char *env_of(const cJSON *cfg, const char *key)
{
    size_t n = strlen(key);
    for (const cJSON *e = at(cfg, "process.env")->child; e; e = e->next)
        if (!strncmp(e->valuestring, key, n) && e->valuestring[n] == '=')
            return e->valuestring + n + 1;
    return NULL;
}

static int env_index(const cJSON *cfg, const char *key)
{
    size_t n = strlen(key);
    int i = 0;
    for (const cJSON *e = at(cfg, "process.env")->child; e; e = e->next, i++)
        if (!strncmp(e->valuestring, key, n) && e->valuestring[n] == '=')
            return i;
    return -1;
}

static const cJSON *mount_at(const cJSON *cfg, const char *dest)
{
    for (const cJSON *m = at(cfg, "mounts")->child; m; m = m->next)
        if (!strcmp(at_str(m, "destination"), dest))
            return m;
    return NULL;
}

static int mount_index(const cJSON *cfg, const char *dest)
{
    int i = 0;
    for (const cJSON *m = at(cfg, "mounts")->child; m; m = m->next, i++)
        if (!strcmp(at_str(m, "destination"), dest))
            return i;
    return -1;
}

static bool ns_has(const cJSON *cfg, const char *type, const char **path)
{
    for (const cJSON *n = at(cfg, "linux.namespaces")->child; n; n = n->next)
        if (!strcmp(at_str(n, "type"), type)) {
            if (path)
                *path = at_str(n, "path");
            return true;
        }
    return false;
}

#define APP "{\"name\":\"app\",\"image\":\"busybox:1.36\""

/* ---- command and args ---- */

static void test_args_from_image(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("", APP "}");
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    assert_string_equal(args_of(cfg), "/entry.sh serve --port=80");
    assert_string_equal(at_str(cfg, "ociVersion"), "1.0.2");
    assert_false(cJSON_IsTrue(at(cfg, "process.terminal")));
    cJSON_Delete(cfg);
    cJSON_Delete(p);
}

static void test_args_kubernetes_rules(void **state)
{
    struct fx *f = *state;
    /* command replaces Entrypoint and drops the image's Cmd. */
    cJSON *p = pod("", APP ",\"command\":[\"/bin/app\"]}");
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    assert_string_equal(args_of(cfg), "/bin/app");
    cJSON_Delete(cfg);
    cJSON_Delete(p);
    /* args alone replace Cmd and keep Entrypoint. */
    p = pod("", APP ",\"args\":[\"--debug\"]}");
    in = input(f, p);
    cfg = build_ok(&in);
    assert_string_equal(args_of(cfg), "/entry.sh --debug");
    cJSON_Delete(cfg);
    cJSON_Delete(p);
    /* both */
    p = pod("", APP ",\"command\":[\"/bin/sh\",\"-c\"],\"args\":[\"echo hi\"]}");
    in = input(f, p);
    cfg = build_ok(&in);
    assert_string_equal(args_of(cfg), "/bin/sh -c echo hi");
    cJSON_Delete(cfg);
    cJSON_Delete(p);
}

static void test_no_command_is_error(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("", APP "}");
    drv_spec_input_t in = input(f, p);
    in.image = NULL;
    build_err(&in, DRV_ERR_INVALID, "spec.containers[0]: no command specified");
    cJSON_Delete(p);
}

static void test_expansion(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("", APP ",\"command\":[\"/bin/echo\",\"$(GREETING)\",\"$$(GREETING)\","
                           "\"$(MISSING)\",\"$(IMG_ONLY)\",\"cost$5\"],"
                           "\"env\":[{\"name\":\"WHO\",\"value\":\"world\"},"
                           "{\"name\":\"GREETING\",\"value\":\"hello $(WHO)\"},"
                           "{\"name\":\"LATER\",\"value\":\"$(AFTER)\"},"
                           "{\"name\":\"AFTER\",\"value\":\"x\"}]}");
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    /* Image variables are not known to the expansion; later ones not yet. */
    assert_string_equal(args_of(cfg),
                        "/bin/echo hello world $(GREETING) $(MISSING) $(IMG_ONLY) cost$5");
    assert_string_equal(env_of(cfg, "GREETING"), "hello world");
    assert_string_equal(env_of(cfg, "LATER"), "$(AFTER)");
    cJSON_Delete(cfg);
    cJSON_Delete(p);

    const char *env[] = {"A=1", "B=two", "A=3"};
    char *s = drv_spec_expand("$(A)-$(B)-$(C)-$$-$-$(", env, 3, 1024);
    assert_string_equal(s, "3-two-$(C)-$-$-$(");
    free(s);
    s = drv_spec_expand("$(B)$(B)$(B)", env, 3, 5);
    assert_null(s); /* over max */
}

/* ---- environment ---- */

static void test_env_order_and_defaults(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("", APP ",\"env\":[{\"name\":\"SHARED\",\"value\":\"from-pod\"},"
                           "{\"name\":\"mode\",\"value\":\"explicit\"}],"
                           "\"envFrom\":[{\"configMapRef\":{\"name\":\"app-config\"}},"
                           "{\"prefix\":\"DB_\",\"secretRef\":{\"name\":\"db\"}}]}");
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    assert_string_equal(env_of(cfg, "PATH"), "/img/bin:/bin"); /* the image's wins */
    assert_int_equal(env_index(cfg, "PATH"), 0);
    assert_string_equal(env_of(cfg, "HOSTNAME"), "web");
    assert_string_equal(env_of(cfg, "IMG_ONLY"), "1");
    assert_string_equal(env_of(cfg, "SHARED"), "from-pod"); /* the container's wins */
    assert_string_equal(env_of(cfg, "mode"), "explicit");   /* env over envFrom */
    assert_string_equal(env_of(cfg, "level"), "3");
    assert_string_equal(env_of(cfg, "DB_pass"), "s3cret");
    assert_string_equal(env_of(cfg, "DB_user"), "admin");
    assert_null(env_of(cfg, "bad=key"));
    assert_null(env_of(cfg, "bad"));
    cJSON_Delete(cfg);

    /* An image without PATH gets the default. */
    in.image = NULL;
    cJSON *c2 = pod("", APP ",\"command\":[\"/x\"]}");
    in.container = container(c2, "containers", 0);
    in.pod = c2;
    cfg = build_ok(&in);
    assert_string_equal(env_of(cfg, "PATH"), DRV_SPEC_DEFAULT_PATH);
    assert_string_equal(at_str(cfg, "process.cwd"), "/");
    cJSON_Delete(cfg);
    cJSON_Delete(c2);
    cJSON_Delete(p);
}

static void test_env_value_from(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod(
        "", APP ",\"env\":["
                "{\"name\":\"MODE\",\"valueFrom\":{\"configMapKeyRef\":{\"name\":\"app-config\","
                "\"key\":\"mode\"}}},"
                "{\"name\":\"PASS\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"db\",\"key\":"
                "\"pass\"}}},"
                "{\"name\":\"POD\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.name\"}}},"
                "{\"name\":\"NS\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":"
                "\"metadata.namespace\"}}},"
                "{\"name\":\"UID\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.uid\"}}},"
                "{\"name\":\"NODE\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":"
                "\"spec.nodeName\"}}},"
                "{\"name\":\"IP\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"status.podIP\"}}},"
                "{\"name\":\"HOST_IP\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":"
                "\"status.hostIP\"}}},"
                "{\"name\":\"OPT\",\"valueFrom\":{\"configMapKeyRef\":{\"name\":\"app-config\","
                "\"key\":\"nope\",\"optional\":true}}},"
                "{\"name\":\"OPT2\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"gone\","
                "\"key\":\"k\",\"optional\":true}}}]}");
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    assert_string_equal(env_of(cfg, "MODE"), "fast");
    assert_string_equal(env_of(cfg, "PASS"), "s3cret");
    assert_string_equal(env_of(cfg, "POD"), "web");
    assert_string_equal(env_of(cfg, "NS"), "prod");
    assert_string_equal(env_of(cfg, "UID"), "0b4e6c2a-uid");
    assert_string_equal(env_of(cfg, "NODE"), "pi-7");
    assert_string_equal(env_of(cfg, "IP"), "10.42.0.7");
    assert_string_equal(env_of(cfg, "HOST_IP"), "192.168.1.20");
    assert_null(env_of(cfg, "OPT"));
    assert_null(env_of(cfg, "OPT2"));
    cJSON_Delete(cfg);
    cJSON_Delete(p);
}

static void test_env_missing_refs(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("", APP ",\"env\":[{\"name\":\"A\",\"value\":\"1\"},"
                           "{\"name\":\"MODE\",\"valueFrom\":{\"configMapKeyRef\":"
                           "{\"name\":\"app-config\",\"key\":\"colour\"}}}]}");
    drv_spec_input_t in = input(f, p);
    build_err(&in, DRV_ERR_NOTFOUND,
              "spec.containers[0].env[1].valueFrom.configMapKeyRef: couldn't find key colour in "
              "ConfigMap prod/app-config");
    cJSON_Delete(p);

    p = pod("", APP ",\"env\":[{\"name\":\"P\",\"valueFrom\":{\"secretKeyRef\":"
                    "{\"name\":\"other\",\"key\":\"k\"}}}]}");
    in = input(f, p);
    build_err(&in, DRV_ERR_NOTFOUND, "env[0].valueFrom.secretKeyRef: secret \"other\" not found");
    in.secrets = NULL; /* no secrets at all: same */
    build_err(&in, DRV_ERR_NOTFOUND, "secret \"other\" not found");
    cJSON_Delete(p);

    p = pod("", APP ",\"envFrom\":[{\"configMapRef\":{\"name\":\"nope\"}}]}");
    in = input(f, p);
    build_err(&in, DRV_ERR_NOTFOUND, "spec.containers[0].envFrom[0].configMapRef: configmap");
    cJSON_Delete(p);
    p = pod("", APP ",\"envFrom\":[{\"configMapRef\":{\"name\":\"nope\",\"optional\":true}}]}");
    in = input(f, p);
    cJSON_Delete(build_ok(&in));
    cJSON_Delete(p);
}

static void test_cwd(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("", APP "}");
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    assert_string_equal(at_str(cfg, "process.cwd"), "/srv");
    cJSON_Delete(cfg);
    cJSON_Delete(p);
    p = pod("", APP ",\"workingDir\":\"/work\"}");
    in = input(f, p);
    cfg = build_ok(&in);
    assert_string_equal(at_str(cfg, "process.cwd"), "/work");
    cJSON_Delete(cfg);
    cJSON_Delete(p);
}

/* ---- user ---- */

static void test_user_from_security_context(void **state)
{
    struct fx *f = *state;
    /* Container over pod; the gid of a known uid comes from /etc/passwd. */
    cJSON *p = pod("\"securityContext\":{\"runAsUser\":7,\"runAsGroup\":8}",
                   APP ",\"securityContext\":{\"runAsUser\":1000}}");
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    assert_int_equal((int)at_num(cfg, "process.user.uid"), 1000);
    assert_int_equal((int)at_num(cfg, "process.user.gid"), 8); /* the pod's runAsGroup */
    cJSON_Delete(cfg);
    cJSON_Delete(p);

    p = pod("", APP ",\"securityContext\":{\"runAsUser\":1000}}");
    in = input(f, p);
    cfg = build_ok(&in);
    assert_int_equal((int)at_num(cfg, "process.user.gid"), 1001);
    const cJSON *ag = at(cfg, "process.user.additionalGids");
    assert_int_equal(cJSON_GetArraySize(ag), 3); /* 1001 (primary), staff, video */
    assert_int_equal(cJSON_GetArrayItem(ag, 0)->valueint, 1001);
    assert_int_equal(cJSON_GetArrayItem(ag, 1)->valueint, 50);
    assert_int_equal(cJSON_GetArrayItem(ag, 2)->valueint, 44);
    cJSON_Delete(cfg);
    cJSON_Delete(p);

    /* An unknown uid: gid 0. */
    p = pod("", APP ",\"securityContext\":{\"runAsUser\":4321}}");
    in = input(f, p);
    cfg = build_ok(&in);
    assert_int_equal((int)at_num(cfg, "process.user.uid"), 4321);
    assert_int_equal((int)at_num(cfg, "process.user.gid"), 0);
    cJSON_Delete(cfg);
    cJSON_Delete(p);
}

static void test_user_from_image(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("", APP "}");
    drv_spec_input_t in = input(f, p);
    const char *users[][3] = {{"app", "1000", "1001"},      {"app:staff", "1000", "50"},
                              {"1000:44", "1000", "44"},    {"65534", "65534", "65534"},
                              {"1000:video", "1000", "44"}, {"", "0", "0"}};
    for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
        f->img.user = (char *)users[i][0];
        cJSON *cfg = build_ok(&in);
        char uid[16], gid[16];
        snprintf(uid, sizeof(uid), "%.0f", at_num(cfg, "process.user.uid"));
        snprintf(gid, sizeof(gid), "%.0f", at_num(cfg, "process.user.gid"));
        assert_string_equal(uid, users[i][1]);
        assert_string_equal(gid, users[i][2]);
        cJSON_Delete(cfg);
    }
    f->img.user = "ghost";
    build_err(&in, DRV_ERR_NOTFOUND, "unable to find user ghost");
    f->img.user = "app:nogroup";
    build_err(&in, DRV_ERR_NOTFOUND, "unable to find group nogroup");
    f->img.user = "";
    cJSON_Delete(p);
}

static void test_passwd_symlink_stays_in_rootfs(void **state)
{
    struct fx *f = *state;
    char outside[256], link[256], real[256];
    snprintf(outside, sizeof(outside), "%s/evil-passwd", f->dir);
    write_file(outside, "evil:x:4242:4242::/:/bin/sh\n");
    snprintf(real, sizeof(real), "%s/etc/passwd", f->rootfs);
    snprintf(link, sizeof(link), "%s/etc/passwd.real", f->rootfs);
    assert_int_equal(rename(real, link), 0);
    /* Climbs out of the rootfs if followed on the host: ../../evil-passwd */
    assert_int_equal(symlink("../../evil-passwd", real), 0);
    cJSON *p = pod("", APP "}");
    drv_spec_input_t in = input(f, p);
    f->img.user = "evil";
    build_err(&in, DRV_ERR_NOTFOUND, "unable to find user evil");
    f->img.user = "";
    unlink(real);
    assert_int_equal(rename(link, real), 0);
    cJSON_Delete(p);
}

static void test_run_as_non_root(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("\"securityContext\":{\"runAsNonRoot\":true}", APP "}");
    drv_spec_input_t in = input(f, p);
    build_err(&in, DRV_ERR_PERM,
              "spec.containers[0].securityContext.runAsNonRoot: container has runAsNonRoot and "
              "image will run as root");
    f->img.user = "app";
    cJSON *cfg = build_ok(&in);
    assert_int_equal((int)at_num(cfg, "process.user.uid"), 1000);
    cJSON_Delete(cfg);
    f->img.user = "root";
    build_err(&in, DRV_ERR_PERM, "runAsNonRoot");
    f->img.user = "";
    cJSON_Delete(p);

    p = pod("", APP ",\"securityContext\":{\"runAsNonRoot\":true,\"runAsUser\":0}}");
    in = input(f, p);
    build_err(&in, DRV_ERR_PERM, "runAsUser breaks non-root policy");
    cJSON_Delete(p);
}

/* ---- capabilities and privileges ---- */

static void assert_caps(const cJSON *cfg, const char *const *want, size_t n)
{
    const char *sets[] = {"bounding", "effective", "permitted"};
    for (size_t s = 0; s < 3; s++) {
        char path[64];
        snprintf(path, sizeof(path), "process.capabilities.%s", sets[s]);
        const cJSON *a = at(cfg, path);
        if ((size_t)cJSON_GetArraySize(a) != n) {
            char *t = cJSON_PrintUnformatted(a);
            fail_msg("%s: want %zu caps, got %s", path, n, t);
        }
        for (size_t i = 0; i < n; i++)
            if (!has_str(a, want[i]))
                fail_msg("%s lacks %s", path, want[i]);
    }
    assert_int_equal(cJSON_GetArraySize(at(cfg, "process.capabilities.ambient")), 0);
    assert_int_equal(cJSON_GetArraySize(at(cfg, "process.capabilities.inheritable")), 0);
}

static void test_default_caps(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("", APP "}");
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    const char *want[] = {
        "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
        "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
        "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
        "CAP_KILL",    "CAP_AUDIT_WRITE"};
    assert_caps(cfg, want, 14);
    assert_true(cJSON_IsTrue(at(cfg, "process.noNewPrivileges")));
    assert_non_null(at(cfg, "linux.maskedPaths"));
    assert_true(has_str(at(cfg, "linux.maskedPaths"), "/proc/kcore"));
    assert_true(has_str(at(cfg, "linux.readonlyPaths"), "/proc/sysrq-trigger"));
    cJSON_Delete(cfg);
    cJSON_Delete(p);
}

static void test_caps_add_drop(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("", APP ",\"securityContext\":{\"capabilities\":{\"drop\":[\"ALL\"],"
                           "\"add\":[\"NET_BIND_SERVICE\",\"CAP_NET_ADMIN\"]}}}");
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    const char *want[] = {"CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN"};
    assert_caps(cfg, want, 2);
    cJSON_Delete(cfg);
    cJSON_Delete(p);

    p = pod("", APP ",\"securityContext\":{\"capabilities\":{\"drop\":[\"CHOWN\",\"MKNOD\","
                    "\"NET_RAW\",\"SETFCAP\",\"SETPCAP\",\"AUDIT_WRITE\",\"KILL\"],"
                    "\"add\":[\"SYS_TIME\"]}}}");
    in = input(f, p);
    cfg = build_ok(&in);
    const char *want2[] = {"CAP_DAC_OVERRIDE", "CAP_FSETID",  "CAP_FOWNER",
                           "CAP_SETGID",       "CAP_SETUID",  "CAP_NET_BIND_SERVICE",
                           "CAP_SYS_CHROOT",   "CAP_SYS_TIME"};
    assert_caps(cfg, want2, 8);
    cJSON_Delete(cfg);
    cJSON_Delete(p);

    /* add ALL then drop one: everything but that one (containerd's order). */
    p = pod("", APP ",\"securityContext\":{\"capabilities\":{\"add\":[\"ALL\"],"
                    "\"drop\":[\"SYS_ADMIN\"]}}}");
    in = input(f, p);
    cfg = build_ok(&in);
    const cJSON *b = at(cfg, "process.capabilities.bounding");
    assert_true(has_str(b, "CAP_SYS_MODULE"));
    assert_false(has_str(b, "CAP_SYS_ADMIN"));
    assert_true(cJSON_GetArraySize(b) > 30);
    cJSON_Delete(cfg);
    cJSON_Delete(p);
}

static void test_caps_feed_seccomp(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("", APP ",\"securityContext\":{\"capabilities\":{\"add\":[\"SYS_ADMIN\"]}}}");
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    const cJSON *sc = at(cfg, "linux.seccomp");
    assert_non_null(sc);
    assert_string_equal(at_str(sc, "defaultAction"), "SCMP_ACT_ERRNO");
    assert_true(has_str(at(sc, "architectures"), "SCMP_ARCH_X86_64"));
    assert_int_equal(cJSON_GetArraySize(at(sc, "syscalls")), 2); /* read, and bpf via SYS_ADMIN */
    cJSON_Delete(cfg);
    cJSON_Delete(p);
    p = pod("", APP "}");
    in = input(f, p);
    cfg = build_ok(&in);
    assert_int_equal(cJSON_GetArraySize(at(cfg, "linux.seccomp.syscalls")), 1);
    cJSON_Delete(cfg);
    cJSON_Delete(p);
}

static void test_unknown_capability(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("", APP ",\"securityContext\":{\"capabilities\":{\"add\":[\"NET_ADMIN\","
                           "\"WIZARDRY\"]}}}");
    drv_spec_input_t in = input(f, p);
    build_err(&in, DRV_ERR_INVALID,
              "spec.containers[0].securityContext.capabilities.add[1]: unknown capability "
              "\"WIZARDRY\"");
    cJSON_Delete(p);
}

static void test_privileged(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("", APP ",\"securityContext\":{\"privileged\":true,\"capabilities\":"
                           "{\"drop\":[\"ALL\"]}}}");
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    const cJSON *b = at(cfg, "process.capabilities.effective");
    assert_true(has_str(b, "CAP_SYS_ADMIN"));
    assert_true(has_str(b, "CAP_CHOWN"));
    assert_false(cJSON_IsTrue(at(cfg, "process.noNewPrivileges")));
    assert_null(at(cfg, "linux.seccomp"));
    assert_null(at(cfg, "linux.maskedPaths"));
    assert_null(at(cfg, "linux.readonlyPaths"));
    assert_true(has_str(at(mount_at(cfg, "/sys"), "options"), "rw"));
    assert_true(has_str(at(mount_at(cfg, "/sys/fs/cgroup"), "options"), "rw"));
    const cJSON *devs = at(cfg, "linux.devices");
    assert_true(cJSON_IsArray(devs));
    for (const cJSON *d = devs->child; d; d = d->next) {
        assert_true(!strcmp(at_str(d, "type"), "c") || !strcmp(at_str(d, "type"), "b"));
        assert_string_not_equal(at_str(d, "path"), "/dev/null"); /* crun makes that one */
        assert_true(!strncmp(at_str(d, "path"), "/dev/", 5));
    }
    cJSON_Delete(cfg);
    cJSON_Delete(p);
}

static void test_no_new_privs_and_readonly_rootfs(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("", APP ",\"securityContext\":{\"allowPrivilegeEscalation\":true,"
                           "\"readOnlyRootFilesystem\":true}}");
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    assert_false(cJSON_IsTrue(at(cfg, "process.noNewPrivileges")));
    assert_true(cJSON_IsTrue(at(cfg, "root.readonly")));
    assert_string_equal(at_str(cfg, "root.path"), f->rootfs);
    assert_true(has_str(at(mount_at(cfg, "/etc/hosts"), "options"), "ro"));
    cJSON_Delete(cfg);
    cJSON_Delete(p);

    p = pod("", APP ",\"securityContext\":{\"allowPrivilegeEscalation\":false}}");
    in = input(f, p);
    cfg = build_ok(&in);
    assert_true(cJSON_IsTrue(at(cfg, "process.noNewPrivileges")));
    assert_false(cJSON_IsTrue(at(cfg, "root.readonly")));
    assert_true(has_str(at(mount_at(cfg, "/etc/hosts"), "options"), "rw"));
    cJSON_Delete(cfg);
    cJSON_Delete(p);
}

static void test_seccomp_profile_types(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("\"securityContext\":{\"seccompProfile\":{\"type\":\"Unconfined\"}}", APP "}");
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    assert_null(at(cfg, "linux.seccomp"));
    cJSON_Delete(cfg);
    cJSON_Delete(p);
    /* The container's RuntimeDefault wins over the pod's Unconfined. */
    p = pod("\"securityContext\":{\"seccompProfile\":{\"type\":\"Unconfined\"}}",
            APP ",\"securityContext\":{\"seccompProfile\":{\"type\":\"RuntimeDefault\"}}}");
    in = input(f, p);
    cfg = build_ok(&in);
    assert_non_null(at(cfg, "linux.seccomp"));
    cJSON_Delete(cfg);
    /* No cached profile: loaded from seccomp_path; a missing file is a clear error. */
    in.seccomp = NULL;
    in.seccomp_path = "/nonexistent/profile.json";
    build_err(&in, DRV_ERR_NOTFOUND, "RuntimeDefault seccomp profile");
    cJSON_Delete(p);
}

/* ---- mounts ---- */

static const char *volumes_spec = "\"volumes\":[{\"name\":\"cache\",\"emptyDir\":{}},"
                                  "{\"name\":\"logs\",\"hostPath\":{\"path\":\"HOSTDIR\"}},"
                                  "{\"name\":\"cfg\",\"configMap\":{\"name\":\"app-config\"}},"
                                  "{\"name\":\"creds\",\"secret\":{\"secretName\":\"db\"}},"
                                  "{\"name\":\"data\",\"emptyDir\":{}}]";

static cJSON *volume_pod(struct fx *f, const char *mounts)
{
    char spec[1024], ctr[2048];
    const char *h = strstr(volumes_spec, "HOSTDIR");
    snprintf(spec, sizeof(spec), "%.*s%s%s", (int)(h - volumes_spec), volumes_spec, f->hostdir,
             h + 7);
    snprintf(ctr, sizeof(ctr), APP ",\"volumeMounts\":[%s]}", mounts);
    return pod(spec, ctr);
}

static void assert_mount(const cJSON *cfg, const char *dest, const char *src, const char *bind,
                         const char *rw)
{
    const cJSON *m = mount_at(cfg, dest);
    if (!m)
        fail_msg("no mount at %s", dest);
    assert_string_equal(at_str(m, "type"), "bind");
    assert_string_equal(at_str(m, "source"), src);
    assert_true(has_str(at(m, "options"), bind));
    assert_true(has_str(at(m, "options"), rw));
    assert_true(has_str(at(m, "options"), "rprivate"));
}

static void test_volume_mounts(void **state)
{
    struct fx *f = *state;
    cJSON *p = volume_pod(f, "{\"name\":\"cache\",\"mountPath\":\"/var/cache/app\"},"
                             "{\"name\":\"logs\",\"mountPath\":\"/var/log/app\"},"
                             "{\"name\":\"cfg\",\"mountPath\":\"/etc/app\",\"readOnly\":true},"
                             "{\"name\":\"creds\",\"mountPath\":\"/run/secrets/db\","
                             "\"readOnly\":true}");
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    char src[256];
    snprintf(src, sizeof(src), "%s/cache", f->vols);
    assert_mount(cfg, "/var/cache/app", src, "bind", "rw");
    assert_mount(cfg, "/var/log/app", f->hostdir, "rbind", "rw");
    snprintf(src, sizeof(src), "%s/cfg", f->vols);
    assert_mount(cfg, "/etc/app", src, "bind", "ro");
    snprintf(src, sizeof(src), "%s/creds", f->vols);
    assert_mount(cfg, "/run/secrets/db", src, "bind", "ro");
    assert_mount(cfg, "/etc/resolv.conf", "/run/drover/pods/uid1/resolv.conf", "bind", "rw");
    assert_mount(cfg, "/etc/hostname", "/run/drover/pods/uid1/hostname", "bind", "rw");
    /* The standard file systems come first, in containerd's order. */
    const char *std[] = {"/proc",       "/dev", "/dev/pts",      "/dev/shm",
                         "/dev/mqueue", "/sys", "/sys/fs/cgroup"};
    for (int i = 0; i < 7; i++)
        assert_int_equal(mount_index(cfg, std[i]), i);
    assert_string_equal(at_str(mount_at(cfg, "/sys/fs/cgroup"), "type"), "cgroup");
    assert_true(has_str(at(mount_at(cfg, "/sys"), "options"), "ro"));
    assert_string_equal(at_str(mount_at(cfg, "/dev/shm"), "type"), "tmpfs");
    /* Parents before children: /etc/app (depth 2) before /var/cache/app (depth 3). */
    assert_true(mount_index(cfg, "/etc/app") < mount_index(cfg, "/var/cache/app"));
    cJSON_Delete(cfg);
    cJSON_Delete(p);
}

static void test_subpath(void **state)
{
    struct fx *f = *state;
    cJSON *p = volume_pod(f, "{\"name\":\"cfg\",\"mountPath\":\"/etc/app.conf\","
                             "\"subPath\":\"app.conf\"},"
                             "{\"name\":\"data\",\"mountPath\":\"/data\",\"subPath\":"
                             "\"tenants/a/./files\"}");
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    char src[256];
    snprintf(src, sizeof(src), "%s/cfg/app.conf", f->vols);
    assert_mount(cfg, "/etc/app.conf", src, "bind", "rw");
    snprintf(src, sizeof(src), "%s/data/tenants/a/files", f->vols);
    assert_mount(cfg, "/data", src, "bind", "rw");
    /* The missing subPath directory was created, like kubelet does. */
    struct stat st;
    assert_int_equal(stat(src, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    cJSON_Delete(cfg);
    cJSON_Delete(p);
}

static void test_subpath_symlink_escape(void **state)
{
    struct fx *f = *state;
    char link[256];
    snprintf(link, sizeof(link), "%s/data/escape", f->vols);
    assert_int_equal(symlink("/etc", link), 0);
    cJSON *p = volume_pod(f, "{\"name\":\"data\",\"mountPath\":\"/x\",\"subPath\":"
                             "\"escape/shadow\"}");
    drv_spec_input_t in = input(f, p);
    build_err(&in, DRV_ERR_PERM, "spec.containers[0].volumeMounts[0].subPath");
    cJSON_Delete(p);
    unlink(link);
}

static void test_user_mount_overrides_defaults(void **state)
{
    struct fx *f = *state;
    cJSON *p = volume_pod(f, "{\"name\":\"cache\",\"mountPath\":\"/dev/shm\"},"
                             "{\"name\":\"data\",\"mountPath\":\"/etc/hosts\",\"subPath\":"
                             "\"hosts\"}");
    char hosts[256];
    snprintf(hosts, sizeof(hosts), "%s/data/hosts", f->vols);
    write_file(hosts, "127.0.0.1 localhost\n");
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    assert_string_equal(at_str(mount_at(cfg, "/dev/shm"), "type"), "bind");
    assert_string_equal(at_str(mount_at(cfg, "/etc/hosts"), "source"), hosts);
    int n = 0;
    for (const cJSON *m = at(cfg, "mounts")->child; m; m = m->next)
        n += !strcmp(at_str(m, "destination"), "/etc/hosts") ||
             !strcmp(at_str(m, "destination"), "/dev/shm");
    assert_int_equal(n, 2);
    cJSON_Delete(cfg);
    cJSON_Delete(p);
}

/* ---- resources ---- */

static void test_resources(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("", APP ",\"resources\":{\"limits\":{\"cpu\":\"500m\",\"memory\":\"128Mi\"},"
                           "\"requests\":{\"cpu\":\"250m\",\"memory\":\"64Mi\"}}}");
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    assert_string_equal(at_str(cfg, "linux.cgroupsPath"), "/drover.slice/pod-uid1/app");
    assert_true(at_num(cfg, "linux.resources.memory.limit") == 134217728.0);
    assert_true(at_num(cfg, "linux.resources.cpu.quota") == 50000.0);
    assert_true(at_num(cfg, "linux.resources.cpu.period") == 100000.0);
    assert_true(at_num(cfg, "linux.resources.cpu.shares") == 256.0);
    assert_true(at_num(cfg, "linux.resources.pids.limit") == 1024.0);
    assert_null(at(cfg, "linux.resources.devices")); /* no eBPF device filter */
    cJSON_Delete(cfg);
    cJSON_Delete(p);

    /* A tiny limit gets kubelet's minimum quota; no requests means 2 shares. */
    p = pod("", APP ",\"resources\":{\"limits\":{\"cpu\":\"1m\"}}}");
    in = input(f, p);
    in.pids_limit = 64;
    cfg = build_ok(&in);
    assert_true(at_num(cfg, "linux.resources.cpu.quota") == 1000.0);
    assert_true(at_num(cfg, "linux.resources.cpu.shares") == 2.0);
    assert_true(at_num(cfg, "linux.resources.pids.limit") == 64.0);
    assert_null(at(cfg, "linux.resources.memory"));
    cJSON_Delete(cfg);
    cJSON_Delete(p);

    p = pod("", APP ",\"resources\":{\"requests\":{\"cpu\":\"2\"}}}");
    in = input(f, p);
    in.pids_limit = -1;
    cfg = build_ok(&in);
    assert_true(at_num(cfg, "linux.resources.cpu.shares") == 2048.0);
    assert_null(at(cfg, "linux.resources.cpu.quota"));
    assert_null(at(cfg, "linux.resources.pids"));
    cJSON_Delete(cfg);
    cJSON_Delete(p);
}

static void test_cgroups_disabled(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("", APP ",\"resources\":{\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}}}");
    drv_spec_input_t in = input(f, p);
    in.cgroups_path = NULL;
    cJSON *cfg = build_ok(&in);
    assert_null(at(cfg, "linux.cgroupsPath"));
    assert_null(at(cfg, "linux.resources"));
    cJSON_Delete(cfg);
    cJSON_Delete(p);
}

static void test_rlimit_nofile(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("", APP "}");
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    const cJSON *r = at(cfg, "process.rlimits")->child;
    assert_string_equal(at_str(r, "type"), "RLIMIT_NOFILE");
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_true(at_num(r, "hard") <= 1048576.0);
    assert_true(rl.rlim_max == RLIM_INFINITY || at_num(r, "hard") <= (double)rl.rlim_max);
    assert_true(at_num(r, "soft") == at_num(r, "hard"));
    assert_null(r->next);
    cJSON_Delete(cfg);
    cJSON_Delete(p);
}

/* ---- namespaces ---- */

static void test_namespaces_pod(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("\"hostname\":\"db-0\"", APP "}");
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    const char *path = NULL;
    assert_true(ns_has(cfg, "pid", &path));
    assert_null(path);
    assert_true(ns_has(cfg, "network", &path));
    assert_string_equal(path, "/run/drover/pods/uid1/net");
    assert_true(ns_has(cfg, "ipc", &path));
    assert_string_equal(path, "/run/drover/pods/uid1/ipc");
    assert_true(ns_has(cfg, "uts", &path));
    assert_string_equal(path, "/run/drover/pods/uid1/uts");
    assert_true(ns_has(cfg, "mount", &path));
    assert_null(path);
    assert_string_equal(at_str(cfg, "hostname"), "db-0");
    assert_string_equal(env_of(cfg, "HOSTNAME"), "db-0");
    cJSON_Delete(cfg);
    /* Without paths: private namespaces of its own. */
    in.netns_path = in.ipcns_path = in.utsns_path = NULL;
    in.shm_path = "/run/drover/pods/uid1/shm";
    cfg = build_ok(&in);
    assert_true(ns_has(cfg, "network", &path));
    assert_null(path);
    assert_string_equal(at_str(mount_at(cfg, "/dev/shm"), "source"), "/run/drover/pods/uid1/shm");
    cJSON_Delete(cfg);
    cJSON_Delete(p);
}

static void test_namespaces_host(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("\"hostNetwork\":true,\"hostPID\":true,\"hostIPC\":true", APP "}");
    drv_spec_input_t in = input(f, p);
    in.hostname = "pi-7";
    cJSON *cfg = build_ok(&in);
    assert_false(ns_has(cfg, "network", NULL));
    assert_false(ns_has(cfg, "uts", NULL));
    assert_false(ns_has(cfg, "pid", NULL));
    assert_false(ns_has(cfg, "ipc", NULL));
    assert_true(ns_has(cfg, "mount", NULL));
    assert_null(at(cfg, "hostname"));
    assert_string_equal(env_of(cfg, "HOSTNAME"), "pi-7");
    const cJSON *shm = mount_at(cfg, "/dev/shm");
    assert_string_equal(at_str(shm, "type"), "bind");
    assert_string_equal(at_str(shm, "source"), "/dev/shm");
    cJSON_Delete(cfg);
    cJSON_Delete(p);
}

/* ---- bad input ---- */

static void test_bad_input(void **state)
{
    struct fx *f = *state;
    cJSON *p = pod("", APP "}");
    drv_spec_input_t in = input(f, p);
    cJSON *out = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_spec_build(NULL, &out, &err), DRV_ERR_INVALID);
    in.rootfs = "relative/rootfs";
    build_err(&in, DRV_ERR_INVALID, "rootfs must be an absolute path");
    in = input(f, p);
    in.rootfs = "/nonexistent/rootfs";
    build_err(&in, DRV_ERR_IO, "rootfs /nonexistent/rootfs");
    cJSON *stray = cJSON_Parse("{\"name\":\"other\",\"image\":\"x\"}");
    in = input(f, p);
    in.container = stray;
    build_err(&in, DRV_ERR_INVALID, "container \"other\": not a container of the pod");
    cJSON_Delete(stray);
    /* A copy of the pod's container is found by name. */
    cJSON *copy = cJSON_Duplicate(container(p, "containers", 0), true);
    in = input(f, p);
    in.container = copy;
    cJSON_Delete(build_ok(&in));
    cJSON_Delete(copy);
    in = input(f, p);
    in.arch = "mips";
    build_err(&in, DRV_ERR_UNSUPPORTED, "mips");
    cJSON_Delete(p);
}

static void test_hostile_values(void **state)
{
    struct fx *f = *state;
    /* Secrets as given (not normalized): a NUL byte, and broken base64. */
    cJSON *sec = cJSON_Parse("{\"bin\":{\"metadata\":{\"name\":\"bin\"},\"data\":{\"nul\":"
                             "\"YQBi\",\"bad\":\"@@@\"}}}");
    cJSON *p = pod("", APP ",\"env\":[{\"name\":\"V\",\"valueFrom\":{\"secretKeyRef\":"
                           "{\"name\":\"bin\",\"key\":\"nul\"}}}]}");
    cJSON *bad = cJSON_Parse("{\"bin\":{\"metadata\":{\"name\":\"bin\"},\"data\":{\"bad\":"
                             "\"@@@\"}}}");
    drv_spec_input_t in = input(f, p);
    in.secrets = sec;
    build_err(&in, DRV_ERR_INVALID,
              "spec.containers[0].env[0]: secret \"bin\": data[nul] contains a NUL byte");
    cJSON_Delete(p);
    p = pod("", APP ",\"envFrom\":[{\"secretRef\":{\"name\":\"bin\"}}]}");
    in = input(f, p);
    in.secrets = bad;
    build_err(&in, DRV_ERR_INVALID, "spec.containers[0].envFrom[0]: secret \"bin\": data[bad]");
    cJSON_Delete(p);
    cJSON_Delete(sec);
    cJSON_Delete(bad);

    /* An image user name longer than any passwd entry. */
    p = pod("", APP "}");
    in = input(f, p);
    char longuser[400];
    memset(longuser, 'u', sizeof(longuser) - 1);
    longuser[sizeof(longuser) - 1] = '\0';
    f->img.user = longuser;
    build_err(&in, DRV_ERR_INVALID, "is too long");
    f->img.user = "";

    /* A FIFO as /etc/group must not block, a huge /etc/passwd is refused. */
    char path[256];
    snprintf(path, sizeof(path), "%s/etc/group", f->rootfs);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkfifo(path, 0644), 0);
    cJSON *cfg = build_ok(&in);
    assert_int_equal(cJSON_GetArraySize(at(cfg, "process.user.additionalGids")), 1);
    cJSON_Delete(cfg);
    snprintf(path, sizeof(path), "%s/etc/passwd", f->rootfs);
    FILE *fp = fopen(path, "a");
    assert_non_null(fp);
    assert_int_equal(ftruncate(fileno(fp), DRV_SPEC_ETC_FILE_MAX + 1), 0);
    fclose(fp);
    build_err(&in, DRV_ERR_TOOBIG, "image file /etc/passwd: larger than");
    cJSON_Delete(p);
}

static void test_init_container(void **state)
{
    struct fx *f = *state;
    char spec[512];
    snprintf(spec, sizeof(spec),
             "\"initContainers\":[{\"name\":\"setup\",\"image\":\"busybox\",\"env\":[{\"name\":"
             "\"X\",\"valueFrom\":{\"configMapKeyRef\":{\"name\":\"app-config\",\"key\":"
             "\"missing\"}}}]}]");
    cJSON *p = pod(spec, APP "}");
    drv_spec_input_t in = input(f, p);
    in.container = container(p, "initContainers", 0);
    in.is_init = true;
    build_err(&in, DRV_ERR_NOTFOUND, "spec.initContainers[0].env[0].valueFrom.configMapKeyRef");
    cJSON_Delete(p);
}

/* ---- podmisc: resourceFieldRef, groups, mountPropagation, /etc/hosts ---- */

static void test_resource_field_ref(void **state)
{
    struct fx *f = *state;
    cJSON *p =
        pod("\"securityContext\":{\"fsGroup\":2000,\"supplementalGroups\":[3000,50]}", APP
            ",\"resources\":{\"limits\":{\"cpu\":\"1500m\",\"memory\":\"100Mi\"},"
            "\"requests\":{\"cpu\":\"250m\"}},\"securityContext\":{\"runAsUser\":1000},"
            "\"env\":["
            "{\"name\":\"CPU\",\"valueFrom\":{\"resourceFieldRef\":{\"resource\":\"limits.cpu\"}}},"
            "{\"name\":\"CPU_M\",\"valueFrom\":{\"resourceFieldRef\":{\"resource\":"
            "\"requests.cpu\",\"divisor\":\"1m\"}}},"
            "{\"name\":\"MEM\",\"valueFrom\":{\"resourceFieldRef\":{\"resource\":"
            "\"limits.memory\",\"divisor\":\"1Mi\"}}},"
            "{\"name\":\"SIDE\",\"valueFrom\":{\"resourceFieldRef\":{\"containerName\":\"side\","
            "\"resource\":\"limits.memory\"}}},"
            "{\"name\":\"APP_LABEL\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":"
            "\"metadata.labels['app']\"}}}]},"
            "{\"name\":\"side\",\"image\":\"busybox:1.36\"}");
    cJSON_AddItemToObject(cJSON_GetObjectItem(p, "metadata"), "labels",
                          cJSON_Parse("{\"app\":\"web\"}"));
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    assert_string_equal(env_of(cfg, "CPU"), "2"); /* 1500m rounded up to whole cores */
    assert_string_equal(env_of(cfg, "CPU_M"), "250");
    assert_string_equal(env_of(cfg, "MEM"), "100");
    assert_string_equal(env_of(cfg, "APP_LABEL"), "web");
    /* No memory limit on side: the node's allocatable. */
    int64_t mc, mb;
    drv_spec_node_allocatable(&mc, &mb);
    char want[32];
    snprintf(want, sizeof(want), "%lld", (long long)mb);
    assert_string_equal(env_of(cfg, "SIDE"), want);
    /* supplementalGroups then fsGroup after the image's groups, once each. */
    const cJSON *ag = at(cfg, "process.user.additionalGids");
    assert_int_equal(cJSON_GetArraySize(ag), 5); /* 1001, 50, 44, 3000, 2000 */
    assert_int_equal(cJSON_GetArrayItem(ag, 3)->valueint, 3000);
    assert_int_equal(cJSON_GetArrayItem(ag, 4)->valueint, 2000);
    cJSON_Delete(cfg);
    cJSON_Delete(p);

    char out[32];
    drv_error_t err = DRV_ERROR_INIT;
    p = pod("", APP ",\"resources\":{\"limits\":{\"memory\":\"1G\"}}}");
    assert_int_equal(
        drv_spec_resource_value(p, "app", "limits.memory", "1Mi", out, sizeof(out), &err), DRV_OK);
    assert_string_equal(out, "954"); /* 10^9 / 2^20 = 953.67, rounded up */
    assert_int_equal(
        drv_spec_resource_value(p, "app", "requests.memory", "1k", out, sizeof(out), &err), DRV_OK);
    assert_string_equal(out, "1000000"); /* the request defaulted to the limit */
    assert_int_equal(drv_spec_resource_value(p, "nope", "limits.cpu", NULL, out, sizeof(out), &err),
                     DRV_ERR_NOTFOUND);
    assert_int_equal(
        drv_spec_resource_value(p, "app", "limits.ephemeral-storage", NULL, out, sizeof(out), &err),
        DRV_ERR_INVALID);
    cJSON_Delete(p);
}

static void test_mount_propagation(void **state)
{
    struct fx *f = *state;
    cJSON *p = volume_pod(f, "{\"name\":\"logs\",\"mountPath\":\"/host\","
                             "\"mountPropagation\":\"HostToContainer\"},"
                             "{\"name\":\"cache\",\"mountPath\":\"/c\"}");
    drv_spec_input_t in = input(f, p);
    cJSON *cfg = build_ok(&in);
    assert_true(has_str(at(mount_at(cfg, "/host"), "options"), "rslave"));
    assert_true(has_str(at(mount_at(cfg, "/c"), "options"), "rprivate"));
    assert_string_equal(at_str(cfg, "linux.rootfsPropagation"), "rslave");
    cJSON_Delete(cfg);
    cJSON_Delete(p);

    char spec[1024], ctr[1024];
    const char *h = strstr(volumes_spec, "HOSTDIR");
    snprintf(spec, sizeof(spec), "%.*s%s%s", (int)(h - volumes_spec), volumes_spec, f->hostdir,
             h + 7);
    snprintf(ctr, sizeof(ctr),
             APP ",\"securityContext\":{\"privileged\":true},\"volumeMounts\":[{\"name\":\"logs\","
                 "\"mountPath\":\"/host\",\"mountPropagation\":\"Bidirectional\"}]}");
    p = pod(spec, ctr);
    in = input(f, p);
    cfg = build_ok(&in);
    assert_true(has_str(at(mount_at(cfg, "/host"), "options"), "rshared"));
    assert_string_equal(at_str(cfg, "linux.rootfsPropagation"), "rshared");
    cJSON_Delete(cfg);
    cJSON_Delete(p);
}

static void test_hosts_file(void **state)
{
    (void)state;
    cJSON *p = pod("\"hostAliases\":[{\"ip\":\"10.1.2.3\",\"hostnames\":[\"foo.local\",\"bar\"]},"
                   "{\"ip\":\"fd00::1\",\"hostnames\":[\"six\"]}]",
                   APP "}");
    drv_buf_t b = DRV_BUF_INIT(4096);
    assert_int_equal(drv_spec_hosts_file(p, "10.42.0.7", "web", NULL, &b), DRV_OK);
    assert_string_equal(drv_buf_str(&b),
                        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                        "10.42.0.7\tweb\n\n# Entries added by HostAliases.\n"
                        "10.1.2.3\tfoo.local\tbar\nfd00::1\tsix\n");
    assert_int_equal(drv_spec_hosts_file(p, "", NULL, "127.0.0.1 localhost", &b), DRV_OK);
    assert_string_equal(drv_buf_str(&b), "127.0.0.1 localhost\n\n# Entries added by HostAliases.\n"
                                         "10.1.2.3\tfoo.local\tbar\nfd00::1\tsix\n");
    drv_buf_free(&b);
    cJSON_Delete(p);
    /* Without aliases: the file Drover always wrote. */
    p = pod("", APP "}");
    drv_buf_t c = DRV_BUF_INIT(4096);
    assert_int_equal(drv_spec_hosts_file(p, "10.42.0.7", "web", NULL, &c), DRV_OK);
    assert_string_equal(drv_buf_str(&c), "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
                                         "ip6-loopback\n10.42.0.7\tweb\n");
    drv_buf_free(&c);
    cJSON_Delete(p);
    /* A StatefulSet's pod (hostname + subdomain): its DNS name first, as the kubelet writes. */
    p = pod("\"hostname\":\"web-0\",\"subdomain\":\"web\"", APP "}");
    drv_buf_t d = DRV_BUF_INIT(4096);
    assert_int_equal(drv_spec_hosts_file(p, "10.42.0.7", "web-0", NULL, &d), DRV_OK);
    assert_string_equal(drv_buf_str(&d), "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
                                         "ip6-loopback\n10.42.0.7\tweb-0.web.prod.svc.cluster.local"
                                         "\tweb-0\n");
    drv_buf_free(&d);
    cJSON_Delete(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_args_from_image, setup, teardown),
        cmocka_unit_test_setup_teardown(test_args_kubernetes_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_command_is_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expansion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_order_and_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_value_from, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_missing_refs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cwd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_from_security_context, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_from_image, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passwd_symlink_stays_in_rootfs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_as_non_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caps_add_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caps_feed_seccomp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_capability, setup, teardown),
        cmocka_unit_test_setup_teardown(test_privileged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_new_privs_and_readonly_rootfs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seccomp_profile_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_volume_mounts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resource_field_ref, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mount_propagation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subpath, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subpath_symlink_escape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_mount_overrides_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cgroups_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rlimit_nofile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_namespaces_pod, setup, teardown),
        cmocka_unit_test_setup_teardown(test_namespaces_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_container, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
