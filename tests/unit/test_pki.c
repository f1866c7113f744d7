/* Tests for pki: keys, CA, CSRs (and hostile ones: tampered, other curves and algorithms, CNs
 * that are not node names), issued client and server certificates and their verification
 * (other CA, expired, not yet valid, wrong usage), signatures, sealed blobs (every bit flip,
 * every truncation, other key or context) and at-rest AEAD (aad, key ids, rotation). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/asn1.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>

#include "drover/base64.h"
#include "drover/pki.h"

/* One CA for the whole run: EC keys are cheap, but there is no need to make one per case. */
static char *ca_key, *ca_cert, *node_key, *node_pub;
static char *p384_pem, *rsa_pem; /* keys pki refuses, made on first use */

static int test_rng(void *p, unsigned char *out, size_t n)
{
    (void)p;
    while (n > 0) {
        ssize_t r = getrandom(out, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        out += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Bit-flip loops over public-key operations try every bit natively and one bit of every byte
 * (rotating) under qemu or the sanitizers, where each operation is many times slower. */
static size_t bit_stride(void)
{
    const char *f = getenv("DROVER_TEST_TIME_FACTOR");
    return f != NULL && strtol(f, NULL, 10) > 1 ? 9 : 1;
}

static int64_t now(void)
{
    return (int64_t)time(NULL);
}

/* Runs a call that must fail with code and a message containing want. */
#define ASSERT_FAILS(code, want, call)                                                             \
    do {                                                                                           \
        drv_error_clear(&err);                                                                     \
        drv_err_t rc_ = (call);                                                                    \
        if (rc_ != (code) || strstr(err.msg, (want)) == NULL)                                      \
            fail_msg("%s: got %s \"%s\", want %s with \"%s\"", #call, drv_strerror(rc_), err.msg,  \
                     drv_strerror(code), (want));                                                  \
    } while (0)

static int group_setup(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_pki_key_generate(&ca_key, &err) != DRV_OK ||
        drv_pki_ca_create(ca_key, "Drover CA test", 0, 3650, &ca_cert, &err) != DRV_OK ||
        drv_pki_key_generate(&node_key, &err) != DRV_OK ||
        drv_pki_key_public(node_key, &node_pub, &err) != DRV_OK) {
        fprintf(stderr, "setup: %s\n", drv_error_msg(&err));
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    drv_pki_secret_free(ca_key);
    drv_pki_secret_free(node_key);
    free(ca_cert);
    free(node_pub);
    free(p384_pem);
    free(rsa_pem);
    return 0;
}

/* ---- helpers that build what pki refuses to build ---- */

/* A PEM key of another curve or algorithm (made with mbedTLS directly). */
static char *make_other_key(mbedtls_pk_type_t type, mbedtls_ecp_group_id curve)
{
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    assert_int_equal(mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(type)), 0);
    if (type == MBEDTLS_PK_RSA)
        assert_int_equal(mbedtls_rsa_gen_key(mbedtls_pk_rsa(pk), test_rng, NULL, 1024, 65537), 0);
    else
        assert_int_equal(mbedtls_ecp_gen_key(curve, mbedtls_pk_ec(pk), test_rng, NULL), 0);
    unsigned char buf[4096];
    assert_int_equal(mbedtls_pk_write_key_pem(&pk, buf, sizeof buf), 0);
    mbedtls_pk_free(&pk);
    return strdup((const char *)buf);
}

/* Made once (RSA key generation is slow under qemu); freed at teardown. */
static const char *other_key_pem(mbedtls_pk_type_t type, mbedtls_ecp_group_id curve)
{
    char **slot = type == MBEDTLS_PK_RSA ? &rsa_pem : &p384_pem;
    if (*slot == NULL)
        *slot = make_other_key(type, curve);
    return *slot;
}

static char *der_to_pem(const char *what, const unsigned char *der, size_t len)
{
    char header[64], footer[64];
    snprintf(header, sizeof header, "-----BEGIN %s-----\n", what);
    snprintf(footer, sizeof footer, "-----END %s-----\n", what);
    unsigned char buf[8192];
    size_t olen = 0;
    assert_int_equal(mbedtls_pem_write_buffer(header, footer, der, len, buf, sizeof buf, &olen), 0);
    return strdup((const char *)buf);
}

static bool flip_cn; /* raw_csr: flip the last bit of the CN after signing */

/* A CSR made with mbedTLS: subject CN of cn_len bytes (or subject "O=x" when cn is NULL), and
 * optionally one byte of the DER flipped (flip_at counts from the end; 0: none). */
static char *raw_csr(const char *key_pem, const char *cn, size_t cn_len, size_t flip_from_end)
{
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    assert_int_equal(
        mbedtls_pk_parse_key(&pk, (const unsigned char *)key_pem, strlen(key_pem) + 1, NULL, 0), 0);
    mbedtls_x509write_csr csr;
    mbedtls_x509write_csr_init(&csr);
    mbedtls_x509write_csr_set_key(&csr, &pk);
    mbedtls_x509write_csr_set_md_alg(&csr, MBEDTLS_MD_SHA256);
    if (cn != NULL) {
        mbedtls_asn1_named_data *n = mbedtls_asn1_store_named_data(
            &csr.subject, MBEDTLS_OID_AT_CN, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN),
            (const unsigned char *)cn, cn_len);
        assert_non_null(n);
        n->val.tag = MBEDTLS_ASN1_UTF8_STRING;
    } else {
        assert_int_equal(mbedtls_x509write_csr_set_subject_name(&csr, "O=x"), 0);
    }
    unsigned char buf[4096];
    int n = mbedtls_x509write_csr_der(&csr, buf, sizeof buf, test_rng, NULL);
    assert_true(n > 0);
    unsigned char *der = buf + sizeof buf - n;
    if (flip_from_end > 0)
        der[n - flip_from_end] ^= 0x01;
    if (flip_cn) {
        unsigned char *at = memmem(der, (size_t)n, cn, cn_len);
        assert_non_null(at);
        at[cn_len - 1] ^= 0x01;
    }
    mbedtls_x509write_csr_free(&csr);
    mbedtls_pk_free(&pk);
    return der_to_pem("CERTIFICATE REQUEST", der, (size_t)n);
}

static char *issue_client(const char *cn, int64_t not_before, uint32_t days)
{
    drv_error_t err = DRV_ERROR_INIT;
    char *csr = NULL, *cert = NULL;
    if (drv_pki_csr_create(node_key, cn, &csr, &err) != DRV_OK)
        fail_msg("csr: %s", err.msg);
    drv_pki_issue_t o = {.usage = DRV_PKI_CLIENT_AUTH, .not_before = not_before, .days = days};
    if (drv_pki_issue_csr(ca_key, ca_cert, csr, &o, &cert, &err) != DRV_OK)
        fail_msg("issue: %s", err.msg);
    free(csr);
    return cert;
}

/* ---- keys ---- */

static void test_keys(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    _cleanup_secret_ char *k = NULL;
    char *pub = NULL, *pub2 = NULL;
    assert_int_equal(drv_pki_key_generate(&k, &err), DRV_OK);
    assert_non_null(strstr(k, "-----BEGIN EC PRIVATE KEY-----"));
    assert_int_equal(drv_pki_key_check(k, &err), DRV_OK);
    assert_int_equal(drv_pki_key_public(k, &pub, &err), DRV_OK);
    assert_non_null(strstr(pub, "-----BEGIN PUBLIC KEY-----"));
    assert_int_equal(drv_pki_pubkey_check(pub, &err), DRV_OK);
    /* Deterministic: the same key gives the same public key; another key another one. */
    assert_int_equal(drv_pki_key_public(k, &pub2, &err), DRV_OK);
    assert_string_equal(pub, pub2);
    free(pub2);
    assert_string_not_equal(pub, node_pub);
    /* A public key is not a private key and the other way round. */
    ASSERT_FAILS(DRV_ERR_INVALID, "private key: not a private key PEM",
                 drv_pki_key_check(pub, &err));
    ASSERT_FAILS(DRV_ERR_INVALID, "public key: not a public key PEM",
                 drv_pki_pubkey_check(k, &err));
    free(pub);
    ASSERT_FAILS(DRV_ERR_INVALID, "private key: required", drv_pki_key_check(NULL, &err));
    ASSERT_FAILS(DRV_ERR_INVALID, "private key: not a private key PEM",
                 drv_pki_key_check("-----BEGIN EC PRIVATE KEY-----\nAAAA\n"
                                   "-----END EC PRIVATE KEY-----\n",
                                   &err));
    char *big = malloc(DRV_PKI_PEM_MAX + 2);
    memset(big, 'A', DRV_PKI_PEM_MAX + 1);
    big[DRV_PKI_PEM_MAX + 1] = '\0';
    ASSERT_FAILS(DRV_ERR_TOOBIG, "private key: longer than", drv_pki_key_check(big, &err));
    free(big);
}

static void test_keys_other_curves_refused(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    const char *p384 = other_key_pem(MBEDTLS_PK_ECKEY, MBEDTLS_ECP_DP_SECP384R1);
    const char *rsa = other_key_pem(MBEDTLS_PK_RSA, MBEDTLS_ECP_DP_NONE);
    char *out = NULL;
    ASSERT_FAILS(DRV_ERR_UNSUPPORTED, "EC curve secp384r1 is not accepted",
                 drv_pki_key_check(p384, &err));
    ASSERT_FAILS(DRV_ERR_UNSUPPORTED, "RSA keys are not accepted", drv_pki_key_check(rsa, &err));
    ASSERT_FAILS(DRV_ERR_UNSUPPORTED, "signing key: RSA keys",
                 drv_pki_sign(rsa, "x", 1, &out, &err));
    ASSERT_FAILS(DRV_ERR_UNSUPPORTED, "CA key: EC curve secp384r1",
                 drv_pki_ca_create(p384, "CA", 0, 10, &out, &err));
    ASSERT_FAILS(DRV_ERR_UNSUPPORTED, "CSR key: RSA", drv_pki_csr_create(rsa, "n1", &out, &err));
    assert_null(out);
}

/* ---- CA and CSR ---- */

static void test_ca(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    drv_pki_cert_info_t info;
    assert_int_equal(drv_pki_cert_info(ca_cert, &info, &err), DRV_OK);
    assert_string_equal(info.cn, "Drover CA test");
    assert_true(info.is_ca);
    assert_int_equal(info.usage, 0);
    int64_t t = now();
    assert_true(info.not_before <= t - DRV_PKI_SKEW + 5 && info.not_before >= t - DRV_PKI_SKEW - 5);
    assert_int_equal(info.not_after - info.not_before, (int64_t)3650 * 86400);
    assert_int_equal(drv_pki_key_matches_cert(ca_key, ca_cert, &err), DRV_OK);
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "does not belong",
                 drv_pki_key_matches_cert(node_key, ca_cert, &err));

    char *out = NULL;
    ASSERT_FAILS(DRV_ERR_INVALID, "CA CN: character 4 (0x2c)",
                 drv_pki_ca_create(ca_key, "Acme,O=evil", 0, 10, &out, &err));
    ASSERT_FAILS(DRV_ERR_INVALID, "CA CN: required",
                 drv_pki_ca_create(ca_key, "", 0, 10, &out, &err));
    ASSERT_FAILS(DRV_ERR_RANGE, "validity: 0 days",
                 drv_pki_ca_create(ca_key, "CA", 0, 0, &out, &err));
    ASSERT_FAILS(DRV_ERR_RANGE, "validity: 7301 days",
                 drv_pki_ca_create(ca_key, "CA", 0, 7301, &out, &err));
    assert_null(out);
    /* Past 2038 and 2050 (UTCTime -> GeneralizedTime): dates survive the round trip. */
    int64_t nb = INT64_C(2524608000); /* 2050-01-01 */
    assert_int_equal(drv_pki_ca_create(ca_key, "Future CA", nb, 100, &out, &err), DRV_OK);
    assert_int_equal(drv_pki_cert_info(out, &info, &err), DRV_OK);
    assert_int_equal(info.not_before, nb);
    assert_int_equal(info.not_after, nb + 100 * 86400);
    free(out);
}

