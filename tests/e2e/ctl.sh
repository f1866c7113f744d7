#!/usr/bin/env bash
# Acts on the fleet run-e2e.sh started, from inside a spec (lib/ctl.mjs wraps it):
#   ctl.sh poweroff NODE | poweron NODE | agent-restart NODE | partition NODE | heal NODE
#   ctl.sh hub-restart [KILL] | nodes | forward PORT (127.0.0.1:PORT reaches the browser)
# The fleet lives in the harness's shell, so this sends the request over the FIFO
# $DROVER_E2E_CTL_DIR/req and prints the answer the harness writes back into a FIFO of its own;
# the exit status is the command's (124: no answer within DROVER_E2E_CTL_TIMEOUT s, default
# 180).
set -uo pipefail
dir="${DROVER_E2E_CTL_DIR:?ctl.sh runs inside tests/e2e/run-e2e.sh}"
[ "$#" -gt 0 ] || { sed -n '2,9p' "$0" >&2; exit 2; }
for a in "$@"; do
  [[ "$a" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "ctl.sh: bad argument '$a'" >&2; exit 2; }
done
resp="$(mktemp -u "$dir/resp.XXXXXXXX")"
mkfifo -m 600 "$resp" || exit 1
trap 'rm -f "$resp"' EXIT
out="$(mktemp)"
trap 'rm -f "$resp" "$out"' EXIT
# One short line, one write: requests of two callers never interleave.
printf '%s %s\n' "$(basename "$resp")" "$*" >"$dir/req"
timeout "${DROVER_E2E_CTL_TIMEOUT:-180}" cat "$resp" >"$out"
rc=$?
[ "$rc" -eq 0 ] || { echo "ctl.sh: no answer from the harness to: $*" >&2; exit 124; }
rc="$(sed -n 's/^#ctl-rc \([0-9]*\)$/\1/p' "$out" | tail -n 1)"
grep -v '^#ctl-rc ' "$out"
exit "${rc:-1}"
