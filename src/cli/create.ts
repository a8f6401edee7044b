/**
 * `xeno create [-c] [-p] [-n] [-q] [-F] [-f FILE] <cfg> [key=value…]` (xl.1 "create").
 *
 * By default the toolstack daemon (xenod, src/toolstack) builds the domain in the hypervisor process (src/hv),
 * both started on demand; `xeno create` returns once it runs, or with -c stays attached to its console until the
 * domain is destroyed (Ctrl-] detaches, the domain keeps running). xenod applies on_poweroff/on_reboot/on_crash.
 *
 * --standalone runs the domain inside this process instead (the way before the daemons existed; the tests of
 * the board and the benchmarks use it): the same DomainSpec as for the daemon, run by a DomainRunner (the
 * hypervisor's worker and Machine code) in the foreground until it shuts down; on_poweroff/on_reboot/on_crash
 * are decided by xenod's policy module (src/toolstack/policy.ts, decideStandalone). Ctrl-] detaching destroys
 * the domain, and -p is refused.
 *
 * The guest's console: a Xen DomU's is hvc0 (the PV console ring), with xen_platform=0 the board's PL011
 * (ttyAMA0); a cmdline without console= gets `console=hvc0` or `console=ttyAMA0` prepended.
 *
 * Exit status: 0 when the domain shut down or was destroyed cleanly (poweroff, reboot under on_reboot=destroy,
 * Ctrl-] detach); 1 for config, image and start errors and for a guest crash that ends the domain; 130 / 143
 * after SIGINT / SIGTERM (the domain is destroyed first); 2 for usage errors.
 */
import { describeKind } from "../common/host-file.js";
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, statSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { dirname, resolve } from "node:path";
import { cpus } from "node:os";
import { resolveCpuList } from "../config/cpus.js";
import type { BlkDiskConfig } from "../backends/blk/index.js";
import { Qcow2Image } from "../storage/qcow2.js";
import type { NetVifConfig } from "../backends/net/index.js";
import { ensureBridge, type BridgeClient } from "../net/bridge-client.js";
import { uplinkNotice } from "../net/uplink-status.js";
import { connectXenod, type XenodClient } from "../toolstack/client.js";
import { CRASH_LOOP_SECONDS, decideStandalone, type StandaloneRun } from "../toolstack/policy.js";
import type { DomainSpec, ShutdownAction as HvShutdownAction } from "../hv/protocol.js";
import { attach as attachConsole } from "./xl/cmd-console.js";
import { processEnv } from "./xl/env.js";
import { connectXl } from "./xl/client.js";
import {
  ConfigError, type DomainConfig, applyOverrides, domainConfigToJSON, formatWarning,
  parseConfigFile, readConfigFile, renderConfigError,
} from "../config/index.js";
import { ensureImages } from "../images/index.js";
import { ensureHostTools, PASST } from "../images/host-packages.js";
import { linkStableImages, stableImagePaths } from "../images/stable-links.js";
import { FLASH_BANK_BYTES, FLASH_BYTES, MAX_RAM_MIB } from "../machine/layout.js";
import { AAVMF_VARS } from "../config/domain.js";
import { DomainRunner, DomainStartError, type DomainRunOptions, type DomainStopped } from "../hv/vm-host.js";
import { ImageCache, type ImageRef } from "../hv/image-cache.js";

const USAGE = `usage: xeno create [-c] [-p] [-n] [-q] [-F] [--standalone] [-f FILE] CONFIGFILE [key=value...]
Create a domain from an xl.cfg file. The toolstack daemon (xenod) builds it in the hypervisor process (both
started on demand, run directory $XENO_RUN_DIR or /run/xeno); the domain keeps running after this command ends.
  -c            attach the console (Ctrl-] detaches and leaves the domain running; it ends when the domain goes)
  -p            leave the domain paused ('xeno unpause DOMAIN' starts it)
  -n            dry run: print the parsed configuration as JSON and exit
  -q            quiet: no informational messages on stderr
  -F            accepted for xl compatibility (xenod supervises the domain either way)
  --standalone  run the domain inside this process instead, without the daemons, until it shuts down
                (its on_poweroff/on_reboot/on_crash applied here; Ctrl-] or Ctrl-C destroys it)
  -f FILE       the config file (instead of CONFIGFILE)
  key=value     override settings of the config file, as xl does
`;

