/* pki: the module's random generator, EC P-256 keys and ECDSA signatures, plus the helpers the
 * other pki_*.c files share (pki_int.h). Private key material is wiped before it is freed. */
#include "drover/pki.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#include "drover/base64.h"
#include "drover/fmt.h"
#include "pki_int.h"

#define SIG_B64_MAX 256 /* a P-256 DER signature is at most 72 bytes */

/* ---- Random: one CTR_DRBG, seeded from getrandom(2) on first use and again in a forked
 * child (which would otherwise repeat its parent's stream). The one piece of global state in
 * the module, behind a mutex. ---- */

static pthread_mutex_t rng_lock = PTHREAD_MUTEX_INITIALIZER;
static mbedtls_ctr_drbg_context rng_ctx;
static pid_t rng_pid; /* the process that seeded rng_ctx; 0: not seeded */

static int entropy_getrandom(void *p, unsigned char *out, size_t n)
{
    (void)p;
    size_t off = 0;
    while (off < n) {
        ssize_t r = getrandom(out + off, n - off, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
        }
        off += (size_t)r;
    }
    return 0;
}

static int rng_fill_locked(unsigned char *out, size_t n)
{
    pid_t pid = getpid();
    if (rng_pid != pid) {
        if (rng_pid != 0)
            mbedtls_ctr_drbg_free(&rng_ctx);
        rng_pid = 0;
        mbedtls_ctr_drbg_init(&rng_ctx);
        static const unsigned char pers[] = "drover-pki";
        int rc = mbedtls_ctr_drbg_seed(&rng_ctx, entropy_getrandom, NULL, pers, sizeof(pers) - 1);
        if (rc != 0) {
            mbedtls_ctr_drbg_free(&rng_ctx);
            return rc;
        }
        rng_pid = pid;
    }
    while (n > 0) {
        size_t k = n < MBEDTLS_CTR_DRBG_MAX_REQUEST ? n : MBEDTLS_CTR_DRBG_MAX_REQUEST;
        int rc = mbedtls_ctr_drbg_random(&rng_ctx, out, k);
        if (rc != 0)
            return rc;
        out += k;
        n -= k;
    }
    return 0;
}

int drv_pki_int_rng(void *p_rng, unsigned char *out, size_t n)
{
    (void)p_rng;
    pthread_mutex_lock(&rng_lock);
    int rc = rng_fill_locked(out, n);
    pthread_mutex_unlock(&rng_lock);
    return rc;
}

drv_err_t drv_pki_random(void *out, size_t n, drv_error_t *err)
{
    int rc = drv_pki_int_rng(NULL, out, n);
    if (rc != 0)
        return drv_pki_int_fail(err, DRV_ERR_IO, rc, "random generator");
    return DRV_OK;
}

/* ---- Shared helpers ---- */

void drv_pki_secret_free(char *s)
{
    if (s == NULL)
        return;
    mbedtls_platform_zeroize(s, strlen(s) + 1);
    free(s);
}

void drv_pki_wipe_free(void *p, size_t n)
{
    if (p == NULL)
        return;
    mbedtls_platform_zeroize(p, n);
    free(p);
}

char *drv_pki_int_strndup(const unsigned char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

drv_err_t drv_pki_int_text(const char *s, size_t max, const char *what, size_t *len,
                           drv_error_t *err)
{
    if (s == NULL || s[0] == '\0')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: required", what);
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: longer than %zu bytes", what, max);
    *len = n;
    return DRV_OK;
}

drv_err_t drv_pki_int_fail(drv_error_t *err, drv_err_t code, int mbed_rc, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    drv_vfmt_cut(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (mbed_rc == 0)
        return drv_error_set(err, code, 0, "%s", msg);
    char why[160];
    mbedtls_strerror(mbed_rc, why, sizeof why);
    return drv_error_set(err, code, 0, "%s: %s", msg, why);
}

drv_err_t drv_pki_int_check_p256(mbedtls_pk_context *pk, const char *what, drv_error_t *err)
{
    mbedtls_pk_type_t t = mbedtls_pk_get_type(pk);
    if (t != MBEDTLS_PK_ECKEY && t != MBEDTLS_PK_ECKEY_DH && t != MBEDTLS_PK_ECDSA)
        return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                             "%s: %s keys are not accepted, only EC P-256", what,
                             mbedtls_pk_get_name(pk));
    mbedtls_ecp_group_id id = mbedtls_pk_ec(*pk)->grp.id;
    if (id != MBEDTLS_ECP_DP_SECP256R1) {
        const mbedtls_ecp_curve_info *ci = mbedtls_ecp_curve_info_from_grp_id(id);
        return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                             "%s: EC curve %s is not accepted, only P-256 (secp256r1)", what,
                             ci != NULL ? ci->name : "unknown");
    }
    return DRV_OK;
}

