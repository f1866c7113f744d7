# The check that a benchmark's figures were produced (issue 19: benchmarks that cannot lie),
# sourced by the scripts of tests/bench/ (lib.sh sources it); set NAME (for messages) first.
#   bench_figure WHAT VALUE       VALUE must be a number above zero (not empty, "?", "failed",
#                                 NaN or inf); otherwise WHAT is recorded as not measured
#   bench_number WHAT VALUE       the same for a figure that may be zero or negative (a difference)
#   bench_missing WHAT            records WHAT as not measured (a step or a baseline that failed)
#   bench_finish                  prints what was not measured and exits 1 if anything was (or
#                                 if no figure was checked at all), 0 otherwise; scripts end with it
#   bench_unmet MESSAGE           a prerequisite is missing: exit 1, or 77 (CTest's skip) when
#                                 DROVER_ALLOW_SKIP is set, as the integration tests do
# BENCH_SHORT=1 (CI: ctest -L bench) asks each script for its smallest sizes; the checks are on
# whether figures were produced, never on their values (timings on a shared machine flake).
BENCH_SHORT="${BENCH_SHORT:-0}"
BENCH_NOT_MEASURED=()
BENCH_FIGURES=0
bench_unmet() {
  echo "$NAME: $*" >&2
  [ -z "${DROVER_ALLOW_SKIP:-}" ] || exit 77
  exit 1
}
bench_missing() {
  BENCH_NOT_MEASURED+=("$1")
}
# _bench_num MODE VALUE: VALUE is a plain decimal number (not empty, "?", nan or inf) and,
# unless MODE is any, above zero.
_bench_num() {
  [[ "$2" =~ ^[+-]?[0-9]+(\.[0-9]+)?$ ]] && awk -v x="$2" -v m="$1" 'BEGIN {exit !(m == "any" || x > 0)}'
}
bench_figure() {
  BENCH_FIGURES=$((BENCH_FIGURES + 1))
  _bench_num pos "${2:-}" || bench_missing "$1 (got '${2:-}')"
}
bench_number() {
  BENCH_FIGURES=$((BENCH_FIGURES + 1))
  _bench_num any "${2:-}" || bench_missing "$1 (got '${2:-}')"
}
bench_finish() {
  if [ "${#BENCH_NOT_MEASURED[@]}" -gt 0 ]; then
    echo
    echo "$NAME: NOT MEASURED (${#BENCH_NOT_MEASURED[@]}; missing, zero or failed):"
    printf '  %s\n' "${BENCH_NOT_MEASURED[@]}"
    exit 1
  fi
  if [ "$BENCH_FIGURES" -eq 0 ]; then
    echo "$NAME: no figure was produced" >&2
    exit 1
  fi
  echo "$NAME: all $BENCH_FIGURES figures measured"
  exit 0
}
