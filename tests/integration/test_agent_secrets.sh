#!/usr/bin/env bash
# Secrets at rest on a device: a pod gets a Secret given in clear (static manifest) and one
# sealed to the node's key, as a volume and as env; neither value is ever written under the
# state directory (desired.json, bundles' config.json, ...) nor in the agent's log, in clear or
# base64. A Secret sealed for another key fails only its pod, with an error naming it. After a
# power cut the pod comes back with both (the manifests are still in the manifest directory).
# Then a Secret sealed by the "hub" in a signed desired state over MQTT: the same, and without
# the node's key the pod's status says why.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/device.sh"
netns_enter "$0" "$@"
source "$here/lib/registry.sh"
registry_require_tools || exit 77
command -v cc >/dev/null || { echo "SKIP: cc missing" >&2; exit 77; }

fails=0
ok() { echo "ok - $1"; }
bad() { echo "not ok - $1"; fails=$((fails + 1)); }
check() { local name="$1"; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }

SRC="${DROVER_SOURCE_DIR:-$(cd "$here/../.." && pwd)}"
work="$(mktemp -d "${TMPDIR:-/tmp}/drover-secrets.XXXXXX")"
registry_on_exit "rm -rf $work"

# A sealing tool as the hub would seal (drover/pki.h, context "drover/v1 secret NODE/NS/NAME",
# content {"data": {KEY: base64}}): `seal genkey FILE` or `seal seal KEYFILE NODE NS NAME KEY B64`.
cat >"$work/seal.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "drover/file.h"
#include "drover/pki.h"
int main(int argc, char **argv)
{
    drv_error_t err = DRV_ERROR_INIT;
    char *key = NULL, *pub = NULL, *blob = NULL;
    if (argc == 3 && !strcmp(argv[1], "genkey")) {
        if (drv_pki_key_generate(&key, &err) != DRV_OK ||
            drv_file_write_atomic(argv[2], key, strlen(key), 0600, &err) != DRV_OK)
            goto fail;
        drv_pki_secret_free(key);
        return 0;
    }
    if (argc != 8 || strcmp(argv[1], "seal"))
        return 2;
    char ctx[512], plain[1024];
    snprintf(ctx, sizeof(ctx), "drover/v1 secret %s/%s/%s", argv[3], argv[4], argv[5]);
    snprintf(plain, sizeof(plain), "{\"data\":{\"%s\":\"%s\"}}", argv[6], argv[7]);
    if (drv_file_read_capped(argv[2], 16384, &key, NULL, &err) != DRV_OK ||
        drv_pki_key_public(key, &pub, &err) != DRV_OK ||
        drv_pki_seal(pub, ctx, plain, strlen(plain), &blob, &err) != DRV_OK)
        goto fail;
    printf("%s\n", blob);
    drv_pki_secret_free(key);
    free(pub);
    free(blob);
    return 0;
fail:
    fprintf(stderr, "seal: %s\n", drv_error_msg(&err));
    return 1;
}
C
seal_cc() {
  cc "$@" -o "$work/seal" "$work/seal.c" -I"$SRC/shared/include" \
    "$DROVER_BUILD_DIR/shared/libdrover-shared.a" -lmbedx509 -lmbedcrypto -lcjson -lyaml -lm
}
# (A DROVER_SANITIZE build's library needs the sanitizers' runtime.)
if ! seal_cc 2>/dev/null && ! seal_cc -fsanitize=address,undefined; then
  echo "cannot build the sealing helper" >&2
  exit 1
fi

registry_start || exit 1
layout="$(image_build_busybox busybox 1)" || exit 1
image_push "$layout" 1 test/busybox:1 || exit 1
IMG="$REGISTRY_ADDR/test/busybox:1"

device_start dev1 || { cat "$DEV_LOG"; exit 1; }
STATE="$DEV_DIR/state"
mkdir -p -m 0700 "$STATE/identity"
"$work/seal" genkey "$STATE/identity/node.key" || exit 1
"$work/seal" genkey "$work/other.key" || exit 1

# Unique values, in clear and in base64 (the form Secrets are kept in).
CLEAR="clear-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
SEALED="sealed-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
CLEAR_B64="$(printf %s "$CLEAR" | base64 -w0)"
SEALED_B64="$(printf %s "$SEALED" | base64 -w0)"
sha() { printf %s "$1" | sha256sum | cut -c1-64; }
blob="$("$work/seal" seal "$STATE/identity/node.key" dev1 default sealed-secret token "$SEALED_B64")" || exit 1
wrong="$("$work/seal" seal "$work/other.key" dev1 default wrong-secret token "$SEALED_B64")" || exit 1

