/* The hub <-> agent MQTT protocol v1: topics and JSON messages (docs/PROTOCOL.md). Pure code:
 * no sockets, no threads. Parsers never trust a payload: size cap first, then the hardened
 * JSON reader of doc.c (depth, duplicate keys, number range), then the envelope fields. */
#include "drover/protocol.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "drover/base64.h"
#include "drover/cleanup.h"
#include "drover/json.h"
#include "drover/doc.h"
#include "drover/fmt.h"
#include "drover/names.h"
#include "drover/pki.h"

static const struct {
    const char *name; /* also the topic suffix */
    int qos;
    bool retained;
} msg_info[DRV_PROTO__COUNT] = {
    [DRV_PROTO_DESIRED] = {"desired", 1, true},      [DRV_PROTO_STATUS] = {"status", 1, false},
    [DRV_PROTO_HEARTBEAT] = {"heartbeat", 0, false}, [DRV_PROTO_ONLINE] = {"online", 1, true},
    [DRV_PROTO_EVENTS] = {"events", 1, false},       [DRV_PROTO_LOGS_REQ] = {"logs/req", 1, false},
    [DRV_PROTO_LOGS_RES] = {"logs/res", 1, false},   [DRV_PROTO_METRICS] = {"metrics", 0, false},
};

#define NODE_TOPIC_PREFIX DRV_PROTO_PREFIX "node/"

const char *drv_proto_msg_name(drv_proto_msg_t kind)
{
    if ((unsigned)kind >= DRV_PROTO__COUNT)
        return "unknown";
    return msg_info[kind].name;
}

int drv_proto_qos(drv_proto_msg_t kind)
{
    return (unsigned)kind < DRV_PROTO__COUNT ? msg_info[kind].qos : 1;
}

bool drv_proto_retained(drv_proto_msg_t kind)
{
    return (unsigned)kind < DRV_PROTO__COUNT && msg_info[kind].retained;
}

size_t drv_proto_max_payload(drv_proto_msg_t kind)
{
    return kind == DRV_PROTO_DESIRED   ? DRV_PROTO_DESIRED_MAX
           : kind == DRV_PROTO_METRICS ? DRV_PROTO_METRICS_MAX
                                       : DRV_PROTO_MSG_MAX;
}

drv_err_t drv_proto_check_node(const char *node, drv_error_t *err)
{
    char why[160];
    if (node == NULL || node[0] == '\0')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "node name: required");
    size_t n = strnlen(node, DRV_PROTO_NODE_MAX + 1);
    if (n > DRV_PROTO_NODE_MAX)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "node name: must be no more than %d characters", DRV_PROTO_NODE_MAX);
    if (!drv_name_dns_subdomain(node, why, sizeof why))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "node name \"%.63s\": %s", node, why);
    return DRV_OK;
}

drv_err_t drv_proto_check_id(const char *id, drv_error_t *err)
{
    if (id == NULL || id[0] == '\0')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "id: required");
    size_t n = strnlen(id, DRV_PROTO_ID_MAX + 1);
    if (n > DRV_PROTO_ID_MAX)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "id: must be no more than %d characters",
                             DRV_PROTO_ID_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "id: must consist of letters, digits, '-' and '_'");
    }
    return DRV_OK;
}

static drv_err_t put_topic(char *out, size_t outsz, const char *node, const char *suffix,
                           const char *id, drv_error_t *err)
{
    int n = id ? snprintf(out, outsz, NODE_TOPIC_PREFIX "%s/%s/%s", node, suffix, id)
               : snprintf(out, outsz, NODE_TOPIC_PREFIX "%s/%s", node, suffix);
    if (n < 0 || (size_t)n >= outsz)
        return drv_error_set(err, DRV_ERR_RANGE, 0, "topic: buffer of %zu bytes too small", outsz);
    return DRV_OK;
}

drv_err_t drv_proto_topic(char *out, size_t outsz, const char *node, drv_proto_msg_t kind,
                          const char *id, drv_error_t *err)
{
    if ((unsigned)kind >= DRV_PROTO__COUNT)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "topic: unknown message kind %d", (int)kind);
    drv_err_t rc = drv_proto_check_node(node, err);
    if (rc != DRV_OK)
        return rc;
    if (kind == DRV_PROTO_LOGS_RES) {
        rc = drv_proto_check_id(id, err);
        if (rc != DRV_OK)
            return drv_error_wrap(err, "logs response");
        return put_topic(out, outsz, node, msg_info[kind].name, id, err);
    }
    return put_topic(out, outsz, node, msg_info[kind].name, NULL, err);
}

drv_err_t drv_proto_filter(char *out, size_t outsz, const char *node, drv_proto_msg_t kind,
                           drv_error_t *err)
{
    if ((unsigned)kind >= DRV_PROTO__COUNT)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "topic filter: unknown message kind %d",
                             (int)kind);
    if (node != NULL) {
        drv_err_t rc = drv_proto_check_node(node, err);
        if (rc != DRV_OK)
            return rc;
    }
    return put_topic(out, outsz, node ? node : "+", msg_info[kind].name,
                     kind == DRV_PROTO_LOGS_RES ? "+" : NULL, err);
}

drv_err_t drv_proto_parse_topic(const char *topic, drv_proto_msg_t *kind, char *node, char *id,
                                drv_error_t *err)
{
    const size_t plen = strlen(NODE_TOPIC_PREFIX);
    if (topic == NULL || strncmp(topic, NODE_TOPIC_PREFIX, plen) != 0)
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "topic \"%.100s\": not a drover/v1 topic",
                             topic ? topic : "");
    const char *n = topic + plen;
    const char *slash = strchr(n, '/');
    if (slash == NULL)
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "topic \"%.100s\": no message kind", topic);
    size_t nlen = (size_t)(slash - n);
    char nbuf[DRV_PROTO_NODE_MAX + 1];
    if (nlen > DRV_PROTO_NODE_MAX)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "topic: node name: must be no more than %d characters",
                             DRV_PROTO_NODE_MAX);
    memcpy(nbuf, n, nlen);
    nbuf[nlen] = '\0';
    drv_err_t rc = drv_proto_check_node(nbuf, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "topic");
    const char *rest = slash + 1;
    const char *idp = NULL;
    drv_proto_msg_t k = DRV_PROTO__COUNT;
    for (unsigned i = 0; i < DRV_PROTO__COUNT; i++) {
        size_t sl = strlen(msg_info[i].name);
        if (i == DRV_PROTO_LOGS_RES) {
            if (strncmp(rest, msg_info[i].name, sl) == 0 && rest[sl] == '/') {
                k = (drv_proto_msg_t)i;
                idp = rest + sl + 1;
                break;
            }
        } else if (strcmp(rest, msg_info[i].name) == 0) {
            k = (drv_proto_msg_t)i;
            break;
        }
    }
    if (k == DRV_PROTO__COUNT)
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "topic \"%.100s\": unknown message kind",
                             topic);
    if (idp != NULL) {
        rc = drv_proto_check_id(idp, err);
        if (rc != DRV_OK)
            return drv_error_wrap(err, "topic: logs response");
    }
    *kind = k;
    memcpy(node, nbuf, nlen + 1);
    if (id != NULL) {
        if (idp != NULL)
            memcpy(id, idp, strlen(idp) + 1);
        else
            id[0] = '\0';
    }
    return DRV_OK;
}

