/* The hub's Mosquitto child: config generation, start with a readiness check, supervision with
 * restart back-off, and an orderly stop. The broker's stderr goes to <data_dir>/broker/
 * mosquitto.log, which the supervisor caps; its last lines explain a failed start. */
#include "broker/broker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drover/fmt.h"
#include "drover/proc.h"
#include "drover/buf.h"
#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/log.h"
#include "drover/pki.h"
#include "drover/protocol.h"

#define LOG_CHECK_MS 10000
#define TAIL_BYTES 1536
#define PORT_RETRIES 20 /* x 100 ms */

struct drv_broker {
    char dir[PATH_MAX];  /* <data_dir>/broker */
    char conf[PATH_MAX]; /* <dir>/mosquitto.conf */
    char log[PATH_MAX];  /* <dir>/mosquitto.log */
    char mosq[PATH_MAX];
    char addr[64];
    uint16_t port;
    int family;
    char url[96];
    int logfd;       /* O_APPEND, handed to the child as stdout/stderr */
    off_t log_start; /* log size when the current child started: its lines come after */
    pid_t pid;
    bool stopped;
    bool drop; /* running as root: the child becomes run_uid/run_gid before exec */
    uid_t run_uid;
    gid_t run_gid;
    bool tls; /* TLS listener, client certificates, the drover-auth plugin */
    char plugin[PATH_MAX];
    char auth_path[PATH_MAX]; /* <dir>/auth.sock: the plugin asks the hub there */
    drv_broker_auth_t *auth;
    int64_t started_ms, restart_at_ms, backoff_ms, log_checked_ms;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Fills a sockaddr for the broker's address and port. */
static socklen_t make_addr(const drv_broker_t *b, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (b->family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        inet_pton(AF_INET6, b->addr, &s6->sin6_addr);
        return sizeof(*s6);
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    inet_pton(AF_INET, b->addr, &s4->sin_addr);
    return sizeof(*s4);
}

/* Binds the port once ourselves: a port in use gives an error naming it, rather than a broker
 * that dies (or a readiness check that connects to somebody else's listener). Port 0 is
 * resolved to a free one here. */
static drv_err_t claim_port(drv_broker_t *b, drv_error_t *err)
{
    _cleanup_close_ int fd = socket(b->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "broker: socket");
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_storage ss;
    socklen_t len = make_addr(b, b->port, &ss);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
        if (errno == EADDRINUSE)
            return drv_error_set(err, DRV_ERR_EXISTS, 0,
                                 "broker: port %u on %s is in use (another MQTT broker? stop it, "
                                 "choose another port, or pass --broker URL to use it)",
                                 b->port, b->addr);
        return drv_error_set(err, DRV_ERR_IO, errno, "broker: bind %s port %u", b->addr, b->port);
    }
    if (b->port == 0) {
        len = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
            return drv_error_set(err, DRV_ERR_IO, errno, "broker: getsockname");
        b->port = ntohs(b->family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    }
    return DRV_OK;
}

static bool port_accepts(const drv_broker_t *b)
{
    _cleanup_close_ int fd = socket(b->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_storage ss;
    socklen_t len = make_addr(b, b->port, &ss);
    return connect(fd, (struct sockaddr *)&ss, len) == 0;
}

/* The current child's last few log lines, on one line ("a | b | c"), for error messages. */
static void log_tail(const drv_broker_t *b, char *out, size_t outsz)
{
    out[0] = '\0';
    struct stat st;
    if (b->logfd < 0 || fstat(b->logfd, &st) < 0 || st.st_size <= b->log_start)
        return;
    off_t from = st.st_size - TAIL_BYTES > b->log_start ? st.st_size - TAIL_BYTES : b->log_start;
    char buf[TAIL_BYTES + 1];
    ssize_t n = pread(b->logfd, buf, (size_t)(st.st_size - from), from);
    if (n <= 0)
        return;
    buf[n] = '\0';
    /* Keep the last 4 lines. */
    char *start = buf;
    int lines = 0;
    for (char *p = buf + n - 1; p > buf; p--) {
        if (*p == '\n' && p[1] != '\0' && ++lines == 4) {
            start = p + 1;
            break;
        }
    }
    size_t o = 0;
    for (char *p = start; *p && o + 4 < outsz; p++) {
        if (*p == '\n') {
            if (p[1] == '\0')
                break;
            out[o++] = ' ', out[o++] = '|', out[o++] = ' ';
        } else {
            out[o++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
        }
    }
    out[o] = '\0';
}

#define BROKER_CERT_DAYS 397u

static bool is_wildcard(const char *addr)
{
    return strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0;
}

/* The broker's server certificate for key o->tls_key_pem, issued by the CA now. */
static drv_err_t issue_server_cert(const drv_broker_t *b, const drv_broker_opts_t *o, char **cert,
                                   drv_error_t *err)
{
    const char *dns[DRV_PKI_SAN_MAX], *ips[DRV_PKI_SAN_MAX];
    size_t nd = 0, ni = 0;
    dns[nd++] = "localhost";
    ips[ni++] = "127.0.0.1";
    ips[ni++] = "::1";
    if (!is_wildcard(b->addr) && strcmp(b->addr, "127.0.0.1") != 0 && strcmp(b->addr, "::1") != 0)
        ips[ni++] = b->addr;
    for (size_t i = 0; i < o->n_tls_sans; i++) {
        const char *n = o->tls_sans[i];
        unsigned char a6[16];
        bool ip = inet_pton(AF_INET, n, a6) == 1 || inet_pton(AF_INET6, n, a6) == 1;
        if (strcmp(n, "localhost") == 0 || strcmp(n, "127.0.0.1") == 0 || strcmp(n, "::1") == 0 ||
            (ni > 3 && strcmp(n, ips[3]) == 0))
            continue;
        if ((ip ? ni : nd) >= DRV_PKI_SAN_MAX)
            return drv_error_set(err, DRV_ERR_TOOBIG, 0, "broker: tls_sans: more than %d names",
                                 DRV_PKI_SAN_MAX);
        if (ip)
            ips[ni++] = n;
        else
            dns[nd++] = n;
    }
    _cleanup_free_ char *pub = NULL;
    drv_pki_issue_t io = {.cn = DRV_BROKER_HUB_USER,
                          .usage = DRV_PKI_SERVER_AUTH,
                          .dns_names = dns,
                          .n_dns = nd,
                          .ip_addrs = ips,
                          .n_ips = ni,
                          .days = BROKER_CERT_DAYS};
    drv_err_t e = drv_pki_key_public(o->tls_key_pem, &pub, err);
    if (e == DRV_OK)
        e = drv_pki_issue_key(o->tls_ca_key_pem, o->tls_ca_pem, pub, &io, cert, err);
    if (e != DRV_OK)
        return drv_error_wrap(err, "broker: server certificate");
    return DRV_OK;
}

/* With TLS: ca.crt, server.crt and server.key (0600) in the broker directory, owned by the
 * user the broker runs as; the ACL file of earlier versions is removed (the plugin decides). */
static drv_err_t write_tls_files(const drv_broker_t *b, const drv_broker_opts_t *o,
                                 drv_error_t *err)
{
    _cleanup_free_ char *server_cert = NULL;
    drv_err_t ie = issue_server_cert(b, o, &server_cert, err);
    if (ie != DRV_OK)
        return ie;
    const struct {
        const char *name, *text;
        mode_t mode;
    } files[] = {{"ca.crt", o->tls_ca_pem, 0644},
                 {"server.crt", server_cert, 0644},
                 {"server.key", o->tls_key_pem, 0600}};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", b->dir, files[i].name) >= sizeof(path))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "broker: data_dir: path too long");
        drv_err_t e =
            drv_file_write_atomic(path, files[i].text, strlen(files[i].text), files[i].mode, err);
        if (e != DRV_OK)
            return drv_error_wrap(err, "broker: write %s", path);
        if (b->drop && lchown(path, b->run_uid, b->run_gid) < 0)
            return drv_error_set(err, DRV_ERR_IO, errno, "broker: chown %s to mosquitto", path);
    }
    char acl[PATH_MAX];
    if ((size_t)snprintf(acl, sizeof(acl), "%s/acl", b->dir) < sizeof(acl) && unlink(acl) < 0 &&
        errno != ENOENT)
        drv_log_warn("broker: cannot remove the old ACL file", "path=%s errno=%d", acl, errno);
    return DRV_OK;
}

static drv_err_t write_conf(const drv_broker_t *b, const char *extra, drv_error_t *err)
{
    char access[4 * PATH_MAX + 1024];
    int an = 0;
    if (b->tls)
        an = snprintf(
            access, sizeof(access),
            "# TLS only: a client presents a certificate issued by the hub's CA. The drover-auth\n"
            "# plugin makes its CN its username, lets a node use only the client id\n"
            "# drover-agent-<its name> and its own topics, and asks the hub at every CONNECT\n"
            "# whether that identity is enrolled with that key and not revoked.\n"
            "cafile %s/ca.crt\n"
            "certfile %s/server.crt\n"
            "keyfile %s/server.key\n"
            "require_certificate true\n"
            "allow_anonymous false\n"
            "plugin %s\n"
            "plugin_opt_socket %s\n"
            "plugin_opt_hub_user " DRV_BROKER_HUB_USER "\n",
            b->dir, b->dir, b->dir, b->plugin, b->auth_path);
    else
        an = snprintf(
            access, sizeof(access),
            "# Plain tcp, any client may connect: start the hub with --broker-tls for TLS\n"
            "# client certificates and per-node ACLs.\n"
            "allow_anonymous true\n");
    if (an < 0 || (size_t)an >= sizeof(access))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "broker: data_dir: path too long");
    char buf[sizeof(access) + 8192];
    int n = snprintf(buf, sizeof(buf),
                     "# Generated by drover-hub at every broker start: edits are lost.\n"
                     "# Extra lines come from the hub's broker options.\n"
                     "per_listener_settings false\n"
                     "listener %u %s\n"
                     "%s"
                     "# Retained desired-state messages survive a broker restart. Saved on\n"
                     "# shutdown and after every 500 changes (not periodically: SD cards; not\n"
                     "# more often: a fleet coming online would rewrite the file thousands of\n"
                     "# times). What a crash loses, the hub publishes again when it finds its\n"
                     "# session gone.\n"
                     "persistence true\n"
                     "persistence_location %s/\n"
                     "autosave_on_changes true\n"
                     "autosave_interval 500\n"
                     "max_packet_size %u\n"
                     "# The hub's session takes every node's reports and heartbeats: the default\n"
                     "# queue (1000 messages, 20 in flight) drops them once a fleet of thousands\n"
                     "# outpaces the hub for a moment.\n"
                     "max_queued_messages 200000\n"
                     "max_inflight_messages 1000\n"
                     "%s"
                     "# stderr goes to mosquitto.log, capped by the hub.\n"
                     "log_dest stderr\n"
                     "log_type error\n"
                     "log_type warning\n"
                     "log_type notice\n"
                     "log_type information\n"
                     "log_timestamp_format %%Y-%%m-%%dT%%H:%%M:%%S\n"
                     "%s%s",
                     b->port, b->addr, access, b->dir, DRV_BROKER_MAX_PACKET,
                     geteuid() == 0 && !b->drop
                         ? "# The hub could not hand the broker to user mosquitto.\nuser root\n"
                         : "",
                     extra ? extra : "",
                     extra && *extra && extra[strlen(extra) - 1] != '\n' ? "\n" : "");
    if (n < 0 || (size_t)n >= sizeof(buf))
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "broker: extra config lines too long");
    drv_err_t e = drv_file_write_atomic(b->conf, buf, (size_t)n, 0644, err);
    if (e != DRV_OK)
        return drv_error_wrap(err, "broker: write %s", b->conf);
    return DRV_OK;
}

/* Running as root, the broker runs as user "mosquitto" (as Mosquitto would drop to itself; the
 * hub switches before exec so that the parent-death signal survives): hand it the broker
 * directory (and its persistence file), and let its group traverse the data directory without
 * listing it. */
/* Whether uid/gid may traverse every directory above path (path itself excluded). */
static bool ancestors_reachable(const char *path, uid_t uid, gid_t gid, char *blocker,
                                size_t blockersz)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return false;
    for (char *slash = strrchr(real, '/'); slash; slash = strrchr(real, '/')) {
        if (slash == real)
            slash[1] = '\0'; /* "/" itself */
        else
            *slash = '\0';
        struct stat st;
        if (stat(real, &st) < 0)
            return false;
        bool ok = st.st_uid == uid   ? (st.st_mode & S_IXUSR)
                  : st.st_gid == gid ? (st.st_mode & S_IXGRP)
                                     : (st.st_mode & S_IXOTH);
        if (!ok) {
            drv_fmt_cut(blocker, blockersz, "%s", real); /* for the log line */
            return false;
        }
        if (real[1] == '\0')
            break;
    }
    return true;
}

