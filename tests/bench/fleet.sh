#!/usr/bin/env bash
# Fleet benchmarks: print figures, assert nothing. Run as root after a build:
#   DROVER_BUILD_DIR=build tests/bench/fleet.sh [RUNS] [LOSS-RUNS]
# 1. apply -> all replicas Running, image cached: 3 devices, a 3-replica Deployment applied
#    with the CLI, timed until the API shows 3 pods Running and Ready; deleted (and gone from
#    the devices) between runs. p50 and p99 over RUNS (default 10).
# 2. device lost -> replacement Running: the power of a device running one of the replicas is
#    cut (agent and containers die), timed until the API shows 3 Running and Ready pods on the
#    other devices; the device boots again between runs. p50 and max over LOSS-RUNS (default 5).
# Everything (registry, hub with its Mosquitto, agents) runs in a network namespace made for the
# run (tests/integration/lib/fleet.sh). FLEET_SECURE=1: the hub's default, secure configuration
# (HTTPS + tokens, TLS broker, devices enrolled); otherwise plain HTTP/MQTT (signed documents
# either way).
set -uo pipefail
here="$(cd "$(dirname "$0")/../integration" && pwd)"
DROVER_BUILD_DIR="$(cd "${DROVER_BUILD_DIR:-build}" && pwd)"
export DROVER_BUILD_DIR
source "$here/lib/fleet.sh"
netns_enter "$0" "$@"
RUNS="${1:-10}"
LOSS_RUNS="${2:-5}"
export DEVICE_LOG_LEVEL=info FLEET_HUB_LOG_LEVEL=info
fleet_setup || exit 1
fleet_start 3 || { fleet_dump; exit 1; }

cat >"$FLEET_TMP/bench.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: bench}
spec:
  replicas: 3
  selector: {matchLabels: {app: bench}}
  template:
    metadata: {labels: {app: bench}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: $FLEET_IMG1
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.5; done"]
YAML
path="$(fleet_pods_path app=bench)"
running="$(fleet_jq_running 3)"
# Polls the API every 20 ms (curl + jq take ~10 ms more) for at most 120 s.
until_running3() {
  local off="${1:-}" filter="$running" deadline=$((SECONDS + 120))
  [ -z "$off" ] || filter="$filter and ([.items[] | select(.metadata.deletionTimestamp == null and .spec.nodeName == \"$off\")] | length) == 0"
  notready_ms=""
  while ! fleet_api "$path" 2>/dev/null | jq -e "$filter" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "bench: timeout" >&2; return 1; }
    if [ -n "$off" ] && [ -z "$notready_ms" ] && fleet_node_not_ready "$off" 2>/dev/null; then
      notready_ms="$(fleet_ms)"
    fi
    sleep 0.02
  done
}
gone() {
  fleet_drover delete deployment bench >/dev/null 2>&1
  fleet_wait "bench pods gone" 60 "$path" '.items | length == 0' && fleet_wait_devices bench- 0 60
}
# stats LABEL VALUES(ms)...: n, p50, p99, max
stats() {
  local label="$1"
  shift
  printf '%s\n' "$@" | sort -n | awk -v l="$label" '{v[NR] = $1} END {
    if (NR == 0) { printf "%s: no runs\n", l; exit }
    i50 = int(NR * 0.50 + 0.999999); i99 = int(NR * 0.99 + 0.999999)
    printf "%s: n=%d p50=%.2f s p99=%.2f s max=%.2f s min=%.2f s\n", l, NR, v[i50] / 1000, v[i99] / 1000, v[NR] / 1000, v[1] / 1000 }'
}

# Warm-up: every device pulls the image once.
fleet_apply "$FLEET_TMP/bench.yaml" >/dev/null && until_running3 || { fleet_dump; exit 1; }
gone || exit 1

# 1. apply -> Running
apply_ms=()
for i in $(seq 1 "$RUNS"); do
  t0="$(fleet_ms)"
  fleet_apply "$FLEET_TMP/bench.yaml" >/dev/null || { echo "apply failed" >&2; exit 1; }
  until_running3 || { fleet_dump; exit 1; }
  apply_ms+=($(($(fleet_ms) - t0)))
  echo "# run $i: apply -> 3 Running ${apply_ms[-1]} ms" >&2
  gone || exit 1
done

# 2. device lost -> replacement Running
fleet_apply "$FLEET_TMP/bench.yaml" >/dev/null && until_running3 || exit 1
loss_ms=()
nr_ms=()
for i in $(seq 1 "$LOSS_RUNS"); do
  victim="$(fleet_pods app=bench | jq -r '[.items[] | select(.metadata.deletionTimestamp == null)][0].spec.nodeName')"
  t0="$(fleet_ms)"
  fleet_power_cut "$victim"
  until_running3 "$victim" || { fleet_dump; exit 1; }
  loss_ms+=($(($(fleet_ms) - t0)))
  nr_ms+=($((${notready_ms:-$(fleet_ms)} - t0)))
  echo "# run $i: power cut of $victim -> NotReady ${nr_ms[-1]} ms, 3 Running elsewhere ${loss_ms[-1]} ms" >&2
  fleet_power_on "$victim" >/dev/null || exit 1
  fleet_wait "node $victim Ready" 60 "/api/v1/nodes/$victim" "$FLEET_JQ_READY" || exit 1
  fleet_wait_devices bench- 3 60 || exit 1
done

echo
echo "Fleet: 3 devices (agents in their own mount+PID namespaces), hub with its Mosquitto, local registry"
stats "apply -> 3 replicas Running (image cached)" "${apply_ms[@]}"
stats "device lost (power cut) -> node NotReady" "${nr_ms[@]}"
stats "device lost (power cut) -> replacement Running" "${loss_ms[@]}"
echo "  target: under 15 s with defaults (node grace 10 s, toleration 10 s; the Will fires at once)"
echo "  Kubernetes defaults: ~50 s + 300 s (node monitor grace period, then the not-ready toleration)"
