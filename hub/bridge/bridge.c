/* The hub's MQTT bridge (see bridge.h): publishing desired state, ingesting what agents say. */
#include "bridge/bridge_int.h"
#include "sched/volumes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "ctrl/ctrl.h"
#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/log.h"
#include "drover/proc.h"
#include "drover/json.h"
#include "drover/model.h"
#include "metrics/metrics.h"
#include "mqtt.h"

#define PUBLISH_DEBOUNCE_MS 20 /* gather a burst of store changes into one document */
#define PUBLISH_BATCH 2000     /* documents per tick, so the loop stays responsive */
/* Documents waiting for the signer thread: about a second of its work, so that a document
 * built now goes out soon, and a burst stays marked (and coalesced) in the cache meanwhile. */
#define SIGN_QUEUE_MAX 1024
#define POLL_BATCH 1000         /* MQTT messages taken per pass of the loop (one transaction) */
#define POLL_STEP 32            /* taken this many at a time, */
#define POLL_MS 10              /* until this long has passed: a pass stays short */
#define EVENTS_PER_NODE_PER_S 1 /* on average, after a burst of EVENTS_BURST */
#define EVENTS_BURST 20
#define LOGS_IDLE_TIMEOUT_MS 60000 /* a follow with no chunk for this long is over */
#define RESYNC_MS 10000

typedef struct blogs {
    bool used;
    char id[DRV_PROTO_ID_MAX + 1];
    char node[DRV_PROTO_NODE_MAX + 1];
    drv_bridge_logs_fn cb;
    void *ctx;
    uint64_t next_seq;
    bool answered;
    int64_t deadline_ms;
} blogs_t;

struct drv_bridge {
    drv_hstore_t *store;
    drv_mqtt_t *mqtt;
    bsigner_t *signer;
    void (*on_change)(void *ctx);
    void *ctx;
    bdesired_t desired;
    bool restrict_labels;
    struct drv_metrics *metrics;
    int64_t started_ms;
    int64_t grace_ms;
    int64_t connected_ms;  /* when the bridge last connected to the broker */
    uint64_t dropped_said; /* QoS 0 messages dropped, as last logged */
    int64_t dirty_since_ms;
    bool store_changed;
    drv_bridge_stats_t stats;
    blogs_t logs[DRV_BRIDGE_LOGS_MAX];
    uint64_t logs_counter;
    char last_error[DRV_ERROR_MSG_MAX]; /* whole, so that a repeated error compares equal */
};

static void refused(drv_bridge_t *b, const char *topic, const char *why)
{
    b->stats.refused++;
    char q[600];
    drv_log_warn("bridge: message refused", "topic=%s error=%s", topic,
                 drv_log_quote(why, q, sizeof(q)));
}

/* ---- nodes ---- */

static const cJSON *find_condition(const cJSON *status, const char *type)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, drv_json_get(status, "conditions"))
    {
        const char *t = drv_json_str(c, "type");
        if (t && !strcmp(t, type))
            return c;
    }
    return NULL;
}

bool drv_bridge_device_label_ok(const char *node, const char *key, const char *value)
{
    if (!node || !key || !value)
        return false;
    if (!strcmp(key, "kubernetes.io/arch") || !strcmp(key, "kubernetes.io/os"))
        return true;
    if (!strcmp(key, "kubernetes.io/hostname"))
        return !strcmp(value, node);
    return !strncmp(key, DRV_BRIDGE_AGENT_LABEL_PREFIX, strlen(DRV_BRIDGE_AGENT_LABEL_PREFIX)) &&
           key[strlen(DRV_BRIDGE_AGENT_LABEL_PREFIX)] != '\0';
}

static bool agent_prefixed(const char *key)
{
    return !strncmp(key, DRV_BRIDGE_AGENT_LABEL_PREFIX, strlen(DRV_BRIDGE_AGENT_LABEL_PREFIX));
}

/* Records a Warning or Normal event about node, from the hub. */
static void node_event(drv_bridge_t *b, const char *node, const char *type, const char *reason,
                       const char *message)
{
    drv_error_t err = DRV_ERROR_INIT;
    _cleanup_cjson_ cJSON *ev =
        drv_proto_event_build(node, "Node", node, NULL, type, reason, message, &err);
    drv_diags_t d = {0};
    if (ev) {
        cJSON *src = (cJSON *)drv_json_get(ev, "source");
        cJSON_DeleteItemFromObjectCaseSensitive(src, "component");
        cJSON_AddStringToObject(src, "component", "drover-hub");
    }
    if (!ev || drv_model_normalize(ev, &d) != DRV_OK ||
        drv_hstore_create(b->store, DRV_KIND_EVENT, ev, &err) != DRV_OK)
        drv_log_warn("bridge: cannot record an event", "node=%s reason=%s error=\"%s\"", node,
                     reason, drv_error_msg(&err));
    else
        b->store_changed = true;
    drv_diags_free(&d);
}

/* The labels of a report the hub takes: with restrict_labels, only what a device may say
 * about itself; the refused keys are listed in *refused (", "-separated, cut at its size). */
static cJSON *allowed_labels(const drv_bridge_t *b, const char *node, const cJSON *labels,
                             char *refused, size_t refsz, uint32_t *refused_hash)
{
    cJSON *out = cJSON_CreateObject();
    size_t used = 0;
    uint32_t h = 2166136261u;
    refused[0] = '\0';
    *refused_hash = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, (cJSON_IsObject(labels) && out ? labels : NULL))
    {
        if (!cJSON_IsString(l) || !l->string)
            continue;
        if (!b->restrict_labels || drv_bridge_device_label_ok(node, l->string, l->valuestring)) {
            if (!cJSON_AddStringToObject(out, l->string, l->valuestring)) {
                cJSON_Delete(out);
                return NULL;
            }
            continue;
        }
        for (const char *p = l->string; *p; p++)
            h = (h ^ (unsigned char)*p) * 16777619u;
        h = (h ^ '=') * 16777619u;
        for (const char *p = l->valuestring; *p; p++)
            h = (h ^ (unsigned char)*p) * 16777619u;
        *refused_hash = h | 1u;
        if (used < refsz) {
            int n = snprintf(refused + used, refsz - used, "%s%.100s", used ? ", " : "", l->string);
            used = n < 0 ? refsz : used + (size_t)n;
        }
    }
    return out;
}

/* Creates the Node on its first report and merges the labels the agent may set (a label the
 * user set on the Node and the agent does not report is kept; with restrict_labels only
 * device facts are taken, and agent.drover.io/ labels the report no longer has are removed).
 * A refused label is reported once per change as a Warning event LabelsRefused. */