/* Running as root, the broker runs as user "mosquitto" (as Mosquitto would drop to itself; the
 * hub switches before exec so that the parent-death signal survives): hand it the broker
 * directory (and its persistence file), and let its group traverse the data directory without
 * listing it. When a directory above the data directory shuts that user out, or there is no
 * such user, the broker stays root ("user root" in its config). */
static drv_err_t hand_to_mosquitto(drv_broker_t *b, const char *data_dir, drv_error_t *err)
{
    if (geteuid() != 0)
        return DRV_OK;
    struct passwd *pw = getpwnam("mosquitto");
    if (!pw)
        return DRV_OK;
    char blocker[PATH_MAX] = "";
    if (!ancestors_reachable(data_dir, pw->pw_uid, pw->pw_gid, blocker, sizeof(blocker))) {
        drv_log_warn("broker runs as root: user mosquitto cannot reach the data directory",
                     "data=\"%s\" blocked_by=\"%s\"", data_dir, blocker);
        return DRV_OK;
    }
    if (chown(b->dir, pw->pw_uid, pw->pw_gid) < 0 || chmod(b->dir, 0700) < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "broker: chown %s to mosquitto", b->dir);
    char db[PATH_MAX];
    if ((size_t)snprintf(db, sizeof(db), "%s/mosquitto.db", b->dir) < sizeof(db) &&
        lchown(db, pw->pw_uid, pw->pw_gid) < 0 && errno != ENOENT)
        return drv_error_set(err, DRV_ERR_IO, errno, "broker: chown %s to mosquitto", db);
    struct stat st;
    if (stat(data_dir, &st) < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "broker: stat %s", data_dir);
    b->drop = true;
    b->run_uid = pw->pw_uid;
    b->run_gid = pw->pw_gid;
    if (st.st_mode & S_IXOTH)
        return DRV_OK;
    if (st.st_gid != pw->pw_gid && chown(data_dir, (uid_t)-1, pw->pw_gid) < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "broker: chgrp %s to mosquitto", data_dir);
    if (chmod(data_dir, (st.st_mode & 07777 & ~(mode_t)(S_IRGRP | S_IWGRP)) | S_IXGRP) < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "broker: chmod %s", data_dir);
    return DRV_OK;
}

