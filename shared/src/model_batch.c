/* batch/v1 Job and CronJob: validation against what the hub's job and cronjob controllers run
 * (hub/ctrl/job.c, hub/ctrl/cronjob.c), with Kubernetes' defaults. A Job's selector is made by
 * the hub from the Job's uid (batch.kubernetes.io/controller-uid) unless manualSelector says
 * the user gives it, as Kubernetes does. */
#include <stdlib.h>
#include <string.h>

#include "drover/cron.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/names.h"
#include "model_int.h"

#define JOB_INDEXED_MAX 100000 /* completions and parallelism of an Indexed Job */
#define PFP_RULES_MAX 20
#define PFP_CODES_MAX 255
#define PFP_CONDS_MAX 20
#define LABEL_CONTROLLER_UID "batch.kubernetes.io/controller-uid"

static void v_exit_codes(vctx_t *c, cJSON *rule)
{
    cJSON *ec = v_obj(c, rule, "onExitCodes", false);
    if (!ec)
        return;
    static const char known[] = "containerName\0"
                                "operator\0"
                                "values\0";
    static const char ops[] = "In\0"
                              "NotIn\0";
    size_t old = v_push_key(c, "onExitCodes");
    v_fields(c, ec, known, NULL, NULL);
    v_name(c, ec, "containerName", false, drv_name_dns_label);
    const char *op = v_enum(c, ec, "operator", true, ops);
    cJSON *vals = v_arr(c, ec, "values", true);
    if (vals) {
        size_t n = 0, o2 = v_push_key(c, "values");
        int64_t prev = -1;
        for (cJSON *v = vals->child; v; v = v->next, n++) {
            int64_t x;
            size_t o3 = v_push_index(c, n);
            if (!cJSON_IsNumber(v) || !drv_json_to_int(v->valuedouble, INT32_MIN, INT32_MAX, &x))
                v_fail(c, "must be an integer");
            else if (op && !strcmp(op, "In") && x == 0)
                v_fail(c, "must not be 0 for the In operator");
            else if (n && x <= prev)
                v_fail(c, "must be ordered and without duplicates");
            else
                prev = x;
            v_pop(c, o3);
        }
        if (n == 0)
            v_fail(c, "must have at least one element");
        if (n > PFP_CODES_MAX)
            v_fail(c, "must have at most %d items", PFP_CODES_MAX);
        v_pop(c, o2);
    }
    v_pop(c, old);
}

static void v_pod_conditions(vctx_t *c, cJSON *rule)
{
    cJSON *pc = v_arr(c, rule, "onPodConditions", false);
    if (!pc)
        return;
    static const char known[] = "type\0"
                                "status\0";
    static const char statuses[] = "True\0"
                                   "False\0"
                                   "Unknown\0";
    size_t old = v_push_key(c, "onPodConditions"), i = 0;
    for (cJSON *e = pc->child; e; e = e->next, i++) {
        size_t o2 = v_push_index(c, i);
        if (!cJSON_IsObject(e)) {
            v_fail(c, "must be an object");
        } else {
            v_fields(c, e, known, NULL, NULL);
            v_name(c, e, "type", true, drv_name_label_key);
            v_enum(c, e, "status", false, statuses);
            v_default_str(c, e, "status", "True");
        }
        v_pop(c, o2);
    }
    if (i > PFP_CONDS_MAX)
        v_fail(c, "must have at most %d items", PFP_CONDS_MAX);
    v_pop(c, old);
}

static void v_pfp_rules(vctx_t *c, cJSON *pfp)
{
    static const char known[] = "action\0"
                                "onExitCodes\0"
                                "onPodConditions\0";
    static const char actions[] = "FailJob\0"
                                  "Ignore\0"
                                  "Count\0"
                                  "FailIndex\0";
    cJSON *rules = v_arr(c, pfp, "rules", true);
    if (!rules)
        return;
    size_t old = v_push_key(c, "rules"), i = 0;
    for (cJSON *r = rules->child; r; r = r->next, i++) {
        size_t o2 = v_push_index(c, i);
        if (!cJSON_IsObject(r)) {
            v_fail(c, "must be an object");
            v_pop(c, o2);
            continue;
        }
        v_fields(c, r, known, NULL, NULL);
        const char *action = v_enum(c, r, "action", true, actions);
        if (action && !strcmp(action, "FailIndex"))
            v_failk(c, "action",
                    "unsupported value \"FailIndex\": not supported by Drover (it needs "
                    "backoffLimitPerIndex, which Drover does not run)");
        bool has_codes = drv_json_get(r, "onExitCodes") != NULL,
             has_conds = drv_json_get(r, "onPodConditions") != NULL;
        if (has_codes == has_conds)
            v_fail(c, "specifying one of onExitCodes and onPodConditions is required");
        v_exit_codes(c, r);
        v_pod_conditions(c, r);
        v_pop(c, o2);
    }
    if (i > PFP_RULES_MAX)
        v_fail(c, "must have at most %d items", PFP_RULES_MAX);
    v_pop(c, old);
}

