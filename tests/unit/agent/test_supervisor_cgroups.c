/* The supervisor's cgroup decision at start (drv_supervisor_cgroup_decide): limits with the
 * memory, cpu and pids controllers; without them the node is NotReady with reason
 * CgroupControllersMissing and a message saying what to change, unless allowNoCgroups keeps
 * the old behaviour (pods without limits). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "link/link.h"
#include "pod/supervisor.h"

/* A Raspberry Pi kernel without cgroup_enable=memory: memory disabled, not in the v2 list. */
static const char *pi_proc_cgroups = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
                                     "cpuset\t0\t85\t1\ncpu\t0\t85\t1\ncpuacct\t0\t85\t1\n"
                                     "blkio\t0\t85\t1\nmemory\t0\t85\t0\ndevices\t0\t85\t1\n"
                                     "freezer\t0\t85\t1\nnet_cls\t0\t1\t1\npids\t0\t85\t1\n";
/* A hybrid host: the controllers bound to v1 hierarchies. */
static const char *hybrid_proc_cgroups = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
                                         "cpu\t3\t1\t1\nmemory\t4\t90\t1\npids\t8\t90\t1\n";

static void test_all_there(void **state)
{
    (void)state;
    drv_cgroup_verdict_t v;
    drv_supervisor_cgroup_decide(DRV_CGROUPS_AUTO, false, true,
                                 "cpuset cpu io memory hugetlb pids rdma misc\n", NULL, &v);
    assert_true(v.limits);
    assert_true(v.ready);
    assert_string_equal(v.reason, "");
    drv_supervisor_cgroup_decide(DRV_CGROUPS_REQUIRED, false, true, "memory pids cpu", NULL, &v);
    assert_true(v.limits);
    assert_true(v.ready);
}

static void test_pi_without_memory(void **state)
{
    (void)state;
    drv_cgroup_verdict_t v;
    const char *ctl = "cpuset cpu io pids\n";
    drv_supervisor_cgroup_decide(DRV_CGROUPS_AUTO, false, true, ctl, pi_proc_cgroups, &v);
    assert_false(v.limits);
    assert_false(v.ready);
    assert_string_equal(v.reason, "CgroupControllersMissing");
    assert_string_equal(v.message, "the memory cgroup controller is not enabled: add "
                                   "cgroup_enable=memory cgroup_memory=1 to cmdline.txt");
    /* Same when /proc/cgroups cannot be read; and with cgroups: required. */
    drv_supervisor_cgroup_decide(DRV_CGROUPS_REQUIRED, false, true, ctl, NULL, &v);
    assert_false(v.ready);
    assert_non_null(strstr(v.message, "cgroup_enable=memory cgroup_memory=1"));
    /* required ignores allowNoCgroups. */
    drv_supervisor_cgroup_decide(DRV_CGROUPS_REQUIRED, true, true, ctl, NULL, &v);
    assert_false(v.ready);
    /* allowNoCgroups with auto keeps today's behaviour: pods run, without limits, and say so. */
    drv_supervisor_cgroup_decide(DRV_CGROUPS_AUTO, true, true, ctl, pi_proc_cgroups, &v);
    assert_true(v.ready);
    assert_false(v.limits);
    assert_string_equal(v.reason, "");
    assert_non_null(strstr(v.message, "not enabled"));
    assert_non_null(strstr(v.message, "running pods WITHOUT resource limits"));
}

