/* Server-side tables (meta.k8s.io Table): the columns and cells `kubectl get` prints, rendered
 * by the hub as the Kubernetes apiserver's printers render them, and the Accept negotiation
 * that asks for them. Columns are keyed by kind name, so a kind the model gains later
 * ("Namespace", "ReplicaSet") is rendered as soon as its objects reach here. */
#include "api/api_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctrl/ctrl.h"
#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/proc.h"

#define CELL_MAX 1024 /* one text cell; longer ones are cut with "..." (people read them) */

typedef struct col {
    const char *name, *type, *format, *desc;
    int priority; /* 1: shown by `kubectl get -o wide` only */
} col_t;

/* Appends obj's cells, one per column, to cells; false only when out of memory. */
typedef bool (*cells_fn)(const cJSON *obj, int64_t now_ms, cJSON *cells);

typedef struct printer {
    const char *kind;
    const col_t *cols;
    size_t ncols;
    cells_fn cells;
} printer_t;

/* ---- cells ---- */

static bool add_str(cJSON *cells, const char *s)
{
    return cJSON_AddItemToArray(cells, cJSON_CreateString(s ? s : ""));
}

static bool add_int(cJSON *cells, int64_t v)
{
    return cJSON_AddItemToArray(cells, cJSON_CreateNumber((double)v));
}

/* A non-empty string member or dflt. */
static const char *str_or(const cJSON *obj, const char *key, const char *dflt)
{
    const char *s = drv_json_str(obj, key);
    return s && *s ? s : dflt;
}

/* Kubernetes' short duration ("45s", "3m2s", "4h", "2d3h", "3y20d") for ms. */
static void human_duration(int64_t ms, char *out, size_t outsz)
{
    int64_t secs = ms / 1000;
    if (secs < -1) {
        drv_fmt_cut(out, outsz, "<invalid>");
        return;
    }
    if (secs < 0) {
        drv_fmt_cut(out, outsz, "0s");
        return;
    }
    if (secs < 120) {
        drv_fmt_cut(out, outsz, "%llds", (long long)secs);
        return;
    }
    int64_t mins = secs / 60;
    if (mins < 10) {
        if (secs % 60)
            drv_fmt_cut(out, outsz, "%lldm%llds", (long long)mins, (long long)(secs % 60));
        else
            drv_fmt_cut(out, outsz, "%lldm", (long long)mins);
        return;
    }
    if (mins < 180) {
        drv_fmt_cut(out, outsz, "%lldm", (long long)mins);
        return;
    }
    int64_t hours = secs / 3600;
    if (hours < 8) {
        if (mins % 60)
            drv_fmt_cut(out, outsz, "%lldh%lldm", (long long)hours, (long long)(mins % 60));
        else
            drv_fmt_cut(out, outsz, "%lldh", (long long)hours);
        return;
    }
    if (hours < 48) {
        drv_fmt_cut(out, outsz, "%lldh", (long long)hours);
        return;
    }
    int64_t days = hours / 24;
    if (hours < 24 * 8) {
        if (hours % 24)
            drv_fmt_cut(out, outsz, "%lldd%lldh", (long long)days, (long long)(hours % 24));
        else
            drv_fmt_cut(out, outsz, "%lldd", (long long)days);
        return;
    }
    if (hours < 24 * 365 * 2) {
        drv_fmt_cut(out, outsz, "%lldd", (long long)days);
        return;
    }
    if (hours < 24 * 365 * 8) {
        if (days % 365)
            drv_fmt_cut(out, outsz, "%lldy%lldd", (long long)(days / 365), (long long)(days % 365));
        else
            drv_fmt_cut(out, outsz, "%lldy", (long long)(days / 365));
        return;
    }
    drv_fmt_cut(out, outsz, "%lldy", (long long)(days / 365));
}

/* The age of an RFC 3339 timestamp at now_ms; "<unknown>" when absent or malformed. */
static void since(const char *ts, int64_t now_ms, char *out, size_t outsz)
{
    int64_t t = drv_ctrl_time_parse(ts);
    if (t < 0)
        drv_fmt_cut(out, outsz, "<unknown>");
    else
        human_duration(now_ms - t, out, outsz);
}

static bool add_age(cJSON *cells, const cJSON *obj, int64_t now_ms)
{
    char age[32];
    since(drv_json_str_at(obj, "metadata.creationTimestamp"), now_ms, age, sizeof(age));
    return add_str(cells, age);
}

/* A bounded text cell built piece by piece. */
typedef struct text {
    char s[CELL_MAX];
    size_t len;
} text_t;

static void text_add(text_t *t, const char *sep, const char *s)
{
    if (t->len && sep)
        drv_fmt_cut(t->s + t->len, sizeof(t->s) - t->len, "%s%s", sep, s);
    else
        drv_fmt_cut(t->s + t->len, sizeof(t->s) - t->len, "%s", s);
    t->len = strlen(t->s);
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A label map as "k=v,k2=v2" in key order, "<none>" when empty (labels.FormatLabels). */
static void format_labels(const cJSON *map, text_t *t)
{
    const char *keys[128];
    size_t n = 0;
    for (const cJSON *e = cJSON_IsObject(map) ? map->child : NULL; e && n < 128; e = e->next)
        if (cJSON_IsString(e))
            keys[n++] = e->string;
    qsort(keys, n, sizeof(keys[0]), cmp_strp);
    t->len = 0;
    t->s[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char kv[512];
        drv_fmt_cut(kv, sizeof(kv), "%s=%s", keys[i], drv_json_str(map, keys[i]));
        text_add(t, ",", kv);
    }
    if (!n)
        text_add(t, NULL, "<none>");
}

typedef struct req {
    const char *key;
    char text[512];
} req_t;

static int cmp_req(const void *a, const void *b)
{
    return strcmp(((const req_t *)a)->key, ((const req_t *)b)->key);
}

/* A LabelSelector as Kubernetes writes it: requirements sorted by key, "k=v", "k in (a,b)",
 * "k notin (a)", "k", "!k"; "" for an empty or absent selector. */
static void format_selector(const cJSON *sel, text_t *t)
{
    req_t reqs[64];
    size_t n = 0;
    const cJSON *ml = drv_json_get(sel, "matchLabels");
    for (const cJSON *e = cJSON_IsObject(ml) ? ml->child : NULL; e && n < 64; e = e->next) {
        reqs[n].key = e->string;
        drv_fmt_cut(reqs[n].text, sizeof(reqs[n].text), "%s=%s", e->string,
                    cJSON_IsString(e) ? e->valuestring : "");
        n++;
    }
    const cJSON *ex;
    cJSON_ArrayForEach(ex, drv_json_get(sel, "matchExpressions"))
    {
        if (n >= 64)
            break;
        const char *key = drv_json_str_or(ex, "key", ""), *op = drv_json_str_or(ex, "operator", "");
        const char *vals[32];
        size_t nv = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, drv_json_get(ex, "values"))
        {
            if (cJSON_IsString(v) && nv < 32)
                vals[nv++] = v->valuestring;
        }
        qsort(vals, nv, sizeof(vals[0]), cmp_strp);
        text_t list = {.len = 0};
        for (size_t i = 0; i < nv; i++)
            text_add(&list, ",", vals[i]);
        reqs[n].key = key;
        if (!strcmp(op, "In"))
            drv_fmt_cut(reqs[n].text, sizeof(reqs[n].text), "%s in (%s)", key, list.s);
        else if (!strcmp(op, "NotIn"))
            drv_fmt_cut(reqs[n].text, sizeof(reqs[n].text), "%s notin (%s)", key, list.s);
        else if (!strcmp(op, "DoesNotExist"))
            drv_fmt_cut(reqs[n].text, sizeof(reqs[n].text), "!%s", key);
        else
            drv_fmt_cut(reqs[n].text, sizeof(reqs[n].text), "%s", key);
        n++;
    }
    qsort(reqs, n, sizeof(reqs[0]), cmp_req);
    t->len = 0;
    t->s[0] = '\0';
    for (size_t i = 0; i < n; i++)
        text_add(t, ",", reqs[i].text);
}

