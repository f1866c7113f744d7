/* The Job and CronJob controllers over a real store in a temporary directory. Pods' ends are
 * written as their agents report them; time is passed in (the controllers' clock), so the
 * back-off, deadlines, TTLs and minute schedules are tested without waiting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctrl/ctrl.h"
#include "drover/json.h"

#define T0 1800000000000LL /* 2027-01-15T08:00:00Z, on a whole minute */

struct fx {
    char dir[64];
    drv_hstore_t *s;
};

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/drover-job-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char path[128];
    snprintf(path, sizeof(path), "%s/hub.db", f->dir);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_open(path, &f->s, &err) != DRV_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    drv_hstore_close(f->s);
    nftw(f->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static cJSON *json(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!j)
        fail_msg("bad test JSON: %s", text);
    return j;
}

static void create(drv_hstore_t *s, const char *text)
{
    cJSON *o = json(text);
    drv_diags_t d = {0};
    if (drv_model_normalize(o, &d) != DRV_OK)
        fail_msg("invalid test object: %s", drv_diags_format(&d, ""));
    drv_diags_free(&d);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_create(s, drv_model_kind(o), o, &err) != DRV_OK)
        fail_msg("create: %s", drv_error_msg(&err));
    cJSON_Delete(o);
}

/* A Job of one container; extra is more of its spec ("\"completions\":2,"). */
static void job(drv_hstore_t *s, const char *name, const char *extra, const char *policy)
{
    char buf[4096];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"name\":\"%s\"},"
             "\"spec\":{%s\"template\":{\"spec\":{\"restartPolicy\":\"%s\","
             "\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}}}}",
             name, extra, policy);
    create(s, buf);
}

/* The first element of the array at a dotted path. */
static cJSON *first(const cJSON *obj, const char *path)
{
    return cJSON_GetArrayItem(drv_json_at(obj, path), 0);
}

static void jobs_round(drv_hstore_t *s, int64_t now)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_ctrl_jobs_reconcile(s, now, &err) != DRV_OK)
        fail_msg("jobs: %s", drv_error_msg(&err));
}

static void cron_round(drv_hstore_t *s, int64_t now)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_ctrl_cronjobs_reconcile(s, now, &err) != DRV_OK)
        fail_msg("cronjobs: %s", drv_error_msg(&err));
    jobs_round(s, now);
}

static cJSON *get(drv_hstore_t *s, drv_kind_t kind, const char *name)
{
    cJSON *o = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_get(s, kind, "default", name, &o, &err) != DRV_OK)
        return NULL;
    return o;
}

/* Whether the object is stored (the copy read is freed). */
static bool exists(drv_hstore_t *s, drv_kind_t kind, const char *name)
{
    cJSON *o = get(s, kind, name);
    cJSON_Delete(o);
    return o != NULL;
}

static cJSON *list(drv_hstore_t *s, drv_kind_t kind)
{
    cJSON *items = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_list(s, kind, NULL, NULL, &items, NULL, &err) != DRV_OK)
        fail_msg("list: %s", drv_error_msg(&err));
    return items;
}

static int count(drv_hstore_t *s, drv_kind_t kind)
{
    cJSON *l = list(s, kind);
    int n = cJSON_GetArraySize(l);
    cJSON_Delete(l);
    return n;
}

static int64_t status_int(drv_hstore_t *s, const char *name, const char *key)
{
    cJSON *j = get(s, DRV_KIND_JOB, name);
    int64_t v = drv_json_int_or(drv_json_get(j, "status"), key, -1);
    cJSON_Delete(j);
    return v;
}

