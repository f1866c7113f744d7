#!/usr/bin/env bash
# drover-agent over MQTT, against a real Mosquitto this test starts on 127.0.0.1 and talks to
# with mosquitto_pub/mosquitto_sub in the hub's place: a retained desired state runs its pod
# and is reported; unsigned, tampered, foreign-signed, older (replayed), malformed and
# other-node documents change nothing (refused with an event); the broker going away stops no
# pod; the agent reconnects and reports again; its
# Will fires when it is killed; logs requests are answered in chunks, follow and cancel.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/device.sh"
netns_enter "$0" "$@"
source "$here/lib/registry.sh"
registry_require_tools || exit 77
for tool in /usr/sbin/mosquitto mosquitto_pub mosquitto_sub base64; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool missing" >&2; exit 77; }
done
tf="${DROVER_TEST_TIME_FACTOR:-1}"

fails=0
ok() { echo "ok - $1"; }
bad() { echo "not ok - $1"; fails=$((fails + 1)); }
check() { local name="$1"; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }

registry_start || exit 1
layout="$(image_build_busybox busybox 1)" || exit 1
image_push "$layout" 1 test/busybox:1 || exit 1
IMG="$REGISTRY_ADDR/test/busybox:1"

# The broker: started as root, Mosquitto drops to user mosquitto, so its files are readable.
MQ_DIR="$(mktemp -d "${TMPDIR:-/tmp}/drover-mqtt.XXXXXX")"
chmod 755 "$MQ_DIR"
MQ_PID=""
SUB_PID=""
broker_stop() {
  [ -n "$MQ_PID" ] && kill "$MQ_PID" 2>/dev/null && wait "$MQ_PID" 2>/dev/null
  MQ_PID=""
}
sub_stop() {
  [ -n "$SUB_PID" ] && kill "$SUB_PID" 2>/dev/null && wait "$SUB_PID" 2>/dev/null
  SUB_PID=""
}
registry_on_exit "sub_stop; broker_stop; rm -rf '$MQ_DIR'"
MQ_PORT="$(_registry_free_port)" || exit 1
cat >"$MQ_DIR/mosquitto.conf" <<EOF
listener $MQ_PORT 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
EOF
chmod 644 "$MQ_DIR/mosquitto.conf"
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$MQ_PORT") 2>/dev/null; }
broker_start() {
  /usr/sbin/mosquitto -c "$MQ_DIR/mosquitto.conf" >>"$MQ_DIR/broker.log" 2>&1 &
  MQ_PID=$!
  wait_for "broker listening" $((10 * tf)) port_open
}
# Everything under the node's topics, one "topic payload" line each, into $SUB_LOG.
sub_start() {
  SUB_LOG="$MQ_DIR/sub.$1.log"
  : >"$SUB_LOG"
  mosquitto_sub -h 127.0.0.1 -p "$MQ_PORT" -q 1 -v -t 'drover/v1/node/dev1/#' >"$SUB_LOG" 2>&1 &
  SUB_PID=$!
  sleep 0.3
}
pub() { mosquitto_pub -h 127.0.0.1 -p "$MQ_PORT" -q 1 "$@"; }
T=drover/v1/node/dev1
# Payloads seen on topic suffix $1 (in the current subscriber log).
msgs() { awk -v t="$T/$1" '$1 == t { sub(/^[^ ]+ /, ""); print }' "$SUB_LOG"; }
seen() { msgs "$1" | grep -q -- "$2"; }
last_status() { msgs status | tail -n 1; }

broker_start || { cat "$MQ_DIR/broker.log"; exit 1; }
sub_start 1

# The hub's signing key (and a stranger's), as the hub keeps them in <data>/pki.
SEAL="$DROVER_BUILD_DIR/tests/tools/drover-test-seal"
[ -x "$SEAL" ] || { echo "build drover-test-seal first" >&2; exit 1; }
for k in hub other; do
  openssl ecparam -name prime256v1 -genkey -noout -out "$MQ_DIR/$k.key" 2>/dev/null &&
    openssl ec -in "$MQ_DIR/$k.key" -pubout -out "$MQ_DIR/$k.pub" 2>/dev/null || exit 1
