#!/usr/bin/env bash
# Devices lost, as a user sees it (lib/fleet.sh: registry, hub, Mosquitto and three agents in
# their own mount+PID namespaces): a device cut off from the broker by the network keeps its pods
# running, the hub marks it NotReady and replaces its pods elsewhere, and when the network comes
# back the device stops its duplicates, so no workload runs doubled; a device whose power is cut
# (agent and containers gone) has its pods run elsewhere, and the time that took is printed; the
# device coming back up does not run them again.
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

cat >"$FLEET_TMP/svc.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: svc}
spec:
  replicas: 3
  selector: {matchLabels: {app: svc}}
  template:
    metadata: {labels: {app: svc}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: c
        image: $FLEET_IMG1
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.5; done"]
YAML
fleet_apply "$FLEET_TMP/svc.yaml" >/dev/null
check "3 replicas Running" fleet_running app=svc 3 90
check "the devices run them" fleet_wait_devices svc- 3 30
svc_pods() { fleet_pods app=svc; }
# 3 live pods, all Running and Ready, none on node $1.
replaced_jq() {
  printf '[.items[] | select(.metadata.deletionTimestamp == null)] as $p | ($p | length) == 3 and ($p | all(.spec.nodeName != "%s" and .status.phase == "Running" and ([.status.conditions[]? | select(.type == "Ready") | .status] == ["True"])))' "$1"
}

# 5. Partition: the node with a pod loses its broker connection; its pods keep running.
victim="$(svc_pods | jq -r '.items[0].spec.nodeName')"
vpods="$(fleet_device_pods "$victim" | grep '^svc-')"
echo "# partitioning $victim (runs $vpods)"
fleet_partition "$victim"
t0="$(fleet_ms)"
check "partitioned $victim: NotReady on the hub" wait_for "$victim NotReady" $((40 * FLEET_TF)) fleet_node_not_ready "$victim"
echo "# NotReady after $(fleet_elapsed "$t0") s"
check "its pods are replaced elsewhere: 3 Running off $victim" \
  fleet_wait "replacement off $victim" 60 "$(fleet_pods_path app=svc)" "$(replaced_jq "$victim")"
echo "# replaced after $(fleet_elapsed "$t0") s"
still="$(fleet_device_pods "$victim" | grep '^svc-')"
check "meanwhile $victim still runs its pod ($still) — pods never stop because the hub is away" \
  test -n "$still" -a "$still" = "$vpods"
fleet_heal "$victim"
t0="$(fleet_ms)"
check "healed: $victim Ready again" wait_for "$victim Ready" $((40 * FLEET_TF)) fleet_node_ready "$victim"
echo "# Ready again $(fleet_elapsed "$t0") s after the network came back"
gone() { ! fleet_device_pods "$victim" | grep -qxF "$vpods"; }
check "healed: $victim stopped its duplicate ($vpods gone from device_status)" \
  wait_for "$vpods stopped on $victim" $((30 * FLEET_TF)) gone
check "no workload runs doubled: the devices run exactly 3 svc pods" fleet_wait_devices svc- 3 30
check "the hub still shows 3 Running" fleet_running app=svc 3 10

# 4. Power cut: a device with a pod dies with its containers.
victim="$(svc_pods | jq -r '.items[0].spec.nodeName')"
vpods="$(fleet_device_pods "$victim" | grep '^svc-' | tr '\n' ' ')"
echo "# power cut on $victim (runs $vpods)"
# The node's Ready condition, sampled every 0.1 s until the replacement runs.
watch_ready() {
  while [ ! -e "$FLEET_TMP/stop-watch" ]; do
    echo "$(fleet_ms) $(fleet_api "/api/v1/nodes/$victim" | jq -r '[.status.conditions[]? | select(.type == "Ready") | .status][0]')" >>"$FLEET_TMP/ready"
    sleep 0.1
  done
}
: >"$FLEET_TMP/ready"
# The cut lands just after one of its heartbeats (the worst moment for telling a late heartbeat
# from a live node), when mosquitto_sub can show us one.
if command -v mosquitto_sub >/dev/null; then
  timeout 5 mosquitto_sub -h 127.0.0.1 -p "$FLEET_BROKER_PORT" -C 1 -t "drover/v1/node/$victim/heartbeat" >/dev/null 2>&1
fi
t0="$(fleet_ms)"
fleet_power_cut "$victim"
watch_ready &
watcher=$!
check "after the power cut of $victim its pods run elsewhere: 3 Running" \
  fleet_wait "replacement off $victim" 60 "$(fleet_pods_path app=svc)" "$(replaced_jq "$victim")"
echo "replacement took $(fleet_elapsed "$t0") s (power cut of $victim to 3 replicas Running)"
touch "$FLEET_TMP/stop-watch"
wait "$watcher"
flap="$(awk '$2 != "True" {gone = 1} $2 == "True" && gone {n++} END {print n + 0}' "$FLEET_TMP/ready")"
check "once NotReady, the powered-off $victim never shows Ready again ($flap samples said Ready)" test "$flap" -eq 0
# Its Will arrives at once: NotReady well before the 10 s heartbeat grace, and for good.
nr_ms="$(awk -v t0="$t0" '$2 != "True" && !s {s = $1} $2 == "True" {s = 0} END {print (s ? s - t0 : -1)}' "$FLEET_TMP/ready")"
check "$victim NotReady (for good) within 5 s of the power cut (after $nr_ms ms)" \
  test "$nr_ms" -ge 0 -a "$nr_ms" -le $((5000 * FLEET_TF))
cut_iso="$(date -u -d "@$((t0 / 1000))" +%Y-%m-%dT%H:%M:%SZ)"
ready_events="$(fleet_api /api/v1/namespaces/default/events | jq -r --arg n "$victim" --arg t "$cut_iso" \
  '[.items[] | select(.involvedObject.kind == "Node" and .involvedObject.name == $n and .reason == "NodeReady" and ((.lastTimestamp // .firstTimestamp // .eventTime // "") >= $t)) | .message] | join("; ")')"
check "no NodeReady event for $victim while its power is off (${ready_events:-none})" test -z "$ready_events"
check "the node is NotReady" fleet_node_not_ready "$victim"
check "the other devices run the 3 pods" fleet_wait_devices svc- 3 30
# The device boots again: it must not bring back the pod that now runs elsewhere.
fleet_power_on "$victim" >/dev/null
check "$victim back: Ready" wait_for "$victim Ready" $((30 * FLEET_TF)) fleet_node_ready "$victim"
sleep 2
check "$victim back: still exactly 3 svc pods on the devices" fleet_wait_devices svc- 3 30
# Before it hears from the hub, a rebooted device may start what it last had (it cannot tell a
# reboot without network from one with): say whether it did.
restarted="$(sed -n '/^=== power on/h; /^=== power on/!H; ${x; p}' "${FLEET_DEV_DIR[$victim]}/agent.log" |
  grep -c 'msg="container started" pod=default/svc-')"
echo "# after the reboot $victim started $restarted svc container(s) before/while resyncing with the hub"
check "the hub shows 3 Running" fleet_running app=svc 3 10

fleet_finish
