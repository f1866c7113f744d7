#!/usr/bin/env bash
# Container lifecycle hooks on a real drover-agent with crun: postStart runs before the container
# is reported Running and before the pod's next container starts; preStop (exec, httpGet, sleep)
# runs before SIGTERM, inside the grace period; a preStop that outruns the grace period is cut,
# the container gets SIGTERM and, 2 s later, SIGKILL; a failing postStart kills the container
# (FailedPostStartHook) and it restarts. Times are read from /proc/uptime, which the containers
# share with this script, and written to a hostPath directory.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/device.sh"
netns_enter "$0" "$@"
source "$here/lib/registry.sh"
registry_require_tools || exit 77

fails=0
ok() { echo "ok - $1"; }
bad() { echo "not ok - $1"; fails=$((fails + 1)); }
check() { local name="$1"; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
uptime_now() { cut -d' ' -f1 /proc/uptime; }
# before A B [MIN]: A < B, with at least MIN seconds between them.
before() { awk -v a="$1" -v b="$2" -v m="${3:-0}" 'BEGIN { exit !(a != "" && b != "" && b - a >= m) }'; }
between() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v != "" && v >= lo && v <= hi) }'; }

registry_start || exit 1
layout="$(image_build_busybox busybox 1)" || exit 1
image_push "$layout" 1 test/busybox:1 || exit 1
IMG="$REGISTRY_ADDR/test/busybox:1"

device_start dev1 || { cat "$DEV_LOG"; exit 1; }
OUT="$DEV_DIR/out"
mkdir -p "$OUT"
chmod 777 "$OUT"
# ts NAME, in a container: the uptime now into /out/NAME.
write_ts() { printf '#!/bin/sh\nread u rest </proc/uptime\necho "$u" >"/out/$1"\n' >"$OUT/ts"; chmod 755 "$OUT/ts"; }
write_ts

# 1. postStart (exec, 3 s) holds the container out of Running and the second container back;
#    preStop (exec, 2 s) runs before the TERM trap fires.
cat >"$DEV_MANIFESTS/hooks.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: hooks}
spec:
  terminationGracePeriodSeconds: 20
  containers:
  - name: main
    image: $IMG
    command: ["sh", "-c", "trap '/out/ts term; exit 0' TERM; /out/ts main-start; while true; do sleep 0.1; done"]
    lifecycle:
      postStart: {exec: {command: ["sh", "-c", "sleep 3; /out/ts poststart"]}}
      preStop: {exec: {command: ["sh", "-c", "/out/ts prestop; sleep 2; /out/ts prestop-end"]}}
    volumeMounts: [{name: out, mountPath: /out}]
  - name: second
    image: $IMG
    command: ["sh", "-c", "trap 'exit 0' TERM; /out/ts second-start; while true; do sleep 0.1; done"]
    volumeMounts: [{name: out, mountPath: /out}]
  volumes:
  - {name: out, hostPath: {path: $OUT, type: Directory}}
YAML
started() { [ -s "$OUT/main-start" ]; }
check "main container started" wait_for "main started" 60 started
st_main="$(pod_field hooks '.status.containerStatuses[] | select(.name=="main") | .state | keys[0]')"
why_main="$(pod_field hooks '.status.containerStatuses[] | select(.name=="main") | .state.waiting.reason')"
phase="$(pod_field hooks .status.phase)"
check "during postStart: main is waiting/ContainerCreating (got $st_main/$why_main)" test "$st_main/$why_main" = waiting/ContainerCreating
check "during postStart: pod is Pending (got $phase)" test "$phase" = Pending
check "during postStart: the second container has not started" test ! -e "$OUT/second-start"
ready_is() { [ "$(pod_field "$1" '.status.conditions[] | select(.type == "Ready") | .status')" = True ]; }
check "pod Ready after postStart" wait_for "hooks Ready" 30 ready_is hooks
check "postStart ran ~3 s after the container started" before "$(cat "$OUT/main-start")" "$(cat "$OUT/poststart")" 2.5
check "second container started after postStart returned" before "$(cat "$OUT/poststart")" "$(cat "$OUT/second-start")"
check "main Running after postStart" test "$(pod_field hooks '.status.containerStatuses[] | select(.name=="main") | .state | keys[0]')" = running

