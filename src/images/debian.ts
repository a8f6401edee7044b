/**
 * `xeno image debian`: an ext4 arm64 Debian root disk built from Debian's packages with mmdebstrap.
 *
 * Output: <cache>/images/debian-<suite>-arm64.img, a sparse raw ext4 image (label xeno-root, 2 GiB by default)
 * for `disk = [ 'format=raw, vdev=xvda, access=rw, target=…' ]` (examples/debian.cfg), and next to it
 * debian-<suite>-arm64.json, the stamp saying which recipe built it. A second run with the same recipe does
 * nothing; --force or a changed recipe rebuilds (keeping a copy a guest wrote to as .img.old).
 *
 * How the arm64 second stage runs on an amd64 host (the choice, and why):
 *   mmdebstrap (one apt-driven step, Debian's own tool) unpacks the packages and then runs their maintainer
 *   scripts, which are arm64 programs, in a chroot. The kernel starts those through binfmt_misc and
 *   qemu-aarch64-static (qemu-user-static). Many hosts have no qemu-aarch64 registration (containers, VMs
 *   without systemd-binfmt: this one has /proc/sys/fs/binfmt_misc empty and unmounted), and registering one
 *   system-wide changes how every process on the host runs arm64 files. Since Linux 6.7 binfmt_misc can be
 *   mounted inside a user namespace with entries private to it, so the build runs in a new user + mount + pid
 *   namespace that maps all host uids and gids to themselves (written by us, real root, into
 *   /proc/<pid>/{uid,gid}_map), registers qemu there with the F flag (the kernel opens the interpreter at
 *   registration, so it works inside the chroot), and runs mmdebstrap in root mode, which detects that it
 *   cannot mknod and bind-mounts /dev nodes instead. Nothing leaks to the host: the registration and every
 *   mount die with the namespace, even when the build is killed. On kernels before 6.7 an existing host-wide
 *   registration (qemu-user-static + binfmt-support/systemd) is used instead.
 *   Rejected: debootstrap --foreign with the second stage inside a Xeno guest (needs the block back-end, and
 *   would run dpkg at ~50 MIPS: tens of minutes); mmdebstrap --mode=chrootless (bookworm's maintainer scripts
 *   are not all DPKG_ROOT-clean); proot -q qemu (ptrace per syscall, slow, one more tool).
 *   Then `mkfs.ext4 -d` copies the tree into the image: no loop device or mount on the host.
 *
 * The guest (see docs/debian-image.md): minbase + sysvinit-core (default; `--init systemd` for systemd-sysv and
 * udev), ifupdown + isc-dhcp-client on eth0, root without a password, a getty on the kernel's console device,
 * /dev/xvda as / in fstab. No kernel modules: the initramfs loads xen-blkfront and xen-netfront before it
 * switch_roots (src/images/rootfs-init.ts).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { access, constants, mkdir, open, readFile, readdir, readlink, rename, rm, stat, statfs, writeFile } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { defaultCacheDir } from "./index.js";
import { ensureHostTools, HostToolError } from "./host-packages.js";
import { assembleUefiDisk, checkKernel, espUuid, newUefiIds, UEFI_FSTAB, UEFI_LAYOUT_VERSION, UEFI_NO_UDEV, UEFI_PACKAGES, uefiSetupScript, type UefiIds } from "./debian-uefi.js";
import { ensureGrubArm64Efi, ESP_TOOLS } from "./uefi-esp.js";

/** Bumped when the build (packages, customisation, mkfs) changes in a way a cached image must not survive. */
export const DEBIAN_BUILDER_VERSION = 1;
export const DEFAULT_SUITE = "bookworm";
export const DEFAULT_MIRROR = "http://deb.debian.org/debian";
export const SECURITY_MIRROR = "http://deb.debian.org/debian-security";
export const DEFAULT_SIZE = 2 * 1024 ** 3;
export const MIN_SIZE = 256 * 1024 ** 2;
export const DEFAULT_HOSTNAME = "xeno-debian";
export const FS_LABEL = "xeno-root";
/** Free space the build needs next to the image: the unpacked tree (~250-400 MB), apt's downloads, the image. */
export const MIN_FREE_BYTES = 1.5 * 1024 ** 3;

export type DebianInit = "sysvinit" | "systemd";

/** Packages on top of mmdebstrap's minbase variant (Essential + apt), per init system. */
export const BASE_PACKAGES = ["ifupdown", "isc-dhcp-client", "iproute2", "netbase", "iputils-ping", "procps"];
export const INIT_PACKAGES: Record<DebianInit, readonly string[]> = {
  sysvinit: ["sysvinit-core"],
  // udev: without it no .device unit ever appears and serial-getty@hvc0 waits for dev-hvc0.device in vain.
  systemd: ["systemd-sysv", "udev"],
};

