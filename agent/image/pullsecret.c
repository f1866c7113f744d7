/* imagePullSecrets: Docker config Secrets into registry credentials for one pod's pull (see
 * pullsecret.h). Secret values are wiped from memory once the pull child is done with them. */
#include "image/pullsecret.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "drover/base64.h"
#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/json.h"

static char *keep(drv_pull_creds_t *c, const char *s, size_t n)
{
    if (c->n_strings >= sizeof(c->strings) / sizeof(c->strings[0]))
        return NULL;
    char *d = strndup(s, n);
    if (d)
        c->strings[c->n_strings++] = d;
    return d;
}

static void wipe_free(char *s, size_t n)
{
    if (!s)
        return;
    explicit_bzero(s, n);
    free(s);
}

/* "https://index.docker.io/v1/" -> "docker.io"; "http://127.0.0.1:5000/x" -> "127.0.0.1:5000". */
static bool server_host(const char *server, char *out, size_t outsz)
{
    const char *s = server;
    const char *scheme = strstr(s, "://");
    if (scheme)
        s = scheme + 3;
    size_t n = strcspn(s, "/");
    if (n == 0 || n >= outsz)
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    if (!strcasecmp(out, "index.docker.io") || !strcasecmp(out, "registry-1.docker.io"))
        drv_fmt_cut(out, outsz, "docker.io");
    return !strpbrk(out, " \t\r\n@");
}

static drv_err_t add_entry(drv_pull_creds_t *c, const char *server, const cJSON *e,
                           const char *what, drv_error_t *err)
{
    char host[256];
    if (!cJSON_IsObject(e) || !server_host(server, host, sizeof(host)))
        return DRV_OK; /* not an entry we can use: skipped, as docker does */
    const char *user = drv_json_str(e, "username"), *pass = drv_json_str(e, "password");
    const char *auth = drv_json_str(e, "auth");
    unsigned char *dec = NULL;
    size_t declen = 0;
    if (auth && *auth) {
        if (drv_base64_decode(auth, strlen(auth), &dec, &declen) != DRV_OK)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: auths[%.64s].auth: illegal base64",
                                 what, host);
        char *colon = memchr(dec, ':', declen);
        if (!colon) {
            wipe_free((char *)dec, declen);
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "%s: auths[%.64s].auth: not \"user:password\"", what, host);
        }
        *colon = '\0';
        user = (const char *)dec;
        pass = colon + 1;
    }
    drv_err_t r = DRV_OK;
    if (user && *user && !strchr(user, ':')) {
        if (c->n >= DRV_PULLSECRET_MAX_CREDS) {
            r = drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: more than %d registries", what,
                              DRV_PULLSECRET_MAX_CREDS);
        } else {
            size_t plen =
                pass ? (dec ? declen - (size_t)(pass - (const char *)dec) : strlen(pass)) : 0;
            char *h = keep(c, host, strlen(host)), *u = h ? keep(c, user, strlen(user)) : NULL;
            char *p = u ? keep(c, pass ? pass : "", plen) : NULL;
            if (!p)
                r = drv_error_set(err, DRV_ERR_NOMEM, 0, "%s: out of memory", what);
            else
                c->creds[c->n++] = (drv_registry_cred_t){h, u, p};
        }
    }
    if (dec)
        wipe_free((char *)dec, declen);
    return r;
}

drv_err_t drv_pullsecret_parse(drv_pull_creds_t *c, const char *text, size_t len, bool legacy,
                               const char *what, drv_error_t *err)
{
    if (len > DRV_PULLSECRET_MAX_BYTES)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: more than %d bytes", what,
                             DRV_PULLSECRET_MAX_BYTES);
    cJSON *root = cJSON_ParseWithLength(text, len);
    const cJSON *auths = legacy ? root : drv_json_get(root, "auths");
    drv_err_t r = DRV_OK;
    if (!cJSON_IsObject(root) || (!legacy && auths && !cJSON_IsObject(auths)))
        r = drv_error_set(err, DRV_ERR_INVALID, 0, "%s: not a Docker config JSON object%s", what,
                          legacy ? "" : " with \"auths\"");
    for (const cJSON *e = r == DRV_OK && auths ? auths->child : NULL; e && r == DRV_OK; e = e->next)
        r = add_entry(c, e->string ? e->string : "", e, what, err);
    if (root) {
        /* The passwords in the tree: wiped before it goes. */
        for (const cJSON *e = auths && cJSON_IsObject(auths) ? auths->child : NULL; e; e = e->next)
            for (const cJSON *m = e->child; m; m = m->next)
                if (cJSON_IsString(m) && m->valuestring)
                    explicit_bzero(m->valuestring, strlen(m->valuestring));
        cJSON_Delete(root);
    }
    return r;
}

static void add_missing(drv_pull_creds_t *c, const char *name)
{
    size_t l = strlen(c->missing);
    drv_fmt_cut(c->missing + l, sizeof(c->missing) - l, "%s%s", l ? ", " : "", name);
}

drv_err_t drv_pullsecret_creds(const cJSON *pod, const cJSON *secrets, drv_pull_creds_t *c,
                               drv_error_t *err)
{
    memset(c, 0, sizeof(*c));
    const cJSON *ips = drv_json_get(drv_json_get(pod, "spec"), "imagePullSecrets");
    for (const cJSON *ref = cJSON_IsArray(ips) ? ips->child : NULL; ref; ref = ref->next) {
        const char *name = drv_json_str(ref, "name");
        if (!name || !*name)
            continue;
        const cJSON *sec = cJSON_IsObject(secrets) ? drv_json_get(secrets, name) : NULL;
        if (!cJSON_IsObject(sec)) {
            add_missing(c, name);
            continue;
        }
        const char *type = drv_json_str(sec, "type");
        bool legacy = type && !strcmp(type, "kubernetes.io/dockercfg");
        if (!type || (!legacy && strcmp(type, "kubernetes.io/dockerconfigjson")))
            continue; /* the kubelet uses only these two types */
        const char *b64 =
            drv_json_str(drv_json_get(sec, "data"), legacy ? ".dockercfg" : ".dockerconfigjson");
        char what[320];
        drv_fmt_cut(what, sizeof(what), "imagePullSecrets: Secret \"%s\"", name);
        unsigned char *text = NULL;
        size_t len = 0;
        if (!b64 || drv_base64_decode(b64, strlen(b64), &text, &len) != DRV_OK)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: data[%s]: missing or not base64",
                                 what, legacy ? ".dockercfg" : ".dockerconfigjson");
        drv_err_t r = drv_pullsecret_parse(c, (const char *)text, len, legacy, what, err);
        wipe_free((char *)text, len);
        if (r != DRV_OK)
            return r;
    }
    return DRV_OK;
}

void drv_pullsecret_free(drv_pull_creds_t *c)
{
    for (size_t i = 0; i < c->n_strings; i++)
        wipe_free(c->strings[i], strlen(c->strings[i]));
    memset(c, 0, sizeof(*c));
}
