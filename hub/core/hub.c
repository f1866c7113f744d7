/* The hub's context and its one event loop: poll() over the API's epoll fd and a signalfd for
 * SIGTERM/SIGINT. Everything the hub does runs on this thread, so the store needs no locks. */
#include "hub.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/log.h"

struct drv_hub {
    drv_hstore_t *store;
    drv_api_t *api;
    char addr[64];
};

drv_err_t drv_hub_parse_listen(const char *s, char *addr, size_t addrsz, uint16_t *port,
                               drv_error_t *err)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || colon == s)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "--listen \"%.64s\": expected ADDR:PORT",
                             s ? s : "");
    const char *a = s;
    size_t alen = (size_t)(colon - s);
    if (*a == '[') {
        if (alen < 3 || a[alen - 1] != ']')
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "--listen \"%.64s\": an IPv6 address goes in brackets", s);
        a++, alen -= 2;
    }
    if (alen >= addrsz)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "--listen \"%.64s\": address too long", s);
    char *end = NULL;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 0 || p > 65535)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "--listen \"%.64s\": port must be a number from 0 to 65535", s);
    memcpy(addr, a, alen);
    addr[alen] = '\0';
    *port = (uint16_t)p;
    return DRV_OK;
}

drv_err_t drv_hub_new(const drv_hub_opts_t *opts, drv_hub_t **out, drv_error_t *err)
{
    char addr[64];
    uint16_t port = 0;
    drv_err_t e = drv_hub_parse_listen(opts->listen ? opts->listen : DRV_HUB_DEFAULT_LISTEN, addr,
                                       sizeof(addr), &port, err);
    if (e != DRV_OK)
        return e;
    const char *dir = opts->data_dir ? opts->data_dir : DRV_HUB_DEFAULT_DATA;
    e = drv_file_mkdir_p(dir, 0700, err);
    if (e != DRV_OK)
        return drv_error_wrap(err, "data directory %s", dir);
    char db[PATH_MAX];
    if ((size_t)snprintf(db, sizeof(db), "%s/hub.db", dir) >= sizeof(db))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "data directory path too long");
    drv_hub_t *hub = calloc(1, sizeof(*hub));
    if (!hub)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    snprintf(hub->addr, sizeof(hub->addr), "%s", addr);
    e = drv_hstore_open(db, &hub->store, err);
    if (e != DRV_OK) {
        free(hub);
        return drv_error_wrap(err, "store %s", db);
    }
    drv_api_opts_t ao = {.bind_addr = addr, .port = port, .store = hub->store};
    e = drv_api_new(&ao, &hub->api, err);
    if (e != DRV_OK) {
        drv_hstore_close(hub->store);
        free(hub);
        return e;
    }
    *out = hub;
    return DRV_OK;
}

void drv_hub_free(drv_hub_t *hub)
{
    if (!hub)
        return;
    drv_api_free(hub->api);
    drv_hstore_close(hub->store);
    free(hub);
}

drv_api_t *drv_hub_api(drv_hub_t *hub)
{
    return hub->api;
}

drv_hstore_t *drv_hub_store(drv_hub_t *hub)
{
    return hub->store;
}

drv_err_t drv_hub_run(drv_hub_t *hub, drv_error_t *err)
{
    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, &old) < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "sigprocmask");
    _cleanup_close_ int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        int e = errno;
        sigprocmask(SIG_SETMASK, &old, NULL);
        return drv_error_set(err, DRV_ERR_IO, e, "signalfd");
    }
    const char *a = hub->addr;
    bool v6 = strchr(a, ':') != NULL;
    printf("drover-hub: serving http://%s%s%s:%u\n", v6 ? "[" : "", a, v6 ? "]" : "",
           (unsigned)drv_api_port(hub->api));
    fflush(stdout);
    drv_log_info("hub serving", "addr=%s port=%u rv=%llu", a, (unsigned)drv_api_port(hub->api),
                 (unsigned long long)drv_hstore_rv(hub->store));
    drv_err_t ret = DRV_OK;
    for (;;) {
        struct pollfd pfd[2] = {{.fd = drv_api_fd(hub->api), .events = POLLIN},
                                {.fd = sfd, .events = POLLIN}};
        int r = poll(pfd, 2, drv_api_timeout_ms(hub->api));
        if (r < 0 && errno != EINTR) {
            ret = drv_error_set(err, DRV_ERR_IO, errno, "poll");
            break;
        }
        if (r > 0 && (pfd[1].revents & POLLIN)) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                drv_log_info("hub stopping", "signal=%u", si.ssi_signo);
                break;
            }
        }
        drv_api_run(hub->api);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return ret;
}
