#!/usr/bin/env bash
# Jobs and CronJobs on a real fleet (lib/fleet.sh, two devices, the hub's secure configuration):
# a Job whose container fails respects backoffLimit (backoffLimit+1 pods, the second about 10 s
# after the first, none after, Failed with BackoffLimitExceeded); a Job of 2 completions
# completes (its containers really ran on the devices) and is deleted by its
# ttlSecondsAfterFinished; an Indexed Job's pods see JOB_COMPLETION_INDEX and their hostname
# <job>-<index>; activeDeadlineSeconds stops a Job that runs too long; a CronJob every minute
# runs on schedule (its Jobs made within seconds of each minute, named after it) and keeps its
# history limit; kubectl applies a Job, makes one from the CronJob (create job --from) and
# shows the jobs and cronjobs columns; with the hub down across a scheduled minute, a CronJob
# without a deadline runs that minute at restart, one whose startingDeadlineSeconds passed
# does not and says so in a MissSchedule event (Kubernetes' rules).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/fleet.sh"
kubectl_find() { # MINOR: a kubectl of that minor version
  local c v
  for c in kubectl "/usr/lib/google-cloud-sdk/bin/kubectl.1.$1"; do
    command -v "$c" >/dev/null 2>&1 || continue
    v="$("$c" version --client -o json 2>/dev/null | jq -r '.clientVersion.minor // empty')"
    [ "${v%+}" = "$1" ] && { echo "$c"; return 0; }
  done
  return 1
}
KUBECTL="$(kubectl_find 33)" || KUBECTL=""
netns_enter "$0" "$@"
if ! fleet_require_tools; then
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
fi
export FLEET_SECURE=1
fleet_setup || exit 1
fleet_start 2 || { fleet_dump; exit 1; }
echo "# fleet up: hub $FLEET_HUB"
J=/apis/batch/v1/namespaces/default

# ---- a CronJob every minute, first: its minutes pass while the Jobs below run ----
cat >"$FLEET_TMP/cron.yaml" <<YAML
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "* * * * *"
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 1
          containers:
          - {name: c, image: $FLEET_IMG1, command: ["sh", "-c", "echo tick; sleep 2"]}
YAML
fleet_apply "$FLEET_TMP/cron.yaml" >/dev/null
cron_start=$(date +%s)

# ---- a failing Job respects backoffLimit ----
cat >"$FLEET_TMP/fail.yaml" <<YAML
apiVersion: batch/v1
kind: Job
metadata: {name: fail}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - {name: c, image: $FLEET_IMG1, command: ["sh", "-c", "echo failing; exit 3"]}
YAML
fleet_apply "$FLEET_TMP/fail.yaml" >/dev/null
check "the failing Job fails with BackoffLimitExceeded" fleet_wait "fail Failed" 90 "$J/jobs/fail" \
  '.status.conditions // [] | any(.type == "Failed" and .status == "True" and .reason == "BackoffLimitExceeded")'
job_pods() { fleet_pods "batch.kubernetes.io/job-name=$1"; }
check "backoffLimit 1: two pods ran, both Failed with exit code 3" \
  test "$(job_pods fail | jq '[.items[] | select(.status.phase == "Failed" and
    .status.containerStatuses[0].state.terminated.exitCode == 3)] | length')" = 2
check "status.failed is 2, nothing active" \
  test "$(fleet_api "$J/jobs/fail" | jq -c '[.status.failed, .status.active]')" = "[2,0]"
gap="$(job_pods fail | jq '[.items[].metadata.creationTimestamp | fromdate] | sort | .[1] - .[0]')"
check "the second pod came after the 10 s back-off (${gap}s)" test "$gap" -ge 10
sleep 12
check "no third pod after the limit" test "$(job_pods fail | jq '.items | length')" = 2
check "events: SuccessfulCreate x2 and BackoffLimitExceeded" fleet_wait "fail events" 10 \
  "/api/v1/namespaces/default/events" \
  '[.items[] | select(.involvedObject.name == "fail" and .involvedObject.kind == "Job") | .reason] |
   (map(select(. == "SuccessfulCreate")) | length) == 2 and index("BackoffLimitExceeded") != null'

