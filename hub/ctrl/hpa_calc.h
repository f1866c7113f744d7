/* The HorizontalPodAutoscaler's arithmetic, as Kubernetes' controller does it
 * (pkg/controller/podautoscaler: replica_calculator.go and horizontal.go), with the clock and
 * the per-HPA memory passed in so that it is a pure function of its inputs:
 *  - drv_hpa_calc_replicas: one resource metric (cpu or memory; Utilization against requests or
 *    AverageValue) over the target's pods -> a replica proposal. Tolerance 0.1; pods deleting or
 *    Failed ignored; Pending pods and (for cpu) pods not yet ready or in their first 5 minutes
 *    without a full window since becoming ready count as unready; pods without a metric are
 *    "missing": on a scale-down they count as using 100 % of their request (or the target
 *    value), on a scale-up as 0, and unready pods as 0 on a scale-up; a proposal that would
 *    flip direction once they are counted is no change.
 *  - drv_hpa_calc_normalize: stabilisation (scale-down window 300 s by default, scale-up 0 s)
 *    and rate limits (default: up by max(4 pods, 100 %) per 15 s; down by 100 % per 15 s;
 *    without `behavior`: up to max(2 x current, 4)), and min/max, with the reason and message
 *    Kubernetes writes in the AbleToScale and ScalingLimited conditions.
 *  - drv_hpa_calc_record_scale: what a rescale adds to the rate limits' history.
 * Private to hub/ctrl (and its unit test). */
#ifndef DROVER_HUB_CTRL_HPA_CALC_H
#define DROVER_HUB_CTRL_HPA_CALC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"

#define DRV_HPA_TOLERANCE 0.1
#define DRV_HPA_CPU_INIT_PERIOD_MS (5 * 60 * 1000LL)
#define DRV_HPA_INITIAL_READINESS_DELAY_MS (30 * 1000LL)
#define DRV_HPA_DOWN_WINDOW_DEFAULT_S 300
#define DRV_HPA_POLICIES_MAX 10
#define DRV_HPA_HISTORY_MAX 512 /* recommendations and scale events kept per HPA */

typedef enum {
    DRV_HPA_PHASE_PENDING,
    DRV_HPA_PHASE_RUNNING,
    DRV_HPA_PHASE_SUCCEEDED,
    DRV_HPA_PHASE_FAILED,
    DRV_HPA_PHASE_UNKNOWN,
} drv_hpa_phase_t;

/* One pod of the scale target, as the calculation needs it. */
typedef struct drv_hpa_pod {
    const char *name;
    bool deleting; /* metadata.deletionTimestamp is set */
    drv_hpa_phase_t phase;
    bool has_ready;   /* a Ready condition exists */
    bool ready;       /* its status is True */
    int64_t ready_ms; /* its lastTransitionTime */
    bool has_start;   /* status.startTime exists */
    int64_t start_ms;
    /* The sum of its containers' requests for the resource (millicores or bytes); with
     * no_request set, missing_request names a container without one. */
    int64_t request;
    bool no_request;
    const char *missing_request;
    /* Its usage (millicores or bytes), summed over its containers; has_metric false when the
     * pod has none or its node's is stale (a partitioned device: missing, never zero). */
    bool has_metric;
    int64_t value;
    int64_t metric_ms;        /* when the sample was taken */
    int64_t metric_window_ms; /* over how long the cpu rate was measured */
} drv_hpa_pod_t;

typedef struct drv_hpa_target {
    bool cpu;          /* the cpu readiness rules apply */
    bool utilization;  /* target: averageUtilization (percent of requests) */
    int32_t percent;   /* with utilization */
    int64_t avg_value; /* otherwise: averageValue (millicores or bytes) */
} drv_hpa_target_t;

typedef struct drv_hpa_proposal {
    int32_t replicas;
    int32_t utilization; /* with a Utilization target: the current average, percent */
    int64_t avg_value;   /* the current average usage per pod with a metric */
} drv_hpa_proposal_t;

/* A proposal for metric t over pods (the target's pods, any order) when the target has current
 * replicas. Errors, with Kubernetes' messages: no pods; a container without a request (with a
 * Utilization target); no metrics for any ready pod. */
DRV_NODISCARD drv_err_t drv_hpa_calc_replicas(const drv_hpa_pod_t *pods, size_t n,
                                              const drv_hpa_target_t *t, int32_t current,
                                              int64_t now_ms, drv_hpa_proposal_t *out,
                                              drv_error_t *err);

typedef enum {
    DRV_HPA_SELECT_MAX,
    DRV_HPA_SELECT_MIN,
    DRV_HPA_SELECT_DISABLED,
} drv_hpa_select_t;

typedef struct drv_hpa_policy {
    bool percent; /* Percent, else Pods */
    int32_t value;
    int32_t period_s;
} drv_hpa_policy_t;

typedef struct drv_hpa_rules {
    int32_t window_s; /* stabilizationWindowSeconds, defaults applied */
    drv_hpa_select_t select;
    drv_hpa_policy_t policies[DRV_HPA_POLICIES_MAX];
    size_t n_policies;
} drv_hpa_rules_t;

typedef struct drv_hpa_spec {
    int32_t min_replicas;
    int32_t max_replicas;
    bool has_behavior; /* spec.behavior given: up and down hold it with defaults filled */
    drv_hpa_rules_t up, down;
} drv_hpa_spec_t;

/* Kubernetes' defaults for spec.behavior.scaleUp / scaleDown. */
void drv_hpa_rules_default_up(drv_hpa_rules_t *r);
void drv_hpa_rules_default_down(drv_hpa_rules_t *r);

typedef struct drv_hpa_stamp {
    int64_t ms;
    int32_t value; /* a recommendation, or a replica change */
} drv_hpa_stamp_t;

/* What the controller remembers of one HPA between syncs (in memory, as Kubernetes' does: a hub
 * restart starts it afresh, with the current replicas as the first recommendation). */
typedef struct drv_hpa_memory {
    drv_hpa_stamp_t recs[DRV_HPA_HISTORY_MAX];
    size_t n_recs;
    drv_hpa_stamp_t ups[DRV_HPA_HISTORY_MAX];
    size_t n_ups;
    drv_hpa_stamp_t downs[DRV_HPA_HISTORY_MAX];
    size_t n_downs;
} drv_hpa_memory_t;

typedef struct drv_hpa_normalized {
    int32_t replicas;
    const char *able_reason; /* AbleToScale=True: ReadyForNewScale, ScaleUpStabilized, ... */
    const char *able_message;
    bool limited; /* ScalingLimited */
    const char *limited_reason;
    const char *limited_message;
} drv_hpa_normalized_t;

/* Records current as the first recommendation when m has none (recordInitialRecommendation). */
void drv_hpa_calc_init(drv_hpa_memory_t *m, int32_t current, int64_t now_ms);

/* From a desired count (the largest proposal, or min/max when current is outside them) to the
 * count to scale to: stabilised with m's recent recommendations (desired is recorded), then
 * limited by the rate rules and min/max. */
void drv_hpa_calc_normalize(const drv_hpa_spec_t *s, drv_hpa_memory_t *m, int32_t current,
                            int32_t desired, int64_t now_ms, drv_hpa_normalized_t *out);

/* After a rescale from prev to next: the change enters the history the rate limits read (with
 * spec.behavior only, as in Kubernetes). */
void drv_hpa_calc_record_scale(const drv_hpa_spec_t *s, drv_hpa_memory_t *m, int32_t prev,
                               int32_t next, int64_t now_ms);

#endif
