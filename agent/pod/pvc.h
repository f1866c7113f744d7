/* The agent's side of PersistentVolumeClaims (docs/WORKLOADS.md "Storage"): the PVs of this
 * node come in the desired state (persistentVolumes); a pod's persistentVolumeClaim volume is
 * the directory of the PV bound to that claim, created 0777 on first use under the storage
 * directory (config storage.dir, default <stateDir>/storage) and bind-mounted on
 * <pod_dir>/volumes/<name>; a Released PV with reclaim policy Delete has its directory removed
 * and is reported in nodeStatus.storage.removed, after which the hub deletes it. The data
 * lives outside the pod's directory: it survives pod restarts and deletions, agent restarts
 * and reboots. */
#ifndef DROVER_AGENT_POD_PVC_H
#define DROVER_AGENT_POD_PVC_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "config/config.h"
#include "drover/error.h"

#define POD_PVC_PROVISIONER "drover.io/local-path"
#define POD_PVC_REMOVED_MAX 256 /* names kept for the status report */

/* The storage directory of cfg (storage.dir, or <stateDir>/storage) into out. */
void pod_pvc_storage_dir(const drv_agent_config_t *cfg, char *out, size_t outsz);

/* Checks the desired state's persistentVolumes (an array of objects, modified in place):
 * each a PersistentVolume that drv_model_normalize accepts (its status.phase kept: Available,
 * Bound, Released or Failed) on this node (nodeAffinity kubernetes.io/hostname). Errors name
 * the element: "persistentVolumes[1].spec.local.path: must be an absolute path". */
DRV_NODISCARD drv_err_t pod_pvc_check(cJSON *pvs, const char *node, drv_error_t *err);

/* Mounts the volume of the claim that pod's volume vol (its persistentVolumeClaim source src)
 * names on <vdir>/<name> (vfd: vdir opened). pvs: the desired PVs (may be NULL). A PV of
 * the local-path provisioner must lie directly inside storage_dir. Calling it again for a
 * mounted volume (after an agent restart) keeps the mount. Errors name the volume and the
 * claim: DRV_ERR_NOTFOUND (no bound volume for the claim on this node yet), DRV_ERR_PERM
 * (the path is outside the storage directory), DRV_ERR_IO. */
DRV_NODISCARD drv_err_t pod_pvc_prepare(int vfd, const char *vdir, const char *name,
                                        const cJSON *pod, const cJSON *src, const cJSON *pvs,
                                        const char *storage_dir, drv_error_t *err);

/* Removes the directory of every Released PV of pvs with policy Delete made by the local-path
 * provisioner, unless a pod of pods (the desired pods) still names its claim; the names of
 * those removed (or already gone) are put in removed (an array, replaced). Returns how many
 * directories it removed now. */
size_t pod_pvc_reclaim(const cJSON *pvs, const cJSON *pods, const char *storage_dir,
                       cJSON *removed);

/* Adds "storage": {"dir", "removed": [...]} to node (a node status object). */
void pod_pvc_status(cJSON *node, const char *storage_dir, const cJSON *removed);

#endif
