/* Runs the controllers (node lifecycle, Deployments, DaemonSets, the scheduling pass) from the
 * hub's loop: soon after the API changed something (debounced, so that a burst of writes is
 * one round) and every second (heartbeat grace periods and tolerations are about time). */
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge/bridge.h"
#include "ctrl/ctrl.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/proc.h"
#include "drover/log.h"
#include "hub.h"
#include "images/images.h"
#include "metrics/metrics.h"

#define CTRL_PERIOD_MS 1000
#define CTRL_DEBOUNCE_MS 50
#define EVENTS_EXPIRE_MS 60000                 /* how often old Events are looked for */
#define USAGE_POD_AGE_MS (10 * 60 * 1000LL)    /* a silent pod's usage history is dropped */
#define USAGE_NODE_AGE_MS (24 * 3600 * 1000LL) /* a silent node's */
#define TRIM_ROUND_MS 20                       /* a round this long parsed big listings */
#define TRIM_PERIOD_MS 1000                    /* and gives their memory back at most this often */
/* A round making or binding thousands of pods commits and lets the API serve what waits this
 * often (drv_hstore_batch_point): a request waits about this long; the whole loop less often. */
#define ROUND_YIELD_MS 40
#define ROUND_FULL_MS 500

typedef struct ctrl_runner {
    drv_hub_t *hub;
    bool dirty;
    int64_t yielded;                    /* ms of the current round spent serving the loop */
    int64_t served_at;                  /* monotonic ms the round began or last served it */
    int64_t full_at;                    /* monotonic ms of its last whole pass of the loop */
    int64_t dirty_since;                /* monotonic ms */
    int64_t last;                       /* monotonic ms of the last round */
    int64_t took;                       /* how long the last round took, ms */
    int64_t trimmed;                    /* monotonic ms of the last malloc_trim */
    int64_t events_expired;             /* monotonic ms of the last event expiry */
    drv_ctrl_hpa_t *hpa;                /* the HorizontalPodAutoscalers' memory */
    drv_ctrl_netalloc_t *netalloc;      /* pod CIDRs, ClusterIPs, NodePorts */
    char last_error[DRV_ERROR_MSG_MAX]; /* whole, so that a repeated error compares equal */
} ctrl_runner_t;

/* A pod's current usage for the HPAs, from the usage history. */
static bool pod_usage(void *ctx, const char *uid, int64_t now_ms, drv_ctrl_usage_t *out)
{
    drv_metrics_pod_usage_t u;
    if (!ctx || !drv_metrics_pod_latest(ctx, uid, now_ms, &u))
        return false;
    *out = (drv_ctrl_usage_t){.has_cpu = u.u.has_cpu,
                              .cpu_millicores = u.u.cpu_nanocores / 1000000,
                              .has_memory = u.u.has_memory,
                              .memory_bytes = u.u.memory_bytes,
                              .sample_ms = u.u.ms,
                              .window_ms = u.u.window_ms};
    return true;
}

static void runner_free(void *p)
{
    ctrl_runner_t *r = p;
    drv_ctrl_hpa_free(r->hpa);
    drv_ctrl_netalloc_free(r->netalloc);
    free(r);
}

static void on_change(void *ctx)
{
    ctrl_runner_t *r = ctx;
    if (!r->dirty) {
        r->dirty = true;
        r->dirty_since = drv_now_ms();
    }
}

/* drv_hstore_batch_point, mid-round: what the round committed so far goes to watchers, and
 * the API serves what waits; every ROUND_FULL_MS the whole loop (MQTT included, so that
 * heartbeats and reports are not held for the length of a round of tens of thousands). */
static void round_yield(void *ctx)
{
    ctrl_runner_t *r = ctx;
    int64_t t0 = drv_now_ms();
    drv_api_notify(drv_hub_api(r->hub));
    if (t0 - r->full_at >= ROUND_FULL_MS) {
        drv_hub_serve_pending(r->hub);
        r->full_at = drv_now_ms();
    } else {
        drv_api_run(drv_hub_api(r->hub));
    }
    int64_t t1 = drv_now_ms();
    if (t0 - r->served_at >= 2 * ROUND_YIELD_MS || t1 - t0 >= ROUND_YIELD_MS)
        drv_log_debug("controller round served the loop", "after_ms=%lld took_ms=%lld",
                      (long long)(t0 - r->served_at), (long long)(t1 - t0));
    r->served_at = t1;
    r->yielded += t1 - t0;
}

