/* PATCH bodies applied to stored objects (patch.h): JSON merge patch, Kubernetes' strategic
 * merge patch as the apiserver applies it (k8s.io/apimachinery strategicpatch, with the
 * metadata of patchmeta.c) and JSON Patch. Every format works on a copy of the target, so a
 * patch that fails half-way leaves the stored object as it was. */
#include "api/patch.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api/patchmeta.h"
#include "drover/cleanup.h"
#include "drover/fmt.h"

#define DIR_PATCH "$patch"
#define DIR_RETAIN "$retainKeys"
#define DIR_ORDER "$setElementOrder/"
#define DIR_DELETE "$deleteFromPrimitiveList/"

static bool has_prefix(const char *s, const char *p)
{
    return !strncmp(s, p, strlen(p));
}

/* ---- RFC 7386 merge patch ---- */

/* Returns the patched target (target is consumed), NULL on allocation failure. */
static cJSON *merge_patch(cJSON *target, const cJSON *patch)
{
    if (!cJSON_IsObject(patch)) {
        cJSON_Delete(target);
        return cJSON_Duplicate(patch, true);
    }
    if (!cJSON_IsObject(target)) {
        cJSON_Delete(target);
        target = cJSON_CreateObject();
        if (!target)
            return NULL;
    }
    for (const cJSON *p = patch->child; p; p = p->next) {
        if (cJSON_IsNull(p)) {
            cJSON_DeleteItemFromObjectCaseSensitive(target, p->string);
            continue;
        }
        cJSON *cur = cJSON_DetachItemFromObjectCaseSensitive(target, p->string);
        cJSON *n = merge_patch(cur, p);
        if (!n || !cJSON_AddItemToObject(target, p->string, n)) {
            cJSON_Delete(n);
            cJSON_Delete(target);
            return NULL;
        }
    }
    return target;
}

/* ---- strategic merge patch ---- */

/* The walk's state: where it is (for messages) and where errors go. */
typedef struct smp {
    drv_error_t *err;
    char path[512];
    size_t len;
} smp_t;

static size_t path_push(smp_t *c, const char *key)
{
    size_t saved = c->len;
    drv_fmt_cut(c->path + c->len, sizeof(c->path) - c->len, "%s%s", c->len ? "." : "", key);
    c->len += strlen(c->path + c->len);
    return saved;
}

static size_t path_push_index(smp_t *c, size_t i)
{
    size_t saved = c->len;
    drv_fmt_cut(c->path + c->len, sizeof(c->path) - c->len, "[%zu]", i);
    c->len += strlen(c->path + c->len);
    return saved;
}

static void path_pop(smp_t *c, size_t saved)
{
    c->len = saved;
    c->path[saved] = '\0';
}

