#!/usr/bin/env bash
# drover flash end to end, on Raspberry Pi OS-style images this test makes itself (its own MBR,
# a FAT boot partition made by mformat with config.txt and cmdline.txt, an ext4 root made by
# mke2fs -d holding an aarch64 or armhf ELF as /usr/bin/env; merged /usr, as Pi OS):
#   - one image: every file, its mode and owner and contents read back with debugfs, the
#     enabled unit's link, cmdline.txt's options appended once, config.txt untouched, a clean
#     e2fsck; the agent.yaml written loads in this build's drover-agent, which fills pi-{serial};
#   - idempotency: a second run says "unchanged" and the image stays byte for byte the same;
#     --dry-run writes nothing;
#   - a directory of several (arm64, armhf, one already flashed, one bad) with --agent-dir:
#     one line each, exit 1 for the bad one;
#   - refusals, each with its message and the image untouched: no MBR, no FAT partition with
#     cmdline.txt, no ext4 root, a wrong --agent architecture, an armel userland, a cloned
#     identity; bootstrap tokens that are expired, revoked or unknown to the hub (a real
#     drover-hub with access control), and an active one accepted;
#   - no private key anywhere in any image; the time per image is printed.
# The agent binaries: DROVER_AGENT_ARM64 / DROVER_AGENT_ARMHF, else build-arm64/ and
# build-armhf/ beside the source, else a stand-in ELF header of the right machine (said so).
set -uo pipefail
cli="${DROVER_BUILD_DIR:?}/cli/drover"
hub="${DROVER_BUILD_DIR}/hub/drover-hub"
native_agent="${DROVER_BUILD_DIR}/agent/drover-agent"
src="${DROVER_SOURCE_DIR:?}"
tf=${DROVER_TEST_TIME_FACTOR:-1}
export PATH="$PATH:/usr/sbin:/sbin"

