#!/usr/bin/env bash
# Agent benchmarks. Run as root after a build:
#   DROVER_BUILD_DIR=build tests/bench/agent.sh [RUNS]      (BENCH_SHORT=1: 3 runs, for CI)
# 1. drover-agent memory (Private_Clean + Private_Dirty from /proc/PID/smaps_rollup, and RSS),
#    idle and with 10 pods;
# 2. time from a manifest landing in the manifest directory to the container's first
#    instruction, image cached, for a hostNetwork pod and a pod on the CNI bridge, side by side
#    with bare `crun run` of the same bundle and with `podman run` of the same image;
#    where the agent's time goes (a breakdown from the files each step creates);
# 3. the disk writes (write requests, bytes, fsyncs) one pod start causes on the state
#    partition (an ext4 file system on a loop device, as on a device's SD card);
# 4. the stripped agent binary's size (system libraries excluded).
# Exits non-zero when a figure is missing or zero, or a baseline (bare crun) fails; podman is
# printed when it can run here, else why not. Everything runs in a network namespace made for
# the run (see tests/integration/lib).
set -uo pipefail
here="$(cd "$(dirname "$0")/../integration" && pwd)"
export DROVER_BUILD_DIR="$(cd "${DROVER_BUILD_DIR:-build}" && pwd)"
source "$here/lib/device.sh"
netns_enter "$0" "$@"
source "$here/lib/registry.sh"
registry_require_tools || exit 1
for t in losetup mkfs.ext4 strace; do
  command -v "$t" >/dev/null || { echo "agent.sh: $t missing" >&2; exit 1; }
done
RUNS="${1:-10}"
[ -z "${BENCH_SHORT:-}" ] || RUNS=3

fail() { echo "agent.sh: FAILED: $*" >&2; exit 1; }

registry_start >/dev/null || exit 1
layout="$(image_build_busybox busybox 1)" || exit 1
image_push "$layout" 1 test/busybox:1 || exit 1
IMG="$REGISTRY_ADDR/test/busybox:1"
DEVICE_STATE_EXT4=512M DEVICE_LOG_LEVEL=warn device_start bench || exit 1
STATE_LOOP="$(basename "$(cat "$DEV_DIR/state.loop")")"

private_kib() { awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s}' "/proc/$1/smaps_rollup"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# Polls for a file every 2 ms, for at most 60 s (the time comes from the file, not the poll).
wait_file() { local n=0; while [ ! -e "$1" ]; do sleep 0.002; n=$((n + 1)); [ "$n" -lt 30000 ] || { echo "no $1" >&2; return 1; }; done; }
phase_count() { device_status | jq "[.pods[] | select(.status.phase == \"$1\")] | length"; }
# ms between two epoch times in seconds (with fractions).
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", (b - a) * 1000}'; }
# Birth time (epoch s.ns) of a file in the device's mount namespace (the state partition and
# /run are mounted there).
born() { device_exec stat -c %.9W "$1"; }
mtime() { stat -c %.9Y "$1"; }

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
  terminationGracePeriodSeconds: 1
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