static drv_err_t upsert_node(drv_bridge_t *b, const char *name, const cJSON *reported,
                             cJSON **node_out, drv_error_t *err)
{
    char refused[512];
    uint32_t refused_hash = 0;
    _cleanup_cjson_ cJSON *labels =
        allowed_labels(b, name, reported, refused, sizeof(refused), &refused_hash);
    if (!labels)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "node %s", name);
    bnode_t *bn = bdesired_node(&b->desired, name);
    if (bn && bn->labels_refused != refused_hash) {
        bn->labels_refused = refused_hash;
        if (refused_hash) {
            char msg[800];
            drv_fmt_cut(msg, sizeof(msg),
                        "status report: labels refused: %s (a device may set only "
                        "kubernetes.io/arch, kubernetes.io/os, kubernetes.io/hostname equal to its "
                        "name and " DRV_BRIDGE_AGENT_LABEL_PREFIX "* labels; the others are the "
                        "hub's: the bootstrap token's or set through the API)",
                        refused);
            drv_log_warn("bridge: node labels refused", "node=%s labels=\"%s\"", name, refused);
            node_event(b, name, "Warning", "LabelsRefused", msg);
        }
    }
    cJSON *node = NULL;
    drv_error_t ge = DRV_ERROR_INIT;
    drv_err_t e = drv_hstore_get(b->store, DRV_KIND_NODE, NULL, name, &node, &ge);
    if (e == DRV_ERR_NOTFOUND) {
        _cleanup_cjson_ cJSON *obj = cJSON_CreateObject();
        cJSON *meta = cJSON_CreateObject();
        if (!obj || !meta || !cJSON_AddItemToObject(obj, "metadata", meta) ||
            !cJSON_AddStringToObject(obj, "apiVersion", "v1") ||
            !cJSON_AddStringToObject(obj, "kind", "Node") ||
            !cJSON_AddStringToObject(meta, "name", name))
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "node %s", name);
        if (labels->child) {
            cJSON *l = cJSON_Duplicate(labels, true);
            if (!l || !cJSON_AddItemToObject(meta, "labels", l))
                return drv_error_set(err, DRV_ERR_NOMEM, 0, "node %s", name);
        }
        drv_diags_t d = {0};
        e = drv_model_normalize(obj, &d);
        if (e != DRV_OK) {
            char *t = drv_diags_format(&d, "");
            drv_error_set(err, DRV_ERR_INVALID, 0, "status report: nodeStatus.labels: %s",
                          t ? t : "invalid");
            free(t);
            drv_diags_free(&d);
            return DRV_ERR_INVALID;
        }
        drv_diags_free(&d);
        e = drv_hstore_create(b->store, DRV_KIND_NODE, obj, err);
        if (e != DRV_OK)
            return e;
        drv_log_info("bridge: node registered", "node=%s", name);
        *node_out = TAKE_PTR(obj);
        return DRV_OK;
    }
    if (e != DRV_OK)
        return drv_error_set(err, e, ge.sys_errno, "%s", drv_error_msg(&ge));
    /* Labels the agent reports that differ from the Node's, and agent-owned ones it dropped. */
    cJSON *meta = (cJSON *)drv_json_get(node, "metadata");
    cJSON *have = (cJSON *)drv_json_get(meta, "labels");
    bool change = false;
    const cJSON *l;
    cJSON_ArrayForEach(l, labels)
    {
        const char *cur = drv_json_str(have, l->string);
        if (!cur || strcmp(cur, l->valuestring))
            change = true;
    }
    cJSON_ArrayForEach(l, (b->restrict_labels && cJSON_IsObject(have) ? have : NULL))
    {
        if (agent_prefixed(l->string) && !drv_json_get(labels, l->string))
            change = true;
    }
    if (change) {
        _cleanup_cjson_ cJSON *upd = cJSON_Duplicate(node, true);
        cJSON *umeta = (cJSON *)drv_json_get(upd, "metadata");
        cJSON *ul = (cJSON *)drv_json_get(umeta, "labels");
        if (!ul)
            ul = cJSON_AddObjectToObject(umeta, "labels");
        for (cJSON *x = ul ? ul->child : NULL, *next; b->restrict_labels && x; x = next) {
            next = x->next;
            if (agent_prefixed(x->string) && !drv_json_get(labels, x->string))
                cJSON_DeleteItemFromObjectCaseSensitive(ul, x->string);
        }
        cJSON_ArrayForEach(l, labels)
        {
            if (!ul)
                continue;
            cJSON_DeleteItemFromObjectCaseSensitive(ul, l->string);
            cJSON_AddStringToObject(ul, l->string, l->valuestring);
        }
        cJSON_DeleteItemFromObjectCaseSensitive(umeta, "resourceVersion");
        cJSON_DeleteItemFromObjectCaseSensitive(upd, "status");
        drv_diags_t d = {0};
        if (drv_model_normalize(upd, &d) == DRV_OK) {
            drv_error_t ue = DRV_ERROR_INIT;
            if (drv_hstore_update(b->store, DRV_KIND_NODE, upd, &ue) != DRV_OK)
                drv_log_warn("bridge: cannot update node labels", "node=%s error=\"%s\"", name,
                             drv_error_msg(&ue));
        } else {
            drv_log_warn("bridge: node labels refused", "node=%s", name);
        }
        drv_diags_free(&d);
    }
    *node_out = node;
    return DRV_OK;
}

/* Sets the hub-owned annotations of node to the pairs given (key, value, key, value, ...,
 * NULL), writing the Node only when one differs. */
static void set_node_annotations(drv_bridge_t *b, const char *node, const char *const *kv)
{
    _cleanup_cjson_ cJSON *obj = NULL;
    if (drv_hstore_get(b->store, DRV_KIND_NODE, NULL, node, &obj, NULL) != DRV_OK)
        return; /* created by its first status report */
    cJSON *meta = drv_json_get(obj, "metadata");
    cJSON *ann = drv_json_get(meta, "annotations");
    bool change = false;
    for (const char *const *p = kv; *p; p += 2) {
        const char *cur = drv_json_str(ann, p[0]);
        change = change || !cur || strcmp(cur, p[1]);
    }
    if (!change)
        return;
    if (!cJSON_IsObject(ann)) {
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "annotations");
        ann = cJSON_AddObjectToObject(meta, "annotations");
    }
    for (const char *const *p = kv; ann && *p; p += 2) {
        cJSON_DeleteItemFromObjectCaseSensitive(ann, p[0]);
        if (!cJSON_AddStringToObject(ann, p[0], p[1]))
            return;
    }
    /* Not normalized again: the stored Node is valid, the values are checked, and the rest
     * (spec.podCIDR) is kept as the store has it. */
    cJSON_DeleteItemFromObjectCaseSensitive(meta, "resourceVersion");
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_update(b->store, DRV_KIND_NODE, obj, &err) != DRV_OK)
        drv_log_warn("bridge: cannot set node annotations", "node=%s key=%s error=\"%s\"", node,
                     kv[0], drv_error_msg(&err));
    else
        b->store_changed = true;
}

/* The agent's WireGuard key and port (nodeStatus.network) onto its own Node's annotations. A
 * bad one is refused whole, with a Warning event NetworkRefused once per change. The report's
 * podCIDR is the agent's echo of its desired state: the hub's allocation is never taken from
 * it. */
static void ingest_network(drv_bridge_t *b, bnode_t *bn, const char *node, const cJSON *net)
{
    if (!net || !bn)
        return; /* an agent without a pod network */
    const char *key = drv_json_str(net, "publicKey");
    const cJSON *jport = drv_json_get(net, "listenPort");
    int64_t port = DRV_NET_DEFAULT_PORT;
    char why[300] = "";
    if (!cJSON_IsObject(net))
        DRV_FMT_LIT(why, "status report: nodeStatus.network: must be an object");
    else if (!bnet_key_ok(key))
        DRV_FMT_LIT(why, "status report: nodeStatus.network.publicKey: must be a WireGuard "
                         "public key (44 characters of base64 for 32 bytes)");
    else if (jport && (!drv_json_int(net, "listenPort", &port) || port < 1 || port > 65535))
        DRV_FMT_LIT(why, "status report: nodeStatus.network.listenPort: must be 1 to 65535");
    if (why[0]) {
        uint32_t h = 2166136261u;
        for (const char *p = why; *p; p++)
            h = (h ^ (unsigned char)*p) * 16777619u;
        for (const char *p = key ? key : ""; *p; p++)
            h = (h ^ (unsigned char)*p) * 16777619u;
        h |= 1u;
        if (bn->net_refused != h) {
            bn->net_refused = h;
            node_event(b, node, "Warning", "NetworkRefused", why);
        }
        drv_log_warn("bridge: node network report refused", "node=%s error=\"%s\"", node, why);
        return;
    }
    bn->net_refused = 0;
    if (!strcmp(bn->net.key, key) && bn->net.port == (uint16_t)port)
        return; /* the Node says so already */
    char ports[8];
    drv_fmt_cut(ports, sizeof(ports), "%u", (unsigned)port);
    const char *const kv[] = {BNET_ANN_KEY, key, BNET_ANN_PORT, ports, NULL};
    set_node_annotations(b, node, kv);
    drv_log_info("bridge: node WireGuard key recorded", "node=%s port=%s", node, ports);
}

