/* Pods' service account tokens on the device (satoken.h). */
#include "pod/satoken.h"

#include <stdlib.h>
#include <string.h>

#include "drover/base64.h"
#include "drover/buf.h"
#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/log.h"
#include "drover/pki.h"
#include "drover/protocol.h"
#include "pod/secrets.h"

#define KEY_MAX (16u * 1024)
#define CA_MAX (64u * 1024)

/* host and port of "https://HOST:PORT[/...]" ("[v6]:port" too); port 443 when absent. */
static bool split_url(const char *url, char *host, size_t hsz, char *port, size_t psz)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/");
    const char *end = p + n, *colon = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', n);
        if (!rb)
            return false;
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
        if (drv_fmt(host, hsz, "%.*s", (int)(rb - p - 1), p + 1) != DRV_OK)
            return false;
    } else {
        for (const char *q = p; q < end; q++)
            if (*q == ':')
                colon = q;
        if (drv_fmt(host, hsz, "%.*s", (int)((colon ? colon : end) - p), p) != DRV_OK)
            return false;
    }
    if (drv_fmt(port, psz, "%.*s", colon ? (int)(end - colon - 1) : 3, colon ? colon + 1 : "443") !=
        DRV_OK)
        return false;
    return *host && *port;
}

static cJSON *find_pod(cJSON *pods, const char *uid)
{
    cJSON *p;
    cJSON_ArrayForEach(p, pods)
    {
        const char *u = drv_json_str(drv_json_get(p, "metadata"), "uid");
        if (u && !strcmp(u, uid))
            return p;
    }
    return NULL;
}

static bool add_b64(cJSON *data, const char *key, const void *bytes, size_t n)
{
    char *b = drv_base64_encode(bytes, n);
    if (!b)
        return false;
    cJSON *s = cJSON_CreateString(b);
    explicit_bzero(b, strlen(b));
    free(b);
    return s && cJSON_AddItemToObject(data, key, s);
}

/* An array member of obj, created empty when absent. */
static cJSON *array_of(cJSON *obj, const char *key)
{
    cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsArray(a))
        return a;
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    return cJSON_AddArrayToObject(obj, key);
}

/* The mount in every container and init container that has nothing there yet, and the
 * environment they do not set themselves. */
static bool add_to_containers(cJSON *spec, const char *host, const char *port)
{
    static const char *const lists[] = {"initContainers", "containers"};
    const char *env_names[] = {"KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT",
                               "KUBERNETES_SERVICE_PORT_HTTPS"};
    const char *env_values[] = {host, port, port};
    for (size_t l = 0; l < 2; l++) {
        cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, lists[l]))
        {
            cJSON *mounts = array_of(c, "volumeMounts");
            if (!mounts)
                return false;
            bool taken = false;
            const cJSON *m;
            cJSON_ArrayForEach(m, mounts)
            {
                const char *mp = drv_json_str(m, "mountPath");
                taken |= mp && !strcmp(mp, POD_SATOKEN_MOUNT);
            }
            cJSON *nm = taken ? NULL : cJSON_CreateObject();
            if (!taken && (!nm || !cJSON_AddStringToObject(nm, "name", POD_SATOKEN_VOLUME) ||
                           !cJSON_AddStringToObject(nm, "mountPath", POD_SATOKEN_MOUNT) ||
                           !cJSON_AddBoolToObject(nm, "readOnly", true) ||
                           !cJSON_AddItemToArray(mounts, nm))) {
                cJSON_Delete(nm);
                return false;
            }
            if (!*host)
                continue;
            cJSON *env = array_of(c, "env");
            if (!env)
                return false;
            for (size_t i = 0; i < 3; i++) {
                bool set = false;
                const cJSON *e;
                cJSON_ArrayForEach(e, env)
                {
                    const char *n = drv_json_str(e, "name");
                    set |= n && !strcmp(n, env_names[i]);
                }
                cJSON *ne = set ? NULL : cJSON_CreateObject();
                if (!set && (!ne || !cJSON_AddStringToObject(ne, "name", env_names[i]) ||
                             !cJSON_AddStringToObject(ne, "value", env_values[i]) ||
                             !cJSON_AddItemToArray(env, ne))) {
                    cJSON_Delete(ne);
                    return false;
                }
            }
        }
    }
    return true;
}

