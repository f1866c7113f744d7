#!/usr/bin/env bash
# The dashboard at a fleet's size: prints figures and asserts only that they were produced (exit 1
# when one is missing or zero). Run as root after a build and `ports/debian/install-deps --browser`:
#   sudo DROVER_BUILD_DIR=build tests/bench/dashboard.sh [NODES ...]      (default: 100 5000)
#   BENCH_SHORT=1: one fleet of 20 nodes and 5 s of the live stream (CI: ctest -L e2e, bench_dashboard)
# For each size, a fresh drover-hub in its default configuration (HTTPS, tokens; its broker
# plain, as tests/bench/hub.sh has it, for the simulator), tests/bench/fleetsim connecting NODES
# simulated nodes (sim-00000...) and a Deployment of NODES x PODS_PER_NODE pods they report
# Running; then headless chromium (tests/e2e/scale/first-screen.mjs) signs in and opens the
# Nodes view: time to the first row and to the whole fleet counted, the JS heap (CDP
# Runtime.getHeapUsage after a GC) then and after LIVE_S seconds of the live stream, elements in
# the page, and the hub's memory. The sizes are printed side by side at the end.
# Environment: PODS_PER_NODE (default 1), LIVE_S (default 15), SIM_RATE (node connections per
# second, default 500). Everything runs in a network namespace of its own and listens on
# 127.0.0.1; every wait is bounded.
set -uo pipefail
NAME=dashboard.sh
source "$(dirname "$0")/lib.sh"
bench_netns_enter "$0" "$@"
E2E="$root/tests/e2e"
command -v node >/dev/null || bench_unmet "node missing"
[ -x "${DROVER_CHROMIUM:-/usr/bin/chromium}" ] && [ -d "$E2E/node_modules/playwright-core" ] ||
  bench_unmet "chromium or tests/e2e/node_modules missing: ports/debian/install-deps --browser"
SIZES=("$@")
if [ "$BENCH_SHORT" = 1 ]; then
  [ ${#SIZES[@]} -gt 0 ] || SIZES=(20)
  LIVE_S="${LIVE_S:-5}"
fi
[ ${#SIZES[@]} -gt 0 ] || SIZES=(100 5000)
PODS_PER_NODE="${PODS_PER_NODE:-1}"
LIVE_S="${LIVE_S:-15}"

ROWS=()
run_size() { # NODES
  local nodes=$1 pods=$(($1 * PODS_PER_NODE)) d="$tmp/run-$1" out
  mkdir -p "$d"
  echo "== $nodes simulated nodes, $pods pods =="
  bench_start_fleet "$d" "$nodes" || return 1
  bench_apply_deployment dash "$pods" || return 1

  out=$(cd "$E2E" && timeout 300 node scale/first-screen.mjs "$HUB" "$TOKEN" "$nodes" sim-00000 "$LIVE_S" 2>"$d/browser.err")
  if ! jq -e .firstRowMs <<<"$out" >/dev/null 2>&1; then
    echo "the browser run failed:"; tail -20 "$d/browser.err"; echo "$out" | tail -5; stop_all; return 1
  fi
  echo "browser: $out"
  ROWS+=("$(jq -r --arg rss "$(rss_mib "$hubpid")" \
    '[.nodes, .firstRowMs, .allMs, .heapMB, .heapLiveMB, .domNodes, $rss] | map(. // "?") | @tsv' <<<"$out")")
  stop_all
}

for n in "${SIZES[@]}"; do
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 20000 ] || { echo "bad size $n" >&2; exit 2; }
  run_size "$n" || { ROWS+=("$n	failed"); bench_missing "$n nodes: the run failed (above)"; }
done

echo
echo "== Nodes view, first screen (PODS_PER_NODE=$PODS_PER_NODE; heap after ${LIVE_S} s live) =="
printf '%-7s %-12s %-14s %-10s %-12s %-9s %s\n' nodes 'first row' 'all counted' 'JS heap' 'heap, live' elements 'hub RSS'
for r in "${ROWS[@]}"; do
  IFS=$'\t' read -r n fr all hp hl dom rss <<<"$r"
  [ "$fr" != failed ] || { printf '%-7s failed\n' "$n"; continue; }
  printf '%-7s %-12s %-14s %-10s %-12s %-9s %s\n' "$n" "$fr ms" "$all ms" "$hp MB" "$hl MB" "$dom" "$rss MiB"
  bench_figure "$n nodes: first row" "$fr"
  bench_figure "$n nodes: all counted" "$all"
  bench_figure "$n nodes: JS heap" "$hp"
  bench_figure "$n nodes: JS heap, live" "$hl"
  bench_figure "$n nodes: elements" "$dom"
  bench_figure "$n nodes: hub RSS" "$rss"
done
bench_finish
