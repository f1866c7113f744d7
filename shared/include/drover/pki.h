/* The fleet's cryptography, over mbedTLS 2.28: EC P-256 keys, a self-signed CA, CSRs, issued
 * client/server certificates and their verification, ECDSA signatures over desired state,
 * data sealed to a node's public key (ECDH + HKDF-SHA256 + AES-256-GCM) and at-rest AEAD with
 * rotatable keys. Keys, certificates and CSRs go in and out as PEM text.
 *
 * Conventions. Every function that can fail returns drv_err_t and records in err what failed
 * ("CSR: signature does not verify"). Output pointers are malloc'd (caller frees) and left
 * untouched on failure. Buffers that hold a private key or decrypted data are secrets: free
 * them with drv_pki_secret_free / drv_pki_wipe_free, which wipe before freeing. Text inputs are
 * NUL-terminated and capped (DRV_PKI_PEM_MAX, DRV_PKI_DATA_MAX): longer is DRV_ERR_TOOBIG.
 *
 * Randomness comes from one CTR_DRBG inside this module, seeded from getrandom(2) and reseeded
 * in a forked child. It is guarded by a mutex, so every function may be called from any thread;
 * nothing else here keeps state. */
#ifndef DROVER_PKI_H
#define DROVER_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "drover/error.h"

#define DRV_PKI_PEM_MAX (16 * 1024)        /* a key, certificate or CSR, as PEM text */
#define DRV_PKI_DATA_MAX (8 * 1024 * 1024) /* plaintext sealed or encrypted at rest */
#define DRV_PKI_CN_MAX 64                  /* common name, characters */
#define DRV_PKI_SERIAL_MAX 65              /* serial as hex (up to 32 bytes) + NUL */
#define DRV_PKI_FINGERPRINT_MAX 72         /* "sha256:" + 64 hex digits + NUL */
#define DRV_PKI_DAYS_MAX 7300              /* longest validity, days */
#define DRV_PKI_SAN_MAX 32                 /* DNS names, and IP addresses, per certificate */
#define DRV_PKI_AEAD_KEY_LEN 32            /* AES-256 */
#define DRV_PKI_KEY_ID_MAX 17              /* at-rest key id: 1-16 of [A-Za-z0-9_-] + NUL */
#define DRV_PKI_SKEW 300                   /* certificates start this many seconds back */

/* Wipes strlen(s) + 1 bytes of s, then frees it. NULL is a no-op. For private key PEM. */
DRV_API void drv_pki_secret_free(char *s);
/* Wipes n bytes at p, then frees it. NULL is a no-op. For opened/decrypted data. */
DRV_API void drv_pki_wipe_free(void *p, size_t n);
static inline void drv_pki_secret_freep(char **p)
{
    drv_pki_secret_free(*p);
}
#define _cleanup_secret_ __attribute__((cleanup(drv_pki_secret_freep)))

/* Fills n bytes from the module's CTR_DRBG. */
DRV_API DRV_NODISCARD drv_err_t drv_pki_random(void *out, size_t n, drv_error_t *err);

/* ---- Keys (EC P-256 only) ---- */

/* A new private key, PEM ("EC PRIVATE KEY", SEC1) in *key_pem (free with drv_pki_secret_free). */
DRV_API DRV_NODISCARD drv_err_t drv_pki_key_generate(char **key_pem, drv_error_t *err);
/* The public key of a private key, PEM ("PUBLIC KEY", SubjectPublicKeyInfo). */
DRV_API DRV_NODISCARD drv_err_t drv_pki_key_public(const char *key_pem, char **pub_pem,
                                                   drv_error_t *err);
/* DRV_OK if key_pem is a well-formed, consistent P-256 private key; another curve or
 * algorithm is DRV_ERR_UNSUPPORTED, anything else DRV_ERR_INVALID. */
DRV_API DRV_NODISCARD drv_err_t drv_pki_key_check(const char *key_pem, drv_error_t *err);
/* The same for a public key PEM. */
DRV_API DRV_NODISCARD drv_err_t drv_pki_pubkey_check(const char *pub_pem, drv_error_t *err);
/* DRV_OK if the private key belongs to the certificate, else DRV_ERR_INTEGRITY. */
DRV_API DRV_NODISCARD drv_err_t drv_pki_key_matches_cert(const char *key_pem, const char *cert_pem,
                                                         drv_error_t *err);

/* ---- Certificates ---- */

/* Extended key usage of an issued certificate (either or both). */
#define DRV_PKI_CLIENT_AUTH 0x1u
#define DRV_PKI_SERVER_AUTH 0x2u

/* A self-signed CA certificate for key_pem: subject CN=cn (1-64 printable ASCII characters,
 * none of ,=+"\<>#;), basicConstraints CA:true pathlen 0, keyCertSign|cRLSign, valid from
 * not_before (unix time; 0: now - DRV_PKI_SKEW) for days (1..DRV_PKI_DAYS_MAX). */