/* The CONTAINERS, IMAGES and SELECTOR cells of a workload (template at spec.template). */
static bool add_workload_wide(cJSON *cells, const cJSON *obj)
{
    text_t names = {.len = 0}, images = {.len = 0}, sel = {.len = 0};
    const cJSON *c;
    bool first = true;
    cJSON_ArrayForEach(c, drv_json_at(obj, "spec.template.spec.containers"))
    {
        if (!first) { /* "," between entries, even around an empty one, as Kubernetes joins */
            text_add(&names, NULL, ",");
            text_add(&images, NULL, ",");
        }
        first = false;
        text_add(&names, NULL, drv_json_str_or(c, "name", ""));
        text_add(&images, NULL, drv_json_str_or(c, "image", ""));
    }
    format_selector(drv_json_at(obj, "spec.selector"), &sel);
    return add_str(cells, names.s) && add_str(cells, images.s) && add_str(cells, sel.s);
}

/* ---- columns ---- */

#define NAME_COL                                                                                   \
    {                                                                                              \
        "Name", "string", "name", "Name of the object, unique in its namespace.", 0                \
    }
#define AGE_COL                                                                                    \
    {                                                                                              \
        "Age", "string", "", "Time since the object was created.", 0                               \
    }
#define WORKLOAD_WIDE_COLS                                                                         \
    {"Containers", "string", "", "Names of the containers in the pod template.", 1},               \
        {"Images", "string", "", "Images of the containers in the pod template.", 1},              \
    {                                                                                              \
        "Selector", "string", "", "Label selector of the pods this object manages.", 1             \
    }

static const col_t pod_cols[] = {
    NAME_COL,
    {"Ready", "string", "", "Ready containers of all the pod's containers.", 0},
    {"Status", "string", "", "The pod's state, summed up from its containers.", 0},
    {"Restarts", "string", "", "Container restarts, and how long ago the last one was.", 0},
    AGE_COL,
    {"IP", "string", "", "The pod's IP address.", 1},
    {"Node", "string", "", "The node the pod is bound to.", 1},
    {"Nominated Node", "string", "", "The node preemption nominated for the pod.", 1},
    {"Readiness Gates", "string", "", "Readiness gates that are met, of all.", 1},
};

static const col_t deploy_cols[] = {
    NAME_COL,
    {"Ready", "string", "", "Ready pods of the desired replicas.", 0},
    {"Up-to-date", "string", "", "Pods that run the current pod template.", 0},
    {"Available", "string", "", "Pods ready for at least minReadySeconds.", 0},
    AGE_COL,
    WORKLOAD_WIDE_COLS,
};

static const col_t rs_cols[] = {
    NAME_COL,
    {"Desired", "integer", "", "Replicas asked for.", 0},
    {"Current", "integer", "", "Replicas that exist.", 0},
    {"Ready", "integer", "", "Replicas that are ready.", 0},
    AGE_COL,
    WORKLOAD_WIDE_COLS,
};

static const col_t ds_cols[] = {
    NAME_COL,
    {"Desired", "integer", "", "Nodes that should run the daemon pod.", 0},
    {"Current", "integer", "", "Nodes that run at least one daemon pod.", 0},
    {"Ready", "integer", "", "Nodes whose daemon pod is ready.", 0},
    {"Up-to-date", "integer", "", "Nodes that run the current pod template.", 0},
    {"Available", "integer", "", "Nodes whose daemon pod is available.", 0},
    {"Node Selector", "string", "", "Labels a node must have to run the pod.", 0},
    AGE_COL,
    WORKLOAD_WIDE_COLS,
};

static const col_t cr_cols[] = {
    NAME_COL,
    {"Controller", "string", "", "The object whose history this is (kind.group/name).", 0},
    {"Revision", "integer", "", "The revision's number.", 0},
    AGE_COL,
};

static const col_t svc_cols[] = {
    NAME_COL,
    {"Type", "string", "", "How the service is exposed.", 0},
    {"Cluster-IP", "string", "", "The service's virtual IP address.", 0},
    {"External-IP", "string", "", "Addresses the service is reached at from outside.", 0},
    {"Port(s)", "string", "", "The service's ports.", 0},
    AGE_COL,
    {"Selector", "string", "", "Labels of the pods traffic goes to.", 1},
};

static const col_t ep_cols[] = {
    NAME_COL,
    {"Endpoints", "string", "", "The addresses and ports traffic goes to.", 0},
    AGE_COL,
};

static const col_t eps_cols[] = {
    NAME_COL,
    {"AddressType", "string", "", "The type of the addresses (IPv4).", 0},
    {"Ports", "string", "", "The ports of the endpoints.", 0},
    {"Endpoints", "string", "", "The endpoints' addresses.", 0},
    AGE_COL,
};

static const col_t netpol_cols[] = {
    NAME_COL,
    {"Pod-Selector", "string", "", "The pods the policy applies to.", 0},
    AGE_COL,
};

static const col_t pvc_cols[] = {
    NAME_COL,
    {"Status", "string", "", "Pending, Bound or Lost.", 0},
    {"Volume", "string", "", "The PersistentVolume the claim is bound to.", 0},
    {"Capacity", "string", "", "The size of the bound volume.", 0},
    {"Access Modes", "string", "", "RWO, ROX, RWOP.", 0},
    {"StorageClass", "string", "", "The claim's class.", 0},
    {"VolumeAttributesClass", "string", "", "Unused by Drover.", 0},
    AGE_COL,
    {"VolumeMode", "string", "", "Filesystem.", 1},
};

static const col_t pv_cols[] = {
    NAME_COL,
    {"Capacity", "string", "", "The volume's size.", 0},
    {"Access Modes", "string", "", "RWO, ROX, RWOP.", 0},
    {"Reclaim Policy", "string", "", "Delete or Retain, once its claim is gone.", 0},
    {"Status", "string", "", "Available, Bound, Released or Failed.", 0},
    {"Claim", "string", "", "The claim bound to it, namespace/name.", 0},
    {"StorageClass", "string", "", "The volume's class.", 0},
    {"VolumeAttributesClass", "string", "", "Unused by Drover.", 0},
    {"Reason", "string", "", "Why the volume is in its phase.", 0},
    AGE_COL,
    {"VolumeMode", "string", "", "Filesystem.", 1},
};

static const col_t sc_cols[] = {
    NAME_COL,
    {"Provisioner", "string", "", "Who makes the class's volumes.", 0},
    {"ReclaimPolicy", "string", "", "What happens to a volume once its claim is gone.", 0},
    {"VolumeBindingMode", "string", "", "Immediate or WaitForFirstConsumer.", 0},
    {"AllowVolumeExpansion", "string", "", "Whether volumes may grow.", 0},
    AGE_COL,
};

static const col_t node_cols[] = {
    NAME_COL,
    {"Status", "string", "", "The node's readiness, and whether it takes new pods.", 0},
    {"Roles", "string", "", "The node's roles (node-role.kubernetes.io labels).", 0},
    AGE_COL,
    {"Version", "string", "", "The node agent's version.", 0},
    {"Internal-IP", "string", "", "The node's internal address.", 1},
    {"External-IP", "string", "", "The node's external address.", 1},
    {"OS-Image", "string", "", "The node's operating system.", 1},
    {"Kernel-Version", "string", "", "The node's kernel version.", 1},
    {"Container-Runtime", "string", "", "The node's container runtime and version.", 1},
};

