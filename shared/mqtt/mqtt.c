/* drover-mqtt: Paho MQTT C (async) behind a queue and an eventfd, with our own reconnect timing.
 * Threads: Paho's (callbacks), one worker thread of ours (reconnect timer and every call the
 * owner asks of Paho: publish, subscribe), and the owner's loop, which alone sees events
 * (drv_mqtt_poll). Everything shared is under c->mu.
 * Why the owner never calls Paho itself: when the inbound queue is full, on_message waits
 * inside Paho's receive callback for the owner to drain, holding Paho's client mutex; an owner
 * blocked on that mutex (MQTTAsync_sendMessage) would never drain: a deadlock seen with
 * thousands of nodes. The owner only queues; the worker may block on Paho while the owner
 * keeps draining. */
#include "mqtt.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#ifdef DRV_MQTT_DLOPEN
#include "paho_dl.h" /* Paho through a table loaded on first use (the agent) */
#else
#include <MQTTAsync.h>
#endif

#include "drover/fmt.h"
#include "drover/proc.h"
#include "drover/protocol.h"
#include "drover/vec.h"

typedef struct ev_item {
    struct ev_item *next;
    drv_mqtt_event_kind_t kind;
    int qos;
    bool retained;
    bool session_present;
    size_t len;
    char *topic;   /* owned; NULL for connection events */
    char *payload; /* owned, NUL-terminated */
    char reason[160];
} ev_item_t;

typedef struct sub {
    char *filter;
    int qos;
} sub_t;

/* How far past max_queued (and max_queued_bytes) a message may be queued once Paho's receive
 * thread has been held for half a keep-alive (on_message). */
#define MQTT_QUEUE_OVERDRAFT 4u

/* Topic filters one client keeps (and renews at every connect); Drover's use a handful. */
#define MQTT_SUBS_MAX 256

/* A publish or subscribe the owner asked for, done by the worker. */
typedef struct out_item {
    struct out_item *next;
    bool subscribe;
    char *topic; /* or the filter */
    void *payload;
    size_t len;
    int qos;
    bool retain;
} out_item_t;

typedef enum { ST_WAITING, ST_CONNECTING, ST_CONNECTED } state_t;

struct drv_mqtt {
    MQTTAsync h;
    char *uri, *client_id, *username, *password, *will_topic;
    char *ca_file, *cert_file, *key_file; /* TLS, or NULL */
    void *will_payload;
    size_t will_len;
    int will_qos;
    bool will_retain;
    unsigned keepalive_s;
    bool clean_session;
    bool drop_qos0;
    uint64_t dropped; /* QoS 0 messages dropped on a full queue */
    size_t max_queued, max_queued_bytes;
    unsigned stable_ms;
    int efd;

    pthread_mutex_t mu;
    pthread_cond_t timer_cv; /* reconnect thread: state or deadline changed, or stop */
    pthread_cond_t space_cv; /* queue has room, or stop */
    pthread_cond_t done_cv;  /* disconnect finished, or a callback left */
    ev_item_t *head, *tail;
    size_t queued, queued_bytes;
    drv_vec_t subs; /* sub_t, at most MQTT_SUBS_MAX; filters only added, freed at the end */
    state_t state;
    uint64_t deadline_ms; /* ST_WAITING: when to try, CLOCK_MONOTONIC */
    uint64_t connected_at_ms;
    drv_proto_backoff_t bo;
    unsigned last_backoff_ms;
    unsigned in_cb; /* Paho callbacks currently running */
    bool stop, disconnected;
    bool down_reported; /* a DISCONNECTED event was queued since the last CONNECTED */
    out_item_t *out_head, *out_tail;
    size_t nout, max_out;
    pthread_t thr;
    bool thr_started;
};

static void abs_deadline(struct timespec *ts, uint64_t ms)
{
    ts->tv_sec = (time_t)(ms / 1000u);
    ts->tv_nsec = (long)(ms % 1000u) * 1000000L;
}

static void cb_enter(drv_mqtt_t *c)
{
    c->in_cb++;
}

static void cb_leave(drv_mqtt_t *c)
{
    if (--c->in_cb == 0)
        pthread_cond_broadcast(&c->done_cv);
}