/** The board's GICv2 serves at most 8 CPU interfaces (src/machine/board.ts checks the same). */
const BOARD_MAX_VCPUS = 8;
/** Machine's own lower bound on RAM. */
const BOARD_MIN_MIB = 16;
/** Ctrl-]: xl console's default escape character. */
const ESCAPE = 0x1d;

interface CreateArgs {
  console: boolean;
  /** --standalone: run the domain inside this process (no xenod/hypervisor daemons), as before they existed. */
  standalone: boolean;
  paused: boolean;
  dryRun: boolean;
  quiet: boolean;
  file?: string;
  overrides: string[];
}

class UsageError extends Error {}

function parseArgs(args: readonly string[]): CreateArgs | "help" {
  const a: CreateArgs = { console: false, standalone: false, paused: false, dryRun: false, quiet: false, overrides: [] };
  let i = 0;
  for (; i < args.length; i++) {
    const s = args[i]!;
    if (s === "--") { i++; break; }
    if (s === "-h" || s === "--help") return "help";
    if (s === "--quiet") a.quiet = true;
    else if (s === "--standalone") a.standalone = true;
    else if (s === "--dryrun") a.dryRun = true;
    else if (s.startsWith("--defconfig=")) a.file = s.slice("--defconfig=".length);
    else if (s === "--defconfig") { if (++i >= args.length) throw new UsageError("--defconfig needs a file"); a.file = args[i]!; }
    else if (s.startsWith("-") && s.length > 1) {
      for (let k = 1; k < s.length; k++) {
        const f = s[k]!;
        if (f === "c") a.console = true;
        else if (f === "p") a.paused = true;
        else if (f === "n") a.dryRun = true;
        else if (f === "q") a.quiet = true;
        else if (f === "F") { /* always in the foreground */ }
        else if (f === "f") {
          const rest = s.slice(k + 1).replace(/^=/, "");
          if (rest !== "") a.file = rest;
          else { if (++i >= args.length) throw new UsageError("-f needs a file"); a.file = args[i]!; }
          break;
        } else throw new UsageError(`unknown option -${f}`);
      }
    } else break;
  }
  // xl: the first remaining argument is the config file unless it looks like key=value.
  if (a.file === undefined && i < args.length && !args[i]!.includes("=")) a.file = args[i++]!;
  a.overrides = args.slice(i);
  return a;
}

/** A ConfigError at the setting of `key` (config file or command-line override), for limits the board imposes. */
function errorAtKey(a: CreateArgs, key: string, detail: string): ConfigError {
  try {
    const raw = applyOverrides(readConfigFile(a.file!), a.overrides);
    const s = raw.get(key);
    if (s) {
      return new ConfigError("CONFIG_UNSUPPORTED", detail, {
        file: s.source.name, line: s.value.pos.line, column: s.value.pos.column, key,
        sourceLine: s.source.lines[s.value.pos.line - s.source.firstLine],
      });
    }
  } catch { /* fall through: the file parsed a moment ago */ }
  return new ConfigError("CONFIG_UNSUPPORTED", detail, { file: a.file!, line: 1, column: 1, key });
}

/**
 * disk=[…] → what blkback serves: raw and qcow2 image files (relative targets are relative to the current directory,
 * as with xl), read-only for access=ro. Anything Xeno's blkback cannot serve is refused here, before the
 * domain starts, pointing at the config line.
 */