static const col_t cm_cols[] = {
    NAME_COL,
    {"Data", "string", "", "Number of data entries.", 0},
    AGE_COL,
};

static const col_t secret_cols[] = {
    NAME_COL,
    {"Type", "string", "", "The secret's type.", 0},
    {"Data", "string", "", "Number of data entries.", 0},
    AGE_COL,
};

static const col_t ns_cols[] = {
    NAME_COL,
    {"Status", "string", "", "The namespace's phase.", 0},
    AGE_COL,
};

static const col_t pc_cols[] = {
    NAME_COL,
    {"Value", "integer", "", "The priority of the class's Pods.", 0},
    {"Global-Default", "boolean", "", "Whether Pods without a class get this one.", 0},
    AGE_COL,
    {"PreemptionPolicy", "string", "", "What the class's Pods may do to lower ones.", 0},
};

static const col_t event_cols[] = {
    {"Last Seen", "string", "", "Time since the event was last seen.", 0},
    {"Type", "string", "", "Normal or Warning.", 0},
    {"Reason", "string", "", "Why the event happened, in one word.", 0},
    {"Object", "string", "", "The object the event is about.", 0},
    {"Subobject", "string", "", "The part of the object the event is about.", 1},
    {"Source", "string", "", "The component that reported the event.", 1},
    {"Message", "string", "", "What happened.", 0},
    {"First Seen", "string", "", "Time since the event was first seen.", 1},
    {"Count", "string", "", "How many times the event happened.", 1},
    {"Name", "string", "name", "Name of the event.", 1},
};

static const col_t hpa_cols[] = {
    NAME_COL,
    {"Reference", "string", "", "The object whose replicas are scaled.", 0},
    {"Targets", "string", "", "Current and target values of the metrics.", 0},
    {"MinPods", "string", "", "Fewest replicas.", 0},
    {"MaxPods", "string", "", "Most replicas.", 0},
    {"Replicas", "string", "", "Replicas now.", 0},
    AGE_COL,
};

/* ---- Pod ---- */

static bool cond_true(const cJSON *conds, const char *type)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, conds)
    {
        const char *t = drv_json_str(c, "type");
        if (t && !strcmp(t, type))
            return !strcmp(drv_json_str_or(c, "status", ""), "True");
    }
    return false;
}

/* A restartable init container (a sidecar: restartPolicy Always). */
static bool is_sidecar(const cJSON *spec, const char *name)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, drv_json_get(spec, "initContainers"))
    {
        const char *n = drv_json_str(c, "name");
        if (n && name && !strcmp(n, name))
            return !strcmp(drv_json_str_or(c, "restartPolicy", ""), "Always");
    }
    return false;
}

static void later(const cJSON *cs, int64_t *last)
{
    int64_t t = drv_ctrl_time_parse(drv_json_str_at(cs, "lastState.terminated.finishedAt"));
    if (t > *last)
        *last = t;
}

static void terminated_reason(const cJSON *term, const char *prefix, char *out, size_t outsz)
{
    const char *r = drv_json_str(term, "reason");
    int64_t sig = drv_json_int_or(term, "signal", 0);
    if (r && *r)
        drv_fmt_cut(out, outsz, "%s%s", prefix, r);
    else if (sig)
        drv_fmt_cut(out, outsz, "%sSignal:%lld", prefix, (long long)sig);
    else
        drv_fmt_cut(out, outsz, "%sExitCode:%lld", prefix,
                    (long long)drv_json_int_or(term, "exitCode", 0));
}

static bool pod_cells(const cJSON *pod, int64_t now_ms, cJSON *cells)
{
    const cJSON *spec = drv_json_get(pod, "spec"), *st = drv_json_get(pod, "status");
    const cJSON *conds = drv_json_get(st, "conditions");
    const char *phase = drv_json_str_or(st, "phase", "");
    char reason[256];
    drv_fmt_cut(reason, sizeof(reason), "%s", str_or(st, "reason", phase));
    const cJSON *c;
    cJSON_ArrayForEach(c, conds)
    {
        if (!strcmp(drv_json_str_or(c, "type", ""), "PodScheduled") &&
            !strcmp(drv_json_str_or(c, "reason", ""), "SchedulingGated"))
            drv_fmt_cut(reason, sizeof(reason), "SchedulingGated");
    }
    int64_t total = (int64_t)drv_json_array_len(drv_json_get(spec, "containers"));
    int64_t ninit = (int64_t)drv_json_array_len(drv_json_get(spec, "initContainers"));
    cJSON_ArrayForEach(c, drv_json_get(spec, "initContainers"))
    {
        if (!strcmp(drv_json_str_or(c, "restartPolicy", ""), "Always"))
            total++;
    }
    int64_t restarts = 0, side_restarts = 0, ready = 0, last = -1, side_last = -1, i = 0;
    bool initializing = false;
    cJSON_ArrayForEach(c, drv_json_get(st, "initContainerStatuses"))
    {
        int64_t idx = i++;
        int64_t rc = drv_json_int_or(c, "restartCount", 0);
        restarts += rc;
        later(c, &last);
        bool side = is_sidecar(spec, drv_json_str(c, "name"));
        if (side) {
            side_restarts += rc;
            later(c, &side_last);
        }
        const cJSON *term = drv_json_at(c, "state.terminated");
        const char *wait = drv_json_str_at(c, "state.waiting.reason");
        if (term && drv_json_int_or(term, "exitCode", -1) == 0)
            continue;
        if (side && drv_json_true(c, "started")) {
            if (drv_json_true(c, "ready"))
                ready++;
            continue;
        }
        if (term)
            terminated_reason(term, "Init:", reason, sizeof(reason));
        else if (wait && *wait && strcmp(wait, "PodInitializing"))
            drv_fmt_cut(reason, sizeof(reason), "Init:%s", wait);
        else
            drv_fmt_cut(reason, sizeof(reason), "Init:%lld/%lld", (long long)idx, (long long)ninit);
        initializing = true;
        break;
    }
    if (!initializing || cond_true(conds, "Initialized")) {
        restarts = side_restarts;
        last = side_last;
        bool running = false;
        const cJSON *list = drv_json_get(st, "containerStatuses");
        for (int n = cJSON_GetArraySize(list) - 1; n >= 0; n--) {
            c = cJSON_GetArrayItem(list, n);
            restarts += drv_json_int_or(c, "restartCount", 0);
            later(c, &last);
            const cJSON *term = drv_json_at(c, "state.terminated");
            const char *wait = drv_json_str_at(c, "state.waiting.reason");
            if (wait && *wait) {
                drv_fmt_cut(reason, sizeof(reason), "%s", wait);
            } else if (term) {
                terminated_reason(term, "", reason, sizeof(reason));
            } else if (drv_json_true(c, "ready") && drv_json_at(c, "state.running")) {
                running = true;
                ready++;
            }
        }
        if (!strcmp(reason, "Completed") && running)
            drv_fmt_cut(reason, sizeof(reason), "%s",
                        cond_true(conds, "Ready") ? "Running" : "NotReady");
    }
    if (drv_json_str_at(pod, "metadata.deletionTimestamp")) {
        if (!strcmp(drv_json_str_or(st, "reason", ""), "NodeLost"))
            drv_fmt_cut(reason, sizeof(reason), "Unknown");
        else if (strcmp(phase, "Succeeded") && strcmp(phase, "Failed"))
            drv_fmt_cut(reason, sizeof(reason), "Terminating");
    }
    char readys[48], rs[64];
    drv_fmt_cut(readys, sizeof(readys), "%lld/%lld", (long long)ready, (long long)total);
    if (restarts && last >= 0) {
        char ago[32];
        human_duration(now_ms - last, ago, sizeof(ago));
        drv_fmt_cut(rs, sizeof(rs), "%lld (%s ago)", (long long)restarts, ago);
    } else {
        drv_fmt_cut(rs, sizeof(rs), "%lld", (long long)restarts);
    }
    const char *ip = drv_json_str(cJSON_GetArrayItem(drv_json_get(st, "podIPs"), 0), "ip");
    if (!ip || !*ip)
        ip = str_or(st, "podIP", "<none>");
    char gates[48] = "<none>";
    size_t ngates = drv_json_array_len(drv_json_get(spec, "readinessGates"));
    if (ngates) {
        size_t met = 0;
        cJSON_ArrayForEach(c, drv_json_get(spec, "readinessGates"))
        {
            met += cond_true(conds, drv_json_str_or(c, "conditionType", ""));
        }
        drv_fmt_cut(gates, sizeof(gates), "%zu/%zu", met, ngates);
    }
    return add_str(cells, drv_json_str_at(pod, "metadata.name")) && add_str(cells, readys) &&
           add_str(cells, reason) && add_str(cells, rs) && add_age(cells, pod, now_ms) &&
           add_str(cells, ip) && add_str(cells, str_or(spec, "nodeName", "<none>")) &&
           add_str(cells, str_or(st, "nominatedNodeName", "<none>")) && add_str(cells, gates);
}

