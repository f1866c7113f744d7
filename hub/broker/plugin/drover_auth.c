/* drover-auth: the Mosquitto 2.0 plugin (plugin API v5) that ties the hub's broker to the hub's
 * device identities, so that one device's certificate can do nothing to another device or the
 * hub (docs/PROTOCOL.md "Broker security"):
 *  - CONNECT: the client certificate (TLS verified it against the hub CA) names the user: its
 *    CN. The hub's own identity (plugin_opt_hub_user) may use client ids starting with that
 *    name; a node NODE only "drover-agent-NODE", and only while the hub says its identity is
 *    enrolled, not revoked, not expired, with this very public key (one question a connect over
 *    the hub's unix socket, plugin_opt_socket). Anything else is refused at CONNECT, before
 *    Mosquitto would close an existing connection of that client id.
 *  - Every PUBLISH, SUBSCRIBE and delivery: the hub reads and writes drover/v1/#; a node reads
 *    only drover/v1/node/NODE/{desired,logs/req} and writes only
 *    drover/v1/node/NODE/{status,heartbeat,online,events,metrics,logs/res/ID}.
 *  - $CONTROL/drover/v1 (from the hub only): "kick NODE" disconnects NODE's clients at once (a
 *    revocation or a forget); their next CONNECT asks the hub again.
 * It links only libc and OpenSSL's libcrypto (which Mosquitto has loaded already). */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

/* Built with -fvisibility=hidden: Mosquitto looks these up by name. */
#define PLUGIN_API __attribute__((visibility("default")))

#define TOPIC_ROOT "drover/v1/"
#define NODE_ROOT "drover/v1/node/"
#define CONTROL_TOPIC "$CONTROL/drover/v1"
#define AGENT_ID_PREFIX "drover-agent-"
#define NODE_MAX 63
#define SPKI_B64_MAX 1024
#define ASK_TIMEOUT_MS 3000
#define CACHE_MAX 4096
#define CACHE_TTL_S 60

#define ADDR_MAX 46 /* INET6_ADDRSTRLEN */

struct cached {
    char node[NODE_MAX + 1];
    char spki[SPKI_B64_MAX];
    char addr[ADDR_MAX]; /* a device connecting from elsewhere is asked about again */
    time_t until;
};

struct plugin {
    mosquitto_plugin_id_t *id;
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char hub_user[NODE_MAX + 1];
    /* Positive answers, so that a reconnecting fleet does not wait on the hub for each
     * device; a kick drops its node's entry. A small open table, replaced when full. */
    struct cached *cache;
    size_t cache_next;
};

static bool node_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NODE_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
            return false;
    return s[0] != '-' && s[0] != '.' && s[n - 1] != '-' && s[n - 1] != '.';
}

/* The one CN of the certificate's subject, printable, into out; false if not exactly one. */
static bool cert_cn(X509 *cert, char *out, size_t outsz)
{
    X509_NAME *subj = X509_get_subject_name(cert);
    int at = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    if (at < 0 || X509_NAME_get_index_by_NID(subj, NID_commonName, at) >= 0)
        return false;
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, at));
    int len = s ? ASN1_STRING_length(s) : -1;
    const unsigned char *d = s ? ASN1_STRING_get0_data(s) : NULL;
    if (!d || len <= 0 || (size_t)len >= outsz)
        return false;
    for (int i = 0; i < len; i++)
        if (d[i] < 0x21 || d[i] > 0x7e)
            return false;
    memcpy(out, d, (size_t)len);
    out[len] = '\0';
    return true;
}

