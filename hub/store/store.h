/* The hub's state: every object of the resource model in one SQLite database (WAL, versioned
 * schema with migrations) in the hub's data directory, with Kubernetes' semantics:
 *  - one resourceVersion counter for the whole store, bumped by every change and written into
 *    metadata.resourceVersion (a decimal string) of the object changed;
 *  - metadata.uid (a random UUID v4) and metadata.creationTimestamp (RFC 3339) set on create;
 *  - metadata.generation starting at 1 and bumped when anything outside metadata and status
 *    changes;
 *  - status kept apart from the rest: update never changes it, update_status changes only it;
 *  - an update that names a metadata.resourceVersion other than the stored one is a
 *    DRV_ERR_CONFLICT (HTTP 409); one that names none overwrites;
 *  - a change log (ADDED / MODIFIED / DELETED with the object as it then was) that a watch
 *    reads from any resourceVersion still retained (the last DRV_HSTORE_LOG_KEEP changes);
 *    older is DRV_ERR_RANGE (HTTP 410 Gone: list again).
 * Objects go in normalized (drv_model_normalize) and come out as the caller's own cJSON trees.
 * Durability: WAL with synchronous=NORMAL: a crash or power cut never corrupts the database, a
 * power cut may lose the last transactions committed before it (a process crash loses none).
 * A stored row that is not valid JSON is reported with its key (DRV_ERR_IO) by get and update,
 * skipped with an error log line by list and changes, and can be deleted.
 * Not thread-safe: the hub calls it from its one event loop. */
#ifndef DROVER_HUB_STORE_H
#define DROVER_HUB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "drover/error.h"
#include "drover/model.h"
#include "drover/pki.h"
#include "drover/protocol.h"
#include "drover/selector.h"

#define DRV_HSTORE_LOG_KEEP 10000
#define DRV_HSTORE_SCHEMA_VERSION 3
/* The largest object (compact JSON, status included) stored: bigger is DRV_ERR_TOOBIG. */
#define DRV_HSTORE_OBJECT_MAX (1536 * 1024)

typedef struct drv_hstore drv_hstore_t;

/* Opens (creating, migrating) the database at path. *out is owned by the caller. A database
 * from a newer Drover (schema version above ours) is refused with DRV_ERR_UNSUPPORTED; a file
 * that is not a Drover store with DRV_ERR_INVALID. The file is created with mode 0600. */
DRV_NODISCARD drv_err_t drv_hstore_open(const char *path, drv_hstore_t **out, drv_error_t *err);
void drv_hstore_close(drv_hstore_t *s);

/* Groups every write until drv_hstore_batch_end into one transaction: a controller round or
 * a burst of status reports commits once instead of once per object (several times faster).
 * Each write inside stays atomic on its own (a savepoint): one that fails leaves the others.
 * Readers on this store see the writes at once. Not nestable (DRV_ERR_INVALID). If the final
 * commit fails, every write of the batch is lost and the error says why. */
DRV_NODISCARD drv_err_t drv_hstore_batch_begin(drv_hstore_t *s, drv_error_t *err);
DRV_NODISCARD drv_err_t drv_hstore_batch_end(drv_hstore_t *s, drv_error_t *err);
/* Ends the batch dropping every write made in it (for a group of writes that must all happen
 * or none). Watches are not told of dropped writes: use only for writes nobody watches yet
 * (tokens, identities). No batch: a no-op. */
void drv_hstore_batch_abort(drv_hstore_t *s);
/* Lets the open batch give way, so that a batch of thousands of writes (a controller round
 * making and binding a burst of pods) does not hold the hub's loop for seconds: from then on,
 * drv_hstore_batch_point, at most every period_ms, commits the batch's writes so far, calls
 * fn(ctx) (the hub's loop serves what waits: API requests, MQTT messages, watchers, which may
 * write in their own transactions) and opens a new batch with the same settings. Writers that
 * make many objects call drv_hstore_batch_point between two of them; objects they hold may
 * have changed meanwhile (their updates check resourceVersions). Ended with the batch. */
typedef void (*drv_hstore_yield_fn)(void *ctx);
void drv_hstore_batch_set_yield(drv_hstore_t *s, long long period_ms, drv_hstore_yield_fn fn,
                                void *ctx);
/* DRV_OK at once outside a batch, without a yield or before its time. A failed commit returns
 * its error as drv_hstore_batch_end would (that part's writes are lost) and leaves no batch
 * open: the writes after it commit one by one. */
