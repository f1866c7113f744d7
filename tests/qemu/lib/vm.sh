# shellcheck shell=bash
# Test fixture, sourced by the tests in tests/qemu/: emulated ARM devices (QEMU, TCG) that run
# the cross-built drover-agent and join a hub started by tests/integration/lib/fleet.sh on this
# machine. Each device boots Debian's kernel with the initramfs and root image of
# tests/qemu/mkguest (a copy of the image per device, so it keeps its state across a power
# cut), reaches the host's loopback as 10.0.2.2 through QEMU's user network, and runs on one
# emulated CPU with VM_MEM MiB.
#
#   source "$here/lib/vm.sh"        # sources fleet.sh (and with it device.sh, registry.sh)
#   vm_netns_enter "$0" "$@"        # as fleet tests do: hub, broker, registry and every QEMU
#                                   # live in a network namespace of the test's own
#   vm_require_tools                # says what is missing (the caller decides: fail or 77)
#   vm_guest ARCH                   # builds (or finds up to date) the agent for ARCH and the
#                                   # guest: VM_GUEST_DIR[ARCH] (vmlinuz, initrd.img, root.img)
#   vm_fleet_setup                  # fleet_setup + the hub (FLEET_SECURE=1 unless set to ""),
#                                   # its certificate also for 10.0.2.2, and the ARM images;
#                                   # 10.0.2.2 is this namespace's loopback too, so the hub reads
#                                   # image platforms under the name the guests pull from
#   vm_push_arm_images              # VM_IMG_MULTI (arm64 + arm/v7), VM_IMG_ARM64 (arm64 only),
#                                   # VM_IMG_AMD64 (amd64 only): busybox images whose
#                                   # /etc/drover-arch says which variant they are
#   vm_device_start NAME ARCH [--flash]  # a device that enrols with a bootstrap token of its
#                                   # own (labels fleet=test, device=NAME), booted; its disk a
#                                   # copy of the guest's root.img with agent.yaml and the token
#                                   # written in, or (--flash) a Raspberry Pi OS-style image
#                                   # (vm_pi_image) that `drover flash` prepared
#   vm_flash_cli                    # the drover with a flash command (DROVER_QEMU_FLASH_CLI or
#                                   # the build's), or nothing
#   vm_boot NAME                    # (re)boots a device whose disk exists (after vm_kill)
#   vm_kill NAME                    # kill -9 its QEMU: a power cut
#   vm_wait_console NAME DESC SECS ERE   # until its console log has a line matching ERE;
#                                   # VM_WAIT_MS: ms from that boot's QEMU start to the match
#   vm_exec NAME CMD                # runs CMD (sh -c) in the guest as root; its output
#   vm_agent_status NAME            # drover-agent status in the guest, JSON
#   vm_agent_pid NAME               # the pid (in the guest) of its main drover-agent process
#   vm_kernel_t0 NAME               # VM_KERNEL_T0: when the guest kernel's clock started, in
#                                   # ms on this host's clock (fleet_ms), from its /proc/uptime;
#                                   # VM_KERNEL_T0_ERR: ms it may be off by (half the round trip)
#   vm_console NAME                 # the console log's path
#   vm_dump                         # fleet_dump plus every console's last lines
#   vm_finish                       # fleet_finish with the consoles
#   vm_need NAME CMD...             # check, ending the test (vm_finish) when it fails
#
# VM_MEM (default 192), VM_LOG_LEVEL (the agents' logLevel, default info),
# DROVER_QEMU_DIR (default build-qemu: caches, cross builds, guests). Every QEMU is killed and
# every temporary file removed at exit (registry_on_exit), whatever the test's outcome.
# Needs qemu-system-arm (qemu-system-aarch64 and qemu-system-arm), e2fsprogs (debugfs,
# mkfs.ext4), the cross compilers and :arm64/:armhf libraries of install-deps --cross, and what
# fleet.sh needs.

# shellcheck disable=SC2034 # the variables set here are for the sourcing test
_vm_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
_vm_src="$(cd "$_vm_here/../../.." && pwd)"
# shellcheck source=../../integration/lib/fleet.sh disable=SC1091
source "$_vm_src/tests/integration/lib/fleet.sh"