/* The Secret holding pod's token, and the pod's volume, mounts and environment. */
static drv_err_t give(cJSON *desired, cJSON *pod, const char *uid, const char *token,
                      const char *ca, size_t calen, const char *host, const char *port,
                      drv_error_t *err)
{
    const cJSON *meta = drv_json_get(pod, "metadata");
    const char *ns = drv_json_str_or(meta, "namespace", "default");
    char name[128];
    if (drv_fmt(name, sizeof(name), POD_SATOKEN_SECRET_PREFIX "%s", uid) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "pod uid too long");
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
    cJSON *vols = array_of(spec, "volumes");
    if (!vols)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "service account token");
    const cJSON *v;
    cJSON_ArrayForEach(v, vols)
    {
        const char *vn = drv_json_str(v, "name");
        if (vn && !strcmp(vn, POD_SATOKEN_VOLUME))
            return DRV_OK; /* given before (a desired state applied again) */
    }
    cJSON *s = cJSON_CreateObject(), *sm = NULL, *data = NULL;
    bool ok =
        s && cJSON_AddStringToObject(s, "apiVersion", "v1") &&
        cJSON_AddStringToObject(s, "kind", "Secret") &&
        cJSON_AddStringToObject(s, "type", "kubernetes.io/service-account-token") &&
        (sm = cJSON_AddObjectToObject(s, "metadata")) &&
        cJSON_AddStringToObject(sm, "name", name) && cJSON_AddStringToObject(sm, "namespace", ns) &&
        (data = cJSON_AddObjectToObject(s, "data")) &&
        add_b64(data, "token", token, strlen(token)) &&
        add_b64(data, "namespace", ns, strlen(ns)) && (!ca || add_b64(data, "ca.crt", ca, calen));
    cJSON *secrets = ok ? array_of(desired, "secrets") : NULL;
    if (!secrets || !cJSON_AddItemToArray(secrets, s)) {
        pod_secret_wipe_delete(s);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "service account token");
    }
    cJSON *vol = cJSON_CreateObject(), *src = NULL;
    ok = vol && cJSON_AddStringToObject(vol, "name", POD_SATOKEN_VOLUME) &&
         (src = cJSON_AddObjectToObject(vol, "secret")) &&
         cJSON_AddStringToObject(src, "secretName", name) &&
         cJSON_AddNumberToObject(src, "defaultMode", 0644) && cJSON_AddItemToArray(vols, vol);
    if (!ok) {
        cJSON_Delete(vol);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "service account token");
    }
    if (!add_to_containers(spec, host, port))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "service account token");
    return DRV_OK;
}

/* ---- projected volumes ---- */

/* The object of list (desired's configMaps or secrets) named ns/name, or NULL. */
static const cJSON *find_object(const cJSON *list, const char *ns, const char *name)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, list)
    {
        const cJSON *m = drv_json_get(o, "metadata");
        if (!strcmp(drv_json_str_or(m, "name", ""), name) &&
            !strcmp(drv_json_str_or(m, "namespace", "default"), ns))
            return o;
    }
    return NULL;
}

/* One file of a projected volume: data[<n>] = b64 (taken), items += {key <n>, path, mode}. */
static bool add_file(cJSON *data, cJSON *items, char *b64, const char *path, const cJSON *mode)
{
    char key[16];
    drv_fmt_cut(key, sizeof(key), "f%d", cJSON_GetArraySize(items));
    cJSON *s = b64 ? cJSON_CreateString(b64) : NULL, *it = cJSON_CreateObject();
    if (b64) {
        explicit_bzero(b64, strlen(b64));
        free(b64);
    }
    bool ok = s && it && cJSON_AddItemToObject(data, key, s);
    if (!ok)
        cJSON_Delete(s);
    ok = ok && cJSON_AddStringToObject(it, "key", key) &&
         cJSON_AddStringToObject(it, "path", path) &&
         (!cJSON_IsNumber(mode) || cJSON_AddNumberToObject(it, "mode", mode->valuedouble)) &&
         cJSON_AddItemToArray(items, it);
    if (!ok)
        cJSON_Delete(it);
    return ok;
}