DRV_NODISCARD drv_err_t drv_hstore_batch_point(drv_hstore_t *s, drv_error_t *err);

/* The current resourceVersion (0 for an empty store). */
uint64_t drv_hstore_rv(const drv_hstore_t *s);

/* Stores a new object; obj (normalized) gets uid, resourceVersion, creationTimestamp,
 * generation filled in (in place). A namespaced kind without metadata.namespace uses
 * "default". DRV_ERR_EXISTS if kind/namespace/name is taken. A metadata.generateName without
 * a name gets a name made of it and five random characters (retried on a clash). A status in
 * obj is stored as the initial status. On failure obj is unchanged. */
DRV_NODISCARD drv_err_t drv_hstore_create(drv_hstore_t *s, drv_kind_t kind, cJSON *obj,
                                          drv_error_t *err);

/* The object as stored (with status), a new tree owned by the caller. ns is ignored for
 * cluster-scoped kinds (Node). DRV_ERR_NOTFOUND if absent. */
DRV_NODISCARD drv_err_t drv_hstore_get(drv_hstore_t *s, drv_kind_t kind, const char *ns,
                                       const char *name, cJSON **out, drv_error_t *err);

/* Every object of kind in ns (NULL: all namespaces) whose labels match sel (NULL: all),
 * ordered by namespace then name, as a new JSON array owned by the caller. *rv (may be NULL)
 * gets the resourceVersion the list is consistent with. */
DRV_NODISCARD drv_err_t drv_hstore_list(drv_hstore_t *s, drv_kind_t kind, const char *ns,
                                        const drv_selector_t *sel, cJSON **items, uint64_t *rv,
                                        drv_error_t *err);

/* Keeps an object of a listing (true) or drops it; obj is only read. */
typedef bool (*drv_hstore_filter_fn)(const cJSON *obj, void *ctx);

/* One page of drv_hstore_list, in its order (namespace, name), read from the index as a key
 * range: the objects after (after_ns, after_name) (NULL, NULL: from the first) that sel and
 * keep (may be NULL) keep, at most limit (0: all). *remaining gets how many more such objects
 * follow the page: from the index alone without sel and keep, from the labels column with
 * sel only; with keep every later row is parsed to count it. The key need not be an object
 * that exists (a continue token's object may have been deleted since). */
DRV_NODISCARD drv_err_t drv_hstore_list_page(drv_hstore_t *s, drv_kind_t kind, const char *ns,
                                             const drv_selector_t *sel, drv_hstore_filter_fn keep,
                                             void *ctx, const char *after_ns,
                                             const char *after_name, size_t limit, cJSON **items,
                                             size_t *remaining, uint64_t *rv, drv_error_t *err);

/* Every object of kind in all namespaces, as drv_hstore_list gives them (in (namespace, name)
 * order), but parsed once and shared: the store keeps the listing and hands the same array to
 * every caller; after writes, the next call brings it up to date from the change log, parsing
 * only the objects that changed (every row again only when the log does not reach back far
 * enough, or after a rollback). So the controllers of a round, and of the rounds after it, do
 * not parse every pod once each. *items belongs to the store and must not be modified; it stays
 * valid until the next drv_hstore_list_shared of the same kind, a failed or aborted batch, or
 * drv_hstore_close, whichever comes first; writes in between do not change it (a caller may
 * delete what it iterates over). The listings are kept between batches: their memory is the
 * hub's parsed copy of those objects, like a Kubernetes informer's cache. Secrets are refused
 * (DRV_ERR_INVALID): their clear text is not kept. */
DRV_NODISCARD drv_err_t drv_hstore_list_shared(drv_hstore_t *s, drv_kind_t kind,
                                               const cJSON **items, drv_error_t *err);

/* Replaces an object's metadata (labels, annotations, ownerReferences) and spec/data from obj,
 * keeping uid, creationTimestamp and status; obj is updated in place to what is stored.
 * DRV_ERR_NOTFOUND, DRV_ERR_CONFLICT (stale resourceVersion). Storing what is already there
 * changes nothing (no new resourceVersion, no log entry). */
DRV_NODISCARD drv_err_t drv_hstore_update(drv_hstore_t *s, drv_kind_t kind, cJSON *obj,
                                          drv_error_t *err);

/* Replaces only the status of an object (takes ownership of status, a JSON object, on success
 * and failure). rv_out (may be NULL) gets the new resourceVersion. An identical status
 * changes nothing (rv_out then gets the object's current one). */
