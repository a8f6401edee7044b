/**
 * A thread that runs domains' Machines (worker_threads entry; spawned by VmThread in vm-host.ts). One thread may
 * hold several domains (the hypervisor groups them to share one V8 isolate: bench/density); each domain has its
 * own MessagePort to its DomainRunner, handed over in an "add" message on the thread's parent port.
 *
 * The loop never yields to the worker's event loop: it drains every port synchronously with receiveMessageOnPort
 * (new domains, console input, 'destroy', …), runs one slice of each domain that may run (not paused, holding the
 * credit scheduler's permit when it has one), and posts console output in batches. When no domain has a runnable
 * vCPU it sleeps with Atomics.wait on the thread's doorbell until the next timer is due or the host rings (it
 * increments the doorbell and notifies after every post and every permit), so idle guests cost the host ~no CPU
 * (STYLE.md "Idle is free"). A fault in one domain's emulation ends that domain only; the thread goes on.
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from "node:worker_threads";
import { useCompileWorker, type CompileClient } from "../cpu/arm64/jit/compiler.js";
import { Machine, MachineError, type DomainSnapshot } from "./machine.js";
import { collectGarbage } from "../machine/board.js";
import { IdleGc } from "./idle-gc.js";
import { warmRestore } from "./warm-restore.js";
import type { VifAttach } from "./xen-pv.js";
import { XENSTORE_ERROR_PROTO } from "../xen/xenbus-ring.js";
import { setBlkIoDoorbell, setBlkShare, type BlkDiskConfig } from "../backends/blk/index.js";
import type { NetVifConfig } from "../backends/net/index.js";
import { XenbusStateClosed } from "../backends/xenbus-backend.js";
import { nameDomainThread } from "./dom0-usage.js";
import { FramePool } from "./frame-pool.js";
import { RemoteStore, RemoteXenbusPeer, type StoreLinkDown, type StoreLinkUp } from "./store-link.js";
import { VCPU_THREADS, startVcpuThreads } from "./vcpu-thread.js";
import { PERMIT_WAITED, SCHED_PERMIT, SCHED_WANT, cpuAt } from "./sched-words.js";
import { threadCpu } from "../common/thread-cpu.js";
import { FrameBatcher, batchTransfer, forEachFrame, type FrameBatch } from "../net/frame-batch.js";
import { helpWithPageJobs, type PageJobsMessage } from "./save-jobs.js";
import type { LazyRamMessage } from "./lazy-ram.js";
import { E_HOME_SLEEP, handoffStats, hostNowMs } from "../machine/handoff-stats.js";

// The stats words live in vm-stats.ts, which the host imports without loading this thread's modules.
export { SCHED_PERMIT, SCHED_WANT } from "./sched-words.js";
export { STAT_BLOCKED, STAT_CPU_S, STAT_IO, STAT_ONLINE, STAT_PAGES, STAT_PAUSED, STAT_VCPU_S, STAT_WORDS } from "./vm-stats.js";
import { STAT_BLOCKED, STAT_CPU_S, STAT_IO, STAT_ONLINE, STAT_PAGES, STAT_PAUSED, STAT_VCPU_S, STAT_WORDS } from "./vm-stats.js";
import { MAX_BOARD_VCPUS } from "../machine/layout.js";

/**
 * What the host hands the worker (workerData). Byte arrays over an ArrayBuffer are copied by structured clone;
 * over a SharedArrayBuffer they are shared — the hypervisor passes kernel and ramdisk so (src/hv/image-cache.ts).
 */
export interface VmWorkerData {
  memMiB: number;
  vcpus: number;
  kernel: Uint8Array;
  initrd?: Uint8Array;
  cmdline: string;
  /** Boot as a Xen DomU (MachineOptions.xen), with this domain name in XenStore. */
  xen: boolean;
  name: string;
  /** Virtual block devices (blkback) for a Xen domain. */
  disks?: BlkDiskConfig[];
  /** Virtual network interfaces (netback); their frames travel as net-tx / net-rx messages. */
  vifs?: NetVifConfig[];
  /** Domain id (default 1) and UUID (16 bytes) of a Xen domain. */
  domid?: number;
  uuid?: Uint8Array;
  /** The hypervisor's frame pool (FramePool's buffer): the domain's frames are claimed from it. */
  pool?: SharedArrayBuffer;
  /** The link to the hypervisor's one XenStore in the main thread (src/hv/store-link.ts); else a private store. */
  storeLink?: SharedArrayBuffer;
  /** Start with the vCPUs paused (until an "unpause" message). */
  paused?: boolean;
  /**
   * The credit scheduler's control words (sched-words.ts: a permit, a want word and CPU seconds per vCPU): this
   * thread uses vCPU 0's — [SCHED_PERMIT] non-zero while it may run (set by the hypervisor; PERMIT_WAITED: someone waits for a slot), [SCHED_WANT] 1 while one of
   * its vCPUs is runnable (set here) — and each vCPU thread its own. Absent: always permitted.
   */
  sched?: SharedArrayBuffer;
  /** Float64Array(STAT_WORDS) the worker keeps current for the host (see STAT_*). */
  stats?: SharedArrayBuffer;
  /**
   * Continue a domain saved in another thread ("move-out") instead of booting: its snapshot and its domain
   * memory (shared: RAM is not copied). The rest of the data describes the same domain.
   */
  from?: { snapshot: DomainSnapshot; memory: WebAssembly.Memory; resave?: boolean; newDomain?: boolean; report?: boolean; lazy?: LazyRamMessage };
  /** An HVM domain's variable store file (`kernel` is then its firmware: src/hv/machine.ts). */
  firmwareVars?: string;
  /** With firmwareVars: xl's boot= letters (MachineOptions.firmwareBoot). */
  firmwareBoot?: string;
  /** With firmwareVars: a virtio-rng device (MachineOptions.firmwareRng). */
  firmwareRng?: boolean;
}