void drv_bridge_observed(drv_bridge_t *b, const char *node, const char *addr)
{
    char norm[BNET_ADDR_MAX];
    bnode_t *bn = b && node ? bdesired_node(&b->desired, node) : NULL;
    if (!bn || !bnet_addr_norm(addr, norm))
        return;
    bool same = !strcmp(bn->net.observed, norm);
    bnet_observed(&b->desired, bn, norm);
    if (same && !strcmp(bn->net.observed_ann, norm))
        return;
    const char *const kv[] = {BNET_ANN_OBSERVED, norm, NULL};
    set_node_annotations(b, node, kv);
    if (b->store_changed && b->on_change) {
        b->store_changed = false;
        b->on_change(b->ctx);
    }
}

/* The Node's status from the report: the agent's fields, the Ready condition's heartbeat in
 * the hub's clock (agents' clocks drift), and transition times kept while nothing changes. */
static cJSON *node_status_from(const cJSON *reported, const cJSON *old_status, int64_t now_ms)
{
    cJSON *st = cJSON_CreateObject();
    static const char *const keys[] = {"capacity",  "allocatable", "nodeInfo",
                                       "addresses", "images",      "daemonEndpoints"};
    for (size_t i = 0; st && i < sizeof(keys) / sizeof(keys[0]); i++) {
        const cJSON *v = drv_json_get(reported, keys[i]);
        if (v && !cJSON_AddItemToObject(st, keys[i], cJSON_Duplicate(v, true))) {
            cJSON_Delete(st);
            return NULL;
        }
    }
    /* Every field of Kubernetes' NodeSystemInfo, "" when the agent (an older one) did not
     * say: clients such as python3-kubernetes refuse a Node without them. */
    static const char *const info_keys[] = {"machineID",       "systemUUID",
                                            "bootID",          "kernelVersion",
                                            "osImage",         "containerRuntimeVersion",
                                            "kubeletVersion",  "kubeProxyVersion",
                                            "operatingSystem", "architecture"};
    cJSON *info = st ? drv_json_get(st, "nodeInfo") : NULL;
    if (st && !cJSON_IsObject(info)) {
        cJSON_DeleteItemFromObjectCaseSensitive(st, "nodeInfo");
        info = cJSON_AddObjectToObject(st, "nodeInfo");
    }
    for (size_t i = 0; info && i < sizeof(info_keys) / sizeof(info_keys[0]); i++)
        if (!cJSON_IsString(drv_json_get(info, info_keys[i])))
            cJSON_AddStringToObject(info, info_keys[i], "");
    char now[40];
    drv_ctrl_time_format(now_ms, now, sizeof(now));
    cJSON *conds = st ? cJSON_AddArrayToObject(st, "conditions") : NULL;
    const cJSON *c;
    cJSON_ArrayForEach(c, (conds ? drv_json_get(reported, "conditions") : NULL))
    {
        const char *type = drv_json_str(c, "type"), *status = drv_json_str(c, "status");
        if (!cJSON_IsObject(c) || !type || !status || !strcmp(type, "DuplicateIdentity"))
            continue; /* (that one is the hub's, kept below) */
        cJSON *nc = cJSON_Duplicate(c, true);
        if (!nc)
            continue;
        const cJSON *oc = find_condition(old_status, type);
        const char *ostatus = drv_json_str(oc, "status"),
                   *otrans = drv_json_str(oc, "lastTransitionTime");
        cJSON_DeleteItemFromObjectCaseSensitive(nc, "lastTransitionTime");
        cJSON_AddStringToObject(nc, "lastTransitionTime",
                                ostatus && otrans && !strcmp(ostatus, status) ? otrans : now);
        if (!strcmp(type, "Ready")) {
            cJSON_DeleteItemFromObjectCaseSensitive(nc, "lastHeartbeatTime");
            cJSON_AddStringToObject(nc, "lastHeartbeatTime", now);
        }
        cJSON_AddItemToArray(conds, nc);
    }
    /* Conditions only the hub writes survive the agent's report. */
    const cJSON *dup = find_condition(old_status, "DuplicateIdentity");
    if (conds && dup)
        cJSON_AddItemToArray(conds, cJSON_Duplicate(dup, true));
    return st;
}

/* A pod's status from its agent; the hub's PodScheduled condition is kept. */
static void ingest_pod(drv_bridge_t *b, const char *node, const cJSON *rp, bool *changed)
{
    const cJSON *meta = drv_json_get(rp, "metadata"), *status = drv_json_get(rp, "status");
    const char *name = drv_json_str(meta, "name"), *ns = drv_json_str(meta, "namespace"),
               *uid = drv_json_str(meta, "uid");
    if (!name || !cJSON_IsObject(status))
        return;
    _cleanup_cjson_ cJSON *pod = NULL;
    if (drv_hstore_get(b->store, DRV_KIND_POD, ns ? ns : "default", name, &pod, NULL) != DRV_OK)
        return; /* deleted here: the agent is stopping it */
    const char *have_uid = drv_json_str(drv_json_get(pod, "metadata"), "uid");
    const char *bound = drv_json_str(drv_json_get(pod, "spec"), "nodeName");
    if (!uid || !have_uid || strcmp(uid, have_uid) || !bound || strcmp(bound, node))
        return; /* an older pod of the same name, or one replaced elsewhere */
    cJSON *st = cJSON_Duplicate(status, true);
    if (!st)
        return;
    const cJSON *sched = find_condition(drv_json_get(pod, "status"), "PodScheduled");
    if (sched && !find_condition(st, "PodScheduled")) {
        cJSON *conds = (cJSON *)drv_json_get(st, "conditions");
        if (!cJSON_IsArray(conds)) {
            cJSON_DeleteItemFromObjectCaseSensitive(st, "conditions");
            conds = cJSON_AddArrayToObject(st, "conditions");
        }
        if (conds)
            cJSON_AddItemToArray(conds, cJSON_Duplicate(sched, true));
    }
    uint64_t before = drv_hstore_rv(b->store), after = 0;
    drv_error_t e = DRV_ERROR_INIT;
    if (drv_hstore_update_status(b->store, DRV_KIND_POD, ns ? ns : "default", name, st, &after,
                                 &e) != DRV_OK)
        drv_log_warn("bridge: cannot store pod status", "pod=%s/%s error=\"%s\"",
                     ns ? ns : "default", name, drv_error_msg(&e));
    else if (after > before)
        *changed = true;
}

static void on_status(drv_bridge_t *b, const char *node, const drv_mqtt_event_t *ev)
{
    drv_proto_status_t st = {0};
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_proto_status_parse(ev->payload, ev->len, node, &st, &err) != DRV_OK) {
        refused(b, ev->topic, drv_error_msg(&err));
        return;
    }
    bnode_t *bn = bdesired_node(&b->desired, node);
    int64_t now = (int64_t)drv_wall_ms();
    if (bn) {
        bn->last_seen_ms = now;
        bn->observed_generation = st.observed_generation;
        bn->reported = true;
    }
    cJSON *nodeobj = NULL;
    bool changed = false;
    uint64_t before = drv_hstore_rv(b->store);
    if (upsert_node(b, node, drv_json_get(st.node_status, "labels"), &nodeobj, &err) != DRV_OK) {
        refused(b, ev->topic, drv_error_msg(&err));
        drv_proto_status_free(&st);
        return;
    }
    cJSON *nst = node_status_from(st.node_status, drv_json_get(nodeobj, "status"), now);
    cJSON_Delete(nodeobj);
    ingest_network(b, bn, node, drv_json_get(st.node_status, "network"));
    char sdir[1024];
    if (bstorage_ingest(b->store, node, drv_json_get(st.node_status, "storage"), sdir,
                        sizeof(sdir)))
        b->store_changed = true;
    if (sdir[0]) {
        const char *const kv[] = {DRV_SCHED_ANN_STORAGE_DIR, sdir, NULL};
        set_node_annotations(b, node, kv);
    }
    if (nst &&
        drv_hstore_update_status(b->store, DRV_KIND_NODE, NULL, node, nst, NULL, &err) != DRV_OK)
        drv_log_warn("bridge: cannot store node status", "node=%s error=\"%s\"", node,
                     drv_error_msg(&err));
    const cJSON *p;
    cJSON_ArrayForEach(p, st.pods)
    {
        ingest_pod(b, node, p, &changed);
    }
    drv_proto_status_free(&st);
    if ((changed || drv_hstore_rv(b->store) != before) && b->on_change)
        b->store_changed = true;
}

