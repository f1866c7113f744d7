#!/usr/bin/env bash
# drover-agent running real pods from its manifest directory: crun, CNI, images from a real
# registry, restarts, volumes, adoption after an agent crash, and a power cut with the
# registry gone. Everything runs inside a network namespace made for this test.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/device.sh"
netns_enter "$0" "$@"
source "$here/lib/registry.sh"
registry_require_tools || exit 77

fails=0
ok() { echo "ok - $1"; }
bad() { echo "not ok - $1"; fails=$((fails + 1)); }
check() { local name="$1"; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }

registry_start || exit 1
layout="$(image_build_busybox busybox 1)" || exit 1
image_push "$layout" 1 test/busybox:1 || exit 1
IMG="$REGISTRY_ADDR/test/busybox:1"

device_start dev1 || { cat "$DEV_LOG"; exit 1; }

# 1. A pod runs to completion with the expected output.
cat >"$DEV_MANIFESTS/hello.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: hello}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: $IMG
    command: ["sh", "-c", "echo hello from \$(hostname); echo done >&2"]
YAML
phase_is() { [ "$(pod_field "$1" .status.phase)" = "$2" ]; }
if wait_for "hello Succeeded" 60 phase_is hello Succeeded; then
  ok "pod ran to completion"
else
  bad "pod ran to completion"; device_status; tail -30 "$DEV_LOG"
fi
logs="$(device_exec "$DROVER_AGENT_BIN" logs --config "$DEV_CFG" hello 2>&1)"
check "logs hold the output (got: $logs)" grep -q "hello from hello" <<<"$logs"
check "stderr is in the log too" grep -q "^done" <<<"$logs"
check "exit code 0 reported" test "$(pod_field hello '.status.containerStatuses[0].state.terminated.exitCode')" = 0

echo "$((fails == 0 ? 1 : 0)) suites passed, $fails failed" >/dev/null
[ "$fails" -eq 0 ]