export type DebianErrorCode =
  | "EDEBIAN_ARGS"       // a bad command-line argument
  | "EDEBIAN_NO_TOOL"    // mmdebstrap, mkfs.ext4, unshare or qemu-aarch64-static is missing (message names the package)
  | "EDEBIAN_NEED_ROOT"  // not root: the uid map and mkfs of a tree with every owner need it
  | "EDEBIAN_BINFMT"     // arm64 programs cannot be run (no private binfmt_misc and no host registration)
  | "EDEBIAN_NETWORK"    // apt could not reach the mirror
  | "EDEBIAN_NO_SPACE"   // not enough free space in the cache directory, or the image is too small for the tree
  | "EDEBIAN_BUSY"       // another build of the same image is running
  | "EDEBIAN_BUILD";     // mmdebstrap or mkfs failed otherwise (message holds the tail of its output)

export class DebianImageError extends Error {
  constructor(readonly code: DebianErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DebianImageError";
  }
}

export interface DebianImageOptions {
  suite: string;
  /** Image size in bytes (the file is sparse). */
  size: number;
  init: DebianInit;
  mirror: string;
  hostname: string;
  /** Extra packages. */
  include: string[];
  /** Root password; "" means no password (login as root without one). */
  rootPassword: string;
  /** A GPT disk for UEFI firmware (HVM domains) with Debian's kernel: src/images/debian-uefi.ts. */
  uefi?: boolean;
  cacheDir?: string;
  force?: boolean;
  /** Every line mmdebstrap prints, not just its "I:" progress lines. */
  verbose?: boolean;
  onProgress?: (message: string) => void;
}

export const defaultDebianOptions = (): DebianImageOptions => ({
  suite: DEFAULT_SUITE, size: DEFAULT_SIZE, init: "sysvinit", mirror: DEFAULT_MIRROR, hostname: DEFAULT_HOSTNAME,
  include: [], rootPassword: "",
});

export interface DebianImage {
  path: string;
  stamp: string;
  /** True when it was built by this call, false when the cached one was up to date. */
  built: boolean;
  suite: string;
  init: DebianInit;
  size: number;
  uefi: boolean;
  /** Bytes the sparse file occupies on the host. */
  allocated: number;
  /** Seconds the build took (0 when cached). */
  seconds: number;
}

interface Stamp {
  format: 1;
  recipe: string;
  suite: string;
  init: DebianInit;
  size: number;
  builtAt: string;
  /** mtime of the image right after the build: a different one means a guest has written to it. */
  imageMtimeMs: number;
}

/** "2G", "2GiB", "1536M", "512MiB", or bytes. Binary units. */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(s.trim());
  if (!m) throw new DebianImageError("EDEBIAN_ARGS", `bad size '${s}' (examples: 2G, 1536M)`);
  const shift = { "": 0, K: 10, M: 20, G: 30, T: 40 }[m[2]!.toUpperCase() as "" | "K" | "M" | "G" | "T"];
  const bytes = Math.floor(Number(m[1]) * 2 ** shift);
  if (bytes < MIN_SIZE) throw new DebianImageError("EDEBIAN_ARGS", `size ${s} is below the minimum of 256M`);
  return bytes - (bytes % 4096); // whole ext4 blocks
}

const SUITE_RE = /^[a-z][a-z0-9-]*$/;
const PACKAGE_RE = /^[a-z0-9][a-z0-9+.-]+$/;
// RFC 1123 host name label(s).
const HOSTNAME_RE = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

/**
 * images/debian-<suite>-arm64.img (sysvinit) or images/debian-<suite>-systemd-arm64.img, and its stamp; with
 * `uefi`, debian-<suite>[-systemd]-uefi-arm64.img.
 */
export function imagePaths(cacheDir: string, suite: string, init: DebianInit = "sysvinit", uefi = false): { image: string; stamp: string; dir: string; base: string } {
  const dir = join(cacheDir, "images");
  const base = `debian-${suite}${init === "sysvinit" ? "" : `-${init}`}${uefi ? "-uefi" : ""}-arm64`;
  return { dir, base, image: join(dir, `${base}.img`), stamp: join(dir, `${base}.json`) };
}

/** APT sources: the suite, plus -updates and -security for stable releases (sid/unstable/experimental have none). */
export function aptSources(suite: string, mirror: string): string[] {
  const lines = [`deb ${mirror} ${suite} main`];
  if (!["sid", "unstable", "experimental", "rc-buggy"].includes(suite)) {
    lines.push(`deb ${mirror} ${suite}-updates main`, `deb ${SECURITY_MIRROR} ${suite}-security main`);
  }
  return lines;
}

export function debianPackages(opts: Pick<DebianImageOptions, "init" | "include" | "uefi">): string[] {
  return [...new Set([...INIT_PACKAGES[opts.init], ...BASE_PACKAGES, ...(opts.uefi ? UEFI_PACKAGES : []), ...opts.include])];
}

/** POSIX-shell single quoting. */
export const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The mmdebstrap --customize-hook script: runs on the host (inside the build namespace) with the tree as $1,
 * after every package is installed; `chroot "$1" …` runs arm64 programs through qemu. For a UEFI disk $2 is the
 * root file system's UUID and $3 the ESP's (fstab).
 */
