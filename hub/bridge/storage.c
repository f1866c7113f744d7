/* The storage part of an agent's status report (nodeStatus.storage, docs/PROTOCOL.md
 * "Persistent volumes"): the directory the agent keeps node-local volumes in, which the
 * provisioner puts new volumes under, and the Released volumes whose directory it removed,
 * which the hub then deletes (reclaim policy Delete). Only a volume on the reporting node,
 * Released and with policy Delete is deleted: a report cannot delete anything else. */
#include "bridge/bridge_int.h"

#include <string.h>

#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/log.h"
#include "sched/volumes.h"

#define STORAGE_DIR_MAX 1024
#define REMOVED_MAX 4096 /* names per report looked at */

static bool dir_ok(const char *s)
{
    if (!s || s[0] != '/' || strlen(s) >= STORAGE_DIR_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    return !strstr(s, "/../") && strcmp(s + strlen(s) - (strlen(s) >= 3 ? 3 : 0), "/..");
}

bool bstorage_ingest(drv_hstore_t *s, const char *node, const cJSON *storage, char *dir,
                     size_t dirsz)
{
    dir[0] = '\0';
    if (!cJSON_IsObject(storage))
        return false;
    const char *d = drv_json_str(storage, "dir");
    if (dir_ok(d))
        drv_fmt_cut(dir, dirsz, "%s", d);
    else if (d)
        drv_log_warn("bridge: node storage directory refused: must be an absolute path", "node=%s",
                     node);
    bool changed = false;
    size_t n = 0;
    const cJSON *name;
    cJSON_ArrayForEach(name, drv_json_get(storage, "removed"))
    {
        if (n++ >= REMOVED_MAX || !cJSON_IsString(name))
            break;
        cJSON *pv = NULL;
        if (drv_hstore_get(s, DRV_KIND_PV, NULL, name->valuestring, &pv, NULL) != DRV_OK)
            continue; /* deleted already */
        const char *pn = drv_sched_pv_node(pv);
        const char *phase = drv_json_str_at(pv, "status.phase");
        const char *policy = drv_json_str_at(pv, "spec.persistentVolumeReclaimPolicy");
        bool ok = pn && !strcmp(pn, node) && phase && !strcmp(phase, "Released") && policy &&
                  !strcmp(policy, "Delete");
        cJSON_Delete(pv);
        if (!ok)
            continue;
        drv_error_t err = DRV_ERROR_INIT;
        if (drv_hstore_delete(s, DRV_KIND_PV, NULL, name->valuestring, NULL, &err) == DRV_OK) {
            changed = true;
            drv_log_info("volume deleted: its node removed its directory", "volume=%s node=%s",
                         name->valuestring, node);
        } else {
            drv_log_warn("bridge: cannot delete a released volume", "volume=%s error=\"%s\"",
                         name->valuestring, drv_error_msg(&err));
        }
    }
    return changed;
}
