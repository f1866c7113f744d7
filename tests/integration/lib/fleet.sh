# shellcheck shell=bash
# Test fixture, sourced by integration tests and benchmarks: a whole fleet on this machine —
# the registry, drover-hub with its own Mosquitto, and K devices (lib/device.sh) that connect
# to the hub over MQTT. Everything runs in the one network namespace netns_enter makes:
#
#   source "$here/lib/fleet.sh"     # sources device.sh and registry.sh
#   netns_enter "$0" "$@"           # then, in the namespace:
#   fleet_setup || exit 1           # registry + images test/app:1 and test/app:2 (FLEET_IMG1,
#                                   # FLEET_IMG2: busybox, /etc/drover-image says "app:1"/"app:2")
#   fleet_hub_start                 # FLEET_HUB (http://...), FLEET_BROKER_PORT, FLEET_HUB_PID
#   fleet_device_start NAME K       # device K: node NAME, bridge drvK, podSubnet 10.(88+K).0.0/16,
#                                   # broker tcp://127.0.0.(10+K):PORT (its own address, so one
#                                   # iptables rule partitions it), labels fleet=test; FLEET_DEV_NODE
#                                   # names the node otherwise, FLEET_DEV_SEED_STATE seeds its state,
#                                   # FLEET_REGISTRIES replaces its agent.yaml's registries block
#   fleet_start K                   # hub + devices dev1..devK, all nodes Ready
#   fleet_use NAME                  # point device.sh's DEV_* at device NAME (device_status ...)
#   fleet_drover ARGS...            # the CLI against the hub
#   fleet_apply FILE                # drover apply -f FILE
#   fleet_api PATH                  # GET PATH on the hub, JSON to stdout
#   fleet_pods SELECTOR [NS]        # pods matching a label selector, JSON list
#   fleet_wait DESC SECS PATH JQ    # until GET PATH | jq -e JQ holds (SECS x time factor;
#                                   # polled every FLEET_POLL s, default 0.2)
#   fleet_running SELECTOR N [SECS] # waits for exactly N live pods, all Running and Ready
#   fleet_pods_path SELECTOR [NS]   # the API path fleet_pods reads (for fleet_wait)
#   fleet_node_ready NAME / fleet_node_not_ready NAME   # the node's Ready condition
#   FLEET_JQ_READY, FLEET_JQ_READY_COUNT, fleet_jq_running N   # jq filters for the above
#   fleet_partition NAME / fleet_heal NAME   # cut / restore the device's broker connection
#   fleet_link_cut NAME [reset]     # a flaky link: as fleet_partition (packets dropped, no
#                                   # reset: the broker notices only at the keep-alive); "reset"
#                                   # first resets the TCP connection, so the broker fires the
#                                   # device's Will at once; fleet_heal ends it either way
#   fleet_power_cut NAME / fleet_power_on NAME
#   fleet_hub_restart [SIGNAL]      # same data directory, same broker port (KILL: a crash)
#   fleet_broker_kill               # SIGKILL the hub's Mosquitto (the hub restarts it)
#   fleet_device_pods NAME          # names of the pods the device itself runs (device_status)
#   fleet_devices_running PREFIX    # Running pods PREFIX* over all live devices (their view)
#   fleet_wait_devices PREFIX N [SECS]   # until that count is N
#   fleet_logs POD [NS]             # drover logs POD
#   fleet_exec NODE POD CTR CMD...  # CMD inside a container (crun exec on its device)
#   fleet_pod_uids POD...           # ask the hub once for the pods' uids (FLEET_POD_UID[POD]),
#                                   # for fleet_pexec while the hub is away
#   fleet_pexec NODE POD CMD...     # CMD in POD's container "c", bounded by FLEET_EXEC_TIMEOUT
#                                   # seconds (default 5; Debian 12's busybox wget -T crashes)
#   fleet_ms / fleet_elapsed T0     # ms clock; seconds since T0 as N.N
#   fleet_dump                      # hub and device logs, for a failing test
#   check NAME CMD...               # TAP-like "ok N - NAME"; counts FLEET_FAILS
#   fleet_finish                    # summary line, logs if a check failed, exit status
#
# FLEET_SECURE=1 (set before fleet_hub_start): the hub in its default configuration — HTTPS API
# with the admin token (DROVER_HUB/DROVER_CA/DROVER_TOKEN exported for the CLI, fleet_api uses
# them), TLS-only broker; each device enrols with a bootstrap token of its own (labels
# fleet=test, device=dK) and connects with its certificate. Otherwise the hub runs with
# --no-auth --no-tls --no-broker-tls and the devices get the hub's signing key provisioned.
#
# Devices in network namespaces of their own (tests/integration/test_fleet_network.sh):
#   fleet_wan_setup                 # bridge wan0 192.168.77.1/24 here: the "internet"; set
#                                   # before fleet_setup, the registry, hub and broker listen on
#                                   # it (REGISTRY_HOST, FLEET_HUB_HOST, FLEET_BROKER_HOST)
#   fleet_netns_device NAME K       # namespace <ns>-NAME, 192.168.77.(10+K) on wan0
#   fleet_netns_device_nat NAME K   # NAME behind a masquerading router (<ns>-nat, 192.168.77.9):
#                                   # 192.168.88.(10+K), unreachable from wan0
#   (fleet_device_start then runs NAME in its namespace with the cluster network on; devices
#   sharing this namespace run with `network: {mode: off}`, their pod subnets apart)
#
# Needs what device.sh and registry.sh need, plus mosquitto and iptables.

