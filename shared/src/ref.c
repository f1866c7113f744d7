/* Image reference parsing after the grammar of distribution/reference:
 *   reference := name [":" tag] ["@" digest]
 *   name      := [domain "/"] path-component ("/" path-component)*
 * The first component is a domain when it holds "." or ":", is "localhost", or has upper case
 * letters (which a path component never may). */
#include "drover/ref.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "drover/fmt.h"

#define NAME_TOTAL_MAX 255

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool has_upper(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            return true;
    return false;
}

/* path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | "__" | "-"+ */
static bool valid_path_component(const char *s, size_t n)
{
    if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
        return false;
    size_t i = 0;
    while (i < n) {
        if (is_lower_alnum(s[i])) {
            i++;
            continue;
        }
        /* a separator run, then an alphanumeric must follow (guaranteed by the last char) */
        size_t j = i;
        while (j < n && !is_lower_alnum(s[j]))
            j++;
        size_t len = j - i;
        bool ok = (len == 1 && (s[i] == '.' || s[i] == '_' || s[i] == '-')) ||
                  (len == 2 && s[i] == '_' && s[i + 1] == '_');
        if (!ok) {
            ok = true;
            for (size_t k = i; k < j; k++)
                if (s[k] != '-')
                    ok = false;
        }
        if (!ok)
            return false;
        i = j;
    }
    return true;
}

/* domain-component := [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])? */
static bool valid_host(const char *s, size_t n)
{
    if (n == 0)
        return false;
    if (s[0] == '[') {
        if (n < 3 || s[n - 1] != ']')
            return false;
        for (size_t i = 1; i + 1 < n; i++) {
            char c = s[i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                  c == ':' || c == '.'))
                return false;
        }
        return true;
    }
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            size_t len = i - start;
            if (len == 0 || len > 63 || !is_alnum(s[start]) || !is_alnum(s[i - 1]))
                return false;
            for (size_t k = start; k < i; k++)
                if (!is_alnum(s[k]) && s[k] != '-')
                    return false;
            start = i + 1;
        }
    }
    return true;
}

static bool valid_domain(const char *s, size_t n)
{
    /* the port follows the last ':' outside brackets */
    size_t hostlen = n;
    const char *close = memchr(s, ']', n);
    size_t from = close ? (size_t)(close - s) : 0;
    for (size_t i = n; i > from; i--) {
        if (s[i - 1] == ':') {
            hostlen = i - 1;
            break;
        }
    }
    if (hostlen < n) {
        size_t plen = n - hostlen - 1;
        if (plen == 0 || plen > 5)
            return false;
        unsigned long port = 0;
        for (size_t i = hostlen + 1; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return false;
            port = port * 10 + (unsigned long)(s[i] - '0');
        }
        if (port == 0 || port > 65535)
            return false;
    }
    return valid_host(s, hostlen);
}

