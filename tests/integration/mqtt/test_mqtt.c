/* drover-mqtt against a real Mosquitto started here on a free 127.0.0.1 port: connect,
 * subscribe, publish, retained delivery to a late subscriber, the Last Will of a killed client,
 * reconnection by itself after the broker restarts, and jittered back-off that differs between
 * clients. */
#include <errno.h>
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

#include "drover/protocol.h"
#include "mqtt.h"

static char g_dir[64];
static char g_uri[64];
static int g_port;
static pid_t g_broker = -1;
static double g_factor = 1.0;
static const char *g_self;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static unsigned scaled(unsigned ms)
{
    return (unsigned)(ms * g_factor);
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &l) != 0) {
        if (s >= 0)
            close(s);
        return -1;
    }
    close(s);
    return ntohs(a.sin_port);
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

static void broker_start(void)
{
    char log[128];
    snprintf(log, sizeof log, "%s/mosquitto.log", g_dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        char conf[128];
        snprintf(conf, sizeof conf, "%s/mosquitto.conf", g_dir);
        execlp("mosquitto", "mosquitto", "-c", conf, (char *)NULL);
        _exit(127);
    }
    g_broker = pid;
    uint64_t end = now_ms() + scaled(10000);
    while (!port_open(g_port)) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            g_broker = -1;
            fail_msg("mosquitto exited at start (see %s)", log);
        }
        if (now_ms() > end)
            fail_msg("mosquitto did not listen on port %d", g_port);
        usleep(20000);
    }
}

static void broker_stop(void)
{
    if (g_broker <= 0)
        return;
    kill(g_broker, SIGKILL);
    waitpid(g_broker, NULL, 0);
    g_broker = -1;
}

/* ---- event capture ---- */

typedef struct rec {
    unsigned connected, disconnected, messages;
    char topic[256];
    char payload[512];
    bool retained;
} rec_t;

static void on_event(void *ud, const drv_mqtt_event_t *ev)
{
    rec_t *r = ud;
    switch (ev->kind) {
    case DRV_MQTT_CONNECTED:
        r->connected++;
        break;
    case DRV_MQTT_DISCONNECTED:
        r->disconnected++;
        break;
    case DRV_MQTT_MESSAGE:
        r->messages++;
        snprintf(r->topic, sizeof r->topic, "%s", ev->topic);
        snprintf(r->payload, sizeof r->payload, "%.*s", (int)ev->len, (const char *)ev->payload);
        r->retained = ev->retained;
        break;
    }
}

/* Runs an event loop over the client until *counter reaches want or the time is up. */
static bool wait_for(drv_mqtt_t *c, rec_t *r, const unsigned *counter, unsigned want,
                     unsigned timeout_ms)
{
    uint64_t end = now_ms() + scaled(timeout_ms);
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

static drv_mqtt_t *client(const char *id, bool clean, uint64_t seed)
{
    drv_mqtt_opts_t o = {.server_uri = g_uri,
                         .client_id = id,
                         .clean_session = clean,
                         .keepalive_s = 5,
                         .backoff_min_ms = 100,
                         .backoff_max_ms = 1000,
                         .seed = seed};
    drv_mqtt_t *c = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_mqtt_new(&o, &c, &err) != DRV_OK)
        fail_msg("drv_mqtt_new: %s", drv_error_msg(&err));
    return c;
}

static void publish(drv_mqtt_t *c, const char *topic, const char *payload, int qos, bool retain)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_mqtt_publish(c, topic, payload, strlen(payload), qos, retain, &err) != DRV_OK)
        fail_msg("publish %s: %s", topic, drv_error_msg(&err));
}

static void subscribe(drv_mqtt_t *c, const char *filter)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_mqtt_subscribe(c, filter, 1, &err) != DRV_OK)
        fail_msg("subscribe %s: %s", filter, drv_error_msg(&err));
}

/* ---- tests ---- */

static void test_pubsub(void **state)
{
    (void)state;
    rec_t r = {0};
    drv_mqtt_t *c = client("t-pubsub", true, 0);
    assert_true(wait_for(c, &r, &r.connected, 1, 5000));
    assert_true(drv_mqtt_connected(c));
    subscribe(c, "t/#");
    /* The SUBACK is not reported: publish until the first copy comes back. */
    for (int i = 0; i < 100 && r.messages == 0; i++) {
        publish(c, "t/a", "hello", 1, false);
        wait_for(c, &r, &r.messages, 1, 100);
    }
    assert_true(r.messages >= 1);
    assert_string_equal(r.topic, "t/a");
    assert_string_equal(r.payload, "hello");
    assert_false(r.retained);

    /* Bad arguments are refused with a message, not sent. */
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_mqtt_publish(c, "", "x", 1, 1, false, &err), DRV_ERR_INVALID);
    assert_int_equal(drv_mqtt_subscribe(c, "t/#", 3, &err), DRV_ERR_INVALID);
    drv_mqtt_free(c, 1000);
}

