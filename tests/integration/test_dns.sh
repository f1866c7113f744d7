#!/usr/bin/env bash
# The node's DNS server (agent/net/dns.c) with real clients, inside a network namespace: the
# module alone (tests/integration/dns/dns_serve) serves a JSON netstate on 10.255.0.1:53, with
# a fake upstream resolver on 127.0.0.2:53. busybox nslookup and python3 ask for a Service's
# A record, a headless Service's endpoints, SRV, PTR, an unknown name (NXDOMAIN), a name of
# the outside world (forwarded, the client's id kept), an upstream that never answers
# (SERVFAIL after the timeout), over UDP and TCP, and a too-large answer over UDP (TC).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/device.sh"
netns_enter "$0" "$@"
command -v python3 >/dev/null || { echo "SKIP: python3 missing" >&2; exit 77; }
command -v busybox >/dev/null || { echo "SKIP: busybox missing" >&2; exit 77; }
SERVE="${DROVER_BUILD_DIR:?}/tests/dns_serve"
[ -x "$SERVE" ] || { echo "dns_serve not built: $SERVE" >&2; exit 1; }

fails=0
ok() { echo "ok - $1"; }
bad() { echo "not ok - $1"; fails=$((fails + 1)); }
check() { local name="$1"; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }

work="$(mktemp -d "${TMPDIR:-/tmp}/drover-dns.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# 60 endpoints for the big headless Service: 60 A records do not fit 512 bytes.
big=$(python3 -c 'import json; print(json.dumps([{"ip": "10.42.9.%d" % i, "ready": True} for i in range(1, 61)]))')
cat >"$work/network.json" <<JSON
{"clusterDomain": "cluster.local", "clusterCIDR": "10.42.0.0/16", "serviceCIDR": "10.43.0.0/16",
 "services": [
  {"namespace": "default", "name": "web", "clusterIP": "10.43.0.12",
   "ports": [{"name": "http", "protocol": "TCP", "port": 80}]},
  {"namespace": "prod", "name": "db", "clusterIP": "None",
   "ports": [{"name": "pg", "protocol": "TCP", "port": 5432}],
   "endpoints": [{"ip": "10.42.1.5", "hostname": "db-0", "ready": true, "targetPorts": [5432]},
                 {"ip": "10.42.2.6", "ready": true, "targetPorts": [5433]},
                 {"ip": "10.42.2.9", "ready": false, "targetPorts": [5432]}]},
  {"namespace": "prod", "name": "big", "clusterIP": "None", "endpoints": $big}],
 "pods": [{"ip": "10.42.2.7", "namespace": "default", "name": "web-abc"}]}
JSON
# Ourselves (10.255.0.1) is listed too: the server must skip it, not forward to itself.
printf 'nameserver 10.255.0.1\nnameserver 127.0.0.2\n' >"$work/resolv.conf"

# The fake upstream: every A query gets 192.0.2.77 (the id and question echoed), except
# names starting with "silent", which get nothing. It logs each question it sees.
cat >"$work/upstream.py" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.2", 53))
print("ready", flush=True)
while True:
    pkt, addr = s.recvfrom(4096)
    i, pos, labels = 12, 12, []
    while pkt[pos]:
        labels.append(pkt[pos + 1:pos + 1 + pkt[pos]].decode()); pos += 1 + pkt[pos]
    qend = pos + 5
    name = ".".join(labels)
    sys.stderr.write("upstream: %s from port %d id %d\n" % (name, addr[1], struct.unpack(">H", pkt[:2])[0]))
    sys.stderr.flush()
    if name.startswith("silent"):
        continue
    hdr = pkt[:2] + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0)
    ans = struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + bytes([192, 0, 2, 77])
    s.sendto(hdr + pkt[12:qend] + ans, addr)
