/* Job and CronJob validation and defaults (shared/src/model_batch.c): Kubernetes' defaults land
 * in the object, its rules name the field, the selector is the hub's unless manualSelector,
 * and what Drover does not run is refused by name. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/json.h"
#include "drover/model.h"

#define JOB "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"name\":\"pi\"},"
#define TPL(policy)                                                                                \
    "\"template\":{\"spec\":{\"restartPolicy\":\"" policy "\",\"containers\":[{\"name\":\"c\","    \
    "\"image\":\"busybox\"}]}}"
#define CRON "{\"apiVersion\":\"batch/v1\",\"kind\":\"CronJob\",\"metadata\":{\"name\":\"cj\"},"

static cJSON *norm(const char *json, drv_err_t *rc, char **problems)
{
    cJSON *o = cJSON_Parse(json);
    if (!o)
        fail_msg("bad test JSON: %s", json);
    drv_diags_t d = {0};
    *rc = drv_model_normalize(o, &d);
    *problems = drv_diags_format(&d, NULL);
    drv_diags_free(&d);
    return o;
}

static cJSON *ok(const char *json)
{
    drv_err_t rc;
    char *p;
    cJSON *o = norm(json, &rc, &p);
    if (rc != DRV_OK)
        fail_msg("refused: %s", p ? p : "?");
    free(p);
    return o;
}

static void bad(const char *json, const char *expect)
{
    drv_err_t rc;
    char *p;
    cJSON *o = norm(json, &rc, &p);
    if (rc == DRV_OK || !p || !strstr(p, expect))
        fail_msg("expected \"%s\", got %d: %s", expect, (int)rc, p ? p : "");
    free(p);
    cJSON_Delete(o);
}

static void test_job_defaults(void **state)
{
    (void)state;
    cJSON *o = ok(JOB "\"spec\":{" TPL("Never") "}}");
    cJSON *spec = drv_json_get(o, "spec");
    assert_int_equal(drv_json_int_or(spec, "completions", -1), 1);
    assert_int_equal(drv_json_int_or(spec, "parallelism", -1), 1);
    assert_int_equal(drv_json_int_or(spec, "backoffLimit", -1), 6);
    assert_string_equal(drv_json_str(spec, "completionMode"), "NonIndexed");
    assert_string_equal(drv_json_str(spec, "podReplacementPolicy"), "TerminatingOrFailed");
    assert_false(drv_json_true(spec, "suspend"));
    assert_null(drv_json_get(spec, "selector"));
    cJSON_Delete(o);
    /* parallelism alone: a work queue, no completions made up. */
    o = ok(JOB "\"spec\":{\"parallelism\":3," TPL("OnFailure") "}}");
    assert_null(drv_json_get(drv_json_get(o, "spec"), "completions"));
    cJSON_Delete(o);
    /* The selector the hub made is accepted back (kubectl apply of the stored object). */
    o = ok(JOB "\"spec\":{\"selector\":{\"matchLabels\":{\"batch.kubernetes.io/controller-uid\":"
               "\"u1\"}},\"template\":{\"metadata\":{\"labels\":{\"batch.kubernetes.io/"
               "controller-uid\":\"u1\"}},\"spec\":{\"restartPolicy\":\"Never\",\"containers\":[{"
               "\"name\":\"c\",\"image\":\"busybox\"}]}}}}");
    cJSON_Delete(o);
}

