/* Cron schedules and time zones for CronJobs: the parser follows the standard cron syntax
 * Kubernetes' controller accepts (five fields, names, steps, macros), and the TZif reader
 * (RFC 8536, with its POSIX TZ footer for times after the last transition) gives the offset
 * of a zone at any time without touching the process's TZ (the hub has threads). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "drover/cleanup.h"
#include "drover/cron.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/path.h"

#define CRON_SPEC_MAX 256
#define TZ_FILE_MAX (256 * 1024)
#define TZ_TYPES_MAX 256
#define NEXT_YEARS 5

/* ---- schedules ---- */

typedef struct cron_field {
    const char *name;
    unsigned min, max;
    const char *const *names; /* names of min.., or NULL */
} cron_field_t;

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
                                          "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const cron_field_t fields[5] = {
    {"minute", 0, 59, NULL},          {"hour", 0, 23, NULL},
    {"day of month", 1, 31, NULL},    {"month", 1, 12, month_names},
    {"day of week", 0, 6, dow_names},
};

/* A number or a name of field f from s[0..n). */
static bool field_value(const cron_field_t *f, const char *s, size_t n, unsigned *out)
{
    if (n == 0 || n > 9)
        return false;
    if (isdigit((unsigned char)s[0])) {
        unsigned v = 0;
        for (size_t i = 0; i < n; i++) {
            if (!isdigit((unsigned char)s[i]))
                return false;
            v = v * 10 + (unsigned)(s[i] - '0');
        }
        *out = v;
        return true;
    }
    for (size_t i = 0; f->names && f->names[i]; i++)
        if (n == 3 && !strncasecmp(s, f->names[i], 3)) {
            *out = f->min + (unsigned)i;
            return true;
        }
    return false;
}

/* One comma-separated part of a field: *, ?, a, a-b, each with an optional /step. */
static drv_err_t parse_part(const cron_field_t *f, const char *s, size_t n, uint64_t *bits,
                            bool *star, drv_error_t *err)
{
    const char *slash = memchr(s, '/', n);
    size_t rn = slash ? (size_t)(slash - s) : n;
    unsigned lo, hi, step = 1;
    bool is_star = (rn == 1 && (s[0] == '*' || s[0] == '?'));
    if (is_star) {
        lo = f->min;
        hi = f->max;
    } else {
        const char *dash = memchr(s, '-', rn);
        size_t ln = dash ? (size_t)(dash - s) : rn;
        if (!field_value(f, s, ln, &lo) || (dash && !field_value(f, dash + 1, rn - ln - 1, &hi)))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: bad value \"%.*s\"", f->name, (int)n,
                                 s);
        if (!dash)
            hi = slash ? f->max : lo; /* "N/step" is N-max/step, as cron reads it */
    }
    if (slash) {
        if (!field_value(&(cron_field_t){f->name, 0, 0, NULL}, slash + 1, n - rn - 1, &step) ||
            step == 0)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: bad step \"%.*s\"", f->name, (int)n,
                                 s);
    }
    if (lo < f->min || hi > f->max)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: \"%.*s\" is out of range %u-%u", f->name,
                             (int)n, s, f->min, f->max);
    if (lo > hi)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: \"%.*s\": beginning of range after end",
                             f->name, (int)n, s);
    for (unsigned v = lo; v <= hi; v += step)
        *bits |= 1ULL << v;
    /* A star with a step (every other day) restricts the day like a list does. */
    if (is_star && step == 1)
        *star = true;
    return DRV_OK;
}

/* A Go duration ("1h30m", "1.5h", "90s", "500ms"): whole seconds, rounded down, at least 1. */
static drv_err_t parse_every(const char *s, int64_t *out, drv_error_t *err)
{
    static const struct {
        const char *unit;
        int64_t ns;
    } units[] = {{"ns", 1},           {"us", 1000},         {"\xc2\xb5s", 1000},   {"ms", 1000000},
                 {"s", 1000000000LL}, {"m", 60000000000LL}, {"h", 3600000000000LL}};
    const int64_t max_ns = 366LL * 86400 * 1000000000LL; /* a year */
    const char *p = s;
    int64_t total = 0;
    if (!*p)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "@every: missing duration");
    while (*p) {
        int64_t whole = 0, frac = 0, scale = 1;
        const char *start = p;
        while (isdigit((unsigned char)*p) && whole < max_ns)
            whole = whole * 10 + (*p++ - '0');
        if (*p == '.')
            for (p++; isdigit((unsigned char)*p); p++)
                if (scale < 1000000000LL) {
                    frac = frac * 10 + (*p - '0');
                    scale *= 10;
                }
        if (p == start || (p == start + 1 && *start == '.'))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "@every: invalid duration \"%.64s\"", s);
        size_t k = 0, n = sizeof(units) / sizeof(units[0]), best = n;
        for (k = 0; k < n; k++) /* the longest unit that matches: "ms" before "m" */
            if (!strncmp(p, units[k].unit, strlen(units[k].unit)) &&
                (best == n || strlen(units[k].unit) > strlen(units[best].unit)))
                best = k;
        if (best == n)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "@every: missing or unknown unit in duration \"%.64s\"", s);
        p += strlen(units[best].unit);
        int64_t u = units[best].ns;
        if (whole > max_ns / u)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "@every: duration too long");
        total += whole * u + frac * (u / scale ? u / scale : 0);
        if (total > max_ns)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "@every: duration too long");
    }
    *out = total / 1000000000LL < 1 ? 1 : total / 1000000000LL;
    return DRV_OK;
}