function diskConfigs(a: CreateArgs, c: DomainConfig): BlkDiskConfig[] {
  return c.disks.map((d, i) => {
    const at = (detail: string): ConfigError => errorAtKey(a, "disk", `disk[${i}] (${d.vdev}): ${detail}`);
    // type=hvm: every disk (vdev xvdX, sdX or hdX alike) is a virtio-blk device on the emulated PCIe bus, in the
    // order given (docs/hvm.md), except vdev nvmeN: an NVMe controller; a cdrom is a read-only virtio disk.
    const hvm = c.type === "hvm";
    if (!hvm && !c.xenPlatform) throw at("disks are Xen PV devices (blkfront/blkback); this domain has xen_platform=0");
    if (!hvm && d.specification !== "xen") throw at(`specification=${d.specification}: only Xen PV disks are provided`);
    if (!hvm && d.devtype === "cdrom") throw at("devtype=cdrom is not supported for PV disks yet; use a read-only disk (access=ro)");
    // vdev=nvmeN: an emulated NVMe controller (src/devices/nvme), which only an HVM domain's device model has.
    const nvme = /^nvme/.test(d.vdev);
    if (nvme && !hvm) throw at(`vdev ${d.vdev} is an emulated NVMe disk, which only type="hvm" domains have; a PV disk is xvdX`);
    if (nvme && d.devtype === "cdrom") throw at(`vdev ${d.vdev}: an NVMe disk cannot be a cdrom; use access=ro for a read-only disk`);
    if (hvm && i >= 31) throw at("type=hvm: at most 31 disks (one PCI slot each)");
    if (d.target === "") throw at("no target: an empty drive (a cdrom without media) is not supported yet");
    if (d.format !== "raw" && d.format !== "qcow2") {
      throw at(`format=${d.format}: Xeno serves raw and qcow2 images (convert: qemu-img convert -O qcow2 ${d.target} disk.qcow2)`);
    }
    const path = resolve(d.target);
    let st;
    try { st = statSync(path); } catch { throw at(`target ${path}: no such file (create one: truncate -s 1G ${d.target})`); }
    if (!st.isFile()) throw at(`target ${path}: is ${describeKind(st)}; give a regular file (block devices are not served yet)`);
    if (d.format === "qcow2") {
      // Opened here once (read-only) so that a refused image points at its config line, not at the boot.
      try { Qcow2Image.open(path, true).close(); } catch (e) { throw at((e as Error).message); }
    } else if (st.size === 0 || st.size % 512 !== 0) throw at(`target ${path}: size ${st.size} is not a positive multiple of 512 bytes`);
    return { path, devid: d.vdevNumber, vdev: d.vdev, readOnly: !d.readwrite || d.devtype === "cdrom", ...(d.format === "qcow2" ? { format: "qcow2" as const } : {}),
      ...(d.limit ? { limit: d.limit } : {}), ...(hvm && d.devtype === "cdrom" ? { cdrom: true } : {}), ...(nvme ? { nvme: true } : {}) };
  });
}

/**
 * vif=[…] → netback vifs joined to their bridge (src/net: a switch daemon per bridge name, started on demand,
 * with a passt uplink to the host). Keys Xeno does not act on are warned about by the parser; rate= limits what
 * the guest transmits (netback's credit scheduler, src/backends/net/credit.ts).
 */
function vifConfigs(a: CreateArgs, c: DomainConfig, note: (m: string) => void): NetVifConfig[] {
  return c.vifs.map((v, i) => {
    // type=hvm: each vif is a virtio-net device on the emulated PCIe bus (after the disks), on the same bridge.
    const hvm = c.type === "hvm";
    if (!hvm && !c.xenPlatform) throw errorAtKey(a, "vif", `vif[${i}]: vifs are Xen PV devices (netfront/netback); this domain has xen_platform=0`);
    if (!hvm && (v.type === "ioemu" || v.model !== undefined)) note(`vif[${i}]: type=ioemu/model= (emulated NICs) do not apply; the guest gets a PV vif`);
    if (hvm && v.model !== undefined && v.model !== "virtio" && v.model !== "virtio-net") note(`vif[${i}]: model=${v.model}: the HVM guest gets a virtio-net NIC`);
    if (hvm && v.rate !== undefined) note(`vif[${i}]: rate= is not applied to an HVM guest's virtio-net NIC yet (docs/hvm.md)`);
    let rate: NetVifConfig["rate"];
    if (v.rate !== undefined && !hvm) {
      if (v.rate.bytesPerInterval < 1) {
        throw errorAtKey(a, "vif", `vif[${i}]: rate=${v.rate.bytesPerSecond}B/s over ${v.rate.intervalUsecs} us allows 0 bytes per interval; use a longer interval (rate=…@1s)`);
      }
      rate = { bytesPerInterval: v.rate.bytesPerInterval, intervalUsecs: v.rate.intervalUsecs };
    }
    return { devid: v.devid, mac: v.mac, mtu: v.mtu ?? 1500, bridge: v.bridge, ...(rate !== undefined ? { rate } : {}) };
  });
}

