#!/usr/bin/env bash
# kubectl against a real hub and real agents (lib/fleet.sh, the hub with TLS and tokens), with
# the kubeconfig `drover kubeconfig` prints and kubectl's default flags: get of every kind
# api-resources lists (-o wide/yaml/json, -w), apply of a directory twice (the second run all
# "unchanged"), an edited re-apply that drops an env var and a port, diff, scale, rollout
# status/history/undo, describe, logs (-f), delete --wait, explain, an invalid manifest named by
# its field, a viewer's kubeconfig refused writes and Secrets, and the drover CLI still at work.
# kubectl 1.33 runs it all; 1.27 (when there is one) a short subset. Each check says what it saw
# when it fails.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/fleet.sh"

# kubectl_find MINOR: a kubectl 1.MINOR (google-cloud-sdk's versioned ones, or one on PATH).
kubectl_find() {
  local c v
  for c in "/usr/lib/google-cloud-sdk/bin/kubectl.1.$1" $(type -ap kubectl) \
    /usr/lib/google-cloud-sdk/bin/kubectl; do
    [ -x "$c" ] || continue
    v="$("$c" version --client -o json 2>/dev/null | jq -r '.clientVersion.minor // empty')"
    [ "${v%+}" = "$1" ] && { echo "$c"; return 0; }
  done
  return 1
}
KUBECTL="$(kubectl_find 33)" || {
  echo "SKIP: no kubectl 1.33 (on PATH or /usr/lib/google-cloud-sdk/bin/kubectl.1.33)" >&2
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
}
KUBECTL_OLD="$(kubectl_find 27)" || KUBECTL_OLD=""
netns_enter "$0" "$@"
if ! fleet_require_tools; then
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
fi
FLEET_SECURE=1
FLEET_DUMP_LINES=30
fleet_setup || exit 1
fleet_start 2 || { fleet_dump; exit 1; }
echo "# fleet up: hub $FLEET_HUB; $KUBECTL${KUBECTL_OLD:+, $KUBECTL_OLD}"
T="$FLEET_TMP/k"
mkdir -p "$T"
TF="$FLEET_TF"

# kc ARGS...: kubectl with the admin kubeconfig; stdout in $T/out, stderr in $T/err, $rc.
KC="$T/admin.kubeconfig"
K="$KUBECTL"
kc() {
  "$K" --kubeconfig "$KC" "$@" >"$T/out" 2>"$T/err"
  rc=$?
}
# What the last command printed, for a failing check.
seen() {
  echo "#   seen: rc=$rc stdout: $(head -c 700 "$T/out" | tr '\n' '|')"
  echo "#         stderr: $(head -c 700 "$T/err" | tr '\n' '|')"
}
# ck NAME CMD...: one check; on failure FAIL, what was seen, and the count.
ck() {
  local name="$1"
  shift
  FLEET_CHECKS=$((FLEET_CHECKS + 1))
  if "$@"; then
    echo "ok $FLEET_CHECKS - $name"
  else
    echo "not ok $FLEET_CHECKS - FAIL: $name"
    seen
    FLEET_FAILS=$((FLEET_FAILS + 1))
  fi
}
out_has() { grep -qiE -- "$1" "$T/out"; }
err_has() { grep -qiE -- "$1" "$T/err"; }
rc_is() { [ "$rc" = "$1" ]; }
rc_not0() { [ "$rc" != 0 ]; }
jq_out() { jq -e "$1" "$T/out" >/dev/null 2>&1; }
# Until the command (kc ARGS) succeeds with stdout matching jq FILTER, at most SECS.
kc_until() { # SECS FILTER ARGS...
  local deadline=$((SECONDS + $1 * TF)) f="$2"
  shift 2
  while :; do
    kc "$@"
    [ "$rc" = 0 ] && jq_out "$f" && return 0
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.5
  done
}

