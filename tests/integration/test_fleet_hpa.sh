#!/usr/bin/env bash
# Usage pushed by agents and the HorizontalPodAutoscaler, on a real fleet in the hub's default
# secure configuration (lib/fleet.sh, FLEET_SECURE=1, two devices, usage every 2 s, HPAs synced
# every 2 s): `drover top` and metrics.k8s.io show the containers' cpu; a Deployment whose
# containers burn cpu when a ConfigMap says "on" (a shell loop counting for about 0.15 s a second:
# about 150m, against a 100m request and an HPA at 50 %) scales up within its bounds when the load comes and back down once the load
# is gone and the scale-down window (8 s, set in behavior) has passed; a device partitioned
# while it runs scaled up does not read as idle (no scale-down); hostile usage reports sent
# with a device's own certificate are refused and counted, and never seen at the API.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/fleet.sh"
netns_enter "$0" "$@"
for t in mosquitto_pub; do
  command -v "$t" >/dev/null || { echo "missing $t" >&2; [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77; exit 1; }
done
if ! fleet_require_tools; then
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
fi
fleet_setup || exit 1
export FLEET_SECURE=1 FLEET_NODE_GRACE=4 FLEET_HUB_EXTRA="--hpa-sync-seconds 2"
export FLEET_DEVICE_EXTRA="metrics:
  intervalSeconds: 2
  keepaliveSeconds: 6"
fleet_start 2 || { fleet_dump; exit 1; }
echo "# fleet up: hub $FLEET_HUB, broker port $FLEET_BROKER_PORT"

load() { # the ConfigMap alone: applying the Deployment again would reset its replicas
  printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: load}\ndata: {mode: "%s"}\n' "$1" \
    >"$FLEET_TMP/load.yaml"
  fleet_apply "$FLEET_TMP/load.yaml" >/dev/null
}
load off
cat >"$FLEET_TMP/app.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: burn}
spec:
  replicas: 1
  selector: {matchLabels: {app: burn}}
  template:
    metadata: {labels: {app: burn}}
    spec:
      terminationGracePeriodSeconds: 1
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 300}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 300}
      containers:
      - name: c
        image: $FLEET_IMG1
        resources: {requests: {cpu: 100m}}
        command: ["sh", "-c", "trap 'exit 0' TERM; while :; do if [ \"\$(cat /load/mode)\" = on ]; then i=0; while [ \$i -lt 150000 ]; do i=\$((i+1)); done; usleep 850000; else sleep 1; fi; done"]
        volumeMounts: [{name: load, mountPath: /load}]
      volumes: [{name: load, configMap: {name: load}}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: burn}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: burn}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
  behavior:
    scaleDown: {stabilizationWindowSeconds: 8}
YAML
fleet_apply "$FLEET_TMP/app.yaml" >/dev/null
check "the Deployment runs 1 replica" fleet_running app=burn 1 60
replicas() { fleet_api /apis/apps/v1/namespaces/default/deployments/burn | jq -r '.spec.replicas'; }
hpa() { fleet_api /apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/burn; }

# ---- usage at the API ----
check "NodeMetrics for dev1 (metrics.k8s.io)" fleet_wait "dev1's usage" 30 \
  /apis/metrics.k8s.io/v1beta1/nodes/dev1 '.kind == "NodeMetrics" and (.usage.cpu | endswith("n")) and (.usage.memory | endswith("Ki"))'
check "PodMetrics for the pod, per container" fleet_wait "the pod's usage" 30 \
  "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dburn" \
  '.kind == "PodMetricsList" and (.items | length) == 1 and .items[0].containers[0].name == "c"'
check "NodeMetrics for both devices" fleet_wait "both nodes' usage" 30 \
  /apis/metrics.k8s.io/v1beta1/nodes '(.items | length) == 2'
fleet_drover top nodes >"$FLEET_TMP/top" 2>&1
sed 's/^/#   /' "$FLEET_TMP/top"
check "drover top nodes lists both devices" bash -c "grep -q '^dev1 ' '$FLEET_TMP/top' && grep -q '^dev2 ' '$FLEET_TMP/top'"
# kubectl top, through the hub's API discovery and metrics.k8s.io (where kubectl is installed)
if command -v kubectl >/dev/null; then
  cat >"$FLEET_TMP/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: drover, cluster: {server: "$FLEET_HUB", certificate-authority: "$FLEET_CA"}}]