# The latency pod: its first instruction marks a file on a hostPath volume; the file's mtime
# is the container's first instruction, on the same clock as the landing time taken here.
mkdir -p "$DEV_DIR/mark"
pod_yaml() { # NAME HOSTNETWORK
  cat <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  hostNetwork: $2
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: $IMG
    command: ["sh", "-c", "touch /mark/$1; exec sleep 3600"]
    volumeMounts: [{name: mark, mountPath: /mark}]
  volumes: [{name: mark, hostPath: {path: $DEV_DIR/mark}}]
YAML
}
pod_uid() { device_status | jq -r --arg n "$1" '.pods[] | select(.metadata.name == $n) | .metadata.uid'; }
# The status file may list a pod a moment after its container ran: waits up to 10 s.
pod_uid_wait() {
  local uid n=0
  while uid="$(pod_uid "$1")"; [ -z "$uid" ]; do
    n=$((n + 1)); [ "$n" -lt 200 ] || { echo "pod $1 is not in the agent's status" >&2; return 1; }
    sleep 0.05
  done
  echo "$uid"
}
# Where the agent's time went, from the birth times of what each step creates (no tracing:
# it costs nothing): desired.json (inotify, read, parse, validate, record), the pod's etc/
# (sandbox: namespaces, CNI), the container's rootfs dir (image lookup; then the overlay
# mount), the bundle's config.json (spec built), crun's state dir (crun started).
declare -a BD_RECV BD_SANDBOX BD_IMAGE BD_SPEC BD_EXEC BD_CRUN BD_AGENT
breakdown() { # NAME T0 T1
  local uid s c r
  uid="$(pod_uid_wait "$1")" || return 1
  s="$DEV_DIR/state/pods/$uid"
  r="$DEV_DIR/run"
  c="$(device_exec sh -c "ls -d $r/crun/$uid-c" 2>/dev/null)" || { echo "breakdown: no crun state for $1" >&2; return 1; }
  local t_des t_etc t_root t_cfg t_crun
  t_des="$(born "$DEV_DIR/state/desired.json")"
  t_etc="$(born "$s/etc")"
  t_root="$(born "$s/containers/c/rootfs")"
  t_cfg="$(born "$r/bundles/$uid/c/config.json")"
  t_crun="$(born "$c")"
  BD_RECV+=("$(ms_between "$2" "$t_des")")
  BD_SANDBOX+=("$(ms_between "$t_des" "$t_etc")")
  BD_IMAGE+=("$(ms_between "$t_etc" "$t_root")")
  BD_SPEC+=("$(ms_between "$t_root" "$t_cfg")")
  BD_EXEC+=("$(ms_between "$t_cfg" "$t_crun")")
  BD_CRUN+=("$(ms_between "$t_crun" "$3")")
  BD_AGENT+=("$(ms_between "$2" "$t_cfg")")
}
agent_run() { # NET(host|pod) I -> ms
  local net="$1" i="$2" hn="false" name="lat-$1-$2"
  [ "$net" = host ] && hn=true
  pod_yaml "$name" "$hn" >"$DEV_MANIFESTS/.lat.yaml"
  local t0=$EPOCHREALTIME
  mv "$DEV_MANIFESTS/.lat.yaml" "$DEV_MANIFESTS/lat.yaml"
  wait_file "$DEV_DIR/mark/$name" || return 1
  local t1
  t1="$(mtime "$DEV_DIR/mark/$name")"
  ms_between "$t0" "$t1"
  rm -f "$DEV_MANIFESTS/lat.yaml"
  wait_for "pod gone" 60 none >/dev/null
}

