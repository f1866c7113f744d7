/* The hub <-> agent MQTT protocol, version 1 (docs/PROTOCOL.md): topic names and the JSON
 * messages carried on them, built and parsed here without any network code, so that the hub,
 * the agent and the fleet simulator speak exactly the same language. Parsers take untrusted
 * (payload, len) pairs, enforce the size caps and refuse anything malformed with an error that
 * names the field ("desired state: generation: must be a non-negative integer"). */
#ifndef DROVER_PROTOCOL_H
#define DROVER_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "drover/error.h"

#define DRV_PROTO_API_VERSION "drover/v1"
#define DRV_PROTO_PREFIX "drover/v1/"
#define DRV_PROTO_NODE_MAX 63                 /* node name length, bytes */
#define DRV_PROTO_ID_MAX 64                   /* logs request id length, bytes */
#define DRV_PROTO_TOPIC_MAX 160               /* enough for every topic of this protocol */
#define DRV_PROTO_TIME_MAX 40                 /* RFC 3339 time strings */
#define DRV_PROTO_DESIRED_MAX (4u << 20)      /* desired-state payload cap */
#define DRV_PROTO_MSG_MAX (1u << 20)          /* cap for every other payload */
#define DRV_PROTO_GEN_MAX 9007199254740991ull /* 2^53 - 1: exact in JSON numbers everywhere */

typedef enum {
    DRV_PROTO_DESIRED,   /* hub -> agent, retained, QoS 1 */
    DRV_PROTO_STATUS,    /* agent -> hub, QoS 1 */
    DRV_PROTO_HEARTBEAT, /* agent -> hub, QoS 0 */
    DRV_PROTO_ONLINE,    /* agent -> hub, retained, QoS 1; also the Last Will */
    DRV_PROTO_EVENTS,    /* agent -> hub, QoS 1 */
    DRV_PROTO_LOGS_REQ,  /* hub -> agent, QoS 1 */
    DRV_PROTO_LOGS_RES,  /* agent -> hub, QoS 1, topic ends with the request id */
    DRV_PROTO_METRICS,   /* agent -> hub, QoS 0: usage samples (NodeMetricsReport) */
    DRV_PROTO__COUNT
} drv_proto_msg_t;

/* Short name of a message kind ("desired", "logs/res"); "unknown" when out of range. */
DRV_API const char *drv_proto_msg_name(drv_proto_msg_t kind);
/* QoS and retain flag a message kind is published with. */
DRV_API int drv_proto_qos(drv_proto_msg_t kind);
DRV_API bool drv_proto_retained(drv_proto_msg_t kind);
/* Payload cap of a message kind, bytes. */
DRV_API size_t drv_proto_max_payload(drv_proto_msg_t kind);

/* A node name usable in topics: a DNS subdomain of at most 63 characters (so no '+', '#'
 * or '/'). */
DRV_API DRV_NODISCARD drv_err_t drv_proto_check_node(const char *node, drv_error_t *err);
/* A logs request id: 1-64 characters of [A-Za-z0-9_-] (it becomes a topic level). */
DRV_API DRV_NODISCARD drv_err_t drv_proto_check_id(const char *id, drv_error_t *err);

/* Writes the topic of message kind for node into out: "drover/v1/node/<node>/<kind>"; id is
 * the request id for DRV_PROTO_LOGS_RES and ignored otherwise. */
DRV_API DRV_NODISCARD drv_err_t drv_proto_topic(char *out, size_t outsz, const char *node,
                                                drv_proto_msg_t kind, const char *id,
                                                drv_error_t *err);
/* Subscription filter: like drv_proto_topic, but node NULL means every node ("+") and for
 * DRV_PROTO_LOGS_RES the id level is "+". */
DRV_API DRV_NODISCARD drv_err_t drv_proto_filter(char *out, size_t outsz, const char *node,
                                                 drv_proto_msg_t kind, drv_error_t *err);
