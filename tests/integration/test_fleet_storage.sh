#!/usr/bin/env bash
# PersistentVolumeClaims on a real fleet (lib/fleet.sh: registry, hub, Mosquitto, two agents in
# their own mount+PID namespaces): a claim without a class gets the default local-path class and
# is bound, when its first pod is scheduled, to a directory on that pod's node; every later pod
# using the claim goes to that node; what a pod writes there survives the pod's deletion, an
# agent kill -9 and a power cut of the device; deleting the claim removes the directory and the
# volume (Delete), or keeps both (Retain, phase Released), a claim in use being deleted only once
# its pod is gone; a claim whose node was deleted keeps
# its new pod Pending with an event naming the claim and the node, never a new empty volume.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/fleet.sh"
netns_enter "$0" "$@"
if ! fleet_require_tools; then
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
fi
fleet_setup || exit 1
fleet_start 2 || { fleet_dump; exit 1; }
echo "# fleet up: hub $FLEET_HUB, broker port $FLEET_BROKER_PORT"

api_delete() { "${FLEET_CURL[@]}" --max-time 10 -X DELETE "$FLEET_HUB$1" >/dev/null; }
claim_yaml() { # NAME [CLASS]
  cat <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: $1}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
${2:+  storageClassName: $2}
YAML
}
pod_yaml() { # NAME CLAIM
  cat <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1, labels: {app: $1}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: $FLEET_IMG1
    command: ["sh", "-c", "trap 'exit 0' TERM; echo \$(hostname) >> /data/starts; while true; do sleep 0.5; done"]
    volumeMounts: [{name: d, mountPath: /data}]
  volumes:
  - name: d
    persistentVolumeClaim: {claimName: $2}
YAML
}
apply_text() { # NAME < YAML
  cat >"$FLEET_TMP/$1.yaml"
  fleet_apply "$FLEET_TMP/$1.yaml" >/dev/null
}
node_of() { fleet_api "/api/v1/namespaces/default/pods/$1" | jq -r '.spec.nodeName // ""'; }
pexec() { # POD CMD...: in the pod's container, on its node
  local pod="$1" node
  shift
  node="$(node_of "$pod")"
  fleet_pod_uids "$pod"
  fleet_pexec "$node" "$pod" "$@"
}
running() { fleet_wait "pod $1 Running" "${2:-60}" "/api/v1/namespaces/default/pods/$1" '.status.phase == "Running"'; }
gone() { ! fleet_api "/api/v1/namespaces/default/pods/$1" | jq -e '.metadata.name' >/dev/null 2>&1; }

# 1. The default class, and a claim bound where its first pod goes.
check "the hub made the default StorageClass local-path" fleet_wait "class local-path" 10 \
  /apis/storage.k8s.io/v1/storageclasses/local-path \
  '.provisioner == "drover.io/local-path" and .volumeBindingMode == "WaitForFirstConsumer" and .metadata.annotations["storageclass.kubernetes.io/is-default-class"] == "true"'
claim_yaml data | apply_text claim-data
check "a claim without a class gets local-path" fleet_wait "claim class" 10 \
  /api/v1/namespaces/default/persistentvolumeclaims/data '.spec.storageClassName == "local-path"'
check "the claim waits for its first pod (Pending, no volume)" fleet_wait "claim pending" 10 \
  /api/v1/namespaces/default/persistentvolumeclaims/data '.status.phase == "Pending" and (.spec.volumeName // "") == ""'
pod_yaml writer data | apply_text writer
check "the writer runs" running writer 90
N="$(node_of writer)"
echo "# the claim's node: $N"
check "the claim is Bound to pvc-<uid> with the selected node $N" fleet_wait "claim bound" 10 \
  /api/v1/namespaces/default/persistentvolumeclaims/data \
  "(.status.phase == \"Bound\") and (.spec.volumeName == \"pvc-\" + .metadata.uid) and .metadata.annotations[\"volume.kubernetes.io/selected-node\"] == \"$N\""
PV="$(fleet_api /api/v1/namespaces/default/persistentvolumeclaims/data | jq -r .spec.volumeName)"
DIR="${FLEET_DEV_DIR[$N]}/state/storage/${PV}_default_data"
check "the volume is local on $N at $DIR, Bound, policy Delete" fleet_wait "pv" 10 "/api/v1/persistentvolumes/$PV" \
  "(.spec.local.path == \"$DIR\") and (.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values == [\"$N\"]) and .status.phase == \"Bound\" and .spec.persistentVolumeReclaimPolicy == \"Delete\" and .spec.claimRef.name == \"data\""
