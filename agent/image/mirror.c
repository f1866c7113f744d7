/* Registry mirrors (K3s registries.yaml's `mirrors`): which endpoints to try for an image, the
 * repository rewrites, and the pull that walks them before falling back to the registry. */
#include <ctype.h>
#include <regex.h>
#include <string.h>
#include <strings.h>

#include "drover/fmt.h"
#include "image/mirror.h"
#include "image/registry.h"

#define MAX_GROUPS 10 /* $0..$9 */

/* host[:port] with a port of 1-65535, or a bracketed IPv6 address with an optional port. */
static bool host_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n >= DRV_REF_DOMAIN_MAX || strpbrk(h, "/ \t@?#\\"))
        return false;
    const char *colon = strrchr(h, ':');
    if (h[0] == '[') {
        const char *close = strchr(h, ']');
        if (!close || close == h + 1)
            return false;
        colon = close[1] == ':' ? close + 1 : NULL;
        if (!colon && close[1])
            return false;
    } else if (colon && strchr(h, ':') != colon) {
        return false; /* an IPv6 address must be bracketed */
    }
    if (!colon)
        return true;
    if (colon == h || !colon[1] || strlen(colon + 1) > 5)
        return false;
    unsigned long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return false;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    return port >= 1 && port <= 65535;
}

bool drv_mirror_parse_endpoint(const char *url, drv_mirror_endpoint_t *out, char *why, size_t whysz)
{
    char dummy[8];
    if (!why) {
        why = dummy;
        whysz = sizeof(dummy);
    }
    bool plain;
    const char *rest;
    if (!strncmp(url, "http://", 7)) {
        plain = true;
        rest = url + 7;
    } else if (!strncmp(url, "https://", 8)) {
        plain = false;
        rest = url + 8;
    } else {
        drv_fmt_cut(why, whysz, "\"%.200s\" must start with http:// or https://", url);
        return false;
    }
    char host[DRV_REF_DOMAIN_MAX];
    size_t hl = strcspn(rest, "/");
    const char *path = rest + hl;
    /* The distribution API lives under /v2 at the root; a registry under another path (a
     * "project" prefix) is what rewrites are for. */
    if (*path && strcmp(path, "/") && strcmp(path, "/v2") && strcmp(path, "/v2/")) {
        drv_fmt_cut(why, whysz,
                    "\"%.200s\": a path after the host is not supported (use a rewrite to "
                    "prefix repositories)",
                    url);
        return false;
    }
    if (hl >= sizeof(host) || drv_fmt(host, sizeof(host), "%.*s", (int)hl, rest) != DRV_OK ||
        !host_ok(host)) {
        drv_fmt_cut(why, whysz, "\"%.200s\": the host must be HOST[:PORT]", url);
        return false;
    }
    memcpy(out->host, host, sizeof(host));
    out->plain_http = plain;
    return true;
}

/* Checks replace's group references against nsub; with out, writes replace with the groups of
 * subject substituted. */
static bool substitute(const char *replace, size_t nsub, const char *subject,
                       const regmatch_t *groups, char *out, size_t outsz, char *why, size_t whysz)
{
    size_t o = 0;
    const char *p = replace;
    while (*p) {
        const char *piece = p;
        size_t plen = 1;
        int g = -1;
        if (*p != '$') {
            p++;
        } else if (p[1] == '$') {
            p += 2; /* "$$": one "$" */
        } else if (isdigit((unsigned char)p[1])) {
            g = p[1] - '0';
            p += 2;
        } else if (p[1] == '{' && isdigit((unsigned char)p[2]) && p[3] == '}') {
            g = p[2] - '0';
            p += 4;
        } else {
            drv_fmt_cut(why, whysz,
                        "\"%.100s\": \"$\" must be followed by a group number ($1, ${1}) or \"$\"",
                        replace);
            return false;
        }
        if (g > (int)nsub) {
            drv_fmt_cut(why, whysz, "\"%.100s\": group $%d, the pattern has %zu", replace, g, nsub);
            return false;
        }
        if (!out)
            continue;
        if (g >= 0) {
            if (groups[g].rm_so < 0)
                continue; /* a group that did not take part: empty, as in Go */
            piece = subject + groups[g].rm_so;
            plen = (size_t)(groups[g].rm_eo - groups[g].rm_so);
        }
        if (o + plen >= outsz) {
            drv_fmt_cut(why, whysz, "\"%.100s\": the rewritten repository is too long", replace);
            return false;
        }
        memcpy(out + o, piece, plen);
        o += plen;
    }
    if (out)
        out[o] = '\0';
    return true;
}

bool drv_mirror_check_rewrite(const char *pattern, const char *replace, char *why, size_t whysz)
{
    char dummy[8];
    if (!why) {
        why = dummy;
        whysz = sizeof(dummy);
    }
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED);
    if (rc != 0) {
        char msg[128];
        regerror(rc, &re, msg, sizeof(msg));
        drv_fmt_cut(why, whysz, "\"%.100s\": not a regular expression: %s", pattern, msg);
        return false;
    }
    size_t nsub = re.re_nsub < MAX_GROUPS ? re.re_nsub : MAX_GROUPS - 1;
    regfree(&re);
    return substitute(replace, nsub, NULL, NULL, NULL, 0, why, whysz);
}

const drv_mirror_conf_t *drv_mirror_find(const drv_mirror_conf_t *mirrors, size_t n,
                                         const drv_image_ref_t *ref)
{
    const drv_mirror_conf_t *any = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(mirrors[i].registry, "*"))
            any = &mirrors[i];
        else if (!strcasecmp(mirrors[i].registry, ref->domain) ||
                 !strcasecmp(mirrors[i].registry, drv_image_ref_api_host(ref)))
            return &mirrors[i];
    }
    return any;
}