done
export DEVICE_SIGNING_PUB="$MQ_DIR/hub.pub"

device_start dev1 "hub:
  broker: tcp://127.0.0.1:$MQ_PORT
  heartbeatSeconds: 1
  keepaliveSeconds: 2
labels: {site: north}" || { cat "$DEV_LOG"; exit 1; }

# 1. Presence, heartbeats and a first status report.
check "online true, retained, on connect" wait_for "online" $((10 * tf)) seen online '"online":true'
check "heartbeats arrive" wait_for "heartbeat" $((5 * tf)) seen heartbeat '"seq":1'
check "a status report arrives" wait_for "status" $((5 * tf)) seen status NodeStatusReport
st="$(last_status)"
check "report: label site=north" test "$(jq -r '.nodeStatus.labels.site' <<<"$st")" = north
check "report: hostname label" test "$(jq -r '.nodeStatus.labels["kubernetes.io/hostname"]' <<<"$st")" = dev1
check "report: InternalIP" test "$(jq -r '.nodeStatus.addresses[] | select(.type == "InternalIP") | .address' <<<"$st")" = 10.255.0.1
check "report: Ready with lastHeartbeatTime" test "$(jq -r '.nodeStatus.conditions[] | select(.type == "Ready") | .lastHeartbeatTime | length > 0' <<<"$st")" = true
check "report: capacity" test "$(jq -r '.nodeStatus.capacity.cpu | length > 0' <<<"$st")" = true

# 2. A retained desired state runs its pod.
unsigned() { # GEN NODE PODS-JSON
  printf '{"apiVersion":"drover/v1","kind":"NodeDesiredState","node":"%s","generation":%s,"pods":%s,"configMaps":[],"secrets":[]}' "$2" "$1" "$3"
}
desired() { unsigned "$@" | "$SEAL" sign "${SIGN_KEY:-$MQ_DIR/hub.key}"; } # signed by the hub
WEB='[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"default","uid":"uid-web-1"},"spec":{"nodeName":"dev1","containers":[{"name":"main","image":"'"$IMG"'","command":["sh","-c","i=0; while true; do echo line-$i; i=$((i+1)); sleep 0.2; done"]}]}}]'
pub -r -t "$T/desired" -m "$(desired 5 dev1 "$WEB")"
phase_is() { [ "$(pod_field "$1" .status.phase)" = "$2" ]; }
if wait_for "web Running" $((60 * tf)) phase_is web Running; then
  ok "desired pod runs"
else
  bad "desired pod runs"; device_status; tail -30 "$DEV_LOG"
fi
reported() { last_status | jq -e '.observedGeneration == 5 and any(.pods[]; .metadata.name == "web" and .metadata.uid == "uid-web-1" and .status.phase == "Running")' >/dev/null 2>&1; }
check "status report: observedGeneration 5, web Running" wait_for "report" $((10 * tf)) reported
check "hub-desired.json saved, mode 0600" test "$(stat -c %a "$DEV_DIR/state/hub-desired.json" 2>/dev/null)" = 600
cid="$(pod_field web '.status.containerStatuses[0].containerID')"

# 3. An older generation (a replayed, properly signed document) changes nothing, and is
# reported.
refused() { msgs events | grep DesiredStateRefused | grep -q -- "$1"; }
pub -r -t "$T/desired" -m "$(desired 3 dev1 '[]')"
check "replayed older generation refused with an event" wait_for "event" $((5 * tf)) refused "generation 3 is older than the applied 5"
check "older generation ignored: web still Running" phase_is web Running
check "older generation ignored: generation still 5" test "$(device_status | jq .hub.generation)" = 5

