/* pki: X.509 with mbedTLS 2.28 — the self-signed CA, CSRs (made on the device, checked by the
 * hub), certificates the CA issues (EKU and SANs are written by hand: 2.28 has no setters for
 * them; the ECDSA signature algorithm is re-encoded without the NULL 2.28 adds), chain and
 * validity checks at a given time, and what a certificate says about itself. Dates are
 * converted without time_t, which is 32-bit on armhf. */
#include "drover/pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <mbedtls/asn1.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/bignum.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>

#include "drover/cleanup.h"
#include "drover/digest.h"
#include "drover/fmt.h"
#include "drover/names.h"
#include "drover/protocol.h"
#include "pki_int.h"

#define PEM_OUT_MAX (16 * 1024)
#define DER_OUT_MAX (11 * 1024) /* a certificate or CSR; its PEM still fits PEM_OUT_MAX */
#define TIME_STR 15             /* YYYYMMDDhhmmss + NUL */

/* Only what Drover itself issues: ECDSA over P-256 with SHA-2. */
static const mbedtls_x509_crt_profile strict_profile = {
    MBEDTLS_X509_ID_FLAG(MBEDTLS_MD_SHA256) | MBEDTLS_X509_ID_FLAG(MBEDTLS_MD_SHA384) |
        MBEDTLS_X509_ID_FLAG(MBEDTLS_MD_SHA512),
    MBEDTLS_X509_ID_FLAG(MBEDTLS_PK_ECKEY) | MBEDTLS_X509_ID_FLAG(MBEDTLS_PK_ECDSA),
    MBEDTLS_X509_ID_FLAG(MBEDTLS_ECP_DP_SECP256R1),
    2048,
};

/* ---- Dates (proleptic Gregorian, H. Hinnant's algorithms) ---- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int64_t x509_time_unix(const mbedtls_x509_time *t)
{
    return days_from_civil(t->year, (unsigned)t->mon, (unsigned)t->day) * 86400 +
           (int64_t)t->hour * 3600 + t->min * 60 + t->sec;
}

static DRV_NODISCARD drv_err_t unix_time_str(int64_t t, char out[TIME_STR])
{
    int64_t days = t / 86400, secs = t % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    return drv_fmt(out, TIME_STR, "%04d%02u%02u%02d%02d%02d", (int)y, m, d, (int)(secs / 3600),
                   (int)(secs / 60 % 60), (int)(secs % 60));
}

static int64_t now_unix(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

/* notBefore = not_before (0: now - skew), notAfter = days later but never past max_after (the
 * issuing CA's own notAfter: a certificate cannot outlive its CA). */
static drv_err_t validity(mbedtls_x509write_cert *crt, int64_t not_before, uint32_t days,
                          int64_t max_after, drv_error_t *err)
{
    if (days < 1 || days > DRV_PKI_DAYS_MAX)
        return drv_error_set(err, DRV_ERR_RANGE, 0, "validity: %u days: must be 1 to %d", days,
                             DRV_PKI_DAYS_MAX);
    if (not_before == 0)
        not_before = now_unix() - DRV_PKI_SKEW;
    /* 1970 .. 9999 (with the longest validity) stays within X.509's time formats. */
    if (not_before < 0 || not_before > INT64_C(252700000000))
        return drv_error_set(err, DRV_ERR_RANGE, 0, "validity: start %lld out of range",
                             (long long)not_before);
    int64_t not_after = not_before + (int64_t)days * 86400;
    if (not_after > max_after)
        not_after = max_after;
    if (not_after <= not_before)
        return drv_error_set(err, DRV_ERR_RANGE, 0, "validity: starts after the CA expires");
    char nb[TIME_STR], na[TIME_STR];
    if (unix_time_str(not_before, nb) != DRV_OK || unix_time_str(not_after, na) != DRV_OK)
        return drv_error_set(err, DRV_ERR_RANGE, 0, "validity: a time beyond the year 9999");
    int rc = mbedtls_x509write_crt_set_validity(crt, nb, na);
    if (rc != 0)
        return drv_pki_int_fail(err, DRV_ERR_RANGE, rc, "validity");
    return DRV_OK;
}

/* ---- Names ---- */

static drv_err_t check_ca_cn(const char *cn, drv_error_t *err)
{
    if (cn == NULL || cn[0] == '\0')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "CA CN: required");
    size_t n = strnlen(cn, DRV_PKI_CN_MAX + 1);
    if (n > DRV_PKI_CN_MAX)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "CA CN: must be no more than %d characters",
                             DRV_PKI_CN_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)cn[i];
        if (c < 0x20 || c > 0x7e || strchr(",=+\"\\<>#;", c) != NULL)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "CA CN: character %zu (0x%02x) is not allowed", i, c);
    }
    if (cn[0] == ' ' || cn[n - 1] == ' ')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "CA CN: must not start or end with a space");
    return DRV_OK;
}

/* The CN of a subject into cn. strict: exactly one, and a valid node name. Otherwise the first
 * CN, control characters shown as '?', cut to DRV_PKI_CN_MAX ("" without one). */