export function customizeScript(opts: Pick<DebianImageOptions, "init" | "hostname" | "rootPassword" | "uefi">): string {
  const h = opts.hostname;
  const password = opts.rootPassword === ""
    ? `chroot "$root" passwd --quiet --delete root`
    : `printf '%s\\n' ${shQuote(`root:${opts.rootPassword}`)} | chroot "$root" chpasswd`;
  const initPart = opts.init === "sysvinit" ? `
# sysvinit: no gettys on tty1-6 (nobody sees them, and each one is a process to emulate); one on the console.
sed -i -E 's/^([1-6]:[0-9]+:respawn:)/#\\1/' "$root/etc/inittab"
printf '%s\\n' '# Xeno: a getty on the kernel console device (hvc0 on Xen).' \\
  'co:2345:respawn:/usr/local/sbin/xeno-console-getty' >> "$root/etc/inittab"
mkdir -p "$root/usr/local/sbin"
cat > "$root/usr/local/sbin/xeno-console-getty" <<'EOF'
#!/bin/sh
# Runs agetty on the kernel's console (the last device in /sys/class/tty/console/active, i.e. the last
# console= on the command line): hvc0 for Xen's PV console, ttyAMA0 for a PL011. Built by xeno image debian.
dev=
for d in $(cat /sys/class/tty/console/active 2>/dev/null); do dev=$d; done
if [ -z "$dev" ] || [ ! -c "/dev/$dev" ]; then
  echo "xeno-console-getty: no console device (/sys/class/tty/console/active: '$dev')" >&2
  sleep 60
  exit 1
fi
exec /sbin/agetty --noclear -L "$dev" 115200 vt220
EOF
chmod 755 "$root/usr/local/sbin/xeno-console-getty"
` : `
# systemd: systemd-getty-generator starts serial-getty@hvc0 (it always does for hvc0 when the device exists).
# Keep the kernel's eth0: Xen netfront would otherwise become enX0 under systemd's predictable names.
mkdir -p "$root/etc/systemd/network"
ln -sf /dev/null "$root/etc/systemd/network/99-default.link"
`;
  return `#!/bin/sh
# Generated by src/images/debian.ts (builder v${DEBIAN_BUILDER_VERSION}): configures the tree mmdebstrap built.
set -eu
root="$1"
${opts.uefi ? `mkdir -p "$root/boot/efi"
cat > "$root/etc/fstab" <<EOF
${UEFI_FSTAB}
EOF
${UEFI_NO_UDEV}` : `cat > "$root/etc/fstab" <<'EOF'
# <file system> <mount point> <type> <options> <dump> <pass>
# The Xen virtual disk (examples/debian.cfg: vdev=xvda). Pass 0: no fsck at boot (ext4's journal is replayed
# at mount; a full check under an emulator takes long). Label ${FS_LABEL} if you attach it elsewhere.
/dev/xvda / ext4 rw,errors=remount-ro 0 0
EOF`}
echo ${shQuote(h)} > "$root/etc/hostname"
cat > "$root/etc/hosts" <<'EOF'
127.0.0.1	localhost
127.0.1.1	${h}
::1	localhost ip6-localhost ip6-loopback
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
EOF
mkdir -p "$root/etc/network/interfaces.d"
cat > "$root/etc/network/interfaces" <<'EOF'
# ifupdown (interfaces(5)). eth0 is the Xen netfront vif; DHCP (passt's uplink serves 10.0.2.0/24).
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

auto eth0
iface eth0 inet dhcp
EOF
${password}
${initPart}
# mmdebstrap copies the build host's resolv.conf; the guest's comes from DHCP (dhclient writes it).
rm -f "$root/etc/resolv.conf"
`;
}

/** Everything that determines the image's contents (a changed recipe rebuilds the image). */
export function debianRecipe(opts: DebianImageOptions): string {
  const h = createHash("sha256");
  h.update(JSON.stringify({
    builder: DEBIAN_BUILDER_VERSION, suite: opts.suite, size: opts.size, init: opts.init, mirror: opts.mirror,
    sources: aptSources(opts.suite, opts.mirror), packages: debianPackages(opts), script: customizeScript(opts),
    // Only for UEFI disks, so the PV image's recipe (and a cached PV image) stays as it was.
    ...(opts.uefi ? { uefi: UEFI_LAYOUT_VERSION, setup: uefiSetupScript() } : {}),
  }));
  return h.digest("hex");
}

/**
 * The mmdebstrap command line (run inside the build namespace). A UEFI disk has a setup hook too (initramfs-tools'
 * configuration, before any package) and passes its file system ids to the customize hook.
 */
