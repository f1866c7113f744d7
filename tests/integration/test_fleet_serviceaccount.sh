#!/usr/bin/env bash
# ServiceAccounts end to end on a real fleet in the hub's default configuration (lib/fleet.sh
# with FLEET_SECURE=1: HTTPS API, TLS broker, an enrolled device): every namespace has its
# "default" account; a pod running as a ServiceAccount bound to a Role gets its token, the hub
# CA and its namespace at /var/run/secrets/kubernetes.io/serviceaccount (on tmpfs) and
# KUBERNETES_SERVICE_HOST/PORT naming the hub. From inside the pod, with that token and CA, it
# lists the pods of its namespace through the hub's API (HTTPS), and is refused (403) for another
# namespace and for Secrets; the token is in clear nowhere on the device's disk, the hub's data
# or the broker's persistence; a pod naming a missing account is refused (403); a pod with
# automountServiceAccountToken: false gets nothing; and once the pod is deleted its token is
# refused (401).
#
# The client in the pod: the busybox test image has no TLS client, so the pod (hostNetwork, to
# reach the hub's 127.0.0.1 address) mounts the host's root read-only at /host and runs the
# host's curl through the host's dynamic loader. Every byte of the request (URL from the
# environment, token and CA from the mount) comes from inside the pod.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/fleet.sh"
netns_enter "$0" "$@"
if ! fleet_require_tools; then
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
fi
LDSO=/lib64/ld-linux-x86-64.so.2
[ -x "$LDSO" ] || LDSO="$(find /lib -maxdepth 1 -name 'ld-linux-*.so.*' | head -n 1)"
LDSO="/host$(readlink -f "$LDSO")" # seen from the pod: the host's root is at /host
CURL_BIN="$(readlink -f "$(command -v curl)")"
LIBS="$(ldd "$CURL_BIN" | awk '$3 ~ /^\// {print $3}' | xargs -n1 dirname | sort -u |
  sed 's|^|/host|' | paste -sd:)"
fleet_setup || exit 1
export FLEET_SECURE=1
fleet_hub_start || { fleet_dump; exit 1; }
fleet_device_start dev1 1 || { fleet_dump; exit 1; }
check "dev1 enrols and is Ready" wait_for "dev1 Ready" $((60 * FLEET_TF)) fleet_node_ready dev1
SA_DIR=/var/run/secrets/kubernetes.io/serviceaccount

check "the default namespace has its default ServiceAccount" \
  fleet_wait "default SA" 20 /api/v1/namespaces/default/serviceaccounts/default '.metadata.uid'

cat >"$FLEET_TMP/sa.yaml" <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: lister}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: lister-reads-pods}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
- {kind: ServiceAccount, name: lister, namespace: default}
---
apiVersion: v1
kind: Secret
metadata: {name: private}
stringData: {k: v}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  serviceAccountName: lister
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: $FLEET_IMG1
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.5; done"]
    volumeMounts: [{name: host, mountPath: /host, readOnly: true}]
  volumes:
  - {name: host, hostPath: {path: /}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app-cfg}
data: {greeting: hello}
---
apiVersion: v1
kind: Pod
metadata: {name: proj}
spec:
  serviceAccountName: lister
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: $FLEET_IMG1
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.5; done"]
    volumeMounts: [{name: api, mountPath: /projected, readOnly: true}]
  volumes:
  - name: api
    projected:
      sources:
      - serviceAccountToken: {path: token, expirationSeconds: 1200}
      - configMap: {name: app-cfg, items: [{key: greeting, path: cfg/greeting}]}
      - downwardAPI: {items: [{path: namespace, fieldRef: {fieldPath: metadata.namespace}}]}
---
apiVersion: v1
kind: Pod
metadata: {name: quiet}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: $FLEET_IMG1
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.5; done"]
YAML
check "the manifests apply (ServiceAccount, Role, RoleBinding, pods)" \
  fleet_apply "$FLEET_TMP/sa.yaml"
check "the pod refers to its account" \
  test "$(fleet_api /api/v1/namespaces/default/pods/client | jq -r .spec.serviceAccountName)" = lister
table="$("${FLEET_CURL[@]}" -H 'Accept: application/json;as=Table;v=v1;g=meta.k8s.io' \
  "$FLEET_HUB/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings")"
check "the RoleBindings' table (kubectl get) names the role" \
  test "$(jq -r '.rows[0].cells[0:2] | join(" ")' <<<"$table")" = "lister-reads-pods Role/pod-reader"