cat >"$DEV_MANIFESTS/app.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata: {name: clear-secret}
stringData: {token: $CLEAR}
---
apiVersion: v1
kind: Secret
metadata: {name: sealed-secret}
sealedData: "$blob"
---
apiVersion: v1
kind: Pod
metadata: {name: app}
spec:
  containers:
  - name: main
    image: $IMG
    imagePullPolicy: IfNotPresent
    env:
    - name: TOKEN
      valueFrom: {secretKeyRef: {name: clear-secret, key: token}}
    - name: STOKEN
      valueFrom: {secretKeyRef: {name: sealed-secret, key: token}}
    command: ["sh", "-c", "h() { printf %s \"\$1\" | busybox sha256sum | cut -c1-64; }; echo \"env=\$(h \"\$TOKEN\") file=\$(h \"\$(cat /s/token)\") senv=\$(h \"\$STOKEN\") sfile=\$(h \"\$(cat /ss/token)\")\"; while true; do sleep 5; done"]
    volumeMounts:
    - {name: s, mountPath: /s, readOnly: true}
    - {name: ss, mountPath: /ss, readOnly: true}
  volumes:
  - name: s
    secret: {secretName: clear-secret}
  - name: ss
    secret: {secretName: sealed-secret}
YAML
expect="env=$(sha "$CLEAR") file=$(sha "$CLEAR") senv=$(sha "$SEALED") sfile=$(sha "$SEALED")"

ready_is() { [ "$(pod_field "$1" '.status.conditions[] | select(.type == "Ready") | .status')" = True ]; }
app_log() { device_exec "$DROVER_AGENT_BIN" logs --config "$DEV_CFG" app 2>/dev/null; }
log_count() { [ "$(app_log | grep -cF "$expect")" -ge "$1" ]; }
if wait_for "app Ready" 60 ready_is app; then ok "pod with secrets ready"; else bad "pod with secrets ready"; device_status | jq '.pods[] | select(.metadata.name=="app")'; tail -20 "$DEV_LOG"; fi
check "the pod sees both values, as env and as files" wait_for "values in the pod" 20 log_count 1

# Nowhere on disk under the state directory, nor in the agent's log (the secret volumes are
# tmpfs mounts in the device's mount namespace: this host view is the disk).
nowhere() { # [VALUE...], default: both values of part 1, clear and base64
  local v
  [ $# -gt 0 ] || set -- "$CLEAR" "$CLEAR_B64" "$SEALED" "$SEALED_B64"
  for v in "$@"; do
    if grep -rlaF -- "$v" "$STATE" "$DEV_LOG"; then return 1; fi
  done
  return 0
}
check "no secret value under the state directory or in the log" nowhere
check "desired.json keeps the sealed Secret sealed" grep -q '"sealedData"' "$STATE/desired.json"
check "no bundle config.json under the state directory" test -z "$(find "$STATE/pods" -name config.json)"
in_run() { device_exec cat "$DEV_DIR/run/secrets/desired-secrets.json" | grep -qF "$CLEAR_B64"; }
check "the clear Secret is kept on tmpfs (run dir)" in_run
bundle_env() { device_exec sh -c "cat $DEV_DIR/run/bundles/*/main/config.json" | grep -qF "TOKEN=$CLEAR"; }
check "the container's bundle (with its env) is on tmpfs" bundle_env

# A Secret sealed for another node's key: its pod fails with an error naming it; the rest runs.
cat >"$DEV_MANIFESTS/broken.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata: {name: wrong-secret}
sealedData: "$wrong"
---
apiVersion: v1
kind: Pod
metadata: {name: broken}
spec:
  containers:
  - name: main
    image: $IMG
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "cat /w/token; sleep 1000"]
    volumeMounts: [{name: w, mountPath: /w}]
  volumes:
  - {name: w, secret: {secretName: wrong-secret}}
YAML
broken_msg() { device_status | jq -r '.pods[] | select(.metadata.name=="broken") | [.status.reason, .status.message, (.status.containerStatuses[]?.state.waiting.message // "")] | join(" ")'; }
broken_named() { broken_msg | grep -q 'Secret default/wrong-secret: sealedData.*this node.s key'; }
check "a Secret sealed for another key: the pod's status names it" wait_for "broken pod error" 30 broken_named
echo "# broken pod: $(broken_msg)"
check "... with reason CreateContainerConfigError" grep -q CreateContainerConfigError <<<"$(broken_msg)"
check "... and the other pod still ready" ready_is app
check "... and the agent still running" test -n "$(device_agent_pid)"

# Power cut: tmpfs (run dir, secret volumes) gone; the pod comes back with both Secrets.
device_power_cut
device_start dev1 || tail -30 "$DEV_LOG"
check "after power cut, pod ready again" wait_for "app Ready after power cut" 60 ready_is app
check "after power cut, the pod sees both values again" wait_for "values after power cut" 30 log_count 2
check "after power cut, still no secret value on disk or in the log" nowhere