static drv_err_t spawn(drv_broker_t *b, drv_error_t *err)
{
    if (access(b->mosq, X_OK) < 0)
        return drv_error_set(err, DRV_ERR_NOTFOUND, errno,
                             "broker: %s cannot be run (install the Debian package mosquitto, or "
                             "pass --broker URL for an external broker)",
                             b->mosq);
    struct stat st;
    b->log_start = fstat(b->logfd, &st) == 0 ? st.st_size : 0;
    char *argv[] = {b->mosq, (char *)"-c", b->conf, NULL};
    /* Its own process group: a terminal's ^C goes to the hub, which stops the broker in
     * order. A hub killed outright takes its broker along (which saves its persistence
     * file). */
    drv_proc_opts_t o = {.argv = argv,
                         .in_fd = -1,
                         .out_fd = b->logfd,
                         .err_fd = b->logfd,
                         .new_pgroup = true,
                         .set_ids = b->drop,
                         .uid = b->run_uid,
                         .gid = b->run_gid,
                         .parent_death_signal = SIGTERM};
    pid_t pid;
    drv_err_t rc = drv_proc_start(&o, &pid, err);
    if (rc != DRV_OK)
        return err ? drv_error_wrap(err, "broker") : rc;
    b->pid = pid;
    b->started_ms = drv_now_ms();
    drv_log_info("broker started", "pid=%d port=%u", (int)pid, b->port);
    return DRV_OK;
}

