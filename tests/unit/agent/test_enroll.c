/* agent/enroll: the hub.* identity keys of the agent's config, picking the pinned CA out of
 * the hub's chain, the identity files' checks, the answer's checks and the renewal timer. The
 * network half (enrolling against a real hub) is tests/integration/test_agent_enroll.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "drover/file.h"
#include "drover/pki.h"
#include "enroll/enroll.h"
#include "enroll/enroll_int.h"

#define DAY 86400

static char *ca_key, *ca_cert, *other_ca_key, *other_ca_cert, *node_key, *node_pub, *server_cert,
    *signing_pub;
static char tmpdir[64];

static char *issue(const char *cakey, const char *cacert, const char *pub, const char *cn,
                   unsigned usage, int64_t nb, uint32_t days)
{
    drv_pki_issue_t o = {.cn = cn, .usage = usage, .not_before = nb, .days = days};
    char *cert = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_pki_issue_key(cakey, cacert, pub, &o, &cert, &err) != DRV_OK)
        fail_msg("issue %s: %s", cn, drv_error_msg(&err));
    return cert;
}

static int group_setup(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    char *sk = NULL, *spub = NULL, *hk = NULL;
    if (drv_pki_key_generate(&ca_key, &err) ||
        drv_pki_ca_create(ca_key, "hub CA", 0, 3650, &ca_cert, &err) ||
        drv_pki_key_generate(&other_ca_key, &err) ||
        drv_pki_ca_create(other_ca_key, "evil CA", 0, 3650, &other_ca_cert, &err) ||
        drv_pki_key_generate(&node_key, &err) || drv_pki_key_public(node_key, &node_pub, &err) ||
        drv_pki_key_generate(&sk, &err) || drv_pki_key_public(sk, &signing_pub, &err) ||
        drv_pki_key_generate(&hk, &err) || drv_pki_key_public(hk, &spub, &err))
        return -1;
    server_cert = issue(ca_key, ca_cert, spub, "drover-hub", DRV_PKI_SERVER_AUTH, 0, 365);
    drv_pki_secret_free(sk);
    drv_pki_secret_free(hk);
    free(spub);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/drv-enroll-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    drv_pki_secret_free(ca_key);
    drv_pki_secret_free(other_ca_key);
    drv_pki_secret_free(node_key);
    free(ca_cert);
    free(other_ca_cert);
    free(node_pub);
    free(server_cert);
    free(signing_pub);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- config ---- */

static drv_err_t parse(const char *text, drv_agent_config_t *cfg, drv_error_t *err)
{
    drv_agent_config_defaults(cfg);
    return drv_agent_config_parse("agent.yaml", text, strlen(text), cfg, err);
}

#define FP64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_config_keys(void **state)
{
    (void)state;
    drv_agent_config_t cfg;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(parse("", &cfg, &err), DRV_OK);
    assert_string_equal(cfg.hub_url, "");
    assert_string_equal(cfg.hub_token_file, "");
    const char *text = "hub:\n  broker: ssl://hub.local:8883\n  url: https://hub.local:8443/\n"
                       "  caFingerprint: SHA256:0123456789ABCDEF0123456789abcdef0123456789abcdef"
                       "0123456789abcdef\n  tokenFile: /etc/drover/token\n";
    assert_int_equal(parse(text, &cfg, &err), DRV_OK);
    assert_string_equal(cfg.hub_broker, "ssl://hub.local:8883");
    assert_string_equal(cfg.hub_url, "https://hub.local:8443");  /* the "/" dropped */
    assert_string_equal(cfg.hub_ca_fingerprint, "sha256:" FP64); /* as drover-hub prints it */
    assert_string_equal(cfg.hub_token_file, "/etc/drover/token");
    assert_int_equal(parse("hub:\n  broker: mqtts://[::1]:8883\n  url: https://10.0.0.1\n"
                           "  caFingerprint: sha256:" FP64 "\n  token: drv1_abc.def\n",
                           &cfg, &err),
                     DRV_OK);
    assert_string_equal(cfg.hub_token, "drv1_abc.def");
    assert_string_equal(cfg.hub_url, "https://10.0.0.1");
    assert_string_equal(cfg.hub_broker, "mqtts://[::1]:8883");
}

