/**
 * `xeno image debian` (src/images/debian.ts) and the initramfs root switch (src/images/rootfs-init.ts).
 *
 * Fast tests: argument parsing, names, recipe, the customize hook run against a fake tree (with a stub chroot),
 * mkfs.ext4 -d on a tiny tree checked with debugfs, the build namespace (uid map, private binfmt_misc running
 * the cached arm64 busybox), and the root-switch fragment run by the host's sh with stubbed commands.
 *
 * The real build (mmdebstrap from deb.debian.org, 4-7 minutes on 2 loaded cores, ~50 MB of downloads) runs only
 * as root with mmdebstrap installed, into a temporary directory; it is skipped with a message otherwise, when
 * the mirror is unreachable, or with XENO_TEST_DEBIAN=0.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DEFAULT_SIZE, DebianImageError, NAMESPACE_SCRIPT, aptSources, binfmtRegistration, customizeScript, debianPackages,
  debianRecipe, defaultDebianOptions, ensureDebianImage, imagePaths, mkfsArgs, mmdebstrapArgs, parseDebianArgs,
  parseSize, runInBuildNamespace,
} from "../../src/images/debian.js";
import { UEFI_PACKAGES, uefiSetupScript } from "../../src/images/debian-uefi.js";
import { defaultCacheDir } from "../../src/images/index.js";
import { GUEST_READY_MARKER, initScript } from "../../src/images/initramfs.js";
import { ROOT_SWITCH_TAG, rootSwitchScript, withRootSwitch } from "../../src/images/rootfs-init.js";

const debianCode = (c: string) => (e: unknown): boolean => e instanceof DebianImageError && e.code === c;
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const has = (tool: string): boolean => spawnSync("sh", ["-c", `command -v ${tool} || test -x /usr/sbin/${tool} || test -x /sbin/${tool}`]).status === 0;
const tmp = (): string => mkdtempSync(join(tmpdir(), "xeno-debian-test-"));

test("debian: --size parsing (binary units, whole blocks, minimum)", () => {
  assert.equal(parseSize("2G"), 2 * 2 ** 30);
  assert.equal(parseSize("2GiB"), 2 * 2 ** 30);
  assert.equal(parseSize("1536M"), 1536 * 2 ** 20);
  assert.equal(parseSize("1.5g"), 1.5 * 2 ** 30);
  assert.equal(parseSize(String(300 * 2 ** 20 + 5)), 300 * 2 ** 20);
  assert.throws(() => parseSize("100M"), debianCode("EDEBIAN_ARGS"));
  assert.throws(() => parseSize("lots"), debianCode("EDEBIAN_ARGS"));
});

test("debian: command line", () => {
  const d = parseDebianArgs([]);
  assert.equal(d.opts.suite, "bookworm");
  assert.equal(d.opts.size, DEFAULT_SIZE);
  assert.equal(d.opts.init, "sysvinit");
  assert.equal(d.opts.rootPassword, "");
  const c = parseDebianArgs(["--suite", "trixie", "--size=4G", "--init", "systemd", "--include", "less,vim-tiny",
    "--include=curl", "--hostname", "box", "--root-password", "pw", "--mirror", "http://m/debian/", "--dir", "/x",
    "--force", "-q", "--json", "-v"]);
  assert.deepEqual([c.opts.suite, c.opts.size, c.opts.init, c.opts.include, c.opts.hostname, c.opts.rootPassword,
    c.opts.mirror, c.opts.cacheDir, c.opts.force, c.quiet, c.json, c.opts.verbose],
  ["trixie", 4 * 2 ** 30, "systemd", ["less", "vim-tiny", "curl"], "box", "pw", "http://m/debian", "/x", true, true, true, true]);
  assert.equal(parseDebianArgs(["-h"]).help, true);
  assert.throws(() => parseDebianArgs(["--bogus"]), debianCode("EDEBIAN_ARGS"));
  assert.throws(() => parseDebianArgs(["--init", "openrc"]), debianCode("EDEBIAN_ARGS"));
  assert.throws(() => parseDebianArgs(["--size"]), debianCode("EDEBIAN_ARGS"));
});

test("debian: image names, apt sources, packages, mmdebstrap and mkfs command lines", () => {
  assert.equal(imagePaths("/c", "bookworm").image, "/c/images/debian-bookworm-arm64.img");
  assert.equal(imagePaths("/c", "bookworm").stamp, "/c/images/debian-bookworm-arm64.json");
  assert.equal(imagePaths("/c", "bookworm", "systemd").image, "/c/images/debian-bookworm-systemd-arm64.img");
  assert.deepEqual(aptSources("bookworm", "http://m"), ["deb http://m bookworm main", "deb http://m bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main"]);
  assert.deepEqual(aptSources("sid", "http://m"), ["deb http://m sid main"]);
  const o = { ...defaultDebianOptions(), include: ["less", "procps"] };
  const pkgs = debianPackages(o);
  assert.ok(pkgs.includes("sysvinit-core") && pkgs.includes("isc-dhcp-client") && pkgs.includes("less"));
  assert.equal(pkgs.filter((p) => p === "procps").length, 1);
  assert.ok(debianPackages({ init: "systemd", include: [] }).includes("udev"));
  const args = mmdebstrapArgs(o, "/t/root", "/t/hook.sh");
  assert.ok(args.includes("--variant=minbase") && args.includes("--architectures=arm64") && args.includes("--mode=root"));
  assert.ok(args.includes(`--include=${pkgs.join(",")}`));
  assert.deepEqual(args.slice(-5), ["bookworm", "/t/root", ...aptSources("bookworm", o.mirror)]);
  assert.ok(args.includes(`--customize-hook=sh '/t/hook.sh' "$1"`));
  assert.deepEqual(mkfsArgs("/t/root", "/t/x.img"), ["-F", "-q", "-t", "ext4", "-L", "xeno-root", "-m", "1", "-d", "/t/root", "/t/x.img"]);
});

test("debian: the recipe follows everything that shapes the image", () => {
  const base = defaultDebianOptions();
  const r = debianRecipe(base);
  assert.equal(debianRecipe({ ...defaultDebianOptions() }), r);
  assert.equal(debianRecipe({ ...base, force: true, verbose: true, cacheDir: "/else" }), r, "not: where or how loudly");
  for (const change of [{ size: 4 * 2 ** 30 }, { init: "systemd" as const }, { include: ["less"] }, { suite: "trixie" },
    { hostname: "h" }, { rootPassword: "x" }, { mirror: "http://m" }]) {
    assert.notEqual(debianRecipe({ ...base, ...change }), r, JSON.stringify(change));
  }
});

test("debian --uefi: its own image name, the kernel and efibootmgr, a setup hook and ids for the hooks; the PV recipe unchanged", () => {
  assert.equal(parseDebianArgs(["--uefi"]).opts.uefi, true);
  assert.equal(parseDebianArgs([]).opts.uefi, undefined);
  assert.equal(imagePaths("/c", "bookworm", "sysvinit", true).image, "/c/images/debian-bookworm-uefi-arm64.img");
  assert.equal(imagePaths("/c", "bookworm", "systemd", true).stamp, "/c/images/debian-bookworm-systemd-uefi-arm64.json");
  const base = defaultDebianOptions(), u = { ...base, uefi: true };
  for (const p of UEFI_PACKAGES) assert.ok(debianPackages(u).includes(p) && !debianPackages(base).includes(p), p);
  // The PV image's recipe does not depend on the option's existence (cached PV images stay valid).
  assert.equal(debianRecipe({ ...base, uefi: false }), debianRecipe(base));
  assert.notEqual(debianRecipe(u), debianRecipe(base));
  const ids = { rootUuid: "0b0c0d0e-1111-2222-3333-444455556666", espSerial: "ABCD1234" };
  const args = mmdebstrapArgs(u, "/t/root", "/t/hook.sh", { setupHook: "/t/setup.sh", ids });
  assert.ok(args.includes(`--setup-hook=sh '/t/setup.sh' "$1"`));
  assert.ok(args.includes(`--customize-hook=sh '/t/hook.sh' "$1" 0b0c0d0e-1111-2222-3333-444455556666 ABCD-1234`));
  // The setup hook configures initramfs-tools before the kernel package's postinst runs mkinitramfs.
  const d = tmp();
  writeFileSync(join(d, "setup.sh"), uefiSetupScript());
  execFileSync("sh", [join(d, "setup.sh"), d]);
  assert.match(readFileSync(join(d, "etc/initramfs-tools/conf.d/xeno.conf"), "utf8"), /^MODULES=list$/m);
  const hook = join(d, "etc/initramfs-tools/hooks/xeno-virtio");
  assert.equal(statSync(hook).mode & 0o777, 0o755);
  assert.equal(execFileSync("sh", [hook, "prereqs"]).toString(), "\n");
  assert.match(readFileSync(hook, "utf8"), /for m in virtio_pci virtio_blk virtio_net; do/);
  rmSync(d, { recursive: true, force: true });
});

/** A fake tree with Debian's stock inittab lines, and a stub `chroot` that logs its arguments and stdin. */
function runCustomize(init: "sysvinit" | "systemd", rootPassword: string, uefiIds: string[] = []): { root: string; log: string } {
  const dir = tmp();
  const root = join(dir, "root");
  mkdirSync(join(root, "etc"), { recursive: true });
  writeFileSync(join(root, "etc", "inittab"), "id:2:initdefault:\n1:2345:respawn:/sbin/getty --noclear 38400 tty1\n" +
    "2:23:respawn:/sbin/getty 38400 tty2\n#T0:23:respawn:/sbin/getty -L ttyS0 9600 vt100\n");
  writeFileSync(join(root, "etc", "resolv.conf"), "nameserver 192.0.2.1\n");
  mkdirSync(join(dir, "bin"));
  writeFileSync(join(dir, "bin", "chroot"), `#!/bin/sh\necho "chroot $*" >> ${join(dir, "log")}\nif [ "$2" = chpasswd ]; then cat >> ${join(dir, "log")}; fi\n`);
  chmodSync(join(dir, "bin", "chroot"), 0o755);
  writeFileSync(join(dir, "hook.sh"), customizeScript({ init, hostname: "guest1", rootPassword, uefi: uefiIds.length > 0 }));
  execFileSync("sh", [join(dir, "hook.sh"), root, ...uefiIds], { env: { ...process.env, PATH: `${join(dir, "bin")}:${process.env.PATH}` } });
  return { root, log: readFileSync(join(dir, "log"), "utf8") };
}

