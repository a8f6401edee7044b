/**
 * The queue between blkback (on the domain's vCPU thread) and its disk's I/O thread (io-thread.ts): one
 * SharedArrayBuffer per disk, written with Atomics, no message per request.
 *
 * The vCPU thread does everything that needs trust: it copies a request off the guest's ring, validates it,
 * pins its grants and resolves every segment to a (RAM offset, length) run BEFORE it writes the slot; the I/O
 * thread only moves bytes between the image file and those runs of the domain's RAM buffer (pread/pwrite),
 * syncs (fdatasync) or zeros a range, and says how it went. Both sides are single producers: slots are filled
 * in order by the vCPU thread (`submitted`) and completed in order by the I/O thread (`done`), so each side
 * only reads the other's counter — a classic single-producer/single-consumer ring over IO_SLOTS slots.
 *
 * Layout (bytes):
 *   0      ctl: Int32Array(16), the Q_* words
 *   64     slot words: Int32Array(IO_SLOTS × 4): S_OP, S_NRUNS, S_STATUS, S_MSG_LEN
 *   576    slot numbers: Float64Array(IO_SLOTS × (2 + IO_MAX_RUNS)): file position, length (DISCARD), then
 *          the RAM offset of each run
 *   66624  run lengths: Int32Array(IO_SLOTS × IO_MAX_RUNS)
 *   99392  error text: IO_MSG_BYTES per slot (UTF-8 of the host error, written only on failure)
 */
import { BLKIF_RING_SIZE, MAX_INDIRECT_SEGMENTS } from "./blkif.js";

/** Requests in flight per disk at most, over all its rings whatever their size (the rest wait in the rings). */
export const IO_SLOTS = BLKIF_RING_SIZE;
/** Runs (contiguous RAM ranges) per request at most: one per segment before merging. */
export const IO_MAX_RUNS = MAX_INDIRECT_SEGMENTS;
export const IO_MSG_BYTES = 128;

/** ctl words. */
export const Q_SUBMITTED = 0;  // slots filled (free-running u32), written by the vCPU thread
export const Q_DONE = 1;       // slots completed (free-running u32), written by the I/O thread
export const Q_KICK = 2;       // bumped at every submission and at close; the I/O thread sleeps on it
export const Q_CLOSING = 3;    // 1: finish the operation in progress, drop the rest, close the file, end
export const Q_ENDED = 4;      // 1 once the I/O thread closed the file and is ending
export const Q_STATE = 5;      // STATE_*: who owns the queue (see io-thread.ts, BlkIo.ensure)
export const Q_WAKE = 6;       // > 0: ring the doorbell in this many ms (a throttled disk's timer: blk-limit.ts)
const CTL_WORDS = 16;

/** Q_STATE: no thread (none started, or the last one ended while idle), a thread owns the queue, closed. */
export const STATE_NONE = 0, STATE_RUNNING = 1, STATE_CLOSED = 2;
/** An I/O thread idle this long ends (a new one starts at the next request, in ~50 ms): idle disks cost no thread. */
export const IO_IDLE_MS = 30_000;

/**
 * Most completions between two rings of the domain thread's doorbell while requests keep coming (io-thread.ts:
 * it rings once it has caught up with the queue, else every this many). The cost: a completion waits for at most
 * RING_EVERY - 1 requests queued after it before its domain hears of it.
 */
export const RING_EVERY = 8;

/** RING_EVERY, or $XENO_BLK_RING_EVERY (1: a ring per completion, as before; for A/B). */
export function ringEvery(): number {
  const v = Number(process.env.XENO_BLK_RING_EVERY ?? RING_EVERY);
  return Number.isInteger(v) && v >= 1 && v <= IO_SLOTS ? v : RING_EVERY;
}

/** IO_IDLE_MS, or $XENO_BLK_IO_IDLE_MS (tests). */
export function ioIdleMs(): number {
  const v = Number(process.env.XENO_BLK_IO_IDLE_MS ?? IO_IDLE_MS);
  return Number.isFinite(v) && v > 0 ? v : IO_IDLE_MS;
}

/** Slot words. */
export const S_OP = 0, S_NRUNS = 1, S_STATUS = 2, S_MSG_LEN = 3;
const SLOT_WORDS = 4;
/** Slot numbers (Float64): file byte position, byte length (DISCARD only), then runs' RAM offsets. */
export const F_POS = 0, F_LEN = 1, F_RUNS = 2;
const SLOT_F64 = F_RUNS + IO_MAX_RUNS;