export function mmdebstrapArgs(opts: DebianImageOptions, tree: string, hook: string, uefi?: { setupHook: string; ids: UefiIds }): string[] {
  return [
    "--mode=root", "--variant=minbase", "--architectures=arm64", "--format=directory",
    // We check (and explain) arm64 execution ourselves; mmdebstrap's check wants arch-test installed.
    "--skip=check/qemu",
    `--include=${debianPackages(opts).join(",")}`,
    "--aptopt=Acquire::Retries \"3\"",
    // The tree lives under the cache directory (often in /root, mode 700), which apt's _apt user cannot enter.
    "--aptopt=APT::Sandbox::User \"root\"",
    ...(uefi ? [`--setup-hook=sh ${shQuote(uefi.setupHook)} "$1"`] : []),
    `--customize-hook=sh ${shQuote(hook)} "$1"${uefi ? ` ${uefi.ids.rootUuid} ${espUuid(uefi.ids.espSerial)}` : ""}`,
    ...(opts.verbose ? ["--verbose"] : []),
    opts.suite, tree, ...aptSources(opts.suite, opts.mirror),
  ];
}

/** The mkfs.ext4 command line: populate from `tree`, label, 1% reserved (a small single-user disk). */
export function mkfsArgs(tree: string, image: string): string[] {
  return ["-F", "-q", "-t", "ext4", "-L", FS_LABEL, "-m", "1", "-d", tree, image];
}

// ---------------------------------------------------------------------------------------------------------
// Host checks

const TOOL_PACKAGES: Record<string, string> = {
  "mmdebstrap": "mmdebstrap", "mkfs.ext4": "e2fsprogs", "unshare": "util-linux", "mknod": "coreutils",
  "qemu-aarch64-static": "qemu-user-static",
};

async function findTool(name: string): Promise<string | null> {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/sbin", "/usr/bin", "/bin"];
  for (const d of dirs) {
    if (!d) continue;
    try { await access(join(d, name), constants.X_OK); return join(d, name); } catch { /* next */ }
  }
  return null;
}

const nativeArm64 = (): boolean => process.arch === "arm64";

/** What each tool is for, for the line saying what `xeno image debian` installs (src/images/host-packages.ts). */
const TOOL_WHY: Record<string, string> = {
  "mmdebstrap": "builds the Debian tree", "mkfs.ext4": "writes the tree into the ext4 image",
  "unshare": "the build namespace", "mknod": "device nodes", "qemu-aarch64-static": "runs the arm64 package scripts",
};

const buildTools = (): string[] => ["mmdebstrap", "mkfs.ext4", "unshare", "mknod", ...(nativeArm64() ? [] : ["qemu-aarch64-static"])];

/** Installs the build's missing tools with apt, saying so (or stops with the command: host-packages.ts). */
export function installTools(say: (line: string) => void): void {
  try {
    ensureHostTools(buildTools().map((cmd) => ({ cmd, pkg: TOOL_PACKAGES[cmd]!, why: TOOL_WHY[cmd]! })), "xeno image debian", say);
  } catch (e) {
    if (e instanceof HostToolError) throw new DebianImageError("EDEBIAN_NO_TOOL", e.message);
    throw e;
  }
}

/** Paths of the tools the build needs; EDEBIAN_NO_TOOL names the apt packages to install. */
export async function checkTools(): Promise<Record<string, string>> {
  const names = buildTools();
  const found: Record<string, string> = {};
  const missing: string[] = [];
  for (const n of names) {
    const p = await findTool(n);
    if (p) found[n] = p; else missing.push(n);
  }
  if (missing.length) {
    const pkgs = [...new Set(missing.map((m) => TOOL_PACKAGES[m]!))];
    throw new DebianImageError("EDEBIAN_NO_TOOL",
      `missing ${missing.join(", ")}; install with: apt-get install --no-install-recommends ${pkgs.join(" ")}`);
  }
  return found;
}

/** Debian's qemu-aarch64 binfmt line (qemu-user-static's /usr/lib/binfmt.d), else the same magic with F. */
export async function binfmtRegistration(qemu: string): Promise<string> {
  try {
    const line = (await readFile("/usr/lib/binfmt.d/qemu-aarch64.conf", "utf8")).split("\n").find((l) => l.startsWith(":qemu-aarch64:"));
    const interp = line?.split(":")[6];
    if (line && interp && existsSync(interp)) return line.trim();
  } catch { /* fall back */ }
  // ELF64 little-endian, e_machine EM_AARCH64 (183 = 0xb7), e_type EXEC or DYN (mask 0xfe): QEMU's
  // scripts/qemu-binfmt-conf.sh aarch64_magic/aarch64_mask.
  const magic = "\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00";
  const mask = "\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff";
  return `:qemu-aarch64:M::${magic}:${mask}:${qemu}:F`;
}

async function checkSpace(dir: string): Promise<void> {
  const s = await statfs(dir);
  const free = s.bavail * s.bsize;
  if (free < MIN_FREE_BYTES) {
    throw new DebianImageError("EDEBIAN_NO_SPACE",
      `${dir} has ${(free / 2 ** 30).toFixed(2)} GiB free; the build needs about ${MIN_FREE_BYTES / 2 ** 30} GiB ` +
      "(set XENO_IMAGES or --dir to a roomier place)");
  }
}

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === "EPERM"; } };

