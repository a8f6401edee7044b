/**
 * Booting a root file system from the guest initramfs: the /init fragment that honours `root=`.
 *
 * Debian's cloud kernel builds xen-blkfront as a module (CONFIG_XEN_BLKDEV_FRONTEND=m in its
 * /boot/config-*), so the kernel alone cannot mount root=/dev/xvda: the initramfs must load the module first
 * (src/images/initramfs.ts already does) and then mount the disk and `switch_root` to it. This fragment does the
 * second half. It goes into the initramfs's /init after the modules are loaded and before busybox init (which
 * runs the shell):
 * without `root=` on the command line it does nothing, so the busybox-shell guests (examples/demo.cfg) are
 * unchanged; when mounting fails it says why and falls through to that shell.
 *
 * Parameters read from /proc/cmdline (Documentation/admin-guide/kernel-parameters.txt; the kernel ignores
 * root=/init= itself when an initramfs provides /init, but leaves them in the command line):
 *   root=DEV | root=LABEL=L | root=UUID=U   the device (LABEL/UUID resolved with busybox findfs)
 *   rootfstype=T  rootflags=OPTS          mount type and extra options (default: busybox probes the type)
 *   ro | rw                               mount read-only (the kernel's default) or read-write
 *   rootdelay=SECONDS                     how long to wait for the device to appear (default 30: blkfront
 *                                         probes asynchronously, once the back-end reaches Connected)
 *   init=PATH                             the root's init (default /sbin/init)
 *
 * Before switch_root, /dev, /proc, /sys and /run move into the new root (as Debian's initramfs-tools does), so
 * the root's init finds devtmpfs already mounted and /dev/console present even on a root without device nodes.
 */

/** Marks the fragment inside an /init script (withRootSwitch does not insert it twice). */
export const ROOT_SWITCH_TAG = "# xeno-root-switch v1";

/** The busybox-sh fragment; expects proc, sysfs and devtmpfs mounted and the applet links installed. */
export function rootSwitchScript(): string {
  return `${ROOT_SWITCH_TAG}: with root= on the command line, mount it and switch_root (src/images/rootfs-init.ts).
rootdev= rootfstype= rootflags= rootmode=ro rootdelay=30 rootinit=/sbin/init
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    root=*) rootdev=\${arg#root=} ;;
    rootfstype=*) rootfstype=\${arg#rootfstype=} ;;
    rootflags=*) rootflags=\${arg#rootflags=} ;;
    rootdelay=*) rootdelay=\${arg#rootdelay=} ;;
    init=*) rootinit=\${arg#init=} ;;
    ro) rootmode=ro ;;
    rw) rootmode=rw ;;
  esac
done
if [ -n "$rootdev" ]; then
  # Wait in 0.1 s steps (usleep) for the device node devtmpfs creates when the driver registers the disk.
  n=0 dev=
  while :; do
    case "$rootdev" in
      LABEL=*|UUID=*) dev=$(findfs "$rootdev" 2>/dev/null) ;;
      *) dev=$rootdev ;;
    esac
    [ -n "$dev" ] && [ -b "$dev" ] && break
    [ "$n" -ge $((rootdelay * 10)) ] && break
    [ "$n" = 10 ] && echo "xeno init: waiting up to \${rootdelay}s for root device $rootdev"
    usleep 100000
    n=$((n + 1))
  done
  mkdir -p /newroot
  if [ -z "$dev" ] || [ ! -b "$dev" ]; then
    echo "xeno init: root device $rootdev did not appear (is the disk's back-end connected?)"
  elif ! mount -o "$rootmode\${rootflags:+,$rootflags}" \${rootfstype:+-t "$rootfstype"} "$dev" /newroot; then
    echo "xeno init: cannot mount $dev (root=$rootdev) on /newroot"
  elif [ ! -x "/newroot$rootinit" ] && [ ! -L "/newroot$rootinit" ]; then
    # (-L: systemd's /sbin/init is an absolute symlink, which resolves only after the chroot.)
    echo "xeno init: $rootdev has no executable $rootinit"
    umount /newroot
  else
    for m in dev proc sys run; do
      [ -d "/newroot/$m" ] && mount -o move "/$m" "/newroot/$m" 2>/dev/null
    done
    # exec keeps PID 1; switch_root empties the initramfs, chroots, and reopens the console on the new /dev.
    exec switch_root -c /dev/console /newroot "$rootinit"
  fi
  echo "xeno init: staying in the initramfs"
fi
`;
}

/**
 * `script` with the fragment inserted before the line `before` (e.g. the initramfs's `echo XENO-GUEST-READY`);
 * unchanged when it already holds the fragment. Throws when `before` is not a line of the script.
 */
export function withRootSwitch(script: string, before: string): string {
  if (script.includes(ROOT_SWITCH_TAG)) return script;
  const at = script.indexOf(`\n${before}\n`);
  if (at < 0) throw new Error(`withRootSwitch: no line ${JSON.stringify(before)} in the /init script`);
  return script.slice(0, at + 1) + rootSwitchScript() + script.slice(at + 1);
}
