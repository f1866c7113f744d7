#!/usr/bin/env bash
# The Debian packages, installed on this machine: cpack makes drover-hub, drover-agent and
# drover-cli from $DROVER_BUILD_DIR (cmake/DroverPackaging.cmake); dpkg-deb shows their paths,
# conffiles, units and dependencies (every library a binary needs comes from a package it
# depends on); systemd-analyze verifies the units; `apt-get install ./*.deb` installs them. Then
# what the units run is run by hand, as systemd would (no systemd as PID 1 here): the hub from its
# ExecStart= and /etc/drover/hub.env; a bootstrap token from the installed CLI; the hub URL, CA
# fingerprint and token written into the installed /etc/drover/agent.yaml; the agent from its
# ExecStart=, in a private mount and PID namespace (cgroup2 mounted, /run/drover a tmpfs). The
# node must be Ready at the hub and a pod run. The unit's way down, by hand: SIGTERM to the agent
# alone (KillMode=process), then its ExecStopPost= as for a "restart" job (the pod keeps running
# and the next agent adopts it) and as for a "stop" job (the pod is stopped). The packages are
# purged, even on failure, and the machine must be as it was (nothing under /etc/drover,
# /var/lib/drover, /usr/lib/drover, no unit links).
# Then the same packages under systemd 252 for real: systemd as PID 1 of new namespaces over an
# overlay of / (nothing reaches the host), where apt-get installs them, the maintainer scripts
# start the units, and systemctl restart, a kill -9, an upgrade, stop, start and purge must do
# to the pod what the agent's unit says.
# Everything runs in a network namespace of its own (hub on 8443/8883 as packaged).
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
: "${DROVER_BUILD_DIR:?}"
tf=${DROVER_TEST_TIME_FACTOR:-1}
pkgs=(drover-hub drover-agent drover-cli)

missing() {
  echo "SKIP: $*" >&2
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
}

if [ -z "${DROVER_TEST_NETNS:-}" ]; then
  [ "$(id -u)" -eq 0 ] || missing "needs root (it installs packages)"
  for t in cpack dpkg-deb apt-get systemd-analyze crun unshare nsenter ip jq iptables curl \
    openssl file readelf; do
    command -v "$t" >/dev/null || missing "$t missing"
  done
  for f in agent/drover-agent hub/drover-hub cli/drover CPackConfig.cmake; do
    [ -e "$DROVER_BUILD_DIR/$f" ] || { echo "no $DROVER_BUILD_DIR/$f" >&2; exit 1; }
  done
  # Installed packages or their directories belong to somebody: never overwrite, never purge.
  for p in "${pkgs[@]}"; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -qv 'not-installed'; then
      missing "package $p is on this machine already (purge it to run this test)"
    fi
  done
  for d in /etc/drover /var/lib/drover /usr/lib/drover /run/drover; do
    [ ! -e "$d" ] || missing "$d exists already (this test installs the packages there)"
  done
fi

# shellcheck source=lib/registry.sh
source "$here/lib/registry.sh"
# shellcheck source=lib/device.sh
source "$here/lib/device.sh"
registry_require_tools || missing "registry tools"
netns_enter "$0" "$@" || exit 1

tmp="$(mktemp -d "${TMPDIR:-/tmp}/drover-packages.XXXXXX")"
fails=0
n=0
check() { # name, command...
  local name=$1
  shift
  n=$((n + 1))
  if "$@"; then echo "ok $n - $name"; else echo "not ok $n - $name"; fails=$((fails + 1)); fi
}
# fatal MESSAGE: a step the rest depends on failed.
fatal() {
  echo "not ok - $*"
  fails=$((fails + 1))
  exit 1
}