static void test_retained_late_subscriber(void **state)
{
    (void)state;
    rec_t ra = {0}, rb = {0};
    char topic[DRV_PROTO_TOPIC_MAX];
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_proto_topic(topic, sizeof topic, "late-1", DRV_PROTO_DESIRED, NULL, &err),
                     DRV_OK);
    drv_mqtt_t *a = client("t-ret-pub", true, 0);
    assert_true(wait_for(a, &ra, &ra.connected, 1, 5000));
    publish(a, topic, "{\"generation\":7}", 1, true);
    drv_mqtt_free(a, 2000); /* a clean disconnect flushes the QoS 1 publish first */

    drv_mqtt_t *b = client("t-ret-sub", true, 0);
    subscribe(b, "drover/v1/node/late-1/#"); /* before connecting: sent at connect */
    assert_true(wait_for(b, &rb, &rb.messages, 1, 5000));
    assert_string_equal(rb.topic, topic);
    assert_string_equal(rb.payload, "{\"generation\":7}");
    assert_true(rb.retained);
    drv_mqtt_free(b, 1000);
}

static void test_will_of_killed_client(void **state)
{
    (void)state;
    rec_t r = {0};
    drv_mqtt_t *w = client("t-will-watch", true, 0);
    assert_true(wait_for(w, &r, &r.connected, 1, 5000));
    subscribe(w, "drover/v1/node/+/online");
    usleep(200000);

    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* exec ourselves: Paho's threads in this process must not be inherited half-way. */
        char fd[16];
        snprintf(fd, sizeof fd, "%d", pfd[1]);
        close(pfd[0]);
        execl(g_self, g_self, "will-child", g_uri, fd, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char ok = 0;
    assert_int_equal(read(pfd[0], &ok, 1), 1); /* the child is connected */
    close(pfd[0]);
    /* The child published online=true (retained): wait for it, then kill it like a power cut. */
    assert_true(wait_for(w, &r, &r.messages, 1, 5000));
    assert_non_null(strstr(r.payload, "\"online\":true"));
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    assert_true(wait_for(w, &r, &r.messages, 2, 5000));
    assert_string_equal(r.topic, "drover/v1/node/will-1/online");
    drv_proto_online_t on;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_proto_online_parse(r.payload, strlen(r.payload), &on, &err), DRV_OK);
    assert_false(on.online);
    drv_mqtt_free(w, 1000);
}

static int will_child(const char *uri, int fd)
{
    char topic[DRV_PROTO_TOPIC_MAX], will[64], online[128], now[DRV_PROTO_TIME_MAX + 1];
    drv_error_t err = DRV_ERROR_INIT;
    drv_proto_now(now, sizeof now);
    if (drv_proto_topic(topic, sizeof topic, "will-1", DRV_PROTO_ONLINE, NULL, &err) != DRV_OK ||
        drv_proto_online_format(false, NULL, NULL, will, sizeof will, &err) != DRV_OK ||
        drv_proto_online_format(true, now, NULL, online, sizeof online, &err) != DRV_OK)
        return 2;
    drv_mqtt_opts_t o = {.server_uri = uri,
                         .client_id = "t-will-child",
                         .keepalive_s = 5,
                         .will_topic = topic,
                         .will_payload = will,
                         .will_len = strlen(will),
                         .will_qos = 1,
                         .will_retain = true};
    drv_mqtt_t *c = NULL;
    if (drv_mqtt_new(&o, &c, &err) != DRV_OK)
        return 2;
    rec_t r = {0};
    if (!wait_for(c, &r, &r.connected, 1, 5000))
        return 3;
    if (drv_mqtt_publish(c, topic, online, strlen(online), 1, true, &err) != DRV_OK)
        return 4;
    if (write(fd, "1", 1) != 1)
        return 5;
    for (;;)
        pause();
}