/* The selector the hub made (only the controller-uid label), or the user's with manualSelector. */
static bool generated_selector(const cJSON *sel)
{
    const cJSON *ml = drv_json_get(sel, "matchLabels");
    return cJSON_IsObject(ml) && drv_json_str(ml, LABEL_CONTROLLER_UID) &&
           !drv_json_get(sel, "matchExpressions");
}

void v_job_spec(vctx_t *c, cJSON *spec)
{
    static const char known[] = "parallelism\0"
                                "completions\0"
                                "activeDeadlineSeconds\0"
                                "backoffLimit\0"
                                "selector\0"
                                "manualSelector\0"
                                "template\0"
                                "ttlSecondsAfterFinished\0"
                                "completionMode\0"
                                "suspend\0"
                                "podFailurePolicy\0"
                                "podReplacementPolicy\0";
    static const char unsupported[] = "backoffLimitPerIndex\0"
                                      "maxFailedIndexes\0"
                                      "successPolicy\0"
                                      "managedBy\0";
    static const char modes[] = "NonIndexed\0"
                                "Indexed\0";
    static const char replacement[] = "TerminatingOrFailed\0"
                                      "Failed\0";
    v_fields(c, spec, known, NULL, unsupported);
    int64_t par = 1, comp = 1;
    bool have_par = v_int(c, spec, "parallelism", false, 0, INT32_MAX, &par);
    bool have_comp = v_int(c, spec, "completions", false, 0, INT32_MAX, &comp);
    v_int(c, spec, "activeDeadlineSeconds", false, 1, INT64_MAX / 1000, NULL);
    v_int(c, spec, "backoffLimit", false, 0, INT32_MAX, NULL);
    v_default_int(c, spec, "backoffLimit", 6);
    v_int(c, spec, "ttlSecondsAfterFinished", false, 0, INT32_MAX, NULL);
    const char *mode = v_enum(c, spec, "completionMode", false, modes);
    v_default_str(c, spec, "completionMode", "NonIndexed");
    if (mode && !strcmp(mode, "Indexed")) {
        if (!drv_json_get(spec, "completions"))
            v_failk(c, "completions", "required when completionMode is Indexed");
        else if (have_comp && comp > JOB_INDEXED_MAX)
            v_failk(c, "completions",
                    "must be less than or equal to %d when completionMode is "
                    "Indexed",
                    JOB_INDEXED_MAX);
        if (have_par && par > JOB_INDEXED_MAX)
            v_failk(c, "parallelism",
                    "must be less than or equal to %d when completionMode is "
                    "Indexed",
                    JOB_INDEXED_MAX);
    }
    /* Kubernetes' defaults: neither given is one pod to one success; parallelism alone is a
     * work queue (no completions: the first success ends it). */
    if (!drv_json_get(spec, "completions") && !drv_json_get(spec, "parallelism"))
        v_default_int(c, spec, "completions", 1);
    v_default_int(c, spec, "parallelism", 1);
    v_bool(c, spec, "suspend", NULL);
    v_default_bool(c, spec, "suspend", false);
    bool manual = false;
    v_bool(c, spec, "manualSelector", &manual);
    cJSON *sel = drv_json_get(spec, "selector");
    if (manual && !sel)
        v_failk(c, "selector", "required when manualSelector is true");
    else if (!manual && sel && !generated_selector(sel))
        v_failk(c, "selector",
                "`selector` will be auto-generated: set manualSelector: true to give your own");
    v_template_ctx(c, spec, "selector", false, PODCTX_JOB);
    cJSON *pfp = v_obj(c, spec, "podFailurePolicy", false);
    if (pfp) {
        static const char pknown[] = "rules\0";
        size_t old = v_push_key(c, "podFailurePolicy");
        v_fields(c, pfp, pknown, NULL, NULL);
        v_pfp_rules(c, pfp);
        v_pop(c, old);
        const char *rp = drv_json_str_at(spec, "template.spec.restartPolicy");
        if (rp && strcmp(rp, "Never"))
            v_failk(c, "template",
                    "spec.restartPolicy: only \"Never\" is supported when podFailurePolicy is "
                    "specified");
    }
    const char *repl = v_enum(c, spec, "podReplacementPolicy", false, replacement);
    if (repl && !strcmp(repl, "TerminatingOrFailed") && pfp)
        v_failk(c, "podReplacementPolicy", "must be Failed when podFailurePolicy is specified");
    v_default_str(c, spec, "podReplacementPolicy", pfp ? "Failed" : "TerminatingOrFailed");
}

