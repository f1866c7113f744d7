/* Usage history on the hub: what agents push (docs/PROTOCOL.md "Usage") kept in bounded
 * memory, for `kubectl top` (metrics.k8s.io), charts, /metrics and the HorizontalPodAutoscaler.
 *
 * Per node and per pod (by uid): the latest sample, always (its containers' too); and, while
 * the history budget lasts, 1 h of points at 15 s and 24 h at 5 min (averages). Series beyond
 * the budget keep their latest sample only, and are counted. A sample is current while it is
 * younger than stale_ms: an older one (a silent or partitioned device) is missing, never zero.
 * Not thread-safe: the hub's loop owns it. */
#ifndef DROVER_HUB_METRICS_METRICS_H
#define DROVER_HUB_METRICS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "drover/buf.h"
#include "drover/error.h"
#include "drover/protocol.h"

typedef struct drv_metrics drv_metrics_t;

typedef struct drv_metrics_opts {
    size_t max_series;        /* nodes + pods tracked at all (default 200,000) */
    size_t history_bytes_max; /* memory for histories (default 64 MiB) */
    int64_t stale_ms;         /* a sample older than this is missing (default 60 s) */
    int64_t future_ms;        /* samples dated further ahead are refused (default 60 s) */
    int64_t fine_step_ms;     /* default 15 s */
    size_t fine_points;       /* default 240: 1 h */
    int64_t coarse_step_ms;   /* default 5 min */
    size_t coarse_points;     /* default 288: 24 h */
} drv_metrics_opts_t;

/* opts may be NULL (defaults); zero fields take their default. */
DRV_NODISCARD drv_err_t drv_metrics_new(const drv_metrics_opts_t *opts, drv_metrics_t **out,
                                        drv_error_t *err);
void drv_metrics_free(drv_metrics_t *m);

/* Takes one report (parsed, its node matching the topic) at the hub's time now_ms. The caller
 * has already dropped pods not bound to r->node. Refused whole (nothing stored, counted):
 * dated more than future_ms ahead of now_ms, or older than the node's latest (replayed). */
DRV_NODISCARD drv_err_t drv_metrics_ingest(drv_metrics_t *m, const drv_proto_metrics_t *r,
                                           int64_t now_ms, drv_error_t *err);
/* Counts a report refused before ingest (malformed, oversized, another node's pods). */
void drv_metrics_count_refused(drv_metrics_t *m);

/* Forgets the pods silent for pod_age_ms and the nodes silent for node_age_ms (deleted or gone
 * for good: their history goes with them). Returns how many series went. */
size_t drv_metrics_expire(drv_metrics_t *m, int64_t now_ms, int64_t pod_age_ms,
                          int64_t node_age_ms);

/* Forgets a deleted node or pod. */
void drv_metrics_forget_node(drv_metrics_t *m, const char *node);
void drv_metrics_forget_pod(drv_metrics_t *m, const char *uid);

typedef struct drv_metrics_usage {
    int64_t ms;        /* when sampled (the device's clock, checked against the hub's) */
    int64_t window_ms; /* over how long the cpu rate was measured */
    bool has_cpu;
    int64_t cpu_nanocores;
    bool has_memory;
    int64_t memory_bytes;
} drv_metrics_usage_t;

typedef struct drv_metrics_node_usage {
    drv_metrics_usage_t u;
    int64_t memory_total_bytes;
    bool has_disk;
    int64_t disk_free_bytes, disk_total_bytes;
    bool has_temp;
    int64_t temp_millicelsius;
    bool has_throttled;
    uint32_t throttled;
} drv_metrics_node_usage_t;

typedef struct drv_metrics_ctr_usage {
    const char *name; /* valid until the pod's next sample */
    bool has_cpu;
    int64_t cpu_nanocores;
    bool has_memory;
    int64_t memory_bytes;
    uint64_t oom_kills;
    int32_t restarts;
} drv_metrics_ctr_usage_t;

typedef struct drv_metrics_pod_usage {
    drv_metrics_usage_t u; /* the sum of its containers; has_* only when every one has it */
    const char *ns, *name, *node;
    const drv_metrics_ctr_usage_t *ctrs;
    size_t n_ctrs;
} drv_metrics_pod_usage_t;