static void describe_status(int status, char *out, size_t outsz)
{
    if (WIFSIGNALED(status))
        drv_fmt_cut(out, outsz, "killed by signal %d", WTERMSIG(status));
    else
        drv_fmt_cut(out, outsz, "exited with status %d", WEXITSTATUS(status));
}

static drv_err_t wait_ready(drv_broker_t *b, drv_error_t *err)
{
    int64_t deadline = drv_now_ms() + DRV_BROKER_START_TIMEOUT_MS;
    for (;;) {
        int status;
        pid_t r = waitpid(b->pid, &status, WNOHANG);
        if (r == b->pid) {
            b->pid = 0;
            char how[64], tail[TAIL_BYTES];
            describe_status(status, how, sizeof(how));
            log_tail(b, tail, sizeof(tail));
            return drv_error_set(err, DRV_ERR_IO, 0, "broker: %s %s at start%s%s (see %s)", b->mosq,
                                 how, tail[0] ? ": " : "", tail, b->log);
        }
        if (port_accepts(b))
            return DRV_OK;
        if (drv_now_ms() >= deadline)
            break;
        sleep_ms(50);
    }
    char tail[TAIL_BYTES];
    log_tail(b, tail, sizeof(tail));
    drv_broker_stop(b);
    return drv_error_set(err, DRV_ERR_TIMEOUT, 0,
                         "broker: port %u on %s not accepting connections after %d ms%s%s (see %s)",
                         b->port, b->addr, DRV_BROKER_START_TIMEOUT_MS, tail[0] ? ": " : "", tail,
                         b->log);
}