/* Splits a received topic. node gets the node name (DRV_PROTO_NODE_MAX + 1 bytes), id (may be
 * NULL; DRV_PROTO_ID_MAX + 1 bytes) the logs response id or "". DRV_ERR_NOTFOUND for a topic
 * outside this protocol, DRV_ERR_INVALID for a bad node name or id. */
DRV_API DRV_NODISCARD drv_err_t drv_proto_parse_topic(const char *topic, drv_proto_msg_t *kind,
                                                      char *node, char *id, drv_error_t *err);

/* Current UTC time as RFC 3339 ("2026-11-25T13:12:41Z") into out (>= DRV_PROTO_TIME_MAX). */
DRV_API void drv_proto_now(char *out, size_t outsz);

/* Serialises msg compactly into *out (malloc'd, NUL-terminated, caller frees), refusing a
 * result over the cap of kind (DRV_ERR_TOOBIG). */
DRV_API DRV_NODISCARD drv_err_t drv_proto_encode(const cJSON *msg, drv_proto_msg_t kind, char **out,
                                                 size_t *len, drv_error_t *err);

/* Builders return trees meant for drv_proto_encode: their integer fields (generation, seq,
 * ...) are cJSON raw nodes holding exact decimal text, since cJSON's own number printing rounds
 * integers beyond 15 digits. Read integers back with the parsers, not from a built tree. */

/* ---- desired state (hub -> agent) ---- */

/* Builds {"apiVersion","kind":"NodeDesiredState","node","generation","pods","configMaps",
 * "secrets"}. The arrays are deep-copied (NULL = empty). Returns a new tree the caller owns
 * (cJSON_Delete), or NULL with err set (bad node, generation over DRV_PROTO_GEN_MAX, a
 * non-array argument, no memory). */
DRV_API cJSON *drv_proto_desired_build(const char *node, uint64_t generation, const cJSON *pods,
                                       const cJSON *config_maps, const cJSON *secrets,
                                       drv_error_t *err);
/* drv_proto_desired_build with a "network" section (drover/netstate.h): network, an object, is
 * deep-copied; NULL leaves the section out. */
DRV_API cJSON *drv_proto_desired_build_net(const char *node, uint64_t generation, const cJSON *pods,
                                           const cJSON *config_maps, const cJSON *secrets,
                                           const cJSON *network, drv_error_t *err);

typedef struct drv_proto_desired {
    char node[DRV_PROTO_NODE_MAX + 1];
    uint64_t generation;
    cJSON *doc;        /* owned: the whole document */
    const cJSON *pods; /* arrays inside doc: never NULL after a successful parse */
    const cJSON *config_maps;
    const cJSON *secrets;
    /* The "network" object inside doc, NULL when absent (or null): read it with
     * drv_netstate_parse. Only its type is checked here. */
    const cJSON *network;
    /* The PersistentVolumes on this node (all phases, with status.phase), as stored; absent
     * in the document: an empty array (docs/PROTOCOL.md "Persistent volumes"). */
    const cJSON *persistent_volumes;
    /* "serviceAccountTokens" (absent: empty, never NULL after a successful parse): one object
     * per pod with a token, {podUID, sealedToken | token, expirationTimestamp}; read each with
     * drv_proto_satoken_open. */
    const cJSON *sa_tokens;
} drv_proto_desired_t;

/* Parses a desired-state payload. expect_node (may be NULL) must equal the node field. The
 * envelope is checked (every array element an object, node, generation); the objects are not
 * validated here: the caller runs drv_model_normalize on each. On failure out is untouched. */
DRV_API DRV_NODISCARD drv_err_t drv_proto_desired_parse(const char *payload, size_t len,
                                                        const char *expect_node,
                                                        drv_proto_desired_t *out, drv_error_t *err);
DRV_API void drv_proto_desired_free(drv_proto_desired_t *d);

/* ---- signed desired state (docs/PROTOCOL.md "Signatures") ----
 * What goes on the desired topic: {"apiVersion","kind":"SignedNodeDesiredState","alg":"ES256",
 * "signature": base64 DER ECDSA P-256 over SHA-256 of the payload's exact bytes, "payload": the
 * NodeDesiredState text as a JSON string}. The node name and generation are inside the signed
 * bytes, so a document cannot be moved to another node or replayed as newer. */