hubpid="" devpid="" sdpid=""
# kill9 PID: SIGKILL to a namespace's unshare (its init and all in it die), waits until gone.
kill9() {
  kill -9 "$1" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
}
cleanup() {
  local rc=$?
  [ -z "$devpid" ] || kill9 "$devpid"
  [ -z "$sdpid" ] || kill9 "$sdpid"
  if [ -n "$hubpid" ]; then
    # Its Mosquitto dies with it (parent-death signal); killed too should the hub hang.
    local broker
    broker="$(cat /proc/"$hubpid"/task/*/children 2>/dev/null)"
    kill "$hubpid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$hubpid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$hubpid" $broker 2>/dev/null
    wait "$hubpid" 2>/dev/null
  fi
  if [ "$fails" -ne 0 ] || [ "$rc" -ne 0 ]; then
    for f in hub.err agent.log stop.log purge.log sd-install.log sd-purge.log; do
      [ -s "$tmp/$f" ] && { echo "---- $f (last 40 lines)"; tail -n 40 "$tmp/$f"; }
    done
  fi
  purge
  [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
installed=0
purge() {
  [ "$installed" -eq 1 ] || return 0
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -q -o DPkg::Lock::Timeout=600 "${pkgs[@]}" \
    >"$tmp/purge.log" 2>&1 || { echo "apt-get purge failed:"; cat "$tmp/purge.log"; }
  installed=0
}
registry_on_exit cleanup

# ---- the packages ----
out="$tmp/debs"
cpack --config "$DROVER_BUILD_DIR/CPackConfig.cmake" -B "$out" >"$tmp/cpack.log" 2>&1 ||
  { cat "$tmp/cpack.log"; fatal "cpack"; }
arch="$(dpkg --print-architecture)"
declare -A deb
for p in "${pkgs[@]}"; do
  deb[$p]="$(find "$out" -maxdepth 1 -name "${p}_*_$arch.deb" | head -n 1)"
  [ -n "${deb[$p]}" ] || fatal "cpack made no $p package for $arch: $(ls "$out")"
done
field() { dpkg-deb -f "${deb[$1]}" "$2"; }
has_file() { dpkg-deb -c "${deb[$1]}" | awk '{ print $6 }' | grep -qx "\.$2"; }
# depends PKG NAME: NAME (a package) is in PKG's Depends.
depends() { field "$1" Depends | tr ',' '\n' | sed 's/^ *//; s/ .*//' | grep -qx "$2"; }

for p in "${pkgs[@]}"; do
  check "$p: Architecture $arch" test "$(field "$p" Architecture)" = "$arch"
  check "$p: named $p" test "$(field "$p" Package)" = "$p"
done
check "drover-agent holds /usr/bin/drover-agent" has_file drover-agent /usr/bin/drover-agent
check "drover-agent holds its unit" has_file drover-agent /lib/systemd/system/drover-agent.service
check "drover-agent loads br_netfilter and wireguard at boot" \
  has_file drover-agent /usr/lib/modules-load.d/drover-agent.conf
check "drover-agent depends on nftables" depends drover-agent nftables
check "drover-agent depends on wireguard-tools" depends drover-agent wireguard-tools
check "drover-agent holds the unit's stop helper" has_file drover-agent /usr/lib/drover/agent-stop-post
check "drover-agent holds /etc/drover/agent.yaml" has_file drover-agent /etc/drover/agent.yaml
check "drover-hub holds /usr/bin/drover-hub" has_file drover-hub /usr/bin/drover-hub
check "drover-hub holds the broker plugin in /usr/lib/drover" has_file drover-hub /usr/lib/drover/drover-auth.so
check "drover-hub holds its unit" has_file drover-hub /lib/systemd/system/drover-hub.service
check "drover-hub holds /etc/drover/hub.env" has_file drover-hub /etc/drover/hub.env
check "drover-cli holds /usr/bin/drover" has_file drover-cli /usr/bin/drover
check "nothing under /usr/local" bash -c "! for d in ${deb[*]}; do dpkg-deb -c \$d; done | grep -q '/usr/local'"
conffiles() { dpkg-deb --ctrl-tarfile "${deb[$1]}" | tar -xOf - ./conffiles 2>/dev/null; }
check "agent.yaml is a conffile" test "$(conffiles drover-agent)" = /etc/drover/agent.yaml
check "hub.env is a conffile" test "$(conffiles drover-hub)" = /etc/drover/hub.env
for p in drover-agent drover-hub; do
  for s in postinst prerm postrm; do
    check "$p has a $s" bash -c "dpkg-deb --ctrl-tarfile '${deb[$p]}' | tar -tf - | grep -qx './$s'"
  done
done
for d in crun containernetworking-plugins iptables golang-github-containers-common libcurl4 \
  libpaho-mqtt1.3; do
  check "drover-agent depends on $d (run or dlopen'd)" depends drover-agent "$d"
done
check "drover-hub depends on mosquitto" depends drover-hub mosquitto
# Every NEEDED library of every ELF file comes from a package in the Depends.
x="$tmp/x"
for p in "${pkgs[@]}"; do
  mkdir -p "$x/$p"
  dpkg-deb -x "${deb[$p]}" "$x/$p"
  while IFS= read -r f; do
    check "$p: $(basename "$f") is stripped" bash -c "file '$f' | grep -q ', stripped'"
    for so in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      [ "$so" != "ld-linux-x86-64.so.2" ] || so=libc.so.6 # the loader comes with libc6
      lib="$(ldconfig -p | awk -v s="$so" '$1 == s && /x86-64/ { print $NF; exit }')"
      owner="$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n 1 | cut -d: -f1)"
      [ -n "$owner" ] || owner="$(dpkg -S "$lib" 2>/dev/null | head -n 1 | cut -d: -f1)"
      check "$p: $so ($owner) is depended on" depends "$p" "$owner"
    done
  done < <(find "$x/$p" -type f -exec sh -c 'file "$1" | grep -q ELF' _ {} \; -print)
done
unit_agent="$x/drover-agent/lib/systemd/system/drover-agent.service"
unit_hub="$x/drover-hub/lib/systemd/system/drover-hub.service"
check "the agent unit: KillMode=process" grep -qx 'KillMode=process' "$unit_agent"
check "the agent unit: Delegate=yes" grep -qx 'Delegate=yes' "$unit_agent"
check "the agent unit: Restart=always" grep -qx 'Restart=always' "$unit_agent"
check "the agent unit: no private mounts (ProtectSystem=, PrivateTmp=, ...)" \
  bash -c "! grep -Eq '^(ProtectSystem|PrivateTmp|ProtectHome|PrivateDevices|ProtectKernel[A-Za-z]*|ProtectControlGroups|ReadOnlyPaths|ReadWritePaths|InaccessiblePaths|NoNewPrivileges)=' '$unit_agent'"
check "the hub unit: StateDirectory=drover/hub" grep -qx 'StateDirectory=drover/hub' "$unit_hub"
check "the hub unit: its data in /var/lib/drover/hub" grep -q -- '--data /var/lib/drover/hub' "$unit_hub"

# ---- apt-get install ----
installed=1
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  -o DPkg::Lock::Timeout=600 "${deb[drover-hub]}" "${deb[drover-agent]}" "${deb[drover-cli]}" \
  >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fatal "apt-get install"; }
for p in "${pkgs[@]}"; do
  check "$p is installed" bash -c "dpkg-query -W -f='\${Status}' $p | grep -qx 'install ok installed'"
done
check "apt installed nothing else (every dependency was there)" \
  test "$(grep -c '^Setting up' "$tmp/install.log")" = 3
check "postinst made /var/lib/drover/hub, mode 700" test "$(stat -c %a /var/lib/drover/hub 2>&1)" = 700
check "/var/lib/drover is traversable (Mosquitto reaches the hub's directory)" \
  test "$(($(stat -c 0%a /var/lib/drover) & 1))" = 1
check "postinst made /etc/drover/manifests" test -d /etc/drover/manifests
for u in drover-agent drover-hub; do
  check "$u.service is enabled (deb-systemd-helper)" \
    test -L "/etc/systemd/system/multi-user.target.wants/$u.service"
done
verify="$(systemd-analyze verify /lib/systemd/system/drover-agent.service \
  /lib/systemd/system/drover-hub.service 2>&1)"
check "systemd-analyze verify: the units are clean ($verify)" test -z "$verify"
check "drover-agent --help names stop-pods" bash -c "/usr/bin/drover-agent --help | grep -q stop-pods"

# ExecStart= of a unit file, as a word list, with %H and $VARs of its EnvironmentFile= set.
exec_start() {
  local line
  line="$(sed -n 's/^ExecStart=//p' "$1")"
  line="${line//%H/$(hostname)}"
  (
    set -a
    # shellcheck disable=SC1090
    [ -z "${2:-}" ] || . "$2"
    eval "printf '%s\n' $line"
  )
}

# ---- the hub, as drover-hub.service runs it ----
mapfile -t hubcmd < <(exec_start /lib/systemd/system/drover-hub.service /etc/drover/hub.env)
check "the hub unit runs /usr/bin/drover-hub" test "${hubcmd[0]}" = /usr/bin/drover-hub
echo "# ${hubcmd[*]}"
: >"$tmp/hub.out"
(cd / && umask 022 && exec "${hubcmd[@]}") >"$tmp/hub.out" 2>"$tmp/hub.err" &
hubpid=$!
url="" broker=""
for _ in $(seq 1 $((300 * tf))); do
  url=$(sed -n 's/^drover-hub: serving \(https:[^ ]*\)$/\1/p' "$tmp/hub.out")
  broker=$(sed -n 's/^drover-hub: broker \(ssl:[^ ]*\)$/\1/p' "$tmp/hub.out")
  [ -n "$url" ] && [ -n "$broker" ] && break
  kill -0 "$hubpid" 2>/dev/null || break
  sleep 0.05
done
if [ -z "$url" ] || [ -z "$broker" ]; then
  cat "$tmp/hub.out" "$tmp/hub.err"
  fatal "the hub did not start"
fi
check "the hub serves HTTPS on 8443 ($url)" test "${url##*:}" = 8443
check "its broker is TLS on 8883 ($broker)" test "${broker##*:}" = 8883
check "the broker runs as user mosquitto" bash -c \
  "ps -o user= -p \$(pgrep -f 'mosquitto -c /var/lib/drover/hub' | head -n 1) | grep -qx mosquitto"
fp=$(sed -n 's/^drover-hub: CA fingerprint \(sha256:[0-9a-f]*\)$/\1/p' "$tmp/hub.out")
check "the hub prints its CA fingerprint" test -n "$fp"
ca=/var/lib/drover/hub/pki/ca.crt
export HOME="$tmp/home" XDG_CONFIG_HOME="" DROVER_HUB="https://127.0.0.1:8443" DROVER_CA="$ca"
mkdir -p "$HOME"
DROVER_TOKEN="$(cat /var/lib/drover/hub/admin.token)" || fatal "no admin token"
export DROVER_TOKEN
api() { curl -sS -m 10 --cacert "$ca" -H "Authorization: Bearer $DROVER_TOKEN" "$DROVER_HUB$1"; }

# ---- a bootstrap token from the installed CLI, the agent's config ----
install -m 600 /dev/null /etc/drover/token
/usr/bin/drover token create --uses 1 --ttl 1h --labels site=packages >/etc/drover/token \
  2>"$tmp/token.err" || { cat "$tmp/token.err"; fatal "drover token create"; }
check "drover token create: a bootstrap token" grep -Eq '^drv1_' /etc/drover/token
registry_start >/dev/null || fatal "registry"
layout="$(image_build_busybox pkg 1)" || fatal "image"
image_push "$layout" 1 test/pkg:1 >/dev/null || fatal "push"
cfg=/etc/drover/agent.yaml
# The commented settings of the packaged file, filled in; what this host needs, appended.
sed -i -e 's|^#hub:|hub:|' \
  -e 's|^  #url: .*|  url: https://127.0.0.1:8443|' \
  -e "s|^  #caFingerprint: .*|  caFingerprint: \"$fp\"|" \
  -e 's|^  #tokenFile: .*|  tokenFile: /etc/drover/token|' \
  -e 's|^  #broker: .*|  broker: ssl://127.0.0.1:8883|' "$cfg"
cat >>"$cfg" <<EOF
# test_packages.sh: this host's cgroups are a v1/v2 hybrid; a local registry.
nodeName: pkgtest
logLevel: debug
allowNoCgroups: true
registries:
- {host: "$REGISTRY_ADDR", insecure: true}
EOF

# ---- the agent, as drover-agent.service runs it ----
mapfile -t agentcmd < <(exec_start /lib/systemd/system/drover-agent.service)
check "the agent unit runs /usr/bin/drover-agent run" test "${agentcmd[*]:0:2}" = "/usr/bin/drover-agent run"
line="$(sed -n 's/^ExecStopPost=//p' /lib/systemd/system/drover-agent.service)"
read -r -a poststop <<<"${line//%n/drover-agent.service}"
echo "# ${agentcmd[*]}"
echo "# ExecStopPost: ${poststop[*]}"
# systemctl for agent-stop-post: "list-jobs ... UNIT" answers the job in $tmp/job (none: empty).
mkdir -p "$tmp/bin"
cat >"$tmp/bin/systemctl" <<EOF
#!/bin/sh
[ "\$1" = list-jobs ] || exit 1
job="\$(cat "$tmp/job" 2>/dev/null)"
[ -z "\$job" ] || echo "42 drover-agent.service \$job running"
EOF
chmod +x "$tmp/bin/systemctl"
# The device: its own mount and PID namespaces, cgroup2, /run/drover on tmpfs; commands run in
# it through $tmp/cmd (one at a time), the agent in the background of its init.
mkfifo "$tmp/cmd"
unshare --mount --pid --fork --mount-proc --kill-child=SIGKILL --propagation private -- bash -c '
  mount -t cgroup2 none /sys/fs/cgroup || exit 1
  mkdir -p /run/drover && mount -t tmpfs -o mode=755 tmpfs /run/drover || exit 1
  while :; do read -r line <"$1" && eval "$line"; done' device "$tmp/cmd" >>"$tmp/device.log" 2>&1 &
devpid=$!
disown "$devpid" # its death is expected, not news
# dev CMD: run the shell command CMD in the device (not waiting for it).
dev() { timeout 10 sh -c 'echo "$1" >"$2"' _ "$*" "$tmp/cmd"; }
init_pid() { pgrep -P "$devpid" | head -n 1; }
in_dev() { nsenter -t "$(init_pid)" -m -p -- "$@"; }
agent_pid() { pgrep -P "$(init_pid)" -f "drover-agent run" | head -n 1; }
start_agent() {
  dev "(cd / && exec ${agentcmd[*]}) >>$tmp/agent.log 2>&1 &"
  wait_for "the agent" $((10 * tf)) agent_pid >/dev/null
}
# The unit's way down: SIGTERM to the agent alone, then ExecStopPost= with systemd's job $1.
stop_agent() {
  local pid
  pid="$(agent_pid)"
  kill -TERM "$pid"
  for _ in $(seq 1 $((100 * tf))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  printf '%s' "$1" >"$tmp/job"
  echo "=== ExecStopPost, job '$1'" >>"$tmp/stop.log"
  in_dev env PATH="$tmp/bin:$PATH" "${poststop[@]}" >>"$tmp/stop.log" 2>&1
}
wait_for "the device" 10 init_pid >/dev/null || fatal "the device did not start"
start_agent || fatal "the agent did not start: $(tail -5 "$tmp/agent.log")"
node_ready() { api "/api/v1/nodes/$1" | jq -e '[.status.conditions[]? | select(.type == "Ready") | .status] == ["True"]' >/dev/null 2>&1; }
check "the agent enrols and its node is Ready at the hub" wait_for "node Ready" $((30 * tf)) node_ready pkgtest
site="$(api /api/v1/nodes/pkgtest | jq -r '.metadata.labels.site // empty')"
check "the node got the token's label site=packages ($site)" test "$site" = packages
check "its identity is in /var/lib/drover/identity" test -s /var/lib/drover/identity/node.crt

cat >"$tmp/pod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: pkgpod, labels: {app: pkgpod}}
spec:
  terminationGracePeriodSeconds: 5
  volumes:
  - {name: out, hostPath: {path: $tmp/pod-out, type: DirectoryOrCreate}}
  containers:
  - name: main
    image: $REGISTRY_ADDR/test/pkg:1
    command: ["sh", "-c", "trap 'echo got SIGTERM >>/out/log; exit 0' TERM; echo started >>/out/log; while :; do sleep 1; done"]
    volumeMounts:
    - {name: out, mountPath: /out}
EOF
/usr/bin/drover apply -f "$tmp/pod.yaml" >"$tmp/apply.out" 2>&1 || { cat "$tmp/apply.out"; fatal "drover apply"; }
pod_running() { api /api/v1/namespaces/default/pods/pkgpod | jq -e '.status.phase == "Running"' >/dev/null; }
check "the pod runs (the hub says Running)" wait_for "pod Running" $((60 * tf)) pod_running
crun_pids() { in_dev crun --root /run/drover/crun list 2>/dev/null | awk 'NR > 1 && $3 == "running" { print $2 }'; }
pid1="$(crun_pids)"
check "crun runs its container (pid $pid1)" test -n "$pid1"

# ---- restart: the pod keeps running, the next agent adopts it ----
stop_agent restart
check "a restart leaves the pod: ExecStopPost says so" grep -q "restart job on drover-agent.service: pods left running" "$tmp/stop.log"
check "the container still runs after the agent is gone" test "$(crun_pids)" = "$pid1"
: >"$tmp/job"
start_agent || fatal "the agent did not start again"
adopted() { grep -q 'container adopted.*pkgpod' "$tmp/agent.log"; }
check "the new agent adopts the container" wait_for "adoption" $((20 * tf)) adopted
check "same container, same pid" test "$(crun_pids)" = "$pid1"
phase_restarts() {
  api /api/v1/namespaces/default/pods/pkgpod |
    jq -r '.status.phase + " " + (.status.containerStatuses[0].restartCount | tostring)'
}
check "the pod is still Running, never restarted ($(phase_restarts))" test "$(phase_restarts)" = "Running 0"

# ---- stop for good: the pod is stopped, gracefully ----
stop_agent stop
check "stopping for good stops the pods: ExecStopPost runs stop-pods" grep -q "stopped for good: stopping its pods" "$tmp/stop.log"
check "stop-pods finishes" grep -q 'pods stopped' "$tmp/stop.log"
check "the container is gone" test -z "$(crun_pids)"
check "it got SIGTERM and exited by itself (graceful)" grep -qx "got SIGTERM" "$tmp/pod-out/log"
check "no pod directory is left" bash -c "[ -z \"\$(ls -A /var/lib/drover/pods 2>/dev/null)\" ]"

# ---- started again, the hub's pod comes back ----
: >"$tmp/job"
start_agent || fatal "the agent did not start a third time"
back() { [ -n "$(crun_pids)" ]; }
check "after a start the pod runs again (the hub's saved desired state)" wait_for "pod back" $((60 * tf)) back
stop_agent stop
check "and a stop for good stops it again" test -z "$(crun_pids)"

# ---- purge: the machine as it was ----
kill9 "$devpid"
devpid=""
kill "$hubpid"
wait "$hubpid" 2>/dev/null
hubpid=""
purge
for p in "${pkgs[@]}"; do
  check "$p is purged" bash -c "! dpkg-query -W -f='\${Status}' $p 2>/dev/null | grep -qv not-installed"
done
for d in /etc/drover /var/lib/drover /usr/lib/drover /run/drover /usr/bin/drover-agent \
  /usr/bin/drover-hub /usr/bin/drover /lib/systemd/system/drover-agent.service \
  /lib/systemd/system/drover-hub.service; do
  check "purge left no $d" test ! -e "$d"
done
check "no unit links or masks left in /etc/systemd/system" \
  bash -c "[ -z \"\$(find /etc/systemd/system -name 'drover-*' 2>/dev/null)\" ]"
check "deb-systemd-helper forgot the units" \
  bash -c "[ -z \"\$(find /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked -name '*drover-*' 2>/dev/null)\" ]"

# ---- the same packages under systemd 252 ----
# systemd as PID 1 of new PID, mount, cgroup, UTS and IPC namespaces (this network namespace,
# with the registry), over an overlay of / whose writes go to $sd/upper: apt-get installs the
# packages there and their maintainer scripts enable and start the units; then restart, a crash,
# an upgrade, stop, start and purge, by systemctl and apt-get. The host sees none of it.
sd="$tmp/sd"
mkdir -p "$sd/upper" "$sd/work" "$sd/root"
unshare --pid --fork --mount --cgroup --uts --ipc --propagation private --kill-child=SIGKILL \
  -- bash -c '
  set -e
  sd=$1 debs=$2 M=$1/root
  mount -t overlay overlay -o "lowerdir=/,upperdir=$sd/upper,workdir=$sd/work" "$M"
  mount --rbind /dev "$M/dev"
  mount -t proc proc "$M/proc"
  mount -t sysfs sysfs "$M/sys"
  mount -t cgroup2 cgroup2 "$M/sys/fs/cgroup"
  mount -t tmpfs -o mode=755 tmpfs "$M/run"
  mount -t tmpfs tmpfs "$M/tmp"
  # Pods overlay their images: not possible on an overlay, so the state directory is a tmpfs.
  mkdir -p "$M/var/lib/drover"
  mount -t tmpfs -o mode=755 tmpfs "$M/var/lib/drover"
  # A machine where services may start (a Docker-made image says no: exit 101).
  rm -f "$M/usr/sbin/policy-rc.d"
  mkdir -p "$M/root/debs" "$M/etc/systemd/system"
  cp "$debs"/*.deb "$M/root/debs/"
  printf "[Unit]\nDescription=test_packages\n" >"$M/etc/systemd/system/pkgtest.target"
  hostname drover-test
  cd "$M"
  mkdir -p oldroot
  pivot_root . oldroot
  umount -l /oldroot
  export container=drover-test
  exec /lib/systemd/systemd --system --unit=pkgtest.target' sd "$sd" "$out" \
  >"$tmp/systemd.log" 2>&1 &
sdpid=$!
disown "$sdpid"
sd_init() { pgrep -P "$sdpid" -x systemd | head -n 1; }
sd_exec() { nsenter -t "$(sd_init)" -m -p -u -- "$@"; }
sd_running() { sd_exec systemctl is-system-running 2>/dev/null | grep -Eqx 'running|degraded'; }
if ! wait_for "systemd in a namespace" $((20 * tf)) sd_running 2>/dev/null; then
  cat "$tmp/systemd.log"
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && { echo "ok # SKIP systemd does not boot in a namespace here"; kill9 "$sdpid"; sdpid=""; }
  [ -n "${DROVER_ALLOW_SKIP:-}" ] || fatal "systemd did not boot in a namespace (its console is above; with DROVER_ALLOW_SKIP set, this part is skipped)"
fi
if [ -n "$sdpid" ]; then
  # sd_apt ARGS: apt-get in the container, ARGS through its shell (globs).
  sd_apt() { sd_exec sh -c "DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=600 $*"; }
  sd_apt install --no-install-recommends /root/debs/drover-hub_*.deb /root/debs/drover-agent_*.deb \
    /root/debs/drover-cli_*.deb >"$tmp/sd-install.log" 2>&1 || { cat "$tmp/sd-install.log"; fatal "apt-get install under systemd"; }
  sd_active() { [ "$(sd_exec systemctl is-active "$1")" = active ]; }
  check "systemd: postinst started the hub" wait_for "drover-hub active" $((10 * tf)) sd_active drover-hub
  check "systemd: drover-agent is enabled" test "$(sd_exec systemctl is-enabled drover-agent)" = enabled
  check "systemd: postinst started the agent, which runs unconfigured (no hub) and waits" \
    wait_for "drover-agent active" $((10 * tf)) sd_active drover-agent
  sd_fp() { sd_exec journalctl -u drover-hub --no-pager | grep -o 'sha256:[0-9a-f]\{64\}' | tail -n 1; }
  wait_for "the hub's fingerprint" $((10 * tf)) sd_fp >/dev/null
  fp2="$(sd_fp)"
  check "systemd: the hub prints its fingerprint to the journal" test -n "$fp2"
  sd_exec bash -c "install -m 600 /dev/null /etc/drover/token &&
    DROVER_HUB=https://127.0.0.1:8443 DROVER_CA=/var/lib/drover/hub/pki/ca.crt \
    DROVER_TOKEN=\$(cat /var/lib/drover/hub/admin.token) HOME=/root \
    drover token create --uses 1 >/etc/drover/token 2>/dev/null &&
    sed -i -e 's|^#hub:|hub:|' -e 's|^  #url: .*|  url: https://127.0.0.1:8443|' \
      -e 's|^  #caFingerprint: .*|  caFingerprint: \"$fp2\"|' \
      -e 's|^  #tokenFile: .*|  tokenFile: /etc/drover/token|' \
      -e 's|^  #broker: .*|  broker: ssl://127.0.0.1:8883|' /etc/drover/agent.yaml &&
    printf 'nodeName: pkgsd\nallowNoCgroups: true\nregistries:\n- {host: \"%s\", insecure: true}\n' \
      '$REGISTRY_ADDR' >>/etc/drover/agent.yaml" || fatal "configuring the agent under systemd"
  sd_exec systemctl restart drover-agent
  # The hub's CA and token are the container's: the API through it.
  sd_api() {
    sd_exec bash -c "curl -sS -m 10 --cacert /var/lib/drover/hub/pki/ca.crt \
      -H \"Authorization: Bearer \$(cat /var/lib/drover/hub/admin.token)\" https://127.0.0.1:8443$1"
  }
  sd_ready() { sd_api /api/v1/nodes/pkgsd | jq -e '[.status.conditions[]? | select(.type == "Ready") | .status] == ["True"]' >/dev/null 2>&1; }
  check "systemd: restarted with the hub settings, the agent enrols; node Ready" \
    wait_for "pkgsd Ready" $((30 * tf)) sd_ready
  sed -e 's/pkgpod/sdpod/' -e "s|path: $tmp/pod-out|path: /root/pod-out|" "$tmp/pod.yaml" |
    sd_exec sh -c 'cat >/root/pod.yaml'
  sd_exec bash -c 'DROVER_HUB=https://127.0.0.1:8443 DROVER_CA=/var/lib/drover/hub/pki/ca.crt \
    DROVER_TOKEN=$(cat /var/lib/drover/hub/admin.token) HOME=/root drover apply -f /root/pod.yaml' \
    >"$tmp/sd-apply.out" 2>&1 || { cat "$tmp/sd-apply.out"; fatal "drover apply under systemd"; }
  sd_pids() { sd_exec crun --root /run/drover/crun list 2>/dev/null | awk 'NR > 1 && $3 == "running" { print $2 }'; }
  sd_pod() { [ -n "$(sd_pids)" ]; }
  check "systemd: the pod runs" wait_for "pod under systemd" $((60 * tf)) sd_pod
  p1="$(sd_pids)"
  journal() { sd_exec journalctl -u drover-agent --no-pager -o cat; }
  adoptions() { journal | grep -c 'container adopted.*sdpod'; }
  adopted_more() { [ "$(adoptions)" -gt "$1" ]; }
  a0="$(adoptions)"
  sd_exec systemctl restart drover-agent
  check "systemd: restart: ExecStopPost saw a restart job" bash -c "nsenter -t $(sd_init) -m -p -- journalctl -u drover-agent --no-pager -o cat | grep -q 'restart job on drover-agent.service: pods left running'"
  check "systemd: restart: the agent adopts the container" wait_for "adoption" $((20 * tf)) adopted_more "$a0"
  check "systemd: restart: same pid ($p1)" test "$(sd_pids)" = "$p1"
  a0="$(adoptions)"
  sd_exec systemctl kill -s KILL --kill-who=main drover-agent
  check "systemd: kill -9: Restart=always, the agent adopts the container" \
    wait_for "adoption" $((20 * tf)) adopted_more "$a0"
  check "systemd: kill -9: ExecStopPost saw no job" bash -c "nsenter -t $(sd_init) -m -p -- journalctl -u drover-agent --no-pager -o cat | grep -q 'no job on drover-agent.service: pods left running'"
  check "systemd: kill -9: same pid" test "$(sd_pids)" = "$p1"
  a0="$(adoptions)"
  sd_apt install --reinstall /root/debs/drover-agent_*.deb >"$tmp/sd-upgrade.log" 2>&1
  check "systemd: an upgrade (reinstall) restarts the agent, which adopts the container" \
    wait_for "adoption" $((20 * tf)) adopted_more "$a0"
  check "systemd: upgrade: same pid" test "$(sd_pids)" = "$p1"
  sd_exec systemctl stop drover-agent
  check "systemd: stop: the unit is inactive" test "$(sd_exec systemctl is-active drover-agent)" = inactive
  check "systemd: stop: ExecStopPost stopped the pods" bash -c "nsenter -t $(sd_init) -m -p -- journalctl -u drover-agent --no-pager -o cat | grep -q 'stopped for good: stopping its pods'"
  check "systemd: stop: the container is gone" test -z "$(sd_pids)"
  check "systemd: stop: it got SIGTERM (graceful)" bash -c "nsenter -t $(sd_init) -m -p -- cat /root/pod-out/log | grep -qx 'got SIGTERM'"
  sd_exec systemctl start drover-agent
  check "systemd: start: the pod runs again" wait_for "pod back" $((60 * tf)) sd_pod
  sd_apt purge drover-agent drover-hub drover-cli >"$tmp/sd-purge.log" 2>&1
  check "systemd: apt-get purge succeeds ($(tail -n 1 "$tmp/sd-purge.log"))" \
    bash -c "! grep -q 'rror' '$tmp/sd-purge.log'"
  check "systemd: purge stopped the pod" test -z "$(sd_pids)"
  check "systemd: purge stopped the hub" bash -c "! nsenter -t $(sd_init) -m -p -- pgrep -x drover-hub >/dev/null"
  check "systemd: no unit files left" bash -c "[ -z \"\$(nsenter -t $(sd_init) -m -p -- find /etc/systemd/system /lib/systemd/system -name 'drover-*')\" ]"
  kill9 "$sdpid"
  sdpid=""
fi
for p in "${pkgs[@]}"; do
  check "the host still has no $p" bash -c "! dpkg-query -W -f='\${Status}' $p 2>/dev/null | grep -qv not-installed"
done

echo "$n checks, $fails failed"
[ "$fails" -eq 0 ]