static void mark_stale(bnode_t *bn, bstale_t why)
{
    bn->reported = false;
    bn->stale_why = (uint8_t)why;
}

void drv_bridge_report_stale(void *bridge, const char *node)
{
    drv_bridge_t *b = bridge;
    bnode_t *bn = b && node ? bdesired_node(&b->desired, node) : NULL;
    if (bn)
        mark_stale(bn, BSTALE_OVERRIDDEN);
}

static void record_resync(drv_bridge_t *b, const char *node, bstale_t why)
{
    static const char *const msgs[] = {
        [BSTALE_NEVER] = "The node sends heartbeats but its status report never arrived: asking "
                         "for one.",
        [BSTALE_OVERRIDDEN] = "The hub marked the node and its pods while it was away: asking for "
                              "its full status report.",
        [BSTALE_SESSION] = "The broker lost the hub's session (status reports may have been "
                           "dropped): asking for a full status report.",
    };
    node_event(b, node, "Normal", "Resync", msgs[why <= BSTALE_SESSION ? why : BSTALE_NEVER]);
}

/* Sets (or replaces) the Node's condition of this type, written by the hub. */
static void set_node_condition(drv_bridge_t *b, const char *node, const char *type,
                               const char *status, const char *reason, const char *message)
{
    _cleanup_cjson_ cJSON *obj = NULL;
    if (drv_hstore_get(b->store, DRV_KIND_NODE, NULL, node, &obj, NULL) != DRV_OK)
        return;
    const cJSON *ost = drv_json_get(obj, "status");
    _cleanup_cjson_ cJSON *st =
        cJSON_IsObject(ost) ? cJSON_Duplicate(ost, true) : cJSON_CreateObject();
    cJSON *conds = st ? (cJSON *)drv_json_get(st, "conditions") : NULL;
    if (st && !cJSON_IsArray(conds)) {
        cJSON_DeleteItemFromObjectCaseSensitive(st, "conditions");
        conds = cJSON_AddArrayToObject(st, "conditions");
    }
    if (!conds)
        return;
    const cJSON *old = find_condition(st, type);
    const char *otrans = drv_json_str(old, "lastTransitionTime"),
               *ostatus = drv_json_str(old, "status");
    char now[40];
    drv_ctrl_time_format((int64_t)drv_wall_ms(), now, sizeof(now));
    cJSON *c = cJSON_CreateObject();
    if (!c || !cJSON_AddStringToObject(c, "type", type) ||
        !cJSON_AddStringToObject(c, "status", status) ||
        !cJSON_AddStringToObject(c, "reason", reason) ||
        !cJSON_AddStringToObject(c, "message", message) ||
        !cJSON_AddStringToObject(c, "lastHeartbeatTime", now) ||
        !cJSON_AddStringToObject(c, "lastTransitionTime",
                                 ostatus && otrans && !strcmp(ostatus, status) ? otrans : now)) {
        cJSON_Delete(c);
        return;
    }
    for (int i = cJSON_GetArraySize(conds) - 1; i >= 0; i--) {
        const char *t = drv_json_str(cJSON_GetArrayItem(conds, i), "type");
        if (t && !strcmp(t, type))
            cJSON_DeleteItemFromArray(conds, i);
    }
    cJSON_AddItemToArray(conds, c);
    drv_error_t err = DRV_ERROR_INIT;
    /* (drv_hstore_update_status takes st, on success and failure.) */
    if (drv_hstore_update_status(b->store, DRV_KIND_NODE, NULL, node, TAKE_PTR(st), NULL, &err) !=
        DRV_OK)
        drv_log_warn("bridge: cannot set a node condition", "node=%s type=%s error=\"%s\"", node,
                     type, drv_error_msg(&err));
    else
        b->store_changed = true;
}

/* A message from agent run inst of node (heartbeat or presence). A run replacing another is a
 * restart; the replaced run speaking again soon after means two devices present this node's
 * identity at once (a card copied after enrollment: both connect as drover-agent-NODE and take
 * the connection from each other): a Warning event and the Node condition DuplicateIdentity,
 * cleared once one run alone has spoken for DUP_CLEAR_GRACES grace periods. */
#define DUP_WINDOW_GRACES 6
#define DUP_CLEAR_GRACES 12
static void seen_instance(drv_bridge_t *b, bnode_t *bn, const char *node, const char *inst)
{
    if (!inst || !inst[0])
        return; /* an older agent */
    char run[sizeof(bn->instance)];
    if (drv_fmt(run, sizeof(run), "%s", inst) != DRV_OK) {
        drv_log_warn("bridge: agent run id too long: ignored", "node=%s", node);
        return;
    }
    int64_t now = (int64_t)drv_wall_ms();
    if (!bn->instance[0] || !strcmp(inst, bn->instance)) {
        if (!bn->instance[0]) {
            memcpy(bn->instance, run, sizeof(bn->instance));
            bn->instance_since_ms = now;
        }
        if (bn->duplicate && now - bn->duplicate_ms > DUP_CLEAR_GRACES * b->grace_ms) {
            bn->duplicate = false;
            set_node_condition(b, node, "DuplicateIdentity", "False", "OneDevice",
                               "One device presents this node's identity.");
            drv_log_info("bridge: one device again for this node's identity", "node=%s", node);
        }
        return;
    }
    bool alternating = bn->prev_instance[0] && !strcmp(inst, bn->prev_instance) &&
                       now - bn->instance_since_ms < DUP_WINDOW_GRACES * b->grace_ms;
    if (alternating) {
        bn->duplicate_ms = now;
        if (!bn->duplicate) {
            bn->duplicate = true;
            char msg[512];
            drv_fmt_cut(msg, sizeof(msg),
                        "Two devices present the identity of node %s at once (agent runs %s and %s "
                        "keep taking the connection from each other): a card copied after "
                        "enrollment? Revoke the node (drover node revoke %s) and enrol each device "
                        "with a token of its own.",
                        node, bn->instance, inst, node);
            drv_log_warn("bridge: duplicate identity", "node=%s runs=\"%s %s\"", node, bn->instance,
                         inst);
            node_event(b, node, "Warning", "DuplicateIdentity", msg);
            set_node_condition(b, node, "DuplicateIdentity", "True", "TwoDevicesOneIdentity", msg);
        }
    }
    _Static_assert(sizeof(bn->prev_instance) == sizeof(bn->instance), "one size of run id");
    memcpy(bn->prev_instance, bn->instance, sizeof(bn->prev_instance));
    memcpy(bn->instance, run, sizeof(bn->instance));
    bn->instance_since_ms = now;
}

static void on_heartbeat(drv_bridge_t *b, const char *node, const drv_mqtt_event_t *ev)
{
    drv_proto_heartbeat_t hb;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_proto_heartbeat_parse(ev->payload, ev->len, node, &hb, &err) != DRV_OK) {
        refused(b, ev->topic, drv_error_msg(&err));
        return;
    }
    bnode_t *bn = bdesired_node(&b->desired, node);
    if (!bn)
        return;
    int64_t now = (int64_t)drv_wall_ms();
    bn->last_seen_ms = now;
    bn->observed_generation = hb.observed_generation;
    seen_instance(b, bn, node, hb.instance);
    /* Beating, but the store does not hold its latest full report (it was sent before the
     * hub subscribed, on a first start; the broker lost the hub's session; or the hub wrote
     * over it, marking the node and its pods while it was away — an agent whose connection
     * outlived a short cut never knew and has nothing new to say): a new generation of its
     * document makes the agent apply and report again. At most every RESYNC_MS. */
    if (!bn->reported && now - bn->last_resync_ms >= RESYNC_MS) {
        bn->last_resync_ms = now;
        /* The new generation must come from the store: an Event saying so moves it. */
        record_resync(b, node, (bstale_t)bn->stale_why);
        bn->force = true;
        if (!bn->dirty) {
            bn->dirty = true;
            b->desired.ndirty++;
        }
        drv_log_info("bridge: asking a node for its status (resync)", "node=%s", node);
    }
}