/* Signs the len bytes of doc (a NodeDesiredState text) with key_pem: *out (malloc'd,
 * NUL-terminated, caller frees) gets the envelope, *outlen its length. DRV_ERR_TOOBIG when
 * the envelope would exceed DRV_PROTO_DESIRED_MAX. */
DRV_API DRV_NODISCARD drv_err_t drv_proto_desired_sign(const char *doc, size_t len,
                                                       const char *key_pem, char **out,
                                                       size_t *outlen, drv_error_t *err);
/* The same envelope around doc with sig, an ES256 signature of its len bytes made elsewhere
 * (base64 DER, as drv_pki_sign gives; the hub signs with OpenSSL, hub/sign). */
DRV_API DRV_NODISCARD drv_err_t drv_proto_desired_envelope(const char *doc, size_t len,
                                                           const char *sig, char **out,
                                                           size_t *outlen, drv_error_t *err);
/* Checks a desired-topic payload against pub_pem and gives the signed bytes: *doc (malloc'd,
 * NUL-terminated, caller frees; *doclen) for drv_proto_desired_parse. An unsigned
 * NodeDesiredState is DRV_ERR_PERM ("desired state: not signed"); a signature that does not
 * verify (tampered payload, other key) DRV_ERR_INTEGRITY; a malformed envelope DRV_ERR_INVALID
 * naming the field; over the cap DRV_ERR_TOOBIG. */
DRV_API DRV_NODISCARD drv_err_t drv_proto_desired_open(const char *payload, size_t len,
                                                       const char *pub_pem, char **doc,
                                                       size_t *doclen, drv_error_t *err);

/* ---- Secrets sealed to a node (docs/PROTOCOL.md "Secrets") ----
 * A Secret in a node's desired state carries "sealedData" instead of "data"/"stringData": the
 * drv_pki_seal blob of the text {"data": {...}, "stringData": {...}} (the members it had),
 * sealed to the node's public key under the context "drover/v1 secret <node>/<ns>/<name>". */

/* Replaces secret's data and stringData by sealedData, in place. */
DRV_API DRV_NODISCARD drv_err_t drv_proto_secret_seal(cJSON *secret, const char *node,
                                                      const char *pub_pem, drv_error_t *err);
/* Replaces secret's sealedData by the data it seals, in place (with the node's private key).
 * A Secret without sealedData is left as it is (DRV_OK). A blob that does not open (other
 * node, other Secret, tampered, wrong key) is DRV_ERR_INTEGRITY naming the Secret, never a
 * value; on failure the Secret is unchanged. */
DRV_API DRV_NODISCARD drv_err_t drv_proto_secret_unseal(cJSON *secret, const char *node,
                                                        const char *key_pem, drv_error_t *err);
/* Whether a Secret object is sealed (has a sealedData string). */
DRV_API bool drv_proto_secret_is_sealed(const cJSON *secret);

/* ---- service account tokens (docs/PROTOCOL.md "Service account tokens") ----
 * A pod's token travels as {"podUID", "sealedToken", "expirationTimestamp"}: sealedToken is the
 * drv_pki_seal blob of the token, sealed to the node's key under the context
 * "drover/v1 token <node>/<podUID>"; "token" (in clear) instead only when the hub's broker has no
 * TLS, as for Secrets. */
#define DRV_PROTO_SATOKEN_MAX 4096

/* A new entry for pod_uid (pub_pem NULL: in clear); exp: Unix seconds. */
DRV_API cJSON *drv_proto_satoken_build(const char *node, const char *pod_uid, const char *token,
                                       int64_t exp, const char *pub_pem, drv_error_t *err);
/* The token of one entry into *token (malloc'd, NUL-terminated: wipe and free it) and its pod
 * uid into pod_uid (DRV_PROTO_UID_MAX + 1 = 65 bytes); key_pem NULL accepts only a clear token. A
 * malformed entry is DRV_ERR_INVALID naming the field; a blob that does not open
 * DRV_ERR_INTEGRITY. */