static void test_csr_round_trip(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    char *csr = NULL, *pub = NULL;
    char cn[DRV_PKI_CN_MAX + 1];
    assert_int_equal(drv_pki_csr_create(node_key, "rpi-kitchen.site-1", &csr, &err), DRV_OK);
    assert_non_null(strstr(csr, "-----BEGIN CERTIFICATE REQUEST-----"));
    assert_int_equal(drv_pki_csr_parse(csr, cn, &pub, &err), DRV_OK);
    assert_string_equal(cn, "rpi-kitchen.site-1");
    assert_string_equal(pub, node_pub);
    free(pub);
    assert_int_equal(drv_pki_csr_parse(csr, cn, NULL, &err), DRV_OK);
    free(csr);
    csr = NULL;
    ASSERT_FAILS(DRV_ERR_INVALID, "CSR CN: node name",
                 drv_pki_csr_create(node_key, "a+b", &csr, &err));
    ASSERT_FAILS(DRV_ERR_INVALID, "CSR CN: node name",
                 drv_pki_csr_create(node_key, "", &csr, &err));
    assert_null(csr);
    ASSERT_FAILS(DRV_ERR_INVALID, "CSR: not a PEM certificate request",
                 drv_pki_csr_parse(ca_cert, cn, NULL, &err));
    ASSERT_FAILS(DRV_ERR_INVALID, "CSR: required", drv_pki_csr_parse("", cn, NULL, &err));
}

static void test_csr_tampered(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    char cn[DRV_PKI_CN_MAX + 1] = "untouched";
    /* The last byte is in the signature; byte 60 from the end is in the signed key. */
    char *csr = raw_csr(node_key, "node-1", 6, 1);
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "CSR: signature does not verify",
                 drv_pki_csr_parse(csr, cn, NULL, &err));
    free(csr);
    /* A byte of the CN itself ("node-1" -> "node-0"): signed over the old name. */
    flip_cn = true;
    csr = raw_csr(node_key, "node-1", 6, 0);
    flip_cn = false;
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "CSR: signature does not verify",
                 drv_pki_csr_parse(csr, cn, NULL, &err));
    free(csr);
    /* Anywhere else (signature, key, structure): refused one way or another. */
    size_t flips[] = {1, 2, 10, 20, 40, 80, 100, 120, 150};
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        csr = raw_csr(node_key, "node-1", 6, flips[i]);
        drv_error_clear(&err);
        if (drv_pki_csr_parse(csr, cn, NULL, &err) == DRV_OK)
            fail_msg("flip %zu from the end: accepted", flips[i]);
        free(csr);
    }
    assert_string_equal(cn, "untouched");
}

static void test_csr_other_keys(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    char cn[DRV_PKI_CN_MAX + 1];
    const char *p384 = other_key_pem(MBEDTLS_PK_ECKEY, MBEDTLS_ECP_DP_SECP384R1);
    const char *rsa = other_key_pem(MBEDTLS_PK_RSA, MBEDTLS_ECP_DP_NONE);
    char *csr = raw_csr(p384, "node-1", 6, 0);
    ASSERT_FAILS(DRV_ERR_UNSUPPORTED, "CSR key: EC curve secp384r1 is not accepted",
                 drv_pki_csr_parse(csr, cn, NULL, &err));
    drv_pki_issue_t o = {.usage = DRV_PKI_CLIENT_AUTH, .days = 1};
    char *cert = NULL;
    ASSERT_FAILS(DRV_ERR_UNSUPPORTED, "CSR key: EC curve secp384r1",
                 drv_pki_issue_csr(ca_key, ca_cert, csr, &o, &cert, &err));
    free(csr);
    csr = raw_csr(rsa, "node-1", 6, 0);
    ASSERT_FAILS(DRV_ERR_UNSUPPORTED, "CSR key: RSA keys are not accepted",
                 drv_pki_csr_parse(csr, cn, NULL, &err));
    free(csr);
    assert_null(cert);
}

