#!/usr/bin/env bash
# The manifests people bring (issue 18): tests/manifests/upstream/*.yaml — Prometheus
# node-exporter, Fluent Bit and Telegraf DaemonSets, Home Assistant with a PVC, MySQL +
# WordPress with PVCs and a Secret — written from our reading of those projects' published
# manifests and charts (each file names its source). 1: `drover validate` accepts each file as
# it is, and every refusal is printed. 2: on a real fleet (hub in its default secure
# configuration, two devices in network namespaces of their own), `kubectl apply -f` of each
# file unchanged, then: DaemonSet pods Running and Ready on every node, Deployments available,
# PVCs Bound, Services with endpoints, hostNetwork ports answering on the nodes' addresses.
#
# The images are STAND-INS, not the upstream programs: busybox plus small sh scripts installed
# under the upstream images' names and paths (/bin/node_exporter, /fluent-bit/bin/fluent-bit,
# telegraf, /init, mysqld, apache2-foreground, docker-entrypoint.sh), with the upstream images'
# entrypoints, so that the manifests' own command/args run them. They ignore most flags and serve
# fixed pages or sleep; what they do check (a config file that a ConfigMap mounts, env from a
# Secret or fieldRef, data kept on a claim) is said in each script and logged. They are pushed
# to the local registry under the upstream repository names, and the devices reach them through
# a registry mirror (agent.yaml `registries.mirrors."*"`, K3s style) — the manifests keep their
# quay.io / cr.fluentbit.io / ghcr.io / docker.io image references.
#
# The devices share this machine's filesystem: hostPath directories a node creates for these
# manifests (/var/lib/docker/containers, /var/run/docker.sock, /var/run/utmp) appear here; the
# test removes, at exit, the empty ones it made.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib/fleet.sh"
# UPSTREAM_MANIFESTS_DIR: other files of the same names (to try the checks on edited copies
# while developing; the test proper is the files as they are).
src="$(cd "${UPSTREAM_MANIFESTS_DIR:-$here/../manifests/upstream}" && pwd)"
FILES=(node-exporter fluent-bit telegraf home-assistant mysql-wordpress)

kubectl_find() {
  local c
  for c in "/usr/lib/google-cloud-sdk/bin/kubectl.1.$1" $(type -ap kubectl); do
    # (not piped into grep -q: under pipefail, kubectl's SIGPIPE would fail the test)
    [ -x "$c" ] && [[ "$("$c" version --client 2>/dev/null)" == *"v1.$1."* ]] && { echo "$c"; return 0; }
  done
  return 1
}
KUBECTL="$(kubectl_find 31)" || KUBECTL="$(kubectl_find 33)" || {
  echo "SKIP: no kubectl 1.31 or 1.33" >&2
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
}
netns_enter "$0" "$@"
need_tools() {
  local t
  for t in wg wireguard-go nft umoci; do
    command -v "$t" >/dev/null 2>&1 || { echo "test_upstream_manifests: missing $t" >&2; return 1; }
  done
  fleet_require_tools
}
if ! need_tools; then
  [ -n "${DROVER_ALLOW_SKIP:-}" ] && exit 77
  exit 1
fi

# ---- 1: drover validate, each file as it is ----
validate_ok() {
  local f="$src/$1.yaml" out
  out="$("$FLEET_CLI" validate -f "$f" 2>&1 >/dev/null)"
  local rc=$?
  local l
  [ -z "$out" ] || while IFS= read -r l; do echo "#   ${l#"$src"/}"; done <<<"$out"
  [ "$rc" = 0 ]
}
for f in "${FILES[@]}"; do
  check "drover validate accepts $f.yaml unchanged" validate_ok "$f"
done

