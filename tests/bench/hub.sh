#!/usr/bin/env bash
# Hub at scale: prints figures, asserts nothing. Run by hand after a build (not in CI):
#   DROVER_BUILD_DIR=build tests/bench/hub.sh [NODES:PODS ...]      (default 1000:5000 10000:20000)
# Environment: BENCH_CLUSTER_NET (the hub's pod range options; default a /10 in /26 blocks, so
# that every node has one), SIM_RATE (node connections per second, default 200), SIM_HEARTBEAT_MS (default
# 2000), BENCH_BROKER=external (the hub uses a Mosquitto this script starts with no in-flight
# or queue limits, instead of its own).
# For each size, a fresh drover-hub with its own Mosquitto; tests/bench/fleetsim connects NODES
# simulated nodes (sim-00000...), and the script measures:
#   1. time until every node is Ready in the API, then hub and Mosquitto memory (VmRSS and
#      Private_Clean + Private_Dirty) and CPU with the fleet heartbeating every 2 s;
#   2. Deployments totalling PODS replicas applied at once: time until every pod has
#      spec.nodeName (placements/s, beside the Kubernetes scalability threshold of 100 pods/s)
#      and until every pod is Running and Ready as the simulated nodes report it, read from a
#      watch on the API; hub CPU time used, and memory afterwards.
# Everything listens on 127.0.0.1. Needs jq, curl, python3 and 20000 file descriptors
# (ulimit -Hn) for 10,000 nodes.
set -uo pipefail
BUILD="$(cd "${DROVER_BUILD_DIR:-build}" && pwd)" || exit 1
HUB_BIN="$BUILD/hub/drover-hub"
SIM="$BUILD/tests/bench/fleetsim"
for t in jq curl python3; do command -v $t >/dev/null || { echo "hub.sh: $t missing" >&2; exit 1; }; done
[ -x "$HUB_BIN" ] && [ -x "$SIM" ] || { echo "hub.sh: build drover-hub and fleetsim first" >&2; exit 1; }
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000:5000 10000:20000)
ulimit -n "$(ulimit -Hn)" # Mosquitto (the hub's child) needs a descriptor per node
TICK=$(getconf CLK_TCK)
SIM_RATE="${SIM_RATE:-200}"
SIM_HEARTBEAT_MS="${SIM_HEARTBEAT_MS:-2000}"
BENCH_BROKER="${BENCH_BROKER:-own}"
tmp=$(mktemp -d)
chmod 755 "$tmp" # the hub hands its broker directory to user mosquitto
hubpid= simpid= watchpid= extpid=
stop_all() {
  [ -n "$watchpid" ] && kill "$watchpid" 2>/dev/null
  [ -n "$simpid" ] && kill "$simpid" 2>/dev/null && wait "$simpid" 2>/dev/null
  if [ -n "$hubpid" ]; then
    kill "$hubpid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$hubpid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$hubpid" 2>/dev/null
    wait "$hubpid" 2>/dev/null
  fi
  [ -n "$extpid" ] && kill "$extpid" 2>/dev/null && wait "$extpid" 2>/dev/null
  hubpid= simpid= watchpid= extpid=
}
# The hub's threads' stacks (gdb), when its API stops answering.
hub_stacks() {
  command -v gdb >/dev/null || return 0
  echo "  hub threads (gdb):"
  timeout 30 gdb -p "$1" -batch -ex "thread apply all bt 10" 2>/dev/null |
    grep -E '^Thread|^#[0-9]+ +0x[0-9a-f]+ in [a-zA-Z_]+ \(|^#[0-9]+ +[a-zA-Z_]+ \(' |
    sed -E 's/ \(.*\) at / at /; s/^/    /' | cut -c1-160 | head -40
}
trap 'stop_all; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
private_kib() { awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s + 0}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
secs() { awk -v t="$1" -v k="$TICK" 'BEGIN {printf "%.2f", t / k}'; }
api() { curl -sf --max-time 60 "$HUB$1"; }
ready_nodes() {
  local c
  c=$(api /api/v1/nodes | jq '[.items[] | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))] | length' 2>/dev/null)
  echo "${c:-0}"
}

