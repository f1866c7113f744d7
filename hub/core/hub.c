/* The hub's context and its one event loop: poll() over the API's epoll fd and a signalfd for
 * SIGTERM/SIGINT. Everything the hub does runs on this thread, so the store needs no locks. */
#include "hub.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "bridge/bridge.h"
#include "broker/broker.h"
#include "drover/fmt.h"
#include "drover/proc.h"
#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/log.h"
#include "identity/identity.h"
#include "images/images.h"
#include "metrics/metrics.h"

struct drv_hub {
    drv_hstore_t *store;
    drv_api_t *api;
    char addr[64];
    bool stop;
    drv_broker_t *broker; /* the Mosquitto child, if the hub runs one */
    struct {
        void *p;
        void (*free_fn)(void *p);
    } owned[DRV_HUB_MAX_HOOKS]; /* hook contexts freed with the hub (drv_hub_own) */
    size_t nowned;
    char broker_url[256];
    char broker_ca[PATH_MAX], broker_cert[PATH_MAX], broker_key[PATH_MAX]; /* TLS, or "" */
    drv_bridge_t *bridge;   /* MQTT, when there is a broker */
    drv_auth_t *authz;      /* access control and dashboard sessions; NULL: --no-auth */
    drv_images_t *images;   /* image platform lookups, with the controllers */
    drv_metrics_t *metrics; /* usage pushed by the agents, when there is a broker */
    int64_t node_grace_ms;
    int64_t hpa_sync_ms;
    char cluster_cidr[32], service_cidr[32]; /* "" the defaults */
    int node_cidr_mask;
    size_t usage_history_bytes;
    bool auth;
    char admin_token_path[PATH_MAX]; /* set when this start wrote a new admin token */
    drv_identity_t *identity;        /* CA, server certificate, signing key (<data>/pki) */
    bool tls;                        /* the API serves HTTPS */
    struct {
        int fd;
        short events;
        drv_hub_fd_fn cb;
        void *ctx;
    } fds[DRV_HUB_MAX_HOOKS];
    size_t nfds;
    struct {
        drv_hub_tick_fn cb;
        void *ctx;
        bool running; /* in its call: drv_hub_serve_pending does not call it again */
    } ticks[DRV_HUB_MAX_HOOKS];
    int sfd;      /* the loop's signalfd, while drv_hub_run runs */
    bool serving; /* inside drv_hub_serve_pending */
    size_t nticks;
    struct {
        void (*cb)(void *ctx);
        void *ctx;
    } changes[DRV_HUB_MAX_HOOKS];
    size_t nchanges;
};

static void on_api_change(void *ctx)
{
    drv_hub_t *hub = ctx;
    for (size_t i = 0; i < hub->nchanges; i++)
        hub->changes[i].cb(hub->changes[i].ctx);
}

drv_err_t drv_hub_add_fd(drv_hub_t *hub, int fd, short events, drv_hub_fd_fn cb, void *ctx,
                         drv_error_t *err)
{
    if (fd < 0 || !cb)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "hub: add_fd needs an fd and a callback");
    if (hub->nfds >= DRV_HUB_MAX_HOOKS)
        return drv_error_set(err, DRV_ERR_RANGE, 0, "hub: more than %d fds", DRV_HUB_MAX_HOOKS);
    hub->fds[hub->nfds].fd = fd;
    hub->fds[hub->nfds].events = events;
    hub->fds[hub->nfds].cb = cb;
    hub->fds[hub->nfds++].ctx = ctx;
    return DRV_OK;
}

drv_err_t drv_hub_add_tick(drv_hub_t *hub, drv_hub_tick_fn cb, void *ctx, drv_error_t *err)
{
    if (!cb)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "hub: add_tick needs a callback");
    if (hub->nticks >= DRV_HUB_MAX_HOOKS)
        return drv_error_set(err, DRV_ERR_RANGE, 0, "hub: more than %d ticks", DRV_HUB_MAX_HOOKS);
    hub->ticks[hub->nticks].cb = cb;
    hub->ticks[hub->nticks++].ctx = ctx;
    return DRV_OK;
}

