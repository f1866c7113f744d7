/* The hub's side of the drover-auth broker plugin (plugin/drover_auth.c): a unix socket in the
 * broker directory where the plugin asks, at each device CONNECT, whether that node may connect
 * with that key. One question per connection: "drover-auth v1 NODE SPKI-BASE64 [ADDR]\n" (ADDR:
 * the client's IP address, for the pod network's endpoints), answered "ok\n" or "no REASON\n"
 * (see broker.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "broker/broker.h"
#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/log.h"
#include "drover/proc.h"
#include "drover/protocol.h"

#define AUTH_REQ_MAX 2048
#define AUTH_READ_MS 500 /* the plugin writes its whole line at once */

struct drv_broker_auth {
    int fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    uid_t peer_uid;
    drv_broker_identity_fn fn;
    void *ctx;
};

drv_err_t drv_broker_auth_listen(const char *path, uid_t peer_uid, gid_t peer_gid,
                                 drv_broker_identity_fn fn, void *ctx, drv_broker_auth_t **out,
                                 drv_error_t *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!path || !fn || drv_fmt(sa.sun_path, sizeof(sa.sun_path), "%s", path) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "broker auth socket: path: too long");
    drv_broker_auth_t *a = calloc(1, sizeof(*a));
    if (!a)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "broker auth socket");
    if (drv_fmt(a->path, sizeof(a->path), "%s", path) != DRV_OK) {
        free(a);
        return drv_error_set(err, DRV_ERR_INVALID, 0, "broker auth socket: path: too long");
    }
    a->peer_uid = peer_uid;
    a->fn = fn;
    a->ctx = ctx;
    a->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (a->fd < 0) {
        free(a);
        return drv_error_set(err, DRV_ERR_IO, errno, "broker auth socket");
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        drv_error_set(err, DRV_ERR_IO, errno, "broker auth socket: remove %s", path);
        goto fail;
    }
    /* Created 0600 (umask) and then given to the broker's user alone. */
    mode_t old = umask(0177);
    int b = bind(a->fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (b < 0) {
        drv_error_set(err, DRV_ERR_IO, errno, "broker auth socket: bind %s", path);
        goto fail;
    }
    if (geteuid() == 0 && peer_uid != 0 && lchown(path, peer_uid, peer_gid) < 0) {
        drv_error_set(err, DRV_ERR_IO, errno, "broker auth socket: chown %s", path);
        goto fail;
    }
    if (listen(a->fd, 128) < 0) {
        drv_error_set(err, DRV_ERR_IO, errno, "broker auth socket: listen %s", path);
        goto fail;
    }
    *out = a;
    return DRV_OK;
fail:
    close(a->fd);
    unlink(path);
    free(a);
    return err ? err->code : DRV_ERR_IO;
}

int drv_broker_auth_fd(const drv_broker_auth_t *a)
{
    return a ? a->fd : -1;
}

/* Reads one line (without its newline) within AUTH_READ_MS; false on anything else. */
static bool read_line(int fd, char *buf, size_t bufsz)
{
    size_t got = 0;
    long long deadline = drv_now_ms() + AUTH_READ_MS;
    while (got + 1 < bufsz) {
        long long left = deadline - drv_now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        ssize_t n = recv(fd, buf + got, bufsz - 1 - got, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return false;
        got += (size_t)n;
        buf[got] = '\0';
        char *nl = memchr(buf, '\n', got);
        if (nl) {
            *nl = '\0';
            return nl == buf + got - 1; /* exactly one line */
        }
    }
    return false;
}

static void answer(drv_broker_auth_t *a, int fd)
{
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 ||
        (cred.uid != 0 && cred.uid != a->peer_uid && cred.uid != geteuid())) {
        drv_log_warn("broker auth: a question from a stranger refused", "uid=%d",
                     cl == sizeof(cred) ? (int)cred.uid : -1);
        return;
    }
    char req[AUTH_REQ_MAX], why[200] = "", reply[256];
    drv_error_t ne = DRV_ERROR_INIT;
    const char *node = NULL, *spki = NULL, *addr = NULL;
    bool ok = false;
    if (!read_line(fd, req, sizeof(req)) || strncmp(req, "drover-auth v1 ", 15)) {
        DRV_FMT_LIT(why, "malformed question");
    } else {
        node = req + 15;
        char *sp = strchr(req + 15, ' ');
        if (sp) {
            *sp = '\0';
            spki = sp + 1;
            char *sp2 = strchr(sp + 1, ' ');
            if (sp2) { /* the address, from a plugin that says it */
                *sp2 = '\0';
                addr = sp2 + 1;
            }
        }
        unsigned char ab[16];
        if (!spki || !*spki || drv_proto_check_node(node, &ne) != DRV_OK ||
            (addr && inet_pton(AF_INET, addr, ab) != 1 && inet_pton(AF_INET6, addr, ab) != 1))
            DRV_FMT_LIT(why, "malformed question");
        else
            ok = a->fn(a->ctx, node, spki, addr, why, sizeof(why));
    }
    for (char *p = why; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    int n = ok ? snprintf(reply, sizeof(reply), "ok\n")
               : snprintf(reply, sizeof(reply), "no %s\n", why[0] ? why : "refused");
    if (!ok)
        drv_log_info("broker auth: connection refused", "node=%s why=\"%s\"", node ? node : "?",
                     why);
    if (n > 0 && send(fd, reply, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        drv_log_debug("broker auth: cannot answer", "errno=%d", errno);
}

void drv_broker_auth_serve(drv_broker_auth_t *a)
{
    if (!a)
        return;
    for (int i = 0; i < 256; i++) {
        int fd = accept4(a->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN: none left */
        answer(a, fd);
        close(fd);
    }
}

void drv_broker_auth_free(drv_broker_auth_t *a)
{
    if (!a)
        return;
    close(a->fd);
    unlink(a->path);
    free(a);
}
