/* libFuzzer target for what pki reads from the network or a store: the first byte picks a
 * parser (CSR, certificate, sealed blob, at-rest ciphertext, signature, keys, DER certificate
 * host check), the rest is the input. Nothing crashes or leaks; a failure records its code and
 * names what failed; a CSR that parses has a valid node name and a usable P-256 key; blobs and
 * signatures nobody with the keys made never open or verify. The keys below are test keys. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/pki.h"
#include "drover/protocol.h"

static const char ca_cert[] = "-----BEGIN CERTIFICATE-----\n"
                              "MIIBmzCCAT6gAwIBAgIQS6HnYXaqmXlivrbQpO0M7zAMBggqhkjOPQQDAgUAMBkx\n"
                              "FzAVBgNVBAMMDkRyb3ZlciBmdXp6IENBMB4XDTI2MTEyNTE1MDkxM1oXDTQ2MTEy\n"
                              "MDE1MDkxM1owGTEXMBUGA1UEAwwORHJvdmVyIGZ1enogQ0EwWTATBgcqhkjOPQIB\n"
                              "BggqhkjOPQMBBwNCAARVW1CkzUM4dJ09McqfFWy7u3dFZDw4ohUhufyGYQ2qzXE1\n"
                              "LaTey1u28hpwMDvb2sSleWzMiFgnhBfPoKQkRXyAo2YwZDASBgNVHRMBAf8ECDAG\n"
                              "AQH/AgEAMB0GA1UdDgQWBBS/NsUA8gz5KwB3dU75IbpmCNlWcjAfBgNVHSMEGDAW\n"
                              "gBS/NsUA8gz5KwB3dU75IbpmCNlWcjAOBgNVHQ8BAf8EBAMCAYYwDAYIKoZIzj0E\n"
                              "AwIFAANJADBGAiEA+p4uik3XRflfAQWE9s+n3ZKfhERlKmsmEez5+38ptJYCIQCU\n"
                              "bcWxObKHzVV8Zrzzk239wgzwtpiwyOycLRuwEs1JEQ==\n"
                              "-----END CERTIFICATE-----\n";

static const char node_key[] = "-----BEGIN EC PRIVATE KEY-----\n"
                               "MHcCAQEEIAr1V4gavgvoJIK3KsKlhghvyIQSCoymQjrnPXJEhT9/oAoGCCqGSM49\n"
                               "AwEHoUQDQgAErHY0vvlsYsOG3HIId3VWZXHOA9709vRWI8kWaM9iNsdlBzJyr8d4\n"
                               "g3ob87IC27v8DY1S4tsavF5G8fQkWx0yTQ==\n"
                               "-----END EC PRIVATE KEY-----\n";

static const char node_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                               "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAErHY0vvlsYsOG3HIId3VWZXHOA970\n"
                               "9vRWI8kWaM9iNsdlBzJyr8d4g3ob87IC27v8DY1S4tsavF5G8fQkWx0yTQ==\n"
                               "-----END PUBLIC KEY-----\n";

static const unsigned char aead_key[DRV_PKI_AEAD_KEY_LEN] = "drover-fuzz-at-rest-key-32-byte";

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_pki: %s: %s\n", what, detail);
    abort();
}

static void check_err(drv_err_t rc, const drv_error_t *err, const char *prefix)
{
    if (rc == DRV_OK)
        return;
    if (err->code != rc)
        die("error code not recorded", drv_error_msg(err));
    if (rc != DRV_ERR_NOMEM && strstr(drv_error_msg(err), prefix) == NULL)
        die("error does not name the input", drv_error_msg(err));
}

static void csr(const char *text)
{
    drv_error_t err = DRV_ERROR_INIT;
    char cn[DRV_PKI_CN_MAX + 1];
    char *pub = NULL;
    drv_err_t rc = drv_pki_csr_parse(text, cn, &pub, &err);
    check_err(rc, &err, "CSR");
    if (rc != DRV_OK)
        return;
    if (drv_proto_check_node(cn, &err) != DRV_OK)
        die("CSR accepted with a bad CN", cn);
    if (drv_pki_pubkey_check(pub, &err) != DRV_OK)
        die("CSR accepted with a bad key", drv_error_msg(&err));
    free(pub);
}

static void cert(const char *text)
{
    drv_error_t err = DRV_ERROR_INIT;
    drv_pki_cert_info_t info;
    drv_err_t rc = drv_pki_cert_info(text, &info, &err);
    check_err(rc, &err, "certificate");
    if (rc != DRV_OK)
        return;
    if (strlen(info.fingerprint) != 7 + 64 || strlen(info.cn) > DRV_PKI_CN_MAX)
        die("certificate info", info.fingerprint);
    rc = drv_pki_cert_verify(text, ca_cert, 0, DRV_PKI_CLIENT_AUTH, &err);
    check_err(rc, &err, "certificate");
    char *pub = NULL;
    if (drv_pki_cert_pubkey(text, &pub, &err) == DRV_OK)
        free(pub);
}

static void sealed(const char *text)
{
    drv_error_t err = DRV_ERROR_INIT;
    unsigned char *out = NULL;
    size_t outlen = 0;
    drv_err_t rc = drv_pki_open(node_key, "fuzz", text, &out, &outlen, &err);
    if (rc == DRV_OK)
        die("a blob nobody sealed opened", text);
    if (rc != DRV_ERR_INTEGRITY && rc != DRV_ERR_NOMEM)
        die("sealed blob: not an integrity error", drv_error_msg(&err));
    check_err(rc, &err, "sealed data");
}

static void at_rest(const char *text)
{
    drv_error_t err = DRV_ERROR_INIT;
    char id[DRV_PKI_KEY_ID_MAX];
    drv_err_t rc = drv_pki_aead_key_id(text, id, &err);
    check_err(rc, &err, "encrypted data");
    unsigned char *out = NULL;
    size_t outlen = 0;
    rc = drv_pki_aead_open("k1", aead_key, "ns/name", 7, text, &out, &outlen, &err);
    if (rc == DRV_OK)
        die("a ciphertext nobody made decrypted", text);
    check_err(rc, &err, "encrypted data");
}

static void signature(const char *text, size_t n)
{
    /* "<signature>\n<message>" */
    const char *nl = memchr(text, '\n', n);
    if (nl == NULL)
        return;
    char *sig = strndup(text, (size_t)(nl - text));
    if (sig == NULL)
        return;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_pki_verify(node_pub, nl + 1, n - (size_t)(nl + 1 - text), sig, &err);
    if (rc == DRV_OK)
        die("a signature nobody made verified", sig);
    if (rc != DRV_ERR_INTEGRITY)
        die("signature: not an integrity error", drv_error_msg(&err));
    free(sig);
}

static void keys(const char *text)
{
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_pki_pubkey_check(text, &err);
    check_err(rc, &err, "public key");
    rc = drv_pki_key_check(text, &err);
    check_err(rc, &err, "private key");
}

static void host(const uint8_t *der, size_t n)
{
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_pki_cert_check_host(der, n, "127.0.0.1", &err);
    check_err(rc, &err, "certificate");
    rc = drv_pki_cert_check_host(der, n, "hub.local", &err);
    check_err(rc, &err, "certificate");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > DRV_PKI_PEM_MAX + 2)
        return 0;
    size_t n = size - 1;
    char *text = malloc(n + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, n);
    text[n] = '\0';
    switch (data[0] % 7) {
    case 0:
        csr(text);
        break;
    case 1:
        cert(text);
        break;
    case 2:
        sealed(text);
        break;
    case 3:
        at_rest(text);
        break;
    case 4:
        signature(text, n);
        break;
    case 5:
        keys(text);
        break;
    case 6:
        host(data + 1, n);
        break;
    }
    free(text);
    return 0;
}
