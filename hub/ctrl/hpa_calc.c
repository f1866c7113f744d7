/* The HorizontalPodAutoscaler's arithmetic (see hpa_calc.h): Kubernetes' replica calculator
 * and its normalisation with behaviour, step for step, on plain data. */
#include "ctrl/hpa_calc.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "drover/cleanup.h"

typedef enum { P_IGNORED, P_UNREADY, P_MISSING, P_READY } pclass_t;

/* groupPods: deleting or Failed pods are ignored; Pending pods are unready; a pod without a
 * metric is missing; for cpu, a pod is unready without a Ready condition or start time, while
 * unready in its first 5 minutes or before a full metric window since it became ready, and
 * when it is unready and has never been ready (its Ready condition went False within 30 s of
 * its start). */
static pclass_t classify(const drv_hpa_pod_t *p, bool cpu, int64_t now_ms)
{
    if (p->deleting || p->phase == DRV_HPA_PHASE_FAILED)
        return P_IGNORED;
    if (p->phase == DRV_HPA_PHASE_PENDING)
        return P_UNREADY;
    if (!p->has_metric)
        return P_MISSING;
    if (cpu) {
        bool unready;
        if (!p->has_ready || !p->has_start) {
            unready = true;
        } else if (p->start_ms + DRV_HPA_CPU_INIT_PERIOD_MS > now_ms) {
            unready = !p->ready || p->metric_ms < p->ready_ms + p->metric_window_ms;
        } else {
            unready = !p->ready && p->start_ms + DRV_HPA_INITIAL_READINESS_DELAY_MS > p->ready_ms;
        }
        if (unready)
            return P_UNREADY;
    }
    return P_READY;
}

/* GetResourceUtilizationRatio / GetMetricUsageRatio over the pods whose value counts. */
static drv_err_t usage_ratio(const drv_hpa_pod_t *pods, const pclass_t *cls, const int64_t *val,
                             size_t n, const drv_hpa_target_t *t, double *ratio,
                             drv_hpa_proposal_t *out, drv_error_t *err)
{
    long double metrics = 0, requests = 0;
    size_t entries = 0;
    for (size_t i = 0; i < n; i++) {
        if (cls[i] != P_READY)
            continue;
        metrics += (long double)val[i];
        requests += (long double)pods[i].request;
        entries++;
    }
    if (entries == 0)
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0,
                             "did not receive metrics for targeted pods (pods might be unready)");
    if (t->utilization) {
        if (requests <= 0)
            return drv_error_set(err, DRV_ERR_NOTFOUND, 0,
                                 "no metrics returned matched known pods");
        long double u = metrics * 100 / requests;
        int32_t util = u >= INT32_MAX ? INT32_MAX : (int32_t)u;
        *ratio = (double)util / (double)t->percent;
        if (out) {
            out->utilization = util;
            out->avg_value = (int64_t)(metrics / entries);
        }
    } else {
        long double avg = metrics / entries;
        int64_t usage = avg >= (long double)INT64_MAX ? INT64_MAX : (int64_t)avg;
        *ratio = (double)usage / (double)t->avg_value;
        if (out)
            out->avg_value = usage;
    }
    return DRV_OK;
}

/* x as an int64 that cannot overflow later sums: clamped to +-2^60, NaN as 0. */
static int64_t clamp64(long double x)
{
    const long double lim = (long double)(1LL << 60);
    if (!(x == x))
        return 0;
    return x > lim ? (int64_t)lim : x < -lim ? -(int64_t)lim : (int64_t)x;
}

static int32_t ceil_replicas(double x)
{
    double c = ceil(x);
    if (!(c < (double)INT32_MAX)) /* also NaN */
        return INT32_MAX;
    return c < 0 ? 0 : (int32_t)c;
}

