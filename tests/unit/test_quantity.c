/* Resource quantities: what users write in resources.requests/limits and what Drover prints back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "drover/quantity.h"

typedef struct {
    const char *in;
    int64_t want;
    drv_qty_format_t fmt;
} qty_case_t;

static void test_cpu_valid(void **state)
{
    static const qty_case_t cases[] = {
        {"1", 1000, DRV_QTY_DECIMAL},
        {"2", 2000, DRV_QTY_DECIMAL},
        {"0", 0, DRV_QTY_DECIMAL},
        {"250m", 250, DRV_QTY_DECIMAL},
        {"0.5", 500, DRV_QTY_DECIMAL},
        {".5", 500, DRV_QTY_DECIMAL},
        {"1.", 1000, DRV_QTY_DECIMAL},
        {"+1.5", 1500, DRV_QTY_DECIMAL},
        {"1.250", 1250, DRV_QTY_DECIMAL},
        {"0.1m", 1, DRV_QTY_DECIMAL},      /* rounds up to a whole millicore */
        {"1.0001", 1001, DRV_QTY_DECIMAL}, /* rounds up */
        {"100000n", 1, DRV_QTY_DECIMAL},
        {"1000000u", 1000, DRV_QTY_DECIMAL},
        {"2k", 2000000, DRV_QTY_DECIMAL},
        {"1e3", 1000000, DRV_QTY_EXPONENT},
        {"1E-3", 1, DRV_QTY_EXPONENT},
        {"5e-1", 500, DRV_QTY_EXPONENT},
        {"1Ki", 1024000, DRV_QTY_BINARY},
        {"-0", 0, DRV_QTY_DECIMAL},
        {"000000000000000000000000000000000000000000002", 2000, DRV_QTY_DECIMAL},
        {"0.000000000000000000000000000000000000000000001", 1, DRV_QTY_DECIMAL},
        {"4611686018427387904m", DRV_QTY_MAX, DRV_QTY_DECIMAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t v = -1;
        drv_qty_format_t fmt = (drv_qty_format_t)-1;
        drv_error_t err = DRV_ERROR_INIT;
        drv_err_t rc = drv_qty_parse_cpu(cases[i].in, &v, &fmt, &err);
        if (rc != DRV_OK)
            fail_msg("%s: %s", cases[i].in, drv_error_msg(&err));
        if (v != cases[i].want)
            fail_msg("%s: got %lld want %lld", cases[i].in, (long long)v, (long long)cases[i].want);
        assert_int_equal(fmt, cases[i].fmt);
    }
}

static void test_memory_valid(void **state)
{
    static const qty_case_t cases[] = {
        {"0", 0, DRV_QTY_DECIMAL},
        {"1500", 1500, DRV_QTY_DECIMAL},
        {"64Mi", 64LL << 20, DRV_QTY_BINARY},
        {"1.5Gi", 1610612736, DRV_QTY_BINARY},
        {"0.5Ki", 512, DRV_QTY_BINARY},
        {"0.1Ki", 103, DRV_QTY_BINARY}, /* 102.4 rounds up */
        {"1G", 1000000000, DRV_QTY_DECIMAL},
        {"512k", 512000, DRV_QTY_DECIMAL},
        {"1e3", 1000, DRV_QTY_EXPONENT},
        {"1E3", 1000, DRV_QTY_EXPONENT},
        {"12e+2", 1200, DRV_QTY_EXPONENT},
        {"1E", 1000000000000000000LL, DRV_QTY_DECIMAL}, /* exa, not an exponent */
        {"100m", 1, DRV_QTY_DECIMAL},                   /* 0.1 byte rounds up */
        {"1500m", 2, DRV_QTY_DECIMAL},
        {"1e-400", 1, DRV_QTY_EXPONENT},
        {"0e400", 0, DRV_QTY_EXPONENT},
        {"4Ei", DRV_QTY_MAX, DRV_QTY_BINARY},
        {"4611686018427387904", DRV_QTY_MAX, DRV_QTY_DECIMAL},
        {"1Ti", 1LL << 40, DRV_QTY_BINARY},
        {"2Pi", 2LL << 50, DRV_QTY_BINARY},
        {"3.999999999999999999Ei", DRV_QTY_MAX - 1, DRV_QTY_BINARY} /* 2^62 - 1.15 */,
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t v = -1;
        drv_qty_format_t fmt = (drv_qty_format_t)-1;
        drv_error_t err = DRV_ERROR_INIT;
        drv_err_t rc = drv_qty_parse_memory(cases[i].in, &v, &fmt, &err);
        if (rc != DRV_OK)
            fail_msg("%s: %s", cases[i].in, drv_error_msg(&err));
        if (v != cases[i].want)
            fail_msg("%s: got %lld want %lld", cases[i].in, (long long)v, (long long)cases[i].want);
        assert_int_equal(fmt, cases[i].fmt);
    }
}

typedef struct {
    const char *in;
    drv_err_t code;
    const char *msg_part;
} qty_bad_t;

