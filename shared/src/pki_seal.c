/* pki: authenticated encryption. Sealing to a node's public key (ephemeral-static ECDH on
 * P-256, HKDF-SHA256, AES-256-GCM) so that only that node can read what the hub sends it, and
 * AES-256-GCM at rest with a key id so the hub's key can be rotated. Derived keys and
 * plaintext copies are wiped. */
#include "drover/pki.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ecdh.h>
#include <mbedtls/ecp.h>
#include <mbedtls/gcm.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>

#include "drover/base64.h"
#include "pki_int.h"

#define SEAL_VERSION 0x01
#define POINT_LEN 65 /* uncompressed P-256 point */
#define NONCE_LEN 12
#define TAG_LEN 16
#define CONTEXT_MAX 4096
#define AAD_MAX (64 * 1024)
#define ALLOC_FAILED 1 /* mbedTLS's codes are negative */
static const char seal_info[] = "drover-seal-v1";

/* AES-256-GCM over one buffer; out may equal in. */
static int gcm_seal(const unsigned char key[32], const unsigned char *nonce,
                    const unsigned char *aad, size_t aad_len, const unsigned char *in, size_t len,
                    unsigned char *out, unsigned char tag[TAG_LEN])
{
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    int rc = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 256);
    if (rc == 0)
        rc = mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, len, nonce, NONCE_LEN, aad,
                                       aad_len, in, out, TAG_LEN, tag);
    mbedtls_gcm_free(&gcm);
    return rc;
}

static int gcm_open(const unsigned char key[32], const unsigned char *nonce,
                    const unsigned char *aad, size_t aad_len, const unsigned char *in, size_t len,
                    const unsigned char tag[TAG_LEN], unsigned char *out)
{
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    int rc = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 256);
    if (rc == 0)
        rc = mbedtls_gcm_auth_decrypt(&gcm, len, nonce, NONCE_LEN, aad, aad_len, tag, TAG_LEN, in,
                                      out);
    mbedtls_gcm_free(&gcm);
    return rc;
}

/* Decrypts into a new NUL-terminated buffer; wipes it on failure. */
static int gcm_open_alloc(const unsigned char key[32], const unsigned char *nonce,
                          const unsigned char *aad, size_t aad_len, const unsigned char *in,
                          size_t len, const unsigned char *tag, unsigned char **out)
{
    unsigned char *p = malloc(len + 1);
    if (p == NULL)
        return ALLOC_FAILED;
    int rc = gcm_open(key, nonce, aad, aad_len, in, len, tag, p);
    if (rc != 0) {
        drv_pki_wipe_free(p, len + 1);
        return rc;
    }
    p[len] = '\0';
    *out = p;
    return 0;
}

static drv_err_t check_data(const void *data, size_t len, const char *what, drv_error_t *err)
{
    if (data == NULL && len > 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: data required", what);
    if (len > DRV_PKI_DATA_MAX)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: %zu bytes, more than %d", what, len,
                             DRV_PKI_DATA_MAX);
    return DRV_OK;
}

/* ---- Sealed to a public key ---- */

/* key = HKDF-SHA256(salt = eph | recipient, ikm = x(ECDH), info). */
static int seal_key(const mbedtls_ecp_group *grp, const mbedtls_mpi *z,
                    const unsigned char eph[POINT_LEN], const mbedtls_ecp_point *recipient,
                    unsigned char key[32])
{
    unsigned char salt[2 * POINT_LEN], zb[32];
    size_t olen = 0;
    memcpy(salt, eph, POINT_LEN);
    int rc = mbedtls_ecp_point_write_binary(grp, recipient, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen,
                                            salt + POINT_LEN, POINT_LEN);
    if (rc == 0 && olen != POINT_LEN)
        rc = MBEDTLS_ERR_ECP_BAD_INPUT_DATA;
    if (rc == 0)
        rc = mbedtls_mpi_write_binary(z, zb, sizeof zb);
    if (rc == 0)
        rc = mbedtls_hkdf(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), salt, sizeof salt, zb,
                          sizeof zb, (const unsigned char *)seal_info, sizeof(seal_info) - 1, key,
                          32);
    mbedtls_platform_zeroize(zb, sizeof zb);
    return rc;
}

/* AAD of a sealed blob: the version byte, then the context. */
static unsigned char *seal_aad(const char *context, size_t *len)
{
    size_t n = strlen(context);
    unsigned char *a = malloc(n + 1);
    if (a == NULL)
        return NULL;
    a[0] = SEAL_VERSION;
    memcpy(a + 1, context, n);
    *len = n + 1;
    return a;
}

