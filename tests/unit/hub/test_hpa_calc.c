/* The HPA's arithmetic (hub/ctrl/hpa_calc.c) against the cases of Kubernetes' documentation
 * ("Horizontal Pod Autoscaling": algorithm details, tolerance, missing metrics, readiness,
 * stabilisation, scaling policies) and of its replica calculator's tests. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "ctrl/hpa_calc.h"

#define NOW (1700000000000LL)
#define MIN (60 * 1000LL)

/* A running, long-ready pod requesting req with usage use (use < 0: no metric). */
static drv_hpa_pod_t pod(const char *name, int64_t req, int64_t use)
{
    return (drv_hpa_pod_t){.name = name,
                           .phase = DRV_HPA_PHASE_RUNNING,
                           .has_ready = true,
                           .ready = true,
                           .ready_ms = NOW - 60 * MIN,
                           .has_start = true,
                           .start_ms = NOW - 61 * MIN,
                           .request = req,
                           .has_metric = use >= 0,
                           .value = use < 0 ? 0 : use,
                           .metric_ms = NOW - 5000,
                           .metric_window_ms = 15000};
}

static const drv_hpa_target_t CPU50 = {.cpu = true, .utilization = true, .percent = 50};

static int32_t replicas(const drv_hpa_pod_t *p, size_t n, const drv_hpa_target_t *t,
                        int32_t current)
{
    drv_hpa_proposal_t out;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_hpa_calc_replicas(p, n, t, current, NOW, &out, &err);
    if (rc != DRV_OK)
        fail_msg("drv_hpa_calc_replicas: %s", err.msg);
    return out.replicas;
}

/* desiredReplicas = ceil(currentReplicas * currentMetric / desiredMetric) */
static void test_ratio(void **state)
{
    (void)state;
    drv_hpa_pod_t p[] = {pod("a", 100, 90), pod("b", 100, 90)};
    drv_hpa_proposal_t out;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hpa_calc_replicas(p, 2, &CPU50, 2, NOW, &out, &err), DRV_OK);
    assert_int_equal(out.replicas, 4); /* 90 % / 50 % = 1.8; ceil(1.8 x 2) */
    assert_int_equal(out.utilization, 90);
    assert_int_equal(out.avg_value, 90);
    /* The documentation's example: 200m current for a 100m target: double. */
    drv_hpa_target_t v = {.cpu = true, .avg_value = 100};
    drv_hpa_pod_t q[] = {pod("a", 500, 200), pod("b", 500, 200), pod("c", 500, 200)};
    assert_int_equal(replicas(q, 3, &v, 3), 6);
    /* 50m for 100m: halve. */
    q[0].value = q[1].value = q[2].value = 50;
    assert_int_equal(replicas(q, 3, &v, 3), 2);
}

/* Within 0.1 of the target nothing changes, either way. */
static void test_tolerance(void **state)
{
    (void)state;
    drv_hpa_pod_t p[] = {pod("a", 100, 54), pod("b", 100, 54)};
    assert_int_equal(replicas(p, 2, &CPU50, 2), 2); /* 1.08 */
    p[0].value = p[1].value = 46;
    assert_int_equal(replicas(p, 2, &CPU50, 2), 2); /* 0.92 */
    p[0].value = p[1].value = 56;
    assert_int_equal(replicas(p, 2, &CPU50, 2), 3); /* 1.12: ceil(2.24) */
}

/* Memory by AverageValue: 3 pods averaging 300 MiB against 200 MiB. */
static void test_memory_average_value(void **state)
{
    (void)state;
    const int64_t mib = 1 << 20;
    drv_hpa_target_t t = {.cpu = false, .avg_value = 200 * mib};
    drv_hpa_pod_t p[] = {pod("a", 0, 300 * mib), pod("b", 0, 200 * mib), pod("c", 0, 400 * mib)};
    drv_hpa_proposal_t out;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hpa_calc_replicas(p, 3, &t, 3, NOW, &out, &err), DRV_OK);
    assert_int_equal(out.replicas, 5); /* 1.5 x 3 = 4.5 */
    assert_int_equal(out.avg_value, 300 * mib);
    /* Memory has no readiness rules: an unready running pod with a metric counts. */
    p[0].ready = false;
    assert_int_equal(replicas(p, 3, &t, 3), 5);
}

