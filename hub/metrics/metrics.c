/* Usage history on the hub (see metrics.h): seeded maps from node name and pod uid to a series;
 * a series holds its latest sample and, while the budget lasts, two rings of compact points. */
#include "metrics/metrics.h"

#include <stdlib.h>
#include <string.h>

#include "drover/map.h"

#define DEF_MAX_SERIES 200000
#define DEF_HISTORY_BYTES (64u << 20)
#define DEF_STALE_MS 60000
#define DEF_FUTURE_MS 60000
#define DEF_FINE_STEP_MS 15000
#define DEF_FINE_POINTS 240
#define DEF_COARSE_STEP_MS 300000
#define DEF_COARSE_POINTS 288
#define NONE_U32 UINT32_MAX /* a point's value that was not measured */

/* A compact point: seconds since the epoch, millicores, KiB (4 TiB at most). */
typedef struct point {
    uint32_t sec;
    uint32_t mcpu;
    uint32_t kib;
} point_t;

typedef struct ring {
    point_t *p;
    size_t cap, n, head; /* head: the oldest */
} ring_t;

typedef struct history {
    ring_t fine, coarse;
    int64_t bucket; /* the coarse bucket being summed (its start, ms), -1: none */
    uint64_t sum_mcpu, sum_kib;
    uint32_t n_mcpu, n_kib, n_points;
} history_t;

typedef struct series {
    char *key;  /* node name or pod uid (owned; the map's key) */
    char *ns;   /* pods */
    char *name; /* pods */
    char *node; /* pods: where it runs */
    bool is_node;
    bool has;        /* a sample was taken */
    int64_t recv_ms; /* when the hub took it (its clock: a device's may be off) */
    drv_metrics_node_usage_t node_u;
    drv_metrics_usage_t pod_u;
    drv_metrics_ctr_usage_t *ctrs; /* pods; names point into ctr_names */
    char *ctr_names;
    size_t n_ctrs;
    history_t *h; /* NULL: none (beyond the budget) */
} series_t;

struct drv_metrics {
    drv_metrics_opts_t o;
    drv_map_t nodes, pods;
    size_t history_bytes, with_history, without_history;
    uint64_t reports, refused, samples;
};

/* ---- rings and histories ----------------------------------------------------------------- */

static size_t history_cost(const drv_metrics_t *m)
{
    return sizeof(history_t) + (m->o.fine_points + m->o.coarse_points) * sizeof(point_t);
}

static history_t *history_new(drv_metrics_t *m)
{
    size_t cost = history_cost(m);
    if (m->history_bytes + cost > m->o.history_bytes_max)
        return NULL;
    history_t *h = calloc(1, cost);
    if (h == NULL)
        return NULL;
    point_t *pts = (point_t *)(h + 1);
    h->fine = (ring_t){pts, m->o.fine_points, 0, 0};
    h->coarse = (ring_t){pts + m->o.fine_points, m->o.coarse_points, 0, 0};
    h->bucket = -1;
    m->history_bytes += cost;
    m->with_history++;
    return h;
}

static void ring_push(ring_t *r, point_t p)
{
    if (r->cap == 0)
        return;
    if (r->n < r->cap) {
        r->p[(r->head + r->n) % r->cap] = p;
        r->n++;
    } else {
        r->p[r->head] = p;
        r->head = (r->head + 1) % r->cap;
    }
}

static point_t *ring_last(ring_t *r)
{
    return r->n ? &r->p[(r->head + r->n - 1) % r->cap] : NULL;
}

static uint32_t to_mcpu(bool has, int64_t nanocores)
{
    if (!has || nanocores < 0)
        return NONE_U32;
    int64_t v = nanocores / 1000000;
    return v >= NONE_U32 ? NONE_U32 - 1 : (uint32_t)v;
}

static uint32_t to_kib(bool has, int64_t bytes)
{
    if (!has || bytes < 0)
        return NONE_U32;
    int64_t v = bytes / 1024;
    return v >= NONE_U32 ? NONE_U32 - 1 : (uint32_t)v;
}