/* The reason of the Job's condition type when True, or "" */
static char *cond_reason(drv_hstore_t *s, const char *name, const char *type)
{
    static char out[64];
    out[0] = '\0';
    cJSON *j = get(s, DRV_KIND_JOB, name), *c;
    cJSON_ArrayForEach(c, drv_json_at(j, "status.conditions"))
    {
        if (!strcmp(drv_json_str_or(c, "type", ""), type) &&
            !strcmp(drv_json_str_or(c, "status", ""), "True"))
            snprintf(out, sizeof(out), "%s", drv_json_str_or(c, "reason", "?"));
    }
    cJSON_Delete(j);
    return out;
}

/* Ends every running pod (the oldest first, at most n; n < 0: all) as its agent would
 * report: phase, the container's exit code, finishedAt at_ms. */
static void end_pods(drv_hstore_t *s, int n, int exit_code, int64_t at_ms)
{
    cJSON *all = list(s, DRV_KIND_POD), *p;
    char ts[32], buf[512];
    drv_ctrl_time_format(at_ms, ts, sizeof(ts));
    cJSON_ArrayForEach(p, all)
    {
        const char *ph = drv_json_str_at(p, "status.phase");
        if (ph && (!strcmp(ph, "Succeeded") || !strcmp(ph, "Failed")))
            continue;
        if (n == 0)
            break;
        n--;
        snprintf(buf, sizeof(buf),
                 "{\"phase\":\"%s\",\"containerStatuses\":[{\"name\":\"c\",\"restartCount\":0,"
                 "\"state\":{\"terminated\":{\"exitCode\":%d,\"finishedAt\":\"%s\"}}}]}",
                 exit_code ? "Failed" : "Succeeded", exit_code, ts);
        drv_error_t err = DRV_ERROR_INIT;
        assert_int_equal(drv_hstore_update_status(s, DRV_KIND_POD, "default",
                                                  drv_json_str_at(p, "metadata.name"), json(buf),
                                                  NULL, &err),
                         DRV_OK);
    }
    cJSON_Delete(all);
}

static int running_pods(drv_hstore_t *s)
{
    cJSON *all = list(s, DRV_KIND_POD), *p;
    int n = 0;
    cJSON_ArrayForEach(p, all)
    {
        const char *ph = drv_json_str_at(p, "status.phase");
        n += !ph || (strcmp(ph, "Succeeded") && strcmp(ph, "Failed"));
    }
    cJSON_Delete(all);
    return n;
}

/* ---- Jobs ---- */

static void test_job_completions_and_labels(void **state)
{
    struct fx *f = *state;
    job(f->s, "pi", "\"completions\":3,\"parallelism\":2,", "Never");
    jobs_round(f->s, T0);
    /* The selector Kubernetes makes, on the Job and its pods. */
    cJSON *j = get(f->s, DRV_KIND_JOB, "pi");
    const char *uid = drv_json_str_at(j, "metadata.uid");
    cJSON *ml = drv_json_at(j, "spec.selector.matchLabels");
    assert_string_equal(drv_json_str(ml, "batch.kubernetes.io/controller-uid"), uid);
    cJSON *all = list(f->s, DRV_KIND_POD), *p;
    assert_int_equal(cJSON_GetArraySize(all), 2);
    cJSON_ArrayForEach(p, all)
    {
        assert_string_equal(drv_json_str_at(p, "metadata.labels.job-name"), "pi");
        assert_string_equal(
            drv_json_str(drv_json_at(p, "metadata.labels"), "batch.kubernetes.io/job-name"), "pi");
        assert_string_equal(drv_json_str(first(p, "metadata.ownerReferences"), "kind"), "Job");
        assert_true(!strncmp(drv_json_str_at(p, "metadata.name"), "pi-", 3));
    }
    cJSON_Delete(all);
    cJSON_Delete(j);
    assert_int_equal(status_int(f->s, "pi", "active"), 2);
    end_pods(f->s, 2, 0, T0 + 1000);
    jobs_round(f->s, T0 + 2000);
    assert_int_equal(status_int(f->s, "pi", "succeeded"), 2);
    assert_int_equal(running_pods(f->s), 1); /* one more to reach 3, not two */
    jobs_round(f->s, T0 + 2500);             /* counted once */
    assert_int_equal(status_int(f->s, "pi", "succeeded"), 2);
    end_pods(f->s, -1, 0, T0 + 3000);
    jobs_round(f->s, T0 + 4000);
    assert_int_equal(status_int(f->s, "pi", "succeeded"), 3);
    assert_int_equal(status_int(f->s, "pi", "active"), 0);
    assert_string_equal(cond_reason(f->s, "pi", "Complete"), "CompletionsReached");
    assert_string_equal(cond_reason(f->s, "pi", "SuccessCriteriaMet"), "CompletionsReached");
    j = get(f->s, DRV_KIND_JOB, "pi");
    assert_non_null(drv_json_str_at(j, "status.completionTime"));
    cJSON_Delete(j);
    jobs_round(f->s, T0 + 5000);
    assert_int_equal(count(f->s, DRV_KIND_POD), 3); /* finished pods are kept */
}

