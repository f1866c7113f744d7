#!/usr/bin/env bash
# The official Kubernetes clients against a real hub (TLS, tokens) and agent, with the kubeconfig
# `drover kubeconfig` prints: @kubernetes/client-node (tests/e2e/node_modules: lists, a ConfigMap
# created and merge-patched, an Informer seeing ADDED then MODIFIED) and Debian's
# python3-kubernetes (lists, create, watch.Watch().stream seeing the events). The programs are
# in k8s-clients/; each prints ok/FAIL lines and runs under a 60 s bound.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/fleet.sh"
e2e="$(cd "$here/../e2e" && pwd)"

have_node=1
have_python=1
if ! command -v node >/dev/null || [ ! -d "$e2e/node_modules/@kubernetes/client-node" ]; then
  echo "# no node or no tests/e2e/node_modules/@kubernetes/client-node (install-deps --browser)"
  have_node=0
fi
# Debian's python3-kubernetes is for Debian's python3 (a python3 earlier on PATH may be another).
py=""
for p in /usr/bin/python3 python3; do
  if "$p" -c 'import kubernetes' 2>/dev/null; then py="$p"; break; fi
done
if [ -z "$py" ]; then
  echo "# no python3-kubernetes (install-deps)"
  have_python=0
fi
if [ "$have_node" = 0 ] || [ "$have_python" = 0 ]; then
  [ -n "${DROVER_ALLOW_SKIP:-}" ] || exit 1
  [ "$have_node" = 0 ] && [ "$have_python" = 0 ] && exit 77
fi
netns_enter "$0" "$@"
if ! fleet_require_tools; then
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
fi
FLEET_SECURE=1
FLEET_DUMP_LINES=30
fleet_setup || exit 1
fleet_start 1 || { fleet_dump; exit 1; }
echo "# fleet up: hub $FLEET_HUB"

cat >"$FLEET_TMP/web.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: c
        image: $FLEET_IMG1
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: every}
spec:
  selector: {matchLabels: {app: every}}
  template:
    metadata: {labels: {app: every}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: c
        image: $FLEET_IMG1
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
YAML
fleet_apply "$FLEET_TMP/web.yaml" >/dev/null
check "a Deployment's pod Running" fleet_running app=web 1 60
check "the DaemonSet's pod Running" fleet_running app=every 1 60

kc="$FLEET_TMP/kubeconfig"
kubeconfig() { "$FLEET_CLI" kubeconfig --name clients >"$kc"; }
check "drover kubeconfig" kubeconfig
check "drover kubeconfig: a token and the hub's CA" \
  bash -c "grep -q 'token: ' '$kc' && grep -q 'certificate-authority-data: ' '$kc'"

# run_client NAME CMD...: the client's own ok/FAIL lines, then one check for all of it.
run_client() {
  local name="$1" t0 rc=0
  shift
  t0="$(fleet_ms)"
  timeout $((60 * FLEET_TF)) "$@" >"$FLEET_TMP/$name.out" 2>&1 || rc=$?
  sed 's/^/#   /' "$FLEET_TMP/$name.out"
  echo "# $name took $(fleet_elapsed "$t0") s"
  check "$name: every step ok (exit $rc$([ $rc = 124 ] && echo ': timed out'))" \
    bash -c "[ $rc = 0 ] && ! grep -q '^FAIL' '$FLEET_TMP/$name.out' && grep -q '^ok' '$FLEET_TMP/$name.out'"
}

if [ "$have_node" = 1 ]; then
  # ES modules resolve packages from the program's own directory: run a copy beside a link to
  # tests/e2e's node_modules.
  mkdir -p "$FLEET_TMP/node"
  ln -s "$e2e/node_modules" "$FLEET_TMP/node/node_modules"
  cp "$here/k8s-clients/client-node.mjs" "$FLEET_TMP/node/"
  run_client client-node node "$FLEET_TMP/node/client-node.mjs" "$kc" from-node
else
  echo "# client-node: skipped"
fi
if [ "$have_python" = 1 ]; then
  run_client client-python "$py" "$here/k8s-clients/client-python.py" "$kc" from-python
else
  echo "# client-python: skipped"
fi

fleet_finish
