/* Tests for manifest documents: YAML streams and JSON into cJSON under hard limits (core schema
 * typing, tags, anchors and merge keys, hostile input answered with a located error) and the
 * block YAML emitter's round trip. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drover/doc.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static drv_doc_list_t parse_ok_lim(const char *text, size_t len, const drv_doc_limits_t *lim)
{
    drv_doc_list_t l = {0};
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_doc_parse(text, len, lim, &l, &err);
    if (rc != DRV_OK)
        fail_msg("parse failed: %s", drv_error_msg(&err));
    return l;
}

static drv_doc_list_t parse_ok(const char *text)
{
    return parse_ok_lim(text, strlen(text), NULL);
}

/* Parses text that must fail with code; checks the output stayed untouched and the message
 * contains want. Returns the message in a static buffer. */
static const char *parse_fail_lim(const char *text, size_t len, const drv_doc_limits_t *lim,
                                  drv_err_t code, const char *want)
{
    static char msg[DRV_ERROR_MSG_MAX];
    drv_doc_t sentinel;
    drv_doc_list_t l = {&sentinel, 42};
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_doc_parse(text, len, lim, &l, &err);
    if (rc == DRV_OK)
        fail_msg("parse of \"%.60s\" succeeded, wanted an error with \"%s\"", text, want);
    snprintf(msg, sizeof msg, "%s", drv_error_msg(&err));
    if (rc != code)
        fail_msg("wanted code %d, got %d (%s)", code, rc, msg);
    if (strstr(msg, want) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", msg, want);
    assert_ptr_equal(l.docs, &sentinel);
    assert_int_equal(l.count, 42);
    return msg;
}

static const char *parse_fail(const char *text, const char *want)
{
    return parse_fail_lim(text, strlen(text), NULL, DRV_ERR_INVALID, want);
}

/* Parses text holding exactly one document and compares it with expected JSON. */
static void expect_one(const char *text, const char *json)
{
    drv_doc_list_t l = parse_ok(text);
    if (l.count != 1)
        fail_msg("\"%s\": %zu documents", text, l.count);
    cJSON *want = cJSON_Parse(json);
    assert_non_null(want);
    if (!cJSON_Compare(l.docs[0].root, want, 1)) {
        char *got = cJSON_PrintUnformatted(l.docs[0].root);
        fail_msg("\"%s\" gave %s, wanted %s", text, got, json);
    }
    cJSON_Delete(want);
    drv_doc_list_free(&l);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Emits root, parses the YAML back and checks it is the same tree. Returns the YAML (caller
 * frees). */
static char *round_trip(const cJSON *root)
{
    drv_buf_t b = DRV_BUF_INIT(1u << 26);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_doc_emit_yaml(root, &b, &err) != DRV_OK)
        fail_msg("emit failed: %s", drv_error_msg(&err));
    size_t len = 0;
    char *yaml = drv_buf_steal(&b, &len);
    drv_doc_list_t l = {0};
    if (drv_doc_parse(yaml, len, NULL, &l, &err) != DRV_OK)
        fail_msg("re-parse of\n%s\nfailed: %s", yaml, drv_error_msg(&err));
    if (l.count != 1 || !cJSON_Compare(root, l.docs[0].root, 1)) {
        char *a = cJSON_PrintUnformatted(root);
        fail_msg("round trip changed %s into (%zu docs)\n%s", a, l.count, yaml);
    }
    drv_doc_list_free(&l);
    return yaml;
}

/* ---- streams and documents -------------------------------------------------------------- */

static void test_multi_document_stream(void **state)
{
    (void)state;
    const char *text = "# leading comment\n"
                       "---\n"
                       "# only a comment\n"
                       "---\n"
                       "kind: ConfigMap\n" /* line 5 */
                       "data: {a: '1'}\n"
                       "---\n"
                       "---\n"
                       "~\n"
                       "...\n"
                       "---\n"
                       "\n"
                       "# comment before content\n"
                       "- one\n" /* line 14 */
                       "- two\n"
                       "--- null\n"
                       "--- plain text\n" /* line 17 */
                       "---\n";
    drv_doc_list_t l = parse_ok(text);
    assert_int_equal(l.count, 3);
    assert_int_equal(l.docs[0].index, 0);
    assert_int_equal(l.docs[0].line, 5);
    assert_string_equal(cJSON_GetObjectItem(l.docs[0].root, "kind")->valuestring, "ConfigMap");
    assert_int_equal(l.docs[1].index, 1);
    assert_int_equal(l.docs[1].line, 14);
    assert_int_equal(cJSON_GetArraySize(l.docs[1].root), 2);
    assert_int_equal(l.docs[2].index, 2);
    assert_int_equal(l.docs[2].line, 17);
    assert_string_equal(l.docs[2].root->valuestring, "plain text");
    drv_doc_list_free(&l);
    assert_null(l.docs);
    assert_int_equal(l.count, 0);
}

static void test_empty_inputs_give_no_documents(void **state)
{
    (void)state;
    const char *texts[] = {
        "",       "   \n\n",         "# just a comment\n", "---\n", "---\n...\n---\n",
        "null\n", "--- ~\n--- # c\n"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        drv_doc_list_t l = parse_ok(texts[i]);
        assert_int_equal(l.count, 0);
        drv_doc_list_free(&l);
    }
    drv_doc_list_t l = {0};
    assert_int_equal(drv_doc_parse(NULL, 0, NULL, &l, NULL), DRV_OK);
    assert_int_equal(l.count, 0);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_doc_parse("a: 1", 4, NULL, NULL, &err), DRV_ERR_INVALID);
}

