/* Private to agent/enroll/: the steps of enrollment that need no network, for the unit
 * tests. */
#ifndef DROVER_AGENT_ENROLL_INT_H
#define DROVER_AGENT_ENROLL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "drover/pki.h"
#include "enroll/enroll.h"

#define DRV_ENROLL_CHECK_MAX_S (12 * 3600) /* renewal checked at least this often */

/* The certificate among pems (a TLS chain as the hub presented it) whose SHA-256 DER
 * fingerprint is fingerprint, copied to *ca_pem (caller frees). None: DRV_ERR_INTEGRITY naming
 * hub.caFingerprint and listing the chain's fingerprints; the match is not a CA certificate:
 * DRV_ERR_INVALID. */
DRV_NODISCARD drv_err_t drv_enroll_pick_ca(const char *const *pems, size_t n,
                                           const char *fingerprint, char **ca_pem,
                                           drv_error_t *err);

/* Checks the identity files for node at time now: node.key a P-256 key, node.crt for CN=node,
 * issued by ca.crt, valid now, with that key, signing.pub a public key. *info describes
 * node.crt when it parses (even if otherwise invalid). node.crt missing: DRV_ERR_NOTFOUND;
 * expired: DRV_ERR_RANGE; anything else wrong: DRV_ERR_INTEGRITY / DRV_ERR_INVALID. */
DRV_NODISCARD drv_err_t drv_enroll_check_identity(const drv_enroll_paths_t *p, const char *node,
                                                  int64_t now, drv_pki_cert_info_t *info,
                                                  drv_error_t *err);

/* When a certificate is due for renewal: 2/3 into its validity. */
int64_t drv_enroll_renew_at(const drv_pki_cert_info_t *info);

/* Checks the hub's 201 answer (Enrollment) against what was asked: node, a certificate for
 * key_pem issued by ca_pem (client auth), a signing key. *cert_pem and *signing_pub (caller
 * frees) on success. */
DRV_NODISCARD drv_err_t drv_enroll_parse_answer(const char *text, size_t len, const char *node,
                                                const char *key_pem, const char *ca_pem,
                                                int64_t now, char **cert_pem, char **signing_pub,
                                                drv_error_t *err);

#endif
