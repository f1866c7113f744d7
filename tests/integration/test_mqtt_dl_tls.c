/* The agent's MQTT client (drover-mqtt-dl, Paho loaded with dlopen) over TLS against a real
 * Mosquitto that requires client certificates, all made here with drover's pki: a node
 * certificate connects and round-trips a message; no client certificate, a broker certificate
 * of another CA, or a host name the broker certificate does not name, do not connect. TLS loads
 * libpaho-mqtt3as, a plain client libpaho-mqtt3a (checked in a child process), and a TLS client
 * after a plain one in the same process is refused with a clear error. */
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "drover/file.h"
#include "drover/pki.h"
#include "mqtt.h"

static char g_dir[64];
static int g_port;
static pid_t g_broker = -1;
static double g_factor = 1.0;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    int port = -1;
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0)
        close(s);
    return port;
}

static bool port_open(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0;
    if (s >= 0)
        close(s);
    return ok;
}

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", g_dir, name);
}

static void put(const char *name, const char *text)
{
    char p[128];
    path_of(p, sizeof p, name);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_file_write_atomic(p, text, strlen(text), 0644, &err) != DRV_OK)
        fail_msg("%s", drv_error_msg(&err));
}

/* A key (written as NAME.key) and a certificate for it (NAME.crt) issued by the CA. */
static void make_cert(const char *name, const char *cakey, const char *cacert, const char *cn,
                      unsigned usage, const char *ip)
{
    char *key = NULL, *pub = NULL, *cert = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    const char *ips[] = {ip};
    drv_pki_issue_t o = {.cn = cn, .usage = usage, .ip_addrs = ips, .n_ips = ip ? 1 : 0, .days = 2};
    if (drv_pki_key_generate(&key, &err) != DRV_OK || drv_pki_key_public(key, &pub, &err) ||
        drv_pki_issue_key(cakey, cacert, pub, &o, &cert, &err) != DRV_OK)
        fail_msg("%s: %s", name, drv_error_msg(&err));
    char f[64];
    snprintf(f, sizeof f, "%s.key", name);
    put(f, key);
    snprintf(f, sizeof f, "%s.crt", name);
    put(f, cert);
    drv_pki_secret_free(key);
    free(pub);
    free(cert);
}

static void make_ca(const char *name, char **key, char **cert)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_pki_key_generate(key, &err) != DRV_OK ||
        drv_pki_ca_create(*key, name, 0, 2, cert, &err) != DRV_OK)
        fail_msg("CA: %s", drv_error_msg(&err));
    char f[64];
    snprintf(f, sizeof f, "%s.crt", name);
    put(f, *cert);
}

/* ---- events ---- */

typedef struct rec {
    unsigned connected, messages;
    char payload[128];
} rec_t;

static void on_event(void *ud, const drv_mqtt_event_t *ev)
{
    rec_t *r = ud;
    if (ev->kind == DRV_MQTT_CONNECTED)
        r->connected++;
    else if (ev->kind == DRV_MQTT_DISCONNECTED)
        fprintf(stderr, "# disconnected: %s\n", ev->reason ? ev->reason : "?");
    else if (ev->kind == DRV_MQTT_MESSAGE) {
        r->messages++;
        snprintf(r->payload, sizeof r->payload, "%.*s", (int)ev->len, (const char *)ev->payload);
    }
}

static bool wait_for(drv_mqtt_t *c, rec_t *r, const unsigned *counter, unsigned want,
                     unsigned timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)(timeout_ms * g_factor);
    while (*counter < want) {
        uint64_t now = now_ms();
        if (now >= end)
            return false;
        struct pollfd p = {.fd = drv_mqtt_fd(c), .events = POLLIN};
        if (poll(&p, 1, (int)(end - now)) > 0)
            drv_mqtt_poll(c, on_event, r);
    }
    return true;
}

/* A client of uri trusting ca (file name in g_dir, or NULL) with the certificate NAME.crt /
 * NAME.key (or none). */