VM_DIR_ROOT="${DROVER_QEMU_DIR:-$_vm_src/build-qemu}"
VM_MEM="${VM_MEM:-192}"
declare -A VM_GUEST_DIR VM_AGENT VM_ARCH VM_PID VM_T0 VM_DISK VM_SHELL_PORT VM_ROOTDEV
VM_TMP=""
VM_WAIT_MS=0
VM_KERNEL_T0=0
VM_KERNEL_T0_ERR=0

vm_require_tools() {
  local missing="" t
  for t in qemu-system-aarch64 qemu-system-arm debugfs mkfs.ext4 readelf dpkg-deb apt-get \
    aarch64-linux-gnu-gcc arm-linux-gnueabihf-gcc cmake flock timeout; do
    command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
  done
  if [ -n "$missing" ]; then
    echo "qemu fixture: missing:$missing (ports/debian/install-deps --cross; qemu-system-arm)" >&2
    return 1
  fi
  fleet_require_tools
}

# vm_guest ARCH: the agent cross-built in $VM_DIR_ROOT/agent-ARCH (MinSizeRel, as for a
# device; DROVER_QEMU_AGENT_ARM64 / _ARMHF name a ready one instead), then mkguest.
vm_guest() {
  local arch="$1" tc agent var
  case "$arch" in
    arm64) tc=aarch64-linux-gnu var=DROVER_QEMU_AGENT_ARM64 ;;
    armhf) tc=arm-linux-gnueabihf var=DROVER_QEMU_AGENT_ARMHF ;;
    *) echo "vm_guest: unknown architecture $arch" >&2; return 1 ;;
  esac
  agent="${!var:-}"
  if [ -z "$agent" ]; then
    local b="$VM_DIR_ROOT/agent-$arch"
    mkdir -p "$VM_DIR_ROOT" || return 1 # (a fresh clone has no build-qemu/ yet)
    (
      exec 8>"$b.lock"
      flock 8
      if [ ! -f "$b/CMakeCache.txt" ]; then
        cmake -S "$_vm_src" -B "$b" -DCMAKE_TOOLCHAIN_FILE="$_vm_src/toolchains/$tc.cmake" \
          -DCMAKE_BUILD_TYPE=MinSizeRel -DDROVER_BUILD_AGENT=ON -DDROVER_BUILD_HUB=OFF \
          -DDROVER_BUILD_TESTS=OFF >"$b.log" 2>&1 || { tail -30 "$b.log" >&2; exit 1; }
      fi
      cmake --build "$b" -j"${DROVER_JOBS:-$(nproc)}" --target drover-agent >>"$b.log" 2>&1 ||
        { tail -30 "$b.log" >&2; exit 1; }
    ) || { echo "vm_guest: building drover-agent for $arch failed ($b.log)" >&2; return 1; }
    agent="$b/agent/drover-agent"
  fi
  VM_AGENT[$arch]="$agent"
  "$_vm_src/tests/qemu/mkguest" --arch "$arch" --agent "$agent" --out "$VM_DIR_ROOT/guest-$arch" \
    --cache "$VM_DIR_ROOT/cache" || return 1
  VM_GUEST_DIR[$arch]="$VM_DIR_ROOT/guest-$arch"
}

_vm_cleanup() {
  local n
  for n in "${!VM_PID[@]}"; do
    kill -9 "${VM_PID[$n]}" 2>/dev/null
  done
  for n in "${!VM_PID[@]}"; do
    wait "${VM_PID[$n]}" 2>/dev/null
  done
  [ -z "$VM_TMP" ] || [ -n "${KEEP_DEVICE:-}" ] || rm -rf "$VM_TMP"
}

_vm_tmp() {
  if [ -z "$VM_TMP" ]; then
    VM_TMP="$(mktemp -d "${TMPDIR:-/tmp}/drover-qemu.XXXXXX")"
    registry_on_exit _vm_cleanup
  fi
}

