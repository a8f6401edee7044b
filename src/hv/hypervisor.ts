/**
 * The hypervisor process's state: every domain (a DomainRunner worker thread running its vCPUs and back-ends),
 * the machine-frame pool they claim memory from, and the one XenStore their xenbus rings and back-ends use
 * (through src/hv/store-link.ts) and dom0 tools reach over xenstored's socket.
 *
 * Domain lifecycle (as Xen's): created (running, or paused with -p) → the guest shuts down (SCHEDOP_shutdown:
 * state "shutdown" with its reason) or crashes (state "crashed") → it stays so, its memory still claimed,
 * until the toolstack destroys it (or restarts it: destroy + create). `destroy` releases its frames, closes its
 * back-ends and removes its XenStore nodes (what libxl does on destroy), then @releaseDomain fires.
 *
 * Everything here runs in the main thread's event loop; a domain's fault ends that domain only (its worker
 * reports "crashed"), never this process.
 */
import { XEN_AREA_BYTES } from "../xen/layout.js";
import { hostname, release, machine, totalmem, cpus } from "node:os";
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { XenStore, type XsSession } from "../xenstore/index.js";
import { isAbsolute } from "node:path";
import { DomainRunner, DomainStartError, VmThread, type DomainRunOptions, type SavedRun } from "./vm-host.js";
import type { SavedGuestLink } from "./store-link.js";
import { readSaveFile, readSaveStream, writeSaveFile, type ReadSaveFile, type SavedDomain } from "./save-file.js";
import { SaveFormatError, SaveStreamWriter, type PageList, type WriteProgress } from "./save-format.js";
import { DEFAULT_LIVE_POLICY, announceFrame, policyError, precopy, socketSink, socketSource, unionPages, type LivePolicy, type RoundReport } from "./save-live.js";
import { dumpStore, loadStore } from "./save-store.js";
import { FramePool } from "./frame-pool.js";
import { ImageCache, type ImageRef } from "./image-cache.js";
import { checkRegular, HostFileError } from "../common/host-file.js";
import type { LogLevel } from "../common/log.js";
import { specProblem } from "./request-schema.js";
import { XEN_MAJOR, XEN_MINOR } from "../xen/abi.js";
import { MAX_RAM_MIB } from "../machine/layout.js";
import { ensureBridge, type BridgeClient } from "../net/bridge-client.js";
import { CreditScheduler, DEFAULT_WEIGHT, type SchedParams } from "./credit.js";
import { IDLE_SHARE, planMove, planPack } from "./balance.js";
import { deviceInfo } from "./device-info.js";
import { MAX_BOARD_VCPUS, boardTailBytes } from "../machine/board.js";
import { dom0Usage } from "./dom0-usage.js";
import { PERMIT_WAITED, cpuAt, permitAt, schedBytes, vcpuEntityId, wantAt } from "./sched-words.js";
import { VCPU_THREADS } from "./vcpu-thread.js";
import { LazyRam, loadInBackground, type LazyRamMessage } from "./lazy-ram.js";
import type { FileHandle } from "node:fs/promises";
import { SpareMemory } from "./save-spare-memory.js";
import type { DomainInfo, DomainSpec, DomainState, ErrorCode, Event, HostInfo, MigrateSendResult, RestoreBuildInfo, RestoreTimingInfo, ShutdownReason, ToolstackData } from "./protocol.js";


export interface RestoreResult { domid: number; bytes: number; ms: number; timing: RestoreTimingInfo }

export class HvError extends Error {
  constructor(readonly code: ErrorCode, message: string) { super(message); this.name = "HvError"; }
}

/** Console output kept per domain for late attachers (`console` with replay). */
const CONSOLE_KEEP = 64 * 1024;
/**
 * A migration's unpause that comes while its domain is still being built is sent to the worker at once, behind
 * the build (Hypervisor.unpause), instead of waiting here for the build's answer (XENO_EARLY_UNPAUSE=0: wait, for
 * A/B). Off by default until 2026-12-08: in session 25 test/hv/live-migrate's target stayed paused after it in 1 of
 * 2 runs ("did not report its first slice within 30 s"). The cause: build() awaits the vifs' bridges before it
 * starts the runner, and an unpause that came before then was dropped (no port yet); it now waits for the build.
 */
const EARLY_UNPAUSE = process.env.XENO_EARLY_UNPAUSE !== "0";
/** How long a live migration waits, before its pause, for the receiver's answer to its drain mark (save-live.ts). */
const SYNC_WAIT_MS = 1000;
/** Log lines kept for `dmesg`. */
const LOG_KEEP = 2000;
const MAX_DOMAINS = 1024;

interface Domain {
  domid: number;
  name: string;
  uuid: string;
  spec: DomainSpec;
  runner: DomainRunner;
  /** Set once the guest stopped (shutdown/crash): the worker is gone, the record stays until destroy. */
  stopped: { state: "shutdown" | "crashed"; reason: ShutdownReason; detail: string } | null;
  dying: boolean;
  startTime: number;
  console: Buffer[];
  consoleBytes: number;
  consoles: Set<(b: Uint8Array) => void>;
  /** The bridge each vif (by devid) is joined to. */
  bridges: Map<number, BridgeClient>;
  /** Pages when the worker stopped (its stats buffer keeps the last figure too). */
  maxPages: number;
  /** The credit scheduler's control words shared with the worker and the vCPU threads (sched-words.ts). */
  schedCtl: Int32Array;
  schedF64: Float64Array;
  sched: SchedParams;
  /** The shared kernel/ramdisk bytes it booted from (given back to the cache at destroy). */
  images: ImageRef[];
  /** The worker thread it runs in (shared with other domains). */
  thread: VmThread;
  /** A save is reading its state and memory: pause, unpause and destroy wait for it to end (ESTATE). */
  saving?: boolean;
  /** Restored (a move or a restore): its vifs announce themselves again when it is first unpaused. */
  announce?: boolean;
  /**
   * A restore answered with `received`: its worker still builds the Machine. Settles when the build ended (with
   * its figures; rejected when it failed, the domain then gone). An unpause with report and a destroy wait for it;
   * the first unpause with report takes it (and gives its figures), whether the build ended before or after.
   */
  building?: Promise<RestoreBuildInfo>;
  /** Set once `building` ended well. */
  built?: RestoreBuildInfo;
  /**
   * Its memory, while it is paused since a save (a migration's stream sent): destroyed so, the memory becomes the
   * spare for the next restore (save-spare-memory.ts). Cleared when it is unpaused.
   */
  savedMemory?: { memory: WebAssembly.Memory; dataMap: Uint8Array };
  /** CPU seconds at the balancer's last look, and when it last moved (performance.now ms). */
  balanceCpu?: number;
  movedAt?: number;
  /** Balancer looks in a row that found it idle (share < IDLE_SHARE): packed after PACK_LOOKS (planPack). */
  idleLooks?: number;
}

/**
 * How long a save with the suspend protocol waits for the guest to suspend itself (its processes frozen, its
 * devices quiesced: seconds on the interpreter). libxl waits 60 s for the acknowledgement and the suspend.
 */
const SUSPEND_WAIT_MS = 60_000;

/** How long an unpause with `report` waits for the domain's first slice before answering ESTATE. */
const REPORT_WAIT_MS = 30_000;

/**
 * XENO_LAZY_RESTORE=1: a save file is checked whole and its pages come in on first touch and in the background
 * (lazy-ram.ts; docs/save-restore.md "The lazy restore"). Off by default (session 26: the suite was not run
 * with it on, and a file written over in place during the background load ends the domain). Otherwise the
 * pages are read into the new memory before the domain runs.
 */
const LAZY_RESTORE = process.env.XENO_LAZY_RESTORE === "1";

/**
 * How long a restore's answer waits for the domain's first slice (RestoreTimingInfo.runningMs); past it the
 * answer goes without (the domain runs when the scheduler lets it).
 */
const RUN_WAIT_MS = 5_000;

/** A save tries this many times, this far apart, to find the domain between XenStore requests and back-end work. */
const SAVE_TRIES = 100, SAVE_RETRY_MS = 50;

/** How often the credit scheduler looks (Xen's tick: 10 ms). */
const SCHED_TICK_MS = 10;
/** The balancer looks every BALANCE_MS; a domain moved stays at least MOVE_HOLD_MS where it went (balance.ts). */
const BALANCE_MS = 1000, MOVE_HOLD_MS = 5000;
/**
 * Idle domains are packed into fewer threads (balance.ts planPack) after this many looks idle in a row:
 * XENO_PACK_IDLE_S (seconds; default 20; 0: never). Each thread emptied so ends at once (not kept as the spare),
 * and with it an isolate's heap (~10 MiB of V8 heap per domain with four domains booted at once: they end in four
 * threads; docs/memory.md, "Threads", docs/benchmarks.md session 26). Session 25's one measurement showed no
 * saving: the first emptied thread stayed as the spare, and each move made the next wait another period.
 */
const PACK_LOOKS = Math.round(Number(process.env.XENO_PACK_IDLE_S ?? 20) * 1000 / BALANCE_MS);
/**
 * Default for HypervisorOptions.domainsPerThread. Each worker thread is a V8 isolate (~15–20 MiB with its young
 * generation and compiled code: bench/density/probe.ts), so idle domains are cheaper together; a thread runs one
 * of its domains at a time, so there are at least as many threads as pCPUs before any is shared.
 */
export const DEFAULT_DOMAINS_PER_THREAD = 8;
/**
 * A worker thread whose last domain left is kept this long as the spare (one at most) before it ends: the next
 * domain that needs a new thread takes it instead of starting a V8 isolate and loading the emulator (80–210 ms
 * of a restore's 190–480 ms on this host under load; docs/benchmarks.md, 2026-12-07 restore). A save then a
 * restore, a migration back, a test that destroys and restores. Idle, the spare sleeps (one wake-up a second).
 */
const SPARE_KEEP_MS = 60_000;

export interface HypervisorOptions {
  /** Machine-frame pool size in MiB (default: 3/4 of host memory). */
  memoryMiB?: number;
  /** pCPUs for the credit scheduler (default: host cores). */
  pcpus?: number;
  /** Most domains placed in one worker thread (default DEFAULT_DOMAINS_PER_THREAD; 1: a thread per domain). */
  domainsPerThread?: number;
  /** Bridge daemons' run directory (XENO_RUN_DIR for src/net). */
  runDir?: string;
  /** The first domid to give (default 1): xenod passes one above the domains a dead hypervisor had. */
  firstDomid?: number;
  /** One line per action or incident (main.ts formats it: src/common/log.ts). */
  log?: (line: string, level: LogLevel, component: string) => void;
}

export class Hypervisor extends EventEmitter<{ event: [Event] }> {
  readonly store = new XenStore();
  readonly pool: FramePool;
  readonly sched: CreditScheduler;
  /** Kernel and ramdisk files, one shared copy per distinct file for all domains (image-cache.ts). */
  readonly images = new ImageCache();
  private schedTimer: NodeJS.Timeout | null = null;
  private balanceTimer: NodeJS.Timeout | null = null;
  private balancing = false;
  private lastBalance = 0;
  /** Domains moved between threads by the balancer (xl info: vmMoves). */
  moves = 0;
  private readonly domains = new Map<number, Domain>();
  /**
   * Restores answered with `received` whose build then failed, by domid: the unpause that follows (xeno
   * migrate-receive's) is told why instead of "no domain". One per domid, replaced by the next; at most 16 kept.
   */
  private readonly failedBuilds = new Map<number, string>();
  /** Worker threads with domains in them (a thread ends with its last domain, or becomes the spare). */
  private readonly threads = new Set<VmThread>();
  /** A thread without domains kept for the next one (SPARE_KEEP_MS), and the timer that ends it. */
  private spare: { thread: VmThread; timer: NodeJS.Timeout } | null = null;
  /** The memory of the last domain destroyed after a save, zeroed, for the next restore (save-spare-memory.ts). */
  private readonly spareMemory = new SpareMemory();
  /** Lazy restores still loading in the background, and the last one's figures (info). */
  private lazyPending = 0;
  private lazyLast: { ms: number; here: number; total: number } | null = null;
  private closing = false;
  private threadsStarted = 0;
  readonly domainsPerThread: number;
  private readonly dom0: XsSession;
  private readonly logLines: string[] = [];
  private readonly started = Date.now();
  private readonly runDir: string | undefined;
  private readonly extLog: (line: string, level: LogLevel, component: string) => void;
  xenstoredSocket = "";
  private nextDomid = 1;