static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"hub: {url: \"http://h:1\", caFingerprint: \"sha256:" FP64 "\"}\n",
         "hub.url: \"http://h:1\" must be https://HOST[:PORT]"},
        {"hub: {url: \"https://h:1/api\", caFingerprint: \"sha256:" FP64 "\"}\n",
         "hub.url: \"https://h:1/api\" must be https://HOST[:PORT]"},
        {"hub: {url: \"https://u@h:1\", caFingerprint: \"sha256:" FP64 "\"}\n",
         "must be https://HOST[:PORT]"},
        {"hub: {url: \"https://h:0\", caFingerprint: \"sha256:" FP64 "\"}\n",
         "must be https://HOST[:PORT]"},
        {"hub: {url: 443}\n", "hub.url: must be a string"},
        {"hub: {url: \"https://h\", caFingerprint: \"sha256:abc\"}\n",
         "hub.caFingerprint: must be \"sha256:\" and 64 hex digits"},
        {"hub: {url: \"https://h\", caFingerprint: \"md5:" FP64 "\"}\n",
         "hub.caFingerprint: must be \"sha256:\""},
        {"hub: {url: \"https://h\", caFingerprint: \"sha256:" FP64 "0\"}\n",
         "hub.caFingerprint: must be"},
        {"hub: {url: \"https://h\", caFingerprint: \"sha256:" FP64 "\", token: \"abc\"}\n",
         "hub.token: must be a bootstrap token \"drv1_...\""},
        {"hub: {url: \"https://h\", caFingerprint: \"sha256:" FP64 "\", tokenFile: \"t\"}\n",
         "hub.tokenFile: must be an absolute path"},
        {"hub: {url: \"https://h\", caFingerprint: \"sha256:" FP64
         "\", token: drv1_x, tokenFile: /t}\n",
         "hub.tokenFile: give hub.token or hub.tokenFile, not both"},
        {"hub: {url: \"https://h\"}\n", "hub.caFingerprint: required with hub.url"},
        {"hub: {caFingerprint: \"sha256:" FP64 "\"}\n", "hub.url: required with"},
        {"hub: {tokenFile: /t}\n", "hub.url: required with"},
        {"hub: {broker: \"ssl://h\"}\n", "hub.broker: \"ssl://h\" must be tcp://HOST:PORT or "
                                         "ssl://HOST:PORT"},
        {"hub: {broker: \"tls://h:1\"}\n", "hub.broker: \"tls://h:1\" must be"},
        {"hub: {tokenfile: /t}\n", "hub.tokenfile: unknown key"},
        {"hub: {url: \"https://h\", caFingerprint: \"sha256:" FP64
         "\", tokenFile: /t, broker: \"tcp://h:1883\"}\n",
         "hub.broker: \"tcp://h:1883\": must be ssl://HOST:PORT (or mqtts://) with hub.url"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        drv_agent_config_t cfg;
        drv_error_t err = DRV_ERROR_INIT;
        if (parse(cases[i].text, &cfg, &err) != DRV_ERR_INVALID ||
            !strstr(drv_error_msg(&err), cases[i].want))
            fail_msg("case %zu: %s\n  got: %s\n  want: %s", i, cases[i].text, drv_error_msg(&err),
                     cases[i].want);
    }
}

/* ---- the pinned CA ---- */

static void fingerprint_of(const char *pem, char out[DRV_PKI_FINGERPRINT_MAX])
{
    drv_pki_cert_info_t info;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_pki_cert_info(pem, &info, &err), DRV_OK);
    snprintf(out, DRV_PKI_FINGERPRINT_MAX, "%s", info.fingerprint);
}