# Removing the pod and its Secrets: nothing remains on tmpfs either.
rm -f "$DEV_MANIFESTS/app.yaml" "$DEV_MANIFESTS/broken.yaml"
gone() { [ -z "$(pod_field app .metadata.name)" ] && [ -z "$(pod_field broken .metadata.name)" ]; }
check "pods removed" wait_for "pods removed" 60 gone
run_clean() { ! device_exec test -e "$DEV_DIR/run/secrets/desired-secrets.json"; }
check "no clear Secret left on tmpfs" run_clean
check "no bundle left on tmpfs" test -z "$(device_exec sh -c "ls $DEV_DIR/run/bundles 2>/dev/null")"
check "still no secret value on disk or in the log" nowhere

# Part 2: a Secret from the hub, sealed to the node's key in a signed desired state (what the
# hub's bridge publishes), as the link hands it to the supervisor: opened only in memory; the
# hub's document saved by the link (hub-desired.json) and desired.json hold it sealed.
SEAL_TOOL="$DROVER_BUILD_DIR/tests/tools/drover-test-seal"
hub_part() {
  local t
  for t in /usr/sbin/mosquitto mosquitto_pub openssl "$SEAL_TOOL"; do
    command -v "$t" >/dev/null || { echo "# SKIP hub part: $t missing"; return 0; }
  done
  device_power_cut # dev1 is done
  MQ_PORT="$(_registry_free_port)" || return 1
  mkdir -p "$work/mq" && chmod 755 "$work" "$work/mq"
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$MQ_PORT" >"$work/mq/mosquitto.conf"
  chmod 644 "$work/mq/mosquitto.conf"
  /usr/sbin/mosquitto -c "$work/mq/mosquitto.conf" >"$work/mq/broker.log" 2>&1 &
  MQ_PID=$!
  registry_on_exit "kill $MQ_PID 2>/dev/null"
  port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$MQ_PORT") 2>/dev/null; }
  wait_for "broker listening" 10 port_open || return 1
  openssl ecparam -name prime256v1 -genkey -noout -out "$work/hub.key" 2>/dev/null &&
    openssl ec -in "$work/hub.key" -pubout -out "$work/hub.pub" 2>/dev/null || return 1

  DEV_DIR="" # a new device (a prefix assignment would not outlive the call)
  DEVICE_SIGNING_PUB="$work/hub.pub" device_start dev2 "hub:
  broker: tcp://127.0.0.1:$MQ_PORT
  heartbeatSeconds: 1" || { tail -20 "$DEV_LOG"; return 1; }
  STATE="$DEV_DIR/state"
  "$work/seal" genkey "$STATE/identity/node.key" || return 1
  openssl ec -in "$STATE/identity/node.key" -pubout -out "$work/node2.pub" 2>/dev/null || return 1

  HUB="hub-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  HUB_B64="$(printf %s "$HUB" | base64 -w0)"
  local secret pod doc
  secret="$(printf '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"hub-secret","namespace":"default"},"data":{"token":"%s"}}' "$HUB_B64" |
    "$SEAL_TOOL" seal dev2 "$work/node2.pub")" || return 1
  check "the hub's Secret is sealed (no value in the document)" nowhere_in "$secret"
  pod='{"apiVersion":"v1","kind":"Pod","metadata":{"name":"hubapp","namespace":"default","uid":"uid-hubapp-1"},"spec":{"nodeName":"dev2","containers":[{"name":"main","image":"'"$IMG"'","imagePullPolicy":"IfNotPresent","env":[{"name":"HTOKEN","valueFrom":{"secretKeyRef":{"name":"hub-secret","key":"token"}}}],"command":["sh","-c","h() { printf %s \"$1\" | busybox sha256sum | cut -c1-64; }; echo \"henv=$(h \"$HTOKEN\") hfile=$(h \"$(cat /hs/token)\")\"; while true; do sleep 5; done"],"volumeMounts":[{"name":"hs","mountPath":"/hs","readOnly":true}]}],"volumes":[{"name":"hs","secret":{"secretName":"hub-secret"}}]}}'
  doc="$(printf '{"apiVersion":"drover/v1","kind":"NodeDesiredState","node":"dev2","generation":1,"pods":[%s],"configMaps":[],"secrets":[%s]}' "$pod" "$secret" |
    "$SEAL_TOOL" sign "$work/hub.key")" || return 1
  mosquitto_pub -h 127.0.0.1 -p "$MQ_PORT" -q 1 -r -t drover/v1/node/dev2/desired -m "$doc" || return 1

  local hexpect="henv=$(sha "$HUB") hfile=$(sha "$HUB")"
  hub_log() { device_exec "$DROVER_AGENT_BIN" logs --config "$DEV_CFG" hubapp 2>/dev/null | grep -qF "$hexpect"; }
  if wait_for "hubapp Ready" 60 ready_is hubapp; then ok "hub pod with a sealed Secret ready"; else bad "hub pod with a sealed Secret ready"; device_status | jq '.pods[]'; tail -20 "$DEV_LOG"; fi
  check "the hub pod sees the value, as env and as a file" wait_for "hub value" 20 hub_log
  check "hub-desired.json and desired.json keep it sealed" grep -q sealedData "$STATE/hub-desired.json" "$STATE/desired.json"
  check "the hub's value nowhere under the state directory or in the log" nowhere "$HUB" "$HUB_B64"
  # A hub whose broker has no TLS sends Secrets in clear: the link then keeps its document on
  # tmpfs (<runDir>/hub-desired.json), never in the state directory.
  local CL CL_B64
  CL="plainhub-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  CL_B64="$(printf %s "$CL" | base64 -w0)"
  doc="$(printf '{"apiVersion":"drover/v1","kind":"NodeDesiredState","node":"dev2","generation":2,"pods":[%s],"configMaps":[],"secrets":[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"hub-secret","namespace":"default"},"data":{"token":"%s"}}]}' "$pod" "$CL_B64" |
    "$SEAL_TOOL" sign "$work/hub.key")" || return 1
  mosquitto_pub -h 127.0.0.1 -p "$MQ_PORT" -q 1 -r -t drover/v1/node/dev2/desired -m "$doc" || return 1
  gen2() { [ "$(device_status | jq -r '.hub.generation')" = 2 ]; }
  check "a document with a clear Secret is applied" wait_for "generation 2" 20 gen2
  check "... and kept on tmpfs, not in the state directory" \
    device_exec sh -c "test -s '$DEV_DIR/run/hub-desired.json' && ! test -e '$STATE/hub-desired.json'"
  check "... the clear value nowhere under the state directory or in the log" nowhere "$CL" "$CL_B64"
  # A power cut wipes that tmpfs copy; the applied generation is kept on disk, so the older
  # generation-1 document, replayed, is still refused after the reboot.
  local gen1doc
  gen1doc="$(printf '{"apiVersion":"drover/v1","kind":"NodeDesiredState","node":"dev2","generation":1,"pods":[%s],"configMaps":[],"secrets":[%s]}' "$pod" "$secret" |
    "$SEAL_TOOL" sign "$work/hub.key")" || return 1
  mosquitto_pub -h 127.0.0.1 -p "$MQ_PORT" -q 1 -r -t drover/v1/node/dev2/desired -m "$gen1doc" || return 1
  device_power_cut
  device_start dev2 || { tail -20 "$DEV_LOG"; return 1; }
  replay_refused() { grep -q "generation 1 is older than the applied 2" "$DEV_LOG"; }
  check "after a reboot an older document is still refused (the applied generation is on disk)" \
    wait_for "replay refused" 20 replay_refused
  check "... and not applied" test "$(device_status | jq -r '.hub.generation')" = 2
  # Sealed again (generation 3): back in the state directory, the tmpfs copy gone.
  doc="$(printf '{"apiVersion":"drover/v1","kind":"NodeDesiredState","node":"dev2","generation":3,"pods":[%s],"configMaps":[],"secrets":[%s]}' "$pod" "$secret" |
    "$SEAL_TOOL" sign "$work/hub.key")" || return 1
  mosquitto_pub -h 127.0.0.1 -p "$MQ_PORT" -q 1 -r -t drover/v1/node/dev2/desired -m "$doc" || return 1
  gen3() { [ "$(device_status | jq -r '.hub.generation')" = 3 ]; }
  check "sealed again: applied" wait_for "generation 3" 20 gen3
  check "... kept in the state directory, the tmpfs copy removed" \
    device_exec sh -c "test -s '$STATE/hub-desired.json' && ! test -e '$DEV_DIR/run/hub-desired.json'"
  # Without the node's key (a device that lost its identity), the container cannot start
  # again and the pod says why; the agent lives.
  check "hubapp ready again" wait_for "hubapp Ready again" 60 ready_is hubapp
  rm -f "$STATE/identity/node.key"
  device_exec kill -9 "$(pod_field hubapp '.status.containerStatuses[0].pid')"
  nokey() { pod_field hubapp '[.status.message, (.status.containerStatuses[0].state.waiting.message // "")] | join(" ")' | grep -q 'Secret default/hub-secret: sealedData: .*not enrolled'; }
  check "no node key: the pod's status names the Secret and says why" wait_for "no key" 60 nokey
  check "... and the agent still running" test -n "$(device_agent_pid)"
}
nowhere_in() { ! grep -qF -e "$HUB" -e "$HUB_B64" <<<"$1"; }
hub_part || bad "hub part set-up"

echo "agent secrets tests: $fails failed"
[ "$fails" -eq 0 ]
