/**
 * Fair sharing of the disk service between domains (issue 16): while another domain is using its disk, a disk may
 * run at most SHARE_ALLOWANCE of cost ahead of it — start-time fair queueing by cost over all the disks of the
 * hypervisor process, with a reader between two requests still counted as using its disk for SHARE_ACTIVE_MS.
 *
 * Why a share is needed although every disk has its own queue and I/O thread (io-thread.ts: no request ever waits
 * behind another domain's): what a flat-out writer takes from a random reader in another domain is host CPU, not
 * a place in a queue. A 4 KiB read at queue depth 1 costs its domain's thread ~1 ms of CPU (the guest's kernel,
 * blkfront, the event channel, blkback), and a writer's 128 KiB requests about as much each; with both domains
 * busy on a loaded host the two domain threads split what the host gives the process (bench/io/fair.ts,
 * docs/benchmarks.md session 23: B's domain thread 63–84 % of a core alone, 41 % next to the writer, A's 40 %).
 * Left to the host's CPU scheduler, the writer's share is as large as the reader's, whatever it moves. Charging
 * each request its cost and holding back the domain that is ahead makes the split follow the disk work instead:
 * a writer that moves 128 KiB per request gets as much cost as a reader of 4 KiB requests, so fewer requests,
 * and while its requests wait in its ring its guest sleeps and leaves the CPU to the reader.
 *
 * The model:
 *  - Cost of a request: SHARE_REQ_COST + its data bytes (flushes, discards and refused requests: SHARE_REQ_COST).
 *    A base cost per request plus a cost per byte is blk-iocost's linear model (Documentation/admin-guide/
 *    cgroup-v2.rst, io.cost.model); 32 KiB per request says a random 4 KiB read is worth about 36 KiB of
 *    sequential transfer, roughly what SSDs do (random 4 KiB IOPS × 32 KiB ≈ sequential bandwidth).
 *  - Each disk's virtual time `vt` is the cost it was served. A disk that was not in use for SHARE_FORGET_MS
 *    rejoins at the smallest vt among the disks of other domains in use (no credit banked while idle, as in SFQ,
 *    and no debt kept from a time the others were idle); after a shorter pause it keeps its vt.
 *  - A disk may take a request while its vt ≤ (smallest vt among other domains' disks in use) + SHARE_ALLOWANCE.
 *    Otherwise its requests wait in its ring (the guest sees back-pressure, nothing is refused) and blkback looks
 *    again at its next completion, or SHARE_RETRY_MS later when none is in flight (the I/O thread's timer, as for
 *    the per-disk limit: blk-limit.ts).
 *  - "In use": a request submitted, completed or held back less than SHARE_ACTIVE_MS ago. A reader at queue depth
 *    1 has no request in flight between its reads; counting it as in use for a while after each completion keeps
 *    its share (BFQ and CFQ idle a sync queue for slice_idle, 8 ms, for the same reason). 50 ms, not 8: on this
 *    loaded host a reader's domain thread waited up to 30 ms for a CPU per read (bench/io/fair.ts at load 21), and
 *    a reader that drops out between two reads rejoins level with the writer, which then goes on unheld. A domain
 *    with longer pauses holds nobody back during them. Not work-conserving within that window, by design.
 *  - The price for the held domain is bounded: it is never held longer than SHARE_HOLD_MAX_MS in a row, so next to
 *    a domain that keeps its disk in use with little work (a request every 40 ms, say) it still takes a request
 *    every 40 ms — 25 requests/s, 3.2 MB/s in 128 KiB requests — and its full rate once the other stops.
 *  - A request that is its disk's only one (nothing in flight, nothing after it in its ring) is never held
 *    (blk-back.ts): a reader at queue depth 1 sleeps on it already, so holding it frees no CPU. Without this
 *    rule a writer whose guest was starved of CPU (in use, slowly) held such a reader to its own slow cost rate.
 *  - Only domains hold each other back: disks of one domain do not (each disk has its own share, as Linux blkback
 *    runs one kthread per ring).
 *
 * Shared memory: one SharedArrayBuffer for the whole hypervisor process (made by the host: src/hv/vm-host.ts,
 * handed to every domain thread, setBlkShare), SHARE_SLOTS disks. A slot's owner word is claimed with a
 * compare-and-swap; its numbers are written only by the thread serving that disk and read by the others without
 * locks (a stale value moves one decision by one request). Without a buffer (tests, one domain) there is no share.
 * $XENO_BLK_SHARE=0 turns it off (A/B). Allocation-free after attach.
 */

/** Disks in the table at most (a disk that finds no free slot is served without a share). */
export const SHARE_SLOTS = 128;
/** The cost of a request beyond its data bytes (bytes). */
export const SHARE_REQ_COST = 32 << 10;
/** How far (cost, bytes) a disk may run ahead of the slowest other domain's disk in use. */
export const SHARE_ALLOWANCE = 256 << 10;
/** A disk counts as in use this long after its last submission, completion or hold (ms). */
export const SHARE_ACTIVE_MS = 50;
/** A disk not in use for this long (ms, after its SHARE_ACTIVE_MS) rejoins level with the others; sooner, it keeps its place. */
export const SHARE_FORGET_MS = 1000;
/**
 * A disk is never held back longer than this in a row: then one request goes (ms). 40, not 10: with 10 a writer
 * next to a reader doing fewer than ~450 reads/s took its 100 requests/s anyway (io-fair at load 20–25: A was
 * served 3.7 times B's cost, 125 requests/s, and B kept 38 %).
 */
