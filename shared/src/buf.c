/* Growing byte buffer with a hard maximum. Every failing call leaves the buffer exactly as it
 * was; every size computation is checked for overflow before it is used. */
#include "drover/buf.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MIN_CAP 32

void drv_buf_init(drv_buf_t *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

/* Makes room for extra more bytes plus the NUL. Does not change len. */
static drv_err_t buf_reserve(drv_buf_t *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return DRV_ERR_TOOBIG;
    size_t need = b->len + extra; /* <= max */
    if (need == SIZE_MAX)
        return DRV_ERR_TOOBIG; /* no room for the NUL */
    need += 1;
    if (b->data != NULL && need <= b->cap)
        return DRV_OK;

    /* Geometric growth, clamped to what max can ever need. */
    size_t hard = b->max < SIZE_MAX ? b->max + 1 : SIZE_MAX;
    size_t ncap = b->cap > 0 ? b->cap : BUF_MIN_CAP;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) {
            ncap = need;
            break;
        }
        ncap *= 2;
    }
    if (ncap > hard)
        ncap = hard;
    if (ncap < need)
        ncap = need;

    char *p = realloc(b->data, ncap);
    if (p == NULL)
        return DRV_ERR_NOMEM;
    if (b->data == NULL)
        p[0] = '\0';
    b->data = p;
    b->cap = ncap;
    return DRV_OK;
}

drv_err_t drv_buf_append(drv_buf_t *b, const void *data, size_t len)
{
    if (b == NULL || (data == NULL && len > 0))
        return DRV_ERR_INVALID;
    /* data may point into the buffer itself, which realloc may move. */
    const char *src = data;
    bool inside = b->data != NULL && src >= b->data && src < b->data + b->cap;
    size_t off = inside ? (size_t)(src - b->data) : 0;
    drv_err_t rc = buf_reserve(b, len);
    if (rc != DRV_OK)
        return rc;
    if (inside)
        src = b->data + off;
    if (len > 0)
        memmove(b->data + b->len, src, len);
    b->len += len;
    b->data[b->len] = '\0';
    return DRV_OK;
}

drv_err_t drv_buf_puts(drv_buf_t *b, const char *s)
{
    if (s == NULL)
        return DRV_ERR_INVALID;
    return drv_buf_append(b, s, strlen(s));
}

drv_err_t drv_buf_putc(drv_buf_t *b, char c)
{
    return drv_buf_append(b, &c, 1);
}

drv_err_t drv_buf_vprintf(drv_buf_t *b, const char *fmt, va_list ap)
{
    if (b == NULL || fmt == NULL)
        return DRV_ERR_INVALID;
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return DRV_ERR_INVALID;
    if ((size_t)n < sizeof(small))
        return drv_buf_append(b, small, (size_t)n);

    drv_err_t rc = buf_reserve(b, (size_t)n);
    if (rc != DRV_OK)
        return rc;
    va_copy(ap2, ap);
    int m = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
    va_end(ap2);
    if (m != n) {
        /* The arguments changed under us; undo the partial write. */
        b->data[b->len] = '\0';
        return DRV_ERR_INVALID;
    }
    b->len += (size_t)n;
    return DRV_OK;
}

drv_err_t drv_buf_printf(drv_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    drv_err_t rc = drv_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

const char *drv_buf_str(const drv_buf_t *b)
{
    if (b == NULL || b->data == NULL)
        return "";
    return b->data;
}

void drv_buf_reset(drv_buf_t *b)
{
    drv_buf_truncate(b, 0);
}

void drv_buf_truncate(drv_buf_t *b, size_t n)
{
    if (b == NULL || n > b->len)
        return;
    b->len = n;
    if (b->data != NULL)
        b->data[n] = '\0';
}

char *drv_buf_steal(drv_buf_t *b, size_t *len)
{
    char *p;
    if (b->data == NULL) {
        p = calloc(1, 1);
        if (len != NULL)
            *len = 0;
        return p;
    }
    p = b->data;
    if (len != NULL)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

void drv_buf_free(drv_buf_t *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