static void test_json_input(void **state)
{
    (void)state;
    const char *text = "\xEF\xBB\xBF\n\n  {\"kind\": \"Pod\", \"n\": [1, 2.5, true, null, \"x\"],"
                       " \"e\": \"\\u00e9\\ud83d\\ude00\"}\n";
    drv_doc_list_t l = parse_ok(text);
    assert_int_equal(l.count, 1);
    assert_int_equal(l.docs[0].line, 3);
    cJSON *want = cJSON_Parse(
        "{\"kind\":\"Pod\",\"n\":[1,2.5,true,null,\"x\"],\"e\":\"\xC3\xA9\xF0\x9F\x98\x80\"}");
    assert_true(cJSON_Compare(l.docs[0].root, want, 1));
    cJSON_Delete(want);
    drv_doc_list_free(&l);
    expect_one("[]", "[]");
    /* YAML flow that is not JSON starts with '[' too and is read as JSON: a clear error */
    parse_fail("[a, b]", "line 1, column 2: invalid JSON");
}

/* ---- typing ----------------------------------------------------------------------------- */

static void test_core_schema_table(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *json;
    } table[] = {
        {"v:", "null"},
        {"v: ~", "null"},
        {"v: null", "null"},
        {"v: Null", "null"},
        {"v: NULL", "null"},
        {"v: nULL", "\"nULL\""},
        {"v: true", "true"},
        {"v: True", "true"},
        {"v: TRUE", "true"},
        {"v: false", "false"},
        {"v: FALSE", "false"},
        {"v: tRUE", "\"tRUE\""},
        {"v: yes", "\"yes\""},
        {"v: off", "\"off\""},
        {"v: 0", "0"},
        {"v: -17", "-17"},
        {"v: +42", "42"},
        {"v: 007", "7"},
        {"v: 0400", "256"}, /* octal, as Kubernetes reads defaultMode: 0400 */
        {"v: -010", "-8"},
        {"v: 09", "9"},
        {"v: 0644", "420"},
        {"v: 0x1F", "31"},
        {"v: 0o17", "15"},
        {"v: 0x", "\"0x\""},
        {"v: 0b101", "\"0b101\""},
        {"v: 1_000", "\"1_000\""},
        {"v: 9007199254740992", "9007199254740992"},
        {"v: -9007199254740992", "-9007199254740992"},
        {"v: 1.5", "1.5"},
        {"v: -.5", "-0.5"},
        {"v: 1e3", "1000"},
        {"v: 2.5E-3", "0.0025"},
        {"v: 1.", "1"},
        {"v: .", "\".\""},
        {"v: 1.2.3", "\"1.2.3\""},
        {"v: 12:30", "\"12:30\""},
        {"v: 2024-01-01", "\"2024-01-01\""},
        {"v: nginx:1.25", "\"nginx:1.25\""},
        {"v: hello world", "\"hello world\""},
        {"v: inf", "\"inf\""},
        {"v: nan", "\"nan\""},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        char json[128];
        snprintf(json, sizeof json, "{\"v\": %s}", table[i].json);
        expect_one(table[i].yaml, json);
    }
}

static void test_quoted_and_block_scalars_are_strings(void **state)
{
    (void)state;
    expect_one("a: 'true'\nb: \"123\"\nc: ''\nd: \"null\"\ne: '0x1F'\n",
               "{\"a\":\"true\",\"b\":\"123\",\"c\":\"\",\"d\":\"null\",\"e\":\"0x1F\"}");
    expect_one("lit: |\n  line 1\n  42\nfold: >\n  a\n  b\nkeep: |+\n  x\n\nstrip: |-\n  7\n",
               "{\"lit\":\"line 1\\n42\\n\",\"fold\":\"a b\\n\",\"keep\":\"x\\n\\n\","
               "\"strip\":\"7\"}");
    expect_one("a: \"tab\\there\\u00e9\"\n", "{\"a\":\"tab\\there\\u00e9\"}");
}

