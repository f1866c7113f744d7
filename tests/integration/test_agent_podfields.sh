#!/usr/bin/env bash
# The smaller pod fields on a standalone drover-agent running real pods with crun: the
# downwardAPI volume and resourceFieldRef, fsGroup and supplementalGroups, imagePullSecrets
# against a registry with htpasswd auth, hostAliases, and mountPropagation. Everything runs
# inside a network namespace made for this test.
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

# Two registries: an open one for the common image, one behind htpasswd for the private one.
registry_start || exit 1
layout="$(image_build_busybox busybox 1)" || exit 1
image_push "$layout" 1 test/busybox:1 || exit 1
IMG="$REGISTRY_ADDR/test/busybox:1"
OPEN_REG="$REGISTRY_ADDR"
registry_start --auth drover:s3cret || exit 1
PRIV_REG="$REGISTRY_ADDR"
REGISTRY_CREDS=drover:s3cret image_push "$layout" 1 private/busybox:1 || exit 1
REGISTRY_ADDR="$OPEN_REG"

# The private registry is spoken to over plain HTTP, without credentials of the agent's own:
# only the pod's imagePullSecrets can open it.
device_start pf "- {host: \"$PRIV_REG\", insecure: true}" || { cat "$DEV_LOG"; exit 1; }

phase_is() { [ "$(pod_field "$1" .status.phase)" = "$2" ]; }
logs_of() { device_exec "$DROVER_AGENT_BIN" logs --config "$DEV_CFG" "$1" ${2:-} 2>/dev/null; }
log_has() { logs_of "$1" "${3:-}" | grep -q -- "$2"; }

# 1. downwardAPI volume and env resourceFieldRef / fieldRef.
cat >"$DEV_MANIFESTS/downward.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: downward
  labels: {app: web, tier: front}
  annotations: {build: "42"}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: $IMG
    resources: {limits: {cpu: 1500m, memory: 64Mi}, requests: {cpu: 250m}}
    env:
    - {name: CPU_LIMIT, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}
    - {name: CPU_REQ_M, valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 1m}}}
    - {name: MEM_MI, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: APP, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    command: ["sh", "-c", "echo env=\$CPU_LIMIT/\$CPU_REQ_M/\$MEM_MI/\$APP; for f in name namespace labels annotations mem cpu_m; do echo \"\$f=\$(cat /info/\$f | tr '\\\\n' ' ')\"; done; sleep 2"]
    volumeMounts: [{name: info, mountPath: /info}]
  volumes:
  - name: info
    downwardAPI:
      items:
      - {path: name, fieldRef: {fieldPath: metadata.name}}
      - {path: namespace, fieldRef: {fieldPath: metadata.namespace}}
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: annotations, fieldRef: {fieldPath: metadata.annotations}}
      - {path: mem, resourceFieldRef: {containerName: main, resource: limits.memory, divisor: 1Mi}}
      - {path: cpu_m, resourceFieldRef: {containerName: main, resource: requests.cpu, divisor: 1m}}
YAML
if wait_for "downward Succeeded" 60 phase_is downward Succeeded; then ok "downwardAPI pod ran"; else bad "downwardAPI pod ran"; device_status | jq '.pods[] | select(.metadata.name=="downward") | .status'; tail -20 "$DEV_LOG"; fi
dl="$(logs_of downward)"
check "env resourceFieldRef and labels subscript (got: $(grep env= <<<"$dl"))" grep -q "^env=2/250/64/web$" <<<"$dl"
check "downwardAPI name" grep -q "^name=downward$" <<<"$dl"
check "downwardAPI namespace" grep -q "^namespace=default$" <<<"$dl"
check "downwardAPI labels as key=\"value\" lines (got: $(grep ^labels= <<<"$dl"))" grep -q '^labels=app="web" tier="front"$' <<<"$dl"
check "downwardAPI annotations" grep -q '^annotations=build="42"$' <<<"$dl"
check "downwardAPI resourceFieldRef files" grep -q "^mem=64$" <<<"$dl"
check "downwardAPI requests.cpu in millicores" grep -q "^cpu_m=250$" <<<"$dl"

