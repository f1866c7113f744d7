#!/usr/bin/env bash
# Fleet security end to end, in the hub's default configuration (lib/fleet.sh with
# FLEET_SECURE=1: HTTPS API with bearer tokens, TLS-only Mosquitto with client certificates):
# two devices enrol with bootstrap tokens (their Nodes get the tokens' labels) and run a
# Deployment that uses a Secret as a volume and as an environment variable. The Secret's value
# reaches the containers and appears in clear nowhere else: not in the broker's persistence
# file, the hub's data directory, the devices' state directories or any log. Speaking as a
# compromised broker (with the hub's own broker identity), a replayed older document, a
# tampered one, another node's and one signed by another key are each refused by the agent and
# reported (Events through the API), and its pods keep running. `drover node revoke` shuts a
# device out: NotReady, its pods replaced on the other device. A device started while the hub
# is down retries its enrollment and joins once the hub is back.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/fleet.sh"
netns_enter "$0" "$@"
if ! fleet_require_tools; then
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
fi
for t in mosquitto_pub mosquitto_sub openssl; do
  command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }
done
SEAL="$DROVER_BUILD_DIR/tests/tools/drover-test-seal"
[ -x "$SEAL" ] || { echo "build drover-test-seal first" >&2; exit 1; }
fleet_setup || exit 1
export FLEET_SECURE=1 FLEET_NODE_GRACE=3
fleet_hub_start || { fleet_dump; exit 1; }
echo "# hub $FLEET_HUB (CA $FLEET_FINGERPRINT), broker port $FLEET_BROKER_PORT"
check "the hub serves HTTPS by default" grep -q '^https://' <<<"$FLEET_HUB"
check "without a token the API answers 401" \
  test "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$FLEET_CA" "$FLEET_HUB/api/v1/pods")" = 401
check "the broker refuses a plain connection" \
  bash -c "! timeout 5 mosquitto_pub -h 127.0.0.1 -p $FLEET_BROKER_PORT -t x -m y 2>/dev/null"

fleet_device_start dev1 1 && fleet_device_start dev2 2 || { fleet_dump; exit 1; }
for n in dev1 dev2; do
  check "$n enrols and is Ready" wait_for "$n Ready" $((60 * FLEET_TF)) fleet_node_ready "$n"
done
label_ok() { test "$(fleet_api "/api/v1/nodes/$1" | jq -r .metadata.labels.device)" = "$2"; }
check "dev2 got its bootstrap token's labels" label_ok dev2 d2
check "two identities, neither revoked" \
  test "$("$FLEET_CLI" node list-identities -o json | jq '[.items[] | select(.revoked | not)] | length')" = 2
check "the device key stays on the device (mode 0600)" \
  test "$(stat -c %a "${FLEET_DEV_DIR[dev1]}/state/identity/node.key")" = 600
check "... and nowhere in the hub's data" \
  bash -c "! grep -rqF -- \"\$(sed -n 2p '${FLEET_DEV_DIR[dev1]}/state/identity/node.key')\" '$FLEET_TMP/hub'"