# ---- the fleet ----
fleet_wan_setup || exit 1
fleet_setup || exit 1
export FLEET_SECURE=1 FLEET_DUMP_LINES=40
fleet_hub_start || { fleet_dump; exit 1; }
# Every registry is mirrored by the local one (its own plain-HTTP address included).
export FLEET_REGISTRIES="registries:
  mirrors:
    \"*\":
      endpoint: [\"http://$REGISTRY_ADDR\"]"
fleet_netns_device dev1 1 || exit 1
fleet_netns_device dev2 2 || exit 1
for k in 1 2; do
  fleet_device_start "dev$k" "$k" || { fleet_dump; exit 1; }
done
for k in 1 2; do
  fleet_wait "node dev$k Ready" 60 "/api/v1/nodes/dev$k" "$FLEET_JQ_READY" || { fleet_dump; exit 1; }
done
T="$FLEET_TMP/upstream"
mkdir -p "$T"
echo "# fleet up: hub $FLEET_HUB, registry $REGISTRY_ADDR (the devices' mirror), $KUBECTL"

# ---- the stand-in images ----
# standin_script DIR PATH: writes stdin to DIR/PATH, executable.
standin_script() {
  mkdir -p "$(dirname "$1/$2")"
  cat >"$1/$2"
  chmod 755 "$1/$2"
}
# The serving helper every stand-in sources: busybox httpd on PORT for DIR, stopped on SIGTERM
# (a pid 1 shell ignores it otherwise, and the pod would wait out its grace period).
# shellcheck disable=SC2016 # expanded by the stand-in's shell, not here
SERVE='serve() { httpd -f -p "$1" -h "$2" & pid=$!; trap "kill $pid 2>/dev/null; exit 0" TERM INT; wait $pid; }'

S="$T/standins"
mkdir -p "$S"
d="$S/node-exporter"
standin_script "$d" bin/node_exporter <<EOF
#!/bin/sh
# Drover test stand-in for Prometheus node_exporter, NOT node_exporter: prints its arguments,
# ignores every flag but --web.listen-address, and serves a fixed page on that port.
$SERVE
echo "node_exporter stand-in: args: \$*"
addr=":9100"
for a in "\$@"; do case "\$a" in --web.listen-address=*) addr="\${a#--web.listen-address=}" ;; esac; done
serve "\${addr##*:}" /usr/share/standin/www
EOF
mkdir -p "$d/usr/share/standin/www"
echo "node_exporter stand-in" >"$d/usr/share/standin/www/index.html"
echo "standin_node_exporter_up 1" >"$d/usr/share/standin/www/metrics"

d="$S/fluent-bit"
standin_script "$d" fluent-bit/bin/fluent-bit <<EOF
#!/bin/sh
# Drover test stand-in for Fluent Bit, NOT fluent-bit: needs the file --config names (the
# chart's ConfigMap), takes HTTP_Port from it and serves / and /api/v1/health there.
$SERVE
echo "fluent-bit stand-in: args: \$*"
conf=""
for a in "\$@"; do case "\$a" in --config=*) conf="\${a#--config=}" ;; esac; done
[ -n "\$conf" ] && [ -f "\$conf" ] || { echo "fluent-bit stand-in: no config file '\$conf'" >&2; exit 1; }
port="\$(sed -n 's/^ *HTTP_Port *\([0-9][0-9]*\).*/\1/p' "\$conf" | head -n 1)"
echo "fluent-bit stand-in: HTTP_Port \${port:-2020} from \$conf"
serve "\${port:-2020}" /usr/share/standin/www
EOF
mkdir -p "$d/usr/share/standin/www/api/v1"
echo "fluent-bit stand-in" >"$d/usr/share/standin/www/index.html"
echo '{"status":"ok"}' >"$d/usr/share/standin/www/api/v1/health"

d="$S/telegraf"
standin_script "$d" entrypoint.sh <<'EOF'
#!/bin/sh
# Drover test stand-in for the telegraf image's entrypoint: runs its command.
exec "$@"
EOF
standin_script "$d" usr/bin/telegraf <<'EOF'
#!/bin/sh
# Drover test stand-in for Telegraf, NOT telegraf: needs /etc/telegraf/telegraf.conf (the
# chart's ConfigMap) and the host's /proc under HOST_PROC, logs the env the chart sets, sleeps.
[ -f /etc/telegraf/telegraf.conf ] || { echo "telegraf stand-in: no /etc/telegraf/telegraf.conf" >&2; exit 1; }
[ -f "$HOST_PROC/uptime" ] || { echo "telegraf stand-in: no $HOST_PROC/uptime" >&2; exit 1; }
echo "telegraf stand-in: config $(wc -l </etc/telegraf/telegraf.conf) lines HOSTNAME=$HOSTNAME HOSTIP=$HOSTIP"
trap 'exit 0' TERM INT
while :; do sleep 5 & wait $!; done
EOF

