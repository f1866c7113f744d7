/* drover get / describe: kubectl-like tables, JSON or YAML of the hub's objects, and watch
 * streams printed row by row as events arrive. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drover/json.h"
#include "cli.h"
#include "drover/doc.h"
#include "drover/fmt.h"

#define PATH_MAX_LEN 4096
#define COLS_MAX 12
#define CELL_MAX 256
#define OUT_MAX (256u * 1024 * 1024)

typedef enum { OUT_TABLE, OUT_WIDE, OUT_JSON, OUT_YAML, OUT_NAME } out_t;

static void age(const char *ts, char *out, size_t outsz)
{
    struct tm tm = {0};
    const char *end = ts ? strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!end) {
        drv_fmt_cut(out, outsz, "<unknown>");
        return;
    }
    long d = (long)(time(NULL) - timegm(&tm));
    if (d < 0)
        d = 0;
    if (d < 120)
        drv_fmt_cut(out, outsz, "%lds", d);
    else if (d < 600)
        drv_fmt_cut(out, outsz, "%ldm%lds", d / 60, d % 60);
    else if (d < 3 * 3600)
        drv_fmt_cut(out, outsz, "%ldm", d / 60);
    else if (d < 2 * 86400)
        drv_fmt_cut(out, outsz, "%ldh", d / 3600);
    else
        drv_fmt_cut(out, outsz, "%ldd", d / 86400);
}

/* "cpu: 43%/60%, memory: 120Mi/200Mi" as kubectl prints an HPA's targets: each metric's current
 * value (from status.currentMetrics, "<unknown>" before the first) against its target. */
static void hpa_targets(const cJSON *hpa, char *out, size_t outsz)
{
    out[0] = '\0';
    size_t len = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, drv_json_at(hpa, "spec.metrics"))
    {
        const char *name = drv_json_str_at(m, "resource.name");
        const char *type = drv_json_str_at(m, "resource.target.type");
        if (!name || !type)
            continue;
        bool util = !strcmp(type, "Utilization");
        char cur[48] = "<unknown>", tgt[48] = "";
        const cJSON *cm;
        cJSON_ArrayForEach(cm, drv_json_at(hpa, "status.currentMetrics"))
        {
            const char *cn = drv_json_str_at(cm, "resource.name");
            if (!cn || strcmp(cn, name))
                continue;
            if (util && drv_json_at(cm, "resource.current.averageUtilization"))
                drv_fmt_cut(cur, sizeof(cur), "%ld%%",
                            (long)drv_json_int_at(cm, "resource.current.averageUtilization", 0,
                                                  INT32_MAX, 0));
            else if (!util && drv_json_str_at(cm, "resource.current.averageValue"))
                drv_fmt_cut(cur, sizeof(cur), "%s",
                            drv_json_str_at(cm, "resource.current.averageValue"));
        }
        if (util)
            drv_fmt_cut(
                tgt, sizeof(tgt), "%ld%%",
                (long)drv_json_int_at(m, "resource.target.averageUtilization", 0, INT32_MAX, 0));
        else
            drv_fmt_cut(tgt, sizeof(tgt), "%s",
                        drv_json_str_at(m, "resource.target.averageValue")
                            ? drv_json_str_at(m, "resource.target.averageValue")
                            : "?");
        drv_fmt_cut(out + len, outsz - len, "%s%s: %s/%s", len ? ", " : "", name, cur, tgt);
        len = strlen(out);
        if (len + 1 >= outsz)
            break;
    }
    if (!out[0])
        drv_fmt_cut(out, outsz, "<none>");
}

typedef struct table {
    int ncols;
    const char *head[COLS_MAX];
    char (*cells)[COLS_MAX][CELL_MAX];
    size_t rows, cap;
} table_t;