static void test_number_limits(void **state)
{
    (void)state;
    parse_fail("v: 9007199254740993",
               "line 1, column 4: integer \"9007199254740993\" out of range");
    parse_fail("v: -123456789012345678901234567890", "out of range");
    parse_fail("v: 0x20000000000001", "out of range");
    parse_fail("v: 1e999", "out of range");
    parse_fail("a: 1\nv: .inf", "line 2, column 4: \".inf\" is not representable in JSON");
    parse_fail("v: -.Inf", "not representable in JSON");
    parse_fail("v: .NaN", "not representable in JSON");
    parse_fail("{\"v\": 9007199254740993}",
               "line 1, column 7: integer 9007199254740993 out of range");
    parse_fail("[1e999]", "out of range");
    parse_fail("[123456789012345678901234567890123456789012345678901234567890.12345678]",
               "longer than 63 characters");
    expect_one("[9007199254740992, -9007199254740992, 1.5e300]",
               "[9007199254740992, -9007199254740992, 1.5e300]");
}

static void test_tags(void **state)
{
    (void)state;
    expect_one("a: !!str 123\nb: !!str true\nc: !!int \"42\"\nd: !!float 1\ne: !!bool 'false'\n"
               "f: !!null ''\ng: ! 12\nh: !!str\ni: !!map {x: 1}\nj: !!seq [1]\n",
               "{\"a\":\"123\",\"b\":\"true\",\"c\":42,\"d\":1,\"e\":false,\"f\":null,\"g\":\"12\","
               "\"h\":\"\",\"i\":{\"x\":1},\"j\":[1]}");
    parse_fail("a: !!binary aGVsbG8=", "line 1, column 4: unsupported tag !!binary");
    parse_fail("a: !custom x", "unsupported tag !custom");
    parse_fail("a: !!set {x: 1}", "unsupported tag !!set on a mapping");
    parse_fail("a: !!map [1]", "unsupported tag !!map on a sequence");
    parse_fail("a: !!int abc", "\"abc\" is not a valid !!int");
    parse_fail("a: !!bool yes", "\"yes\" is not a valid !!bool");
    parse_fail("a: !!float .nan", "not representable in JSON");
    parse_fail("%TAG !e! tag:example.com,2000:\n---\na: !e!thing x\n",
               "unsupported tag tag:example.com,2000:thing");
}

/* ---- mappings ---------------------------------------------------------------------------- */

static void test_keys_are_strings(void **state)
{
    (void)state;
    expect_one("1: a\ntrue: b\n1.5: c\n0x10: d\n\"\": e\n'null': f\n? complex\n: g\n",
               "{\"1\":\"a\",\"true\":\"b\",\"1.5\":\"c\",\"0x10\":\"d\",\"\":\"e\","
               "\"null\":\"f\",\"complex\":\"g\"}");
    parse_fail("a: 1\nnull: 2\n", "line 2, column 1: a mapping key must not be null");
    parse_fail("~: 2\n", "must not be null");
    parse_fail("? [a, b]\n: 1\n", "line 1, column 3: a mapping key must be a scalar");
    parse_fail("{[1]: 2}", "invalid JSON");
    parse_fail("x:\n  ? {a: 1}\n  : 2\n", "line 2, column 5: a mapping key must be a scalar");
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    parse_fail("metadata:\n  name: a\n  labels: {}\n  name: b\n",
               "line 4, column 3: duplicate key \"name\"");
    parse_fail("a: 1\n\"a\": 2\n", "line 2, column 1: duplicate key \"a\"");
    parse_fail("1: x\n'1': y\n", "duplicate key \"1\"");
    parse_fail("{\"a\": {\"b\": 1, \"c\": 2},\n \"d\": [{\"x\": 1, \"x\": 2}]}",
               "line 2, column 17: duplicate key \"x\"");
    parse_fail("{\"k\\u0041\": 1, \"kA\": 2}", "line 1, column 16: duplicate key \"kA\"");
    /* the same key in different mappings is fine */
    expect_one("a: {x: 1}\nb: {x: 2}\n", "{\"a\":{\"x\":1},\"b\":{\"x\":2}}");
}

/* ---- anchors, aliases and merge keys ----------------------------------------------------- */

