#!/usr/bin/env bash
# The scheduler places a pod only where its image can run (issue 12): the hub reads the image's
# platforms from its registry (an index's entries, or a single image's config) and filters the
# nodes by os/architecture. On this x86 fleet (lib/fleet.sh: two amd64 devices), an arm64-only
# image stays Pending with the scheduler's reason and no device runs it; a multi-arch index
# with an amd64 entry runs.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/fleet.sh"
netns_enter "$0" "$@"
if ! fleet_require_tools; then
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
fi
fleet_setup || exit 1
fleet_start 2 || { fleet_dump; exit 1; }
echo "# fleet up: hub $FLEET_HUB"

# test/multi:1 is an index (linux/amd64, linux/arm64/v8, linux/arm/v6); test/arm64only:1 the
# arm64 image of it alone (a plain manifest: its platform is in its config).
image_push_multiarch test/multi:1 || exit 1
skopeo --insecure-policy copy -q --src-tls-verify=false --dest-tls-verify=false \
  "docker://$REGISTRY_ADDR/test/multi@$IMAGE_ARM64_DIGEST" "docker://$REGISTRY_ADDR/test/arm64only:1" || exit 1

deploy() { # NAME IMAGE
  cat >"$FLEET_TMP/$1.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1}
spec:
  replicas: 2
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: $2
        command: ["sh", "-c", "trap 'exit 0' TERM; cat /etc/drover-arch; while true; do sleep 0.5; done"]
YAML
  fleet_apply "$FLEET_TMP/$1.yaml" >/dev/null
}

deploy armonly "$REGISTRY_ADDR/test/arm64only:1"
unplaced='[.items[] | select(.metadata.deletionTimestamp == null)] as $p | ($p | length) == 2 and ($p | all((.spec.nodeName // "") == "" and ([.status.conditions[]? | select(.type == "PodScheduled" and .status == "False") | .message] | first // "" | test("image.s platforms"))))'
check "an arm64-only image is not placed on amd64 nodes: Pending, the scheduler says why" \
  fleet_wait "armonly unschedulable" 30 "$(fleet_pods_path app=armonly)" "$unplaced"
echo "# reason: $(fleet_pods app=armonly | jq -r '[.items[0].status.conditions[]? | select(.type == "PodScheduled") | .message][0]')"
check "no device runs it" test "$(fleet_devices_running armonly-)" -eq 0

deploy multi "$REGISTRY_ADDR/test/multi:1"
check "a multi-arch index with an amd64 entry runs: 2 Running" fleet_running app=multi 2 90
pod="$(fleet_pods app=multi | jq -r '.items[0].metadata.name')"
got="$(fleet_drover logs "$pod" 2>/dev/null | head -n 1)"
check "...the container runs the amd64 variant ($got)" test "$got" = amd64
check "the arm64-only pods are still Pending" \
  fleet_wait "armonly still unschedulable" 5 "$(fleet_pods_path app=armonly)" "$unplaced"

fleet_finish
