/* Secrets at rest and in use on the device (see secrets.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/file.h"
#include "drover/json.h"
#include "drover/model.h"
#include "drover/pki.h"
#include "drover/protocol.h"
#include "pod/secrets.h"

#define NODE_KEY_MAX (16u * 1024)

bool pod_secret_is_sealed(const cJSON *secret)
{
    return drv_json_str(secret, "sealedData") != NULL;
}

static void wipe_strings(cJSON *item)
{
    for (cJSON *c = item; c; c = c->next) {
        if (c->valuestring)
            explicit_bzero(c->valuestring, strlen(c->valuestring));
        if (c->child && !(c->type & cJSON_IsReference))
            wipe_strings(c->child);
    }
}

void pod_secret_wipe_delete(cJSON *item)
{
    if (!item)
        return;
    if (item->valuestring)
        explicit_bzero(item->valuestring, strlen(item->valuestring));
    if (!(item->type & cJSON_IsReference))
        wipe_strings(item->child);
    cJSON_Delete(item);
}

static bool ref_names(const cJSON *ref, const char *field, const char *name)
{
    const char *n = drv_json_str(ref, field);
    return n && !strcmp(n, name);
}

static bool container_uses(const cJSON *list, const char *name)
{
    for (const cJSON *c = cJSON_IsArray(list) ? list->child : NULL; c; c = c->next) {
        const cJSON *env = drv_json_get(c, "env");
        for (const cJSON *e = cJSON_IsArray(env) ? env->child : NULL; e; e = e->next)
            if (ref_names(drv_json_get(drv_json_get(e, "valueFrom"), "secretKeyRef"), "name", name))
                return true;
        const cJSON *from = drv_json_get(c, "envFrom");
        for (const cJSON *e = cJSON_IsArray(from) ? from->child : NULL; e; e = e->next)
            if (ref_names(drv_json_get(e, "secretRef"), "name", name))
                return true;
    }
    return false;
}

bool pod_uses_secret(const cJSON *pod, const char *name)
{
    const cJSON *spec = drv_json_get(pod, "spec");
    const cJSON *vols = drv_json_get(spec, "volumes");
    for (const cJSON *v = cJSON_IsArray(vols) ? vols->child : NULL; v; v = v->next)
        if (ref_names(drv_json_get(v, "secret"), "secretName", name))
            return true;
    const cJSON *ips = drv_json_get(spec, "imagePullSecrets");
    for (const cJSON *s = cJSON_IsArray(ips) ? ips->child : NULL; s; s = s->next)
        if (ref_names(s, "name", name))
            return true;
    return container_uses(drv_json_get(spec, "initContainers"), name) ||
           container_uses(drv_json_get(spec, "containers"), name);
}

drv_err_t pod_secret_unseal(cJSON *secret, const char *node, const char *key_pem, drv_error_t *err)
{
    if (!pod_secret_is_sealed(secret))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "sealedData: required");
    cJSON *copy = cJSON_Duplicate(secret, 1);
    if (!copy)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "secret");
    drv_err_t r = drv_proto_secret_unseal(copy, node, key_pem, err);
    /* The hub may seal stringData as well: folded into data (base64) like any Secret. */
    drv_diags_t d = {0};
    if (r == DRV_OK && drv_model_normalize(copy, &d) != DRV_OK)
        r = drv_error_set(err, DRV_ERR_INVALID, 0,
                          "sealedData: the opened content is not a valid Secret's data");
    drv_diags_free(&d);
    if (r != DRV_OK) {
        pod_secret_wipe_delete(copy);
        return r;
    }
    /* In place: the opened members replace the sealed one. */
    cJSON_DeleteItemFromObjectCaseSensitive(secret, "sealedData");
    pod_secret_wipe_delete(cJSON_DetachItemFromObjectCaseSensitive(secret, "data"));
    cJSON *data = cJSON_DetachItemFromObjectCaseSensitive(copy, "data");
    if (data)
        cJSON_AddItemToObject(secret, "data", data);
    pod_secret_wipe_delete(copy);
    return DRV_OK;
}

/* The node's key, read only when a sealed Secret is to be opened (wipe with
 * drv_pki_wipe_free(*key, *len)). */
static drv_err_t read_key(const char *path, char **key, size_t *len, drv_error_t *err)
{
    if (!path || !path[0])
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "this node has no key (not enrolled)");
    drv_err_t r = drv_file_read_capped(path, NODE_KEY_MAX, key, len, err);
    if (r != DRV_OK)
        return drv_error_wrap(err, "this node's key (not enrolled?)");
    return DRV_OK;
}

drv_err_t pod_secrets_open(const cJSON *secrets_ns, const cJSON *pod, const char *node,
                           const char *key_path, cJSON **out, drv_error_t *err)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "secrets");
    char *key = NULL;
    size_t keylen = 0;
    drv_err_t r = DRV_OK;
    for (const cJSON *s = cJSON_IsObject(secrets_ns) ? secrets_ns->child : NULL; s && r == DRV_OK;
         s = s->next) {
        if (!s->string)
            continue;
        if (!pod_secret_is_sealed(s)) {
            cJSON *ref = cJSON_CreateObjectReference(s->child);
            if (!ref || !cJSON_AddItemToObject(o, s->string, ref)) {
                cJSON_Delete(ref);
                r = drv_error_set(err, DRV_ERR_NOMEM, 0, "secret \"%s\"", s->string);
            }
            continue;
        }
        if (!pod_uses_secret(pod, s->string))
            continue;
        if (!key && (r = read_key(key_path, &key, &keylen, err)) != DRV_OK) {
            const char *ns =
                cJSON_GetStringValue(drv_json_get(drv_json_get(s, "metadata"), "namespace"));
            (void)drv_error_wrap(err, "Secret %s/%s: sealedData", ns ? ns : "default", s->string);
            break;
        }
        cJSON *copy = r == DRV_OK ? cJSON_Duplicate(s, 1) : NULL;
        if (r == DRV_OK && !copy)
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "secret");
        if (r == DRV_OK)
            r = pod_secret_unseal(copy, node, key, err);
        if (r != DRV_OK) {
            pod_secret_wipe_delete(copy);
            break;
        }
        cJSON_AddItemToObject(o, s->string, copy);
    }
    if (key)
        drv_pki_wipe_free(key, keylen);
    if (r != DRV_OK) {
        pod_secrets_release(o);
        return r;
    }
    *out = o;
    return DRV_OK;
}

void pod_secrets_release(cJSON *opened)
{
    if (!opened)
        return;
    for (cJSON *c = opened->child; c; c = c->next)
        if (!(c->type & cJSON_IsReference))
            wipe_strings(c->child);
    cJSON_Delete(opened);
}