static void test_job_rules(void **state)
{
    (void)state;
    bad(JOB "\"spec\":{" TPL("Always") "}}",
        "spec.template.spec.restartPolicy: unsupported value \"Always\": supported values: "
        "\"OnFailure\", \"Never\"");
    bad(JOB
        "\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"b\"}]}}}}",
        "spec.template.spec.restartPolicy: required");
    bad(JOB "\"spec\":{\"completionMode\":\"Indexed\"," TPL("Never") "}}",
        "spec.completions: required when completionMode is Indexed");
    bad(JOB "\"spec\":{\"completionMode\":\"Indexed\",\"completions\":100001," TPL("Never") "}}",
        "spec.completions: must be less than or equal to 100000");
    bad(JOB "\"spec\":{\"backoffLimit\":-1," TPL("Never") "}}", "spec.backoffLimit");
    bad(JOB "\"spec\":{\"activeDeadlineSeconds\":0," TPL("Never") "}}",
        "spec.activeDeadlineSeconds");
    bad(JOB "\"spec\":{\"selector\":{\"matchLabels\":{\"app\":\"x\"}}," TPL("Never") "}}",
        "spec.selector: `selector` will be auto-generated");
    bad(JOB "\"spec\":{\"manualSelector\":true," TPL("Never") "}}",
        "spec.selector: required when manualSelector is true");
    bad(JOB "\"spec\":{\"manualSelector\":true,\"selector\":{\"matchLabels\":{\"app\":\"x\"}},"
            "\"template\":{\"metadata\":{\"labels\":{\"app\":\"y\"}},\"spec\":{\"restartPolicy\":"
            "\"Never\",\"containers\":[{\"name\":\"c\",\"image\":\"b\"}]}}}}",
        "`selector` does not match template `labels`");
    bad(JOB "\"spec\":{\"backoffLimitPerIndex\":1," TPL("Never") "}}",
        "spec.backoffLimitPerIndex: not supported");
    bad(JOB "\"spec\":{\"successPolicy\":{}," TPL("Never") "}}", "spec.successPolicy");
    bad(JOB "\"spec\":{\"completionMode\":\"Sometimes\"," TPL("Never") "}}", "spec.completionMode");
}

static void test_pod_failure_policy(void **state)
{
    (void)state;
    cJSON *o = ok(JOB "\"spec\":{\"podFailurePolicy\":{\"rules\":[{\"action\":\"Ignore\","
                      "\"onPodConditions\":[{\"type\":\"DisruptionTarget\"}]},{\"action\":"
                      "\"FailJob\",\"onExitCodes\":{\"operator\":\"In\",\"values\":[1,42]}}]}," TPL(
                          "Never") "}}");
    cJSON *spec = drv_json_get(o, "spec");
    assert_string_equal(drv_json_str(spec, "podReplacementPolicy"), "Failed");
    cJSON_Delete(o);
    bad(JOB "\"spec\":{\"podFailurePolicy\":{\"rules\":[{\"action\":\"FailJob\",\"onExitCodes\":"
            "{\"operator\":\"In\",\"values\":[1]}}]}," TPL("OnFailure") "}}",
        "only \"Never\" is supported when podFailurePolicy is specified");
    bad(JOB
        "\"spec\":{\"podFailurePolicy\":{\"rules\":[{\"action\":\"FailJob\"}]}," TPL("Never") "}}",
        "spec.podFailurePolicy.rules[0]: specifying one of onExitCodes and onPodConditions");
    bad(JOB "\"spec\":{\"podFailurePolicy\":{\"rules\":[{\"action\":\"Count\",\"onExitCodes\":"
            "{\"operator\":\"In\",\"values\":[0]}}]}," TPL("Never") "}}",
        "spec.podFailurePolicy.rules[0].onExitCodes.values[0]: must not be 0 for the In operator");
    bad(JOB "\"spec\":{\"podFailurePolicy\":{\"rules\":[{\"action\":\"Count\",\"onExitCodes\":"
            "{\"operator\":\"NotIn\",\"values\":[5,3]}}]}," TPL("Never") "}}",
        "values[1]: must be ordered and without duplicates");
    bad(JOB "\"spec\":{\"podFailurePolicy\":{\"rules\":[{\"action\":\"FailIndex\",\"onExitCodes\":"
            "{\"operator\":\"In\",\"values\":[1]}}]}," TPL("Never") "}}",
        "spec.podFailurePolicy.rules[0].action: unsupported value \"FailIndex\"");
    bad(JOB "\"spec\":{\"podFailurePolicy\":{\"rules\":[{\"action\":\"Retry\",\"onExitCodes\":"
            "{\"operator\":\"In\",\"values\":[1]}}]}," TPL("Never") "}}",
        "spec.podFailurePolicy.rules[0].action");
}