static void test_csr_bad_names(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    char cn[DRV_PKI_CN_MAX + 1];
    struct {
        const char *cn;
        size_t len;
        const char *want;
    } cases[] = {
        {"node+1", 6, "CSR: CN: node name \"node+1\""},
        {"node#", 5, "CSR: CN: node name \"node#\""},
        {"a/b", 3, "CSR: CN: node name \"a/b\""},
        {"a\x01"
         "b",
         3, "CSR: CN: control character 0x01 at 1"},
        {"a\nb", 3, "CSR: CN: control character 0x0a at 1"},
        {"a\0b", 3, "CSR: CN: control character 0x00 at 1"},
        {"Node-1", 6, "CSR: CN: node name \"Node-1\""},
        {"", 0, "CSR: CN: node name: required"},
        {"node 1", 6, "CSR: CN: node name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *csr = raw_csr(node_key, cases[i].cn, cases[i].len, 0);
        ASSERT_FAILS(DRV_ERR_INVALID, cases[i].want, drv_pki_csr_parse(csr, cn, NULL, &err));
        free(csr);
    }
    char long_cn[301];
    memset(long_cn, 'a', 300);
    long_cn[300] = '\0';
    char *csr = raw_csr(node_key, long_cn, 300, 0);
    ASSERT_FAILS(DRV_ERR_INVALID, "CSR: CN: must be no more than 64 characters",
                 drv_pki_csr_parse(csr, cn, NULL, &err));
    free(csr);
    csr = raw_csr(node_key, long_cn, 64, 0); /* 64: over the node name's 63 */
    ASSERT_FAILS(DRV_ERR_INVALID, "CSR: CN: node name: must be no more than 63",
                 drv_pki_csr_parse(csr, cn, NULL, &err));
    free(csr);
    csr = raw_csr(node_key, NULL, 0, 0);
    ASSERT_FAILS(DRV_ERR_INVALID, "CSR: subject has no CN", drv_pki_csr_parse(csr, cn, NULL, &err));
    free(csr);
}

/* ---- issued certificates ---- */

static void test_issue_client(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    char *cert = issue_client("node-7", 0, 30);
    assert_int_equal(drv_pki_cert_verify(cert, ca_cert, 0, DRV_PKI_CLIENT_AUTH, &err), DRV_OK);
    assert_int_equal(drv_pki_cert_verify(cert, ca_cert, 0, 0, &err), DRV_OK);
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "not valid for server authentication",
                 drv_pki_cert_verify(cert, ca_cert, 0, DRV_PKI_SERVER_AUTH, &err));
    drv_pki_cert_info_t info;
    assert_int_equal(drv_pki_cert_info(cert, &info, &err), DRV_OK);
    assert_string_equal(info.cn, "node-7");
    assert_false(info.is_ca);
    assert_int_equal(info.usage, DRV_PKI_CLIENT_AUTH);
    assert_int_equal(strlen(info.serial), 32);
    assert_int_equal(info.not_after - info.not_before, 30 * 86400);
    assert_int_equal(strncmp(info.fingerprint, "sha256:", 7), 0);
    assert_int_equal(strlen(info.fingerprint), 7 + 64);
    /* The fingerprint is over the DER, as a TLS peer presents it. */
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    assert_int_equal(mbedtls_x509_crt_parse(&crt, (const unsigned char *)cert, strlen(cert) + 1),
                     0);
    char fp[DRV_PKI_FINGERPRINT_MAX];
    drv_pki_fingerprint_der(crt.raw.p, crt.raw.len, fp);
    assert_string_equal(fp, info.fingerprint);
    assert_int_equal(crt.ca_istrue, 0);
    assert_true(crt.ext_types & MBEDTLS_X509_EXT_BASIC_CONSTRAINTS);
    mbedtls_x509_crt_free(&crt);
    /* Two issues for one key: different serials. */
    char *cert2 = issue_client("node-7", 0, 30);
    drv_pki_cert_info_t info2;
    assert_int_equal(drv_pki_cert_info(cert2, &info2, &err), DRV_OK);
    assert_string_not_equal(info.serial, info2.serial);
    assert_string_not_equal(info.fingerprint, info2.fingerprint);
    free(cert2);
    /* The key belongs to it, its public key is the node's. */
    assert_int_equal(drv_pki_key_matches_cert(node_key, cert, &err), DRV_OK);
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "does not belong",
                 drv_pki_key_matches_cert(ca_key, cert, &err));
    char *pub = NULL;
    assert_int_equal(drv_pki_cert_pubkey(cert, &pub, &err), DRV_OK);
    assert_string_equal(pub, node_pub);
    free(pub);
    /* A CSR for another name than the one enrolling. */
    char *csr = NULL, *out = NULL;
    assert_int_equal(drv_pki_csr_create(node_key, "node-7", &csr, &err), DRV_OK);
    drv_pki_issue_t o = {.cn = "node-8", .usage = DRV_PKI_CLIENT_AUTH, .days = 1};
    ASSERT_FAILS(DRV_ERR_CONFLICT, "CSR: CN \"node-7\" is not the node name \"node-8\"",
                 drv_pki_issue_csr(ca_key, ca_cert, csr, &o, &out, &err));
    o.cn = "node-7";
    o.usage = 0;
    ASSERT_FAILS(DRV_ERR_INVALID, "usage", drv_pki_issue_csr(ca_key, ca_cert, csr, &o, &out, &err));
    o.usage = DRV_PKI_CLIENT_AUTH;
    /* The CA key must match the CA certificate; a leaf is no CA. */
    ASSERT_FAILS(DRV_ERR_INVALID, "CA key does not match the CA certificate",
                 drv_pki_issue_csr(node_key, ca_cert, csr, &o, &out, &err));
    ASSERT_FAILS(DRV_ERR_INVALID, "CA certificate: not a CA",
                 drv_pki_issue_csr(node_key, cert, csr, &o, &out, &err));
    ASSERT_FAILS(DRV_ERR_INVALID, "issue: options required",
                 drv_pki_issue_csr(ca_key, ca_cert, csr, NULL, &out, &err));
    assert_null(out);
    free(csr);
    /* A CA certificate presented as an identity. */
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "a CA certificate, not an identity",
                 drv_pki_cert_verify(ca_cert, ca_cert, 0, 0, &err));
    free(cert);
}

