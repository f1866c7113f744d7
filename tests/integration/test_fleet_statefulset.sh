#!/usr/bin/env bash
# StatefulSets on a real fleet (issue 18): two devices, each in a network namespace of its own
# with the cluster network on (WireGuard mesh, the node's DNS), in the hub's secure
# configuration. Checked as a user would: pods web-0, web-1, web-2 made one after the other,
# each only once the one before is Running and Ready (sampled all along); their hostnames;
# the stable DNS names web-N.web.default.svc.cluster.local and the headless Service's name
# resolving to every ready pod, reached by HTTP from another pod; a RollingUpdate with a
# partition replacing only the pods at and above it, then the rest from the highest ordinal
# down; kubectl-style scaling through the scale subresource removing the highest ordinal
# first; a deleted pod coming back under its name and DNS name. With the node-local volumes
# (PersistentVolumeClaim kind served by the hub), a key-value writer keeps its data across a pod
# delete, an agent kill -9 and a device power cut.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/fleet.sh"
netns_enter "$0" "$@"
need_tools() {
  local t
  for t in wg wireguard-go nft; do
    command -v "$t" >/dev/null 2>&1 || { echo "test_fleet_statefulset: missing $t" >&2; return 1; }
  done
  fleet_require_tools
}
if ! need_tools; then
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
fi
fleet_wan_setup || exit 1
fleet_setup || exit 1
export FLEET_SECURE=1 FLEET_NODE_GRACE=4
fleet_hub_start || { fleet_dump; exit 1; }
echo "# hub $FLEET_HUB, broker $FLEET_BROKER_HOST:$FLEET_BROKER_PORT"
for k in 1 2; do
  fleet_netns_device "dev$k" "$k" || exit 1
  fleet_device_start "dev$k" "$k" || { fleet_dump; exit 1; }
done
for k in 1 2; do
  fleet_wait "node dev$k Ready" 60 "/api/v1/nodes/dev$k" "$FLEET_JQ_READY" || { fleet_dump; exit 1; }
done

STS=/apis/apps/v1/namespaces/default/statefulsets/web
sts_json() { fleet_api "$STS"; }
pod_json() { fleet_api "/api/v1/namespaces/default/pods/$1"; }
pod_ip() { pod_json "$1" | jq -r '.status.podIP // empty'; }
pod_uid() { pod_json "$1" | jq -r '.metadata.uid // empty'; }
# pexec POD CMD...: runs CMD in POD's container c, on the device that runs it.
pexec() {
  local pod="$1" node
  shift
  node="$(pod_json "$pod" | jq -r '.spec.nodeName // empty')"
  [ -n "$node" ] || return 1
  FLEET_POD_UID[$pod]="$(pod_uid "$pod")"
  fleet_pexec "$node" "$pod" "$@"
}
patch() { # PATH TYPE BODY
  "${FLEET_CURL[@]}" --max-time 10 -f -X PATCH -H "Content-Type: application/$2+json" -d "$3" \
    "$FLEET_HUB$1" >/dev/null
}
# The pods' names and whether each is Running and Ready: {"web-0": true, ...}.
READY_MAP='reduce .items[] as $x ({}; .[$x.metadata.name] = ($x.status.phase == "Running" and
  ([$x.status.conditions[]? | select(.type == "Ready") | .status] == ["True"])))'
ready_map() { fleet_api "$(fleet_pods_path app=web)" | jq -c "$READY_MAP"; }

cat >"$FLEET_TMP/web.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 8080}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: $FLEET_IMG1
        env: [{name: VERSION, value: v1}]
        ports: [{name: http, containerPort: 8080}]
        # Ready two seconds after it starts: OrderedReady's waits are long enough to be seen.
        command: ["sh", "-c", "mkdir -p /www && echo \$(hostname) \$VERSION > /www/index.html && sleep 2 && touch /tmp/ready && exec httpd -f -p 8080 -h /www"]
        readinessProbe:
          exec: {command: ["test", "-f", "/tmp/ready"]}
          periodSeconds: 1
