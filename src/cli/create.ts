/**
 * `xeno create [-c] [-p] [-n] [-q] [-F] [-f FILE] <cfg> [key=value…]` (xl.1 "create").
 *
 * By default the toolstack daemon (xenod, src/toolstack) builds the domain in the hypervisor process (src/hv),
 * both started on demand; `xeno create` returns once it runs, or with -c stays attached to its console until the
 * domain is destroyed (Ctrl-] detaches, the domain keeps running). xenod applies on_poweroff/on_reboot/on_crash.
 *
 * --standalone runs the domain inside this process instead (the way before the daemons existed; the tests of
 * the board and the benchmarks use it): in the foreground until it shuts down, applying on_* itself; Ctrl-]
 * detaching destroys it, and -p is refused.
 *
 * The guest's console: a Xen DomU's is hvc0 (the PV console ring), with xen_platform=0 the board's PL011
 * (ttyAMA0); a cmdline without console= gets `console=hvc0` or `console=ttyAMA0` prepended.
 *
 * Exit status: 0 when the domain shut down or was destroyed cleanly (poweroff, reboot under on_reboot=destroy,
 * Ctrl-] detach); 1 for config, image and start errors and for a guest crash that ends the domain; 130 / 143
 * after SIGINT / SIGTERM (the domain is destroyed first); 2 for usage errors.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { cpus } from "node:os";
import { resolveCpuList } from "../config/cpus.js";
import type { BlkDiskConfig } from "../backends/blk/index.js";
import type { NetVifConfig } from "../backends/net/index.js";
import { ensureBridge, type BridgeClient } from "../net/bridge-client.js";
import { connectXenod, type XenodClient } from "../toolstack/client.js";
import type { DomainSpec, ShutdownAction as HvShutdownAction } from "../hv/protocol.js";
import { attach as attachConsole } from "./xl/cmd-console.js";
import { processEnv } from "./xl/env.js";
import { connectXl } from "./xl/client.js";
import {
  ConfigError, type DomainConfig, type ShutdownAction, applyOverrides, domainConfigToJSON, formatWarning,
  parseConfigFile, readConfigFile, renderConfigError,
} from "../config/index.js";
import { ensureImages } from "../images/index.js";
import { linkStableImages, stableImagePaths } from "../images/stable-links.js";
import { MAX_RAM_MIB } from "../machine/layout.js";
import { DomainRunner, DomainStartError, type DomainStopped } from "../hv/vm-host.js";

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
/** A crash this soon after start is not restarted again (a guest that crashes while booting would loop). */
const CRASH_LOOP_MS = 10_000;

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
 * disk=[…] → what blkback serves: raw image files (relative targets are relative to the current directory,
 * as with xl), read-only for access=ro. Anything Xeno's blkback cannot serve is refused here, before the
 * domain starts, pointing at the config line.
 */
function diskConfigs(a: CreateArgs, c: DomainConfig): BlkDiskConfig[] {
  return c.disks.map((d, i) => {
    const at = (detail: string): ConfigError => errorAtKey(a, "disk", `disk[${i}] (${d.vdev}): ${detail}`);
    if (!c.xenPlatform) throw at("disks are Xen PV devices (blkfront/blkback); this domain has xen_platform=0");
    if (d.specification !== "xen") throw at(`specification=${d.specification}: only Xen PV disks are provided`);
    if (d.devtype === "cdrom") throw at("devtype=cdrom is not supported yet; use a read-only disk (access=ro)");
    if (d.format !== "raw") {
      throw at(`format=${d.format}: Xeno's blkback serves raw images only (convert: qemu-img convert -O raw ${d.target} disk.img)`);
    }
    if (d.target === "") throw at("no target: an empty drive is a cdrom, which is not supported yet");
    const path = resolve(d.target);
    let st;
    try { st = statSync(path); } catch { throw at(`target ${path}: no such file (create one: truncate -s 1G ${d.target})`); }
    if (!st.isFile()) throw at(`target ${path}: not a regular file (block devices are not served yet)`);
    if (st.size === 0 || st.size % 512 !== 0) throw at(`target ${path}: size ${st.size} is not a positive multiple of 512 bytes`);
    return { path, devid: d.vdevNumber, vdev: d.vdev, readOnly: !d.readwrite };
  });
}

/**
 * vif=[…] → netback vifs joined to their bridge (src/net: a switch daemon per bridge name, started on demand,
 * with a passt uplink to the host). Keys Xeno does not act on are warned about by the parser; rate= limits what
 * the guest transmits (netback's credit scheduler, src/backends/net/credit.ts).
 */