d="$S/home-assistant"
standin_script "$d" init <<EOF
#!/bin/sh
# Drover test stand-in for Home Assistant, NOT Home Assistant: keeps a version file and a boot log
# in /config (the claim), serves a page on 8123.
$SERVE
if [ -f /config/.HA_VERSION ]; then echo "home-assistant stand-in: existing configuration"
else echo 2024.10.1 >/config/.HA_VERSION || exit 1; echo "home-assistant stand-in: new configuration"; fi
echo "\$(date) start TZ=\$TZ" >>/config/home-assistant.log
serve 8123 /usr/share/standin/www
EOF
mkdir -p "$d/usr/share/standin/www"
echo "home-assistant stand-in" >"$d/usr/share/standin/www/index.html"

d="$S/mysql"
standin_script "$d" usr/local/bin/docker-entrypoint.sh <<'EOF'
#!/bin/sh
# Drover test stand-in for the mysql image's entrypoint: refuses, as it does, to start mysqld
# without MYSQL_ROOT_PASSWORD.
if [ "$1" = mysqld ] && [ -z "${MYSQL_ROOT_PASSWORD:-}" ]; then
  echo "error: database is uninitialized and MYSQL_ROOT_PASSWORD is not set" >&2
  exit 1
fi
exec "$@"
EOF
standin_script "$d" usr/local/bin/mysqld <<EOF
#!/bin/sh
# Drover test stand-in for mysqld, NOT MySQL: keeps a file in /var/lib/mysql (the claim) saying
# which pod made it, and answers TCP (HTTP) on 3306.
$SERVE
echo "mysqld stand-in: MYSQL_ROOT_PASSWORD \${#MYSQL_ROOT_PASSWORD} characters, database \$MYSQL_DATABASE user \$MYSQL_USER"
if [ -f /var/lib/mysql/standin-data ]; then
  echo "mysqld stand-in: existing data directory, made by \$(cat /var/lib/mysql/standin-data)"
else
  hostname >/var/lib/mysql/standin-data || exit 1
  echo "mysqld stand-in: new data directory"
fi
serve 3306 /usr/share/standin/www
EOF
mkdir -p "$d/usr/share/standin/www"
echo "mysqld stand-in" >"$d/usr/share/standin/www/index.html"

d="$S/wordpress"
standin_script "$d" usr/local/bin/docker-entrypoint.sh <<'EOF'
#!/bin/sh
# Drover test stand-in for the wordpress image's entrypoint: runs its command.
exec "$@"
EOF
standin_script "$d" usr/local/bin/apache2-foreground <<EOF
#!/bin/sh
# Drover test stand-in for WordPress on Apache, NOT WordPress: writes its page into
# /var/www/html (the claim), logs once the database Service answers, serves on 80.
$SERVE
echo "wordpress stand-in: WORDPRESS_DB_PASSWORD \${#WORDPRESS_DB_PASSWORD} characters"
[ -f /var/www/html/index.html ] || echo "wordpress stand-in" >/var/www/html/index.html || exit 1
( i=0
  while [ \$i -lt 150 ]; do
    if nc -w 2 "\$WORDPRESS_DB_HOST" 3306 </dev/null >/dev/null 2>&1; then
      echo "wordpress stand-in: database \$WORDPRESS_DB_HOST:3306 answered"; exit 0
    fi
    i=\$((i + 1)); sleep 2
  done
  echo "wordpress stand-in: database \$WORDPRESS_DB_HOST:3306 never answered" ) &
serve 80 /var/www/html
EOF