/* The drover-auth plugin: the given path, else ../lib/drover/drover-auth.so beside the hub's
 * binary (an installed hub), else the build tree's copy. */
static drv_err_t find_plugin(const char *given, char *out, size_t outsz, drv_error_t *err)
{
    if (given && *given) {
        if (access(given, R_OK) < 0)
            return drv_error_set(err, DRV_ERR_NOTFOUND, errno, "broker: plugin %s", given);
        if ((size_t)snprintf(out, outsz, "%s", given) >= outsz)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "broker: plugin: path too long");
        return DRV_OK;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            if ((size_t)snprintf(out, outsz, "%s/../lib/drover/" DRV_BROKER_PLUGIN_NAME, exe) <
                    outsz &&
                access(out, R_OK) == 0)
                return DRV_OK;
        }
    }
#ifdef DROVER_BROKER_PLUGIN_BUILD
    if (access(DROVER_BROKER_PLUGIN_BUILD, R_OK) == 0 &&
        (size_t)snprintf(out, outsz, "%s", DROVER_BROKER_PLUGIN_BUILD) < outsz)
        return DRV_OK;
#endif
    return drv_error_set(err, DRV_ERR_NOTFOUND, 0,
                         "broker: the drover-auth Mosquitto plugin (" DRV_BROKER_PLUGIN_NAME
                         ") was not found beside drover-hub (../lib/drover/): give its path "
                         "with --broker-plugin");
}