DRV_NODISCARD drv_err_t drv_hstore_update_status(drv_hstore_t *s, drv_kind_t kind, const char *ns,
                                                 const char *name, cJSON *status, uint64_t *rv_out,
                                                 drv_error_t *err);

/* Removes an object; *deleted (may be NULL) gets it as it was, with the resourceVersion of the
 * deletion (as the DELETED event carries it; NULL if the stored row was corrupt).
 * DRV_ERR_NOTFOUND if absent. */
DRV_NODISCARD drv_err_t drv_hstore_delete(drv_hstore_t *s, drv_kind_t kind, const char *ns,
                                          const char *name, cJSON **deleted, drv_error_t *err);

/* ---- namespaces (hub/store/namespaces.c) ----
 * Turns on the namespace lifecycle the hub runs with (a bare store, the unit tests', has none):
 * the system namespaces (default, kube-system, kube-public, kube-node-lease) are created when
 * absent; from then on a create of a namespaced object in a namespace that does not exist
 * creates that Namespace first (Drover always accepted objects in any namespace: existing
 * manifests rely on it), and one in a namespace being terminated (status.phase Terminating)
 * is DRV_ERR_PERM with Kubernetes' message. A Namespace is made with the label
 * kubernetes.io/metadata.name and status.phase Active. */
DRV_NODISCARD drv_err_t drv_hstore_namespaces_enable(drv_hstore_t *s, drv_error_t *err);
#define DRV_HSTORE_NS_LABEL "kubernetes.io/metadata.name"
/* Stores the built-in PriorityClasses (system-node-critical, system-cluster-critical) if
 * missing, and from then on gives a Pod being created spec.priority and preemptionPolicy from
 * its priorityClassName (or the globalDefault class), as Kubernetes' Priority admission: an
 * unknown class, or a priority or preemptionPolicy that disagrees with the class, is
 * DRV_ERR_PERM with Kubernetes' message. */
DRV_NODISCARD drv_err_t drv_hstore_priority_classes_enable(drv_hstore_t *s, drv_error_t *err);
/* Whether name is a namespace that cannot be deleted (default, kube-system, kube-public). */
bool drv_hstore_ns_protected(const char *name);

typedef enum { DRV_HSTORE_ADDED = 0, DRV_HSTORE_MODIFIED, DRV_HSTORE_DELETED } drv_hstore_change_t;

typedef struct drv_hstore_event {
    uint64_t rv;
    drv_hstore_change_t type;
    drv_kind_t kind;
    cJSON *obj; /* owned by the array's owner */
} drv_hstore_event_t;

/* The changes after since_rv (exclusive) of kind (DRV_KIND_UNKNOWN: every kind), oldest
 * first, at most max. *events is a malloc'd array (free with drv_hstore_events_free).
 * DRV_ERR_RANGE if since_rv is older than the retained log or newer than the store (the
 * client must list again). max 0 gives no events. *events is NULL when *n is 0. */
DRV_NODISCARD drv_err_t drv_hstore_changes(drv_hstore_t *s, uint64_t since_rv, drv_kind_t kind,
                                           size_t max, drv_hstore_event_t **events, size_t *n,
                                           drv_error_t *err);
void drv_hstore_events_free(drv_hstore_event_t *events, size_t n);

/* "ADDED", "MODIFIED", "DELETED". */
const char *drv_hstore_change_name(drv_hstore_change_t t);

/* ---- tokens (schema version 2) ----
 * The rows behind hub/auth's API and bootstrap tokens. Not objects: no resourceVersion, no
 * change log, no watch. The secret itself is never stored, only its SHA-256. */
#define DRV_HSTORE_TOKENS_MAX 1000 /* rows, revoked ones included */

typedef struct drv_hstore_token {
    char id[17];           /* the token's public part */
    char kind[16];         /* "api", "bootstrap" */
    char role[16];         /* api tokens: "admin", "operator", "viewer"; bootstrap: "" */
    uint8_t hash[32];      /* sha256 of the secret part */
    char description[257]; /* free text */
    int64_t created;       /* Unix seconds */
    int64_t expires;       /* Unix seconds; 0: never */
    bool revoked;
    int64_t uses_left; /* bootstrap tokens: enrolments left; -1: unlimited */
    char labels[1025]; /* bootstrap tokens: a JSON object of node labels; "" or "{}": none */
} drv_hstore_token_t;

/* Adds a token. DRV_ERR_EXISTS if the id is taken, DRV_ERR_RANGE when the table holds
 * DRV_HSTORE_TOKENS_MAX rows, DRV_ERR_INVALID for an empty id or kind. */