static drv_err_t subject_cn(const mbedtls_x509_name *name, bool strict, const char *what,
                            char cn[DRV_PKI_CN_MAX + 1], drv_error_t *err)
{
    const mbedtls_x509_name *found = NULL;
    int count = 0;
    for (const mbedtls_x509_name *n = name; n != NULL; n = n->next) {
        if (n->oid.p != NULL && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0) {
            if (found == NULL)
                found = n;
            count++;
        }
    }
    if (!strict) {
        cn[0] = '\0';
        if (found == NULL)
            return DRV_OK;
        size_t len = found->val.len < DRV_PKI_CN_MAX ? found->val.len : DRV_PKI_CN_MAX;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = found->val.p[i];
            cn[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
        }
        cn[len] = '\0';
        return DRV_OK;
    }
    if (count == 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: subject has no CN", what);
    if (count > 1)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: subject has %d CNs, want one", what,
                             count);
    if (found->val.len > DRV_PKI_CN_MAX)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s: CN: must be no more than %d characters (node name)", what,
                             DRV_PKI_CN_MAX);
    for (size_t i = 0; i < found->val.len; i++) {
        unsigned char c = found->val.p[i];
        if (c < 0x20 || c == 0x7f)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: CN: control character 0x%02x at %zu",
                                 what, c, i);
    }
    char tmp[DRV_PKI_CN_MAX + 1];
    memcpy(tmp, found->val.p, found->val.len);
    tmp[found->val.len] = '\0';
    if (drv_proto_check_node(tmp, err) != DRV_OK)
        return drv_error_wrap(err, "%s: CN", what);
    memcpy(cn, tmp, found->val.len + 1);
    return DRV_OK;
}

/* ---- Shared pieces of certificate writing ---- */

static drv_err_t set_serial(mbedtls_x509write_cert *crt, drv_error_t *err)
{
    unsigned char b[16];
    int rc = drv_pki_int_rng(NULL, b, sizeof b);
    if (rc != 0)
        return drv_pki_int_fail(err, DRV_ERR_IO, rc, "serial");
    b[0] = (unsigned char)((b[0] & 0x7f) | 0x40); /* positive, 16 bytes */
    mbedtls_mpi s;
    mbedtls_mpi_init(&s);
    rc = mbedtls_mpi_read_binary(&s, b, sizeof b);
    if (rc == 0)
        rc = mbedtls_x509write_crt_set_serial(crt, &s);
    mbedtls_mpi_free(&s);
    if (rc != 0)
        return drv_pki_int_fail(err, DRV_ERR_NOMEM, rc, "serial");
    return DRV_OK;
}

/* ---- ECDSA AlgorithmIdentifiers without parameters ----
 * mbedTLS up to 2.28.3 (Debian 12's) writes every signature AlgorithmIdentifier as SEQUENCE {
 * OID, NULL } with no way to ask otherwise (Mbed-TLS issue #2924, fixed upstream by PR #7788 and
 * its 2.28 backport #8010). RFC 5758 section 3.2 says the parameters MUST be absent for
 * ecdsa-with-SHA*, and strict parsers (Go, Python's cryptography) refuse or warn. So mbedTLS
 * writes the DER and it is rewritten here (a fixed mbedTLS's DER goes through unchanged but for
 * a fresh signature). A certificate carries the identifier twice, in its TBS (the signed
 * `signature` field) and after it, so its TBS is corrected and signed again; a CSR carries it
 * once, after the CertificationRequestInfo, which is unchanged and keeps its signature. */

/* SEQUENCE { oid }, written backwards before *p. */
static int ecdsa_alg_write(unsigned char **p, unsigned char *start, const mbedtls_asn1_buf *oid)
{
    int ret;
    size_t len = 0;
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_oid(p, start, (const char *)oid->p, oid->len));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(p, start, len));
    MBEDTLS_ASN1_CHK_ADD(
        len, mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    return (int)len;
}

/* Reads the AlgorithmIdentifier at *p (parameters absent or NULL), which must be an ECDSA one:
 * its OID into oid, its hash into md. */
static int ecdsa_alg_read(unsigned char **p, const unsigned char *end, mbedtls_asn1_buf *oid,
                          mbedtls_md_type_t *md)
{
    int rc = mbedtls_asn1_get_alg_null(p, end, oid);
    mbedtls_pk_type_t pk = MBEDTLS_PK_NONE;
    if (rc == 0)
        rc = mbedtls_oid_get_sig_alg(oid, md, &pk);
    if (rc == 0 && pk != MBEDTLS_PK_ECDSA)
        rc = MBEDTLS_ERR_X509_UNKNOWN_SIG_ALG;
    return rc;
}

/* der (len bytes) is a Certificate (cert) or CertificationRequest as mbedTLS wrote it:
 * SEQUENCE { signed part, signatureAlgorithm, signature BIT STRING }. Writes it with both (or
 * the one) AlgorithmIdentifiers without parameters at the end of out[size], setting *start;
 * key: the issuer's, to sign a certificate's corrected TBS again (unused for a CSR). Returns
 * the length written or an mbedTLS error. */