static void on_online(drv_bridge_t *b, const char *node, const drv_mqtt_event_t *ev)
{
    drv_proto_online_t on;
    drv_error_t err = DRV_ERROR_INIT;
    if (ev->len == 0)
        return; /* a retained message being cleared */
    if (drv_proto_online_parse(ev->payload, ev->len, &on, &err) != DRV_OK) {
        refused(b, ev->topic, drv_error_msg(&err));
        return;
    }
    bnode_t *bn = bdesired_node(&b->desired, node);
    if (!bn)
        return;
    if (on.online) {
        seen_instance(b, bn, node, on.instance);
        if (!bn->online)
            b->stats.nodes_online++;
        bn->online = true;
        bn->last_seen_ms = (int64_t)drv_wall_ms();
        drv_log_info("bridge: node online", "node=%s", node);
        return;
    }
    if (on.instance[0] && bn->instance[0] && strcmp(on.instance, bn->instance)) {
        /* The Will of a run another has replaced (a restart took its connection over). */
        drv_log_info("bridge: a replaced agent run's Will ignored", "node=%s run=%s", node,
                     on.instance);
        return;
    }
    if (bn->online && b->stats.nodes_online)
        b->stats.nodes_online--;
    bn->online = false;
    /* Whatever marks it now is the hub's word, not the agent's: its next beat asks again. */
    mark_stale(bn, BSTALE_OVERRIDDEN);
    /* A retained Will is the broker's memory of a loss that may be long over (the node may
     * be back on a connection the hub has not heard from yet): the grace period decides. A
     * Will that arrives live is a loss now, whenever the hub connected (MQTT clears the
     * retain flag on messages delivered to an established subscription). */
    if (ev->retained && (int64_t)drv_wall_ms() - b->connected_ms < b->grace_ms) {
        drv_log_info("bridge: node offline (retained Will delivered as the hub connected; the "
                     "grace period decides)",
                     "node=%s", node);
        return;
    }
    drv_log_info("bridge: node offline", "node=%s will=%s", node, on.time[0] ? "no" : "yes");
    if (drv_ctrl_node_mark_unreachable(b->store, node, (int64_t)drv_wall_ms(), &err) != DRV_OK) {
        if (err.code != DRV_ERR_NOTFOUND)
            drv_log_warn("bridge: cannot mark node unreachable", "node=%s error=\"%s\"", node,
                         drv_error_msg(&err));
    } else {
        b->store_changed = true;
    }
}

/* A device speaks only about itself: an event it sends must be about its own Node or a pod
 * bound to it, in that object's namespace, named "<node>.<suffix>" (so it can neither
 * overwrite the hub's events nor another node's), and its source is set to say who sent it. */
static bool event_is_own(drv_bridge_t *b, const char *node, cJSON *event, char *why, size_t whysz)
{
    const cJSON *meta = drv_json_get(event, "metadata"),
                *io = drv_json_get(event, "involvedObject");
    const char *name = drv_json_str(meta, "name"), *ns = drv_json_str(meta, "namespace");
    const char *kind = drv_json_str(io, "kind"), *oname = drv_json_str(io, "name"),
               *ons = drv_json_str(io, "namespace");
    size_t nl = strlen(node);
    _cleanup_cjson_ cJSON *obj = NULL; /* the object it is about, for its uid */
    if (!name || strncmp(name, node, nl) || name[nl] != '.' || !name[nl + 1]) {
        drv_fmt_cut(why, whysz, "event: metadata.name: must be \"%s.<suffix>\"", node);
        return false;
    }
    if (!ns)
        ns = "default";
    if (kind && !strcmp(kind, "Node")) {
        if (!oname || strcmp(oname, node)) {
            drv_fmt_cut(why, whysz, "event: involvedObject: a node speaks only of itself (%s)",
                        node);
            return false;
        }
        if (drv_hstore_get(b->store, DRV_KIND_NODE, NULL, node, &obj, NULL) != DRV_OK)
            obj = NULL;
    } else if (kind && !strcmp(kind, "Pod") && oname) {
        if (ons && strcmp(ons, ns)) {
            drv_fmt_cut(why, whysz, "event: metadata.namespace: must be the pod's (%.63s)", ons);
            return false;
        }
        const char *bound = NULL;
        if (drv_hstore_get(b->store, DRV_KIND_POD, ns, oname, &obj, NULL) == DRV_OK)
            bound = drv_json_str(drv_json_get(obj, "spec"), "nodeName");
        if (!bound || strcmp(bound, node)) {
            drv_fmt_cut(why, whysz, "event: involvedObject: pod %.63s/%.63s is not bound to %s", ns,
                        oname, node);
            return false;
        }
    } else {
        drv_fmt_cut(why, whysz, "event: involvedObject.kind: must be Node or Pod");
        return false;
    }
    cJSON *src = cJSON_CreateObject();
    if (!src || !cJSON_AddStringToObject(src, "component", "drover-agent") ||
        !cJSON_AddStringToObject(src, "host", node)) {
        cJSON_Delete(src);
        drv_fmt_cut(why, whysz, "event: out of memory");
        return false;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(event, "source");
    cJSON_AddItemToObject(event, "source", src);
    /* kubectl describe finds an object's events by involvedObject.uid too. */
    const char *uid = drv_json_str(drv_json_get(obj, "metadata"), "uid");
    cJSON *ioo = cJSON_GetObjectItemCaseSensitive(event, "involvedObject");
    if (uid && cJSON_IsObject(ioo)) {
        cJSON_DeleteItemFromObjectCaseSensitive(ioo, "uid");
        cJSON_AddStringToObject(ioo, "uid", uid);
    }
    return true;
}

static void on_event(drv_bridge_t *b, const char *node, const drv_mqtt_event_t *ev)
{
    bnode_t *bn = bdesired_node(&b->desired, node);
    int64_t now = (int64_t)drv_wall_ms();
    if (!bn)
        return;
    /* A token bucket: bursts of EVENTS_BURST, EVENTS_PER_NODE_PER_S on average (what a
     * device records is kept until the event TTL: a steady stream would grow the store). */
    if (bn->events_refill_ms == 0)
        bn->events_tokens = EVENTS_BURST;
    else if (now > bn->events_refill_ms) {
        int64_t add = (now - bn->events_refill_ms) * EVENTS_PER_NODE_PER_S / 1000;
        if (add > 0)
            bn->events_tokens = (unsigned)(bn->events_tokens + add > EVENTS_BURST
                                               ? EVENTS_BURST
                                               : bn->events_tokens + (unsigned)add);
    }
    if (bn->events_refill_ms == 0 || now - bn->events_refill_ms >= 1000 / EVENTS_PER_NODE_PER_S)
        bn->events_refill_ms = now;
    if (bn->events_tokens == 0) {
        refused(b, ev->topic, "too many events from this node (a burst of 20, then 1 a second)");
        return;
    }
    bn->events_tokens--;
    cJSON *obj = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_proto_event_parse(ev->payload, ev->len, &obj, &err) != DRV_OK) {
        refused(b, ev->topic, drv_error_msg(&err));
        return;
    }
    _cleanup_cjson_ cJSON *event = obj;
    drv_diags_t d = {0};
    if (drv_model_normalize(event, &d) != DRV_OK) {
        char *t = drv_diags_format(&d, "event: ");
        refused(b, ev->topic, t ? t : "event: invalid");
        free(t);
        drv_diags_free(&d);
        return;
    }
    drv_diags_free(&d);
    char why[300];
    if (!event_is_own(b, node, event, why, sizeof(why))) {
        refused(b, ev->topic, why);
        return;
    }
    drv_err_t e = drv_hstore_create(b->store, DRV_KIND_EVENT, event, &err);
    if (e == DRV_ERR_EXISTS) {
        drv_error_clear(&err);
        e = drv_hstore_update(b->store, DRV_KIND_EVENT, event, &err);
    }
    if (e != DRV_OK)
        drv_log_warn("bridge: cannot store event", "node=%s error=\"%s\"", node,
                     drv_error_msg(&err));
    else
        b->store_changed = true;
}

/* ---- usage ---- */

/* A usage report: checked whole (drv_proto_metrics_parse), its pods kept only where the hub
 * bound them to this node (a device reports for its own pods, never another's), then into the
 * history (which refuses a report dated ahead of the hub's clock or replayed). */
