# shellcheck shell=bash
# Test fixture, sourced by integration tests: a real Debian docker-registry on 127.0.0.1 and
# small test images built with umoci from busybox-static, pushed with skopeo.
#
#   registry_require_tools || exit 77    # says what is missing
#   registry_start [--auth USER:PASS]    # sets REGISTRY_ADDR REGISTRY_DIR REGISTRY_DATA
#                                        # (REGISTRY_HOST: its address, default 127.0.0.1)
#                                        #      REGISTRY_PID REGISTRY_LOG; stopped on EXIT
#   registry_start --token USER:PASS [--token-repos "app other"]
#                                        # bearer-token auth: a token service (busybox httpd,
#                                        # basic auth) at REGISTRY_TOKEN_ADDR
#   registry_stop [PID]
#   layout=$(image_build_busybox NAME TAG [CMD...])   # OCI layout dir holding tag TAG
#   image_push LAYOUT TAG NAME:TAG [skopeo-args...]   # to $REGISTRY_ADDR
#   image_push_multiarch NAME:TAG        # index linux/amd64 + linux/arm64/v8 + linux/arm/v6;
#                                        # sets IMAGE_INDEX_DIGEST IMAGE_AMD64_DIGEST
#                                        #      IMAGE_ARM64_DIGEST IMAGE_ARMV6_DIGEST
#   image_manifest_digest LAYOUT TAG     # prints sha256:...
#   image_layers LAYOUT TAG              # prints the layer digests, bottom first
#   registry_blob_file DIGEST            # the file holding a blob in the registry's storage
#   registry_on_exit CMD                 # run CMD (eval'd) at exit, last registered first
#
# Every busybox image has the same bottom layer (busybox + applet symlinks) and its own top
# layer with /etc/drover-image ("NAME:TAG"), so images share a layer. Built layouts are cached
# under ${DROVER_BUILD_DIR}/test-images keyed by a hash of everything that goes into them.

# shellcheck disable=SC2034 # the variables set here are for the sourcing test
# Cached layouts are keyed by this file's content too: change the fixture, get new images.
REGISTRY_FIXTURE_VERSION="3-$(sha256sum <"${BASH_SOURCE[0]}" | cut -c1-16)"
REGISTRY_IMAGES_ROOT="${DROVER_BUILD_DIR:-${TMPDIR:-/tmp}}/test-images"
REGISTRY_IMAGES_DIR="$REGISTRY_IMAGES_ROOT/v$REGISTRY_FIXTURE_VERSION"

