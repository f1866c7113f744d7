/* The OpenAPI documents kubectl reads to validate (it asks the server to, when the PATCH
 * operations list ?fieldValidation), explain and compute strategic merge patches: GET
 * /openapi/v3 (the index), /openapi/v3/<group version> (OpenAPI 3.0, as Kubernetes writes
 * them) and /openapi/v2 (Swagger 2.0 without definitions: kubectl 1.27 and 1.28 must download
 * one before they look at v3). Built once from openapi_types.c and patchmeta.c. */
#include <ctype.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/api_int.h"
#include "api/openapi.h"
#include "api/patchmeta.h"
#include "drover/cleanup.h"
#include "drover/digest.h"
#include "drover/fmt.h"

#define SCHEMAS "#/components/schemas/"
#define META "io.k8s.apimachinery.pkg.apis.meta.v1."
#define SCALE "io.k8s.api.autoscaling.v1.Scale"
#define V2_PROTOBUF "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
#define API_VERSION "v1.30.0+drover" /* what /version says */

/* ---- schemas ---- */

static bool is_prim(const char *type)
{
    return !strchr(type, '.');
}

/* {"type": ...} for a primitive field type. */
static cJSON *prim_schema(const char *type)
{
    cJSON *s = cJSON_CreateObject();
    bool ok = s != NULL;
    if (ok && !strcmp(type, "int32"))
        ok = cJSON_AddStringToObject(s, "type", "integer") &&
             cJSON_AddStringToObject(s, "format", "int32");
    else if (ok && !strcmp(type, "integer"))
        ok = cJSON_AddStringToObject(s, "type", "integer") &&
             cJSON_AddStringToObject(s, "format", "int64");
    else if (ok && !strcmp(type, "number"))
        ok = cJSON_AddStringToObject(s, "type", "number") &&
             cJSON_AddStringToObject(s, "format", "double");
    else if (ok && !strcmp(type, "object"))
        ok = cJSON_AddStringToObject(s, "type", "object") &&
             cJSON_AddBoolToObject(s, "x-kubernetes-preserve-unknown-fields", true);
    else if (ok)
        ok = cJSON_AddStringToObject(s, "type", type);
    if (!ok) {
        cJSON_Delete(s);
        return NULL;
    }
    return s;
}

/* {"allOf": [{"$ref": "#/components/schemas/<type>"}]}: Kubernetes' v3 form, which lets a
 * description stand beside the reference. */
static cJSON *ref_schema(const char *type)
{
    char ref[160];
    if (drv_fmt(ref, sizeof(ref), SCHEMAS "%s", type) != DRV_OK)
        return NULL;
    cJSON *s = cJSON_CreateObject(), *all = NULL, *r = NULL;
    if (!s || !(all = cJSON_AddArrayToObject(s, "allOf")) || !(r = cJSON_CreateObject()) ||
        !cJSON_AddItemToArray(all, r) || !cJSON_AddStringToObject(r, "$ref", ref)) {
        cJSON_Delete(r && !cJSON_GetArraySize(all) ? r : NULL);
        cJSON_Delete(s);
        return NULL;
    }
    return s;
}

static cJSON *value_schema(const char *type)
{
    return is_prim(type) ? prim_schema(type) : ref_schema(type);
}