drv_err_t drv_broker_start(const drv_broker_opts_t *opts, drv_broker_t **out, drv_error_t *err)
{
    if (!opts || !opts->data_dir || !*opts->data_dir)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "broker: data_dir: required");
    const char *addr = opts->listen && *opts->listen ? opts->listen : DRV_BROKER_DEFAULT_ADDR;
    const char *mosq =
        opts->mosquitto && *opts->mosquitto ? opts->mosquitto : DRV_BROKER_DEFAULT_MOSQUITTO;
    if (opts->extra && strpbrk(opts->extra, "\r"))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "broker: extra: carriage return");
    if ((opts->tls_ca_pem != NULL) != (opts->tls_ca_key_pem != NULL) ||
        (opts->tls_ca_pem != NULL) != (opts->tls_key_pem != NULL))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "broker: tls_ca_pem, tls_ca_key_pem, tls_key_pem: give all or none");
    _cleanup_free_ drv_broker_t *b = calloc(1, sizeof(*b));
    if (!b)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    b->logfd = -1;
    struct in6_addr a6;
    if (inet_pton(AF_INET, addr, &a6) == 1)
        b->family = AF_INET;
    else if (inet_pton(AF_INET6, addr, &a6) == 1)
        b->family = AF_INET6;
    else
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "broker: listen address \"%.64s\": not an IPv4 or IPv6 address", addr);
    if (drv_fmt(b->addr, sizeof(b->addr), "%s", addr) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "broker: listen address: too long");
    if ((size_t)snprintf(b->dir, sizeof(b->dir), "%s/broker", opts->data_dir) >= sizeof(b->dir) ||
        (size_t)snprintf(b->conf, sizeof(b->conf), "%s/mosquitto.conf", b->dir) >=
            sizeof(b->conf) ||
        (size_t)snprintf(b->log, sizeof(b->log), "%s/mosquitto.log", b->dir) >= sizeof(b->log) ||
        (size_t)snprintf(b->mosq, sizeof(b->mosq), "%s", mosq) >= sizeof(b->mosq))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "broker: data_dir: path too long");
    b->port = opts->port;
    /* A broker of a hub that was just killed may still be saving and holding the port. */
    drv_err_t e;
    for (int tries = 0;; tries++) {
        e = claim_port(b, err);
        if (e != DRV_ERR_EXISTS || tries >= PORT_RETRIES)
            break;
        sleep_ms(100);
    }
    if (e != DRV_OK)
        return e;
    b->tls = opts->tls_ca_pem != NULL;
    if (b->tls && !opts->identity)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "broker: TLS needs an identity check");
    if ((size_t)snprintf(b->auth_path, sizeof(b->auth_path), "%s/auth.sock", b->dir) >=
        sizeof(b->auth_path))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "broker: data_dir: path too long");
    if (b->tls && (e = find_plugin(opts->plugin, b->plugin, sizeof(b->plugin), err)) != DRV_OK)
        return e;
    const char *scheme = b->tls ? "ssl" : "tcp";
    const char *host = b->addr;
    if (b->tls && is_wildcard(b->addr)) /* the hub connects where the certificate names */
        host = b->family == AF_INET6 ? "::1" : "127.0.0.1";
    if (b->family == AF_INET6)
        e = drv_fmt(b->url, sizeof(b->url), "%s://[%s]:%u", scheme, host, b->port);
    else
        e = drv_fmt(b->url, sizeof(b->url), "%s://%s:%u", scheme, host, b->port);
    if (e != DRV_OK)
        return drv_error_set(err, e, 0, "broker: URL for %s: too long", host);
    e = drv_file_mkdir_p(b->dir, 0700, err);
    if (e != DRV_OK)
        return drv_error_wrap(err, "broker: directory %s", b->dir);
    e = hand_to_mosquitto(b, opts->data_dir, err);
    if (e != DRV_OK)
        return e;
    if (b->tls && (e = write_tls_files(b, opts, err)) != DRV_OK)
        return e;
    if (b->tls && (e = drv_broker_auth_listen(b->auth_path, b->drop ? b->run_uid : 0,
                                              b->drop ? b->run_gid : 0, opts->identity,
                                              opts->identity_ctx, &b->auth, err)) != DRV_OK)
        return drv_error_wrap(err, "broker");
    e = write_conf(b, opts->extra, err);
    if (e == DRV_OK) {
        b->logfd = open(b->log, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (b->logfd < 0)
            e = drv_error_set(err, DRV_ERR_IO, errno, "broker: open %s", b->log);
    }
    if (e != DRV_OK) {
        drv_broker_auth_free(b->auth);
        return e;
    }
    b->backoff_ms = DRV_BROKER_BACKOFF_MIN_MS;
    e = spawn(b, err);
    if (e == DRV_OK)
        e = wait_ready(b, err);
    if (e != DRV_OK) {
        close(b->logfd);
        drv_broker_auth_free(b->auth);
        return e;
    }
    b->log_checked_ms = drv_now_ms();
    *out = TAKE_PTR(b);
    return DRV_OK;
}

#define HUB_CLIENT_DAYS 397u
#define HUB_CLIENT_RENEW_S (30 * 86400)

