/* Runs real containers with crun from bundles Drover builds: a busybox rootfs as two overlay
 * layers mounted by rootfs.c, config.json from drv_spec_build for a pod, then checks what the
 * container saw: its environment (image, configMap, secret, fieldRef), user and groups,
 * capabilities, seccomp filter and no_new_privs, a configMap volume, a read-only rootfs,
 * and that mount(2) is refused.
 *
 * This host's cgroups are in hybrid mode, which crun cannot use: everything runs in a forked
 * child with a private mount namespace that has cgroup2 on /sys/fs/cgroup, and the specs are
 * built with cgroups disabled (crun --cgroup-manager=disabled). The parent removes the
 * temporary directory afterwards, whatever happened. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drover/file.h"
#include "drover/model.h"
#include "runtime/rootfs.h"
#include "runtime/seccomp.h"
#include "runtime/spec.h"

#define BUSYBOX "/bin/busybox"
#define RUN_TIMEOUT_S 60

static char base[256];
static char crun[256];
static char layer_base[320], layer_app[320], volumes[320];
static char resolv[320], hosts[320], hostname_file[320];
static drv_seccomp_profile_t *profile;
static cJSON *configmaps, *secrets;
static int serial;

static char *img_env[] = {"PATH=/bin", "IMG_VAR=from-image", NULL};
static char *img_cmd[] = {"/bin/sh", NULL};

/* ---- helpers ---- */

static void write_text(const char *path, const char *text, mode_t mode)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_file_write_atomic(path, text, strlen(text), mode, &err) != DRV_OK)
        fail_msg("%s", drv_error_msg(&err));
}

static void mkdirs(const char *path, mode_t mode)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_file_mkdir_p(path, mode, &err) != DRV_OK)
        fail_msg("%s", drv_error_msg(&err));
    chmod(path, mode);
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    char buf[65536];
    ssize_t n = 0;
    while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n) {
            n = -1;
            break;
        }
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return in < 0 || out < 0 || n < 0 ? -1 : 0;
}

/* Runs argv with stdout and stderr into out; returns the exit status, killing it after the
 * timeout. */