static void push_locked(drv_mqtt_t *c, ev_item_t *it)
{
    it->next = NULL;
    if (c->tail)
        c->tail->next = it;
    else
        c->head = it;
    c->tail = it;
    c->queued++;
    c->queued_bytes += it->len;
    uint64_t one = 1;
    ssize_t w = write(c->efd, &one, sizeof one);
    (void)w; /* EAGAIN only when the counter is huge: the fd is readable anyway */
}

/* Connection events are tiny and rare; they may exceed the bound so that none is lost. */
static void push_conn_locked(drv_mqtt_t *c, drv_mqtt_event_kind_t kind, bool session_present,
                             const char *reason)
{
    ev_item_t *it = calloc(1, sizeof *it);
    if (it == NULL)
        return;
    it->kind = kind;
    it->session_present = session_present;
    drv_fmt_cut(it->reason, sizeof it->reason, "%s", reason ? reason : "");
    push_locked(c, it);
}

static void schedule_retry_locked(drv_mqtt_t *c)
{
    unsigned d = drv_proto_backoff_next(&c->bo);
    c->last_backoff_ms = d;
    c->deadline_ms = (uint64_t)drv_now_ms() + d;
    c->state = ST_WAITING;
    pthread_cond_signal(&c->timer_cv);
}

/* ---- Paho callbacks (Paho's threads) ---- */

static void on_connect_ok(void *ctx, MQTTAsync_successData *resp)
{
    drv_mqtt_t *c = ctx;
    pthread_mutex_lock(&c->mu);
    cb_enter(c);
    c->state = ST_CONNECTED;
    c->connected_at_ms = (uint64_t)drv_now_ms();
    c->down_reported = false;
    push_conn_locked(c, DRV_MQTT_CONNECTED, resp ? resp->alt.connect.sessionPresent != 0 : false,
                     NULL);
    pthread_cond_signal(&c->timer_cv); /* the worker may be holding messages for this */
    /* Renew every subscription, outside our lock (Paho takes its own). */
    size_t n = c->stop ? 0 : c->subs.len;
    char **filters = n ? calloc(n, sizeof *filters) : NULL;
    int *qos = n ? calloc(n, sizeof *qos) : NULL;
    const sub_t *subs = c->subs.data;
    for (size_t i = 0; filters && qos && i < n; i++) {
        filters[i] = subs[i].filter;
        qos[i] = subs[i].qos;
    }
    pthread_mutex_unlock(&c->mu);
    /* Filters are only ever added, never freed before drv_mqtt_free, which waits for us. */
    if (filters && qos)
        (void)MQTTAsync_subscribeMany(c->h, (int)n, filters, qos, NULL);
    free(filters);
    free(qos);
    pthread_mutex_lock(&c->mu);
    cb_leave(c);
    pthread_mutex_unlock(&c->mu);
}

static void on_connect_fail(void *ctx, MQTTAsync_failureData *resp)
{
    drv_mqtt_t *c = ctx;
    pthread_mutex_lock(&c->mu);
    cb_enter(c);
    if (!c->stop) {
        schedule_retry_locked(c);
        /* Once per outage, so that the owner can say "broker unreachable" without a line
         * per attempt. */
        if (!c->down_reported) {
            char why[160];
            drv_fmt_cut(why, sizeof why, "connect failed: %s",
                        resp && resp->message ? resp->message
                                              : MQTTAsync_strerror(resp ? resp->code : -1));
            push_conn_locked(c, DRV_MQTT_DISCONNECTED, false, why);
            c->down_reported = true;
        }
    }
    cb_leave(c);
    pthread_mutex_unlock(&c->mu);
}

