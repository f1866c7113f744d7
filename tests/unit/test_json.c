/* shared/json: look-ups, the checked double to integer conversion (1e300, -1e300, infinity,
 * 1.5, 2^63 and 2^64 refused before any cast), every strict reader with its field path, and
 * the table read (required, wrong type, bounds, unknown fields, null). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "drover/cleanup.h"
#include "drover/json.h"

static cJSON *parse(const char *text)
{
    cJSON *o = cJSON_Parse(text);
    assert_non_null(o);
    return o;
}

#define ASSERT_ERR(call, code, text)                                                               \
    do {                                                                                           \
        drv_error_t e_ = DRV_ERROR_INIT;                                                           \
        drv_error_t *ep = &e_;                                                                     \
        assert_int_equal((call), (code));                                                          \
        if (strcmp(e_.msg, (text)) != 0)                                                           \
            fail_msg("got \"%s\", want \"%s\"", e_.msg, (text));                                   \
    } while (0)

static void test_lookups(void **state)
{
    (void)state;
    _cleanup_cjson_ cJSON *o =
        parse("{\"a\":\"x\",\"n\":3,\"t\":true,\"f\":false,\"m\":{\"name\":\"web\",\"r\":{\"k\":"
              "2.5,\"i\":7}},\"arr\":[1,2,3],\"big\":1e300}");
    assert_string_equal(drv_json_str(o, "a"), "x");
    assert_null(drv_json_str(o, "n"));
    assert_null(drv_json_str(o, "missing"));
    assert_null(drv_json_str(NULL, "a"));
    assert_string_equal(drv_json_str_or(o, "n", "d"), "d");
    assert_string_equal(drv_json_str_or(o, "a", "d"), "x");
    assert_non_null(drv_json_get(o, "m"));
    assert_null(drv_json_get(drv_json_get(o, "arr"), "x"));
    assert_null(drv_json_get(drv_json_get(o, "a"), "x"));
    assert_true(drv_json_true(o, "t"));
    assert_false(drv_json_true(o, "f"));
    assert_false(drv_json_true(o, "a"));
    assert_string_equal(drv_json_str_at(o, "m.name"), "web");
    assert_null(drv_json_str_at(o, "m.r"));
    assert_null(drv_json_str_at(o, "m.name.x"));
    assert_null(drv_json_at(o, "m..name"));
    assert_int_equal(drv_json_int_at(o, "m.r.i", 0, 10, -1), 7);
    assert_int_equal(drv_json_int_at(o, "m.r.i", 0, 5, -1), -1);
    assert_int_equal(drv_json_int_at(o, "m.r.k", 0, 10, -1), -1);
    assert_int_equal(drv_json_int_at(o, "big", INT64_MIN, INT64_MAX, -1), -1);
    assert_int_equal(drv_json_int_at(o, "a", 0, 10, -1), -1);
    assert_int_equal(drv_json_int_or(o, "n", -1), 3);
    int64_t iv = 9;
    assert_false(drv_json_int(o, "big", &iv));
    assert_false(drv_json_int(o, "missing", &iv));
    assert_int_equal(iv, 9);
    assert_true(drv_json_int(o, "n", &iv));
    assert_int_equal(iv, 3);
    bool bv = false;
    assert_false(drv_json_bool(o, "n", &bv));
    assert_true(drv_json_bool(o, "t", &bv));
    assert_true(bv);
    assert_int_equal(drv_json_int_or(o, "big", -1), -1);
    assert_int_equal(drv_json_int_or(o, "a", -1), -1);
    assert_int_equal(drv_json_int_or(drv_json_get(o, "m"), "r", -1), -1);
    assert_int_equal(drv_json_array_len(drv_json_get(o, "arr")), 3);
    assert_int_equal(drv_json_array_len(drv_json_get(o, "m")), 0);
    assert_int_equal(drv_json_array_len(NULL), 0);
    char longkey[300];
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    assert_null(drv_json_at(o, longkey));
}

static void test_to_int(void **state)
{
    (void)state;
    int64_t v = 42;
    uint64_t u = 42;
    static const double bad[] = {1e300, -1e300, 1.5, -0.5, 9223372036854775808.0, -1e19};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(drv_json_to_int(bad[i], INT64_MIN, INT64_MAX, &v));
    assert_false(drv_json_to_int(NAN, INT64_MIN, INT64_MAX, &v));
    assert_false(drv_json_to_int(INFINITY, INT64_MIN, INT64_MAX, &v));
    assert_false(drv_json_to_int(-INFINITY, INT64_MIN, INT64_MAX, &v));
    assert_int_equal(v, 42); /* untouched */
    assert_true(drv_json_to_int(-9223372036854775808.0, INT64_MIN, INT64_MAX, &v));
    assert_true(v == INT64_MIN);
    assert_true(drv_json_to_int(9223372036854774784.0, INT64_MIN, INT64_MAX, &v));
    assert_true(v == 9223372036854774784LL);
    assert_true(drv_json_to_int(-0.0, 0, 0, &v));
    assert_int_equal(v, 0);
    assert_false(drv_json_to_int(11, 1, 10, &v));
    assert_false(drv_json_to_int(0, 1, 10, &v));
    assert_true(drv_json_to_int(10, 1, 10, &v));
    assert_int_equal(v, 10);

    assert_false(drv_json_to_uint(-1, UINT64_MAX, &u));
    assert_false(drv_json_to_uint(1e300, UINT64_MAX, &u));
    assert_false(drv_json_to_uint(18446744073709551616.0, UINT64_MAX, &u));
    assert_false(drv_json_to_uint(NAN, UINT64_MAX, &u));
    assert_false(drv_json_to_uint(2.5, UINT64_MAX, &u));
    assert_false(drv_json_to_uint(101, 100, &u));
    assert_int_equal(u, 42);
    assert_true(drv_json_to_uint(18446744073709549568.0, UINT64_MAX, &u));
    assert_true(u == 18446744073709549568ULL);
    assert_true(drv_json_to_uint(100, 100, &u));
    assert_int_equal(u, 100);
}