for tool in mcopy:mtools mdir:mtools mformat:mtools mtype:mtools debugfs:e2fsprogs \
  mke2fs:e2fsprogs e2fsck:e2fsprogs; do
  if ! command -v "${tool%%:*}" >/dev/null; then
    echo "${tool%%:*} missing: install the Debian package ${tool#*:}"
    [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
    exit 1
  fi
done
[ -x "$cli" ] || { echo "no $cli"; exit 1; }

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
export MTOOLS_SKIP_CHECK=1 DEBUGFS_PAGER=__none__
unset DROVER_HUB DROVER_TOKEN DROVER_CA
export HOME=$tmp/home XDG_CONFIG_HOME=
mkdir -p "$HOME"

# ---- images ----

# mkelf ARCH FILE: an ELF header of that machine (arm64, armhf, armel), 4 KiB in all.
mkelf() {
  case $1 in
    arm64) printf '\177ELF\002\001\001\000\000\000\000\000\000\000\000\000\002\000\267\000\001\000\000\000' ;;
    armhf) printf '\177ELF\001\001\001\000\000\000\000\000\000\000\000\000\002\000\050\000\001\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\004\000\005' ;;
    armel) printf '\177ELF\001\001\001\000\000\000\000\000\000\000\000\000\002\000\050\000\001\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\002\000\005' ;;
  esac >"$2"
  head -c 4096 /dev/zero >>"$2"
  chmod 755 "$2"
}
le32() {
  local v=$1
  printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $((v & 255)) $(((v >> 8) & 255)) $(((v >> 16) & 255)) $(((v >> 24) & 255)))"
}
BOOT_LBA=2048 BOOT_SECTORS=16384 ROOT_LBA=18432 SIZE_MB=40
ROOT_OFF=$((ROOT_LBA * 512))
# mbr IMG: partition 1 FAT32 (LBA, 0x0c) at 1 MiB, 8 MiB; partition 2 Linux (0x83) to the end.
mbr() {
  local total=$(($(stat -c %s "$1") / 512))
  {
    printf '\000\000\000\000\014\000\000\000'
    le32 $BOOT_LBA
    le32 $BOOT_SECTORS
    printf '\000\000\000\000\203\000\000\000'
    le32 $ROOT_LBA
    le32 $((total - ROOT_LBA))
  } | dd of="$1" bs=1 seek=446 conv=notrunc status=none
  printf '\125\252' | dd of="$1" bs=1 seek=510 conv=notrunc status=none
}
CMDLINE='console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait'
# mkimg IMG ARCH: a Pi OS-like image whose /usr/bin/env is an ARCH ELF (the cross sysroot's
# dynamic loader when there is one, else a stand-in header).
mkimg() {
  local img=$1 arch=$2 root="$tmp/root.$$"
  rm -rf "$root"
  mkdir -p "$root/usr/bin" "$root/usr/lib" "$root/etc/systemd/system/multi-user.target.wants" \
    "$root/usr/local/bin" "$root/var/lib"
  ln -s usr/bin "$root/bin"
  ln -s usr/lib "$root/lib"
  case $arch in
    arm64) real=/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ;;
    armhf) real=/usr/arm-linux-gnueabihf/lib/ld-linux-armhf.so.3 ;;
    *) real= ;;
  esac
  if [ -n "$real" ] && [ -f "$real" ]; then cp "$real" "$root/usr/bin/env"; else mkelf "$arch" "$root/usr/bin/env"; fi
  ln -s env "$root/usr/bin/sh"
  echo raspberrypi >"$root/etc/hostname"
  rm -f "$img"
  truncate -s ${SIZE_MB}M "$img"
  mbr "$img"
  mformat -i "$img@@$((BOOT_LBA * 512))" -T $BOOT_SECTORS -v BOOT :: || return 1
  printf '[all]\narm_64bit=1\n' >"$tmp/config.txt"
  printf '%s\n' "$CMDLINE" >"$tmp/cmdline.txt"
  mcopy -i "$img@@$((BOOT_LBA * 512))" "$tmp/config.txt" "$tmp/cmdline.txt" ::/ || return 1
  mke2fs -q -F -t ext4 -d "$root" -E offset=$ROOT_OFF "$img" $(((SIZE_MB - 9) * 1024))k || return 1
  rm -rf "$root"
}
ext() { echo "$1?offset=$ROOT_OFF"; }
# stat_of IMG PATH: "type mode uid gid size" from debugfs.
stat_of() {
  debugfs -R "stat $2" "$(ext "$1")" 2>/dev/null | awk '
    /^Inode:/ { for (i = 1; i <= NF; i++) { if ($i == "Type:") t = $(i + 1); if ($i == "Mode:") m = $(i + 1) } }
    /^User:/ { for (i = 1; i <= NF; i++) { if ($i == "User:") u = $(i + 1); if ($i == "Group:") g = $(i + 1); if ($i == "Size:") s = $(i + 1) } }
    END { print t, m, u, g, s }'
}
ext_cat() { debugfs -R "dump $2 $tmp/dump" "$(ext "$1")" >/dev/null 2>&1 && cat "$tmp/dump"; }
link_of() { debugfs -R "stat $2" "$(ext "$1")" 2>/dev/null | sed -n 's/^Fast link dest: "\(.*\)"$/\1/p'; }
fat_cat() { mtype -i "$1@@$((BOOT_LBA * 512))" "::/$2"; }
sum() { sha256sum "$1" | cut -d' ' -f1; }
no_private_key() { ! grep -aq -e 'PRIVATE KEY' "$1"; }

since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
t0=$EPOCHREALTIME
mkimg "$tmp/arm64.tmpl" arm64 || { echo "cannot make an image"; exit 1; }
mkimg "$tmp/armhf.tmpl" armhf || exit 1
mkimg "$tmp/armel.tmpl" armel || exit 1
echo "# 3 template images made in $(since "$t0") s"