/** What the thread gets at start (workerData). */
export interface VmThreadData {
  /** Int32Array(1) over this buffer: a counter the host bumps (Atomics.add + notify) after each message. */
  doorbell: SharedArrayBuffer;
  /** The process's table of disk shares between domains (src/backends/blk/io-share.ts), the same for every thread. */
  blkShare?: SharedArrayBuffer;
  /** A port to the process's compile worker (compiler.ts compileWorkerClient): the thread's engines use it. */
  compile?: CompileClient;
}

/** Messages on the thread's parent port. */
export type HostToThread =
  /** A new domain: its data and its port (transferred). */
  | { type: "add"; data: VmWorkerData; port: MessagePort }
  /** No domain left and none coming: end the thread. */
  | { type: "exit" }
  /** Help read a save file's pages into a new domain memory (save-jobs.ts; sent only to a thread without domains). */
  | { type: "read-pages"; jobs: PageJobsMessage }
  /** Rehearse a restore (warm-restore.ts) before one comes in the downtime (sent only to a thread without domains). */
  | { type: "warm" };

/** Hot-plug requests (xl block-attach/-detach, network-attach/-detach); answered with device-done. */
export type DeviceOp =
  | { type: "attach-disk"; req: number; disk: BlkDiskConfig }
  /** force (xl block-detach -f): remove without waiting for the front-end to close. */
  | { type: "detach-disk"; req: number; devid: number; force?: boolean }
  | { type: "attach-vif"; req: number; vif: NetVifConfig }
  | { type: "detach-vif"; req: number; devid: number; force?: boolean };

/** Frame batches held at most while a saved domain waits for its host (savedRx); later ones are dropped. */
const SAVED_RX_FRAMES = 256;

/** How long a hot-unplug waits for the guest to let go (libxl's LIBXL_DESTROY_TIMEOUT) before it fails. */
const UNPLUG_WAIT_MS = 10_000;

export type HostToWorker = { type: "input"; bytes: Uint8Array } | { type: "destroy" } | DeviceOp
  /** xl mem-max: the most pages populate_physmap may bring the domain to. */
  | { type: "mem-max"; pages: number }
  /** `report`: answer "ran" when the domain's next slice starts (a restore's first guest instruction). */
  | { type: "pause" } | { type: "unpause"; report?: boolean }
  /** Save the domain between slices and let it go from this thread (answered moved-out or move-failed). */
  | { type: "move-out" }
  /** Save the domain between slices for a save file and stay here paused (answered saved or save-failed); the
   * host reads the memory, then sends unpause (xl save -c) or destroy. */
  | { type: "save"; dirtyFinal?: boolean }
  /**
   * Live migration (src/hv/save-live.ts): `start` the dirty log, take a `round` of dirty pages (`final`: the
   * domain is paused and saved; the last round, with the pages Xen writes in place, and the log stops), or
   * `stop` it. Answered dirty-pages.
   */
  | { type: "dirty"; op: "start" | "round" | "stop"; final?: boolean }
  /**
   * Xen's suspend protocol (docs/save-format.md): `arm` — the toolstack asks the guest to suspend, so its next
   * SHUTDOWN_suspend is taken (answered "suspended", the domain paused); `disarm` — not any more; `cancel` —
   * a taken suspend ends in this domain (the hypercall returns 1; unpause follows).
   */
  | { type: "suspend"; op: "arm" | "disarm" | "cancel" }
  | StoreLinkDown
  /** Frames from the network (src/net/frame-batch.ts: per frame its vif's devid and length, then the bytes). */
  | ({ type: "net-rx" } & FrameBatch);