users: [{name: admin, user: {token: "$DROVER_TOKEN"}}]
contexts: [{name: drover, context: {cluster: drover, user: admin, namespace: default}}]
current-context: drover
KC
  KUBECONFIG="$FLEET_TMP/kubeconfig" timeout 60 kubectl top nodes >"$FLEET_TMP/ktop" 2>&1
  sed 's/^/#   /' "$FLEET_TMP/ktop"
  check "kubectl top nodes lists both devices" bash -c "grep -q '^dev1 ' '$FLEET_TMP/ktop' && grep -q '^dev2 ' '$FLEET_TMP/ktop'"
  KUBECONFIG="$FLEET_TMP/kubeconfig" timeout 60 kubectl top pods -l app=burn >"$FLEET_TMP/ktop" 2>&1
  sed 's/^/#   /' "$FLEET_TMP/ktop"
  check "kubectl top pods -l app=burn lists the pod" grep -q '^burn-' "$FLEET_TMP/ktop"
else
  echo "# kubectl is not installed: kubectl top not checked"
fi
check "an idle pod uses little cpu (< 50m)" fleet_wait "idle" 20 \
  "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dburn" \
  '(.items[0].containers[0].usage.cpu | rtrimstr("n") | tonumber) < 50000000'
check "the HPA says it can compute (ScalingActive True) and stays at 1" fleet_wait "ScalingActive" 30 \
  /apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/burn \
  '[.status.conditions[]? | select(.type == "ScalingActive") | .status] == ["True"] and .status.desiredReplicas == 1'

# ---- load on: up within the bounds ----
t0=$(fleet_ms)
load on
check "load on: scaled up to the maximum, 3" fleet_wait "3 replicas" 90 \
  /apis/apps/v1/namespaces/default/deployments/burn '.spec.replicas == 3'
echo "# load on -> 3 replicas in $(fleet_elapsed "$t0") s"
check "3 pods Running" fleet_running app=burn 3 60
h="$(hpa)"
echo "# hpa status: $(jq -c '.status | {currentReplicas, desiredReplicas, currentMetrics}' <<<"$h")"
check "the HPA's current cpu is above its 50 % target" \
  test "$(jq -r '.status.currentMetrics[0].resource.current.averageUtilization // 0' <<<"$h")" -gt 50
ev="$(fleet_api /api/v1/namespaces/default/events | jq -r '[.items[] | select(.involvedObject.kind == "HorizontalPodAutoscaler" and .reason == "SuccessfulRescale") | .message] | .[0] // ""')"
check "SuccessfulRescale: \"$ev\"" grep -q "^New size: [23]; reason: cpu resource utilization (percentage of request) above target$" <<<"$ev"
check "never above maxReplicas" test "$(replicas)" -le 3
fleet_drover describe hpa burn >"$FLEET_TMP/describe-hpa" 2>&1
check "drover describe hpa shows its SuccessfulRescale event" grep -q "SuccessfulRescale" "$FLEET_TMP/describe-hpa"
fleet_drover get hpa >"$FLEET_TMP/get-hpa" 2>&1
sed 's/^/#   /' "$FLEET_TMP/get-hpa"
check "drover get hpa: REFERENCE, TARGETS like cpu: N%/50%, bounds and replicas" \
  grep -Eq '^burn +Deployment/burn +cpu: [0-9]+%/50% +1 +3 +[1-3] ' "$FLEET_TMP/get-hpa"

# ---- a device partitioned while scaled up: its pods are missing, not idle ----
part=""
for n in dev1 dev2; do
  c=$(fleet_pods app=burn | jq --arg n "$n" '[.items[] | select(.spec.nodeName == $n)] | length')
  [ "$c" -gt 0 ] && part="$n"
done
fleet_partition "$part"
echo "# partitioned $part"
low=3
for _ in $(seq 1 $((20 * FLEET_TF))); do
  r=$(replicas)
  [ "$r" -lt "$low" ] && low=$r
  hpa | jq -c '{t: now | todate, r: .status.currentReplicas, d: .status.desiredReplicas, m: .status.currentMetrics[0].resource.current, c: [.status.conditions[]? | "\(.type)=\(.status)/\(.reason)"]}' >>"$FLEET_TMP/hpa-during-partition"
  fleet_pods app=burn | jq -c '[.items[] | {n: .metadata.name, node: .spec.nodeName, ph: .status.phase, rd: ([.status.conditions[]? | select(.type == "Ready") | "\(.status)@\(.lastTransitionTime)"] | .[0])}]' >>"$FLEET_TMP/hpa-during-partition"
  sleep 1
