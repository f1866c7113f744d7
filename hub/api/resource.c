/* The API's resource handlers: get, list, create, update, merge patch, delete and the status
 * subresource, with Kubernetes' status codes. Every write body passes drv_model_normalize;
 * its name and namespace must agree with the URL (they are filled from it when absent). */
#include "api/api_int.h"
#include "api/patch.h"
#include "api/patchmeta.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "drover/cleanup.h"
#include "drover/proc.h"
#include "drover/doc.h"
#include "drover/fmt.h"
#include "drover/log.h"
#include "drover/json.h"
#include "drover/selector.h"
#include "ctrl/ctrl.h"

void drv_api_media_type(drv_api_req_t *rq, char *out, size_t outsz)
{
    const char *ct =
        MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    size_t o = 0;
    if (ct) {
        while (*ct == ' ' || *ct == '\t')
            ct++;
        for (; *ct && *ct != ';' && *ct != ' ' && o + 1 < outsz; ct++)
            out[o++] = (char)tolower((unsigned char)*ct);
    }
    out[o] = '\0';
}

bool drv_api_body_docs(drv_api_req_t *rq, drv_doc_list_t *docs, enum MHD_Result *r)
{
    drv_doc_limits_t lim = drv_doc_default_limits;
    lim.max_input = rq->api->max_body;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_doc_parse(drv_buf_str(&rq->body), rq->body.len, &lim, docs, &err) == DRV_OK)
        return true;
    char msg[DRV_ERROR_MSG_MAX + 32];
    drv_fmt_cut(msg, sizeof(msg), "request body: %s", drv_error_msg(&err));
    *r = drv_api_reply_status(rq, 400, NULL, msg, NULL);
    return false;
}

/* The patch format a PATCH request's Content-Type names; false for one Drover does not apply
 * (server-side apply, or not a patch type at all). */
static bool patch_type(const char *mt, drv_api_patch_type_t *out)
{
    if (!strcmp(mt, "application/strategic-merge-patch+json"))
        *out = DRV_API_PATCH_STRATEGIC;
    else if (!strcmp(mt, "application/json-patch+json"))
        *out = DRV_API_PATCH_JSON;
    else if (!*mt || !strcmp(mt, "application/merge-patch+json") || !strcmp(mt, "application/json"))
        *out = DRV_API_PATCH_MERGE;
    else
        return false;
    return true;
}

/* Parses the request body (JSON, or YAML when so declared) into one object, or for a JSON
 * Patch into one array. On failure the reply has been queued (*r) and NULL is returned. */
static cJSON *read_body(drv_api_req_t *rq, bool patch, enum MHD_Result *r)
{
    char mt[128];
    drv_api_media_type(rq, mt, sizeof(mt));
    bool yaml = false, list = false;
    if (patch) {
        drv_api_patch_type_t pt;
        if (!strcmp(mt, "application/apply-patch+yaml")) {
            *r = drv_api_reply_status(
                rq, 415, NULL,
                "server-side apply (application/apply-patch+yaml) is not supported by Drover; "
                "use client-side kubectl apply (the default, without --server-side)",
                NULL);
            return NULL;
        }
        if (!patch_type(mt, &pt)) {
            char msg[256];
            drv_fmt_cut(msg, sizeof(msg),
                        "unsupported Content-Type \"%.64s\" for a patch; use "
                        "application/merge-patch+json, application/strategic-merge-patch+json "
                        "or application/json-patch+json",
                        mt);
            *r = drv_api_reply_status(rq, 415, NULL, msg, NULL);
            return NULL;
        }
        list = pt == DRV_API_PATCH_JSON;
    } else if (!strcmp(mt, "application/vnd.kubernetes.protobuf")) {
        char why[512];
        cJSON *obj =
            drv_api_protobuf_decode(drv_buf_str(&rq->body), rq->body.len, why, sizeof(why));
        if (!obj) {
            char msg[600];
            drv_fmt_cut(msg, sizeof(msg), "request body: %s", why);
            *r = drv_api_reply_status(rq, 400, NULL, msg, NULL);
        }
        return obj;
    } else if (!strcmp(mt, "application/yaml") || !strcmp(mt, "application/x-yaml") ||
               !strcmp(mt, "text/yaml")) {
        yaml = true;
    } else if (*mt && strcmp(mt, "application/json")) {
        char msg[256];
        drv_fmt_cut(msg, sizeof(msg),
                    "unsupported Content-Type \"%.64s\"; use application/json or application/yaml",
                    mt);
        *r = drv_api_reply_status(rq, 415, NULL, msg, NULL);
        return NULL;
    }
    const char *body = drv_buf_str(&rq->body);
    size_t len = rq->body.len, i = 0;
    while (i < len && isspace((unsigned char)body[i]))
        i++;
    if (i == len) {
        *r = drv_api_reply_status(rq, 400, NULL, "request body is empty", NULL);
        return NULL;
    }
    if (!yaml && body[i] != (list ? '[' : '{')) {
        *r = drv_api_reply_status(
            rq, 400, NULL,
            list ? "request body is not a JSON Patch (a JSON array of operations)"
                 : "request body is not a JSON object",
            NULL);
        return NULL;
    }
    drv_doc_list_t docs = {0};
    if (!drv_api_body_docs(rq, &docs, r))
        return NULL;
    cJSON *obj = NULL;
    if (docs.count != 1 ||
        !(list ? cJSON_IsArray(docs.docs[0].root) : cJSON_IsObject(docs.docs[0].root))) {
        *r = drv_api_reply_status(rq, 400, NULL,
                                  docs.count != 1 ? "request body must hold exactly one object"
                                  : list          ? "request body is not an array"
                                                  : "request body is not an object",
                                  NULL);
    } else {
        obj = cJSON_Duplicate(docs.docs[0].root, true);
        if (!obj)
            *r = drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
    }
    drv_doc_list_free(&docs);
    return obj;
}

cJSON *drv_api_read_object(drv_api_req_t *rq, enum MHD_Result *r)
{
    return read_body(rq, false, r);
}

static const char *url_ns(const drv_api_match_t *m)
{
    return m->ns[0] ? m->ns : NULL;
}

static bool namespaced(drv_kind_t k)
{
    return k != DRV_KIND_NODE;
}

/* Makes a body agree with its URL: kind/apiVersion, metadata.namespace and (for item
 * routes) metadata.name are filled in when absent and must match when present. On a
 * mismatch the reply is queued and false returned. */