REGISTRY_BUSYBOX="${REGISTRY_BUSYBOX:-/bin/busybox}"
REGISTRY_APPLETS="sh ash echo cat sleep wget nc httpd ls ps kill mkdir rm cp mv touch env id
                  true false test [ grep sed head tail wc date hostname ip ping printf sync"

_registry_exit_cmds=()
_registry_pids=()

_registry_run_exit() {
  local i
  for ((i = ${#_registry_exit_cmds[@]} - 1; i >= 0; i--)); do
    eval "${_registry_exit_cmds[$i]}" || true
  done
}

registry_on_exit() {
  if [ "${#_registry_exit_cmds[@]}" -eq 0 ]; then
    trap _registry_run_exit EXIT
  fi
  _registry_exit_cmds+=("$1")
}

registry_require_tools() {
  local missing="" t
  for t in docker-registry umoci skopeo jq curl perl sha256sum openssl base64; do
    command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
  done
  if [ ! -x "$REGISTRY_BUSYBOX" ] || ! file_is_static "$REGISTRY_BUSYBOX"; then
    missing="$missing busybox-static($REGISTRY_BUSYBOX)"
  fi
  if [ -n "$missing" ]; then
    echo "registry fixture: missing:$missing" >&2
    return 1
  fi
  return 0
}

# busybox-static installs /bin/busybox statically linked; the dynamic busybox would need libs
# in the image.
file_is_static() {
  ! LC_ALL=C ldd "$1" >/dev/null 2>&1
}

_registry_free_port() {
  local port
  for _ in $(seq 1 50); do
    # Below the kernel's ephemeral range (32768-60999 by default): a port there may be the
    # local end of one of this namespace's own connections, which a probe cannot see and which
    # makes the listener's bind fail (Mosquitto once: "Address already in use").
    port=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# bcrypt hash (docker-registry's htpasswd accepts only bcrypt) via libcrypt in perl, which
# every Debian has; the salt's last character is one of the four canonical ones.
_registry_bcrypt() {
  local salt
  salt="$(LC_ALL=C tr -dc './A-Za-z0-9' </dev/urandom | head -c 21)e"
  perl -e 'my $h = crypt($ARGV[0], "\$2b\$05\$" . $ARGV[1]); die "no bcrypt\n" unless $h =~ /^\$2b\$/; print $h' "$1" "$salt"
}

registry_start() {
  local auth="" token="" token_repos="app other multi corrupt"
  while [ $# -gt 0 ]; do
    case "$1" in
      --auth) auth="$2"; shift 2 ;;
      --token) token="$2"; shift 2 ;;
      --token-repos) token_repos="$2"; shift 2 ;;
      *) echo "registry_start: unknown option $1" >&2; return 2 ;;
    esac
  done
  REGISTRY_DIR="$(mktemp -d "${TMPDIR:-/tmp}/drover-registry.XXXXXX")"
  registry_on_exit "rm -rf '$REGISTRY_DIR'"
  REGISTRY_DATA="$REGISTRY_DIR/data"
  REGISTRY_LOG="$REGISTRY_DIR/registry.log"
  mkdir -p "$REGISTRY_DATA"
  local auth_yaml=""
  if [ -n "$auth" ]; then
    printf '%s:%s\n' "${auth%%:*}" "$(_registry_bcrypt "${auth#*:}")" >"$REGISTRY_DIR/htpasswd"
    auth_yaml="auth:
  htpasswd:
    realm: drover-test
    path: $REGISTRY_DIR/htpasswd"
  fi
  if [ -n "$token" ]; then
    _registry_token_server "$token" "$token_repos" || return 1
    auth_yaml="auth:
  token:
    realm: http://$REGISTRY_TOKEN_ADDR/token
    service: drover-test
    issuer: drover-test-issuer
    rootcertbundle: $REGISTRY_DIR/token.crt"
  fi
  local try port
  for try in 1 2 3 4 5; do
    port="$(_registry_free_port)" || { echo "registry_start: no free port" >&2; return 1; }
    cat >"$REGISTRY_DIR/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $REGISTRY_DATA
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: ${REGISTRY_HOST:-127.0.0.1}:$port
$auth_yaml
EOF
    docker-registry serve "$REGISTRY_DIR/config.yml" >>"$REGISTRY_LOG" 2>&1 &
    REGISTRY_PID=$!
    _registry_pids+=("$REGISTRY_PID")
    registry_on_exit "registry_stop $REGISTRY_PID"
    REGISTRY_ADDR="${REGISTRY_HOST:-127.0.0.1}:$port"
    local i code
    for i in $(seq 1 100); do
      if ! kill -0 "$REGISTRY_PID" 2>/dev/null; then
        break
      fi
      code="$(curl -s -o /dev/null -w '%{http_code}' "http://$REGISTRY_ADDR/v2/" || true)"
      if [ "$code" = 200 ] || [ "$code" = 401 ]; then
        return 0
      fi
      sleep 0.1
    done
    registry_stop "$REGISTRY_PID"
    echo "registry_start: registry on port $port did not come up (try $try)" >&2
  done
  tail -20 "$REGISTRY_LOG" >&2
  return 1
}

_registry_b64url() {
  base64 -w0 | tr '+/' '-_' | tr -d '='
}

# A bearer-token service for "registry_start --token USER:PASS": busybox httpd answers
# /token (behind basic auth) with one pre-signed RS256 JWT granting pull and push on the
# repositories listed, which the registry trusts through the self-signed certificate in x5c.
_registry_token_server() {
  local user="${1%%:*}" pass="${1#*:}" repos="$2" d="$REGISTRY_DIR"
  command -v openssl >/dev/null || { echo "registry fixture: --token needs openssl" >&2; return 1; }
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/token.key" -out "$d/token.crt" \
    -days 2 -subj "/CN=drover-test-token" >/dev/null 2>&1 || return 1
  local x5c header claims now sig access
  x5c="$(openssl x509 -in "$d/token.crt" -outform DER | base64 -w0)"
  header="$(printf '{"typ":"JWT","alg":"RS256","x5c":["%s"]}' "$x5c" | _registry_b64url)"
  now="$(date +%s)"
  # shellcheck disable=SC2086 # a space-separated list on purpose
  access="$(printf '%s\n' $repos | jq -R '{type: "repository", name: ., actions: ["pull", "push"]}' | jq -cs .)"
  claims="$(jq -cn --argjson now "$now" --argjson access "$access" \
    '{iss: "drover-test-issuer", sub: "drover", aud: "drover-test", exp: ($now + 7200),
      nbf: ($now - 60), iat: ($now - 60), jti: "drover-test-\($now)", access: $access}' |
    _registry_b64url)"
  sig="$(printf '%s.%s' "$header" "$claims" | openssl dgst -sha256 -sign "$d/token.key" | _registry_b64url)"
  mkdir -p "$d/www"
  printf '{"token":"%s.%s.%s","expires_in":3600}\n' "$header" "$claims" "$sig" >"$d/www/token"
  printf '/:%s:%s\n' "$user" "$pass" >"$d/httpd.conf"
  local port i code
  for _ in 1 2 3 4 5; do
    port="$(_registry_free_port)" || return 1
    "$REGISTRY_BUSYBOX" httpd -f -p "127.0.0.1:$port" -h "$d/www" -c "$d/httpd.conf" \
      >>"$d/token.log" 2>&1 &
    REGISTRY_TOKEN_PID=$!
    registry_on_exit "registry_stop $REGISTRY_TOKEN_PID"
    REGISTRY_TOKEN_ADDR="127.0.0.1:$port"
    for i in $(seq 1 50); do
      kill -0 "$REGISTRY_TOKEN_PID" 2>/dev/null || break
      code="$(curl -s -o /dev/null -w '%{http_code}' "http://$REGISTRY_TOKEN_ADDR/token" || true)"
      [ "$code" = 401 ] && return 0
      sleep 0.1
    done
    registry_stop "$REGISTRY_TOKEN_PID"
  done
  echo "registry fixture: token server did not come up" >&2
  return 1
}

registry_stop() {
  local pid="${1:-$REGISTRY_PID}"
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

registry_blob_file() {
  local hex="${1#sha256:}"
  echo "$REGISTRY_DATA/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
}

_registry_hash() {
  printf '%s\n' "$@" | sha256sum | cut -c1-16
}

# Runs "$@" building into a fresh temporary directory (passed as $1 to the builder) and
# moves it to the cache path when it succeeds, so concurrent tests never see half a layout.
_registry_cached() {
  local dest="$1"; shift
  if [ -f "$dest/.complete" ]; then
    return 0
  fi
  if [ ! -d "$REGISTRY_IMAGES_DIR" ]; then
    # images of older fixture versions are never used again
    find "$REGISTRY_IMAGES_ROOT" -mindepth 1 -maxdepth 1 ! -name "v$REGISTRY_FIXTURE_VERSION" \
      -exec rm -rf {} + 2>/dev/null || true
  fi
  mkdir -p "$(dirname "$dest")"
  local tmp
  tmp="$(mktemp -d "$dest.tmp.XXXXXX")"
  if ! "$@" "$tmp" >&2; then
    rm -rf "$tmp"
    return 1
  fi
  touch "$tmp/.complete"
  if ! mv -T "$tmp" "$dest" 2>/dev/null; then
    rm -rf "$tmp" # another test built it meanwhile
  fi
  [ -f "$dest/.complete" ]
}

# Adds the files under SRC to a new layer on LAYOUT:TAG. (umoci 0.4.7's "insert" writes
# truncated tars for small layers, so this goes through unpack and repack.)
_image_add_layer() {
  local layout="$1" tag="$2" src="$3" bundle
  bundle="$(mktemp -d "${TMPDIR:-/tmp}/drover-bundle.XXXXXX")"
  rmdir "$bundle"
  umoci unpack --image "$layout:$tag" "$bundle" >/dev/null &&
    cp -a "$src/." "$bundle/rootfs/" &&
    umoci repack --image "$layout:$tag" --history.created_by "drover test fixture" "$bundle"
  local rc=$?
  rm -rf "$bundle"
  return $rc
}

_image_build_base() {
  local out="$1" root="$1/root" a
  mkdir -p "$root/bin" "$root/etc" "$root/tmp"
  cp "$REGISTRY_BUSYBOX" "$root/bin/busybox"
  for a in $REGISTRY_APPLETS; do
    ln -s busybox "$root/bin/$a"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  umoci init --layout "$out/oci"
  umoci new --image "$out/oci:base"
  _image_add_layer "$out/oci" base "$root"
  umoci config --image "$out/oci:base" --config.env PATH=/bin --config.cmd /bin/sh
  rm -rf "$root"
}

_image_base_layout() {
  local key
  key="$(_registry_hash "$REGISTRY_FIXTURE_VERSION" "$(sha256sum <"$REGISTRY_BUSYBOX")" "$REGISTRY_APPLETS")"
  _registry_cached "$REGISTRY_IMAGES_DIR/base-$key" _image_build_base || return 1
  echo "$REGISTRY_IMAGES_DIR/base-$key/oci"
}

_image_build_derived() {
  local base="$1" name="$2" tag="$3" arch="$4"; shift 4
  local out="${!#}"
  set -- "${@:1:$(($# - 1))}"
  cp -a "$base" "$out/oci"
  umoci tag --image "$out/oci:base" "$tag"
  mkdir -p "$out/marker/etc"
  printf '%s:%s\n' "$name" "$tag" >"$out/marker/etc/drover-image"
  printf '%s\n' "$arch" >"$out/marker/etc/drover-arch"
  _image_add_layer "$out/oci" "$tag" "$out/marker"
  local args=() c
  for c in "$@"; do
    args+=(--config.cmd "$c")
  done
  if [ ${#args[@]} -gt 0 ]; then
    umoci config --image "$out/oci:$tag" "${args[@]}"
  fi
  umoci config --image "$out/oci:$tag" --architecture "$arch" --os linux
  umoci gc --layout "$out/oci"
  rm -rf "$out/marker"
}

# image_build_busybox NAME TAG [CMD...]: prints the OCI layout holding tag TAG.
image_build_busybox() {
  local name="$1" tag="$2"; shift 2
  local base key
  base="$(_image_base_layout)" || return 1
  key="$(_registry_hash "$REGISTRY_FIXTURE_VERSION" "$base" "$name" "$tag" amd64 "$@")"
  _registry_cached "$REGISTRY_IMAGES_DIR/img-$key" _image_build_derived "$base" "$name" "$tag" amd64 "$@" || return 1
  echo "$REGISTRY_IMAGES_DIR/img-$key/oci"
}

image_manifest_digest() {
  jq -r --arg t "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$1/index.json"
}

image_layers() {
  local m
  m="$(image_manifest_digest "$1" "$2")"
  jq -r '.layers[].digest' "$1/blobs/sha256/${m#sha256:}"
}

_registry_skopeo_creds() {
  if [ -n "${REGISTRY_CREDS:-}" ]; then
    echo "--dest-creds=$REGISTRY_CREDS"
  fi
}

# image_push LAYOUT TAG NAME:TAG [extra skopeo args]. REGISTRY_CREDS=user:pass for auth.
image_push() {
  local layout="$1" tag="$2" dest="$3"; shift 3
  # shellcheck disable=SC2046
  skopeo --insecure-policy copy -q --dest-tls-verify=false $(_registry_skopeo_creds) "$@" \
    "oci:$layout:$tag" "docker://$REGISTRY_ADDR/$dest" >&2
}

_image_build_multiarch() {
  local base="$1" out="$2" m
  cp -a "$base" "$out/oci"
  mkdir -p "$out/marker"
  # amd64: busybox + marker; arm64 and arm/v6: only a marker (they are never run here)
  umoci tag --image "$out/oci:base" amd64
  mkdir -p "$out/marker/amd64/etc"
  printf 'amd64\n' >"$out/marker/amd64/etc/drover-arch"
  _image_add_layer "$out/oci" amd64 "$out/marker/amd64"
  local a
  for a in arm64 armv6; do
    umoci new --image "$out/oci:$a"
    mkdir -p "$out/marker/$a/etc"
    printf '%s\n' "$a" >"$out/marker/$a/etc/drover-arch"
    _image_add_layer "$out/oci" "$a" "$out/marker/$a"
    umoci config --image "$out/oci:$a" --os linux --architecture "${a/armv6/arm}" --config.cmd /bin/true
  done
  local entries="[]" arch variant d s
  for a in amd64 arm64 armv6; do
    d="$(image_manifest_digest "$out/oci" "$a")"
    s="$(stat -c %s "$out/oci/blobs/sha256/${d#sha256:}")"
    case "$a" in
      amd64) arch=amd64 variant="" ;;
      arm64) arch=arm64 variant=v8 ;;
      armv6) arch=arm variant=v6 ;;
    esac
    entries="$(jq -c --arg d "$d" --argjson s "$s" --arg a "$arch" --arg v "$variant" \
      '. + [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
             platform: ({architecture: $a, os: "linux"} + (if $v == "" then {} else {variant: $v} end))}]' \
      <<<"$entries")"
  done
  jq -cn --argjson m "$entries" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: $m}' \
    >"$out/index.json"
  d="sha256:$(sha256sum <"$out/index.json" | cut -d' ' -f1)"
  s="$(stat -c %s "$out/index.json")"
  mv "$out/index.json" "$out/oci/blobs/sha256/${d#sha256:}"
  jq --arg d "$d" --argjson s "$s" \
    '.manifests += [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s,
                     annotations: {"org.opencontainers.image.ref.name": "multi"}}]' \
    "$out/oci/index.json" >"$out/index.new"
  mv "$out/index.new" "$out/oci/index.json"
  rm -rf "$out/marker"
}

# image_push_multiarch NAME:TAG
image_push_multiarch() {
  local dest="$1" base key dir
  base="$(_image_base_layout)" || return 1
  key="$(_registry_hash "$REGISTRY_FIXTURE_VERSION" "$base" multiarch)"
  dir="$REGISTRY_IMAGES_DIR/multi-$key"
  _registry_cached "$dir" _image_build_multiarch "$base" || return 1
  # shellcheck disable=SC2046
  skopeo --insecure-policy copy -q --all --dest-tls-verify=false $(_registry_skopeo_creds) \
    "oci:$dir/oci:multi" "docker://$REGISTRY_ADDR/$dest" >&2 || return 1
  IMAGE_INDEX_DIGEST="$(image_manifest_digest "$dir/oci" multi)"
  IMAGE_AMD64_DIGEST="$(image_manifest_digest "$dir/oci" amd64)"
  IMAGE_ARM64_DIGEST="$(image_manifest_digest "$dir/oci" arm64)"
  IMAGE_ARMV6_DIGEST="$(image_manifest_digest "$dir/oci" armv6)"
}
