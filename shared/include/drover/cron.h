/* CronJob schedules: the five-field cron syntax Kubernetes accepts (minute hour day-of-month
 * month day-of-week, with *, lists, ranges, steps, month and day names, `?`, the macros
 * @yearly @annually @monthly @weekly @daily @midnight @hourly, and the interval
 * "@every <duration>" its parser also takes), and time zones read from the
 * system's zoneinfo (TZif files) by a parser of our own, so that no thread touches TZ. */
#ifndef DROVER_CRON_H
#define DROVER_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"

typedef struct drv_cron {
    uint64_t minute; /* bit n: minute n (0-59) */
    uint32_t hour;   /* 0-23 */
    uint32_t dom;    /* 1-31 */
    uint32_t month;  /* 1-12 */
    uint32_t dow;    /* 0-6, Sunday 0 (7 is refused, as Kubernetes' parser does) */
    /* Either day field written as * or ?: then only the other one restricts the day (cron's
     * rule: when both are restricted, a day matching either runs). */
    bool dom_star, dow_star;
    /* "@every 90s": a run every every_s seconds after the last (0: a cron schedule). */
    int64_t every_s;
} drv_cron_t;

/* Parses a schedule; errors say which field is wrong and why. TZ= and CRON_TZ= prefixes are
 * refused (Kubernetes wants spec.timeZone). @every takes a Go duration ("1h30m", "90s",
 * "1.5h"), rounded down to whole seconds, at least one. */
DRV_API DRV_NODISCARD drv_err_t drv_cron_parse(const char *spec, drv_cron_t *out, drv_error_t *err);

/* A time zone: its transitions (UTC seconds) and the offset east of UTC that starts at each. */
typedef struct drv_tz drv_tz_t;

/* Parses a TZif file (versions 1 to 4) held in data. *out is owned by the caller. */
DRV_API DRV_NODISCARD drv_err_t drv_tz_parse(const uint8_t *data, size_t len, drv_tz_t **out,
                                             drv_error_t *err);
/* Loads zone name ("Europe/Paris", "UTC") from dir (NULL: /usr/share/zoneinfo). The name must
 * be a relative path without "." or ".." components; DRV_ERR_NOTFOUND when there is no such
 * zone. */
DRV_API DRV_NODISCARD drv_err_t drv_tz_load(const char *dir, const char *name, drv_tz_t **out,
                                            drv_error_t *err);
DRV_API void drv_tz_free(drv_tz_t *tz);
/* Seconds east of UTC in tz at utc_s (tz NULL: UTC, 0). */
DRV_API int64_t drv_tz_offset(const drv_tz_t *tz, int64_t utc_s);

/* The first time (UTC seconds, on a whole minute; for @every, after_s + every_s) strictly
 * after after_s at which the schedule runs, reading its fields as wall-clock time in tz (NULL:
 * UTC); -1 when there is none in the next five years (a schedule like "0 0 30 2 *"). A wall-clock
 * time skipped by a daylight-saving change does not run; one that happens twice runs the first
 * time. */
DRV_API int64_t drv_cron_next(const drv_cron_t *c, const drv_tz_t *tz, int64_t after_s);

#endif
