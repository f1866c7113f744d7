/* The StatefulSet controller: pods with stable names <set>-<ordinal>, each with its own claims
 * made from volumeClaimTemplates (<template>-<set>-<ordinal>, kept across pod restarts and
 * template changes), created in order 0..n-1 and removed n-1..0, each step waiting for the one
 * before to be Running and Ready (OrderedReady) or all at once (Parallel). A template change
 * replaces pods from the highest ordinal down to the partition, one at a time (RollingUpdate),
 * or only when a pod is deleted (OnDelete). Templates are kept as ControllerRevisions
 * (dsrevisions.c); currentRevision is the one the pods ran before the change, updateRevision
 * the template's. Kubernetes' controller behaves the same way (stateful_set_control.go). */
#include "ctrl/ctrl_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"

#define STS_LABEL_POD_NAME "statefulset.kubernetes.io/pod-name"
#define STS_LABEL_POD_INDEX "apps.kubernetes.io/pod-index"
#define STS_COMPONENT "statefulset-controller"
#define STS_NAME_MAX 256

/* One round's view of one StatefulSet. */
typedef struct sts {
    const cJSON *obj, *spec;
    const char *ns, *name;
    int64_t start, replicas, partition, min_ready, now_ms;
    bool parallel, on_delete, claims_deleted_on_scale;
    char upd_rev[STS_NAME_MAX], cur_rev[STS_NAME_MAX];
    const cJSON *upd_tpl;
    cJSON *cur_tpl; /* the current revision's template (owned), or NULL: the update's */
} sts_t;

/* The ordinal of pod in set (name <set>-<digits>, no leading zero), or -1. */
static int64_t ordinal_of(const char *set, const cJSON *pod)
{
    const char *n = ctrl_meta(pod, "name");
    size_t sl = strlen(set);
    if (strncmp(n, set, sl) || n[sl] != '-' || !n[sl + 1])
        return -1;
    const char *d = n + sl + 1;
    if (d[0] == '0' && d[1])
        return -1;
    int64_t v = 0;
    for (; *d; d++) {
        if (*d < '0' || *d > '9' || v > INT32_MAX)
            return -1;
        v = v * 10 + (*d - '0');
    }
    return v;
}

static const char *revision_of(const cJSON *pod)
{
    const char *r =
        drv_json_str(drv_json_get(drv_json_get(pod, "metadata"), "labels"), DRV_CTRL_LABEL_DS_HASH);
    return r ? r : "";
}

/* Running and Ready for minReadySeconds: what OrderedReady waits for before the next step. */
static bool healthy(const sts_t *x, const cJSON *pod)
{
    const char *ph = drv_json_str(drv_json_get(pod, "status"), "phase");
    return ph && !strcmp(ph, "Running") && drv_ctrl_pod_available(pod, x->min_ready, x->now_ms);
}

static void event(drv_hstore_t *s, const sts_t *x, const char *type, const char *reason,
                  const char *fmt, ...) DRV_PRINTF(5, 6);