check "the pods Running" fleet_wait "pods Running" 90 /api/v1/namespaces/default/pods \
  '[.items[] | select(.status.phase == "Running")] | length == 3'
fleet_pod_uids client quiet proj

check "the token, ca.crt and namespace are mounted" \
  fleet_pexec dev1 client sh -c "test -s $SA_DIR/token && test -s $SA_DIR/ca.crt && test \"\$(cat $SA_DIR/namespace)\" = default"
mounts="$(fleet_pexec dev1 client cat /proc/mounts)"
check "... on a tmpfs" grep -q "tmpfs $SA_DIR tmpfs" <<<"$mounts"
# shellcheck disable=SC2016 # expanded in the pod
check "KUBERNETES_SERVICE_HOST/PORT name the hub" \
  test "$(fleet_pexec dev1 client sh -c 'echo https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT')" = "$FLEET_HUB"
check "the ca.crt is the hub's CA" \
  test "$(fleet_pexec dev1 client cat $SA_DIR/ca.crt | sha256sum)" = "$(sha256sum <"$FLEET_CA")"
check "a pod with automountServiceAccountToken: false gets no token" \
  fleet_pexec dev1 quiet sh -c "! test -e $SA_DIR/token && test -z \"\${KUBERNETES_SERVICE_HOST:-}\""
# A projected volume (as Kubernetes' own admission writes them) with automount off.
# shellcheck disable=SC2016 # expanded in the pod
check "projected: the token, a ConfigMap key and the namespace are there" \
  fleet_pexec dev1 proj sh -c 'test -s /projected/token && test "$(cat /projected/cfg/greeting)" = hello && test "$(cat /projected/namespace)" = default'
check "projected: no default mount (automountServiceAccountToken: false)" \
  fleet_pexec dev1 proj sh -c "! test -e $SA_DIR/token"
