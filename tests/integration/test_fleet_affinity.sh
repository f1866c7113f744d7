#!/usr/bin/env bash
# Scheduling rules on a real fleet of three devices (labels device=d1..d3, kubernetes.io/hostname
# = the node's name): a Deployment with required node affinity runs only on the matching nodes
# (and the devices themselves run its containers there and nowhere else); a Deployment whose
# replicas are kept apart by required pod anti-affinity on kubernetes.io/hostname runs one per
# node, the replica too many stays Pending with a FailedScheduling event naming the rule, and
# is placed once a node is freed; a DaemonSet honours node affinity too; pods get their
# PriorityClass's priority and the built-in classes are served and kept.
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

cmd='["sh", "-c", "trap '"'"'exit 0'"'"' TERM; while true; do sleep 0.5; done"]'

# 1. Required node affinity: 4 replicas, only on d1 and d2.
cat >"$FLEET_TMP/hw.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: hw}
spec:
  replicas: 4
  selector: {matchLabels: {app: hw}}
  template:
    metadata: {labels: {app: hw}}
    spec:
      terminationGracePeriodSeconds: 1
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions:
              - {key: device, operator: In, values: [d1, d2]}
      containers:
      - {name: c, image: $FLEET_IMG1, command: $cmd}
YAML
fleet_apply "$FLEET_TMP/hw.yaml" >/dev/null
check "node affinity: 4 replicas Running" fleet_running app=hw 4 90
nodes="$(fleet_pods app=hw | jq -r '[.items[].spec.nodeName] | unique | join(",")')"
check "node affinity: only on dev1 and dev2 (got $nodes)" test "$nodes" = "dev1,dev2"
check "node affinity: the devices run the 4 hw containers" fleet_wait_devices hw- 4 30
on3="$(fleet_device_pods dev3 | grep -c '^hw-')"
check "node affinity: dev3 runs none (runs $on3)" test "$on3" = 0

# 2. Required anti-affinity on the host: one replica per node, the fourth Pending.
cat >"$FLEET_TMP/spread.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: spread}
spec:
  replicas: 4
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      terminationGracePeriodSeconds: 1
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: spread}}
            topologyKey: kubernetes.io/hostname
      containers:
      - {name: c, image: $FLEET_IMG1, command: $cmd}
YAML
fleet_apply "$FLEET_TMP/spread.yaml" >/dev/null
spread_path="$(fleet_pods_path app=spread)"
check "anti-affinity: 3 of 4 replicas Running, 1 Pending" fleet_wait "3 Running, 1 Pending" 90 \
  "$spread_path" '([.items[] | select(.status.phase == "Running")] | length) == 3 and
    ([.items[] | select(.spec.nodeName == null)] | length) == 1'
nodes="$(fleet_pods app=spread | jq -r '[.items[].spec.nodeName | select(. != null)] | unique | length')"
check "anti-affinity: the 3 Running on 3 distinct nodes (got $nodes)" test "$nodes" = 3
for n in dev1 dev2 dev3; do
  wait_on() { [ "$(fleet_device_pods "$1" | grep -c '^spread-')" = 1 ]; }
  check "anti-affinity: $n itself runs one spread pod" wait_for "$n spread pod" $((30 * FLEET_TF)) wait_on "$n"
done
pending="$(fleet_pods app=spread | jq -r '.items[] | select(.spec.nodeName == null) | .metadata.name')"
cond="$(fleet_api "/api/v1/namespaces/default/pods/$pending" |
  jq -r '.status.conditions[]? | select(.type == "PodScheduled") | "\(.status) \(.reason) \(.message)"')"