YAML

# ---- OrderedReady creation ----
t0="$(fleet_ms)"
fleet_apply "$FLEET_TMP/web.yaml" >/dev/null || echo "# apply failed" >&2
# Sample until all three are Running and Ready: web-N must never exist while web-(N-1) is not
# Running and Ready.
samples=0 violations=0 seen_partial=0 last=""
deadline=$((SECONDS + 120 * FLEET_TF))
while [ "$SECONDS" -lt "$deadline" ]; do
  m="$(ready_map)"
  [ -n "$m" ] || { sleep 0.2; continue; }
  samples=$((samples + 1))
  v="$(jq '[range(1; 3) as $i | select(has("web-\($i)") and (.["web-\($i - 1)"] != true))] | length' <<<"$m")"
  violations=$((violations + ${v:-0}))
  # A moment where some but not all pods exist: the order was there to be seen.
  n="$(jq 'length' <<<"$m")"
  [ "$n" -gt 0 ] && [ "$n" -lt 3 ] && seen_partial=$((seen_partial + 1))
  [ "$m" != "$last" ] && echo "# $(fleet_elapsed "$t0") s: $m" && last="$m"
  [ "$(jq '[.[] | select(. == true)] | length' <<<"$m")" = 3 ] && break
  sleep 0.2
done
check "web-0, web-1, web-2 all Running and Ready" fleet_running app=web 3 5
check "no pod was made before the one before it was Running and Ready ($samples samples, $violations violations)" \
  test "$violations" = 0
check "the creation was seen in steps ($seen_partial samples with only some of the pods)" \
  test "$seen_partial" -ge 3
names="$(fleet_api "$(fleet_pods_path app=web)" | jq -r '[.items[].metadata.name] | sort | join(" ")')"
check "the pods are named web-0 web-1 web-2 ($names)" test "$names" = "web-0 web-1 web-2"
nodes="$(fleet_api "$(fleet_pods_path app=web)" | jq -r '[.items[].spec.nodeName] | unique | join(" ")')"
echo "# on nodes: $nodes"
check "the devices run them" fleet_wait_devices web- 3 30
h="$(pexec web-1 hostname 2>/dev/null)"
check "web-1's hostname is web-1 ($h)" test "$h" = web-1
st="$(sts_json | jq -c '.status | {replicas, readyReplicas, currentReplicas, updatedReplicas}')"
check "status: 3 replicas, all ready, current and updated ($st)" \
  test "$st" = '{"replicas":3,"readyReplicas":3,"currentReplicas":3,"updatedReplicas":3}'

# ---- stable DNS names ----
resolves() { pexec "$1" busybox nslookup "$2" 2>/dev/null | grep -q "Address.*$3\$"; }
for i in 0 1 2; do
  ip="$(pod_ip "web-$i")"
  check "web-$i.web.default.svc.cluster.local resolves to its pod ($ip), asked from web-0" \
    wait_for "web-$i's name" $((15 * FLEET_TF)) resolves web-0 "web-$i.web.default.svc.cluster.local" "$ip"
done
count_a() { pexec web-1 busybox nslookup web.default.svc.cluster.local 2>/dev/null | grep -c 'Address:[[:space:]]*10\.42\.[0-9.]*$'; }
three_a() { [ "$(count_a)" = 3 ]; }
check "the headless Service's name resolves to the 3 pods" wait_for "3 A records" $((15 * FLEET_TF)) three_a
get() { pexec "$1" wget -q -O - "$2" 2>/dev/null; }
says() { [ "$(get "$1" "$2")" = "$3" ]; }
check "web-0 reaches web-2 by its short stable name (http://web-2.web:8080/)" \
  wait_for "web-2 v1" $((15 * FLEET_TF)) says web-0 http://web-2.web:8080/ "web-2 v1"