void drv_proto_now(char *out, size_t outsz)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    if (outsz > 0 && strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        out[0] = '\0';
}

drv_err_t drv_proto_encode(const cJSON *msg, drv_proto_msg_t kind, char **out, size_t *len,
                           drv_error_t *err)
{
    if (msg == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: no message", drv_proto_msg_name(kind));
    char *text = cJSON_PrintUnformatted(msg);
    if (text == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s: serialising", drv_proto_msg_name(kind));
    size_t n = strlen(text);
    size_t cap = drv_proto_max_payload(kind);
    if (n > cap) {
        free(text);
        return drv_error_set(err, DRV_ERR_TOOBIG, 0,
                             "%s: message of %zu bytes exceeds the %zu-byte limit",
                             drv_proto_msg_name(kind), n, cap);
    }
    *out = text;
    if (len)
        *len = n;
    return DRV_OK;
}

/* ---- parsing helpers ---- */

/* Parses payload as one JSON object of at most cap bytes, strings of at most max_scalar;
 * what prefixes error messages. */
static drv_err_t parse_object_scalar(const char *payload, size_t len, size_t cap, size_t max_scalar,
                                     const char *what, cJSON **out, drv_error_t *err)
{
    if (payload == NULL && len > 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: no payload", what);
    if (len > cap)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0,
                             "%s: payload of %zu bytes exceeds the %zu-byte limit", what, len, cap);
    size_t i = 0;
    while (i < len &&
           (payload[i] == ' ' || payload[i] == '\t' || payload[i] == '\n' || payload[i] == '\r'))
        i++;
    if (i == len)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: empty payload", what);
    if (payload[i] != '{')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: must be a JSON object", what);
    drv_doc_limits_t lim = {.max_input = cap,
                            .max_scalar = max_scalar,
                            .max_depth = 64,
                            .max_nodes = 1000000,
                            .max_docs = 1};
    drv_doc_list_t list = {0};
    drv_err_t rc = drv_doc_parse(payload, len, &lim, &list, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "%s", what);
    if (list.count != 1 || !cJSON_IsObject(list.docs[0].root)) {
        drv_doc_list_free(&list);
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: must be a JSON object", what);
    }
    *out = list.docs[0].root;
    list.docs[0].root = NULL;
    drv_doc_list_free(&list);
    return DRV_OK;
}

static drv_err_t parse_object(const char *payload, size_t len, size_t cap, const char *what,
                              cJSON **out, drv_error_t *err)
{
    return parse_object_scalar(payload, len, cap, DRV_PROTO_MSG_MAX, what, out, err);
}

/* The readers below wrap drover/json.h's, prefixing the message kind ("status: seq: ..."). */
static drv_err_t get_u64(const cJSON *obj, const char *key, const char *what, bool required,
                         uint64_t *out, drv_error_t *err)
{
    const cJSON *it = drv_json_get(obj, key);
    if (it == NULL) {
        if (!required) {
            *out = 0;
            return DRV_OK;
        }
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: %s: required", what, key);
    }
    if (!cJSON_IsNumber(it) || !drv_json_to_uint(it->valuedouble, DRV_PROTO_GEN_MAX, out))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s: %s: must be a non-negative integer (at most 2^53-1)", what, key);
    return DRV_OK;
}

/* A string field copied into buf; absent (or null) and optional gives "". */
static drv_err_t get_str(const cJSON *obj, const char *key, const char *what, bool required,
                         char *buf, size_t bufsz, drv_error_t *err)
{
    bool present = false;
    if (drv_json_read_strbuf(obj, NULL, key, required ? DRV_JSON_REQUIRED : DRV_JSON_NULLABLE, buf,
                             bufsz, &present, err) != DRV_OK)
        return drv_error_wrap(err, "%s", what);
    if (!present)
        buf[0] = '\0';
    else if (required && buf[0] == '\0')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: %s: required", what, key);
    return DRV_OK;
}

static drv_err_t get_bool(const cJSON *obj, const char *key, const char *what, bool required,
                          bool *out, drv_error_t *err)
{
    bool present = false;
    if (drv_json_read_bool(obj, NULL, key, required ? DRV_JSON_REQUIRED : DRV_JSON_OPTIONAL, out,
                           &present, err) != DRV_OK)
        return drv_error_wrap(err, "%s", what);
    if (!present)
        *out = false;
    return DRV_OK;
}

/* RFC 3339 in UTC or with an offset: the shape "YYYY-MM-DDTHH:MM:SS" and a sane rest. */
static bool time_ok(const char *t)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    size_t n = strnlen(t, DRV_PROTO_TIME_MAX + 1);
    bool ok = n > strlen(shape) && n <= DRV_PROTO_TIME_MAX;
    for (size_t i = 0; ok && shape[i]; i++)
        ok = shape[i] == 'd' ? (t[i] >= '0' && t[i] <= '9') : t[i] == shape[i];
    for (size_t i = strlen(shape); ok && t[i]; i++)
        ok = (t[i] >= '0' && t[i] <= '9') || t[i] == '.' || t[i] == 'Z' || t[i] == '+' ||
             t[i] == '-' || t[i] == ':';
    return ok;
}

static bool instance_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > DRV_PROTO_INSTANCE_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-'))
            return false;
    return true;
}

/* The optional "instance" member into buf (DRV_PROTO_INSTANCE_MAX + 1 bytes; "" when absent). */
static drv_err_t get_instance(const cJSON *obj, const char *what, char *buf, drv_error_t *err)
{
    drv_err_t rc = get_str(obj, "instance", what, false, buf, DRV_PROTO_INSTANCE_MAX + 1, err);
    if (rc != DRV_OK || buf[0] == '\0')
        return rc;
    if (!instance_ok(buf))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s: instance: must be 1-40 characters of [A-Za-z0-9-]", what);
    return DRV_OK;
}

static drv_err_t get_time(const cJSON *obj, const char *what, bool required, char *buf,
                          drv_error_t *err)
{
    drv_err_t rc = get_str(obj, "time", what, required, buf, DRV_PROTO_TIME_MAX + 1, err);
    if (rc != DRV_OK || buf[0] == '\0')
        return rc;
    if (!time_ok(buf))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s: time: must be an RFC 3339 time like 2026-01-02T15:04:05Z", what);
    return DRV_OK;
}

