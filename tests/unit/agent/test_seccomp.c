/* Tests for the RuntimeDefault seccomp translation: which syscalls a container gets for its
 * architecture, capabilities and kernel, against a small fixture profile and the real
 * containers-common file, and that a broken profile file is refused with a clear error. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/seccomp.h"

static const char *const default_caps[] = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
    "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",    "CAP_AUDIT_WRITE"};
#define N_DEFAULT (sizeof(default_caps) / sizeof(default_caps[0]))

static const char fixture[] =
    "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":38,"
    "\"archMap\":[{\"architecture\":\"SCMP_ARCH_X86_64\",\"subArchitectures\":"
    "[\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\"]},"
    "{\"architecture\":\"SCMP_ARCH_AARCH64\",\"subArchitectures\":[\"SCMP_ARCH_ARM\"]}],"
    "\"syscalls\":["
    "{\"names\":[\"read\",\"write\"],\"action\":\"SCMP_ACT_ALLOW\",\"comment\":\"x\"},"
    "{\"names\":[\"mount\"],\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"caps\":"
    "[\"CAP_SYS_ADMIN\"]}},"
    "{\"names\":[\"mount\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":1,\"excludes\":{\"caps\":"
    "[\"CAP_SYS_ADMIN\"]}},"
    "{\"names\":[\"reboot\"],\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"caps\":"
    "[\"CAP_SYS_BOOT\"]}},"
    "{\"names\":[\"arch_prctl\"],\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"arches\":"
    "[\"amd64\",\"x32\"]}},"
    "{\"names\":[\"set_tls\"],\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"arches\":"
    "[\"arm\",\"arm64\"]}},"
    "{\"names\":[\"not_on_arm\"],\"action\":\"SCMP_ACT_ALLOW\",\"excludes\":{\"arches\":"
    "[\"arm\"]}},"
    "{\"names\":[\"clone3\"],\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"minKernel\":\"5.3\"}},"
    "{\"names\":[\"oldcall\"],\"action\":\"SCMP_ACT_ALLOW\",\"excludes\":{\"minKernel\":\"5.0\"}},"
    "{\"name\":\"single\",\"action\":\"SCMP_ACT_ALLOW\"},"
    "{\"names\":[\"personality\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,"
    "\"value\":4294967295,\"op\":\"SCMP_CMP_EQ\"}]}"
    "]}";

static drv_seccomp_profile_t *load_fixture(void)
{
    drv_seccomp_profile_t *p = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_seccomp_parse(fixture, strlen(fixture), "fixture", &p, &err), DRV_OK);
    return p;
}

static cJSON *build(const drv_seccomp_profile_t *p, const char *arch, const char *const *caps,
                    size_t n, const char *kernel)
{
    drv_seccomp_target_t t = {arch, caps, n, kernel};
    cJSON *out = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_seccomp_build(p, &t, &out, &err);
    if (rc != DRV_OK)
        fail_msg("build: %s", drv_error_msg(&err));
    return out;
}

/* The action of the first rule without argument conditions naming sys, or NULL. */
static const char *action_of(const cJSON *sc, const char *sys)
{
    const cJSON *rules = cJSON_GetObjectItem(sc, "syscalls");
    for (const cJSON *r = rules->child; r; r = r->next) {
        if (cJSON_GetObjectItem(r, "args"))
            continue;
        const cJSON *names = cJSON_GetObjectItem(r, "names");
        for (const cJSON *n = names->child; n; n = n->next)
            if (!strcmp(n->valuestring, sys))
                return cJSON_GetObjectItem(r, "action")->valuestring;
    }
    return NULL;
}

static bool has_arch(const cJSON *sc, const char *a)
{
    const cJSON *l = cJSON_GetObjectItem(sc, "architectures");
    for (const cJSON *e = l->child; e; e = e->next)
        if (!strcmp(e->valuestring, a))
            return true;
    return false;
}