static void test_job_backoff_limit(void **state)
{
    struct fx *f = *state;
    job(f->s, "bad", "\"backoffLimit\":2,", "Never");
    jobs_round(f->s, T0);
    end_pods(f->s, -1, 1, T0 + 1000);
    jobs_round(f->s, T0 + 2000);
    assert_int_equal(status_int(f->s, "bad", "failed"), 1);
    /* Back-off: 10 s after the first failure, 20 s after the second. */
    assert_int_equal(running_pods(f->s), 0);
    jobs_round(f->s, T0 + 10999);
    assert_int_equal(running_pods(f->s), 0);
    jobs_round(f->s, T0 + 11000);
    assert_int_equal(running_pods(f->s), 1);
    end_pods(f->s, -1, 1, T0 + 12000);
    jobs_round(f->s, T0 + 13000);
    assert_int_equal(status_int(f->s, "bad", "failed"), 2);
    jobs_round(f->s, T0 + 31999);
    assert_int_equal(running_pods(f->s), 0);
    jobs_round(f->s, T0 + 32000);
    assert_int_equal(running_pods(f->s), 1);
    assert_string_equal(cond_reason(f->s, "bad", "Failed"), "");
    end_pods(f->s, -1, 1, T0 + 33000);
    jobs_round(f->s, T0 + 34000);
    assert_int_equal(status_int(f->s, "bad", "failed"), 3);
    assert_string_equal(cond_reason(f->s, "bad", "Failed"), "BackoffLimitExceeded");
    assert_string_equal(cond_reason(f->s, "bad", "FailureTarget"), "BackoffLimitExceeded");
    jobs_round(f->s, T0 + 120000);
    assert_int_equal(count(f->s, DRV_KIND_POD), 3); /* never a fourth */
    assert_int_equal(status_int(f->s, "bad", "failed"), 3);
}

static void test_job_lost_pod_counts_failed(void **state)
{
    struct fx *f = *state;
    job(f->s, "lost", "\"backoffLimit\":0,", "Never");
    jobs_round(f->s, T0);
    cJSON *all = list(f->s, DRV_KIND_POD);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_POD, "default",
                                       drv_json_str_at(all->child, "metadata.name"), NULL, &err),
                     DRV_OK);
    cJSON_Delete(all);
    jobs_round(f->s, T0 + 1000);
    assert_int_equal(status_int(f->s, "lost", "failed"), 1);
    assert_string_equal(cond_reason(f->s, "lost", "Failed"), "BackoffLimitExceeded");
    assert_int_equal(count(f->s, DRV_KIND_POD), 0);
}