static void test_read_int(void **state)
{
    (void)state;
    _cleanup_cjson_ cJSON *o =
        parse("{\"ok\":5,\"huge\":1e300,\"neg\":-1e300,\"inf\":1e999,\"half\":1.5,\"p63\":"
              "9223372036854775808,\"s\":\"5\",\"nul\":null}");
    int64_t v = -7;
    bool present = false;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(
        drv_json_read_int(o, "spec", "ok", DRV_JSON_REQUIRED, 0, 10, &v, &present, &err), DRV_OK);
    assert_int_equal(v, 5);
    assert_true(present);
    static const char *const bad[] = {"huge", "neg", "inf", "half", "p63", "s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[128];
        snprintf(want, sizeof(want), "spec.%s: must be a whole number from -5 to 10", bad[i]);
        v = -7;
        ASSERT_ERR(drv_json_read_int(o, "spec", bad[i], DRV_JSON_OPTIONAL, -5, 10, &v, NULL, ep),
                   DRV_ERR_INVALID, want);
        assert_int_equal(v, -7);
    }
    ASSERT_ERR(drv_json_read_int(o, NULL, "ok", DRV_JSON_OPTIONAL, 6, 10, &v, NULL, ep),
               DRV_ERR_INVALID, "ok: must be a whole number from 6 to 10");
    ASSERT_ERR(drv_json_read_int(o, "", "gone", DRV_JSON_REQUIRED, 0, 1, &v, NULL, ep),
               DRV_ERR_INVALID, "gone: required");
    ASSERT_ERR(drv_json_read_int(o, "a.b[2]", "nul", DRV_JSON_REQUIRED, 0, 1, &v, NULL, ep),
               DRV_ERR_INVALID, "a.b[2].nul: required");
    /* null: a wrong type when merely optional, absent when nullable. */
    ASSERT_ERR(drv_json_read_int(o, NULL, "nul", DRV_JSON_OPTIONAL, 0, 1, &v, NULL, ep),
               DRV_ERR_INVALID, "nul: must be a whole number from 0 to 1");
    present = true;
    assert_int_equal(drv_json_read_int(o, NULL, "nul", DRV_JSON_NULLABLE, 0, 1, &v, &present, &err),
                     DRV_OK);
    assert_false(present);
    assert_int_equal(
        drv_json_read_int(o, NULL, "gone", DRV_JSON_OPTIONAL, 0, 1, &v, &present, &err), DRV_OK);
    assert_false(present);
    assert_int_equal(v, -7);

    uint64_t u = 9;
    assert_int_equal(drv_json_read_uint(o, NULL, "ok", DRV_JSON_REQUIRED, 5, &u, NULL, &err),
                     DRV_OK);
    assert_int_equal(u, 5);
    ASSERT_ERR(drv_json_read_uint(o, NULL, "neg", DRV_JSON_REQUIRED, 5, &u, NULL, ep),
               DRV_ERR_INVALID, "neg: must be a whole number from 0 to 5");
    ASSERT_ERR(drv_json_read_uint(o, NULL, "huge", DRV_JSON_REQUIRED, UINT64_MAX, &u, NULL, ep),
               DRV_ERR_INVALID, "huge: must be a whole number from 0 to 18446744073709551615");
    ASSERT_ERR(drv_json_read_uint(o, NULL, "x", DRV_JSON_REQUIRED, 5, &u, NULL, ep),
               DRV_ERR_INVALID, "x: required");
    assert_int_equal(u, 5);
}

