/* Tests for structured logging: logfmt lines that a parser accepts, level threshold, escaping,
 * and the 4 KiB line cap. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "drover/log.h"

#define MARK "\xe2\x80\xa6truncated"

struct kv {
    char key[64];
    char val[8192];
};

/* A strict logfmt parser: key=value pairs separated by single spaces; a value is bare
 * (no space, quote or '=') or double-quoted with \" \\ \n \r \t \u00XX escapes. A key without
 * "=" is allowed (logfmt's bare key). Returns the number of pairs, -1 if malformed. */
static int parse_logfmt(const char *line, struct kv *kvs, int maxkv)
{
    int n = 0;
    const char *p = line;
    while (*p) {
        if (n == maxkv)
            return -1;
        struct kv *kv = &kvs[n++];
        size_t kl = 0;
        while (*p && *p != '=' && *p != ' ' && *p != '"') {
            if ((unsigned char)*p < 0x20 || kl + 1 >= sizeof(kv->key))
                return -1;
            kv->key[kl++] = *p++;
        }
        kv->key[kl] = '\0';
        kv->val[0] = '\0';
        if (kl == 0)
            return -1;
        if (*p == '=') {
            p++;
            size_t vl = 0;
            if (*p == '"') {
                p++;
                for (;;) {
                    if (*p == '\0')
                        return -1; /* unterminated */
                    if (*p == '"') {
                        p++;
                        break;
                    }
                    char c = *p;
                    if ((unsigned char)c < 0x20)
                        return -1;
                    if (c == '\\') {
                        p++;
                        switch (*p) {
                        case '"':
                        case '\\':
                            c = *p;
                            break;
                        case 'n':
                            c = '\n';
                            break;
                        case 'r':
                            c = '\r';
                            break;
                        case 't':
                            c = '\t';
                            break;
                        case 'u': {
                            if (strncmp(p, "u00", 3) != 0 || !p[3] || !p[4])
                                return -1;
                            char hex[3] = {p[3], p[4], 0};
                            char *end;
                            c = (char)strtol(hex, &end, 16);
                            if (*end)
                                return -1;
                            p += 4;
                            break;
                        }
                        default:
                            return -1;
                        }
                    }
                    if (vl + 1 >= sizeof(kv->val))
                        return -1;
                    kv->val[vl++] = c;
                    p++;
                }
            } else {
                while (*p && *p != ' ') {
                    if (*p == '"' || *p == '=' || (unsigned char)*p < 0x20)
                        return -1;
                    if (vl + 1 >= sizeof(kv->val))
                        return -1;
                    kv->val[vl++] = *p++;
                }
            }
            kv->val[vl] = '\0';
        }
        if (*p == ' ')
            p++;
        else if (*p)
            return -1;
    }
    return n;
}

static const char *kv_get(const struct kv *kvs, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (strcmp(kvs[i].key, key) == 0)
            return kvs[i].val;
    return NULL;
}

/* Captured output of the logger between setup and teardown. */
struct capture {
    FILE *f;
    char *text;
    size_t len;
};

static int setup(void **state)
{
    struct capture *c = calloc(1, sizeof(*c));
    c->f = tmpfile();
    if (c->f == NULL)
        return -1;
    drv_log_set_stream(c->f);
    drv_log_set_level(DRV_LOG_DEBUG);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct capture *c = *state;
    drv_log_set_stream(NULL);
    drv_log_set_level(DRV_LOG_INFO);
    fclose(c->f);
    free(c->text);
    free(c);
    return 0;
}

/* Everything logged so far. */
static const char *captured(struct capture *c)
{
    fflush(c->f);
    long end = ftell(c->f);
    assert_true(end >= 0);
    free(c->text);
    c->text = calloc(1, (size_t)end + 1);
    assert_non_null(c->text);
    rewind(c->f);
    c->len = fread(c->text, 1, (size_t)end, c->f);
    assert_int_equal(c->len, (size_t)end);
    fseek(c->f, 0, SEEK_END);
    return c->text;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* The single line captured, without its newline, in a static buffer. */
static char *only_line(struct capture *c)
{
    static char line[8192];
    const char *t = captured(c);
    assert_int_equal(count_lines(t), 1);
    size_t n = strlen(t);
    assert_true(n > 0 && t[n - 1] == '\n');
    assert_true(n < sizeof(line));
    memcpy(line, t, n - 1);
    line[n - 1] = '\0';
    return line;
}

static void test_line_is_logfmt(void **state)
{
    struct capture *c = *state;
    time_t before = time(NULL);
    drv_log_info("pod started", "pod=%s restarts=%d", "web-1", 0);
    time_t after = time(NULL);
    char *line = only_line(c);

    struct kv kvs[8];
    int n = parse_logfmt(line, kvs, 8);
    assert_int_equal(n, 5);
    assert_string_equal(kvs[0].key, "ts");
    assert_string_equal(kvs[1].key, "level");
    assert_string_equal(kvs[1].val, "info");
    assert_string_equal(kvs[2].key, "msg");
    assert_string_equal(kvs[2].val, "pod started");
    assert_string_equal(kv_get(kvs, n, "pod"), "web-1");
    assert_string_equal(kv_get(kvs, n, "restarts"), "0");
    assert_memory_equal(line + 3 + 23, "Z level=info msg=\"pod started\" pod=web-1", 40);

    /* ts: RFC 3339 UTC with milliseconds, and now */
    const char *ts = kvs[0].val;
    assert_int_equal(strlen(ts), 24);
    struct tm tm = {0};
    const char *rest = strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm);
    assert_non_null(rest);
    assert_true(rest[0] == '.' && rest[1] >= '0' && rest[1] <= '9' && rest[2] >= '0' &&
                rest[2] <= '9' && rest[3] >= '0' && rest[3] <= '9' && rest[4] == 'Z' &&
                rest[5] == '\0');
    time_t t = timegm(&tm);
    assert_true(t >= before - 1 && t <= after + 1);
}

