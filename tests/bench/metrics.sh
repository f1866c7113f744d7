#!/usr/bin/env bash
# Usage reports at scale (issue 14): prints figures and asserts only that they were produced (exit
# 1 when one is missing, zero where it cannot be, or a process died). Run as root after a build:
#   sudo DROVER_BUILD_DIR=build tests/bench/metrics.sh [NODES[:PODS] ...]   (default 10000:20000;
#                                                   PODS defaults to twice NODES)
#   BENCH_SHORT=1: 50 nodes, 100 pods in 2 Deployments, usage every 2 s, windows of 8 s (CI:
#   bench_metrics)
# Environment: SIM_RATE (node connections per second, default 200), SIM_HEARTBEAT_MS (default
# 2000, the agent's), METRICS_MS (usage interval, default 15000, the agent's), WINDOW_S (each
# measuring window, default 60), SETTLE_S (after the rollout, default 30), DEPLOYMENTS (default
# 10), METRICS_HISTORY_MIB (drover-hub --usage-history-mib; default: the hub's own, 64).
# For each size, a fresh drover-hub with its own Mosquitto (as tests/bench/hub.sh); fleetsim
# connects NODES simulated nodes, DEPLOYMENTS Deployments (one after the other) spread PODS pods over
# them, and once every pod runs the script measures two windows of WINDOW_S seconds in the
# same run:
#   1. baseline: the fleet heartbeating, usage reports paused (fleetsim --metrics-paused);
#   2. with usage: the same fleet after SIGUSR1 turned every node's usage report on (one every
#      METRICS_MS, jittered; each the node's usage and one container's per pod it runs, always
#      sent, as a busy device: an agent skips unchanged samples but its keep-alive),
#      measured once a full interval has passed and every series exists;
#   3. baseline again: usage paused once more (the history stays), so that the hub's drift
#      on its own (controller rounds over every pod, a shared machine) shows;
# and prints them side by side with the difference (usage minus the baselines' mean): MQTT messages/s and bytes/s (fleetsim's
# counters: whole PUBLISH packets), bytes per node per minute, hub and Mosquitto CPU (/proc
# ticks) and memory (VmRSS, Private_Clean + Private_Dirty), and the history's own figures from
# the hub's /metrics. Everything runs in a network namespace of its own and listens on
# 127.0.0.1. Needs jq, curl and 20000 file descriptors (ulimit -Hn) for 10,000 nodes.
set -uo pipefail
NAME=metrics.sh
rate="${SIM_RATE:-200}" # (lib.sh's default is 500)
source "$(dirname "$0")/lib.sh"
bench_netns_enter "$0" "$@"
SIZES=("$@")
if [ "$BENCH_SHORT" = 1 ]; then
  [ ${#SIZES[@]} -gt 0 ] || SIZES=(50:100)
  METRICS_MS="${METRICS_MS:-2000}"
  WINDOW_S="${WINDOW_S:-8}"
  SETTLE_S="${SETTLE_S:-3}"
  DEPLOYMENTS="${DEPLOYMENTS:-2}"
fi
[ ${#SIZES[@]} -gt 0 ] || SIZES=(10000:20000)
TICK=$(getconf CLK_TCK)
SIM_RATE="$rate"
SIM_HEARTBEAT_MS="${SIM_HEARTBEAT_MS:-2000}"
METRICS_MS="${METRICS_MS:-15000}"
WINDOW_S="${WINDOW_S:-60}"
SETTLE_S="${SETTLE_S:-30}"
DEPLOYMENTS="${DEPLOYMENTS:-10}"
hist_args=()
[ -n "${METRICS_HISTORY_MIB:-}" ] && hist_args=(--usage-history-mib "$METRICS_HISTORY_MIB")

# (lib.sh's api, for a hub without TLS or tokens; lib.sh's ready_nodes uses it.)
api() { curl -sf --max-time 60 "$HUB$1"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
private_kib() { awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s + 0}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# fleetsim's last stats line, as "t heartbeats metrics metrics_bytes out_bytes pods_reported".
sim_counters() {
  grep '^fleetsim: stats ' "$1" | tail -1 | awk '{
    for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    sub(/s$/, "", v["t"])
    print v["t"], v["heartbeats"], v["metrics"], v["metrics_bytes"], v["out_bytes"], v["pods_reported"] }'
}
# The history's figures from the hub's /metrics, as "name value" lines.
usage_figures() {
  api /metrics | awk '/^drover_usage_/ {print $1, $2}'
}
figure() { awk -v n="$2" '$1 == n {print $2; f = 1} END {if (!f) print "?"}' <<<"$1"; }

deployment_json() { # NAME REPLICAS
  cat <<JSON
{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"$1","namespace":"default"},
 "spec":{"replicas":$2,"selector":{"matchLabels":{"app":"$1"}},
  "template":{"metadata":{"labels":{"app":"$1"}},
   "spec":{"containers":[{"name":"app","image":"registry.local/bench/$1:1",
     "resources":{"requests":{"cpu":"10m","memory":"16Mi"}}}]}}}}
JSON
}

# One measuring window: sets W_* from /proc and fleetsim's counters over WINDOW_S seconds.
measure() { # SIMERR MOSPID
  local a b h0 h1 m0 m1 s0 s1
  a=$(sim_counters "$1"); h0=$(cpu_ticks "$hubpid"); m0=$(cpu_ticks "$2"); s0=$(cpu_ticks "$simpid")
  sleep "$WINDOW_S"
  b=$(sim_counters "$1"); h1=$(cpu_ticks "$hubpid"); m1=$(cpu_ticks "$2"); s1=$(cpu_ticks "$simpid")
  read -r W_T W_HB W_MSG W_BYTES W_OUT _ < <(awk -v a="$a" -v b="$b" 'BEGIN {
    split(a, x, " "); split(b, y, " "); dt = y[1] - x[1]; if (dt <= 0) dt = 1
    printf "%.1f %.0f %.1f %.0f %.0f\n", dt, (y[2] - x[2]) / dt, (y[3] - x[3]) / dt,
      (y[4] - x[4]) / dt, (y[5] - x[5]) / dt }')
  W_HUB_CPU=$(awk -v t=$((h1 - h0)) -v k="$TICK" -v w="$WINDOW_S" 'BEGIN {printf "%.1f", 100 * t / k / w}')
  W_MQ_CPU=$(awk -v t=$((m1 - m0)) -v k="$TICK" -v w="$WINDOW_S" 'BEGIN {printf "%.1f", 100 * t / k / w}')
  W_SIM_CPU=$(awk -v t=$((s1 - s0)) -v k="$TICK" -v w="$WINDOW_S" 'BEGIN {printf "%.1f", 100 * t / k / w}')
  W_HUB_RSS=$(rss_kib "$hubpid"); W_HUB_PRIV=$(private_kib "$hubpid")
  W_MQ_RSS=$(rss_kib "$2"); W_MQ_PRIV=$(private_kib "$2")
  W_SIM_RSS=$(rss_kib "$simpid")
  # A process that died during the window leaves figures of nothing.
  local p
  for p in "hub:$hubpid" "mosquitto:$2" "fleetsim:$simpid"; do
    kill -0 "${p#*:}" 2>/dev/null || bench_missing "the window ending at $(date +%T): ${p%%:*} is not running"
  done
}

row() { printf '  %-36s %15s %15s %15s %15s\n' "$@"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
dmib() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%+.1f MiB", (b - a) / 1024}'; }
dnum() { awk -v a="$1" -v b="$2" -v f="${3:-%+.1f}" 'BEGIN {printf f, b - a}'; }
# B minus the mean of A and C (a window with usage against the baselines before and after it).
dmid() { awk -v a="$1" -v b="$2" -v c="$3" -v f="${4:-%+.1f}" 'BEGIN {printf f, b - (a + c) / 2}'; }

SUMMARY=()
run_size() { # NODES PODS
  local nodes=$1 pods=$2 d="$tmp/run-$1" deps=$DEPLOYMENTS
  mkdir -p "$d"
  echo "== $nodes simulated nodes, $pods pods, usage every $METRICS_MS ms, windows of $WINDOW_S s =="
  "$HUB_BIN" --data "$d/data" --listen 127.0.0.1:0 --no-auth --no-tls --no-broker-tls --log-level warn \
    "${hist_args[@]}" >"$d/hub.out" 2>"$d/hub.err" &
  hubpid=$!
  HUB= BROKER=
  for _ in $(seq 1 200); do
    HUB=$(sed -n 's/^drover-hub: serving \(http:[^ ]*\)$/\1/p' "$d/hub.out")
    BROKER=$(sed -n 's/^drover-hub: broker \(tcp:[^ ]*\)$/\1/p' "$d/hub.out")
    [ -n "$HUB" ] && [ -n "$BROKER" ] && break
    sleep 0.05
  done
  if [ -z "$HUB" ] || [ -z "$BROKER" ]; then
    echo "hub did not start:"; tail -5 "$d/hub.err"; stop_all; return 1
  fi
  local mospid
  mospid=$(pgrep -P "$hubpid" -x mosquitto | head -1)
  echo "  hub $HUB (pid $hubpid), broker $BROKER (mosquitto pid ${mospid:-?})"

  local t0 n=0 limit
  t0=$(now)
  "$SIM" --broker "$BROKER" --nodes "$nodes" --connect-rate "$SIM_RATE" --inflight 500 \
    --heartbeat-ms "$SIM_HEARTBEAT_MS" --metrics-ms "$METRICS_MS" --metrics-paused --stats-ms 1000 \
    >"$d/sim.out" 2>"$d/sim.err" &
  simpid=$!
  limit=$((60 + nodes / 50))
  while [ "$(since "$t0" | cut -d. -f1)" -lt "$limit" ]; do
    n=$(ready_nodes)
    [ "$n" -ge "$nodes" ] && break
    sleep 2
  done
  if [ "$n" -lt "$nodes" ]; then
    echo "  only $n of $nodes nodes Ready after $limit s: stopping"; stop_all; return 1
  fi
  printf '  %-40s %s s\n' "all nodes Ready in the API" "$(since "$t0")"

  # PODS replicas over DEPLOYMENTS Deployments, applied one after the other (each waits until the nodes
  # report its pods): a fleet-wide burst of desired states overflows the hub's MQTT queue
  # (10,000 messages) on a busy machine, and this is the setup, not the measure.
  local ta i per=$((pods / deps)) got=0 want=0
  ta=$(now)
  limit=$((120 + pods / 50))
  for i in $(seq 1 $deps); do
    local r=$per
    [ "$i" -eq "$deps" ] && r=$((pods - per * (deps - 1)))
    want=$((want + r))
    deployment_json "use-$i" "$r" | curl -sf --max-time 60 -X POST -H 'Content-Type: application/json' \
      --data-binary @- "$HUB/apis/apps/v1/namespaces/default/deployments" >/dev/null ||
      echo "  apply use-$i failed"
    while [ "$(since "$ta" | cut -d. -f1)" -lt "$limit" ]; do
      got=$(sim_counters "$d/sim.err" | awk '{print $6}')
      [ "${got:-0}" -ge "$want" ] && break
      sleep 1
    done
  done
  if [ "${got:-0}" -lt "$pods" ]; then
    echo "  only ${got:-0} of $pods pods reported running after $limit s: stopping"; stop_all; return 1
  fi
  printf '  %-40s %s s\n' "all pods reported running by the nodes" "$(since "$ta")"
  sleep "$SETTLE_S" # the rollout's aftermath (status reports, controller rounds) settles

  # 1. baseline: heartbeats only.
  measure "$d/sim.err" "${mospid:-0}"
  local b_t=$W_T b_hb=$W_HB b_msg=$W_MSG b_bytes=$W_BYTES b_out=$W_OUT b_hcpu=$W_HUB_CPU
  local b_mcpu=$W_MQ_CPU b_scpu=$W_SIM_CPU b_hrss=$W_HUB_RSS b_hpriv=$W_HUB_PRIV b_mrss=$W_MQ_RSS b_mpriv=$W_MQ_PRIV
  local b_srss=$W_SIM_RSS
  local f0
  f0=$(usage_figures)

  # 2. usage on; measured once every node sent one and a full interval passed.
  kill -USR1 "$simpid"
  local tu nseries=0
  tu=$(now)
  sleep $((METRICS_MS / 1000 + 5))
  limit=$((METRICS_MS * 4 / 1000 + 60))
  while [ "$(since "$tu" | cut -d. -f1)" -lt "$limit" ]; do
    nseries=$(figure "$(usage_figures)" 'drover_usage_series{kind="node"}')
    [ "$nseries" != "?" ] && [ "$nseries" -ge "$nodes" ] && break
    sleep 2
  done
  printf '  %-40s %s s (%s node series)\n' "usage on -> every node's series exists" "$(since "$tu")" "$nseries"
  [ "$nseries" != "?" ] && [ "$nseries" -ge "$nodes" ] ||
    bench_missing "$nodes nodes: only $nseries node usage series after $limit s"
  local f1 f2 r1 r2 rep_s tf1 tf2
  f1=$(usage_figures); tf1=$(now)
  measure "$d/sim.err" "${mospid:-0}"
  f2=$(usage_figures); tf2=$(now)
  local u_t=$W_T u_hb=$W_HB u_msg=$W_MSG u_bytes=$W_BYTES u_out=$W_OUT u_hcpu=$W_HUB_CPU
  local u_mcpu=$W_MQ_CPU u_scpu=$W_SIM_CPU u_hrss=$W_HUB_RSS u_hpriv=$W_HUB_PRIV u_mrss=$W_MQ_RSS u_mpriv=$W_MQ_PRIV
  local u_srss=$W_SIM_RSS
  r1=$(figure "$f1" drover_usage_reports_total); r2=$(figure "$f2" drover_usage_reports_total)
  rep_s=$(awk -v a="$r1" -v b="$r2" -v t1="$tf1" -v t2="$tf2" 'BEGIN {printf "%.1f", (b - a) / (t2 - t1)}')

  # 3. baseline again: usage paused (the history stays), to see how far the hub drifts alone.
  kill -USR1 "$simpid"
  sleep 5
  measure "$d/sim.err" "${mospid:-0}"

  echo
  row "" "baseline" "with usage" "baseline again" "difference"
  echo "  (difference: with usage minus the mean of the two baselines; memory: minus the first)"
  row "window (fleetsim's clock)" "$b_t s" "$u_t s" "$W_T s" ""
  row "heartbeats/s" "$b_hb" "$u_hb" "$W_HB" ""
  row "usage messages/s (MQTT)" "$b_msg" "$u_msg" "$W_MSG" "$(dmid "$b_msg" "$u_msg" "$W_MSG")"
  row "usage bytes/s (MQTT PUBLISH)" "$b_bytes" "$u_bytes" "$W_BYTES" "$(dmid "$b_bytes" "$u_bytes" "$W_BYTES" %+.0f)"
  row "all bytes/s from the fleet" "$b_out" "$u_out" "$W_OUT" "$(dmid "$b_out" "$u_out" "$W_OUT" %+.0f)"
  row "usage bytes per node per minute" "-" \
    "$(awk -v b="$u_bytes" -v n="$nodes" 'BEGIN {printf "%.0f", b * 60 / n}')" "-" ""
  row "usage bytes per message" "-" \
    "$(awk -v b="$u_bytes" -v m="$u_msg" 'BEGIN {if (m > 0) printf "%.0f", b / m; else print "-"}')" "-" ""
  row "reports taken by the hub/s" "-" "$rep_s" "-" ""
  row "hub CPU (% of one core)" "$b_hcpu" "$u_hcpu" "$W_HUB_CPU" "$(dmid "$b_hcpu" "$u_hcpu" "$W_HUB_CPU")"
  row "mosquitto CPU (% of one core)" "$b_mcpu" "$u_mcpu" "$W_MQ_CPU" "$(dmid "$b_mcpu" "$u_mcpu" "$W_MQ_CPU")"
  row "fleetsim CPU (% of one core)" "$b_scpu" "$u_scpu" "$W_SIM_CPU" "$(dmid "$b_scpu" "$u_scpu" "$W_SIM_CPU")"
  row "hub RSS" "$(mib "$b_hrss")" "$(mib "$u_hrss")" "$(mib "$W_HUB_RSS")" "$(dmib "$b_hrss" "$u_hrss")"
  row "hub private" "$(mib "$b_hpriv")" "$(mib "$u_hpriv")" "$(mib "$W_HUB_PRIV")" "$(dmib "$b_hpriv" "$u_hpriv")"
  row "mosquitto RSS" "$(mib "$b_mrss")" "$(mib "$u_mrss")" "$(mib "$W_MQ_RSS")" "$(dmib "$b_mrss" "$u_mrss")"
  row "mosquitto private" "$(mib "$b_mpriv")" "$(mib "$u_mpriv")" "$(mib "$W_MQ_PRIV")" "$(dmib "$b_mpriv" "$u_mpriv")"
  row "fleetsim RSS" "$(mib "$b_srss")" "$(mib "$u_srss")" "$(mib "$W_SIM_RSS")" "$(dmib "$b_srss" "$u_srss")"
  local k
  echo "  the hub's /metrics, before usage and after its window:"
  for k in 'drover_usage_series{kind="node"}' 'drover_usage_series{kind="pod"}' \
    drover_usage_series_without_history drover_usage_history_bytes drover_usage_reports_total \
    drover_usage_reports_refused_total drover_usage_pods_unlisted; do
    row "$k" "$(figure "$f0" "$k")" "$(figure "$f2" "$k")" "" ""
  done
  # Produced, not judged: counts and rates that usage must make non-zero, the baselines' own
  # figures (a baseline window that measured nothing is no baseline), CPU that may round to 0.
  local f=$nodes\ nodes:
  bench_figure "$f window (baseline, with usage, again)" "$(awk -v a="$b_t" -v b="$u_t" -v c="$W_T" 'BEGIN {print (a < b ? (a < c ? a : c) : (b < c ? b : c))}')"
  bench_figure "$f heartbeats/s, baseline" "$b_hb"
  bench_figure "$f heartbeats/s, with usage" "$u_hb"
  bench_figure "$f heartbeats/s, baseline again" "$W_HB"
  bench_number "$f usage messages/s, baseline" "$b_msg"
  bench_figure "$f usage messages/s, with usage" "$u_msg"
  bench_figure "$f usage bytes/s, with usage" "$u_bytes"
  bench_figure "$f all bytes/s, baseline" "$b_out"
  bench_figure "$f all bytes/s, with usage" "$u_out"
  bench_figure "$f reports taken by the hub/s" "$rep_s"
  bench_number "$f hub CPU, baseline" "$b_hcpu"
  bench_number "$f hub CPU, with usage" "$u_hcpu"
  bench_number "$f mosquitto CPU, with usage" "$u_mcpu"
  bench_figure "$f hub RSS" "$u_hrss"
  bench_figure "$f hub private" "$u_hpriv"
  bench_figure "$f mosquitto RSS" "$u_mrss"
  bench_figure "$f fleetsim RSS" "$u_srss"
  for k in 'drover_usage_series{kind="node"}' 'drover_usage_series{kind="pod"}' \
    drover_usage_history_bytes drover_usage_reports_total; do
    bench_figure "$f $k" "$(figure "$f2" "$k")"
  done
  for k in drover_usage_series_without_history drover_usage_reports_refused_total \
    drover_usage_pods_unlisted; do
    bench_number "$f $k" "$(figure "$f2" "$k")"
  done
  local errs
  errs=$(grep -c . "$d/hub.err")
  if [ "$errs" -gt 0 ]; then
    echo "  hub log (warnings and errors): $errs lines, the last ones:"
    tail -3 "$d/hub.err" | cut -c1-300 | sed 's/^/    /'
  fi
  SUMMARY+=("$(printf '%-8s %-8s %-10s %-12s %-12s %-14s %-14s %-12s' "$nodes" "$pods" "$u_msg" "$u_bytes" \
    "$(awk -v b="$u_bytes" -v n="$nodes" 'BEGIN {printf "%.0f", b * 60 / n}')" \
    "$(dmid "$b_hcpu" "$u_hcpu" "$W_HUB_CPU")" "$(dmib "$b_hrss" "$u_hrss")" "$(figure "$f2" drover_usage_history_bytes)")")
  stop_all
  grep 'usage reports' "$d/sim.err" | sed 's/^/  /'
  tail -1 "$d/sim.out" | sed 's/^/  /'
}

for sz in "${SIZES[@]}"; do
  nodes=${sz%%:*}
  pods=$((nodes * 2))
  [ "$sz" != "$nodes" ] && pods=${sz##*:}
  run_size "$nodes" "$pods" || bench_missing "$nodes nodes, $pods pods: the run failed (above)"
done
echo
echo "== summary (usage every $METRICS_MS ms, every sample sent) =="
printf '%-8s %-8s %-10s %-12s %-12s %-14s %-14s %-12s\n' nodes pods msgs/s bytes/s B/node/min \
  "hub CPU +%" "hub RSS +" "history B"
for l in "${SUMMARY[@]}"; do echo "$l"; done
bench_finish
