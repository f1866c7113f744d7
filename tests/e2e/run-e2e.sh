#!/usr/bin/env bash
# The dashboard tests' harness: runs node:test spec files (playwright-core driving Debian's
# chromium) against a real fleet — the registry, drover-hub in its default secure
# configuration (HTTPS, tokens, TLS broker) and 3 enrolled devices (dev1..dev3), all in a network
# namespace of its own (tests/integration/lib/fleet.sh).
# Usage: tests/e2e/run-e2e.sh SPEC.mjs...     (as root, after a build; DROVER_BUILD_DIR set, as
#        CTest sets it, or ./build)
# Each spec gets, in its environment:
#   DROVER_HUB_URL          https://127.0.0.1:PORT (the hub's own CA: ignore HTTPS errors)
#   DROVER_ADMIN_TOKEN, DROVER_OPERATOR_TOKEN, DROVER_VIEWER_TOKEN   API tokens of each role
#   DROVER_E2E_NODES        "dev1 dev2 dev3"
#   DROVER_E2E_IMAGE, DROVER_E2E_IMAGE2   busybox images in the fleet's registry (/etc/drover-image
#                           says app:1 / app:2; `sleep`, `httpd`, `echo` ... are there)
#   DROVER_E2E_OUT          $DROVER_BUILD_DIR/e2e-screenshots/<spec name> (made, emptied)
#   DROVER_E2E_CTL          tests/e2e/ctl.sh: a command acting on this fleet (lib/ctl.mjs wraps
#                           it): poweroff NODE, poweron NODE, agent-restart NODE, partition NODE,
#                           heal NODE, hub-restart, nodes, forward PORT (a server the spec
#                           started on 127.0.0.1:PORT, for the browser). The harness serves it: the fleet's
#                           state lives in this shell, so ctl.sh sends its request over a FIFO and
#                           the harness runs it here, between the spec's steps.
#   DROVER_CA, DROVER_HUB, DROVER_TOKEN (admin): the CLI works as is (drover get pods).
# Chromium runs in a network namespace of its own (see "chromium in a network namespace" below):
# DROVER_CHROMIUM is set to a wrapper that enters it.
# Each spec file runs as `node --test` of its own (its tests one after the other) under a time
# limit (DROVER_E2E_TIMEOUT seconds, default 300, times DROVER_TEST_TIME_FACTOR); on a failure the
# hub's and devices' logs are printed (fleet_dump). Exit status: 0 when every spec passed, 1
# otherwise, 77 (skipped) when chromium or tests/e2e/node_modules is missing and
# DROVER_ALLOW_SKIP is set (without it, a missing dependency fails).
# Environment: DROVER_E2E_DEVICES (default 3), DROVER_E2E_NODE_GRACE (the hub's --node-grace,
# default 4 s: a powered-off device is NotReady within seconds), DROVER_E2E_HEADED=1 (a visible
# browser, where there is a display), DROVER_CHROMIUM (default /usr/bin/chromium).
set -uo pipefail
e2e="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$e2e/../.." && pwd)"
: "${DROVER_BUILD_DIR:=$root/build}"
export DROVER_BUILD_DIR
DROVER_BUILD_DIR="$(cd "$DROVER_BUILD_DIR" && pwd)" || exit 1