drv_err_t drv_hub_on_change(drv_hub_t *hub, void (*cb)(void *ctx), void *ctx, drv_error_t *err)
{
    if (!cb)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "hub: on_change needs a callback");
    if (hub->nchanges >= DRV_HUB_MAX_HOOKS)
        return drv_error_set(err, DRV_ERR_RANGE, 0, "hub: more than %d change hooks",
                             DRV_HUB_MAX_HOOKS);
    hub->changes[hub->nchanges].cb = cb;
    hub->changes[hub->nchanges++].ctx = ctx;
    return DRV_OK;
}

void drv_hub_stop(drv_hub_t *hub)
{
    hub->stop = true;
}

drv_err_t drv_hub_parse_listen(const char *s, char *addr, size_t addrsz, uint16_t *port,
                               drv_error_t *err)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || colon == s)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "--listen \"%.64s\": expected ADDR:PORT",
                             s ? s : "");
    const char *a = s;
    size_t alen = (size_t)(colon - s);
    if (*a == '[') {
        if (alen < 3 || a[alen - 1] != ']')
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "--listen \"%.64s\": an IPv6 address goes in brackets", s);
        a++, alen -= 2;
    }
    if (alen >= addrsz)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "--listen \"%.64s\": address too long", s);
    char *end = NULL;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 0 || p > 65535)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "--listen \"%.64s\": port must be a number from 0 to 65535", s);
    memcpy(addr, a, alen);
    addr[alen] = '\0';
    *port = (uint16_t)p;
    return DRV_OK;
}

void drv_hub_changed(drv_hub_t *hub)
{
    drv_api_notify(hub->api);
    on_api_change(hub);
}

static void bridge_fd(void *ctx, int fd, short revents)
{
    (void)fd, (void)revents;
    drv_bridge_poll(ctx);
}

static int64_t now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The bridge's publishing, and its counters for /metrics. */
static int64_t bridge_tick(void *ctx)
{
    drv_hub_t *hub = ctx;
    int64_t next = drv_bridge_tick(hub->bridge, now_wall_ms());
    drv_bridge_stats_t st;
    drv_bridge_stats(hub->bridge, &st);
    (void)!drv_api_set_gauge(hub->api, "drover_mqtt_messages_received_total", (double)st.received,
                             NULL);
    (void)!drv_api_set_gauge(hub->api, "drover_mqtt_messages_published_total", (double)st.published,
                             NULL);
    (void)!drv_api_set_gauge(hub->api, "drover_mqtt_messages_refused_total", (double)st.refused,
                             NULL);
    (void)!drv_api_set_gauge(hub->api, "drover_mqtt_desired_published_total",
                             (double)st.desired_published, NULL);
    (void)!drv_api_set_gauge(hub->api, "drover_mqtt_connected", st.connected ? 1 : 0, NULL);
    (void)!drv_api_set_gauge(hub->api, "drover_nodes_online", (double)st.nodes_online, NULL);
    return next;
}

static void bridge_changed(void *ctx)
{
    drv_hub_changed(ctx);
}

/* The bridge's drv_bridge_node_key_fn: a node's enrolled, unrevoked public key. */
static drv_err_t node_key(void *ctx, const char *node, char **pub_pem, drv_error_t *err)
{
    drv_hub_t *hub = ctx;
    drv_hstore_identity_t id;
    drv_err_t e = drv_hstore_identity_get(hub->store, node, &id, err);
    if (e != DRV_OK)
        return e;
    if (id.revoked)
        return drv_error_set(err, DRV_ERR_PERM, 0, "node %s: revoked", node);
    *pub_pem = strdup(id.pubkey);
    return *pub_pem ? DRV_OK : drv_error_set(err, DRV_ERR_NOMEM, 0, "node key");
}

/* The bridge's drv_bridge_sa_token_fn: a pod's service account token, from the access
 * control's issuer. */
static drv_err_t sa_token(void *ctx, const char *node, const cJSON *pod, int64_t now,
                          const char **token, int64_t *exp, int64_t *refresh_at, bool *mount,
                          drv_error_t *err)
{
    drv_hub_t *hub = ctx;
    return drv_satoken_for_pod(drv_auth_satoken(hub->authz), hub->store, node, pod, now, token, exp,
                               refresh_at, mount, err);
}