/* Missing metrics: on a scale-down they count as 100 % of the request, on a scale-up as 0, and
 * a proposal they would reverse is no change. */
static void test_missing_metrics(void **state)
{
    (void)state;
    /* Down: 20 % on two pods, one missing: (20 + 20 + 100) / 300 = 46 % -> 0.92: no change. */
    drv_hpa_pod_t p[] = {pod("a", 100, 20), pod("b", 100, 20), pod("c", 100, -1)};
    assert_int_equal(replicas(p, 3, &CPU50, 3), 3);
    /* Without the missing pod it would have been ceil(0.4 x 2) = 1. */
    assert_int_equal(replicas(p, 2, &CPU50, 2), 1);
    /* Down with more room: 5 % on four pods, one missing: (20 + 100) / 500 = 24 % -> 0.48:
     * ceil(0.48 x 5) = 3. */
    drv_hpa_pod_t q[] = {pod("a", 100, 5), pod("b", 100, 5), pod("c", 100, 5), pod("d", 100, 5),
                         pod("e", 100, -1)};
    assert_int_equal(replicas(q, 5, &CPU50, 5), 3);
    /* Up: 100 % on two pods, one missing at 0: 200 / 300 = 66 % -> 1.32: ceil(3.96) = 4. */
    p[0].value = p[1].value = 100;
    assert_int_equal(replicas(p, 3, &CPU50, 3), 4);
    /* Up that the missing pods would turn into a down: 60 % on one of three: (60) / 300 =
     * 20 % -> no change. */
    drv_hpa_pod_t r[] = {pod("a", 100, 60), pod("b", 100, -1), pod("c", 100, -1)};
    assert_int_equal(replicas(r, 3, &CPU50, 3), 3);
    /* A partitioned device's pods: their metrics missing, never zero load: no scale-down. */
    drv_hpa_pod_t s[] = {pod("a", 100, 50), pod("b", 100, 48), pod("c", 100, -1),
                         pod("d", 100, -1)};
    assert_int_equal(replicas(s, 4, &CPU50, 4), 4);
}

/* Pending pods and (cpu) not-yet-ready pods are unready: left out, and on a scale-up counted
 * at 0. Deleting and failed pods are ignored. */
static void test_readiness(void **state)
{
    (void)state;
    drv_hpa_pod_t p[] = {pod("a", 100, 100), pod("b", 100, 100), pod("c", 100, 100)};
    p[2].phase = DRV_HPA_PHASE_PENDING;
    /* 100 % on two ready pods; the pending one at 0: 200 / 300 = 66 %: ceil(1.33 x 3) = 4. */
    assert_int_equal(replicas(p, 3, &CPU50, 3), 4);
    /* A pod that started a minute ago and became ready 10 s ago, its sample from 5 s ago over
     * 15 s: not a full window since ready: unready. */
    p[2] = pod("c", 100, 1000);
    p[2].start_ms = NOW - MIN;
    p[2].ready_ms = NOW - 10000;
    assert_int_equal(replicas(p, 3, &CPU50, 3), 4); /* its 1000 % is not counted */
    /* Once a full window passed since it became ready, it counts. */
    p[2].ready_ms = NOW - 30000;
    assert_int_equal(replicas(p, 3, &CPU50, 3), 24); /* 1200 / 300 = 400 %: 8 x 3 */
    /* Past its first 5 minutes, an unready pod that has been ready before counts. */
    p[2] = pod("c", 100, 100);
    p[2].ready = false;
    p[2].ready_ms = NOW - 10 * MIN; /* went unready long after its start */
    assert_int_equal(replicas(p, 3, &CPU50, 3), 6);
    /* ... one that never became ready (False within 30 s of its start) does not. */
    p[2].ready_ms = p[2].start_ms + 10000;
    assert_int_equal(replicas(p, 3, &CPU50, 3), 4);
    /* No Ready condition at all: unready. */
    p[2].has_ready = false;
    assert_int_equal(replicas(p, 3, &CPU50, 3), 4);
    /* Deleting and failed pods are not there at all. */
    p[2] = pod("c", 100, 0);
    p[2].deleting = true;
    assert_int_equal(replicas(p, 3, &CPU50, 2), 4);
    p[2].deleting = false;
    p[2].phase = DRV_HPA_PHASE_FAILED;
    assert_int_equal(replicas(p, 3, &CPU50, 2), 4);
}

