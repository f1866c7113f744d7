#!/usr/bin/env bash
# drover-agent running real pods from its manifest directory: crun, CNI, images from a real
# registry, restarts, volumes, adoption after an agent crash, and a power cut with the
# registry gone. Everything runs inside a network namespace made for this test.
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

registry_start || exit 1
layout="$(image_build_busybox busybox 1)" || exit 1
image_push "$layout" 1 test/busybox:1 || exit 1
IMG="$REGISTRY_ADDR/test/busybox:1"

device_start dev1 "containerLogMaxBytes: 8Ki
containerLogMaxFiles: 2" || { cat "$DEV_LOG"; exit 1; }

# 1. A pod runs to completion with the expected output.
cat >"$DEV_MANIFESTS/hello.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: hello}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: $IMG
    command: ["sh", "-c", "echo hello from \$(hostname); echo done >&2"]
YAML
phase_is() { [ "$(pod_field "$1" .status.phase)" = "$2" ]; }
if wait_for "hello Succeeded" 60 phase_is hello Succeeded; then
  ok "pod ran to completion"
else
  bad "pod ran to completion"; device_status; tail -30 "$DEV_LOG"
fi
logs="$(device_exec "$DROVER_AGENT_BIN" logs --config "$DEV_CFG" hello 2>&1)"
check "logs hold the output (got: $logs)" grep -q "hello from hello" <<<"$logs"
check "stderr is in the log too" grep -q "^done" <<<"$logs"
check "exit code 0 reported" test "$(pod_field hello '.status.containerStatuses[0].state.terminated.exitCode')" = 0


# 2. ConfigMap and Secret: volume files and env; two containers of one pod talk over
#    localhost; a hostPort answers from the host.
cat >"$DEV_MANIFESTS/web.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config}
data: {greeting: hello-from-configmap, index.html: "<h1>drover</h1>"}
---
apiVersion: v1
kind: Secret
metadata: {name: web-secret}
stringData: {token: s3cr3t-t0ken}
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: server
    image: $IMG
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
    ports: [{containerPort: 8080, hostPort: 18080}]
    volumeMounts: [{name: content, mountPath: /www}]
  - name: client
    image: $IMG
    env:
    - name: GREETING
      valueFrom: {configMapKeyRef: {name: web-config, key: greeting}}
    - name: TOKEN
      valueFrom: {secretKeyRef: {name: web-secret, key: token}}
    command: ["sh", "-c", "echo env=\$GREETING/\$TOKEN; echo secret=\$(cat /secret/token); while true; do wget -q -O - http://127.0.0.1:8080/index.html && echo; sleep 1; done"]
    volumeMounts: [{name: secret, mountPath: /secret, readOnly: true}]
  volumes:
  - name: content
    configMap: {name: web-config}
  - name: secret
    secret: {secretName: web-secret}