# 2. fsGroup and supplementalGroups: the process has the groups, volumes belong to fsGroup.
cat >"$DEV_MANIFESTS/groups.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata: {name: only-group}
stringData: {key: group-can-read}
---
apiVersion: v1
kind: Pod
metadata: {name: groups}
spec:
  restartPolicy: Never
  securityContext: {runAsUser: 1000, runAsGroup: 1000, fsGroup: 2000, supplementalGroups: [3000]}
  containers:
  - name: main
    image: $IMG
    command: ["sh", "-c", "echo groups=\$(id -G); echo data=\$(stat -c '%g %a' /data); touch /data/f && echo wrote=\$(stat -c %g /data/f); echo secret=\$(cat /secret/key); echo smode=\$(stat -L -c '%g %a' /secret/key)"]
    volumeMounts: [{name: data, mountPath: /data}, {name: secret, mountPath: /secret}]
  volumes:
  - {name: data, emptyDir: {}}
  - {name: secret, secret: {secretName: only-group, defaultMode: 256}} # 0400
YAML
if wait_for "groups Succeeded" 60 phase_is groups Succeeded; then ok "fsGroup pod ran"; else bad "fsGroup pod ran"; device_status | jq '.pods[] | select(.metadata.name=="groups") | .status'; fi
gl="$(logs_of groups)"
has_groups() { local g; g=" $(grep ^groups= <<<"$gl" | cut -d= -f2) "; [[ "$g" == *" 1000 "* && "$g" == *" 2000 "* && "$g" == *" 3000 "* ]]; }
check "process groups hold supplementalGroups and fsGroup (got: $(grep groups= <<<"$gl"))" has_groups
check "emptyDir is fsGroup's, setgid (got: $(grep ^data= <<<"$gl"))" grep -q "^data=2000 2777$" <<<"$gl"
check "new files inherit fsGroup" grep -q "^wrote=2000$" <<<"$gl"
check "secret with defaultMode 0400 readable through fsGroup" grep -q "^secret=group-can-read$" <<<"$gl"
check "secret file is 0440 for fsGroup (got: $(grep ^smode= <<<"$gl"))" grep -q "^smode=2000 440$" <<<"$gl"

# 3. imagePullSecrets: without the Secret the pull is refused; with it the pod runs.
auth_b64="$(printf drover:s3cret | base64 -w0)"
cat >"$DEV_MANIFESTS/private.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata: {name: regcred}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths":{"http://$PRIV_REG/v1/":{"auth":"$auth_b64"}}}'
---
apiVersion: v1
kind: Pod
metadata: {name: private}
spec:
  restartPolicy: Never
  imagePullSecrets: [{name: regcred}]
  containers:
  - {name: main, image: $PRIV_REG/private/busybox:1, command: ["sh", "-c", "echo pulled-with-secret"]}
---
apiVersion: v1
kind: Pod
metadata: {name: nosecret}
spec:
  restartPolicy: Never
  imagePullSecrets: [{name: missing-cred}]
  containers:
  - {name: main, image: $PRIV_REG/private/busybox:1, command: ["true"]}
YAML
if wait_for "private Succeeded" 60 phase_is private Succeeded; then ok "private image pulled with the pod's imagePullSecrets"; else bad "private image pulled with the pod's imagePullSecrets"; device_status | jq '.pods[] | select(.metadata.name=="private") | .status'; fi
check "private pod output" log_has private pulled-with-secret
pull_refused() { pod_field nosecret .status.reason | grep -q ImagePullBackOff; }
check "missing pull secret: ImagePullBackOff" wait_for "nosecret back-off" 30 pull_refused
msg="$(pod_field nosecret .status.message)"
check "missing pull secret: message names it and the 401 (got: $msg)" grep -q "needs credentials.*imagePullSecrets not found: missing-cred" <<<"$msg"
check "missing pull secret logged" grep -q "FailedToRetrieveImagePullSecret.*missing-cred" "$DEV_LOG"
check "no credential in the agent log" test "$(grep -c "$auth_b64\|s3cret" "$DEV_LOG")" = 0
rm -f "$DEV_MANIFESTS/private.yaml"

# 4. hostAliases: /etc/hosts carries them after the pod's own lines.
cat >"$DEV_MANIFESTS/aliases.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: aliases}
spec:
  restartPolicy: Never
  hostAliases:
  - {ip: 10.1.2.3, hostnames: [foo.local, bar.local]}
  - {ip: "fd00::5", hostnames: [six.local]}
  containers:
  - {name: main, image: $IMG, command: ["sh", "-c", "cat /etc/hosts; echo; nslookup foo.local 2>&1 | tail -2; sleep 1"]}
