#!/usr/bin/env bash
# The device agent's footprint (issue 19): prints figures, asserts nothing about their values.
# Run as root after a build:
#   DROVER_BUILD_DIR=build tests/bench/footprint.sh
# 1. the stripped drover-agent of the device build (MinSizeRel, cmake/DroverDevice.cmake) for
#    x86_64, arm64 and armhf beside the target (< 512 KiB; system libraries excluded): the file
#    and what its loadable segments hold, and how far the code and RELRO data end below the
#    boundary past which the file grows by a whole segment alignment step (the margin). The
#    build directories come from FOOTPRINT_X86_64_DIR, FOOTPRINT_ARM64_DIR and
#    FOOTPRINT_ARMHF_DIR (default build-min, build-arm64 and build-armhf at the top of the tree;
#    without build-min, DROVER_BUILD_DIR/footprint-minsizerel); a missing one is configured and
#    built (the agent only), except the cross ones in short mode, which are then skipped and
#    said so.
# 2. the agent's private memory (Private_Clean + Private_Dirty of /proc/PID/smaps), idle,
#    enrolled and connected to a hub over TLS (the hub's secure default: TLS broker, a device
#    enrolled with a bootstrap token; tests/integration/lib/fleet.sh, FLEET_SECURE=1), split by
#    mapping: our binary, libc (and the loader), Paho, OpenSSL, mbedTLS, other libraries, heap,
#    the threads' stacks (found from each thread's stack pointer in /proc/PID/task/TID/syscall),
#    other anonymous memory. The device runs the native MinSizeRel agent of 1.; beside it, in
#    the same run, the baseline: the agent of FOOTPRINT_BASE_BUILD (default /work/base/build,
#    main before issue 19, if it is there) enrolled the same way.
# 3. per pod: what each agent's private memory grows by with 10 pods Running on its device
#    (3 in short mode; one busybox image from fleet.sh's registry, CNI network).
# BENCH_SHORT=1 (CI): the same, the idle wait shortened; exits non-zero when a figure is
# missing or zero (tests/bench/CMakeLists.txt registers it as bench_footprint).
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/tests/integration"
DROVER_BUILD_DIR="$(cd "${DROVER_BUILD_DIR:-build}" && pwd)" || exit 1
export DROVER_BUILD_DIR
# shellcheck source=tests/integration/lib/fleet.sh
source "$here/lib/fleet.sh"
netns_enter "$0" "$@"
short="${BENCH_SHORT:-}"
missing=0
# The figure's absence fails the run (the CI contract: figures, not values).
miss() {
  echo "footprint: MISSING: $*" >&2
  missing=$((missing + 1))
}
kib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1024}'; }