static void test_anchors_and_aliases(void **state)
{
    (void)state;
    expect_one(
        "base: &b {image: nginx, ports: [80, 443]}\n"
        "copy: *b\n"
        "n: &n 5\n"
        "m: *n\n"
        "s: &s !!str 010\n"
        "t: *s\n"
        "list: [*n, *b]\n",
        "{\"base\":{\"image\":\"nginx\",\"ports\":[80,443]},"
        "\"copy\":{\"image\":\"nginx\",\"ports\":[80,443]},\"n\":5,\"m\":5,"
        "\"s\":\"010\",\"t\":\"010\",\"list\":[5,{\"image\":\"nginx\",\"ports\":[80,443]}]}");
    /* an anchored key used as a key and as a value */
    expect_one("&k 42: a\nb: *k\n", "{\"42\":\"a\",\"b\":42}");
    expect_one("&k name: a\nx: {*k : b}\n", "{\"name\":\"a\",\"x\":{\"name\":\"b\"}}");
    /* redefinition: an alias takes the latest definition */
    expect_one("a: &x 1\nb: &x 2\nc: *x\n", "{\"a\":1,\"b\":2,\"c\":2}");
    parse_fail("a: 1\nb: *nope\n", "line 2, column 4: unknown anchor \"nope\"");
    parse_fail("a: &r [1, *r]\n", "alias *r refers to a node that contains it");
    parse_fail("a: &m {x: 1}\n*m : 2\n", "a mapping key must be a scalar");
    /* anchors do not cross documents */
    parse_fail("a: &x 1\n---\nb: *x\n", "line 3, column 4: unknown anchor \"x\"");
}

static void test_merge_keys(void **state)
{
    (void)state;
    expect_one("base: &base {a: 1, b: 2}\n"
               "x:\n"
               "  b: 20\n"
               "  <<: *base\n"
               "  c: 3\n",
               "{\"base\":{\"a\":1,\"b\":2},\"x\":{\"b\":20,\"c\":3,\"a\":1}}");
    /* a list: earlier sources win; explicit keys win even when they come after */
    expect_one("p: &p {a: 1, b: 1}\n"
               "q: &q {b: 2, c: 2, d: 2}\n"
               "r:\n"
               "  <<: [*p, *q]\n"
               "  d: 4\n",
               "{\"p\":{\"a\":1,\"b\":1},\"q\":{\"b\":2,\"c\":2,\"d\":2},"
               "\"r\":{\"d\":4,\"a\":1,\"b\":1,\"c\":2}}");
    /* inline mapping, and anchors defined inside a merge source stay usable */
    expect_one("r:\n  <<: {a: &in [1, 2], z: 0}\n  z: 9\ns: *in\n",
               "{\"r\":{\"z\":9,\"a\":[1,2]},\"s\":[1,2]}");
    expect_one("r:\n  <<: &whole {a: 1}\ns: *whole\n", "{\"r\":{\"a\":1},\"s\":{\"a\":1}}");
    /* a quoted "<<" is an ordinary key */
    expect_one("\"<<\": 1\n", "{\"<<\":1}");
    parse_fail("a: &s [1]\nb:\n  <<: *s\n",
               "line 3, column 7: the merge key \"<<\" needs a mapping");
    parse_fail("b:\n  <<: 5\n", "needs a mapping or a sequence of mappings");
    parse_fail("a: &m {x: 1}\nb:\n  <<: [*m, 3]\n", "needs a mapping or a sequence of mappings");
}

static void test_billion_laughs_fails_fast(void **state)
{
    (void)state;
    const char *bomb =
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
        "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
        "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
        "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
        "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    double t0 = now();
    const char *msg = parse_fail_lim(bomb, strlen(bomb), NULL, DRV_ERR_TOOBIG,
                                     "document too large: more than 1000000 values after alias "
                                     "expansion");
    double dt = now() - t0;
    assert_non_null(strstr(msg, "line 7, column "));
    /* Slower machines and emulators (qemu-user, sanitizers) get DROVER_TEST_TIME_FACTOR. */
    const char *tf = getenv("DROVER_TEST_TIME_FACTOR");
    double factor = tf ? strtod(tf, NULL) : 1.0;
    assert_true(dt < 5.0 * (factor >= 1.0 ? factor : 1.0));

    /* long strings multiplied by aliases hit the text budget before memory runs out */
    drv_doc_limits_t lim = drv_doc_default_limits;
    lim.max_input = 1u << 20;
    size_t big = 500 * 1000;
    char *text = malloc(big + 512);
    assert_non_null(text);
    int o = snprintf(text, 512, "a: &a \"");
    memset(text + o, 'x', big);
    snprintf(text + o + big, 512, "\"\nb: [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n");
    parse_fail_lim(text, strlen(text), &lim, DRV_ERR_TOOBIG,
                   "line 2, column 26: document too large: more than 4194304 bytes of text after "
                   "alias expansion");
    free(text);

    /* the node limit without aliases says so */
    lim = drv_doc_default_limits;
    lim.max_nodes = 5;
    parse_fail_lim("[1, 2, 3, 4, 5]", 15, &lim, DRV_ERR_TOOBIG,
                   "line 1, column 14: document too large: more than 5 values");
    parse_fail_lim("- 1\n- 2\n- 3\n- 4\n- 5\n", 20, &lim, DRV_ERR_TOOBIG,
                   "line 5, column 3: document too large: more than 5 values");
}

/* ---- limits and hostile input ------------------------------------------------------------ */

