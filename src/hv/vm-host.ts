/**
 * DomainRunner: runs one Machine in a worker thread (vm-worker.ts) and talks to it by messages on its own
 * MessagePort. The thread is the runner's own unless the owner passes a VmThread to start() (the hypervisor
 * places several domains in one thread to share its V8 isolate).
 *
 *   const r = new DomainRunner();
 *   r.on("output", (bytes) => process.stdout.write(bytes));
 *   r.on("stopped", ({ state, reason }) => …);   // exactly once per start()
 *   r.on("error", (e) => …);                     // the machine could not be built (e.code: MachineError code)
 *   r.start({ memMiB, vcpus, kernel, initrd, cmdline });
 *   r.input(bytes); await r.destroy();
 *
 * Every post is followed by a doorbell ring (Atomics.add + notify) so a worker sleeping in Atomics.wait sees
 * it at once. The hypervisor process (hypervisor.ts) owns the runners of its domains; `xeno create
 * --standalone` owns one in its own process. moveTo() moves a running domain to another VmThread.
 */
import { EventEmitter } from "node:events";
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import { compileWorkerClient } from "../cpu/arm64/jit/compiler.js";

import type { BlkDiskConfig } from "../backends/blk/index.js";
import { newBlkShareBuffer } from "../backends/blk/io-share.js";
import type { NetVifConfig } from "../backends/net/index.js";
import type { XenStore } from "../xenstore/index.js";
import type { FramePool } from "./frame-pool.js";
import { StoreLinkHost, newStoreLinkBuffer, type SavedGuestLink } from "./store-link.js";
import { STAT_BLOCKED, STAT_CPU_S, STAT_IO, STAT_ONLINE, STAT_PAGES, STAT_PAUSED, STAT_VCPU_S, STAT_WORDS } from "./vm-stats.js";
import { readIo } from "./io-stats.js";
import type { DomainIo } from "./protocol.js";
import type { DeviceOp, HostToThread, HostToWorker, VmThreadData, VmWorkerData, WorkerToHost } from "./vm-worker.js";
import type { PageJobsMessage } from "./save-jobs.js";
import type { LazyRamMessage } from "./lazy-ram.js";
import type { DomainSnapshot } from "./machine.js";
import { FrameBatcher, batchTransfer, forEachFrame } from "../net/frame-batch.js";

/** XENO_JIT=0: no compiling engine (src/cpu/arm64/cpu.ts), so no compile worker either. */
const JIT_ON = process.env.XENO_JIT !== "0";

/**
 * Frames from the bridges go to the domain's worker in batches (src/net/frame-batch.ts): those a socket read
 * delivers together travel in one message, posted from a microtask after the read's frames are handed over.
 * $XENO_NET_BATCH=0 posts a batch per frame (for A/B).
 */
const NET_BATCH = process.env.XENO_NET_BATCH !== "0";
const RX_BATCH_BYTES = 256 * 1024, RX_BATCH_FRAMES = 512;

/** What a move carried: the snapshot the old thread saved, and (asked for) the new thread's save right after
 * its restore, before the domain ran there — equal apart from the clock (save → restore → save). */
export interface MoveResult { saved: DomainSnapshot; resaved?: DomainSnapshot }

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