static void test_other_controllers(void **state)
{
    (void)state;
    drv_cgroup_verdict_t v;
    drv_supervisor_cgroup_decide(DRV_CGROUPS_AUTO, false, true, "memory cpu", NULL, &v);
    assert_false(v.ready);
    assert_string_equal(v.reason, "CgroupControllersMissing");
    assert_non_null(strstr(v.message, "the pids cgroup controller is not available"));
    const char *off = "cpu\t0\t1\t0\npids\t0\t1\t1\nmemory\t0\t1\t1\n";
    drv_supervisor_cgroup_decide(DRV_CGROUPS_AUTO, false, true, "memory pids", off, &v);
    assert_non_null(strstr(v.message, "the cpu cgroup controller is disabled on the kernel "
                                      "command line (cgroup_disable=cpu)"));
    /* "cpuset" is not "cpu". */
    drv_supervisor_cgroup_decide(DRV_CGROUPS_AUTO, false, true, "cpuset memory pids", NULL, &v);
    assert_false(v.ready);
    assert_non_null(strstr(v.message, "the cpu cgroup controller"));
    drv_supervisor_cgroup_decide(DRV_CGROUPS_AUTO, false, true, "cpu pids", hybrid_proc_cgroups,
                                 &v);
    assert_non_null(strstr(v.message, "the memory cgroup controller is bound to cgroup v1"));
    drv_supervisor_cgroup_decide(DRV_CGROUPS_AUTO, false, true, NULL, NULL, &v);
    assert_false(v.ready);
    assert_non_null(strstr(v.message, "cannot read /sys/fs/cgroup/cgroup.controllers"));
}

static void test_hybrid_host(void **state)
{
    (void)state;
    drv_cgroup_verdict_t v;
    drv_supervisor_cgroup_decide(DRV_CGROUPS_AUTO, false, false, NULL, hybrid_proc_cgroups, &v);
    assert_false(v.ready);
    assert_false(v.limits);
    assert_string_equal(v.reason, "CgroupControllersMissing");
    assert_non_null(strstr(v.message, "not a cgroup v2 file system"));
    /* The integration tests on such a host set allowNoCgroups: true. */
    drv_supervisor_cgroup_decide(DRV_CGROUPS_AUTO, true, false, NULL, hybrid_proc_cgroups, &v);
    assert_true(v.ready);
    assert_false(v.limits);
}

static void test_disabled(void **state)
{
    (void)state;
    drv_cgroup_verdict_t v;
    drv_supervisor_cgroup_decide(DRV_CGROUPS_DISABLED, false, false, NULL, NULL, &v);
    assert_true(v.ready);
    assert_false(v.limits);
    assert_string_equal(v.message, "disabled by configuration: no resource limits");
}

/* The link's report to the hub carries the supervisor's Ready condition as it is: False, with
 * the reason and message (agent/link is not changed for this; this pins the contract). */
static void test_report_carries_reason(void **state)
{
    (void)state;
    const char *sv =
        "{\"node\": {\"name\": \"pi-1\", \"capacity\": {}, \"allocatable\": {},"
        " \"nodeInfo\": {\"architecture\": \"arm64\"}, \"conditions\": [{\"type\":"
        " \"Ready\", \"status\": \"False\", \"reason\": \"CgroupControllersMissing\","
        " \"message\": \"the memory cgroup controller is not enabled\"}]}, \"pods\": []}";
    cJSON *st = cJSON_Parse(sv);
    assert_non_null(st);
    drv_agent_config_t cfg;
    drv_agent_config_defaults(&cfg);
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *rep = drv_link_status_report(&cfg, st, 1, "2026-01-01T00:00:00Z", NULL, &err);
    assert_non_null(rep);
    char *text = cJSON_PrintUnformatted(rep);
    assert_non_null(strstr(text, "\"status\":\"False\""));
    assert_non_null(strstr(text, "\"reason\":\"CgroupControllersMissing\""));
    assert_non_null(strstr(text, "\"message\":\"the memory cgroup controller is not enabled\""));
    free(text);
    cJSON_Delete(rep);
    cJSON_Delete(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_there),         cmocka_unit_test(test_pi_without_memory),
        cmocka_unit_test(test_other_controllers), cmocka_unit_test(test_hybrid_host),
        cmocka_unit_test(test_disabled),          cmocka_unit_test(test_report_carries_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