drv_err_t drv_pki_int_load_key(const char *pem, mbedtls_pk_context *pk, const char *what,
                               drv_error_t *err)
{
    size_t len = 0;
    drv_err_t e = drv_pki_int_text(pem, DRV_PKI_PEM_MAX, what, &len, err);
    if (e != DRV_OK)
        return e;
    int rc = mbedtls_pk_parse_key(pk, (const unsigned char *)pem, len + 1, NULL, 0);
    if (rc != 0)
        return drv_pki_int_fail(err, DRV_ERR_INVALID, rc, "%s: not a private key PEM", what);
    return drv_pki_int_check_p256(pk, what, err);
}

drv_err_t drv_pki_int_load_pub(const char *pem, mbedtls_pk_context *pk, const char *what,
                               drv_error_t *err)
{
    size_t len = 0;
    drv_err_t e = drv_pki_int_text(pem, DRV_PKI_PEM_MAX, what, &len, err);
    if (e != DRV_OK)
        return e;
    int rc = mbedtls_pk_parse_public_key(pk, (const unsigned char *)pem, len + 1);
    if (rc != 0)
        return drv_pki_int_fail(err, DRV_ERR_INVALID, rc, "%s: not a public key PEM", what);
    e = drv_pki_int_check_p256(pk, what, err);
    if (e != DRV_OK)
        return e;
    rc = mbedtls_ecp_check_pubkey(&mbedtls_pk_ec(*pk)->grp, &mbedtls_pk_ec(*pk)->Q);
    if (rc != 0)
        return drv_pki_int_fail(err, DRV_ERR_INVALID, rc, "%s: not a point on P-256", what);
    return DRV_OK;
}

drv_err_t drv_pki_int_pub_pem(mbedtls_pk_context *pk, char **out, drv_error_t *err)
{
    unsigned char buf[1024];
    int rc = mbedtls_pk_write_pubkey_pem(pk, buf, sizeof buf);
    if (rc != 0)
        return drv_pki_int_fail(err, DRV_ERR_INVALID, rc, "write public key");
    char *s = drv_pki_int_strndup(buf, strlen((const char *)buf));
    if (s == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "public key");
    *out = s;
    return DRV_OK;
}

/* ---- Keys ---- */

drv_err_t drv_pki_key_generate(char **key_pem, drv_error_t *err)
{
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    unsigned char buf[1024];
    drv_err_t e = DRV_OK;
    int rc = mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
    if (rc == 0)
        rc =
            mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk), drv_pki_int_rng, NULL);
    if (rc != 0) {
        e = drv_pki_int_fail(err, DRV_ERR_IO, rc, "generate EC P-256 key");
        goto out;
    }
    rc = mbedtls_pk_write_key_pem(&pk, buf, sizeof buf);
    if (rc != 0) {
        e = drv_pki_int_fail(err, DRV_ERR_INVALID, rc, "write private key");
        goto out;
    }
    char *s = drv_pki_int_strndup(buf, strlen((const char *)buf));
    if (s == NULL) {
        e = drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "private key");
        goto out;
    }
    *key_pem = s;
out:
    mbedtls_platform_zeroize(buf, sizeof buf);
    mbedtls_pk_free(&pk);
    return e;
}

