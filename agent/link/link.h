/* The agent's link to the hub over MQTT (docs/PROTOCOL.md): receives the node's desired state
 * (applied only when its generation grows, persisted in <stateDir>/hub-desired.json so that it
 * runs after a reboot with no broker), reports status on connect and on every change, sends
 * heartbeats and presence, and serves log requests in chunks (tail, follow, cancel). It runs in
 * the daemon's event loop and never blocks it: MQTT I/O happens on drover-mqtt's threads, log
 * files are read a bounded amount per turn. The pure parts (acceptance rules, the status
 * report, the log target) are separate functions so that they are tested without a broker. */
#ifndef DROVER_AGENT_LINK_H
#define DROVER_AGENT_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "config/config.h"
#include "drover/error.h"
#include "drover/protocol.h"

typedef struct drv_link drv_link_t;

#define DRV_LINK_MAX_FOLLOWS 8   /* logs followed at once */
#define DRV_LINK_MAX_SESSIONS 16 /* logs requests being answered at once (follows included) */
#define DRV_LINK_FOLLOW_MAX_MS (10 * 60 * 1000)

/* ---- pure parts ---- */

typedef struct drv_link_desired {
    uint64_t generation;
    bool stale;     /* generation <= the applied one: nothing to do (desired is NULL) */
    cJSON *desired; /* owned: {"pods","configMaps","secrets"} of normalized objects */
} drv_link_desired_t;

/* Checks a desired-state payload for node: the envelope (drv_proto_desired_parse), then, when
 * its generation is above applied, every object (drv_model_normalize; pods must be Pods with
 * metadata.uid and spec.nodeName == node, and likewise for ConfigMaps and Secrets). Any
 * problem refuses the whole document with an error naming the field ("pods[1].spec.nodeName:
 * ..."); out is set only on DRV_OK. */
DRV_NODISCARD drv_err_t drv_link_desired_check(const char *payload, size_t len, const char *node,
                                               uint64_t applied, drv_link_desired_t *out,
                                               drv_error_t *err);
void drv_link_desired_free(drv_link_desired_t *d);

/* What the desired topic carries: a signed envelope (drv_proto_desired_open) verified with
 * verify_key (the hub's signing.pub, PEM), then drv_link_desired_check on the signed bytes.
 * No key (NULL) refuses every document (DRV_ERR_PERM naming the file it should be in);
 * unsigned, tampered or foreign-key documents are refused (DRV_ERR_PERM/INTEGRITY), and so is
 * one for another node, since the node name is inside the signed bytes. */
DRV_NODISCARD drv_err_t drv_link_desired_verify(const char *payload, size_t len, const char *node,
                                                const char *verify_key, uint64_t applied,
                                                drv_link_desired_t *out, drv_error_t *err);

/* The union of the static manifests and the hub's desired state (either may be NULL): a hub
 * object whose kind, namespace and name a static one already has is left out. New tree, the
 * caller owns it; NULL when out of memory. */
cJSON *drv_link_merge(const cJSON *static_desired, const cJSON *hub_desired);

/* The NodeStatusReport for the supervisor's status sv_status ({"node","pods"}, see
 * drv_supervisor_status): nodeStatus {capacity, allocatable, conditions (Ready, with
 * lastHeartbeatTime now), nodeInfo, labels (kubernetes.io/{arch,os,hostname} and cfg's),
 * addresses (InternalIP internal_ip when not NULL/"", Hostname)}, and every pod's metadata
 * {name, namespace, uid} and status. now is an RFC 3339 time. Caller owns the result. */
cJSON *drv_link_status_report(const drv_agent_config_t *cfg, const cJSON *sv_status,
                              uint64_t observed_generation, const char *now,
                              const char *internal_ip, drv_error_t *err);

/* The first IPv4 address of an interface that is up, not loopback and not skip_if (the pod
 * bridge) nor skip_if2 (the WireGuard interface), into out (>= 16 bytes); "" when none. */
void drv_link_internal_ip(const char *skip_if, const char *skip_if2, char *out, size_t outsz);

/* Which log a request means, from the supervisor's status: the pod's uid and the container
 * (req->container, or the pod's only container). DRV_ERR_NOTFOUND "pod default/web: not
 * found on node n1" / "container x: not in pod default/web (containers: a, b)";
 * DRV_ERR_INVALID "pod default/web has 2 containers (a, b): name one". */
DRV_NODISCARD drv_err_t drv_link_logs_target(const cJSON *sv_status,
                                             const drv_proto_logs_req_t *req, char *uid,
                                             size_t uidsz, char *container, size_t ctrsz,
                                             drv_error_t *err);

/* ---- the link ---- */

typedef struct drv_link_hooks {
    /* The hub's desired state changed (drv_link_hub_desired): merge and apply it. */
    void (*desired_changed)(void *userdata);
    void *userdata;
} drv_link_hooks_t;

/* Where the key that verifies the hub's desired state is kept on the device: written by
 * enrollment (agent/enroll) or provisioned with the image. */
#define DRV_LINK_SIGNING_PUB "identity/signing.pub"

/* Loads <stateDir>/hub-desired.json (a corrupt one is moved aside and reported) and, when
 * cfg->hub_broker is set, starts connecting. cfg must outlive the link. With no broker
 * configured *out is NULL and DRV_OK is returned: the agent is standalone. */
DRV_NODISCARD drv_err_t drv_link_new(const drv_agent_config_t *cfg, const drv_link_hooks_t *hooks,
                                     drv_link_t **out, drv_error_t *err);

/* The hub's desired state {"pods","configMaps","secrets"} last applied (owned by the link;
 * valid until the next call into it), or NULL. */
const cJSON *drv_link_hub_desired(const drv_link_t *l);
uint64_t drv_link_generation(const drv_link_t *l);

/* The fd to watch for readability; -1 when there is none. */
int drv_link_fd(const drv_link_t *l);

/* The supervisor's latest status ({"node","pods"}; borrowed, copied as needed); changed says
 * whether it differs in substance from the previous one (drv_supervisor_status_dirty), which
 * schedules a status report. */
void drv_link_set_status(drv_link_t *l, const cJSON *sv_status, bool changed);

/* Publishes an Event (the supervisor's pod events) on the events topic; takes ev. NULL l: ev
 * is freed (a standalone agent). */
void drv_link_send_event(drv_link_t *l, cJSON *ev);

/* Handles what is due: MQTT events, status reports (at most 5 a second, the last change never
 * lost), heartbeats, log chunks. Call after every wake-up. */
void drv_link_tick(drv_link_t *l, long long now);

/* How long the loop may sleep before drv_link_tick is due (ms). */
int drv_link_next_wakeup(const drv_link_t *l, long long now);

/* Says {"online":false} and disconnects (waiting at most about a second), then frees. NULL is
 * fine. */
void drv_link_free(drv_link_t *l);

#endif