# shellcheck disable=SC2034 # the variables set here are for the sourcing test
_fleet_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=device.sh
source "$_fleet_here/device.sh"
# shellcheck source=registry.sh
source "$_fleet_here/registry.sh"

FLEET_TF="${DROVER_TEST_TIME_FACTOR:-1}"
FLEET_HUB_BIN="${DROVER_BUILD_DIR:?}/hub/drover-hub"
FLEET_CLI="${DROVER_BUILD_DIR}/cli/drover"
FLEET_FAILS=0
FLEET_CHECKS=0
FLEET_HUB=""
FLEET_HUB_PID=""
FLEET_BROKER_PORT=""
FLEET_TMP=""
declare -A FLEET_DEV_DIR FLEET_DEV_PID FLEET_DEV_K FLEET_DEV_NETNS FLEET_POD_UID

check() {
  local name="$1"
  shift
  FLEET_CHECKS=$((FLEET_CHECKS + 1))
  if "$@"; then
    echo "ok $FLEET_CHECKS - $name"
  else
    echo "not ok $FLEET_CHECKS - $name"
    FLEET_FAILS=$((FLEET_FAILS + 1))
  fi
}

fleet_require_tools() {
  registry_require_tools || return 1
  local t
  for t in /usr/sbin/mosquitto iptables curl jq; do
    command -v "$t" >/dev/null 2>&1 || { echo "fleet fixture: missing $t" >&2; return 1; }
  done
  [ -x "$FLEET_HUB_BIN" ] && [ -x "$FLEET_CLI" ] ||
    { echo "fleet fixture: build drover-hub and drover first" >&2; return 1; }
}

# Milliseconds since the epoch.
fleet_ms() { date +%s%3N; }

fleet_setup() {
  fleet_require_tools || return 1
  FLEET_TMP="$(mktemp -d "${TMPDIR:-/tmp}/drover-fleet.XXXXXX")"
  registry_on_exit "fleet_cleanup"
  registry_start >/dev/null || return 1
  local l1 l2
  l1="$(image_build_busybox app 1)" || return 1
  l2="$(image_build_busybox app 2)" || return 1
  image_push "$l1" 1 test/app:1 || return 1
  image_push "$l2" 2 test/app:2 || return 1
  FLEET_IMG1="$REGISTRY_ADDR/test/app:1"
  FLEET_IMG2="$REGISTRY_ADDR/test/app:2"
  export HOME="$FLEET_TMP" # the CLI's config file, if any, is the test's own
}

fleet_cleanup() {
  fleet_hub_stop
  [ -n "${KEEP_DEVICE:-}" ] || rm -rf "$FLEET_TMP"
}