# _standin_derive BASE NAME TAG DIR ENTRYPOINT CMD OUT: busybox + DIR's files, with the upstream
# image's entrypoint and command.
_standin_derive() {
  local base="$1" name="$2" tag="$3" dir="$4" ep="$5" cmd="$6" out="$7"
  cp -a "$base" "$out/oci" &&
    umoci tag --image "$out/oci:base" "$tag" &&
    mkdir -p "$out/add/etc" && cp -a "$dir/." "$out/add/" &&
    printf 'stand-in for %s:%s\n' "$name" "$tag" >"$out/add/etc/drover-image" &&
    _image_add_layer "$out/oci" "$tag" "$out/add" &&
    umoci config --image "$out/oci:$tag" --clear config.cmd --clear config.env &&
    umoci config --image "$out/oci:$tag" --config.env PATH=/usr/local/bin:/usr/bin:/bin \
      --config.entrypoint "$ep" ${cmd:+--config.cmd "$cmd"} --architecture amd64 --os linux &&
    umoci gc --layout "$out/oci" && rm -rf "$out/add"
}
# standin_push NAME DIR ENTRYPOINT CMD IMAGE: builds (cached by content) and pushes as IMAGE's
# repository and tag, under the local registry (what the mirror serves for IMAGE).
standin_push() {
  local name="$1" dir="$2" ep="$3" cmd="$4" image="$5" repo tag base key out
  repo="${image%:*}" tag="${image##*:}"
  case "$repo" in
    */*/*) repo="${repo#*/}" ;; # a registry host: the path under it
    */*) case "${repo%%/*}" in *.*|*:*) repo="${repo#*/}" ;; esac ;;
    *) repo="library/$repo" ;; # docker.io's one-component names
  esac
  base="$(_image_base_layout)" || return 1
  key="$(_registry_hash "$base" "$name" "$tag" "$ep" "$cmd" "$(cd "$dir" && tar -c --sort=name --mtime=@0 --owner=0 --group=0 . | sha256sum)")"
  out="$REGISTRY_IMAGES_DIR/standin-$key"
  _registry_cached "$out" _standin_derive "$base" "$name" "$tag" "$dir" "$ep" "$cmd" || return 1
  image_push "$out/oci" "$tag" "$repo:$tag"
}
push_ok=1
standin_push node-exporter "$S/node-exporter" /bin/node_exporter "" quay.io/prometheus/node-exporter:v1.8.2 || push_ok=0
standin_push fluent-bit "$S/fluent-bit" /fluent-bit/bin/fluent-bit "" cr.fluentbit.io/fluent/fluent-bit:3.1.9 || push_ok=0
standin_push telegraf "$S/telegraf" /entrypoint.sh telegraf telegraf:1.32-alpine || push_ok=0
standin_push home-assistant "$S/home-assistant" /init "" ghcr.io/home-assistant/home-assistant:2024.10.1 || push_ok=0
standin_push mysql "$S/mysql" docker-entrypoint.sh mysqld mysql:8.0 || push_ok=0
standin_push wordpress "$S/wordpress" docker-entrypoint.sh apache2-foreground wordpress:6.2.1-apache || push_ok=0
[ "$push_ok" = 1 ] || { echo "test_upstream_manifests: stand-in images not pushed" >&2; exit 1; }

# ---- helpers ----
KC="$T/admin.kubeconfig"
"$FLEET_CLI" kubeconfig >"$KC" 2>"$T/kubeconfig.err" || { cat "$T/kubeconfig.err" >&2; exit 1; }
kc() { "$KUBECTL" --kubeconfig "$KC" "$@"; }
api_jq() { fleet_api "$1" | jq -e "$2" >/dev/null 2>&1; }
# APPLIED: whether the current file's apply succeeded; when it did not, the checks that follow
# still run (and fail) but wait only a few seconds.
APPLIED=1
secs() { if [ "$APPLIED" = 1 ]; then echo "$1"; else echo 5; fi; }
until_jq() { fleet_wait "$1" "$(secs "$2")" "$3" "$4" 2>&1 | sed 's/^/# /'; api_jq "$3" "$4"; }
node_ip() { [ -z "$1" ] || echo "192.168.77.$((10 + ${1#dev}))"; }
# log_has POD NS REGEX [SECS]: until the pod's log matches.
log_has() {
  [ -n "$1" ] || { echo "#   no pod in $2"; return 1; }
  local deadline=$((SECONDS + $(secs "${4:-30}") * FLEET_TF))
  while :; do
    fleet_logs "$1" "$2" 2>/dev/null | grep -qE -- "$3" && return 0
    [ "$SECONDS" -ge "$deadline" ] && { echo "#   log of $2/$1: $(fleet_logs "$1" "$2" 2>&1 | tail -n 5 | tr '\n' '|')"; return 1; }
    sleep 1
  done
}
pod_names() { fleet_pods "$1" "$2" | jq -r '.items[] | select(.metadata.deletionTimestamp == null) | .metadata.name'; }
ds_ready() { # NS NAME: desired = ready = 2 nodes, and pods on both
  until_jq "DaemonSet $1/$2 ready on both nodes" 120 "/apis/apps/v1/namespaces/$1/daemonsets/$2" \
    '.status.desiredNumberScheduled == 2 and .status.numberReady == 2 and .status.numberAvailable == 2'
}
pods_on_both() { # SELECTOR NS
  [ "$(fleet_pods "$1" "$2" | jq -r '[.items[] | select(.metadata.deletionTimestamp == null and .status.phase == "Running") | .spec.nodeName] | unique | join(",")')" = "dev1,dev2" ]
}
deploy_available() { # NS NAME
  until_jq "Deployment $1/$2 available" 120 "/apis/apps/v1/namespaces/$1/deployments/$2" \
    '.status.availableReplicas == 1 and ([.status.conditions[]? | select(.type == "Available") | .status] == ["True"])'
}
pvc_bound() { # NS NAME
  until_jq "PVC $1/$2 Bound" 120 "/api/v1/namespaces/$1/persistentvolumeclaims/$2" '.status.phase == "Bound"'
}
endpoints_n() { # NS NAME N
  until_jq "Service $1/$2 with $3 endpoint address(es)" 60 "/api/v1/namespaces/$1/endpoints/$2" \
    "[.subsets[]?.addresses[]?] | length == $3"
}
http_has() { # URL REGEX: from this namespace (the simulated network), until it answers
  local deadline=$((SECONDS + $(secs 30) * FLEET_TF))
  while :; do
    curl -s --max-time 3 "$1" 2>/dev/null | grep -qE -- "$2" && return 0
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 1
  done
}
apply_ok() { # FILE: kubectl apply -f, unchanged; prints what kubectl said
  kc apply -f "$src/$1.yaml" >"$T/apply-$1.out" 2>&1
  local rc=$?
  sed 's/^/#   /' "$T/apply-$1.out"
  [ "$rc" = 0 ] && echo "$1" >>"$T/applied"
  [ "$rc" = 0 ]
}
applied() { if grep -qx "$1" "$T/applied" 2>/dev/null; then APPLIED=1; else APPLIED=0; fi; }

