/* POST /apis/drover.io/v1/apply (docs/DASHBOARD.md): one or more manifests (YAML documents
 * or a JSON object) created or replaced, as `kubectl apply` and `drover apply` do, for clients
 * that cannot parse YAML themselves (the dashboard). All or nothing up front: every document
 * is validated and authorized (as the POST or PUT on its own route, with the request's
 * credentials) before anything is written; a wrong one answers 422 with every problem at the
 * field it names and the document it is in. Writes then go one by one; a write that fails
 * (a conflict with a concurrent writer, say) is reported with the results so far. */
#include "api/api_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "drover/cleanup.h"
#include "drover/doc.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/log.h"

#define APPLY_DOCS_MAX 100

typedef struct item {
    cJSON *obj; /* normalized */
    drv_kind_t kind;
    char ns[256], name[256];
} item_t;

static const drv_api_route_t *route_of(drv_kind_t k, drv_api_op_t op)
{
    size_t n = 0;
    const drv_api_route_t *r = drv_api_routes(&n);
    for (size_t i = 0; i < n; i++)
        if (r[i].kind == k && r[i].op == op &&
            (op != DRV_API_OP_COLLECTION || (r[i].methods & DRV_API_M_POST)))
            return &r[i];
    return NULL;
}

/* Adds a problem of document doc to st's details.causes (made on first use). */
static bool add_cause(cJSON *causes, unsigned doc, const char *field, const char *msg)
{
    cJSON *c = cJSON_CreateObject();
    if (!c || !cJSON_AddStringToObject(c, "reason", "FieldValueInvalid") ||
        !cJSON_AddStringToObject(c, "field", field) ||
        !cJSON_AddStringToObject(c, "message", msg) ||
        !cJSON_AddNumberToObject(c, "document", doc) || !cJSON_AddItemToArray(causes, c)) {
        cJSON_Delete(c);
        return false;
    }
    return true;
}

static enum MHD_Result reply_invalid(drv_api_req_t *rq, cJSON *causes, size_t ndocs)
{
    size_t n = (size_t)cJSON_GetArraySize(causes);
    char msg[600];
    const cJSON *first = causes->child;
    drv_fmt_cut(msg, sizeof(msg), "%zu problem%s in %zu document%s; first: document %d: %s: %s", n,
                n == 1 ? "" : "s", ndocs, ndocs == 1 ? "" : "s",
                (int)drv_json_int_at(first, "document", 0, 100000, 0),
                *drv_json_str_or(first, "field", "") ? drv_json_str_or(first, "field", "")
                                                     : "(document)",
                drv_json_str_or(first, "message", ""));
    _cleanup_cjson_ cJSON *st = drv_api_status_json(422, "Invalid", msg, NULL);
    cJSON *det = st ? cJSON_AddObjectToObject(st, "details") : NULL;
    if (!det || !cJSON_AddItemToObject(det, "causes", causes)) {
        cJSON_Delete(causes);
        return drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
    }
    return drv_api_reply_json(rq, 422, st);
}