static int ecdsa_der_rewrite(unsigned char *der, size_t len, bool cert, mbedtls_pk_context *key,
                             unsigned char *out, size_t size, unsigned char **start)
{
    int ret;
    size_t n;
    unsigned char *p = der, *end = der + len;
    ret = mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE);
    if (ret != 0)
        return ret;
    if (n != (size_t)(end - p))
        return MBEDTLS_ERR_ASN1_LENGTH_MISMATCH;
    unsigned char *tbs = p;
    ret = mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE);
    if (ret != 0)
        return ret;
    unsigned char *body = p, *tbs_end = p + n, *alg = NULL, *alg_end = NULL;
    mbedtls_asn1_buf oid, tbs_oid;
    mbedtls_md_type_t md = MBEDTLS_MD_NONE;
    if (cert) {
        /* TBSCertificate: [0] EXPLICIT version (optional), serialNumber, signature, ... */
        ret = mbedtls_asn1_get_tag(&p, tbs_end, &n,
                                   MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 0);
        if (ret == 0)
            p += n;
        else if (ret != MBEDTLS_ERR_ASN1_UNEXPECTED_TAG)
            return ret;
        ret = mbedtls_asn1_get_tag(&p, tbs_end, &n, MBEDTLS_ASN1_INTEGER);
        if (ret != 0)
            return ret;
        p += n;
        alg = p;
        ret = ecdsa_alg_read(&p, tbs_end, &tbs_oid, &md);
        if (ret != 0)
            return ret;
        alg_end = p;
    }
    p = tbs_end;
    ret = ecdsa_alg_read(&p, end, &oid, &md);
    if (ret != 0)
        return ret;
    mbedtls_asn1_bitstring bits;
    ret = mbedtls_asn1_get_bitstring(&p, end, &bits);
    if (ret != 0)
        return ret;
    if (p != end || bits.unused_bits != 0)
        return MBEDTLS_ERR_ASN1_INVALID_DATA;

    const unsigned char *signed_p = tbs, *sig = bits.p;
    size_t signed_len = (size_t)(tbs_end - tbs), sig_len = bits.len;
    _cleanup_free_ unsigned char *scratch = NULL;
    unsigned char new_sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    if (cert) {
        if (tbs_oid.len != oid.len || memcmp(tbs_oid.p, oid.p, oid.len) != 0)
            return MBEDTLS_ERR_X509_SIG_MISMATCH;
        /* The corrected TBS is shorter than the old one: len bytes hold it. */
        scratch = malloc(len);
        if (scratch == NULL)
            return MBEDTLS_ERR_ASN1_ALLOC_FAILED;
        unsigned char *t = scratch + len;
        size_t tl = 0;
        MBEDTLS_ASN1_CHK_ADD(
            tl, mbedtls_asn1_write_raw_buffer(&t, scratch, alg_end, (size_t)(tbs_end - alg_end)));
        MBEDTLS_ASN1_CHK_ADD(tl, ecdsa_alg_write(&t, scratch, &oid));
        MBEDTLS_ASN1_CHK_ADD(
            tl, mbedtls_asn1_write_raw_buffer(&t, scratch, body, (size_t)(alg - body)));
        MBEDTLS_ASN1_CHK_ADD(tl, mbedtls_asn1_write_len(&t, scratch, tl));
        MBEDTLS_ASN1_CHK_ADD(
            tl,
            mbedtls_asn1_write_tag(&t, scratch, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
        const mbedtls_md_info_t *info = mbedtls_md_info_from_type(md);
        if (info == NULL)
            return MBEDTLS_ERR_X509_UNKNOWN_SIG_ALG;
        unsigned char hash[MBEDTLS_MD_MAX_SIZE];
        ret = mbedtls_md(info, t, tl, hash);
        if (ret == 0)
            ret = mbedtls_pk_sign(key, md, hash, mbedtls_md_get_size(info), new_sig, &sig_len,
                                  drv_pki_int_rng, NULL);
        if (ret != 0)
            return ret;
        signed_p = t;
        signed_len = tl;
        sig = new_sig;
    }

    unsigned char *o = out + size;
    size_t total = 0;
    MBEDTLS_ASN1_CHK_ADD(total, mbedtls_asn1_write_bitstring(&o, out, sig, sig_len * 8));
    MBEDTLS_ASN1_CHK_ADD(total, ecdsa_alg_write(&o, out, &oid));
    MBEDTLS_ASN1_CHK_ADD(total, mbedtls_asn1_write_raw_buffer(&o, out, signed_p, signed_len));
    MBEDTLS_ASN1_CHK_ADD(total, mbedtls_asn1_write_len(&o, out, total));
    MBEDTLS_ASN1_CHK_ADD(
        total, mbedtls_asn1_write_tag(&o, out, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    *start = o;
    return (int)total;
}

/* mbedTLS's DER of a certificate (cert) or CSR, rewritten as above, as PEM in a new string *out
 * (the caller's to free). key: as for ecdsa_der_rewrite. */
static drv_err_t der_write_pem(unsigned char *der, size_t len, bool cert, mbedtls_pk_context *key,
                               char **out, drv_error_t *err)
{
    const char *what = cert ? "certificate" : "CSR";
    _cleanup_free_ unsigned char *fixed = malloc(DER_OUT_MAX);
    _cleanup_free_ unsigned char *pem = malloc(PEM_OUT_MAX);
    if (fixed == NULL || pem == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "%s", what);
    unsigned char *start = NULL;
    int n = ecdsa_der_rewrite(der, len, cert, key, fixed, DER_OUT_MAX, &start);
    if (n < 0)
        return drv_pki_int_fail(err, DRV_ERR_INVALID, n, "write %s: signature algorithm", what);
    size_t olen = 0;
    int rc = mbedtls_pem_write_buffer(
        cert ? "-----BEGIN CERTIFICATE-----\n" : "-----BEGIN CERTIFICATE REQUEST-----\n",
        cert ? "-----END CERTIFICATE-----\n" : "-----END CERTIFICATE REQUEST-----\n", start,
        (size_t)n, pem, PEM_OUT_MAX, &olen);
    if (rc != 0)
        return drv_pki_int_fail(err, DRV_ERR_INVALID, rc, "write %s", what);
    char *s = drv_pki_int_strndup(pem, strnlen((const char *)pem, PEM_OUT_MAX));
    if (s == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "%s", what);
    *out = s;
    return DRV_OK;
}

/* crt signed by issuer_key (the key set with mbedtls_x509write_crt_set_issuer_key), as PEM. */
static drv_err_t write_pem(mbedtls_x509write_cert *crt, mbedtls_pk_context *issuer_key, char **out,
                           drv_error_t *err)
{
    _cleanup_free_ unsigned char *buf = malloc(DER_OUT_MAX);
    if (buf == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "certificate");
    int n = mbedtls_x509write_crt_der(crt, buf, DER_OUT_MAX, drv_pki_int_rng, NULL);
    if (n < 0)
        return drv_pki_int_fail(err, DRV_ERR_INVALID, n, "write certificate");
    return der_write_pem(buf + DER_OUT_MAX - n, (size_t)n, true, issuer_key, out, err);
}

/* ExtendedKeyUsage ::= SEQUENCE OF KeyPurposeId, written backwards from the end of buf. */
static int eku_der(unsigned char *buf, size_t size, unsigned usage, unsigned char **start)
{
    int ret;
    size_t len = 0;
    unsigned char *p = buf + size;
    if (usage & DRV_PKI_SERVER_AUTH)
        MBEDTLS_ASN1_CHK_ADD(len,
                             mbedtls_asn1_write_oid(&p, buf, MBEDTLS_OID_SERVER_AUTH,
                                                    MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)));
    if (usage & DRV_PKI_CLIENT_AUTH)
        MBEDTLS_ASN1_CHK_ADD(len,
                             mbedtls_asn1_write_oid(&p, buf, MBEDTLS_OID_CLIENT_AUTH,
                                                    MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(&p, buf, len));
    MBEDTLS_ASN1_CHK_ADD(
        len, mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    *start = p;
    return (int)len;
}

typedef struct ip_bytes {
    unsigned char b[16];
    size_t len;
} ip_bytes_t;

/* SubjectAltName ::= SEQUENCE OF GeneralName: dNSName [2] IA5String, iPAddress [7] OCTET
 * STRING, in the order given (DNS names first). */
static int san_der(unsigned char *buf, size_t size, const drv_pki_issue_t *o, const ip_bytes_t *ips,
                   unsigned char **start)
{
    int ret;
    size_t len = 0;
    unsigned char *p = buf + size;
    for (size_t i = o->n_ips; i-- > 0;) {
        size_t l = 0;
        MBEDTLS_ASN1_CHK_ADD(l, mbedtls_asn1_write_raw_buffer(&p, buf, ips[i].b, ips[i].len));
        MBEDTLS_ASN1_CHK_ADD(l, mbedtls_asn1_write_len(&p, buf, l));
        MBEDTLS_ASN1_CHK_ADD(l, mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7));
        len += l;
    }
    for (size_t i = o->n_dns; i-- > 0;) {
        size_t l = 0;
        const char *d = o->dns_names[i];
        MBEDTLS_ASN1_CHK_ADD(
            l, mbedtls_asn1_write_raw_buffer(&p, buf, (const unsigned char *)d, strlen(d)));
        MBEDTLS_ASN1_CHK_ADD(l, mbedtls_asn1_write_len(&p, buf, l));
        MBEDTLS_ASN1_CHK_ADD(l, mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2));
        len += l;
    }
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(&p, buf, len));
    MBEDTLS_ASN1_CHK_ADD(
        len, mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    *start = p;
    return (int)len;
}

/* Parses exactly one certificate. */
static drv_err_t parse_cert(const char *pem, mbedtls_x509_crt *crt, const char *what,
                            drv_error_t *err)
{
    size_t len = 0;
    drv_err_t e = drv_pki_int_text(pem, DRV_PKI_PEM_MAX, what, &len, err);
    if (e != DRV_OK)
        return e;
    int rc = mbedtls_x509_crt_parse(crt, (const unsigned char *)pem, len + 1);
    if (rc < 0)
        return drv_pki_int_fail(err, DRV_ERR_INVALID, rc, "%s: not a PEM certificate", what);
    if (rc > 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: %d certificates do not parse", what, rc);
    if (crt->next != NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: more than one certificate", what);
    return DRV_OK;
}

static unsigned cert_usage(const mbedtls_x509_crt *crt)
{
    unsigned u = 0;
    if (!(crt->ext_types & MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE))
        return 0;
    for (const mbedtls_x509_sequence *s = &crt->ext_key_usage; s != NULL; s = s->next) {
        if (s->buf.p == NULL)
            continue;
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_CLIENT_AUTH, &s->buf) == 0)
            u |= DRV_PKI_CLIENT_AUTH;
        else if (MBEDTLS_OID_CMP(MBEDTLS_OID_SERVER_AUTH, &s->buf) == 0)
            u |= DRV_PKI_SERVER_AUTH;
        else if (MBEDTLS_OID_CMP(MBEDTLS_OID_ANY_EXTENDED_KEY_USAGE, &s->buf) == 0)
            u |= DRV_PKI_CLIENT_AUTH | DRV_PKI_SERVER_AUTH;
    }
    return u;
}

/* ---- CA ---- */

drv_err_t drv_pki_ca_create(const char *key_pem, const char *cn, int64_t not_before, uint32_t days,
                            char **cert_pem, drv_error_t *err)
{
    drv_err_t e = check_ca_cn(cn, err);
    if (e != DRV_OK)
        return e;
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    mbedtls_x509write_cert crt;
    mbedtls_x509write_crt_init(&crt);
    e = drv_pki_int_load_key(key_pem, &pk, "CA key", err);
    if (e != DRV_OK)
        goto out;
    char subject[DRV_PKI_CN_MAX + 8];
    if (drv_fmt(subject, sizeof subject, "CN=%s", cn) != DRV_OK) {
        e = drv_error_set(err, DRV_ERR_INVALID, 0, "CN: longer than %d characters", DRV_PKI_CN_MAX);
        goto out;
    }
    mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&crt, &pk);
    mbedtls_x509write_crt_set_issuer_key(&crt, &pk);
    e = validity(&crt, not_before, days, INT64_MAX, err);
    if (e == DRV_OK)
        e = set_serial(&crt, err);
    if (e != DRV_OK)
        goto out;
    int rc = mbedtls_x509write_crt_set_subject_name(&crt, subject);
    if (rc == 0)
        rc = mbedtls_x509write_crt_set_issuer_name(&crt, subject);
    if (rc == 0)
        rc = mbedtls_x509write_crt_set_basic_constraints(&crt, 1, 0);
    if (rc == 0)
        rc = mbedtls_x509write_crt_set_subject_key_identifier(&crt);
    if (rc == 0)
        rc = mbedtls_x509write_crt_set_authority_key_identifier(&crt);
    if (rc == 0)
        rc = mbedtls_x509write_crt_set_key_usage(&crt, MBEDTLS_X509_KU_KEY_CERT_SIGN |
                                                           MBEDTLS_X509_KU_CRL_SIGN |
                                                           MBEDTLS_X509_KU_DIGITAL_SIGNATURE);
    if (rc != 0) {
        e = drv_pki_int_fail(err, DRV_ERR_INVALID, rc, "CA certificate");
        goto out;
    }
    e = write_pem(&crt, &pk, cert_pem, err);
out:
    mbedtls_x509write_crt_free(&crt);
    mbedtls_pk_free(&pk);
    return e;
}

/* ---- CSR ---- */

drv_err_t drv_pki_csr_create(const char *key_pem, const char *cn, char **csr_pem, drv_error_t *err)
{
    if (drv_proto_check_node(cn, err) != DRV_OK)
        return drv_error_wrap(err, "CSR CN");
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    mbedtls_x509write_csr csr;
    mbedtls_x509write_csr_init(&csr);
    unsigned char buf[4096];
    drv_err_t e = drv_pki_int_load_key(key_pem, &pk, "CSR key", err);
    if (e != DRV_OK)
        goto out;
    char subject[DRV_PKI_CN_MAX + 8];
    if (drv_fmt(subject, sizeof subject, "CN=%s", cn) != DRV_OK) {
        e = drv_error_set(err, DRV_ERR_INVALID, 0, "CN: longer than %d characters", DRV_PKI_CN_MAX);
        goto out;
    }
    mbedtls_x509write_csr_set_key(&csr, &pk);
    mbedtls_x509write_csr_set_md_alg(&csr, MBEDTLS_MD_SHA256);
    int rc = mbedtls_x509write_csr_set_subject_name(&csr, subject);
    if (rc == 0)
        rc = mbedtls_x509write_csr_der(&csr, buf, sizeof buf, drv_pki_int_rng, NULL);
    if (rc < 0) {
        e = drv_pki_int_fail(err, DRV_ERR_INVALID, rc, "write CSR");
        goto out;
    }
    e = der_write_pem(buf + sizeof buf - rc, (size_t)rc, false, NULL, csr_pem, err);
out:
    mbedtls_x509write_csr_free(&csr);
    mbedtls_pk_free(&pk);
    return e;
}

/* Parses and checks a CSR into csr (initialised by the caller): key, signature, CN. */
static drv_err_t csr_load(const char *csr_pem, mbedtls_x509_csr *csr, char cn[DRV_PKI_CN_MAX + 1],
                          drv_error_t *err)
{
    size_t len = 0;
    drv_err_t e = drv_pki_int_text(csr_pem, DRV_PKI_PEM_MAX, "CSR", &len, err);
    if (e != DRV_OK)
        return e;
    int rc = mbedtls_x509_csr_parse(csr, (const unsigned char *)csr_pem, len + 1);
    if (rc != 0)
        return drv_pki_int_fail(err, DRV_ERR_INVALID, rc, "CSR: not a PEM certificate request");
    e = drv_pki_int_check_p256(&csr->pk, "CSR key", err);
    if (e != DRV_OK)
        return e;
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(csr->sig_md);
    if (md == NULL || (csr->sig_md != MBEDTLS_MD_SHA256 && csr->sig_md != MBEDTLS_MD_SHA384 &&
                       csr->sig_md != MBEDTLS_MD_SHA512))
        return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                             "CSR: signature hash is not SHA-256, SHA-384 or SHA-512");
    unsigned char hash[MBEDTLS_MD_MAX_SIZE];
    rc = mbedtls_md(md, csr->cri.p, csr->cri.len, hash);
    if (rc == 0)
        rc = mbedtls_pk_verify_ext(csr->sig_pk, csr->sig_opts, &csr->pk, csr->sig_md, hash,
                                   mbedtls_md_get_size(md), csr->sig.p, csr->sig.len);
    if (rc != 0)
        return drv_pki_int_fail(err, DRV_ERR_INTEGRITY, rc, "CSR: signature does not verify");
    return subject_cn(&csr->subject, true, "CSR", cn, err);
}

