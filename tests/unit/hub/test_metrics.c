/* The hub's usage history (hub/metrics): latest samples, staleness (a silent device's pods are
 * missing, not idle), refusals, the fine and coarse histories, and the memory budget. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"

#define T0 1765089900000LL /* on a 5-minute boundary */

static drv_proto_pod_usage_t g_pods[4];

/* A report from node at ms: node cpu c nanocores, and n pods of two containers each. */
static drv_proto_metrics_t report(const char *node, int64_t ms, int64_t c, size_t n)
{
    drv_proto_metrics_t r = {.time_ms = ms,
                             .window_ms = 15000,
                             .has_cpu = true,
                             .cpu_nanocores = c,
                             .has_memory = true,
                             .memory_bytes = 100 << 20,
                             .memory_total_bytes = 512 << 20,
                             .pods = g_pods,
                             .n_pods = n};
    snprintf(r.node, sizeof(r.node), "%s", node);
    for (size_t i = 0; i < n; i++) {
        drv_proto_pod_usage_t *p = &g_pods[i];
        memset(p, 0, sizeof(*p));
        snprintf(p->ns, sizeof(p->ns), "default");
        snprintf(p->name, sizeof(p->name), "%s-pod-%zu", node, i);
        snprintf(p->uid, sizeof(p->uid), "%s-uid-%zu", node, i);
        p->n_ctrs = 2;
        for (int k = 0; k < 2; k++) {
            snprintf(p->ctrs[k].name, sizeof(p->ctrs[k].name), "c%d", k);
            p->ctrs[k].has_cpu = p->ctrs[k].has_memory = true;
            p->ctrs[k].cpu_nanocores = c / 10;
            p->ctrs[k].memory_bytes = 1 << 20;
        }
    }
    return r;
}

static void take(drv_metrics_t *m, const drv_proto_metrics_t *r, int64_t now)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_metrics_ingest(m, r, now, &err) != DRV_OK)
        fail_msg("ingest: %s", err.msg);
}

static void test_latest_and_stale(void **state)
{
    (void)state;
    drv_metrics_t *m;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_metrics_new(NULL, &m, &err), DRV_OK);
    drv_proto_metrics_t r = report("pi-1", T0, 500000000, 2);
    take(m, &r, T0 + 100);

    drv_metrics_node_usage_t n;
    assert_true(drv_metrics_node_latest(m, "pi-1", T0 + 1000, &n));
    assert_int_equal(n.u.cpu_nanocores, 500000000);
    assert_int_equal(n.memory_total_bytes, 512 << 20);
    drv_metrics_pod_usage_t p;
    assert_true(drv_metrics_pod_latest(m, "pi-1-uid-1", T0 + 1000, &p));
    assert_string_equal(p.name, "pi-1-pod-1");
    assert_string_equal(p.node, "pi-1");
    assert_int_equal(p.n_ctrs, 2);
    assert_string_equal(p.ctrs[1].name, "c1");
    assert_true(p.u.has_cpu);
    assert_int_equal(p.u.cpu_nanocores, 100000000); /* the sum of its containers */
    assert_int_equal(p.u.memory_bytes, 2 << 20);
    /* A silent device: 60 s after the hub took its samples they are missing, not zero. */
    assert_false(drv_metrics_node_latest(m, "pi-1", T0 + 61000, &n));
    assert_false(drv_metrics_pod_latest(m, "pi-1-uid-1", T0 + 61000, &p));
    assert_false(drv_metrics_pod_latest(m, "nobody", T0, &p));

    /* A container that cannot be measured makes the pod's sum unknown. */
    drv_proto_metrics_t r2 = report("pi-1", T0 + 15000, 500000000, 1);
    g_pods[0].ctrs[1].has_cpu = false;
    take(m, &r2, T0 + 15000);
    assert_true(drv_metrics_pod_latest(m, "pi-1-uid-0", T0 + 15000, &p));
    assert_false(p.u.has_cpu);
    assert_true(p.u.has_memory);

    /* Expiry: pods silent for 10 minutes (since the hub took them) go, nodes stay until their
     * own limit. */
    assert_int_equal(drv_metrics_expire(m, T0 + 100 + 10 * 60000 + 1, 10 * 60000, 86400000), 1);
    assert_false(drv_metrics_pod_latest(m, "pi-1-uid-1", T0 + 15000, &p)); /* last at T0 */
    assert_true(drv_metrics_pod_latest(m, "pi-1-uid-0", T0 + 15000, &p));
    drv_metrics_forget_pod(m, "pi-1-uid-0");
    assert_false(drv_metrics_pod_latest(m, "pi-1-uid-0", T0 + 15000, &p));
    drv_metrics_forget_node(m, "pi-1");
    assert_false(drv_metrics_node_latest(m, "pi-1", T0 + 15000, &n));
    drv_metrics_free(m);
}