  constructor(o: HypervisorOptions = {}) {
    super();
    this.pool = FramePool.ofBytes((o.memoryMiB ?? Math.floor(totalmem() / 2 ** 20 * 0.75)) * 2 ** 20);
    this.runDir = o.runDir;
    if (o.firstDomid !== undefined) this.nextDomid = o.firstDomid;
    this.sched = new CreditScheduler(o.pcpus ?? cpus().length);
    this.sched.keepBlockedSlots = process.env.XENO_SCHED_KEEP_SLOT !== "0"; // credit.ts; 0: the old hand-back, for A/B
    this.domainsPerThread = o.domainsPerThread ?? DEFAULT_DOMAINS_PER_THREAD;
    if (!Number.isInteger(this.domainsPerThread) || this.domainsPerThread < 1) throw new RangeError(`domainsPerThread ${this.domainsPerThread}: want ≥ 1`);
    this.extLog = o.log ?? ((l) => process.stderr.write(`${l}\n`));
    this.dom0 = this.store.connect(0, () => {});
    this.log(`xeno-hv: ${this.pool.totalFrames >> 8} MiB machine-frame pool, Xen ${XEN_MAJOR}.${XEN_MINOR} ABI`);
  }

  /** Logs a line ("dN: …" for a domain's) to dmesg and the process log. */
  log(line: string, level: LogLevel = "info", component = "hv"): void {
    const stamped = `(XEN) [${((Date.now() - this.started) / 1000).toFixed(3).padStart(10)}] ${line}`;
    this.logLines.push(stamped);
    if (this.logLines.length > LOG_KEEP) this.logLines.splice(0, this.logLines.length - LOG_KEEP);
    this.extLog(line, level, component);
  }

  dmesg(clear = false): string[] {
    const lines = [...this.logLines];
    if (clear) this.logLines.length = 0;
    return lines;
  }

  private dom(domid: number): Domain {
    const d = Number.isInteger(domid) ? this.domains.get(domid) : undefined;
    if (d === undefined) throw new HvError("ENOENT_DOMAIN", `no domain with id ${domid}`);
    return d;
  }

  private emitDomain(d: Domain, state: DomainState | "destroyed"): void {
    const e: Event = { event: "domain", domid: d.domid, name: d.name, state };
    if (d.stopped !== null) { e.shutdownReason = d.stopped.reason; e.reason = d.stopped.detail; }
    this.emit("event", e);
  }

  // ------------------------------------------------------------------------------------------------ queries

  info(): HostInfo {
    return {
      host: hostname(), release: release(), machine: machine(), nrCpus: cpus().length,
      totalMemoryMiB: Math.floor(this.pool.totalFrames / 256), freeMemoryMiB: Math.floor(this.pool.freeFrames / 256),
      xenMajor: XEN_MAJOR, xenMinor: XEN_MINOR, xenExtra: "-xeno", uptime: (Date.now() - this.started) / 1000,
      pcpus: this.sched.pcpus, tsliceMs: this.sched.tsliceMs,
      vmThreads: this.threads.size, vmSpareThread: this.spare !== null, spareMemoryBytes: this.spareMemory.bytes, spareMemoryTaken: this.spareMemory.taken, vmThreadsStarted: this.threadsStarted, domainsPerThread: this.domainsPerThread, vmMoves: this.moves,
      xenstoredSocket: this.xenstoredSocket,
      lazyRestore: { pending: this.lazyPending, last: this.lazyLast },
    };
  }

  list(): DomainInfo[] {
    const out: DomainInfo[] = [];
    // The toolstack's own CPU time and memory, without the guests' threads and RAM (dom0-usage.ts).
    const u = dom0Usage();
    out.push({
      domid: 0, name: "Domain-0", uuid: "00000000-0000-0000-0000-000000000000", state: "running",
      memKiB: u.memKiB, maxMemKiB: u.memKiB,
      targetKiB: 0, vcpus: cpus().length, onlineVcpus: cpus().length,
      cpuSeconds: u.cpuSeconds, startTime: this.started / 1000,
      spec: { name: "Domain-0", memMiB: 0, vcpus: cpus().length, kernel: "", cmdline: "", xen: true, disks: [], vifs: [] },
      sched: { weight: DEFAULT_WEIGHT, cap: 0, affinity: null }, pcpu: -1,
    });
    for (const d of [...this.domains.values()].sort((a, b) => a.domid - b.domid)) out.push(this.describe(d));
    return out;
  }

  private describe(d: Domain): DomainInfo {
    const r = d.runner;
    let state: DomainState;
    if (d.dying) state = "dying";
    else if (d.stopped !== null) state = d.stopped.state;
    else if (r.paused) state = "paused";
    else state = r.blocked ? "blocked" : "running";
    const pages = r.pages > 0 ? r.pages : d.maxPages;
    const info: DomainInfo = {
      domid: d.domid, name: d.name, uuid: d.uuid, state,
      memKiB: pages * 4, maxMemKiB: d.maxPages * 4, targetKiB: this.targetKiB(d) ?? d.maxPages * 4,
      vcpus: d.spec.vcpus, onlineVcpus: d.stopped !== null ? 0 : r.onlineVcpus, cpuSeconds: r.cpuSeconds,
      vcpuCpuSeconds: r.vcpuSeconds(Math.min(d.spec.vcpus, MAX_BOARD_VCPUS)),
      startTime: d.startTime, spec: d.spec, sched: { ...d.sched }, pcpu: this.sched.slotOf(d.domid),
      lastPcpu: this.sched.lastSlotOf(d.domid), io: r.io, devices: deviceInfo((p) => this.readStore(p), d.domid, d.spec),
    };
    let slot = d.schedF64[cpuAt(0)]!;
    if (VCPU_THREADS) for (let k = 1; k < Math.min(d.spec.vcpus, MAX_BOARD_VCPUS); k++) slot += d.schedF64[cpuAt(k)]!;
    info.slotSeconds = slot;
    if (VCPU_THREADS && d.spec.vcpus > 1 && d.stopped === null) {
      info.vcpuSched = Array.from({ length: Math.min(d.spec.vcpus, MAX_BOARD_VCPUS) }, (_, k) => {
        const id = k === 0 ? d.domid : vcpuEntityId(d.domid, k);
        return { pcpu: this.sched.slotOf(id), lastPcpu: this.sched.lastSlotOf(id), runnable: Atomics.load(d.schedCtl, wantAt(k)) === 1 };
      });
    }
    const cs = this.readStore(`/local/domain/${d.domid}/control/shutdown`);
    if (cs !== undefined) info.controlShutdown = cs;
    if (d.stopped !== null) { info.shutdownReason = d.stopped.reason; info.reason = d.stopped.detail; }
    return info;
  }

  private readStore(path: string): string | undefined {
    try { return Buffer.from(this.store.read(this.dom0, null, path)).toString("latin1"); } catch { return undefined; }
  }

  private targetKiB(d: Domain): number | undefined {
    try {
      const v = Number(Buffer.from(this.store.read(this.dom0, null, `/local/domain/${d.domid}/memory/target`)).toString("latin1"));
      return Number.isFinite(v) ? v : undefined;
    } catch { return undefined; }
  }

  // ------------------------------------------------------------------------------------------------ lifecycle

  async create(spec: DomainSpec): Promise<number> {
    checkSpec(spec);
    for (const d of this.domains.values()) {
      if (d.name === spec.name) throw new HvError("EEXIST_NAME", `a domain named '${spec.name}' exists (id ${d.domid})`);
    }
    if (this.domains.size >= MAX_DOMAINS) throw new HvError("ENOMEM", `at most ${MAX_DOMAINS} domains`);
    // Files are checked and read without blocking this thread (a FIFO, a directory, /dev/zero are refused):
    // the control socket and XenStore keep answering meanwhile (src/common/host-file.ts).
    const images: ImageRef[] = [];
    const ram = { maxBytes: spec.memMiB * 2 ** 20, maxWhy: `the domain's ${spec.memMiB} MiB of RAM` };
    const read = async (what: string, path: string): Promise<Uint8Array> => {
      try { const r = await this.images.acquireAsync(path, { what, ...ram }); images.push(r); return r.bytes; } catch (e) {
        for (const r of images) this.images.release(r);
        images.length = 0;
        throw new HvError("EBUILD", (e as Error).message);
      }
    };
    for (const disk of spec.disks) await checkDisk(disk);
    // An HVM domain's "kernel" is its firmware: one 64 MiB flash bank, whatever its RAM.
    const kernel = spec.firmware !== undefined
      ? await (async () => { ram.maxBytes = 64 * 2 ** 20; ram.maxWhy = "a 64 MiB flash bank"; return read("firmware", spec.kernel); })()
      : await read("kernel", spec.kernel);
    const initrd = spec.ramdisk !== undefined ? await read("ramdisk", spec.ramdisk) : undefined;
    // Another create may have taken the name while the files were read.
    const taken = [...this.domains.values()].find((o) => o.name === spec.name);
    if (taken !== undefined) {
      for (const r of images) this.images.release(r);
      throw new HvError("EEXIST_NAME", `a domain named '${spec.name}' exists (id ${taken.domid})`);
    }
    // As Xen: ids increase (a restarted domain gets a new one), wrapping below DOMID_FIRST_RESERVED.
    let domid = this.nextDomid;
    while (this.domains.has(domid)) domid = domid >= 0x7fef ? 1 : domid + 1;
    this.nextDomid = domid >= 0x7fef ? 1 : domid + 1;
    const uuid = spec.uuid ?? randomUUID();
    return this.build(spec, domid, uuid, images, { kernel, initrd });
  }

