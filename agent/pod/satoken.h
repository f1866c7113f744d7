/* Private to the agent: pods' service account tokens (docs/WORKLOADS.md "ServiceAccounts and
 * RBAC"). The hub sends each pod's token sealed to this node (desired state
 * "serviceAccountTokens"); here it is opened and given to the pod where Kubernetes puts it: a
 * secret volume mounted at /var/run/secrets/kubernetes.io/serviceaccount (token, ca.crt, namespace)
 * in every container, backed by a Secret in clear that exists only in memory and on tmpfs
 * (secrets.h: clear Secrets never go under the state directory), and
 * KUBERNETES_SERVICE_HOST/_PORT/_PORT_HTTPS naming the hub's API (hub.url). A new token (renewed by
 * the hub) is a changed Secret: the volume is swapped atomically, as any secret volume. A projected
 * volume becomes a secret volume over a clear Secret of its files alike (the pod's token, ConfigMap
 * and Secret keys, downward API fields), built again at each desired state, so it follows its
 * sources. */
#ifndef DROVER_AGENT_POD_SATOKEN_H
#define DROVER_AGENT_POD_SATOKEN_H

#include <cjson/cJSON.h>

#include "drover/error.h"

#define POD_SATOKEN_MOUNT "/var/run/secrets/kubernetes.io/serviceaccount"
#define POD_SATOKEN_VOLUME "kube-api-access-drover"
#define POD_SATOKEN_SECRET_PREFIX "drover-sa-token-" /* + the pod's uid */
#define POD_SATOKEN_CA "identity/ca.crt"             /* under state_dir */

/* Takes desired's "serviceAccountTokens" out of it and, for each pod of desired["pods"] it
 * names, opens its token (with state_dir's node key when sealed), adds the Secret to
 * desired["secrets"] and the volume, mounts and environment to the pod (unless the entry says
 * "automount": false); then turns every pod's projected volumes into secret volumes. hub_url
 * ("https:// HOST:PORT", may be "") gives the environment. A token that does not open, or names no
 * pod, is logged and skipped (its pod runs without it; the API then refuses it nothing it has not
 * got). Only a failure to allocate is returned. */
DRV_NODISCARD drv_err_t pod_satoken_apply(cJSON *desired, const char *state_dir, const char *node,
                                          const char *hub_url, drv_error_t *err);

#endif