DRV_API DRV_NODISCARD drv_err_t drv_pki_ca_create(const char *key_pem, const char *cn,
                                                  int64_t not_before, uint32_t days,
                                                  char **cert_pem, drv_error_t *err);

/* A CSR with subject CN=cn (a node name: drv_proto_check_node) signed by key_pem (SHA-256). */
DRV_API DRV_NODISCARD drv_err_t drv_pki_csr_create(const char *key_pem, const char *cn,
                                                   char **csr_pem, drv_error_t *err);

/* Parses a CSR (PEM) and verifies its self-signature. It must carry exactly one CN, a valid
 * node name (copied to cn), and a P-256 key (PEM to *pub_pem, caller frees; may be NULL).
 * Malformed: DRV_ERR_INVALID; bad signature: DRV_ERR_INTEGRITY; another key type or curve:
 * DRV_ERR_UNSUPPORTED. The message starts with "CSR". */
DRV_API DRV_NODISCARD drv_err_t drv_pki_csr_parse(const char *csr_pem, char cn[DRV_PKI_CN_MAX + 1],
                                                  char **pub_pem, drv_error_t *err);

/* What to put in an issued certificate. */
typedef struct drv_pki_issue {
    const char *cn;               /* node name; NULL with a CSR: the CSR's CN (else must match) */
    unsigned usage;               /* DRV_PKI_CLIENT_AUTH and/or DRV_PKI_SERVER_AUTH, required */
    const char *const *dns_names; /* subjectAltName DNS names (DNS subdomains), may be NULL */
    size_t n_dns;                 /* <= DRV_PKI_SAN_MAX */
    const char *const *ip_addrs;  /* subjectAltName IP addresses, IPv4 or IPv6 text */
    size_t n_ips;                 /* <= DRV_PKI_SAN_MAX */
    int64_t not_before;           /* unix time; 0: now - DRV_PKI_SKEW */
    uint32_t days;                /* 1..DRV_PKI_DAYS_MAX; cut at the CA's own notAfter */
} drv_pki_issue_t;

/* Signs a certificate for the CSR's key with the CA (key and certificate must match): random
 * positive 128-bit serial, basicConstraints CA:false, keyUsage digitalSignature, the extended
 * key usage and SANs of opts, subject and authority key identifiers. The CSR is checked as
 * drv_pki_csr_parse. */
DRV_API DRV_NODISCARD drv_err_t drv_pki_issue_csr(const char *ca_key_pem, const char *ca_cert_pem,
                                                  const char *csr_pem, const drv_pki_issue_t *opts,
                                                  char **cert_pem, drv_error_t *err);
/* The same for a public key PEM (P-256) and opts->cn (required). */
DRV_API DRV_NODISCARD drv_err_t drv_pki_issue_key(const char *ca_key_pem, const char *ca_cert_pem,
                                                  const char *pub_pem, const drv_pki_issue_t *opts,
                                                  char **cert_pem, drv_error_t *err);

/* Verifies that cert_pem (one certificate, not a CA) is signed by a certificate of ca_pem
 * (one or more CA certificates), that both are valid at time at (unix; 0: now), and, with
 * usage != 0, that its extended key usage allows each bit of usage. Only ECDSA P-256 with
 * SHA-256 or better is accepted. Bad signature, wrong CA, expired or not yet valid, wrong
 * usage: DRV_ERR_INTEGRITY with the reason; malformed PEM: DRV_ERR_INVALID. */
DRV_API DRV_NODISCARD drv_err_t drv_pki_cert_verify(const char *cert_pem, const char *ca_pem,
                                                    int64_t at, unsigned usage, drv_error_t *err);

typedef struct drv_pki_cert_info {
    char cn[DRV_PKI_CN_MAX + 1];               /* "" when the subject has no CN */
    char serial[DRV_PKI_SERIAL_MAX];           /* lowercase hex, no leading zero bytes */
    char fingerprint[DRV_PKI_FINGERPRINT_MAX]; /* "sha256:<hex of the DER>" */
    int64_t not_before, not_after;             /* unix time */
    bool is_ca;
    unsigned usage; /* DRV_PKI_*_AUTH bits of its EKU */
} drv_pki_cert_info_t;

/* Parses one certificate (PEM) and describes it. Malformed: DRV_ERR_INVALID. */
DRV_API DRV_NODISCARD drv_err_t drv_pki_cert_info(const char *cert_pem, drv_pki_cert_info_t *out,
                                                  drv_error_t *err);
/* The public key of a certificate, PEM (to seal data to a node by its certificate). */
DRV_API DRV_NODISCARD drv_err_t drv_pki_cert_pubkey(const char *cert_pem, char **pub_pem,
                                                    drv_error_t *err);
