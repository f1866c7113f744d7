/* Private to the store and its tests: knobs that production code has no reason to turn. */
#ifndef DROVER_HUB_STORE_INT_H
#define DROVER_HUB_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* How many change-log entries are kept (default DRV_HSTORE_LOG_KEEP); tests lower it to
 * exercise pruning. Takes effect at the next change. keep 0 is raised to 1. */
void drv_hstore_set_log_keep(drv_hstore_t *s, uint64_t keep);

/* Takes the database for this connection alone until it is closed (SQLite's exclusive locking
 * mode); DRV_ERR_AGAIN naming the file when another connection (a running hub) has it open.
 * Key rotation uses it so that no hub keeps writing with a key it is about to drop. */
DRV_NODISCARD drv_err_t drv_hstore_lock_exclusive(drv_hstore_t *s, drv_error_t *err);

/* namespaces.c: with the namespace lifecycle on (drv_hstore_namespaces_enable), every create
 * of a namespaced object first passes this: a missing namespace ns is created, one being
 * terminated refuses (DRV_ERR_PERM). */
DRV_NODISCARD drv_err_t hstore_ns_admit(drv_hstore_t *s, const char *ns, drv_error_t *err);
/* Turns the lifecycle on or off (store.c). */
void hstore_set_namespaces(drv_hstore_t *s, bool on);
/* priority.c: a Pod being created gets spec.priority from its PriorityClass. */
void hstore_set_priorities(drv_hstore_t *s, bool on);
DRV_NODISCARD drv_err_t hstore_priority_admit(drv_hstore_t *s, cJSON *pod, drv_error_t *err);

/* canon.c: edits of an object's canonical text (drv_model_to_json's compact print, keys in
 * order) that give what printing the edited tree would, without the tree. Each returns NULL
 * (malloc'd text otherwise) when the text is not such an object or the edit does not apply:
 * the caller then edits the tree. Keys and the member names looked for are plain (no escapes). */
typedef struct hstore_canon_span {
    bool found;
    size_t at, val, end; /* the member's '"', its value's first byte, the byte after it */
    size_t insert;       /* where a member named key goes when absent (its key order) */
} hstore_canon_span_t;
/* The top-level member key of the object text t[0..len). false: not a walkable object. */
bool hstore_canon_find(const char *t, size_t len, const char *key, hstore_canon_span_t *out);
/* t with metadata.<key>'s value (which must exist) replaced by value (JSON text). */
char *hstore_canon_set_meta(const char *t, const char *key, const char *value);
/* The JSON text of metadata.<key>; "" when absent. */
char *hstore_canon_meta_member(const char *t, const char *key);
/* t without its top-level member key (t itself when absent). */
char *hstore_canon_without(const char *t, const char *key);
/* t with the top-level member key (which must be absent) set to value, in key order. */
char *hstore_canon_with(const char *t, const char *key, const char *value);

#endif
