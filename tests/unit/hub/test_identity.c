/* hub/identity: the first start creates the CA, server and signing files with the right modes;
 * a second start loads the same; a key that does not match its certificate, a server
 * certificate from a foreign CA or a lost CA key is a clear error; an expiring server
 * certificate and one missing a configured SAN are re-issued. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "drover/base64.h"
#include "drover/file.h"
#include "drover/pki.h"
#include "identity/identity.h"

typedef struct {
    char dir[64];
    char pki[96];
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/drv-ident-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->pki, sizeof(f->pki), "%s/pki", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static unsigned mode_of(const fx_t *f, const char *file)
{
    char p[160];
    snprintf(p, sizeof(p), "%s/%s", f->pki, file);
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    return sb.st_mode & 0777;
}

static char *slurp(const fx_t *f, const char *file)
{
    char p[160];
    snprintf(p, sizeof(p), "%s/%s", f->pki, file);
    char *t = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_read_capped(p, DRV_PKI_PEM_MAX, &t, NULL, &err), DRV_OK);
    return t;
}

static void put(const fx_t *f, const char *file, const char *text)
{
    char p[160];
    snprintf(p, sizeof(p), "%s/%s", f->pki, file);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_write_atomic(p, text, strlen(text), 0600, &err), DRV_OK);
}

static drv_identity_t *load(const fx_t *f, const char *const *sans, size_t n, int64_t now)
{
    drv_identity_opts_t o = {
        .data_dir = f->dir, .listen_addr = "0.0.0.0", .sans = sans, .n_sans = n, .now = now};
    drv_identity_t *id = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t e = drv_identity_load(&o, &id, &err);
    if (e != DRV_OK)
        fail_msg("load: %s", drv_error_msg(&err));
    return id;
}

static drv_err_t load_err(const fx_t *f, const char *listen, const char *const *sans, size_t n,
                          char *msg, size_t msgsz)
{
    drv_identity_opts_t o = {.data_dir = f->dir, .listen_addr = listen, .sans = sans, .n_sans = n};
    drv_identity_t *id = (drv_identity_t *)0x1;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t e = drv_identity_load(&o, &id, &err);
    assert_ptr_equal(id, (drv_identity_t *)0x1); /* untouched on failure */
    snprintf(msg, msgsz, "%s", drv_error_msg(&err));
    return e;
}

/* Whether the server certificate names host (DNS or IP). */
static bool names(const char *cert_pem, const char *host)
{
    const char *b = strstr(cert_pem, "-----BEGIN CERTIFICATE-----");
    const char *e = strstr(cert_pem, "-----END CERTIFICATE-----");
    assert_non_null(b);
    assert_non_null(e);
    b += strlen("-----BEGIN CERTIFICATE-----");
    char clean[8192];
    size_t k = 0;
    for (const char *p = b; p < e && k < sizeof(clean) - 1; p++)
        if (*p != '\n' && *p != '\r')
            clean[k++] = *p;
    unsigned char *der = NULL;
    size_t len = 0;
    assert_int_equal(drv_base64_decode(clean, k, &der, &len), DRV_OK);
    drv_error_t err = DRV_ERROR_INIT;
    bool ok = drv_pki_cert_check_host(der, len, host, &err) == DRV_OK;
    free(der);
    return ok;
}

