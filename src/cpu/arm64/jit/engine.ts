/**
 * The compiling engine's bookkeeping: blocks that ran hot are translated (translate.ts) at once and queued;
 * the queue is compiled as one WebAssembly module (many blocks per module: a module alone costs hundreds of
 * microseconds, a block inside a shared one a few), instantiated over the domain's memory with the slow-path
 * imports, and its blocks installed in the CodeCache's block table (where the run loop finds them).
 *
 * Chaining: a block's direct branch to a block of the same page queued in the same batch is a tail call inside
 * the module (`return_call`). Every other transfer goes through the dispatcher, one small wasm function per
 * engine that loops: translate PC through the TLB (execute permission), look the instruction's RAM offset up
 * in the entry map (a direct-mapped hash in the engine's area of the memory: key = RAM offset + 1, value = a
 * slot of the engine's function table) and call the block there, until the budget is spent, a block bails, or
 * nothing compiled is found — then the run loop interprets. Only the dispatcher imports the table: V8 updates
 * every instance importing a table on each Table.set and grow (measured: with ~1,200 block modules importing
 * it, Table.set, grow and instantiation took 47 % of a boot).
 *
 * One engine per CodeCache, i.e. per thread running a domain's vCPUs; the run loop names the vCPU it calls
 * compiled code for (`cpu`) so the slow paths reach that vCPU's MMU.
 */
import { writeFileSync } from "node:fs";
import { compileWorker, compilerEngineId } from "./compiler.js";
import { moduleBytes, I32, type FuncBody, type FuncType } from "./wasm.js";
import { Translator, BLOCK_LOCALS, MAX_BLOCK, STOP_FAULT, dispatcherBody, type ChainLookup } from "./translate.js";
import type { Decoder } from "../decoder.js";
import type { Mmu } from "../../../mmu/mmu.js";
import { MMU_FAULT, TLB_AREA_BYTES } from "../../../mmu/mmu.js";
import { PS_JIT_HI, PS_JIT_STOP, VCPU_STATE_BYTES } from "../state.js";

/**
 * A compiled block: (state block offset, TLB area offset, ASID, masks, instructions retired so far, budget)
 * → instructions retired. Masks: mR | mW << 8 | MASK_SP_EL0 | MASK_EL1 (translate.ts).
 */
export type BlockFn = (st: number, tlb: number, asid: number, masks: number, done: number, budget: number) => number;

/** What a slow path needs of the running vCPU. */
export interface JitVcpu {
  readonly mmu: Mmu;
  /** The PSTATE words of its state block (PS_JIT_*). */
  readonly ps: Int32Array;
  irqLine: number;
  fiqLine: number;
}

export interface JitStats {
  /** Blocks installed, modules compiled, instructions in installed blocks. */
  blocks: number;
  modules: number;
  insns: number;
  /** Blocks dropped before installation (their page changed meanwhile). */
  dropped: number;
  compileMs: number;
  /** Blocks whose module failed to compile (a translator bug; they stay interpreted). */
  failed: number;
  /** Batches compiled on the vCPU's thread because the compile worker was late (JitEngine.poll). */
  late: number;
  /** Times every compiled block was dropped for the module cap (CodeCache.flush). */
  resets: number;
  /** Accesses of compiled code that took the slow path (TLB miss, MMIO, fault, write to a code page). */
  slowReads: number;
  slowWrites: number;
}

const BLOCK_TYPE: FuncType = { params: [I32, I32, I32, I32, I32, I32], results: [I32] };
const TYPES: FuncType[] = [
  BLOCK_TYPE, // 0: block
  { params: [I32, I32, I32], results: [I32] }, // 1: rd(lo, hi, size)
  { params: [I32, I32, I32, I32, I32], results: [I32] }, // 2: wr(lo, hi, size, vlo, vhi)
];
const IMPORTS = [{ name: "rd", type: 1 }, { name: "wr", type: 2 }];

/**
 * The engine's area in the memory (JIT_AREA_BYTES at `jitAt`): the entry map (MAP_ENTRIES × [key, table slot])
 * then the "ran" bytes, one per RAM page (CodeCache.ran: pages entered since the last sweep), for RAM up to
 * 2 GiB.
 */
