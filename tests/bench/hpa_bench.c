/* hpa_bench: what a HorizontalPodAutoscaler decision costs the hub at fleet size (issue 14).
 * Fills the hub's usage history (hub/metrics: drv_metrics) with N nodes' reports, each with the
 * pods that node runs, and times, beside a baseline of the same work over few pods:
 *  (a) a decision over a Deployment's pods: each pod's usage looked up (drv_metrics_pod_latest),
 *      then drv_hpa_calc_replicas and drv_hpa_calc_normalize (hub/ctrl/hpa_calc.h);
 *  (b) drv_metrics_ingest of one node's report (the series created, then in steady state);
 *  (c) the history's memory: drv_metrics_stats and the process's resident memory;
 *  (d) the controller's whole round, drv_ctrl_hpas_reconcile, over a store holding the Nodes,
 *      Pods, the Deployment and its HPA (what the hub runs every 15 s per HPA).
 * Prints figures and checks only that they were produced: exits 1 when a step measured nothing
 * (a time of zero, a decision without the pods' usage, no series). BENCH_SHORT=1 makes the
 * defaults small (CI: ctest -L bench). See docs/BENCHMARKS.md. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ctrl/ctrl.h"
#include "ctrl/hpa_calc.h"
#include "drover/error.h"
#include "drover/json.h"
#include "drover/log.h"
#include "drover/model.h"
#include "drover/protocol.h"
#include "metrics/metrics.h"
#include "store/store.h"

#define BENCH_STEP_MS 15000       /* agents' usage interval and the HPA's sync period */
#define BENCH_POD_REQ_M 100       /* each pod requests 100m cpu */
#define BENCH_POD_USE_NC 50000000 /* and uses 50m: at the 50 % target, no rescale */

typedef struct opts {
    uint32_t nodes, pods, deployment, baseline, iterations, rounds, reconciles;
    uint32_t history_mib; /* 0: drv_metrics' default */
    uint32_t round_ms;    /* between rounds of reports */
    bool reconcile;
} opts_t;

typedef struct bench {
    opts_t o;
    char **uid; /* per pod (index j), owned */
    drv_metrics_t *m;
    int64_t t_ms;                   /* the time of the latest round of reports */
    drv_proto_pod_usage_t *scratch; /* DRV_PROTO_METRICS_PODS_MAX */
} bench_t;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

typedef struct dist {
    double median_us, p99_us, mean_us;
} dist_t;

/* Sorts v in place. */
static dist_t dist_of(int64_t *v, size_t n)
{
    dist_t d = {0};
    if (n == 0)
        return d;
    qsort(v, n, sizeof(*v), cmp_i64);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i];
    d.median_us = (double)v[n / 2] / 1e3;
    d.p99_us = (double)v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1e3;
    d.mean_us = sum / (double)n / 1e3;
    return d;
}

static void node_name(uint32_t i, char *out, size_t outsz)
{
    if (snprintf(out, outsz, "node-%05" PRIu32, i) >= (int)outsz)
        out[0] = 0;
}

/* Pod j: "web-NNNNN" for the Deployment's (j < deployment), "small-NNNNN" for the baseline
 * Deployment's (the next `baseline`), "other-NNNNN" for the rest; on node j % nodes. */
static void pod_name(const opts_t *o, uint32_t j, char *out, size_t outsz)
{
    const char *dep = j < o->deployment                 ? "web"
                      : j < o->deployment + o->baseline ? "small"
                                                        : "other";
    if (snprintf(out, outsz, "%s-%05" PRIu32, dep, j) >= (int)outsz)
        out[0] = 0;
}

/* ---- (d) the store the controller reads ---- */

static drv_err_t create_json(drv_hstore_t *s, drv_kind_t kind, const char *text, drv_error_t *err)
{
    cJSON *o = cJSON_Parse(text);
    if (!o)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "bench: bad JSON: %.80s", text);
    drv_err_t rc = drv_hstore_create(s, kind, o, err);
    cJSON_Delete(o);
    return rc;
}