static void test_refused(void **state)
{
    (void)state;
    drv_metrics_t *m;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_metrics_new(NULL, &m, &err), DRV_OK);
    drv_proto_metrics_t r = report("pi-1", T0 + 120000, 1, 0);
    assert_int_equal(drv_metrics_ingest(m, &r, T0, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "ahead of the hub's clock"));
    r = report("pi-1", T0, 1, 0);
    take(m, &r, T0);
    assert_int_equal(drv_metrics_ingest(m, &r, T0 + 1000, &err), DRV_ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "not newer"));
    drv_metrics_count_refused(m);
    drv_metrics_stats_t st;
    drv_metrics_stats(m, &st);
    assert_int_equal(st.reports, 1);
    assert_int_equal(st.refused, 3);
    drv_metrics_free(m);

    /* The hard cap on series. */
    drv_metrics_opts_t o = {.max_series = 3};
    assert_int_equal(drv_metrics_new(&o, &m, &err), DRV_OK);
    r = report("a", T0, 1, 2); /* 3 series */
    take(m, &r, T0);
    r = report("b", T0, 1, 0);
    assert_int_equal(drv_metrics_ingest(m, &r, T0, &err), DRV_ERR_TOOBIG);
    drv_metrics_free(m);
}

static void test_history(void **state)
{
    (void)state;
    drv_metrics_t *m;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_metrics_new(NULL, &m, &err), DRV_OK);
    /* Two hours at 15 s, cpu rising by 1 millicore a sample; two samples in one step once. */
    for (int i = 0; i < 480; i++) {
        drv_proto_metrics_t r = report("pi-1", T0 + i * 15000LL, (int64_t)i * 1000000, 0);
        take(m, &r, T0 + i * 15000LL);
    }
    drv_proto_metrics_t extra = report("pi-1", T0 + 479 * 15000LL + 2000, 999000000, 0);
    take(m, &extra, T0 + 479 * 15000LL + 2000);
    drv_metrics_point_t pts[600];
    int64_t now = T0 + 479 * 15000LL + 2000;
    /* The last 10 minutes: fine points, the last one replaced by the later sample. */
    size_t n = drv_metrics_node_history(m, "pi-1", now - 10 * 60000, pts, 600);
    assert_int_equal(n, 40);
    assert_int_equal(pts[n - 1].cpu_nanocores, 999000000);
    assert_int_equal(pts[n - 2].cpu_nanocores, 478000000);
    assert_int_equal(pts[0].memory_bytes, 100 << 20);
    /* Two hours: beyond the fine ring (1 h), so 5-minute averages. */
    n = drv_metrics_node_history(m, "pi-1", T0, pts, 600);
    assert_true(n >= 24 && n <= 25);
    assert_int_equal(pts[0].cpu_nanocores, 9000000); /* mean of 0..19 millicores, whole */
    assert_true(pts[1].ms - pts[0].ms == 300000);
    assert_int_equal(drv_metrics_node_history(m, "nobody", T0, pts, 600), 0);
    drv_metrics_free(m);
}

static void test_budget(void **state)
{
    (void)state;
    drv_metrics_t *m;
    drv_error_t err = DRV_ERROR_INIT;
    /* Room for the histories of about 3 series. */
    drv_metrics_opts_t o = {.history_bytes_max = 3 * (528 * 12 + 200)};
    assert_int_equal(drv_metrics_new(&o, &m, &err), DRV_OK);
    for (int k = 0; k < 5; k++) {
        char node[16];
        snprintf(node, sizeof(node), "n%d", k);
        drv_proto_metrics_t r = report(node, T0, 1000000, 0);
        take(m, &r, T0);
    }
    drv_metrics_stats_t st;
    drv_metrics_stats(m, &st);
    assert_int_equal(st.nodes, 5);
    assert_int_equal(st.with_history, 3);
    assert_int_equal(st.without_history, 2);
    assert_true(st.history_bytes <= o.history_bytes_max);
    /* Beyond the budget: the latest sample still serves top and the HPA. */
    drv_metrics_node_usage_t nu;
    drv_metrics_point_t pts[4];
    int with = 0;
    for (int k = 0; k < 5; k++) {
        char node[16];
        snprintf(node, sizeof(node), "n%d", k);
        assert_true(drv_metrics_node_latest(m, node, T0, &nu));
        with += drv_metrics_node_history(m, node, T0 - 1000, pts, 4) > 0;
    }
    assert_int_equal(with, 3);
    /* Forgetting one frees its room for the next. */
    drv_metrics_forget_node(m, "n0");
    drv_proto_metrics_t r = report("n9", T0, 1, 0);
    take(m, &r, T0);
    drv_metrics_stats(m, &st);
    assert_int_equal(st.with_history, 3);
    drv_metrics_free(m);
}

/* Freshness is the hub's clock: a device whose clock is two minutes behind is not silent. */
static void test_device_clock_behind(void **state)
{
    (void)state;
    drv_metrics_t *m;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_metrics_new(NULL, &m, &err), DRV_OK);
    drv_proto_metrics_t r = report("pi-1", T0 - 120000, 1000000, 1);
    take(m, &r, T0);
    drv_metrics_node_usage_t n;
    drv_metrics_pod_usage_t p;
    assert_true(drv_metrics_node_latest(m, "pi-1", T0 + 1000, &n));
    assert_int_equal(n.u.ms, T0 - 120000); /* still the device's own time stamp */
    assert_true(drv_metrics_pod_latest(m, "pi-1-uid-0", T0 + 1000, &p));
    assert_false(drv_metrics_node_latest(m, "pi-1", T0 + 61000, &n));
    drv_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_latest_and_stale),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_history),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_device_clock_behind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
