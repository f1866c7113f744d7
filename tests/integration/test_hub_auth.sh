#!/usr/bin/env bash
# API access control end to end: drover-hub --auth on a free 127.0.0.1 port. Every route of
# the hub's own table (drover-hub --print-routes, so a route added later is covered too) with
# every method it serves answers 401 without a token, with a garbage, a revoked and an
# expired token, and 401/403 with a bootstrap token; only /healthz is open. Then the role
# matrix (viewer reads but no Secrets and no writes, watch included; operator writes but no
# tokens; admin manages tokens), the first admin token file, drover login (0600 config),
# drover token create/list/revoke, and 413 over the body cap with a valid token.
set -uo pipefail
hub="${DROVER_BUILD_DIR:?}/hub/drover-hub"
cli="${DROVER_BUILD_DIR:?}/cli/drover"
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
[ -x "$cli" ] || { echo "no $cli"; exit 1; }
tmp=$(mktemp -d)
hubpid=
cleanup() {
  [ -n "$hubpid" ] && kill "$hubpid" 2>/dev/null && wait "$hubpid" 2>/dev/null
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

"$hub" --data "$tmp/data" --auth --no-tls --no-broker-tls --listen 127.0.0.1:0 --no-controllers >"$tmp/hub.out" 2>"$tmp/hub.err" &
hubpid=$!
url=
for _ in $(seq 1 $((200 * tf))); do
  url=$(sed -n 's/^drover-hub: serving \(http:[^ ]*\)$/\1/p' "$tmp/hub.out")
  [ -n "$url" ] && break
  sleep 0.05
done
if [ -z "$url" ]; then
  echo "hub did not start:"
  cat "$tmp/hub.out" "$tmp/hub.err"
  exit 1
fi
export DROVER_HUB=$url HOME=$tmp/home XDG_CONFIG_HOME=
unset DROVER_TOKEN
mkdir -p "$HOME"

# ---- the first admin token ----
tokfile="$tmp/data/admin.token"
check "the first start writes admin.token" test -s "$tokfile"
check "admin.token is mode 600" test "$(stat -c %a "$tokfile")" = 600
check "the hub names the file" grep -q "admin token written to $tokfile" "$tmp/hub.out"
ADMIN=$(head -n1 "$tokfile")
check "admin token has the drv1_ form" grep -Eq '^drv1_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$' <<<"$ADMIN"

# req METHOD PATH TOKEN [curl args...]: body in $tmp/body, HTTP code on stdout.
req() {
  local m=$1 p=$2 t=$3
  shift 3
  local auth=()
  [ -n "$t" ] && auth=(-H "Authorization: Bearer $t")
  curl -s -o "$tmp/body" -w '%{http_code}' --max-time $((10 * tf)) -X "$m" "${auth[@]}" "$@" "$url$p"
}
body() { jq -r "$1" "$tmp/body" 2>/dev/null; }
# mktoken JSON: creates a token as admin, prints it.
mktoken() {
  req POST /api/v1/tokens "$ADMIN" -H 'Content-Type: application/json' -d "$1" >/dev/null
  body .token
}

VIEWER=$(mktoken '{"role":"viewer","description":"ci viewer"}')
OPER=$(mktoken '{"role":"operator"}')
BOOT=$(mktoken '{"kind":"bootstrap","uses":3,"ttl":"24h","labels":{"site":"north"}}')
REVOKED=$(mktoken '{"role":"admin"}')
check "admin creates viewer, operator, bootstrap tokens" \
  test -n "$VIEWER" -a "$VIEWER" != null -a -n "$OPER" -a "$OPER" != null -a -n "$BOOT" -a "$BOOT" != null
rid=$(cut -d_ -f2 <<<"$REVOKED")
code=$(req DELETE "/api/v1/tokens/$rid" "$ADMIN")
check "admin revokes a token: 200 (got $code)" test "$code" = 200 -a "$(body .revoked)" = true
EXPIRED=$("$cli" --token "$ADMIN" token create --role admin --ttl 1s 2>"$tmp/err")
check "drover token create --ttl 1s" grep -Eq '^drv1_' <<<"$EXPIRED"
sleep 2
GARBAGE="drv1_deadbeef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

# ---- every route, every method ----
"$hub" --print-routes >"$tmp/routes" 2>&1
nroutes=$(wc -l <"$tmp/routes")
check "--print-routes lists the route table ($nroutes routes)" test "$nroutes" -ge 30
check "the token routes are in it" grep -q '^/api/v1/tokens ' "$tmp/routes"
bad=0
total=0
while read -r pattern methods; do
  path=${pattern//\{namespace\}/default}
  path=${path//\{name\}/x}
  IFS=, read -ra ms <<<"$methods"
  for m in "${ms[@]}"; do
    total=$((total + 1))
    data=()
    [ "$m" = POST ] || [ "$m" = PUT ] || [ "$m" = PATCH ] && data=(-H 'Content-Type: application/json' -d '{}')
    if [ "$pattern" = /healthz ]; then
      c=$(req "$m" "$path" "")
      [ "$c" = 200 ] || { echo "  $m $path without a token: $c (want 200)"; bad=$((bad + 1)); }
      continue
    fi
    # Enrollment needs no API token: a device has none (checked below instead).
    [ "$pattern" = /api/v1/enroll ] || [ "$pattern" = /api/v1/enroll/renew ] && continue
    # Signing in takes the token in the body (checked below instead).
    [ "$pattern" = /apis/drover.io/v1/session ] && continue
    c=$(req "$m" "$path" "" "${data[@]}")
    if [ "$c" != 401 ] || [ "$(body .kind)" != Status ] || [ "$(body .code)" != 401 ]; then
      echo "  $m $path without a token: $c $(head -c 200 "$tmp/body")"
      bad=$((bad + 1))
    fi
    for t in GARBAGE REVOKED EXPIRED; do
      c=$(req "$m" "$path" "${!t}" "${data[@]}")
      [ "$c" = 401 ] || { echo "  $m $path with the $t token: $c"; bad=$((bad + 1)); }
    done
    c=$(req "$m" "$path" "$BOOT" "${data[@]}")
    [ "$c" = 403 ] || [ "$c" = 401 ] || { echo "  $m $path with a bootstrap token: $c"; bad=$((bad + 1)); }
  done
done <"$tmp/routes"
check "every route and method ($total) refuses no/garbage/revoked/expired/bootstrap tokens ($bad wrong)" \
  test "$bad" = 0 -a "$total" -ge 60
# ---- enrollment: reachable without an API token, but it checks its own ----
check "the enroll routes are listed" grep -q '^/api/v1/enroll POST$' "$tmp/routes"
check "... both" grep -q '^/api/v1/enroll/renew POST$' "$tmp/routes"
csr=$(openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=auth-dev \
  -keyout "$tmp/auth-dev.key" 2>/dev/null)
enrol_body() { jq -n --arg t "$1" --arg c "$csr" 'if $t == "" then {csr: $c} else {token: $t, csr: $c} end'; }
code=$(req POST /api/v1/enroll "" -d "$(enrol_body "")")
check "enroll without a bootstrap token: 401 (got $code)" test "$code" = 401 -a "$(body .code)" = 401
check "... the message asks for a bootstrap token" grep -q 'bootstrap token' <<<"$(body .message)"
FORGED="drv1_$(cut -d_ -f2 <<<"$BOOT")_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
code=$(req POST /api/v1/enroll "" -d "$(enrol_body "$FORGED")")
check "enroll with a forged bootstrap token (right id): 401 (got $code)" test "$code" = 401
code=$(req POST /api/v1/enroll "$FORGED" -d "$(enrol_body "")")
check "... also as Authorization: Bearer: 401 (got $code)" test "$code" = 401
code=$(req POST /api/v1/enroll "" -d "$(enrol_body "$GARBAGE")")
check "enroll with an unknown token: 401 (got $code)" test "$code" = 401
code=$(req POST /api/v1/enroll "" -d "$(enrol_body "$ADMIN")")
check "enroll with an API token: 401 (got $code)" test "$code" = 401
code=$(req POST /api/v1/enroll "" -d "$(enrol_body "$BOOT")")
check "enroll with the bootstrap token: 201 (got $code)" test "$code" = 201
code=$(req POST /api/v1/enroll/renew "" -d "$(enrol_body "")")
check "renew needs no token: 201 for the enrolled key (got $code)" test "$code" = 201
code=$(req POST /api/v1/nodes/auth-dev/revoke "$VIEWER")
check "revoke as a viewer: 403 (got $code)" test "$code" = 403
code=$(req GET /api/v1/identities "$OPER")
check "identities as an operator: 403 (got $code)" test "$code" = 403

code=$(req GET /api/v1/pods "$EXPIRED")
check "an expired token is told so" test "$code" = 401 -a -n "$(body .message | grep expired)"
code=$(req GET /api/v1/nodes "" -H "Authorization: Basic YWRtaW46YWRtaW4=")
check "basic auth: 401" test "$code" = 401
code=$(req GET /api/v1/pods "" -H "Authorization: Bearer $ADMIN$ADMIN")
check "a doubled token: 401" test "$code" = 401

# ---- the role matrix ----
S=/api/v1/namespaces/default/secrets
D=/apis/apps/v1/namespaces/default/deployments
"$cli" validate -o json -f "$src/examples/nginx-deployment.yaml" >"$tmp/nginx.json"
secret='{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db"},"stringData":{"password":"hunter2-sekrit"}}'
code=$(req POST $S "$OPER" -H 'Content-Type: application/json' -d "$secret")
check "operator creates a Secret: 201 (got $code)" test "$code" = 201
code=$(req GET /api/v1/namespaces/default/pods "$VIEWER")
check "viewer lists pods: 200 (got $code)" test "$code" = 200
code=$(req GET /api/v1/events "$VIEWER")
check "viewer lists events: 200 (got $code)" test "$code" = 200
code=$(req GET /metrics "$VIEWER")
check "viewer reads /metrics: 200 (got $code)" test "$code" = 200
code=$(req GET $S/db "$VIEWER")
check "viewer cannot read a Secret: 403 (got $code)" test "$code" = 403 -a "$(body .reason)" = Forbidden
check "and its value is not in the answer" bash -c "! grep -q hunter2 '$tmp/body'"
code=$(req GET /api/v1/secrets "$VIEWER")
check "viewer cannot list Secrets: 403 (got $code)" test "$code" = 403
code=$(req GET "$S?watch=true" "$VIEWER" --max-time 3)
check "viewer cannot open a Secrets watch: 403 (got $code)" test "$code" = 403
code=$(req GET "/api/v1/pods?watch=true" "$VIEWER" --max-time 1)
check "viewer can watch pods: 200 (got $code)" test "$code" = 200
code=$(req POST $D "$VIEWER" -H 'Content-Type: application/json' --data-binary @"$tmp/nginx.json")
check "viewer cannot apply: 403 (got $code)" test "$code" = 403
DROVER_TOKEN=$VIEWER "$cli" apply -f "$src/examples/nginx-deployment.yaml" >"$tmp/out" 2>&1
check "drover apply as viewer fails, saying Forbidden" grep -q Forbidden "$tmp/out"
code=$(req GET /api/v1/namespaces/default/pods/x/log "$VIEWER")
check "viewer cannot read logs: 403 (got $code)" test "$code" = 403
code=$(req GET /api/v1/tokens "$VIEWER")
check "viewer cannot list tokens: 403 (got $code)" test "$code" = 403

DROVER_TOKEN=$OPER "$cli" apply -f "$src/examples/nginx-deployment.yaml" >"$tmp/out" 2>&1
check "operator applies (drover apply with DROVER_TOKEN)" grep -q created "$tmp/out"
DROVER_TOKEN=$OPER "$cli" scale deployment nginx --replicas 3 >"$tmp/out" 2>&1
req GET $D/nginx "$VIEWER" >/dev/null
check "operator scales" test "$(body .spec.replicas)" = 3
code=$(req GET /api/v1/namespaces/default/pods/x/log "$OPER")
check "operator reaches the log route (not 401/403: $code)" test "$code" != 401 -a "$code" != 403
code=$(req GET $S/db "$OPER")
check "operator reads a Secret: 200 (got $code)" test "$code" = 200
code=$(req POST /api/v1/tokens "$OPER" -H 'Content-Type: application/json' -d '{"role":"viewer"}')
check "operator cannot create tokens: 403 (got $code)" test "$code" = 403
DROVER_TOKEN=$OPER "$cli" token create --role viewer >"$tmp/out" 2>&1
check "drover token create as operator fails" test $? = 1
DROVER_TOKEN=$OPER "$cli" logs nosuchpod >"$tmp/out" 2>&1
check "drover logs sends the token (NotFound, not Unauthorized)" \
  test -n "$(grep -i 'not found' "$tmp/out")" -a -z "$(grep -E 'Unauthorized|Forbidden|401|403' "$tmp/out")"
DROVER_TOKEN=$VIEWER timeout $((5 * tf)) "$cli" get secrets -w >"$tmp/out" 2>&1
check "drover get secrets -w as viewer: Forbidden" grep -q Forbidden "$tmp/out"
DROVER_TOKEN=$VIEWER timeout 2 "$cli" get pods -w >"$tmp/out" 2>&1
check "drover get pods -w as viewer streams until stopped" test $? = 124
"$cli" --token "$OPER" delete deployment nginx >"$tmp/out" 2>&1
check "operator deletes (drover --token)" grep -q deleted "$tmp/out"

# ---- the CLI: login, token create/list/revoke ----
"$cli" login --hub "$url" --token "$GARBAGE" >"$tmp/out" 2>&1
rc=$?
check "login with a garbage token fails and saves nothing" test "$rc" = 1 -a ! -e "$HOME/.config/drover/config"
"$cli" get pods >"$tmp/out" 2>&1
check "drover get pods without a token: Unauthorized" grep -q Unauthorized "$tmp/out"
"$cli" login --hub "$url" --token-file "$tokfile" >"$tmp/out" 2>&1
check "drover login --token-file admin.token" test $? = 0
cfg=$HOME/.config/drover/config
check "the config file is mode 600" test "$(stat -c %a "$cfg")" = 600
check "it holds the hub and the token" test "$(jq -r .hub "$cfg")" = "$url" -a "$(jq -r .token "$cfg")" = "$ADMIN"
unset DROVER_HUB
"$cli" get pods >"$tmp/out" 2>&1
check "drover get pods works from the config file" test $? = 0
"$cli" login --hub "$url" --token "$VIEWER" >/dev/null 2>&1
"$cli" get secrets >"$tmp/out" 2>&1
check "logged in as viewer: get secrets is Forbidden" grep -q Forbidden "$tmp/out"
"$cli" login --hub "$url" --token "$ADMIN" >/dev/null 2>&1
"$cli" token create --role viewer --ttl 24h --description "from the cli" >"$tmp/new" 2>"$tmp/err"
NEW=$(cat "$tmp/new")
check "token create prints exactly one token on stdout" test "$(wc -l <"$tmp/new")" = 1 -a -n "$(grep -E '^drv1_' "$tmp/new")"
check "and says it is shown once" grep -q "only this once" "$tmp/err"
code=$(req GET /api/v1/pods "$NEW")
check "the new token works: 200 (got $code)" test "$code" = 200
"$cli" token list >"$tmp/list" 2>&1
newid=$(cut -d_ -f2 <<<"$NEW")
check "token list shows it" grep -q "$newid.*viewer.*active.*from the cli" "$tmp/list"
expid=$(cut -d_ -f2 <<<"$EXPIRED")
check "token list shows revoked and expired ones" \
  test -n "$(grep "$rid.*revoked" "$tmp/list")" -a -n "$(grep "$expid.*expired" "$tmp/list")"
secret_part=${NEW#drv1_????????_} # all of it: the secret may hold a "_" itself
check "token list never shows a secret" bash -c "! grep -qF -- '$secret_part' '$tmp/list'"
"$cli" token revoke "$newid" >"$tmp/out" 2>&1
check "token revoke" grep -q "revoked" "$tmp/out"
code=$(req GET /api/v1/pods "$NEW")
check "the revoked token: 401 (got $code)" test "$code" = 401
"$cli" token create --uses 2 --labels site=south,rack=3 >"$tmp/boot" 2>"$tmp/err"
check "token create without --role: a bootstrap token" grep -q "bootstrap" "$tmp/err"
code=$(req GET /api/v1/nodes "$(cat "$tmp/boot")")
check "which the API refuses (got $code)" test "$code" = 403

# ---- dashboard sessions: a token exchanged for a cookie (docs/DASHBOARD.md) ----
SES=/apis/drover.io/v1/session
jar=$tmp/jar
sin() { # TOKEN: signs in, the cookie into $jar; HTTP code on stdout
  rm -f "$jar"
  curl -s -o "$tmp/body" -D "$tmp/hdr" -c "$jar" -w '%{http_code}' --max-time $((10 * tf)) \
    -X POST -H 'Content-Type: application/json' -d "{\"token\":\"$1\"}" "$url$SES"
}
creq() { # METHOD PATH [curl args]: with the cookie of $jar
  local m=$1 p=$2
  shift 2
  curl -s -o "$tmp/body" -w '%{http_code}' --max-time $((10 * tf)) -b "$jar" -X "$m" "$@" "$url$p"
}
for t in GARBAGE REVOKED EXPIRED BOOT; do
  code=$(sin "${!t}")
  case $t in BOOT) want=403 ;; *) want=401 ;; esac
  check "sign-in with the $t token: $want (got $code)" test "$code" = $want -a "$(body .code)" = $want
done
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{}' "$url$SES")
check "sign-in without a token: 400 naming the field (got $code)" test "$code" = 400 && grep -q token "$tmp/body"
code=$(curl -s -o "$tmp/body" -c "$jar" -w '%{http_code}' -X POST -H 'Content-Type: text/plain' \
  -d "{\"token\":\"$OPER\",\"x\":\"=\"}" "$url$SES")
check "sign-in as a form would send it (text/plain): 415, no cookie (got $code)" \
  test "$code" = 415 && ! grep -q drover_session "$jar"
code=$(curl -s -o "$tmp/body" -c "$jar" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  -H 'Origin: https://evil.example' -H 'Sec-Fetch-Site: cross-site' -d "{\"token\":\"$OPER\"}" "$url$SES")
check "sign-in from another origin (login CSRF): 403, no cookie (got $code)" \
  test "$code" = 403 && ! grep -q drover_session "$jar"
code=$(sin "$OPER")
check "sign-in with the operator token: 201 (got $code)" test "$code" = 201 -a "$(body .role)" = operator
CSRF=$(body .csrfToken)
setc=$(grep -i '^set-cookie:' "$tmp/hdr")
check "the cookie is HttpOnly, SameSite=Strict, Path=/" \
  bash -c "grep -qi httponly <<<'$setc' && grep -qi 'samesite=strict' <<<'$setc' && grep -qi 'path=/' <<<'$setc'"
check "the answer carries no token secret" bash -c "! grep -qF -- '${OPER#drv1_????????_}' '$tmp/body' '$tmp/hdr'"
check "and is not cached" grep -qi '^cache-control: no-store' "$tmp/hdr"
code=$(creq GET $SES)
check "GET session with the cookie: 200 operator (got $code)" test "$code" = 200 -a "$(body .role)" = operator
code=$(creq GET /api/v1/namespaces/default/pods)
check "the cookie reads: 200 (got $code)" test "$code" = 200
cm='{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c1"},"data":{"a":"b"}}'
CM=/api/v1/namespaces/default/configmaps
code=$(creq POST $CM -H 'Content-Type: application/json' -d "$cm")
check "a write with the cookie but no X-CSRF-Token: 403 (got $code)" test "$code" = 403 && grep -q CSRF "$tmp/body"
code=$(creq POST $CM -H 'Content-Type: application/json' -H "X-CSRF-Token: ${CSRF}0" -d "$cm")
check "... with a wrong X-CSRF-Token: 403 (got $code)" test "$code" = 403
code=$(creq POST $CM -H 'Content-Type: application/json' -H "X-CSRF-Token: $CSRF" -d "$cm")
check "... with it: 201 (got $code)" test "$code" = 201
code=$(creq POST $CM -H 'Content-Type: application/x-www-form-urlencoded' -H 'Origin: https://evil.example' \
  -H 'Sec-Fetch-Site: cross-site' -H "X-CSRF-Token: $CSRF" -d 'a=b')
check "a cross-site form post with the cookie: 403 (got $code)" test "$code" = 403
code=$(creq GET /api/v1/namespaces/default/pods -H 'Origin: https://evil.example')
check "a read from another Origin with the cookie: 403 (got $code)" test "$code" = 403
code=$(creq GET /api/v1/namespaces/default/pods -H 'Sec-Fetch-Site: cross-site')
check "... or Sec-Fetch-Site: cross-site: 403 (got $code)" test "$code" = 403
code=$(creq GET /api/v1/namespaces/default/pods -H 'Sec-Fetch-Site: same-origin' -H "Origin: ${url%/}")
check "a same-origin read: 200 (got $code)" test "$code" = 200
code=$(creq GET /api/v1/tokens)
check "the session has its token's role, no more: tokens 403 (got $code)" test "$code" = 403
sed -i -E 's/(drover_session\t[^\t]*)[0-9a-f]$/\1x/' "$jar"
code=$(creq GET $SES)
check "a tampered cookie: 401 (got $code)" test "$code" = 401
sin "$VIEWER" >/dev/null
VCSRF=$(body .csrfToken)
code=$(creq POST $CM -H 'Content-Type: application/json' -H "X-CSRF-Token: $VCSRF" -d "${cm/c1/c2}")
check "a viewer's session cannot write: 403 (got $code)" test "$code" = 403
code=$(creq GET /api/v1/namespaces/default/secrets)
check "... nor read Secrets: 403 (got $code)" test "$code" = 403
code=$(creq GET "/apis/drover.io/v1/watch?kinds=pods,nodes,events" --max-time 1)
check "a viewer's session opens the multi-kind stream: 200 (got $code)" test "$code" = 200
code=$(creq GET "/apis/drover.io/v1/watch?kinds=pods,secrets" --max-time 2)
check "... never with Secrets in it, for any role: 400 naming them (got $code)" test "$code" = 400 && grep -qi secret "$tmp/body"
code=$(creq DELETE $SES -H 'Origin: https://evil.example' -H "X-CSRF-Token: $VCSRF")
check "sign-out from another origin: 403 (got $code)" test "$code" = 403
code=$(creq DELETE $SES)
check "sign-out without the CSRF token: 403 (got $code)" test "$code" = 403
code=$(creq GET $SES)
check "... and the session holds (got $code)" test "$code" = 200
code=$(creq DELETE $SES -H "X-CSRF-Token: $VCSRF")
check "sign-out: 200 (got $code)" test "$code" = 200
code=$(creq GET $SES)
check "the signed-out cookie: 401 (got $code)" test "$code" = 401
for _ in $(seq 1 70); do # one token signing in and out in a loop fills nobody else's sign-outs
  sin "$VIEWER" >/dev/null
  creq DELETE $SES -H "X-CSRF-Token: $(body .csrfToken)" >/dev/null
done
sin "$OPER" >/dev/null
code=$(creq DELETE $SES -H "X-CSRF-Token: $(body .csrfToken)")
code=$(creq GET $SES)
check "after 70 sign-outs of a viewer, an operator's sign-out still holds: 401 (got $code)" test "$code" = 401
VX=$(mktoken '{"role":"viewer"}')
sin "$VX" >/dev/null
cp "$jar" "$tmp/jar.vx"
code=$(req DELETE "/api/v1/tokens/$(cut -d_ -f2 <<<"$VX")" "$ADMIN")
code=$(creq GET /api/v1/nodes)
check "revoking the token ends its sessions: 401 (got $code)" test "$code" = 401
sin "$OPER" >/dev/null
cp "$jar" "$tmp/jar.op"

# ---- body cap ----
head -c $((3 * 1024 * 1024 + 10)) /dev/zero | tr '\0' ' ' >"$tmp/big"
code=$(req POST $D "$ADMIN" -H 'Content-Type: application/json' --data-binary @"$tmp/big")
check "a body over the cap: 413 with a valid token (got $code)" test "$code" = 413

# ---- no token in the hub's output ----
leaked=0
for t in "$ADMIN" "$VIEWER" "$OPER" "$BOOT" "$NEW"; do
  # The secret is all after "drv1_<8 hex id>_" (base64url: it may itself hold a "_").
  grep -qF -- "${t#drv1_????????_}" "$tmp/hub.out" "$tmp/hub.err" && leaked=$((leaked + 1))
done
check "no token secret in the hub's output" test "$leaked" = 0
check "healthz still open" test "$(req GET /healthz "")" = 200

# ---- a session survives a hub restart (the key is in the data dir) ----
kill "$hubpid"
wait "$hubpid" 2>/dev/null
port=${url##*:}
port=${port%/}
"$hub" --data "$tmp/data" --auth --no-tls --no-broker-tls --listen "127.0.0.1:$port" --no-controllers >"$tmp/hub.out" 2>"$tmp/hub.err" &
hubpid=$!
for _ in $(seq 1 $((200 * tf))); do
  grep -q '^drover-hub: serving' "$tmp/hub.out" && break
  sleep 0.05
done
check "session.key is mode 600" test "$(stat -c %a "$tmp/data/session.key")" = 600
cp "$tmp/jar.op" "$jar"
code=$(creq GET $SES)
check "an operator's cookie still works after a hub restart: 200 (got $code)" test "$code" = 200
code=$(creq GET /ui/)
check "the dashboard is served without a token: 200 (got $code)" test "$code" = 200 && grep -qi '<html' "$tmp/body"

echo "$n checks, $fails failed"
[ "$fails" = 0 ]
