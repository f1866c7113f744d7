#!/usr/bin/env bash
# What one compromised device can do to a secure fleet (issues 11 and 12), tried with that device's own
# certificate and Debian's mosquitto_pub/mosquitto_sub against the hub's real broker
# (lib/fleet.sh, FLEET_SECURE=1, devices dev1 and dev2 enrolled with bootstrap tokens that
# label them device=d1 / device=d2):
#  - taking over dev2's or the hub's MQTT client id is refused at CONNECT, and neither loses
#    its connection;
#  - a status report claiming another device's labels leaves the admin's labels in place (and
#    says so in a LabelsRefused event), and a pod pinned to dev2 never lands on the liar;
#  - events about another node, or named to overwrite someone else's, are refused;
#  - a card copied after enrollment (two devices, one identity) is caught: a DuplicateIdentity
#    event and Node condition, shown by `drover get nodes`; a plain restart is not;
#  - a revoked device is refused at its next CONNECT, without the broker's files rewritten.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/fleet.sh"
netns_enter "$0" "$@"
if ! fleet_require_tools; then
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
fi
for t in mosquitto_pub mosquitto_sub; do
  command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }
done
fleet_setup || exit 1
export FLEET_SECURE=1 FLEET_NODE_GRACE=4
fleet_start 2 || { fleet_dump; exit 1; }
echo "# fleet up: hub $FLEET_HUB, broker port $FLEET_BROKER_PORT"

ID1="${FLEET_DEV_DIR[dev1]}/state/identity"
# As dev1: its own certificate and key, through its own broker address.
as_dev1() {
  "$1" --cafile "$ID1/ca.crt" --cert "$ID1/node.crt" --key "$ID1/node.key" \
    -h 127.0.0.11 -p "$FLEET_BROKER_PORT" "${@:2}"
}
label_of() { fleet_api "/api/v1/nodes/$1" | jq -r --arg k "$2" '.metadata.labels[$k] // ""'; }
events_of() { # REASON NODE: the events with that reason about node NODE
  fleet_api /api/v1/namespaces/default/events |
    jq -c --arg r "$1" --arg n "$2" '[.items[] | select(.reason == $r and .involvedObject.name == $n)]'
}

BLOG="$FLEET_TMP/hub/broker/mosquitto.log"
count() { grep -c -- "$1" "$2" 2>/dev/null || true; }

# ---- client-id takeover ----
# Five tries each at dev2's and at the hub's client id over about 12 s (a takeover used to
# close the victim's live connection each time: dev2 went Unknown within 11 s).
taken_before=$(count 'already connected, closing old connection' "$BLOG")
lost_before=$(count 'bridge: broker connection lost' "$FLEET_TMP/hub.err")
ok_dev2=0
ok_hub=0
for i in 1 2 3 4 5; do
  as_dev1 mosquitto_pub -q 1 -i drover-agent-dev2 -t drover/v1/node/dev1/heartbeat -m '{}' 2>/dev/null && ok_dev2=$((ok_dev2 + 1))
  as_dev1 mosquitto_pub -q 1 -i drover-hub -t drover/v1/node/dev1/heartbeat -m '{}' 2>/dev/null && ok_hub=$((ok_hub + 1))
  sleep 2.4
done
check "dev1's certificate with dev2's client id is refused at CONNECT (0 of 5 accepted: $ok_dev2)" test "$ok_dev2" -eq 0
check "dev1's certificate with the hub's client id is refused at CONNECT (0 of 5: $ok_hub)" test "$ok_hub" -eq 0
check "the broker says why" grep -q 'drover-auth: refused client id "drover-agent-dev2" (certificate dev1)' "$BLOG"
check "nobody's connection was closed for them" test "$(count 'already connected, closing old connection' "$BLOG")" = "$taken_before"
check "the hub never lost its broker connection" test "$(count 'bridge: broker connection lost' "$FLEET_TMP/hub.err")" = "$lost_before"
check "dev2 stayed Ready" fleet_node_ready dev2
# refused_as_dev1 [ARGS]: dev1's certificate, its own client id, one message: refused?
refused_as_dev1() {
  ! as_dev1 mosquitto_pub -q 1 -i drover-agent-dev1 "$@" -t drover/v1/node/dev1/heartbeat -m '{}' 2>/dev/null
}
check "a username of its own choosing is refused too" refused_as_dev1 -u dev2
got="$(as_dev1 mosquitto_sub -q 1 -i drover-agent-dev1 -t '#' -W 2 2>/dev/null)"
check "dev1 subscribing to # gets nothing" test -z "$got"
wait_for "dev1 back" $((20 * FLEET_TF)) fleet_node_ready dev1