/* A pod that ran to its end: Kubernetes marks its row Completed (kubectl may hide it). */
static bool pod_conditions(const cJSON *pod, cJSON *row)
{
    const char *phase = drv_json_str_at(pod, "status.phase");
    bool ok = phase && !strcmp(phase, "Succeeded");
    if (!ok && !(phase && !strcmp(phase, "Failed")))
        return true;
    cJSON *conds = cJSON_AddArrayToObject(row, "conditions");
    cJSON *c = cJSON_CreateObject();
    if (!conds || !cJSON_AddItemToArray(conds, c) ||
        !cJSON_AddStringToObject(c, "type", "Completed") ||
        !cJSON_AddStringToObject(c, "status", "True") ||
        !cJSON_AddStringToObject(c, "reason", ok ? "Succeeded" : "Failed") ||
        !cJSON_AddStringToObject(c, "message",
                                 ok ? "The pod has completed successfully." : "The pod failed."))
        return false;
    return true;
}

/* ---- workloads ---- */

static int64_t num(const cJSON *obj, const char *path)
{
    return drv_json_int_at(obj, path, INT64_MIN, INT64_MAX, 0);
}

static bool deploy_cells(const cJSON *d, int64_t now_ms, cJSON *cells)
{
    char ready[48];
    drv_fmt_cut(ready, sizeof(ready), "%lld/%lld", (long long)num(d, "status.readyReplicas"),
                (long long)drv_json_int_at(d, "spec.replicas", INT64_MIN, INT64_MAX, 1));
    return add_str(cells, drv_json_str_at(d, "metadata.name")) && add_str(cells, ready) &&
           add_int(cells, num(d, "status.updatedReplicas")) &&
           add_int(cells, num(d, "status.availableReplicas")) && add_age(cells, d, now_ms) &&
           add_workload_wide(cells, d);
}

static bool rs_cells(const cJSON *r, int64_t now_ms, cJSON *cells)
{
    return add_str(cells, drv_json_str_at(r, "metadata.name")) &&
           add_int(cells, drv_json_int_at(r, "spec.replicas", INT64_MIN, INT64_MAX, 1)) &&
           add_int(cells, num(r, "status.replicas")) &&
           add_int(cells, num(r, "status.readyReplicas")) && add_age(cells, r, now_ms) &&
           add_workload_wide(cells, r);
}

static bool ds_cells(const cJSON *d, int64_t now_ms, cJSON *cells)
{
    text_t nodesel = {.len = 0};
    format_labels(drv_json_at(d, "spec.template.spec.nodeSelector"), &nodesel);
    return add_str(cells, drv_json_str_at(d, "metadata.name")) &&
           add_int(cells, num(d, "status.desiredNumberScheduled")) &&
           add_int(cells, num(d, "status.currentNumberScheduled")) &&
           add_int(cells, num(d, "status.numberReady")) &&
           add_int(cells, num(d, "status.updatedNumberScheduled")) &&
           add_int(cells, num(d, "status.numberAvailable")) && add_str(cells, nodesel.s) &&
           add_age(cells, d, now_ms) && add_workload_wide(cells, d);
}

/* ---- ControllerRevision ---- */

/* The controller as Kubernetes prints it: "daemonset.apps/name", or "<none>". */
static bool cr_cells(const cJSON *c, int64_t now_ms, cJSON *cells)
{
    char ctl[320] = "<none>", kind[64] = "";
    const cJSON *ref = drv_ctrl_controller_of(c);
    const char *k = drv_json_str(ref, "kind"), *n = drv_json_str(ref, "name");
    const char *av = drv_json_str(ref, "apiVersion"), *slash = av ? strchr(av, '/') : NULL;
    if (k && n) {
        size_t i = 0;
        for (; k[i] && i + 1 < sizeof(kind); i++)
            kind[i] = (char)tolower((unsigned char)k[i]);
        kind[i] = '\0';
        drv_fmt_cut(ctl, sizeof(ctl), "%s%s%.*s/%s", kind, slash ? "." : "",
                    slash ? (int)(slash - av) : 0, av ? av : "", n);
    }
    return add_str(cells, drv_json_str_at(c, "metadata.name")) && add_str(cells, ctl) &&
           add_int(cells, drv_json_int_at(c, "revision", INT64_MIN, INT64_MAX, 0)) &&
           add_age(cells, c, now_ms);
}

/* ---- Service ---- */

static void join_strings(const cJSON *arr, text_t *t)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, arr)
    {
        if (cJSON_IsString(v))
            text_add(t, ",", v->valuestring);
    }
}

static void svc_external(const cJSON *svc, const char *type, text_t *t)
{
    const cJSON *ext = drv_json_at(svc, "spec.externalIPs");
    if (!strcmp(type, "ClusterIP") || !strcmp(type, "NodePort")) {
        join_strings(ext, t);
        if (!t->len)
            text_add(t, NULL, "<none>");
    } else if (!strcmp(type, "LoadBalancer")) {
        const cJSON *in;
        cJSON_ArrayForEach(in, drv_json_at(svc, "status.loadBalancer.ingress"))
        {
            const char *a = str_or(in, "ip", drv_json_str(in, "hostname"));
            if (a)
                text_add(t, ",", a);
        }
        join_strings(ext, t);
        if (!t->len)
            text_add(t, NULL, "<pending>");
    } else if (!strcmp(type, "ExternalName")) {
        text_add(t, NULL, str_or(drv_json_get(svc, "spec"), "externalName", ""));
    } else {
        text_add(t, NULL, "<unknown>");
    }
}

static bool svc_cells(const cJSON *svc, int64_t now_ms, cJSON *cells)
{
    const cJSON *spec = drv_json_get(svc, "spec");
    const char *type = str_or(spec, "type", "ClusterIP");
    const cJSON *first = cJSON_GetArrayItem(drv_json_get(spec, "clusterIPs"), 0);
    const char *cip = cJSON_IsString(first) && *first->valuestring
                          ? first->valuestring
                          : str_or(spec, "clusterIP", "<none>");
    text_t ext = {.len = 0}, ports = {.len = 0}, sel = {.len = 0};
    svc_external(svc, type, &ext);
    const cJSON *p;
    cJSON_ArrayForEach(p, drv_json_get(spec, "ports"))
    {
        char one[64];
        int64_t port = drv_json_int_or(p, "port", 0), np = drv_json_int_or(p, "nodePort", 0);
        const char *proto = drv_json_str_or(p, "protocol", "TCP");
        if (np > 0)
            drv_fmt_cut(one, sizeof(one), "%lld:%lld/%s", (long long)port, (long long)np, proto);
        else
            drv_fmt_cut(one, sizeof(one), "%lld/%s", (long long)port, proto);
        text_add(&ports, ",", one);
    }
    if (!ports.len)
        text_add(&ports, NULL, "<none>");
    format_labels(drv_json_get(spec, "selector"), &sel);
    return add_str(cells, drv_json_str_at(svc, "metadata.name")) && add_str(cells, type) &&
           add_str(cells, cip) && add_str(cells, ext.s) && add_str(cells, ports.s) &&
           add_age(cells, svc, now_ms) && add_str(cells, sel.s);
}