# fleet.sh's hub options, plus: its certificate also names 10.0.2.2, the host as the guests
# see it, and its scheduler reads image platforms from the registry under the name the guests
# pull from (10.0.2.2:PORT, plain HTTP; vm_fleet_setup makes that name reach the registry here).
eval "_vm_fleet_hub_args_orig() $(declare -f _fleet_hub_args | tail -n +2)"
_fleet_hub_args() {
  _vm_fleet_hub_args_orig
  echo "--san"
  echo "10.0.2.2"
  if [ -n "${REGISTRY_ADDR:-}" ] && "$FLEET_HUB_BIN" --help 2>&1 | grep -- --insecure-registry >/dev/null; then
    echo "--insecure-registry"
    echo "10.0.2.2:${REGISTRY_ADDR##*:}"
  fi
}

# In the test's network namespace, 10.0.2.2 is the loopback too (an address of lo, TCP to it
# DNATed to 127.0.0.1), as QEMU's user network makes it for the guests: the one name of the
# registry (and hub, broker) works from both sides.
_vm_host_alias() {
  [ -n "${DROVER_TEST_NETNS:-}" ] || { echo "vm: not in the test's network namespace (vm_netns_enter)" >&2; return 1; }
  ip addr add 10.0.2.2/32 dev lo &&
    iptables -t nat -A OUTPUT -d 10.0.2.2/32 -p tcp -j DNAT --to-destination 127.0.0.1
}

vm_fleet_setup() {
  _vm_tmp
  _vm_host_alias || return 1
  FLEET_SECURE="${FLEET_SECURE-1}"
  FLEET_HUB_LOG_LEVEL="${FLEET_HUB_LOG_LEVEL:-info}" # the API requests of the waits drown the rest
  fleet_setup || return 1
  fleet_hub_start || return 1
  vm_push_arm_images
}

# ---- the ARM images ----

VM_APPLETS="$REGISTRY_APPLETS uname"

# _vm_build_arm_layout BUSYBOX_ARM64 BUSYBOX_ARMHF OUT: an OCI layout with tags arm64, armhf and
# amd64 (one busybox image each, /etc/drover-arch naming it) and the indexes multi (arm64 +
# arm/v7), arm64only and amd64only.
_vm_build_arm_layout() {
  local bb64="$1" bbhf="$2" out="$3" a bb arch variant d s
  umoci init --layout "$out/oci"
  for a in arm64 armhf amd64; do
    case "$a" in
      arm64) bb="$bb64" arch=arm64 ;;
      armhf) bb="$bbhf" arch=arm ;;
      amd64) bb="$REGISTRY_BUSYBOX" arch=amd64 ;;
    esac
    mkdir -p "$out/root-$a/bin" "$out/root-$a/etc" "$out/root-$a/tmp"
    cp "$bb" "$out/root-$a/bin/busybox"
    for app in $VM_APPLETS; do ln -s busybox "$out/root-$a/bin/$app"; done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' \
      >"$out/root-$a/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$out/root-$a/etc/group"
    printf '%s\n' "$a" >"$out/root-$a/etc/drover-arch"
    umoci new --image "$out/oci:$a"
    _image_add_layer "$out/oci" "$a" "$out/root-$a" || return 1
    umoci config --image "$out/oci:$a" --os linux --architecture "$arch" \
      --config.env PATH=/bin --config.cmd /bin/sh || return 1
    rm -rf "$out/root-$a"
  done
  umoci gc --layout "$out/oci"
  local name entries
  for name in multi arm64only amd64only; do
    entries="[]"
    case "$name" in
      multi) set -- arm64 armhf ;;
      arm64only) set -- arm64 ;;
      amd64only) set -- amd64 ;;
    esac
    for a in "$@"; do
      d="$(image_manifest_digest "$out/oci" "$a")"
      s="$(stat -c %s "$out/oci/blobs/sha256/${d#sha256:}")"
      case "$a" in
        arm64) arch=arm64 variant=v8 ;;
        armhf) arch=arm variant=v7 ;;
        amd64) arch=amd64 variant="" ;;
      esac
      entries="$(jq -c --arg d "$d" --argjson s "$s" --arg a "$arch" --arg v "$variant" \
        '. + [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
               platform: ({architecture: $a, os: "linux"} + (if $v == "" then {} else {variant: $v} end))}]' \
        <<<"$entries")"
    done
    jq -cn --argjson m "$entries" \
      '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: $m}' \
      >"$out/index.json"
    d="sha256:$(sha256sum <"$out/index.json" | cut -d' ' -f1)"
    s="$(stat -c %s "$out/index.json")"
    mv "$out/index.json" "$out/oci/blobs/sha256/${d#sha256:}"
    jq --arg d "$d" --argjson s "$s" --arg n "$name" \
      '.manifests += [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s,
                       annotations: {"org.opencontainers.image.ref.name": $n}}]' \
      "$out/oci/index.json" >"$out/index.new"
    mv "$out/index.new" "$out/oci/index.json"
  done
}

