/* Structured logging to stderr (journald and docker logs pick it up): one line per event,
 *   ts=2026-11-25T10:00:00.123Z level=info msg="pod started" pod=web-1 restarts=0
 * The level threshold is process configuration, set once at start-up by main(). */
#ifndef DROVER_LOG_H
#define DROVER_LOG_H

#include <stdio.h>
#include "drover/error.h"

typedef enum {
    DRV_LOG_DEBUG = 0,
    DRV_LOG_INFO,
    DRV_LOG_WARN,
    DRV_LOG_ERROR,
    DRV_LOG_OFF
} drv_log_level_t;

DRV_API void drv_log_set_level(drv_log_level_t level);
DRV_API drv_log_level_t drv_log_get_level(void);
/* "debug", "info", "warn"/"warning", "error", "off". */
DRV_API DRV_NODISCARD drv_err_t drv_log_parse_level(const char *s, drv_log_level_t *out);
/* Redirects output (tests); NULL restores stderr. */
DRV_API void drv_log_set_stream(FILE *f);

/* Logs msg (quoted and escaped) followed by the key=value fields given by kvfmt, which the
 * caller formats ("pod=%s code=%d"); kvfmt may be NULL. Use drv_log_quote() for values that
 * may contain spaces, quotes or newlines. A line is capped at 4 KiB; longer ones are cut with
 * "…truncated". */
DRV_API void drv_log(drv_log_level_t level, const char *msg, const char *kvfmt, ...)
    DRV_PRINTF(3, 4);

/* Writes s as a double-quoted, escaped value into out (always NUL-terminated, cut to fit).
 * Returns out, for use directly as a printf argument. */
DRV_API const char *drv_log_quote(const char *s, char *out, size_t outsz);

#define drv_log_debug(msg, ...) drv_log(DRV_LOG_DEBUG, msg, __VA_ARGS__)
#define drv_log_info(msg, ...) drv_log(DRV_LOG_INFO, msg, __VA_ARGS__)
#define drv_log_warn(msg, ...) drv_log(DRV_LOG_WARN, msg, __VA_ARGS__)
#define drv_log_error(msg, ...) drv_log(DRV_LOG_ERROR, msg, __VA_ARGS__)

#endif
