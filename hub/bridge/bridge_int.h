/* Private to hub/bridge: the per-node desired-state cache (desired.c) shared with the MQTT
 * side (bridge.c). */
#ifndef DROVER_HUB_BRIDGE_INT_H
#define DROVER_HUB_BRIDGE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "bridge/bridge.h"
#include "drover/digest.h"
#include "drover/map.h"
#include "drover/netstate.h"
#include "drover/protocol.h"
#include "sign/sign.h"

typedef struct bpod bpod_t;

/* What a Node says about its place in the pod network (network.c), read from the store's
 * change log, plus the address the broker saw its device connect from. */
#define BNET_ADDR_MAX 46 /* INET6_ADDRSTRLEN */
typedef struct bnode_net {
    char pod_cidr[19];                           /* spec.podCIDR, "" none */
    char key[DRV_NET_KEY_LEN + 1];               /* drover.io/wireguard-public-key */
    uint16_t port;                               /* drover.io/wireguard-port, 0 none */
    char endpoint_set[DRV_NET_ENDPOINT_MAX + 1]; /* drover.io/wireguard-endpoint */
    char observed_ann[BNET_ADDR_MAX];            /* drover.io/observed-address */
    char observed[BNET_ADDR_MAX];                /* seen by the broker in this hub's run */
    char addresses[512];                         /* "\nIP\nIP\n": InternalIP, ExternalIP */
    char first_internal[BNET_ADDR_MAX];
    bool relay_label; /* drover.io/relay=true */
    bool exists;      /* the Node is in the store */
    /* Derived: where its peers send their first handshake ("" behind a NAT). */
    char endpoint[DRV_NET_ENDPOINT_MAX + 1];
} bnode_net_t;

/* The cluster-wide part of every node's network section, kept from the store's change log:
 * the objects as compact canonical text, so that a change that does not alter that text
 * (a pod's restart count) changes nothing. */
typedef struct bnet {
    drv_map_t services;   /* "ns/name" -> bnet_obj_t (text: the Service's spec) */
    drv_map_t slices;     /* "ns/name" -> bnet_obj_t (group: "ns/<service name>") */
    drv_map_t pods;       /* "ns/name" -> bnet_obj_t (text: the pods[] entry) */
    drv_map_t namespaces; /* name -> bnet_obj_t (text: the namespaces[] entry) */
    drv_map_t policies;   /* "ns/name" -> bnet_obj_t (text: the policy) */
    bool changed;         /* something network-relevant changed: every node is marked */
    bool stale;           /* shared must be built again */
    cJSON *shared;        /* the members every node's section has alike */
    drv_digest_t shared_sum;
    drv_net_cidr_t cluster_cidr, service_cidr;
    char cluster_domain[DRV_NET_DOMAIN_MAX + 1];
    /* Built with shared: every node that is a peer, by name (a podCIDR overlapping another's
     * leaves both out), and the relay (NULL: none). */
    struct bpeer *peers;
    size_t npeers;
    const struct bnode *relay;
} bnet_t;

/* Why the hub wants a node's full status report again. */
typedef enum bstale {
    BSTALE_NEVER = 0,  /* none since the bridge started (a hub restart) */
    BSTALE_OVERRIDDEN, /* the hub wrote status on its behalf (NotReady, pods not Ready) */
    BSTALE_SESSION,    /* the broker lost the hub's session: reports may have been dropped */
} bstale_t;