static void flush_bucket(const drv_metrics_t *m, history_t *h)
{
    if (h->bucket < 0 || h->n_points == 0)
        return;
    point_t p = {(uint32_t)((h->bucket + m->o.coarse_step_ms / 2) / 1000),
                 h->n_mcpu ? (uint32_t)(h->sum_mcpu / h->n_mcpu) : NONE_U32,
                 h->n_kib ? (uint32_t)(h->sum_kib / h->n_kib) : NONE_U32};
    ring_push(&h->coarse, p);
    h->sum_mcpu = h->sum_kib = 0;
    h->n_mcpu = h->n_kib = h->n_points = 0;
}

/* One sample into a history: the fine ring takes at most one point a step (a later sample in
 * the same step replaces the earlier one); the coarse ring averages each 5-minute bucket. */
static void history_add(const drv_metrics_t *m, history_t *h, int64_t ms, uint32_t mcpu,
                        uint32_t kib)
{
    point_t p = {(uint32_t)(ms / 1000), mcpu, kib};
    point_t *last = ring_last(&h->fine);
    if (last && (int64_t)last->sec * 1000 / m->o.fine_step_ms == ms / m->o.fine_step_ms)
        *last = p;
    else
        ring_push(&h->fine, p);
    int64_t bucket = ms - ms % m->o.coarse_step_ms;
    if (bucket != h->bucket) {
        flush_bucket(m, h);
        h->bucket = bucket;
    }
    if (mcpu != NONE_U32) {
        h->sum_mcpu += mcpu;
        h->n_mcpu++;
    }
    if (kib != NONE_U32) {
        h->sum_kib += kib;
        h->n_kib++;
    }
    h->n_points++;
}

/* ---- series ------------------------------------------------------------------------------ */

static void series_free(drv_metrics_t *m, series_t *s)
{
    if (s == NULL)
        return;
    if (s->h) {
        m->history_bytes -= history_cost(m);
        m->with_history--;
        free(s->h);
    } else {
        m->without_history--;
    }
    free(s->key);
    free(s->ns);
    free(s->name);
    free(s->node);
    free(s->ctrs);
    free(s->ctr_names);
    free(s);
}

static series_t *series_get(drv_metrics_t *m, drv_map_t *map, const char *key, bool is_node)
{
    series_t *s = drv_map_get(map, key);
    if (s)
        return s;
    if (m->nodes.n + m->pods.n >= m->o.max_series)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->key = strdup(key)) == NULL) {
        free(s);
        return NULL;
    }
    s->is_node = is_node;
    if (drv_map_put(map, s->key, s) != DRV_OK) {
        free(s->key);
        free(s);
        return NULL;
    }
    s->h = history_new(m);
    if (s->h == NULL)
        m->without_history++;
    return s;
}

static bool set_str(char **dst, const char *src)
{
    if (*dst && strcmp(*dst, src) == 0)
        return true;
    char *c = strdup(src);
    if (c == NULL)
        return false;
    free(*dst);
    *dst = c;
    return true;
}

