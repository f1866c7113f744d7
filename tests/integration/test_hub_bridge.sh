#!/usr/bin/env bash
# drover-hub's MQTT side as an agent sees it: a real hub with its own Mosquitto; the "agent"
# here is mosquitto_pub/mosquitto_sub speaking protocol v1 (docs/PROTOCOL.md), so that every
# message can be exact, malformed or late on purpose. (The real agent against the real hub is
# tests/integration/test_fleet_*.sh.)
set -uo pipefail
hub="${DROVER_BUILD_DIR:?}/hub/drover-hub"
drover="${DROVER_BUILD_DIR}/cli/drover"
for t in jq curl mosquitto_pub mosquitto_sub; do
  command -v "$t" >/dev/null || { echo "$t missing"; exit 1; }
done
tmp=$(mktemp -d)
hubpid=
cleanup() { [ -n "$hubpid" ] && kill "$hubpid" 2>/dev/null; wait 2>/dev/null; [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"; }
trap cleanup EXIT
fails=0
check() { local name=$1; shift; if "$@"; then echo "ok - $name"; else echo "not ok - $name"; fails=$((fails + 1)); fi; }
wait_until() { local i; for i in $(seq 1 "$1"); do "${@:2}" && return 0; sleep 0.1; done; return 1; }

start_hub() {
  : >"$tmp/hub.out"
  "$hub" --data "$tmp/data" --listen 127.0.0.1:0 --no-auth --no-tls --no-broker-tls --broker-listen "127.0.0.1:${bport:-0}" \
    --node-grace 2 "$@" >"$tmp/hub.out" 2>>"$tmp/hub.err" &
  hubpid=$!
  url=
  for _ in $(seq 1 100); do
    url=$(sed -n 's/^drover-hub: serving \(http:[^ ]*\)$/\1/p' "$tmp/hub.out"); [ -n "$url" ] && break; sleep 0.05
  done
  broker=$(sed -n 's/^drover-hub: broker tcp:\/\/\(.*\)$/\1/p' "$tmp/hub.out")
  bport=${broker##*:}
  [ -n "$url" ] && [ -n "$bport" ] || { cat "$tmp/hub.err"; exit 1; }
  export DROVER_HUB=$url HOME=$tmp
  # The hub subscribes once its MQTT client is connected: an agent's first report sent before
  # that is lost (and repaired by a resync, tested below); wait for it here.
  for _ in $(seq 1 100); do
    curl -s "$url/metrics" | grep -q '^drover_mqtt_connected 1' && break; sleep 0.05
  done
}
start_hub
pub() { mosquitto_pub -h 127.0.0.1 -p "$bport" -q 1 "$@"; }
# The retained desired envelope of NODE (waits up to 3 s for one), and the document it signs.
envelope() { timeout 3 mosquitto_sub -h 127.0.0.1 -p "$bport" -t "drover/v1/node/$1/desired" -C 1 2>/dev/null; }
desired() { envelope "$1" | jq -r .payload; }
# Whether NODE's envelope verifies with the hub's signing.pub, checked by openssl, not by Drover.
signed_ok() {
  local env; env="$(envelope "$1")" || return 1
  jq -r .signature <<<"$env" | base64 -d >"$tmp/sig" && jq -j .payload <<<"$env" >"$tmp/msg" &&
    openssl dgst -sha256 -verify "$tmp/data/pki/signing.pub" -signature "$tmp/sig" "$tmp/msg" >/dev/null 2>&1
}
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
status_report() { # NODE GEN PODS-JSON
  pub -t "drover/v1/node/$1/status" -m "{\"apiVersion\":\"drover/v1\",\"kind\":\"NodeStatusReport\",
    \"node\":\"$1\",\"observedGeneration\":$2,\"time\":\"$(now)\",
    \"nodeStatus\":{\"capacity\":{\"cpu\":\"4\",\"memory\":\"4Gi\",\"pods\":\"110\"},
      \"allocatable\":{\"cpu\":\"4\",\"memory\":\"4Gi\",\"pods\":\"110\"},
      \"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],
      \"nodeInfo\":{\"architecture\":\"arm64\",\"operatingSystem\":\"linux\",\"kernelVersion\":\"6.1.0\"},
      \"labels\":{\"kubernetes.io/arch\":\"arm64\",\"site\":\"north\"},
      \"addresses\":[{\"type\":\"InternalIP\",\"address\":\"192.168.1.20\"}]},
    \"pods\":$3}"
}
heartbeat() { pub -q 0 -t "drover/v1/node/$1/heartbeat" -m "{\"node\":\"$1\",\"seq\":${2:-1},\"observedGeneration\":0,\"time\":\"$(now)\"}"; }
node_ready() { curl -s "$url/api/v1/nodes/$1" | jq -r '.status.conditions[] | select(.type=="Ready") | .status'; }
ready_is() { test "$(node_ready "$1")" = "$2"; } # NODE STATUS

# 1. A first status report registers the node, with the agent's labels and status.
status_report pi-1 0 '[]'
pub -r -t drover/v1/node/pi-1/online -m "{\"online\":true,\"time\":\"$(now)\"}"
check "node registered by its first status report" wait_until 30 ready_is pi-1 True
node=$(curl -s "$url/api/v1/nodes/pi-1")
check "node labels from the agent" test "$(jq -r '.metadata.labels.site' <<<"$node")" = north
check "node capacity and arch" test "$(jq -r '.status.capacity.cpu + "/" + .status.nodeInfo.architecture' <<<"$node")" = 4/arm64
check "Ready heartbeat in the hub's clock" test "$(jq -r '.status.conditions[0].lastHeartbeatTime' <<<"$node" | cut -c1-4)" = "$(date -u +%Y)"

# 2. A pod bound to the node is in its retained desired state, with the ConfigMap it uses
#    (and not the one it does not use).
cat >"$tmp/pod.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: used}
data: {greeting: hello}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: unused}
data: {x: "1"}
---
apiVersion: v1
kind: Pod
metadata: {name: p1, labels: {app: p}}
spec:
  nodeName: pi-1
  containers:
  - name: c
    image: registry.local/busybox:1
    env: [{name: G, valueFrom: {configMapKeyRef: {name: used, key: greeting}}}]
YAML
"$drover" apply -f "$tmp/pod.yaml" >/dev/null
sleep 0.3
doc=$(desired pi-1)
check "desired state is a SignedNodeDesiredState, ES256" test "$(envelope pi-1 | jq -r '.kind + " " + .alg')" = "SignedNodeDesiredState ES256"
check "its signature verifies with pki/signing.pub (openssl)" signed_ok pi-1
check "the signed document names the node" test "$(jq -r .node <<<"$doc")" = pi-1
check "desired state holds the pod" test "$(jq -r '.pods[0].metadata.name' <<<"$doc")" = p1
check "desired state: pod uid as stored" test "$(jq -r '.pods[0].metadata.uid' <<<"$doc")" = "$(curl -s "$url/api/v1/namespaces/default/pods/p1" | jq -r .metadata.uid)"
check "desired state holds the ConfigMap the pod uses, only that one" test "$(jq -c '[.configMaps[].metadata.name]' <<<"$doc")" = '["used"]'
check "desired state carries no status" test "$(jq '.pods[0] | has("status")' <<<"$doc")" = false
gen1=$(jq .generation <<<"$doc")
check "generation is positive ($gen1)" test "$gen1" -gt 0

# 3. The ConfigMap changes: a new document with a greater generation.
curl -s -X PATCH -H 'Content-Type: application/merge-patch+json' "$url/api/v1/namespaces/default/configmaps/used" \
  -d '{"data":{"greeting":"bonjour"}}' >/dev/null
sleep 0.3
doc=$(desired pi-1)
gen2=$(jq .generation <<<"$doc")
check "ConfigMap change reaches the document" test "$(jq -r '.configMaps[0].data.greeting' <<<"$doc")" = bonjour
check "generation grew ($gen1 -> $gen2)" test "$gen2" -gt "$gen1"
# The unused one changes: nothing is published.
curl -s -X PATCH -H 'Content-Type: application/merge-patch+json' "$url/api/v1/namespaces/default/configmaps/unused" \
  -d '{"data":{"x":"2"}}' >/dev/null
sleep 0.3
check "an unrelated ConfigMap change publishes nothing" test "$(desired pi-1 | jq .generation)" = "$gen2"

# 4. The agent reports the pod Running: the hub stores the status (uid must match).
uid=$(jq -r '.pods[0].metadata.uid' <<<"$doc")
podst() { echo "[{\"metadata\":{\"name\":\"p1\",\"namespace\":\"default\",\"uid\":\"$1\"},\"status\":{\"phase\":\"$2\",
  \"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],\"containerStatuses\":[{\"name\":\"c\",\"ready\":true,\"restartCount\":0,
  \"state\":{\"running\":{\"startedAt\":\"$(now)\"}}}]}}]"; }
status_report pi-1 "$gen2" "$(podst "$uid" Running)"
phase() { curl -s "$url/api/v1/namespaces/default/pods/p1" | jq -r .status.phase; }
phase_is() { test "$(phase)" = "$1"; }
check "pod status from the agent's report" wait_until 30 phase_is Running
check "pod Ready as reported" test "$(curl -s "$url/api/v1/namespaces/default/pods/p1" | jq -r '.status.conditions[] | select(.type=="Ready") | .status')" = True
status_report pi-1 "$gen2" "$(podst not-the-uid Failed)"
sleep 0.3
check "a report about an older pod of the same name is ignored" test "$(phase)" = Running
check "a status change does not republish the document" test "$(desired pi-1 | jq .generation)" = "$gen2"

# 4b. Logs: the hub asks the node's agent on logs/req and streams the chunks it answers.
answer_logs() { # CHUNK-JSON-TEMPLATE with @ID@ for the request id
  local req id
  req=$(timeout 5 mosquitto_sub -h 127.0.0.1 -p "$bport" -q 1 -t drover/v1/node/pi-1/logs/req -C 1) || return 1
  id=$(jq -r .id <<<"$req")
  echo "$req" >"$tmp/logreq"
  pub -t "drover/v1/node/pi-1/logs/res/$id" -m "${1//@ID@/$id}"
}
data=$(printf 'one\ntwo\nthree\n' | base64 -w0)
answer_logs "{\"id\":\"@ID@\",\"seq\":0,\"data\":\"$data\",\"eof\":true}" &
answerer=$!
sleep 0.3
check "log lines from the agent, last 2" test "$(curl -s "$url/api/v1/namespaces/default/pods/p1/log?tailLines=2")" = "$(printf 'two\nthree')"
wait "$answerer"
check "log request names pod and container" test "$(jq -r '.pod + "/" + .container' "$tmp/logreq")" = p1/c
answer_logs '{"id":"@ID@","seq":0,"data":"","eof":true,"error":"pod default/p1: not found on this node"}' &
answerer=$!
sleep 0.3
code=$(curl -s -o "$tmp/logerr" -w '%{http_code}' "$url/api/v1/namespaces/default/pods/p1/log")
wait "$answerer"
check "agent's error becomes 404 with its message ($code)" test "$code" = 404 -a "$(jq -r .message "$tmp/logerr")" = "pod default/p1: not found on this node"
check "negative tailLines: 400" test "$(curl -s "$url/api/v1/namespaces/default/pods/p1/log?tailLines=-3" | jq -r .code)" = 400
check "tailLines error names the field" bash -c "curl -s '$url/api/v1/namespaces/default/pods/p1/log?tailLines=abc' | jq -r .message | grep -q '^tailLines:'"
check "unknown container: 400 before asking" test "$(curl -s -o /dev/null -w '%{http_code}' "$url/api/v1/namespaces/default/pods/p1/log?container=nope")" = 400

# 5. Hostile messages: refused and counted, the hub carries on.
pub -t drover/v1/node/pi-1/status -m '{"kind":"NodeStatusReport","node":"pi-1","observedGeneration":-1}'
pub -t drover/v1/node/pi-1/status -m 'not json at all'
# a report on pi-2's topic claiming to be pi-1
pub -t drover/v1/node/pi-2/status -m '{"apiVersion":"drover/v1","kind":"NodeStatusReport","node":"pi-1","observedGeneration":0,"time":"x","nodeStatus":{},"pods":[]}'
head -c 1100000 /dev/zero | tr '\0' 'a' >"$tmp/big"
pub -t drover/v1/node/pi-1/events -f "$tmp/big"
pub -t drover/v1/node/BAD+/status -m '{}' 2>/dev/null
sleep 0.5
refusedn=$(curl -s "$url/metrics" | awk '/^drover_mqtt_messages_refused_total/ {print $2}')
check "malformed, mismatched and oversized messages refused ($refusedn)" test "${refusedn:-0}" -ge 4
check "no node registered from another node's topic" test "$(curl -s "$url/api/v1/nodes" | jq '.items | length')" = 1
check "hub still serving" test "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")" = 200

# 6. Events from the agent are stored.
pub -t drover/v1/node/pi-1/events -m "{\"apiVersion\":\"v1\",\"kind\":\"Event\",
  \"metadata\":{\"name\":\"pi-1.abc123\",\"namespace\":\"default\"},
  \"involvedObject\":{\"kind\":\"Pod\",\"name\":\"p1\",\"namespace\":\"default\"},
  \"type\":\"Warning\",\"reason\":\"BackOff\",\"message\":\"Back-off restarting failed container\",
  \"source\":{\"component\":\"drover-agent\",\"host\":\"pi-1\"},\"count\":1}"
backoff_events() { test "$(curl -s "$url/api/v1/namespaces/default/events" | jq -r '[.items[] | select(.reason=="BackOff")] | length')" = 1; }
check "agent event stored" wait_until 30 backoff_events

# 7. The Will fires: NotReady at once. Heartbeats again: Ready again.
pub -r -t drover/v1/node/pi-1/online -m '{"online":false}'
check "Will marks the node NotReady at once" wait_until 15 ready_is pi-1 Unknown
pub -r -t drover/v1/node/pi-1/online -m "{\"online\":true,\"time\":\"$(now)\"}"
hb_ready() { heartbeat pi-1 7; test "$(node_ready pi-1)" = True; }
check "heartbeats make it Ready again" wait_until 40 hb_ready
online=$(curl -s "$url/metrics" | awk '/^drover_nodes_online/ {print $2}')
check "nodes online in /metrics ($online)" test "$online" = 1

# 8. Silence: NotReady after the grace period (2 s here), not before.
heartbeat pi-1 8
sleep 1
check "still Ready within the grace period" test "$(node_ready pi-1)" = True
check "NotReady once heartbeats stop for the grace period" wait_until 50 ready_is pi-1 Unknown

# 8b. A node that only beats (its first report was lost) is asked to resync: its document is
#     published again with a greater generation even though nothing in it changed.
heartbeat pi-9 1
sleep 0.3
check "a beating node never heard of gets a document (resync)" test "$(desired pi-9 | jq -r .node)" = pi-9

# 9. Restart the hub: the document is the same and its generation did not go back.
before=$(desired pi-1 | jq -c .pods)
kill "$hubpid"; wait "$hubpid" 2>/dev/null
start_hub
sleep 0.5
doc=$(desired pi-1)
gen3=$(jq .generation <<<"$doc")
check "after a hub restart the document is the same" test "$(jq -c .pods <<<"$doc")" = "$before"
check "generation did not go back ($gen2 -> $gen3)" test "$gen3" -ge "$gen2"
# Delete the pod: the node's document becomes empty.
"$drover" delete pod p1 >/dev/null
sleep 0.3
check "deleted pod leaves the document" test "$(desired pi-1 | jq '.pods | length')" = 0

kill "$hubpid"; wait "$hubpid" 2>/dev/null; hubpid=
echo "# $fails failed"
[ "$fails" -eq 0 ]