# ---- agent binaries ----
agent_for() { # ARCH -> path
  local var="DROVER_AGENT_${1^^}" p
  for p in "${!var:-}" "$src/build-$1/agent/drover-agent"; do
    if [ -n "$p" ] && [ -f "$p" ]; then echo "$p"; return; fi
  done
  mkelf "$1" "$tmp/stand-in-agent-$1"
  echo "$tmp/stand-in-agent-$1"
}
AGENT_ARM64=$(agent_for arm64)
AGENT_ARMHF=$(agent_for armhf)
echo "# agent for arm64: $AGENT_ARM64"
echo "# agent for armhf: $AGENT_ARMHF"
case "$AGENT_ARM64$AGENT_ARMHF" in *stand-in*) echo "# (a stand-in is an ELF header of the right machine: no cross-built drover-agent here)" ;; esac
mkdir -p "$tmp/agents"
cp "$AGENT_ARM64" "$tmp/agents/drover-agent-arm64"
cp "$AGENT_ARMHF" "$tmp/agents/drover-agent-armhf"

FP="sha256:$(printf 'ab%.0s' $(seq 1 32))"
TOKEN="drv1_0123abcd_$(printf 'x%.0s' $(seq 1 43))"
printf '%s\n' "$TOKEN" >"$tmp/token"
flash() { # args... : drover flash with the usual settings; output in $tmp/out (stdout+stderr)
  local t=$EPOCHREALTIME rc
  "$cli" flash --hub-url https://hub.fleet.example:8443 --broker ssl://hub.fleet.example:8883 \
    --ca-fingerprint "$FP" --label agent.drover.io/board=pi4 "$@" >"$tmp/out" 2>&1
  rc=$?
  sed 's/^/#   /' "$tmp/out"
  echo "#   (exit $rc, $(since "$t") s)"
  return $rc
}
out_has() { grep -qF -- "$1" "$tmp/out"; }

# ---- 1. one image ----
img="$tmp/pi.img"
cp --sparse=always "$tmp/arm64.tmpl" "$img"
config_before=$(fat_cat "$img" config.txt)
flash --agent "$AGENT_ARM64" --token-file "$tmp/token" "$img"
rc=$?
check "one image: exit 0" test $rc -eq 0
check "one image: 'flashed (arm64, node pi-{serial}: ...)'" \
  grep -Eq "^$img: flashed \(arm64, node pi-\{serial\}: agent, agent.yaml, bootstrap.token, agent-stop-post, drover-agent.service, multi-user.target.wants, cmdline.txt\) in [0-9.]+ s$" "$tmp/out"
check "no hub configured: the token is said to be unchecked" out_has "bootstrap token 0123abcd not checked: no hub configured"
check "agent: regular, 0755, root" test "$(stat_of "$img" /usr/local/bin/drover-agent)" = "regular 0755 0 0 $(stat -c %s "$AGENT_ARM64")"
ext_cat "$img" /usr/local/bin/drover-agent >"$tmp/agent.back"
check "agent: the bytes of --agent" cmp -s "$tmp/agent.back" "$AGENT_ARM64"
check "agent.yaml: regular, 0644, root" test "$(stat_of "$img" /etc/drover/agent.yaml | cut -d' ' -f1-4)" = "regular 0644 0 0"
ext_cat "$img" /etc/drover/agent.yaml >"$tmp/agent.yaml"
for want in 'nodeName: pi-{serial}' 'url: https://hub.fleet.example:8443' "caFingerprint: $FP" \
  'broker: ssl://hub.fleet.example:8883' 'tokenFile: /etc/drover/bootstrap.token' \
  'agent.drover.io/board: pi4'; do
  check "agent.yaml: $want" grep -qF -- "$want" "$tmp/agent.yaml"
done
check "agent.yaml: no token in it" bash -c "! grep -q drv1_ '$tmp/agent.yaml'"
check "bootstrap.token: regular, 0600, root" test "$(stat_of "$img" /etc/drover/bootstrap.token | cut -d' ' -f1-4)" = "regular 0600 0 0"
check "bootstrap.token: the token" test "$(ext_cat "$img" /etc/drover/bootstrap.token)" = "$TOKEN"
check "unit: regular, 0644, root" test "$(stat_of "$img" /etc/systemd/system/drover-agent.service | cut -d' ' -f1-4)" = "regular 0644 0 0"
ext_cat "$img" /etc/systemd/system/drover-agent.service >"$tmp/unit"
check "unit: ports/raspberrypi/drover-agent.service" cmp -s "$tmp/unit" "$src/ports/raspberrypi/drover-agent.service"
for want in KillMode=process Delegate=yes Restart=always WantedBy=multi-user.target \
  'ExecStart=/usr/local/bin/drover-agent run --config /etc/drover/agent.yaml'; do
  check "unit: $want" grep -qx -- "$want" "$tmp/unit"
