/* Pods' service account tokens on the device (satoken.h). */
#include "pod/satoken.h"

#include <stdlib.h>
#include <string.h>

#include "drover/base64.h"
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

drv_err_t pod_satoken_apply(cJSON *desired, const char *state_dir, const char *node,
                            const char *hub_url, drv_error_t *err)
{
    cJSON *toks = cJSON_DetachItemFromObjectCaseSensitive(desired, "serviceAccountTokens");
    if (cJSON_GetArraySize(toks) == 0) {
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
    const cJSON *t;
    cJSON_ArrayForEach(t, toks)
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
        if (pod)
            r = give(desired, pod, uid, token, ca, calen, host, port, err);
        explicit_bzero(token, strlen(token));
        free(token);
        if (r != DRV_OK)
            break;
    }
    if (key)
        drv_pki_wipe_free(key, keylen);
    free(ca);
    pod_secret_wipe_delete(toks); /* tokens in clear (a broker without TLS) included */
    return r;
}