/* The usage routes: which question a route pattern asks. */
static drv_err_t usage_answer(void *ctx, const char *pattern, const char *ns, const char *name,
                              const char *sel, const char *window, cJSON **out, drv_error_t *err)
{
    drv_hub_t *hub = ctx;
    bool history = strstr(pattern, "/apis/drover.io/") == pattern;
    bool pods = strstr(pattern, "/pods") != NULL, nodes = strstr(pattern, "/nodes") != NULL;
    drv_usage_op_t op = history ? (pods ? DRV_USAGE_POD_HISTORY : DRV_USAGE_NODE_HISTORY)
                        : pods  ? (name ? DRV_USAGE_POD : DRV_USAGE_PODS)
                        : nodes ? (name ? DRV_USAGE_NODE : DRV_USAGE_NODES)
                                : DRV_USAGE_DISCOVERY;
    return drv_usage_api(hub->metrics, hub->store, op, ns, name, sel, window, now_wall_ms(), out,
                         err);
}

#define USAGE_PROMETHEUS_PODS_MAX 1000 /* pod series on /metrics; the rest are counted */

static drv_err_t usage_prometheus(void *ctx, drv_buf_t *out)
{
    drv_hub_t *hub = ctx;
    return drv_usage_prometheus(hub->metrics, now_wall_ms(), USAGE_PROMETHEUS_PODS_MAX, out);
}

static drv_err_t start_bridge(drv_hub_t *hub, drv_error_t *err)
{
    drv_metrics_opts_t mo = {.history_bytes_max = hub->usage_history_bytes};
    drv_err_t me = drv_metrics_new(&mo, &hub->metrics, err);
    if (me != DRV_OK)
        return me;
    drv_api_set_usage(hub->api, usage_answer, usage_prometheus, hub);
    drv_bridge_opts_t bo = {.broker_url = hub->broker_url,
                            .store = hub->store,
                            .on_change = bridge_changed,
                            .grace_ms = hub->node_grace_ms,
                            .ctx = hub,
                            .ca_file = hub->broker_ca[0] ? hub->broker_ca : NULL,
                            .cert_file = hub->broker_cert[0] ? hub->broker_cert : NULL,
                            .key_file = hub->broker_key[0] ? hub->broker_key : NULL,
                            .signing_key = drv_identity_signing_key(hub->identity),
                            .node_key = node_key,
                            .node_key_ctx = hub,
                            /* Devices reach a broker without TLS unenrolled: nothing to seal
                             * to (and nothing keeps the broker's clients apart either). */
                            .clear_secrets = !hub->broker_ca[0],
                            /* Pods' tokens, when the API checks tokens at all */
                            .sa_token = hub->authz ? sa_token : NULL,
                            .sa_token_ctx = hub,
                            /* With client certificates a device is known: it may set only
                             * facts about itself on its Node. */
                            .restrict_labels = hub->broker_ca[0] != '\0',
                            .metrics = hub->metrics,
                            /* The network sections of desired state: the allocators' ranges. */
                            .cluster_cidr = hub->cluster_cidr[0] ? hub->cluster_cidr : NULL,
                            .service_cidr = hub->service_cidr[0] ? hub->service_cidr : NULL};
    drv_err_t e = drv_bridge_new(&bo, &hub->bridge, err);
    if (e == DRV_OK)
        e = drv_hub_add_fd(hub, drv_bridge_fd(hub->bridge), POLLIN, bridge_fd, hub->bridge, err);
    if (e == DRV_OK)
        e = drv_hub_add_tick(hub, bridge_tick, hub, err);
    if (e == DRV_OK) {
        drv_hub_serve_logs(hub);
        drv_api_set_status_written(hub->api, drv_bridge_report_stale, hub->bridge);
        /* Late: silent for half the grace after which the node controller marks NotReady. */
        drv_api_set_heartbeats(hub->api, drv_bridge_heartbeat, drv_bridge_late,
                               (hub->node_grace_ms > 0 ? hub->node_grace_ms : 10000) / 2,
                               hub->bridge);
    }
    return e;
}

