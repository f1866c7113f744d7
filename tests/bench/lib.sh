# Shared by the fleet benchmarks that run a drover-hub with fleetsim nodes (tests/bench/kubectl.sh,
# dashboard.sh, metrics.sh): source it after setting NAME (for messages), then call
# `bench_netns_enter "$0" "$@"`; it makes $tmp, stops the hub and the simulator on exit, and offers:
#   bench_netns_enter "$0" "$@"   re-runs the script (as root) in a network namespace of its own,
#                                 so that the hub, its broker and fleetsim never listen on the
#                                 host's addresses; the namespace and what is left in it go at exit
#   bench_start_fleet DIR NODES   a fresh hub (HTTPS, tokens; its broker plain for fleetsim) in
#                                 DIR and NODES simulated nodes, all Ready; sets HUB, CA, TOKEN,
#                                 hubpid, simpid (SIM_RATE: connections per second)
#   bench_apply_deployment NAME PODS   one Deployment of PODS pods, waits until all Running
#   api PATH [CURL-ARGS...], wait_until SECS CMD..., now, since T0, rss_mib PID,
#   ready_nodes, running_pods, stop_all
# and, from tests/bench/figures.sh, the check that figures were produced (bench_figure,
# bench_number, bench_missing, bench_finish, bench_unmet, BENCH_SHORT).
source "$(dirname "${BASH_SOURCE[0]}")/figures.sh"
bench_netns_enter() {
  if [ -n "${DROVER_BENCH_NETNS:-}" ]; then
    ip link set lo up
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || bench_unmet "needs root (it runs in a network namespace of its own)"
  command -v ip >/dev/null || bench_unmet "ip (iproute2) missing"
  local ns="drvb-$$" rc=0
  ip netns add "$ns" || exit 1
  DROVER_BENCH_NETNS="$ns" ip netns exec "$ns" bash "$@" || rc=$?
  # Anything left in the namespace dies with it.
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns del "$ns"
  exit "$rc"
}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$(cd "${DROVER_BUILD_DIR:-$root/build}" && pwd)" || exit 1
HUB_BIN="$BUILD/hub/drover-hub"
SIM="$BUILD/tests/bench/fleetsim"
for t in jq curl; do command -v $t >/dev/null || bench_unmet "$t missing"; done
[ -x "$HUB_BIN" ] && [ -x "$SIM" ] || { echo "$NAME: build drover-hub and fleetsim first" >&2; exit 1; }
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

bench_start_fleet() { # DIR NODES
  local d=$1 nodes=$2 t0
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
}

bench_apply_deployment() { # NAME PODS
  local name=$1 pods=$2 t0
  t0=$(now)
  api /apis/drover.io/v1/apply -X POST -H 'Content-Type: application/json' -d "{
    \"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"$name\",\"namespace\":\"default\"},
    \"spec\":{\"replicas\":$pods,\"selector\":{\"matchLabels\":{\"app\":\"$name\"}},
     \"template\":{\"metadata\":{\"labels\":{\"app\":\"$name\"}},
      \"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"registry.local/$name:1\",
       \"resources\":{\"requests\":{\"cpu\":\"10m\",\"memory\":\"16Mi\"}}}]}}}}" >/dev/null ||
    { echo "apply failed"; stop_all; return 1; }
  all_running() { [ "$(running_pods)" -ge "$pods" ]; }
  wait_until $((pods / 20 + 60)) all_running ||
    { echo "only $(running_pods) of $pods pods Running"; stop_all; return 1; }
  echo "$pods pods Running in $(since "$t0") s; hub RSS $(rss_mib "$hubpid") MiB"
}