# ---- the kubeconfig ----
"$FLEET_CLI" kubeconfig >"$KC" 2>"$T/err"
rc=$?
cp "$KC" "$T/out"
ck "drover kubeconfig: exit 0" rc_is 0
ck "drover kubeconfig: the hub's URL and CA" \
  bash -c "grep -qF 'server: $FLEET_HUB' '$KC' && grep -q 'certificate-authority-data: ' '$KC'"
ck "drover kubeconfig: current-context, namespace default" \
  bash -c "grep -q '^current-context: drover' '$KC' && grep -q 'namespace: default' '$KC'"
kc config view --minify -o json
ck "kubectl reads it (config view: one cluster, user with a token)" \
  jq_out '(.clusters | length) == 1 and (.users[0].user.token == "REDACTED")'
kc version -o json
ck "kubectl version: the server answers" jq_out '.serverVersion.gitVersion'

# ---- the manifests ----
M="$T/manifests"
mkdir -p "$M"
deploy_yaml() { # ENV-NAMES PORTS (blank-separated)
  local e p
  cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: x
  labels: {app: x}
spec:
  replicas: 1
  selector:
    matchLabels: {app: x}
  template:
    metadata:
      labels: {app: x}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: c
        image: $FLEET_IMG1
        command: ["sh", "-c", "trap 'exit 0' TERM; i=0; while true; do echo tick \$i; i=\$((i+1)); sleep 1; done"]
        readinessProbe:
          exec: {command: ["true"]}
          periodSeconds: 1
        env:
YAML
  for e in $1; do printf '        - name: %s\n          value: "v-%s"\n' "$e" "$e"; done
  echo "        ports:"
  for p in $2; do printf '        - containerPort: %s\n          name: p%s\n' "$p" "$p"; done
}
deploy_yaml "A B C" "8080 9090" >"$M/deployment.yaml"
cat >"$M/service.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: x}
spec:
  selector: {app: x}
  ports:
  - {name: http, port: 80, targetPort: 8080}
YAML
cat >"$M/configmap.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: x-cfg}
data: {greeting: hello, mode: test}
YAML
cat >"$M/secret.yaml" <<'YAML'
apiVersion: v1
kind: Secret
metadata: {name: x-secret}
type: Opaque
data: {password: c2VjcmV0}
YAML
cat >"$M/daemonset.yaml" <<YAML
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: x-ds}
spec:
  selector:
    matchLabels: {app: x-ds}
  template:
    metadata:
      labels: {app: x-ds}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: c
        image: $FLEET_IMG1
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
YAML
# The HPA scales another Deployment (none): one on x would fight `kubectl scale`.
cat >"$M/hpa.yaml" <<'YAML'
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: x-hpa}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: x-spare}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: 80}
YAML
cat >"$M/namespace.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: kdemo, labels: {team: edge}}
YAML
NOBJ=7

# ---- apply twice ----
kc apply -f "$M"
ck "apply -f DIR: exit 0" rc_is 0
ck "apply -f DIR: $NOBJ objects created" test "$(grep -c ' created$' "$T/out")" = "$NOBJ"
kc apply -f "$M"
ck "apply -f DIR again: exit 0" rc_is 0
ck "apply -f DIR again: all $NOBJ unchanged" \
  bash -c "[ \$(grep -c ' unchanged\$' '$T/out') = $NOBJ ] && [ \$(wc -l <'$T/out') = $NOBJ ]"

# ---- get every kind ----
kc api-resources
ck "api-resources: exit 0" rc_is 0
for r in pods deployments services configmaps secrets nodes daemonsets \
  horizontalpodautoscalers namespaces replicasets events; do
  ck "api-resources lists $r" out_has "^$r "
done
kc api-resources -o name --verbs=list
ck "api-resources -o name --verbs=list: exit 0" rc_is 0
mapfile -t RES <"$T/out"
for r in "${RES[@]}"; do
  kc get "$r" -A -o wide
  ck "get $r -A -o wide: exit 0" rc_is 0
  kc get "$r" -A -o yaml
  ck "get $r -A -o yaml: exit 0, a List" bash -c "[ $rc = 0 ] && grep -q '^kind: List' '$T/out'"
  kc get "$r" -A -o json
  ck "get $r -A -o json: exit 0, a List with items" \
    bash -c "[ $rc = 0 ] && jq -e '.kind == \"List\" and (.items | type == \"array\")' '$T/out' >/dev/null"
