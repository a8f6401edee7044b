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
import { compileWorker, compilerEngineId, existingCompileWorker, type CompileResult } from "./compiler.js";
import { moduleBytes } from "./wasm.js";
import { BATCH, BLOCK_TYPE, IMPORTS, TYPES, batchModule, blockWords, startsBlock, translateBatch, type MemLimits, type Pending } from "./batch.js";
import { Translator, STOP_FAULT, ZVA_BYTES, dispatcherBody } from "./translate.js";
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
  /**
   * Of compileMs on this thread: translating (translateBatch and the module's bytes), `new WebAssembly.Module`
   * (V8's Liftoff compile), `new WebAssembly.Instance`, and waiting for the code cache's answer (flushShared).
   */
  translateMs: number;
  moduleMs: number;
  instanceMs: number;
  shareWaitMs: number;
  /** Blocks whose module failed to compile (a translator bug; they stay interpreted). */
  failed: number;
  /** Batches compiled on the vCPU's thread because the compile worker was late (JitEngine.poll). */
  late: number;
  /** Batches the compile worker translated and compiled (JitEngine.poll). */
  worker: number;
  /**
   * Why queues were compiled (CodeCache): full (BATCH blocks, or XENO_JIT_HOT=1), waited long enough
   * (FLUSH_INSNS), or a queued block kept running hot.
   */
  flushFull: number;
  flushAge: number;
  flushHot: number;
  /** Times every compiled block was dropped for the module cap (CodeCache.flush). */
  resets: number;
  /** Accesses of compiled code that took the slow path (TLB miss, MMIO, fault, write to a code page). */
  slowReads: number;
  slowWrites: number;
  /**
   * Now: modules with at least one block installed (a module none of whose blocks is installed is garbage for
   * V8 to collect), the blocks installed, and the wasm bytes of those modules (their code's size in the module
   * format; V8's machine code for them is a few times that, docs/benchmarks.md).
   */
  liveModules: number;
  liveBlocks: number;
  liveBytes: number;
  /** Modules evicted (JitEngine.evict): sparse ones, and old ones over the code budget. */
  evicted: number;
  /**
   * The code cache (compile-worker.ts): blocks installed from modules the worker compiled before (for this
   * engine or another domain's), and instances made of such modules here — nothing translated or compiled.
   */
  sharedBlocks: number;
  sharedModules: number;
  /** Lookups in the code cache that were not answered within XENO_JIT_SHARE_WAIT_MS (compiled without). */
  shareLate: number;
}

/**
 * A compiled module's bookkeeping while any of its blocks is installed: blocks installed now (`live`) and at
 * installation (`blocks`), its size, and each block's (RAM offset, table slot) for eviction.
 */
interface ModuleRecord {
  live: number; blocks: number; bytes: number; slots: number[];
  /** Its id in the compile worker's code cache (released when no block of it is installed), or -1. */
  mid: number;
  inst: WebAssembly.Instance | null;
}


/**
 * The engine's area in the memory (JIT_AREA_BYTES at `jitAt`): the entry map (MAP_ENTRIES × [key, table slot])
 * then the "ran" bytes, one per RAM page (CodeCache.ran: pages entered since the last sweep), for RAM up to
 * 2 GiB.
 */
const MAP_ENTRIES = 1 << 16, MAP_BYTES = MAP_ENTRIES * 8, RAN_BYTES = 1 << 19;
export const JIT_AREA_BYTES = MAP_BYTES + RAN_BYTES;


/** A translated block waiting for its module: where it goes, and the page generation it was translated from. */
interface Entry { page: number; slot: number; gen: number; n: number; end: number; fn?: number }

/**
 * A batch on the compile worker: its queued blocks, the (page, slot) pairs where blocks started on their pages
 * then (translated here instead if the worker does not answer in time), and the engine's `progress` when it was
 * submitted (`at`).
 */
interface InFlight { id: number; pending: Pending[]; known: number[]; at: number }

