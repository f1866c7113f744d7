#!/usr/bin/env bash
# drover logs end to end: hub (with its own Mosquitto) + one device whose agent connects to it +
# a real registry. Pods print known lines; the CLI fetches them through the hub's /log route,
# which asks the agent over MQTT. Checks: the whole log, --tail 1, an unknown container or pod
# (a clear "drover: ..." error, exit 1), -f showing a line printed after it started and
# streaming until stopped.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/device.sh"
netns_enter "$0" "$@"
source "$here/lib/registry.sh"
registry_require_tools || exit 77
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || { echo "SKIP: mosquitto missing"; exit 77; }
hub="${DROVER_BUILD_DIR:?}/hub/drover-hub"
drover="$DROVER_BUILD_DIR/cli/drover"
tf="${DROVER_TEST_TIME_FACTOR:-1}"

fails=0
check() { local name=$1; shift; if "$@"; then echo "ok - $name"; else echo "not ok - $name"; fails=$((fails + 1)); fi; }

registry_start || exit 1
layout="$(image_build_busybox logs 1)" || exit 1
image_push "$layout" 1 test/logs:1 || exit 1

tmp=$(mktemp -d)
hubpid=
stop_hub() {
  if [ -n "$hubpid" ]; then
    kill "$hubpid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$hubpid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$hubpid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
registry_on_exit stop_hub
"$hub" --data "$tmp/data" --listen 127.0.0.1:0 --no-auth --no-tls --no-broker-tls >"$tmp/hub.out" 2>"$tmp/hub.err" &
hubpid=$!
url= broker=
for _ in $(seq 1 100); do
  url=$(sed -n 's/^drover-hub: serving \(http:[^ ]*\)$/\1/p' "$tmp/hub.out")
  broker=$(sed -n 's/^drover-hub: broker \(tcp:[^ ]*\)$/\1/p' "$tmp/hub.out")
  [ -n "$url" ] && [ -n "$broker" ] && break
  sleep 0.1
done
[ -n "$url" ] && [ -n "$broker" ] || { echo "hub did not start"; cat "$tmp/hub.out" "$tmp/hub.err"; exit 1; }
export DROVER_HUB=$url HOME=$tmp

DEVICE_SIGNING_PUB="$tmp/data/pki/signing.pub" device_start dev1 "hub: {broker: \"$broker\", heartbeatSeconds: 1}" || { cat "$DEV_LOG"; exit 1; }
node_ready() {
  [ "$(curl -s "$url/api/v1/nodes/dev1" | jq -r '.status.conditions[]? | select(.type=="Ready") | .status')" = True ]
}
wait_for "node dev1 Ready in the hub" $((30 * tf)) node_ready || { tail -30 "$DEV_LOG"; tail -30 "$tmp/hub.err"; exit 1; }

cat >"$tmp/pods.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: printer}
spec:
  containers:
  - name: main
    image: $REGISTRY_ADDR/test/logs:1
    command: [sh, -c, 'echo line-one; echo line-two; echo line-three; exec sleep 1000000']
---
apiVersion: v1
kind: Pod
metadata: {name: ticker}
spec:
  containers:
  - name: tick
    image: $REGISTRY_ADDR/test/logs:1
    command: [sh, -c, 'i=0; while true; do i=\$((i+1)); echo "tick \$i"; sleep 1; done']
YAML
"$drover" apply -f "$tmp/pods.yaml" >/dev/null || exit 1
running() {
  [ "$(curl -s "$url/api/v1/namespaces/default/pods/$1" | jq -r .status.phase)" = Running ]
}
wait_for "pod printer Running" $((60 * tf)) running printer || { "$drover" describe pod printer; tail -30 "$DEV_LOG"; exit 1; }
wait_for "pod ticker Running" $((30 * tf)) running ticker || { "$drover" describe pod ticker; exit 1; }

# The whole log (the pod's only container); the lines may lag the Running phase a little.
three_lines() { [ "$("$drover" logs printer 2>"$tmp/err")" = "$(printf 'line-one\nline-two\nline-three')" ]; }
check "drover logs prints the pod's lines" wait_for "three lines" $((15 * tf)) three_lines
[ -s "$tmp/err" ] && cat "$tmp/err"
out=$("$drover" logs printer -c main)
check "-c main: the same lines" test "$out" = "$(printf 'line-one\nline-two\nline-three')"
out=$("$drover" logs printer --tail 1)
check "--tail 1: the last line only (got '$out')" test "$out" = line-three
out=$("$drover" logs pod/printer -n default --tail=2)
check "pod/NAME, -n, --tail=2 (got '$(echo $out)')" test "$out" = "$(printf 'line-two\nline-three')"

# Errors: a clear message, exit 1, nothing on stdout.
"$drover" logs printer -c nope >"$tmp/out" 2>"$tmp/err"
rc=$?
check "unknown container: exit 1 (got $rc)" test "$rc" = 1
check "unknown container: 'drover: ...' naming it ($(head -c 200 "$tmp/err"))" grep -q '^drover: .*nope' "$tmp/err"
check "unknown container: nothing on stdout" test ! -s "$tmp/out"
"$drover" logs ghost >"$tmp/out" 2>"$tmp/err"
rc=$?
check "unknown pod: exit 1 (got $rc)" test "$rc" = 1
check "unknown pod: 'drover: ...' naming it ($(head -c 200 "$tmp/err"))" grep -q '^drover: .*ghost' "$tmp/err"
"$drover" logs printer -n elsewhere >/dev/null 2>"$tmp/err"
check "pod in another namespace: not found" grep -q '^drover: .*printer' "$tmp/err"
"$drover" logs printer --tail x >/dev/null 2>"$tmp/err"
rc=$?
check "--tail x: usage error naming --tail (exit $rc)" eval '[ $rc = 2 ] && grep -q -- "--tail" "$tmp/err"'

# -f: lines printed after it started arrive while it runs; it keeps streaming until stopped.
before=$("$drover" logs ticker --tail 1 | sed -n 's/^tick //p')
check "ticker has ticked (last: '$before')" test -n "$before"
timeout $((6 * tf)) "$drover" logs ticker -f --tail 1 >"$tmp/follow" 2>"$tmp/err"
rc=$?
check "-f streams until stopped (timeout exit 124, got $rc)" test "$rc" = 124
[ -s "$tmp/err" ] && cat "$tmp/err"
last=$(sed -n 's/^tick //p' "$tmp/follow" | tail -n 1)
check "-f shows lines printed after it started (tick $before, then up to tick ${last:-none})" \
  test "${last:-0}" -gt $((before + 1))
n=$(grep -c '^tick ' "$tmp/follow")
check "-f output is only tick lines, several of them ($n)" \
  eval '[ "$n" -ge 3 ] && [ "$n" = "$(wc -l <"$tmp/follow")" ]'
timeout $((4 * tf)) "$drover" logs printer -f >"$tmp/follow" 2>/dev/null
rc=$?
check "-f on a quiet pod: its lines, then waits (exit $rc)" \
  eval '[ $rc = 124 ] && [ "$(cat "$tmp/follow")" = "$(printf "line-one\nline-two\nline-three")" ]'

# A reader that goes away ends a follow quietly: exit 0, nothing on stderr.
timeout $((10 * tf)) bash -c 'set -o pipefail; "$1" logs ticker -f | head -n 2 >/dev/null' _ "$drover" 2>"$tmp/err"
rc=$?
check "-f | head -n 2: ends quietly (exit $rc, stderr '$(head -c 200 "$tmp/err")')" \
  eval '[ $rc = 0 ] && [ ! -s "$tmp/err" ]'

# The hub going away ends a follow (it does not hang).
"$drover" logs ticker -f >/dev/null 2>"$tmp/err" &
fpid=$!
sleep 2
kill "$hubpid"
ended() { ! kill -0 "$fpid" 2>/dev/null; }
check "-f ends when the hub stops" wait_for "drover logs -f to end" $((10 * tf)) ended
kill -9 "$fpid" 2>/dev/null
wait "$fpid" 2>/dev/null
echo "  (after the hub stopped: exit $?, stderr: $(head -c 200 "$tmp/err"))"

echo "cli logs checks: $fails failed"
[ "$fails" -eq 0 ]