# ---- a Job of 2 completions completes, then its TTL deletes it ----
cat >"$FLEET_TMP/ok.yaml" <<YAML
apiVersion: batch/v1
kind: Job
metadata: {name: ok}
spec:
  completions: 2
  parallelism: 2
  ttlSecondsAfterFinished: 8
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: c, image: $FLEET_IMG1, command: ["sh", "-c", "echo done > /dev/null; sleep 1"]}
YAML
fleet_apply "$FLEET_TMP/ok.yaml" >/dev/null
check "the Job completes (Complete, succeeded 2)" fleet_wait "ok Complete" 60 "$J/jobs/ok" \
  '.status.succeeded == 2 and (.status.conditions | any(.type == "Complete" and .status == "True")) and .status.completionTime != null'
check "its 2 pods Succeeded on the devices" \
  test "$(job_pods ok | jq '[.items[] | select(.status.phase == "Succeeded")] | length')" = 2
check "ttlSecondsAfterFinished deletes the Job" fleet_wait "ok gone" 30 "/apis/batch/v1/namespaces/default/jobs" \
  '[.items[].metadata.name] | index("ok") == null'
check "... and its pods" test "$(job_pods ok | jq '.items | length')" = 0

# ---- an Indexed Job: the index in the environment and the hostname ----
cat >"$FLEET_TMP/idx.yaml" <<YAML
apiVersion: batch/v1
kind: Job
metadata: {name: idx}
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: $FLEET_IMG1
        command: ["sh", "-c", "test -n \"\$JOB_COMPLETION_INDEX\" && test \"\$(hostname)\" = \"idx-\$JOB_COMPLETION_INDEX\""]
YAML
fleet_apply "$FLEET_TMP/idx.yaml" >/dev/null
check "the Indexed Job completes: indexes 0-2, each pod saw its index and hostname" \
  fleet_wait "idx Complete" 60 "$J/jobs/idx" \
  '.status.completedIndexes == "0-2" and (.status.conditions | any(.type == "Complete" and .status == "True"))'

# ---- activeDeadlineSeconds ----
cat >"$FLEET_TMP/slow.yaml" <<YAML
apiVersion: batch/v1
kind: Job
metadata: {name: slow}
spec:
  activeDeadlineSeconds: 6
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - {name: c, image: $FLEET_IMG1, command: ["sh", "-c", "trap 'exit 0' TERM; sleep 300 & wait"]}
YAML
fleet_apply "$FLEET_TMP/slow.yaml" >/dev/null
check "the slow Job runs" fleet_running batch.kubernetes.io/job-name=slow 1 60
check "activeDeadlineSeconds fails it with DeadlineExceeded" fleet_wait "slow Failed" 30 "$J/jobs/slow" \
  '.status.conditions // [] | any(.type == "Failed" and .reason == "DeadlineExceeded")'
check "its pod is stopped on the device" fleet_wait_devices slow- 0 30

# ---- kubectl ----
if [ -n "$KUBECTL" ]; then
  "$FLEET_CLI" kubeconfig >"$FLEET_TMP/kc" 2>/dev/null
  sed -e 's/name: fail/name: kfail/' "$FLEET_TMP/fail.yaml" >"$FLEET_TMP/kfail.yaml"
  check "kubectl apply -f a Job" "$KUBECTL" --kubeconfig "$FLEET_TMP/kc" apply -f "$FLEET_TMP/kfail.yaml"
  check "kubectl apply again: unchanged" \
    sh -c "'$KUBECTL' --kubeconfig '$FLEET_TMP/kc' apply -f '$FLEET_TMP/kfail.yaml' | grep -q unchanged"
  check "kubectl create job --from=cronjob/tick (a protobuf body)" \
    "$KUBECTL" --kubeconfig "$FLEET_TMP/kc" create job manual --from=cronjob/tick
  check "the manual Job completes" fleet_wait "manual Complete" 60 "$J/jobs/manual" \
    '.metadata.annotations["cronjob.kubernetes.io/instantiate"] == "manual" and (.status.conditions // [] | any(.type == "Complete" and .status == "True"))'
  out="$("$KUBECTL" --kubeconfig "$FLEET_TMP/kc" get jobs,cronjobs 2>&1)"
  echo "$out" | sed 's/^/#   /'
  has() { grep -Eq "$1" <<<"$out"; }
  check "kubectl get jobs: Kubernetes' columns" has '^NAME +STATUS +COMPLETIONS +DURATION +AGE'
  check "kubectl get cronjobs: Kubernetes' columns" \
    has '^NAME +SCHEDULE +TIMEZONE +SUSPEND +ACTIVE +LAST SCHEDULE +AGE'
  check "kubectl get jobs: the failed Job's row" has '^job.batch/fail +Failed +0/1 '
  check "kubectl get cronjobs: the CronJob's row" has '^cronjob.batch/tick +[*] [*] [*] [*] [*] +<none> +False '
