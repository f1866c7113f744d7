/* fleetsim: a fleet of simulated Drover nodes for benchmarks and smoke tests. Each node is its
 * own MQTT connection to the broker and speaks protocol v1 through the shared protocol code
 * (drover/protocol.h): Will and retained presence, a status report on connect, jittered
 * heartbeats, every pod of a new desired state reported Running and Ready at once, and with
 * --metrics-ms usage reports (the node's and one container's per pod it runs) as an agent pushes.
 * Thousands of connections in one process call for one epoll loop and a minimal MQTT 3.1.1
 * client of its own (CONNECT with Will, SUBSCRIBE, PUBLISH QoS 0/1 with PUBACK both ways,
 * PINGREQ) instead of a Paho client and thread per node. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "drover/buf.h"
#include "drover/cleanup.h"
#include "drover/error.h"
#include "drover/file.h"
#include "drover/netstate.h"
#include "drover/protocol.h"

#define SIM_NODES_MAX 100000
#define SIM_WBUF_MAX (8u << 20)    /* per connection: more unsent than this drops it */
#define SIM_HB_BACKLOG (64u << 10) /* a heartbeat is skipped while this much is unsent */
#define SIM_PACKET_MAX (DRV_PROTO_DESIRED_MAX + (64u << 10))
#define SIM_CONNECT_TIMEOUT_MS 15000
#define SIM_TICK_MS 20
#define SIM_SCRATCH (256u << 10)

enum { ST_IDLE, ST_CONNECTING, ST_CONNACK, ST_UP };

typedef struct sim_node {
    int fd;
    uint8_t state;
    bool wout; /* EPOLLOUT is being watched */
    uint16_t next_pid;
    uint32_t npods; /* pods in the last report */
    int64_t t_state_ms;
    int64_t next_try_ms;
    int64_t next_hb_ms;
    int64_t last_tx_ms;
    uint64_t hb_seq;
    int64_t next_metrics_ms;
    int64_t last_metrics_wall_ms; /* the previous usage sample's time (wall clock), 0: none */
    uint64_t metrics_seq;
    uint64_t gen;        /* applied desired generation */
    char pod_cidr[20];   /* the pod block the hub gave (its desired state's network section) */
    unsigned char *rbuf; /* owned: an incomplete packet carried to the next read */
    size_t rlen;
    unsigned char *wbuf; /* owned: bytes the socket did not take yet */
    size_t wlen, woff, wcap;
    char *pods_json; /* owned: the pods array of the last report (JSON), NULL: none */
    /* owned: what a usage report names of those pods, one "ns name uid ctr[,ctr...]\n" line
     * each (Kubernetes names hold neither spaces nor commas); NULL: none */
    char *usage_pods;
    drv_proto_backoff_t backoff;
} sim_node_t;

typedef struct sim_opts {
    char host[256];
    char port[8];
    uint32_t nodes;
    const char *prefix;
    uint32_t duration_s; /* 0: until SIGINT/SIGTERM */
    uint32_t heartbeat_ms;
    uint32_t connect_rate; /* connection attempts per second */
    uint32_t inflight;     /* connections between connect() and CONNACK */
    uint32_t keepalive_s;
    uint32_t stats_ms;
    uint32_t metrics_ms; /* usage reports every this many ms, jittered; 0: none */
    bool metrics_paused; /* --metrics-paused: none until SIGUSR1 */
    char *verify_key; /* --verify-key: the hub's signing.pub (PEM); NULL: payload taken unchecked */
} sim_opts_t;

typedef struct sim_stats {
    uint64_t connects;      /* CONNACKs accepted, reconnections included */
    uint64_t drops;         /* connections lost or refused */
    uint64_t desired;       /* new desired generations applied */
    uint64_t desired_stale; /* redelivered or older generations */
    uint64_t desired_bad;   /* refused by the protocol parser */
    uint64_t status_sent;
    uint64_t heartbeats;
    uint64_t hb_skipped;
    uint64_t metrics_sent;    /* usage reports published */
    uint64_t metrics_skipped; /* not sent: the connection's backlog was too long */
    uint64_t metrics_bytes;   /* their MQTT PUBLISH packets, framing included */
    uint64_t metrics_payload; /* their payloads alone */
    uint64_t msgs_in;
    uint64_t bytes_in, bytes_out;
    uint64_t pods_reported; /* sum of pods in the nodes' last reports */
} sim_stats_t;

typedef struct sim {
    sim_opts_t o;
    sim_node_t *nodes;
    int ep;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint32_t connected;
    uint32_t inflight;
    double tokens;
    int64_t t0_ms;
    int64_t all_connected_ms; /* first time every node was up; -1 before */
    sim_stats_t st;
    uint64_t rng;
    unsigned char *scratch;
    drv_proto_pod_usage_t *usage_scratch; /* DRV_PROTO_METRICS_PODS_MAX, with --metrics-ms */
    bool metrics_on;                      /* usage reports going (SIGUSR1 flips it) */
} sim_t;

static volatile sig_atomic_t g_stop, g_usage_flip;

static void on_signal(int sig)
{
    g_stop = sig;
}

static void on_usr1(int sig)
{
    (void)sig;
    g_usage_flip = 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t rnd(sim_t *s)
{
    uint64_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s->rng = x;
    return x;
}

static void node_name(const sim_t *s, uint32_t i, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s%05" PRIu32, s->o.prefix, i);
}

static void time_rfc3339(time_t t, char *out, size_t outsz)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- MQTT 3.1.1 encoding ---- */

typedef struct pkt {
    unsigned char *p; /* owned */
    size_t len, cap;
    bool oom;
} pkt_t;

static void pkt_put(pkt_t *k, const void *data, size_t len)
{
    if (k->oom)
        return;
    if (k->len + len > k->cap) {
        size_t cap = k->cap ? k->cap : 256;
        while (cap < k->len + len)
            cap *= 2;
        unsigned char *np = realloc(k->p, cap);
        if (!np) {
            k->oom = true;
            return;
        }
        k->p = np;
        k->cap = cap;
    }
    memcpy(k->p + k->len, data, len);
    k->len += len;
}

static void pkt_u8(pkt_t *k, uint8_t v)
{
    pkt_put(k, &v, 1);
}

static void pkt_u16(pkt_t *k, uint16_t v)
{
    unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    pkt_put(k, b, 2);
}

static void pkt_str(pkt_t *k, const char *str, size_t len)
{
    pkt_u16(k, (uint16_t)len);
    pkt_put(k, str, len);
}

/* Prepends the fixed header (type byte and remaining length) to body; returns the packet in
 * *out (malloc'd) or false when out of memory. */
static bool pkt_finish(uint8_t type, pkt_t *body, pkt_t *out)
{
    *out = (pkt_t){0};
    if (body->oom || body->len > 268435455u)
        return false;
    unsigned char hdr[5];
    size_t n = 0;
    hdr[n++] = type;
    size_t rl = body->len;
    do {
        unsigned char b = rl % 128;
        rl /= 128;
        if (rl)
            b |= 0x80;
        hdr[n++] = b;
    } while (rl);
    pkt_put(out, hdr, n);
    if (body->len)
        pkt_put(out, body->p, body->len);
    return !out->oom;
}

/* ---- connection plumbing ---- */

static void node_watch(sim_t *s, uint32_t i)
{
    sim_node_t *n = &s->nodes[i];
    bool want = n->state == ST_CONNECTING || n->wlen > n->woff;
    if (want == n->wout)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.u32 = i};
    epoll_ctl(s->ep, EPOLL_CTL_MOD, n->fd, &ev);
    n->wout = want;
}

