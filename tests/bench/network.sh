#!/usr/bin/env bash
# Cluster network benchmarks (issue 17): print figures, assert nothing; exit 1 when a figure
# could not be measured (never a 0 or an inf in its place). Run as root after a build:
#   DROVER_BUILD_DIR=build tests/bench/network.sh [REQUESTS] [RUNS]
#   BENCH_SHORT=1: 20 requests, 1 readiness run, downloads of 5 MiB, nft_bench 100 10 3 (CI:
#   ctest -L bench, bench_network)
# Three devices in network namespaces of their own on a simulated network (wan0; dev3 behind a
# NAT), the hub in its default secure configuration (tests/integration/lib/fleet.sh, as
# tests/integration/test_fleet_network.sh). Each figure beside its baseline, in the same run:
# 1. pod -> pod across devices through WireGuard (client on dev1 -> a pod on dev2, and on dev3
#    behind the NAT) vs on one device (client on dev1 -> a pod on dev1): per-request time of
#    REQUESTS (default 200) short HTTP GETs (busybox wget, a new TCP connection each, to busybox
#    httpd), p50/p99, timed inside the client pod (busybox adjtimex: microseconds; the cost of
#    one timestamp is printed as "timing overhead", included in every request); and the rate of
#    a 50 MiB download (p50 of 3).
# 2. the same pairs through the Service's ClusterIP vs straight to the pod IP.
# 3. readiness: from the moment a pod's ready file is removed (its probe: every 1 s, one
#    failure) until the API's EndpointSlice says not ready and until every device's nftables
#    table has no DNAT to it any more; and back (file restored). Per device and max, RUNS
#    (default 5) runs; each device's table polled every ~20 ms (nsenter + nft list).
# 4. the agent's nftables update with 1,000 Services of 2 endpoints vs 10 (tests/bench/nft_bench.c).
set -uo pipefail
here="$(cd "$(dirname "$0")/../integration" && pwd)"
DROVER_BUILD_DIR="$(cd "${DROVER_BUILD_DIR:-build}" && pwd)"
export DROVER_BUILD_DIR
source "$here/lib/fleet.sh"
netns_enter "$0" "$@"
BIG_MIB=50 # the download
nft_args=(1000 10 "${NFT_RUNS:-7}")
if [ "${BENCH_SHORT:-0}" = 1 ]; then
  REQUESTS="${1:-20}"
  RUNS="${2:-1}"
  BIG_MIB=5
  nft_args=(100 10 "${NFT_RUNS:-3}")
fi
REQUESTS="${1:-${REQUESTS:-200}}"
RUNS="${2:-${RUNS:-5}}"
NFT_BENCH="$DROVER_BUILD_DIR/tests/bench/nft_bench"
failed=0
# fail WHAT: a measurement that could not be made (said on stdout with the figures).
fail() {
  echo "NOT MEASURED: $*"
  failed=1
}
for t in wg wireguard-go nft; do
  command -v "$t" >/dev/null 2>&1 || { echo "network bench: missing $t" >&2; exit 1; }
done
fleet_require_tools || exit 1
[ -x "$NFT_BENCH" ] || { echo "network bench: nft_bench not built: $NFT_BENCH" >&2; exit 1; }

# ---- 4. nftables update (first: the fleet's agents would disturb it) ----
nft_out="$("$NFT_BENCH" "${nft_args[@]}")" || nft_out="$nft_out
NOT MEASURED: nft_bench failed"
echo "$nft_out" >&2

# ---- the fleet ----
export DEVICE_LOG_LEVEL=info FLEET_HUB_LOG_LEVEL=info FLEET_SECURE=1
fleet_wan_setup || exit 1
fleet_setup || exit 1
fleet_hub_start || { fleet_dump; exit 1; }
fleet_netns_device dev1 1 || exit 1
fleet_netns_device dev2 2 || exit 1
fleet_netns_device_nat dev3 3 || exit 1
for k in 1 2 3; do
  fleet_device_start "dev$k" "$k" || { fleet_dump; exit 1; }
done
for k in 1 2 3; do
  fleet_wait "node dev$k Ready" 60 "/api/v1/nodes/dev$k" "$FLEET_JQ_READY" || { fleet_dump; exit 1; }
done

# A server pod on each device (srv-dK, its own Service srv-dK; srv-d2 and srv-d3 also behind
# the Service both), a client on dev1.
: >"$FLEET_TMP/net.yaml"
for k in 1 2 3; do
  cat >>"$FLEET_TMP/net.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: srv-d$k}