static void on_metrics(drv_bridge_t *b, const char *node, const drv_mqtt_event_t *ev)
{
    if (!b->metrics)
        return;
    drv_proto_metrics_t m;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_proto_metrics_parse(ev->payload, ev->len, node, &m, &err) != DRV_OK) {
        drv_metrics_count_refused(b->metrics);
        refused(b, ev->topic, drv_error_msg(&err));
        return;
    }
    size_t kept = 0, foreign = 0;
    for (size_t i = 0; i < m.n_pods; i++) {
        char key[DRV_PROTO_NAME_MAX + 72];
        bpod_t *p = NULL;
        if (drv_fmt(key, sizeof(key), "%s/%s", m.pods[i].ns, m.pods[i].name) == DRV_OK)
            p = drv_map_get(&b->desired.pods, key);
        /* Only a pod the hub bound here, under its own uid, once per report: a device must not
         * file figures under another pod's uid, nor fill the history with made-up ones. */
        bool dup = false;
        for (size_t k = 0; k < kept && !dup; k++)
            dup = !strcmp(m.pods[k].ns, m.pods[i].ns) && !strcmp(m.pods[k].name, m.pods[i].name);
        if (p && p->node && !strcmp(p->node->name, node) && p->uid[0] &&
            !strcmp(p->uid, m.pods[i].uid) && !dup) {
            if (kept != i)
                m.pods[kept] = m.pods[i];
            kept++;
        } else {
            foreign++;
        }
    }
    m.n_pods = kept;
    if (foreign) {
        drv_metrics_count_refused(b->metrics);
        char why[160];
        drv_fmt_cut(why, sizeof(why),
                    "usage of %zu pods not bound to this node (or not under their uid, or "
                    "repeated) dropped",
                    foreign);
        refused(b, ev->topic, why);
    }
    if (drv_metrics_ingest(b->metrics, &m, (int64_t)drv_wall_ms(), &err) != DRV_OK)
        refused(b, ev->topic, drv_error_msg(&err));
    drv_proto_metrics_free(&m);
}

/* ---- logs ---- */

static blogs_t *logs_find(drv_bridge_t *b, const char *id)
{
    for (size_t i = 0; i < DRV_BRIDGE_LOGS_MAX; i++)
        if (b->logs[i].used && !strcmp(b->logs[i].id, id))
            return &b->logs[i];
    return NULL;
}

static void logs_end(blogs_t *l)
{
    l->used = false;
}

static void on_logs(drv_bridge_t *b, const char *node, const char *id, const drv_mqtt_event_t *ev)
{
    blogs_t *l = logs_find(b, id);
    if (!l || strcmp(l->node, node))
        return; /* cancelled, timed out, or not ours */
    drv_proto_logs_chunk_t c = {0};
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_proto_logs_chunk_parse(ev->payload, ev->len, &c, &err) != DRV_OK) {
        refused(b, ev->topic, drv_error_msg(&err));
        drv_bridge_logs_part_t part = {.eof = true, .error = drv_error_msg(&err)};
        l->cb(l->ctx, &part);
        logs_end(l);
        return;
    }
    if (c.seq < l->next_seq) {
        drv_proto_logs_chunk_free(&c); /* a QoS 1 redelivery */
        return;
    }
    l->next_seq = c.seq + 1;
    l->answered = true;
    l->deadline_ms = (int64_t)drv_wall_ms() + LOGS_IDLE_TIMEOUT_MS;
    drv_bridge_logs_part_t part = {
        .data = c.data, .len = c.len, .eof = c.eof, .error = c.error[0] ? c.error : NULL};
    l->cb(l->ctx, &part);
    if (c.eof)
        logs_end(l);
    drv_proto_logs_chunk_free(&c);
}

static drv_err_t publish_logs_req(drv_bridge_t *b, const char *node,
                                  const drv_proto_logs_req_t *req, bool cancel, drv_error_t *err)
{
    char topic[DRV_PROTO_TOPIC_MAX];
    drv_err_t e = drv_proto_topic(topic, sizeof(topic), node, DRV_PROTO_LOGS_REQ, NULL, err);
    if (e != DRV_OK)
        return e;
    _cleanup_cjson_ cJSON *msg = drv_proto_logs_req_build(req, err);
    if (!msg)
        return err && err->code ? err->code : DRV_ERR_NOMEM;
    if (cancel) {
        cJSON_DeleteItemFromObjectCaseSensitive(msg, "cancel");
        cJSON_AddBoolToObject(msg, "cancel", true);
    }
    _cleanup_free_ char *payload = NULL;
    size_t len = 0;
    e = drv_proto_encode(msg, DRV_PROTO_LOGS_REQ, &payload, &len, err);
    if (e != DRV_OK)
        return e;
    e = drv_mqtt_publish(b->mqtt, topic, payload, len, drv_proto_qos(DRV_PROTO_LOGS_REQ), false,
                         err);
    if (e == DRV_OK)
        b->stats.published++;
    return e;
}

drv_err_t drv_bridge_logs_start(drv_bridge_t *b, const char *node, drv_proto_logs_req_t *req,
                                drv_bridge_logs_fn cb, void *ctx, drv_error_t *err)
{
    if (!drv_mqtt_connected(b->mqtt))
        return drv_error_set(err, DRV_ERR_AGAIN, 0, "the hub is not connected to the broker");
    blogs_t *l = NULL;
    for (size_t i = 0; i < DRV_BRIDGE_LOGS_MAX && !l; i++)
        if (!b->logs[i].used)
            l = &b->logs[i];
    if (!l)
        return drv_error_set(err, DRV_ERR_AGAIN, 0, "%d log requests in flight already",
                             DRV_BRIDGE_LOGS_MAX);
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
        rnd = (uint32_t)(int64_t)drv_wall_ms();
    if (drv_fmt(req->id, sizeof(req->id), "h%llx-%08x", (unsigned long long)++b->logs_counter,
                rnd) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "log request: id too long");
    *l = (blogs_t){.used = true,
                   .cb = cb,
                   .ctx = ctx,
                   .deadline_ms = (int64_t)drv_wall_ms() + DRV_BRIDGE_LOGS_FIRST_TIMEOUT_MS};
    if (drv_fmt(l->id, sizeof(l->id), "%s", req->id) != DRV_OK ||
        drv_fmt(l->node, sizeof(l->node), "%s", node) != DRV_OK) {
        l->used = false;
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "log request: id or node name too long");
    }
    drv_err_t e = publish_logs_req(b, node, req, false, err);
    if (e != DRV_OK)
        l->used = false;
    return e;
}

void drv_bridge_logs_cancel(drv_bridge_t *b, const char *id)
{
    blogs_t *l = logs_find(b, id);
    if (!l)
        return;
    drv_proto_logs_req_t req = {0};
    _Static_assert(sizeof(req.id) == sizeof(l->id), "one size of log request id");
    memcpy(req.id, l->id, sizeof(req.id));
    DRV_FMT_LIT(req.pod, "-");
    DRV_FMT_LIT(req.namespace_, "-");
    drv_error_t err = DRV_ERROR_INIT;
    if (publish_logs_req(b, l->node, &req, true, &err) != DRV_OK)
        drv_log_debug("bridge: cannot cancel a log request", "id=%s error=\"%s\"", id,
                      drv_error_msg(&err));
    logs_end(l);
}

static void logs_expire(drv_bridge_t *b, int64_t now)
{
    for (size_t i = 0; i < DRV_BRIDGE_LOGS_MAX; i++) {
        blogs_t *l = &b->logs[i];
        if (!l->used || now < l->deadline_ms)
            continue;
        drv_bridge_logs_part_t part = {
            .eof = true,
            .timed_out = true,
            .error = l->answered ? "the agent stopped sending the log"
                                 : "the node's agent did not answer (is the node online?)"};
        drv_bridge_logs_cancel(b, l->id); /* frees the slot; cb still ours to call */
        l->cb(l->ctx, &part);
    }
}

/* ---- MQTT ---- */

/* The broker has no session of ours: it may have lost its retained documents too (a crash
 * between two saves, a new broker). Every document goes out again; agents ignore the ones
 * whose generation they have applied. */