static bool pod_sample(drv_metrics_t *m, const drv_proto_metrics_t *r,
                       const drv_proto_pod_usage_t *p, int64_t now_ms)
{
    series_t *s = series_get(m, &m->pods, p->uid, false);
    if (s == NULL)
        return false;
    if (!set_str(&s->ns, p->ns) || !set_str(&s->name, p->name) || !set_str(&s->node, r->node))
        return false;
    size_t names = 0;
    for (size_t i = 0; i < p->n_ctrs; i++)
        names += strlen(p->ctrs[i].name) + 1;
    drv_metrics_ctr_usage_t *ctrs = p->n_ctrs ? calloc(p->n_ctrs, sizeof(*ctrs)) : NULL;
    char *buf = names ? malloc(names) : NULL;
    if ((p->n_ctrs && !ctrs) || (names && !buf)) {
        free(ctrs);
        free(buf);
        return false;
    }
    drv_metrics_usage_t u = {.ms = r->time_ms,
                             .window_ms = r->window_ms,
                             .has_cpu = p->n_ctrs > 0,
                             .has_memory = p->n_ctrs > 0};
    size_t off = 0;
    for (size_t i = 0; i < p->n_ctrs; i++) {
        const drv_proto_ctr_usage_t *c = &p->ctrs[i];
        size_t l = strlen(c->name) + 1;
        memcpy(buf + off, c->name, l);
        ctrs[i] = (drv_metrics_ctr_usage_t){.name = buf + off,
                                            .has_cpu = c->has_cpu,
                                            .cpu_nanocores = c->cpu_nanocores,
                                            .has_memory = c->has_memory,
                                            .memory_bytes = c->memory_bytes,
                                            .oom_kills = c->oom_kills,
                                            .restarts = c->restarts};
        off += l;
        u.has_cpu = u.has_cpu && c->has_cpu;
        u.has_memory = u.has_memory && c->has_memory;
        if (c->has_cpu)
            u.cpu_nanocores += c->cpu_nanocores;
        if (c->has_memory)
            u.memory_bytes += c->memory_bytes;
    }
    free(s->ctrs);
    free(s->ctr_names);
    s->ctrs = ctrs;
    s->ctr_names = buf;
    s->n_ctrs = p->n_ctrs;
    s->pod_u = u;
    s->has = true;
    s->recv_ms = now_ms;
    if (s->h)
        history_add(m, s->h, u.ms, to_mcpu(u.has_cpu, u.cpu_nanocores),
                    to_kib(u.has_memory, u.memory_bytes));
    m->samples++;
    return true;
}

/* ---- the interface ----------------------------------------------------------------------- */

drv_err_t drv_metrics_new(const drv_metrics_opts_t *opts, drv_metrics_t **out, drv_error_t *err)
{
    drv_metrics_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    if (opts)
        m->o = *opts;
    if (!m->o.max_series)
        m->o.max_series = DEF_MAX_SERIES;
    if (!m->o.history_bytes_max)
        m->o.history_bytes_max = DEF_HISTORY_BYTES;
    if (!m->o.stale_ms)
        m->o.stale_ms = DEF_STALE_MS;
    if (!m->o.future_ms)
        m->o.future_ms = DEF_FUTURE_MS;
    if (!m->o.fine_step_ms)
        m->o.fine_step_ms = DEF_FINE_STEP_MS;
    if (!m->o.fine_points)
        m->o.fine_points = DEF_FINE_POINTS;
    if (!m->o.coarse_step_ms)
        m->o.coarse_step_ms = DEF_COARSE_STEP_MS;
    if (!m->o.coarse_points)
        m->o.coarse_points = DEF_COARSE_POINTS;
    drv_map_init(&m->nodes, m->o.max_series);
    drv_map_init(&m->pods, m->o.max_series);
    *out = m;
    return DRV_OK;
}

static void free_all(drv_metrics_t *m, drv_map_t *map)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (drv_map_next(map, &it, &k, &v))
        series_free(m, v);
    drv_map_free(map);
}

void drv_metrics_free(drv_metrics_t *m)
{
    if (m == NULL)
        return;
    free_all(m, &m->nodes);
    free_all(m, &m->pods);
    free(m);
}

void drv_metrics_count_refused(drv_metrics_t *m)
{
    m->refused++;
}

