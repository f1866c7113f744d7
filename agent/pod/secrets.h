/* Private to the supervisor: Secrets at rest and in use on the device. A Secret from the hub
 * arrives sealed ("sealedData", drv_proto_secret_seal) and stays sealed in memory and on
 * disk; it is opened with the node's key (<state_dir>/identity/node.key) only to build a
 * pod's secret volumes or env, into a copy that is wiped right after. A Secret given in clear
 * (static manifests, or a hub that does not seal) is never written under state_dir: the
 * supervisor keeps it in <run_dir>/secrets/desired-secrets.json (tmpfs) only. */
#ifndef DROVER_AGENT_POD_SECRETS_H
#define DROVER_AGENT_POD_SECRETS_H

#include <stdbool.h>
#include <cjson/cJSON.h>

#include "drover/error.h"

/* Where the clear Secrets of the desired state are kept, under run_dir. */
#define POD_SECRETS_DIR "secrets"
#define POD_SECRETS_FILE "desired-secrets.json"
/* The node's private key, under state_dir. */
#define POD_NODE_KEY "identity/node.key"

/* True when secret carries sealedData (opened only at use). */
bool pod_secret_is_sealed(const cJSON *secret);

/* True when pod uses the Secret name: a secret volume, env valueFrom.secretKeyRef or
 * envFrom secretRef of any container or init container, or an imagePullSecrets entry. */
bool pod_uses_secret(const cJSON *pod, const char *name);

/* The Secrets a pod may use, opened: a new object mapping name -> Secret where every sealed
 * Secret the pod uses is a copy opened (pod_secret_unseal) with the key at key_path, and every
 * clear one a reference into secrets_ns (name -> Secret, as the supervisor indexes them; NULL =
 * none). Sealed Secrets the pod does not use are left out, and then the key is not read. A
 * sealed Secret that cannot be opened (no key, another node's key, tampered) fails the whole
 * call with an error naming it, never its data: "Secret default/db: sealedData: does not open
 * with this node's key (...)". Free *out with pod_secrets_release. */
DRV_NODISCARD drv_err_t pod_secrets_open(const cJSON *secrets_ns, const cJSON *pod,
                                         const char *node, const char *key_path, cJSON **out,
                                         drv_error_t *err);

/* Wipes the opened copies in opened (references are left alone) and frees it. NULL is fine. */
void pod_secrets_release(cJSON *opened);

/* Opens one sealed Secret in place for node with key_pem (drv_proto_secret_unseal: context
 * "drover/v1 secret <node>/<namespace>/<name>"): sealedData is replaced by data (base64; sealed
 * stringData folded in). On failure secret is untouched. */
DRV_NODISCARD drv_err_t pod_secret_unseal(cJSON *secret, const char *node, const char *key_pem,
                                          drv_error_t *err);

/* Wipes every string value under item (not item's own references) and deletes it. */
void pod_secret_wipe_delete(cJSON *item);

#endif