static void test_job_on_failure_restarts_count(void **state)
{
    struct fx *f = *state;
    job(f->s, "rs", "\"backoffLimit\":2,", "OnFailure");
    jobs_round(f->s, T0);
    cJSON *all = list(f->s, DRV_KIND_POD);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(
        drv_hstore_update_status(f->s, DRV_KIND_POD, "default",
                                 drv_json_str_at(all->child, "metadata.name"),
                                 json("{\"phase\":\"Running\",\"containerStatuses\":[{\"name\":"
                                      "\"c\",\"restartCount\":1}]}"),
                                 NULL, &err),
        DRV_OK);
    jobs_round(f->s, T0 + 1000);
    assert_string_equal(cond_reason(f->s, "rs", "Failed"), "");
    assert_int_equal(
        drv_hstore_update_status(f->s, DRV_KIND_POD, "default",
                                 drv_json_str_at(all->child, "metadata.name"),
                                 json("{\"phase\":\"Running\",\"containerStatuses\":[{\"name\":"
                                      "\"c\",\"restartCount\":2}]}"),
                                 NULL, &err),
        DRV_OK);
    cJSON_Delete(all);
    jobs_round(f->s, T0 + 2000);
    assert_string_equal(cond_reason(f->s, "rs", "Failed"), "BackoffLimitExceeded");
    assert_int_equal(count(f->s, DRV_KIND_POD), 0); /* the running pod is stopped */
}

static void test_job_deadline_and_ttl(void **state)
{
    struct fx *f = *state;
    job(f->s, "slow", "\"activeDeadlineSeconds\":5,\"ttlSecondsAfterFinished\":30,", "Never");
    jobs_round(f->s, T0);
    jobs_round(f->s, T0 + 4999);
    assert_int_equal(running_pods(f->s), 1);
    jobs_round(f->s, T0 + 5000);
    assert_string_equal(cond_reason(f->s, "slow", "Failed"), "DeadlineExceeded");
    assert_int_equal(count(f->s, DRV_KIND_POD), 0);
    jobs_round(f->s, T0 + 34999);
    assert_true(exists(f->s, DRV_KIND_JOB, "slow"));
    jobs_round(f->s, T0 + 35000);
    assert_null(get(f->s, DRV_KIND_JOB, "slow"));
}

static void test_job_ttl_deletes_pods(void **state)
{
    struct fx *f = *state;
    job(f->s, "quick", "\"ttlSecondsAfterFinished\":0,", "Never");
    jobs_round(f->s, T0);
    end_pods(f->s, -1, 0, T0 + 500);
    jobs_round(f->s, T0 + 1000);
    assert_string_equal(cond_reason(f->s, "quick", "Complete"), "CompletionsReached");
    jobs_round(f->s, T0 + 1000);
    assert_null(get(f->s, DRV_KIND_JOB, "quick"));
    assert_int_equal(count(f->s, DRV_KIND_POD), 0);
}