  /**
   * Builds and starts a domain in a worker thread: booting `boot.kernel`, or continuing `boot.from` (a save
   * file's state; its frames claimed by the caller, handed to the domain here). The caller has checked the
   * spec's files (create: disks, kernel and ramdisk read; restore: disks). On failure everything is undone
   * (store nodes, bridges, images, frames) and HvError thrown.
   */
  private async build(spec: DomainSpec, domid: number, uuid: string, images: ImageRef[],
    boot: { kernel: Uint8Array; initrd?: Uint8Array } | { from: NonNullable<DomainRunOptions["from"]>; claimed: number }): Promise<number> {
    const runner = new DomainRunner();
    const thread = this.placeThread();
    const schedBuf = new SharedArrayBuffer(schedBytes(spec.vcpus));
    const sp: SchedParams = { weight: spec.sched?.weight ?? DEFAULT_WEIGHT, cap: spec.sched?.cap ?? 0, affinity: spec.sched?.cpus ?? null };
    const d: Domain = {
      schedCtl: new Int32Array(schedBuf), schedF64: new Float64Array(schedBuf), sched: sp, images, thread,
      domid, name: spec.name, uuid, spec: { ...spec, uuid }, runner, stopped: null, dying: false, startTime: Date.now() / 1000,
      console: [], consoleBytes: 0, consoles: new Set(), bridges: new Map(), maxPages: spec.memMiB * 256,
    };
    this.domains.set(domid, d); // reserve the id and name while building
    let started = false;
    try {
      for (const v of spec.vifs) d.bridges.set(v.devid, await this.joinBridge(d, v));
      await new Promise<void>((resolve, reject) => {
        runner.once("started", () => { started = true; resolve(); });
        runner.once("error", (e) => reject(e));
        runner.on("output", (b) => this.consoleOutput(d, b));
        runner.on("net-tx", (vif, frame) => { d.bridges.get(vif)?.send(frame); });
        runner.on("net-flow", (vif, full) => { d.bridges.get(vif)?.pauseReading(full); });
        runner.on("sched-wake", () => { if (!d.dying && d.stopped === null) this.schedKick(); });
        runner.once("stopped", (s) => {
          if (!started) { reject(new Error(`the domain stopped before it ran: ${s.reason}`)); return; }
          this.stopped(d, s.state, s.reason);
        });
        runner.start({
          memMiB: spec.memMiB, vcpus: spec.vcpus, xen: spec.xen, name: spec.name,
          ...("from" in boot ? { kernel: new Uint8Array(0), from: boot.from } : { kernel: boot.kernel, initrd: boot.initrd }),
          cmdline: spec.cmdline,
          ...(spec.firmware !== undefined ? { firmwareVars: spec.firmware.vars, firmwareBoot: spec.firmware.boot, firmwareRng: spec.firmware.rng !== false } : {}),
          disks: spec.disks, vifs: spec.vifs, domid, uuid: uuidBytes(uuid), store: this.store, pool: this.pool,
          paused: spec.paused, log: (l) => this.log(`d${domid}: ${l}`), sched: schedBuf,
        }, thread);
        // A restored domain that runs wants its pCPU from the start (as an unpause: Xen's vcpu_wake), so the
        // scheduler grants the permit now, not after the worker built the machine and asked (sched-wake).
        if ("from" in boot && spec.paused !== true) Atomics.store(d.schedCtl, wantAt(0), 1);
        this.schedAdd(d);
      });
      if (this.balanceTimer === null) {
        this.lastBalance = performance.now();
        this.balanceTimer = setInterval(() => { void this.balance(); }, BALANCE_MS);
        this.balanceTimer.unref();
      }
    } catch (e) {
      this.schedRemove(d);
      this.domains.delete(domid);
      if (this.nextDomid === domid + 1) this.nextDomid = domid; // a domain that never ran gives its id back
      for (const b of d.bridges.values()) b.close();
      await runner.destroy().catch(() => undefined);
      await this.threadLeft(thread);
      // A restored domain's frames were claimed here; a machine that was refused did not take them over.
      if ("from" in boot) this.pool.release(boot.claimed);
      this.cleanStore(d);
      this.releaseImages(d);
      if (e instanceof HvError) throw e;
      const err = e as Error;
      if (e instanceof DomainStartError && e.code === "MACHINE_MEMORY") throw new HvError("ENOMEM", err.message);
      throw new HvError("EBUILD", err.message);
    }
    this.log(`d${domid}: ${"from" in boot ? "restored" : "created"} '${spec.name}' (${spec.memMiB} MiB, ${spec.vcpus} vCPU${spec.vcpus > 1 ? "s" : ""}${spec.paused ? ", paused" : ""})`);
    this.emitDomain(d, spec.paused ? "paused" : "running");
    return domid;
  }

  private stopped(d: Domain, state: string, detail: string): void {
    if (d.dying || state === "destroyed") return;
    const reason: ShutdownReason = state === "poweroff" ? "poweroff" : state === "reboot" ? "reboot" : "crash";
    d.stopped = { state: state === "crashed" ? "crashed" : "shutdown", reason, detail };
    this.schedRemove(d);
    this.store.domainShutdown(d.domid);
    this.log(`d${d.domid}: ${state === "crashed" ? "crashed" : `shut down (${reason})`}: ${detail.split("\n")[0]}`);
    this.emitDomain(d, d.stopped.state);
  }

  async destroy(domid: number): Promise<void> {
    let d = this.dom(domid);
    if (d.building !== undefined) {
      // Restored with `received` and still building: destroyed once built; a build that failed left nothing.
      await d.building.catch(() => undefined);
      if (this.domains.get(domid) !== d) return;
      d = this.dom(domid);
    }
    if (d.dying) return;
    if (d.saving === true) throw new HvError("ESTATE", `domain ${domid} is being saved: destroy it when the save has ended`);
    d.dying = true;
    this.emitDomain(d, "dying");
    this.schedRemove(d);
    // Paused since its save: nothing has written the memory since, and nothing will once the Machine is gone.
    // Not with vCPU threads of its own (XENO_VCPU_THREADS): the worker lets them go without waiting for them.
    const spare = d.savedMemory !== undefined && d.runner.paused && d.stopped === null && !(VCPU_THREADS && d.spec.vcpus > 1) ? d.savedMemory : null;
    delete d.savedMemory;
    await d.runner.destroy();
    if (spare !== null) this.spareMemory.offer(spare.memory, spare.dataMap, d.spec.xen ? XEN_AREA_BYTES : 0);
    await this.threadLeft(d.thread);
    // A domain that stopped by itself kept its frames when its thread ended: release what it held.
    if (d.runner.keptFrames) this.pool.release(d.runner.pages);
    for (const b of d.bridges.values()) b.close();
    for (const c of d.consoles) c(new Uint8Array(0)); // end of stream
    d.consoles.clear();
    this.cleanStore(d);
    this.releaseImages(d);
    this.domains.delete(domid);
    if (this.domains.size === 0 && this.schedTimer !== null) { clearInterval(this.schedTimer); this.schedTimer = null; }
    if (this.domains.size === 0 && this.balanceTimer !== null) { clearInterval(this.balanceTimer); this.balanceTimer = null; }
    this.log(`d${domid}: destroyed`);
    this.emitDomain(d, "destroyed");
  }

  private releaseImages(d: Domain): void {
    for (const r of d.images) this.images.release(r);
    d.images.length = 0;
  }

  /** What libxl removes when a domain goes: its home, its vm entry, back-end directories; then release. */
  private cleanStore(d: Domain): void {
    const rm = (p: string): void => { try { this.store.rm(this.dom0, null, p); } catch { /* absent */ } };
    rm(`/local/domain/${d.domid}`);
    rm(`/vm/${d.uuid}`);
    for (const type of ["vbd", "vif", "console"]) rm(`/local/domain/0/backend/${type}/${d.domid}`);
    rm(`/local/domain/0/error/backend/vbd/${d.domid}`);
    rm(`/local/domain/0/error/backend/vif/${d.domid}`);
    this.store.releaseDomain(d.domid);
  }

  // ------------------------------------------------------------------------------------------------ save/restore

  /**
   * xl save: saves the domain between slices (its worker pauses it), writes its config, state, XenStore part
   * and memory to `path` (docs/save-format.md), then destroys it — or with `checkpoint` lets it run on, with
   * `paused` leaves it paused. When it cannot be saved at this moment (a XenStore transaction open, a back-end
   * busy) it runs on and the save is tried again, for up to SAVE_TRIES × SAVE_RETRY_MS. On a failed write the
   * partial file is removed and the domain runs on as before.
   */
  async save(domid: number, path: string, o: { checkpoint?: boolean; paused?: boolean; suspend?: boolean } = {}): Promise<{ bytes: number; pages: number; zeroPages: number; ms: number }> {
    const d = this.dom(domid);
    if (d.stopped !== null || d.dying) throw new HvError("ESTATE", `domain ${domid} is not running (${d.stopped?.state ?? "dying"}): nothing to save`);
    if (d.spec.firmware !== undefined) throw new HvError("ESTATE", `domain ${domid} is an HVM domain (firmware boot), which cannot be saved yet (docs/hvm.md)`);
    if (typeof path !== "string" || !isAbsolute(path)) throw new HvError("EINVAL", `save file ${JSON.stringify(path)}: an absolute path (the hypervisor writes it)`);
    if (d.saving === true) throw new HvError("ESTATE", `domain ${domid} is being saved already`);
    d.saving = true;
    try {
      let suspendedBy: number | undefined;
      if (o.suspend === true) suspendedBy = await this.suspendGuest(d);
      return await this.saveTo(d, path, { ...o, suspendedBy });
    } finally {
      d.saving = false;
    }
  }

  /**
   * Xen's suspend protocol (libxl__domain_suspend; the guest's side is Linux's drivers/xen/manage.c): writes
   * control/shutdown = "suspend"; the guest acknowledges (writes ""), freezes its processes and devices and
   * calls SCHEDOP_shutdown(SHUTDOWN_suspend), which the worker takes (the domain stops there, paused). Returns
   * the vCPU that called it. Refused for a guest that does not offer it (control/feature-suspend) or is
   * paused (it could not answer); a guest that has not suspended within SUSPEND_WAIT_MS is left running and
   * the request withdrawn (a suspend it makes later is cancelled: the call returns 1).
   */
  private async suspendGuest(d: Domain): Promise<number> {
    const domid = d.domid, ctl = `/local/domain/${domid}/control`;
    if (!d.spec.xen) throw new HvError("EINVAL", `domain ${domid} has no Xen platform (xen_platform=0): no suspend protocol`);
    if (this.readStore(`${ctl}/feature-suspend`) !== "1") {
      throw new HvError("ESTATE", `domain ${domid} does not offer the suspend protocol (${ctl}/feature-suspend is not 1: its kernel has no ` +
        "CONFIG_HIBERNATE_CALLBACKS or it has not finished booting); save it without --suspend");
    }
    if (d.runner.paused) throw new HvError("ESTATE", `domain ${domid} is paused: it cannot answer a suspend request; unpause it or save without --suspend`);
    const t0 = performance.now();
    try {
      const vcpu = await d.runner.suspend(() => this.write(`${ctl}/shutdown`, "suspend"), SUSPEND_WAIT_MS);
      this.log(`d${domid}: suspended itself (SHUTDOWN_suspend from vCPU ${vcpu}, ${(performance.now() - t0).toFixed(0)} ms after the request)`);
      this.emitDomain(d, "paused");
      return vcpu;
    } catch (e) {
      const acked = this.readStore(`${ctl}/shutdown`) === "";
      try { this.write(`${ctl}/shutdown`, ""); } catch { /* gone */ }
      throw new HvError("ESTATE", `domain ${domid}: ${(e as Error).message} (control/shutdown "suspend" ${acked ? "acknowledged" : "not acknowledged"}); ` +
        "it runs on; try again, or save without --suspend");
    }
  }

