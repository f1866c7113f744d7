/* The CronJob controller (batch/v1): makes a Job from the template at each time of the
 * schedule, read in spec.timeZone (shared/src/cron.c), with Kubernetes' rules: the times
 * missed since the last one (the hub was down, the CronJob new) are looked for from
 * lastScheduleTime (or the creation), no further back than startingDeadlineSeconds; only the
 * most recent runs, more than 100 missed is a TooManyMissedTimes warning; concurrencyPolicy
 * Allow, Forbid (JobAlreadyActive: the time waits while within its deadline) or Replace;
 * finished Jobs beyond successfulJobsHistoryLimit/failedJobsHistoryLimit are deleted, oldest
 * first. Jobs are named <cronjob>-<scheduled time in minutes since the epoch>, as Kubernetes
 * names them, so that a time never makes two Jobs. */
#include "ctrl/ctrl_int.h"

#include <stdlib.h>
#include <string.h>

#include "drover/cleanup.h"
#include "drover/cron.h"
#include "drover/fmt.h"

#define COMPONENT "cronjob-controller"
#define MISSED_MAX 100
/* How far back a missed time is still told as an event (older ones would outlive it). */
#define MISS_EVENT_MAX_MS (30 * 60 * 1000LL)

static bool set_str(cJSON *obj, const char *key, const char *v)
{
    return ctrl_set(obj, key, cJSON_CreateString(v));
}

/* RFC 3339 with the zone's offset ("2026-12-07T10:00:00+01:00"), as Kubernetes writes the
 * scheduled-timestamp annotation. */
static void format_local(int64_t utc_s, const drv_tz_t *tz, char *out, size_t outsz)
{
    int64_t off = drv_tz_offset(tz, utc_s);
    char ts[32];
    drv_ctrl_time_format((utc_s + off) * 1000, ts, sizeof(ts));
    if (!off || strlen(ts) < 20) {
        drv_fmt_cut(out, outsz, "%s", ts);
        return;
    }
    int64_t a = off < 0 ? -off : off;
    drv_fmt_cut(out, outsz, "%.19s%c%02lld:%02lld", ts, off < 0 ? '-' : '+', (long long)(a / 3600),
                (long long)(a / 60 % 60));
}

typedef struct cj_jobs {
    const cJSON **active, **ok, **failed;
    size_t n_active, n_ok, n_failed;
} cj_jobs_t;

static int by_age(const void *a, const void *b)
{
    const cJSON *ja = *(const cJSON *const *)a, *jb = *(const cJSON *const *)b;
    int64_t ta = drv_ctrl_time_parse(drv_json_str(drv_json_get(ja, "status"), "startTime")),
            tb = drv_ctrl_time_parse(drv_json_str(drv_json_get(jb, "status"), "startTime"));
    if (ta < 0)
        ta = drv_ctrl_time_parse(ctrl_meta(ja, "creationTimestamp"));
    if (tb < 0)
        tb = drv_ctrl_time_parse(ctrl_meta(jb, "creationTimestamp"));
    if (ta != tb)
        return ta < tb ? -1 : 1;
    return strcmp(ctrl_meta(ja, "name"), ctrl_meta(jb, "name"));
}

static drv_err_t delete_job(drv_hstore_t *s, const cJSON *cj, const cJSON *job, int64_t now_ms,
                            drv_error_t *err)
{
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_delete(s, DRV_KIND_JOB, ctrl_meta(job, "namespace"),
                                    ctrl_meta(job, "name"), NULL, &e);
    if (r == DRV_ERR_NOTFOUND)
        return DRV_OK;
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "delete job %s/%s: %s",
                             ctrl_meta(job, "namespace"), ctrl_meta(job, "name"),
                             drv_error_msg(&e));
    /* Its pods go at the job controller's next round (their owner is gone). */
    char msg[300];
    drv_fmt_cut(msg, sizeof(msg), "Deleted job %s", ctrl_meta(job, "name"));
    ctrl_event(s, cj, DRV_KIND_CRONJOB, "Normal", "SuccessfulDelete", msg, COMPONENT, now_ms);
    return DRV_OK;
}