spec:
  selector: {app: srv-d$k}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: srv-d$k, labels: {app: srv-d$k, both: "$([ "$k" = 1 ] && echo no || echo yes)"}}
spec:
  nodeSelector: {device: "d$k"}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: $FLEET_IMG1
    ports: [{name: http, containerPort: 8080}]
    command: ["sh", "-c", "mkdir -p /www && echo srv-d$k > /www/index.html && dd if=/dev/zero of=/www/big bs=1M count=$BIG_MIB 2>/dev/null && touch /tmp/ready && exec httpd -f -p 8080 -h /www"]
    readinessProbe:
      exec: {command: ["test", "-f", "/tmp/ready"]}
      periodSeconds: 1
      failureThreshold: 1
---
YAML
done
cat >>"$FLEET_TMP/net.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: both}
spec:
  selector: {both: "yes"}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {role: client}}
spec:
  nodeSelector: {device: "d1"}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: $FLEET_IMG1
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
YAML
fleet_apply "$FLEET_TMP/net.yaml" >/dev/null || { fleet_dump; exit 1; }
fleet_running 'app in (srv-d1,srv-d2,srv-d3)' 3 180 || { fleet_dump; exit 1; }
fleet_running role=client 1 60 || { fleet_dump; exit 1; }

# The pods' uids and addresses, asked of the hub here (never in a subshell: kept).
declare -A pip cip
fleet_pod_uids client srv-d1 srv-d2 srv-d3
for k in 1 2 3; do
  pip[dev$k]="$(fleet_api "/api/v1/namespaces/default/pods/srv-d$k" | jq -r .status.podIP)"
  cip[dev$k]="$(fleet_api "/api/v1/namespaces/default/services/srv-d$k" | jq -r .spec.clusterIP)"
done
export FLEET_EXEC_TIMEOUT=10
reaches() { [ "$(fleet_pexec dev1 client wget -q -O - "$1" 2>/dev/null)" = "$2" ]; }
for k in 1 2 3; do
  wait_for "client -> srv-d$k (pod IP)" 90 reaches "http://${pip[dev$k]}:8080/" "srv-d$k" &&
    wait_for "client -> srv-d$k (ClusterIP)" 30 reaches "http://${cip[dev$k]}/" "srv-d$k" ||
    { fleet_dump; exit 1; }
done

# ---- 1 and 2: latency and throughput, client on dev1 ----
# us_diffs: the differences between consecutive adjtimex timestamps (time.tv_sec and
# time.tv_usec lines) on stdin, in ms, then a line "fails N": the FAIL lines.
us_diffs() {
  awk '/time.tv_sec:/ {s = $2} /time.tv_usec:/ {t = s * 1000000 + $2; if (p) printf "%.3f\n", (t - p) / 1000; p = t}
       /^FAIL/ {f++} END {printf "fails %d\n", f}'
}
# stats LABEL MS...: n, p50, p99, max (ms)
stats() {
  local label="$1"
  shift
  printf '%s\n' "$@" | sort -g | awk -v l="$label" '{v[NR] = $1} END {
    i50 = int(NR * 0.50 + 0.999999); i99 = int(NR * 0.99 + 0.999999)
    printf "  %-48s n=%d p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms\n", l, NR, v[i50], v[i99], v[NR] }'
}
declare -A lat_p50
# latency LABEL URL: REQUESTS GETs of URL from the client, one timestamp before each.
latency() {
  local label="$1" url="$2" out ms fails
  out="$(FLEET_EXEC_TIMEOUT=300 fleet_pexec dev1 client sh -c \
    "for i in \$(seq $REQUESTS); do busybox adjtimex; wget -q -O /dev/null '$url' || echo FAIL; done; busybox adjtimex" 2>/dev/null |
    us_diffs)"
  fails="$(echo "$out" | awk '/^fails/ {print $2}')"
  mapfile -t ms < <(echo "$out" | grep -v '^fails')
  if [ "${#ms[@]}" -ne "$REQUESTS" ] || [ "${fails:-x}" != 0 ]; then
    fail "$label: ${#ms[@]} of $REQUESTS requests timed, ${fails:-?} failed"
    return
  fi
  stats "$label" "${ms[@]}"
}
# rate LABEL URL: p50 of 3 downloads of the BIG_MIB file, in MB/s (10^6 bytes).
rate() {
  local label="$1" url="$2" i out rates=() bytes us
  for i in 1 2 3; do
    out="$(FLEET_EXEC_TIMEOUT=300 fleet_pexec dev1 client sh -c \
      "busybox adjtimex; wget -q -O - '$url' | wc -c; busybox adjtimex" 2>/dev/null)"
    bytes="$(echo "$out" | grep -E '^ *[0-9]+$' | tr -d ' ')"
    us="$(echo "$out" | us_diffs | grep -v '^fails' | head -n 1)"
    if [ "$bytes" != $((BIG_MIB << 20)) ] || [ -z "$us" ]; then
      fail "$label: download $i got ${bytes:-nothing} of $((BIG_MIB << 20)) bytes"
      return
    fi
    rates+=("$(awk -v b="$bytes" -v ms="$us" 'BEGIN {if (ms > 0) printf "%.1f", b / 1e6 / (ms / 1000)}')")
    [ -n "${rates[-1]}" ] || { fail "$label: download $i took no measurable time"; return; }
  done
  printf '  %-48s %s MB/s (runs: %s)\n' "$label" \
    "$(printf '%s\n' "${rates[@]}" | sort -g | sed -n 2p)" "${rates[*]}"
}

