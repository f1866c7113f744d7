#!/usr/bin/env bash
# Lifecycle hooks through a real fleet (hub, Mosquitto, one device): a pod applied to the hub
# runs its postStart before the hub sees it Running, its preStop before SIGTERM when it is
# deleted through the API, and a failing postStart reaches the hub as a FailedPostStartHook Event
# on the pod (kubectl describe's source: involvedObject name and uid).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/fleet.sh"
netns_enter "$0" "$@"

fleet_setup || exit 1
fleet_start 1 || { fleet_dump; exit 1; }
fleet_use dev1

cat >"$FLEET_TMP/hooks.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: hooked, labels: {app: hooked}}
spec:
  terminationGracePeriodSeconds: 20
  containers:
  - name: c
    image: $FLEET_IMG1
    command: ["sh", "-c", "trap 'echo TERM >> /tmp/order; sleep 2; exit 0' TERM; while true; do sleep 0.1; done"]
    lifecycle:
      postStart: {exec: {command: ["sh", "-c", "sleep 2; echo poststart > /tmp/order"]}}
      preStop: {exec: {command: ["sh", "-c", "echo prestop >> /tmp/order; sleep 1"]}}
---
apiVersion: v1
kind: Pod
metadata: {name: badhook, labels: {app: badhook}}
spec:
  containers:
  - name: c
    image: $FLEET_IMG1
    command: ["sleep", "3600"]
    lifecycle:
      postStart: {exec: {command: ["sh", "-c", "echo hook-said-no; exit 9"]}}
YAML
check "apply pods with hooks" fleet_apply "$FLEET_TMP/hooks.yaml"
check "hooked pod Running and Ready on the hub" fleet_running app=hooked 1 60
order() { fleet_exec dev1 hooked c cat /tmp/order 2>/dev/null | tr '\n' ' '; }
check "postStart had run when the hub saw it Running ($(order))" grep -q "^poststart" <<<"$(order)"
started_at="$(fleet_api /api/v1/namespaces/default/pods/hooked | jq -r '.status.containerStatuses[0].state.running.startedAt')"
check "containerStatuses running.startedAt reported ($started_at)" test -n "$started_at" -a "$started_at" != null

ev_path="/api/v1/namespaces/default/events"
check "FailedPostStartHook Event on the pod, with the command's output" \
  fleet_wait "FailedPostStartHook event" 60 "$ev_path" \
  '.items | map(select(.reason == "FailedPostStartHook" and .involvedObject.kind == "Pod" and .involvedObject.name == "badhook" and (.message | contains("hook-said-no")))) | length > 0'
uid="$(fleet_api /api/v1/namespaces/default/pods/badhook | jq -r .metadata.uid)"
check "the Event carries the pod's uid" \
  fleet_wait "event uid" 10 "$ev_path" \
  ".items | map(select(.reason == \"FailedPostStartHook\" and .involvedObject.uid == \"$uid\")) | length > 0"
check "badhook restarted after its failed postStart" \
  fleet_wait "badhook restarts" 60 /api/v1/namespaces/default/pods/badhook '.status.containerStatuses[0].restartCount >= 1'

# The preStop's mark lands in the container before the TERM trap's; read it while the
# container is still there, in its grace period (the preStop sleeps 1 s before SIGTERM, the
# trap 2 s after it).
huid="$(fleet_api /api/v1/namespaces/default/pods/hooked | jq -r .metadata.uid)"
order_now() { device_exec crun --root "$DEV_DIR/run/crun" --cgroup-manager=disabled exec "$huid-c" cat /tmp/order 2>/dev/null | tr '\n' ' '; }
fleet_drover delete pod hooked >/dev/null 2>&1 &
del_pid=$!
seen=""
for _ in $(seq 1 100); do
  o="$(order_now)"
  case "$o" in *TERM*) seen="$o"; break ;; *prestop*) seen="$o" ;; esac
  sleep 0.1
done
check "preStop ran before SIGTERM (order: $seen)" grep -q "^poststart prestop TERM" <<<"$seen"
check "hooked pod gone from the hub" fleet_wait "hooked gone" 40 /api/v1/namespaces/default/pods '[.items[] | select(.metadata.name == "hooked")] | length == 0'
wait "$del_pid"

fleet_finish
