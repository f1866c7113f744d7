/* StatefulSet validation (apps/v1): the spec's fields with Kubernetes' defaults, the pod
 * template checked with its claim templates counted as volumes, and each volumeClaimTemplate
 * checked as the PersistentVolumeClaim it becomes (by the model's own PVC rules). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/names.h"
#include "model_int.h"

/* Checks tpl (a volumeClaimTemplates element) as the claim it becomes: the PVC kind's own
 * validation, run on a copy, its problems reported under the element's path. */
static void v_claim_template(vctx_t *c, cJSON *tpl)
{
    static const char known[] = "apiVersion\0"
                                "kind\0"
                                "metadata\0"
                                "spec\0";
    static const char ignored[] = "status\0";
    v_fields(c, tpl, known, ignored, NULL);
    cJSON *meta = v_obj(c, tpl, "metadata", true);
    if (meta) {
        size_t old = v_push_key(c, "metadata");
        /* The name is the volume's name in the pod template: a DNS label. */
        v_name(c, meta, "name", true, drv_name_dns_label);
        v_pop(c, old);
    }
    cJSON *spec = v_obj(c, tpl, "spec", true);
    const char *name = drv_json_str(meta, "name");
    if (!meta || !spec || !name)
        return;
    cJSON *pvc = cJSON_CreateObject(), *pmeta = NULL;
    bool ok = pvc && cJSON_AddStringToObject(pvc, "apiVersion", "v1") &&
              cJSON_AddStringToObject(pvc, "kind", "PersistentVolumeClaim") &&
              (pmeta = cJSON_AddObjectToObject(pvc, "metadata")) &&
              cJSON_AddStringToObject(pmeta, "name", name) &&
              cJSON_AddItemToObject(pvc, "spec", cJSON_Duplicate(spec, true));
    cJSON *labels = drv_json_get(meta, "labels"), *ann = drv_json_get(meta, "annotations");
    if (ok && labels)
        ok = cJSON_AddItemToObject(pmeta, "labels", cJSON_Duplicate(labels, true));
    if (ok && ann)
        ok = cJSON_AddItemToObject(pmeta, "annotations", cJSON_Duplicate(ann, true));
    if (!ok) {
        cJSON_Delete(pvc);
        c->nomem = true;
        return;
    }
    drv_diags_t d = {0};
    drv_err_t r = drv_model_normalize(pvc, &d);
    if (r == DRV_ERR_NOMEM) {
        c->nomem = true;
    } else if (r != DRV_OK) {
        for (size_t i = 0; i < d.count; i++) {
            const char *p = d.items[i].path;
            if (!strcmp(p, "kind"))
                v_fail(c, "volume claim templates need the PersistentVolumeClaim kind: %s",
                       d.items[i].msg);
            else if (!strncmp(p, "metadata", 8) || !strncmp(p, "spec", 4))
                v_failk(c, p, "%s", d.items[i].msg);
            else
                v_fail(c, "%s%s%s", p, *p ? ": " : "", d.items[i].msg);
        }
        if (!d.count)
            v_fail(c, "invalid claim template");
    } else {
        /* Keep the claim's defaults (storage class, volume mode) in the template. */
        cJSON *nspec = cJSON_DetachItemFromObjectCaseSensitive(pvc, "spec");
        if (!nspec || !cJSON_ReplaceItemInObjectCaseSensitive(tpl, "spec", nspec)) {
            cJSON_Delete(nspec);
            c->nomem = true;
        }
    }
    drv_diags_free(&d);
    cJSON_Delete(pvc);
}

/* Adds a placeholder volume to the template's pod spec for each claim template that has no
 * volume of its name, so that the template's volumeMounts may name claims (the controller puts
 * the claim there); returns how many it added, at the end of spec.volumes. */
