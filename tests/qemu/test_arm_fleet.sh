#!/usr/bin/env bash
# An emulated ARM fleet (tests/qemu/lib/vm.sh): two arm64 devices (qemu-system-aarch64,
# cortex-a72, Debian's cloud-arm64 kernel) and one armhf device (qemu-system-arm, cortex-a15,
# Debian's armmp-lpae kernel) boot, enrol with bootstrap tokens of their own and join a hub in
# its default secure configuration. A Deployment of a multi-arch image (arm64 + arm/v7 busybox)
# spreads over the three; each pod runs its device's variant (its log says uname -m and the
# image's /etc/drover-arch), with its limits in the guest's cgroup v2, and reports Ready through
# an exec readiness probe. One arm64 device is killed hard (kill -9 of its QEMU): it goes
# NotReady, its pod comes back on the others; it boots again from its disk, rejoins with its
# identity (its token was good for one use) and removes the stale pod it took back from its
# saved desired state.
# A Deployment whose image has no armhf variant never lands on the armhf device (the hub reads
# image platforms from the registry), and a pod whose image has no ARM variant stays Pending,
# saying why. When this build's drover
# has a flash command, arm64-a boots from a Raspberry Pi OS-style image that it prepared.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib/vm.sh
source "$here/lib/vm.sh"
vm_netns_enter "$0" "$@"
if ! vm_require_tools; then
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
fi
t_test="$(fleet_ms)"
vm_guest arm64 || exit 1
vm_guest armhf || exit 1
vm_fleet_setup || { vm_dump; exit 1; }
echo "# hub $FLEET_HUB, broker port $FLEET_BROKER_PORT, registry $REGISTRY_ADDR (guests: $VM_REGISTRY)"

# ---- boot ----
declare -A arch_of=([arm64-a]=arm64 [arm64-b]=arm64 [armhf-a]=armhf)
declare -A k8s_arch=([arm64]=arm64 [armhf]=arm)
declare -A uname_of=([arm64]=aarch64 [armhf]=armv7l)
nodes="arm64-a arm64-b armhf-a"
# arm64-a boots from a Raspberry Pi OS-style image that `drover flash` prepared, when this
# build's drover has that command (DROVER_QEMU_FLASH_CLI names another drover).
flash_cli="$(vm_flash_cli)"
for n in $nodes; do
  how=""
  [ "$n" = arm64-a ] && [ -n "$flash_cli" ] && how=--flash
  vm_device_start "$n" "${arch_of[$n]}" $how || { vm_dump; exit 1; }
done
if [ -n "$flash_cli" ]; then
  check "arm64-a's image was flashed by drover flash ($flash_cli)" \
    grep -q ': flashed (arm64, node arm64-a' "$VM_TMP/arm64-a/flash.out"
  check "... and runs the agent drover flash put there" \
    vm_wait_console arm64-a "the flashed agent" 120 'starting /usr/local/bin/drover-agent'
else
  FLEET_CHECKS=$((FLEET_CHECKS + 1))
  echo "ok $FLEET_CHECKS - arm64-a boots from an image of drover flash # SKIP this drover has no flash command (DROVER_QEMU_FLASH_CLI)"
fi
for n in $nodes; do
  vm_need "$n: drover-agent starts" vm_wait_console "$n" "the agent's first log line" 120 'ts=[^ ]+ level='
  t_agent=$VM_WAIT_MS
  vm_need "$n: enrols, Node Ready" fleet_wait "$n Ready" 180 "/api/v1/nodes/$n" "$FLEET_JQ_READY"
  echo "# $n (${arch_of[$n]}): QEMU start -> agent's first log line $t_agent ms, -> Node Ready $(($(fleet_ms) - ${VM_T0[$n]})) ms (three booting at once)"
done
arch_label() { fleet_api "/api/v1/nodes/$1" | jq -r '.metadata.labels["kubernetes.io/arch"]'; }
for n in $nodes; do
  check "$n: kubernetes.io/arch=${k8s_arch[${arch_of[$n]}]}" \
    test "$(arch_label "$n")" = "${k8s_arch[${arch_of[$n]}]}"
done

# ---- a multi-arch Deployment over the three ----
cat >"$VM_TMP/spread.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: spread}
spec:
  replicas: 3
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: c
        image: $VM_IMG_MULTI
        command: ["sh", "-c", "echo \"uname=\$(uname -m) variant=\$(cat /etc/drover-arch)\"; trap 'exit 0' TERM; while true; do sleep 1; done"]
        readinessProbe:
          exec: {command: ["cat", "/etc/drover-arch"]}
          periodSeconds: 2
        resources:
          requests: {cpu: 50m, memory: 16Mi}
          limits: {cpu: 250m, memory: 32Mi}
YAML
fleet_apply "$VM_TMP/spread.yaml" >/dev/null
t0="$(fleet_ms)"
vm_need "3 replicas Running and Ready" fleet_running app=spread 3 240
echo "# apply -> 3 Running and Ready: $(fleet_elapsed "$t0") s (first pull on each device)"
spread_pods() { fleet_pods app=spread | jq -r '.items[] | select(.metadata.deletionTimestamp == null) | "\(.metadata.name) \(.spec.nodeName) \(.metadata.uid)"'; }
check "one on each device" test "$(spread_pods | awk '{print $2}' | sort -u | tr '\n' ' ')" = "arm64-a arm64-b armhf-a "
logs_say() { fleet_logs "$1" 2>/dev/null | grep -x "$2" >/dev/null; }
# Each pod: its device's variant, and its limits in that guest's cgroup.
pods_check() {
  local pod node uid a cg
  while read -r pod node uid; do
    a="${arch_of[$node]}"
    check "$pod on $node runs the $a variant (uname=${uname_of[$a]} variant=$a)" \
      wait_for "$pod's log" $((30 * FLEET_TF)) logs_say "$pod" "uname=${uname_of[$a]} variant=$a"
    cg="/sys/fs/cgroup/drover/pod-$uid/c"
    check "$pod: memory.max 32Mi and cpu.max 250m in $node's cgroup" \
      test "$(vm_exec "$node" "cat $cg/memory.max $cg/cpu.max" | tr '\n' ' ')" = "33554432 25000 100000 "
  done < <(spread_pods)
}
pods_check