static drv_err_t fill_store(bench_t *b, drv_hstore_t *s, drv_error_t *err)
{
    char buf[4096], name[64], node[64];
    drv_err_t rc = drv_hstore_batch_begin(s, err);
    for (uint32_t i = 0; rc == DRV_OK && i < b->o.nodes; i++) {
        node_name(i, node, sizeof(node));
        snprintf(buf, sizeof(buf),
                 "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\","
                 "\"labels\":{\"kubernetes.io/hostname\":\"%s\"}},"
                 "\"status\":{\"capacity\":{\"cpu\":\"4\",\"memory\":\"4Gi\",\"pods\":\"110\"},"
                 "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":"
                 "\"AgentReady\",\"lastHeartbeatTime\":\"2026-01-01T00:00:00Z\"}]}}",
                 node, node);
        rc = create_json(s, DRV_KIND_NODE, buf, err);
    }
    static const char *const deps[] = {"web", "small"};
    const uint32_t reps[] = {b->o.deployment, b->o.baseline};
    for (int d = 0; rc == DRV_OK && d < 2; d++) {
        snprintf(buf, sizeof(buf),
                 "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":"
                 "\"%s\",\"namespace\":\"default\"},\"spec\":{\"replicas\":%" PRIu32
                 ",\"selector\":{\"matchLabels\":{\"app\":\"%s\"}},\"template\":{\"metadata\":"
                 "{\"labels\":{\"app\":\"%s\"}},\"spec\":{\"containers\":[{\"name\":\"app\","
                 "\"image\":\"registry.local/%s:1\"}]}}}}",
                 deps[d], reps[d], deps[d], deps[d], deps[d]);
        rc = create_json(s, DRV_KIND_DEPLOYMENT, buf, err);
    }
    for (uint32_t j = 0; rc == DRV_OK && j < b->o.pods; j++) {
        pod_name(&b->o, j, name, sizeof(name));
        node_name(j % b->o.nodes, node, sizeof(node));
        const char *app = j < b->o.deployment                   ? "web"
                          : j < b->o.deployment + b->o.baseline ? "small"
                                                                : "other";
        snprintf(buf, sizeof(buf),
                 "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
                 "\"namespace\":\"default\",\"labels\":{\"app\":\"%s\"}},\"spec\":{\"nodeName\":"
                 "\"%s\",\"containers\":[{\"name\":\"app\",\"image\":\"registry.local/%s:1\","
                 "\"resources\":{\"requests\":{\"cpu\":\"%dm\",\"memory\":\"16Mi\"}}}]},"
                 "\"status\":{\"phase\":\"Running\",\"startTime\":\"2026-01-01T00:00:00Z\","
                 "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\","
                 "\"lastTransitionTime\":\"2026-01-01T00:00:00Z\"}],\"containerStatuses\":[{"
                 "\"name\":\"app\",\"ready\":true,\"restartCount\":0,\"state\":{\"running\":{"
                 "\"startedAt\":\"2026-01-01T00:00:00Z\"}}}]}}",
                 name, app, node, app, BENCH_POD_REQ_M);
        rc = create_json(s, DRV_KIND_POD, buf, err);
    }
    if (rc != DRV_OK) {
        drv_hstore_batch_abort(s);
        return rc;
    }
    return drv_hstore_batch_end(s, err);
}

static drv_err_t hpa_create(drv_hstore_t *s, const char *dep, uint32_t replicas, drv_error_t *err)
{
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"autoscaling/v2\",\"kind\":\"HorizontalPodAutoscaler\","
             "\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\"},\"spec\":{"
             "\"scaleTargetRef\":{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"name\":"
             "\"%s\"},\"minReplicas\":1,\"maxReplicas\":%" PRIu32 ",\"metrics\":[{\"type\":"
             "\"Resource\",\"resource\":{\"name\":\"cpu\",\"target\":{\"type\":\"Utilization\","
             "\"averageUtilization\":50}}}]}}",
             dep, dep, replicas * 2);
    return create_json(s, DRV_KIND_HPA, buf, err);
}

/* The uids the store gave the pods, by the index in their names. */
static drv_err_t read_uids(bench_t *b, drv_hstore_t *s, drv_error_t *err)
{
    cJSON *pods = NULL;
    drv_err_t rc = drv_hstore_list(s, DRV_KIND_POD, "default", NULL, &pods, NULL, err);
    if (rc != DRV_OK)
        return rc;
    const cJSON *p;
    cJSON_ArrayForEach(p, pods)
    {
        const char *name = drv_json_str_at(p, "metadata.name");
        const char *uid = drv_json_str_at(p, "metadata.uid");
        const char *dash = name ? strrchr(name, '-') : NULL;
        unsigned long j = dash ? strtoul(dash + 1, NULL, 10) : ULONG_MAX;
        if (uid && j < b->o.pods) {
            free(b->uid[j]);
            b->uid[j] = strdup(uid);
        }
    }
    cJSON_Delete(pods);
    return DRV_OK;
}

/* ---- (b) reports ---- */

/* Node i's report at time t_ms: its usage and its pods' (j = i, i + nodes, ...), each one
 * container at 50m. with_pods false: the node's usage alone. */
