/* Growing byte buffer with a mandatory hard maximum (curl's dynbuf rule): every append that
 * would take it past max fails with DRV_ERR_TOOBIG and leaves the buffer as it was. The data
 * is always NUL-terminated, so a buffer of text is also a C string. */
#ifndef DROVER_BUF_H
#define DROVER_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include "drover/error.h"

typedef struct drv_buf {
    char *data; /* NULL until the first append; owned by the buffer */
    size_t len; /* bytes used, not counting the terminating NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* hard maximum for len */
} drv_buf_t;

#define DRV_BUF_INIT(maxlen)                                                                       \
    {                                                                                              \
        NULL, 0, 0, (maxlen)                                                                       \
    }

DRV_API void drv_buf_init(drv_buf_t *b, size_t max);
DRV_API DRV_NODISCARD drv_err_t drv_buf_append(drv_buf_t *b, const void *data, size_t len);
DRV_API DRV_NODISCARD drv_err_t drv_buf_puts(drv_buf_t *b, const char *s);
DRV_API DRV_NODISCARD drv_err_t drv_buf_putc(drv_buf_t *b, char c);
DRV_API DRV_NODISCARD drv_err_t drv_buf_printf(drv_buf_t *b, const char *fmt, ...) DRV_PRINTF(2, 3);
DRV_API DRV_NODISCARD drv_err_t drv_buf_vprintf(drv_buf_t *b, const char *fmt, va_list ap)
    DRV_PRINTF(2, 0);
/* The contents as a C string: "" for an empty buffer, never NULL. Valid until the next change. */
DRV_API const char *drv_buf_str(const drv_buf_t *b);
/* Empties the buffer, keeping its allocation. */
DRV_API void drv_buf_reset(drv_buf_t *b);
/* Drops len to n (n <= len). */
DRV_API void drv_buf_truncate(drv_buf_t *b, size_t n);
/* Hands the data (NUL-terminated, malloc'd, caller frees; "" allocated if empty, NULL on
 * allocation failure) to the caller and empties the buffer. */
DRV_API char *drv_buf_steal(drv_buf_t *b, size_t *len);
DRV_API void drv_buf_free(drv_buf_t *b);

static inline void drv_buf_freep(drv_buf_t *b)
{
    drv_buf_free(b);
}
#define _cleanup_buf_ __attribute__((cleanup(drv_buf_freep)))

#endif
