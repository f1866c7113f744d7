/* The Job controller (batch/v1): runs a Job's pods to completion as Kubernetes' job
 * controller does: parallelism, completions (or a work queue without them), Indexed
 * completion, the backoffLimit over failed pods (and container restarts under OnFailure),
 * exponential back-off between failed pods' replacements, activeDeadlineSeconds,
 * podFailurePolicy, suspend, and ttlSecondsAfterFinished. A pod is counted once: it carries the
 * annotation drover.io/job-tracking until its end has been counted in the Job's status (as
 * Kubernetes' batch.kubernetes.io/job-tracking finalizer does); an active pod that disappears
 * (deleted by a user or the node lifecycle) is counted failed, as Kubernetes counts it. */
#include "ctrl/ctrl_int.h"

#include <stdlib.h>
#include <string.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"

#define BACKOFF_BASE_MS 10000LL
#define BACKOFF_MAX_MS (6 * 60 * 1000LL)
#define INDEXED_MAX 100000
#define COMPONENT "job-controller"

/* The pods of one Job, as sorted out in a round (borrowed from the round's pod list). */
typedef struct job_pods {
    const cJSON **active;
    size_t n_active;
    const cJSON **ended; /* tracked pods that finished since the last round */
    size_t n_ended;
    int64_t restarts; /* of the active pods' containers */
    int64_t ready;
    int64_t last_fail_ms; /* when the latest failed pod present ended (0: none) */
} job_pods_t;

static const char *pod_annotation(const cJSON *pod, const char *key)
{
    return drv_json_str(drv_json_get(drv_json_get(pod, "metadata"), "annotations"), key);
}

static const char *pod_phase(const cJSON *pod)
{
    return drv_json_str_or(drv_json_get(pod, "status"), "phase", "");
}

/* The Job's end: "Complete" or "Failed" with a True condition, or NULL. *at gets its time. */
const char *ctrl_job_finished(const cJSON *job, int64_t *at)
{
    static const char *const types[] = {"Complete", "Failed"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *c = ctrl_condition(job, types[i]);
        const char *st = drv_json_str(c, "status");
        if (st && !strcmp(st, "True")) {
            if (at)
                *at = drv_ctrl_time_parse(drv_json_str(c, "lastTransitionTime"));
            return types[i];
        }
    }
    return NULL;
}

/* ---- failure policy ---- */

static bool code_in(const cJSON *values, int64_t code)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, values)
    {
        if (cJSON_IsNumber(v) && (int64_t)v->valuedouble == code)
            return true;
    }
    return false;
}

/* Whether a container of pod that ended with a non-zero code matches onExitCodes; the first
 * such container's name and code go to name/code. */
static bool exit_codes_match(const cJSON *pod, const cJSON *ec, const char **name, int64_t *code)
{
    const char *only = drv_json_str(ec, "containerName");
    bool in = !strcmp(drv_json_str_or(ec, "operator", "In"), "In");
    const cJSON *values = drv_json_get(ec, "values");
    static const char *const lists[] = {"initContainerStatuses", "containerStatuses"};
    for (size_t l = 0; l < 2; l++) {
        const cJSON *cs;
        cJSON_ArrayForEach(cs, drv_json_get(drv_json_get(pod, "status"), lists[l]))
        {
            const char *cn = drv_json_str(cs, "name");
            if (only && (!cn || strcmp(cn, only)))
                continue;
            const cJSON *term = drv_json_get(drv_json_get(cs, "state"), "terminated");
            if (!term)
                term = drv_json_get(drv_json_get(cs, "lastState"), "terminated");
            int64_t x = drv_json_int_or(term, "exitCode", 0);
            if (!term || x == 0)
                continue;
            if (code_in(values, x) == in) {
                *name = cn ? cn : "";
                *code = x;
                return true;
            }
        }
    }
    return false;
}

static bool pod_conditions_match(const cJSON *pod, const cJSON *conds)
{
    const cJSON *want;
    cJSON_ArrayForEach(want, conds)
    {
        const char *type = drv_json_str(want, "type");
        const char *st = drv_json_str(ctrl_condition(pod, type ? type : ""), "status");
        if (st && !strcmp(st, drv_json_str_or(want, "status", "True")))
            return true;
    }
    return false;
}

/* The action of the first rule of job's podFailurePolicy that failed pod matches ("Count"
 * when none does); for FailJob, msg says why. */