# vm_push_arm_images: builds (cached under the registry fixture's image cache) and pushes
# test/multi:1, test/arm64only:1, test/amd64only:1. The guests pull them as
# 10.0.2.2:PORT/...; the registry listens on the loopback, which QEMU maps that address to.
vm_push_arm_images() {
  local bb64="${VM_GUEST_DIR[arm64]:-$VM_DIR_ROOT/guest-arm64}/root/usr/bin/busybox"
  local bbhf="${VM_GUEST_DIR[armhf]:-$VM_DIR_ROOT/guest-armhf}/root/usr/bin/busybox"
  [ -f "$bb64" ] && [ -f "$bbhf" ] ||
    { echo "vm_push_arm_images: build both guests first (vm_guest arm64; vm_guest armhf)" >&2; return 1; }
  local key dir n
  key="$(_registry_hash "$REGISTRY_FIXTURE_VERSION" "$(sha256sum <"$bb64")" "$(sha256sum <"$bbhf")" \
    "$(sha256sum <"$REGISTRY_BUSYBOX")" "$VM_APPLETS" "$(declare -f _vm_build_arm_layout)")"
  dir="$REGISTRY_IMAGES_DIR/arm-$key"
  _registry_cached "$dir" _vm_build_arm_layout "$bb64" "$bbhf" || return 1
  for n in multi arm64only amd64only; do
    skopeo --insecure-policy copy -q --all --dest-tls-verify=false \
      "oci:$dir/oci:$n" "docker://$REGISTRY_ADDR/test/$n:1" >&2 || return 1
  done
  VM_REGISTRY="10.0.2.2:${REGISTRY_ADDR##*:}"
  VM_IMG_MULTI="$VM_REGISTRY/test/multi:1"
  VM_IMG_ARM64="$VM_REGISTRY/test/arm64only:1"
  VM_IMG_AMD64="$VM_REGISTRY/test/amd64only:1"
}

# ---- devices ----

_vm_free_port() { _fleet_free_port; }

# _vm_write_file IMAGE OFFSET SRC DEST: writes SRC (mode and owner kept) as DEST into the ext4
# file system at byte OFFSET of IMAGE, with debugfs (nothing mounted).
_vm_write_file() {
  local img="$1" off="$2" from="$3" to="$4" spec
  spec="$img"
  [ "$off" = 0 ] || spec="$img?offset=$off"
  debugfs -w -R "rm $to" "$spec" >/dev/null 2>&1
  debugfs -w -R "write $from $to" "$spec" 2>&1 | grep -v '^debugfs\|^Allocated inode' >&2
  debugfs -R "stat $to" "$spec" 2>/dev/null | grep "Type: regular" >/dev/null ||
    { echo "vm: could not write $to into $img" >&2; return 1; }
}

# vm_device_start NAME ARCH [--flash]
vm_device_start() {
  local name="$1" arch="$2" how="${3:-}" d
  _vm_tmp
  [ -n "${VM_GUEST_DIR[$arch]:-}" ] || vm_guest "$arch" || return 1
  d="$VM_TMP/$name"
  mkdir -p "$d"
  VM_ARCH[$name]="$arch"
  VM_DISK[$name]="$d/disk.img"
  # A bootstrap token of its own.
  install -m 600 /dev/null "$d/bootstrap.token"
  "$FLEET_CLI" token create --uses 1 --ttl 1h --labels "fleet=test,device=$name" \
    --description "qemu device $name" >"$d/bootstrap.token" || return 1
  printf '%s\n' "$name" >"$d/hostname"
  if [ "$how" = --flash ]; then
    _vm_flashed_disk "$name" || return 1
  else
    VM_ROOTDEV[$name]=/dev/vda
    cp --sparse=always "${VM_GUEST_DIR[$arch]}/root.img" "${VM_DISK[$name]}" || return 1
    # Its configuration, as a flashing tool would write it.
    vm_agent_config "$name" >"$d/agent.yaml"
    _vm_write_file "${VM_DISK[$name]}" 0 "$d/agent.yaml" /etc/drover/agent.yaml &&
      _vm_write_file "${VM_DISK[$name]}" 0 "$d/bootstrap.token" /etc/drover/bootstrap.token &&
      _vm_write_file "${VM_DISK[$name]}" 0 "$d/hostname" /etc/hostname || return 1
  fi
  VM_SHELL_PORT[$name]="$(_vm_free_port)" || return 1
  vm_boot "$name"
}