# Pod watcher: follows /api/v1/namespaces/default/pods?watch=1 from a resourceVersion and
# writes "bound T" and "running T" (wall-clock seconds) when every one of the expected pods is
# bound / Running and Ready, with a progress line per second. A stream that falls behind the
# hub's change log (410) is resumed from a fresh list.
cat >"$tmp/watch.py" <<'PY'
import json, sys, time, urllib.request
hub, want, out_path, deadline = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
rv = sys.argv[5]
state = {}  # name -> (bound, running)
cnt = [0, 0]  # pods bound, pods running
done = {}
out = open(out_path, "w", buffering=1)
def ready(p):
    st = p.get("status") or {}
    return st.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])
def note(p, deleted=False):
    name = (p.get("metadata") or {}).get("name")
    if not name:
        return
    old = state.pop(name, (False, False))
    cnt[0] -= old[0]; cnt[1] -= old[1]
    if not deleted:
        new = (bool((p.get("spec") or {}).get("nodeName")), ready(p))
        state[name] = new
        cnt[0] += new[0]; cnt[1] += new[1]
def check():
    t = time.time()
    b, r = cnt
    if state and "first" not in done:
        done["first"] = t; out.write("first %.3f\n" % t)
    if len(state) >= want and "created" not in done:
        done["created"] = t; out.write("created %.3f\n" % t)
    if len(state) >= want and b >= want and "bound" not in done:
        done["bound"] = t; out.write("bound %.3f\n" % t)
    if len(state) >= want and r >= want and "running" not in done:
        done["running"] = t; out.write("running %.3f\n" % t)
    return b, r
def relist():
    with urllib.request.urlopen(hub + "/api/v1/namespaces/default/pods", timeout=60) as f:
        l = json.load(f)
    state.clear(); cnt[0] = cnt[1] = 0
    for p in l.get("items") or []:
        note(p)
    return l["metadata"]["resourceVersion"]
last = 0
while "running" not in done and time.time() < deadline:
    try:
        url = "%s/api/v1/namespaces/default/pods?watch=1&resourceVersion=%s" % (hub, rv)
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": "text/event-stream"}), timeout=30) as f:
            ev = None
            for line in f:
                line = line.decode("utf-8", "replace").rstrip("\n")
                if line.startswith("event: "):
                    ev = line[7:]
                elif line.startswith("id: "):
                    rv = line[4:]
                elif line.startswith("data: "):
                    if ev == "ERROR":
                        out.write("# watch ended: %s\n" % line[6:200]); break
                    note(json.loads(line[6:]), ev == "DELETED")
                    check()
                    if time.time() - last >= 1:
                        last = time.time()
                        out.write("progress %.3f created=%d bound=%d running=%d\n" % (last, len(state), cnt[0], cnt[1]))
                    if "running" in done or time.time() > deadline:
                        break
    except Exception as e:  # a timeout with nothing to say, a dropped stream: resume
        out.write("# watch: %s\n" % e)
    if "running" not in done and time.time() < deadline:
        try:
            rv = relist()
        except Exception as e:  # the hub itself does not answer: stop here, the driver says why
            out.write("# hub not answering: %s\n" % e); break
        check()
b, r = check()
out.write("final %.3f created=%d bound=%d running=%d\n" % (time.time(), len(state), b, r))
PY

deployment_json() { # NAME REPLICAS
  cat <<JSON
{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"$1","namespace":"default"},
 "spec":{"replicas":$2,"selector":{"matchLabels":{"app":"$1"}},
  "template":{"metadata":{"labels":{"app":"$1"}},
   "spec":{"containers":[{"name":"app","image":"registry.local/bench/$1:1",
     "resources":{"requests":{"cpu":"10m","memory":"16Mi"}}}]}}}}
JSON
}

