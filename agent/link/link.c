/* The agent's MQTT link to the hub (see link.h): desired state in, status, heartbeats,
 * presence and events out. Logs are served by logs.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <malloc.h>
#include <net/if.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/log.h"
#include "drover/netstate.h"
#include "drover/json.h"
#include "drover/model.h"
#include "drover/pki.h"
#include "enroll/enroll.h"
#include "link/link.h"
#include "pod/host.h"
#include "pod/pvc.h"
#include "link/link_int.h"
#include "metrics/collect.h"
#include "proc/proc.h"

#ifdef DROVER_HAVE_MQTT
#include "mqtt.h"
#endif

#define REPORT_MIN_MS 200 /* at most 5 status reports a second */
#define HUB_DESIRED_FILE "hub-desired.json"

/* ---- pure parts ---- */

/* A pod uid becomes a directory name on the device: keep it to a safe alphabet. */
static bool uid_ok(const char *uid)
{
    size_t n = strlen(uid);
    if (n == 0 || n > 63 || uid[0] == '.' || uid[0] == '-')
        return false;
    for (const char *p = uid; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

static drv_err_t check_objects(cJSON *arr, const char *field, drv_kind_t kind, const char *node,
                               drv_error_t *err)
{
    size_t i = 0;
    for (cJSON *o = arr->child; o; o = o->next, i++) {
        char where[64];
        drv_fmt_cut(where, sizeof(where), "%s[%zu]", field, i);
        if (!cJSON_GetObjectItemCaseSensitive(o, "kind")) {
            cJSON_AddStringToObject(o, "apiVersion", drv_kind_api_version(kind));
            cJSON_AddStringToObject(o, "kind", drv_kind_name(kind));
        }
        if (drv_model_kind(o) != kind)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.kind: must be %s", where,
                                 drv_kind_name(kind));
        char uid[64] = "";
        if (kind == DRV_KIND_POD) {
            const char *u = drv_json_str(cJSON_GetObjectItemCaseSensitive(o, "metadata"), "uid");
            if (!u || !*u)
                return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.metadata.uid: required", where);
            if (!uid_ok(u) || drv_fmt(uid, sizeof(uid), "%s", u) != DRV_OK)
                return drv_error_set(err, DRV_ERR_INVALID, 0,
                                     "%s.metadata.uid: must be 1-63 characters of [A-Za-z0-9._-]",
                                     where);
        }
        drv_diags_t d = {0};
        drv_err_t r = drv_model_normalize(o, &d);
        if (r == DRV_ERR_NOMEM) {
            drv_diags_free(&d);
            return drv_error_set(err, r, 0, "%s", where);
        }
        if (r != DRV_OK) {
            _cleanup_free_ char *text = drv_diags_format(&d, NULL);
            drv_diags_free(&d);
            for (char *p = text; p && *p; p++)
                if (*p == '\n')
                    *p = p[1] ? ';' : '\0';
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.%s", where, text ? text : "invalid");
        }
        drv_diags_free(&d);
        if (kind == DRV_KIND_POD) {
            cJSON *meta = cJSON_GetObjectItemCaseSensitive(o, "metadata");
            cJSON_DeleteItemFromObjectCaseSensitive(meta, "uid");
            if (!cJSON_AddStringToObject(meta, "uid", uid))
                return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s", where);
            const char *nn = drv_json_str(cJSON_GetObjectItemCaseSensitive(o, "spec"), "nodeName");
            if (!nn || strcmp(nn, node))
                return drv_error_set(err, DRV_ERR_INVALID, 0,
                                     "%s.spec.nodeName: \"%.64s\" is not this node (%s)", where,
                                     nn ? nn : "", node);
        }
    }
    return DRV_OK;
}

drv_err_t drv_link_desired_check(const char *payload, size_t len, const char *node,
                                 uint64_t applied, drv_link_desired_t *out, drv_error_t *err)
{
    drv_proto_desired_t d;
    drv_err_t r = drv_proto_desired_parse(payload, len, node, &d, err);
    if (r != DRV_OK)
        return r;
    if (d.generation <= applied) {
        *out = (drv_link_desired_t){.generation = d.generation, .stale = true};
        drv_proto_desired_free(&d);
        return DRV_OK;
    }
    cJSON *desired = cJSON_CreateObject();
    cJSON *pods = cJSON_Duplicate(d.pods, 1), *cms = cJSON_Duplicate(d.config_maps, 1),
          *secrets = cJSON_Duplicate(d.secrets, 1);
    cJSON *net = d.network ? cJSON_Duplicate(d.network, 1) : NULL;
    bool has_net = d.network != NULL;
    cJSON *pvs = cJSON_Duplicate(d.persistent_volumes, 1);
    /* pods' service account tokens, opened when applied (pod/satoken.h) */
    cJSON *toks = cJSON_GetArraySize(d.sa_tokens) ? cJSON_Duplicate(d.sa_tokens, 1) : NULL;
    bool has_toks = cJSON_GetArraySize(d.sa_tokens) > 0;
    uint64_t gen = d.generation;
    drv_proto_desired_free(&d);
    if (!desired || !pods || !cms || !secrets || (has_net && !net) || !pvs || (has_toks && !toks)) {
        cJSON_Delete(pvs);
        cJSON_Delete(toks);
        cJSON_Delete(desired);
        cJSON_Delete(pods);
        cJSON_Delete(cms);
        cJSON_Delete(secrets);
        cJSON_Delete(net);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "desired state");
    }
    cJSON_AddItemToObject(desired, "pods", pods);
    cJSON_AddItemToObject(desired, "configMaps", cms);
    cJSON_AddItemToObject(desired, "secrets", secrets);
    if (net)
        cJSON_AddItemToObject(desired, "network", net);
    if (cJSON_GetArraySize(pvs) > 0)
        cJSON_AddItemToObject(desired, "persistentVolumes", pvs);
    else
        cJSON_Delete(pvs);
    if (toks)
        cJSON_AddItemToObject(desired, "serviceAccountTokens", toks);
    /* The network section is checked whole here, so that a hostile or broken one (overlapping
     * subnets, a peer list naming this node, ...) is refused with the field named, as a bad
     * pod is, instead of reaching WireGuard or nftables. */
    drv_netstate_t ns = {0};
    if (net && (r = drv_netstate_parse(net, node, &ns, err)) != DRV_OK) {
        cJSON_Delete(desired);
        drv_error_wrap(err, "desired state generation %llu", (unsigned long long)gen);
        return r;
    }
    drv_netstate_free(&ns);
    if ((r = check_objects(pods, "pods", DRV_KIND_POD, node, err)) != DRV_OK ||
        (r = check_objects(cms, "configMaps", DRV_KIND_CONFIGMAP, node, err)) != DRV_OK ||
        (r = check_objects(secrets, "secrets", DRV_KIND_SECRET, node, err)) != DRV_OK ||
        (r = pod_pvc_check(cJSON_GetObjectItemCaseSensitive(desired, "persistentVolumes"), node,
                           err)) != DRV_OK) {
        cJSON_Delete(desired);
        drv_error_wrap(err, "desired state generation %llu", (unsigned long long)gen);
        return r;
    }
    *out = (drv_link_desired_t){.generation = gen, .desired = desired};
    return DRV_OK;
}