static void republish_all(drv_bridge_t *b)
{
    void *v;
    for (size_t it = 0; drv_map_next(&b->desired.nodes, &it, NULL, &v);) {
        bnode_t *n = v;
        n->published = false;
        if (!n->dirty) {
            n->dirty = true;
            b->desired.ndirty++;
        }
    }
}

static void on_mqtt(void *ud, const drv_mqtt_event_t *ev)
{
    drv_bridge_t *b = ud;
    if (ev->kind == DRV_MQTT_CONNECTED) {
        b->stats.connected = true;
        drv_log_info("bridge: connected to the broker", "session_present=%d", ev->session_present);
        /* Every document goes out again, even with our session kept: a broker restarted
         * from an older save of its persistence file holds older retained documents (agents
         * would refuse them as replays, and a device starting afresh would get one). The
         * same generation is ignored by agents that have it. */
        republish_all(b);
        /* Every node heard of before counts as heard now: the outage was ours (or the
         * broker's), and the agents are reconnecting with back-off. */
        b->connected_ms = (int64_t)drv_wall_ms();
        void *v;
        for (size_t it = 0; drv_map_next(&b->desired.nodes, &it, NULL, &v);) {
            bnode_t *n = v;
            if (n->last_seen_ms >= 0 && n->last_seen_ms < b->connected_ms)
                n->last_seen_ms = b->connected_ms;
            /* Without our session, what agents reported meanwhile was dropped. */
            if (!ev->session_present && n->reported)
                mark_stale(n, BSTALE_SESSION);
        }
        return;
    }
    if (ev->kind == DRV_MQTT_DISCONNECTED) {
        b->stats.connected = false;
        drv_log_warn("bridge: broker connection lost", "reason=\"%s\"",
                     ev->reason ? ev->reason : "");
        return;
    }
    b->stats.received++;
    drv_proto_msg_t kind;
    char node[DRV_PROTO_NODE_MAX + 1], id[DRV_PROTO_ID_MAX + 1];
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_proto_parse_topic(ev->topic, &kind, node, id, &err) != DRV_OK) {
        refused(b, ev->topic, drv_error_msg(&err));
        return;
    }
    if (ev->len > drv_proto_max_payload(kind)) {
        refused(b, ev->topic, "payload over its size cap");
        return;
    }
    switch (kind) {
    case DRV_PROTO_STATUS:
        on_status(b, node, ev);
        break;
    case DRV_PROTO_HEARTBEAT:
        on_heartbeat(b, node, ev);
        break;
    case DRV_PROTO_ONLINE:
        on_online(b, node, ev);
        break;
    case DRV_PROTO_EVENTS:
        on_event(b, node, ev);
        break;
    case DRV_PROTO_LOGS_RES:
        on_logs(b, node, id, ev);
        break;
    case DRV_PROTO_METRICS:
        on_metrics(b, node, ev);
        break;
    default:
        break; /* our own topics (desired, logs/req) are not subscribed to */
    }
}

void drv_bridge_deliver(drv_bridge_t *b, const char *topic, const void *payload, size_t len)
{
    drv_mqtt_event_t ev = {
        .kind = DRV_MQTT_MESSAGE, .topic = topic, .payload = payload, .len = len, .qos = 1};
    on_mqtt(b, &ev);
}

void drv_bridge_poll(drv_bridge_t *b)
{
    /* A burst of status reports is one transaction, of at most POLL_BATCH messages: the
     * loop serves the API between two, and the writes of one (a report writes each of its
     * pods) stay well within the store's change log, which is read right after. */
    bool batch = drv_hstore_batch_begin(b->store, NULL) == DRV_OK;
    long long until = drv_now_ms() + POLL_MS;
    for (size_t taken = 0, n = POLL_STEP;
         taken < POLL_BATCH && n == POLL_STEP && (taken == 0 || drv_now_ms() < until); taken += n)
        n = drv_mqtt_poll_max(b->mqtt, POLL_STEP, on_mqtt, b);
    drv_error_t err = DRV_ERROR_INIT;
    if (batch && drv_hstore_batch_end(b->store, &err) != DRV_OK)
        drv_log_error("bridge: cannot store what agents reported", "error=\"%s\"",
                      drv_error_msg(&err));
    drv_error_clear(&err);
    if (bdesired_follow(&b->desired, b->store, &err) != DRV_OK)
        drv_log_error("bridge: following the store failed", "error=\"%s\"", drv_error_msg(&err));
    if (b->store_changed) {
        b->store_changed = false;
        if (b->on_change)
            b->on_change(b->ctx);
    }
}

void drv_bridge_node_rekeyed(drv_bridge_t *b, const char *node)
{
    bnode_t *n = bdesired_node(&b->desired, node);
    if (n)
        bdesired_mark(&b->desired, n);
}

void drv_bridge_kick(drv_bridge_t *b, const char *node)
{
    char cmd[DRV_PROTO_NODE_MAX + 8];
    drv_error_t err = DRV_ERROR_INIT;
    if (!b || drv_proto_check_node(node, &err) != DRV_OK)
        return;
    int n = snprintf(cmd, sizeof(cmd), "kick %s", node);
    if (n < 0 || (size_t)n >= sizeof(cmd) ||
        drv_mqtt_publish(b->mqtt, "$CONTROL/drover/v1", cmd, (size_t)n, 1, false, &err) != DRV_OK)
        drv_log_warn("bridge: cannot ask the broker to disconnect a node", "node=%s error=\"%s\"",
                     node, drv_error_msg(&err));
    else
        drv_log_info("bridge: asked the broker to disconnect a node", "node=%s", node);
}

int drv_bridge_fd(const drv_bridge_t *b)
{
    return drv_mqtt_fd(b->mqtt);
}

/* ---- publishing ---- */

/* Builds n's document and hands it to the signer, which encodes, signs and publishes it off
 * the loop. Recorded as published at once (the signer sends it, or a newer one of n's); a
 * failure comes back through signed_done. false: the signer's queue is full (n stays marked). */
static bool publish_node(drv_bridge_t *b, bnode_t *n)
{
    /* Never above the store's resourceVersion, so that after a hub restart (which forgets
     * n->generation) a new document still gets a greater generation than any before it. A
     * changed document always has a greater one: its change moved the resourceVersion. */
    uint64_t gen = drv_hstore_rv(b->store);
    if (gen < n->generation)
        gen = n->generation;
    drv_digest_t sum;
    drv_error_t err = DRV_ERROR_INIT;
    bool unchanged = false;
    cJSON *doc = bdesired_prepare(&b->desired, n, gen, &sum, &unchanged, &err);
    if (unchanged)
        return true; /* same content: agents already have it */
    if (!doc) {
        drv_log_error("bridge: cannot build desired state", "node=%s error=\"%s\"", n->name,
                      drv_error_msg(&err));
        return true; /* the agent keeps its last one; said once per change */
    }
    drv_err_t e = bsigner_submit(b->signer, n, doc, gen, &sum, &err);
    if (e != DRV_OK) {
        n->dirty = true; /* built again on a later tick */
        b->desired.ndirty++;
        if (e != DRV_ERR_AGAIN)
            drv_log_warn("bridge: cannot publish desired state", "node=%s error=\"%s\"", n->name,
                         drv_error_msg(&err));
        return e != DRV_ERR_AGAIN;
    }
    n->force = false;
    n->published = true;
    n->sum = sum;
    n->generation = gen;
    return true;
}

/* A document the signer finished: counted, or, failed and still n's latest, built again at
 * the next change (over the size cap: the agent keeps its last one). */
static void signed_done(void *ctx, const bsigner_result_t *r)
{
    drv_bridge_t *b = ctx;
    bnode_t *n = r->node;
    if (r->rc == DRV_OK) {
        b->stats.published++;
        b->stats.desired_published++;
        drv_log_debug("bridge: desired state published",
                      "node=%s generation=%llu pods=%zu bytes=%zu", n->name,
                      (unsigned long long)r->generation, n->npods, r->len);
        return;
    }
    drv_log_error("bridge: cannot publish desired state", "node=%s error=\"%s\"", n->name,
                  r->error ? r->error : "");
    if (r->latest)
        n->published = false;
}

