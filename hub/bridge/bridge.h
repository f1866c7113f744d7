/* The hub's MQTT bridge (protocol v1, docs/PROTOCOL.md): the only place where the hub's store
 * meets the broker.
 *  - Out: for every node, a retained QoS 1 desired-state document with the pods bound to it
 *    and the ConfigMaps and Secrets they use. It follows the store's change log, and a node's
 *    document is published again only when its content changed; its generation is the
 *    store's resourceVersion at that moment, so it only grows, across hub restarts too.
 *  - In: status reports create the Node (labels from the agent) and write node and pod
 *    statuses; heartbeats are kept in memory (drv_bridge_heartbeat, for the node lifecycle
 *    controller); a Will ({"online":false}) marks the node NotReady at once; agent events
 *    become Events; log chunks answer drv_bridge_logs_start.
 * Everything runs on the hub's loop thread (the MQTT client queues what Paho's threads
 * deliver behind an eventfd). A malformed or oversized message is refused, logged and counted,
 * never fatal. */
#ifndef DROVER_HUB_BRIDGE_H
#define DROVER_HUB_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"
#include "drover/protocol.h"
#include "store/store.h"

typedef struct drv_bridge drv_bridge_t;

/* A node's public key (PEM) into *pub_pem (malloc'd, caller frees); DRV_ERR_NOTFOUND when the
 * node has none (not enrolled), DRV_ERR_PERM when it is revoked (it gets no Secret at all). */
typedef drv_err_t (*drv_bridge_node_key_fn)(void *ctx, const char *node, char **pub_pem,
                                            drv_error_t *err);

/* The service account token of pod (as desired state carries it) on node at now (Unix s):
 * *token borrowed until the next call, *exp its expiry, *refresh_at when a new one is due,
 * *mount whether the agent mounts it at the Kubernetes path (else only projected volumes use it).
 * DRV_ERR_NOTFOUND: the pod gets none. */
typedef drv_err_t (*drv_bridge_sa_token_fn)(void *ctx, const char *node, const cJSON *pod,
                                            int64_t now, const char **token, int64_t *exp,
                                            int64_t *refresh_at, bool *mount, drv_error_t *err);

typedef struct drv_bridge_opts {
    const char *broker_url; /* required */
    const char *client_id;  /* NULL: "drover-hub" */
    drv_hstore_t *store;    /* required; borrowed */
    /* Called after the bridge wrote to the store (node and pod statuses, events), so that
     * watches and controllers see it. May be NULL. */
    void (*on_change)(void *ctx);
    void *ctx;
    uint64_t seed; /* reconnect jitter seed; 0 = random */
    /* TLS to the broker (ssl:// URL), as drv_mqtt_opts_t: CA file, client certificate and key
     * files; NULL: none. */
    const char *ca_file, *cert_file, *key_file;
    /* The node grace period (<= 0: 10 s). For this long after the bridge (re)connects to the
     * broker, Wills are not taken at their word (a restarted broker delivers the Wills of
     * every session it had, and the agents are still reconnecting with back-off): every node
     * heard of before counts as heard at the connect, and the grace period decides. */
    int64_t grace_ms;
    /* Desired state is signed with this key (PEM; the hub's signing.key). NULL: unsigned,
     * which agents refuse (unit tests only). */
    const char *signing_key;
    /* Where a node's Secrets are sealed to: its enrolled key. A node without one gets its
     * Secrets in clear only with clear_secrets (a broker without TLS, where devices are not
     * enrolled); otherwise they are left out of its document (and its pods wait for them). */
    drv_bridge_node_key_fn node_key;
    void *node_key_ctx;
    bool clear_secrets;
    /* Pods' service account tokens (NULL: none): sealed to the node's key like its Secrets (in
     * clear under clear_secrets), in the document's serviceAccountTokens; documents are built
     * again when a token is due for renewal. */
    drv_bridge_sa_token_fn sa_token;
    void *sa_token_ctx;
    /* Devices are authenticated (a TLS broker with client certificates): a status report may
     * set only facts about the device on its Node (DRV_BRIDGE_DEVICE_LABELS); other labels
     * belong to the hub (the bootstrap token's, the API's) and are refused with a Warning
     * event LabelsRefused. Without it (a plain broker, where nothing tells devices apart)
     * every reported label is merged. */
    bool restrict_labels;
    /* Where usage reports go (hub/metrics; borrowed). NULL: usage is not subscribed to. */
    struct drv_metrics *metrics;
    /* The pod network (the "network" section of desired state): NULL for 10.42.0.0/16,
     * 10.43.0.0/16 and cluster.local. */
    const char *cluster_cidr, *service_cidr, *cluster_domain;
} drv_bridge_opts_t;

/* What a device may say about itself in its Node's labels (Kubernetes' NodeRestriction in
 * spirit): kubernetes.io/arch and kubernetes.io/os, kubernetes.io/hostname equal to its node
 * name, and any label under this agent-owned prefix (which its reports may also remove). */
#define DRV_BRIDGE_AGENT_LABEL_PREFIX "agent.drover.io/"
bool drv_bridge_device_label_ok(const char *node, const char *key, const char *value);