static cJSON *job_ref(const cJSON *job);

/* Stores the Job for scheduled time t (UTC seconds); *ref gets a reference to it (NULL if it
 * existed already). DRV_ERR_EXISTS when it is there already. */
static drv_err_t create_job(drv_hstore_t *s, const cJSON *cj, int64_t t, const drv_tz_t *tz,
                            int64_t now_ms, cJSON **ref, drv_error_t *err)
{
    *ref = NULL;
    const cJSON *jt = drv_json_at(cj, "spec.jobTemplate");
    char name[300], ts[48];
    if (drv_fmt(name, sizeof(name), "%s-%lld", ctrl_meta(cj, "name"), (long long)(t / 60)) !=
        DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "cronjob %s: job name too long",
                             ctrl_meta(cj, "name"));
    format_local(t, tz, ts, sizeof(ts));
    _cleanup_cjson_ cJSON *job = cJSON_CreateObject();
    cJSON *meta = NULL, *ann = NULL;
    const cJSON *tl = drv_json_at(jt, "metadata.labels"),
                *ta = drv_json_at(jt, "metadata.annotations");
    bool ok =
        job && set_str(job, "apiVersion", "batch/v1") && set_str(job, "kind", "Job") &&
        ctrl_set(job, "metadata", meta = cJSON_CreateObject()) && set_str(meta, "name", name) &&
        set_str(meta, "namespace", ctrl_meta(cj, "namespace")) &&
        ctrl_set(meta, "annotations",
                 ann = cJSON_IsObject(ta) ? cJSON_Duplicate(ta, true) : cJSON_CreateObject()) &&
        set_str(ann, DRV_CTRL_ANN_CRON_SCHEDULED, ts) &&
        ctrl_set(meta, "ownerReferences", ctrl_owner_refs(cj, DRV_KIND_CRONJOB)) &&
        ctrl_set(job, "spec", cJSON_Duplicate(drv_json_get(jt, "spec"), true));
    if (ok && cJSON_IsObject(tl))
        ok = ctrl_set(meta, "labels", cJSON_Duplicate(tl, true));
    if (!ok)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "job for cronjob %s", ctrl_meta(cj, "name"));
    drv_diags_t d = {0};
    drv_err_t r = drv_model_normalize(job, &d);
    if (r != DRV_OK) {
        _cleanup_free_ char *msg = drv_diags_format(&d, "  ");
        drv_diags_free(&d);
        return drv_error_set(err, r, 0, "job %s is invalid:\n%s", name, msg ? msg : "");
    }
    drv_diags_free(&d);
    drv_error_t e = DRV_ERROR_INIT;
    r = drv_hstore_create(s, DRV_KIND_JOB, job, &e);
    if (r == DRV_ERR_EXISTS)
        return r;
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "create job %s/%s: %s",
                             ctrl_meta(cj, "namespace"), name, drv_error_msg(&e));
    char msg[400];
    drv_fmt_cut(msg, sizeof(msg), "Created job %s", name);
    ctrl_event(s, cj, DRV_KIND_CRONJOB, "Normal", "SuccessfulCreate", msg, COMPONENT, now_ms);
    if (!(*ref = job_ref(job)))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "cronjob status");
    return DRV_OK;
}

/* Deletes the oldest of jobs (n of them, sorted oldest first) beyond limit. */
static drv_err_t prune(drv_hstore_t *s, const cJSON *cj, const cJSON **jobs, size_t n,
                       int64_t limit, int64_t now_ms, drv_error_t *err)
{
    for (size_t i = 0; limit >= 0 && (int64_t)(n - i) > limit; i++) {
        drv_err_t r = delete_job(s, cj, jobs[i], now_ms, err);
        if (r != DRV_OK)
            return r;
    }
    return DRV_OK;
}