static void headers(drv_kind_t kind, bool wide, bool allns, table_t *t)
{
    static const char *const pod[] = {"NAME", "READY", "STATUS", "RESTARTS",
                                      "AGE",  "IP",    "NODE",   NULL};
    static const char *const dep[] = {"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", NULL};
    static const char *const ds[] = {"NAME",       "DESIRED",   "CURRENT", "READY",
                                     "UP-TO-DATE", "AVAILABLE", "AGE",     NULL};
    static const char *const node[] = {"NAME", "STATUS", "ROLES", "AGE", "VERSION", NULL};
    static const char *const cm[] = {"NAME", "DATA", "AGE", NULL};
    static const char *const sec[] = {"NAME", "TYPE", "DATA", "AGE", NULL};
    static const char *const svc[] = {"NAME", "TYPE", "CLUSTER-IP", "PORT(S)", "AGE", NULL};
    static const char *const ev[] = {"LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE", NULL};
    static const char *const hpa[] = {"NAME",    "REFERENCE", "TARGETS", "MINPODS",
                                      "MAXPODS", "REPLICAS",  "AGE",     NULL};
    static const char *const ep[] = {"NAME", "ENDPOINTS", "AGE", NULL};
    static const char *const eps[] = {"NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE", NULL};
    static const char *const np[] = {"NAME", "POD-SELECTOR", "AGE", NULL};
    static const char *const pvc[] = {"NAME",         "STATUS",       "VOLUME", "CAPACITY",
                                      "ACCESS MODES", "STORAGECLASS", "AGE",    NULL};
    static const char *const pv[] = {"NAME",           "CAPACITY", "ACCESS MODES",
                                     "RECLAIM POLICY", "STATUS",   "CLAIM",
                                     "STORAGECLASS",   "AGE",      NULL};
    static const char *const sc[] = {"NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE",
                                     "AGE",  NULL};
    static const char *const pc[] = {"NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY",
                                     NULL};
    const char *const *h = kind == DRV_KIND_PVC             ? pvc
                           : kind == DRV_KIND_PV            ? pv
                           : kind == DRV_KIND_STORAGECLASS  ? sc
                           : kind == DRV_KIND_ENDPOINTS     ? ep
                           : kind == DRV_KIND_ENDPOINTSLICE ? eps
                           : kind == DRV_KIND_NETWORKPOLICY ? np
                           : kind == DRV_KIND_POD           ? pod
                           : kind == DRV_KIND_DEPLOYMENT    ? dep
                           : kind == DRV_KIND_DAEMONSET     ? ds
                           : kind == DRV_KIND_NODE          ? node
                           : kind == DRV_KIND_CONFIGMAP     ? cm
                           : kind == DRV_KIND_SECRET        ? sec
                           : kind == DRV_KIND_SERVICE       ? svc
                           : kind == DRV_KIND_HPA           ? hpa
                           : kind == DRV_KIND_PRIORITYCLASS ? pc
                                                            : ev;
    t->ncols = 0;
    if (allns && drv_cli_namespaced(kind))
        t->head[t->ncols++] = "NAMESPACE";
    for (int i = 0; h[i]; i++) {
        if (kind == DRV_KIND_POD && !wide && i >= 5)
            break;
        t->head[t->ncols++] = h[i];
    }
}