DRV_NODISCARD drv_err_t drv_hstore_token_add(drv_hstore_t *s, const drv_hstore_token_t *t,
                                             drv_error_t *err);
/* The token with that id into *out; DRV_ERR_NOTFOUND if absent. */
DRV_NODISCARD drv_err_t drv_hstore_token_get(drv_hstore_t *s, const char *id,
                                             drv_hstore_token_t *out, drv_error_t *err);
/* Every token, oldest first, as a malloc'd array (*out, caller frees; NULL when *n is 0). */
DRV_NODISCARD drv_err_t drv_hstore_token_list(drv_hstore_t *s, drv_hstore_token_t **out, size_t *n,
                                              drv_error_t *err);
/* Marks a token revoked (revoking twice is fine); DRV_ERR_NOTFOUND if absent. */
DRV_NODISCARD drv_err_t drv_hstore_token_revoke(drv_hstore_t *s, const char *id, drv_error_t *err);
/* Deletes the tokens that can never be used again: revoked, expired at now (Unix seconds) or
 * bootstrap tokens without uses left. *purged (may be NULL) gets how many. */
DRV_NODISCARD drv_err_t drv_hstore_token_purge(drv_hstore_t *s, int64_t now, size_t *purged,
                                               drv_error_t *err);
/* Takes one use of a token with uses left; DRV_ERR_PERM when none is left (or it is
 * unlimited (-1): the caller checks that first) or the id is absent. */
DRV_NODISCARD drv_err_t drv_hstore_token_use(drv_hstore_t *s, const char *id, drv_error_t *err);

/* ---- node identities (schema version 3) ----
 * One row per enrolled node (hub/core/enroll.c): the public key its certificate was issued
 * for, the last certificate's serial and expiry, and whether it is revoked. A revoked row is
 * kept so that its name stays taken until deleted. Not objects: no resourceVersion, no watch. */
#define DRV_HSTORE_IDENTITIES_MAX 50000 /* rows, revoked ones included */

typedef struct drv_hstore_identity {
    char node[DRV_PROTO_NODE_MAX + 1]; /* drover/protocol.h */
    char pubkey[512];                  /* PEM SubjectPublicKeyInfo of the node's P-256 key */
    char serial[41];                   /* hex */
    int64_t not_after, created;        /* unix s */
    bool revoked;
} drv_hstore_identity_t;

/* The identity of node into *out; DRV_ERR_NOTFOUND if none. */
DRV_NODISCARD drv_err_t drv_hstore_identity_get(drv_hstore_t *s, const char *node,
                                                drv_hstore_identity_t *out, drv_error_t *err);
/* Stores id, replacing the row of the same node (a re-issued certificate). created is kept
 * from an existing row. DRV_ERR_INVALID naming the field for an empty node, pubkey or serial
 * or a text too long for its field; DRV_ERR_RANGE when a new row would exceed
 * DRV_HSTORE_IDENTITIES_MAX. */
DRV_NODISCARD drv_err_t drv_hstore_identity_put(drv_hstore_t *s, const drv_hstore_identity_t *id,
                                                drv_error_t *err);
/* Every identity ordered by node name, as a malloc'd array (*out, caller frees; NULL when *n
 * is 0). */
DRV_NODISCARD drv_err_t drv_hstore_identity_list(drv_hstore_t *s, drv_hstore_identity_t **out,
                                                 size_t *n, drv_error_t *err);
/* Marks node's identity revoked (twice is fine); DRV_ERR_NOTFOUND if none. */
DRV_NODISCARD drv_err_t drv_hstore_identity_revoke(drv_hstore_t *s, const char *node,
                                                   drv_error_t *err);
/* Deletes node's identity (the name becomes free); DRV_ERR_NOTFOUND if none. */
DRV_NODISCARD drv_err_t drv_hstore_identity_delete(drv_hstore_t *s, const char *node,
                                                   drv_error_t *err);

/* ---- Secrets at rest ----
 * With keys set, the "data" and "stringData" of every Secret written are stored (object row
 * and change log) as one AES-256-GCM blob ("<key id>:<base64>", drover/pki.h) sealed with
 * keys[0] and the object's "namespace/name" as associated data, so a blob moved onto another
 * Secret does not open; the rest of the object stays plain JSON. get, list and changes decrypt
 * transparently with whichever key the blob names. A Secret whose key is missing or whose
 * blob does not open is DRV_ERR_INTEGRITY (naming it and the key) for get, update and
 * update_status, skipped with an error log line by list and changes, and can be deleted.
 * A store without keys (the unit tests') stores Secrets as plain JSON, as before; plain rows
 * stay readable with keys and are sealed by the next write or drv_hstore_reseal. */
