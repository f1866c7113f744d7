#!/usr/bin/env bash
# The dashboard at a fleet's size: prints figures, asserts nothing. Run by hand after a build and
# `ports/debian/install-deps --browser` (not in CI):
#   DROVER_BUILD_DIR=build tests/bench/dashboard.sh [NODES ...]      (default: 100 5000)
# For each size, a fresh drover-hub in its default configuration (HTTPS, tokens; its broker
# plain, as tests/bench/hub.sh has it, for the simulator), tests/bench/fleetsim connecting NODES
# simulated nodes (sim-00000...) and a Deployment of NODES x PODS_PER_NODE pods they report
# Running; then headless chromium (tests/e2e/scale/first-screen.mjs) signs in and opens the
# Nodes view: time to the first row and to the whole fleet counted, the JS heap (CDP
# Runtime.getHeapUsage after a GC) then and after LIVE_S seconds of the live stream, elements in
# the page, and the hub's memory. The sizes are printed side by side at the end.
# Environment: PODS_PER_NODE (default 1), LIVE_S (default 15), SIM_RATE (node connections per
# second, default 500). Everything listens on 127.0.0.1; every wait is bounded.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="$(cd "${DROVER_BUILD_DIR:-$root/build}" && pwd)" || exit 1
HUB_BIN="$BUILD/hub/drover-hub"
SIM="$BUILD/tests/bench/fleetsim"
E2E="$root/tests/e2e"
for t in jq curl node; do command -v $t >/dev/null || { echo "dashboard.sh: $t missing" >&2; exit 1; }; done
[ -x "$HUB_BIN" ] && [ -x "$SIM" ] || { echo "dashboard.sh: build drover-hub and fleetsim first" >&2; exit 1; }
[ -x "${DROVER_CHROMIUM:-/usr/bin/chromium}" ] && [ -d "$E2E/node_modules/playwright-core" ] ||
  { echo "dashboard.sh: chromium or tests/e2e/node_modules missing: ports/debian/install-deps --browser" >&2; exit 1; }
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(100 5000)
PODS_PER_NODE="${PODS_PER_NODE:-1}"
LIVE_S="${LIVE_S:-15}"
SIM_RATE="${SIM_RATE:-500}"
ulimit -n "$(ulimit -Hn)" # Mosquitto (the hub's child) needs a descriptor per node
tmp=$(mktemp -d)
chmod 755 "$tmp" # the hub hands its broker directory to user mosquitto
hubpid= simpid=
stop_all() {
  [ -n "$simpid" ] && kill "$simpid" 2>/dev/null && wait "$simpid" 2>/dev/null
  if [ -n "$hubpid" ]; then
    kill "$hubpid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$hubpid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$hubpid" 2>/dev/null
    wait "$hubpid" 2>/dev/null
  fi
  hubpid= simpid=
}
trap 'stop_all; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }
rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }
# api PATH [CURL-ARGS...]
api() {
  local p=$1
  shift
  curl -sf --max-time 60 --cacert "$CA" -H "Authorization: Bearer $TOKEN" "$@" "$HUB$p"
}
# wait_until SECS CMD...: polls CMD every second, at most SECS times.
wait_until() {
  local secs=$1 i
  shift
  for i in $(seq 1 "$secs"); do "$@" && return 0; sleep 1; done
  return 1
}
ready_nodes() {
  local c
  c=$(api '/api/v1/nodes' | jq '[.items[] | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))] | length' 2>/dev/null)
  echo "${c:-0}"
}
running_pods() {
  local c
  c=$(api '/api/v1/namespaces/default/pods?fieldSelector=status.phase%3DRunning&limit=1' |
    jq '(.items | length) + (.metadata.remainingItemCount // 0)' 2>/dev/null)
  echo "${c:-0}"
}

