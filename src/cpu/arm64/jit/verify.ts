/**
 * The compiler's verify mode (XENO_JIT_VERIFY=1): every compiled block the run loop calls is run twice from the
 * same state — compiled, then by the interpreter for the same number of instructions — and the two results
 * must agree: the general-purpose file, SP banks and PC, V0–V31, PSTATE (NZCV, the exclusive monitor, …), the
 * system registers, and every byte of every RAM page either side wrote. A disagreement throws an Error naming
 * the block (its guest words), the registers and the bytes that differ; the run ends there.
 *
 * How memory is compared: the vCPU's MMU runs with a dirty map of the check's own (Mmu.dirty, as live
 * migration's dirty logging does), so a TLB entry gets write permission only when a write fills it, and the
 * fill calls `onWriteFill` before the write: the first write to a page in a check copies it. After the compiled
 * run the written pages are copied again (the compiled result) and put back as they were; the interpreter
 * runs; its pages are compared with the compiled copies. Between checks the entries that got write permission
 * are remembered, and lose it again before the next check.
 *
 * Not checked (the block's result is kept as the compiled code left it, counted as `skipped`): a block that
 * reached a device (MMIO), whose side effects cannot be undone and repeated. A block that stops at a fault is
 * checked up to the faulting instruction; the fault itself is the MMU's record, the same code either way. A store
 * that crosses into a page that faults has written its bytes on the page before (the MMU writes a page-crossing
 * access byte by byte, in the interpreter too; the Arm ARM lets a store that aborts update the locations it does
 * not abort on): the interpreter's re-run stops before that instruction, so such bytes — in the last 64 of a page
 * the compiled run wrote, when the fault is a write at a page's first byte, and left as they were by the
 * interpreter — are set aside (counted as `partial`), not reported.
 *
 * For one thread per domain (the default): once a domain's vCPUs run on several threads (XENO_VCPU_THREADS=1),
 * another vCPU's stores between the two runs would show as differences, so its blocks run unchecked (counted as
 * skipped). Slow: about 5 µs per compiled call.
 */
import { Buffer } from "node:buffer";
import type { Mmu, MmioBus } from "../../../mmu/mmu.js";
import { STOP_FAULT } from "./translate.js";
import { PC2, VCPU_STATE_BYTES, ST_R, ST_V, ST_PSTATE, ST_SYS, PS_JIT_HI, PS_JIT_STOP, ST_SCRATCH } from "../state.js";

export const VERIFY = typeof process !== "undefined" && process.env.XENO_JIT_VERIFY === "1";

/**
 * Counts of the verify mode, over every vCPU of this thread (run-user prints them with XENO_STATS=1); `skipped`:
 * calls run unchecked (they reached a device, or vCPUs on other threads share the memory).
 */
export const verifyStats = { calls: 0, insns: 0, skipped: 0, pages: 0, partial: 0 };

/** The widest store (ST4 of four Q registers, DC ZVA): how far before a faulting page its partial bytes can be. */
const WIDEST_STORE = 64;

const PAGE = 4096;

/** What the check needs of the vCPU; Cpu implements the interpreting run and the state moves. */
export interface Checked {
  readonly mmu: Mmu;
  /** The vCPU's state block bytes (VCPU_STATE_BYTES). */
  readonly stateBytes: Uint8Array;
  /** Writes the interpreter's PSTATE fields into the state block / reads them back from it. */
  storePstate(): void;
  loadPstate(): void;
  /** Interprets exactly n instructions (fewer if one stops the loop) with interrupts held off; returns how many. */
  interpretExactly(n: number): number;
}

export class BlockCheck {
  private readonly before = new Uint8Array(VCPU_STATE_BYTES);
  private readonly compiled = new Uint8Array(VCPU_STATE_BYTES);
  /** Word views of `before`, `compiled` and the vCPU's state block (compareState, the block's PC). */
  private readonly before32 = new Int32Array(this.before.buffer);
  private readonly compiled32 = new Int32Array(this.compiled.buffer);
  private readonly st32: Int32Array;
  /** Per RAM page: written since the last reset (the MMU's dirty map while it is installed). */
  private readonly seen: Uint8Array;
  /**
   * Pages written during the check, in order; the k-th one's contents before (pre[k]) and after the compiled run
   * (post[k]). The buffers are reused from check to check: as many as the most pages one check wrote.
   */
  private readonly pages: number[] = [];
  private readonly pre: Buffer[] = [];
  private readonly post: Buffer[] = [];
  /** Pages marked in `seen` between checks, and TLB entries given write permission since the last reset. */
  private readonly between: number[] = [];
  private readonly fills: number[] = [];
  private checking = false;
  /** The map is installed in the MMU; false until the first check and while someone else's is (dirty logging). */
  private installed = false;
  private readonly ram: Uint8Array;
  private readonly st: Uint8Array;
  private readonly ps: Int32Array;
  private touchedDevice = false;
  private readonly spy: MmioBus;
  private bus: MmioBus | null = null;
  private readonly hook = (page: number, x: number, first: boolean): void => {
    this.fills.push(x);
    if (!first) return;
    if (!this.checking) { this.between.push(page); return; }
    const k = this.pages.length;
    if (k === this.pre.length) this.pre.push(Buffer.alloc(PAGE));
    this.pre[k]!.set(this.ram.subarray(page * PAGE, page * PAGE + PAGE));
    this.pages.push(page);
    verifyStats.pages++;
  };