/** Installs a block: `install(page, slot, fn, n, end)` (CodeCache). */
export type InstallFn = (page: number, slot: number, fn: BlockFn, n: number, end: number) => void;

/**
 * A batch the compile worker has not answered while the vCPUs of this engine retired this many instructions is
 * done on their thread instead (XENO_JIT_LATE_INSNS). Counted in the vCPU's own progress, not wall time: on a
 * loaded host the vCPU's thread waits for a core as much as the worker does. The worker takes ~2–5 ms for a
 * batch when it has a core, ~0.1–0.3 M instructions of the vCPU's.
 */
const LATE_INSNS = Number(process.env.XENO_JIT_LATE_INSNS ?? 5_000_000);

/**
 * XENO_JIT_DUMP=DIR: every module's bytes go to DIR/mNNNNN.wasm, with DIR/mNNNNN.txt naming each function's
 * guest block (RAM page, word slot, instructions), for a text disassembler (e.g. wabt's wasm2wat).
 */
const DUMP = typeof process !== "undefined" ? process.env.XENO_JIT_DUMP ?? "" : "";
/**
 * The code cache (compile-worker.ts) for engines compiling on their own thread: XENO_JIT_SHARE=0 turns it off
 * (A/B runs); XENO_JIT_SHARE_WAIT_MS: how long flush waits for the cache's answer before compiling without it
 * (the answer itself is a few map lookups and word compares; the wait is for the worker to get a core).
 */
const SHARE = typeof process === "undefined" || process.env.XENO_JIT_SHARE !== "0";
const SHARE_WAIT_MS = Number(typeof process === "undefined" ? 2 : process.env.XENO_JIT_SHARE_WAIT_MS ?? 2);
/** XENO_JIT_TRAMPOLINES=0: batch modules import the JS slow paths directly (A/B runs; see the constructor). */
const TRAMPOLINES = typeof process === "undefined" || process.env.XENO_JIT_TRAMPOLINES !== "0";