drv_err_t drv_pki_csr_parse(const char *csr_pem, char cn[DRV_PKI_CN_MAX + 1], char **pub_pem,
                            drv_error_t *err)
{
    mbedtls_x509_csr csr;
    mbedtls_x509_csr_init(&csr);
    char name[DRV_PKI_CN_MAX + 1];
    drv_err_t e = csr_load(csr_pem, &csr, name, err);
    char *pub = NULL;
    if (e == DRV_OK && pub_pem != NULL)
        e = drv_pki_int_pub_pem(&csr.pk, &pub, err);
    if (e == DRV_OK) {
        memcpy(cn, name, strlen(name) + 1);
        if (pub_pem != NULL)
            *pub_pem = pub;
    }
    mbedtls_x509_csr_free(&csr);
    return e;
}

/* ---- Issue ---- */

static drv_err_t check_issue(const drv_pki_issue_t *o, ip_bytes_t *ips, drv_error_t *err)
{
    char why[160];
    if (o == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "issue: options required");
    if (o->usage == 0 || (o->usage & ~(DRV_PKI_CLIENT_AUTH | DRV_PKI_SERVER_AUTH)) != 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "issue: usage: must be client auth, server auth or both");
    if (o->n_dns > DRV_PKI_SAN_MAX || o->n_ips > DRV_PKI_SAN_MAX)
        return drv_error_set(err, DRV_ERR_RANGE, 0,
                             "issue: at most %d DNS names and %d IP addresses", DRV_PKI_SAN_MAX,
                             DRV_PKI_SAN_MAX);
    if ((o->n_dns > 0 && o->dns_names == NULL) || (o->n_ips > 0 && o->ip_addrs == NULL))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "issue: SAN list missing");
    for (size_t i = 0; i < o->n_dns; i++) {
        const char *d = o->dns_names[i];
        if (d == NULL || !drv_name_dns_subdomain(d, why, sizeof why))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "issue: dnsNames[%zu] \"%.64s\": %s", i,
                                 d ? d : "", d ? why : "required");
    }
    for (size_t i = 0; i < o->n_ips; i++) {
        const char *a = o->ip_addrs[i];
        if (a != NULL && inet_pton(AF_INET, a, ips[i].b) == 1)
            ips[i].len = 4;
        else if (a != NULL && inet_pton(AF_INET6, a, ips[i].b) == 1)
            ips[i].len = 16;
        else
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "issue: ipAddresses[%zu] \"%.64s\": not an IPv4 or IPv6 address",
                                 i, a ? a : "");
    }
    return DRV_OK;
}

