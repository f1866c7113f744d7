/* Pod volumes: every emptyDir, configMap and secret volume of a pod gets a directory
 * <pod_dir>/volumes/<name> that the runtime bind-mounts into the pod's containers; hostPath
 * volumes are checked (or created) on the host and mounted from where they are. */
#ifndef DROVER_AGENT_VOLUMES_H
#define DROVER_AGENT_VOLUMES_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include "drover/error.h"

/* Content one configMap or secret volume may hold (Kubernetes' object size limit), and the
 * number of files it may have. A volume over either is refused with DRV_ERR_TOOBIG. */
#define DRV_VOLUMES_MAX_BYTES (1024 * 1024)
#define DRV_VOLUMES_MAX_FILES 1024
/* Size of an emptyDir {medium: Memory} tmpfs without sizeLimit when some container of the pod
 * has no memory limit (with limits on all of them, their sum is used, as the kubelet does). */
#define DRV_VOLUMES_MEMORY_DEFAULT (64 * 1024 * 1024)

/* Where configMap and secret volumes find their objects: JSON objects mapping an object's name
 * to the normalized ConfigMap / Secret (drv_model_normalize: Secret data is base64,
 * stringData already folded in; ConfigMap data are strings and binaryData base64). A NULL
 * member (or a NULL sources pointer) means no such object exists. Borrowed for the call. */
typedef struct drv_volume_sources {
    const cJSON *configmaps;
    const cJSON *secrets;
    /* persistentVolumeClaim volumes (pod/pvc.h): the node's PVs from the desired state (may
     * be NULL) and the storage directory (NULL: "/var/lib/drover/storage"). */
    const cJSON *persistent_volumes;
    const char *storage_dir;
} drv_volume_sources_t;

/* Creates what each volume of the normalized Pod pod (spec.volumes) needs, under
 * <pod_dir>/volumes (created 0700; pod_dir is created if missing):
 *   emptyDir           a directory, mode 0777; medium Memory: a tmpfs (nosuid, nodev) mounted
 *                      on it, size sizeLimit, else the pod's memory limit, else
 *                      DRV_VOLUMES_MEMORY_DEFAULT. (On disk, sizeLimit is not enforced: that
 *                      would take a quota or a loop device.)
 *   configMap, secret  a directory of files, one per key, or one per items entry (path
 *                      relative, no "..": nested directories are created; mode item.mode, else
 *                      defaultMode). Laid out as the kubelet does so that an update is atomic:
 *                      the files are in "..<UTC timestamp>" (e.g. "..2026_11_25_10_00_00.123"),
 *                      "..data" is a symlink to it, and each top-level name is a symlink
 *                      "name -> ..data/name". Directories are 0755 so that containers running
 *                      as any user can reach the files; the files' modes decide who reads them.
 *                      A secret volume is a tmpfs (nosuid, nodev, mode 0755) mounted on the
 *                      directory: secret bytes are written nowhere else. ConfigMap files are not
 *                      fsync()ed: prepare and update compare the content on disk with the
 *                      object and rewrite a volume that a power cut left torn.
 *   hostPath           nothing under pod_dir; the path is checked by type: "" none,
 *                      DirectoryOrCreate creates it (and its parents) 0755 if missing,
 *                      FileOrCreate an empty 0644 file (its parent must exist), Directory,
 *                      File, Socket, CharDevice, BlockDevice must exist and be one.
 * Calling it again for a prepared pod (after an agent restart) keeps emptyDir content and
 * mounts, and refreshes configMap and secret volumes as drv_volumes_update does.
 *
 * Errors name the volume and, where there is one, the object, key or path:
 *   DRV_ERR_NOTFOUND  'volume "cfg": configMap "app" not found', '... has no key "x"' (neither
 *                     when the source is optional: a missing object gives an empty volume, a
 *                     missing key is skipped), 'volume "data": hostPath /srv/data: does not
 *                     exist'
 *   DRV_ERR_INVALID   'volume "dev": hostPath /dev/ttyUSB0: not a character device', an item
 *                     path that is absolute or has "..", two items on one path, bad base64
 *   DRV_ERR_TOOBIG    content over DRV_VOLUMES_MAX_BYTES or DRV_VOLUMES_MAX_FILES
 *   DRV_ERR_PERM      mounting a tmpfs without the privilege to
 *   DRV_ERR_CONFLICT  something other than a tmpfs is mounted on a tmpfs volume's directory
 *   DRV_ERR_IO, DRV_ERR_NOMEM
 * On failure the volume directories this call created are removed again (hostPath
 * directories and files created on the host stay, as with the kubelet). */
