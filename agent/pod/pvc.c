/* PersistentVolumeClaim volumes on the agent (pvc.h): a claim's directory under the storage
 * directory, bind-mounted into the pod's volumes, and the removal of Released ones. */
#include "pod/pvc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/fsat.h"
#include "drover/json.h"
#include "drover/log.h"
#include "drover/model.h"

void pod_pvc_storage_dir(const drv_agent_config_t *cfg, char *out, size_t outsz)
{
    if (cfg->storage_dir[0])
        drv_fmt_cut(out, outsz, "%s", cfg->storage_dir);
    else
        drv_fmt_cut(out, outsz, "%s/storage", cfg->state_dir);
}

static const char *pv_node(const cJSON *pv)
{
    const cJSON *t, *e;
    cJSON_ArrayForEach(t, drv_json_at(pv, "spec.nodeAffinity.required.nodeSelectorTerms"))
    {
        cJSON_ArrayForEach(e, drv_json_get(t, "matchExpressions"))
        {
            const char *k = drv_json_str(e, "key"), *op = drv_json_str(e, "operator");
            const cJSON *v0 = cJSON_GetArrayItem(drv_json_get(e, "values"), 0);
            if (k && op && !strcmp(k, "kubernetes.io/hostname") && !strcmp(op, "In") &&
                cJSON_IsString(v0))
                return v0->valuestring;
        }
    }
    return NULL;
}

drv_err_t pod_pvc_check(cJSON *pvs, const char *node, drv_error_t *err)
{
    static const char *const phases[] = {"Pending", "Available", "Bound", "Released", "Failed"};
    size_t i = 0;
    for (cJSON *o = pvs ? pvs->child : NULL; o; o = o->next, i++) {
        char where[64];
        drv_fmt_cut(where, sizeof(where), "persistentVolumes[%zu]", i);
        cJSON *st = cJSON_DetachItemFromObjectCaseSensitive(o, "status");
        const char *phase = drv_json_str(st, "phase");
        bool known = false;
        for (size_t k = 0; phase && k < sizeof(phases) / sizeof(phases[0]); k++)
            known = known || !strcmp(phase, phases[k]);
        if (st && !known) {
            cJSON_Delete(st);
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "%s.status.phase: must be Available, Bound, Released or Failed",
                                 where);
        }
        if (drv_model_kind(o) != DRV_KIND_PV) {
            cJSON_Delete(st);
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.kind: must be PersistentVolume",
                                 where);
        }
        drv_diags_t d = {0};
        drv_err_t r = drv_model_normalize(o, &d);
        if (r != DRV_OK) {
            cJSON_Delete(st);
            _cleanup_free_ char *text = drv_diags_format(&d, NULL);
            drv_diags_free(&d);
            for (char *p = text; p && *p; p++)
                if (*p == '\n')
                    *p = p[1] ? ';' : '\0';
            return drv_error_set(err, r == DRV_ERR_NOMEM ? r : DRV_ERR_INVALID, 0, "%s.%s", where,
                                 text ? text : "invalid");
        }
        drv_diags_free(&d);
        if (st && !cJSON_AddItemToObject(o, "status", st)) {
            cJSON_Delete(st);
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s", where);
        }
        const char *pn = pv_node(o);
        if (!pn || strcmp(pn, node))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "%s.spec.nodeAffinity: the volume is not on this node (%s)", where,
                                 node);
    }
    return DRV_OK;
}

static bool provisioned(const cJSON *pv)
{
    const char *by =
        drv_json_str(drv_json_at(pv, "metadata.annotations"), "pv.kubernetes.io/provisioned-by");
    return by && !strcmp(by, POD_PVC_PROVISIONER);
}

static const char *pv_path(const cJSON *pv)
{
    const char *p = drv_json_str_at(pv, "spec.local.path");
    return p ? p : drv_json_str_at(pv, "spec.hostPath.path");
}

