#!/usr/bin/env bash
# drover validate, as a user runs it: sample Kubernetes manifests load unchanged and print
# normalized; broken ones print every problem with file, document and field path, exit 1.
set -euo pipefail
bin="${DROVER_BUILD_DIR:?}/cli/drover"
data="${DROVER_TESTDATA:?}/manifests"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() { # name, condition...
  local name=$1; shift
  if "$@"; then echo "ok - $name"; else echo "not ok - $name"; fails=$((fails + 1)); fi
}

# Valid directory: exit 0, a v1 List of every object, JSON that parses.
"$bin" validate -f "$data/valid" >"$tmp/out.json" 2>"$tmp/err"
check "valid dir exits 0 with no errors" test ! -s "$tmp/err"
check "output is a List" grep -q '"kind": "List"' "$tmp/out.json"
n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["items"]))' "$tmp/out.json")
check "all 10 documents printed (got $n)" test "$n" -eq 10
check "stringData folded into data" grep -q '"password": "czNjcjN0LXZhbHVl"' "$tmp/out.json"
check "quantity canonical (0.5 -> 500m)" grep -q '"cpu": "500m"' "$tmp/out.json"

# YAML output of one file reads back as the same objects.
"$bin" validate -f "$data/valid/nginx-deployment.yaml" -o yaml >"$tmp/out.yaml"
check "yaml output has the image" grep -q 'image: nginx:1.25-alpine' "$tmp/out.yaml"
"$bin" validate -f "$tmp/out.yaml" >"$tmp/again.json"
"$bin" validate -f "$data/valid/nginx-deployment.yaml" >"$tmp/once.json"
check "yaml round trip is stable" cmp -s "$tmp/once.json" "$tmp/again.json"

# Standard input.
"$bin" validate -f - <"$data/valid/list.json" >"$tmp/stdin.json"
check "stdin accepted" grep -q '"name": "from-list"' "$tmp/stdin.json"

# Invalid: exit 1, every problem with file, document index and field path.
set +e
"$bin" validate -f "$data/invalid" >"$tmp/bad.out" 2>"$tmp/bad.err"
rc=$?
set -e
check "invalid dir exits 1 (got $rc)" test "$rc" -eq 1
check "nothing on stdout for invalid input" test ! -s "$tmp/bad.out"
check "field path with file and document" \
  grep -q "broken-deployment.yaml: document 0 (line 1): spec.template.spec.containers\[0\].image: required" "$tmp/bad.err"
check "second problem in the same document" \
  grep -q "broken-deployment.yaml: document 0 (line 1): spec.replicas: must be between 0 and 100000, not -1" "$tmp/bad.err"
check "secret problems" grep -q "bad-secret.yaml: document 0 (line 1): data\[password\]: illegal base64 data" "$tmp/bad.err"
check "syntax error has a line" grep -Eq "truncated.yaml: line [0-9]+, column [0-9]+: " "$tmp/bad.err"
nerr=$(grep -c "broken-deployment.yaml" "$tmp/bad.err")
check "all problems of the broken deployment reported (got $nerr)" test "$nerr" -ge 12

# Usage errors and missing files.
set +e
"$bin" validate >/dev/null 2>&1; rc_usage=$?
"$bin" validate -f "$tmp/nope.yaml" >/dev/null 2>"$tmp/nf.err"; rc_nf=$?
"$bin" validate -f "$data/valid" -o xml >/dev/null 2>&1; rc_o=$?
set -e
check "no -f is a usage error" test "$rc_usage" -eq 2
check "missing file exits 1" test "$rc_nf" -eq 1
check "missing file named" grep -q "nope.yaml" "$tmp/nf.err"
check "bad -o is a usage error" test "$rc_o" -eq 2

# Hostile input: an alias bomb and deep nesting are refused quickly with a clear error.
{
  echo 'a: &a ["x","x","x","x","x","x","x","x","x","x"]'
  prev=a
  for i in b c d e f g h i j; do echo "$i: &$i [*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev]"; prev=$i; done
} >"$tmp/bomb.yaml"
set +e
timeout 20 "$bin" validate -f "$tmp/bomb.yaml" >/dev/null 2>"$tmp/bomb.err"; rc_b=$?
python3 -c 'print("["*10000 + "]"*10000)' >"$tmp/deep.json"
timeout 20 "$bin" validate -f "$tmp/deep.json" >/dev/null 2>"$tmp/deep.err"; rc_d=$?
set -e
check "alias bomb refused (rc $rc_b)" test "$rc_b" -eq 1
check "deep nesting refused (rc $rc_d)" test "$rc_d" -eq 1
check "deep nesting error says why" grep -qi "nest" "$tmp/deep.err"


[ "$fails" -eq 0 ]