static void event(drv_hstore_t *s, const sts_t *x, const char *type, const char *reason,
                  const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    drv_vfmt_cut(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ctrl_event(s, x->obj, DRV_KIND_STATEFULSET, type, reason, msg, STS_COMPONENT, x->now_ms);
}

/* The PersistentVolumeClaim kind, when the model has it. */
static drv_kind_t pvc_kind(void)
{
    return drv_kind_parse("PersistentVolumeClaim");
}

static bool claim_name(const sts_t *x, const cJSON *tpl, int64_t ord, char *out, size_t outsz)
{
    const char *t = drv_json_str(drv_json_get(tpl, "metadata"), "name");
    return t && drv_fmt(out, outsz, "%s-%s-%lld", t, x->name, (long long)ord) == DRV_OK;
}

/* Makes the claim of template tpl for ordinal ord unless it exists: the template's spec and
 * annotations, its labels plus the selector's matchLabels, owned by the set only when
 * whenDeleted is Delete (Kubernetes keeps claims otherwise). */
static drv_err_t ensure_claim(drv_hstore_t *s, const sts_t *x, const cJSON *tpl, int64_t ord,
                              const char *pod, drv_error_t *err)
{
    char name[STS_NAME_MAX];
    drv_kind_t k = pvc_kind();
    if (k == DRV_KIND_UNKNOWN)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "statefulset %s: volumeClaimTemplates need PersistentVolumeClaims",
                             x->name);
    if (!claim_name(x, tpl, ord, name, sizeof(name)))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "statefulset %s: claim name too long",
                             x->name);
    _cleanup_cjson_ cJSON *have = NULL;
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_get(s, k, x->ns, name, &have, &e);
    if (r == DRV_OK)
        return DRV_OK;
    if (r != DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, e.sys_errno, "claim %s/%s: %s", x->ns, name,
                             drv_error_msg(&e));
    const cJSON *tmeta = drv_json_get(tpl, "metadata");
    const cJSON *sel = drv_json_get(drv_json_get(x->spec, "selector"), "matchLabels");
    const cJSON *tl = drv_json_get(tmeta, "labels"), *ann = drv_json_get(tmeta, "annotations");
    _cleanup_cjson_ cJSON *pvc = cJSON_CreateObject();
    cJSON *meta = NULL, *labels = NULL, *kv;
    bool ok =
        pvc && cJSON_AddStringToObject(pvc, "apiVersion", "v1") &&
        cJSON_AddStringToObject(pvc, "kind", "PersistentVolumeClaim") &&
        (meta = cJSON_AddObjectToObject(pvc, "metadata")) &&
        cJSON_AddStringToObject(meta, "name", name) &&
        cJSON_AddStringToObject(meta, "namespace", x->ns) &&
        ctrl_set(meta, "labels",
                 labels = cJSON_IsObject(tl) ? cJSON_Duplicate(tl, true) : cJSON_CreateObject()) &&
        (!cJSON_IsObject(ann) || ctrl_set(meta, "annotations", cJSON_Duplicate(ann, true))) &&
        ctrl_set(pvc, "spec", cJSON_Duplicate(drv_json_get(tpl, "spec"), true));
    cJSON_ArrayForEach(kv, (ok && cJSON_IsObject(sel) ? sel : NULL))
    {
        ok = ok && ctrl_set(labels, kv->string, cJSON_Duplicate(kv, true));
    }
    const char *wd =
        drv_json_str(drv_json_get(x->spec, "persistentVolumeClaimRetentionPolicy"), "whenDeleted");
    if (ok && wd && !strcmp(wd, "Delete"))
        ok = ctrl_set(meta, "ownerReferences", ctrl_owner_refs(x->obj, DRV_KIND_STATEFULSET));
    if (!ok)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "claim %s", name);
    drv_diags_t d = {0};
    r = drv_model_normalize(pvc, &d);
    if (r != DRV_OK) {
        _cleanup_free_ char *msg = drv_diags_format(&d, "  ");
        drv_diags_free(&d);
        return drv_error_set(err, r, 0, "claim %s/%s for statefulset %s is invalid:\n%s", x->ns,
                             name, x->name, msg ? msg : "");
    }
    drv_diags_free(&d);
    r = drv_hstore_create(s, k, pvc, &e);
    if (r == DRV_ERR_EXISTS)
        return DRV_OK;
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "create claim %s/%s: %s", x->ns, name,
                             drv_error_msg(&e));
    char what[2 * STS_NAME_MAX];
    drv_fmt_cut(what, sizeof(what), "%s Pod %s", name, pod);
    event(s, x, "Normal", "SuccessfulCreate", "create Claim %s in StatefulSet %s success", what,
          x->name);
    return DRV_OK;
}

/* Points the pod spec's volume of each claim template at the claim of ordinal ord (replacing a
 * template volume of that name, as Kubernetes does). */