static cJSON *job_ref(const cJSON *job)
{
    cJSON *ref = cJSON_CreateObject();
    if (!ref || !set_str(ref, "apiVersion", "batch/v1") || !set_str(ref, "kind", "Job") ||
        !set_str(ref, "name", ctrl_meta(job, "name")) ||
        !set_str(ref, "namespace", ctrl_meta(job, "namespace")) ||
        !set_str(ref, "uid", ctrl_meta(job, "uid")) ||
        !set_str(ref, "resourceVersion", ctrl_meta(job, "resourceVersion"))) {
        cJSON_Delete(ref);
        return NULL;
    }
    return ref;
}

static bool listed_active(const cJSON *cj, const char *uid)
{
    const cJSON *ref;
    cJSON_ArrayForEach(ref, drv_json_at(cj, "status.active"))
    {
        const char *u = drv_json_str(ref, "uid");
        if (u && !strcmp(u, uid))
            return true;
    }
    return false;
}

static drv_err_t sync_cronjob(drv_hstore_t *s, const cJSON *cj, const cJSON *jobs, int64_t now_ms,
                              drv_error_t *err)
{
    const cJSON *spec = drv_json_get(cj, "spec"), *status = drv_json_get(cj, "status");
    const char *uid = ctrl_meta(cj, "uid");
    size_t n = drv_json_array_len(jobs);
    cj_jobs_t cjs = {0};
    _cleanup_free_ const cJSON **all = calloc(3 * (n ? n : 1), sizeof(*all));
    if (!all)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "cronjob jobs");
    cjs.active = all;
    cjs.ok = all + n;
    cjs.failed = all + 2 * n;
    int64_t last_success = drv_ctrl_time_parse(drv_json_str(status, "lastSuccessfulTime"));
    const cJSON *j;
    cJSON_ArrayForEach(j, jobs)
    {
        const char *ouid = drv_json_str(drv_ctrl_controller_of(j), "uid");
        if (!ouid || strcmp(ouid, uid))
            continue;
        int64_t at = -1;
        const char *fin = ctrl_job_finished(j, &at);
        if (!fin) {
            cjs.active[cjs.n_active++] = j;
            continue;
        }
        if (listed_active(cj, ctrl_meta(j, "uid"))) {
            char msg[300];
            drv_fmt_cut(msg, sizeof(msg), "Saw completed job: %s, condition: %s",
                        ctrl_meta(j, "name"), fin);
            ctrl_event(s, cj, DRV_KIND_CRONJOB, "Normal", "SawCompletedJob", msg, COMPONENT,
                       now_ms);
        }
        if (!strcmp(fin, "Complete")) {
            cjs.ok[cjs.n_ok++] = j;
            int64_t done = drv_ctrl_time_parse(drv_json_str_at(j, "status.completionTime"));
            if (done < 0)
                done = at;
            if (done > last_success)
                last_success = done;
        } else {
            cjs.failed[cjs.n_failed++] = j;
        }
    }
    qsort(cjs.ok, cjs.n_ok, sizeof(*cjs.ok), by_age);
    qsort(cjs.failed, cjs.n_failed, sizeof(*cjs.failed), by_age);
    drv_err_t r = prune(s, cj, cjs.ok, cjs.n_ok, ctrl_int(spec, "successfulJobsHistoryLimit", 3),
                        now_ms, err);
    if (r == DRV_OK)
        r = prune(s, cj, cjs.failed, cjs.n_failed, ctrl_int(spec, "failedJobsHistoryLimit", 1),
                  now_ms, err);
    if (r != DRV_OK)
        return r;

    int64_t last_sched = drv_ctrl_time_parse(drv_json_str(status, "lastScheduleTime"));
    int64_t new_sched = last_sched;
    _cleanup_cjson_ cJSON *created = NULL; /* a reference to the Job made this round */
    drv_cron_t cron;
    drv_tz_t *tz = NULL;
    drv_error_t e = DRV_ERROR_INIT;
    const char *tzname = drv_json_str(spec, "timeZone");
    bool can = drv_cron_parse(drv_json_str_or(spec, "schedule", ""), &cron, &e) == DRV_OK &&
               (!tzname || drv_tz_load(NULL, tzname, &tz, &e) == DRV_OK);
    if (!can) {
        char msg[400];
        drv_fmt_cut(msg, sizeof(msg), "Unparseable schedule or time zone: %s", drv_error_msg(&e));
        ctrl_event(s, cj, DRV_KIND_CRONJOB, "Warning", "UnparseableSchedule", msg, COMPONENT,
                   (now_ms / 3600000) * 3600000); /* once an hour */
    }
    if (can && !drv_json_true(spec, "suspend")) {
        int64_t now_s = now_ms / 1000;
        int64_t earliest = last_sched >= 0
                               ? last_sched / 1000
                               : drv_ctrl_time_parse(ctrl_meta(cj, "creationTimestamp")) / 1000;
        int64_t sds = ctrl_int(spec, "startingDeadlineSeconds", -1);
        int64_t window = earliest;
        if (sds >= 0 && now_s - sds > window)
            window = now_s - sds;
        /* The most recent time due, in (window, now], and how many were due. */
        int64_t most_recent = -1, missed = 0;
        for (int64_t t = drv_cron_next(&cron, tz, window); t >= 0 && t <= now_s;
             t = drv_cron_next(&cron, tz, t)) {
            most_recent = t;
            if (++missed > MISSED_MAX) {
                /* Count no further: look for the last one back from now, over a window
                 * doubled until it holds one. */
                int64_t last = -1;
                for (int64_t back = 3600; last < 0; back *= 2) {
                    int64_t from = now_s - back > t ? now_s - back : t;
                    for (int64_t x = drv_cron_next(&cron, tz, from); x >= 0 && x <= now_s;
                         x = drv_cron_next(&cron, tz, x))
                        last = x;
                    if (from == t)
                        break;
                }
                if (last > most_recent)
                    most_recent = last;
                break;
            }
        }
        if (missed > MISSED_MAX) {
            char msg[300];
            drv_fmt_cut(msg, sizeof(msg),
                        "too many missed start times: > %d. Set or decrease "
                        ".spec.startingDeadlineSeconds or check clock skew",
                        MISSED_MAX);
            ctrl_event(s, cj, DRV_KIND_CRONJOB, "Warning", "TooManyMissedTimes", msg, COMPONENT,
                       most_recent * 1000);
        }
        /* Times that passed while nothing ran and that are now beyond their deadline. */
        if (sds >= 0 && window > earliest) {
            int64_t lost = -1;
            for (int64_t t = drv_cron_next(&cron, tz, earliest); t >= 0 && t <= window;
                 t = drv_cron_next(&cron, tz, t))
                lost = t;
            if (lost >= 0 && now_ms - lost * 1000 < MISS_EVENT_MAX_MS) {
                char ts[48], msg[300];
                format_local(lost, tz, ts, sizeof(ts));
                drv_fmt_cut(msg, sizeof(msg), "Missed scheduled time to start a job: %s", ts);
                /* Told once: the event is named after the time it is about. */
                ctrl_event(s, cj, DRV_KIND_CRONJOB, "Warning", "MissSchedule", msg, COMPONENT,
                           lost * 1000);
            }
        }
        const char *policy = drv_json_str_or(spec, "concurrencyPolicy", "Allow");
        bool run = most_recent >= 0;
        if (run && cjs.n_active && !strcmp(policy, "Forbid")) {
            run = false;
            ctrl_event(s, cj, DRV_KIND_CRONJOB, "Normal", "JobAlreadyActive",
                       "Not starting job because prior execution is running and concurrency "
                       "policy is Forbid",
                       COMPONENT, most_recent * 1000);
        }
        if (run && cjs.n_active && !strcmp(policy, "Replace")) {
            for (size_t i = 0; i < cjs.n_active && r == DRV_OK; i++)
                r = delete_job(s, cj, cjs.active[i], now_ms, err);
            cjs.n_active = 0;
        }
        if (run && r == DRV_OK) {
            r = create_job(s, cj, most_recent, tz, now_ms, &created, err);
            if (r == DRV_ERR_EXISTS)
                r = DRV_OK; /* made before (a round whose status write was lost) */
            new_sched = most_recent * 1000;
        }
    }
    drv_tz_free(tz);
    if (r != DRV_OK)
        return r;

    /* status: active (Jobs not finished), lastScheduleTime, lastSuccessfulTime. */
    cJSON *st = cJSON_CreateObject(), *act = NULL;
    char ts[32];
    bool ok = st && ctrl_set(st, "active", act = cJSON_CreateArray());
    for (size_t i = 0; ok && i < cjs.n_active; i++)
        ok = cJSON_AddItemToArray(act, job_ref(cjs.active[i]));
    if (ok && created) {
        ok = cJSON_AddItemToArray(act, created);
        created = NULL;
    }
    if (ok && !act->child)
        cJSON_DeleteItemFromObjectCaseSensitive(st, "active");
    if (ok && new_sched >= 0) {
        drv_ctrl_time_format(new_sched, ts, sizeof(ts));
        ok = set_str(st, "lastScheduleTime", ts);
    }
    if (ok && last_success >= 0) {
        drv_ctrl_time_format(last_success, ts, sizeof(ts));
        ok = set_str(st, "lastSuccessfulTime", ts);
    }
    if (!ok) {
        cJSON_Delete(st);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "cronjob status");
    }
    if (status && cJSON_Compare(status, st, true)) {
        cJSON_Delete(st);
        return DRV_OK;
    }
    r = drv_hstore_update_status(s, DRV_KIND_CRONJOB, ctrl_meta(cj, "namespace"),
                                 ctrl_meta(cj, "name"), st, NULL, &e);
    if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, e.sys_errno, "cronjob %s status: %s", ctrl_meta(cj, "name"),
                             drv_error_msg(&e));
    return DRV_OK;
}