done
if [ "$low" -ne 3 ]; then
  sed 's/^/#   /' "$FLEET_TMP/hpa-during-partition"
  fleet_api /api/v1/namespaces/default/events | jq -r '.items[] | select(.involvedObject.kind == "HorizontalPodAutoscaler") | "#   \(.reason): \(.message)"'
fi
check "partitioned 20 s (past the 8 s scale-down window): never scaled down (lowest $low)" test "$low" -eq 3
fleet_heal "$part"
check "the node is Ready again" fleet_wait "$part Ready" 30 "/api/v1/nodes/$part" "$FLEET_JQ_READY"

# ---- load off: down after the window ----
t0=$(fleet_ms)
load off
check "load off: scaled down to the minimum, 1" fleet_wait "1 replica" 120 \
  /apis/apps/v1/namespaces/default/deployments/burn '.spec.replicas == 1'
el=$(fleet_elapsed "$t0")
echo "# load off -> 1 replica in $el s (window 8 s)"
check "not before the scale-down window ($el s >= 8 s)" awk -v e="$el" 'BEGIN { exit !(e >= 8) }'

# ---- hostile usage reports, with dev1's own certificate ----
ID1="${FLEET_DEV_DIR[dev1]}/state/identity"
as_dev1() {
  mosquitto_pub --cafile "$ID1/ca.crt" --cert "$ID1/node.crt" --key "$ID1/node.key" \
    -h 127.0.0.11 -p "$FLEET_BROKER_PORT" -i drover-agent-dev1 -q 1 "$@"
}
refused_count() { fleet_api /metrics | awk '$1 == "drover_usage_reports_refused_total" { print $2 }'; }
before=$(refused_count)
now_ms=$(fleet_ms)
pod2="$(fleet_pods app=burn | jq -r '.items[0] | "\(.metadata.name) \(.metadata.uid) \(.spec.nodeName)"')"
read -r pname puid pnode <<<"$pod2"
other=dev1
[ "$pnode" = dev1 ] && other=dev2
as_dev1 -t drover/v1/node/dev1/metrics -m 'not json at all'
as_dev1 -t drover/v1/node/dev1/metrics -m "{\"node\":\"dev1\",\"seq\":99,\"time\":$((now_ms + 3600000)),\"window\":2000,\"usage\":{\"cpu\":1},\"pods\":[]}"
as_dev1 -t drover/v1/node/dev1/metrics -m "{\"node\":\"dev1\",\"seq\":99,\"time\":$now_ms,\"window\":2000,\"usage\":{\"cpu\":-5},\"pods\":[]}"
as_dev1 -t drover/v1/node/dev1/metrics -m "{\"node\":\"dev2\",\"seq\":99,\"time\":$now_ms,\"window\":2000,\"usage\":{},\"pods\":[]}"
if [ "$pnode" != dev1 ]; then
  # usage for a pod that runs on dev2, claimed by dev1: 9 cores
  as_dev1 -t drover/v1/node/dev1/metrics -m "{\"node\":\"dev1\",\"seq\":99,\"time\":$((now_ms + 500)),\"window\":2000,\"usage\":{},\"pods\":[{\"ns\":\"default\",\"name\":\"$pname\",\"uid\":\"$puid\",\"containers\":[{\"name\":\"c\",\"cpu\":9000000000,\"memory\":1}]}]}"
fi
# on dev2's topic: the broker drops it (ACL), so it is never even seen
as_dev1 -t drover/v1/node/dev2/metrics -m "{\"node\":\"dev2\",\"seq\":99,\"time\":$now_ms,\"window\":2000,\"usage\":{\"cpu\":7},\"pods\":[]}"
sleep 2
after=$(refused_count)
expect=4
[ "$pnode" != dev1 ] && expect=5
check "hostile reports refused and counted (${before:-?} -> ${after:-?}, at least +$expect)" \
  test "$((${after:-0} - ${before:-0}))" -ge "$expect"
