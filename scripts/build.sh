#!/usr/bin/env bash
# Build dist/ from src/ when it is missing or stale (installs npm dev dependencies on first use).
# Quiet when nothing changed, so it is cheap to call before every command. Type errors are reported but do not
# stop the build (tsc still emits); the test command type-checks strictly.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
stamp=dist/.stamp
stale() { [ ! -f "$stamp" ] || [ -n "$(find src test bench tsconfig.json package.json -newer "$stamp" -print -quit 2>/dev/null)" ]; }
# npm ci on first use, and again when package-lock.json changed (a dependency was added: zod came so).
if [ ! -d node_modules/typescript ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "xeno: installing npm dependencies (package-lock.json is newer than node_modules)…" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
stale || exit 0
# One builder at a time: concurrent invocations wait for the first.
mkdir -p dist
exec 9>"$root/dist/.build.lock"
flock 9
stale || exit 0
echo "xeno: compiling TypeScript…" >&2
touch "$stamp.new"
if ! node_modules/.bin/tsc -p tsconfig.json >"dist/.tsc.log" 2>&1; then
  echo "xeno: warning: type errors (see dist/.tsc.log; 'npm run typecheck'); running the emitted JavaScript" >&2
  head -5 dist/.tsc.log >&2
fi
# run-user's modules as one script with a V8 code cache (src/cli/bundle-loader.ts); without it run-user imports them.
node scripts/bundle-run-user.mjs || echo "xeno: warning: run-user's bundle not written; run-user loads the ES modules" >&2
mv "$stamp.new" "$stamp"
