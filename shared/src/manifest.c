/* Manifest sources: listing manifest files and reading their documents (see manifest.h). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drover/cleanup.h"
#include "drover/doc.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/manifest.h"
#include "drover/vec.h"

/* The files found: a drv_vec_t of malloc'd char *, at most DRV_MANIFEST_MAX_FILES. */
static drv_err_t list_add(drv_vec_t *l, const char *path)
{
    char *copy = strdup(path);
    drv_err_t r = copy ? drv_vec_push(l, &copy) : DRV_ERR_NOMEM;
    if (r != DRV_OK)
        free(copy);
    return r;
}

static bool is_manifest_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml") || !strcmp(dot, ".json"));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static drv_err_t walk(const char *dir, bool recursive, unsigned depth, drv_vec_t *l,
                      drv_error_t *err)
{
    if (depth > 32)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: directories nested too deeply", dir);
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (!d)
        return drv_error_set(err, errno == ENOENT ? DRV_ERR_NOTFOUND : DRV_ERR_IO, errno, "%s",
                             dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= sizeof(path))
            return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s/%s: path too long", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue; /* a dangling link is not a manifest */
        drv_err_t r = DRV_OK;
        if (S_ISDIR(st.st_mode)) {
            if (recursive)
                r = walk(path, recursive, depth + 1, l, err);
        } else if (S_ISREG(st.st_mode) && is_manifest_name(e->d_name)) {
            r = list_add(l, path);
            if (r == DRV_ERR_TOOBIG)
                r = drv_error_set(err, r, 0, "%s: too many manifest files (more than %d)", dir,
                                  DRV_MANIFEST_MAX_FILES);
            else if (r != DRV_OK)
                r = drv_error_set(err, r, 0, "%s: out of memory", dir);
        }
        if (r != DRV_OK)
            return r;
    }
    return DRV_OK;
}

void drv_manifest_files_free(char **files, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(files[i]);
    free(files);
}

drv_err_t drv_manifest_list_files(const char *path, bool recursive, char ***files, size_t *count,
                                  drv_error_t *err)
{
    drv_vec_t l = DRV_VEC_INIT(char *, DRV_MANIFEST_MAX_FILES);
    struct stat st;
    drv_err_t r;
    if (!strcmp(path, "-")) {
        r = list_add(&l, path);
    } else if (stat(path, &st) != 0) {
        return drv_error_set(err, errno == ENOENT ? DRV_ERR_NOTFOUND : DRV_ERR_IO, errno, "%s",
                             path);
    } else if (S_ISDIR(st.st_mode)) {
        r = walk(path, recursive, 0, &l, err);
        if (r == DRV_OK && l.len)
            qsort(l.data, l.len, sizeof(char *), cmp_str);
    } else {
        r = list_add(&l, path);
    }
    if (r != DRV_OK) {
        drv_manifest_files_free(l.data, l.len);
        if (err && err->code == DRV_OK)
            drv_error_set(err, r, 0, "%s", path);
        return r;
    }
    *files = drv_vec_steal(&l, count);
    return DRV_OK;
}

static drv_err_t set_add(drv_manifest_set_t *set, const char *source, unsigned doc, int item,
                         unsigned line, cJSON *obj)
{
    if (set->count == set->cap) {
        size_t ncap = set->cap ? set->cap * 2 : 8;
        drv_manifest_t *n = realloc(set->items, ncap * sizeof(*n));
        if (!n)
            return DRV_ERR_NOMEM;
        set->items = n;
        set->cap = ncap;
    }
    char *src = strdup(source);
    if (!src)
        return DRV_ERR_NOMEM;
    set->items[set->count++] = (drv_manifest_t){src, doc, item, line, obj};
    return DRV_OK;
}

static bool is_list(const cJSON *o)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "kind");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "apiVersion");
    return cJSON_IsString(k) && !strcmp(k->valuestring, "List") && cJSON_IsString(a) &&
           !strcmp(a->valuestring, "v1") &&
           cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(o, "items"));
}

drv_err_t drv_manifest_load_text(const char *source, const char *text, size_t len,
                                 drv_manifest_set_t *set, drv_error_t *err)
{
    drv_doc_list_t docs = {0};
    drv_error_t perr = DRV_ERROR_INIT;
    drv_err_t r = drv_doc_parse(text, len, NULL, &docs, &perr);
    if (r != DRV_OK)
        return drv_error_set(err, r, 0, "%s: %s", source, drv_error_msg(&perr));
    size_t start = set->count;
    for (size_t i = 0; i < docs.count && r == DRV_OK; i++) {
        drv_doc_t *d = &docs.docs[i];
        if (is_list(d->root)) {
            cJSON *items = cJSON_GetObjectItemCaseSensitive(d->root, "items");
            int j = 0;
            while (items->child && r == DRV_OK) {
                cJSON *it = cJSON_DetachItemViaPointer(items, items->child);
                r = set_add(set, source, d->index, j++, d->line, it);
                if (r != DRV_OK)
                    cJSON_Delete(it);
            }
        } else {
            r = set_add(set, source, d->index, -1, d->line, d->root);
            if (r == DRV_OK)
                d->root = NULL; /* now owned by the set */
        }
    }
    drv_doc_list_free(&docs);
    if (r != DRV_OK) {
        while (set->count > start) {
            drv_manifest_t *m = &set->items[--set->count];
            free(m->source);
            cJSON_Delete(m->obj);
        }
        return drv_error_set(err, r, 0, "%s: out of memory", source);
    }
    return DRV_OK;
}

drv_err_t drv_manifest_load_file(const char *file, drv_manifest_set_t *set, drv_error_t *err)
{
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    drv_error_t rerr = DRV_ERROR_INIT;
    drv_err_t r =
        !strcmp(file, "-")
            ? drv_file_read_fd_capped(STDIN_FILENO, DRV_MANIFEST_MAX_FILE, &text, &len, &rerr)
            : drv_file_read_capped(file, DRV_MANIFEST_MAX_FILE, &text, &len, &rerr);
    if (r != DRV_OK) {
        if (r == DRV_ERR_TOOBIG)
            return drv_error_set(err, r, 0, "%s: larger than %u bytes", file,
                                 DRV_MANIFEST_MAX_FILE);
        return drv_error_set(err, r, 0, "%s", drv_error_msg(&rerr));
    }
    return drv_manifest_load_text(file, text, len, set, err);
}

void drv_manifest_where(const drv_manifest_t *m, char *out, size_t outsz)
{
    if (m->item >= 0)
        drv_fmt_cut(out, outsz, "%s: document %u (line %u), item %d", m->source, m->doc, m->line,
                    m->item);
    else
        drv_fmt_cut(out, outsz, "%s: document %u (line %u)", m->source, m->doc, m->line);
}

void drv_manifest_set_free(drv_manifest_set_t *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->count; i++) {
        free(set->items[i].source);
        cJSON_Delete(set->items[i].obj);
    }
    free(set->items);
    memset(set, 0, sizeof(*set));
}