static void test_pick_ca(void **state)
{
    (void)state;
    char ca_fp[DRV_PKI_FINGERPRINT_MAX], server_fp[DRV_PKI_FINGERPRINT_MAX],
        other_fp[DRV_PKI_FINGERPRINT_MAX];
    fingerprint_of(ca_cert, ca_fp);
    fingerprint_of(server_cert, server_fp);
    fingerprint_of(other_ca_cert, other_fp);
    const char *chain[] = {server_cert, "garbage", ca_cert};
    drv_error_t err = DRV_ERROR_INIT;
    char *got = NULL;
    assert_int_equal(drv_enroll_pick_ca(chain, 3, ca_fp, &got, &err), DRV_OK);
    assert_string_equal(got, ca_cert);
    free(got);
    got = NULL;

    /* Another hub's CA: refused, naming the field and what the chain had. */
    assert_int_equal(drv_enroll_pick_ca(chain, 3, other_fp, &got, &err), DRV_ERR_INTEGRITY);
    assert_null(got);
    assert_non_null(strstr(drv_error_msg(&err), "hub.caFingerprint: no certificate in the hub's "
                                                "chain has"));
    assert_non_null(strstr(drv_error_msg(&err), server_fp));
    assert_non_null(strstr(drv_error_msg(&err), ca_fp));

    /* A chain without the CA (a hub serving only its own certificate). */
    drv_error_clear(&err);
    assert_int_equal(drv_enroll_pick_ca(chain, 1, ca_fp, &got, &err), DRV_ERR_INTEGRITY);
    assert_null(got);

    /* Pinning the server certificate itself is refused: it is not a CA. */
    drv_error_clear(&err);
    assert_int_equal(drv_enroll_pick_ca(chain, 3, server_fp, &got, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "hub.caFingerprint"));
    assert_non_null(strstr(drv_error_msg(&err), "not its CA"));
    assert_null(got);

    drv_error_clear(&err);
    assert_int_equal(drv_enroll_pick_ca(NULL, 0, ca_fp, &got, &err), DRV_ERR_INTEGRITY);
    assert_non_null(strstr(drv_error_msg(&err), "no certificates"));
}

/* ---- identity files ---- */

static void paths_in(const char *sub, drv_enroll_paths_t *p)
{
    drv_agent_config_t cfg;
    drv_agent_config_defaults(&cfg);
    snprintf(cfg.state_dir, sizeof(cfg.state_dir), "%s/%s", tmpdir, sub);
    drv_enroll_paths(&cfg, p);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_mkdir_p(p->dir, 0700, &err), DRV_OK);
}

static void put(const char *path, const char *text, mode_t mode)
{
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_write_atomic(path, text, strlen(text), mode, &err), DRV_OK);
}

/* A complete identity for dev-a valid from nb for days. */
static void make_identity(const drv_enroll_paths_t *p, int64_t nb, uint32_t days)
{
    char *cert = issue(ca_key, ca_cert, node_pub, "dev-a", DRV_PKI_CLIENT_AUTH, nb, days);
    put(p->key, node_key, 0600);
    put(p->cert, cert, 0644);
    put(p->ca, ca_cert, 0644);
    put(p->signing_pub, signing_pub, 0644);
    free(cert);
}

static void test_paths(void **state)
{
    (void)state;
    drv_agent_config_t cfg;
    drv_agent_config_defaults(&cfg);
    drv_enroll_paths_t p;
    drv_enroll_paths(&cfg, &p);
    assert_string_equal(p.dir, "/var/lib/drover/identity");
    assert_string_equal(p.key, "/var/lib/drover/identity/node.key");
    assert_string_equal(p.cert, "/var/lib/drover/identity/node.crt");
    assert_string_equal(p.ca, "/var/lib/drover/identity/ca.crt");
    assert_string_equal(p.signing_pub, "/var/lib/drover/identity/signing.pub");
}

static void want_check(const drv_enroll_paths_t *p, const char *node, int64_t now, drv_err_t want,
                       const char *msg)
{
    drv_pki_cert_info_t info;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t r = drv_enroll_check_identity(p, node, now, &info, &err);
    if (r != want || (msg && !strstr(drv_error_msg(&err), msg)))
        fail_msg("check: got %d \"%s\", want %d \"%s\"", r, drv_error_msg(&err), want,
                 msg ? msg : "");
}