/** An exclusive lock file holding our pid; a lock whose owner is gone is taken over. */
async function lock(path: string): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, "wx");
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return async () => { await rm(path, { force: true }); };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const pid = Number((await readFile(path, "utf8").catch(() => "")).trim());
      if (pid > 0 && alive(pid)) throw new DebianImageError("EDEBIAN_BUSY", `another build (pid ${pid}) holds ${path}`);
      await rm(path, { force: true });
    }
  }
  throw new DebianImageError("EDEBIAN_BUSY", `cannot take ${path}`);
}

/** Remove build directories of runs that died (their pid is gone). */
async function pruneLeftovers(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const m = /^\.debian-.*\.tmp-(\d+)$/.exec(name) ?? /^debian-.*\.img\.tmp-(\d+)$/.exec(name);
    if (m && !alive(Number(m[1]))) await rm(join(dir, name), { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------
// The build namespace

/**
 * The shell that runs in the new namespaces: waits for the parent to write the id maps (a line "go" on fd 3),
 * registers qemu in a private binfmt_misc when XENO_BINFMT is set, then execs the command.
 */
export const NAMESPACE_SCRIPT = `read -r go <&3 || exit 1
exec 3<&-
[ "$go" = go ] || exit 1
if [ -n "\${XENO_BINFMT:-}" ]; then
  if mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null; then
    printf '%s' "$XENO_BINFMT" > /proc/sys/fs/binfmt_misc/register || { echo "xeno-binfmt: register failed" >&2; exit 121; }
  elif grep -qs '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
    echo "xeno-binfmt: no private binfmt_misc (Linux < 6.7?); using the host's qemu-aarch64 registration" >&2
  else
    echo "xeno-binfmt: cannot mount binfmt_misc in a user namespace (needs Linux 6.7+) and the host has no qemu-aarch64 registration" >&2
    exit 120
  fi
fi
unset XENO_BINFMT
exec "$@"
`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wait until `pid` is in a user namespace other than ours (unshare(2) done), for up to 10 s. */
async function waitForUserns(pid: number, child: ChildProcess): Promise<void> {
  const ours = await readlink("/proc/self/ns/user");
  for (let i = 0; i < 2000; i++) {
    if (child.exitCode !== null || child.signalCode !== null) throw new DebianImageError("EDEBIAN_BUILD", "unshare exited early");
    try { if (await readlink(`/proc/${pid}/ns/user`) !== ours) return; } catch { /* not yet / gone */ }
    await sleep(5);
  }
  throw new DebianImageError("EDEBIAN_BUILD", "unshare did not create a user namespace");
}

interface RunResult { code: number | null; signal: NodeJS.Signals | null; tail: string[] }

/**
 * Run argv as root of a fresh user + mount + pid namespace with every host id mapped to itself, qemu registered
 * in its private binfmt_misc (unless `binfmt` is null). stderr/stdout lines go to `onLine`; the last 80 are kept.
 */
export async function runInBuildNamespace(unshare: string, argv: readonly string[], binfmt: string | null,
  onLine: (line: string) => void): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: "C.UTF-8", LANG: "C.UTF-8", DEBIAN_FRONTEND: "noninteractive" };
  if (binfmt) env.XENO_BINFMT = binfmt;
  const child = spawn(unshare, ["--user", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private",
    "--", "/bin/sh", "-c", NAMESPACE_SCRIPT, "xeno-build", ...argv], { stdio: ["ignore", "pipe", "pipe", "pipe"], env });
  const tail: string[] = [];
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, tail }));
  });
  for (const stream of [child.stdout!, child.stderr!]) {
    let buf = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      buf += chunk;
      // apt and mmdebstrap redraw progress with \r; only whole lines are interesting.
      const lines = buf.split(/\r?\n|\r/);
      buf = lines.pop()!;
      for (const l of lines) {
        if (!l.trim()) continue;
        tail.push(l);
        if (tail.length > 80) tail.shift();
        onLine(l);
      }
    });
  }
  try {
    await waitForUserns(child.pid!, child);
    // Real root may map any range of its namespace (user_namespaces(7)); setgroups need not be denied.
    await writeFile(`/proc/${child.pid}/uid_map`, "0 0 4294967295\n");
    await writeFile(`/proc/${child.pid}/gid_map`, "0 0 4294967295\n");
    (child.stdio[3] as NodeJS.WritableStream).end("go\n");
  } catch (e) {
    child.kill("SIGKILL");
    await done.catch(() => undefined);
    throw e;
  }
  return done;
}

// ---------------------------------------------------------------------------------------------------------
// The build

const NETWORK_RE = /Temporary failure resolving|Could not resolve|Could not connect|Failed to fetch|Network is unreachable|Connection timed out|No route to host|Unable to connect/;