done
check "unit: ExecStopPost runs the stop helper with the agent in /usr/local/bin" grep -qx -- \
  'ExecStopPost=/usr/local/lib/drover/agent-stop-post %n /etc/drover/agent.yaml /usr/local/bin/drover-agent' "$tmp/unit"
check "agent-stop-post: regular, 0755, root" test "$(stat_of "$img" /usr/local/lib/drover/agent-stop-post | cut -d' ' -f1-4)" = "regular 0755 0 0"
ext_cat "$img" /usr/local/lib/drover/agent-stop-post >"$tmp/stop-post"
check "agent-stop-post: ports/debian/agent-stop-post" cmp -s "$tmp/stop-post" "$src/ports/debian/agent-stop-post"
# systemd-analyze verify, with the flashed files where the unit names them (a private /usr/local).
mkdir -p "$tmp/unitdir" && cp "$tmp/unit" "$tmp/unitdir/drover-agent.service"
verify="$(unshare --mount --propagation private -- sh -c '
  mount -t tmpfs tmpfs /usr/local && mkdir -p /usr/local/bin /usr/local/lib/drover &&
  install -m 755 "$1" /usr/local/bin/drover-agent &&
  install -m 755 "$2" /usr/local/lib/drover/agent-stop-post &&
  systemd-analyze verify "$3" 2>&1' _ "$tmp/agent.back" "$tmp/stop-post" "$tmp/unitdir/drover-agent.service" 2>&1)"
check "systemd-analyze verify: the flashed unit is clean ($verify)" test -z "$verify"
check "enabled: multi-user.target.wants link" test "$(link_of "$img" /etc/systemd/system/multi-user.target.wants/drover-agent.service)" = /etc/systemd/system/drover-agent.service
check "/etc/drover: directory, 0755" test "$(stat_of "$img" /etc/drover | cut -d' ' -f1-4)" = "directory 0755 0 0"
check "cmdline.txt: the options appended, the rest kept" test "$(fat_cat "$img" cmdline.txt)" = "$CMDLINE cgroup_enable=memory cgroup_memory=1"
check "cmdline.txt: one line" test "$(fat_cat "$img" cmdline.txt | wc -l)" = 1
check "config.txt: untouched" test "$(fat_cat "$img" config.txt)" = "$config_before"
check "no private key in the image" no_private_key "$img"
check "nothing in /var/lib/drover (the device makes its identity)" test "$(stat_of "$img" /var/lib/drover | cut -d' ' -f1)" = ""
fsck_clean() { e2fsck -fn "$(ext "$1")" >/dev/null 2>&1; }
check "e2fsck: the root file system is clean" fsck_clean "$img"

# The config loads in this build's agent, which fills the pattern (from this host's
# /etc/machine-id or serial) and keeps it.
if [ -x "$native_agent" ]; then
  { cat "$tmp/agent.yaml"; echo "stateDir: $tmp/state"; echo "runDir: $tmp/run"; } >"$tmp/agent-local.yaml"
  "$native_agent" status --config "$tmp/agent-local.yaml" >"$tmp/status.out" 2>&1
  check "agent.yaml loads in drover-agent (status only misses the running agent)" grep -q "no status (is the agent running?)" "$tmp/status.out"
  if [ -f "$tmp/state/node-name.json" ]; then
    check "drover-agent filled pi-{serial} and kept it" grep -Eq '"nodeName":"pi-[0-9a-z-]+"' "$tmp/state/node-name.json"
    sed 's/^/#   /' "$tmp/state/node-name.json"
  else # a host with neither a serial number nor /etc/machine-id
    check "drover-agent: no serial here, the error names nodeName" grep -q 'nodeName: "pi-{serial}": no serial number' "$tmp/status.out"
  fi
