/**
 * The vCPU-thread side of a disk's I/O thread (io-thread.ts, queue layout in io-queue.ts): starting and
 * restarting the thread, filling queue slots with validated requests, taking completions back in order, and
 * what each slot must remember until then (only this thread knows it): the request id and response
 * operation, the ring it came on (a BlkRing object: a dead one gets no answer), its kind and bytes for the
 * stats, the grants it holds (own pins and persistent entries).
 *
 * One queue and one thread per disk, shared by all its rings (multi-queue): requests of every ring are served
 * in submission order, so a flush covers every write queued before it, whatever ring either came on.
 *
 * Hot path: no allocation, no message per request — typed per-slot arrays made once, Atomics for the hand-over.
 */
import { Worker } from "node:worker_threads";
import type { GrantTable } from "../../xen/grant-table.js";
import type { DiskImage } from "./disk-image.js";
import type { BlkRing } from "./blk-ring.js";
import { releaseGrants, type BlkRequest } from "./blk-request.js";
import { BLKIF_OP_INDIRECT, IND_OP, MAX_INDIRECT_SEGMENTS, REQ_ID } from "./blkif.js";
import { F_LEN, F_POS, F_RUNS, IO_SLOTS, IoQueue, Q_CLOSING, Q_DONE, Q_KICK, Q_STATE, Q_SUBMITTED, Q_WAKE, STATE_CLOSED, STATE_NONE,
  STATE_RUNNING, blkIoThreadName, ioIdleMs, ringEvery, S_MSG_LEN, S_NRUNS, S_OP, S_STATUS, blkIoDoorbell, type IoThreadData } from "./io-queue.js";

/** The I/O thread's entry (io-thread.ts, next to this file in dist/). */
const IO_THREAD_URL = new URL("./io-thread.js", import.meta.url);

/** Request kinds kept per slot for the stats at completion. */
export const KIND_READ = 0, KIND_WRITE = 1, KIND_OTHER = 2;

/** What collect() hands back per completion: slot s of `ring`, its IO_* status (error text in the queue). */
export type CompletionSink = (ring: BlkRing, s: number, io: number) => void;

export class BlkIo {
  readonly q = new IoQueue();
  private readonly io: IoThreadData;
  /** Slots filled (our copy of Q_SUBMITTED) and completions taken back (≤ Q_DONE). */
  private submitted = 0;
  private collected = 0;
  readonly slotId = new Uint8Array(IO_SLOTS * 8);
  readonly slotOp = new Uint8Array(IO_SLOTS);
  private readonly slotRing: (BlkRing | null)[] = new Array<BlkRing | null>(IO_SLOTS).fill(null);
  readonly slotKind = new Uint8Array(IO_SLOTS);
  readonly slotBytes = new Float64Array(IO_SLOTS);
  /** Per slot: grants pinned for the request only (refs) and persistent entries it uses, 256 places each. */
  readonly slotPins = new Uint32Array(IO_SLOTS * MAX_INDIRECT_SEGMENTS);
  readonly slotPents = new Uint16Array(IO_SLOTS * MAX_INDIRECT_SEGMENTS);
  private readonly slotNPins = new Uint16Array(IO_SLOTS);
  private readonly slotNPents = new Uint16Array(IO_SLOTS);
  private readonly slotPinWrite = new Uint8Array(IO_SLOTS);

  private constructor(private readonly disk: DiskImage, ram: SharedArrayBuffer, private readonly gnttab: GrantTable,
    private readonly log: (line: string) => void, domid: number) {
    this.io = { queue: this.q.buffer, ram, fd: disk.descriptor, bytes: disk.bytes,
      format: disk.format, path: disk.path, readOnly: disk.readOnly, doorbell: blkIoDoorbell(),
      delayMs: disk.delayMs, idleMs: ioIdleMs(), ringEvery: ringEvery(), name: domid >= 0 ? blkIoThreadName(domid) : "" };
  }