else
  echo "# no kubectl 1.33: kubectl checks skipped"
fi

# ---- the CronJob: on schedule, history limit ----
left=$((cron_start + 140 - $(date +%s)))
[ "$left" -lt 30 ] && left=30
check "the CronJob made a Job at two successive minutes" fleet_wait "2 tick jobs" "$left" \
  "/api/v1/namespaces/default/events" \
  '[.items[] | select(.involvedObject.name == "tick" and .reason == "SuccessfulCreate")] | length >= 2'
check "its Jobs complete" fleet_wait "tick success" 40 "$J/cronjobs/tick" '.status.lastSuccessfulTime != null'
made="$(fleet_api /api/v1/namespaces/default/events | jq -r '[.items[] | select(.involvedObject.name == "tick" and .reason == "SuccessfulCreate") | .message | sub("Created job "; "")] | sort | .[]')"
echo "# tick jobs made: $(echo $made)"
m1="$(echo "$made" | sed -n 1p)"; m2="$(echo "$made" | sed -n 2p)"
check "named <cronjob>-<minute>, successive minutes" test "$(( ${m2#tick-} - ${m1#tick-} ))" = 1
late=$(fleet_api "$J/cronjobs/tick" | jq -r '.status.lastScheduleTime | fromdate')
check "lastScheduleTime is a whole minute" test "$((late % 60))" = 0
check "history limit 1: one finished Job kept, the older deleted" fleet_wait "tick history" 70 \
  "/apis/batch/v1/namespaces/default/jobs" \
  '[.items[] | select(.metadata.ownerReferences[0].name == "tick") | select(.status.conditions // [] | any(.type == "Complete"))] | length == 1'
check "a SuccessfulDelete event tells it" fleet_wait "tick delete" 10 \
  "/api/v1/namespaces/default/events" \
  '[.items[] | select(.involvedObject.name == "tick" and .reason == "SuccessfulDelete")] | length >= 1'
first="$(fleet_api "/api/v1/namespaces/default/events" | jq -r '[.items[] | select(.involvedObject.name == "tick" and .reason == "SuccessfulCreate")] | sort_by(.firstTimestamp) | .[0] | .firstTimestamp | fromdate')"
check "the first Job came within 5 s of its minute ($((first % 60)) s)" test "$((first % 60))" -le 5

# ---- the hub down across a scheduled minute (Kubernetes' missed-schedule rules) ----
cat >"$FLEET_TMP/late.yaml" <<YAML
apiVersion: batch/v1
kind: CronJob
metadata: {name: late}
spec:
  schedule: "* * * * *"
  startingDeadlineSeconds: 15
  successfulJobsHistoryLimit: 5
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - {name: c, image: $FLEET_IMG1, command: ["true"]}
YAML
fleet_apply "$FLEET_TMP/late.yaml" >/dev/null
s=$(($(date +%s) % 60))
[ "$s" -ge 40 ] && sleep $((65 - s)) # stop early in a minute, restart 30 s after the next
m0=$(($(date +%s) / 60 * 60))
missed=$((m0 + 60))
fleet_hub_stop
echo "# hub down from $(date -u +%T) over $(date -u -d @$missed +%T)"
sleep $((missed + 30 - $(date +%s)))
fleet_hub_start || { fleet_dump; exit 1; }
echo "# hub up again at $(date -u +%T)"
check "no deadline: the missed minute runs at once on restart (tick-$((missed / 60)))" \
  fleet_wait "tick's missed Job" 15 "$J/jobs/tick-$((missed / 60))" \
  ".metadata.annotations[\"batch.kubernetes.io/cronjob-scheduled-timestamp\"] == \"$(date -u -d @$missed +%FT%TZ)\""
check "startingDeadlineSeconds 15 passed: a MissSchedule warning for late" \
  fleet_wait "late MissSchedule" 15 "/api/v1/namespaces/default/events" \
  '[.items[] | select(.involvedObject.name == "late" and .reason == "MissSchedule" and .type == "Warning")] | length == 1'
check "... and no Job for that minute" \
  test "$(fleet_api "$J/jobs/late-$((missed / 60))" | jq -r .kind)" = Status
check "late runs again at the next minute" fleet_wait "late's next Job" 50 \
  "$J/jobs/late-$((missed / 60 + 1))" '.kind == "Job"'

fleet_finish