_fleet_free_port() {
  local port
  for _ in $(seq 1 50); do
    # Below the ephemeral range: see _registry_free_port (lib/registry.sh).
    port=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# The hub's command line options differ while issue 4 lands: ask its --help.
_fleet_hub_args() {
  local help
  help="$("$FLEET_HUB_BIN" --help 2>&1)"
  if grep -q -- '--no-controllers' <<<"$help"; then
    :
  elif grep -q -- '--controllers' <<<"$help"; then
    echo "--controllers"
  fi
  if [ -n "${FLEET_SECURE:-}" ]; then
    # Devices reach the broker at 127.0.0.(10+K): the broker's certificate must name them.
    local k
    for k in $(seq 1 8); do echo "--san"; echo "127.0.0.$((10 + k))"; done
    [ -z "${FLEET_BROKER_HOST:-}" ] || { echo "--san"; echo "$FLEET_BROKER_HOST"; }
  else
    # These tests are about the fleet, not access control or TLS (test_hub_auth.sh,
    # test_hub_tls.sh, test_broker_tls.sh, test_fleet_secure.sh): open API, plain MQTT, the
    # devices provisioned with the hub's signing key (fleet_device_start).
    echo "--no-auth"
    echo "--no-tls"
    echo "--no-broker-tls"
  fi
  # The scheduler reads image platforms from the test registry, which speaks plain HTTP.
  if grep -q -- '--insecure-registry' <<<"$help" && [ -n "${REGISTRY_ADDR:-}" ]; then
    echo "--insecure-registry"
    echo "$REGISTRY_ADDR"
  fi
  if grep -q -- '--node-grace' <<<"$help"; then
    echo "--node-grace"
    echo "${FLEET_NODE_GRACE:-10}"
  fi
  # FLEET_HUB_EXTRA: more options, blank-separated (e.g. "--hpa-sync-seconds 2").
  local a
  for a in ${FLEET_HUB_EXTRA:-}; do echo "$a"; done
}

# fleet_hub_start: a hub on a free API port with its own Mosquitto on 0.0.0.0:FLEET_BROKER_PORT
# (kept across restarts), data in $FLEET_TMP/hub.
fleet_hub_start() {
  [ -n "$FLEET_BROKER_PORT" ] || FLEET_BROKER_PORT="$(_fleet_free_port)" || return 1
  local args=()
  mapfile -t args < <(_fleet_hub_args)
  : >"$FLEET_TMP/hub.out"
  echo "=== hub start $(date -u +%T.%N)" >>"$FLEET_TMP/hub.err"
  # A restarted hub keeps its API port, as a real one would (devices have its URL).
  local listen="${FLEET_HUB_HOST:-127.0.0.1}:0"
  [ -n "$FLEET_HUB" ] && listen="${FLEET_HUB_HOST:-127.0.0.1}:${FLEET_HUB##*:}"
  "$FLEET_HUB_BIN" --data "$FLEET_TMP/hub" --listen "$listen" --log-level "${FLEET_HUB_LOG_LEVEL:-debug}" \
    --broker-listen "0.0.0.0:$FLEET_BROKER_PORT" "${args[@]}" \
    >"$FLEET_TMP/hub.out" 2>>"$FLEET_TMP/hub.err" &
  FLEET_HUB_PID=$!
  local i
  for i in $(seq 1 $((300 * FLEET_TF))); do
    FLEET_HUB="$(sed -n 's/^drover-hub: serving \(https\{0,1\}:[^ ]*\)$/\1/p' "$FLEET_TMP/hub.out")"
    [ -n "$FLEET_HUB" ] && break
    kill -0 "$FLEET_HUB_PID" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$FLEET_HUB" ]; then
    echo "fleet: drover-hub did not start:" >&2
    tail -30 "$FLEET_TMP/hub.err" >&2
    return 1
  fi
  FLEET_BROKER="$(sed -n 's/^drover-hub: broker \(.*\)$/\1/p' "$FLEET_TMP/hub.out")"
  export DROVER_HUB="$FLEET_HUB"
  FLEET_CURL=(curl -sS)
  if [ -n "${FLEET_SECURE:-}" ]; then
    FLEET_CA="$FLEET_TMP/hub/pki/ca.crt"
    FLEET_FINGERPRINT="$(grep -o 'sha256:[0-9a-f]\{64\}' "$FLEET_TMP/hub.out" | head -n 1)"
    export DROVER_CA="$FLEET_CA" DROVER_TOKEN
    DROVER_TOKEN="$(cat "$FLEET_TMP/hub/admin.token")" || return 1
    FLEET_CURL=(curl -sS --cacert "$FLEET_CA" -H "Authorization: Bearer $DROVER_TOKEN")
  fi
}

# fleet_hub_stop [SIGNAL]: stops the hub (SIGTERM, then SIGKILL after 10 s; KILL: a crash);
# its Mosquitto dies with it.
fleet_hub_stop() {
  local pid="$FLEET_HUB_PID" sig="${1:-TERM}" bpid i
  [ -n "$pid" ] || return 0
  bpid="$(fleet_broker_pid)"
  kill -s "$sig" "$pid" 2>/dev/null
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  # The broker must not outlive its hub (it would keep the port).
  if [ -n "$bpid" ]; then
    for i in $(seq 1 50); do
      kill -0 "$bpid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$bpid" 2>/dev/null
  fi
  FLEET_HUB_PID=""
}

fleet_hub_restart() {
  fleet_hub_stop "${1:-TERM}"
  fleet_hub_start
}

# The hub's Mosquitto child.
fleet_broker_pid() {
  local p
  [ -n "$FLEET_HUB_PID" ] || return 1
  for p in $(cat /proc/"$FLEET_HUB_PID"/task/*/children 2>/dev/null); do
    if grep -q mosquitto /proc/"$p"/comm 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

fleet_broker_kill() {
  local p
  p="$(fleet_broker_pid)" || { echo "fleet: no broker child" >&2; return 1; }
  kill -9 "$p"
}

fleet_use() {
  local name="$1"
  [ -n "${FLEET_DEV_DIR[$name]:-}" ] || { echo "fleet: no device $name" >&2; return 1; }
  DEV_DIR="${FLEET_DEV_DIR[$name]}"
  DEV_CFG="$DEV_DIR/agent.yaml"
  DEV_MANIFESTS="$DEV_DIR/manifests"
  DEV_LOG="$DEV_DIR/agent.log"
  DEV_UNSHARE_PID="${FLEET_DEV_PID[$name]}"
}

# fleet_device_start NAME K [EXTRA-CONFIG-LINES]: device number K (1..200).
fleet_device_start() {
  local name="$1" k="$2" extra="${3:-${FLEET_DEVICE_EXTRA:-}}"
  local dir hub=""
  if [ -z "${FLEET_STANDALONE:-}" ]; then # FLEET_STANDALONE=1: agents without a hub (fixture checks)
    hub="hub:
  broker: tcp://${FLEET_BROKER_HOST:-127.0.0.$((10 + k))}:$FLEET_BROKER_PORT
  heartbeatSeconds: ${FLEET_HEARTBEAT:-2}
  keepaliveSeconds: ${FLEET_KEEPALIVE:-10}
labels: {fleet: test, device: \"d$k\"}"
    if [ -n "${FLEET_SECURE:-}" ]; then
      # A bootstrap token of its own, its labels given to the Node at enrollment.
      # FLEET_TOKEN_FILE: a token made beforehand (to start a device while the hub is down).
      local tok="${FLEET_TOKEN_FILE:-$FLEET_TMP/boot-$name.token}"
      if [ -z "${FLEET_TOKEN_FILE:-}" ]; then
        install -m 600 /dev/null "$tok"
        "$FLEET_CLI" token create --uses 1 --ttl 1h --labels "fleet=test,device=d$k" \
          --description "device $name" >"$tok" 2>/dev/null || return 1
      fi
      hub="hub:
  url: $FLEET_HUB
  caFingerprint: \"$FLEET_FINGERPRINT\"
  tokenFile: $tok
  broker: ssl://${FLEET_BROKER_HOST:-127.0.0.$((10 + k))}:$FLEET_BROKER_PORT
  heartbeatSeconds: ${FLEET_HEARTBEAT:-2}
  keepaliveSeconds: ${FLEET_KEEPALIVE:-10}"
    fi
  fi
  dir="$(mktemp -d "${TMPDIR:-/tmp}/drover-dev-$name.XXXXXX")"
  # device.sh's own bookkeeping: removed and killed at exit like its devices.
  _device_dirs+=("$dir")
  if [ "${#_device_dirs[@]}" -eq 1 ]; then registry_on_exit _device_cleanup; fi
  mkdir -p "$dir/state" "$dir/run" "$dir/manifests"
  # The hub's signing key, provisioned as a flashing tool would (these devices use the plain
  # broker, unenrolled): the agent takes only desired state the hub signed.
  if [ -z "${FLEET_STANDALONE:-}" ] && [ -z "${FLEET_SECURE:-}" ]; then
    mkdir -p -m 700 "$dir/state/identity"
    cp "$FLEET_TMP/hub/pki/signing.pub" "$dir/state/identity/signing.pub" || return 1
  fi
  # FLEET_DEV_SEED_STATE=DIR: DIR's files are copied into the state directory first (a card
  # copied from another device); FLEET_DEV_NODE: its node name (default NAME).
  if [ -n "${FLEET_DEV_SEED_STATE:-}" ]; then
    cp -a "$FLEET_DEV_SEED_STATE/." "$dir/state/" || return 1
  fi
  # Devices sharing this namespace cannot each have the cluster network (one WireGuard
  # interface, one routing table): their pods stay on their own bridges.
  local net="network: {mode: off}"
  [ -z "${FLEET_DEV_NETNS[$name]:-}" ] || net=""
  # FLEET_REGISTRIES: the registries block instead (e.g. K3s-style mirrors of the registry).
  local regs="registries:
- {host: \"$REGISTRY_ADDR\", insecure: true}"
  [ -z "${FLEET_REGISTRIES:-}" ] || regs="$FLEET_REGISTRIES"
  cat >"$dir/agent.yaml" <<CFG
$net
nodeName: ${FLEET_DEV_NODE:-$name}
stateDir: $dir/state
runDir: $dir/run
manifestDir: $dir/manifests
logLevel: ${DEVICE_LOG_LEVEL:-debug}
cgroups: auto
allowNoCgroups: true
bridge: drv$k
podSubnet: 10.$((88 + k)).0.0/16
$regs
$hub
$extra
CFG
  FLEET_DEV_DIR[$name]="$dir"
  FLEET_DEV_K[$name]="$k"
  fleet_power_on "$name"
}

# (Re)starts a device whose directory exists (after fleet_power_cut: a reboot).
fleet_power_on() {
  local name="$1"
  DEV_DIR="${FLEET_DEV_DIR[$name]}"
  DEV_CFG="$DEV_DIR/agent.yaml"
  DEV_MANIFESTS="$DEV_DIR/manifests"
  DEV_LOG="$DEV_DIR/agent.log"
  echo "=== power on $(date -u +%T.%N)" >>"$DEV_LOG"
  local rc=0
  DEVICE_NETNS="${FLEET_DEV_NETNS[$name]:-}" device_start "$name" || rc=1
  FLEET_DEV_PID[$name]="$DEV_UNSHARE_PID"
  [ "$rc" -eq 0 ] || tail -20 "$DEV_LOG" >&2
  return "$rc"
}

fleet_power_cut() {
  fleet_use "$1" || return 1
  echo "=== power cut $(date -u +%T.%N)" >>"$DEV_LOG"
  device_power_cut
}

fleet_start() {
  local n="$1" k
  [ -n "$FLEET_HUB_PID" ] || fleet_hub_start || return 1
  for k in $(seq 1 "$n"); do
    fleet_device_start "dev$k" "$k" || return 1
  done
  for k in $(seq 1 "$n"); do
    fleet_wait "node dev$k Ready" 30 /api/v1/nodes/dev$k "$FLEET_JQ_READY" || return 1
  done
}

fleet_drover() { "$FLEET_CLI" --hub "$FLEET_HUB" "$@"; }
fleet_apply() { fleet_drover apply -f "$1"; }

fleet_api() { "${FLEET_CURL[@]}" --max-time 10 "$FLEET_HUB$1"; }

fleet_pods() {
  local sel="$1" ns="${2:-default}"
  fleet_api "/api/v1/namespaces/$ns/pods?labelSelector=$(jq -rn --arg s "$sel" '$s | @uri')"
}

# fleet_wait DESC SECS PATH JQ: polls every FLEET_POLL seconds (0.2; a benchmark timing the
# wait polls faster).
fleet_wait() {
  local desc="$1" secs="$2" path="$3" filter="$4"
  local deadline=$((SECONDS + secs * FLEET_TF))
  while :; do
    if fleet_api "$path" 2>/dev/null | jq -e "$filter" >/dev/null 2>&1; then
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "timeout after $((secs * FLEET_TF))s waiting for: $desc" >&2
      return 1
    fi
    sleep "${FLEET_POLL:-0.2}"
  done
}

# jq filters over API objects.
FLEET_JQ_READY='[.status.conditions[]? | select(.type == "Ready") | .status] == ["True"]'
# A pod list: $n pods, every one not being deleted, Running and Ready.
fleet_jq_running() {
  printf '[.items[] | select(.metadata.deletionTimestamp == null)] as $p | ($p | length) == %d and ($p | all(.status.phase == "Running" and ([.status.conditions[]? | select(.type == "Ready") | .status] == ["True"])))' "$1"
}
# Number of live pods that are Running and Ready.
FLEET_JQ_READY_COUNT='[.items[] | select(.metadata.deletionTimestamp == null and .status.phase == "Running" and ([.status.conditions[]? | select(.type == "Ready") | .status] == ["True"]))] | length'

fleet_pods_path() {
  echo "/api/v1/namespaces/${2:-default}/pods?labelSelector=$(jq -rn --arg s "$1" '$s | @uri')"
}

# fleet_running SELECTOR N [SECS]: waits for exactly N Running+Ready pods.
fleet_running() {
  fleet_wait "$2 pods $1 Running" "${3:-60}" "$(fleet_pods_path "$1")" "$(fleet_jq_running "$2")"
}

fleet_node_ready() {
  fleet_api "/api/v1/nodes/$1" | jq -e "$FLEET_JQ_READY" >/dev/null
}

fleet_node_not_ready() {
  fleet_api "/api/v1/nodes/$1" | jq -e "($FLEET_JQ_READY) | not" >/dev/null
}

# Pod names the device runs (from its own status), sorted, one a line.
fleet_device_pods() {
  fleet_use "$1" || return 1
  device_status 2>/dev/null | jq -r '.pods[]? | .metadata.name' | sort
}

_fleet_rule() {
  local k="${FLEET_DEV_K[$1]}"
  # Both directions: the agent's packets to its broker address, and the broker's answers.
  echo "INPUT -d 127.0.0.$((10 + k)) -p tcp --dport $FLEET_BROKER_PORT -j DROP"
  echo "INPUT -s 127.0.0.$((10 + k)) -p tcp --sport $FLEET_BROKER_PORT -j DROP"
}

fleet_partition() {
  local r
  while read -r r; do
    # shellcheck disable=SC2086
    iptables -I $r || return 1
  done < <(_fleet_rule "$1")
  echo "=== partitioned $(date -u +%T.%N)" >>"${FLEET_DEV_DIR[$1]}/agent.log"
}

# The connection is reset with ss -K (SOCK_DESTROY: the agent's socket aborted, an RST sent
# to the broker), new connections from the device held back while that happens (its
# reconnect may come within milliseconds), then its packets dropped until fleet_heal.
fleet_link_cut() {
  local name="$1" mode="${2:-drop}" k="${FLEET_DEV_K[$1]}" syn
  [ -n "$k" ] || { echo "fleet: no device $name" >&2; return 1; }
  if [ "$mode" = reset ]; then
    syn="INPUT -d 127.0.0.$((10 + k)) -p tcp --dport $FLEET_BROKER_PORT --syn -j DROP"
    # shellcheck disable=SC2086
    iptables -I $syn || return 1
    ss -K dst "127.0.0.$((10 + k))" dport = "$FLEET_BROKER_PORT" >/dev/null || return 1
    fleet_partition "$name" || return 1
    # shellcheck disable=SC2086
    iptables -D $syn
    echo "=== (the partition above began with a reset connection)" >>"${FLEET_DEV_DIR[$name]}/agent.log"
  else
    fleet_partition "$name"
  fi
}

fleet_heal() {
  local r
  while read -r r; do
    # shellcheck disable=SC2086
    iptables -D $r 2>/dev/null
  done < <(_fleet_rule "$1")
  echo "=== healed $(date -u +%T.%N)" >>"${FLEET_DEV_DIR[$1]}/agent.log"
}

# Logs for a failing test: the hub's, then each device's (tails).
fleet_dump() {
  local lines="${1:-60}" name
  echo "--- hub stderr (last $lines lines)" >&2
  tail -n "$lines" "$FLEET_TMP/hub.err" >&2
  for name in "${!FLEET_DEV_DIR[@]}"; do
    echo "--- device $name (last $lines lines)" >&2
    tail -n "$lines" "${FLEET_DEV_DIR[$name]}/agent.log" >&2
  done
  echo "--- pods" >&2
  fleet_drover get pods -A -o wide >&2 2>&1
  echo "--- nodes" >&2
  fleet_drover get nodes -o wide >&2 2>&1
}

# fleet_finish: the summary line and exit status; logs when something failed.
fleet_finish() {
  echo "$FLEET_CHECKS checks, $FLEET_FAILS failed"
  [ "$FLEET_FAILS" -eq 0 ] || fleet_dump "${FLEET_DUMP_LINES:-80}"
  [ "$FLEET_FAILS" -eq 0 ]
}

# fleet_devices_running PREFIX: how many Running pods named PREFIX* all devices run (what the
# agents themselves say, not the hub).
fleet_devices_running() {
  local prefix="$1" name n total=0
  for name in "${!FLEET_DEV_DIR[@]}"; do
    fleet_use "$name"
    kill -0 "$DEV_UNSHARE_PID" 2>/dev/null || continue
    n="$(device_status 2>/dev/null | jq --arg p "$prefix" '[.pods[]? | select((.metadata.name | startswith($p)) and .status.phase == "Running")] | length')"
    total=$((total + ${n:-0}))
  done
  echo "$total"
}

# fleet_wait_devices PREFIX N SECS: until the devices run exactly N such pods.
fleet_wait_devices() {
  local prefix="$1" want="$2" secs="${3:-60}"
  local deadline=$((SECONDS + secs * FLEET_TF)) got
  while :; do
    got="$(fleet_devices_running "$prefix")"
    [ "$got" -eq "$want" ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "timeout after $((secs * FLEET_TF))s: devices run $got pods $prefix*, want $want" >&2
      return 1
    fi
    sleep 0.3
  done
}

# fleet_logs POD [NS]: the pod's log through `drover logs`, or the API's log route when this
# CLI has no logs command.
fleet_logs() {
  if "$FLEET_CLI" --help 2>&1 | grep -q '^ *logs'; then
    fleet_drover logs "$1" ${2:+-n "$2"}
  else
    "${FLEET_CURL[@]}" --max-time 20 -f "$FLEET_HUB/api/v1/namespaces/${2:-default}/pods/$1/log"
  fi
}

# fleet_elapsed T0_MS: seconds since T0 (from fleet_ms), as N.N.
fleet_elapsed() {
  local ms=$(($(fleet_ms) - $1))
  printf '%d.%d' $((ms / 1000)) $(((ms % 1000) / 100))
}

# fleet_exec NODE POD CONTAINER CMD...: runs CMD inside the container, on its device (crun exec
# in the device's mount namespace; the agent's crun state is under its runDir).
fleet_exec() {
  local node="$1" pod="$2" ctr="$3" uid
  shift 3
  uid="$(fleet_api "/api/v1/namespaces/default/pods/$pod" | jq -r .metadata.uid)"
  fleet_use "$node" || return 1
  device_exec crun --root "$DEV_DIR/run/crun" --cgroup-manager=disabled exec "$uid-$ctr" "$@"
}

# Not in a subshell: what it learns must stay.
fleet_pod_uids() {
  local p
  for p in "$@"; do
    FLEET_POD_UID[$p]="$(fleet_api "/api/v1/namespaces/default/pods/$p" | jq -r .metadata.uid)"
  done
}

fleet_pexec() {
  local node="$1" pod="$2"
  shift 2
  fleet_use "$node" || return 1
  timeout "${FLEET_EXEC_TIMEOUT:-5}" nsenter -t "$(_device_init_pid)" -m -p -n -- \
    crun --root "$DEV_DIR/run/crun" --cgroup-manager=disabled exec "${FLEET_POD_UID[$pod]}-c" "$@"
}

# ---- devices in network namespaces of their own ----

fleet_wan_setup() {
  ip link add wan0 type bridge || return 1
  ip addr add 192.168.77.1/24 dev wan0 || return 1
  ip link set wan0 up || return 1
  export REGISTRY_HOST=192.168.77.1 FLEET_HUB_HOST=192.168.77.1 FLEET_BROKER_HOST=192.168.77.1
  FLEET_NETNS_PREFIX="${DROVER_TEST_NETNS:-drvt-$$}"
  registry_on_exit _fleet_netns_cleanup
}

_fleet_netns_list=()
_fleet_netns_cleanup() {
  local ns
  for ns in "${_fleet_netns_list[@]}"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
}

# _fleet_netns_new NAME: a namespace with lo up, remembered for cleanup; sets FLEET_NEW_NS
# (not printed: a command substitution's subshell would lose the cleanup list).
_fleet_netns_new() {
  FLEET_NEW_NS="$FLEET_NETNS_PREFIX-$1"
  ip netns add "$FLEET_NEW_NS" || return 1
  _fleet_netns_list+=("$FLEET_NEW_NS")
  ip -n "$FLEET_NEW_NS" link set lo up
}

# _fleet_veth NS IFNAME_HERE ADDR/PREFIX GATEWAY [BRIDGE]: a veth from here (on BRIDGE,
# default wan0) to eth0 in NS.
_fleet_veth() {
  local ns="$1" here="$2" addr="$3" gw="$4" br="${5:-wan0}"
  ip link add "$here" type veth peer name eth0 netns "$ns" || return 1
  ip link set "$here" master "$br" up || return 1
  ip -n "$ns" addr add "$addr" dev eth0 || return 1
  ip -n "$ns" link set eth0 up || return 1
  [ -z "$gw" ] || ip -n "$ns" route add default via "$gw" || return 1
}

fleet_netns_device() {
  local name="$1" k="$2" ns
  _fleet_netns_new "$name" || return 1
  ns="$FLEET_NEW_NS"
  _fleet_veth "$ns" "w-$name" "192.168.77.$((10 + k))/24" 192.168.77.1 || return 1
  FLEET_DEV_NETNS[$name]="$ns"
}

# The router: wan side 192.168.77.9, lan side a bridge 192.168.88.1/24 in its namespace;
# masquerades the lan, and lets nothing from the wan in but answers.
_fleet_nat_router() {
  [ -z "${FLEET_NAT_NS:-}" ] || return 0
  local ns
  _fleet_netns_new nat || return 1
  ns="$FLEET_NEW_NS"
  _fleet_veth "$ns" w-nat 192.168.77.9/24 192.168.77.1 || return 1
  ip -n "$ns" link add lan0 type bridge || return 1
  ip -n "$ns" addr add 192.168.88.1/24 dev lan0 || return 1
  ip -n "$ns" link set lan0 up || return 1
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 || return 1
  ip netns exec "$ns" nft -f - <<'NFT' || return 1
table ip nat {
  chain postrouting_nat { type nat hook postrouting priority srcnat; oifname "eth0" masquerade; }
}
table inet filter {
  chain forward_filter {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "lan0" accept
  }
  chain input_filter {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iifname { "lo", "lan0" } accept
    icmp type echo-request accept
  }
}
NFT
  FLEET_NAT_NS="$ns"
}

fleet_netns_device_nat() {
  local name="$1" k="$2" ns
  _fleet_nat_router || return 1
  _fleet_netns_new "$name" || return 1
  ns="$FLEET_NEW_NS"
  ip link add "l-$name" type veth peer name eth0 netns "$ns" || return 1
  ip link set "l-$name" netns "$FLEET_NAT_NS" || return 1
  ip -n "$FLEET_NAT_NS" link set "l-$name" master lan0 up || return 1
  ip -n "$ns" addr add "192.168.88.$((10 + k))/24" dev eth0 || return 1
  ip -n "$ns" link set eth0 up || return 1
  ip -n "$ns" route add default via 192.168.88.1 || return 1
  FLEET_DEV_NETNS[$name]="$ns"
}