static void on_connection_lost(void *ctx, char *cause)
{
    drv_mqtt_t *c = ctx;
    pthread_mutex_lock(&c->mu);
    cb_enter(c);
    if (!c->stop) {
        if (c->state == ST_CONNECTED && (uint64_t)drv_now_ms() - c->connected_at_ms >= c->stable_ms)
            drv_proto_backoff_reset(&c->bo);
        schedule_retry_locked(c);
        push_conn_locked(c, DRV_MQTT_DISCONNECTED, false, cause ? cause : "connection lost");
        c->down_reported = true;
    }
    cb_leave(c);
    pthread_mutex_unlock(&c->mu);
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg)
{
    drv_mqtt_t *c = ctx;
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    size_t plen = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    pthread_mutex_lock(&c->mu);
    cb_enter(c);
    /* Full queue: hold Paho's receive thread until the owner drains (back-pressure down to TCP
     * and the broker). Returning 0 instead ("keep it, offer it again") would not do: Paho
     * offers a kept message again only when another packet arrives for this client. But not
     * for as long as a keep-alive: while held, Paho reads nothing (the broker's PINGRESP
     * either) and sends nothing, and at the next keep-alive check it closes the connection
     * itself ("PINGRESP not received"), or the broker does: how a busy hub lost its broker.
     * After half a keep-alive the message is taken beyond the bound, up to
     * MQTT_QUEUE_OVERDRAFT times it; only there does the thread wait for the owner again. */
    uint64_t until = (uint64_t)drv_now_ms() + c->keepalive_s * 500u;
    /* At most once: a QoS 0 message is the sender's latest word (a heartbeat), and the next
     * replaces it; holding Paho for it would cost the connection. */
    if (c->drop_qos0 && msg->qos == 0 && c->queued > 0 &&
        (c->queued >= c->max_queued || c->queued_bytes + plen > c->max_queued_bytes)) {
        c->dropped++;
        cb_leave(c);
        pthread_mutex_unlock(&c->mu);
        MQTTAsync_freeMessage(&msg);
        MQTTAsync_free(topic);
        return 1;
    }
    for (;;) {
        bool full = c->queued > 0 &&
                    (c->queued >= c->max_queued || c->queued_bytes + plen > c->max_queued_bytes);
        bool hard =
            c->queued > 0 && (c->queued >= MQTT_QUEUE_OVERDRAFT * c->max_queued ||
                              c->queued_bytes + plen > MQTT_QUEUE_OVERDRAFT * c->max_queued_bytes);
        uint64_t now = (uint64_t)drv_now_ms();
        if (c->stop || !full || (!hard && now >= until))
            break;
        struct timespec ts;
        abs_deadline(&ts, hard || now >= until ? now + 1000u : until);
        pthread_cond_timedwait(&c->space_cv, &c->mu, &ts);
    }
    if (!c->stop) {
        ev_item_t *it = calloc(1, sizeof *it);
        char *t = malloc(tlen + 1);
        char *p = malloc(plen + 1);
        if (it && t && p) {
            memcpy(t, topic, tlen);
            t[tlen] = '\0';
            if (plen)
                memcpy(p, msg->payload, plen);
            p[plen] = '\0';
            it->kind = DRV_MQTT_MESSAGE;
            it->topic = t;
            it->payload = p;
            it->len = plen;
            it->qos = msg->qos;
            it->retained = msg->retained != 0;
            push_locked(c, it);
        } else {
            free(it);
            free(t);
            free(p);
            cb_leave(c);
            pthread_mutex_unlock(&c->mu);
            return 0; /* out of memory: let Paho offer it again */
        }
    }
    cb_leave(c);
    pthread_mutex_unlock(&c->mu);
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

static void on_disconnect_done(void *ctx, MQTTAsync_successData *resp)
{
    drv_mqtt_t *c = ctx;
    (void)resp;
    pthread_mutex_lock(&c->mu);
    c->disconnected = true;
    pthread_cond_broadcast(&c->done_cv);
    pthread_mutex_unlock(&c->mu);
}

static void on_disconnect_fail(void *ctx, MQTTAsync_failureData *resp)
{
    (void)resp;
    on_disconnect_done(ctx, NULL);
}

/* ---- reconnect timer thread ---- */

static int start_connect(drv_mqtt_t *c)
{
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_willOptions wo = MQTTAsync_willOptions_initializer;
    co.keepAliveInterval = (int)c->keepalive_s;
    co.cleansession = c->clean_session;
    co.connectTimeout = 10;
    co.automaticReconnect = 0;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.username = c->username;
    co.password = c->password;
    MQTTAsync_SSLOptions so = MQTTAsync_SSLOptions_initializer;
    if (c->ca_file || c->cert_file) {
        so.trustStore = c->ca_file;
        so.keyStore = c->cert_file;
        so.privateKey = c->key_file;
        so.enableServerCertAuth = c->ca_file != NULL;
        so.verify = c->ca_file != NULL; /* the certificate must name the host */
        co.ssl = &so;
    }
    co.onSuccess = on_connect_ok;
    co.onFailure = on_connect_fail;
    co.context = c;
    if (c->will_topic) {
        wo.topicName = c->will_topic;
        wo.message = NULL;
        wo.payload.data = c->will_payload;
        wo.payload.len = (int)c->will_len;
        wo.qos = c->will_qos;
        wo.retained = c->will_retain;
        co.will = &wo;
    }
    return MQTTAsync_connect(c->h, &co);
}

static void out_free(out_item_t *o)
{
    if (o) {
        free(o->topic);
        free(o->payload);
        free(o);
    }
}

/* Sends one queued item (c->mu not held). false: Paho cannot take it now (buffer full while
 * disconnected): keep it and retry later. */
static bool out_send(drv_mqtt_t *c, out_item_t *o)
{
    if (o->subscribe) {
        (void)MQTTAsync_subscribe(c->h, o->topic, o->qos, NULL); /* renewed at each connect */
        return true;
    }
    MQTTAsync_message m = MQTTAsync_message_initializer;
    m.payload = o->payload;
    m.payloadlen = (int)o->len;
    m.qos = o->qos;
    m.retained = o->retain;
    int rc = MQTTAsync_sendMessage(c->h, o->topic, &m, NULL);
    if (rc == MQTTASYNC_SUCCESS)
        return true;
    /* QoS 0 is best effort: a heartbeat that cannot go now is worth nothing later. */
    if (o->qos > 0 && (rc == MQTTASYNC_MAX_BUFFERED_MESSAGES || rc == MQTTASYNC_DISCONNECTED ||
                       rc == MQTTASYNC_MAX_MESSAGES_INFLIGHT))
        return false;
    return true;
}

static void *timer_main(void *arg)
{
    drv_mqtt_t *c = arg;
    pthread_mutex_lock(&c->mu);
    uint64_t out_retry_ms = 0; /* while Paho refuses the head item: when to try again */
    for (;;) {
        /* Queued publishes first (also at stop: the last words, such as "offline"). */
        if (c->out_head && (c->stop || (uint64_t)drv_now_ms() >= out_retry_ms)) {
            out_item_t *o = c->out_head;
            pthread_mutex_unlock(&c->mu);
            bool sent = out_send(c, o);
            pthread_mutex_lock(&c->mu);
            if (sent || c->stop) {
                c->out_head = o->next;
                if (!c->out_head)
                    c->out_tail = NULL;
                c->nout--;
                out_free(o);
                out_retry_ms = 0;
            } else {
                out_retry_ms = (uint64_t)drv_now_ms() + 200;
            }
            continue;
        }
        if (c->stop)
            break;
        uint64_t now = (uint64_t)drv_now_ms();
        uint64_t wake = c->state == ST_WAITING ? c->deadline_ms : UINT64_MAX;
        if (c->out_head && out_retry_ms < wake)
            wake = out_retry_ms;
        if (c->state == ST_WAITING && now >= c->deadline_ms) {
            c->state = ST_CONNECTING;
            pthread_mutex_unlock(&c->mu);
            int rc = start_connect(c);
            pthread_mutex_lock(&c->mu);
            if (rc != MQTTASYNC_SUCCESS && !c->stop && c->state == ST_CONNECTING)
                schedule_retry_locked(c);
            continue;
        }
        if (wake == UINT64_MAX) {
            pthread_cond_wait(&c->timer_cv, &c->mu);
        } else if (now < wake) {
            struct timespec ts;
            abs_deadline(&ts, wake);
            pthread_cond_timedwait(&c->timer_cv, &c->mu, &ts);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Hands an item to the worker; DRV_ERR_AGAIN when its queue is full. */
static drv_err_t out_push(drv_mqtt_t *c, out_item_t *o, drv_error_t *err)
{
    pthread_mutex_lock(&c->mu);
    if (c->nout >= c->max_out && !o->subscribe) {
        pthread_mutex_unlock(&c->mu);
        drv_error_set(err, DRV_ERR_AGAIN, 0, "mqtt: publish %s: %zu messages waiting already",
                      o->topic, c->max_out);
        out_free(o);
        return DRV_ERR_AGAIN;
    }
    o->next = NULL;
    if (c->out_tail)
        c->out_tail->next = o;
    else
        c->out_head = o;
    c->out_tail = o;
    c->nout++;
    pthread_cond_signal(&c->timer_cv);
    pthread_mutex_unlock(&c->mu);
    return DRV_OK;
}

/* ---- public API ---- */

static char *dup_opt(const char *s, bool *ok)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *ok = false;
    return d;
}

static void destroy(drv_mqtt_t *c)
{
    for (ev_item_t *it = c->head, *next; it; it = next) {
        next = it->next;
        free(it->topic);
        free(it->payload);
        free(it);
    }
    for (size_t i = 0; i < c->subs.len; i++)
        free(((sub_t *)drv_vec_at(&c->subs, i))->filter);
    drv_vec_free(&c->subs);
    for (out_item_t *o = c->out_head, *next; o; o = next) {
        next = o->next;
        out_free(o);
    }
    free(c->uri);
    free(c->client_id);
    free(c->username);
    free(c->password);
    free(c->will_topic);
    free(c->ca_file);
    free(c->cert_file);
    free(c->key_file);
    free(c->will_payload);
    if (c->efd >= 0)
        close(c->efd);
    pthread_cond_destroy(&c->timer_cv);
    pthread_cond_destroy(&c->space_cv);
    pthread_cond_destroy(&c->done_cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

drv_err_t drv_mqtt_new(const drv_mqtt_opts_t *o, drv_mqtt_t **out, drv_error_t *err)
{
    if (o == NULL || o->server_uri == NULL || o->client_id == NULL || o->client_id[0] == '\0')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "mqtt: server URI and client id: required");
    if (o->will_topic && (o->will_qos < 0 || o->will_qos > 2 || o->will_len > DRV_PROTO_MSG_MAX))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "mqtt: will: bad qos or payload size");
    if ((o->cert_file == NULL) != (o->key_file == NULL))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "mqtt: cert_file and key_file: give both or neither");
#ifdef DRV_MQTT_DLOPEN
    drv_err_t lr = drv_paho_load(o->ca_file || o->cert_file || o->key_file ||
                                     !strncmp(o->server_uri, "ssl://", 6) ||
                                     !strncmp(o->server_uri, "mqtts://", 8),
                                 err);
    if (lr != DRV_OK)
        return lr;
#endif
    drv_mqtt_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "mqtt");
    c->efd = -1;
    drv_vec_init(&c->subs, sizeof(sub_t), MQTT_SUBS_MAX);
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->timer_cv, &ca);
    pthread_cond_init(&c->space_cv, &ca);
    pthread_cond_init(&c->done_cv, &ca);
    pthread_condattr_destroy(&ca);

    bool ok = true;
    c->uri = dup_opt(o->server_uri, &ok);
    c->client_id = dup_opt(o->client_id, &ok);
    c->username = dup_opt(o->username, &ok);
    c->password = dup_opt(o->password, &ok);
    c->will_topic = dup_opt(o->will_topic, &ok);
    c->ca_file = dup_opt(o->ca_file, &ok);
    c->cert_file = dup_opt(o->cert_file, &ok);
    c->key_file = dup_opt(o->key_file, &ok);
    if (o->will_topic) {
        c->will_payload = malloc(o->will_len + 1);
        if (c->will_payload == NULL)
            ok = false;
        else if (o->will_len)
            memcpy(c->will_payload, o->will_payload, o->will_len);
        c->will_len = o->will_len;
        c->will_qos = o->will_qos;
        c->will_retain = o->will_retain;
    }
    if (!ok) {
        destroy(c);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "mqtt");
    }
    c->keepalive_s = o->keepalive_s ? o->keepalive_s : 10;
    c->clean_session = o->clean_session;
    c->drop_qos0 = o->drop_qos0_when_full;
    c->max_queued = o->max_queued ? o->max_queued : 256;
    c->max_queued_bytes = o->max_queued_bytes ? o->max_queued_bytes : (16u << 20);
    c->max_out = o->max_buffered > 0 ? (size_t)o->max_buffered : 1000;
    c->stable_ms = o->stable_ms ? o->stable_ms : 10000;
    drv_proto_backoff_init(&c->bo, o->backoff_min_ms ? o->backoff_min_ms : 500,
                           o->backoff_max_ms ? o->backoff_max_ms : 30000, o->seed);

    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->efd < 0) {
        int e = errno;
        destroy(c);
        return drv_error_set(err, DRV_ERR_IO, e, "mqtt: eventfd");
    }
    MQTTAsync_createOptions cr = MQTTAsync_createOptions_initializer;
    cr.sendWhileDisconnected = 1;
    cr.maxBufferedMessages = o->max_buffered > 0 ? o->max_buffered : 1000;
    cr.allowDisconnectedSendAtAnyTime = 1;
    cr.deleteOldestMessages = 0;
    cr.persistQoS0 = 0;
    int rc = MQTTAsync_createWithOptions(&c->h, c->uri, c->client_id, MQTTCLIENT_PERSISTENCE_NONE,
                                         NULL, &cr);
    if (rc != MQTTASYNC_SUCCESS) {
        destroy(c);
        return drv_error_set(err, DRV_ERR_INVALID, 0, "mqtt: server URI \"%s\": %s", o->server_uri,
                             MQTTAsync_strerror(rc));
    }
    rc = MQTTAsync_setCallbacks(c->h, c, on_connection_lost, on_message, NULL);
    if (rc == MQTTASYNC_SUCCESS) {
        c->state = ST_WAITING;
        c->deadline_ms = 0; /* first attempt at once */
        /* The worker only waits and calls into Paho: a small stack keeps a simulated fleet of
         * thousands of clients in one process affordable. */
        pthread_attr_t ta;
        pthread_attr_init(&ta);
        pthread_attr_setstacksize(&ta, 128u << 10);
        if (pthread_create(&c->thr, &ta, timer_main, c) == 0)
            c->thr_started = true;
        else
            rc = MQTTASYNC_FAILURE;
        pthread_attr_destroy(&ta);
    }
    if (rc != MQTTASYNC_SUCCESS) {
        MQTTAsync_destroy(&c->h);
        destroy(c);
        return drv_error_set(err, DRV_ERR_IO, 0, "mqtt: starting the client failed");
    }
    *out = c;
    return DRV_OK;
}