static drv_err_t check_context(const char **context, drv_error_t *err)
{
    if (*context == NULL)
        *context = "";
    if (strnlen(*context, CONTEXT_MAX + 1) > CONTEXT_MAX)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "seal context: longer than %d bytes",
                             CONTEXT_MAX);
    return DRV_OK;
}

drv_err_t drv_pki_seal(const char *pub_pem, const char *context, const void *data, size_t len,
                       char **blob_b64, drv_error_t *err)
{
    drv_err_t e = check_data(data, len, "seal", err);
    if (e == DRV_OK)
        e = check_context(&context, err);
    if (e != DRV_OK)
        return e;
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    mbedtls_ecp_group grp;
    mbedtls_ecp_group_init(&grp);
    mbedtls_mpi d, z;
    mbedtls_mpi_init(&d);
    mbedtls_mpi_init(&z);
    mbedtls_ecp_point q;
    mbedtls_ecp_point_init(&q);
    unsigned char key[32];
    unsigned char *blob = NULL, *aad = NULL;
    size_t aad_len = 0, bloblen = DRV_PKI_SEAL_OVERHEAD + len;
    e = drv_pki_int_load_pub(pub_pem, &pk, "seal: recipient key", err);
    if (e != DRV_OK)
        goto out;
    blob = malloc(bloblen);
    aad = seal_aad(context, &aad_len);
    if (blob == NULL || aad == NULL) {
        e = drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "seal");
        goto out;
    }
    const mbedtls_ecp_keypair *rcpt = mbedtls_pk_ec(pk);
    unsigned char *eph = blob + 1, *nonce = eph + POINT_LEN, *ct = nonce + NONCE_LEN;
    size_t olen = 0;
    blob[0] = SEAL_VERSION;
    int rc = mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1);
    if (rc == 0)
        rc = mbedtls_ecp_gen_keypair(&grp, &d, &q, drv_pki_int_rng, NULL);
    if (rc == 0)
        rc = mbedtls_ecp_point_write_binary(&grp, &q, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, eph,
                                            POINT_LEN);
    if (rc == 0)
        rc = mbedtls_ecdh_compute_shared(&grp, &z, &rcpt->Q, &d, drv_pki_int_rng, NULL);
    if (rc == 0)
        rc = seal_key(&grp, &z, eph, &rcpt->Q, key);
    if (rc == 0)
        rc = drv_pki_int_rng(NULL, nonce, NONCE_LEN);
    if (rc == 0)
        rc = gcm_seal(key, nonce, aad, aad_len, data, len, ct, ct + len);
    if (rc != 0) {
        e = drv_pki_int_fail(err, DRV_ERR_IO, rc, "seal");
        goto out;
    }
    char *s = drv_base64_encode(blob, bloblen);
    if (s == NULL) {
        e = drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "seal");
        goto out;
    }
    *blob_b64 = s;
out:
    mbedtls_platform_zeroize(key, sizeof key);
    free(aad);
    free(blob);
    mbedtls_ecp_point_free(&q);
    mbedtls_mpi_free(&z);
    mbedtls_mpi_free(&d);
    mbedtls_ecp_group_free(&grp);
    mbedtls_pk_free(&pk);
    return e;
}