ROWS=()
run_size() { # NODES
  local nodes=$1 pods=$(($1 * PODS_PER_NODE)) d="$tmp/run-$1" t0 out
  mkdir -p "$d"
  echo "== $nodes simulated nodes, $pods pods =="
  "$HUB_BIN" --data "$d/data" --listen 127.0.0.1:0 --no-broker-tls --log-level warn \
    >"$d/hub.out" 2>"$d/hub.err" &
  hubpid=$!
  HUB= BROKER=
  for _ in $(seq 1 200); do
    HUB=$(sed -n 's/^drover-hub: serving \(https:[^ ]*\)$/\1/p' "$d/hub.out")
    BROKER=$(sed -n 's/^drover-hub: broker \(tcp:[^ ]*\)$/\1/p' "$d/hub.out")
    [ -n "$HUB" ] && [ -n "$BROKER" ] && [ -s "$d/data/admin.token" ] && break
    sleep 0.05
  done
  [ -n "$HUB" ] && [ -n "$BROKER" ] || { echo "hub did not start:"; tail -5 "$d/hub.err"; stop_all; return 1; }
  CA="$d/data/pki/ca.crt"
  TOKEN="$(cat "$d/data/admin.token")"

  t0=$(now)
  "$SIM" --broker "$BROKER" --verify-key "$d/data/pki/signing.pub" --nodes "$nodes" --prefix sim- \
    --connect-rate "$SIM_RATE" --stats-ms 0 >"$d/sim.out" 2>"$d/sim.err" &
  simpid=$!
  all_ready() { [ "$(ready_nodes)" -ge "$nodes" ]; }
  wait_until $((nodes / 50 + 60)) all_ready ||
    { echo "only $(ready_nodes) of $nodes nodes Ready"; tail -5 "$d/hub.err"; stop_all; return 1; }
  echo "$nodes nodes Ready in $(since "$t0") s"
  t0=$(now)
  api /apis/drover.io/v1/apply -X POST -H 'Content-Type: application/json' -d "{
    \"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"dash\",\"namespace\":\"default\"},
    \"spec\":{\"replicas\":$pods,\"selector\":{\"matchLabels\":{\"app\":\"dash\"}},
     \"template\":{\"metadata\":{\"labels\":{\"app\":\"dash\"}},
      \"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"registry.local/dash:1\",
       \"resources\":{\"requests\":{\"cpu\":\"10m\",\"memory\":\"16Mi\"}}}]}}}}" >/dev/null ||
    { echo "apply failed"; stop_all; return 1; }
  all_running() { [ "$(running_pods)" -ge "$pods" ]; }
  wait_until $((pods / 20 + 60)) all_running ||
    { echo "only $(running_pods) of $pods pods Running"; stop_all; return 1; }
  echo "$pods pods Running in $(since "$t0") s; hub RSS $(rss_mib "$hubpid") MiB"

  out=$(cd "$E2E" && timeout 300 node scale/first-screen.mjs "$HUB" "$TOKEN" "$nodes" sim-00000 "$LIVE_S" 2>"$d/browser.err")
  if ! jq -e .firstRowMs <<<"$out" >/dev/null 2>&1; then
    echo "the browser run failed:"; tail -20 "$d/browser.err"; echo "$out" | tail -5; stop_all; return 1
  fi
  echo "browser: $out"
  ROWS+=("$(jq -r --arg rss "$(rss_mib "$hubpid")" \
    '[.nodes, .firstRowMs, .allMs, .heapMB, .heapLiveMB, .domNodes, $rss] | @tsv' <<<"$out")")
  stop_all
}

for n in "${SIZES[@]}"; do
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 20000 ] || { echo "bad size $n" >&2; exit 2; }
  run_size "$n" || ROWS+=("$n	failed")
done

echo
echo "== Nodes view, first screen (PODS_PER_NODE=$PODS_PER_NODE; heap after ${LIVE_S} s live) =="
printf '%-7s %-12s %-14s %-10s %-12s %-9s %s\n' nodes 'first row' 'all counted' 'JS heap' 'heap, live' elements 'hub RSS'
for r in "${ROWS[@]}"; do
  IFS=$'\t' read -r n fr all hp hl dom rss <<<"$r"
  [ "$fr" != failed ] || { printf '%-7s failed\n' "$n"; continue; }
  printf '%-7s %-12s %-14s %-10s %-12s %-9s %s\n' "$n" "$fr ms" "$all ms" "$hp MB" "$hl MB" "$dom" "$rss MiB"
done
