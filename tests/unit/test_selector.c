/* Label selectors: string and structured forms, their errors, and Kubernetes matching rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "drover/selector.h"

static cJSON *json(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (j == NULL)
        fail_msg("bad test JSON: %s", text);
    return j;
}

static void test_parse_forms(void **state)
{
    drv_selector_t sel;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_selector_parse(" app = web , tier==db,env!=prod,zone in (a, b ,a),"
                                        "k notin(x),  present ,!gone",
                                        &sel, &err),
                     DRV_OK);
    assert_int_equal(sel.nreqs, 7);
    static const struct {
        drv_sel_op_t op;
        const char *key;
        size_t nvalues;
        const char *v0;
    } want[] = {
        {DRV_SEL_EQ, "app", 1, "web"},        {DRV_SEL_EQ, "tier", 1, "db"},
        {DRV_SEL_NE, "env", 1, "prod"},       {DRV_SEL_IN, "zone", 2, "a"},
        {DRV_SEL_NOTIN, "k", 1, "x"},         {DRV_SEL_EXISTS, "present", 0, NULL},
        {DRV_SEL_NOTEXISTS, "gone", 0, NULL},
    };
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(sel.reqs[i].op, want[i].op);
        assert_string_equal(sel.reqs[i].key, want[i].key);
        assert_int_equal(sel.reqs[i].nvalues, want[i].nvalues);
        if (want[i].v0 != NULL)
            assert_string_equal(sel.reqs[i].values[0], want[i].v0);
    }
    assert_string_equal(sel.reqs[3].values[1], "b"); /* the repeated "a" counts once */
    assert_false(drv_selector_empty(&sel));
    drv_selector_free(&sel);
    assert_true(drv_selector_empty(&sel));
    drv_selector_free(&sel); /* safe twice */
}

static void test_parse_edge_forms(void **state)
{
    static const struct {
        const char *in;
        size_t nreqs;
    } cases[] = {
        {"", 0},
        {"   \t", 0},
        {"a=", 1},               /* the empty value */
        {"a in (x,)", 1},        /* "x" and "" */
        {"a in (in, notin)", 1}, /* keywords are plain words as values */
        {"a=in", 1},
        {"a==", 1},
        {"example.com/app=v1.0_beta", 1},
        {"a,b,c", 3},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        drv_selector_t sel;
        drv_error_t err = DRV_ERROR_INIT;
        if (drv_selector_parse(cases[i].in, &sel, &err) != DRV_OK)
            fail_msg("\"%s\": %s", cases[i].in, drv_error_msg(&err));
        assert_int_equal(sel.nreqs, cases[i].nreqs);
        drv_selector_free(&sel);
    }
    drv_selector_t sel;
    assert_int_equal(drv_selector_parse("a in (x,)", &sel, NULL), DRV_OK);
    assert_int_equal(sel.reqs[0].nvalues, 2);
    assert_string_equal(sel.reqs[0].values[1], "");
    drv_selector_free(&sel);
}

typedef struct {
    const char *in;
    drv_err_t code;
    const char *msg_part;
} bad_case_t;