# 4. Refused documents: unsigned, signed by another key, tampered, malformed, another node's,
# an invalid pod. Nothing changes.
pub -t "$T/desired" -m "$(unsigned 6 dev1 '[]')"
check "unsigned document refused with an event" wait_for "event" $((5 * tf)) refused "desired state: not signed"
pub -t "$T/desired" -m "$(SIGN_KEY="$MQ_DIR/other.key" desired 7 dev1 '[]')"
check "document signed by another key refused" wait_for "event" $((5 * tf)) refused "does not verify with the hub's signing key"
tampered="$(desired 8 dev1 "$WEB" | sed 's/sleep 0.2/sleep 9.9/')"
check "tampering changed the payload" grep -q 'sleep 9.9' <<<"$tampered"
before=$(msgs events | grep -c 'does not verify')
pub -t "$T/desired" -m "$tampered"
tamper_refused() { [ "$(msgs events | grep -c 'does not verify')" -gt "$before" ]; }
check "tampered document (pod command changed) refused" wait_for "event" $((5 * tf)) tamper_refused
check "unsigned/foreign/tampered: generation still 5" test "$(device_status | jq .hub.generation)" = 5
pub -t "$T/desired" -m '{"apiVersion":"drover/v1","kind":"NodeDesiredState", oops'
check "malformed document refused with an event" wait_for "event" $((5 * tf)) refused "desired state"
pub -t "$T/desired" -m "$(desired 9 dev2 "$WEB")"
check "other node's document refused, naming the node" wait_for "event" $((5 * tf)) refused "dev2"
NOUID='[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},"spec":{"nodeName":"dev1","containers":[{"name":"main","image":"x"}]}}]'
pub -t "$T/desired" -m "$(desired 10 dev1 "$NOUID")"
check "pod without uid refused, naming the field" wait_for "event" $((5 * tf)) refused 'pods\[0\].metadata.uid: required'
BADPOD='[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","uid":"u2"},"spec":{"nodeName":"dev1","containers":[{"name":"main"}]}}]'
pub -t "$T/desired" -m "$(desired 11 dev1 "$BADPOD")"
check "invalid pod refused, naming the field" wait_for "event" $((5 * tf)) refused 'image'
head -c 5000000 /dev/zero | tr '\0' 'x' >"$MQ_DIR/big"
pub -t "$T/desired" -f "$MQ_DIR/big"
check "oversized document refused" wait_for "event" $((5 * tf)) refused "exceeds\|too\|large\|big"
sleep 0.5
check "after the refusals web still runs, same container" test "$(pod_field web '.status.containerStatuses[0].containerID')" = "$cid"
check "after the refusals generation still 5" test "$(device_status | jq .hub.generation)" = 5
check "agent still alive" device_status_ok

# 5. Logs: the whole log, an unknown pod, follow and cancel.
chunks() { msgs "logs/res/$1"; }
logs_done() { chunks "$1" | jq -e 'select(.eof == true)' >/dev/null 2>&1; }
pub -t "$T/logs/req" -m '{"id":"r1","pod":"web","namespace":"default","container":"","tailBytes":0,"follow":false}'
check "logs: chunks end with eof" wait_for "logs r1" $((10 * tf)) logs_done r1
out="$(chunks r1 | jq -r '.data' | base64 -d 2>/dev/null)"
check "logs: the container's output" grep -q "^line-3$" <<<"$out"
pub -t "$T/logs/req" -m '{"id":"r2","pod":"web","tailBytes":20}'
check "logs tail: answered" wait_for "logs r2" $((10 * tf)) logs_done r2
n="$(chunks r2 | jq -r '.data' | base64 -d | wc -c)"
check "logs tail: 20 bytes (got $n)" test "$n" -eq 20
pub -t "$T/logs/req" -m '{"id":"r3","pod":"nope"}'
check "logs: unknown pod gets an error chunk" wait_for "logs r3" $((5 * tf)) logs_done r3
check "logs: the error names the pod" grep -q "default/nope: not found" <<<"$(chunks r3)"
pub -t "$T/logs/req" -m '{"id":"r4","pod":"web","container":"side"}'
check "logs: unknown container gets an error" wait_for "logs r4" $((5 * tf)) logs_done r4
check "logs: the error lists the containers" grep -q "containers: main" <<<"$(chunks r4)"
pub -t "$T/logs/req" -m '{"id":"f1","pod":"web","tailBytes":10,"follow":true}'
nchunks() { [ "$(chunks f1 | jq -r 'select(.data != "") | .seq' | wc -l)" -ge "$1" ]; }
check "follow: new output keeps coming" wait_for "follow chunks" $((10 * tf)) nchunks 4
check "follow: no eof yet" test -z "$(chunks f1 | jq -r 'select(.eof == true) | .seq')"
pub -t "$T/logs/req" -m '{"id":"f1","cancel":true}'
check "follow: cancel ends it with eof" wait_for "follow eof" $((5 * tf)) logs_done f1
n1="$(chunks f1 | wc -l)"
sleep 1.5
check "follow: nothing after the cancel" test "$(chunks f1 | wc -l)" -eq "$n1"
fdata="$(chunks f1 | jq -r '.data' | base64 -d)"
check "follow: the bytes are the log's, in order" bash -c 'grep -o "line-[0-9]*" <<<"$1" | tail -n +2 | awk -F- "NR > 1 && \$2 != p + 1 {exit 1} {p = \$2}"' _ "$fdata"

