/* The agent's usage sampling (agent/metrics/collect.c) over a fake root: cgroup v2 files of two
 * containers, /proc/stat and /proc/meminfo, a Raspberry Pi's thermal and throttling files; the
 * rates between two samples, kubelet's working set, and what a device without cgroups says. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics/collect.h"

static char g_root[64];

static void put(const char *rel, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(const char *rel, const char *fmt, ...)
{
    char path[512];
    assert_true(snprintf(path, sizeof(path), "%s%s", g_root, rel) < (int)sizeof(path));
    for (char *s = path + strlen(g_root) + 1; (s = strchr(s, '/')) != NULL; s++) {
        *s = '\0';
        (void)mkdir(path, 0755);
        *s = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    assert_int_equal(fclose(f), 0);
}

static void ctr_files(const char *uid, const char *name, unsigned long long usage_usec,
                      long long current, long long inactive, int ooms)
{
    char base[200];
    assert_true(snprintf(base, sizeof(base), "/sys/fs/cgroup/drover/pod-%s/%s/", uid, name) > 0);
    char p[300];
    snprintf(p, sizeof(p), "%scpu.stat", base);
    put(p,
        "usage_usec %llu\nuser_usec 1\nsystem_usec 1\nnr_periods 10\nnr_throttled 4\n"
        "throttled_usec 2500\n",
        usage_usec);
    snprintf(p, sizeof(p), "%smemory.current", base);
    put(p, "%lld\n", current);
    snprintf(p, sizeof(p), "%smemory.stat", base);
    put(p, "anon 100\nfile 200\nactive_file 50\ninactive_file %lld\n", inactive);
    snprintf(p, sizeof(p), "%smemory.events", base);
    put(p, "low 0\nhigh 0\nmax 3\noom 1\noom_kill %d\n", ooms);
}

static void node_files(unsigned long long busy, unsigned long long idle)
{
    put("/proc/stat",
        "cpu  %llu 0 0 %llu 0 0 0 0 0 0\ncpu0 1 0 0 1 0 0 0 0 0 0\n"
        "cpu1 1 0 0 1 0 0 0 0 0 0\nintr 1\n",
        busy, idle);
    put("/proc/meminfo", "MemTotal:        524288 kB\nMemFree:  1000 kB\n"
                         "MemAvailable:    262144 kB\n");
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_root, sizeof(g_root), "/tmp/drv-collect-XXXXXX");
    assert_non_null(mkdtemp(g_root));
    node_files(1000, 1000);
    put("/sys/class/thermal/thermal_zone0/temp", "48312\n");
    put("/sys/devices/platform/soc/soc:firmware/get_throttled", "0x50005\n");
    put("/var/lib/drover/.keep", "x");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_root);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void test_two_samples(void **state)
{
    (void)state;
    drv_collector_t *c;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_collector_new(g_root, "/var/lib/drover", true, &c, &err), DRV_OK);
    const drv_collect_ctr_t ctrs[] = {{"default", "web", "u1", "app", 0, 0},
                                      {"default", "web", "u1", "side", 2, 0},
                                      {"kube-system", "dns", "u2", "dns", 0, 0}};
    ctr_files("u1", "app", 1000000, 50 << 20, 10 << 20, 0);
    ctr_files("u1", "side", 0, 1 << 20, 0, 0);
    /* u2's container has no cgroup files (just created): nothing measured for it */
    drv_proto_metrics_t a, b;
    assert_int_equal(drv_collector_sample(c, "pi-1", ctrs, 3, 1000000, 5000, &a, &err), DRV_OK);
    assert_string_equal(a.node, "pi-1");
    assert_int_equal(a.n_pods, 2);
    assert_int_equal(a.pods[0].n_ctrs, 2);
    assert_false(a.pods[0].ctrs[0].has_cpu); /* a rate needs two samples */
    assert_true(a.pods[0].ctrs[0].has_memory);
    assert_int_equal(a.pods[0].ctrs[0].memory_bytes, 40 << 20); /* current - inactive_file */
    assert_int_equal(a.pods[0].ctrs[0].throttled_periods, 4);
    assert_int_equal(a.pods[0].ctrs[0].throttled_usec, 2500);
    assert_int_equal(a.pods[0].ctrs[1].restarts, 2);
    assert_false(a.pods[1].ctrs[0].has_memory);
    assert_false(a.has_cpu);
    assert_true(a.has_memory);
    assert_int_equal(a.memory_total_bytes, 512LL << 20);
    assert_int_equal(a.memory_bytes, 256LL << 20);
    assert_true(a.has_disk && a.disk_total_bytes > 0);
    assert_true(a.has_temp);
    assert_int_equal(a.temp_millicelsius, 48312);
    assert_true(a.has_throttled);
    assert_int_equal(a.throttled, 0x50005);

    /* 15 s later: app used 3 s of cpu (200 millicores), the node half of its two cpus. */
    ctr_files("u1", "app", 4000000, 60 << 20, 10 << 20, 1);
    node_files(2000, 2000);
    assert_int_equal(drv_collector_sample(c, "pi-1", ctrs, 3, 1015000, 20000, &b, &err), DRV_OK);
    assert_int_equal(b.window_ms, 15000);
    assert_true(b.pods[0].ctrs[0].has_cpu);
    assert_int_equal(b.pods[0].ctrs[0].cpu_nanocores, 200000000);
    assert_int_equal(b.pods[0].ctrs[0].oom_kills, 1);
    assert_true(b.pods[0].ctrs[1].has_cpu);
    assert_int_equal(b.pods[0].ctrs[1].cpu_nanocores, 0);
    assert_true(b.has_cpu);
    assert_int_equal(b.cpu_nanocores, 1000000000); /* 50 % of 2 cpus */
    assert_true(drv_collector_changed(&a, &b));    /* a rate appeared, an OOM kill */
    assert_false(drv_collector_changed(&b, &b));
    /* It round-trips through the protocol. */
    char *text;
    size_t len;
    assert_int_equal(drv_proto_metrics_format(&b, &text, &len, &err), DRV_OK);
    drv_proto_metrics_t back;
    assert_int_equal(drv_proto_metrics_parse(text, len, "pi-1", &back, &err), DRV_OK);
    drv_proto_metrics_free(&back);
    free(text);
    drv_proto_metrics_free(&a);
    drv_proto_metrics_free(&b);
    drv_collector_free(c);
}

