#!/usr/bin/env bash
# drover-agent enroll against the real hub (drover-hub --tls --broker-tls --auth): a wrong
# hub.caFingerprint fails before any token is sent (the token keeps its uses); enrolling writes
# <stateDir>/identity (0700; node.key 0600 and found nowhere on the hub; node.crt CN=node name,
# issued by the hub's CA for client auth; ca.crt and signing.pub the hub's); a second run uses
# no token; used-up and expired tokens fail saying so; the issued certificate connects to the
# hub's TLS-only broker (mosquitto_pub), and, when the link is wired to agent/enroll, the agent
# itself does.
set -uo pipefail
hub="${DROVER_BUILD_DIR:?}/hub/drover-hub"
cli="${DROVER_BUILD_DIR:?}/cli/drover"
agent="${DROVER_BUILD_DIR:?}/agent/drover-agent"
tf=${DROVER_TEST_TIME_FACTOR:-1}
for t in jq curl openssl mosquitto_pub; do
  command -v "$t" >/dev/null || { echo "$t missing"; [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77; exit 1; }
done
[ -x /usr/sbin/mosquitto ] || { echo "mosquitto missing"; [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77; exit 1; }
for b in "$hub" "$cli" "$agent"; do [ -x "$b" ] || { echo "no $b"; exit 1; }; done
tmp=$(mktemp -d)
hubpid= agentpid=
cleanup() {
  [ -n "$agentpid" ] && kill "$agentpid" 2>/dev/null && wait "$agentpid" 2>/dev/null
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

# ---- the hub ----
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
check "the hub prints its CA fingerprint" test -n "$fp"
bport=${broker##*:}
export HOME=$tmp/home XDG_CONFIG_HOME= DROVER_HUB=$url DROVER_CA=$data/pki/ca.crt
mkdir -p "$HOME"
DROVER_TOKEN=$(cat "$data/admin.token")
export DROVER_TOKEN

# usesLeft of token id ($1) as the admin API lists it.
uses_left() {
  curl -sS -m 10 --cacert "$DROVER_CA" -H "Authorization: Bearer $DROVER_TOKEN" "$url/api/v1/tokens" |
    jq -r --arg id "$1" '.items[] | select(.id == $id) | .usesLeft'
}
token_id() { cut -d_ -f2 <<<"$1"; }

BOOT=$("$cli" token create --uses 2 --labels zone=north 2>"$tmp/err")
check "drover token create: a bootstrap token" grep -Eq '^drv1_' <<<"$BOOT"
boot_id=$(token_id "$BOOT")
check "it has 2 uses" test "$(uses_left "$boot_id")" = 2
printf '%s\n' "$BOOT" >"$tmp/boot.token"
chmod 600 "$tmp/boot.token"

# config NAME TOKENFILE [FINGERPRINT] [BROKER]
config() {
  cat >"$tmp/$1.yaml" <<EOF
nodeName: $1
stateDir: $tmp/$1
runDir: $tmp/$1/run
manifestDir: $tmp/$1/manifests
hub:
  url: $url
  caFingerprint: ${3:-$fp}
  tokenFile: $2
EOF
}
enroll() { "$agent" enroll --config "$tmp/$1.yaml" >"$tmp/$1.out" 2>"$tmp/$1.err"; }
id=$tmp/dev-a/identity

# ---- a wrong caFingerprint: refused before the token goes out ----
config dev-a "$tmp/boot.token" "sha256:$(printf '%064d' 0)"
enroll dev-a
check "wrong caFingerprint: enroll fails" test $? = 1
check "the error names hub.caFingerprint" grep -q "hub.caFingerprint: no certificate in the hub's chain has" "$tmp/dev-a.err"
check "the token still has its 2 uses" test "$(uses_left "$boot_id")" = 2
check "and the token file is kept" test -s "$tmp/boot.token"
check "no certificate and no key written" test ! -e "$id/node.crt" -a ! -e "$id/node.key"
check "nor a ca.crt" test ! -e "$id/ca.crt"

# ---- an unreachable hub ----
sed "s|url: $url|url: https://127.0.0.1:1|" "$tmp/dev-a.yaml" >"$tmp/dev-x.yaml"
"$agent" enroll --config "$tmp/dev-x.yaml" >/dev/null 2>"$tmp/dev-x.err"
check "an unreachable hub.url: enroll fails naming hub.url" grep -q "hub.url: https://127.0.0.1:1" "$tmp/dev-x.err"

# ---- enrolling ----
config dev-a "$tmp/boot.token"
enroll dev-a
rc=$?
check "enroll succeeds (rc $rc: $(head -c 300 "$tmp/dev-a.err"))" test $rc = 0
check "it prints the node name" grep -qx "node: dev-a" "$tmp/dev-a.out"
check "it prints the expiry" grep -Eq '^expires: 20[0-9]{2}-[0-9]{2}-[0-9]{2}T' "$tmp/dev-a.out"
printed_fp=$(sed -n 's/^fingerprint: //p' "$tmp/dev-a.out")
real_fp=sha256:$(openssl x509 -in "$id/node.crt" -outform DER 2>/dev/null | sha256sum | cut -c1-64)
check "it prints the certificate's fingerprint" test "$printed_fp" = "$real_fp"
check "identity/ is mode 700" test "$(stat -c %a "$id")" = 700
check "node.key is mode 600" test "$(stat -c %a "$id/node.key")" = 600
check "node.crt verifies against the hub CA for client auth" \
  bash -c "openssl verify -CAfile '$data/pki/ca.crt' -purpose sslclient '$id/node.crt' >/dev/null 2>&1"
check "node.crt is CN=dev-a" bash -c "openssl x509 -in '$id/node.crt' -noout -subject | grep -Eq 'CN ?= ?dev-a$'"
crt_pub=$(openssl x509 -in "$id/node.crt" -noout -pubkey 2>/dev/null)
check "node.crt is for node.key" test -n "$crt_pub" -a "$crt_pub" = "$(openssl pkey -in "$id/node.key" -pubout 2>/dev/null)"
days=$((($(date -d "$(openssl x509 -in "$id/node.crt" -noout -enddate | cut -d= -f2)" +%s) - $(date +%s)) / 86400))
check "node.crt is valid for about 90 days ($days)" test "$days" -ge 88 -a "$days" -le 90
check "ca.crt is the hub's CA" cmp -s "$id/ca.crt" "$data/pki/ca.crt"
check "signing.pub is the hub's pki/signing.pub" cmp -s "$id/signing.pub" "$data/pki/signing.pub"
check "the token has 1 use left" test "$(uses_left "$boot_id")" = 1
check "the bootstrap token file is removed once the node is enrolled" test ! -e "$tmp/boot.token"
check "saying so" grep -q "bootstrap token removed" "$tmp/dev-a.err"
# The private key never leaves the device: no line of its base64 anywhere on the hub's side.
keyline=$(sed -n 2p "$id/node.key")
check "node.key has a body to look for" test ${#keyline} -ge 40
check "the private key is nowhere in the hub's data directory" bash -c "! grep -rqF -- '$keyline' '$data'"
check "nor in the hub's output" bash -c "! grep -qF -- '$keyline' '$tmp/hub.out' '$tmp/hub.err'"
check "nor in the agent's output" bash -c "! grep -qF -- '$keyline' '$tmp/dev-a.out' '$tmp/dev-a.err'"
# The secret is all after "drv1_<8 hex id>_" (base64url: it may itself hold a "_", and what
# follows the last one can be a few characters that any output holds).
check "the token secret is not in the agent's output" bash -c "! grep -qF -- '${BOOT#drv1_????????_}' '$tmp/dev-a.out' '$tmp/dev-a.err'"
labels=$(curl -sS -m 10 --cacert "$DROVER_CA" -H "Authorization: Bearer $DROVER_TOKEN" \
  "$url/api/v1/nodes/dev-a" | jq -r '.metadata.labels.zone // empty')
check "the Node dev-a carries the token's label zone=north (got '$labels')" test "$labels" = north

# ---- again: the identity is there, no token is used, nothing changes ----
before=$(cat "$id/node.key" "$id/node.crt" 2>/dev/null | sha256sum)
enroll dev-a
check "a second enroll succeeds" test $? = 0
check "it keeps the key and certificate" test -s "$id/node.crt" -a "$(cat "$id/node.key" "$id/node.crt" | sha256sum)" = "$before"
check "it used no token (1 use left)" test "$(uses_left "$boot_id")" = 1
# Even with no token configured at all.
sed -i "s|tokenFile: .*|tokenFile: $tmp/nonexistent|" "$tmp/dev-a.yaml"
enroll dev-a
check "with the identity present, a missing token file does not matter" test $? = 0

# ---- renewal: a certificate 2/3 through its life is renewed without a token, same key ----
# (made here with the hub's CA key, back-dated: the hub issues 90 days from now)
mkdir -p "$tmp/ca"
: >"$tmp/ca/index.txt"
echo 01 >"$tmp/ca/serial"
printf '%s\n' '[ca]' 'default_ca = d' '[d]' "database = $tmp/ca/index.txt" "serial = $tmp/ca/serial" \
  "new_certs_dir = $tmp/ca" 'default_md = sha256' 'policy = p' 'x509_extensions = e' \
  'unique_subject = no' '[p]' 'commonName = supplied' '[e]' 'extendedKeyUsage = clientAuth' \
  'basicConstraints = CA:FALSE' >"$tmp/ca/ca.cnf"
backdated() { # START END (YYYYmmddHHMMSSZ): a node.crt for dev-a's key
  openssl req -new -key "$id/node.key" -subj /CN=dev-a -out "$tmp/ca/r.csr" 2>/dev/null &&
    openssl ca -batch -config "$tmp/ca/ca.cnf" -cert "$data/pki/ca.crt" -keyfile "$data/pki/ca.key" \
      -startdate "$1" -enddate "$2" -in "$tmp/ca/r.csr" -out "$id/node.crt" >/dev/null 2>&1
}
sed -i "s|tokenFile: .*|tokenFile: $tmp/boot.token|" "$tmp/dev-a.yaml"
key_before=$(sha256sum <"$id/node.key")
backdated "$(date -u -d '-70 days' +%Y%m%d%H%M%SZ)" "$(date -u -d '+20 days' +%Y%m%d%H%M%SZ)"
old_serial=$(openssl x509 -in "$id/node.crt" -noout -serial 2>/dev/null)
check "a back-dated certificate is in place" test -n "$old_serial"
enroll dev-a
check "enroll renews it ($(head -c 300 "$tmp/dev-a.err"))" grep -q "certificate renewed" "$tmp/dev-a.err"
days=$((($(date -d "$(openssl x509 -in "$id/node.crt" -noout -enddate | cut -d= -f2)" +%s) - $(date +%s)) / 86400))
check "the renewed certificate is valid for about 90 days ($days)" test "$days" -ge 88
check "for the same key" test "$(sha256sum <"$id/node.key")" = "$key_before"
check "renewal used no token (1 use left)" test "$(uses_left "$boot_id")" = 1
# An expired one is renewed too (the key is still the enrolled one).
backdated "$(date -u -d '-100 days' +%Y%m%d%H%M%SZ)" "$(date -u -d '-1 days' +%Y%m%d%H%M%SZ)"
enroll dev-a
check "an expired certificate is renewed" \
  bash -c "openssl x509 -in '$id/node.crt' -noout -checkend 86400 >/dev/null"
check "still no token used (1 use left)" test "$(uses_left "$boot_id")" = 1

# ---- used-up and expired tokens ----
ONCE=$("$cli" token create --uses 1 2>/dev/null)
# Each device its own copy of the token (enrolling removes the device's copy).
printf '%s\n' "$ONCE" >"$tmp/once-b.token"
printf '%s\n' "$ONCE" >"$tmp/once-c.token"
config dev-b "$tmp/once-b.token"
enroll dev-b
check "a one-use token enrols dev-b" test $? = 0
config dev-c "$tmp/once-c.token"
enroll dev-c
check "the used-up token: enroll fails" test $? = 1
check "saying the bootstrap token was refused ($(head -c 300 "$tmp/dev-c.err"))" \
  grep -q "hub.tokenFile: the hub refused the bootstrap token" "$tmp/dev-c.err"
check "no certificate for dev-c" test ! -e "$tmp/dev-c/identity/node.crt"
SHORT=$("$cli" token create --ttl 1s 2>/dev/null)
printf '%s\n' "$SHORT" >"$tmp/short.token"
sleep 2
config dev-d "$tmp/short.token"
enroll dev-d
check "an expired token: enroll fails" test $? = 1
check "saying the bootstrap token was refused" grep -q "the hub refused the bootstrap token" "$tmp/dev-d.err"
printf 'drv1_not_a_token_at_all\n' >"$tmp/bad.token"
config dev-e "$tmp/bad.token"
enroll dev-e
check "an unknown token: enroll fails the same way" grep -q "the hub refused the bootstrap token" "$tmp/dev-e.err"

# ---- the certificate on the hub's TLS broker ----
tls=(-h 127.0.0.1 -p "$bport" --cafile "$id/ca.crt" --cert "$id/node.crt" --key "$id/node.key")
check "mosquitto_pub with dev-a's identity connects to the TLS broker" \
  timeout 10 mosquitto_pub "${tls[@]}" -i drover-agent-dev-a -q 1 -t drover/v1/node/dev-a/status -m '{}'
check "...but only with its own client id (drover-agent-dev-a)" \
  bash -c "! timeout 10 mosquitto_pub $(printf '%q ' "${tls[@]}") -i dev-a-test -q 1 -t drover/v1/node/dev-a/status -m '{}' 2>/dev/null"
check "without the certificate it does not" \
  bash -c "! timeout 10 mosquitto_pub -h 127.0.0.1 -p $bport --cafile '$id/ca.crt' -q 1 -t x -m y 2>/dev/null"

# ---- the agent itself over TLS, once agent/link uses agent/enroll ----
src=${DROVER_SOURCE_DIR:-$(dirname "$0")/../..}
if grep -q drv_enroll "$src/agent/link/link.c" 2>/dev/null; then
  # dev-f enrols at start (no drover-agent enroll first) and connects with its certificate.
  # No pods: nothing here needs crun or a pod network.
  ONE=$("$cli" token create --uses 1 --labels zone=south 2>/dev/null)
  printf '%s\n' "$ONE" >"$tmp/one.token"
  config dev-f "$tmp/one.token"
  printf 'allowNoCgroups: true\nlogLevel: info\n' >>"$tmp/dev-f.yaml"
  sed -i "s|^hub:|hub:\n  broker: $broker|" "$tmp/dev-f.yaml"
  mkdir -p "$tmp/dev-f/manifests"
  "$agent" run --config "$tmp/dev-f.yaml" >"$tmp/dev-f.log" 2>&1 &
  agentpid=$!
  ready() {
    curl -sS -m 5 --cacert "$DROVER_CA" -H "Authorization: Bearer $DROVER_TOKEN" "$url/api/v1/nodes/dev-f" |
      jq -e '.status.conditions[]? | select(.type == "Ready" and .status == "True")' >/dev/null 2>&1
  }
  for _ in $(seq 1 $((300 * tf))); do ready && break; kill -0 "$agentpid" 2>/dev/null || break; sleep 0.1; done
  check "drover-agent run enrols and its Node dev-f is Ready over the TLS broker" ready
  check "dev-f has its certificate" test -s "$tmp/dev-f/identity/node.crt"
  check "the agent maps Paho with TLS" grep -q libpaho-mqtt3as "/proc/$agentpid/maps"
  check "and no libcurl (enrollment ran in a child)" bash -c "! grep -q libcurl /proc/$agentpid/maps"
  priv=$(awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s}' "/proc/$agentpid/smaps_rollup" 2>/dev/null)
  echo "# drover-agent over TLS, no pods: ${priv:-?} KiB private"
  kill "$agentpid" 2>/dev/null
  wait "$agentpid" 2>/dev/null
  agentpid=
else
  echo "# agent/link does not use agent/enroll yet: the agent's own TLS connection is not tested"
fi

echo "$n checks, $fails failed"
[ "$fails" = 0 ]