static void test_errors(void **state)
{
    (void)state;
    drv_hpa_proposal_t out;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hpa_calc_replicas(NULL, 0, &CPU50, 1, NOW, &out, &err), DRV_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "no pods returned by selector"));
    drv_hpa_pod_t p[] = {pod("a", 100, 50), pod("web-1", 100, 50)};
    p[1].no_request = true;
    p[1].missing_request = "app";
    assert_int_equal(drv_hpa_calc_replicas(p, 2, &CPU50, 2, NOW, &out, &err), DRV_ERR_NOTFOUND);
    assert_string_equal(err.msg, "missing request for cpu in container app of Pod web-1");
    drv_hpa_pod_t q[] = {pod("a", 100, -1), pod("b", 100, 100)};
    q[1].phase = DRV_HPA_PHASE_PENDING;
    assert_int_equal(drv_hpa_calc_replicas(q, 2, &CPU50, 2, NOW, &out, &err), DRV_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "did not receive metrics for targeted pods"));
}

static drv_hpa_spec_t spec(int32_t min, int32_t max)
{
    drv_hpa_spec_t s = {.min_replicas = min, .max_replicas = max};
    drv_hpa_rules_default_up(&s.up);
    drv_hpa_rules_default_down(&s.down);
    return s;
}

/* Without behavior: the highest recommendation of the last 5 minutes; up to max(2x, 4). */
static void test_normalize_plain(void **state)
{
    (void)state;
    drv_hpa_spec_t s = spec(1, 20);
    drv_hpa_memory_t m = {0};
    drv_hpa_normalized_t n;
    drv_hpa_calc_init(&m, 5, NOW);
    drv_hpa_calc_normalize(&s, &m, 5, 2, NOW + MIN, &n);
    assert_int_equal(n.replicas, 5);
    assert_string_equal(n.able_reason, "ScaleDownStabilized");
    assert_false(n.limited);
    drv_hpa_calc_normalize(&s, &m, 5, 2, NOW + 4 * MIN, &n);
    assert_int_equal(n.replicas, 5);
    drv_hpa_calc_normalize(&s, &m, 5, 2, NOW + 5 * MIN + 1000, &n); /* the 5 is out */
    assert_int_equal(n.replicas, 2);
    assert_string_equal(n.able_reason, "ReadyForNewScale");
    assert_string_equal(n.limited_reason, "DesiredWithinRange");
    /* Up: at most max(2 x current, 4). */
    drv_hpa_memory_t m2 = {0};
    drv_hpa_calc_init(&m2, 1, NOW);
    drv_hpa_calc_normalize(&s, &m2, 1, 10, NOW, &n);
    assert_int_equal(n.replicas, 4);
    assert_true(n.limited);
    assert_string_equal(n.limited_reason, "ScaleUpLimit");
    /* Bounds. */
    drv_hpa_spec_t s3 = spec(3, 6);
    drv_hpa_memory_t m3 = {0};
    drv_hpa_calc_normalize(&s3, &m3, 5, 9, NOW, &n);
    assert_int_equal(n.replicas, 6);
    assert_string_equal(n.limited_reason, "TooManyReplicas");
    drv_hpa_memory_t m4 = {0};
    drv_hpa_calc_normalize(&s3, &m4, 4, 1, NOW, &n);
    assert_int_equal(n.replicas, 3);
    assert_string_equal(n.limited_reason, "TooFewReplicas");
    assert_string_equal(n.limited_message,
                        "the desired replica count is less than the minimum replica count");
}

/* With behavior: default scale-up policies (4 pods or 100 % per 15 s, the larger), their
 * history, a scale-down policy, selectPolicy Min and Disabled, an up window. */
