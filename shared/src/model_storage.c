/* PersistentVolumeClaim, PersistentVolume (v1) and StorageClass (storage.k8s.io/v1) validation
 * and defaults, as Kubernetes validates them (pkg/apis/core/validation, pkg/apis/storage), cut to
 * what Drover runs: node-local directories (the built-in provisioner drover.io/local-path, or
 * hostPath/local PVs made by hand). Valid Kubernetes that needs shared or block storage
 * (ReadWriteMany, volumeMode Block, nfs, csi, ...) is refused by name, with the reason. */
#include <string.h>

#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/names.h"
#include "drover/quantity.h"
#include "model_int.h"

static const char access_modes[] = "ReadWriteOnce\0"
                                   "ReadOnlyMany\0"
                                   "ReadWriteOncePod\0"
                                   "ReadWriteMany\0";

/* spec.accessModes: at least one, each known; ReadWriteMany refused (a directory on one
 * device cannot be written from several); ReadWriteOncePod alone. */
static void v_access_modes(vctx_t *c, cJSON *spec)
{
    cJSON *a = v_arr(c, spec, "accessModes", true);
    if (!a)
        return;
    size_t old = v_push_key(c, "accessModes"), i = 0, n = (size_t)cJSON_GetArraySize(a);
    if (n == 0)
        v_fail(c, "at least 1 access mode is required");
    bool rwop = false;
    for (cJSON *e = a->child; e; e = e->next, i++) {
        size_t o2 = v_push_index(c, i);
        const char *m = cJSON_IsString(e) ? e->valuestring : NULL;
        bool known = false;
        for (const char *k = access_modes; m && *k; k += strlen(k) + 1)
            known = known || !strcmp(k, m);
        if (!m)
            v_fail(c, "must be a string");
        else if (!known)
            v_fail(c,
                   "unsupported value \"%.64s\": must be one of \"ReadWriteOnce\", "
                   "\"ReadOnlyMany\", \"ReadWriteOncePod\"",
                   m);
        else if (!strcmp(m, "ReadWriteMany"))
            v_fail(c, "ReadWriteMany is not supported by Drover: its volumes are directories on "
                      "one device (node-local); use ReadWriteOnce");
        else if (!strcmp(m, "ReadWriteOncePod"))
            rwop = true;
        v_pop(c, o2);
    }
    if (rwop && n > 1)
        v_fail(c, "may not use ReadWriteOncePod with other access modes");
    v_pop(c, old);
}

/* map.storage: a quantity of bytes, canonical on return; *bytes gets it. */
static bool v_storage_qty(vctx_t *c, cJSON *map, bool required, int64_t *bytes)
{
    cJSON *m = drv_json_get(map, "storage");
    if (!m) {
        if (required)
            v_failk(c, "storage", "required");
        return false;
    }
    size_t old = v_push_key(c, "storage");
    char text[64];
    if (cJSON_IsNumber(m) && drv_fmt_double(text, sizeof(text), m->valuedouble) != DRV_OK)
        v_fail(c, "invalid quantity: too long");
    else if (!cJSON_IsNumber(m) && !cJSON_IsString(m))
        v_fail(c, "must be a quantity such as 1Gi");
    else {
        const char *s = cJSON_IsString(m) ? m->valuestring : text;
        drv_error_t err = DRV_ERROR_INIT;
        drv_qty_format_t fmt;
        char canon[64];
        if (drv_qty_parse_memory(s, bytes, &fmt, &err) != DRV_OK)
            v_fail(c, "invalid quantity \"%.32s\": %s", s, drv_error_msg(&err));
        else if (*bytes <= 0)
            v_fail(c, "must be greater than zero");
        else if (drv_qty_format_memory(*bytes, fmt, canon, sizeof(canon)) != DRV_OK)
            v_fail(c, "invalid quantity \"%.32s\": cannot be represented", s);
        else {
            v_pop(c, old);
            v_set_str(c, map, "storage", canon);
            return true;
        }
    }
    v_pop(c, old);
    return false;
}