static cJSON *field_schema(const char *parent, const drv_oa_field_t *f)
{
    cJSON *s = NULL;
    if (f->flags & (DRV_OA_LIST | DRV_OA_MAP)) {
        cJSON *v = value_schema(f->type);
        s = cJSON_CreateObject();
        if (!v || !s ||
            !cJSON_AddStringToObject(s, "type", f->flags & DRV_OA_LIST ? "array" : "object") ||
            !cJSON_AddItemToObject(s, f->flags & DRV_OA_LIST ? "items" : "additionalProperties",
                                   v)) {
            cJSON_Delete(v);
            cJSON_Delete(s);
            return NULL;
        }
    } else if (!(s = value_schema(f->type))) {
        return NULL;
    }
    bool ok = cJSON_AddStringToObject(s, "description", f->desc) != NULL;
    drv_api_patch_meta_t pm;
    if (ok && drv_api_patch_meta(parent, f->name, &pm)) {
        const char *strategy = pm.merge && pm.retain_keys ? "merge,retainKeys"
                               : pm.merge                 ? "merge"
                               : pm.retain_keys           ? "retainKeys"
                                                          : NULL;
        if (strategy)
            ok = cJSON_AddStringToObject(s, "x-kubernetes-patch-strategy", strategy) != NULL;
        if (ok && pm.merge_key)
            ok = cJSON_AddStringToObject(s, "x-kubernetes-patch-merge-key", pm.merge_key) != NULL;
    }
    if (!ok) {
        cJSON_Delete(s);
        return NULL;
    }
    return s;
}

/* [{"group": g, "kind": k, "version": v}] (or the object alone when one is false). */
static cJSON *gvk_ext(const char *g, const char *v, const char *k, bool list)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "group", g) || !cJSON_AddStringToObject(o, "kind", k) ||
        !cJSON_AddStringToObject(o, "version", v)) {
        cJSON_Delete(o);
        return NULL;
    }
    if (!list)
        return o;
    cJSON *a = cJSON_CreateArray();
    if (!a || !cJSON_AddItemToArray(a, o)) {
        cJSON_Delete(o);
        cJSON_Delete(a);
        return NULL;
    }
    return a;
}

/* The GVK a type is the root of, NULL when none. */
static const drv_oa_kind_t *kind_of_type(const char *type)
{
    for (const drv_oa_kind_t *k = drv_oa_kinds; k->doc; k++)
        if (!strcmp(k->type, type))
            return k;
    return NULL;
}

static cJSON *type_schema(const drv_oa_type_t *t)
{
    cJSON *s = cJSON_CreateObject();
    if (!s || !cJSON_AddStringToObject(s, "description", t->desc))
        goto fail;
    if (t->prim) {
        if (!cJSON_AddStringToObject(s, "type", t->prim) ||
            (t->format && !cJSON_AddStringToObject(s, "format", t->format)))
            goto fail;
        if (t->format && !strcmp(t->format, "int-or-string") &&
            !cJSON_AddBoolToObject(s, "x-kubernetes-int-or-string", true))
            goto fail;
        if (!strcmp(t->prim, "object") &&
            !cJSON_AddBoolToObject(s, "x-kubernetes-preserve-unknown-fields", true))
            goto fail;
        return s;
    }
    cJSON *props = NULL, *req = NULL;
    if (!cJSON_AddStringToObject(s, "type", "object") ||
        !(props = cJSON_AddObjectToObject(s, "properties")))
        goto fail;
    for (const drv_oa_field_t *f = t->fields; f->name; f++) {
        cJSON *fs = field_schema(t->name, f);
        if (!fs || !cJSON_AddItemToObject(props, f->name, fs)) {
            cJSON_Delete(fs);
            goto fail;
        }
        if (f->flags & DRV_OA_REQUIRED) {
            if (!req && !(req = cJSON_AddArrayToObject(s, "required")))
                goto fail;
            if (!cJSON_AddItemToArray(req, cJSON_CreateString(f->name)))
                goto fail;
        }
    }
    /* the scale subresource's objects are a kind of their own, served by no collection */
    static const drv_oa_kind_t scale = {.group = "autoscaling", .version = "v1", .kind = "Scale"};
    const drv_oa_kind_t *k = kind_of_type(t->name);
    if (!k && !strcmp(t->name, SCALE))
        k = &scale;
    cJSON *ext = k ? gvk_ext(k->group, k->version, k->kind, true) : NULL;
    if (k && (!ext || !cJSON_AddItemToObject(s, "x-kubernetes-group-version-kind", ext))) {
        cJSON_Delete(ext);
        goto fail;
    }
    return s;
fail:
    cJSON_Delete(s);
    return NULL;
}