static void test_issue_server_sans(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    const char *dns[] = {"hub.fleet.local", "localhost"};
    const char *ips[] = {"127.0.0.1", "fd00::1"};
    drv_pki_issue_t o = {.cn = "drover-hub",
                         .usage = DRV_PKI_SERVER_AUTH | DRV_PKI_CLIENT_AUTH,
                         .dns_names = dns,
                         .n_dns = 2,
                         .ip_addrs = ips,
                         .n_ips = 2,
                         .days = 365};
    _cleanup_secret_ char *k = NULL;
    char *pub = NULL, *cert = NULL;
    assert_int_equal(drv_pki_key_generate(&k, &err), DRV_OK);
    assert_int_equal(drv_pki_key_public(k, &pub, &err), DRV_OK);
    if (drv_pki_issue_key(ca_key, ca_cert, pub, &o, &cert, &err) != DRV_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(drv_pki_cert_verify(cert, ca_cert, 0, DRV_PKI_SERVER_AUTH, &err), DRV_OK);
    assert_int_equal(
        drv_pki_cert_verify(cert, ca_cert, 0, DRV_PKI_SERVER_AUTH | DRV_PKI_CLIENT_AUTH, &err),
        DRV_OK);
    mbedtls_x509_crt crt, ca;
    mbedtls_x509_crt_init(&crt);
    mbedtls_x509_crt_init(&ca);
    assert_int_equal(mbedtls_x509_crt_parse(&crt, (const unsigned char *)cert, strlen(cert) + 1),
                     0);
    assert_int_equal(
        mbedtls_x509_crt_parse(&ca, (const unsigned char *)ca_cert, strlen(ca_cert) + 1), 0);
    /* The SANs, in order, with their GeneralName tags. */
    const unsigned char tag_dns = MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2,
                        tag_ip = MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7;
    const mbedtls_x509_sequence *s = &crt.subject_alt_names;
    assert_int_equal(s->buf.tag, tag_dns);
    assert_memory_equal(s->buf.p, "hub.fleet.local", 15);
    s = s->next;
    assert_int_equal(s->buf.tag, tag_dns);
    assert_int_equal(s->buf.len, 9);
    s = s->next;
    assert_int_equal(s->buf.tag, tag_ip);
    assert_int_equal(s->buf.len, 4);
    assert_memory_equal(s->buf.p, "\x7f\x00\x00\x01", 4);
    s = s->next;
    assert_int_equal(s->buf.tag, tag_ip);
    assert_int_equal(s->buf.len, 16);
    assert_null(s->next);
    /* What a TLS client with mbedTLS checks: the chain, the name (a SAN, not the CN). */
    uint32_t flags = 0;
    assert_int_equal(
        mbedtls_x509_crt_verify(&crt, &ca, NULL, "hub.fleet.local", &flags, NULL, NULL), 0);
    assert_int_not_equal(
        mbedtls_x509_crt_verify(&crt, &ca, NULL, "other.local", &flags, NULL, NULL), 0);
    /* The host check mbedTLS 2.28 lacks for addresses. */
    const char *good[] = {"hub.fleet.local", "HUB.fleet.local", "localhost",
                          "127.0.0.1",       "fd00::1",         "fd00:0::1"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (drv_pki_cert_check_host(crt.raw.p, crt.raw.len, good[i], &err) != DRV_OK)
            fail_msg("%s: %s", good[i], err.msg);
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "certificate \"drover-hub\" is not for address 127.0.0.2",
                 drv_pki_cert_check_host(crt.raw.p, crt.raw.len, "127.0.0.2", &err));
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "is not for host drover-hub",
                 drv_pki_cert_check_host(crt.raw.p, crt.raw.len, "drover-hub", &err));
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "is not for host fleet.local",
                 drv_pki_cert_check_host(crt.raw.p, crt.raw.len, "fleet.local", &err));
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "is not for host hub.fleet.local.evil",
                 drv_pki_cert_check_host(crt.raw.p, crt.raw.len, "hub.fleet.local.evil", &err));
    ASSERT_FAILS(DRV_ERR_INVALID, "certificate: not DER",
                 drv_pki_cert_check_host(crt.raw.p, crt.raw.len - 1, "localhost", &err));
    ASSERT_FAILS(DRV_ERR_INVALID, "host: required",
                 drv_pki_cert_check_host(crt.raw.p, crt.raw.len, "", &err));
    assert_int_equal(mbedtls_x509_crt_check_extended_key_usage(
                         &crt, MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)),
                     0);
    mbedtls_x509_crt_free(&crt);
    mbedtls_x509_crt_free(&ca);
    free(cert);
    cert = NULL;

    const char *bad_dns[] = {"hub", "bad_name"};
    o.dns_names = bad_dns;
    ASSERT_FAILS(DRV_ERR_INVALID, "issue: dnsNames[1] \"bad_name\"",
                 drv_pki_issue_key(ca_key, ca_cert, pub, &o, &cert, &err));
    o.dns_names = dns;
    const char *bad_ip[] = {"300.1.1.1"};
    o.ip_addrs = bad_ip;
    o.n_ips = 1;
    ASSERT_FAILS(DRV_ERR_INVALID, "issue: ipAddresses[0] \"300.1.1.1\": not an IPv4 or IPv6",
                 drv_pki_issue_key(ca_key, ca_cert, pub, &o, &cert, &err));
    o.n_ips = 0;
    o.n_dns = DRV_PKI_SAN_MAX + 1;
    ASSERT_FAILS(DRV_ERR_RANGE, "at most 32",
                 drv_pki_issue_key(ca_key, ca_cert, pub, &o, &cert, &err));
    o.n_dns = 0;
    o.cn = "hub#1";
    ASSERT_FAILS(DRV_ERR_INVALID, "issue: CN: node name",
                 drv_pki_issue_key(ca_key, ca_cert, pub, &o, &cert, &err));
    o.cn = NULL;
    ASSERT_FAILS(DRV_ERR_INVALID, "issue: CN: node name: required",
                 drv_pki_issue_key(ca_key, ca_cert, pub, &o, &cert, &err));
    assert_null(cert);
    free(pub);
}

/* ---- ECDSA signature algorithm encoding (RFC 5758 section 3.2) ---- */

/* ecdsa-with-SHA256 (1.2.840.10045.4.3.2) as a DER OBJECT IDENTIFIER. */
static const unsigned char ecdsa_sha256_oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                                 0xce, 0x3d, 0x04, 0x03, 0x02};

/* der holds ecdsa-with-SHA256 exactly want times, each time as the only member of its
 * AlgorithmIdentifier (30 0A before it) and never followed by a NULL parameter (05 00). */
static void assert_ecdsa_alg_bare(const char *what, const unsigned char *der, size_t len, int want)
{
    int found = 0;
    for (size_t i = 0; i + sizeof ecdsa_sha256_oid <= len; i++) {
        if (memcmp(der + i, ecdsa_sha256_oid, sizeof ecdsa_sha256_oid) != 0)
            continue;
        found++;
        if (i < 2 || der[i - 2] != 0x30 || der[i - 1] != 0x0a)
            fail_msg("%s: ecdsa-with-SHA256 at %zu: not in a SEQUENCE of 10 bytes (%02x %02x)",
                     what, i, i >= 2 ? der[i - 2] : 0, i >= 1 ? der[i - 1] : 0);
        size_t after = i + sizeof ecdsa_sha256_oid;
        if (after + 2 <= len && der[after] == 0x05 && der[after + 1] == 0x00)
            fail_msg("%s: ecdsa-with-SHA256 at %zu: followed by a NULL parameter", what, i);
    }
    if (found != want)
        fail_msg("%s: ecdsa-with-SHA256 found %d times, want %d", what, found, want);
}

/* The certificate's signature is over its TBS, by signer (a parsed certificate's key). */
static void assert_cert_signed(const char *what, const mbedtls_x509_crt *crt,
                               mbedtls_x509_crt *signer)
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(crt->sig_md);
    assert_non_null(md);
    unsigned char hash[MBEDTLS_MD_MAX_SIZE];
    assert_int_equal(mbedtls_md(md, crt->tbs.p, crt->tbs.len, hash), 0);
    int rc = mbedtls_pk_verify_ext(crt->sig_pk, crt->sig_opts, &signer->pk, crt->sig_md, hash,
                                   mbedtls_md_get_size(md), crt->sig.p, crt->sig.len);
    if (rc != 0)
        fail_msg("%s: signature over the TBS does not verify (-0x%04x)", what, (unsigned)-rc);
}

static void parse_crt(mbedtls_x509_crt *crt, const char *pem)
{
    mbedtls_x509_crt_init(crt);
    assert_int_equal(mbedtls_x509_crt_parse(crt, (const unsigned char *)pem, strlen(pem) + 1), 0);
}