controllers_flag=
if "$HUB_BIN" --help 2>&1 | grep -q -- '--no-controllers'; then controllers_flag=
elif "$HUB_BIN" --help 2>&1 | grep -q -- '--controllers'; then controllers_flag=--controllers
fi

SUMMARY=()
run_size() { # NODES PODS
  local nodes=$1 pods=$2 d="$tmp/run-$1" deps=10
  mkdir -p "$d"
  echo "== $nodes simulated nodes, $pods pods =="
  local broker_args=()
  if [ "$BENCH_BROKER" = external ]; then
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 0\nmax_queued_messages 0\nlog_dest stderr\nlog_type error\nlog_type warning\n' \
      "$port" >"$d/mosquitto.conf"
    mosquitto -c "$d/mosquitto.conf" 2>"$d/mosquitto.log" &
    extpid=$!
    sleep 0.5
    broker_args=(--broker "tcp://127.0.0.1:$port")
  fi
  # Every node gets a pod block (the cluster network's cost included): the default range, a
  # /16 in /24s, holds 256 nodes; BENCH_CLUSTER_NET="" keeps the hub's defaults.
  local net_args=() net="--cluster-cidr 10.64.0.0/10 --node-cidr-mask-size 26"
  # shellcheck disable=SC2206 # options, blank-separated
  net_args=(${BENCH_CLUSTER_NET-$net})
  "$HUB_BIN" --data "$d/data" --listen 127.0.0.1:0 --no-auth --no-tls --no-broker-tls --log-level warn $controllers_flag "${broker_args[@]}" "${net_args[@]}" \
    >"$d/hub.out" 2>"$d/hub.err" &
  hubpid=$!
  HUB= BROKER=
  for _ in $(seq 1 200); do
    HUB=$(sed -n 's/^drover-hub: serving \(http:[^ ]*\)$/\1/p' "$d/hub.out")
    BROKER=$(sed -n 's/^drover-hub: broker \(tcp:[^ ]*\)$/\1/p' "$d/hub.out")
    [ "$BENCH_BROKER" = external ] && BROKER="${broker_args[1]}"
    [ -n "$HUB" ] && [ -n "$BROKER" ] && break
    sleep 0.05
  done
  if [ -z "$HUB" ] || [ -z "$BROKER" ]; then
    echo "hub did not start:"; tail -5 "$d/hub.err"; stop_all; return 1
  fi
  local mospid
  mospid=$(pgrep -P "$hubpid" -x mosquitto | head -1)
  [ -n "$extpid" ] && mospid=$extpid
  echo "hub $HUB (pid $hubpid), broker $BROKER (mosquitto pid ${mospid:-?})"

  local t0 tj tready=-1 n=0
  t0=$(now)
  "$SIM" --broker "$BROKER" --nodes "$nodes" --connect-rate "$SIM_RATE" --inflight 500 \
    --heartbeat-ms "$SIM_HEARTBEAT_MS" --stats-ms 5000 \
    >"$d/sim.out" 2>"$d/sim.err" &
  simpid=$!
  local limit=$((60 + nodes / 50))
  local stuck=0
  while [ "$(since "$t0" | cut -d. -f1)" -lt "$limit" ]; do
    if ! curl -sf --max-time 10 "$HUB/healthz" >/dev/null; then
      stuck=$((stuck + 1))
      if [ "$stuck" -ge 3 ]; then
        echo "  hub API not answering (3 x 10 s) after $(since "$t0") s: the hub is stuck"
        hub_stacks "$hubpid"
        tail -3 "$d/sim.err" | sed 's/^/  /'
        stop_all
        SUMMARY+=("$(printf '%-8s %-8s %s' "$nodes" "$pods" "hub stuck while nodes connected")")
        return 1
      fi
      continue
    fi
    stuck=0
    n=$(ready_nodes)
    [ "$n" -ge "$nodes" ] && { tready=$(since "$t0"); break; }
    sleep 1
  done
  tj=$(sed -n 's/^fleetsim: all [0-9]* nodes connected in \([0-9.]*\)s$/\1/p' "$d/sim.err")
  printf '  %-44s %s s\n' "all nodes connected to the broker" "${tj:-not all}"
  if [ "$tready" = -1 ]; then
    printf '  %-44s %s\n' "nodes Ready in the API" "only $n of $nodes after ${limit} s"
  else
    printf '  %-44s %s s\n' "all nodes Ready in the API" "$tready"
  fi
  sleep 5
  local h0 m0 h1 m1
  h0=$(cpu_ticks "$hubpid"); m0=$(cpu_ticks "${mospid:-0}")
  sleep 10
  h1=$(cpu_ticks "$hubpid"); m1=$(cpu_ticks "${mospid:-0}")
  local idle_hub_rss idle_hub_priv idle_mq_rss idle_mq_priv idle_hub_cpu idle_mq_cpu
  idle_hub_rss=$(rss_kib "$hubpid"); idle_hub_priv=$(private_kib "$hubpid")
  idle_mq_rss=$(rss_kib "${mospid:-0}"); idle_mq_priv=$(private_kib "${mospid:-0}")
  idle_hub_cpu=$(awk -v t=$((h1 - h0)) -v k="$TICK" 'BEGIN {printf "%.1f", 100 * t / k / 10}')
  idle_mq_cpu=$(awk -v t=$((m1 - m0)) -v k="$TICK" 'BEGIN {printf "%.1f", 100 * t / k / 10}')
  printf '  %-44s RSS %s, private %s\n' "hub memory, fleet idle" "$(mib "$idle_hub_rss")" "$(mib "$idle_hub_priv")"
  printf '  %-44s RSS %s, private %s\n' "mosquitto memory, fleet idle" "$(mib "$idle_mq_rss")" "$(mib "$idle_mq_priv")"
  printf '  %-44s hub %s %%, mosquitto %s %% of one core\n' "CPU with $((nodes / 2)) heartbeats/s" "$idle_hub_cpu" "$idle_mq_cpu"

  # Deployments totalling $pods replicas, applied at once, followed by a watch.
  local rv per=$((pods / deps)) i
  rv=$(api /api/v1/namespaces/default/pods | jq -r .metadata.resourceVersion)
  python3 "$tmp/watch.py" "$HUB" "$pods" "$d/watch.out" "$(awk -v t="$(now)" -v p="$pods" 'BEGIN {printf "%d", t + 120 + p / 100}')" "$rv" \
    2>"$d/watch.err" &
  watchpid=$!
  h0=$(cpu_ticks "$hubpid"); m0=$(cpu_ticks "${mospid:-0}")
  local ta
  ta=$(now)
  for i in $(seq 1 $deps); do # all at once, as parallel requests
    local r=$per
    [ "$i" -eq "$deps" ] && r=$((pods - per * (deps - 1)))
    { deployment_json "bench-$i" "$r" | curl -sf -X POST -H 'Content-Type: application/json' \
      --data-binary @- "$HUB/apis/apps/v1/namespaces/default/deployments" >/dev/null ||
      echo "  apply bench-$i failed"; } &
  done
  wait $(jobs -p | grep -v -x -e "$watchpid" -e "$simpid" -e "$hubpid")
  local tapplied
  tapplied=$(since "$ta")
  wait "$watchpid"; watchpid=
  h1=$(cpu_ticks "$hubpid"); m1=$(cpu_ticks "${mospid:-0}")
  if ! curl -sf --max-time 10 "$HUB/healthz" >/dev/null; then
    echo "  hub API not answering after the Deployments: the hub is stuck"
    hub_stacks "$hubpid"
  fi
  local tb tr fin tf tc
  tf=$(awk '$1 == "first" {print $2}' "$d/watch.out")
  tc=$(awk '$1 == "created" {print $2}' "$d/watch.out")
  tb=$(awk '$1 == "bound" {print $2}' "$d/watch.out")
  tr=$(awk '$1 == "running" {print $2}' "$d/watch.out")
  fin=$(awk '$1 == "final" {$1 = ""; $2 = ""; print}' "$d/watch.out")
  printf '  %-44s %s s\n' "$deps Deployments applied (parallel API calls)" "$tapplied"
  [ -n "$tf" ] && printf '  %-44s %s s\n' "first pod seen on the watch" "$(awk -v a="$ta" -v b="$tf" 'BEGIN {printf "%.2f", b - a}')"
  [ -n "$tc" ] && printf '  %-44s %s s\n' "all $pods pods created (Deployment controller)" "$(awk -v a="$ta" -v b="$tc" 'BEGIN {printf "%.2f", b - a}')"
  local bound_s=- bound_rate=- run_s=- run_rate=-
  if [ -n "$tb" ]; then
    bound_s=$(awk -v a="$ta" -v b="$tb" 'BEGIN {printf "%.2f", b - a}')
    bound_rate=$(awk -v s="$bound_s" -v p="$pods" 'BEGIN {printf "%.0f", p / s}')
    printf '  %-44s %s s -> %s placements/s (Kubernetes threshold 100 pods/s, target 1000)\n' \
      "all $pods pods bound (spec.nodeName)" "$bound_s" "$bound_rate"
  else
    printf '  %-44s not reached (%s)\n' "all $pods pods bound" "$fin"
  fi
  if [ -n "$tr" ]; then
    run_s=$(awk -v a="$ta" -v b="$tr" 'BEGIN {printf "%.2f", b - a}')
    run_rate=$(awk -v s="$run_s" -v p="$pods" 'BEGIN {printf "%.0f", p / s}')
    printf '  %-44s %s s -> %s pods/s\n' "all $pods pods Running and Ready" "$run_s" "$run_rate"
  else
    printf '  %-44s not reached (%s)\n' "all $pods pods Running" "$fin"
  fi
  printf '  %-44s hub %s s, mosquitto %s s\n' "CPU time used, apply -> all Running" \
    "$(secs $((h1 - h0)))" "$(secs $((m1 - m0)))"
  local hub_rss hub_priv mq_rss mq_priv
  hub_rss=$(rss_kib "$hubpid"); hub_priv=$(private_kib "$hubpid")
  mq_rss=$(rss_kib "${mospid:-0}"); mq_priv=$(private_kib "${mospid:-0}")
  printf '  %-44s RSS %s, private %s\n' "hub memory with $pods pods" "$(mib "$hub_rss")" "$(mib "$hub_priv")"
  printf '  %-44s RSS %s, private %s\n' "mosquitto memory with $pods pods" "$(mib "$mq_rss")" "$(mib "$mq_priv")"
  local errs
  errs=$(grep -c . "$d/hub.err")
  if [ "$errs" -gt 0 ]; then
    echo "  hub log (warnings and errors): $errs lines, the last ones:"
    tail -5 "$d/hub.err" | cut -c1-300 | sed 's/^/    /'
  fi
  grep -q 'drops=0 ' "$d/sim.err" || tail -2 "$d/sim.err" | sed 's/^/  fleetsim: /'
  SUMMARY+=("$(printf '%-8s %-8s %-10s %-14s %-14s %-22s %-22s' "$nodes" "$pods" "${tready}" \
    "$bound_rate" "$run_rate" "$(mib "$idle_hub_rss")/$(mib "$hub_rss")" "$(mib "$idle_mq_rss")/$(mib "$mq_rss")")")
  stop_all
  tail -1 "$d/sim.out" | sed 's/^/  /'
}

for sz in "${SIZES[@]}"; do
  run_size "${sz%%:*}" "${sz##*:}"
done
echo
echo "== summary (Kubernetes scalability threshold: 100 pods/s; target: 10,000 nodes, 1,000 placements/s) =="
printf '%-8s %-8s %-10s %-14s %-14s %-22s %-22s\n' nodes pods ready_s placements/s running/s \
  "hub RSS idle/pods" "mosquitto RSS idle/pods"
for l in "${SUMMARY[@]}"; do echo "$l"; done