static void test_levels_and_threshold(void **state)
{
    struct capture *c = *state;
    drv_log_set_level(DRV_LOG_WARN);
    assert_int_equal(drv_log_get_level(), DRV_LOG_WARN);
    drv_log_debug("d", NULL);
    drv_log_info("i", NULL);
    assert_string_equal(captured(c), "");
    drv_log_warn("w", NULL);
    drv_log_error("e", "code=%d", 3);
    const char *t = captured(c);
    assert_int_equal(count_lines(t), 2);
    assert_non_null(strstr(t, " level=warn msg=\"w\"\n"));
    assert_non_null(strstr(t, " level=error msg=\"e\" code=3\n"));

    drv_log_set_level(DRV_LOG_OFF);
    drv_log_error("silenced", NULL);
    drv_log(DRV_LOG_OFF, "never", NULL);
    assert_int_equal(count_lines(captured(c)), 2);

    drv_log_set_level(DRV_LOG_DEBUG);
    drv_log((drv_log_level_t)42, "bogus level", NULL);
    drv_log_debug("d", NULL);
    t = captured(c);
    assert_int_equal(count_lines(t), 3);
    assert_non_null(strstr(t, " level=debug msg=\"d\"\n"));
}

static void test_parse_level(void **state)
{
    (void)state;
    drv_log_level_t l = DRV_LOG_INFO;
    assert_int_equal(drv_log_parse_level("debug", &l), DRV_OK);
    assert_int_equal(l, DRV_LOG_DEBUG);
    assert_int_equal(drv_log_parse_level("warning", &l), DRV_OK);
    assert_int_equal(l, DRV_LOG_WARN);
    assert_int_equal(drv_log_parse_level("ERROR", &l), DRV_OK);
    assert_int_equal(l, DRV_LOG_ERROR);
    assert_int_equal(drv_log_parse_level("off", &l), DRV_OK);
    assert_int_equal(l, DRV_LOG_OFF);
    assert_int_equal(drv_log_parse_level("info", &l), DRV_OK);
    assert_int_equal(l, DRV_LOG_INFO);
    assert_int_equal(drv_log_parse_level("verbose", &l), DRV_ERR_INVALID);
    assert_int_equal(drv_log_parse_level("", &l), DRV_ERR_INVALID);
    assert_int_equal(drv_log_parse_level(NULL, &l), DRV_ERR_INVALID);
    assert_int_equal(l, DRV_LOG_INFO);
}

static void test_msg_is_escaped(void **state)
{
    struct capture *c = *state;
    const char *hostile = "say \"hi\"\nlevel=error msg=forged \\ \x01 tab\tend";
    drv_log_info(hostile, NULL);
    char *line = only_line(c);
    struct kv kvs[8];
    int n = parse_logfmt(line, kvs, 8);
    assert_int_equal(n, 3);
    assert_string_equal(kv_get(kvs, n, "msg"), hostile);
    assert_string_equal(kv_get(kvs, n, "level"), "info");
}

static void test_raw_newline_in_fields_stays_one_line(void **state)
{
    struct capture *c = *state;
    drv_log_warn("x", "image=%s", "evil\nts=0 level=error msg=\"forged\"");
    const char *t = captured(c);
    assert_int_equal(count_lines(t), 1);
    assert_null(strstr(t, "\nts=0"));
}

