#!/usr/bin/env bash
# DaemonSets and ConfigMaps across a fleet (lib/fleet.sh: registry, hub, Mosquitto, agents in
# their own mount+PID namespaces): a DaemonSet runs one pod on every node, including a device
# that joins after it was applied; a ConfigMap applied again with new data reaches the running
# pod that mounts it (the file inside the container changes, seen in the pod's own log) without
# restarting it; an environment variable taken from the ConfigMap keeps its value until a restart.
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

# 3a. A DaemonSet, then a fourth device joins.
cat >"$FLEET_TMP/ds.yaml" <<YAML
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: nodeagent}
spec:
  selector: {matchLabels: {app: nodeagent}}
  template:
    metadata: {labels: {app: nodeagent}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: c
        image: $FLEET_IMG1
        command: ["sh", "-c", "trap 'exit 0' TERM; echo on \$(hostname); while true; do sleep 0.5; done"]
YAML
fleet_apply "$FLEET_TMP/ds.yaml" >/dev/null
check "DaemonSet: 3 pods Running" fleet_running app=nodeagent 3 90
n="$(fleet_pods app=nodeagent | jq '[.items[].spec.nodeName] | unique | length')"
check "one on each of the 3 nodes (on $n nodes)" test "$n" = 3
check "the devices run them" fleet_wait_devices nodeagent- 3 30
fleet_device_start dev4 4 >/dev/null || fleet_dump
check "dev4 joins: Ready" fleet_wait "node dev4 Ready" 30 /api/v1/nodes/dev4 "$FLEET_JQ_READY"
check "the DaemonSet reaches dev4: 4 pods Running" fleet_running app=nodeagent 4 60
on4() { fleet_device_pods dev4 | grep -q '^nodeagent-'; }
check "dev4 itself runs the DaemonSet's pod" wait_for "nodeagent on dev4" $((30 * FLEET_TF)) on4
n="$(fleet_pods app=nodeagent | jq '[.items[] | select(.spec.nodeName == "dev4")] | length')"
check "exactly one on dev4 ($n)" test "$n" = 1

# 3b. A ConfigMap change reaches the pod that uses it.
cm_yaml() { # GREETING
  cat >"$FLEET_TMP/cm.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: conf}
data:
  greeting: "$1"
YAML
}
cm_yaml hello-v1
fleet_apply "$FLEET_TMP/cm.yaml" >/dev/null
cat >"$FLEET_TMP/cfg.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: cfg}
spec:
  replicas: 1
  selector: {matchLabels: {app: cfg}}
  template:
    metadata: {labels: {app: cfg}}
    spec:
      terminationGracePeriodSeconds: 2
      volumes: [{name: conf, configMap: {name: conf}}]
      containers:
      - name: c
        image: $FLEET_IMG1
        env: [{name: GREETING, valueFrom: {configMapKeyRef: {name: conf, key: greeting}}}]
        volumeMounts: [{name: conf, mountPath: /etc/conf}]
        command: ["sh", "-c", "trap 'exit 0' TERM; echo env=\$GREETING; last=; while true; do c=\$(cat /etc/conf/greeting); [ \"\$c\" != \"\$last\" ] && echo file=\$c && last=\$c; sleep 0.3; done"]
YAML
fleet_apply "$FLEET_TMP/cfg.yaml" >/dev/null
check "the pod using the ConfigMap Running" fleet_running app=cfg 1 60
pod="$(fleet_pods app=cfg | jq -r '.items[0].metadata.name')"
uid="$(fleet_pods app=cfg | jq -r '.items[0].metadata.uid')"
node="$(fleet_pods app=cfg | jq -r '.items[0].spec.nodeName')"
restarts="$(fleet_pods app=cfg | jq '[.items[0].status.containerStatuses[]?.restartCount] | add // 0')"
file_is() { [ "$(fleet_exec "$node" "$pod" c cat /etc/conf/greeting 2>/dev/null)" = "$1" ]; }
log_has() { fleet_logs "$pod" 2>/dev/null | grep -qx "$1"; }
check "inside the container /etc/conf/greeting is hello-v1 (crun exec on $node)" \
  wait_for "greeting hello-v1" $((20 * FLEET_TF)) file_is hello-v1
check "its log says file=hello-v1 and env=hello-v1" \
  wait_for "file=hello-v1 in the log" $((10 * FLEET_TF)) eval 'log_has file=hello-v1 && log_has env=hello-v1'
t0="$(fleet_ms)"
cm_yaml hello-v2
fleet_apply "$FLEET_TMP/cm.yaml" >/dev/null
# The volume is updated in place (the kubelet's way): the running container sees the new file.
check "after apply of the changed ConfigMap the running container's file says hello-v2" \
  wait_for "greeting hello-v2" $((20 * FLEET_TF)) file_is hello-v2
echo "# $(fleet_elapsed "$t0") s after the apply, the file says: $(fleet_exec "$node" "$pod" c cat /etc/conf/greeting 2>&1)"
check "its log says file=hello-v2" wait_for "file=hello-v2 in $pod's log" $((10 * FLEET_TF)) log_has file=hello-v2
env_now="$(fleet_exec "$node" "$pod" c sh -c 'echo $GREETING' 2>/dev/null)"
echo "# the container's environment variable GREETING is now: $env_now (set when the container started)"
now="$(fleet_pods app=cfg)"
echo "# after the change: pod uid $(jq -r '.items[0].metadata.uid' <<<"$now") (was $uid), container restarts $(jq '[.items[0].status.containerStatuses[]?.restartCount] | add // 0' <<<"$now") (were $restarts)"
check "the device $node runs the pod" eval 'fleet_device_pods "$node" | grep -qx "$pod"'
# A pod created after the change (the old one deleted, its Deployment makes another) gets it too.
fleet_drover delete pod "$pod" >/dev/null
newpod() { fleet_running app=cfg 1 1 2>/dev/null && [ "$(fleet_pods app=cfg | jq -r '.items[0].metadata.name')" != "$pod" ]; }
check "the deleted pod is replaced" wait_for "a new cfg pod" $((60 * FLEET_TF)) newpod
pod="$(fleet_pods app=cfg | jq -r '.items[0].metadata.name')"
node="$(fleet_pods app=cfg | jq -r '.items[0].spec.nodeName')"
check "the new pod $pod sees hello-v2 in the file" wait_for "greeting hello-v2" $((20 * FLEET_TF)) file_is hello-v2
check "and in its environment" wait_for "env=hello-v2" $((10 * FLEET_TF)) log_has env=hello-v2

fleet_finish
