#!/usr/bin/env bash
# Secrets encrypted at rest in the hub: a real drover-hub (with its own Mosquitto) on a free
# 127.0.0.1 port; `drover apply` a Secret with a distinctive value, read it back, stop the hub
# and grep every file of the data directory (hub.db, -wal, -shm, the broker's persistence) for
# the value and its base64: absent. Restart: still readable. --rotate-secret-key: still
# readable, key file changed, old key gone. A replaced key file: the hub refuses to start.
set -uo pipefail
hub="${DROVER_BUILD_DIR:?}/hub/drover-hub"
drover="${DROVER_BUILD_DIR}/cli/drover"
tf=${DROVER_TEST_TIME_FACTOR:-1}
for tool in jq base64 sha256sum; do
  if ! command -v $tool >/dev/null; then
    echo "$tool missing"
    [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
    exit 1
  fi
done
[ -x "$hub" ] || { echo "no $hub"; exit 1; }
[ -x "$drover" ] || { echo "no $drover"; exit 1; }
tmp=$(mktemp -d)
data="$tmp/data"
hubpid=
cleanup() {
  [ -n "$hubpid" ] && kill -9 "$hubpid" 2>/dev/null && wait "$hubpid" 2>/dev/null
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

start_hub() {
  : >"$tmp/hub.out"
  : >"$tmp/hub.err"
  "$hub" --data "$data" --listen 127.0.0.1:0 --no-auth --no-tls --no-broker-tls --no-controllers >"$tmp/hub.out" 2>"$tmp/hub.err" &
  hubpid=$!
  for _ in $(seq 1 $((200 * tf))); do
    url=$(sed -n 's/^drover-hub: serving \(https\?:[^ ]*\)$/\1/p' "$tmp/hub.out")
    if [ -n "$url" ]; then
      export DROVER_HUB=$url
      return 0
    fi
    kill -0 "$hubpid" 2>/dev/null || break
    sleep 0.05
  done
  echo "hub did not start:"
  cat "$tmp/hub.err"
  exit 1
}

# Graceful stop (SIGTERM): the broker writes its persistence, SQLite checkpoints.
stop_hub() {
  kill -TERM "$hubpid" 2>/dev/null
  for _ in $(seq 1 $((200 * tf))); do
    kill -0 "$hubpid" 2>/dev/null || break
    sleep 0.05
  done
  kill -9 "$hubpid" 2>/dev/null
  wait "$hubpid" 2>/dev/null
  hubpid=
}

value="drover-sekrit-Xq7Zp41-$$"
b64=$(printf '%s' "$value" | base64 -w0)
# The base64 of the value as it may sit inside a longer base64 text at any of 3 offsets.
b64a=$(printf 'a%s' "$value" | base64 -w0 | cut -c5-24)
b64b=$(printf 'ab%s' "$value" | base64 -w0 | cut -c5-24)

# password of the Secret as `drover get` shows it, decoded; "" when it fails.
get_password() {
  "$drover" get secret db-pass -o json 2>"$tmp/get.err" | jq -r '.data.password // empty' |
    base64 -d 2>/dev/null
}

# no_trace NAME: the value appears in no file of the data directory.
no_trace() {
  local hits
  hits=$(grep -a -r -l -F -e "$value" -e "$b64" -e "${b64:4:20}" -e "$b64a" -e "$b64b" "$data" 2>/dev/null)
  if [ -n "$hits" ]; then
    echo "# found in: $hits"
    return 1
  fi
  return 0
}

start_hub
cat >"$tmp/secret.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: db-pass
  labels:
    app: web
type: Opaque
stringData:
  password: $value
YAML
"$drover" apply -f "$tmp/secret.yaml" >"$tmp/apply.out" 2>&1
check "drover apply the Secret" test $? = 0
check "drover get shows the value" test "$(get_password)" = "$value"
# An update too (change log holds both versions).
sed -i "s/$value/$value-v2/" "$tmp/secret.yaml"
"$drover" apply -f "$tmp/secret.yaml" >>"$tmp/apply.out" 2>&1
check "apply a new value" test "$(get_password)" = "$value-v2"
check "the key file is 0600" test "$(stat -c %a "$data/secret.keys")" = 600
stop_hub
ls -la "$data" | sed 's/^/# /'
check "the data directory holds the database" test -s "$data/hub.db"
check "value and base64 in no file of the data directory (hub.db, -wal, -shm, broker)" no_trace
check "the row is sealed" grep -a -q -F '"drover.sealed":"k1:' "$data/hub.db"
check "nothing about it in the hub's output" \
  bash -c "! grep -a -q -F -e '$value' -e '$b64' '$tmp/hub.out' '$tmp/hub.err'"

start_hub
check "after a restart: still readable" test "$(get_password)" = "$value-v2"
sum0=$(sha256sum <"$data/secret.keys")
"$hub" --data "$data" --rotate-secret-key >"$tmp/rotate.out" 2>&1
rc=$?
check "--rotate-secret-key while the hub runs: refused (rc $rc)" test "$rc" != 0
check "it says to stop the hub" grep -q "stop it first" "$tmp/rotate.out"
check "the key file is unchanged" test "$(sha256sum <"$data/secret.keys")" = "$sum0"
check "the running hub still reads it" test "$(get_password)" = "$value-v2"
stop_hub

sum1=$(sha256sum <"$data/secret.keys")
"$hub" --data "$data" --rotate-secret-key >"$tmp/rotate.out" 2>&1
rc=$?
cat "$tmp/rotate.out" | sed 's/^/# /'
check "--rotate-secret-key exits 0" test "$rc" = 0
check "it names the new key" grep -q "now k2" "$tmp/rotate.out"
check "the key file changed" test "$(sha256sum <"$data/secret.keys")" != "$sum1"
check "only the new key is left" test "$(grep -v '^#' "$data/secret.keys" | cut -d' ' -f1)" = k2
check "still 0600" test "$(stat -c %a "$data/secret.keys")" = 600
check "no row sealed with k1 any more" bash -c "! grep -a -q -F '\"drover.sealed\":\"k1:' '$data/hub.db'"
check "after rotation: no trace either" no_trace
start_hub
check "after rotation: still readable" test "$(get_password)" = "$value-v2"
stop_hub

# Another key file: the hub says so and does not start.
cp "$data/secret.keys" "$tmp/keys.good"
printf 'k2 %s\n' "$(head -c 32 /dev/urandom | base64 -w0)" >"$data/secret.keys"
chmod 600 "$data/secret.keys"
timeout $((20 * tf)) "$hub" --data "$data" --listen 127.0.0.1:0 --no-auth --no-tls --no-broker-tls --no-controllers >"$tmp/hub.out" 2>"$tmp/hub.err"
rc=$?
check "a wrong key file: the hub exits non-zero (rc $rc)" test "$rc" != 0 -a "$rc" != 124
check "and says the key file is wrong" grep -q "secret.keys opens none of the" "$tmp/hub.err"
sed 's/^/# /' "$tmp/hub.err"
cp "$tmp/keys.good" "$data/secret.keys"
chmod 644 "$data/secret.keys"
timeout $((20 * tf)) "$hub" --data "$data" --listen 127.0.0.1:0 --no-auth --no-tls --no-broker-tls --no-controllers >"$tmp/hub.out" 2>"$tmp/hub.err"
check "a key file readable by others is refused" grep -q "chmod 600" "$tmp/hub.err"
chmod 600 "$data/secret.keys"
start_hub
check "the right key file again: readable" test "$(get_password)" = "$value-v2"
stop_hub

echo "1..$n"
[ "$fails" = 0 ]