static void test_ecdsa_alg_no_null(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    /* The CA, a server certificate (from a public key), a client one (from a CSR), the CSR. */
    const char *dns[] = {"hub.fleet.local"};
    const char *ips[] = {"127.0.0.1"};
    drv_pki_issue_t o = {.cn = "drover-hub",
                         .usage = DRV_PKI_SERVER_AUTH,
                         .dns_names = dns,
                         .n_dns = 1,
                         .ip_addrs = ips,
                         .n_ips = 1,
                         .days = 30};
    char *server = NULL, *csr_pem = NULL;
    assert_int_equal(drv_pki_issue_key(ca_key, ca_cert, node_pub, &o, &server, &err), DRV_OK);
    char *client = issue_client("node-9", 0, 30);
    assert_int_equal(drv_pki_csr_create(node_key, "node-9", &csr_pem, &err), DRV_OK);

    mbedtls_x509_crt ca, srv, cli;
    parse_crt(&ca, ca_cert);
    parse_crt(&srv, server);
    parse_crt(&cli, client);
    assert_ecdsa_alg_bare("CA certificate", ca.raw.p, ca.raw.len, 2);
    assert_ecdsa_alg_bare("server certificate", srv.raw.p, srv.raw.len, 2);
    assert_ecdsa_alg_bare("client certificate", cli.raw.p, cli.raw.len, 2);
    /* The TBS's own identifier (signature field) is the bare one too: it is inside tbs. */
    assert_ecdsa_alg_bare("CA TBS", ca.tbs.p, ca.tbs.len, 1);
    assert_ecdsa_alg_bare("server TBS", srv.tbs.p, srv.tbs.len, 1);
    /* Signed over the corrected TBS: the CA by itself, the leaves by the CA. */
    assert_cert_signed("CA certificate", &ca, &ca);
    assert_cert_signed("server certificate", &srv, &ca);
    assert_cert_signed("client certificate", &cli, &ca);
    /* And the chains verify in mbedTLS, as a TLS peer checks them. */
    uint32_t flags = 0;
    assert_int_equal(
        mbedtls_x509_crt_verify(&srv, &ca, NULL, "hub.fleet.local", &flags, NULL, NULL), 0);
    assert_int_equal(mbedtls_x509_crt_verify(&cli, &ca, NULL, NULL, &flags, NULL, NULL), 0);
    assert_int_equal(drv_pki_cert_verify(server, ca_cert, 0, DRV_PKI_SERVER_AUTH, &err), DRV_OK);
    assert_int_equal(drv_pki_cert_verify(client, ca_cert, 0, DRV_PKI_CLIENT_AUTH, &err), DRV_OK);

    /* The CSR: one identifier, bare; its signature over the request info still verifies. */
    mbedtls_x509_csr csr;
    mbedtls_x509_csr_init(&csr);
    assert_int_equal(
        mbedtls_x509_csr_parse(&csr, (const unsigned char *)csr_pem, strlen(csr_pem) + 1), 0);
    assert_ecdsa_alg_bare("CSR", csr.raw.p, csr.raw.len, 1);
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(csr.sig_md);
    assert_non_null(md);
    unsigned char hash[MBEDTLS_MD_MAX_SIZE];
    assert_int_equal(mbedtls_md(md, csr.cri.p, csr.cri.len, hash), 0);
    assert_int_equal(mbedtls_pk_verify_ext(csr.sig_pk, csr.sig_opts, &csr.pk, csr.sig_md, hash,
                                           mbedtls_md_get_size(md), csr.sig.p, csr.sig.len),
                     0);
    char cn[DRV_PKI_CN_MAX + 1];
    assert_int_equal(drv_pki_csr_parse(csr_pem, cn, NULL, &err), DRV_OK);
    assert_string_equal(cn, "node-9");
    mbedtls_x509_csr_free(&csr);

    /* A CSR in mbedTLS's own encoding (an older agent's, NULL included) is still accepted, and
     * what is issued from it is bare. */
    char *old_csr = raw_csr(node_key, "node-9", 6, 0);
    char *from_old = NULL;
    drv_pki_issue_t oc = {.usage = DRV_PKI_CLIENT_AUTH, .days = 1};
    assert_int_equal(drv_pki_issue_csr(ca_key, ca_cert, old_csr, &oc, &from_old, &err), DRV_OK);
    mbedtls_x509_crt fo;
    parse_crt(&fo, from_old);
    assert_ecdsa_alg_bare("certificate from an old CSR", fo.raw.p, fo.raw.len, 2);
    mbedtls_x509_crt_free(&fo);
    free(from_old);
    free(old_csr);

    mbedtls_x509_crt_free(&ca);
    mbedtls_x509_crt_free(&srv);
    mbedtls_x509_crt_free(&cli);
    free(server);
    free(client);
    free(csr_pem);
}

/* A CA certificate written as earlier releases did (mbedTLS's encoding, NULL parameters), as
 * hubs keep on disk: it still issues, and what it issues is bare and verifies against it. */
static void test_ecdsa_alg_old_ca(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    assert_int_equal(
        mbedtls_pk_parse_key(&pk, (const unsigned char *)ca_key, strlen(ca_key) + 1, NULL, 0), 0);
    mbedtls_x509write_cert w;
    mbedtls_x509write_crt_init(&w);
    mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&w, &pk);
    mbedtls_x509write_crt_set_issuer_key(&w, &pk);
    mbedtls_mpi serial;
    mbedtls_mpi_init(&serial);
    assert_int_equal(mbedtls_mpi_lset(&serial, 7), 0);
    assert_int_equal(mbedtls_x509write_crt_set_serial(&w, &serial), 0);
    mbedtls_mpi_free(&serial);
    assert_int_equal(mbedtls_x509write_crt_set_validity(&w, "20200101000000", "20991231000000"), 0);
    assert_int_equal(mbedtls_x509write_crt_set_subject_name(&w, "CN=Old CA"), 0);
    assert_int_equal(mbedtls_x509write_crt_set_issuer_name(&w, "CN=Old CA"), 0);
    assert_int_equal(mbedtls_x509write_crt_set_basic_constraints(&w, 1, 0), 0);
    assert_int_equal(mbedtls_x509write_crt_set_key_usage(&w, MBEDTLS_X509_KU_KEY_CERT_SIGN), 0);
    unsigned char buf[4096];
    assert_int_equal(mbedtls_x509write_crt_pem(&w, buf, sizeof buf, test_rng, NULL), 0);
    mbedtls_x509write_crt_free(&w);
    mbedtls_pk_free(&pk);
    const char *old_ca = (const char *)buf;
    mbedtls_x509_crt ca;
    parse_crt(&ca, old_ca);
    /* Really the old encoding: SEQUENCE (12) { OID, NULL }. */
    unsigned char with_null[2 + sizeof ecdsa_sha256_oid + 2] = {0x30, 0x0c};
    memcpy(with_null + 2, ecdsa_sha256_oid, sizeof ecdsa_sha256_oid);
    with_null[sizeof with_null - 2] = 0x05;
    with_null[sizeof with_null - 1] = 0x00;
    assert_non_null(memmem(ca.raw.p, ca.raw.len, with_null, sizeof with_null));

    char *leaf = NULL;
    drv_pki_issue_t o = {.cn = "node-3", .usage = DRV_PKI_CLIENT_AUTH, .days = 10};
    assert_int_equal(drv_pki_issue_key(ca_key, old_ca, node_pub, &o, &leaf, &err), DRV_OK);
    assert_int_equal(drv_pki_cert_verify(leaf, old_ca, 0, DRV_PKI_CLIENT_AUTH, &err), DRV_OK);
    mbedtls_x509_crt crt;
    parse_crt(&crt, leaf);
    assert_ecdsa_alg_bare("certificate from an old CA", crt.raw.p, crt.raw.len, 2);
    assert_cert_signed("certificate from an old CA", &crt, &ca);
    mbedtls_x509_crt_free(&crt);
    mbedtls_x509_crt_free(&ca);
    free(leaf);
}

/* The most a certificate can carry (DRV_PKI_SAN_MAX DNS names of 253 characters and as many
 * addresses) is written, fits a PEM pki reads back, and is bare too. */