/* ---- Endpoints, EndpointSlice, NetworkPolicy ---- */

/* Up to three items, then " + N more...", as kubectl prints endpoints. */
static void list_more(text_t *t, size_t *count, const char *item)
{
    if ((*count)++ < 3)
        text_add(t, ",", item);
}

static void list_end(text_t *t, size_t count, const char *none)
{
    char more[48];
    if (count > 3) {
        drv_fmt_cut(more, sizeof(more), " + %zu more...", count - 3);
        text_add(t, NULL, more);
    }
    if (!count)
        text_add(t, NULL, none);
}

static bool ep_cells(const cJSON *ep, int64_t now_ms, cJSON *cells)
{
    text_t t = {.len = 0};
    size_t n = 0;
    const cJSON *sub, *a, *p;
    cJSON_ArrayForEach(sub, drv_json_get(ep, "subsets"))
    {
        const cJSON *ports = drv_json_get(sub, "ports");
        cJSON_ArrayForEach(a, drv_json_get(sub, "addresses"))
        {
            const char *ip = drv_json_str_or(a, "ip", "");
            if (!cJSON_GetArraySize(ports))
                list_more(&t, &n, ip);
            cJSON_ArrayForEach(p, ports)
            {
                char one[80];
                drv_fmt_cut(one, sizeof(one), "%s:%lld", ip,
                            (long long)drv_json_int_or(p, "port", 0));
                list_more(&t, &n, one);
            }
        }
    }
    list_end(&t, n, "<none>");
    return add_str(cells, drv_json_str_at(ep, "metadata.name")) && add_str(cells, t.s) &&
           add_age(cells, ep, now_ms);
}

static bool eps_cells(const cJSON *sl, int64_t now_ms, cJSON *cells)
{
    text_t ports = {.len = 0}, addrs = {.len = 0};
    size_t np = 0, na = 0;
    const cJSON *p, *e, *a;
    cJSON_ArrayForEach(p, drv_json_get(sl, "ports"))
    {
        char one[24];
        drv_fmt_cut(one, sizeof(one), "%lld", (long long)drv_json_int_or(p, "port", 0));
        list_more(&ports, &np, one);
    }
    list_end(&ports, np, "<unset>");
    cJSON_ArrayForEach(e, drv_json_get(sl, "endpoints"))
    {
        cJSON_ArrayForEach(a, drv_json_get(e, "addresses"))
        {
            if (cJSON_IsString(a))
                list_more(&addrs, &na, a->valuestring);
        }
    }
    list_end(&addrs, na, "<unset>");
    return add_str(cells, drv_json_str_at(sl, "metadata.name")) &&
           add_str(cells, drv_json_str_or(sl, "addressType", "")) && add_str(cells, ports.s) &&
           add_str(cells, addrs.s) && add_age(cells, sl, now_ms);
}

static bool netpol_cells(const cJSON *np, int64_t now_ms, cJSON *cells)
{
    text_t sel = {.len = 0};
    format_selector(drv_json_at(np, "spec.podSelector"), &sel);
    if (!sel.len)
        text_add(&sel, NULL, "<none>");
    return add_str(cells, drv_json_str_at(np, "metadata.name")) && add_str(cells, sel.s) &&
           add_age(cells, np, now_ms);
}

/* ---- PersistentVolumeClaim, PersistentVolume, StorageClass ---- */

/* "RWO,ROX" as kubectl abbreviates access modes. */
static void access_modes(const cJSON *spec, text_t *t)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, drv_json_get(spec, "accessModes"))
    {
        const char *s = cJSON_IsString(m) ? m->valuestring : "";
        text_add(t, ",",
                 !strcmp(s, "ReadWriteOnce")      ? "RWO"
                 : !strcmp(s, "ReadOnlyMany")     ? "ROX"
                 : !strcmp(s, "ReadWriteMany")    ? "RWX"
                 : !strcmp(s, "ReadWriteOncePod") ? "RWOP"
                                                  : s);
    }
}

static bool pvc_cells(const cJSON *pvc, int64_t now_ms, cJSON *cells)
{
    const cJSON *spec = drv_json_get(pvc, "spec");
    text_t modes = {.len = 0};
    const char *phase = drv_json_str_at(pvc, "status.phase");
    bool bound = phase && !strcmp(phase, "Bound");
    if (bound)
        access_modes(drv_json_get(pvc, "status"), &modes);
    const char *shown = drv_json_str_at(pvc, "metadata.deletionTimestamp") ? "Terminating"
                        : phase                                            ? phase
                                                                           : "Pending";
    return add_str(cells, drv_json_str_at(pvc, "metadata.name")) && add_str(cells, shown) &&
           add_str(cells, drv_json_str_or(spec, "volumeName", "")) &&
           add_str(cells, bound ? drv_json_str_at(pvc, "status.capacity.storage") : "") &&
           add_str(cells, modes.s) &&
           add_str(cells, drv_json_str_or(spec, "storageClassName", "<unset>")) &&
           add_str(cells, "<unset>") && add_age(cells, pvc, now_ms) &&
           add_str(cells, drv_json_str_or(spec, "volumeMode", "Filesystem"));
}

static bool pv_cells(const cJSON *pv, int64_t now_ms, cJSON *cells)
{
    const cJSON *spec = drv_json_get(pv, "spec");
    text_t modes = {.len = 0};
    access_modes(spec, &modes);
    char claim[512] = "";
    const cJSON *ref = drv_json_get(spec, "claimRef");
    if (ref)
        drv_fmt_cut(claim, sizeof(claim), "%s/%s", drv_json_str_or(ref, "namespace", ""),
                    drv_json_str_or(ref, "name", ""));
    return add_str(cells, drv_json_str_at(pv, "metadata.name")) &&
           add_str(cells, drv_json_str_at(pv, "spec.capacity.storage")) &&
           add_str(cells, modes.s) &&
           add_str(cells, drv_json_str_or(spec, "persistentVolumeReclaimPolicy", "")) &&
           add_str(cells, str_or(drv_json_get(pv, "status"), "phase", "Pending")) &&
           add_str(cells, claim) && add_str(cells, drv_json_str_or(spec, "storageClassName", "")) &&
           add_str(cells, "<unset>") &&
           add_str(cells, str_or(drv_json_get(pv, "status"), "reason", "")) &&
           add_age(cells, pv, now_ms) &&
           add_str(cells, drv_json_str_or(spec, "volumeMode", "Filesystem"));
}

static bool sc_cells(const cJSON *sc, int64_t now_ms, cJSON *cells)
{
    char name[300];
    const char *def = drv_json_str(drv_json_at(sc, "metadata.annotations"),
                                   "storageclass.kubernetes.io/is-default-class");
    drv_fmt_cut(name, sizeof(name), "%s%s",
                drv_json_str_or(drv_json_get(sc, "metadata"), "name", ""),
                def && !strcmp(def, "true") ? " (default)" : "");
    return add_str(cells, name) && add_str(cells, drv_json_str_or(sc, "provisioner", "")) &&
           add_str(cells, drv_json_str_or(sc, "reclaimPolicy", "Delete")) &&
           add_str(cells, drv_json_str_or(sc, "volumeBindingMode", "Immediate")) &&
           add_str(cells,
                   cJSON_IsTrue(drv_json_get(sc, "allowVolumeExpansion")) ? "true" : "false") &&
           add_age(cells, sc, now_ms);
}