/* Whether the pair at cert_path/key_path is usable: key valid (*key_ok), matching, issued by
 * the CA for client use and not close to expiry. */
static bool hub_client_usable(const char *cert_path, const char *key_path, const char *ca_pem,
                              char **key_out, bool *key_ok)
{
    drv_error_t e = DRV_ERROR_INIT;
    _cleanup_free_ char *cert = NULL;
    char *key = NULL;
    *key_ok = false;
    if (drv_file_read_capped(key_path, DRV_PKI_PEM_MAX, &key, NULL, &e) != DRV_OK)
        return false;
    if (drv_pki_key_check(key, &e) != DRV_OK) {
        drv_pki_secret_free(key);
        return false;
    }
    *key_ok = true;
    *key_out = key;
    drv_pki_cert_info_t info;
    int64_t now = (int64_t)time(NULL);
    return drv_file_read_capped(cert_path, DRV_PKI_PEM_MAX, &cert, NULL, &e) == DRV_OK &&
           drv_pki_key_matches_cert(key, cert, &e) == DRV_OK &&
           drv_pki_cert_verify(cert, ca_pem, now, DRV_PKI_CLIENT_AUTH, &e) == DRV_OK &&
           drv_pki_cert_info(cert, &info, &e) == DRV_OK &&
           strcmp(info.cn, DRV_BROKER_HUB_USER) == 0 && info.not_after - now > HUB_CLIENT_RENEW_S;
}

drv_err_t drv_broker_hub_client(const char *pki_dir, const char *ca_key_pem,
                                const char *ca_cert_pem, char *cert_path, char *key_path,
                                size_t pathsz, drv_error_t *err)
{
    if ((size_t)snprintf(cert_path, pathsz, "%s/hub-client.crt", pki_dir) >= pathsz ||
        (size_t)snprintf(key_path, pathsz, "%s/hub-client.key", pki_dir) >= pathsz)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "broker: hub client certificate: path too long");
    _cleanup_secret_ char *key = NULL;
    bool key_ok = false;
    if (hub_client_usable(cert_path, key_path, ca_cert_pem, &key, &key_ok)) {
        /* Kept: only the modes are put right. */
        if (chmod(key_path, 0600) < 0 || chmod(cert_path, 0600) < 0)
            return drv_error_set(err, DRV_ERR_IO, errno, "broker: chmod %s", key_path);
        return DRV_OK;
    }
    drv_err_t e;
    if (!key_ok) {
        e = drv_pki_key_generate(&key, err);
        if (e == DRV_OK)
            e = drv_file_write_atomic(key_path, key, strlen(key), 0600, err);
        if (e != DRV_OK)
            return drv_error_wrap(err, "broker: hub client key %s", key_path);
    }
    _cleanup_free_ char *pub = NULL, *cert = NULL;
    drv_pki_issue_t io = {
        .cn = DRV_BROKER_HUB_USER, .usage = DRV_PKI_CLIENT_AUTH, .days = HUB_CLIENT_DAYS};
    e = drv_pki_key_public(key, &pub, err);
    if (e == DRV_OK)
        e = drv_pki_issue_key(ca_key_pem, ca_cert_pem, pub, &io, &cert, err);
    if (e == DRV_OK)
        e = drv_file_write_atomic(cert_path, cert, strlen(cert), 0600, err);
    if (e != DRV_OK)
        return drv_error_wrap(err, "broker: hub client certificate %s", cert_path);
    drv_log_info("broker: hub client certificate issued", "cn=%s path=\"%s\"", DRV_BROKER_HUB_USER,
                 cert_path);
    return DRV_OK;
}

const char *drv_broker_url(const drv_broker_t *broker)
{
    return broker->url;
}

uint16_t drv_broker_port(const drv_broker_t *broker)
{
    return broker->port;
}

pid_t drv_broker_pid(const drv_broker_t *broker)
{
    return broker->pid;
}