# ---- drover flash ----

# The drover that has `flash` (DROVER_QEMU_FLASH_CLI, else the build's), or nothing.
vm_flash_cli() {
  local c="${DROVER_QEMU_FLASH_CLI:-$FLEET_CLI}"
  case "$("$c" flash --help 2>&1)" in
    *"usage: drover flash"*) echo "$c" ;;
  esac
}

# A Raspberry Pi OS-style disk image: MBR, partition 1 FAT (config.txt, cmdline.txt; 16 MiB
# from 1 MiB), partition 2 ext4 with the guest's root tree (384 MiB). QEMU boots it with the
# kernel and initramfs of the host (-kernel, drover.root=/dev/vda2), not with the Pi's firmware.
VM_PI_BOOT_OFF=$((1024 * 1024))
VM_PI_ROOT_OFF=$((17 * 1024 * 1024))
vm_pi_image() {
  local arch="$1" img="$2" tmp
  tmp="$(dirname "$img")"
  rm -f "$img"
  truncate -s $((401 * 1024 * 1024)) "$img" || return 1
  printf 'label: dos\nlabel-id: 0x4e639091\nstart=2048, size=32768, type=c\nstart=34816, type=83\n' |
    sfdisk -q "$img" || return 1
  mformat -i "$img@@$VM_PI_BOOT_OFF" -T 32768 -v BOOT :: || return 1
  printf '[all]\narm_64bit=1\n' >"$tmp/config.txt"
  printf 'console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 rootwait\n' \
    >"$tmp/cmdline.txt"
  mcopy -i "$img@@$VM_PI_BOOT_OFF" "$tmp/config.txt" "$tmp/cmdline.txt" ::/ || return 1
  mkfs.ext4 -q -F -L rootfs -d "${VM_GUEST_DIR[$arch]}/root" -E "offset=$VM_PI_ROOT_OFF" \
    "$img" 384M >/dev/null || return 1
}

# Device NAME's disk: a Pi OS-style image that drover flash prepared (the agent for its
# architecture, agent.yaml, the token, the systemd unit, cmdline.txt). drover flash has no
# setting for registries: the test registry's (plain HTTP) entry is added to agent.yaml after.
_vm_flashed_disk() {
  local name="$1" arch="${VM_ARCH[$1]}" d="$VM_TMP/$1" cli img
  img="${VM_DISK[$name]}"
  cli="$(vm_flash_cli)"
  [ -n "$cli" ] || { echo "vm: this drover has no flash command" >&2; return 1; }
  vm_pi_image "$arch" "$img" || { echo "vm: cannot make a Pi OS-style image" >&2; return 1; }
  "$cli" flash --agent "${VM_AGENT[$arch]}" --hub-url "https://10.0.2.2:${FLEET_HUB##*:}" \
    --broker "ssl://10.0.2.2:$FLEET_BROKER_PORT" --token-file "$d/bootstrap.token" \
    --ca-fingerprint "$FLEET_FINGERPRINT" --node-name "$name" "$img" >"$d/flash.out" 2>&1
  local rc=$?
  cat "$d/flash.out" >&2
  [ "$rc" -eq 0 ] || return 1
  local ext="$img?offset=$VM_PI_ROOT_OFF"
  debugfs -R "dump /etc/drover/agent.yaml $d/agent.yaml" "$ext" >/dev/null 2>&1 &&
    [ -s "$d/agent.yaml" ] || { echo "vm: no agent.yaml in the flashed image" >&2; return 1; }
  printf 'registries:\n- {host: "%s", insecure: true}\n' "$VM_REGISTRY" >>"$d/agent.yaml"
  # As vm_agent_config: the guests have no wg or nft (yet), the cluster network is off.
  printf 'network: {mode: off}\n' >>"$d/agent.yaml"
  _vm_write_file "$img" "$VM_PI_ROOT_OFF" "$d/agent.yaml" /etc/drover/agent.yaml &&
    _vm_write_file "$img" "$VM_PI_ROOT_OFF" "$d/hostname" /etc/hostname || return 1
  VM_ROOTDEV[$name]=/dev/vda2
}