static void test_ecdsa_alg_largest(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    static char names[DRV_PKI_SAN_MAX][254];
    static char addrs[DRV_PKI_SAN_MAX][40];
    const char *dns[DRV_PKI_SAN_MAX], *ips[DRV_PKI_SAN_MAX];
    for (int i = 0; i < DRV_PKI_SAN_MAX; i++) {
        /* 3 labels of 63 and one of 61 with the dots: 253 characters. */
        memset(names[i], 'a', 253);
        names[i][63] = names[i][127] = names[i][191] = '.';
        names[i][0] = (char)('a' + i % 26);
        names[i][1] = (char)('a' + i / 26);
        names[i][253] = '\0';
        snprintf(addrs[i], sizeof addrs[i], "fd00::%x", i + 1);
        dns[i] = names[i];
        ips[i] = addrs[i];
    }
    drv_pki_issue_t o = {.cn = "drover-hub",
                         .usage = DRV_PKI_SERVER_AUTH,
                         .dns_names = dns,
                         .n_dns = DRV_PKI_SAN_MAX,
                         .ip_addrs = ips,
                         .n_ips = DRV_PKI_SAN_MAX,
                         .days = 30};
    char *cert = NULL;
    if (drv_pki_issue_key(ca_key, ca_cert, node_pub, &o, &cert, &err) != DRV_OK)
        fail_msg("%s", err.msg);
    assert_true(strlen(cert) <= DRV_PKI_PEM_MAX);
    assert_int_equal(drv_pki_cert_verify(cert, ca_cert, 0, DRV_PKI_SERVER_AUTH, &err), DRV_OK);
    mbedtls_x509_crt crt;
    parse_crt(&crt, cert);
    assert_true(crt.raw.len > 8192);
    assert_ecdsa_alg_bare("largest certificate", crt.raw.p, crt.raw.len, 2);
    assert_int_equal(
        drv_pki_cert_check_host(crt.raw.p, crt.raw.len, names[DRV_PKI_SAN_MAX - 1], &err), DRV_OK);
    mbedtls_x509_crt_free(&crt);
    free(cert);
}

static void test_verify_other_ca(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    _cleanup_secret_ char *k2 = NULL;
    char *ca2 = NULL, *ca_same_name = NULL;
    assert_int_equal(drv_pki_key_generate(&k2, &err), DRV_OK);
    assert_int_equal(drv_pki_ca_create(k2, "Other CA", 0, 10, &ca2, &err), DRV_OK);
    /* Same CN as the real CA, other key: the forger's CA. */
    assert_int_equal(drv_pki_ca_create(k2, "Drover CA test", 0, 10, &ca_same_name, &err), DRV_OK);
    char *cert = issue_client("node-2", 0, 10);
    ASSERT_FAILS(DRV_ERR_INTEGRITY,
                 "certificate \"node-2\":", drv_pki_cert_verify(cert, ca2, 0, 0, &err));
    ASSERT_FAILS(DRV_ERR_INTEGRITY,
                 "certificate \"node-2\":", drv_pki_cert_verify(cert, ca_same_name, 0, 0, &err));
    /* A bundle of the old and the new CA (rotation) verifies it. */
    size_t n = strlen(ca2) + strlen(ca_cert) + 1;
    char *bundle = malloc(n);
    snprintf(bundle, n, "%s%s", ca2, ca_cert);
    assert_int_equal(drv_pki_cert_verify(cert, bundle, 0, 0, &err), DRV_OK);
    free(bundle);
    /* A certificate the other CA issued with the same name. */
    drv_pki_issue_t o = {.usage = DRV_PKI_CLIENT_AUTH, .cn = "node-2", .days = 10};
    char *forged = NULL;
    assert_int_equal(drv_pki_issue_key(k2, ca_same_name, node_pub, &o, &forged, &err), DRV_OK);
    ASSERT_FAILS(DRV_ERR_INTEGRITY,
                 "certificate \"node-2\":", drv_pki_cert_verify(forged, ca_cert, 0, 0, &err));
    /* Malformed input. */
    ASSERT_FAILS(DRV_ERR_INVALID, "certificate: not a PEM certificate",
                 drv_pki_cert_verify("garbage", ca_cert, 0, 0, &err));
    ASSERT_FAILS(DRV_ERR_INVALID, "CA certificate: not a PEM certificate",
                 drv_pki_cert_verify(cert, "garbage", 0, 0, &err));
    n = 2 * strlen(cert) + 1;
    char *two = malloc(n);
    snprintf(two, n, "%s%s", cert, cert);
    ASSERT_FAILS(DRV_ERR_INVALID, "certificate: more than one certificate",
                 drv_pki_cert_verify(two, ca_cert, 0, 0, &err));
    free(two);
    free(forged);
    free(cert);
    free(ca2);
    free(ca_same_name);
}

static void test_verify_time(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    int64_t t = now();
    /* Valid for one day, ten days ago. */
    char *old = issue_client("node-3", t - 10 * 86400, 1);
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "certificate \"node-3\": expired at",
                 drv_pki_cert_verify(old, ca_cert, 0, 0, &err));
    /* Within its own validity, but before the CA's (made a few minutes ago). */
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "CA certificate: not valid before",
                 drv_pki_cert_verify(old, ca_cert, t - 10 * 86400 + 3600, 0, &err));
    /* Not yet valid. */
    char *future = issue_client("node-3", t + 10 * 86400, 1);
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "certificate \"node-3\": not valid before",
                 drv_pki_cert_verify(future, ca_cert, 0, 0, &err));
    assert_int_equal(drv_pki_cert_verify(future, ca_cert, t + 10 * 86400 + 60, 0, &err), DRV_OK);
    /* No certificate outlives its CA: 4000 days are cut at the CA's 3650. */
    char *cert = issue_client("node-3", 0, 4000);
    drv_pki_cert_info_t ca_info, leaf_info;
    assert_int_equal(drv_pki_cert_info(ca_cert, &ca_info, &err), DRV_OK);
    assert_int_equal(drv_pki_cert_info(cert, &leaf_info, &err), DRV_OK);
    assert_int_equal(leaf_info.not_after, ca_info.not_after);
    assert_int_equal(drv_pki_cert_verify(cert, ca_cert, t + 3000 * 86400, 0, &err), DRV_OK);
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "certificate \"node-3\": expired at",
                 drv_pki_cert_verify(cert, ca_cert, t + 3700 * 86400, 0, &err));
    /* Nor starts after it. */
    char *csr = NULL, *late = NULL;
    assert_int_equal(drv_pki_csr_create(node_key, "node-3", &csr, &err), DRV_OK);
    drv_pki_issue_t o = {.usage = DRV_PKI_CLIENT_AUTH, .not_before = t + 3651 * 86400, .days = 1};
    ASSERT_FAILS(DRV_ERR_RANGE, "validity: starts after the CA expires",
                 drv_pki_issue_csr(ca_key, ca_cert, csr, &o, &late, &err));
    assert_null(late);
    free(csr);
    drv_pki_cert_info_t info;
    assert_int_equal(drv_pki_cert_info(old, &info, &err), DRV_OK);
    assert_int_equal(info.not_before, t - 10 * 86400);
    assert_int_equal(info.not_after, t - 9 * 86400);
    free(old);
    free(future);
    free(cert);
}

/* ---- signatures ---- */

