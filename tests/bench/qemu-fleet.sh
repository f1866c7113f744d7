#!/usr/bin/env bash
# Emulated ARM fleet benchmarks (issue 12): print figures and assert only that they were produced
# (exit 1 when one is missing or zero). Run as root after a build (build/: the hub, the CLI, the
# broker plugin, the host's agent; build-qemu/, the cross agents and the guests, is built on
# first use as by tests/qemu/run):
#   DROVER_BUILD_DIR=build tests/bench/qemu-fleet.sh [REPLICAS]      (default 6)
#   BENCH_SHORT=1: one arm64 device, 1 replica, 2 pods instead of 10 (tests/run-all's qemu stage
#   runs it so, after tests/qemu/run has built the guests)
# On the devices of tests/qemu/lib/vm.sh (QEMU, TCG: one CPU and VM_MEM MiB each; two arm64 and
# one armhf, booted one after the other) joined to a hub in its default secure configuration:
#   1. the stripped agent's size per architecture (the MinSizeRel device build);
#   2. `drover flash` on a blank Raspberry Pi OS-style image per architecture (vm_pi_image),
#      first run and unchanged second run;
#   3. per device: QEMU start -> kernel start -> agent started -> agent's first log line ->
#      Node Ready at the hub (kernel start: the guest's /proc/uptime set against this host's
#      clock, vm_kernel_t0);
#   4. apply -> all Running and Ready at the hub API, a Deployment of REPLICAS over the fleet,
#      first pull and image cached;
#   5. drover-agent memory inside each guest (Private_Clean + Private_Dirty, Private_Dirty, Pss
#      and Rss of /proc/PID/smaps_rollup, VmRSS), idle and with 10 pods on that device (brought
#      up one more per device at a time: see tests/qemu/README.md, "What does not work yet");
# and as baselines: the x86_64 agent of build/ on this host (a device of
# tests/integration/lib/fleet.sh joined to the same hub) with the same 10 pods, and the
# published memory figures of the K3s agent and KubeEdge's edgecore, quoted, not measured.
# Every wait is bounded (x DROVER_TEST_TIME_FACTOR); every QEMU, the hub, broker, registry and
# host device are stopped at exit, whatever happens. Environment: VM_MEM, DROVER_QEMU_DIR, and
# DROVER_QEMU_AGENT_ARM64 / _ARMHF as for tests/qemu; PODS (per device for the memory figures,
# default 10).
set -uo pipefail
src="$(cd "$(dirname "$0")/../.." && pwd)"
DROVER_BUILD_DIR="$(cd "${DROVER_BUILD_DIR:-build}" && pwd)" || exit 1
export DROVER_BUILD_DIR
# shellcheck source=../qemu/lib/vm.sh disable=SC1091
source "$src/tests/qemu/lib/vm.sh"
vm_netns_enter "$0" "$@"
trap 'exit 130' INT TERM # (the EXIT trap of the fixtures stops everything)
NAME=qemu-fleet.sh
source "$src/tests/bench/figures.sh"
if [ "$BENCH_SHORT" = 1 ]; then
  REPLICAS="${1:-1}"
  PODS="${PODS:-2}"
  archs="arm64"
  nodes="arm64-a"
else
  REPLICAS="${1:-6}"
  PODS="${PODS:-10}"
  archs="arm64 armhf"
  nodes="arm64-a arm64-b armhf-a"
fi
vm_require_tools || exit 1
[ -x "$DROVER_AGENT_BIN" ] || { echo "qemu-fleet: no $DROVER_AGENT_BIN (the baseline): build drover-agent" >&2; exit 1; }
t_bench="$(fleet_ms)"
say() { printf '# %s\n' "$*"; }
kib() { awk -v b="$1" 'BEGIN {printf "%.1f KiB", b / 1024}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.2f MiB", k / 1024}'; }
secs() { awk -v m="$1" 'BEGIN {printf "%.2f s", m / 1000}'; }

say "building (or finding up to date) the agents and guests in $VM_DIR_ROOT"
# Both guests even for one device: the multi-arch test image is made of their busybox.
vm_guest arm64 || exit 1
vm_guest armhf || exit 1
FLEET_HUB_LOG_LEVEL=warn vm_fleet_setup || { vm_dump; exit 1; }
say "hub $FLEET_HUB, broker port $FLEET_BROKER_PORT, registry $REGISTRY_ADDR (guests: $VM_REGISTRY)"