YAML
if wait_for "aliases Succeeded" 60 phase_is aliases Succeeded; then ok "hostAliases pod ran"; else bad "hostAliases pod ran"; fi
al="$(logs_of aliases)"
check "hostAliases header in /etc/hosts" grep -q "^# Entries added by HostAliases.$" <<<"$al"
check "hostAliases IPv4 line (got: $(grep foo <<<"$al" | head -1))" grep -qP "^10\.1\.2\.3\tfoo\.local\tbar\.local$" <<<"$al"
check "hostAliases IPv6 line" grep -qP "^fd00::5\tsix\.local$" <<<"$al"
check "pod's own line kept" grep -qP "^10\.88\.[0-9.]+\taliases$" <<<"$al"

# 5. mountPropagation HostToContainer: a mount made on the host under the volume after the
#    container started shows inside it; with None it does not.
hp="$DEV_DIR/shared"
mkdir -p "$hp"
device_exec sh -c "mount --bind '$hp' '$hp' && mount --make-shared '$hp'" || bad "make the hostPath a shared mount"
cat >"$DEV_MANIFESTS/prop.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: prop}
spec:
  containers:
  - name: slave
    image: $IMG
    command: ["sh", "-c", "while true; do if [ -e /host/late/marker ]; then echo seen-late-mount; else echo not-yet; fi; sleep 1; done"]
    volumeMounts: [{name: host, mountPath: /host, mountPropagation: HostToContainer}]
  - name: private
    image: $IMG
    command: ["sh", "-c", "while true; do if [ -e /host/late/marker ]; then echo seen-late-mount; else echo not-yet; fi; sleep 1; done"]
    volumeMounts: [{name: host, mountPath: /host}]
  volumes:
  - {name: host, hostPath: {path: $hp}}
YAML
running() { [ "$(pod_field prop '[.status.containerStatuses[].state.running] | map(select(. != null)) | length')" = 2 ]; }
if wait_for "prop running" 60 running; then ok "mountPropagation pod running"; else bad "mountPropagation pod running"; device_status | jq '.pods[] | select(.metadata.name=="prop") | .status'; fi
mkdir -p "$hp/late"
device_exec sh -c "mount -t tmpfs tmpfs '$hp/late' && touch '$hp/late/marker'" || bad "mount under the hostPath"
check "HostToContainer: the late mount propagates in" wait_for "propagation" 20 log_has prop "seen-late-mount" slave
sleep 2
check "None: the late mount stays out" test "$(logs_of prop private | grep -c seen-late-mount)" = 0
cfg_prop() { device_exec sh -c "cat '$DEV_DIR'/run/bundles/*/slave/config.json" | jq -e '.linux.rootfsPropagation == "rslave"' >/dev/null; }
check "crun config: rslave mount and rootfsPropagation" cfg_prop
device_exec umount -l "$hp/late" 2>/dev/null

# 5b. Bidirectional (privileged only): a mount the container makes shows on the host.
mkdir -p "$hp/bidi"
cat >"$DEV_MANIFESTS/bidi.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: bidi}
spec:
  containers:
  - name: main
    image: $IMG
    securityContext: {privileged: true}
    command: ["sh", "-c", "mount -t tmpfs tmpfs /host/bidi && touch /host/bidi/from-pod && echo mounted; sleep 3600"]
    volumeMounts: [{name: host, mountPath: /host, mountPropagation: Bidirectional}]
  volumes:
  - {name: host, hostPath: {path: $hp}}
YAML
host_sees() { device_exec test -e "$hp/bidi/from-pod"; }
if wait_for "bidirectional" 60 host_sees; then ok "Bidirectional: the pod's mount propagates out"; else bad "Bidirectional: the pod's mount propagates out"; device_status | jq -c '.pods[] | select(.metadata.name=="bidi") | .status'; logs_of bidi; fi
rm -f "$DEV_MANIFESTS/bidi.yaml" "$DEV_MANIFESTS/prop.yaml"
gone() { [ -z "$(pod_field bidi .metadata.name)" ]; }
wait_for "bidi gone" 60 gone || true
device_exec umount -l "$hp/bidi" 2>/dev/null

echo "# $fails failure(s)"
[ "$fails" -eq 0 ]