if [ "$#" -eq 0 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  sed -n '2,30p' "$0"
  [ "$#" -gt 0 ]
  exit
fi

# Before the namespace: what the browser tests need beyond the fleet's own tools.
e2e_missing() {
  local chromium="${DROVER_CHROMIUM:-/usr/bin/chromium}"
  [ -x "$chromium" ] || echo "$chromium (Debian's chromium)"
  command -v node >/dev/null 2>&1 || echo "node"
  [ -f "$e2e/node_modules/playwright-core/package.json" ] || echo "$e2e/node_modules (npm ci)"
}
if [ -z "${DROVER_TEST_NETNS:-}" ]; then
  missing="$(e2e_missing)"
  if [ -n "$missing" ]; then
    echo "run-e2e: missing: $(tr '\n' ' ' <<<"$missing")- run ports/debian/install-deps --browser (or --cross)" >&2
    [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
    exit 1
  fi
  for spec in "$@"; do
    [ -f "$spec" ] || { echo "run-e2e: no spec file $spec" >&2; exit 2; }
  done
fi

# shellcheck source=../integration/lib/fleet.sh
source "$root/tests/integration/lib/fleet.sh"
# The specs' paths, absolute: netns_enter runs this script again from the same folder.
specs=()
for spec in "$@"; do specs+=("$(cd "$(dirname "$spec")" && pwd)/$(basename "$spec")"); done
netns_enter "$0" "${specs[@]}"

if ! fleet_require_tools; then
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
fi

t_start=$(fleet_ms)
fleet_setup || exit 1
export FLEET_SECURE=1 FLEET_NODE_GRACE="${DROVER_E2E_NODE_GRACE:-4}"
# The hub's debug log is for the failure dump; info keeps the disk quieter at the same value.
FLEET_HUB_LOG_LEVEL="${FLEET_HUB_LOG_LEVEL:-info}"
DEVICE_LOG_LEVEL="${DEVICE_LOG_LEVEL:-info}"
ndev="${DROVER_E2E_DEVICES:-3}"
if ! fleet_start "$ndev"; then
  echo "run-e2e: the fleet did not start" >&2
  fleet_dump
  exit 1
fi

token() {
  fleet_drover token create --role "$1" --ttl 4h --description "e2e $1" 2>/dev/null
}
DROVER_ADMIN_TOKEN="$DROVER_TOKEN"
DROVER_OPERATOR_TOKEN="$(token operator)" && DROVER_VIEWER_TOKEN="$(token viewer)" ||
  { echo "run-e2e: drover token create failed" >&2; fleet_dump; exit 1; }
DROVER_E2E_NODES="$(seq -f 'dev%g' -s ' ' 1 "$ndev")"
export DROVER_HUB_URL="$FLEET_HUB" DROVER_ADMIN_TOKEN DROVER_OPERATOR_TOKEN DROVER_VIEWER_TOKEN
export DROVER_E2E_NODES DROVER_E2E_IMAGE="$FLEET_IMG1" DROVER_E2E_IMAGE2="$FLEET_IMG2"
export DROVER_E2E_CTL="$e2e/ctl.sh" DROVER_E2E_CTL_DIR="$FLEET_TMP/ctl"
echo "# fleet of $ndev devices up in $(fleet_elapsed "$t_start") s: hub $FLEET_HUB"

# ---- chromium in a network namespace of its own ----
# Chromium drops every request in flight (loopback too: net::ERR_NETWORK_CHANGED) when an
# interface or address of its namespace changes, and the devices add a veth to this one for
# every pod they start. So chromium runs in a namespace with nothing but its loopback, where
# 127.0.0.1:PORT of the hub (and of any server a spec starts, `ctl forward PORT`) is relayed to
# the same port here through a Unix socket: the pages see the same URLs and origins.
bns="drvb-$$"
relay_js='const net = require("net");
const [mode, from, to] = process.argv.slice(1);
const dial = () => (mode === "tcp2unix" ? net.connect(to) : net.connect(Number(to), "127.0.0.1"));
const srv = net.createServer((c) => {
  const u = dial();
  const end = () => { c.destroy(); u.destroy(); };
  for (const s of [c, u]) { s.on("error", end); s.on("close", end); }
  c.pipe(u);
  u.pipe(c);
});
srv.on("error", (e) => { console.error(`relay: ${e.message}`); process.exit(1); });
const ready = () => console.log("ready");
if (mode === "tcp2unix") srv.listen(Number(from), "127.0.0.1", ready); else srv.listen(from, ready);'
relay_pids=()
# _relay PORT: 127.0.0.1:PORT of the browser's namespace reaches 127.0.0.1:PORT here.
_relay() {
  local port="$1" sock="$FLEET_TMP/relay.$1.sock" i
  [[ "$port" =~ ^[0-9]+$ ]] || { echo "relay: bad port '$port'"; return 2; }
  [ ! -S "$sock" ] || { echo "127.0.0.1:$port is relayed already"; return 0; }
  node -e "$relay_js" unix2tcp "$sock" "$port" >"$sock.a" 2>&1 &
  relay_pids+=("$!")
  for i in $(seq 1 50); do grep -q ready "$sock.a" 2>/dev/null && break; sleep 0.1; done
  ip netns exec "$bns" node -e "$relay_js" tcp2unix "$port" "$sock" >"$sock.b" 2>&1 &
  relay_pids+=("$!")
  for i in $(seq 1 50); do grep -q ready "$sock.b" 2>/dev/null && break; sleep 0.1; done
  grep -q ready "$sock.a" && grep -q ready "$sock.b" ||
    { echo "relay of 127.0.0.1:$port failed: $(cat "$sock.a" "$sock.b")"; return 1; }
  echo "127.0.0.1:$port relayed into the browser's namespace"
}
_browser_ns_cleanup() {
  local p
  for p in "${relay_pids[@]}"; do kill "$p" 2>/dev/null; done
  ip netns pids "$bns" 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns del "$bns" 2>/dev/null
  rm -f "/run/netns/$bns" # left behind when the namespace's mount did not reach this mount namespace
}
ip netns add "$bns" && ip -n "$bns" link set lo up || { echo "run-e2e: ip netns add $bns failed" >&2; exit 1; }
registry_on_exit _browser_ns_cleanup
_relay "${FLEET_HUB##*:}" >/dev/null || { echo "run-e2e: no relay to the hub" >&2; exit 1; }
cat >"$FLEET_TMP/chromium" <<SH
#!/bin/sh
exec ip netns exec $bns ${DROVER_CHROMIUM:-/usr/bin/chromium} "\$@"
SH
chmod 755 "$FLEET_TMP/chromium"
export DROVER_CHROMIUM="$FLEET_TMP/chromium" DROVER_E2E_BROWSER_NETNS="$bns"

# ---- ctl: requests from ctl.sh, run in this shell ----
mkdir -m 700 "$DROVER_E2E_CTL_DIR" && mkfifo -m 600 "$DROVER_E2E_CTL_DIR/req" || exit 1
# Read and write: the FIFO never reads end-of-file between two writers.
exec 7<>"$DROVER_E2E_CTL_DIR/req"

_ctl_node() {
  [[ "${1:-}" =~ ^[a-z0-9][a-z0-9-]*$ ]] && [ -n "${FLEET_DEV_DIR[$1]:-}" ] ||
    { echo "ctl: no device '${1:-}' (devices: $DROVER_E2E_NODES)"; return 2; }
}

# Restarts the device's drover-agent (SIGTERM; its init loop starts it again, as systemd would)
# and waits until the new one answers its status.
_ctl_agent_restart() {
  local old new i
  fleet_use "$1" || return 1
  old="$(device_agent_pid)"
  [ -n "$old" ] || { echo "ctl: no agent running on $1"; return 1; }
  echo "=== agent restart $(date -u +%T.%N)" >>"$DEV_LOG"
  kill -TERM "$old"
  for i in $(seq 1 $((150 * FLEET_TF))); do
    new="$(device_agent_pid)"
    [ -n "$new" ] && [ "$new" != "$old" ] && device_status_ok && { echo "agent of $1 restarted"; return 0; }
    sleep 0.2
  done
  echo "ctl: the agent of $1 did not come back"
  return 1
}

# One request: ARGS... of ctl.sh; its output to stdout, its status returned.
_ctl_run() {
  local cmd="${1:-}"
  shift
  case "$cmd" in
    poweroff) _ctl_node "$@" && fleet_power_cut "$1" && echo "$1 powered off" ;;
    poweron) _ctl_node "$@" && fleet_power_on "$1" && echo "$1 powered on" ;;
    agent-restart) _ctl_node "$@" && _ctl_agent_restart "$1" ;;
    partition) _ctl_node "$@" && fleet_partition "$1" && echo "$1 cut off from the broker" ;;
    heal) _ctl_node "$@" && fleet_heal "$1" && echo "$1 reconnected" ;;
    hub-restart)
      fleet_hub_restart "${1:-TERM}" && fleet_wait "hub serving" 30 /api/v1/nodes ".items != null" >/dev/null &&
        echo "hub restarted: $FLEET_HUB" ;;
    nodes) fleet_drover get nodes -o wide ;;
    forward) _relay "${1:-}" ;;
    *) echo "ctl: unknown command '$cmd' (poweroff|poweron|agent-restart|partition|heal NODE," \
      "hub-restart, nodes, forward PORT)"; return 2 ;;
  esac
}

