/* Paho MQTT C (async, no TLS) loaded with dlopen on first use, for the agent: a device that
 * runs standalone never maps it, and one that talks to a hub maps libpaho-mqtt3a (not the TLS
 * flavour, which drags in OpenSSL). mqtt.c compiled with DRV_MQTT_DLOPEN calls Paho through
 * this table; the hub links Paho normally. Private to shared/mqtt/. */
#ifndef DROVER_MQTT_PAHO_DL_H
#define DROVER_MQTT_PAHO_DL_H

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

/* Loads the library once (later calls return at once); DRV_ERR_UNSUPPORTED naming what is
 * missing. The library stays loaded for the life of the process. */
drv_err_t drv_paho_load(drv_error_t *err);

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