static void row(drv_kind_t kind, bool wide, bool allns, const cJSON *o, char (*c)[CELL_MAX])
{
    int i = 0;
    char a[64];
    const char *ns = drv_json_str_at(o, "metadata.namespace");
    const char *name = drv_json_str_at(o, "metadata.name");
    if (allns && drv_cli_namespaced(kind))
        drv_fmt_cut(c[i++], CELL_MAX, "%s", ns ? ns : "");
    age(drv_json_str_at(o, "metadata.creationTimestamp"), a, sizeof(a));
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(o, "spec");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(o, "status");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
    if (kind != DRV_KIND_EVENT)
        drv_fmt_cut(c[i++], CELL_MAX, "%s", name ? name : "");
    switch (kind) {
    case DRV_KIND_POD: {
        int total = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(spec, "containers"));
        int ready = 0;
        long restarts = 0;
        const cJSON *cs;
        cJSON_ArrayForEach(cs, cJSON_GetObjectItemCaseSensitive(status, "containerStatuses"))
        {
            ready += cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cs, "ready"));
            restarts += (long)drv_json_int_at(cs, "restartCount", 0, INT32_MAX, 0);
        }
        const char *phase = drv_json_str_at(o, "status.phase");
        /* As kubectl: a container's waiting or terminated reason says more than the phase. */
        cJSON_ArrayForEach(cs, cJSON_GetObjectItemCaseSensitive(status, "containerStatuses"))
        {
            const char *w = drv_json_str_at(cs, "state.waiting.reason");
            const char *t = drv_json_str_at(cs, "state.terminated.reason");
            if (w && *w) {
                phase = w;
                break;
            }
            if (t && *t && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cs, "ready")))
                phase = t;
        }
        if (drv_json_str_at(o, "metadata.deletionTimestamp"))
            phase = "Terminating";
        const char *ip = drv_json_str_at(o, "status.podIP");
        const char *node = drv_json_str_at(o, "spec.nodeName");
        drv_fmt_cut(c[i++], CELL_MAX, "%d/%d", ready, total);
        drv_fmt_cut(c[i++], CELL_MAX, "%s", phase ? phase : "Pending");
        drv_fmt_cut(c[i++], CELL_MAX, "%ld", restarts);
        drv_fmt_cut(c[i++], CELL_MAX, "%s", a);
        if (wide) {
            drv_fmt_cut(c[i++], CELL_MAX, "%s", ip ? ip : "<none>");
            drv_fmt_cut(c[i++], CELL_MAX, "%s", node ? node : "<none>");
        }
        break;
    }
    case DRV_KIND_DEPLOYMENT:
        drv_fmt_cut(c[i++], CELL_MAX, "%ld/%ld",
                    (long)drv_json_int_at(o, "status.readyReplicas", LONG_MIN, LONG_MAX, 0),
                    (long)drv_json_int_at(o, "spec.replicas", LONG_MIN, LONG_MAX, 0));
        drv_fmt_cut(c[i++], CELL_MAX, "%ld",
                    (long)drv_json_int_at(o, "status.updatedReplicas", LONG_MIN, LONG_MAX, 0));
        drv_fmt_cut(c[i++], CELL_MAX, "%ld",
                    (long)drv_json_int_at(o, "status.availableReplicas", LONG_MIN, LONG_MAX, 0));
        drv_fmt_cut(c[i++], CELL_MAX, "%s", a);
        break;
    case DRV_KIND_DAEMONSET:
        drv_fmt_cut(
            c[i++], CELL_MAX, "%ld",
            (long)drv_json_int_at(o, "status.desiredNumberScheduled", LONG_MIN, LONG_MAX, 0));
        drv_fmt_cut(
            c[i++], CELL_MAX, "%ld",
            (long)drv_json_int_at(o, "status.currentNumberScheduled", LONG_MIN, LONG_MAX, 0));
        drv_fmt_cut(c[i++], CELL_MAX, "%ld",
                    (long)drv_json_int_at(o, "status.numberReady", LONG_MIN, LONG_MAX, 0));
        drv_fmt_cut(
            c[i++], CELL_MAX, "%ld",
            (long)drv_json_int_at(o, "status.updatedNumberScheduled", LONG_MIN, LONG_MAX, 0));
        drv_fmt_cut(c[i++], CELL_MAX, "%ld",
                    (long)drv_json_int_at(o, "status.numberAvailable", LONG_MIN, LONG_MAX, 0));
        drv_fmt_cut(c[i++], CELL_MAX, "%s", a);
        break;
    case DRV_KIND_NODE: {
        const char *st = "NotReady";
        bool dup = false;
        const cJSON *cond;
        cJSON_ArrayForEach(cond, cJSON_GetObjectItemCaseSensitive(status, "conditions"))
        {
            const char *t = drv_json_str_at(cond, "type"), *s = drv_json_str_at(cond, "status");
            if (t && s && !strcmp(t, "Ready") && !strcmp(s, "True"))
                st = "Ready";
            else if (t && s && !strcmp(t, "Ready") && !strcmp(s, "Unknown"))
                st = "Unknown";
            else if (t && s && !strcmp(t, "DuplicateIdentity") && !strcmp(s, "True"))
                dup = true; /* two devices with one identity: the hub's finding */
        }
        bool unsched = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "unschedulable"));
        drv_fmt_cut(c[i++], CELL_MAX, "%s%s%s", st, unsched ? ",SchedulingDisabled" : "",
                    dup ? ",DuplicateIdentity" : "");
        char roles[CELL_MAX] = "";
        const cJSON *l;
        cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(
                                  cJSON_GetObjectItemCaseSensitive(o, "metadata"), "labels"))
        {
            const char *pfx = "node-role.kubernetes.io/";
            if (l->string && !strncmp(l->string, pfx, strlen(pfx))) {
                size_t len = strlen(roles);
                drv_fmt_cut(roles + len, sizeof(roles) - len, "%s%s", len ? "," : "",
                            l->string + strlen(pfx));
            }
        }
        drv_fmt_cut(c[i++], CELL_MAX, "%s", *roles ? roles : "<none>");
        drv_fmt_cut(c[i++], CELL_MAX, "%s", a);
        const char *v = drv_json_str_at(o, "status.nodeInfo.kubeletVersion");
        drv_fmt_cut(c[i++], CELL_MAX, "%s", v ? v : "");
        break;
    }
    case DRV_KIND_CONFIGMAP:
        drv_fmt_cut(c[i++], CELL_MAX, "%d",
                    cJSON_GetArraySize(data) +
                        cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "binaryData")));
        drv_fmt_cut(c[i++], CELL_MAX, "%s", a);
        break;
    case DRV_KIND_SECRET: {
        const char *t = drv_json_str_at(o, "type");
        drv_fmt_cut(c[i++], CELL_MAX, "%s", t ? t : "Opaque");
        drv_fmt_cut(c[i++], CELL_MAX, "%d", cJSON_GetArraySize(data));
        drv_fmt_cut(c[i++], CELL_MAX, "%s", a);
        break;
    }
    case DRV_KIND_SERVICE: {
        const char *t = drv_json_str_at(o, "spec.type"), *ip = drv_json_str_at(o, "spec.clusterIP");
        drv_fmt_cut(c[i++], CELL_MAX, "%s", t ? t : "ClusterIP");
        drv_fmt_cut(c[i++], CELL_MAX, "%s", ip ? ip : "<none>");
        char ports[CELL_MAX] = "";
        const cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(spec, "ports"))
        {
            size_t len = strlen(ports);
            const char *proto = drv_json_str_at(p, "protocol");
            long np = (long)drv_json_int_at(p, "nodePort", 0, 65535, 0);
            if (np)
                drv_fmt_cut(ports + len, sizeof(ports) - len, "%s%ld:%ld/%s", len ? "," : "",
                            (long)drv_json_int_at(p, "port", 0, 65535, 0), np,
                            proto ? proto : "TCP");
            else
                drv_fmt_cut(ports + len, sizeof(ports) - len, "%s%ld/%s", len ? "," : "",
                            (long)drv_json_int_at(p, "port", 0, 65535, 0), proto ? proto : "TCP");
        }
        drv_fmt_cut(c[i++], CELL_MAX, "%s", *ports ? ports : "<none>");
        drv_fmt_cut(c[i++], CELL_MAX, "%s", a);
        break;
    }
    case DRV_KIND_ENDPOINTS:
    case DRV_KIND_ENDPOINTSLICE: {
        /* ip:port of each subset (Endpoints) or the addresses and ports (EndpointSlice). */
        char eps[CELL_MAX] = "", ports[CELL_MAX] = "";
        const cJSON *x, *y, *z;
        if (kind == DRV_KIND_ENDPOINTSLICE) {
            const char *at = drv_json_str_at(o, "addressType");
            drv_fmt_cut(c[i++], CELL_MAX, "%s", at ? at : "");
            cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(o, "ports"))
            {
                size_t len = strlen(ports);
                drv_fmt_cut(ports + len, sizeof(ports) - len, "%s%ld", len ? "," : "",
                            (long)drv_json_int_at(x, "port", 0, 65535, 0));
            }
            drv_fmt_cut(c[i++], CELL_MAX, "%s", *ports ? ports : "<unset>");
        }
        const char *outer = kind == DRV_KIND_ENDPOINTS ? "subsets" : "endpoints";
        cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(o, outer))
        {
            const cJSON *addrs = cJSON_GetObjectItemCaseSensitive(x, "addresses");
            cJSON_ArrayForEach(y, addrs)
            {
                const char *ip = cJSON_IsString(y) ? y->valuestring : drv_json_str_at(y, "ip");
                size_t len = strlen(eps);
                const cJSON *sp = cJSON_GetObjectItemCaseSensitive(x, "ports");
                if (kind == DRV_KIND_ENDPOINTS && cJSON_GetArraySize(sp)) {
                    cJSON_ArrayForEach(z, sp)
                    {
                        len = strlen(eps);
                        drv_fmt_cut(eps + len, sizeof(eps) - len, "%s%s:%ld", len ? "," : "",
                                    ip ? ip : "", (long)drv_json_int_at(z, "port", 0, 65535, 0));
                    }
                } else {
                    drv_fmt_cut(eps + len, sizeof(eps) - len, "%s%s", len ? "," : "", ip ? ip : "");
                }
            }
        }
        drv_fmt_cut(c[i++], CELL_MAX, "%s",
                    *eps                         ? eps
                    : kind == DRV_KIND_ENDPOINTS ? "<none>"
                                                 : "<unset>");
        drv_fmt_cut(c[i++], CELL_MAX, "%s", a);
        break;
    }
    case DRV_KIND_NETWORKPOLICY: {
        char sel[CELL_MAX] = "";
        const cJSON *l;
        cJSON_ArrayForEach(l, drv_json_get(drv_json_get(spec, "podSelector"), "matchLabels"))
        {
            size_t len = strlen(sel);
            drv_fmt_cut(sel + len, sizeof(sel) - len, "%s%s=%s", len ? "," : "", l->string,
                        cJSON_IsString(l) ? l->valuestring : "");
        }
        drv_fmt_cut(c[i++], CELL_MAX, "%s", *sel ? sel : "<none>");
        drv_fmt_cut(c[i++], CELL_MAX, "%s", a);
        break;
    }
    case DRV_KIND_HPA: {
        drv_fmt_cut(c[i++], CELL_MAX, "%s/%s",
                    drv_json_str_at(o, "spec.scaleTargetRef.kind")
                        ? drv_json_str_at(o, "spec.scaleTargetRef.kind")
                        : "Deployment",
                    drv_json_str_at(o, "spec.scaleTargetRef.name")
                        ? drv_json_str_at(o, "spec.scaleTargetRef.name")
                        : "");
        hpa_targets(o, c[i++], CELL_MAX);
        drv_fmt_cut(c[i++], CELL_MAX, "%ld",
                    (long)drv_json_int_at(o, "spec.minReplicas", 0, INT32_MAX, 1));
        drv_fmt_cut(c[i++], CELL_MAX, "%ld",
                    (long)drv_json_int_at(o, "spec.maxReplicas", 0, INT32_MAX, 0));
        drv_fmt_cut(c[i++], CELL_MAX, "%ld",
                    (long)drv_json_int_at(o, "status.currentReplicas", 0, INT32_MAX, 0));
        drv_fmt_cut(c[i++], CELL_MAX, "%s", a);
        break;
    }
    case DRV_KIND_PVC:
    case DRV_KIND_PV: {
        const char *phase = drv_json_str_at(o, "status.phase");
        const cJSON *m, *modes_of = kind == DRV_KIND_PV ? spec : status;
        char modes[64] = "";
        cJSON_ArrayForEach(m, drv_json_get(modes_of, "accessModes"))
        {
            const char *s = cJSON_IsString(m) ? m->valuestring : "";
            size_t len = strlen(modes);
            drv_fmt_cut(modes + len, sizeof(modes) - len, "%s%s", len ? "," : "",
                        !strcmp(s, "ReadWriteOnce")      ? "RWO"
                        : !strcmp(s, "ReadOnlyMany")     ? "ROX"
                        : !strcmp(s, "ReadWriteOncePod") ? "RWOP"
                                                         : s);
        }
        const char *cls = drv_json_str(spec, "storageClassName");
        if (kind == DRV_KIND_PVC) {
            const char *cap = drv_json_str_at(o, "status.capacity.storage");
            drv_fmt_cut(c[i++], CELL_MAX, "%s", phase ? phase : "Pending");
            drv_fmt_cut(c[i++], CELL_MAX, "%s", drv_json_str_or(spec, "volumeName", ""));
            drv_fmt_cut(c[i++], CELL_MAX, "%s", cap ? cap : "");
        } else {
            const char *cap = drv_json_str_at(o, "spec.capacity.storage");
            drv_fmt_cut(c[i++], CELL_MAX, "%s", cap ? cap : "");
        }
        drv_fmt_cut(c[i++], CELL_MAX, "%s", modes);
        if (kind == DRV_KIND_PV) {
            const cJSON *ref = drv_json_get(spec, "claimRef");
            drv_fmt_cut(c[i++], CELL_MAX, "%s",
                        drv_json_str_or(spec, "persistentVolumeReclaimPolicy", ""));
            drv_fmt_cut(c[i++], CELL_MAX, "%s", phase ? phase : "Pending");
            drv_fmt_cut(c[i++], CELL_MAX, "%s%s%s", drv_json_str_or(ref, "namespace", ""),
                        ref ? "/" : "", drv_json_str_or(ref, "name", ""));
        }
        drv_fmt_cut(c[i++], CELL_MAX, "%s", cls ? cls : "<unset>");
        drv_fmt_cut(c[i++], CELL_MAX, "%s", a);
        break;
    }
    case DRV_KIND_STORAGECLASS: {
        const char *def = drv_json_str(drv_json_at(o, "metadata.annotations"),
                                       "storageclass.kubernetes.io/is-default-class");
        if (def && !strcmp(def, "true"))
            drv_fmt_cut(c[i - 1], CELL_MAX, "%s (default)", name ? name : "");
        drv_fmt_cut(c[i++], CELL_MAX, "%s", drv_json_str_or(o, "provisioner", ""));
        drv_fmt_cut(c[i++], CELL_MAX, "%s", drv_json_str_or(o, "reclaimPolicy", "Delete"));
        drv_fmt_cut(c[i++], CELL_MAX, "%s", drv_json_str_or(o, "volumeBindingMode", "Immediate"));
        drv_fmt_cut(c[i++], CELL_MAX, "%s", a);
        break;
    }
    case DRV_KIND_PRIORITYCLASS:
        drv_fmt_cut(c[i++], CELL_MAX, "%ld",
                    (long)drv_json_int_at(o, "value", INT32_MIN, INT32_MAX, 0));
        drv_fmt_cut(c[i++], CELL_MAX, "%s",
                    cJSON_IsTrue(drv_json_get(o, "globalDefault")) ? "true" : "false");
        drv_fmt_cut(c[i++], CELL_MAX, "%s", a);
        drv_fmt_cut(c[i++], CELL_MAX, "%s", drv_json_str_or(o, "preemptionPolicy", ""));
        break;
    default: { /* Event */
        const char *last = drv_json_str_at(o, "lastTimestamp");
        age(last ? last : drv_json_str_at(o, "metadata.creationTimestamp"), a, sizeof(a));
        const char *t = drv_json_str_at(o, "type"), *r = drv_json_str_at(o, "reason"),
                   *m = drv_json_str_at(o, "message");
        const char *ik = drv_json_str_at(o, "involvedObject.kind"),
                   *in = drv_json_str_at(o, "involvedObject.name");
        drv_fmt_cut(c[i++], CELL_MAX, "%s", a);
        drv_fmt_cut(c[i++], CELL_MAX, "%s", t ? t : "Normal");
        drv_fmt_cut(c[i++], CELL_MAX, "%s", r ? r : "");
        char ref[CELL_MAX];
        drv_fmt_cut(ref, sizeof(ref), "%s/%s", ik ? ik : "", in ? in : "");
        for (char *p = ref; *p && *p != '/'; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        drv_fmt_cut(c[i++], CELL_MAX, "%s", ref);
        drv_fmt_cut(c[i++], CELL_MAX, "%s", m ? m : "");
        break;
    }
    }
}

