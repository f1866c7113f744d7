/* The node's identity: a P-256 key made on the device (never sent), a client certificate
 * issued by the hub's CA, the CA itself and the hub's desired-state signing key, all under
 * <state_dir>/identity/. The first start enrols: it fetches the hub's TLS chain, pins the CA
 * whose SHA-256 fingerprint is hub.caFingerprint, and sends a CSR with the bootstrap token
 * over a connection verified against that CA. Afterwards the certificate is renewed (no token)
 * once 2/3 of its validity has passed. See docs/ARCHITECTURE.md "Agent identity". */
#ifndef DROVER_AGENT_ENROLL_H
#define DROVER_AGENT_ENROLL_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "drover/error.h"

typedef struct drv_enroll_paths {
    char dir[300], key[320], cert[320], ca[320], signing_pub[320];
} drv_enroll_paths_t;

/* Paths under <state_dir>/identity. */
void drv_enroll_paths(const drv_agent_config_t *cfg, drv_enroll_paths_t *out);

/* DRV_OK when a valid identity is present (key matches cert, cert issued by ca.crt, not
 * expired) — renewing it first when due and the hub is reachable (a failed renewal of a
 * still-valid cert is only a warning) — or after enrolling with hub.url, hub.caFingerprint and
 * the token. Errors name the config field (hub.caFingerprint: no certificate in the hub's
 * chain has it, ...). Fills *out with the paths in every case. Blocks while a forked child does
 * the HTTPS part (at most 2 minutes), so that the calling process never maps libcurl. */
DRV_NODISCARD drv_err_t drv_enroll_ensure(const drv_agent_config_t *cfg, drv_enroll_paths_t *out,
                                          drv_error_t *err);

/* Whether a valid identity is present and not yet due for renewal: no network, no files
 * written (the link then connects at once and runs drv_enroll_ensure only when it is not). */
bool drv_enroll_current(const drv_agent_config_t *cfg, drv_enroll_paths_t *out, int64_t now_unix_s);

/* Milliseconds until the next renewal check is due (for the link's timer), >= 60000: the
 * renewal time of node.crt, at most 12 h away; 60000 when it is due or unreadable. */
int64_t drv_enroll_next_check_ms(const drv_enroll_paths_t *p, int64_t now_unix_s);

#endif
