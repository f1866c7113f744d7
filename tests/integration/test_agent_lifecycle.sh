#!/usr/bin/env bash
# Container lifecycle hooks on a real drover-agent with crun: postStart runs before the container
# is reported Running and before the pod's next container starts; preStop (exec, httpGet, sleep)
# runs before SIGTERM, inside the grace period; a preStop that outruns the grace period is cut,
# the container gets SIGTERM and, 2 s later, SIGKILL; a failing postStart kills the container
# (FailedPostStartHook) and it restarts. Times are read from /proc/uptime, which the containers
# share with this script, and written to a hostPath directory. Then native sidecars (init
# containers with restartPolicy Always), activeDeadlineSeconds, and gRPC probes against a real gRPC server (grpcio,
# lib/grpchealthd.py): SERVING, NOT_SERVING, an unknown service, no server.
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

# 3b. A failed liveness probe restarts the container as the kubelet kills one: preStop first,
#     then SIGTERM, within the probe's terminationGracePeriodSeconds (not a bare SIGKILL).
cat >"$DEV_MANIFESTS/live.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: main
    image: $IMG
    command: ["sh", "-c", "trap '/out/ts live-term; exit 0' TERM; while true; do sleep 0.1; done"]
    livenessProbe:
      exec: {command: ["sh", "-c", "if [ -e /out/live-fail ]; then rm -f /out/live-fail; exit 1; fi"]}
      periodSeconds: 1
      failureThreshold: 1
      terminationGracePeriodSeconds: 10
    lifecycle:
      preStop: {exec: {command: ["sh", "-c", "/out/ts live-prestop; sleep 1"]}}
    volumeMounts: [{name: out, mountPath: /out}]
  volumes:
  - {name: out, hostPath: {path: $OUT, type: Directory}}
YAML
check "pod live Ready" wait_for "live Ready" 60 ready_is live
touch "$OUT/live-fail" # the probe fails once (it removes the file), so one restart
live_restarted() { [ "$(pod_field live '.status.containerStatuses[0].restartCount')" -ge 1 ] 2>/dev/null; }
check "failed liveness: container restarted" wait_for "live restart" 40 live_restarted
check "failed liveness: preStop ran before the restart" test -s "$OUT/live-prestop"
check "failed liveness: SIGTERM (not SIGKILL) after the preStop finished (preStop $(cat "$OUT/live-prestop" 2>/dev/null), TERM $(cat "$OUT/live-term" 2>/dev/null))" before "$(cat "$OUT/live-prestop" 2>/dev/null)" "$(cat "$OUT/live-term" 2>/dev/null)" 0.9
rm -f "$DEV_MANIFESTS/live.yaml"
check "pod live removed" wait_for "live gone" 40 gone live

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