/* Validates one document into *it, adding its problems to causes. */
static bool check_doc(drv_api_req_t *rq, const cJSON *root, unsigned doc, item_t *it, cJSON *causes,
                      unsigned *code, char *msg, size_t msgsz)
{
    it->obj = cJSON_Duplicate(root, true);
    if (!it->obj)
        return add_cause(causes, doc, "", "out of memory"), false;
    it->kind = drv_model_kind(it->obj);
    drv_diags_t d = {0};
    drv_err_t e = drv_model_normalize(it->obj, &d);
    if (e != DRV_OK) {
        for (size_t i = 0; i < d.count; i++)
            add_cause(causes, doc, d.items[i].path, d.items[i].msg);
        if (!d.count)
            add_cause(causes, doc, "", e == DRV_ERR_NOMEM ? "out of memory" : "invalid");
        drv_diags_free(&d);
        return false;
    }
    drv_diags_free(&d);
    const cJSON *meta = drv_json_get(it->obj, "metadata");
    const char *name = drv_json_str(meta, "name"), *ns = drv_json_str(meta, "namespace");
    if (!name || !*name)
        return add_cause(causes, doc, "metadata.name",
                         "required (apply names every object; generateName is for create)"),
               false;
    const drv_api_route_t *item = route_of(it->kind, DRV_API_OP_ITEM);
    bool nsd = item && strstr(item->pattern, "{namespace}");
    if (drv_fmt(it->name, sizeof(it->name), "%s", name) != DRV_OK ||
        drv_fmt(it->ns, sizeof(it->ns), "%s", nsd ? (ns && *ns ? ns : "default") : "") != DRV_OK)
        return add_cause(causes, doc, "metadata", "name or namespace too long"), false;
    if (nsd && !ns &&
        !cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(it->obj, "metadata"), "namespace",
                                 it->ns))
        return add_cause(causes, doc, "", "out of memory"), false;
    /* As the POST on the collection if absent, the PUT on the item if present. */
    cJSON *cur = NULL;
    bool exists = drv_hstore_get(rq->api->store, it->kind, it->ns, it->name, &cur, NULL) == DRV_OK;
    cJSON_Delete(cur);
    const drv_api_route_t *r = exists ? item : route_of(it->kind, DRV_API_OP_COLLECTION);
    if (!r) /* the authorizer lets any role through a request without a route */
        return add_cause(causes, doc, "kind", "not a kind that apply writes"), false;
    *code = drv_api_authorize_as(rq, r, exists ? DRV_API_M_PUT : DRV_API_M_POST, it->ns,
                                 exists ? it->name : "", false, msg, msgsz);
    return *code == 0;
}

/* The annotations the hub's controllers keep on an object (a Deployment's revision and
 * history): an apply of the manifest, which never names them, keeps them as kubectl apply's
 * merge does, so applying the same manifest again changes nothing. */
static bool system_annotation(const char *key)
{
    return !strncmp(key, "deployment.kubernetes.io/", 25) || !strncmp(key, "drover.io/", 10);
}

static bool keep_system_annotations(const cJSON *cur, cJSON *obj)
{
    const cJSON *had = drv_json_get(drv_json_get(cur, "metadata"), "annotations");
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    if (!cJSON_IsObject(had) || !cJSON_IsObject(meta))
        return true;
    const cJSON *a;
    cJSON_ArrayForEach(a, had)
    {
        if (!a->string || !system_annotation(a->string))
            continue;
        cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
        if (!ann && !(ann = cJSON_AddObjectToObject(meta, "annotations")))
            return false;
        if (!cJSON_IsObject(ann))
            return true; /* the model refused that already */
        if (!cJSON_GetObjectItemCaseSensitive(ann, a->string) &&
            !cJSON_AddItemToObject(ann, a->string, cJSON_Duplicate(a, true)))
            return false;
    }
    return true;
}

static const char *write_one(drv_api_t *api, item_t *it, drv_error_t *err, drv_err_t *e)
{
    _cleanup_cjson_ cJSON *cur = NULL;
    *e = drv_hstore_get(api->store, it->kind, it->ns, it->name, &cur, err);
    char field[128];
    if (*e == DRV_ERR_NOTFOUND) { /* a create */
        drv_error_clear(err);
        *e = DRV_OK;
    }
    if (*e == DRV_OK && api->admit)
        *e = api->admit(api->admit_ctx, it->kind, !cur, it->obj, field, sizeof(field), err);
    if (*e == DRV_OK && !cur) {
        *e = drv_hstore_create(api->store, it->kind, it->obj, err);
        return "created";
    }
    if (*e != DRV_OK)
        return NULL;
    const char *before = drv_json_str(drv_json_get(cur, "metadata"), "resourceVersion");
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(it->obj, "metadata");
    cJSON_DeleteItemFromObjectCaseSensitive(meta, "resourceVersion"); /* last writer wins */
    if (it->kind == DRV_KIND_PVC)
        drv_model_pvc_keep_binding(cur, it->obj);
    if (!keep_system_annotations(cur, it->obj)) {
        *e = drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
        return NULL;
    }
    *e = drv_hstore_update(api->store, it->kind, it->obj, err);
    const char *after = drv_json_str(drv_json_get(it->obj, "metadata"), "resourceVersion");
    return before && after && !strcmp(before, after) ? "unchanged" : "configured";
}