done
kc get deploy -o wide
ck "get deploy -o wide: the wide columns (CONTAINERS IMAGES SELECTOR)" \
  out_has 'NAME +READY +UP-TO-DATE +AVAILABLE +AGE +CONTAINERS +IMAGES +SELECTOR'
ck "get deploy -o wide: x listed" out_has '^x +'
kc_until 120 '.items | length >= 1 and all(.status.phase == "Running")' get pods -l app=x -o json
ck "the Deployment's pod is Running" rc_is 0
kc get pods -o wide
ck "get pods -o wide: NODE and IP columns" out_has 'NAME +READY +STATUS +RESTARTS +AGE +IP +NODE'
kc get nodes -o wide
ck "get nodes -o wide: dev1 and dev2" bash -c "grep -q '^dev1 ' '$T/out' && grep -q '^dev2 ' '$T/out'"

# get -w: the initial ADDED, then a MODIFIED when the ConfigMap changes.
timeout $((20 * TF)) "$K" --kubeconfig "$KC" get configmap x-cfg -w --output-watch-events \
  >"$T/watch" 2>"$T/watch.err" &
wpid=$!
sleep 2
kc label configmap x-cfg touched=yes --overwrite
ck "label configmap: exit 0" rc_is 0
for _ in $(seq 1 $((20 * TF))); do grep -q '^MODIFIED' "$T/watch" && break; sleep 0.5; done
kill "$wpid" 2>/dev/null
wait "$wpid" 2>/dev/null
cp "$T/watch" "$T/out"
cp "$T/watch.err" "$T/err"
rc=watch
ck "get -w --output-watch-events: ADDED x-cfg" out_has '^ADDED +x-cfg'
ck "get -w --output-watch-events: MODIFIED x-cfg after the label" out_has '^MODIFIED +x-cfg'
timeout $((15 * TF)) "$K" --kubeconfig "$KC" get pods -w >"$T/watch" 2>"$T/watch.err" &
wpid=$!
sleep 3
kill "$wpid" 2>/dev/null
wait "$wpid" 2>/dev/null
cp "$T/watch" "$T/out"
cp "$T/watch.err" "$T/err"
ck "get pods -w: the table's header and a pod" bash -c "grep -q '^NAME ' '$T/out' && grep -q '^x-' '$T/out'"

# ---- an edited re-apply drops env B and port 9090 ----
E="$T/edited"
mkdir -p "$E"
deploy_yaml "A C" "8080" >"$E/deployment.yaml"
kc diff -f "$E/deployment.yaml"
ck "diff -f (a change): exit 1" rc_is 1
ck "diff -f (a change): the diff shows env B and port 9090 going" \
  bash -c "grep -q '^-.*name: B' '$T/out' && grep -q '^-.*9090' '$T/out'"
kc diff -f "$M/configmap.yaml"
ck "diff -f (no change): exit 0, nothing printed" bash -c "[ $rc = 0 ] && [ ! -s '$T/out' ]"
kc apply -f "$E/deployment.yaml"
ck "apply the edited Deployment: configured" out_has '^deployment.apps/x configured$'
kc get deploy x -o json
ck "get -o json: env B gone, A and C kept" \
  jq_out '[.spec.template.spec.containers[0].env[].name] == ["A", "C"]'
ck "get -o json: port 9090 gone, 8080 kept" \
  jq_out '[.spec.template.spec.containers[0].ports[].containerPort] == [8080]'

