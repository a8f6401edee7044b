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
import { moduleBytes, I32, type FuncBody, type FuncType } from "./wasm.js";
import { Translator, BLOCK_LOCALS, MAX_BLOCK, dispatcherBody, type ChainLookup } from "./translate.js";
import type { Decoder } from "../decoder.js";
import type { Mmu } from "../../../mmu/mmu.js";
import { TLB_AREA_BYTES } from "../../../mmu/mmu.js";
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
  /** Times every compiled block was dropped for the module cap (CodeCache.flush). */
  resets: number;
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

interface Pending { page: number; slot: number; gen: number; n: number; body: FuncBody }

/** Blocks per module when the queue is flushed for size. */
const BATCH = Number(process.env.XENO_JIT_BATCH ?? 64);

export class JitEngine {
  /** The vCPU the run loop is calling compiled code for. */
  cpu: JitVcpu | null = null;
  /** Set by a slow-path write that invalidated decoded code (the block then ends after that instruction). */
  codeHit = 0;
  readonly stats: JitStats = { blocks: 0, modules: 0, insns: 0, dropped: 0, compileMs: 0, failed: 0, resets: 0 };
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
    // Slow paths. A fault throws out of the block (MMU_FAULT; the run loop handles it). Anything that may
    // change what the vCPU must do next — code written, an interrupt line moved by a device — stops chaining.
    const rd = (lo: number, hi: number, size: number): number => {
      const c = this.cpu!, m = c.mmu, lines = c.irqLine | c.fiqLine;
      let v: number;
      switch (size) {
        case 1: v = m.read8(lo, hi); break;
        case 2: v = m.read16(lo, hi); break;
        case 4: v = m.read32(lo, hi); break;
        default: v = m.read64(lo, hi); c.ps[PS_JIT_HI] = m.out[0]; break;
      }
      if ((c.irqLine | c.fiqLine) !== lines) c.ps[PS_JIT_STOP] = 1;
      return v;
    };
    const wr = (lo: number, hi: number, size: number, vlo: number, vhi: number): number => {
      const c = this.cpu!, m = c.mmu, lines = c.irqLine | c.fiqLine;
      this.codeHit = 0;
      switch (size) {
        case 1: m.write8(lo, hi, vlo); break;
        case 2: m.write16(lo, hi, vlo); break;
        case 4: m.write32(lo, hi, vlo); break;
        default: m.write64(lo, hi, vlo, vhi); break;
      }
      if ((c.irqLine | c.fiqLine) !== lines || this.codeHit !== 0) c.ps[PS_JIT_STOP] = 1;
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
   * Translates the block at word `slot` of a code page whose words are words[base..base + 1024) and queues it.
   * Returns false when its first instruction cannot be translated.
   */
  queue(page: number, slot: number, gen: number, words: Int32Array, base: number): boolean {
    const p = this.pending, at = p.length;
    // Blocks of this page already in the batch (and this one) are tail-call targets: function index = imports + k.
    const chain: ChainLookup = (s) => {
      if (s === slot) return IMPORTS.length + at;
      for (let k = 0; k < at; k++) if (p[k].page === page && p[k].slot === s && p[k].gen === gen) return IMPORTS.length + k;
      return -1;
    };
    const n = this.translator.translate(words, base + slot, Math.min(MAX_BLOCK, 1024 - slot), chain);
    if (n === 0) return false;
    const code = this.translator.c.buf.slice(0, this.translator.c.len);
    p.push({ page, slot, gen, n, body: { type: 0, locals: BLOCK_LOCALS, code } });
    return true;
  }

  /**
   * Whether full DMB/DSB compile to a host fence (wasm atomic.fence), as the interpreter makes them (system.ts
   * barrier) once vCPUs of the domain run on several threads. Affects blocks translated from now on.
   */
  set fences(on: boolean) { this.translator.fences = on; }

  get queued(): number { return this.pending.length; }
  get full(): boolean { return this.pending.length >= BATCH; }

  /**
   * Compiles the queue as one module and installs each block whose page generation still matches:
   * `install(page, slot, fn, n)`, or `drop(page, slot)` for one that is not installed.
   */
  flush(gen: Uint32Array, install: (page: number, slot: number, fn: BlockFn, n: number) => void,
    drop: (page: number, slot: number) => void): void {
    const p = this.pending;
    if (p.length === 0) return;
    const t0 = performance.now();
    let ex: Record<string, BlockFn> | null = null;
    try {
      const bytes = moduleBytes(TYPES, IMPORTS, this.memLimits, p.map((e) => e.body));
      ex = new WebAssembly.Instance(new WebAssembly.Module(bytes), this.imports).exports as Record<string, BlockFn>;
    } catch (err) {
      // A translator bug must not take the domain down: these blocks stay interpreted.
      if (this.stats.failed === 0) console.error(`xeno: compiling ${p.length} blocks failed, they stay interpreted: ${(err as Error).message}`);
      this.stats.failed += p.length;
    }
    for (let k = 0; k < p.length; k++) {
      const e = p[k];
      if (gen[e.page] !== e.gen) { this.stats.dropped++; continue; } // its page changed: nothing to undo
      if (ex === null) { drop(e.page, e.slot); continue; }
      install(e.page, e.slot, ex[String(k)], e.n);
      this.stats.blocks++;
      this.stats.insns += e.n;
    }
    if (ex !== null) this.stats.modules++;
    this.stats.compileMs += performance.now() - t0;
    p.length = 0;
  }
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
