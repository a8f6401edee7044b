#!/usr/bin/env bash
# Build dist/ from src/ when it is missing or stale (installs npm dev dependencies on first use).
# Quiet when nothing changed, so it is cheap to call before every command.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
stamp=dist/.stamp
if [ ! -d node_modules/typescript ]; then
  echo "xeno: installing npm dependencies (first run)…" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
if [ -f "$stamp" ] && [ -z "$(find src test bench tsconfig.json package.json -newer "$stamp" -print -quit 2>/dev/null)" ]; then
  exit 0
fi
# One builder at a time: concurrent invocations wait for the first.
exec 9>"$root/.build.lock"
flock 9
if [ -f "$stamp" ] && [ -z "$(find src test bench tsconfig.json package.json -newer "$stamp" -print -quit 2>/dev/null)" ]; then
  exit 0
fi
echo "xeno: compiling TypeScript…" >&2
touch "$stamp.new" 2>/dev/null || { mkdir -p dist; touch "$stamp.new"; }
node_modules/.bin/tsc -p tsconfig.json
mv "$stamp.new" "$stamp"
