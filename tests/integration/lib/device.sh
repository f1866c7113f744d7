# shellcheck shell=bash
# Test fixture, sourced by integration tests: a "device" running drover-agent on this machine.
#
#   netns_enter "$0" "$@"        # first line of a test: re-runs the test inside a fresh network
#                                # namespace (loopback + host0 10.255.0.1/24), deleted at exit,
#                                # so pod bridges, CNI and iptables never touch the host's network
#   device_start NAME [extra agent.yaml lines]   # a device: its own mount and PID namespaces,
#                                # cgroup2 mounted, /run a fresh tmpfs; an init loop restarts
#                                # the agent like systemd would. Sets DEV_DIR DEV_CFG DEV_MANIFESTS
#                                # DEV_UNSHARE_PID DEV_LOG
#   (DEVICE_STATE_TMPFS=SIZE device_start: the state directory on a tmpfs of that size;
#    DEVICE_STATE_EXT4=SIZE device_start: on an ext4 file system of that size on a loop device,
#    like a device's SD card partition; its device is in $DEV_DIR/state.loop, for disk stats;
#    DEVICE_NETNS=NAME device_start: the device in that network namespace, `ip netns add`ed)
#   device_agent_pid             # the agent's pid (host view)
#   device_exec CMD...           # run CMD in the device's mount namespace (to read /run)
#   device_status                # drover-agent status, JSON
#   device_power_cut             # kill the device: agent, containers, mounts, /run gone
#   wait_for DESC SECONDS CMD... # poll CMD every 0.2 s until it succeeds
#   pod_field POD JQ             # jq over the pod's status entry
#
# Needs root, crun, unshare, nsenter, ip, jq.

DROVER_AGENT_BIN="${DROVER_BUILD_DIR:?}/agent/drover-agent"

netns_enter() {
  if [ -n "${DROVER_TEST_NETNS:-}" ]; then
    ip link set lo up
    # The node's own address, for hostPort tests: on a dummy device, or (no dummy module) on
    # one end of a veth pair whose both ends stay in this namespace.
    if ! ip link add host0 type dummy 2>/dev/null; then
      ip link add host0 type veth peer name host0p || return 1
      ip link set host0p up
    fi
    ip addr add 10.255.0.1/24 dev host0 || return 1
    ip link set host0 up
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: needs root" >&2
    exit 77
  fi
  local t
  for t in crun unshare nsenter ip jq iptables; do
    command -v "$t" >/dev/null || { echo "SKIP: $t missing" >&2; exit 77; }
  done
  local ns="drvt-$$"
  ip netns add "$ns" || exit 1
  local rc=0
  DROVER_TEST_NETNS="$ns" ip netns exec "$ns" bash "$@" || rc=$?
  # Anything left in the namespace dies with it.
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns del "$ns"
  exit "$rc"
}

_device_dirs=()
_device_cleanup() {
  local d
  for d in "${_device_dirs[@]}"; do
    [ -f "$d/unshare.pid" ] && kill -9 "$(cat "$d/unshare.pid")" 2>/dev/null
  done
  sleep 0.3
  for d in "${_device_dirs[@]}"; do
    [ -f "$d/state.loop" ] && losetup -d "$(cat "$d/state.loop")" 2>/dev/null
    [ -n "${KEEP_DEVICE:-}" ] || rm -rf "$d"
  done
}

