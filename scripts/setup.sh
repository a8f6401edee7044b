#!/usr/bin/env bash
# Installs what Xeno's tests need on a fresh Debian machine: npm packages, and from apt the arm64 cross
# compiler, QEMU's user-mode emulator (the oracle), qemu-img, qemu-system-arm and the AAVMF firmware (qcow2 and
# firmware tests), mtools and grub-common (the HVM disk tests' ESPs), chromium (the web console's browser
# test) and Debian's busybox-static:arm64 (fetched, not installed).
# Idempotent and quiet when everything is present.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

need=()
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v flock >/dev/null || need+=(util-linux)
command -v dtc >/dev/null || need+=(device-tree-compiler)
command -v cpio >/dev/null || need+=(cpio)
command -v xenstore-ls >/dev/null || need+=(xenstore-utils)
command -v passt >/dev/null || need+=(passt)                       # the bridge's uplink to the host (src/net)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)           # xeno image debian (and its test)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v chromium >/dev/null || need+=(chromium)               # the web console's browser test (test/api/web-browser)
command -v qemu-img >/dev/null || need+=(qemu-utils)             # qcow2 tests: qemu-img/qemu-io as the oracle (test/storage)
[ -f /usr/share/AAVMF/AAVMF_CODE.fd ] || need+=(qemu-efi-aarch64) # UEFI firmware for type="hvm" (test/hvm)
command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm) # the oracle for firmware boot (test/hvm)
command -v mcopy >/dev/null || need+=(mtools)                     # FAT images for HVM disks (test/hvm/disk-boot)
command -v grub-mkimage >/dev/null || need+=(grub-common)         # GRUB's arm64-efi image for an ESP (test/hvm/disk-boot)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "xeno setup: need root (or sudo) to install: ${need[*]}" >&2; exit 1; }
    sudo=sudo
  fi
  echo "xeno setup: installing ${need[*]} with apt…" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
if [ ! -d node_modules/typescript ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "xeno setup: installing npm packages…" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