  constructor(private readonly vcpu: Checked) {
    const m = vcpu.mmu;
    this.st = vcpu.stateBytes;
    this.ps = new Int32Array(this.st.buffer, this.st.byteOffset + ST_PSTATE, 16);
    this.st32 = new Int32Array(this.st.buffer, this.st.byteOffset, VCPU_STATE_BYTES / 4);
    this.ram = new Uint8Array(m.ram, 0, m.ramSize);
    this.seen = new Uint8Array(Math.ceil(m.ramSize / PAGE));
    const self = this;
    this.spy = {
      read(pa, size) { self.touchedDevice = true; return self.bus!.read(pa, size); },
      write(pa, size, lo, hi) { self.touchedDevice = true; self.bus!.write(pa, size, lo, hi); },
      claims(pa) { return self.bus !== null && self.bus.claims(pa); },
    };
  }

  /**
   * Runs `compiled` (a call of the block that returns the new retired count, from `done`), then the interpreter
   * from the same state, and compares. Returns the compiled call's result; the vCPU is left in the (equal)
   * interpreted state, its stop word as the compiled block left it. `words(n)`: the n guest instructions from the
   * block's start, for the report (a block that chained elsewhere ran others too).
   */
  call(compiled: () => number, done: number, words: (n: number) => number[]): number {
    const v = this.vcpu, m = v.mmu, st = this.st, ps = this.ps;
    // No TLB entry may hold write permission for a page not marked in `seen` while checking.
    let outer: Uint8Array | null = null;
    if (!this.installed || m.dirty !== this.seen) {
      outer = m.dirty;
      m.dirty = this.seen;
      m.onWriteFill = this.hook;
      m.dropWrite();
      for (const p of this.between) this.seen[p] = 0;
      this.between.length = 0;
      this.fills.length = 0;
      this.installed = outer === null;
    } else this.reset(m);
    v.storePstate();
    this.before.set(st);
    this.bus = m.mmio;
    this.touchedDevice = false;
    this.checking = true;
    if (this.bus !== null) m.mmio = this.spy;
    let nd: number;
    try {
      nd = compiled();
    } finally {
      m.mmio = this.bus;
    }
    const n = nd - done;
    verifyStats.calls++;
    if (this.touchedDevice || n === 0) {
      if (n !== 0) verifyStats.skipped++;
      this.finish(m, outer);
      return nd;
    }
    verifyStats.insns += n;
    this.compiled.set(st);
    const stop = ps[PS_JIT_STOP];
    // Stopped at a store that faulted on the first byte of a page: it may have written the end of the page before.
    const partialFault = (stop & STOP_FAULT) !== 0 && m.faultWrite !== 0 && (m.faultVaLo & 0xfff) === 0;
    let partial = false;
    const nWritten = this.pages.length;
    for (let k = 0; k < nWritten; k++) {
      const o = this.pages[k]! * PAGE;
      if (k === this.post.length) this.post.push(Buffer.alloc(PAGE));
      this.post[k]!.set(this.ram.subarray(o, o + PAGE));
      this.ram.set(this.pre[k]!, o);
    }
    // The interpreter from the state before (its PSTATE fields too).
    st.set(this.before);
    v.loadPstate();
    let ran: number;
    try {
      ran = v.interpretExactly(n);
    } catch (e) {
      this.finish(m, outer);
      throw new Error(`jit verify: the interpreter threw re-running the compiled block at ${this.pc()} (${n} instructions): ${(e as Error).message}`);
    }
    v.storePstate();
    const diffs: string[] = [];
    if (ran !== n) diffs.push(`instructions: compiled ${n}, interpreted ${ran}`);
    compareState(this.compiled32, this.st32, diffs);
    for (let k = 0; k < this.pages.length && diffs.length < 40; k++) {
      const p = this.pages[k], o = p * PAGE, post = k < nWritten;
      // What the compiled run left in the page: its copy, or the page as it was if it did not write there.
      const want = post ? this.post[k]! : this.pre[k]!;
      const got = Buffer.from(this.ram.buffer, this.ram.byteOffset + o, PAGE);
      if (got.equals(want)) continue;
      for (let b = 0; b < PAGE && diffs.length < 40; b++) {
        if (got[b] === want[b]) continue;
        if (partialFault && post && b >= PAGE - WIDEST_STORE && got[b] === this.pre[k]![b]) { partial = true; continue; }
        diffs.push(`RAM +0x${(o + b).toString(16)}: compiled 0x${want[b].toString(16)}, interpreted 0x${got[b].toString(16)}` +
          (post ? "" : " (the compiled block did not write this page)"));
      }
    }
    if (partial) verifyStats.partial++;
    this.finish(m, outer);
    ps[PS_JIT_STOP] = stop;
    if (diffs.length > 0) {
      const ws = words(Math.min(n, 64)).map((w) => (w >>> 0).toString(16).padStart(8, "0")).join(" ");
      const err = new Error(`jit verify: the compiled block at ${this.pc()} (${n} instructions run; its words from there: ${ws}) disagrees with the interpreter:\n  ` +
        diffs.join("\n  "));
      err.stack = err.message; // the report is the point, not where it was thrown from
      throw err;
    }
    return nd;
  }

