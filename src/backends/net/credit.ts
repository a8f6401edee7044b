/**
 * The transmit rate limit of a vif: xl.cfg's `rate=RATE[@INTERVAL]`, which libxl writes to the back-end's
 * XenStore key `rate` as "BYTES,USECS" (bytes allowed per replenishment interval). The semantics are those of
 * Linux netback's credit scheduler (drivers/net/xen-netback: tx_credit_exceeded, tx_add_credit), which is what
 * a Xen user gets on a real host:
 *
 *  - the vif starts with one interval's worth of credit;
 *  - a packet whose size fits the remaining credit goes and is charged (its first slot's size, before any other
 *    check, as netback does);
 *  - a packet that does not fit: when an interval has passed since the window started, credit is added and the
 *    window restarts; if it still does not fit, transmission stops (the request stays on the ring, the guest
 *    sees back-pressure, nothing is dropped) until the end of the window, when credit is added again;
 *  - adding credit adds BYTES but never raises the balance above max(BYTES, 128 KiB), so a packet larger
 *    than one interval's credit still goes after enough intervals, and an idle vif cannot bank a long burst.
 *
 * Time is in milliseconds from the caller's clock (performance.now() in production, a fake one in tests).
 * Allocation-free; no timers of its own: the owner asks `dueIn()` how long it may sleep and calls `expire()`.
 */

/** Linux netback's floor on the burst a vif may accumulate (tx_add_credit: max(131072, credit_bytes)). */
export const MIN_BURST_BYTES = 131072;

/**
 * Saved credit, with times relative to the owner's clock at save (the clock itself, performance.now() of one
 * process, means nothing in another): the balance, where the window started, when a waiting sender may go on.
 */
export interface TxCreditState {
  remaining: number;
  /** windowStart - now at save (ms; > 0 when a sender waits for the window that starts then). */
  windowStartIn: number;
  /** wakeAt - now at save (ms), or null when nobody waits. */
  wakeIn: number | null;
}

export class TxCredit {
  /** Bytes that may still be sent in the current window. */
  private remaining: number;
  private windowStart: number;
  /** When a blocked sender may go on (the end of the window), or 0 when nobody waits. */
  private wakeAt = 0;
  private readonly maxBurst: number;
  private readonly intervalMs: number;

  /** `bytes` per `intervalUsecs`, both positive integers (the parser's range); `now` starts the first window. */
  constructor(readonly bytes: number, readonly intervalUsecs: number, now: number) {
    if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new RangeError(`vif rate: bad byte count ${bytes}`);
    if (!Number.isSafeInteger(intervalUsecs) || intervalUsecs <= 0 || intervalUsecs > 0xffffffff) {
      throw new RangeError(`vif rate: bad interval ${intervalUsecs} us`);
    }
    this.remaining = bytes;
    this.windowStart = now;
    this.intervalMs = intervalUsecs / 1000;
    this.maxBurst = Math.max(MIN_BURST_BYTES, bytes);
  }

  /** True when a packet of `size` bytes may be sent now (it is then charged); false: wait for expire(). */
  take(size: number, now: number): boolean {
    if (size <= this.remaining) { this.remaining -= size; return true; }
    if (this.wakeAt !== 0) return false; // already waiting for the end of the window
    if (now >= this.windowStart + this.intervalMs) {
      this.windowStart = now;
      this.add();
      if (size <= this.remaining) { this.remaining -= size; return true; }
    }
    this.wakeAt = this.windowStart + this.intervalMs;
    this.windowStart = this.wakeAt;
    return false;
  }

  /** Milliseconds until a waiting sender may retry (0: now), or Infinity when nobody waits. */
  dueIn(now: number): number {
    return this.wakeAt === 0 ? Infinity : Math.max(0, this.wakeAt - now);
  }

  /** When the window a sender waits for has ended: adds its credit and returns true (retry sending). */
  expire(now: number): boolean {
    if (this.wakeAt === 0 || now < this.wakeAt) return false;
    this.wakeAt = 0;
    this.add();
    return true;
  }

  save(now: number): TxCreditState {
    return { remaining: this.remaining, windowStartIn: this.windowStart - now, wakeIn: this.wakeAt === 0 ? null : this.wakeAt - now };
  }

  /** Loads a state from save() (checked by the caller: remaining within 0..max burst, finite times). */
  load(s: TxCreditState, now: number): void {
    this.remaining = s.remaining;
    this.windowStart = now + s.windowStartIn;
    this.wakeAt = s.wakeIn === null ? 0 : Math.max(now + s.wakeIn, Number.MIN_VALUE); // 0 means "nobody waits"
  }

  /** Most credit the vif can hold (max(BYTES, 128 KiB)). */
  get burst(): number { return this.maxBurst; }

  /** The XenStore form libxl writes: "BYTES,USECS". */
  toString(): string { return `${this.bytes},${this.intervalUsecs}`; }

  private add(): void {
    this.remaining = Math.min(this.remaining + this.bytes, this.maxBurst);
  }
}
