/**
 * A disk's optional I/O limit (Xeno's `rate=` and `iops=` disk-spec keys, an extension of xl's disk grammar;
 * Linux blkback has none, QEMU's throttling.* and netback's credit scheduler are the models): bytes per second
 * moved by reads and writes, and requests per second, each a token bucket.
 *
 *  - Each bucket refills continuously at its rate and holds at most BURST_MS worth of it (at least one 128 KiB
 *    request's bytes, one request), so an idle disk cannot bank a longer burst. One second, as QEMU's default
 *    throttling.*-max-length: with 100 ms, a guest at queue depth 1 lost the tokens of its own pauses (each
 *    throttled request waits for the domain loop to come back to it) and bench/io stayed 15-35 % under the
 *    limit; with one second it reached it (docs/benchmarks.md, 2026-12-07).
 *  - A request may be taken while every limited bucket is above zero; it is then charged in full (its bytes,
 *    one request), which may take a bucket below zero: a request larger than the burst still goes, and the
 *    long-run rate holds because the debt is paid back before the next one.
 *  - A throttled ring keeps its requests (the guest sees back-pressure, nothing is refused); dueIn() says when
 *    the buckets are above zero again.
 *
 * Time is in milliseconds of the caller's clock. Allocation-free.
 */

/** Most a bucket holds: this long at its rate. */
export const BURST_MS = 1000;
/** Least a byte bucket holds (one default-size indirect request: 32 segments × 4 KiB). */
export const MIN_BURST_BYTES = 128 << 10;

export interface BlkLimitConfig {
  /** Bytes per second read and written (0 or absent: no limit). */
  bytesPerSecond?: number;
  /** Requests per second (0 or absent: no limit). */
  iops?: number;
}

export class BlkLimit {
  private bytes: number;
  private ops: number;
  private readonly maxBytes: number;
  private readonly maxOps: number;
  private last: number;

  constructor(readonly bytesPerSecond: number, readonly iops: number, now: number) {
    for (const [what, v] of [["bytes per second", bytesPerSecond], ["iops", iops]] as const) {
      if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`disk limit: bad ${what} ${v}`);
    }
    this.maxBytes = Math.max(MIN_BURST_BYTES, (bytesPerSecond * BURST_MS) / 1000);
    this.maxOps = Math.max(1, (iops * BURST_MS) / 1000);
    this.bytes = this.maxBytes;
    this.ops = this.maxOps;
    this.last = now;
  }

  /** Adds what the time since the last call earned (at most a burst). */
  refill(now: number): void {
    const dt = now - this.last;
    if (dt <= 0) return;
    this.last = now;
    if (this.bytesPerSecond > 0) this.bytes = Math.min(this.maxBytes, this.bytes + (this.bytesPerSecond * dt) / 1000);
    if (this.iops > 0) this.ops = Math.min(this.maxOps, this.ops + (this.iops * dt) / 1000);
  }

  /** A request may be taken now (as of the last refill). */
  get ready(): boolean {
    return (this.bytesPerSecond === 0 || this.bytes > 0) && (this.iops === 0 || this.ops > 0);
  }

  /** Charges a request of `bytes` data bytes (0 for flush, discard and refused requests). */
  charge(bytes: number): void {
    if (this.bytesPerSecond > 0) this.bytes -= bytes;
    if (this.iops > 0) this.ops -= 1;
  }

  /** Milliseconds from the last refill until ready (0 when ready). */
  dueIn(): number {
    let ms = 0;
    if (this.bytesPerSecond > 0 && this.bytes <= 0) ms = Math.max(ms, ((1 - this.bytes) * 1000) / this.bytesPerSecond);
    if (this.iops > 0 && this.ops <= 0) ms = Math.max(ms, ((1e-6 - this.ops) * 1000) / this.iops);
    return ms;
  }
}