  /**
   * Saves the domain between slices and leaves it paused (its worker's `save`), trying again while it cannot
   * be saved now (SAVE_TRIES × SAVE_RETRY_MS). `pausedAt`: the wall time (ms) the successful attempt was asked.
   */
  private async saveBetweenSlices(d: Domain, o: { dirtyFinal?: boolean } = {}): Promise<{ run: SavedRun; pausedAt: number }> {
    const domid = d.domid;
    let why = "";
    let dirtyCarry: Int32Array | null = null;
    for (let attempt = 0; attempt < SAVE_TRIES; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, SAVE_RETRY_MS));
      if (d.stopped !== null || d.dying) throw new HvError("ESTATE", `domain ${domid} stopped during the save`);
      const pausedAt = performance.timeOrigin + performance.now(); // wall ms with µs: comparable across processes of a host
      try {
        const r = await d.runner.save(o);
        if (typeof r.guest === "string") {
          // Resumed to try again: a live migration's log was stopped with the save's last round; it starts again
          // (the pages of that round were written while it ran: they are sent with the final round).
          if (r.dirty !== undefined) { dirtyCarry = dirtyCarry === null ? r.dirty : unionPages(dirtyCarry, r.dirty); await d.runner.dirty("start"); }
          d.runner.finishSave(true, r.paused); why = r.guest; continue;
        }
        if (dirtyCarry !== null && r.dirty !== undefined) r.dirty = unionPages(dirtyCarry, r.dirty);
        return { run: r, pausedAt };
      } catch (e) { why = (e as Error).message; }
    }
    throw new HvError("ESTATE", `domain ${domid} could not be saved within ${SAVE_TRIES * SAVE_RETRY_MS / 1000} s: ${why}; try again`);
  }

  private async saveTo(d: Domain, path: string, o: { checkpoint?: boolean; paused?: boolean; suspendedBy?: number }): Promise<{ bytes: number; pages: number; zeroPages: number; ms: number }> {
    const domid = d.domid;
    const t0 = performance.now();
    let run: SavedRun;
    try {
      ({ run } = await this.saveBetweenSlices(d));
    } catch (e) {
      if (o.suspendedBy !== undefined) { d.runner.cancelSuspend(); d.runner.unpause(); this.emitDomain(d, "running"); }
      throw e;
    }
    // A suspended guest was running when asked: "paused" in the run is the suspend's, not the user's.
    if (o.suspendedBy !== undefined) run = { ...run, paused: false };
    const guest = run.guest as SavedGuestLink;
    const spec: DomainSpec = { ...d.spec, name: d.name };
    delete spec.paused;
    const saved: SavedDomain = { version: 1, domid, snapshot: run.snapshot, store: { version: 1, nodes: dumpStore(this.store, domid, d.uuid), guest },
      ...(o.suspendedBy !== undefined ? { suspended: { vcpu: o.suspendedBy } } : {}) };
    let bytes: number, zeroPages: number, dataMap: Uint8Array;
    try {
      ({ bytes, zeroPages, dataMap } = await writeSaveFile(path, spec, saved, run.memory, (p) => this.emit("event", { event: "progress", op: "save", domid, path, ...p })));
    } catch (e) {
      if (o.suspendedBy !== undefined) d.runner.cancelSuspend();
      d.runner.finishSave(true, run.paused);
      const why = e instanceof HostFileError ? e.message : `${path}: ${(e as Error).message}`; // the former names the path
      throw new HvError("EIO", `cannot write ${why} (domain ${domid} is as it was)`);
    }
    const pages = spec.memMiB * 256;
    const ms = performance.now() - t0;
    this.log(`d${domid}: saved to ${path} (${bytes} bytes, ${pages - zeroPages} of ${pages} pages with data, ${ms.toFixed(0)} ms)`);
    if (o.checkpoint === true || o.paused === true) {
      const stayPaused = o.paused === true || run.paused;
      // The guest goes on here: its suspend was cancelled (SHUTDOWN_suspend returns 1: same back-ends).
      if (o.suspendedBy !== undefined) d.runner.cancelSuspend();
      d.runner.finishSave(true, stayPaused);
      this.emitDomain(d, stayPaused ? "paused" : "running");
    } else {
      d.saving = false;
      d.savedMemory = { memory: run.memory, dataMap };
      await this.destroy(domid);
    }
    return { bytes, pages, zeroPages, ms };
  }

  /**
   * xl migrate's sending side: the save stream written straight into the unix socket `socket` the client
   * listens on (it passes the stream to the transport). Live (src/hv/save-live.ts: pre-copy rounds while the
   * domain runs, by `policy`) unless `live` is false or the domain cannot log its writes (then whyNotLive
   * says why and the whole stream is sent paused). Ends with the domain paused and saved, as `save -p` leaves
   * it; the client renames, destroys or resumes it. A failure before the pause leaves it running as it was; a
   * failure after resumes it (unless it was paused before).
   */
  async migrateSend(domid: number, socket: string, o: { live?: boolean; maxRounds?: number; minDirty?: number; renameTo?: string } = {}): Promise<MigrateSendResult> {
    const d = this.dom(domid);
    if (d.stopped !== null || d.dying) throw new HvError("ESTATE", `domain ${domid} is not running (${d.stopped?.state ?? "dying"}): nothing to migrate`);
    if (d.spec.firmware !== undefined) throw new HvError("ESTATE", `domain ${domid} is an HVM domain (firmware boot), which cannot be migrated yet (docs/hvm.md)`);
    if (typeof socket !== "string" || !isAbsolute(socket)) throw new HvError("EINVAL", `stream socket ${JSON.stringify(socket)}: an absolute path`);
    if (o.renameTo !== undefined) {
      checkName(o.renameTo);
      for (const x of this.domains.values()) if (x !== d && x.name === o.renameTo) throw new HvError("EEXIST_NAME", `a domain named '${o.renameTo}' exists (id ${x.domid})`);
    }
    const policy: LivePolicy = { maxRounds: o.maxRounds ?? DEFAULT_LIVE_POLICY.maxRounds, minDirty: o.minDirty ?? DEFAULT_LIVE_POLICY.minDirty };
    const bad = policyError(policy);
    if (bad !== null) throw new HvError("EINVAL", bad);
    if (d.saving === true) throw new HvError("ESTATE", `domain ${domid} is being saved already`);
    d.saving = true;
    const t0 = performance.now();
    let logging = false, run: SavedRun | null = null;
    let out: Awaited<ReturnType<typeof socketSink>> | null = null;
    try {
      try { out = await socketSink(socket); } catch (e) { throw new HvError("EIO", `cannot connect to the stream socket ${socket}: ${(e as Error).message}`); }
      const w = new SaveStreamWriter(out.sink);
      const spec: DomainSpec = { ...d.spec, name: d.name };
      delete spec.paused;
      await w.header({ ...spec } as unknown as Record<string, unknown>);
      let rounds: RoundReport[] = [], left: Int32Array = new Int32Array(0), whyNotLive: string | undefined;
      if (o.live !== false) {
        try { await d.runner.dirty("start"); logging = true; } catch (e) { whyNotLive = (e as Error).message; }
      } else whyNotLive = "not asked";
      if (logging) {
        const mem = d.runner.liveMemory!;
        // RAM is the memory less what follows it (vCPU state, TLBs, the compiler's area: boardTailBytes).
        const ram = new Uint8Array(mem.buffer, 0, mem.buffer.byteLength - boardTailBytes(spec.vcpus));
        w.dataMap = new Uint8Array(ram.length >>> 12); // the pages sent with data, for the spare memory (destroy)
        ({ rounds, left } = await precopy({ ram, dirty: (op, f) => d.runner.dirty(op, f) }, w, policy,
          (r, k) => this.log(`d${domid}: migration pre-copy round ${k}: ${r.pages} pages in ${r.ms.toFixed(0)} ms, ${r.dirtyAfter} dirty after`)));
      }
      // Drained first: a drain mark, and the pause only once the receiving hypervisor answered it (it has read
      // every page before it), or after SYNC_WAIT_MS (a receiver that does not answer). Without it the pause
      // came while up to ~2.5 MiB of the last round were still in the pipes and sockets between the two (the
      // CLIs' buffers, the kernel's), and the stream's end reached the target 15–40 ms after the pause.
      let drain: MigrateSendResult["drain"];
      if (logging) {
        const tSync = performance.now();
        await w.sync(1);
        drain = { ms: 0, answered: await out.acked(1, SYNC_WAIT_MS) };
        drain.ms = performance.now() - tSync;
      }
      // Stop and copy: paused and saved, then the pages still dirty and the state. First the bridges hold the
      // guest's frames (src/net/handover.ts), so none reaches this copy after its snapshot and is lost.
      await this.holdVifs(d);
      const tPause = performance.now();
      // The worker's last dirty round comes with the saved state (dirtyFinal): one message in the downtime.
      const saved0 = await this.saveBetweenSlices(d, { dirtyFinal: logging });
      run = saved0.run;
      const tSaved = performance.now();
      const ram = new Uint8Array(run.memory.buffer, 0, run.memory.buffer.byteLength - boardTailBytes(spec.vcpus));
      const ramPages = ram.length >>> 12;
      w.dataMap ??= new Uint8Array(ramPages); // sent paused: every page goes below
      let last: PageList;
      if (logging) {
        if (run.dirty === undefined) throw new Error("the worker saved the domain without its last dirty round");
        last = unionPages(left, run.dirty);
        logging = false;
      } else last = { length: ramPages, at: (i) => i };
      const tDirty = performance.now();
      // pausedAt: the receiver reports the downtime from it to its first guest instruction (same host: same clock).
      const saved: SavedDomain = { version: 1, domid, snapshot: run.snapshot, pausedAt: saved0.pausedAt,
        store: { version: 1, nodes: dumpStore(this.store, domid, d.uuid), guest: run.guest as SavedGuestLink } };
      await w.domain(saved, ramPages, spec.vcpus);
      const tState = performance.now();
      await w.pages(ram, last);
      const tPages = performance.now();
      await w.end();
      await out.end();
      const tEnd = performance.now();
      // xeno migrate's NAME--migratedaway, here rather than in a request of its own after this answer: the
      // target's ready message can come before such a request's round trip (through xenod) has ended.
      if (o.renameTo !== undefined) this.rename(domid, o.renameTo);
      const stopCopyMs = tEnd - tPause;
      const stopCopy = { saveMs: tSaved - tPause, dirtyMs: tDirty - tSaved, stateMs: tState - tDirty, pagesMs: tPages - tState, endMs: tEnd - tPages };
      d.runner.finishSave(true, true); // as save -p: the held store messages delivered, paused
      // Destroyed next (xeno migrate), its memory becomes the spare.
      if (w.dataMap.length === ramPages) d.savedMemory = { memory: run.memory, dataMap: w.dataMap };
      this.emitDomain(d, "paused");
      const ms = performance.now() - t0;
      this.log(`d${domid}: migration stream sent (${w.bytes} bytes, ${rounds.length} pre-copy rounds, ${last.length} pages paused, ` +
        `stop-and-copy ${stopCopyMs.toFixed(0)} ms, total ${ms.toFixed(0)} ms)${whyNotLive !== undefined ? `; not live: ${whyNotLive}` : ""}`);
      return { bytes: w.bytes, live: rounds.length > 0, ...(whyNotLive !== undefined ? { whyNotLive } : {}), rounds,
        finalPages: last.length, wasPaused: run.paused, pausedAt: saved0.pausedAt, stopCopyMs, stopCopy, ms, ...(drain !== undefined ? { drain } : {}),
        ...(o.renameTo !== undefined ? { renamed: true } : {}) };
    } catch (e) {
      out?.destroy();
      if (logging) await d.runner.dirty("stop").catch(() => undefined);
      if (run !== null) d.runner.finishSave(true, run.paused);
      this.releaseVifs(d);
      throw e instanceof HvError ? e : new HvError("EIO", `the migration stream of domain ${domid} failed: ${(e as Error).message} (the domain runs on as it was)`);
    } finally {
      d.saving = false;
    }
  }

  /**
   * xl restore: a domain from a save file, with its saved domid (the guest's front-ends hold XenStore paths
   * that name it), under its saved name or `name`. The file is read and checked whole before anything is
   * built; then its frames are claimed, its XenStore nodes written, and its machine continued in a worker thread.
   */
  async restore(path: string, o: { paused?: boolean; name?: string; spec?: DomainSpec; stream?: boolean; received?: boolean } = {}): Promise<RestoreResult> {
    if (typeof path !== "string" || !isAbsolute(path)) throw new HvError("EINVAL", `save file ${JSON.stringify(path)}: an absolute path (the hypervisor reads it)`);
    if (o.received === true && o.paused !== true) throw new HvError("EINVAL", "received (answer before the build) is for a domain restored paused: its unpause waits for the build");
    if (o.name !== undefined) checkName(o.name);
    if (o.spec !== undefined) { checkSpec(o.spec); checkDevices(o.spec); }
    const t0 = performance.now(), cpu0 = process.cpuUsage();
    // The worker thread the domain will run in starts now, while the file or stream is read (a new thread is a
    // V8 isolate loading the emulator: hundreds of ms on a busy host; for a migration, during pre-copy rather
    // than the downtime); build() places the domain there. Ended again if the restore fails before that.
    const early = this.placeThread();
    // A migration's stream brings the state only at its end: the thread rehearses a restore meanwhile, so the
    // build in the downtime does not run its code for the first time in this isolate (warm-restore.ts).
    if (o.stream === true) early.warm();
    let building: Promise<unknown> | null = null;
    try {
      const r = await this.restoreIn(path, o, t0, cpu0, early);
      building = this.domains.get(r.domid)?.building ?? null;
      return r;
    } finally {
      // Closes it only if no domain went there: once a build answered after the restore has ended.
      if (building === null) await this.threadLeft(early);
      else void building.then(() => undefined, () => undefined).then(() => this.threadLeft(early));
    }
  }

  private async restoreIn(path: string, o: { paused?: boolean; name?: string; spec?: DomainSpec; stream?: boolean; received?: boolean }, t0: number,
    cpu0: NodeJS.CpuUsage, early: VmThread): Promise<RestoreResult> {
    let f: ReadSaveFile;
    let noMemory: HvError | null = null;
    const configPages = (cfg: Record<string, unknown>): number => {
      const spec = cfg as unknown as DomainSpec;
      checkSpec(spec);
      checkDevices(spec);
      if (spec.memMiB > MAX_RAM_MIB) throw new Error(`memory ${spec.memMiB} MiB: this machine supports up to ${MAX_RAM_MIB} MiB`);
      // Before the memory is allocated and filled: a domain the pool cannot hold is refused at once.
      if (spec.memMiB * 256 > this.pool.freeFrames) {
        noMemory = new HvError("ENOMEM", `the saved domain has ${spec.memMiB} MiB; only ${this.pool.freeFrames >> 8} MiB of the hypervisor's ${this.pool.totalFrames >> 8} MiB are free`);
        throw noMemory;
      }
      // The board's RAM: the guest's, and for a Xen DomU the Xen area above it (src/hv/machine.ts).
      return spec.memMiB * 256 + (spec.xen ? XEN_AREA_BYTES / 4096 : 0);
    };
    let conn: Awaited<ReturnType<typeof socketSource>> | null = null;
    // The file's page reads (save-jobs.ts), reported by the reader; a holder, as the callback sets it.
    const read: { pages: { ms: number; main: number; helper: number } | null } = { pages: null };
    // The pages go into the spare memory when it has the size (already faulted in, zeroed), else a new one.
    let spareTaken = false;
    const memoryFor = (bytes: number): WebAssembly.Memory | null => { const m = this.spareMemory.take(bytes); spareTaken = m !== null; return m; };
    try {
      const progress = (p: WriteProgress): void => { this.emit("event", { event: "progress", op: "restore", domid: -1, path, ...p }); };
      if (o.stream === true) {
        // A migration: `path` is the receiving client's socket; the stream is read as it comes (save-live.ts).
        try { conn = await socketSource(path); } catch (e) { throw new HvError("EIO", `cannot connect to the stream socket ${path}: ${(e as Error).message}`); }
        f = await readSaveStream(conn.source, configPages, progress, memoryFor, conn.ack);
      } else {
        // The domain's thread, while it has no domain in it, reads part of the file's pages beside this one.
        f = await readSaveFile(path, configPages, progress, { offer: (m) => early.helpRead(m), alive: () => early.alive, report: (r) => { read.pages = r; } }, memoryFor,
          // Lazy into a new memory only: the spare's pages are faulted in already, so its eager read costs no more.
          () => LAZY_RESTORE && o.received !== true && !spareTaken);
      }
      conn?.destroy();
    } catch (e) {
      conn?.destroy();
      if (e instanceof HvError) throw e;
      const err = e as NodeJS.ErrnoException;
      if (noMemory !== null) throw noMemory;
      // Not a regular file (a FIFO, a directory, a device), missing or unreadable: refused without blocking.
      if (e instanceof HostFileError) throw new HvError("EIO", `cannot read ${err.message}`);
      if (e instanceof SaveFormatError) throw new HvError("EFORMAT", `${path}: ${err.message}`);
      if (typeof err.code === "string" && err.syscall !== undefined) throw new HvError("EIO", `cannot read ${path}: ${err.message}`);
      throw new HvError("EFORMAT", `${path}: ${err.message}`);
    }
    const tRead = performance.now(), cpuRead = process.cpuUsage(cpu0);
    // A lazy read (lazy-ram.ts): its file stays open for the loader; closed here if the restore goes no further.
    const lazy = f.lazy ?? null;
    if (lazy === null) return this.restoreRead(path, o, t0, f, tRead, cpuRead, read.pages, spareTaken, null);
    const lz = { handed: false };
    try {
      return await this.restoreRead(path, o, t0, f, tRead, cpuRead, read.pages, spareTaken, { ...lazy, lz });
    } finally {
      if (!lz.handed) await lazy.fh.close().catch(() => undefined);
    }
  }

  /** restoreIn after the file or stream was read and checked: the checks against this host, the store, the build. */
  private async restoreRead(path: string, o: { paused?: boolean; name?: string; spec?: DomainSpec; stream?: boolean; received?: boolean }, t0: number,
    f: ReadSaveFile, tRead: number, cpuRead: NodeJS.CpuUsage, pages: { ms: number; main: number; helper: number } | null, spareTaken: boolean,
    lazy: { fh: FileHandle; message: LazyRamMessage; lz: { handed: boolean } } | null): Promise<RestoreResult> {
    const { saved } = f;
    const domid = saved.domid;
    const savedSpec = f.config as unknown as DomainSpec;
    if (o.spec !== undefined) {
      const why = specMismatch(savedSpec, o.spec);
      if (why !== null) throw new HvError("EINVAL", `the config does not fit the saved domain: ${why} (only name, disk paths, bridges, policies and scheduling may change)`);
    }
    const base = o.spec ?? savedSpec;
    // The uuid stays the saved one: the guest read it (/sys/hypervisor/uuid) and its /vm/UUID nodes are saved.
    const spec: DomainSpec = { ...base, uuid: savedSpec.uuid, name: o.name ?? base.name, paused: o.paused === true };
    const uuid = spec.uuid!;
    // The disks reopen their paths: each is checked as a created domain's are (a regular file, read-write unless
    // read-only, opened without blocking); a restore reads no kernel or ramdisk. Before the checks below, which
    // hold from here until build() reserves the id and name (no await between them).
    for (const disk of spec.disks) {
      try { await checkDisk(disk); } catch (e) {
        throw e instanceof HvError ? new HvError(e.code, `restore of ${path}: ${e.message}`) : e;
      }
    }
    for (const x of this.domains.values()) {
      if (x.name === spec.name) throw new HvError("EEXIST_NAME", `a domain named '${spec.name}' exists (id ${x.domid}): rename that domain first (xeno rename)`);
      if (x.domid === domid) throw new HvError("ESTATE", `domain id ${domid}, which the saved guest's XenStore paths name, is in use by '${x.name}': destroy it (or restore on another hypervisor)`);
      if (x.uuid === uuid) throw new HvError("ESTATE", `a domain with the saved uuid ${uuid} runs ('${x.name}', id ${x.domid}): a checkpoint of it cannot run beside it`);
    }
    if (this.domains.size >= MAX_DOMAINS) throw new HvError("ENOMEM", `at most ${MAX_DOMAINS} domains`);
    const p2m = saved.snapshot.p2m as { pages?: unknown } | null;
    const ramPages = spec.memMiB * 256;
    const frames = spec.xen ? p2m?.pages : ramPages;
    if (typeof frames !== "number" || !Number.isInteger(frames) || frames < 0 || frames > ramPages) {
      throw new HvError("EFORMAT", `${path}: the saved P2M holds ${String(frames)} pages; the config's memory is ${ramPages} pages`);
    }
    if (!this.pool.claim(frames)) {
      throw new HvError("ENOMEM", `the domain needs ${frames >> 8} MiB; only ${this.pool.freeFrames >> 8} MiB of the hypervisor's ${this.pool.totalFrames >> 8} MiB are free`);
    }
    if (spec.xen) {
      try {
        loadStore(this.store, saved.store, domid, uuid);
        const num = (k: string): number => {
          const p = `/local/domain/${domid}/store/${k}`;
          let v = NaN;
          try { v = Number(Buffer.from(this.store.read(this.dom0, null, p)).toString("latin1")); } catch { /* below */ }
          if (!Number.isInteger(v) || v < 0) throw new Error(`the saved XenStore has no number at ${p} (the guest's store ring)`);
          return v;
        };
        this.store.introduce(this.dom0, domid, num("ring-ref"), num("port"));
      } catch (e) {
        this.pool.release(frames);
        this.cleanStore({ domid, uuid } as Domain);
        throw new HvError("EFORMAT", `${path}: ${(e as Error).message}`);
      }
    }
    const tBuild = performance.now();
    const wall = (t: number): number => performance.timeOrigin + t;
    // A guest that suspended itself resumes as in a new domain: a new store connection (it registers its
    // watches again, xs_resume) and new back-ends its front-ends reconnect to (Machine from.newDomain).
    const newDomain = saved.suspended !== undefined;
    const guest: SavedGuestLink = newDomain ? { watches: [], replies: [] } : saved.store.guest;
    // build() reserves the id and name (this.domains) before its first await, then undoes everything (store
    // nodes, frames, bridges) if it fails; say which file the refusal is about.
    this.failedBuilds.delete(domid);
    // Lazy only for a Xen DomU whose vCPUs all run in its worker (vCPU threads' MMUs have no loader): else the
    // pages are loaded here now, as an eager read would have (lazy-ram.ts).
    if (lazy !== null && (!spec.xen || (VCPU_THREADS && spec.vcpus > 1))) {
      new LazyRam(lazy.message).loadAll();
      lazy = null; // closed by restoreIn
    }
    const lazyFrom = lazy !== null ? { lazy: lazy.message } : {};
    if (lazy !== null) lazy.lz.handed = true;
    const lazyFh = lazy?.fh ?? null;
    const built = this.build(spec, domid, uuid, [], { from: { snapshot: saved.snapshot, memory: f.memory, guest, newDomain, ...lazyFrom }, claimed: frames })
      .catch((e: unknown) => {
        // The worker is gone (build() destroyed it): no thread reads the file any more.
        if (lazyFh !== null) void lazyFh.close().catch(() => undefined);
        const err = e instanceof HvError ? new HvError(e.code, `restore of ${path}: ${e.message}`) : e as Error;
        if (o.received === true) {
          this.failedBuilds.set(domid, err.message);
          if (this.failedBuilds.size > 16) this.failedBuilds.delete(this.failedBuilds.keys().next().value!);
        }
        throw err;
      });
    const reserved = this.domains.get(domid);
    if (o.received === true && reserved === undefined) await built; // refused before it reserved the id: throws
    if (o.received === true && reserved !== undefined) {
      // Answered now (a migration's ready message); the build goes on and the unpause waits for it. The domain
      // record is the one build() reserved: it carries the build until it ended.
      const d = reserved;
      const building = built.then((): RestoreBuildInfo => {
        const rt = d.runner.restoreTiming;
        const info = { builtAt: wall(performance.now()), threadMs: rt !== null ? rt.at - wall(tBuild) : NaN, machineMs: rt?.restoreMs ?? NaN };
        this.log(`d${domid}: restored from ${path} (${f.bytes} bytes, ${f.dataPages} pages with data; answered at ${(tBuild - t0).toFixed(1)} ms ` +
          `after the read and checks, built ${(info.builtAt - wall(t0)).toFixed(1)} ms after the request: thread ${info.threadMs.toFixed(1)}, machine ${info.machineMs.toFixed(1)})`);
        this.announceVifs(d);
        d.announce = true;
        d.built = info;
        return info;
      });
      building.catch(() => undefined); // awaited by the unpause (or a destroy); a failure is its answer there
      d.building = building;
      const timing: RestoreTimingInfo = {
        readMs: tRead - t0, readCpuMs: o.stream === true ? NaN : (cpuRead.user + cpuRead.system) / 1000, storeMs: tBuild - tRead, buildMs: NaN, spareMemory: spareTaken,
        threadMs: NaN, machineMs: NaN, readAt: wall(tRead), builtAt: NaN, ...(typeof saved.pausedAt === "number" ? { pausedAt: saved.pausedAt } : {}),
      };
      return { domid, bytes: f.bytes, ms: tBuild - t0, timing };
    }
    await built;
    const tBuilt = performance.now();
    const ms = tBuilt - t0;
    const d = this.domains.get(domid);
    const rt = d?.runner.restoreTiming ?? null;
    // A domain that runs: the answer waits for its first slice (bounded), so "restored" means running.
    const ranAt = d !== undefined && !spec.paused ? await d.runner.firstRun(RUN_WAIT_MS) : NaN;
    if (lazy !== null) this.lazyBackground(domid, lazy);
    const timing: RestoreTimingInfo = {
      readMs: tRead - t0, readCpuMs: o.stream === true ? NaN : (cpuRead.user + cpuRead.system) / 1000, storeMs: tBuild - tRead, buildMs: tBuilt - tBuild, spareMemory: spareTaken,
      threadMs: rt !== null ? rt.at - wall(tBuild) : NaN, machineMs: rt?.restoreMs ?? NaN,
      ...(pages !== null ? { pagesMs: pages.ms, jobsMain: pages.main, jobsHelper: pages.helper } : {}),
      readAt: wall(tRead), builtAt: wall(tBuilt), ...(typeof saved.pausedAt === "number" ? { pausedAt: saved.pausedAt } : {}),
      ...(!spec.paused ? { runningMs: ranAt - wall(t0) } : {}),
      ...(lazy !== null ? { lazyPages: new LazyRam(lazy.message).total } : {}),
    };
    this.log(`d${domid}: restored from ${path} (${f.bytes} bytes, ${f.dataPages} pages with data, ${ms.toFixed(0)} ms: ` +
      `read and checked ${timing.readMs.toFixed(1)} (CPU ${timing.readCpuMs.toFixed(1)}${spareTaken ? "; into the spare memory" : ""}${timing.lazyPages !== undefined ? `; ${timing.lazyPages} pages left to load lazily` : ""}${pages !== null ? `; pages ${pages.ms.toFixed(1)}, records ${pages.main} here + ${pages.helper} by the helper` : ""}), store ${timing.storeMs.toFixed(1)}, build ${timing.buildMs.toFixed(1)} ` +
      `(thread ${timing.threadMs.toFixed(1)}, machine ${timing.machineMs.toFixed(1)})` +
      `${timing.runningMs !== undefined ? `; first guest instruction ${timing.runningMs.toFixed(1)} ms after the request` : ""})`);
    if (d !== undefined) {
      // Its vifs are on new switch ports: the switch learns them now, and again when it runs (it may have
      // been restored paused while its source, still on the old port, was destroyed).
      this.announceVifs(d);
      d.announce = d.runner.paused;
    }
    return { domid, bytes: f.bytes, ms, timing };
  }

  /**
   * A lazy restore's background load (lazy-ram.ts loadInBackground), after its first slice. A page whose bytes
   * fail their check (the file changed since it was checked) ends the domain, which cannot go on without it.
   */
  private lazyBackground(domid: number, lazy: { fh: FileHandle; message: LazyRamMessage }): void {
    this.lazyPending++;
    const d0 = this.domains.get(domid); // not another domain restored later with the same id
    loadInBackground(lazy.message, lazy.fh, (r) => {
      this.lazyPending--;
      this.lazyLast = r;
      this.log(`d${domid}: lazy restore loaded: ${r.total} pages in ${r.ms.toFixed(1)} ms after the first slice (${r.here} by the background, the rest on first touch)`);
    }, (e, close) => {
      this.lazyPending--;
      this.log(`d${domid}: lazy restore failed, the domain is destroyed: ${e.message}`);
      void (d0 !== undefined && this.domains.get(domid) === d0 ? this.destroy(domid).catch(() => undefined) : Promise.resolve()).then(close);
    });
  }

  pause(domid: number): void {
    const d = this.dom(domid);
    if (d.stopped !== null || d.dying) throw new HvError("ESTATE", `domain ${domid} is not running (${d.stopped?.state ?? "dying"})`);
    if (d.saving === true) throw new HvError("ESTATE", `domain ${domid} is being saved: pause it when the save has ended`);
    if (d.runner.paused) return;
    d.runner.pause();
    this.emitDomain(d, "paused");
  }

  /**
   * xl unpause (`name`: rename it first). With `report` the answer waits for the domain's next slice and gives its start (wall ms since
   * the epoch: xeno migrate-receive's "running at the target" is the first guest instruction, not the request).
   */
  unpause(domid: number): null;
  unpause(domid: number, o: { report: true; name?: string }): Promise<{ runningAt: number; build?: RestoreBuildInfo }>;
  unpause(domid: number, o: { report?: boolean; name?: string } = {}): null | Promise<{ runningAt: number; build?: RestoreBuildInfo }> {
    const failed = this.domains.has(domid) ? undefined : this.failedBuilds.get(domid);
    if (failed !== undefined) {
      this.failedBuilds.delete(domid);
      throw new HvError("EBUILD", `domain ${domid} could not be built, nothing runs: ${failed}`);
    }
    const d = this.dom(domid);
    if (d.building !== undefined) {
      // A restore answered before its build (`received`): with report, unpaused once built; a build that failed
      // fails this (the domain is gone: xeno migrate-receive reports the failure and the source resumes).
      if (o.report === true) {
        const name = o.name, building = d.building;
        const buildFailed = (e: Error): never => { throw new HvError(e instanceof HvError ? e.code : "EBUILD", `domain ${domid} could not be built, nothing runs: ${e.message}`); };
        // The worker must have the domain's port: build() awaits the vifs' bridges before it starts the runner,
        // and an unpause sent before that was dropped (DomainRunner.send without a port) — the cause of session
        // 25's "did not report its first slice" (a vif, a bridge slow to answer on a loaded host).
        if (d.built !== undefined || !EARLY_UNPAUSE || d.dying || d.saving === true || !d.runner.running) {
          return building.then(async (build) => {
            if (d.building === building) delete d.building;
            return { runningAt: (await this.unpause(domid, { report: true, name })).runningAt, build };
          }, buildFailed);
        }
        // Still building: renamed now and the unpause sent to the worker now, where it waits in the domain's port
        // behind the build (the worker takes its port's messages once the Machine is built; one that fails to
        // build never runs, and this then fails with EBUILD). So the build's answer to this thread and this
        // request's trip back to the worker are not two more wake-ups in series before the first instruction.
        if (name !== undefined) this.rename(domid, name); // a refused name leaves it paused, nothing sent
        delete d.savedMemory;
        const ran = this.reportRun(d);
        ran.catch(() => undefined); // a build that failed: its answer is buildFailed's
        Atomics.store(d.schedCtl, wantAt(0), 1);
        this.schedKick();
        return building.then(async (build) => {
          if (d.building === building) delete d.building;
          d.runner.builtUnpaused();
          this.schedKick(); // it wants its pCPU (the worker asked once; a tick that saw it still paused gave none)
          if (d.announce === true) { d.announce = false; this.announceVifs(d); }
          this.emitDomain(d, "running");
          return { runningAt: (await ran).runningAt, build };
        }, buildFailed);
      }
      if (d.built === undefined) throw new HvError("ESTATE", `domain ${domid} is being restored: unpause it when the restore has ended`);
      delete d.building;
    }
    if (d.stopped !== null || d.dying) throw new HvError("ESTATE", `domain ${domid} is not running (${d.stopped?.state ?? "dying"})`);
    if (d.saving === true) throw new HvError("ESTATE", `domain ${domid} is being saved: unpause it when the save has ended`);
    if (!d.runner.paused) {
      if (o.report === true) throw new HvError("ESTATE", `domain ${domid} is not paused: nothing to report`);
      return null;
    }
    delete d.savedMemory; // it runs again (a migration that failed): its memory is its own
    // `name`: renamed first, in the same request (xeno migrate-receive: NAME--incoming becomes NAME and runs);
    // a refused name leaves it paused.
    if (o.name !== undefined) this.rename(domid, o.name);
    let ran: Promise<{ runningAt: number }> | null = null;
    if (o.report === true) ran = this.reportRun(d);
    else d.runner.unpause();
    this.releaseVifs(d); // resumed after a migration that failed past its hold
    // A restored domain's vifs announce themselves once it runs (after the first slice is under way: they are
    // not on the path to its first instruction).
    // It wants its pCPU now (Xen's vcpu_wake on unpause): the scheduler's tick grants the permit at once rather
    // than after the worker asked for it (sched-wake). An idle guest gives it back after its first slice.
    Atomics.store(d.schedCtl, wantAt(0), 1);
    this.schedKick();
    if (d.announce === true) { d.announce = false; this.announceVifs(d); }
    this.emitDomain(d, "running");
    return ran;
  }

  /**
   * Unpauses `d` and resolves with the start of its next slice. Bounded: a report that cannot come (the domain
   * moved to another thread before its slice, or it was never built) must not hold the request for ever; the
   * domain runs regardless.
   */
  private reportRun(d: Domain): Promise<{ runningAt: number }> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      // What the scheduler and the worker showed then (a report that never came is a bug to find: say where it stood).
      timer = setTimeout(() => reject(new HvError("ESTATE", `domain ${d.domid} was unpaused but did not report its first slice within ${REPORT_WAIT_MS / 1000} s ` +
        `(paused ${d.runner.paused}, wants ${Atomics.load(d.schedCtl, wantAt(0))}, permit ${Atomics.load(d.schedCtl, permitAt(0))}, pCPU ${this.sched.slotOf(d.domid)}, ` +
        `building ${d.building !== undefined}, built ${d.built !== undefined}, scheduler ticking ${this.schedTimer !== null})`)), REPORT_WAIT_MS);
    });
    return Promise.race([d.runner.unpauseReport().then((runningAt) => ({ runningAt }),
      (e: Error) => { throw new HvError("ESTATE", `domain ${d.domid} stopped before it ran: ${e.message}`); }), late])
      .finally(() => clearTimeout(timer));
  }

  /** Before a migration's final pause: each vif's bridge holds the frames for its MAC (src/net/handover.ts) and
   * answers behind those it sent already; a bridge that does not answer in time is logged (its frames after the
   * snapshot may be lost, as before handovers). */
  private async holdVifs(d: Domain): Promise<void> {
    const t0 = performance.now();
    const ok = await Promise.all(d.spec.vifs.map((v) => d.bridges.get(v.devid)?.hold(v.mac) ?? Promise.resolve(false)));
    const late = d.spec.vifs.filter((_, i) => !ok[i]).map((v) => v.devid);
    if (late.length > 0) this.log(`d${d.domid}: vif ${late.join(", ")}: the bridge did not confirm holding the guest's frames (some may be lost in the move)`);
    else if (d.spec.vifs.length > 0) this.log(`d${d.domid}: bridges hold the vifs' frames for the move (${(performance.now() - t0).toFixed(1)} ms)`);
  }

  /** The domain runs on here after all: frames its bridges held go back to it, and the switch relearns its MAC. */
  private releaseVifs(d: Domain): void {
    for (const v of d.spec.vifs) {
      const b = d.bridges.get(v.devid);
      if (b?.release(v.mac) === true) b.send(announceFrame(v.mac));
    }
  }

  /** Each vif of a restored domain sends a RARP announce from its MAC into its bridge (save-live.ts announceFrame). */
  private announceVifs(d: Domain): void {
    for (const v of d.spec.vifs) {
      const sent = d.bridges.get(v.devid)?.send(announceFrame(v.mac)) ?? false;
      this.log(`d${d.domid}: vif ${v.devid} (${v.mac}) announced on its bridge${sent ? "" : ": not sent (bridge not connected)"}`);
    }
  }

  /** xl shutdown/reboot: a request in control/shutdown; the guest acknowledges and acts (or not). */
  shutdown(domid: number, reason: string): void {
    const d = this.dom(domid);
    if (!["poweroff", "reboot", "halt", "suspend"].includes(reason)) throw new HvError("EINVAL", `bad shutdown reason '${reason}'`);
    if (d.stopped !== null || d.dying) throw new HvError("ESTATE", `domain ${domid} is not running`);
    this.write(`/local/domain/${domid}/control/shutdown`, reason);
  }

  sysrq(domid: number, key: string): void {
    const d = this.dom(domid);
    if (typeof key !== "string" || key.length !== 1) throw new HvError("EINVAL", "sysrq needs one key character");
    if (d.stopped !== null || d.dying) throw new HvError("ESTATE", `domain ${domid} is not running`);
    this.write(`/local/domain/${domid}/control/sysrq`, key);
  }

  memSet(domid: number, targetKiB: number): void {
    const d = this.dom(domid);
    if (!Number.isSafeInteger(targetKiB) || targetKiB <= 0) throw new HvError("EINVAL", `bad memory target ${targetKiB} KiB`);
    const max = d.maxPages * 4;
    if (targetKiB > max) throw new HvError("EINVAL", `target ${targetKiB >> 10} MiB is above the domain's maximum ${max >> 10} MiB`);
    this.write(`/local/domain/${domid}/memory/target`, String(targetKiB));
  }

  /**
   * xl mem-max: the most the balloon may bring the domain back to (XENMEM_populate_physmap stops there);
   * memory/static-max follows, as libxl writes it. A guest's RAM cannot grow past what its board was built
   * with, so a larger maximum is refused.
   */
  memMax(domid: number, maxKiB: number): void {
    const d = this.dom(domid);
    if (d.stopped !== null || d.dying) throw new HvError("ESTATE", `domain ${domid} is not running`);
    const ramPages = d.spec.memMiB * 256;
    if (!Number.isSafeInteger(maxKiB) || maxKiB < 4096) throw new HvError("EINVAL", `bad maximum ${maxKiB} KiB (at least 4 MiB)`);
    const pages = Math.floor(maxKiB / 4);
    if (pages > ramPages) {
      throw new HvError("EINVAL", `maximum ${maxKiB >> 10} MiB is above the RAM the domain was built with (${ramPages >> 8} MiB); Xeno cannot add RAM to a running domain`);
    }
    d.maxPages = pages;
    d.runner.setMaxPages(pages);
    this.write(`/local/domain/${domid}/memory/static-max`, String(pages * 4));
    this.log(`d${domid}: maximum memory ${pages >> 8} MiB`);
  }

  /** xl vcpu-set: vCPUs 0..n-1 online, the rest offline, through cpu/N/availability (Linux's xen cpu_hotplug). */
  vcpuSet(domid: number, n: number): void {
    const d = this.dom(domid);
    if (d.stopped !== null || d.dying) throw new HvError("ESTATE", `domain ${domid} is not running`);
    if (!d.spec.xen) throw new HvError("ESTATE", `domain ${domid} has no Xen platform: no vCPU hot-plug`);
    if (!Number.isInteger(n) || n < 1 || n > d.spec.vcpus) throw new HvError("EINVAL", `vcpus ${n}: 1..${d.spec.vcpus} (the domain's maximum)`);
    for (let k = 0; k < d.spec.vcpus; k++) this.write(`/local/domain/${domid}/cpu/${k}/availability`, k < n ? "online" : "offline");
    this.log(`d${domid}: ${n} vCPU${n > 1 ? "s" : ""} available`);
  }

  rename(domid: number, name: string): void {
    const d = this.dom(domid);
    checkName(name);
    for (const o of this.domains.values()) if (o !== d && o.name === name) throw new HvError("EEXIST_NAME", `a domain named '${name}' exists (id ${o.domid})`);
    d.name = name;
    d.spec = { ...d.spec, name };
    this.write(`/local/domain/${domid}/name`, name);
    this.write(`/vm/${d.uuid}/name`, name);
  }

  private joinBridge(d: Domain, v: { devid: number; bridge: string }): Promise<BridgeClient> {
    return ensureBridge(v.bridge, (frame) => d.runner.netRx(v.devid, frame), { runDir: this.runDir });
  }

  // ------------------------------------------------------------------------------------------------ hot-plug

  private running(domid: number): Domain {
    const d = this.dom(domid);
    if (d.stopped !== null || d.dying) throw new HvError("ESTATE", `domain ${domid} is not running`);
    if (!d.spec.xen) throw new HvError("ESTATE", `domain ${domid} has no Xen platform (xen_platform=0): no PV devices`);
    return d;
  }

  /** xl block-attach: blkback serves the image; the guest's blkfront probes /dev/xvdX. */
  async blockAttach(domid: number, disk: DomainSpec["disks"][number]): Promise<void> {
    const d = this.running(domid);
    if (typeof disk !== "object" || disk === null || typeof disk.path !== "string" || !Number.isInteger(disk.devid) || typeof disk.vdev !== "string") {
      throw new HvError("EINVAL", "disk: {path, devid, vdev, readOnly}");
    }
    const same = d.spec.disks.find((x) => x.devid === disk.devid || x.vdev === disk.vdev);
    if (same !== undefined) throw new HvError("EINVAL", `domain ${domid} has a disk ${same.vdev} already (devid ${same.devid}); detach it first or choose another vdev`);
    await checkDisk(disk);
    try { await d.runner.device({ type: "attach-disk", disk: { ...disk, readOnly: disk.readOnly === true } }); }
    catch (e) { throw new HvError("EBUILD", (e as Error).message); }
    d.spec = { ...d.spec, disks: [...d.spec.disks, disk] };
    this.log(`d${domid}: attached disk ${disk.vdev} (${disk.path}${disk.readOnly ? ", ro" : ""})`);
  }

  /**
   * xl block-detach: the guest lets go (Closing → Closed), then the device is removed; EBUSY when it does not
   * within the worker's wait (the device stays). force (-f): removed at once.
   */
  async blockDetach(domid: number, devid: number, force = false): Promise<{ forced: boolean }> {
    const d = this.running(domid);
    const disk = d.spec.disks.find((x) => x.devid === devid);
    if (disk === undefined) throw new HvError("EINVAL", `domain ${domid} has no disk with devid ${devid}`);
    let r: { forced: boolean };
    try { r = await d.runner.device({ type: "detach-disk", devid, force }); }
    catch (e) { throw new HvError("EBUSY", `${disk.vdev}: ${(e as Error).message}`); }
    d.spec = { ...d.spec, disks: d.spec.disks.filter((x) => x !== disk) };
    this.log(`d${domid}: detached disk ${disk.vdev}${r.forced ? " (forced: its front-end had not closed)" : ""}`);
    return r;
  }

  async networkAttach(domid: number, vif: DomainSpec["vifs"][number]): Promise<void> {
    const d = this.running(domid);
    if (typeof vif !== "object" || vif === null || !Number.isInteger(vif.devid) || typeof vif.mac !== "string" || typeof vif.bridge !== "string") {
      throw new HvError("EINVAL", "vif: {devid, mac, mtu, bridge}");
    }
    if (d.spec.vifs.some((x) => x.devid === vif.devid)) throw new HvError("EINVAL", `domain ${domid} has a vif ${vif.devid} already`);
    let bridge: BridgeClient;
    try { bridge = await this.joinBridge(d, vif); } catch (e) { throw new HvError("EBUILD", (e as Error).message); }
    try { await d.runner.device({ type: "attach-vif", vif: { ...vif, mtu: vif.mtu ?? 1500 } }); }
    catch (e) { bridge.close(); throw new HvError("EBUILD", (e as Error).message); }
    d.bridges.set(vif.devid, bridge);
    d.spec = { ...d.spec, vifs: [...d.spec.vifs, vif] };
    this.log(`d${domid}: attached vif ${vif.devid} (${vif.mac}) to ${vif.bridge}`);
  }

  async networkDetach(domid: number, devid: number, force = false): Promise<{ forced: boolean }> {
    const d = this.running(domid);
    const vif = d.spec.vifs.find((x) => x.devid === devid);
    if (vif === undefined) throw new HvError("EINVAL", `domain ${domid} has no vif ${devid}`);
    let r: { forced: boolean };
    try { r = await d.runner.device({ type: "detach-vif", devid, force }); }
    catch (e) { throw new HvError("EBUSY", `vif ${devid}: ${(e as Error).message}`); }
    d.bridges.get(devid)?.close();
    d.bridges.delete(devid);
    d.spec = { ...d.spec, vifs: d.spec.vifs.filter((x) => x !== vif) };
    this.log(`d${domid}: detached vif ${devid}${r.forced ? " (forced: its front-end had not closed)" : ""}`);
    return r;
  }

  // ------------------------------------------------------------------------------------------------ threads

  /**
   * The thread for a new domain: a new one while there are fewer than pCPUs (busy domains each get a thread
   * of their own first) or every thread is full; else the least loaded.
   */
  private placeThread(): VmThread {
    let best: VmThread | null = null;
    for (const t of this.threads) if (t.alive && (best === null || t.load < best.load)) best = t;
    if (best === null || (this.threads.size < this.sched.pcpus && best.load > 0) || best.load >= this.domainsPerThread) {
      best = this.newThread();
      this.threads.add(best);
    }
    return best;
  }

  /** A thread for domains: the spare when there is one (started and warm), else a new one. */
  private newThread(): VmThread {
    const s = this.spare;
    this.spare = null;
    if (s !== null) {
      clearTimeout(s.timer);
      if (s.thread.alive) return s.thread;
      void s.thread.close();
    }
    this.threadsStarted++;
    return new VmThread();
  }

  /**
   * One look of the balancer (balance.ts): measures each running domain's share of a pCPU since the last look
   * and makes at most one move — a busy domain out of a thread it shares with another busy one.
   */
  private async balance(): Promise<void> {
    if (this.balancing) return;
    this.balancing = true;
    try {
      const now = performance.now();
      const secs = Math.max(0.001, (now - this.lastBalance) / 1000);
      this.lastBalance = now;
      const doms = [];
      for (const d of this.domains.values()) {
        // The home thread's slot time (what the scheduler charges: src/hv/vm-worker.ts step), not its CPU time,
        // which a loaded host cuts below BUSY_SHARE for domains that want a whole pCPU.
        const cpu = d.schedF64[cpuAt(0)]!;
        const share = d.balanceCpu === undefined ? 0 : (cpu - d.balanceCpu) / secs;
        d.balanceCpu = cpu;
        const live = d.stopped === null && !d.dying && d.runner.running && !d.runner.paused;
        // The work of a pack move itself (the restore, its code compiled again) does not count against idleness:
        // else each packed domain made its new thread unpackable for another XENO_PACK_IDLE_S. Only for a domain
        // that was idle when it moved (a busy one moved out by planMove starts again from 0).
        const settling = d.movedAt !== undefined && now - d.movedAt < MOVE_HOLD_MS && (d.idleLooks ?? 0) > 0;
        d.idleLooks = live && (share < IDLE_SHARE || settling) ? (d.idleLooks ?? 0) + 1 : 0;
        doms.push({ id: d.domid, thread: d.thread.id, share: live ? share : 0, idle: PACK_LOOKS > 0 && d.idleLooks >= PACK_LOOKS,
          // An HVM domain cannot be saved yet, so it is not moved (src/hv/machine.ts save()).
          movable: live && d.spec.firmware === undefined && (d.movedAt === undefined || now - d.movedAt >= MOVE_HOLD_MS) });
      }
      const live = [...this.threads].filter((t) => t.alive);
      const loads = live.map((t) => ({ id: t.id, load: t.load }));
      const spread = planMove(doms, loads, this.sched.pcpus, this.domainsPerThread);
      const plan = spread ?? planPack(doms, loads, this.domainsPerThread);
      if (plan === null) return;
      const d = this.domains.get(plan.domain)!;
      let to = live.find((t) => t.id === plan.to);
      if (to === undefined) { to = this.newThread(); this.threads.add(to); }
      if (spread === null) this.log(`d${d.domid}: packing, idle in thread ${d.thread.id} → thread ${to.id}`);
      // A thread emptied by packing ends at once rather than stay as the spare: packing is for memory, and a
      // spare keeps a whole isolate (docs/memory.md, "Threads").
      await this.moveDomain(d, to, spread === null);
    } catch (e) {
      this.log(`balancer: ${(e as Error).message}`);
    } finally {
      this.balancing = false;
    }
  }

  /** Moves a running domain to thread `to` (DomainRunner.moveTo); the thread it leaves ends if now empty. */
  async moveDomain(d: Domain, to: VmThread, noSpare = false): Promise<void> {
    const from = d.thread;
    d.movedAt = performance.now();
    const t0 = performance.now();
    try {
      await d.runner.moveTo(to);
    } catch (e) {
      await this.threadLeft(to); // a new thread nobody moved into ends again
      throw e;
    }
    d.thread = to;
    this.moves++;
    this.log(`d${d.domid}: moved from thread ${from.id} to thread ${to.id} in ${(performance.now() - t0).toFixed(1)} ms`);
    await this.threadLeft(from, noSpare);
    this.schedKick();
  }

  /** A domain left `t`: a thread without domains becomes the spare (when there is none) or ends. */
  private async threadLeft(t: VmThread, noSpare = false): Promise<void> {
    if (t.load > 0 && t.alive) return;
    if (this.spare?.thread === t) return; // left twice (a build that failed, then its restore): spare already
    this.threads.delete(t);
    if (t.alive && this.spare === null && !this.closing && !noSpare) {
      const timer = setTimeout(() => {
        if (this.spare?.thread !== t) return;
        this.spare = null;
        void t.close();
      }, SPARE_KEEP_MS);
      timer.unref();
      this.spare = { thread: t, timer };
      // The next domain it takes may be a restore: it rehearses one now, while nothing waits for it (once).
      t.warm();
      return;
    }
    await t.close();
  }

  // ------------------------------------------------------------------------------------------------ scheduling

  /**
   * The scheduler places vCPUs (sched-words.ts): one entity for the domain's home thread (vCPU 0, and every vCPU
   * when they share that thread; id = domid, in the thread's group) and, when vCPUs run on threads of their own
   * (vcpu-thread.ts VCPU_THREADS), one per vCPU 1..n-1 (its own thread: no group). All share the domain's
   * parameters: each vCPU has the domain's weight (Xen's credit1 likewise weighs each active vCPU of a domain
   * with the domain's weight); cap and affinity apply to each vCPU (Xen's cap is the domain's total).
   */
  private schedAdd(d: Domain): void {
    const ctl = d.schedCtl, f64 = d.schedF64;
    const live = (): boolean => d.stopped === null && !d.dying && !d.runner.paused;
    this.sched.add({
      id: d.domid,
      get params() { return d.sched; },
      set params(p: SchedParams) { d.sched = p; },
      wants: () => live() && Atomics.load(ctl, wantAt(0)) === 1,
      cpuSeconds: () => f64[cpuAt(0)]!,
      // The thread sleeps on its doorbell, not on this word: ring it.
      setPermit: (run) => { Atomics.store(ctl, permitAt(0), run ? 1 : 0); if (run) d.runner.ring(); },
      // While it holds the permit: 2 when another entity waits for a slot (the worker then says when it blocks).
      setWaitedFor: (waited) => { Atomics.store(ctl, permitAt(0), waited ? PERMIT_WAITED : 1); },
      get group() { return d.thread.id; }, // it changes when the domain moves
    });
    if (VCPU_THREADS) {
      for (let k = 1; k < d.spec.vcpus; k++) {
        this.sched.add({
          id: vcpuEntityId(d.domid, k),
          get params() { return d.sched; },
          set params(p: SchedParams) { d.sched = p; },
          wants: () => live() && Atomics.load(ctl, wantAt(k)) === 1,
          cpuSeconds: () => f64[cpuAt(k)]!,
          // The vCPU thread sleeps on this word while it has no permit.
          setPermit: (run) => { Atomics.store(ctl, permitAt(k), run ? 1 : 0); if (run) Atomics.notify(ctl, permitAt(k)); },
        });
      }
    }
    this.schedKick();
  }

  /** Takes the domain's entities (schedAdd) out of the scheduler. */
  private schedRemove(d: Domain): void {
    this.sched.remove(d.domid);
    for (let k = 1; k < d.spec.vcpus; k++) this.sched.remove(vcpuEntityId(d.domid, k));
  }

  /**
   * A domain wants a pCPU (its worker woke without a permit and said so: DomainRunner "sched-wake"), or one was
   * added: tick now — a woken domain runs without waiting for the next 10 ms tick — and keep ticking while
   * anyone holds or wants a slot. The tick stops itself when the scheduler is idle (every domain blocked).
   */
  private schedKick(): void {
    this.sched.tick();
    if (this.schedTimer === null && this.sched.busy) {
      this.schedTimer = setInterval(() => {
        this.sched.tick();
        if (!this.sched.busy && this.schedTimer !== null) { clearInterval(this.schedTimer); this.schedTimer = null; }
      }, SCHED_TICK_MS);
    }
  }

  /** sched-credit -d: weight (1..65535) and cap (0..100 % of a pCPU); omitted values stay. */
  schedCredit(domid: number, weight?: number, cap?: number): SchedParams {
    const d = this.dom(domid);
    if (d.stopped !== null || d.dying) throw new HvError("ESTATE", `domain ${domid} is not running`);
    try {
      const p = this.sched.setParams(domid, { ...(weight !== undefined ? { weight } : {}), ...(cap !== undefined ? { cap } : {}) });
      this.log(`d${domid}: credit weight=${p.weight} cap=${p.cap}`);
      return { ...p };
    } catch (e) { throw new HvError("EINVAL", (e as Error).message); }
  }

  /** vcpu-pin: the domain's hard affinity (its vCPUs share one thread, so it is per domain). */
  vcpuPin(domid: number, cpus: number[] | null): SchedParams {
    const d = this.dom(domid);
    if (d.stopped !== null || d.dying) throw new HvError("ESTATE", `domain ${domid} is not running`);
    if (cpus !== null && (!Array.isArray(cpus) || cpus.some((c) => !Number.isInteger(c)))) throw new HvError("EINVAL", "cpus: a list of pCPU numbers or null");
    try {
      const p = this.sched.setParams(domid, { affinity: cpus === null ? null : [...new Set(cpus)].sort((a, b) => a - b) });
      this.log(`d${domid}: hard affinity ${p.affinity === null ? "all" : p.affinity.join(",")}`);
      return { ...p };
    } catch (e) { throw new HvError("EINVAL", (e as Error).message); }
  }

  schedParams(tsliceMs?: number): { tsliceMs: number; pcpus: number } {
    if (tsliceMs !== undefined) {
      if (!Number.isInteger(tsliceMs) || tsliceMs < 1 || tsliceMs > 1000) throw new HvError("EINVAL", `tslice ${tsliceMs} ms: 1..1000`);
      this.sched.tsliceMs = tsliceMs;
    }
    return { tsliceMs: this.sched.tsliceMs, pcpus: this.sched.pcpus };
  }

  setToolstack(domid: number, t: ToolstackData): void {
    const d = this.dom(domid);
    d.spec = { ...d.spec, toolstack: t };
  }

  private write(path: string, value: string): void {
    this.store.write(this.dom0, null, path, Buffer.from(value, "latin1"));
  }

  // ------------------------------------------------------------------------------------------------ console

  private consoleOutput(d: Domain, b: Uint8Array): void {
    const buf = Buffer.from(b);
    d.console.push(buf);
    d.consoleBytes += buf.length;
    while (d.consoleBytes > CONSOLE_KEEP && d.console.length > 1) d.consoleBytes -= d.console.shift()!.length;
    for (const c of d.consoles) c(buf);
  }

  /** Recent console output (up to CONSOLE_KEEP bytes) to `sink`. */
  replayConsole(domid: number, sink: (b: Uint8Array) => void): void {
    for (const c of this.dom(domid).console) sink(c);
  }

  /** Attaches a console sink (an empty chunk = the domain is gone); returns input and detach functions. */
  attachConsole(domid: number, sink: (b: Uint8Array) => void, replay: boolean): { input(b: Uint8Array): void; detach(): void } {
    const d = this.dom(domid);
    if (d.dying) throw new HvError("ESTATE", `domain ${domid} is being destroyed`);
    if (replay) for (const c of d.console) sink(c);
    d.consoles.add(sink);
    return { input: (b) => d.runner.input(b), detach: () => { d.consoles.delete(sink); } };
  }

  /** Stops every domain (the hypervisor is going down). */
  async shutdownAll(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.domains.keys()].map((id) => this.destroy(id).catch(() => undefined)));
    const s = this.spare;
    this.spare = null;
    if (s !== null) { clearTimeout(s.timer); await s.thread.close(); }
    this.spareMemory.drop();
  }
}