export interface DomainRunOptions {
  memMiB: number;
  vcpus: number;
  kernel: Uint8Array;
  initrd?: Uint8Array;
  cmdline: string;
  /** Boot as a Xen DomU (default false: the bare board). */
  xen?: boolean;
  name?: string;
  /** Virtual block devices (with xen). */
  disks?: BlkDiskConfig[];
  /** Virtual network interfaces (with xen): frames come out as "net-tx" events and go in with netRx(). */
  vifs?: NetVifConfig[];
  /** Domain id and UUID (with xen). */
  domid?: number;
  uuid?: Uint8Array;
  /** The hypervisor's store (this thread): the guest and the worker's back-ends use it through a link. */
  store?: XenStore;
  /** The hypervisor's frame pool (its buffer is shared with the worker). */
  pool?: FramePool;
  /** Start paused. */
  paused?: boolean;
  /** The credit scheduler's control words for this domain (see VmWorkerData.sched). */
  sched?: SharedArrayBuffer;
  /** Log lines of the link (store errors). */
  log?: (line: string) => void;
  /**
   * Continue a domain from a save file instead of booting (kernel and initrd unused): its snapshot, a new
   * domain memory holding its RAM, and its guest's store connection (watches and replies, put back when the
   * worker opens it). Started is emitted once it runs; error (DomainStartError) when the state is refused.
   */
  from?: { snapshot: DomainSnapshot; memory: WebAssembly.Memory; guest?: SavedGuestLink; newDomain?: boolean; lazy?: LazyRamMessage };
  /** An HVM domain: `kernel` is its firmware, this its variable store file (src/hv/machine.ts). */
  firmwareVars?: string;
  /** With firmwareVars: xl's boot= letters (MachineOptions.firmwareBoot). */
  firmwareBoot?: string;
  /** With firmwareVars: a virtio-rng device (MachineOptions.firmwareRng). */
  firmwareRng?: boolean;
}

/** A domain saved for a save file (DomainRunner.save): it is paused in its thread until finishSave. */
export interface SavedRun {
  snapshot: DomainSnapshot;
  memory: WebAssembly.Memory;
  /** save({ dirtyFinal }) of a domain logging its writes: the last round (DomainRunner.dirty("round", true)). */
  dirty?: Int32Array;
  /** It was paused before the save. */
  paused: boolean;
  /** The guest's store connection, or why it cannot be saved now (then finishSave(true) and retry). */
  guest: SavedGuestLink | string;
}

export type DomainStopState = "poweroff" | "reboot" | "crashed" | "destroyed";

export interface DomainStopped {
  state: DomainStopState;
  reason: string;
}

/** The machine could not be built (nothing ran): `code` is the MachineError code (MACHINE_MEMORY, …). */
export class DomainStartError extends Error {
  constructor(readonly code: string, message: string) { super(message); this.name = "DomainStartError"; }
}

export interface DomainRunnerEvents {
  output: [Uint8Array];
  /** The domain runs in another thread now (moveTo). */
  moved: [VmThread];
  /** A frame the guest transmitted on vif `vif` (owned by the listener). */
  "net-tx": [number, Uint8Array];
  /** netback's backpressure on vif `vif`: stop (true) or resume (false) reading its bridge. */
  "net-flow": [number, boolean];
  stopped: [DomainStopped];
  error: [Error];
  started: [];
  /** The worker woke wanting a pCPU it has no permit for (VmWorkerData.sched): the scheduler should look now. */
  "sched-wake": [];
}

/** How long destroy() waits for the worker to acknowledge before terminating the thread. */
const DESTROY_GRACE_MS = 2000;

const WORKER_URL = new URL("./vm-worker.js", import.meta.url);

/**
 * The worker isolate's young generation (V8 new space: two semi-spaces plus new large objects, so 3 × the
 * semi-space). Unlimited, V8 grows the semi-spaces to 16 MiB each while the guest boots and keeps the 32 MiB
 * resident for the domain's life — the largest single item of a domain's overhead (bench/density/probe.ts:
 * new_space 32 MiB physical per idle domain). With 2 MiB semi-spaces a scavenge comes more often, but it costs
 * in proportion to what survives, which is little: the interpreter's hot path does not allocate.
 */
const WORKER_YOUNG_GEN_MB = 6;

/** A worker thread (vm-worker.ts) running the domains of the DomainRunners placed in it. */
export class VmThread {
  private static nextId = 1;
  /** The disks' fair-share table (src/backends/blk/io-share.ts): one for the process, given to every thread. */
  private static readonly blkShare = newBlkShareBuffer();
  readonly id = VmThread.nextId++;
  private readonly worker: Worker;
  private readonly doorbell: Int32Array;
  private readonly members = new Set<DomainRunner>();
  private ended = false;
  private readonly exited: Promise<void>;