typedef struct bnode {
    char name[DRV_PROTO_NODE_MAX + 1];
    bpod_t *pods; /* desired pods bound here, a list in no order */
    size_t npods;
    char *refs; /* "\nc:ns/name\ns:ns/name\n" of the last document built */
    bool dirty;
    bool published;
    drv_digest_t sum; /* content of the last document published */
    uint64_t generation;
    int64_t last_seen_ms; /* -1: not heard of since the bridge started */
    bool online;
    uint64_t observed_generation;
    /* The store holds the node's own latest full report: one arrived since the bridge
     * started (or the broker lost the hub's session), and the hub wrote nothing over it since
     * (drv_bridge_report_stale). While false, the node's heartbeats ask for a resync. */
    bool reported;
    uint8_t stale_why;       /* why not reported: a bstale_t */
    uint32_t labels_refused; /* hash of the label keys last refused (an event per change) */
    /* Agent runs (drv_proto instance ids): the current one, the one it replaced and when. Two
     * ids that keep alternating are two devices with one identity (a copied card). */
    char instance[DRV_PROTO_INSTANCE_MAX + 1];
    char prev_instance[DRV_PROTO_INSTANCE_MAX + 1];
    int64_t instance_since_ms;
    int64_t duplicate_ms;     /* when two runs last alternated */
    bool duplicate;           /* the Node's DuplicateIdentity condition is True */
    bool force;               /* publish even if the content is unchanged (a resync) */
    int64_t last_resync_ms;   /* when a resync was last asked for */
    int64_t events_refill_ms; /* event rate limit (a token bucket): last refill */
    unsigned events_tokens;   /* events it may still send now */
    uint32_t net_refused; /* hash of the last refused nodeStatus.network (an event per change) */
    int64_t token_due;    /* Unix s: its pods' first service account token renewal; 0 none */
    bnode_net_t net;
    /* The signer (signer.c): documents handed to it for this node (the latest's number, to
     * tell a stale result), and its job still waiting, if any (under the signer's lock). */
    uint64_t sign_seq;
    struct bsign_job *sign_waiting;
} bnode_t;

struct bpod {
    char *key;                       /* "namespace/name" */
    char uid[DRV_PROTO_UID_MAX + 1]; /* metadata.uid: usage reports must name it */
    char *text;                      /* the pod as the agent gets it, compact canonical JSON */
    drv_digest_t text_sum;           /* of text: what a node's document digest is made of */
    /* A keyed hash of what text is made of but the spec, plus metadata.generation (the store
     * bumps it whenever apiVersion, kind or spec change): equal, the store's change was to
     * status alone and text is not made again. */
    uint64_t meta_hash;
    bnode_t *node;
    bpod_t *prev, *next;
};

typedef struct bdesired {
    /* Keys are owned by the entries they point to; names come from API clients, hence the
     * seeded drv_map. */
    drv_map_t nodes; /* name -> bnode_t */
    drv_map_t pods;  /* key -> bpod_t */
    drv_map_t cms;   /* key -> bdata_t */
    drv_map_t secrets;
    drv_map_t pvs;     /* PersistentVolume name -> bpv_t (desired.c) */
    uint64_t since_rv; /* change log consumed up to here */
    size_t ndirty;
    /* Set by the bridge (drv_bridge_opts_t): the key documents are signed with (NULL: sent
     * unsigned, only in unit tests), a node's public key for sealing its Secrets, and whether
     * a node without one gets them in clear. */
    const char *signing_key;
    struct drv_hsign *sign; /* made from signing_key when first needed (hub/sign) */
    const char *sign_for;   /* the signing_key sign was made from */
    drv_bridge_node_key_fn node_key;
    void *node_key_ctx;
    bool clear_secrets;
    drv_bridge_sa_token_fn sa_token;
    void *sa_token_ctx;
    int64_t token_refresh_at; /* Unix s: the earliest bnode_t.token_due; 0 none */
    bnet_t net;
} bdesired_t;