# The agent.yaml of device NAME: the hub, broker and registry at 10.0.2.2 (the host).
vm_agent_config() {
  # The guests have no WireGuard tools or nftables yet: the cluster network is off there
  # (tests/integration/test_fleet_network.sh covers it with network namespaces).
  cat <<CFG
nodeName: $1
network: {mode: off}
logLevel: ${VM_LOG_LEVEL:-info}
cgroups: required
registries:
- {host: "$VM_REGISTRY", insecure: true}
hub:
  url: https://10.0.2.2:${FLEET_HUB##*:}
  caFingerprint: "$FLEET_FINGERPRINT"
  tokenFile: /etc/drover/bootstrap.token
  broker: ssl://10.0.2.2:$FLEET_BROKER_PORT
  heartbeatSeconds: ${FLEET_HEARTBEAT:-2}
  keepaliveSeconds: ${FLEET_KEEPALIVE:-10}
CFG
}

vm_console() { echo "$VM_TMP/$1/console.log"; }

vm_boot() {
  local name="$1" arch="${VM_ARCH[$1]}" d="$VM_TMP/$1" qemu machine g
  g="${VM_GUEST_DIR[$arch]}"
  case "$arch" in
    arm64) qemu=qemu-system-aarch64 machine="-M virt -cpu cortex-a72" ;;
    armhf) qemu=qemu-system-arm machine="-M virt -cpu cortex-a15" ;;
  esac
  echo "=== boot $(date -u +%T.%N)" >>"$d/console.all"
  [ ! -f "$d/console.log" ] || cat "$d/console.log" >>"$d/console.all"
  : >"$d/console.log"
  VM_T0[$name]="$(fleet_ms)"
  # shellcheck disable=SC2086 # $machine is two options
  "$qemu" $machine -m "$VM_MEM" -smp 1 -nographic -monitor none -no-reboot \
    -serial "file:$d/console.log" \
    -kernel "$g/vmlinuz" -initrd "$g/initrd.img" \
    -append "console=ttyAMA0 quiet panic=-1 drover.root=${VM_ROOTDEV[$name]} drover.time=$(date +%s) drover.shell=2323" \
    -drive "file=${VM_DISK[$name]},if=none,format=raw,id=disk0,cache=unsafe" \
    -device virtio-blk-device,drive=disk0 \
    -netdev "user,id=net0,hostfwd=tcp:127.0.0.1:${VM_SHELL_PORT[$name]}-10.0.2.15:2323" \
    -device virtio-net-device,netdev=net0 \
    -device virtio-rng-device -rtc base=utc \
    </dev/null >>"$d/qemu.log" 2>&1 &
  VM_PID[$name]=$!
}

vm_kill() {
  local pid="${VM_PID[$1]:-}"
  [ -n "$pid" ] || return 0
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  VM_PID[$1]=""
}

vm_running() { [ -n "${VM_PID[$1]:-}" ] && kill -0 "${VM_PID[$1]}" 2>/dev/null; }

# vm_wait_console NAME DESC SECS ERE: SECS times DROVER_TEST_TIME_FACTOR; fails at once when QEMU
# exits (a guest that powered itself off, a kernel panic).
vm_wait_console() {
  local name="$1" desc="$2" secs="$3" ere="$4" log
  log="$(vm_console "$name")"
  local deadline=$((SECONDS + secs * FLEET_TF))
  while ! grep -Eq -- "$ere" "$log" 2>/dev/null; do
    if ! vm_running "$name"; then
      echo "$name: QEMU exited while waiting for: $desc" >&2
      tail -n 30 "$log" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$name: timeout after $((secs * FLEET_TF))s waiting for: $desc" >&2
      tail -n 30 "$log" >&2
      return 1
    fi
    sleep 0.1
  done
  VM_WAIT_MS=$(($(fleet_ms) - VM_T0[$name]))
}