static const char *failure_action(const cJSON *job, const cJSON *pod, char *msg, size_t msgsz)
{
    const cJSON *rules = drv_json_at(job, "spec.podFailurePolicy.rules"), *r;
    size_t i = 0;
    cJSON_ArrayForEach(r, rules)
    {
        const char *name = NULL;
        int64_t code = 0;
        const cJSON *ec = drv_json_get(r, "onExitCodes");
        bool hit = ec ? exit_codes_match(pod, ec, &name, &code)
                      : pod_conditions_match(pod, drv_json_get(r, "onPodConditions"));
        if (hit) {
            const char *action = drv_json_str_or(r, "action", "Count");
            if (ec)
                drv_fmt_cut(msg, msgsz,
                            "Container %s for pod %s/%s failed with exit code %lld matching %s "
                            "rule at index %zu",
                            name, ctrl_meta(pod, "namespace"), ctrl_meta(pod, "name"),
                            (long long)code, action, i);
            else
                drv_fmt_cut(msg, msgsz, "Pod %s/%s has condition matching %s rule at index %zu",
                            ctrl_meta(pod, "namespace"), ctrl_meta(pod, "name"), action, i);
            return action;
        }
        i++;
    }
    return "Count";
}

/* ---- sorting a Job's pods ---- */

/* When a pod ended: its containers' (init containers' too) latest finishedAt; 0 if unknown. */
static int64_t pod_end_ms(const cJSON *pod)
{
    static const char *const lists[] = {"initContainerStatuses", "containerStatuses"};
    int64_t best = 0;
    for (size_t l = 0; l < 2; l++) {
        const cJSON *cs;
        cJSON_ArrayForEach(cs, drv_json_get(drv_json_get(pod, "status"), lists[l]))
        {
            int64_t t = drv_ctrl_time_parse(drv_json_str_at(cs, "state.terminated.finishedAt"));
            if (t > best)
                best = t;
        }
    }
    return best;
}

static drv_err_t sort_pods(const cJSON *pods, const char *uid, job_pods_t *jp, drv_error_t *err)
{
    size_t n = drv_json_array_len(pods);
    memset(jp, 0, sizeof(*jp));
    jp->active = calloc(n ? n : 1, sizeof(*jp->active));
    jp->ended = calloc(n ? n : 1, sizeof(*jp->ended));
    if (!jp->active || !jp->ended)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "job pods");
    const cJSON *p;
    cJSON_ArrayForEach(p, pods)
    {
        const char *puid = drv_json_str(drv_ctrl_controller_of(p), "uid");
        if (!puid || strcmp(puid, uid))
            continue;
        bool tracked = pod_annotation(p, DRV_CTRL_ANN_JOB_TRACKING) != NULL;
        if (!ctrl_pod_finished(p)) {
            jp->active[jp->n_active++] = p;
            const cJSON *cs;
            cJSON_ArrayForEach(cs, drv_json_get(drv_json_get(p, "status"), "containerStatuses"))
                jp->restarts += drv_json_int_or(cs, "restartCount", 0);
            cJSON_ArrayForEach(cs, drv_json_get(drv_json_get(p, "status"), "initContainerStatuses"))
                jp->restarts += drv_json_int_or(cs, "restartCount", 0);
            jp->ready += drv_ctrl_pod_ready(p);
            continue;
        }
        if (tracked)
            jp->ended[jp->n_ended++] = p;
        if (!strcmp(pod_phase(p), "Failed")) {
            int64_t t = pod_end_ms(p);
            if (t > jp->last_fail_ms)
                jp->last_fail_ms = t;
        }
    }
    return DRV_OK;
}

static void job_pods_free(job_pods_t *jp)
{
    free(jp->active);
    free(jp->ended);
}

/* ---- completed indexes: "1,3-5,7", as Kubernetes writes them ---- */

static void indexes_parse(const char *s, bool *done, int64_t n)
{
    while (s && *s) {
        char *end;
        long a = strtol(s, &end, 10), b = a;
        if (end == s)
            return;
        s = end;
        if (*s == '-') {
            b = strtol(s + 1, &end, 10);
            if (end == s + 1)
                return;
            s = end;
        }
        for (long i = a < 0 ? 0 : a; i <= b && i < n; i++)
            done[i] = true;
        if (*s == ',')
            s++;
        else if (*s)
            return;
    }
}