export class JitEngine {
  /** The vCPU the run loop is calling compiled code for. */
  cpu: JitVcpu | null = null;
  /** Set by a slow-path write that invalidated decoded code (the block then ends after that instruction). */
  codeHit = 0;
  readonly stats: JitStats = { blocks: 0, modules: 0, insns: 0, dropped: 0, compileMs: 0, translateMs: 0, moduleMs: 0, instanceMs: 0, shareWaitMs: 0, failed: 0, late: 0, worker: 0, resets: 0, slowReads: 0, slowWrites: 0, flushFull: 0, flushAge: 0, flushHot: 0,
    liveModules: 0, liveBlocks: 0, liveBytes: 0, evicted: 0, sharedBlocks: 0, sharedModules: 0, shareLate: 0 };
  /** Per RAM page: bytes set by the run loop and the dispatcher when they enter it (CodeCache.ran). */
  readonly ran: Uint8Array;
  /** The dispatcher (see above): same signature as a block. */
  readonly dispatch: BlockFn;
  private readonly map: Int32Array;
  private readonly table: WebAssembly.Table;
  private readonly free: number[] = [];
  /** Per table slot: the module (id) whose block sits there. */
  private slotModule = new Int32Array(4096);
  /**
   * The RAM offset each table slot's block was entered at (valid while slotModule says the slot is used). A shared
   * module's record takes blocks again after some of them were left, so its `slots` list can hold an old (key,
   * idx) pair whose idx a later block of the same module now uses: evict() drops only the current pairs.
   */
  private slotKey = new Uint32Array(4096);
  /** Modules with installed blocks, by id (the count of modules compiled when each was). */
  private readonly modules = new Map<number, ModuleRecord>();
  /** Kept modules of the compile worker's code cache with an instance here: cache id → record id. */
  private readonly sharedRecs = new Map<number, number>();
  private nextRec = 0;
  /** The module whose blocks install() is installing now (enter() charges them to it). */
  private installing = -1;
  private readonly translator: Translator;
  private readonly pending: Pending[] = [];
  private readonly imports: WebAssembly.Imports;
  private readonly memLimits: MemLimits;
  /**
   * Compile modules on this thread's compile worker (compiler.ts) while the vCPU goes on interpreting; installed
   * by poll(). Off: flush() compiles and installs at once (tests that need a block compiled when they ask).
   */
  get async(): boolean { return this.asyncOn; }
  set async(on: boolean) {
    this.asyncOn = on && this.memLimits.shared;
    if (this.asyncOn) compileWorker(); // starts loading now, beside the vCPU
  }
  private asyncOn = false;
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
          case ZVA_BYTES: m.zeroBlock(lo, hi, ZVA_BYTES); break; // DC ZVA (translate.ts dcZva)
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
    // Every batch module imports the slow paths. Not the JS functions themselves: V8 (Node 20's) compiles the
    // wasm-to-JS wrappers of a module's JS imports for each module, at instantiation (TurboFan, on this thread;
    // its code in the module's code space). They come from one small module per engine that imports them once
    // and exports wasm functions that call them: an import of another instance's wasm function needs no wrapper.
    // Measured: docs/benchmarks.md, session 24.
    let slow: { rd: WebAssembly.ImportValue; wr: WebAssembly.ImportValue } = { rd, wr };
    if (TRAMPOLINES) {
      const get = (n: number): number[] => Array.from({ length: n }, (_, k) => [0x20, k]).flat();
      const tramp = moduleBytes(TYPES.slice(1), [{ name: "rd", type: 0 }, { name: "wr", type: 1 }], this.memLimits, [
        { type: 0, locals: [], code: new Uint8Array([...get(3), 0x10, 0, 0x0b]) },
        { type: 1, locals: [], code: new Uint8Array([...get(5), 0x10, 1, 0x0b]) },
      ]);
      const ex = new WebAssembly.Instance(new WebAssembly.Module(tramp), { e: { m: memory, rd, wr } }).exports;
      slow = { rd: ex["0"], wr: ex["1"] };
    }
    this.imports = { e: { m: memory, ...slow } };
    const bytes = moduleBytes([BLOCK_TYPE], [], this.memLimits, [dispatcherBody(jitAt)], 0);
    this.dispatch = new WebAssembly.Instance(new WebAssembly.Module(bytes), { e: { m: memory, t: this.table } }).exports["0"] as BlockFn;
  }

  /**
   * Makes block `fn` at RAM offset `key` reachable through the dispatcher; returns its table slot. Called (via
   * the InstallFn) while install() installs a module's blocks: the block is charged to that module.
   */
  enter(key: number, fn: BlockFn): number {
    if (this.free.length === 0) {
      const n = this.table.length;
      this.table.grow(n);
      for (let k = 2 * n - 1; k >= n; k--) this.free.push(k);
      const sm = new Int32Array(2 * n);
      sm.set(this.slotModule);
      this.slotModule = sm;
      const sk = new Uint32Array(2 * n);
      sk.set(this.slotKey);
      this.slotKey = sk;
    }
    const idx = this.free.pop()!;
    this.table.set(idx, fn);
    const rec = this.modules.get(this.installing);
    if (rec === undefined) throw new Error(`JitEngine.enter outside install (module ${this.installing})`);
    this.slotModule[idx] = this.installing;
    this.slotKey[idx] = key;
    rec.live++;
    rec.blocks++;
    rec.slots.push(key, idx);
    this.stats.liveBlocks++;
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
    const id = this.slotModule[idx], rec = this.modules.get(id)!;
    this.slotModule[idx] = -1;
    this.stats.liveBlocks--;
    if (--rec.live === 0) {
      this.modules.delete(id);
      this.stats.liveModules--;
      this.stats.liveBytes -= rec.bytes;
      if (rec.mid >= 0) { this.sharedRecs.delete(rec.mid); existingCompileWorker()?.release(this.id, rec.mid); }
    }
  }

  /**
   * Evicts modules (calls `drop(key, idx)` for each of their installed blocks, which must leave() it): first
   * every module with fewer than a quarter of its blocks still installed (the rest were dropped with their pages
   * — boot code the sweep took, pages rewritten — but the survivors keep the whole module alive: its code, jump
   * tables and metadata), then the oldest modules while the installed modules' wasm bytes exceed `budget`. The
   * dropped blocks are compiled again once hot, into new (fuller) modules. Returns the modules evicted.
   */
  evict(budget: number, drop: (key: number, idx: number) => void): number {
    const victims: number[] = [];
    let bytes = this.stats.liveBytes;
    for (const [id, rec] of this.modules) {
      if (4 * rec.live < rec.blocks) { victims.push(id); bytes -= rec.bytes; }
    }
    if (bytes > budget) {
      for (const [id, rec] of this.modules) { // a Map iterates in insertion order: oldest first
        if (bytes <= budget) break;
        if (4 * rec.live < rec.blocks) continue;
        victims.push(id);
        bytes -= rec.bytes;
      }
    }
    for (const id of victims) {
      const sl = this.modules.get(id)!.slots;
      for (let k = 0; k < sl.length; k += 2) {
        const key = sl[k], idx = sl[k + 1];
        if (this.slotModule[idx] === id && this.slotKey[idx] === key) drop(key, idx);
      }
      if (this.modules.has(id)) throw new Error(`JitEngine.evict: module ${id} still has installed blocks`);
    }
    this.stats.evicted += victims.length;
    return victims.length;
  }

  /**
   * Queues the block at word `slot` of a code page whose words are words[base..base + 1024) (read when the queue
   * is compiled; a write to the page in between changes its generation and the block is dropped). Returns false
   * when its first instruction cannot be translated.
   */
  queue(page: number, slot: number, gen: number, words: Int32Array, base: number): boolean {
    if (!startsBlock(this.translator, words, base + slot)) return false;
    this.pending.push({ page, slot, gen, words, base, n: 0, body: null, end: -1 });
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
   * Translates the queue into one module and installs each block whose page generation still matches:
   * `install(page, slot, fn, n, end)`, or `drop(page, slot)` for one that is not installed; `known(page, slot)`:
   * whether a block starts there already (see translateBatch). With `async` the batch is translated and compiled
   * on the compile worker and installed by a later poll().
   */
  flush(gen: Uint32Array, install: InstallFn, drop: (page: number, slot: number) => void,
    known: (page: number, slot: number) => boolean = () => false): void {
    const p = this.pending;
    if (p.length === 0) return;
    const t0 = performance.now();
    const w = this.asyncOn && DUMP === "" ? compileWorker() : null;
    if (w !== null && w.ready) {
      // The worker reads the words from the domain's memory (shared): a page written since its blocks were
      // queued has a new generation, so whatever was translated from it is dropped at install.
      const msg = jobMessage(p, known), kn = Array.from(msg.subarray(1 + 4 * p.length));
      const id = this.nextBatch++;
      this.inflight.push({ id, pending: p.slice(), known: kn, at: this.progress });
      p.length = 0;
      w.submit(this.id, id, this.memory, this.memLimits, this.translator.fences, msg);
      this.stats.compileMs += performance.now() - t0;
      return;
    }
    if (!this.flushShared(p, gen, install, drop, known)) {
      this.install(this.translateHere(p, known)?.instance ?? null, p, gen, install, drop, this.lastBytes);
    }
    p.length = 0;
    this.stats.compileMs += performance.now() - t0;
  }

  /** Translates, compiles and instantiates batch `p` on this thread; null (counted as failed) if that fails. */
  private translateHere(p: Pending[], known: (page: number, slot: number) => boolean): { module: WebAssembly.Module; instance: WebAssembly.Instance } | null {
    let bytes: Uint8Array<ArrayBuffer>;
    const t0 = performance.now();
    try {
      translateBatch(this.translator, p, known);
      bytes = batchModule(p, this.memLimits);
      if (DUMP !== "") dumpModule(DUMP, this.stats.modules + this.stats.failed, bytes, p);
    } catch (err) {
      this.compileFailed(p.length, err);
      for (const e of p) e.n = 0;
      return null;
    }
    this.stats.translateMs += performance.now() - t0;
    this.lastBytes = bytes.length;
    return this.compile(bytes, p.length);
  }
  /** The size of the module translateHere made last. */
  private lastBytes = 0;

  /** Batches on the compile worker. */
  get inFlight(): number { return this.inflight.length; }
  /** Instructions the engine's vCPUs have retired (CodeCache.tick adds each run's): the clock of LATE_INSNS. */
  progress = 0;

  /**
   * Installs the batches the compile worker has finished (see flush); returns how many. A batch that has waited
   * LATE_INSNS of `progress` is translated and compiled here instead (a loaded host may leave the worker without a core for a
   * while; the vCPU would interpret meanwhile); the worker's module for it is then dropped when it comes.
   * `now`: every batch still in flight is done here (CodeCache.settle).
   */
  poll(gen: Uint32Array, install: InstallFn, drop: (page: number, slot: number) => void, now = false): number {
    const q = this.inflight;
    if (q.length === 0) return 0;
    const w = compileWorker()!;
    let n = 0;
    for (;;) {
      const r = w.take(this.id);
      if (r === null) break;
      if (q.length === 0 || r.id < q[0].id) { w.releaseResult(r); continue; } // done here meanwhile
      const b = q.shift()!;
      if (b.id !== r.id) throw new Error(`compile worker answered batch ${r.id}, expected ${b.id}`);
      const t0 = performance.now();
      let inst: WebAssembly.Instance | null = null;
      const done: Entry[] = [];
      // Blocks served from kept modules first (the worker translated only the rest).
      this.installShared(r, gen, install, drop);
      if (r.module === null) {
        if (r.error !== null) this.compileFailed(b.pending.length, new Error(r.error));
        else for (const e of b.pending) if (!r.shared.some((s) => hasBlock(s.blocks, e.page, e.slot))) drop(e.page, e.slot);
      } else {
        for (let k = 0; k + 4 < r.blocks.length; k += 5) {
          done.push({ page: r.blocks[k], slot: r.blocks[k + 1], gen: r.blocks[k + 2], n: r.blocks[k + 3], end: r.blocks[k + 4] });
        }
        inst = this.instantiate(r.module, done.length);
      }
      if (r.module !== null || r.error !== null) {
        this.install(inst, inst === null ? b.pending.filter((e) => !r.shared.some((s) => hasBlock(s.blocks, e.page, e.slot))) : done,
          gen, install, drop, r.size, r.mid);
      }
      this.stats.compileMs += performance.now() - t0;
      this.stats.worker++;
      n++;
    }
    while (q.length > 0) {
      const t0 = performance.now();
      if (now || this.progress - q[0].at > LATE_INSNS) {
        const b = q.shift()!;
        const kn = (page: number, slot: number): boolean => {
          for (let k = 0; k < b.known.length; k += 2) if (b.known[k] === page && b.known[k + 1] === slot) return true;
          return false;
        };
        this.install(this.translateHere(b.pending, kn)?.instance ?? null, b.pending, gen, install, drop, this.lastBytes);
        this.stats.compileMs += performance.now() - t0;
        this.stats.late++;
        n++;
      }
      if (!now) break;
    }
    return n;
  }

  /** Installs the blocks a result serves from the code cache's kept modules (compile-worker.ts). */
  private installShared(r: CompileResult, gen: Uint32Array, install: InstallFn, drop: (page: number, slot: number) => void): void {
    for (const s of r.shared) {
      const sh: Entry[] = [];
      for (let k = 0; k + 5 < s.blocks.length; k += 6) {
        sh.push({ page: s.blocks[k], slot: s.blocks[k + 1], gen: s.blocks[k + 2], n: s.blocks[k + 3], end: s.blocks[k + 4], fn: s.blocks[k + 5] });
      }
      const have = this.sharedRecs.get(s.id);
      const si = have !== undefined ? this.modules.get(have)!.inst : this.instantiate(s.module, sh.length);
      if (have === undefined && si !== null) this.stats.sharedModules++;
      this.install(si, sh, gen, install, drop, s.size, s.id, true);
    }
  }

  /**
   * flush() on this thread with the code cache (a compile worker this thread has already, e.g. the hypervisor's
   * for every domain thread): asks the cache for the batch's blocks (waiting up to SHARE_WAIT_MS for its answer,
   * else doing without), translates and compiles the rest here from copies of their pages, and offers that
   * module to the cache with the words it was made from. Returns false when there is no cache to ask.
   */
  private flushShared(p: Pending[], gen: Uint32Array, install: InstallFn, drop: (page: number, slot: number) => void,
    known: (page: number, slot: number) => boolean): boolean {
    const w = SHARE ? existingCompileWorker() : null;
    if (w === null || !w.ready || DUMP !== "" || !this.memLimits.shared) return false; // the worker reads shared memory only
    const id = this.nextBatch++;
    w.submit(this.id, id, this.memory, this.memLimits, this.translator.fences, jobMessage(p, known), true);
    const tw = performance.now();
    const r = w.await(this.id, id, SHARE_WAIT_MS);
    this.stats.shareWaitMs += performance.now() - tw;
    let rest = p;
    if (r === null) this.stats.shareLate++;
    else if (r.shared.length > 0) {
      this.installShared(r, gen, install, drop);
      rest = p.filter((e) => !r.shared.some((s) => hasBlock(s.blocks, e.page, e.slot)));
    }
    if (rest.length === 0) return true;
    // Translated from copies of their pages: the words offered with the module are what its code was made from.
    const copies = new Map<number, Int32Array>();
    for (const e of rest) {
      let c = copies.get(e.page);
      if (c === undefined) copies.set(e.page, c = e.words.slice(e.base, e.base + 1024));
      e.words = c;
      e.base = 0;
    }
    const inst = this.translateHere(rest, known);
    let mid = -1;
    if (inst !== null) {
      const b = blockWords(rest);
      mid = w.offer({ engine: this.id, mem: this.memLimits, fences: this.translator.fences, module: inst.module, size: this.lastBytes, ...b });
    }
    this.install(inst?.instance ?? null, rest, gen, install, drop, this.lastBytes, mid);
    return true;
  }

  /** Compiles and instantiates a module here; null (counted as failed) if that fails. */
  private compile(bytes: Uint8Array<ArrayBuffer>, blocks: number): { module: WebAssembly.Module; instance: WebAssembly.Instance } | null {
    let m: WebAssembly.Module;
    const t0 = performance.now();
    try {
      m = new WebAssembly.Module(bytes);
    } catch (err) {
      this.compileFailed(blocks, err);
      return null;
    }
    this.stats.moduleMs += performance.now() - t0;
    const instance = this.instantiate(m, blocks);
    return instance === null ? null : { module: m, instance };
  }

  private instantiate(m: WebAssembly.Module, blocks: number): WebAssembly.Instance | null {
    const t0 = performance.now();
    try {
      return new WebAssembly.Instance(m, this.imports);
    } catch (err) {
      this.compileFailed(blocks, err);
      return null;
    } finally {
      this.stats.instanceMs += performance.now() - t0;
    }
  }

  /** A translator bug must not take the domain down: these blocks stay interpreted. */
  private compileFailed(blocks: number, err: unknown): void {
    if (this.stats.failed === 0) console.error(`xeno: compiling ${blocks} blocks failed, they stay interpreted: ${(err as Error).message}`);
    this.stats.failed += blocks;
  }

  /**
   * `bytes`: the module's size (wasm bytes), for the live-code figures; `mid`: its id in the compile worker's
   * code cache (-1: not kept there); `shared`: its blocks come from a kept module (entry.fn names each one's
   * function), whose instance here, if there is one already, takes them.
   */
  private install(inst: WebAssembly.Instance | null, entries: readonly Entry[], gen: Uint32Array, install: InstallFn,
    drop: (page: number, slot: number) => void, bytes = 0, mid = -1, shared = false): void {
    const ex = inst === null ? null : inst.exports as Record<string, BlockFn>;
    const old = mid >= 0 ? this.sharedRecs.get(mid) : undefined;
    const id = old ?? this.nextRec++;
    const rec: ModuleRecord = old !== undefined ? this.modules.get(old)! : { live: 0, blocks: 0, bytes, slots: [], mid, inst };
    if (old === undefined) this.modules.set(id, rec);
    this.installing = id;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k];
      if (gen[e.page] !== e.gen) { this.stats.dropped++; continue; } // its page changed: nothing to undo
      if (ex === null || e.n === 0) { drop(e.page, e.slot); continue; }
      install(e.page, e.slot, ex[String(e.fn ?? k)], e.n, e.end);
      this.stats.blocks++;
      this.stats.insns += e.n;
      if (shared) this.stats.sharedBlocks++;
    }
    this.installing = -1;
    if (old === undefined) {
      if (rec.live === 0) {
        this.modules.delete(id);
        if (mid >= 0) existingCompileWorker()?.release(this.id, mid);
      } else {
        this.stats.liveModules++;
        this.stats.liveBytes += bytes;
        if (mid >= 0) this.sharedRecs.set(mid, id);
      }
    }
    if (ex !== null && !shared) this.stats.modules++;
  }
}