static drv_err_t parse_field(const cron_field_t *f, const char *s, size_t n, uint64_t *bits,
                             bool *star, drv_error_t *err)
{
    *bits = 0;
    *star = false;
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && s[j] != ',')
            j++;
        if (j == i)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: empty list element", f->name);
        drv_err_t r = parse_part(f, s + i, j - i, bits, star, err);
        if (r != DRV_OK)
            return r;
        i = j + 1;
    }
    return DRV_OK;
}

drv_err_t drv_cron_parse(const char *spec, drv_cron_t *out, drv_error_t *err)
{
    static const struct {
        const char *name, *expands;
    } macros[] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"},
    };
    if (!spec || !*spec)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "empty schedule");
    if (strlen(spec) > CRON_SPEC_MAX)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "schedule longer than %d characters",
                             CRON_SPEC_MAX);
    while (isspace((unsigned char)*spec))
        spec++;
    if (!strncmp(spec, "TZ=", 3) || !strncmp(spec, "CRON_TZ=", 8))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "cannot use TZ or CRON_TZ in schedule, use timeZone field instead");
    if (spec[0] == '@') {
        size_t n = strcspn(spec, " \t\r\n");
        if (n == 6 && !strncmp(spec, "@every", 6)) {
            const char *d = spec + 6;
            while (isspace((unsigned char)*d))
                d++;
            size_t dl = strcspn(d, " \t\r\n");
            for (const char *q = d + dl; *q; q++)
                if (!isspace((unsigned char)*q))
                    return drv_error_set(err, DRV_ERR_INVALID, 0, "unexpected text after @every");
            char dur[64];
            if (dl >= sizeof(dur))
                return drv_error_set(err, DRV_ERR_INVALID, 0, "@every: duration too long");
            memcpy(dur, d, dl);
            dur[dl] = '\0';
            drv_cron_t c = {0};
            drv_err_t r = parse_every(dur, &c.every_s, err);
            if (r == DRV_OK)
                *out = c;
            return r;
        }
        for (const char *p = spec + n; *p; p++)
            if (!isspace((unsigned char)*p))
                return drv_error_set(err, DRV_ERR_INVALID, 0, "unexpected text after %.*s", (int)n,
                                     spec);
        for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
            if (strlen(macros[i].name) == n && !strncasecmp(spec, macros[i].name, n))
                return drv_cron_parse(macros[i].expands, out, err);
        return drv_error_set(err, DRV_ERR_INVALID, 0, "unrecognized descriptor: %.*s", (int)n,
                             spec);
    }
    drv_cron_t c = {0};
    uint64_t bits[5];
    bool star[5];
    const char *p = spec;
    size_t nf = 0;
    while (*p) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, " \t\r\n");
        if (nf == 5)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "expected exactly 5 fields (minute hour day-of-month month "
                                 "day-of-week), found more");
        drv_err_t r = parse_field(&fields[nf], p, n, &bits[nf], &star[nf], err);
        if (r != DRV_OK)
            return r;
        nf++;
        p += n;
    }
    if (nf != 5)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "expected exactly 5 fields (minute hour day-of-month month "
                             "day-of-week), found %zu",
                             nf);
    c.minute = bits[0];
    c.hour = (uint32_t)bits[1];
    c.dom = (uint32_t)bits[2];
    c.month = (uint32_t)bits[3];
    c.dow = (uint32_t)bits[4];
    c.dom_star = star[2];
    c.dow_star = star[4];
    *out = c;
    return DRV_OK;
}