YAML
ready_is() { [ "$(pod_field "$1" '.status.conditions[] | select(.type == "Ready") | .status')" = True ]; }
if wait_for "web Ready" 60 ready_is web; then ok "two-container pod ready"; else bad "two-container pod ready"; device_status | jq '.pods[] | select(.metadata.name=="web")'; fi
client_log() { device_exec "$DROVER_AGENT_BIN" logs --config "$DEV_CFG" web client 2>/dev/null; }
log_has() { client_log | grep -q "$1"; }
check "env from configMap and secret" wait_for "env line" 20 log_has "env=hello-from-configmap/s3cr3t-t0ken"
check "secret volume file" log_has "secret=s3cr3t-t0ken"
check "containers of a pod talk over localhost" wait_for "localhost fetch" 20 log_has "<h1>drover</h1>"
ip_of_web="$(pod_field web .status.podIP)"
check "pod has an IP from the pod subnet ($ip_of_web)" grep -q '^10\.88\.' <<<"$ip_of_web"
hostport() { wget -q -T 2 -O - http://10.255.0.1:18080/index.html 2>/dev/null | grep -q drover || busybox wget -q -T 2 -O - http://10.255.0.1:18080/index.html 2>/dev/null | grep -q drover; }
check "hostPort answers from the host" wait_for "hostPort" 20 hostport

# 3. Restart back-off: a crashing container is restarted, then waits 10 s, doubling.
cat >"$DEV_MANIFESTS/crash.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  containers:
  - {name: main, image: $IMG, command: ["sh", "-c", "echo crashing; exit 3"]}
YAML
restarts_at_least() { [ "$(pod_field crash '.status.containerStatuses[0].restartCount')" -ge "$1" ] 2>/dev/null; }
check "crashing container restarted" wait_for "first restart" 30 restarts_at_least 1
t0=$SECONDS
check "second restart after back-off" wait_for "second restart" 30 restarts_at_least 2
waited=$((SECONDS - t0))
check "back-off held the restart ~10s (waited ${waited}s)" test "$waited" -ge 7
check "CrashLoopBackOff reported" test "$(pod_field crash '.status.containerStatuses[0].state.waiting.reason // .status.containerStatuses[0].lastState.terminated.reason')" != ""
check "last exit code 3" test "$(pod_field crash '.status.containerStatuses[0].lastState.terminated.exitCode // .status.containerStatuses[0].state.terminated.exitCode')" = 3

# 3a. Container logs are capped and rotated (8 KiB here), and `logs` still reads them whole.
cat >"$DEV_MANIFESTS/chatty.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: chatty}
spec:
  containers:
  - {name: c, image: $IMG, command: ["sh", "-c", "i=0; while [ \$i -lt 400 ]; do echo line-\$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=\$((i+1)); done; sleep 3600"]}
YAML
rotated() { ls "$DEV_DIR"/state/pods/*/logs/c.log.1 >/dev/null 2>&1 && [ "$(stat -c %s "$(ls "$DEV_DIR"/state/pods/*/logs/c.log.1 | head -n1)")" -gt 0 ]; }
check "container log rotated past containerLogMaxBytes" wait_for "log rotation" 40 rotated
cur_small() { local f; f="$(ls "$DEV_DIR"/state/pods/*/logs/c.log | head -n1)"; [ "$(stat -c %s "$f")" -le 16384 ]; }
check "current log back under the cap" cur_small
check "logs command reads rotated and current files" grep -q "line-399-" <<<"$(device_exec "$DROVER_AGENT_BIN" logs --config "$DEV_CFG" chatty)"
rm -f "$DEV_MANIFESTS/chatty.yaml"

# 3b. Probes: a failing liveness probe restarts the container; readiness follows a file.
cat >"$DEV_MANIFESTS/probes.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: probes}
spec:
  containers:
  - name: live
    image: $IMG
    command: ["sh", "-c", "touch /tmp/healthy; sleep 4; rm /tmp/healthy; sleep 3600"]
    livenessProbe:
      exec: {command: ["test", "-e", "/tmp/healthy"]}
      periodSeconds: 1
      failureThreshold: 2
  - name: ready
    image: $IMG
    command: ["sh", "-c", "mkdir -p /www; sleep 3; echo ok > /www/ready; httpd -f -p 8081 -h /www"]
    readinessProbe:
      httpGet: {path: /ready, port: 8081}
      periodSeconds: 1