static drv_err_t issue(const char *ca_key_pem, const char *ca_cert_pem, mbedtls_pk_context *sub,
                       const char *cn, const drv_pki_issue_t *o, char **cert_pem, drv_error_t *err)
{
    ip_bytes_t ips[DRV_PKI_SAN_MAX];
    drv_err_t e = check_issue(o, ips, err);
    if (e != DRV_OK)
        return e;
    if (drv_proto_check_node(cn, err) != DRV_OK)
        return drv_error_wrap(err, "issue: CN");
    mbedtls_pk_context ca_key;
    mbedtls_pk_init(&ca_key);
    mbedtls_x509_crt ca;
    mbedtls_x509_crt_init(&ca);
    mbedtls_x509write_cert crt;
    mbedtls_x509write_crt_init(&crt);
    unsigned char *der = NULL;
    e = drv_pki_int_load_key(ca_key_pem, &ca_key, "CA key", err);
    if (e == DRV_OK)
        e = parse_cert(ca_cert_pem, &ca, "CA certificate", err);
    if (e != DRV_OK)
        goto out;
    if (!ca.ca_istrue) {
        e = drv_error_set(err, DRV_ERR_INVALID, 0, "CA certificate: not a CA (basicConstraints)");
        goto out;
    }
    int rc = mbedtls_pk_check_pair(&ca.pk, &ca_key);
    if (rc != 0) {
        e = drv_pki_int_fail(err, DRV_ERR_INVALID, rc, "CA key does not match the CA certificate");
        goto out;
    }
    char issuer[512], subject[DRV_PKI_CN_MAX + 8];
    if (mbedtls_x509_dn_gets(issuer, sizeof issuer, &ca.subject) < 0) {
        e = drv_error_set(err, DRV_ERR_INVALID, 0, "CA certificate: subject too long");
        goto out;
    }
    if (drv_fmt(subject, sizeof subject, "CN=%s", cn) != DRV_OK) {
        e = drv_error_set(err, DRV_ERR_INVALID, 0, "CN: longer than %d characters", DRV_PKI_CN_MAX);
        goto out;
    }
    mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&crt, sub);
    mbedtls_x509write_crt_set_issuer_key(&crt, &ca_key);
    e = validity(&crt, o->not_before, o->days, x509_time_unix(&ca.valid_to), err);
    if (e == DRV_OK)
        e = set_serial(&crt, err);
    if (e != DRV_OK)
        goto out;
    rc = mbedtls_x509write_crt_set_subject_name(&crt, subject);
    if (rc == 0)
        rc = mbedtls_x509write_crt_set_issuer_name(&crt, issuer);
    if (rc == 0)
        rc = mbedtls_x509write_crt_set_basic_constraints(&crt, 0, -1);
    if (rc == 0)
        rc = mbedtls_x509write_crt_set_subject_key_identifier(&crt);
    if (rc == 0)
        rc = mbedtls_x509write_crt_set_authority_key_identifier(&crt);
    if (rc == 0)
        rc = mbedtls_x509write_crt_set_key_usage(&crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE);
    if (rc != 0) {
        e = drv_pki_int_fail(err, DRV_ERR_INVALID, rc, "issue %s", cn);
        goto out;
    }
    size_t dersz = 128 + DRV_PKI_SAN_MAX * (256 + 4) + DRV_PKI_SAN_MAX * (16 + 4);
    der = malloc(dersz);
    if (der == NULL) {
        e = drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "issue %s", cn);
        goto out;
    }
    unsigned char *p;
    int n = eku_der(der, dersz, o->usage, &p);
    if (n > 0)
        rc = mbedtls_x509write_crt_set_extension(&crt, MBEDTLS_OID_EXTENDED_KEY_USAGE,
                                                 MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
                                                 0, p, (size_t)n);
    else
        rc = n;
    if (rc == 0 && o->n_dns + o->n_ips > 0) {
        n = san_der(der, dersz, o, ips, &p);
        if (n > 0)
            rc = mbedtls_x509write_crt_set_extension(&crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                     MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME),
                                                     0, p, (size_t)n);
        else
            rc = n;
    }
    if (rc != 0) {
        e = drv_pki_int_fail(err, DRV_ERR_INVALID, rc, "issue %s: extensions", cn);
        goto out;
    }
    e = write_pem(&crt, &ca_key, cert_pem, err);