function checkName(name: unknown): asserts name is string {
  if (typeof name !== "string" || name.length === 0 || name.length > 64 || !/^[A-Za-z0-9_.:+-][A-Za-z0-9_.:+ -]*$/.test(name) || /^\d+$/.test(name)) {
    throw new HvError("EINVAL", `bad domain name ${JSON.stringify(name)} (1-64 letters, digits, _ . : + -; not all digits)`);
  }
  if (name === "Domain-0") throw new HvError("EEXIST_NAME", "Domain-0 is the toolstack's own name");
}

function checkSpec(s: DomainSpec): void {
  if (typeof s !== "object" || s === null) throw new HvError("EINVAL", "spec must be an object");
  const problem = specProblem(s); // types, null entries, a devid or vdev twice (request-schema.ts)
  if (problem !== null) throw new HvError("EINVAL", problem);
  checkName(s.name);
  if (!Number.isInteger(s.memMiB) || s.memMiB < 16) throw new HvError("EINVAL", `bad memory ${s.memMiB} MiB`);
  if (!Number.isInteger(s.vcpus) || s.vcpus < 1 || s.vcpus > 8) throw new HvError("EINVAL", `bad vcpus ${s.vcpus} (1..8)`);
  if (typeof s.kernel !== "string" || s.kernel === "") throw new HvError("EINVAL", "kernel path missing");
  if (typeof s.cmdline !== "string") throw new HvError("EINVAL", "cmdline must be a string");
  if (!Array.isArray(s.disks) || !Array.isArray(s.vifs)) throw new HvError("EINVAL", "disks and vifs must be arrays");
  if (s.uuid !== undefined && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s.uuid)) {
    throw new HvError("EINVAL", `bad uuid ${s.uuid}`);
  }
}