drv_err_t drv_metrics_ingest(drv_metrics_t *m, const drv_proto_metrics_t *r, int64_t now_ms,
                             drv_error_t *err)
{
    if (r->time_ms > now_ms + m->o.future_ms) {
        m->refused++;
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "metrics from %s: dated %lld ms ahead of the hub's clock", r->node,
                             (long long)(r->time_ms - now_ms));
    }
    series_t *s = series_get(m, &m->nodes, r->node, true);
    if (s == NULL) {
        m->refused++;
        return drv_error_set(err, DRV_ERR_TOOBIG, 0,
                             "metrics from %s: no room (%zu series tracked)", r->node,
                             m->nodes.n + m->pods.n);
    }
    if (s->has && r->time_ms <= s->node_u.u.ms) {
        m->refused++;
        return drv_error_set(err, DRV_ERR_CONFLICT, 0,
                             "metrics from %s: not newer than its last sample (replayed?)",
                             r->node);
    }
    s->node_u = (drv_metrics_node_usage_t){.u = {.ms = r->time_ms,
                                                 .window_ms = r->window_ms,
                                                 .has_cpu = r->has_cpu,
                                                 .cpu_nanocores = r->cpu_nanocores,
                                                 .has_memory = r->has_memory,
                                                 .memory_bytes = r->memory_bytes},
                                           .memory_total_bytes = r->memory_total_bytes,
                                           .has_disk = r->has_disk,
                                           .disk_free_bytes = r->disk_free_bytes,
                                           .disk_total_bytes = r->disk_total_bytes,
                                           .has_temp = r->has_temp,
                                           .temp_millicelsius = r->temp_millicelsius,
                                           .has_throttled = r->has_throttled,
                                           .throttled = r->throttled};
    s->has = true;
    s->recv_ms = now_ms;
    if (s->h)
        history_add(m, s->h, r->time_ms, to_mcpu(r->has_cpu, r->cpu_nanocores),
                    to_kib(r->has_memory, r->memory_bytes));
    m->samples++;
    m->reports++;
    for (size_t i = 0; i < r->n_pods; i++)
        if (!pod_sample(m, r, &r->pods[i], now_ms))
            return drv_error_set(err, DRV_ERR_TOOBIG, 0,
                                 "metrics from %s: pod %s/%s not kept (no room)", r->node,
                                 r->pods[i].ns, r->pods[i].name);
    return DRV_OK;
}

static size_t expire_map(drv_metrics_t *m, drv_map_t *map, int64_t cutoff)
{
    /* Victims first (the map must not change while it is iterated), then their removal. */
    size_t n = 0, it = 0;
    const char *k;
    void *v;
    while (drv_map_next(map, &it, &k, &v)) {
        series_t *s = v;
        n += s->has && s->recv_ms < cutoff;
    }
    if (n == 0)
        return 0;
    series_t **victims = calloc(n, sizeof(*victims));
    if (!victims)
        return 0; /* next time */
    size_t k2 = 0;
    it = 0;
    while (k2 < n && drv_map_next(map, &it, &k, &v)) {
        series_t *s = v;
        if (s->has && s->recv_ms < cutoff)
            victims[k2++] = s;
    }
    for (size_t i = 0; i < k2; i++) {
        drv_map_del(map, victims[i]->key);
        series_free(m, victims[i]);
    }
    free(victims);
    return k2;
}

size_t drv_metrics_expire(drv_metrics_t *m, int64_t now_ms, int64_t pod_age_ms, int64_t node_age_ms)
{
    return expire_map(m, &m->pods, now_ms - pod_age_ms) +
           expire_map(m, &m->nodes, now_ms - node_age_ms);
}

void drv_metrics_forget_node(drv_metrics_t *m, const char *node)
{
    series_free(m, drv_map_del(&m->nodes, node));
}

void drv_metrics_forget_pod(drv_metrics_t *m, const char *uid)
{
    series_free(m, drv_map_del(&m->pods, uid));
}

/* Current: taken by the hub within stale_ms (the hub's clock, so that a device whose clock is
 * behind is not read as silent). */
static bool current(const drv_metrics_t *m, const series_t *s, int64_t now_ms)
{
    return s->has && now_ms - s->recv_ms <= m->o.stale_ms;
}

bool drv_metrics_node_latest(drv_metrics_t *m, const char *node, int64_t now_ms,
                             drv_metrics_node_usage_t *out)
{
    series_t *s = drv_map_get(&m->nodes, node);
    if (s == NULL || !s->has || !current(m, s, now_ms))
        return false;
    *out = s->node_u;
    return true;
}

static void pod_out(const series_t *s, drv_metrics_pod_usage_t *out)
{
    *out = (drv_metrics_pod_usage_t){.u = s->pod_u,
                                     .ns = s->ns,
                                     .name = s->name,
                                     .node = s->node,
                                     .ctrs = s->ctrs,
                                     .n_ctrs = s->n_ctrs};
}

