#!/usr/bin/env bash
# drover-hub --controllers: a Deployment applied with the CLI gets its pods created by the
# Deployment controller and bound by the scheduler, spread over Ready nodes; scaling follows;
# a cordoned node gets nothing new. (Agents do not report over MQTT yet: the test writes the
# nodes' status, heartbeat included, through the API's status subresource.)
set -uo pipefail
hub="${DROVER_BUILD_DIR:?}/hub/drover-hub"
drover="${DROVER_BUILD_DIR}/cli/drover"
command -v jq >/dev/null && command -v curl >/dev/null || { echo "jq/curl missing"; exit 1; }
tmp=$(mktemp -d)
hubpid=
cleanup() { [ -n "$hubpid" ] && kill -9 "$hubpid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fails=0
check() { local name=$1; shift; if "$@"; then echo "ok - $name"; else echo "not ok - $name"; fails=$((fails + 1)); fi; }

"$hub" --data "$tmp/data" --listen 127.0.0.1:0 --no-auth --no-tls --no-broker-tls --controllers >"$tmp/hub.out" 2>"$tmp/hub.err" &
hubpid=$!
url=
for _ in $(seq 1 100); do
  url=$(sed -n 's/^drover-hub: serving \(http:[^ ]*\)$/\1/p' "$tmp/hub.out"); [ -n "$url" ] && break; sleep 0.05
done
[ -n "$url" ] || { cat "$tmp/hub.err"; exit 1; }
export DROVER_HUB=$url HOME=$tmp

heartbeat() { # NODE: a Ready status with a fresh heartbeat
  local now; now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  curl -s -X PUT -H 'Content-Type: application/json' "$url/api/v1/nodes/$1/status" -d "{
    \"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"$1\"},
    \"status\":{\"allocatable\":{\"cpu\":\"4\",\"memory\":\"4Gi\",\"pods\":\"110\"},
      \"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"lastHeartbeatTime\":\"$now\",\"lastTransitionTime\":\"$now\"}],
      \"nodeInfo\":{\"architecture\":\"arm64\",\"operatingSystem\":\"linux\"}}}" >/dev/null
}
for n in pi-1 pi-2 pi-3; do
  curl -s -X POST -H 'Content-Type: application/json' "$url/api/v1/nodes" \
    -d "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"$n\"}}" >/dev/null
  heartbeat $n
done
cat >"$tmp/web.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: "registry.local/web:1", resources: {requests: {cpu: 100m, memory: 64Mi}}}]
YAML
"$drover" apply -f "$tmp/web.yaml" >/dev/null
bound() { # COUNT: that many web pods bound to nodes
  [ "$(curl -s "$url/api/v1/namespaces/default/pods?labelSelector=app%3Dweb" | jq '[.items[] | select(.spec.nodeName != null and .spec.nodeName != "")] | length')" -eq "$1" ]
}
wait_bound() { local i; for i in $(seq 1 50); do bound "$1" && return 0; heartbeat pi-1; heartbeat pi-2; heartbeat pi-3; sleep 0.2; done; return 1; }
check "3 replicas created and bound" wait_bound 3
nodes=$(curl -s "$url/api/v1/namespaces/default/pods?labelSelector=app%3Dweb" | jq -r '[.items[].spec.nodeName] | unique | length')
check "spread over 3 nodes (got $nodes)" test "$nodes" = 3
owner=$(curl -s "$url/api/v1/namespaces/default/pods?labelSelector=app%3Dweb" | jq -r '.items[0].metadata.ownerReferences[0].kind')
check "pods owned by their ReplicaSet ($owner)" test "$owner" = ReplicaSet
"$drover" scale deployment web --replicas 5 >/dev/null
check "scaled to 5" wait_bound 5
"$drover" cordon pi-1 >/dev/null
"$drover" scale deployment web --replicas 1 >/dev/null
check "scaled to 1" wait_bound 1
"$drover" scale deployment web --replicas 4 >/dev/null
check "scaled to 4" wait_bound 4
on1=$(curl -s "$url/api/v1/namespaces/default/pods?labelSelector=app%3Dweb" | jq '[.items[] | select(.spec.nodeName == "pi-1")] | length')
check "cordoned node got no new pod ($on1 there)" test "$on1" -le 1
# rollout pause/resume set spec.paused.
"$drover" rollout pause deployment web >"$tmp/out" 2>&1
check "rollout pause" grep -q "deployment.apps/web paused" "$tmp/out"
check "spec.paused is true" test "$(curl -s "$url/apis/apps/v1/namespaces/default/deployments/web" | jq -r .spec.paused)" = true
"$drover" rollout resume deployment web >/dev/null 2>&1
check "rollout resume clears it" test "$(curl -s "$url/apis/apps/v1/namespaces/default/deployments/web" | jq -r .spec.paused)" = false
echo "hub controller checks: $fails failed"
[ "$fails" -eq 0 ]