test("debian: the customize hook writes fstab, hostname, network, getty and the root password", { skip: existsSync("/bin/sh") ? false : "no /bin/sh" }, () => {
  const { root, log } = runCustomize("sysvinit", "");
  const read = (p: string): string => readFileSync(join(root, p), "utf8");
  assert.match(read("etc/fstab"), /^\/dev\/xvda \/ ext4 rw,errors=remount-ro 0 0$/m);
  assert.equal(read("etc/hostname"), "guest1\n");
  assert.match(read("etc/hosts"), /^127\.0\.1\.1\tguest1$/m);
  assert.match(read("etc/network/interfaces"), /^auto eth0\niface eth0 inet dhcp$/m);
  assert.match(read("etc/network/interfaces"), /^iface lo inet loopback$/m);
  const inittab = read("etc/inittab");
  assert.match(inittab, /^#1:2345:respawn:\/sbin\/getty/m);
  assert.match(inittab, /^#2:23:respawn:\/sbin\/getty/m);
  assert.match(inittab, /^co:2345:respawn:\/usr\/local\/sbin\/xeno-console-getty$/m);
  assert.match(inittab, /^id:2:initdefault:$/m);
  const getty = join(root, "usr/local/sbin/xeno-console-getty");
  assert.equal(statSync(getty).mode & 0o777, 0o755);
  assert.equal(spawnSync("sh", ["-n", getty]).status, 0);
  assert.equal(existsSync(join(root, "etc/resolv.conf")), false);
  assert.equal(log, `chroot ${root} passwd --quiet --delete root\n`);

  const s = runCustomize("systemd", "s3cr'et");
  assert.equal(s.log, `chroot ${s.root} chpasswd\nroot:s3cr'et\n`);
  assert.equal(readlinkSync(join(s.root, "etc/systemd/network/99-default.link")), "/dev/null", "kernel names (eth0) kept");
  assert.match(readFileSync(join(s.root, "etc/inittab"), "utf8"), /^1:2345:respawn/m, "systemd variant leaves inittab alone");
});

test("debian --uefi: the customize hook's fstab mounts the root and the ESP by UUID", { skip: existsSync("/bin/sh") ? false : "no /bin/sh" }, () => {
  const { root, log } = runCustomize("sysvinit", "", ["0b0c0d0e-1111-2222-3333-444455556666", "ABCD-1234"]);
  // udev (there for initramfs-tools) is disabled in the booted system.
  assert.match(log, new RegExp(`^chroot ${root} update-rc.d udev disable S$`, "m"));
  const fstab = readFileSync(join(root, "etc/fstab"), "utf8");
  assert.match(fstab, /^UUID=0b0c0d0e-1111-2222-3333-444455556666 \/ ext4 rw,errors=remount-ro 0 0$/m);
  assert.match(fstab, /^UUID=ABCD-1234 \/boot\/efi vfat umask=0077,nofail 0 0$/m);
  assert.doesNotMatch(fstab, /xvda/);
  assert.ok(statSync(join(root, "boot/efi")).isDirectory());
  assert.match(readFileSync(join(root, "etc/inittab"), "utf8"), /^co:2345:respawn:\/usr\/local\/sbin\/xeno-console-getty$/m);
});

test("debian: mkfs.ext4 -d populates a tiny image (checked with debugfs)", { skip: has("mkfs.ext4") && has("debugfs") ? false : "no e2fsprogs" }, () => {
  const dir = tmp();
  const tree = join(dir, "root");
  mkdirSync(join(tree, "etc"), { recursive: true });
  writeFileSync(join(tree, "etc", "fstab"), "/dev/xvda / ext4 rw 0 0\n");
  const img = join(dir, "t.img");
  writeFileSync(img, "");
  execFileSync("truncate", ["-s", "16M", img]);
  execFileSync("mkfs.ext4", mkfsArgs(tree, img), { env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
  const dbg = (req: string): string => execFileSync("debugfs", ["-R", req, img], { stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } }).toString();
  assert.equal(dbg("cat /etc/fstab"), "/dev/xvda / ext4 rw 0 0\n");
  assert.match(execFileSync("dumpe2fs", ["-h", img], { stdio: ["ignore", "pipe", "ignore"] }).toString(), /volume name:\s+xeno-root/);
  assert.ok(statSync(img).blocks * 512 < 16 * 2 ** 20, "sparse");
  rmSync(dir, { recursive: true, force: true });
});

const busybox = join(defaultCacheDir(), "busybox-static-arm64", "bin", "busybox");
test("debian: build namespace maps every id and runs arm64 programs via a private binfmt_misc",
  { skip: !isRoot ? "needs root" : !has("unshare") || !has("qemu-aarch64-static") ? "needs unshare and qemu-user-static" : false }, async () => {
    const binfmt = process.arch === "arm64" ? null : await binfmtRegistration("/usr/bin/qemu-aarch64-static");
    const hostEntry = existsSync("/proc/sys/fs/binfmt_misc/qemu-aarch64");
    const lines: string[] = [];
    const script = `id -u; cat /proc/self/uid_map; ${existsSync(busybox) ? `${busybox} uname -m` : "echo aarch64"}`;
    const r = await runInBuildNamespace("unshare", ["sh", "-c", script], binfmt, (l) => lines.push(l));
    assert.equal(r.code, 0, r.tail.join("\n"));
    assert.equal(lines[0], "0");
    assert.match(lines[1]!, /^\s*0\s+0\s+4294967295$/);
    assert.equal(lines[2], "aarch64");
    assert.equal(existsSync("/proc/sys/fs/binfmt_misc/qemu-aarch64"), hostEntry, "the registration stays in the namespace");
    assert.match(NAMESPACE_SCRIPT, /exec "\$@"/);
  });

test("rootfs-init: the fragment goes before the ready marker, once", () => {
  const script = initScript("6.1.0-1-cloud-arm64", [], ["xen_blkfront"]);
  // initScript has the fragment already, before busybox init takes over as PID 1.
  assert.ok(script.indexOf(ROOT_SWITCH_TAG) > script.indexOf("modprobe"));
  assert.ok(script.indexOf(ROOT_SWITCH_TAG) < script.indexOf("exec /bin/busybox init"));
  assert.equal(withRootSwitch(script, "exec /bin/busybox init"), script);
  const bare = `#!/bin/sh\necho ${GUEST_READY_MARKER}\n`;
  const out = withRootSwitch(bare, `echo ${GUEST_READY_MARKER}`);
  assert.ok(out.indexOf(ROOT_SWITCH_TAG) < out.indexOf(`echo ${GUEST_READY_MARKER}`));
  assert.equal(withRootSwitch(out, `echo ${GUEST_READY_MARKER}`), out);
  assert.throws(() => withRootSwitch("#!/bin/sh\n", "echo nope"));
  assert.equal(spawnSync("sh", ["-n", "-c", out]).status, 0, "valid POSIX sh");
});

/**
 * Runs the fragment with the host's sh: /proc/cmdline and /newroot redirected into a temp dir, and mount,
 * umount, switch_root, usleep, findfs stubbed (they log their arguments). Returns the log and the output.
 */
function runFragment(cmdline: string, opts: { init?: boolean; findfs?: string } = {}): { log: string; out: string } {
  const dir = tmp();
  const newroot = join(dir, "newroot");
  mkdirSync(join(newroot, "dev"), { recursive: true });
  if (opts.init !== false) {
    mkdirSync(join(newroot, "sbin"));
    writeFileSync(join(newroot, "sbin", "init"), "#!/bin/sh\n");
    chmodSync(join(newroot, "sbin", "init"), 0o755);
  }
  writeFileSync(join(dir, "cmdline"), cmdline + "\n");
  mkdirSync(join(dir, "bin"));
  const log = join(dir, "log");
  for (const cmd of ["mount", "umount", "switch_root", "usleep"]) {
    writeFileSync(join(dir, "bin", cmd), `#!/bin/sh\necho "${cmd} $*" >> ${log}\n`);
    chmodSync(join(dir, "bin", cmd), 0o755);
  }
  writeFileSync(join(dir, "bin", "findfs"), `#!/bin/sh\necho "findfs $*" >> ${log}\necho ${opts.findfs ?? ""}\n`);
  chmodSync(join(dir, "bin", "findfs"), 0o755);
  const fragment = rootSwitchScript().replaceAll("/proc/cmdline", join(dir, "cmdline")).replaceAll("/newroot", newroot)
    .replace("exec switch_root", "switch_root") + "echo END\n";
  const r = spawnSync("sh", ["-c", fragment], { env: { ...process.env, PATH: `${join(dir, "bin")}:${process.env.PATH}` } });
  const out = r.stdout.toString() + r.stderr.toString();
  const text = existsSync(log) ? readFileSync(log, "utf8").replaceAll(newroot, "NEWROOT") : "";
  rmSync(dir, { recursive: true, force: true });
  return { log: text, out };
}

// A block device that exists on Linux hosts; the stubbed mount never opens it.
const blockDev = ["/dev/loop0", "/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/xvda"].find((d) => {
  try { return statSync(d).isBlockDevice(); } catch { return false; }
});

test("rootfs-init: root= mounts (ro by default, rw, rootfstype, rootflags), moves /dev and switch_roots", { skip: blockDev && existsSync("/bin/sh") ? false : "no block device node to point root= at" }, () => {
  const a = runFragment(`console=hvc0 root=${blockDev}`);
  assert.match(a.log, new RegExp(`^mount -o ro ${blockDev} NEWROOT$`, "m"));
  assert.match(a.log, /^mount -o move \/dev NEWROOT\/dev$/m);
  assert.match(a.log, /^switch_root -c \/dev\/console NEWROOT \/sbin\/init$/m);
  const b = runFragment(`root=${blockDev} rw rootfstype=ext4 rootflags=noatime init=/bin/sh`, { init: false });
  assert.match(b.log, new RegExp(`^mount -o rw,noatime -t ext4 ${blockDev} NEWROOT$`, "m"));
  assert.match(b.out, /has no executable \/bin\/sh/);
  assert.match(b.log, /^umount NEWROOT$/m);
  assert.doesNotMatch(b.log, /switch_root/);
  const c = runFragment(`root=LABEL=xeno-root rootdelay=0`, { findfs: blockDev });
  assert.match(c.log, /^findfs LABEL=xeno-root$/m);
  assert.match(c.log, /^switch_root /m);
});

test("rootfs-init: without root= nothing happens; a missing device gives up after rootdelay", { skip: existsSync("/bin/sh") ? false : "no /bin/sh" }, () => {
  const a = runFragment("console=hvc0 rdinit=/init");
  assert.equal(a.log, "");
  assert.equal(a.out, "END\n");
  const b = runFragment("root=/dev/xeno-no-such-disk rootdelay=0");
  assert.match(b.out, /root device \/dev\/xeno-no-such-disk did not appear/);
  assert.match(b.out, /staying in the initramfs\nEND\n$/);
  assert.doesNotMatch(b.log, /^mount/m);
});

// ---------------------------------------------------------------------------------------------------------

const realSkip = process.env.XENO_TEST_DEBIAN === "0" ? "XENO_TEST_DEBIAN=0"
  : !isRoot ? "needs root (the real build maps every uid)"
    : !has("mmdebstrap") ? "mmdebstrap not installed (apt-get install mmdebstrap)"
      : !has("qemu-aarch64-static") && process.arch !== "arm64" ? "qemu-user-static not installed" : false;

test("debian: real build from deb.debian.org (4-7 min, ~50 MB download) into a temp dir; contents checked with debugfs",
  { skip: realSkip, timeout: 30 * 60_000 }, async (t) => {
    const dir = tmp();
    t.diagnostic("building a real Debian bookworm arm64 image with mmdebstrap: this takes 4-7 minutes (XENO_TEST_DEBIAN=0 skips it)");
    try {
      const opts = { ...defaultDebianOptions(), cacheDir: dir, size: 512 * 2 ** 20, onProgress: (m: string): void => { t.diagnostic(m); } };
      let r;
      try { r = await ensureDebianImage(opts); } catch (e) {
        if (e instanceof DebianImageError && e.code === "EDEBIAN_NETWORK") { t.skip("no network: " + e.message.split("\n")[0]); return; }
        throw e;
      }
      assert.equal(r.built, true);
      const dbg = (req: string): string => execFileSync("debugfs", ["-R", req, r.path], { stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } }).toString();
      assert.match(dbg("cat /etc/fstab"), /^\/dev\/xvda \/ ext4/m);
      assert.match(dbg("cat /etc/inittab"), /^co:2345:respawn:\/usr\/local\/sbin\/xeno-console-getty$/m);
      assert.match(dbg("cat /etc/shadow"), /^root::/m);
      assert.match(dbg("cat /etc/network/interfaces"), /^iface eth0 inet dhcp$/m);
      assert.match(dbg("stat /usr/sbin/init"), /Type: regular/);
      assert.match(dbg("stat /usr/sbin/agetty"), /Type: regular/);
      assert.match(dbg("stat /usr/sbin/dhclient"), /Type: regular/);
      assert.match(dbg("cat /var/lib/dpkg/status"), /^Package: sysvinit-core\nStatus: install ok installed$/m);
      // A second call with the same recipe is a no-op.
      const again = await ensureDebianImage({ ...opts, onProgress: undefined });
      assert.equal(again.built, false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