/** A disk's target must open as a regular file, read-write unless read-only (without blocking: host-file.ts). */
async function checkDisk(disk: DomainSpec["disks"][number]): Promise<void> {
  try { await checkRegular(disk.path, { what: `disk ${disk.vdev}`, write: disk.readOnly !== true }); }
  catch (e) { throw new HvError("EBUILD", (e as Error).message); }
}

/** Why config `b` cannot continue a domain saved with config `a` (null: it can). */
function specMismatch(a: DomainSpec, b: DomainSpec): string | null {
  if (a.memMiB !== b.memMiB) return `memory ${b.memMiB} MiB, saved ${a.memMiB} MiB`;
  if (a.vcpus !== b.vcpus) return `vcpus ${b.vcpus}, saved ${a.vcpus}`;
  if (a.xen !== b.xen) return `xen_platform ${b.xen ? 1 : 0}, saved ${a.xen ? 1 : 0}`;
  if (a.disks.length !== b.disks.length) return `${b.disks.length} disks, saved ${a.disks.length}`;
  for (let i = 0; i < a.disks.length; i++) {
    const x = a.disks[i]!, y = b.disks[i]!;
    if (x.devid !== y.devid || x.vdev !== y.vdev || x.readOnly !== y.readOnly) return `disk ${i} is ${y.vdev}${y.readOnly ? " (ro)" : ""}, saved ${x.vdev}${x.readOnly ? " (ro)" : ""}`;
  }
  if (a.vifs.length !== b.vifs.length) return `${b.vifs.length} vifs, saved ${a.vifs.length}`;
  for (let i = 0; i < a.vifs.length; i++) {
    const x = a.vifs[i]!, y = b.vifs[i]!;
    if (x.devid !== y.devid || x.mac.toLowerCase() !== y.mac.toLowerCase() || x.mtu !== y.mtu) return `vif ${i} is ${y.devid} ${y.mac} mtu ${y.mtu}, saved ${x.devid} ${x.mac} mtu ${x.mtu}`;
  }
  return null;
}

