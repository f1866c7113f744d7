#!/usr/bin/env bash
# A fleet of three devices behind one hub, as a user drives it with the CLI: a Deployment of 3
# replicas runs spread over the 3 nodes and the agents really run (and stop) its containers as
# it is scaled to 5 and to 1; a rolling update to a new image keeps at least replicas -
# maxUnavailable pods ready at every API sample and ends on the new image, and `rollout undo`
# brings the old one back; `drover logs` shows a container's output; a malformed manifest gets
# 400 naming the field and a stale update 409. (lib/fleet.sh: registry, hub, Mosquitto, agents
# in their own mount+PID namespaces, all in one network namespace.)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/fleet.sh"
netns_enter "$0" "$@"
if ! fleet_require_tools; then
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
fi
fleet_setup || exit 1
fleet_start 3 || { fleet_dump; exit 1; }
echo "# fleet up: hub $FLEET_HUB, broker port $FLEET_BROKER_PORT"

web_yaml() { # IMAGE REPLICAS
  cat >"$FLEET_TMP/web.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: $2
  selector: {matchLabels: {app: web}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 1, maxSurge: 1}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: c
        image: $1
        command: ["sh", "-c", "trap 'exit 0' TERM; echo hello from \$(hostname) running \$(cat /etc/drover-image); while true; do sleep 0.5; done"]
        readinessProbe: {exec: {command: ["true"]}, initialDelaySeconds: 1, periodSeconds: 1}
YAML
}
web_pods() { fleet_pods app=web; }

# 1. Three replicas over three nodes; scale to 5 and to 1.
web_yaml "$FLEET_IMG1" 3
fleet_apply "$FLEET_TMP/web.yaml" >/dev/null
check "3 replicas Running (phase reported by the agents)" fleet_running app=web 3 90
nodes="$(web_pods | jq -r '[.items[].spec.nodeName] | unique | length')"
check "spread over 3 distinct nodes (got $nodes)" test "$nodes" = 3
check "the devices run 3 web containers" fleet_wait_devices web- 3 30
for n in dev1 dev2 dev3; do
  on="$(fleet_device_pods $n | grep -c '^web-')"
  check "$n runs one web pod (runs $on)" test "$on" = 1
done
fleet_drover scale deployment web --replicas 5 >/dev/null
check "scaled to 5: 5 Running" fleet_running app=web 5 60
check "scaled to 5: the devices run 5" fleet_wait_devices web- 5 30
fleet_drover scale deployment web --replicas 1 >/dev/null
check "scaled to 1: 1 Running" fleet_running app=web 1 60
check "scaled to 1: the devices run 1, the others stopped" fleet_wait_devices web- 1 30

# 8. drover logs: the container's own output.
fleet_drover scale deployment web --replicas 3 >/dev/null
fleet_running app=web 3 60 >/dev/null
pod="$(web_pods | jq -r '.items[0].metadata.name')"
logs_ok() { fleet_logs "$pod" >"$FLEET_TMP/log" 2>&1 && grep -q "hello from .* running app:1" "$FLEET_TMP/log"; }
check "drover logs $pod prints the container's output" wait_for "logs of $pod" $((10 * FLEET_TF)) logs_ok
rc=0
missing="$(fleet_logs no-such-pod 2>&1)" || rc=$?
check "logs of an unknown pod: an error, not output (rc $rc: $missing)" test "$rc" -ne 0