drv_err_t drv_link_desired_verify(const char *payload, size_t len, const char *node,
                                  const char *verify_key, uint64_t applied, drv_link_desired_t *out,
                                  drv_error_t *err)
{
    if (!verify_key)
        return drv_error_set(err, DRV_ERR_PERM, 0,
                             "desired state: no key to verify it with: enrol this node "
                             "(hub.url) or provision <stateDir>/" DRV_LINK_SIGNING_PUB);
    _cleanup_free_ char *doc = NULL;
    size_t dlen = 0;
    drv_err_t r = drv_proto_desired_open(payload, len, verify_key, &doc, &dlen, err);
    if (r != DRV_OK)
        return r;
    return drv_link_desired_check(doc, dlen, node, applied, out, err);
}

void drv_link_desired_free(drv_link_desired_t *d)
{
    if (!d)
        return;
    cJSON_Delete(d->desired);
    d->desired = NULL;
}

cJSON *drv_link_merge(const cJSON *static_desired, const cJSON *hub_desired)
{
    static const char keys[][11] = {"pods", "configMaps", "secrets"};
    cJSON *out = cJSON_CreateObject();
    if (!out)
        return NULL;
    for (size_t k = 0; k < 3; k++) {
        cJSON *arr = cJSON_AddArrayToObject(out, keys[k]);
        if (!arr) {
            cJSON_Delete(out);
            return NULL;
        }
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(static_desired, keys[k]);
        const cJSON *hub = cJSON_GetObjectItemCaseSensitive(hub_desired, keys[k]);
        const cJSON *o;
        cJSON_ArrayForEach(o, st) cJSON_AddItemToArray(arr, cJSON_Duplicate(o, 1));
        cJSON_ArrayForEach(o, hub)
        {
            bool clash = false;
            const cJSON *s;
            cJSON_ArrayForEach(s, st) clash = clash || drv_json_same_object(o, s);
            if (clash) {
                drv_log_warn("a hub object has the name of a static one; the static one wins",
                             "kind=%s name=%s", keys[k],
                             drv_json_str(cJSON_GetObjectItemCaseSensitive(o, "metadata"), "name"));
                continue;
            }
            cJSON_AddItemToArray(arr, cJSON_Duplicate(o, 1));
        }
    }
    /* The node's volumes are the hub's alone too. */
    const cJSON *pvs = cJSON_GetObjectItemCaseSensitive(hub_desired, "persistentVolumes");
    if (cJSON_IsArray(pvs) &&
        !cJSON_AddItemToObject(out, "persistentVolumes", cJSON_Duplicate(pvs, 1))) {
        cJSON_Delete(out);
        return NULL;
    }
    /* The cluster network is the hub's alone (static manifests have none), as are the pods'
     * service account tokens. */
    const cJSON *net = cJSON_GetObjectItemCaseSensitive(hub_desired, "network");
    if (cJSON_IsObject(net) && !cJSON_AddItemToObject(out, "network", cJSON_Duplicate(net, 1))) {
        cJSON_Delete(out);
        return NULL;
    }
    const cJSON *toks = cJSON_GetObjectItemCaseSensitive(hub_desired, "serviceAccountTokens");
    if (cJSON_IsArray(toks) &&
        !cJSON_AddItemToObject(out, "serviceAccountTokens", cJSON_Duplicate(toks, 1))) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

void drv_link_internal_ip(const char *skip_if, const char *skip_if2, char *out, size_t outsz)
{
    pod_host_internal_ip(skip_if, skip_if2, out, outsz);
}

static bool add_dup(cJSON *to, const char *key, const cJSON *from)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, key);
    cJSON *c = v ? cJSON_Duplicate(v, 1) : cJSON_CreateObject();
    return c && cJSON_AddItemToObject(to, key, c);
}

static cJSON *node_status(const drv_agent_config_t *cfg, const cJSON *node, const char *now,
                          const char *ip)
{
    cJSON *ns = cJSON_CreateObject();
    bool ok = ns && add_dup(ns, "capacity", node) && add_dup(ns, "allocatable", node) &&
              add_dup(ns, "nodeInfo", node);
    /* The WireGuard key and pod CIDR the node uses (docs/PROTOCOL.md "Network"). */
    if (ok && cJSON_GetObjectItemCaseSensitive(node, "network"))
        ok = add_dup(ns, "network", node);
    /* The storage directory and the Released volumes removed (agent/pod/pvc.h). */
    if (ok && cJSON_GetObjectItemCaseSensitive(node, "storage"))
        ok = add_dup(ns, "storage", node);
    cJSON *conds = ok ? cJSON_AddArrayToObject(ns, "conditions") : NULL;
    const cJSON *c;
    bool ready = false;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(node, "conditions"))
    {
        cJSON *d = cJSON_Duplicate(c, 1);
        if (!d || !cJSON_AddItemToArray(conds, d)) {
            cJSON_Delete(d);
            ok = false;
            break;
        }
        const char *type = drv_json_str(d, "type");
        if (type && !strcmp(type, "Ready")) {
            ready = true;
            cJSON_DeleteItemFromObjectCaseSensitive(d, "lastHeartbeatTime");
            ok = ok && cJSON_AddStringToObject(d, "lastHeartbeatTime", now);
        }
    }
    if (ok && !ready) {
        cJSON *r = cJSON_CreateObject();
        ok = r && cJSON_AddItemToArray(conds, r) && cJSON_AddStringToObject(r, "type", "Ready") &&
             cJSON_AddStringToObject(r, "status", "True") &&
             cJSON_AddStringToObject(r, "lastHeartbeatTime", now);
    }
    cJSON *labels = ok ? cJSON_AddObjectToObject(ns, "labels") : NULL;
    const char *arch =
        drv_json_str(cJSON_GetObjectItemCaseSensitive(node, "nodeInfo"), "architecture");
    const char *os =
        drv_json_str(cJSON_GetObjectItemCaseSensitive(node, "nodeInfo"), "operatingSystem");
    ok = ok && labels && cJSON_AddStringToObject(labels, "kubernetes.io/arch", arch ? arch : "") &&
         cJSON_AddStringToObject(labels, "kubernetes.io/os", os ? os : "linux") &&
         cJSON_AddStringToObject(labels, "kubernetes.io/hostname", cfg->node_name);
    for (size_t i = 0; ok && i < cfg->n_labels; i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(labels, cfg->labels[i].key);
        ok = cJSON_AddStringToObject(labels, cfg->labels[i].key, cfg->labels[i].value) != NULL;
    }
    cJSON *addrs = ok ? cJSON_AddArrayToObject(ns, "addresses") : NULL;
    ok = ok && addrs;
    if (ok && ip && *ip) {
        cJSON *a = cJSON_CreateObject();
        ok = a && cJSON_AddItemToArray(addrs, a) &&
             cJSON_AddStringToObject(a, "type", "InternalIP") &&
             cJSON_AddStringToObject(a, "address", ip);
    }
    if (ok) {
        cJSON *a = cJSON_CreateObject();
        ok = a && cJSON_AddItemToArray(addrs, a) &&
             cJSON_AddStringToObject(a, "type", "Hostname") &&
             cJSON_AddStringToObject(a, "address", cfg->node_name);
    }
    if (!ok) {
        cJSON_Delete(ns);
        return NULL;
    }
    return ns;
}