drv_err_t drv_pki_key_public(const char *key_pem, char **pub_pem, drv_error_t *err)
{
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    drv_err_t e = drv_pki_int_load_key(key_pem, &pk, "private key", err);
    if (e == DRV_OK)
        e = drv_pki_int_pub_pem(&pk, pub_pem, err);
    mbedtls_pk_free(&pk);
    return e;
}

drv_err_t drv_pki_key_check(const char *key_pem, drv_error_t *err)
{
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    drv_err_t e = drv_pki_int_load_key(key_pem, &pk, "private key", err);
    if (e == DRV_OK) {
        int rc = mbedtls_ecp_check_privkey(&mbedtls_pk_ec(pk)->grp, &mbedtls_pk_ec(pk)->d);
        if (rc == 0)
            rc = mbedtls_pk_check_pair(&pk, &pk);
        if (rc != 0)
            e = drv_pki_int_fail(err, DRV_ERR_INVALID, rc, "private key: inconsistent");
    }
    mbedtls_pk_free(&pk);
    return e;
}

drv_err_t drv_pki_pubkey_check(const char *pub_pem, drv_error_t *err)
{
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    drv_err_t e = drv_pki_int_load_pub(pub_pem, &pk, "public key", err);
    mbedtls_pk_free(&pk);
    return e;
}

/* ---- Signatures ---- */

drv_err_t drv_pki_sign(const char *key_pem, const void *msg, size_t len, char **sig_b64,
                       drv_error_t *err)
{
    if (msg == NULL && len > 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "sign: message required");
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    drv_err_t e = drv_pki_int_load_key(key_pem, &pk, "signing key", err);
    if (e != DRV_OK)
        goto out;
    unsigned char hash[32], sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t slen = 0;
    int rc = mbedtls_sha256_ret(len > 0 ? msg : (const void *)"", len, hash, 0);
    if (rc == 0)
        rc = mbedtls_pk_sign(&pk, MBEDTLS_MD_SHA256, hash, sizeof hash, sig, &slen, drv_pki_int_rng,
                             NULL);
    if (rc != 0) {
        e = drv_pki_int_fail(err, DRV_ERR_IO, rc, "sign");
        goto out;
    }
    char *s = drv_base64_encode(sig, slen);
    if (s == NULL) {
        e = drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "signature");
        goto out;
    }
    *sig_b64 = s;
out:
    mbedtls_pk_free(&pk);
    return e;
}

drv_err_t drv_pki_verify(const char *pub_pem, const void *msg, size_t len, const char *sig_b64,
                         drv_error_t *err)
{
    if (msg == NULL && len > 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "verify: message required");
    if (sig_b64 == NULL || sig_b64[0] == '\0')
        return drv_error_set(err, DRV_ERR_INTEGRITY, 0, "signature: missing");
    size_t slen = strnlen(sig_b64, SIG_B64_MAX + 1);
    if (slen > SIG_B64_MAX)
        return drv_error_set(err, DRV_ERR_INTEGRITY, 0, "signature: longer than %d characters",
                             SIG_B64_MAX);
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    unsigned char *sig = NULL;
    size_t siglen = 0;
    drv_err_t e = drv_pki_int_load_pub(pub_pem, &pk, "verification key", err);
    if (e != DRV_OK)
        goto out;
    if (drv_base64_decode(sig_b64, slen, &sig, &siglen) != DRV_OK) {
        e = drv_error_set(err, DRV_ERR_INTEGRITY, 0, "signature: not base64");
        goto out;
    }
    unsigned char hash[32];
    int rc = mbedtls_sha256_ret(len > 0 ? msg : (const void *)"", len, hash, 0);
    if (rc == 0)
        rc = mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, hash, sizeof hash, sig, siglen);
    if (rc != 0)
        e = drv_pki_int_fail(err, DRV_ERR_INTEGRITY, rc, "signature does not verify");
out:
    free(sig);
    mbedtls_pk_free(&pk);
    return e;
}