static void test_read_others(void **state)
{
    (void)state;
    _cleanup_cjson_ cJSON *o = parse("{\"s\":\"hello\",\"b\":true,\"d\":2.5,\"o\":{},\"a\":[],"
                                     "\"n\":1,\"inf\":-1e999}");
    drv_error_t err = DRV_ERROR_INIT;
    const char *s = NULL;
    assert_int_equal(drv_json_read_string(o, "m", "s", DRV_JSON_REQUIRED, &s, NULL, &err), DRV_OK);
    assert_string_equal(s, "hello");
    ASSERT_ERR(drv_json_read_string(o, "m", "n", DRV_JSON_REQUIRED, &s, NULL, ep), DRV_ERR_INVALID,
               "m.n: must be a string");
    ASSERT_ERR(drv_json_read_string(o, "m", "z", DRV_JSON_REQUIRED, &s, NULL, ep), DRV_ERR_INVALID,
               "m.z: required");

    char buf[6] = "keep";
    assert_int_equal(
        drv_json_read_strbuf(o, NULL, "s", DRV_JSON_REQUIRED, buf, sizeof(buf), NULL, &err),
        DRV_OK);
    assert_string_equal(buf, "hello");
    char small[5] = "keep";
    ASSERT_ERR(
        drv_json_read_strbuf(o, NULL, "s", DRV_JSON_REQUIRED, small, sizeof(small), NULL, ep),
        DRV_ERR_INVALID, "s: must be no more than 4 characters");
    assert_string_equal(small, "keep");
    assert_int_equal(
        drv_json_read_strbuf(o, NULL, "z", DRV_JSON_OPTIONAL, small, sizeof(small), NULL, &err),
        DRV_OK);
    assert_string_equal(small, "keep");

    bool b = false;
    assert_int_equal(drv_json_read_bool(o, NULL, "b", DRV_JSON_REQUIRED, &b, NULL, &err), DRV_OK);
    assert_true(b);
    ASSERT_ERR(drv_json_read_bool(o, NULL, "n", DRV_JSON_REQUIRED, &b, NULL, ep), DRV_ERR_INVALID,
               "n: must be true or false");

    double d = 0;
    assert_int_equal(drv_json_read_double(o, NULL, "d", DRV_JSON_REQUIRED, 0, 3, &d, NULL, &err),
                     DRV_OK);
    assert_true(d == 2.5);
    ASSERT_ERR(drv_json_read_double(o, NULL, "d", DRV_JSON_REQUIRED, 0, 2, &d, NULL, ep),
               DRV_ERR_INVALID, "d: must be a number from 0 to 2");
    ASSERT_ERR(
        drv_json_read_double(o, NULL, "inf", DRV_JSON_REQUIRED, -HUGE_VAL, HUGE_VAL, &d, NULL, ep),
        DRV_ERR_INVALID, "inf: must be a number from -inf to inf");
    ASSERT_ERR(drv_json_read_double(o, NULL, "s", DRV_JSON_REQUIRED, 0, 2, &d, NULL, ep),
               DRV_ERR_INVALID, "s: must be a number from 0 to 2");

    const cJSON *j = NULL;
    assert_int_equal(drv_json_read_object(o, NULL, "o", DRV_JSON_REQUIRED, &j, NULL, &err), DRV_OK);
    assert_true(cJSON_IsObject(j));
    ASSERT_ERR(drv_json_read_object(o, NULL, "a", DRV_JSON_REQUIRED, &j, NULL, ep), DRV_ERR_INVALID,
               "a: must be an object");
    assert_int_equal(drv_json_read_array(o, NULL, "a", DRV_JSON_REQUIRED, &j, NULL, &err), DRV_OK);
    assert_true(cJSON_IsArray(j));
    ASSERT_ERR(drv_json_read_array(o, "x", "o", DRV_JSON_REQUIRED, &j, NULL, ep), DRV_ERR_INVALID,
               "x.o: must be an array");
    /* A NULL object: everything absent. */
    ASSERT_ERR(drv_json_read_array(NULL, "x", "o", DRV_JSON_REQUIRED, &j, NULL, ep),
               DRV_ERR_INVALID, "x.o: required");
}