function vifConfigs(a: CreateArgs, c: DomainConfig, note: (m: string) => void): NetVifConfig[] {
  return c.vifs.map((v, i) => {
    if (!c.xenPlatform) throw errorAtKey(a, "vif", `vif[${i}]: vifs are Xen PV devices (netfront/netback); this domain has xen_platform=0`);
    if (v.type === "ioemu" || v.model !== undefined) note(`vif[${i}]: type=ioemu/model= (emulated NICs) do not apply; the guest gets a PV vif`);
    let rate: NetVifConfig["rate"];
    if (v.rate !== undefined) {
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
  if (c.memoryMiB > MAX_RAM_MIB || c.memoryMiB < BOARD_MIN_MIB) {
    throw errorAtKey(a, "memory", `memory=${c.memoryMiB} MiB: Xeno's board supports ${BOARD_MIN_MIB}..${MAX_RAM_MIB} MiB`);
  }
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

/** What an on_* action means for a domain that lives in this process (no xenod, one domain, no core dumps). */
function resolveAction(action: ShutdownAction, key: string, note: (m: string) => void): "destroy" | "restart" {
  switch (action) {
    case "destroy": return "destroy";
    case "restart": return "restart";
    // rename-restart keeps the old domain under a new name for inspection: nothing can inspect it without
    // xenod, so it is a plain restart.
    case "rename-restart": note(`${key}=rename-restart: no toolstack daemon to keep the old domain; restarting`); return "restart";
    // preserve keeps the dead domain around for `xl` to inspect: same reason, it is destroyed.
    case "preserve": note(`${key}=preserve: no toolstack daemon to keep the domain for inspection; destroying it`); return "destroy";
    // Core dumps of guest memory are not written yet; the rest of the action applies.
    case "coredump-destroy": note(`${key}=coredump-destroy: core dumps are not implemented; destroying`); return "destroy";
    case "coredump-restart": note(`${key}=coredump-restart: core dumps are not implemented; restarting`); return "restart";
    // soft-reset keeps the domain's memory across the reset; a fresh machine is the closest Xeno has.
    case "soft-reset": note(`${key}=soft-reset: not implemented; restarting with a fresh machine`); return "restart";
  }
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
    disks = diskConfigs(a, config);
    vifs = vifConfigs(a, config, note);
  } catch (e) {
    if (e instanceof ConfigError) { process.stderr.write(`${renderConfigError(e, { color: process.stderr.isTTY })}\n`); return 1; }
    process.stderr.write(`xeno create: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }

  const read = (what: string, path: string): Uint8Array | string => {
    try { return readFileSync(path); } catch (e) { return `cannot read ${what} ${path}: ${(e as Error).message}`; }
  };
  const kernel = read("kernel", config.kernel);
  const initrd = config.ramdisk === undefined ? undefined : read("ramdisk", config.ramdisk);
  for (const x of [kernel, initrd]) if (typeof x === "string") { process.stderr.write(`xeno create: ${x}\n`); return 1; }
  const cmdline = guestCmdline(config.cmdline, config.xenPlatform);
  if (!config.xenPlatform && /(^|\s)console=hvc/.test(cmdline)) {
    note("console=hvc0 names the Xen PV console, which a domain with xen_platform=0 does not have: the guest's " +
      "console is the PL011, ttyAMA0 (omit console= and Xeno adds console=ttyAMA0)");
  }
  if (!a.standalone) return createViaDaemon(a, config, { cmdline, disks, vifs }, info);
  return runDomain(a, config, { kernel: kernel as Uint8Array, initrd: initrd as Uint8Array | undefined, cmdline, disks, vifs }, info, note);
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
 * `xeno create` as xl does it: the toolstack daemon builds the domain in the hypervisor process (both started
 * on demand) and the command returns once it runs ("Started domain …"); with -c it then attaches to the
 * console, which ends when the domain is destroyed (Ctrl-] detaches and leaves it running).
 */
async function createViaDaemon(a: CreateArgs, config: DomainConfig,
  img: { cmdline: string; disks: BlkDiskConfig[]; vifs: NetVifConfig[] }, info: (m: string) => void): Promise<number> {
  const spec: DomainSpec = {
    name: config.name, uuid: config.uuid, memMiB: config.memoryMiB, vcpus: config.vcpus, kernel: config.kernel,
    ramdisk: config.ramdisk, cmdline: img.cmdline, xen: config.xenPlatform, disks: img.disks, vifs: img.vifs, paused: a.paused,
    sched: { weight: config.cpuWeight, cap: config.cap, cpus: domainAffinity(config) },
    toolstack: {
      onPoweroff: config.onPoweroff as HvShutdownAction, onReboot: config.onReboot as HvShutdownAction,
      onCrash: config.onCrash as HvShutdownAction, configFile: resolve(a.file!), configText: readFileSync(a.file!, "utf8"),
    },
  };
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
    else process.stderr.write(`xeno create: cannot create domain '${config.name}': ${err.message}\n`);
    c.close();
    return 1;
  }
  info(`Started domain ${config.name} (id=${domid})${a.paused ? ", paused" : ""}`);
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

async function runDomain(a: CreateArgs, config: DomainConfig,
  img: { kernel: Uint8Array; initrd?: Uint8Array; cmdline: string; disks: BlkDiskConfig[]; vifs: NetVifConfig[] },
  info: (m: string) => void, note: (m: string) => void): Promise<number> {
  let current: DomainRunner | undefined;
  /** Set when the user ended the domain (signal, detach): the exit status to return. */
  let userEnd: number | undefined;
  const endByUser = (code: number, msg: string): void => {
    if (userEnd !== undefined) return;
    userEnd = code;
    note(msg);
    void current?.destroy();
  };
  const onSigint = (): void => endByUser(130, `SIGINT: destroying domain '${config.name}'`);
  const onSigterm = (): void => endByUser(143, `SIGTERM: destroying domain '${config.name}'`);
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
        endByUser(0, `console detached: with --standalone detaching destroys domain '${config.name}'`);
        return;
      }
    }
    if (bytes.length > 0) current?.input(bytes);
  };
  if (a.console) {
    if (tty) stdin.setRawMode(true);
    stdin.on("data", onData);
    // Pipe EOF: the guest simply gets no more input; the domain keeps running.
    info(tty ? `xeno: console of domain '${config.name}' attached; Ctrl-] detaches (and destroys the domain: --standalone)`
      : `xeno: console of domain '${config.name}' attached to stdin/stdout`);
  } else {
    info(`xeno: domain '${config.name}' runs in the foreground until it shuts down (--standalone); ` +
      "console not attached (use -c); Ctrl-C destroys it");
  }

  // Each vif's bridge (started on demand); frames from it go to whichever machine is current.
  const bridges = new Map<number, BridgeClient>(); // by vif devid
  let status = 0;
  try {
    for (const [i, v] of img.vifs.entries()) {
      try {
        bridges.set(v.devid, await ensureBridge(v.bridge, (frame) => current?.netRx(v.devid, frame)));
      } catch (e) {
        process.stderr.write(`xeno create: vif[${i}]: cannot join bridge '${v.bridge}': ${(e as Error).message}\n`);
        return 1;
      }
    }
    for (;;) {
      const runner = new DomainRunner();
      current = runner;
      const started = Date.now();
      const end = await new Promise<RunEnd>((resolve) => {
        if (a.console) runner.on("output", (b) => { process.stdout.write(b); });
        runner.once("stopped", (s) => resolve({ kind: "stopped", s }));
        runner.once("error", (e) => resolve({ kind: "error", e }));
        runner.start({ memMiB: config.memoryMiB, vcpus: config.vcpus, kernel: img.kernel, initrd: img.initrd, cmdline: img.cmdline,
          xen: config.xenPlatform, name: config.name, disks: img.disks, vifs: img.vifs });
        runner.on("net-tx", (vif, frame) => { bridges.get(vif)?.send(frame); });
        if (userEnd !== undefined) void runner.destroy();
      });
      await runner.whenExited();
      if (end.kind === "error") {
        const e = end.e;
        if (e instanceof DomainStartError && (e.code === "MACHINE_MEMORY" || e.code === "MACHINE_TOO_SMALL")) {
          process.stderr.write(`${renderConfigError(errorAtKey(a, "memory", e.message))}\n`);
        } else if (e instanceof DomainStartError && e.code === "MACHINE_DISK") {
          process.stderr.write(`${renderConfigError(errorAtKey(a, "disk", e.message))}\n`);
        } else if (e instanceof DomainStartError && e.code === "MACHINE_VCPUS") {
          process.stderr.write(`${renderConfigError(errorAtKey(a, "vcpus", e.message))}\n`);
        } else {
          process.stderr.write(`xeno create: cannot start domain '${config.name}': ${e.message}\n`);
        }
        status = 1;
        break;
      }
      const { state, reason } = end.s;
      if (userEnd !== undefined || state === "destroyed") { status = userEnd ?? 0; break; }
      const [key, action] = state === "poweroff" ? ["on_poweroff", config.onPoweroff]
        : state === "reboot" ? ["on_reboot", config.onReboot] : ["on_crash", config.onCrash];
      if (state === "crashed") note(`domain '${config.name}' crashed: ${reason}`);
      const what = resolveAction(action, key, note);
      if (what === "restart") {
        if (state === "crashed" && Date.now() - started < CRASH_LOOP_MS) {
          note(`domain '${config.name}' crashed within ${CRASH_LOOP_MS / 1000} s of starting; not restarting it again`);
          status = 1;
          break;
        }
        info(`xeno: domain '${config.name}' ${state === "reboot" ? "rebooted" : state === "poweroff" ? "powered off" : "crashed"}` +
          ` (${reason}); restarting (${key}=${action})`);
        continue;
      }
      info(`xeno: domain '${config.name}' ${state === "crashed" ? "crashed" : state === "reboot" ? "rebooted" : "powered off"}` +
        ` (${reason}); destroyed (${key}=${action})`);
      status = state === "crashed" ? 1 : 0;
      break;
    }
  } finally {
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