static void test_defaults_and_arches(void **state)
{
    drv_seccomp_profile_t *p = load_fixture();
    cJSON *sc = build(p, "x86_64", default_caps, N_DEFAULT, "6.1.0");
    assert_string_equal(cJSON_GetObjectItem(sc, "defaultAction")->valuestring, "SCMP_ACT_ERRNO");
    assert_int_equal(cJSON_GetObjectItem(sc, "defaultErrnoRet")->valueint, 38);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(sc, "architectures")), 3);
    assert_true(has_arch(sc, "SCMP_ARCH_X86_64"));
    assert_true(has_arch(sc, "SCMP_ARCH_X86"));
    assert_string_equal(action_of(sc, "read"), "SCMP_ACT_ALLOW");
    /* Profile comments are not copied into the runtime config. */
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(sc, "syscalls")->child, "comment"));
    cJSON_Delete(sc);

    sc = build(p, "aarch64", default_caps, N_DEFAULT, "6.1.0");
    assert_true(has_arch(sc, "SCMP_ARCH_AARCH64"));
    assert_true(has_arch(sc, "SCMP_ARCH_ARM"));
    assert_false(has_arch(sc, "SCMP_ARCH_X86_64"));
    cJSON_Delete(sc);

    /* 32-bit arm has no archMap entry: only itself. */
    sc = build(p, "armv7l", default_caps, N_DEFAULT, "6.1.0");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(sc, "architectures")), 1);
    assert_true(has_arch(sc, "SCMP_ARCH_ARM"));
    cJSON_Delete(sc);
    drv_seccomp_free(p);
}

static void test_arch_filters(void **state)
{
    drv_seccomp_profile_t *p = load_fixture();
    cJSON *x86 = build(p, "amd64", default_caps, N_DEFAULT, "6.1");
    cJSON *arm64 = build(p, "arm64", default_caps, N_DEFAULT, "6.1");
    cJSON *arm = build(p, "arm", default_caps, N_DEFAULT, "6.1");
    assert_non_null(action_of(x86, "arch_prctl"));
    assert_null(action_of(arm64, "arch_prctl"));
    assert_null(action_of(x86, "set_tls"));
    assert_non_null(action_of(arm64, "set_tls"));
    assert_non_null(action_of(arm, "set_tls"));
    assert_non_null(action_of(arm64, "not_on_arm"));
    assert_null(action_of(arm, "not_on_arm"));
    cJSON_Delete(x86);
    cJSON_Delete(arm64);
    cJSON_Delete(arm);
    drv_seccomp_free(p);
}

static void test_caps_filters(void **state)
{
    drv_seccomp_profile_t *p = load_fixture();
    cJSON *sc = build(p, "x86_64", default_caps, N_DEFAULT, "6.1");
    /* Without CAP_SYS_ADMIN mount is refused with EPERM; reboot falls to the default. */
    assert_string_equal(action_of(sc, "mount"), "SCMP_ACT_ERRNO");
    assert_null(action_of(sc, "reboot"));
    cJSON_Delete(sc);

    const char *admin[] = {"CAP_SYS_ADMIN", "CAP_SYS_BOOT"};
    sc = build(p, "x86_64", admin, 2, "6.1");
    assert_string_equal(action_of(sc, "mount"), "SCMP_ACT_ALLOW");
    assert_string_equal(action_of(sc, "reboot"), "SCMP_ACT_ALLOW");
    /* Exactly one mount rule: the ERRNO one is excluded by the capability. */
    int mounts = 0;
    for (const cJSON *r = cJSON_GetObjectItem(sc, "syscalls")->child; r; r = r->next)
        if (!strcmp(cJSON_GetObjectItem(r, "names")->child->valuestring, "mount"))
            mounts++;
    assert_int_equal(mounts, 1);
    cJSON_Delete(sc);
    drv_seccomp_free(p);
}

static void test_min_kernel(void **state)
{
    drv_seccomp_profile_t *p = load_fixture();
    cJSON *old = build(p, "x86_64", NULL, 0, "4.19.0-rpi");
    cJSON *new = build(p, "x86_64", NULL, 0, "5.10.103-v7l+");
    assert_null(action_of(old, "clone3"));
    assert_non_null(action_of(new, "clone3"));
    assert_non_null(action_of(old, "oldcall"));
    assert_null(action_of(new, "oldcall"));
    cJSON_Delete(old);
    cJSON_Delete(new);
    drv_seccomp_free(p);
}

