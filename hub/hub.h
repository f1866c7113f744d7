/* The hub process: its data directory, store and API driven by one poll() loop until SIGTERM
 * or SIGINT. Later modules (broker, controllers) hang off this context. */
#ifndef DROVER_HUB_H
#define DROVER_HUB_H

#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"
#include "drover/error.h"
#include "store/store.h"

#define DRV_HUB_DEFAULT_DATA "/var/lib/drover-hub"
#define DRV_HUB_DEFAULT_LISTEN "127.0.0.1:8080"
/* Secure by default: nothing is reachable without authentication unless the operator turns
 * it off explicitly (tests of other features do, with --no-auth --no-tls --no-broker-tls).
 * Whether the API requires bearer tokens (hub/auth) unless --auth / --no-auth says. */
#define DRV_HUB_DEFAULT_AUTH true
/* Whether the API serves HTTPS (with the hub's own server certificate, hub/identity) unless
 * --tls / --no-tls says. */
#define DRV_HUB_DEFAULT_TLS true
/* Whether the hub's own Mosquitto is TLS-only with client certificates and per-node ACLs
 * (hub/broker) unless --broker-tls / --no-broker-tls says. */
#define DRV_HUB_DEFAULT_BROKER_TLS true

typedef struct drv_hub drv_hub_t;

typedef struct drv_hub_opts {
    const char *data_dir; /* created (0700) if missing; holds hub.db */
    const char *listen;   /* "ADDR:PORT", "[V6ADDR]:PORT"; port 0 picks one */
    /* MQTT: an external broker's URL (tcp://, ssl://, mqtt://, mqtts://, ws://, wss://), or
     * with run_broker a Mosquitto child supervised by the hub (hub/broker). Neither: none. */
    const char *broker;
    bool run_broker;
    const char *broker_listen; /* child's "ADDR:PORT"; NULL: 127.0.0.1:1883, or port 0
                                  (a free one) when listen's port is 0 */
    const char *mosquitto;     /* child's binary; NULL: /usr/sbin/mosquitto */
    /* The child broker only over TLS with client certificates and per-node ACLs
     * (hub/broker); the hub connects with <data_dir>/pki/hub-client.{crt,key}. */
    bool broker_tls;
    const char *broker_plugin; /* the drover-auth Mosquitto plugin; NULL: found (broker.h) */
    bool run_controllers;      /* node lifecycle, Deployments, DaemonSets, scheduling */
    /* Registries the scheduler's image platform lookups (hub/images) reach over plain HTTP
     * (host[:port], as in image references); others over HTTPS. */
    const char *const *insecure_registries;
    size_t n_insecure_registries;
    int64_t node_grace_ms; /* heartbeat grace period; <= 0: 10 s */
    int64_t hpa_sync_ms;   /* HorizontalPodAutoscaler sync period; <= 0: 15 s */
    /* The pod network's addresses (hub/ctrl/netalloc.c); NULL / 0: the defaults
     * (10.42.0.0/16, /24 per node, 10.43.0.0/16). */
    const char *cluster_cidr;
    int node_cidr_mask;
    const char *service_cidr;
    size_t usage_history_bytes; /* memory for usage histories; 0: 64 MiB */
    int64_t session_ttl_s;      /* dashboard sign-ins (hub/auth); <= 0: 12 h */
    /* API access control: every route but /healthz needs a bearer token (hub/auth); on the
     * first start without a usable admin token one is written to <data_dir>/admin.token. The
     * token routes are served either way. */
    bool auth;
    /* HTTPS on the API with <data_dir>/pki/server.crt. The hub's identity (hub/identity: CA,
     * server certificate, signing key) is created and checked on every start either way;
     * sans (n_sans) are further DNS names or IP addresses for the server certificate. */
    bool tls;
    const char *const *sans;
    size_t n_sans;
} drv_hub_opts_t;

/* Splits "ADDR:PORT" / "[V6]:PORT" into addr (NUL-terminated, at most addrsz) and port. */
DRV_NODISCARD drv_err_t drv_hub_parse_listen(const char *s, char *addr, size_t addrsz,
                                             uint16_t *port, drv_error_t *err);

/* Opens the data directory and the store and starts listening. *out owned by the caller.
 * Blocks SIGTERM and SIGINT in the calling thread (before the MQTT client's threads start,
 * which inherit it), so that drv_hub_run receives them. */