static void test_full_queue_holds_messages_back(void **state)
{
    (void)state;
    rec_t r = {0}, rp = {0};
    drv_mqtt_opts_t o = {
        .server_uri = g_uri, .client_id = "t-slow", .clean_session = true, .max_queued = 2};
    drv_mqtt_t *c = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_mqtt_new(&o, &c, &err), DRV_OK);
    assert_true(wait_for(c, &r, &r.connected, 1, 5000));
    subscribe(c, "slow/#");
    drv_mqtt_t *p = client("t-slow-pub", true, 0);
    assert_true(wait_for(p, &rp, &rp.connected, 1, 5000));
    /* The SUBACK is not reported: probe until the subscription carries messages. */
    for (int i = 0; i < 100 && r.messages == 0; i++) {
        publish(p, "slow/probe", "probe", 1, false);
        wait_for(c, &r, &r.messages, 1, 100);
    }
    assert_true(r.messages >= 1);
    wait_for(c, &r, &r.messages, 1000, 300); /* drain extra probes */
    r.messages = 0;
    /* 20 QoS 1 messages while the owner does not poll: the queue holds 2, Paho keeps the rest
     * (back-pressure), nothing is lost and the order is kept. */
    for (int i = 0; i < 20; i++) {
        char b[16];
        snprintf(b, sizeof b, "%d", i);
        publish(p, "slow/x", b, 1, false);
    }
    usleep(scaled(1000) * 1000);
    bool all = wait_for(c, &r, &r.messages, 20, 10000);
    if (!all)
        fail_msg("got %u messages, last %s", r.messages, r.payload);
    assert_string_equal(r.payload, "19");
    drv_mqtt_free(p, 1000);
    drv_mqtt_free(c, 1000);
}

/* An owner that stops polling for three keep-alives (a hub busy with a big burst) keeps its
 * connection: Paho's receive thread is held at most half a keep-alive for a QoS 1 message
 * (then it is queued past the bound), and QoS 0 messages on a full queue are dropped and
 * counted (drop_qos0_when_full). Before, the held thread read no PINGRESP and Paho closed the
 * connection. */
static void test_busy_owner_keeps_connection(void **state)
{
    (void)state;
    rec_t r = {0}, rp = {0};
    drv_mqtt_opts_t o = {.server_uri = g_uri,
                         .client_id = "t-busy",
                         .clean_session = true,
                         .keepalive_s = 2,
                         .max_queued = 2,
                         .drop_qos0_when_full = true};
    drv_mqtt_t *c = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_mqtt_new(&o, &c, &err), DRV_OK);
    assert_true(wait_for(c, &r, &r.connected, 1, 5000));
    subscribe(c, "busy/#");
    drv_mqtt_t *p = client("t-busy-pub", true, 0);
    assert_true(wait_for(p, &rp, &rp.connected, 1, 5000));
    for (int i = 0; i < 100 && r.messages == 0; i++) {
        publish(p, "busy/probe", "probe", 1, false);
        wait_for(c, &r, &r.messages, 1, 100);
    }
    assert_true(r.messages >= 1);
    wait_for(c, &r, &r.messages, 1000, 300); /* drain extra probes */
    r.messages = 0;
    /* 6 QoS 1 messages (within 4 x max_queued) and 40 QoS 0 ones, then no poll for 6 s. */
    for (int i = 0; i < 6; i++) {
        char b[16];
        snprintf(b, sizeof b, "%d", i);
        publish(p, "busy/q1", b, 1, false);
        for (int k = 0; k < 10 && i < 4; k++)
            publish(p, "busy/q0", "beat", 0, false);
    }
    usleep(scaled(6000) * 1000);
    assert_true(drv_mqtt_connected(c));
    wait_for(c, &r, &r.messages, 1000, 1000);
    assert_int_equal(r.disconnected, 0);
    assert_true(drv_mqtt_dropped(c) > 0);
    /* every QoS 1 message, in order, whatever QoS 0 ones came through */
    assert_string_equal(r.topic, "busy/q1");
    assert_string_equal(r.payload, "5");
    assert_true(r.messages >= 6);
    print_message("    delivered %u, dropped %llu (QoS 0)\n", r.messages,
                  (unsigned long long)drv_mqtt_dropped(c));
    drv_mqtt_free(p, 1000);
    drv_mqtt_free(c, 1000);
}

static void test_reconnect_after_broker_restart(void **state)
{
    (void)state;
    rec_t r = {0}, rp = {0};
    /* Clean session: only the wrapper's own resubscription can bring messages back. */
    drv_mqtt_t *c = client("t-reconnect", true, 0);
    assert_true(wait_for(c, &r, &r.connected, 1, 5000));
    subscribe(c, "re/#");
    usleep(200000);

    broker_stop();
    assert_true(wait_for(c, &r, &r.disconnected, 1, 15000));
    assert_false(drv_mqtt_connected(c));
    /* Keep polling while the broker is away: the client retries with back-off. */
    rec_t dummy = {0};
    wait_for(c, &dummy, &dummy.connected, 1, 300);
    /* A publish while away is buffered by Paho and sent after the reconnect. */
    publish(c, "queued/x", "while-away", 1, true);
    wait_for(c, &dummy, &dummy.connected, 1, 400);
    broker_start();
    assert_true(wait_for(c, &r, &r.connected, 2, 10000));

    drv_mqtt_t *p = client("t-reconnect-pub", true, 0);
    assert_true(wait_for(p, &rp, &rp.connected, 1, 5000));
    for (int i = 0; i < 100 && r.messages == 0; i++) {
        publish(p, "re/x", "back", 1, false);
        wait_for(c, &r, &r.messages, 1, 100);
    }
    assert_true(r.messages >= 1);
    assert_string_equal(r.payload, "back");
    subscribe(p, "queued/#");
    assert_true(wait_for(p, &rp, &rp.messages, 1, 5000));
    assert_string_equal(rp.payload, "while-away");
    assert_true(rp.retained);
    drv_mqtt_free(p, 1000);
    drv_mqtt_free(c, 1000);
}

