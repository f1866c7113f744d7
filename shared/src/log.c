/* Structured logfmt logging to stderr: one bounded line per event, written with a single
 * fwrite so that lines from different threads do not interleave. A line never holds a raw
 * control character, so one event is always exactly one line. */
#include "drover/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "drover/fmt.h"

/* Whole line including the trailing newline. */
#define LOG_LINE_MAX 4096
#define LOG_CONTENT_MAX (LOG_LINE_MAX - 1)
#define LOG_MARK "\xe2\x80\xa6truncated" /* "…truncated" */
#define LOG_MARK_LEN (sizeof(LOG_MARK) - 1)

/* Process configuration, set once by main() (and by tests). */
static _Atomic int log_level = DRV_LOG_INFO;
static FILE *_Atomic log_stream = NULL;

/* In place, not pointers: no relocation per name (issue 19: the agent's size). */
static const char level_names[][6] = {"debug", "info", "warn", "error", "off"};

void drv_log_set_level(drv_log_level_t level)
{
    if ((int)level < DRV_LOG_DEBUG || level > DRV_LOG_OFF)
        return;
    log_level = (int)level;
}

drv_log_level_t drv_log_get_level(void)
{
    return (drv_log_level_t)log_level;
}

drv_err_t drv_log_parse_level(const char *s, drv_log_level_t *out)
{
    if (s == NULL || out == NULL)
        return DRV_ERR_INVALID;
    for (int i = DRV_LOG_DEBUG; i <= DRV_LOG_OFF; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (drv_log_level_t)i;
            return DRV_OK;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = DRV_LOG_WARN;
        return DRV_OK;
    }
    return DRV_ERR_INVALID;
}

void drv_log_set_stream(FILE *f)
{
    log_stream = f;
}

/* The escape for byte c inside a quoted value, written into esc (>= 7 bytes); returns its
 * length, or 0 if c is written as is. */
static size_t escape_byte(unsigned char c, char esc[8])
{
    switch (c) {
    case '"':
        memcpy(esc, "\\\"", 3);
        return 2;
    case '\\':
        memcpy(esc, "\\\\", 3);
        return 2;
    case '\n':
        memcpy(esc, "\\n", 3);
        return 2;
    case '\r':
        memcpy(esc, "\\r", 3);
        return 2;
    case '\t':
        memcpy(esc, "\\t", 3);
        return 2;
    default:
        break;
    }
    if (c < 0x20 || c == 0x7f) {
        static const char hex[] = "0123456789abcdef";
        esc[0] = '\\';
        esc[1] = 'u';
        esc[2] = '0';
        esc[3] = '0';
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 0xf];
        esc[6] = '\0';
        return 6;
    }
    return 0;
}

/* Length of the longest prefix of s[0..n) that does not end inside a UTF-8 sequence. */
static size_t utf8_safe_cut(const char *s, size_t n)
{
    size_t i = n;
    /* Walk back over continuation bytes to the lead byte of the last sequence. */
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80 && n - i < 3)
        i--;
    if (i == 0)
        return n;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want;
    if (lead < 0x80)
        return n;
    else if ((lead & 0xE0) == 0xC0)
        want = 2;
    else if ((lead & 0xF0) == 0xE0)
        want = 3;
    else if ((lead & 0xF8) == 0xF0)
        want = 4;
    else
        return n; /* not UTF-8: cut anywhere */
    size_t have = n - (i - 1);
    return have >= want ? n : i - 1;
}

const char *drv_log_quote(const char *s, char *out, size_t outsz)
{
    if (out == NULL || outsz == 0)
        return out;
    if (outsz < 3) {
        out[0] = '\0';
        return out;
    }
    if (s == NULL)
        s = "";
    size_t len = 0;
    out[len++] = '"';
    /* Keep two bytes for the closing quote and the NUL. */
    size_t limit = outsz - 2;
    bool cut = false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        size_t n = escape_byte(*p, esc);
        if (n == 0) {
            if (len + 1 > limit) {
                cut = true;
                break;
            }
            out[len++] = (char)*p;
        } else {
            if (len + n > limit) {
                cut = true;
                break;
            }
            memcpy(out + len, esc, n);
            len += n;
        }
    }
    if (cut)
        len = 1 + utf8_safe_cut(out + 1, len - 1);
    out[len++] = '"';
    out[len] = '\0';
    return out;
}