# ---- scale, rollout ----
kc scale deploy/x --replicas=3
ck "scale deploy/x --replicas=3: exit 0, scaled" bash -c "[ $rc = 0 ] && grep -q 'deployment.apps/x scaled' '$T/out'"
kc get deploy x -o jsonpath='{.spec.replicas}'
ck "scale: the Deployment's spec.replicas is 3" bash -c "[ $rc = 0 ] && [ \"\$(cat '$T/out')\" = 3 ]"
kc_until 120 '[.items[] | select(.metadata.deletionTimestamp == null and .status.phase == "Running")] | length == 3' \
  get pods -l app=x -o json
ck "3 pods Running ($(jq -r '[.items[].metadata.name] | join(" ")' "$T/out" 2>/dev/null))" rc_is 0
kc rollout status deploy/x --timeout=$((120 * TF))s
ck "rollout status: ends with exit 0" rc_is 0
ck "rollout status: successfully rolled out" out_has 'successfully rolled out'
kc rollout history deploy/x
ck "rollout history: revisions 1 and 2 listed" \
  bash -c "[ $rc = 0 ] && grep -q '^REVISION' '$T/out' && grep -q '^1 ' '$T/out' && grep -q '^2 ' '$T/out'"
kc rollout undo deploy/x
ck "rollout undo: exit 0, rolled back" bash -c "[ $rc = 0 ] && grep -q 'rolled back' '$T/out'"
kc get deploy x -o json
ck "rollout undo: the template has env B and port 9090 again" \
  jq_out '([.spec.template.spec.containers[0].env[].name] == ["A", "B", "C"]) and ([.spec.template.spec.containers[0].ports[].containerPort] == [8080, 9090])'
kc rollout status deploy/x --timeout=$((120 * TF))s
ck "rollout status after undo: exit 0" rc_is 0

# ---- describe, logs ----
kc describe deploy/x
ck "describe deploy/x: Name, Replicas and an Events section" \
  bash -c "[ $rc = 0 ] && grep -q '^Name: *x' '$T/out' && grep -q '^Replicas:' '$T/out' && grep -q '^Events:' '$T/out'"
kc get pods -l app=x -o jsonpath='{.items[0].metadata.name}'
pod="$(cat "$T/out")"
kc describe pod "$pod"
ck "describe pod $pod: Node, Containers and Events" \
  bash -c "[ $rc = 0 ] && grep -q '^Node:' '$T/out' && grep -q '^Containers:' '$T/out' && grep -q '^Events:' '$T/out'"
kc describe node dev1
ck "describe node dev1: Conditions and Events" \
  bash -c "[ $rc = 0 ] && grep -q '^Conditions:' '$T/out' && grep -q '^Events:' '$T/out'"
kc_logs() { kc logs "$pod" && grep -q '^tick [0-9]' "$T/out"; }
ck "logs $pod: the container's ticks" wait_for "logs of $pod" $((20 * TF)) kc_logs
timeout $((8 * TF)) "$K" --kubeconfig "$KC" logs -f --tail=1 "$pod" >"$T/out" 2>"$T/err"
rc=$?
ck "logs -f: still streaming at the timeout (rc 124)" rc_is 124
ck "logs -f: new ticks appear" test "$(grep -c '^tick' "$T/out")" -ge 3

# ---- explain, invalid manifests ----
kc explain deployment.spec.strategy
ck "explain deployment.spec.strategy: exit 0, its fields" \
  bash -c "[ $rc = 0 ] && grep -q 'rollingUpdate' '$T/out' && grep -q 'type' '$T/out'"
sed 's/replicas: 1/replicas: "many"/' "$M/deployment.yaml" >"$T/bad-replicas.yaml"
kc apply -f "$T/bad-replicas.yaml"
ck "apply replicas: \"many\": refused naming spec.replicas" bash -c "[ $rc != 0 ] && grep -q 'spec.replicas' '$T/err'"
sed 's/replicas: 1/replicas: 1\n  replicass: 2/' "$M/deployment.yaml" >"$T/bad-field.yaml"
kc apply -f "$T/bad-field.yaml"
ck "apply an unknown field: refused naming spec.replicass" bash -c "[ $rc != 0 ] && grep -q 'replicass' '$T/err'"