static drv_err_t new_client(const char *uri, const char *id, const char *ca, const char *name,
                            drv_mqtt_t **out, drv_error_t *err)
{
    char cap[128] = "", crt[128] = "", key[128] = "", f[64];
    if (ca)
        path_of(cap, sizeof cap, ca);
    if (name) {
        snprintf(f, sizeof f, "%s.crt", name);
        path_of(crt, sizeof crt, f);
        snprintf(f, sizeof f, "%s.key", name);
        path_of(key, sizeof key, f);
    }
    drv_mqtt_opts_t o = {.server_uri = uri,
                         .client_id = id,
                         .clean_session = true,
                         .keepalive_s = 5,
                         .backoff_min_ms = 200,
                         .backoff_max_ms = 1000,
                         .ca_file = ca ? cap : NULL,
                         .cert_file = name ? crt : NULL,
                         .key_file = name ? key : NULL};
    return drv_mqtt_new(&o, out, err);
}

static bool maps_has(const char *lib)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, lib) != NULL;
    if (f)
        fclose(f);
    return found;
}

/* ---- tests ---- */

static void test_node_certificate_connects(void **state)
{
    (void)state;
    char uri[64];
    snprintf(uri, sizeof uri, "ssl://127.0.0.1:%d", g_port);
    drv_mqtt_t *c = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (new_client(uri, "dev-a", "hub-ca.crt", "dev-a", &c, &err) != DRV_OK)
        fail_msg("drv_mqtt_new: %s", drv_error_msg(&err));
    rec_t r = {0};
    assert_true(wait_for(c, &r, &r.connected, 1, 10000));
    assert_true(maps_has("libpaho-mqtt3as.so"));
    assert_false(maps_has("libpaho-mqtt3a.so"));
    assert_int_equal(drv_mqtt_subscribe(c, "drover/v1/node/dev-a/#", 1, &err), DRV_OK);
    for (int i = 0; i < 100 && r.messages == 0; i++) {
        assert_int_equal(
            drv_mqtt_publish(c, "drover/v1/node/dev-a/status", "hi", 2, 1, false, &err), DRV_OK);
        wait_for(c, &r, &r.messages, 1, 100);
    }
    assert_string_equal(r.payload, "hi");
    drv_mqtt_free(c, 1000);
}

/* Each of these must stay unconnected for a few seconds (several attempts). */
static void refused(const char *uri, const char *ca, const char *name)
{
    drv_mqtt_t *c = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (new_client(uri, "refused", ca, name, &c, &err) != DRV_OK)
        fail_msg("drv_mqtt_new: %s", drv_error_msg(&err));
    rec_t r = {0};
    bool up = wait_for(c, &r, &r.connected, 1, 3000);
    drv_mqtt_free(c, 500);
    if (up)
        fail_msg("%s (ca %s, certificate %s) connected", uri, ca ? ca : "-", name ? name : "-");
}

static void test_refused(void **state)
{
    (void)state;
    char uri[64];
    snprintf(uri, sizeof uri, "ssl://127.0.0.1:%d", g_port);
    refused(uri, "hub-ca.crt", NULL);     /* no client certificate */
    refused(uri, "hub-ca.crt", "forged"); /* client certificate of another CA */
    refused(uri, "evil-ca.crt", "dev-a"); /* the broker is not the hub's */
    /* The broker's certificate names 127.0.0.1 only: the host name is verified. */
    snprintf(uri, sizeof uri, "ssl://localhost:%d", g_port);
    refused(uri, "hub-ca.crt", "dev-a");
}