static cJSON *indexes_format(const bool *done, int64_t n)
{
    size_t cap = 64, len = 0;
    _cleanup_free_ char *out = malloc(cap);
    if (!out)
        return NULL;
    out[0] = '\0';
    for (int64_t i = 0; i < n; i++) {
        if (!done[i])
            continue;
        int64_t j = i;
        while (j + 1 < n && done[j + 1])
            j++;
        char part[48];
        /* Kubernetes writes a range only for three or more: "1,2" but "1-3". */
        if (j == i + 1)
            j = i;
        if (j == i)
            drv_fmt_cut(part, sizeof(part), "%s%lld", len ? "," : "", (long long)i);
        else
            drv_fmt_cut(part, sizeof(part), "%s%lld-%lld", len ? "," : "", (long long)i,
                        (long long)j);
        size_t pl = strlen(part);
        if (len + pl + 1 > cap) {
            cap = (len + pl + 1) * 2;
            char *n2 = realloc(out, cap);
            if (!n2)
                return NULL;
            out = n2;
        }
        memcpy(out + len, part, pl + 1);
        len += pl;
        i = j;
    }
    return cJSON_CreateString(out);
}

/* ---- writes ---- */

static drv_err_t delete_pod(drv_hstore_t *s, const cJSON *job, const cJSON *pod, int64_t now_ms,
                            drv_error_t *err)
{
    drv_err_t r = ctrl_delete_pod(s, pod, err);
    if (r == DRV_OK) {
        char msg[300];
        drv_fmt_cut(msg, sizeof(msg), "Deleted pod: %s", ctrl_meta(pod, "name"));
        ctrl_event(s, job, DRV_KIND_JOB, "Normal", "SuccessfulDelete", msg, COMPONENT, now_ms);
    }
    return r;
}

/* Drops the tracking annotation of a pod whose end is now counted. */
static drv_err_t untrack(drv_hstore_t *s, const cJSON *pod, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *p = cJSON_Duplicate(pod, true);
    cJSON *ann = p ? drv_json_get(drv_json_get(p, "metadata"), "annotations") : NULL;
    if (!p)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "job pod");
    cJSON_DeleteItemFromObjectCaseSensitive(ann, DRV_CTRL_ANN_JOB_TRACKING);
    cJSON_DeleteItemFromObjectCaseSensitive(p, "status");
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_update(s, DRV_KIND_POD, p, &e);
    if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, e.sys_errno, "pod %s/%s: %s", ctrl_meta(pod, "namespace"),
                             ctrl_meta(pod, "name"), drv_error_msg(&e));
    return DRV_OK;
}

static bool set_str(cJSON *obj, const char *key, const char *v)
{
    return ctrl_set(obj, key, cJSON_CreateString(v));
}

/* Adds name=value to every container's env (replacing one of that name). */
static bool add_env(cJSON *spec, const char *name, const char *value)
{
    static const char *const lists[] = {"initContainers", "containers"};
    for (size_t l = 0; l < 2; l++) {
        cJSON *ctr;
        cJSON_ArrayForEach(ctr, drv_json_get(spec, lists[l]))
        {
            cJSON *env = drv_json_get(ctr, "env");
            if (!cJSON_IsArray(env) && !ctrl_set(ctr, "env", env = cJSON_CreateArray()))
                return false;
            cJSON *e = env->child;
            while (e) {
                cJSON *next = e->next;
                const char *n = drv_json_str(e, "name");
                if (n && !strcmp(n, name))
                    cJSON_Delete(cJSON_DetachItemViaPointer(env, e));
                e = next;
            }
            cJSON *item = cJSON_CreateObject();
            if (!item || !cJSON_AddItemToArray(env, item)) {
                cJSON_Delete(item);
                return false;
            }
            if (!set_str(item, "name", name) || !set_str(item, "value", value))
                return false;
        }
    }
    return true;
}