static void node_drop(sim_t *s, uint32_t i, const char *why)
{
    sim_node_t *n = &s->nodes[i];
    if (n->fd >= 0) {
        epoll_ctl(s->ep, EPOLL_CTL_DEL, n->fd, NULL);
        close(n->fd);
    }
    n->fd = -1;
    if (n->state == ST_UP)
        s->connected--;
    else if (n->state == ST_CONNECTING || n->state == ST_CONNACK)
        s->inflight--;
    if (s->st.drops < 20 || s->st.drops % 1000 == 0) {
        char name[DRV_PROTO_NODE_MAX + 1];
        node_name(s, i, name, sizeof name);
        fprintf(stderr, "fleetsim: %s: connection lost: %s (drops so far %" PRIu64 ")\n", name, why,
                s->st.drops + 1);
    }
    s->st.drops++;
    n->state = ST_IDLE;
    free(n->rbuf);
    n->rbuf = NULL;
    n->rlen = 0;
    free(n->wbuf);
    n->wbuf = NULL;
    n->wlen = n->woff = n->wcap = 0;
    n->next_try_ms = now_ms() + drv_proto_backoff_next(&n->backoff);
}

/* Writes what the socket takes; false when the connection broke (and was dropped). */
static bool node_flush(sim_t *s, uint32_t i)
{
    sim_node_t *n = &s->nodes[i];
    while (n->woff < n->wlen) {
        ssize_t w = send(n->fd, n->wbuf + n->woff, n->wlen - n->woff, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            node_drop(s, i, strerror(errno));
            return false;
        }
        n->woff += (size_t)w;
        s->st.bytes_out += (uint64_t)w;
    }
    if (n->woff == n->wlen) {
        n->woff = n->wlen = 0;
        /* a drained buffer goes back at once: idle connections hold none, and the next
         * packet's own buffer becomes the connection's (no copy) */
        if (n->wbuf) {
            free(n->wbuf);
            n->wbuf = NULL;
            n->wcap = 0;
        }
    }
    node_watch(s, i);
    return true;
}

/* Queues a packet (takes its bytes) and tries to send; false when the node was dropped. */
static bool node_send(sim_t *s, uint32_t i, pkt_t *k)
{
    sim_node_t *n = &s->nodes[i];
    if (n->wlen - n->woff + k->len > SIM_WBUF_MAX) {
        free(k->p);
        node_drop(s, i, "send buffer over its maximum (broker not reading)");
        return false;
    }
    if (n->woff > 0 && n->woff == n->wlen)
        n->woff = n->wlen = 0;
    if (n->wlen == 0 && n->wbuf == NULL) {
        n->wbuf = k->p;
        n->wlen = k->len;
        n->wcap = k->cap;
        n->woff = 0;
    } else {
        if (n->woff > 0) {
            memmove(n->wbuf, n->wbuf + n->woff, n->wlen - n->woff);
            n->wlen -= n->woff;
            n->woff = 0;
        }
        if (n->wlen + k->len > n->wcap) {
            size_t cap = n->wcap ? n->wcap : 256;
            while (cap < n->wlen + k->len)
                cap *= 2;
            unsigned char *np = realloc(n->wbuf, cap);
            if (!np) {
                free(k->p);
                node_drop(s, i, "out of memory");
                return false;
            }
            n->wbuf = np;
            n->wcap = cap;
        }
        memcpy(n->wbuf + n->wlen, k->p, k->len);
        n->wlen += k->len;
        free(k->p);
    }
    *k = (pkt_t){0};
    n->last_tx_ms = now_ms();
    return node_flush(s, i);
}

static bool send_publish(sim_t *s, uint32_t i, drv_proto_msg_t kind, const char *payload,
                         size_t len)
{
    sim_node_t *n = &s->nodes[i];
    char name[DRV_PROTO_NODE_MAX + 1], topic[DRV_PROTO_TOPIC_MAX];
    drv_error_t err = DRV_ERROR_INIT;
    node_name(s, i, name, sizeof name);
    if (drv_proto_topic(topic, sizeof topic, name, kind, NULL, &err) != DRV_OK) {
        fprintf(stderr, "fleetsim: %s\n", drv_error_msg(&err));
        return false;
    }
    int qos = drv_proto_qos(kind);
    uint8_t type = (uint8_t)(0x30 | (qos << 1) | (drv_proto_retained(kind) ? 1 : 0));
    pkt_t body = {0}, k;
    pkt_str(&body, topic, strlen(topic));
    if (qos > 0) {
        if (++n->next_pid == 0)
            n->next_pid = 1;
        pkt_u16(&body, n->next_pid);
    }
    pkt_put(&body, payload, len);
    bool ok = pkt_finish(type, &body, &k);
    free(body.p);
    if (!ok) {
        free(k.p);
        node_drop(s, i, "out of memory");
        return false;
    }
    if (kind == DRV_PROTO_METRICS) {
        s->st.metrics_bytes += k.len;
        s->st.metrics_payload += len;
    }
    return node_send(s, i, &k);
}

/* ---- what a node says ---- */

static cJSON *node_status_json(uint32_t i, const char *name)
{
    char now[DRV_PROTO_TIME_MAX + 1], ip[32];
    drv_proto_now(now, sizeof now);
    uint32_t hn = i + 1; /* 10.100.0.1 onwards */
    snprintf(ip, sizeof ip, "10.%u.%u.%u", 100 + (unsigned)(hn >> 16), (unsigned)((hn >> 8) & 255),
             (unsigned)(hn & 255));
    cJSON *ns = cJSON_CreateObject();
    cJSON *cap = cJSON_AddObjectToObject(ns, "capacity");
    cJSON_AddStringToObject(cap, "cpu", "4");
    cJSON_AddStringToObject(cap, "memory", "4Gi");
    cJSON_AddStringToObject(cap, "pods", "110");
    cJSON *alloc = cJSON_AddObjectToObject(ns, "allocatable");
    cJSON_AddStringToObject(alloc, "cpu", "4");
    cJSON_AddStringToObject(alloc, "memory", "4Gi");
    cJSON_AddStringToObject(alloc, "pods", "110");
    cJSON *conds = cJSON_AddArrayToObject(ns, "conditions");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "type", "Ready");
    cJSON_AddStringToObject(c, "status", "True");
    cJSON_AddStringToObject(c, "reason", "AgentReady");
    cJSON_AddStringToObject(c, "lastHeartbeatTime", now);
    cJSON_AddItemToArray(conds, c);
    cJSON *info = cJSON_AddObjectToObject(ns, "nodeInfo");
    cJSON_AddStringToObject(info, "architecture", "arm64");
    cJSON_AddStringToObject(info, "operatingSystem", "linux");
    cJSON_AddStringToObject(info, "kernelVersion", "6.1.0-fleetsim");
    cJSON_AddStringToObject(info, "osImage", "fleetsim");
    cJSON *labels = cJSON_AddObjectToObject(ns, "labels");
    cJSON_AddStringToObject(labels, "kubernetes.io/arch", "arm64");
    cJSON_AddStringToObject(labels, "kubernetes.io/os", "linux");
    cJSON_AddStringToObject(labels, "kubernetes.io/hostname", name);
    cJSON *addrs = cJSON_AddArrayToObject(ns, "addresses");
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "type", "InternalIP");
    cJSON_AddStringToObject(a, "address", ip);
    cJSON_AddItemToArray(addrs, a);
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "type", "Hostname");
    cJSON_AddStringToObject(h, "address", name);
    cJSON_AddItemToArray(addrs, h);
    return ns;
}