# Bare crun: the config.json the agent generated for a hostNetwork pod (seccomp,
# capabilities, masked paths, mounts, namespaces), copied from the agent's bundle in /run
# while the pod runs, with crun invoked as the agent invokes it. Same: the overlay rootfs of
# the same image layers on the same state partition (a fresh upper/work per run, mounted
# before the clock starts), the same new pid/mount/cgroup namespaces, the same mounts. Differs:
# the pod's IPC namespace (which the agent's container joins) is gone, so the bare container
# makes a new one; the pod's resolv.conf is a copy in the bare bundle.
bundle="$DEV_DIR/state/bare"
capture_config() {
  pod_yaml capture true >"$DEV_MANIFESTS/.cap.yaml"
  mv "$DEV_MANIFESTS/.cap.yaml" "$DEV_MANIFESTS/cap.yaml"
  wait_file "$DEV_DIR/mark/capture" || return 1
  local uid
  uid="$(pod_uid_wait capture)" || return 1
  device_exec mkdir -p "$bundle" || return 1
  device_exec cp "$DEV_DIR/run/bundles/$uid/c/config.json" "$bundle/agent-config.json" || return 1
  device_exec cp "$DEV_DIR/state/pods/$uid/etc/resolv.conf" "$bundle/resolv.conf" || return 1
  # The overlay's layers, as the agent mounted them.
  device_exec findmnt -n -o OPTIONS "$DEV_DIR/state/pods/$uid/containers/c/rootfs" |
    tr ',' '\n' | sed -n 's/^lowerdir=//p' >"$DEV_DIR/bare-lower" || return 1
  [ -s "$DEV_DIR/bare-lower" ] || { echo "capture pod: no overlay rootfs" >&2; return 1; }
  rm -f "$DEV_MANIFESTS/cap.yaml"
  wait_for "capture pod gone" 60 none >/dev/null
}
capture_config || fail "baseline: cannot capture the agent's bundle"
device_exec sh -c "jq --arg r '$bundle/rootfs' --arg rc '$bundle/resolv.conf' '
    .root.path = \$r
  | .process.args = [\"sh\", \"-c\", \"touch /mark/bare-ID; exec sleep 3600\"]
  | .mounts |= map(if .destination == \"/etc/resolv.conf\" then .source = \$rc else . end)
  | .linux.namespaces |= map(del(.path))' '$bundle/agent-config.json' >'$bundle/c.json'" ||
  fail "baseline: cannot rewrite the agent's config.json"
device_exec jq -e '.process.args' "$bundle/c.json" >/dev/null || fail "baseline: empty config.json"
device_exec mkdir -p "$bundle/rootfs" "$DEV_DIR/run/bare-root"
# One bare run inside the device's namespaces: overlay, config, clock, crun run (as the
# agent runs it), clock printed; the mark file's mtime ends it.
cat >"$DEV_DIR/bare-run.sh" <<'SH'
set -e
b="$1" i="$2" root="$3" lower="$4"
rm -rf "$b/upper" "$b/work"; mkdir -p "$b/upper" "$b/work"
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$b/upper,workdir=$b/work" "$b/rootfs"
sed "s/bare-ID/bare-$i/" "$b/c.json" >"$b/config.json"
echo "$EPOCHREALTIME"
exec crun --root "$root" --cgroup-manager=disabled "--log=file:$b/crun.log" --log-format=json \
  run --detach --bundle "$b" --pid-file "$b/pid" "bare-$i" </dev/null >/dev/null 2>"$b/crun.err"
SH
crun_run() { # I -> ms
  local i="$1" t0 t1
  t0="$(device_exec bash "$DEV_DIR/bare-run.sh" "$bundle" "$i" "$DEV_DIR/run/bare-root" "$(cat "$DEV_DIR/bare-lower")")" ||
    { device_exec cat "$bundle/crun.err" >&2; device_exec umount "$bundle/rootfs" 2>/dev/null; return 1; }
  wait_file "$DEV_DIR/mark/bare-$i" || return 1
  t1="$(mtime "$DEV_DIR/mark/bare-$i")"
  ms_between "$t0" "$t1"
  device_exec crun --root "$DEV_DIR/run/bare-root" --cgroup-manager=disabled delete -f "bare-$i" >/dev/null 2>&1
  device_exec umount "$bundle/rootfs"
}

# podman run of the same image from the local OCI layout, with crun, host network, no
# cgroups, in the device's namespaces (its cgroup2 mount, as crun needs), storage on the same
# state partition and configuration private to this run (nothing of the host's is used).
pm_dir="$DEV_DIR/state/podman"
podman_why=""
cat >"$DEV_DIR/podman.sh" <<'SH'
# podman.sh DIR pull LAYOUT | run I IMAGE MARKDIR | rm I
d="$1" op="$2"; shift 2
export CONTAINERS_CONF="$d/containers.conf" CONTAINERS_REGISTRIES_CONF="$d/registries.conf"
P=(podman --root "$d/root" --runroot "$d/runroot" --storage-driver overlay)
case "$op" in
  pull) exec "${P[@]}" pull --signature-policy "$d/policy.json" -q "oci:$1:1" ;;
  run) echo "$EPOCHREALTIME"
       exec "${P[@]}" run -d --name "pm-$1" --cgroups=disabled --network=host -v "$3:/mark" \
         "$2" sh -c "touch /mark/podman-$1; exec sleep 3600" >/dev/null 2>"$d/err" ;;
  rm) exec "${P[@]}" rm -f -t 0 "pm-$1" ;;
esac
SH
podman_setup() {
  command -v podman >/dev/null || { podman_why="podman is not installed (ports/debian/install-deps installs it)"; return 1; }
  device_exec mkdir -p "$pm_dir" || return 1
  device_exec sh -c "cat >'$pm_dir/containers.conf'" <<CONF
[containers]
default_ulimits = []
[engine]
runtime = "crun"
cgroup_manager = "cgroupfs"
events_logger = "none"
CONF
  echo '{"default": [{"type": "insecureAcceptAnything"}]}' | device_exec sh -c "cat >'$pm_dir/policy.json'"
  device_exec touch "$pm_dir/registries.conf"
  local out
  out="$(device_exec bash "$DEV_DIR/podman.sh" "$pm_dir" pull "$layout" 2>&1)" ||
    { podman_why="podman pull failed: $(echo "$out" | tail -n 1)"; return 1; }
  PODMAN_IMG="$(echo "$out" | tail -n 1)"
  # One run to see that it works here at all; its reason is printed when it does not.
  if ! podman_run 0 >/dev/null; then
    podman_why="podman run failed: $(device_exec tail -n 1 "$pm_dir/err")"
    return 1
  fi
}
podman_run() { # I -> ms
  local i="$1" t0 t1
  t0="$(device_exec bash "$DEV_DIR/podman.sh" "$pm_dir" run "$i" "$PODMAN_IMG" "$DEV_DIR/mark")" || return 1
  wait_file "$DEV_DIR/mark/podman-$i" || return 1
  t1="$(mtime "$DEV_DIR/mark/podman-$i")"
  ms_between "$t0" "$t1"
  device_exec bash "$DEV_DIR/podman.sh" "$pm_dir" rm "$i" >/dev/null 2>&1
}
PODMAN=""
podman_setup && PODMAN=1 || echo "agent.sh: podman: $podman_why" >&2