static bool check_identity(drv_api_req_t *rq, const drv_api_match_t *m, cJSON *obj, bool item,
                           enum MHD_Result *r)
{
    drv_kind_t k = m->route->kind;
    char msg[768];
    if (k == DRV_KIND_REPLICASET) {
        /* Its Deployment's controller writes every ReplicaSet; a change here would be undone. */
        *r = drv_api_reply_status(rq, 405, "MethodNotAllowed",
                                  "Drover runs ReplicaSets only as part of a Deployment; change "
                                  "the Deployment",
                                  NULL);
        return false;
    }
    if (k == DRV_KIND_CONTROLLERREVISION) {
        /* The DaemonSet controller keeps them; kubectl rollout undo patches the DaemonSet. */
        *r = drv_api_reply_status(rq, 405, "MethodNotAllowed",
                                  "Drover keeps ControllerRevisions as a DaemonSet's history; "
                                  "change the DaemonSet",
                                  NULL);
        return false;
    }
    const char *kind = drv_json_str(obj, "kind"), *av = drv_json_str(obj, "apiVersion");
    if (!cJSON_GetObjectItemCaseSensitive(obj, "kind"))
        cJSON_AddStringToObject(obj, "kind", drv_kind_name(k));
    if (!cJSON_GetObjectItemCaseSensitive(obj, "apiVersion"))
        cJSON_AddStringToObject(obj, "apiVersion", drv_kind_api_version(k));
    if (drv_model_kind(obj) != k) {
        drv_fmt_cut(msg, sizeof(msg),
                    "the body's kind \"%.64s\" (apiVersion \"%.64s\") does not match the resource "
                    "%s, which holds %s %s",
                    kind ? kind : "", av ? av : "", drv_kind_plural(k), drv_kind_api_version(k),
                    drv_kind_name(k));
        *r = drv_api_reply_status(rq, 400, NULL, msg, NULL);
        return false;
    }
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    if (!meta)
        meta = cJSON_AddObjectToObject(obj, "metadata");
    if (!cJSON_IsObject(meta)) {
        drv_diags_t d = {0};
        drv_diag_t one = {(char *)"metadata", (char *)"must be an object"};
        d.items = &one, d.count = 1;
        *r = drv_api_reply_status(rq, 422, "Invalid", "metadata: must be an object", &d);
        return false;
    }
    struct {
        const char *key, *want;
    } ids[2] = {{"namespace", namespaced(k) ? url_ns(m) : NULL}, {"name", item ? m->name : NULL}};
    for (int i = 0; i < 2; i++) {
        if (!ids[i].want)
            continue;
        cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, ids[i].key);
        if (!v || cJSON_IsNull(v)) {
            cJSON_DeleteItemFromObjectCaseSensitive(meta, ids[i].key);
            cJSON_AddStringToObject(meta, ids[i].key, ids[i].want);
        } else if (!cJSON_IsString(v) || strcmp(v->valuestring, ids[i].want)) {
            drv_fmt_cut(msg, sizeof(msg),
                        "metadata.%s \"%.253s\" does not match the %s in the URL \"%.253s\"",
                        ids[i].key, cJSON_IsString(v) ? v->valuestring : "?", ids[i].key,
                        ids[i].want);
            *r = drv_api_reply_status(rq, 400, NULL, msg, NULL);
            return false;
        }
    }
    /* Kubernetes labels every namespace with its name, whatever the body says. */
    const char *nsname = drv_json_str(meta, "name");
    cJSON *labels = cJSON_GetObjectItemCaseSensitive(meta, "labels");
    if (k == DRV_KIND_NAMESPACE && nsname &&
        (labels || (labels = cJSON_AddObjectToObject(meta, "labels"))) && cJSON_IsObject(labels)) {
        cJSON_DeleteItemFromObjectCaseSensitive(labels, DRV_HSTORE_NS_LABEL);
        cJSON_AddStringToObject(labels, DRV_HSTORE_NS_LABEL, nsname);
    }
    return true;
}

/* Removes the field at a validation path ("spec.template.spec.containers[0].foo") from obj;
 * false when the path does not lead to one. */
static bool remove_at(cJSON *obj, const char *path)
{
    cJSON *cur = obj;
    const char *p = path;
    for (;;) {
        size_t n = strcspn(p, ".[");
        char key[256];
        if (n == 0 || n >= sizeof(key))
            return false;
        memcpy(key, p, n);
        key[n] = '\0';
        p += n;
        if (!*p) /* the last segment: the field itself */
            return cJSON_IsObject(cur) && (cJSON_DeleteItemFromObjectCaseSensitive(cur, key), true);
        cur = cJSON_GetObjectItemCaseSensitive(cur, key);
        while (cur && *p == '[') {
            char *end = NULL;
            long i = strtol(p + 1, &end, 10);
            if (!cJSON_IsArray(cur) || end == p + 1 || *end != ']' || i < 0)
                return false;
            cur = cJSON_GetArrayItem(cur, (int)i);
            p = end + 1;
        }
        if (!cur || *p != '.')
            return false;
        p++;
    }
}

/* fieldValidation=Ignore or Warn (kubectl --validate=false|warn): a document whose only problems
 * are unknown fields is stored without them, as the apiserver drops them; Warn tells each in a
 * Warning header. Fields Kubernetes has but Drover does not run stay errors: dropping them
 * would run something other than what was asked. true when obj was replaced by the cleaned and
 * normalized copy of orig. */
static bool drop_unknown(drv_api_req_t *rq, cJSON *obj, const cJSON *orig, const drv_diags_t *d,
                         bool warn)
{
    for (size_t i = 0; i < d->count; i++)
        if (strcmp(d->items[i].msg, "unknown field") || !*d->items[i].path)
            return false;
    if (d->dropped)
        return false;
    _cleanup_cjson_ cJSON *copy = cJSON_Duplicate(orig, true);
    for (size_t i = 0; copy && i < d->count; i++)
        if (!remove_at(copy, d->items[i].path))
            return false;
    drv_diags_t d2 = {0};
    drv_err_t e = copy ? drv_model_normalize(copy, &d2) : DRV_ERR_NOMEM;
    drv_diags_free(&d2);
    if (e != DRV_OK)
        return false;
    while (obj->child) /* obj becomes copy: the caller holds obj */
        cJSON_Delete(cJSON_DetachItemViaPointer(obj, obj->child));
    while (copy->child) {
        cJSON *it = cJSON_DetachItemViaPointer(copy, copy->child);
        cJSON_AddItemToObject(obj, it->string, it); /* the key is copied before it is freed */
    }
    for (size_t i = 0; warn && i < d->count; i++) {
        size_t l = strlen(rq->warnings);
        drv_fmt_cut(rq->warnings + l, sizeof(rq->warnings) - l,
                    "%s299 - \"unknown field \\\"%.200s\\\"\"", l ? "\n" : "", d->items[i].path);
    }
    return true;
}