# ---- the mirror itself: a docker.io name runs from the local registry ----
cat >"$T/mirror-probe.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: mirror-probe, labels: {app: mirror-probe}}
spec:
  nodeName: dev1
  containers:
  - {name: c, image: "quay.io/prometheus/node-exporter:v1.8.2", args: ["--web.listen-address=:9109"]}
YAML
kc apply -f "$T/mirror-probe.yaml" >/dev/null 2>&1
check "mirror: quay.io/prometheus/node-exporter pulled from the local mirror and Running" \
  fleet_running app=mirror-probe 1 90
kc delete pod mirror-probe --wait=false >/dev/null 2>&1

# The devices share this machine's filesystem: the hostPath directories the manifests make a
# node create (containerd's rule for a missing path) appear here. Remove, at exit, the empty
# ones that were not there before.
HOST_PATHS="/var/lib/docker/containers /var/lib/docker /var/run/docker.sock /var/run/utmp"
made_here=""
for p in $HOST_PATHS; do [ -e "$p" ] || made_here="$made_here $p"; done
# shellcheck disable=SC2086 # a blank-separated list
registry_on_exit "for p in $made_here; do [ -d \"\$p\" ] && rmdir \"\$p\" 2>/dev/null; done; true"

# ---- 2: apply each file unchanged ----
kc create namespace monitoring >/dev/null 2>&1
kc create namespace logging >/dev/null 2>&1
for f in "${FILES[@]}"; do
  check "kubectl apply -f $f.yaml (unchanged)" apply_ok "$f"
done

# node-exporter: hostNetwork + hostPID, args with $(HOST_IP), probes on 9100, a headless-less Service.
NE="node-exporter-prometheus-node-exporter"
NE_SEL="app.kubernetes.io/name=prometheus-node-exporter"
applied node-exporter
check "node-exporter: DaemonSet pods Running and Ready on every node" ds_ready monitoring "$NE"
check "node-exporter: one pod on dev1, one on dev2" pods_on_both "$NE_SEL" monitoring
check "node-exporter: \$(HOST_IP) expanded in its args ([0.0.0.0]:9100)" \
  log_has "$(pod_names "$NE_SEL" monitoring | head -n 1)" monitoring 'listen-address=\[0\.0\.0\.0\]:9100'
for n in dev1 dev2; do
  check "node-exporter: /metrics answers on $n's own address (hostNetwork)" \
    http_has "http://$(node_ip "$n"):9100/metrics" standin_node_exporter_up
done
check "node-exporter: its Service has both pods as endpoints" endpoints_n monitoring "$NE" 2

# fluent-bit: ConfigMap mounted as its config directory, hostPath mounts, probes on a named port.
FB_SEL="app.kubernetes.io/name=fluent-bit"
applied fluent-bit
check "fluent-bit: DaemonSet pods Running and Ready on every node" ds_ready logging fluent-bit
check "fluent-bit: one pod on dev1, one on dev2" pods_on_both "$FB_SEL" logging
check "fluent-bit: read HTTP_Port from the ConfigMap's fluent-bit.conf" \
  log_has "$(pod_names "$FB_SEL" logging | head -n 1)" logging 'HTTP_Port 2020 from /fluent-bit/etc/conf/fluent-bit.conf'