cpu_seen="$(fleet_api "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/$pname" | jq -r '.containers[0].usage.cpu // ""')"
check "the claimed 9 cores never reached the API ($cpu_seen)" test "$cpu_seen" != "9000000000n"
node2_cpu="$(fleet_api /apis/metrics.k8s.io/v1beta1/nodes/dev2 | jq -r '.usage.cpu')"
check "dev2's usage is its own, not dev1's forgery ($node2_cpu)" test "$node2_cpu" != "7n"

# ---- a device's own pod reported under another pod's uid, and one pod many times ----
cat >"$FLEET_TMP/pair.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: pair}
spec:
  replicas: 2
  selector: {matchLabels: {app: pair}}
  template:
    metadata: {labels: {app: pair}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {name: c, image: $FLEET_IMG1, command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]}
YAML
fleet_apply "$FLEET_TMP/pair.yaml" >/dev/null
check "2 more pods Running" fleet_running app=pair 2 60
check "... with usage of their own" fleet_wait "pair usage" 30 \
  "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dpair" '(.items | length) == 2'
all_pods="$(fleet_api /api/v1/namespaces/default/pods | jq -r '.items[] | "\(.metadata.name) \(.metadata.uid) \(.spec.nodeName)"')"
own="$(awk '$3 == "dev1" { print; exit }' <<<"$all_pods")"
if [ -n "$own" ]; then
  read -r oname ouid _ <<<"$own"
  victim="$(awk -v o="$oname" '$1 != o { print; exit }' <<<"$all_pods")"
  read -r vname vuid _ <<<"$victim"
  before=$(refused_count)
  pod_series() { fleet_api /metrics | awk '$1 == "drover_usage_series{kind=\"pod\"}" { print $2 }'; }
  series_before=$(pod_series)
  t=$(($(fleet_ms) + 900))
  forged="{\"ns\":\"default\",\"name\":\"$oname\",\"uid\":\"$vuid\",\"containers\":[{\"name\":\"c\",\"cpu\":9000000000,\"memory\":1}]}"
  as_dev1 -t drover/v1/node/dev1/metrics -m "{\"node\":\"dev1\",\"seq\":98,\"time\":$t,\"window\":2000,\"usage\":{},\"pods\":[$forged]}"
  # its own pod, under its own uid, 200 times in one report: kept once
  many=""
  for i in $(seq 1 200); do
    many="$many${many:+,}{\"ns\":\"default\",\"name\":\"$oname\",\"uid\":\"$ouid$([ "$i" -gt 1 ] && echo "-$i")\",\"containers\":[{\"name\":\"c\",\"cpu\":1,\"memory\":1}]}"
  done
  as_dev1 -t drover/v1/node/dev1/metrics -m "{\"node\":\"dev1\",\"seq\":99,\"time\":$((t + 10)),\"window\":2000,\"usage\":{},\"pods\":[$many]}"
  sleep 2
  vcpu="$(fleet_api "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/$vname" | jq -r '.containers[0].usage.cpu // ""')"
  check "dev1's pod reported under $vname's uid: never filed as $vname ($vcpu)" test "$vcpu" != "9000000000n"
  series=$(pod_series)
  check "one pod repeated 200 times under made-up uids makes no new series ($series_before -> $series)" \
    test "${series:-999}" -le "${series_before:-0}"
  check "both counted as refused" test "$(($(refused_count) - before))" -ge 2
else
  echo "# no pod on dev1: the uid forgery was not tried"
fi

# ---- history ----
check "a node's usage history has points" fleet_wait "history" 10 \
  "/apis/drover.io/v1/usage/nodes/dev1?window=15m" '.kind == "UsageHistory" and (.points | length) >= 3'
# (dev1's agent was pushed off the broker by the publishes above, made with its client id: it
# comes back with back-off, so its gauge may take a while.)
node_gauges() { fleet_api /metrics | grep -c '^drover_node_cpu_usage_cores{node="dev[12]"}'; }
gauges=0
for _ in $(seq 1 $((40 * FLEET_TF))); do
  gauges=$(node_gauges)
  [ "$gauges" -ge 2 ] && break
  sleep 0.5
done
check "/metrics has the per-node gauges of both devices ($gauges)" test "$gauges" -ge 2
fleet_finish
