/* Formatting into fixed buffers that refuses truncation: a path or name cut short by snprintf
 * silently names a different file, so every string built into a fixed buffer goes through
 * drv_fmt and a result that does not fit is an error, never a shorter string. */
#ifndef DROVER_FMT_H
#define DROVER_FMT_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include "drover/error.h"

/* Formats into out (capacity outsz, including the NUL). A result that does not fit fails with
 * DRV_ERR_TOOBIG ("name too long") and leaves out untouched; an output error of vsnprintf or
 * a NULL/zero-sized out fails with DRV_ERR_INVALID. */
DRV_API DRV_NODISCARD drv_err_t drv_fmt(char *out, size_t outsz, const char *fmt, ...)
    DRV_PRINTF(3, 4);
DRV_API DRV_NODISCARD drv_err_t drv_vfmt(char *out, size_t outsz, const char *fmt, va_list ap)
    DRV_PRINTF(3, 0);

/* For text meant for people only (messages, log and table text): formats into out and, when
 * the result does not fit, cuts it and ends it with "..." (always NUL-terminated; an output
 * error leaves ""). Never for a path, name, key, topic or anything parsed again: those take
 * drv_fmt. */
DRV_API void drv_fmt_cut(char *out, size_t outsz, const char *fmt, ...) DRV_PRINTF(3, 4);
DRV_API void drv_vfmt_cut(char *out, size_t outsz, const char *fmt, va_list ap) DRV_PRINTF(3, 0);

/* The shortest decimal text that reads back as exactly d (a JSON/YAML number as its author
 * most likely wrote it: 0.1 is "0.1", not "0.10000000000000001"); a whole number up to 2^53 has
 * no exponent or point. DRV_ERR_TOOBIG if it does not fit. */
DRV_API DRV_NODISCARD drv_err_t drv_fmt_double(char *out, size_t outsz, double d);

/* Copies a string literal into a char array, checked at compile time, for a fixed name such as
 * "default" or "arm64" that cannot fail to fit: no error to handle, and a too-small array (or a
 * pointer in place of an array) does not compile. */
#define DRV_FMT_LIT(arr, lit)                                                                      \
    do {                                                                                           \
        _Static_assert(!__builtin_types_compatible_p(__typeof__(arr), __typeof__(&(arr)[0])),      \
                       "DRV_FMT_LIT: " #arr " is not an array");                                   \
        _Static_assert(sizeof("" lit) <= sizeof(arr), "DRV_FMT_LIT: " #lit " does not fit " #arr); \
        memcpy((arr), "" lit, sizeof("" lit));                                                     \
    } while (0)

#endif