static void check_bad(const qty_bad_t *c, bool cpu)
{
    int64_t v = 12345;
    drv_qty_format_t fmt = DRV_QTY_EXPONENT;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = cpu ? drv_qty_parse_cpu(c->in, &v, &fmt, &err)
                       : drv_qty_parse_memory(c->in, &v, &fmt, &err);
    if (rc != c->code)
        fail_msg("%s: got %s want %s (%s)", c->in ? c->in : "(null)", drv_strerror(rc),
                 drv_strerror(c->code), drv_error_msg(&err));
    assert_int_equal(err.code, c->code);
    if (strstr(err.msg, c->msg_part) == NULL)
        fail_msg("%s: message \"%s\" lacks \"%s\"", c->in ? c->in : "(null)", err.msg, c->msg_part);
    /* Outputs are untouched on failure. */
    assert_int_equal(v, 12345);
    assert_int_equal(fmt, DRV_QTY_EXPONENT);
}

static const char regex_msg[] = "quantities must match the regular expression";

static void test_malformed(void **state)
{
    static const qty_bad_t cases[] = {
        {"", DRV_ERR_INVALID, "must not be empty"},
        {NULL, DRV_ERR_INVALID, "must not be empty"},
        {" 1", DRV_ERR_INVALID, regex_msg},
        {"1 ", DRV_ERR_INVALID, regex_msg},
        {"1 Mi", DRV_ERR_INVALID, regex_msg},
        {"1.2.3", DRV_ERR_INVALID, regex_msg},
        {"Mi", DRV_ERR_INVALID, regex_msg},
        {"1Mii", DRV_ERR_INVALID, regex_msg},
        {".", DRV_ERR_INVALID, regex_msg},
        {"+", DRV_ERR_INVALID, regex_msg},
        {"+-1", DRV_ERR_INVALID, regex_msg},
        {"1K", DRV_ERR_INVALID, regex_msg},
        {"1kb", DRV_ERR_INVALID, regex_msg},
        {"1e", DRV_ERR_INVALID, regex_msg},
        {"1e+", DRV_ERR_INVALID, regex_msg},
        {"1e3m", DRV_ERR_INVALID, regex_msg},
        {"1mi", DRV_ERR_INVALID, regex_msg},
        {"0x10", DRV_ERR_INVALID, regex_msg},
        {"1\n", DRV_ERR_INVALID, "\"1\\x0a\""},
        {"abc", DRV_ERR_INVALID, "\"abc\""},
        {"1111111111111111111111111111111111111111111111111111111111111111111111", DRV_ERR_INVALID,
         "is too long"},
        {"-1", DRV_ERR_RANGE, "must not be negative"},
        {"-0.5Gi", DRV_ERR_RANGE, "must not be negative"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check_bad(&cases[i], true);
        check_bad(&cases[i], false);
    }
}

static void test_overflow(void **state)
{
    static const qty_bad_t mem[] = {
        {"99999999999999999999", DRV_ERR_RANGE, "is too large"},
        {"9Ei", DRV_ERR_RANGE, "is too large"},
        {"5E", DRV_ERR_RANGE, "is too large"},
        {"1e400", DRV_ERR_RANGE, "is too large"},
        {"1e99999999999999999999", DRV_ERR_RANGE, "is too large"},
        {"4611686018427387905", DRV_ERR_RANGE, "the maximum is 4Ei"},
        {"4.000000000000000001Ei", DRV_ERR_RANGE, "is too large"},
        {"18446744073709551616", DRV_ERR_RANGE, "is too large"},
        {"1000000P", DRV_ERR_RANGE, "is too large"},
    };
    for (size_t i = 0; i < sizeof(mem) / sizeof(mem[0]); i++)
        check_bad(&mem[i], false);

    static const qty_bad_t cpu[] = {
        {"4611686018427388", DRV_ERR_RANGE, "is too large"}, /* * 1000 > 2^62 */
        {"4611686018427387904001u", DRV_ERR_RANGE, "is too large"},
        {"4Ei", DRV_ERR_RANGE, "is too large"},
        {"1e16", DRV_ERR_RANGE, "is too large"},
    };
    for (size_t i = 0; i < sizeof(cpu) / sizeof(cpu[0]); i++)
        check_bad(&cpu[i], true);

    /* Just below the limit in CPU: 4611686018427387.904 cores. */
    int64_t v;
    assert_int_equal(drv_qty_parse_cpu("4611686018427387.904", &v, NULL, NULL), DRV_OK);
    assert_int_equal(v, DRV_QTY_MAX);
    assert_int_equal(drv_qty_parse_cpu("4611686018427387.9041", &v, NULL, NULL), DRV_ERR_RANGE);
}

typedef struct {
    int64_t v;
    drv_qty_format_t fmt;
    const char *want;
} qty_fmt_case_t;

static void test_format_memory(void **state)
{
    static const qty_fmt_case_t cases[] = {
        {0, DRV_QTY_BINARY, "0"},
        {0, DRV_QTY_DECIMAL, "0"},
        {64LL << 20, DRV_QTY_BINARY, "64Mi"},
        {1536, DRV_QTY_BINARY, "1536"}, /* 1.5Ki: no binary suffix divides it */
        {1024000, DRV_QTY_BINARY, "1000Ki"},
        {1610612736, DRV_QTY_BINARY, "1536Mi"},
        {5000, DRV_QTY_BINARY, "5k"}, /* binary falls back to decimal suffixes */
        {1000000000, DRV_QTY_DECIMAL, "1G"},
        {1500, DRV_QTY_DECIMAL, "1500"},
        {1500000, DRV_QTY_DECIMAL, "1500k"},
        {1024, DRV_QTY_DECIMAL, "1024"},
        {1000, DRV_QTY_EXPONENT, "1k"},
        {DRV_QTY_MAX, DRV_QTY_BINARY, "4Ei"},
        {1LL << 40, DRV_QTY_BINARY, "1Ti"},
        {3000000000000000000LL, DRV_QTY_DECIMAL, "3E"},
        {7, DRV_QTY_BINARY, "7"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[32];
        assert_int_equal(drv_qty_format_memory(cases[i].v, cases[i].fmt, out, sizeof(out)), DRV_OK);
        assert_string_equal(out, cases[i].want);
    }
}

static void test_format_cpu(void **state)
{
    static const struct {
        int64_t v;
        const char *want;
    } cases[] = {
        {0, "0"},
        {2000, "2"},
        {250, "250m"},
        {1500, "1500m"},
        {1, "1m"},
        {1000000, "1000"},
        {DRV_QTY_MAX, "4611686018427387904m"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[32];
        assert_int_equal(drv_qty_format_cpu(cases[i].v, out, sizeof(out)), DRV_OK);
        assert_string_equal(out, cases[i].want);
    }
}

static void test_format_short_buffer(void **state)
{
    char out[5] = "xyz";
    /* "64Mi" needs five bytes with its NUL: four is too short and leaves out untouched. */
    assert_int_equal(drv_qty_format_memory(64LL << 20, DRV_QTY_BINARY, out, 4), DRV_ERR_TOOBIG);
    assert_string_equal(out, "xyz");
    assert_int_equal(drv_qty_format_cpu(250, out, 4), DRV_ERR_TOOBIG);
    assert_string_equal(out, "xyz");
    assert_int_equal(drv_qty_format_memory(64LL << 20, DRV_QTY_BINARY, out, 5), DRV_OK);
    assert_string_equal(out, "64Mi");
    assert_int_equal(drv_qty_format_cpu(1, out, 0), DRV_ERR_TOOBIG);
}

/* parse -> format -> parse gives the same value, and canonical text is stable. */
static void test_round_trip(void **state)
{
    static const char *const mem[] = {"64Mi",  "1G",   "1500", "1.5Gi", "512k",   "1e3",
                                      "0.5Ki", "100m", "3Ti",  "1E",    "2000Mi", "1000Ki"};
    static const char *const canon_mem[] = {"64Mi", "1G", "1500", "1536Mi", "512k",   "1k",
                                            "512",  "1",  "3Ti",  "1E",     "2000Mi", "1000Ki"};
    for (size_t i = 0; i < sizeof(mem) / sizeof(mem[0]); i++) {
        int64_t v, v2;
        drv_qty_format_t fmt;
        char out[32];
        assert_int_equal(drv_qty_parse_memory(mem[i], &v, &fmt, NULL), DRV_OK);
        assert_int_equal(drv_qty_format_memory(v, fmt, out, sizeof(out)), DRV_OK);
        if (strcmp(out, canon_mem[i]) != 0)
            fail_msg("%s: formatted as %s, want %s", mem[i], out, canon_mem[i]);
        assert_int_equal(drv_qty_parse_memory(out, &v2, NULL, NULL), DRV_OK);
        assert_int_equal(v, v2);
    }
    static const char *const cpu[] = {"2", "250m", "0.5", "1.25", "0.1m", "1e-3", "1k"};
    static const char *const canon_cpu[] = {"2", "250m", "500m", "1250m", "1m", "1m", "1000"};
    for (size_t i = 0; i < sizeof(cpu) / sizeof(cpu[0]); i++) {
        int64_t v, v2;
        char out[32];
        assert_int_equal(drv_qty_parse_cpu(cpu[i], &v, NULL, NULL), DRV_OK);
        assert_int_equal(drv_qty_format_cpu(v, out, sizeof(out)), DRV_OK);
        if (strcmp(out, canon_cpu[i]) != 0)
            fail_msg("%s: formatted as %s, want %s", cpu[i], out, canon_cpu[i]);
        assert_int_equal(drv_qty_parse_cpu(out, &v2, NULL, NULL), DRV_OK);
        assert_int_equal(v, v2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_valid),           cmocka_unit_test(test_memory_valid),
        cmocka_unit_test(test_malformed),           cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_format_memory),       cmocka_unit_test(test_format_cpu),
        cmocka_unit_test(test_format_short_buffer), cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