  /** Sets up the queue and starts its thread; null (logged) when it cannot: the disk then stays synchronous. */
  static start(disk: DiskImage, ram: ArrayBufferLike, gnttab: GrantTable, log: (line: string) => void, domid = -1): BlkIo | null {
    if (!(ram instanceof SharedArrayBuffer)) { log("guest RAM is not shared: I/O stays on the vCPU thread"); return null; }
    const io = new BlkIo(disk, ram, gnttab, log, domid);
    Atomics.store(io.q.ctl, Q_STATE, STATE_RUNNING);
    return io.spawn() ? io : null;
  }

  /** The slot the next submit() fills (map a request's grants into its slotPins/slotPents places). */
  get nextSlot(): number { return this.submitted & (IO_SLOTS - 1); }

  /** Requests handed over and not taken back. */
  get inFlight(): number { return (this.submitted - this.collected) >>> 0; }

  /** The thread completed requests not taken back yet. */
  get completions(): boolean { return (Atomics.load(this.q.ctl, Q_DONE) >>> 0) !== this.collected; }

  /**
   * Starts an I/O thread for the queue, whose Q_STATE this thread just set to STATE_RUNNING (the new thread owns
   * the queue from then on). False when it could not be started: Q_STATE is back to STATE_NONE, logged.
   */
  private spawn(): boolean {
    try {
      // trackUnmanagedFds off: the descriptor was opened on this thread; an I/O thread uses it and, at close, closes it.
      const w = new Worker(IO_THREAD_URL, { workerData: this.io, stdout: false, stderr: false, trackUnmanagedFds: false,
        resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 } });
      // Events reach a thread whose event loop runs (tests, the main thread); a domain worker's never does, and
      // the I/O thread catches every I/O error itself.
      w.on("error", (e) => this.log(`I/O thread failed: ${e.message}`));
      w.unref();
      return true;
    } catch (e) {
      Atomics.store(this.q.ctl, Q_STATE, STATE_NONE);
      this.log(`cannot start an I/O thread (${(e as Error)?.message ?? String(e)})`);
      return false;
    }
  }

  /**
   * After a submission (and from service() while requests wait): an I/O thread that ended while idle is
   * started again. The thread gives the queue up with a compare-and-swap RUNNING → NONE and then looks at
   * Q_SUBMITTED once more; this thread publishes Q_SUBMITTED and then swaps NONE → RUNNING: whichever order
   * they come in, exactly one of them owns the queue and serves the request (io-thread.ts).
   */
  ensure(): void {
    const ctl = this.q.ctl;
    if (Atomics.load(ctl, Q_STATE) === STATE_NONE && Atomics.compareExchange(ctl, Q_STATE, STATE_NONE, STATE_RUNNING) === STATE_NONE) {
      this.spawn();
    }
  }

  /**
   * Asks the I/O thread to end; answers nothing more. The descriptor: closed here when no thread owns the
   * queue (NONE → CLOSED, disk.release()), else the thread closes it once the operation in progress is done.
   */
  stop(): void {
    const ctl = this.q.ctl;
    Atomics.store(ctl, Q_CLOSING, 1);
    Atomics.add(ctl, Q_KICK, 1);
    Atomics.notify(ctl, Q_KICK);
    if (Atomics.compareExchange(ctl, Q_STATE, STATE_NONE, STATE_CLOSED) !== STATE_NONE) this.disk.release();
  }

  /**
   * Hands request `r` (validated; its grants in this slot's places, r.npins/r.npents) of `ring` to the thread
   * in slot nextSlot: `op`, file position `pos` and, for READ/WRITE, the runs in r.segOff/segLen (adjacent ones
   * merged), for DISCARD the length `len`.
   */
  submit(ring: BlkRing, r: BlkRequest, op: number, pos: number, len: number, nseg: number, kind: number, bytes: number): void {
    const q = this.q;
    const s = this.submitted & (IO_SLOTS - 1);
    const w = IoQueue.word(s), f = IoQueue.num(s), rr = IoQueue.run(s);
    let nruns = 0;
    for (let i = 0; i < nseg;) {
      const off = r.segOff[i]!;
      let l = r.segLen[i++]!;
      while (i < nseg && r.segOff[i] === off + l) l += r.segLen[i++]!;
      q.f64[f + F_RUNS + nruns] = off;
      q.runLen[rr + nruns++] = l;
    }
    q.slot[w + S_OP] = op;
    q.slot[w + S_NRUNS] = nruns;
    q.slot[w + S_MSG_LEN] = 0;
    q.f64[f + F_POS] = pos;
    q.f64[f + F_LEN] = len;
    const req = r.req, reqOp = r.op;
    for (let i = 0; i < 8; i++) this.slotId[s * 8 + i] = req[REQ_ID + i]!;
    this.slotOp[s] = reqOp === BLKIF_OP_INDIRECT ? req[IND_OP]! : reqOp;
    this.slotRing[s] = ring;
    this.slotKind[s] = kind;
    this.slotBytes[s] = bytes;
    this.slotNPins[s] = nseg > 0 ? r.npins : 0;
    this.slotNPents[s] = nseg > 0 ? r.npents : 0;
    this.slotPinWrite[s] = r.pinWrite ? 1 : 0;
    // Publish: the Atomics store orders the slot's contents before the count the I/O thread reads.
    this.submitted = (this.submitted + 1) >>> 0;
    Atomics.store(q.ctl, Q_SUBMITTED, this.submitted | 0);
    Atomics.add(q.ctl, Q_KICK, 1);
    Atomics.notify(q.ctl, Q_KICK);
    this.ensure();
  }

  /**
   * Takes the thread's completions in order: gives each request's grants back (before its response is
   * visible: blkfront ends its grants when it sees the response, and fails the device if one is still in
   * use), then hands it to `sink`. Returns how many were taken.
   */
  collect(sink: CompletionSink): number {
    const done = Atomics.load(this.q.ctl, Q_DONE) >>> 0;
    let k = 0;
    for (; this.collected !== done; k++) {
      const s = this.collected & (IO_SLOTS - 1), base = s * MAX_INDIRECT_SEGMENTS;
      const ring = this.slotRing[s]!;
      releaseGrants(this.gnttab, ring.pgnt, this.slotPins, this.slotNPins[s]!, this.slotPinWrite[s] === 1,
        this.slotPents, this.slotNPents[s]!, base);
      this.slotNPins[s] = 0;
      this.slotNPents[s] = 0;
      this.slotRing[s] = null;
      this.collected = (this.collected + 1) >>> 0;
      sink(ring, s, this.q.slot[IoQueue.word(s) + S_STATUS]!);
    }
    return k;
  }

  /** The host's error text of slot s (only on failure). */
  errorText(s: number): string {
    const t = IoQueue.text(s);
    return Buffer.from(this.q.msg.subarray(t, t + this.q.slot[IoQueue.word(s) + S_MSG_LEN]!)).toString("utf8");
  }

  /** Asks the thread to ring the domain thread's doorbell in `ms` (a throttled disk's retry; see blk-limit.ts). */
  wakeIn(ms: number): void {
    const ctl = this.q.ctl;
    Atomics.store(ctl, Q_WAKE, Math.max(1, Math.ceil(ms)));
    Atomics.add(ctl, Q_KICK, 1);
    Atomics.notify(ctl, Q_KICK);
    this.ensure();
  }

  /** Waits (blocking) until the thread moves Q_DONE past `done` or `ms` pass. */
  waitDone(done: number, ms: number): void { Atomics.wait(this.q.ctl, Q_DONE, done, ms); }

  get doneCount(): number { return Atomics.load(this.q.ctl, Q_DONE); }
}
