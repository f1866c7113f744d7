#!/usr/bin/env bash
# Enrollment and revocation against the real hub (HTTPS, access control, --broker-tls) and its
# real Mosquitto: devices are openssl-made keys and CSRs and curl over HTTPS verified with the
# hub's CA, then mosquitto_pub/mosquitto_sub with the certificate the hub issued. Covers the
# bootstrap token's checks (uses, expiry, revocation, forgery, API tokens), the node name's
# (reserved, malformed, held by another key), renewal, and revocation: renew refused, the
# Node NotReady (Revoked), and the broker no longer delivering anything to or from the device.
set -uo pipefail
hub="${DROVER_BUILD_DIR:?}/hub/drover-hub"
cli="${DROVER_BUILD_DIR:?}/cli/drover"
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
tf=${DROVER_TEST_TIME_FACTOR:-1}

data=$tmp/data
"$hub" --data "$data" --listen 127.0.0.1:0 --tls --auth --broker-listen 127.0.0.1:0 --broker-tls \
  --no-controllers >"$tmp/hub.out" 2>"$tmp/hub.err" &
hubpid=$!
url=
for _ in $(seq 1 100); do
  url=$(sed -n 's/^drover-hub: serving \(https:[^ ]*\)$/\1/p' "$tmp/hub.out"); [ -n "$url" ] && break; sleep 0.05
done
bport=$(sed -n 's/^drover-hub: broker ssl:\/\/.*:\([0-9]*\)$/\1/p' "$tmp/hub.out")
[ -n "$url" ] && [ -n "$bport" ] || { echo "hub did not start"; cat "$tmp/hub.out" "$tmp/hub.err"; exit 1; }
ca=$data/pki/ca.crt
admin=$(cat "$data/admin.token")
api() { curl -sS --max-time $((10 * tf)) --cacert "$ca" -H "Authorization: Bearer $admin" "$@"; }

# 0. The HTTPS chain: server.crt, then ca.crt, whose fingerprint the hub printed.
printed=$(sed -n 's/^drover-hub: CA fingerprint sha256:\([0-9a-f]*\)$/\1/p' "$tmp/hub.out")
echo | openssl s_client -connect "${url#https://}" -showcerts 2>/dev/null |
  awk -v d="$tmp" '/BEGIN CERT/{n++; p=1} p{print > (d "/chain" n ".pem")} /END CERT/{p=0}'