export type WorkerToHost =
  | { type: "started" }
  /** A domain restored from another thread ("from") runs here now; with from.resave, its state as restored. */
  | { type: "moved-in"; resaved?: DomainSnapshot; restoreMs?: number; at?: number }
  /** The guest suspended itself (SHUTDOWN_suspend taken from vCPU `vcpu`): the domain is paused here now. */
  | { type: "suspended"; vcpu: number }
  /**
   * The slice an unpause with `report` asked about starts now: `at`, wall time (ms since the epoch, µs precision).
   * `first`: the first slice of a domain restored with from.report (not an unpause's).
   */
  | { type: "ran"; at: number; first?: boolean }
  /** The domain saved itself for a move and left this thread: its snapshot and memory (the last message). */
  | { type: "moved-out"; snapshot: DomainSnapshot; memory: WebAssembly.Memory; paused: boolean }
  /** It could not save now (a back-end busy, a hot-unplug going on): it keeps running here. */
  | { type: "move-failed"; reason: string }
  /** Saved for a save file: the domain is paused here now (`paused`: it was paused before the save). */
  | { type: "saved"; snapshot: DomainSnapshot; memory: WebAssembly.Memory; paused: boolean; dirty?: Int32Array }
  | { type: "save-failed"; reason: string }
  /** The answer to a dirty op: a round's pages (buffer page numbers; empty for start/stop), or why it failed. */
  | { type: "dirty-pages"; pages: Int32Array; error?: string; memory?: WebAssembly.Memory }
  /**
   * The hypervisor should tick its scheduler now: sent once each time the domain wants a pCPU and has no permit,
   * and when it blocks holding one.
   */
  | { type: "sched-wake" }
  | StoreLinkUp
  | { type: "output"; bytes: Uint8Array }
  /** Frames the guest sent since the last batch, of any of its vifs (buffers transferred; frame-batch.ts). */
  | ({ type: "net-tx" } & FrameBatch)
  /** netback's backpressure for vif `vif`: stop (full) or resume reading its bridge (NetBackendOptions.onRxBacklog). */
  | { type: "net-flow"; vif: number; full: boolean }
  /** A DeviceOp finished (error: why it could not be done; forced: removed without the front-end closing). */
  | { type: "device-done"; req: number; error?: string; forced?: boolean }
  /** The guest stopped (poweroff/reboot/crashed) or the host destroyed it ("destroyed"). */
  | { type: "stopped"; state: "poweroff" | "reboot" | "crashed" | "destroyed"; reason: string }
  /** Sent (before "gone") when the domain's frames stay claimed for the hypervisor to release. */
  | { type: "kept-frames" }
  /** The domain's Machine is disposed (its disk images closed, its frames released unless kept): the last message. */
  | { type: "gone" }
  /** The machine could not be built (bad memory size, vcpus, kernel image): nothing ran. */
  | { type: "failed"; code: string; message: string };

/**
 * Longest sleep without looking at the doorbell. Every host message and permit rings the doorbell and
 * Machine.runSlice reports the next timer deadline (at most 1 s ahead), so this only bounds a lost wake-up.
 */
const MAX_SLEEP_MS = 1000;
/** Sleep while every runnable domain waits for its permit (the host rings on a permit; this bounds a lost one). */
const PERMIT_WAIT_MS = 10;
/** Console output is posted when this many bytes are pending, or this long after the first pending byte. */
const OUT_BATCH_BYTES = 16384;
const OUT_BATCH_MS = 10;
/**
 * Frames the guest sends go to the host in one message per slice (src/net/frame-batch.ts), or sooner when this
 * many bytes or frames are waiting; $XENO_NET_BATCH=0 posts a message per frame (for A/B).
 */
const NET_BATCH = process.env.XENO_NET_BATCH !== "0";
/**
 * netback's backpressure to the bridge socket (net-flow messages), only with $XENO_NET_RX_FLOW=1: with Debian 12's
 * passt it moved the drops from netback's rx queue into the bridge daemon's queue and did not reduce the
 * retransmissions (docs/benchmarks.md, 2026-12-07, "backpressure"), so it is off by default.
 */
const NET_FLOW = process.env.XENO_NET_RX_FLOW === "1";
const TX_BATCH_BYTES = 256 * 1024, TX_BATCH_FRAMES = 512;

/** One domain in this thread: its Machine, its port, and what the loop keeps for it. */
class Guest {
  readonly m: Machine;
  /** True once the domain is finished here (stopped, destroyed or failed): the loop drops it. */
  done = false;
  private pending: Uint8Array[] = [];
  /** Frames the guest sent during this slice (flushNet posts them). */
  private readonly txBatch = new FrameBatcher(TX_BATCH_BYTES, TX_BATCH_FRAMES,
    (b) => this.port.postMessage({ type: "net-tx", ...b } satisfies WorkerToHost, batchTransfer(b)));
  private pendingBytes = 0;
  private pendingSince = 0;
  private readonly remote: RemoteStore | null;
  private readonly link: { peer: RemoteXenbusPeer | null } = { peer: null };
  private readonly stats: Float64Array;
  private paused: boolean;
  /**
   * Frames from the network that came after a save for a file or a migration (saveForFile) and before the
   * next unpause: held, not written into the guest's rx ring, whose pages the host is still reading and whose
   * netback state is already saved (a frame written then made the ring newer than the state: a restore
   * refused it, or the guest's rx ring went wrong). Delivered on unpause (a checkpoint), lost with the domain
   * otherwise (frames in flight during a migration's downtime are lost, as on a wire). Null: not saved.
   */
  private savedRx: Extract<HostToWorker, { type: "net-rx" }>[] | null = null;
  private readonly sched: Int32Array | null;
  /** The same words as Float64 (sched-words.ts cpuAt): this thread's own CPU seconds at cpuAt(0). */
  private readonly schedF64: Float64Array | null;
  /** The vCPU threads' permit requests seen (Board.schedAsks). */
  private asksSeen = 0;
  /** A sched-wake was posted and no permit came yet. */
  private askedPermit = false;
  /**
   * When the guest next has something to do (performance.now() ms; 0: now): its vCPUs all wait and this is the
   * next timer or vif window. Until then, or a message for it, the domain neither wants a pCPU nor runs — the
   * thread's doorbell also rings for the other domains in the thread.
   */
  private wakeAt = 0;
  /** An unpause asked when the guest runs again: "ran" is posted as its next slice starts. */
  private reportRun = false;
  /** A restore (from.report) that runs: "ran" with `first` is posted as its first slice starts. */
  private reportFirst = false;
  private guestStopped = false;
  /** Hot-unplugs waiting for the front-end: failed after UNPLUG_WAIT_MS (checked by the loop: no timers here). */
  private readonly unplugs: { deadline: number; expire(): void }[] = [];
  private readonly withPool: boolean;
  /** Pages of a domain without the Xen layer (no balloon): its RAM. */
  private readonly memPages: number;