/* Creates one pod of job (index >= 0: of that completion index). */
static drv_err_t create_pod(drv_hstore_t *s, const cJSON *job, int64_t index, int64_t now_ms,
                            drv_error_t *err)
{
    const cJSON *tpl = drv_json_at(job, "spec.template");
    const char *jname = ctrl_meta(job, "name"), *uid = ctrl_meta(job, "uid");
    char idx[24] = "", prefix[96];
    if (index >= 0)
        drv_fmt_cut(idx, sizeof(idx), "%lld", (long long)index);
    /* Names stay DNS labels: <job>-[<index>-]<5 random characters>. */
    drv_fmt_cut(prefix, sizeof(prefix), "%.*s-%s%s", index >= 0 ? 50 : 57, jname, idx,
                index >= 0 ? "-" : "");
    _cleanup_cjson_ cJSON *pod = cJSON_CreateObject();
    cJSON *meta = NULL, *labels = NULL, *ann = NULL, *spec = NULL;
    const cJSON *tl = drv_json_at(tpl, "metadata.labels"),
                *ta = drv_json_at(tpl, "metadata.annotations");
    bool ok =
        pod && set_str(pod, "apiVersion", "v1") && set_str(pod, "kind", "Pod") &&
        ctrl_set(pod, "metadata", meta = cJSON_CreateObject()) &&
        set_str(meta, "generateName", prefix) &&
        set_str(meta, "namespace", ctrl_meta(job, "namespace")) &&
        ctrl_set(meta, "labels",
                 labels = cJSON_IsObject(tl) ? cJSON_Duplicate(tl, true) : cJSON_CreateObject()) &&
        ctrl_set(meta, "annotations",
                 ann = cJSON_IsObject(ta) ? cJSON_Duplicate(ta, true) : cJSON_CreateObject()) &&
        ctrl_set(meta, "ownerReferences", ctrl_owner_refs(job, DRV_KIND_JOB)) &&
        ctrl_set(pod, "spec", spec = cJSON_Duplicate(drv_json_get(tpl, "spec"), true));
    /* The labels Kubernetes puts on a Job's pods, whatever the selector. */
    ok = ok && set_str(labels, DRV_CTRL_LABEL_JOB_UID, uid) &&
         set_str(labels, DRV_CTRL_LABEL_JOB_NAME, jname) &&
         set_str(labels, "controller-uid", uid) && set_str(labels, "job-name", jname) &&
         set_str(ann, DRV_CTRL_ANN_JOB_TRACKING, "true");
    if (ok && index >= 0) {
        char host[80];
        ok = set_str(ann, DRV_CTRL_ANN_JOB_INDEX, idx) &&
             set_str(labels, DRV_CTRL_ANN_JOB_INDEX, idx) &&
             add_env(spec, "JOB_COMPLETION_INDEX", idx);
        /* Each index gets a stable hostname, <job>-<index>, when that is a DNS label. */
        if (ok && !drv_json_get(spec, "hostname") &&
            drv_fmt(host, sizeof(host), "%s-%s", jname, idx) == DRV_OK && strlen(host) <= 63)
            ok = set_str(spec, "hostname", host);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(spec, "nodeName");
    if (ok && drv_json_str(drv_json_get(tpl, "spec"), "nodeName"))
        ok = set_str(spec, "nodeName", drv_json_str(drv_json_get(tpl, "spec"), "nodeName"));
    if (!ok)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "making a pod for job %s", jname);
    drv_diags_t d = {0};
    drv_err_t r = drv_model_normalize(pod, &d);
    if (r != DRV_OK) {
        _cleanup_free_ char *msg = drv_diags_format(&d, "  ");
        drv_diags_free(&d);
        return drv_error_set(err, r, 0, "pod for job %s/%s is invalid:\n%s",
                             ctrl_meta(job, "namespace"), jname, msg ? msg : "");
    }
    drv_diags_free(&d);
    drv_error_t e = DRV_ERROR_INIT;
    r = drv_hstore_create(s, DRV_KIND_POD, pod, &e);
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "create pod for job %s/%s: %s",
                             ctrl_meta(job, "namespace"), jname, drv_error_msg(&e));
    char msg[300];
    drv_fmt_cut(msg, sizeof(msg), "Created pod: %s", ctrl_meta(pod, "name"));
    ctrl_event(s, job, DRV_KIND_JOB, "Normal", "SuccessfulCreate", msg, COMPONENT, now_ms);
    return DRV_OK;
}

/* The stored Job with the selector Kubernetes makes at creation when it has none: its uid,
 * as the controller-uid label of the selector and of the template (with job-name). *out gets
 * it (NULL when job has a selector or manualSelector). */