void v_cronjob_spec(vctx_t *c, cJSON *spec)
{
    static const char known[] = "schedule\0"
                                "timeZone\0"
                                "startingDeadlineSeconds\0"
                                "concurrencyPolicy\0"
                                "suspend\0"
                                "jobTemplate\0"
                                "successfulJobsHistoryLimit\0"
                                "failedJobsHistoryLimit\0";
    static const char policies[] = "Allow\0"
                                   "Forbid\0"
                                   "Replace\0";
    v_fields(c, spec, known, NULL, NULL);
    const char *sched = v_str(c, spec, "schedule", true);
    if (sched) {
        drv_cron_t cron;
        drv_error_t err = DRV_ERROR_INIT;
        if (drv_cron_parse(sched, &cron, &err) != DRV_OK)
            v_failk(c, "schedule", "invalid schedule \"%.256s\": %s", sched, drv_error_msg(&err));
    }
    const char *tz = v_str(c, spec, "timeZone", false);
    if (tz) {
        drv_tz_t *z = NULL;
        drv_error_t err = DRV_ERROR_INIT;
        if (drv_tz_load(NULL, tz, &z, &err) != DRV_OK)
            v_failk(c, "timeZone", "%s", drv_error_msg(&err));
        drv_tz_free(z);
    }
    v_int(c, spec, "startingDeadlineSeconds", false, 0, INT64_MAX / 1000, NULL);
    v_enum(c, spec, "concurrencyPolicy", false, policies);
    v_default_str(c, spec, "concurrencyPolicy", "Allow");
    v_bool(c, spec, "suspend", NULL);
    v_default_bool(c, spec, "suspend", false);
    v_int(c, spec, "successfulJobsHistoryLimit", false, 0, INT32_MAX, NULL);
    v_default_int(c, spec, "successfulJobsHistoryLimit", 3);
    v_int(c, spec, "failedJobsHistoryLimit", false, 0, INT32_MAX, NULL);
    v_default_int(c, spec, "failedJobsHistoryLimit", 1);
    cJSON *jt = v_obj(c, spec, "jobTemplate", true);
    if (!jt)
        return;
    static const char jknown[] = "metadata\0"
                                 "spec\0";
    size_t old = v_push_key(c, "jobTemplate");
    v_fields(c, jt, jknown, NULL, NULL);
    cJSON *meta = v_obj(c, jt, "metadata", false);
    if (meta) {
        size_t o2 = v_push_key(c, "metadata");
        v_object_meta(c, meta, DRV_KIND_JOB, true);
        v_pop(c, o2);
    }
    cJSON *js = v_obj(c, jt, "spec", true);
    if (js) {
        size_t o2 = v_push_key(c, "spec");
        v_job_spec(c, js);
        v_pop(c, o2);
    }
    v_pop(c, old);
}

bool drv_model_job_update_ok(const cJSON *old, const cJSON *obj, char *msg, size_t msgsz)
{
    static const char *const fixed[] = {"template", "selector", "completions", "completionMode",
                                        "podFailurePolicy"};
    const cJSON *a = drv_json_get(old, "spec"), *b = drv_json_get(obj, "spec");
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        const cJSON *x = drv_json_get(a, fixed[i]), *y = drv_json_get(b, fixed[i]);
        if ((x || y) && !(x && y && cJSON_Compare(x, y, true))) {
            drv_fmt_cut(msg, msgsz, "spec.%s: field is immutable", fixed[i]);
            return false;
        }
    }
    return true;
}
