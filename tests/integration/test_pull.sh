#!/usr/bin/env bash
# drover-agent pull against a real docker-registry on 127.0.0.1: by tag and digest, multi-arch
# index selection, basic and bearer-token auth, digest verification (wrong digest, corrupted blob, corrupted
# partial download), resume with a Range request, shared layers stored once, registry down.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${DROVER_BUILD_DIR:=$here/../../build}"
AGENT="$DROVER_BUILD_DIR/agent/drover-agent"

skip() {
  echo "SKIP: $*" >&2
  exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root (layers are unpacked with their owners)"
[ -x "$AGENT" ] || skip "$AGENT not built"
# shellcheck source=lib/registry.sh
source "$here/lib/registry.sh"
registry_require_tools || skip "tools missing"

fails=0
pass() { echo "ok - $*"; }
fail() {
  echo "FAIL - $*" >&2
  fails=$((fails + 1))
}
expect_eq() { # what expected actual
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected '$2', got '$3'"; fi
}
expect_match() { # what pattern text
  if grep -Eq -- "$2" <<<"$3"; then pass "$1"; else fail "$1: '$2' not in: $3"; fi
}

work="$(mktemp -d "${TMPDIR:-/tmp}/drover-test-pull.XXXXXX")"
registry_on_exit "rm -rf '$work'"

registry_start
REG="$REGISTRY_ADDR"
pull() { # pull STORE [args...] IMAGE: stdout to $work/out, stderr to $work/err
  local store="$1"; shift
  "$AGENT" pull --store "$store" --insecure "$REG" "$@" >"$work/out" 2>"$work/err"
}

app="$(image_build_busybox app 1 sh -c 'echo hello')"
other="$(image_build_busybox other 1 sh -c 'echo other')"
image_push "$app" 1 app:1
image_push "$other" 1 other:1
app_digest="$(image_manifest_digest "$app" 1)"
mapfile -t app_layers < <(image_layers "$app" 1)
mapfile -t other_layers < <(image_layers "$other" 1)
[ "${app_layers[0]}" = "${other_layers[0]}" ] || fail "fixture: app and other should share their bottom layer"

# --- pull by tag ---------------------------------------------------------------------------
S1="$work/s1"
if pull "$S1" -v "$REG/app:1"; then pass "pull by tag"; else fail "pull by tag: $(cat "$work/err")"; fi
expect_eq "pull by tag prints the manifest digest" "$app_digest" "$(cat "$work/out")"
expect_match "verbose pull reports the layers" "layers: 2 \(fetched 2, unpacked 2\)" "$(cat "$work/err")"
for l in "${app_layers[@]}"; do
  [ -f "$S1/blobs/sha256/${l#sha256:}" ] || fail "layer blob $l missing from the store"
  [ -d "$S1/layers/sha256/${l#sha256:}" ] || fail "layer $l not unpacked"
done
expect_eq "bottom layer holds busybox" "yes" \
  "$([ -f "$S1/layers/sha256/${app_layers[0]#sha256:}/bin/busybox" ] && echo yes || echo no)"
expect_eq "top layer holds the marker" "app:1" \
  "$(cat "$S1/layers/sha256/${app_layers[1]#sha256:}/etc/drover-image" 2>/dev/null)"
expect_eq "no partial downloads left" "" "$(find "$S1" -name '*.partial')"
ref_json="$(cat "$S1"/refs/*.json)"
expect_eq "image record names the reference" "$REG/app:1" "$(jq -r .reference <<<"$ref_json")"
expect_eq "image record has the manifest" "$app_digest" "$(jq -r .manifest <<<"$ref_json")"
expect_eq "image record lists the layers in order" "$(printf '%s\n' "${app_layers[@]}")" \
  "$(jq -r '.layers[]' <<<"$ref_json")"

# a second pull of the same tag downloads only the manifest
if pull "$S1" -v "$REG/app:1"; then pass "pull again"; else fail "pull again: $(cat "$work/err")"; fi
manifest_size="$(stat -c %s "$S1/blobs/sha256/${app_digest#sha256:}")"
expect_match "pull again fetches only the manifest" "downloaded: $manifest_size bytes" "$(cat "$work/err")"

# --- pull by digest --------------------------------------------------------------------------
if pull "$S1" "$REG/app@$app_digest"; then pass "pull by digest"; else fail "pull by digest: $(cat "$work/err")"; fi
expect_eq "pull by digest prints the digest" "$app_digest" "$(cat "$work/out")"

# --- shared layers are stored once ---------------------------------------------------------
if pull "$S1" -v "$REG/other:1"; then pass "pull a second image"; else fail "pull other: $(cat "$work/err")"; fi
expect_match "shared layer is neither fetched nor unpacked again" \
  "layers: 2 \(fetched 1, unpacked 1\)" "$(cat "$work/err")"
expect_eq "three distinct layers unpacked for two images" 3 \
  "$(find "$S1/layers/sha256" -mindepth 1 -maxdepth 1 | wc -l)"

# --- multi-arch index --------------------------------------------------------------------------
image_push_multiarch multi:1
S2="$work/s2"
if pull "$S2" --platform linux/amd64 "$REG/multi:1"; then pass "multi-arch amd64"; else fail "multi amd64: $(cat "$work/err")"; fi
expect_eq "index resolves to the amd64 manifest" "$IMAGE_AMD64_DIGEST" "$(cat "$work/out")"
if pull "$S2" -v --platform linux/arm64 "$REG/multi:1"; then pass "multi-arch arm64"; else fail "multi arm64: $(cat "$work/err")"; fi
expect_eq "index resolves to the arm64 manifest" "$IMAGE_ARM64_DIGEST" "$(cat "$work/out")"
expect_match "verbose pull names the index" "index: $IMAGE_INDEX_DIGEST" "$(cat "$work/err")"
arm64_layer="$(jq -r '.layers[-1].digest' "$S2/blobs/sha256/${IMAGE_ARM64_DIGEST#sha256:}")"
expect_eq "arm64 layer holds the arm64 marker" "arm64" \
  "$(cat "$S2/layers/sha256/${arm64_layer#sha256:}/etc/drover-arch" 2>/dev/null)"
if pull "$S2" --platform linux/arm/v7 "$REG/multi:1"; then pass "multi-arch arm/v7"; else fail "multi arm/v7: $(cat "$work/err")"; fi
expect_eq "arm/v7 falls back to the arm/v6 entry" "$IMAGE_ARMV6_DIGEST" "$(cat "$work/out")"
if pull "$S2" --platform linux/s390x "$REG/multi:1"; then
  fail "a platform missing from the index must fail"
else
  expect_match "missing platform names what the index has" \
    "no image for platform linux/s390x in the index \(has: linux/amd64, linux/arm64/v8, linux/arm/v6\)" \
    "$(cat "$work/err")"
fi

# --- wrong digest -------------------------------------------------------------------------------
wrong="sha256:$(printf 'not the image' | sha256sum | cut -d' ' -f1)"
S3="$work/s3"
if pull "$S3" "$REG/app@$wrong"; then
  fail "pull of a wrong digest must fail"
else
  expect_match "wrong digest is not found" \
    "pull $REG/app@$wrong: manifest: HTTP 404 MANIFEST_UNKNOWN" "$(cat "$work/err")"
fi

# --- corrupted blob in the registry ---------------------------------------------------------
bad="$(image_build_busybox corrupt 1)"
image_push "$bad" 1 corrupt:1
mapfile -t bad_layers < <(image_layers "$bad" 1)
top="${bad_layers[1]}"
blobfile="$(registry_blob_file "$top")"
# flip one byte in the middle, same length
size="$(stat -c %s "$blobfile")"
perl -e 'open(my $f, "+<", $ARGV[0]) or die; seek($f, $ARGV[1], 0); read($f, my $b, 1);
         seek($f, $ARGV[1], 0); print $f chr(ord($b) ^ 0xff); close($f) or die' \
  "$blobfile" "$((size / 2))"
actual="sha256:$(sha256sum <"$blobfile" | cut -d' ' -f1)"
S4="$work/s4"
if pull "$S4" "$REG/corrupt:1"; then
  fail "a corrupted layer must be refused"
else
  expect_match "corrupted layer: digest mismatch names both digests" \
    "layer $top: digest mismatch: expected $top, got $actual" "$(cat "$work/err")"
  expect_match "corrupted layer: integrity error" "integrity check failed" "$(cat "$work/err")"
fi
expect_eq "corrupted layer is not kept, not even as partial" "" \
  "$(find "$S4/blobs/sha256/" -name "${top#sha256:}*")"
expect_eq "no image record for a failed pull" "" "$(find "$S4/refs/" -mindepth 1)"

# corrupted manifest (same length, still valid JSON): change the first digit of a size
manifest_file="$(registry_blob_file "$(image_manifest_digest "$bad" 1)")"
perl -0pi -e 's/("size":)(\d)/$1 . ($2 eq "1" ? "2" : "1")/e' "$manifest_file"
if pull "$S4" "$REG/corrupt@$(image_manifest_digest "$bad" 1)"; then
  fail "a corrupted manifest must be refused"
else
  expect_match "corrupted manifest is refused (by digest)" \
    "manifest: digest mismatch: expected $(image_manifest_digest "$bad" 1), got sha256:" "$(cat "$work/err")"
fi
if pull "$S4" "$REG/corrupt:1"; then
  fail "a corrupted manifest must be refused"
else
  expect_match "corrupted manifest is refused (by tag)" \
    "manifest: digest mismatch: registry says $(image_manifest_digest "$bad" 1) \(Docker-Content-Digest\)" \
    "$(cat "$work/err")"
fi

# --- resume with Range ------------------------------------------------------------------------
S5="$work/s5"
pull "$S5" "$REG/app:1" || fail "resume setup: $(cat "$work/err")"
big="${app_layers[0]#sha256:}"
big_size="$(stat -c %s "$S5/blobs/sha256/$big")"
half=$((big_size / 2))
head -c "$half" "$S5/blobs/sha256/$big" >"$S5/blobs/sha256/$big.partial"
rm -f "$S5/blobs/sha256/$big" "$S5"/refs/*.json
rm -rf "${S5:?}/layers/sha256/$big"
if pull "$S5" -v "$REG/app:1"; then pass "resumed pull"; else fail "resumed pull: $(cat "$work/err")"; fi
expect_match "resume downloads only the manifest and the missing half" \
  "downloaded: $((manifest_size + big_size - half)) bytes" "$(cat "$work/err")"
expect_eq "resumed blob is complete" "$big" "$(sha256sum <"$S5/blobs/sha256/$big" | cut -d' ' -f1)"
expect_eq "resumed partial file is gone" "" "$(find "$S5" -name '*.partial')"
grep -q "GET /v2/app/blobs/sha256:$big" "$REGISTRY_LOG" || fail "registry log shows no blob GET"

# a partial file with wrong bytes is caught by the digest and removed; the next pull works
head -c "$half" /dev/urandom >"$S5/blobs/sha256/$big.partial"
rm -f "$S5/blobs/sha256/$big" "$S5"/refs/*.json
rm -rf "${S5:?}/layers/sha256/$big"
if pull "$S5" "$REG/app:1"; then
  fail "a corrupt partial download must be refused"
else
  expect_match "corrupt partial: digest mismatch" "layer sha256:$big: digest mismatch" "$(cat "$work/err")"
fi
expect_eq "corrupt partial is removed" "" "$(find "$S5" -name '*.partial')"
if pull "$S5" "$REG/app:1"; then pass "pull after a corrupt partial"; else fail "pull after corrupt partial: $(cat "$work/err")"; fi

# --- basic auth ---------------------------------------------------------------------------------
plain_reg="$REG"
plain_pid="$REGISTRY_PID"
registry_start --auth drover:s3cret
AREG="$REGISTRY_ADDR"
REGISTRY_CREDS=drover:s3cret image_push "$app" 1 app:1
S6="$work/s6"
if "$AGENT" pull --store "$S6" --insecure "$AREG" "$AREG/app:1" >"$work/out" 2>"$work/err"; then
  fail "pull without credentials must fail"
else
  expect_match "no credentials: clear error" "manifest: $AREG needs credentials \(--auth $AREG=USER:PASS\): HTTP 401" "$(cat "$work/err")"
  expect_match "no credentials: permission denied" "permission denied" "$(cat "$work/err")"
fi
if "$AGENT" pull --store "$S6" --insecure "$AREG" --auth "$AREG=drover:wrong" "$AREG/app:1" >"$work/out" 2>"$work/err"; then
  fail "pull with a wrong password must fail"
else
  expect_match "wrong password: refused" "credentials for $AREG refused" "$(cat "$work/err")"
fi
if "$AGENT" pull --store "$S6" --insecure "$AREG" --auth "$AREG=drover:s3cret" "$AREG/app:1" >"$work/out" 2>"$work/err"; then
  pass "pull with basic auth"
else
  fail "pull with basic auth: $(cat "$work/err")"
fi
expect_eq "pull with basic auth prints the digest" "$app_digest" "$(cat "$work/out")"

# --- bearer token auth (token service with basic auth, RS256 JWT trusted by the registry) ---
registry_start --token drover:t0ken
TREG="$REGISTRY_ADDR"
REGISTRY_CREDS=drover:t0ken image_push "$app" 1 app:1
S7="$work/s7"
if "$AGENT" pull --store "$S7" --insecure "$TREG" "$TREG/app:1" >"$work/out" 2>"$work/err"; then
  fail "bearer: pull without credentials must fail"
else
  expect_match "bearer: anonymous token refused" \
    "manifest: token from http://$REGISTRY_TOKEN_ADDR/token: anonymous access refused" "$(cat "$work/err")"
fi
if "$AGENT" pull --store "$S7" --insecure "$TREG" --auth "$TREG=drover:nope" "$TREG/app:1" >"$work/out" 2>"$work/err"; then
  fail "bearer: pull with a wrong password must fail"
else
  expect_match "bearer: wrong password refused" "token from .*: credentials refused" "$(cat "$work/err")"
  expect_match "bearer: permission denied" "permission denied" "$(cat "$work/err")"
fi
if "$AGENT" pull -v --store "$S7" --insecure "$TREG" --auth "$TREG=drover:t0ken" "$TREG/app:1" >"$work/out" 2>"$work/err"; then
  pass "pull with a bearer token"
else
  fail "pull with a bearer token: $(cat "$work/err")"
fi
expect_eq "bearer pull prints the digest" "$app_digest" "$(cat "$work/out")"
expect_match "token bytes are not counted as downloaded" \
  "downloaded: $(du -cb "$S7"/blobs/sha256/* | tail -1 | cut -f1) bytes" \
  "$(cat "$work/err")"

# --- TLS by default -------------------------------------------------------------------------------
if "$AGENT" pull --store "$S6" "$plain_reg/app:1" >"$work/out" 2>"$work/err"; then
  fail "plain http without --insecure must fail"
else
  expect_match "https is the default" \
    "pull $plain_reg/app:1: manifest: .*TLS handshake failed; a plain http registry must be listed insecure" \
    "$(cat "$work/err")"
fi

# --- registry down ------------------------------------------------------------------------------
registry_stop "$plain_pid"
rc=0
"$AGENT" pull --store "$S6" --insecure "$plain_reg" "$plain_reg/app:1" >"$work/out" 2>"$work/err" || rc=$?
expect_eq "registry down: exit status 1" 1 "$rc"
expect_match "registry down: retryable error" \
  "pull $plain_reg/app:1: manifest: .*(refused|connect).*temporarily unavailable" "$(cat "$work/err")"

# --- usage ----------------------------------------------------------------------------------------
rc=0
"$AGENT" pull >/dev/null 2>&1 || rc=$?
expect_eq "pull without an image is a usage error" 2 "$rc"
rc=0
"$AGENT" pull --platform linux "$REG/app:1" >/dev/null 2>"$work/err" || rc=$?
expect_eq "bad --platform is a usage error" 2 "$rc"

if [ "$fails" -ne 0 ]; then
  echo "$fails check(s) failed" >&2
  exit 1
fi
echo "all pull checks passed"