static void test_check_identity(void **state)
{
    (void)state;
    int64_t now = (int64_t)time(NULL);
    drv_enroll_paths_t p;
    paths_in("check", &p);
    want_check(&p, "dev-a", now, DRV_ERR_NOTFOUND, "no certificate yet");

    make_identity(&p, 0, 90);
    want_check(&p, "dev-a", now, DRV_OK, NULL);
    /* Another node name in the config: not this identity. */
    want_check(&p, "dev-b", now, DRV_ERR_INTEGRITY, "nodeName");
    /* Past notAfter: expired (renewable), not corrupt. */
    want_check(&p, "dev-a", now + 91 * DAY, DRV_ERR_RANGE, "expired");

    /* ca.crt of another hub. */
    put(p.ca, other_ca_cert, 0644);
    want_check(&p, "dev-a", now, DRV_ERR_INTEGRITY, "ca.crt");
    put(p.ca, ca_cert, 0644);

    /* node.key of another node. */
    char *k2 = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_pki_key_generate(&k2, &err), DRV_OK);
    put(p.key, k2, 0600);
    drv_pki_secret_free(k2);
    want_check(&p, "dev-a", now, DRV_ERR_INTEGRITY, "node.key and");
    put(p.key, "not a key", 0600);
    want_check(&p, "dev-a", now, DRV_ERR_INVALID, "node.key");
    unlink(p.key);
    want_check(&p, "dev-a", now, DRV_ERR_INTEGRITY, "node.key: missing");
    put(p.key, node_key, 0600);

    /* A certificate of another CA with our name and key. */
    char *forged =
        issue(other_ca_key, other_ca_cert, node_pub, "dev-a", DRV_PKI_CLIENT_AUTH, 0, 90);
    put(p.cert, forged, 0644);
    free(forged);
    want_check(&p, "dev-a", now, DRV_ERR_INTEGRITY, NULL);
    /* A server certificate is no client identity. */
    char *srv = issue(ca_key, ca_cert, node_pub, "dev-a", DRV_PKI_SERVER_AUTH, 0, 90);
    put(p.cert, srv, 0644);
    free(srv);
    want_check(&p, "dev-a", now, DRV_ERR_INTEGRITY, NULL);

    make_identity(&p, 0, 90);
    unlink(p.signing_pub);
    want_check(&p, "dev-a", now, DRV_ERR_INTEGRITY, "signing.pub: missing");
    put(p.signing_pub, "junk", 0644);
    want_check(&p, "dev-a", now, DRV_ERR_INVALID, "signing.pub");
    put(p.cert, "junk", 0644);
    want_check(&p, "dev-a", now, DRV_ERR_INVALID, "node.crt");
}

static void test_renewal_timer(void **state)
{
    (void)state;
    int64_t now = (int64_t)time(NULL);
    drv_enroll_paths_t p;
    paths_in("timer", &p);
    /* No certificate: check again in a minute. */
    assert_int_equal(drv_enroll_next_check_ms(&p, now), 60000);
    make_identity(&p, now, 90);
    drv_pki_cert_info_t info;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_enroll_check_identity(&p, "dev-a", now, &info, &err), DRV_OK);
    assert_int_equal(drv_enroll_renew_at(&info), now + 60 * DAY);            /* 2/3 of 90 days */
    assert_int_equal(drv_enroll_next_check_ms(&p, now), 12 * 3600 * 1000LL); /* capped */
    assert_int_equal(drv_enroll_next_check_ms(&p, now + 60 * DAY - 600), 600 * 1000LL);
    assert_int_equal(drv_enroll_next_check_ms(&p, now + 60 * DAY - 10), 60000); /* floor */
    assert_int_equal(drv_enroll_next_check_ms(&p, now + 80 * DAY), 60000);      /* overdue */
}

/* ---- the hub's answer ---- */