int64_t drv_bridge_tick(drv_bridge_t *b, int64_t now_ms)
{
    logs_expire(b, now_ms);
    bsigner_collect(b->signer, signed_done, b);
    uint64_t dropped = drv_mqtt_dropped(b->mqtt);
    if (dropped != b->dropped_said) {
        drv_log_warn("bridge: heartbeats and usage reports dropped: the hub's loop fell behind "
                     "its MQTT queue",
                     "dropped=%llu total=%llu", (unsigned long long)(dropped - b->dropped_said),
                     (unsigned long long)dropped);
        b->dropped_said = dropped;
    }
    drv_error_t err = DRV_ERROR_INIT;
    if (bdesired_follow(&b->desired, b->store, &err) != DRV_OK) {
        if (strcmp(b->last_error, drv_error_msg(&err))) {
            drv_fmt_cut(b->last_error, sizeof(b->last_error), "%s", drv_error_msg(&err));
            drv_log_error("bridge: following the store failed", "error=\"%s\"",
                          drv_error_msg(&err));
        }
        return 1000;
    }
    bdesired_tokens_due(&b->desired, (int64_t)time(NULL));
    /* While the signer works, come back soon for its results. */
    int64_t idle = bsigner_pending(b->signer) ? 50 : 1000;
    if (!b->desired.ndirty)
        return idle;
    if (!b->dirty_since_ms)
        b->dirty_since_ms = now_ms;
    if (now_ms - b->dirty_since_ms < PUBLISH_DEBOUNCE_MS)
        return PUBLISH_DEBOUNCE_MS - (now_ms - b->dirty_since_ms);
    if (!drv_mqtt_connected(b->mqtt))
        return 200; /* publish once connected: Paho's offline buffer is for small bursts */
    b->dirty_since_ms = 0;
    size_t done = 0;
    void *v;
    for (size_t it = 0; b->desired.ndirty && done < PUBLISH_BATCH &&
                        drv_map_next(&b->desired.nodes, &it, NULL, &v);) {
        bnode_t *n = v;
        if (!n->dirty)
            continue;
        n->dirty = false;
        b->desired.ndirty--;
        done++;
        if (!publish_node(b, n))
            return 20; /* the signer's queue is full: the rest when it has room */
    }
    return b->desired.ndirty ? 0 : idle;
}

/* ---- life cycle ---- */

int64_t drv_bridge_heartbeat(void *bridge, const char *node)
{
    drv_bridge_t *b = bridge;
    bnode_t *n = drv_map_get(&b->desired.nodes, node);
    if (n && n->last_seen_ms >= 0)
        return n->last_seen_ms;
    return -1;
}

void drv_bridge_late(void *bridge, int64_t now_ms, int64_t after_ms, cJSON *out)
{
    drv_bridge_t *b = bridge;
    const char *name;
    void *v;
    for (size_t it = 0; drv_map_next(&b->desired.nodes, &it, &name, &v);) {
        const bnode_t *n = v;
        if (n->last_seen_ms < 0 || now_ms - n->last_seen_ms <= after_ms)
            continue;
        time_t t = (time_t)(n->last_seen_ms / 1000);
        struct tm tm;
        char ts[32];
        if (gmtime_r(&t, &tm) && strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm))
            cJSON_AddStringToObject(out, name, ts);
    }
}

void drv_bridge_stats(const drv_bridge_t *b, drv_bridge_stats_t *out)
{
    *out = b->stats;
    out->connected = drv_mqtt_connected(b->mqtt);
}

/* After a hub restart every node gets a grace period to speak before it counts as lost:
 * nodes the store had Ready are treated as just heard from. */
static void seed_heartbeats(drv_bridge_t *b)
{
    cJSON *nodes = NULL;
    if (drv_hstore_list(b->store, DRV_KIND_NODE, NULL, NULL, &nodes, NULL, NULL) != DRV_OK)
        return;
    const cJSON *n;
    cJSON_ArrayForEach(n, nodes)
    {
        const char *name = drv_json_str(drv_json_get(n, "metadata"), "name");
        const char *ready =
            drv_json_str(find_condition(drv_json_get(n, "status"), "Ready"), "status");
        bnode_t *bn =
            name && ready && !strcmp(ready, "True") ? bdesired_node(&b->desired, name) : NULL;
        if (bn)
            bn->last_seen_ms = b->started_ms;
    }
    cJSON_Delete(nodes);
}

drv_err_t drv_bridge_new(const drv_bridge_opts_t *opts, drv_bridge_t **out, drv_error_t *err)
{
    if (!opts->broker_url || !opts->store)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "bridge: broker URL and store required");
    drv_bridge_t *b = calloc(1, sizeof(*b));
    if (!b)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "bridge");
    bdesired_init(&b->desired);
    b->store = opts->store;
    b->on_change = opts->on_change;
    b->ctx = opts->ctx;
    b->started_ms = (int64_t)drv_wall_ms();
    b->grace_ms = opts->grace_ms > 0 ? opts->grace_ms : 10000;
    b->desired.signing_key = opts->signing_key;
    b->desired.node_key = opts->node_key;
    b->desired.node_key_ctx = opts->node_key_ctx;
    b->desired.clear_secrets = opts->clear_secrets;
    b->desired.sa_token = opts->sa_token;
    b->desired.sa_token_ctx = opts->sa_token_ctx;
    if (bnet_config(&b->desired, opts->cluster_cidr, opts->service_cidr, opts->cluster_domain,
                    err) != DRV_OK) {
        bdesired_free(&b->desired);
        free(b);
        return err ? err->code : DRV_ERR_INVALID;
    }
    b->restrict_labels = opts->restrict_labels;
    b->metrics = opts->metrics;
    drv_err_t e = bdesired_load(&b->desired, b->store, err);
    if (e == DRV_OK) {
        seed_heartbeats(b);
        drv_mqtt_opts_t mo = {.server_uri = opts->broker_url,
                              .client_id = opts->client_id ? opts->client_id : "drover-hub",
                              .clean_session = false,
                              /* A fleet's burst of reports and heartbeats (10,000 nodes
                               * beat 5,000 times a second) waits here, not in Paho's
                               * receive thread (see drv_mqtt_opts_t.max_queued). */
                              .max_queued = 32768,
                              .max_queued_bytes = 64u << 20,
                              .drop_qos0_when_full = true,
                              .max_buffered = 10000,
                              .seed = opts->seed,
                              .ca_file = opts->ca_file,
                              .cert_file = opts->cert_file,
                              .key_file = opts->key_file};
        e = drv_mqtt_new(&mo, &b->mqtt, err);
    }
    if (e == DRV_OK)
        e = bsigner_new(opts->signing_key, b->mqtt, SIGN_QUEUE_MAX, true, &b->signer, err);
    static const drv_proto_msg_t subs[] = {DRV_PROTO_STATUS,   DRV_PROTO_HEARTBEAT,
                                           DRV_PROTO_ONLINE,   DRV_PROTO_EVENTS,
                                           DRV_PROTO_LOGS_RES, DRV_PROTO_METRICS};
    for (size_t i = 0; e == DRV_OK && i < sizeof(subs) / sizeof(subs[0]); i++) {
        char filter[DRV_PROTO_TOPIC_MAX];
        e = drv_proto_filter(filter, sizeof(filter), NULL, subs[i], err);
        if (e == DRV_OK)
            e = drv_mqtt_subscribe(b->mqtt, filter, drv_proto_qos(subs[i]), err);
    }
    if (e != DRV_OK) {
        drv_bridge_free(b);
        return e;
    }
    drv_log_info("bridge: started", "broker=%s nodes=%zu pods=%zu", opts->broker_url,
                 b->desired.nodes.n, b->desired.pods.n);
    *out = b;
    return DRV_OK;
}

void drv_bridge_free(drv_bridge_t *b)
{
    if (!b)
        return;
    bsigner_free(b->signer); /* first: it publishes through b->mqtt */
    drv_mqtt_free(b->mqtt, 2000);
    bdesired_free(&b->desired);
    free(b);
}