  /** This thread's CPU clock (null: the host has none, slices are counted in wall time). */
  private readonly cpuClock = threadCpu();
  /** Seconds the domain's vCPU threads had run at the last step (their share goes into STAT_CPU_S). */
  private remoteCpuS = 0;
  /** Per vCPU, its thread's seconds (Board.threadSeconds) and its home run seconds (Board.homeRunS) at the last
   * step: their increments go into STAT_VCPU_S + k. Fixed size, reused (no allocation per step). */
  private readonly seenThreadS = new Float64Array(MAX_BOARD_VCPUS);
  private readonly seenHomeS = new Float64Array(MAX_BOARD_VCPUS);

  /**
   * Builds the Machine; throws what its constructor throws (after reporting "failed"). `doorbell`: this thread's
   * (vCPU threads ring it).
   */
  constructor(private readonly port: MessagePort, d: VmWorkerData, doorbell: SharedArrayBuffer) {
    this.remote = d.storeLink !== undefined ? new RemoteStore((msg) => port.postMessage(msg), d.storeLink) : null;
    this.stats = d.stats !== undefined ? new Float64Array(d.stats) : new Float64Array(STAT_WORDS);
    this.paused = d.paused === true;
    this.sched = d.sched !== undefined ? new Int32Array(d.sched) : null;
    this.schedF64 = d.sched !== undefined ? new Float64Array(d.sched) : null;
    this.withPool = d.pool !== undefined;
    this.memPages = d.memMiB * 256;
    const remote = this.remote, link = this.link;
    const t0 = performance.now();
    try {
      this.m = new Machine({
        memMiB: d.memMiB, vcpus: d.vcpus, kernel: d.kernel, initrd: d.initrd, cmdline: d.cmdline,
        xen: d.xen, name: d.name, disks: d.disks, domid: d.domid, uuid: d.uuid,
        pool: d.pool !== undefined ? new FramePool(d.pool) : undefined,
        xenstore: remote ?? undefined,
        xenbusPeer: remote === null ? undefined : (domid) => (link.peer = new RemoteXenbusPeer((msg) => port.postMessage(msg), domid)),
        vifs: (d.vifs ?? []).map((v) => this.vifAttach(v)),
        from: d.from,
        firmwareVars: d.firmwareVars, firmwareBoot: d.firmwareBoot, firmwareRng: d.firmwareRng,
        consoleOut: (b) => {
          if (this.pendingBytes === 0) this.pendingSince = performance.now();
          this.pending.push(b.slice());
          this.pendingBytes += b.length;
        },
      });
    } catch (e) {
      this.post({ type: "failed", code: e instanceof MachineError ? e.code : "MACHINE_ERROR", message: e instanceof Error ? e.message : String(e) });
      this.done = true;
      port.close();
      throw e;
    }
    // The images are in guest RAM now; drop the references (shared buffers stay with the hypervisor's cache).
    d.kernel = new Uint8Array(0);
    d.initrd = undefined;
    this.stats[STAT_PAGES] = this.m.xen !== null ? this.m.xen.account.pages : this.memPages;
    if (d.from === undefined) this.stats[STAT_ONLINE] = 1; // the boot vCPU (the others come up by PSCI CPU_ON)
    this.stats[STAT_PAUSED] = this.paused ? 1 : 0;
    this.reportFirst = d.from?.report === true && !this.paused;
    if (d.from === undefined) this.post({ type: "started" });
    // restoreMs: the Machine built from the snapshot (a migration's downtime includes it); at: when it began.
    else this.post({ type: "moved-in", restoreMs: performance.now() - t0, at: performance.timeOrigin + t0, ...(d.from.resave === true ? { resaved: this.m.save() } : {}) });
    // vCPUs 1..n-1 on threads of their own (vcpu-thread.ts), parked while the domain is paused; after the resave
    // above, which must see the state as restored.
    if (VCPU_THREADS && d.vcpus > 1) {
      // Their MMUs have no lazy loader (their stage-2 map is another thread's copy): a lazy restore loads whole first.
      this.m.finishLazy();
      startVcpuThreads(this.m.board, this.m.clock, { doorbell, sched: d.sched ?? null });
      if (this.paused) this.m.board.parkRemotes(false);
      // The vCPU threads' seconds live in the domain memory and move with it: what they show now (a domain moved
      // here) was charged by the worker before, so count from it (test/hv/move-cpu; from 0 it was charged twice).
      const board = this.m.board;
      this.remoteCpuS = board.remoteCpuSeconds();
      for (let k = 1; k < d.vcpus; k++) this.seenThreadS[k] = board.threadSeconds(k);
    }
  }

