/* CronJob schedules and time zones (shared/src/cron.c): the parser against Kubernetes' syntax
 * and its errors, the next run across months, weekdays, both day fields, daylight-saving
 * changes read from the system's zoneinfo, and TZif files cut or corrupted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "drover/cron.h"
#include "drover/file.h"

/* 2027-01-15T08:00:00Z, a Friday */
#define T0 1800000000LL

static drv_cron_t parse_ok(const char *s)
{
    drv_cron_t c;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_cron_parse(s, &c, &err) != DRV_OK)
        fail_msg("parse \"%s\": %s", s, drv_error_msg(&err));
    return c;
}

static void parse_bad(const char *s, const char *why)
{
    drv_cron_t c;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_cron_parse(s, &c, &err), DRV_ERR_INVALID);
    if (!strstr(drv_error_msg(&err), why))
        fail_msg("parse \"%s\": expected \"%s\" in \"%s\"", s, why, drv_error_msg(&err));
}

static int64_t next_utc(const char *spec, int64_t after)
{
    drv_cron_t c = parse_ok(spec);
    return drv_cron_next(&c, NULL, after);
}

static void test_parse(void **state)
{
    (void)state;
    drv_cron_t c = parse_ok("*/15 9-17 * * mon-fri");
    assert_int_equal(c.minute, (1ULL << 0) | (1ULL << 15) | (1ULL << 30) | (1ULL << 45));
    assert_int_equal(c.hour, 0x3fe00);
    assert_int_equal(c.dow, 0x3e);
    assert_true(c.dom_star);
    assert_false(c.dow_star);
    c = parse_ok("5/20 0 1,15 JAN,Jul ?");
    assert_int_equal(c.minute, (1ULL << 5) | (1ULL << 25) | (1ULL << 45));
    assert_int_equal(c.month, (1u << 1) | (1u << 7));
    assert_int_equal(c.dom, (1u << 1) | (1u << 15));
    assert_true(c.dow_star);
    drv_cron_t d = parse_ok("@daily"), e = parse_ok("0 0 * * *");
    assert_memory_equal(&d, &e, sizeof(d));
    d = parse_ok("@weekly");
    assert_int_equal(d.dow, 1);
    parse_ok("  0   0 * * *  ");

    parse_bad("", "empty schedule");
    parse_bad("* * * *", "expected exactly 5 fields");
    parse_bad("* * * * * *", "expected exactly 5 fields");
    parse_bad("60 * * * *", "minute: \"60\" is out of range 0-59");
    parse_bad("* 24 * * *", "hour");
    parse_bad("* * 0 * *", "day of month");
    parse_bad("* * * 13 *", "month");
    parse_bad("* * * * 7", "day of week");
    parse_bad("5-2 * * * *", "beginning of range after end");
    parse_bad("*/0 * * * *", "bad step");
    parse_bad("1,,2 * * * *", "empty list element");
    parse_bad("x * * * *", "minute: bad value \"x\"");
    parse_bad("* * * foo *", "month: bad value");
    /* @every: Kubernetes' parser takes Go durations. */
    assert_int_equal(parse_ok("@every 5m").every_s, 300);
    assert_int_equal(parse_ok("@every 1h30m").every_s, 5400);
    assert_int_equal(parse_ok("@every 1.5h").every_s, 5400);
    assert_int_equal(parse_ok("@every 90s").every_s, 90);
    assert_int_equal(parse_ok("@every 500ms").every_s, 1);
    assert_int_equal(next_utc("@every 90s", T0), T0 + 90);
    parse_bad("@every", "@every: missing duration");
    parse_bad("@every 5", "missing or unknown unit");
    parse_bad("@every 5d", "missing or unknown unit");
    parse_bad("@every 9999h", "too long");
    parse_bad("@every 5m now", "unexpected text after @every");
    parse_bad("@sometimes", "unrecognized descriptor");
    parse_bad("@daily now", "unexpected text");
    parse_bad("TZ=UTC 0 * * * *", "use timeZone field instead");
    parse_bad("CRON_TZ=Europe/Paris 0 * * * *", "use timeZone field instead");
}

static void test_next_utc(void **state)
{
    (void)state;
    assert_int_equal(next_utc("* * * * *", T0), T0 + 60);
    assert_int_equal(next_utc("* * * * *", T0 + 59), T0 + 60);
    assert_int_equal(next_utc("0 * * * *", T0), T0 + 3600);
    assert_int_equal(next_utc("30 8 * * *", T0), T0 + 1800);
    /* Friday 08:00: the next Monday 00:00 is 2027-01-18. */
    assert_int_equal(next_utc("0 0 * * 1", T0), 1800230400LL);
    assert_int_equal(next_utc("0 0 ? * MON", T0), 1800230400LL);
    /* Both day fields restricted: either matches (the 20th, or Sunday the 17th first). */
    assert_int_equal(next_utc("0 0 20 * 0", T0), 1800144000LL);
    /* A star with a step restricts like a list: odd days AND Mondays would be a plain star's
     * rule; with the step, either one (Saturday the 17th is odd: the 17th). */
    assert_int_equal(next_utc("0 0 */2 * 1", T0), 1800144000LL);
    /* Across the year to February 29th, 2028. */
    assert_int_equal(next_utc("0 0 29 2 *", T0), 1835395200LL);
    assert_int_equal(next_utc("0 0 30 2 *", T0), -1);
}