check "web-2 reaches web-0 by its full name" \
  wait_for "web-0 v1" $((15 * FLEET_TF)) says web-2 http://web-0.web.default.svc.cluster.local:8080/ "web-0 v1"

# What the pods' resolver says, for a failing check.
dns_dump() {
  echo "--- web-0: /etc/resolv.conf, /etc/hosts, nslookup" >&2
  pexec web-0 cat /etc/resolv.conf /etc/hosts >&2 2>&1
  pexec web-0 busybox nslookup web-1.web.default.svc.cluster.local >&2 2>&1
  pexec web-0 busybox nslookup web.default.svc.cluster.local >&2 2>&1
  pexec web-0 wget -O - http://web-2.web:8080/ >&2 2>&1
  echo "--- rc $?; web-2: processes, page, from itself by address" >&2
  pexec web-2 sh -c 'ps; cat /www/index.html; wget -O - http://127.0.0.1:8080/' >&2 2>&1
  echo "--- web-0 to web-2's address $(pod_ip web-2)" >&2
  pexec web-0 wget -O - "http://$(pod_ip web-2):8080/" >&2 2>&1
  echo "--- rc $?" >&2
}
[ "$FLEET_FAILS" -eq 0 ] || dns_dump
# STS_TEST_QUICK=1: stop here (while debugging names).
[ -z "${STS_TEST_QUICK:-}" ] || { fleet_finish; exit; }
# ---- RollingUpdate with a partition ----
declare -A uid_v1
for i in 0 1 2; do uid_v1[$i]="$(pod_uid "web-$i")"; done
rev1="$(sts_json | jq -r .status.currentRevision)"
patch "$STS" strategic-merge-patch '{"spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":2}},"template":{"spec":{"containers":[{"name":"c","env":[{"name":"VERSION","value":"v2"}]}]}}}}' ||
  echo "# patch failed" >&2