bool drv_metrics_pod_latest(drv_metrics_t *m, const char *uid, int64_t now_ms,
                            drv_metrics_pod_usage_t *out)
{
    series_t *s = drv_map_get(&m->pods, uid);
    if (s == NULL || !s->has || !current(m, s, now_ms))
        return false;
    pod_out(s, out);
    return true;
}

void drv_metrics_each_node(drv_metrics_t *m, int64_t now_ms,
                           bool (*fn)(void *ctx, const char *node,
                                      const drv_metrics_node_usage_t *u),
                           void *ctx)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (drv_map_next(&m->nodes, &it, &k, &v)) {
        series_t *s = v;
        if (s->has && current(m, s, now_ms) && !fn(ctx, k, &s->node_u))
            return;
    }
}

void drv_metrics_each_pod(drv_metrics_t *m, int64_t now_ms,
                          bool (*fn)(void *ctx, const char *uid, const drv_metrics_pod_usage_t *u),
                          void *ctx)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (drv_map_next(&m->pods, &it, &k, &v)) {
        series_t *s = v;
        if (!s->has || !current(m, s, now_ms))
            continue;
        drv_metrics_pod_usage_t u;
        pod_out(s, &u);
        if (!fn(ctx, k, &u))
            return;
    }
}

static size_t from_ring(const ring_t *r, int64_t since_ms, drv_metrics_point_t *out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < r->n && k < max; i++) {
        const point_t *p = &r->p[(r->head + i) % r->cap];
        if ((int64_t)p->sec * 1000 < since_ms)
            continue;
        out[k++] = (drv_metrics_point_t){
            (int64_t)p->sec * 1000,
            p->mcpu == NONE_U32 ? -1 : (int64_t)p->mcpu * 1000000,
            p->kib == NONE_U32 ? -1 : (int64_t)p->kib * 1024,
        };
    }
    return k;
}

static size_t history(const drv_metrics_t *m, const series_t *s, int64_t since_ms,
                      drv_metrics_point_t *out, size_t max)
{
    if (s == NULL || s->h == NULL || max == 0)
        return 0;
    const history_t *h = s->h;
    /* Fine points for a window the fine ring can cover (1 h by default), else the 5-minute
     * averages. */
    const ring_t *f = &h->fine;
    const point_t *last = f->n ? &f->p[(f->head + f->n - 1) % f->cap] : NULL;
    if (last &&
        ((int64_t)last->sec * 1000 - since_ms <= (int64_t)m->o.fine_points * m->o.fine_step_ms ||
         h->coarse.n == 0))
        return from_ring(f, since_ms, out, max);
    size_t k = from_ring(&h->coarse, since_ms, out, max);
    /* and the bucket in progress, averaged so far (not stored until it is complete) */
    if (h->n_points > 0 && k < max && h->bucket + m->o.coarse_step_ms / 2 >= since_ms)
        out[k++] = (drv_metrics_point_t){
            h->bucket + m->o.coarse_step_ms / 2,
            h->n_mcpu ? (int64_t)(h->sum_mcpu / h->n_mcpu) * 1000000 : -1,
            h->n_kib ? (int64_t)(h->sum_kib / h->n_kib) * 1024 : -1,
        };
    return k;
}

size_t drv_metrics_node_history(drv_metrics_t *m, const char *node, int64_t since_ms,
                                drv_metrics_point_t *out, size_t max)
{
    return history(m, drv_map_get(&m->nodes, node), since_ms, out, max);
}

size_t drv_metrics_pod_history(drv_metrics_t *m, const char *uid, int64_t since_ms,
                               drv_metrics_point_t *out, size_t max)
{
    return history(m, drv_map_get(&m->pods, uid), since_ms, out, max);
}

void drv_metrics_stats(const drv_metrics_t *m, drv_metrics_stats_t *out)
{
    *out = (drv_metrics_stats_t){.nodes = m->nodes.n,
                                 .pods = m->pods.n,
                                 .with_history = m->with_history,
                                 .history_bytes = m->history_bytes,
                                 .without_history = m->without_history,
                                 .reports = m->reports,
                                 .refused = m->refused,
                                 .samples = m->samples};
}