static bool claim_volumes(const sts_t *x, cJSON *podspec, int64_t ord)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, drv_json_get(x->spec, "volumeClaimTemplates"))
    {
        char claim[STS_NAME_MAX];
        const char *vn = drv_json_str(drv_json_get(t, "metadata"), "name");
        if (!vn || !claim_name(x, t, ord, claim, sizeof(claim)))
            return false;
        cJSON *vols = drv_json_get(podspec, "volumes");
        if (!vols && !(vols = cJSON_AddArrayToObject(podspec, "volumes")))
            return false;
        cJSON *v = vols->child;
        while (v) {
            cJSON *next = v->next;
            const char *n = drv_json_str(v, "name");
            if (n && !strcmp(n, vn))
                cJSON_Delete(cJSON_DetachItemViaPointer(vols, v));
            v = next;
        }
        cJSON *nv = cJSON_CreateObject(), *src = NULL;
        if (!nv || !cJSON_AddItemToArray(vols, nv))
            return cJSON_Delete(nv), false;
        if (!cJSON_AddStringToObject(nv, "name", vn) ||
            !(src = cJSON_AddObjectToObject(nv, "persistentVolumeClaim")) ||
            !cJSON_AddStringToObject(src, "claimName", claim))
            return false;
    }
    return true;
}

/* Creates pod <set>-<ord> from the current revision's template (below the partition) or the
 * update revision's, with its claims. DRV_ERR_EXISTS when a pod of that name that is not the
 * set's is in the way (said in an event). */
static drv_err_t create_pod(drv_hstore_t *s, const sts_t *x, int64_t ord, drv_error_t *err)
{
    bool cur = !x->on_delete && ord < x->start + x->partition && x->cur_tpl;
    const cJSON *tpl = cur ? x->cur_tpl : x->upd_tpl;
    const char *rev = cur ? x->cur_rev : x->upd_rev;
    char name[STS_NAME_MAX], idx[24];
    if (drv_fmt(name, sizeof(name), "%s-%lld", x->name, (long long)ord) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "statefulset %s: pod name too long", x->name);
    drv_fmt_cut(idx, sizeof(idx), "%lld", (long long)ord);
    const cJSON *t;
    cJSON_ArrayForEach(t, drv_json_get(x->spec, "volumeClaimTemplates"))
    {
        drv_err_t r = ensure_claim(s, x, t, ord, name, err);
        if (r != DRV_OK)
            return r;
    }
    const cJSON *tmeta = drv_json_get(tpl, "metadata");
    const cJSON *tl = drv_json_get(tmeta, "labels"), *ann = drv_json_get(tmeta, "annotations");
    const char *svc = drv_json_str(x->spec, "serviceName");
    _cleanup_cjson_ cJSON *pod = cJSON_CreateObject();
    cJSON *meta = NULL, *labels = NULL, *spec = NULL;
    bool ok =
        pod && cJSON_AddStringToObject(pod, "apiVersion", "v1") &&
        cJSON_AddStringToObject(pod, "kind", "Pod") &&
        (meta = cJSON_AddObjectToObject(pod, "metadata")) &&
        cJSON_AddStringToObject(meta, "name", name) &&
        cJSON_AddStringToObject(meta, "namespace", x->ns) &&
        ctrl_set(meta, "labels",
                 labels = cJSON_IsObject(tl) ? cJSON_Duplicate(tl, true) : cJSON_CreateObject()) &&
        ctrl_set(labels, DRV_CTRL_LABEL_DS_HASH, cJSON_CreateString(rev)) &&
        ctrl_set(labels, STS_LABEL_POD_NAME, cJSON_CreateString(name)) &&
        ctrl_set(labels, STS_LABEL_POD_INDEX, cJSON_CreateString(idx)) &&
        (!cJSON_IsObject(ann) || ctrl_set(meta, "annotations", cJSON_Duplicate(ann, true))) &&
        ctrl_set(meta, "ownerReferences", ctrl_owner_refs(x->obj, DRV_KIND_STATEFULSET)) &&
        ctrl_set(pod, "spec", spec = cJSON_Duplicate(drv_json_get(tpl, "spec"), true)) &&
        ctrl_set(spec, "hostname", cJSON_CreateString(name)) &&
        (!svc || !*svc || ctrl_set(spec, "subdomain", cJSON_CreateString(svc))) &&
        claim_volumes(x, spec, ord);
    if (!ok)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "making pod %s", name);
    drv_diags_t d = {0};
    drv_err_t r = drv_model_normalize(pod, &d);
    if (r != DRV_OK) {
        _cleanup_free_ char *msg = drv_diags_format(&d, "  ");
        drv_diags_free(&d);
        return drv_error_set(err, r, 0, "pod %s for statefulset %s/%s is invalid:\n%s", name, x->ns,
                             x->name, msg ? msg : "");
    }
    drv_diags_free(&d);
    drv_error_t e = DRV_ERROR_INIT;
    r = drv_hstore_create(s, DRV_KIND_POD, pod, &e);
    if (r == DRV_ERR_EXISTS) {
        event(s, x, "Warning", "FailedCreate",
              "create Pod %s in StatefulSet %s failed: a pod of that name exists and is not the "
              "StatefulSet's",
              name, x->name);
        return r;
    }
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "create pod %s/%s: %s", x->ns, name,
                             drv_error_msg(&e));
    event(s, x, "Normal", "SuccessfulCreate", "create Pod %s in StatefulSet %s successful", name,
          x->name);
    return DRV_OK;
}