static void report_of(bench_t *b, uint32_t i, int64_t t_ms, bool with_pods, drv_proto_metrics_t *r)
{
    *r = (drv_proto_metrics_t){.seq = (uint64_t)(t_ms / BENCH_STEP_MS),
                               .time_ms = t_ms,
                               .window_ms = BENCH_STEP_MS,
                               .has_cpu = true,
                               .cpu_nanocores = 600000000 + (int64_t)(i % 97) * 1000000,
                               .has_memory = true,
                               .memory_bytes = 1536LL << 20,
                               .memory_total_bytes = 4LL << 30,
                               .has_disk = true,
                               .disk_free_bytes = 8LL << 30,
                               .disk_total_bytes = 16LL << 30,
                               .pods = b->scratch};
    node_name(i, r->node, sizeof(r->node));
    for (uint32_t j = i; with_pods && j < b->o.pods && r->n_pods < DRV_PROTO_METRICS_PODS_MAX;
         j += b->o.nodes) {
        drv_proto_pod_usage_t *p = &b->scratch[r->n_pods++];
        memset(p, 0, sizeof(*p));
        memcpy(p->ns, "default", sizeof("default"));
        pod_name(&b->o, j, p->name, sizeof(p->name));
        if (b->uid[j])
            snprintf(p->uid, sizeof(p->uid), "%s", b->uid[j]);
        else
            snprintf(p->uid, sizeof(p->uid), "00000000-0000-4000-8000-%012" PRIu32, j);
        p->n_ctrs = 1;
        memcpy(p->ctrs[0].name, "app", sizeof("app"));
        p->ctrs[0].has_cpu = p->ctrs[0].has_memory = true;
        p->ctrs[0].cpu_nanocores = BENCH_POD_USE_NC;
        p->ctrs[0].memory_bytes = 40LL << 20;
    }
}

/* One round of every node's report at t_ms; each ingest timed into ns (may be NULL). */
static drv_err_t ingest_round(bench_t *b, int64_t t_ms, int64_t *ns, drv_error_t *err)
{
    for (uint32_t i = 0; i < b->o.nodes; i++) {
        drv_proto_metrics_t r;
        report_of(b, i, t_ms, true, &r);
        int64_t t0 = mono_ns();
        drv_err_t rc = drv_metrics_ingest(b->m, &r, t_ms, err);
        if (ns)
            ns[i] = mono_ns() - t0;
        if (rc != DRV_OK)
            return rc;
    }
    return DRV_OK;
}

/* ---- (a) a decision ---- */

typedef struct decision_times {
    int64_t *total, *lookup, *calc, *normalize;
    int32_t replicas;
    int32_t utilization;
    size_t with_metric;
} decision_times_t;

/* iterations decisions over pods [first, first + n): look up each pod's usage, compute the
 * proposal, normalize it. The HPA's clock advances a sync period a decision, so that its
 * recommendations stay what they are in steady state; the usage is read at the time of the
 * latest reports. */
