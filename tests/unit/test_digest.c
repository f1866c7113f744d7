/* Tests for content digests: known SHA-256 vectors, streaming in pieces equals one shot,
 * strict parsing of "sha256:<hex>" (and clear errors for everything else), verification
 * messages that name both digests, and hashing files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/digest.h"

#define EMPTY_HEX "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ABC_HEX "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/* FIPS 180-2 two-block message */
#define ABC2 "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
#define ABC2_HEX "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"

static void test_known_vectors(void **state)
{
    (void)state;
    drv_digest_t d;
    char s[DRV_DIGEST_STR_MAX], hex[DRV_DIGEST_HEX_MAX];
    drv_digest_of("", 0, &d);
    assert_string_equal(drv_digest_format(&d, s), "sha256:" EMPTY_HEX);
    drv_digest_of("abc", 3, &d);
    assert_string_equal(drv_digest_hex(&d, hex), ABC_HEX);
    drv_digest_of(ABC2, strlen(ABC2), &d);
    assert_string_equal(drv_digest_hex(&d, hex), ABC2_HEX);
}

static void test_streaming_equals_one_shot(void **state)
{
    (void)state;
    static uint8_t data[200000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 31 + 7);
    drv_digest_t whole, pieces;
    drv_digest_of(data, sizeof(data), &whole);
    drv_sha256_t h;
    drv_sha256_init(&h);
    size_t off = 0, step = 1;
    while (off < sizeof(data)) {
        size_t n = step < sizeof(data) - off ? step : sizeof(data) - off;
        drv_sha256_update(&h, data + off, n);
        off += n;
        step = step * 3 + 1;
    }
    drv_sha256_update(&h, NULL, 0); /* empty updates are fine */
    assert_int_equal(h.total, sizeof(data));
    drv_sha256_final(&h, &pieces);
    assert_true(drv_digest_equal(&whole, &pieces));
}

static void test_parse_roundtrip(void **state)
{
    (void)state;
    drv_digest_t d, e;
    char s[DRV_DIGEST_STR_MAX];
    assert_int_equal(drv_digest_parse("sha256:" ABC_HEX, &d, NULL), DRV_OK);
    assert_string_equal(drv_digest_format(&d, s), "sha256:" ABC_HEX);
    assert_int_equal(drv_digest_parse_hex(ABC_HEX, &e, NULL), DRV_OK);
    assert_true(drv_digest_equal(&d, &e));
    drv_digest_of("abc", 3, &e);
    assert_true(drv_digest_equal(&d, &e));
}

static void expect_parse_error(const char *in, drv_err_t code, const char *needle)
{
    drv_error_t err = DRV_ERROR_INIT;
    drv_digest_t d;
    memset(&d, 0xaa, sizeof(d));
    drv_digest_t before = d;
    assert_int_equal(drv_digest_parse(in, &d, &err), code);
    assert_int_equal(err.code, code);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
    assert_memory_equal(&d, &before, sizeof(d)); /* untouched on failure */
}

static void test_parse_rejects(void **state)
{
    (void)state;
    expect_parse_error(NULL, DRV_ERR_INVALID, "missing");
    expect_parse_error("", DRV_ERR_INVALID, "missing");
    expect_parse_error(ABC_HEX, DRV_ERR_INVALID, "expected \"sha256:<64 hex digits>\"");
    expect_parse_error("sha256:", DRV_ERR_INVALID, "found 0");
    expect_parse_error("sha256:abc", DRV_ERR_INVALID, "64 hex digits, found 3");
    expect_parse_error("sha256:" ABC_HEX "00", DRV_ERR_INVALID, "found more than 64");
    expect_parse_error("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
                       DRV_ERR_INVALID, "lowercase");
    expect_parse_error("sha256:zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                       DRV_ERR_INVALID, "lowercase hex");
    expect_parse_error("SHA256:" ABC_HEX, DRV_ERR_INVALID, "expected");
    expect_parse_error("sha512:abcd", DRV_ERR_UNSUPPORTED, "algorithm \"sha512\" is not supported");
    expect_parse_error("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
                       DRV_ERR_UNSUPPORTED, "not supported");
    expect_parse_error(":abc", DRV_ERR_INVALID, "expected");
    expect_parse_error("sha256 :" ABC_HEX, DRV_ERR_INVALID, "expected");
    /* a control character in the input is not echoed raw */
    drv_error_t err = DRV_ERROR_INIT;
    drv_digest_t d;
    assert_int_equal(drv_digest_parse("bad\n\x1b[31m", &d, &err), DRV_ERR_INVALID);
    assert_null(strchr(err.msg, '\n'));
    assert_null(strchr(err.msg, '\x1b'));
    /* a long input is cut in the message */
    char longin[400];
    memset(longin, 'a', sizeof(longin) - 1);
    longin[sizeof(longin) - 1] = '\0';
    assert_int_equal(drv_digest_parse(longin, &d, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "..."));
    assert_true(strlen(err.msg) < 200);
    assert_int_equal(drv_digest_parse_hex(NULL, &d, &err), DRV_ERR_INVALID);
    assert_int_equal(drv_digest_parse_hex("sha256:" ABC_HEX, &d, &err), DRV_ERR_INVALID);
}

static void test_verify_names_both(void **state)
{
    (void)state;
    drv_digest_t a, b;
    drv_digest_of("abc", 3, &a);
    drv_digest_of("", 0, &b);
    assert_int_equal(drv_digest_verify(&a, &a, "layer x", NULL), DRV_OK);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_digest_verify(&a, &b, "layer x", &err), DRV_ERR_INTEGRITY);
    assert_string_equal(err.msg, "layer x: digest mismatch: expected sha256:" ABC_HEX
                                 ", got sha256:" EMPTY_HEX);
    assert_int_equal(drv_digest_verify(&a, &b, NULL, &err), DRV_ERR_INTEGRITY);
    assert_string_equal(err.msg,
                        "digest mismatch: expected sha256:" ABC_HEX ", got sha256:" EMPTY_HEX);
    assert_false(drv_digest_equal(&a, &b));
}

static void test_check(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_digest_check("sha256:" ABC_HEX, "abc", 3, "config", &err), DRV_OK);
    assert_int_equal(drv_digest_check("sha256:" ABC_HEX, "abd", 3, "config", &err),
                     DRV_ERR_INTEGRITY);
    assert_non_null(strstr(err.msg, "config: digest mismatch: expected sha256:" ABC_HEX));
    assert_int_equal(drv_digest_check("md5:x", "abc", 3, "config", &err), DRV_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "config: "));
}

static void test_file(void **state)
{
    (void)state;
    char path[] = "/tmp/drover-test-digest-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static uint8_t data[300000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i ^ (i >> 8));
    assert_int_equal(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
    close(fd);
    drv_digest_t want, got;
    uint64_t size = 0;
    drv_digest_of(data, sizeof(data), &want);
    assert_int_equal(drv_digest_file(path, &got, &size, NULL), DRV_OK);
    assert_true(drv_digest_equal(&want, &got));
    assert_int_equal(size, sizeof(data));
    unlink(path);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_digest_file(path, &got, NULL, &err), DRV_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(drv_digest_file("/tmp", &got, NULL, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "not a regular file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_vectors),
        cmocka_unit_test(test_streaming_equals_one_shot),
        cmocka_unit_test(test_parse_roundtrip),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_verify_names_both),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