/* Jobs whose controller is a CronJob that no longer exists go with it (their pods follow at
 * the job controller's round). */
static drv_err_t collect_orphans(drv_hstore_t *s, const cJSON *cjs, const cJSON *jobs,
                                 drv_error_t *err)
{
    const cJSON *j;
    cJSON_ArrayForEach(j, jobs)
    {
        const cJSON *ref = drv_ctrl_controller_of(j);
        const char *k = drv_json_str(ref, "kind"), *uid = drv_json_str(ref, "uid");
        if (!k || strcmp(k, "CronJob") || !uid)
            continue;
        bool found = false;
        const cJSON *cj;
        cJSON_ArrayForEach(cj, cjs)
        {
            if (!strcmp(ctrl_meta(cj, "uid"), uid)) {
                found = true;
                break;
            }
        }
        drv_error_t e = DRV_ERROR_INIT;
        drv_err_t r = found ? DRV_OK
                            : drv_hstore_delete(s, DRV_KIND_JOB, ctrl_meta(j, "namespace"),
                                                ctrl_meta(j, "name"), NULL, &e);
        if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
            return drv_error_set(err, r, e.sys_errno, "delete job %s/%s: %s",
                                 ctrl_meta(j, "namespace"), ctrl_meta(j, "name"),
                                 drv_error_msg(&e));
    }
    return DRV_OK;
}

drv_err_t drv_ctrl_cronjobs_reconcile(drv_hstore_t *s, int64_t now_ms, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *cjs = NULL;
    _cleanup_cjson_ cJSON *jobs = NULL;
    drv_err_t r = drv_hstore_list(s, DRV_KIND_CRONJOB, NULL, NULL, &cjs, NULL, err);
    if (r == DRV_OK)
        r = drv_hstore_list(s, DRV_KIND_JOB, NULL, NULL, &jobs, NULL, err);
    if (r != DRV_OK)
        return r;
    r = collect_orphans(s, cjs, jobs, err);
    if (r != DRV_OK)
        return r;
    drv_err_t first = DRV_OK;
    const cJSON *cj;
    cJSON_ArrayForEach(cj, cjs)
    {
        drv_error_t e = DRV_ERROR_INIT;
        r = sync_cronjob(s, cj, jobs, now_ms, &e);
        if (r != DRV_OK && first == DRV_OK) {
            first = r;
            if (err)
                *err = e;
        }
    }
    return first;
}