static void test_args_and_single_name(void **state)
{
    drv_seccomp_profile_t *p = load_fixture();
    cJSON *sc = build(p, "x86_64", NULL, 0, "6.1");
    assert_string_equal(action_of(sc, "single"), "SCMP_ACT_ALLOW");
    const cJSON *pers = NULL;
    for (const cJSON *r = cJSON_GetObjectItem(sc, "syscalls")->child; r; r = r->next)
        if (!strcmp(cJSON_GetObjectItem(r, "names")->child->valuestring, "personality"))
            pers = r;
    assert_non_null(pers);
    const cJSON *a = cJSON_GetObjectItem(pers, "args")->child;
    assert_int_equal(cJSON_GetObjectItem(a, "index")->valueint, 0);
    assert_true(cJSON_GetObjectItem(a, "value")->valuedouble == 4294967295.0);
    assert_int_equal(cJSON_GetObjectItem(a, "valueTwo")->valueint, 0);
    assert_string_equal(cJSON_GetObjectItem(a, "op")->valuestring, "SCMP_CMP_EQ");
    char *text = cJSON_PrintUnformatted(pers);
    assert_non_null(strstr(text, "\"value\":4294967295"));
    free(text);
    cJSON_Delete(sc);
    drv_seccomp_free(p);
}

static void test_unsupported_arch(void **state)
{
    drv_seccomp_profile_t *p = load_fixture();
    drv_seccomp_target_t t = {"mips64", NULL, 0, "6.1"};
    cJSON *out = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_seccomp_build(p, &t, &out, &err), DRV_ERR_UNSUPPORTED);
    assert_null(out);
    assert_non_null(strstr(drv_error_msg(&err), "mips64"));
    t.arch = "x86_64";
    t.kernel_release = "garbage";
    assert_int_equal(drv_seccomp_build(p, &t, &out, &err), DRV_ERR_INVALID);
    assert_string_equal(drv_seccomp_arch_name("aarch64"), "SCMP_ARCH_AARCH64");
    assert_string_equal(drv_seccomp_arch_name("armhf"), "SCMP_ARCH_ARM");
    assert_null(drv_seccomp_arch_name("sparc"));
    assert_non_null(drv_seccomp_arch_name(NULL));
    drv_seccomp_free(p);
}

static void expect_bad(const char *json, const char *needle)
{
    drv_seccomp_profile_t *p = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_seccomp_parse(json, strlen(json), "bad.json", &p, &err);
    assert_int_equal(rc, DRV_ERR_INVALID);
    assert_null(p);
    if (!strstr(drv_error_msg(&err), needle))
        fail_msg("error \"%s\" lacks \"%s\"", drv_error_msg(&err), needle);
}

static void test_malformed_profiles(void **state)
{
    expect_bad("{", "not valid JSON");
    expect_bad("[]", "must be a JSON object");
    expect_bad("{\"syscalls\":[]}", "defaultAction");
    expect_bad("{\"defaultAction\":\"SCMP_ACT_NOPE\",\"syscalls\":[]}", "defaultAction");
    expect_bad("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":-1,\"syscalls\":[]}",
               "defaultErrnoRet");
    expect_bad("{\"defaultAction\":\"SCMP_ACT_ERRNO\"}", "syscalls");
    expect_bad("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":\"read\","
               "\"action\":\"SCMP_ACT_ALLOW\"}]}",
               "syscalls[0].names");
    expect_bad("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"read\"],"
               "\"action\":\"SCMP_ACT_ALLOW\"},{\"names\":[\"x\"],\"action\":\"ALLOW\"}]}",
               "syscalls[1].action");
    expect_bad("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"x\"],"
               "\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":7,\"value\":0,\"op\":"
               "\"SCMP_CMP_EQ\"}]}]}",
               "syscalls[0].args[0]: index");
    expect_bad("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"x\"],"
               "\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,\"value\":1,\"op\":"
               "\"EQ\"}]}]}",
               "op");
    expect_bad("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"x\"],"
               "\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"caps\":[\"CAP SYS\"]}}]}",
               "syscalls[0].includes.caps[0]");
    expect_bad("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"x\"],"
               "\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"minKernel\":\"five\"}}]}",
               "minKernel");
    expect_bad("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"archMap\":[{\"subArchitectures\":[]}],"
               "\"syscalls\":[]}",
               "archMap[0]");
}

