#!/usr/bin/env bash
# The drover CLI against a real drover-hub on a free 127.0.0.1 port with a temp data
# directory: apply (created / unchanged / configured), get tables and -o json/yaml, label
# selectors, field paths of broken manifests, delete, scale, cordon/uncordon, describe with
# events, unknown kinds, an unreachable hub, and watch.
set -uo pipefail
hub="${DROVER_BUILD_DIR:?}/hub/drover-hub"
drover="${DROVER_BUILD_DIR}/cli/drover"
src="${DROVER_SOURCE_DIR:?}"
tf=${DROVER_TEST_TIME_FACTOR:-1}
for tool in curl jq; do
  if ! command -v $tool >/dev/null; then
    echo "$tool missing"
    [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
    exit 1
  fi
done
[ -x "$hub" ] || { echo "no $hub"; exit 1; }
[ -x "$drover" ] || { echo "no $drover"; exit 1; }
tmp=$(mktemp -d)
hubpid=
watchpid=
cleanup() {
  [ -n "$watchpid" ] && kill "$watchpid" 2>/dev/null
  [ -n "$hubpid" ] && kill -9 "$hubpid" 2>/dev/null && wait "$hubpid" 2>/dev/null
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

"$hub" --data "$tmp/data" --listen 127.0.0.1:0 --no-auth --no-tls --no-broker-tls --no-controllers >"$tmp/hub.out" 2>"$tmp/hub.err" &
hubpid=$!
url=
for _ in $(seq 1 $((100 * tf))); do
  url=$(sed -n 's/^drover-hub: serving \(http:[^ ]*\)$/\1/p' "$tmp/hub.out")
  [ -n "$url" ] && break
  sleep 0.05
done
[ -n "$url" ] || { echo "hub did not start:"; cat "$tmp/hub.err"; exit 1; }
export DROVER_HUB=$url
export HOME=$tmp # no user config file interferes
# run ARGS...: stdout in $tmp/out, stderr in $tmp/err, exit status in $rc.
run() {
  "$drover" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
}
has() { grep -q -- "$1" "$tmp/$2"; }

run apply -f "$src/examples"
check "apply examples: exit 0 (rc $rc)" test $rc = 0
check "apply examples: deployment.apps/nginx created" has '^deployment.apps/nginx created$' out
check "apply examples: every object created" test "$(grep -c ' created$' "$tmp/out")" -ge 4
run apply -f "$src/examples"
check "apply again: all unchanged" \
  test $rc = 0 -a "$(grep -c ' unchanged$' "$tmp/out")" = "$(wc -l <"$tmp/out")"

sed 's/^  replicas: 3$/  replicas: 4/' "$src/examples/nginx-deployment.yaml" >"$tmp/nginx4.yaml"
run apply -f - <"$tmp/nginx4.yaml"
check "changed replicas from stdin: configured" has '^deployment.apps/nginx configured$' out
check "the hub has replicas 4" \
  test "$(curl -s "$url/apis/apps/v1/namespaces/default/deployments/nginx" | jq .spec.replicas)" = 4

# Annotations the hub's controllers own (revision history) survive a re-apply.
DEP=$url/apis/apps/v1/namespaces/default/deployments/nginx
curl -s "$DEP" | jq -c '.spec.template as $t | [{revision: 1, hash: "a", template: ($t |
  .spec.containers[0].image = "nginx:1.24-alpine" |
  .metadata.annotations["kubernetes.io/change-cause"] = "image 1.24")},
  {revision: 2, hash: "b", template: $t}] | tostring |
  {metadata: {annotations: {"drover.io/history": ., "deployment.kubernetes.io/revision": "2"}}}' \
  >"$tmp/hist.json"
curl -s -o /dev/null -X PATCH -H 'Content-Type: application/merge-patch+json' "$DEP" \
  --data-binary @"$tmp/hist.json"
run apply -f "$tmp/nginx4.yaml"
check "re-apply with hub-owned annotations: unchanged" has '^deployment.apps/nginx unchanged$' out
check "hub-owned annotation kept" \
  test "$(curl -s "$DEP" | jq -r '.metadata.annotations["deployment.kubernetes.io/revision"]')" = 2
run rollout history deployment nginx
check "rollout history: both revisions with the change cause" \
  bash -c "grep -q '^1  *image 1.24$' '$tmp/out' && grep -q '^2 ' '$tmp/out'"
run rollout undo deployment nginx
check "rollout undo: rolled back" has '^deployment.apps/nginx rolled back$' out
check "rollout undo: the previous template's image" \
  test "$(curl -s "$DEP" | jq -r '.spec.template.spec.containers[0].image')" = nginx:1.24-alpine
run rollout undo deployment nginx --to-revision 7
check "rollout undo to a revision not kept: exit 1" \
  bash -c "test $rc = 1 && grep -q 'no revision 7' '$tmp/err'"