static drv_err_t ensure_selector(drv_hstore_t *s, const cJSON *job, cJSON **out, drv_error_t *err)
{
    *out = NULL;
    const cJSON *spec = drv_json_get(job, "spec");
    if (drv_json_get(spec, "selector") || drv_json_true(spec, "manualSelector"))
        return DRV_OK;
    _cleanup_cjson_ cJSON *j = cJSON_Duplicate(job, true);
    const char *uid = ctrl_meta(job, "uid"), *name = ctrl_meta(job, "name");
    cJSON *js = j ? drv_json_get(j, "spec") : NULL, *sel = NULL, *ml = NULL;
    cJSON *tpl = js ? drv_json_get(js, "template") : NULL;
    cJSON *tm = tpl ? drv_json_get(tpl, "metadata") : NULL;
    bool ok = tpl && (tm || ctrl_set(tpl, "metadata", tm = cJSON_CreateObject()));
    cJSON *tl = ok ? drv_json_get(tm, "labels") : NULL;
    ok = ok && (tl || ctrl_set(tm, "labels", tl = cJSON_CreateObject())) &&
         ctrl_set(js, "selector", sel = cJSON_CreateObject()) &&
         ctrl_set(sel, "matchLabels", ml = cJSON_CreateObject()) &&
         set_str(ml, DRV_CTRL_LABEL_JOB_UID, uid) && set_str(tl, DRV_CTRL_LABEL_JOB_UID, uid) &&
         set_str(tl, DRV_CTRL_LABEL_JOB_NAME, name) && set_str(tl, "controller-uid", uid) &&
         set_str(tl, "job-name", name);
    /* A Job without labels of its own takes its pods' (Kubernetes' default). */
    cJSON *jm = ok ? drv_json_get(j, "metadata") : NULL;
    const cJSON *jl = drv_json_get(jm, "labels");
    if (ok && (!cJSON_IsObject(jl) || !jl->child))
        ok = ctrl_set(jm, "labels", cJSON_Duplicate(tl, true));
    if (!ok)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "job %s selector", name);
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_model_normalize(j, NULL);
    if (r == DRV_OK)
        r = drv_hstore_update(s, DRV_KIND_JOB, j, &e);
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "job %s/%s selector: %s",
                             ctrl_meta(job, "namespace"), name,
                             e.code ? drv_error_msg(&e) : drv_strerror(r));
    /* The status stays as listed (normalize dropped it from the copy). */
    const cJSON *st = drv_json_get(job, "status");
    if (st && !ctrl_set(j, "status", cJSON_Duplicate(st, true)))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "job %s", name);
    *out = j;
    j = NULL;
    return DRV_OK;
}

/* ---- one Job ---- */

typedef struct job_state {
    int64_t active, succeeded, failed, ready;
    int64_t start_ms, completion_ms;
    const char *end_type; /* "Complete", "Failed" or NULL */
    const char *reason;   /* of the end */
    char message[400];    /* of the end */
    bool suspended;
    cJSON *completed; /* completedIndexes, or NULL */
} job_state_t;

static cJSON *make_status(const cJSON *job, const job_state_t *js, int64_t now_ms)
{
    cJSON *st = cJSON_CreateObject(), *conds = NULL;
    char ts[32];
    bool ok = st && cJSON_AddNumberToObject(st, "active", (double)js->active) &&
              cJSON_AddNumberToObject(st, "succeeded", (double)js->succeeded) &&
              cJSON_AddNumberToObject(st, "failed", (double)js->failed) &&
              cJSON_AddNumberToObject(st, "ready", (double)js->ready) &&
              ctrl_set(st, "uncountedTerminatedPods", cJSON_CreateObject());
    if (ok && js->start_ms > 0) {
        drv_ctrl_time_format(js->start_ms, ts, sizeof(ts));
        ok = set_str(st, "startTime", ts);
    }
    if (ok && js->completion_ms > 0) {
        drv_ctrl_time_format(js->completion_ms, ts, sizeof(ts));
        ok = set_str(st, "completionTime", ts);
    }
    if (ok && js->completed)
        ok = ctrl_set(st, "completedIndexes", cJSON_Duplicate(js->completed, true));
    /* Conditions: the old ones kept (their transition times), the end's added. */
    const cJSON *old = drv_json_get(drv_json_get(job, "status"), "conditions"), *c;
    ok = ok && ctrl_set(st, "conditions", conds = cJSON_CreateArray());
    cJSON_ArrayForEach(c, (ok && cJSON_IsArray(old) ? old : NULL))
    {
        const char *t = drv_json_str(c, "type");
        if (t && !strcmp(t, "Suspended"))
            continue;
        ok = ok && cJSON_AddItemToArray(conds, cJSON_Duplicate(c, true));
    }
    const cJSON *prev_susp = ctrl_condition(job, "Suspended");
    if (ok && (js->suspended || prev_susp))
        ok = cJSON_AddItemToArray(
            conds, ctrl_make_condition(prev_susp, "Suspended", js->suspended ? "True" : "False",
                                       js->suspended ? "JobSuspended" : "JobResumed",
                                       js->suspended ? "Job suspended" : "Job resumed", now_ms));
    if (ok && js->end_type && !ctrl_condition(job, js->end_type)) {
        const char *pre = strcmp(js->end_type, "Complete") ? "FailureTarget" : "SuccessCriteriaMet";
        ok = cJSON_AddItemToArray(
                 conds, ctrl_make_condition(NULL, pre, "True", js->reason, js->message, now_ms)) &&
             cJSON_AddItemToArray(conds, ctrl_make_condition(NULL, js->end_type, "True", js->reason,
                                                             js->message, now_ms));
    }
    if (ok && !conds->child)
        cJSON_DeleteItemFromObjectCaseSensitive(st, "conditions");
    if (!ok) {
        cJSON_Delete(st);
        return NULL;
    }
    return st;
}