static size_t add_claim_volumes(vctx_t *c, cJSON *podspec, const cJSON *claims)
{
    if (!cJSON_IsObject(podspec) || !cJSON_IsArray(claims))
        return 0;
    cJSON *vols = drv_json_get(podspec, "volumes");
    if (vols && !cJSON_IsArray(vols))
        return 0; /* the pod spec's own check reports it */
    size_t added = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, claims)
    {
        const char *name = drv_json_str(drv_json_get(t, "metadata"), "name");
        if (!name)
            continue;
        bool have = false;
        const cJSON *v;
        cJSON_ArrayForEach(v, vols)
        {
            const char *vn = drv_json_str(v, "name");
            have = have || (vn && !strcmp(vn, name));
        }
        if (have)
            continue;
        if (!vols && !(vols = cJSON_AddArrayToObject(podspec, "volumes"))) {
            c->nomem = true;
            return added;
        }
        cJSON *pv = cJSON_CreateObject();
        if (!pv || !cJSON_AddStringToObject(pv, "name", name) ||
            !cJSON_AddObjectToObject(pv, "emptyDir") || !cJSON_AddItemToArray(vols, pv)) {
            cJSON_Delete(pv);
            c->nomem = true;
            return added;
        }
        added++;
    }
    return added;
}

static void drop_claim_volumes(cJSON *podspec, size_t added)
{
    cJSON *vols = drv_json_get(podspec, "volumes");
    for (size_t i = 0; i < added && cJSON_IsArray(vols); i++)
        cJSON_DeleteItemFromArray(vols, cJSON_GetArraySize(vols) - 1);
    if (added && cJSON_IsArray(vols) && !vols->child)
        cJSON_DeleteItemFromObjectCaseSensitive(podspec, "volumes");
}

static void v_sts_strategy(vctx_t *c, cJSON *spec)
{
    static const char types[] = "RollingUpdate\0"
                                "OnDelete\0";
    cJSON *st = v_obj(c, spec, "updateStrategy", false);
    if (!st && !drv_json_get(spec, "updateStrategy") &&
        !(st = cJSON_AddObjectToObject(spec, "updateStrategy"))) {
        c->nomem = true;
        return;
    }
    if (!st)
        return;
    static const char known[] = "type\0"
                                "rollingUpdate\0";
    size_t old = v_push_key(c, "updateStrategy");
    v_fields(c, st, known, NULL, NULL);
    bool had_type = drv_json_get(st, "type") != NULL;
    const char *type = v_enum(c, st, "type", false, types);
    v_default_str(c, st, "type", "RollingUpdate");
    if (type && !strcmp(type, "OnDelete")) {
        if (drv_json_get(st, "rollingUpdate"))
            v_failk(c, "rollingUpdate", "only allowed for updateStrategy 'RollingUpdate'");
    } else if (type || !had_type) {
        cJSON *ru = v_obj(c, st, "rollingUpdate", false);
        if (!ru && !drv_json_get(st, "rollingUpdate") &&
            !(ru = cJSON_AddObjectToObject(st, "rollingUpdate")))
            c->nomem = true;
        if (ru) {
            static const char rknown[] = "partition\0";
            /* maxUnavailable is behind Kubernetes' alpha MaxUnavailableStatefulSet gate, off
             * by default: pods are updated one at a time, as Kubernetes does without it. It is
             * refused here with that reason (and dropped, so it is said once). */
            static const char rdropped[] = "maxUnavailable\0";
            size_t o2 = v_push_key(c, "rollingUpdate");
            if (drv_json_get(ru, "maxUnavailable"))
                v_failk(c, "maxUnavailable",
                        "not supported by Drover (an alpha feature of Kubernetes): pods are "
                        "updated one at a time");
            v_fields(c, ru, rknown, rdropped, NULL);
            v_int(c, ru, "partition", false, 0, INT32_MAX, NULL);
            v_default_int(c, ru, "partition", 0);
            v_pop(c, o2);
        }
    }
    v_pop(c, old);
}

static void v_retention(vctx_t *c, cJSON *spec)
{
    static const char values[] = "Retain\0"
                                 "Delete\0";
    cJSON *p = v_obj(c, spec, "persistentVolumeClaimRetentionPolicy", false);
    if (!p && !drv_json_get(spec, "persistentVolumeClaimRetentionPolicy") &&
        !(p = cJSON_AddObjectToObject(spec, "persistentVolumeClaimRetentionPolicy"))) {
        c->nomem = true;
        return;
    }
    if (!p)
        return;
    static const char known[] = "whenDeleted\0"
                                "whenScaled\0";
    size_t old = v_push_key(c, "persistentVolumeClaimRetentionPolicy");
    v_fields(c, p, known, NULL, NULL);
    v_enum(c, p, "whenDeleted", false, values);
    v_default_str(c, p, "whenDeleted", "Retain");
    v_enum(c, p, "whenScaled", false, values);
    v_default_str(c, p, "whenScaled", "Retain");
    v_pop(c, old);
}