DRV_PRINTF(3, 4)
static drv_err_t smp_fail(smp_t *c, drv_err_t code, const char *fmt, ...)
{
    char msg[DRV_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    drv_vfmt_cut(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return drv_error_set(c->err, code, 0, "%s: %s", c->len ? c->path : "patch", msg);
}

static drv_err_t smp_nomem(smp_t *c)
{
    return drv_error_set(c->err, DRV_ERR_NOMEM, 0, "%s: out of memory", c->len ? c->path : "patch");
}

static void clear_children(cJSON *o)
{
    while (o->child)
        cJSON_Delete(cJSON_DetachItemViaPointer(o, o->child));
}

/* Sets o[key] to v (taking v), replacing what was there. */
static bool set_member(cJSON *o, const char *key, cJSON *v)
{
    bool ok = cJSON_GetObjectItemCaseSensitive(o, key)
                  ? cJSON_ReplaceItemInObjectCaseSensitive(o, key, v)
                  : cJSON_AddItemToObject(o, key, v);
    if (!ok)
        cJSON_Delete(v);
    return ok;
}

static drv_err_t smp_map(smp_t *c, cJSON *o, const cJSON *p, const char *type);
static drv_err_t smp_list(smp_t *c, cJSON *o, const cJSON *p, const drv_api_patch_meta_t *m);

/* The patch value p as a new value, directives applied to nothing and nulls dropped: what a
 * field absent from the target becomes. */
static drv_err_t smp_fresh(smp_t *c, const cJSON *p, const drv_api_patch_meta_t *m, cJSON **out)
{
    cJSON *v = cJSON_IsObject(p)  ? cJSON_CreateObject()
               : cJSON_IsArray(p) ? cJSON_CreateArray()
                                  : cJSON_Duplicate(p, true);
    if (!v)
        return smp_nomem(c);
    drv_err_t e = DRV_OK;
    if (cJSON_IsObject(p))
        e = smp_map(c, v, p, m && !m->list ? m->type : NULL);
    else if (cJSON_IsArray(p))
        e = smp_list(c, v, p, m);
    if (e != DRV_OK) {
        cJSON_Delete(v);
        return e;
    }
    *out = v;
    return DRV_OK;
}

/* An element's identity within its list: its merge key's value (maps) or itself. */
static const cJSON *elem_id(const cJSON *e, const char *key)
{
    return key ? cJSON_GetObjectItemCaseSensitive(e, key) : e;
}

/* The index of the element of list whose identity equals id, -1 when none. */
static long index_of(const cJSON *list, const cJSON *id, const char *key)
{
    if (!id)
        return -1;
    long i = 0;
    for (const cJSON *e = list ? list->child : NULL; e; e = e->next, i++) {
        const cJSON *x = elem_id(e, key);
        if (x && cJSON_Compare(x, id, true))
            return i;
    }
    return -1;
}

typedef struct ord {
    cJSON *item;
    long want; /* index in the order the patch asks for; -1: a server-only element */
    long live; /* index in the live list; -1: new */
} ord_t;

/* Stable insertion sort by want (patch elements) or live (server-only), unknown last; lists
 * are at most DRV_API_PATCH_MAX_MERGE_LIST long. */
static void ord_sort(ord_t *v, size_t n, bool by_want)
{
    for (size_t i = 1; i < n; i++) {
        ord_t x = v[i];
        long kx = by_want ? x.want : x.live;
        size_t j = i;
        while (j > 0) {
            long kj = by_want ? v[j - 1].want : v[j - 1].live;
            if (kx < 0 || (kj >= 0 && kj <= kx))
                break;
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

/* Orders a merged list: the elements named in order (the patch list or $setElementOrder) in
 * that order, the server-only ones in their live order, the two interleaved by their places
 * in the live list (before the merge); an element new to the list goes after the server-only
 * ones before it, so that new elements are appended (as kubectl users observe). */
static drv_err_t smp_reorder(smp_t *c, cJSON *list, const cJSON *order, const cJSON *live,
                             const char *key)
{
    size_t n = (size_t)cJSON_GetArraySize(list);
    if (n < 2)
        return DRV_OK;
    _cleanup_free_ ord_t *pv = calloc(n, sizeof(*pv));
    _cleanup_free_ ord_t *sv = calloc(n, sizeof(*sv));
    if (!pv || !sv)
        return smp_nomem(c);
    size_t np = 0, ns = 0;
    for (cJSON *e = list->child; e; e = e->next) {
        const cJSON *id = elem_id(e, key);
        ord_t o = {e, index_of(order, id, key), index_of(live, id, key)};
        if (o.want >= 0)
            pv[np++] = o;
        else
            sv[ns++] = o;
    }
    ord_sort(pv, np, true);
    ord_sort(sv, ns, false);
    while (list->child)
        cJSON_DetachItemViaPointer(list, list->child);
    size_t i = 0, j = 0;
    while (i < ns || j < np) {
        bool left;
        if (j >= np)
            left = true;
        else if (i >= ns)
            left = false;
        else /* a patch element goes first only when the live list has it earlier */
            left = !(pv[j].live >= 0 && sv[i].live >= 0 && pv[j].live < sv[i].live);
        cJSON_AddItemToArray(list, left ? sv[i++].item : pv[j++].item);
    }
    return DRV_OK;
}

/* Whether every element of the lists is an object (*maps) or every one a primitive. */
static drv_err_t smp_elem_kind(smp_t *c, const cJSON *a, const cJSON *b, bool *maps)
{
    int kind = -1;
    const cJSON *lists[2] = {a, b};
    for (size_t l = 0; l < 2; l++)
        for (const cJSON *e = lists[l] ? lists[l]->child : NULL; e; e = e->next) {
            if (cJSON_IsArray(e))
                return smp_fail(c, DRV_ERR_INVALID, "lists of lists cannot be merged");
            int k = cJSON_IsObject(e) ? 1 : 0;
            if (kind >= 0 && k != kind)
                return smp_fail(c, DRV_ERR_PROTO,
                                "list elements differ in type (objects and primitives)");
            kind = k;
        }
    *maps = kind == 1;
    return DRV_OK;
}

/* Merges patch list p into list o (in place) by the field's strategy m (NULL: replace). */
static drv_err_t smp_list(smp_t *c, cJSON *o, const cJSON *p, const drv_api_patch_meta_t *m)
{
    drv_err_t e;
    size_t i = 0;
    if (!m || !m->merge) {
        /* replaced whole; a lone {"$patch": ...} element is a list directive, not a value */
        _cleanup_cjson_ cJSON *n = cJSON_CreateArray();
        if (!n)
            return smp_nomem(c);
        for (const cJSON *pe = p->child; pe; pe = pe->next, i++) {
            if (cJSON_IsObject(pe) && pe->child && !pe->child->next &&
                !strcmp(pe->child->string, DIR_PATCH))
                continue;
            cJSON *v = NULL;
            size_t saved = path_push_index(c, i);
            e = cJSON_IsArray(pe) ? (v = cJSON_Duplicate(pe, true)) ? DRV_OK : smp_nomem(c)
                                  : smp_fresh(c, pe,
                                              &(drv_api_patch_meta_t){m ? m->type : NULL, false,
                                                                      false, false, NULL},
                                              &v);
            path_pop(c, saved);
            if (e != DRV_OK)
                return e;
            cJSON_AddItemToArray(n, v);
        }
        clear_children(o);
        while (n->child)
            cJSON_AddItemToArray(o, cJSON_DetachItemViaPointer(n, n->child));
        return DRV_OK;
    }
    if (!o->child && !p->child)
        return DRV_OK;
    bool maps = false;
    if ((e = smp_elem_kind(c, o, p, &maps)) != DRV_OK)
        return e;
    if ((size_t)cJSON_GetArraySize(o) + (size_t)cJSON_GetArraySize(p) >
        DRV_API_PATCH_MAX_MERGE_LIST)
        return smp_fail(c, DRV_ERR_TOOBIG, "more than %d elements to merge",
                        DRV_API_PATCH_MAX_MERGE_LIST);
    const char *key = maps ? m->merge_key : NULL;
    if (maps && !key)
        return smp_fail(c, DRV_ERR_PROTO, "a list of objects without a merge key cannot merge");
    /* the patch's elements without the directive ones, in patch order */
    _cleanup_cjson_ cJSON *plain = cJSON_CreateArray();
    if (!plain)
        return smp_nomem(c);
    bool replace = false;
    i = 0;
    for (const cJSON *pe = p->child; pe; pe = pe->next, i++) {
        const cJSON *d = maps ? cJSON_GetObjectItemCaseSensitive(pe, DIR_PATCH) : NULL;
        if (!d) {
            /* maps by reference (smp_map reads through it), primitives copied */
            cJSON *ref = maps ? cJSON_CreateObjectReference(pe->child) : cJSON_Duplicate(pe, true);
            if (!ref)
                return smp_nomem(c);
            cJSON_AddItemToArray(plain, ref);
            continue;
        }
        const char *ds = cJSON_GetStringValue(d);
        if (ds && !strcmp(ds, "delete")) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(pe, key);
            if (!id)
                return smp_fail(c, DRV_ERR_PROTO,
                                "element %zu ($patch: delete) has no merge key \"%s\"", i, key);
            cJSON *x = o->child;
            while (x) {
                cJSON *next = x->next;
                const cJSON *xid = cJSON_GetObjectItemCaseSensitive(x, key);
                if (xid && cJSON_Compare(xid, id, true))
                    cJSON_Delete(cJSON_DetachItemViaPointer(o, x));
                x = next;
            }
        } else if (ds && !strcmp(ds, "replace")) {
            replace = true;
        } else if (!ds || strcmp(ds, "merge")) {
            return smp_fail(c, DRV_ERR_PROTO,
                            "element %zu: unknown $patch directive (replace, merge or delete)", i);
        }
    }
    if (replace) {
        clear_children(o);
        i = 0;
        for (const cJSON *pe = plain->child; pe; pe = pe->next, i++) {
            cJSON *v = NULL;
            size_t saved = path_push_index(c, i);
            e = smp_fresh(c, pe, &(drv_api_patch_meta_t){m->type, false, false, false, NULL}, &v);
            path_pop(c, saved);
            if (e != DRV_OK)
                return e;
            cJSON_AddItemToArray(o, v);
        }
        return DRV_OK;
    }
    _cleanup_cjson_ cJSON *live = cJSON_Duplicate(o, true);
    if (!live)
        return smp_nomem(c);
    i = 0;
    for (const cJSON *pe = plain->child; pe; pe = pe->next, i++) {
        const cJSON *id = elem_id(pe, key);
        if (!id)
            return smp_fail(c, DRV_ERR_PROTO, "element %zu has no merge key \"%s\"", i, key);
        long at = index_of(o, id, key);
        cJSON *cur = at >= 0 ? cJSON_GetArrayItem(o, (int)at) : NULL;
        if (cur && !maps)
            continue; /* a set: already there */
        size_t saved = path_push_index(c, i);
        if (cur) {
            e = smp_map(c, cur, pe, m->type);
        } else {
            cJSON *v = NULL;
            e = smp_fresh(c, pe, &(drv_api_patch_meta_t){m->type, false, false, false, NULL}, &v);
            if (e == DRV_OK)
                cJSON_AddItemToArray(o, v);
        }
        path_pop(c, saved);
        if (e != DRV_OK)
            return e;
    }
    return smp_reorder(c, o, plain, live, key);
}

/* $setElementOrder/<field>: the patch list's (non-deleting) elements must appear in the
 * order list in the same order. */
static drv_err_t smp_check_order(smp_t *c, const char *field, const cJSON *order,
                                 const cJSON *plist, const char *key)
{
    size_t i = 0;
    for (const cJSON *x = order->child; x; x = x->next, i++)
        if (key && !cJSON_GetObjectItemCaseSensitive(x, key))
            return smp_fail(c, DRV_ERR_PROTO, "%s%s: element %zu has no merge key \"%s\"",
                            DIR_ORDER, field, i, key);
    const cJSON *x = order->child;
    for (const cJSON *pe = plist ? plist->child : NULL; pe; pe = pe->next) {
        if (key && cJSON_GetObjectItemCaseSensitive(pe, DIR_PATCH))
            continue;
        const cJSON *id = elem_id(pe, key);
        while (x && !(id && elem_id(x, key) && cJSON_Compare(elem_id(x, key), id, true)))
            x = x->next;
        if (!x)
            return smp_fail(c, DRV_ERR_PROTO,
                            "%s%s: the patch list has elements not in it, or in another order",
                            DIR_ORDER, field);
        x = x->next;
    }
    return DRV_OK;
}

/* Merges a field's list together with its $setElementOrder directive, then orders it. */
static drv_err_t smp_ordered(smp_t *c, cJSON *o, const cJSON *p, const char *field,
                             const cJSON *order, const char *type)
{
    if (!cJSON_IsArray(order))
        return smp_fail(c, DRV_ERR_PROTO, "%s%s: not a list", DIR_ORDER, field);
    if (!*field)
        return smp_fail(c, DRV_ERR_PROTO, "%s: no field named", DIR_ORDER);
    drv_api_patch_meta_t m;
    drv_api_patch_meta(type, field, &m);
    const cJSON *plist = cJSON_GetObjectItemCaseSensitive(p, field);
    cJSON *olist = cJSON_GetObjectItemCaseSensitive(o, field);
    size_t saved = path_push(c, field);
    drv_err_t e = DRV_OK;
    if (plist && !cJSON_IsArray(plist) && !cJSON_IsNull(plist))
        e = smp_fail(c, DRV_ERR_PROTO, "not a list, but %s names it", DIR_ORDER);
    bool maps = false;
    if (e == DRV_OK && cJSON_IsArray(olist))
        e = smp_elem_kind(c, olist, cJSON_IsArray(plist) ? plist : NULL, &maps);
    else if (e == DRV_OK && cJSON_IsArray(plist))
        e = smp_elem_kind(c, plist, NULL, &maps);
    const char *key = maps ? m.merge_key : NULL;
    if (e == DRV_OK)
        e = smp_check_order(c, field, order, cJSON_IsArray(plist) ? plist : NULL, key);
    _cleanup_cjson_ cJSON *live = NULL;
    if (e == DRV_OK && cJSON_IsArray(olist) && !(live = cJSON_Duplicate(olist, true)))
        e = smp_nomem(c);
    if (e == DRV_OK && cJSON_IsNull(plist)) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, field);
        olist = NULL;
    } else if (e == DRV_OK && cJSON_IsArray(plist)) {
        if (cJSON_IsArray(olist)) {
            e = smp_list(c, olist, plist, &m);
        } else {
            cJSON *v = NULL;
            e = smp_fresh(c, plist, &m, &v);
            if (e == DRV_OK && !set_member(o, field, v))
                e = smp_nomem(c);
            olist = cJSON_GetObjectItemCaseSensitive(o, field);
        }
    }
    if (e == DRV_OK && cJSON_IsArray(olist) && (!maps || key))
        e = smp_reorder(c, olist, order, live, key);
    path_pop(c, saved);
    return e;
}

/* $deleteFromPrimitiveList/<field>: removes those values from the field's list. */
static drv_err_t smp_delete_from(smp_t *c, cJSON *o, const char *field, const cJSON *del)
{
    if (!*field)
        return smp_fail(c, DRV_ERR_PROTO, "%s: no field named", DIR_DELETE);
    if (!cJSON_IsArray(del))
        return smp_fail(c, DRV_ERR_PROTO, "%s%s: not a list", DIR_DELETE, field);
    for (const cJSON *d = del->child; d; d = d->next)
        if (cJSON_IsArray(d) || cJSON_IsObject(d))
            return smp_fail(c, DRV_ERR_PROTO, "%s%s: not a list of primitives", DIR_DELETE, field);
    cJSON *list = cJSON_GetObjectItemCaseSensitive(o, field);
    if (!cJSON_IsArray(list))
        return DRV_OK;
    cJSON *x = list->child;
    while (x) {
        cJSON *next = x->next;
        for (const cJSON *d = del->child; d; d = d->next)
            if (cJSON_Compare(x, d, true)) {
                cJSON_Delete(cJSON_DetachItemViaPointer(list, x));
                break;
            }
        x = next;
    }
    return DRV_OK;
}

/* $retainKeys: the patch may only set listed fields; the target keeps only those. */
static drv_err_t smp_retain(smp_t *c, cJSON *o, const cJSON *p, const cJSON *keys)
{
    if (!cJSON_IsArray(keys))
        return smp_fail(c, DRV_ERR_PROTO, "%s: not a list of field names", DIR_RETAIN);
    for (const cJSON *k = keys->child; k; k = k->next)
        if (!cJSON_IsString(k))
            return smp_fail(c, DRV_ERR_PROTO, "%s: not a list of field names", DIR_RETAIN);
    for (const cJSON *pk = p->child; pk; pk = pk->next) {
        if (cJSON_IsNull(pk) || pk->string[0] == '$')
            continue;
        bool found = false;
        for (const cJSON *k = keys->child; k && !found; k = k->next)
            found = !strcmp(k->valuestring, pk->string);
        if (!found)
            return smp_fail(c, DRV_ERR_PROTO, "field \"%s\" is set but not in %s", pk->string,
                            DIR_RETAIN);
    }
    cJSON *x = o->child;
    while (x) {
        cJSON *next = x->next;
        bool found = false;
        for (const cJSON *k = keys->child; k && !found; k = k->next)
            found = !strcmp(k->valuestring, x->string);
        if (!found)
            cJSON_Delete(cJSON_DetachItemViaPointer(o, x));
        x = next;
    }
    return DRV_OK;
}

/* Merges patch map p into map o (in place); type is o's OpenAPI type (NULL: unknown, so no
 * list under it merges). */
static drv_err_t smp_map(smp_t *c, cJSON *o, const cJSON *p, const char *type)
{
    drv_err_t e;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(p, DIR_PATCH);
    if (d) {
        const char *ds = cJSON_GetStringValue(d);
        if (ds && !strcmp(ds, "delete")) {
            clear_children(o);
            return DRV_OK;
        }
        if (ds && !strcmp(ds, "replace"))
            clear_children(o);
        else if (!ds || strcmp(ds, "merge"))
            return smp_fail(c, DRV_ERR_PROTO, "unknown %s directive (replace, merge or delete)",
                            DIR_PATCH);
    }
    const cJSON *retain = cJSON_GetObjectItemCaseSensitive(p, DIR_RETAIN);
    if (retain && (e = smp_retain(c, o, p, retain)) != DRV_OK)
        return e;
    for (const cJSON *pk = p->child; pk; pk = pk->next)
        if (has_prefix(pk->string, DIR_ORDER) &&
            (e = smp_ordered(c, o, p, pk->string + strlen(DIR_ORDER), pk, type)) != DRV_OK)
            return e;
    for (const cJSON *pk = p->child; pk; pk = pk->next) {
        const char *k = pk->string;
        if (!strcmp(k, DIR_PATCH) || !strcmp(k, DIR_RETAIN) || has_prefix(k, DIR_ORDER))
            continue;
        if (has_prefix(k, DIR_DELETE)) {
            if ((e = smp_delete_from(c, o, k + strlen(DIR_DELETE), pk)) != DRV_OK)
                return e;
            continue;
        }
        if (k[0] == '$')
            return smp_fail(c, DRV_ERR_PROTO,
                            "unknown directive \"%.64s\" ($patch, $retainKeys, "
                            "$setElementOrder/, $deleteFromPrimitiveList/)",
                            k);
        char okey[160];
        drv_fmt_cut(okey, sizeof(okey), "%s%s", DIR_ORDER, k);
        if (strlen(k) < sizeof(okey) - strlen(DIR_ORDER) &&
            cJSON_GetObjectItemCaseSensitive(p, okey))
            continue; /* merged with its order directive */
        if (cJSON_IsNull(pk)) {
            cJSON_DeleteItemFromObjectCaseSensitive(o, k);
            continue;
        }
        drv_api_patch_meta_t m;
        drv_api_patch_meta(type, k, &m);
        cJSON *ov = cJSON_GetObjectItemCaseSensitive(o, k);
        size_t saved = path_push(c, k);
        if (cJSON_IsObject(pk) && cJSON_IsObject(ov)) {
            e = smp_map(c, ov, pk, m.list ? NULL : m.type);
        } else if (cJSON_IsArray(pk) && cJSON_IsArray(ov)) {
            e = smp_list(c, ov, pk, m.list ? &m : NULL);
        } else {
            cJSON *v = NULL;
            e = smp_fresh(c, pk, cJSON_IsArray(pk) && !m.list ? NULL : &m, &v);
            if (e == DRV_OK && !set_member(o, k, v))
                e = smp_nomem(c);
        }
        path_pop(c, saved);
        if (e != DRV_OK)
            return e;
    }
    return DRV_OK;
}

/* ---- RFC 6902 JSON Patch ---- */

/* A JSON Pointer split into its unescaped reference tokens. */
typedef struct ptr {
    char *buf;
    char **tok;
    size_t n;
} ptr_t;

static void ptr_free(ptr_t *p)
{
    free(p->buf);
    free(p->tok);
    p->buf = NULL;
    p->tok = NULL;
    p->n = 0;
}

/* Parses s; false with *why set when it is not a pointer. */
static bool ptr_parse(const char *s, ptr_t *p, const char **why)
{
    memset(p, 0, sizeof(*p));
    if (!*s)
        return true;
    if (*s != '/') {
        *why = "a JSON Pointer starts with \"/\"";
        return false;
    }
    size_t n = 0;
    for (const char *q = s; *q; q++)
        n += *q == '/';
    p->buf = strdup(s);
    p->tok = calloc(n, sizeof(*p->tok));
    if (!p->buf || !p->tok) {
        *why = "out of memory";
        ptr_free(p);
        return false;
    }
    char *w = p->buf;
    for (const char *q = s; *q; q++) {
        if (*q == '/') {
            *w++ = '\0';
            p->tok[p->n++] = w;
        } else if (*q == '~') {
            if (q[1] != '0' && q[1] != '1') {
                *why = "\"~\" must be followed by 0 or 1";
                ptr_free(p);
                return false;
            }
            *w++ = q[1] == '0' ? '~' : '/';
            q++;
        } else {
            *w++ = *q;
        }
    }
    *w = '\0';
    return true;
}

/* An array index token: digits without a leading zero, below 10^9. */
static bool arr_index(const char *t, size_t *out)
{
    size_t len = strlen(t);
    if (!len || len > 9 || (len > 1 && t[0] == '0'))
        return false;
    size_t v = 0;
    for (; *t; t++) {
        if (*t < '0' || *t > '9')
            return false;
        v = v * 10 + (size_t)(*t - '0');
    }
    *out = v;
    return true;
}

/* The value at the first n tokens of p, NULL when there is none. */
static cJSON *ptr_get(cJSON *doc, const ptr_t *p, size_t n)
{
    cJSON *cur = doc;
    for (size_t i = 0; i < n && cur; i++) {
        if (cJSON_IsObject(cur)) {
            cur = cJSON_GetObjectItemCaseSensitive(cur, p->tok[i]);
        } else if (cJSON_IsArray(cur)) {
            size_t ix;
            cur = arr_index(p->tok[i], &ix) ? cJSON_GetArrayItem(cur, (int)ix) : NULL;
        } else {
            cur = NULL;
        }
    }
    return cur;
}

/* Size of a value for the growth bound: nodes plus string bytes; stops counting once past
 * the bound (depth is bounded by the JSON parser's nesting limit). */
static size_t weight(const cJSON *v)
{
    size_t w = 1 + (v->string ? strlen(v->string) : 0) +
               (cJSON_IsString(v) && v->valuestring ? strlen(v->valuestring) : 0);
    for (const cJSON *ch = v->child; ch && w <= DRV_API_PATCH_MAX_WEIGHT; ch = ch->next)
        w += weight(ch);
    return w;
}

typedef struct jp {
    drv_error_t *err;
    size_t index;
    const char *op, *path;
    size_t weight;
} jp_t;

DRV_PRINTF(3, 4)
static drv_err_t jp_fail(jp_t *j, drv_err_t code, const char *fmt, ...)
{
    char msg[DRV_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    drv_vfmt_cut(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (j->op && j->path)
        return drv_error_set(j->err, code, 0, "op %zu (%.32s %.256s): %s", j->index, j->op, j->path,
                             msg);
    return drv_error_set(j->err, code, 0, "op %zu: %s", j->index, msg);
}

/* Adds v (taken) at pointer p of *doc. */
static drv_err_t jp_add(jp_t *j, cJSON **doc, const ptr_t *p, cJSON *v)
{
    if (p->n == 0) {
        cJSON_Delete(*doc);
        *doc = v;
        return DRV_OK;
    }
    cJSON *parent = ptr_get(*doc, p, p->n - 1);
    const char *last = p->tok[p->n - 1];
    if (cJSON_IsObject(parent)) {
        if (!set_member(parent, last, v))
            return jp_fail(j, DRV_ERR_NOMEM, "out of memory");
        return DRV_OK;
    }
    if (cJSON_IsArray(parent)) {
        size_t len = (size_t)cJSON_GetArraySize(parent), ix = len;
        if (strcmp(last, "-") && (!arr_index(last, &ix) || ix > len)) {
            cJSON_Delete(v);
            return jp_fail(j, DRV_ERR_INVALID, "index \"%.32s\" out of range (list of %zu)", last,
                           len);
        }
        bool ok = ix == len ? cJSON_AddItemToArray(parent, v)
                            : cJSON_InsertItemInArray(parent, (int)ix, v);
        if (!ok) {
            cJSON_Delete(v);
            return jp_fail(j, DRV_ERR_NOMEM, "out of memory");
        }
        return DRV_OK;
    }
    cJSON_Delete(v);
    return jp_fail(j, DRV_ERR_INVALID,
                   parent ? "the parent is not an object or a list" : "the parent does not exist");
}

/* Detaches the value at p from doc into *out. */
static drv_err_t jp_detach(jp_t *j, cJSON *doc, const ptr_t *p, const char *what, cJSON **out)
{
    if (p->n == 0)
        return jp_fail(j, DRV_ERR_INVALID, "%s cannot be the whole document", what);
    cJSON *v = ptr_get(doc, p, p->n);
    if (!v)
        return jp_fail(j, DRV_ERR_INVALID, "%s does not exist", what);
    *out = cJSON_DetachItemViaPointer(ptr_get(doc, p, p->n - 1), v);
    return DRV_OK;
}

static drv_err_t jp_grow(jp_t *j, const cJSON *v)
{
    j->weight += weight(v);
    if (j->weight > DRV_API_PATCH_MAX_WEIGHT)
        return jp_fail(j, DRV_ERR_TOOBIG, "the patched object would grow past %u units",
                       DRV_API_PATCH_MAX_WEIGHT);
    return DRV_OK;
}

static drv_err_t jp_op(jp_t *j, cJSON **doc, const cJSON *op)
{
    if (!cJSON_IsObject(op))
        return jp_fail(j, DRV_ERR_PROTO, "an operation is an object");
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(op, "op"));
    const char *path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(op, "path"));
    if (!name)
        return jp_fail(j, DRV_ERR_PROTO, "\"op\": required, a string");
    if (!path)
        return jp_fail(j, DRV_ERR_PROTO, "\"path\": required, a string");
    j->op = name;
    j->path = path;
    bool add = !strcmp(name, "add"), rm = !strcmp(name, "remove"), repl = !strcmp(name, "replace"),
         mv = !strcmp(name, "move"), cp = !strcmp(name, "copy"), test = !strcmp(name, "test");
    if (!add && !rm && !repl && !mv && !cp && !test)
        return jp_fail(j, DRV_ERR_PROTO, "unknown op (add, remove, replace, move, copy or test)");
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(op, "value");
    if ((add || repl || test) && !value)
        return jp_fail(j, DRV_ERR_PROTO, "\"value\": required");
    const char *from = NULL;
    if (mv || cp) {
        from = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(op, "from"));
        if (!from)
            return jp_fail(j, DRV_ERR_PROTO, "\"from\": required, a string");
    }
    const char *why = NULL;
    __attribute__((cleanup(ptr_free))) ptr_t p = {0};
    __attribute__((cleanup(ptr_free))) ptr_t f = {0};
    if (!ptr_parse(path, &p, &why))
        return jp_fail(j, DRV_ERR_PROTO, "path: %s", why);
    if (from && !ptr_parse(from, &f, &why))
        return jp_fail(j, DRV_ERR_PROTO, "from: %s", why);
    drv_err_t e;
    if (test) {
        const cJSON *cur = ptr_get(*doc, &p, p.n);
        if (!cur)
            return jp_fail(j, DRV_ERR_INVALID, "path does not exist");
        if (!cJSON_Compare(cur, value, true))
            return jp_fail(j, DRV_ERR_INVALID, "value differs");
        return DRV_OK;
    }
    if (rm || repl) {
        if (repl && p.n == 0) {
            cJSON *v = cJSON_Duplicate(value, true);
            if (!v)
                return jp_fail(j, DRV_ERR_NOMEM, "out of memory");
            cJSON_Delete(*doc);
            *doc = v;
            j->weight = weight(v);
            return DRV_OK;
        }
        cJSON *old = NULL;
        if ((e = jp_detach(j, *doc, &p, "path", &old)) != DRV_OK)
            return e;
        size_t w = weight(old);
        j->weight = j->weight > w ? j->weight - w : 0;
        cJSON_Delete(old);
        if (rm)
            return DRV_OK;
    }
    cJSON *v = NULL;
    if (mv) {
        if (!strcmp(from, path))
            return DRV_OK;
        size_t fl = strlen(from);
        if (!strncmp(path, from, fl) && path[fl] == '/')
            return jp_fail(j, DRV_ERR_INVALID, "cannot move a value into itself (from %.256s)",
                           from);
        if ((e = jp_detach(j, *doc, &f, "from", &v)) != DRV_OK)
            return e;
        return jp_add(j, doc, &p, v);
    }
    const cJSON *src = value;
    if (cp && !(src = ptr_get(*doc, &f, f.n)))
        return jp_fail(j, DRV_ERR_INVALID, "from %.256s does not exist", from);
    if ((e = jp_grow(j, src)) != DRV_OK)
        return e;
    if (!(v = cJSON_Duplicate(src, true)))
        return jp_fail(j, DRV_ERR_NOMEM, "out of memory");
    return jp_add(j, doc, &p, v);
}

static drv_err_t json_patch(cJSON **doc, const cJSON *ops, drv_error_t *err)
{
    if (!cJSON_IsArray(ops))
        return drv_error_set(err, DRV_ERR_PROTO, 0, "a JSON Patch is a list of operations, not %s",
                             cJSON_IsObject(ops) ? "an object" : "a scalar");
    size_t n = (size_t)cJSON_GetArraySize(ops);
    if (n > DRV_API_PATCH_MAX_OPS)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0,
                             "a JSON Patch may hold at most %d operations, this one has %zu",
                             DRV_API_PATCH_MAX_OPS, n);
    jp_t j = {.err = err, .weight = weight(*doc)};
    for (const cJSON *op = ops->child; op; op = op->next, j.index++) {
        j.op = j.path = NULL;
        drv_err_t e = jp_op(&j, doc, op);
        if (e != DRV_OK)
            return e;
    }
    return DRV_OK;
}