static drv_err_t write_status(drv_hstore_t *s, const cJSON *job, const job_state_t *js,
                              int64_t now_ms, drv_error_t *err)
{
    cJSON *st = make_status(job, js, now_ms);
    if (!st)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "job status");
    const cJSON *old = drv_json_get(job, "status");
    if (old && cJSON_Compare(old, st, true)) {
        cJSON_Delete(st);
        return DRV_OK;
    }
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_update_status(s, DRV_KIND_JOB, ctrl_meta(job, "namespace"),
                                           ctrl_meta(job, "name"), st, NULL, &e);
    if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, e.sys_errno, "job %s status: %s", ctrl_meta(job, "name"),
                             drv_error_msg(&e));
    return DRV_OK;
}

/* Deletes a Job whose ttlSecondsAfterFinished has run out, with its pods. */
static drv_err_t expire(drv_hstore_t *s, const cJSON *job, const cJSON *pods, drv_error_t *err)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, pods)
    {
        const char *puid = drv_json_str(drv_ctrl_controller_of(p), "uid");
        if (puid && !strcmp(puid, ctrl_meta(job, "uid"))) {
            drv_err_t r = ctrl_delete_pod(s, p, err);
            if (r != DRV_OK)
                return r;
        }
    }
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_delete(s, DRV_KIND_JOB, ctrl_meta(job, "namespace"),
                                    ctrl_meta(job, "name"), NULL, &e);
    if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, e.sys_errno, "delete job %s: %s", ctrl_meta(job, "name"),
                             drv_error_msg(&e));
    return DRV_OK;
}

static int64_t pod_index(const cJSON *pod, int64_t n)
{
    const char *s = pod_annotation(pod, DRV_CTRL_ANN_JOB_INDEX);
    char *end;
    long v = s ? strtol(s, &end, 10) : -1;
    return s && *s && !*end && v >= 0 && v < n ? v : -1;
}