# device_start NAME [EXTRA-CONFIG-LINES]; reuses DEV_DIR if set (after a power cut).
device_start() {
  local name="$1" extra="${2:-}"
  if [ -z "${DEV_DIR:-}" ]; then
    DEV_DIR="$(mktemp -d "${TMPDIR:-/tmp}/drover-dev-$name.XXXXXX")"
    _device_dirs+=("$DEV_DIR")
    if declare -F registry_on_exit >/dev/null; then
      registry_on_exit _device_cleanup
    else
      trap _device_cleanup EXIT
    fi
    mkdir -p "$DEV_DIR/state" "$DEV_DIR/run" "$DEV_DIR/manifests"
    # DEVICE_SIGNING_PUB=FILE: the hub's signing key, provisioned as a flashing tool would.
    if [ -n "${DEVICE_SIGNING_PUB:-}" ]; then
      mkdir -p -m 700 "$DEV_DIR/state/identity"
      cp "$DEVICE_SIGNING_PUB" "$DEV_DIR/state/identity/signing.pub"
    fi
    DEV_CFG="$DEV_DIR/agent.yaml"
    DEV_MANIFESTS="$DEV_DIR/manifests"
    DEV_LOG="$DEV_DIR/agent.log"
    cat >"$DEV_CFG" <<CFG
nodeName: $name
stateDir: $DEV_DIR/state
runDir: $DEV_DIR/run
manifestDir: $DEV_DIR/manifests
logLevel: ${DEVICE_LOG_LEVEL:-debug}
cgroups: auto
allowNoCgroups: true
podSubnet: 10.88.0.0/16
registries:
- {host: "${REGISTRY_ADDR:-127.0.0.1:5000}", insecure: true}
$extra
CFG
  fi
  rm -f "$DEV_DIR/stop"
  # The device's init: fresh /run (tmpfs) and cgroup2, then the agent, restarted on exit.
  local in_netns=()
  [ -z "${DEVICE_NETNS:-}" ] || in_netns=(ip netns exec "$DEVICE_NETNS")
  "${in_netns[@]}" unshare --mount --pid --fork --mount-proc --kill-child=SIGKILL --propagation private -- bash -c '
    mount -t tmpfs -o mode=755 tmpfs "$1/run" || exit 1
    # DEVICE_STATE_TMPFS=SIZE: a small disk, to see what a full one does.
    if [ -n "${DEVICE_STATE_TMPFS:-}" ]; then mount -t tmpfs -o "size=$DEVICE_STATE_TMPFS" tmpfs "$1/state" || exit 1; fi
    if [ -n "${DEVICE_STATE_EXT4:-}" ] && ! mountpoint -q "$1/state"; then
      [ -e "$1/state.img" ] || { truncate -s "$DEVICE_STATE_EXT4" "$1/state.img" && mkfs.ext4 -q -F "$1/state.img"; } || exit 1
      # After a power cut the image may still be attached: the same disk comes back.
      loop="$(losetup -j "$1/state.img" | cut -d: -f1 | head -n 1)"
      [ -n "$loop" ] || loop="$(losetup -f --show "$1/state.img")" || exit 1
      echo "$loop" >"$1/state.loop"
      mount "$loop" "$1/state" || exit 1
    fi
    mount -t cgroup2 none /sys/fs/cgroup || exit 1
    # wireguard-go keeps its control socket in /run/wireguard: one per device, as on a real one.
    mkdir -p /run/wireguard && mount -t tmpfs -o mode=700 tmpfs /run/wireguard || exit 1
    while [ ! -e "$1/stop" ]; do
      "$2" run --config "$3" &
      echo $! >"$1/agent.pid.inner"
      wait $!
      sleep 0.2
    done' device-init "$DEV_DIR" "$DROVER_AGENT_BIN" "$DEV_CFG" >>"$DEV_LOG" 2>&1 &
  DEV_UNSHARE_PID=$!
  disown "$DEV_UNSHARE_PID" # its death at cleanup is expected, not news
  echo "$DEV_UNSHARE_PID" >"$DEV_DIR/unshare.pid"
  wait_for "agent status" 10 device_status_ok
}

# The device's init process (child of unshare), host pid.
_device_init_pid() {
  pgrep -P "$DEV_UNSHARE_PID" | head -n 1
}

device_exec() {
  nsenter -t "$(_device_init_pid)" -m -p -n -- "$@"
}

device_agent_pid() {
  # The init loop's child that runs drover-agent, as the host sees it.
  pgrep -P "$(_device_init_pid)" -f "drover-agent run" | head -n 1
}

device_status() {
  device_exec "$DROVER_AGENT_BIN" status --config "$DEV_CFG"
}

device_status_ok() {
  device_status >/dev/null 2>&1
}

device_power_cut() {
  kill -9 "$DEV_UNSHARE_PID" 2>/dev/null
  local i
  for i in $(seq 1 50); do
    kill -0 "$DEV_UNSHARE_PID" 2>/dev/null || break
    sleep 0.1
  done
  for i in $(seq 1 50); do
    pgrep -f "drover-agent run --config $DEV_CFG" >/dev/null || break
    sleep 0.1
  done
}

wait_for() {
  local desc="$1" secs="$2"; shift 2
  local deadline=$((SECONDS + secs))
  while ! "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "timeout after ${secs}s waiting for: $desc" >&2
      return 1
    fi
    sleep 0.2
  done
}

pod_field() {
  device_status | jq -r --arg p "$1" ".pods[] | select(.metadata.name == \$p) | $2"
}