/* ---- calendar ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (the era-based algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool day_matches(const drv_cron_t *c, unsigned dom, unsigned dow)
{
    bool a = (c->dom >> dom) & 1, b = (c->dow >> dow) & 1;
    return (c->dom_star || c->dow_star) ? a && b : a || b;
}

/* ---- time zones ---- */

typedef struct tz_rule {
    char kind; /* 'M' (month.week.day), 'J' (Julian 1-365, no Feb 29), 'D' (0-365) */
    int m, w, d;
    int64_t secs; /* local time of day of the change (may be negative or > 24 h) */
} tz_rule_t;

struct drv_tz {
    size_t n;
    int64_t *at;    /* transition times, ascending */
    int32_t *off;   /* offset from each transition on */
    int32_t before; /* offset before the first transition (type 0) */
    /* The footer's rule, for times after the last transition. */
    bool has_footer, footer_dst;
    int32_t std_off, dst_off;
    tz_rule_t start, end;
};

void drv_tz_free(drv_tz_t *tz)
{
    if (!tz)
        return;
    free(tz->at);
    free(tz->off);
    free(tz);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* POSIX TZ pieces: a name (letters, or <...>), an offset [+-]hh[:mm[:ss]] in seconds. */
static bool posix_name(const char **pp)
{
    const char *p = *pp;
    if (*p == '<') {
        const char *e = strchr(p, '>');
        if (!e || e - p < 4)
            return false;
        *pp = e + 1;
        return true;
    }
    size_t n = 0;
    while (isalpha((unsigned char)p[n]))
        n++;
    if (n < 3)
        return false;
    *pp = p + n;
    return true;
}

static bool posix_num(const char **pp, int max, int *out)
{
    const char *p = *pp;
    int v = 0, n = 0;
    while (isdigit((unsigned char)*p) && n < 3) {
        v = v * 10 + (*p++ - '0');
        n++;
    }
    if (n == 0 || v > max)
        return false;
    *out = v;
    *pp = p;
    return true;
}

static bool posix_time(const char **pp, int maxh, int64_t *out)
{
    const char *p = *pp;
    int sign = 1, h = 0, m = 0, s = 0;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    if (!posix_num(&p, maxh, &h))
        return false;
    if (*p == ':') {
        p++;
        if (!posix_num(&p, 59, &m))
            return false;
        if (*p == ':') {
            p++;
            if (!posix_num(&p, 59, &s))
                return false;
        }
    }
    *out = sign * ((int64_t)h * 3600 + m * 60 + s);
    *pp = p;
    return true;
}

static bool posix_rule(const char **pp, tz_rule_t *r)
{
    const char *p = *pp;
    if (*p == 'M') {
        p++;
        r->kind = 'M';
        if (!posix_num(&p, 12, &r->m) || r->m < 1 || *p++ != '.' || !posix_num(&p, 5, &r->w) ||
            r->w < 1 || *p++ != '.' || !posix_num(&p, 6, &r->d))
            return false;
    } else if (*p == 'J') {
        p++;
        r->kind = 'J';
        if (!posix_num(&p, 365, &r->d) || r->d < 1)
            return false;
    } else {
        r->kind = 'D';
        if (!posix_num(&p, 365, &r->d))
            return false;
    }
    r->secs = 7200;
    if (*p == '/' && (p++, !posix_time(&p, 167, &r->secs)))
        return false;
    *pp = p;
    return true;
}

/* The footer: "STDoff[DST[off][,start[/time],end[/time]]]"; false when it cannot be read
 * (the zone then keeps its last transition's offset). */
static bool posix_tz(drv_tz_t *tz, const char *s)
{
    const char *p = s;
    int64_t v;
    if (!posix_name(&p) || !posix_time(&p, 24, &v))
        return false;
    tz->std_off = (int32_t)-v;
    if (!*p) {
        tz->has_footer = true;
        return true;
    }
    if (!posix_name(&p))
        return false;
    tz->dst_off = tz->std_off + 3600;
    if (*p && *p != ',') {
        if (!posix_time(&p, 24, &v))
            return false;
        tz->dst_off = (int32_t)-v;
    }
    if (*p++ != ',' || !posix_rule(&p, &tz->start) || *p++ != ',' || !posix_rule(&p, &tz->end) ||
        *p)
        return false;
    tz->has_footer = tz->footer_dst = true;
    return true;
}

static bool leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since the epoch of the day a rule names in year y. */
static int64_t rule_day(const tz_rule_t *r, int64_t y)
{
    if (r->kind == 'J')
        return days_from_civil(y, 1, 1) + r->d - 1 + (leap(y) && r->d >= 60);
    if (r->kind == 'D')
        return days_from_civil(y, 1, 1) + r->d;
    int64_t first = days_from_civil(y, (unsigned)r->m, 1);
    int dow_first = (int)((first % 7 + 11) % 7); /* 1970-01-01 was a Thursday (4) */
    int64_t day = first + (r->d - dow_first + 7) % 7 + (int64_t)(r->w - 1) * 7;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int len = mdays[r->m - 1] + (r->m == 2 && leap(y));
    while (day >= first + len)
        day -= 7; /* week 5: the last such day of the month */
    return day;
}

static int32_t footer_offset(const drv_tz_t *tz, int64_t t)
{
    if (!tz->footer_dst)
        return tz->std_off;
    int64_t y;
    unsigned m, d;
    civil_from_days(floor_div(t + tz->std_off, 86400), &y, &m, &d);
    /* Start is given in standard time, end in daylight time. */
    int64_t start = rule_day(&tz->start, y) * 86400 + tz->start.secs - tz->std_off;
    int64_t end = rule_day(&tz->end, y) * 86400 + tz->end.secs - tz->dst_off;
    bool dst = start < end ? (t >= start && t < end) : (t < end || t >= start);
    return dst ? tz->dst_off : tz->std_off;
}

int64_t drv_tz_offset(const drv_tz_t *tz, int64_t t)
{
    if (!tz)
        return 0;
    if (tz->n == 0 || t < tz->at[0])
        return tz->n == 0 && tz->has_footer ? footer_offset(tz, t) : tz->before;
    if (t >= tz->at[tz->n - 1] && tz->has_footer)
        return footer_offset(tz, t);
    size_t lo = 0, hi = tz->n; /* the last transition <= t */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return tz->off[lo];
}

typedef struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
} tzif_counts_t;

