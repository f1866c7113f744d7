#!/usr/bin/env bash
# Smoke test of the hub with a simulated fleet (tests/bench/fleetsim): 200 nodes connect to the
# hub's own broker and become Ready with their reported labels and capacity; a 400-replica
# Deployment is bound across them and every pod is reported Running and Ready within a bound;
# a fleet that shuts down (online false) turns its nodes NotReady. The benchmark at scale is
# tests/bench/hub.sh.
set -uo pipefail
hub="${DROVER_BUILD_DIR:?}/hub/drover-hub"
sim="${DROVER_BUILD_DIR}/tests/bench/fleetsim"
tf="${DROVER_TEST_TIME_FACTOR:-1}"
command -v jq >/dev/null && command -v curl >/dev/null || { echo "jq/curl missing"; exit 1; }
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || { echo "mosquitto missing"; exit 1; }
[ -x "$sim" ] || { echo "fleetsim not built"; exit 1; }
NODES=200
PODS=400
tmp=$(mktemp -d)
hubpid= simpid=
cleanup() {
  [ -n "$simpid" ] && kill -9 "$simpid" 2>/dev/null
  if [ -n "$hubpid" ]; then
    kill "$hubpid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$hubpid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$hubpid" 2>/dev/null
  fi
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
check() { local name=$1; shift; if "$@"; then echo "ok - $name"; else echo "not ok - $name"; fails=$((fails + 1)); fi; }
dump() { echo "--- hub log"; tail -20 "$tmp/hub.err"; echo "--- fleetsim"; tail -5 "$tmp/sim.err"; }
# Polls CMD until it succeeds, at most SECS x time factor.
wait_for() { local secs=$1 i; shift; for i in $(seq 1 $((secs * tf * 5))); do "$@" && return 0; sleep 0.2; done; return 1; }

ulimit -n "$(ulimit -Hn)"
"$hub" --data "$tmp/data" --listen 127.0.0.1:0 --no-auth --no-tls --no-broker-tls --log-level warn >"$tmp/hub.out" 2>"$tmp/hub.err" &
hubpid=$!
url= broker=
for _ in $(seq 1 200); do
  url=$(sed -n 's/^drover-hub: serving \(http:[^ ]*\)$/\1/p' "$tmp/hub.out")
  broker=$(sed -n 's/^drover-hub: broker \(tcp:[^ ]*\)$/\1/p' "$tmp/hub.out")
  [ -n "$url" ] && [ -n "$broker" ] && break
  sleep 0.05
done
[ -n "$url" ] && [ -n "$broker" ] || { echo "hub did not start"; cat "$tmp/hub.err"; exit 1; }

"$sim" --broker "$broker" --verify-key "$tmp/data/pki/signing.pub" --nodes $NODES --prefix sim- --connect-rate 200 --stats-ms 0 >"$tmp/sim.out" 2>"$tmp/sim.err" &
simpid=$!
ready_count() {
  curl -sf "$url/api/v1/nodes" | jq '[.items[] | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))] | length'
}
all_ready() { [ "$(ready_count)" = "$NODES" ]; }
check "$NODES simulated nodes Ready in the API" wait_for 30 all_ready
node=$(curl -sf "$url/api/v1/nodes/sim-00042")
check "node labels from its status report" \
  test "$(jq -r '.metadata.labels["kubernetes.io/arch"] + " " + .metadata.labels["kubernetes.io/hostname"]' <<<"$node")" = "arm64 sim-00042"
check "node capacity from its status report" \
  test "$(jq -r '.status.capacity.cpu + " " + .status.capacity.pods' <<<"$node")" = "4 110"

curl -sf -X POST -H 'Content-Type: application/json' "$url/apis/apps/v1/namespaces/default/deployments" -d "{
  \"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"smoke\"},
  \"spec\":{\"replicas\":$PODS,\"selector\":{\"matchLabels\":{\"app\":\"smoke\"}},
    \"template\":{\"metadata\":{\"labels\":{\"app\":\"smoke\"}},
      \"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"registry.local/smoke:1\",
        \"resources\":{\"requests\":{\"cpu\":\"10m\",\"memory\":\"16Mi\"}}}]}}}}" >/dev/null
t0=$(date +%s)
pods() { curl -sf "$url/api/v1/namespaces/default/pods?labelSelector=app%3Dsmoke"; }
counts() { # -> "created bound running"
  pods | jq -r '[(.items | length),
    ([.items[] | select((.spec.nodeName // "") != "")] | length),
    ([.items[] | select(.status.phase == "Running" and any(.status.conditions[]?; .type == "Ready" and .status == "True")
       and all(.status.containerStatuses[]?; .ready == true and .state.running != null))] | length)] | join(" ")'
}
all_bound() { local c; c=$(counts); [ "${c% *}" = "$PODS $PODS" ]; }
all_running() { [ "$(counts)" = "$PODS $PODS $PODS" ]; }
check "$PODS pods bound to nodes (spec.nodeName)" wait_for 40 all_bound
check "$PODS pods Running and Ready as the simulated nodes report" wait_for 40 all_running
echo "# $PODS pods Running $(($(date +%s) - t0)) s after the apply; $(counts | awk '{print $3}') running"
spread=$(pods | jq '[.items[].spec.nodeName] | unique | length')
check "pods spread over the fleet ($spread nodes)" test "$spread" -ge $((NODES / 2))
own=$(pods | jq -r '[.items[] | select(.status.hostIP != null and .status.podIP != null)] | length')
check "pod IPs from the status reports ($own of $PODS)" test "$own" = "$PODS"

# A clean shutdown publishes {"online":false}: every node turns NotReady.
kill -TERM "$simpid"
wait "$simpid" 2>/dev/null
simpid=
none_ready() { [ "$(ready_count)" = 0 ]; }
check "nodes NotReady after the fleet went offline" wait_for 20 none_ready
check "the simulator reported every node connected" grep -q "connected_at_end=$NODES " "$tmp/sim.out"
[ "$fails" -eq 0 ] || dump
echo "fleetsim smoke checks: $fails failed"
[ "$fails" -eq 0 ]