drv_err_t drv_api_patch_apply(drv_api_patch_type_t type, const char *root_type, cJSON **target,
                              const cJSON *patch, drv_error_t *err)
{
    if (!target || !*target || !patch)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "patch: nothing to patch");
    _cleanup_cjson_ cJSON *work = cJSON_Duplicate(*target, true);
    if (!work)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "patch: out of memory");
    drv_err_t e = DRV_OK;
    switch (type) {
    case DRV_API_PATCH_MERGE:
        work = merge_patch(TAKE_PTR(work), patch);
        if (!work)
            e = drv_error_set(err, DRV_ERR_NOMEM, 0, "patch: out of memory");
        break;
    case DRV_API_PATCH_STRATEGIC: {
        if (!cJSON_IsObject(patch)) {
            e = drv_error_set(err, DRV_ERR_PROTO, 0, "a strategic merge patch is a JSON object");
            break;
        }
        if (!cJSON_IsObject(work)) {
            cJSON_Delete(work);
            if (!(work = cJSON_CreateObject())) {
                e = drv_error_set(err, DRV_ERR_NOMEM, 0, "patch: out of memory");
                break;
            }
        }
        smp_t c = {.err = err};
        e = smp_map(&c, work, patch, root_type);
        break;
    }
    case DRV_API_PATCH_JSON:
        e = json_patch(&work, patch, err);
        break;
    default:
        e = drv_error_set(err, DRV_ERR_INVALID, 0, "patch: unknown patch type %d", (int)type);
    }
    if (e != DRV_OK)
        return e;
    cJSON_Delete(*target);
    *target = TAKE_PTR(work);
    return DRV_OK;
}