const MAP_ENTRIES = 1 << 16, MAP_BYTES = MAP_ENTRIES * 8, RAN_BYTES = 1 << 19;
export const JIT_AREA_BYTES = MAP_BYTES + RAN_BYTES;

/** A queued block: translated when the queue is compiled, so that it can chain to every block of the batch. */
interface Pending {
  page: number; slot: number; gen: number; words: Int32Array; base: number; n: number; body: FuncBody | null;
  /** The slot of the untranslatable instruction that ended the block, or -1. */
  end: number;
}

/** A translated block waiting for its module: where it goes, and the page generation it was translated from. */
interface Entry { page: number; slot: number; gen: number; n: number; end: number }

/** A batch on the compile worker: its blocks, and its bytes (compiled here if the worker does not answer). */
interface InFlight { id: number; entries: Entry[]; bytes: Uint8Array<ArrayBuffer>; at: number }

/** Installs a block: `install(page, slot, fn, n, end)` (CodeCache). */
export type InstallFn = (page: number, slot: number, fn: BlockFn, n: number, end: number) => void;

/**
 * A batch the compile worker has not answered for this long is compiled on the vCPU's thread instead
 * (XENO_JIT_LATE_MS; the worker takes ~2 ms for a batch when it has a core).
 */
const LATE_MS = Number(process.env.XENO_JIT_LATE_MS ?? 20);

/** Blocks per module when the queue is flushed for size; the most a batch grows to with continuations. */
const BATCH = Number(process.env.XENO_JIT_BATCH ?? 64), MAX_PENDING = 4 * BATCH;
/**
 * XENO_JIT_DUMP=DIR: every module's bytes go to DIR/mNNNNN.wasm, with DIR/mNNNNN.txt naming each function's
 * guest block (RAM page, word slot, instructions), for a text disassembler (e.g. wabt's wasm2wat).
 */
const DUMP = typeof process !== "undefined" ? process.env.XENO_JIT_DUMP ?? "" : "";

export class JitEngine {
  /** The vCPU the run loop is calling compiled code for. */
  cpu: JitVcpu | null = null;
  /** Set by a slow-path write that invalidated decoded code (the block then ends after that instruction). */
  codeHit = 0;
  readonly stats: JitStats = { blocks: 0, modules: 0, insns: 0, dropped: 0, compileMs: 0, failed: 0, late: 0, resets: 0, slowReads: 0, slowWrites: 0 };
  /** Per RAM page: bytes set by the run loop and the dispatcher when they enter it (CodeCache.ran). */
  readonly ran: Uint8Array;
  /** The dispatcher (see above): same signature as a block. */
  readonly dispatch: BlockFn;
  private readonly map: Int32Array;
  private readonly table: WebAssembly.Table;
  private readonly free: number[] = [];
  private readonly translator: Translator;
  private readonly pending: Pending[] = [];
  private readonly imports: WebAssembly.Imports;
  private readonly memLimits: { pages: number; maxPages: number; shared: boolean };
  /**
   * Compile modules on this thread's compile worker (compiler.ts) while the vCPU goes on interpreting; installed
   * by poll(). Off: flush() compiles and installs at once (tests that need a block compiled when they ask).
   */
  async = false;
  private readonly id = compilerEngineId(this);
  private readonly inflight: InFlight[] = [];
  private nextBatch = 0;