static const char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The status of a pod that runs: Running, Ready, every container ready and running. */
static cJSON *pod_report(const cJSON *pod, time_t started, const char *host_ip,
                         const char *pod_cidr, uint32_t slot)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
    char at[DRV_PROTO_TIME_MAX + 1], pod_ip[32];
    time_rfc3339(started, at, sizeof at);
    snprintf(pod_ip, sizeof pod_ip, "%s", host_ip);
    /* pod IP: from the node's pod block when the hub gave one (as a real agent's CNI), so that
     * the hub's cluster network sees them; else the host's address with the slot in the last
     * octet's place */
    drv_net_cidr_t block;
    uint32_t ip;
    if (pod_cidr && pod_cidr[0] && drv_net_cidr_parse(pod_cidr, false, &block, NULL) == DRV_OK &&
        drv_net_cidr_nth(block, 2 + slot % 250, &ip)) {
        drv_net_ip_format(ip, pod_ip);
    } else {
        char *dot = strrchr(pod_ip, '.');
        if (dot)
            snprintf(dot + 1, sizeof pod_ip - (size_t)(dot + 1 - pod_ip), "%u", 1 + slot % 250);
    }
    cJSON *r = cJSON_CreateObject();
    cJSON *m = cJSON_AddObjectToObject(r, "metadata");
    const char *v;
    if ((v = json_str(meta, "name")))
        cJSON_AddStringToObject(m, "name", v);
    cJSON_AddStringToObject(m, "namespace", (v = json_str(meta, "namespace")) ? v : "default");
    if ((v = json_str(meta, "uid")))
        cJSON_AddStringToObject(m, "uid", v);
    cJSON *st = cJSON_AddObjectToObject(r, "status");
    cJSON_AddStringToObject(st, "phase", "Running");
    cJSON *conds = cJSON_AddArrayToObject(st, "conditions");
    static const char *const types[] = {"Initialized", "ContainersReady", "Ready", "PodScheduled"};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "type", types[t]);
        cJSON_AddStringToObject(c, "status", "True");
        cJSON_AddStringToObject(c, "lastTransitionTime", at);
        cJSON_AddItemToArray(conds, c);
    }
    cJSON_AddStringToObject(st, "hostIP", host_ip);
    cJSON_AddStringToObject(st, "podIP", pod_ip);
    cJSON_AddStringToObject(st, "startTime", at);
    cJSON *cs = cJSON_AddArrayToObject(st, "containerStatuses");
    const cJSON *ctrs = cJSON_GetObjectItemCaseSensitive(spec, "containers");
    const cJSON *ctr;
    cJSON_ArrayForEach(ctr, ctrs)
    {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "name", (v = json_str(ctr, "name")) ? v : "c");
        cJSON_AddStringToObject(c, "image", (v = json_str(ctr, "image")) ? v : "");
        cJSON_AddStringToObject(c, "imageID", "");
        cJSON_AddBoolToObject(c, "ready", true);
        cJSON_AddBoolToObject(c, "started", true);
        cJSON_AddNumberToObject(c, "restartCount", 0);
        cJSON *state = cJSON_AddObjectToObject(c, "state");
        cJSON *running = cJSON_AddObjectToObject(state, "running");
        cJSON_AddStringToObject(running, "startedAt", at);
        cJSON_AddItemToArray(cs, c);
    }
    return r;
}

/* The pod reports of a new desired state: a pod the node already ran (same uid) keeps its
 * report, start time included; a new one starts now; a terminating one is stopped at once. */
static cJSON *pods_for_desired(const cJSON *desired_pods, const cJSON *old, const char *host_ip,
                               const char *pod_cidr)
{
    cJSON *pods = cJSON_CreateArray();
    time_t now = time(NULL);
    uint32_t slot = 0;
    const cJSON *pod;
    cJSON_ArrayForEach(pod, desired_pods)
    {
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
        if (cJSON_GetObjectItemCaseSensitive(meta, "deletionTimestamp"))
            continue;
        const char *uid = json_str(meta, "uid");
        cJSON *item = NULL;
        const cJSON *o;
        cJSON_ArrayForEach(o, old)
        {
            const char *ouid = json_str(cJSON_GetObjectItemCaseSensitive(o, "metadata"), "uid");
            if (uid && ouid && strcmp(uid, ouid) == 0) {
                item = cJSON_Duplicate(o, true);
                break;
            }
        }
        if (!item)
            item = pod_report(pod, now, host_ip, pod_cidr, slot);
        cJSON_AddItemToArray(pods, item);
        slot++;
    }
    return pods;
}

/* What a usage report names of the pods a status report says run: "ns name uid ctr[,ctr]\n"
 * a pod (a new string, NULL when there are none or out of memory). */
static char *usage_pods_of(const cJSON *pods)
{
    _cleanup_buf_ drv_buf_t b = DRV_BUF_INIT(DRV_PROTO_METRICS_MAX);
    bool ok = true;
    size_t n = 0;
    const cJSON *pod;
    cJSON_ArrayForEach(pod, pods)
    {
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(pod, "status");
        const char *ns = json_str(meta, "namespace"), *name = json_str(meta, "name");
        const char *uid = json_str(meta, "uid"), *phase = json_str(st, "phase");
        if (!ns || !name || !uid || !phase || strcmp(phase, "Running") != 0 ||
            n >= DRV_PROTO_METRICS_PODS_MAX)
            continue;
        ok = ok && drv_buf_printf(&b, "%s %s %s ", ns, name, uid) == DRV_OK;
        const cJSON *c;
        size_t k = 0;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(st, "containerStatuses"))
        {
            const char *cn = json_str(c, "name");
            if (cn && k < DRV_PROTO_METRICS_CTRS_MAX)
                ok = ok && drv_buf_printf(&b, "%s%s", k++ ? "," : "", cn) == DRV_OK;
        }
        ok = ok && drv_buf_puts(&b, "\n") == DRV_OK;
        n++;
    }
    return ok && n ? drv_buf_steal(&b, NULL) : NULL;
}

/* Publishes a full status report: the node and its pods. desired_pods not NULL (a new desired
 * state) replaces the pods the node runs; NULL reports the ones it ran already (a reconnect). */