cJSON *drv_link_status_report(const drv_agent_config_t *cfg, const cJSON *sv_status,
                              uint64_t observed_generation, const char *now,
                              const char *internal_ip, drv_error_t *err)
{
    cJSON *ns =
        node_status(cfg, cJSON_GetObjectItemCaseSensitive(sv_status, "node"), now, internal_ip);
    cJSON *pods = cJSON_CreateArray();
    bool ok = ns && pods;
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(sv_status, "pods"))
    {
        if (!ok)
            break;
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(p, "metadata");
        cJSON *o = cJSON_CreateObject();
        cJSON *m = o ? cJSON_AddObjectToObject(o, "metadata") : NULL;
        ok = m && cJSON_AddItemToArray(pods, o);
        if (!ok) {
            cJSON_Delete(o);
            break;
        }
        static const char keys[][10] = {"name", "namespace", "uid"};
        for (size_t k = 0; ok && k < 3; k++) {
            const char *v = drv_json_str(meta, keys[k]);
            ok = cJSON_AddStringToObject(m, keys[k], v ? v : "") != NULL;
        }
        ok = ok && add_dup(o, "status", p);
    }
    cJSON *report = NULL;
    if (ok)
        report = drv_proto_status_build(cfg->node_name, observed_generation, ns, pods, err);
    else
        drv_error_set(err, DRV_ERR_NOMEM, 0, "status report");
    cJSON_Delete(ns);
    cJSON_Delete(pods);
    return report;
}

drv_err_t drv_link_logs_target(const cJSON *sv_status, const drv_proto_logs_req_t *req, char *uid,
                               size_t uidsz, char *container, size_t ctrsz, drv_error_t *err)
{
    const char *ns = req->namespace_[0] ? req->namespace_ : "default";
    const cJSON *p, *found = NULL;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(sv_status, "pods"))
    {
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(p, "metadata");
        const char *n = drv_json_str(meta, "name"), *s = drv_json_str(meta, "namespace");
        if (n && !strcmp(n, req->pod) && !strcmp(s ? s : "default", ns)) {
            found = p;
            break;
        }
    }
    const char *node = drv_json_str(cJSON_GetObjectItemCaseSensitive(sv_status, "node"), "name");
    if (!found)
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "pod %s/%s: not found on node %s", ns,
                             req->pod, node ? node : "?");
    const char *u = drv_json_str(cJSON_GetObjectItemCaseSensitive(found, "metadata"), "uid");
    if (!u || !uid_ok(u))
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "pod %s/%s: no uid", ns, req->pod);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(found, "status");
    const cJSON *lists[2] = {cJSON_GetObjectItemCaseSensitive(st, "containerStatuses"),
                             cJSON_GetObjectItemCaseSensitive(st, "initContainerStatuses")};
    char names[512] = "";
    size_t nl = 0;
    unsigned napp = 0;
    const char *only = NULL, *match = NULL;
    for (int l = 0; l < 2; l++) {
        const cJSON *c;
        cJSON_ArrayForEach(c, lists[l])
        {
            const char *n = drv_json_str(c, "name");
            if (!n)
                continue;
            if (req->container[0] && !strcmp(n, req->container))
                match = n;
            if (l == 0) {
                napp++;
                only = n;
            }
            int w = snprintf(names + nl, sizeof(names) - nl, "%s%s", nl ? ", " : "", n);
            if (w > 0 && (size_t)w < sizeof(names) - nl)
                nl += (size_t)w;
        }
    }
    if (req->container[0] && !match)
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0,
                             "container %s: not in pod %s/%s (containers: %s)", req->container, ns,
                             req->pod, names);
    if (!req->container[0] && napp != 1)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "pod %s/%s has %u containers (%s): name one",
                             ns, req->pod, napp, names);
    const char *c = match ? match : only;
    if (strlen(u) >= uidsz || drv_fmt(container, ctrsz, "%s", c) != DRV_OK ||
        drv_fmt(uid, uidsz, "%s", u) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "pod %s/%s: name too long", ns, req->pod);
    return DRV_OK;
}

/* ---- the link ---- */

struct drv_link {
    const drv_agent_config_t *cfg;
    drv_link_hooks_t hooks;
    cJSON *hub;   /* applied hub desired state, or NULL */
    uint64_t gen; /* its generation */
    cJSON *status;
    char *verify_key; /* the hub's signing.pub (PEM), or NULL: nothing is accepted */
#ifdef DROVER_HAVE_MQTT
    drv_mqtt_t *mqtt;
    bool connected;
    bool report_due;
    long long last_report_at;
    long long next_heartbeat;
    uint64_t hb_seq;
    long long now;
    drv_link_logs_t *logs;
    /* This run's instance id (random at start), in the Will, presence and heartbeats: the hub
     * tells a restart (one id after another) from two devices with one identity (ids that
     * alternate). */
    char instance[DRV_PROTO_INSTANCE_MAX + 1];
    /* Enrollment (hub.url): the identity files, whether they are usable, and when to look
     * again (enrol while not enrolled, renew when due). */
    drv_enroll_paths_t id;
    bool enrolled;
    long long next_enroll_at;
    long long renew_backoff_ms;
    int enroll_fd;    /* the enrollment child's pipe, or -1 */
    pid_t enroll_pid; /* that child, while it runs */
    drv_error_t enroll_res;
    size_t enroll_got;
    char t_desired[DRV_PROTO_TOPIC_MAX], t_status[DRV_PROTO_TOPIC_MAX],
        t_heartbeat[DRV_PROTO_TOPIC_MAX], t_online[DRV_PROTO_TOPIC_MAX],
        t_events[DRV_PROTO_TOPIC_MAX], t_logs_req[DRV_PROTO_TOPIC_MAX],
        t_metrics[DRV_PROTO_TOPIC_MAX];
    /* Usage (docs/PROTOCOL.md "Usage"): sampled every metrics.intervalSeconds, sent when it
     * moved beyond a threshold or the keep-alive is due. */
    drv_collector_t *collector;
    long long next_metrics;
    long long metrics_sent_at;
    uint64_t metrics_seq;
    drv_proto_metrics_t metrics_last; /* the last one sent (its pods owned) */
    bool metrics_have_last;
#endif
};