# ---- label spoofing ----
check "dev1 carries the token's label device=d1" test "$(label_of dev1 device)" = d1
spoof="$(jq -cn --arg t "$(date -u +%Y-%m-%dT%H:%M:%SZ)" '{apiVersion: "drover/v1", kind: "NodeStatusReport",
  node: "dev1", observedGeneration: 0, time: $t,
  nodeStatus: {labels: {device: "d2", "kubernetes.io/hostname": "dev2", "kubernetes.io/arch": "amd64",
    "agent.drover.io/board": "spoof-test"},
    conditions: [{type: "Ready", status: "True"}]}, pods: []}')"
as_dev1 mosquitto_pub -q 1 -i drover-agent-dev1 -t drover/v1/node/dev1/status -m "$spoof" 2>/dev/null
agent_label() { test "$(label_of dev1 agent.drover.io/board)" = spoof-test; }
check "the report was taken (its own agent.drover.io/ label is set)" wait_for "agent label" $((10 * FLEET_TF)) agent_label
check "a report cannot change the token's label device=d1" test "$(label_of dev1 device)" = d1
check "...nor claim another hostname" test "$(label_of dev1 kubernetes.io/hostname)" = dev1
refused_ev() { [ "$(events_of LabelsRefused dev1 | jq length)" -gt 0 ]; }
check "a LabelsRefused event names the refused labels" wait_for "LabelsRefused" $((5 * FLEET_TF)) refused_ev
check "...device and kubernetes.io/hostname" \
  bash -c "[[ \"\$1\" == *device* && \"\$1\" == *kubernetes.io/hostname* ]]" _ "$(events_of LabelsRefused dev1 | jq -r '.[0].message')"
cat >"$FLEET_TMP/pinned.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: pinned}
spec:
  replicas: 2
  selector: {matchLabels: {app: pinned}}
  template:
    metadata: {labels: {app: pinned}}
    spec:
      nodeSelector: {device: d2}
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: $FLEET_IMG1
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.5; done"]
YAML
fleet_apply "$FLEET_TMP/pinned.yaml" >/dev/null
check "pods pinned to device=d2 run" fleet_running app=pinned 2 90
check "...all of them on dev2, none on the liar" \
  test "$(fleet_pods app=pinned | jq -r '[.items[].spec.nodeName] | unique | join(",")')" = dev2

# ---- events ----
ev() { # NAME KIND OBJ: an event as dev1 would send it
  jq -cn --arg n "$1" --arg k "$2" --arg o "$3" '{apiVersion: "v1", kind: "Event",
    metadata: {name: $n, namespace: "default"}, involvedObject: {kind: $k, name: $o},
    type: "Warning", reason: "Spoofed", message: "spoofed by dev1", source: {component: "drover-hub"}}'
}
as_dev1 mosquitto_pub -q 1 -i drover-agent-dev1 -t drover/v1/node/dev1/events -m "$(ev dev2.x1 Node dev2)" 2>/dev/null
as_dev1 mosquitto_pub -q 1 -i drover-agent-dev1 -t drover/v1/node/dev1/events -m "$(ev dev1.x2 Node dev2)" 2>/dev/null
as_dev1 mosquitto_pub -q 1 -i drover-agent-dev1 -t drover/v1/node/dev1/events -m "$(ev dev1.x3 Node dev1)" 2>/dev/null
own_ev() { [ "$(events_of Spoofed dev1 | jq length)" -eq 1 ]; }
check "an event about dev1 itself is taken" wait_for "own event" $((10 * FLEET_TF)) own_ev
check "...with its source set by the hub (drover-agent on dev1)" \
  test "$(events_of Spoofed dev1 | jq -r '.[0].source | "\(.component)@\(.host)"')" = drover-agent@dev1