/** Limits of the emulated board that the xl.cfg validator (which knows Xen's limits) does not check. */
function checkBoardLimits(a: CreateArgs, c: DomainConfig): void {
  if (c.vcpus > BOARD_MAX_VCPUS) {
    throw errorAtKey(a, "vcpus", `vcpus=${c.vcpus}: Xeno's board (GICv2) supports at most ${BOARD_MAX_VCPUS} vCPUs`);
  }
  // A Xen DomU's memory has 1 MiB more above its RAM: the Xen area (grant table, magic pages; src/hv/machine.ts);
  // an HVM domain's has the 128 MiB of flash below it (src/machine/firmware.ts).
  const max = (c.type === "hvm" ? MAX_RAM_MIB - FLASH_BYTES / 2 ** 20 : MAX_RAM_MIB) - (c.xenPlatform ? 1 : 0);
  if (c.memoryMiB > max || c.memoryMiB < BOARD_MIN_MIB) {
    throw errorAtKey(a, "memory", `memory=${c.memoryMiB} MiB: Xeno's board supports ${BOARD_MIN_MIB}..${max} MiB` +
      (c.xenPlatform ? " for a Xen DomU (1 MiB above its RAM holds the grant table and Xen's pages)" : ""));
  }
}

/**
 * An HVM domain's variable store: made from Debian's empty store (AAVMF_VARS.fd) at the first start, then
 * the domain's own (its boot entries and variables persist across restarts).
 */
function ensureVarsStore(a: CreateArgs, path: string, note: (m: string) => void): void {
  if (existsSync(path)) {
    const st = statSync(path);
    if (!st.isFile()) throw errorAtKey(a, "uefi_vars", `uefi_vars: ${path} is ${describeKind(st)}; give a regular file`);
    if (st.size !== FLASH_BANK_BYTES) throw errorAtKey(a, "uefi_vars", `uefi_vars: ${path} has ${st.size} bytes; a variable store fills a 64 MiB flash bank (copy ${AAVMF_VARS})`);
    return;
  }
  if (!existsSync(AAVMF_VARS)) throw errorAtKey(a, "type", `type=hvm: ${AAVMF_VARS} is missing to make the variable store from (apt-get install qemu-efi-aarch64)`);
  try {
    mkdirSync(dirname(path), { recursive: true });
    copyFileSync(AAVMF_VARS, path);
  } catch (e) { throw errorAtKey(a, "uefi_vars", `uefi_vars: cannot create ${path}: ${(e as Error).message}`); }
  note(`created the domain's UEFI variable store ${path} (from ${AAVMF_VARS})`);
}

/** True when `path` is one of the stable image-cache names (images/vmlinuz, images/initrd.img). */
function isStableImage(path: string | undefined): boolean {
  if (path === undefined) return false;
  const s = stableImagePaths();
  return path === s.kernel || path === s.initrd;
}

/** The kernel command line the guest gets: the config's, with the PL011 as console unless one is named. */
export function guestCmdline(cmdline: string, xen: boolean): string {
  if (/(^|\s)console=/.test(cmdline)) return cmdline;
  // A Xen DomU's console is hvc0, the PV console ring (the board's device tree names the PL011 as stdout-path,
  // which Linux would also use, printing everything twice).
  const con = xen ? "console=hvc0" : "console=ttyAMA0";
  return cmdline === "" ? con : `${con} ${cmdline}`;
}

type RunEnd = { kind: "stopped"; s: DomainStopped } | { kind: "error"; e: Error };