static void test_normalize_behavior(void **state)
{
    (void)state;
    drv_hpa_spec_t s = spec(1, 100);
    s.has_behavior = true;
    drv_hpa_memory_t m = {0};
    drv_hpa_normalized_t n;
    drv_hpa_calc_init(&m, 2, NOW);
    drv_hpa_calc_normalize(&s, &m, 2, 20, NOW, &n);
    assert_int_equal(n.replicas, 6); /* max(2 + 4, 2 x 2) */
    assert_string_equal(n.limited_reason, "ScaleUpLimit");
    drv_hpa_calc_record_scale(&s, &m, 2, 6, NOW);
    /* 5 s later the period began at 2: still 6. */
    drv_hpa_calc_normalize(&s, &m, 6, 20, NOW + 5000, &n);
    assert_int_equal(n.replicas, 6);
    /* After the 15 s period: max(6 + 4, 12). */
    drv_hpa_calc_normalize(&s, &m, 6, 20, NOW + 16000, &n);
    assert_int_equal(n.replicas, 12);

    /* Down by at most 1 pod a minute, no window. */
    drv_hpa_spec_t d = spec(1, 10);
    d.has_behavior = true;
    d.down.window_s = 0;
    d.down.policies[0] = (drv_hpa_policy_t){false, 1, 60};
    drv_hpa_memory_t md = {0};
    drv_hpa_calc_normalize(&d, &md, 5, 1, NOW, &n);
    assert_int_equal(n.replicas, 4);
    assert_string_equal(n.limited_reason, "ScaleDownLimit");
    drv_hpa_calc_record_scale(&d, &md, 5, 4, NOW);
    drv_hpa_calc_normalize(&d, &md, 4, 1, NOW + 30000, &n);
    assert_int_equal(n.replicas, 4); /* the period began at 5: 5 - 1 = 4 */
    drv_hpa_calc_normalize(&d, &md, 4, 1, NOW + 61000, &n);
    assert_int_equal(n.replicas, 3);

    /* The default scale-down window holds a drop for 300 s. */
    drv_hpa_memory_t mw = {0};
    drv_hpa_calc_init(&mw, 8, NOW);
    drv_hpa_calc_normalize(&s, &mw, 8, 2, NOW + MIN, &n);
    assert_int_equal(n.replicas, 8);
    assert_string_equal(n.able_reason, "ScaleDownStabilized");
    drv_hpa_calc_normalize(&s, &mw, 8, 2, NOW + 5 * MIN + 1000, &n);
    assert_int_equal(n.replicas, 2); /* the 8 left the window; 100 % a period allows it */

    /* selectPolicy Min: the smaller of 4 pods and 100 %: from 10, +4. */
    drv_hpa_spec_t mn = spec(1, 100);
    mn.has_behavior = true;
    mn.up.select = DRV_HPA_SELECT_MIN;
    drv_hpa_memory_t mm = {0};
    drv_hpa_calc_normalize(&mn, &mm, 10, 50, NOW, &n);
    assert_int_equal(n.replicas, 14);
    /* Disabled: never up. */
    mn.up.select = DRV_HPA_SELECT_DISABLED;
    drv_hpa_memory_t mx = {0};
    drv_hpa_calc_normalize(&mn, &mx, 10, 50, NOW, &n);
    assert_int_equal(n.replicas, 10);
    assert_true(n.limited);

    /* A scale-up window of 60 s: the lowest recommendation of the last minute. */
    drv_hpa_spec_t w = spec(1, 100);
    w.has_behavior = true;
    w.up.window_s = 60;
    drv_hpa_memory_t mu = {0};
    drv_hpa_calc_init(&mu, 3, NOW);
    drv_hpa_calc_normalize(&w, &mu, 3, 6, NOW + 10000, &n);
    assert_int_equal(n.replicas, 3);
    assert_string_equal(n.able_reason, "ScaleUpStabilized");
    drv_hpa_calc_normalize(&w, &mu, 3, 6, NOW + 61000, &n);
    assert_int_equal(n.replicas, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ratio),
        cmocka_unit_test(test_tolerance),
        cmocka_unit_test(test_memory_average_value),
        cmocka_unit_test(test_missing_metrics),
        cmocka_unit_test(test_readiness),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_normalize_plain),
        cmocka_unit_test(test_normalize_behavior),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