/* The latest sample when it is current at now_ms (false: none, or stale). Pointers in *out
 * stay valid until the next ingest or forget. */
bool drv_metrics_node_latest(drv_metrics_t *m, const char *node, int64_t now_ms,
                             drv_metrics_node_usage_t *out);
bool drv_metrics_pod_latest(drv_metrics_t *m, const char *uid, int64_t now_ms,
                            drv_metrics_pod_usage_t *out);

/* Every node / pod with a current sample, in no order; the callback's pointers are valid only
 * during the call. Stops when fn returns false. */
void drv_metrics_each_node(drv_metrics_t *m, int64_t now_ms,
                           bool (*fn)(void *ctx, const char *node,
                                      const drv_metrics_node_usage_t *u),
                           void *ctx);
void drv_metrics_each_pod(drv_metrics_t *m, int64_t now_ms,
                          bool (*fn)(void *ctx, const char *uid, const drv_metrics_pod_usage_t *u),
                          void *ctx);

typedef struct drv_metrics_point {
    int64_t ms;
    int64_t cpu_nanocores; /* -1: not measured */
    int64_t memory_bytes;  /* -1: not measured */
} drv_metrics_point_t;

/* A series' points from since_ms on, oldest first, at most max of them (fine points where they
 * reach back far enough, else 5-minute averages). Returns how many were written; 0 when there
 * is no history (unknown, or beyond the budget). */
size_t drv_metrics_node_history(drv_metrics_t *m, const char *node, int64_t since_ms,
                                drv_metrics_point_t *out, size_t max);
size_t drv_metrics_pod_history(drv_metrics_t *m, const char *uid, int64_t since_ms,
                               drv_metrics_point_t *out, size_t max);

typedef struct drv_metrics_stats {
    size_t nodes, pods;        /* series tracked */
    size_t with_history;       /* series holding a history */
    size_t history_bytes;      /* memory those use */
    size_t without_history;    /* series past the budget: latest sample only */
    uint64_t reports, refused; /* reports taken, refused */
    uint64_t samples;          /* node and pod samples taken */
} drv_metrics_stats_t;

void drv_metrics_stats(const drv_metrics_t *m, drv_metrics_stats_t *out);

/* ---- serving it (usage_api.c) ---- */

struct drv_hstore;

typedef enum {
    DRV_USAGE_DISCOVERY,    /* GET /apis/metrics.k8s.io/v1beta1: APIResourceList */
    DRV_USAGE_NODES,        /* .../nodes: NodeMetricsList (labelSelector) */
    DRV_USAGE_NODE,         /* .../nodes/{name}: NodeMetrics */
    DRV_USAGE_PODS,         /* .../pods, .../namespaces/{ns}/pods: PodMetricsList */
    DRV_USAGE_POD,          /* .../namespaces/{ns}/pods/{name}: PodMetrics */
    DRV_USAGE_NODE_HISTORY, /* /apis/drover.io/v1/usage/nodes/{name}?window=1h */
    DRV_USAGE_POD_HISTORY,  /* /apis/drover.io/v1/usage/namespaces/{ns}/pods/{name} */
} drv_usage_op_t;

/* One request of the usage API: ns and name as the route gave them (NULL when absent),
 * label_selector and window from the query (NULL when absent). *out gets the answer (the caller
 * owns it) with *code 200, or a Kubernetes Status-worthy error: DRV_ERR_NOTFOUND (no such
 * object, or no current sample: 404), DRV_ERR_INVALID (a bad selector or window: 400). */
DRV_NODISCARD drv_err_t drv_usage_api(drv_metrics_t *m, struct drv_hstore *store, drv_usage_op_t op,
                                      const char *ns, const char *name, const char *label_selector,
                                      const char *window, int64_t now_ms, cJSON **out,
                                      drv_error_t *err);

/* Appends the usage gauges for Prometheus (text format 0.0.4) to out: per node cpu, memory,
 * disk, temperature; per pod cpu and memory, at most max_pods of them (bounded cardinality:
 * the rest are counted in drover_usage_pods_unlisted); and the history's own figures. */
DRV_NODISCARD drv_err_t drv_usage_prometheus(drv_metrics_t *m, int64_t now_ms, size_t max_pods,
                                             struct drv_buf *out);

#endif
