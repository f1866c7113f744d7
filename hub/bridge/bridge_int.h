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
#include "drover/protocol.h"

typedef struct bpod bpod_t;

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
} bnode_t;

struct bpod {
    char *key;                       /* "namespace/name" */
    char uid[DRV_PROTO_UID_MAX + 1]; /* metadata.uid: usage reports must name it */
    char *text;                      /* the pod as the agent gets it, compact canonical JSON */
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
    uint64_t since_rv; /* change log consumed up to here */
    size_t ndirty;
    /* Set by the bridge (drv_bridge_opts_t): the key documents are signed with (NULL: sent
     * unsigned, only in unit tests), a node's public key for sealing its Secrets, and whether
     * a node without one gets them in clear. */
    const char *signing_key;
    drv_bridge_node_key_fn node_key;
    void *node_key_ctx;
    bool clear_secrets;
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
void bdesired_free(bdesired_t *d);

/* The pod as sent to agents: apiVersion, kind, metadata (name, namespace, uid, labels,
 * annotations, ownerReferences) and spec; status and bookkeeping left out. New tree. */
cJSON *bdesired_strip_pod(const cJSON *pod);

#endif