/* The certificate's SubjectPublicKeyInfo DER, base64 on one line. */
static bool cert_spki_b64(X509 *cert, char *out, size_t outsz)
{
    EVP_PKEY *pk = X509_get0_pubkey(cert);
    unsigned char *der = NULL;
    int len = pk ? i2d_PUBKEY(pk, &der) : -1;
    bool ok = false;
    if (len > 0 && (size_t)len <= (outsz / 4) * 3 - 3) {
        int n = EVP_EncodeBlock((unsigned char *)out, der, len);
        ok = n > 0 && (size_t)n < outsz;
    }
    OPENSSL_free(der);
    return ok;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The reason for a refusal, for the broker's log: text for people, so a cut one is still said
 * (ending "..."), never a garbled one. The plugin does not link libdrover-shared's drv_fmt_cut:
 * the result is checked here. */
static void say_why(char *why, size_t whysz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say_why(char *why, size_t whysz, const char *fmt, ...)
{
    if (whysz == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(why, whysz, fmt, ap);
    va_end(ap);
    if (n < 0)
        why[0] = '\0';
    else if ((size_t)n >= whysz && whysz > 4)
        memcpy(why + whysz - 4, "...", 4);
}

/* Asks the hub whether node may connect with this key from addr (the hub keeps it: where the
 * device's pod-network peers may reach it): "drover-auth v1 NODE SPKI ADDR\n" (no ADDR when
 * the broker does not know it), answered "ok\n" or "no REASON\n". Anything else (no hub, a
 * timeout, garbage) is a refusal: the hub runs its broker and answers at once. */
static bool ask_hub(const struct plugin *pl, const char *node, const char *spki, const char *addr,
                    char *why, size_t whysz)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        say_why(why, whysz, "socket: %s", strerror(errno));
        return false;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, pl->socket_path, sizeof(sa.sun_path));
    char req[NODE_MAX + SPKI_B64_MAX + ADDR_MAX + 32], resp[256];
    int rn = snprintf(req, sizeof(req), "drover-auth v1 %s %s%s%s\n", node, spki,
                      addr[0] ? " " : "", addr);
    size_t sent = 0, got = 0;
    long long deadline = mono_ms() + ASK_TIMEOUT_MS;
    bool ok = false;
    if (rn < 0 || (size_t)rn >= sizeof(req)) {
        say_why(why, whysz, "request too long");
        goto out;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
        say_why(why, whysz, "the hub (%s): %s", pl->socket_path, strerror(errno));
        goto out;
    }
    for (;;) {
        long long left = deadline - mono_ms();
        if (left <= 0) {
            say_why(why, whysz, "the hub did not answer within %d ms", ASK_TIMEOUT_MS);
            goto out;
        }
        struct pollfd p = {.fd = fd, .events = sent < (size_t)rn ? POLLOUT : POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        if (sent < (size_t)rn) {
            ssize_t w = send(fd, req + sent, (size_t)rn - sent, MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN && errno != EINTR) {
                say_why(why, whysz, "the hub: %s", strerror(errno));
                goto out;
            }
            if (w > 0)
                sent += (size_t)w;
            continue;
        }
        ssize_t n = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if (memchr(resp, '\n', got) || got == sizeof(resp) - 1)
            break;
    }
    resp[got] = '\0';
    char *nl = strchr(resp, '\n');
    if (!nl) {
        say_why(why, whysz, "the hub gave no answer");
        goto out;
    }
    *nl = '\0';
    if (!strcmp(resp, "ok"))
        ok = true;
    else
        say_why(why, whysz, "%.200s", strncmp(resp, "no ", 3) ? "the hub refused" : resp + 3);
out:
    close(fd);
    return ok;
}

static struct cached *cache_find(struct plugin *pl, const char *node)
{
    for (size_t i = 0; pl->cache && i < CACHE_MAX; i++)
        if (pl->cache[i].node[0] && !strcmp(pl->cache[i].node, node))
            return &pl->cache[i];
    return NULL;
}

static void cache_put(struct plugin *pl, const char *node, const char *spki, const char *addr)
{
    size_t nl = strlen(node), sl = strlen(spki), al = strlen(addr);
    if (!pl->cache || nl >= sizeof(pl->cache->node) || sl >= sizeof(pl->cache->spki) ||
        al >= sizeof(pl->cache->addr))
        return; /* never a cut name in the cache: the hub is asked again */
    struct cached *c = cache_find(pl, node);
    if (!c) {
        c = &pl->cache[pl->cache_next];
        pl->cache_next = (pl->cache_next + 1) % CACHE_MAX;
    }
    memcpy(c->node, node, nl + 1);
    memcpy(c->spki, spki, sl + 1);
    memcpy(c->addr, addr, al + 1);
    c->until = time(NULL) + CACHE_TTL_S;
}

static void cache_drop(struct plugin *pl, const char *node)
{
    struct cached *c = cache_find(pl, node);
    if (c)
        memset(c, 0, sizeof(*c));
}

static int refuse(const char *id, const char *cn, const char *why)
{
    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         "drover-auth: refused client id \"%.64s\" (certificate %.64s): %s",
                         id ? id : "", cn ? cn : "none", why);
    return MOSQ_ERR_AUTH;
}

static int on_basic_auth(int event, void *data, void *userdata)
{
    (void)event;
    struct plugin *pl = userdata;
    struct mosquitto_evt_basic_auth *ev = data;
    const char *id = mosquitto_client_id(ev->client);
    X509 *cert = mosquitto_client_certificate(ev->client);
    char cn[NODE_MAX + 1], spki[SPKI_B64_MAX], why[256], addr[ADDR_MAX] = "";
    const char *ca = mosquitto_client_address(ev->client);
    /* Only an address plain enough to pass on (an IP address, no spaces). */
    if (ca && strlen(ca) < sizeof(addr) && !strpbrk(ca, " \r\n"))
        memcpy(addr, ca, strlen(ca) + 1);
    if (!cert)
        return refuse(id, NULL, "no client certificate");
    bool have_cn = cert_cn(cert, cn, sizeof(cn));
    bool have_key = have_cn && cert_spki_b64(cert, spki, sizeof(spki));
    X509_free(cert);
    if (!have_cn || !have_key)
        return refuse(id, NULL, "the certificate needs exactly one printable CN and a key");
    /* A username of its own choosing would change whose ACL applies. */
    if (ev->username && strcmp(ev->username, cn))
        return refuse(id, cn, "the username must be empty or the certificate's CN");
    if (!id)
        return refuse(id, cn, "no client id");
    if (!strcmp(cn, pl->hub_user)) {
        if (strncmp(id, pl->hub_user, strlen(pl->hub_user)))
            return refuse(id, cn, "the hub's identity uses client ids starting with its name");
    } else {
        if (!node_name_ok(cn))
            return refuse(id, cn, "the certificate's CN is not a node name");
        if (strncmp(id, AGENT_ID_PREFIX, strlen(AGENT_ID_PREFIX)) ||
            strcmp(id + strlen(AGENT_ID_PREFIX), cn))
            return refuse(
                id, cn, "a node's certificate may use only the client id drover-agent-<its name>");
        struct cached *c = cache_find(pl, cn);
        if (!(c && c->until > time(NULL) && !strcmp(c->spki, spki) && !strcmp(c->addr, addr))) {
            if (!ask_hub(pl, cn, spki, addr, why, sizeof(why)))
                return refuse(id, cn, why);
            cache_put(pl, cn, spki, addr);
        }
    }
    return mosquitto_set_username(ev->client, cn) == MOSQ_ERR_SUCCESS ? MOSQ_ERR_SUCCESS
                                                                      : MOSQ_ERR_AUTH;
}

/* Whether topic (after "drover/v1/node/<node>/") is one a node may use with this access. */
static bool node_topic_ok(const char *rest, int access)
{
    if (access == MOSQ_ACL_READ || access == MOSQ_ACL_SUBSCRIBE || access == MOSQ_ACL_UNSUBSCRIBE)
        return !strcmp(rest, "desired") || !strcmp(rest, "logs/req");
    if (access != MOSQ_ACL_WRITE)
        return false;
    if (!strcmp(rest, "status") || !strcmp(rest, "heartbeat") || !strcmp(rest, "online") ||
        !strcmp(rest, "events") || !strcmp(rest, "metrics"))
        return true;
    if (strncmp(rest, "logs/res/", 9) || !rest[9])
        return false;
    return !strpbrk(rest + 9, "/+#");
}

static int on_acl_check(int event, void *data, void *userdata)
{
    (void)event;
    struct plugin *pl = userdata;
    struct mosquitto_evt_acl_check *ev = data;
    const char *user = mosquitto_client_username(ev->client);
    const char *t = ev->topic;
    if (!user || !t)
        return MOSQ_ERR_ACL_DENIED;
    if (!strcmp(user, pl->hub_user)) {
        if (!strncmp(t, TOPIC_ROOT, strlen(TOPIC_ROOT)) || !strcmp(t, "drover/v1/#"))
            return MOSQ_ERR_SUCCESS;
        if (!strcmp(t, CONTROL_TOPIC) && ev->access == MOSQ_ACL_WRITE)
            return MOSQ_ERR_SUCCESS;
        return MOSQ_ERR_ACL_DENIED;
    }
    size_t ul = strlen(user), rl = strlen(NODE_ROOT);
    if (strncmp(t, NODE_ROOT, rl) || strncmp(t + rl, user, ul) || t[rl + ul] != '/')
        return MOSQ_ERR_ACL_DENIED;
    return node_topic_ok(t + rl + ul + 1, ev->access) ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
}

static int on_control(int event, void *data, void *userdata)
{
    (void)event;
    struct plugin *pl = userdata;
    struct mosquitto_evt_control *ev = data;
    const char *user = mosquitto_client_username(ev->client);
    if (!user || strcmp(user, pl->hub_user))
        return MOSQ_ERR_ACL_DENIED;
    char cmd[NODE_MAX + 16];
    if (!ev->payload || ev->payloadlen == 0 || ev->payloadlen >= sizeof(cmd))
        return MOSQ_ERR_INVAL;
    memcpy(cmd, ev->payload, ev->payloadlen);
    cmd[ev->payloadlen] = '\0';
    if (strncmp(cmd, "kick ", 5) || !node_name_ok(cmd + 5))
        return MOSQ_ERR_INVAL;
    cache_drop(pl, cmd + 5);
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "drover-auth: disconnecting %s (the hub revoked it)",
                         cmd + 5);
    mosquitto_kick_client_by_username(cmd + 5, true);
    return MOSQ_ERR_SUCCESS;
}

