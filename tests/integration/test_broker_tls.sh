#!/usr/bin/env bash
# drover-hub --broker-tls against the real Mosquitto: TLS only, a client certificate of the
# hub's CA required, its CN is the username, and the ACL keeps a device to its own node's
# topics. The devices are mosquitto_pub/mosquitto_sub with keys and CSRs made here with openssl
# and certificates from the hub's enrollment (POST /api/v1/enroll with a bootstrap token): the
# ACL has a block only for enrolled nodes.
set -uo pipefail
hub="${DROVER_BUILD_DIR:?}/hub/drover-hub"
for t in jq curl openssl mosquitto_pub mosquitto_sub; do
  command -v "$t" >/dev/null || { echo "$t missing"; exit 77; }
done
[ -x /usr/sbin/mosquitto ] || { echo "mosquitto missing"; exit 77; }
tmp=$(mktemp -d)
hubpid=
cleanup() { [ -n "$hubpid" ] && kill "$hubpid" 2>/dev/null; wait 2>/dev/null; [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"; }
trap cleanup EXIT
fails=0
check() { local name=$1; shift; if "$@"; then echo "ok - $name"; else echo "not ok - $name"; fails=$((fails + 1)); fi; }
wait_until() { local i; for i in $(seq 1 "$1"); do "${@:2}" && return 0; sleep 0.1; done; return 1; }

data=$tmp/data
start_hub() { # [BROKER-PORT]
  # Emptied here, not only by the child's redirection, which may come after the first read
  # below: that read would find the previous hub's lines (its URL, then no broker line).
  : >"$tmp/hub.out"
  "$hub" --data "$data" --listen 127.0.0.1:0 --broker-listen "127.0.0.1:${1:-0}" --broker-tls --no-auth --no-tls \
    --no-controllers >"$tmp/hub.out" 2>>"$tmp/hub.err" &
  hubpid=$!
  url=
  for _ in $(seq 1 100); do
    url=$(sed -n 's/^drover-hub: serving \(http:[^ ]*\)$/\1/p' "$tmp/hub.out"); [ -n "$url" ] && break; sleep 0.05
  done
  broker=$(sed -n 's/^drover-hub: broker ssl:\/\/\(.*\)$/\1/p' "$tmp/hub.out")
  bport=${broker##*:}
  [ -n "$url" ] && [ -n "$bport" ] || { echo "hub did not start with an ssl:// broker"; cat "$tmp/hub.out" "$tmp/hub.err"; exit 1; }
  for _ in $(seq 1 100); do
    curl -s "$url/metrics" | grep -q '^drover_mqtt_connected 1' && break; sleep 0.05
  done
}
start_hub
check "the hub's own client is connected over TLS" bash -c "curl -s '$url/metrics' | grep -q '^drover_mqtt_connected 1'"

conf=$data/broker/mosquitto.conf
check "config: one listener" test "$(grep -c '^listener ' "$conf")" = 1
for l in 'require_certificate true' 'allow_anonymous false' "plugin_opt_socket $data/broker/auth.sock" \
  'plugin_opt_hub_user drover-hub'; do
  check "config: $l" grep -qx "$l" "$conf"
done
check "config: the drover-auth plugin" grep -qE '^plugin /.*/drover-auth\.so$' "$conf"
check "config: no ACL file (the plugin decides)" bash -c "! grep -q '^acl_file' '$conf'"
# The hub's side of the plugin's socket: garbage gets a clear refusal, never an "ok".
ask() { python3 -c 'import socket,sys
s=socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode("latin-1"))
print(s.recv(256).decode("latin-1").strip())' "$data/broker/auth.sock" "$1" 2>&1; }
check "auth socket: garbage is refused as malformed" test "$(ask $'hello\n')" = "no malformed question"
check "auth socket: a bad node name is refused" test "$(ask $'drover-auth v1 a/b+ QUJD\n')" = "no malformed question"
check "auth socket: no key is refused" test "$(ask $'drover-auth v1 dev-a\n')" = "no malformed question"
check "auth socket: an unknown node is refused" test "$(ask $'drover-auth v1 dev-q QUJD\n')" = "no node dev-q is not enrolled"
check "auth socket: two lines at once are refused" test "$(ask $'drover-auth v1 dev-q QUJD\nx\n')" = "no malformed question"
check "config: no anonymous access" bash -c "! grep -qx 'allow_anonymous true' '$conf'"
mode() { stat -c %a "$1"; }
check "hub client key 0600" test "$(mode "$data/pki/hub-client.key")" = 600
check "hub client certificate 0600" test "$(mode "$data/pki/hub-client.crt")" = 600
check "broker server key 0600" test "$(mode "$data/broker/server.key")" = 600
check "broker server certificate issued by the hub CA" bash -c "openssl verify -CAfile '$data/pki/ca.crt' -purpose sslserver '$data/broker/server.crt' >/dev/null"
check "broker server certificate names 127.0.0.1" bash -c "openssl x509 -in '$data/broker/server.crt' -noout -ext subjectAltName | grep -q 'IP Address:127.0.0.1'"
check "hub client certificate CN drover-hub" bash -c "openssl x509 -in '$data/pki/hub-client.crt' -noout -subject | grep -q 'CN *= *drover-hub'"

# Device certificates: dev-a and dev-b from the hub's CA, evil from another CA.
mkdev() { # NAME CAKEY CACERT
  openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/$1.key" 2>/dev/null
  chmod 600 "$tmp/$1.key"
  openssl req -new -key "$tmp/$1.key" -subj "/CN=$1" -out "$tmp/$1.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' >"$tmp/$1.ext"
  openssl x509 -req -in "$tmp/$1.csr" -CA "$3" -CAkey "$2" -CAcreateserial -days 2 \
    -extfile "$tmp/$1.ext" -out "$tmp/$1.crt" 2>/dev/null
}
# enrol NAME: key and CSR here, certificate from the hub.
boot=$(curl -s -X POST "$url/api/v1/tokens" -d '{"kind":"bootstrap","uses":2}' | jq -r .token)
enrol() {
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
    -keyout "$tmp/$1.key" -out "$tmp/$1.csr" 2>/dev/null
  jq -n --arg t "$boot" --rawfile c "$tmp/$1.csr" '{token: $t, csr: $c}' |
    curl -s -X POST "$url/api/v1/enroll" -d @- | jq -r .certificate >"$tmp/$1.crt"
}
enrol dev-a
enrol dev-b
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/evilca.key" 2>/dev/null
openssl req -new -x509 -key "$tmp/evilca.key" -subj "/CN=evil-ca" -days 2 -out "$tmp/evilca.crt" 2>/dev/null
mkdev dev-a-forged "$tmp/evilca.key" "$tmp/evilca.crt"
# The forged one claims to be dev-a.
openssl req -new -key "$tmp/dev-a-forged.key" -subj "/CN=dev-a" -out "$tmp/f.csr" 2>/dev/null
openssl x509 -req -in "$tmp/f.csr" -CA "$tmp/evilca.crt" -CAkey "$tmp/evilca.key" -CAcreateserial \
  -days 2 -extfile "$tmp/dev-a-forged.ext" -out "$tmp/dev-a-forged.crt" 2>/dev/null
check "device certificates made" test -s "$tmp/dev-a.crt" -a -s "$tmp/dev-b.crt" -a -s "$tmp/dev-a-forged.crt"

tls=(-h 127.0.0.1 -p "$bport" --cafile "$data/pki/ca.crt")
# Each with the client id its identity may use (the broker's drover-auth plugin refuses any
# other): drover-hub* for the hub, drover-agent-NODE for a node.
as() { local who=$1; shift; # WHO: dev-a, dev-b, hub, forged
  case $who in
    hub) echo --cert "$data/pki/hub-client.crt" --key "$data/pki/hub-client.key" -i "drover-hub-test-$BASHPID" ;;
    forged) echo --cert "$tmp/dev-a-forged.crt" --key "$tmp/dev-a-forged.key" -i drover-agent-dev-a ;;
    *) echo --cert "$tmp/$who.crt" --key "$tmp/$who.key" -i "drover-agent-$who" ;;
  esac
}
# pub WHO TOPIC MSG [ARGS]: exit status of mosquitto_pub (QoS 1: the broker answered).
pub() { local who=$1 t=$2 m=$3; shift 3; timeout 5 mosquitto_pub "${tls[@]}" $(as "$who") -q 1 -t "$t" -m "$m" "$@" 2>>"$tmp/clients.err"; }
# sub WHO SECONDS TOPIC...: what WHO receives within SECONDS (one line per message).
sub() { local who=$1 s=$2; shift 2; local a=(); for t in "$@"; do a+=(-t "$t"); done
  timeout "$s" mosquitto_sub "${tls[@]}" $(as "$who") -q 1 -v "${a[@]}" 2>>"$tmp/clients.err"; true; }