  constructor(readonly memory: WebAssembly.Memory, decoder: Decoder, shared: boolean, jitAt: number) {
    if (jitAt % 8 !== 0 || jitAt < 0 || jitAt + JIT_AREA_BYTES > memory.buffer.byteLength) {
      throw new RangeError(`JIT area at ${jitAt}: not an 8-aligned area of ${JIT_AREA_BYTES} bytes inside the memory`);
    }
    this.map = new Int32Array(memory.buffer, jitAt, MAP_ENTRIES * 2);
    this.map.fill(0);
    this.ran = new Uint8Array(memory.buffer, jitAt + MAP_BYTES, RAN_BYTES);
    this.table = new WebAssembly.Table({ element: "anyfunc", initial: 4096 });
    for (let k = 4095; k >= 0; k--) this.free.push(k);
    this.translator = new Translator(decoder);
    const pages = memory.buffer.byteLength / 65536;
    this.memLimits = { pages, maxPages: pages, shared };
    // Slow paths. A fault (MMU_FAULT: the MMU holds its details) sets STOP_FAULT in PS_JIT_STOP and returns 0;
    // the block then leaves at that instruction with the state exact (translate.ts, afterSlow) and the run loop
    // takes the exception. Anything that may change what the vCPU must do next — code written, an interrupt
    // line moved by a device — stops chaining (bit 0).
    const rd = (lo: number, hi: number, size: number): number => {
      const c = this.cpu!, m = c.mmu, lines = c.irqLine | c.fiqLine;
      this.stats.slowReads++;
      let v: number;
      try {
        switch (size) {
          case 1: v = m.read8(lo, hi); break;
          case 2: v = m.read16(lo, hi); break;
          case 4: v = m.read32(lo, hi); break;
          default: v = m.read64(lo, hi); c.ps[PS_JIT_HI] = m.out[0]; break;
        }
      } catch (e) {
        if (e !== MMU_FAULT) throw e;
        c.ps[PS_JIT_STOP] |= STOP_FAULT;
        return 0;
      }
      if ((c.irqLine | c.fiqLine) !== lines) c.ps[PS_JIT_STOP] |= 1;
      return v;
    };
    const wr = (lo: number, hi: number, size: number, vlo: number, vhi: number): number => {
      const c = this.cpu!, m = c.mmu, lines = c.irqLine | c.fiqLine;
      this.stats.slowWrites++;
      this.codeHit = 0;
      try {
        switch (size) {
          case 1: m.write8(lo, hi, vlo); break;
          case 2: m.write16(lo, hi, vlo); break;
          case 4: m.write32(lo, hi, vlo); break;
          default: m.write64(lo, hi, vlo, vhi); break;
        }
      } catch (e) {
        if (e !== MMU_FAULT) throw e;
        c.ps[PS_JIT_STOP] |= STOP_FAULT;
        return 0;
      }
      if ((c.irqLine | c.fiqLine) !== lines || this.codeHit !== 0) c.ps[PS_JIT_STOP] |= 1;
      return this.codeHit;
    };
    this.imports = { e: { m: memory, rd, wr } };
    const bytes = moduleBytes([BLOCK_TYPE], [], this.memLimits, [dispatcherBody(jitAt)], 0);
    this.dispatch = new WebAssembly.Instance(new WebAssembly.Module(bytes), { e: { m: memory, t: this.table } }).exports["0"] as BlockFn;
  }

  /** Makes block `fn` at RAM offset `key` reachable through the dispatcher; returns its table slot. */
  enter(key: number, fn: BlockFn): number {
    if (this.free.length === 0) {
      const n = this.table.length;
      this.table.grow(n);
      for (let k = 2 * n - 1; k >= n; k--) this.free.push(k);
    }
    const idx = this.free.pop()!;
    this.table.set(idx, fn);
    const h = ((key >>> 2) & (MAP_ENTRIES - 1)) << 1;
    this.map[h] = key + 1; this.map[h + 1] = idx;
    return idx;
  }

  /** Undoes enter(key, …) = idx: the block at key is no longer reachable, its slot free (and its module collectable). */
  leave(key: number, idx: number): void {
    const h = ((key >>> 2) & (MAP_ENTRIES - 1)) << 1;
    if (this.map[h] === key + 1 && this.map[h + 1] === idx) this.map[h] = 0;
    this.table.set(idx, null);
    this.free.push(idx);
  }

  /**
   * Queues the block at word `slot` of a code page whose words are words[base..base + 1024) (read when the queue
   * is compiled; a write to the page in between changes its generation and the block is dropped). Returns false
   * when its first instruction cannot be translated.
   */
  queue(page: number, slot: number, gen: number, words: Int32Array, base: number): boolean {
    if (this.translator.translate(words, base + slot, 1, () => -1) === 0) return false;
    this.pending.push({ page, slot, gen, words, base, n: 0, body: null, end: -1 });
    return true;
  }