static int64_t broker_tick(void *ctx)
{
    return drv_broker_tick(ctx, drv_now_ms());
}

static drv_err_t check_broker_url(const char *url, drv_error_t *err)
{
    static const char *const schemes[] = {"tcp://",   "ssl://", "mqtt://",
                                          "mqtts://", "ws://",  "wss://"};
    if (strlen(url) >= 256)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "--broker: URL longer than 255 bytes");
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        size_t n = strlen(schemes[i]);
        if (strncmp(url, schemes[i], n) == 0 && url[n] && url[n] != ':' && url[n] != '/')
            return DRV_OK;
    }
    return drv_error_set(err, DRV_ERR_INVALID, 0,
                         "--broker \"%.64s\": expected tcp://HOST:PORT (or ssl://, mqtt://, "
                         "mqtts://, ws://, wss://)",
                         url);
}

/* Whether the base64 body of a PEM text (every line but the -----BEGIN/END----- ones, without
 * whitespace) is b64. */
static bool pem_body_is(const char *pem, const char *b64)
{
    const char *p = pem;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        if (strncmp(p, "-----", 5)) {
            for (size_t i = 0; i < n; i++) {
                if (p[i] == '\r' || p[i] == ' ' || p[i] == '\t')
                    continue;
                if (*b64++ != p[i])
                    return false;
            }
        }
        p += n + (eol ? 1 : 0);
    }
    return *b64 == '\0';
}

/* The drover-auth plugin's question at a device's CONNECT (drv_broker_identity_fn): the node
 * is enrolled with this very key (a name enrolled anew after a forget has another), not
 * revoked, and its last certificate has not expired. Read from the store at each question, so
 * a revocation or a forget applies to the next CONNECT without anything rewritten. */
static bool broker_identity(void *ctx, const char *node, const char *spki_b64, const char *addr,
                            char *why, size_t whysz)
{
    drv_hub_t *hub = ctx;
    drv_hstore_identity_t id;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_identity_get(hub->store, node, &id, &err);
    if (r == DRV_ERR_NOTFOUND)
        drv_fmt_cut(why, whysz, "node %s is not enrolled", node);
    else if (r != DRV_OK)
        drv_fmt_cut(why, whysz, "node %s: the hub cannot read its identity: %s", node,
                    drv_error_msg(&err));
    else if (id.revoked)
        drv_fmt_cut(why, whysz, "node %s is revoked", node);
    else if (id.not_after <= (int64_t)time(NULL))
        drv_fmt_cut(why, whysz, "node %s: its certificate has expired", node);
    else if (!pem_body_is(id.pubkey, spki_b64))
        drv_fmt_cut(why, whysz, "node %s is enrolled with another key", node);
    else {
        if (hub->bridge && addr) /* where its peers may reach it (the pod network) */
            drv_bridge_observed(hub->bridge, node, addr);
        return true;
    }
    return false;
}

static void broker_auth_fd(void *ctx, int fd, short revents)
{
    (void)fd, (void)revents;
    drv_broker_auth_serve(ctx);
}