DRV_NODISCARD drv_err_t drv_volumes_prepare(const cJSON *pod, const char *pod_dir,
                                            const drv_volume_sources_t *sources, drv_error_t *err);

/* The host path the runtime bind-mounts for volume volume_name of pod: hostPath.path for a
 * hostPath volume, else <pod_dir>/volumes/<name>. DRV_ERR_NOTFOUND if the pod has no such
 * volume, DRV_ERR_TOOBIG if out is too small, DRV_ERR_INVALID for a NULL argument; out is
 * untouched on failure. */
DRV_NODISCARD drv_err_t drv_volumes_host_path(const cJSON *pod, const char *pod_dir,
                                              const char *volume_name, char *out, size_t outsz);

/* Refreshes every configMap and secret volume of a prepared pod from sources. A volume whose
 * content (bytes, file modes, names) already matches is not touched; otherwise a new
 * timestamped directory is written and "..data" swapped to it with one rename, so a reader
 * sees either the old or the new set of files, never a mix; then the old directory and keys
 * no longer present are removed. Entries in the volume directory are never followed: a
 * planted symlink is replaced, not written through. *changed (may be NULL) is set to whether
 * any volume was rewritten, also when an error is returned: every volume is tried, and the
 * first error is reported (a volume that fails keeps its previous content; a source that
 * became missing and is optional empties the volume). Errors as for drv_volumes_prepare, plus
 * DRV_ERR_NOTFOUND for a volume that was never prepared. */
DRV_NODISCARD drv_err_t drv_volumes_update(const cJSON *pod, const char *pod_dir,
                                           const drv_volume_sources_t *sources, bool *changed,
                                           drv_error_t *err);

/* One file the caller adds to a projected volume beside its sources (the service account
 * token): path relative without "..", mode 0 for the volume's defaultMode. Borrowed. */
typedef struct drv_volume_file {
    const char *path;
    const void *data;
    size_t len;
    unsigned mode;
} drv_volume_file_t;

/* Writes the files of a projected volume into dir (an existing directory the caller made,
 * e.g. a tmpfs it mounted), in the kubelet's atomic layout ("..<timestamp>", "..data",
 * top-level symlinks) as drv_volumes_prepare does for a configMap: projected is the volume's
 * "projected" object ({sources: [...], defaultMode}); each source's configMap, secret and
 * downwardAPI items are written (configMap/secret: every key without items, optional
 * honoured; downwardAPI: fieldRef metadata.name, namespace, uid, labels, annotations and
 * resourceFieldRef of pod, as for a downwardAPI volume); serviceAccountToken and
 * clusterTrustBundle sources are skipped: the caller passes the token as one of the n_extra
 * files of extra. Nothing is rewritten when the content is unchanged (*changed, may be NULL,
 * says whether it was). Two files on one path are DRV_ERR_INVALID; other errors as for
 * drv_volumes_prepare, naming the volume by dir. */
DRV_NODISCARD drv_err_t drv_volumes_write_projected(const cJSON *pod, const char *dir,
                                                    const cJSON *projected,
                                                    const drv_volume_sources_t *sources,
                                                    const drv_volume_file_t *extra, size_t n_extra,
                                                    bool *changed, drv_error_t *err);

/* The pod's securityContext.fsGroup applied to a writable volume the caller mounts from dir
 * (a PersistentVolumeClaim's directory), as the kubelet's SetVolumeOwnership does: every
 * file and directory below dir (symlinks not followed; at most DRV_FSAT_RM_MAX_DEPTH deep)
 * is given to the group, files get g+rw, directories g+rwx and setgid. With
 * fsGroupChangePolicy OnRootMismatch nothing is walked when dir already belongs to the group
 * with those bits. No fsGroup: DRV_OK, nothing done. Errors name dir and the entry. */
DRV_NODISCARD drv_err_t drv_volumes_apply_fsgroup(const cJSON *pod, const char *dir,
                                                  drv_error_t *err);

/* Unmounts the tmpfs mounts under <pod_dir>/volumes (lazily: MNT_DETACH, so a container that
 * still holds one does not block the agent) and removes that directory without following
 * any symlink in it (a hostPath volume is never touched). Idempotent: a missing directory is
 * DRV_OK. */
DRV_NODISCARD drv_err_t drv_volumes_teardown(const char *pod_dir, drv_error_t *err);

#endif