  private post(m: WorkerToHost, transfer?: ArrayBuffer[]): void { this.port.postMessage(m, transfer); }

  private vifAttach(config: NetVifConfig): VifAttach {
    const devid = config.devid;
    return { config, out: (f: Uint8Array): void => { this.txBatch.add(devid, f); if (!NET_BATCH) this.txBatch.flush(); },
      ...(NET_FLOW ? { flow: (full: boolean): void => this.post({ type: "net-flow", vif: devid, full }) } : {}) };
  }

  /** Posts the frames the guest sent (end of a slice, or before any other message that must not pass them). */
  private flushNet(): void { this.txBatch.flush(); }

  flush(): void {
    this.flushNet();
    if (this.pendingBytes === 0) return;
    const bytes = new Uint8Array(this.pendingBytes);
    let o = 0;
    for (const c of this.pending) { bytes.set(c, o); o += c.length; }
    this.pending = [];
    this.pendingBytes = 0;
    this.post({ type: "output", bytes });
  }

  /**
   * Handles every message waiting on the domain's port. Frames from the network are handed to netback as one
   * batch (receive(…, more)) and the vifs flushed at the end, so TCP segments that came together can be joined
   * into GSO packets for the guest (src/backends/net/gro.ts).
   */
  drain(): void {
    const m = this.m;
    let rx = false;
    for (let msg = receiveMessageOnPort(this.port); msg !== undefined && !this.done; msg = receiveMessageOnPort(this.port)) {
      const h = msg.message as HostToWorker;
      this.wakeAt = 0;
      // A batch of received frames ends before any other message: netback may hold a segment to join it with
      // the next (gro.ts), and a save, move or pause must not find it delivered only afterwards (the rx ring
      // would then be newer than the saved netback state).
      if (rx && h.type !== "net-rx") { m.netFlush(); rx = false; }
      if (h.type === "net-rx") {
        if (this.savedRx === null) { forEachFrame(h, this.rxFrame); rx = true; }
        else if (this.savedRx.length < SAVED_RX_FRAMES) this.savedRx.push(h); // else dropped, as a full NIC queue drops
      }
      else if (h.type === "attach-disk" || h.type === "detach-disk" || h.type === "attach-vif" || h.type === "detach-vif") this.deviceOp(h);
      else if (h.type === "xs-watch") this.remote?.deliver(h);
      else if (h.type === "xs-bytes") m.xenPv?.xenbus.send(h.bytes);
      else if (h.type === "xs-closed") { this.link.peer?.remoteClosed(); m.xenPv?.xenbus.fail(XENSTORE_ERROR_PROTO, h.reason); }
      else if (h.type === "mem-max") { if (m.xen !== null) m.xen.account.maxPages = h.pages; }
      else if (h.type === "pause") { this.paused = true; m.board.parkRemotes(false); }
      // askedPermit: a sched-wake asked before the pause may have been dropped (a paused domain wants nothing).
      else if (h.type === "unpause") {
        this.paused = false; this.askedPermit = false; m.board.unparkRemotes();
        if (h.report === true) this.reportRun = true;
        const held = this.savedRx;
        this.savedRx = null;
        if (held !== null) { for (const b of held) forEachFrame(b, this.rxFrame); rx ||= held.length > 0; }
      }
      else if (h.type === "input") m.input(h.bytes);
      else if (h.type === "move-out") this.moveOut();
      else if (h.type === "save") this.saveForFile(h.dirtyFinal === true);
      else if (h.type === "dirty") this.dirtyOp(h);
      else if (h.type === "suspend") {
        if (h.op === "cancel") m.cancelSuspend(); else m.armSuspend(h.op === "arm");
      }
      else if (h.type === "destroy") {
        m.flushOut();
        this.flush();
        this.post({ type: "stopped", state: "destroyed", reason: "destroyed by the toolstack" });
        this.finish();
      }
    }
    if (rx && !this.done) m.netFlush();
  }

  /** One frame of a net-rx batch (more may follow: netback may hold it to join it with the next). */
  private readonly rxFrame = (vif: number, frame: Uint8Array): void => { this.m.netReceive(vif, frame, true); };