/* The leaf of path when path is <dir>/<leaf> with a plain leaf, else NULL. */
static const char *leaf_in(const char *dir, const char *path)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (strncmp(path, dir, n) || path[n] != '/')
        return NULL;
    const char *leaf = path + n + 1;
    if (!*leaf || strchr(leaf, '/') || !strcmp(leaf, ".") || !strcmp(leaf, ".."))
        return NULL;
    return leaf;
}

/* mkdir -p of an absolute path (mode for the directories it makes). */
static drv_err_t mkdirs(const char *path, mode_t mode, drv_error_t *err)
{
    char buf[PATH_MAX];
    if (drv_fmt(buf, sizeof(buf), "%s", path) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: path too long", path);
    for (char *p = buf + 1;; p++) {
        bool end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return drv_error_set(err, drv_error_from_errno(errno), errno, "mkdir %s", buf);
            if (end)
                break;
            *p = '/';
        }
    }
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return drv_error_set(err, DRV_ERR_IO, errno, "%s: not a directory", path);
    return DRV_OK;
}

/* The PV bound to claim ns/name among pvs, or NULL. */
static const cJSON *find_pv(const cJSON *pvs, const char *ns, const char *claim)
{
    const cJSON *pv;
    cJSON_ArrayForEach(pv, pvs)
    {
        const cJSON *ref = drv_json_at(pv, "spec.claimRef");
        const char *phase = drv_json_str_at(pv, "status.phase");
        if (drv_json_str(ref, "namespace") && !strcmp(drv_json_str(ref, "namespace"), ns) &&
            drv_json_str(ref, "name") && !strcmp(drv_json_str(ref, "name"), claim) &&
            (!phase || !strcmp(phase, "Bound")))
            return pv;
    }
    return NULL;
}

static bool is_mount_root(int parentfd, const char *name)
{
    _cleanup_close_ int fd =
        openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH, 0, &sx) == 0 &&
        (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
        return (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
    struct stat pst, st;
    return fstat(parentfd, &pst) == 0 && fstat(fd, &st) == 0 && pst.st_dev != st.st_dev;
}

drv_err_t pod_pvc_prepare(int vfd, const char *vdir, const char *name, const cJSON *pod,
                          const cJSON *src, const cJSON *pvs, const char *storage_dir,
                          drv_error_t *err)
{
    const char *claim = drv_json_str(src, "claimName");
    const char *ns = drv_json_str_or(drv_json_get(pod, "metadata"), "namespace", "default");
    bool ro = cJSON_IsTrue(drv_json_get(src, "readOnly"));
    const cJSON *pv = claim ? find_pv(pvs, ns, claim) : NULL;
    if (!pv)
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0,
                             "volume \"%s\": persistentvolumeclaim \"%s\" has no bound volume on "
                             "this node yet",
                             name, claim ? claim : "");
    const char *path = pv_path(pv);
    const char *pvname = drv_json_str_at(pv, "metadata.name");
    if (!path || path[0] != '/')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "volume \"%s\": volume %s has no path", name,
                             pvname ? pvname : "");
    if (provisioned(pv) && !leaf_in(storage_dir, path))
        return drv_error_set(err, DRV_ERR_PERM, 0,
                             "volume \"%s\": volume %s is at %s, outside this node's storage "
                             "directory %s (agent config storage.dir)",
                             name, pvname ? pvname : "", path, storage_dir);
    drv_err_t r = provisioned(pv) ? mkdirs(storage_dir, 0755, err) : DRV_OK;
    if (r == DRV_OK) {
        bool made = mkdir(path, 0777) == 0;
        if (!made && errno != EEXIST)
            return drv_error_set(err, drv_error_from_errno(errno), errno, "volume \"%s\": mkdir %s",
                                 name, path);
        /* 0777 as local-path makes it: containers run as any user (umask left out). */
        if (made && chmod(path, 0777) < 0)
            return drv_error_set(err, DRV_ERR_IO, errno, "volume \"%s\": chmod %s", name, path);
        struct stat st;
        if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "volume \"%s\": %s is not a directory",
                                 name, path);
    }
    if (r != DRV_OK)
        return drv_error_wrap(err, "volume \"%s\"", name);
    if (mkdirat(vfd, name, 0755) < 0 && errno != EEXIST)
        return drv_error_set(err, drv_error_from_errno(errno), errno, "volume \"%s\": mkdir", name);
    if (is_mount_root(vfd, name))
        return DRV_OK; /* mounted before the agent restarted */
    char target[PATH_MAX];
    if (drv_fmt(target, sizeof(target), "%s/%s", vdir, name) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "volume \"%s\": path too long", name);
    if (mount(path, target, NULL, MS_BIND, NULL) < 0)
        return drv_error_set(err, errno == EPERM ? DRV_ERR_PERM : DRV_ERR_IO, errno,
                             "volume \"%s\": bind mount %s", name, path);
    if (ro && mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
        int e = errno;
        (void)umount2(target, MNT_DETACH);
        return drv_error_set(err, DRV_ERR_IO, e, "volume \"%s\": read-only remount", name);
    }
    return DRV_OK;
}

