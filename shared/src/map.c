/* Seeded string hash map (see map.h): SipHash-1-3, linear probing, tombstones for deletes,
 * grown at 70% load counting tombstones. */
#include "drover/map.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define MAP_MIN_CAP 64

/* The slot marker of a deleted entry: an address no caller's key can have. */
static const char map_tomb[1];

#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL64(v1, 13);                                                                       \
        v1 ^= v0;                                                                                  \
        v0 = ROTL64(v0, 32);                                                                       \
        v2 += v3;                                                                                  \
        v3 = ROTL64(v3, 16);                                                                       \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL64(v3, 21);                                                                       \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL64(v1, 17);                                                                       \
        v1 ^= v2;                                                                                  \
        v2 = ROTL64(v2, 32);                                                                       \
    } while (0)

uint64_t drv_map_hash(const uint64_t k[2], const void *data, size_t len)
{
    const unsigned char *in = data;
    uint64_t v0 = UINT64_C(0x736f6d6570736575) ^ k[0];
    uint64_t v1 = UINT64_C(0x646f72616e646f6d) ^ k[1];
    uint64_t v2 = UINT64_C(0x6c7967656e657261) ^ k[0];
    uint64_t v3 = UINT64_C(0x7465646279746573) ^ k[1];
    uint64_t b = (uint64_t)len << 56;
    const unsigned char *end = in + (len - (len % 8));
    for (; in != end; in += 8) {
        uint64_t m = 0;
        for (int i = 0; i < 8; i++)
            m |= (uint64_t)in[i] << (8 * i);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t)in[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

void drv_map_seed(uint64_t seed[2])
{
    if (getrandom(seed, 2 * sizeof(seed[0]), GRND_NONBLOCK) == (ssize_t)(2 * sizeof(seed[0])))
        return;
    /* No entropy yet (early boot): weaker, but still not a constant an attacker can know. */
    struct timespec ts = {0};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    seed[0] = (uint64_t)ts.tv_nsec * UINT64_C(0x9E3779B97F4A7C15) ^ (uint64_t)(uintptr_t)seed;
    seed[1] = (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&drv_map_seed;
}

void drv_map_init_seeded(drv_map_t *m, size_t max, const uint64_t seed[2])
{
    memset(m, 0, sizeof(*m));
    m->max = max;
    m->seed[0] = seed[0];
    m->seed[1] = seed[1];
}

void drv_map_init(drv_map_t *m, size_t max)
{
    uint64_t seed[2];
    drv_map_seed(seed);
    drv_map_init_seeded(m, max, seed);
}

static bool key_is(const char *slot, const char *key, size_t len)
{
    return strncmp(slot, key, len) == 0 && slot[len] == '\0';
}

/* The slot of key if present (*found), else the slot to insert it at (the first tombstone on
 * the way, or the empty slot that ended the probe). The table must have an empty slot. */
static size_t find_slot(drv_map_t *m, const char *key, size_t len, bool *found)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)drv_map_hash(m->seed, key, len) & mask;
    size_t tomb = SIZE_MAX;
    *found = false;
    for (;; i = (i + 1) & mask) {
        m->probes++;
        const char *k = m->keys[i];
        if (k == NULL)
            return tomb != SIZE_MAX ? tomb : i;
        if (k == map_tomb) {
            if (tomb == SIZE_MAX)
                tomb = i;
        } else if (key_is(k, key, len)) {
            *found = true;
            return i;
        }
    }
}

static drv_err_t rehash(drv_map_t *m, size_t ncap)
{
    const char **keys = calloc(ncap, sizeof(*keys));
    void **vals = calloc(ncap, sizeof(*vals));
    if (keys == NULL || vals == NULL) {
        free(keys);
        free(vals);
        return DRV_ERR_NOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        const char *k = m->keys[i];
        if (k == NULL || k == map_tomb)
            continue;
        size_t j = (size_t)drv_map_hash(m->seed, k, strlen(k)) & (ncap - 1);
        while (keys[j] != NULL)
            j = (j + 1) & (ncap - 1);
        keys[j] = k;
        vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = ncap;
    m->tombs = 0;
    return DRV_OK;
}

drv_err_t drv_map_put(drv_map_t *m, const char *key, void *val)
{
    if (key == NULL)
        return DRV_ERR_INVALID;
    size_t len = strlen(key);
    bool found = false;
    size_t i = 0;
    if (m->cap > 0) {
        i = find_slot(m, key, len, &found);
        if (found) {
            m->keys[i] = key;
            m->vals[i] = val;
            return DRV_OK;
        }
    }
    if (m->n >= m->max)
        return DRV_ERR_TOOBIG;
    if ((m->n + m->tombs + 1) * 10 > m->cap * 7) {
        size_t ncap = m->cap ? m->cap : MAP_MIN_CAP;
        while ((m->n + 1) * 10 > ncap * 5) /* after a rehash at most half full */
            ncap *= 2;
        drv_err_t rc = rehash(m, ncap);
        if (rc != DRV_OK)
            return rc;
        i = find_slot(m, key, len, &found);
    }
    if (m->keys[i] == map_tomb)
        m->tombs--;
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
    return DRV_OK;
}

bool drv_map_find(drv_map_t *m, const char *key, size_t len, void **val)
{
    if (m->cap == 0 || key == NULL)
        return false;
    bool found;
    size_t i = find_slot(m, key, len, &found);
    if (found && val != NULL)
        *val = m->vals[i];
    return found;
}

void *drv_map_get(drv_map_t *m, const char *key)
{
    void *v = NULL;
    return key != NULL && drv_map_find(m, key, strlen(key), &v) ? v : NULL;
}

void *drv_map_del(drv_map_t *m, const char *key)
{
    if (m->cap == 0 || key == NULL)
        return NULL;
    bool found;
    size_t i = find_slot(m, key, strlen(key), &found);
    if (!found)
        return NULL;
    void *v = m->vals[i];
    m->keys[i] = map_tomb;
    m->vals[i] = NULL;
    m->n--;
    m->tombs++;
    return v;
}

bool drv_map_next(const drv_map_t *m, size_t *iter, const char **key, void **val)
{
    for (size_t i = *iter; i < m->cap; i++) {
        if (m->keys[i] == NULL || m->keys[i] == map_tomb)
            continue;
        if (key)
            *key = m->keys[i];
        if (val)
            *val = m->vals[i];
        *iter = i + 1;
        return true;
    }
    *iter = m->cap;
    return false;
}

void drv_map_free(drv_map_t *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->n = m->tombs = 0;
}