# Serves one request line if one comes within a second: "RESPONSE-FIFO ARGS...". The answer
# (output, then "#ctl-rc N") is written from a background subshell, so that a ctl.sh that died
# meanwhile cannot block the harness.
_ctl_serve_one() {
  local line resp rc out
  IFS= read -r -t 1 line <&7 || return 0
  read -r resp line <<<"$line"
  [[ "$resp" =~ ^resp\.[A-Za-z0-9]+$ ]] && [ -p "$DROVER_E2E_CTL_DIR/$resp" ] || return 0
  out="$DROVER_E2E_CTL_DIR/$resp.out"
  echo "# ctl: $line" >&2
  local args=()
  read -r -a args <<<"$line"
  _ctl_run "${args[@]}" >"$out" 2>&1
  rc=$?
  sed 's/^/# ctl:   /' "$out" >&2
  ({ cat "$out"; echo "#ctl-rc $rc"; } >"$DROVER_E2E_CTL_DIR/$resp"; rm -f "$out") &
  ctl_answers+=("$!")
}
ctl_answers=()

# ---- the specs ----
limit=$((${DROVER_E2E_TIMEOUT:-300} * FLEET_TF))
node_args=(--test)
# --test-concurrency (Node.js 20.10+; 18 runs one file's tests in order anyway).
node --help 2>/dev/null | grep -q -- '--test-concurrency' && node_args+=(--test-concurrency=1)
node --help 2>/dev/null | grep -q -- '--test-reporter' && node_args+=(--test-reporter=spec)
failed=()
for spec in "${specs[@]}"; do
  name="$(basename "$spec" .mjs)"
  export DROVER_E2E_OUT="$DROVER_BUILD_DIR/e2e-screenshots/$name"
  rm -rf "$DROVER_E2E_OUT" && mkdir -p "$DROVER_E2E_OUT"
  echo "# spec $name (limit ${limit} s, screenshots in $DROVER_E2E_OUT)"
  t0=$(fleet_ms)
  # Its own process group: the time limit ends node and its chromium together.
  setsid timeout --kill-after=10 "$limit" node "${node_args[@]}" "$spec" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    _ctl_serve_one
  done
  wait "$pid"
  rc=$?
  [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || echo "# spec $name: over its time limit (${limit} s)" >&2
  echo "# spec $name: exit $rc in $(fleet_elapsed "$t0") s"
  [ "$rc" -eq 0 ] || failed+=("$name")
done
exec 7<&-
# The last answers (only those: a bare `wait` would wait for the fleet's own processes). An
# answer nobody reads blocks on its FIFO: it is ended after 5 s.
for p in "${ctl_answers[@]}"; do
  for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill "$p" 2>/dev/null
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "run-e2e: FAILED: ${failed[*]}" >&2
  fleet_dump "${FLEET_DUMP_LINES:-80}"
  exit 1
fi
echo "run-e2e: ${#specs[@]} spec file(s) passed in $(fleet_elapsed "$t_start") s"