  constructor() {
    const sab = new SharedArrayBuffer(4);
    this.doorbell = new Int32Array(sab);
    // Every domain thread compiles on the process's one compile worker (one isolate for all, and one code cache:
    // domains running the same kernel share compiled modules; src/cpu/arm64/jit/compile-worker.ts).
    const compile = JIT_ON ? compileWorkerClient() : undefined;
    const data: VmThreadData = { doorbell: sab, blkShare: VmThread.blkShare, compile };
    // trackUnmanagedFds off: domains move between threads with their open files (disk images, sockets); by
    // default Node closes every descriptor a thread opened when the thread ends, including those of a domain
    // that has moved on, and then the domain's own close hit whatever reused the number (seen: libuv aborting
    // the process when it was a compile worker's event descriptor, test/hv/move).
    this.worker = new Worker(WORKER_URL, { workerData: data, stdout: false, stderr: false, trackUnmanagedFds: false,
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GEN_MB }, transferList: compile !== undefined ? [compile.port] : [] });
    // An uncaught error in the thread (outside a domain's guarded slice) ends every domain in it.
    this.worker.on("error", (e) => { for (const r of [...this.members]) r.threadDied(`emulator thread failed: ${e.message}`); });
    this.exited = new Promise((resolve) => {
      this.worker.on("exit", (code) => {
        this.ended = true;
        for (const r of [...this.members]) r.threadDied(`emulator thread exited (code ${code}) without a stop report`);
        resolve();
      });
    });
  }

  /** Domains placed here that have not gone yet. */
  get load(): number { return this.members.size; }
  get alive(): boolean { return !this.ended; }

  /** Places a domain: its data (shared buffers stay shared) and one end of its port go to the thread. */
  add(r: DomainRunner, data: VmWorkerData): MessagePort {
    const ch = new MessageChannel();
    this.members.add(r);
    if (data.from !== undefined) this.warmed = true; // a restore runs the path a rehearsal would
    const m: HostToThread = { type: "add", data, port: ch.port2 };
    this.worker.postMessage(m, [ch.port2]);
    this.ring();
    return ch.port1;
  }

  /**
   * Offers a save file's page jobs to this thread (save-jobs.ts): only while it has no domain (a spare, or one
   * just started for the domain being restored), so no domain's slices wait behind the reads. Whether sent.
   */
  helpRead(jobs: PageJobsMessage): boolean {
    if (this.ended || this.members.size > 0) return false;
    const m: HostToThread = { type: "read-pages", jobs };
    this.worker.postMessage(m);
    this.ring();
    return true;
  }

  /** The thread rehearsed a restore (warm()). */
  private warmed = false;

  /**
   * Has this thread, while it has no domain, rehearse a restore (warm-restore.ts: ~15 ms of CPU) so that the
   * restore it is about to build does not run its code for the first time. Once per thread; whether sent.
   * Messages to the thread are taken in order: send it only where the build comes later (a migration's target
   * thread, during the pre-copy; a thread that just became the spare), not right before a file restore's build.
   */
  warm(): boolean {
    if (this.ended || this.warmed || this.members.size > 0) return false;
    this.warmed = true;
    const m: HostToThread = { type: "warm" };
    this.worker.postMessage(m);
    this.ring();
    return true;
  }

  /** A domain's Machine is gone from the thread. */
  leave(r: DomainRunner): void { this.members.delete(r); }

  /** Wakes the thread (after a message on any of its ports, or a scheduler permit). */
  ring(): void {
    Atomics.add(this.doorbell, 0, 1);
    Atomics.notify(this.doorbell, 0);
  }

  /** Ends the thread (its domains should be gone): "exit", then terminate after the grace period. */
  async close(): Promise<void> {
    if (!this.ended) {
      const m: HostToThread = { type: "exit" };
      this.worker.postMessage(m);
      this.ring();
      const timer = setTimeout(() => { void this.worker.terminate(); }, DESTROY_GRACE_MS);
      await this.exited;
      clearTimeout(timer);
    }
  }

  /** Stops the thread at once (a domain in it did not answer): every domain still in it crashes. */
  terminate(): void { void this.worker.terminate(); }
}