  /**
   * Saves the domain (between slices: nothing runs) and lets it go from this thread without ending it: the
   * host restores the snapshot in another thread over the same memory. If it cannot be saved now, it runs on.
   */
  private moveOut(): void {
    const m = this.m;
    if (this.unplugs.length > 0) { this.post({ type: "move-failed", reason: "a hot-unplug is in progress" }); return; }
    let snapshot: DomainSnapshot;
    try {
      snapshot = m.save();
    } catch (e) {
      if (!this.paused) m.resumeVcpus();
      this.post({ type: "move-failed", reason: e instanceof Error ? e.message : String(e) });
      return;
    }
    m.flushOut();
    this.flush();
    this.post({ type: "moved-out", snapshot, memory: m.board.memory, paused: this.paused });
    m.release();
    this.done = true;
    this.port.close();
  }

  /**
   * Saves the domain (between slices) for a save file and pauses it: the host reads its memory while nothing
   * runs, then unpauses or destroys it. If it cannot be saved now, it runs on.
   */
  private saveForFile(dirtyFinal: boolean): void {
    const m = this.m;
    if (this.unplugs.length > 0) { this.post({ type: "save-failed", reason: "a hot-unplug is in progress" }); return; }
    let snapshot: DomainSnapshot;
    try {
      snapshot = m.save();
    } catch (e) {
      if (!this.paused) m.resumeVcpus(); // save() parked the vCPU threads
      this.post({ type: "save-failed", reason: e instanceof Error ? e.message : String(e) });
      return;
    }
    const wasPaused = this.paused;
    this.paused = true;
    this.savedRx = [];
    this.stats[STAT_PAUSED] = 1;
    m.flushOut();
    this.flush();
    // A live migration's last dirty round comes with the state (one message less in its downtime).
    const dirty = dirtyFinal && m.dirtyLogging ? m.dirtyRound(true) : undefined;
    this.post({ type: "saved", snapshot, memory: m.board.memory, paused: wasPaused, ...(dirty !== undefined ? { dirty } : {}) });
  }

  /** A live migration's dirty-log step (between slices: no vCPU is inside run()). */
  private dirtyOp(h: Extract<HostToWorker, { type: "dirty" }>): void {
    const m = this.m;
    let pages: Int32Array = new Int32Array(0);
    try {
      if (h.op === "start") m.startDirtyLog();
      else if (h.op === "stop") m.stopDirtyLog();
      else pages = m.dirtyRound(h.final === true);
    } catch (e) {
      this.post({ type: "dirty-pages", pages, error: e instanceof Error ? e.message : String(e) });
      return;
    }
    // start: the domain memory too, which the host reads while the domain runs.
    this.post({ type: "dirty-pages", pages, ...(h.op === "start" ? { memory: m.board.memory } : {}) }, [pages.buffer as ArrayBuffer]); // a fresh, unshared array
  }

  private deviceOp(h: DeviceOp): void {
    const m = this.m;
    const reply = (error?: string, forced?: boolean): void =>
      this.post({ type: "device-done", req: h.req, ...(error !== undefined ? { error } : {}), ...(forced === true ? { forced } : {}) });
    try {
      switch (h.type) {
        case "attach-disk": m.attachDisk(h.disk); reply(); break;
        case "attach-vif": m.attachVif(this.vifAttach(h.vif)); reply(); break;
        case "detach-disk": case "detach-vif": {
          const dev = h.type === "detach-disk" ? m.diskDevice(h.devid) : m.vifDevice(h.devid);
          if (dev === null) { reply(`no ${h.type === "detach-disk" ? "disk" : "vif"} with devid ${h.devid}`); break; }
          // As libxl: online = 0 and Closing, then wait for the front-end to reach Closed. Without force, a
          // front-end that does not close in UNPLUG_WAIT_MS fails the request and the device stays (Closing), as
          // xl's safe removal does; force (or a later forced request) removes it at once.
          let done = false;
          const finish = (forced: boolean): void => { if (done) return; done = true; dev.close(); reply(undefined, forced); };
          dev.device.unplug(() => finish(false));
          const fs = dev.device.frontInt("state");
          if (h.force === true) { finish(fs !== XenbusStateClosed && fs >= 0); break; }
          if (fs === XenbusStateClosed || fs < 0) { finish(false); break; }
          this.unplugs.push({ deadline: Date.now() + UNPLUG_WAIT_MS, expire: () => {
            if (done) return;
            const now = dev.device.frontInt("state");
            // Closed by now, though the close came to an earlier, failed request's callback.
            if (now === XenbusStateClosed || now < 0) { finish(false); return; }
            done = true;
            reply(`the guest did not close the device within ${UNPLUG_WAIT_MS / 1000} s (its front-end is in XenbusState ${now}); ` +
              "it stays attached, closing");
          } });
          break;
        }
      }
    } catch (e) {
      reply(e instanceof Error ? e.message : String(e));
    }
  }

