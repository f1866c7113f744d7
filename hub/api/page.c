/* Paged and sorted lists (docs/DASHBOARD.md): ?limit=N&continue=TOKEN as Kubernetes clients
 * send them, and Drover's ?sortBy=PATH (a dotted path into the object, "-PATH" descending),
 * ties broken by namespace and name. Pages are cut from the list as it is when each page is
 * asked for; the continue token carries the last item's sort key, so a page starts right
 * after it: an object that did not change in between is never shown twice or skipped. */
#include "api/api_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drover/base64.h"
#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/json.h"

#define PAGE_LIMIT_MAX 100000
#define TOKEN_MAX 2048
#define TOKEN_VALUE_MAX 512 /* a longer string sort key goes in the token cut, with "cut" */

typedef struct row {
    cJSON *item;
    const cJSON *val; /* the sort key; NULL: none */
    const char *ns, *name;
    bool cut; /* a continue token's key: val is the first TOKEN_VALUE_MAX bytes of the value */
} row_t;

typedef struct order {
    const char *path; /* "" when unsorted: namespace, name */
    bool desc;
} order_t;

static int rank(const cJSON *v)
{
    return !v || cJSON_IsNull(v) ? 0 : cJSON_IsBool(v) || cJSON_IsNumber(v) ? 1 : 2;
}

static int cmp_val(const cJSON *a, const cJSON *b)
{
    int ra = rank(a), rb = rank(b);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    if (ra == 1) {
        double x = cJSON_IsBool(a) ? cJSON_IsTrue(a) : a->valuedouble;
        double y = cJSON_IsBool(b) ? cJSON_IsTrue(b) : b->valuedouble;
        return x < y ? -1 : x > y;
    }
    if (ra == 2) {
        if (!cJSON_IsString(a) || !cJSON_IsString(b)) /* objects, arrays: by type only */
            return cJSON_IsString(a) - cJSON_IsString(b);
        return strcmp(a->valuestring, b->valuestring);
    }
    return 0;
}

static int cmp_row(const row_t *a, const row_t *b, const order_t *o)
{
    int c = *o->path ? cmp_val(a->val, b->val) : 0;
    if (c)
        return o->desc ? -c : c;
    c = strcmp(a->ns, b->ns);
    return c ? c : strcmp(a->name, b->name);
}

static int qcmp(const void *x, const void *y, void *o)
{
    return cmp_row(x, y, o);
}

static void fill_row(row_t *r, cJSON *item, const order_t *o)
{
    const cJSON *meta = drv_json_get(item, "metadata");
    r->item = item;
    r->val = *o->path ? drv_json_at(item, o->path) : NULL;
    r->ns = drv_json_str_or(meta, "namespace", "");
    r->name = drv_json_str_or(meta, "name", "");
}

/* The continue token's key into *key (its values point into *tree, which the caller frees). */
static bool parse_token(const char *tok, const char *sort_by, row_t *key, cJSON **tree, char *why,
                        size_t whysz)
{
    size_t len = strlen(tok);
    _cleanup_free_ unsigned char *raw = NULL;
    size_t n = 0;
    if (len > TOKEN_MAX || drv_base64_decode(tok, len, &raw, &n) != DRV_OK ||
        !(*tree = cJSON_ParseWithLength((const char *)raw, n)) || !cJSON_IsObject(*tree)) {
        drv_fmt_cut(why, whysz, "continue: not a continue token of this hub");
        return false;
    }
    const char *s = drv_json_str(*tree, "sortBy"), *ns = drv_json_str(*tree, "namespace"),
               *name = drv_json_str(*tree, "name");
    if (!s || !ns || !name) {
        drv_fmt_cut(why, whysz, "continue: not a continue token of this hub");
        return false;
    }
    if (strcmp(s, sort_by)) {
        drv_fmt_cut(why, whysz,
                    "continue: the token was made for sortBy \"%.128s\", not \"%.128s\"", s,
                    sort_by);
        return false;
    }
    key->item = NULL;
    key->val = drv_json_get(*tree, "value");
    key->cut = cJSON_IsTrue(drv_json_get(*tree, "cut")) && cJSON_IsString(key->val);
    key->ns = ns;
    key->name = name;
    return true;
}

static char *make_token(const row_t *last, const char *sort_by)
{
    _cleanup_cjson_ cJSON *t = cJSON_CreateObject();
    if (!t || !cJSON_AddStringToObject(t, "sortBy", sort_by) ||
        !cJSON_AddStringToObject(t, "namespace", last->ns) ||
        !cJSON_AddStringToObject(t, "name", last->name))
        return NULL;
    /* An object or an array sorts by its type only (cmp_val): an empty one of the same type
     * holds its place, and keeps the token short. */
    if (last->val && !cJSON_IsNull(last->val)) {
        bool cut = cJSON_IsString(last->val) && strlen(last->val->valuestring) > TOKEN_VALUE_MAX;
        char head[TOKEN_VALUE_MAX + 1];
        if (cut) {
            memcpy(head, last->val->valuestring, TOKEN_VALUE_MAX);
            head[TOKEN_VALUE_MAX] = '\0';
        }
        cJSON *v = cJSON_IsObject(last->val)  ? cJSON_CreateObject()
                   : cJSON_IsArray(last->val) ? cJSON_CreateArray()
                   : cut                      ? cJSON_CreateString(head)
                                              : cJSON_Duplicate(last->val, false);
        if (cut && !cJSON_AddTrueToObject(t, "cut")) {
            cJSON_Delete(v);
            return NULL;
        }
        if (!v || !cJSON_AddItemToObject(t, "value", v)) {
            cJSON_Delete(v);
            return NULL;
        }
    }
    _cleanup_free_ char *s = cJSON_PrintUnformatted(t);
    return s ? drv_base64_encode(s, strlen(s)) : NULL;
}