#ifdef DROVER_HAVE_MQTT
/* Where the applied document is kept: the state directory, or the run directory (tmpfs)
 * when it holds a Secret in clear (a hub whose broker has no TLS sends them so: they must not
 * reach the disk; after a reboot such a device gets its document from the broker again). */
static drv_err_t hub_desired_path(const drv_agent_config_t *cfg, bool volatile_copy, char *out,
                                  size_t outsz)
{
    return drv_fmt(out, outsz, "%s/%s", volatile_copy ? cfg->run_dir : cfg->state_dir,
                   HUB_DESIRED_FILE);
}

static bool has_clear_secret(const cJSON *desired)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(desired, "secrets"))
    {
        if (!drv_proto_secret_is_sealed(s))
            return true;
    }
    /* a service account token in clear likewise */
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(desired, "serviceAccountTokens"))
    {
        if (cJSON_GetObjectItemCaseSensitive(s, "token"))
            return true;
    }
    return false;
}

/* (Re)reads the hub's signing key: enrollment may have written it since. */
static void load_verify_key(drv_link_t *l)
{
    char path[512];
    if (drv_fmt(path, sizeof(path), "%s/%s", l->cfg->state_dir, DRV_LINK_SIGNING_PUB) != DRV_OK) {
        drv_log_error("cannot read the hub's signing key: path too long", "state_dir=%s",
                      l->cfg->state_dir);
        return;
    }
    char *pem = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t r = drv_file_read_capped(path, 4096, &pem, NULL, &err);
    if (r == DRV_OK && drv_pki_pubkey_check(pem, &err) != DRV_OK) {
        drv_log_error("the hub's signing key is unusable: desired state will be refused",
                      "path=%s error=\"%s\"", path, drv_error_msg(&err));
        free(pem);
        return;
    }
    if (r != DRV_OK) {
        if (!l->verify_key)
            drv_log_warn("no hub signing key: desired state will be refused until this node "
                         "is enrolled",
                         "path=%s error=\"%s\"", path, drv_error_msg(&err));
        return;
    }
    free(l->verify_key);
    l->verify_key = pem;
}

/* The generation last applied, kept apart from the document (<stateDir>/hub-generation): a
 * document on tmpfs is gone after a reboot, and one that no longer verifies is dropped, but an
 * older document must never be taken again after either. */
#define HUB_GENERATION_FILE "hub-generation"

static uint64_t load_generation(const drv_agent_config_t *cfg)
{
    char path[512];
    if (drv_fmt(path, sizeof(path), "%s/%s", cfg->state_dir, HUB_GENERATION_FILE) != DRV_OK) {
        drv_log_error("cannot read the applied generation: path too long", "state_dir=%s",
                      cfg->state_dir);
        return 0;
    }
    _cleanup_free_ char *text = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_file_read_capped(path, 64, &text, NULL, &err) != DRV_OK)
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || v > DRV_PROTO_GEN_MAX) {
        drv_log_warn("ignoring a malformed applied-generation file", "path=%s", path);
        return 0;
    }
    return v;
}

static void save_generation(const drv_agent_config_t *cfg, uint64_t gen)
{
    char path[512], text[32];
    if (drv_fmt(path, sizeof(path), "%s/%s", cfg->state_dir, HUB_GENERATION_FILE) != DRV_OK) {
        drv_log_error("cannot save the applied generation: path too long", "state_dir=%s",
                      cfg->state_dir);
        return;
    }
    int n = snprintf(text, sizeof(text), "%llu\n", (unsigned long long)gen);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_file_write_atomic(path, text, (size_t)n, 0600, &err) != DRV_OK)
        drv_log_error("cannot save the applied generation", "error=\"%s\"", drv_error_msg(&err));
}

/* Both saved copies (state directory, tmpfs) go through the same checks as a received
 * document; the newer one is taken. One that does not verify is removed (it may hold clear
 * Secrets from an older agent; the hub sends the document again). */
static void load_persisted(drv_link_t *l)
{
    for (int v = 0; v < 2; v++) {
        char path[512];
        if (hub_desired_path(l->cfg, v == 1, path, sizeof(path)) != DRV_OK) {
            drv_log_error("cannot read a saved hub desired state: path too long", "copy=%d", v);
            continue;
        }
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        drv_error_t err = DRV_ERROR_INIT;
        drv_err_t r = drv_file_read_capped(path, DRV_PROTO_DESIRED_MAX, &text, &len, &err);
        if (r == DRV_ERR_NOTFOUND)
            continue;
        drv_link_desired_t d = {0};
        if (r == DRV_OK)
            r = drv_link_desired_verify(text, len, l->cfg->node_name, l->verify_key, 0, &d, &err);
        if (r != DRV_OK) {
            drv_log_error("the saved hub desired state is unusable; removed",
                          "path=%s error=\"%s\"", path, drv_error_msg(&err));
            if (unlink(path) != 0 && errno != ENOENT)
                drv_log_warn("cannot remove it", "path=%s errno=%d", path, errno);
            continue;
        }
        if (l->hub && d.generation <= l->gen) {
            drv_link_desired_free(&d);
            continue;
        }
        cJSON_Delete(l->hub);
        l->hub = d.desired;
        l->gen = d.generation;
    }
    uint64_t applied = load_generation(l->cfg);
    if (applied > l->gen) {
        /* The document that had it is gone (tmpfs after a reboot, or removed above): keep
         * running nothing from the hub rather than an older document; the next one the hub
         * sends is newer. */
        if (l->hub)
            drv_log_warn("the saved hub desired state is older than the last applied one; not "
                         "using it",
                         "saved=%llu applied=%llu", (unsigned long long)l->gen,
                         (unsigned long long)applied);
        cJSON_Delete(l->hub);
        l->hub = NULL;
        l->gen = applied;
    }
    if (l->hub)
        drv_log_info("hub desired state loaded", "generation=%llu", (unsigned long long)l->gen);
}
#endif