typedef struct rec {
    const char *image;
    char name[8];
    bool privileged;
    int64_t replicas;
    uint64_t size;
    double ratio;
    const cJSON *labels, *ports, *any;
    bool have_ratio;
} rec_t;

static drv_err_t read_rec(const char *text, rec_t *r, unsigned flags, drv_error_t *ep)
{
    const drv_json_field_t table[] = {
        {.key = "image", .type = DRV_JSON_T_STRING, .need = DRV_JSON_REQUIRED, .dest = &r->image},
        {.key = "name", .type = DRV_JSON_T_STRBUF, .dest = r->name, .size = sizeof(r->name)},
        {.key = "privileged", .type = DRV_JSON_T_BOOL, .dest = &r->privileged},
        {.key = "replicas", .type = DRV_JSON_T_INT, .dest = &r->replicas, .min = 0, .max = 100},
        {.key = "size", .type = DRV_JSON_T_UINT, .dest = &r->size},
        {.key = "ratio",
         .type = DRV_JSON_T_DOUBLE,
         .need = DRV_JSON_NULLABLE,
         .dest = &r->ratio,
         .dmin = 0,
         .dmax = 1,
         .present = &r->have_ratio},
        {.key = "labels", .type = DRV_JSON_T_OBJECT, .dest = &r->labels},
        {.key = "ports", .type = DRV_JSON_T_ARRAY, .dest = &r->ports},
        {.key = "any", .type = DRV_JSON_T_ANY, .dest = &r->any},
    };
    _cleanup_cjson_ cJSON *o = cJSON_Parse(text);
    memset(r, 0, sizeof(*r));
    drv_err_t rc =
        drv_json_read_table(o, "spec.containers[1]", table, DRV_JSON_TABLE_LEN(table), flags, ep);
    r->image = NULL; /* points into o, gone now */
    r->labels = r->ports = r->any = NULL;
    return rc;
}