int drv_mqtt_fd(const drv_mqtt_t *c)
{
    return c->efd;
}

size_t drv_mqtt_poll(drv_mqtt_t *c, drv_mqtt_cb_t cb, void *userdata)
{
    return drv_mqtt_poll_max(c, SIZE_MAX, cb, userdata);
}

size_t drv_mqtt_poll_max(drv_mqtt_t *c, size_t max, drv_mqtt_cb_t cb, void *userdata)
{
    uint64_t cnt;
    ssize_t r = read(c->efd, &cnt, sizeof cnt);
    (void)r; /* EAGAIN: nothing signalled, the queue may still hold leftovers */
    pthread_mutex_lock(&c->mu);
    size_t budget = c->queued; /* what is there now: a flood cannot starve the owner's loop */
    pthread_mutex_unlock(&c->mu);
    if (budget > max)
        budget = max;
    size_t n = 0;
    for (; n < budget; n++) {
        pthread_mutex_lock(&c->mu);
        ev_item_t *it = c->head;
        if (it) {
            c->head = it->next;
            if (c->head == NULL)
                c->tail = NULL;
        }
        pthread_mutex_unlock(&c->mu);
        if (it == NULL)
            break;
        drv_mqtt_event_t ev = {
            .kind = it->kind,
            .topic = it->topic,
            .payload = it->payload,
            .len = it->len,
            .qos = it->qos,
            .retained = it->retained,
            .session_present = it->session_present,
            .reason = it->reason,
        };
        if (cb)
            cb(userdata, &ev);
        pthread_mutex_lock(&c->mu);
        c->queued--;
        c->queued_bytes -= it->len;
        pthread_cond_broadcast(&c->space_cv);
        pthread_mutex_unlock(&c->mu);
        free(it->topic);
        free(it->payload);
        free(it);
    }
    pthread_mutex_lock(&c->mu);
    if (c->head != NULL) {
        uint64_t one = 1;
        ssize_t w = write(c->efd, &one, sizeof one);
        (void)w;
    }
    pthread_mutex_unlock(&c->mu);
    return n;
}