/* A kind's list type ("io.k8s.api.core.v1.PodList"). */
static cJSON *list_schema(const drv_oa_kind_t *k, const char *name)
{
    char kind[96];
    if (drv_fmt(kind, sizeof(kind), "%sList", k->kind) != DRV_OK)
        return NULL;
    const drv_oa_field_t f[] = {
        {"apiVersion", "string", 0, "The list's apiVersion: the items' group version."},
        {"kind", "string", 0, "The list's kind: the items' kind followed by List."},
        {"metadata", META "ListMeta", 0, "The store's version when the list was read, and paging."},
        {"items", k->type, DRV_OA_LIST | DRV_OA_REQUIRED, "The objects."},
        {NULL, NULL, 0, NULL},
    };
    const drv_oa_type_t t = {name, "A list of objects of one kind.", NULL, NULL, f};
    cJSON *s = type_schema(&t), *ext = gvk_ext(k->group, k->version, kind, true);
    if (!s || !ext || !cJSON_AddItemToObject(s, "x-kubernetes-group-version-kind", ext)) {
        cJSON_Delete(ext);
        cJSON_Delete(s);
        return NULL;
    }
    return s;
}

/* Marks t and every type it refers to in used (indexed as drv_oa_types). */
static void mark(const char *name, bool *used)
{
    const drv_oa_type_t *t = drv_oa_type(name);
    if (!t || used[t - drv_oa_types])
        return;
    used[t - drv_oa_types] = true;
    for (const drv_oa_field_t *f = t->fields; f && f->name; f++)
        if (!is_prim(f->type))
            mark(f->type, used);
}

/* ---- paths ---- */

static bool add_param(cJSON *params, const char *name, const char *in, const char *type,
                      const char *desc)
{
    cJSON *p = cJSON_CreateObject(), *s = NULL;
    bool ok =
        p && cJSON_AddItemToArray(params, p) && cJSON_AddStringToObject(p, "name", name) &&
        cJSON_AddStringToObject(p, "in", in) && cJSON_AddStringToObject(p, "description", desc) &&
        (!strcmp(in, "path") ? cJSON_AddBoolToObject(p, "required", true) != NULL : true) &&
        (s = cJSON_AddObjectToObject(p, "schema")) && cJSON_AddStringToObject(s, "type", type) &&
        cJSON_AddBoolToObject(p, "uniqueItems", true);
    if (!p)
        return false;
    return ok;
}