/* A Job's template (and selector, completions, mode, failure policy) is fixed once it exists;
 * suspend, parallelism and deadlines may change, as in Kubernetes. */
static void test_job_update(void **state)
{
    (void)state;
    cJSON *a = ok(JOB "\"spec\":{" TPL("Never") "}}");
    cJSON *b = ok(JOB "\"spec\":{\"suspend\":true,\"activeDeadlineSeconds\":60," TPL("Never") "}}");
    cJSON *c = ok(JOB "\"spec\":{" TPL("OnFailure") "}}");
    char why[200];
    assert_true(drv_model_job_update_ok(a, b, why, sizeof(why)));
    assert_false(drv_model_job_update_ok(a, c, why, sizeof(why)));
    assert_string_equal(why, "spec.template: field is immutable");
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
}

static void test_cronjob(void **state)
{
    (void)state;
    cJSON *o = ok(CRON "\"spec\":{\"schedule\":\"*/5 * * * *\",\"timeZone\":\"Europe/Paris\","
                       "\"jobTemplate\":{\"spec\":{" TPL("OnFailure") "}}}}");
    cJSON *spec = drv_json_get(o, "spec");
    assert_string_equal(drv_json_str(spec, "concurrencyPolicy"), "Allow");
    assert_int_equal(drv_json_int_or(spec, "successfulJobsHistoryLimit", -1), 3);
    assert_int_equal(drv_json_int_or(spec, "failedJobsHistoryLimit", -1), 1);
    assert_false(drv_json_true(spec, "suspend"));
    assert_int_equal(drv_json_int_at(o, "spec.jobTemplate.spec.backoffLimit", 0, 100, -1), 6);
    cJSON_Delete(o);
    bad(CRON
        "\"spec\":{\"schedule\":\"61 * * * *\",\"jobTemplate\":{\"spec\":{" TPL("Never") "}}}}",
        "spec.schedule: invalid schedule \"61 * * * *\": minute");
    bad(CRON "\"spec\":{\"jobTemplate\":{\"spec\":{" TPL("Never") "}}}}",
        "spec.schedule: required");
    bad(CRON "\"spec\":{\"schedule\":\"@daily\",\"timeZone\":\"Mars/Olympus\",\"jobTemplate\":{"
             "\"spec\":{" TPL("Never") "}}}}",
        "spec.timeZone: unknown time zone Mars/Olympus");
    bad(CRON "\"spec\":{\"schedule\":\"@daily\",\"timeZone\":\"../../etc/passwd\","
             "\"jobTemplate\":{\"spec\":{" TPL("Never") "}}}}",
        "spec.timeZone: invalid time zone name");
    bad(CRON "\"spec\":{\"schedule\":\"@daily\",\"concurrencyPolicy\":\"Sometimes\","
             "\"jobTemplate\":{\"spec\":{" TPL("Never") "}}}}",
        "spec.concurrencyPolicy");
    bad(CRON "\"spec\":{\"schedule\":\"@daily\",\"jobTemplate\":{\"spec\":{" TPL("Always") "}}}}",
        "spec.jobTemplate.spec.template.spec.restartPolicy");
    bad(CRON "\"spec\":{\"schedule\":\"@daily\",\"successfulJobsHistoryLimit\":-1,"
             "\"jobTemplate\":{\"spec\":{" TPL("Never") "}}}}",
        "spec.successfulJobsHistoryLimit");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_defaults),
        cmocka_unit_test(test_job_rules),
        cmocka_unit_test(test_pod_failure_policy),
        cmocka_unit_test(test_job_update),
        cmocka_unit_test(test_cronjob),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