fi

# ---- 2. idempotency ----
before=$(sum "$img")
flash --agent "$AGENT_ARM64" --token-file "$tmp/token" "$img"
rc=$?
check "second run: exit 0" test $rc -eq 0
check "second run: 'unchanged (arm64, node pi-{serial})'" grep -Eq "^$img: unchanged \(arm64, node pi-\{serial\}\) in [0-9.]+ s$" "$tmp/out"
check "second run: the image is byte-identical" test "$(sum "$img")" = "$before"
check "cmdline.txt: still appended once" test "$(fat_cat "$img" cmdline.txt | grep -o cgroup_enable=memory | wc -l)" = 1
# A changed setting rewrites only what it changes.
flash --agent "$AGENT_ARM64" --token-file "$tmp/token" --node-name 'edge-{hostname}-{mac}' "$img"
check "another --node-name: only agent.yaml rewritten" grep -Eq "^$img: flashed \(arm64, node edge-\{hostname\}-\{mac\}: agent.yaml\) in" "$tmp/out"
before=$(sum "$img")
flash --agent "$AGENT_ARM64" --token-file "$tmp/token" --dry-run "$img"
check "--dry-run: says what it would write" grep -q "^$img: would flash (arm64, node pi-{serial}: agent.yaml)" "$tmp/out"
check "--dry-run: the image is byte-identical" test "$(sum "$img")" = "$before"