static void test_job_indexed(void **state)
{
    struct fx *f = *state;
    job(f->s, "ix", "\"completions\":3,\"parallelism\":2,\"completionMode\":\"Indexed\",", "Never");
    jobs_round(f->s, T0);
    cJSON *all = list(f->s, DRV_KIND_POD), *p;
    assert_int_equal(cJSON_GetArraySize(all), 2);
    bool seen[2] = {false, false};
    cJSON_ArrayForEach(p, all)
    {
        const char *ix = drv_json_str(drv_json_at(p, "metadata.annotations"),
                                      "batch.kubernetes.io/job-completion-index");
        assert_non_null(ix);
        int i = (int)strtol(ix, NULL, 10);
        assert_true(i == 0 || i == 1);
        seen[i] = true;
        char host[16], prefix[16];
        snprintf(host, sizeof(host), "ix-%d", i);
        snprintf(prefix, sizeof(prefix), "ix-%d-", i);
        assert_string_equal(drv_json_str_at(p, "spec.hostname"), host);
        assert_true(!strncmp(drv_json_str_at(p, "metadata.name"), prefix, strlen(prefix)));
        assert_string_equal(drv_json_str(first(first(p, "spec.containers"), "env"), "name"),
                            "JOB_COMPLETION_INDEX");
        assert_string_equal(drv_json_str(first(first(p, "spec.containers"), "env"), "value"), ix);
    }
    assert_true(seen[0] && seen[1]);
    cJSON_Delete(all);
    end_pods(f->s, 1, 0, T0 + 1000); /* index 0 or 1, whichever lists first */
    jobs_round(f->s, T0 + 2000);
    cJSON *j = get(f->s, DRV_KIND_JOB, "ix");
    const char *done = drv_json_str_at(j, "status.completedIndexes");
    assert_true(done && (!strcmp(done, "0") || !strcmp(done, "1")));
    char *first_done = strdup(done);
    cJSON_Delete(j);
    assert_int_equal(running_pods(f->s), 2); /* the other one and index 2 */
    /* Index 2 ends: two indexes done, not consecutive when index 0 is the one left. */
    cJSON *all2 = list(f->s, DRV_KIND_POD), *q;
    cJSON_ArrayForEach(q, all2)
    {
        const char *ix = drv_json_str(drv_json_at(q, "metadata.annotations"),
                                      "batch.kubernetes.io/job-completion-index");
        if (ix && !strcmp(ix, "2")) {
            drv_error_t err = DRV_ERROR_INIT;
            assert_int_equal(
                drv_hstore_update_status(
                    f->s, DRV_KIND_POD, "default", drv_json_str_at(q, "metadata.name"),
                    json("{\"phase\":\"Succeeded\",\"containerStatuses\":[{\"name\":\"c\","
                         "\"state\":{\"terminated\":{\"exitCode\":0}}}]}"),
                    NULL, &err),
                DRV_OK);
        }
    }
    cJSON_Delete(all2);
    jobs_round(f->s, T0 + 2500);
    j = get(f->s, DRV_KIND_JOB, "ix");
    assert_string_equal(drv_json_str_at(j, "status.completedIndexes"),
                        !strcmp(first_done, "0") ? "0,2" : "1,2");
    cJSON_Delete(j);
    free(first_done);
    end_pods(f->s, -1, 0, T0 + 3000);
    jobs_round(f->s, T0 + 4000);
    j = get(f->s, DRV_KIND_JOB, "ix");
    assert_string_equal(drv_json_str_at(j, "status.completedIndexes"), "0-2");
    cJSON_Delete(j);
    assert_string_equal(cond_reason(f->s, "ix", "Complete"), "CompletionsReached");
    assert_int_equal(status_int(f->s, "ix", "succeeded"), 3);
}

static void test_job_pod_failure_policy(void **state)
{
    struct fx *f = *state;
    job(f->s, "pfp",
        "\"backoffLimit\":6,\"podFailurePolicy\":{\"rules\":["
        "{\"action\":\"Ignore\",\"onExitCodes\":{\"operator\":\"In\",\"values\":[3]}},"
        "{\"action\":\"FailJob\",\"onExitCodes\":{\"containerName\":\"c\",\"operator\":\"In\","
        "\"values\":[42]}}]},",
        "Never");
    jobs_round(f->s, T0);
    end_pods(f->s, -1, 3, T0 + 100);
    jobs_round(f->s, T0 + 1000);
    assert_int_equal(status_int(f->s, "pfp", "failed"), 0); /* ignored */
    assert_int_equal(running_pods(f->s), 1);                /* replaced at once */
    end_pods(f->s, -1, 42, T0 + 1500);
    jobs_round(f->s, T0 + 2000);
    assert_string_equal(cond_reason(f->s, "pfp", "Failed"), "PodFailurePolicy");
    assert_int_equal(status_int(f->s, "pfp", "failed"), 1);
}