/* Checks sort_by and limit; *o and *lim get them. */
static bool page_args(const char *sort_by, const char *limit, order_t *o, unsigned long *lim,
                      char *why, size_t whysz)
{
    *o = (order_t){.path = sort_by[0] == '-' ? sort_by + 1 : sort_by, .desc = sort_by[0] == '-'};
    size_t plen = strlen(o->path);
    if (plen > 128 || (sort_by[0] == '-' && !plen) || o->path[0] == '-' || o->path[0] == '.' ||
        (plen && o->path[plen - 1] == '.') || strstr(o->path, "..") ||
        strspn(o->path, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
            plen) {
        drv_fmt_cut(why, whysz,
                    "sortBy: \"%.64s\" is not a dotted path (e.g. metadata.name, "
                    "-metadata.creationTimestamp)",
                    sort_by);
        return false;
    }
    *lim = 0;
    if (limit && *limit) {
        char *end = NULL;
        errno = 0;
        *lim = strtoul(limit, &end, 10);
        if (errno || *end || *limit < '0' || *limit > '9' || *lim > PAGE_LIMIT_MAX) {
            drv_fmt_cut(why, whysz, "limit: \"%.32s\" is not a whole number from 0 to %d", limit,
                        PAGE_LIMIT_MAX);
            return false;
        }
    }
    return true;
}

bool drv_api_page_query(const char *sort_by, const char *limit, const char *cont,
                        drv_api_pageq_t *q, char *why, size_t whysz)
{
    *q = (drv_api_pageq_t){0};
    sort_by = sort_by ? sort_by : "";
    order_t o;
    unsigned long lim = 0;
    if (!page_args(sort_by, limit, &o, &lim, why, whysz))
        return false;
    q->paged = !*o.path && (lim || (cont && *cont));
    if (!q->paged)
        return true;
    q->limit = lim;
    row_t key;
    if (cont && *cont && !parse_token(cont, sort_by, &key, &q->tree, why, whysz)) {
        cJSON_Delete(q->tree);
        q->tree = NULL;
        return false;
    }
    if (q->tree) {
        q->after_ns = key.ns;
        q->after_name = key.name;
    }
    return true;
}

void drv_api_pageq_free(drv_api_pageq_t *q)
{
    cJSON_Delete(q->tree);
    *q = (drv_api_pageq_t){0};
}

bool drv_api_page_done(cJSON *items, size_t remaining, cJSON *meta)
{
    const cJSON *last = cJSON_GetArrayItem(items, cJSON_GetArraySize(items) - 1);
    if (!remaining || !last)
        return true;
    const cJSON *m = drv_json_get(last, "metadata");
    row_t r = {.ns = drv_json_str_or(m, "namespace", ""), .name = drv_json_str_or(m, "name", "")};
    _cleanup_free_ char *tok = make_token(&r, "");
    return tok && cJSON_AddStringToObject(meta, "continue", tok) &&
           cJSON_AddNumberToObject(meta, "remainingItemCount", (double)remaining);
}

bool drv_api_page(cJSON *items, const char *sort_by, const char *limit, const char *cont,
                  cJSON *meta, char *why, size_t whysz)
{
    sort_by = sort_by ? sort_by : "";
    order_t o;
    unsigned long lim = 0;
    if (!page_args(sort_by, limit, &o, &lim, why, whysz))
        return false;
    bool paging = lim || (cont && *cont);
    if (!*o.path && !paging)
        return true; /* the store's order, all of it */
    _cleanup_cjson_ cJSON *tree = NULL;
    row_t key;
    if (cont && *cont && !parse_token(cont, sort_by, &key, &tree, why, whysz))
        return false;
    size_t n = (size_t)cJSON_GetArraySize(items);
    _cleanup_free_ row_t *rows = n ? calloc(n, sizeof(*rows)) : NULL;
    if (n && !rows) {
        drv_fmt_cut(why, whysz, "out of memory");
        return false;
    }
    size_t k = 0;
    while (items->child)
        fill_row(&rows[k++], cJSON_DetachItemViaPointer(items, items->child), &o);
    qsort_r(rows, n, sizeof(*rows), qcmp, &o);
    /* A cut key: the whole value is the last item's own, if it is still there unchanged (else
     * the cut value places the page, as well as it can). */
    for (size_t i = 0; tree && key.cut && i < n; i++)
        if (!strcmp(rows[i].ns, key.ns) && !strcmp(rows[i].name, key.name) &&
            cJSON_IsString(rows[i].val) &&
            !strncmp(rows[i].val->valuestring, key.val->valuestring,
                     strlen(key.val->valuestring))) {
            key.val = rows[i].val;
            break;
        }
    size_t first = 0;
    if (tree)
        while (first < n && cmp_row(&rows[first], &key, &o) <= 0)
            first++;
    size_t end = lim && n - first > lim ? first + lim : n;
    for (size_t i = first; i < end; i++)
        cJSON_AddItemToArray(items, rows[i].item);
    bool ok = true;
    if (end < n && end > first) {
        _cleanup_free_ char *tok = make_token(&rows[end - 1], sort_by);
        ok = tok && cJSON_AddStringToObject(meta, "continue", tok) &&
             cJSON_AddNumberToObject(meta, "remainingItemCount", (double)(n - end));
    }
    for (size_t i = 0; i < n; i++)
        if (i < first || i >= end)
            cJSON_Delete(rows[i].item);
    if (!ok)
        drv_fmt_cut(why, whysz, "out of memory");
    return ok;
}