static int64_t tick(void *ctx)
{
    ctrl_runner_t *r = ctx;
    int64_t now = drv_now_ms();
    /* Rounds list every pod and node: on a big fleet under a stream of status reports, keep
     * at least twice a round's duration between rounds so the loop also serves the rest. */
    int64_t due = r->dirty ? r->dirty_since + CTRL_DEBOUNCE_MS : r->last + CTRL_PERIOD_MS;
    if (r->dirty && due < r->last + 2 * r->took)
        due = r->last + 2 * r->took;
    if (now < due)
        return due - now;
    r->dirty = false;
    r->last = now;
    drv_error_t err = DRV_ERROR_INIT;
    /* Heartbeats come from the MQTT bridge; without one, from the Nodes' Ready condition. */
    drv_ctrl_nodes_opts_t o = {.grace_ms = drv_hub_node_grace_ms(r->hub)};
    if (drv_hub_bridge(r->hub)) {
        o.heartbeat = drv_bridge_heartbeat;
        o.overrode = drv_bridge_report_stale;
        o.ctx = drv_hub_bridge(r->hub);
    }
    uint64_t before = drv_hstore_rv(drv_hub_store(r->hub));
    /* One transaction for the whole round: thousands of pods created and bound commit once. */
    drv_hstore_t *store = drv_hub_store(r->hub);
    bool batch = drv_hstore_batch_begin(store, NULL) == DRV_OK;
    r->yielded = 0;
    r->served_at = r->full_at = now;
    if (batch)
        drv_hstore_batch_set_yield(store, ROUND_YIELD_MS, round_yield, r);
    drv_images_t *images = drv_hub_images(r->hub);
    /* Addresses first: a new Node gets its pod CIDR before anything is bound to it. */
    drv_error_t nerr = DRV_ERROR_INIT;
    drv_err_t nr = drv_ctrl_netalloc_reconcile(r->netalloc, (int64_t)drv_wall_ms(), &nerr);
    /* CronJobs make Jobs, Jobs make pods: before the scheduling pass binds them. */
    drv_error_t jerr = DRV_ERROR_INIT;
    drv_err_t jr = drv_ctrl_cronjobs_reconcile(store, (int64_t)drv_wall_ms(), &jerr);
    if (jr == DRV_OK)
        jr = drv_ctrl_jobs_reconcile(store, (int64_t)drv_wall_ms(), &jerr);
    drv_err_t rr = drv_ctrl_reconcile_all(store, &o, images ? drv_images_platforms : NULL, images,
                                          (int64_t)drv_wall_ms(), &err);
    if (rr == DRV_OK && nr != DRV_OK) {
        rr = nr;
        err = nerr;
    }
    if (rr == DRV_OK && jr != DRV_OK) {
        rr = jr;
        err = jerr;
    }
    if (rr == DRV_OK)
        rr = drv_ctrl_serviceaccounts_reconcile(store, drv_hub_ca_pem(r->hub), &err);
    if (rr == DRV_OK)
        rr = drv_ctrl_hpas_reconcile(store, r->hpa, pod_usage, drv_hub_metrics(r->hub),
                                     (int64_t)drv_wall_ms(), &err);
    if (rr == DRV_OK && now - r->events_expired >= EVENTS_EXPIRE_MS) {
        if (drv_hub_metrics(r->hub))
            (void)drv_metrics_expire(drv_hub_metrics(r->hub), (int64_t)drv_wall_ms(),
                                     USAGE_POD_AGE_MS, USAGE_NODE_AGE_MS);
        r->events_expired = now;
        size_t gone = 0;
        rr = drv_ctrl_events_expire(store, (int64_t)drv_wall_ms(), 0, &gone, &err);
        if (rr == DRV_OK && gone)
            drv_log_info("events expired", "deleted=%zu ttl_s=%d", gone,
                         DRV_CTRL_EVENT_TTL_MS_DEFAULT / 1000);
    }
    drv_error_t berr = DRV_ERROR_INIT;
    if (batch && drv_hstore_batch_end(store, &berr) != DRV_OK && rr == DRV_OK) {
        rr = berr.code;
        err = berr;
    }
    if (rr != DRV_OK) {
        /* Say it once per distinct problem, not every second. */
        if (strcmp(r->last_error, drv_error_msg(&err))) {
            drv_fmt_cut(r->last_error, sizeof(r->last_error), "%s", drv_error_msg(&err));
            drv_log_warn("controllers", "error=\"%s\"", drv_error_msg(&err));
        }
    } else {
        r->last_error[0] = '\0';
    }
    /* The round's own time: what the loop served in between is not the round's. */
    r->took = drv_now_ms() - now - r->yielded;
    if (r->took >= 10)
        drv_log_debug("controller round", "ms=%lld served_ms=%lld writes=%llu", (long long)r->took,
                      (long long)r->yielded, (unsigned long long)(drv_hstore_rv(store) - before));
#ifdef __GLIBC__
    /* A round parses every pod a few times over (tens of MiB at 10,000s of pods), freed at its
     * end; glibc keeps such freed memory in its arenas for good, so that the hub's memory
     * would grow to its largest round. Give it back once the round is done. */
    if (r->took >= TRIM_ROUND_MS && now - r->trimmed >= TRIM_PERIOD_MS) {
        (void)malloc_trim(0);
        r->trimmed = drv_now_ms();
    }
#endif
    if (drv_hstore_rv(drv_hub_store(r->hub)) != before)
        drv_api_notify(drv_hub_api(r->hub)); /* watchers and the bridge see what we wrote */
    return CTRL_PERIOD_MS;
}