static bool send_status(sim_t *s, uint32_t i, const cJSON *desired_pods)
{
    sim_node_t *n = &s->nodes[i];
    char name[DRV_PROTO_NODE_MAX + 1];
    node_name(s, i, name, sizeof name);
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *ns = node_status_json(i, name);
    const cJSON *addr = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ns, "addresses"), 0);
    const char *host_ip = json_str(addr, "address");
    cJSON *old = n->pods_json ? cJSON_Parse(n->pods_json) : NULL;
    cJSON *pods;
    if (desired_pods) {
        pods = pods_for_desired(desired_pods, old, host_ip ? host_ip : "", n->pod_cidr);
        cJSON_Delete(old);
        char *text = pods ? cJSON_PrintUnformatted(pods) : NULL;
        if (!text) {
            cJSON_Delete(ns);
            cJSON_Delete(pods);
            fprintf(stderr, "fleetsim: %s: out of memory\n", name);
            return false;
        }
        free(n->pods_json);
        n->pods_json = text;
        if (s->o.metrics_ms) {
            free(n->usage_pods);
            n->usage_pods = usage_pods_of(pods);
        }
        s->st.pods_reported -= n->npods;
        n->npods = (uint32_t)cJSON_GetArraySize(pods);
        s->st.pods_reported += n->npods;
    } else {
        pods = old;
    }
    cJSON *doc = drv_proto_status_build(name, n->gen, ns, pods, &err);
    cJSON_Delete(ns);
    cJSON_Delete(pods);
    if (!doc) {
        fprintf(stderr, "fleetsim: %s: %s\n", name, drv_error_msg(&err));
        return false;
    }
    _cleanup_free_ char *payload = NULL;
    size_t len = 0;
    drv_err_t rc = drv_proto_encode(doc, DRV_PROTO_STATUS, &payload, &len, &err);
    cJSON_Delete(doc);
    if (rc != DRV_OK) {
        fprintf(stderr, "fleetsim: %s: %s\n", name, drv_error_msg(&err));
        return false;
    }
    s->st.status_sent++;
    return send_publish(s, i, DRV_PROTO_STATUS, payload, len);
}

static bool send_heartbeat(sim_t *s, uint32_t i)
{
    sim_node_t *n = &s->nodes[i];
    drv_proto_heartbeat_t hb = {.seq = n->hb_seq++, .observed_generation = n->gen};
    node_name(s, i, hb.node, sizeof hb.node);
    char buf[512];
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_proto_heartbeat_format(&hb, buf, sizeof buf, &err) != DRV_OK) {
        fprintf(stderr, "fleetsim: %s\n", drv_error_msg(&err));
        return false;
    }
    s->st.heartbeats++;
    return send_publish(s, i, DRV_PROTO_HEARTBEAT, buf, strlen(buf));
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A value about base, give or take spread (both > 0). */
static int64_t around(sim_t *s, int64_t base, int64_t spread)
{
    return base - spread + (int64_t)(rnd(s) % (uint64_t)(2 * spread + 1));
}

/* A usage report as an agent sends it: the node's usage and one container's per pod it last
 * reported Running (n->usage_pods), with plausible values that move from sample to sample. */
static bool send_metrics(sim_t *s, uint32_t i)
{
    sim_node_t *n = &s->nodes[i];
    drv_proto_metrics_t m = {.seq = n->metrics_seq++,
                             .time_ms = wall_ms(),
                             .has_cpu = true,
                             .has_memory = true,
                             .memory_total_bytes = 4LL << 30,
                             .has_disk = true,
                             .disk_total_bytes = 16LL << 30,
                             .has_temp = true,
                             .pods = s->usage_scratch};
    node_name(s, i, m.node, sizeof m.node);
    if (n->last_metrics_wall_ms > 0 && m.time_ms <= n->last_metrics_wall_ms)
        m.time_ms = n->last_metrics_wall_ms + 1; /* the hub takes only newer samples */
    m.window_ms = n->last_metrics_wall_ms > 0 ? m.time_ms - n->last_metrics_wall_ms
                                              : (int64_t)s->o.metrics_ms;
    n->last_metrics_wall_ms = m.time_ms;
    m.cpu_nanocores = around(s, 600000000, 400000000);
    m.memory_bytes = around(s, 1536LL << 20, 512LL << 20);
    m.disk_free_bytes = around(s, 8LL << 30, 1LL << 30);
    m.temp_millicelsius = around(s, 50000, 5000);
    for (const char *l = n->usage_pods; l && *l && m.n_pods < DRV_PROTO_METRICS_PODS_MAX;) {
        const char *end = strchr(l, '\n');
        if (!end)
            break;
        drv_proto_pod_usage_t *p = &m.pods[m.n_pods];
        memset(p, 0, sizeof *p);
        char ctrs[DRV_PROTO_METRICS_CTRS_MAX * 64];
        if (sscanf(l, "%63s %253s %64s %1023s", p->ns, p->name, p->uid, ctrs) == 4) {
            for (char *c = ctrs, *next; c && p->n_ctrs < DRV_PROTO_METRICS_CTRS_MAX; c = next) {
                next = strchr(c, ',');
                if (next)
                    *next++ = 0;
                size_t cl = strlen(c);
                if (cl == 0 || cl >= sizeof p->ctrs[0].name)
                    continue; /* not a container name */
                drv_proto_ctr_usage_t *u = &p->ctrs[p->n_ctrs++];
                memcpy(u->name, c, cl + 1);
                u->has_cpu = u->has_memory = true;
                u->cpu_nanocores = around(s, 25000000, 20000000);
                u->memory_bytes = around(s, 40LL << 20, 24LL << 20);
            }
            m.n_pods++;
        }
        l = end + 1;
    }
    char *payload = NULL;
    size_t len = 0;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_proto_metrics_format(&m, &payload, &len, &err) != DRV_OK) {
        fprintf(stderr, "fleetsim: %s: %s\n", m.node, drv_error_msg(&err));
        return false;
    }
    s->st.metrics_sent++;
    bool ok = send_publish(s, i, DRV_PROTO_METRICS, payload, len);
    free(payload);
    return ok;
}

static bool send_connect(sim_t *s, uint32_t i)
{
    char name[DRV_PROTO_NODE_MAX + 1], will_topic[DRV_PROTO_TOPIC_MAX], will[128];
    char client_id[DRV_PROTO_NODE_MAX + 32];
    drv_error_t err = DRV_ERROR_INIT;
    node_name(s, i, name, sizeof name);
    snprintf(client_id, sizeof client_id, "drover-agent-%s", name);
    if (drv_proto_topic(will_topic, sizeof will_topic, name, DRV_PROTO_ONLINE, NULL, &err) !=
            DRV_OK ||
        drv_proto_online_format(false, NULL, NULL, will, sizeof will, &err) != DRV_OK) {
        fprintf(stderr, "fleetsim: %s\n", drv_error_msg(&err));
        return false;
    }
    uint8_t flags = 0x02 /* clean session */ | 0x04 /* will */ |
                    (uint8_t)(drv_proto_qos(DRV_PROTO_ONLINE) << 3) |
                    (drv_proto_retained(DRV_PROTO_ONLINE) ? 0x20 : 0);
    pkt_t body = {0}, k;
    pkt_str(&body, "MQTT", 4);
    pkt_u8(&body, 4);
    pkt_u8(&body, flags);
    pkt_u16(&body, (uint16_t)s->o.keepalive_s);
    pkt_str(&body, client_id, strlen(client_id));
    pkt_str(&body, will_topic, strlen(will_topic));
    pkt_str(&body, will, strlen(will));
    bool ok = pkt_finish(0x10, &body, &k);
    free(body.p);
    if (!ok) {
        free(k.p);
        return false;
    }
    return node_send(s, i, &k);
}