struct line {
    char buf[LOG_LINE_MAX + 1];
    size_t len;
    bool cut;
};

static void line_put(struct line *l, const char *s, size_t n)
{
    if (l->cut)
        return;
    if (n > LOG_CONTENT_MAX - l->len) {
        size_t room = LOG_CONTENT_MAX - l->len;
        memcpy(l->buf + l->len, s, room);
        l->len += room;
        l->cut = true;
        return;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void line_puts(struct line *l, const char *s)
{
    line_put(l, s, strlen(s));
}

/* Appends s; quoted escapes the whole string, otherwise only control bytes are escaped so
 * that a careless caller cannot break a line (or forge one) with a raw newline. */
static void line_put_escaped(struct line *l, const char *s, bool escape_quotes)
{
    for (const unsigned char *p = (const unsigned char *)s; *p && !l->cut; p++) {
        char esc[8];
        size_t n = escape_byte(*p, esc);
        if (n == 0 || (!escape_quotes && (*p == '"' || *p == '\\')))
            line_put(l, (const char *)p, 1);
        else
            line_put(l, esc, n);
    }
}

/* Cuts an overlong line so that it stays valid logfmt: not inside a UTF-8 sequence or an
 * escape, and a quoted value that was cut is closed after the marker. */
static void line_finish_cut(struct line *l)
{
    size_t len = LOG_CONTENT_MAX - (LOG_MARK_LEN + 1);
    if (len > l->len)
        len = l->len;
    len = utf8_safe_cut(l->buf, len);

    bool inq = false;
    size_t i = 0;
    while (i < len) {
        char c = l->buf[i];
        if (inq && c == '\\') {
            size_t seq = (i + 1 < l->len && l->buf[i + 1] == 'u') ? 6 : 2;
            if (i + seq > len) {
                len = i;
                break;
            }
            i += seq;
            continue;
        }
        if (c == '"')
            inq = !inq;
        i++;
    }
    l->len = len;
    if (inq) {
        memcpy(l->buf + l->len, LOG_MARK "\"", LOG_MARK_LEN + 1);
    } else {
        memcpy(l->buf + l->len, " " LOG_MARK, LOG_MARK_LEN + 1);
    }
    l->len += LOG_MARK_LEN + 1;
}

void drv_log(drv_log_level_t level, const char *msg, const char *kvfmt, ...)
{
    if ((int)level < DRV_LOG_DEBUG || level >= DRV_LOG_OFF || (int)level < log_level)
        return;
    int saved_errno = errno;

    struct line l;
    l.len = 0;
    l.cut = false;

    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        ts.tv_sec = 0;
        ts.tv_nsec = 0;
    }
    struct tm tm;
    char tsbuf[64];
    if (gmtime_r(&ts.tv_sec, &tm) == NULL ||
        strftime(tsbuf, sizeof(tsbuf), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        memcpy(tsbuf, "1970-01-01T00:00:00", sizeof("1970-01-01T00:00:00"));
    char frac[16];
    if (drv_fmt(frac, sizeof(frac), ".%03dZ", (int)(ts.tv_nsec / 1000000) % 1000) != DRV_OK)
        memcpy(frac, ".000Z", sizeof(".000Z"));

    line_puts(&l, "ts=");
    line_puts(&l, tsbuf);
    line_puts(&l, frac);
    line_puts(&l, " level=");
    line_puts(&l, level_names[level]);
    line_puts(&l, " msg=\"");
    line_put_escaped(&l, msg ? msg : "", true);
    line_puts(&l, "\"");

    if (kvfmt != NULL && kvfmt[0] != '\0' && !l.cut) {
        char kv[LOG_LINE_MAX];
        va_list ap;
        va_start(ap, kvfmt);
        int n = vsnprintf(kv, sizeof(kv), kvfmt, ap);
        va_end(ap);
        if (n < 0) {
            line_puts(&l, " log_error=\"bad format\"");
        } else if (n > 0) {
            line_puts(&l, " ");
            line_put_escaped(&l, kv, false);
            if ((size_t)n >= sizeof(kv))
                l.cut = true;
        }
    }

    if (l.cut)
        line_finish_cut(&l);
    l.buf[l.len++] = '\n';

    FILE *f = log_stream;
    if (f == NULL)
        f = stderr;
    flockfile(f);
    fwrite_unlocked(l.buf, 1, l.len, f);
    fflush_unlocked(f);
    funlockfile(f);
    errno = saved_errno;
}