const cJSON *drv_link_hub_desired(const drv_link_t *l)
{
    return l ? l->hub : NULL;
}

uint64_t drv_link_generation(const drv_link_t *l)
{
    return l ? l->gen : 0;
}

void drv_link_set_status(drv_link_t *l, const cJSON *sv_status, bool changed)
{
    if (!l || !sv_status)
        return;
    cJSON *copy = cJSON_Duplicate(sv_status, 1);
    if (!copy)
        return;
    cJSON_Delete(l->status);
    l->status = copy;
#ifdef DROVER_HAVE_MQTT
    if (changed)
        l->report_due = true;
#else
    (void)changed;
#endif
}

#ifdef DROVER_HAVE_MQTT

static void publish(drv_link_t *l, const char *topic, drv_proto_msg_t kind, const char *payload,
                    size_t len)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_mqtt_publish(l->mqtt, topic, payload, len, drv_proto_qos(kind),
                         drv_proto_retained(kind), &err) != DRV_OK)
        drv_log_warn("cannot publish", "topic=%s error=\"%s\"", topic, drv_error_msg(&err));
}

static void publish_json(drv_link_t *l, const char *topic, drv_proto_msg_t kind, cJSON *msg,
                         drv_error_t *err)
{
    if (!msg) {
        drv_log_warn("cannot build message", "kind=%s error=\"%s\"", drv_proto_msg_name(kind),
                     drv_error_msg(err));
        return;
    }
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if (drv_proto_encode(msg, kind, &text, &len, err) != DRV_OK)
        drv_log_warn("cannot encode message", "kind=%s error=\"%s\"", drv_proto_msg_name(kind),
                     drv_error_msg(err));
    else
        publish(l, topic, kind, text, len);
    cJSON_Delete(msg);
}

static void node_event(drv_link_t *l, const char *type, const char *reason, const char *message)
{
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *ev = drv_proto_event_build(l->cfg->node_name, "Node", l->cfg->node_name, NULL, type,
                                      reason, message, &err);
    publish_json(l, l->t_events, DRV_PROTO_EVENTS, ev, &err);
}

void drv_link_send_event(drv_link_t *l, cJSON *ev)
{
    if (!l) {
        cJSON_Delete(ev);
        return;
    }
    drv_error_t err = DRV_ERROR_INIT;
    publish_json(l, l->t_events, DRV_PROTO_EVENTS, ev, &err);
}

static void publish_online(drv_link_t *l, bool online)
{
    char now[DRV_PROTO_TIME_MAX], text[128];
    drv_proto_now(now, sizeof(now));
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_proto_online_format(online, now, l->instance, text, sizeof(text), &err) == DRV_OK)
        publish(l, l->t_online, DRV_PROTO_ONLINE, text, strlen(text));
}

static void on_desired(drv_link_t *l, const char *payload, size_t len)
{
    if (len == 0) {
        drv_log_info("the hub cleared this node's desired state; keeping what runs", NULL);
        return;
    }
    drv_link_desired_t d = {0};
    drv_error_t err = DRV_ERROR_INIT;
    if (!l->verify_key)
        load_verify_key(l);
    if (drv_link_desired_verify(payload, len, l->cfg->node_name, l->verify_key, l->gen, &d, &err) !=
        DRV_OK) {
        drv_log_warn("desired state refused; keeping what runs", "error=\"%s\"",
                     drv_error_msg(&err));
        node_event(l, "Warning", "DesiredStateRefused", drv_error_msg(&err));
        return;
    }
    if (d.stale && d.generation < l->gen) {
        /* A signed document, but older than the applied one: a replay (the retained copy
         * of the applied one comes back with the same generation on every reconnect). */
        char msg[160];
        drv_fmt_cut(msg, sizeof(msg),
                    "desired state: generation %llu is older than the applied %llu (replayed?)",
                    (unsigned long long)d.generation, (unsigned long long)l->gen);
        drv_log_warn("desired state refused; keeping what runs", "error=\"%s\"", msg);
        node_event(l, "Warning", "DesiredStateRefused", msg);
        return;
    }
    if (d.stale) {
        drv_log_debug("desired state ignored: generation not newer", "generation=%llu applied=%llu",
                      (unsigned long long)d.generation, (unsigned long long)l->gen);
        return;
    }
    char path[512], other[512];
    bool clear = has_clear_secret(d.desired);
    if (hub_desired_path(l->cfg, clear, path, sizeof(path)) != DRV_OK ||
        hub_desired_path(l->cfg, !clear, other, sizeof(other)) != DRV_OK)
        drv_log_error("cannot save the hub desired state: path too long; applying it anyway",
                      "state_dir=%s run_dir=%s", l->cfg->state_dir, l->cfg->run_dir);
    else if (drv_file_write_atomic(path, payload, len, 0600, &err) != DRV_OK)
        drv_log_error("cannot save the hub desired state; applying it anyway", "error=\"%s\"",
                      drv_error_msg(&err));
    else if (unlink(other) != 0 && errno != ENOENT)
        drv_log_warn("cannot remove the previous hub desired state", "path=%s errno=%d", other,
                     errno);
    save_generation(l->cfg, d.generation);
    cJSON_Delete(l->hub);
    l->hub = d.desired;
    l->gen = d.generation;
    drv_log_info("desired state applied", "generation=%llu pods=%d", (unsigned long long)l->gen,
                 cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(l->hub, "pods")));
    l->report_due = true;
    if (l->hooks.desired_changed)
        l->hooks.desired_changed(l->hooks.userdata);
}

static void on_logs_req(drv_link_t *l, const char *payload, size_t len)
{
    drv_proto_logs_req_t req;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_proto_logs_req_parse(payload, len, &req, &err) != DRV_OK) {
        drv_log_warn("logs request refused", "error=\"%s\"", drv_error_msg(&err));
        node_event(l, "Warning", "LogsRequestRefused", drv_error_msg(&err));
        return;
    }
    drv_link_logs_request(l->logs, l->status, &req, l->now);
}