# ---- 1. sizes ----
declare -A strip_of=([arm64]=aarch64-linux-gnu-strip [armhf]=arm-linux-gnueabihf-strip [x86_64]=strip)
declare -A size_b build_of
for a in $archs x86_64; do
  bin="${VM_AGENT[$a]:-$DROVER_AGENT_BIN}"
  "${strip_of[$a]}" -o "$VM_TMP/agent-$a.stripped" "$bin" || exit 1
  size_b[$a]="$(stat -c %s "$VM_TMP/agent-$a.stripped")"
  cache="$(dirname "$(dirname "$bin")")/CMakeCache.txt"
  build_of[$a]="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$cache" 2>/dev/null)"
  build_of[$a]="${build_of[$a]:-given}"
done

# ---- 2. drover flash ----
# A blank image per architecture (the guest's root tree: 401 MiB, sparse) and a bootstrap token
# the CLI checks with the hub, as a user's flash would.
flashdir="$VM_TMP/flash"
mkdir -p "$flashdir/agents"
for a in $archs; do cp "${VM_AGENT[$a]}" "$flashdir/agents/drover-agent-$a"; done
install -m 600 /dev/null "$flashdir/token"
"$FLEET_CLI" token create --uses 10 --ttl 1h --labels fleet=flash --description "flash bench" \
  >"$flashdir/token" || exit 1
declare -A flash_ms flash_line
for a in $archs; do
  vm_pi_image "$a" "$flashdir/$a.img" || { echo "cannot make a Pi OS-style image" >&2; exit 1; }
  for run in 1 2; do
    t0="$(fleet_ms)"
    timeout $((120 * FLEET_TF)) "$FLEET_CLI" flash --agent-dir "$flashdir/agents" \
      --hub-url "https://10.0.2.2:${FLEET_HUB##*:}" --broker "ssl://10.0.2.2:$FLEET_BROKER_PORT" \
      --token-file "$flashdir/token" --ca-fingerprint "$FLEET_FINGERPRINT" \
      --node-name "pi-{serial}" "$flashdir/$a.img" >"$flashdir/out" 2>"$flashdir/err" ||
      { cat "$flashdir/out" "$flashdir/err" >&2; exit 1; }
    flash_ms[$a.$run]=$(($(fleet_ms) - t0))
    flash_line[$a.$run]="$(sed "s|^$flashdir/||" "$flashdir/out" | tail -n 1)"
  done
  rm -f "$flashdir/$a.img"
done

# The nodes' Ready condition every 0.5 s, to say which phases saw a node NotReady (an agent
# silent for longer than the hub's node grace, 10 s).
ready_log="$VM_TMP/ready.log"
watch_nodes() {
  while :; do
    fleet_api /api/v1/nodes 2>/dev/null | jq -r --arg t "$(fleet_ms)" \
      '.items[] | "\($t) \(.metadata.name) \([.status.conditions[]? | select(.type == "Ready") | .status] | join(""))"' \
      >>"$ready_log" 2>/dev/null
    sleep 0.5
  done
}
# notready_in T0 T1: the nodes seen NotReady between T0 and T1 (ms), with about how long.
notready_in() {
  awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b && $3 != "True" {n[$2]++}
    END {for (k in n) {printf "%s%s ~%.1f s", s, k, n[k] * 0.5; s = ", "}; if (!s) printf "none"}' "$ready_log"
}

# ---- 3. boot: one device after the other ----
declare -A arch_of=([arm64-a]=arm64 [arm64-b]=arm64 [armhf-a]=armhf)
declare -A t_kernel t_kerr t_started t_log t_ready
for n in $nodes; do
  say "booting $n (${arch_of[$n]})"
  vm_device_start "$n" "${arch_of[$n]}" || { vm_dump; exit 1; }
  vm_wait_console "$n" "the agent's first log line" 180 'ts=[^ ]+ level=' || { vm_dump; exit 1; }
  log_ms=$((${VM_T0[$n]} + VM_WAIT_MS))
  FLEET_POLL=0.05 fleet_wait "$n Ready" 240 "/api/v1/nodes/$n" "$FLEET_JQ_READY" || { vm_dump; exit 1; }
  ready_ms="$(fleet_ms)"
  vm_kernel_t0 "$n" || { vm_dump; exit 1; }
  t_kernel[$n]=$((VM_KERNEL_T0 - ${VM_T0[$n]}))
  t_kerr[$n]=$VM_KERNEL_T0_ERR
  # guest/rc prints the guest's uptime when it starts the agent: the guest's own clock.
  up="$(tr -d '\r' <"$(vm_console "$n")" | sed -n 's/^drover-guest: starting .* \([0-9.]*\)s$/\1/p' | head -n 1)"
  t_started[$n]="$(awk -v u="${up:-0}" 'BEGIN {printf "%d", u * 1000}')"
  t_log[$n]=$((log_ms - VM_KERNEL_T0))
  t_ready[$n]=$((ready_ms - VM_KERNEL_T0))
