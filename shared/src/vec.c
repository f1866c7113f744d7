/* Growable array with a hard maximum (see vec.h). Every failing call leaves the array exactly
 * as it was; every size computation is checked for overflow before it is used. */
#include "drover/vec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define VEC_MIN_CAP 8

void drv_vec_init(drv_vec_t *v, size_t size, size_t max)
{
    v->data = NULL;
    v->len = 0;
    v->cap = 0;
    v->size = size;
    v->max = max;
}

drv_err_t drv_vec_reserve(drv_vec_t *v, size_t extra)
{
    if (v == NULL || v->size == 0)
        return DRV_ERR_INVALID;
    if (extra > v->max || v->len > v->max - extra)
        return DRV_ERR_TOOBIG;
    size_t need = v->len + extra; /* <= max */
    if (need <= v->cap && (v->data != NULL || need == 0))
        return DRV_OK;
    if (need > SIZE_MAX / v->size)
        return DRV_ERR_NOMEM; /* more bytes than the address space has */

    /* Geometric growth, clamped to max and to what the address space can hold. */
    size_t hard = SIZE_MAX / v->size < v->max ? SIZE_MAX / v->size : v->max;
    size_t ncap = v->cap > 0 ? v->cap : VEC_MIN_CAP;
    while (ncap < need)
        ncap = ncap > hard / 2 ? hard : ncap * 2;
    if (ncap > hard)
        ncap = hard;
    if (ncap < need)
        ncap = need;

    void *p = realloc(v->data, ncap * v->size);
    if (p == NULL)
        return DRV_ERR_NOMEM;
    v->data = p;
    v->cap = ncap;
    return DRV_OK;
}

drv_err_t drv_vec_push(drv_vec_t *v, const void *elem)
{
    drv_err_t rc = drv_vec_reserve(v, 1);
    if (rc != DRV_OK)
        return rc;
    char *slot = (char *)v->data + v->len * v->size;
    if (elem != NULL)
        memcpy(slot, elem, v->size);
    else
        memset(slot, 0, v->size);
    v->len++;
    return DRV_OK;
}

void *drv_vec_at(const drv_vec_t *v, size_t i)
{
    if (v == NULL || i >= v->len)
        return NULL;
    return (char *)v->data + i * v->size;
}

void *drv_vec_last(const drv_vec_t *v)
{
    return v != NULL && v->len > 0 ? drv_vec_at(v, v->len - 1) : NULL;
}

size_t drv_vec_len(const drv_vec_t *v)
{
    return v != NULL ? v->len : 0;
}

void drv_vec_remove(drv_vec_t *v, size_t i)
{
    if (v == NULL || i >= v->len)
        return;
    char *at = (char *)v->data + i * v->size;
    memmove(at, at + v->size, (v->len - i - 1) * v->size);
    v->len--;
}

void *drv_vec_steal(drv_vec_t *v, size_t *len)
{
    void *p = v->len > 0 ? v->data : NULL;
    if (len != NULL)
        *len = v->len;
    if (p == NULL)
        free(v->data);
    v->data = NULL;
    v->len = 0;
    v->cap = 0;
    return p;
}

void drv_vec_free(drv_vec_t *v)
{
    if (v == NULL)
        return;
    free(v->data);
    v->data = NULL;
    v->len = 0;
    v->cap = 0;
}