bool drv_broker_child_exited(drv_broker_t *b, pid_t pid, int status)
{
    if (!b || pid <= 0 || pid != b->pid)
        return false;
    int64_t now = drv_now_ms();
    if (now - b->started_ms >= DRV_BROKER_STABLE_MS)
        b->backoff_ms = DRV_BROKER_BACKOFF_MIN_MS;
    char how[64], tail[TAIL_BYTES];
    describe_status(status, how, sizeof(how));
    log_tail(b, tail, sizeof(tail));
    b->pid = 0;
    b->restart_at_ms = now + b->backoff_ms;
    drv_log_warn("broker died, restarting", "pid=%d how=\"%s\" in_ms=%lld log=\"%s\"", (int)pid,
                 how, (long long)b->backoff_ms, tail);
    b->backoff_ms = b->backoff_ms * 2 > DRV_BROKER_BACKOFF_MAX_MS ? DRV_BROKER_BACKOFF_MAX_MS
                                                                  : b->backoff_ms * 2;
    return true;
}

/* Past DRV_BROKER_LOG_MAX: the log moves to mosquitto.log.1 and the live file restarts empty
 * (the child appends, so its next line lands at the new end). */
static void cap_log(drv_broker_t *b)
{
    struct stat st;
    if (fstat(b->logfd, &st) < 0 || st.st_size <= DRV_BROKER_LOG_MAX)
        return;
    char old[PATH_MAX];
    if ((size_t)snprintf(old, sizeof(old), "%s.1", b->log) >= sizeof(old))
        return;
    _cleanup_free_ char *data = malloc((size_t)st.st_size);
    ssize_t n = data ? pread(b->logfd, data, (size_t)st.st_size, 0) : -1;
    drv_error_t e = DRV_ERROR_INIT;
    if (n > 0 && drv_file_write_replace(old, data, (size_t)n, 0640, &e) != DRV_OK)
        drv_log_warn("broker log rotation failed", "err=\"%s\"", drv_error_msg(&e));
    if (ftruncate(b->logfd, 0) < 0)
        drv_log_warn("broker log truncation failed", "errno=%d", errno);
    b->log_start = 0;
}

int64_t drv_broker_tick(drv_broker_t *b, int64_t now_ms)
{
    if (!b || b->stopped)
        return -1;
    if (b->pid > 0) {
        int status;
        if (waitpid(b->pid, &status, WNOHANG) == b->pid)
            (void)drv_broker_child_exited(b, b->pid, status);
    }
    if (b->pid == 0 && now_ms >= b->restart_at_ms) {
        drv_error_t e = DRV_ERROR_INIT;
        if (spawn(b, &e) != DRV_OK) {
            drv_log_error("broker restart failed", "err=\"%s\"", drv_error_msg(&e));
            b->restart_at_ms = now_ms + b->backoff_ms;
            b->backoff_ms = b->backoff_ms * 2 > DRV_BROKER_BACKOFF_MAX_MS
                                ? DRV_BROKER_BACKOFF_MAX_MS
                                : b->backoff_ms * 2;
        }
    }
    if (now_ms - b->log_checked_ms >= LOG_CHECK_MS) {
        cap_log(b);
        b->log_checked_ms = now_ms;
    }
    if (b->pid == 0) {
        int64_t wait = b->restart_at_ms - now_ms;
        return wait < 0 ? 0 : wait;
    }
    return 500;
}

void drv_broker_stop(drv_broker_t *b)
{
    if (!b)
        return;
    b->stopped = true;
    if (b->pid <= 0)
        return;
    int status;
    kill(b->pid, SIGTERM);
    int64_t deadline = drv_now_ms() + 5000;
    while (waitpid(b->pid, &status, WNOHANG) == 0) {
        if (drv_now_ms() >= deadline) {
            drv_log_warn("broker ignored SIGTERM, killing", "pid=%d", (int)b->pid);
            kill(b->pid, SIGKILL);
            (void)waitpid(b->pid, &status, 0);
            break;
        }
        sleep_ms(20);
    }
    b->pid = 0;
}

void drv_broker_free(drv_broker_t *b)
{
    if (!b)
        return;
    drv_broker_stop(b);
    if (b->logfd >= 0)
        close(b->logfd);
    drv_broker_auth_free(b->auth);
    free(b);
}

drv_broker_auth_t *drv_broker_auth(drv_broker_t *b)
{
    return b ? b->auth : NULL;
}
