#!/usr/bin/env bash
# kubectl against the hub at a fleet's size: prints figures and asserts only that they were
# produced (exit 1 when one is missing or zero, the curl baseline included). Run as root after a
# build:
#   sudo DROVER_BUILD_DIR=build tests/bench/kubectl.sh [NODES ...]      (default: 100 2000)
#   BENCH_SHORT=1: one fleet of 20 nodes, each command timed 3 times (CI: bench_kubectl)
# For each size, a fresh drover-hub in its default configuration (HTTPS, tokens; its broker plain
# for the simulator, as tests/bench/hub.sh has it), tests/bench/fleetsim connecting NODES
# simulated nodes and a Deployment of NODES x PODS_PER_NODE pods they report Running; then,
# with the kubeconfig `drover kubeconfig` prints and kubectl 1.33 (KUBECTL=...), each timed
# RUNS times (the median printed):
#   get pods             a server-side Table (what kubectl shows)
#   get pods -o json     the plain list, decoded and printed by kubectl
#   get pods --chunk-size=500   the Table in pages of 500
#   curl list            the baseline: the same list over HTTPS without kubectl
# and the discovery requests kubectl makes with an empty cache (the aggregated form against the
# one request per group version it replaces), and the hub's memory. Everything runs in a network
# namespace of its own and listens on 127.0.0.1; every wait is bounded.
set -uo pipefail
NAME=kubectl.sh
source "$(dirname "$0")/lib.sh"
bench_netns_enter "$0" "$@"
CLI="$BUILD/cli/drover"
KUBECTL="${KUBECTL:-/usr/lib/google-cloud-sdk/bin/kubectl.1.33}"
[ -x "$CLI" ] || { echo "kubectl.sh: build the drover CLI first" >&2; exit 1; }
[ -x "$KUBECTL" ] || bench_unmet "no kubectl at $KUBECTL (set KUBECTL)"
SIZES=("$@")
if [ "$BENCH_SHORT" = 1 ]; then
  [ ${#SIZES[@]} -gt 0 ] || SIZES=(20)
  RUNS="${RUNS:-3}"
fi
[ ${#SIZES[@]} -gt 0 ] || SIZES=(100 2000)
PODS_PER_NODE="${PODS_PER_NODE:-1}"
RUNS="${RUNS:-5}"
# median_ms CMD...: runs CMD (output dropped) RUNS times; prints the median wall time in ms.
median_ms() {
  local i t0 t1 ts=()
  for i in $(seq 1 "$RUNS"); do
    t0=$(now)
    "$@" >/dev/null 2>&1 || { echo "failed"; return; }
    t1=$(now)
    ts+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%d", (b - a) * 1000}')")
  done
  printf '%s\n' "${ts[@]}" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

ROWS=()
run_size() { # NODES
  local nodes=$1 pods=$(($1 * PODS_PER_NODE)) d="$tmp/run-$1"
  mkdir -p "$d"
  echo "== $nodes simulated nodes, $pods pods =="
  bench_start_fleet "$d" "$nodes" || return 1
  bench_apply_deployment kb "$pods" || return 1

  HOME="$d" "$CLI" --hub "$HUB" --ca "$CA" --token "$TOKEN" kubeconfig >"$d/kubeconfig" \
    2>"$d/kubeconfig.err" ||
    { echo "drover kubeconfig failed: $(cat "$d/kubeconfig.err")"; stop_all; return 1; }
  export KUBECONFIG="$d/kubeconfig"
  local cache="$d/kube-cache"
  k() { "$KUBECTL" --cache-dir "$cache" "$@"; }
  k get nodes >/dev/null 2>&1 # warm the discovery cache
  local table json chunk raw cold legacy
  table=$(median_ms k get pods)
  json=$(median_ms k get pods -o json)
  chunk=$(median_ms k get pods --chunk-size=500)
  raw=$(median_ms api /api/v1/namespaces/default/pods)
  rm -rf "$cache"
  # Discovery requests only: /api, /apis, /api/v1, /apis/GROUP/VERSION.
  cold=$(k get nodes -v=6 2>&1 | sed -n 's/.*"Response" verb="GET" url="https:\/\/[^/]*\([^?"]*\).*/\1/p' |
    grep -cE '^/apis?$|^/api/v1$|^/apis/[^/]+/[^/]+$')
  # Without the aggregated form: /api, /apis, /api/v1 and one list per group version.
  legacy=$((3 + $(api /apis | jq '[.groups[].versions[]] | length')))
  echo "get pods: table ${table} ms, -o json ${json} ms, chunks of 500 ${chunk} ms, curl ${raw} ms;" \
    "discovery requests with a cold cache ${cold} (legacy discovery would be ${legacy}); hub RSS $(rss_mib "$hubpid") MiB"
  ROWS+=("$pods	$table	$json	$chunk	$raw	$cold	$legacy	$(rss_mib "$hubpid")")
  unset KUBECONFIG
  stop_all
}

for n in "${SIZES[@]}"; do
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 20000 ] || { echo "bad size $n" >&2; exit 2; }
  run_size "$n" || { ROWS+=("$n	failed"); bench_missing "$n nodes: the run failed (above)"; }
done

echo
echo "== kubectl get pods (median of $RUNS; $("$KUBECTL" version --client -o json | jq -r .clientVersion.gitVersion)) =="
printf '%-7s %-11s %-11s %-13s %-13s %-22s %s\n' pods 'table' '-o json' 'chunks 500' 'curl (base)' 'discovery requests' 'hub RSS'
for r in "${ROWS[@]}"; do
  IFS=$'\t' read -r n t j c raw cold legacy rss <<<"$r"
  [ "$t" != failed ] || { printf '%-7s failed\n' "$n"; continue; }
  printf '%-7s %-11s %-11s %-13s %-13s %-22s %s\n' "$n" "$t ms" "$j ms" "$c ms" "$raw ms" \
    "$cold (legacy $legacy)" "$rss MiB"
  bench_figure "$n pods: get pods (Table)" "$t"
  bench_figure "$n pods: get pods -o json" "$j"
  bench_figure "$n pods: get pods --chunk-size=500" "$c"
  bench_figure "$n pods: curl list (baseline)" "$raw"
  bench_figure "$n pods: discovery requests, cold cache" "$cold"
  bench_figure "$n pods: legacy discovery requests" "$legacy"
  bench_figure "$n pods: hub RSS" "$rss"
done
bench_finish