static drv_err_t check_kind(const cJSON *obj, const char *what, const char *kind, drv_error_t *err)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(obj, "kind");
    if (!cJSON_IsString(k) || strcmp(k->valuestring, kind) != 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: kind: must be \"%s\"", what, kind);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "apiVersion");
    if (v != NULL && (!cJSON_IsString(v) || strcmp(v->valuestring, DRV_PROTO_API_VERSION) != 0))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s: apiVersion: must be \"" DRV_PROTO_API_VERSION "\"", what);
    return DRV_OK;
}

static drv_err_t get_node(const cJSON *obj, const char *what, const char *expect, char *node,
                          drv_error_t *err)
{
    drv_err_t rc = get_str(obj, "node", what, true, node, DRV_PROTO_NODE_MAX + 1, err);
    if (rc != DRV_OK)
        return rc;
    rc = drv_proto_check_node(node, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "%s", what);
    if (expect != NULL && strcmp(node, expect) != 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s: node: \"%s\" does not match the topic's node \"%s\"", what, node,
                             expect);
    return DRV_OK;
}

/* An array of objects (absent = empty: an empty array is added to obj). */
static drv_err_t get_object_array(cJSON *obj, const char *key, const char *what, const cJSON **out,
                                  drv_error_t *err)
{
    cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (a == NULL || cJSON_IsNull(a)) {
        a = cJSON_CreateArray();
        if (a == NULL)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s", what);
        cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
        cJSON_AddItemToObject(obj, key, a);
    }
    if (!cJSON_IsArray(a))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: %s: must be an array", what, key);
    int i = 0;
    for (const cJSON *c = a->child; c != NULL; c = c->next, i++)
        if (!cJSON_IsObject(c))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: %s[%d]: must be an object", what,
                                 key, i);
    *out = a;
    return DRV_OK;
}

/* cJSON prints numbers with 15 significant digits when that reads back "close enough", which
 * would round large generations: integers are written as raw JSON text instead. */
static bool add_u64(cJSON *obj, const char *key, uint64_t v)
{
    char buf[24];
    if (drv_fmt(buf, sizeof buf, "%llu", (unsigned long long)v) != DRV_OK)
        return false;
    return cJSON_AddRawToObject(obj, key, buf) != NULL;
}

static bool add_copy(cJSON *obj, const char *key, const cJSON *src, bool array)
{
    cJSON *c =
        src ? cJSON_Duplicate(src, true) : (array ? cJSON_CreateArray() : cJSON_CreateObject());
    if (c == NULL)
        return false;
    return cJSON_AddItemToObject(obj, key, c);
}

/* ---- desired state ---- */

cJSON *drv_proto_desired_build(const char *node, uint64_t generation, const cJSON *pods,
                               const cJSON *config_maps, const cJSON *secrets, drv_error_t *err)
{
    return drv_proto_desired_build_net(node, generation, pods, config_maps, secrets, NULL, err);
}

cJSON *drv_proto_desired_build_net(const char *node, uint64_t generation, const cJSON *pods,
                                   const cJSON *config_maps, const cJSON *secrets,
                                   const cJSON *network, drv_error_t *err)
{
    const char *what = "desired state";
    if (drv_proto_check_node(node, err) != DRV_OK) {
        drv_error_wrap(err, "%s", what);
        return NULL;
    }
    if (generation > DRV_PROTO_GEN_MAX) {
        drv_error_set(err, DRV_ERR_RANGE, 0, "%s: generation: must be at most 2^53-1", what);
        return NULL;
    }
    const cJSON *arrs[3] = {pods, config_maps, secrets};
    static const char *const names[3] = {"pods", "configMaps", "secrets"};
    for (int i = 0; i < 3; i++)
        if (arrs[i] != NULL && !cJSON_IsArray(arrs[i])) {
            drv_error_set(err, DRV_ERR_INVALID, 0, "%s: %s: must be an array", what, names[i]);
            return NULL;
        }
    if (network != NULL && !cJSON_IsObject(network)) {
        drv_error_set(err, DRV_ERR_INVALID, 0, "%s: network: must be an object", what);
        return NULL;
    }
    cJSON *d = cJSON_CreateObject();
    bool ok = d && cJSON_AddStringToObject(d, "apiVersion", DRV_PROTO_API_VERSION) &&
              cJSON_AddStringToObject(d, "kind", "NodeDesiredState") &&
              cJSON_AddStringToObject(d, "node", node) && add_u64(d, "generation", generation);
    for (int i = 0; ok && i < 3; i++)
        ok = add_copy(d, names[i], arrs[i], true);
    if (ok && network != NULL)
        ok = add_copy(d, "network", network, false);
    if (!ok) {
        cJSON_Delete(d);
        drv_error_set(err, DRV_ERR_NOMEM, 0, "%s", what);
        return NULL;
    }
    return d;
}

drv_err_t drv_proto_desired_parse(const char *payload, size_t len, const char *expect_node,
                                  drv_proto_desired_t *out, drv_error_t *err)
{
    const char *what = "desired state";
    cJSON *doc = NULL;
    drv_err_t rc = parse_object(payload, len, DRV_PROTO_DESIRED_MAX, what, &doc, err);
    if (rc != DRV_OK)
        return rc;
    drv_proto_desired_t d = {0};
    d.doc = doc;
    if ((rc = check_kind(doc, what, "NodeDesiredState", err)) != DRV_OK ||
        (rc = get_node(doc, what, expect_node, d.node, err)) != DRV_OK ||
        (rc = get_u64(doc, "generation", what, true, &d.generation, err)) != DRV_OK ||
        (rc = get_object_array(doc, "pods", what, &d.pods, err)) != DRV_OK ||
        (rc = get_object_array(doc, "configMaps", what, &d.config_maps, err)) != DRV_OK ||
        (rc = get_object_array(doc, "secrets", what, &d.secrets, err)) != DRV_OK ||
        (rc = get_object_array(doc, "persistentVolumes", what, &d.persistent_volumes, err)) !=
            DRV_OK ||
        (rc = get_object_array(doc, "serviceAccountTokens", what, &d.sa_tokens, err)) != DRV_OK) {
        cJSON_Delete(doc);
        return rc;
    }
    const cJSON *net = cJSON_GetObjectItemCaseSensitive(doc, "network");
    if (net != NULL && !cJSON_IsNull(net) && !cJSON_IsObject(net)) {
        cJSON_Delete(doc);
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: network: must be an object", what);
    }
    d.network = cJSON_IsObject(net) ? net : NULL;
    *out = d;
    return DRV_OK;
}

void drv_proto_desired_free(drv_proto_desired_t *d)
{
    if (d == NULL)
        return;
    cJSON_Delete(d->doc);
    memset(d, 0, sizeof *d);
}

/* ---- service account tokens ---- */

static drv_err_t satoken_context(const char *node, const char *uid, char *ctx, size_t ctxsz,
                                 drv_error_t *err)
{
    if (drv_fmt(ctx, ctxsz, "drover/v1 token %s/%s", node, uid) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "service account token: names too long");
    return DRV_OK;
}