/** The disks and vifs of a config read from a save file (a created domain's come from the toolstack's parser). */
function checkDevices(s: DomainSpec): void {
  s.disks.forEach((d, i) => {
    if (typeof d !== "object" || d === null || typeof d.path !== "string" || !isAbsolute(d.path) || !Number.isInteger(d.devid) || d.devid < 0 ||
      d.devid > 0xfffffff || typeof d.vdev !== "string" || !/^[a-z]{1,8}\d{0,4}$/.test(d.vdev) || typeof d.readOnly !== "boolean" ||
      (d.format !== undefined && d.format !== "raw" && d.format !== "qcow2")) {
      throw new HvError("EINVAL", `disks[${i}]: want {path (absolute), devid, vdev, readOnly, format (raw or qcow2, optional)}`);
    }
  });
  s.vifs.forEach((v, i) => {
    if (typeof v !== "object" || v === null || !Number.isInteger(v.devid) || v.devid < 0 || v.devid > 255 || typeof v.mac !== "string" ||
      !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(v.mac) || !Number.isInteger(v.mtu) || v.mtu < 68 || v.mtu > 65535 || typeof v.bridge !== "string") {
      throw new HvError("EINVAL", `vifs[${i}]: want {devid 0..255, mac, mtu 68..65535, bridge}`);
    }
  });
}

function uuidBytes(u: string): Uint8Array {
  return Uint8Array.from(Buffer.from(u.replace(/-/g, ""), "hex"));
}
