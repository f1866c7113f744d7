#!/usr/bin/env bash
# drover-hub's own MQTT broker as a user sees it: one command gives a hub with a Mosquitto on
# 127.0.0.1, retained messages survive a hub restart, a killed broker comes back, a stopped
# hub leaves no broker behind, and a busy port, a missing binary or a bad --broker URL are
# refused with a clear error. Uses mosquitto_pub/mosquitto_sub; only 127.0.0.1 traffic.
set -uo pipefail
hub="${DROVER_BUILD_DIR:?}/hub/drover-hub"
tf=${DROVER_TEST_TIME_FACTOR:-1}
for tool in /usr/sbin/mosquitto mosquitto_pub mosquitto_sub; do
  if ! command -v $tool >/dev/null; then
    echo "$tool missing (Debian packages mosquitto, mosquitto-clients)"
    [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
    exit 1
  fi
done
[ -x "$hub" ] || { echo "no $hub"; exit 1; }
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

# start_hub ARGS...: sets hubpid and broker (tcp://ADDR:PORT), or fails the test.
start_hub() {
  : >"$tmp/hub.out"
  "$hub" --data "$tmp/data" --listen 127.0.0.1:0 --no-auth --no-tls --no-broker-tls "$@" >"$tmp/hub.out" 2>>"$tmp/hub.err" &
  hubpid=$!
  for _ in $(seq 1 $((200 * tf))); do
    if grep -q '^drover-hub: serving' "$tmp/hub.out"; then
      broker=$(sed -n 's/^drover-hub: broker \(.*\)$/\1/p' "$tmp/hub.out")
      return 0
    fi
    kill -0 "$hubpid" 2>/dev/null || break
    sleep 0.05
  done
  echo "hub did not start:"
  cat "$tmp/hub.err"
  exit 1
}
stop_hub() {
  kill "$hubpid" && wait "$hubpid"
  hubpid=
}
broker_pid() { # the Mosquitto child of the running hub
  local p
  for p in $(cat /proc/"$hubpid"/task/*/children 2>/dev/null); do
    grep -q mosquitto /proc/"$p"/comm 2>/dev/null && echo "$p" && return 0
  done
  return 1
}
pub() { mosquitto_pub -h 127.0.0.1 -p "$port" -q 1 "$@" 2>/dev/null; }
sub1() { mosquitto_sub -h 127.0.0.1 -p "$port" -q 1 -C 1 -W $((3 * tf)) -t "$1" 2>/dev/null; }
alive() { [ -e /proc/"$1" ] && ! grep -q '^[^)]*) [ZX]' /proc/"$1"/stat 2>/dev/null; }

start_hub
port=${broker##*:}
check "hub announces its broker on 127.0.0.1" grep -Eq '^tcp://127\.0\.0\.1:[0-9]+$' <<<"$broker"
check "config generated in the data directory" grep -q "^listener $port 127.0.0.1$" \
  "$tmp/data/broker/mosquitto.conf"
check "clients publish" pub -r -t drover/t/desired -m v1
check "clients subscribe" [ "$(sub1 drover/t/desired)" = v1 ]
bp=$(broker_pid)
check "broker is the hub's child" [ -n "$bp" ]

stop_hub
check "a stopped hub stops its broker" bash -c "! kill -0 $bp 2>/dev/null"
start_hub --broker-listen "127.0.0.1:$port"
check "same port again with --broker-listen" [ "$broker" = "tcp://127.0.0.1:$port" ]
check "retained message survives a restart" [ "$(sub1 drover/t/desired)" = v1 ]

bp=$(broker_pid)
kill -9 "$bp"
ok=
for _ in $(seq 1 $((60 * tf))); do
  nbp=$(broker_pid) && [ "$nbp" != "$bp" ] && pub -t drover/t/ping -m x && ok=1 && break
  sleep 0.1
done
check "a killed broker is restarted and serves again" [ -n "$ok" ]

# A second hub on the same broker port: refused, naming the port.
"$hub" --data "$tmp/data2" --listen 127.0.0.1:0 --no-auth --no-tls --no-broker-tls --broker-listen "127.0.0.1:$port" \
  >/dev/null 2>"$tmp/busy.err"
rc=$?
check "busy broker port refused" [ $rc -ne 0 ]
check "error names the port" grep -q "port $port on 127.0.0.1 is in use" "$tmp/busy.err"

"$hub" --data "$tmp/data3" --listen 127.0.0.1:0 --no-auth --no-tls --no-broker-tls --mosquitto /nonexistent/mosquitto \
  >/dev/null 2>"$tmp/nobin.err"
rc=$?
check "missing mosquitto refused" [ $rc -ne 0 ]
check "error names the binary" grep -q "/nonexistent/mosquitto" "$tmp/nobin.err"

"$hub" --data "$tmp/data4" --listen 127.0.0.1:0 --no-auth --no-tls --broker "localhost:1883" >/dev/null \
  2>"$tmp/url.err"
rc=$?
check "bad --broker URL refused" [ $rc -ne 0 ]
check "error names --broker" grep -q -- "--broker" "$tmp/url.err"

# An external broker: the hub starts none of its own.
stop_hub
start_hub --broker "tcp://127.0.0.1:9"
check "external broker announced" [ "$broker" = "tcp://127.0.0.1:9" ]
check "no broker child with --broker" bash -c "! [ -n \"\$(cat /proc/$hubpid/task/*/children)\" ]"
stop_hub

# kill -9 of the hub: its broker goes too.
start_hub
bp=$(broker_pid)
kill -9 "$hubpid"
wait "$hubpid" 2>/dev/null
hubpid=
gone=
for _ in $(seq 1 $((60 * tf))); do
  alive "$bp" || { gone=1; break; }
  sleep 0.1
done
check "a killed hub leaves no broker behind" [ -n "$gone" ]

echo "1..$n"
[ $fails -eq 0 ]