static drv_err_t sync_job(drv_hstore_t *s, const cJSON *job, const cJSON *pods, int64_t now_ms,
                          drv_error_t *err)
{
    const cJSON *spec = drv_json_get(job, "spec"), *status = drv_json_get(job, "status");
    int64_t fin_ms = -1;
    const char *fin = ctrl_job_finished(job, &fin_ms);
    job_pods_t jp;
    drv_err_t r = sort_pods(pods, ctrl_meta(job, "uid"), &jp, err);
    if (r != DRV_OK) {
        job_pods_free(&jp);
        return r;
    }
    job_state_t js = {
        .succeeded = ctrl_int(status, "succeeded", 0),
        .failed = ctrl_int(status, "failed", 0),
        .start_ms = drv_ctrl_time_parse(drv_json_str(status, "startTime")),
        .completion_ms = drv_ctrl_time_parse(drv_json_str(status, "completionTime")),
        .suspended = drv_json_true(spec, "suspend"),
    };
    bool indexed = !strcmp(drv_json_str_or(spec, "completionMode", "NonIndexed"), "Indexed");
    bool has_completions = drv_json_get(spec, "completions") != NULL;
    int64_t completions = ctrl_int(spec, "completions", 1),
            parallelism = ctrl_int(spec, "parallelism", 1),
            backoff_limit = ctrl_int(spec, "backoffLimit", 6);
    if (completions > INDEXED_MAX && indexed)
        completions = INDEXED_MAX;
    _cleanup_free_ bool *done = indexed ? calloc((size_t)completions + 1, 1) : NULL;
    if (indexed && !done) {
        job_pods_free(&jp);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "job indexes");
    }
    if (indexed)
        indexes_parse(drv_json_str(status, "completedIndexes"), done, completions);

    /* Count the pods that ended since the last round, once each. */
    const char *fail_reason = NULL;
    for (size_t i = 0; i < jp.n_ended && r == DRV_OK; i++) {
        const cJSON *p = jp.ended[i];
        if (!strcmp(pod_phase(p), "Succeeded")) {
            int64_t ix = indexed ? pod_index(p, completions) : -1;
            if (ix >= 0)
                done[ix] = true;
            else if (!indexed)
                js.succeeded++;
        } else {
            char msg[400];
            const char *action = failure_action(job, p, msg, sizeof(msg));
            if (!strcmp(action, "FailJob") && !fail_reason) {
                fail_reason = "PodFailurePolicy";
                drv_fmt_cut(js.message, sizeof(js.message), "%s", msg);
            }
            if (strcmp(action, "Ignore"))
                js.failed++;
        }
        r = untrack(s, p, err);
    }
    /* Active pods last round that are gone without an end: failed, as Kubernetes counts them. */
    int64_t was_active = ctrl_int(status, "active", 0), seen = (int64_t)(jp.n_active + jp.n_ended);
    if (!fin && !js.suspended && was_active > seen)
        js.failed += was_active - seen;
    if (indexed) {
        js.succeeded = 0;
        for (int64_t i = 0; i < completions; i++)
            js.succeeded += done[i];
        js.completed = indexes_format(done, completions);
    }
    js.ready = jp.ready;
    if (r != DRV_OK)
        goto out;

    if (fin) {
        /* Finished: nothing runs any more; the TTL, if any, deletes it. */
        js.end_type = NULL;
        for (size_t i = 0; i < jp.n_active && r == DRV_OK; i++)
            r = delete_pod(s, job, jp.active[i], now_ms, err);
        js.active = 0;
        js.ready = 0;
        int64_t ttl = ctrl_int(spec, "ttlSecondsAfterFinished", -1);
        if (r == DRV_OK && ttl >= 0 && fin_ms >= 0 && now_ms >= fin_ms + ttl * 1000) {
            r = expire(s, job, pods, err);
            goto out;
        }
        if (r == DRV_OK)
            r = write_status(s, job, &js, now_ms, err);
        goto out;
    }
    if (js.suspended) {
        for (size_t i = 0; i < jp.n_active && r == DRV_OK; i++)
            r = delete_pod(s, job, jp.active[i], now_ms, err);
        js.active = js.ready = 0;
        if (r == DRV_OK)
            r = write_status(s, job, &js, now_ms, err);
        goto out;
    }
    /* Running (again): the deadline counts from now when it was suspended. */
    const char *was_susp = drv_json_str(ctrl_condition(job, "Suspended"), "status");
    if (js.start_ms < 0 || (was_susp && !strcmp(was_susp, "True")))
        js.start_ms = now_ms;

    const char *rp = drv_json_str_at(spec, "template.spec.restartPolicy");
    bool on_failure = rp && !strcmp(rp, "OnFailure");
    int64_t ads = ctrl_int(spec, "activeDeadlineSeconds", -1);
    if (fail_reason) {
        /* js.message says which rule. */
    } else if (js.failed > backoff_limit ||
               (on_failure && (backoff_limit == 0 ? jp.restarts + js.failed > 0
                                                  : jp.restarts + js.failed >= backoff_limit))) {
        fail_reason = "BackoffLimitExceeded";
        drv_fmt_cut(js.message, sizeof(js.message), "Job has reached the specified backoff limit");
    } else if (ads > 0 && now_ms >= js.start_ms + ads * 1000) {
        fail_reason = "DeadlineExceeded";
        drv_fmt_cut(js.message, sizeof(js.message),
                    "Job was active longer than specified deadline");
    }
    bool complete = false;
    if (!fail_reason) {
        if (indexed)
            complete = js.succeeded >= completions;
        else if (has_completions)
            complete = js.succeeded >= completions;
        else
            complete = js.succeeded > 0 && jp.n_active == 0;
    }
    if (fail_reason || complete) {
        for (size_t i = 0; i < jp.n_active && r == DRV_OK; i++)
            r = delete_pod(s, job, jp.active[i], now_ms, err);
        js.active = js.ready = 0;
        js.end_type = fail_reason ? "Failed" : "Complete";
        js.reason = fail_reason ? fail_reason : "CompletionsReached";
        if (complete) {
            drv_fmt_cut(js.message, sizeof(js.message),
                        "Reached expected number of succeeded pods");
            js.completion_ms = now_ms;
            ctrl_event(s, job, DRV_KIND_JOB, "Normal", "Completed", "Job completed", COMPONENT,
                       now_ms);
        } else {
            ctrl_event(s, job, DRV_KIND_JOB, "Warning", fail_reason, js.message, COMPONENT, now_ms);
        }
        if (r == DRV_OK)
            r = write_status(s, job, &js, now_ms, err);
        goto out;
    }

    /* How many pods should run now. */
    int64_t want;
    if (indexed)
        want = completions - js.succeeded;
    else if (has_completions)
        want = completions - js.succeeded;
    else
        want = js.succeeded > 0 ? (int64_t)jp.n_active : parallelism;
    if (want > parallelism)
        want = parallelism;
    if (want < 0)
        want = 0;
    js.active = (int64_t)jp.n_active;
    if (js.active > want) {
        const cJSON **extra = jp.active;
        ctrl_sort_for_deletion(extra, jp.n_active);
        for (int64_t i = 0; i < js.active - want && r == DRV_OK; i++)
            r = delete_pod(s, job, extra[i], now_ms, err);
        js.active = want;
    }
    /* After failures, replacements wait 10 s, doubling per failure, at most 6 min. */
    int64_t delay = 0;
    if (js.failed > 0 && jp.last_fail_ms > 0) {
        delay = BACKOFF_BASE_MS;
        for (int64_t i = 1; i < js.failed && delay < BACKOFF_MAX_MS; i++)
            delay *= 2;
        if (delay > BACKOFF_MAX_MS)
            delay = BACKOFF_MAX_MS;
    }
    if (r == DRV_OK && js.active < want && now_ms >= jp.last_fail_ms + delay) {
        if (indexed) {
            _cleanup_free_ bool *busy = calloc((size_t)completions + 1, 1);
            if (!busy) {
                r = drv_error_set(err, DRV_ERR_NOMEM, 0, "job indexes");
                goto out;
            }
            for (size_t i = 0; i < jp.n_active; i++) {
                int64_t ix = pod_index(jp.active[i], completions);
                if (ix >= 0)
                    busy[ix] = true;
            }
            for (int64_t i = 0; i < completions && js.active < want && r == DRV_OK; i++)
                if (!done[i] && !busy[i] && (r = create_pod(s, job, i, now_ms, err)) == DRV_OK)
                    js.active++;
        } else {
            while (js.active < want && r == DRV_OK)
                if ((r = create_pod(s, job, -1, now_ms, err)) == DRV_OK)
                    js.active++;
        }
    }
    if (r == DRV_OK)
        r = write_status(s, job, &js, now_ms, err);