DRV_API DRV_NODISCARD drv_err_t drv_proto_satoken_open(const cJSON *entry, const char *node,
                                                       const char *key_pem, char pod_uid[65],
                                                       char **token, drv_error_t *err);

/* ---- status report (agent -> hub) ---- */

/* Builds {"apiVersion","kind":"NodeStatusReport","node","observedGeneration","time",
 * "nodeStatus":{capacity, allocatable, conditions, nodeInfo, labels, addresses},"pods":[
 * {metadata:{name,namespace,uid},status:{...}}]}. node_status and pods are deep-copied (NULL =
 * empty). The caller owns the result. */
DRV_API cJSON *drv_proto_status_build(const char *node, uint64_t observed_generation,
                                      const cJSON *node_status, const cJSON *pods,
                                      drv_error_t *err);

typedef struct drv_proto_status {
    char node[DRV_PROTO_NODE_MAX + 1];
    uint64_t observed_generation;
    char time[DRV_PROTO_TIME_MAX + 1];
    cJSON *doc;               /* owned */
    const cJSON *node_status; /* object inside doc */
    const cJSON *pods;        /* array inside doc; each element has metadata.name/namespace
                                 (strings) and a status object */
} drv_proto_status_t;

DRV_API DRV_NODISCARD drv_err_t drv_proto_status_parse(const char *payload, size_t len,
                                                       const char *expect_node,
                                                       drv_proto_status_t *out, drv_error_t *err);
DRV_API void drv_proto_status_free(drv_proto_status_t *s);

/* ---- heartbeat (agent -> hub) ---- */

/* An agent run's instance id: made at every agent start (random), carried in heartbeats,
 * presence messages and the Will, so that the hub can tell two devices presenting one
 * identity (a card copied after enrollment) from one device restarting. 1-40 characters of
 * [A-Za-z0-9-]; optional (older agents send none). */
#define DRV_PROTO_INSTANCE_MAX 40

typedef struct drv_proto_heartbeat {
    char node[DRV_PROTO_NODE_MAX + 1];
    uint64_t seq;
    uint64_t observed_generation;
    char time[DRV_PROTO_TIME_MAX + 1];
    char instance[DRV_PROTO_INSTANCE_MAX + 1]; /* "" when absent */
} drv_proto_heartbeat_t;

/* Writes the heartbeat as JSON text into out; time "" means now. */
DRV_API DRV_NODISCARD drv_err_t drv_proto_heartbeat_format(const drv_proto_heartbeat_t *hb,
                                                           char *out, size_t outsz,
                                                           drv_error_t *err);
DRV_API DRV_NODISCARD drv_err_t drv_proto_heartbeat_parse(const char *payload, size_t len,
                                                          const char *expect_node,
                                                          drv_proto_heartbeat_t *out,
                                                          drv_error_t *err);

/* ---- usage (agent -> hub, QoS 0, every metrics.intervalSeconds when it changed) ----
 * One sample of the node and of every container it runs, taken at `time` (the agent's clock,
 * ms since the epoch) over `window` (the time since the previous sample). CPU is a rate in
 * nanocores (1e9 = one core busy), memory the working set in bytes (memory.current minus
 * inactive_file, kubelet's definition). A value the device cannot measure is absent (has_* false)
 * and named in `unsupported`. Caps: DRV_PROTO_METRICS_PODS_MAX pods, DRV_PROTO_METRICS_CTRS_MAX
 * containers in one pod, DRV_PROTO_METRICS_MAX bytes. See docs/PROTOCOL.md "Usage". */