# 5. Native sidecars (initContainers[].restartPolicy: Always): started in order, the next init
#    container waits for the sidecar's startup probe; kept running beside the app; restarted when
#    it exits; stopped after the app containers (a pod that completes, and a pod deleted).
rm -f "$OUT"/*
write_ts
cat >"$DEV_MANIFESTS/sc1.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: sc1}
spec:
  restartPolicy: Never
  initContainers:
  - name: agent
    image: $IMG
    restartPolicy: Always
    command: ["sh", "-c", "trap '/out/ts sc1-agent-term; exit 1' TERM; /out/ts sc1-agent-start; sleep 2; touch /tmp/up; while true; do sleep 0.1; done"]
    startupProbe: {exec: {command: ["test", "-e", "/tmp/up"]}, periodSeconds: 1}
    volumeMounts: [{name: out, mountPath: /out}]
  - name: setup
    image: $IMG
    command: ["sh", "-c", "/out/ts sc1-setup"]
    volumeMounts: [{name: out, mountPath: /out}]
  containers:
  - name: app
    image: $IMG
    command: ["sh", "-c", "/out/ts sc1-app-start; sleep 4; /out/ts sc1-app-end"]
    volumeMounts: [{name: out, mountPath: /out}]
  volumes:
  - {name: out, hostPath: {path: $OUT, type: Directory}}
YAML
app_started() { [ -s "$OUT/sc1-app-start" ]; }
check "sidecar pod: app started" wait_for "sc1 app" 60 app_started
check "the init container after the sidecar waited for its startup probe (~2 s)" before "$(cat "$OUT/sc1-agent-start")" "$(cat "$OUT/sc1-setup")" 1.5
check "sidecar still running beside the app" test "$(pod_field sc1 '.status.initContainerStatuses[] | select(.name=="agent") | .state | keys[0]')" = running
check "sidecar ready and started" test "$(pod_field sc1 '.status.initContainerStatuses[] | select(.name=="agent") | "\(.ready)/\(.started)"')" = true/true
check "pod Ready with the sidecar ready" wait_for "sc1 ready" 10 ready_is sc1
phase_is() { [ "$(pod_field "$1" .status.phase)" = "$2" ]; }
check "pod Succeeded once the app is done (the sidecar's exit code not counted)" wait_for "sc1 Succeeded" 30 phase_is sc1 Succeeded
check "the sidecar was stopped after the app ended" before "$(cat "$OUT/sc1-app-end")" "$(cat "$OUT/sc1-agent-term" 2>/dev/null)"
rm -f "$DEV_MANIFESTS/sc1.yaml"

cat >"$DEV_MANIFESTS/sc2.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: sc2}
spec:
  initContainers:
  - name: proxy
    image: $IMG
    restartPolicy: Always
    command: ["sh", "-c", "if [ ! -e /out/sc2-crashed ]; then touch /out/sc2-crashed; sleep 1; exit 3; fi; trap '/out/ts sc2-proxy-term; exit 0' TERM; while true; do sleep 0.1; done"]
    volumeMounts: [{name: out, mountPath: /out}]
  containers:
  - name: app
    image: $IMG
    command: ["sh", "-c", "trap 'sleep 1; /out/ts sc2-app-term; exit 0' TERM; while true; do sleep 0.1; done"]
    volumeMounts: [{name: out, mountPath: /out}]
  volumes:
  - {name: out, hostPath: {path: $OUT, type: Directory}}
YAML
sc_restarted() { [ "$(pod_field sc2 '.status.initContainerStatuses[0].restartCount')" -ge 1 ] 2>/dev/null; }
check "a sidecar that exits is restarted" wait_for "sc2 restart" 60 sc_restarted
check "pod with a restarted sidecar Ready" wait_for "sc2 ready" 30 ready_is sc2
rm -f "$DEV_MANIFESTS/sc2.yaml"
check "pod sc2 removed" wait_for "sc2 gone" 30 gone sc2
check "deleted pod: the sidecar stopped after the app container" before "$(cat "$OUT/sc2-app-term" 2>/dev/null)" "$(cat "$OUT/sc2-proxy-term" 2>/dev/null)"

# 6. activeDeadlineSeconds: the pod fails (DeadlineExceeded) once active that long; its
#    containers are stopped (SIGTERM, within the grace period) and not restarted.
cat >"$DEV_MANIFESTS/deadline.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: deadline}
spec:
  activeDeadlineSeconds: 4
  containers:
  - name: main
    image: $IMG
    command: ["sh", "-c", "trap '/out/ts deadline-term; exit 0' TERM; /out/ts deadline-start; while true; do sleep 0.1; done"]
    volumeMounts: [{name: out, mountPath: /out}]
  volumes:
  - {name: out, hostPath: {path: $OUT, type: Directory}}
YAML
check "deadline pod runs" wait_for "deadline running" 60 phase_is deadline Running
check "past activeDeadlineSeconds: Failed" wait_for "deadline Failed" 15 phase_is deadline Failed
check "reason DeadlineExceeded" test "$(pod_field deadline .status.reason)" = DeadlineExceeded
# The trap writes within a moment of the phase change (under load, after the status).
check "its container got SIGTERM" wait_for "deadline TERM" 10 test -s "$OUT/deadline-term"
check "the stop came about 4 s after the pod started" before "$(cat "$OUT/deadline-start")" "$(cat "$OUT/deadline-term" 2>/dev/null)" 2.5
sleep 2
check "not restarted" test "$(pod_field deadline '.status.containerStatuses[0].restartCount')" = 0
check "DeadlineExceeded event" grep -q 'pod event.*pod=default/deadline.*reason=DeadlineExceeded' "$DEV_LOG"
rm -f "$DEV_MANIFESTS/deadline.yaml"

# 7. gRPC probes (grpc.health.v1 over HTTP/2 prior knowledge) against grpcio's server, run in
#    this test's network namespace; the pod has the host's network, so its probes go to
#    127.0.0.1.
if /usr/bin/python3 -c 'import grpc' 2>/dev/null; then
  GRPC_PORT=18710
  echo SERVING >"$DEV_DIR/grpc-state"
  /usr/bin/python3 "$here/lib/grpchealthd.py" "$GRPC_PORT" "$DEV_DIR/grpc-state" >"$DEV_DIR/grpc.log" 2>&1 &
  grpc_pid=$!
  grpc_stop() { kill "$grpc_pid" 2>/dev/null; }
  registry_on_exit grpc_stop
  cat >"$DEV_MANIFESTS/grpc.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: grpc}
spec:
  hostNetwork: true
  containers:
  - name: server
    image: $IMG
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
    readinessProbe: {grpc: {port: $GRPC_PORT}, periodSeconds: 1}
  - name: named
    image: $IMG
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
    readinessProbe: {grpc: {port: $GRPC_PORT, service: drover.test}, periodSeconds: 1}
  - name: nosuch
    image: $IMG
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
    readinessProbe: {grpc: {port: $GRPC_PORT, service: nosuch}, periodSeconds: 1}
YAML
  cready() { [ "$(pod_field grpc ".status.containerStatuses[] | select(.name==\"$1\") | .ready")" = "$2" ]; }
  cdetail() { pod_field grpc ".status.containerStatuses[] | select(.name==\"$1\") | .probeFailures.readiness // \"\"" | grep -qF "$2"; }
  check "grpc: SERVING makes the container ready" wait_for "grpc server ready" 60 cready server true
  check "grpc: a named service the server knows: ready" wait_for "grpc named ready" 10 cready named true
  check "grpc: an unknown service: not ready, NotFound named" wait_for "grpc nosuch detail" 10 cdetail nosuch "rpc error: code = NotFound desc = unknown service"
  check "grpc: the unknown service never ready" cready nosuch false
  echo NOT_SERVING >"$DEV_DIR/grpc-state"
  check "grpc: NOT_SERVING makes it unready" wait_for "grpc unready" 15 cready server false
  check "grpc: the failure says NOT_SERVING" wait_for "grpc detail" 5 cdetail server 'service unhealthy (responded with "NOT_SERVING")'
  echo SERVING >"$DEV_DIR/grpc-state"
  check "grpc: SERVING again: ready again" wait_for "grpc ready again" 15 cready server true
  kill "$grpc_pid" 2>/dev/null
  check "grpc: server gone: unready" wait_for "grpc gone" 15 cready server false
  check "grpc: the failure names the connection" wait_for "grpc conn detail" 5 cdetail server "failed to connect service"
  rm -f "$DEV_MANIFESTS/grpc.yaml"
else
  bad "gRPC probes: python3-grpcio is missing (ports/debian/install-deps installs it)"
fi

check "agent still running" test -n "$(device_agent_pid)"
[ "$fails" -eq 0 ] || { echo "--- agent log (tail)"; tail -60 "$DEV_LOG"; }
echo "# $fails failure(s)"
[ "$fails" -eq 0 ]