/* tag := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} */
static bool valid_tag(const char *s, size_t n)
{
    if (n == 0 || n > DRV_REF_TAG_MAX - 1)
        return false;
    if (!is_alnum(s[0]) && s[0] != '_')
        return false;
    for (size_t i = 1; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return false;
    return true;
}

static drv_err_t fail(drv_error_t *err, drv_err_t code, const char *ref, const char *why)
{
    char q[128];
    size_t i = 0;
    for (; ref[i] != '\0' && i < 100; i++)
        q[i] = (ref[i] >= 0x20 && ref[i] < 0x7f && ref[i] != '"') ? ref[i] : '?';
    if (ref[i] != '\0') {
        memcpy(q + i, "...", 3);
        i += 3;
    }
    q[i] = '\0';
    return drv_error_set(err, code, 0, "image \"%s\": %s", q, why);
}

drv_err_t drv_image_ref_parse(const char *s, drv_image_ref_t *out, drv_error_t *err)
{
    if (s == NULL || *s == '\0')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "image: reference is empty");
    size_t total = strnlen(s, DRV_REF_STR_MAX + 1);
    if (total > DRV_REF_STR_MAX - 1)
        return fail(err, DRV_ERR_INVALID, s, "reference is too long");
    for (size_t i = 0; i < total; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return fail(err, DRV_ERR_INVALID, s,
                        "reference contains a space or non-ASCII character");

    drv_image_ref_t r;
    memset(&r, 0, sizeof(r));

    /* digest */
    size_t name_end = total;
    const char *at = strchr(s, '@');
    if (at) {
        name_end = (size_t)(at - s);
        drv_digest_t d;
        drv_error_t derr = DRV_ERROR_INIT;
        drv_err_t rc = drv_digest_parse(at + 1, &d, &derr);
        if (rc != DRV_OK)
            return fail(err, rc, s, drv_error_msg(&derr));
        drv_digest_format(&d, r.digest);
    }

    /* tag: after the last ':' that follows the last '/' */
    size_t last_slash = 0;
    bool any_slash = false;
    for (size_t i = 0; i < name_end; i++)
        if (s[i] == '/') {
            last_slash = i;
            any_slash = true;
        }
    size_t tag_colon = name_end;
    for (size_t i = name_end; i > (any_slash ? last_slash + 1 : 0); i--) {
        if (s[i - 1] == ':') {
            tag_colon = i - 1;
            break;
        }
    }
    if (tag_colon < name_end) {
        const char *tag = s + tag_colon + 1;
        size_t tlen = name_end - tag_colon - 1;
        if (!valid_tag(tag, tlen))
            return fail(err, DRV_ERR_INVALID, s,
                        "tag must be 1-128 characters of [A-Za-z0-9_.-], not starting with . or -");
        memcpy(r.tag, tag, tlen);
        r.tag[tlen] = '\0';
        name_end = tag_colon;
    }
    if (name_end == 0)
        return fail(err, DRV_ERR_INVALID, s, "repository name is missing");

    /* domain */
    const char *name = s;
    size_t nlen = name_end;
    const char *slash = memchr(name, '/', nlen);
    size_t path_off = 0;
    if (slash) {
        size_t dlen = (size_t)(slash - name);
        bool is_domain = memchr(name, '.', dlen) || memchr(name, ':', dlen) ||
                         (dlen == 9 && memcmp(name, "localhost", 9) == 0) || has_upper(name, dlen);
        if (is_domain) {
            if (!valid_domain(name, dlen))
                return fail(err, DRV_ERR_INVALID, s,
                            "registry must be a host name or address with an optional :port");
            if (dlen >= sizeof(r.domain))
                return fail(err, DRV_ERR_INVALID, s, "registry name is too long");
            memcpy(r.domain, name, dlen);
            r.domain[dlen] = '\0';
            path_off = dlen + 1;
        }
    }
    if (r.domain[0] == '\0' || strcmp(r.domain, "index.docker.io") == 0) {
        memset(r.domain, 0, sizeof(r.domain));
        DRV_FMT_LIT(r.domain, DRV_REF_DOCKER_DOMAIN);
    }

    /* path */
    const char *path = name + path_off;
    size_t plen = nlen - path_off;
    if (plen == 0)
        return fail(err, DRV_ERR_INVALID, s, "repository name is missing");
    size_t start = 0;
    for (size_t i = 0; i <= plen; i++) {
        if (i == plen || path[i] == '/') {
            if (has_upper(path + start, i - start))
                return fail(err, DRV_ERR_INVALID, s, "repository name must be lowercase");
            if (!valid_path_component(path + start, i - start))
                return fail(err, DRV_ERR_INVALID, s,
                            "repository path components must be [a-z0-9] separated by '.', '_', "
                            "'__' or '-'");
            start = i + 1;
        }
    }
    bool docker = strcmp(r.domain, DRV_REF_DOCKER_DOMAIN) == 0;
    bool add_library = docker && memchr(path, '/', plen) == NULL;
    size_t full = plen + (add_library ? 8 : 0);
    if (strlen(r.domain) + 1 + full > NAME_TOTAL_MAX ||
        drv_fmt(r.path, sizeof(r.path), "%s%.*s", add_library ? "library/" : "", (int)plen, path) !=
            DRV_OK)
        return fail(err, DRV_ERR_INVALID, s,
                    "repository name must not be more than 255 characters");

    if (r.tag[0] == '\0' && r.digest[0] == '\0')
        DRV_FMT_LIT(r.tag, "latest");
    *out = r;
    return DRV_OK;
}

const char *drv_image_ref_name(const drv_image_ref_t *r, char *out, size_t outsz)
{
    if (outsz == 0)
        return out;
    /* Never a cut name: an out too small (DRV_REF_STR_MAX never is) gets "". */
    if (drv_fmt(out, outsz, "%s/%s", r->domain, r->path) != DRV_OK)
        out[0] = '\0';
    return out;
}

const char *drv_image_ref_format(const drv_image_ref_t *r, char *out, size_t outsz)
{
    if (outsz == 0)
        return out;
    /* checksrc: allow snprintf-unchecked: documented to cut to fit outsz (test_format_cuts) */
    snprintf(out, outsz, "%s/%s%s%s%s%s", r->domain, r->path, r->tag[0] ? ":" : "", r->tag,
             r->digest[0] ? "@" : "", r->digest);
    return out;
}

const char *drv_image_ref_api_host(const drv_image_ref_t *r)
{
    if (strcmp(r->domain, DRV_REF_DOCKER_DOMAIN) == 0)
        return DRV_REF_DOCKER_API_HOST;
    return r->domain;
}

const char *drv_image_ref_manifest_ref(const drv_image_ref_t *r)
{
    return r->digest[0] ? r->digest : r->tag;
}