/* A resource list (requests, limits, capacity) that holds only storage. */
static void v_storage_map(vctx_t *c, cJSON *parent, const char *key, bool required)
{
    cJSON *m = v_obj(c, parent, key, required);
    if (!m)
        return;
    size_t old = v_push_key(c, key);
    for (cJSON *e = m->child; e; e = e->next)
        if (strcmp(e->string, "storage")) {
            size_t o2 = v_push_mapkey(c, e->string);
            v_fail(c, "unsupported resource: a volume has only storage");
            v_pop(c, o2);
        }
    int64_t bytes;
    v_storage_qty(c, m, required, &bytes);
    v_pop(c, old);
}

static void v_volume_mode(vctx_t *c, cJSON *spec)
{
    const char *vm = v_str(c, spec, "volumeMode", false);
    if (vm && !strcmp(vm, "Block"))
        v_failk(c, "volumeMode",
                "Block is not supported by Drover: its volumes are directories (Filesystem)");
    else if (vm && strcmp(vm, "Filesystem"))
        v_failk(c, "volumeMode", "unsupported value \"%.64s\": must be \"Filesystem\"", vm);
    v_default_str(c, spec, "volumeMode", "Filesystem");
}

static void v_class_name(vctx_t *c, cJSON *spec)
{
    const char *s = v_str(c, spec, "storageClassName", false);
    char why[512];
    /* "" asks for no class (a PV made by hand without one), as in Kubernetes. */
    if (s && *s && !drv_name_dns_subdomain(s, why, sizeof(why)))
        v_failk(c, "storageClassName", "invalid value \"%.64s\": %s", s, why);
}

/* ---- PersistentVolumeClaim ---- */

void v_pvc_spec(vctx_t *c, cJSON *spec)
{
    static const char known[] = "accessModes\0"
                                "resources\0"
                                "storageClassName\0"
                                "volumeName\0"
                                "volumeMode\0";
    static const char unsupported[] = "selector\0"
                                      "dataSource\0"
                                      "dataSourceRef\0"
                                      "volumeAttributesClassName\0";
    v_fields(c, spec, known, NULL, unsupported);
    v_access_modes(c, spec);
    cJSON *res = v_obj(c, spec, "resources", true);
    if (res) {
        static const char rknown[] = "requests\0"
                                     "limits\0";
        size_t old = v_push_key(c, "resources");
        v_fields(c, res, rknown, NULL, NULL);
        v_storage_map(c, res, "requests", true);
        v_storage_map(c, res, "limits", false);
        v_pop(c, old);
    }
    v_class_name(c, spec);
    v_name(c, spec, "volumeName", false, drv_name_dns_subdomain);
    v_volume_mode(c, spec);
}

/* ---- PersistentVolume ---- */

/* nodeAffinity.required.nodeSelectorTerms[].matchExpressions: the node a local volume lives
 * on (the provisioner writes kubernetes.io/hostname In [node]). */
static void v_node_selector_term(vctx_t *c, cJSON *term)
{
    static const char known[] = "matchExpressions\0"
                                "matchFields\0";
    static const char ops[] = "In\0"
                              "NotIn\0"
                              "Exists\0"
                              "DoesNotExist\0"
                              "Gt\0"
                              "Lt\0";
    v_fields(c, term, known, NULL, NULL);
    for (const char *key = "matchExpressions"; key;
         key = !strcmp(key, "matchExpressions") ? "matchFields" : NULL) {
        cJSON *a = v_arr(c, term, key, false);
        size_t old = v_push_key(c, key), i = 0;
        for (cJSON *e = a ? a->child : NULL; e; e = e->next, i++) {
            static const char eknown[] = "key\0"
                                         "operator\0"
                                         "values\0";
            size_t o2 = v_push_index(c, i);
            if (!cJSON_IsObject(e)) {
                v_fail(c, "must be an object");
            } else {
                v_fields(c, e, eknown, NULL, NULL);
                v_name(c, e, "key", true, drv_name_label_key);
                const char *op = v_enum(c, e, "operator", true, ops);
                v_str_list(c, e, "values", false);
                int nv = cJSON_GetArraySize(drv_json_get(e, "values"));
                if (op && (!strcmp(op, "In") || !strcmp(op, "NotIn")) && nv == 0)
                    v_failk(c, "values", "must be specified when the operator is %s", op);
                if (op && (!strcmp(op, "Exists") || !strcmp(op, "DoesNotExist")) && nv > 0)
                    v_failk(c, "values", "may not be specified when the operator is %s", op);
                if (op && (!strcmp(op, "Gt") || !strcmp(op, "Lt")) && nv != 1)
                    v_failk(c, "values", "must be one value when the operator is %s", op);
            }
            v_pop(c, o2);
        }
        v_pop(c, old);
    }
}