static drv_err_t delete_pod(drv_hstore_t *s, const sts_t *x, const cJSON *pod, drv_error_t *err)
{
    drv_err_t r = ctrl_delete_pod(s, pod, err);
    if (r == DRV_OK)
        event(s, x, "Normal", "SuccessfulDelete", "delete Pod %s in StatefulSet %s successful",
              ctrl_meta(pod, "name"), x->name);
    return r;
}

/* whenScaled: Delete: the claims of an ordinal that scaling down removed go with its pod. */
static drv_err_t drop_claims(drv_hstore_t *s, const sts_t *x, int64_t ord, drv_error_t *err)
{
    drv_kind_t k = pvc_kind();
    const cJSON *t;
    cJSON_ArrayForEach(t, (k != DRV_KIND_UNKNOWN && x->claims_deleted_on_scale
                               ? drv_json_get(x->spec, "volumeClaimTemplates")
                               : NULL))
    {
        char name[STS_NAME_MAX];
        if (!claim_name(x, t, ord, name, sizeof(name)))
            continue;
        drv_error_t e = DRV_ERROR_INIT;
        drv_err_t r = drv_hstore_delete(s, k, x->ns, name, NULL, &e);
        if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
            return drv_error_set(err, r, e.sys_errno, "delete claim %s/%s: %s", x->ns, name,
                                 drv_error_msg(&e));
        if (r == DRV_OK)
            event(s, x, "Normal", "SuccessfulDelete", "delete Claim %s in StatefulSet %s success",
                  name, x->name);
    }
    return DRV_OK;
}

/* The template of the revision named name among revs (a copy without "$patch"), or NULL. */
static cJSON *revision_template(const cJSON *revs, const char *name)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, revs)
    {
        if (strcmp(ctrl_meta(r, "name"), name))
            continue;
        const cJSON *t = drv_json_get(drv_json_get(drv_json_get(r, "data"), "spec"), "template");
        cJSON *c = cJSON_IsObject(t) ? cJSON_Duplicate(t, true) : NULL;
        cJSON_DeleteItemFromObjectCaseSensitive(c, "$patch");
        return c;
    }
    return NULL;
}

/* A pod beyond the replicas and its ordinal (-1: a name that has none). */
typedef struct condemned {
    const cJSON *pod;
    int64_t ord;
} condemned_t;

static int by_ordinal_desc(const void *a, const void *b)
{
    int64_t x = ((const condemned_t *)a)->ord, y = ((const condemned_t *)b)->ord;
    return x > y ? -1 : x < y;
}