cJSON *drv_proto_satoken_build(const char *node, const char *pod_uid, const char *token,
                               int64_t exp, const char *pub_pem, drv_error_t *err)
{
    char ctx[400], ts[32];
    if (satoken_context(node, pod_uid, ctx, sizeof ctx, err) != DRV_OK)
        return NULL;
    time_t t = (time_t)exp;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
        drv_error_set(err, DRV_ERR_INVALID, 0, "service account token: expiration");
        return NULL;
    }
    _cleanup_free_ char *blob = NULL;
    if (pub_pem && drv_pki_seal(pub_pem, ctx, token, strlen(token), &blob, err) != DRV_OK) {
        drv_error_wrap(err, "service account token of pod %s", pod_uid);
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "podUID", pod_uid) ||
        !cJSON_AddStringToObject(o, blob ? "sealedToken" : "token", blob ? blob : token) ||
        !cJSON_AddStringToObject(o, "expirationTimestamp", ts)) {
        cJSON_Delete(o);
        drv_error_set(err, DRV_ERR_NOMEM, 0, "service account token");
        return NULL;
    }
    return o;
}

drv_err_t drv_proto_satoken_open(const cJSON *entry, const char *node, const char *key_pem,
                                 char pod_uid[65], char **token, drv_error_t *err)
{
    const char *what = "desired state: serviceAccountTokens";
    const char *uid = drv_json_str(entry, "podUID");
    if (!uid || !*uid || strlen(uid) > DRV_PROTO_UID_MAX)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: podUID: required (a pod uid)", what);
    const char *sealed = drv_json_str(entry, "sealedToken"), *clear = drv_json_str(entry, "token");
    if (!sealed == !clear)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s: pod %s: exactly one of sealedToken and token", what, uid);
    char *out = NULL;
    if (clear) {
        if (strlen(clear) > DRV_PROTO_SATOKEN_MAX)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: pod %s: token: too long", what, uid);
        out = strdup(clear);
        if (!out)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s", what);
    } else {
        if (!key_pem)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: pod %s: sealed, and no key", what,
                                 uid);
        char ctx[400];
        if (satoken_context(node, uid, ctx, sizeof ctx, err) != DRV_OK)
            return DRV_ERR_INVALID;
        unsigned char *raw = NULL;
        size_t n = 0;
        drv_err_t rc = drv_pki_open(key_pem, ctx, sealed, &raw, &n, err);
        if (rc != DRV_OK)
            return drv_error_wrap(err, "%s: pod %s", what, uid);
        if (n == 0 || n > DRV_PROTO_SATOKEN_MAX || memchr(raw, '\0', n)) {
            drv_pki_wipe_free(raw, n);
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: pod %s: not a token", what, uid);
        }
        out = malloc(n + 1);
        if (out) {
            memcpy(out, raw, n);
            out[n] = '\0';
        }
        drv_pki_wipe_free(raw, n);
        if (!out)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s", what);
    }
    memcpy(pod_uid, uid, strlen(uid) + 1);
    *token = out;
    return DRV_OK;
}

/* ---- signed desired state ---- */

#define SIGNED_KIND "SignedNodeDesiredState"
#define SIGNED_ALG "ES256"

static drv_err_t desired_payload_check(const char *doc, size_t len, const char *what,
                                       drv_error_t *err)
{
    if (doc == NULL || len == 0 || memchr(doc, '\0', len) != NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: payload: must be a non-empty text",
                             what);
    if (len > DRV_PROTO_DESIRED_MAX)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0,
                             "%s: payload of %zu bytes exceeds the %u-byte limit", what, len,
                             DRV_PROTO_DESIRED_MAX);
    return DRV_OK;
}

drv_err_t drv_proto_desired_sign(const char *doc, size_t len, const char *key_pem, char **out,
                                 size_t *outlen, drv_error_t *err)
{
    const char *what = "signed desired state";
    drv_err_t rc = desired_payload_check(doc, len, what, err);
    if (rc != DRV_OK)
        return rc;
    _cleanup_free_ char *sig = NULL;
    rc = drv_pki_sign(key_pem, doc, len, &sig, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "%s", what);
    return drv_proto_desired_envelope(doc, len, sig, out, outlen, err);
}

drv_err_t drv_proto_desired_envelope(const char *doc, size_t len, const char *sig, char **out,
                                     size_t *outlen, drv_error_t *err)
{
    const char *what = "signed desired state";
    drv_err_t rc = desired_payload_check(doc, len, what, err);
    if (rc != DRV_OK)
        return rc;
    if (!sig || !*sig)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: no signature", what);
    _cleanup_free_ char *text = malloc(len + 1);
    if (text == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s", what);
    memcpy(text, doc, len);
    text[len] = '\0';
    _cleanup_cjson_ cJSON *env = cJSON_CreateObject();
    if (!env || !cJSON_AddStringToObject(env, "apiVersion", DRV_PROTO_API_VERSION) ||
        !cJSON_AddStringToObject(env, "kind", SIGNED_KIND) ||
        !cJSON_AddStringToObject(env, "alg", SIGNED_ALG) ||
        !cJSON_AddStringToObject(env, "signature", sig) ||
        !cJSON_AddStringToObject(env, "payload", text))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s", what);
    char *res = cJSON_PrintUnformatted(env);
    if (res == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s: serialising", what);
    size_t n = strlen(res);
    if (n > DRV_PROTO_DESIRED_MAX) {
        free(res);
        return drv_error_set(err, DRV_ERR_TOOBIG, 0,
                             "%s: message of %zu bytes exceeds the %u-byte limit", what, n,
                             DRV_PROTO_DESIRED_MAX);
    }
    *out = res;
    if (outlen)
        *outlen = n;
    return DRV_OK;
}

drv_err_t drv_proto_desired_open(const char *payload, size_t len, const char *pub_pem, char **doc,
                                 size_t *doclen, drv_error_t *err)
{
    const char *what = "desired state";
    _cleanup_cjson_ cJSON *env = NULL;
    drv_err_t rc = parse_object_scalar(payload, len, DRV_PROTO_DESIRED_MAX, DRV_PROTO_DESIRED_MAX,
                                       what, &env, err);
    if (rc != DRV_OK)
        return rc;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(env, "kind");
    if (cJSON_IsString(kind) && !strcmp(kind->valuestring, "NodeDesiredState"))
        return drv_error_set(err, DRV_ERR_PERM, 0, "%s: not signed", what);
    if ((rc = check_kind(env, what, SIGNED_KIND, err)) != DRV_OK)
        return rc;
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(env, "alg");
    if (!cJSON_IsString(alg) || strcmp(alg->valuestring, SIGNED_ALG))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: alg: must be \"" SIGNED_ALG "\"", what);
    const cJSON *sig = cJSON_GetObjectItemCaseSensitive(env, "signature");
    if (!cJSON_IsString(sig) || !sig->valuestring[0])
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: signature: required (a string)", what);
    const cJSON *pl = cJSON_GetObjectItemCaseSensitive(env, "payload");
    if (!cJSON_IsString(pl) || !pl->valuestring[0])
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: payload: required (a string)", what);
    size_t n = strlen(pl->valuestring);
    rc = drv_pki_verify(pub_pem, pl->valuestring, n, sig->valuestring, err);
    if (rc == DRV_ERR_INTEGRITY)
        return drv_error_set(err, DRV_ERR_INTEGRITY, 0,
                             "%s: signature: does not verify with the hub's signing key", what);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "%s: signature", what);
    char *copy = malloc(n + 1);
    if (copy == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s", what);
    memcpy(copy, pl->valuestring, n + 1);
    *doc = copy;
    if (doclen)
        *doclen = n;
    return DRV_OK;
}

/* ---- Secrets sealed to a node ---- */

#define SEALED_KEY "sealedData"

/* "drover/v1 secret <node>/<ns>/<name>" into ctx; what (whatsz) gets "Secret ns/name". */
static drv_err_t secret_context(const cJSON *secret, const char *node, char *ctx, size_t ctxsz,
                                char *what, size_t whatsz, drv_error_t *err)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(secret, "metadata");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(meta, "name");
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(meta, "namespace");
    if (!cJSON_IsString(name) || !name->valuestring[0])
        return drv_error_set(err, DRV_ERR_INVALID, 0, "Secret: metadata.name: required");
    const char *nsv = cJSON_IsString(ns) && ns->valuestring[0] ? ns->valuestring : "default";
    drv_fmt_cut(what, whatsz, "Secret %.63s/%.253s", nsv, name->valuestring);
    drv_err_t rc = drv_proto_check_node(node, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "%s", what);
    int w = snprintf(ctx, ctxsz, "drover/v1 secret %s/%s/%s", node, nsv, name->valuestring);
    if (w < 0 || (size_t)w >= ctxsz)
        return drv_error_set(err, DRV_ERR_RANGE, 0, "%s: name too long", what);
    return DRV_OK;
}