static void test_job_suspend_and_work_queue(void **state)
{
    struct fx *f = *state;
    job(f->s, "wq", "\"parallelism\":3,\"suspend\":true,", "Never");
    jobs_round(f->s, T0);
    assert_int_equal(count(f->s, DRV_KIND_POD), 0);
    assert_string_equal(cond_reason(f->s, "wq", "Suspended"), "JobSuspended");
    cJSON *j = get(f->s, DRV_KIND_JOB, "wq");
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "spec"), "suspend", cJSON_CreateFalse());
    cJSON_DeleteItemFromObject(j, "status");
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_update(f->s, DRV_KIND_JOB, j, &err), DRV_OK);
    cJSON_Delete(j);
    jobs_round(f->s, T0 + 1000);
    assert_int_equal(running_pods(f->s), 3); /* work queue: parallelism pods */
    assert_string_equal(cond_reason(f->s, "wq", "Suspended"), "");
    /* The first success: no new pods, the others finish, then Complete. */
    end_pods(f->s, 1, 0, T0 + 2000);
    jobs_round(f->s, T0 + 3000);
    assert_int_equal(running_pods(f->s), 2);
    assert_string_equal(cond_reason(f->s, "wq", "Complete"), "");
    end_pods(f->s, -1, 0, T0 + 4000);
    jobs_round(f->s, T0 + 5000);
    assert_string_equal(cond_reason(f->s, "wq", "Complete"), "CompletionsReached");
}

static void test_job_deleted_takes_pods(void **state)
{
    struct fx *f = *state;
    job(f->s, "gone", "", "Never");
    jobs_round(f->s, T0);
    assert_int_equal(count(f->s, DRV_KIND_POD), 1);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_JOB, "default", "gone", NULL, &err), DRV_OK);
    jobs_round(f->s, T0 + 1000);
    assert_int_equal(count(f->s, DRV_KIND_POD), 0);
}

/* ---- CronJobs ---- */

static void cronjob(drv_hstore_t *s, const char *name, const char *schedule, const char *extra)
{
    char buf[4096];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"batch/v1\",\"kind\":\"CronJob\",\"metadata\":{\"name\":\"%s\"},"
             "\"spec\":{\"schedule\":\"%s\",%s\"jobTemplate\":{\"spec\":{\"template\":{\"spec\":{"
             "\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"c\",\"image\":"
             "\"busybox\"}]}}}}}}",
             name, schedule, extra);
    create(s, buf);
}

/* Sets the CronJob's creation time (the store stamps the wall clock). */
static void created_at(drv_hstore_t *s, const char *name, int64_t ms, const char *last_sched)
{
    (void)ms;
    if (last_sched) {
        char buf[128];
        snprintf(buf, sizeof(buf), "{\"lastScheduleTime\":\"%s\"}", last_sched);
        drv_error_t err = DRV_ERROR_INIT;
        assert_int_equal(
            drv_hstore_update_status(s, DRV_KIND_CRONJOB, "default", name, json(buf), NULL, &err),
            DRV_OK);
    }
}

static int events(drv_hstore_t *s, const char *reason)
{
    cJSON *all = list(s, DRV_KIND_EVENT), *e;
    int n = 0;
    cJSON_ArrayForEach(e, all) n += !strcmp(drv_json_str_or(e, "reason", ""), reason);
    cJSON_Delete(all);
    return n;
}