/* Prepares an empty cache (seeds its maps). */
void bdesired_init(bdesired_t *d);
/* The node's entry, created if absent (NULL only without memory or for a bad name). */
bnode_t *bdesired_node(bdesired_t *d, const char *name);
/* Marks n's document to be built again. */
void bdesired_mark(bdesired_t *d, bnode_t *n);
/* Loads everything from the store (used at start and when the change log was outrun). */
DRV_NODISCARD drv_err_t bdesired_load(bdesired_t *d, drv_hstore_t *s, drv_error_t *err);
/* Applies the store's changes since the last call; marks the nodes whose documents change. */
DRV_NODISCARD drv_err_t bdesired_follow(bdesired_t *d, drv_hstore_t *s, drv_error_t *err);
/* Builds node's document with generation gen; *sum gets the content digest (generation
 * excluded). When n was published with that digest and is not forced, *unchanged (may be
 * NULL: always build) is set and NULL returned without building. Otherwise its Secrets are
 * sealed to the node's key and the document signed. Returns the payload (malloc'd) or NULL
 * with err set. */
char *bdesired_build(bdesired_t *d, bnode_t *n, uint64_t gen, drv_digest_t *sum, size_t *len,
                     bool *unchanged, drv_error_t *err);
/* bdesired_build in two steps, so that the second can run off the hub's loop: the document
 * as a new tree (Secrets and tokens already sealed, not yet encoded nor signed; NULL with
 * *unchanged or err as bdesired_build), then its payload: encoded and signed with sign (NULL:
 * unsigned; drv_hsign_sign, safe from any thread), malloc'd, or NULL with err set (over the size
 * cap: DRV_ERR_TOOBIG). bdesired_finish touches nothing of the cache: any thread may call it. */
cJSON *bdesired_prepare(bdesired_t *d, bnode_t *n, uint64_t gen, drv_digest_t *sum, bool *unchanged,
                        drv_error_t *err);
char *bdesired_finish(struct drv_hsign *sign, const char *node, const cJSON *doc, size_t *len,
                      drv_error_t *err);
void bdesired_free(bdesired_t *d);
/* At now (Unix s): marks the nodes with a pod's token due for renewal. */
void bdesired_tokens_due(bdesired_t *d, int64_t now);

/* ---- the signer (signer.c) ----
 * Encodes, signs and publishes documents on a thread of its own (bdesired_finish, then
 * drv_mqtt_publish, retained, QoS 1), in the order handed over, so that a node's documents
 * reach the broker oldest first. Results come back to the loop through bsigner_collect. */
typedef struct bsign_job bsign_job_t;
typedef struct bsigner bsigner_t;
struct drv_mqtt;

typedef struct bsigner_stats {
    uint64_t submitted;     /* jobs queued */
    uint64_t coalesced;     /* documents that replaced a waiting one of their node */
    uint64_t done;          /* jobs signed (or failed) */
    uint64_t full;          /* submits refused: the queue was full */
    uint64_t publish_waits; /* the MQTT client's queue was full: the signer waited */
    size_t waiting;
} bsigner_stats_t;

typedef struct bsigner_result {
    bnode_t *node;
    uint64_t generation;
    const drv_digest_t *sum;
    bool latest;         /* no newer document was handed over for the node since */
    drv_err_t rc;        /* DRV_OK: published (handed to the MQTT client) */
    size_t len;          /* payload bytes */
    const char *payload; /* the payload, only for a signer without an MQTT client (tests) */
    const char *error;   /* why not, when rc is not DRV_OK */
} bsigner_result_t;
typedef void (*bsigner_result_fn)(void *ctx, const bsigner_result_t *r);

/* A signer with signing_key (NULL: unsigned) publishing to mqtt (NULL: nowhere, for tests),
 * holding at most max_waiting jobs. thread false: no thread, jobs run in bsigner_run_one
 * (tests). Both borrowed pointers must outlive it. */
DRV_NODISCARD drv_err_t bsigner_new(const char *signing_key, struct drv_mqtt *mqtt,
                                    size_t max_waiting, bool thread, bsigner_t **out,
                                    drv_error_t *err);
/* Hands n's document doc (taken, also on failure) with generation gen and content sum over.
 * If n has a job still waiting, doc replaces its document (coalescing: one job per node
 * waits). DRV_ERR_AGAIN when max_waiting jobs wait already (doc is freed: the caller keeps n
 * marked and builds it again later). Loop thread only. */