# --- 1. sizes -------------------------------------------------------------------------------
target=$((512 * 1024))
# build_agent DIR [CMAKE-ARGS...]: configures DIR (MinSizeRel) if needed and builds the agent.
build_agent() {
  local dir="$1"
  shift
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=MinSizeRel "$@" >"$dir.configure.log" 2>&1 ||
      { echo "footprint: configure $dir failed (see $dir.configure.log)" >&2; return 1; }
  fi
  cmake --build "$dir" -j"$(nproc)" --target drover-agent >"$dir.build.log" 2>&1 ||
    { echo "footprint: build in $dir failed (see $dir.build.log)" >&2; return 1; }
}
# size_of ARCH DIR TRIPLET-PREFIX: prints the stripped size and the segments.
size_of() {
  local arch="$1" dir="$2" pre="$3" tmp file loaded=0 sz verdict code relro align
  tmp="$(mktemp)"
  "${pre}strip" -o "$tmp" "$dir/agent/drover-agent" || { rm -f "$tmp"; return 1; }
  file="$(stat -c %s "$tmp")"
  for sz in $("${pre}readelf" -lW "$tmp" | awk '$1 == "LOAD" { print $5 }'); do
    loaded=$((loaded + sz))
  done
  # The margin: the file ends about where the RELRO data ends, rounded up to the segment
  # alignment (4 KiB on x86_64 and armhf, 16 KiB on arm64), plus the little data after it; the
  # code (first LOAD) and the RELRO data growing past that boundary add a whole step to the
  # file at once (issue 19: arm64 sat 4 bytes below its step).
  read -r code relro align < <("${pre}readelf" -lW "$tmp" | awk '
    $1 == "LOAD" && !code { code = $5; align = $NF }
    $1 == "GNU_RELRO" { relro = $6 }
    END { print (code ? code : 0), (relro ? relro : 0), (align ? align : 0) }')
  code=$((code)) relro=$((relro)) align=$((align)) # readelf prints them in hex (0x...)
  rm -f "$tmp"
  [ "$file" -gt 0 ] || return 1
  verdict="yes"
  [ "$file" -lt "$target" ] || verdict="NO (over by $(kib $((file - target))) KiB)"
  printf '%-7s stripped %7d B (%5s KiB), in its segments %7d B (%5s KiB); target < 512 KiB: %s\n' \
    "$arch" "$file" "$(kib "$file")" "$loaded" "$(kib "$loaded")" "$verdict"
  if [ "$code" -gt 0 ] && [ "$align" -gt 0 ]; then
    local end=$((code + relro)) step
    step=$(((end + align - 1) / align * align))
    printf '        code + RELRO end at %d B; the file grows by %d KiB past %d B: %d B (%s KiB) of margin\n' \
      "$end" $((align / 1024)) "$step" $((step - end)) "$(kib $((step - end)))"
  fi
  echo "        (${pre}strip -o /tmp/a $dir/agent/drover-agent && stat -c %s /tmp/a)"
}
echo "== drover-agent, device build (MinSizeRel), stripped; system libraries excluded"
x64_dir="${FOOTPRINT_X86_64_DIR:-$root/build-min}"
# CI (no build-min): one of its own beside the build, kept for the next run.
[ -n "${FOOTPRINT_X86_64_DIR:-}" ] || [ -d "$x64_dir" ] || x64_dir="$DROVER_BUILD_DIR/footprint-minsizerel"
if [ -x "$x64_dir/agent/drover-agent" ] || build_agent "$x64_dir"; then
  size_of x86_64 "$x64_dir" "" || miss "x86_64 size"
else
  miss "x86_64 size (no build)"
fi
for a in arm64:aarch64-linux-gnu armhf:arm-linux-gnueabihf; do
  arch="${a%%:*}" triplet="${a#*:}"
  var="FOOTPRINT_$(tr '[:lower:]' '[:upper:]' <<<"$arch")_DIR"
  dir="${!var:-$root/build-$arch}"
  if [ ! -x "$dir/agent/drover-agent" ]; then
    if [ -n "$short" ]; then
      echo "$arch: skipped in short mode (no prebuilt $dir; set $var)"
      continue
    fi
    build_agent "$dir" -DCMAKE_TOOLCHAIN_FILE="$root/toolchains/$triplet.cmake" ||
      { miss "$arch size (no build)"; continue; }
  fi
  size_of "$arch" "$dir" "$triplet-" || miss "$arch size"
done

# --- 2. memory idle over TLS ----------------------------------------------------------------
# shellcheck disable=SC2034 # read by fleet.sh
FLEET_SECURE=1
export DEVICE_LOG_LEVEL=info FLEET_HUB_LOG_LEVEL=warn
agent_min="$x64_dir/agent/drover-agent"
base_build="${FOOTPRINT_BASE_BUILD:-/work/base/build}"
[ -x "$agent_min" ] || { echo "footprint: no $agent_min" >&2; exit 1; }
fleet_setup || exit 1
fleet_hub_start || { fleet_dump; exit 1; }

# classify PID: private KiB per mapping class, and the threads' stacks.
classify() {
  local pid="$1" sps="" t
  for t in /proc/"$pid"/task/*; do
    # /proc/PID/task/TID/syscall: "NR args... SP PC" for a thread blocked in a system call.
    sps="$sps $(awk 'NF >= 3 {print $(NF - 1)}' "$t/syscall" 2>/dev/null)"
  done
  awk -v sps="$sps" -v nthreads="$(find /proc/"$pid"/task -mindepth 1 -maxdepth 1 | wc -l)" '
    function hex(s,   i, c, v) { v = 0; s = tolower(s); sub(/^0x/, "", s)
      for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", substr(s, i, 1)) - 1; v = v * 16 + c }
      return v }
    BEGIN { n = split(sps, sp, " "); for (i = 1; i <= n; i++) spv[i] = hex(sp[i]) }
    /^[0-9a-f]+-[0-9a-f]+ / {
      split($1, r, "-"); lo = hex(r[1]); hi = hex(r[2]); name = $6
      if (name ~ /drover-agent/) cls = "binary (drover-agent)"
      else if (name ~ /\/(libc\.so|libc-|ld-linux)/) cls = "libc + loader"
      else if (name ~ /libpaho/) cls = "Paho"
      else if (name ~ /\/lib(ssl|crypto)\.so/) cls = "OpenSSL"
      else if (name ~ /libmbed/) cls = "mbedTLS"
      else if (name == "[heap]") cls = "heap"
      else if (name == "[stack]") cls = "main stack"
      else if (name ~ /^\//) cls = "other libraries"
      else {
        cls = "anonymous"
        for (i = 1; i <= n; i++) if (spv[i] >= lo && spv[i] < hi) { cls = "thread stacks"; stk[++ns] = (hi - lo) / 1024 }
      }
      next }
    /^Private_Clean:/ { pc[cls] += $2; tot += $2 }
    /^Private_Dirty:/ { pd[cls] += $2; tot += $2; dirty += $2 }
    END {
      printf "  private %d KiB (%.2f MiB; dirty %d KiB), %d threads\n", tot, tot / 1024, dirty, nthreads
      for (c in pc) if (pc[c] + pd[c] > 0) printf "    %-22s %6d KiB  (clean %5d, dirty %5d)\n", c, pc[c] + pd[c], pc[c], pd[c]
      s = ""; for (i = 1; i <= ns; i++) s = s " " stk[i] " KiB"
      if (ns) printf "    thread stack mappings:%s\n", s
      print "TOTAL " tot }' "/proc/$pid/smaps"
}
# measure NAME K BIN: starts device NAME with BIN, enrolled over TLS, waits until its Node is
# Ready and the agent idles, prints the split.
measured_pid=""
measure() {
  local name="$1" k="$2" bin="$3" pid out total
  measured_pid=""
  # shellcheck disable=SC2034 # read by device.sh when the device starts
  DROVER_AGENT_BIN="$bin"
  fleet_device_start "$name" "$k" || { fleet_dump; return 1; }
  fleet_wait "node $name Ready" 60 "/api/v1/nodes/$name" "$FLEET_JQ_READY" || return 1
  fleet_use "$name"
  pid="$(device_agent_pid)"
  [ -n "$pid" ] || return 1
  grep -q libpaho-mqtt3as "/proc/$pid/maps" || { echo "footprint: $name: no TLS Paho mapped" >&2; return 1; }
  # Idle: a few heartbeats after Ready.
  sleep "$([ -n "$short" ] && echo 3 || echo 15)"
  out="$(classify "$pid")"
  echo "$bin, enrolled, connected over TLS (ssl://), no pods, idle:"
  grep -v '^TOTAL' <<<"$out"
  total="$(awk '/^TOTAL/ {print $2}' <<<"$out")"
  echo "  command: awk '/^Private_(Clean|Dirty):/ {s += \$2} END {print s}' /proc/$pid/smaps_rollup -> $(private_kib "$pid") KiB"
  measured_pid="$pid"
  [ "${total:-0}" -gt 0 ]
}
private_kib() { awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s}' "/proc/$1/smaps_rollup"; }
# per_pod K PID: N pods pinned to device dK (the image of fleet.sh, cached after the first),
# Running and Ready; prints what the agent's private memory grew by per pod, over TLS.
per_pod() {
  local k="$1" pid="$2" before after i
  before="$(private_kib "$pid")"
  : >"$FLEET_TMP/pods$k.yaml"
  for i in $(seq 1 "$npods"); do
    cat >>"$FLEET_TMP/pods$k.yaml" <<YAML
---
apiVersion: v1
kind: Pod
metadata: {name: fp$k-$i, labels: {app: fp$k}}
spec:
  nodeSelector: {device: d$k}
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: $FLEET_IMG1, command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 5; done"]}
YAML
  done
  fleet_apply "$FLEET_TMP/pods$k.yaml" >/dev/null || return 1
  fleet_running "app=fp$k" "$npods" 120 || return 1
  sleep "$([ -n "$short" ] && echo 3 || echo 15)"
  after="$(private_kib "$pid")"
  [ -n "$before" ] && [ -n "$after" ] || return 1
  echo "  $npods pods Running: private $after KiB (idle $before KiB): $(((after - before) / npods)) KiB per pod (target < 64 KiB)"
}
echo "== drover-agent private memory, idle, enrolled, over TLS (target < 2 MiB = 2048 KiB)"
# A binary just linked sits in the page cache as dirty pages until written back, and smaps
# counts its mapped pages as Private_Dirty then: written back first, its code reads as clean.
sync
npods="$([ -n "$short" ] && echo 3 || echo 10)"
measure dev1 1 "$agent_min" || miss "memory of the MinSizeRel agent"
pid1="$measured_pid"
pid2=""
if [ -x "$base_build/agent/drover-agent" ]; then
  echo "-- baseline, same run:"
  measure dev2 2 "$base_build/agent/drover-agent" || miss "memory of the baseline agent"
  pid2="$measured_pid"
else
  echo "-- baseline: no $base_build/agent/drover-agent (FOOTPRINT_BASE_BUILD)"
fi
echo "== per pod, over TLS: $npods busybox pods (sh and sleep, CNI network) on each device"
if [ -n "$pid1" ]; then
  echo "$agent_min:"
  per_pod 1 "$pid1" || { fleet_dump; miss "memory per pod of the MinSizeRel agent"; }
fi
if [ -n "$pid2" ]; then
  echo "-- baseline, same run: $base_build/agent/drover-agent:"
  per_pod 2 "$pid2" || { fleet_dump; miss "memory per pod of the baseline agent"; }
fi
if [ "$missing" -gt 0 ]; then
  echo "footprint: $missing figure(s) missing" >&2
  exit 1
fi