static bool on_connack(sim_t *s, uint32_t i)
{
    sim_node_t *n = &s->nodes[i];
    char name[DRV_PROTO_NODE_MAX + 1], filter[DRV_PROTO_TOPIC_MAX], online[128], now[48];
    drv_error_t err = DRV_ERROR_INIT;
    node_name(s, i, name, sizeof name);
    s->inflight--;
    n->state = ST_UP;
    s->connected++;
    s->st.connects++;
    drv_proto_backoff_reset(&n->backoff);
    if (drv_proto_filter(filter, sizeof filter, name, DRV_PROTO_DESIRED, &err) != DRV_OK) {
        fprintf(stderr, "fleetsim: %s\n", drv_error_msg(&err));
        return false;
    }
    pkt_t body = {0}, k;
    if (++n->next_pid == 0)
        n->next_pid = 1;
    pkt_u16(&body, n->next_pid);
    pkt_str(&body, filter, strlen(filter));
    pkt_u8(&body, (uint8_t)drv_proto_qos(DRV_PROTO_DESIRED));
    bool ok = pkt_finish(0x82, &body, &k);
    free(body.p);
    if (!ok || !node_send(s, i, &k))
        return false;
    drv_proto_now(now, sizeof now);
    if (drv_proto_online_format(true, now, NULL, online, sizeof online, &err) != DRV_OK) {
        fprintf(stderr, "fleetsim: %s\n", drv_error_msg(&err));
        return false;
    }
    if (!send_publish(s, i, DRV_PROTO_ONLINE, online, strlen(online)))
        return false;
    if (!send_status(s, i, NULL))
        return false;
    /* the first beat at a random point of the interval, so the fleet never beats in step */
    n->next_hb_ms = now_ms() + (int64_t)(rnd(s) % s->o.heartbeat_ms);
    if (s->metrics_on)
        n->next_metrics_ms = now_ms() + (int64_t)(rnd(s) % s->o.metrics_ms);
    return true;
}

static void on_desired(sim_t *s, uint32_t i, const char *payload, size_t len)
{
    sim_node_t *n = &s->nodes[i];
    char name[DRV_PROTO_NODE_MAX + 1];
    node_name(s, i, name, sizeof name);
    drv_error_t err = DRV_ERROR_INIT;
    /* The signed envelope: verified as an agent does with --verify-key; otherwise only
     * unwrapped, so that the simulator's own CPU does not limit the hub's figures. */
    char *doc = NULL;
    size_t dlen = 0;
    drv_err_t rc = DRV_OK;
    if (s->o.verify_key) {
        rc = drv_proto_desired_open(payload, len, s->o.verify_key, &doc, &dlen, &err);
    } else {
        cJSON *env = cJSON_ParseWithLength(payload, len);
        const cJSON *pl = cJSON_GetObjectItemCaseSensitive(env, "payload");
        if (cJSON_IsString(pl) && (doc = strdup(pl->valuestring)) != NULL)
            dlen = strlen(doc);
        else
            rc = drv_error_set(&err, DRV_ERR_INVALID, 0, "desired state: not a signed envelope");
        cJSON_Delete(env);
    }
    drv_proto_desired_t d;
    if (rc == DRV_OK)
        rc = drv_proto_desired_parse(doc, dlen, name, &d, &err);
    free(doc);
    if (rc != DRV_OK) {
        if (s->st.desired_bad++ < 20)
            fprintf(stderr, "fleetsim: %s: refused: %s\n", name, drv_error_msg(&err));
        return;
    }
    if (d.generation <= n->gen) {
        s->st.desired_stale++;
        drv_proto_desired_free(&d);
        return;
    }
    n->gen = d.generation;
    s->st.desired++;
    const char *cidr = json_str(d.network, "podCIDR");
    if (cidr)
        snprintf(n->pod_cidr, sizeof n->pod_cidr, "%s", cidr);
    send_status(s, i, d.pods);
    drv_proto_desired_free(&d);
}

/* One complete packet from the broker; false when the node was dropped. */
static bool on_packet(sim_t *s, uint32_t i, uint8_t type, const unsigned char *b, size_t len)
{
    sim_node_t *n = &s->nodes[i];
    s->st.msgs_in++;
    switch (type >> 4) {
    case 2: /* CONNACK */
        if (n->state != ST_CONNACK || len < 2) {
            node_drop(s, i, "unexpected CONNACK");
            return false;
        }
        if (b[1] != 0) {
            char why[64];
            snprintf(why, sizeof why, "broker refused the connection (CONNACK code %u)", b[1]);
            node_drop(s, i, why);
            return false;
        }
        if (!on_connack(s, i)) {
            if (s->nodes[i].fd >= 0)
                node_drop(s, i, "could not start the session");
            return false;
        }
        return true;
    case 3: { /* PUBLISH */
        int qos = (type >> 1) & 3;
        if (len < 2 || qos > 1) {
            node_drop(s, i, "malformed PUBLISH");
            return false;
        }
        size_t tl = ((size_t)b[0] << 8) | b[1];
        size_t off = 2 + tl;
        if (off + (qos ? 2 : 0) > len) {
            node_drop(s, i, "malformed PUBLISH");
            return false;
        }
        char topic[DRV_PROTO_TOPIC_MAX + 1];
        bool topic_ok = tl < sizeof topic;
        if (topic_ok) {
            memcpy(topic, b + 2, tl);
            topic[tl] = 0;
        }
        if (qos) {
            uint16_t pid = (uint16_t)((b[off] << 8) | b[off + 1]);
            off += 2;
            pkt_t body = {0}, k;
            pkt_u16(&body, pid);
            bool ok = pkt_finish(0x40, &body, &k);
            free(body.p);
            if (!ok || !node_send(s, i, &k))
                return false;
        }
        drv_proto_msg_t kind;
        char node[DRV_PROTO_NODE_MAX + 1];
        drv_error_t err = DRV_ERROR_INIT;
        if (topic_ok && drv_proto_parse_topic(topic, &kind, node, NULL, &err) == DRV_OK &&
            kind == DRV_PROTO_DESIRED)
            on_desired(s, i, (const char *)b + off, len - off);
        return s->nodes[i].fd >= 0;
    }
    case 4:  /* PUBACK */
    case 9:  /* SUBACK */
    case 13: /* PINGRESP */
        return true;
    default: {
        char why[48];
        snprintf(why, sizeof why, "unexpected packet type %u", type >> 4);
        node_drop(s, i, why);
        return false;
    }
    }
}

/* Parses complete packets out of buf; returns bytes consumed, or -1 when the node was
 * dropped. */