/* drv_model_normalize, with problems answered as 422 Invalid naming every field; the details
 * carry the kind and name too, which kubectl prints ("The Deployment "web" is invalid: ...").
 * The request's fieldValidation: Strict (the default) refuses unknown fields, Ignore and Warn
 * drop them (drop_unknown). */
static bool normalize(drv_api_req_t *rq, cJSON *obj, enum MHD_Result *r)
{
    drv_kind_t k = drv_model_kind(obj);
    const char *name = drv_json_str(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "name");
    char namebuf[256];
    drv_fmt_cut(namebuf, sizeof(namebuf), "%s", name ? name : "");
    const char *fv =
        MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "fieldValidation");
    bool ignore = fv && !strcmp(fv, "Ignore"), warn = fv && !strcmp(fv, "Warn");
    if (fv && *fv && !ignore && !warn && strcmp(fv, "Strict")) {
        char msg[160];
        drv_fmt_cut(msg, sizeof(msg),
                    "fieldValidation: unsupported value \"%.32s\": Strict, Warn or Ignore", fv);
        *r = drv_api_reply_status(rq, 400, NULL, msg, NULL);
        return false;
    }
    _cleanup_cjson_ cJSON *orig = ignore || warn ? cJSON_Duplicate(obj, true) : NULL;
    drv_diags_t d = {0};
    drv_err_t e = drv_model_normalize(obj, &d);
    if (e == DRV_ERR_INVALID && orig && drop_unknown(rq, obj, orig, &d, warn))
        e = DRV_OK;
    if (e == DRV_OK) {
        drv_diags_free(&d);
        return true;
    }
    if (e == DRV_ERR_NOMEM) {
        drv_diags_free(&d);
        *r = drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
        return false;
    }
    drv_buf_t msg = DRV_BUF_INIT(4096);
    bool ok = drv_buf_printf(&msg, "%s \"%s\" is invalid: ", drv_kind_name(k), namebuf) == DRV_OK;
    for (size_t i = 0; ok && i < d.count && i < 10; i++)
        ok = drv_buf_printf(&msg, "%s%s: %s", i ? "; " : "",
                            *d.items[i].path ? d.items[i].path : "(document)",
                            d.items[i].msg) == DRV_OK;
    if (ok && d.count > 10)
        ok = drv_buf_printf(&msg, "; and %zu more", d.count - 10 + d.dropped) == DRV_OK;
    _cleanup_cjson_ cJSON *st =
        ok ? drv_api_status_json(422, "Invalid", drv_buf_str(&msg), &d) : NULL;
    cJSON *det = st ? cJSON_GetObjectItemCaseSensitive(st, "details") : NULL;
    const char *av = drv_kind_api_version(k), *slash = strchr(av, '/');
    char group[64] = "";
    if (slash)
        drv_fmt_cut(group, sizeof(group), "%.*s", (int)(slash - av), av);
    if (det && cJSON_AddStringToObject(det, "name", namebuf) &&
        cJSON_AddStringToObject(det, "group", group) &&
        cJSON_AddStringToObject(det, "kind", drv_kind_name(k)))
        *r = drv_api_reply_json(rq, 422, st);
    else
        *r = drv_api_reply_status(rq, 422, "Invalid", drv_buf_str(&msg), &d);
    drv_buf_free(&msg);
    drv_diags_free(&d);
    return false;
}

static enum MHD_Result store_error(drv_api_req_t *rq, drv_kind_t k, const char *name, drv_err_t e,
                                   const drv_error_t *err)
{
    char msg[DRV_ERROR_MSG_MAX + 512];
    const char *plural = drv_kind_plural(k);
    switch (e) {
    case DRV_ERR_NOTFOUND:
        drv_fmt_cut(msg, sizeof(msg), "%s \"%.253s\" not found", plural, name);
        break;
    case DRV_ERR_EXISTS:
        drv_fmt_cut(msg, sizeof(msg), "%s \"%.253s\" already exists", plural, name);
        break;
    case DRV_ERR_CONFLICT:
        drv_fmt_cut(msg, sizeof(msg),
                    "Operation cannot be fulfilled on %s \"%.253s\": the object has been modified; "
                    "please apply your changes to the latest version and try again (%s)",
                    plural, name, drv_error_msg(err));
        break;
    default:
        drv_fmt_cut(msg, sizeof(msg), "%s", drv_error_msg(err));
        drv_log_error("store operation failed", "kind=%s code=%s", drv_kind_name(k),
                      drv_strerror(e));
        break;
    }
    return drv_api_reply_error(rq, e, msg);
}