static void test_load_errors(void **state)
{
    drv_seccomp_profile_t *p = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_seccomp_load("/nonexistent/seccomp.json", &p, &err), DRV_ERR_NOTFOUND);
    assert_null(p);
    assert_non_null(strstr(drv_error_msg(&err), "/nonexistent/seccomp.json"));
    /* Over the size cap: refused before parsing. */
    size_t big = DRV_SECCOMP_MAX_BYTES + 10;
    char *data = malloc(big);
    memset(data, ' ', big);
    assert_int_equal(drv_seccomp_parse(data, big, "big", &p, &err), DRV_ERR_TOOBIG);
    free(data);
}

/* The installed containers-common profile: the results users will see. */
static void test_real_profile(void **state)
{
    drv_seccomp_profile_t *p = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (access(DRV_SECCOMP_DEFAULT_PATH, R_OK) != 0)
        skip();
    assert_int_equal(drv_seccomp_load(DRV_SECCOMP_DEFAULT_PATH, &p, &err), DRV_OK);
    cJSON *sc = build(p, "aarch64", default_caps, N_DEFAULT, NULL);
    assert_true(has_arch(sc, "SCMP_ARCH_AARCH64"));
    assert_true(has_arch(sc, "SCMP_ARCH_ARM"));
    assert_string_equal(action_of(sc, "read"), "SCMP_ACT_ALLOW");
    /* Kernel-module, bpf and clock syscalls need their capability. */
    assert_string_equal(action_of(sc, "bpf"), "SCMP_ACT_ERRNO");
    assert_string_equal(action_of(sc, "init_module"), "SCMP_ACT_ERRNO");
    assert_string_equal(action_of(sc, "settimeofday"), "SCMP_ACT_ERRNO");
    assert_string_equal(action_of(sc, "kexec_load"), "SCMP_ACT_ERRNO");
    assert_string_equal(action_of(sc, "chroot"), "SCMP_ACT_ALLOW"); /* CAP_SYS_CHROOT */
    assert_null(action_of(sc, "arch_prctl"));
    /* The ptrace family beyond ptrace itself needs CAP_SYS_PTRACE. */
    assert_string_equal(action_of(sc, "kcmp"), "SCMP_ACT_ERRNO");
    assert_string_equal(action_of(sc, "process_madvise"), "SCMP_ACT_ERRNO");
    /* containers-common 0.50 (Debian 12) leaves mount, umount2, reboot and ptrace to the
     * kernel's capability checks: no CAP_SYS_ADMIN / CAP_SYS_BOOT / CAP_SYS_PTRACE by default
     * (test_crun_bundle shows mount refused in a real container). */
    assert_non_null(action_of(sc, "mount"));
    cJSON_Delete(sc);

    const char *admin[] = {"CAP_SYS_ADMIN", "CAP_SYS_MODULE"};
    sc = build(p, "x86_64", admin, 2, NULL);
    assert_string_equal(action_of(sc, "bpf"), "SCMP_ACT_ALLOW");
    assert_string_equal(action_of(sc, "init_module"), "SCMP_ACT_ALLOW");
    assert_string_equal(action_of(sc, "chroot"), "SCMP_ACT_ERRNO"); /* no CAP_SYS_CHROOT */
    assert_string_equal(action_of(sc, "arch_prctl"), "SCMP_ACT_ALLOW");
    cJSON_Delete(sc);
    drv_seccomp_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_arches),  cmocka_unit_test(test_arch_filters),
        cmocka_unit_test(test_caps_filters),         cmocka_unit_test(test_min_kernel),
        cmocka_unit_test(test_args_and_single_name), cmocka_unit_test(test_unsupported_arch),
        cmocka_unit_test(test_malformed_profiles),   cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_real_profile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