t_del="$(uptime_now)"
rm -f "$DEV_MANIFESTS/hooks.yaml"
gone() { [ -z "$(pod_field "$1" .metadata.name)" ]; }
check "pod hooks removed" wait_for "hooks gone" 40 gone hooks
t_gone="$(uptime_now)"
echo "# delete=$t_del prestop=$(cat "$OUT/prestop" 2>/dev/null) prestop-end=$(cat "$OUT/prestop-end" 2>/dev/null) term=$(cat "$OUT/term" 2>/dev/null) gone=$t_gone"
check "preStop ran after the delete" before "$t_del" "$(cat "$OUT/prestop" 2>/dev/null)"
check "SIGTERM came after preStop finished (2 s later)" before "$(cat "$OUT/prestop" 2>/dev/null)" "$(cat "$OUT/term" 2>/dev/null)" 1.9
check "SIGTERM came after the preStop's last write" before "$(cat "$OUT/prestop-end" 2>/dev/null)" "$(cat "$OUT/term" 2>/dev/null)"
check "no SIGKILL wait: gone within 8 s of the delete" before "$t_gone" "$(awk -v a="$t_del" 'BEGIN{print a + 8}')"

# 2. preStop httpGet (to the pod IP) and sleep.
rm -f "$OUT"/*
write_ts
cat >"$DEV_MANIFESTS/web.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: httpd
    image: $IMG
    command: ["sh", "-c", "mkdir -p /www; echo ok > /www/index.html; exec httpd -f -vv -p 8080 -h /www 2>>/out/httpd.log"]
    ports: [{name: http, containerPort: 8080}]
    lifecycle:
      preStop: {httpGet: {path: /prestop-hook, port: http}}
    volumeMounts: [{name: out, mountPath: /out}]
  - name: sleeper
    image: $IMG
    command: ["sh", "-c", "trap '/out/ts sleeper-term; exit 0' TERM; while true; do sleep 0.1; done"]
    lifecycle:
      preStop: {sleep: {seconds: 2}}
    volumeMounts: [{name: out, mountPath: /out}]
  volumes:
  - {name: out, hostPath: {path: $OUT, type: Directory}}
YAML
check "pod web Ready" wait_for "web Ready" 60 ready_is web
t_del="$(uptime_now)"
rm -f "$DEV_MANIFESTS/web.yaml"
check "pod web removed" wait_for "web gone" 40 gone web
check "httpGet preStop reached the container (httpd log)" grep -q "prestop-hook" "$OUT/httpd.log"
check "sleep preStop held SIGTERM 2 s (delete $t_del, TERM $(cat "$OUT/sleeper-term" 2>/dev/null))" before "$t_del" "$(cat "$OUT/sleeper-term" 2>/dev/null)" 1.9

# 3. A preStop longer than the grace period (3 s): cut, SIGTERM (ignored here), SIGKILL 2 s
#    later; FailedPreStopHook reported.
cat >"$DEV_MANIFESTS/slow.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: slow}
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - name: main
    image: $IMG
    command: ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"]
    lifecycle:
      preStop: {exec: {command: ["sleep", "60"]}}
YAML
check "pod slow Ready" wait_for "slow Ready" 60 ready_is slow
t_del="$(uptime_now)"
rm -f "$DEV_MANIFESTS/slow.yaml"
check "pod slow removed" wait_for "slow gone" 30 gone slow
t_gone="$(uptime_now)"
took="$(awk -v a="$t_del" -v b="$t_gone" 'BEGIN{printf "%.1f", b - a}')"
check "grace 3 s + 2 s after a preStop that outran it (took ${took}s)" between "$took" 4.5 8.5
check "FailedPreStopHook reported" grep -q 'pod event.*pod=default/slow.*reason=FailedPreStopHook' "$DEV_LOG"

# 4. A failing postStart kills the container, which restarts per restartPolicy.
cat >"$DEV_MANIFESTS/badpost.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: badpost}
spec:
  containers:
  - name: main
    image: $IMG
    command: ["sleep", "3600"]
    lifecycle:
      postStart: {exec: {command: ["sh", "-c", "echo no-good; exit 7"]}}
YAML
restarted() { [ "$(pod_field badpost '.status.containerStatuses[0].restartCount')" -ge 1 ] 2>/dev/null; }
check "failed postStart: container killed and restarted" wait_for "badpost restart" 40 restarted
check "FailedPostStartHook reported with the command's output" grep -q 'pod event.*pod=default/badpost.*reason=FailedPostStartHook.*exited with status 7: no-good' "$DEV_LOG"
check "failed postStart: never Ready" test "$(pod_field badpost '.status.conditions[] | select(.type == "Ready") | .status')" = False
rm -f "$DEV_MANIFESTS/badpost.yaml"

check "agent still running" test -n "$(device_agent_pid)"
[ "$fails" -eq 0 ] || { echo "--- agent log (tail)"; tail -60 "$DEV_LOG"; }
echo "# $fails failure(s)"
[ "$fails" -eq 0 ]