done

watch_nodes &
registry_on_exit "kill $! 2>/dev/null"

# ---- 5a. memory, idle ----
# agent_mem NAME: "PRIVATE PRIVATE_DIRTY PSS RSS VMRSS" in KiB, of the agent's main process in
# the guest: Private_Clean + Private_Dirty, Private_Dirty, Pss and Rss of smaps_rollup (a walk
# of its page tables), VmRSS of status (counters the kernel updates lazily: it may lag).
# shellcheck disable=SC2016 # (awk's fields)
MEM_AWK='/^Private_(Clean|Dirty):/ {v += $2} /^Private_Dirty:/ {d = $2} /^Pss:/ {p = $2} /^Rss:/ {r = $2}
  END {printf "%d %d %d %d ", v, d, p, r}'
agent_mem() {
  local pid
  pid="$(vm_agent_pid "$1")" && [ -n "$pid" ] || return 1
  vm_exec "$1" "awk '$MEM_AWK' /proc/$pid/smaps_rollup
    sed -n 's/^VmRSS:[[:space:]]*\\([0-9]*\\) kB/\\1/p' /proc/$pid/status"
}
host_mem() {
  awk "$MEM_AWK" "/proc/$1/smaps_rollup"
  awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}
sleep 6 # a few heartbeats and status reports since the last Ready
declare -A mem_idle mem_10
for n in $nodes; do mem_idle[$n]="$(agent_mem "$n" | tr '\n' ' ')"; done
declare -A mem_free_idle
for n in $nodes; do mem_free_idle[$n]="$(vm_exec "$n" "sed -n 's/^MemAvailable: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo")"; done

# ---- 4. apply -> Running, a Deployment over the fleet ----
deploy_yaml() { # NAME REPLICAS IMAGE [NODE-SELECTOR-DEVICE]
  cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1}
spec:
  replicas: $2
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec:
      terminationGracePeriodSeconds: 1
$([ -z "${4:-}" ] || printf '      nodeSelector: {device: "%s"}\n' "$4")
      containers:
      - name: c
        image: $3
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
        resources:
          requests: {cpu: 10m, memory: 4Mi}
          limits: {memory: 16Mi}
YAML
}
# apply_running FILE SELECTOR N SECS: ms from `drover apply` to N pods Running and Ready;
# APPLY_T0 and APPLY_T1 its bounds.
apply_running() {
  APPLY_T0="$(fleet_ms)"
  fleet_apply "$1" >/dev/null || return 1
  FLEET_POLL=0.05 fleet_running "$2" "$3" "$4" || return 1
  APPLY_T1="$(fleet_ms)"
}
spread_of() { fleet_pods "app=$1" | jq -r '[.items[].spec.nodeName] | group_by(.) | map("\(.[0]) \(length)") | join(", ")'; }
delete_gone() { # NAME
  fleet_drover delete deployment "$1" >/dev/null 2>&1
  fleet_wait "$1 pods gone" 180 "$(fleet_pods_path "app=$1")" '.items | length == 0'
}
deploy_yaml spread "$REPLICAS" "$VM_IMG_MULTI" >"$VM_TMP/spread.yaml"
say "apply: $REPLICAS replicas over the fleet (first pull)"
apply_running "$VM_TMP/spread.yaml" app=spread "$REPLICAS" 600 || { vm_dump; exit 1; }
t_spread1=$((APPLY_T1 - APPLY_T0))
nr_spread1="$(notready_in "$APPLY_T0" "$APPLY_T1")"
spread1="$(spread_of spread)"
delete_gone spread || { vm_dump; exit 1; }
sleep 3 # the devices stop their containers after the hub forgets the pods
say "apply: $REPLICAS replicas over the fleet (image cached)"
apply_running "$VM_TMP/spread.yaml" app=spread "$REPLICAS" 600 || { vm_dump; exit 1; }
t_spread2=$((APPLY_T1 - APPLY_T0))
nr_spread2="$(notready_in "$APPLY_T0" "$APPLY_T1")"
spread2="$(spread_of spread)"
delete_gone spread || { vm_dump; exit 1; }
sleep 3