static void v_pv_node_affinity(vctx_t *c, cJSON *spec)
{
    cJSON *na = v_obj(c, spec, "nodeAffinity", false);
    if (!na)
        return;
    static const char known[] = "required\0";
    size_t old = v_push_key(c, "nodeAffinity");
    v_fields(c, na, known, NULL, NULL);
    cJSON *req = v_obj(c, na, "required", true);
    if (req) {
        static const char rknown[] = "nodeSelectorTerms\0";
        size_t o1 = v_push_key(c, "required");
        v_fields(c, req, rknown, NULL, NULL);
        cJSON *terms = v_arr(c, req, "nodeSelectorTerms", true);
        size_t o2 = v_push_key(c, "nodeSelectorTerms"), i = 0;
        if (terms && cJSON_GetArraySize(terms) == 0)
            v_fail(c, "must have at least one node selector term");
        for (cJSON *t = terms ? terms->child : NULL; t; t = t->next, i++) {
            size_t o3 = v_push_index(c, i);
            if (!cJSON_IsObject(t))
                v_fail(c, "must be an object");
            else
                v_node_selector_term(c, t);
            v_pop(c, o3);
        }
        v_pop(c, o2);
        v_pop(c, o1);
    }
    v_pop(c, old);
}

static void v_claim_ref(vctx_t *c, cJSON *spec)
{
    cJSON *ref = v_obj(c, spec, "claimRef", false);
    if (!ref)
        return;
    static const char known[] = "apiVersion\0"
                                "kind\0"
                                "name\0"
                                "namespace\0"
                                "uid\0"
                                "resourceVersion\0"
                                "fieldPath\0";
    size_t old = v_push_key(c, "claimRef");
    v_fields(c, ref, known, NULL, NULL);
    v_name(c, ref, "name", true, drv_name_dns_subdomain);
    v_name(c, ref, "namespace", true, drv_name_dns_label);
    const char *kind = v_str(c, ref, "kind", false);
    if (kind && *kind && strcmp(kind, "PersistentVolumeClaim"))
        v_failk(c, "kind", "must be PersistentVolumeClaim, not \"%.64s\"", kind);
    v_str(c, ref, "apiVersion", false);
    v_str(c, ref, "uid", false);
    v_str(c, ref, "resourceVersion", false);
    v_str(c, ref, "fieldPath", false);
    v_pop(c, old);
}