PY
python3 -u "$work/upstream.py" >"$work/upstream.out" 2>"$work/upstream.log" &
pids+=($!)
"$SERVE" 10.255.0.1 53 "$work/network.json" "$work/resolv.conf" >"$work/serve.out" 2>"$work/serve.log" &
pids+=($!)
for _ in $(seq 50); do
  grep -q ready "$work/serve.out" 2>/dev/null && grep -q ready "$work/upstream.out" 2>/dev/null && break
  sleep 0.1
done
grep -q ready "$work/serve.out" || { echo "server did not start:"; cat "$work/serve.log"; exit 1; }

# A small DNS client: q NAME TYPE [tcp] [edns-size] prints "rcode=N tc=0|1 an=N id_ok=1" and
# one line per answer record (A: the address, SRV: "port target", PTR: the target).
cat >"$work/q.py" <<'PY'
import random, socket, struct, sys
name, qtype = sys.argv[1], int(sys.argv[2])
tcp = len(sys.argv) > 3 and sys.argv[3] == "tcp"
edns = int(sys.argv[4]) if len(sys.argv) > 4 else 0
qid = random.randrange(65536)
q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 1 if edns else 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack(">HH", qtype, 1)
if edns:
    q += b"\0" + struct.pack(">HHIH", 41, edns, 0, 0)
if tcp:
    s = socket.create_connection(("10.255.0.1", 53), timeout=8)
    s.sendall(struct.pack(">H", len(q)) + q)
    buf = b""
    while True:
        d = s.recv(65536)
        if not d: break
        buf += d
    r = buf[2:2 + struct.unpack(">H", buf[:2])[0]]
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(8)
    s.sendto(q, ("10.255.0.1", 53)); r, _ = s.recvfrom(65536)
def rname(p):
    out = []
    while True:
        n = r[p]
        if n >= 0xC0: return rname(((n & 0x3F) << 8) | r[p + 1])[0], p + 2
        if n == 0: return ".".join(out), p + 1
        out.append(r[p + 1:p + 1 + n].decode()); p += 1 + n
rid, fl, qd, an = struct.unpack(">HHHH", r[:8])
print("rcode=%d tc=%d an=%d id_ok=%d len=%d" % (fl & 15, (fl >> 9) & 1, an, rid == qid, len(r)))
p = rname(12)[1] + 4
for _ in range(an):
    p = rname(p)[1]
    t, c, ttl, l = struct.unpack(">HHIH", r[p:p + 10]); p += 10
    d = r[p:p + l]
    if t == 1: print(".".join(map(str, d)))
    elif t == 33: print(struct.unpack(">H", d[4:6])[0], rname(p + 6)[0])
    elif t == 12: print(rname(p)[0])
    p += l
PY
q() { python3 "$work/q.py" "$@" 2>&1; }
has() { grep -qx -- "$2" <<<"$1"; }
# contains TEXT PATTERN...: every pattern is in TEXT.
contains() { local t="$1" p; shift; for p; do grep -q -- "$p" <<<"$t" || return 1; done; }

# busybox nslookup: a Service's ClusterIP, a headless Service's ready endpoints, NXDOMAIN.
out=$(busybox nslookup web.default.svc.cluster.local 10.255.0.1 2>&1)
check "nslookup: web.default.svc -> 10.43.0.12" grep -q "Address: 10.43.0.12" <<<"$out"
out=$(busybox nslookup db.prod.svc.cluster.local 10.255.0.1 2>&1)
check "nslookup: headless db -> both ready endpoints" \
  contains "$out" "Address: 10.42.1.5" "Address: 10.42.2.6"
check "nslookup: headless db leaves out the endpoint not ready" bash -c '! grep -q 10.42.2.9' <<<"$out"
out=$(busybox nslookup nope.default.svc.cluster.local 10.255.0.1 2>&1)
check "nslookup: unknown name -> NXDOMAIN" grep -q NXDOMAIN <<<"$out"
out=$(busybox nslookup -type=srv _pg._tcp.db.prod.svc.cluster.local 10.255.0.1 2>&1)
check "nslookup: SRV of a headless Service's named port" grep -q "5433 10-42-2-6.db.prod.svc.cluster.local" <<<"$out"
out=$(busybox nslookup example.org 10.255.0.1 2>&1)
check "nslookup: outside name forwarded upstream" grep -q "Address: 192.0.2.77" <<<"$out"