drv_err_t drv_pki_open(const char *key_pem, const char *context, const char *blob_b64,
                       unsigned char **out, size_t *outlen, drv_error_t *err)
{
    drv_err_t e = check_context(&context, err);
    if (e != DRV_OK)
        return e;
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    mbedtls_mpi z;
    mbedtls_mpi_init(&z);
    mbedtls_ecp_point q;
    mbedtls_ecp_point_init(&q);
    unsigned char key[32];
    unsigned char *blob = NULL, *aad = NULL;
    size_t bloblen = 0, aad_len = 0;
    e = drv_pki_int_load_key(key_pem, &pk, "open: private key", err);
    if (e != DRV_OK)
        goto out;
    size_t max = drv_base64_encoded_len(DRV_PKI_DATA_MAX + DRV_PKI_SEAL_OVERHEAD);
    size_t n = blob_b64 != NULL ? strnlen(blob_b64, max + 1) : 0;
    if (n > max) {
        e = drv_error_set(err, DRV_ERR_INTEGRITY, 0, "sealed data: longer than %zu characters",
                          max);
        goto out;
    }
    if (n == 0 || drv_base64_decode(blob_b64, n, &blob, &bloblen) != DRV_OK) {
        e = drv_error_set(err, DRV_ERR_INTEGRITY, 0, "sealed data: not base64");
        goto out;
    }
    if (bloblen < DRV_PKI_SEAL_OVERHEAD) {
        e = drv_error_set(err, DRV_ERR_INTEGRITY, 0, "sealed data: truncated (%zu bytes)", bloblen);
        goto out;
    }
    if (blob[0] != SEAL_VERSION) {
        e = drv_error_set(err, DRV_ERR_INTEGRITY, 0, "sealed data: unknown version %u", blob[0]);
        goto out;
    }
    mbedtls_ecp_keypair *kp = mbedtls_pk_ec(pk);
    const unsigned char *eph = blob + 1, *nonce = eph + POINT_LEN, *ct = nonce + NONCE_LEN;
    size_t ctlen = bloblen - DRV_PKI_SEAL_OVERHEAD;
    int rc = mbedtls_ecp_point_read_binary(&kp->grp, &q, eph, POINT_LEN);
    if (rc == 0)
        rc = mbedtls_ecp_check_pubkey(&kp->grp, &q);
    if (rc != 0) {
        e = drv_error_set(err, DRV_ERR_INTEGRITY, 0,
                          "sealed data: ephemeral key is not a point on P-256");
        goto out;
    }
    /* compute_shared wants a non-const group (it may cache); kp belongs to pk, which we own. */
    rc = mbedtls_ecdh_compute_shared((mbedtls_ecp_group *)&kp->grp, &z, &q, &kp->d, drv_pki_int_rng,
                                     NULL);
    if (rc == 0)
        rc = seal_key(&kp->grp, &z, eph, &kp->Q, key);
    if (rc != 0) {
        e = drv_pki_int_fail(err, DRV_ERR_INTEGRITY, rc, "sealed data: key agreement");
        goto out;
    }
    aad = seal_aad(context, &aad_len);
    if (aad == NULL) {
        e = drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "open");
        goto out;
    }
    unsigned char *plain = NULL;
    rc = gcm_open_alloc(key, nonce, aad, aad_len, ct, ctlen, ct + ctlen, &plain);
    if (rc == ALLOC_FAILED) {
        e = drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "open");
        goto out;
    }
    if (rc != 0) {
        e = drv_error_set(err, DRV_ERR_INTEGRITY, 0,
                          "sealed data: does not open (tampered, or sealed to another key or "
                          "context)");
        goto out;
    }
    *out = plain;
    *outlen = ctlen;
out:
    mbedtls_platform_zeroize(key, sizeof key);
    free(aad);
    free(blob);
    mbedtls_ecp_point_free(&q);
    mbedtls_mpi_free(&z);
    mbedtls_pk_free(&pk);
    return e;
}

/* ---- At rest ---- */

static drv_err_t check_key_id(const char *id, size_t n, drv_error_t *err)
{
    if (n == 0 || n >= DRV_PKI_KEY_ID_MAX)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "key id: must be 1 to %d characters",
                             DRV_PKI_KEY_ID_MAX - 1);
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "key id: only letters, digits, '-' and '_' are allowed");
    }
    return DRV_OK;
}

/* "<id>" NUL "<aad>": the id is authenticated too. */
static unsigned char *aead_aad(const char *id, const void *aad, size_t aad_len, size_t *len)
{
    size_t n = strlen(id);
    unsigned char *a = malloc(n + 1 + aad_len);
    if (a == NULL)
        return NULL;
    memcpy(a, id, n + 1);
    if (aad_len > 0)
        memcpy(a + n + 1, aad, aad_len);
    *len = n + 1 + aad_len;
    return a;
}

drv_err_t drv_pki_aead_key_generate(unsigned char key[DRV_PKI_AEAD_KEY_LEN], drv_error_t *err)
{
    return drv_pki_random(key, DRV_PKI_AEAD_KEY_LEN, err);
}

static drv_err_t aead_args(const char *key_id, const unsigned char *key, const void *aad,
                           size_t aad_len, drv_error_t *err)
{
    if (key_id == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "key id: required");
    drv_err_t e = check_key_id(key_id, strnlen(key_id, DRV_PKI_KEY_ID_MAX), err);
    if (e != DRV_OK)
        return e;
    if (key == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "key %s: required", key_id);
    if (aad == NULL && aad_len > 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "associated data: required");
    if (aad_len > AAD_MAX)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "associated data: more than %d bytes",
                             AAD_MAX);
    return DRV_OK;
}