PTOKEN="$(fleet_pexec dev1 proj cat /projected/token)"
pclaims="$(cut -d. -f2 <<<"$PTOKEN" | tr '_-' '/+')"
while [ $((${#pclaims} % 4)) -ne 0 ]; do pclaims="$pclaims="; done
check "projected: its token lives as long as it asked (1200 s)" \
  test "$(base64 -d <<<"$pclaims" | jq '.exp - .iat')" = 1200
TOKEN="$(fleet_pexec dev1 client cat $SA_DIR/token)"
check "the token is a JWT" grep -Eq '^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' <<<"$TOKEN"
claims="$(cut -d. -f2 <<<"$TOKEN" | tr '_-' '/+' | base64 -d 2>/dev/null)"
[[ "$claims" == *"}" ]] || claims="$(cut -d. -f2 <<<"$TOKEN" | tr '_-' '/+' | sed 's/$/=/' | base64 -d 2>/dev/null)"
[[ "$claims" == *"}" ]] || claims="$(cut -d. -f2 <<<"$TOKEN" | tr '_-' '/+' | sed 's/$/==/' | base64 -d 2>/dev/null)"
check "bound to the pod and its account" \
  test "$(jq -r '[.sub, .["kubernetes.io"].pod.name, .["kubernetes.io"].pod.uid] | join(" ")' <<<"$claims")" \
  = "system:serviceaccount:default:lister client ${FLEET_POD_UID[client]}"
check "it expires in about an hour" \
  test "$(jq '.exp - .iat' <<<"$claims")" = 3607

# From inside the pod: the host's curl, run by the host's loader, with the pod's token and CA.
in_pod() { # PATH -> HTTP status of GET PATH from inside the pod
  fleet_pexec dev1 client sh -c "$LDSO --library-path $LIBS /host$CURL_BIN -s -o /dev/null \
    -w '%{http_code}' --cacert $SA_DIR/ca.crt -H \"Authorization: Bearer \$(cat $SA_DIR/token)\" \
    https://\$KUBERNETES_SERVICE_HOST:\$KUBERNETES_SERVICE_PORT$1"
}
in_pod_body() {
  fleet_pexec dev1 client sh -c "$LDSO --library-path $LIBS /host$CURL_BIN -s \
    --cacert $SA_DIR/ca.crt -H \"Authorization: Bearer \$(cat $SA_DIR/token)\" \
    https://\$KUBERNETES_SERVICE_HOST:\$KUBERNETES_SERVICE_PORT$1"
}
code="$(in_pod /api/v1/namespaces/default/pods)"
check "from the pod: list pods of its namespace: 200 (got $code)" test "$code" = 200
names="$(in_pod_body /api/v1/namespaces/default/pods | jq -r '[.items[].metadata.name] | sort | join(",")')"
check "... and they are its namespace's pods (got $names)" test "$names" = "client,proj,quiet"
code="$(in_pod /api/v1/namespaces/other/pods)"
check "from the pod: pods of another namespace: 403 (got $code)" test "$code" = 403
code="$(in_pod /api/v1/namespaces/default/secrets)"
check "from the pod: Secrets of its namespace: 403 (got $code)" test "$code" = 403
code="$(in_pod /api/v1/namespaces/default/secrets/private)"
check "from the pod: one Secret by name: 403 (got $code)" test "$code" = 403
msg="$(in_pod_body /api/v1/namespaces/other/pods | jq -r .message)"
check "the refusal says who and what, as Kubernetes does" \
  grep -qF 'User "system:serviceaccount:default:lister" cannot list resource "pods" in API group "" in the namespace "other"' <<<"$msg"

# The token in clear nowhere on disk: the device's state, the hub's data, the broker's store.
check "the token is not in the device's state directory" \
  bash -c "! grep -rqF -- '$TOKEN' '${FLEET_DEV_DIR[dev1]}/state'"
check "... nor in the hub's data directory" bash -c "! grep -rqF -- '$TOKEN' '$FLEET_TMP/hub'"
check "... nor in any log" \
  bash -c "! grep -qF -- '$TOKEN' '$FLEET_TMP/hub.err' '$FLEET_TMP/hub.out' ${FLEET_DEV_DIR[dev1]}/*.log 2>/dev/null"

# A pod naming an account that does not exist is refused, as Kubernetes refuses it.
cat >"$FLEET_TMP/ghost.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: ghost}
spec:
  serviceAccountName: nobody
  containers: [{name: c, image: $FLEET_IMG1}]
YAML
out="$(fleet_apply "$FLEET_TMP/ghost.yaml" 2>&1)"
check "a pod naming a missing ServiceAccount is refused" \
  grep -q 'error looking up service account default/nobody' <<<"$out"

# kubectl, given the pod's token, sees what the pod may do (optional: only where a kubectl is).
KUBECTL="$(command -v /usr/lib/google-cloud-sdk/bin/kubectl.1.33 kubectl 2>/dev/null | head -n 1)"
if [ -n "$KUBECTL" ]; then
  kc() { "$KUBECTL" --server "$FLEET_HUB" --certificate-authority "$FLEET_CA" --token "$TOKEN" "$@"; }
  check "kubectl with the pod's token: get pods" bash -c "$(declare -f kc); KUBECTL='$KUBECTL' \
    TOKEN='$TOKEN' FLEET_HUB='$FLEET_HUB' FLEET_CA='$FLEET_CA' kc get pods -n default | grep -q '^client '"
  check "kubectl auth can-i list pods: yes" test "$(kc auth can-i list pods -n default 2>/dev/null)" = yes
  canother="$(kc auth can-i list pods -n other 2>&1)"
  check "kubectl auth can-i list pods -n other: no (got $canother)" test "${canother%% *}" = no
  check "kubectl auth whoami names the account" \
    bash -c "$(declare -f kc); KUBECTL='$KUBECTL' TOKEN='$TOKEN' FLEET_HUB='$FLEET_HUB' \
      FLEET_CA='$FLEET_CA' kc auth whoami 2>&1 | grep -q 'system:serviceaccount:default:lister'"
fi

# The pod gone: its token is refused.
from_host() { # TOKEN PATH -> status
  curl -s -o /dev/null -w '%{http_code}' --cacert "$FLEET_CA" -H "Authorization: Bearer $1" \
    "$FLEET_HUB$2"
}
check "projected: its token lists the pods too" \
  test "$(from_host "$PTOKEN" /api/v1/namespaces/default/pods)" = 200
check "from the host, the pod's token works while the pod lives" \
  test "$(from_host "$TOKEN" /api/v1/namespaces/default/pods)" = 200
fleet_drover delete pod client >/dev/null 2>&1
check "the pod is gone" fleet_wait "client gone" 60 /api/v1/namespaces/default/pods \
  '[.items[] | select(.metadata.name == "client")] | length == 0'
code="$(from_host "$TOKEN" /api/v1/namespaces/default/pods)"
check "once the pod is deleted its token is refused: 401 (got $code)" test "$code" = 401

fleet_finish