/** A batch for the compile worker (CompileJob.job): the queued blocks, then where blocks start on their pages. */
function jobMessage(p: readonly Pending[], known: (page: number, slot: number) => boolean): Int32Array<ArrayBuffer> {
  const pageIds: number[] = [], kn: number[] = [];
  for (const e of p) {
    if (pageIds.includes(e.page)) continue;
    pageIds.push(e.page);
    for (let s = 0; s < 1024; s++) if (known(e.page, s)) kn.push(e.page, s);
  }
  const head = 1 + 4 * p.length;
  const msg = new Int32Array(head + kn.length);
  msg[0] = p.length;
  p.forEach((e, k) => { msg[1 + 4 * k] = e.page; msg[2 + 4 * k] = e.slot; msg[3 + 4 * k] = e.gen; msg[4 + 4 * k] = e.base; });
  msg.set(kn, head);
  return msg;
}

/** Whether (page, slot) is among the sextuples of a SharedUse's blocks. */
function hasBlock(b: Int32Array, page: number, slot: number): boolean {
  for (let k = 0; k + 5 < b.length; k += 6) if (b[k] === page && b[k + 1] === slot) return true;
  return false;
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
 * then the vCPU's state block, its TLB area and the engine's area. `shared`: a SharedArrayBuffer, which the
 * compile worker needs to read code from (tests of it); one thread runs in it either way.
 */
export function soloJitMemory(ramBytes: number, shared = false): { memory: WebAssembly.Memory; stateAt: number; tlbAt: number; jitAt: number } {
  const stateAt = ramBytes, tlbAt = ramBytes + VCPU_STATE_BYTES, jitAt = tlbAt + TLB_AREA_BYTES;
  const pages = Math.ceil((jitAt + JIT_AREA_BYTES) / 65536);
  return { memory: new WebAssembly.Memory({ initial: pages, maximum: pages, shared }), stateAt, tlbAt, jitAt };
}
