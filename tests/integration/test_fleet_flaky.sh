#!/usr/bin/env bash
# A flaky link with the defaults (issue 19): a device that drops off for 5 s must not have its
# pods duplicated. Three devices (lib/fleet.sh, the hub's node grace, the agents' heartbeat and
# keep-alive all left at their defaults), a 3-replica Deployment without tolerations of its own.
# A device running one replica loses its broker link for 5 s, twice: its packets dropped (the
# broker notices nothing before the keep-alive), then its connection reset first (the broker
# fires its Will at once: the hub marks the node NotReady at that moment). Until well past the
# point where a power cut would have been replaced (grace + default toleration + 5 s), no new
# pod may appear; afterwards the node is Ready, the same pods (same uids, no restarts) run on
# the same nodes, and the devices run exactly three.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/fleet.sh"
netns_enter "$0" "$@"
if ! fleet_require_tools; then
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
fi
command -v ss >/dev/null || { echo "missing ss (iproute2)" >&2; exit 1; }
fleet_setup || exit 1
unset FLEET_NODE_GRACE FLEET_HEARTBEAT FLEET_KEEPALIVE # the defaults, as shipped
# To see the test fail as it should where the settings do duplicate (the fast failover of
# tests/bench/fleet.sh): FLAKY_NODE_GRACE=2 FLAKY_TOLERATION_S=1.
[ -z "${FLAKY_NODE_GRACE:-}" ] || export FLEET_NODE_GRACE="$FLAKY_NODE_GRACE"
tols=""
[ -z "${FLAKY_TOLERATION_S:-}" ] || tols="tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: $FLAKY_TOLERATION_S}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: $FLAKY_TOLERATION_S}"
fleet_start 3 || { fleet_dump; exit 1; }
echo "# fleet up: hub $FLEET_HUB, broker port $FLEET_BROKER_PORT"

CUT_S=5
# The hub's defaults (hub/ctrl/ctrl.h): node grace 10 s, then toleration 3 s. A pod would be
# replaced 13 s after the cut; 12 s more for the replacement to show.
WATCH_S=25

cat >"$FLEET_TMP/web.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      $tols
      containers:
      - name: c
        image: $FLEET_IMG1
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.5; done"]
YAML
fleet_apply "$FLEET_TMP/web.yaml" >/dev/null
check "3 replicas Running and Ready" fleet_running app=web 3 90
check "the devices run them" fleet_wait_devices web- 3 30

# uid, node and restart count of every pod, sorted: what must not change.
pod_set() {
  fleet_pods app=web | jq -r '.items[] | "\(.metadata.uid) \(.spec.nodeName) \([.status.containerStatuses[]?.restartCount] | add // 0) \(.metadata.deletionTimestamp // "-")"' | sort
}
uids() { fleet_pods app=web | jq -r '.items[].metadata.uid' | sort; }

# cycle MODE: cuts a node that runs a web pod for CUT_S seconds, watches WATCH_S seconds from
# the cut for a pod the hub made anew, then compares.
cycle() {
  local mode="$1" victim before t0 new="" seen_nr=0 back="" u
  victim="$(fleet_pods app=web | jq -r '.items[0].spec.nodeName')"
  before="$(pod_set)"
  echo "# $mode: cutting $victim's link for $CUT_S s"
  t0="$(fleet_ms)"
  fleet_link_cut "$victim" "$mode" || { echo "cut failed" >&2; return 1; }
  local healed=0
  while [ $(($(fleet_ms) - t0)) -lt $((WATCH_S * 1000 * FLEET_TF)) ]; do
    if [ "$healed" -eq 0 ] && [ $(($(fleet_ms) - t0)) -ge $((CUT_S * 1000)) ]; then
      fleet_heal "$victim"
      healed=1
      echo "# $mode: healed after $(fleet_elapsed "$t0") s"
    fi
    if fleet_node_not_ready "$victim" 2>/dev/null; then
      seen_nr=1
    elif [ "$seen_nr" -eq 1 ] && [ -z "$back" ]; then
      back="$(fleet_elapsed "$t0")"
    fi
    u="$(comm -13 <(awk '{print $1}' <<<"$before") <(uids))"
    if [ -n "$u" ] && [ -z "$new" ]; then
      new="$u"
      echo "# $mode: a new pod appeared $(fleet_elapsed "$t0") s after the cut: $new"
    fi
    sleep 0.3
  done
  [ "$healed" -eq 1 ] || fleet_heal "$victim"
  echo "# $mode: the hub saw $victim NotReady during the cut: $([ "$seen_nr" -eq 1 ] && echo "yes, Ready again ${back:-?} s after the cut" || echo no)"
  check "$mode: no pod duplicated within $WATCH_S s of a $CUT_S s drop" test -z "$new"
  check "$mode: $victim Ready" wait_for "$victim Ready" $((20 * FLEET_TF)) fleet_node_ready "$victim"
  check "$mode: 3 pods Running and Ready" fleet_running app=web 3 20
  local after
  after="$(pod_set)"
  check "$mode: the same pods on the same nodes, no restarts" test "$before" = "$after"
  [ "$before" = "$after" ] || diff <(echo "$before") <(echo "$after") >&2
  check "$mode: the devices run exactly 3 web pods" fleet_wait_devices web- 3 20
}

cycle drop
cycle reset
# The reset must have been seen as one: the hub marked the node from its Will.
check "the reset fired the Will (NodeNotReady event from it)" test "$(fleet_api /api/v1/events |
  jq '[.items[] | select(.reason == "NodeNotReady" and (.message | test("Will")))] | length')" -ge 1

fleet_finish