export async function createMain(args: readonly string[]): Promise<number> {
  let a: CreateArgs;
  try {
    const p = parseArgs(args);
    if (p === "help") { process.stdout.write(USAGE); return 0; }
    a = p;
  } catch (e) {
    process.stderr.write(`xeno create: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (a.file === undefined) {
    process.stderr.write(`xeno create: a config file is needed (Xeno has no default domain config)\n${USAGE}`);
    return 2;
  }
  const file = a.file;
  // (libuv's raw mode keeps the terminal's output processing, so \n still returns the cursor.)
  const info = (m: string): void => { if (!a.quiet) process.stderr.write(`${m}\n`); };
  const note = (m: string): void => { process.stderr.write(`xeno: ${m}\n`); };

  if (a.paused && a.standalone && !a.dryRun) {
    process.stderr.write("xeno create: -p (start paused) needs the toolstack daemon (xenod) to unpause the domain later; " +
      "drop --standalone; nothing was started\n");
    return 1;
  }

  // Parse without file checks first, so a config naming the stable image cache can have the images fetched.
  let config: DomainConfig;
  let disks: BlkDiskConfig[];
  let vifs: NetVifConfig[];
  try {
    info(`Parsing config from ${file}`);
    config = parseConfigFile(file, a.overrides, { checkFiles: false }).config;
    const missing = [config.kernel, config.ramdisk].filter((p) => isStableImage(p) && !existsSync(p!));
    if (missing.length > 0 && a.dryRun) {
      note(`${missing.join(", ")} not fetched yet ('xeno image fetch' or 'xeno create' fetches them)`);
    } else if (missing.length > 0) {
      note("guest images are not in the cache yet: fetching Debian's arm64 kernel and building the initramfs");
      const images = await ensureImages({ onProgress: (m) => note(m) });
      await linkStableImages(images.cacheDir);
    }
    const parsed = parseConfigFile(file, a.overrides, { checkFiles: !(a.dryRun && missing.length > 0) });
    config = parsed.config;
    for (const w of parsed.warnings) process.stderr.write(`${formatWarning(w)}\n`);
    if (a.dryRun) {
      process.stdout.write(JSON.stringify(domainConfigToJSON(config), null, 2) + "\n");
      return 0;
    }
    checkBoardLimits(a, config);
    if (config.firmware !== undefined) ensureVarsStore(a, config.firmware.vars, note);
    disks = diskConfigs(a, config);
    vifs = vifConfigs(a, config, note);
    // The bridge's uplink: installed now (with a line saying so) rather than found missing by the bridge later.
    if (vifs.length > 0) ensureHostTools([PASST], "xeno create", (l) => process.stderr.write(`${l}\n`));
  } catch (e) {
    if (e instanceof ConfigError) { process.stderr.write(`${renderConfigError(e, { color: process.stderr.isTTY })}\n`); return 1; }
    process.stderr.write(`xeno create: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }

  if (!a.standalone) {
    // The hypervisor process reads the images; a file it could not open is reported here first, by path (the
    // parser checked that both are regular files).
    const unreadable = [["kernel", config.kernel], ["ramdisk", config.ramdisk]].map(([what, path]) => {
      if (path === undefined) return undefined;
      try { closeSync(openSync(path, "r")); return undefined; } catch (e) { return `cannot read ${what} ${path}: ${(e as Error).message}`; }
    }).find((m) => m !== undefined);
    if (unreadable !== undefined) { process.stderr.write(`xeno create: ${unreadable}\n`); return 1; }
  }
  const cmdline = guestCmdline(config.cmdline, config.xenPlatform);
  if (!config.xenPlatform && /(^|\s)console=hvc/.test(cmdline)) {
    note("console=hvc0 names the Xen PV console, which a domain with xen_platform=0 does not have: the guest's " +
      "console is the PL011, ttyAMA0 (omit console= and Xeno adds console=ttyAMA0)");
  }
  const spec = domainSpec(a, config, { cmdline, disks, vifs });
  if (!a.standalone) return createViaDaemon(a, spec, info);
  // The hypervisor gives every domain a uuid at create; so does the standalone mode.
  return runDomain(a, { ...spec, uuid: spec.uuid ?? randomUUID() }, info, note);
}

/**
 * cpus= as one hard affinity for the domain (the hypervisor schedules a domain's vCPUs together): the CPU list,
 * or the union of the per-vCPU lists, resolved against this host's CPUs (the hypervisor's default pCPUs).
 */
function domainAffinity(c: DomainConfig): number[] | null {
  const a = c.cpus;
  if (a === undefined) return null;
  const n = cpus().length;
  const lists = a.kind === "all-vcpus" ? [a.terms] : a.terms;
  const set = new Set<number>();
  for (const t of lists) for (const k of resolveCpuList(t, n)) set.add(k);
  return [...set].sort((x, y) => x - y);
}

/**
 * The domain to build, as the hypervisor process takes it: one spec for both ways of running it (xenod's create
 * and --standalone), its on_* settings in `toolstack` where xenod's policy module reads them.
 */
function domainSpec(a: CreateArgs, config: DomainConfig, dev: { cmdline: string; disks: BlkDiskConfig[]; vifs: NetVifConfig[] }): DomainSpec {
  return {
    name: config.name, uuid: config.uuid, memMiB: config.memoryMiB, vcpus: config.vcpus, kernel: config.kernel,
    ramdisk: config.ramdisk, cmdline: dev.cmdline, xen: config.xenPlatform, disks: dev.disks, vifs: dev.vifs, paused: a.paused,
    ...(config.firmware !== undefined ? { firmware: { vars: config.firmware.vars, boot: config.firmware.boot, rng: config.firmware.rng } } : {}),
    sched: { weight: config.cpuWeight, cap: config.cap, cpus: domainAffinity(config) },
    toolstack: {
      onPoweroff: config.onPoweroff as HvShutdownAction, onReboot: config.onReboot as HvShutdownAction,
      onCrash: config.onCrash as HvShutdownAction, configFile: resolve(a.file!), configText: readFileSync(a.file!, "utf8"),
    },
  };
}

/**
 * `xeno create` as xl does it: the toolstack daemon builds the domain in the hypervisor process (both started
 * on demand) and the command returns once it runs ("Started domain …"); with -c it then attaches to the
 * console, which ends when the domain is destroyed (Ctrl-] detaches and leaves it running).
 */
async function createViaDaemon(a: CreateArgs, spec: DomainSpec, info: (m: string) => void): Promise<number> {
  let c: XenodClient;
  try {
    c = await connectXenod({ autostart: true });
  } catch (e) {
    process.stderr.write(`xeno create: cannot reach the toolstack daemon: ${(e as Error).message}\n`);
    return 1;
  }
  let domid: number;
  try {
    domid = (await c.request("create", { spec })).domid;
  } catch (e) {
    const err = e as Error & { code?: string };
    const key = err.code === "ENOMEM" ? "memory" : /disk|blk|image/i.test(err.message) ? "disk" : undefined;
    if (key !== undefined) process.stderr.write(`${renderConfigError(errorAtKey(a, key, err.message))}\n`);
    else process.stderr.write(`xeno create: cannot create domain '${spec.name}': ${err.message}\n`);
    c.close();
    return 1;
  }
  info(`Started domain ${spec.name} (id=${domid})${a.paused ? ", paused" : ""}`);
  sayUplinks(spec.vifs);
  if (!a.console) { c.close(); return 0; }
  let stream;
  try {
    stream = await c.openConsole(domid, { replay: true });
  } catch (e) {
    process.stderr.write(`xeno create: domain ${domid} started, but its console cannot be attached: ${(e as Error).message}\n`);
    c.close();
    return 1;
  } finally {
    c.close();
  }
  return attachConsole(stream, processEnv(connectXl), ESCAPE);
}

/**
 * What the hypervisor's create hands its DomainRunner for a spec (src/hv/hypervisor.ts), less what only the
 * hypervisor process has: its XenStore, frame pool, scheduler, domid and uuid. The images come from an
 * ImageCache as there (a SharedArrayBuffer the worker shares instead of a copy); the caller releases them.
 */
function runOptions(spec: DomainSpec, cache: ImageCache, images: ImageRef[]): DomainRunOptions | string {
  const acquire = (what: string, path: string): Uint8Array | string => {
    try { const r = cache.acquire(path); images.push(r); return r.bytes; } catch (e) { return `cannot read ${what} ${path}: ${(e as Error).message}`; }
  };
  const kernel = acquire("kernel", spec.kernel);
  if (typeof kernel === "string") return kernel;
  const initrd = spec.ramdisk === undefined ? undefined : acquire("ramdisk", spec.ramdisk);
  if (typeof initrd === "string") return initrd;
  return { memMiB: spec.memMiB, vcpus: spec.vcpus, kernel, initrd, cmdline: spec.cmdline, xen: spec.xen, name: spec.name,
    // The domain's uuid (the config's, or the one runDomain made): the guest's XENVER_guest_handle, XenStore's vm
    // path and an HVM firmware's SMBIOS UUID, as through the hypervisor process (Hypervisor uuidBytes).
    ...(spec.uuid !== undefined ? { uuid: Uint8Array.from(Buffer.from(spec.uuid.replace(/-/g, ""), "hex")) } : {}),
    disks: spec.disks, vifs: spec.vifs,
    ...(spec.firmware !== undefined ? { firmwareVars: spec.firmware.vars, firmwareBoot: spec.firmware.boot, firmwareRng: spec.firmware.rng !== false } : {}) };
}

async function runDomain(a: CreateArgs, first: StandaloneRun["spec"], info: (m: string) => void, note: (m: string) => void): Promise<number> {
  const name = first.name;
  // The first run's images are read before anything starts (an unreadable file ends the command here).
  const cache = new ImageCache();
  const images: ImageRef[] = [];
  const firstOptions = runOptions(first, cache, images);
  if (typeof firstOptions === "string") { process.stderr.write(`xeno create: ${firstOptions}\n`); return 1; }
  let options: DomainRunOptions = firstOptions;
  let current: DomainRunner | undefined;
  /** Set when the user ended the domain (signal, detach): the exit status to return. */
  let userEnd: number | undefined;
  const endByUser = (code: number, msg: string): void => {
    if (userEnd !== undefined) return;
    userEnd = code;
    note(msg);
    void current?.destroy();
  };
  const onSigint = (): void => endByUser(130, `SIGINT: destroying domain '${name}'`);
  const onSigterm = (): void => endByUser(143, `SIGTERM: destroying domain '${name}'`);
  process.on("SIGINT", onSigint);
  process.on("SIGTERM", onSigterm);

  // The console: stdin bytes go to whichever machine is current (it survives restarts).
  const stdin = process.stdin;
  const tty = a.console && stdin.isTTY === true;
  const onData = (d: Buffer): void => {
    let bytes: Uint8Array = d;
    if (tty) {
      const esc = d.indexOf(ESCAPE);
      if (esc >= 0) {
        bytes = d.subarray(0, esc);
        if (bytes.length > 0) current?.input(bytes);
        process.stderr.write("\n"); // the guest's line may be unfinished
        endByUser(0, `console detached: with --standalone detaching destroys domain '${name}'`);
        return;
      }
    }
    if (bytes.length > 0) current?.input(bytes);
  };
  if (a.console) {
    if (tty) stdin.setRawMode(true);
    stdin.on("data", onData);
    // Pipe EOF: the guest simply gets no more input; the domain keeps running.
    info(tty ? `xeno: console of domain '${name}' attached; Ctrl-] detaches (and destroys the domain: --standalone)`
      : `xeno: console of domain '${name}' attached to stdin/stdout`);
  } else {
    info(`xeno: domain '${name}' runs in the foreground until it shuts down (--standalone); ` +
      "console not attached (use -c); Ctrl-C destroys it");
  }

  // Each vif's bridge (started on demand); frames from it go to whichever machine is current.
  const bridges = new Map<number, BridgeClient>(); // by vif devid
  let status = 0;
  try {
    for (const [i, v] of first.vifs.entries()) {
      try {
        bridges.set(v.devid, await ensureBridge(v.bridge, (frame) => current?.netRx(v.devid, frame)));
      } catch (e) {
        process.stderr.write(`xeno create: vif[${i}]: cannot join bridge '${v.bridge}': ${(e as Error).message}\n`);
        return 1;
      }
    }
    sayUplinks(first.vifs);
    let run: StandaloneRun = { spec: first, startTime: 0 };
    for (;;) {
      run.startTime = Date.now() / 1000;
      const runner = new DomainRunner();
      current = runner;
      const end = await new Promise<RunEnd>((resolve) => {
        if (a.console) runner.on("output", (b) => { process.stdout.write(b); });
        runner.once("stopped", (s) => resolve({ kind: "stopped", s }));
        runner.once("error", (e) => resolve({ kind: "error", e }));
        runner.start(options);
        runner.on("net-tx", (vif, frame) => { bridges.get(vif)?.send(frame); });
        runner.on("net-flow", (vif, full) => { bridges.get(vif)?.pauseReading(full); });
        if (userEnd !== undefined) void runner.destroy();
      });
      await runner.whenExited();
      for (const r of images.splice(0)) cache.release(r);
      if (end.kind === "error") {
        const e = end.e;
        if (e instanceof DomainStartError && (e.code === "MACHINE_MEMORY" || e.code === "MACHINE_TOO_SMALL")) {
          process.stderr.write(`${renderConfigError(errorAtKey(a, "memory", e.message))}\n`);
        } else if (e instanceof DomainStartError && e.code === "MACHINE_DISK") {
          process.stderr.write(`${renderConfigError(errorAtKey(a, "disk", e.message))}\n`);
        } else if (e instanceof DomainStartError && e.code === "MACHINE_VCPUS") {
          process.stderr.write(`${renderConfigError(errorAtKey(a, "vcpus", e.message))}\n`);
        } else {
          process.stderr.write(`xeno create: cannot start domain '${name}': ${e.message}\n`);
        }
        status = 1;
        break;
      }
      const { state, reason } = end.s;
      // xenod's rule (src/toolstack/policy.ts): which setting and action apply, restart or destroy, the crash-loop guard.
      const s = userEnd === undefined ? decideStandalone(run, end.s, Date.now() / 1000) : null;
      if (s === null) { status = userEnd ?? 0; break; } // destroyed from here (signal, detach)
      const d = s.decision;
      const setting = d.setting !== null && d.action !== null ? `${d.setting}=${d.action}` : "no on_* setting applies";
      if (state === "crashed") note(`domain '${name}' crashed: ${reason}`);
      for (const n of s.notes) note(`${setting}: ${n}`);
      if (d.crashLoop !== undefined) {
        note(`domain '${name}' crashed within ${CRASH_LOOP_SECONDS} s of starting; not restarting it again`);
        status = 1;
        break;
      }
      if (s.restart !== null) {
        info(`xeno: domain '${name}' ${d.what} (${reason}); restarting (${setting})`);
        // rename-restart's new domain gets a fresh uuid (the kept one would keep the old).
        run = { spec: { ...s.restart, uuid: s.restart.uuid ?? randomUUID() }, startTime: 0 };
        // As the hypervisor's create: the images are read again (a kernel replaced meanwhile is the new one).
        const next = runOptions(run.spec, cache, images);
        if (typeof next === "string") { process.stderr.write(`xeno create: ${next}\n`); status = 1; break; }
        options = next;
        continue;
      }
      info(`xeno: domain '${name}' ${d.what} (${reason}); destroyed (${setting})`);
      status = state === "crashed" ? 1 : 0;
      break;
    }
  } finally {
    for (const r of images.splice(0)) cache.release(r);
    for (const b of bridges.values()) b.close();
    process.off("SIGINT", onSigint);
    process.off("SIGTERM", onSigterm);
    if (a.console) {
      stdin.off("data", onData);
      if (tty) stdin.setRawMode(false);
      stdin.pause();
      stdin.destroy();
    }
  }
  return status;
}

/**
 * A config file as the hypervisor's DomainSpec, parsed and checked as `create` does (disk targets must exist;
 * kernel and ramdisk need not: `xeno restore CONFIG FILE` continues a saved domain, it does not boot one).
 * Throws ConfigError (render it with renderConfigError) or Error.
 */
export function configFileSpec(file: string): DomainSpec {
  const a: CreateArgs = { console: false, standalone: false, paused: false, dryRun: false, quiet: true, file, overrides: [] };
  const config = parseConfigFile(file, [], { checkFiles: false }).config;
  checkBoardLimits(a, config);
  return domainSpec(a, config, { cmdline: guestCmdline(config.cmdline, config.xenPlatform), disks: diskConfigs(a, config), vifs: vifConfigs(a, config, () => {}) });
}

/**
 * One line on stderr for each bridge of `vifs` whose uplink to the host is not up (passt missing or failing),
 * read from the state the bridge daemon publishes (net/uplink-status.ts): the daemon runs detached and logs to
 * its own file, so this is where the user who started it hears of it. Printed even with -q: it is a warning.
 */
function sayUplinks(vifs: readonly { bridge: string }[]): void {
  for (const bridge of new Set(vifs.map((v) => v.bridge))) {
    const line = uplinkNotice(bridge, "xeno create");
    if (line !== undefined) process.stderr.write(`${line}\n`);
  }
}