/* Starts the hub's own broker in <dir>/broker/ (see hub/broker/broker.h). */
static drv_err_t start_broker(drv_hub_t *hub, const drv_hub_opts_t *opts, const char *dir,
                              uint16_t api_port, drv_error_t *err)
{
    char baddr[64] = "127.0.0.1";
    uint16_t bport = api_port == 0 ? 0 : 1883;
    if (opts->broker_listen) {
        drv_error_t pe = DRV_ERROR_INIT;
        if (drv_hub_parse_listen(opts->broker_listen, baddr, sizeof(baddr), &bport, &pe) != DRV_OK)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "--broker-listen \"%.64s\": expected ADDR:PORT, port 0 to 65535",
                                 opts->broker_listen);
    }
    drv_broker_opts_t bo = {
        .data_dir = dir, .listen = baddr, .port = bport, .mosquitto = opts->mosquitto};
    if (opts->broker_tls) {
        const drv_identity_t *id = hub->identity;
        drv_err_t ce = drv_broker_hub_client(drv_identity_dir(id), drv_identity_ca_key(id),
                                             drv_identity_ca_cert(id), hub->broker_cert,
                                             hub->broker_key, sizeof(hub->broker_cert), err);
        if (ce != DRV_OK)
            return ce;
        if (drv_fmt(hub->broker_ca, sizeof(hub->broker_ca), "%s", drv_identity_ca_path(id)) !=
            DRV_OK)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "broker CA file: path too long");
        bo.tls_ca_pem = drv_identity_ca_cert(id);
        bo.tls_ca_key_pem = drv_identity_ca_key(id);
        bo.tls_key_pem = drv_identity_server_key(id);
        bo.tls_sans = opts->sans;
        bo.n_tls_sans = opts->n_sans;
        bo.identity = broker_identity;
        bo.identity_ctx = hub;
        bo.plugin = opts->broker_plugin;
    }
    drv_err_t e = drv_broker_start(&bo, &hub->broker, err);
    if (e != DRV_OK)
        return e;
    if (drv_fmt(hub->broker_url, sizeof(hub->broker_url), "%s", drv_broker_url(hub->broker)) !=
        DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "broker URL too long");
    drv_broker_auth_t *auth = drv_broker_auth(hub->broker);
    if (auth && (e = drv_hub_add_fd(hub, drv_broker_auth_fd(auth), POLLIN, broker_auth_fd, auth,
                                    err)) != DRV_OK)
        return e;
    return drv_hub_add_tick(hub, broker_tick, hub->broker, err);
}

/* Loads (or creates) DIR/secret.keys, gives the keys to the store and seals the Secrets that
 * are not sealed with the current key yet (plain ones from an older hub). A key file that
 * opens none of the encrypted Secrets is the wrong one: the hub refuses to start. */
static drv_err_t use_secret_keys(drv_hstore_t *store, const char *dir, drv_error_t *err)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof(path), "%s/secret.keys", dir) >= sizeof(path))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "data directory path too long");
    drv_hstore_key_t keys[DRV_HSTORE_KEYS_MAX];
    size_t n = 0;
    bool created = false;
    drv_err_t e = drv_hstore_keys_ensure(path, keys, &n, &created, err);
    if (e == DRV_OK)
        e = drv_hstore_set_keys(store, keys, n, err);
    memset(keys, 0, sizeof(keys));
    if (e != DRV_OK)
        return drv_error_wrap(err, "secret keys");
    if (created)
        drv_log_info("hub: created the key that encrypts Secrets", "path=%s", path);
    drv_hstore_reseal_t st;
    e = drv_hstore_reseal(store, false, &st, err);
    if (e != DRV_OK)
        return drv_error_wrap(err, "secret keys");
    if (st.failed > 0 && st.failed == st.checked)
        return drv_error_set(err, DRV_ERR_INTEGRITY, 0,
                             "%s opens none of the %zu encrypted Secrets in the store: the wrong "
                             "key file? (%s)",
                             path, st.failed, st.first_error);
    if (st.resealed)
        drv_log_info("hub: Secrets encrypted", "count=%zu", st.resealed);
    return DRV_OK;
}