PLUGIN_API int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
    for (int i = 0; i < supported_version_count; i++)
        if (supported_versions[i] == 5)
            return 5;
    return -1;
}

PLUGIN_API int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
                                     struct mosquitto_opt *options, int option_count)
{
    struct plugin *pl = calloc(1, sizeof(*pl));
    if (!pl)
        return MOSQ_ERR_NOMEM;
    pl->id = identifier;
    pl->cache = calloc(CACHE_MAX, sizeof(*pl->cache));
    for (int i = 0; i < option_count; i++) {
        const char *k = options[i].key, *v = options[i].value;
        if (!k || !v)
            continue;
        size_t vl = strlen(v); /* a value too long is left out, and then reported as missing */
        if (!strcmp(k, "socket") && vl < sizeof(pl->socket_path))
            memcpy(pl->socket_path, v, vl + 1);
        else if (!strcmp(k, "hub_user") && vl < sizeof(pl->hub_user))
            memcpy(pl->hub_user, v, vl + 1);
    }
    if (!pl->socket_path[0] || !pl->hub_user[0]) {
        mosquitto_log_printf(MOSQ_LOG_ERR,
                             "drover-auth: plugin_opt_socket and plugin_opt_hub_user are required");
        free(pl->cache);
        free(pl);
        return MOSQ_ERR_INVAL;
    }
    int rc = mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, pl);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, pl);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_callback_register(identifier, MOSQ_EVT_CONTROL, on_control, CONTROL_TOPIC,
                                         pl);
    if (rc != MOSQ_ERR_SUCCESS) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "drover-auth: cannot register its callbacks (%d)", rc);
        free(pl->cache);
        free(pl);
        return rc;
    }
    *userdata = pl;
    mosquitto_log_printf(MOSQ_LOG_INFO, "drover-auth: identities from %s, hub user %s",
                         pl->socket_path, pl->hub_user);
    return MOSQ_ERR_SUCCESS;
}

PLUGIN_API int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options,
                                        int option_count)
{
    (void)options;
    (void)option_count;
    struct plugin *pl = userdata;
    if (!pl)
        return MOSQ_ERR_SUCCESS;
    mosquitto_callback_unregister(pl->id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
    mosquitto_callback_unregister(pl->id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
    mosquitto_callback_unregister(pl->id, MOSQ_EVT_CONTROL, on_control, CONTROL_TOPIC);
    free(pl->cache);
    free(pl);
    return MOSQ_ERR_SUCCESS;
}
