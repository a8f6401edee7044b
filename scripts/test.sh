#!/usr/bin/env bash
# The test command (README): installs what it needs, type-checks strictly, builds, and runs every test with
# node:test. Extra arguments are passed to `node --test` (e.g. a file or --test-name-pattern).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
if [ -x scripts/fetch-busybox.sh ]; then scripts/fetch-busybox.sh >/dev/null; fi
echo "xeno test: type-checking (tsc --noEmit, strict)…" >&2
node_modules/.bin/tsc -p tsconfig.json --noEmit
scripts/build.sh
# Daemons the tests start serve no XenAPI endpoint on the default ports 8080/8443 (a developer's own xenod may
# hold them); the API's tests (test/api) choose their own addresses.
export XENO_API_LISTEN="${XENO_API_LISTEN:-none}"
if [ $# -gt 0 ]; then
  exec node --test --test-reporter=spec "$@"
fi
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
exec node --test --test-reporter=spec --test-concurrency=2 "${files[@]}"