check "the API presents two certificates" test -s "$tmp/chain2.pem"
fp2=$(openssl x509 -in "$tmp/chain2.pem" -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//; s/://g' | tr A-F a-f)
check "the second is the CA the hub printed" test -n "$printed" -a "$fp2" = "$printed"

# Tokens: NAME SPEC-JSON -> $tmp/tok.NAME (the whole token) and its id.
mktoken() { api -X POST "$url/api/v1/tokens" -d "$2" | jq -r .token >"$tmp/tok.$1"; }
tok() { cat "$tmp/tok.$1"; }
# csr NAME KEY: a CSR for CN=NAME with key KEY (made when missing).
csr() {
  if [ -s "$tmp/$2.key" ]; then
    openssl req -new -key "$tmp/$2.key" -subj "/CN=$1" -out "$tmp/req.csr" 2>/dev/null
  else
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
      -keyout "$tmp/$2.key" -out "$tmp/req.csr" 2>/dev/null
  fi
}
# enrol TOKEN [CURL-ARGS]: POSTs $tmp/req.csr with TOKEN in the body (TOKEN "-": none);
# prints the HTTP code, the answer in $tmp/resp.
enrol() {
  local t=$1; shift
  if [ "$t" = - ]; then jq -n --rawfile c "$tmp/req.csr" '{csr: $c}'
  else jq -n --arg t "$t" --rawfile c "$tmp/req.csr" '{token: $t, csr: $c}'; fi >"$tmp/body"
  curl -sS --max-time $((10 * tf)) --cacert "$ca" -o "$tmp/resp" -w '%{http_code}' -X POST \
    "$url/api/v1/enroll" --data-binary @"$tmp/body" "$@"
}
renew() {
  jq -n --rawfile c "$tmp/req.csr" '{csr: $c}' >"$tmp/body"
  curl -sS --max-time $((10 * tf)) --cacert "$ca" -o "$tmp/resp" -w '%{http_code}' -X POST \
    "$url/api/v1/enroll/renew" --data-binary @"$tmp/body"
}
msg() { jq -r .message "$tmp/resp" 2>/dev/null; }

# 1. Success.
mktoken two '{"kind":"bootstrap","uses":2,"labels":{"site":"north"}}'
csr dev-a a
check "enrol dev-a: 201" test "$(enrol "$(tok two)")" = 201
jq -r .certificate "$tmp/resp" >"$tmp/a.crt"
cp "$tmp/resp" "$tmp/enrolled-a.json"
check "the certificate verifies against the hub CA" bash -c "openssl verify -CAfile '$ca' '$tmp/a.crt' >/dev/null"
check "... for client use" bash -c "openssl verify -CAfile '$ca' -purpose sslclient '$tmp/a.crt' >/dev/null"
check "... CN dev-a" bash -c "openssl x509 -in '$tmp/a.crt' -noout -subject | grep -q 'CN *= *dev-a$'"
check "... for the device's own key" test "$(openssl x509 -in "$tmp/a.crt" -noout -pubkey)" = "$(openssl pkey -in "$tmp/a.key" -pubout)"
days=$(( ($(date -d "$(openssl x509 -in "$tmp/a.crt" -noout -enddate | cut -d= -f2)" +%s) - $(date +%s)) / 86400 ))
check "... valid about 90 days ($days)" test "$days" -ge 89 -a "$days" -le 90
check "answer: kind Enrollment, node dev-a" test "$(jq -r '.kind + " " + .node' "$tmp/resp")" = "Enrollment dev-a"
check "answer: signingKey is pki/signing.pub" test "$(jq -r .signingKey "$tmp/resp")" = "$(cat "$data/pki/signing.pub")"
check "answer: ca is pki/ca.crt" test "$(jq -r .ca "$tmp/resp")" = "$(cat "$ca")"
check "answer: the token's labels" test "$(jq -r .labels.site "$tmp/resp")" = north
ra=$(date -d "$(jq -r .renewAfter "$tmp/resp")" +%s 2>/dev/null || echo 0)
check "answer: renewAfter about 60 days on" test $(( (ra - $(date +%s)) / 86400 )) -ge 59 -a $(( (ra - $(date +%s)) / 86400 )) -le 60
check "the Node dev-a exists with the token's labels" test "$(api "$url/api/v1/nodes/dev-a" | jq -r .metadata.labels.site)" = north
check "no ACL file: the broker's plugin asks the hub" test ! -e "$data/broker/acl"

# 2. The same key again (an agent re-run after a crash) is re-issued; in the Authorization header.
check "same key again (token as Bearer): 201" test "$(enrol - -H "Authorization: Bearer $(tok two)")" = 201
check "... a new certificate" bash -c "! cmp -s <(jq -r .certificate '$tmp/resp') '$tmp/a.crt'"
csr dev-c c
check "a third enrolment on a 2-use token: 401" test "$(enrol "$(tok two)")" = 401
check "... the message says bootstrap token" grep -q 'bootstrap token' <<<"$(msg)"
check "... no Node dev-c" test "$(api -o /dev/null -w '%{http_code}' "$url/api/v1/nodes/dev-c")" = 404

# 3. Tokens refused: expired, revoked, forged, unknown, an API token, none.
mktoken short '{"kind":"bootstrap","ttl":"1s"}'
sleep 2
check "expired token: 401" test "$(enrol "$(tok short)")" = 401
mktoken gone '{"kind":"bootstrap"}'
gid=$(tok gone | cut -d_ -f2)
api -o /dev/null -X DELETE "$url/api/v1/tokens/$gid"
check "revoked token: 401" test "$(enrol "$(tok gone)")" = 401
mktoken many '{"kind":"bootstrap"}'
forged="drv1_$(tok many | cut -d_ -f2)_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
check "forged token (right id, wrong secret): 401" test "$(enrol "$forged")" = 401
forged_msg=$(msg)
check "unknown token: 401" test "$(enrol "drv1_0badc0de_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')")" = 401
check "... the same message for unknown and wrong" test "$(msg)" = "$forged_msg"
check "... which says bootstrap token" grep -q 'bootstrap token' <<<"$forged_msg"
check "an API (admin) token: 401" test "$(enrol "$admin")" = 401
check "no token: 401" test "$(enrol -)" = 401
check "a token that is not a string: 400" test "$(jq -n --rawfile c "$tmp/req.csr" '{token: 5, csr: $c}' |
  curl -sS --cacert "$ca" -o "$tmp/resp" -w '%{http_code}' -X POST "$url/api/v1/enroll" --data-binary @-)" = 400