static bool table_add(table_t *t, drv_kind_t kind, bool wide, bool allns, const cJSON *o)
{
    if (t->rows == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;
        void *p = realloc(t->cells, ncap * sizeof(*t->cells));
        if (!p)
            return false;
        t->cells = p;
        t->cap = ncap;
    }
    memset(t->cells[t->rows], 0, sizeof(t->cells[0]));
    row(kind, wide, allns, o, t->cells[t->rows]);
    t->rows++;
    return true;
}

static void table_print(const table_t *t, bool head)
{
    size_t w[COLS_MAX];
    for (int c = 0; c < t->ncols; c++) {
        w[c] = strlen(t->head[c]);
        for (size_t r = 0; r < t->rows; r++)
            if (strlen(t->cells[r][c]) > w[c])
                w[c] = strlen(t->cells[r][c]);
    }
    if (head)
        for (int c = 0; c < t->ncols; c++)
            printf("%-*s%s", c + 1 < t->ncols ? (int)w[c] : 0, t->head[c],
                   c + 1 < t->ncols ? "   " : "\n");
    for (size_t r = 0; r < t->rows; r++)
        for (int c = 0; c < t->ncols; c++)
            printf("%-*s%s", c + 1 < t->ncols ? (int)w[c] : 0, t->cells[r][c],
                   c + 1 < t->ncols ? "   " : "\n");
}