static void test_first_start_creates_files(void **state)
{
    fx_t *f = *state;
    drv_identity_t *id = load(f, NULL, 0, 0);
    assert_true(drv_identity_created(id));
    assert_true(drv_identity_reissued(id));
    struct stat sb;
    assert_int_equal(stat(f->pki, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(mode_of(f, "ca.key"), 0600);
    assert_int_equal(mode_of(f, "server.key"), 0600);
    assert_int_equal(mode_of(f, "signing.key"), 0600);
    assert_int_equal(mode_of(f, "ca.crt") & 077, 044);
    assert_int_equal(mode_of(f, "server.crt") & 077, 044);
    assert_int_equal(mode_of(f, "signing.pub") & 077, 044);
    drv_error_t err = DRV_ERROR_INIT;
    /* The server certificate chains to the CA, for server use, CN drover-hub. */
    assert_int_equal(drv_pki_cert_verify(drv_identity_server_cert(id), drv_identity_ca_cert(id), 0,
                                         DRV_PKI_SERVER_AUTH, &err),
                     DRV_OK);
    drv_pki_cert_info_t info;
    assert_int_equal(drv_pki_cert_info(drv_identity_server_cert(id), &info, &err), DRV_OK);
    assert_string_equal(info.cn, "drover-hub");
    assert_false(info.is_ca);
    assert_int_equal(drv_pki_cert_info(drv_identity_ca_cert(id), &info, &err), DRV_OK);
    assert_true(info.is_ca);
    assert_string_equal(drv_identity_ca_fingerprint(id), info.fingerprint);
    assert_int_equal(strncmp(drv_identity_ca_fingerprint(id), "sha256:", 7), 0);
    assert_int_equal(strlen(drv_identity_ca_fingerprint(id)), 7 + 64);
    /* The signing key signs, signing.pub verifies. */
    char *sig = NULL;
    assert_int_equal(drv_pki_sign(drv_identity_signing_key(id), "x", 1, &sig, &err), DRV_OK);
    assert_int_equal(drv_pki_verify(drv_identity_signing_pub(id), "x", 1, sig, &err), DRV_OK);
    free(sig);
    /* What is in memory is what is on disk. */
    char *disk = slurp(f, "ca.crt");
    assert_string_equal(disk, drv_identity_ca_cert(id));
    free(disk);
    char path[160];
    snprintf(path, sizeof(path), "%s/ca.crt", f->pki);
    assert_string_equal(drv_identity_ca_path(id), path);
    drv_identity_free(id);
}

static void test_second_start_loads_same(void **state)
{
    fx_t *f = *state;
    drv_identity_t *a = load(f, NULL, 0, 0);
    char *ca = strdup(drv_identity_ca_cert(a));
    char *srv = strdup(drv_identity_server_cert(a));
    char *sig = strdup(drv_identity_signing_pub(a));
    char fp[DRV_PKI_FINGERPRINT_MAX];
    snprintf(fp, sizeof(fp), "%s", drv_identity_ca_fingerprint(a));
    drv_identity_free(a);
    drv_identity_t *b = load(f, NULL, 0, 0);
    assert_false(drv_identity_created(b));
    assert_false(drv_identity_reissued(b));
    assert_string_equal(drv_identity_ca_cert(b), ca);
    assert_string_equal(drv_identity_server_cert(b), srv);
    assert_string_equal(drv_identity_signing_pub(b), sig);
    assert_string_equal(drv_identity_ca_fingerprint(b), fp);
    drv_identity_free(b);
    free(ca);
    free(srv);
    free(sig);
}

static void test_key_mismatch_is_error(void **state)
{
    fx_t *f = *state;
    drv_identity_free(load(f, NULL, 0, 0));
    char *other = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_pki_key_generate(&other, &err), DRV_OK);
    char *orig = slurp(f, "server.key");
    put(f, "server.key", other);
    char msg[512];
    assert_int_equal(load_err(f, NULL, NULL, 0, msg, sizeof(msg)), DRV_ERR_INTEGRITY);
    assert_non_null(strstr(msg, "server.key does not belong to"));
    put(f, "server.key", orig);
    put(f, "ca.key", other);
    assert_int_equal(load_err(f, NULL, NULL, 0, msg, sizeof(msg)), DRV_ERR_INTEGRITY);
    assert_non_null(strstr(msg, "ca.key does not belong to"));
    /* Garbage in a key file names it. */
    put(f, "ca.key", "not a key\n");
    assert_int_not_equal(load_err(f, NULL, NULL, 0, msg, sizeof(msg)), DRV_OK);
    assert_non_null(strstr(msg, "ca.key"));
    drv_pki_secret_free(other);
    drv_pki_secret_free(orig);
}

static void test_foreign_ca_is_error(void **state)
{
    fx_t *f = *state;
    drv_identity_free(load(f, NULL, 0, 0));
    /* A server certificate (and key) from another CA. */
    char *k = NULL, *ca = NULL, *sk = NULL, *pub = NULL, *cert = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_pki_key_generate(&k, &err), DRV_OK);
    assert_int_equal(drv_pki_ca_create(k, "other", 0, 30, &ca, &err), DRV_OK);
    assert_int_equal(drv_pki_key_generate(&sk, &err), DRV_OK);
    assert_int_equal(drv_pki_key_public(sk, &pub, &err), DRV_OK);
    drv_pki_issue_t o = {.cn = "drover-hub", .usage = DRV_PKI_SERVER_AUTH, .days = 20};
    assert_int_equal(drv_pki_issue_key(k, ca, pub, &o, &cert, &err), DRV_OK);
    put(f, "server.key", sk);
    put(f, "server.crt", cert);
    char msg[768];
    assert_int_equal(load_err(f, NULL, NULL, 0, msg, sizeof(msg)), DRV_ERR_INTEGRITY);
    assert_non_null(strstr(msg, "server.crt was not issued by"));
    /* A CA certificate whose key is lost: never replaced silently. */
    char p[160];
    snprintf(p, sizeof(p), "%s/ca.key", f->pki);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(load_err(f, NULL, NULL, 0, msg, sizeof(msg)), DRV_ERR_NOTFOUND);
    assert_non_null(strstr(msg, "ca.key is missing"));
    drv_pki_secret_free(k);
    drv_pki_secret_free(sk);
    free(ca);
    free(pub);
    free(cert);
}