static drv_err_t decide(bench_t *b, uint32_t first, uint32_t n, uint32_t iterations,
                        decision_times_t *dt, drv_error_t *err)
{
    drv_hpa_pod_t *pods = calloc(n, sizeof(*pods));
    drv_hpa_memory_t *mem = calloc(1, sizeof(*mem));
    char(*names)[64] = calloc(n, sizeof(*names));
    if (!pods || !mem || !names) {
        free(pods);
        free(mem);
        free(names);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    }
    for (uint32_t k = 0; k < n; k++)
        pod_name(&b->o, first + k, names[k], sizeof(names[k]));
    drv_hpa_target_t target = {.cpu = true, .utilization = true, .percent = 50};
    drv_hpa_spec_t spec = {.min_replicas = 1, .max_replicas = (int32_t)n * 2};
    drv_hpa_rules_default_up(&spec.up);
    drv_hpa_rules_default_down(&spec.down);
    int64_t hpa_now = b->t_ms, start = b->t_ms - 3600 * 1000;
    drv_hpa_calc_init(mem, (int32_t)n, hpa_now);
    drv_err_t rc = DRV_OK;
    for (uint32_t it = 0; it < iterations && rc == DRV_OK; it++) {
        hpa_now += BENCH_STEP_MS;
        int64_t t0 = mono_ns();
        size_t with = 0;
        for (uint32_t k = 0; k < n; k++) {
            drv_hpa_pod_t *p = &pods[k];
            *p = (drv_hpa_pod_t){.name = names[k],
                                 .phase = DRV_HPA_PHASE_RUNNING,
                                 .has_ready = true,
                                 .ready = true,
                                 .ready_ms = start,
                                 .has_start = true,
                                 .start_ms = start,
                                 .request = BENCH_POD_REQ_M};
            drv_metrics_pod_usage_t u;
            const char *uid = b->uid[first + k];
            char synth[DRV_PROTO_UID_MAX + 1];
            if (!uid) {
                snprintf(synth, sizeof(synth), "00000000-0000-4000-8000-%012" PRIu32, first + k);
                uid = synth;
            }
            if (drv_metrics_pod_latest(b->m, uid, b->t_ms, &u) && u.u.has_cpu) {
                p->has_metric = true;
                p->value = u.u.cpu_nanocores / 1000000;
                p->metric_ms = u.u.ms;
                p->metric_window_ms = u.u.window_ms;
                with++;
            }
        }
        int64_t t1 = mono_ns();
        drv_hpa_proposal_t prop;
        rc = drv_hpa_calc_replicas(pods, n, &target, (int32_t)n, hpa_now, &prop, err);
        int64_t t2 = mono_ns();
        drv_hpa_normalized_t norm;
        if (rc == DRV_OK)
            drv_hpa_calc_normalize(&spec, mem, (int32_t)n, prop.replicas, hpa_now, &norm);
        int64_t t3 = mono_ns();
        dt->total[it] = t3 - t0;
        dt->lookup[it] = t1 - t0;
        dt->calc[it] = t2 - t1;
        dt->normalize[it] = t3 - t2;
        if (rc == DRV_OK) {
            dt->replicas = norm.replicas;
            dt->utilization = prop.utilization;
            dt->with_metric = with;
        }
    }
    free(pods);
    free(mem);
    free(names);
    return rc;
}

/* ---- (d) the controller's round ---- */

static bool pod_usage(void *ctx, const char *uid, int64_t now_ms, drv_ctrl_usage_t *out)
{
    drv_metrics_pod_usage_t u;
    (void)now_ms;
    bench_t *b = ctx;
    /* usage as of the latest reports (the controller's own clock runs ahead a period a round) */
    if (!drv_metrics_pod_latest(b->m, uid, b->t_ms, &u))
        return false;
    *out = (drv_ctrl_usage_t){.has_cpu = u.u.has_cpu,
                              .cpu_millicores = u.u.cpu_nanocores / 1000000,
                              .has_memory = u.u.has_memory,
                              .memory_bytes = u.u.memory_bytes,
                              .sample_ms = u.u.ms,
                              .window_ms = u.u.window_ms};
    return true;
}

static drv_err_t reconcile_times(bench_t *b, drv_hstore_t *s, uint32_t n, int64_t *ns,
                                 drv_error_t *err)
{
    drv_ctrl_hpa_t *h = NULL;
    drv_err_t rc = drv_ctrl_hpa_new(BENCH_STEP_MS, &h, err);
    int64_t now = b->t_ms;
    for (uint32_t i = 0; rc == DRV_OK && i < n; i++) {
        now += BENCH_STEP_MS;
        int64_t t0 = mono_ns();
        rc = drv_ctrl_hpas_reconcile(s, h, pod_usage, b, now, err);
        ns[i] = mono_ns() - t0;
    }
    drv_ctrl_hpa_free(h);
    return rc;
}

/* ---- options and output ---- */

static bool parse_u32(const char *opt, const char *v, uint32_t min, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long x = v ? strtoul(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || *v == '-' || x < min || x > 10000000) {
        fprintf(stderr, "hpa_bench: %s: must be an integer from %" PRIu32 " (got \"%s\")\n", opt,
                min, v ? v : "");
        return false;
    }
    *out = (uint32_t)x;
    return true;
}

/* A printed figure that is zero, NaN or missing means its step measured nothing (issue 19:
 * benchmarks that cannot lie); the values themselves are not judged. */
static void need(unsigned *failed, bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "hpa_bench: NOT MEASURED: %s\n", what);
        (*failed)++;
    }
}

static int usage(FILE *f, int rc)
{
    fprintf(f, "usage: hpa_bench [--nodes N] [--pods P] [--deployment D] [--baseline B]\n"
               "                 [--iterations I] [--rounds R] [--reconciles K] [--history-mib M]\n"
               "                 [--round-ms MS] [--no-reconcile]\n"
               "Defaults: 10000 nodes, 20000 pods (pod j on node j %% N), a Deployment of 1000 of\n"
               "them beside a baseline Deployment of 10, 2000 decisions each, 4 rounds of reports\n"
               "(--round-ms 15000 apart), 20 controller rounds, the history budget of drover-hub\n"
               "(64 MiB). --rounds 300 --round-ms 300000 fills every history (a day), to see the\n"
               "memory the budget ends up holding: the rings are allocated zeroed and become\n"
               "resident only as points arrive. BENCH_SHORT=1 (CI): 200 nodes, 400 pods, a\n"
               "Deployment of 100, 100 decisions, 2 rounds, 3 controller rounds.\n");
    return rc;
}