drv_err_t drv_hub_new(const drv_hub_opts_t *opts, drv_hub_t **out, drv_error_t *err)
{
    /* Before any thread exists (the MQTT client's): SIGTERM and SIGINT must reach the loop's
     * signalfd, not kill the process in some other thread. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    char addr[64];
    uint16_t port = 0;
    drv_err_t e = drv_hub_parse_listen(opts->listen ? opts->listen : DRV_HUB_DEFAULT_LISTEN, addr,
                                       sizeof(addr), &port, err);
    if (e != DRV_OK)
        return e;
    if (opts->broker) {
        e = check_broker_url(opts->broker, err);
        if (e != DRV_OK)
            return e;
    }
    const char *dir = opts->data_dir ? opts->data_dir : DRV_HUB_DEFAULT_DATA;
    e = drv_file_mkdir_p(dir, 0700, err);
    if (e != DRV_OK)
        return drv_error_wrap(err, "data directory %s", dir);
    char db[PATH_MAX];
    if ((size_t)snprintf(db, sizeof(db), "%s/hub.db", dir) >= sizeof(db))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "data directory path too long");
    drv_hub_t *hub = calloc(1, sizeof(*hub));
    if (!hub)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    hub->sfd = -1;
    if (drv_fmt(hub->addr, sizeof(hub->addr), "%s", addr) != DRV_OK) {
        free(hub);
        return drv_error_set(err, DRV_ERR_INVALID, 0, "listen address too long");
    }
    drv_identity_opts_t io = {
        .data_dir = dir, .listen_addr = addr, .sans = opts->sans, .n_sans = opts->n_sans};
    e = drv_identity_load(&io, &hub->identity, err);
    if (e != DRV_OK) {
        free(hub);
        return e;
    }
    hub->tls = opts->tls;
    e = drv_hstore_open(db, &hub->store, err);
    if (e != DRV_OK) {
        drv_identity_free(hub->identity);
        free(hub);
        return drv_error_wrap(err, "store %s", db);
    }
    e = use_secret_keys(hub->store, dir, err);
    if (e == DRV_OK) /* the system namespaces, and a namespace made by its first object */
        e = drv_hstore_namespaces_enable(hub->store, err);
    if (e == DRV_OK) /* the built-in PriorityClasses; Pods get their priority at create */
        e = drv_hstore_priority_classes_enable(hub->store, err);
    if (e != DRV_OK) {
        drv_hstore_close(hub->store);
        drv_identity_free(hub->identity);
        free(hub);
        return e;
    }
    hub->auth = opts->auth;
    if (opts->auth) {
        char path[PATH_MAX];
        bool created = false;
        e = drv_auth_ensure_admin(hub->store, dir, (int64_t)time(NULL), path, sizeof(path),
                                  &created, err);
        if (e != DRV_OK) {
            drv_hstore_close(hub->store);
            drv_identity_free(hub->identity);
            free(hub);
            return drv_error_wrap(err, "admin token");
        }
        if (created &&
            drv_fmt(hub->admin_token_path, sizeof(hub->admin_token_path), "%s", path) != DRV_OK) {
            drv_hstore_close(hub->store);
            drv_identity_free(hub->identity);
            free(hub);
            return drv_error_set(err, DRV_ERR_INVALID, 0, "admin token: path too long");
        }
        e = drv_auth_new(hub->store, dir,
                         opts->session_ttl_s > 0 ? opts->session_ttl_s
                                                 : DRV_AUTH_SESSION_TTL_DEFAULT_S,
                         &hub->authz, err);
        if (e != DRV_OK) {
            drv_hstore_close(hub->store);
            drv_identity_free(hub->identity);
            free(hub);
            return e;
        }
    }
    drv_api_opts_t ao = {.bind_addr = addr,
                         .port = port,
                         .store = hub->store,
                         .on_change = on_api_change,
                         .on_change_ctx = hub,
                         .authorize = opts->auth ? drv_auth_api_authorize : NULL,
                         .authorize_ctx = hub->authz,
                         .tokens = drv_auth_api_tokens,
                         .tokens_ctx = hub->store,
                         .tls_key_pem = opts->tls ? drv_identity_server_key(hub->identity) : NULL,
                         .tls_cert_pem =
                             opts->tls ? drv_identity_server_cert(hub->identity) : NULL};
    e = drv_api_new(&ao, &hub->api, err);
    if (e != DRV_OK) {
        drv_auth_free(hub->authz);
        drv_hstore_close(hub->store);
        drv_identity_free(hub->identity);
        free(hub);
        return e;
    }
    if (hub->authz)
        drv_api_set_session(hub->api, drv_auth_api_session, hub->authz);
    if (opts->broker) {
        if (drv_fmt(hub->broker_url, sizeof(hub->broker_url), "%s", opts->broker) != DRV_OK)
            e = drv_error_set(err, DRV_ERR_INVALID, 0, "broker URL too long");
    } else if (opts->run_broker) {
        e = start_broker(hub, opts, dir, port, err);
    }
    if (e != DRV_OK) {
        drv_hub_free(hub);
        return e;
    }
    hub->node_grace_ms = opts->node_grace_ms;
    hub->hpa_sync_ms = opts->hpa_sync_ms;
    drv_fmt_cut(hub->cluster_cidr, sizeof(hub->cluster_cidr), "%s",
                opts->cluster_cidr ? opts->cluster_cidr : "");
    drv_fmt_cut(hub->service_cidr, sizeof(hub->service_cidr), "%s",
                opts->service_cidr ? opts->service_cidr : "");
    hub->node_cidr_mask = opts->node_cidr_mask;
    hub->usage_history_bytes = opts->usage_history_bytes;
    if (hub->broker_url[0] && (e = start_bridge(hub, err)) != DRV_OK) {
        drv_hub_free(hub);
        return e;
    }
    drv_images_opts_t imo = {.insecure = opts->insecure_registries,
                             .n_insecure = opts->n_insecure_registries};
    if (opts->run_controllers && (e = drv_images_new(&imo, &hub->images, err)) != DRV_OK) {
        drv_hub_free(hub);
        return e;
    }
    if (opts->run_controllers && (e = drv_hub_start_controllers(hub, err)) != DRV_OK) {
        drv_hub_free(hub);
        return e;
    }
    *out = hub;
    return DRV_OK;
}