static void test_sign_verify(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    const char msg[] = "{\"node\":\"n1\",\"generation\":42,\"pods\":[]}";
    char *sig = NULL, *sig2 = NULL;
    assert_int_equal(drv_pki_sign(ca_key, msg, strlen(msg), &sig, &err), DRV_OK);
    char *ca_pub = NULL;
    assert_int_equal(drv_pki_key_public(ca_key, &ca_pub, &err), DRV_OK);
    assert_int_equal(drv_pki_verify(ca_pub, msg, strlen(msg), sig, &err), DRV_OK);
    /* Modified message: every byte, one bit. */
    char m[sizeof msg];
    for (size_t i = 0; i < strlen(msg); i++) {
        memcpy(m, msg, sizeof msg);
        m[i] ^= 0x01;
        ASSERT_FAILS(DRV_ERR_INTEGRITY, "signature does not verify",
                     drv_pki_verify(ca_pub, m, strlen(msg), sig, &err));
    }
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "signature does not verify",
                 drv_pki_verify(ca_pub, msg, strlen(msg) - 1, sig, &err));
    /* Another key. */
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "signature does not verify",
                 drv_pki_verify(node_pub, msg, strlen(msg), sig, &err));
    /* Tampered signature: every bit of the DER (every byte, one bit, when emulated). */
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    assert_int_equal(drv_base64_decode(sig, strlen(sig), &raw, &rawlen), DRV_OK);
    for (size_t i = 0; i < rawlen * 8; i += bit_stride()) {
        raw[i / 8] ^= (unsigned char)(1u << (i % 8));
        char *t = drv_base64_encode(raw, rawlen);
        drv_error_t e2 = DRV_ERROR_INIT;
        if (drv_pki_verify(ca_pub, msg, strlen(msg), t, &e2) != DRV_ERR_INTEGRITY)
            fail_msg("bit %zu flipped: %s", i, e2.msg);
        free(t);
        raw[i / 8] ^= (unsigned char)(1u << (i % 8));
    }
    free(raw);
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "signature: not base64",
                 drv_pki_verify(ca_pub, msg, strlen(msg), "!!!!", &err));
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "signature: missing",
                 drv_pki_verify(ca_pub, msg, strlen(msg), "", &err));
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "signature: missing",
                 drv_pki_verify(ca_pub, msg, strlen(msg), NULL, &err));
    ASSERT_FAILS(DRV_ERR_INVALID, "verification key: not a public key PEM",
                 drv_pki_verify("nope", msg, strlen(msg), sig, &err));
    /* Randomised ECDSA: two signatures differ, both verify. Empty messages are fine. */
    assert_int_equal(drv_pki_sign(ca_key, msg, strlen(msg), &sig2, &err), DRV_OK);
    assert_int_equal(drv_pki_verify(ca_pub, msg, strlen(msg), sig2, &err), DRV_OK);
    free(sig2);
    sig2 = NULL;
    assert_int_equal(drv_pki_sign(ca_key, NULL, 0, &sig2, &err), DRV_OK);
    assert_int_equal(drv_pki_verify(ca_pub, "", 0, sig2, &err), DRV_OK);
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "does not verify", drv_pki_verify(ca_pub, "x", 1, sig2, &err));
    free(sig2);
    free(sig);
    free(ca_pub);
}

/* ---- sealed to a node key ---- */

static void test_seal_round_trip(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    size_t sizes[] = {0, 1, 15, 16, 17, 1000, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *data = malloc(n + 1);
        for (size_t j = 0; j < n; j++)
            data[j] = (unsigned char)(j * 7 + i);
        char *blob = NULL;
        assert_int_equal(drv_pki_seal(node_pub, "secret default/db", data, n, &blob, &err), DRV_OK);
        unsigned char *raw = NULL;
        size_t rawlen = 0;
        assert_int_equal(drv_base64_decode(blob, strlen(blob), &raw, &rawlen), DRV_OK);
        assert_int_equal(rawlen, n + DRV_PKI_SEAL_OVERHEAD);
        assert_int_equal(raw[0], 1);
        assert_int_equal(raw[1], 4); /* uncompressed point */
        if (n >= 16)
            assert_null(memmem(raw, rawlen, data, 16)); /* not in clear */
        free(raw);
        unsigned char *out = NULL;
        size_t outlen = 99;
        assert_int_equal(drv_pki_open(node_key, "secret default/db", blob, &out, &outlen, &err),
                         DRV_OK);
        assert_int_equal(outlen, n);
        if (n > 0)
            assert_memory_equal(out, data, n);
        assert_int_equal(out[n], 0);
        drv_pki_wipe_free(out, outlen);
        free(blob);
        free(data);
    }
    /* Sealed to a node by its certificate. */
    char *cert = issue_client("node-5", 0, 1), *pub = NULL, *blob = NULL;
    assert_int_equal(drv_pki_cert_pubkey(cert, &pub, &err), DRV_OK);
    assert_int_equal(drv_pki_seal(pub, NULL, "s3cret", 6, &blob, &err), DRV_OK);
    unsigned char *out = NULL;
    size_t outlen = 0;
    assert_int_equal(drv_pki_open(node_key, NULL, blob, &out, &outlen, &err), DRV_OK);
    assert_string_equal((char *)out, "s3cret");
    drv_pki_wipe_free(out, outlen);
    /* The same plaintext twice: different blobs (fresh ephemeral key and nonce). */
    char *blob2 = NULL;
    assert_int_equal(drv_pki_seal(pub, NULL, "s3cret", 6, &blob2, &err), DRV_OK);
    assert_string_not_equal(blob, blob2);
    free(blob2);
    blob2 = NULL;
    free(blob);
    free(pub);
    free(cert);
    ASSERT_FAILS(DRV_ERR_INVALID, "seal: recipient key: not a public key PEM",
                 drv_pki_seal(node_key, NULL, "x", 1, &blob2, &err));
    ASSERT_FAILS(DRV_ERR_TOOBIG, "seal: 8388609 bytes",
                 drv_pki_seal(node_pub, NULL, "x", DRV_PKI_DATA_MAX + 1, &blob2, &err));
    assert_null(blob2);
}

static void test_seal_tampered(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    const char secret[] = "password=hunter2";
    char *blob = NULL;
    assert_int_equal(drv_pki_seal(node_pub, "ctx", secret, strlen(secret), &blob, &err), DRV_OK);
    unsigned char *raw = NULL, *out = NULL;
    size_t rawlen = 0, outlen = 0;
    assert_int_equal(drv_base64_decode(blob, strlen(blob), &raw, &rawlen), DRV_OK);
    /* Every bit of the blob (every byte, one bit, when emulated). */
    for (size_t i = 0; i < rawlen * 8; i += bit_stride()) {
        raw[i / 8] ^= (unsigned char)(1u << (i % 8));
        char *t = drv_base64_encode(raw, rawlen);
        drv_error_t e2 = DRV_ERROR_INIT;
        if (drv_pki_open(node_key, "ctx", t, &out, &outlen, &e2) != DRV_ERR_INTEGRITY)
            fail_msg("bit %zu flipped: %s", i, e2.msg);
        free(t);
        raw[i / 8] ^= (unsigned char)(1u << (i % 8));
    }
    /* Every truncation, and one byte too many. */
    for (size_t n = 0; n < rawlen; n++) {
        char *t = drv_base64_encode(raw, n);
        drv_error_t e2 = DRV_ERROR_INIT;
        if (drv_pki_open(node_key, "ctx", t, &out, &outlen, &e2) != DRV_ERR_INTEGRITY)
            fail_msg("truncated to %zu: %s", n, e2.msg);
        free(t);
    }
    unsigned char *longer = malloc(rawlen + 1);
    memcpy(longer, raw, rawlen);
    longer[rawlen] = 0;
    char *t = drv_base64_encode(longer, rawlen + 1);
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "does not open",
                 drv_pki_open(node_key, "ctx", t, &out, &outlen, &err));
    free(t);
    free(longer);
    free(raw);
    /* Other key, other context, not base64, a point not on the curve. */
    _cleanup_secret_ char *k2 = NULL;
    assert_int_equal(drv_pki_key_generate(&k2, &err), DRV_OK);
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "does not open",
                 drv_pki_open(k2, "ctx", blob, &out, &outlen, &err));
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "does not open",
                 drv_pki_open(node_key, "ctx2", blob, &out, &outlen, &err));
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "does not open",
                 drv_pki_open(node_key, NULL, blob, &out, &outlen, &err));
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "not base64",
                 drv_pki_open(node_key, "ctx", "#notbase64", &out, &outlen, &err));
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "not base64",
                 drv_pki_open(node_key, "ctx", "", &out, &outlen, &err));
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "not base64",
                 drv_pki_open(node_key, "ctx", NULL, &out, &outlen, &err));
    ASSERT_FAILS(DRV_ERR_INVALID, "open: private key",
                 drv_pki_open(node_pub, "ctx", blob, &out, &outlen, &err));
    assert_null(out);
    /* Still opens with the right key and context after all that. */
    assert_int_equal(drv_pki_open(node_key, "ctx", blob, &out, &outlen, &err), DRV_OK);
    drv_pki_wipe_free(out, outlen);
    free(blob);
}