# ---- 3. a directory of images ----
dir="$tmp/fleet"
mkdir -p "$dir"
cp --sparse=always "$tmp/arm64.tmpl" "$dir/pi-a.img"
cp --sparse=always "$tmp/armhf.tmpl" "$dir/pi-b.img"
cp --sparse=always "$img" "$dir/pi-c.img"
head -c 1048576 /dev/urandom >"$dir/bad.img"
echo "not an image" >"$dir/notes.txt"
flash --agent-dir "$tmp/agents" --token-file "$tmp/token" --node-name 'edge-{hostname}-{mac}' "$dir"
rc=$?
check "directory: exit 1 (one bad image)" test $rc -eq 1
check "directory: one line per *.img, in order" test "$(grep -c "^$dir/" "$tmp/out")" = 4
check "directory: bad.img refused (no MBR)" grep -q "^$dir/bad.img: refused: no MBR" "$tmp/out"
check "directory: pi-a.img flashed, arm64" grep -q "^$dir/pi-a.img: flashed (arm64, node edge-{hostname}-{mac}: agent, " "$tmp/out"
check "directory: pi-b.img flashed, armhf" grep -q "^$dir/pi-b.img: flashed (armhf, node edge-{hostname}-{mac}: agent, " "$tmp/out"
check "directory: pi-c.img unchanged" grep -q "^$dir/pi-c.img: unchanged (arm64, node edge-{hostname}-{mac})" "$tmp/out"
check "directory: notes.txt not touched" bash -c "! grep -q notes.txt '$tmp/out'"
ext_cat "$dir/pi-b.img" /usr/local/bin/drover-agent >"$tmp/agent.back"
check "directory: pi-b.img holds the armhf agent" cmp -s "$tmp/agent.back" "$AGENT_ARMHF"
ext_cat "$dir/pi-a.img" /usr/local/bin/drover-agent >"$tmp/agent.back"
check "directory: pi-a.img holds the arm64 agent" cmp -s "$tmp/agent.back" "$AGENT_ARM64"
for f in "$dir"/*.img; do
  check "no private key in $(basename "$f")" no_private_key "$f"
done
flash --agent-dir "$tmp/agents" --token-file "$tmp/token" --node-name 'edge-{hostname}-{mac}' "$dir/pi-a.img" "$dir/pi-b.img"
check "directory, again: both unchanged" test "$(grep -c ': unchanged (' "$tmp/out")" = 2

# ---- 4. refusals ----
refused() { # NAME IMG MESSAGE args...: refused with MESSAGE, exit 1, the image untouched
  local name=$1 f=$2 msg=$3 before rc
  shift 3
  before=$(sum "$f")
  flash --token-file "$tmp/token" "$@" "$f"
  rc=$?
  check "$name: exit 1" test $rc -eq 1
  check "$name: '$msg'" grep -qF -- "$f: refused: $msg" "$tmp/out"
  check "$name: the image is untouched" test "$(sum "$f")" = "$before"
}
f="$tmp/nofat.img"
cp --sparse=always "$tmp/arm64.tmpl" "$f"
mdel -i "$f@@$((BOOT_LBA * 512))" ::/cmdline.txt
refused "no cmdline.txt" "$f" "no FAT boot partition with cmdline.txt" --agent "$AGENT_ARM64"
f="$tmp/noext.img"
cp --sparse=always "$tmp/arm64.tmpl" "$f"
dd if=/dev/zero of="$f" bs=1024 seek=$((ROOT_OFF / 1024)) count=4 conv=notrunc status=none
refused "no ext4 root" "$f" "no ext4 root partition (partition 2: no ext2/3/4 superblock)" --agent "$AGENT_ARM64"
f="$tmp/short.img"
head -c 300 /dev/zero >"$f"
refused "not an image" "$f" "no MBR" --agent "$AGENT_ARM64"
f="$tmp/wrongarch.img"
cp --sparse=always "$tmp/arm64.tmpl" "$f"
refused "wrong --agent architecture" "$f" "wrong architecture: the image is arm64 (/usr/bin/env is AArch64) but --agent $AGENT_ARMHF is armhf" --agent "$AGENT_ARMHF"
f="$tmp/armel.img"
cp --sparse=always "$tmp/armel.tmpl" "$f"
refused "armel userland" "$f" "its userland (/usr/bin/env) is 32-bit ARM soft-float (armel): drover-agent runs on arm64 and armhf" --agent-dir "$tmp/agents"
f="$tmp/cloned.img"
cp --sparse=always "$tmp/arm64.tmpl" "$f"
echo "not really a key" >"$tmp/node.key"
debugfs -w -R "mkdir /var/lib/drover" "$(ext "$f")" >/dev/null 2>&1
debugfs -w -R "mkdir /var/lib/drover/identity" "$(ext "$f")" >/dev/null 2>&1
debugfs -w -R "write $tmp/node.key /var/lib/drover/identity/node.key" "$(ext "$f")" >/dev/null 2>&1
refused "an image holding a device identity" "$f" "it holds a device's identity (/var/lib/drover/identity/node.key)" --agent "$AGENT_ARM64"
flash --agent "$AGENT_ARM64" --token-file "$tmp/token" --keep-identity "$f" >/dev/null
check "--keep-identity flashes it" grep -q "^$f: flashed" "$tmp/out"

# ---- 5. the bootstrap token, checked with the hub ----
if [ -x "$hub" ]; then
  "$hub" --data "$tmp/hub" --auth --no-tls --listen 127.0.0.1:0 --no-controllers \
    --broker tcp://127.0.0.1:9 >"$tmp/hub.out" 2>"$tmp/hub.err" &
  hubpid=$!
  url=
  for _ in $(seq 1 $((200 * tf))); do
    url=$(sed -n 's/^drover-hub: serving \(http:[^ ]*\)$/\1/p' "$tmp/hub.out")
    [ -n "$url" ] && break
    sleep 0.05
  done
  if [ -z "$url" ]; then
    echo "hub did not start:"
    cat "$tmp/hub.out" "$tmp/hub.err"
    exit 1
  fi
  export DROVER_HUB=$url DROVER_TOKEN
  DROVER_TOKEN=$(head -n1 "$tmp/hub/admin.token")
  "$cli" token create --ttl 1s >"$tmp/expired.token" 2>/dev/null
  "$cli" token create --ttl 1h --uses 1 >"$tmp/active.token" 2>/dev/null
  "$cli" token create >"$tmp/revoked.token" 2>/dev/null
  "$cli" token revoke "$(cat "$tmp/revoked.token")" >/dev/null
  "$cli" token create --role viewer >"$tmp/api.token" 2>/dev/null
  sleep 1.2
  f="$tmp/tok.img"
  cp --sparse=always "$tmp/arm64.tmpl" "$f"
  before=$(sum "$f")
  tokref() { # NAME TOKENFILE MESSAGE
    flash --agent "$AGENT_ARM64" --token-file "$2" "$f"
    local rc=$?
    check "$1: exit 1" test $rc -eq 1
    check "$1: '$3'" out_has "$3"
    check "$1: no image line, nothing written" test "$(grep -c "^$f:" "$tmp/out")" = 0
    check "$1: the image is untouched" test "$(sum "$f")" = "$before"
  }
  id() { sed -n 's/^drv1_\([0-9a-f]*\)_.*/\1/p' "$1"; }
  tokref "expired token" "$tmp/expired.token" "refused: bootstrap token $(id "$tmp/expired.token") expired at "
  tokref "revoked token" "$tmp/revoked.token" "refused: bootstrap token $(id "$tmp/revoked.token") was revoked"
  tokref "API token" "$tmp/api.token" "refused: token $(id "$tmp/api.token") is an API token, not a bootstrap token"
  tokref "unknown token" "$tmp/token" "refused: bootstrap token 0123abcd is unknown to the hub at $url"
  flash --agent "$AGENT_ARM64" --token-file "$tmp/active.token" "$f" "$dir/pi-a.img"
  rc=$?
  check "active token: exit 0" test $rc -eq 0
  check "active token: checked with the hub" out_has "bootstrap token $(id "$tmp/active.token"): active, expires "
  check "active token, 1 use for 2 images: a warning" out_has "has 1 uses left for 2 images"
  check "active token: flashed" grep -q "^$f: flashed (arm64" "$tmp/out"
  check "active token: in the image" test "$(ext_cat "$f" /etc/drover/bootstrap.token)" = "$(cat "$tmp/active.token")"
  check "active token: no private key in the image" no_private_key "$f"
  DROVER_TOKEN=garbage flash --agent "$AGENT_ARM64" --token-file "$tmp/active.token" "$f"
  check "a hub that refuses the CLI: cannot check, says why" out_has "cannot check the bootstrap token: the hub at $url answers 401"
  flash --agent "$AGENT_ARM64" --token-file "$tmp/expired.token" --no-token-check "$f"
  check "--no-token-check: not asked, flashed" grep -q "^$f: flashed (arm64" "$tmp/out"
  unset DROVER_HUB DROVER_TOKEN