void v_pv_spec(vctx_t *c, cJSON *spec)
{
    static const char known[] = "capacity\0"
                                "accessModes\0"
                                "persistentVolumeReclaimPolicy\0"
                                "storageClassName\0"
                                "volumeMode\0"
                                "claimRef\0"
                                "nodeAffinity\0"
                                "hostPath\0"
                                "local\0";
    static const char unsupported[] = "mountOptions\0"
                                      "nfs\0"
                                      "csi\0"
                                      "iscsi\0"
                                      "awsElasticBlockStore\0"
                                      "azureDisk\0"
                                      "azureFile\0"
                                      "cephfs\0"
                                      "cinder\0"
                                      "fc\0"
                                      "flexVolume\0"
                                      "flocker\0"
                                      "gcePersistentDisk\0"
                                      "glusterfs\0"
                                      "photonPersistentDisk\0"
                                      "portworxVolume\0"
                                      "quobyte\0"
                                      "rbd\0"
                                      "scaleIO\0"
                                      "storageos\0"
                                      "vsphereVolume\0"
                                      "volumeAttributesClassName\0";
    static const char policies[] = "Retain\0"
                                   "Delete\0"
                                   "Recycle\0";
    v_fields(c, spec, known, NULL, unsupported);
    v_storage_map(c, spec, "capacity", true);
    v_access_modes(c, spec);
    const char *rp = v_enum(c, spec, "persistentVolumeReclaimPolicy", false, policies);
    if (rp && !strcmp(rp, "Recycle"))
        v_failk(c, "persistentVolumeReclaimPolicy",
                "Recycle is not supported by Drover (deprecated in Kubernetes): use Delete or "
                "Retain");
    /* Kubernetes' default for a PV made by hand; the provisioner writes its class's. */
    v_default_str(c, spec, "persistentVolumeReclaimPolicy", "Retain");
    v_class_name(c, spec);
    v_volume_mode(c, spec);
    v_claim_ref(c, spec);
    v_pv_node_affinity(c, spec);
    int sources = 0;
    cJSON *hp = v_obj(c, spec, "hostPath", false);
    if (hp) {
        static const char hknown[] = "path\0"
                                     "type\0";
        static const char types[] = V_EMPTY_OK "DirectoryOrCreate\0"
                                               "Directory\0";
        sources++;
        size_t old = v_push_key(c, "hostPath");
        v_fields(c, hp, hknown, NULL, NULL);
        v_abspath(c, hp, "path", true);
        v_enum(c, hp, "type", false, types);
        v_pop(c, old);
    }
    cJSON *lo = v_obj(c, spec, "local", false);
    if (lo) {
        static const char lknown[] = "path\0"
                                     "fsType\0";
        sources++;
        size_t old = v_push_key(c, "local");
        v_fields(c, lo, lknown, NULL, NULL);
        v_abspath(c, lo, "path", true);
        const char *fs = v_str(c, lo, "fsType", false);
        if (fs && *fs)
            v_failk(c, "fsType", "not supported by Drover: a local volume is a directory");
        v_pop(c, old);
        if (!drv_json_get(spec, "nodeAffinity"))
            v_failk(c, "nodeAffinity", "required for a local volume");
    }
    if (sources != 1)
        v_fail(c, "must specify exactly one volume source: hostPath or local");
}

/* ---- StorageClass ---- */

void v_storageclass(vctx_t *c, cJSON *obj)
{
    static const char known[] = "apiVersion\0"
                                "kind\0"
                                "metadata\0"
                                "provisioner\0"
                                "parameters\0"
                                "reclaimPolicy\0"
                                "volumeBindingMode\0"
                                "allowVolumeExpansion\0";
    static const char unsupported[] = "mountOptions\0"
                                      "allowedTopologies\0";
    static const char policies[] = "Delete\0"
                                   "Retain\0"
                                   "Recycle\0";
    static const char modes[] = "Immediate\0"
                                "WaitForFirstConsumer\0";
    v_fields(c, obj, known, NULL, unsupported);
    const char *p = v_str(c, obj, "provisioner", true);
    char why[512];
    if (p && *p && !drv_name_dns_subdomain(p, why, sizeof(why)) &&
        !drv_name_label_key(p, why, sizeof(why)))
        v_failk(c, "provisioner", "invalid value \"%.64s\": %s", p, why);
    v_str_map(c, obj, "parameters", NULL, NULL);
    const char *rp = v_enum(c, obj, "reclaimPolicy", false, policies);
    if (rp && !strcmp(rp, "Recycle"))
        v_failk(c, "reclaimPolicy",
                "Recycle is not supported by Drover (deprecated in Kubernetes): use Delete or "
                "Retain");
    v_default_str(c, obj, "reclaimPolicy", "Delete");
    v_enum(c, obj, "volumeBindingMode", false, modes);
    v_default_str(c, obj, "volumeBindingMode", "Immediate");
    bool expand = false;
    if (v_bool(c, obj, "allowVolumeExpansion", &expand) && expand)
        v_failk(c, "allowVolumeExpansion",
                "true is not supported by Drover: a node-local volume is a directory without a "
                "size to grow");
}

void drv_model_pvc_keep_binding(const cJSON *old, cJSON *obj)
{
    const cJSON *os = drv_json_get(old, "spec");
    cJSON *spec = drv_json_get(obj, "spec");
    if (!cJSON_IsObject(os) || !cJSON_IsObject(spec))
        return;
    static const char *const keys[] = {"volumeName", "storageClassName"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const cJSON *v = drv_json_get(os, keys[i]);
        if (cJSON_IsString(v) && *v->valuestring && !drv_json_get(spec, keys[i]))
            cJSON_AddItemToObject(spec, keys[i], cJSON_CreateString(v->valuestring));
    }
}