out:
    free(der);
    mbedtls_x509write_crt_free(&crt);
    mbedtls_x509_crt_free(&ca);
    mbedtls_pk_free(&ca_key);
    return e;
}

drv_err_t drv_pki_issue_csr(const char *ca_key_pem, const char *ca_cert_pem, const char *csr_pem,
                            const drv_pki_issue_t *opts, char **cert_pem, drv_error_t *err)
{
    if (opts == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "issue: options required");
    mbedtls_x509_csr csr;
    mbedtls_x509_csr_init(&csr);
    char cn[DRV_PKI_CN_MAX + 1];
    drv_err_t e = csr_load(csr_pem, &csr, cn, err);
    if (e == DRV_OK && opts->cn != NULL && strcmp(opts->cn, cn) != 0)
        e = drv_error_set(err, DRV_ERR_CONFLICT, 0, "CSR: CN \"%s\" is not the node name \"%.64s\"",
                          cn, opts->cn);
    if (e == DRV_OK)
        e = issue(ca_key_pem, ca_cert_pem, &csr.pk, cn, opts, cert_pem, err);
    mbedtls_x509_csr_free(&csr);
    return e;
}

drv_err_t drv_pki_issue_key(const char *ca_key_pem, const char *ca_cert_pem, const char *pub_pem,
                            const drv_pki_issue_t *opts, char **cert_pem, drv_error_t *err)
{
    if (opts == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "issue: options required");
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    drv_err_t e = drv_pki_int_load_pub(pub_pem, &pk, "issue: public key", err);
    if (e == DRV_OK)
        e = issue(ca_key_pem, ca_cert_pem, &pk, opts->cn, opts, cert_pem, err);
    mbedtls_pk_free(&pk);
    return e;
}

