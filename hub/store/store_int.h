/* Private to the store and its tests: knobs that production code has no reason to turn. */
#ifndef DROVER_HUB_STORE_INT_H
#define DROVER_HUB_STORE_INT_H

#include <stdint.h>

#include "store/store.h"

/* How many change-log entries are kept (default DRV_HSTORE_LOG_KEEP); tests lower it to
 * exercise pruning. Takes effect at the next change. keep 0 is raised to 1. */
void drv_hstore_set_log_keep(drv_hstore_t *s, uint64_t keep);

#endif