drv_err_t drv_mqtt_subscribe(drv_mqtt_t *c, const char *filter, int qos, drv_error_t *err)
{
    if (filter == NULL || filter[0] == '\0' || qos < 0 || qos > 2)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "mqtt: subscribe: bad filter or qos");
    pthread_mutex_lock(&c->mu);
    size_t i = 0;
    while (i < c->subs.len && strcmp(((sub_t *)drv_vec_at(&c->subs, i))->filter, filter) != 0)
        i++;
    if (i == c->subs.len) {
        sub_t ns = {strdup(filter), qos};
        drv_err_t r = ns.filter ? drv_vec_push(&c->subs, &ns) : DRV_ERR_NOMEM;
        if (r != DRV_OK) {
            free(ns.filter);
            pthread_mutex_unlock(&c->mu);
            if (r == DRV_ERR_TOOBIG)
                return drv_error_set(err, r, 0, "mqtt: subscribe %s: more than %d subscriptions",
                                     filter, MQTT_SUBS_MAX);
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "mqtt: subscribe");
        }
    }
    ((sub_t *)drv_vec_at(&c->subs, i))->qos = qos;
    bool up = c->state == ST_CONNECTED;
    pthread_mutex_unlock(&c->mu);
    /* A failure now is repaired by the renewal at the next connect. */
    if (!up)
        return DRV_OK;
    out_item_t *o = calloc(1, sizeof *o);
    if (o == NULL || (o->topic = strdup(filter)) == NULL) {
        free(o);
        return DRV_OK; /* renewed at the next connect */
    }
    o->subscribe = true;
    o->qos = qos;
    return out_push(c, o, err);
}