YAML
live_restarts() { [ "$(pod_field probes '.status.containerStatuses[] | select(.name=="live") | .restartCount')" -ge 1 ] 2>/dev/null; }
check "liveness failure restarts the container" wait_for "liveness restart" 40 live_restarts
ctr_ready() { [ "$(pod_field probes ".status.containerStatuses[] | select(.name==\"$1\") | .ready")" = "$2" ]; }
check "readiness true once the HTTP probe answers" wait_for "readiness" 30 ctr_ready ready true

# 4. Bad input never stops the agent or other pods.
printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: broken}\nspec: {containers: [{name: c}]}\n' >"$DEV_MANIFESTS/broken.yaml"
problem() { device_status | jq -r '.manifestProblems[]' | grep -q 'broken.yaml.*spec.containers\[0\].image: required'; }
check "invalid manifest reported in status with its field path" wait_for "problem" 10 problem
cat >"$DEV_MANIFESTS/noimage.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: noimage}
spec:
  containers: [{name: c, image: $REGISTRY_ADDR/test/does-not-exist:1}]
YAML
cat >"$DEV_MANIFESTS/nobinary.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: nobinary}
spec:
  containers: [{name: c, image: $IMG, command: ["/no/such/binary"]}]
YAML
pull_err() { pod_field noimage .status.reason | grep -q ImagePullBackOff; }
check "unknown image: ImagePullBackOff" wait_for "pull error" 30 pull_err
check "unknown image: message names the image" grep -q "does-not-exist" <<<"$(pod_field noimage .status.message)"
nobin() { pod_field nobinary '.status.containerStatuses[0] | (.state.waiting.message // "") + (.lastState.terminated.reason // "") + (.state.terminated.reason // "")' | grep -Eqi "no such file|not found|executable|Error"; }
check "missing binary: clear error" wait_for "missing binary" 30 nobin
check "other pods still ready" ready_is web
check "agent still running" test -n "$(device_agent_pid)"

# 5. Adoption: kill -9 the agent; the containers keep running and are adopted, same PIDs.
pid_before="$(pod_field web '.status.containerStatuses[] | select(.name=="server") | .pid')"
apid="$(device_agent_pid)"
kill -9 "$apid"
new_agent() { local p; p="$(device_agent_pid)"; [ -n "$p" ] && [ "$p" != "$apid" ]; }
check "agent restarted by init" wait_for "new agent" 10 new_agent
adopted() { grep -q "container adopted.*pod=default/web container=server" "$DEV_LOG"; }
check "container adopted after kill -9" wait_for "adoption" 20 adopted
sleep 2
pid_after="$(pod_field web '.status.containerStatuses[] | select(.name=="server") | .pid')"
check "same container pid after adoption ($pid_before = $pid_after)" test -n "$pid_before" -a "$pid_before" = "$pid_after"
check "restart count unchanged by adoption" test "$(pod_field web '.status.containerStatuses[] | select(.name=="server") | .restartCount')" = 0
check "hostPort still answers" wait_for "hostPort after adoption" 10 hostport

# 6. Power cut: the device dies with everything on it; the registry is gone when it boots.
device_power_cut
registry_stop
device_start dev1 || { tail -30 "$DEV_LOG"; }
check "after power cut, web ready again without the registry" wait_for "web Ready after power cut" 60 ready_is web
check "after power cut, logs continue" wait_for "client log" 20 log_has "<h1>drover</h1>"
check "hostPort answers after power cut" wait_for "hostPort after power cut" 20 hostport

# 7. A full disk: a clear error in status, retried, and the agent keeps running.
registry_start >/dev/null || exit 1
image_push "$layout" 1 test/busybox:1 >/dev/null 2>&1 || exit 1
DEV_DIR=""
DEVICE_STATE_TMPFS=256k device_start full || tail -20 "$DEV_LOG"
cat >"$DEV_MANIFESTS/big.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: big}
spec:
  containers: [{name: c, image: $REGISTRY_ADDR/test/busybox:1}]
YAML
nospace() { pod_field big '(.status.message // "")' | grep -qi "no space left"; }
check "full disk: 'no space left' in the pod's status" wait_for "no space" 60 nospace
check "full disk: reason ImagePullBackOff (retried)" test "$(pod_field big .status.reason)" = ImagePullBackOff
check "full disk: agent still running" test -n "$(device_agent_pid)"

# 8. cgroups: on this hybrid host crun cannot enforce limits; without allowNoCgroups the agent
#    starts no pod and reports its node NotReady (reason CgroupControllersMissing), saying why
#    and what to set, rather than exiting or running pods without limits.
if device_exec grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
  echo "ok - (pure cgroup v2 host: limits enforceable, refusal not applicable)"
else
  sed -i 's/^allowNoCgroups: true$/allowNoCgroups: false/' "$DEV_CFG"
  kill "$(device_agent_pid)" # the device's init starts it again, with the new config
  ready_cond() { device_status 2>/dev/null | jq -r '.node.conditions[] | select(.type == "Ready") | "\(.status) \(.reason // "")"'; }
  not_ready() { [ "$(ready_cond)" = "False CgroupControllersMissing" ]; }
  check "no cgroups and not allowed: node Ready=False, reason CgroupControllersMissing" wait_for "NotReady" 20 not_ready
  msg=$(device_status | jq -r '.node.conditions[] | select(.type == "Ready") | .message')
  check "no cgroups: the condition says why ($msg)" grep -q "cgroup controller is bound to cgroup v1" <<<"$msg"
  check "no cgroups: the agent keeps running" test -n "$(device_agent_pid)"
  check "no cgroups: the pod does not start, its reason says why" test "$(pod_field big .status.reason)" = CgroupControllersMissing
  check "no cgroups: the log names allowNoCgroups" grep -q "runs no pods (set allowNoCgroups: true" "$DEV_LOG"
fi

echo "agent tests: $fails failed"
[ "$fails" -eq 0 ]