  /** The checked block's address (its PC in the state before), for the reports. */
  private pc(): string {
    const w = (ST_R >> 2) + PC2;
    return `0x${(this.before32[w + 1]! >>> 0).toString(16)}_${(this.before32[w]! >>> 0).toString(16).padStart(8, "0")}`;
  }

  /** Clears `seen` for what was written since the last reset and takes write permission back from those entries. */
  private reset(m: Mmu): void {
    for (const x of this.fills) m.dropWriteAt(x);
    this.fills.length = 0;
    for (const p of this.between) this.seen[p] = 0;
    this.between.length = 0;
  }

  /**
   * Ends a check: the map stays installed (writes between checks are tracked through the hook), or, when it
   * replaced someone else's (`outer`: live migration's dirty logging), the pages written are marked there and
   * that map is given back.
   */
  private finish(m: Mmu, outer: Uint8Array | null): void {
    this.checking = false;
    for (const p of this.pages) { this.seen[p] = 0; if (outer !== null) outer[p] = 1; }
    this.pages.length = 0;
    if (outer !== null) {
      for (const p of this.between) { this.seen[p] = 0; outer[p] = 1; }
      this.between.length = 0;
      this.fills.length = 0;
      m.dirty = outer;
      m.onWriteFill = null;
      return;
    }
    // Entries that got write permission during the check are for pages whose mark was just cleared.
    for (const x of this.fills) m.dropWriteAt(x);
    this.fills.length = 0;
  }
}

const SLOT_NAMES = (k: number): string => {
  const reg = k >> 1, half = k & 1 ? "hi" : "lo";
  const name = reg <= 30 ? `x${reg}` : reg === 31 ? "xzr" : reg === 32 ? "sp" : reg === 33 ? "pc" : reg === 34 ? "sp_el0" : "sp_el1";
  return `${name}.${half}`;
};

/** Appends the differences between two state blocks (the stop word and scratch excepted) to `out`. */
function compareState(ia: Int32Array, ib: Int32Array, out: string[]): void {
  const hex = (x: number): string => "0x" + (x >>> 0).toString(16);
  for (let w = 0; w < VCPU_STATE_BYTES / 4; w++) {
    if (ia[w] === ib[w]) continue;
    const off = w * 4;
    let what: string;
    if (off < ST_V) what = SLOT_NAMES((off - ST_R) >> 2);
    else if (off < ST_PSTATE) { const q = (off - ST_V) >> 4; what = `v${q} word ${((off - ST_V) >> 2) & 3}`; }
    else if (off < ST_SCRATCH) {
      const p = (off - ST_PSTATE) >> 2;
      if (p === PS_JIT_STOP || p === PS_JIT_HI) continue;
      what = `pstate word ${p}`;
    } else if (off < ST_SYS) continue;
    else what = `system register slot ${(off - ST_SYS) >> 2}`;
    out.push(`${what}: compiled ${hex(ia[w])}, interpreted ${hex(ib[w])}`);
  }
}