drv_err_t drv_pki_aead_seal(const char *key_id, const unsigned char key[DRV_PKI_AEAD_KEY_LEN],
                            const void *aad, size_t aad_len, const void *data, size_t len,
                            char **out, drv_error_t *err)
{
    drv_err_t e = aead_args(key_id, key, aad, aad_len, err);
    if (e == DRV_OK)
        e = check_data(data, len, "encrypt", err);
    if (e != DRV_OK)
        return e;
    size_t alen = 0, blen = NONCE_LEN + len + TAG_LEN, idlen = strlen(key_id);
    unsigned char *a = aead_aad(key_id, aad, aad_len, &alen);
    unsigned char *b = malloc(blen);
    char *b64 = NULL, *s = NULL;
    if (a == NULL || b == NULL) {
        e = drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "encrypt");
        goto out;
    }
    int rc = drv_pki_int_rng(NULL, b, NONCE_LEN);
    if (rc == 0)
        rc = gcm_seal(key, b, a, alen, data, len, b + NONCE_LEN, b + NONCE_LEN + len);
    if (rc != 0) {
        e = drv_pki_int_fail(err, DRV_ERR_IO, rc, "encrypt");
        goto out;
    }
    b64 = drv_base64_encode(b, blen);
    s = b64 != NULL ? malloc(idlen + 1 + strlen(b64) + 1) : NULL;
    if (s == NULL) {
        e = drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "encrypt");
        goto out;
    }
    memcpy(s, key_id, idlen);
    s[idlen] = ':';
    memcpy(s + idlen + 1, b64, strlen(b64) + 1);
    *out = s;
out:
    free(b64);
    free(b);
    free(a);
    return e;
}

/* Length of the key id of text (up to ':'), checked. */
static drv_err_t text_key_id(const char *text, size_t *idlen, drv_error_t *err)
{
    if (text == NULL || text[0] == '\0')
        return drv_error_set(err, DRV_ERR_INTEGRITY, 0, "encrypted data: empty");
    const char *colon = memchr(text, ':', strnlen(text, DRV_PKI_KEY_ID_MAX + 1));
    if (colon == NULL)
        return drv_error_set(err, DRV_ERR_INTEGRITY, 0, "encrypted data: no \"<key id>:\" prefix");
    drv_error_t why = DRV_ERROR_INIT;
    if (check_key_id(text, (size_t)(colon - text), &why) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INTEGRITY, 0, "encrypted data: %s", why.msg);
    *idlen = (size_t)(colon - text);
    return DRV_OK;
}

drv_err_t drv_pki_aead_key_id(const char *text, char id[DRV_PKI_KEY_ID_MAX], drv_error_t *err)
{
    size_t n;
    drv_error_t local = DRV_ERROR_INIT;
    drv_err_t e = text_key_id(text, &n, err != NULL ? err : &local);
    if (e != DRV_OK)
        return e;
    memcpy(id, text, n);
    id[n] = '\0';
    return DRV_OK;
}

drv_err_t drv_pki_aead_open(const char *key_id, const unsigned char key[DRV_PKI_AEAD_KEY_LEN],
                            const void *aad, size_t aad_len, const char *text, unsigned char **out,
                            size_t *outlen, drv_error_t *err)
{
    drv_error_t local = DRV_ERROR_INIT;
    if (err == NULL)
        err = &local;
    drv_err_t e = aead_args(key_id, key, aad, aad_len, err);
    size_t idlen = 0;
    if (e == DRV_OK)
        e = text_key_id(text, &idlen, err);
    if (e != DRV_OK)
        return e;
    if (idlen != strlen(key_id) || memcmp(text, key_id, idlen) != 0)
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0,
                             "encrypted data: encrypted with key \"%.*s\", not \"%s\"", (int)idlen,
                             text, key_id);
    const char *b64 = text + idlen + 1;
    size_t max = drv_base64_encoded_len(DRV_PKI_DATA_MAX + NONCE_LEN + TAG_LEN);
    size_t n = strnlen(b64, max + 1);
    if (n > max)
        return drv_error_set(err, DRV_ERR_INTEGRITY, 0,
                             "encrypted data: longer than %zu characters", max);
    unsigned char *b = NULL, *a = NULL, *plain = NULL;
    size_t blen = 0, alen = 0;
    if (n == 0 || drv_base64_decode(b64, n, &b, &blen) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INTEGRITY, 0, "encrypted data: not base64");
    if (blen < NONCE_LEN + TAG_LEN) {
        e = drv_error_set(err, DRV_ERR_INTEGRITY, 0, "encrypted data: truncated (%zu bytes)", blen);
        goto out;
    }
    a = aead_aad(key_id, aad, aad_len, &alen);
    if (a == NULL) {
        e = drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "decrypt");
        goto out;
    }
    size_t clen = blen - NONCE_LEN - TAG_LEN;
    int rc = gcm_open_alloc(key, b, a, alen, b + NONCE_LEN, clen, b + NONCE_LEN + clen, &plain);
    if (rc == ALLOC_FAILED) {
        e = drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "decrypt");
        goto out;
    }
    if (rc != 0) {
        e = drv_error_set(err, DRV_ERR_INTEGRITY, 0,
                          "encrypted data: does not decrypt (tampered, moved from another object, "
                          "or another key)");
        goto out;
    }
    *out = plain;
    *outlen = clen;
out:
    free(a);
    free(b);
    return e;
}
