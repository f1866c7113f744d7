/* Private to the store and its tests: knobs that production code has no reason to turn. */
#ifndef DROVER_HUB_STORE_INT_H
#define DROVER_HUB_STORE_INT_H

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

#endif