# 1. Who may connect at all.
check "plain tcp connect refused" bash -c "! timeout 5 mosquitto_pub -h 127.0.0.1 -p $bport -t x -m y 2>/dev/null"
check "TLS without a client certificate refused" bash -c "! timeout 5 mosquitto_pub ${tls[*]} -q 1 -t drover/v1/node/dev-a/status -m y 2>/dev/null"
if pub forged drover/v1/node/dev-a/status '{}'; then
  echo "not ok - a certificate of another CA (CN dev-a) refused"; fails=$((fails + 1))
else echo "ok - a certificate of another CA (CN dev-a) refused"; fi
# (Not a heartbeat: the hub would answer a node that beats without reporting with a resync,
# publishing dev-a's desired document and racing the test's own below.)
check "dev-a with its certificate connects" pub dev-a drover/v1/node/dev-a/status '{}'

# 2. dev-b cannot read dev-a's desired state, directly or by wildcard.
doc='{"secret-ish":"for dev-a only"}'
check "the hub identity publishes dev-a's retained desired doc" pub hub drover/v1/node/dev-a/desired "$doc" -r
# (dev-b's certificate works: it reads its own desired doc, so the refusals below are the ACL's.
# A node may subscribe to its own topics only, never to a wildcard filter.)
pub hub drover/v1/node/dev-b/desired '{"for":"dev-b"}' -r
got=$(sub dev-b 2 drover/v1/node/dev-b/desired)
check "dev-b reads its own retained desired doc" test "$got" = 'drover/v1/node/dev-b/desired {"for":"dev-b"}'
got=$(sub dev-b 2 drover/v1/node/dev-a/desired)
check "dev-b subscribing to dev-a/desired gets nothing" test -z "$got"
got=$(sub dev-b 2 '#')
check "dev-b subscribing to # gets nothing (a wildcard is refused)" test -z "$got"
got=$(sub dev-b 2 'drover/v1/#')
check "dev-b subscribing to drover/v1/# gets nothing of dev-a's" bash -c "! grep -q dev-a <<<'$got'"
got=$(sub dev-b 2 'drover/v1/node/+/desired')
check "dev-b subscribing to drover/v1/node/+/desired gets nothing of dev-a's" bash -c "! grep -q dev-a <<<'$got'"
got=$(sub dev-a 2 drover/v1/node/dev-a/desired)
check "dev-a reads its own retained desired doc" test "$got" = "drover/v1/node/dev-a/desired $doc"
# A certificate of the hub's CA for a node that never enrolled is refused at CONNECT: nothing.
mkdev dev-x "$data/pki/ca.key" "$data/pki/ca.crt"
pub hub drover/v1/node/dev-x/desired '{"for":"dev-x"}' -r
got=$(sub dev-x 2 drover/v1/node/dev-x/desired)
check "a CA certificate of a node never enrolled reads nothing" test -z "$got"

