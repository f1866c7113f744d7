/* drover-mqtt: the small MQTT client the hub, the agent and the fleet simulator share, over
 * Eclipse Paho MQTT C's asynchronous API. Paho runs its callbacks on its own threads; this
 * wrapper queues what they deliver (messages, connection changes) in a bounded queue and makes
 * an eventfd readable, so that the owner handles everything from its single-threaded event loop
 * with drv_mqtt_poll(). Reconnecting is done here, not by Paho's automaticReconnect: exponential
 * back-off with full jitter (drv_proto_backoff_*), so that a fleet does not reconnect in
 * lockstep after a broker restart; subscriptions are renewed after every reconnect. */
#ifndef DROVER_MQTT_H
#define DROVER_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"

typedef struct drv_mqtt drv_mqtt_t;

typedef struct drv_mqtt_opts {
    const char *server_uri; /* "tcp://127.0.0.1:1883" or "ssl://HOST:PORT"; required */
    const char *client_id;  /* required; unique per broker */
    const char *username;   /* optional */
    const char *password;   /* optional */
    /* Last Will (optional: will_topic NULL = none). */
    const char *will_topic;
    const void *will_payload;
    size_t will_len;
    int will_qos;
    bool will_retain;
    unsigned keepalive_s; /* 0 = 10 */
    bool clean_session;   /* false for the agent: the broker keeps its QoS 1 messages */
    /* Incoming events held for the owner. When full, Paho's receive thread waits for
     * drv_mqtt_poll (back-pressure: nothing is dropped, but a stalled owner stalls reading),
     * for half a keep-alive at most (longer, and the connection would be lost: Paho reads no
     * PINGRESP meanwhile); then up to 4 times these bounds are queued before it waits again. */
    size_t max_queued; /* 0 = 256 */
    /* A QoS 0 message arriving while the queue is full is dropped (drv_mqtt_dropped counts
     * them) instead of holding Paho's thread: for an owner to whom such messages are
     * superseded by the sender's next one (the hub: heartbeats and usage reports). */
    bool drop_qos0_when_full;
    size_t max_queued_bytes; /* their payload bytes; 0 = 16 MiB */
    int max_buffered;        /* outgoing messages Paho keeps while disconnected; 0 = 1000 */
    unsigned backoff_min_ms; /* 0 = 500 */
    unsigned backoff_max_ms; /* 0 = 30000 */
    unsigned stable_ms;      /* a connection up this long resets the back-off; 0 = 10000 */
    uint64_t seed;           /* jitter seed; 0 = random */
    /* TLS (optional; with an ssl:// server_uri): ca_file is the PEM CA the broker's certificate
     * must chain to (and name the host); cert_file/key_file a client certificate and its key.
     * The agent's dlopen build loads Paho with TLS (libpaho-mqtt3as) only for a client that
     * gives any of them or an ssl:// / mqtts:// URI, and without TLS (3a) otherwise; one
     * flavour per process, so a TLS client after a plain one is DRV_ERR_UNSUPPORTED there. */
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
} drv_mqtt_opts_t;

typedef enum {
    DRV_MQTT_CONNECTED,    /* session up; subscriptions are being renewed */
    DRV_MQTT_DISCONNECTED, /* lost, or the first failed attempt of an outage; a reconnect is
                              scheduled (reported once per outage, not per attempt) */
    DRV_MQTT_MESSAGE,
} drv_mqtt_event_kind_t;

/* Everything a callback receives (topic, payload, reason) is valid only during the callback. */
typedef struct drv_mqtt_event {
    drv_mqtt_event_kind_t kind;
    const char *topic;   /* MESSAGE: NUL-terminated */
    const void *payload; /* MESSAGE: len bytes, followed by a NUL not counted in len */
    size_t len;
    int qos;
    bool retained;
    bool session_present; /* CONNECTED: the broker still had our session */
    const char *reason;   /* DISCONNECTED: why, for logs */
} drv_mqtt_event_t;

typedef void (*drv_mqtt_cb_t)(void *userdata, const drv_mqtt_event_t *ev);

/* Creates the client (copies opts) and starts connecting at once; failures to connect are
 * retried with back-off, not reported here. *out is owned by the caller (drv_mqtt_free). */
DRV_API DRV_NODISCARD drv_err_t drv_mqtt_new(const drv_mqtt_opts_t *opts, drv_mqtt_t **out,
                                             drv_error_t *err);

/* The eventfd to watch for readability (level: stays readable while events are queued). */
DRV_API int drv_mqtt_fd(const drv_mqtt_t *c);

/* Delivers the queued events, in arrival order, to cb; returns how many. Call when the fd is
 * readable (calling at other times is harmless). cb may publish and subscribe. */
DRV_API size_t drv_mqtt_poll(drv_mqtt_t *c, drv_mqtt_cb_t cb, void *userdata);
/* drv_mqtt_poll delivering at most max events; the fd stays readable while more wait. */
DRV_API size_t drv_mqtt_poll_max(drv_mqtt_t *c, size_t max, drv_mqtt_cb_t cb, void *userdata);

/* Adds a subscription (kept and renewed after each reconnect; sent now if connected). */
DRV_API DRV_NODISCARD drv_err_t drv_mqtt_subscribe(drv_mqtt_t *c, const char *filter, int qos,
                                                   drv_error_t *err);

/* Copies the message to drover-mqtt's worker thread and returns at once (never blocks on
 * Paho: see mqtt.c). The worker hands it to Paho, which buffers while disconnected; a QoS 1/2
 * message Paho cannot take yet is retried, a QoS 0 one is dropped. At most max_buffered
 * messages wait for the worker; beyond that DRV_ERR_AGAIN. */
DRV_API DRV_NODISCARD drv_err_t drv_mqtt_publish(drv_mqtt_t *c, const char *topic,
                                                 const void *payload, size_t len, int qos,
                                                 bool retain, drv_error_t *err);

DRV_API bool drv_mqtt_connected(const drv_mqtt_t *c);

/* QoS 0 messages dropped so far on a full queue (drop_qos0_when_full). */
DRV_API uint64_t drv_mqtt_dropped(const drv_mqtt_t *c);

/* Delay chosen before the latest reconnect attempt, ms (for tests and metrics). */
DRV_API unsigned drv_mqtt_last_backoff_ms(const drv_mqtt_t *c);

/* Disconnects cleanly (waiting up to timeout_ms for Paho to flush; no Will is sent: publish an
 * explicit offline message first if peers should know) and frees everything. NULL is fine. */
DRV_API void drv_mqtt_free(drv_mqtt_t *c, unsigned timeout_ms);

#endif