/* Brings the set's pods one step towards its spec (the steps Kubernetes takes, stopping where
 * OrderedReady must wait), then writes its status. */
static drv_err_t step(drv_hstore_t *s, sts_t *x, const cJSON *pods, drv_error_t *err)
{
    size_t np = drv_json_array_len(pods);
    _cleanup_free_ const cJSON **slot = calloc((size_t)x->replicas + 1, sizeof(*slot));
    _cleanup_free_ condemned_t *condemned = calloc(np + 1, sizeof(*condemned));
    if (!slot || !condemned)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "statefulset %s", x->name);
    size_t nc = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, pods)
    {
        int64_t ord = ordinal_of(x->name, p);
        if (ord >= x->start && ord < x->start + x->replicas && !slot[ord - x->start])
            slot[ord - x->start] = p;
        else
            condemned[nc++] = (condemned_t){p, ord};
    }
    if (nc > 1)
        qsort(condemned, nc, sizeof(*condemned), by_ordinal_desc);
    bool monotonic = !x->parallel;
    drv_err_t r;

    /* 1. Every ordinal has a pod: a failed one is replaced, a missing one made, in order. */
    for (int64_t i = 0; i < x->replicas; i++) {
        if (slot[i] && ctrl_pod_finished(slot[i])) {
            if ((r = delete_pod(s, x, slot[i], err)) != DRV_OK)
                return r;
            slot[i] = NULL;
        }
        if (!slot[i]) {
            r = create_pod(s, x, x->start + i, err);
            if (r == DRV_ERR_EXISTS)
                return DRV_OK; /* said in an event; the next round tries again */
            if (r != DRV_OK)
                return r;
            if (monotonic)
                return DRV_OK;
            continue;
        }
        if (monotonic && !healthy(x, slot[i]))
            return DRV_OK;
    }

    /* 2. Pods beyond the replicas go, highest ordinal first, one at a time once the others
     * are healthy (OrderedReady); all at once (Parallel). */
    for (size_t i = 0; i < nc; i++) {
        if (monotonic) {
            for (int64_t j = 0; j < x->replicas; j++)
                if (!healthy(x, slot[j]))
                    return DRV_OK;
            for (size_t j = i + 1; j < nc; j++)
                if (!healthy(x, condemned[j].pod))
                    return DRV_OK;
        }
        if ((r = delete_pod(s, x, condemned[i].pod, err)) != DRV_OK)
            return r;
        int64_t ord = condemned[i].ord;
        if (ord >= x->start + x->replicas && (r = drop_claims(s, x, ord, err)) != DRV_OK)
            return r;
        if (monotonic)
            return DRV_OK;
    }

    /* 3. RollingUpdate: from the highest ordinal down to the partition, a pod of another
     * revision is deleted (step 1 makes it again from the update revision) once every pod
     * above it runs the update and is healthy. */
    if (x->on_delete)
        return DRV_OK;
    for (int64_t i = x->replicas - 1; i >= x->partition && i >= 0; i--) {
        if (!slot[i])
            return DRV_OK; /* made this round (Parallel): not running yet */
        if (strcmp(revision_of(slot[i]), x->upd_rev))
            return delete_pod(s, x, slot[i], err);
        if (!healthy(x, slot[i]))
            return DRV_OK;
    }
    return DRV_OK;
}

