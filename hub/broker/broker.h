/* The hub's own MQTT broker: a Mosquitto child process with a generated config in the hub's
 * data directory, started, watched and restarted with back-off, so that one command gives a
 * working hub. A hub given an external broker (--broker URL) does not use this module. */
#ifndef DROVER_HUB_BROKER_H
#define DROVER_HUB_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "drover/error.h"

#define DRV_BROKER_DEFAULT_ADDR "127.0.0.1"
#define DRV_BROKER_DEFAULT_PORT 1883
#define DRV_BROKER_DEFAULT_MOSQUITTO "/usr/sbin/mosquitto"
/* Largest MQTT packet the broker accepts: 4 MiB of payload plus room for topic and headers. */
#define DRV_BROKER_MAX_PACKET (4u * 1024 * 1024 + 64 * 1024)
/* Start-up wait for the port to accept connections. */
#define DRV_BROKER_START_TIMEOUT_MS 5000
/* Restart back-off: 1 s doubling to 30 s; reset after the broker stayed up this long. */
#define DRV_BROKER_BACKOFF_MIN_MS 1000
#define DRV_BROKER_BACKOFF_MAX_MS 30000
#define DRV_BROKER_STABLE_MS 60000
/* mosquitto.log is rotated to mosquitto.log.1 past this size. */
#define DRV_BROKER_LOG_MAX (1024 * 1024)

/* The CN of the hub's own client certificate, its username at a TLS broker. Enrollment must
 * refuse it as a node name. */
#define DRV_BROKER_HUB_USER "drover-hub"

typedef struct drv_broker drv_broker_t;

/* Whether node may connect now with the public key spki_b64 (its certificate's
 * SubjectPublicKeyInfo DER in base64): enrolled, not revoked, not expired, that very key.
 * false with a short reason in why. addr: the IP address the device connects from, as the
 * broker sees it (NULL: a plugin too old to say). Called from the hub's loop. */
typedef bool (*drv_broker_identity_fn)(void *ctx, const char *node, const char *spki_b64,
                                       const char *addr, char *why, size_t whysz);

typedef struct drv_broker_opts {
    const char *data_dir;  /* required; the broker's files go to <data_dir>/broker/ */
    const char *listen;    /* IPv4/IPv6 address to listen on; NULL: DRV_BROKER_DEFAULT_ADDR */
    uint16_t port;         /* 0 picks a free port (kept across restarts); the hub passes
                              DRV_BROKER_DEFAULT_PORT */
    const char *mosquitto; /* path of the broker binary; NULL: DRV_BROKER_DEFAULT_MOSQUITTO */
    const char *extra;     /* extra mosquitto.conf lines appended verbatim; may be NULL */
    /* TLS (--broker-tls): the three PEM texts, or none (plain tcp, anonymous). With them the
     * only listener is TLS, clients must present a certificate issued by tls_ca_pem, and the
     * drover-auth plugin makes its CN their username, binds client ids to it, lets
     * DRV_BROKER_HUB_USER read and write drover/v1/# and each enrolled node only its own
     * node's topics, and asks identity (below) at each device CONNECT. The broker's server
     * certificate (CN DRV_BROKER_HUB_USER, key tls_key_pem) is issued by the CA at every start with
     * the SANs localhost, 127.0.0.1, ::1, the listen address unless it is a wildcard, and tls_sans.
     */
    const char *tls_ca_pem;
    const char *tls_ca_key_pem;  /* secret */
    const char *tls_key_pem;     /* secret */
    const char *const *tls_sans; /* DNS names or IP addresses; may be NULL */
    size_t n_tls_sans;
    /* With TLS, required: the hub's answer to the plugin's question at each device CONNECT
     * (drv_broker_identity_fn below), served on <data_dir>/broker/auth.sock. */
    drv_broker_identity_fn identity;
    void *identity_ctx;
    /* The drover-auth plugin (DRV_BROKER_PLUGIN_NAME); NULL: beside the binary
     * (../lib/drover/) or the build tree's. */
    const char *plugin;
} drv_broker_opts_t;

#define DRV_BROKER_PLUGIN_NAME "drover-auth.so"