static char *nested(size_t depth, const char *open, const char *close, const char *leaf)
{
    size_t lo = strlen(open), lc = strlen(close), ll = strlen(leaf);
    char *s = malloc(depth * (lo + lc) + ll + 2);
    assert_non_null(s);
    size_t o = 0;
    for (size_t i = 0; i < depth; i++, o += lo)
        memcpy(s + o, open, lo);
    memcpy(s + o, leaf, ll);
    o += ll;
    for (size_t i = 0; i < depth; i++, o += lc)
        memcpy(s + o, close, lc);
    s[o] = '\0';
    return s;
}

static void test_deep_nesting(void **state)
{
    (void)state;
    char *s = nested(10000, "[", "]", "1");
    parse_fail(s, "line 1, column 65: nesting deeper than 64");
    free(s);
    s = nested(10000, "{\"a\":", "}", "1");
    parse_fail(s, "line 1, column 321: nesting deeper than 64");
    free(s);
    s = nested(10000, "- ", "", "x");
    parse_fail(s, "line 1, column 129: nesting deeper than 64");
    free(s);
    s = nested(10000, "a: [", "]", "1");
    s[0] = ' '; /* "  : [a: [..." is not JSON: the YAML reader gets it */
    s[1] = 'k';
    parse_fail(s, "nesting deeper than 64");
    free(s);
    /* exactly 64 levels is fine, both ways */
    s = nested(64, "[", "]", "1");
    drv_doc_list_t l = parse_ok(s);
    free(s);
    char *yaml = round_trip(l.docs[0].root);
    free(yaml);
    drv_doc_list_free(&l);
    s = nested(64, "- ", "", "x");
    l = parse_ok(s);
    assert_int_equal(l.count, 1);
    drv_doc_list_free(&l);
    free(s);
    /* aliases cannot be used to go deeper */
    drv_doc_limits_t lim = drv_doc_default_limits;
    lim.max_depth = 4;
    parse_fail_lim("a: &a [[1]]\nb: [[*a]]\n", 22, &lim, DRV_ERR_INVALID,
                   "line 2, column 6: nesting deeper than 4 after alias expansion");
}

static void test_size_limits(void **state)
{
    (void)state;
    size_t big = 10u << 20;
    char *s = malloc(big + 32);
    assert_non_null(s);
    memcpy(s, "data: ", 6);
    memset(s + 6, 'a', big);
    s[6 + big] = '\0';
    parse_fail_lim(s, 6 + big, NULL, DRV_ERR_TOOBIG,
                   "line 1, column 7: string of 10485760 bytes, more than the limit of 1048576");
    memcpy(s, "[\"", 2);
    memset(s + 2, 'a', big);
    memcpy(s + 2 + big, "\"]", 3);
    parse_fail_lim(s, 4 + big, NULL, DRV_ERR_TOOBIG,
                   "line 1, column 2: string of 10485760 bytes, more than the limit of 1048576");
    free(s);
    /* keys too */
    drv_doc_limits_t lim = drv_doc_default_limits;
    lim.max_scalar = 3;
    parse_fail_lim("abcd: 1", 7, &lim, DRV_ERR_TOOBIG, "string of 4 bytes");
    parse_fail_lim("{\"ab\\u00e9\": 1}", 15, &lim, DRV_ERR_TOOBIG, "string of 4 bytes");
    /* whole input */
    lim = drv_doc_default_limits;
    lim.max_input = 10;
    parse_fail_lim("a: 12345678901", 14, &lim, DRV_ERR_TOOBIG,
                   "input of 14 bytes, more than the limit of 10");
    /* number of documents */
    lim = drv_doc_default_limits;
    lim.max_docs = 2;
    parse_fail_lim("a\n---\nb\n---\n---\nc\n", 18, &lim, DRV_ERR_TOOBIG,
                   "line 6: more than 2 documents");
}

static void test_truncated_input(void **state)
{
    (void)state;
    parse_fail("a: 1\nb: [1, 2\n", "line 3, column 1: did not find expected ',' or ']'");
    parse_fail("a: \"unterminated\n", "line 2, column 1: found unexpected end of stream");
    parse_fail("kind: Pod\nspec:\n  - a\n b: 1\n", "line 4, column 2:");
    parse_fail("{\"a\": [1, 2", "line 1, column 12: unexpected end of JSON input");
    parse_fail("{\n  \"a\": \"abc", "line 2, column 12: unexpected end of JSON input");
    parse_fail("{\"a\": 1,\n}", "line 2, column 1: invalid JSON at \"}\"");
    parse_fail("{\"a\" 1}", "line 1, column 6: invalid JSON");
}