# ---- a Secret used as a volume and as an environment variable ----
VALUE="pw-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
B64="$(printf %s "$VALUE" | base64 -w0)"
cat >"$FLEET_TMP/sec.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata: {name: db}
stringData: {password: "$VALUE"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: sec}
spec:
  replicas: 2
  selector: {matchLabels: {app: sec}}
  template:
    metadata: {labels: {app: sec}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: c
        image: $FLEET_IMG1
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.5; done"]
        env: [{name: PW, valueFrom: {secretKeyRef: {name: db, key: password}}}]
        volumeMounts: [{name: s, mountPath: /s}]
      volumes: [{name: s, secret: {secretName: db}}]
YAML
fleet_apply "$FLEET_TMP/sec.yaml" >/dev/null
check "2 replicas Running" fleet_running app=sec 2 120
pods_on() { fleet_pods app=sec | jq -r --arg n "$1" '.items[] | select(.spec.nodeName == $n and .metadata.deletionTimestamp == null) | .metadata.name'; }
p1="$(pods_on dev1 | head -n 1)"
if [ -n "$p1" ]; then
  check "the container reads the value from the secret volume" \
    test "$(fleet_exec dev1 "$p1" c cat /s/password 2>/dev/null)" = "$VALUE"
  check "... and from its environment" \
    test "$(fleet_exec dev1 "$p1" c sh -c 'printf %s "$PW"' 2>/dev/null)" = "$VALUE"
else
  check "a sec pod runs on dev1" false
fi

# What the broker holds for dev1 (read with the hub's own identity, which may read anything).
PKI="$FLEET_TMP/hub/pki"
as_hub() { "$1" --cafile "$PKI/ca.crt" --cert "$PKI/hub-client.crt" --key "$PKI/hub-client.key" \
  -i "drover-hub-test-$BASHPID" -h 127.0.0.1 -p "$FLEET_BROKER_PORT" "${@:2}"; }
envelope() { as_hub mosquitto_sub -t "drover/v1/node/$1/desired" -C 1 -W 5 2>/dev/null; }
doc_of() { envelope "$1" | jq -r .payload; }
check "dev1's retained document carries the Secret sealed (sealedData, no data)" \
  test "$(doc_of dev1 | jq -c '[.secrets[] | select(.metadata.name == "db") | [has("sealedData"), has("data"), has("stringData")]]')" = '[[true,false,false]]'
env1="$(envelope dev1)"
jq -r .signature <<<"$env1" | base64 -d >"$FLEET_TMP/sig" && jq -j .payload <<<"$env1" >"$FLEET_TMP/msg"
check "dev1's document verifies with the hub's signing.pub (openssl)" \
  openssl dgst -sha256 -verify "$PKI/signing.pub" -signature "$FLEET_TMP/sig" "$FLEET_TMP/msg"

# ---- a compromised broker can neither forge nor replay ----
gen_of() { fleet_use "$1" && device_status 2>/dev/null | jq -r '.hub.generation // 0'; }
g1="$(jq -r .payload <<<"$env1" | jq -r .generation)"
check "dev1 applied generation $g1" test "$(gen_of dev1)" = "$g1"
before="$(fleet_device_pods dev1 | tr '\n' ' ')"
# A new document for dev1 (a pod pinned to it), so that env1 becomes old.
cat >"$FLEET_TMP/pin.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: pinned}
spec:
  nodeSelector: {device: d1}
  terminationGracePeriodSeconds: 2
  containers:
  - {name: c, image: $FLEET_IMG1, command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.5; done"]}
YAML
fleet_apply "$FLEET_TMP/pin.yaml" >/dev/null
newer() { [ "$(gen_of dev1)" -gt "$g1" ] 2>/dev/null; }
check "dev1 applies a newer document" wait_for "newer" $((20 * FLEET_TF)) newer
check "the pinned pod runs" fleet_wait "pinned Running" 60 /api/v1/namespaces/default/pods/pinned '.status.phase == "Running"'
g2="$(gen_of dev1)"
before="$(fleet_device_pods dev1 | tr '\n' ' ')"
env2="$(envelope dev1)"
refusals() { fleet_api /api/v1/events | jq -r '.items[] | select(.reason == "DesiredStateRefused" and .involvedObject.name == "dev1") | .message'; }
refused() { refusals | grep -q -- "$1"; }
publish_dev1() { as_hub mosquitto_pub -q 1 -r -t drover/v1/node/dev1/desired -m "$1"; }

publish_dev1 "$env1"
check "a replayed older document is refused and reported" \
  wait_for "replay event" $((15 * FLEET_TF)) refused "generation $g1 is older than the applied $g2"
tampered="$(sed 's/sleep 0.5/sleep 0.6/' <<<"$env2")"
check "(the tampered copy differs)" test "$tampered" != "$env2"
publish_dev1 "$tampered"
check "a tampered document is refused and reported" \
  wait_for "tamper event" $((15 * FLEET_TF)) refused "does not verify with the hub's signing key"
publish_dev1 "$(envelope dev2)"
check "dev2's document on dev1's topic is refused and reported" \
  wait_for "other-node event" $((15 * FLEET_TF)) refused 'dev2'
openssl ecparam -name prime256v1 -genkey -noout -out "$FLEET_TMP/evil.key" 2>/dev/null
forged="$(jq -r .payload <<<"$env2" | jq -c '.generation += 1000 | .pods = []' | "$SEAL" sign "$FLEET_TMP/evil.key")"
n_before="$(refusals | grep -c 'does not verify')"
publish_dev1 "$forged"
more_forged() { [ "$(refusals | grep -c 'does not verify')" -gt "$n_before" ]; }
check "a document signed by another key (emptying the node) is refused and reported" \
  wait_for "forged event" $((15 * FLEET_TF)) more_forged
publish_dev1 "$(jq -r .payload <<<"$env2" | jq -c '.generation += 1000 | .pods = []')"
check "an unsigned document is refused and reported" \
  wait_for "unsigned event" $((15 * FLEET_TF)) refused "not signed"
sleep 1
check "after all that dev1 still runs the same pods" test "$(fleet_device_pods dev1 | tr '\n' ' ')" = "$before"
check "... at the same generation" test "$(gen_of dev1)" = "$g2"
publish_dev1 "$env2" # the broker's retained copy back to the hub's

# ---- the Secret's value in clear: nowhere ----
leaks() { # DIR...: files holding the value or its base64
  grep -rlaF -e "$VALUE" -e "$B64" "$@" 2>/dev/null
}
check "not in the devices' state directories" \
  test -z "$(leaks "${FLEET_DEV_DIR[dev1]}/state" "${FLEET_DEV_DIR[dev2]}/state")"
check "not in the agents' logs" \
  test -z "$(leaks "${FLEET_DEV_DIR[dev1]}/agent.log" "${FLEET_DEV_DIR[dev2]}/agent.log")"

# ---- revocation ----
"$FLEET_CLI" node revoke dev2 >/dev/null 2>"$FLEET_TMP/revoke.err"
check "drover node revoke dev2" test $? = 0
check "dev2 is NotReady" wait_for "dev2 NotReady" $((30 * FLEET_TF)) fleet_node_not_ready dev2
check "its pods are replaced on dev1" fleet_wait "sec all on dev1" 90 "$(fleet_pods_path app=sec)" \
  '[.items[] | select(.metadata.deletionTimestamp == null and .status.phase == "Running")] | length == 2 and all(.spec.nodeName == "dev1")'
sleep 3
check "dev2 stays NotReady (its agent still runs, shut out at the broker)" fleet_node_not_ready dev2
check "the identity is listed revoked" \
  test "$("$FLEET_CLI" node list-identities -o json | jq -r '.items[] | select(.node == "dev2") | .revoked')" = true

# ---- a device flashed while the hub is down: its agent runs, enrols once the hub is back ----
install -m 600 /dev/null "$FLEET_TMP/dev3.token"
"$FLEET_CLI" token create --uses 1 --ttl 1h --labels fleet=test,device=d3 >"$FLEET_TMP/dev3.token" 2>/dev/null
fleet_hub_stop
FLEET_TOKEN_FILE="$FLEET_TMP/dev3.token" fleet_device_start dev3 3 || true
fleet_use dev3
enrol_failed() { grep -q "enrollment failed; retrying" "$DEV_LOG"; }
check "dev3 cannot reach the hub: enrollment failed, retrying" wait_for "dev3 retry" $((15 * FLEET_TF)) enrol_failed
fleet_hub_start || { fleet_dump; exit 1; }
check "the hub is back on the same port" test "${FLEET_HUB##*:}" = "$(sed -n 's/^drover-hub: serving https:\/\/[^:]*:\([0-9]*\)$/\1/p' "$FLEET_TMP/hub.out")"
check "dev3 enrols on its next try and is Ready" wait_for "dev3 Ready" $((60 * FLEET_TF)) fleet_node_ready dev3

# The broker's persistence file (written when the broker stops) and the hub's data.
fleet_hub_stop
db="$(find "$FLEET_TMP/hub" -name mosquitto.db | head -n 1)"
check "the broker kept a persistence file" test -s "$db"
check "... which holds the retained desired state (sealed)" grep -qaF sealedData "$db"
check "not in the broker's persistence file" test -z "$(leaks "$db")"
check "not in the hub's data directory (store, WAL, broker, pki)" test -z "$(leaks "$FLEET_TMP/hub")"
check "not in the hub's output" test -z "$(leaks "$FLEET_TMP/hub.err" "$FLEET_TMP/hub.out")"
fleet_finish