static ssize_t parse_packets(sim_t *s, uint32_t i, const unsigned char *buf, size_t len)
{
    size_t pos = 0;
    while (pos + 2 <= len) {
        size_t rl = 0, mult = 1, h = pos + 1;
        bool complete = false;
        for (int k = 0; k < 4 && h < len; k++, h++) {
            rl += (size_t)(buf[h] & 0x7f) * mult;
            mult *= 128;
            if (!(buf[h] & 0x80)) {
                complete = true;
                h++;
                break;
            }
            if (k == 3) {
                node_drop(s, i, "malformed remaining length");
                return -1;
            }
        }
        if (!complete)
            break;
        if (rl > SIM_PACKET_MAX) {
            node_drop(s, i, "packet over the size cap");
            return -1;
        }
        if (h + rl > len)
            break;
        if (!on_packet(s, i, buf[pos], buf + h, rl))
            return -1;
        pos = h + rl;
    }
    return (ssize_t)pos;
}

static void node_readable(sim_t *s, uint32_t i)
{
    sim_node_t *n = &s->nodes[i];
    for (int round = 0; round < 8; round++) {
        ssize_t r = recv(n->fd, s->scratch, SIM_SCRATCH, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                node_drop(s, i, strerror(errno));
            return;
        }
        if (r == 0) {
            node_drop(s, i, "closed by the broker");
            return;
        }
        s->st.bytes_in += (uint64_t)r;
        const unsigned char *buf = s->scratch;
        size_t len = (size_t)r;
        if (n->rlen) { /* an incomplete packet waits: append */
            unsigned char *nb = realloc(n->rbuf, n->rlen + len);
            if (!nb) {
                node_drop(s, i, "out of memory");
                return;
            }
            memcpy(nb + n->rlen, s->scratch, len);
            n->rbuf = nb;
            n->rlen += len;
            buf = n->rbuf;
            len = n->rlen;
        }
        ssize_t used = parse_packets(s, i, buf, len);
        if (used < 0)
            return;
        size_t rest = len - (size_t)used;
        if (rest == 0) {
            free(n->rbuf);
            n->rbuf = NULL;
            n->rlen = 0;
        } else if (buf == n->rbuf) {
            memmove(n->rbuf, n->rbuf + used, rest);
            n->rlen = rest;
        } else {
            n->rbuf = malloc(rest);
            if (!n->rbuf) {
                node_drop(s, i, "out of memory");
                return;
            }
            memcpy(n->rbuf, buf + used, rest);
            n->rlen = rest;
        }
        if ((size_t)r < SIM_SCRATCH)
            return;
    }
}

static void node_connect(sim_t *s, uint32_t i)
{
    sim_node_t *n = &s->nodes[i];
    int fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        n->next_try_ms = now_ms() + drv_proto_backoff_next(&n->backoff);
        if (s->st.drops++ < 20)
            fprintf(stderr, "fleetsim: socket: %s\n", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    n->fd = fd;
    n->state = ST_CONNECTING;
    n->t_state_ms = now_ms();
    s->inflight++;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.u32 = i};
    n->wout = true;
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        node_drop(s, i, strerror(errno));
        return;
    }
    if (connect(fd, (struct sockaddr *)&s->addr, s->addrlen) != 0 && errno != EINPROGRESS)
        node_drop(s, i, strerror(errno));
}