/* "sha256:<hex>" of DER bytes (a certificate as a TLS handshake presents it): what agents pin. */
DRV_API void drv_pki_fingerprint_der(const void *der, size_t len,
                                     char out[DRV_PKI_FINGERPRINT_MAX]);

/* DRV_OK if the certificate (DER, as a TLS handshake presents it) names host in its
 * subjectAltName: a DNS name (exact, case-insensitive, no wildcards) or an IP address (IPv4 or
 * IPv6 text, compared as bytes). mbedTLS 2.28's own host check (mbedtls_ssl_set_hostname)
 * matches DNS names only, so a client that reaches the hub by IP address verifies with this in
 * its verify callback instead. Not named: DRV_ERR_INTEGRITY; malformed DER: DRV_ERR_INVALID. */
DRV_API DRV_NODISCARD drv_err_t drv_pki_cert_check_host(const void *der, size_t len,
                                                        const char *host, drv_error_t *err);

/* ---- Signatures: ECDSA P-256 over SHA-256 of the bytes ---- */

/* Signs len bytes at msg with key_pem; *sig_b64 is the DER signature in base64. */
DRV_API DRV_NODISCARD drv_err_t drv_pki_sign(const char *key_pem, const void *msg, size_t len,
                                             char **sig_b64, drv_error_t *err);
/* DRV_OK if sig_b64 is key pub_pem's signature of the bytes. A signature that does not verify
 * for any reason (not base64, not DER, other key, other message) is DRV_ERR_INTEGRITY; a
 * malformed public key is DRV_ERR_INVALID. */
DRV_API DRV_NODISCARD drv_err_t drv_pki_verify(const char *pub_pem, const void *msg, size_t len,
                                               const char *sig_b64, drv_error_t *err);

/* ---- Sealed to a node's key: ECDH (ephemeral P-256) + HKDF-SHA256 + AES-256-GCM ----
 * Blob (base64 of): version 0x01 | ephemeral point (65 bytes, uncompressed) | nonce (12) |
 * ciphertext | tag (16). The key is HKDF(salt = ephemeral point | recipient point,
 * ikm = ECDH secret, info = "drover-seal-v1"); context (may be NULL = "") is authenticated
 * with the version byte, so a blob opens only under the context it was sealed with. */
#define DRV_PKI_SEAL_OVERHEAD (1 + 65 + 12 + 16)

DRV_API DRV_NODISCARD drv_err_t drv_pki_seal(const char *pub_pem, const char *context,
                                             const void *data, size_t len, char **blob_b64,
                                             drv_error_t *err);
/* Opens a sealed blob with the recipient's private key: *out (len bytes, NUL-terminated for
 * convenience; free with drv_pki_wipe_free(*out, *outlen)). Every way the blob can be wrong
 * (not base64, truncated, any flipped bit, other key, other context) is DRV_ERR_INTEGRITY;
 * a malformed private key is DRV_ERR_INVALID. */
DRV_API DRV_NODISCARD drv_err_t drv_pki_open(const char *key_pem, const char *context,
                                             const char *blob_b64, unsigned char **out,
                                             size_t *outlen, drv_error_t *err);

/* ---- At rest: AES-256-GCM with a 32-byte key and a key id ----
 * Text: "<key id>:" base64(nonce (12) | ciphertext | tag (16)). The key id and aad (e.g. the
 * object's "namespace/name") are authenticated, so a ciphertext moved to another object or
 * relabelled with another key id does not open. */

/* A new random key. */
DRV_API DRV_NODISCARD drv_err_t drv_pki_aead_key_generate(unsigned char key[DRV_PKI_AEAD_KEY_LEN],
                                                          drv_error_t *err);
DRV_API DRV_NODISCARD drv_err_t drv_pki_aead_seal(const char *key_id,
                                                  const unsigned char key[DRV_PKI_AEAD_KEY_LEN],
                                                  const void *aad, size_t aad_len, const void *data,
                                                  size_t len, char **out, drv_error_t *err);
/* The key id a ciphertext names (to pick the key when several are in rotation). */
DRV_API DRV_NODISCARD drv_err_t drv_pki_aead_key_id(const char *text, char id[DRV_PKI_KEY_ID_MAX],
                                                    drv_error_t *err);
/* Decrypts text with key key_id: a ciphertext of another key id is DRV_ERR_NOTFOUND (naming
 * both); anything tampered, truncated or of another aad is DRV_ERR_INTEGRITY. *out as
 * drv_pki_open. */
DRV_API DRV_NODISCARD drv_err_t drv_pki_aead_open(const char *key_id,
                                                  const unsigned char key[DRV_PKI_AEAD_KEY_LEN],
                                                  const void *aad, size_t aad_len, const char *text,
                                                  unsigned char **out, size_t *outlen,
                                                  drv_error_t *err);

#endif