void drv_hub_free(drv_hub_t *hub)
{
    if (!hub)
        return;
    drv_api_free(hub->api); /* first: open log streams cancel their requests in the bridge */
    drv_bridge_free(hub->bridge);
    drv_metrics_free(hub->metrics);
    drv_broker_free(hub->broker);
    drv_images_free(hub->images);
    for (size_t i = 0; i < hub->nowned; i++)
        hub->owned[i].free_fn(hub->owned[i].p);
    drv_auth_free(hub->authz);
    drv_hstore_close(hub->store);
    drv_identity_free(hub->identity);
    free(hub);
}

void drv_hub_own_with(drv_hub_t *hub, void *p, void (*free_fn)(void *p))
{
    if (hub->nowned < DRV_HUB_MAX_HOOKS) {
        hub->owned[hub->nowned].p = p;
        hub->owned[hub->nowned].free_fn = free_fn ? free_fn : free;
        hub->nowned++;
    }
}

void drv_hub_own(drv_hub_t *hub, void *p)
{
    drv_hub_own_with(hub, p, free);
}

drv_images_t *drv_hub_images(drv_hub_t *hub)
{
    return hub->images;
}

drv_metrics_t *drv_hub_metrics(drv_hub_t *hub)
{
    return hub->metrics;
}

drv_api_t *drv_hub_api(drv_hub_t *hub)
{
    return hub->api;
}

const char *drv_hub_ca_pem(drv_hub_t *hub)
{
    return hub->identity ? drv_identity_ca_cert(hub->identity) : NULL;
}

const char *drv_hub_broker_url(drv_hub_t *hub)
{
    return hub->broker_url[0] ? hub->broker_url : NULL;
}

struct drv_bridge *drv_hub_bridge(drv_hub_t *hub)
{
    return hub->bridge;
}

int64_t drv_hub_hpa_sync_ms(const drv_hub_t *hub)
{
    return hub->hpa_sync_ms;
}

void drv_hub_net_opts(const drv_hub_t *hub, const char **cluster_cidr, int *node_cidr_mask,
                      const char **service_cidr)
{
    *cluster_cidr = hub->cluster_cidr[0] ? hub->cluster_cidr : NULL;
    *node_cidr_mask = hub->node_cidr_mask;
    *service_cidr = hub->service_cidr[0] ? hub->service_cidr : NULL;
}

int64_t drv_hub_node_grace_ms(const drv_hub_t *hub)
{
    return hub->node_grace_ms;
}

drv_hstore_t *drv_hub_store(drv_hub_t *hub)
{
    return hub->store;
}

struct drv_identity *drv_hub_identity(drv_hub_t *hub)
{
    return hub->identity;
}

/* One pass of the loop: waits up to *tick_wait ms (-1: the API's timeout) for something to do,
 * serves it, then calls the ticks that are not running, *tick_wait getting the soonest they
 * ask for. A stop signal sets hub->stop. */