# ---- typed commands (kubectl 1.30+ sends their bodies as protobuf), DaemonSet history ----
kc create namespace typed
ck "create namespace typed" bash -c "[ $rc = 0 ] && grep -q 'namespace/typed created' '$T/out'"
kc -n typed create configmap tc --from-literal=k=v
ck "create configmap --from-literal" rc_is 0
kc -n typed create secret generic ts --from-literal=k=v
ck "create secret generic --from-literal" rc_is 0
kc -n typed create deployment td --image="$FLEET_IMG1" --replicas=0
ck "create deployment --image --replicas=0" rc_is 0
kc -n typed get secret ts -o jsonpath='{.data.k}'
ck "the typed Secret holds its value" bash -c "[ $rc = 0 ] && [ \"\$(base64 -d '$T/out')\" = v ]"
kc delete namespace typed --wait --timeout=$((60 * TF))s
ck "delete namespace typed --wait: gone with its contents" rc_is 0
kc get configmaps -n typed -o json
ck "nothing left in namespace typed" jq_out '.items | length == 0'
kc set image ds/x-ds c="$FLEET_IMG2"
ck "set image ds/x-ds (a strategic merge patch)" rc_is 0
# (the DaemonSet controller records the new template's revision in its next round)
ds_history_2() { kc rollout history ds/x-ds && grep -q '^1 ' "$T/out" && grep -q '^2 ' "$T/out"; }
ck "rollout history ds/x-ds: revisions 1 and 2" wait_for "revision 2 of x-ds" $((20 * TF)) ds_history_2
kc rollout undo ds/x-ds
ck "rollout undo ds/x-ds" bash -c "[ $rc = 0 ] && grep -q 'rolled back' '$T/out'"
kc get ds x-ds -o jsonpath='{.spec.template.spec.containers[0].image}'
ck "the DaemonSet's image is back" bash -c "[ \"\$(cat '$T/out')\" = '$FLEET_IMG1' ]"
kc get controllerrevisions -l app=x-ds
ck "get controllerrevisions: the DaemonSet's two" bash -c "[ $rc = 0 ] && [ \$(grep -c '^x-ds-' '$T/out') = 2 ]"
kc auth can-i create deployments
ck "auth can-i create deployments (admin): yes" bash -c "[ $rc = 0 ] && grep -q '^yes' '$T/out'"
kc auth whoami -o json
ck "auth whoami: the token's user and its role's group" \
  jq_out '(.status.userInfo.username | startswith("drover:token:")) and (.status.userInfo.groups | index("drover:admin"))'
kc get all
ck "get all: pods, services, deployments, replicasets, daemonsets" \
  bash -c "[ $rc = 0 ] && grep -q '^pod/' '$T/out' && grep -q '^service/' '$T/out' && grep -q '^deployment.apps/' '$T/out' && grep -q '^replicaset.apps/' '$T/out' && grep -q '^daemonset.apps/' '$T/out'"

# ---- Services, their endpoints, NetworkPolicy (issue 17) ----
kc get svc x
ck "get svc: a ClusterIP from the service range and the port" \
  bash -c "[ $rc = 0 ] && grep -qE '^x +ClusterIP +10\.43\.[0-9]+\.[0-9]+ +<none> +80/TCP' '$T/out'"
ep_filled() {
  kc get endpointslices -l kubernetes.io/service-name=x -o json
  [ "$rc" = 0 ] && jq -e '[.items[].endpoints[]?] | length > 0' "$T/out" >/dev/null
}
ck "the Service's EndpointSlice lists its pods" wait_for "endpoints of x" 60 ep_filled
kc get endpoints x
ck "get endpoints: the pods' addresses at the target port" \
  bash -c "[ $rc = 0 ] && grep -qE '^x +[0-9.]+:8080' '$T/out'"