# 3. dev-b cannot write on dev-a's topics (nor read its own reports back: write-only).
sub hub 4 drover/v1/node/dev-a/status drover/v1/node/dev-a/events >"$tmp/seen" &
spid=$!
sleep 1
pub dev-b drover/v1/node/dev-a/status '{"forged":"by dev-b"}'
pub dev-b drover/v1/node/dev-a/events '{"forged":"by dev-b"}'
pub dev-b drover/v1/node/dev-a/desired '{"forged":"by dev-b"}' -r
wait "$spid"
check "dev-b's messages on dev-a's topics never arrive" bash -c "! grep -q forged '$tmp/seen'"
got=$(sub dev-a 2 drover/v1/node/dev-a/desired)
check "dev-a's desired doc is still the hub's" test "$got" = "drover/v1/node/dev-a/desired $doc"

# 4. dev-a writes its own status: the hub registers it.
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
report="{\"apiVersion\":\"drover/v1\",\"kind\":\"NodeStatusReport\",
    \"node\":\"dev-a\",\"observedGeneration\":0,\"time\":\"$(now)\",
    \"nodeStatus\":{\"capacity\":{\"cpu\":\"4\",\"memory\":\"4Gi\",\"pods\":\"110\"},
      \"allocatable\":{\"cpu\":\"4\",\"memory\":\"4Gi\",\"pods\":\"110\"},
      \"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],
      \"nodeInfo\":{\"architecture\":\"arm64\",\"operatingSystem\":\"linux\",\"kernelVersion\":\"6.1.0\"},
      \"labels\":{\"site\":\"north\"},
      \"addresses\":[{\"type\":\"InternalIP\",\"address\":\"192.168.1.20\"}]},
    \"pods\":[]}"