bool drv_proto_secret_is_sealed(const cJSON *secret)
{
    return cJSON_IsString(cJSON_GetObjectItemCaseSensitive(secret, SEALED_KEY));
}

/* Frees a cJSON text after wiping it (it holds secret values). */
static void wipe_text(char *t)
{
    if (t)
        drv_pki_wipe_free(t, strlen(t));
}

drv_err_t drv_proto_secret_seal(cJSON *secret, const char *node, const char *pub_pem,
                                drv_error_t *err)
{
    char ctx[400], what[340];
    drv_err_t rc = secret_context(secret, node, ctx, sizeof ctx, what, sizeof what, err);
    if (rc != DRV_OK)
        return rc;
    if (drv_proto_secret_is_sealed(secret))
        return DRV_OK;
    if (cJSON_GetObjectItemCaseSensitive(secret, SEALED_KEY))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: sealedData: must be a string", what);
    _cleanup_cjson_ cJSON *inner = cJSON_CreateObject();
    if (inner == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s", what);
    static const char *const keys[] = {"data", "stringData"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(secret, keys[i]);
        if (m == NULL)
            continue;
        if (!cJSON_IsObject(m))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: %s: must be an object", what,
                                 keys[i]);
        cJSON *c = cJSON_Duplicate(m, 1);
        if (c == NULL || !cJSON_AddItemToObject(inner, keys[i], c)) {
            cJSON_Delete(c);
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s", what);
        }
    }
    char *text = cJSON_PrintUnformatted(inner);
    if (text == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s: serialising", what);
    _cleanup_free_ char *blob = NULL;
    rc = drv_pki_seal(pub_pem, ctx, text, strlen(text), &blob, err);
    wipe_text(text);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "%s: sealing to node %s", what, node);
    cJSON *b = cJSON_CreateString(blob);
    if (b == NULL || !cJSON_AddItemToObject(secret, SEALED_KEY, b)) {
        cJSON_Delete(b);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s", what);
    }
    for (size_t i = 0; i < 2; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(secret, keys[i]);
    return DRV_OK;
}

drv_err_t drv_proto_secret_unseal(cJSON *secret, const char *node, const char *key_pem,
                                  drv_error_t *err)
{
    /* A sealedData that is not a blob is neither sealed nor clear: refused, not passed on as
     * a clear Secret that still carries it. */
    if (!drv_proto_secret_is_sealed(secret) &&
        !cJSON_GetObjectItemCaseSensitive(secret, SEALED_KEY))
        return DRV_OK;
    char ctx[400], what[340];
    drv_err_t rc = secret_context(secret, node, ctx, sizeof ctx, what, sizeof what, err);
    if (rc != DRV_OK)
        return rc;
    const cJSON *blob = cJSON_GetObjectItemCaseSensitive(secret, SEALED_KEY);
    if (!cJSON_IsString(blob))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: sealedData: must be a string", what);
    unsigned char *plain = NULL;
    size_t plen = 0;
    rc = drv_pki_open(key_pem, ctx, blob->valuestring, &plain, &plen, err);
    if (rc == DRV_ERR_INTEGRITY)
        return drv_error_set(err, DRV_ERR_INTEGRITY, 0,
                             "%s: sealedData: does not open with this node's key (sealed for "
                             "another node or Secret, or altered)",
                             what);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "%s: sealedData", what);
    cJSON *inner = cJSON_ParseWithLength((const char *)plain, plen);
    drv_pki_wipe_free(plain, plen);
    if (!cJSON_IsObject(inner)) {
        cJSON_Delete(inner);
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: sealedData: not a sealed Secret", what);
    }
    static const char *const keys[] = {"data", "stringData"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(inner, keys[i]);
        if (m != NULL && !cJSON_IsObject(m)) {
            cJSON_Delete(inner);
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: sealedData: %s: must be an object",
                                 what, keys[i]);
        }
    }
    for (size_t i = 0; i < 2; i++) {
        cJSON *m = cJSON_DetachItemFromObjectCaseSensitive(inner, keys[i]);
        if (m == NULL)
            continue;
        cJSON_DeleteItemFromObjectCaseSensitive(secret, keys[i]);
        cJSON_AddItemToObject(secret, keys[i], m);
    }
    cJSON_Delete(inner);
    cJSON_DeleteItemFromObjectCaseSensitive(secret, SEALED_KEY);
    return DRV_OK;
}

/* ---- status ---- */