static void test_parse_errors(void **state)
{
    static const bad_case_t cases[] = {
        {"a=b,", DRV_ERR_INVALID, "expected a label key at position 4, found end of string"},
        {",a", DRV_ERR_INVALID, "expected a label key at position 0, found ','"},
        {"a b", DRV_ERR_INVALID, "found 'b'"},
        {"a=b=c", DRV_ERR_INVALID, "expected ',' or end of string"},
        {"a in x", DRV_ERR_INVALID, "expected '('"},
        {"a in (x", DRV_ERR_INVALID, "expected ',' or ')'"},
        {"a in ()", DRV_ERR_INVALID, "values set can't be empty"},
        {"a notin ( )", DRV_ERR_INVALID, "values set can't be empty"},
        {"!a=b", DRV_ERR_INVALID, "expected ',' or end of string"},
        {"!", DRV_ERR_INVALID, "expected a label key"},
        {"in=b", DRV_ERR_INVALID, "found 'in'"},
        {"a=(b)", DRV_ERR_INVALID, "expected a label value"},
        {"A_ =b", DRV_ERR_INVALID, "key \"A_\" at position 0: name part must consist"},
        {"a=-b", DRV_ERR_INVALID, "value \"-b\" at position 2: a valid label must be"},
        {"a/b/c=d", DRV_ERR_INVALID, "a valid label key"},
        {"a>1", DRV_ERR_UNSUPPORTED, "operator '>' at position 1 is not supported"},
        {"a<1", DRV_ERR_UNSUPPORTED, "not supported"},
        {"a\x01=b", DRV_ERR_INVALID, "\\x01"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        drv_selector_t sel = {(drv_sel_req_t *)0x1, 42};
        drv_error_t err = DRV_ERROR_INIT;
        drv_err_t rc = drv_selector_parse(cases[i].in, &sel, &err);
        if (rc != cases[i].code)
            fail_msg("\"%s\": got %s (%s)", cases[i].in, drv_strerror(rc), drv_error_msg(&err));
        if (cases[i].msg_part != NULL && strstr(err.msg, cases[i].msg_part) == NULL)
            fail_msg("\"%s\": message \"%s\" lacks \"%s\"", cases[i].in, err.msg,
                     cases[i].msg_part);
        /* out is untouched on failure */
        assert_ptr_equal(sel.reqs, (drv_sel_req_t *)0x1);
        assert_int_equal(sel.nreqs, 42);
    }
}

static void test_parse_limits(void **state)
{
    char buf[4096];
    size_t o = 0;
    /* DRV_SEL_MAX_REQS requirements are fine, one more is too many */
    for (int i = 0; i < DRV_SEL_MAX_REQS; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%sk%d=v", i ? "," : "", i);
    drv_selector_t sel;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_selector_parse(buf, &sel, &err), DRV_OK);
    assert_int_equal(sel.nreqs, DRV_SEL_MAX_REQS);
    drv_selector_free(&sel);
    snprintf(buf + o, sizeof(buf) - o, ",extra");
    assert_int_equal(drv_selector_parse(buf, &sel, &err), DRV_ERR_TOOBIG);
    assert_non_null(strstr(err.msg, "more than 64 requirements"));

    o = (size_t)snprintf(buf, sizeof(buf), "k in (");
    for (int i = 0; i < DRV_SEL_MAX_VALUES; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%sv%d", i ? "," : "", i);
    snprintf(buf + o, sizeof(buf) - o, ")");
    assert_int_equal(drv_selector_parse(buf, &sel, &err), DRV_OK);
    assert_int_equal(sel.reqs[0].nvalues, DRV_SEL_MAX_VALUES);
    drv_selector_free(&sel);
    snprintf(buf + o, sizeof(buf) - o, ",one-more)");
    assert_int_equal(drv_selector_parse(buf, &sel, &err), DRV_ERR_TOOBIG);
    assert_non_null(strstr(err.msg, "more than 64 values"));

    /* A very long key is rejected by the label rules, not by a crash. */
    memset(buf, 'a', 4000);
    buf[4000] = '\0';
    assert_int_equal(drv_selector_parse(buf, &sel, &err), DRV_ERR_INVALID);
}

typedef struct {
    const char *selector;
    const char *labels; /* JSON, or NULL for no labels */
    bool match;
} match_case_t;

static void test_matching(void **state)
{
    static const match_case_t cases[] = {
        {"", "{\"app\":\"web\"}", true},
        {"", NULL, true},
        {"app=web", "{\"app\":\"web\"}", true},
        {"app=web", "{\"app\":\"db\"}", false},
        {"app=web", "{}", false},
        {"app=web", NULL, false},
        {"app!=web", "{\"app\":\"db\"}", true},
        {"app!=web", "{\"app\":\"web\"}", false},
        {"app!=web", "{}", true}, /* != matches when the key is absent */
        {"app!=web", NULL, true},
        {"env in (a,b)", "{\"env\":\"b\"}", true},
        {"env in (a,b)", "{\"env\":\"c\"}", false},
        {"env in (a,b)", "{}", false},
        {"env notin (a,b)", "{\"env\":\"c\"}", true},
        {"env notin (a,b)", "{\"env\":\"a\"}", false},
        {"env notin (a,b)", "{}", true}, /* notin matches when the key is absent */
        {"gpu", "{\"gpu\":\"\"}", true},
        {"gpu", "{\"cpu\":\"x\"}", false},
        {"!gpu", "{\"cpu\":\"x\"}", true},
        {"!gpu", "{\"gpu\":\"yes\"}", false},
        {"a=", "{\"a\":\"\"}", true},
        {"a=", "{\"a\":\"x\"}", false},
        {"App=web", "{\"app\":\"web\"}", false}, /* keys are case-sensitive */
        {"app=web,tier=db", "{\"app\":\"web\",\"tier\":\"db\",\"x\":\"y\"}", true},
        {"app=web,tier=db", "{\"app\":\"web\",\"tier\":\"fe\"}", false},
        {"app=web", "{\"app\":1}", false}, /* a non-string label counts as absent */
        {"app!=web", "{\"app\":1}", true},
        {"app=web", "[\"app\"]", false}, /* labels that are not an object: none */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        drv_selector_t sel;
        drv_error_t err = DRV_ERROR_INIT;
        if (drv_selector_parse(cases[i].selector, &sel, &err) != DRV_OK)
            fail_msg("\"%s\": %s", cases[i].selector, drv_error_msg(&err));
        cJSON *labels = cases[i].labels ? json(cases[i].labels) : NULL;
        bool m = drv_selector_matches(&sel, labels);
        if (m != cases[i].match)
            fail_msg("\"%s\" on %s: got %d", cases[i].selector,
                     cases[i].labels ? cases[i].labels : "(none)", m);
        cJSON_Delete(labels);
        drv_selector_free(&sel);
    }
    assert_true(drv_selector_matches(NULL, NULL));
}

static void test_from_json(void **state)
{
    cJSON *j = json("{\"matchLabels\":{\"app\":\"web\",\"tier\":\"fe\"},"
                    "\"matchExpressions\":["
                    "{\"key\":\"env\",\"operator\":\"In\",\"values\":[\"prod\",\"staging\"]},"
                    "{\"key\":\"zone\",\"operator\":\"NotIn\",\"values\":[\"z1\"]},"
                    "{\"key\":\"gpu\",\"operator\":\"Exists\"},"
                    "{\"key\":\"legacy\",\"operator\":\"DoesNotExist\",\"values\":[]}]}");
    drv_selector_t sel;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_selector_from_json(j, &sel, &err), DRV_OK);
    cJSON_Delete(j);
    assert_int_equal(sel.nreqs, 6);
    assert_int_equal(sel.reqs[0].op, DRV_SEL_EQ);
    assert_string_equal(sel.reqs[1].key, "tier");
    assert_int_equal(sel.reqs[2].op, DRV_SEL_IN);
    assert_int_equal(sel.reqs[2].nvalues, 2);
    assert_int_equal(sel.reqs[3].op, DRV_SEL_NOTIN);
    assert_int_equal(sel.reqs[4].op, DRV_SEL_EXISTS);
    assert_int_equal(sel.reqs[5].op, DRV_SEL_NOTEXISTS);

    static const match_case_t cases[] = {
        {NULL, "{\"app\":\"web\",\"tier\":\"fe\",\"env\":\"prod\",\"gpu\":\"1\"}", true},
        {NULL, "{\"app\":\"web\",\"tier\":\"fe\",\"env\":\"prod\",\"gpu\":\"1\",\"zone\":\"z2\"}",
         true},
        {NULL, "{\"app\":\"web\",\"tier\":\"fe\",\"env\":\"prod\",\"gpu\":\"1\",\"zone\":\"z1\"}",
         false},
        {NULL, "{\"app\":\"web\",\"tier\":\"fe\",\"env\":\"dev\",\"gpu\":\"1\"}", false},
        {NULL, "{\"app\":\"web\",\"tier\":\"fe\",\"env\":\"prod\"}", false},
        {NULL, "{\"app\":\"web\",\"tier\":\"fe\",\"env\":\"prod\",\"gpu\":\"1\",\"legacy\":\"\"}",
         false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *labels = json(cases[i].labels);
        if (drv_selector_matches(&sel, labels) != cases[i].match)
            fail_msg("%s: expected %d", cases[i].labels, cases[i].match);
        cJSON_Delete(labels);
    }
    drv_selector_free(&sel);

    /* {} and empty parts select everything */
    const char *empties[] = {"{}", "{\"matchLabels\":{}}", "{\"matchExpressions\":[]}",
                             "{\"matchLabels\":null,\"matchExpressions\":null}"};
    for (size_t i = 0; i < 4; i++) {
        j = json(empties[i]);
        assert_int_equal(drv_selector_from_json(j, &sel, &err), DRV_OK);
        assert_true(drv_selector_empty(&sel));
        assert_true(drv_selector_matches(&sel, NULL));
        drv_selector_free(&sel);
        cJSON_Delete(j);
    }
}

static void test_from_json_errors(void **state)
{
    static const bad_case_t cases[] = {
        {"[]", DRV_ERR_INVALID, "selector: must be an object"},
        {"null", DRV_ERR_INVALID, "selector: required"},
        {"{\"matchLabels\":[]}", DRV_ERR_INVALID, "matchLabels: must be an object"},
        {"{\"matchLabels\":{\"app\":1}}", DRV_ERR_INVALID, "matchLabels.app: must be a string"},
        {"{\"matchLabels\":{\"app\":\"-x\"}}", DRV_ERR_INVALID,
         "matchLabels.app: invalid value \"-x\": a valid label must be"},
        {"{\"matchLabels\":{\"a b\":\"x\"}}", DRV_ERR_INVALID,
         "matchLabels: invalid key \"a b\": name part must consist"},
        {"{\"matchExpressions\":{}}", DRV_ERR_INVALID, "matchExpressions: must be an array"},
        {"{\"matchExpressions\":[1]}", DRV_ERR_INVALID, "matchExpressions[0]: must be an object"},
        {"{\"matchExpressions\":[{\"operator\":\"Exists\"}]}", DRV_ERR_INVALID,
         "matchExpressions[0].key: required"},
        {"{\"matchExpressions\":[{\"key\":\"a\"}]}", DRV_ERR_INVALID,
         "matchExpressions[0].operator: required"},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\"},"
         "{\"key\":\"a\",\"operator\":\"in\",\"values\":[\"x\"]}]}",
         DRV_ERR_INVALID,
         "matchExpressions[1].operator: \"in\" is not a valid label selector operator"},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"}]}", DRV_ERR_INVALID,
         "matchExpressions[0].values: must be specified when `operator` is 'In' or 'NotIn'"},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"NotIn\",\"values\":[]}]}",
         DRV_ERR_INVALID, "must be specified"},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\",\"values\":[\"x\"]}]}",
         DRV_ERR_INVALID,
         "matchExpressions[0].values: may not be specified when `operator` is 'Exists' or "
         "'DoesNotExist'"},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":\"x\"}]}",
         DRV_ERR_INVALID, "matchExpressions[0].values: must be an array"},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[\"x\",2]}]}",
         DRV_ERR_INVALID, "matchExpressions[0].values[1]: must be a string"},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[\"x y\"]}]}",
         DRV_ERR_INVALID, "matchExpressions[0].values[0]: invalid value \"x y\""},
        {"{\"matchExpressions\":[{\"key\":\"\",\"operator\":\"Exists\"}]}", DRV_ERR_INVALID,
         "matchExpressions[0].key: invalid key \"\": name part must be non-empty"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *j = json(cases[i].in);
        drv_selector_t sel = {(drv_sel_req_t *)0x1, 42};
        drv_error_t err = DRV_ERROR_INIT;
        drv_err_t rc = drv_selector_from_json(j, &sel, &err);
        cJSON_Delete(j);
        if (rc != cases[i].code)
            fail_msg("%s: got %s (%s)", cases[i].in, drv_strerror(rc), drv_error_msg(&err));
        if (strstr(err.msg, cases[i].msg_part) == NULL)
            fail_msg("%s: message \"%s\" lacks \"%s\"", cases[i].in, err.msg, cases[i].msg_part);
        assert_ptr_equal(sel.reqs, (drv_sel_req_t *)0x1);
        assert_int_equal(sel.nreqs, 42);
    }
    drv_selector_t sel;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_selector_from_json(NULL, &sel, &err), DRV_ERR_INVALID);
}