drv_err_t drv_mqtt_publish(drv_mqtt_t *c, const char *topic, const void *payload, size_t len,
                           int qos, bool retain, drv_error_t *err)
{
    if (topic == NULL || topic[0] == '\0' || qos < 0 || qos > 2 || len > (256u << 20))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "mqtt: publish: bad topic, qos or size");
    out_item_t *o = calloc(1, sizeof *o);
    if (o == NULL || (o->topic = strdup(topic)) == NULL || (o->payload = malloc(len + 1)) == NULL) {
        out_free(o);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "mqtt: publish %s", topic);
    }
    if (len)
        memcpy(o->payload, payload, len);
    o->len = len;
    o->qos = qos;
    o->retain = retain;
    return out_push(c, o, err);
}

bool drv_mqtt_connected(const drv_mqtt_t *c)
{
    drv_mqtt_t *m = (drv_mqtt_t *)c;
    pthread_mutex_lock(&m->mu);
    bool up = m->state == ST_CONNECTED;
    pthread_mutex_unlock(&m->mu);
    return up;
}

uint64_t drv_mqtt_dropped(const drv_mqtt_t *c)
{
    drv_mqtt_t *m = (drv_mqtt_t *)c;
    pthread_mutex_lock(&m->mu);
    uint64_t d = m->dropped;
    pthread_mutex_unlock(&m->mu);
    return d;
}

