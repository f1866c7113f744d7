#!/usr/bin/env bash
# One emulated arm64 device joins a real hub (tests/qemu/lib/vm.sh): QEMU (TCG, one CPU, 192 MiB)
# boots Debian's cloud-arm64 kernel with tests/qemu/mkguest's initramfs and root (busybox,
# crun, the CNI plugins, the cross-built drover-agent), no systemd. The hub runs in its default
# secure configuration (HTTPS, TLS-only broker; its certificate also names 10.0.2.2, where the
# guest sees the host), the device enrols with a bootstrap token of its own, its Node becomes
# Ready with kubernetes.io/arch=arm64, and a pod of a multi-arch image (arm64 + arm/v7 busybox)
# runs the arm64 variant with its memory limit in the guest's cgroup v2 (memory.max), CPU limit
# (cpu.max), and a pod over its memory limit is killed by the guest kernel's OOM killer and
# reported OOMKilled.
# Prints the times from QEMU's start to the agent's first log line and to the Node Ready.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib/vm.sh
source "$here/lib/vm.sh"
vm_netns_enter "$0" "$@"
if ! vm_require_tools; then
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
fi
vm_guest arm64 || exit 1
vm_guest armhf || exit 1 # its busybox makes the image's arm/v7 variant
vm_fleet_setup || { vm_dump; exit 1; }
echo "# hub $FLEET_HUB, broker port $FLEET_BROKER_PORT, registry $REGISTRY_ADDR (guests: $VM_REGISTRY)"

vm_device_start a64 arm64 || { vm_dump; exit 1; }
vm_need "the guest boots (rc reports up)" vm_wait_console a64 "guest up" 60 '^drover-guest: up '
t_up=$VM_WAIT_MS
vm_need "drover-agent starts" vm_wait_console a64 "the agent's first log line" 60 'ts=[^ ]+ level='
t_agent=$VM_WAIT_MS
vm_need "it enrols and its Node is Ready" fleet_wait "a64 Ready" 120 /api/v1/nodes/a64 "$FLEET_JQ_READY"
t_ready=$(($(fleet_ms) - ${VM_T0[a64]}))
echo "# QEMU start -> guest up: $t_up ms, -> agent's first log line: $t_agent ms, -> Node Ready: $t_ready ms"
label_is() { fleet_api "/api/v1/nodes/$1" | jq -e --arg k "$2" --arg v "$3" '.metadata.labels[$k] == $v' >/dev/null; }
check "the Node says kubernetes.io/arch=arm64" label_is a64 kubernetes.io/arch arm64
check "... and the bootstrap token's labels (device=a64)" label_is a64 device a64
check "the device key stayed in the guest: node.key 0600 there" \
  test "$(vm_exec a64 'stat -c %a /var/lib/drover/identity/node.key')" = 600

cat >"$VM_TMP/multi.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: multi}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: $VM_IMG_MULTI
    command: ["sh", "-c", "echo \"uname=\$(uname -m) variant=\$(cat /etc/drover-arch)\"; trap 'exit 0' TERM; while true; do sleep 1; done"]
    resources:
      limits: {memory: 24Mi, cpu: 200m}
YAML
fleet_apply "$VM_TMP/multi.yaml" >/dev/null
vm_need "the multi-arch pod is Running and Ready" \
  fleet_wait "multi Running" 180 /api/v1/namespaces/default/pods/multi \
  '.status.phase == "Running" and ([.status.conditions[]? | select(.type == "Ready") | .status] == ["True"])'
check "... on a64" test "$(fleet_api /api/v1/namespaces/default/pods/multi | jq -r .spec.nodeName)" = a64
logs_say() { fleet_logs "$1" 2>/dev/null | grep -x "$2" >/dev/null; }
check "it runs the arm64 variant: its log says uname=aarch64 variant=arm64" \
  wait_for "multi's log" $((30 * FLEET_TF)) logs_say multi "uname=aarch64 variant=arm64"
uid="$(fleet_api /api/v1/namespaces/default/pods/multi | jq -r .metadata.uid)"
cg="/sys/fs/cgroup/drover/pod-$uid/c"
mem="$(vm_exec a64 "cat $cg/memory.max")"
echo "# $cg/memory.max in the guest: $mem"
check "memory.max of its cgroup in the guest is 24Mi (25165824)" test "$mem" = 25165824
cpu="$(vm_exec a64 "cat $cg/cpu.max")"
check "cpu.max is 200m (20000 100000): $cpu" test "$cpu" = "20000 100000"
check "the container's processes are in that cgroup" \
  test -n "$(vm_exec a64 "cat $cg/cgroup.procs")"

# Over its limit: the guest kernel's OOM killer ends it (tail -n 1 holds its one 64 MiB line;
# pipefail makes tail's death the container's exit status).
cat >"$VM_TMP/hog.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: $VM_IMG_MULTI
    command: ["sh", "-c", "set -o pipefail; head -c 67108864 /dev/zero | tail -n 1 >/dev/null; rc=\$?; echo \"exit \$rc\"; exit \$rc"]
    resources:
      limits: {memory: 16Mi}
YAML
fleet_apply "$VM_TMP/hog.yaml" >/dev/null
check "a pod over its memory limit fails" \
  fleet_wait "hog Failed" 120 /api/v1/namespaces/default/pods/hog '.status.phase == "Failed"'
check "... its container killed by SIGKILL (exit code 137)" \
  fleet_wait "hog's exit code" 10 /api/v1/namespaces/default/pods/hog \
  '.status.containerStatuses[0].state.terminated.exitCode == 137'
check "... with the reason OOMKilled, as Kubernetes reports it" \
  fleet_wait "hog's reason" 10 /api/v1/namespaces/default/pods/hog \
  '.status.containerStatuses[0].state.terminated.reason == "OOMKilled"'
check "... as its log says" logs_say hog "exit 137"
oom_kills() { vm_exec a64 "dmesg | grep -c 'Memory cgroup out of memory: Killed process [0-9]* (tail)'"; }
check "the guest kernel's memory cgroup OOM killer did it (dmesg)" test "$(oom_kills)" -ge 1
vm_finish