/* Writes <data_dir>/broker/mosquitto.conf (listener, persistence in <data_dir>/broker/,
 * anonymous access without TLS; with TLS also ca.crt, server.crt, server.key 0600 and acl in
 * that directory), starts Mosquitto as a child process (fork/exec, no shell) and waits up to
 * DRV_BROKER_START_TIMEOUT_MS until the port accepts connections. Errors name the cause: the port
 * in use, a missing binary, or the broker's last log lines. Running as root, the broker directory
 * is handed to user "mosquitto" (Mosquitto drops to it). On success *out is owned by the caller
 * (drv_broker_free). */
DRV_NODISCARD drv_err_t drv_broker_start(const drv_broker_opts_t *opts, drv_broker_t **out,
                                         drv_error_t *err);

/* The hub's own client certificate for a TLS broker: <pki_dir>/hub-client.key and
 * hub-client.crt (0600, CN DRV_BROKER_HUB_USER, client usage, issued by the CA given). An
 * existing pair is kept while the key matches, the CA verifies it and it is more than 30 days
 * from expiry; otherwise a new one is issued (a new key only when the key is unusable). Their
 * paths go to cert_path and key_path (pathsz bytes each). */
DRV_NODISCARD drv_err_t drv_broker_hub_client(const char *pki_dir, const char *ca_key_pem,
                                              const char *ca_cert_pem, char *cert_path,
                                              char *key_path, size_t pathsz, drv_error_t *err);

/* "tcp://ADDR:PORT" ("tcp://[V6]:PORT"); with TLS "ssl://..." and a wildcard address
 * replaced by 127.0.0.1 (::1), which the certificate names; valid until drv_broker_free. */
const char *drv_broker_url(const drv_broker_t *broker);
uint16_t drv_broker_port(const drv_broker_t *broker);
/* The running child's pid, or 0 while it is down. */
pid_t drv_broker_pid(const drv_broker_t *broker);

/* For a hub that reaps children itself: tells the broker that pid exited with status (as from
 * waitpid). Returns true when pid was the broker (which then restarts from drv_broker_tick). */
bool drv_broker_child_exited(drv_broker_t *broker, pid_t pid, int status);

/* Supervision, called from the hub's loop with drv_now_ms() (drover/proc.h): notices a dead broker
 * (waitpid on its own child only), restarts it after the back-off (without blocking), caps
 * its log. Returns the ms until it next wants calling. */
int64_t drv_broker_tick(drv_broker_t *broker, int64_t now_ms);

/* ---- device identities for the drover-auth plugin (plugin/drover_auth.c) ---- */

/* The unix socket the plugin asks at each device CONNECT ("drover-auth v1 NODE SPKI\n",
 * answered "ok\n" or "no REASON\n"; one question per connection, read within 500 ms).
 * Created at path (0600, owned by peer_uid:peer_gid when the hub runs as root; a stale one is
 * replaced); questions from other users than peer_uid, root or the hub's own are ignored. */
typedef struct drv_broker_auth drv_broker_auth_t;
DRV_NODISCARD drv_err_t drv_broker_auth_listen(const char *path, uid_t peer_uid, gid_t peer_gid,
                                               drv_broker_identity_fn fn, void *ctx,
                                               drv_broker_auth_t **out, drv_error_t *err);
/* The listening fd to poll for POLLIN; then drv_broker_auth_serve answers what is pending. */
int drv_broker_auth_fd(const drv_broker_auth_t *a);
void drv_broker_auth_serve(drv_broker_auth_t *a);
/* Closes and removes the socket. NULL is allowed. */
void drv_broker_auth_free(drv_broker_auth_t *a);
/* The running broker's socket (NULL without TLS), for the hub's loop to poll. */
drv_broker_auth_t *drv_broker_auth(drv_broker_t *broker);

/* SIGTERM, up to 5 s for the broker to save its persistence file and exit, then SIGKILL.
 * Supervision stops; idempotent. */
void drv_broker_stop(drv_broker_t *broker);
/* Stops the broker if running and frees. NULL is allowed. */
void drv_broker_free(drv_broker_t *broker);

#endif