export const SHARE_HOLD_MAX_MS = 40;
/**
 * A disk held back with nothing in flight looks again after this long (ms); with requests in flight, at their
 * completions. A first version looked every 2 ms, which woke the held domain's thread and its I/O thread 500 times
 * a second each (io-fair at load 26: B kept 37 % although A moved only its share), wake-ups that preempt the
 * reader's thread on a busy host.
 */
export const SHARE_RETRY_MS = 10;

/** Slot words (Int32Array): the owner (domid + 1; 0: free). Numbers (Float64Array): vt, in use until (ms, epoch). */
const N_VT = 0, N_UNTIL = 1, SLOT_NUMS = 2;
export const SHARE_BYTES = SHARE_SLOTS * 4 + SHARE_SLOTS * SLOT_NUMS * 8;

/** This thread's view of the process's table (null: no share). */
let table: { owner: Int32Array; num: Float64Array } | null = null;

/** Tells blkback which table this thread's disks share (the buffer the host made; null: none). */
export function setBlkShare(buffer: SharedArrayBuffer | null): void {
  if (buffer !== null && buffer.byteLength !== SHARE_BYTES) throw new RangeError(`blk share table: ${buffer.byteLength} bytes, want ${SHARE_BYTES}`);
  table = buffer === null ? null : { owner: new Int32Array(buffer, 0, SHARE_SLOTS), num: new Float64Array(buffer, SHARE_SLOTS * 4, SHARE_SLOTS * SLOT_NUMS) };
}

/** A new table for the process (the host makes one and hands it to every domain thread). */
export function newBlkShareBuffer(): SharedArrayBuffer { return new SharedArrayBuffer(SHARE_BYTES); }

/** Milliseconds on a clock every thread of the process agrees on (each thread's performance.now has its own origin). */
export function shareNow(): number { return performance.timeOrigin + performance.now(); }

/** One disk's place in the table. */
export class DiskShare {
  private readonly base: number;
  /** Times a request was held back because this disk was ahead (each a wait of SHARE_RETRY_MS or until a completion). */
  waits = 0;
  /** Since when this disk's next request has been held back (0: it is not). */
  private heldSince = 0;

  private constructor(private readonly owner: Int32Array, private readonly num: Float64Array, readonly slot: number, readonly domid: number) {
    this.base = slot * SLOT_NUMS;
  }

  /** Claims a slot for a disk of `domid` in this thread's table; null without a table, when turned off or full. */
  static claim(domid: number): DiskShare | null {
    const t = table;
    if (t === null || process.env.XENO_BLK_SHARE === "0" || !(domid >= 0)) return null;
    for (let s = 0; s < SHARE_SLOTS; s++) {
      if (Atomics.compareExchange(t.owner, s, 0, domid + 1) === 0) {
        const sh = new DiskShare(t.owner, t.num, s, domid);
        sh.num[sh.base + N_VT] = 0;
        sh.num[sh.base + N_UNTIL] = 0;
        return sh;
      }
    }
    return null;
  }

  /** Gives the slot back (the disk closed or moved to another thread). */
  release(): void {
    this.num[this.base + N_UNTIL] = 0;
    Atomics.compareExchange(this.owner, this.slot, this.domid + 1, 0);
  }

  /** The smallest vt among other domains' disks in use at `now` (Infinity: none). */
  private floor(now: number): number {
    const owner = this.owner, num = this.num, me = this.domid + 1;
    let min = Infinity;
    for (let s = 0; s < SHARE_SLOTS; s++) {
      const o = Atomics.load(owner, s);
      if (o === 0 || o === me) continue;
      const b = s * SLOT_NUMS;
      if (num[b + N_UNTIL]! > now) { const v = num[b + N_VT]!; if (v < min) min = v; }
    }
    return min;
  }

  /** This disk may take a request at `now`: no other domain's disk in use is more than SHARE_ALLOWANCE behind it. */
  mayGo(now: number): boolean {
    const min = this.floor(now);
    if (min === Infinity) return true;
    const b = this.base;
    // Rejoining after a pause of SHARE_FORGET_MS or more: level with the others in use, whichever side it was on
    // (no credit banked while idle, no debt kept from a time the others were idle). After a shorter one it keeps its
    // place: a reader whose thread waited 60 ms for a CPU has not stopped reading, and levelling it with the writer
    // each time wiped the writer's lead (io-fair at load 17: A served 2.6× B's cost).
    const until = this.num[b + N_UNTIL]!;
    if (until <= now && now - until >= SHARE_FORGET_MS) this.num[b + N_VT] = min;
    // Waiting with requests is using the disk: the others keep counting this one (and it keeps its place).
    this.num[b + N_UNTIL] = now + SHARE_ACTIVE_MS;
    if (this.num[b + N_VT]! <= min + SHARE_ALLOWANCE) return true;
    // Held back: but never longer than SHARE_HOLD_MAX_MS in a row (the floor a domain next to a slow one keeps).
    if (this.heldSince === 0) this.heldSince = now;
    else if (now - this.heldSince >= SHARE_HOLD_MAX_MS) return true;
    this.waits++;
    return false;
  }

  /** Charges a request taken at `now` (after mayGo said yes) with `bytes` data bytes; in use SHARE_ACTIVE_MS more. */
  charge(now: number, bytes: number): void {
    const b = this.base;
    this.num[b + N_VT] = this.num[b + N_VT]! + SHARE_REQ_COST + bytes;
    this.num[b + N_UNTIL] = now + SHARE_ACTIVE_MS;
    this.heldSince = 0;
  }

  /** A completion at `now`: the disk stays in use SHARE_ACTIVE_MS more (a reader's next request is coming). */
  touch(now: number): void {
    this.num[this.base + N_UNTIL] = now + SHARE_ACTIVE_MS;
  }

  /** The cost served so far (tests). */
  get vt(): number { return this.num[this.base + N_VT]!; }
}