drv_err_t drv_hpa_calc_replicas(const drv_hpa_pod_t *pods, size_t n, const drv_hpa_target_t *t,
                                int32_t current, int64_t now_ms, drv_hpa_proposal_t *out,
                                drv_error_t *err)
{
    if (n == 0)
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0,
                             "no pods returned by selector while calculating replica count");
    if ((t->utilization && t->percent <= 0) || (!t->utilization && t->avg_value <= 0))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "the target must be above zero");
    if (t->utilization) {
        for (size_t i = 0; i < n; i++)
            if (pods[i].no_request)
                return drv_error_set(
                    err, DRV_ERR_NOTFOUND, 0, "missing request for %s in container %s of Pod %s",
                    t->cpu ? "cpu" : "memory",
                    pods[i].missing_request ? pods[i].missing_request : "?", pods[i].name);
    }
    _cleanup_free_ pclass_t *cls = calloc(n, sizeof(*cls));
    _cleanup_free_ int64_t *val = calloc(n, sizeof(*val));
    if (!cls || !val)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    size_t ready = 0, unready = 0, missing = 0;
    for (size_t i = 0; i < n; i++) {
        cls[i] = classify(&pods[i], t->cpu, now_ms);
        val[i] = pods[i].value;
        ready += cls[i] == P_READY;
        unready += cls[i] == P_UNREADY;
        missing += cls[i] == P_MISSING;
    }
    drv_hpa_proposal_t prop = {.replicas = current};
    double ratio;
    drv_err_t r = usage_ratio(pods, cls, val, n, t, &ratio, &prop, err);
    if (r != DRV_OK)
        return r;

    bool up_with_unready = unready > 0 && ratio > 1.0;
    if (!up_with_unready && missing == 0) {
        if (fabs(1.0 - ratio) > DRV_HPA_TOLERANCE)
            prop.replicas = ceil_replicas(ratio * (double)ready);
        *out = prop;
        return DRV_OK;
    }
    /* Count the missing pods (at 100 % of their request or the target on a scale-down, at 0
     * on a scale-up) and, on a scale-up, the unready ones at 0; then look again. */
    size_t counted = ready;
    for (size_t i = 0; i < n; i++) {
        if (cls[i] == P_MISSING && ratio != 1.0) {
            if (ratio < 1.0)
                val[i] = t->utilization ? clamp64((long double)pods[i].request *
                                                  (t->percent > 100 ? t->percent : 100) / 100)
                                        : t->avg_value;
            else
                val[i] = 0;
            cls[i] = P_READY;
            counted++;
        } else if (cls[i] == P_UNREADY && up_with_unready) {
            val[i] = 0;
            cls[i] = P_READY;
            counted++;
        }
    }
    double again;
    r = usage_ratio(pods, cls, val, n, t, &again, NULL, err);
    if (r != DRV_OK)
        return r;
    if (fabs(1.0 - again) <= DRV_HPA_TOLERANCE || (ratio < 1.0 && again > 1.0) ||
        (ratio > 1.0 && again < 1.0)) {
        *out = prop; /* no change */
        return DRV_OK;
    }
    int32_t next = ceil_replicas(again * (double)counted);
    if ((again < 1.0 && next > current) || (again > 1.0 && next < current))
        next = current;
    prop.replicas = next;
    *out = prop;
    return DRV_OK;
}

/* ---- normalisation ----------------------------------------------------------------------- */

void drv_hpa_rules_default_up(drv_hpa_rules_t *r)
{
    *r = (drv_hpa_rules_t){.window_s = 0,
                           .select = DRV_HPA_SELECT_MAX,
                           .policies = {{false, 4, 15}, {true, 100, 15}},
                           .n_policies = 2};
}

void drv_hpa_rules_default_down(drv_hpa_rules_t *r)
{
    *r = (drv_hpa_rules_t){.window_s = DRV_HPA_DOWN_WINDOW_DEFAULT_S,
                           .select = DRV_HPA_SELECT_MAX,
                           .policies = {{true, 100, 15}},
                           .n_policies = 1};
}

static void push(drv_hpa_stamp_t *list, size_t *n, int64_t ms, int32_t value)
{
    if (*n == DRV_HPA_HISTORY_MAX) {
        memmove(list, list + 1, (DRV_HPA_HISTORY_MAX - 1) * sizeof(*list));
        (*n)--;
    }
    list[(*n)++] = (drv_hpa_stamp_t){ms, value};
}

void drv_hpa_calc_init(drv_hpa_memory_t *m, int32_t current, int64_t now_ms)
{
    if (m->n_recs == 0)
        push(m->recs, &m->n_recs, now_ms, current);
}

/* Records desired: in place of one sample older than every cutoff, else appended. */
static void record(drv_hpa_memory_t *m, bool found_old, size_t old_index, int32_t desired,
                   int64_t now_ms)
{
    if (found_old)
        m->recs[old_index] = (drv_hpa_stamp_t){now_ms, desired};
    else
        push(m->recs, &m->n_recs, now_ms, desired);
}