/* ---- Node ---- */

static const char *node_address(const cJSON *node, const char *type)
{
    const cJSON *a;
    cJSON_ArrayForEach(a, drv_json_at(node, "status.addresses"))
    {
        if (!strcmp(drv_json_str_or(a, "type", ""), type))
            return drv_json_str_or(a, "address", "");
    }
    return "<none>";
}

static bool node_cells(const cJSON *node, int64_t now_ms, cJSON *cells)
{
    text_t status = {.len = 0}, roles = {.len = 0};
    const cJSON *c;
    cJSON_ArrayForEach(c, drv_json_at(node, "status.conditions"))
    {
        if (!strcmp(drv_json_str_or(c, "type", ""), "Ready")) {
            text_add(&status, NULL,
                     !strcmp(drv_json_str_or(c, "status", ""), "True") ? "Ready" : "NotReady");
            break;
        }
    }
    if (!status.len)
        text_add(&status, NULL, "Unknown");
    if (drv_json_true(drv_json_get(node, "spec"), "unschedulable"))
        text_add(&status, ",", "SchedulingDisabled");
    /* Roles: node-role.kubernetes.io/<role> keys and kubernetes.io/role values, sorted, once. */
    const char *found[64];
    size_t n = 0;
    const cJSON *l;
    static const char prefix[] = "node-role.kubernetes.io/";
    cJSON_ArrayForEach(l, drv_json_at(node, "metadata.labels"))
    {
        const char *r = NULL;
        if (!strncmp(l->string, prefix, sizeof(prefix) - 1) && l->string[sizeof(prefix) - 1])
            r = l->string + sizeof(prefix) - 1;
        else if (!strcmp(l->string, "kubernetes.io/role") && cJSON_IsString(l) && *l->valuestring)
            r = l->valuestring;
        if (r && n < 64)
            found[n++] = r;
    }
    qsort(found, n, sizeof(found[0]), cmp_strp);
    for (size_t i = 0; i < n; i++)
        if (!i || strcmp(found[i], found[i - 1]))
            text_add(&roles, ",", found[i]);
    if (!roles.len)
        text_add(&roles, NULL, "<none>");
    const cJSON *info = drv_json_at(node, "status.nodeInfo");
    return add_str(cells, drv_json_str_at(node, "metadata.name")) && add_str(cells, status.s) &&
           add_str(cells, roles.s) && add_age(cells, node, now_ms) &&
           add_str(cells, drv_json_str_or(info, "kubeletVersion", "")) &&
           add_str(cells, node_address(node, "InternalIP")) &&
           add_str(cells, node_address(node, "ExternalIP")) &&
           add_str(cells, str_or(info, "osImage", "<unknown>")) &&
           add_str(cells, str_or(info, "kernelVersion", "<unknown>")) &&
           add_str(cells, str_or(info, "containerRuntimeVersion", "<unknown>"));
}

/* ---- data and namespaces ---- */

static bool cm_cells(const cJSON *cm, int64_t now_ms, cJSON *cells)
{
    int64_t n = cJSON_GetArraySize(drv_json_get(cm, "data")) +
                cJSON_GetArraySize(drv_json_get(cm, "binaryData"));
    return add_str(cells, drv_json_str_at(cm, "metadata.name")) && add_int(cells, n) &&
           add_age(cells, cm, now_ms);
}

static bool secret_cells(const cJSON *s, int64_t now_ms, cJSON *cells)
{
    return add_str(cells, drv_json_str_at(s, "metadata.name")) &&
           add_str(cells, drv_json_str_or(s, "type", "")) &&
           add_int(cells, cJSON_GetArraySize(drv_json_get(s, "data"))) && add_age(cells, s, now_ms);
}

static bool ns_cells(const cJSON *ns, int64_t now_ms, cJSON *cells)
{
    return add_str(cells, drv_json_str_at(ns, "metadata.name")) &&
           add_str(cells, drv_json_str_at(ns, "status.phase")) && add_age(cells, ns, now_ms);
}

static bool pc_cells(const cJSON *pc, int64_t now_ms, cJSON *cells)
{
    return add_str(cells, drv_json_str_at(pc, "metadata.name")) &&
           add_int(cells, drv_json_int_or(pc, "value", 0)) &&
           cJSON_AddItemToArray(
               cells, cJSON_CreateBool(cJSON_IsTrue(drv_json_get(pc, "globalDefault")))) &&
           add_age(cells, pc, now_ms) &&
           add_str(cells, drv_json_str_or(pc, "preemptionPolicy", "PreemptLowerPriority"));
}

/* ---- Event ---- */

static bool event_cells(const cJSON *ev, int64_t now_ms, cJSON *cells)
{
    char first[32], lastseen[32];
    const char *ft = drv_json_str(ev, "firstTimestamp");
    since(ft && *ft ? ft : drv_json_str(ev, "eventTime"), now_ms, first, sizeof(first));
    const char *lt = drv_json_str(ev, "lastTimestamp");
    if (lt && *lt)
        since(lt, now_ms, lastseen, sizeof(lastseen));
    else
        drv_fmt_cut(lastseen, sizeof(lastseen), "%s", first);
    int64_t count = drv_json_int_or(ev, "count", 0);
    const cJSON *series = drv_json_get(ev, "series");
    if (cJSON_IsObject(series)) {
        since(drv_json_str(series, "lastObservedTime"), now_ms, lastseen, sizeof(lastseen));
        count = drv_json_int_or(series, "count", 0);
    } else if (!count) {
        count = 1;
    }
    const cJSON *io = drv_json_get(ev, "involvedObject");
    char kind[64], target[512];
    drv_fmt_cut(kind, sizeof(kind), "%s", drv_json_str_or(io, "kind", ""));
    for (char *k = kind; *k; k++)
        *k = (char)tolower((unsigned char)*k);
    const char *name = drv_json_str(io, "name");
    if (name && *name)
        drv_fmt_cut(target, sizeof(target), "%s/%s", kind, name);
    else
        drv_fmt_cut(target, sizeof(target), "%s", kind);
    const cJSON *src = drv_json_get(ev, "source");
    const char *comp = str_or(src, "component", drv_json_str_or(ev, "reportingComponent", ""));
    const char *host = str_or(src, "host", drv_json_str_or(ev, "reportingInstance", ""));
    char source[512];
    if (*host)
        drv_fmt_cut(source, sizeof(source), "%s, %s", comp, host);
    else
        drv_fmt_cut(source, sizeof(source), "%s", comp);
    /* The message without surrounding white space, as Kubernetes trims it. */
    char msg[CELL_MAX];
    const char *m = drv_json_str_or(ev, "message", "");
    while (isspace((unsigned char)*m))
        m++;
    drv_fmt_cut(msg, sizeof(msg), "%s", m);
    for (size_t k = strlen(msg); k && isspace((unsigned char)msg[k - 1]); k--)
        msg[k - 1] = '\0';
    return add_str(cells, lastseen) && add_str(cells, drv_json_str_or(ev, "type", "")) &&
           add_str(cells, drv_json_str_or(ev, "reason", "")) && add_str(cells, target) &&
           add_str(cells, drv_json_str_or(io, "fieldPath", "")) && add_str(cells, source) &&
           add_str(cells, msg) && add_str(cells, first) && add_int(cells, count) &&
           add_str(cells, drv_json_str_at(ev, "metadata.name"));
}