static drv_err_t tzif_header(const uint8_t *p, size_t len, tzif_counts_t *c, uint8_t *version,
                             drv_error_t *err)
{
    if (len < 44 || memcmp(p, "TZif", 4))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "not a TZif file");
    *version = p[4];
    if (*version != 0 && (*version < '2' || *version > '4'))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "TZif version %u unknown", p[4]);
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chars = be32(p + 40);
    if (c->type == 0 || c->type > TZ_TYPES_MAX || c->chars == 0 ||
        (c->isut && c->isut != c->type) || (c->isstd && c->isstd != c->type) ||
        c->time > TZ_FILE_MAX || c->leap > TZ_FILE_MAX || c->chars > TZ_FILE_MAX)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "TZif header counts are inconsistent");
    return DRV_OK;
}

static size_t tzif_data_len(const tzif_counts_t *c, size_t tsz)
{
    return (size_t)c->time * (tsz + 1) + (size_t)c->type * 6 + c->chars +
           (size_t)c->leap * (tsz + 4) + c->isstd + c->isut;
}

drv_err_t drv_tz_parse(const uint8_t *data, size_t len, drv_tz_t **out, drv_error_t *err)
{
    tzif_counts_t c;
    uint8_t version;
    drv_err_t r = tzif_header(data, len, &c, &version, err);
    if (r != DRV_OK)
        return r;
    size_t tsz = 4, off = 44;
    if (version >= '2') {
        /* The 64-bit block follows the 32-bit one: use it (and the footer after it). */
        size_t skip = tzif_data_len(&c, 4);
        if (skip > len - off)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "TZif file truncated");
        off += skip;
        r = tzif_header(data + off, len - off, &c, &version, err);
        if (r != DRV_OK)
            return r;
        off += 44;
        tsz = 8;
    }
    size_t need = tzif_data_len(&c, tsz);
    if (need > len - off)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "TZif file truncated");
    const uint8_t *times = data + off, *idx = times + (size_t)c.time * tsz, *types = idx + c.time;
    drv_tz_t *tz = calloc(1, sizeof(*tz));
    if (!tz)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "time zone");
    tz->n = c.time;
    tz->at = calloc(c.time ? c.time : 1, sizeof(*tz->at));
    tz->off = calloc(c.time ? c.time : 1, sizeof(*tz->off));
    if (!tz->at || !tz->off) {
        drv_tz_free(tz);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "time zone");
    }
    int32_t offs[TZ_TYPES_MAX];
    for (uint32_t i = 0; i < c.type; i++) {
        const uint8_t *t = types + (size_t)i * 6;
        offs[i] = (int32_t)be32(t);
        if (offs[i] == INT32_MIN || t[4] > 1 || t[5] >= c.chars) {
            drv_tz_free(tz);
            return drv_error_set(err, DRV_ERR_INVALID, 0, "TZif local time type %u is invalid", i);
        }
    }
    tz->before = offs[0];
    for (uint32_t i = 0; i < c.time; i++) {
        tz->at[i] = tsz == 8 ? be64(times + (size_t)i * 8) : (int32_t)be32(times + (size_t)i * 4);
        if ((i && tz->at[i] <= tz->at[i - 1]) || idx[i] >= c.type) {
            drv_tz_free(tz);
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "TZif transition %u is out of order or of no type", i);
        }
        tz->off[i] = offs[idx[i]];
    }
    off += need;
    /* The footer: "\n<POSIX TZ>\n"; one that cannot be read leaves the last offset in force. */
    if (tsz == 8 && off < len && data[off] == '\n') {
        const uint8_t *e = memchr(data + off + 1, '\n', len - off - 1);
        size_t fl = e ? (size_t)(e - (data + off + 1)) : 0;
        char footer[128];
        if (e && fl > 0 && fl < sizeof(footer) && !memchr(data + off + 1, '\0', fl)) {
            memcpy(footer, data + off + 1, fl);
            footer[fl] = '\0';
            if (!posix_tz(tz, footer))
                tz->has_footer = tz->footer_dst = false;
        }
    }
    *out = tz;
    return DRV_OK;
}

