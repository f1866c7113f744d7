#!/usr/bin/env bash
# Short partitions, as a user sees them (issue 10: pods stayed "not Ready" after one), in the
# hub's default secure configuration (lib/fleet.sh, FLEET_SECURE=1, three devices): a device
# loses its broker connection for less than its pods' toleration, the hub marks its node
# NotReady and its pods not Ready (it cannot know better), the Deployment is scaled during the
# cut, the network comes back. Within a bound the API must show every pod Running and Ready
# again — the device's truth, which its agent never saw change (its connection outlived the
# cut, so it has nothing new to say) — and the devices must run exactly the desired count.
# Then the same with the hub killed (-9) and restarted during the cut, and with the broker
# killed during the cut.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/fleet.sh"
netns_enter "$0" "$@"
if ! fleet_require_tools; then
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
fi
fleet_setup || exit 1
# Grace 4 s: the hub marks the node (and its pods) within the cut. Keep-alive 60 s: the agent's
# connection survives a 12 s cut, so the agent never learns it was away (the case that stayed
# stale); TCP carries what it sent during the cut once the network is back.
export FLEET_SECURE=1 FLEET_NODE_GRACE=4 FLEET_KEEPALIVE=60
fleet_start 3 || { fleet_dump; exit 1; }
echo "# fleet up: hub $FLEET_HUB, broker port $FLEET_BROKER_PORT"

CUT_S=12 # shorter than grace + toleration: nothing is evicted
deploy() {
  cat >"$FLEET_TMP/web.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: $1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 300}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 300}
      containers:
      - name: c
        image: $FLEET_IMG1
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.5; done"]
        readinessProbe:
          exec: {command: ["true"]}
          periodSeconds: 2
YAML
  fleet_apply "$FLEET_TMP/web.yaml" >/dev/null
}

deploy 3
check "3 replicas Running and Ready" fleet_running app=web 3 90
check "the devices run them" fleet_wait_devices web- 3 30

# The pods of node $1 that the API shows not Ready.
not_ready_on() {
  fleet_pods app=web | jq -r --arg n "$1" '[.items[] | select(.spec.nodeName == $n and
    ([.status.conditions[]? | select(.type == "Ready") | .status] != ["True"]))] | length'
}
marked() { [ "$(not_ready_on "$1")" -gt 0 ]; }

# cycle LABEL REPLICAS [ACTION]: partitions a node that runs a web pod, waits until the hub
# marked it and its pods, scales to REPLICAS, runs ACTION (a hub or broker crash) during the
# cut, heals after CUT_S seconds, then checks that the API converges to the devices' truth.
cycle() {
  local label="$1" replicas="$2" action="${3:-}" victim t0 left
  victim="$(fleet_pods app=web | jq -r '[.items[] | select(.metadata.deletionTimestamp == null)][0].spec.nodeName')"
  echo "# $label: partitioning $victim (runs $(fleet_device_pods "$victim" | grep '^web-' | tr '\n' ' '))"
  fleet_partition "$victim"
  t0="$(fleet_ms)"
  check "$label: $victim NotReady on the hub" \
    wait_for "$victim NotReady" $((CUT_S * FLEET_TF)) fleet_node_not_ready "$victim"
  check "$label: the hub marked $victim's pods not Ready" wait_for "pods marked" 5 marked "$victim"
  fleet_drover scale deployment web --replicas "$replicas" >/dev/null
  [ -z "$action" ] || "$action"
  left=$((CUT_S * 1000 - ($(fleet_ms) - t0)))
  [ "$left" -le 0 ] || sleep "$(awk -v m="$left" 'BEGIN {printf "%.1f", m / 1000}')"
  fleet_heal "$victim"
  t0="$(fleet_ms)"
  check "$label: $victim Ready again" wait_for "$victim Ready" $((30 * FLEET_TF)) fleet_node_ready "$victim"
  check "$label: every pod Running and Ready in the API ($replicas)" fleet_running app=web "$replicas" 30
  echo "# $label: all Ready in the API $(fleet_elapsed "$t0") s after the network came back"
  check "$label: the devices run exactly $replicas web pods" fleet_wait_devices web- "$replicas" 30
  # And it stays so: nothing flips back once the node is Ready (e.g. a late mark), and the
  # hub asks for no more full reports once it has one (heartbeats stay heartbeats).
  local r0 r1
  r0="$(resyncs "$victim")"
  sleep $((4 * FLEET_TF))
  r1="$(resyncs "$victim")"
  check "$label: still all Running and Ready 4 s later" fleet_running app=web "$replicas" 1
  check "$label: no pod of $victim left not Ready" test "$(not_ready_on "$victim")" -eq 0
  check "$label: no resync asked of $victim once it reported ($r0 then $r1)" test "$r0" = "$r1"
}

# The hub's Resync events for node $1, as one count (an Event's count grows when repeated).
resyncs() {
  fleet_api /api/v1/namespaces/default/events | jq --arg n "$1" \
    '[.items[] | select(.reason == "Resync" and .involvedObject.name == $n) | (.count // 1)] | add // 0'
}

crash_hub() {
  echo "# hub kill -9 and restart during the cut"
  fleet_hub_stop KILL
  fleet_hub_start || echo "hub did not come back" >&2
  # The restarted hub's Mosquitto (TLS) needs the API up: the CLI and API work again.
  wait_for "hub API" $((20 * FLEET_TF)) fleet_api /healthz >/dev/null
}

crash_broker() {
  echo "# broker kill -9 during the cut (the hub restarts it)"
  fleet_broker_kill
}

cycle "partition" 5
cycle "partition + hub kill -9" 4 crash_hub
cycle "partition + broker kill -9" 3 crash_broker

# A client overwriting a pod's status (the status subresource, as `kubectl patch
# --subresource=status` would): the device's truth comes back, as a kubelet's status sync would.
pod="$(fleet_pods app=web | jq -r '.items[0].metadata.name')"
fleet_api "/api/v1/namespaces/default/pods/$pod" |
  jq '.status.conditions |= map(if .type == "Ready" then .status = "False" | .reason = "Overwritten" else . end)' |
  "${FLEET_CURL[@]}" --max-time 10 -X PUT -H 'Content-Type: application/json' --data-binary @- \
    "$FLEET_HUB/api/v1/namespaces/default/pods/$pod/status" >/dev/null
check "a pod's status overwritten through the API reads not Ready" \
  test "$(fleet_api "/api/v1/namespaces/default/pods/$pod" | jq -r '.status.conditions[] | select(.type == "Ready") | .reason')" = Overwritten
check "...and its device's truth is back within the resync bound" fleet_running app=web 3 15

fleet_finish