static drv_err_t write_status(drv_hstore_t *s, sts_t *x, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *pods = NULL;
    drv_err_t r = ctrl_owned_pods(s, x->ns, ctrl_meta(x->obj, "uid"), &pods, err);
    if (r != DRV_OK)
        return r;
    int64_t n = 0, ready = 0, avail = 0, cur = 0, upd = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, pods)
    {
        if (ctrl_pod_finished(p))
            continue;
        n++;
        ready += drv_ctrl_pod_ready(p);
        avail += drv_ctrl_pod_available(p, x->min_ready, x->now_ms);
        cur += !strcmp(revision_of(p), x->cur_rev);
        upd += !strcmp(revision_of(p), x->upd_rev);
    }
    /* The update is complete once every pod runs it and is ready: it becomes current. */
    if (upd == n && ready == n && n == x->replicas && strcmp(x->cur_rev, x->upd_rev)) {
        drv_fmt_cut(x->cur_rev, sizeof(x->cur_rev), "%s", x->upd_rev);
        cur = upd;
    }
    const cJSON *old = drv_json_get(x->obj, "status");
    cJSON *st = cJSON_CreateObject();
    bool ok = st && cJSON_AddNumberToObject(st, "replicas", (double)n) &&
              cJSON_AddNumberToObject(st, "readyReplicas", (double)ready) &&
              cJSON_AddNumberToObject(st, "availableReplicas", (double)avail) &&
              cJSON_AddNumberToObject(st, "currentReplicas", (double)cur) &&
              cJSON_AddNumberToObject(st, "updatedReplicas", (double)upd) &&
              cJSON_AddStringToObject(st, "currentRevision", x->cur_rev) &&
              cJSON_AddStringToObject(st, "updateRevision", x->upd_rev) &&
              cJSON_AddNumberToObject(st, "collisionCount", 0) &&
              cJSON_AddNumberToObject(
                  st, "observedGeneration",
                  (double)ctrl_int(drv_json_get(x->obj, "metadata"), "generation", 1));
    if (!ok) {
        cJSON_Delete(st);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "statefulset status");
    }
    drv_json_sort_keys(st);
    if (cJSON_IsObject(old) && cJSON_Compare(old, st, true)) {
        cJSON_Delete(st);
        return DRV_OK; /* unchanged: no write */
    }
    drv_error_t e = DRV_ERROR_INIT;
    r = drv_hstore_update_status(s, DRV_KIND_STATEFULSET, x->ns, x->name, st, NULL, &e);
    if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, e.sys_errno, "statefulset %s status: %s", x->name,
                             drv_error_msg(&e));
    return DRV_OK;
}

static drv_err_t reconcile(drv_hstore_t *s, const cJSON *obj, int64_t now_ms, drv_error_t *err)
{
    const cJSON *spec = drv_json_get(obj, "spec"), *tpl = drv_json_get(spec, "template");
    if (!cJSON_IsObject(tpl))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "statefulset %s: spec.template: required",
                             ctrl_meta(obj, "name"));
    const cJSON *us = drv_json_get(spec, "updateStrategy");
    const char *utype = drv_json_str(us, "type");
    const char *pmp = drv_json_str(spec, "podManagementPolicy");
    const char *ws =
        drv_json_str(drv_json_get(spec, "persistentVolumeClaimRetentionPolicy"), "whenScaled");
    sts_t x = {
        .obj = obj,
        .spec = spec,
        .ns = ctrl_meta(obj, "namespace"),
        .name = ctrl_meta(obj, "name"),
        .start = ctrl_int(drv_json_get(spec, "ordinals"), "start", 0),
        .replicas = ctrl_int(spec, "replicas", 1),
        .partition = ctrl_int(drv_json_get(us, "rollingUpdate"), "partition", 0),
        .min_ready = ctrl_int(spec, "minReadySeconds", 0),
        .now_ms = now_ms,
        .parallel = pmp && !strcmp(pmp, "Parallel"),
        .on_delete = utype && !strcmp(utype, "OnDelete"),
        .claims_deleted_on_scale = ws && !strcmp(ws, "Delete"),
        .upd_tpl = tpl,
    };
    if (x.replicas < 0 || x.start < 0 || x.replicas > 100000)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "statefulset %s: bad replicas or ordinals",
                             x.name);
    char hash[16];
    drv_ctrl_template_hash(tpl, hash, sizeof(hash));
    if (drv_fmt(x.upd_rev, sizeof(x.upd_rev), "%.242s-%s", x.name, hash) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "statefulset %s: name too long", x.name);

    /* The template's record first: its name is the pods' controller-revision-hash. */
    _cleanup_cjson_ cJSON *revs = NULL, *pods = NULL, *cur_tpl = NULL;
    drv_err_t r = ctrl_dsrev_list(s, obj, &revs, err);
    if (r == DRV_OK)
        r = ctrl_dsrev_record(s, obj, revs, tpl, hash, err);
    if (r == DRV_OK)
        r = ctrl_owned_pods(s, x.ns, ctrl_meta(obj, "uid"), &pods, err);
    if (r != DRV_OK)
        return r;
    const char *cur = drv_json_str(drv_json_get(obj, "status"), "currentRevision");
    if (cur && strcmp(cur, x.upd_rev) && (cur_tpl = revision_template(revs, cur)))
        drv_fmt_cut(x.cur_rev, sizeof(x.cur_rev), "%s", cur);
    else
        drv_fmt_cut(x.cur_rev, sizeof(x.cur_rev), "%s", x.upd_rev);
    x.cur_tpl = cur_tpl;

    r = step(s, &x, pods, err);
    if (r == DRV_OK)
        r = write_status(s, &x, err);
    _cleanup_cjson_ cJSON *now_pods = NULL;
    if (r == DRV_OK)
        r = ctrl_owned_pods(s, x.ns, ctrl_meta(obj, "uid"), &now_pods, err);
    if (r == DRV_OK)
        r = ctrl_dsrev_prune(s, obj, revs, hash, now_pods, err);
    return r;
}