static void row(const char *what, const char *a, const char *b)
{
    printf("  %-58s %22s %22s\n", what, a, b);
}

static void row_dist(const char *what, const dist_t *a, const dist_t *b)
{
    char x[64], y[64];
    snprintf(x, sizeof(x), "%.1f / %.1f us", a->median_us, a->p99_us);
    if (b)
        snprintf(y, sizeof(y), "%.1f / %.1f us", b->median_us, b->p99_us);
    row(what, x, b ? y : "");
}

int main(int argc, char **argv)
{
    bench_t b = {.o = {.nodes = 10000,
                       .pods = 20000,
                       .deployment = 1000,
                       .baseline = 10,
                       .iterations = 2000,
                       .rounds = 4,
                       .reconciles = 20,
                       .round_ms = BENCH_STEP_MS,
                       .reconcile = true}};
    opts_t *o = &b.o;
    const char *short_mode = getenv("BENCH_SHORT");
    if (short_mode && !strcmp(short_mode, "1")) {
        o->nodes = 200;
        o->pods = 400;
        o->deployment = 100;
        o->iterations = 100;
        o->rounds = 2;
        o->reconciles = 3;
    }
    unsigned failed = 0;
    for (int a = 1; a < argc; a++) {
        const char *opt = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        bool ok = true;
        if (!strcmp(opt, "-h") || !strcmp(opt, "--help"))
            return usage(stdout, 0);
        if (!strcmp(opt, "--no-reconcile")) {
            o->reconcile = false;
            continue;
        }
        if (!strcmp(opt, "--nodes"))
            ok = parse_u32(opt, v, 1, &o->nodes);
        else if (!strcmp(opt, "--pods"))
            ok = parse_u32(opt, v, 1, &o->pods);
        else if (!strcmp(opt, "--deployment"))
            ok = parse_u32(opt, v, 1, &o->deployment);
        else if (!strcmp(opt, "--baseline"))
            ok = parse_u32(opt, v, 1, &o->baseline);
        else if (!strcmp(opt, "--iterations"))
            ok = parse_u32(opt, v, 1, &o->iterations);
        else if (!strcmp(opt, "--rounds"))
            ok = parse_u32(opt, v, 2, &o->rounds);
        else if (!strcmp(opt, "--reconciles"))
            ok = parse_u32(opt, v, 1, &o->reconciles);
        else if (!strcmp(opt, "--round-ms"))
            ok = parse_u32(opt, v, 1000, &o->round_ms);
        else if (!strcmp(opt, "--history-mib"))
            ok = parse_u32(opt, v, 1, &o->history_mib);
        else
            return usage(stderr, 2);
        if (!ok)
            return 2;
        a++;
    }
    if (o->deployment + o->baseline > o->pods) {
        fprintf(stderr, "hpa_bench: --deployment + --baseline must not exceed --pods\n");
        return 2;
    }
    drv_error_t err = DRV_ERROR_INIT;
    drv_log_set_level(DRV_LOG_WARN); /* the store's "migrated" notes are not figures */
    b.uid = calloc(o->pods, sizeof(*b.uid));
    b.scratch = calloc(DRV_PROTO_METRICS_PODS_MAX, sizeof(*b.scratch));
    int64_t *ns = calloc(o->nodes > o->iterations ? o->nodes : o->iterations, sizeof(*ns));
    int64_t *ns2 = calloc(o->nodes > o->iterations ? o->nodes : o->iterations, sizeof(*ns2));
    decision_times_t big = {0}, small = {0};
    int64_t **bufs[] = {&big.total,   &big.lookup,   &big.calc,   &big.normalize,
                        &small.total, &small.lookup, &small.calc, &small.normalize};
    bool oom = !b.uid || !b.scratch || !ns || !ns2;
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        oom = oom || !(*bufs[i] = calloc(o->iterations, sizeof(int64_t)));
    if (oom) {
        fprintf(stderr, "hpa_bench: out of memory\n");
        return 1;
    }
    printf("hpa_bench: %" PRIu32 " nodes, %" PRIu32
           " pods (one container each, on node j %% %" PRIu32 "), a Deployment of %" PRIu32
           " pods and a baseline of %" PRIu32 "\n",
           o->nodes, o->pods, o->nodes, o->deployment, o->baseline);

    /* The store (d) first: its uids are the pods' in the reports. */
    char dbpath[] = "/tmp/hpa_bench.XXXXXX";
    drv_hstore_t *store = NULL;
    double store_s = 0;
    if (o->reconcile) {
        int fd = mkstemp(dbpath);
        if (fd < 0) {
            fprintf(stderr, "hpa_bench: mkstemp: %s\n", strerror(errno));
            return 1;
        }
        close(fd);
        unlink(dbpath);
        int64_t t0 = mono_ns();
        if (drv_hstore_open(dbpath, &store, &err) != DRV_OK ||
            fill_store(&b, store, &err) != DRV_OK || read_uids(&b, store, &err) != DRV_OK) {
            fprintf(stderr, "hpa_bench: store: %s\n", drv_error_msg(&err));
            return 1;
        }
        store_s = (double)(mono_ns() - t0) / 1e9;
    }

    /* (b) and (c): the history filled, round by round. */
    malloc_trim(0);
    long rss0 = rss_kib();
    drv_metrics_opts_t mo = {.history_bytes_max = (size_t)o->history_mib << 20};
    if (drv_metrics_new(&mo, &b.m, &err) != DRV_OK) {
        fprintf(stderr, "hpa_bench: %s\n", drv_error_msg(&err));
        return 1;
    }
    b.t_ms = wall_ms() - (int64_t)o->rounds * o->round_ms;
    b.t_ms -= b.t_ms % BENCH_STEP_MS;
    if (ingest_round(&b, b.t_ms, ns, &err) != DRV_OK) {
        fprintf(stderr, "hpa_bench: ingest: %s\n", drv_error_msg(&err));
        return 1;
    }
    dist_t ingest_first = dist_of(ns, o->nodes);
    long rss1 = rss_kib();
    size_t steady_n = 0;
    int64_t *steady = calloc((size_t)o->nodes * (o->rounds - 1), sizeof(*steady));
    for (uint32_t r = 1; steady && r < o->rounds; r++) {
        b.t_ms += o->round_ms;
        if (ingest_round(&b, b.t_ms, steady + steady_n, &err) != DRV_OK) {
            fprintf(stderr, "hpa_bench: ingest: %s\n", drv_error_msg(&err));
            return 1;
        }
        steady_n += o->nodes;
    }
    dist_t ingest_steady = dist_of(steady, steady_n);
    free(steady);
    long rss2 = rss_kib();
    /* the baseline of an ingest: a node's report without pods */
    for (uint32_t i = 0; i < o->nodes && i < o->iterations; i++) {
        drv_proto_metrics_t r;
        report_of(&b, i, b.t_ms + 1, false, &r);
        int64_t t0 = mono_ns();
        if (drv_metrics_ingest(b.m, &r, b.t_ms + 1, &err) != DRV_OK) {
            fprintf(stderr, "hpa_bench: ingest: %s\n", drv_error_msg(&err));
            return 1;
        }
        ns2[i] = mono_ns() - t0;
    }
    dist_t ingest_nopods = dist_of(ns2, o->nodes < o->iterations ? o->nodes : o->iterations);
    b.t_ms += 1;
    /* what the hub's bridge does first with a report: drv_proto_metrics_parse of the payload */
    uint32_t np = o->nodes < o->iterations ? o->nodes : o->iterations;
    size_t payload_bytes = 0;
    for (uint32_t i = 0; i < np; i++) {
        drv_proto_metrics_t r, parsed;
        report_of(&b, i, b.t_ms, true, &r);
        char *payload = NULL;
        size_t len = 0;
        if (drv_proto_metrics_format(&r, &payload, &len, &err) != DRV_OK) {
            fprintf(stderr, "hpa_bench: format: %s\n", drv_error_msg(&err));
            return 1;
        }
        payload_bytes += len;
        int64_t t0 = mono_ns();
        drv_err_t prc = drv_proto_metrics_parse(payload, len, r.node, &parsed, &err);
        ns2[i] = mono_ns() - t0;
        free(payload);
        if (prc != DRV_OK) {
            fprintf(stderr, "hpa_bench: parse: %s\n", drv_error_msg(&err));
            return 1;
        }
        drv_proto_metrics_free(&parsed);
    }
    dist_t parse = dist_of(ns2, np);
    drv_metrics_stats_t st;
    drv_metrics_stats(b.m, &st);

    /* (a) decisions */
    if (decide(&b, 0, o->deployment, o->iterations, &big, &err) != DRV_OK ||
        decide(&b, o->deployment, o->baseline, o->iterations, &small, &err) != DRV_OK) {
        fprintf(stderr, "hpa_bench: decision: %s\n", drv_error_msg(&err));
        return 1;
    }
    dist_t bt = dist_of(big.total, o->iterations), st_ = dist_of(small.total, o->iterations);
    dist_t bl = dist_of(big.lookup, o->iterations), sl = dist_of(small.lookup, o->iterations);
    dist_t bc = dist_of(big.calc, o->iterations), sc = dist_of(small.calc, o->iterations);
    dist_t bn = dist_of(big.normalize, o->iterations), sn = dist_of(small.normalize, o->iterations);

    char x[64], y[64];
    printf("\n(a) an HPA decision (cpu, Utilization 50 %% of 100m; every pod at 50m): "
           "median / p99 of %" PRIu32 "\n",
           o->iterations);
    snprintf(x, sizeof(x), "%" PRIu32 " pods", o->deployment);
    snprintf(y, sizeof(y), "baseline: %" PRIu32 " pods", o->baseline);
    row("", x, y);
    row_dist("usage lookups + calc_replicas + normalize", &bt, &st_);
    row_dist("  the pods' usage lookups (drv_metrics_pod_latest)", &bl, &sl);
    row_dist("  drv_hpa_calc_replicas", &bc, &sc);
    row_dist("  drv_hpa_calc_normalize", &bn, &sn);
    snprintf(x, sizeof(x), "%.3f us", bt.median_us / o->deployment);
    snprintf(y, sizeof(y), "%.3f us", st_.median_us / o->baseline);
    row("  per pod (median / pods)", x, y);
    snprintf(x, sizeof(x), "%d (%zu with metrics)", big.replicas, big.with_metric);
    snprintf(y, sizeof(y), "%d (%zu with metrics)", small.replicas, small.with_metric);
    row("  replicas decided", x, y);

    printf("\n(b) drv_metrics_ingest of one node's report: median / p99\n");
    snprintf(x, sizeof(x), "%" PRIu32 " pods / node", (o->pods + o->nodes - 1) / o->nodes);
    row("", x, "baseline: no pods");
    row_dist("first report (the series created)", &ingest_first, NULL);
    row_dist("steady state (later rounds)", &ingest_steady, &ingest_nopods);
    snprintf(x, sizeof(x), "%.1f ms", ingest_steady.mean_us * o->nodes / 1e3);
    row("  a whole round of every node (mean x nodes)", x, "");
    snprintf(x, sizeof(x), "%.3f %%",
             100.0 * ingest_steady.mean_us * o->nodes / 1e6 / (BENCH_STEP_MS / 1000.0));
    row("  ingest alone, every node every 15 s: of one core", x, "");
    snprintf(x, sizeof(x), "%.1f / %.1f us", parse.median_us, parse.p99_us);
    snprintf(y, sizeof(y), "%zu B payload", np ? payload_bytes / np : 0);
    row("drv_proto_metrics_parse of the report (before ingest)", x, y);
    snprintf(x, sizeof(x), "%.3f %%",
             100.0 * (ingest_steady.mean_us + parse.mean_us) * o->nodes / 1e6 /
                 (BENCH_STEP_MS / 1000.0));
    row("  parse + ingest, every node every 15 s: of one core", x, "");

    printf("\n(c) the history's memory\n");
    snprintf(x, sizeof(x), "%zu + %zu", st.nodes, st.pods);
    row("series (nodes + pods)", x, "");
    snprintf(x, sizeof(x), "%zu / %zu", st.with_history, st.without_history);
    row("with a history / latest sample only (past the budget)", x, "");
    snprintf(x, sizeof(x), "%.1f MiB", (double)st.history_bytes / 1048576.0);
    snprintf(y, sizeof(y), "%" PRIu32 " MiB budget", o->history_mib ? o->history_mib : 64);
    row("history bytes (drv_metrics_stats)", x, y);
    snprintf(x, sizeof(x), "%.0f B",
             st.with_history ? (double)st.history_bytes / st.with_history : 0);
    row("  per series with a history", x, "");
    snprintf(x, sizeof(x), "%+.1f MiB", (rss1 - rss0) / 1024.0);
    row("process RSS: after the first round", x, "");
    snprintf(x, sizeof(x), "%+.1f MiB", (rss2 - rss0) / 1024.0);
    snprintf(y, sizeof(y), "%" PRIu32 " rounds", o->rounds);
    row("process RSS: after the later rounds", x, y);
    snprintf(x, sizeof(x), "%.0f B",
             (rss2 - rss0) * 1024.0 / (double)(st.nodes + st.pods ? st.nodes + st.pods : 1));
    row("  per series (RSS)", x, "");

    need(&failed, big.with_metric == o->deployment && small.with_metric == o->baseline,
         "(a) a decision without every pod's usage (lookups that missed)");
    need(&failed, big.replicas > 0 && small.replicas > 0, "(a) replicas decided");
    need(&failed, bt.median_us > 0 && st_.median_us > 0, "(a) the decision's time");
    need(&failed, bl.median_us > 0 && sl.median_us > 0, "(a) the usage lookups' time");
    need(&failed, ingest_first.median_us > 0 && ingest_steady.median_us > 0,
         "(b) drv_metrics_ingest's time");
    need(&failed, ingest_nopods.median_us > 0, "(b) the baseline: an ingest without pods");
    need(&failed, parse.median_us > 0 && payload_bytes > 0, "(b) drv_proto_metrics_parse's time");
    need(&failed,
         st.nodes == o->nodes && st.pods > 0 && st.with_history > 0 && st.history_bytes > 0,
         "(c) the history's series and bytes");
    need(&failed, rss0 > 0 && rss1 > 0 && rss2 > 0, "(c) the process's RSS");
    if (o->reconcile) {
        printf("\n(d) drv_ctrl_hpas_reconcile: the controller's round over a store of %" PRIu32
               " Nodes and %" PRIu32 " Pods (filled in %.1f s): median / p99 of %" PRIu32 "\n",
               o->nodes, o->pods, store_s, o->reconciles);
        int64_t *rb = calloc(o->reconciles, sizeof(*rb)), *rs = calloc(o->reconciles, sizeof(*rs));
        if (!rb || !rs || hpa_create(store, "small", o->baseline, &err) != DRV_OK ||
            reconcile_times(&b, store, o->reconciles, rs, &err) != DRV_OK ||
            drv_hstore_delete(store, DRV_KIND_HPA, "default", "small", NULL, &err) != DRV_OK ||
            hpa_create(store, "web", o->deployment, &err) != DRV_OK ||
            reconcile_times(&b, store, o->reconciles, rb, &err) != DRV_OK) {
            fprintf(stderr, "hpa_bench: reconcile: %s\n", drv_error_msg(&err));
            return 1;
        }
        dist_t rdb = dist_of(rb, o->reconciles), rds = dist_of(rs, o->reconciles);
        need(&failed, rdb.median_us > 0 && rds.median_us > 0, "(d) the controller's round");
        snprintf(x, sizeof(x), "HPA over %" PRIu32 " pods", o->deployment);
        snprintf(y, sizeof(y), "baseline: %" PRIu32 " pods", o->baseline);
        row("", x, y);
        snprintf(x, sizeof(x), "%.1f / %.1f ms", rdb.median_us / 1e3, rdb.p99_us / 1e3);
        snprintf(y, sizeof(y), "%.1f / %.1f ms", rds.median_us / 1e3, rds.p99_us / 1e3);
        row("one round (lists, decision, status written)", x, y);
        cJSON *hpa = NULL;
        bool active = false;
        if (drv_hstore_get(store, DRV_KIND_HPA, "default", "web", &hpa, &err) == DRV_OK) {
            const cJSON *c;
            cJSON_ArrayForEach(c, drv_json_at(hpa, "status.conditions"))
            {
                if (!strcmp(drv_json_str(c, "type") ? drv_json_str(c, "type") : "",
                            "ScalingActive")) {
                    active = true;
                    printf("  the HPA's ScalingActive: %s (%s), desiredReplicas %lld\n",
                           drv_json_str(c, "status"), drv_json_str(c, "reason"),
                           (long long)drv_json_int_at(hpa, "status.desiredReplicas", 0, INT32_MAX,
                                                      -1));
                }
            }
            cJSON_Delete(hpa);
        }
        need(&failed, active, "(d) the HPA's status after its rounds (no ScalingActive condition)");
        free(rb);
        free(rs);
        drv_hstore_close(store);
        unlink(dbpath);
        char side[sizeof(dbpath) + 8];
        snprintf(side, sizeof(side), "%s-wal", dbpath);
        unlink(side);
        snprintf(side, sizeof(side), "%s-shm", dbpath);
        unlink(side);
    }
    drv_metrics_free(b.m);
    for (uint32_t j = 0; j < o->pods; j++)
        free(b.uid[j]);
    free(b.uid);
    free(b.scratch);
    free(ns);
    free(ns2);
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        free(*bufs[i]);
    if (failed) {
        fprintf(stderr, "hpa_bench: %u figure(s) not measured\n", failed);
        return 1;
    }
    return 0;
}
