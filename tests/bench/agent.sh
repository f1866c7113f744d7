#!/usr/bin/env bash
# Agent benchmarks: prints figures, asserts nothing. Run as root after a build:
#   DROVER_BUILD_DIR=build tests/bench/agent.sh [RUNS]
# 1. drover-agent memory (Private_Clean + Private_Dirty from /proc/PID/smaps_rollup, and RSS),
#    idle and with 10 pods;
# 2. time from a manifest landing in the manifest directory to the container's first
#    instruction, image cached, side by side with bare `crun run` of an equivalent bundle;
# 3. the stripped agent binary's size (system libraries excluded).
# Everything runs in a network namespace made for the run (see tests/integration/lib).
set -uo pipefail
here="$(cd "$(dirname "$0")/../integration" && pwd)"
export DROVER_BUILD_DIR="$(cd "${DROVER_BUILD_DIR:-build}" && pwd)"
source "$here/lib/device.sh"
netns_enter "$0" "$@"
source "$here/lib/registry.sh"
registry_require_tools || exit 1
RUNS="${1:-10}"

registry_start >/dev/null || exit 1
layout="$(image_build_busybox busybox 1)" || exit 1
image_push "$layout" 1 test/busybox:1 || exit 1
IMG="$REGISTRY_ADDR/test/busybox:1"
DEVICE_LOG_LEVEL=warn device_start bench || exit 1

private_kib() { awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s}' "/proc/$1/smaps_rollup"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
ms_now() { date +%s%3N; }
# Polls for a file every 2 ms, for at most 60 s.
wait_file() { local n=0; while [ ! -e "$1" ]; do sleep 0.002; n=$((n + 1)); [ "$n" -lt 30000 ] || { echo "no $1" >&2; return 1; }; done; }
phase_count() { device_status | jq "[.pods[] | select(.status.phase == \"$1\")] | length"; }

sleep 2
apid="$(device_agent_pid)"
idle_priv="$(private_kib "$apid")"
idle_rss="$(rss_kib "$apid")"

# Warm the image cache, then 10 pods on the pod network.
for i in $(seq 1 10); do
  cat >"$DEV_MANIFESTS/.p$i.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: idle-$i}
spec:
  containers: [{name: c, image: $IMG, command: ["sleep", "3600"]}]
YAML
  mv "$DEV_MANIFESTS/.p$i.yaml" "$DEV_MANIFESTS/p$i.yaml"
done
running10() { [ "$(phase_count Running)" -eq 10 ]; }
wait_for "10 pods running" 120 running10 || { device_status | jq '.pods[].status.phase'; exit 1; }
sleep 6 # one status/usage cycle
pods_priv="$(private_kib "$apid")"
pods_rss="$(rss_kib "$apid")"
rm -f "$DEV_MANIFESTS"/p*.yaml
none() { [ "$(device_status | jq '.pods | length')" -eq 0 ]; }
wait_for "pods gone" 120 none || exit 1

# Start latency, agent: a hostNetwork pod (no CNI) whose first instruction marks a file on
# a hostPath volume; and the same on the pod network (bridge + host-local via CNI).
mkdir -p "$DEV_DIR/mark"
agent_run() { # NET(host|pod) I -> ms
  local net="$1" i="$2" hn="false" f="$DEV_DIR/mark/agent-$1-$2"
  [ "$net" = host ] && hn=true
  cat >"$DEV_MANIFESTS/.lat.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: lat-$net-$i}
spec:
  hostNetwork: $hn
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: $IMG
    command: ["sh", "-c", "touch /mark/agent-$net-$i; exec sleep 3600"]
    volumeMounts: [{name: mark, mountPath: /mark}]
  volumes: [{name: mark, hostPath: {path: $DEV_DIR/mark}}]
YAML
  local t0 t1
  t0="$(ms_now)"
  mv "$DEV_MANIFESTS/.lat.yaml" "$DEV_MANIFESTS/lat.yaml"
  wait_file "$f" || return 1
  t1="$(ms_now)"
  echo $((t1 - t0))
  rm -f "$DEV_MANIFESTS/lat.yaml"
  wait_for "pod gone" 60 none >/dev/null
}

# Bare crun: the config.json the agent generated for the same pod (seccomp, capabilities,
# masked paths, mounts), on a plain copy of the image's files, host network, no cgroups.
bundle="$DEV_DIR/bare"
mkdir -p "$bundle/rootfs"
for l in $(image_layers "$layout" 1); do
  tar -xzf "$layout/blobs/sha256/${l#sha256:}" -C "$bundle/rootfs" 2>/dev/null || tar -xf "$layout/blobs/sha256/${l#sha256:}" -C "$bundle/rootfs"