/* Whether obj's controller is a StatefulSet not among sets (gone). */
static bool orphaned(const cJSON *obj, const cJSON *sets)
{
    const cJSON *ref = drv_ctrl_controller_of(obj);
    const char *k = drv_json_str(ref, "kind"), *uid = drv_json_str(ref, "uid");
    if (!k || strcmp(k, "StatefulSet") || !uid)
        return false;
    const cJSON *d;
    cJSON_ArrayForEach(d, sets)
    {
        if (!strcmp(ctrl_meta(d, "uid"), uid))
            return false;
    }
    return true;
}

/* Deletes what sets that are gone left: pods, revisions, and the claims whenDeleted: Delete
 * gave them (the only claims they own). */
static drv_err_t collect(drv_hstore_t *s, const cJSON *sets, drv_error_t *err)
{
    drv_kind_t kinds[] = {DRV_KIND_POD, DRV_KIND_CONTROLLERREVISION, pvc_kind()};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (kinds[i] == DRV_KIND_UNKNOWN)
            continue;
        const cJSON *all = NULL; /* the round's shared listing */
        drv_err_t r = drv_hstore_list_shared(s, kinds[i], &all, err);
        if (r != DRV_OK)
            return r;
        const cJSON *o;
        cJSON_ArrayForEach(o, all)
        {
            if (!orphaned(o, sets))
                continue;
            drv_error_t e = DRV_ERROR_INIT;
            r = drv_hstore_delete(s, kinds[i], ctrl_meta(o, "namespace"), ctrl_meta(o, "name"),
                                  NULL, &e);
            if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
                return drv_error_set(err, r, e.sys_errno, "delete %s %s/%s: %s",
                                     drv_kind_name(kinds[i]), ctrl_meta(o, "namespace"),
                                     ctrl_meta(o, "name"), drv_error_msg(&e));
        }
    }
    return DRV_OK;
}

drv_err_t drv_ctrl_statefulsets_reconcile(drv_hstore_t *s, int64_t now_ms, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *all = NULL;
    drv_err_t r = drv_hstore_list(s, DRV_KIND_STATEFULSET, NULL, NULL, &all, NULL, err);
    if (r != DRV_OK)
        return r;
    drv_err_t first = DRV_OK;
    const cJSON *d;
    cJSON_ArrayForEach(d, all)
    {
        drv_error_t e = DRV_ERROR_INIT;
        r = reconcile(s, d, now_ms, &e);
        if (r != DRV_OK && first == DRV_OK) {
            first = r;
            drv_error_set(err, r, e.sys_errno, "%s", drv_error_msg(&e));
        }
    }
    r = collect(s, all, err);
    return first != DRV_OK ? first : r;
}