# python3 clients: exact answers.
out=$(q WEB.Default.SVC.cluster.local 1)
check "A, any case" has "$out" "10.43.0.12"
check "A: rcode 0, id kept" grep -q "rcode=0 tc=0 an=1 id_ok=1" <<<"$out"
out=$(q db-0.db.prod.svc.cluster.local 1)
check "A of a headless endpoint's hostname" has "$out" "10.42.1.5"
out=$(q _http._tcp.web.default.svc.cluster.local 33)
check "SRV of a ClusterIP Service" has "$out" "80 web.default.svc.cluster.local"
out=$(q 12.0.43.10.in-addr.arpa 12)
check "PTR of a ClusterIP" has "$out" "web.default.svc.cluster.local"
out=$(q 7.2.42.10.in-addr.arpa 12)
check "PTR of a pod IP" has "$out" "10-42-2-7.default.pod.cluster.local"
out=$(q 10-42-2-7.default.pod.cluster.local 1)
check "A of a pod name" has "$out" "10.42.2.7"
out=$(q web.default.svc.cluster.local 28)
check "AAAA of a known name: NOERROR, no answer" grep -q "rcode=0 tc=0 an=0" <<<"$out"
out=$(q nope.prod.svc.cluster.local 1 tcp)
check "NXDOMAIN over TCP" grep -q "rcode=3 tc=0 an=0 id_ok=1" <<<"$out"
out=$(q big.prod.svc.cluster.local 1)
check "60 records over UDP without EDNS: TC" grep -q "rcode=0 tc=1 an=0 id_ok=1" <<<"$out"
out=$(q big.prod.svc.cluster.local 1 udp 1232)
check "60 records over UDP with EDNS 1232: fit" grep -q "rcode=0 tc=0 an=60 id_ok=1" <<<"$out"
out=$(q big.prod.svc.cluster.local 1 tcp)
check "60 records over TCP" grep -q "rcode=0 tc=0 an=60 id_ok=1" <<<"$out"
out=$(q www.example.net 1)
check "forwarded over UDP: the upstream's answer, the client's id" \
  contains "$out" "rcode=0 tc=0 an=1 id_ok=1" "^192.0.2.77$"
out=$(q ftp.example.net 1 tcp)
check "forwarded for a TCP client" has "$out" "192.0.2.77"
# Each forwarded query leaves from its own source port with its own id.
q a1.example.net 1 >/dev/null; q a2.example.net 1 >/dev/null
ports=$(grep -E "upstream: a[12]\.example\.net" "$work/upstream.log" | awk '{print $5}' | sort -u | wc -l)
check "fresh source port per forwarded query" test "$ports" -eq 2
check "the server never forwarded to itself" bash -c "! grep -q 'no upstream' '$work/serve.log'"
start=$(date +%s%N)
out=$(q silent.example.net 1)
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "an upstream that never answers: SERVFAIL ($ms ms)" grep -q "rcode=2 tc=0 an=0 id_ok=1" <<<"$out"
check "SERVFAIL after the timeout (2 s here), not before" test "$ms" -ge 1900
# Hostile packets do not stop the server.
python3 - <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for p in [b"", b"\x00", b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
          bytes(range(256)) * 4]:
    s.sendto(p, ("10.255.0.1", 53))
PY
out=$(q web.default.svc.cluster.local 1)
check "still answering after hostile packets" has "$out" "10.43.0.12"

if [ "$fails" -ne 0 ]; then
  echo "--- server log"; cat "$work/serve.log"; echo "--- upstream log"; cat "$work/upstream.log"
  echo "FAIL: $fails check(s)"
  exit 1
fi
echo "PASS"