static void test_cronjob_every_minute_and_history(void **state)
{
    struct fx *f = *state;
    cronjob(f->s, "tick", "* * * * *", "\"successfulJobsHistoryLimit\":2,");
    char ts[32];
    drv_ctrl_time_format(T0, ts, sizeof(ts));
    created_at(f->s, "tick", T0, ts);
    cron_round(f->s, T0 + 30000);
    assert_int_equal(count(f->s, DRV_KIND_JOB), 0);
    for (int m = 1; m <= 4; m++) {
        int64_t now = T0 + m * 60000LL + 2000;
        cron_round(f->s, now);
        char name[64];
        snprintf(name, sizeof(name), "tick-%lld", (long long)(T0 / 60000 + m));
        cJSON *j = get(f->s, DRV_KIND_JOB, name);
        assert_non_null(j);
        assert_string_equal(drv_json_str(first(j, "metadata.ownerReferences"), "kind"), "CronJob");
        assert_non_null(drv_json_str(drv_json_at(j, "metadata.annotations"),
                                     "batch.kubernetes.io/cronjob-scheduled-timestamp"));
        cJSON_Delete(j);
        cron_round(f->s, now + 500); /* the same minute: no second Job */
        end_pods(f->s, -1, 0, now + 1000);
        jobs_round(f->s, now + 1500);
    }
    cron_round(f->s, T0 + 4 * 60000LL + 50000);
    /* 4 made, 2 kept, the oldest deleted. */
    assert_int_equal(count(f->s, DRV_KIND_JOB), 2);
    assert_int_equal(events(f->s, "SuccessfulCreate") >= 4, true);
    assert_int_equal(events(f->s, "SuccessfulDelete") >= 2, true);
    cJSON *cj = get(f->s, DRV_KIND_CRONJOB, "tick");
    drv_ctrl_time_format(T0 + 4 * 60000LL, ts, sizeof(ts));
    assert_string_equal(drv_json_str_at(cj, "status.lastScheduleTime"), ts);
    assert_non_null(drv_json_str_at(cj, "status.lastSuccessfulTime"));
    cJSON_Delete(cj);
}

static void test_cronjob_concurrency(void **state)
{
    struct fx *f = *state;
    char ts[32];
    drv_ctrl_time_format(T0, ts, sizeof(ts));
    cronjob(f->s, "fb", "* * * * *", "\"concurrencyPolicy\":\"Forbid\",");
    created_at(f->s, "fb", T0, ts);
    cronjob(f->s, "rp", "* * * * *", "\"concurrencyPolicy\":\"Replace\",");
    created_at(f->s, "rp", T0, ts);
    cron_round(f->s, T0 + 61000);
    assert_int_equal(count(f->s, DRV_KIND_JOB), 2);
    cron_round(f->s, T0 + 121000); /* both still running */
    char name[64];
    snprintf(name, sizeof(name), "fb-%lld", (long long)(T0 / 60000 + 2));
    assert_null(get(f->s, DRV_KIND_JOB, name));
    assert_int_equal(events(f->s, "JobAlreadyActive"), 1);
    snprintf(name, sizeof(name), "rp-%lld", (long long)(T0 / 60000 + 1));
    assert_null(get(f->s, DRV_KIND_JOB, name)); /* replaced */
    snprintf(name, sizeof(name), "rp-%lld", (long long)(T0 / 60000 + 2));
    assert_true(exists(f->s, DRV_KIND_JOB, name));
    cJSON *cj = get(f->s, DRV_KIND_CRONJOB, "rp");
    assert_int_equal(cJSON_GetArraySize(drv_json_at(cj, "status.active")), 1);
    cJSON_Delete(cj);
}

static void test_cronjob_missed_times(void **state)
{
    struct fx *f = *state;
    char ts[32];
    /* The hub was down for 3 hours: only the most recent missed time runs. */
    drv_ctrl_time_format(T0, ts, sizeof(ts));
    cronjob(f->s, "hourly", "0 * * * *", "");
    created_at(f->s, "hourly", T0, ts);
    cron_round(f->s, T0 + 3 * 3600000LL + 120000);
    assert_int_equal(count(f->s, DRV_KIND_JOB), 1);
    char name[64];
    snprintf(name, sizeof(name), "hourly-%lld", (long long)(T0 / 60000 + 180));
    assert_true(exists(f->s, DRV_KIND_JOB, name));
    /* Beyond startingDeadlineSeconds: nothing runs, a MissSchedule warning says so. */
    cronjob(f->s, "late", "0 * * * *", "\"startingDeadlineSeconds\":60,");
    created_at(f->s, "late", T0, ts);
    cron_round(f->s, T0 + 3600000LL + 120000);
    assert_int_equal(count(f->s, DRV_KIND_JOB), 1);
    assert_int_equal(events(f->s, "MissSchedule"), 1);
    cron_round(f->s, T0 + 3600000LL + 121000); /* told once */
    assert_int_equal(events(f->s, "MissSchedule"), 1);
    /* More than 100 missed: a TooManyMissedTimes warning, and the latest still runs. */
    cronjob(f->s, "many", "* * * * *", "");
    created_at(f->s, "many", T0, ts);
    cron_round(f->s, T0 + 200 * 60000LL + 1000);
    assert_int_equal(events(f->s, "TooManyMissedTimes"), 1);
    snprintf(name, sizeof(name), "many-%lld", (long long)(T0 / 60000 + 200));
    assert_true(exists(f->s, DRV_KIND_JOB, name));
}