# 4. Names: held by another key, reserved, malformed.
csr dev-a b
check "dev-a with another key: 409" test "$(enrol "$(tok many)")" = 409
csr drover-hub h
check "reserved name drover-hub: 403" test "$(enrol "$(tok many)")" = 403
csr drover-x h
check "reserved name drover-x: 403" test "$(enrol "$(tok many)")" = 403
for cn in 'a\+b' 'a#b' 'a\/b' "$(printf 'a%.0s' $(seq 64))"; do
  csr "$cn" bad
  code=$(enrol "$(tok many)")
  check "CN $cn: 400 ($code)" test "$code" = 400
  check "... the message names csr" grep -q '^csr' <<<"$(msg)"
done
if python3 -c 'import cryptography' 2>/dev/null; then
  python3 - "$tmp/req.csr" <<'PY'
import sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
k = ec.generate_private_key(ec.SECP256R1())
b = x509.CertificateSigningRequestBuilder().subject_name(
    x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a" * 70, _validate=False)]))
open(sys.argv[1], "wb").write(b.sign(k, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
PY
  code=$(enrol "$(tok many)")
  check "CN of 70 characters: 400 ($code)" test "$code" = 400
fi
check "no csr: 400 naming csr" bash -c "test \"\$(curl -sS --cacert '$ca' -o '$tmp/resp' -w '%{http_code}' -X POST '$url/api/v1/enroll' -d '{\"token\":\"$(tok many)\"}')\" = 400 && jq -r .message '$tmp/resp' | grep -q '^csr'"
check "a CSR that is not one: 400" bash -c "test \"\$(curl -sS --cacert '$ca' -o /dev/null -w '%{http_code}' -X POST '$url/api/v1/enroll' -d '{\"token\":\"$(tok many)\",\"csr\":\"-----BEGIN CERTIFICATE REQUEST-----\\nAAAA\\n-----END CERTIFICATE REQUEST-----\\n\"}')\" = 400"
head -c 70000 /dev/zero | tr '\0' 'x' | jq -Rs '{token: "x", csr: .}' >"$tmp/big"
check "a body over 64 KiB: 413" test "$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' -X POST "$url/api/v1/enroll" --data-binary @"$tmp/big")" = 413

# 5. Renewal: same key 201, other key 409, unknown 404.
csr dev-a a
check "renew dev-a with its key: 201" test "$(renew)" = 201
check "... a certificate for dev-a of the hub CA" bash -c "jq -r .certificate '$tmp/resp' | openssl verify -CAfile '$ca' >/dev/null"
check "... no labels in a renewal" test "$(jq -r 'has("labels")' "$tmp/resp")" = false
jq -r .certificate "$tmp/resp" >"$tmp/a.crt"
csr dev-a b
check "renew dev-a with another key: 409" test "$(renew)" = 409
csr dev-z z
check "renew an unknown node: 404" test "$(renew)" = 404
check "GET /api/v1/identities lists dev-a, not revoked" test "$(api "$url/api/v1/identities" | jq -r '.items[] | select(.node == "dev-a") | .revoked')" = false
mktoken viewer '{"kind":"api","role":"viewer"}'
check "... a viewer may not (403)" test "$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(tok viewer)" "$url/api/v1/identities")" = 403

# 6. The broker, before revocation: dev-a reads its retained desired doc.
tls=(-h 127.0.0.1 -p "$bport" --cafile "$ca")
hubc=(--cert "$data/pki/hub-client.crt" --key "$data/pki/hub-client.key" -i "drover-hub-test-$$")
devc=(--cert "$tmp/a.crt" --key "$tmp/a.key" -i drover-agent-dev-a)
timeout $((5 * tf)) mosquitto_pub "${tls[@]}" "${hubc[@]}" -q 1 -r -t drover/v1/node/dev-a/desired -m '{"doc":"for dev-a"}'
got=$(timeout $((2 * tf)) mosquitto_sub "${tls[@]}" "${devc[@]}" -q 1 -t drover/v1/node/dev-a/desired -v 2>>"$tmp/clients.err")
check "before revocation dev-a receives its retained desired doc" grep -q '^drover/v1/node/dev-a/desired ' <<<"$got"
timeout $((4 * tf)) mosquitto_sub "${tls[@]}" "${hubc[@]}" -q 1 -t drover/v1/node/dev-a/status -v >"$tmp/seen1" 2>>"$tmp/clients.err" &
spid=$!
sleep 1
timeout $((5 * tf)) mosquitto_pub "${tls[@]}" "${devc[@]}" -q 1 -t drover/v1/node/dev-a/status -m before-revoke 2>>"$tmp/clients.err"
wait "$spid"
check "before revocation dev-a's status reaches the hub" grep -q before-revoke "$tmp/seen1"

# 7. Revocation: at once, with no file rewritten and no reload (the broker's plugin asks the
# hub at every CONNECT).
reloads=$(grep -c 'Reloading config' "$data/broker/mosquitto.log")
files_before=$(find "$data/broker" -maxdepth 1 -type f ! -name 'mosquitto.log*' ! -name 'mosquitto.db*' -printf '%P %T@\n' | sort)
check "drover node revoke dev-a" "$cli" --hub "$url" --ca "$ca" --token "$admin" node revoke dev-a
csr dev-a a
check "renew after revocation: 403" test "$(renew)" = 403
mktoken again '{"kind":"bootstrap"}'
check "enrol dev-a again after revocation: 403" test "$(enrol "$(tok again)")" = 403
ready=$(api "$url/api/v1/nodes/dev-a" | jq -r '.status.conditions[] | select(.type == "Ready") | .status + " " + .reason')
check "the Node is NotReady, reason Revoked ($ready)" test "$ready" = "False Revoked"
check "identities: dev-a revoked" bash -c "'$cli' --hub '$url' --ca '$ca' --token '$admin' node list-identities | grep -E '^dev-a +revoked'"
got=$(timeout 3 mosquitto_sub "${tls[@]}" "${devc[@]}" -q 1 -t drover/v1/node/dev-a/desired -v 2>>"$tmp/clients.err")
check "after revocation a fresh subscription of dev-a receives nothing" test -z "$got"
check "... refused at CONNECT (the broker says so)" grep -q 'drover-auth: refused client id "drover-agent-dev-a".*revoked' "$data/broker/mosquitto.log"
check "... with no broker file rewritten" test "$(find "$data/broker" -maxdepth 1 -type f ! -name 'mosquitto.log*' ! -name 'mosquitto.db*' -printf '%P %T@\n' | sort)" = "$files_before"
check "... and no reload" test "$(grep -c 'Reloading config' "$data/broker/mosquitto.log")" = "$reloads"
timeout $((4 * tf)) mosquitto_sub "${tls[@]}" "${hubc[@]}" -q 1 -t drover/v1/node/dev-a/status -v >"$tmp/seen2" 2>>"$tmp/clients.err" &
spid=$!
sleep 1
timeout $((5 * tf)) mosquitto_pub "${tls[@]}" "${devc[@]}" -q 1 -t drover/v1/node/dev-a/status -m after-revoke 2>>"$tmp/clients.err"
wait "$spid"
check "after revocation dev-a's status is not delivered" bash -c "! grep -q after-revoke '$tmp/seen2'"
check "revoking an unknown node: 404" test "$(api -o /dev/null -w '%{http_code}' -X POST "$url/api/v1/nodes/dev-q/revoke")" = 404

# 8. Forget is refused while dev-a's certificate is valid (the old device would be let in
# again under a re-enrolled name): the name stays taken.
check "drover node forget dev-a while its certificate is valid: refused" \
  bash -c "! '$cli' --hub '$url' --ca '$ca' --token '$admin' node forget dev-a 2>'$tmp/forget.err'"
check "... saying until when" grep -q 'stays valid until' "$tmp/forget.err"
csr dev-a b
check "... and dev-a cannot be enrolled with a new key (403)" test "$(enrol "$(tok again)")" = 403

check "the hub is still running" kill -0 "$hubpid"
[ "$fails" -eq 0 ] || { echo "--- hub.err"; tail -20 "$tmp/hub.err"; echo "--- mosquitto.log"; tail -20 "$data/broker/mosquitto.log"; }
echo "$fails failures"
[ "$fails" -eq 0 ]