void v_statefulset_spec(vctx_t *c, cJSON *spec)
{
    static const char known[] = "replicas\0"
                                "selector\0"
                                "template\0"
                                "serviceName\0"
                                "volumeClaimTemplates\0"
                                "podManagementPolicy\0"
                                "updateStrategy\0"
                                "revisionHistoryLimit\0"
                                "minReadySeconds\0"
                                "persistentVolumeClaimRetentionPolicy\0"
                                "ordinals\0";
    static const char policies[] = "OrderedReady\0"
                                   "Parallel\0";
    v_fields(c, spec, known, NULL, NULL);
    v_int(c, spec, "replicas", false, 0, 100000, NULL);
    v_default_int(c, spec, "replicas", 1);
    /* Optional since Kubernetes 1.31; the governing Service gives the pods their DNS names. */
    v_name(c, spec, "serviceName", false, drv_name_dns_label);
    v_enum(c, spec, "podManagementPolicy", false, policies);
    v_default_str(c, spec, "podManagementPolicy", "OrderedReady");
    v_int(c, spec, "revisionHistoryLimit", false, 0, INT32_MAX, NULL);
    v_default_int(c, spec, "revisionHistoryLimit", 10);
    v_int(c, spec, "minReadySeconds", false, 0, INT32_MAX, NULL);
    v_default_int(c, spec, "minReadySeconds", 0);
    v_sts_strategy(c, spec);
    v_retention(c, spec);
    cJSON *ord = v_obj(c, spec, "ordinals", false);
    if (ord) {
        static const char oknown[] = "start\0";
        size_t old = v_push_key(c, "ordinals");
        v_fields(c, ord, oknown, NULL, NULL);
        v_int(c, ord, "start", false, 0, INT32_MAX, NULL);
        v_default_int(c, ord, "start", 0);
        v_pop(c, old);
    }
    cJSON *claims = v_arr(c, spec, "volumeClaimTemplates", false);
    if (claims) {
        size_t old = v_push_key(c, "volumeClaimTemplates"), i = 0;
        for (cJSON *t = claims->child; t; t = t->next, i++) {
            size_t o2 = v_push_index(c, i);
            if (!cJSON_IsObject(t)) {
                v_fail(c, "must be an object");
            } else {
                v_claim_template(c, t);
                const char *n = drv_json_str(drv_json_get(t, "metadata"), "name");
                size_t j = 0;
                for (cJSON *u = claims->child; n && u != t; u = u->next, j++) {
                    const char *m = drv_json_str(drv_json_get(u, "metadata"), "name");
                    if (m && !strcmp(m, n))
                        v_failk(c, "metadata.name",
                                "duplicate value \"%.64s\" (also in volumeClaimTemplates[%zu])", n,
                                j);
                }
            }
            v_pop(c, o2);
        }
        v_pop(c, old);
    }
    /* The template may mount the claims by name: they count as its volumes while it is checked
     * (Kubernetes skips the pod spec's volume check for StatefulSets for this reason). */
    cJSON *podspec = drv_json_get(drv_json_get(spec, "template"), "spec");
    size_t added = add_claim_volumes(c, podspec, claims);
    v_template(c, spec, "selector", true);
    drop_claim_volumes(podspec, added);
}

bool drv_model_statefulset_update_ok(const cJSON *old, const cJSON *obj, char *msg, size_t msgsz)
{
    static const char *const mutable_[] = {"replicas",
                                           "ordinals",
                                           "template",
                                           "updateStrategy",
                                           "revisionHistoryLimit",
                                           "persistentVolumeClaimRetentionPolicy",
                                           "minReadySeconds"};
    cJSON *a = cJSON_Duplicate(drv_json_get(old, "spec"), true);
    cJSON *b = cJSON_Duplicate(drv_json_get(obj, "spec"), true);
    for (size_t i = 0; i < sizeof(mutable_) / sizeof(mutable_[0]); i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(a, mutable_[i]);
        cJSON_DeleteItemFromObjectCaseSensitive(b, mutable_[i]);
    }
    /* Out of memory compares unequal: refused, never a change let through unchecked. */
    bool same = a && b && cJSON_Compare(a, b, true);
    cJSON_Delete(a);
    cJSON_Delete(b);
    if (!same)
        drv_fmt_cut(msg, msgsz,
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                    "'template', 'updateStrategy', 'revisionHistoryLimit', "
                    "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden");
    return same;
}