/* ---- at rest ---- */

/* "k1:" + base64(raw) must not open with k1 and aad. */
static void aead_must_fail(const unsigned char *k1, const char *aad, const unsigned char *raw,
                           size_t len)
{
    char *b = drv_base64_encode(raw, len);
    size_t tl = strlen(b) + 4;
    char *t = malloc(tl);
    snprintf(t, tl, "k1:%s", b);
    drv_error_t e2 = DRV_ERROR_INIT;
    unsigned char *out = NULL;
    size_t outlen = 0;
    if (drv_pki_aead_open("k1", k1, aad, strlen(aad), t, &out, &outlen, &e2) != DRV_ERR_INTEGRITY)
        fail_msg("%s: %s", t, e2.msg);
    free(t);
    free(b);
}

static void test_aead(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    unsigned char k1[DRV_PKI_AEAD_KEY_LEN], k2[DRV_PKI_AEAD_KEY_LEN];
    assert_int_equal(drv_pki_aead_key_generate(k1, &err), DRV_OK);
    assert_int_equal(drv_pki_aead_key_generate(k2, &err), DRV_OK);
    assert_memory_not_equal(k1, k2, sizeof k1);
    const char aad[] = "default/db-password";
    const char data[] = "hunter2hunter2hunter2";
    char *ct = NULL, *ct2 = NULL;
    assert_int_equal(drv_pki_aead_seal("k1", k1, aad, strlen(aad), data, strlen(data), &ct, &err),
                     DRV_OK);
    assert_int_equal(strncmp(ct, "k1:", 3), 0);
    assert_null(strstr(ct, "hunter2"));
    char id[DRV_PKI_KEY_ID_MAX];
    assert_int_equal(drv_pki_aead_key_id(ct, id, &err), DRV_OK);
    assert_string_equal(id, "k1");
    unsigned char *out = NULL;
    size_t outlen = 0;
    assert_int_equal(drv_pki_aead_open("k1", k1, aad, strlen(aad), ct, &out, &outlen, &err),
                     DRV_OK);
    assert_int_equal(outlen, strlen(data));
    assert_string_equal((char *)out, data);
    drv_pki_wipe_free(out, outlen);
    out = NULL;
    /* Random nonce: the same value twice gives two ciphertexts. */
    assert_int_equal(drv_pki_aead_seal("k1", k1, aad, strlen(aad), data, strlen(data), &ct2, &err),
                     DRV_OK);
    assert_string_not_equal(ct, ct2);
    free(ct2);
    ct2 = NULL;
    /* Moved to another object; opened with the wrong key; the wrong key id. */
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "does not decrypt",
                 drv_pki_aead_open("k1", k1, "default/other", 13, ct, &out, &outlen, &err));
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "does not decrypt",
                 drv_pki_aead_open("k1", k1, NULL, 0, ct, &out, &outlen, &err));
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "does not decrypt",
                 drv_pki_aead_open("k1", k2, aad, strlen(aad), ct, &out, &outlen, &err));
    ASSERT_FAILS(DRV_ERR_NOTFOUND, "encrypted with key \"k1\", not \"k2\"",
                 drv_pki_aead_open("k2", k2, aad, strlen(aad), ct, &out, &outlen, &err));
    /* Relabelled "k2:" (same key bytes under both ids): the id is authenticated. */
    size_t n = strlen(ct);
    char *relabel = strdup(ct);
    relabel[1] = '2';
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "does not decrypt",
                 drv_pki_aead_open("k2", k1, aad, strlen(aad), relabel, &out, &outlen, &err));
    free(relabel);
    /* Every bit of the payload, every truncation. */
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    assert_int_equal(drv_base64_decode(ct + 3, n - 3, &raw, &rawlen), DRV_OK);
    for (size_t i = 0; i < rawlen * 8; i++) {
        raw[i / 8] ^= (unsigned char)(1u << (i % 8));
        aead_must_fail(k1, aad, raw, rawlen);
        raw[i / 8] ^= (unsigned char)(1u << (i % 8));
    }
    for (size_t cut = 0; cut < rawlen; cut++)
        aead_must_fail(k1, aad, raw, cut);
    free(raw);
    /* Malformed text and ids. */
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "no \"<key id>:\" prefix",
                 drv_pki_aead_open("k1", k1, NULL, 0, "plaintext", &out, &outlen, &err));
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "key id: only letters",
                 drv_pki_aead_open("k1", k1, NULL, 0, "k 1:AAAA", &out, &outlen, &err));
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "not base64",
                 drv_pki_aead_open("k1", k1, NULL, 0, "k1:", &out, &outlen, &err));
    ASSERT_FAILS(DRV_ERR_INTEGRITY, "no \"<key id>:\" prefix",
                 drv_pki_aead_key_id("nothing", id, &err));
    ASSERT_FAILS(DRV_ERR_INVALID, "key id: only letters",
                 drv_pki_aead_seal("k:1", k1, NULL, 0, "x", 1, &ct2, &err));
    ASSERT_FAILS(DRV_ERR_INVALID, "key id: must be 1 to 16",
                 drv_pki_aead_seal("", k1, NULL, 0, "x", 1, &ct2, &err));
    ASSERT_FAILS(DRV_ERR_INVALID, "key id: must be 1 to 16",
                 drv_pki_aead_seal("k12345678901234567", k1, NULL, 0, "x", 1, &ct2, &err));
    assert_null(ct2);
    assert_null(out);
    /* Empty values round-trip. */
    assert_int_equal(drv_pki_aead_seal("k2", k2, aad, strlen(aad), "", 0, &ct2, &err), DRV_OK);
    assert_int_equal(drv_pki_aead_open("k2", k2, aad, strlen(aad), ct2, &out, &outlen, &err),
                     DRV_OK);
    assert_int_equal(outlen, 0);
    drv_pki_wipe_free(out, outlen);
    free(ct2);
    free(ct);
}

/* ---- random ---- */

static void test_random_forks(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    unsigned char a[32], b[32], c[32];
    assert_int_equal(drv_pki_random(a, sizeof a, &err), DRV_OK);
    assert_int_equal(drv_pki_random(b, sizeof b, &err), DRV_OK);
    assert_memory_not_equal(a, b, sizeof a);
    /* A forked child does not repeat its parent's stream. */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        unsigned char x[32];
        drv_error_t e2 = DRV_ERROR_INIT;
        if (drv_pki_random(x, sizeof x, &e2) != DRV_OK)
            _exit(1);
        _exit(write(fds[1], x, sizeof x) == (ssize_t)sizeof x ? 0 : 1);
    }
    close(fds[1]);
    assert_int_equal(drv_pki_random(c, sizeof c, &err), DRV_OK);
    unsigned char child[32];
    assert_int_equal(read(fds[0], child, sizeof child), (ssize_t)sizeof child);
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_memory_not_equal(child, c, sizeof c);
    /* Large requests are split under the DRBG's per-call limit. */
    unsigned char *big = malloc(5000);
    assert_int_equal(drv_pki_random(big, 5000, &err), DRV_OK);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_keys_other_curves_refused),
        cmocka_unit_test(test_ca),
        cmocka_unit_test(test_csr_round_trip),
        cmocka_unit_test(test_csr_tampered),
        cmocka_unit_test(test_csr_other_keys),
        cmocka_unit_test(test_csr_bad_names),
        cmocka_unit_test(test_issue_client),
        cmocka_unit_test(test_issue_server_sans),
        cmocka_unit_test(test_ecdsa_alg_no_null),
        cmocka_unit_test(test_ecdsa_alg_old_ca),
        cmocka_unit_test(test_ecdsa_alg_largest),
        cmocka_unit_test(test_verify_other_ca),
        cmocka_unit_test(test_verify_time),
        cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_seal_round_trip),
        cmocka_unit_test(test_seal_tampered),
        cmocka_unit_test(test_aead),
        cmocka_unit_test(test_random_forks),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