declare -a A_HOST A_POD BARE PM
for i in $(seq 1 "$RUNS"); do
  v="$(agent_run host "$i")" || fail "agent run (hostNetwork) $i"
  A_HOST+=("$v")
  v="$(agent_run pod "$i")" || fail "agent run (pod network) $i"
  A_POD+=("$v")
  v="$(crun_run "$i")" || fail "baseline: bare crun run $i failed"
  BARE+=("$v")
  if [ -n "$PODMAN" ]; then
    v="$(podman_run "$i")" || fail "podman run $i failed after a first run worked: $(device_exec tail -n 1 "$pm_dir/err")"
    PM+=("$v")
  fi
done
# The breakdown: starts of their own (the runs above are in subshells), hostNetwork, then on
# the pod network for the CNI path's share.
# The agent's own CPU time (its thread; crun and the plugins are other processes) per pod
# start and stop, from /proc/PID/schedstat (ns): steadier than times on a loaded machine.
cpu_ns() { awk '{print $1}' "/proc/$apid/schedstat"; }
declare -a BH
bd_loop() { # HOSTNETWORK
  local i name t0 t1
  BD_RECV=() BD_SANDBOX=() BD_IMAGE=() BD_SPEC=() BD_EXEC=() BD_CRUN=() BD_AGENT=() BH=()
  for i in $(seq 1 "$RUNS"); do
    name="bd-$1-$i"
    pod_yaml "$name" "$1" >"$DEV_MANIFESTS/.lat.yaml"
    t0=$EPOCHREALTIME
    mv "$DEV_MANIFESTS/.lat.yaml" "$DEV_MANIFESTS/lat.yaml"
    wait_file "$DEV_DIR/mark/$name" || fail "breakdown run $name"
    t1="$(mtime "$DEV_DIR/mark/$name")"
    BH+=("$(ms_between "$t0" "$t1")")
    breakdown "$name" "$t0" "$t1" || fail "breakdown run $name: files missing"
    rm -f "$DEV_MANIFESTS/lat.yaml"
    wait_for "pod gone" 60 none >/dev/null || fail "breakdown pod $name did not go"
  done
}
bd_loop false
P_SANDBOX=("${BD_SANDBOX[@]}") P_AGENT=("${BD_AGENT[@]}")
cpu0="$(cpu_ns)"
bd_loop true
cpu_ms="$(awk -v a="$cpu0" -v b="$(cpu_ns)" -v n="$RUNS" 'BEGIN {printf "%.2f", (b - a) / n / 1e6}')"