static void test_jitter_differs_between_clients(void **state)
{
    (void)state;
    int dead = free_port();
    assert_true(dead > 0);
    char uri[64];
    snprintf(uri, sizeof uri, "tcp://127.0.0.1:%d", dead);
    drv_mqtt_opts_t o = {.server_uri = uri,
                         .client_id = "t-jit-a",
                         .backoff_min_ms = 20,
                         .backoff_max_ms = 200,
                         .seed = 11};
    drv_mqtt_t *a = NULL, *b = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_mqtt_new(&o, &a, &err), DRV_OK);
    o.client_id = "t-jit-b";
    o.seed = 12;
    assert_int_equal(drv_mqtt_new(&o, &b, &err), DRV_OK);
    unsigned seen_a[64], seen_b[64];
    size_t na = 0, nb = 0;
    uint64_t end = now_ms() + scaled(2000);
    while (now_ms() < end && (na < 6 || nb < 6)) {
        unsigned da = drv_mqtt_last_backoff_ms(a), db = drv_mqtt_last_backoff_ms(b);
        if (na == 0 || seen_a[na - 1] != da)
            if (na < 64)
                seen_a[na++] = da;
        if (nb == 0 || seen_b[nb - 1] != db)
            if (nb < 64)
                seen_b[nb++] = db;
        usleep(2000);
    }
    assert_true(na >= 3 && nb >= 3);
    size_t same = 0, n = na < nb ? na : nb;
    for (size_t i = 0; i < n; i++) {
        assert_true(seen_a[i] <= 200 && seen_b[i] <= 200);
        same += seen_a[i] == seen_b[i];
    }
    assert_true(same < n);
    assert_false(drv_mqtt_connected(a));
    /* One DISCONNECTED event for the whole outage, not one per attempt. */
    rec_t ra = {0};
    drv_mqtt_poll(a, on_event, &ra);
    assert_int_equal(ra.disconnected, 1);
    assert_int_equal(ra.connected, 0);
    drv_mqtt_free(a, 100);
    drv_mqtt_free(b, 100);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/drover-mqtt-XXXXXX");
    if (mkdtemp(g_dir) == NULL || chmod(g_dir, 0755) != 0)
        return -1;
    g_port = free_port();
    if (g_port <= 0)
        return -1;
    snprintf(g_uri, sizeof g_uri, "tcp://127.0.0.1:%d", g_port);
    char conf[128];
    snprintf(conf, sizeof conf, "%s/mosquitto.conf", g_dir);
    FILE *f = fopen(conf, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", g_port);
    fclose(f);
    chmod(conf, 0644);
    broker_start();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    broker_stop();
    char path[128];
    snprintf(path, sizeof path, "%s/mosquitto.conf", g_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/mosquitto.log", g_dir);
    /* The broker's side of the story, shown by ctest --output-on-failure. */
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        char line[512];
        fprintf(stderr, "--- mosquitto log (%s) ---\n", path);
        while (fgets(line, sizeof line, f))
            fputs(line, stderr);
        fclose(f);
    }
    unlink(path);
    rmdir(g_dir);
    return 0;
}

static bool have_mosquitto(void)
{
    return access("/usr/sbin/mosquitto", X_OK) == 0 ||
           system("command -v mosquitto >/dev/null 2>&1") == 0;
}

int main(int argc, char **argv)
{
    g_self = argv[0];
    const char *tf = getenv("DROVER_TEST_TIME_FACTOR");
    if (tf && strtod(tf, NULL) >= 1)
        g_factor = strtod(tf, NULL);
    if (argc == 4 && strcmp(argv[1], "will-child") == 0)
        return will_child(argv[2], (int)strtol(argv[3], NULL, 10));
    signal(SIGPIPE, SIG_IGN);
    if (!have_mosquitto()) {
        fprintf(stderr, "mosquitto not installed\n");
        return getenv("DROVER_ALLOW_SKIP") ? 77 : 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pubsub),
        cmocka_unit_test(test_retained_late_subscriber),
        cmocka_unit_test(test_will_of_killed_client),
        cmocka_unit_test(test_jitter_differs_between_clients),
        cmocka_unit_test(test_full_queue_holds_messages_back),
        cmocka_unit_test(test_busy_owner_keeps_connection),
        cmocka_unit_test(test_reconnect_after_broker_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