static drv_err_t loop_pass(drv_hub_t *hub, int64_t *tick_wait, drv_error_t *err)
{
    struct pollfd pfd[2 + DRV_HUB_MAX_HOOKS];
    pfd[0] = (struct pollfd){.fd = drv_api_fd(hub->api), .events = POLLIN};
    pfd[1] = (struct pollfd){.fd = hub->sfd, .events = POLLIN};
    for (size_t i = 0; i < hub->nfds; i++)
        pfd[2 + i] = (struct pollfd){.fd = hub->fds[i].fd, .events = hub->fds[i].events};
    int64_t wait = drv_api_timeout_ms(hub->api);
    if (*tick_wait >= 0 && (wait < 0 || *tick_wait < wait))
        wait = *tick_wait;
    int r = poll(pfd, 2 + hub->nfds, wait > INT_MAX ? INT_MAX : (int)wait);
    if (r < 0 && errno != EINTR)
        return drv_error_set(err, DRV_ERR_IO, errno, "poll");
    if (r > 0 && (pfd[1].revents & POLLIN)) {
        struct signalfd_siginfo si;
        if (read(hub->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
            drv_log_info("hub stopping", "signal=%u", si.ssi_signo);
            hub->stop = true;
            return DRV_OK;
        }
    }
    for (size_t i = 0; r > 0 && i < hub->nfds; i++)
        if (pfd[2 + i].revents)
            hub->fds[i].cb(hub->fds[i].ctx, hub->fds[i].fd, pfd[2 + i].revents);
    drv_api_run(hub->api);
    *tick_wait = -1;
    for (size_t i = 0; i < hub->nticks && !hub->stop; i++) {
        if (hub->ticks[i].running)
            continue;
        hub->ticks[i].running = true;
        int64_t t = hub->ticks[i].cb(hub->ticks[i].ctx);
        hub->ticks[i].running = false;
        if (t >= 0 && (*tick_wait < 0 || t < *tick_wait))
            *tick_wait = t;
    }
    return DRV_OK;
}

void drv_hub_serve_pending(drv_hub_t *hub)
{
    if (!hub || hub->serving || hub->sfd < 0 || hub->stop)
        return; /* not inside drv_hub_run, or already serving */
    hub->serving = true;
    int64_t no_wait = 0;
    drv_error_t err = DRV_ERROR_INIT;
    if (loop_pass(hub, &no_wait, &err) != DRV_OK)
        drv_log_warn("hub: serving during a long round failed", "error=\"%s\"",
                     drv_error_msg(&err));
    hub->serving = false;
}

drv_err_t drv_hub_run(drv_hub_t *hub, drv_error_t *err)
{
    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, &old) < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "sigprocmask");
    _cleanup_close_ int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        int e = errno;
        sigprocmask(SIG_SETMASK, &old, NULL);
        return drv_error_set(err, DRV_ERR_IO, e, "signalfd");
    }
    if (hub->broker_url[0])
        printf("drover-hub: broker %s\n", hub->broker_url);
    const char *a = hub->addr;
    bool v6 = strchr(a, ':') != NULL;
    printf("drover-hub: CA fingerprint %s\n", drv_identity_ca_fingerprint(hub->identity));
    printf("drover-hub: serving %s://%s%s%s:%u\n", hub->tls ? "https" : "http", v6 ? "[" : "", a,
           v6 ? "]" : "", (unsigned)drv_api_port(hub->api));
    if (hub->tls)
        printf("drover-hub: clients verify it with %s\n", drv_identity_ca_path(hub->identity));
    if (hub->auth)
        printf("drover-hub: API access control on (bearer tokens)\n");
    if (hub->admin_token_path[0])
        printf("drover-hub: admin token written to %s\n", hub->admin_token_path);
    fflush(stdout);
    drv_log_info("hub serving", "addr=%s port=%u rv=%llu", a, (unsigned)drv_api_port(hub->api),
                 (unsigned long long)drv_hstore_rv(hub->store));
    drv_err_t ret = DRV_OK;
    int64_t tick_wait = 0;
    hub->stop = false;
    hub->sfd = sfd;
    while (!hub->stop && ret == DRV_OK)
        ret = loop_pass(hub, &tick_wait, err);
    hub->sfd = -1;
    sigprocmask(SIG_SETMASK, &old, NULL);
    return ret;
}