static void test_table(void **state)
{
    (void)state;
    rec_t r;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(read_rec("{\"image\":\"alpine\",\"name\":\"web\",\"privileged\":true,"
                              "\"replicas\":3,\"size\":18446744073709549568,\"ratio\":0.5,"
                              "\"labels\":{},\"ports\":[],\"any\":7,\"extra\":1}",
                              &r, 0, &err),
                     DRV_OK);
    assert_string_equal(r.name, "web");
    assert_true(r.privileged);
    assert_int_equal(r.replicas, 3);
    assert_true(r.size == 18446744073709549568ULL);
    assert_true(r.ratio == 0.5);
    assert_true(r.have_ratio);
    assert_int_equal(read_rec("{\"image\":\"a\",\"ratio\":null}", &r, DRV_JSON_STRICT, &err),
                     DRV_OK);
    assert_false(r.have_ratio);

    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"{}", "spec.containers[1].image: required"},
        {"{\"image\":null}", "spec.containers[1].image: required"},
        {"{\"image\":1}", "spec.containers[1].image: must be a string"},
        {"{\"image\":\"a\",\"name\":\"too-long-name\"}",
         "spec.containers[1].name: must be no more than 7 characters"},
        {"{\"image\":\"a\",\"privileged\":\"yes\"}",
         "spec.containers[1].privileged: must be true or false"},
        {"{\"image\":\"a\",\"replicas\":1e300}",
         "spec.containers[1].replicas: must be a whole number from 0 to 100"},
        {"{\"image\":\"a\",\"replicas\":-1e300}",
         "spec.containers[1].replicas: must be a whole number from 0 to 100"},
        {"{\"image\":\"a\",\"replicas\":1.5}",
         "spec.containers[1].replicas: must be a whole number from 0 to 100"},
        {"{\"image\":\"a\",\"replicas\":9223372036854775808}",
         "spec.containers[1].replicas: must be a whole number from 0 to 100"},
        {"{\"image\":\"a\",\"size\":-1}",
         "spec.containers[1].size: must be a whole number from 0 to 18446744073709551615"},
        {"{\"image\":\"a\",\"size\":1e300}",
         "spec.containers[1].size: must be a whole number from 0 to 18446744073709551615"},
        {"{\"image\":\"a\",\"ratio\":2}", "spec.containers[1].ratio: must be a number from 0 to 1"},
        {"{\"image\":\"a\",\"labels\":[]}", "spec.containers[1].labels: must be an object"},
        {"{\"image\":\"a\",\"ports\":{}}", "spec.containers[1].ports: must be an array"},
        {"[]", "spec.containers[1]: must be an object"},
        {"oops", "spec.containers[1]: must be an object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        drv_error_t e = DRV_ERROR_INIT;
        assert_int_equal(read_rec(bad[i].text, &r, 0, &e), DRV_ERR_INVALID);
        if (strcmp(e.msg, bad[i].msg) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", bad[i].text, e.msg, bad[i].msg);
    }
    drv_error_t e = DRV_ERROR_INIT;
    assert_int_equal(read_rec("{\"image\":\"a\",\"imagee\":1}", &r, DRV_JSON_STRICT, &e),
                     DRV_ERR_INVALID);
    assert_string_equal(e.msg, "spec.containers[1].imagee: unknown field (image, name, "
                               "privileged, replicas, size, ratio, labels, ports, any)");
    /* Top level, no path. */
    int64_t x = 0;
    const drv_json_field_t one[] = {
        {.key = "x", .type = DRV_JSON_T_INT, .need = DRV_JSON_REQUIRED, .dest = &x}};
    assert_int_equal(drv_json_read_table(NULL, NULL, one, 1, 0, &e), DRV_ERR_INVALID);
    assert_string_equal(e.msg, "document: must be an object");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookups),  cmocka_unit_test(test_to_int),
        cmocka_unit_test(test_read_int), cmocka_unit_test(test_read_others),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
