/**
 * The PV console back-end for console 0 (hvc0): xenconsoled's job for one domain (tools/console/daemon/io.c
 * handle_ring_read / buffer_append / handle_tty_read), on the page described in src/xen/console-ring.ts.
 *
 * Output: on each guest notification (hvc_xen notifies after every write) and on poll() (the host calls it once
 * per scheduling slice and when the guest yields waiting for ring space), the bytes of `out` go to the sink and
 * out_cons advances. Input: bytes from the host are queued and copied into `in` as space allows; the rest goes
 * in as the guest consumes (hvc_xen notifies after reading). The guest is notified when either ring moved.
 *
 * Bad indexes: `out` with prod - cons > 2048 is resynchronised (cons := prod, the garbage is dropped) so the
 * guest can keep writing; `in` with a bad consumer index gets no input until the guest repairs it (hvc_xen
 * itself answers -EINVAL then). Both are counted and logged; nothing outside the page is ever touched.
 *
 * `active` latches the first time the guest writes output: the Machine routes console input here from then on
 * (the guest uses hvc0), and to the UART before.
 */
import { XenconsInterface, XENCONSOLE_CONNECTED } from "../../xen/console-ring.js";
import { StateError, stateBool, stateBytes, stateInt, stateObject, stateVersion } from "../../common/state.js";

export interface ConsoleBackOptions {
  /** Views over the domain's memory buffer (the same buffer) and the console page's byte offset in it. */
  u8: Uint8Array;
  i32: Int32Array;
  pageOffset: number;
  /** Notify the guest on its console event channel. */
  notify(): void;
  /** Console output (the buffer is reused after the call: copy to keep). */
  output(bytes: Uint8Array): void;
  /** Diagnostics (rate-limited by the caller). */
  log(line: string): void;
  /** Most input bytes held for the guest; more are dropped (counted). Default 64 KiB. */
  maxInputBytes?: number;
}

export interface ConsoleBackStats {
  outBytes: number;
  inBytes: number;
  droppedInput: number;
  badOutIndexes: number;
  badInIndexes: number;
}

const DEFAULT_MAX_INPUT = 64 * 1024;

/**
 * Saved console back-end state. The rings and their indexes are the console page, guest RAM (saved with it);
 * the page offset, the event channel and the output sink are wiring (constructor options). Output is never
 * held (every drain hands it to the sink at once), so only input waiting for ring space is saved.
 */
export interface ConsoleBackState {
  version: 1;
  active: boolean;
  /** Host input not yet in the guest's `in` ring, oldest first. */
  input: Uint8Array;
  /** The `in` ring's indexes were found corrupt (logged once until the guest repairs them). */
  inBad: boolean;
  stats: ConsoleBackStats;
}

export class ConsoleBack {
  readonly stats: ConsoleBackStats = { outBytes: 0, inBytes: 0, droppedInput: 0, badOutIndexes: 0, badInIndexes: 0 };
  /** The guest has written to its console at least once. */
  active = false;
  private readonly page: XenconsInterface;
  private readonly o: ConsoleBackOptions;
  private readonly maxInput: number;
  /** Output scratch, one ring's worth (reused). */
  private readonly scratch: Uint8Array;
  private readonly rx: Uint8Array[] = [];
  private rxBytes = 0;
  private inBad = false;

  constructor(o: ConsoleBackOptions) {
    this.o = o;
    this.page = new XenconsInterface(o.u8, o.i32, o.pageOffset);
    this.scratch = new Uint8Array(this.page.out.size);
    this.maxInput = o.maxInputBytes ?? DEFAULT_MAX_INPUT;
    this.page.connection = XENCONSOLE_CONNECTED;
  }

  save(): ConsoleBackState {
    const input = new Uint8Array(this.rxBytes);
    let at = 0;
    for (const b of this.rx) { input.set(b, at); at += b.length; }
    return { version: 1, active: this.active, input, inBad: this.inBad, stats: { ...this.stats } };
  }

  /**
   * Loads saved state (StateError, nothing changed, if any field is bad: input beyond maxInputBytes, a
   * negative counter). Does not touch the page or notify: the next kick/poll carries on.
   */
  restore(state: ConsoleBackState): void {
    const C = "console-back";
    const s = stateVersion(C, state, 1);
    const active = stateBool(C, "active", s.active);
    const inBad = stateBool(C, "inBad", s.inBad);
    const input = stateBytes(C, "input", s.input, -1);
    if (input.length > this.maxInput) throw new StateError(C, "input", `${input.length} bytes, more than the ${this.maxInput} held`);
    const so = stateObject(C, "stats", s.stats);
    const stats = {} as ConsoleBackStats;
    for (const k of Object.keys(this.stats) as (keyof ConsoleBackStats)[]) stats[k] = stateInt(C, `stats.${k}`, so[k], 0, Number.MAX_SAFE_INTEGER);
    this.active = active;
    this.inBad = inBad;
    this.rx.length = 0;
    if (input.length > 0) this.rx.push(new Uint8Array(input));
    this.rxBytes = input.length;
    Object.assign(this.stats, stats);
  }

  /** The guest notified its console port. */
  kick(): void {
    const drained = this.drain();
    const fed = this.feed();
    if (drained || fed) this.o.notify();
  }

  /** Drains output without a notification (cheap when the ring is empty). */
  poll(): void {
    this.kick();
  }

  /** Console input for the guest (copied). */
  input(bytes: Uint8Array): void {
    let b = bytes;
    const room = this.maxInput - this.rxBytes;
    if (b.length > room) {
      this.stats.droppedInput += b.length - Math.max(room, 0);
      b = b.subarray(0, Math.max(room, 0));
    }
    if (b.length > 0) { this.rx.push(b.slice()); this.rxBytes += b.length; }
    if (this.feed()) this.o.notify();
  }

  /** Bytes of input waiting for ring space. */
  get pendingInput(): number { return this.rxBytes; }

  /** Copies the guest's output to the sink; true if out_cons moved. */
  private drain(): boolean {
    const out = this.page.out;
    let moved = false;
    for (;;) {
      const n = out.read(this.scratch);
      if (n < 0) {
        this.stats.badOutIndexes++;
        this.o.log(`console: output ring indexes corrupt (cons ${out.cons} prod ${out.prod}): resynchronised`);
        out.skip();
        return true;
      }
      if (n === 0) return moved;
      moved = true;
      this.active = true;
      this.stats.outBytes += n;
      this.o.output(this.scratch.subarray(0, n));
    }
  }

  /** Copies queued input into the guest's ring; true if in_prod moved. */
  private feed(): boolean {
    let moved = false;
    while (this.rx.length > 0) {
      const head = this.rx[0]!;
      const n = this.page.in.write(head);
      if (n < 0) {
        if (!this.inBad) {
          this.inBad = true;
          this.stats.badInIndexes++;
          this.o.log(`console: input ring indexes corrupt (cons ${this.page.in.cons} prod ${this.page.in.prod}): input held`);
        }
        return moved;
      }
      this.inBad = false;
      if (n === 0) return moved;
      moved = true;
      this.stats.inBytes += n;
      this.rxBytes -= n;
      if (n === head.length) this.rx.shift();
      else this.rx[0] = head.subarray(n);
    }
    return moved;
  }
}