web2_v2() { says web-0 http://web-2.web:8080/ "web-2 v2"; }
check "at partition 2, web-2 is replaced and serves v2" wait_for "web-2 v2" $((60 * FLEET_TF)) web2_v2
check "and is Running and Ready" fleet_running app=web 3 30
sleep $((3 * FLEET_TF)) # time for a wrong controller to go on
for i in 0 1; do
  check "web-$i (below the partition) is the same pod, serving v1" \
    eval "[ \"\$(pod_uid web-$i)\" = \"${uid_v1[$i]}\" ] && says web-2 http://web-$i.web:8080/ 'web-$i v1'"
done
st="$(sts_json | jq -c '.status')"
echo "# status: $st"
check "status: updatedReplicas 1, currentReplicas 2" \
  test "$(jq -c '[.updatedReplicas, .currentReplicas]' <<<"$st")" = "[1,2]"
check "currentRevision is still the first ($rev1), updateRevision another" \
  test "$(jq -r '.currentRevision' <<<"$st")" = "$rev1" -a "$(jq -r '.updateRevision' <<<"$st")" != "$rev1"
# Partition 0: web-1 then web-0 (highest ordinal first, each once the one above is Ready).
patch "$STS" merge-patch '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}' ||
  echo "# patch failed" >&2
all_v2() { says web-2 http://web-0.web:8080/ "web-0 v2" && says web-0 http://web-1.web:8080/ "web-1 v2"; }
check "at partition 0, web-1 and web-0 follow and serve v2" wait_for "all v2" $((90 * FLEET_TF)) all_v2
check "all 3 Running and Ready" fleet_running app=web 3 30
c1="$(pod_json web-1 | jq -r .metadata.creationTimestamp)"
c0="$(pod_json web-0 | jq -r .metadata.creationTimestamp)"
check "web-1 was replaced before web-0 ($c1 <= $c0)" eval "[[ ! \"$c1\" > \"$c0\" ]]"
done_rev() { sts_json | jq -e '.status.currentRevision == .status.updateRevision and .status.updatedReplicas == 3' >/dev/null; }
check "the update is complete: currentRevision = updateRevision, 3 updated" \
  wait_for "rollout complete" $((15 * FLEET_TF)) done_rev
hist="$("${FLEET_CURL[@]}" --max-time 10 "$FLEET_HUB/apis/apps/v1/namespaces/default/controllerrevisions" |
  jq '[.items[] | select(.metadata.ownerReferences[0].kind == "StatefulSet")] | length')"
check "two ControllerRevisions record the two templates ($hist)" test "$hist" = 2

# ---- scale down through the scale subresource: the highest ordinal first ----
patch "$STS/scale" merge-patch '{"spec":{"replicas":1}}' || echo "# scale failed" >&2
samples=0 violations=0
deadline=$((SECONDS + 60 * FLEET_TF))
while [ "$SECONDS" -lt "$deadline" ]; do
  m="$(ready_map)"
  samples=$((samples + 1))
  # web-1 gone while web-2 is still there: out of order.
  jq -e 'has("web-2") and (has("web-1") | not)' <<<"$m" >/dev/null && violations=$((violations + 1))
  [ "$(jq -c 'keys' <<<"$m")" = '["web-0"]' ] && break
  sleep 0.2
done
check "scaled to 1: only web-0 is left" test "$(jq -c 'keys' <<<"$m")" = '["web-0"]'
check "web-2 went before web-1 ($samples samples, $violations out of order)" test "$violations" = 0
one_a() { [ "$(pexec web-0 busybox nslookup web.default.svc.cluster.local 2>/dev/null | grep -c 'Address:[[:space:]]*10\.42\.[0-9.]*$')" = 1 ]; }
check "the headless name now resolves to web-0 alone" wait_for "1 A record" $((15 * FLEET_TF)) one_a
sc="$("${FLEET_CURL[@]}" --max-time 10 "$FLEET_HUB$STS/scale" | jq -c '{k: .kind, r: .spec.replicas, s: .status.selector}')"
check "GET scale says 1 replica and the selector ($sc)" test "$sc" = '{"k":"Scale","r":1,"s":"app=web"}'

# ---- a deleted pod comes back under its name ----
patch "$STS/scale" merge-patch '{"spec":{"replicas":2}}' || echo "# scale failed" >&2
check "scaled back to 2" fleet_running app=web 2 60
old_uid="$(pod_uid web-1)"
fleet_drover delete pod web-1 >/dev/null
back() { local u; u="$(pod_uid web-1)"; [ -n "$u" ] && [ "$u" != "$old_uid" ] && fleet_running app=web 2 1 2>/dev/null; }
check "the deleted web-1 is made again as web-1" wait_for "web-1 back" $((60 * FLEET_TF)) back
ip1="$(pod_ip web-1)"
check "web-1.web resolves to the new pod ($ip1)" \
  wait_for "new web-1 address" $((15 * FLEET_TF)) resolves web-0 web-1.web.default.svc.cluster.local "$ip1"

# ---- data kept on the device (node-local volumes) ----
have_pvc() {
  "${FLEET_CURL[@]}" --max-time 10 "$FLEET_HUB/api/v1" | jq -e '.resources[] | select(.name == "persistentvolumeclaims")' >/dev/null
}
if have_pvc; then
  cat >"$FLEET_TMP/kv.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: kv}
spec:
  clusterIP: None
  selector: {app: kv}
  ports: [{name: http, port: 8080}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: kv}
spec:
  serviceName: kv
  replicas: 2
  selector: {matchLabels: {app: kv}}
  template:
    metadata: {labels: {app: kv}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: $FLEET_IMG1
        # A key-value writer: appends one line per start to its log, keeps a key per pod.
        command: ["sh", "-c", "echo start \$(hostname) >> /data/log && [ -f /data/key ] || echo \$(hostname)-\$RANDOM\$RANDOM > /data/key; touch /tmp/ready; exec sleep 100000"]
        volumeMounts: [{name: data, mountPath: /data}]
        readinessProbe:
          exec: {command: ["test", "-f", "/tmp/ready"]}
          periodSeconds: 1
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 64Mi}}
YAML
  fleet_apply "$FLEET_TMP/kv.yaml" >/dev/null || echo "# apply kv failed" >&2
  check "kv-0 and kv-1 Running and Ready with their claims" fleet_running app=kv 2 120
  pvcs="$(fleet_api /api/v1/namespaces/default/persistentvolumeclaims | jq -r '[.items[] | select(.metadata.name | startswith("data-kv-")) | "\(.metadata.name)=\(.status.phase)"] | sort | join(" ")')"
  check "claims data-kv-0 and data-kv-1 are Bound ($pvcs)" test "$pvcs" = "data-kv-0=Bound data-kv-1=Bound"
  key0="$(pexec kv-0 cat /data/key 2>/dev/null)"
  node0="$(pod_json kv-0 | jq -r .spec.nodeName)"
  echo "# kv-0 on $node0 keeps key $key0"
  key_is() { [ -n "$key0" ] && [ "$(pexec kv-0 cat /data/key 2>/dev/null)" = "$key0" ]; }
  starts() { pexec kv-0 grep -c start /data/log 2>/dev/null; }
  # A pod delete.
  old_uid="$(pod_uid kv-0)"
  fleet_drover delete pod kv-0 >/dev/null
  kv_back() { local u; u="$(pod_uid kv-0)"; [ -n "$u" ] && [ "$u" != "$old_uid" ] && fleet_running app=kv 2 1 2>/dev/null; }
  check "kv-0 is made again after a delete" wait_for "kv-0 back" $((60 * FLEET_TF)) kv_back
  check "on the same node ($(pod_json kv-0 | jq -r .spec.nodeName), was $node0)" \
    test "$node0" != null -a "$(pod_json kv-0 | jq -r .spec.nodeName)" = "$node0"
  check "it has its key back" wait_for "key" $((20 * FLEET_TF)) key_is
  check "its log says it started twice ($(starts))" test "$(starts)" = 2
  # The agent killed with SIGKILL; the device's init starts it again.
  fleet_use "$node0"
  apid="$(device_agent_pid)"
  kill -9 "$apid" 2>/dev/null
  new_agent() { fleet_use "$node0"; local p; p="$(device_agent_pid)"; [ -n "$p" ] && [ "$p" != "$apid" ]; }
  check "$node0's agent killed with -9 ($apid) and started again" wait_for "new agent" $((30 * FLEET_TF)) new_agent
  check "$node0 Ready after its agent was killed" fleet_wait "node $node0 Ready" 60 "/api/v1/nodes/$node0" "$FLEET_JQ_READY"
  check "kv-0 Running again" fleet_running app=kv 2 90
  check "with its key after the agent's kill -9" wait_for "key" $((30 * FLEET_TF)) key_is
  # A power cut: the device's processes killed, its state directory kept, started again.
  fleet_power_cut "$node0"
  fleet_power_on "$node0" >/dev/null 2>&1 || echo "# power on of $node0 failed" >&2
  check "$node0 Ready after the power cut" fleet_wait "node $node0 Ready" 90 "/api/v1/nodes/$node0" "$FLEET_JQ_READY"
  check "kv-0 Running again after the power cut" fleet_running app=kv 2 120
  check "with its key after the power cut" wait_for "key" $((30 * FLEET_TF)) key_is
  k1="$(pexec kv-1 cat /data/key 2>/dev/null)"
  check "kv-1 has a key of its own ($k1)" eval "[ -n \"$k1\" ] && [ \"$k1\" != \"$key0\" ]"
else
  echo "# no PersistentVolumeClaims in this hub: the volume part was not run"
  check "the hub serves PersistentVolumeClaims (node-local volumes)" have_pvc
fi

fleet_finish