/* The keys of a ConfigMap or an opened Secret (values base64 but a ConfigMap's data) as files:
 * its items, else every key under its own name. */
static bool add_keyed(cJSON *data, cJSON *items, const cJSON *obj, bool secret, const cJSON *src)
{
    const cJSON *want = drv_json_get(src, "items");
    const char *maps[2] = {secret ? NULL : "data", secret ? "data" : "binaryData"};
    for (int m = 0; m < 2; m++) {
        if (!maps[m])
            continue;
        const cJSON *kv;
        cJSON_ArrayForEach(kv, drv_json_get(obj, maps[m]))
        {
            if (!cJSON_IsString(kv))
                continue;
            const char *path = kv->string;
            const cJSON *mode = NULL;
            if (cJSON_GetArraySize(want) > 0) {
                path = NULL;
                const cJSON *it;
                cJSON_ArrayForEach(it, want)
                {
                    if (!strcmp(drv_json_str_or(it, "key", ""), kv->string)) {
                        path = drv_json_str(it, "path");
                        mode = drv_json_get(it, "mode");
                    }
                }
                if (!path)
                    continue;
            }
            /* a ConfigMap's data is text: base64 it as the Secret's data is */
            char *b64 = m == 0 ? drv_base64_encode(kv->valuestring, strlen(kv->valuestring))
                               : strdup(kv->valuestring);
            if (!add_file(data, items, b64, path, mode))
                return false;
        }
    }
    return true;
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* A downward API file's content: metadata.name, .namespace, .uid; labels and annotations as
 * sorted key="value" lines, as the kubelet writes them. */
static char *field_value(const cJSON *pod, const char *path)
{
    const cJSON *meta = drv_json_get(pod, "metadata");
    if (!strncmp(path, "metadata.", 9) && strcmp(path + 9, "labels") &&
        strcmp(path + 9, "annotations")) {
        const char *v = drv_json_str_or(meta, path + 9, "");
        return drv_base64_encode(v, strlen(v));
    }
    const cJSON *map = drv_json_get(meta, path + 9);
    const cJSON *kv, *sorted[512];
    size_t n = 0;
    cJSON_ArrayForEach(kv, map)
    {
        if (cJSON_IsString(kv) && n < sizeof(sorted) / sizeof(sorted[0]))
            sorted[n++] = kv;
    }
    qsort(sorted, n, sizeof(sorted[0]), cmp_keys);
    drv_buf_t b = DRV_BUF_INIT(256 * 1024);
    for (size_t i = 0; i < n; i++)
        if (drv_buf_printf(&b, "%s%s=\"%s\"", i ? "\n" : "", sorted[i]->string,
                           sorted[i]->valuestring) != DRV_OK)
            break;
    char *out = drv_base64_encode(b.data ? (const char *)b.data : "", b.len);
    drv_buf_free(&b);
    return out;
}

/* Turns each projected volume of pod into a secret volume over a clear Secret of its files
 * (kept on tmpfs like the token's): the token (if the pod has one), ConfigMap and Secret keys
 * (sealed ones opened with key_pem), downward API fields. A source that is missing leaves its
 * files out. */
static drv_err_t project(cJSON *desired, cJSON *pod, const char *token, const char *node,
                         const char *key_pem, drv_error_t *err)
{
    const cJSON *meta = drv_json_get(pod, "metadata");
    const char *ns = drv_json_str_or(meta, "namespace", "default");
    const char *uid = drv_json_str_or(meta, "uid", "");
    cJSON *v;
    cJSON_ArrayForEach(v, drv_json_get(drv_json_get(pod, "spec"), "volumes"))
    {
        cJSON *proj = drv_json_get(v, "projected");
        if (!proj)
            continue;
        char name[200];
        if (drv_fmt(name, sizeof(name), "drover-projected-%s-%s", uid,
                    drv_json_str_or(v, "name", "")) != DRV_OK)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "projected volume: name too long");
        cJSON *sec = cJSON_CreateObject(), *sm = NULL, *data = NULL, *vol = NULL;
        cJSON *items = cJSON_CreateArray();
        bool ok = sec && items && cJSON_AddStringToObject(sec, "apiVersion", "v1") &&
                  cJSON_AddStringToObject(sec, "kind", "Secret") &&
                  (sm = cJSON_AddObjectToObject(sec, "metadata")) &&
                  cJSON_AddStringToObject(sm, "name", name) &&
                  cJSON_AddStringToObject(sm, "namespace", ns) &&
                  (data = cJSON_AddObjectToObject(sec, "data"));
        const cJSON *src;
        const cJSON *sources = ok ? drv_json_get(proj, "sources") : NULL;
        cJSON_ArrayForEach(src, sources)
        {
            const cJSON *tok = drv_json_get(src, "serviceAccountToken");
            const cJSON *cm = drv_json_get(src, "configMap"), *sr = drv_json_get(src, "secret");
            const cJSON *dw = drv_json_get(src, "downwardAPI");
            if (tok && token)
                ok = add_file(data, items, drv_base64_encode(token, strlen(token)),
                              drv_json_str_or(tok, "path", "token"), NULL);
            if (ok && cm) {
                const cJSON *o = find_object(drv_json_get(desired, "configMaps"), ns,
                                             drv_json_str_or(cm, "name", ""));
                ok = !o || add_keyed(data, items, o, false, cm);
            }
            if (ok && sr) {
                const cJSON *o = find_object(drv_json_get(desired, "secrets"), ns,
                                             drv_json_str_or(sr, "name", ""));
                cJSON *open = o ? cJSON_Duplicate(o, true) : NULL;
                drv_error_t ue = DRV_ERROR_INIT;
                if (open && pod_secret_is_sealed(open) &&
                    (!key_pem || pod_secret_unseal(open, node, key_pem, &ue) != DRV_OK)) {
                    drv_log_warn("a projected Secret does not open; its files are left out",
                                 "pod=%s/%s error=\"%s\"", ns, drv_json_str_or(meta, "name", ""),
                                 drv_error_msg(&ue));
                    pod_secret_wipe_delete(open);
                    open = NULL;
                }
                ok = !open || add_keyed(data, items, open, true, sr);
                pod_secret_wipe_delete(open);
            }
            const cJSON *it, *ditems = ok && dw ? drv_json_get(dw, "items") : NULL;
            cJSON_ArrayForEach(it, ditems)
            {
                const char *fp = drv_json_str(drv_json_get(it, "fieldRef"), "fieldPath");
                if (fp && ok)
                    ok = add_file(data, items, field_value(pod, fp),
                                  drv_json_str_or(it, "path", ""), drv_json_get(it, "mode"));
            }
        }
        cJSON *secrets = ok ? array_of(desired, "secrets") : NULL;
        if (!secrets || !cJSON_AddItemToArray(secrets, sec)) {
            pod_secret_wipe_delete(sec);
            cJSON_Delete(items);
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "projected volume");
        }
        const cJSON *mode = drv_json_get(proj, "defaultMode");
        vol = cJSON_CreateObject();
        ok = vol && cJSON_AddStringToObject(vol, "secretName", name) &&
             cJSON_AddNumberToObject(vol, "defaultMode",
                                     cJSON_IsNumber(mode) ? mode->valuedouble : 0644) &&
             cJSON_AddItemToObject(vol, "items", items);
        if (!ok) {
            cJSON_Delete(vol);
            cJSON_Delete(items);
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "projected volume");
        }
        cJSON_DeleteItemFromObjectCaseSensitive(v, "projected");
        cJSON_AddItemToObject(v, "secret", vol);
    }
    return DRV_OK;
}