static const char *arg(drv_api_req_t *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

static bool fieldsel_keep(const cJSON *obj, void *fs)
{
    return drv_api_fieldsel_matches(fs, obj);
}

static enum MHD_Result do_list(drv_api_req_t *rq, const drv_api_match_t *m)
{
    drv_kind_t k = m->route->kind;
    const char *ns = namespaced(k) ? url_ns(m) : NULL;
    drv_selector_t sel = {0};
    const char *ls = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "labelSelector");
    drv_error_t err = DRV_ERROR_INIT;
    if (ls && *ls && drv_selector_parse(ls, &sel, &err) != DRV_OK) {
        char msg[DRV_ERROR_MSG_MAX + 32];
        drv_fmt_cut(msg, sizeof(msg), "labelSelector: %s", drv_error_msg(&err));
        return drv_api_reply_status(rq, 400, NULL, msg, NULL);
    }
    drv_api_fieldsel_t fs;
    const char *fsq = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "fieldSelector");
    char why[256];
    if (!drv_api_fieldsel_parse(fsq, &fs, why, sizeof(why))) {
        drv_selector_free(&sel);
        char msg[300];
        drv_fmt_cut(msg, sizeof(msg), "fieldSelector: %s", why);
        return drv_api_reply_status(rq, 400, NULL, msg, NULL);
    }
    if (drv_api_wants_watch(rq->conn))
        return drv_api_watch_start(rq, k, ns, &sel, &fs); /* takes sel */
    _cleanup_cjson_ cJSON *items = NULL;
    uint64_t rv = 0;
    /* Pages in the store's order are read from the store a page at a time: a page of 500
     * out of 5,000 pods parses 500 of them, not all. */
    drv_api_pageq_t pq;
    char pwhy[300];
    if (!drv_api_page_query(arg(rq, "sortBy"), arg(rq, "limit"), arg(rq, "continue"), &pq, pwhy,
                            sizeof(pwhy))) {
        drv_selector_free(&sel);
        return drv_api_reply_status(rq, 400, NULL, pwhy, NULL);
    }
    size_t remaining = 0;
    drv_err_t e = pq.paged
                      ? drv_hstore_list_page(rq->api->store, k, ns, &sel,
                                             fs.n ? fieldsel_keep : NULL, &fs, pq.after_ns,
                                             pq.after_name, pq.limit, &items, &remaining, &rv, &err)
                      : drv_hstore_list(rq->api->store, k, ns, &sel, &items, &rv, &err);
    drv_selector_free(&sel);
    bool paged = pq.paged;
    drv_api_pageq_free(&pq);
    if (e != DRV_OK)
        return store_error(rq, k, "", e, &err);
    if (!paged)
        drv_api_fieldsel_filter(&fs, items);
    _cleanup_cjson_ cJSON *list = cJSON_CreateObject();
    char kindbuf[64], rvbuf[32];
    cJSON *meta = NULL;
    if (drv_fmt(kindbuf, sizeof(kindbuf), "%sList", drv_kind_name(k)) != DRV_OK ||
        drv_fmt(rvbuf, sizeof(rvbuf), "%llu", (unsigned long long)rv) != DRV_OK)
        return drv_api_reply_status(rq, 500, NULL, "list kind or resourceVersion too long", NULL);
    if (!list || !cJSON_AddStringToObject(list, "apiVersion", drv_kind_api_version(k)) ||
        !cJSON_AddStringToObject(list, "kind", kindbuf) ||
        !(meta = cJSON_AddObjectToObject(list, "metadata")) ||
        !cJSON_AddStringToObject(meta, "resourceVersion", rvbuf))
        return drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
    if (paged) {
        if (!drv_api_page_done(items, remaining, meta))
            return drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
    } else if (!drv_api_page(items, arg(rq, "sortBy"), arg(rq, "limit"), arg(rq, "continue"), meta,
                             pwhy, sizeof(pwhy))) {
        return drv_api_reply_status(rq, strstr(pwhy, "memory") ? 500 : 400, NULL, pwhy, NULL);
    }
    if (k == DRV_KIND_NODE)
        for (cJSON *it = items->child; it; it = it->next)
            drv_api_show_node(rq->api, it);
    char tv[16];
    bool only_table = false;
    if (drv_api_accepts_table(rq->conn, tv, sizeof(tv), &only_table) &&
        (only_table || drv_api_table_renders(drv_kind_name(k))))
        return drv_api_reply_table(rq, drv_kind_name(k), items, meta, tv);
    if (!cJSON_AddItemToObject(list, "items", items))
        return drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
    items = NULL;
    return drv_api_reply_json(rq, 200, list);
}

static enum MHD_Result do_get(drv_api_req_t *rq, const drv_api_match_t *m)
{
    drv_kind_t k = m->route->kind;
    _cleanup_cjson_ cJSON *obj = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t e = drv_hstore_get(rq->api->store, k, url_ns(m), m->name, &obj, &err);
    if (e != DRV_OK)
        return store_error(rq, k, m->name, e, &err);
    drv_api_show_node(rq->api, obj);
    char tv[16];
    bool only_table = false;
    if (m->route->op == DRV_API_OP_ITEM &&
        drv_api_accepts_table(rq->conn, tv, sizeof(tv), &only_table) &&
        (only_table || drv_api_table_renders(drv_kind_name(k)))) {
        _cleanup_cjson_ cJSON *one = cJSON_CreateArray();
        if (!one || !cJSON_AddItemReferenceToArray(one, obj))
            return drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
        return drv_api_reply_table(rq, drv_kind_name(k), one, NULL, tv);
    }
    return drv_api_reply_json(rq, 200, obj);
}

void drv_api_set_admit(drv_api_t *api, drv_api_admit_fn fn, void *ctx)
{
    api->admit = fn;
    api->admit_ctx = ctx;
}

bool drv_api_admit(drv_api_req_t *rq, drv_kind_t k, bool create, cJSON *obj, enum MHD_Result *r)
{
    if (!rq->api->admit)
        return true;
    char field[128] = "";
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t e = rq->api->admit(rq->api->admit_ctx, k, create, obj, field, sizeof(field), &err);
    if (e == DRV_OK)
        return true;
    const char *name = drv_json_str(drv_json_get(obj, "metadata"), "name");
    if (e != DRV_ERR_INVALID) {
        *r = store_error(rq, k, name ? name : "", e, &err);
        return false;
    }
    /* "spec.clusterIP: Invalid value: ...": the cause's message is what follows the field. */
    const char *msg = drv_error_msg(&err), *why = msg;
    size_t fl = strlen(field);
    if (fl && !strncmp(msg, field, fl) && !strncmp(msg + fl, ": ", 2))
        why = msg + fl + 2;
    drv_diag_t one = {field, (char *)why};
    drv_diags_t d = {.items = &one, .count = 1};
    char text[DRV_ERROR_MSG_MAX + 300];
    drv_fmt_cut(text, sizeof(text), "%s \"%.253s\" is invalid: %s", drv_kind_name(k),
                name ? name : "", msg);
    _cleanup_cjson_ cJSON *st = drv_api_status_json(422, "Invalid", text, &d);
    cJSON *det = st ? cJSON_GetObjectItemCaseSensitive(st, "details") : NULL;
    if (det && cJSON_AddStringToObject(det, "name", name ? name : "") &&
        cJSON_AddStringToObject(det, "kind", drv_kind_name(k)))
        *r = drv_api_reply_json(rq, 422, st);
    else
        *r = drv_api_reply_status(rq, 422, "Invalid", text, &d);
    return false;
}

static enum MHD_Result do_create(drv_api_req_t *rq, const drv_api_match_t *m)
{
    enum MHD_Result r = MHD_NO;
    drv_kind_t k = m->route->kind;
    _cleanup_cjson_ cJSON *obj = read_body(rq, false, &r);
    if (!obj || !check_identity(rq, m, obj, false, &r) || !normalize(rq, obj, &r) ||
        !drv_api_admit(rq, k, true, obj, &r))
        return r;
    const char *name = drv_json_str(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "name");
    char namebuf[256]; /* for messages only */
    drv_fmt_cut(namebuf, sizeof(namebuf), "%s", name ? name : "");
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t e = drv_hstore_create(rq->api->store, k, obj, &err);
    if (e == DRV_ERR_PERM) /* its namespace is being terminated */
        return drv_api_reply_status(rq, 403, "Forbidden", drv_error_msg(&err), NULL);
    if (e != DRV_OK)
        return store_error(rq, k, namebuf, e, &err);
    drv_api_changed(rq->api);
    return drv_api_reply_json(rq, 201, obj);
}

/* Stores obj (already normalized) as the new version of the object at the URL. */
/* A StatefulSet's or a Pod's spec may change only where Kubernetes lets it; false with the 422
 * queued. */