static void on_event(void *userdata, const drv_mqtt_event_t *ev)
{
    drv_link_t *l = userdata;
    switch (ev->kind) {
    case DRV_MQTT_CONNECTED:
        drv_log_info("connected to the hub's broker", "broker=%s session_present=%d",
                     l->cfg->hub_broker, ev->session_present);
        l->connected = true;
        publish_online(l, true);
        l->report_due = true;
        l->last_report_at = 0;
        l->next_heartbeat = l->now;
        /* Connecting is the agent's last burst of one-off allocations (Paho's and OpenSSL's
         * set-up, the identity's files, the TLS handshake); what they freed stays dirty in the
         * heap's holes until given back. The device then idles for hours: hand it back once
         * (issue 19: idle private memory over TLS). */
        malloc_trim(0);
        break;
    case DRV_MQTT_DISCONNECTED:
        if (l->connected || ev->reason)
            drv_log_warn("hub broker unreachable; pods keep running, reconnecting",
                         "broker=%s reason=\"%s\"", l->cfg->hub_broker,
                         ev->reason ? ev->reason : "");
        l->connected = false;
        break;
    case DRV_MQTT_MESSAGE:
        if (!strcmp(ev->topic, l->t_desired))
            on_desired(l, ev->payload, ev->len);
        else if (!strcmp(ev->topic, l->t_logs_req))
            on_logs_req(l, ev->payload, ev->len);
        else
            drv_log_debug("message on an unexpected topic ignored", "topic=%s", ev->topic);
        break;
    }
}

static drv_err_t send_chunk(void *userdata, const char *id, const cJSON *chunk)
{
    drv_link_t *l = userdata;
    char topic[DRV_PROTO_TOPIC_MAX];
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_proto_topic(topic, sizeof(topic), l->cfg->node_name, DRV_PROTO_LOGS_RES, id, &err) !=
        DRV_OK)
        return err.code;
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if (drv_proto_encode(chunk, DRV_PROTO_LOGS_RES, &text, &len, &err) != DRV_OK) {
        drv_log_warn("cannot encode a logs chunk", "error=\"%s\"", drv_error_msg(&err));
        return err.code;
    }
    drv_err_t r =
        drv_mqtt_publish(l->mqtt, topic, text, len, drv_proto_qos(DRV_PROTO_LOGS_RES), false, &err);
    return r;
}

static void send_report(drv_link_t *l, long long now)
{
    char ts[DRV_PROTO_TIME_MAX], ip[64];
    drv_proto_now(ts, sizeof(ts));
    drv_link_internal_ip(l->cfg->bridge, l->cfg->wg_interface, ip, sizeof(ip));
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *rep = drv_link_status_report(l->cfg, l->status, l->gen, ts, ip, &err);
    publish_json(l, l->t_status, DRV_PROTO_STATUS, rep, &err);
    l->report_due = false;
    l->last_report_at = now;
}

/* The running containers of the supervisor's last status, for the usage sample: pointers into
 * l->status, valid until it changes. n gets the count; at most max. */
static size_t running_containers(const drv_link_t *l, drv_collect_ctr_t *out, size_t max)
{
    size_t n = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, drv_json_get(l->status, "pods"))
    {
        const char *ns = drv_json_str_at(p, "metadata.namespace");
        const char *name = drv_json_str_at(p, "metadata.name");
        const char *uid = drv_json_str_at(p, "metadata.uid");
        if (!ns || !name || !uid)
            continue;
        const cJSON *c;
        cJSON_ArrayForEach(c, drv_json_at(p, "status.containerStatuses"))
        {
            const char *cn = drv_json_str(c, "name");
            if (!cn || !drv_json_at(c, "state.running") || n == max)
                continue;
            out[n++] = (drv_collect_ctr_t){ns,
                                           name,
                                           uid,
                                           cn,
                                           (int32_t)drv_json_int_or(c, "restartCount", 0),
                                           (int)drv_json_int_at(c, "pid", 0, INT32_MAX, 0)};
        }
    }
    return n;
}

static void send_metrics(drv_link_t *l, long long now)
{
    enum { CTRS_MAX = DRV_PROTO_METRICS_PODS_MAX * 4 };
    _cleanup_free_ drv_collect_ctr_t *ctrs = calloc(CTRS_MAX, sizeof(*ctrs));
    if (!ctrs)
        return;
    size_t n = running_containers(l, ctrs, CTRS_MAX);
    drv_proto_metrics_t m;
    drv_error_t err = DRV_ERROR_INIT;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (drv_collector_sample(l->collector, l->cfg->node_name, ctrs, n, wall, now, &m, &err) !=
        DRV_OK) {
        drv_log_warn("usage not sampled", "error=\"%s\"", drv_error_msg(&err));
        return;
    }
    bool due = !l->metrics_have_last ||
               now - l->metrics_sent_at >= (long long)l->cfg->metrics_keepalive_s * 1000 ||
               drv_collector_changed(&l->metrics_last, &m);
    if (!due) {
        drv_proto_metrics_free(&m);
        return;
    }
    m.seq = l->metrics_seq++;
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    drv_err_t fr;
    size_t all = m.n_pods;
    /* Over the message's cap (many pods of many containers): as many pods as fit. */
    while ((fr = drv_proto_metrics_format(&m, &text, &len, &err)) == DRV_ERR_TOOBIG && m.n_pods > 0)
        m.n_pods /= 2;
    if (fr != DRV_OK) {
        drv_log_warn("usage not sent", "error=\"%s\"", drv_error_msg(&err));
        drv_proto_metrics_free(&m);
        return;
    }
    if (m.n_pods < all)
        drv_log_warn("usage: not every pod fits one report", "pods=%zu sent=%zu", all, m.n_pods);
    publish(l, l->t_metrics, DRV_PROTO_METRICS, text, len);
    drv_proto_metrics_free(&l->metrics_last);
    l->metrics_last = m;
    l->metrics_have_last = true;
    l->metrics_sent_at = now;
}

static void send_heartbeat(drv_link_t *l)
{
    drv_proto_heartbeat_t hb = {.seq = l->hb_seq++, .observed_generation = l->gen};
    if (drv_fmt(hb.node, sizeof(hb.node), "%s", l->cfg->node_name) != DRV_OK ||
        drv_fmt(hb.instance, sizeof(hb.instance), "%s", l->instance) != DRV_OK) {
        drv_log_error("heartbeat not sent: node name too long", "node=%s", l->cfg->node_name);
        return;
    }
    char text[512];
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_proto_heartbeat_format(&hb, text, sizeof(text), &err) == DRV_OK)
        publish(l, l->t_heartbeat, DRV_PROTO_HEARTBEAT, text, strlen(text));
}