/* ---- Verify and inspect ---- */

static drv_err_t check_time(const mbedtls_x509_crt *c, int64_t at, const char *what,
                            drv_error_t *err)
{
    int64_t nb = x509_time_unix(&c->valid_from), na = x509_time_unix(&c->valid_to);
    char ts[TIME_STR];
    if (at < nb)
        return drv_error_set(err, DRV_ERR_INTEGRITY, 0, "%s: not valid before %sZ", what,
                             unix_time_str(nb, ts) == DRV_OK ? ts : "?");
    if (at > na)
        return drv_error_set(err, DRV_ERR_INTEGRITY, 0, "%s: expired at %sZ", what,
                             unix_time_str(na, ts) == DRV_OK ? ts : "?");
    return DRV_OK;
}

drv_err_t drv_pki_cert_verify(const char *cert_pem, const char *ca_pem, int64_t at, unsigned usage,
                              drv_error_t *err)
{
    mbedtls_x509_crt leaf, ca;
    mbedtls_x509_crt_init(&leaf);
    mbedtls_x509_crt_init(&ca);
    size_t calen = 0;
    drv_err_t e = parse_cert(cert_pem, &leaf, "certificate", err);
    if (e == DRV_OK)
        e = drv_pki_int_text(ca_pem, DRV_PKI_PEM_MAX, "CA certificate", &calen, err);
    if (e != DRV_OK)
        goto out;
    int rc = mbedtls_x509_crt_parse(&ca, (const unsigned char *)ca_pem, calen + 1);
    if (rc != 0) {
        e = drv_pki_int_fail(err, DRV_ERR_INVALID, rc < 0 ? rc : 0,
                             "CA certificate: not a PEM certificate");
        goto out;
    }
    if (at == 0)
        at = now_unix();
    char cn[DRV_PKI_CN_MAX + 1];
    (void)subject_cn(&leaf.subject, false, "certificate", cn, NULL);
    if (leaf.ca_istrue) {
        e = drv_error_set(err, DRV_ERR_INTEGRITY, 0,
                          "certificate \"%s\": a CA certificate, not an identity", cn);
        goto out;
    }
    uint32_t flags = 0;
    rc = mbedtls_x509_crt_verify_with_profile(&leaf, &ca, NULL, &strict_profile, NULL, &flags, NULL,
                                              NULL);
    /* mbedTLS judges validity by the clock; this function by at. */
    flags &= ~(uint32_t)(MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE |
                         MBEDTLS_X509_BADCRL_EXPIRED | MBEDTLS_X509_BADCRL_FUTURE);
    if (flags != 0) {
        char info[512];
        int n = mbedtls_x509_crt_verify_info(info, sizeof info, "", flags);
        if (n > 0 && info[n - 1] == '\n')
            info[n - 1] = '\0';
        for (char *q = info; *q; q++)
            if (*q == '\n')
                *q = ';';
        e = drv_error_set(err, DRV_ERR_INTEGRITY, 0, "certificate \"%s\": %s", cn,
                          n > 0 ? info : "not trusted");
        goto out;
    }
    if (rc != 0 && rc != MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
        e = drv_pki_int_fail(err, DRV_ERR_INTEGRITY, rc, "certificate \"%s\"", cn);
        goto out;
    }
    char what[DRV_PKI_CN_MAX + 32];
    drv_fmt_cut(what, sizeof what, "certificate \"%s\"", cn);
    e = check_time(&leaf, at, what, err);
    if (e != DRV_OK)
        goto out;
    for (const mbedtls_x509_crt *c = &ca; c != NULL; c = c->next) {
        if (c->subject_raw.len == leaf.issuer_raw.len &&
            memcmp(c->subject_raw.p, leaf.issuer_raw.p, c->subject_raw.len) == 0) {
            e = check_time(c, at, "CA certificate", err);
            if (e != DRV_OK)
                goto out;
        }
    }
    unsigned have = cert_usage(&leaf);
    if ((usage & ~have) != 0)
        e = drv_error_set(err, DRV_ERR_INTEGRITY, 0, "%s: not valid for %s authentication", what,
                          (usage & ~have & DRV_PKI_CLIENT_AUTH) ? "client" : "server");
out:
    mbedtls_x509_crt_free(&ca);
    mbedtls_x509_crt_free(&leaf);
    return e;
}