  /** Translates every queued block; each may tail-call any block of the batch on its page (same generation). */
  private translateQueue(installed: (page: number, slot: number) => boolean): void {
    const p = this.pending;
    const t = this.translator;
    for (let at = 0; at < p.length; at++) {
      const e = p[at];
      const chain: ChainLookup = (s) => {
        for (let k = 0; k < p.length; k++) if (p[k].page === e.page && p[k].slot === s && p[k].gen === e.gen) return IMPORTS.length + k;
        return -1;
      };
      const max = Math.min(MAX_BLOCK, 1024 - e.slot);
      e.n = t.translate(e.words, e.base + e.slot, max, chain);
      e.end = t.untranslatableAt >= 0 ? e.slot + t.untranslatableAt : -1;
      // Not translatable now (cannot happen for the same words, which queue() checked): a block that returns.
      let code = e.n === 0 ? new Uint8Array([0x20, 4, 0x0b]) : t.c.buf.slice(0, t.c.len);
      // A straight run longer than a block, or one an untranslatable instruction interrupts, goes on where this
      // block stops: that code is as hot as this block, so it joins the batch now (rather than after HOT more
      // entries there), and a block cut at the length limit is translated again to chain to it.
      if (e.n > 0 && !t.branched && p.length < MAX_PENDING) {
        const next = e.end >= 0 ? e.end + 1 : e.slot + e.n;
        const known = next >= 1024 || installed(e.page, next) || p.some((q) => q.page === e.page && q.slot === next && q.gen === e.gen);
        if (!known && this.queue(e.page, next, e.gen, e.words, e.base) && e.end < 0) {
          e.n = t.translate(e.words, e.base + e.slot, max, chain);
          code = t.c.buf.slice(0, t.c.len);
        }
      }
      e.body = { type: 0, locals: BLOCK_LOCALS, code };
    }
  }
  /**
   * Whether full DMB/DSB compile to a host fence (wasm atomic.fence), as the interpreter makes them (system.ts
   * barrier) once vCPUs of the domain run on several threads. Affects blocks translated from now on.
   */
  set fences(on: boolean) { this.translator.fences = on; }

  get queued(): number { return this.pending.length; }
  get full(): boolean { return this.pending.length >= BATCH; }

  /**
   * Translates the queue into one module and installs each block whose page generation still matches:
   * `install(page, slot, fn, n, end)`, or `drop(page, slot)` for one that is not installed. With `async` the
   * module is compiled on the compile worker and installed by a later poll().
   */
  flush(gen: Uint32Array, install: InstallFn, drop: (page: number, slot: number) => void,
    installed: (page: number, slot: number) => boolean = () => false): void {
    const p = this.pending;
    if (p.length === 0) return;
    const t0 = performance.now();
    let bytes: Uint8Array<ArrayBuffer> | null = null;
    try {
      this.translateQueue(installed);
      bytes = moduleBytes(TYPES, IMPORTS, this.memLimits, p.map((e) => e.body!));
      if (DUMP !== "") dumpModule(DUMP, this.stats.modules + this.stats.failed, bytes, p);
    } catch (err) {
      this.compileFailed(p.length, err);
    }
    const entries: Entry[] = p.map((e) => ({ page: e.page, slot: e.slot, gen: e.gen, n: e.n, end: e.end }));
    p.length = 0;
    const w = bytes !== null && this.async ? compileWorker() : null;
    if (w !== null) {
      const id = this.nextBatch++;
      this.inflight.push({ id, entries, bytes: bytes!, at: t0 });
      w.submit(this.id, id, bytes!);
      this.stats.compileMs += performance.now() - t0;
      return;
    }
    this.install(bytes === null ? null : this.compile(bytes, entries.length), entries, gen, install, drop);
    this.stats.compileMs += performance.now() - t0;
  }

  /** Batches on the compile worker. */
  get inFlight(): number { return this.inflight.length; }