static int print_doc(const cJSON *o, bool yaml)
{
    if (yaml) {
        drv_buf_t out = DRV_BUF_INIT(OUT_MAX);
        drv_error_t err = DRV_ERROR_INIT;
        if (drv_doc_emit_yaml(o, &out, &err) != DRV_OK) {
            fprintf(stderr, "drover: cannot print YAML: %s\n", drv_error_msg(&err));
            drv_buf_free(&out);
            return 1;
        }
        fwrite(out.data, 1, out.len, stdout);
        drv_buf_free(&out);
    } else {
        char *s = cJSON_Print(o);
        if (!s) {
            fprintf(stderr, "drover: out of memory\n");
            return 1;
        }
        puts(s);
        free(s);
    }
    return 0;
}

typedef struct watch_ctx {
    drv_kind_t kind;
    bool wide, allns;
    out_t out;
    table_t t;
    bool header_done;
} watch_ctx_t;

static bool on_event(const char *type, cJSON *obj, void *ctx)
{
    watch_ctx_t *w = ctx;
    (void)type;
    if (w->out == OUT_JSON || w->out == OUT_YAML) {
        if (w->out == OUT_YAML)
            puts("---");
        print_doc(obj, w->out == OUT_YAML);
    } else {
        w->t.rows = 0;
        if (!table_add(&w->t, w->kind, w->wide, w->allns, obj))
            return false;
        table_print(&w->t, !w->header_done);
        w->header_done = true;
    }
    fflush(stdout);
    return true;
}