function buildFailure(what: string, r: RunResult): DebianImageError {
  const text = r.tail.join("\n");
  const how = r.signal ? `was killed by ${r.signal}` : `exited with status ${r.code}`;
  if (r.code === 120 || r.code === 121) {
    return new DebianImageError("EDEBIAN_BINFMT", `${text}\ncannot run arm64 programs: install qemu-user-static and ` +
      "binfmt-support (a host-wide qemu-aarch64 registration), or use a Linux 6.7+ host kernel");
  }
  if (NETWORK_RE.test(text)) {
    return new DebianImageError("EDEBIAN_NETWORK", `${what} ${how}: apt could not download from the mirror ` +
      `(no network? set http_proxy, or --mirror URL)\n${text}`);
  }
  if (/No space left on device/.test(text)) return new DebianImageError("EDEBIAN_NO_SPACE", `${what} ${how}: no space left\n${text}`);
  return new DebianImageError("EDEBIAN_BUILD", `${what} ${how}:\n${text}`);
}

const fmtTime = (s: number): string => s < 60 ? `${s.toFixed(0)}s` : `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;

async function runTool(tool: string, args: readonly string[]): Promise<RunResult> {
  const child = spawn(tool, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C" } });
  const out: string[] = [];
  child.stdout!.on("data", (d: Buffer) => out.push(d.toString()));
  child.stderr!.on("data", (d: Buffer) => out.push(d.toString()));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, tail: out.join("").trimEnd().split("\n").slice(-40) }));
  });
}

/** Build (or reuse) the Debian root image. */
export async function ensureDebianImage(opts: DebianImageOptions): Promise<DebianImage> {
  const progress = opts.onProgress ?? ((): void => {});
  if (!SUITE_RE.test(opts.suite)) throw new DebianImageError("EDEBIAN_ARGS", `bad suite name '${opts.suite}'`);
  if (!HOSTNAME_RE.test(opts.hostname)) throw new DebianImageError("EDEBIAN_ARGS", `bad hostname '${opts.hostname}'`);
  for (const p of opts.include) if (!PACKAGE_RE.test(p)) throw new DebianImageError("EDEBIAN_ARGS", `bad package name '${p}'`);
  if (/[\n:]/.test(opts.rootPassword)) throw new DebianImageError("EDEBIAN_ARGS", "the root password may not contain ':' or a newline");

  const cache = opts.cacheDir ?? defaultCacheDir();
  const uefi = opts.uefi === true;
  const { dir, base, image, stamp: stampPath } = imagePaths(cache, opts.suite, opts.init, uefi);
  const recipe = debianRecipe(opts);
  let old: Stamp | null = null;
  try { old = JSON.parse(await readFile(stampPath, "utf8")) as Stamp; } catch { /* none */ }
  const imageStat = await stat(image).catch(() => null);
  const result = async (built: boolean, seconds: number): Promise<DebianImage> => ({
    path: image, stamp: stampPath, built, suite: opts.suite, init: opts.init, size: opts.size, uefi, seconds,
    allocated: ((await stat(image)).blocks ?? 0) * 512,
  });
  if (!opts.force && imageStat && old?.recipe === recipe) return result(false, 0);

  if (typeof process.getuid !== "function" || process.getuid() !== 0) {
    throw new DebianImageError("EDEBIAN_NEED_ROOT",
      "xeno image debian must run as root (it maps every uid into the build namespace and owns the tree's files); try sudo");
  }
  installTools(progress);
  if (uefi) {
    try { ensureHostTools(ESP_TOOLS, "xeno image debian --uefi", progress); } catch (e) {
      if (e instanceof HostToolError) throw new DebianImageError("EDEBIAN_NO_TOOL", e.message);
      throw e;
    }
  }
  const tools = await checkTools();
  await mkdir(dir, { recursive: true });
  await pruneLeftovers(dir);
  await checkSpace(dir);
  const unlock = await lock(join(dir, `.${base}.lock`));
  const work = join(dir, `.${base}.tmp-${process.pid}`);
  const t0 = performance.now();
  try {
    await rm(work, { recursive: true, force: true });
    await mkdir(work, { recursive: true });
    const tree = join(work, "root");
    const hook = join(work, "customize.sh");
    await writeFile(hook, customizeScript(opts), { mode: 0o600 });
    // A UEFI disk: GRUB's arm64-efi modules (Debian's grub-efi-arm64-bin), the setup hook, the file system ids.
    let grubModules = "";
    let uefiArgs: { setupHook: string; ids: UefiIds } | undefined;
    if (uefi) {
      try { grubModules = await ensureGrubArm64Efi(cache, progress); } catch (e) {
        throw new DebianImageError(NETWORK_RE.test(String((e as Error).message)) ? "EDEBIAN_NETWORK" : "EDEBIAN_BUILD",
          `cannot get GRUB for arm64-efi: ${(e as Error).message}`, { cause: e });
      }
      uefiArgs = { setupHook: join(work, "setup.sh"), ids: newUefiIds() };
      await writeFile(uefiArgs.setupHook, uefiSetupScript(), { mode: 0o600 });
    }

    const pkgs = debianPackages(opts);
    progress(`building Debian ${opts.suite} arm64 (${opts.init}; minbase + ${pkgs.join(" ")}) with mmdebstrap…`);
    const binfmt = nativeArm64() ? null : await binfmtRegistration(tools["qemu-aarch64-static"]!);
    // mmdebstrap's stages can be silent for many minutes (the maintainer scripts, the kernel's initramfs, all
    // under qemu-user): a line a minute says the build is still going, and how long it has run.
    let said = Date.now();
    const say = (m: string): void => { said = Date.now(); progress(m); };
    const heartbeat = setInterval(() => {
      if (Date.now() - said >= 60_000) say(`… still running (${fmtTime((performance.now() - t0) / 1000)} so far)`);
    }, 5_000);
    const r = await runInBuildNamespace(tools["unshare"]!, [tools["mmdebstrap"]!, ...mmdebstrapArgs(opts, tree, hook, uefiArgs)], binfmt, (l) => {
      if (opts.verbose) say(`  ${l}`);
      else if (/^[IWE]: /.test(l) || l.startsWith("xeno-binfmt:")) say(l.replace(/^I: /, ""));
    }).finally(() => clearInterval(heartbeat));
    if (r.code !== 0) throw buildFailure("mmdebstrap", r);

    // Console and null nodes for a boot without an initramfs (the kernel opens /dev/console before init);
    // mmdebstrap could not mknod inside the namespace. We are real root here.
    for (const [name, minor, major] of [["console", 1, 5], ["null", 3, 1]] as const) {
      if (!existsSync(join(tree, "dev", name))) {
        const m = await runTool(tools["mknod"]!, ["-m", name === "null" ? "666" : "600", join(tree, "dev", name), "c", String(major), String(minor)]);
        if (m.code !== 0) throw buildFailure("mknod", m);
      }
    }

    let release = "";
    if (uefi) {
      try { release = (await checkKernel(tree)).release; } catch (e) { throw new DebianImageError("EDEBIAN_BUILD", (e as Error).message); }
    }
    const du = await runTool("du", ["-s", "--block-size=1", "--one-file-system", tree]);
    const used = Number(du.tail.at(-1)?.split(/\s/)[0] ?? 0);
    const room = uefi ? opts.size - 66 * 2 ** 20 : opts.size; // the UEFI disk's ESP and GPT take 66 MiB
    progress(`tree: ${(used / 2 ** 20).toFixed(0)} MiB; writing a ${(opts.size / 2 ** 30).toFixed(2)} GiB ` +
      (uefi ? `GPT disk (an ESP with GRUB, an ext4 root with Debian's kernel ${release})…` : "ext4 image (mkfs.ext4 -d)…"));
    if (used * 1.15 + 64 * 2 ** 20 > room) {
      throw new DebianImageError("EDEBIAN_NO_SPACE", `the tree (${(used / 2 ** 20).toFixed(0)} MiB) does not fit a ` +
        `${(opts.size / 2 ** 20).toFixed(0)} MiB image; use a larger --size`);
    }
    const tmpImage = `${image}.tmp-${process.pid}`;
    if (uefi) {
      try {
        await assembleUefiDisk({ tree, out: tmpImage, size: opts.size, ids: uefiArgs!.ids, grubModules, mkfs: tools["mkfs.ext4"]!, label: FS_LABEL });
      } catch (e) {
        await rm(tmpImage, { force: true });
        throw new DebianImageError("EDEBIAN_BUILD", `writing the UEFI disk failed: ${(e as Error).message}`, { cause: e });
      }
    } else {
      const fh = await open(tmpImage, "w");
      await fh.truncate(opts.size); // sparse: only what mkfs writes takes space
      await fh.close();
      const mk = await runTool(tools["mkfs.ext4"]!, mkfsArgs(tree, tmpImage));
      if (mk.code !== 0) { await rm(tmpImage, { force: true }); throw buildFailure("mkfs.ext4", mk); }
    }

    // A guest may have written to the previous image: keep one copy rather than silently dropping its data.
    if (imageStat && old && imageStat.mtimeMs !== old.imageMtimeMs) {
      await rename(image, `${image}.old`);
      progress(`kept the previous image (written to since it was built) as ${image}.old`);
    }
    await rename(tmpImage, image);
    const st: Stamp = {
      format: 1, recipe, suite: opts.suite, init: opts.init, size: opts.size, builtAt: new Date().toISOString(),
      imageMtimeMs: (await stat(image)).mtimeMs,
    };
    await writeFile(stampPath, JSON.stringify(st, null, 2) + "\n");
    const seconds = (performance.now() - t0) / 1000;
    progress(`built ${image} in ${fmtTime(seconds)}`);
    return result(true, seconds);
  } finally {
    await rm(work, { recursive: true, force: true });
    await unlock();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Command line

export const DEBIAN_USAGE = `usage: xeno image debian [--uefi] [--suite SUITE] [--size SIZE] [--init sysvinit|systemd] [--include PKG,...]
                         [--hostname NAME] [--root-password PW] [--mirror URL] [--dir DIR]
                         [--force] [--verbose] [--quiet] [--json]
Build an ext4 arm64 Debian root disk from Debian's packages (mmdebstrap; runs as root, needs network).
Writes DIR/images/debian-SUITE-arm64.img (debian-SUITE-systemd-arm64.img with --init systemd); boot it
with examples/debian.cfg (log in as root on the console; no password unless --root-password).
  --uefi               a GPT disk for HVM domains instead: an EFI system partition with GRUB (arm64-efi) and
                       the root with Debian's kernel and initramfs (DIR/images/debian-SUITE-uefi-arm64.img;
                       boot it with examples/debian-uefi.cfg)
  --suite SUITE        Debian release (default ${DEFAULT_SUITE})
  --size SIZE          image size, sparse (default 2G; e.g. 4G, 1536M)
  --init INIT          sysvinit (default: boots fastest under the emulator) or systemd
  --include PKGS       extra packages, comma-separated (repeatable)
  --hostname NAME      default ${DEFAULT_HOSTNAME}
  --root-password PW   root's password (default: none)
  --mirror URL         Debian mirror (default ${DEFAULT_MIRROR})
  --dir DIR            cache directory (default $XENO_IMAGES or ~/.cache/xeno)
  --force              rebuild even if the image is up to date
  --verbose            show all of mmdebstrap's output
  --quiet              no progress lines
  --json               print the result as JSON
`;

export interface DebianCli { opts: DebianImageOptions; quiet: boolean; json: boolean; help: boolean }

export function parseDebianArgs(args: readonly string[]): DebianCli {
  const opts = defaultDebianOptions();
  const cli: DebianCli = { opts, quiet: false, json: false, help: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.indexOf("=");
    const [flag, inline] = a.startsWith("--") && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const value = (): string => {
      if (inline !== undefined) return inline;
      if (i + 1 >= args.length) throw new DebianImageError("EDEBIAN_ARGS", `${flag} needs a value`);
      return args[++i]!;
    };
    switch (flag) {
      case "--suite": opts.suite = value(); break;
      case "--size": opts.size = parseSize(value()); break;
      case "--init": {
        const v = value();
        if (v !== "sysvinit" && v !== "systemd") throw new DebianImageError("EDEBIAN_ARGS", `--init must be sysvinit or systemd, not '${v}'`);
        opts.init = v;
        break;
      }
      case "--include": opts.include.push(...value().split(/[,\s]+/).filter(Boolean)); break;
      case "--hostname": opts.hostname = value(); break;
      case "--root-password": opts.rootPassword = value(); break;
      case "--mirror": opts.mirror = value().replace(/\/+$/, ""); break;
      case "--dir": opts.cacheDir = value(); break;
      case "--force": opts.force = true; break;
      case "--uefi": opts.uefi = true; break;
      case "--verbose": case "-v": opts.verbose = true; break;
      case "--quiet": case "-q": cli.quiet = true; break;
      case "--json": cli.json = true; break;
      case "--help": case "-h": cli.help = true; break;
      default: throw new DebianImageError("EDEBIAN_ARGS", `unknown argument '${a}'`);
    }
  }
  return cli;
}

/** `xeno image debian` entry point: returns the process exit code. */
export async function imageDebianMain(args: readonly string[]): Promise<number> {
  let cli: DebianCli;
  try { cli = parseDebianArgs(args); } catch (e) {
    process.stderr.write(`xeno image debian: ${(e as Error).message}\n${DEBIAN_USAGE}`);
    return 2;
  }
  if (cli.help) { process.stdout.write(DEBIAN_USAGE); return 0; }
  if (!cli.quiet) cli.opts.onProgress = (m): void => { process.stderr.write(`xeno: debian: ${m}\n`); };
  try {
    const r = await ensureDebianImage(cli.opts);
    if (cli.json) process.stdout.write(JSON.stringify(r, null, 2) + "\n");
    else {
      process.stdout.write(`disk    ${r.path} (${r.built ? `built in ${fmtTime(r.seconds)}` : "up to date"}; ` +
        `${(r.size / 2 ** 30).toFixed(2)} GiB sparse, ${(r.allocated / 2 ** 20).toFixed(0)} MiB used; ${r.init}; ${r.uefi ? "UEFI (GPT: ESP + root); " : ""}` +
        `root password ${cli.opts.rootPassword === "" ? "none" : "set"})\n` +
        `        disk = [ 'format=raw, vdev=xvda, access=rw, target=${r.path}' ]   (examples/${r.uefi ? "debian-uefi" : "debian"}.cfg)\n`);
    }
    return 0;
  } catch (e) {
    const code = e instanceof DebianImageError ? ` [${e.code}]` : "";
    process.stderr.write(`xeno image debian${code}: ${e instanceof Error ? e.message : String(e)}\n`);
    return e instanceof DebianImageError && e.code === "EDEBIAN_ARGS" ? 2 : 1;
  }
}