static void test_expiring_server_cert_reissued(void **state)
{
    fx_t *f = *state;
    drv_identity_t *a = load(f, NULL, 0, 0);
    char *srv = strdup(drv_identity_server_cert(a));
    char *key = strdup(drv_identity_server_key(a));
    drv_pki_cert_info_t old;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_pki_cert_info(srv, &old, &err), DRV_OK);
    drv_identity_free(a);
    /* 20 days before its end: renewed, with the same key. */
    int64_t later = old.not_after - 20 * 86400;
    drv_identity_t *b = load(f, NULL, 0, later);
    assert_true(drv_identity_reissued(b));
    assert_false(drv_identity_created(b));
    assert_string_not_equal(drv_identity_server_cert(b), srv);
    assert_string_equal(drv_identity_server_key(b), key);
    drv_pki_cert_info_t neu;
    assert_int_equal(drv_pki_cert_info(drv_identity_server_cert(b), &neu, &err), DRV_OK);
    assert_true(neu.not_after > old.not_after);
    drv_identity_free(b);
    /* Well past its end: renewed too, not refused. */
    char *renewed = slurp(f, "server.crt");
    put(f, "server.crt", srv);
    drv_identity_t *c = load(f, NULL, 0, old.not_after + 86400);
    assert_true(drv_identity_reissued(c));
    drv_identity_free(c);
    /* 60 days before: left alone. */
    put(f, "server.crt", srv);
    drv_identity_t *d = load(f, NULL, 0, old.not_after - 60 * 86400);
    assert_false(drv_identity_reissued(d));
    drv_identity_free(d);
    free(renewed);
    free(srv);
    free(key);
}

static void test_sans(void **state)
{
    fx_t *f = *state;
    drv_identity_t *a = load(f, NULL, 0, 0);
    const char *c = drv_identity_server_cert(a);
    assert_true(names(c, "localhost"));
    assert_true(names(c, "127.0.0.1"));
    assert_true(names(c, "::1"));
    assert_false(names(c, "0.0.0.0")); /* a wildcard listen address is not a name */
    assert_false(names(c, "hub.example"));
    drv_identity_free(a);
    /* A new --san: re-issued, naming it; the same again: left alone. */
    const char *sans[] = {"hub.example", "10.1.2.3", "fd00::7", "HUB.example"};
    drv_identity_t *b = load(f, sans, 4, 0);
    assert_true(drv_identity_reissued(b));
    c = drv_identity_server_cert(b);
    assert_true(names(c, "hub.example"));
    assert_true(names(c, "10.1.2.3"));
    assert_true(names(c, "fd00::7"));
    assert_true(names(c, "localhost"));
    drv_identity_free(b);
    drv_identity_t *b2 = load(f, sans, 3, 0);
    assert_false(drv_identity_reissued(b2));
    drv_identity_free(b2);
    /* The listen address when it is not a wildcard. */
    drv_identity_opts_t o = {.data_dir = f->dir, .listen_addr = "192.168.7.9"};
    drv_identity_t *d = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_identity_load(&o, &d, &err), DRV_OK);
    assert_true(drv_identity_reissued(d));
    assert_true(names(drv_identity_server_cert(d), "192.168.7.9"));
    drv_identity_free(d);
    /* Bad names are clear errors naming --san. */
    char msg[512];
    const char *bad[] = {"hub example"};
    assert_int_equal(load_err(f, NULL, bad, 1, msg, sizeof(msg)), DRV_ERR_INVALID);
    assert_non_null(strstr(msg, "--san \"hub example\""));
    const char *bad2[] = {"a..b"};
    assert_int_equal(load_err(f, NULL, bad2, 1, msg, sizeof(msg)), DRV_ERR_INVALID);
    assert_non_null(strstr(msg, "--san"));
    const char *bad3[] = {""};
    assert_int_equal(load_err(f, NULL, bad3, 1, msg, sizeof(msg)), DRV_ERR_INVALID);
}

static void test_crash_between_writes(void **state)
{
    fx_t *f = *state;
    drv_identity_t *a = load(f, NULL, 0, 0);
    char *ca_key = strdup(drv_identity_ca_key(a));
    char *sign = strdup(drv_identity_signing_pub(a));
    drv_identity_free(a);
    /* ca.key written, ca.crt not yet: the key gets its certificate. signing.pub lost: rewritten. */
    char p[160];
    const char *gone[] = {"ca.crt", "server.crt", "server.key", "signing.pub"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s/%s", f->pki, gone[i]);
        assert_int_equal(unlink(p), 0);
    }
    drv_identity_t *b = load(f, NULL, 0, 0);
    assert_string_equal(drv_identity_ca_key(b), ca_key);
    assert_string_equal(drv_identity_signing_pub(b), sign);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_pki_key_matches_cert(ca_key, drv_identity_ca_cert(b), &err), DRV_OK);
    assert_int_equal(mode_of(f, "server.key"), 0600);
    drv_identity_free(b);
    free(ca_key);
    free(sign);
}

static void test_loose_modes_narrowed(void **state)
{
    fx_t *f = *state;
    drv_identity_free(load(f, NULL, 0, 0));
    char p[160];
    snprintf(p, sizeof(p), "%s/signing.key", f->pki);
    assert_int_equal(chmod(p, 0644), 0);
    assert_int_equal(chmod(f->pki, 0755), 0);
    drv_identity_free(load(f, NULL, 0, 0));
    assert_int_equal(mode_of(f, "signing.key"), 0600);
    struct stat sb;
    assert_int_equal(stat(f->pki, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_start_creates_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_start_loads_same, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_mismatch_is_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_ca_is_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiring_server_cert_reissued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_between_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loose_modes_narrowed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
