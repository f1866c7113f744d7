/* libFuzzer target for CronJob schedules and time zones (shared/src/cron.c). The first byte
 * chooses the parser: odd, a TZif file (drv_tz_parse), the rest of the input; even, a cron
 * schedule (drv_cron_parse) of the rest as text. Whatever parses must keep its promises: a
 * zone's offsets stay within a day, and the next run of a schedule is a whole minute after
 * the time asked, whose wall clock the schedule accepts (@every: the interval later). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/cron.h"

static void die(const char *what)
{
    fprintf(stderr, "fuzz_cron: %s\n", what);
    abort();
}

static const int64_t probes[] = {-2208988800LL, 0, 1800000000LL, 4102444800LL};

static void check_tz(const drv_tz_t *tz)
{
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        int64_t off = drv_tz_offset(tz, probes[i]);
        if (off <= -(int64_t)INT32_MAX || off >= (int64_t)INT32_MAX)
            die("offset out of range");
    }
}

static void check_cron(const drv_cron_t *c)
{
    if (c->every_s) {
        if (c->every_s < 1 || c->every_s > 366LL * 86400 ||
            drv_cron_next(c, NULL, probes[2]) != probes[2] + c->every_s)
            die("@every interval out of range");
        return;
    }
    for (size_t i = 1; i < sizeof(probes) / sizeof(probes[0]); i++) {
        int64_t t = drv_cron_next(c, NULL, probes[i]);
        if (t < 0)
            continue;
        if (t <= probes[i] || t % 60 != 0)
            die("next run not a whole minute after the time asked");
        int64_t m = (t / 60) % 60, h = (t / 3600) % 24;
        if (!((c->minute >> m) & 1) || !((c->hour >> h) & 1))
            die("next run at a minute or hour the schedule does not accept");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    drv_error_t err = DRV_ERROR_INIT;
    if (data[0] & 1) {
        drv_tz_t *tz = NULL;
        if (drv_tz_parse(data + 1, size - 1, &tz, &err) == DRV_OK) {
            check_tz(tz);
            drv_tz_free(tz);
        }
        return 0;
    }
    char *s = malloc(size);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    drv_cron_t c;
    if (drv_cron_parse(s, &c, &err) == DRV_OK)
        check_cron(&c);
    free(s);
    return 0;
}
