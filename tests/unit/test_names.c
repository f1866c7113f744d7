/* Kubernetes name rules: the same names accepted, the same reasons given for rejecting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "drover/names.h"

typedef bool (*name_check_fn)(const char *s, char *why, size_t whysz);

typedef struct {
    const char *in;
    bool ok;
    const char *why_part; /* substring of the reason when !ok */
} name_case_t;

static void run_cases(const char *what, name_check_fn fn, const name_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char why[1024];
        memcpy(why, "sentinel", 9);
        bool ok = fn(cases[i].in, why, sizeof(why));
        if (ok != cases[i].ok)
            fail_msg("%s(\"%s\"): got %s (%s)", what, cases[i].in ? cases[i].in : "(null)",
                     ok ? "valid" : "invalid", ok ? "" : why);
        if (ok)
            continue;
        if (strstr(why, cases[i].why_part) == NULL)
            fail_msg("%s(\"%s\"): reason \"%s\" lacks \"%s\"", what, cases[i].in, why,
                     cases[i].why_part);
        /* Without a buffer the answer is the same. */
        assert_false(fn(cases[i].in, NULL, 0));
    }
}

#define RUN(fn, cases) run_cases(#fn, fn, cases, sizeof(cases) / sizeof(cases[0]))

/* 64 characters */
#define LONG64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define LONG63 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const char label_rfc[] =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

static void test_dns_label(void **state)
{
    static const name_case_t cases[] = {
        {"web", true, NULL},
        {"a", true, NULL},
        {"0", true, NULL},
        {"my-app-1", true, NULL},
        {LONG63, true, NULL},
        {LONG64, false, "must be no more than 63 characters"},
        {"", false, "a lowercase RFC 1123 label must consist of"},
        {NULL, false, "a lowercase RFC 1123 label"},
        {"Web", false, label_rfc},
        {"-web", false, "must start and end with an alphanumeric character"},
        {"web-", false, "must start and end"},
        {"web_1", false, "lower case alphanumeric"},
        {"a.b", false, "must not contain dots"},
        {"we b", false, "RFC 1123 label"},
    };
    RUN(drv_name_dns_label, cases);
}

static void test_dns_label_both_reasons(void **state)
{
    char why[1024];
    assert_false(drv_name_dns_label(LONG64 "_", why, sizeof(why)));
    assert_non_null(strstr(why, "must be no more than 63 characters; a lowercase RFC 1123 label"));
}

static void test_dns_subdomain(void **state)
{
    static const name_case_t cases[] = {
        {"example.com", true, NULL},
        {"a.b.c", true, NULL},
        {"web", true, NULL},
        {LONG64 "." LONG64, true, NULL}, /* Kubernetes does not cap the labels themselves */
        {"", false, "a lowercase RFC 1123 subdomain must consist of"},
        {"a..b", false, "(e.g. 'example.com', regex used for validation is"},
        {".a", false, "subdomain"},
        {"a.", false, "subdomain"},
        {"a.-b", false, "subdomain"},
        {"Example.com", false, "subdomain"},
        {LONG64 "." LONG64 "." LONG64 "." LONG64, false, "must be no more than 253 characters"},
    };
    RUN(drv_name_dns_subdomain, cases);
}

static void test_dns1035_label(void **state)
{
    static const name_case_t cases[] = {
        {"svc", true, NULL},
        {"my-svc-2", true, NULL},
        {"1svc", false,
         "a DNS-1035 label must consist of lower case alphanumeric characters or "
         "'-', start with an alphabetic character"},
        {"svc-", false, "DNS-1035"},
        {"", false, "DNS-1035"},
        {LONG64, false, "must be no more than 63 characters"},
    };
    RUN(drv_name_dns1035_label, cases);
}

static void test_label_key(void **state)
{
    static const name_case_t cases[] = {
        {"app", true, NULL},
        {"App_Name.v1", true, NULL},
        {"example.com/app", true, NULL},
        {"app.kubernetes.io/name", true, NULL},
        {"1", true, NULL},
        {LONG63, true, NULL},
        {"", false, "name part must be non-empty"},
        {"/app", false, "prefix part must be non-empty"},
        {"example.com/", false, "name part must be non-empty"},
        {"a/b/c", false, "a valid label key must consist of alphanumeric characters"},
        {"Example.com/app", false, "prefix part a lowercase RFC 1123 subdomain"},
        {"_app", false,
         "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
         "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc'"},
        {"app-", false, "name part must consist"},
        {"a b", false, "name part must consist"},
        {LONG64, false, "name part must be no more than 63 characters"},
    };
    RUN(drv_name_label_key, cases);
}

static void test_label_value(void **state)
{
    static const name_case_t cases[] = {
        {"", true, NULL},
        {NULL, true, NULL},
        {"web", true, NULL},
        {"v1.2_3-X", true, NULL},
        {LONG63, true, NULL},
        {LONG64, false, "must be no more than 63 characters"},
        {"-web", false, "a valid label must be an empty string or consist of alphanumeric"},
        {"a/b", false, "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?'"},
        {"caf\xc3\xa9", false, "a valid label"},
    };
    RUN(drv_name_label_value, cases);
}