/* {"content": {"application/json": {"schema": <ref>}}} plus a description. */
static cJSON *content(const char *type, const char *const *media, const char *desc)
{
    cJSON *o = cJSON_CreateObject(), *c = NULL;
    bool ok = o && (!desc || cJSON_AddStringToObject(o, "description", desc)) &&
              (c = cJSON_AddObjectToObject(o, "content"));
    for (size_t i = 0; ok && media[i]; i++) {
        cJSON *m = cJSON_AddObjectToObject(c, media[i]), *s = ref_schema(type);
        ok = m && s && cJSON_AddItemToObject(m, "schema", s);
        if (!ok)
            cJSON_Delete(s);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

enum { Q_LIST = 1, Q_WRITE = 2 };

/* One operation: method (lower case) on item, with Kubernetes' x-kubernetes-action and GVK. */
static bool add_op(cJSON *item, const char *method, const char *action, const char *id,
                   const char *desc, const char *g, const char *v, const char *k, unsigned q,
                   const char *body_type, const char *resp_type)
{
    static const char *const json[] = {"application/json", NULL};
    static const char *const patches[] = {"application/merge-patch+json",
                                          "application/strategic-merge-patch+json", NULL};
    cJSON *op = cJSON_AddObjectToObject(item, method), *params = NULL, *resps = NULL;
    cJSON *gvk = gvk_ext(g, v, k, false);
    bool ok = op && gvk && cJSON_AddStringToObject(op, "description", desc) &&
              cJSON_AddStringToObject(op, "operationId", id) &&
              cJSON_AddItemToObject(op, "x-kubernetes-group-version-kind", gvk) &&
              cJSON_AddStringToObject(op, "x-kubernetes-action", action) &&
              (params = cJSON_AddArrayToObject(op, "parameters"));
    if (!ok && !cJSON_GetObjectItemCaseSensitive(op, "x-kubernetes-group-version-kind"))
        cJSON_Delete(gvk);
    if (ok && (q & Q_LIST))
        ok = add_param(params, "labelSelector", "query", "string",
                       "Only the objects whose labels match this selector.") &&
             add_param(params, "fieldSelector", "query", "string",
                       "Only the objects whose fields match (=, ==, != on dotted paths).") &&
             add_param(params, "limit", "query", "integer",
                       "At most this many objects; metadata.continue then asks for the rest.") &&
             add_param(params, "continue", "query", "string",
                       "The continue token of the previous page.") &&
             add_param(params, "resourceVersion", "query", "string",
                       "With watch: send the changes after this version.") &&
             add_param(params, "watch", "query", "boolean",
                       "Stream the changes (ADDED, MODIFIED, DELETED) instead of listing.");
    if (ok && (q & Q_WRITE))
        ok = add_param(params, "fieldValidation", "query", "string",
                       "How unknown or duplicate fields are treated. Drover always refuses them "
                       "(Strict), naming the field, whatever is asked.");
    if (ok && body_type) {
        cJSON *rb = content(body_type, !strcmp(method, "patch") ? patches : json, NULL);
        ok = rb && cJSON_AddBoolToObject(rb, "required", true) &&
             cJSON_AddItemToObject(op, "requestBody", rb);
        if (!ok && rb && !cJSON_GetObjectItemCaseSensitive(op, "requestBody"))
            cJSON_Delete(rb);
    }
    if (ok) {
        cJSON *r = content(resp_type, json, "OK");
        ok = r && (resps = cJSON_AddObjectToObject(op, "responses")) &&
             cJSON_AddItemToObject(resps, !strcmp(method, "post") ? "201" : "200", r);
        if (!ok)
            cJSON_Delete(r);
    }
    return ok;
}

/* A path item with its path parameters. */
static cJSON *add_path(cJSON *paths, const char *path, bool ns, bool name)
{
    cJSON *item = cJSON_AddObjectToObject(paths, path), *params = NULL;
    if (!item || !(params = cJSON_AddArrayToObject(item, "parameters")))
        return NULL;
    if (ns && !add_param(params, "namespace", "path", "string", "The object's namespace."))
        return NULL;
    if (name && !add_param(params, "name", "path", "string", "The object's name."))
        return NULL;
    return item;
}

static bool kind_paths(cJSON *paths, const drv_oa_kind_t *k)
{
    char base[128], coll[192], item[224], sub[256], list[96], id[160], d[256];
    const char *g = k->group, *v = k->version, *K = k->kind;
    if (drv_fmt(base, sizeof(base), "/%s", k->doc) != DRV_OK ||
        drv_fmt(coll, sizeof(coll), "%s%s/%s", base, k->namespaced ? "/namespaces/{namespace}" : "",
                k->plural) != DRV_OK ||
        drv_fmt(item, sizeof(item), "%s/{name}", coll) != DRV_OK ||
        drv_fmt(list, sizeof(list), "%sList", k->type) != DRV_OK)
        return false;
    cJSON *p = add_path(paths, coll, k->namespaced, false);
    bool ok = p && drv_fmt(id, sizeof(id), "list%s", K) == DRV_OK &&
              drv_fmt(d, sizeof(d), "List or watch the %s of a namespace.", k->plural) == DRV_OK &&
              add_op(p, "get", "list", id, k->namespaced ? d : "List or watch them.", g, v, K,
                     Q_LIST, NULL, list);
    if (ok && k->create)
        ok = drv_fmt(id, sizeof(id), "create%s", K) == DRV_OK &&
             add_op(p, "post", "post", id,
                    "Create one. Drover validates it first and names any field it refuses.", g, v,
                    K, Q_WRITE, k->type, k->type);
    p = ok ? add_path(paths, item, k->namespaced, true) : NULL;
    ok = p && drv_fmt(id, sizeof(id), "read%s", K) == DRV_OK &&
         add_op(p, "get", "get", id, "Read one.", g, v, K, 0, NULL, k->type);
    if (ok && k->create)
        ok = drv_fmt(id, sizeof(id), "replace%s", K) == DRV_OK &&
             add_op(p, "put", "put", id,
                    "Replace one; with metadata.resourceVersion, only if unchanged since.", g, v, K,
                    Q_WRITE, k->type, k->type) &&
             drv_fmt(id, sizeof(id), "patch%s", K) == DRV_OK &&
             add_op(p, "patch", "patch", id,
                    "Change part of one with a merge patch or a strategic merge patch.", g, v, K,
                    Q_WRITE, META "Patch", k->type) &&
             drv_fmt(id, sizeof(id), "delete%s", K) == DRV_OK &&
             add_op(p, "delete", "delete", id, "Delete one (and what it owns).", g, v, K, 0, NULL,
                    META "Status");
    if (ok && k->namespaced) {
        /* every namespace at once */
        if (drv_fmt(sub, sizeof(sub), "%s/%s", base, k->plural) != DRV_OK ||
            drv_fmt(id, sizeof(id), "list%sForAllNamespaces", K) != DRV_OK)
            return false;
        p = add_path(paths, sub, false, false);
        ok = p && add_op(p, "get", "list", id, "List or watch them in every namespace.", g, v, K,
                         Q_LIST, NULL, list);
    }
    if (ok && k->status && k->create) {
        if (drv_fmt(sub, sizeof(sub), "%s/status", item) != DRV_OK)
            return false;
        p = add_path(paths, sub, k->namespaced, true);
        ok = p && drv_fmt(id, sizeof(id), "read%sStatus", K) == DRV_OK &&
             add_op(p, "get", "get", id, "Read one's status.", g, v, K, 0, NULL, k->type) &&
             drv_fmt(id, sizeof(id), "replace%sStatus", K) == DRV_OK &&
             add_op(p, "put", "put", id, "Replace one's status (the spec is kept).", g, v, K,
                    Q_WRITE, k->type, k->type) &&
             drv_fmt(id, sizeof(id), "patch%sStatus", K) == DRV_OK &&
             add_op(p, "patch", "patch", id, "Change part of one's status.", g, v, K, Q_WRITE,
                    META "Patch", k->type);
    }
    if (ok && k->scale) {
        static const char scale[] = SCALE;
        if (drv_fmt(sub, sizeof(sub), "%s/scale", item) != DRV_OK)
            return false;
        p = add_path(paths, sub, k->namespaced, true);
        ok = p && drv_fmt(id, sizeof(id), "read%sScale", K) == DRV_OK &&
             add_op(p, "get", "get", id, "Read one's replicas.", "autoscaling", "v1", "Scale", 0,
                    NULL, scale) &&
             drv_fmt(id, sizeof(id), "replace%sScale", K) == DRV_OK &&
             add_op(p, "put", "put", id, "Set one's replicas (kubectl scale).", "autoscaling", "v1",
                    "Scale", Q_WRITE, scale, scale) &&
             drv_fmt(id, sizeof(id), "patch%sScale", K) == DRV_OK &&
             add_op(p, "patch", "patch", id, "Change one's replicas.", "autoscaling", "v1", "Scale",
                    Q_WRITE, META "Patch", scale);
    }
    if (ok && k->log) {
        if (drv_fmt(sub, sizeof(sub), "%s/log", item) != DRV_OK)
            return false;
        p = add_path(paths, sub, k->namespaced, true);
        cJSON *op = p ? cJSON_AddObjectToObject(p, "get") : NULL, *params = NULL, *r = NULL,
              *c = NULL, *t = NULL, *s = NULL;
        ok = op &&
             cJSON_AddStringToObject(op, "description",
                                     "A container's log, fetched from the Pod's device.") &&
             cJSON_AddStringToObject(op, "operationId", "readPodLog") &&
             (params = cJSON_AddArrayToObject(op, "parameters")) &&
             add_param(params, "container", "query", "string",
                       "The container; needed when the Pod has several.") &&
             add_param(params, "tailLines", "query", "integer", "Only the last lines.") &&
             add_param(params, "follow", "query", "boolean", "Keep streaming new lines.") &&
             (r = cJSON_AddObjectToObject(op, "responses")) &&
             (r = cJSON_AddObjectToObject(r, "200")) &&
             cJSON_AddStringToObject(r, "description", "OK") &&
             (c = cJSON_AddObjectToObject(r, "content")) &&
             (t = cJSON_AddObjectToObject(c, "text/plain")) &&
             (s = cJSON_AddObjectToObject(t, "schema")) &&
             cJSON_AddStringToObject(s, "type", "string");
    }
    return ok;
}

/* The OpenAPI 3.0 document of one group version. */
static cJSON *build_doc(const char *path)
{
    cJSON *d = cJSON_CreateObject(), *info = NULL, *paths = NULL, *comp = NULL, *schemas = NULL;
    _cleanup_free_ bool *used = NULL; /* before the first goto: fail frees it */
    if (!d || !cJSON_AddStringToObject(d, "openapi", "3.0.0") ||
        !(info = cJSON_AddObjectToObject(d, "info")) ||
        !cJSON_AddStringToObject(info, "title", "Drover") ||
        !cJSON_AddStringToObject(info, "version", API_VERSION) ||
        !(paths = cJSON_AddObjectToObject(d, "paths")) ||
        !(comp = cJSON_AddObjectToObject(d, "components")) ||
        !(schemas = cJSON_AddObjectToObject(comp, "schemas")))
        goto fail;
    size_t ntypes = 0;
    while (drv_oa_types[ntypes].name)
        ntypes++;
    used = calloc(ntypes + 1, sizeof(bool));
    if (!used)
        goto fail;
    mark(META "Status", used);
    mark(META "Patch", used);
    for (const drv_oa_kind_t *k = drv_oa_kinds; k->doc; k++) {
        if (strcmp(k->doc, path))
            continue;
        mark(k->type, used);
        mark(META "ListMeta", used);
        if (k->scale)
            mark(SCALE, used);
        if (!kind_paths(paths, k))
            goto fail;
    }
    for (size_t i = 0; i < ntypes; i++) {
        if (!used[i])
            continue;
        cJSON *s = type_schema(&drv_oa_types[i]);
        if (!s || !cJSON_AddItemToObject(schemas, drv_oa_types[i].name, s)) {
            cJSON_Delete(s);
            goto fail;
        }
        const drv_oa_kind_t *k = kind_of_type(drv_oa_types[i].name);
        if (k && !strcmp(k->doc, path)) {
            char list[96];
            cJSON *l = drv_fmt(list, sizeof(list), "%sList", k->type) == DRV_OK
                           ? list_schema(k, list)
                           : NULL;
            if (!l || !cJSON_AddItemToObject(schemas, list, l)) {
                cJSON_Delete(l);
                goto fail;
            }
        }
    }
    return d;
fail:
    cJSON_Delete(d);
    return NULL;
}

/* ---- the cache ---- */

static const char *const doc_paths[] = {"api/v1",
                                        "apis/apps/v1",
                                        "apis/autoscaling/v2",
                                        "apis/discovery.k8s.io/v1",
                                        "apis/networking.k8s.io/v1",
                                        "apis/storage.k8s.io/v1",
                                        "apis/scheduling.k8s.io/v1"};
#define NDOCS (sizeof(doc_paths) / sizeof(doc_paths[0]))

/* Built on first use and never changed after (the tables are constant), so the one copy
 * serves every request; not freed before exit. */
static struct {
    bool built, failed;
    drv_oa_doc_t docs[NDOCS];
    drv_oa_doc_t index;
    char hashes[NDOCS + 1][DRV_DIGEST_HEX_MAX];
} cache;

static bool finish(drv_oa_doc_t *d, cJSON *json, char hash[DRV_DIGEST_HEX_MAX])
{
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    if (!text) {
        cJSON_Delete(json);
        return false;
    }
    drv_digest_t dg;
    drv_digest_of(text, strlen(text), &dg);
    drv_digest_hex(&dg, hash);
    for (char *p = hash; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    d->json = json;
    d->text = text;
    d->len = strlen(text);
    d->hash = hash;
    return true;
}

static bool build_all(void)
{
    if (cache.built)
        return true;
    if (cache.failed)
        return false;
    cJSON *index = cJSON_CreateObject(), *ip = NULL;
    bool ok = index && (ip = cJSON_AddObjectToObject(index, "paths"));
    for (size_t i = 0; ok && i < NDOCS; i++) {
        cache.docs[i].path = doc_paths[i];
        char url[DRV_DIGEST_HEX_MAX + 64];
        cJSON *e = NULL;
        ok = finish(&cache.docs[i], build_doc(doc_paths[i]), cache.hashes[i]) &&
             drv_fmt(url, sizeof(url), "/openapi/v3/%s?hash=%s", doc_paths[i],
                     cache.docs[i].hash) == DRV_OK &&
             (e = cJSON_AddObjectToObject(ip, doc_paths[i])) &&
             cJSON_AddStringToObject(e, "serverRelativeURL", url);
    }
    cache.index.path = "";
    if (ok)
        ok = finish(&cache.index, index, cache.hashes[NDOCS]);
    else
        cJSON_Delete(index);
    if (!ok) {
        /* what was built stays until the process ends: a retry would leak the same way, so
           the API says 500 from now on rather than build again */
        cache.failed = true;
        return false;
    }
    cache.built = true;
    return true;
}

const drv_oa_doc_t *drv_oa_docs(size_t *n)
{
    *n = NDOCS;
    return build_all() ? cache.docs : NULL;
}

const drv_oa_doc_t *drv_oa_index(void)
{
    return build_all() ? &cache.index : NULL;
}

/* ---- /openapi/v2 ---- */

/* A Swagger 2.0 Document in gnostic's protobuf encoding (openapiv2/OpenAPIv2.proto): swagger
 * (1), info (2: title 1, version 2) and empty paths (8). No definitions: kubectl 1.27-1.28 only
 * need it to parse before they read v3; newer ones ask v3 first. */
static size_t v2_protobuf(unsigned char *out, size_t cap)
{
    static const char title[] = "Drover", version[] = API_VERSION;
    size_t tl = sizeof(title) - 1, vl = sizeof(version) - 1, n = 0;
    size_t info = 2 + tl + 2 + vl;
    if (cap < 5 + 2 + info + 2 || info > 127)
        return 0;
    memcpy(out + n,
           "\x0a\x03"
           "2.0",
           5);
    n += 5;
    out[n++] = 0x12;
    out[n++] = (unsigned char)info;
    out[n++] = 0x0a;
    out[n++] = (unsigned char)tl;
    memcpy(out + n, title, tl);
    n += tl;
    out[n++] = 0x12;
    out[n++] = (unsigned char)vl;
    memcpy(out + n, version, vl);
    n += vl;
    out[n++] = 0x42; /* field 8, length-delimited */
    out[n++] = 0x00;
    return n;
}

/* ---- the handler ---- */

static const char *header(drv_api_req_t *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

/* Answers a document as Kubernetes does: an ETag of its hash; immutable for a year when asked
 * by the hash it has now, a redirect to the current hash when asked by another one, and
 * "no-cache" (revalidate with If-None-Match) when asked without one. */
static enum MHD_Result serve(drv_api_req_t *rq, const drv_oa_doc_t *d, const char *self)
{
    char etag[DRV_DIGEST_HEX_MAX + 2];
    if (drv_fmt(etag, sizeof(etag), "\"%s\"", d->hash) != DRV_OK)
        return drv_api_reply_status(rq, 500, NULL, "openapi: hash too long", NULL);
    const char *want = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "hash");
    if (want && self && strcmp(want, d->hash)) {
        char loc[256];
        if (drv_fmt(loc, sizeof(loc), "/openapi/v3/%s?hash=%s", self, d->hash) != DRV_OK)
            return drv_api_reply_status(rq, 500, NULL, "openapi: path too long", NULL);
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (!resp)
            return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache, private");
        return drv_api_queue(rq, 301, resp);
    }
    const char *inm = header(rq, MHD_HTTP_HEADER_IF_NONE_MATCH);
    bool fresh = inm && strstr(inm, etag);
    struct MHD_Response *resp =
        fresh ? MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT)
              : MHD_create_response_from_buffer(d->len, (void *)d->text, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept");
    if (want && self) {
        char expires[64];
        time_t t = time(NULL) + 365 * 24 * 3600;
        struct tm tm;
        if (gmtime_r(&t, &tm) &&
            strftime(expires, sizeof(expires), "%a, %d %b %Y %H:%M:%S GMT", &tm))
            MHD_add_response_header(resp, MHD_HTTP_HEADER_EXPIRES, expires);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "public, immutable");
    } else {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache, private");
    }
    if (!fresh)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return drv_api_queue(rq, fresh ? 304 : 200, resp);
}

/* Whether an Accept header lets JSON through (none at all does). */
static bool accepts_json(const char *accept)
{
    return !accept || !*accept || strstr(accept, "application/json") || strstr(accept, "*/*") ||
           strstr(accept, "application/*");
}

enum MHD_Result drv_api_openapi(drv_api_req_t *rq, const drv_api_match_t *m)
{
    const char *p = m->route->pattern;
    const char *accept = header(rq, MHD_HTTP_HEADER_ACCEPT);
    if (!strcmp(p, "/openapi/v2")) {
        if (accept && strstr(accept, V2_PROTOBUF)) {
            unsigned char buf[128];
            size_t n = v2_protobuf(buf, sizeof(buf));
            void *body = n ? malloc(n) : NULL;
            if (!body)
                return drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
            memcpy(body, buf, n);
            /* Kubernetes' type for it too: Go's media type parser refuses the '@' */
            return drv_api_reply_text(rq, 200, "application/octet-stream", body, n);
        }
        if (!accepts_json(accept))
            return drv_api_reply_status(rq, 406, "NotAcceptable",
                                        "openapi/v2: served as application/json or " V2_PROTOBUF,
                                        NULL);
        cJSON *d = cJSON_Parse("{\"swagger\":\"2.0\",\"info\":{\"title\":\"Drover\",\"version\":"
                               "\"" API_VERSION "\"},\"paths\":{},\"definitions\":{}}");
        if (!d)
            return drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
        enum MHD_Result r = drv_api_reply_json(rq, 200, d);
        cJSON_Delete(d);
        return r;
    }
    if (!accepts_json(accept))
        return drv_api_reply_status(rq, 406, "NotAcceptable",
                                    "openapi/v3: served as application/json only", NULL);
    if (!build_all())
        return drv_api_reply_status(rq, 500, NULL, "openapi: out of memory", NULL);
    if (!strcmp(p, "/openapi/v3"))
        return serve(rq, &cache.index, NULL);
    const char *path = p + strlen("/openapi/v3/");
    for (size_t i = 0; i < NDOCS; i++)
        if (!strcmp(cache.docs[i].path, path))
            return serve(rq, &cache.docs[i], cache.docs[i].path);
    return drv_api_reply_status(rq, 404, "NotFound",
                                "the server could not find the requested resource", NULL);
}