check "events about dev2 (or named as dev2's) are refused" test "$(events_of Spoofed dev2 | jq length)" -eq 0

# ---- a cloned card: a third device with a copy of dev1's identity (its key and certificate) ----
node_cond() { fleet_api "/api/v1/nodes/$1" | jq -r --arg t "$2" '[.status.conditions[]? | select(.type == $t) | .status][0] // ""'; }
mkdir -p "$FLEET_TMP/clone-seed"
cp -a "${FLEET_DEV_DIR[dev1]}/state/identity" "$FLEET_TMP/clone-seed/"
FLEET_DEV_SEED_STATE="$FLEET_TMP/clone-seed" FLEET_DEV_NODE=dev1 fleet_device_start clone1 3 >/dev/null
dup_seen() { [ "$(events_of DuplicateIdentity dev1 | jq length)" -gt 0 ]; }
check "two devices with dev1's identity: a DuplicateIdentity event" \
  wait_for "DuplicateIdentity event" $((40 * FLEET_TF)) dup_seen
check "...naming what to do" bash -c "[[ \"\$1\" == *'drover node revoke dev1'* ]]" _ "$(events_of DuplicateIdentity dev1 | jq -r '.[0].message')"
check "...and the Node condition DuplicateIdentity=True" test "$(node_cond dev1 DuplicateIdentity)" = True
nodes_out="$(fleet_drover get nodes 2>&1)"
check "drover get nodes: dev1 ...,DuplicateIdentity ($(grep '^dev1 ' <<<"$nodes_out" | awk '{print $2}'))" \
  grep -qE '^dev1 +[A-Za-z,]*DuplicateIdentity' <<<"$nodes_out"
fleet_power_cut clone1
# A restart is not a duplicate: dev1's own agent restarting (a new run) raises nothing new.
dups_before="$(events_of DuplicateIdentity dev1 | jq length)"
fleet_power_cut dev1 && fleet_power_on dev1 >/dev/null
wait_for "dev1 back" $((30 * FLEET_TF)) fleet_node_ready dev1
sleep 3
check "a plain restart of dev1 is not taken for a duplicate" test "$(events_of DuplicateIdentity dev1 | jq length)" = "$dups_before"

# ---- revocation: the next CONNECT is refused, without any broker file rewritten ----
files_before=$(find "$FLEET_TMP/hub/broker" -maxdepth 1 -type f ! -name 'mosquitto.log*' ! -name 'mosquitto.db*' -printf '%P %T@\n' | sort)
reloads=$(count 'Reloading config' "$BLOG")
revoke_dev1() { fleet_drover node revoke dev1 >/dev/null; }
check "drover node revoke dev1" revoke_dev1
kicked() { grep -q 'drover-auth: disconnecting dev1' "$BLOG"; }
check "the broker disconnects dev1 at once" wait_for "kick" $((5 * FLEET_TF)) kicked
check "dev1's next CONNECT is refused (revoked)" refused_as_dev1
check "...the broker says so" grep -q 'refused client id "drover-agent-dev1" (certificate dev1): node dev1 is revoked' "$BLOG"
check "...with no broker file rewritten" test "$(find "$FLEET_TMP/hub/broker" -maxdepth 1 -type f ! -name 'mosquitto.log*' ! -name 'mosquitto.db*' -printf '%P %T@\n' | sort)" = "$files_before"
check "...and no configuration reload" test "$(count 'Reloading config' "$BLOG")" = "$reloads"
check "dev2 is still Ready" fleet_node_ready dev2

fleet_finish