echo
echo "Cluster network: 3 devices (network namespaces on a simulated network wan0, dev3 behind a NAT),"
fleet_use dev1
if device_exec ip -d link show drover-wg 2>/dev/null | grep -qw wireguard; then wgkind="kernel"; else wgkind="userspace (wireguard-go)"; fi
echo "WireGuard on the devices: $wgkind; $(nproc) cores $(uname -m)"
echo "pod -> pod, client on dev1: $REQUESTS HTTP GETs, a new connection each (busybox wget -> httpd)"
timing="$(FLEET_EXEC_TIMEOUT=120 fleet_pexec dev1 client sh -c \
  "for i in \$(seq $REQUESTS); do busybox adjtimex; done; busybox adjtimex" 2>/dev/null | us_diffs | grep -v '^fails')"
if [ -n "$timing" ]; then
  mapfile -t tms <<<"$timing"
  stats "timing overhead (a timestamp, no request)" "${tms[@]}"
else
  fail "timing overhead: busybox adjtimex gave no timestamps in the pod"
fi
latency "same device, pod IP      (dev1 -> dev1)" "http://${pip[dev1]}:8080/"
latency "same device, ClusterIP   (dev1 -> dev1)" "http://${cip[dev1]}/"
latency "across WireGuard, pod IP (dev1 -> dev2)" "http://${pip[dev2]}:8080/"
latency "across WireGuard, ClusterIP (dev1 -> dev2)" "http://${cip[dev2]}/"
latency "across WireGuard, pod IP (dev1 -> dev3, NAT)" "http://${pip[dev3]}:8080/"
latency "across WireGuard, ClusterIP (dev1 -> dev3, NAT)" "http://${cip[dev3]}/"
echo "$BIG_MIB MiB download (wget -O - | wc -c), p50 of 3:"
rate "same device, pod IP      (dev1 -> dev1)" "http://${pip[dev1]}:8080/big"
rate "same device, ClusterIP   (dev1 -> dev1)" "http://${cip[dev1]}/big"
rate "across WireGuard, pod IP (dev1 -> dev2)" "http://${pip[dev2]}:8080/big"
rate "across WireGuard, ClusterIP (dev1 -> dev2)" "http://${cip[dev2]}/big"
rate "across WireGuard, pod IP (dev1 -> dev3, NAT)" "http://${pip[dev3]}:8080/big"

# ---- 3. readiness -> every device's table ----
declare -A netpid
for n in dev1 dev2 dev3; do
  fleet_use "$n" && netpid[$n]="$(_device_init_pid)"