/* Replicas changed in the last period_s seconds (getReplicasChangePerPeriod). */
static int64_t change_in(const drv_hpa_stamp_t *ev, size_t n, int32_t period_s, int64_t now_ms)
{
    int64_t cutoff = now_ms - (int64_t)period_s * 1000, sum = 0;
    for (size_t i = 0; i < n; i++)
        if (ev[i].ms > cutoff)
            sum += ev[i].value;
    return sum;
}

static int32_t clamp32(int64_t v)
{
    return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

/* calculateScaleUpLimitWithScalingRules / calculateScaleDownLimitWithBehaviors */
static int32_t rate_limit(const drv_hpa_rules_t *r, const drv_hpa_memory_t *m, int32_t current,
                          bool up, int64_t now_ms)
{
    if (r->select == DRV_HPA_SELECT_DISABLED)
        return current;
    /* Up: Max takes the largest proposal, Min the smallest; down the other way round. */
    bool take_max = (r->select == DRV_HPA_SELECT_MAX) == up;
    int64_t result = take_max ? INT32_MIN : INT32_MAX;
    for (size_t i = 0; i < r->n_policies; i++) {
        const drv_hpa_policy_t *p = &r->policies[i];
        int64_t start = (int64_t)current - change_in(m->ups, m->n_ups, p->period_s, now_ms) +
                        change_in(m->downs, m->n_downs, p->period_s, now_ms);
        int64_t proposed;
        if (up)
            proposed = p->percent
                           ? clamp64(ceill((long double)start * (1 + (long double)p->value / 100)))
                           : start + p->value;
        else
            proposed = p->percent ? clamp64((long double)start * (1 - (long double)p->value / 100))
                                  : start - p->value;
        if (take_max ? proposed > result : proposed < result)
            result = proposed;
    }
    return clamp32(result);
}

static void normalize_plain(const drv_hpa_spec_t *s, drv_hpa_memory_t *m, int32_t current,
                            int32_t desired, int64_t now_ms, drv_hpa_normalized_t *out)
{
    /* stabilizeRecommendation: the highest recommendation of the last 300 s */
    int64_t cutoff = now_ms - (int64_t)DRV_HPA_DOWN_WINDOW_DEFAULT_S * 1000;
    int32_t stab = desired;
    bool found_old = false;
    size_t old_index = 0;
    for (size_t i = 0; i < m->n_recs; i++) {
        if (m->recs[i].ms < cutoff) {
            found_old = true;
            old_index = i;
        } else if (m->recs[i].value > stab) {
            stab = m->recs[i].value;
        }
    }
    record(m, found_old, old_index, desired, now_ms);
    if (stab != desired) {
        out->able_reason = "ScaleDownStabilized";
        out->able_message = "recent recommendations were higher than current one, applying the "
                            "highest recent recommendation";
    } else {
        out->able_reason = "ReadyForNewScale";
        out->able_message = "recommended size matches current size";
    }
    /* convertDesiredReplicasWithRules */
    int64_t up_limit = (int64_t)current * 2 > 4 ? (int64_t)current * 2 : 4;
    int32_t max_allowed;
    const char *reason, *message;
    if (s->max_replicas > up_limit) {
        max_allowed = clamp32(up_limit);
        reason = "ScaleUpLimit";
        message = "the desired replica count is increasing faster than the maximum scale rate";
    } else {
        max_allowed = s->max_replicas;
        reason = "TooManyReplicas";
        message = "the desired replica count is more than the maximum replica count";
    }
    int32_t next = stab;
    if (stab < s->min_replicas) {
        next = s->min_replicas;
        reason = "TooFewReplicas";
        message = "the desired replica count is less than the minimum replica count";
    } else if (stab > max_allowed) {
        next = max_allowed;
    } else {
        reason = "DesiredWithinRange";
        message = "the desired count is within the acceptable range";
    }
    out->replicas = next;
    out->limited = next != stab;
    out->limited_reason = reason;
    out->limited_message = message;
}

static void normalize_behavior(const drv_hpa_spec_t *s, drv_hpa_memory_t *m, int32_t current,
                               int32_t desired, int64_t now_ms, drv_hpa_normalized_t *out)
{
    /* stabilizeRecommendationWithBehaviors */
    int64_t up_cut = now_ms - (int64_t)s->up.window_s * 1000;
    int64_t down_cut = now_ms - (int64_t)s->down.window_s * 1000;
    int32_t up_rec = desired, down_rec = desired;
    bool found_old = false;
    size_t old_index = 0;
    for (size_t i = 0; i < m->n_recs; i++) {
        const drv_hpa_stamp_t *r = &m->recs[i];
        if (r->ms > up_cut && r->value < up_rec)
            up_rec = r->value;
        if (r->ms > down_cut && r->value > down_rec)
            down_rec = r->value;
        if (r->ms < up_cut && r->ms < down_cut) {
            found_old = true;
            old_index = i;
        }
    }
    int32_t stab = current;
    if (stab < up_rec)
        stab = up_rec;
    if (stab > down_rec)
        stab = down_rec;
    record(m, found_old, old_index, desired, now_ms);
    if (stab != desired) {
        if (desired >= current) {
            out->able_reason = "ScaleUpStabilized";
            out->able_message = "recent recommendations were lower than current one, applying "
                                "the lowest recent recommendation";
        } else {
            out->able_reason = "ScaleDownStabilized";
            out->able_message = "recent recommendations were higher than current one, applying "
                                "the highest recent recommendation";
        }
    } else {
        out->able_reason = "ReadyForNewScale";
        out->able_message = "recommended size matches current size";
    }

    /* convertDesiredReplicasWithBehaviorRate */
    int32_t next = stab;
    const char *reason = "DesiredWithinRange";
    const char *message = "the desired count is within the acceptable range";
    if (stab > current) {
        int32_t limit = rate_limit(&s->up, m, current, true, now_ms);
        if (limit < current)
            limit = current;
        int32_t max_allowed = s->max_replicas;
        const char *r2, *m2;
        if (max_allowed > limit) {
            max_allowed = limit;
            r2 = "ScaleUpLimit";
            m2 = "the desired replica count is increasing faster than the maximum scale rate";
        } else {
            r2 = "TooManyReplicas";
            m2 = "the desired replica count is more than the maximum replica count";
        }
        if (stab > max_allowed) {
            next = max_allowed;
            reason = r2;
            message = m2;
        }
    } else if (stab < current) {
        int32_t limit = rate_limit(&s->down, m, current, false, now_ms);
        if (limit > current)
            limit = current;
        int32_t min_allowed = s->min_replicas;
        const char *r2, *m2;
        if (min_allowed < limit) {
            min_allowed = limit;
            r2 = "ScaleDownLimit";
            m2 = "the desired replica count is decreasing faster than the maximum scale rate";
        } else {
            r2 = "TooFewReplicas";
            m2 = "the desired replica count is less than the minimum replica count";
        }
        if (stab < min_allowed) {
            next = min_allowed;
            reason = r2;
            message = m2;
        }
    }
    out->replicas = next;
    out->limited = next != stab;
    out->limited_reason = reason;
    out->limited_message = message;
}

void drv_hpa_calc_normalize(const drv_hpa_spec_t *s, drv_hpa_memory_t *m, int32_t current,
                            int32_t desired, int64_t now_ms, drv_hpa_normalized_t *out)
{
    *out = (drv_hpa_normalized_t){0};
    if (s->has_behavior)
        normalize_behavior(s, m, current, desired, now_ms, out);
    else
        normalize_plain(s, m, current, desired, now_ms, out);
}

static int32_t longest_period(const drv_hpa_rules_t *r)
{
    int32_t p = 0;
    for (size_t i = 0; i < r->n_policies; i++)
        if (r->policies[i].period_s > p)
            p = r->policies[i].period_s;
    return p;
}

/* Drops events older than the rules' longest period (they no longer count), then appends. */
static void add_event(drv_hpa_stamp_t *ev, size_t *n, const drv_hpa_rules_t *r, int32_t change,
                      int64_t now_ms)
{
    int64_t cutoff = now_ms - (int64_t)longest_period(r) * 1000;
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (ev[i].ms > cutoff)
            ev[k++] = ev[i];
    *n = k;
    push(ev, n, now_ms, change);
}

void drv_hpa_calc_record_scale(const drv_hpa_spec_t *s, drv_hpa_memory_t *m, int32_t prev,
                               int32_t next, int64_t now_ms)
{
    if (!s->has_behavior || next == prev)
        return;
    if (next > prev)
        add_event(m->ups, &m->n_ups, &s->up, next - prev, now_ms);
    else
        add_event(m->downs, &m->n_downs, &s->down, prev - next, now_ms);
}