static char *answer(const char *kind, const char *node, const char *cert, const char *pub)
{
    char *esc_cert = NULL, *esc_pub = NULL, *out = NULL;
    /* JSON-escape the PEM newlines. */
    const char *srcs[2] = {cert, pub};
    char **dsts[2] = {&esc_cert, &esc_pub};
    for (int i = 0; i < 2; i++) {
        const char *s = srcs[i];
        char *d = calloc(1, strlen(s) * 2 + 1), *w = d;
        for (; *s; s++) {
            if (*s == '\n') {
                *w++ = '\\';
                *w++ = 'n';
            } else
                *w++ = *s;
        }
        *dsts[i] = d;
    }
    size_t n = strlen(esc_cert) + strlen(esc_pub) + 512;
    out = malloc(n);
    snprintf(out, n,
             "{\"apiVersion\":\"drover/v1\",\"kind\":\"%s\",\"node\":\"%s\",\"certificate\":\"%s\","
             "\"signingKey\":\"%s\",\"renewAfter\":\"2030-01-01T00:00:00Z\"}",
             kind, node, esc_cert, esc_pub);
    free(esc_cert);
    free(esc_pub);
    return out;
}

static drv_err_t parse_answer(const char *text, drv_error_t *err)
{
    char *cert = NULL, *pub = NULL;
    drv_err_t r = drv_enroll_parse_answer(text, strlen(text), "dev-a", node_key, ca_cert,
                                          (int64_t)time(NULL), &cert, &pub, err);
    if (r == DRV_OK) {
        assert_non_null(strstr(cert, "BEGIN CERTIFICATE"));
        assert_string_equal(pub, signing_pub);
    } else {
        assert_null(cert);
        assert_null(pub);
    }
    free(cert);
    free(pub);
    return r;
}

static void test_parse_answer(void **state)
{
    (void)state;
    char *good = issue(ca_key, ca_cert, node_pub, "dev-a", DRV_PKI_CLIENT_AUTH, 0, 90);
    char *forged =
        issue(other_ca_key, other_ca_cert, node_pub, "dev-a", DRV_PKI_CLIENT_AUTH, 0, 90);
    char *other_name = issue(ca_key, ca_cert, node_pub, "dev-b", DRV_PKI_CLIENT_AUTH, 0, 90);
    char *other_key = issue(ca_key, ca_cert, signing_pub, "dev-a", DRV_PKI_CLIENT_AUTH, 0, 90);
    drv_error_t err = DRV_ERROR_INIT;
    char *a = answer("Enrollment", "dev-a", good, signing_pub);
    assert_int_equal(parse_answer(a, &err), DRV_OK);
    free(a);
    struct {
        char *text;
        const char *want;
    } bad[] = {
        {answer("Status", "dev-a", good, signing_pub), "kind"},
        {answer("Enrollment", "dev-b", good, signing_pub), "node: \"dev-b\""},
        {answer("Enrollment", "dev-a", forged, signing_pub), "certificate"},
        {answer("Enrollment", "dev-a", other_name, signing_pub), "CN \"dev-b\""},
        {answer("Enrollment", "dev-a", other_key, signing_pub), "certificate"},
        {answer("Enrollment", "dev-a", good, "junk"), "signingKey"},
        {strdup("{\"kind\":\"Enrollment\",\"node\":\"dev-a\"}"), "certificate and signingKey"},
        {strdup("not json"), "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        drv_error_clear(&err);
        if (parse_answer(bad[i].text, &err) == DRV_OK || !strstr(drv_error_msg(&err), bad[i].want))
            fail_msg("bad answer %zu: \"%s\", want \"%s\"", i, drv_error_msg(&err), bad[i].want);
        free(bad[i].text);
    }
    free(good);
    free(forged);
    free(other_name);
    free(other_key);
}

/* ---- drv_enroll_ensure without a hub ---- */

static void config_in(const char *sub, drv_agent_config_t *cfg)
{
    drv_agent_config_defaults(cfg);
    snprintf(cfg->node_name, sizeof(cfg->node_name), "dev-a");
    snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s/%s", tmpdir, sub);
}

static bool maps_has(const char *lib)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    bool found = false;
    while (f && !found && fgets(line, sizeof(line), f))
        found = strstr(line, lib) != NULL;
    if (f)
        fclose(f);
    return found;
}

