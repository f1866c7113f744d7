/* Growable array of fixed-size elements with a mandatory hard maximum count, the array
 * counterpart of drv_buf_t: every push or reserve that would take it past max fails with
 * DRV_ERR_TOOBIG, a failed allocation with DRV_ERR_NOMEM, and either leaves it as it was.
 * The array owns its storage, not what the elements point to. */
#ifndef DROVER_VEC_H
#define DROVER_VEC_H

#include <stddef.h>
#include "drover/error.h"

typedef struct drv_vec {
    void *data;  /* NULL until the first push or reserve; owned by the array */
    size_t len;  /* elements in use */
    size_t cap;  /* elements allocated */
    size_t size; /* bytes per element, fixed at init */
    size_t max;  /* hard maximum for len */
} drv_vec_t;

/* An empty array of type elements holding at most maxlen of them. */
#define DRV_VEC_INIT(type, maxlen)                                                                 \
    {                                                                                              \
        NULL, 0, 0, sizeof(type), (maxlen)                                                         \
    }

DRV_API void drv_vec_init(drv_vec_t *v, size_t size, size_t max);
/* Room for extra more elements, so that that many pushes cannot fail. */
DRV_API DRV_NODISCARD drv_err_t drv_vec_reserve(drv_vec_t *v, size_t extra);
/* Appends a copy of the size bytes at elem (NULL: a zero-filled element). */
DRV_API DRV_NODISCARD drv_err_t drv_vec_push(drv_vec_t *v, const void *elem);
/* The element at i, NULL if i >= len. Valid until the next push, reserve or steal. */
DRV_API void *drv_vec_at(const drv_vec_t *v, size_t i);
/* The last element, NULL if the array is empty. */
DRV_API void *drv_vec_last(const drv_vec_t *v);
DRV_API size_t drv_vec_len(const drv_vec_t *v);
/* Removes the element at i (i < len), moving the later ones down. */
DRV_API void drv_vec_remove(drv_vec_t *v, size_t i);
/* Hands the elements (malloc'd, caller frees; NULL when empty) to the caller, *len (may be
 * NULL) their count, and empties the array. Never allocates, so never fails. */
DRV_API void *drv_vec_steal(drv_vec_t *v, size_t *len);
/* Frees the storage (not what the elements point to) and empties the array. */
DRV_API void drv_vec_free(drv_vec_t *v);

static inline void drv_vec_freep(drv_vec_t *v)
{
    drv_vec_free(v);
}
#define _cleanup_vec_ __attribute__((cleanup(drv_vec_freep)))

#endif