else
  echo "ok - # SKIP no drover-hub in this build: the token checks need one"
fi

# ---- 6. usage errors name the option ----
"$cli" flash --agent "$AGENT_ARM64" --hub-url http://plain:80 --broker ssl://h:8883 --token-file "$tmp/token" "$img" >"$tmp/out" 2>&1
check "--hub-url http:// refused, named" out_has "--hub-url \"http://plain:80\": must be https://HOST[:PORT]"
"$cli" flash --agent "$AGENT_ARM64" --hub-url https://h --broker tcp://h:1883 --token-file "$tmp/token" "$img" >"$tmp/out" 2>&1
check "--broker tcp:// refused, named" out_has "--broker \"tcp://h:1883\": must be ssl://HOST:PORT"
"$cli" flash --agent "$AGENT_ARM64" --hub-url https://h --broker ssl://h:8883 --token-file "$tmp/token" --node-name 'Pi_{uuid}' "$img" >"$tmp/out" 2>&1
check "--node-name with an unknown placeholder refused, named" out_has "--node-name \"Pi_{uuid}\": unknown placeholder '{uuid}'"
"$cli" flash --agent "$AGENT_ARM64" --hub-url https://h --broker ssl://h:8883 --token-file "$tmp/token" "$img" >"$tmp/out" 2>&1
check "no CA fingerprint: refused, says where to get it" out_has "--ca-fingerprint: required"

echo "# whole test: $(since "$t0") s"
echo "flash tests: $fails failed"
[ "$fails" -eq 0 ]