# 2. Rolling update with maxUnavailable 1, maxSurge 1: sample the API every ~200 ms. (The
# readiness probe holds each new pod unready for a second, so the rollout must wait for it.)
fleet_wait_devices web- 3 30 >/dev/null
sample() {
  local n
  while [ ! -e "$FLEET_TMP/stop-sampling" ]; do
    n="$(web_pods | jq -r "[($FLEET_JQ_READY_COUNT), ([.items[] | select(.metadata.deletionTimestamp == null)] | length)] | @tsv" 2>/dev/null)"
    [ -n "$n" ] && echo "$(fleet_ms) $n" >>"$FLEET_TMP/samples"
    sleep 0.2
  done
}
: >"$FLEET_TMP/samples"
sample &
sampler=$!
web_yaml "$FLEET_IMG2" 3
t0="$(fleet_ms)"
fleet_apply "$FLEET_TMP/web.yaml" >/dev/null
on_new() { # all 3 live pods Running and Ready on IMAGE, and nothing else left
  fleet_running app=web 3 1 2>/dev/null &&
    web_pods | jq -e --arg i "$1" '[.items[].spec.containers[0].image] | unique == [$i]' >/dev/null
}
check "rollout ends with 3 pods on the new image" wait_for "rollout to app:2" $((120 * FLEET_TF)) on_new "$FLEET_IMG2"
echo "# rollout took $(fleet_elapsed "$t0") s"
sleep 0.5
touch "$FLEET_TMP/stop-sampling"
wait "$sampler"
nsamples="$(wc -l <"$FLEET_TMP/samples")"
minready="$(awk 'NR == 1 || $2 < m {m = $2} END {print m + 0}' "$FLEET_TMP/samples")"
maxpods="$(awk '$3 > m {m = $3} END {print m + 0}' "$FLEET_TMP/samples")"
echo "# ready/live pods at each sample: $(awk '{printf "%s/%s ", $2, $3}' "$FLEET_TMP/samples")"
check "sampled the rollout ($nsamples samples)" test "$nsamples" -ge 5
check "ready pods >= 2 at every sample (min $minready)" test "$minready" -ge 2
check "pods (not being deleted) <= 4 at every sample (max $maxpods)" test "$maxpods" -le 4
check "the devices run 3 web pods after the rollout" fleet_wait_devices web- 3 30
pod="$(web_pods | jq -r '.items[0].metadata.name')"
logs_new() { fleet_logs "$pod" 2>/dev/null | grep -q "running app:2"; }
check "a new pod really runs app:2 (its log)" wait_for "app:2 in the log" $((10 * FLEET_TF)) logs_new
fleet_drover rollout undo deployment web >/dev/null
check "rollout undo: 3 pods back on the old image" wait_for "undo to app:1" $((120 * FLEET_TF)) on_new "$FLEET_IMG1"
check "the devices run 3 web pods after the undo" fleet_wait_devices web- 3 30

# 7. A malformed manifest gets 422 Invalid naming the field; a stale update 409.
code="$(curl -sS -o "$FLEET_TMP/bad" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  "$FLEET_HUB/apis/apps/v1/namespaces/default/deployments" -d '{"apiVersion":"apps/v1","kind":"Deployment",
  "metadata":{"name":"bad"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"bad"}},
  "template":{"metadata":{"labels":{"app":"bad"}},"spec":{"containers":[{"name":"c"}]}}}}')"
check "malformed Deployment: 422 (got $code)" test "$code" = 422
check "the error names spec.template.spec.containers[0].image" grep -q 'spec.template.spec.containers\[0\].image' "$FLEET_TMP/bad"
code="$(curl -sS -o "$FLEET_TMP/bad" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  "$FLEET_HUB/apis/apps/v1/namespaces/default/deployments" -d '{"apiVersion":"apps/v1","kind":"Deployment",')"
check "truncated JSON: 400 (got $code)" test "$code" = 400
fleet_api /apis/apps/v1/namespaces/default/deployments/web >"$FLEET_TMP/old.json"
fleet_drover scale deployment web --replicas 2 >/dev/null
code="$(jq '.spec.replicas = 4' "$FLEET_TMP/old.json" | curl -sS -o "$FLEET_TMP/stale" -w '%{http_code}' -X PUT \
  -H 'Content-Type: application/json' --data-binary @- "$FLEET_HUB/apis/apps/v1/namespaces/default/deployments/web")"
check "stale update (old resourceVersion): 409 (got $code)" test "$code" = 409
replicas="$(fleet_api /apis/apps/v1/namespaces/default/deployments/web | jq .spec.replicas)"
check "the stale update changed nothing (replicas $replicas)" test "$replicas" = 2
check "the fleet follows: 2 Running" fleet_running app=web 2 60

fleet_finish