export class DomainRunner extends EventEmitter<DomainRunnerEvents> {
  private thread: VmThread | undefined;
  /** The thread is this runner's own (closed when the domain is gone). */
  private ownThread = false;
  private port: MessagePort | undefined;
  private done = false;
  /** The domain's Machine left its thread ("gone", "failed", or the thread ended). */
  private gone = false;
  private goneResolve: () => void = () => {};
  private exited: Promise<void> = Promise.resolve();
  private link: StoreLinkHost | null = null;
  /** What the worker was given (without kernel and initrd), for a restore in another thread (moveTo). */
  private data: VmWorkerData | null = null;
  /** A move in progress: host messages wait here until the domain runs in its new thread. */
  private moving: { to: VmThread; held: HostToWorker[]; resave: boolean; result: MoveResult | null; done: (e?: Error) => void } | null = null;
  /** A save for a file in progress (save() until saved/save-failed). */
  private saving: { done: (r: SavedRun | Error) => void } | null = null;
  private readonly statsBuf = new SharedArrayBuffer(STAT_WORDS * 8);
  private readonly stats = new Float64Array(this.statsBuf);

  /** Live figures the worker publishes (cheap: shared memory). */
  get cpuSeconds(): number { return this.stats[STAT_CPU_S]!; }
  get blocked(): boolean { return this.stats[STAT_BLOCKED] === 1; }
  get paused(): boolean { return this.stats[STAT_PAUSED] === 1; }
  /** Current pages (after ballooning); 0 until the worker first ran. */
  get pages(): number { return this.stats[STAT_PAGES]!; }
  get onlineVcpus(): number { return this.stats[STAT_ONLINE]!; }
  /** The back-ends' I/O counters (xentop). */
  get io(): DomainIo { return readIo(this.stats, STAT_IO); }
  /** CPU seconds of each of the domain's `n` vCPUs (they sum to cpuSeconds; vm-worker.ts STAT_VCPU_S). */
  vcpuSeconds(n: number): number[] { return Array.from(this.stats.subarray(STAT_VCPU_S, STAT_VCPU_S + n)); }

  /**
   * The domain ended leaving its frames claimed (the guest stopped by itself, or a move failed): the owner
   * releases `pages`.
   */
  keptFrames = false;
  private nextReq = 1;
  /** Frames for the domain's vifs waiting for the end of the current socket read (netRx). */
  private readonly rxBatch = new FrameBatcher(RX_BATCH_BYTES, RX_BATCH_FRAMES, (b) => this.send({ type: "net-rx", ...b }, false, batchTransfer(b)));
  private rxFlushQueued = false;
  private readonly deviceWaits = new Map<number, (error?: string, forced?: boolean) => void>();

  /**
   * A hot-plug request to the worker; resolves when done (forced: a device removed before its front-end
   * closed), rejects with the worker's reason.
   */
  device(op: DistributiveOmit<DeviceOp, "req">): Promise<{ forced: boolean }> {
    if (!this.running) return Promise.reject(new Error("the domain is not running"));
    const req = this.nextReq++;
    return new Promise((resolve, reject) => {
      this.deviceWaits.set(req, (error, forced) => (error === undefined ? resolve({ forced: forced === true }) : reject(new Error(error))));
      this.send({ ...op, req } as DeviceOp);
    });
  }

  /** xl mem-max: the domain's maximum reservation in pages. */
  setMaxPages(pages: number): void { this.send({ type: "mem-max", pages }); }

  pause(): void { this.stats[STAT_PAUSED] = 1; this.send({ type: "pause" }); }
  unpause(): void { this.stats[STAT_PAUSED] = 0; this.send({ type: "unpause" }); }
  /**
   * A domain restored paused whose unpause was sent behind its build (Hypervisor.unpause, a migration): the
   * worker wrote "paused" into the stats as it built it, before it took the unpause; called once built.
   */
  builtUnpaused(): void { this.stats[STAT_PAUSED] = 0; }

  /**
   * Unpauses and resolves with the wall time (ms since the epoch, µs precision) at which the domain's next slice
   * began — its first guest instruction after the pause (a migration's "running at the target"). Rejects if the
   * domain stops first.
   */
  unpauseReport(): Promise<number> {
    // Not started (no port yet): the message would be dropped and the report never come.
    if (!this.running) return Promise.reject(new Error("the domain's worker has not started"));
    return new Promise<number>((resolve, reject) => {
      this.runWaits.push((r) => (r instanceof Error ? reject(r) : resolve(r)));
      this.stats[STAT_PAUSED] = 0;
      this.send({ type: "unpause", report: true });
    });
  }