/* ---- HorizontalPodAutoscaler ---- */

/* One metric as "current/target" ("cpu: 40%/80%" for a resource), by the metric's index in
 * status.currentMetrics as Kubernetes pairs them. */
static void hpa_metric(const cJSON *spec, const cJSON *status, char *out, size_t outsz)
{
    const char *type = drv_json_str_or(spec, "type", "");
    static const struct {
        const char *type, *key;
    } kinds[] = {{"Resource", "resource"},
                 {"ContainerResource", "containerResource"},
                 {"Pods", "pods"},
                 {"Object", "object"},
                 {"External", "external"}};
    const char *key = NULL;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (!strcmp(type, kinds[i].type))
            key = kinds[i].key;
    if (!key) {
        drv_fmt_cut(out, outsz, "<unknown type>");
        return;
    }
    const cJSON *s = drv_json_get(spec, key),
                *cur = drv_json_get(drv_json_get(status, key), "current");
    const cJSON *target = drv_json_get(s, "target");
    const char *tav = drv_json_str(target, "averageValue");
    bool resource = !strcmp(key, "resource") || !strcmp(key, "containerResource");
    if (resource) {
        const char *rname = drv_json_str_or(s, "name", "");
        if (tav) {
            drv_fmt_cut(out, outsz, "%s: %s/%s", rname, str_or(cur, "averageValue", "<unknown>"),
                        tav);
            return;
        }
        char c[32] = "<unknown>", t[32] = "<auto>";
        int64_t v;
        if (drv_json_int(cur, "averageUtilization", &v))
            drv_fmt_cut(c, sizeof(c), "%lld%%", (long long)v);
        if (drv_json_int(target, "averageUtilization", &v))
            drv_fmt_cut(t, sizeof(t), "%lld%%", (long long)v);
        drv_fmt_cut(out, outsz, "%s: %s/%s", rname, c, t);
        return;
    }
    if (!strcmp(key, "pods")) {
        drv_fmt_cut(out, outsz, "%s/%s", str_or(cur, "averageValue", "<unknown>"), tav ? tav : "");
        return;
    }
    if (tav)
        drv_fmt_cut(out, outsz, "%s/%s (avg)", str_or(cur, "averageValue", "<unknown>"), tav);
    else
        drv_fmt_cut(out, outsz, "%s/%s", str_or(cur, "value", "<unknown>"),
                    drv_json_str_or(target, "value", ""));
}

static bool hpa_cells(const cJSON *h, int64_t now_ms, cJSON *cells)
{
    const cJSON *spec = drv_json_get(h, "spec");
    char ref[512], minp[32] = "<unset>";
    const cJSON *tref = drv_json_get(spec, "scaleTargetRef");
    drv_fmt_cut(ref, sizeof(ref), "%s/%s", drv_json_str_or(tref, "kind", ""),
                drv_json_str_or(tref, "name", ""));
    int64_t v;
    if (drv_json_int(spec, "minReplicas", &v))
        drv_fmt_cut(minp, sizeof(minp), "%lld", (long long)v);
    text_t targets = {.len = 0};
    const cJSON *metrics = drv_json_get(spec, "metrics");
    const cJSON *current = drv_json_at(h, "status.currentMetrics");
    int n = cJSON_GetArraySize(metrics);
    for (int i = 0; i < n && i < 2; i++) {
        char one[256];
        hpa_metric(cJSON_GetArrayItem(metrics, i), cJSON_GetArrayItem(current, i), one,
                   sizeof(one));
        text_add(&targets, ", ", one);
    }
    if (n > 2) {
        char more[32];
        drv_fmt_cut(more, sizeof(more), " + %d more...", n - 2);
        text_add(&targets, NULL, more);
    }
    if (!n)
        text_add(&targets, NULL, "<none>");
    return add_str(cells, drv_json_str_at(h, "metadata.name")) && add_str(cells, ref) &&
           add_str(cells, targets.s) && add_str(cells, minp) &&
           add_int(cells, drv_json_int_or(spec, "maxReplicas", 0)) &&
           add_int(cells, num(h, "status.currentReplicas")) && add_age(cells, h, now_ms);
}

/* ---- the table ---- */

#define PRINTER(k, c, f)                                                                           \
    {                                                                                              \
        k, c, sizeof(c) / sizeof((c)[0]), f                                                        \
    }
static const printer_t printers[] = {
    PRINTER("Pod", pod_cols, pod_cells),
    PRINTER("Deployment", deploy_cols, deploy_cells),
    PRINTER("ReplicaSet", rs_cols, rs_cells),
    PRINTER("DaemonSet", ds_cols, ds_cells),
    PRINTER("ControllerRevision", cr_cols, cr_cells),
    PRINTER("Service", svc_cols, svc_cells),
    PRINTER("Endpoints", ep_cols, ep_cells),
    PRINTER("EndpointSlice", eps_cols, eps_cells),
    PRINTER("NetworkPolicy", netpol_cols, netpol_cells),
    PRINTER("Node", node_cols, node_cells),
    PRINTER("ConfigMap", cm_cols, cm_cells),
    PRINTER("Secret", secret_cols, secret_cells),
    PRINTER("Namespace", ns_cols, ns_cells),
    PRINTER("Event", event_cols, event_cells),
    PRINTER("HorizontalPodAutoscaler", hpa_cols, hpa_cells),
    PRINTER("PersistentVolumeClaim", pvc_cols, pvc_cells),
    PRINTER("PersistentVolume", pv_cols, pv_cells),
    PRINTER("StorageClass", sc_cols, sc_cells),
    PRINTER("PriorityClass", pc_cols, pc_cells),
};

static const printer_t *find_printer(const char *kind)
{
    for (size_t i = 0; kind && i < sizeof(printers) / sizeof(printers[0]); i++)
        if (!strcmp(printers[i].kind, kind))
            return &printers[i];
    return NULL;
}

bool drv_api_table_renders(const char *kind_name)
{
    return find_printer(kind_name) != NULL;
}

static bool add_columns(cJSON *table, const printer_t *p)
{
    cJSON *defs = cJSON_AddArrayToObject(table, "columnDefinitions");
    if (!defs)
        return false;
    for (size_t i = 0; i < p->ncols; i++) {
        const col_t *c = &p->cols[i];
        cJSON *d = cJSON_CreateObject();
        if (!d || !cJSON_AddItemToArray(defs, d) || !cJSON_AddStringToObject(d, "name", c->name) ||
            !cJSON_AddStringToObject(d, "type", c->type) ||
            !cJSON_AddStringToObject(d, "format", c->format) ||
            !cJSON_AddStringToObject(d, "description", c->desc) ||
            !cJSON_AddNumberToObject(d, "priority", c->priority))
            return false;
    }
    return true;
}

/* The row's object as includeObject asks: NULL for None (nothing to add). */
static bool add_row_object(cJSON *row, const cJSON *obj, const char *include, const char *version)
{
    if (!strcmp(include, "None"))
        return true;
    if (!strcmp(include, "Object")) {
        cJSON *dup = cJSON_Duplicate(obj, true);
        return dup && cJSON_AddItemToObject(row, "object", dup);
    }
    char av[32];
    cJSON *po = cJSON_AddObjectToObject(row, "object");
    if (!po || drv_fmt(av, sizeof(av), "meta.k8s.io/%s", version) != DRV_OK ||
        !cJSON_AddStringToObject(po, "kind", "PartialObjectMetadata") ||
        !cJSON_AddStringToObject(po, "apiVersion", av))
        return false;
    const cJSON *meta = drv_json_get(obj, "metadata");
    cJSON *m = meta ? cJSON_Duplicate(meta, true) : cJSON_CreateObject();
    if (m)
        cJSON_DeleteItemFromObjectCaseSensitive(m, "managedFields");
    return m && cJSON_AddItemToObject(po, "metadata", m);
}

