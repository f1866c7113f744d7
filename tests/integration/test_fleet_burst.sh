#!/usr/bin/env bash
# Many pods at once on one device (found on the emulated ARM fleet, tests/bench/qemu-fleet.sh):
# the agent sets up each pod (CNI, mounts, crun) synchronously, and once it did all of them in
# one pass of its loop, it sent no heartbeat meanwhile; past the hub's node grace the node went
# NotReady and its pods were evicted and recreated, again and again. Here one device as slow as
# an emulated one (its crun takes 0.4 s more to start a container) with a short grace (3 s,
# heartbeat 1 s) gets a Deployment of 24 replicas in one apply: all must run, the node must stay
# Ready the whole time, and no pod may be replaced.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/fleet.sh"
netns_enter "$0" "$@"
if ! fleet_require_tools; then
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
fi
fleet_setup || exit 1
export FLEET_NODE_GRACE=3 FLEET_HEARTBEAT=1
# A slow device: crun run takes 0.4 s longer, as on a small board or under emulation.
real_crun="$(command -v crun)"
cat >"$FLEET_TMP/slow-crun" <<SH
#!/bin/sh
for a in "\$@"; do [ "\$a" = run ] && { sleep 0.4; break; }; done
exec "$real_crun" "\$@"
SH
chmod +x "$FLEET_TMP/slow-crun"
fleet_hub_start || { fleet_dump; exit 1; }
fleet_device_start dev1 1 "crun: $FLEET_TMP/slow-crun" || { fleet_dump; exit 1; }
fleet_wait "node dev1 Ready" 30 /api/v1/nodes/dev1 "$FLEET_JQ_READY" || { fleet_dump; exit 1; }
echo "# fleet up: hub $FLEET_HUB, broker port $FLEET_BROKER_PORT"

N=24
cat >"$FLEET_TMP/burst.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: burst}
spec:
  replicas: $N
  selector: {matchLabels: {app: burst}}
  template:
    metadata: {labels: {app: burst}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: $FLEET_IMG1
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
YAML

# The node's Ready condition, sampled every 0.25 s until told to stop.
watch_node() {
  while [ ! -e "$FLEET_TMP/stop-watch" ]; do
    if fleet_node_ready dev1 2>/dev/null; then echo ready; else echo NOT; fi
    sleep 0.25
  done >"$FLEET_TMP/node-watch"
}
watch_node &
watcher=$!
t0=$(fleet_ms)
fleet_apply "$FLEET_TMP/burst.yaml" >/dev/null
check "$N replicas on one device: all Running" fleet_running app=burst $N 180
echo "# $N pods Running in $(($(fleet_ms) - t0)) ms"
sleep 2 # and a little after
touch "$FLEET_TMP/stop-watch"
wait "$watcher"
samples=$(wc -l <"$FLEET_TMP/node-watch")
not_ready=$(grep -c NOT "$FLEET_TMP/node-watch")
echo "# node Ready sampled $samples times, NotReady $not_ready times"
check "the node was sampled throughout ($samples samples)" test "$samples" -ge 8
check "the node stayed Ready while its agent started $N pods (NotReady $not_ready of $samples)" \
  test "$not_ready" -eq 0
uids_before=$(fleet_pods app=burst | jq -r '[.items[].metadata.uid] | sort | join(",")')
sleep 3
uids_after=$(fleet_pods app=burst | jq -r '[.items[].metadata.uid] | sort | join(",")')
check "no pod was evicted or replaced" test "$uids_before" = "$uids_after"
check "the device runs exactly $N" fleet_wait_devices burst- $N 30
evicted=$(fleet_api "/api/v1/namespaces/default/events" |
  jq '[.items[]? | select(.reason == "NodeNotReady" or .reason == "TaintManagerEviction")] | length')
check "no NodeNotReady or eviction event ($evicted)" test "${evicted:-1}" -eq 0
fleet_finish