unsigned drv_mqtt_last_backoff_ms(const drv_mqtt_t *c)
{
    drv_mqtt_t *m = (drv_mqtt_t *)c;
    pthread_mutex_lock(&m->mu);
    unsigned d = m->last_backoff_ms;
    pthread_mutex_unlock(&m->mu);
    return d;
}

void drv_mqtt_free(drv_mqtt_t *c, unsigned timeout_ms)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    bool up = c->state == ST_CONNECTED;
    pthread_cond_broadcast(&c->timer_cv);
    pthread_cond_broadcast(&c->space_cv);
    pthread_mutex_unlock(&c->mu);
    if (c->thr_started)
        pthread_join(c->thr, NULL);
    if (up) {
        MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
        d.timeout = (int)timeout_ms;
        d.onSuccess = on_disconnect_done;
        d.onFailure = on_disconnect_fail;
        d.context = c;
        if (MQTTAsync_disconnect(c->h, &d) == MQTTASYNC_SUCCESS) {
            pthread_mutex_lock(&c->mu);
            struct timespec ts;
            abs_deadline(&ts, (uint64_t)drv_now_ms() + timeout_ms + 200);
            while (!c->disconnected)
                if (pthread_cond_timedwait(&c->done_cv, &c->mu, &ts) == ETIMEDOUT)
                    break;
            pthread_mutex_unlock(&c->mu);
        }
    }
    MQTTAsync_destroy(&c->h);
    /* A callback that was already running when Paho let go of the handle still holds c. */
    pthread_mutex_lock(&c->mu);
    while (c->in_cb > 0)
        pthread_cond_wait(&c->done_cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    destroy(c);
}
