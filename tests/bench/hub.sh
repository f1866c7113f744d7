#!/usr/bin/env bash
# Hub at scale (issue 19): placements/s, time to all pods Running, hub CPU and memory per pod and
# the API's latency during the burst, for the hub of this build and, side by side in the same run,
# for a baseline build's hub. Run by hand after a build:
#   DROVER_BUILD_DIR=build [BASELINE_BUILD=/work/base/build] tests/bench/hub.sh [NODES:PODS ...]
# (default sizes 1000:5000 10000:50000; 10,000 nodes need `ulimit -Hn` >= 20000). CI runs it once
# with BENCH_SHORT=1 (one size, 200:1000): the run then fails when a figure is missing or zero,
# the API prober got no answer, or a hub died; it never checks the figures' values.
# Environment: BASELINE_BUILD (a build directory whose drover-hub and fleetsim run each size
# too; its failure fails the run), BENCH_CLUSTER_NET (the hub's pod range options; default a /10
# in /26 blocks, so that every node has one), SIM_RATE (node connections per second, default
# 200), SIM_HEARTBEAT_MS (default 2000), BENCH_BROKER=external (the hub uses a Mosquitto this
# script starts with no in-flight or queue limits, instead of its own), HUB_WRAP (a command put
# before drover-hub, e.g. "valgrind --tool=callgrind --instr-atstart=no
# --callgrind-out-file=/tmp/cg.%p"; with callgrind, instrumentation is switched on for the
# apply -> all Running window only and dumped at its end), BENCH_PROBE=0 (no API
# prober: for profiles of the hub's own work), BENCH_BURST_MAX (seconds the apply -> all Running
# window may last, default 120 + PODS / 100), BENCH_MALLOC_STATS=1 (glibc's malloc_stats of the
# hub with the pods, through gdb), BENCH_PERF=FILE (perf record -g of the hub over
# that window into FILE.LABEL.NODES), HUB_LOG_LEVEL (default warn; debug logs each long
# controller round's parts), BENCH_KEEP=DIR (the hub's log of each run is copied there).
# For each size and hub, a fresh drover-hub with its own Mosquitto; fleetsim (of the same build
# as the hub) connects NODES simulated nodes (sim-00000...), and the script measures:
#   1. time until every node is Ready in the API, then hub and Mosquitto memory (VmRSS and
#      Private_Clean + Private_Dirty) and CPU with the fleet heartbeating;
#   2. ten Deployments totalling PODS replicas applied at once: time until every pod has
#      spec.nodeName (placements/s) and until every pod is Running and Ready as the simulated
#      nodes report it (and its ratio to the placement time), read from a watch on the API;
#   3. during that window, an API prober: GET /healthz and GET a 500-pod page of the pod list,
#      one request after another each, p50/p99/max latency;
#   4. hub CPU ms per pod (apply -> all Running), hub private memory per pod (with the pods
#      minus idle), the hub's warnings "fell behind the change log" and "broker connection lost".
# It runs in a network namespace of its own (unshare -n, loopback only) when it can.
# Needs jq, curl, python3.
set -uo pipefail
if [ -z "${BENCH_NETNS:-}" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null &&
  unshare -n true 2>/dev/null; then
  # shellcheck disable=SC2016 # expanded by the inner shell
  exec unshare -n -- env BENCH_NETNS=1 bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi
BUILD="$(cd "${DROVER_BUILD_DIR:-build}" && pwd)" || exit 1
BASE=
if [ -n "${BASELINE_BUILD:-}" ]; then
  BASE="$(cd "$BASELINE_BUILD" && pwd)" || exit 1
fi
for t in jq curl python3; do command -v $t >/dev/null || { echo "hub.sh: $t missing" >&2; exit 1; }; done
for b in "$BUILD" ${BASE:+"$BASE"}; do
  [ -x "$b/hub/drover-hub" ] && [ -x "$b/tests/bench/fleetsim" ] ||
    { echo "hub.sh: build drover-hub and fleetsim first in $b" >&2; exit 1; }
done
SHORT="${BENCH_SHORT:-}"
[ "$SHORT" = 0 ] && SHORT=
SIZES=("$@")
if [ ${#SIZES[@]} -eq 0 ]; then
  if [ -n "$SHORT" ]; then SIZES=(200:1000); else SIZES=(1000:5000 10000:50000); fi
fi
ulimit -n "$(ulimit -Hn)" # Mosquitto (the hub's child) needs a descriptor per node
TICK=$(getconf CLK_TCK)
SIM_RATE="${SIM_RATE:-200}"
SIM_HEARTBEAT_MS="${SIM_HEARTBEAT_MS:-2000}"
BENCH_BROKER="${BENCH_BROKER:-own}"
read -r -a HUB_WRAP_ARGS <<<"${HUB_WRAP:-}"
HZ_TIMEOUT=10 # /healthz while the nodes connect; a hub under valgrind is 50x slower
[ -n "${HUB_WRAP:-}" ] && HZ_TIMEOUT=120
tmp=$(mktemp -d)
chmod 755 "$tmp" # the hub hands its broker directory to user mosquitto
hubpid= simpid= watchpid= probepid= extpid=
stop_all() {
  [ -n "$watchpid" ] && kill "$watchpid" 2>/dev/null
  [ -n "$probepid" ] && kill "$probepid" 2>/dev/null
  [ -n "$simpid" ] && kill "$simpid" 2>/dev/null && wait "$simpid" 2>/dev/null
  if [ -n "$hubpid" ]; then
    kill "$hubpid" 2>/dev/null
    for _ in $(seq 1 300); do kill -0 "$hubpid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$hubpid" 2>/dev/null
    wait "$hubpid" 2>/dev/null
  fi
  [ -n "$extpid" ] && kill "$extpid" 2>/dev/null && wait "$extpid" 2>/dev/null
  hubpid= simpid= watchpid= probepid= extpid=
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

# API prober: GET /healthz and GET a page of the pod list, each in its own thread, one request
# after another (20 ms apart), until the file STOP exists; one line "ok ms" per request in
# OUT.healthz and OUT.list. A request that fails or times out (10 s) is "0 ms".
cat >"$tmp/probe.py" <<'PY'
import os, sys, threading, time, urllib.request
hub, out, stop = sys.argv[1], sys.argv[2], sys.argv[3]
def loop(name, path):
    with open("%s.%s" % (out, name), "w", buffering=1) as f:
        while not os.path.exists(stop):
            t = time.monotonic()
            try:
                with urllib.request.urlopen(hub + path, timeout=10) as r:
                    r.read()
                ok = 1
            except Exception:
                ok = 0
            f.write("%d %.2f\n" % (ok, (time.monotonic() - t) * 1000))
            time.sleep(0.02)
th = [threading.Thread(target=loop, args=a) for a in
      (("healthz", "/healthz"), ("list", "/api/v1/namespaces/default/pods?limit=500"))]
for t in th:
    t.start()
for t in th:
    t.join()
PY
# "n=N failed=F p50=X p99=Y max=Z" (ms) of a prober file; n=0 when it has no answer.
probe_stats() {
  [ -s "$1" ] || { echo "n=0 failed=0 p50=- p99=- max=-"; return; }
  sort -k2,2g "$1" | awk '{ms[NR] = $2; if (!$1) f++}
    END {i50 = int(NR * 0.50 + 0.999); i99 = int(NR * 0.99 + 0.999); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1
         printf "n=%d failed=%d p50=%.1f p99=%.1f max=%.1f\n", NR - f, f + 0, ms[i50], ms[i99], ms[NR]}'
}
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

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
        except Exception as e:  # the hub does not answer (busy or gone): try again until the deadline
            out.write("# hub not answering: %s\n" % e)
            time.sleep(1)
            continue
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

declare -A R # "LABEL SIZE FIGURE" -> value; "-" or missing = not measured
FAILED=()    # what a short run fails on
run_size() { # LABEL BUILD NODES PODS
  local label=$1 bdir=$2 nodes=$3 pods=$4 d="$tmp/run-$1-$3" deps=10 key="$1 $3:$4"
  local hub_bin="$bdir/hub/drover-hub" sim="$bdir/tests/bench/fleetsim"
  mkdir -p "$d"
  echo "== $label hub ($bdir): $nodes simulated nodes, $pods pods =="
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
  "${HUB_WRAP_ARGS[@]}" "$hub_bin" --data "$d/data" --listen 127.0.0.1:0 --no-auth --no-tls --no-broker-tls \
    --log-level "${HUB_LOG_LEVEL:-warn}" "${broker_args[@]}" "${net_args[@]}" >"$d/hub.out" 2>"$d/hub.err" &
  hubpid=$!
  HUB= BROKER=
  for _ in $(seq 1 600); do
    HUB=$(sed -n 's/^drover-hub: serving \(http:[^ ]*\)$/\1/p' "$d/hub.out")
    BROKER=$(sed -n 's/^drover-hub: broker \(tcp:[^ ]*\)$/\1/p' "$d/hub.out")
    [ "$BENCH_BROKER" = external ] && BROKER="${broker_args[1]}"
    [ -n "$HUB" ] && [ -n "$BROKER" ] && break
    sleep 0.05
  done
  if [ -z "$HUB" ] || [ -z "$BROKER" ]; then
    echo "  hub did not start:"; tail -5 "$d/hub.err"; stop_all
    FAILED+=("$key: hub did not start"); return 1
  fi
  local mospid
  mospid=$(pgrep -P "$hubpid" -x mosquitto | head -1)
  [ -n "$extpid" ] && mospid=$extpid
  echo "  hub $HUB (pid $hubpid), broker $BROKER (mosquitto pid ${mospid:-?})"

  local t0 tj tready=-1 n=0
  t0=$(now)
  "$sim" --broker "$BROKER" --nodes "$nodes" --connect-rate "$SIM_RATE" --inflight 500 \
    --heartbeat-ms "$SIM_HEARTBEAT_MS" --stats-ms 5000 \
    >"$d/sim.out" 2>"$d/sim.err" &
  simpid=$!
  local limit=$((60 + nodes / 50))
  local stuck=0
  while [ "$(since "$t0" | cut -d. -f1)" -lt "$limit" ]; do
    if ! curl -sf --max-time "$HZ_TIMEOUT" "$HUB/healthz" >/dev/null; then
      stuck=$((stuck + 1))
      if [ "$stuck" -ge 3 ] || ! kill -0 "$hubpid" 2>/dev/null; then
        echo "  hub API not answering (3 x $HZ_TIMEOUT s) after $(since "$t0") s: the hub is stuck or gone"
        hub_stacks "$hubpid"
        tail -3 "$d/sim.err" | sed 's/^/  /'
        stop_all
        FAILED+=("$key: hub stuck or gone while the nodes connected")
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
  printf '  %-46s %s s\n' "all nodes connected to the broker" "${tj:-not all}"
  if [ "$tready" = -1 ]; then
    printf '  %-46s %s\n' "nodes Ready in the API" "only $n of $nodes after ${limit} s"
    FAILED+=("$key: only $n of $nodes nodes Ready")
  else
    printf '  %-46s %s s\n' "all nodes Ready in the API" "$tready"
    R[$key ready_s]=$tready
  fi
  local settle=5 window=10
  [ -n "$SHORT" ] && settle=1 window=3
  sleep "$settle"
  local h0 m0 h1 m1
  h0=$(cpu_ticks "$hubpid"); m0=$(cpu_ticks "${mospid:-0}")
  sleep "$window"
  h1=$(cpu_ticks "$hubpid"); m1=$(cpu_ticks "${mospid:-0}")
  local idle_hub_rss idle_hub_priv idle_mq_rss idle_mq_priv idle_hub_cpu idle_mq_cpu
  idle_hub_rss=$(rss_kib "$hubpid"); idle_hub_priv=$(private_kib "$hubpid")
  idle_mq_rss=$(rss_kib "${mospid:-0}"); idle_mq_priv=$(private_kib "${mospid:-0}")
  idle_hub_cpu=$(awk -v t=$((h1 - h0)) -v k="$TICK" -v w="$window" 'BEGIN {printf "%.1f", 100 * t / k / w}')
  idle_mq_cpu=$(awk -v t=$((m1 - m0)) -v k="$TICK" -v w="$window" 'BEGIN {printf "%.1f", 100 * t / k / w}')
  printf '  %-46s RSS %s, private %s\n' "hub memory, fleet idle" "$(mib "$idle_hub_rss")" "$(mib "$idle_hub_priv")"
  printf '  %-46s RSS %s, private %s\n' "mosquitto memory, fleet idle" "$(mib "$idle_mq_rss")" "$(mib "$idle_mq_priv")"
  printf '  %-46s hub %s %%, mosquitto %s %% of one core\n' "CPU with $((nodes * 1000 / SIM_HEARTBEAT_MS)) heartbeats/s" "$idle_hub_cpu" "$idle_mq_cpu"
  R[$key idle_priv]=$(mib "$idle_hub_priv")

  # Deployments totalling $pods replicas, applied at once, followed by a watch and the prober.
  local rv per=$((pods / deps)) i
  rv=$(api /api/v1/namespaces/default/pods | jq -r .metadata.resourceVersion)
  local burst_max=${BENCH_BURST_MAX:-$((120 + pods / 100))}
  python3 "$tmp/watch.py" "$HUB" "$pods" "$d/watch.out" "$(awk -v t="$(now)" -v m="$burst_max" 'BEGIN {printf "%d", t + m}')" "$rv" \
    2>"$d/watch.err" &
  watchpid=$!
  rm -f "$d/probe.stop"
  if [ "${BENCH_PROBE:-1}" != 0 ]; then
    python3 "$tmp/probe.py" "$HUB" "$d/probe" "$d/probe.stop" 2>"$d/probe.err" &
    probepid=$!
  fi
  case "${HUB_WRAP:-}" in *callgrind*) callgrind_control -i on "$hubpid" >/dev/null 2>&1 ;; esac
  local perfpid=
  if [ -n "${BENCH_PERF:-}" ]; then
    perf record -q -F 499 --call-graph dwarf,16384 -o "$BENCH_PERF.$label.$nodes" -p "$hubpid" >/dev/null 2>&1 &
    perfpid=$!
  fi
  h0=$(cpu_ticks "$hubpid"); m0=$(cpu_ticks "${mospid:-0}")
  local ta
  ta=$(now)
  for i in $(seq 1 $deps); do # all at once, as parallel requests
    local r=$per
    [ "$i" -eq "$deps" ] && r=$((pods - per * (deps - 1)))
    { deployment_json "bench-$i" "$r" | curl -sf --max-time "$burst_max" -X POST -H 'Content-Type: application/json' \
      --data-binary @- "$HUB/apis/apps/v1/namespaces/default/deployments" >/dev/null ||
      echo "  apply bench-$i failed"; } &
  done
  wait $(jobs -p | grep -v -x -e "$watchpid" -e "$simpid" -e "$hubpid" -e "$probepid" ${extpid:+-e "$extpid"} ${perfpid:+-e "$perfpid"})
  local tapplied
  tapplied=$(since "$ta")
  wait "$watchpid"; watchpid=
  h1=$(cpu_ticks "$hubpid"); m1=$(cpu_ticks "${mospid:-0}")
  case "${HUB_WRAP:-}" in *callgrind*) callgrind_control -d -i off "$hubpid" >/dev/null 2>&1 ;; esac
  [ -n "$perfpid" ] && kill -INT "$perfpid" && wait "$perfpid"
  touch "$d/probe.stop"
  [ -n "$probepid" ] && wait "$probepid"
  probepid=
  local alive=1
  if ! kill -0 "$hubpid" 2>/dev/null; then
    alive=0
    echo "  the hub died:"; tail -5 "$d/hub.err" | sed 's/^/    /'
    FAILED+=("$key: the hub died")
  elif ! curl -sf --max-time "$HZ_TIMEOUT" "$HUB/healthz" >/dev/null; then
    echo "  hub API not answering after the Deployments: the hub is stuck"
    hub_stacks "$hubpid"
    FAILED+=("$key: hub API not answering after the burst")
  fi
  local tb tr fin tf tc
  tf=$(awk '$1 == "first" {print $2}' "$d/watch.out")
  tc=$(awk '$1 == "created" {print $2}' "$d/watch.out")
  tb=$(awk '$1 == "bound" {print $2}' "$d/watch.out")
  tr=$(awk '$1 == "running" {print $2}' "$d/watch.out")
  fin=$(awk '$1 == "final" {$1 = ""; $2 = ""; print}' "$d/watch.out")
  printf '  %-46s %s s\n' "$deps Deployments applied (parallel API calls)" "$tapplied"
  [ -n "$tf" ] && printf '  %-46s %s s\n' "first pod seen on the watch" "$(awk -v a="$ta" -v b="$tf" 'BEGIN {printf "%.2f", b - a}')"
  [ -n "$tc" ] && printf '  %-46s %s s\n' "all $pods pods created (Deployment controller)" "$(awk -v a="$ta" -v b="$tc" 'BEGIN {printf "%.2f", b - a}')"
  local bound_s= run_s=
  if [ -n "$tb" ]; then
    bound_s=$(awk -v a="$ta" -v b="$tb" 'BEGIN {printf "%.2f", b - a}')
    R[$key bound_s]=$bound_s
    R[$key placements]=$(awk -v s="$bound_s" -v p="$pods" 'BEGIN {if (s > 0) printf "%.0f", p / s}')
    printf '  %-46s %s s -> %s placements/s (target 5000; Kubernetes threshold 100)\n' \
      "all $pods pods bound (spec.nodeName)" "$bound_s" "${R[$key placements]}"
  else
    printf '  %-46s not reached (%s)\n' "all $pods pods bound" "$fin"
    FAILED+=("$key: not all pods bound")
  fi
  if [ -n "$tr" ]; then
    run_s=$(awk -v a="$ta" -v b="$tr" 'BEGIN {printf "%.2f", b - a}')
    R[$key running_s]=$run_s
    [ -n "$bound_s" ] && R[$key ratio]=$(awk -v r="$run_s" -v b="$bound_s" 'BEGIN {if (b > 0) printf "%.2f", r / b}')
    printf '  %-46s %s s, %sx the placement time (target <= 2x)\n' "all $pods pods Running and Ready" "$run_s" "${R[$key ratio]:--}"
  else
    printf '  %-46s not reached (%s)\n' "all $pods pods Running" "$fin"
    FAILED+=("$key: not all pods Running")
  fi
  local cpu_t=$((h1 - h0))
  R[$key cpu_ms_pod]=$(awk -v t="$cpu_t" -v k="$TICK" -v p="$pods" 'BEGIN {if (t > 0) printf "%.3f", t * 1000 / k / p}')
  printf '  %-46s hub %s s (%s ms per pod), mosquitto %s s\n' "CPU time used, apply -> all Running" \
    "$(secs "$cpu_t")" "${R[$key cpu_ms_pod]:-0}" "$(secs $((m1 - m0)))"
  local hub_rss hub_priv mq_rss mq_priv
  hub_rss=$(rss_kib "$hubpid"); hub_priv=$(private_kib "$hubpid")
  mq_rss=$(rss_kib "${mospid:-0}"); mq_priv=$(private_kib "${mospid:-0}")
  R[$key priv]=$(mib "$hub_priv")
  R[$key kib_pod]=$(awk -v a="$idle_hub_priv" -v b="$hub_priv" -v p="$pods" 'BEGIN {if (b > a) printf "%.1f", (b - a) / p}')
  printf '  %-46s RSS %s, private %s: %s KiB per pod over idle\n' "hub memory with $pods pods" \
    "$(mib "$hub_rss")" "$(mib "$hub_priv")" "${R[$key kib_pod]:--}"
  printf '  %-46s RSS %s, private %s\n' "mosquitto memory with $pods pods" "$(mib "$mq_rss")" "$(mib "$mq_priv")"
  local what s
  for what in healthz list; do
    s=$(probe_stats "$d/probe.$what")
    R[$key $what]=$s
    printf '  %-46s %s (ms)\n' "API during the burst: GET ${what/list/pods?limit=500}" "$s"
    [ "${BENCH_PROBE:-1}" = 0 ] || [ "$(field "$s" n)" -gt 0 ] || FAILED+=("$key: the API prober got no answer to $what")
  done
  local behind lost
  behind=$(grep -c 'fell behind the change log' "$d/hub.err")
  lost=$(grep -c 'broker connection lost' "$d/hub.err")
  R[$key behind]=$behind R[$key lost]=$lost
  printf '  %-46s "fell behind the change log" %s, "broker connection lost" %s\n' "hub warnings" "$behind" "$lost"
  local errs
  errs=$(grep -vc 'level=debug\|level=info' "$d/hub.err")
  if [ "$errs" -gt 0 ]; then
    echo "  hub log (warnings and errors): $errs lines, the last ones:"
    grep -v 'level=debug\|level=info' "$d/hub.err" | tail -5 | cut -c1-300 | sed 's/^/    /'
  fi
  if [ -n "${BENCH_KEEP:-}" ]; then
    mkdir -p "$BENCH_KEEP" && cp "$d/hub.err" "$BENCH_KEEP/hub.$key.err" &&
      echo "  hub log kept in $BENCH_KEEP/hub.$key.err"
  fi
  grep -q 'drops=0 ' "$d/sim.err" || tail -2 "$d/sim.err" | sed 's/^/  fleetsim: /'
  for f in placements running_s cpu_ms_pod; do
    [ -n "${R[$key $f]:-}" ] && [ "${R[$key $f]}" != 0 ] || FAILED+=("$key: figure $f missing or zero")
  done
  [ "$alive" = 1 ] || R[$key died]=1
  if [ -n "${BENCH_MALLOC_STATS:-}" ] && [ "$alive" = 1 ] && command -v gdb >/dev/null; then
    # What of the hub's memory malloc holds in use and what it keeps free (glibc's malloc_stats,
    # written to the hub's stderr).
    local n0
    n0=$(wc -l <"$d/hub.err")
    timeout 60 gdb -p "$hubpid" -batch -ex 'call (void)malloc_stats()' >/dev/null 2>&1
    tail -n +"$((n0 + 1))" "$d/hub.err" | grep -A3 '^Total' | sed 's/^/  malloc: /'
  fi
  stop_all
  tail -1 "$d/sim.out" | sed 's/^/  /'
  case "${HUB_WRAP:-}" in *callgrind*) echo "  callgrind output: see HUB_WRAP's --callgrind-out-file" ;; esac
}

LABELS=(new)
[ -n "$BASE" ] && LABELS=(baseline new)
for sz in "${SIZES[@]}"; do
  for l in "${LABELS[@]}"; do
    b=$BUILD
    [ "$l" = baseline ] && b=$BASE
    run_size "$l" "$b" "${sz%%:*}" "${sz##*:}"
  done
done
echo
echo "== summary (targets: >= 5000 placements/s, all Running within 2x the placement time, API p99 < 100 ms) =="
printf '%-12s %-9s %-8s %-12s %-9s %-7s %-10s %-12s %-10s %-24s %-24s %-6s %-5s\n' size hub ready_s placements/s \
  running_s ratio cpu_ms/pod private_MiB KiB/pod "healthz p50/p99/max ms" "list p50/p99/max ms" behind lost
for sz in "${SIZES[@]}"; do
  for l in "${LABELS[@]}"; do
    k="$l $sz"
    hz=${R[$k healthz]:-} ls=${R[$k list]:-}
    printf '%-12s %-9s %-8s %-12s %-9s %-7s %-10s %-12s %-10s %-24s %-24s %-6s %-5s\n' "$sz" "$l" \
      "${R[$k ready_s]:--}" "${R[$k placements]:--}" "${R[$k running_s]:--}" "${R[$k ratio]:--}" \
      "${R[$k cpu_ms_pod]:--}" "${R[$k priv]:--}" "${R[$k kib_pod]:--}" \
      "$(field "$hz" p50)/$(field "$hz" p99)/$(field "$hz" max)" \
      "$(field "$ls" p50)/$(field "$ls" p99)/$(field "$ls" max)" "${R[$k behind]:--}" "${R[$k lost]:--}"
  done
done
if [ ${#FAILED[@]} -gt 0 ]; then
  echo
  echo "== problems =="
  printf '  %s\n' "${FAILED[@]}"
  # A short run (CI) checks that the figures exist; a full run reports and exits 1 as well.
  exit 1
fi
exit 0