/* Loads the desired state of every node from the store and starts connecting. *out is owned
 * by the caller. */
DRV_NODISCARD drv_err_t drv_bridge_new(const drv_bridge_opts_t *opts, drv_bridge_t **out,
                                       drv_error_t *err);
/* Publishes nothing more and disconnects (the retained documents stay at the broker). */
void drv_bridge_free(drv_bridge_t *b);

/* node has a new enrolled key: its document is built again (and, when it carries Secrets,
 * published sealed to that key) on the next tick. */
void drv_bridge_node_rekeyed(drv_bridge_t *b, const char *node);

/* Asks the hub's broker (its drover-auth plugin, "$CONTROL/drover/v1") to close node's
 * connections now: it was revoked or forgotten, and its next CONNECT is refused. Best effort:
 * a broker that restarts drops every connection anyway. */
void drv_bridge_kick(drv_bridge_t *b, const char *node);

/* The hub's broker let node's device connect from addr (the client's IP address, as the
 * drover-auth plugin saw it): kept in memory and as the Node's annotation
 * drover.io/observed-address (written only when it changes). Its peers reach it there when
 * addr is one of its reported addresses; otherwise it is behind a NAT. */
void drv_bridge_observed(drv_bridge_t *b, const char *node, const char *addr);

/* Handles one message as if the broker had delivered it on topic (payload: len bytes followed
 * by a NUL): how unit tests feed the bridge status reports without a broker. */
void drv_bridge_deliver(drv_bridge_t *b, const char *topic, const void *payload, size_t len);

/* The fd to poll for POLLIN; call drv_bridge_poll when it is readable. */
int drv_bridge_fd(const drv_bridge_t *b);
void drv_bridge_poll(drv_bridge_t *b);
/* Follows the store's change log and publishes the documents that changed; expires log
 * requests. Returns ms until it next needs calling without other activity. */
int64_t drv_bridge_tick(drv_bridge_t *b, int64_t now_ms);

/* The last sign of life of node in ms since the epoch (heartbeat, status report or online
 * message), for drv_ctrl_nodes_opts_t.heartbeat (ctx is the bridge). A node not heard of
 * since the bridge started counts from the bridge's start if the store had it Ready then
 * (the hub restarted: give the node a grace period to speak), else -1. */
int64_t drv_bridge_heartbeat(void *bridge, const char *node);
/* Adds to out (a JSON object) "<node>": "<last sign of life, RFC 3339>" for each node heard
 * of since the bridge started and silent for more than after_ms at now_ms (ms since the
 * epoch): drv_api_set_heartbeats' late (ctx is the bridge). */
void drv_bridge_late(void *bridge, int64_t now_ms, int64_t after_ms, cJSON *out);

/* The hub wrote status on node's behalf that only its agent knows for sure (the node
 * controller marked it NotReady and its pods not Ready; its Will was delivered): the node's
 * next heartbeat asks it for a full status report (a resync, at most every 10 s), which puts
 * its truth back. For drv_ctrl_nodes_opts_t.overrode (ctx is the bridge). */
void drv_bridge_report_stale(void *bridge, const char *node);

typedef struct drv_bridge_stats {
    uint64_t received;  /* MQTT messages in */
    uint64_t published; /* MQTT messages out */
    uint64_t refused;   /* messages refused (malformed, oversized, unknown node) */
    uint64_t desired_published;
    size_t nodes_online; /* nodes whose last presence message said online */
    bool connected;
} drv_bridge_stats_t;
void drv_bridge_stats(const drv_bridge_t *b, drv_bridge_stats_t *out);

/* ---- logs ---- */

/* One answer to a log request: a chunk of data (len may be 0), then eof. error (non-NULL,
 * with eof) says why there is no (more) log; timed_out: the agent did not answer in time. */
typedef struct drv_bridge_logs_part {
    const unsigned char *data;
    size_t len;
    bool eof;
    const char *error;
    bool timed_out;
} drv_bridge_logs_part_t;
/* Called on the loop's thread for each part; after the part with eof it is never called
 * again for that request. */
typedef void (*drv_bridge_logs_fn)(void *ctx, const drv_bridge_logs_part_t *part);

#define DRV_BRIDGE_LOGS_MAX 64                 /* requests in flight */
#define DRV_BRIDGE_LOGS_FIRST_TIMEOUT_MS 10000 /* no first chunk by then: timed_out */

/* Asks node's agent for a container's log. req->id is set here (out). Fails with
 * DRV_ERR_AGAIN if too many requests are in flight or the broker is unreachable. */
DRV_NODISCARD drv_err_t drv_bridge_logs_start(drv_bridge_t *b, const char *node,
                                              drv_proto_logs_req_t *req, drv_bridge_logs_fn cb,
                                              void *ctx, drv_error_t *err);
/* The reader went away: tells the agent to stop (for a follow) and forgets the request; cb is
 * not called again. Unknown ids are ignored. */
void drv_bridge_logs_cancel(drv_bridge_t *b, const char *id);

#endif