static void test_from_json_limits(void **state)
{
    /* 40 matchLabels + 24 expressions = 64 requirements; one more is too many. */
    cJSON *j = cJSON_CreateObject();
    cJSON *ml = cJSON_AddObjectToObject(j, "matchLabels");
    cJSON *me = cJSON_AddArrayToObject(j, "matchExpressions");
    char key[32];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "l%d", i);
        cJSON_AddStringToObject(ml, key, "v");
    }
    for (int i = 0; i < 24; i++) {
        cJSON *ex = cJSON_CreateObject();
        snprintf(key, sizeof(key), "e%d", i);
        cJSON_AddStringToObject(ex, "key", key);
        cJSON_AddStringToObject(ex, "operator", "Exists");
        cJSON_AddItemToArray(me, ex);
    }
    drv_selector_t sel;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_selector_from_json(j, &sel, &err), DRV_OK);
    assert_int_equal(sel.nreqs, DRV_SEL_MAX_REQS);
    drv_selector_free(&sel);
    cJSON_AddStringToObject(ml, "one-more", "v");
    assert_int_equal(drv_selector_from_json(j, &sel, &err), DRV_ERR_TOOBIG);
    cJSON_Delete(j);

    /* 65 values in one expression */
    j = json("{\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"In\",\"values\":[]}]}");
    cJSON *vals = cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(j, "matchExpressions"), 0), "values");
    for (int i = 0; i <= DRV_SEL_MAX_VALUES; i++) {
        snprintf(key, sizeof(key), "v%d", i);
        cJSON_AddItemToArray(vals, cJSON_CreateString(key));
    }
    assert_int_equal(drv_selector_from_json(j, &sel, &err), DRV_ERR_TOOBIG);
    assert_non_null(strstr(err.msg, "more than 64 values"));
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_forms),      cmocka_unit_test(test_parse_edge_forms),
        cmocka_unit_test(test_parse_errors),     cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_matching),         cmocka_unit_test(test_from_json),
        cmocka_unit_test(test_from_json_errors), cmocka_unit_test(test_from_json_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