static bool spec_update_ok(drv_api_req_t *rq, const drv_api_match_t *m, const cJSON *obj,
                           enum MHD_Result *r)
{
    drv_kind_t k = m->route->kind;
    _cleanup_cjson_ cJSON *cur = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    char why[400], msg[800];
    if (drv_hstore_get(rq->api->store, k, url_ns(m), m->name, &cur, &err) != DRV_OK ||
        (k == DRV_KIND_STATEFULSET ? drv_model_statefulset_update_ok(cur, obj, why, sizeof(why))
         : k == DRV_KIND_JOB       ? drv_model_job_update_ok(cur, obj, why, sizeof(why))
                                   : drv_model_pod_update_ok(cur, obj, why, sizeof(why))))
        return true; /* a missing one: the update says so */
    const char *kind = k == DRV_KIND_STATEFULSET ? "StatefulSet"
                       : k == DRV_KIND_JOB       ? "Job"
                                                 : "Pod";
    if (k == DRV_KIND_JOB)
        drv_fmt_cut(msg, sizeof(msg), "Job.batch \"%.253s\" is invalid: %s", m->name, why);
    else
        drv_fmt_cut(msg, sizeof(msg), "%s \"%.253s\" is invalid: spec: Forbidden: %s", kind,
                    m->name, why);
    drv_diag_t one = {(char *)"spec", why};
    drv_diags_t d = {.items = &one, .count = 1};
    /* details name the object, so kubectl says "The StatefulSet "web" is invalid". */
    _cleanup_cjson_ cJSON *st = drv_api_status_json(422, "Invalid", msg, &d);
    cJSON *det = st ? cJSON_GetObjectItemCaseSensitive(st, "details") : NULL;
    if (det && cJSON_AddStringToObject(det, "name", m->name) &&
        cJSON_AddStringToObject(det, "group",
                                k == DRV_KIND_STATEFULSET ? "apps"
                                : k == DRV_KIND_JOB       ? "batch"
                                                          : "") &&
        cJSON_AddStringToObject(det, "kind", kind))
        *r = drv_api_reply_json(rq, 422, st);
    else
        *r = drv_api_reply_status(rq, 422, "Invalid", msg, &d);
    return false;
}

static enum MHD_Result finish_update(drv_api_req_t *rq, const drv_api_match_t *m, cJSON *obj)
{
    drv_kind_t k = m->route->kind;
    drv_error_t err = DRV_ERROR_INIT;
    enum MHD_Result ar = MHD_NO;
    if ((k == DRV_KIND_STATEFULSET || k == DRV_KIND_POD || k == DRV_KIND_JOB) &&
        !spec_update_ok(rq, m, obj, &ar))
        return ar;
    if (!drv_api_admit(rq, k, false, obj, &ar))
        return ar;
    char rv[32] = ""; /* a dry run answers with the stored object's, as the apiserver does */
    drv_fmt_cut(rv, sizeof(rv), "%s",
                drv_json_str_or(drv_json_get(obj, "metadata"), "resourceVersion", ""));
    drv_err_t e = drv_hstore_update(rq->api->store, k, obj, &err);
    if (e != DRV_OK)
        return store_error(rq, k, m->name, e, &err);
    if (rq->dry && *rv)
        cJSON_ReplaceItemInObjectCaseSensitive(drv_json_get(obj, "metadata"), "resourceVersion",
                                               cJSON_CreateString(rv));
    drv_api_changed(rq->api);
    return drv_api_reply_json(rq, 200, obj);
}

/* A Service whose type changes loses the defaults the old type got (externalTrafficPolicy,
 * nodePorts, ...) unless the request set them, as the apiserver's update strategy does: else
 * `kubectl apply` turning a NodePort Service into a ClusterIP one would be refused for fields
 * the user never wrote. */
static void service_type_change(drv_api_req_t *rq, const drv_api_match_t *m, cJSON *obj)
{
    if (m->route->kind == DRV_KIND_PVC) { /* a bound claim stays bound (model.h) */
        _cleanup_cjson_ cJSON *cur = NULL;
        if (drv_hstore_get(rq->api->store, DRV_KIND_PVC, url_ns(m), m->name, &cur, NULL) == DRV_OK)
            drv_model_pvc_keep_binding(cur, obj);
        return;
    }
    if (m->route->kind != DRV_KIND_SERVICE)
        return;
    _cleanup_cjson_ cJSON *cur = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_get(rq->api->store, DRV_KIND_SERVICE, url_ns(m), m->name, &cur, &err) == DRV_OK)
        drv_model_service_drop_type_fields(cur, obj);
}

static enum MHD_Result do_update(drv_api_req_t *rq, const drv_api_match_t *m)
{
    enum MHD_Result r = MHD_NO;
    _cleanup_cjson_ cJSON *obj = read_body(rq, false, &r);
    if (obj)
        service_type_change(rq, m, obj);
    if (!obj || !check_identity(rq, m, obj, true, &r) || !normalize(rq, obj, &r))
        return r;
    return finish_update(rq, m, obj);
}

/* Applies the request's patch (its body, merge, strategic merge or JSON Patch by Content-Type)
 * to *cur, whose patch metadata root is root_type; false with the reply queued (*cur is then
 * as it was). A malformed patch is a 400, one that cannot apply to this object a 422 (as the
 * apiserver answers a failed JSON Patch test). */
static bool apply_patch(drv_api_req_t *rq, const char *root_type, cJSON **cur, enum MHD_Result *r)
{
    _cleanup_cjson_ cJSON *patch = read_body(rq, true, r);
    if (!patch)
        return false;
    char mt[128];
    drv_api_media_type(rq, mt, sizeof(mt));
    drv_api_patch_type_t pt = DRV_API_PATCH_MERGE;
    (void)patch_type(mt, &pt); /* read_body refused the others */
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t e = drv_api_patch_apply(pt, root_type, cur, patch, &err);
    switch (e) {
    case DRV_OK:
        return true;
    case DRV_ERR_PROTO:
        *r = drv_api_reply_status(rq, 400, "BadRequest", drv_error_msg(&err), NULL);
        break;
    case DRV_ERR_INVALID:
        *r = drv_api_reply_status(rq, 422, "Invalid", drv_error_msg(&err), NULL);
        break;
    case DRV_ERR_TOOBIG:
        *r = drv_api_reply_status(rq, 413, "RequestEntityTooLarge", drv_error_msg(&err), NULL);
        break;
    default:
        *r = drv_api_reply_status(rq, 500, NULL, drv_error_msg(&err), NULL);
    }
    return false;
}