/* The child of test_plain_loads_3a: a plain client maps 3a only, and TLS is then refused. */
static int plain_child(void)
{
    drv_mqtt_t *c = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (new_client("tcp://127.0.0.1:1", "plain", NULL, NULL, &c, &err) != DRV_OK) {
        fprintf(stderr, "plain: %s\n", drv_error_msg(&err));
        return 2;
    }
    if (!maps_has("libpaho-mqtt3a.so") || maps_has("libpaho-mqtt3as.so")) {
        fprintf(stderr, "plain: wrong Paho mapped\n");
        return 3;
    }
    drv_mqtt_free(c, 100);
    drv_mqtt_t *t = NULL;
    drv_err_t r = new_client("ssl://127.0.0.1:1", "tls", "hub-ca.crt", "dev-a", &t, &err);
    if (r != DRV_ERR_UNSUPPORTED || !strstr(drv_error_msg(&err), "TLS")) {
        fprintf(stderr, "tls after plain: %d %s\n", r, drv_error_msg(&err));
        drv_mqtt_free(t, 100);
        return 4;
    }
    return 0;
}

static const char *g_self;

static void test_plain_loads_3a(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(g_self, g_self, "plain-child", g_dir, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* ---- broker ---- */

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/drv-mqtt-tls-XXXXXX");
    if (!mkdtemp(g_dir) || (g_port = free_port()) < 0)
        return -1;
    chmod(g_dir, 0755); /* mosquitto drops root for its own user, which must read the files */
    char *ca_key = NULL, *ca = NULL, *evil_key = NULL, *evil = NULL;
    make_ca("hub-ca", &ca_key, &ca);
    make_ca("evil-ca", &evil_key, &evil);
    make_cert("broker", ca_key, ca, "broker", DRV_PKI_SERVER_AUTH, "127.0.0.1");
    make_cert("dev-a", ca_key, ca, "dev-a", DRV_PKI_CLIENT_AUTH, NULL);
    make_cert("forged", evil_key, evil, "dev-a", DRV_PKI_CLIENT_AUTH, NULL);
    drv_pki_secret_free(ca_key);
    drv_pki_secret_free(evil_key);
    free(ca);
    free(evil);
    char conf[1024];
    snprintf(conf, sizeof conf,
             "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
             "cafile %s/hub-ca.crt\ncertfile %s/broker.crt\nkeyfile %s/broker.key\n"
             "require_certificate true\nuse_identity_as_username true\n",
             g_port, g_dir, g_dir, g_dir);
    put("mosquitto.conf", conf);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        char log[128], cf[128];
        path_of(log, sizeof log, "mosquitto.log");
        path_of(cf, sizeof cf, "mosquitto.conf");
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("mosquitto", "mosquitto", "-c", cf, (char *)NULL);
        _exit(127);
    }
    g_broker = pid;
    uint64_t end = now_ms() + (uint64_t)(10000 * g_factor);
    while (!port_open(g_port)) {
        if (waitpid(pid, NULL, WNOHANG) == pid || now_ms() > end) {
            g_broker = -1;
            fprintf(stderr, "mosquitto did not start (see %s/mosquitto.log)\n", g_dir);
            return -1;
        }
        usleep(20000);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (g_broker > 0) {
        kill(g_broker, SIGKILL);
        waitpid(g_broker, NULL, 0);
    }
    char cmd[256];
    snprintf(cmd, sizeof cmd, "cat '%s/mosquitto.log' >&2; rm -rf '%s'", g_dir, g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    g_self = argv[0];
    const char *tf = getenv("DROVER_TEST_TIME_FACTOR");
    if (tf && strtod(tf, NULL) >= 1)
        g_factor = strtod(tf, NULL);
    if (argc == 3 && strcmp(argv[1], "plain-child") == 0) {
        snprintf(g_dir, sizeof g_dir, "%s", argv[2]);
        return plain_child();
    }
    signal(SIGPIPE, SIG_IGN);
    if (access("/usr/sbin/mosquitto", X_OK) != 0 &&
        system("command -v mosquitto >/dev/null 2>&1") != 0) {
        fprintf(stderr, "mosquitto not installed\n");
        return getenv("DROVER_ALLOW_SKIP") ? 77 : 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_loads_3a),
        cmocka_unit_test(test_node_certificate_connects),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