/** Operations (S_OP). IO_WRITE | IO_FLAG_SYNC: write, then fdatasync (a WRITE_BARRIER/FLUSH with data). */
export const IO_READ = 0, IO_WRITE = 1, IO_FLUSH = 2, IO_DISCARD = 3, IO_FLAG_SYNC = 0x100;
/** Results (S_STATUS). */
export const IO_OK = 0, IO_ERROR = 1, IO_SHORT_READ = 2;

const OFF_SLOT = CTL_WORDS * 4;
const OFF_F64 = OFF_SLOT + IO_SLOTS * SLOT_WORDS * 4;
const OFF_RUNLEN = OFF_F64 + IO_SLOTS * SLOT_F64 * 8;
const OFF_MSG = OFF_RUNLEN + IO_SLOTS * IO_MAX_RUNS * 4;
export const IO_QUEUE_BYTES = OFF_MSG + IO_SLOTS * IO_MSG_BYTES;

/** Typed views of one queue buffer (each side makes its own over the same SharedArrayBuffer). */
export class IoQueue {
  readonly ctl: Int32Array;
  readonly slot: Int32Array;
  readonly f64: Float64Array;
  readonly runLen: Int32Array;
  readonly msg: Uint8Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(IO_QUEUE_BYTES)) {
    if (buffer.byteLength !== IO_QUEUE_BYTES) throw new RangeError(`blk I/O queue: ${buffer.byteLength} bytes, want ${IO_QUEUE_BYTES}`);
    this.ctl = new Int32Array(buffer, 0, CTL_WORDS);
    this.slot = new Int32Array(buffer, OFF_SLOT, IO_SLOTS * SLOT_WORDS);
    this.f64 = new Float64Array(buffer, OFF_F64, IO_SLOTS * SLOT_F64);
    this.runLen = new Int32Array(buffer, OFF_RUNLEN, IO_SLOTS * IO_MAX_RUNS);
    this.msg = new Uint8Array(buffer, OFF_MSG, IO_SLOTS * IO_MSG_BYTES);
  }

  /** Index of slot `s` (0..IO_SLOTS-1) in `slot`, `f64`, `runLen` and `msg`. */
  static word(s: number): number { return s * SLOT_WORDS; }
  static num(s: number): number { return s * SLOT_F64; }
  static run(s: number): number { return s * IO_MAX_RUNS; }
  static text(s: number): number { return s * IO_MSG_BYTES; }
}

/** What the I/O thread gets (workerData). */
export interface IoThreadData {
  /** The IoQueue buffer. */
  queue: SharedArrayBuffer;
  /** The domain's memory (guest RAM at offset 0): runs are offsets in it, validated by blkback. */
  ram: SharedArrayBuffer;
  /** The image's open file descriptor (process-wide), closed by the thread that sees Q_CLOSING (see stopIo). */
  fd: number;
  /** Image size in bytes (DISCARD to the end truncates, see zeroRange). */
  bytes: number;
  /** The image's format (default raw), path and mode: a qcow2 image is opened again over `fd` in the thread (disk-image.ts). */
  format?: "raw" | "qcow2";
  path?: string;
  readOnly?: boolean;
  /** Int32Array(1) the I/O thread bumps and notifies after each completion (the domain thread's doorbell). */
  doorbell: SharedArrayBuffer | null;
  /** Test only: sleep this long before every operation (a slow disk). */
  delayMs: number;
  /** End after this long without work (the queue goes back to STATE_NONE; the descriptor stays open). */
  idleMs: number;
  /** Ring the doorbell at least every this many completions (RING_EVERY). */
  ringEvery: number;
  /** The thread's name in /proc (comm, ≤ 15 bytes): `xeno-blk<domid>`, so that per-thread CPU can be read per
   * domain (bench/io/fair.ts) and Domain-0's CPU (src/hv/dom0-usage.ts) counts it — a new thread would otherwise
   * inherit its creator's name, the domain thread's. Empty: left as it is. */
  name: string;
}

/** The name an I/O thread of domain `domid` gives itself (IoThreadData.name). */
export function blkIoThreadName(domid: number): string { return `xeno-blk${domid}`; }

/**
 * The doorbell of the thread this module runs in (the domain worker's: src/hv/vm-worker.ts), given to every
 * I/O thread started here, so that a completion wakes a sleeping domain loop to post the response.
 * Per thread by construction (module state lives in the isolate). Null: nobody sleeps on one (tests, which
 * poll or wait with BlkBack.drain).
 */
let threadDoorbell: SharedArrayBuffer | null = null;

/** Tells blkback which doorbell (an Int32Array(1) buffer: Atomics.add + notify on word 0) wakes this thread. */
export function setBlkIoDoorbell(doorbell: SharedArrayBuffer | null): void {
  threadDoorbell = doorbell;
}

export function blkIoDoorbell(): SharedArrayBuffer | null { return threadDoorbell; }