static void test_garbage_input(void **state)
{
    (void)state;
    parse_fail_lim("a: b\xff\xfe", 6, NULL, DRV_ERR_INVALID,
                   "line 1, column 5: invalid leading UTF-8 octet");
    parse_fail_lim("ok: 1\nx: \xc3\x28", 11, NULL, DRV_ERR_INVALID,
                   "line 2, column 5: invalid trailing UTF-8 octet (0x28)");
    parse_fail_lim("a: b\0c", 6, NULL, DRV_ERR_INVALID, "control characters are not allowed");
    parse_fail_lim("{\"a\": \"\xed\xa0\x80\"}", 11, NULL, DRV_ERR_INVALID,
                   "line 1, column 8: invalid UTF-8 (byte 0xed)");
    parse_fail_lim("[\"a\0b\"]", 7, NULL, DRV_ERR_INVALID, "control character 0x00 in a string");
    parse_fail("[\"a\\u0000b\"]", "\\u0000 is not allowed");
    parse_fail("a: \"x\\0y\"", "string contains a NUL character");
    parse_fail("{\"a\": 1} trailing", "line 1, column 10: unexpected text after the JSON value");
    parse_fail("[1]\n[2]", "line 2, column 1: unexpected text after the JSON value");
    parse_fail("[1]\n---\nb: 2\n", "unexpected text after the JSON value");
    parse_fail("a: b: c", "line 1, column 5: mapping values are not allowed in this context");
    parse_fail("- a\nb: 1\n", "line 2, column 1:");

    /* pseudo-random binary garbage never crashes and always explains itself */
    uint32_t x = 12345;
    char buf[512];
    for (int round = 0; round < 500; round++) {
        size_t n = 1 + (size_t)(round % (int)sizeof buf);
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (char)(x >> 16);
        }
        drv_doc_list_t l = {0};
        drv_error_t err = DRV_ERROR_INIT;
        if (drv_doc_parse(buf, n, NULL, &l, &err) == DRV_OK)
            drv_doc_list_free(&l);
        else
            assert_non_null(strstr(drv_error_msg(&err), "line "));
    }
}

/* ---- emitter ---------------------------------------------------------------------------- */

static void test_emit_quotes_what_would_change(void **state)
{
    (void)state;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "t", "true");
    cJSON_AddStringToObject(o, "n", "null");
    cJSON_AddStringToObject(o, "f", "1.0");
    cJSON_AddStringToObject(o, "h", "0x1f");
    cJSON_AddStringToObject(o, "e", "");
    cJSON_AddStringToObject(o, "y", "yes");
    cJSON_AddStringToObject(o, "plain", "nginx:1.25");
    cJSON_AddStringToObject(o, "multi", "line 1\nline 2\n");
    cJSON_AddNumberToObject(o, "int", 3);
    cJSON_AddNumberToObject(o, "big", 9007199254740992.0);
    cJSON_AddNumberToObject(o, "frac", 0.1);
    cJSON_AddBoolToObject(o, "b", 1);
    cJSON_AddNullToObject(o, "z");
    cJSON_AddItemToObject(o, "empty", cJSON_CreateObject());
    cJSON_AddItemToObject(o, "list", cJSON_CreateArray());
    char *yaml = round_trip(o);
    const char *want = "t: 'true'\n"
                       "'n': 'null'\n"
                       "f: '1.0'\n"
                       "h: '0x1f'\n"
                       "e: ''\n"
                       "'y': 'yes'\n"
                       "plain: nginx:1.25\n"
                       "multi: |\n"
                       "  line 1\n"
                       "  line 2\n"
                       "int: 3\n"
                       "big: 9007199254740992\n"
                       "frac: 0.1\n"
                       "b: true\n"
                       "z: null\n"
                       "empty: {}\n"
                       "list: []\n";
    assert_string_equal(yaml, want);
    free(yaml);
    cJSON_Delete(o);
}

#define LONG_PLAIN                                                                                 \
    ("very long plain string with many words that goes on and on and on past eighty columns "      \
     "without any line break at all")

