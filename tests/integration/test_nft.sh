#!/usr/bin/env bash
# The agent's nftables table (agent/net/nft.c) applied with the real nft inside a network
# namespace: "pods" are network namespaces on a bridge, busybox httpd and curl the traffic. Checks
# a ClusterIP, a Service without endpoints, NodePort, hairpin, default-deny and allow
# policies, pods the table does not know, the fail-closed rule and an atomic replace under a
# request loop. Every request is bounded (wget -T, timeout).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/device.sh"
netns_enter "$0" "$@"

for t in nft busybox curl; do
  command -v "$t" >/dev/null || { echo "SKIP: $t missing" >&2; exit 77; }
done
DRIVER="$DROVER_BUILD_DIR/tests/nft_driver"
[ -x "$DRIVER" ] || { echo "nft_driver not built: $DRIVER" >&2; exit 1; }

fails=0
ok() { echo "ok - $1"; }
bad() { echo "not ok - $1"; fails=$((fails + 1)); }
check() { local name="$1"; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }

work="$(mktemp -d)"
tag="nft$$"
pods=(a b c d)
cleanup() {
  local p
  for p in "${pods[@]}"; do
    ip netns pids "$tag-$p" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$tag-$p" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT

# The node: bridge drv1 with the gateway 10.42.1.1 (podCIDR 10.42.1.0/24), forwarding on.
sysctl -qw net.ipv4.ip_forward=1
ip link add drv1 type bridge && ip addr add 10.42.1.1/24 dev drv1 && ip link set drv1 up || exit 1
# A node has a default route (the Service CIDR is routed nowhere else).
ip route add default dev host0 || exit 1
# Pods: a = client (app=client), b = web (app=web, http:8080), c = other (app=other),
# d = a pod the table does not know yet.
n=2
for p in "${pods[@]}"; do
  ip netns add "$tag-$p" || exit 1
  ip link add "v$tag$p" type veth peer name eth0 netns "$tag-$p" || exit 1
  # hairpin: a pod reaching itself through a Service is bridged back out its own port (the
  # agent's CNI bridge sets hairpinMode).
  ip link set "v$tag$p" master drv1 up
  ip link set "v$tag$p" type bridge_slave hairpin on
  ip -n "$tag-$p" link set lo up
  ip -n "$tag-$p" addr add "10.42.1.$n/24" dev eth0
  ip -n "$tag-$p" link set eth0 up
  ip -n "$tag-$p" route add default via 10.42.1.1
  n=$((n + 1))
done
mkdir -p "$work/www" && echo "hello from web" >"$work/www/index.html"
ip netns exec "$tag-b" busybox httpd -f -p 8080 -h "$work/www" &
disown
# The node's own address serves nothing: NodePort traffic must be DNAT'd to b.

# get POD URL: a bounded request from a pod ("node" for the node itself), the body on stdout;
# curl's exit status (7: refused, 28: timed out).
get() {
  local pre=()
  [ "$1" = node ] || pre=(ip netns exec "$tag-$1")
  timeout 5 "${pre[@]}" curl -s --noproxy '*' --connect-timeout 2 -m 3 "$2" 2>/dev/null
}
reaches() { [ "$(get "$1" "$2")" = "hello from web" ]; }
# Dropped, not refused nor answered: the request times out.
blocked() { get "$1" "$2" >/dev/null; [ $? -eq 28 ]; }
refused() { get "$1" "$2" >/dev/null; [ $? -eq 7 ]; }

# state POLICIES [ENDPOINTS]: the netstate file with these policies.
state() {
  local pols="$1" eps='[{"ip": "10.42.1.3", "node": "n1", "ready": true, "targetPorts": [8080]}]'
  [ $# -ge 2 ] && eps="$2"
  cat <<EOF
{"node": "n1",
 "local": {"bridge": "drv1", "wg": "drover-wg", "nodeIPs": ["10.255.0.1"], "dns": "10.42.1.1"},
 "network": {"podCIDR": "10.42.1.0/24", "clusterCIDR": "10.42.0.0/16", "serviceCIDR": "10.43.0.0/16",
  "services": [
   {"namespace": "default", "name": "web", "type": "NodePort", "clusterIP": "10.43.0.12",
    "ports": [{"name": "http", "protocol": "TCP", "port": 80, "nodePort": 30080}],
    "endpoints": $eps},
   {"namespace": "default", "name": "empty", "clusterIP": "10.43.0.14",
    "ports": [{"protocol": "TCP", "port": 81}], "endpoints": []}],
  "pods": [
   {"ip": "10.42.1.2", "namespace": "default", "name": "a", "node": "n1", "labels": {"app": "client"}, "ports": []},
   {"ip": "10.42.1.3", "namespace": "default", "name": "b", "node": "n1", "labels": {"app": "web"},
    "ports": [{"name": "http", "protocol": "TCP", "containerPort": 8080}]},
   {"ip": "10.42.1.4", "namespace": "default", "name": "c", "node": "n1", "labels": {"app": "other"}, "ports": []}],
  "namespaces": [{"name": "default", "labels": {"kubernetes.io/metadata.name": "default"}}],
  "networkPolicies": $pols}}
EOF
}
apply() { "$DRIVER" apply "$1" || { echo "apply $1 failed" >&2; return 1; }; }

deny='{"metadata": {"namespace": "default", "name": "deny"},
       "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}}'
allow='{"metadata": {"namespace": "default", "name": "allow"},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                              "ports": [{"port": "http"}]}]}}'
state "[]" >"$work/base.json"
state "[$deny]" >"$work/deny.json"
state "[$deny, $allow]" >"$work/allow.json"
state "[]" "[]" >"$work/noep.json"

check "the rendered table passes nft -c" "$DRIVER" check "$work/base.json"
apply "$work/base.json" || exit 1
check "table inet drover is in place" nft list table inet drover >/dev/null

# Services.
check "pod a reaches web through its ClusterIP" reaches a http://10.43.0.12:80/
check "pod b reaches itself through its ClusterIP (hairpin)" reaches b http://10.43.0.12:80/
check "the node reaches web through the ClusterIP" reaches node http://10.43.0.12:80/
check "the node reaches web on its NodePort" reaches node http://10.255.0.1:30080/
refused_fast() {
  local t0=$SECONDS
  refused a http://10.43.0.14:81/ && [ $((SECONDS - t0)) -le 1 ]
}
check "a Service without endpoints refuses at once (tcp reset)" refused_fast
check "the unknown pod d is dropped (not in the table yet)" blocked d http://10.42.1.3:8080/
check "the unknown pod d is dropped through the ClusterIP" blocked d http://10.43.0.12:80/

# Fail closed: cluster traffic for another node routed anywhere but WireGuard never leaves.
# A probe table of the test counts what would leave through host0 (checked to count once the
# table is gone, at the end).
ip route add 10.42.2.0/24 dev host0
nft -f - <<'NFT'
table ip probe {
  chain post {
    type filter hook postrouting priority 100;
    oifname "host0" ip daddr 10.42.2.0/24 counter
  }
}
NFT
leaked() { nft list table ip probe | grep -o 'packets [0-9]*' | awk '{print $2}'; }
get a http://10.42.2.7:8080/ >/dev/null
check "traffic to another node's pods does not leave in clear ($(leaked) packets)" \
  [ "$(leaked)" = 0 ]

# NetworkPolicy.
apply "$work/deny.json" || exit 1
check "default deny: pod a cannot reach web" blocked a http://10.42.1.3:8080/
check "default deny: not through the ClusterIP either" blocked a http://10.43.0.12:80/
check "default deny: the node itself (probes) still reaches web" reaches node http://10.42.1.3:8080/
apply "$work/allow.json" || exit 1
check "allow from app=client on the named port http: pod a reaches web" reaches a http://10.42.1.3:8080/
check "allow: through the ClusterIP too" reaches a http://10.43.0.12:80/
check "allow: pod c (app=other) is still denied" blocked c http://10.42.1.3:8080/
apply "$work/noep.json" || exit 1
check "endpoints gone: the ClusterIP refuses" refused a http://10.43.0.12:80/

# Atomic replace: a request loop across 20 replacements of the table never fails.
apply "$work/base.json" || exit 1
loop_fail="$work/loop.fail" loop_ok="$work/loop.ok"
: >"$loop_fail"
: >"$loop_ok"
touch "$work/loop.run"
(
  end=$((SECONDS + 30))
  while [ -e "$work/loop.run" ] && [ $SECONDS -lt $end ]; do
    body="$(get a http://10.43.0.12:80/)"
    rc=$?
    # A failure says how (curl's status: 7 refused, 28 timed out, 56 reset) and when.
    if [ "$body" = "hello from web" ]; then echo x >>"$loop_ok"; else echo "$(date +%T.%N) curl=$rc body=${body:0:40}" >>"$loop_fail"; fi
  done
) &
loop=$!
sleep 0.3
applied=0
for i in $(seq 1 20); do
  f="$work/base.json"; [ $((i % 2)) -eq 0 ] && f="$work/allow.json"
  apply "$f" && applied=$((applied + 1))
  sleep 0.05
done
rm -f "$work/loop.run"
wait "$loop"
check "20 table replacements applied" [ "$applied" -eq 20 ]
check "requests ran across the replacements ($(wc -l <"$loop_ok") succeeded)" [ -s "$loop_ok" ]
check "no request failed across the replacements ($(wc -l <"$loop_fail") failures: $(tr '\n' ';' <"$loop_fail"))" \
  [ ! -s "$loop_fail" ]

check "drv_nft_remove deletes the table" "$DRIVER" remove
check "the table is gone" bash -c '! nft list table inet drover >/dev/null 2>&1'
check "removing an absent table is fine" "$DRIVER" remove
get a http://10.42.2.7:8080/ >/dev/null
check "without the table the probe sees the leak ($(leaked) packets)" [ "$(leaked)" -gt 0 ]

echo "$fails failure(s)"
[ "$fails" -eq 0 ]