static int run_capture(char *const argv[], char *out, size_t outsz)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(p[1], 1);
        dup2(p[1], 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    time_t deadline = time(NULL) + RUN_TIMEOUT_S;
    for (;;) {
        struct pollfd pfd = {p[0], POLLIN, 0};
        int r = poll(&pfd, 1, 1000);
        if (r > 0) {
            char tmp[4096];
            ssize_t n = read(p[0], tmp, sizeof(tmp));
            if (n <= 0)
                break;
            size_t k = (size_t)n < outsz - 1 - len ? (size_t)n : outsz - 1 - len;
            memcpy(out + len, tmp, k);
            len += k;
        }
        if (time(NULL) > deadline) {
            kill(pid, SIGKILL);
            break;
        }
    }
    out[len] = '\0';
    close(p[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static bool find_crun(void)
{
    const char *path = getenv("PATH");
    char dirs[1024];
    snprintf(dirs, sizeof(dirs), "%s:/usr/bin:/usr/sbin:/bin", path ? path : "");
    for (char *s = dirs; s && *s;) {
        char *colon = strchr(s, ':');
        if (colon)
            *colon = '\0';
        int n = snprintf(crun, sizeof(crun), "%s/crun", s);
        if (*s && n > 0 && (size_t)n < sizeof(crun) && access(crun, X_OK) == 0)
            return true;
        s = colon ? colon + 1 : NULL;
    }
    return false;
}

/* ---- the image and the pod's files ---- */

static int group_setup(void **state)
{
    snprintf(layer_base, sizeof(layer_base), "%s/layers/base", base);
    snprintf(layer_app, sizeof(layer_app), "%s/layers/app", base);
    snprintf(volumes, sizeof(volumes), "%s/volumes", base);
    char p[512];
    /* Layer 1: busybox and its applets, mount points. */
    const char *dirs[] = {"bin", "proc", "dev", "sys", "tmp", "etc", "mnt", "srv"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", layer_base, dirs[i]);
        mkdirs(p, 0755);
    }
    snprintf(p, sizeof(p), "%s/tmp", layer_base);
    chmod(p, 01777);
    snprintf(p, sizeof(p), "%s/bin/busybox", layer_base);
    if (copy_file(BUSYBOX, p, 0755) != 0)
        return -1;
    const char *applets[] = {"sh",    "echo", "id",  "grep",     "cat", "mount",
                             "touch", "pwd",  "env", "hostname", "ls"};
    for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++) {
        snprintf(p, sizeof(p), "%s/bin/%s", layer_base, applets[i]);
        if (symlink("busybox", p) != 0)
            return -1;
    }
    snprintf(p, sizeof(p), "%s/etc/motd", layer_base);
    write_text(p, "base\n", 0644);
    /* Layer 2: the users, and a file that hides the base layer's. */
    snprintf(p, sizeof(p), "%s/etc", layer_app);
    mkdirs(p, 0755);
    snprintf(p, sizeof(p), "%s/etc/passwd", layer_app);
    write_text(p, "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/srv:/bin/sh\n", 0644);
    snprintf(p, sizeof(p), "%s/etc/group", layer_app);
    write_text(p, "root:x:0:\napp:x:1001:\nstaff:x:50:app\n", 0644);
    snprintf(p, sizeof(p), "%s/etc/motd", layer_app);
    write_text(p, "app layer\n", 0644);

    /* Volumes as the agent prepares them, and the pod's /etc files. */
    snprintf(p, sizeof(p), "%s/cfg", volumes);
    mkdirs(p, 0755);
    snprintf(p, sizeof(p), "%s/cfg/greeting", volumes);
    write_text(p, "hello from configmap\n", 0644);
    snprintf(p, sizeof(p), "%s/scratch", volumes);
    mkdirs(p, 0777);
    snprintf(resolv, sizeof(resolv), "%s/resolv.conf", base);
    write_text(resolv, "nameserver 127.0.0.1\n", 0644);
    snprintf(hosts, sizeof(hosts), "%s/hosts", base);
    write_text(hosts, "127.0.0.1 localhost\n", 0644);
    snprintf(hostname_file, sizeof(hostname_file), "%s/hostname", base);
    write_text(hostname_file, "echo\n", 0644);

    configmaps = cJSON_Parse("{\"settings\":{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
                             "\"metadata\":{\"name\":\"settings\"},\"data\":{\"greeting\":"
                             "\"hi there\"}}}");
    secrets = cJSON_Parse("{\"creds\":{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":"
                          "{\"name\":\"creds\"},\"type\":\"Opaque\",\"data\":{\"token\":"
                          "\"dG9wLXNlY3JldA==\"}}}"); /* "top-secret" */
    drv_error_t err = DRV_ERROR_INIT;
    if (!configmaps || !secrets ||
        drv_seccomp_load(DRV_SECCOMP_DEFAULT_PATH, &profile, &err) != DRV_OK) {
        fprintf(stderr, "setup: %s\n", drv_error_msg(&err));
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    drv_seccomp_free(profile);
    cJSON_Delete(configmaps);
    cJSON_Delete(secrets);
    return 0;
}

#define SCRIPT                                                                                     \
    "echo cm=$FROM_CM; echo secret=$FROM_SECRET; echo pod=$POD_NAME; echo img=$IMG_VAR; "          \
    "echo host=$(hostname); echo uid=$(id -u) gid=$(id -g) groups=$(id -G); "                      \
    "grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs):' /proc/self/status; "                           \
    "echo file=$(cat /etc/cfg/greeting); echo motd=$(cat /etc/motd); echo pwd=$(pwd); "            \
    "if mount -t tmpfs none /mnt 2>/dev/null; then echo mount=allowed; else echo "                 \
    "mount=denied; fi; "                                                                           \
    "if touch /rootfile 2>/dev/null; then echo rootfs=rw; else echo rootfs=ro; fi; "               \
    "if echo x > /scratch/f$(id -u); then echo scratch=rw; fi"

/* Builds the bundle for a pod whose container has security context sc, runs it with crun
 * and returns its output in out; the rootfs is unmounted and removed afterwards. */
static int run_pod(const char *sc, const char *image_user, char *out, size_t outsz)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"echo\","
             "\"namespace\":\"itest\"},\"spec\":{\"volumes\":[{\"name\":\"cfg\",\"configMap\":"
             "{\"name\":\"settings\"}},{\"name\":\"scratch\",\"emptyDir\":{}}],"
             "\"containers\":[{\"name\":\"app\",\"image\":\"busybox:1.36\",\"workingDir\":"
             "\"/srv\",\"command\":[\"/bin/sh\",\"-c\",\"%s\"],\"env\":["
             "{\"name\":\"FROM_CM\",\"valueFrom\":{\"configMapKeyRef\":{\"name\":\"settings\","
             "\"key\":\"greeting\"}}},"
             "{\"name\":\"FROM_SECRET\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"creds\","
             "\"key\":\"token\"}}},"
             "{\"name\":\"POD_NAME\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":"
             "\"metadata.name\"}}}],"
             "\"volumeMounts\":[{\"name\":\"cfg\",\"mountPath\":\"/etc/cfg\",\"readOnly\":true},"
             "{\"name\":\"scratch\",\"mountPath\":\"/scratch\"}],"
             "\"securityContext\":%s}]}}",
             SCRIPT, sc);
    cJSON *pod = cJSON_Parse(text);
    assert_non_null(pod);
    drv_diags_t d = {0};
    if (drv_model_normalize(pod, &d) != DRV_OK)
        fail_msg("pod: %s", drv_diags_format(&d, ""));
    drv_diags_free(&d);

    char state[512], rootfs[600], id[64];
    int n = ++serial;
    snprintf(state, sizeof(state), "%s/containers/c%d", base, n);
    snprintf(id, sizeof(id), "drover-itest-%d-%d", (int)getpid(), n);
    const char *layers[] = {layer_base, layer_app};
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_rootfs_mount(layers, 2, state, NULL, &err) != DRV_OK)
        fail_msg("rootfs: %s", drv_error_msg(&err));
    assert_int_equal(drv_rootfs_path(state, rootfs, sizeof(rootfs)), DRV_OK);

    drv_oci_config_t img = {0};
    img.env = img_env;
    img.n_env = 2;
    img.cmd = img_cmd;
    img.n_cmd = 1;
    img.working_dir = "";
    img.user = (char *)image_user;
    drv_spec_input_t in = {0};
    in.pod = pod;
    in.container =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "spec"), "containers"), 0);
    in.image = &img;
    in.rootfs = rootfs;
    in.configmaps = configmaps;
    in.secrets = secrets;
    in.volumes_dir = volumes;
    in.resolv_conf = resolv;
    in.hosts = hosts;
    in.hostname_file = hostname_file;
    in.cgroups_path = NULL; /* crun --cgroup-manager=disabled */
    in.seccomp = profile;
    cJSON *cfg = NULL;
    if (drv_spec_build(&in, &cfg, &err) != DRV_OK)
        fail_msg("spec: %s", drv_error_msg(&err));
    char *json = cJSON_Print(cfg);
    char cfgpath[600];
    snprintf(cfgpath, sizeof(cfgpath), "%s/config.json", state);
    write_text(cfgpath, json, 0600);
    free(json);
    cJSON_Delete(cfg);
    cJSON_Delete(pod);

    char *argv[] = {crun, "--cgroup-manager=disabled", "run", "--bundle", state, id, NULL};
    int rc = run_capture(argv, out, outsz);
    char ignore[4096];
    char *del[] = {crun, "delete", "-f", id, NULL};
    (void)run_capture(del, ignore, sizeof(ignore));
    if (drv_rootfs_unmount(state, true, &err) != DRV_OK)
        fail_msg("unmount: %s", drv_error_msg(&err));
    print_message("---- container output (exit %d) ----\n%s", rc, out);
    return rc;
}

