#!/usr/bin/env bash
# The hub and its broker restarting under a running fleet (lib/fleet.sh: registry, hub,
# Mosquitto, three agents in their own mount+PID namespaces): the hub killed (kill -9, its
# broker dies with it) and started again on the same data directory in the middle of a rolling
# update finishes the rollout; the broker
# killed (the hub restarts it) loses nothing: every agent reconnects, the nodes are Ready and
# online, and the same pods (same uids) keep running on the devices.
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

# A readiness probe that passes only after 2 s makes every rollout step last a while.
web_yaml() { # IMAGE
  cat >"$FLEET_TMP/web.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
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
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.5; done"]
        readinessProbe:
          exec: {command: ["true"]}
          initialDelaySeconds: 2
          periodSeconds: 1
YAML
}
web_pods() { fleet_pods app=web; }
on_image() { # IMAGE: 3 live pods Running and Ready on IMAGE, nothing else
  fleet_running app=web 3 1 2>/dev/null &&
    web_pods | jq -e --arg i "$1" '[.items[].spec.containers[0].image] | unique == [$i]' >/dev/null
}
web_yaml "$FLEET_IMG1"
fleet_apply "$FLEET_TMP/web.yaml" >/dev/null
check "3 replicas Running" fleet_running app=web 3 90
check "the devices run them" fleet_wait_devices web- 3 30

# 6a. Restart the hub in the middle of a rollout.
web_yaml "$FLEET_IMG2"
fleet_apply "$FLEET_TMP/web.yaml" >/dev/null
started() { web_pods | jq -e --arg i "$FLEET_IMG2" 'any(.items[]; .spec.containers[0].image == $i)' >/dev/null; }
check "the rollout started (a pod on app:2)" wait_for "a pod on app:2" $((30 * FLEET_TF)) started
mid="$(web_pods | jq -c --arg i "$FLEET_IMG2" '[.items[] | {new: (.spec.containers[0].image == $i), phase: .status.phase}]')"
echo "# killing and restarting the hub mid-rollout: $mid"
fleet_hub_restart KILL || { fleet_dump; exit 1; }
check "the hub came back" eval 'fleet_api /healthz >/dev/null'
check "the rollout completes after the hub restart: 3 pods on app:2" \
  wait_for "rollout to app:2" $((120 * FLEET_TF)) on_image "$FLEET_IMG2"
check "the devices run exactly 3 web pods" fleet_wait_devices web- 3 30
for n in dev1 dev2 dev3; do
  check "node $n Ready after the hub restart" fleet_wait "node $n Ready" 30 "/api/v1/nodes/$n" "$FLEET_JQ_READY"
done

# 6b. Kill the broker: the hub restarts it and every agent reconnects.
before_uids="$(web_pods | jq -c '[.items[].metadata.uid] | sort')"
# The pods the devices run that the hub wants (a device may still be stopping one the rollout
# replaced a moment ago: that one is rightly gone after the restart).
hub_names="$(web_pods | jq -r '.items[] | select(.metadata.deletionTimestamp == null) | .metadata.name')"
before_dev="$(for n in dev1 dev2 dev3; do fleet_device_pods $n; done | grep -xF -- "$hub_names" | sort | tr '\n' ' ')"
check "the devices ran the hub's 3 pods before the broker restart ($before_dev)" test "$(wc -w <<<"$before_dev")" = 3
old_broker="$(fleet_broker_pid)"
fleet_broker_kill
t0="$(fleet_ms)"
# A change made while the broker is down must reach the devices once it is back.
fleet_drover scale deployment web --replicas 4 >/dev/null
new_broker() { local p; p="$(fleet_broker_pid)" && [ "$p" != "$old_broker" ]; }
check "the hub restarted its broker" wait_for "a new broker" $((20 * FLEET_TF)) new_broker
connected() { # K: an established connection from the agent of device K to the broker
  [ -n "$(ss -Htn state established dst "127.0.0.$((10 + $1)):$FLEET_BROKER_PORT")" ]
}
for k in 1 2 3; do
  check "agent dev$k reconnected to the broker" wait_for "dev$k connected" $((30 * FLEET_TF)) connected $k
done
echo "# agents reconnected $(fleet_elapsed "$t0") s after the broker was killed"
online3() { fleet_api /metrics | grep -qE '^drover_nodes_online(\{\})? 3$'; }
check "the hub counts 3 nodes online (drover_nodes_online)" wait_for "3 online" $((20 * FLEET_TF)) online3
for n in dev1 dev2 dev3; do
  check "node $n Ready after the broker restart" fleet_wait "node $n Ready" 30 "/api/v1/nodes/$n" "$FLEET_JQ_READY"
done
check "the scale made during the outage reached the devices: 4 web pods" fleet_wait_devices web- 4 60
check "4 Running on the hub" fleet_running app=web 4 30
after_uids="$(web_pods | jq -c --argjson b "$before_uids" '[.items[].metadata.uid] as $a | [$b[] | select(. as $u | $a | index($u))] | sort')"
check "the 3 pods from before the broker restart still there (same uids)" test "$after_uids" = "$before_uids"
after_dev="$(for n in dev1 dev2 dev3; do fleet_device_pods $n; done | sort | tr '\n' ' ')"
missing=""
for p in $before_dev; do
  grep -qw -- "$p" <<<"$after_dev" || missing="$missing $p"
done
check "the devices still run the pods they ran before (missing:${missing:- none})" test -z "$missing"

fleet_finish