static void test_ensure_offline(void **state)
{
    (void)state;
    drv_agent_config_t cfg;
    drv_enroll_paths_t p;
    drv_error_t err = DRV_ERROR_INIT;

    /* No identity and no hub.url: says what to configure; the directory is made 0700. */
    config_in("offline", &cfg);
    assert_int_equal(drv_enroll_ensure(&cfg, &p, &err), DRV_ERR_NOTFOUND);
    assert_non_null(strstr(drv_error_msg(&err), "hub.url: required to enrol this node"));
    struct stat st;
    assert_int_equal(stat(p.dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    /* A token file that is not there is named before anything goes out. */
    snprintf(cfg.hub_url, sizeof(cfg.hub_url), "https://127.0.0.1:1");
    snprintf(cfg.hub_ca_fingerprint, sizeof(cfg.hub_ca_fingerprint), "sha256:" FP64);
    snprintf(cfg.hub_token_file, sizeof(cfg.hub_token_file), "%s/no-token", tmpdir);
    drv_error_clear(&err);
    assert_int_equal(drv_enroll_ensure(&cfg, &p, &err), DRV_ERR_NOTFOUND);
    assert_non_null(strstr(drv_error_msg(&err), "hub.tokenFile:"));
    char tf[128];
    snprintf(tf, sizeof(tf), "%s/bad-token", tmpdir);
    put(tf, "hello\n", 0600);
    snprintf(cfg.hub_token_file, sizeof(cfg.hub_token_file), "%s", tf);
    drv_error_clear(&err);
    assert_int_equal(drv_enroll_ensure(&cfg, &p, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "does not hold a bootstrap token"));
    cfg.hub_token_file[0] = '\0';
    assert_int_equal(drv_enroll_ensure(&cfg, &p, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "hub.tokenFile: required"));

    /* A good token but an unreachable hub: the error names hub.url; no key was made for it. */
    snprintf(cfg.hub_token, sizeof(cfg.hub_token), "drv1_x");
    drv_error_clear(&err);
    drv_err_t r = drv_enroll_ensure(&cfg, &p, &err);
    if (r == DRV_ERR_UNSUPPORTED) /* no libcurl.so.4 here */
        skip();
    assert_int_equal(r, DRV_ERR_IO);
    assert_non_null(strstr(drv_error_msg(&err), "hub.url: https://127.0.0.1:1/healthz"));
    assert_int_equal(access(p.key, F_OK), -1);
    assert_int_equal(access(p.ca, F_OK), -1);
    /* The network half ran in a child: this process never mapped libcurl. */
    assert_false(maps_has("libcurl"));

    /* A valid identity is enough without any hub; one due for renewal with the hub
     * unreachable stays in use (a warning). */
    config_in("offline2", &cfg);
    drv_enroll_paths(&cfg, &p);
    assert_int_equal(drv_file_mkdir_p(p.dir, 0755, &err), DRV_OK);
    make_identity(&p, 0, 90);
    chmod(p.key, 0644);
    assert_int_equal(drv_enroll_ensure(&cfg, &p, &err), DRV_OK);
    assert_int_equal(stat(p.key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600); /* tightened */
    assert_int_equal(stat(p.dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    make_identity(&p, (int64_t)time(NULL) - 70 * DAY, 90);
    snprintf(cfg.hub_url, sizeof(cfg.hub_url), "https://127.0.0.1:1");
    snprintf(cfg.hub_ca_fingerprint, sizeof(cfg.hub_ca_fingerprint), "sha256:" FP64);
    assert_int_equal(drv_enroll_ensure(&cfg, &p, &err), DRV_OK);
    /* Expired and the hub unreachable: an error (renewal, then enrollment, both failed). */
    make_identity(&p, (int64_t)time(NULL) - 100 * DAY, 90);
    snprintf(cfg.hub_token, sizeof(cfg.hub_token), "drv1_x");
    drv_error_clear(&err);
    assert_int_equal(drv_enroll_ensure(&cfg, &p, &err), DRV_ERR_IO);
    assert_non_null(strstr(drv_error_msg(&err), "hub.url"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_keys),    cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_pick_ca),        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_check_identity), cmocka_unit_test(test_renewal_timer),
        cmocka_unit_test(test_parse_answer),   cmocka_unit_test(test_ensure_offline),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
