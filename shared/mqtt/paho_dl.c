/* Paho loaded on first use (see paho_dl.h); empty unless built with DRV_MQTT_DLOPEN. */
#ifdef DRV_MQTT_DLOPEN
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "paho_dl.h"

/* OpenSSL's initialisation options (openssl/crypto.h, openssl/ssl.h; stable ABI values): the
 * agent calls OpenSSL only through Paho, so it neither links nor includes it. */
#define OSSL_INIT_NO_LOAD_CRYPTO_STRINGS 0x00000001UL
#define OSSL_INIT_NO_LOAD_SSL_STRINGS 0x00100000UL

#define PAHO_SONAME "libpaho-mqtt3a.so.1"
#define PAHO_TLS_SONAME "libpaho-mqtt3as.so.1"

drv_paho_api_t drv_paho;
static bool loaded_tls; /* which of the two drv_paho points into; under load_mu */
static pthread_mutex_t load_mu = PTHREAD_MUTEX_INITIALIZER;

drv_err_t drv_paho_load(bool tls, drv_error_t *err)
{
    pthread_mutex_lock(&load_mu);
    if (drv_paho.strerror) {
        /* 3as speaks plain MQTT too; 3a cannot be swapped for it under live clients. */
        drv_err_t r = !tls || loaded_tls
                          ? DRV_OK
                          : drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                                          "mqtt: TLS asked for after Paho without TLS (" PAHO_SONAME
                                          ") was loaded in this process");
        pthread_mutex_unlock(&load_mu);
        return r;
    }
    const char *soname = tls ? PAHO_TLS_SONAME : PAHO_SONAME;
    drv_err_t r = DRV_OK;
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        r = drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                          "mqtt: cannot load Paho MQTT C (%s, Debian package libpaho-mqtt1.3): %s",
                          soname, dlerror());
        pthread_mutex_unlock(&load_mu);
        return r;
    }
    if (tls) {
        /* Before Paho's first client initialises OpenSSL: no error strings. Loading them puts
         * some 3,000 entries in a hash table on the heap that a device keeps for its whole
         * life (issue 19: idle private memory over TLS); OpenSSL's "NO_LOAD" options are
         * sticky, so Paho's own request to load them is then ignored. The cost: a TLS error
         * in the agent's log carries OpenSSL's code without its text ("error:0A000086::..."),
         * which `openssl errstr 0A000086` spells out. The configuration (system policy,
         * /etc/ssl/openssl.cnf) is still loaded. */
        int (*init_ssl)(unsigned long, const void *);
        *(void **)&init_ssl = dlsym(h, "OPENSSL_init_ssl");
        if (init_ssl)
            (void)init_ssl(OSSL_INIT_NO_LOAD_SSL_STRINGS | OSSL_INIT_NO_LOAD_CRYPTO_STRINGS, NULL);
    }
    static const struct {
        const char *name;
        size_t offset;
    } syms[] = {
#define SYM(field) {"MQTTAsync_" #field, offsetof(drv_paho_api_t, field)}
        SYM(createWithOptions), SYM(setCallbacks), SYM(connect), SYM(subscribe), SYM(subscribeMany),
        SYM(sendMessage),       SYM(disconnect),   SYM(destroy), SYM(free),      SYM(freeMessage),
        SYM(strerror),
#undef SYM
    };
    drv_paho_api_t api;
    for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
        void *f = dlsym(h, syms[i].name);
        if (!f) {
            r = drv_error_set(err, DRV_ERR_UNSUPPORTED, 0, "mqtt: %s: %s", soname, dlerror());
            dlclose(h);
            pthread_mutex_unlock(&load_mu);
            return r;
        }
        *(void **)((char *)&api + syms[i].offset) = f;
    }
    drv_paho = api;
    loaded_tls = tls;
    pthread_mutex_unlock(&load_mu);
    return DRV_OK;
}
#endif