static void test_cronjob_deleted_takes_jobs(void **state)
{
    struct fx *f = *state;
    char ts[32];
    drv_ctrl_time_format(T0, ts, sizeof(ts));
    cronjob(f->s, "gone", "* * * * *", "");
    created_at(f->s, "gone", T0, ts);
    job(f->s, "mine", "", "Never"); /* not the CronJob's: stays */
    cron_round(f->s, T0 + 61000);
    assert_int_equal(count(f->s, DRV_KIND_JOB), 2);
    assert_int_equal(count(f->s, DRV_KIND_POD), 2);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_delete(f->s, DRV_KIND_CRONJOB, "default", "gone", NULL, &err),
                     DRV_OK);
    cron_round(f->s, T0 + 62000);
    assert_int_equal(count(f->s, DRV_KIND_JOB), 1);
    assert_true(exists(f->s, DRV_KIND_JOB, "mine"));
    assert_int_equal(count(f->s, DRV_KIND_POD), 1);
}

static void test_cronjob_suspend_and_time_zone(void **state)
{
    struct fx *f = *state;
    char ts[32];
    drv_ctrl_time_format(T0, ts, sizeof(ts));
    cronjob(f->s, "off", "* * * * *", "\"suspend\":true,");
    created_at(f->s, "off", T0, ts);
    cron_round(f->s, T0 + 5 * 60000LL);
    assert_int_equal(count(f->s, DRV_KIND_JOB), 0);
    /* 09:00 in Paris is 08:00 UTC in January: T0 + 1 h is 10:00 there. */
    cronjob(f->s, "paris", "0 10 * * *", "\"timeZone\":\"Europe/Paris\",");
    created_at(f->s, "paris", T0, ts);
    cron_round(f->s, T0 + 3600000LL - 1000);
    assert_int_equal(count(f->s, DRV_KIND_JOB), 0);
    cron_round(f->s, T0 + 3600000LL + 1000);
    char name[64];
    snprintf(name, sizeof(name), "paris-%lld", (long long)(T0 / 60000 + 60));
    cJSON *j = get(f->s, DRV_KIND_JOB, name);
    assert_non_null(j);
    assert_string_equal(drv_json_str(drv_json_at(j, "metadata.annotations"),
                                     "batch.kubernetes.io/cronjob-scheduled-timestamp"),
                        "2027-01-15T10:00:00+01:00");
    cJSON_Delete(j);
}

int main(void)
{
#define FT(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
    const struct CMUnitTest tests[] = {
        FT(test_job_completions_and_labels),
        FT(test_job_backoff_limit),
        FT(test_job_lost_pod_counts_failed),
        FT(test_job_on_failure_restarts_count),
        FT(test_job_deadline_and_ttl),
        FT(test_job_ttl_deletes_pods),
        FT(test_job_indexed),
        FT(test_job_pod_failure_policy),
        FT(test_job_suspend_and_work_queue),
        FT(test_job_deleted_takes_pods),
        FT(test_cronjob_every_minute_and_history),
        FT(test_cronjob_concurrency),
        FT(test_cronjob_missed_times),
        FT(test_cronjob_deleted_takes_jobs),
        FT(test_cronjob_suspend_and_time_zone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