enum MHD_Result drv_api_apply(drv_api_req_t *rq)
{
    const char *body = drv_buf_str(&rq->body);
    size_t len = rq->body.len, i = 0;
    while (i < len && isspace((unsigned char)body[i]))
        i++;
    if (i == len)
        return drv_api_reply_status(rq, 400, NULL, "request body is empty: paste a manifest", NULL);
    drv_doc_list_t docs = {0};
    enum MHD_Result parsed = MHD_NO;
    if (!drv_api_body_docs(rq, &docs, &parsed))
        return parsed;
    if (docs.count == 0 || docs.count > APPLY_DOCS_MAX) {
        drv_doc_list_free(&docs);
        char msg[128];
        drv_fmt_cut(msg, sizeof(msg), "request body: %zu documents (1 to %d are taken at once)",
                    docs.count, APPLY_DOCS_MAX);
        return drv_api_reply_status(rq, 400, NULL, msg, NULL);
    }
    _cleanup_free_ item_t *items = calloc(docs.count, sizeof(*items));
    cJSON *causes = cJSON_CreateArray();
    enum MHD_Result r = MHD_NO;
    bool ok = items && causes;
    unsigned code = 0;
    char denied[300] = "";
    for (size_t d = 0; ok && d < docs.count; d++) {
        unsigned c = 0;
        char msg[256] = "";
        if (!check_doc(rq, docs.docs[d].root, docs.docs[d].index, &items[d], causes, &c, msg,
                       sizeof(msg)) &&
            c && !code) {
            code = c;
            drv_fmt_cut(denied, sizeof(denied), "document %u: %s", docs.docs[d].index, msg);
        }
    }
    size_t ndocs = docs.count;
    drv_doc_list_free(&docs);
    if (!ok) {
        r = drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
    } else if (code) {
        r = code == 401 ? drv_api_reply_unauthorized(rq, denied)
                        : drv_api_reply_status(rq, 403, "Forbidden", denied, NULL);
    } else if (cJSON_GetArraySize(causes) > 0) {
        r = reply_invalid(rq, causes, ndocs);
        causes = NULL;
    } else {
        _cleanup_cjson_ cJSON *out = cJSON_CreateObject();
        cJSON *arr = out ? cJSON_AddArrayToObject(out, "items") : NULL;
        bool wrote = false, failed = false;
        for (size_t d = 0; arr && d < ndocs && !failed; d++) {
            drv_err_t e = DRV_OK;
            drv_error_t werr = DRV_ERROR_INIT;
            const char *res = write_one(rq->api, &items[d], &werr, &e);
            cJSON *o = cJSON_CreateObject();
            if (!o || !cJSON_AddItemToArray(arr, o)) {
                cJSON_Delete(o);
                break;
            }
            cJSON_AddStringToObject(o, "kind", drv_kind_name(items[d].kind));
            cJSON_AddStringToObject(o, "namespace", items[d].ns);
            cJSON_AddStringToObject(o, "name", items[d].name);
            if (e != DRV_OK) {
                failed = true;
                cJSON_AddStringToObject(o, "result", "failed");
                cJSON_AddStringToObject(o, "message", drv_error_msg(&werr));
            } else {
                wrote |= strcmp(res, "unchanged") != 0;
                cJSON_AddStringToObject(o, "result", res);
            }
        }
        if (wrote)
            drv_api_changed(rq->api);
        r = arr ? drv_api_reply_json(rq, failed ? 409 : 200, out)
                : drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
    }
    cJSON_Delete(causes);
    for (size_t d = 0; items && d < ndocs; d++)
        cJSON_Delete(items[d].obj);
    return r;
}