DRV_NODISCARD drv_err_t bsigner_submit(bsigner_t *s, bnode_t *n, cJSON *doc, uint64_t gen,
                                       const drv_digest_t *sum, drv_error_t *err);
/* Calls cb for every finished job (loop thread; r valid during the call); returns how many. */
size_t bsigner_collect(bsigner_t *s, bsigner_result_fn cb, void *ctx);
/* Jobs waiting, running or finished but not collected. */
size_t bsigner_pending(bsigner_t *s);
/* Without a thread: runs the oldest waiting job here. */
void bsigner_run_one(bsigner_t *s);
void bsigner_stats(bsigner_t *s, bsigner_stats_t *out);
/* Stops the thread (after the job it is running) and drops what still waits. */
void bsigner_free(bsigner_t *s);

/* ---- storage (storage.c) ---- */

/* Takes nodeStatus.storage of node's report: dir (dirsz bytes) gets its storage directory
 * ("" when absent or refused), and the Released Delete volumes of this node it lists as
 * removed are deleted. Returns whether the store changed. */
bool bstorage_ingest(drv_hstore_t *s, const char *node, const cJSON *storage, char *dir,
                     size_t dirsz);

/* ---- the network section (network.c) ---- */

#define BNET_ANN_KEY "drover.io/wireguard-public-key"
#define BNET_ANN_PORT "drover.io/wireguard-port"
#define BNET_ANN_ENDPOINT "drover.io/wireguard-endpoint"
#define BNET_ANN_OBSERVED "drover.io/observed-address"
#define BNET_LABEL_RELAY "drover.io/relay"

/* Empty tables, the default ranges (10.42.0.0/16, 10.43.0.0/16, cluster.local). */
void bnet_init(bdesired_t *d);
/* Other ranges (NULL keeps the default); DRV_ERR_INVALID naming a bad one. */
DRV_NODISCARD drv_err_t bnet_config(bdesired_t *d, const char *cluster_cidr,
                                    const char *service_cidr, const char *domain, drv_error_t *err);
void bnet_free(bdesired_t *d);
/* Forgets every object (before a reload); node facts are read again from the Nodes. */
void bnet_clear(bdesired_t *d);
/* An object of kind as it now is in the store (obj NULL: deleted). key "ns/name". */
void bnet_apply(bdesired_t *d, drv_kind_t kind, const char *key, const cJSON *obj);
/* The Node n as it now is (NULL: deleted). */
void bnet_node(bdesired_t *d, bnode_t *n, const cJSON *obj);
/* The broker saw n's device connect from addr (an IP address). */
void bnet_observed(bdesired_t *d, bnode_t *n, const char *addr);
/* After a batch of changes: a network-relevant one marks every node. */
void bnet_settle(bdesired_t *d);
/* n's own part of its section (podCIDR, listenPort, peers) into *part (NULL: n has no
 * podCIDR yet: no section), and what its whole section holds into h. */
DRV_NODISCARD drv_err_t bnet_part(bdesired_t *d, bnode_t *n, drv_sha256_t *h, cJSON **part,
                                  drv_error_t *err);
/* Adds the section (part, taken, with the shared members) to doc as "network". */
DRV_NODISCARD drv_err_t bnet_attach(bdesired_t *d, cJSON *doc, cJSON *part, drv_error_t *err);
/* A WireGuard key as agents report it: 44 characters of base64 for 32 bytes. */
bool bnet_key_ok(const char *key);
/* addr as the hub keeps it: an IPv4 or IPv6 address (an IPv4-mapped one as IPv4) into out;
 * false if it is none. */
bool bnet_addr_norm(const char *addr, char out[BNET_ADDR_MAX]);

/* The pod as sent to agents: apiVersion, kind, metadata (name, namespace, uid, labels,
 * annotations, ownerReferences) and spec; status and bookkeeping left out. New tree. */
cJSON *bdesired_strip_pod(const cJSON *pod);

#endif