# ---- 5b. memory with PODS pods on each device ----
# One more replica per device at a time, the three devices together: the agent starts every
# new pod of a desired state in one pass of its loop, without heartbeats in between, and under
# TCG a pod takes seconds (CNI); ten at once keep it silent past the hub's node grace, the hub
# evicts them and the Deployment never settles.
say "$PODS pods on each device, one more per device at a time"
t0="$(fleet_ms)"
for r in $(seq 1 "$PODS"); do
  for n in $nodes; do
    deploy_yaml "ten-$n" "$r" "$VM_IMG_MULTI" "$n" >"$VM_TMP/ten-$n.yaml"
    fleet_apply "$VM_TMP/ten-$n.yaml" >/dev/null || exit 1
  done
  for n in $nodes; do
    fleet_running "app=ten-$n" "$r" 300 || { vm_dump; exit 1; }
  done
done
t_ten=$(($(fleet_ms) - t0))
nr_ten="$(notready_in "$t0" "$(fleet_ms)")"
sleep 6 # a status report with the pods' usage
for n in $nodes; do mem_10[$n]="$(agent_mem "$n" | tr '\n' ' ')"; done
declare -A mem_free_10
for n in $nodes; do mem_free_10[$n]="$(vm_exec "$n" "sed -n 's/^MemAvailable: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo")"; done
for n in $nodes; do delete_gone "ten-$n" || { vm_dump; exit 1; }; done

# ---- baseline: this build's x86_64 agent on the host, the same hub, the same PODS pods ----
say "baseline: the x86_64 agent of $DROVER_BUILD_DIR on this host"
DEVICE_LOG_LEVEL=info fleet_device_start x86-host 1 || { fleet_dump; exit 1; }
fleet_wait "x86-host Ready" 60 /api/v1/nodes/x86-host "$FLEET_JQ_READY" || { fleet_dump; exit 1; }
sleep 6
fleet_use x86-host
hpid="$(device_agent_pid)"
host_idle="$(host_mem "$hpid")"
deploy_yaml ten-host "$PODS" "$FLEET_IMG1" d1 >"$VM_TMP/ten-host.yaml"
apply_running "$VM_TMP/ten-host.yaml" app=ten-host "$PODS" 300 || { fleet_dump; exit 1; }
t_host10=$((APPLY_T1 - APPLY_T0))
sleep 6
host_10="$(host_mem "$hpid")"
delete_gone ten-host

# ---- the figures ----
mem_line() { # LABEL "PRIVATE DIRTY PSS RSS VMRSS"
  local v d p r vr
  read -r v d p r vr <<<"$2"
  printf '  %-26s private %-9s %-18s Pss %-9s Rss %-9s VmRSS %s\n' "$1" "$(mib "$v")" \
    "(dirty $(mib "$d"))" "$(mib "$p")" "$(mib "$r")" "$(mib "$vr")"
}
per_pod() { # "IDLE" "TEN"
  local v1 d1 r1 v2 d2 r2
  read -r v1 d1 _ r1 _ <<<"$1"
  read -r v2 d2 _ r2 _ <<<"$2"
  printf '  %-26s private %d KiB (dirty %d KiB), Rss %d KiB\n' "per pod" $(((v2 - v1) / PODS)) \
    $(((d2 - d1) / PODS)) $(((r2 - r1) / PODS))
}
cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo
echo "== Drover on emulated ARM devices ($(nproc) host cores, $cpu; QEMU $(qemu-system-aarch64 --version | sed -n '1s/.*version \([^ ]*\).*/\1/p'), TCG, 1 CPU and $VM_MEM MiB per device)"
echo "   (upper bounds: emulated CPUs on a shared 2-core machine; a Raspberry Pi runs its ARM code natively)"
echo
echo "stripped drover-agent (system libraries excluded):"
for a in $archs x86_64; do
  note=""
  [ "$a" = x86_64 ] && note="  (the host build, for comparison)"
  printf '  %-7s %8d bytes  %s  %s build%s\n' "$a" "${size_b[$a]}" "$(kib "${size_b[$a]}")" "${build_of[$a]}" "$note"
done
echo
echo "drover flash, one blank Raspberry Pi OS-style image (MBR, FAT boot, ext4 root; 401 MiB, sparse), wall time incl. the token check with the hub:"
for a in $archs; do
  printf '  %-7s first run %s, unchanged second run %s\n' "$a" "$(secs "${flash_ms[$a.1]}")" "$(secs "${flash_ms[$a.2]}")"
  printf '          drover says: %s\n          then: %s\n' "${flash_line[$a.1]}" "${flash_line[$a.2]}"