static void expect(const char *out, const char *line)
{
    if (!strstr(out, line))
        fail_msg("container output lacks \"%s\"", line);
}

/* ---- tests ---- */

static void test_root_container(void **state)
{
    char out[8192];
    assert_int_equal(run_pod("{}", "", out, sizeof(out)), 0);
    expect(out, "cm=hi there\n");
    expect(out, "secret=top-secret\n");
    expect(out, "pod=echo\n");
    expect(out, "img=from-image\n");
    expect(out, "host=echo\n");
    expect(out, "uid=0 gid=0");
    expect(out, "CapEff:\t00000000a80425fb\n"); /* containerd's default set */
    expect(out, "CapBnd:\t00000000a80425fb\n");
    expect(out, "NoNewPrivs:\t1\n");
    expect(out, "Seccomp:\t2\n");
    expect(out, "file=hello from configmap\n");
    expect(out, "motd=app layer\n"); /* the upper image layer wins */
    expect(out, "pwd=/srv\n");
    expect(out, "mount=denied\n");
    expect(out, "rootfs=rw\n");
    expect(out, "scratch=rw\n");
}

static void test_user_by_name_and_readonly_rootfs(void **state)
{
    char out[8192];
    assert_int_equal(
        run_pod("{\"runAsNonRoot\":true,\"readOnlyRootFilesystem\":true}", "app", out, sizeof(out)),
        0);
    expect(out, "uid=1000 gid=1001 groups=1001 50\n");
    expect(out, "CapEff:\t0000000000000000\n"); /* a non-root user keeps no capabilities */
    expect(out, "Seccomp:\t2\n");
    expect(out, "rootfs=ro\n");
    expect(out, "scratch=rw\n");
    expect(out, "mount=denied\n");
}