static drv_tz_t *zone(const char *name)
{
    drv_tz_t *tz = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_tz_load(NULL, name, &tz, &err) != DRV_OK)
        fail_msg("zone %s: %s", name, drv_error_msg(&err));
    return tz;
}

static void test_time_zones(void **state)
{
    (void)state;
    drv_tz_t *paris = zone("Europe/Paris");
    assert_int_equal(drv_tz_offset(paris, T0), 3600);               /* January: CET */
    assert_int_equal(drv_tz_offset(paris, T0 + 180 * 86400), 7200); /* July: CEST */
    /* Beyond the file's transitions (2037): the footer's rule. */
    assert_int_equal(drv_tz_offset(paris, 4102444800LL), 3600);               /* 2100-01-01 */
    assert_int_equal(drv_tz_offset(paris, 4102444800LL + 180 * 86400), 7200); /* 2100-06-30 */
    drv_cron_t c = parse_ok("0 9 * * *");
    /* 09:00 in Paris in January is 08:00 UTC. */
    assert_int_equal(drv_cron_next(&c, paris, T0 - 1), T0);
    /* 2027-03-28 02:30 does not exist in Paris (clocks go 02:00 -> 03:00): skipped. */
    drv_cron_t gap = parse_ok("30 2 28 3 *");
    int64_t mar28 = 1806192000LL; /* 2027-03-28T00:00:00Z */
    int64_t n = drv_cron_next(&gap, paris, mar28 - 86400);
    assert_true(n > mar28 + 86400); /* not that day: next year's 28 March */
    /* 2027-10-31 02:30 happens twice: the first (CEST, 00:30 UTC) runs, once. */
    drv_cron_t twice = parse_ok("30 2 31 10 *");
    int64_t oct31 = 1824940800LL; /* 2027-10-31T00:00:00Z */
    n = drv_cron_next(&twice, paris, oct31 - 3600);
    assert_int_equal(n, oct31 + 1800);
    assert_true(drv_cron_next(&twice, paris, n) > oct31 + 86400);
    drv_tz_free(paris);

    drv_tz_t *utc = zone("UTC");
    assert_int_equal(drv_tz_offset(utc, T0), 0);
    drv_tz_free(utc);
    drv_tz_t *syd = zone("Australia/Sydney"); /* southern hemisphere: DST over new year */
    assert_int_equal(drv_tz_offset(syd, T0), 11 * 3600);
    assert_int_equal(drv_tz_offset(syd, 4102444800LL), 11 * 3600);
    assert_int_equal(drv_tz_offset(syd, 4102444800LL + 180 * 86400), 10 * 3600);
    drv_tz_free(syd);

    drv_tz_t *tz = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_tz_load(NULL, "Mars/Olympus", &tz, &err), DRV_ERR_NOTFOUND);
    assert_int_equal(drv_tz_load(NULL, "../../etc/passwd", &tz, &err), DRV_ERR_INVALID);
    assert_int_equal(drv_tz_load(NULL, "/etc/localtime", &tz, &err), DRV_ERR_INVALID);
    assert_int_equal(drv_tz_load(NULL, "Europe/../UTC", &tz, &err), DRV_ERR_INVALID);
    assert_null(tz);
}

static void test_tzif_corrupt(void **state)
{
    (void)state;
    char *data = NULL;
    size_t len = 0;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(
        drv_file_read_capped("/usr/share/zoneinfo/Europe/Paris", 1 << 20, &data, &len, &err),
        DRV_OK);
    drv_tz_t *tz = NULL;
    /* Every cut of the file is refused or parsed, never read past. */
    for (size_t cut = 0; cut < len; cut += 7) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, data, cut);
        if (drv_tz_parse(copy, cut, &tz, &err) == DRV_OK) {
            drv_tz_free(tz);
            tz = NULL;
        }
        free(copy);
    }
    assert_int_equal(drv_tz_parse((const uint8_t *)"TZif", 4, &tz, &err), DRV_ERR_INVALID);
    memcpy(data, "TZxf", 4);
    assert_int_equal(drv_tz_parse((const uint8_t *)data, len, &tz, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "not a TZif file"));
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_next_utc),
        cmocka_unit_test(test_time_zones),
        cmocka_unit_test(test_tzif_corrupt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
