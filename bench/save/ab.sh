#!/usr/bin/env bash
# bench/save/ab.sh: an A/B of restore or live-migration timings between two built checkouts, alternated.
#   bench/save/ab.sh restore|live BASE_DIR NEW_DIR [ROUNDS] [-- EXTRA_ARGS…]
# Each round runs, in BASE_DIR then NEW_DIR (and NEW_DIR again with each VAR=V in $AB_VARIANTS, e.g.
# AB_VARIANTS="XENO_SPARE_MEMORY=0 XENO_EARLY_UNPAUSE=0"):
#   restore: node dist/bench/save/run.js --runs 5 --idle 2 --no-qemu EXTRA_ARGS
#   live:    node dist/bench/save/live.js --runs 5 --no-qemu EXTRA_ARGS   (e.g. -- --idle-only)
# and prints the load, the bench's summary lines and the process times. Timings never decide pass/fail.
set -euo pipefail
kind="${1:?restore|live}"; base="${2:?BASE_DIR}"; new="${3:?NEW_DIR}"; rounds="${4:-2}"
shift $(( $# < 4 ? $# : 4 )); [ "${1:-}" = "--" ] && shift
case "$kind" in
  restore) cmd=(node dist/bench/save/run.js --runs 5 --idle 2 --no-qemu "$@"); pat='^xeno|restore [0-9]|real|user|sys' ;;
  live) cmd=(node dist/bench/save/live.js --runs 5 --no-qemu "$@"); pat='^xeno|downtime|drained|stop-and-copy|real|user|sys' ;;
  *) echo "ab.sh: unknown kind '$kind' (restore or live)" >&2; exit 2 ;;
esac
for r in $(seq 1 "$rounds"); do
  configs=("base|$base|" "new|$new|")
  for v in ${AB_VARIANTS:-}; do configs+=("$v|$new|$v"); done
  for c in "${configs[@]}"; do
    IFS='|' read -r name dir envv <<<"$c"
    echo "=== round $r $name $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
    ( cd "$dir" && time env $envv "${cmd[@]}" ) 2>&1 | grep -E "$pat" || true
  done
done