static bool any_projected(const cJSON *pods)
{
    const cJSON *p, *v;
    cJSON_ArrayForEach(p, pods)
    {
        cJSON_ArrayForEach(v, drv_json_get(drv_json_get(p, "spec"), "volumes"))
        {
            if (drv_json_get(v, "projected"))
                return true;
        }
    }
    return false;
}

drv_err_t pod_satoken_apply(cJSON *desired, const char *state_dir, const char *node,
                            const char *hub_url, drv_error_t *err)
{
    cJSON *toks = cJSON_DetachItemFromObjectCaseSensitive(desired, "serviceAccountTokens");
    if (cJSON_GetArraySize(toks) == 0 && !any_projected(drv_json_get(desired, "pods"))) {
        cJSON_Delete(toks);
        return DRV_OK;
    }
    char host[256] = "", port[16] = "";
    if (hub_url && *hub_url && !split_url(hub_url, host, sizeof(host), port, sizeof(port))) {
        drv_log_warn("hub.url names no host and port: pods get no KUBERNETES_SERVICE_HOST",
                     "url=%s", hub_url);
        host[0] = port[0] = '\0';
    }
    char path[600];
    char *key = NULL, *ca = NULL;
    size_t keylen = 0, calen = 0;
    drv_error_t e = DRV_ERROR_INIT;
    if (drv_fmt(path, sizeof(path), "%s/%s", state_dir, POD_NODE_KEY) == DRV_OK &&
        drv_file_read_capped(path, KEY_MAX, &key, &keylen, &e) != DRV_OK)
        key = NULL; /* clear tokens still work (a broker without TLS) */
    if (drv_fmt(path, sizeof(path), "%s/%s", state_dir, POD_SATOKEN_CA) == DRV_OK &&
        drv_file_read_capped(path, CA_MAX, &ca, &calen, &e) != DRV_OK)
        ca = NULL;
    cJSON *pods = cJSON_GetObjectItemCaseSensitive(desired, "pods");
    drv_err_t r = DRV_OK;
    /* pod uid -> its token, for its projected volumes (wiped below) */
    cJSON *by_pod = cJSON_CreateObject();
    if (!by_pod)
        r = drv_error_set(err, DRV_ERR_NOMEM, 0, "service account tokens");
    const cJSON *t, *entries = r == DRV_OK ? toks : NULL;
    cJSON_ArrayForEach(t, entries)
    {
        char uid[65];
        char *token = NULL;
        drv_error_t te = DRV_ERROR_INIT;
        if (drv_proto_satoken_open(t, node, key, uid, &token, &te) != DRV_OK) {
            drv_log_warn("a service account token does not open; its pod runs without it",
                         "error=\"%s\"", drv_error_msg(&te));
            continue;
        }
        cJSON *pod = find_pod(pods, uid);
        /* "automount": false: for the pod's projected volumes only */
        if (pod && !cJSON_IsFalse(drv_json_get(t, "automount")))
            r = give(desired, pod, uid, token, ca, calen, host, port, err);
        if (pod && r == DRV_OK && !cJSON_AddStringToObject(by_pod, uid, token))
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "service account tokens");
        explicit_bzero(token, strlen(token));
        free(token);
        if (r != DRV_OK)
            break;
    }
    cJSON *pod, *all = r == DRV_OK ? pods : NULL;
    cJSON_ArrayForEach(pod, all)
    {
        const char *uid = drv_json_str(drv_json_get(pod, "metadata"), "uid");
        r = project(desired, pod, uid ? drv_json_str(by_pod, uid) : NULL, node, key, err);
        if (r != DRV_OK)
            break;
    }
    pod_secret_wipe_delete(by_pod);
    if (key)
        drv_pki_wipe_free(key, keylen);
    free(ca);
    pod_secret_wipe_delete(toks); /* tokens in clear (a broker without TLS) included */
    return r;
}