static int get_usage(void)
{
    fprintf(stderr, "usage: drover get KIND [NAME] [-n NS | -A] [-l SELECTOR] "
                    "[--field-selector SEL] [-o wide|json|yaml|name] [-w] [--hub URL]\n");
    return 2;
}

static bool build_query(char *q, size_t qsz, const char *lsel, const char *fsel, bool watch,
                        const char *rv)
{
    char e[1024];
    size_t len = 0;
    q[0] = '\0';
    const char *keys[] = {"labelSelector", "fieldSelector", "resourceVersion"};
    const char *vals[] = {lsel, fsel, rv};
    for (int i = 0; i < 3; i++) {
        if (!vals[i] || !*vals[i])
            continue;
        if (!drv_cli_escape(vals[i], e, sizeof(e)))
            return false;
        int n = snprintf(q + len, qsz - len, "%c%s=%s", len ? '&' : '?', keys[i], e);
        if (n < 0 || (size_t)n >= qsz - len)
            return false;
        len += (size_t)n;
    }
    if (watch) {
        int n = snprintf(q + len, qsz - len, "%cwatch=1", len ? '&' : '?');
        if (n < 0 || (size_t)n >= qsz - len)
            return false;
    }
    return true;
}

int drv_cli_get(int argc, char **argv)
{
    const char *ns = NULL, *lsel = NULL, *fsel = NULL;
    bool allns = false, watch = false;
    out_t out = OUT_TABLE;
    static const struct option opts[] = {{"namespace", required_argument, NULL, 'n'},
                                         {"all-namespaces", no_argument, NULL, 'A'},
                                         {"selector", required_argument, NULL, 'l'},
                                         {"field-selector", required_argument, NULL, 'F'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"watch", no_argument, NULL, 'w'},
                                         {"hub", required_argument, NULL, 'H'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:Al:o:wh", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            ns = optarg;
            break;
        case 'A':
            allns = true;
            break;
        case 'l':
            lsel = optarg;
            break;
        case 'F':
            fsel = optarg;
            break;
        case 'w':
            watch = true;
            break;
        case 'H':
            drv_cli_hub_set(optarg);
            break;
        case 'o':
            if (!strcmp(optarg, "wide"))
                out = OUT_WIDE;
            else if (!strcmp(optarg, "json"))
                out = OUT_JSON;
            else if (!strcmp(optarg, "yaml"))
                out = OUT_YAML;
            else if (!strcmp(optarg, "name"))
                out = OUT_NAME;
            else {
                fprintf(stderr, "drover get: -o must be wide, json, yaml or name, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        default:
            return get_usage();
        }
    }
    if (argc - optind < 1 || argc - optind > 2)
        return get_usage();
    drv_kind_t kind = drv_kind_parse(argv[optind]);
    if (kind == DRV_KIND_UNKNOWN) {
        fprintf(stderr,
                "drover: the server doesn't have a resource type \"%s\" (known: pods, "
                "deployments, daemonsets, configmaps, secrets, services, nodes, events)\n",
                argv[optind]);
        return 1;
    }
    const char *name = argc - optind == 2 ? argv[optind + 1] : NULL;
    if (allns && name) {
        fprintf(stderr, "drover get: a name cannot be combined with --all-namespaces\n");
        return 2;
    }
    const char *usens = allns ? NULL : ns ? ns : "default";
    char path[PATH_MAX_LEN], q[2048];
    if (!drv_cli_path(kind, usens, name, path, sizeof(path)) ||
        !build_query(q, sizeof(q), lsel, fsel, false, NULL)) {
        fprintf(stderr, "drover get: name, namespace or selector too long\n");
        return 2;
    }
    size_t plen = strlen(path);
    if (drv_fmt(path + plen, sizeof(path) - plen, "%s", name ? "" : q) != DRV_OK) {
        fprintf(stderr, "drover get: name, namespace or selector too long\n");
        return 2;
    }
    drv_cli_resp_t resp;
    if (drv_cli_request("GET", path, NULL, NULL, &resp))
        return 1;
    if (resp.status != 200 || !cJSON_IsObject(resp.json)) {
        drv_cli_print_status(&resp);
        drv_cli_resp_free(&resp);
        return 1;
    }
    int rc = 0;
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(resp.json, "items");
    bool wide = out == OUT_WIDE;
    if (out == OUT_JSON || out == OUT_YAML) {
        rc = print_doc(resp.json, out == OUT_YAML);
    } else if (out == OUT_NAME) {
        const cJSON *o;
        if (name)
            printf("%s/%s\n", drv_cli_kind_ref(kind), name);
        else
            cJSON_ArrayForEach(o, items)
                printf("%s/%s\n", drv_cli_kind_ref(kind), drv_json_str_at(o, "metadata.name"));
    } else {
        table_t t = {0};
        headers(kind, wide, allns, &t);
        if (name) {
            rc = table_add(&t, kind, wide, allns, resp.json) ? 0 : 1;
        } else {
            const cJSON *o;
            cJSON_ArrayForEach(o, items) if (!table_add(&t, kind, wide, allns, o)) rc = 1;
        }
        if (!t.rows && !watch) {
            if (allns)
                fprintf(stderr, "No resources found\n");
            else if (drv_cli_namespaced(kind))
                fprintf(stderr, "No resources found in %s namespace.\n", usens);
            else
                fprintf(stderr, "No resources found\n");
        } else {
            table_print(&t, true);
        }
        free(t.cells);
    }
    fflush(stdout);
    if (!watch || rc) {
        drv_cli_resp_free(&resp);
        return rc;
    }
    /* Watch from the listed version: only later changes arrive. */
    const char *rv = name ? drv_json_str_at(resp.json, "metadata.resourceVersion")
                          : drv_json_str_at(resp.json, "metadata.resourceVersion");
    char rvs[64] = "";
    if (rv && drv_fmt(rvs, sizeof(rvs), "%s", rv) != DRV_OK) {
        fprintf(stderr, "drover get: the hub's resourceVersion is too long to watch from\n");
        drv_cli_resp_free(&resp);
        return 1;
    }
    drv_cli_resp_free(&resp);
    char fbuf[600];
    if (name) {
        if (drv_fmt(fbuf, sizeof(fbuf), "metadata.name=%s", name) != DRV_OK) {
            fprintf(stderr, "drover get: name too long\n");
            return 2;
        }
        fsel = fbuf;
    }
    if (!drv_cli_path(kind, usens, NULL, path, sizeof(path)) ||
        !build_query(q, sizeof(q), lsel, fsel, true, rvs)) {
        fprintf(stderr, "drover get: selector too long\n");
        return 2;
    }
    plen = strlen(path);
    if (drv_fmt(path + plen, sizeof(path) - plen, "%s", q) != DRV_OK) {
        fprintf(stderr, "drover get: selector too long\n");
        return 2;
    }
    watch_ctx_t w = {.kind = kind, .wide = wide, .allns = allns, .out = out, .header_done = true};
    headers(kind, wide, allns, &w.t);
    rc = drv_cli_watch(path, on_event, &w);
    free(w.t.cells);
    return rc;
}

int drv_cli_describe(int argc, char **argv)
{
    const char *ns = NULL;
    static const struct option opts[] = {{"namespace", required_argument, NULL, 'n'},
                                         {"hub", required_argument, NULL, 'H'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            ns = optarg;
            break;
        case 'H':
            drv_cli_hub_set(optarg);
            break;
        default:
            fprintf(stderr, "usage: drover describe KIND NAME [-n NS] [--hub URL]\n");
            return 2;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "usage: drover describe KIND NAME [-n NS] [--hub URL]\n");
        return 2;
    }
    drv_kind_t kind = drv_kind_parse(argv[optind]);
    if (kind == DRV_KIND_UNKNOWN) {
        fprintf(stderr, "drover: the server doesn't have a resource type \"%s\"\n", argv[optind]);
        return 1;
    }
    const char *name = argv[optind + 1];
    const char *usens = ns ? ns : "default";
    char path[PATH_MAX_LEN];
    if (!drv_cli_path(kind, usens, name, path, sizeof(path))) {
        fprintf(stderr, "drover describe: name too long\n");
        return 2;
    }
    drv_cli_resp_t resp;
    if (drv_cli_request("GET", path, NULL, NULL, &resp))
        return 1;
    if (resp.status != 200 || !cJSON_IsObject(resp.json)) {
        drv_cli_print_status(&resp);
        drv_cli_resp_free(&resp);
        return 1;
    }
    if (kind == DRV_KIND_SECRET) {
        /* As kubectl describe does: sizes, not the secret values. */
        cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(resp.json, "data"))
        {
            char sz[64];
            drv_fmt_cut(sz, sizeof(sz), "<%zu bytes, base64>",
                        cJSON_IsString(d) ? strlen(d->valuestring) : (size_t)0);
            if (cJSON_IsString(d) && !cJSON_SetValuestring(d, sz)) {
                fprintf(stderr, "drover: out of memory\n");
                drv_cli_resp_free(&resp);
                return 1;
            }
        }
    }
    int rc = print_doc(resp.json, true);
    drv_cli_resp_free(&resp);
    /* Events about it: in its namespace (nodes: all namespaces). */
    char fsel[700], q[2048];
    if (drv_fmt(fsel, sizeof(fsel), "involvedObject.name=%s,involvedObject.kind=%s", name,
                drv_kind_name(kind)) != DRV_OK) {
        fprintf(stderr, "drover describe: name too long to look up its events\n");
        return 1;
    }
    if (!drv_cli_path(DRV_KIND_EVENT, kind == DRV_KIND_NODE ? NULL : usens, NULL, path,
                      sizeof(path)) ||
        !build_query(q, sizeof(q), NULL, fsel, false, NULL))
        return 1;
    size_t plen = strlen(path);
    if (drv_fmt(path + plen, sizeof(path) - plen, "%s", q) != DRV_OK) {
        fprintf(stderr, "drover describe: events query too long\n");
        return 1;
    }
    if (drv_cli_request("GET", path, NULL, NULL, &resp))
        return 1;
    if (resp.status != 200) {
        drv_cli_print_status(&resp);
        drv_cli_resp_free(&resp);
        return 1;
    }
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(resp.json, "items");
    if (!cJSON_GetArraySize(items)) {
        printf("Events: <none>\n");
    } else {
        printf("Events:\n");
        table_t t = {0};
        headers(DRV_KIND_EVENT, false, false, &t);
        const cJSON *o;
        cJSON_ArrayForEach(o, items) if (!table_add(&t, DRV_KIND_EVENT, false, false, o)) rc = 1;
        table_print(&t, true);
        free(t.cells);
    }
    drv_cli_resp_free(&resp);
    return rc;
}