/* Whether a desired pod of ns names claim. */
static bool claim_in_use(const cJSON *pods, const char *ns, const char *claim)
{
    const cJSON *p, *v;
    cJSON_ArrayForEach(p, pods)
    {
        if (strcmp(drv_json_str_or(drv_json_get(p, "metadata"), "namespace", "default"), ns))
            continue;
        cJSON_ArrayForEach(v, drv_json_at(p, "spec.volumes"))
        {
            const char *cn = drv_json_str(drv_json_get(v, "persistentVolumeClaim"), "claimName");
            if (cn && !strcmp(cn, claim))
                return true;
        }
    }
    return false;
}

size_t pod_pvc_reclaim(const cJSON *pvs, const cJSON *pods, const char *storage_dir, cJSON *removed)
{
    size_t now = 0;
    while (cJSON_GetArraySize(removed) > 0)
        cJSON_DeleteItemFromArray(removed, 0);
    const cJSON *pv;
    cJSON_ArrayForEach(pv, pvs)
    {
        const char *phase = drv_json_str_at(pv, "status.phase");
        const char *policy = drv_json_str_at(pv, "spec.persistentVolumeReclaimPolicy");
        const char *path = pv_path(pv), *name = drv_json_str_at(pv, "metadata.name");
        const cJSON *ref = drv_json_at(pv, "spec.claimRef");
        if (!phase || strcmp(phase, "Released") || !policy || strcmp(policy, "Delete") ||
            !provisioned(pv) || !path || !name || !leaf_in(storage_dir, path))
            continue;
        if (ref && claim_in_use(pods, drv_json_str_or(ref, "namespace", ""),
                                drv_json_str_or(ref, "name", "")))
            continue; /* a pod still has it mounted: its data goes once the pod is gone */
        struct stat st;
        if (lstat(path, &st) == 0) {
            drv_error_t e = DRV_ERROR_INIT;
            if (drv_fsat_remove_tree_path(path, NULL, &e) != DRV_OK) {
                drv_log_warn("cannot remove a released volume's directory",
                             "volume=%s error=\"%s\"", name, drv_error_msg(&e));
                continue;
            }
            drv_log_info("released volume removed (reclaim policy Delete)", "volume=%s path=%s",
                         name, path);
            now++;
        }
        if (cJSON_GetArraySize(removed) < POD_PVC_REMOVED_MAX)
            cJSON_AddItemToArray(removed, cJSON_CreateString(name));
    }
    return now;
}

void pod_pvc_status(cJSON *node, const char *storage_dir, const cJSON *removed)
{
    cJSON *st = node ? cJSON_AddObjectToObject(node, "storage") : NULL;
    if (!st)
        return;
    cJSON_AddStringToObject(st, "dir", storage_dir);
    if (cJSON_GetArraySize(removed) > 0)
        cJSON_AddItemToObject(st, "removed", cJSON_Duplicate(removed, true));
}