static void test_port_name(void **state)
{
    static const name_case_t cases[] = {
        {"http", true, NULL},
        {"http-alt", true, NULL},
        {"h2c", true, NULL},
        {"abcdefghijklmno", true, NULL},
        {"abcdefghijklmnop", false, "must be no more than 15 characters"},
        {"HTTP", false, "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"},
        {"8080", false, "must contain at least one letter (a-z)"},
        {"a--b", false, "must not contain consecutive hyphens"},
        {"-http", false, "must not begin or end with a hyphen"},
        {"http-", false, "must not begin or end with a hyphen"},
        {"", false, "must contain"},
    };
    RUN(drv_name_port_name, cases);
}

static void test_config_key(void **state)
{
    static const name_case_t cases[] = {
        {"config.yaml", true, NULL},
        {"KEY_NAME", true, NULL},
        {".hidden", true, NULL},
        {"a..b", true, NULL},
        {".", false, "must not be '.'"},
        {"..", false, "must not be '..'"},
        {"..data", false, "must not start with '..'"},
        {"", false, "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"},
        {"a/b", false, "regex used for validation is '[-._a-zA-Z0-9]+'"},
        {"a b", false, "a valid config key"},
    };
    RUN(drv_name_config_key, cases);

    char long_key[300];
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    char why[256];
    assert_false(drv_name_config_key(long_key, why, sizeof(why)));
    assert_string_equal(why, "must be no more than 253 characters");
}

static void test_env_var(void **state)
{
    static const name_case_t cases[] = {
        {"PATH", true, NULL},
        {"my.env-name", true, NULL},
        {"1ST", true, NULL},
        {"with space", true, NULL},
        {"", false, "environment variable name must be non-empty"},
        {NULL, false, "must be non-empty"},
        {"A=B", false,
         "a valid environment variable name must consist only of printable ASCII characters "
         "other than '='"},
        {"TAB\t", false, "printable ASCII"},
        {"caf\xc3\xa9", false, "printable ASCII"},
    };
    RUN(drv_name_env_var, cases);
}

/* A short reason buffer is filled as far as it goes and always terminated. */
static void test_short_why_buffer(void **state)
{
    char why[8];
    memset(why, 'x', sizeof(why));
    assert_false(drv_name_dns_label("BAD", why, sizeof(why)));
    assert_int_equal(strlen(why), sizeof(why) - 1);
    assert_memory_equal(why, "a lower", 7);
    char one[1] = {'x'};
    assert_false(drv_name_dns_label("BAD", one, sizeof(one)));
    assert_int_equal(one[0], '\0');
}

static void test_node_pattern(void **state)
{
    (void)state;
    char why[512];
    assert_true(drv_name_node_pattern("pi-07", why, sizeof(why)));
    assert_true(drv_name_node_pattern("pi-{serial}", why, sizeof(why)));
    assert_true(drv_name_node_pattern("{hostname}-{mac}.site", why, sizeof(why)));
    assert_true(drv_name_node_pattern("{serial}", why, sizeof(why)));
    assert_true(drv_name_node_is_pattern("pi-{serial}"));
    assert_false(drv_name_node_is_pattern("pi-07"));
    assert_false(drv_name_node_pattern("pi-{uuid}", why, sizeof(why)));
    assert_non_null(strstr(why, "unknown placeholder '{uuid}'"));
    assert_non_null(strstr(why, "{serial}, {hostname}, {mac}"));
    assert_false(drv_name_node_pattern("pi-{serial", why, sizeof(why)));
    assert_non_null(strstr(why, "'{' without its '}'"));
    assert_false(drv_name_node_pattern("pi-serial}", why, sizeof(why)));
    assert_false(drv_name_node_pattern("Pi-{serial}", why, sizeof(why)));
    assert_non_null(strstr(why, "RFC 1123 subdomain"));
    assert_false(drv_name_node_pattern("-{serial}", why, sizeof(why)));
    assert_false(drv_name_node_pattern("pi_{serial}", why, sizeof(why)));
    assert_false(drv_name_node_pattern("", why, sizeof(why)));
    char longname[80];
    memset(longname, 'a', 64);
    longname[64] = '\0';
    assert_false(drv_name_node_pattern(longname, why, sizeof(why)));
    assert_non_null(strstr(why, "no more than 63"));
    memcpy(longname + 55, "{serial}", 9);
    assert_true(drv_name_node_pattern(longname, why, sizeof(why)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dns_label),     cmocka_unit_test(test_dns_label_both_reasons),
        cmocka_unit_test(test_dns_subdomain), cmocka_unit_test(test_dns1035_label),
        cmocka_unit_test(test_label_key),     cmocka_unit_test(test_label_value),
        cmocka_unit_test(test_port_name),     cmocka_unit_test(test_config_key),
        cmocka_unit_test(test_env_var),       cmocka_unit_test(test_short_why_buffer),
        cmocka_unit_test(test_node_pattern),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
