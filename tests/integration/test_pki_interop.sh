#!/usr/bin/env bash
# Drover's certificates as other stacks read them (issue 11): the hub's CA and what it issues
# (API and broker server certificates, its own broker client certificate) and a node's
# certificate issued from drover-agent enroll's CSR. Each encodes ecdsa-with-SHA256 with its
# parameters absent, as RFC 5758 section 3.2 requires (30 0A 06 08 2A 86 48 CE 3D 04 03 02, and
# never the 05 00 NULL mbedTLS 2.28 writes), twice (TBS and signatureAlgorithm); `openssl verify`
# accepts each against ca.crt for its purpose; Python's cryptography loads each with warnings as
# errors (it warns about, and will refuse, the NULL) and verifies its signature with ca.crt's key.
set -uo pipefail
hub="${DROVER_BUILD_DIR:?}/hub/drover-hub"
cli="${DROVER_BUILD_DIR:?}/cli/drover"
agent="${DROVER_BUILD_DIR:?}/agent/drover-agent"
tf=${DROVER_TEST_TIME_FACTOR:-1}
missing() {
  echo "$1 missing"
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
}
for t in openssl python3 od; do command -v "$t" >/dev/null || missing "$t"; done
python3 -c 'import cryptography.x509' 2>/dev/null || missing "python3-cryptography"
[ -x /usr/sbin/mosquitto ] || missing mosquitto
for b in "$hub" "$cli" "$agent"; do [ -x "$b" ] || { echo "no $b"; exit 1; }; done
tmp=$(mktemp -d)
hubpid=
cleanup() {
  [ -n "$hubpid" ] && kill "$hubpid" 2>/dev/null && wait "$hubpid" 2>/dev/null
  [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
n=0
check() { # name, command...
  local name=$1
  shift
  n=$((n + 1))
  if "$@"; then echo "ok $n - $name"; else echo "not ok $n - $name"; fails=$((fails + 1)); fi
}

# ---- the hub (CA, API and broker server certificates, hub-client.crt) ----
data=$tmp/data
"$hub" --data "$data" --listen 127.0.0.1:0 --broker-listen 127.0.0.1:0 --tls --broker-tls --auth \
  --no-controllers >"$tmp/hub.out" 2>"$tmp/hub.err" &
hubpid=$!
url= broker=
for _ in $(seq 1 $((200 * tf))); do
  url=$(sed -n 's/^drover-hub: serving \(https:[^ ]*\)$/\1/p' "$tmp/hub.out")
  broker=$(sed -n 's/^drover-hub: broker \(ssl:[^ ]*\)$/\1/p' "$tmp/hub.out")
  [ -n "$url" ] && [ -n "$broker" ] && break
  kill -0 "$hubpid" 2>/dev/null || break
  sleep 0.05
done
if [ -z "$url" ] || [ -z "$broker" ]; then
  echo "hub did not start with https and an ssl:// broker:"
  cat "$tmp/hub.out" "$tmp/hub.err"
  exit 1
fi
fp=$(sed -n 's/^drover-hub: CA fingerprint \(sha256:[0-9a-f]*\)$/\1/p' "$tmp/hub.out")

# ---- a node certificate, issued from the agent's CSR ----
export HOME=$tmp/home XDG_CONFIG_HOME= DROVER_HUB=$url DROVER_CA=$data/pki/ca.crt
mkdir -p "$HOME"
DROVER_TOKEN=$(cat "$data/admin.token")
export DROVER_TOKEN
"$cli" token create --uses 1 >"$tmp/boot.token" 2>"$tmp/token.err"
chmod 600 "$tmp/boot.token"
cat >"$tmp/dev-a.yaml" <<EOF
nodeName: dev-a
stateDir: $tmp/dev-a
runDir: $tmp/dev-a/run
manifestDir: $tmp/dev-a/manifests
hub:
  url: $url
  caFingerprint: $fp
  tokenFile: $tmp/boot.token
EOF
"$agent" enroll --config "$tmp/dev-a.yaml" >"$tmp/enroll.out" 2>"$tmp/enroll.err"
rc=$?
check "drover-agent enroll succeeds (rc $rc: $(head -c 300 "$tmp/enroll.err"))" test $rc = 0

# ---- each certificate ----
ca=$data/pki/ca.crt
bare=300a06082a8648ce3d040302 # SEQUENCE (10) { OID ecdsa-with-SHA256 }
with_null=06082a8648ce3d0403020500
der_hex() { openssl x509 -in "$1" -outform DER 2>/dev/null | od -An -v -tx1 | tr -d ' \n'; }
count() { # needle haystack
  local h=$2 c=0
  while [[ $h == *"$1"* ]]; do
    h=${h#*"$1"}
    c=$((c + 1))
  done
  echo $c
}
py_check() { # cert: loads with warnings as errors, ecdsa-with-SHA256, signed by ca.crt's key
  python3 - "$ca" "$1" <<'EOF'
import sys, warnings
warnings.simplefilter("error")
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
def load(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())
ca, crt = load(sys.argv[1]), load(sys.argv[2])
if crt.signature_algorithm_oid.dotted_string != "1.2.840.10045.4.3.2":
    sys.exit("signature algorithm %s" % crt.signature_algorithm_oid.dotted_string)
ca.public_key().verify(crt.signature, crt.tbs_certificate_bytes,
                       ec.ECDSA(crt.signature_hash_algorithm))
EOF
}

# file purpose (an openssl verify -purpose; "" for the CA itself)
for spec in "$ca:" "$data/pki/server.crt:sslserver" "$data/broker/server.crt:sslserver" \
  "$data/pki/hub-client.crt:sslclient" "$tmp/dev-a/identity/node.crt:sslclient"; do
  f=${spec%:*} purpose=${spec##*:}
  name=${f#"$tmp/"}
  if [ ! -s "$f" ]; then
    check "$name exists" false
    continue
  fi
  hex=$(der_hex "$f")
  check "$name: ecdsa-with-SHA256 twice, without parameters ($(count "$bare" "$hex"))" \
    test "$(count "$bare" "$hex")" = 2
  check "$name: no NULL parameter after it" test "$(count "$with_null" "$hex")" = 0
  if [ -n "$purpose" ]; then
    check "$name: openssl verify -CAfile ca.crt -purpose $purpose" \
      bash -c "openssl verify -CAfile '$ca' -purpose $purpose '$f' >'$tmp/verify.out' 2>&1 ||
               { cat '$tmp/verify.out'; false; }"
  else
    check "$name: openssl verify -check_ss_sig (its own signature)" \
      bash -c "openssl verify -CAfile '$ca' -check_ss_sig '$f' >'$tmp/verify.out' 2>&1 ||
               { cat '$tmp/verify.out'; false; }"
  fi
  check "$name: python3-cryptography loads it without a warning and verifies its signature" \
    py_check "$f"
done

if [ $fails -gt 0 ]; then
  echo "# $fails of $n failed"
  exit 1
fi
echo "# all $n passed"