drv_err_t drv_tz_load(const char *dir, const char *name, drv_tz_t **out, drv_error_t *err)
{
    if (!name || !*name || name[0] == '/' || !drv_path_is_contained(name) || strstr(name, "/./") ||
        !strncmp(name, "./", 2) || strchr(name, '\\'))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "invalid time zone name \"%.64s\"",
                             name ? name : "");
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/_-+", *p))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "invalid time zone name \"%.64s\"", name);
    char path[1024];
    if (drv_fmt(path, sizeof(path), "%s/%s", dir ? dir : "/usr/share/zoneinfo", name) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "time zone name too long");
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_file_read_capped(path, TZ_FILE_MAX, &data, &len, &e);
    if (r == DRV_ERR_NOTFOUND || r == DRV_ERR_IO)
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "unknown time zone %s", name);
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "time zone %s: %s", name, drv_error_msg(&e));
    r = drv_tz_parse((const uint8_t *)data, len, out, &e);
    if (r != DRV_OK)
        return drv_error_set(err, r, 0, "time zone %s: %s", name, drv_error_msg(&e));
    return DRV_OK;
}

/* ---- the next run ---- */

/* The earliest UTC time whose wall clock in tz reads local_s, or INT64_MIN if none does. */
static int64_t local_to_utc(const drv_tz_t *tz, int64_t local_s)
{
    int64_t best = INT64_MIN;
    int64_t guesses[2] = {drv_tz_offset(tz, local_s - 86400), drv_tz_offset(tz, local_s + 86400)};
    for (int i = 0; i < 2; i++) {
        int64_t u = local_s - guesses[i];
        if (drv_tz_offset(tz, u) == guesses[i] && (best == INT64_MIN || u < best))
            best = u;
    }
    return best;
}

int64_t drv_cron_next(const drv_cron_t *c, const drv_tz_t *tz, int64_t after_s)
{
    if (c->every_s > 0)
        return after_s + c->every_s;
    if (!c->minute || !c->hour || !c->dom || !c->month || !c->dow)
        return -1;
    int64_t local = after_s + drv_tz_offset(tz, after_s);
    int64_t min = floor_div(local, 60) + 1; /* local minutes since the epoch */
    int64_t limit = min + (int64_t)NEXT_YEARS * 366 * 1440;
    while (min < limit) {
        int64_t day = floor_div(min, 1440);
        int64_t y;
        unsigned mo, d;
        civil_from_days(day, &y, &mo, &d);
        if (!((c->month >> mo) & 1)) {
            unsigned nm = mo == 12 ? 1 : mo + 1;
            min = days_from_civil(mo == 12 ? y + 1 : y, nm, 1) * 1440;
            continue;
        }
        unsigned dow = (unsigned)((day % 7 + 11) % 7);
        if (!day_matches(c, d, dow)) {
            min = (day + 1) * 1440;
            continue;
        }
        unsigned h = (unsigned)((min - day * 1440) / 60), mi = (unsigned)((min - day * 1440) % 60);
        if (!((c->hour >> h) & 1)) {
            min = day * 1440 + (int64_t)(h + 1) * 60;
            continue;
        }
        if (!((c->minute >> mi) & 1)) {
            min++;
            continue;
        }
        int64_t u = local_to_utc(tz, min * 60);
        if (u != INT64_MIN && u > after_s)
            return u;
        min++; /* skipped by a clock change, or its first occurrence has passed */
    }
    return -1;
}