#define DRV_PROTO_METRICS_MAX (256u << 10)
#define DRV_PROTO_METRICS_PODS_MAX 256
#define DRV_PROTO_METRICS_CTRS_MAX 16
#define DRV_PROTO_METRICS_UNSUPPORTED_MAX 8
#define DRV_PROTO_METRICS_CPU_MAX (1024LL * 1000000000LL) /* nanocores: 1024 cores busy */
#define DRV_PROTO_METRICS_BYTES_MAX (1LL << 50)           /* 1 PiB */
#define DRV_PROTO_METRICS_WINDOW_MAX_MS (3600LL * 1000)
#define DRV_PROTO_NAME_MAX 253 /* a pod's name, a namespace's (63) */
#define DRV_PROTO_UID_MAX 64

typedef struct drv_proto_ctr_usage {
    char name[64];
    bool has_cpu;
    int64_t cpu_nanocores;
    bool has_memory;
    int64_t memory_bytes;
    uint64_t throttled_periods; /* cpu.stat nr_throttled, cumulative */
    uint64_t throttled_usec;    /* cpu.stat throttled_usec, cumulative */
    uint64_t oom_kills;         /* memory.events oom_kill of this container's cgroup */
    int32_t restarts;           /* restartCount */
} drv_proto_ctr_usage_t;

typedef struct drv_proto_pod_usage {
    char ns[64];
    char name[DRV_PROTO_NAME_MAX + 1];
    char uid[DRV_PROTO_UID_MAX + 1];
    drv_proto_ctr_usage_t ctrs[DRV_PROTO_METRICS_CTRS_MAX];
    size_t n_ctrs;
} drv_proto_pod_usage_t;

typedef struct drv_proto_metrics {
    char node[DRV_PROTO_NODE_MAX + 1];
    uint64_t seq;      /* counts up from 0 at agent start */
    int64_t time_ms;   /* when sampled, ms since the epoch */
    int64_t window_ms; /* over how long the cpu rates were measured, > 0 */
    bool has_cpu;      /* node: all cpus, nanocores */
    int64_t cpu_nanocores;
    bool has_memory; /* node: MemTotal - MemAvailable, bytes */
    int64_t memory_bytes;
    int64_t memory_total_bytes;
    bool has_disk; /* the state directory's file system, bytes */
    int64_t disk_free_bytes;
    int64_t disk_total_bytes;
    bool has_temp; /* the SoC's temperature, millidegrees Celsius */
    int64_t temp_millicelsius;
    bool has_throttled; /* Raspberry Pi firmware's get_throttled bits */
    uint32_t throttled;
    char unsupported[DRV_PROTO_METRICS_UNSUPPORTED_MAX][32]; /* "cpu.stat", "temperature", ... */
    size_t n_unsupported;
    drv_proto_pod_usage_t *pods; /* n_pods of them (parse: owned, freed by _free) */
    size_t n_pods;
} drv_proto_metrics_t;

/* The message as JSON text (a new string, the caller frees it), at most DRV_PROTO_METRICS_MAX. */
DRV_API DRV_NODISCARD drv_err_t drv_proto_metrics_format(const drv_proto_metrics_t *m, char **out,
                                                         size_t *len, drv_error_t *err);
/* Parses and checks a message from expect_node: every field typed and in range, names valid,
 * caps kept; errors name the field ("pods[3].containers[0].cpu: must be ..."). */
DRV_API DRV_NODISCARD drv_err_t drv_proto_metrics_parse(const char *payload, size_t len,
                                                        const char *expect_node,
                                                        drv_proto_metrics_t *out, drv_error_t *err);
DRV_API void drv_proto_metrics_free(drv_proto_metrics_t *m);

/* ---- presence (agent -> hub, retained; the Last Will is {"online":false}) ---- */

typedef struct drv_proto_online {
    bool online;
    char time[DRV_PROTO_TIME_MAX + 1];         /* "" when absent (the Will carries no time) */
    char instance[DRV_PROTO_INSTANCE_MAX + 1]; /* "" when absent */
} drv_proto_online_t;

/* {"online":true|false[,"time":...][,"instance":...]}; time or instance NULL or "" leaves it
 * out. */
DRV_API DRV_NODISCARD drv_err_t drv_proto_online_format(bool online, const char *time,
                                                        const char *instance, char *out,
                                                        size_t outsz, drv_error_t *err);
