/**
 * The compiling engine's bookkeeping: blocks that ran hot are translated (translate.ts) at once and queued;
 * the queue is compiled as one WebAssembly module (many blocks per module: a module alone costs hundreds of
 * microseconds, a block inside a shared one a few), instantiated over the domain's memory with the slow-path
 * imports and the engine's function table, and its blocks installed: in the table (where other blocks'
 * direct branches tail-call them) and in the CodeCache's block table (where the run loop finds them).
 *
 * Table slots: each block gets one when it is queued, so blocks of one batch — a loop's own block included —
 * chain to each other. A slot holds the exit stub (return to the run loop) until its block is installed and
 * again once it is dropped. Only blocks of the same code page chain to a slot, and a page's blocks are dropped
 * together (write, IC, sweep), so a freed slot is referenced by no reachable code and can be reused.
 *
 * One engine per CodeCache, i.e. per thread running a domain's vCPUs; the run loop names the vCPU it calls
 * compiled code for (`cpu`) so the slow paths reach that vCPU's MMU.
 */
import { moduleBytes, I32, type FuncBody, type FuncType } from "./wasm.js";
import { Translator, BLOCK_LOCALS, MAX_BLOCK, type ChainLookup } from "./translate.js";
import type { Decoder } from "../decoder.js";
import type { Mmu } from "../../../mmu/mmu.js";
import { TLB_AREA_BYTES, TLB_ASID, TLB_OFF, TLB_PERM, TLB_SLOT_MASK, TLB_TAG_HI, TLB_TAG_LO } from "../../../mmu/mmu.js";
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
}

const BLOCK_TYPE: FuncType = { params: [I32, I32, I32, I32, I32, I32], results: [I32] };
const TYPES: FuncType[] = [
  BLOCK_TYPE, // 0: block
  { params: [I32, I32, I32], results: [I32] }, // 1: rd(lo, hi, size)
  { params: [I32, I32, I32, I32, I32], results: [I32] }, // 2: wr(lo, hi, size, vlo, vhi)
];
const IMPORTS = [{ name: "rd", type: 1 }, { name: "wr", type: 2 }];

interface Pending { page: number; slot: number; gen: number; n: number; index: number; body: FuncBody }

/** Blocks per module when the queue is flushed for size. */
const BATCH = Number(process.env.XENO_JIT_BATCH ?? 64);

/** The exit stub: a block that returns `done` (to the run loop) without running anything. */
const STUB_BYTES = moduleBytes([BLOCK_TYPE], [], { pages: 1, maxPages: 1, shared: false },
  [{ type: 0, locals: [], code: Uint8Array.of(0x20, 4, 0x0b) }]);

export class JitEngine {
  /** The vCPU the run loop is calling compiled code for. */
  cpu: JitVcpu | null = null;
  /** Set by a slow-path write that invalidated decoded code (the block then ends after that instruction). */
  codeHit = 0;
  readonly stats: JitStats = { blocks: 0, modules: 0, insns: 0, dropped: 0, compileMs: 0, failed: 0 };
  /** Every block's table slot; blocks tail-call each other through it. */
  readonly table: WebAssembly.Table;
  private readonly stub: BlockFn;
  private readonly free: number[] = [];
  private readonly translator: Translator;
  private readonly pending: Pending[] = [];
  private readonly imports: WebAssembly.Imports;
  private readonly memLimits: { pages: number; maxPages: number; shared: boolean };