static void test_emit_round_trip_table(void **state)
{
    (void)state;
    static const char *const strings[] = {
        "",
        " ",
        "  lead",
        "trail  ",
        "a: b",
        "a #b",
        "#c",
        "- x",
        "-",
        "?",
        "? x",
        ":",
        "*ref",
        "&anc",
        "!tag",
        "|",
        ">",
        "%dir",
        "@at",
        "`bt",
        "'sq",
        "\"dq",
        "{",
        "[x]",
        "---",
        "...",
        "<<",
        "~",
        "Null",
        "TRUE",
        "+1",
        "-0",
        ".5",
        "1e3",
        ".inf",
        ".NaN",
        "0o17",
        "012",
        "1_000",
        "on",
        "N",
        "12:30:00",
        "2001-12-14",
        "x\ty",
        "\ttab first",
        "caf\xC3\xA9",
        "\xF0\x9F\x98\x80",
        "bell\a",
        "cr\rlf",
        "crlf\r\n",
        "nel\xC2\x85x",
        "ls\xE2\x80\xA8x",
        "trailing space \nnext",
        "\n",
        "\n\n",
        "a\n\n",
        "  indented\nblock\n",
        "\nlead break",
        "bom\xEF\xBB\xBFin",
        "x\x7F",
        LONG_PLAIN,
    };
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "values");
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        cJSON_AddItemToArray(arr, cJSON_CreateString(strings[i]));
        char key[16];
        snprintf(key, sizeof key, "v%zu", i);
        cJSON_AddStringToObject(o, key, strings[i]);
        /* every string as a key too */
        if (cJSON_GetObjectItemCaseSensitive(o, strings[i]) == NULL)
            cJSON_AddNumberToObject(o, strings[i], (double)i);
        /* and as a whole document */
        cJSON *doc = cJSON_CreateString(strings[i]);
        free(round_trip(doc));
        cJSON_Delete(doc);
    }
    static const double numbers[] = {0,
                                     -1,
                                     1.5,
                                     -0.25,
                                     1e300,
                                     -1e-300,
                                     123456789.125,
                                     9007199254740991.0,
                                     -9007199254740992.0,
                                     1e20,
                                     0.1 + 0.2,
                                     5e-324,
                                     9007199254740994.0,
                                     -18014398509481984.0};
    cJSON *nums = cJSON_AddArrayToObject(o, "numbers");
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
        cJSON_AddItemToArray(nums, cJSON_CreateNumber(numbers[i]));
    /* keys beyond libyaml's 128-character simple keys are written as "? key" */
    char longkey[301];
    memset(longkey, 'k', 300);
    longkey[300] = '\0';
    cJSON_AddStringToObject(o, longkey, "long key");
    longkey[150] = '\n';
    cJSON_AddItemToObject(o, longkey, cJSON_CreateStringArray((const char *[]){"x"}, 1));
    cJSON *deep = cJSON_AddObjectToObject(o, "nested");
    cJSON *seq = cJSON_AddArrayToObject(deep, "seq");
    cJSON *inner = cJSON_CreateObject();
    cJSON_AddStringToObject(inner, "k", "v");
    cJSON_AddItemToObject(inner, "a", cJSON_CreateArray());
    cJSON_AddItemToArray(seq, inner);
    cJSON *seq2 = cJSON_CreateArray();
    cJSON_AddItemToArray(seq2, cJSON_CreateArray());
    cJSON_AddItemToArray(seq2, cJSON_CreateNull());
    cJSON_AddItemToArray(seq, seq2);
    free(round_trip(o));
    cJSON_Delete(o);
}

/* Random trees of random strings built from the characters YAML treats specially. */
static uint32_t rnd(uint32_t *x)
{
    *x = *x * 1103515245u + 12345u;
    return *x >> 8;
}

static char *random_string(uint32_t *x)
{
    /* clang-format off */
    static const char *const atoms[] = {
        "a", "Z", "0", "9", " ", "  ", "\t", "\n", "\r", ":", ": ", "#", " #", "-", "- ", "?",
        ",", "[", "]", "{", "}", "&", "*", "!", "|", ">", "'", "\"", "%", "@", "`", ".", "e",
        "x", "o", "+", "~", "\\", "<<", "---", "...", "\xC2\x85", "\xE2\x80\xA8",
        "\xEF\xBB\xBF", "\xC3\xA9", "\x01", "\x7F", "true", "null", "0x1F", ".inf", "1e3",
    };
    /* clang-format on */
    size_t n = rnd(x) % 6, len = 0;
    char *s = calloc(1, 6 * 8 + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) {
        const char *a = atoms[rnd(x) % (sizeof atoms / sizeof atoms[0])];
        memcpy(s + len, a, strlen(a));
        len += strlen(a);
    }
    return s;
}

static cJSON *random_tree(uint32_t *x, int depth)
{
    uint32_t kind = rnd(x) % (depth > 3 ? 5 : 7);
    if (kind == 0)
        return cJSON_CreateNull();
    if (kind == 1)
        return cJSON_CreateBool(rnd(x) % 2);
    if (kind == 2)
        return cJSON_CreateNumber((double)(int32_t)rnd(x) / (double)(1 + rnd(x) % 1000));
    if (kind <= 4) {
        char *s = random_string(x);
        cJSON *n = cJSON_CreateString(s);
        free(s);
        return n;
    }
    cJSON *c = kind == 5 ? cJSON_CreateArray() : cJSON_CreateObject();
    size_t n = rnd(x) % 5;
    for (size_t i = 0; i < n; i++) {
        cJSON *child = random_tree(x, depth + 1);
        if (kind == 5) {
            cJSON_AddItemToArray(c, child);
            continue;
        }
        char *k = random_string(x);
        if (cJSON_GetObjectItemCaseSensitive(c, k) == NULL)
            cJSON_AddItemToObject(c, k, child);
        else
            cJSON_Delete(child);
        free(k);
    }
    return c;
}