run rollout pause deployment nginx
check "rollout pause: exit 0, deployment.apps/nginx paused" \
  bash -c "test $rc = 0 && grep -q 'deployment.apps/nginx paused' '$tmp/out'"
run rollout resume deployment nginx
check "rollout resume: exit 0" test $rc = 0
run rollout frobnicate deployment nginx
check "rollout with an unknown command: usage error 2" test $rc = 2
run apply -f "$tmp/nginx4.yaml"
check "apply after undo: configured back to the manifest" has '^deployment.apps/nginx configured$' out

run get deployments
check "get deployments: header" has '^NAME  *READY  *UP-TO-DATE  *AVAILABLE  *AGE$' out
check "get deployments: nginx row 0/4" has '^nginx  *0/4 ' out
run get deploy nginx -o json
check "get -o json: the object" test "$(jq -r .metadata.name "$tmp/out")/$(jq .spec.replicas "$tmp/out")" = nginx/4
run get deployment nginx -o yaml
check "get -o yaml: kind line" has '^kind: Deployment$' out
run get deploy -l app.kubernetes.io/name=nginx -o name
check "get -l matching: nginx" test "$(cat "$tmp/out")" = deployment.apps/nginx
run get deploy -l app.kubernetes.io/name=other
check "get -l not matching: no resources" has 'No resources found' err
run get ds -A
check "get ds -A: namespace column" has '^monitoring  *node-exporter ' out

sed 's/^\( *\)image: .*$/\1image: ""/' "$src/examples/nginx-deployment.yaml" |
  sed 's/^  name: nginx$/  name: broken/' >"$tmp/broken.yaml"
run apply -f "$tmp/broken.yaml"
check "broken manifest: exit 1 (rc $rc)" test $rc = 1
check "broken manifest: field path printed" has 'spec.template.spec.containers\[0\].image' err
run apply -f "$tmp/does-not-exist.yaml"
check "missing file: exit 1" test $rc = 1

run scale deployment nginx --replicas 2
check "scale: scaled" test $rc = 0 -a "$(cat "$tmp/out")" = "deployment.apps/nginx scaled"
check "scale: replicas 2 on the hub" \
  test "$(curl -s "$url/apis/apps/v1/namespaces/default/deployments/nginx" | jq .spec.replicas)" = 2
run scale deployment nginx --replicas=-1
check "scale with a negative count: usage error 2" test $rc = 2

curl -s -o /dev/null -X POST -H 'Content-Type: application/json' "$url/api/v1/nodes" \
  -d '{"apiVersion":"v1","kind":"Node","metadata":{"name":"pi-1"}}'
run cordon pi-1
check "cordon: cordoned" has '^node/pi-1 cordoned$' out
run get nodes
check "get nodes: SchedulingDisabled" has '^pi-1  *NotReady,SchedulingDisabled ' out
run uncordon pi-1
run get nodes
check "uncordon: schedulable again" bash -c "grep -q '^pi-1 ' '$tmp/out' && ! grep -q SchedulingDisabled '$tmp/out'"

curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
  "$url/api/v1/namespaces/default/events" -d '{"apiVersion":"v1","kind":"Event",
  "metadata":{"name":"nginx.1","namespace":"default"},"type":"Normal","reason":"ScalingReplicaSet",
  "message":"Scaled to 2","involvedObject":{"apiVersion":"apps/v1","kind":"Deployment","name":"nginx","namespace":"default"}}'
run describe deployment nginx
check "describe: the object as YAML" has '^  name: nginx$' out
check "describe: its events" has 'ScalingReplicaSet.*Scaled to 2' out
run describe configmap web-config
check "describe without events: Events: <none>" has '^Events: <none>$' out

run get widgets
check "unknown kind: exit 1 and a clear error" \
  bash -c "test $rc = 1 && grep -q 'resource type \"widgets\"' '$tmp/err'"
run get deploy nosuch
check "get a missing object: NotFound" bash -c "test $rc = 1 && grep -q NotFound '$tmp/err'"

# Watch: a ConfigMap created meanwhile shows up as a row.
"$drover" get configmaps -w >"$tmp/watch" 2>"$tmp/watch.err" &
watchpid=$!
sleep $((1 * tf))
curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
  "$url/api/v1/namespaces/default/configmaps" -d '{"metadata":{"name":"made-meanwhile"},"data":{"a":"1"}}'
for _ in $(seq 1 $((100 * tf))); do
  grep -q '^made-meanwhile ' "$tmp/watch" && break
  sleep 0.05
done
check "watch: a row for the object created meanwhile" grep -q '^made-meanwhile  *1 ' "$tmp/watch"
kill $watchpid 2>/dev/null
wait $watchpid 2>/dev/null
watchpid=

# rollout status: waits until the status shows the current generation rolled out.
D=$url/apis/apps/v1/namespaces/default/deployments/nginx
run rollout status deployment nginx --timeout 1
check "rollout status before the rollout: times out, exit 1" \
  bash -c "test $rc = 1 && grep -q 'timed out' '$tmp/err'"