static void node_event(sim_t *s, uint32_t i, uint32_t events)
{
    sim_node_t *n = &s->nodes[i];
    if (n->fd < 0)
        return;
    if (n->state == ST_CONNECTING) {
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(n->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
            soerr = errno;
        if (soerr != 0) {
            node_drop(s, i, strerror(soerr));
            return;
        }
        if (!(events & (EPOLLOUT | EPOLLIN)))
            return;
        n->state = ST_CONNACK;
        n->t_state_ms = now_ms();
        if (!send_connect(s, i)) {
            if (n->fd >= 0)
                node_drop(s, i, "could not send CONNECT");
            return;
        }
    }
    if (events & EPOLLIN) {
        node_readable(s, i);
        if (n->fd < 0)
            return;
    }
    if (events & (EPOLLERR | EPOLLHUP)) {
        node_drop(s, i, "connection error");
        return;
    }
    if ((events & EPOLLOUT) && n->wlen > n->woff)
        node_flush(s, i);
    else if (events & EPOLLOUT)
        node_watch(s, i);
}

/* Timers: connection pacing, connect timeouts, heartbeats, keep-alive pings. */
static void tick(sim_t *s, int64_t now, double dt_s)
{
    s->tokens += dt_s * s->o.connect_rate;
    double burst = s->o.connect_rate / 10.0 > 1 ? s->o.connect_rate / 10.0 : 1;
    if (s->tokens > burst)
        s->tokens = burst;
    for (uint32_t i = 0; i < s->o.nodes; i++) {
        sim_node_t *n = &s->nodes[i];
        switch (n->state) {
        case ST_IDLE:
            if (n->next_try_ms <= now && s->tokens >= 1 && s->inflight < s->o.inflight) {
                s->tokens -= 1;
                node_connect(s, i);
            }
            break;
        case ST_CONNECTING:
        case ST_CONNACK:
            if (now - n->t_state_ms > SIM_CONNECT_TIMEOUT_MS)
                node_drop(s, i, "no CONNACK in time");
            break;
        case ST_UP:
            if (n->next_hb_ms <= now) {
                n->next_hb_ms += s->o.heartbeat_ms;
                if (n->next_hb_ms <= now) /* fell behind: keep the phase, skip the missed */
                    n->next_hb_ms = now + s->o.heartbeat_ms;
                if (n->wlen - n->woff > SIM_HB_BACKLOG)
                    s->st.hb_skipped++;
                else if (!send_heartbeat(s, i))
                    break;
            }
            if (s->metrics_on && n->next_metrics_ms <= now) {
                /* every metrics_ms give or take a tenth, as agents' timers drift apart */
                int64_t iv = s->o.metrics_ms, j = iv / 10;
                n->next_metrics_ms = now + (j ? around(s, iv, j) : iv);
                if (n->wlen - n->woff > SIM_HB_BACKLOG)
                    s->st.metrics_skipped++;
                else if (!send_metrics(s, i))
                    break;
            }
            if (n->fd >= 0 && now - n->last_tx_ms > (int64_t)s->o.keepalive_s * 500) {
                pkt_t k = {0};
                unsigned char ping[2] = {0xc0, 0x00};
                pkt_put(&k, ping, 2);
                if (!k.oom)
                    node_send(s, i, &k);
            }
            break;
        }
    }
}

static void print_stats(sim_t *s, int64_t now, const char *tag)
{
    fprintf(stderr,
            "fleetsim: %s t=%.1fs connected=%" PRIu32 "/%" PRIu32 " desired=%" PRIu64
            " pods_reported=%" PRIu64 " status_sent=%" PRIu64 " heartbeats=%" PRIu64
            " metrics=%" PRIu64 " metrics_skipped=%" PRIu64 " metrics_bytes=%" PRIu64
            " drops=%" PRIu64 " refused=%" PRIu64 " in=%.1fMB out=%.1fMB out_bytes=%" PRIu64 "\n",
            tag, (now - s->t0_ms) / 1000.0, s->connected, s->o.nodes, s->st.desired,
            s->st.pods_reported, s->st.status_sent, s->st.heartbeats, s->st.metrics_sent,
            s->st.metrics_skipped, s->st.metrics_bytes, s->st.drops, s->st.desired_bad,
            s->st.bytes_in / 1e6, s->st.bytes_out / 1e6, s->st.bytes_out);
}

/* Disconnect every node cleanly, first publishing {"online":false} like an agent that shuts
 * down, and give the broker a moment to take the bytes. */
static void shutdown_fleet(sim_t *s)
{
    char off[128], now[48];
    drv_error_t err = DRV_ERROR_INIT;
    drv_proto_now(now, sizeof now);
    if (drv_proto_online_format(false, now, NULL, off, sizeof off, &err) != DRV_OK)
        off[0] = 0;
    for (uint32_t i = 0; i < s->o.nodes; i++) {
        if (s->nodes[i].state != ST_UP)
            continue;
        if (off[0] && !send_publish(s, i, DRV_PROTO_ONLINE, off, strlen(off)))
            continue;
        pkt_t k = {0};
        unsigned char disc[2] = {0xe0, 0x00};
        pkt_put(&k, disc, 2);
        if (!k.oom)
            node_send(s, i, &k);
    }
    int64_t end = now_ms() + 2000;
    for (;;) {
        bool pending = false;
        for (uint32_t i = 0; i < s->o.nodes; i++)
            if (s->nodes[i].fd >= 0 && s->nodes[i].wlen > s->nodes[i].woff)
                pending = true;
        if (!pending || now_ms() > end)
            break;
        struct epoll_event evs[256];
        int ne = epoll_wait(s->ep, evs, 256, 50);
        for (int e = 0; e < ne; e++) {
            uint32_t i = evs[e].data.u32;
            if (s->nodes[i].fd >= 0 && (evs[e].events & EPOLLOUT))
                node_flush(s, i);
        }
    }
    for (uint32_t i = 0; i < s->o.nodes; i++) {
        sim_node_t *n = &s->nodes[i];
        if (n->fd >= 0)
            close(n->fd);
        n->fd = -1;
        free(n->rbuf);
        free(n->wbuf);
        free(n->pods_json);
        free(n->usage_pods);
        n->rbuf = n->wbuf = NULL;
        n->pods_json = n->usage_pods = NULL;
    }
}

/* ---- options ---- */

static drv_err_t parse_u32(const char *opt, const char *v, uint32_t min, uint32_t max,
                           uint32_t *out, drv_error_t *err)
{
    char *end = NULL;
    errno = 0;
    unsigned long long x = v ? strtoull(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || *v == '-' || x < min || x > max)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s: must be an integer from %" PRIu32 " to %" PRIu32 " (got \"%s\")",
                             opt, min, max, v ? v : "");
    *out = (uint32_t)x;
    return DRV_OK;
}

static drv_err_t parse_broker(const char *url, sim_opts_t *o, drv_error_t *err)
{
    const char *p = url;
    if (strncmp(p, "tcp://", 6) == 0)
        p += 6;
    else if (strncmp(p, "mqtt://", 7) == 0)
        p += 7;
    else
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "--broker: must be tcp://HOST:PORT (got \"%s\")", url);
    const char *colon = strrchr(p, ':');
    if (!colon || colon == p || (size_t)(colon - p) >= sizeof o->host)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "--broker: must be tcp://HOST:PORT (got \"%s\")", url);
    uint32_t port;
    if (parse_u32("--broker port", colon + 1, 1, 65535, &port, err) != DRV_OK)
        return err->code;
    size_t hl = (size_t)(colon - p);
    if (p[0] == '[' && hl >= 2 && p[hl - 1] == ']') { /* [v6] */
        memcpy(o->host, p + 1, hl - 2);
        o->host[hl - 2] = 0;
    } else {
        memcpy(o->host, p, hl);
        o->host[hl] = 0;
    }
    snprintf(o->port, sizeof o->port, "%" PRIu32, port);
    return DRV_OK;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fleetsim --broker tcp://HOST:PORT [--nodes N] [--prefix P] [--duration S]\n"
            "                [--heartbeat-ms MS] [--connect-rate PER_S] [--inflight N]\n"
            "                [--keepalive S] [--stats-ms MS] [--verify-key SIGNING.PUB]\n"
            "                [--metrics-ms MS [--metrics-paused]]\n"
            "Simulates N Drover nodes (names P00000, P00001, ...), each its own MQTT\n"
            "connection speaking protocol v1: Will and retained presence, a status report,\n"
            "heartbeats, and every pod of a desired state reported Running and Ready.\n"
            "Counters go to stderr every --stats-ms (default 1000), a summary line at the end.\n"
            "--duration 0 (default) runs until SIGINT or SIGTERM. --verify-key checks every\n"
            "desired state's signature as an agent does (otherwise it is only unwrapped).\n"
            "--metrics-ms MS (default 0: off): each node publishes a usage report (its own and\n"
            "one container's per pod it runs) every MS, give or take a tenth, always (as a busy\n"
            "device; an agent skips unchanged samples); counted as metrics= and metrics_bytes=\n"
            "(MQTT packets, framing included). SIGUSR1 pauses or resumes them; with\n"
            "--metrics-paused they wait for the first SIGUSR1.\n");
}

static drv_err_t parse_args(int argc, char **argv, sim_opts_t *o, drv_error_t *err)
{
    *o = (sim_opts_t){.nodes = 1000,
                      .prefix = "sim-",
                      .heartbeat_ms = 2000,
                      .connect_rate = 500,
                      .inflight = 200,
                      .keepalive_s = 10,
                      .stats_ms = 1000};
    bool have_broker = false;
    for (int a = 1; a < argc; a++) {
        const char *opt = argv[a];
        if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(opt, "--metrics-paused") == 0) {
            o->metrics_paused = true;
            continue;
        }
        const char *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!v)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: needs a value", opt);
        drv_err_t rc;
        if (strcmp(opt, "--broker") == 0) {
            rc = parse_broker(v, o, err);
            have_broker = true;
        } else if (strcmp(opt, "--nodes") == 0)
            rc = parse_u32(opt, v, 1, SIM_NODES_MAX, &o->nodes, err);
        else if (strcmp(opt, "--prefix") == 0) {
            o->prefix = v;
            rc = DRV_OK;
        } else if (strcmp(opt, "--verify-key") == 0) {
            free(o->verify_key);
            o->verify_key = NULL;
            rc = drv_file_read_capped(v, 4096, &o->verify_key, NULL, err);
        } else if (strcmp(opt, "--duration") == 0)
            rc = parse_u32(opt, v, 0, 86400 * 30, &o->duration_s, err);
        else if (strcmp(opt, "--heartbeat-ms") == 0)
            rc = parse_u32(opt, v, 10, 3600000, &o->heartbeat_ms, err);
        else if (strcmp(opt, "--connect-rate") == 0)
            rc = parse_u32(opt, v, 1, 1000000, &o->connect_rate, err);
        else if (strcmp(opt, "--inflight") == 0)
            rc = parse_u32(opt, v, 1, SIM_NODES_MAX, &o->inflight, err);
        else if (strcmp(opt, "--keepalive") == 0)
            rc = parse_u32(opt, v, 2, 65535, &o->keepalive_s, err);
        else if (strcmp(opt, "--stats-ms") == 0)
            rc = parse_u32(opt, v, 0, 3600000, &o->stats_ms, err);
        else if (strcmp(opt, "--metrics-ms") == 0) {
            rc = parse_u32(opt, v, 0, 3600000, &o->metrics_ms, err);
            if (rc == DRV_OK && o->metrics_ms > 0 && o->metrics_ms < 100)
                rc = drv_error_set(err, DRV_ERR_INVALID, 0,
                                   "%s: must be 0 (off) or at least 100 (got %s)", opt, v);
        } else
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: unknown option", opt);
        if (rc != DRV_OK)
            return rc;
        a++;
    }
    if (!have_broker)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "--broker: required");
    if (o->metrics_paused && !o->metrics_ms)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "--metrics-paused: needs --metrics-ms");
    /* the widest name must still be a valid node name */
    char name[DRV_PROTO_NODE_MAX + 16];
    snprintf(name, sizeof name, "%s%05" PRIu32, o->prefix, o->nodes - 1);
    if (strlen(o->prefix) > DRV_PROTO_NODE_MAX - 5 || drv_proto_check_node(name, err) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "--prefix: \"%s\" does not make valid node names (a DNS subdomain of "
                             "at most %d characters with the 5-digit index)",
                             o->prefix, DRV_PROTO_NODE_MAX);
    return DRV_OK;
}