/* ref's path after the first matching rewrite of m (unchanged when none matches). */
static drv_err_t rewrite_path(const drv_mirror_conf_t *m, const drv_image_ref_t *ref,
                              char out[DRV_REF_PATH_MAX], drv_error_t *err)
{
    memcpy(out, ref->path, DRV_REF_PATH_MAX);
    for (size_t i = 0; i < m->n_rewrites; i++) {
        const drv_mirror_rewrite_t *rw = &m->rewrites[i];
        regex_t re;
        if (regcomp(&re, rw->pattern, REG_EXTENDED) != 0)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "mirror %s: rewrite \"%s\": bad pattern",
                                 m->registry, rw->pattern);
        regmatch_t groups[MAX_GROUPS];
        int hit = regexec(&re, ref->path, MAX_GROUPS, groups, 0);
        size_t nsub = re.re_nsub < MAX_GROUPS ? re.re_nsub : MAX_GROUPS - 1;
        regfree(&re);
        if (hit != 0)
            continue;
        /* As Go's ReplaceAllString on one match: the text around the match is kept. */
        char mid[DRV_REF_PATH_MAX], why[256];
        if (!substitute(rw->replace, nsub, ref->path, groups, mid, sizeof(mid), why, sizeof(why)))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "mirror %s: rewrite: %s", m->registry,
                                 why);
        if (drv_fmt(out, DRV_REF_PATH_MAX, "%.*s%s%s", (int)groups[0].rm_so, ref->path, mid,
                    ref->path + groups[0].rm_eo) != DRV_OK)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "mirror %s: rewrite \"%s\" of %s: too long", m->registry,
                                 rw->pattern, ref->path);
        /* The result must be a repository name: let the one parser say. */
        char probe[DRV_REF_PATH_MAX + 16];
        drv_image_ref_t check;
        drv_error_t perr = DRV_ERROR_INIT;
        if (drv_fmt(probe, sizeof(probe), "mirror.invalid/%s", out) != DRV_OK ||
            drv_image_ref_parse(probe, &check, &perr) != DRV_OK || strcmp(check.path, out))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "mirror %s: rewrite \"%s\" turns %s into \"%s\", not a "
                                 "repository name",
                                 m->registry, rw->pattern, ref->path, out);
        break;
    }
    return DRV_OK;
}

drv_err_t drv_mirror_sources(const drv_mirror_conf_t *mirrors, size_t n, const drv_image_ref_t *ref,
                             drv_mirror_source_t out[DRV_MIRROR_MAX_SOURCES], size_t *n_out,
                             drv_error_t *err)
{
    size_t k = 0;
    bool upstream_seen = false;
    const drv_mirror_conf_t *m = drv_mirror_find(mirrors, n, ref);
    if (m && m->n_endpoints) {
        char path[DRV_REF_PATH_MAX];
        drv_err_t rc = rewrite_path(m, ref, path, err);
        if (rc != DRV_OK)
            return rc;
        for (size_t i = 0; i < m->n_endpoints && i < DRV_MIRROR_MAX_ENDPOINTS; i++) {
            drv_mirror_source_t *s = &out[k++];
            s->ref = *ref;
            memcpy(s->ref.domain, m->endpoints[i].host, sizeof(s->ref.domain));
            memcpy(s->ref.path, path, sizeof(s->ref.path));
            s->plain_http = m->endpoints[i].plain_http;
            s->upstream = false;
            if (!strcasecmp(s->ref.domain, ref->domain) && !strcmp(path, ref->path))
                upstream_seen = true;
        }
    }
    if (!upstream_seen)
        out[k++] = (drv_mirror_source_t){.ref = *ref, .upstream = true};
    *n_out = k;
    return DRV_OK;
}

size_t drv_mirror_plain_hosts(const drv_mirror_conf_t *mirrors, size_t n, const char **out,
                              size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < mirrors[i].n_endpoints && k < max; j++)
            if (mirrors[i].endpoints[j].plain_http)
                out[k++] = mirrors[i].endpoints[j].host;
    return k;
}

drv_err_t drv_mirror_pull(drv_registry_t *reg, drv_store_t *st, const drv_mirror_conf_t *mirrors,
                          size_t n, const char *image, const drv_platform_t *platform,
                          drv_error_t *err)
{
    drv_image_ref_t ref;
    drv_err_t rc = drv_image_ref_parse(image, &ref, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "pull");
    drv_mirror_source_t src[DRV_MIRROR_MAX_SOURCES];
    size_t ns = 0;
    if ((rc = drv_mirror_sources(mirrors, n, &ref, src, &ns, err)) != DRV_OK)
        return drv_error_wrap(err, "pull %s", image);
    char first[512] = "";
    for (size_t i = 0; i < ns; i++) {
        drv_error_clear(err);
        rc = drv_registry_pull_via(reg, st, image, src[i].upstream ? NULL : &src[i].ref, platform,
                                   NULL, err);
        if (rc == DRV_OK)
            return DRV_OK;
        if (!src[i].upstream && !first[0])
            drv_fmt_cut(first, sizeof(first), "mirror %s%s: %s",
                        src[i].plain_http ? "http://" : "https://", src[i].ref.domain,
                        drv_error_msg(err));
    }
    if (first[0])
        return drv_error_wrap(err, "%s; then", first);
    return rc;
}
