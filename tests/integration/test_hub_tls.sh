#!/usr/bin/env bash
# The hub's identity and HTTPS API end to end: drover-hub --tls --san on a free 127.0.0.1
# port. The first start creates <data>/pki (0700, private keys 0600); curl verifies the API
# with ca.crt and fails without it; plain HTTP to the TLS port gets no answer; the server
# certificate names localhost, 127.0.0.1, ::1 and the --san names; the printed fingerprint is
# the SHA-256 of ca.crt's DER; drover works with --ca / $DROVER_CA / drover login --ca and,
# without a CA, fails saying to pass --ca. A restart keeps the same CA; a new --san re-issues
# the server certificate only.
set -uo pipefail
hub="${DROVER_BUILD_DIR:?}/hub/drover-hub"
cli="${DROVER_BUILD_DIR:?}/cli/drover"
tf=${DROVER_TEST_TIME_FACTOR:-1}
for tool in curl openssl sha256sum; do
  if ! command -v $tool >/dev/null; then
    echo "$tool missing"
    [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
    exit 1
  fi
done
[ -x "$hub" ] || { echo "no $hub"; exit 1; }
[ -x "$cli" ] || { echo "no $cli"; exit 1; }
hub=$(realpath "$hub") cli=$(realpath "$cli")
tmp=$(mktemp -d)
hubpid=
cleanup() {
  [ -n "$hubpid" ] && kill "$hubpid" 2>/dev/null && wait "$hubpid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
n=0
check() { # name, condition...
  local name=$1
  shift
  n=$((n + 1))
  if "$@"; then echo "ok $n - $name"; else echo "not ok $n - $name"; fails=$((fails + 1)); fi
}

url=
start_hub() { # extra args...
  : >"$tmp/hub.out"
  "$hub" --data "$tmp/data" --listen 127.0.0.1:0 --no-auth --no-broker-tls --no-controllers "$@" \
    >"$tmp/hub.out" 2>"$tmp/hub.err" &
  hubpid=$!
  url=
  for _ in $(seq 1 $((200 * tf))); do
    url=$(sed -n 's/^drover-hub: serving \(https\?:[^ ]*\)$/\1/p' "$tmp/hub.out")
    [ -n "$url" ] && break
    kill -0 "$hubpid" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$url" ]; then
    echo "hub did not start:"
    cat "$tmp/hub.out" "$tmp/hub.err"
    exit 1
  fi
}
stop_hub() {
  kill "$hubpid" 2>/dev/null && wait "$hubpid" 2>/dev/null
  hubpid=
}

start_hub --tls --san hub.example --san 10.9.8.7
pki=$tmp/data/pki
export HOME=$tmp/home XDG_CONFIG_HOME=
unset DROVER_TOKEN DROVER_CA DROVER_HUB
mkdir -p "$HOME"
port=${url##*:}

# ---- files and modes ----
check "the hub prints an https URL" grep -q "^drover-hub: serving https://127.0.0.1:$port$" "$tmp/hub.out"
check "pki/ is mode 700" test "$(stat -c %a "$pki")" = 700
for f in ca.key server.key signing.key; do
  check "$f is mode 600" test "$(stat -c %a "$pki/$f")" = 600
done
for f in ca.crt server.crt signing.pub; do
  check "$f exists" test -s "$pki/$f"
done
check "no private key in the hub's output" \
  bash -c "! grep -q 'PRIVATE KEY' '$tmp/hub.out' '$tmp/hub.err'"

# ---- fingerprint ----
fp=$(sed -n 's/^drover-hub: CA fingerprint \(sha256:[0-9a-f]*\)$/\1/p' "$tmp/hub.out")
want="sha256:$(openssl x509 -in "$pki/ca.crt" -outform DER | sha256sum | cut -d' ' -f1)"
check "the printed CA fingerprint is sha256 of ca.crt's DER ($fp)" test "$fp" = "$want"

# ---- SANs ----
sans=$(openssl x509 -in "$pki/server.crt" -noout -ext subjectAltName)
echo "$sans" | sed 's/^/# /'
for s in DNS:localhost DNS:hub.example "IP Address:127.0.0.1" "IP Address:10.9.8.7" \
  "IP Address:0:0:0:0:0:0:0:1"; do
  check "server.crt names $s" grep -qF "$s" <<<"$sans"
done
check "server.crt is issued by ca.crt" openssl verify -CAfile "$pki/ca.crt" "$pki/server.crt"
check "server.crt's CN is drover-hub" \
  bash -c "openssl x509 -in '$pki/server.crt' -noout -subject | grep -q 'CN *= *drover-hub'"

# ---- curl ----
check "curl --cacert ca.crt /healthz: ok" \
  test "$(curl -sS -m 10 --cacert "$pki/ca.crt" "https://127.0.0.1:$port/healthz")" = ok
check "curl --cacert ca.crt via localhost: ok" \
  test "$(curl -sS -m 10 --cacert "$pki/ca.crt" "https://localhost:$port/healthz")" = ok
curl -sS -m 10 "https://127.0.0.1:$port/healthz" >"$tmp/c.out" 2>"$tmp/c.err"
rc=$?
check "curl without --cacert: certificate not verified (rc $rc)" test $rc = 60
curl -sS -m 10 "http://127.0.0.1:$port/healthz" >"$tmp/c.out" 2>"$tmp/c.err"
rc=$?
check "plain http to the TLS port gets no answer (rc $rc)" \
  bash -c "[ $rc -ne 0 ] && ! grep -q ok '$tmp/c.out'"
other=$(mktemp -d)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=other \
  -keyout "$other/k" -out "$other/c" -days 1 2>/dev/null
curl -sS -m 10 --cacert "$other/c" "https://127.0.0.1:$port/healthz" >/dev/null 2>&1
rc=$?
check "curl with a foreign CA: not verified (rc $rc)" test $rc = 60

# ---- drover ----
out=$("$cli" --hub "$url" --ca "$pki/ca.crt" get nodes 2>&1)
check "drover --ca ca.crt get nodes works ($out)" test $? = 0
out=$(DROVER_HUB=$url DROVER_CA=$pki/ca.crt "$cli" get nodes 2>&1)
check "DROVER_CA works" test $? = 0
out=$("$cli" --hub "$url" get nodes 2>&1)
rc=$?
echo "# $out"
check "drover without a CA fails" test $rc = 1
check "... saying to pass --ca" grep -q -- "--ca FILE" <<<"$out"
out=$("$cli" --hub "$url" --ca "$other/c" get nodes 2>&1)
rc=$?
echo "# $out"
check "drover with a foreign CA fails" test $rc = 1
check "... naming the CA file" grep -qF -- "$other/c" <<<"$out"
out=$("$cli" --hub "$url" --ca "$tmp/missing.crt" get nodes 2>&1)
rc=$?
check "drover --ca with a missing file fails" test $rc = 1
check "... naming it" grep -qF -- "--ca $tmp/missing.crt" <<<"$out"
out=$("$cli" --hub "http://127.0.0.1:$port" get nodes 2>&1)
rc=$?
echo "# $out"
check "drover over http to the TLS port fails" test $rc = 1
check "... suggesting https" grep -q 'https://' <<<"$out"
out=$("$cli" --hub "$url" --ca "$pki/ca.crt" logs nosuchpod 2>&1)
check "drover logs --ca reaches the hub (pod not found)" grep -q 'not found' <<<"$out"
out=$("$cli" --hub "$url" logs nosuchpod 2>&1)
check "drover logs without a CA says to pass --ca" grep -q -- "--ca FILE" <<<"$out"
# drover login --ca saves the CA in the config file; later commands use it.
cp "$pki/ca.crt" "$tmp/saved-ca.crt"
(cd "$tmp" && "$cli" login --hub "$url" --ca saved-ca.crt --token anything >/dev/null 2>&1)
check "drover login --ca works" test $? = 0
check "the config file holds the CA's absolute path" \
  grep -qE "\"ca\":[[:space:]]*\"$tmp/saved-ca.crt\"" "$HOME/.config/drover/config"
out=$("$cli" get nodes 2>&1)
check "after login, drover get nodes works ($out)" test $? = 0
"$cli" login --hub "$url" --ca "$tmp/hub.out" --token anything >/dev/null 2>"$tmp/l.err"
check "drover login --ca with a non-certificate is refused" \
  bash -c "grep -q 'no PEM certificate' '$tmp/l.err'"
rm -rf "$HOME/.config"

# ---- restart: same CA; a new --san re-issues the server certificate only ----
ca_before=$(sha256sum <"$pki/ca.crt")
srv_before=$(sha256sum <"$pki/server.crt")
stop_hub
start_hub --tls --san hub.example --san 10.9.8.7
check "a restart keeps ca.crt" test "$(sha256sum <"$pki/ca.crt")" = "$ca_before"
check "a restart keeps server.crt" test "$(sha256sum <"$pki/server.crt")" = "$srv_before"
check "... and prints the same fingerprint" grep -q "CA fingerprint $fp" "$tmp/hub.out"
stop_hub
start_hub --tls --san other.example
check "a new --san keeps ca.crt" test "$(sha256sum <"$pki/ca.crt")" = "$ca_before"
check "a new --san re-issues server.crt" test "$(sha256sum <"$pki/server.crt")" != "$srv_before"
check "... naming it" \
  bash -c "openssl x509 -in '$pki/server.crt' -noout -ext subjectAltName | grep -q DNS:other.example"
port=${url##*:}
check "... and is served" \
  test "$(curl -sS -m 10 --cacert "$pki/ca.crt" --resolve "other.example:$port:127.0.0.1" \
    "https://other.example:$port/healthz")" = ok
stop_hub

# ---- the default, with neither flag: HTTPS ----
start_hub
check "by default the hub serves https" grep -q "^drover-hub: serving https://" "$tmp/hub.out"
stop_hub

# ---- with --no-tls: plain HTTP, identity created all the same ----
start_hub --no-tls
check "with --no-tls the hub serves http" grep -q "^drover-hub: serving http://" "$tmp/hub.out"
check "... and prints the CA fingerprint" grep -q "CA fingerprint $fp" "$tmp/hub.out"
check "... plain curl works" test "$(curl -sS -m 10 "$url/healthz")" = ok
stop_hub

# ---- broken identity: a clear error, not a crash ----
cp "$pki/server.key" "$tmp/server.key.bak"
openssl ecparam -name prime256v1 -genkey -noout -out "$pki/server.key" 2>/dev/null
"$hub" --data "$tmp/data" --listen 127.0.0.1:0 --no-controllers --tls >"$tmp/b.out" 2>"$tmp/b.err" &
bpid=$!
for _ in $(seq 1 $((100 * tf))); do kill -0 $bpid 2>/dev/null || break; sleep 0.05; done
kill $bpid 2>/dev/null
wait $bpid
rc=$?
echo "# $(cat "$tmp/b.err")"
check "a server.key not matching server.crt stops the hub (rc $rc)" test $rc = 1
check "... naming the files" grep -q "server.key does not belong to .*server.crt" "$tmp/b.err"
cp "$tmp/server.key.bak" "$pki/server.key"
"$hub" --data "$tmp/data" --listen 127.0.0.1:0 --tls --san 'bad name' >"$tmp/b.out" 2>"$tmp/b.err"
check "--san 'bad name' is refused naming it" grep -q -- '--san "bad name"' "$tmp/b.err"

rm -rf "$other"
echo "1..$n"
[ $fails -eq 0 ]