check "fluent-bit: its Service has both pods as endpoints" endpoints_n logging fluent-bit 2

# telegraf: fieldRef env (spec.nodeName, status.hostIP), the host's / read-only at /hostfs.
TG_SEL="app.kubernetes.io/name=telegraf-ds"
applied telegraf
check "telegraf: DaemonSet pods Running and Ready on every node" ds_ready default telegraf-ds
check "telegraf: one pod on dev1, one on dev2" pods_on_both "$TG_SEL" default
tg_env() {
  local p node n=0
  for p in $(pod_names "$TG_SEL" default); do
    n=$((n + 1))
    node="$(fleet_api "/api/v1/namespaces/default/pods/$p" | jq -r .spec.nodeName)"
    log_has "$p" default "HOSTNAME=$node HOSTIP=$(node_ip "$node")" || return 1
  done
  [ "$n" = 2 ] || { echo "#   $n telegraf pods, want 2"; return 1; }
}
check "telegraf: HOSTNAME and HOSTIP from fieldRefs are its node's" tg_env

# Home Assistant: a claim for /config, hostNetwork, tcpSocket probes.
HA_SEL="app.kubernetes.io/name=home-assistant"
applied home-assistant
check "home-assistant: PVC home-assistant-config Bound" pvc_bound default home-assistant-config
check "home-assistant: Deployment available" deploy_available default home-assistant
ha_node() { fleet_pods "$HA_SEL" default | jq -r '[.items[] | select(.status.phase == "Running") | .spec.nodeName][0] // empty'; }
check "home-assistant: answers on 8123 at its node's address (hostNetwork)" \
  http_has "http://$(node_ip "$(ha_node)"):8123/" "home-assistant stand-in"
check "home-assistant: its Service has an endpoint" endpoints_n default home-assistant 1

# MySQL + WordPress: two claims, a Secret as env, a headless Service found by name.
applied mysql-wordpress
check "mysql: PVC mysql-pv-claim Bound" pvc_bound default mysql-pv-claim
check "wordpress: PVC wp-pv-claim Bound" pvc_bound default wp-pv-claim
check "mysql: Deployment available" deploy_available default wordpress-mysql
check "wordpress: Deployment available" deploy_available default wordpress
MY_SEL="app=wordpress,tier=mysql"
WP_SEL="app=wordpress,tier=frontend"
check "mysql: MYSQL_ROOT_PASSWORD from the Secret (13 characters)" \
  log_has "$(pod_names "$MY_SEL" default | head -n 1)" default 'MYSQL_ROOT_PASSWORD 13 characters'
check "mysql: headless Service wordpress-mysql has its endpoint" endpoints_n default wordpress-mysql 1
check "wordpress: Service wordpress has its endpoint" endpoints_n default wordpress 1
check "wordpress: reached the database by the headless Service's name" \
  log_has "$(pod_names "$WP_SEL" default | head -n 1)" default 'database wordpress-mysql:3306 answered' 120
old="$(pod_names "$MY_SEL" default | head -n 1)"
kc delete pod "$old" --wait=false >/dev/null 2>&1
new_mysql() {
  local p
  p="$(fleet_pods "$MY_SEL" default | jq -r --arg o "$old" '[.items[] | select(.metadata.name != $o and .metadata.deletionTimestamp == null and .status.phase == "Running")][0].metadata.name // empty')"
  [ -n "$p" ] && echo "$p" >"$T/new-mysql"
}
mysql_kept_data() {
  [ -n "$old" ] || { echo "#   no mysql pod"; return 1; }
  wait_for "a new mysql pod" $(($(secs 120) * FLEET_TF)) new_mysql || return 1
  log_has "$(cat "$T/new-mysql")" default "existing data directory, made by $old"
}
check "mysql: a new pod finds the data the deleted one left on the claim" mysql_kept_data

if [ "$FLEET_FAILS" -gt 0 ]; then
  echo "--- what the hub holds (kubectl get -A -o wide)" >&2
  for r in daemonsets deployments pods services endpoints persistentvolumeclaims persistentvolumes; do
    kc get "$r" -A -o wide >&2 2>&1
  done
fi
fleet_finish