gen=$(curl -s "$D" | jq .metadata.generation)
curl -s -o /dev/null -X PUT -H 'Content-Type: application/json' "$D/status" -d "{\"status\":{\"observedGeneration\":$gen,\"replicas\":2,\"updatedReplicas\":2,\"readyReplicas\":2,\"availableReplicas\":2}}"
run rollout status deploy/nginx --timeout 5
check "rollout status after the rollout: success" \
  bash -c "test $rc = 0 && grep -q 'successfully rolled out' '$tmp/out'"

# drain: cordon, delete the node's pods (not other nodes').
for p in a:pi-1 b:pi-1 c:pi-2; do
  curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
    "$url/api/v1/namespaces/default/pods" -d "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",
    \"metadata\":{\"name\":\"p-${p%%:*}\"},\"spec\":{\"nodeName\":\"${p#*:}\",
    \"containers\":[{\"name\":\"c\",\"image\":\"alpine:3.19\"}]}}"
done
run get pods -o wide
check "get pods -o wide: IP and NODE columns" has '^p-a  *0/1  *Pending  *0  *[0-9a-z]*  *<none>  *pi-1$' out
run drain pi-1
check "drain: exit 0 and drained" bash -c "test $rc = 0 && grep -q '^node/pi-1 drained$' '$tmp/out'"
run get pods -o name
check "drain: only the other node's pod is left" test "$(cat "$tmp/out")" = pod/p-c
run get nodes
check "drain: node cordoned" has '^pi-1  *NotReady,SchedulingDisabled ' out

curl -s -o /dev/null -X PUT -H 'Content-Type: application/json' \
  "$url/api/v1/namespaces/default/pods/p-c/status" -d '{"status":{"phase":"Running",
  "podIP":"10.42.0.7","containerStatuses":[{"name":"c","ready":false,"restartCount":3,
  "image":"alpine:3.19","imageID":"","state":{"waiting":{"reason":"CrashLoopBackOff"}}}]}}'
run get pods -o wide
check "get pods: waiting reason, restarts and IP shown" \
  has '^p-c  *0/1  *CrashLoopBackOff  *3  *[0-9a-z]*  *10.42.0.7  *pi-2$' out

run get deploy -l '==bad('
check "bad label selector: the hub's message, exit 1" \
  bash -c "test $rc = 1 && grep -q 'Error from server (BadRequest)' '$tmp/err'"
run describe secret db-credentials
check "describe secret: values hidden" \
  bash -c "test $rc = 0 && grep -q 'bytes, base64>' '$tmp/out' && ! grep -q \"\$(curl -s $url/api/v1/namespaces/default/secrets/db-credentials | jq -r '.data|to_entries[0].value')\" '$tmp/out'"

# get events -w: an event posted meanwhile is printed.
"$drover" get events -w >"$tmp/evwatch" 2>"$tmp/evwatch.err" &
watchpid=$!
sleep $((1 * tf))
curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
  "$url/api/v1/namespaces/default/events" -d '{"apiVersion":"v1","kind":"Event",
  "metadata":{"name":"nginx.2","namespace":"default"},"type":"Warning","reason":"BackOff",
  "message":"restarting failed container","involvedObject":{"kind":"Pod","name":"p-c","namespace":"default"}}'
for _ in $(seq 1 $((100 * tf))); do
  grep -q 'BackOff' "$tmp/evwatch" && break
  sleep 0.05
done
check "get events -w: the new event as a row" grep -q 'Warning  *BackOff  *pod/p-c  *restarting failed container' "$tmp/evwatch"
kill $watchpid 2>/dev/null
wait $watchpid 2>/dev/null
watchpid=

run delete deployment nginx
check "delete: deleted" test $rc = 0 -a "$(cat "$tmp/out")" = 'deployment.apps "nginx" deleted'
run delete deployment nginx
check "delete again: NotFound, exit 1" bash -c "test $rc = 1 && grep -q NotFound '$tmp/err'"
run delete -f "$src/examples/config-and-secrets.yaml"
check "delete -f: the file's objects deleted" test $rc = 0 -a "$(grep -c ' deleted$' "$tmp/out")" -ge 2
run get configmap web-config
check "deleted object is gone" test $rc = 1

run --hub http://127.0.0.1:1 get pods
check "hub down: exit 1" test $rc = 1
check "hub down: clear message" has 'cannot reach the hub at http://127.0.0.1:1: Connection refused' err
mkdir -p "$tmp/.config/drover"
echo "hub: $url" >"$tmp/.config/drover/config"
DROVER_HUB= "$drover" get nodes >"$tmp/out" 2>"$tmp/err"
check "hub address from ~/.config/drover/config" has '^pi-1 ' out
run get
check "get without a kind: usage error 2" test $rc = 2

echo "$n checks, $fails failed"
[ "$fails" -eq 0 ]