cat >"$T/netpol.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: x-from-front}
spec:
  podSelector: {matchLabels: {app: x}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: front}}
      podSelector: {matchExpressions: [{key: role, operator: In, values: [web]}]}
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.43.0.0/16]}
    ports: [{protocol: TCP, port: 8080, endPort: 8090}]
YAML
kc apply -f "$T/netpol.yaml"
ck "apply a NetworkPolicy: created" bash -c "[ $rc = 0 ] && grep -q 'x-from-front created' '$T/out'"
kc get netpol
ck "get netpol: its pod selector" bash -c "[ $rc = 0 ] && grep -qE '^x-from-front +app=x' '$T/out'"
sed -i 's/operator: In/operator: Has/' "$T/netpol.yaml"
kc apply -f "$T/netpol.yaml"
ck "a malformed selector is refused naming its field" \
  bash -c "[ $rc != 0 ] && grep -q 'spec.ingress\[0\].from\[0\].podSelector.matchExpressions\[0\].operator' '$T/err'"
kc explain networkpolicy.spec.ingress.from.ipBlock
ck "explain networkpolicy.spec.ingress.from.ipBlock" bash -c "[ $rc = 0 ] && grep -q 'except' '$T/out'"
kc delete networkpolicy x-from-front
ck "delete netpol: exit 0" rc_is 0

# ---- a viewer ----
VKC="$T/viewer.kubeconfig"
"$FLEET_CLI" kubeconfig --role viewer --name viewer --ttl 1h >"$VKC" 2>"$T/err"
rc=$?
ck "drover kubeconfig --role viewer: exit 0" rc_is 0
vk() {
  "$K" --kubeconfig "$VKC" "$@" >"$T/out" 2>"$T/err"
  rc=$?
}
vk get pods
ck "viewer: get pods works" rc_is 0
# (An apply that changes nothing writes nothing: a viewer's is "unchanged". A new object is
# a write.)
sed 's/name: x-cfg/name: viewer-cfg/' "$M/configmap.yaml" >"$T/viewer-cm.yaml"
vk apply -f "$T/viewer-cm.yaml"
ck "viewer: apply (a new ConfigMap) is Forbidden" bash -c "[ $rc != 0 ] && grep -qi 'forbidden' '$T/err'"
vk delete configmap x-cfg
ck "viewer: delete is Forbidden" bash -c "[ $rc != 0 ] && grep -qi 'forbidden' '$T/err'"
vk get secrets
ck "viewer: get secrets is Forbidden" bash -c "[ $rc != 0 ] && grep -qi 'forbidden' '$T/err'"
vk auth can-i get secrets
ck "viewer: auth can-i get secrets says no" bash -c "grep -q '^no' '$T/out'"
vk auth can-i list pods
ck "viewer: auth can-i list pods says yes" bash -c "[ $rc = 0 ] && grep -q '^yes' '$T/out'"
kc get configmap x-cfg -o json
ck "the viewer changed nothing (x-cfg still there)" rc_is 0

# ---- the drover CLI still works ----
dr() {
  "$FLEET_CLI" "$@" >"$T/out" 2>"$T/err"
  rc=$?
}
dr get pods -o wide
ck "drover get pods -o wide" bash -c "[ $rc = 0 ] && grep -q '^x-' '$T/out'"
dr get deployments x -o json
ck "drover get deployments x -o json" jq_out '.metadata.name == "x"'
dr apply -f "$M/configmap.yaml"
ck "drover apply -f (after kubectl): exit 0" rc_is 0
dr describe deployment x
ck "drover describe deployment x" bash -c "[ $rc = 0 ] && grep -q 'Events' '$T/out'"
# (before the scale-down below, which may remove $pod)
dr logs "$pod"
ck "drover logs $pod" bash -c "[ $rc = 0 ] && grep -q '^tick' '$T/out'"
dr scale deployment x --replicas 2
ck "drover scale deployment x --replicas 2" rc_is 0
dr rollout history deployment x
ck "drover rollout history deployment x" rc_is 0
dr token list
ck "drover token list: the viewer's token" bash -c "[ $rc = 0 ] && grep -q 'kubeconfig viewer' '$T/out'"