cJSON *drv_proto_status_build(const char *node, uint64_t observed_generation,
                              const cJSON *node_status, const cJSON *pods, drv_error_t *err)
{
    const char *what = "status report";
    if (drv_proto_check_node(node, err) != DRV_OK) {
        drv_error_wrap(err, "%s", what);
        return NULL;
    }
    if (observed_generation > DRV_PROTO_GEN_MAX) {
        drv_error_set(err, DRV_ERR_RANGE, 0, "%s: observedGeneration: must be at most 2^53-1",
                      what);
        return NULL;
    }
    if (node_status != NULL && !cJSON_IsObject(node_status)) {
        drv_error_set(err, DRV_ERR_INVALID, 0, "%s: nodeStatus: must be an object", what);
        return NULL;
    }
    if (pods != NULL && !cJSON_IsArray(pods)) {
        drv_error_set(err, DRV_ERR_INVALID, 0, "%s: pods: must be an array", what);
        return NULL;
    }
    char now[DRV_PROTO_TIME_MAX + 1];
    drv_proto_now(now, sizeof now);
    cJSON *d = cJSON_CreateObject();
    bool ok = d && cJSON_AddStringToObject(d, "apiVersion", DRV_PROTO_API_VERSION) &&
              cJSON_AddStringToObject(d, "kind", "NodeStatusReport") &&
              cJSON_AddStringToObject(d, "node", node) &&
              add_u64(d, "observedGeneration", observed_generation) &&
              cJSON_AddStringToObject(d, "time", now) &&
              add_copy(d, "nodeStatus", node_status, false) && add_copy(d, "pods", pods, true);
    if (!ok) {
        cJSON_Delete(d);
        drv_error_set(err, DRV_ERR_NOMEM, 0, "%s", what);
        return NULL;
    }
    return d;
}

drv_err_t drv_proto_status_parse(const char *payload, size_t len, const char *expect_node,
                                 drv_proto_status_t *out, drv_error_t *err)
{
    const char *what = "status report";
    cJSON *doc = NULL;
    drv_err_t rc = parse_object(payload, len, DRV_PROTO_MSG_MAX, what, &doc, err);
    if (rc != DRV_OK)
        return rc;
    drv_proto_status_t s = {0};
    s.doc = doc;
    if ((rc = check_kind(doc, what, "NodeStatusReport", err)) != DRV_OK ||
        (rc = get_node(doc, what, expect_node, s.node, err)) != DRV_OK ||
        (rc = get_u64(doc, "observedGeneration", what, true, &s.observed_generation, err)) !=
            DRV_OK ||
        (rc = get_time(doc, what, true, s.time, err)) != DRV_OK ||
        (rc = get_object_array(doc, "pods", what, &s.pods, err)) != DRV_OK)
        goto fail;
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(doc, "nodeStatus");
    if (!cJSON_IsObject(ns)) {
        rc = drv_error_set(err, DRV_ERR_INVALID, 0, "%s: nodeStatus: must be an object", what);
        goto fail;
    }
    s.node_status = ns;
    int i = 0;
    for (const cJSON *p = s.pods->child; p != NULL; p = p->next, i++) {
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(p, "metadata");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(p, "status");
        char buf[254];
        if (!cJSON_IsObject(md)) {
            rc = drv_error_set(err, DRV_ERR_INVALID, 0, "%s: pods[%d].metadata: must be an object",
                               what, i);
            goto fail;
        }
        if ((rc = get_str(md, "name", what, true, buf, sizeof buf, err)) != DRV_OK ||
            (rc = get_str(md, "namespace", what, true, buf, sizeof buf, err)) != DRV_OK) {
            drv_error_set(err, rc, 0,
                          "%s: pods[%d].metadata: name and namespace: required "
                          "strings of at most 253 characters",
                          what, i);
            goto fail;
        }
        if (!cJSON_IsObject(st)) {
            rc = drv_error_set(err, DRV_ERR_INVALID, 0, "%s: pods[%d].status: must be an object",
                               what, i);
            goto fail;
        }
    }
    *out = s;
    return DRV_OK;
fail:
    cJSON_Delete(doc);
    return rc;
}

void drv_proto_status_free(drv_proto_status_t *s)
{
    if (s == NULL)
        return;
    cJSON_Delete(s->doc);
    memset(s, 0, sizeof *s);
}

/* ---- heartbeat ---- */

drv_err_t drv_proto_heartbeat_format(const drv_proto_heartbeat_t *hb, char *out, size_t outsz,
                                     drv_error_t *err)
{
    drv_err_t rc = drv_proto_check_node(hb->node, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "heartbeat");
    if (hb->seq > DRV_PROTO_GEN_MAX || hb->observed_generation > DRV_PROTO_GEN_MAX)
        return drv_error_set(err, DRV_ERR_RANGE, 0,
                             "heartbeat: seq, observedGeneration: must be "
                             "at most 2^53-1");
    char now[DRV_PROTO_TIME_MAX + 1];
    const char *t = hb->time;
    if (t[0] == '\0') {
        drv_proto_now(now, sizeof now);
        t = now;
    } else if (!time_ok(t)) {
        return drv_error_set(err, DRV_ERR_INVALID, 0, "heartbeat: time: must be an RFC 3339 time");
    }
    if (hb->instance[0] && !instance_ok(hb->instance))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "heartbeat: instance: must be 1-40 characters of [A-Za-z0-9-]");
    int n = snprintf(
        out, outsz,
        "{\"node\":\"%s\",\"seq\":%llu,\"observedGeneration\":%llu,\"time\":\"%.40s\"%s%s%s}",
        hb->node, (unsigned long long)hb->seq, (unsigned long long)hb->observed_generation, t,
        hb->instance[0] ? ",\"instance\":\"" : "", hb->instance, hb->instance[0] ? "\"" : "");
    if (n < 0 || (size_t)n >= outsz)
        return drv_error_set(err, DRV_ERR_RANGE, 0, "heartbeat: buffer of %zu bytes too small",
                             outsz);
    return DRV_OK;
}

drv_err_t drv_proto_heartbeat_parse(const char *payload, size_t len, const char *expect_node,
                                    drv_proto_heartbeat_t *out, drv_error_t *err)
{
    const char *what = "heartbeat";
    cJSON *doc = NULL;
    drv_err_t rc = parse_object(payload, len, DRV_PROTO_MSG_MAX, what, &doc, err);
    if (rc != DRV_OK)
        return rc;
    drv_proto_heartbeat_t hb = {0};
    if ((rc = get_node(doc, what, expect_node, hb.node, err)) == DRV_OK &&
        (rc = get_u64(doc, "seq", what, true, &hb.seq, err)) == DRV_OK &&
        (rc = get_u64(doc, "observedGeneration", what, true, &hb.observed_generation, err)) ==
            DRV_OK &&
        (rc = get_time(doc, what, false, hb.time, err)) == DRV_OK &&
        (rc = get_instance(doc, what, hb.instance, err)) == DRV_OK)
        *out = hb;
    cJSON_Delete(doc);
    return rc;
}

/* ---- presence ---- */

