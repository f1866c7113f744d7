/* Lexical path cleaning and contained joins: what a name means, decided without touching the
 * file system. Used wherever an untrusted relative name is placed under a trusted root. */
#include "drover/path.h"

#include <stdlib.h>
#include <string.h>

/* Inputs beyond this are refused outright: no real path is this long, and it bounds the
 * scratch allocation. */
#define PATH_INPUT_MAX (1024 * 1024)
#define PATH_STACK_SCRATCH 4096

/* Cleans path[0..n) into w (capacity >= n + 2), Go's path.Clean algorithm, except that a
 * relative path climbing above its start is an error rather than a leading "..". Sets *wlen. */
static drv_err_t clean_into(const char *path, size_t n, char *w, size_t *wlen)
{
    size_t wl = 0, r = 0, dotdot = 0;
    int rooted = n > 0 && path[0] == '/';
    if (rooted) {
        w[wl++] = '/';
        r = 1;
        dotdot = 1;
    }
    while (r < n) {
        if (path[r] == '/') {
            r++;
        } else if (path[r] == '.' && (r + 1 == n || path[r + 1] == '/')) {
            r++;
        } else if (path[r] == '.' && r + 1 < n && path[r + 1] == '.' &&
                   (r + 2 == n || path[r + 2] == '/')) {
            r += 2;
            if (wl > dotdot) {
                wl--;
                while (wl > dotdot && w[wl] != '/')
                    wl--;
            } else if (!rooted) {
                return DRV_ERR_INVALID;
            }
            /* rooted: ".." at "/" stays at "/" */
        } else {
            if ((rooted && wl != 1) || (!rooted && wl != 0))
                w[wl++] = '/';
            while (r < n && path[r] != '/')
                w[wl++] = path[r++];
        }
    }
    if (wl == 0)
        w[wl++] = '.';
    w[wl] = '\0';
    *wlen = wl;
    return DRV_OK;
}

/* Runs clean_into with scratch space, on the stack for ordinary paths. The result is handed
 * to emit, which copies it out; out parameters are only written on success. */
struct scratch {
    char stackbuf[PATH_STACK_SCRATCH];
    char *p;
};

static char *scratch_get(struct scratch *s, size_t need)
{
    if (need <= sizeof(s->stackbuf)) {
        s->p = NULL;
        return s->stackbuf;
    }
    s->p = malloc(need);
    return s->p;
}

drv_err_t drv_path_clean(const char *path, char *out, size_t outsz)
{
    if (path == NULL || out == NULL)
        return DRV_ERR_INVALID;
    size_t n = strnlen(path, PATH_INPUT_MAX + 1);
    if (n > PATH_INPUT_MAX)
        return DRV_ERR_TOOBIG;

    struct scratch s;
    char *w = scratch_get(&s, n + 2);
    if (w == NULL)
        return DRV_ERR_NOMEM;
    size_t wl = 0;
    drv_err_t rc = clean_into(path, n, w, &wl);
    if (rc == DRV_OK) {
        if (wl >= outsz)
            rc = DRV_ERR_TOOBIG;
        else
            memcpy(out, w, wl + 1);
    }
    free(s.p);
    return rc;
}

drv_err_t drv_path_join(const char *root, const char *rel, char *out, size_t outsz)
{
    if (root == NULL || root[0] == '\0' || rel == NULL || out == NULL)
        return DRV_ERR_INVALID;
    size_t rootlen = strnlen(root, PATH_INPUT_MAX + 1);
    size_t n = strnlen(rel, PATH_INPUT_MAX + 1);
    if (rootlen > PATH_INPUT_MAX || n > PATH_INPUT_MAX)
        return DRV_ERR_TOOBIG;

    /* "/srv/" and "/srv" are the same root; "///" is "/". */
    while (rootlen > 1 && root[rootlen - 1] == '/')
        rootlen--;
    int root_is_slash = rootlen == 1 && root[0] == '/';

    /* rel is relative to root even when it starts with "/". */
    while (n > 0 && rel[0] == '/') {
        rel++;
        n--;
    }

    struct scratch s;
    char *w = scratch_get(&s, n + 2);
    if (w == NULL)
        return DRV_ERR_NOMEM;
    size_t wl = 0;
    drv_err_t rc = clean_into(rel, n, w, &wl);
    if (rc != DRV_OK)
        goto out;

    int rel_is_dot = wl == 1 && w[0] == '.';
    size_t total = rootlen;
    if (!rel_is_dot)
        total += (root_is_slash ? 0 : 1) + wl;
    if (total >= outsz) {
        rc = DRV_ERR_TOOBIG;
        goto out;
    }
    memcpy(out, root, rootlen);
    size_t pos = rootlen;
    if (!rel_is_dot) {
        if (!root_is_slash)
            out[pos++] = '/';
        memcpy(out + pos, w, wl);
        pos += wl;
    }
    out[pos] = '\0';
out:
    free(s.p);
    return rc;
}

bool drv_path_is_contained(const char *rel)
{
    if (rel == NULL || rel[0] == '/')
        return false;
    /* Depth count: no buffer needed, so any length is fine. */
    size_t depth = 0;
    const char *p = rel;
    while (*p) {
        if (*p == '/') {
            p++;
            continue;
        }
        const char *e = p;
        while (*e && *e != '/')
            e++;
        size_t len = (size_t)(e - p);
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (depth == 0)
                return false;
            depth--;
        } else if (!(len == 1 && p[0] == '.')) {
            depth++;
        }
        p = e;
    }
    return true;
}