  /**
   * One turn of the loop for this domain: hot-unplugs whose wait ended, then a slice if it may run. Returns how
   * long it can wait (ms; 0: it wants to run again at once), PERMIT_WAIT when it wants a pCPU it has no permit for.
   */
  step(): number {
    if (this.unplugs.length > 0) {
      const now = Date.now();
      for (let i = this.unplugs.length - 1; i >= 0; i--) if (now >= this.unplugs[i]!.deadline) this.unplugs.splice(i, 1)[0]!.expire();
    }
    const stats = this.stats, sched = this.sched, m = this.m, board = m.board;
    // vCPU threads' requests and broadcasts are answered whatever else happens (paused, no permit).
    board.serviceRemotes();
    const remoteS = board.remoteCpuSeconds();
    stats[STAT_CPU_S] += remoteS - this.remoteCpuS;
    this.remoteCpuS = remoteS;
    const nv = board.vcpus.length, seenT = this.seenThreadS;
    for (let k = 1; k < nv; k++) {
      const s = board.threadSeconds(k);
      stats[STAT_VCPU_S + k] += s - seenT[k]!;
      seenT[k] = s;
    }
    stats[STAT_PAUSED] = this.paused ? 1 : 0;
    if (this.paused) { this.flush(); return MAX_SLEEP_MS; }
    // A vCPU thread wants a pCPU it has no permit for: the scheduler should look now (its tick may be stopped),
    // whether or not this thread's own vCPUs have anything to do (before 2026-12-07 this came after the early
    // return below, so the ask waited for vCPU 0's next timer).
    if (sched !== null && board.schedAsks() !== this.asksSeen) { this.asksSeen = board.schedAsks(); this.post({ type: "sched-wake" }); }
    if (this.wakeAt !== 0) {
      const left = this.wakeAt - performance.now();
      if (left > 0 && !m.ioCompleted() && !board.homeWoken()) return left;
      this.wakeAt = 0;
    }
    if (sched !== null) {
      Atomics.store(sched, SCHED_WANT, 1);
      if (Atomics.load(sched, SCHED_PERMIT) === 0) {
        // Not its turn on a pCPU: say so once (the hypervisor's tick may be stopped while every domain is idle,
        // and a woken domain should not wait for the next tick); the permit rings the doorbell.
        if (!this.askedPermit) { this.askedPermit = true; this.post({ type: "sched-wake" }); }
        this.flush();
        return PERMIT_WAIT;
      }
      this.askedPermit = false;
    }
    let w: number;
    const cpuClock = this.cpuClock;
    const t0 = performance.now(), c0 = cpuClock !== null ? cpuClock.seconds() : 0;
    if (this.reportRun) { this.reportRun = false; this.post({ type: "ran", at: performance.timeOrigin + t0 }); }
    if (this.reportFirst) { this.reportFirst = false; this.post({ type: "ran", at: performance.timeOrigin + t0, first: true }); }
    try {
      w = m.runSlice();
    } catch (e) {
      // An exception from the CPU or a device ends this domain only (STYLE.md: a fault in one domain's code
      // path ends that domain at worst).
      this.flush();
      const err = e instanceof Error ? e : new Error(String(e));
      this.guestStopped = true;
      this.post({ type: "stopped", state: "crashed", reason: `emulator fault: ${err.message}${err.stack ? `\n${err.stack}` : ""}` });
      this.finish();
      return MAX_SLEEP_MS;
    }
    const t1 = performance.now();
    // What the slice cost: this thread's CPU time (src/common/thread-cpu.ts), else the wall time it took.
    const wallS = (t1 - t0) / 1000, ranS = cpuClock !== null ? Math.max(0, cpuClock.seconds() - c0) : wallS;
    this.flushNet(); // what the guest sent during the slice, in one message
    if (w > 0) {
      this.wakeAt = t1 + w;
      // The home's vCPUs wait: this thread wants no pCPU (vCPU threads hold permits of their own).
      if (sched !== null) {
        Atomics.store(sched, SCHED_WANT, 0);
        // Blocked with a pCPU: it keeps the slot (credit.ts) and runs at once when it wakes, unless someone waits
        // for a slot — then have the scheduler look now rather than at its next tick (a thread-mate may be waiting
        // for exactly this one).
        if (Atomics.load(sched, SCHED_PERMIT) === PERMIT_WAITED) this.post({ type: "sched-wake" });
      }
    }
    stats[STAT_CPU_S] += ranS;
    // The credit scheduler is charged the slot's time (wall): it shares out pCPU slots, and a slot held is used
    // whether or not the host's kernel ran this thread all along. Charged CPU time, the holders of an overloaded
    // host never used up their credit and weights stopped mattering (test/hv/sched: 512:256 ran 0.9:1 at load 21).
    if (this.schedF64 !== null) this.schedF64[cpuAt(0)] += wallS;
    // The slice per vCPU: each home vCPU k ≥ 1 its own runs (the board times them in wall time: scaled to the
    // slice's CPU time), vCPU 0 the rest (see STAT_VCPU_S); they add up to the slice's.
    const home = board.homeRunS, seenH = this.seenHomeS, scale = wallS > 0 ? Math.min(1, ranS / wallS) : 0;
    let others = 0;
    for (let k = 1; k < nv; k++) {
      const d = (home[k]! - seenH[k]!) * scale;
      if (d !== 0) { stats[STAT_VCPU_S + k] += d; seenH[k] = home[k]!; others += d; }
    }
    stats[STAT_VCPU_S] += ranS - others;
    stats[STAT_BLOCKED] = w > 0 && !board.remoteBusy() ? 1 : 0;
    stats[STAT_PAGES] = m.xen !== null ? m.xen.account.pages : this.memPages;
    let online = 0;
    for (const v of m.vcpus) if (v.online) online++;
    stats[STAT_ONLINE] = online;
    m.publishIo(stats, STAT_IO);
    if (m.suspendedBy !== null && !this.paused) {
      // The guest's SHUTDOWN_suspend was taken: it stays stopped (paused) until the host saves it, then
      // destroys it or cancels the suspend and unpauses it.
      this.paused = true;
      board.parkRemotes(false);
      stats[STAT_PAUSED] = 1;
      this.flush();
      this.post({ type: "suspended", vcpu: m.suspendedBy });
      return MAX_SLEEP_MS;
    }
    if (w < 0) {
      this.flush();
      this.guestStopped = true;
      this.post({ type: "stopped", state: m.state === "running" ? "crashed" : m.state, reason: m.reason });
      this.finish();
      return MAX_SLEEP_MS;
    }
    if (this.pendingBytes >= OUT_BATCH_BYTES || (this.pendingBytes > 0 && (w > 0 || performance.now() - this.pendingSince >= OUT_BATCH_MS))) this.flush();
    return w;
  }

