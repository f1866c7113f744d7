/* hub/broker: a real Mosquitto child on a free 127.0.0.1 port in a temp data directory, used
 * through mosquitto_pub/mosquitto_sub: it serves, a retained message survives a restart, a
 * killed broker is restarted by the supervisor, and a busy port, a missing binary or a bad
 * config line give an error that says so. Skipped without the mosquitto packages. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
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

#include "drover/proc.h"
#include "broker/broker.h"

static bool have_tools(void)
{
    return access(DRV_BROKER_DEFAULT_MOSQUITTO, X_OK) == 0 &&
           access("/usr/bin/mosquitto_pub", X_OK) == 0 &&
           access("/usr/bin/mosquitto_sub", X_OK) == 0;
}

static void make_dir(char *dir)
{
    snprintf(dir, 64, "/tmp/drv-broker-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void remove_dir(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static int pub(uint16_t port, const char *topic, const char *msg, bool retain)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "mosquitto_pub -h 127.0.0.1 -p %u -q 1 %s -t '%s' -m '%s' 2>&1",
             port, retain ? "-r" : "", topic, msg);
    return system(cmd);
}

/* First message on topic within 3 s, into out ("" if none). */
static void sub_one(uint16_t port, const char *topic, char *out, size_t outsz)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "mosquitto_sub -h 127.0.0.1 -p %u -q 1 -C 1 -W 3 -t '%s' 2>&1", port,
             topic);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    out[0] = '\0';
    if (!fgets(out, (int)outsz, f))
        out[0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    pclose(f);
}

static void test_serves_and_persists(void **state)
{
    (void)state;
    if (!have_tools())
        skip();
    char dir[64];
    make_dir(dir);
    drv_broker_opts_t o = {.data_dir = dir, .port = 0};
    drv_broker_t *b = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_broker_start(&o, &b, &err), DRV_OK);
    uint16_t port = drv_broker_port(b);
    assert_true(port > 0);
    char url[64];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", port);
    assert_string_equal(drv_broker_url(b), url);
    assert_true(drv_broker_pid(b) > 0);

    /* The generated config: local listener, persistence in the broker dir. */
    char conf[128], line[256];
    snprintf(conf, sizeof(conf), "%s/broker/mosquitto.conf", dir);
    FILE *f = fopen(conf, "r");
    assert_non_null(f);
    bool listener = false, persist = false;
    char want[64];
    snprintf(want, sizeof(want), "listener %u 127.0.0.1\n", port);
    while (fgets(line, sizeof(line), f)) {
        listener |= strcmp(line, want) == 0;
        persist |= strncmp(line, "persistence true", 16) == 0;
    }
    fclose(f);
    assert_true(listener);
    assert_true(persist);

    assert_int_equal(pub(port, "drover/test/desired", "v1", true), 0);
    char got[128];
    sub_one(port, "drover/test/desired", got, sizeof(got));
    assert_string_equal(got, "v1");

    /* Stop and start again: the retained message is delivered from the persistence file. */
    drv_broker_free(b);
    b = NULL;
    o.port = port;
    assert_int_equal(drv_broker_start(&o, &b, &err), DRV_OK);
    sub_one(port, "drover/test/desired", got, sizeof(got));
    assert_string_equal(got, "v1");
    drv_broker_free(b);
    remove_dir(dir);
}

static void test_restarts_after_kill(void **state)
{
    (void)state;
    if (!have_tools())
        skip();
    char dir[64];
    make_dir(dir);
    drv_broker_opts_t o = {.data_dir = dir};
    drv_broker_t *b = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_broker_start(&o, &b, &err), DRV_OK);
    uint16_t port = drv_broker_port(b);
    pid_t first = drv_broker_pid(b);
    assert_int_equal(drv_broker_tick(b, drv_now_ms()), 500); /* healthy: poll again */
    assert_int_equal(kill(first, SIGKILL), 0);

    /* The supervisor notices and restarts within the first back-off (1 s). */
    int64_t t0 = drv_now_ms();
    pid_t next = 0;
    while (drv_now_ms() - t0 < 3000) {
        (void)drv_broker_tick(b, drv_now_ms());
        next = drv_broker_pid(b);
        if (next > 0 && next != first)
            break;
        usleep(20000);
    }
    assert_true(next > 0 && next != first);
    assert_true(drv_now_ms() - t0 < 2000);

    /* Clients connect again on the same port (give it a moment to listen). */
    int rc = -1;
    for (int i = 0; i < 50 && rc != 0; i++) {
        rc = pub(port, "drover/test/again", "v2", true);
        if (rc != 0)
            usleep(100000);
    }
    assert_int_equal(rc, 0);
    char got[128];
    sub_one(port, "drover/test/again", got, sizeof(got));
    assert_string_equal(got, "v2");

    /* A second death in a row waits longer (2 s). */
    first = drv_broker_pid(b);
    assert_int_equal(kill(first, SIGKILL), 0);
    usleep(200000);
    int64_t wait = drv_broker_tick(b, drv_now_ms());
    assert_int_equal(drv_broker_pid(b), 0);
    /* 2 s from when the death was handled, which reads its own clock a little after the
     * now given to the tick (more so under the sanitizers: it reads the child's log). */
    assert_true(wait > 1000 && wait <= 2300);
    assert_false(drv_broker_child_exited(b, 1, 0)); /* not the broker */

    drv_broker_stop(b);
    assert_int_equal(drv_broker_tick(b, drv_now_ms() + 60000), -1); /* no more restarts */
    assert_int_equal(drv_broker_pid(b), 0);
    drv_broker_free(b);
    remove_dir(dir);
}