done
ip2="${pip[dev2]}"
# dnat_count NODE: the DNATs to srv-d2 in NODE's table ("" when the table cannot be read).
dnat_count() {
  local t
  t="$(nsenter -t "${netpid[$1]}" -n nft list table inet drover 2>/dev/null)" || return 1
  [ -n "$t" ] || return 1
  grep -cF "dnat ip to $ip2:8080" <<<"$t" || true # grep -c: status 1 on a count of 0
}
# poll_node NODE WANT(gone|back) FILE: the ms time the table first matches, into FILE.
poll_node() {
  local n="$1" want="$2" file="$3" c deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if c="$(dnat_count "$n")"; then
      if { [ "$want" = gone ] && [ "$c" -eq 0 ]; } || { [ "$want" = back ] && [ "$c" -gt 0 ]; }; then
        fleet_ms >"$file"
        return
      fi
    fi
    sleep 0.02
  done
}
# poll_api WANT FILE: the ms time the EndpointSlice of srv-d2 says srv-d2 (not) ready.
poll_api() {
  local want="$1" file="$2" r deadline=$((SECONDS + 60))
  local path="/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io/service-name=srv-d2"
  while [ "$SECONDS" -lt "$deadline" ]; do
    r="$(fleet_api "$path" 2>/dev/null | jq -r --arg ip "$ip2" \
      '[.items[].endpoints[]? | select(.addresses[0] == $ip and .conditions.ready)] | length')"
    if { [ "$want" = gone ] && [ "$r" = 0 ]; } || { [ "$want" = back ] && [ "$r" = 1 ]; }; then
      fleet_ms >"$file"
      return
    fi
    sleep 0.02
  done
}
declare -A rd
# flip WANT CMD: start the pollers, run CMD in srv-d2 (its time taken inside the pod, right
# after), wait for the pollers; appends "api dev1 dev2 dev3 max" ms to rd[WANT].
flip() {
  local want="$1" cmd="$2" n t0 pids=() line="" max=0 v
  rm -f "$FLEET_TMP"/flip.*
  for n in dev1 dev2 dev3; do
    [ "$want" = gone ] && [ "$(dnat_count "$n")" = 0 ] && { fail "readiness: $n had no DNAT to srv-d2 before"; return 1; }
    poll_node "$n" "$want" "$FLEET_TMP/flip.$n" &
    pids+=($!)
  done
  poll_api "$want" "$FLEET_TMP/flip.api" &
  pids+=($!)
  t0="$(fleet_pexec dev2 srv-d2 sh -c "$cmd; busybox adjtimex" 2>/dev/null | awk '/time.tv_sec:/ {s = $2} /time.tv_usec:/ {printf "%.0f\n", s * 1000 + int($2 / 1000)}')"
  wait "${pids[@]}"
  [ -n "$t0" ] || { fail "readiness: the change in srv-d2 could not be made/timed"; return 1; }
  for n in api dev1 dev2 dev3; do
    if [ ! -s "$FLEET_TMP/flip.$n" ]; then
      fail "readiness ($want): $n did not follow within 60 s"
      for v in dev1 dev2 dev3; do
        echo "# $v: $(dnat_count "$v") DNATs to $ip2 in its table" >&2
        fleet_use "$v" && tail -n 20 "$DEV_LOG" >&2
      done
      [ -z "${NET_BENCH_HOLD:-}" ] || sleep "$NET_BENCH_HOLD"
      return 1
    fi
    v=$(($(cat "$FLEET_TMP/flip.$n") - t0))
    line="$line $v"
    [ "$n" = api ] || [ "$v" -le "$max" ] || max="$v"
  done
  rd[$want]="${rd[$want]:-}$line $max
"
  echo "# readiness $want:$line (api dev1 dev2 dev3), max $max ms" >&2
}
readiness_ok=1
for i in $(seq 1 "$RUNS"); do
  flip gone "rm -f /tmp/ready" || { readiness_ok=0; break; }
  flip back "touch /tmp/ready" || { readiness_ok=0; break; }
done
echo "readiness of srv-d2 (probe every 1 s, failureThreshold 1) -> nftables of every device, $RUNS runs:"
if [ "$readiness_ok" = 1 ]; then
  for want in gone back; do
    col=1
    for what in "API EndpointSlice (hub)" "table of dev1" "table of dev2 (its own)" "table of dev3 (NAT)" "all three tables (max)"; do
      mapfile -t v < <(printf '%s' "${rd[$want]}" | awk -v c="$col" 'NF {print $c}')
      stats "$([ "$want" = gone ] && echo "not ready" || echo "ready again") -> $what" "${v[@]}"
      col=$((col + 1))
    done
  done
fi

echo
echo "$nft_out"
case "$nft_out" in *"NOT MEASURED"*) failed=1 ;; esac
[ "$failed" = 0 ] || echo "network bench: some figures could not be measured (NOT MEASURED above)" >&2
exit "$failed"