DRV_API DRV_NODISCARD drv_err_t drv_proto_online_parse(const char *payload, size_t len,
                                                       drv_proto_online_t *out, drv_error_t *err);

/* ---- events (agent -> hub) ---- */

/* Builds a Kubernetes-like core/v1 Event about an object on node: type "Normal"/"Warning",
 * reason CamelCase, message free text (truncated to 1 KiB). involved_namespace may be NULL.
 * The caller owns the result. */
DRV_API cJSON *drv_proto_event_build(const char *node, const char *involved_kind,
                                     const char *involved_name, const char *involved_namespace,
                                     const char *type, const char *reason, const char *message,
                                     drv_error_t *err);
/* Parses an event: an object with "kind":"Event", string reason and message, object
 * involvedObject. Returns the tree in *out (caller owns) for drv_model_normalize. */
DRV_API DRV_NODISCARD drv_err_t drv_proto_event_parse(const char *payload, size_t len, cJSON **out,
                                                      drv_error_t *err);

/* ---- logs (hub asks, agent answers in chunks) ---- */

#define DRV_PROTO_LOGS_CHUNK_MAX (512u << 10) /* raw bytes in one response chunk */

typedef struct drv_proto_logs_req {
    char id[DRV_PROTO_ID_MAX + 1];
    char pod[254];
    char namespace_[254];
    char container[64];  /* "" = the pod's only / first container */
    uint64_t tail_bytes; /* 0 = whole log */
    bool follow;
    bool cancel; /* stops the follow with the same id (pod and the rest may be left out) */
} drv_proto_logs_req_t;

DRV_API cJSON *drv_proto_logs_req_build(const drv_proto_logs_req_t *req, drv_error_t *err);
DRV_API DRV_NODISCARD drv_err_t drv_proto_logs_req_parse(const char *payload, size_t len,
                                                         drv_proto_logs_req_t *out,
                                                         drv_error_t *err);

/* A response chunk: data is base64 in the JSON ("data"), raw bytes here. */
DRV_API cJSON *drv_proto_logs_chunk_build(const char *id, uint64_t seq, const void *data,
                                          size_t len, bool eof, drv_error_t *err);

/* The final chunk of a request that cannot be served ("pod default/web: not found"). */
DRV_API cJSON *drv_proto_logs_error_build(const char *id, uint64_t seq, const char *message,
                                          drv_error_t *err);

typedef struct drv_proto_logs_chunk {
    char id[DRV_PROTO_ID_MAX + 1];
    uint64_t seq;
    unsigned char *data; /* owned (free()), NULL when len == 0 */
    size_t len;
    bool eof;
    char error[256]; /* "" or why no (more) log can be sent; set only with eof */
} drv_proto_logs_chunk_t;

DRV_API DRV_NODISCARD drv_err_t drv_proto_logs_chunk_parse(const char *payload, size_t len,
                                                           drv_proto_logs_chunk_t *out,
                                                           drv_error_t *err);
DRV_API void drv_proto_logs_chunk_free(drv_proto_logs_chunk_t *c);

/* ---- reconnect back-off (exponential, full jitter) ---- */

typedef struct drv_proto_backoff {
    uint32_t min_ms; /* first ceiling, e.g. 500 */
    uint32_t max_ms; /* ceiling cap, e.g. 30000 */
    uint32_t cur_ms; /* current ceiling */
    uint64_t rng;    /* xorshift state; never 0 */
} drv_proto_backoff_t;

/* seed 0 takes one from getrandom(). */
DRV_API void drv_proto_backoff_init(drv_proto_backoff_t *b, uint32_t min_ms, uint32_t max_ms,
                                    uint64_t seed);
/* Delay before the next attempt: uniform in [0, ceiling]; then the ceiling doubles up to
 * max_ms. */
DRV_API uint32_t drv_proto_backoff_next(drv_proto_backoff_t *b);
/* After a stable connection: the ceiling goes back to min_ms. */
DRV_API void drv_proto_backoff_reset(drv_proto_backoff_t *b);

#endif