drv_err_t drv_proto_online_format(bool online, const char *time, const char *instance, char *out,
                                  size_t outsz, drv_error_t *err)
{
    if (time && time[0] && !time_ok(time))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "online: time: must be an RFC 3339 time");
    if (instance && instance[0] && !instance_ok(instance))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "online: instance: must be 1-40 characters of [A-Za-z0-9-]");
    bool t = time && time[0], i = instance && instance[0];
    int n = snprintf(out, outsz, "{\"online\":%s%s%.40s%s%s%.40s%s}", online ? "true" : "false",
                     t ? ",\"time\":\"" : "", t ? time : "", t ? "\"" : "",
                     i ? ",\"instance\":\"" : "", i ? instance : "", i ? "\"" : "");
    if (n < 0 || (size_t)n >= outsz)
        return drv_error_set(err, DRV_ERR_RANGE, 0, "online: buffer of %zu bytes too small", outsz);
    return DRV_OK;
}

drv_err_t drv_proto_online_parse(const char *payload, size_t len, drv_proto_online_t *out,
                                 drv_error_t *err)
{
    const char *what = "online";
    cJSON *doc = NULL;
    drv_err_t rc = parse_object(payload, len, DRV_PROTO_MSG_MAX, what, &doc, err);
    if (rc != DRV_OK)
        return rc;
    drv_proto_online_t o = {0};
    if ((rc = get_bool(doc, "online", what, true, &o.online, err)) == DRV_OK &&
        (rc = get_time(doc, what, false, o.time, err)) == DRV_OK &&
        (rc = get_instance(doc, what, o.instance, err)) == DRV_OK)
        *out = o;
    cJSON_Delete(doc);
    return rc;
}

/* ---- events ---- */

cJSON *drv_proto_event_build(const char *node, const char *involved_kind, const char *involved_name,
                             const char *involved_namespace, const char *type, const char *reason,
                             const char *message, drv_error_t *err)
{
    if (drv_proto_check_node(node, err) != DRV_OK) {
        drv_error_wrap(err, "event");
        return NULL;
    }
    if (!involved_kind || !involved_name || !type || !reason || !message) {
        drv_error_set(err, DRV_ERR_INVALID, 0,
                      "event: involvedObject kind and name, type, reason, message: required");
        return NULL;
    }
    char now[DRV_PROTO_TIME_MAX + 1];
    drv_proto_now(now, sizeof now);
    /* Unique enough per node: the node name and the time in nanoseconds. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char name[128];
    if (drv_fmt(name, sizeof name, "%.63s.%llx%09ld", node, (unsigned long long)ts.tv_sec,
                ts.tv_nsec) != DRV_OK) {
        (void)drv_error_set(err, DRV_ERR_INVALID, 0, "event: name too long");
        return NULL;
    }
    char msg[1025];
    drv_fmt_cut(msg, sizeof msg, "%s", message);
    cJSON *e = cJSON_CreateObject();
    cJSON *md = cJSON_CreateObject();
    cJSON *io = cJSON_CreateObject();
    cJSON *src = cJSON_CreateObject();
    bool ok = e && md && io && src;
    if (ok) {
        cJSON_AddItemToObject(e, "metadata", md);
        cJSON_AddItemToObject(e, "involvedObject", io);
        cJSON_AddItemToObject(e, "source", src);
        const char *ns = involved_namespace ? involved_namespace : "default";
        ok = cJSON_AddStringToObject(e, "apiVersion", "v1") &&
             cJSON_AddStringToObject(e, "kind", "Event") &&
             cJSON_AddStringToObject(md, "name", name) &&
             cJSON_AddStringToObject(md, "namespace", ns) &&
             cJSON_AddStringToObject(io, "kind", involved_kind) &&
             cJSON_AddStringToObject(io, "name", involved_name) &&
             (involved_namespace == NULL ||
              cJSON_AddStringToObject(io, "namespace", involved_namespace)) &&
             cJSON_AddStringToObject(e, "type", type) &&
             cJSON_AddStringToObject(e, "reason", reason) &&
             cJSON_AddStringToObject(e, "message", msg) &&
             cJSON_AddStringToObject(src, "component", "drover-agent") &&
             cJSON_AddStringToObject(src, "host", node) &&
             cJSON_AddStringToObject(e, "firstTimestamp", now) &&
             cJSON_AddStringToObject(e, "lastTimestamp", now) &&
             cJSON_AddNumberToObject(e, "count", 1);
    } else {
        cJSON_Delete(md);
        cJSON_Delete(io);
        cJSON_Delete(src);
    }
    if (!ok) {
        cJSON_Delete(e);
        drv_error_set(err, DRV_ERR_NOMEM, 0, "event");
        return NULL;
    }
    return e;
}

drv_err_t drv_proto_event_parse(const char *payload, size_t len, cJSON **out, drv_error_t *err)
{
    const char *what = "event";
    cJSON *doc = NULL;
    drv_err_t rc = parse_object(payload, len, DRV_PROTO_MSG_MAX, what, &doc, err);
    if (rc != DRV_OK)
        return rc;
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(doc, "kind");
    const cJSON *io = cJSON_GetObjectItemCaseSensitive(doc, "involvedObject");
    char buf[1025];
    if (!cJSON_IsString(k) || strcmp(k->valuestring, "Event") != 0)
        rc = drv_error_set(err, DRV_ERR_INVALID, 0, "%s: kind: must be \"Event\"", what);
    else if (!cJSON_IsObject(io))
        rc = drv_error_set(err, DRV_ERR_INVALID, 0, "%s: involvedObject: must be an object", what);
    else if ((rc = get_str(doc, "reason", what, true, buf, 129, err)) == DRV_OK)
        rc = get_str(doc, "message", what, false, buf, sizeof buf, err);
    if (rc != DRV_OK) {
        cJSON_Delete(doc);
        return rc;
    }
    *out = doc;
    return DRV_OK;
}

/* ---- logs ---- */

cJSON *drv_proto_logs_req_build(const drv_proto_logs_req_t *req, drv_error_t *err)
{
    if (drv_proto_check_id(req->id, err) != DRV_OK) {
        drv_error_wrap(err, "logs request");
        return NULL;
    }
    if (req->pod[0] == '\0' && !req->cancel) {
        drv_error_set(err, DRV_ERR_INVALID, 0, "logs request: pod: required");
        return NULL;
    }
    if (req->tail_bytes > DRV_PROTO_GEN_MAX) {
        drv_error_set(err, DRV_ERR_RANGE, 0, "logs request: tailBytes: must be at most 2^53-1");
        return NULL;
    }
    cJSON *r = cJSON_CreateObject();
    bool ok =
        r && cJSON_AddStringToObject(r, "id", req->id) &&
        cJSON_AddStringToObject(r, "pod", req->pod) &&
        cJSON_AddStringToObject(r, "namespace", req->namespace_[0] ? req->namespace_ : "default") &&
        cJSON_AddStringToObject(r, "container", req->container) &&
        add_u64(r, "tailBytes", req->tail_bytes) &&
        cJSON_AddBoolToObject(r, "follow", req->follow) &&
        (!req->cancel || cJSON_AddBoolToObject(r, "cancel", true));
    if (!ok) {
        cJSON_Delete(r);
        drv_error_set(err, DRV_ERR_NOMEM, 0, "logs request");
        return NULL;
    }
    return r;
}

drv_err_t drv_proto_logs_req_parse(const char *payload, size_t len, drv_proto_logs_req_t *out,
                                   drv_error_t *err)
{
    const char *what = "logs request";
    cJSON *doc = NULL;
    drv_err_t rc = parse_object(payload, len, DRV_PROTO_MSG_MAX, what, &doc, err);
    if (rc != DRV_OK)
        return rc;
    drv_proto_logs_req_t r = {0};
    if ((rc = get_str(doc, "id", what, true, r.id, sizeof r.id, err)) == DRV_OK &&
        (rc = drv_proto_check_id(r.id, err)) != DRV_OK)
        rc = drv_error_wrap(err, "%s", what);
    if (rc == DRV_OK)
        rc = get_bool(doc, "cancel", what, false, &r.cancel, err);
    if (rc == DRV_OK &&
        (rc = get_str(doc, "pod", what, !r.cancel, r.pod, sizeof r.pod, err)) == DRV_OK &&
        (rc = get_str(doc, "namespace", what, false, r.namespace_, sizeof r.namespace_, err)) ==
            DRV_OK &&
        (rc = get_str(doc, "container", what, false, r.container, sizeof r.container, err)) ==
            DRV_OK &&
        (rc = get_u64(doc, "tailBytes", what, false, &r.tail_bytes, err)) == DRV_OK &&
        (rc = get_bool(doc, "follow", what, false, &r.follow, err)) == DRV_OK) {
        if (r.namespace_[0] == '\0')
            DRV_FMT_LIT(r.namespace_, "default");
        *out = r;
    }
    cJSON_Delete(doc);
    return rc;
}

cJSON *drv_proto_logs_chunk_build(const char *id, uint64_t seq, const void *data, size_t len,
                                  bool eof, drv_error_t *err)
{
    if (drv_proto_check_id(id, err) != DRV_OK) {
        drv_error_wrap(err, "logs chunk");
        return NULL;
    }
    if (len > DRV_PROTO_LOGS_CHUNK_MAX || seq > DRV_PROTO_GEN_MAX) {
        drv_error_set(err, DRV_ERR_TOOBIG, 0, "logs chunk: data: more than %u bytes",
                      DRV_PROTO_LOGS_CHUNK_MAX);
        return NULL;
    }
    _cleanup_free_ char *b64 = drv_base64_encode(data ? data : "", data ? len : 0);
    cJSON *c = cJSON_CreateObject();
    bool ok = b64 && c && cJSON_AddStringToObject(c, "id", id) && add_u64(c, "seq", seq) &&
              cJSON_AddStringToObject(c, "data", b64) && cJSON_AddBoolToObject(c, "eof", eof);
    if (!ok) {
        cJSON_Delete(c);
        drv_error_set(err, DRV_ERR_NOMEM, 0, "logs chunk");
        return NULL;
    }
    return c;
}

cJSON *drv_proto_logs_error_build(const char *id, uint64_t seq, const char *message,
                                  drv_error_t *err)
{
    cJSON *c = drv_proto_logs_chunk_build(id, seq, NULL, 0, true, err);
    char msg[256];
    drv_fmt_cut(msg, sizeof msg, "%s", message ? message : "error");
    if (c != NULL && !cJSON_AddStringToObject(c, "error", msg)) {
        cJSON_Delete(c);
        drv_error_set(err, DRV_ERR_NOMEM, 0, "logs chunk");
        return NULL;
    }
    return c;
}

drv_err_t drv_proto_logs_chunk_parse(const char *payload, size_t len, drv_proto_logs_chunk_t *out,
                                     drv_error_t *err)
{
    const char *what = "logs chunk";
    cJSON *doc = NULL;
    drv_err_t rc = parse_object(payload, len, DRV_PROTO_MSG_MAX, what, &doc, err);
    if (rc != DRV_OK)
        return rc;
    drv_proto_logs_chunk_t c = {0};
    if ((rc = get_str(doc, "id", what, true, c.id, sizeof c.id, err)) == DRV_OK &&
        (rc = drv_proto_check_id(c.id, err)) != DRV_OK)
        rc = drv_error_wrap(err, "%s", what);
    if (rc == DRV_OK && (rc = get_u64(doc, "seq", what, true, &c.seq, err)) == DRV_OK &&
        (rc = get_bool(doc, "eof", what, false, &c.eof, err)) == DRV_OK &&
        (rc = get_str(doc, "error", what, false, c.error, sizeof c.error, err)) == DRV_OK) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(doc, "data");
        if (d != NULL && !cJSON_IsString(d)) {
            rc = drv_error_set(err, DRV_ERR_INVALID, 0, "%s: data: must be a base64 string", what);
        } else if (d != NULL && d->valuestring[0] != '\0') {
            if (drv_base64_decode(d->valuestring, strlen(d->valuestring), &c.data, &c.len) !=
                DRV_OK)
                rc = drv_error_set(err, DRV_ERR_INVALID, 0, "%s: data: must be base64", what);
        }
    }
    cJSON_Delete(doc);
    if (rc != DRV_OK) {
        free(c.data);
        return rc;
    }
    *out = c;
    return DRV_OK;
}