# vm_exec NAME CMD: CMD's output; its exit status is CMD's (the guest's root shell on the
# forwarded port: the command, then its status on a last line of its own).
vm_exec() {
  local name="$1" out rc
  out="$(timeout $((20 * FLEET_TF)) bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 255
    printf "{ %s\n} </dev/null 2>&1; echo \"@rc=\$?\"; exit\n" "$2" >&3
    cat <&3' vm-exec "${VM_SHELL_PORT[$name]}" "$2")" || { echo "vm_exec $name: no answer" >&2; return 255; }
  rc="$(sed -n 's/^@rc=\([0-9]*\)$/\1/p' <<<"$out" | tail -n 1)"
  sed '/^@rc=[0-9]*$/d' <<<"$out"
  [ -n "$rc" ] || return 255
  return "$rc"
}

vm_agent_status() {
  vm_exec "$1" "drover-agent status --config /etc/drover/agent.yaml"
}

# The drover-agent process whose parent is not a drover-agent (a short-lived child forked for
# a namespace or CNI shares its name).
vm_agent_pid() {
  # shellcheck disable=SC2016 # for the guest's shell
  vm_exec "$1" 'all=" $(pidof drover-agent) "; for p in $all; do
    pp=$(sed -n "s/^PPid:[[:space:]]*//p" /proc/$p/status 2>/dev/null)
    case "$all" in *" $pp "*) ;; *) echo "$p"; break ;; esac; done'
}

# vm_kernel_t0 NAME: the guest's CLOCK_BOOTTIME (/proc/uptime, zero when the kernel's
# timekeeping starts, a few ms into its boot) read over vm_exec, set against this host's clock
# at the middle of the round trip. Under TCG the guest's clocks follow the host's.
vm_kernel_t0() {
  local t1 t2 up
  t1="$(fleet_ms)"
  up="$(vm_exec "$1" 'cut -d" " -f1 /proc/uptime')" || return 1
  t2="$(fleet_ms)"
  up="$(awk -v u="$up" 'BEGIN {printf "%d", u * 1000}')"
  VM_KERNEL_T0=$(((t1 + t2) / 2 - up))
  VM_KERNEL_T0_ERR=$(((t2 - t1 + 1) / 2 + 10)) # (+ /proc/uptime's 10 ms resolution)
}

vm_dump() {
  local n
  fleet_dump "${1:-60}"
  for n in "${!VM_ARCH[@]}"; do
    echo "--- console of $n (last ${1:-60} lines)" >&2
    tail -n "${1:-60}" "$(vm_console "$n")" >&2
  done
}

# vm_finish: fleet_finish, with every console's tail when a check failed.
vm_finish() {
  echo "$FLEET_CHECKS checks, $FLEET_FAILS failed"
  [ "$FLEET_FAILS" -eq 0 ] || vm_dump "${FLEET_DUMP_LINES:-80}"
  [ "$FLEET_FAILS" -eq 0 ]
}

# vm_need NAME CMD...: a check the rest of the test depends on: when it fails, the test ends
# there (vm_finish's dump, exit 1) instead of waiting out every later check's bound.
vm_need() {
  local fails="$FLEET_FAILS"
  check "$@" # (its status is always 0)
  [ "$FLEET_FAILS" -eq "$fails" ] && return 0
  vm_finish
  exit 1
}

# vm_netns_enter "$0" "$@": netns_enter, whose outer shell outlives a SIGTERM or SIGINT sent to
# the whole process group (tests/qemu/run's timeout): it waits for the test, which cleans up on
# its own, then deletes the namespace, instead of dying first and leaving it behind.
vm_netns_enter() {
  [ -n "${DROVER_TEST_NETNS:-}" ] || trap 'echo "qemu test: terminated" >&2' TERM INT
  netns_enter "$@"
}