/* The stored object with the request's patch applied; NULL with the reply queued. */
static cJSON *patched(drv_api_req_t *rq, const drv_api_match_t *m, enum MHD_Result *r)
{
    drv_kind_t k = m->route->kind;
    cJSON *cur = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t e = drv_hstore_get(rq->api->store, k, url_ns(m), m->name, &cur, &err);
    if (e != DRV_OK) {
        *r = store_error(rq, k, m->name, e, &err);
        return NULL;
    }
    if (apply_patch(rq, drv_api_patch_root(k), &cur, r))
        return cur;
    cJSON_Delete(cur);
    return NULL;
}

static enum MHD_Result do_patch(drv_api_req_t *rq, const drv_api_match_t *m)
{
    enum MHD_Result r = MHD_NO;
    _cleanup_cjson_ cJSON *obj = patched(rq, m, &r);
    if (obj)
        service_type_change(rq, m, obj);
    if (!obj || !check_identity(rq, m, obj, true, &r) || !normalize(rq, obj, &r))
        return r;
    return finish_update(rq, m, obj);
}

static enum MHD_Result do_delete(drv_api_req_t *rq, const drv_api_match_t *m)
{
    drv_kind_t k = m->route->kind;
    _cleanup_cjson_ cJSON *old = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t e;
    if (k == DRV_KIND_NAMESPACE) /* with everything in it */
        e = drv_ctrl_namespace_delete(rq->api->store, m->name, &old, &err);
    else if (k == DRV_KIND_PVC) /* kept while a pod uses it */
        e = drv_ctrl_pvc_delete(rq->api->store, url_ns(m), m->name, (int64_t)drv_wall_ms(), &old,
                                &err);
    else if (k == DRV_KIND_PRIORITYCLASS && drv_priority_class_builtin(m->name) >= 0)
        e = drv_error_set(&err, DRV_ERR_PERM, 0,
                          "priorityclasses.scheduling.k8s.io \"%s\" is forbidden: this is a "
                          "system priority class and cannot be deleted",
                          m->name);
    else
        e = drv_hstore_delete(rq->api->store, k, url_ns(m), m->name, &old, &err);
    if (e != DRV_OK && k == DRV_KIND_NAMESPACE)
        drv_api_changed(rq->api); /* what it deleted before it stopped */
    if (e == DRV_ERR_PERM)
        return drv_api_reply_status(rq, 403, "Forbidden", drv_error_msg(&err), NULL);
    if (e != DRV_OK)
        return store_error(rq, k, m->name, e, &err);
    drv_api_changed(rq->api);
    if (!old) { /* the stored row was unreadable; it is gone now */
        char *ok = strdup("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                          "\"status\":\"Success\",\"code\":200}");
        return ok ? drv_api_reply_text(rq, 200, "application/json", ok, strlen(ok)) : MHD_NO;
    }
    return drv_api_reply_json(rq, 200, old);
}

/* Replaces the status of the object at the URL with obj's status; obj is the whole object
 * as the client sent it (PUT) or as patched (PATCH). */
static enum MHD_Result finish_status(drv_api_req_t *rq, const drv_api_match_t *m, cJSON *obj)
{
    drv_kind_t k = m->route->kind;
    enum MHD_Result r = MHD_NO;
    if (!check_identity(rq, m, obj, true, &r))
        return r;
    cJSON *st = cJSON_GetObjectItemCaseSensitive(obj, "status");
    if (!cJSON_IsObject(st)) {
        drv_diags_t d = {0};
        drv_diag_t one = {(char *)"status", (char *)"required (an object)"};
        d.items = &one, d.count = 1;
        return drv_api_reply_status(rq, 422, "Invalid", "status: required (an object)", &d);
    }
    drv_error_t err = DRV_ERROR_INIT;
    _cleanup_cjson_ cJSON *cur = NULL;
    drv_err_t e = drv_hstore_get(rq->api->store, k, url_ns(m), m->name, &cur, &err);
    if (e != DRV_OK)
        return store_error(rq, k, m->name, e, &err);
    const char *want =
        drv_json_str(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "resourceVersion");
    const char *have =
        drv_json_str(cJSON_GetObjectItemCaseSensitive(cur, "metadata"), "resourceVersion");
    if (want && have && strcmp(want, have)) {
        drv_error_set(&err, DRV_ERR_CONFLICT, 0, "resourceVersion %.32s is not the current %.32s",
                      want, have);
        return store_error(rq, k, m->name, DRV_ERR_CONFLICT, &err);
    }
    cJSON_DetachItemViaPointer(obj, st);
    e = drv_hstore_update_status(rq->api->store, k, url_ns(m), m->name, st, NULL, &err);
    if (e != DRV_OK)
        return store_error(rq, k, m->name, e, &err);
    drv_api_changed(rq->api);
    cJSON_Delete(cur);
    cur = NULL;
    e = drv_hstore_get(rq->api->store, k, url_ns(m), m->name, &cur, &err);
    if (e != DRV_OK)
        return store_error(rq, k, m->name, e, &err);
    /* Over what an agent reported: its node is asked for a full report, as a kubelet's
     * status sync would put its own view back. */
    const char *node = k == DRV_KIND_NODE ? m->name
                       : k == DRV_KIND_POD
                           ? drv_json_str(cJSON_GetObjectItemCaseSensitive(cur, "spec"), "nodeName")
                           : NULL;
    if (node && *node && rq->api->status_written)
        rq->api->status_written(rq->api->status_written_ctx, node);
    return drv_api_reply_json(rq, 200, cur);
}

/* ---- deployments/{name}/scale (autoscaling/v1 Scale) ---- */

