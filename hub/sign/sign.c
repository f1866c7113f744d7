/* ES256 with OpenSSL's libcrypto (see sign.h). */
#include "sign/sign.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "drover/base64.h"
#include "drover/cleanup.h"

#define SIG_DER_MAX 80 /* a P-256 ECDSA-Sig-Value is at most 72 bytes */

struct drv_hsign {
    EVP_PKEY *key;
};

drv_err_t drv_hsign_new(const char *key_pem, drv_hsign_t **out, drv_error_t *err)
{
    if (!key_pem || !out)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "signing key: none given");
    BIO *bio = BIO_new_mem_buf(key_pem, -1);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!key)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "signing key: not a PEM private key OpenSSL can read");
    char group[64] = "";
    if (!EVP_PKEY_is_a(key, "EC") ||
        !EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                        NULL) ||
        (strcmp(group, "prime256v1") && strcmp(group, "P-256"))) {
        EVP_PKEY_free(key);
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "signing key: an EC P-256 key is needed for ES256, not %s%s%s",
                             EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "?",
                             group[0] ? " " : "", group);
    }
    drv_hsign_t *s = calloc(1, sizeof(*s));
    if (!s) {
        EVP_PKEY_free(key);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "signing key");
    }
    s->key = key;
    *out = s;
    return DRV_OK;
}

void drv_hsign_free(drv_hsign_t *s)
{
    if (!s)
        return;
    EVP_PKEY_free(s->key);
    free(s);
}

drv_err_t drv_hsign_sign(drv_hsign_t *s, const void *msg, size_t len, char **sig_b64,
                         drv_error_t *err)
{
    if (!s || !sig_b64 || (!msg && len))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "sign: bad arguments");
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char sig[SIG_DER_MAX];
    size_t slen = sizeof(sig);
    bool ok = c && EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, s->key) == 1 &&
              EVP_DigestSign(c, sig, &slen, len ? msg : (const void *)"", len) == 1;
    EVP_MD_CTX_free(c);
    if (!ok)
        return drv_error_set(err, DRV_ERR_IO, 0, "sign: OpenSSL's ECDSA failed");
    char *b = drv_base64_encode(sig, slen);
    if (!b)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "signature");
    *sig_b64 = b;
    return DRV_OK;
}