/* The pod spec an object of a pod-making kind carries (NULL for other kinds). */
static const cJSON *pod_spec_of(drv_kind_t kind, const cJSON *obj)
{
    const cJSON *spec = drv_json_get(obj, "spec");
    switch (kind) {
    case DRV_KIND_POD:
        return spec;
    case DRV_KIND_CRONJOB:
        spec = drv_json_get(drv_json_get(spec, "jobTemplate"), "spec");
        /* fall through */
    case DRV_KIND_DEPLOYMENT:
    case DRV_KIND_REPLICASET:
    case DRV_KIND_DAEMONSET:
    case DRV_KIND_STATEFULSET:
    case DRV_KIND_JOB:
        return drv_json_get(drv_json_get(spec, "template"), "spec");
    default:
        return NULL;
    }
}

/* The API's admission: addresses for Services, then a new pod's ServiceAccount must exist. */
static drv_err_t admit(void *ctx, drv_kind_t kind, bool create, cJSON *obj, char *field,
                       size_t fieldsz, drv_error_t *err)
{
    ctrl_runner_t *r = ctx;
    /* The scheduler places a pod by its image's platforms: the lookup starts now, while the
     * object is written and its pods are made, not when the first of them is to be placed. */
    const char *image = drv_json_str(
        cJSON_GetArrayItem(drv_json_get(pod_spec_of(kind, obj), "containers"), 0), "image");
    if (image && drv_hub_images(r->hub))
        (void)drv_images_platforms(drv_hub_images(r->hub), image);
    drv_err_t e = drv_ctrl_netalloc_admit(r->netalloc, kind, create, obj, field, fieldsz, err);
    if (e == DRV_OK)
        e = drv_ctrl_serviceaccount_admit(drv_hub_store(r->hub), kind, create, obj, field, fieldsz,
                                          err);
    return e;
}

/* An image's platforms arrived: pods held back for them can be placed now. */
static void images_ready(void *ctx, int fd, short revents)
{
    (void)fd, (void)revents;
    ctrl_runner_t *r = ctx;
    drv_images_drain(drv_hub_images(r->hub));
    on_change(r);
}

drv_err_t drv_hub_start_controllers(drv_hub_t *hub, drv_error_t *err)
{
    ctrl_runner_t *r = calloc(1, sizeof(*r));
    if (!r)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "controllers");
    r->hub = hub;
    drv_err_t he = drv_ctrl_hpa_new(drv_hub_hpa_sync_ms(hub), &r->hpa, err);
    if (he != DRV_OK) {
        free(r);
        return he;
    }
    const char *cluster = NULL, *service = NULL;
    int mask = 0;
    drv_ctrl_netcfg_t netcfg;
    drv_hub_net_opts(hub, &cluster, &mask, &service);
    he = drv_ctrl_netcfg_init(&netcfg, cluster, mask, service, err);
    if (he == DRV_OK)
        he = drv_ctrl_netalloc_new(drv_hub_store(hub), &netcfg, &r->netalloc, err);
    if (he != DRV_OK) {
        runner_free(r);
        return he;
    }
    /* ClusterIPs and NodePorts are given as the API creates a Service, as Kubernetes does; a
     * pod is checked for its ServiceAccount. */
    drv_api_set_admit(drv_hub_api(hub), admit, r);
    r->dirty = true; /* a first round at start-up */
    r->dirty_since = drv_now_ms();
    drv_err_t e = drv_hub_on_change(hub, on_change, r, err);
    if (e == DRV_OK)
        e = drv_hub_add_tick(hub, tick, r, err);
    if (e == DRV_OK && drv_hub_images(hub))
        e = drv_hub_add_fd(hub, drv_images_fd(drv_hub_images(hub)), POLLIN, images_ready, r, err);
    if (e != DRV_OK) {
        runner_free(r);
        return e;
    }
    drv_hub_own_with(hub, r, runner_free); /* freed with the hub */
    return DRV_OK;
}