/* A hub killed outright (kill -9) leaves no broker behind holding the port. */
static void test_dies_with_hub(void **state)
{
    (void)state;
    if (!have_tools())
        skip();
    char dir[64];
    make_dir(dir);
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t hub = fork();
    assert_true(hub >= 0);
    if (hub == 0) {
        drv_broker_opts_t o = {.data_dir = dir};
        drv_broker_t *b = NULL;
        drv_error_t err = DRV_ERROR_INIT;
        pid_t bp = drv_broker_start(&o, &b, &err) == DRV_OK ? drv_broker_pid(b) : 0;
        if (write(pfd[1], &bp, sizeof(bp)) != (ssize_t)sizeof(bp))
            _exit(1);
        pause();
        _exit(0);
    }
    close(pfd[1]);
    pid_t bp = 0;
    assert_int_equal(read(pfd[0], &bp, sizeof(bp)), (ssize_t)sizeof(bp));
    close(pfd[0]);
    assert_true(bp > 0);
    assert_int_equal(kill(hub, SIGKILL), 0);
    assert_int_equal(waitpid(hub, NULL, 0), hub);
    bool gone = false;
    for (int i = 0; i < 100 && !gone; i++) {
        char path[64], st[256] = "";
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)bp);
        FILE *f = fopen(path, "r");
        if (!f) {
            gone = true;
            break;
        }
        if (!fgets(st, sizeof(st), f))
            st[0] = '\0';
        fclose(f);
        char *rp = strrchr(st, ')');
        gone = rp && (rp[2] == 'Z' || rp[2] == 'X'); /* exited, not yet reaped by init */
        if (!gone)
            usleep(50000);
    }
    if (!gone)
        kill(bp, SIGKILL);
    assert_true(gone);
    remove_dir(dir);
}

static void test_port_in_use(void **state)
{
    (void)state;
    if (!have_tools())
        skip();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 1), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    uint16_t port = ntohs(sa.sin_port);

    char dir[64];
    make_dir(dir);
    drv_broker_opts_t o = {.data_dir = dir, .port = port};
    drv_broker_t *b = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_broker_start(&o, &b, &err), DRV_ERR_EXISTS);
    assert_null(b);
    char want[64];
    snprintf(want, sizeof(want), "port %u on 127.0.0.1 is in use", port);
    assert_non_null(strstr(drv_error_msg(&err), want));
    close(fd);
    remove_dir(dir);
}

static void test_bad_setup(void **state)
{
    (void)state;
    char dir[64];
    make_dir(dir);
    drv_broker_t *b = NULL;
    drv_error_t err = DRV_ERROR_INIT;

    drv_broker_opts_t o = {.data_dir = dir, .mosquitto = "/nonexistent/mosquitto"};
    assert_int_equal(drv_broker_start(&o, &b, &err), DRV_ERR_NOTFOUND);
    assert_non_null(strstr(drv_error_msg(&err), "/nonexistent/mosquitto"));
    assert_non_null(strstr(drv_error_msg(&err), "mosquitto"));

    drv_error_clear(&err);
    o = (drv_broker_opts_t){.data_dir = dir, .listen = "localhost; rm -rf /"};
    assert_int_equal(drv_broker_start(&o, &b, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "listen address"));

    drv_error_clear(&err);
    o = (drv_broker_opts_t){.port = 0};
    assert_int_equal(drv_broker_start(&o, &b, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "data_dir"));

    if (have_tools()) {
        /* A config line Mosquitto refuses: the error quotes the broker's own complaint. */
        drv_error_clear(&err);
        o = (drv_broker_opts_t){.data_dir = dir, .extra = "bogus_option_xyz 1"};
        assert_int_equal(drv_broker_start(&o, &b, &err), DRV_ERR_IO);
        assert_non_null(strstr(drv_error_msg(&err), "bogus_option_xyz"));
    }
    assert_null(b);
    drv_broker_free(NULL);
    remove_dir(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serves_and_persists), cmocka_unit_test(test_restarts_after_kill),
        cmocka_unit_test(test_dies_with_hub),       cmocka_unit_test(test_port_in_use),
        cmocka_unit_test(test_bad_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
