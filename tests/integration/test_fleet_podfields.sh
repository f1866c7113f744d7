#!/usr/bin/env bash
# imagePullSecrets end to end on a secure fleet: the hub ships a pod's pull Secret with it,
# sealed to its device; the agent opens it in its pull child and pulls from a registry behind
# htpasswd auth that the device has no credentials of its own for; a pod without the Secret is
# refused with ImagePullBackOff naming the missing Secret; the credential is never in a log.
# And a downwardAPI volume with resourceFieldRef through the hub. (lib/fleet.sh.)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/fleet.sh"
netns_enter "$0" "$@"
if ! fleet_require_tools; then
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
fi
fleet_setup || exit 1
# The only registry the device knows is the private one (plain HTTP, no credentials).
layout="$(image_build_busybox app 1)" || exit 1
registry_start --auth puller:pa55word || exit 1
REGISTRY_CREDS=puller:pa55word image_push "$layout" 1 private/app:1 || exit 1
PRIV="$REGISTRY_ADDR/private/app:1"
export FLEET_SECURE=1
fleet_start 1 || { fleet_dump; exit 1; }
echo "# fleet up: hub $FLEET_HUB, private registry $REGISTRY_ADDR"

auth="$(printf puller:pa55word | base64 -w0)"
cat >"$FLEET_TMP/private.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata: {name: regcred}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths":{"$REGISTRY_ADDR":{"auth":"$auth"}}}'
---
apiVersion: v1
kind: Pod
metadata: {name: private, labels: {app: private}}
spec:
  imagePullSecrets: [{name: regcred}]
  containers:
  - name: c
    image: $PRIV
    resources: {limits: {memory: 32Mi}}
    command: ["sh", "-c", "echo mem=\$(cat /info/mem) app=\$(cat /info/app); sleep 3600"]
    volumeMounts: [{name: info, mountPath: /info}]
  volumes:
  - name: info
    downwardAPI:
      items:
      - {path: mem, resourceFieldRef: {containerName: c, resource: limits.memory, divisor: 1Mi}}
      - {path: app, fieldRef: {fieldPath: "metadata.labels['app']"}}
---
apiVersion: v1
kind: Pod
metadata: {name: nosecret}
spec:
  containers:
  # Always: the image the other pod pulled is on the device, but this pod must pull it itself.
  - {name: c, image: $PRIV, imagePullPolicy: Always, command: ["sleep", "3600"]}
YAML
fleet_apply "$FLEET_TMP/private.yaml" >/dev/null
check "pod with imagePullSecrets Running from the private registry" \
  fleet_wait "private Running" 90 /api/v1/namespaces/default/pods/private '.status.phase == "Running"'
logs_have() { fleet_logs private 2>/dev/null | grep -q "mem=32 app=private"; }
check "downwardAPI files through the hub (resourceFieldRef, label)" wait_for "downward logs" 30 logs_have
check "pod without the Secret: ImagePullBackOff" \
  fleet_wait "nosecret back-off" 60 /api/v1/namespaces/default/pods/nosecret \
  '[.status.containerStatuses[]?.state.waiting.reason, .status.reason] | any(. == "ImagePullBackOff" or . == "ErrImagePull")'
msg="$(fleet_api /api/v1/namespaces/default/pods/nosecret | jq -r '[.status.containerStatuses[]?.state.waiting.message, .status.message] | map(select(. != null)) | join(" ")')"
check "its message says the registry needs credentials (got: $msg)" grep -q "needs credentials" <<<"$msg"
fleet_use dev1
check "the device log is there to look in" grep -q "pod=default/private" "$DEV_LOG"
sealed() { grep -rl '"regcred"' "$DEV_DIR/state" 2>/dev/null | xargs -r grep -l sealedData | grep -q .; }
check "the pull Secret reached the device sealed" sealed
check "the credential is in no device log" test "$(grep -c "pa55word\|$auth" "$DEV_LOG")" = 0
state_dir="$DEV_DIR/state"
check "nor under the device's state directory in clear" test "$(grep -rl "pa55word\|$auth" "$state_dir" 2>/dev/null | wc -l)" = 0
fleet_finish