void drv_proto_logs_chunk_free(drv_proto_logs_chunk_t *c)
{
    if (c == NULL)
        return;
    free(c->data);
    c->data = NULL;
    c->len = 0;
}

/* ---- back-off ---- */

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

void drv_proto_backoff_init(drv_proto_backoff_t *b, uint32_t min_ms, uint32_t max_ms, uint64_t seed)
{
    if (min_ms == 0)
        min_ms = 1;
    if (max_ms < min_ms)
        max_ms = min_ms;
    b->min_ms = min_ms;
    b->max_ms = max_ms;
    b->cur_ms = min_ms;
    if (seed == 0 && getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    }
    /* splitmix64 finaliser: close seeds give unrelated sequences. */
    seed += 0x9e3779b97f4a7c15ull;
    seed = (seed ^ (seed >> 30)) * 0xbf58476d1ce4e5b9ull;
    seed = (seed ^ (seed >> 27)) * 0x94d049bb133111ebull;
    seed ^= seed >> 31;
    b->rng = seed ? seed : 0x2545f4914f6cdd1dull;
}

uint32_t drv_proto_backoff_next(drv_proto_backoff_t *b)
{
    uint32_t ceil = b->cur_ms;
    uint32_t d = (uint32_t)(xorshift64(&b->rng) % ((uint64_t)ceil + 1));
    b->cur_ms = ceil > b->max_ms / 2 ? b->max_ms : ceil * 2;
    return d;
}

void drv_proto_backoff_reset(drv_proto_backoff_t *b)
{
    b->cur_ms = b->min_ms;
}
