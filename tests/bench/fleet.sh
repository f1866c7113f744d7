#!/usr/bin/env bash
# Fleet benchmarks: print figures, assert nothing about their values. Run as root after a build:
#   DROVER_BUILD_DIR=build tests/bench/fleet.sh [RUNS] [LOSS-RUNS]
# 1. apply -> all replicas Running, image cached: 3 devices, a 3-replica Deployment applied
#    with the CLI, timed until the API shows 3 pods Running and Ready; deleted (and gone from
#    the devices) between runs. p50 and p99 over RUNS (default 10).
# 2. node loss -> replacement Running, with its breakdown: the power of a device running one of
#    the replicas is cut (agent and containers killed; the kernel closes its TCP connection, so
#    the broker fires the device's Will at once), timed until the API shows 3 Running and Ready
#    pods on the other devices; the device boots again between runs. Each run is split into
#    detection (cut -> Node Ready Unknown/False), toleration (-> the lost pod deleted: the
#    NoExecute eviction), scheduling (-> its replacement bound to a node) and pull/start (-> all
#    3 Running and Ready as reported), p50 and max per phase over LOSS-RUNS (default 5). The API
#    is polled every ~40 ms (curl + jq), so each phase is known to within that.
#    Done twice in the same run: with the defaults (hub --node-grace 10 s, toleration 3 s,
#    agent heartbeat 2 s, keep-alive 10 s), then with the fast failover settings (hub
#    --node-grace 2, the pods' own tolerationSeconds 1 for node.kubernetes.io/unreachable and
#    not-ready, agent heartbeatSeconds 1, keepaliveSeconds 2).
#    The loss runs start once the hub has been connected to its broker for longer than the
#    grace (see steady below). Full runs only: a silent loss (the device's link cut for good,
#    packets dropped: what a real power cut looks like to the hub, no Will) with each setting.
# 3. a flaky link: a device running a replica drops off for 5 s (packets dropped; full runs
#    also: its connection reset first, so the Will fires at once). Prints whether the hub made a
#    replacement pod (a duplicate: the device ran the old one on, unseen, until it was back).
#    Fast settings always; defaults in full runs (tests/integration/test_fleet_flaky.sh checks
#    the defaults never duplicate).
# BENCH_SHORT=1: 2 apply runs, 1 loss run per setting, the fast settings' 5 s drop only; exits
# non-zero when a figure is missing or zero (not on the figures' values).
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
FULL=1
if [ -n "${BENCH_SHORT:-}" ]; then
  RUNS=2 LOSS_RUNS=1 FULL=""
fi
command -v ss >/dev/null || { echo "fleet bench: ss (iproute2) missing" >&2; exit 1; }
export DEVICE_LOG_LEVEL=info FLEET_HUB_LOG_LEVEL=info
# The defaults as shipped (hub/main.c, hub/ctrl/ctrl.h, agent/config/config.c).
unset FLEET_NODE_GRACE FLEET_HEARTBEAT FLEET_KEEPALIVE
fleet_setup || exit 1
fleet_start 3 || { fleet_dump; exit 1; }
HUB_UP_MS="$(fleet_ms)"
# steady SECS: waits until the hub has been connected to its broker for SECS. The hub's bridge
# leaves Wills delivered in its first grace period after it connected to the broker to the
# grace period (they may be stale, retained from before it came up): a loss that early is
# detected by the grace, not the Will. The figures are for a hub that has been up a while.
steady() {
  local left=$((HUB_UP_MS + $1 * 1000 - $(fleet_ms)))
  [ "$left" -le 0 ] || sleep "$(awk -v m="$left" 'BEGIN {printf "%.2f", m / 1000}')"
}