done
capture_config() { # copies a running latency pod's config.json, then stops the pod
  cat >"$DEV_MANIFESTS/.cap.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: capture}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: $IMG
    command: ["sh", "-c", "touch /mark/capture; exec sleep 3600"]
    volumeMounts: [{name: mark, mountPath: /mark}]
  volumes: [{name: mark, hostPath: {path: $DEV_DIR/mark}}]
YAML
  mv "$DEV_MANIFESTS/.cap.yaml" "$DEV_MANIFESTS/cap.yaml"
  wait_file "$DEV_DIR/mark/capture" || return 1
  cp "$(ls "$DEV_DIR"/state/pods/*/containers/c/config.json | head -n 1)" "$bundle/agent-config.json"
  rm -f "$DEV_MANIFESTS/cap.yaml"
  wait_for "capture pod gone" 60 none >/dev/null
}
capture_config || exit 1
# Same process and security settings; the pod's own files and namespaces are gone, so its
# /etc binds and namespace paths are dropped (new namespaces instead).
jq --arg r "$bundle/rootfs" --arg pd "$DEV_DIR/state/pods" '
    .root.path = $r
  | .process.args = ["sh", "-c", "touch /mark/bare-$ID; exec sleep 3600"]
  | .mounts |= map(select((.source // "") | startswith($pd) | not))
  | .linux.namespaces |= map(del(.path))' "$bundle/agent-config.json" >"$bundle/c.json"
crun_run() { # I -> ms
  local i="$1" f="$DEV_DIR/mark/bare-$1"
  jq --arg i "$i" '.process.args[2] |= sub("\\$ID"; $i)' "$bundle/c.json" >"$bundle/config.json"
  local t0 t1
  t0="$(ms_now)"
  device_exec crun --root "$DEV_DIR/bare-root" --cgroup-manager=disabled run -d --bundle "$bundle" "bare-$i" \
    </dev/null >/dev/null 2>"$bundle/crun.err" || { cat "$bundle/crun.err" >&2; return 1; }
  wait_file "$f" || return 1
  t1="$(ms_now)"
  echo $((t1 - t0 - nsenter_ms))
  device_exec crun --root "$DEV_DIR/bare-root" --cgroup-manager=disabled delete -f "bare-$i" >/dev/null 2>&1
}
# What entering the device's namespaces costs the bare run (not part of crun's time).
t0="$(ms_now)"; for _ in 1 2 3 4 5; do device_exec true; done; nsenter_ms=$(( ($(ms_now) - t0) / 5 ))

declare -a A_HOST A_POD BARE
for i in $(seq 1 "$RUNS"); do
  A_HOST+=("$(agent_run host "$i")")
  A_POD+=("$(agent_run pod "$i")")
  BARE+=("$(crun_run "$i")")
done
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "p50 %d ms, min %d ms, max %d ms (%d runs)", a[int((NR+1)/2)], a[1], a[NR], NR}'; }
p50() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

strip -o "$DEV_DIR/agent.stripped" "$DROVER_AGENT_BIN"
size_b="$(stat -c %s "$DEV_DIR/agent.stripped")"

echo
echo "== drover-agent benchmarks ($(uname -m), $(nproc) cores)"
echo "memory, idle:        private $idle_priv KiB, RSS $idle_rss KiB"
echo "memory, 10 pods:     private $pods_priv KiB, RSS $pods_rss KiB"
echo "memory per pod:      private $(( (pods_priv - idle_priv) / 10 )) KiB  (target < 64 KiB; KubeEdge edgecore ~70 MB RSS)"
echo "start, bare crun run:             $(stats "${BARE[@]}")"
echo "start, agent, hostNetwork pod:    $(stats "${A_HOST[@]}")"
echo "start, agent, pod network (CNI):  $(stats "${A_POD[@]}")"
b=$(p50 "${BARE[@]}"); h=$(p50 "${A_HOST[@]}"); p=$(p50 "${A_POD[@]}")
awk -v b="$b" -v h="$h" -v p="$p" 'BEGIN {printf "ratio to bare crun (p50): hostNetwork %.2fx, pod network %.2fx (target 1.5x)\n", h/b, p/b}'
btype="$(grep -m1 '^CMAKE_BUILD_TYPE:' "$DROVER_BUILD_DIR/CMakeCache.txt" | cut -d= -f2)"
echo "binary, stripped:    $((size_b / 1024)) KiB, $btype build, libarchive's reader linked in (target < 512 KiB; a device build is MinSizeRel)"
