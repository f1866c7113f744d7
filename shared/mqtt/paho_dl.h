/* Paho MQTT C (async) loaded with dlopen on first use, for the agent: a device that runs
 * standalone never maps it; one that talks to a plain broker maps libpaho-mqtt3a, and only one
 * whose broker is ssl:// maps the TLS flavour libpaho-mqtt3as (and with it OpenSSL). mqtt.c
 * compiled with DRV_MQTT_DLOPEN calls Paho through this table; the hub links Paho normally.
 * Private to shared/mqtt/. */
#ifndef DROVER_MQTT_PAHO_DL_H
#define DROVER_MQTT_PAHO_DL_H

#include <stdbool.h>

#include <MQTTAsync.h>

#include "drover/error.h"

typedef struct drv_paho_api {
    int (*createWithOptions)(MQTTAsync *, const char *, const char *, int, void *,
                             MQTTAsync_createOptions *);
    int (*setCallbacks)(MQTTAsync, void *, MQTTAsync_connectionLost *, MQTTAsync_messageArrived *,
                        MQTTAsync_deliveryComplete *);
    int (*connect)(MQTTAsync, const MQTTAsync_connectOptions *);
    int (*subscribe)(MQTTAsync, const char *, int, MQTTAsync_responseOptions *);
    int (*subscribeMany)(MQTTAsync, int, char *const *, int *, MQTTAsync_responseOptions *);
    int (*sendMessage)(MQTTAsync, const char *, const MQTTAsync_message *,
                       MQTTAsync_responseOptions *);
    int (*disconnect)(MQTTAsync, const MQTTAsync_disconnectOptions *);
    void (*destroy)(MQTTAsync *);
    void (*free)(void *);
    void (*freeMessage)(MQTTAsync_message **);
    const char *(*strerror)(int);
} drv_paho_api_t;

extern drv_paho_api_t drv_paho;

/* Loads the library once (later calls return at once): libpaho-mqtt3as with tls, else
 * libpaho-mqtt3a; DRV_ERR_UNSUPPORTED naming what is missing, or when tls is asked for after
 * 3a was loaded (one flavour per process: clients made earlier hold its handles). The library
 * stays loaded for the life of the process. */
DRV_NODISCARD drv_err_t drv_paho_load(bool tls, drv_error_t *err);

#define MQTTAsync_createWithOptions drv_paho.createWithOptions
#define MQTTAsync_setCallbacks drv_paho.setCallbacks
#define MQTTAsync_connect drv_paho.connect
#define MQTTAsync_subscribe drv_paho.subscribe
#define MQTTAsync_subscribeMany drv_paho.subscribeMany
#define MQTTAsync_sendMessage drv_paho.sendMessage
#define MQTTAsync_disconnect drv_paho.disconnect
#define MQTTAsync_destroy drv_paho.destroy
#define MQTTAsync_free drv_paho.free
#define MQTTAsync_freeMessage drv_paho.freeMessage
#define MQTTAsync_strerror drv_paho.strerror

#endif