static drv_err_t topics(drv_link_t *l, drv_error_t *err)
{
    const char *n = l->cfg->node_name;
    drv_err_t r;
    if ((r = drv_proto_topic(l->t_desired, sizeof(l->t_desired), n, DRV_PROTO_DESIRED, NULL,
                             err)) != DRV_OK ||
        (r = drv_proto_topic(l->t_status, sizeof(l->t_status), n, DRV_PROTO_STATUS, NULL, err)) !=
            DRV_OK ||
        (r = drv_proto_topic(l->t_heartbeat, sizeof(l->t_heartbeat), n, DRV_PROTO_HEARTBEAT, NULL,
                             err)) != DRV_OK ||
        (r = drv_proto_topic(l->t_online, sizeof(l->t_online), n, DRV_PROTO_ONLINE, NULL, err)) !=
            DRV_OK ||
        (r = drv_proto_topic(l->t_events, sizeof(l->t_events), n, DRV_PROTO_EVENTS, NULL, err)) !=
            DRV_OK ||
        (r = drv_proto_topic(l->t_logs_req, sizeof(l->t_logs_req), n, DRV_PROTO_LOGS_REQ, NULL,
                             err)) != DRV_OK ||
        (r = drv_proto_topic(l->t_metrics, sizeof(l->t_metrics), n, DRV_PROTO_METRICS, NULL,
                             err)) != DRV_OK)
        return r;
    return DRV_OK;
}

#define ENROLL_RETRY_MS 30000

static drv_err_t connect_broker(drv_link_t *l, drv_error_t *err);

/* The enrollment work (drv_enroll_ensure: HTTPS to the hub, which can take tens of seconds
 * when the network is bad) runs in a child process so that the agent's loop never waits for
 * it; the child sends its drv_error_t back over a pipe, which drv_link_tick reads. The daemon
 * reaps the child with the others (an unknown pid is ignored there). */
static void enroll_start(drv_link_t *l, long long now)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        drv_log_error("enrollment: pipe failed; retrying", "errno=%d", errno);
        l->next_enroll_at = now + ENROLL_RETRY_MS;
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        drv_log_error("enrollment: fork failed; retrying", "errno=%d", errno);
        close(fds[0]);
        close(fds[1]);
        l->next_enroll_at = now + ENROLL_RETRY_MS;
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_UNBLOCK, &all, NULL); /* the agent blocks them for its signalfd */
        drv_error_t e = DRV_ERROR_INIT;
        drv_enroll_paths_t paths;
        e.code = drv_enroll_ensure(l->cfg, &paths, &e);
        int fl = fcntl(fds[1], F_GETFL);
        if (fl >= 0)
            (void)fcntl(fds[1], F_SETFL, fl & ~O_NONBLOCK);
        (void)!write(fds[1], &e, sizeof(e));
        _exit(e.code == DRV_OK ? 0 : 1);
    }
    close(fds[1]);
    l->enroll_fd = fds[0];
    l->enroll_pid = pid;
    l->enroll_got = 0;
}

/* The child's answer, once it is complete; then what follows from it. */
static void enroll_poll(drv_link_t *l, long long now)
{
    for (;;) {
        ssize_t n = read(l->enroll_fd, (char *)&l->enroll_res + l->enroll_got,
                         sizeof(l->enroll_res) - l->enroll_got);
        if (n > 0) {
            l->enroll_got += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return; /* still working */
        break;      /* EOF or error: the child is done */
    }
    close(l->enroll_fd);
    l->enroll_fd = -1;
    l->enroll_pid = 0; /* done; the daemon reaps it */
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t r;
    if (l->enroll_got == sizeof(l->enroll_res) && l->enroll_res.code >= DRV_OK &&
        l->enroll_res.code < DRV_ERR__COUNT) {
        err = l->enroll_res;
        err.msg[sizeof(err.msg) - 1] = '\0';
        r = err.code;
    } else {
        r = drv_error_set(&err, DRV_ERR_IO, 0, "hub.url: the enrollment process died");
    }
    /* The child says OK also when a renewal failed while the certificate is still valid:
     * that is a failure here, to back off on. */
    if (r == DRV_OK && l->enrolled && !drv_enroll_current(l->cfg, &l->id, (int64_t)time(NULL)))
        r = drv_error_set(&err, DRV_ERR_AGAIN, 0,
                          "hub.url: the certificate is due for renewal and was not renewed");
    if (r != DRV_OK) {
        /* Not enrolled: nothing works without it, try again soon. A renewal is due long
         * before the certificate expires: back off (5 min doubling to 1 h). */
        long long retry = ENROLL_RETRY_MS;
        if (l->enrolled) {
            l->renew_backoff_ms = l->renew_backoff_ms ? l->renew_backoff_ms * 2 : 5 * 60 * 1000;
            if (l->renew_backoff_ms > 60 * 60 * 1000)
                l->renew_backoff_ms = 60 * 60 * 1000;
            retry = l->renew_backoff_ms;
        }
        drv_log_error(
            l->enrolled ? "certificate renewal failed; retrying" : "enrollment failed; retrying",
            "hub=%s retry_s=%lld error=\"%s\"", l->cfg->hub_url, retry / 1000, drv_error_msg(&err));
        l->next_enroll_at = now + retry;
        return;
    }
    l->renew_backoff_ms = 0;
    l->next_enroll_at = now + drv_enroll_next_check_ms(&l->id, (int64_t)time(NULL));
    if (l->enrolled)
        return; /* renewed: the next reconnect presents the new certificate */
    drv_log_info("enrolled with the hub", "hub=%s identity=%s", l->cfg->hub_url, l->id.dir);
    l->enrolled = true;
    load_verify_key(l);
    if (connect_broker(l, &err) != DRV_OK) {
        drv_log_error("cannot start the hub link", "error=\"%s\"", drv_error_msg(&err));
        drv_mqtt_free(l->mqtt, 0);
        l->mqtt = NULL;
        drv_link_logs_free(l->logs, NULL);
        l->logs = NULL;
        l->enrolled = false;
        l->next_enroll_at = now + ENROLL_RETRY_MS;
    }
}

static drv_err_t connect_broker(drv_link_t *l, drv_error_t *err)
{
    drv_err_t r = topics(l, err);
    if (r != DRV_OK)
        return r;
    char client_id[96], will[128];
    if (drv_fmt(client_id, sizeof(client_id), "drover-agent-%s", l->cfg->node_name) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "nodeName: too long for an MQTT client id");
    if ((r = drv_proto_online_format(false, NULL, l->instance, will, sizeof(will), err)) != DRV_OK)
        return r;
    drv_mqtt_opts_t o = {
        .server_uri = l->cfg->hub_broker,
        .client_id = client_id,
        .will_topic = l->t_online,
        .will_payload = will,
        .will_len = strlen(will),
        .will_qos = drv_proto_qos(DRV_PROTO_ONLINE),
        .will_retain = true,
        .keepalive_s = l->cfg->hub_keepalive_s,
        .clean_session = false,
        .max_queued = 64,
        .max_queued_bytes = 8u << 20,
        .max_buffered = 200,
    };
    if (l->cfg->hub_url[0]) {
        /* Mutual TLS with the enrolled identity (Paho's TLS flavour is loaded for it). */
        o.ca_file = l->id.ca;
        o.cert_file = l->id.cert;
        o.key_file = l->id.key;
    }
    if ((r = drv_mqtt_new(&o, &l->mqtt, err)) != DRV_OK)
        return drv_error_wrap(err, "hub.broker %s", l->cfg->hub_broker);
    if ((r = drv_mqtt_subscribe(l->mqtt, l->t_desired, drv_proto_qos(DRV_PROTO_DESIRED), err)) !=
            DRV_OK ||
        (r = drv_mqtt_subscribe(l->mqtt, l->t_logs_req, drv_proto_qos(DRV_PROTO_LOGS_REQ), err)) !=
            DRV_OK)
        return r;
    l->logs = drv_link_logs_new(l->cfg, send_chunk, l);
    if (!l->logs)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "logs");
    return DRV_OK;
}