# bench_yaml [TOLERATION-SECONDS]: the Deployment, with the pods' own NoExecute tolerations.
bench_yaml() {
  local tols=""
  [ -z "${1:-}" ] || tols="tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: $1}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: $1}"
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
      $tols
      containers:
      - name: c
        image: $FLEET_IMG1
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.5; done"]
YAML
}
bench_yaml
path="$(fleet_pods_path app=bench)"
running="$(fleet_jq_running 3)"
# Polls the API every 20 ms (curl + jq take ~10 ms more) for at most 120 s.
until_running3() {
  local deadline=$((SECONDS + 120))
  while ! fleet_api "$path" 2>/dev/null | jq -e "$running" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "bench: timeout" >&2; return 1; }
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
# p50max VALUES(ms)...: "p50 X s, max Y s"
p50max() {
  printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {
    if (NR == 0) { printf "no runs"; exit }
    printf "p50 %5.2f s  max %5.2f s", v[int(NR * 0.5 + 0.999999)] / 1000, v[NR] / 1000 }'
}

MISSING=0
secs() { printf '%d.%d' $(($1 / 1000)) $((($1 % 1000) / 100)); }
# need LABEL VALUES...: a figure the run must have produced (present, not zero).
need() {
  local label="$1" v
  shift
  [ "$#" -gt 0 ] || { echo "fleet bench: no figure for $label" >&2; MISSING=$((MISSING + 1)); return; }
  for v in "$@"; do
    [ -n "$v" ] && [ "$v" -gt 0 ] 2>/dev/null ||
      { echo "fleet bench: figure for $label missing or zero ($v)" >&2; MISSING=$((MISSING + 1)); return; }
  done
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

# One poll of the loss in progress: "<node not ready> <lost pod deleted> <replacement bound>
# <all 3 Running and Ready elsewhere>", each 0 or 1.
poll_loss() { # VICTIM ORIGINAL-UIDS-JSON
  local nr=0
  fleet_node_not_ready "$1" 2>/dev/null && nr=1
  fleet_api "$path" 2>/dev/null | jq -r --arg v "$1" --argjson o "$2" --argjson nr "$nr" "
    [.items[] | select(.metadata.deletionTimestamp == null)] as \$live |
    ([\$live[] | select(.spec.nodeName == \$v and (.metadata.uid as \$u | \$o | index(\$u)))] | length == 0) as \$del |
    ([\$live[] | select((.metadata.uid as \$u | \$o | index(\$u) | not) and (.spec.nodeName // \"\") != \"\")] | length > 0) as \$bound |
    (($running) and ([\$live[] | select(.spec.nodeName == \$v)] | length == 0)) as \$run |
    \"\(\$nr) \(if \$del then 1 else 0 end) \(if \$bound then 1 else 0 end) \(if \$run then 1 else 0 end)\"" 2>/dev/null
}

# loss_run SET KIND: one node loss (KIND power: power cut; silent: link cut for good) of a
# device running a replica, its phases appended to SET's lists (ms).
declare -A PH
loss_run() {
  local set="$1" kind="$2" victim orig t0 now s t_nr="" t_del="" t_bound="" t_run=""
  victim="$(fleet_pods app=bench | jq -r '[.items[] | select(.metadata.deletionTimestamp == null)][0].spec.nodeName')"
  orig="$(fleet_pods app=bench | jq -c '[.items[].metadata.uid]')"
  t0="$(fleet_ms)"
  if [ "$kind" = power ]; then fleet_power_cut "$victim"; else fleet_link_cut "$victim" drop; fi
  local deadline=$((SECONDS + 120))
  while [ -z "$t_run" ]; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "bench: timeout ($set $kind loss)" >&2; fleet_dump; return 1; }
    s="$(poll_loss "$victim" "$orig")"
    now="$(fleet_ms)"
    read -r nr del bound run <<<"${s:-0 0 0 0}"
    [ -n "$t_nr" ] || [ "$nr" != 1 ] || t_nr="$now"
    [ -n "$t_del" ] || [ "$del" != 1 ] || t_del="$now"
    [ -n "$t_bound" ] || [ "$bound" != 1 ] || t_bound="$now"
    [ -n "$t_run" ] || [ "$run" != 1 ] || t_run="$now"
    sleep 0.01
  done
  # A step faster than one poll is seen with the next one: it happened by then.
  t_bound="${t_bound:-$t_run}"
  t_del="${t_del:-$t_bound}"
  t_nr="${t_nr:-$t_del}"
  PH[$set.$kind.det]+=" $((t_nr - t0))"
  PH[$set.$kind.tol]+=" $((t_del - t_nr))"
  PH[$set.$kind.sched]+=" $((t_bound - t_del))"
  PH[$set.$kind.start]+=" $((t_run - t_bound))"
  PH[$set.$kind.total]+=" $((t_run - t0))"
  echo "# $set $kind loss of $victim: detection $((t_nr - t0)) ms, toleration $((t_del - t_nr)) ms, scheduling $((t_bound - t_del)) ms, pull/start $((t_run - t_bound)) ms, total $((t_run - t0)) ms" >&2
  if [ "$kind" = power ]; then
    fleet_power_on "$victim" >/dev/null || return 1
  else
    fleet_heal "$victim"
  fi
  fleet_wait "node $victim Ready" 60 "/api/v1/nodes/$victim" "$FLEET_JQ_READY" || return 1
  # The device, back, stops the pod it lost (its desired state no longer holds it).
  fleet_wait_devices bench- 3 60 || return 1
}

# flaky SET MODE WATCH-S: a device running a replica drops off for 5 s (MODE drop or reset);
# watches WATCH-S seconds from the cut for a replacement pod; FLAKY[SET.MODE] gets the verdict.
declare -A FLAKY
flaky() {
  local set="$1" mode="$2" watch="$3" victim orig t0 healed=0 nr=no repl="" t_dup=""
  victim="$(fleet_pods app=bench | jq -r '[.items[] | select(.metadata.deletionTimestamp == null)][0].spec.nodeName')"
  orig="$(fleet_pods app=bench | jq -c '[.items[].metadata.uid]')"
  t0="$(fleet_ms)"
  fleet_link_cut "$victim" "$mode" || return 1
  while [ $(($(fleet_ms) - t0)) -lt $((watch * 1000)) ]; do
    if [ "$healed" -eq 0 ] && [ $(($(fleet_ms) - t0)) -ge 5000 ]; then
      fleet_heal "$victim"
      healed=1
    fi
    fleet_node_not_ready "$victim" 2>/dev/null && nr=yes
    if [ -z "$t_dup" ]; then
      repl="$(fleet_pods app=bench | jq --argjson o "$orig" '[.items[] | select(.metadata.uid as $u | $o | index($u) | not)] | length')"
      [ "${repl:-0}" -eq 0 ] || t_dup="$(($(fleet_ms) - t0))"
    fi
    sleep 0.2
  done
  [ "$healed" -eq 1 ] || fleet_heal "$victim"
  fleet_wait "node $victim Ready" 60 "/api/v1/nodes/$victim" "$FLEET_JQ_READY" || return 1
  until_running3 || return 1
  local t_back=""
  fleet_wait_devices bench- 3 60 && t_back="$(($(fleet_ms) - t0))"
  if [ -n "$t_dup" ]; then
    FLAKY[$set.$mode]="DUPLICATED: a replacement pod made $(secs "$t_dup") s after the cut while the device still ran the old one (stopped once it was back: the devices ran 3 pods again $(secs "${t_back:-0}") s after the cut)"
  else
    FLAKY[$set.$mode]="no duplicate, no pod replaced (node seen NotReady: $nr)"
  fi
  echo "# $set, 5 s $mode of $victim: ${FLAKY[$set.$mode]}" >&2
}

# 2 and 3 with the defaults.
fleet_apply "$FLEET_TMP/bench.yaml" >/dev/null && until_running3 || exit 1
steady 11
for i in $(seq 1 "$LOSS_RUNS"); do loss_run defaults power || exit 1; done
if [ -n "$FULL" ]; then
  loss_run defaults silent || exit 1
  flaky defaults drop 25 || exit 1
  flaky defaults reset 25 || exit 1
fi
gone || exit 1

# The fast settings: the hub restarted with --node-grace 2, the agents with a 1 s heartbeat and
# a 2 s keep-alive (their config edited, then rebooted), the pods tolerating 1 s.
FAST_GRACE=2 FAST_TOL=1 FAST_HB=1 FAST_KA=2
export FLEET_NODE_GRACE="$FAST_GRACE"
fleet_hub_restart || { fleet_dump; exit 1; }
HUB_UP_MS="$(fleet_ms)"
for d in dev1 dev2 dev3; do
  sed -i -e "s/^  heartbeatSeconds: .*/  heartbeatSeconds: $FAST_HB/" \
    -e "s/^  keepaliveSeconds: .*/  keepaliveSeconds: $FAST_KA/" "${FLEET_DEV_DIR[$d]}/agent.yaml"
  fleet_power_cut "$d"
  fleet_power_on "$d" >/dev/null || exit 1
done
for d in dev1 dev2 dev3; do
  fleet_wait "node $d Ready" 60 "/api/v1/nodes/$d" "$FLEET_JQ_READY" || { fleet_dump; exit 1; }
done
bench_yaml "$FAST_TOL"
fleet_apply "$FLEET_TMP/bench.yaml" >/dev/null && until_running3 || { fleet_dump; exit 1; }
steady $((FAST_GRACE + 1))
for i in $(seq 1 "$LOSS_RUNS"); do loss_run fast power || exit 1; done
[ -z "$FULL" ] || loss_run fast silent || exit 1
flaky fast drop 10 || exit 1
[ -z "$FULL" ] || flaky fast reset 10 || exit 1

echo
echo "Fleet: 3 devices (agents in their own mount+PID namespaces), hub with its Mosquitto, local registry"
stats "apply -> 3 replicas Running (image cached)" "${apply_ms[@]}"
need "apply -> Running" "${apply_ms[@]}"
echo
echo "Node loss -> replacement Running, by phase (p50 and max over the runs):"
echo "  defaults: hub --node-grace 10, toleration 3 s (no tolerationSeconds of the pod's own),"
echo "            agent heartbeatSeconds 2, keepaliveSeconds 10"
echo "  fast:     hub --node-grace $FAST_GRACE, the pod's tolerationSeconds $FAST_TOL (unreachable, not-ready),"
echo "            agent heartbeatSeconds $FAST_HB, keepaliveSeconds $FAST_KA"
for kind in power silent; do
  for set in defaults fast; do
    [ -n "${PH[$set.$kind.total]:-}" ] || continue
    if [ "$kind" = power ]; then what="power cut (Will at once)"; else what="silent loss (link cut, no Will)"; fi
    echo "  $set, $what:"
    for ph in det:detection tol:toleration sched:scheduling start:pull/start total:total; do
      # shellcheck disable=SC2086 # the lists are blank-separated numbers
      printf '    %-12s %s\n' "${ph#*:}" "$(p50max ${PH[$set.$kind.${ph%%:*}]})"
    done
  done
done
# Every phase of every set must be there; a detection or a total of 0 is no figure (a phase
# such as scheduling may take less than one poll: 0 there is a figure).
for set in defaults fast; do
  for ph in det tol sched start total; do
    [ -n "${PH[$set.power.$ph]:-}" ] || { echo "fleet bench: no $set $ph figure" >&2; MISSING=$((MISSING + 1)); }
  done
  # shellcheck disable=SC2086 # blank-separated numbers
  need "$set power loss detection" ${PH[$set.power.det]:-}
  # shellcheck disable=SC2086
  need "$set power loss total" ${PH[$set.power.total]:-}
done
echo "  target: replacement under 15 s with the defaults"
echo "  Kubernetes defaults: ~50 s + 300 s (node monitor grace period, then the not-ready toleration)"
echo
echo "Flaky link: a device drops off for 5 s:"
for k in defaults.drop defaults.reset fast.drop fast.reset; do
  [ -n "${FLAKY[$k]:-}" ] || continue
  m="${k#*.}"
  [ "$m" = drop ] && m="packets dropped" || m="connection reset first (Will at once)"
  echo "  ${k%%.*}, $m: ${FLAKY[$k]}"
done
[ -n "${FLAKY[fast.drop]:-}" ] || { echo "fleet bench: no verdict for the fast settings' 5 s drop" >&2; MISSING=$((MISSING + 1)); }
if [ "$MISSING" -gt 0 ]; then
  echo "fleet bench: $MISSING figure(s) missing" >&2
  exit 1
fi