/* A device whose pods have no cgroups reports the node and says what it cannot measure. */
static void test_no_cgroups(void **state)
{
    (void)state;
    drv_collector_t *c;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_collector_new(g_root, "/var/lib/drover", false, &c, &err), DRV_OK);
    const drv_collect_ctr_t ctrs[] = {{"default", "web", "u1", "app", 1, 0}};
    drv_proto_metrics_t m;
    assert_int_equal(drv_collector_sample(c, "pi-1", ctrs, 1, 1000000, 5000, &m, &err), DRV_OK);
    assert_int_equal(m.n_pods, 1);
    assert_false(m.pods[0].ctrs[0].has_cpu);
    assert_false(m.pods[0].ctrs[0].has_memory);
    assert_int_equal(m.pods[0].ctrs[0].restarts, 1);
    bool cpu = false, mem = false;
    for (size_t i = 0; i < m.n_unsupported; i++) {
        cpu |= strcmp(m.unsupported[i], "container-cpu") == 0;
        mem |= strcmp(m.unsupported[i], "container-memory") == 0;
    }
    assert_true(cpu && mem);
    assert_true(m.has_memory); /* the node still */
    drv_proto_metrics_free(&m);
    drv_collector_free(c);
}

/* Without cgroups, a container's usage is every process of its PID namespace, from /proc. */
static void proc_files(int pid, const char *ns, unsigned long ticks, long rss_pages)
{
    char rel[64], target[300], link[300];
    snprintf(rel, sizeof(rel), "/proc/%d/stat", pid);
    put(rel, "%d (sh) S 1 1 1 0 -1 0 0 0 0 0 %lu 0 0 0 20 0 1 0 100 1000 %ld 0\n", pid, ticks,
        rss_pages);
    snprintf(target, sizeof(target), "%s/ns-%s", g_root, ns);
    FILE *f = fopen(target, "a");
    assert_non_null(f);
    fclose(f);
    snprintf(link, sizeof(link), "%s/proc/%d/ns", g_root, pid);
    (void)mkdir(link, 0755);
    snprintf(link, sizeof(link), "%s/proc/%d/ns/pid", g_root, pid);
    (void)unlink(link);
    assert_int_equal(symlink(target, link), 0);
}

static void test_procfs(void **state)
{
    (void)state;
    drv_collector_t *c;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_collector_new(g_root, "/var/lib/drover", false, &c, &err), DRV_OK);
    long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    /* the container (init 100) and a child (101) in namespace A; another pod's in B */
    proc_files(100, "A", 0, 100);
    proc_files(101, "A", 0, 50);
    proc_files(200, "B", 0, 10);
    const drv_collect_ctr_t ctrs[] = {{"default", "web", "u1", "app", 0, 100}};
    drv_proto_metrics_t a, b;
    assert_int_equal(drv_collector_sample(c, "pi-1", ctrs, 1, 1000000, 5000, &a, &err), DRV_OK);
    assert_true(a.pods[0].ctrs[0].has_memory);
    assert_int_equal(a.pods[0].ctrs[0].memory_bytes, 150 * page);
    assert_false(a.pods[0].ctrs[0].has_cpu);
    /* 10 s later both processes used 1 s of cpu each: 200 millicores */
    proc_files(100, "A", (unsigned long)hz, 100);
    proc_files(101, "A", (unsigned long)hz, 50);
    proc_files(200, "B", (unsigned long)hz * 5, 10);
    assert_int_equal(drv_collector_sample(c, "pi-1", ctrs, 1, 1010000, 15000, &b, &err), DRV_OK);
    assert_true(b.pods[0].ctrs[0].has_cpu);
    assert_int_equal(b.pods[0].ctrs[0].cpu_nanocores, 200000000);
    bool said = false;
    for (size_t i = 0; i < b.n_unsupported; i++)
        said |= strcmp(b.unsupported[i], "cgroup-v2") == 0;
    assert_true(said);
    drv_proto_metrics_free(&a);
    drv_proto_metrics_free(&b);
    drv_collector_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_samples, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_cgroups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_procfs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