out:
    cJSON_Delete(js.completed);
    job_pods_free(&jp);
    return r;
}

/* Pods whose controller is a Job that no longer exists go with it. */
static drv_err_t collect_orphans(drv_hstore_t *s, const cJSON *jobs, const cJSON *pods,
                                 drv_error_t *err)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, pods)
    {
        const cJSON *ref = drv_ctrl_controller_of(p);
        const char *k = drv_json_str(ref, "kind"), *uid = drv_json_str(ref, "uid");
        if (!k || strcmp(k, "Job") || !uid)
            continue;
        bool found = false;
        const cJSON *j;
        cJSON_ArrayForEach(j, jobs)
        {
            if (!strcmp(ctrl_meta(j, "uid"), uid)) {
                found = true;
                break;
            }
        }
        if (!found) {
            drv_err_t r = ctrl_delete_pod(s, p, err);
            if (r != DRV_OK)
                return r;
        }
    }
    return DRV_OK;
}

drv_err_t drv_ctrl_jobs_reconcile(drv_hstore_t *s, int64_t now_ms, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *jobs = NULL;
    const cJSON *pods = NULL; /* the round's shared listing */
    drv_err_t r = drv_hstore_list(s, DRV_KIND_JOB, NULL, NULL, &jobs, NULL, err);
    if (r == DRV_OK)
        r = drv_hstore_list_shared(s, DRV_KIND_POD, &pods, err);
    if (r != DRV_OK)
        return r;
    drv_err_t first = DRV_OK;
    cJSON *job = jobs->child;
    while (job) {
        cJSON *next = job->next, *upd = NULL;
        drv_error_t e = DRV_ERROR_INIT;
        r = ensure_selector(s, job, &upd, &e);
        if (upd) {
            cJSON_ReplaceItemViaPointer(jobs, job, upd);
            job = upd;
        }
        if (r == DRV_OK)
            r = sync_job(s, job, pods, now_ms, &e);
        if (r != DRV_OK && first == DRV_OK) {
            first = r;
            if (err)
                *err = e;
        }
        job = next;
    }
    r = collect_orphans(s, jobs, pods, err);
    return first != DRV_OK ? first : r;
}