cJSON *drv_api_table(const char *kind_name, const char *version, const cJSON *items,
                     const cJSON *meta, const char *include, bool headers, int64_t now_ms,
                     unsigned *code, char *why, size_t whysz)
{
    const printer_t *p = find_printer(kind_name);
    if (!p) {
        *code = 406;
        drv_fmt_cut(why, whysz, "no Table columns are defined for %s; ask for application/json",
                    kind_name && *kind_name ? kind_name : "this resource");
        return NULL;
    }
    include = include && *include ? include : "Metadata";
    if (strcmp(include, "None") && strcmp(include, "Metadata") && strcmp(include, "Object")) {
        *code = 400;
        drv_fmt_cut(why, whysz, "includeObject: \"%.32s\" is not None, Metadata or Object",
                    include);
        return NULL;
    }
    version = version && !strcmp(version, "v1beta1") ? "v1beta1" : "v1";
    *code = 500;
    drv_fmt_cut(why, whysz, "out of memory");
    char av[32];
    _cleanup_cjson_ cJSON *t = cJSON_CreateObject();
    cJSON *m = meta ? cJSON_Duplicate(meta, true) : cJSON_CreateObject();
    if (!t || drv_fmt(av, sizeof(av), "meta.k8s.io/%s", version) != DRV_OK ||
        !cJSON_AddStringToObject(t, "kind", "Table") ||
        !cJSON_AddStringToObject(t, "apiVersion", av) || !m ||
        !cJSON_AddItemToObject(t, "metadata", m) || (headers && !add_columns(t, p)))
        return NULL;
    cJSON *rows = cJSON_AddArrayToObject(t, "rows");
    if (!rows)
        return NULL;
    const cJSON *obj;
    cJSON_ArrayForEach(obj, items)
    {
        cJSON *row = cJSON_CreateObject();
        if (!row || !cJSON_AddItemToArray(rows, row))
            return NULL;
        cJSON *cells = cJSON_AddArrayToObject(row, "cells");
        if (!cells || !p->cells(obj, now_ms, cells) ||
            (!strcmp(p->kind, "Pod") && !pod_conditions(obj, row)) ||
            !add_row_object(row, obj, include, version))
            return NULL;
    }
    *code = 200;
    why[0] = '\0';
    return TAKE_PTR(t);
}

/* ---- Accept ---- */

/* One media range of an Accept header, its parameters picked out. */
typedef struct range {
    char type[64];
    char as[32], g[32], v[16];
    double q;
    size_t order;
} range_t;

static void trim_copy(char *out, size_t outsz, const char *s, size_t len)
{
    while (len && isspace((unsigned char)*s))
        s++, len--;
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    if (len >= outsz)
        len = outsz - 1;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[len] = '\0';
}

/* Parses one comma-separated clause [s, s+len) into r. */
static void parse_range(const char *s, size_t len, range_t *r)
{
    memset(r, 0, sizeof(*r));
    r->q = 1.0;
    const char *end = s + len, *semi = memchr(s, ';', len);
    trim_copy(r->type, sizeof(r->type), s, (size_t)((semi ? semi : end) - s));
    while (semi && semi < end) {
        const char *p = semi + 1;
        semi = memchr(p, ';', (size_t)(end - p));
        const char *pe = semi ? semi : end, *eq = memchr(p, '=', (size_t)(pe - p));
        if (!eq)
            continue;
        char key[16], val[32];
        trim_copy(key, sizeof(key), p, (size_t)(eq - p));
        /* Values keep their case ("Table"); strip optional quotes. */
        const char *vs = eq + 1;
        size_t vl = (size_t)(pe - vs);
        while (vl && isspace((unsigned char)*vs))
            vs++, vl--;
        while (vl && isspace((unsigned char)vs[vl - 1]))
            vl--;
        if (vl >= 2 && vs[0] == '"' && vs[vl - 1] == '"')
            vs++, vl -= 2;
        if (vl >= sizeof(val))
            vl = sizeof(val) - 1;
        memcpy(val, vs, vl);
        val[vl] = '\0';
        if (!strcmp(key, "q")) {
            char *e = NULL;
            errno = 0;
            double q = strtod(val, &e);
            r->q = errno || e == val || *e || q < 0 || q > 1 ? 0 : q;
        } else if (!strcmp(key, "as")) {
            drv_fmt_cut(r->as, sizeof(r->as), "%s", val);
        } else if (!strcmp(key, "g")) {
            drv_fmt_cut(r->g, sizeof(r->g), "%s", val);
        } else if (!strcmp(key, "v")) {
            drv_fmt_cut(r->v, sizeof(r->v), "%s", val);
        }
    }
}

static int cmp_range(const void *a, const void *b)
{
    const range_t *x = a, *y = b;
    if (x->q != y->q)
        return x->q > y->q ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static bool plain_json(const range_t *r)
{
    return !*r->as && (!strcmp(r->type, "application/json") || !strcmp(r->type, "application/*") ||
                       !strcmp(r->type, "*/*"));
}

static bool table_json(const range_t *r)
{
    return !strcmp(r->as, "Table") && !strcmp(r->g, "meta.k8s.io") &&
           (!strcmp(r->v, "v1") || !strcmp(r->v, "v1beta1")) &&
           (!strcmp(r->type, "application/json") || !strcmp(r->type, "application/*") ||
            !strcmp(r->type, "*/*"));
}

bool drv_api_accepts_table_header(const char *accept, char *version, size_t n, bool *only_table)
{
    *only_table = false;
    if (!accept || !*accept)
        return false;
    range_t ranges[16];
    size_t count = 0;
    for (const char *s = accept; *s && count < 16;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        parse_range(s, len, &ranges[count]);
        ranges[count].order = count;
        if (ranges[count].q > 0 && *ranges[count].type)
            count++;
        s += len + (comma ? 1 : 0);
    }
    qsort(ranges, count, sizeof(ranges[0]), cmp_range);
    bool plain = false;
    const range_t *best = NULL;
    for (size_t i = 0; i < count; i++) {
        if (plain_json(&ranges[i]))
            plain = true;
        else if (!best && !plain && table_json(&ranges[i]))
            best = &ranges[i];
    }
    if (!best)
        return false;
    *only_table = !plain;
    drv_fmt_cut(version, n, "%s", best->v);
    return true;
}

bool drv_api_accepts_table(struct MHD_Connection *conn, char *version, size_t n, bool *only_table)
{
    return drv_api_accepts_table_header(
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT), version, n,
        only_table);
}

enum MHD_Result drv_api_reply_table(drv_api_req_t *rq, const char *kind_name, const cJSON *items,
                                    const cJSON *meta, const char *version)
{
    _cleanup_cjson_ cJSON *one = NULL;
    if (!meta) { /* a get: the object's own resourceVersion */
        const char *rv = drv_json_str_at(cJSON_GetArrayItem(items, 0), "metadata.resourceVersion");
        one = cJSON_CreateObject();
        if (!one || (rv && !cJSON_AddStringToObject(one, "resourceVersion", rv)))
            return drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
        meta = one;
    }
    const char *include =
        MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "includeObject");
    unsigned code = 0;
    char why[256];
    _cleanup_cjson_ cJSON *t = drv_api_table(kind_name, version, items, meta, include, true,
                                             drv_wall_ms(), &code, why, sizeof(why));
    if (!t)
        return drv_api_reply_status(rq, code, code == 406 ? "NotAcceptable" : NULL, why, NULL);
    return drv_api_reply_json(rq, 200, t);
}