done
echo
echo "boot, one device at a time (kernel start: the guest's /proc/uptime against the host's clock):"
printf '  %-8s %-6s %-18s %-22s %-22s %s\n' device arch "QEMU->kernel" "kernel->agent started" "kernel->agent 1st log" "kernel->Node Ready (at the hub)"
for n in $nodes; do
  printf '  %-8s %-6s %-18s %-22s %-22s %s\n' "$n" "${arch_of[$n]}" "$(secs "${t_kernel[$n]}") ±${t_kerr[$n]}ms" \
    "$(secs "${t_started[$n]}")" "$(secs "${t_log[$n]}")" "$(secs "${t_ready[$n]}")"
done
echo
echo "apply -> all Running and Ready at the hub API, Deployment of $REPLICAS replicas (multi-arch busybox image):"
echo "  first pull on each device: $(secs "$t_spread1")   ($spread1; NotReady meanwhile: $nr_spread1)"
echo "  image cached:              $(secs "$t_spread2")   ($spread2; NotReady meanwhile: $nr_spread2)"
echo "  $PODS pods on each device, one more per device at a time ($(($(wc -w <<<"$nodes") * PODS)) pods, pod network): $(secs "$t_ten") (NotReady meanwhile: $nr_ten)"
echo
echo "drover-agent memory, main process (smaps_rollup: private = Private_Clean + Private_Dirty, Pss, Rss; status: VmRSS)."
echo "In a guest the agent is the only process that maps its libraries (libc, libcurl, mbedTLS...): their"
echo "pages count as its private memory there, shared with other processes on the host; dirty = its own data."
for n in $nodes; do
  echo " $n (${arch_of[$n]}, in the guest; MemAvailable $(mib "${mem_free_idle[$n]}") idle, $(mib "${mem_free_10[$n]}") with $PODS pods)"
  mem_line "idle (enrolled, no pods)" "${mem_idle[$n]}"
  mem_line "$PODS pods" "${mem_10[$n]}"
  per_pod "${mem_idle[$n]}" "${mem_10[$n]}"
done
echo " baseline, measured: x86-host (x86_64, ${build_of[x86_64]} build, on this host in a namespace, same hub; $PODS pods Running in $(secs "$t_host10"))"
mem_line "idle (enrolled, no pods)" "$host_idle"
mem_line "$PODS pods" "$host_10"
per_pod "$host_idle" "$host_10"
echo " published, not measured here:"
echo "  K3s agent: 275 MB (x86_64) / 268 MB (Raspberry Pi 4B) minimum RAM (k3s agent + containerd, K3s v1.26.5; docs.k3s.io/reference/resource-profiling)"
echo "  KubeEdge edgecore: \"memory footprint down to ~70MB\" (KubeEdge README)"
echo
echo "whole benchmark: $(fleet_elapsed "$t_bench") s"

# Produced, not judged: every figure above, the x86_64 baseline's included.
mem_figures() { # WHAT "PRIVATE DIRTY PSS RSS VMRSS"
  local v d p r vr
  read -r v d p r vr <<<"$2"
  bench_figure "$1: private" "$v"
  bench_figure "$1: dirty" "$d"
  bench_figure "$1: Pss" "$p"
  bench_figure "$1: Rss" "$r"
  bench_figure "$1: VmRSS" "$vr"
}
for a in $archs x86_64; do bench_figure "stripped agent $a" "${size_b[$a]}"; done
for a in $archs; do
  bench_figure "flash $a, first run" "${flash_ms[$a.1]}"
  bench_figure "flash $a, unchanged" "${flash_ms[$a.2]}"
done
for n in $nodes; do
  bench_figure "$n: QEMU -> kernel" "${t_kernel[$n]}"
  bench_figure "$n: kernel -> agent started" "${t_started[$n]}"
  bench_figure "$n: kernel -> first log line" "${t_log[$n]}"
  bench_figure "$n: kernel -> Ready" "${t_ready[$n]}"
  mem_figures "$n idle" "${mem_idle[$n]}"
  mem_figures "$n with $PODS pods" "${mem_10[$n]}"
  bench_figure "$n MemAvailable idle" "${mem_free_idle[$n]}"
  bench_figure "$n MemAvailable with $PODS pods" "${mem_free_10[$n]}"
done
bench_figure "apply -> Running, first pull" "$t_spread1"
bench_figure "apply -> Running, image cached" "$t_spread2"
bench_figure "$PODS pods on each device" "$t_ten"
bench_figure "baseline x86-host: $PODS pods Running" "$t_host10"
mem_figures "baseline x86-host idle" "$host_idle"
mem_figures "baseline x86-host with $PODS pods" "$host_10"
bench_finish