static void test_emit_random_round_trip(void **state)
{
    (void)state;
    uint32_t x = 2024;
    for (int i = 0; i < 3000; i++) {
        cJSON *t = random_tree(&x, 0);
        if (!cJSON_IsNull(t))
            free(round_trip(t));
        cJSON_Delete(t);
    }
}

static void test_emit_manifest_round_trip(void **state)
{
    (void)state;
    const char *text = "apiVersion: apps/v1\n"
                       "kind: Deployment\n"
                       "metadata:\n"
                       "  name: web\n"
                       "  labels: &labels {app: web, tier: \"1\"}\n"
                       "spec:\n"
                       "  replicas: 3\n"
                       "  selector:\n"
                       "    matchLabels: *labels\n"
                       "  template:\n"
                       "    metadata: {labels: *labels}\n"
                       "    spec:\n"
                       "      containers:\n"
                       "      - name: web\n"
                       "        image: nginx:1.25\n"
                       "        args: [\"--port\", \"8080\", \"--verbose=true\"]\n"
                       "        env:\n"
                       "        - {name: MODE, value: \"on\"}\n"
                       "        command:\n"
                       "        - sh\n"
                       "        - -c\n"
                       "        - |\n"
                       "          echo start\n"
                       "          exec nginx\n";
    drv_doc_list_t l = parse_ok(text);
    assert_int_equal(l.count, 1);
    char *yaml = round_trip(l.docs[0].root);
    assert_non_null(strstr(yaml, "  - |\n          echo start\n          exec nginx\n"));
    assert_non_null(strstr(yaml, "tier: '1'\n"));
    free(yaml);
    /* appending keeps what the buffer held */
    drv_buf_t b = DRV_BUF_INIT(1 << 20);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_buf_puts(&b, "---\n"), DRV_OK);
    assert_int_equal(drv_doc_emit_yaml(l.docs[0].root, &b, &err), DRV_OK);
    assert_int_equal(strncmp(drv_buf_str(&b), "---\napiVersion: apps/v1\n", 24), 0);
    drv_buf_free(&b);
    drv_doc_list_free(&l);
}

static void test_emit_errors(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *o = cJSON_CreateObject();
    cJSON *spec = cJSON_AddObjectToObject(o, "spec");
    cJSON_AddStringToObject(spec, "name", "bad\xff");
    drv_buf_t b = DRV_BUF_INIT(1 << 20);
    assert_int_equal(drv_buf_puts(&b, "keep"), DRV_OK);
    assert_int_equal(drv_doc_emit_yaml(o, &b, &err), DRV_ERR_INVALID);
    assert_string_equal(drv_error_msg(&err), "emit YAML: spec.name: string is not valid UTF-8");
    assert_string_equal(drv_buf_str(&b), "keep");
    cJSON_DeleteItemFromObject(spec, "name");
    cJSON_AddNumberToObject(spec, "x", 1.0 / 0.0);
    assert_int_equal(drv_doc_emit_yaml(o, &b, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "spec.x: inf is not representable"));
    drv_buf_free(&b);
    cJSON_DeleteItemFromObject(spec, "x");
    cJSON_AddStringToObject(spec, "long", "0123456789012345678901234567890123456789");
    drv_buf_t small = DRV_BUF_INIT(16);
    assert_int_equal(drv_doc_emit_yaml(o, &small, &err), DRV_ERR_TOOBIG);
    assert_int_equal(small.len, 0);
    drv_buf_free(&small);
    assert_int_equal(drv_doc_emit_yaml(NULL, &small, &err), DRV_ERR_INVALID);
    cJSON_Delete(o);
    cJSON *deep = cJSON_CreateArray();
    cJSON *cur = deep;
    for (int i = 0; i < 100; i++) {
        cJSON *n = cJSON_CreateArray();
        cJSON_AddItemToArray(cur, n);
        cur = n;
    }
    drv_buf_t d = DRV_BUF_INIT(1 << 20);
    assert_int_equal(drv_doc_emit_yaml(deep, &d, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "nesting deeper than 64"));
    drv_buf_free(&d);
    cJSON_Delete(deep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multi_document_stream),
        cmocka_unit_test(test_empty_inputs_give_no_documents),
        cmocka_unit_test(test_json_input),
        cmocka_unit_test(test_core_schema_table),
        cmocka_unit_test(test_quoted_and_block_scalars_are_strings),
        cmocka_unit_test(test_number_limits),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_keys_are_strings),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_anchors_and_aliases),
        cmocka_unit_test(test_merge_keys),
        cmocka_unit_test(test_billion_laughs_fails_fast),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_truncated_input),
        cmocka_unit_test(test_garbage_input),
        cmocka_unit_test(test_emit_quotes_what_would_change),
        cmocka_unit_test(test_emit_round_trip_table),
        cmocka_unit_test(test_emit_random_round_trip),
        cmocka_unit_test(test_emit_manifest_round_trip),
        cmocka_unit_test(test_emit_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