  /**
   * Ends the domain here: disk images are closed (their writes are in the files already). Frames go back to the
   * pool now only when the toolstack destroyed the domain: a domain that shut down or crashed keeps its memory
   * until destroyed, as in Xen (the hypervisor then releases what the stats say it held).
   */
  finish(): void {
    if (this.done) return;
    this.done = true;
    const keep = this.guestStopped && this.withPool;
    if (keep) this.post({ type: "kept-frames" });
    try { this.m.dispose(keep); } finally {
      this.post({ type: "gone" });
      this.port.close();
    }
  }
}

/** Returned by Guest.step while the domain waits for the scheduler's permit. */
const PERMIT_WAIT = -2;

function main(parent: NonNullable<typeof parentPort>, t: VmThreadData): void {
  nameDomainThread(); // Domain-0's CPU time in `xeno list` excludes this thread's (dom0-usage.ts)
  const doorbell = new Int32Array(t.doorbell);
  setBlkIoDoorbell(t.doorbell); // blkback's I/O threads ring it when a request completes
  setBlkShare(t.blkShare ?? null); // disks of every domain share the host's disk service fairly
  if (t.compile !== undefined) useCompileWorker(t.compile); // the process's one compile worker (vm-host.ts)
  const guests: Guest[] = [];
  const hs = handoffStats("home");
  /** Rotates which domain runs first, so none is always last in a busy thread. */
  let first = 0;
  const idleGc = new IdleGc(performance.now()); // a GC once the thread's domains are idle after work (idle-gc.ts)
  for (;;) {
    // Read the doorbell before draining: a message posted after this read changes it, so the wait below
    // returns at once instead of sleeping through the message.
    const seen = Atomics.load(doorbell, 0);
    const t0 = performance.now(), had = guests.length;
    for (let msg = receiveMessageOnPort(parent); msg !== undefined; msg = receiveMessageOnPort(parent)) {
      const h = msg.message as HostToThread;
      if (h.type === "exit") { for (const g of guests) g.finish(); return; }
      if (h.type === "read-pages") { helpWithPageJobs(h.jobs); continue; }
      if (h.type === "warm") { warmRestore(); continue; }
      try { guests.push(new Guest(h.port, h.data, t.doorbell)); } catch { /* reported to its runner as "failed" */ }
    }
    let wait = MAX_SLEEP_MS, idle = true;
    const n = guests.length;
    first = n > 0 ? (first + 1) % n : 0;
    for (let i = 0; i < n; i++) {
      const g = guests[(first + i) % n]!;
      g.drain();
      if (g.done) continue;
      const w = g.step();
      if (w <= 0) idle = false;
      wait = w === PERMIT_WAIT ? Math.min(wait, PERMIT_WAIT_MS) : Math.min(wait, w);
    }
    for (let i = guests.length - 1; i >= 0; i--) if (guests[i]!.done) guests.splice(i, 1);
    if (idleGc.round(t0, performance.now(), idle, guests.length !== had)) collectGarbage();
    if (wait > 0) {
      if (hs === null) Atomics.wait(doorbell, 0, seen, wait);
      else {
        // Hand-off counters (XENO_HANDOFF_STATS): the sleep, and how long after a vCPU thread's ring it ended.
        for (const g of guests) g.m.board.homeSleep(true);
        const s0 = hostNowMs();
        Atomics.wait(doorbell, 0, seen, wait);
        hs.add(E_HOME_SLEEP, hostNowMs() - s0);
        for (const g of guests) g.m.board.homeSleep(false);
      }
    }
  }
}

if (parentPort !== null) main(parentPort, workerData as VmThreadData);