void drv_pki_fingerprint_der(const void *der, size_t len, char out[DRV_PKI_FINGERPRINT_MAX])
{
    drv_digest_t d;
    drv_digest_of(der, len, &d);
    drv_digest_format(&d, out);
}

drv_err_t drv_pki_cert_info(const char *cert_pem, drv_pki_cert_info_t *out, drv_error_t *err)
{
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    drv_err_t e = parse_cert(cert_pem, &crt, "certificate", err);
    if (e == DRV_OK) {
        drv_pki_cert_info_t info;
        memset(&info, 0, sizeof info);
        (void)subject_cn(&crt.subject, false, "certificate", info.cn, NULL);
        size_t i = 0;
        while (i + 1 < crt.serial.len && crt.serial.p[i] == 0)
            i++;
        size_t o = 0;
        static const char hex[] = "0123456789abcdef";
        for (; i < crt.serial.len && o + 2 < sizeof info.serial; i++, o += 2) {
            info.serial[o] = hex[crt.serial.p[i] >> 4]; /* info is zeroed: stays terminated */
            info.serial[o + 1] = hex[crt.serial.p[i] & 15];
        }
        drv_pki_fingerprint_der(crt.raw.p, crt.raw.len, info.fingerprint);
        info.not_before = x509_time_unix(&crt.valid_from);
        info.not_after = x509_time_unix(&crt.valid_to);
        info.is_ca = crt.ca_istrue != 0;
        info.usage = cert_usage(&crt);
        *out = info;
    }
    mbedtls_x509_crt_free(&crt);
    return e;
}

drv_err_t drv_pki_cert_pubkey(const char *cert_pem, char **pub_pem, drv_error_t *err)
{
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    drv_err_t e = parse_cert(cert_pem, &crt, "certificate", err);
    if (e == DRV_OK)
        e = drv_pki_int_check_p256(&crt.pk, "certificate key", err);
    if (e == DRV_OK)
        e = drv_pki_int_pub_pem(&crt.pk, pub_pem, err);
    mbedtls_x509_crt_free(&crt);
    return e;
}

drv_err_t drv_pki_cert_check_host(const void *der, size_t len, const char *host, drv_error_t *err)
{
    if (host == NULL || host[0] == '\0')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "host: required");
    size_t hlen = strnlen(host, 254);
    if (hlen > 253)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "host: longer than 253 characters");
    if (der == NULL || len == 0 || len > DRV_PKI_PEM_MAX)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "certificate: no DER or too long");
    unsigned char ip[16];
    size_t iplen = 0;
    if (inet_pton(AF_INET, host, ip) == 1)
        iplen = 4;
    else if (inet_pton(AF_INET6, host, ip) == 1)
        iplen = 16;
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    drv_err_t e = DRV_OK;
    int rc = mbedtls_x509_crt_parse_der(&crt, der, len);
    if (rc != 0) {
        e = drv_pki_int_fail(err, DRV_ERR_INVALID, rc, "certificate: not DER");
        goto out;
    }
    const unsigned char tag_dns = MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2,
                        tag_ip = MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7;
    if (crt.ext_types & MBEDTLS_X509_EXT_SUBJECT_ALT_NAME) {
        for (const mbedtls_x509_sequence *s = &crt.subject_alt_names; s != NULL; s = s->next) {
            if (iplen > 0 && s->buf.tag == tag_ip && s->buf.len == iplen &&
                memcmp(s->buf.p, ip, iplen) == 0)
                goto out;
            if (iplen == 0 && s->buf.tag == tag_dns && s->buf.len == hlen &&
                strncasecmp((const char *)s->buf.p, host, hlen) == 0)
                goto out;
        }
    }
    char cn[DRV_PKI_CN_MAX + 1];
    (void)subject_cn(&crt.subject, false, "certificate", cn, NULL);
    e = drv_error_set(err, DRV_ERR_INTEGRITY, 0, "certificate \"%s\" is not for %s %.253s", cn,
                      iplen > 0 ? "address" : "host", host);
out:
    mbedtls_x509_crt_free(&crt);
    return e;
}

drv_err_t drv_pki_key_matches_cert(const char *key_pem, const char *cert_pem, drv_error_t *err)
{
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    drv_err_t e = drv_pki_int_load_key(key_pem, &pk, "private key", err);
    if (e == DRV_OK)
        e = parse_cert(cert_pem, &crt, "certificate", err);
    if (e == DRV_OK && mbedtls_pk_check_pair(&crt.pk, &pk) != 0)
        e = drv_error_set(err, DRV_ERR_INTEGRITY, 0,
                          "private key does not belong to the certificate");
    mbedtls_x509_crt_free(&crt);
    mbedtls_pk_free(&pk);
    return e;
}