DRV_NODISCARD drv_err_t drv_hub_new(const drv_hub_opts_t *opts, drv_hub_t **out, drv_error_t *err);
/* Serves until SIGTERM or SIGINT (blocked in the calling thread and read via signalfd). */
DRV_NODISCARD drv_err_t drv_hub_run(drv_hub_t *hub, drv_error_t *err);
void drv_hub_free(drv_hub_t *hub);

/* Hooks for the hub's other modules (broker, MQTT, controllers), all called on the loop's
 * thread. At most DRV_HUB_MAX_HOOKS of each. A hook that writes to the store calls
 * drv_api_notify(drv_hub_api(hub)) so that watch streams see the change. */
#define DRV_HUB_MAX_HOOKS 16
/* fd is polled for events; cb gets the revents. The caller keeps owning fd. */
typedef void (*drv_hub_fd_fn)(void *ctx, int fd, short revents);
DRV_NODISCARD drv_err_t drv_hub_add_fd(drv_hub_t *hub, int fd, short events, drv_hub_fd_fn cb,
                                       void *ctx, drv_error_t *err);
/* Called once per loop round (after fds and the API); returns how many ms until it next
 * needs calling without other activity (-1: no deadline). */
typedef int64_t (*drv_hub_tick_fn)(void *ctx);
DRV_NODISCARD drv_err_t drv_hub_add_tick(drv_hub_t *hub, drv_hub_tick_fn cb, void *ctx,
                                         drv_error_t *err);
/* For a hook in the middle of long work (a controller round making thousands of pods): one pass
 * of the loop that does not wait, serving what is ready (fds, the API, watchers) and the ticks
 * other than the ones running now, so that they do not wait for the work's end. Whatever
 * store transaction the caller had must be committed first (drv_hstore_batch_point does). */
void drv_hub_serve_pending(drv_hub_t *hub);
/* Called after every write the API made to the store (see drv_api_opts_t.on_change). */
DRV_NODISCARD drv_err_t drv_hub_on_change(drv_hub_t *hub, void (*cb)(void *ctx), void *ctx,
                                          drv_error_t *err);
/* Starts the controllers in the loop (core/controllers.c; drv_hub_new does it when
 * opts.run_controllers is set). */
DRV_NODISCARD drv_err_t drv_hub_start_controllers(drv_hub_t *hub, drv_error_t *err);
/* Serves the API's pod log route through the MQTT bridge (core/logs.c). */
void drv_hub_serve_logs(drv_hub_t *hub);
/* Frees p with the hub (a hook's context). */
void drv_hub_own(drv_hub_t *hub, void *p);
/* The same with its own destructor (free_fn(p) when the hub is freed). */
void drv_hub_own_with(drv_hub_t *hub, void *p, void (*free_fn)(void *p));
/* Makes drv_hub_run return after the current round (from a hook, or a test). */
void drv_hub_stop(drv_hub_t *hub);

/* Borrowed, valid until drv_hub_free. The MQTT bridge is NULL without a broker. */
struct drv_bridge *drv_hub_bridge(drv_hub_t *hub);
int64_t drv_hub_node_grace_ms(const drv_hub_t *hub);
int64_t drv_hub_hpa_sync_ms(const drv_hub_t *hub);
/* The opts' cluster_cidr, node_cidr_mask and service_cidr (borrowed; NULL / 0: defaults). */
void drv_hub_net_opts(const drv_hub_t *hub, const char **cluster_cidr, int *node_cidr_mask,
                      const char **service_cidr);
/* Something other than the API wrote to the store (controllers, the bridge): wakes the watch
 * streams and runs the change hooks. */
void drv_hub_changed(drv_hub_t *hub);
drv_api_t *drv_hub_api(drv_hub_t *hub);
/* The MQTT broker's URL (external or the hub's child), NULL without one. */
const char *drv_hub_broker_url(drv_hub_t *hub);
/* The hub CA's certificate (PEM), NULL when the hub has no PKI (--no-tls without identity). */
const char *drv_hub_ca_pem(drv_hub_t *hub);
drv_hstore_t *drv_hub_store(drv_hub_t *hub);
/* The hub's CA, server certificate and signing key (hub/identity). */
struct drv_identity *drv_hub_identity(drv_hub_t *hub);
/* The image platform lookups the scheduler uses (hub/images), NULL without controllers. */
struct drv_images *drv_hub_images(drv_hub_t *hub);
/* Usage pushed by the agents (hub/metrics), NULL without a broker. */
struct drv_metrics *drv_hub_metrics(drv_hub_t *hub);

#endif