# ---- a power cut: kill -9 of arm64-b's QEMU ----
victim=arm64-b
vpod="$(spread_pods | awk -v n="$victim" '$2 == n {print $1}')"
echo "# killing $victim's QEMU (runs $vpod)"
vm_kill "$victim"
t0="$(fleet_ms)"
vm_need "$victim NotReady" wait_for "$victim NotReady" $((60 * FLEET_TF)) fleet_node_not_ready "$victim"
echo "# kill -9 -> NotReady: $(fleet_elapsed "$t0") s"
replaced_jq() {
  printf '[.items[] | select(.metadata.deletionTimestamp == null)] as $p | ($p | length) == 3 and ($p | all(.spec.nodeName != "%s" and .status.phase == "Running" and ([.status.conditions[]? | select(.type == "Ready") | .status] == ["True"])))' "$1"
}
vm_need "its pod comes back on the others: 3 Running off $victim" \
  fleet_wait "replacement off $victim" 120 "$(fleet_pods_path app=spread)" "$(replaced_jq "$victim")"
echo "# kill -9 -> replacement Running: $(fleet_elapsed "$t0") s"
pods_check

# ---- it boots again from its disk ----
vm_boot "$victim"
t0="$(fleet_ms)"
vm_need "$victim: the agent starts again" vm_wait_console "$victim" "the agent's first log line" 120 'ts=[^ ]+ level='
vm_need "$victim rejoins: Ready" wait_for "$victim Ready" $((120 * FLEET_TF)) fleet_node_ready "$victim"
echo "# reboot -> Ready: $(fleet_elapsed "$t0") s"
check "... with its identity: no enrollment this boot (its token was for one use)" \
  eval "! grep -q 'msg=\"enrolled with the hub\"' '$(vm_console "$victim")'"
check "... it took its stale pod $vpod back from its saved desired state" \
  grep -q "msg=\"pod added\" pod=default/$vpod " "$(vm_console "$victim")"
device_runs() { vm_agent_status "$1" | jq -r '.pods[]? | select(.status.phase == "Running") | .metadata.name'; }
stale_removed() {
  grep -Eq "msg=\"pod removed\" pod=default/$vpod([^a-z0-9-]|\$)" "$(vm_console "$victim")" &&
    ! device_runs "$victim" | grep -x "$vpod" >/dev/null
}
check "... and removes it once the hub's desired state arrives" \
  wait_for "$vpod removed on $victim" $((60 * FLEET_TF)) stale_removed
# Whether its container ran again before that depends on which came first after the boot.
if grep -q "msg=\"container started\" pod=default/$vpod " "$(vm_console "$victim")"; then
  echo "# (its container had started again from the local image store in the meantime)"
else
  echo "# (the hub's desired state came before its container started again)"
fi
devices_running() {
  local n total=0 c
  for n in $nodes; do
    c="$(device_runs "$n" | grep -c '^spread-')"
    total=$((total + c))
  done
  [ "$total" -eq 3 ]
}
check "the devices run exactly 3 spread pods (no duplicate)" \
  wait_for "3 spread pods on the devices" $((30 * FLEET_TF)) devices_running
check "the hub still shows 3 Running" fleet_running app=spread 3 10

# ---- image platforms ----
cat >"$VM_TMP/a64only.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: a64only}
spec:
  replicas: 3
  selector: {matchLabels: {app: a64only}}
  template:
    metadata: {labels: {app: a64only}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: c
        image: $VM_IMG_ARM64
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
        resources:
          requests: {cpu: 50m, memory: 16Mi}
---
apiVersion: v1
kind: Pod
metadata: {name: nowhere}
spec:
  containers:
  - name: c
    image: $VM_IMG_AMD64
    command: ["sh", "-c", "sleep 3600"]
YAML
fleet_apply "$VM_TMP/a64only.yaml" >/dev/null
check "the arm64-only Deployment's 3 pods are Running and Ready" fleet_running app=a64only 3 120
echo "# a64only runs on: $(fleet_pods app=a64only | jq -r '[.items[].spec.nodeName] | sort | join(" ")')"
on_armhf() { fleet_pods app=a64only | jq -e '[.items[] | select(.spec.nodeName == "armhf-a")] | length > 0' >/dev/null; }
check "... none of them on armhf-a (the image has no arm variant)" eval '! on_armhf'
unschedulable_jq='(.spec.nodeName // "") == "" and .status.phase == "Pending" and ([.status.conditions[]? | select(.type == "PodScheduled" and .status == "False" and .reason == "Unschedulable" and (.message | test("linux/amd64")))] | length > 0)'
check "the amd64-only pod stays Pending: Unschedulable, naming what its image offers" \
  fleet_wait "nowhere Unschedulable" 60 /api/v1/namespaces/default/pods/nowhere "$unschedulable_jq"
echo "# nowhere: $(fleet_api /api/v1/namespaces/default/pods/nowhere | jq -c '[.status.conditions[]? | select(.type == "PodScheduled") | {reason, message}]')"
check "... and no device runs it" \
  eval '! for n in $nodes; do device_runs "$n"; done | grep -x nowhere >/dev/null'

echo "# whole test: $(fleet_elapsed "$t_test") s"
vm_finish