static void test_capabilities_and_unconfined(void **state)
{
    char out[8192];
    assert_int_equal(run_pod("{\"allowPrivilegeEscalation\":true,\"capabilities\":{\"drop\":"
                             "[\"ALL\"],\"add\":[\"NET_BIND_SERVICE\"]},\"seccompProfile\":"
                             "{\"type\":\"Unconfined\"}}",
                             "", out, sizeof(out)),
                     0);
    expect(out, "CapEff:\t0000000000000400\n");
    expect(out, "CapBnd:\t0000000000000400\n");
    expect(out, "NoNewPrivs:\t0\n");
    expect(out, "Seccomp:\t0\n");
    expect(out, "mount=denied\n");
}

/* ---- process setup ---- */

static int rm_entry(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(p);
}

static int child_main(void)
{
    if (unshare(CLONE_NEWNS) < 0) {
        perror("unshare");
        return 1;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        perror("make / private");
        return 1;
    }
    /* crun cannot use hybrid cgroups: give it a plain cgroup2 hierarchy. */
    if (mount("none", "/sys/fs/cgroup", "cgroup2", 0, NULL) < 0) {
        perror("mount cgroup2");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root_container),
        cmocka_unit_test(test_user_by_name_and_readonly_rootfs),
        cmocka_unit_test(test_capabilities_and_unconfined),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "test_crun_bundle: needs root, skipped\n");
        return 77;
    }
    if (!find_crun() || access(BUSYBOX, X_OK) != 0 || access(DRV_SECCOMP_DEFAULT_PATH, R_OK) != 0) {
        fprintf(stderr, "test_crun_bundle: crun, %s or %s missing (ports/debian/install-deps)\n",
                BUSYBOX, DRV_SECCOMP_DEFAULT_PATH);
        return getenv("DROVER_ALLOW_SKIP") ? 77 : 1;
    }
    snprintf(base, sizeof(base), "/tmp/drover-test-crun-XXXXXX");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0)
        _exit(child_main());
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    /* The child's mounts died with its namespace; never cross into a mount that did not. */
    nftw(base, rm_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