  /**
   * Xen's suspend protocol: arms the worker so the guest's next SHUTDOWN_suspend is taken, runs `ask` (which
   * writes control/shutdown = "suspend"), and resolves with the vCPU that suspended once the domain is paused
   * so; rejects after `timeoutMs` (disarmed: a later suspend is cancelled) or when the domain stops.
   */
  suspend(ask: () => void, timeoutMs: number): Promise<number> {
    if (!this.running) return Promise.reject(new Error("the domain is not running"));
    if (this.suspendWait !== null) return Promise.reject(new Error("a suspend is under way already"));
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.suspendWait = null;
        this.send({ type: "suspend", op: "disarm" });
        reject(new Error(`the guest did not suspend within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.suspendWait = (r) => { clearTimeout(timer); this.suspendWait = null; if (r instanceof Error) reject(r); else resolve(r); };
      this.send({ type: "suspend", op: "arm" });
      try { ask(); } catch (e) { this.suspendWait((e as Error)); this.send({ type: "suspend", op: "disarm" }); }
    });
  }

  /** A suspended guest goes on in this domain: its SHUTDOWN_suspend returns 1, cancelled (unpause follows). */
  cancelSuspend(): void { this.send({ type: "suspend", op: "cancel" }); }

  private suspendWait: ((r: number | Error) => void) | null = null;

  /** unpauseReport()s waiting for the worker's "ran". */
  private readonly runWaits: ((r: number | Error) => void)[] = [];

  /** A domain restored from a state (start with `from`): how long its Machine took to build in the worker, and
   * when that began (wall ms). Null until then. */
  restoreTiming: { restoreMs: number; at: number } | null = null;

  /** A domain restored from a state that runs: the wall time (ms since the epoch) its first slice began, or NaN. */
  firstRunAt = NaN;
  private firstRunWait: ((at: number) => void) | null = null;

  /** Resolves with firstRunAt once the worker reported it, or with NaN after `ms` (or at once if it stopped). */
  firstRun(ms: number): Promise<number> {
    if (!Number.isNaN(this.firstRunAt) || !this.running) return Promise.resolve(this.firstRunAt);
    return new Promise<number>((resolve) => {
      const timer = setTimeout(() => { this.firstRunWait = null; resolve(NaN); }, ms);
      this.firstRunWait = (at) => { clearTimeout(timer); resolve(at); };
    });
  }

  get running(): boolean { return this.port !== undefined && !this.done; }

  /** Starts the domain in `thread` (shared with other runners), or in a thread of its own. */
  start(o: DomainRunOptions, thread?: VmThread): void {
    if (this.port !== undefined) throw new Error("DomainRunner.start: already started (use a new DomainRunner)");
    let storeLink: SharedArrayBuffer | undefined;
    if (o.store !== undefined) {
      storeLink = newStoreLinkBuffer();
      this.link = new StoreLinkHost(o.store, storeLink, (m) => this.send(m), o.log ?? (() => {}));
    }
    if (o.paused) this.stats[STAT_PAUSED] = 1;
    const data: VmWorkerData = { memMiB: o.memMiB, vcpus: o.vcpus, kernel: o.kernel, initrd: o.initrd, cmdline: o.cmdline,
      xen: o.xen ?? false, name: o.name ?? "domU", disks: o.disks, vifs: o.vifs, domid: o.domid, uuid: o.uuid,
      pool: o.pool?.buffer, storeLink, paused: o.paused, stats: this.statsBuf, sched: o.sched,
      ...(o.firmwareVars !== undefined ? { firmwareVars: o.firmwareVars, firmwareBoot: o.firmwareBoot, firmwareRng: o.firmwareRng } : {}),
      ...(o.from !== undefined ? { from: { snapshot: o.from.snapshot, memory: o.from.memory, newDomain: o.from.newDomain === true, report: true, ...(o.from.lazy !== undefined ? { lazy: o.from.lazy } : {}) } } : {}) };
    if (o.from?.guest !== undefined) this.link?.restoreGuest(o.from.guest);
    this.ownThread = thread === undefined;
    const t = thread ?? new VmThread();
    this.thread = t;
    this.exited = new Promise((resolve) => { this.goneResolve = resolve; });
    this.data = { ...data, kernel: new Uint8Array(0), initrd: undefined, from: undefined };
    this.port = t.add(this, data);
    this.listen(this.port);
  }

  /** The thread the domain runs in. */
  get currentThread(): VmThread | undefined { return this.thread; }

  /**
   * Moves the running domain to `to` (Xen's vCPU migration between pCPUs, for a whole domain): its worker saves
   * it between slices (src/hv/machine.ts DomainSnapshot), lets it go, and `to` restores it over the same shared
   * memory — RAM is not copied. Console input, frames and other host messages sent meanwhile are held and
   * delivered after the move; the store link holds the guest's replies. Rejects (the domain runs on where it
   * was) when the domain cannot be saved now; the domain crashes if the restore is refused.
   */
  moveTo(to: VmThread, o: { resave?: boolean } = {}): Promise<MoveResult | null> {
    if (!this.running || this.data === null) return Promise.reject(new Error("the domain is not running"));
    if (this.moving !== null) return Promise.reject(new Error("the domain is moving already"));
    if (this.saving !== null) return Promise.reject(new Error("the domain is being saved"));
    if (this.dirtyLogging) return Promise.reject(new Error("the domain is being migrated live"));
    if (to === this.thread) return Promise.resolve(null);
    if (!to.alive) return Promise.reject(new Error("the target thread has ended"));
    return new Promise<MoveResult | null>((resolve, reject) => {
      this.moving = { to, held: [], resave: o.resave === true, result: null,
        done: (e) => { const r = this.moving?.result ?? null; this.moving = null; if (e === undefined) resolve(r); else reject(e); } };
      this.link?.hold();
      const m: HostToWorker = { type: "move-out" };
      this.port!.postMessage(m);
      this.thread!.ring();
    });
  }

  /**
   * Saves the domain for a save file (xl save): its worker saves it between slices and pauses it; the store
   * link holds the guest's replies meanwhile. The caller reads the memory, then calls finishSave. Rejects (the
   * domain runs on) when it cannot be saved now.
   */
  save(o: { dirtyFinal?: boolean } = {}): Promise<SavedRun> {
    if (!this.running) return Promise.reject(new Error("the domain is not running"));
    if (this.moving !== null || this.saving !== null) return Promise.reject(new Error("the domain is being moved or saved already"));
    return new Promise<SavedRun>((resolve, reject) => {
      this.saving = { done: (r) => { this.saving = null; if (r instanceof Error) reject(r); else resolve(r); } };
      this.link?.hold();
      this.send({ type: "save", dirtyFinal: o.dirtyFinal === true });
    });
  }

  /** Dirty-log steps of a live migration waiting for their answer, in order (the worker answers in order). */
  private readonly dirtyWaits: ((r: Int32Array | Error) => void)[] = [];

  /**
   * A live migration's dirty-log step in the domain's worker (between slices): start, a round (its pages;
   * `final` after save(): with the pages Xen writes in place, and logging stops), stop. Rejects when the
   * worker refuses (e.g. vCPUs on threads of their own) or the domain stops. Not while a move is under way:
   * the log lives in the worker (moveTo refuses while it runs).
   */
  dirty(op: "start" | "round" | "stop", final = false): Promise<Int32Array> {
    if (!this.running) return Promise.reject(new Error("the domain is not running"));
    if (this.moving !== null) return Promise.reject(new Error("the domain is being moved between threads"));
    if (op === "start") this.dirtyLogging = true;
    if (op === "stop" || final) this.dirtyLogging = false;
    return new Promise<Int32Array>((resolve, reject) => {
      this.dirtyWaits.push((r) => {
        if (r instanceof Error) { if (op === "start") this.dirtyLogging = false; reject(r); } // refused: no log runs
        else resolve(r);
      });
      this.send({ type: "dirty", op, final });
    });
  }

  /** The domain memory, as the worker gave it with dirty("start"): a live migration reads RAM from it. */
  liveMemory: WebAssembly.Memory | null = null;

  /** A live migration logs this domain's writes in its worker: it must not move to another thread meanwhile. */
  private dirtyLogging = false;

  /** After save(): `resume` gives the guest what the link held and unpauses it unless `paused`; else nothing (destroy follows). */
  finishSave(resume: boolean, paused: boolean): void {
    if (!resume) return;
    this.link?.resume();
    if (!paused) this.unpause();
  }

  /** The old worker saved the domain: restore it in the target thread. */
  private movedOut(m: Extract<WorkerToHost, { type: "moved-out" }>): void {
    const mv = this.moving!;
    const to = mv.to;
    const from = this.thread!;
    this.port!.close();
    from.leave(this);
    if (this.ownThread) { this.ownThread = false; void from.close(); }
    if (!to.alive) {
      this.keptFrames = true; // the domain is lost with its frames claimed: whoever destroys it releases them
      this.threadDied("the target thread of a move ended");
      mv.done(new Error("the target thread ended"));
      return;
    }
    mv.result = { saved: m.snapshot };
    const data: VmWorkerData = { ...this.data!, paused: m.paused, from: { snapshot: m.snapshot, memory: m.memory, resave: mv.resave } };
    this.thread = to;
    const port = to.add(this, data);
    this.port = port;
    this.link?.rebind((x) => this.send(x, true));
    this.listen(port);
  }

  private listen(port: MessagePort): void {
    port.on("message", (m: WorkerToHost) => {
      if (this.link !== null && m.type.startsWith("xs-")) { this.link.handle(m); return; }
      switch (m.type) {
        case "started": this.emit("started"); break;
        case "moved-out": this.movedOut(m); break;
        case "move-failed":
          this.link?.resume(); // the same worker: give back what was held
          this.flushHeld();
          this.moving?.done(new Error(`the domain cannot be saved now: ${m.reason}`));
          break;
        case "saved":
          if (m.dirty !== undefined) this.dirtyLogging = false; // the worker stopped the log with the save's last round
          this.saving?.done({ snapshot: m.snapshot, memory: m.memory, paused: m.paused, guest: this.link?.guestSave() ?? { watches: [], replies: [] },
            ...(m.dirty !== undefined ? { dirty: m.dirty } : {}) });
          break;
        case "dirty-pages": {
          const w = this.dirtyWaits.shift();
          if (m.memory !== undefined) this.liveMemory = m.memory;
          w?.(m.error !== undefined ? new Error(m.error) : m.pages);
          break;
        }
        case "save-failed":
          this.link?.resume();
          this.saving?.done(new Error(`the domain cannot be saved now: ${m.reason}`));
          break;
        case "moved-in":
          if (this.moving === null) { // restored from a save file (start with from)
            if (m.restoreMs !== undefined && m.at !== undefined) this.restoreTiming = { restoreMs: m.restoreMs, at: m.at };
            this.emit("started");
            break;
          }
          if (this.moving?.result && m.resaved !== undefined) this.moving.result.resaved = m.resaved;
          this.flushHeld();
          this.emit("moved", this.thread!);
          this.moving?.done();
          break;
        case "sched-wake": this.emit("sched-wake"); break;
        case "ran":
          if (m.first === true) { this.firstRunAt = m.at; const w = this.firstRunWait; this.firstRunWait = null; w?.(m.at); }
          else this.runWaits.shift()?.(m.at);
          break;
        case "suspended": this.stats[STAT_PAUSED] = 1; this.suspendWait?.(m.vcpu); break;
        case "output": this.emit("output", m.bytes); break;
        case "net-tx": forEachFrame(m, (vif, frame) => this.emit("net-tx", vif, frame)); break;
        case "net-flow": this.emit("net-flow", m.vif, m.full); break;
        case "kept-frames": this.keptFrames = true; break;
        case "device-done": { const w = this.deviceWaits.get(m.req); this.deviceWaits.delete(m.req); w?.(m.error, m.forced); break; }
        case "stopped": this.finish({ state: m.state, reason: m.reason }); break;
        case "gone":
          this.finish({ state: "crashed", reason: "the emulator thread let the domain go without a stop report" });
          this.leave();
          break;
        case "failed":
          if (this.moving !== null) {
            // The restore in the new thread was refused: the domain is lost (its old copy let go already), its
            // frames still claimed — whoever destroys it releases them.
            this.keptFrames = true;
            this.moving.done(new Error(`restore in the new thread failed: ${m.message}`));
            this.finish({ state: "crashed", reason: `move between threads failed: ${m.message}` });
            this.leave();
            break;
          }
          this.done = true;
          this.emit("error", new DomainStartError(m.code, m.message));
          this.leave();
          break;
      }
    });
  }

  private flushHeld(): void {
    const held = this.moving?.held ?? [];
    if (this.moving !== null) this.moving.held = [];
    for (const h of held) this.send(h, true);
  }

  /** The thread ended or failed while the domain was in it. */
  threadDied(reason: string): void {
    this.finish({ state: "crashed", reason });
    this.leave();
  }

  /** The domain's Machine is gone from its thread: release the port, the link and (if its own) the thread. */
  private leave(): void {
    if (this.gone) return;
    this.gone = true;
    this.link?.dispose();
    this.port?.close();
    const t = this.thread!;
    t.leave(this);
    if (this.ownThread) void t.close().then(() => this.goneResolve());
    else this.goneResolve();
  }

  /** Console input for the guest (copied by postMessage). */
  input(bytes: Uint8Array): void {
    this.send({ type: "input", bytes });
  }

  /**
   * A frame from the network for vif `vif` (copied into the next batch; the batch goes to the worker once the
   * caller's synchronous work — a socket read's frames — is done).
   */
  netRx(vif: number, frame: Uint8Array): void {
    if (!this.running) return;
    this.rxBatch.add(vif, frame);
    if (!NET_BATCH) { this.rxBatch.flush(); return; }
    if (this.rxFlushQueued) return;
    this.rxFlushQueued = true;
    queueMicrotask(() => { this.rxFlushQueued = false; this.rxBatch.flush(); });
  }

  /** Ends the domain: 'stopped' is emitted with state "destroyed" (unless it stopped already). */
  async destroy(): Promise<void> {
    if (this.port === undefined) return;
    if (!this.done) {
      this.send({ type: "destroy" });
      // A thread that does not let the domain go in time is stuck (every domain in it is): end it.
      const t = this.thread!;
      const timer = setTimeout(() => t.terminate(), DESTROY_GRACE_MS);
      await this.exited;
      clearTimeout(timer);
      this.finish({ state: "destroyed", reason: "destroyed by the toolstack" });
    } else {
      await this.exited;
    }
  }

  /** Resolves when the domain's Machine has left its thread (and a thread of its own has ended). */
  whenExited(): Promise<void> { return this.exited; }

  /** Wakes the domain's thread (the scheduler granted a permit). */
  ring(): void { this.thread?.ring(); }

  /** Posts to the worker; while the domain moves, host messages wait (`direct`: the move's own traffic). */
  private send(m: HostToWorker, direct = false, transfer?: ArrayBuffer[]): void {
    if (this.port === undefined || this.done) return;
    if (this.moving !== null && !direct) { this.moving.held.push(m); return; }
    this.port.postMessage(m, transfer);
    this.thread!.ring();
  }

  private finish(s: DomainStopped): void {
    if (this.done) return;
    this.done = true;
    this.saving?.done(new Error(`the domain stopped (${s.state})`));
    for (const w of this.dirtyWaits.splice(0)) w(new Error(`the domain stopped (${s.state})`));
    for (const w of this.runWaits.splice(0)) w(new Error(`the domain stopped (${s.state})`));
    const fw = this.firstRunWait;
    this.firstRunWait = null;
    fw?.(NaN);
    this.suspendWait?.(new Error(`the domain stopped (${s.state})`));
    for (const w of this.deviceWaits.values()) w("the domain stopped");
    this.deviceWaits.clear();
    this.emit("stopped", s);
  }
}
