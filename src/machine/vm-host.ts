/**
 * DomainRunner: runs one Machine in its own worker thread (vm-worker.ts) and talks to it by messages.
 *
 *   const r = new DomainRunner();
 *   r.on("output", (bytes) => process.stdout.write(bytes));
 *   r.on("stopped", ({ state, reason }) => …);   // exactly once per start()
 *   r.on("error", (e) => …);                     // the machine could not be built (e.code: MachineError code)
 *   r.start({ memMiB, vcpus, kernel, initrd, cmdline });
 *   r.input(bytes); await r.destroy();
 *
 * Every post is followed by a doorbell ring (Atomics.add + notify) so a worker sleeping in Atomics.wait sees
 * it at once. Until xenod exists a DomainRunner lives in the `xeno create` process; the toolstack will own them.
 */
import { EventEmitter } from "node:events";
import { Worker } from "node:worker_threads";
import type { BlkDiskConfig } from "../backends/blk/index.js";
import type { NetVifConfig } from "../backends/net/index.js";
import type { XenStore } from "../xenstore/index.js";
import type { FramePool } from "../hv/frame-pool.js";
import { StoreLinkHost, newStoreLinkBuffer } from "../hv/store-link.js";
import { STAT_BLOCKED, STAT_CPU_S, STAT_ONLINE, STAT_PAGES, STAT_PAUSED, STAT_WORDS } from "./vm-worker.js";
import type { DeviceOp, HostToWorker, VmWorkerData, WorkerToHost } from "./vm-worker.js";

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
  /** A frame the guest transmitted on vif `vif` (owned by the listener). */
  "net-tx": [number, Uint8Array];
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

export class DomainRunner extends EventEmitter<DomainRunnerEvents> {
  private worker: Worker | undefined;
  private doorbell: Int32Array | undefined;
  private done = false;
  private exited: Promise<void> = Promise.resolve();
  private link: StoreLinkHost | null = null;
  private readonly statsBuf = new SharedArrayBuffer(STAT_WORDS * 8);
  private readonly stats = new Float64Array(this.statsBuf);

  /** Live figures the worker publishes (cheap: shared memory). */
  get cpuSeconds(): number { return this.stats[STAT_CPU_S]!; }
  get blocked(): boolean { return this.stats[STAT_BLOCKED] === 1; }
  get paused(): boolean { return this.stats[STAT_PAUSED] === 1; }
  /** Current pages (after ballooning); 0 until the worker first ran. */
  get pages(): number { return this.stats[STAT_PAGES]!; }
  get onlineVcpus(): number { return this.stats[STAT_ONLINE]!; }

  /** The worker ended leaving its frames claimed (the guest stopped by itself): the owner releases `pages`. */
  keptFrames = false;
  private nextReq = 1;
  private readonly deviceWaits = new Map<number, (error?: string) => void>();

  /** A hot-plug request to the worker; resolves when done, rejects with the worker's reason. */
  device(op: DistributiveOmit<DeviceOp, "req">): Promise<void> {
    if (!this.running) return Promise.reject(new Error("the domain is not running"));
    const req = this.nextReq++;
    return new Promise((resolve, reject) => {
      this.deviceWaits.set(req, (error) => (error === undefined ? resolve() : reject(new Error(error))));
      this.send({ ...op, req } as DeviceOp);
    });
  }

  /** xl mem-max: the domain's maximum reservation in pages. */
  setMaxPages(pages: number): void { this.send({ type: "mem-max", pages }); }

  pause(): void { this.stats[STAT_PAUSED] = 1; this.send({ type: "pause" }); }
  unpause(): void { this.stats[STAT_PAUSED] = 0; this.send({ type: "unpause" }); }

  get running(): boolean { return this.worker !== undefined && !this.done; }

  start(o: DomainRunOptions): void {
    if (this.worker !== undefined) throw new Error("DomainRunner.start: already started (use a new DomainRunner)");
    const sab = new SharedArrayBuffer(4);
    this.doorbell = new Int32Array(sab);
    let storeLink: SharedArrayBuffer | undefined;
    if (o.store !== undefined) {
      storeLink = newStoreLinkBuffer();
      this.link = new StoreLinkHost(o.store, storeLink, (m) => this.send(m), o.log ?? (() => {}));
    }
    if (o.paused) this.stats[STAT_PAUSED] = 1;
    const data: VmWorkerData = { memMiB: o.memMiB, vcpus: o.vcpus, kernel: o.kernel, initrd: o.initrd, cmdline: o.cmdline,
      xen: o.xen ?? false, name: o.name ?? "domU", disks: o.disks, vifs: o.vifs, doorbell: sab, domid: o.domid, uuid: o.uuid,
      pool: o.pool?.buffer, storeLink, paused: o.paused, stats: this.statsBuf, sched: o.sched };
    const w = new Worker(WORKER_URL, { workerData: data, stdout: false, stderr: false,
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GEN_MB } });
    this.worker = w;
    w.on("message", (m: WorkerToHost) => {
      if (this.link !== null && m.type.startsWith("xs-")) { this.link.handle(m); return; }
      switch (m.type) {
        case "started": this.emit("started"); break;
        case "sched-wake": this.emit("sched-wake"); break;
        case "output": this.emit("output", m.bytes); break;
        case "net-tx": this.emit("net-tx", m.vif, m.frame); break;
        case "kept-frames": this.keptFrames = true; break;
        case "device-done": { const w = this.deviceWaits.get(m.req); this.deviceWaits.delete(m.req); w?.(m.error); break; }
        case "stopped": this.finish({ state: m.state, reason: m.reason }); break;
        case "failed":
          this.done = true;
          this.emit("error", new DomainStartError(m.code, m.message));
          break;
      }
    });
    // An uncaught error in the worker (outside the guarded loop): the domain crashed.
    w.on("error", (e) => this.finish({ state: "crashed", reason: `emulator thread failed: ${e.message}` }));
    this.exited = new Promise((resolve) => {
      w.on("exit", (code) => {
        this.link?.dispose();
        this.finish({ state: "crashed", reason: `emulator thread exited (code ${code}) without a stop report` });
        resolve();
      });
    });
  }

  /** Console input for the guest (copied by postMessage). */
  input(bytes: Uint8Array): void {
    this.send({ type: "input", bytes });
  }

  /** A frame from the network for vif `vif` (copied by postMessage). */
  netRx(vif: number, frame: Uint8Array): void {
    if (!this.running) return;
    this.send({ type: "net-rx", vif, frame });
  }

  /** Ends the domain: 'stopped' is emitted with state "destroyed" (unless it stopped already). */
  async destroy(): Promise<void> {
    const w = this.worker;
    if (w === undefined) return;
    if (!this.done) {
      this.send({ type: "destroy" });
      const timer = setTimeout(() => { void w.terminate(); }, DESTROY_GRACE_MS);
      await this.exited;
      clearTimeout(timer);
      this.finish({ state: "destroyed", reason: "destroyed by the toolstack" });
    } else {
      await this.exited;
    }
  }

  /** Resolves when the worker thread has ended. */
  whenExited(): Promise<void> { return this.exited; }

  private send(m: HostToWorker): void {
    if (this.worker === undefined || this.done) return;
    this.worker.postMessage(m);
    Atomics.add(this.doorbell!, 0, 1);
    Atomics.notify(this.doorbell!, 0);
  }

  private finish(s: DomainStopped): void {
    if (this.done) return;
    this.done = true;
    for (const w of this.deviceWaits.values()) w("the domain stopped");
    this.deviceWaits.clear();
    this.emit("stopped", s);
  }
}