echo "# $pending: PodScheduled $cond"
check "anti-affinity: $pending PodScheduled False Unschedulable" grep -q "^False Unschedulable 0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules" <<<"$cond"
event_ok() {
  fleet_api /api/v1/namespaces/default/events | jq -e --arg p "$pending" '[.items[] |
    select(.involvedObject.name == $p and .reason == "FailedScheduling" and .type == "Warning" and
      (.message | contains("didn'"'"'t match pod anti-affinity rules")))] | length >= 1' >/dev/null
}
check "anti-affinity: a FailedScheduling event for $pending names the rule" wait_for "FailedScheduling" $((10 * FLEET_TF)) event_ok
# Deleting one replica's pod frees its node: the ReplicaSet's new pod and the pending one
# compete for it, and whichever loses stays Pending; still one per node.
victim="$(fleet_pods app=spread | jq -r '[.items[] | select(.spec.nodeName != null)][0].metadata.name')"
fleet_drover delete pod "$victim" >/dev/null 2>&1
check "anti-affinity: after a delete, again 3 Running on 3 nodes and 1 Pending" fleet_wait "3+1 again" 90 \
  "$spread_path" '([.items[] | select(.metadata.name == "'"$victim"'" and .metadata.deletionTimestamp == null)] | length) == 0 and
    ([.items[] | select(.metadata.deletionTimestamp == null and .status.phase == "Running")] | length) == 3 and
    ([.items[] | select(.metadata.deletionTimestamp == null) | .spec.nodeName | select(. != null)] | unique | length) == 3 and
    ([.items[] | select(.spec.nodeName == null)] | length) == 1'
fleet_drover scale deployment spread --replicas 3 >/dev/null
check "anti-affinity: scaled to 3, none Pending" fleet_running app=spread 3 60

# 3. A DaemonSet with node affinity: every node but d3.
cat >"$FLEET_TMP/ds.yaml" <<YAML
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: mon}
spec:
  selector: {matchLabels: {app: mon}}
  template:
    metadata: {labels: {app: mon}}
    spec:
      terminationGracePeriodSeconds: 1
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions:
              - {key: device, operator: NotIn, values: [d3]}
      containers:
      - {name: c, image: $FLEET_IMG1, command: $cmd}
YAML
fleet_apply "$FLEET_TMP/ds.yaml" >/dev/null
check "DaemonSet node affinity: 2 pods Running" fleet_running app=mon 2 90
nodes="$(fleet_pods app=mon | jq -r '[.items[].spec.nodeName] | unique | join(",")')"
check "DaemonSet node affinity: on dev1 and dev2 (got $nodes)" test "$nodes" = "dev1,dev2"

# 4. Priority: the built-in classes exist and cannot be deleted; a Deployment's pods get the
# priority of their class; an unknown class is refused.
pc="$(fleet_api /apis/scheduling.k8s.io/v1/priorityclasses/system-node-critical | jq -r .value)"
check "system-node-critical is served (value $pc)" test "$pc" = 2000001000
code="$(curl -sS -o "$FLEET_TMP/pcdel" -w '%{http_code}' -X DELETE \
  "$FLEET_HUB/apis/scheduling.k8s.io/v1/priorityclasses/system-node-critical")"
check "deleting a system priority class: 403 (got $code)" test "$code" = 403
sed -e 's/name: mon/name: crit/; s/app: mon/app: crit/g; s/NotIn, values: \[d3\]/In, values: [d3]/' \
  -e 's/^      affinity:/      priorityClassName: system-node-critical\n      affinity:/' \
  "$FLEET_TMP/ds.yaml" >"$FLEET_TMP/crit.yaml"
fleet_apply "$FLEET_TMP/crit.yaml" >/dev/null
check "priority: the critical DaemonSet's pod Running on dev3" fleet_running app=crit 1 90
prio="$(fleet_pods app=crit | jq -r '.items[0].spec.priority')"
check "priority: its pod has priority 2000001000 (got $prio)" test "$prio" = 2000001000
code="$(curl -sS -o "$FLEET_TMP/bad" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  "$FLEET_HUB/api/v1/namespaces/default/pods" -d '{"apiVersion":"v1","kind":"Pod",
  "metadata":{"name":"gold"},"spec":{"priorityClassName":"gold","containers":[{"name":"c","image":"x"}]}}')"
check "priority: an unknown class is refused with 403 (got $code)" test "$code" = 403
check "priority: the refusal names the class" grep -q 'no PriorityClass with name gold was found' "$FLEET_TMP/bad"

fleet_finish