priv="$(awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s}' "/proc/$(device_agent_pid)/smaps_rollup")"
echo "# agent private memory, connected, after serving logs: ${priv} KiB"

# 6. The broker goes away: pods keep running, the agent keeps working (a static pod starts).
sub_stop
broker_stop
sleep $((3 * tf))
check "broker down: web still runs, same container" test "$(pod_field web '.status.containerStatuses[0].containerID')" = "$cid"
cat >"$DEV_MANIFESTS/local.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: local}
spec:
  containers: [{name: c, image: $IMG, command: ["sleep", "3600"]}]
YAML
check "broker down: a static pod still starts" wait_for "local Running" $((30 * tf)) phase_is local Running

# 7. The broker returns: the agent reconnects, says it is online and reports again.
broker_start || bad "broker restart"
sub_start 2
check "reconnected: online true again" wait_for "online" $((40 * tf)) seen online '"online":true'
both() { last_status | jq -e '.observedGeneration == 5 and ([.pods[].metadata.name] | sort) == ["local", "web"]' >/dev/null 2>&1; }
check "reconnected: full status report (web and local)" wait_for "report" $((10 * tf)) both
check "reconnected: heartbeats again" wait_for "heartbeat" $((5 * tf)) seen heartbeat '"observedGeneration":5'

# 8. Clean stop says offline with a time; kill -9 fires the Will (no time).
apid="$(device_agent_pid)"
kill -TERM "$apid"
check "SIGTERM: online false with a time" wait_for "offline" $((5 * tf)) seen online '"online":false,"time"'
ready_again() { seen online '"online":true' && [ "$(msgs online | tail -n 1 | jq .online)" = true ]; }
wait_for "agent back" $((15 * tf)) ready_again
apid="$(device_agent_pid)"
# The Will: online false, no time (fixed at connect), the run's instance id.
wills() { msgs online | grep -c '^{"online":false,"instance":"[0-9a-f]\{24\}"}$'; }
before="$(wills)"
kill -9 "$apid"
will() { [ "$(wills)" -gt "$before" ]; }
check "kill -9: the Will arrives" wait_for "will" $((10 * tf)) will
check "kill -9: web keeps running" test "$(pod_field web '.status.containerStatuses[0].containerID')" = "$cid"

# 9. The saved desired state runs without a broker after a restart.
sub_stop
broker_stop
apid="$(device_agent_pid)"
[ -n "$apid" ] && kill -9 "$apid"
sleep 1
wait_for "agent back" $((10 * tf)) device_status_ok
gen5() { [ "$(device_status | jq .hub.generation)" = 5 ]; }
check "restart without broker: generation 5 loaded" wait_for "gen 5" $((5 * tf)) gen5
sleep 1
check "restart without broker: web still runs" test "$(pod_field web '.status.containerStatuses[0].containerID')" = "$cid"

if [ "$fails" -ne 0 ]; then
  echo "--- agent log (tail)"; tail -40 "$DEV_LOG"
  echo "--- broker log (tail)"; tail -20 "$MQ_DIR/broker.log"
fi
echo "$fails failure(s)"
[ "$fails" -eq 0 ]