check "dev-a publishes its status report" pub dev-a drover/v1/node/dev-a/status "$report"
registered() { test "$(curl -s "$url/api/v1/nodes/dev-a" | jq -r .metadata.name)" = dev-a; }
check "the hub registered node dev-a" wait_until 50 registered
# dev-b cannot pass itself off as dev-a through dev-a's topic: no node appears for its report.
pub dev-b drover/v1/node/dev-c/status "${report//dev-a/dev-c}"
sleep 1
check "dev-b cannot register node dev-c" test "$(curl -s -o /dev/null -w '%{http_code}' "$url/api/v1/nodes/dev-c")" = 404

check "the hub is still running" kill -0 "$hubpid"
kill "$hubpid"; wait "$hubpid"; hubpid=

# 5. A restart keeps the hub's client certificate, and the broker still holds dev-a's doc.
before=$(sha256sum <"$data/pki/hub-client.crt")
start_hub "$bport"
check "restart: hub client certificate kept" test "$(sha256sum <"$data/pki/hub-client.crt")" = "$before"
check "restart: the hub reconnects over TLS" bash -c "curl -s '$url/metrics' | grep -q '^drover_mqtt_connected 1'"
got=$(sub dev-a 2 drover/v1/node/dev-a/desired)
check "restart: dev-a still reads its desired doc" grep -q '^drover/v1/node/dev-a/desired ' <<<"$got"
kill "$hubpid"; wait "$hubpid"; hubpid=
# A hub client certificate that is not the CA's (here: dev-b's) is replaced at the next start.
cp "$tmp/dev-b.crt" "$data/pki/hub-client.crt"
start_hub "$bport"
check "a foreign hub client certificate is re-issued" bash -c "openssl x509 -in '$data/pki/hub-client.crt' -noout -subject | grep -q 'CN *= *drover-hub'"
check "... and the hub connects with it" bash -c "curl -s '$url/metrics' | grep -q '^drover_mqtt_connected 1'"
kill "$hubpid"; wait "$hubpid"; hubpid=
[ "$fails" -eq 0 ] || { echo "--- hub.err"; tail -20 "$tmp/hub.err"; echo "--- mosquitto.log"; tail -20 "$data/broker/mosquitto.log"; }
echo "$fails failures"
[ "$fails" -eq 0 ]