  /**
   * Installs the batches the compile worker has finished (see flush); returns how many. A batch that has waited
   * LATE_MS is compiled here instead (a loaded host may leave the worker without a core for a while; the vCPU
   * would interpret meanwhile); the worker's module for it is then dropped when it comes. `now`: every batch
   * still in flight is compiled here (CodeCache.settle).
   */
  poll(gen: Uint32Array, install: InstallFn, drop: (page: number, slot: number) => void, now = false): number {
    const q = this.inflight;
    if (q.length === 0) return 0;
    const w = compileWorker()!;
    let n = 0;
    for (;;) {
      const r = w.take(this.id);
      if (r === null) break;
      if (q.length === 0 || r.id < q[0].id) continue; // compiled here meanwhile
      const b = q.shift()!;
      if (b.id !== r.id) throw new Error(`compile worker answered batch ${r.id}, expected ${b.id}`);
      const t0 = performance.now();
      let mod: WebAssembly.Instance | null = null;
      if (r.module === null) this.compileFailed(b.entries.length, new Error(r.error ?? "no module"));
      else mod = this.instantiate(r.module, b.entries.length);
      this.install(mod, b.entries, gen, install, drop);
      this.stats.compileMs += performance.now() - t0;
      n++;
    }
    while (q.length > 0) {
      const t0 = performance.now();
      if (now || t0 - q[0].at > LATE_MS) {
        const b = q.shift()!;
        this.install(this.compile(b.bytes, b.entries.length), b.entries, gen, install, drop);
        this.stats.compileMs += performance.now() - t0;
        this.stats.late++;
        n++;
      }
      if (!now) break;
    }
    return n;
  }

  /** Compiles and instantiates a module here; null (counted as failed) if that fails. */
  private compile(bytes: Uint8Array<ArrayBuffer>, blocks: number): WebAssembly.Instance | null {
    let m: WebAssembly.Module;
    try {
      m = new WebAssembly.Module(bytes);
    } catch (err) {
      this.compileFailed(blocks, err);
      return null;
    }
    return this.instantiate(m, blocks);
  }

  private instantiate(m: WebAssembly.Module, blocks: number): WebAssembly.Instance | null {
    try {
      return new WebAssembly.Instance(m, this.imports);
    } catch (err) {
      this.compileFailed(blocks, err);
      return null;
    }
  }

  /** A translator bug must not take the domain down: these blocks stay interpreted. */
  private compileFailed(blocks: number, err: unknown): void {
    if (this.stats.failed === 0) console.error(`xeno: compiling ${blocks} blocks failed, they stay interpreted: ${(err as Error).message}`);
    this.stats.failed += blocks;
  }

  private install(inst: WebAssembly.Instance | null, entries: Entry[], gen: Uint32Array, install: InstallFn,
    drop: (page: number, slot: number) => void): void {
    const ex = inst === null ? null : inst.exports as Record<string, BlockFn>;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k];
      if (gen[e.page] !== e.gen) { this.stats.dropped++; continue; } // its page changed: nothing to undo
      if (ex === null || e.n === 0) { drop(e.page, e.slot); continue; }
      install(e.page, e.slot, ex[String(k)], e.n, e.end);
      this.stats.blocks++;
      this.stats.insns += e.n;
    }
    if (ex !== null) this.stats.modules++;
  }
}

function dumpModule(dir: string, n: number, bytes: Uint8Array, p: readonly Pending[]): void {
  const name = `${dir}/m${String(n).padStart(5, "0")}`;
  writeFileSync(`${name}.wasm`, bytes);
  writeFileSync(`${name}.txt`, p.map((e, k) => `func ${IMPORTS.length + k}: page 0x${e.page.toString(16)} slot ${e.slot} ` +
    `(RAM 0x${(e.page * 4096 + e.slot * 4).toString(16)}), ${e.n} instructions:` +
    Array.from(e.words.subarray(e.base + e.slot, e.base + e.slot + e.n), (w) => ` ${(w >>> 0).toString(16).padStart(8, "0")}`).join("") +
    "\n").join(""));
}

/**
 * A memory laid out for one vCPU that runs compiled code (the user-mode runner, tests): RAM from offset 0,
 * then the vCPU's state block, its TLB area and the engine's area. Not shared (one thread).
 */
export function soloJitMemory(ramBytes: number): { memory: WebAssembly.Memory; stateAt: number; tlbAt: number; jitAt: number } {
  const stateAt = ramBytes, tlbAt = ramBytes + VCPU_STATE_BYTES, jitAt = tlbAt + TLB_AREA_BYTES;
  const pages = Math.ceil((jitAt + JIT_AREA_BYTES) / 65536);
  return { memory: new WebAssembly.Memory({ initial: pages, maximum: pages }), stateAt, tlbAt, jitAt };
}