  constructor(readonly memory: WebAssembly.Memory, decoder: Decoder, shared: boolean) {
    this.translator = new Translator(decoder, {
      tagLo: TLB_TAG_LO, tagHi: TLB_TAG_HI, asid: TLB_ASID, off: TLB_OFF, perm: TLB_PERM, mask: TLB_SLOT_MASK,
    });
    const pages = memory.buffer.byteLength / 65536;
    this.memLimits = { pages, maxPages: pages, shared };
    const stubMem = new WebAssembly.Memory({ initial: 1, maximum: 1 });
    this.stub = new WebAssembly.Instance(new WebAssembly.Module(STUB_BYTES), { e: { m: stubMem } }).exports["0"] as BlockFn;
    this.table = new WebAssembly.Table({ element: "anyfunc", initial: 1024 });
    for (let k = 1023; k >= 0; k--) { this.table.set(k, this.stub); this.free.push(k); }
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
    this.imports = { e: { m: memory, t: this.table, rd, wr } };
  }

  /** A free table slot (holding the stub), growing the table when none is left. */
  private allocSlot(): number {
    if (this.free.length === 0) {
      const n = this.table.length;
      this.table.grow(n, this.stub);
      for (let k = 2 * n - 1; k >= n; k--) this.free.push(k);
    }
    return this.free.pop()!;
  }

  /** Returns a block's slot (its block dropped): the stub again, free for reuse. */
  release(index: number): void {
    this.table.set(index, this.stub);
    this.free.push(index);
  }

  /**
   * Translates the block at word `slot` of a code page whose words are words[base..base + 1024) and queues it;
   * `chain` gives the table slots of blocks of the same page (see ChainLookup). Returns the block's table
   * slot, or -1 when its first instruction cannot be translated.
   */
  queue(page: number, slot: number, gen: number, words: Int32Array, base: number, chain: ChainLookup): number {
    const index = this.allocSlot();
    const self: ChainLookup = (s) => (s === slot ? index : chain(s));
    const n = this.translator.translate(words, base + slot, Math.min(MAX_BLOCK, 1024 - slot), self);
    if (n === 0) { this.free.push(index); return -1; }
    const code = this.translator.c.buf.slice(0, this.translator.c.len);
    this.pending.push({ page, slot, gen, n, index, body: { type: 0, locals: BLOCK_LOCALS, code } });
    return index;
  }

  get queued(): number { return this.pending.length; }
  get full(): boolean { return this.pending.length >= BATCH; }

  /**
   * Compiles the queue as one module and installs each block whose page generation still matches:
   * `install(page, slot, fn, n)`; a block not installed gives its table slot back through `drop(page, slot)`.
   */
  flush(gen: Uint32Array, install: (page: number, slot: number, fn: BlockFn, n: number) => void,
    drop: (page: number, slot: number) => void): void {
    const p = this.pending;
    if (p.length === 0) return;
    const t0 = performance.now();
    let ex: Record<string, BlockFn> | null = null;
    try {
      const bytes = moduleBytes(TYPES, IMPORTS, this.memLimits, p.map((e) => e.body), this.table.length);
      ex = new WebAssembly.Instance(new WebAssembly.Module(bytes), this.imports).exports as Record<string, BlockFn>;
    } catch (err) {
      // A translator bug must not take the domain down: these blocks stay interpreted.
      if (this.stats.failed === 0) console.error(`xeno: compiling ${p.length} blocks failed, they stay interpreted: ${(err as Error).message}`);
      this.stats.failed += p.length;
    }
    for (let k = 0; k < p.length; k++) {
      const e = p[k];
      if (ex === null || gen[e.page] !== e.gen) {
        if (ex !== null) this.stats.dropped++;
        drop(e.page, e.slot);
        continue;
      }
      const fn = ex[String(k)];
      this.table.set(e.index, fn);
      install(e.page, e.slot, fn, e.n);
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
 * then the vCPU's state block, then its TLB area. Not shared (one thread).
 */
export function soloJitMemory(ramBytes: number): { memory: WebAssembly.Memory; stateAt: number; tlbAt: number } {
  const stateAt = ramBytes, tlbAt = ramBytes + VCPU_STATE_BYTES;
  const pages = Math.ceil((tlbAt + TLB_AREA_BYTES) / 65536);
  return { memory: new WebAssembly.Memory({ initial: pages, maximum: pages }), stateAt, tlbAt };
}
