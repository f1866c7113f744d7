/* hub/core: the hub context and its loop: data directory created, bad options refused, fd and
 * tick hooks called, the change hook fired by a write through the API, stop from a hook. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hub.h"

typedef struct {
    drv_hub_t *hub;
    int efd;
    int client;
    unsigned ticks, fd_calls, changes;
} ctx_t;

static void on_fd(void *c, int fd, short revents)
{
    ctx_t *x = c;
    uint64_t v;
    assert_true(revents & POLLIN);
    assert_int_equal(read(fd, &v, sizeof(v)), (ssize_t)sizeof(v));
    x->fd_calls++;
}

static int64_t on_tick(void *c)
{
    ctx_t *x = c;
    x->ticks++;
    if (x->ticks == 1) {
        uint64_t one = 1;
        assert_int_equal(write(x->efd, &one, sizeof(one)), (ssize_t)sizeof(one));
    }
    if (x->ticks == 2) {
        /* A write through the API: the change hook must fire. */
        x->client = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons(drv_api_port(drv_hub_api(x->hub)))};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(x->client, (struct sockaddr *)&sa, sizeof(sa)), 0);
        static const char body[] = "{\"metadata\":{\"name\":\"c\"}}";
        char req[512];
        int n = snprintf(req, sizeof(req),
                         "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n"
                         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                         sizeof(body) - 1, body);
        assert_int_equal(write(x->client, req, (size_t)n), n);
    }
    if (x->ticks > 2000)
        drv_hub_stop(x->hub); /* safety net: the assertions below then fail */
    return 2;
}

static void on_change(void *c)
{
    ctx_t *x = c;
    x->changes++;
    drv_hub_stop(x->hub);
}

static void test_loop_hooks(void **state)
{
    (void)state;
    char dir[64] = "/tmp/drv-hub-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char data[128];
    snprintf(data, sizeof(data), "%s/sub/data", dir);
    drv_hub_opts_t o = {.data_dir = data, .listen = "127.0.0.1:0"};
    drv_error_t err = DRV_ERROR_INIT;
    ctx_t x = {.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), .client = -1};
    assert_int_equal(drv_hub_new(&o, &x.hub, &err), DRV_OK);
    struct stat st;
    assert_int_equal(stat(data, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_non_null(drv_hub_store(x.hub));
    assert_int_equal(drv_hub_add_fd(x.hub, x.efd, POLLIN, on_fd, &x, &err), DRV_OK);
    assert_int_equal(drv_hub_add_fd(x.hub, -1, POLLIN, on_fd, &x, &err), DRV_ERR_INVALID);
    assert_int_equal(drv_hub_add_tick(x.hub, on_tick, &x, &err), DRV_OK);
    assert_int_equal(drv_hub_on_change(x.hub, on_change, &x, &err), DRV_OK);
    assert_int_equal(drv_hub_run(x.hub, &err), DRV_OK);
    assert_int_equal(x.fd_calls, 1);
    assert_int_equal(x.changes, 1);
    assert_true(x.ticks >= 2 && x.ticks <= 2000);
    cJSON *obj = NULL;
    assert_int_equal(
        drv_hstore_get(drv_hub_store(x.hub), DRV_KIND_CONFIGMAP, "default", "c", &obj, &err),
        DRV_OK);
    cJSON_Delete(obj);
    drv_hub_free(x.hub);
    close(x.client);
    close(x.efd);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_bad_options(void **state)
{
    (void)state;
    char dir[64] = "/tmp/drv-hub-XXXXXX";
    assert_non_null(mkdtemp(dir));
    drv_error_t err = DRV_ERROR_INIT;
    drv_hub_t *hub = NULL;
    drv_hub_opts_t o = {.data_dir = dir, .listen = "127.0.0.1"};
    assert_int_equal(drv_hub_new(&o, &hub, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "--listen"));
    o.listen = "not-an-ip:80";
    assert_int_equal(drv_hub_new(&o, &hub, &err), DRV_ERR_INVALID);
    /* The data directory is a file. */
    char file[128];
    snprintf(file, sizeof(file), "%s/f", dir);
    int fd = open(file, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    o.data_dir = file;
    o.listen = "127.0.0.1:0";
    assert_int_not_equal(drv_hub_new(&o, &hub, &err), DRV_OK);
    assert_non_null(strstr(err.msg, file));
    assert_null(hub);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loop_hooks),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