/* The Scale of a Deployment: its replicas wanted and running and its selector as a string. */
static cJSON *scale_of(const cJSON *dep)
{
    const cJSON *meta = drv_json_get(dep, "metadata"), *spec = drv_json_get(dep, "spec");
    char selstr[2048] = "";
    drv_selector_t sel = {0};
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_selector_from_json(drv_json_get(spec, "selector"), &sel, &err) == DRV_OK &&
        drv_selector_format(&sel, selstr, sizeof(selstr)) != DRV_OK)
        selstr[0] = '\0';
    drv_selector_free(&sel);
    cJSON *o = cJSON_CreateObject(), *m = NULL, *sp = NULL, *st = NULL;
    static const char *const keep[] = {"name", "namespace", "uid", "resourceVersion",
                                       "creationTimestamp"};
    bool ok =
        o && cJSON_AddStringToObject(o, "kind", "Scale") &&
        cJSON_AddStringToObject(o, "apiVersion", "autoscaling/v1") &&
        (m = cJSON_AddObjectToObject(o, "metadata")) && (sp = cJSON_AddObjectToObject(o, "spec")) &&
        cJSON_AddNumberToObject(sp, "replicas", (double)drv_json_int_or(spec, "replicas", 1)) &&
        (st = cJSON_AddObjectToObject(o, "status")) &&
        cJSON_AddNumberToObject(
            st, "replicas", (double)drv_json_int_or(drv_json_get(dep, "status"), "replicas", 0)) &&
        cJSON_AddStringToObject(st, "selector", selstr);
    for (size_t i = 0; ok && i < sizeof(keep) / sizeof(keep[0]); i++) {
        const char *v = drv_json_str(meta, keep[i]);
        ok = !v || cJSON_AddStringToObject(m, keep[i], v);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* GET, PUT and PATCH of a Deployment's scale: what kubectl scale and autoscalers use. */
static enum MHD_Result do_scale(drv_api_req_t *rq, const drv_api_match_t *m, unsigned bit)
{
    drv_kind_t k = m->route->kind;
    enum MHD_Result r = MHD_NO;
    drv_error_t err = DRV_ERROR_INIT;
    _cleanup_cjson_ cJSON *dep = NULL;
    drv_err_t e = drv_hstore_get(rq->api->store, k, url_ns(m), m->name, &dep, &err);
    if (e != DRV_OK)
        return store_error(rq, k, m->name, e, &err);
    _cleanup_cjson_ cJSON *scale = scale_of(dep);
    if (!scale)
        return drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
    if (bit == DRV_API_M_GET)
        return drv_api_reply_json(rq, 200, scale);
    if (bit == DRV_API_M_PATCH) {
        if (!apply_patch(rq, NULL, &scale, &r)) /* a Scale has no lists to merge by key */
            return r;
    } else {
        cJSON *body = read_body(rq, false, &r);
        if (!body)
            return r;
        cJSON_Delete(scale);
        scale = body;
    }
    const cJSON *smeta = drv_json_get(scale, "metadata");
    const char *name = drv_json_str(smeta, "name");
    if (name && strcmp(name, m->name)) {
        char msg[600];
        drv_fmt_cut(msg, sizeof(msg),
                    "metadata.name \"%.253s\" does not match the name in the URL \"%.253s\"", name,
                    m->name);
        return drv_api_reply_status(rq, 400, NULL, msg, NULL);
    }
    const cJSON *rep = drv_json_get(drv_json_get(scale, "spec"), "replicas");
    int64_t n = 0;
    if (!cJSON_IsNumber(rep) || !drv_json_to_int(rep->valuedouble, 0, INT32_MAX, &n)) {
        drv_diags_t d = {0};
        drv_diag_t one = {(char *)"spec.replicas",
                          (char *)"must be a whole number from 0 to 2147483647"};
        d.items = &one, d.count = 1;
        return drv_api_reply_status(
            rq, 422, "Invalid",
            "Scale is invalid: spec.replicas: must be a whole number from 0 to 2147483647", &d);
    }
    /* A resourceVersion in the Scale is the Deployment's: a stale one is a conflict. */
    const char *rv = drv_json_str(smeta, "resourceVersion");
    cJSON *dmeta = drv_json_get(dep, "metadata");
    if (rv && *rv &&
        !cJSON_ReplaceItemInObjectCaseSensitive(dmeta, "resourceVersion", cJSON_CreateString(rv)))
        return drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
    cJSON *dspec = drv_json_get(dep, "spec");
    if (!cJSON_ReplaceItemInObjectCaseSensitive(dspec, "replicas", cJSON_CreateNumber((double)n)) &&
        !cJSON_AddNumberToObject(dspec, "replicas", (double)n))
        return drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
    if (!normalize(rq, dep, &r))
        return r;
    e = drv_hstore_update(rq->api->store, k, dep, &err);
    if (e != DRV_OK)
        return store_error(rq, k, m->name, e, &err);
    if (!rq->dry)
        drv_api_changed(rq->api);
    cJSON_Delete(scale);
    scale = scale_of(dep);
    return scale ? drv_api_reply_json(rq, 200, scale)
                 : drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
}

/* ---- dryRun and DeleteOptions ---- */

/* dryRun=All (the only value Kubernetes defines) marks the request; false with the reply queued
 * on another value. */
static bool dry_run_arg(drv_api_req_t *rq, const char *v, enum MHD_Result *r)
{
    if (!v || !*v)
        return true;
    if (!strcmp(v, "All")) {
        rq->dry = true;
        return true;
    }
    char msg[160];
    drv_fmt_cut(msg, sizeof(msg), "dryRun: unsupported value \"%.64s\": only \"All\"", v);
    *r = drv_api_reply_status(rq, 400, NULL, msg, NULL);
    return false;
}

/* The DeleteOptions of a DELETE, from its body (kubectl sends one) and its query: dryRun,
 * propagationPolicy (Background and Foreground end the same way here: the workload's pods are
 * deleted right after it; Orphan cannot be honoured for the kinds that own pods, and is
 * refused), and preconditions checked against the stored object. false with the reply queued. */
static bool delete_options(drv_api_req_t *rq, const drv_api_match_t *m, enum MHD_Result *r)
{
    drv_kind_t k = m->route->kind;
    _cleanup_cjson_ cJSON *opts = NULL;
    const char *b = drv_buf_str(&rq->body);
    size_t i = 0;
    while (i < rq->body.len && strchr(" \t\r\n", b[i]))
        i++;
    if (i < rq->body.len) {
        drv_doc_list_t docs = {0};
        if (!drv_api_body_docs(rq, &docs, r))
            return false;
        if (docs.count == 1 && cJSON_IsObject(docs.docs[0].root))
            opts = cJSON_Duplicate(docs.docs[0].root, true);
        drv_doc_list_free(&docs);
        if (!opts) {
            *r = drv_api_reply_status(rq, 400, NULL, "request body: not a DeleteOptions object",
                                      NULL);
            return false;
        }
    }
    const cJSON *dry = drv_json_get(opts, "dryRun");
    if (cJSON_IsArray(dry) && dry->child) {
        if (!cJSON_IsString(dry->child) || dry->child->next)
            return dry_run_arg(rq, "(not one string)", r);
        if (!dry_run_arg(rq, dry->child->valuestring, r))
            return false;
    }
    const char *pp = drv_json_str(opts, "propagationPolicy");
    if (!pp)
        pp = arg(rq, "propagationPolicy");
    bool orphan = drv_json_true(opts, "orphanDependents");
    if (pp && *pp && strcmp(pp, "Background") && strcmp(pp, "Foreground") && strcmp(pp, "Orphan")) {
        char msg[200];
        drv_fmt_cut(msg, sizeof(msg),
                    "propagationPolicy: unsupported value \"%.64s\": Background, Foreground or "
                    "Orphan",
                    pp);
        *r = drv_api_reply_status(rq, 400, NULL, msg, NULL);
        return false;
    }
    if ((orphan || (pp && !strcmp(pp, "Orphan"))) &&
        (k == DRV_KIND_DEPLOYMENT || k == DRV_KIND_DAEMONSET || k == DRV_KIND_JOB ||
         k == DRV_KIND_CRONJOB || k == DRV_KIND_STATEFULSET)) {
        *r = drv_api_reply_status(rq, 422, "Invalid",
                                  "propagationPolicy Orphan is not supported by Drover: a "
                                  "workload's pods are deleted with it; delete with Background "
                                  "or Foreground (kubectl's default)",
                                  NULL);
        return false;
    }
    const cJSON *pre = drv_json_get(opts, "preconditions");
    const char *puid = drv_json_str(pre, "uid"), *prv = drv_json_str(pre, "resourceVersion");
    if ((puid && *puid) || (prv && *prv)) {
        _cleanup_cjson_ cJSON *cur = NULL;
        drv_error_t err = DRV_ERROR_INIT;
        drv_err_t e = drv_hstore_get(rq->api->store, k, url_ns(m), m->name, &cur, &err);
        if (e != DRV_OK) {
            *r = store_error(rq, k, m->name, e, &err);
            return false;
        }
        const cJSON *meta = drv_json_get(cur, "metadata");
        const char *uid = drv_json_str_or(meta, "uid", ""),
                   *rv = drv_json_str_or(meta, "resourceVersion", "");
        if ((puid && *puid && strcmp(puid, uid)) || (prv && *prv && strcmp(prv, rv))) {
            char msg[400];
            drv_fmt_cut(msg, sizeof(msg),
                        "Precondition failed: %s in precondition: %.64s, %s in object meta: %.64s",
                        puid && *puid && strcmp(puid, uid) ? "UID" : "ResourceVersion",
                        puid && *puid && strcmp(puid, uid) ? puid : prv,
                        puid && *puid && strcmp(puid, uid) ? "UID" : "ResourceVersion",
                        puid && *puid && strcmp(puid, uid) ? uid : rv);
            *r = drv_api_reply_status(rq, 409, "Conflict", msg, NULL);
            return false;
        }
    }
    return true;
}

static enum MHD_Result dispatch(drv_api_req_t *rq, const drv_api_match_t *m, unsigned bit);

enum MHD_Result drv_api_handle(drv_api_req_t *rq, const drv_api_match_t *m)
{
    unsigned bit = 0;
    if (!strcmp(rq->method, "GET") || !strcmp(rq->method, "HEAD"))
        bit = DRV_API_M_GET;
    else if (!strcmp(rq->method, "POST"))
        bit = DRV_API_M_POST;
    else if (!strcmp(rq->method, "PUT"))
        bit = DRV_API_M_PUT;
    else if (!strcmp(rq->method, "PATCH"))
        bit = DRV_API_M_PATCH;
    else if (!strcmp(rq->method, "DELETE"))
        bit = DRV_API_M_DELETE;
    drv_api_op_t op = m->route->op;
    bool store_write =
        bit != DRV_API_M_GET && (op == DRV_API_OP_COLLECTION || op == DRV_API_OP_ITEM ||
                                 op == DRV_API_OP_STATUS || op == DRV_API_OP_SCALE);
    if (!store_write)
        return dispatch(rq, m, bit);
    enum MHD_Result r = MHD_NO;
    if (!dry_run_arg(rq, arg(rq, "dryRun"), &r) ||
        (bit == DRV_API_M_DELETE && !delete_options(rq, m, &r)))
        return r;
    /* A dry run goes through every check and write of the real one, then the store rolls it
     * back: what comes back is what would have been stored. */
    drv_hstore_set_dry_run(rq->api->store, rq->dry);
    r = dispatch(rq, m, bit);
    drv_hstore_set_dry_run(rq->api->store, false);
    return r;
}

static enum MHD_Result dispatch(drv_api_req_t *rq, const drv_api_match_t *m, unsigned bit)
{
    enum MHD_Result r = MHD_NO;
    switch (m->route->op) {
    case DRV_API_OP_SCALE:
        return do_scale(rq, m, bit);
    case DRV_API_OP_HEALTHZ: {
        char *ok = strdup("ok");
        if (!ok)
            return MHD_NO;
        return drv_api_reply_text(rq, 200, "text/plain; charset=utf-8", ok, 2);
    }
    case DRV_API_OP_METRICS:
        return drv_api_metrics(rq);
    case DRV_API_OP_LOG:
        return drv_api_log_start(rq, m);
    case DRV_API_OP_USAGE:
        return drv_api_usage(rq, m);
    case DRV_API_OP_DISCOVERY:
        return drv_api_discovery(rq, m);
    case DRV_API_OP_OPENAPI:
        return drv_api_openapi(rq, m);
    case DRV_API_OP_TOKENS:
    case DRV_API_OP_TOKEN:
        return drv_api_tokens(rq, m);
    case DRV_API_OP_SESSION:
        return drv_api_session(rq, m);
    case DRV_API_OP_WATCH_ALL:
        return drv_api_watch_all(rq);
    case DRV_API_OP_APPLY:
        return drv_api_apply(rq);
    case DRV_API_OP_REVIEW:
        return drv_api_review(rq, m);
    case DRV_API_OP_ENROLL:
    case DRV_API_OP_ENROLL_RENEW:
    case DRV_API_OP_NODE_REVOKE:
    case DRV_API_OP_IDENTITIES:
    case DRV_API_OP_IDENTITY:
        return drv_api_enroll(rq, m);
    case DRV_API_OP_COLLECTION:
        return bit == DRV_API_M_POST ? do_create(rq, m) : do_list(rq, m);
    case DRV_API_OP_ITEM:
        switch (bit) {
        case DRV_API_M_PUT:
            return do_update(rq, m);
        case DRV_API_M_PATCH:
            return do_patch(rq, m);
        case DRV_API_M_DELETE:
            return do_delete(rq, m);
        default:
            return do_get(rq, m);
        }
    case DRV_API_OP_STATUS:
        if (bit == DRV_API_M_GET)
            return do_get(rq, m);
        if (bit == DRV_API_M_PUT) {
            _cleanup_cjson_ cJSON *obj = read_body(rq, false, &r);
            return obj ? finish_status(rq, m, obj) : r;
        } else {
            _cleanup_cjson_ cJSON *obj = patched(rq, m, &r);
            return obj ? finish_status(rq, m, obj) : r;
        }
    }
    return drv_api_reply_status(rq, 500, NULL, "unhandled route", NULL);
}
