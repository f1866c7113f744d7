/* A small hash map from strings to pointers, seeded per map (SipHash-1-3 with a key from
 * getrandom) because its keys come from input: layer entry names, object names, JSON and YAML
 * keys; an unseeded hash lets crafted names collide and make every insert a long probe. Open
 * addressing with tombstones; a hard maximum of entries like drv_buf_t's. Keys are not
 * copied: each key must stay valid, unchanged, while it is in the map. */
#ifndef DROVER_MAP_H
#define DROVER_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "drover/error.h"

typedef struct drv_map {
    const char **keys; /* slots: NULL empty; owned by the map, the strings are not */
    void **vals;
    size_t cap;   /* slots, a power of two (0 until the first put) */
    size_t n;     /* live entries */
    size_t tombs; /* deleted slots */
    size_t max;   /* hard maximum for n */
    uint64_t seed[2];
    uint64_t probes; /* slots examined by lookups so far: exposed for tests and statistics */
} drv_map_t;

/* An empty map holding at most max entries, with a fresh random seed. */
DRV_API void drv_map_init(drv_map_t *m, size_t max);
/* Same with a given seed (many short-lived maps of one parse share one drv_map_seed). */
DRV_API void drv_map_init_seeded(drv_map_t *m, size_t max, const uint64_t seed[2]);
/* A fresh random seed (getrandom; a time-based one only before the kernel has entropy). */
DRV_API void drv_map_seed(uint64_t seed[2]);

/* Inserts key or replaces its value. DRV_ERR_TOOBIG past max, DRV_ERR_NOMEM; on failure the
 * map is unchanged. */
DRV_API DRV_NODISCARD drv_err_t drv_map_put(drv_map_t *m, const char *key, void *val);

/* Looks up the len bytes at key (no NUL needed): true and *val (may be NULL) if present. */
DRV_API bool drv_map_find(drv_map_t *m, const char *key, size_t len, void **val);
/* The value of a NUL-terminated key, NULL if absent. */
DRV_API void *drv_map_get(drv_map_t *m, const char *key);
/* Removes key; returns its value (NULL if absent) so the caller can free it. */
DRV_API void *drv_map_del(drv_map_t *m, const char *key);

/* Iterates: start with *iter = 0; true while an entry was returned in *key and *val (either
 * may be NULL). The map must not change during the iteration, except that the entry just
 * returned may be deleted (drv_map_del only marks its slot). */
DRV_API bool drv_map_next(const drv_map_t *m, size_t *iter, const char **key, void **val);

/* Frees the table (not the keys or values; iterate first to free those). */
DRV_API void drv_map_free(drv_map_t *m);

/* SipHash-1-3 of len bytes under key k: the hash of the map, for other input-keyed tables. */
DRV_API uint64_t drv_map_hash(const uint64_t k[2], const void *data, size_t len);

#endif
