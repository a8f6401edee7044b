#!/usr/bin/env bash
# Fetch Debian's static arm64 busybox (package busybox-static:arm64) into a cache directory and print the path of
# the binary. Idempotent and quiet when already cached: the binary's path is the only thing written to stdout.
# Cache directory: $1, else $XENO_IMAGES, else ~/.cache/xeno. Needs apt-get and dpkg-deb (Debian/Ubuntu hosts);
# adds the arm64 architecture to dpkg and runs 'apt-get update' only when the package cannot be found otherwise.
set -euo pipefail
cache="${1:-${XENO_IMAGES:-$HOME/.cache/xeno}}"
dest="$cache/busybox-static-arm64"
bin="$dest/bin/busybox"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
mkdir -p "$cache"
work="$(mktemp -d "$cache/.busybox-fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log="$work/log"
download() { (cd "$work" && apt-get download -q busybox-static:arm64) >>"$log" 2>&1; }
if ! download; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then dpkg --add-architecture arm64 >>"$log" 2>&1; fi
  apt-get update -q >>"$log" 2>&1 || true
  if ! download; then
    echo "fetch-busybox: could not download busybox-static:arm64 (log follows)" >&2
    cat "$log" >&2
    exit 1
  fi
fi
deb="$(ls "$work"/busybox-static_*_arm64.deb | head -1)"
mkdir -p "$work/x"
dpkg-deb -x "$deb" "$work/x"
[ -f "$work/x/bin/busybox" ] || { echo "fetch-busybox: $deb has no bin/busybox" >&2; exit 1; }
# Install atomically: concurrent callers may race; the first rename wins and the rest reuse it.
mkdir -p "$work/out/bin"
cp "$work/x/bin/busybox" "$work/out/bin/busybox"
cp "$deb" "$work/out/"
chmod 755 "$work/out/bin/busybox"
mv -T "$work/out" "$dest" 2>/dev/null || [ -x "$bin" ]
echo "$bin"
