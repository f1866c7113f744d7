/* hub/sign: ES256 with OpenSSL that the agents' mbedTLS verification accepts, keys that are
 * not P-256 refused by name, a tampered message refused, and signing from two threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "drover/pki.h"
#include "drover/protocol.h"
#include "sign/sign.h"

/* An EC P-384 key (openssl ecparam -name secp384r1 -genkey): not ES256's curve. */
static const char P384_PEM[] = "-----BEGIN PRIVATE KEY-----\n"
                               "MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDCWwlpZdDhbZMqqFCVJ\n"
                               "0zhlylEKKR+UIuBTByt1eNQhp3sow2qCefCKgSaBzLfjU/ehZANiAATzLCYeL4R+\n"
                               "R1eZzpNgv8yUiKbSdvZKfHdIhL8vecsxZM8WDBSjgQvi4PVCgsvwzEbUxkpAlVGV\n"
                               "dlLoOlM5wXwLUMRtJlu/HqgmO1RJvrG0OfIJzXMMRd0+RT/GD+6Y3Ao=\n"
                               "-----END PRIVATE KEY-----\n";

static void test_signs_what_pki_verifies(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    char *key = NULL, *pub = NULL, *sig = NULL;
    assert_int_equal(drv_pki_key_generate(&key, &err), DRV_OK);
    assert_int_equal(drv_pki_key_public(key, &pub, &err), DRV_OK);
    drv_hsign_t *s = NULL;
    assert_int_equal(drv_hsign_new(key, &s, &err), DRV_OK);
    const char msg[] = "{\"apiVersion\":\"drover.dev/v1\",\"kind\":\"NodeDesiredState\"}";
    assert_int_equal(drv_hsign_sign(s, msg, strlen(msg), &sig, &err), DRV_OK);
    assert_int_equal(drv_pki_verify(pub, msg, strlen(msg), sig, &err), DRV_OK);
    /* one byte changed: refused */
    char bad[sizeof(msg)];
    memcpy(bad, msg, sizeof(msg));
    bad[5] ^= 1;
    assert_int_equal(drv_pki_verify(pub, bad, strlen(bad), sig, &err), DRV_ERR_INTEGRITY);
    /* the envelope the agents open */
    char *env = NULL, *doc = NULL;
    size_t envlen = 0, doclen = 0;
    assert_int_equal(drv_proto_desired_envelope(msg, strlen(msg), sig, &env, &envlen, &err),
                     DRV_OK);
    assert_int_equal(drv_proto_desired_open(env, envlen, pub, &doc, &doclen, &err), DRV_OK);
    assert_int_equal(doclen, strlen(msg));
    assert_memory_equal(doc, msg, doclen);
    free(env);
    free(doc);
    free(sig);
    drv_hsign_free(s);
    drv_pki_secret_free(key);
    free(pub);
}

static void test_refuses_other_keys(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    drv_hsign_t *s = NULL;
    assert_int_equal(drv_hsign_new(P384_PEM, &s, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "P-256"));
    assert_non_null(strstr(drv_error_msg(&err), "secp384r1"));
    drv_error_clear(&err);
    assert_int_equal(
        drv_hsign_new("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", &s, &err),
        DRV_ERR_INVALID);
    assert_int_equal(drv_hsign_new(NULL, &s, &err), DRV_ERR_INVALID);
    assert_null(s);
}

struct job {
    drv_hsign_t *s;
    const char *pub;
    int ok;
};

static void *sign_many(void *p)
{
    struct job *j = p;
    for (int i = 0; i < 200; i++) {
        char msg[64], *sig = NULL;
        drv_error_t err = DRV_ERROR_INIT;
        snprintf(msg, sizeof(msg), "document %d", i);
        if (drv_hsign_sign(j->s, msg, strlen(msg), &sig, &err) == DRV_OK &&
            drv_pki_verify(j->pub, msg, strlen(msg), sig, &err) == DRV_OK)
            j->ok++;
        free(sig);
    }
    return NULL;
}

/* The bridge's signer thread and the loop (bdesired_build) share one signer. */
static void test_two_threads(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    char *key = NULL, *pub = NULL;
    assert_int_equal(drv_pki_key_generate(&key, &err), DRV_OK);
    assert_int_equal(drv_pki_key_public(key, &pub, &err), DRV_OK);
    drv_hsign_t *s = NULL;
    assert_int_equal(drv_hsign_new(key, &s, &err), DRV_OK);
    struct job a = {s, pub, 0}, b = {s, pub, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, sign_many, &a), 0);
    sign_many(&b);
    pthread_join(t, NULL);
    assert_int_equal(a.ok, 200);
    assert_int_equal(b.ok, 200);
    drv_hsign_free(s);
    drv_pki_secret_free(key);
    free(pub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signs_what_pki_verifies),
        cmocka_unit_test(test_refuses_other_keys),
        cmocka_unit_test(test_two_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