#endif /* DROVER_HAVE_MQTT */

drv_err_t drv_link_new(const drv_agent_config_t *cfg, const drv_link_hooks_t *hooks,
                       drv_link_t **out, drv_error_t *err)
{
    *out = NULL;
    if (!cfg->hub_broker[0])
        return DRV_OK;
#ifndef DROVER_HAVE_MQTT
    (void)hooks;
    return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                         "hub.broker: this drover-agent was built without MQTT (Paho)");
#else
    drv_link_t *l = calloc(1, sizeof(*l));
    if (!l)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "link");
    l->cfg = cfg;
    unsigned char rnd[12];
    if (drv_pki_random(rnd, sizeof(rnd), err) != DRV_OK) {
        free(l);
        return drv_error_wrap(err, "link: instance id");
    }
    static const char hexdig[] = "0123456789abcdef";
    _Static_assert(sizeof(l->instance) > 2 * sizeof(rnd), "instance id holds the random bytes");
    for (size_t k = 0; k < sizeof(rnd); k++) { /* NUL-terminated by calloc */
        l->instance[2 * k] = hexdig[rnd[k] >> 4];
        l->instance[2 * k + 1] = hexdig[rnd[k] & 0xf];
    }
    if (hooks)
        l->hooks = *hooks;
    l->now = drv_now_ms();
    l->enroll_fd = -1;
    if (cfg->metrics_interval_s > 0) {
        drv_error_t cerr = DRV_ERROR_INIT;
        if (drv_collector_new("", cfg->state_dir, cfg->cgroups != DRV_CGROUPS_DISABLED,
                              &l->collector, &cerr) != DRV_OK)
            drv_log_warn("usage will not be sent", "error=\"%s\"", drv_error_msg(&cerr));
        l->next_metrics = l->now + 2000; /* after the first status report */
    }
    if (cfg->hub_url[0]) {
        /* A current identity: connect now, renewal comes later. Otherwise the first tick
         * starts the enrollment (in the background) and connects when it is done. */
        l->enrolled = drv_enroll_current(cfg, &l->id, (int64_t)time(NULL));
        l->next_enroll_at =
            l->enrolled ? l->now + drv_enroll_next_check_ms(&l->id, (int64_t)time(NULL)) : 0;
    }
    load_verify_key(l);
    load_persisted(l);
    if (cfg->hub_url[0] && !l->enrolled) {
        *out = l;
        return DRV_OK;
    }
    drv_err_t r = connect_broker(l, err);
    if (r != DRV_OK) {
        drv_link_free(l);
        return r;
    }
    *out = l;
    return DRV_OK;
#endif
}

int drv_link_fd(const drv_link_t *l)
{
#ifdef DROVER_HAVE_MQTT
    return l && l->mqtt ? drv_mqtt_fd(l->mqtt) : -1;
#else
    (void)l;
    return -1;
#endif
}

void drv_link_tick(drv_link_t *l, long long now)
{
#ifdef DROVER_HAVE_MQTT
    if (!l)
        return;
    l->now = now;
    if (l->enroll_fd >= 0)
        enroll_poll(l, now);
    else if (l->cfg->hub_url[0] && now >= l->next_enroll_at)
        enroll_start(l, now);
    if (!l->mqtt)
        return;
    drv_mqtt_poll(l->mqtt, on_event, l);
    if (l->connected && l->report_due && l->status && now - l->last_report_at >= REPORT_MIN_MS)
        send_report(l, now);
    if (l->connected && now >= l->next_heartbeat) {
        send_heartbeat(l);
        l->next_heartbeat = now + (long long)l->cfg->hub_heartbeat_s * 1000;
    }
    if (l->connected && l->collector && l->status && now >= l->next_metrics) {
        send_metrics(l, now);
        l->next_metrics = now + (long long)l->cfg->metrics_interval_s * 1000;
    }
    drv_link_logs_pump(l->logs, l->status, now);
#else
    (void)l;
    (void)now;
#endif
}

int drv_link_next_wakeup(const drv_link_t *l, long long now)
{
    long long t = 1000;
#ifdef DROVER_HAVE_MQTT
    if (!l)
        return 1000;
    if (l->connected && l->report_due && l->status) {
        long long d = l->last_report_at + REPORT_MIN_MS - now;
        if (d < t)
            t = d;
    }
    if (l->connected && l->next_heartbeat - now < t)
        t = l->next_heartbeat - now;
    if (l->connected && l->collector && l->next_metrics - now < t)
        t = l->next_metrics - now;
    int lg = drv_link_logs_next_wakeup(l->logs, now);
    if (lg < t)
        t = lg;
#else
    (void)l;
    (void)now;
#endif
    return t < 0 ? 0 : (int)t;
}

void drv_link_free(drv_link_t *l)
{
    if (!l)
        return;
#ifdef DROVER_HAVE_MQTT
    if (l->logs)
        drv_link_logs_free(l->logs, l->connected ? "the agent is stopping" : NULL);
    if (l->mqtt) {
        if (l->connected)
            publish_online(l, false);
        drv_mqtt_free(l->mqtt, 1000);
    }
#endif
#ifdef DROVER_HAVE_MQTT
    if (l->enroll_fd >= 0)
        close(l->enroll_fd);
    if (l->enroll_pid > 0)
        kill(l->enroll_pid, SIGTERM); /* not left running past the agent (it holds the lock) */
    drv_collector_free(l->collector);
    drv_proto_metrics_free(&l->metrics_last);
#endif
    cJSON_Delete(l->hub);
    cJSON_Delete(l->status);
    free(l->verify_key);
    free(l);
}