check "the directory exists on the device, mode 0777" test "$(stat -c %a "$DIR" 2>/dev/null)" = 777
check "the writer writes into the volume" pexec writer sh -c 'echo hello > /data/hello'
check "the data is in the node's directory" test "$(cat "$DIR/hello" 2>/dev/null)" = hello
check "drover get pvc shows it Bound to $PV" bash -c "'$FLEET_CLI' --hub '$FLEET_HUB' get pvc data | grep -q 'data *Bound *$PV *64Mi *RWO *local-path'"
check "drover get pv shows the claim" bash -c "'$FLEET_CLI' --hub '$FLEET_HUB' get pv | grep -q '$PV *64Mi *RWO *Delete *Bound *default/data *local-path'"
fleet_apply "$FLEET_TMP/claim-data.yaml" >/dev/null
check "applying the claim's manifest again keeps it bound" fleet_wait "still bound" 5 \
  /api/v1/namespaces/default/persistentvolumeclaims/data ".spec.volumeName == \"$PV\" and .status.phase == \"Bound\""

# 2. The claim pins its pods to its node.
for i in 1 2 3; do pod_yaml "reader$i" data | apply_text "reader$i"; done
for i in 1 2 3; do check "reader$i runs" running "reader$i" 60; done
nodes="$(for i in 1 2 3; do node_of "reader$i"; done | sort -u | tr '\n' ' ')"
check "all three readers went to $N (got: $nodes)" test "$nodes" = "$N "
check "a reader sees the writer's data" test "$(pexec reader1 cat /data/hello)" = hello
for i in 1 2 3; do api_delete "/api/v1/namespaces/default/pods/reader$i"; done

# 3. The data survives the pod's deletion.
api_delete /api/v1/namespaces/default/pods/writer
check "the writer is gone" wait_for "writer gone" $((30 * FLEET_TF)) gone writer
pod_yaml writer2 data | apply_text writer2
check "a new pod on the claim runs on $N" running writer2 60
check "it is on $N" test "$(node_of writer2)" = "$N"
check "it reads what the deleted pod wrote" test "$(pexec writer2 cat /data/hello)" = hello

# 3b. One writer at a time: a pod deleted while it takes its grace period to stop, and a new pod
#     on the same claim created at once, do not overlap on the device: the new one's containers
#     start only after the old one is stopped (as a StatefulSet's pod made again by name).
cat <<YAML | apply_text slowstop
apiVersion: v1
kind: Pod
metadata: {name: slowstop}
spec:
  terminationGracePeriodSeconds: 20
  containers:
  - name: c
    image: $FLEET_IMG1
    command: ["sh", "-c", "trap 'sleep 3; echo old-done >> /data/handover; exit 0' TERM; while true; do sleep 0.2; done"]
    volumeMounts: [{name: d, mountPath: /data}]
  volumes:
  - name: d
    persistentVolumeClaim: {claimName: data}
YAML
check "slowstop runs on $N" running slowstop 60
api_delete /api/v1/namespaces/default/pods/slowstop
cat <<YAML | apply_text successor
apiVersion: v1
kind: Pod
metadata: {name: successor}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: $FLEET_IMG1
    command: ["sh", "-c", "trap 'exit 0' TERM; echo new-start >> /data/handover; while true; do sleep 0.5; done"]
    volumeMounts: [{name: d, mountPath: /data}]
  volumes:
  - name: d
    persistentVolumeClaim: {claimName: data}
YAML
check "the successor runs" running successor 60
check "it started only after the old pod on the claim had stopped (handover: $(tr '\n' ' ' <"$DIR/handover" 2>/dev/null))" \
  test "$(tr '\n' ' ' <"$DIR/handover" 2>/dev/null)" = "old-done new-start "
api_delete /api/v1/namespaces/default/pods/successor
check "the successor is gone" wait_for "successor gone" $((30 * FLEET_TF)) gone successor

# 4. An agent kill -9: the pod and its mount come back, the data with them.
fleet_use "$N"
old_agent="$(device_agent_pid)"
kill -9 "$old_agent"
new_agent() { local p; p="$(device_agent_pid)" && [ -n "$p" ] && [ "$p" != "$old_agent" ]; }
check "the agent on $N was restarted" wait_for "new agent" $((20 * FLEET_TF)) new_agent
check "the agent is back (status answers)" wait_for "agent status" $((20 * FLEET_TF)) device_status_ok
check "writer2 Running after the agent restart" running writer2 60
check "the data is still there after the agent kill -9" wait_for "data after kill" $((20 * FLEET_TF)) \
  bash -c '[ "$(cat "$1/hello")" = hello ]' _ "$DIR"
check "writer2 still reads it" test "$(pexec writer2 cat /data/hello)" = hello
check "writer2 still writes to it" pexec writer2 sh -c 'echo after-kill >> /data/hello'

# 5. A power cut: the device comes back, its pod restarts on the same data.
starts_before="$(wc -l <"$DIR/starts")"
fleet_power_cut "$N"
fleet_power_on "$N" || { fleet_dump; exit 1; }
check "node $N Ready after the power cut" fleet_wait "node $N Ready" 60 "/api/v1/nodes/$N" "$FLEET_JQ_READY"
restarted() { [ "$(wc -l <"$DIR/starts")" -gt "$starts_before" ]; }
check "writer2's container started again after the reboot" wait_for "restart" $((90 * FLEET_TF)) restarted
check "writer2 Running after the power cut" running writer2 90
check "the data survived the power cut" test "$(pexec writer2 cat /data/hello)" = "$(printf 'hello\nafter-kill')"