# Disk writes of one hostNetwork pod start on the state partition: the loop device's write
# requests and sectors between two syncs (so the page cache's later writeback is counted
# too), and the fsyncs of the agent and its children (strace -c, attached only here).
disk_writes() {
  local name="disk" before after
  device_exec sync -f "$DEV_DIR/state"
  sleep 0.5
  device_exec sync -f "$DEV_DIR/state"
  before="$(awk '{print $5, $7}' "/sys/block/$STATE_LOOP/stat")"
  strace -f -c -e trace=fsync,fdatasync,syncfs,sync_file_range -o "$DEV_DIR/fsync.txt" -p "$apid" 2>/dev/null &
  local sp=$!
  sleep 0.5
  pod_yaml "$name" true >"$DEV_MANIFESTS/.lat.yaml"
  mv "$DEV_MANIFESTS/.lat.yaml" "$DEV_MANIFESTS/lat.yaml"
  wait_file "$DEV_DIR/mark/$name" || return 1
  local running
  running() { [ "$(device_status | jq -r '.pods[0].status.phase')" = Running ]; }
  wait_for "disk pod running" 30 running >/dev/null || return 1
  sleep 1
  kill -INT "$sp"; wait "$sp" 2>/dev/null
  device_exec sync -f "$DEV_DIR/state"
  after="$(awk '{print $5, $7}' "/sys/block/$STATE_LOOP/stat")"
  DW_REQ=$(( ${after% *} - ${before% *} ))
  DW_KIB=$(( (${after#* } - ${before#* }) / 2 ))
  DW_FSYNC="$(awk '$NF ~ /^(fsync|fdatasync|syncfs|sync_file_range)$/ {s += $4} END {print s + 0}' "$DEV_DIR/fsync.txt")"
  rm -f "$DEV_MANIFESTS/lat.yaml"
  wait_for "pod gone" 60 none >/dev/null
}
DW_REQ="" DW_KIB="" DW_FSYNC=""
disk_writes || fail "disk writes: the pod did not start"

strip -o "$DEV_DIR/agent.stripped" "$DROVER_AGENT_BIN"
size_b="$(stat -c %s "$DEV_DIR/agent.stripped")"

stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "p50 %.1f ms, min %.1f ms, max %.1f ms (%d runs)", a[int((NR+1)/2)], a[1], a[NR], NR}'; }
p50() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo
echo "== drover-agent benchmarks ($(uname -m), $(nproc) cores; state on ext4 on $STATE_LOOP)"
echo "memory, idle:        private $idle_priv KiB, RSS $idle_rss KiB"
echo "memory, 10 pods:     private $pods_priv KiB, RSS $pods_rss KiB"
echo "memory per pod:      private $(( (pods_priv - idle_priv) / 10 )) KiB  (target < 64 KiB; KubeEdge edgecore ~70 MB RSS)"
echo "start (command or manifest landing -> container's first instruction), image cached:"
echo "  bare crun run, same bundle:       $(stats "${BARE[@]}")"
echo "  agent, hostNetwork pod:           $(stats "${A_HOST[@]}")"
echo "  agent, pod network (CNI):         $(stats "${A_POD[@]}")"
if [ -n "$PODMAN" ] && [ "${#PM[@]}" -gt 0 ]; then
  echo "  podman run (crun, host network):  $(stats "${PM[@]}")"
else
  echo "  podman run:                       not measured: $podman_why"
fi
b=$(p50 "${BARE[@]}"); h=$(p50 "${A_HOST[@]}"); p=$(p50 "${A_POD[@]}")
echo "  CNI's cost (pod network - hostNetwork, p50): $(awk -v h="$h" -v p="$p" 'BEGIN {printf "%.1f", p - h}') ms"
awk -v b="$b" -v h="$h" -v p="$p" 'BEGIN {if (b <= 0) exit 1; printf "  ratio to bare crun (p50): hostNetwork %.2fx, pod network %.2fx (target 1.5x for hostNetwork)\n", h/b, p/b}' ||
  fail "baseline: bare crun p50 is $b ms"
echo "where a hostNetwork start goes (p50 of each step over ${#BD_RECV[@]} runs, from file birth times, which the kernel stamps at its tick: +-4 ms each; total p50 $(p50 "${BH[@]}") ms):"
echo "  manifest landing -> desired.json (inotify, parse, validate): $(p50 "${BD_RECV[@]}") ms"
echo "  -> pod sandbox ready (pod dir, namespaces, /etc files):      $(p50 "${BD_SANDBOX[@]}") ms"
echo "  -> container dir (image lookup):                             $(p50 "${BD_IMAGE[@]}") ms"
echo "  -> config.json (overlay mount, spec):                        $(p50 "${BD_SPEC[@]}") ms"
echo "  -> crun's state dir (crun exec and start-up):                $(p50 "${BD_EXEC[@]}") ms"
echo "  -> first instruction (crun: namespaces, mounts, exec):       $(p50 "${BD_CRUN[@]}") ms"
echo "  the agent's part (manifest landing -> config.json, crun's exec next): $(p50 "${BD_AGENT[@]}") ms"
echo "  the agent's own CPU per hostNetwork pod start and stop (schedstat, its thread only): $cpu_ms ms"
echo "the CNI path: sandbox step $(p50 "${P_SANDBOX[@]}") ms on the pod network against $(p50 "${BD_SANDBOX[@]}") ms with hostNetwork; the agent's part $(p50 "${P_AGENT[@]}") ms"
echo "disk writes, one hostNetwork pod start (state partition, until Running + 1 s):"
echo "  $DW_REQ write requests, $DW_KIB KiB written, $DW_FSYNC fsync calls by the agent and its children (target < 50 writes)"
btype="$(grep -m1 '^CMAKE_BUILD_TYPE:' "$DROVER_BUILD_DIR/CMakeCache.txt" | cut -d= -f2)"
echo "binary, stripped:    $((size_b / 1024)) KiB, $btype build (target < 512 KiB for the device build, MinSizeRel: tests/bench/footprint.sh)"

# Figures that must be there (their values are not judged here).
for f in idle_priv idle_rss pods_priv pods_rss b h p size_b DW_REQ DW_KIB cpu_ms; do
  v="${!f:-}"
  awk -v v="$v" 'BEGIN {exit !(v + 0 > 0)}' || fail "figure $f is missing or zero ('$v')"
done
[ -n "$DW_FSYNC" ] || fail "figure fsyncs is missing"
exit 0