int main(int argc, char **argv)
{
    sim_t s = {.ep = -1, .all_connected_ms = -1};
    drv_error_t err = DRV_ERROR_INIT;
    if (parse_args(argc, argv, &s.o, &err) != DRV_OK) {
        fprintf(stderr, "fleetsim: %s\n", drv_error_msg(&err));
        usage(stderr);
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)s.o.nodes + 32) {
        fprintf(stderr,
                "fleetsim: --nodes %" PRIu32 " needs %" PRIu32
                " file descriptors; the limit is %llu (ulimit -Hn)\n",
                s.o.nodes, s.o.nodes + 32, (unsigned long long)rl.rlim_cur);
        return 2;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int gai = getaddrinfo(s.o.host, s.o.port, &hints, &ai);
    if (gai != 0 || !ai) {
        fprintf(stderr, "fleetsim: --broker: %s: %s\n", s.o.host, gai_strerror(gai));
        return 2;
    }
    memcpy(&s.addr, ai->ai_addr, ai->ai_addrlen);
    s.addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct sigaction su = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &su, NULL);
    signal(SIGPIPE, SIG_IGN);
    s.metrics_on = s.o.metrics_ms && !s.o.metrics_paused;

    s.rng = (uint64_t)now_ms() * 2654435761u ^ (uint64_t)getpid() << 32;
    if (s.rng == 0)
        s.rng = 1;
    s.nodes = calloc(s.o.nodes, sizeof *s.nodes);
    s.scratch = malloc(SIM_SCRATCH);
    if (s.o.metrics_ms)
        s.usage_scratch = calloc(DRV_PROTO_METRICS_PODS_MAX, sizeof *s.usage_scratch);
    s.ep = epoll_create1(EPOLL_CLOEXEC);
    if (!s.nodes || !s.scratch || (s.o.metrics_ms && !s.usage_scratch) || s.ep < 0) {
        fprintf(stderr, "fleetsim: cannot start: %s\n", strerror(errno));
        return 1;
    }
    for (uint32_t i = 0; i < s.o.nodes; i++) {
        s.nodes[i].fd = -1;
        drv_proto_backoff_init(&s.nodes[i].backoff, 500, 30000, rnd(&s) | 1);
    }

    s.t0_ms = now_ms();
    int64_t last_tick = s.t0_ms, last_stats = s.t0_ms;
    int64_t end = s.o.duration_s ? s.t0_ms + (int64_t)s.o.duration_s * 1000 : INT64_MAX;
    struct epoll_event evs[1024];
    fprintf(stderr, "fleetsim: %" PRIu32 " nodes %s00000..%s%05" PRIu32 " -> tcp://%s:%s\n",
            s.o.nodes, s.o.prefix, s.o.prefix, s.o.nodes - 1, s.o.host, s.o.port);
    while (!g_stop) {
        int64_t now = now_ms();
        if (now >= end)
            break;
        if (now - last_tick >= SIM_TICK_MS || now == s.t0_ms) {
            tick(&s, now, (now - last_tick) / 1000.0);
            last_tick = now;
        }
        if (s.all_connected_ms < 0 && s.connected == s.o.nodes) {
            s.all_connected_ms = now;
            fprintf(stderr, "fleetsim: all %" PRIu32 " nodes connected in %.2fs\n", s.o.nodes,
                    (now - s.t0_ms) / 1000.0);
        }
        if (g_usage_flip) {
            g_usage_flip = 0;
            s.metrics_on = s.o.metrics_ms && !s.metrics_on;
            fprintf(stderr, "fleetsim: usage reports %s at t=%.1fs\n",
                    s.metrics_on     ? "on"
                    : s.o.metrics_ms ? "paused"
                                     : "off (no --metrics-ms)",
                    (now - s.t0_ms) / 1000.0);
            for (uint32_t i = 0; s.metrics_on && i < s.o.nodes; i++) { /* spread over a period */
                s.nodes[i].next_metrics_ms = now + (int64_t)(rnd(&s) % s.o.metrics_ms);
                s.nodes[i].last_metrics_wall_ms = 0;
            }
        }
        if (s.o.stats_ms && now - last_stats >= s.o.stats_ms) {
            print_stats(&s, now, "stats");
            last_stats = now;
        }
        int ne = epoll_wait(s.ep, evs, 1024, SIM_TICK_MS / 2);
        if (ne < 0 && errno != EINTR) {
            fprintf(stderr, "fleetsim: epoll_wait: %s\n", strerror(errno));
            break;
        }
        for (int e = 0; e < ne; e++)
            node_event(&s, evs[e].data.u32, evs[e].events);
    }
    int64_t now = now_ms();
    print_stats(&s, now, "final");
    shutdown_fleet(&s);
    printf("fleetsim summary: nodes=%" PRIu32 " connected_at_end=%" PRIu32
           " all_connected_s=%.2f connects=%" PRIu64 " drops=%" PRIu64 " desired=%" PRIu64
           " desired_stale=%" PRIu64 " desired_refused=%" PRIu64 " pods_reported=%" PRIu64
           " status_sent=%" PRIu64 " heartbeats=%" PRIu64 " heartbeats_skipped=%" PRIu64
           " metrics=%" PRIu64 " metrics_skipped=%" PRIu64 " metrics_bytes=%" PRIu64
           " metrics_payload_bytes=%" PRIu64 " msgs_in=%" PRIu64 " runtime_s=%.1f\n",
           s.o.nodes, s.connected,
           s.all_connected_ms < 0 ? -1.0 : (s.all_connected_ms - s.t0_ms) / 1000.0, s.st.connects,
           s.st.drops, s.st.desired, s.st.desired_stale, s.st.desired_bad, s.st.pods_reported,
           s.st.status_sent, s.st.heartbeats, s.st.hb_skipped, s.st.metrics_sent,
           s.st.metrics_skipped, s.st.metrics_bytes, s.st.metrics_payload, s.st.msgs_in,
           (now - s.t0_ms) / 1000.0);
    fflush(stdout);
    free(s.nodes);
    free(s.scratch);
    free(s.usage_scratch);
    close(s.ep);
    return 0;
}