static void test_quote_helper(void **state)
{
    struct capture *c = *state;
    char q[128];
    assert_string_equal(drv_log_quote("a b", q, sizeof(q)), "\"a b\"");
    assert_string_equal(drv_log_quote("q\"b\\n\n\r\t\x7f\x02", q, sizeof(q)),
                        "\"q\\\"b\\\\n\\n\\r\\t\\u007f\\u0002\"");
    assert_string_equal(drv_log_quote("", q, sizeof(q)), "\"\"");
    assert_string_equal(drv_log_quote(NULL, q, sizeof(q)), "\"\"");

    /* used as a field, it round-trips through a parser */
    char path[128];
    drv_log_info("open failed", "path=%s",
                 drv_log_quote("/var/lib/my \"dir\"\n", path, sizeof(path)));
    char *line = only_line(c);
    struct kv kvs[8];
    int n = parse_logfmt(line, kvs, 8);
    assert_int_equal(n, 4);
    assert_string_equal(kv_get(kvs, n, "path"), "/var/lib/my \"dir\"\n");
}

static void test_quote_cut_to_fit(void **state)
{
    (void)state;
    char q[8];
    /* "abcdefgh" needs 11 bytes; 8 gives a closed, shorter string */
    assert_string_equal(drv_log_quote("abcdefgh", q, sizeof(q)), "\"abcde\"");
    /* never a dangling backslash before the closing quote */
    assert_string_equal(drv_log_quote("abcd\"x", q, sizeof(q)), "\"abcd\"");
    assert_string_equal(drv_log_quote("ab\x01", q, sizeof(q)), "\"ab\"");
    /* never half a UTF-8 character: "é" is 2 bytes */
    assert_string_equal(drv_log_quote("abcd\xc3\xa9", q, sizeof(q)), "\"abcd\"");
    assert_string_equal(drv_log_quote("abc\xc3\xa9", q, sizeof(q)), "\"abc\xc3\xa9\"");
    char tiny[3];
    assert_string_equal(drv_log_quote("abc", tiny, sizeof(tiny)), "\"\"");
    assert_string_equal(drv_log_quote("abc", tiny, 2), "");
    assert_string_equal(drv_log_quote("abc", tiny, 1), "");
    assert_null(drv_log_quote("abc", NULL, 0));
}

static void check_capped(struct capture *c, const char *key, bool quoted_end)
{
    const char *t = captured(c);
    assert_int_equal(count_lines(t), 1);
    size_t n = strlen(t);
    assert_true(n <= 4096);
    assert_true(n > 4000);
    char *line = only_line(c);
    struct kv *kvs = calloc(16, sizeof(*kvs));
    int nkv = parse_logfmt(line, kvs, 16);
    assert_true(nkv >= 3);
    const char *v = kv_get(kvs, nkv, key);
    assert_non_null(v);
    if (quoted_end) {
        size_t vl = strlen(v);
        assert_true(vl > strlen(MARK));
        assert_string_equal(v + vl - strlen(MARK), MARK);
    } else {
        assert_string_equal(kvs[nkv - 1].key, MARK);
    }
    free(kvs);
    /* rewind the capture for the next check */
    fflush(c->f);
    assert_int_equal(ftruncate(fileno(c->f), 0), 0);
    rewind(c->f);
}

static void test_long_lines_are_capped(void **state)
{
    struct capture *c = *state;
    char *big = malloc(10001);
    assert_non_null(big);
    memset(big, 'm', 10000);
    big[10000] = '\0';

    drv_log_info(big, NULL); /* cut inside the quoted msg */
    check_capped(c, "msg", true);

    drv_log_info("short", "blob=%s", big); /* cut inside a bare value */
    check_capped(c, "blob", false);

    char *q = malloc(30000);
    assert_non_null(q);
    for (int i = 0; i < 10000; i++)
        big[i] = (i % 2) ? '"' : '\n'; /* every byte needs an escape */
    drv_log_info("short", "field=%s", drv_log_quote(big, q, 30000)); /* cut inside escapes */
    check_capped(c, "field", true);

    for (int i = 0; i + 1 < 10000; i += 2) {
        big[i] = '\xc3';
        big[i + 1] = '\xa9';
    }
    drv_log_info(big, NULL); /* cut between UTF-8 sequences */
    const char *t = captured(c);
    size_t tl = strlen(t);
    const char *mark = strstr(t, MARK);
    assert_non_null(mark);
    assert_true(((mark - t) - (long)strlen("ts=2026-01-01T00:00:00.000Z level=info msg=\"")) % 2 ==
                0);
    assert_true(tl <= 4096);
    free(q);
    free(big);
}

static void test_errno_preserved(void **state)
{
    (void)state;
    errno = ENOSPC;
    drv_log_error("disk full", "dir=%s", "/var/lib/drover");
    assert_int_equal(errno, ENOSPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_is_logfmt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_levels_and_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msg_is_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_newline_in_fields_stays_one_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quote_helper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quote_cut_to_fit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_lines_are_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errno_preserved, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