# ---- delete --wait ----
kc delete deploy x --wait --timeout=$((60 * TF))s
ck "delete deploy x --wait: exit 0, deleted" bash -c "[ $rc = 0 ] && grep -q 'deployment.apps \"x\" deleted' '$T/out'"
kc get deploy x
ck "get deploy x after the delete: NotFound" bash -c "[ $rc != 0 ] && grep -q 'NotFound\\|not found' '$T/err'"
kc delete -f "$M/daemonset.yaml" --wait --timeout=$((60 * TF))s
ck "delete -f daemonset.yaml --wait: exit 0" rc_is 0

# ---- kubectl 1.27: a short subset ----
if [ -n "$KUBECTL_OLD" ]; then
  K="$KUBECTL_OLD"
  O="$T/old"
  mkdir -p "$O"
  cat >"$O/cm.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: old-cfg}
data: {a: "1"}
YAML
  sed 's/name: x$/name: old/; s/app: x/app: old/g; s/replicas: 1/replicas: 0/' "$M/deployment.yaml" >"$O/deploy.yaml"
  kc apply -f "$O"
  ck "kubectl 1.27: apply -f DIR: exit 0, created" bash -c "[ $rc = 0 ] && [ \$(grep -c ' created\$' '$T/out') = 2 ]"
  kc apply -f "$O"
  ck "kubectl 1.27: apply -f DIR again: unchanged" bash -c "[ $rc = 0 ] && [ \$(grep -c ' unchanged\$' '$T/out') = 2 ]"
  kc get deploy -o wide
  ck "kubectl 1.27: get deploy -o wide" bash -c "[ $rc = 0 ] && grep -q '^old ' '$T/out' && grep -q 'IMAGES' '$T/out'"
  kc explain deployment.spec.strategy
  ck "kubectl 1.27: explain deployment.spec.strategy" bash -c "[ $rc = 0 ] && grep -q 'rollingUpdate' '$T/out'"
else
  echo "# no kubectl 1.27: its subset skipped"
fi

# ---- every other kubectl on this machine (1.28-1.32): the commands whose wire form changed
# between versions (validation through OpenAPI, typed bodies in protobuf, explain, diff) ----
V="$T/versions"
mkdir -p "$V"
cat >"$V/cm.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: v-cfg}
data: {a: "1"}
YAML
sed 's/name: x$/name: v/; s/app: x/app: v/g; s/replicas: 1/replicas: 0/' "$M/deployment.yaml" >"$V/deploy.yaml"
for minor in 28 29 30 31 32; do
  K="$(kubectl_find "$minor")" || { echo "# no kubectl 1.$minor: skipped"; continue; }
  ns="v1-$minor"
  kc create namespace "$ns"
  ck "kubectl 1.$minor: create namespace" rc_is 0
  kc -n "$ns" create configmap "c$minor" --from-literal=a=b
  ck "kubectl 1.$minor: create configmap" rc_is 0
  kc -n "$ns" apply -f "$V"
  ck "kubectl 1.$minor: apply -f DIR" bash -c "[ $rc = 0 ] && [ \$(grep -c ' created\$' '$T/out') = 2 ]"
  kc -n "$ns" apply -f "$V"
  ck "kubectl 1.$minor: apply -f DIR again: unchanged" bash -c "[ $rc = 0 ] && [ \$(grep -c ' unchanged\$' '$T/out') = 2 ]"
  kc -n "$ns" diff -f "$V"
  ck "kubectl 1.$minor: diff of what is applied: exit 0" rc_is 0
  kc explain deployment.spec.strategy
  ck "kubectl 1.$minor: explain" bash -c "[ $rc = 0 ] && grep -q 'rollingUpdate' '$T/out'"
  kc delete namespace "$ns" --wait --timeout=$((60 * TF))s
  ck "kubectl 1.$minor: delete namespace --wait" rc_is 0
done

fleet_finish