# 6. Protection, then Delete reclaim: a claim in use stays (Terminating) until its pod is gone;
# then the claim, the directory and the volume go.
api_delete /api/v1/namespaces/default/persistentvolumeclaims/data
check "the claim in use is kept, Terminating (kubernetes.io/pvc-protection)" fleet_wait "terminating" 10 \
  /api/v1/namespaces/default/persistentvolumeclaims/data \
  '.metadata.deletionTimestamp != null and .metadata.finalizers == ["kubernetes.io/pvc-protection"]'
sleep 2
check "writer2 still runs on its data meanwhile" test "$(pexec writer2 cat /data/hello | head -1)" = hello
check "the volume stays Bound meanwhile" fleet_wait "bound" 5 "/api/v1/persistentvolumes/$PV" '.status.phase == "Bound"'
api_delete /api/v1/namespaces/default/pods/writer2
check "writer2 is gone" wait_for "writer2 gone" $((30 * FLEET_TF)) gone writer2
claim_gone() { ! fleet_api /api/v1/namespaces/default/persistentvolumeclaims/data | jq -e '.metadata.name' >/dev/null 2>&1; }
check "the claim is deleted once its pod is gone" wait_for "claim gone" $((20 * FLEET_TF)) claim_gone
pv_gone() { ! fleet_api "/api/v1/persistentvolumes/$PV" | jq -e '.metadata.name' >/dev/null 2>&1; }
check "the volume $PV is deleted (reclaim policy Delete)" wait_for "pv gone" $((60 * FLEET_TF)) pv_gone
check "its directory is removed from $N" test ! -e "$DIR"

# 7. Retain: the volume is kept, Released, its data with it.
cat <<YAML | apply_text class-keep
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: keep}
provisioner: drover.io/local-path
reclaimPolicy: Retain
volumeBindingMode: WaitForFirstConsumer
YAML
claim_yaml kept keep | apply_text claim-kept
pod_yaml keeper kept | apply_text keeper
check "the keeper runs" running keeper 60
KN="$(node_of keeper)"
check "keeper writes" pexec keeper sh -c 'echo precious > /data/p'
KPV="$(fleet_api /api/v1/namespaces/default/persistentvolumeclaims/kept | jq -r .spec.volumeName)"
KDIR="${FLEET_DEV_DIR[$KN]}/state/storage/${KPV}_default_kept"
check "the kept volume has policy Retain" fleet_wait "retain" 10 "/api/v1/persistentvolumes/$KPV" \
  '.spec.persistentVolumeReclaimPolicy == "Retain"'
api_delete /api/v1/namespaces/default/pods/keeper
check "keeper is gone" wait_for "keeper gone" $((30 * FLEET_TF)) gone keeper
api_delete /api/v1/namespaces/default/persistentvolumeclaims/kept
check "the volume is Released, not deleted" fleet_wait "released" 20 "/api/v1/persistentvolumes/$KPV" \
  '.status.phase == "Released"'
sleep 3
check "still there 3 s later (Retain)" fleet_wait "still released" 5 "/api/v1/persistentvolumes/$KPV" \
  '.status.phase == "Released"'
check "its data is kept on $KN" test "$(cat "$KDIR/p" 2>/dev/null)" = precious

# 8. A claim whose node is deleted: the new pod stays Pending, the event names claim and node.
claim_yaml lost | apply_text claim-lost
pod_yaml lone lost | apply_text lone
check "lone runs" running lone 60
M="$(node_of lone)"
check "lone writes on $M" pexec lone sh -c 'echo mine > /data/m'
fleet_power_cut "$M"
api_delete /api/v1/namespaces/default/pods/lone
api_delete "/api/v1/nodes/$M"
node_gone() { ! fleet_api "/api/v1/nodes/$M" | jq -e '.metadata.name' >/dev/null 2>&1; }
check "node $M is deleted" wait_for "node gone" $((20 * FLEET_TF)) node_gone
pod_yaml lone2 lost | apply_text lone2
sleep 3
check "lone2 stays Pending, on no node" fleet_wait "lone2 pending" 10 /api/v1/namespaces/default/pods/lone2 \
  '.status.phase == "Pending" and (.spec.nodeName // "") == ""'
ev() {
  fleet_api /api/v1/namespaces/default/events | jq -e --arg m "$M" \
    'any(.items[]; .involvedObject.name == "lone2" and .reason == "FailedScheduling" and (.message | contains("\"lost\"") and contains($m)))' >/dev/null
}
check "a FailedScheduling event names the claim and node $M" wait_for "event" $((20 * FLEET_TF)) ev
fleet_api /api/v1/namespaces/default/events | jq -r '.items[] | select(.involvedObject.name == "lone2") | "# event: " + .message' | tail -1
check "no new volume was made for the claim" test "$(fleet_api /api/v1/persistentvolumes | jq '[.items[] | select(.spec.claimRef.name == "lost")] | length')" = 1
check "the data is still on $M's disk" test "$(cat "${FLEET_DEV_DIR[$M]}"/state/storage/pvc-*_default_lost/m 2>/dev/null)" = mine

fleet_finish