#define DRV_HSTORE_KEYS_MAX 8

typedef struct drv_hstore_key {
    char id[DRV_PKI_KEY_ID_MAX]; /* 1-16 of [A-Za-z0-9_-] */
    unsigned char key[DRV_PKI_AEAD_KEY_LEN];
} drv_hstore_key_t;

/* Sets the keys (copied; n 0: none): keys[0] seals, every one opens. Also turns on SQLite's
 * secure_delete, so that freed pages keep no old bytes. DRV_ERR_INVALID for more than
 * DRV_HSTORE_KEYS_MAX keys, an empty or repeated id. */
DRV_NODISCARD drv_err_t drv_hstore_set_keys(drv_hstore_t *s, const drv_hstore_key_t *keys, size_t n,
                                            drv_error_t *err);

typedef struct drv_hstore_reseal {
    size_t checked;        /* Secret rows and change-log entries looked at */
    size_t resealed;       /* rewritten with keys[0] (other key or plain before) */
    size_t failed;         /* that did not open (key missing, tampered) */
    char first_error[256]; /* the first of those, "" if none */
} drv_hstore_reseal_t;

/* Re-encrypts, in one transaction, every Secret row and change-log entry not sealed with
 * keys[0] (plain ones included), and checks that every sealed one opens. strict: the first
 * row that does not open fails the whole (nothing rewritten, DRV_ERR_INTEGRITY naming it);
 * otherwise such rows are logged, counted in stats (may be NULL) and left as they are.
 * DRV_ERR_INVALID without keys or inside a batch. */
DRV_NODISCARD drv_err_t drv_hstore_reseal(drv_hstore_t *s, bool strict, drv_hstore_reseal_t *stats,
                                          drv_error_t *err);

/* The key file (hub/store/keys.c): one key a line, "<id> <base64 of 32 bytes>", the first
 * line the sealing key; '#' comment lines and blank lines are ignored. Mode 0600. */
#define DRV_HSTORE_KEY_FILE_MAX 4096

/* Reads a key file into keys (up to DRV_HSTORE_KEYS_MAX). DRV_ERR_NOTFOUND if it does not
 * exist; DRV_ERR_INVALID naming the line for a malformed one; a file readable by group or
 * others is DRV_ERR_PERM. */
DRV_NODISCARD drv_err_t drv_hstore_keys_load(const char *path, drv_hstore_key_t *keys, size_t *n,
                                             drv_error_t *err);
/* Writes a key file crash-safely (drv_file_write_atomic, mode 0600). */
DRV_NODISCARD drv_err_t drv_hstore_keys_save(const char *path, const drv_hstore_key_t *keys,
                                             size_t n, drv_error_t *err);
/* Loads the key file, or creates it with one new key ("k1") when it does not exist
 * (*created true). */
DRV_NODISCARD drv_err_t drv_hstore_keys_ensure(const char *path, drv_hstore_key_t *keys, size_t *n,
                                               bool *created, drv_error_t *err);
/* Key rotation for the store at db_path and the key file at key_path (which must exist): adds
 * a new key first in the file (the old ones kept for reading), re-encrypts every Secret with
 * it (strict drv_hstore_reseal: one row that does not open stops the rotation with the old
 * keys in place), then rewrites the file with the new key alone. new_id gets its id, stats
 * (may be NULL) what was re-encrypted. A crash in between leaves a key file that still opens
 * every row. A store open elsewhere (a running hub) is DRV_ERR_AGAIN, nothing changed. */
DRV_NODISCARD drv_err_t drv_hstore_keys_rotate(const char *db_path, const char *key_path,
                                               char new_id[DRV_PKI_KEY_ID_MAX],
                                               drv_hstore_reseal_t *stats, drv_error_t *err);
/* drv_hstore_keys_rotate on a hub's data directory: its hub.db and secret.keys. */
DRV_NODISCARD drv_err_t drv_hstore_keys_rotate_dir(const char *data_dir,
                                                   char new_id[DRV_PKI_KEY_ID_MAX],
                                                   drv_hstore_reseal_t *stats, drv_error_t *err);

/* While on, every write is made and checked as usual, then rolled back instead of committed:
 * the API's dryRun=All. The resourceVersion does not advance and no change is logged; what a
 * write hands back is what it would have stored. */
void drv_hstore_set_dry_run(drv_hstore_t *s, bool on);

#endif
