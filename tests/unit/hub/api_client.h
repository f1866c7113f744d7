/* A raw HTTP/1.1 client for the hub API's unit tests: requests go over a real 127.0.0.1
 * socket while the test's own thread runs the API (drv_api_run), as the hub's loop would.
 * Header-only: each test program includes it once. */
#ifndef DROVER_TEST_API_CLIENT_H
#define DROVER_TEST_API_CLIENT_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "api/api.h"
#include "drover/buf.h"

static int64_t apic_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A non-blocking connection to the API's port on 127.0.0.1. */
static int apic_connect(drv_api_t *api)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(drv_api_port(api))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Runs the API while sending raw (rawlen bytes; the server may close early, as on a 413) and,
 * with out, reading the answer into out, for at most ms. Without out it returns once raw is
 * sent; with out once the peer closes, or once stop (if not NULL) stands in out after the end
 * of the answer's head. */
static void apic_pump(drv_api_t *api, int fd, const char *raw, size_t rawlen, drv_buf_t *out,
                      const char *stop, int64_t ms)
{
    size_t sent = 0;
    int64_t end = apic_now_ms() + ms;
    while (apic_now_ms() < end) {
        if (sent < rawlen) {
            ssize_t w = send(fd, raw + sent, rawlen - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN)
                sent = rawlen; /* the server closed early */
        }
        struct pollfd p = {.fd = drv_api_fd(api), .events = POLLIN};
        poll(&p, 1, out ? 5 : 1);
        drv_api_run(api);
        if (!out) {
            if (sent >= rawlen)
                return;
            continue;
        }
        char buf[8192];
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r == 0)
            return;
        if (r > 0) {
            assert_int_equal(drv_buf_append(out, buf, (size_t)r), DRV_OK);
            const char *s = drv_buf_str(out);
            if (stop && strstr(s, stop) && strstr(s, "\r\n\r\n"))
                return;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            return;
        }
    }
}

/* A request into raw: method, path, Content-Length, then hdrs (header lines, each ending in
 * \r\n; may be NULL) and body (may be NULL). */
static void apic_request(drv_buf_t *raw, const char *method, const char *path, const char *hdrs,
                         const char *body)
{
    size_t blen = body ? strlen(body) : 0;
    assert_int_equal(drv_buf_printf(raw,
                                    "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                    "Content-Length: %zu\r\n%s\r\n",
                                    method, path, blen, hdrs ? hdrs : ""),
                     DRV_OK);
    if (body)
        assert_int_equal(drv_buf_append(raw, body, blen), DRV_OK);
}

#endif
