/**
 * One AArch64 vCPU (ARMv8.0-A, EL0 and EL1): architectural state, the fetch/dispatch loop with a per-page
 * decoded-instruction cache, and exception entry/return (Arm ARM D1.10 "Exception entry").
 *
 * EL2 and EL3 are not executed as guest code: the hypervisor (Xeno) is EL2. With `exits` set, what a
 * hypervisor must see ends run() with an exit code in `stop` (Cloud Hypervisor's `Vcpu::run() -> VmExit`):
 * `hvc`/`smc` (STOP_HVC), inner-shareable maintenance and SEV that other vCPUs must apply (STOP_BROADCAST),
 * writes to the generic-timer registers (STOP_TIMER), and stage-2 faults (STOP_STAGE2); the caller handles the
 * exit and calls run() again. No hypervisor code runs inside an instruction handler (MMIO goes through the
 * MMU's device table, directly).
 * The user-mode runner stands in for EL1 through `onEl1` (see src/user).
 */
import { Decoder, type Handler } from "./decoder.js";
import { Mmu, MMU_FAULT } from "../../mmu/mmu.js";
import { PC2, R_SLOTS, SP2, SP_EL0, SP_EL1, DAIF_A, DAIF_I, DAIF_F, JUMP_CONTEXT, VCPU_STATE_BYTES, ST_R, ST_V,
  ST_PSTATE, ST_SYS, PS_WORDS, PS_NZCV, PS_DAIF, PS_EL, PS_SPSEL, PS_FPCR, PS_FPSR, PS_EXCL_OFF, PS_EXCL_SIZE,
  PS_EXCL_LO, PS_EXCL_HI, PS_EVENT, PS_IL, PS_JIT_STOP } from "./state.js";
import { MASK_EL1, MASK_FP, MASK_SP_EL0, STOP_FAULT } from "./jit/translate.js";
export { JUMP_BRANCH, JUMP_CONTEXT } from "./state.js";
import { CPACR_EL1, ELR_EL1, ESR_EL1, FAR_EL1, SPSR_EL1, SYS_SLOTS, VBAR_EL1 } from "./sysregs.js";
import { registerAll } from "./isa.js";
import { endBlock } from "./sys-defs.js";
import type { BlockFn, JitEngine } from "./jit/engine.js";
import { PageSlab } from "./page-slab.js";
import { resetSysRegs } from "./sysregs-el1.js";
import { BlockCheck, VERIFY, verifyStats } from "./jit/verify.js";
import { hostCounter } from "./sys-timer.js";

/** Exception classes (ESR_ELx.EC, Arm ARM D17.2.40). */
export const EC_UNKNOWN = 0x00, EC_WFX = 0x01, EC_FP_ACCESS = 0x07, EC_ILLEGAL = 0x0e, EC_SVC = 0x15,
  EC_HVC = 0x16, EC_SMC = 0x17, EC_SYSREG = 0x18, EC_IABT_LOWER = 0x20, EC_IABT_SAME = 0x21, EC_PC_ALIGN = 0x22,
  EC_DABT_LOWER = 0x24, EC_DABT_SAME = 0x25, EC_SP_ALIGN = 0x26, EC_FP_EXC = 0x2c, EC_SERROR = 0x2f,
  EC_BRK = 0x3c;

/** Vector offsets from VBAR (Arm ARM D1.10.2). */
export const VEC_SYNC = 0x000, VEC_IRQ = 0x080, VEC_FIQ = 0x100, VEC_SERROR = 0x180;


/** Why run() returned: the budget ran out, WFI, halted (powered off), WFE. */
export const STOP_BUDGET = 0, STOP_WFI = 1, STOP_HALT = 2, STOP_WFE = 3;
/**
 * Exits (only when Cpu.exits is set), each taken right after the instruction that caused it (PC is past it):
 * STOP_HVC: `hvc`/`smc` with ESR class exitEc (EC_HVC/EC_SMC) and ISS exitIss (the immediate);
 * STOP_BROADCAST: TLBI ...IS, IC IALLUIS, IC IVAU or SEV (instruction exitInsn, operand exitXlo/exitXhi) that
 *   every other vCPU of the domain must apply (applyBroadcast) before this one goes on;
 * STOP_TIMER: a generic-timer register was written (exitTimers: bit 1 << timer), so the platform re-evaluates
 *   the timer's interrupt line at once (a handler that moved CVAL forward must not see the stale level).
 */
export const STOP_HVC = 4, STOP_BROADCAST = 5, STOP_TIMER = 6;
/**
 * Exit STOP_STAGE2: an access faulted in stage 2 (the MMU's fault record has faultStage2 = 1, faultIpa, …);
 * PC is still at the faulting instruction, which did not complete. The hypervisor decides (Xen/Arm injects an
 * abort into the guest for an address its P2M does not map).
 */
export const STOP_STAGE2 = 7;

/** Handler that marks an empty decode-cache slot. Never executed. */
const LAZY: Handler = () => { throw new Error("LAZY handler executed"); };

const decoder = new Decoder((c, i) => c.undefinedInstruction(i));
registerAll(decoder);

/** The decoder shared by all CPUs of this thread (tests use it to name encodings). */
export function sharedDecoder(): Decoder { return decoder; }

/**
 * Decoded instructions per RAM page: one handler per word slot, LAZY until first executed. Handlers are pure
 * functions of (cpu, word), so the vCPUs of a domain running in one thread can share a cache.
 *
 * Pages are created on first execution and dropped by sweep() when they have not been entered since the
 * previous sweep: a booted Debian guest decodes ~1,565 pages (8 KiB of handler array each, ~12.5 MiB) of which
 * an idle guest runs ~100; the rest is boot code. A dropped page is decoded again if it runs again.
 */
export class CodeCache {
  /** Preallocated so the array stays in fast (non-dictionary) mode however sparse the code pages are. */
  readonly pages: (Handler[] | undefined)[];
  /**
   * 1 for each page entered by a run loop since the last sweep. The loops set it when they (re)load a page's
   * handler array (every ~30 instructions in the kernel), not per instruction.
   */
  readonly ran: Uint8Array;
  /** Compiled blocks per code page, by starting word slot (null: none yet), with their lengths and heat. */
  readonly blocks: ((BlockFn | null)[] | undefined)[] = [];
  readonly blockLen: (Uint8Array | undefined)[] = [];
  readonly heat: (Uint16Array | undefined)[] = [];
  /**
   * Per code page and word slot: 1 where a compiled block ended before an instruction the compiler does not
   * take — the slot after it starts a block, so the run loop counts heat there (see Cpu.run: heat is counted
   * only where a block can start, not on every instruction of a straight run).
   */
  readonly ends: (Uint8Array | undefined)[] = [];
  /** Per code page and word slot: the engine's table slot of the block installed there (JitEngine.enter), or -1. */
  private readonly index: (Int32Array | undefined)[] = [];
  /** Where blockLen, ends, heat and index live: 8 KiB of a slab per page (page-slab.ts), by page. */
  private readonly slab = new PageSlab(8192);
  private readonly slabSlot: number[] = [];
  /** Per RAM page: bumped whenever its decoded code is dropped, so a block translated before is not installed. */
  readonly gen: Uint32Array;
  /**
   * Per RAM page: 1 once anything was decoded, queued for compilation or installed there since the page was
   * created or last invalidated; 0 means the page's arrays are as invalidatePage leaves them (every handler LAZY,
   * no block, heat 0), so a write to it has nothing to reset. A page stays marked as code in the MMU after an
   * invalidation (writes keep coming here) and boot code freed and reused as data was invalidated by most of its
   * writes, each filling the 1,024-slot arrays (docs/benchmarks.md, session 26).
   */
  readonly live: Uint8Array;
  /** Invalidations of a decoded page, and those of them with nothing to reset (live 0): diagnostics. */
  invalidations = 0;
  cleanInvalidations = 0;
  private readonly used: number[] = [];
  /** Pages created since this cache was (diagnostics: with `size`, how much sweeping re-decodes). */
  created = 0;
  /** True when hot blocks are compiled to WebAssembly (jit/), else Cpu.run takes the plain loop. */
  compiling: boolean;
  /**
   * With snapshotWords(): per page, the instruction words its handlers were decoded from, which the run loop
   * executes them with. Needed when another thread may write the code (vCPUs on several threads): a handler
   * run with a word written after its decode (before the writer's IC reached this thread) would execute a mix
   * of two instructions — e.g. a static key's B decoded, its NOP read back, run as a BL to nowhere. Null: the
   * loop reads the words from RAM (one thread: every write to a code page invalidates it first).
   */
  words: (Int32Array | undefined)[] | null = null;
  /**
   * Entries of a block's first instruction before it is compiled: XENO_JIT_HOT, else the default the owner
   * passes (1,000 for a machine: a kernel boot is lukewarm code; the user-mode runner's is lower, src/user).
   */
  readonly hot: number;
  /**
   * The wasm bytes of installed modules kept past a sweep (XENO_JIT_CODE_BUDGET; see JitEngine.evict): the
   * per-domain bound on compiled code (per thread running the domain's vCPUs).
   */
  codeBudget = CODE_BUDGET;
  /** Instructions retired since the queue of translated blocks was last compiled or empty (see tick). */
  private queueAge = 0;
  /**
   * `jit`: the compiling engine for this cache's vCPUs (their RAM, state blocks and TLBs in its memory), or
   * null for pure interpretation. XENO_JIT=0 turns it off everywhere (A/B runs, bisecting). `background` with
   * XENO_JIT_ASYNC=1 (read here): the engine translates and compiles on a compile worker (JitEngine.async). Off by
   * default: measured slower (docs/cpu-internals.md, "Compiling beside the vCPU").
   */
  constructor(ramPages: number, readonly jit: JitEngine | null = null, background = false, hot = HOT) {
    this.compiling = jit !== null && JIT_ENABLED;
    this.hot = Math.max(1, hot | 0);
    // Forced compilation (hot 1) wants each block compiled when it first runs: at once, on this thread.
    if (this.compiling && background && this.hot > 1 && process.env.XENO_JIT_ASYNC === "1") jit!.async = true;
    this.pages = new Array<Handler[] | undefined>(ramPages).fill(undefined);
    // With an engine, its dispatcher marks the pages it enters too: the bytes live in the engine's area.
    this.ran = this.compiling ? jit!.ran.subarray(0, ramPages) : new Uint8Array(ramPages);
    this.ran.fill(0);
    this.gen = new Uint32Array(ramPages);
    this.live = new Uint8Array(ramPages);
  }
  /** Pages holding decoded instructions now. */
  get size(): number { return this.used.length; }
  create(page: number): Handler[] {
    const code = new Array<Handler>(1024).fill(LAZY);
    this.pages[page] = code;
    if (this.words !== null) this.words[page] = new Int32Array(1024);
    // The block tables only when blocks are compiled: 16 KiB per code page (8 KiB of block functions on the V8
    // heap, 8 KiB of typed tables in the slab) that the machine without the compiler would carry for nothing.
    if (this.compiling) {
      this.blocks[page] = new Array<BlockFn | null>(1024).fill(null);
      // The typed tables share one slot of the slab (page-slab.ts: churned small buffers stayed resident).
      const slot = this.slab.alloc(), buf = this.slab.buffer(slot), o = this.slab.offset(slot);
      this.slabSlot[page] = slot;
      this.blockLen[page] = new Uint8Array(buf, o, 1024);
      this.ends[page] = new Uint8Array(buf, o + 1024, 1024);
      this.heat[page] = new Uint16Array(buf, o + 2048, 1024);
      this.index[page] = new Int32Array(buf, o + 4096, 1024).fill(-1);
    }
    this.used.push(page);
    this.created++;
    return code;
  }
  /** Modules compiled when the blocks were last all dropped (see flush). */
  private modulesAtReset = 0;

  /** Drops a page's compiled blocks (not its decoded handlers): they are compiled again once hot. */
  private dropBlocks(page: number): void {
    if (this.blocks[page] === undefined) return;
    this.blocks[page]!.fill(null);
    this.heat[page]!.fill(0);
    this.ends[page]!.fill(0);
    this.blockLen[page]!.fill(0);
    this.leave(page);
    this.gen[page]++;
  }

  invalidatePage(page: number): void {
    const code = this.pages[page];
    if (code === undefined) return;
    this.invalidations++;
    if (this.live[page] === 0) {
      this.cleanInvalidations++;
      if (this.compiling) this.jit!.codeHit = 1;
      return;
    }
    this.live[page] = 0;
    // Filled, not dropped: a run loop inside this page (a handler wrote to its own page, or IC IVAU/IALLU ran
    // there) holds the array in a local and must see the LAZY slots.
    code.fill(LAZY);
    if (this.compiling) {
      this.dropBlocks(page);
      this.jit!.codeHit = 1;
    }
  }
  /** Takes a page's installed blocks out of the engine's dispatcher. */
  private leave(page: number): void {
    const ix = this.index[page]!, jit = this.jit!;
    for (let k = 0; k < 1024; k++) if (ix[k] >= 0) { jit.leave(page * 4096 + k * 4, ix[k]); ix[k] = -1; }
  }

  invalidateAll(): void { for (const p of this.used) this.invalidatePage(p); }

  /**
   * Drops every compiled block (the decoded handlers stay; blocks are compiled again once hot), which leaves
   * their modules to the GC. Call between runs.
   */
  dropCompiled(): void {
    if (this.compiling) for (const p of this.used) this.dropBlocks(p);
  }

  /**
   * From now on every interpreted handler runs with the word it was decoded from (`words`): for caches of vCPUs
   * whose RAM other threads write. Everything decoded and compiled so far is dropped (decoded and compiled again
   * when it runs). Compiled blocks need no snapshot: a block reads each of its words once, at translation, so it
   * runs each instruction whole, old or new (Arm ARM B2.2.5: either is allowed until the writer's IC reaches
   * this thread, which drops the block).
   */
  snapshotWords(): void {
    if (this.words !== null) return;
    if (this.compiling) this.invalidateAll();
    this.words = new Array<Int32Array | undefined>(this.pages.length).fill(undefined);
    for (const p of this.used) { this.words[p] = new Int32Array(1024); this.invalidatePage(p); }
  }

  /**
   * Drops the decoded pages not entered since the previous sweep and clears `codePage` (the MMU's "writes must
   * invalidate" marks, shared by the domain's MMUs) for them: nothing is cached for them any more, so writes to
   * them (boot code freed by the kernel and reused as data) take the fast path again; a page that runs again is
   * decoded and marked again (Cpu.run → create, Mmu.markCode). Returns the number of pages dropped.
   *
   * Call only between runs, never from inside one (from a handler, a hypercall or an MMIO callback): the run
   * loops keep the current page's arrays in locals, and a dropped array would no longer be invalidated.
   */
  sweep(codePage?: Uint8Array): number {
    const used = this.used, ran = this.ran;
    let kept = 0;
    for (let i = 0; i < used.length; i++) {
      const p = used[i];
      if (ran[p] !== 0) {
        ran[p] = 0;
        used[kept++] = p;
        continue;
      }
      this.pages[p] = undefined;
      this.live[p] = 0;
      if (this.words !== null) this.words[p] = undefined;
      if (this.compiling) {
        this.leave(p);
        this.blocks[p] = undefined; this.blockLen[p] = undefined; this.heat[p] = undefined; this.index[p] = undefined;
        this.ends[p] = undefined;
        this.slab.release(this.slabSlot[p]!);
        this.gen[p]++;
      }
      if (codePage !== undefined) codePage[p] = 0;
    }
    const dropped = used.length - kept;
    used.length = kept;
    // Modules most of whose blocks went with their pages, and the oldest over the budget, go too.
    if (this.compiling) {
      this.jit!.evict(this.codeBudget, this.evictBlock);
      this.slab.trim();
    }
    return dropped;
  }

  /** Drops the installed block at RAM offset `key`, table slot `idx` (JitEngine.evict): compiled again once hot. */
  private readonly evictBlock = (key: number, idx: number): void => {
    const page = key >>> 12, slot = (key & 0xfff) >>> 2, ix = this.index[page];
    if (ix === undefined || ix[slot] !== idx) throw new Error(`CodeCache.evictBlock: no block at 0x${key.toString(16)} in slot ${idx}`);
    this.blocks[page]![slot] = null;
    this.blockLen[page]![slot] = 0;
    this.heat[page]![slot] = 0;
    ix[slot] = -1;
    this.jit!.leave(key, idx);
  };

  /**
   * The block starting at word slot k of a page (RAM words at `base`) ran hot: translate and queue it; a full
   * queue is compiled at once. A block whose first instruction is not translatable cools down (heat 0) and is
   * tried again after another `hot` runs.
   */
  compile(page: number, k: number, ram32: Int32Array, base: number): void {
    const jit = this.jit!, len = this.blockLen[page]!;
    if (len[k] === QUEUED) return;
    if (!jit.queue(page, k, this.gen[page], ram32, base)) {
      // Not translatable: it cools down, and the slot after it starts a block (see `ends`).
      this.heat[page]![k] = 0;
      this.ends[page]![k] = 1;
      return;
    }
    len[k] = QUEUED;
    this.live[page] = 1;
    if (jit.full || this.hot === 1) { jit.stats.flushFull++; this.flush(); }
  }

  /**
   * Called once per Cpu.run with the instructions it retired: installs the modules the compile worker has
   * finished, and compiles a part-filled queue once it has waited FLUSH_INSNS instructions.
   */
  tick(retired: number): void {
    const jit = this.jit!;
    jit.progress += retired;
    if (jit.inFlight !== 0 && jit.poll(this.gen, this.installBlock, this.dropBlock) !== 0) this.capModules();
    if (jit.queued === 0) { this.queueAge = 0; return; }
    this.queueAge += retired;
    if (this.queueAge >= FLUSH_INSNS) { jit.stats.flushAge++; this.flush(); }
  }

  /** Compiles the queued blocks (see JitEngine.flush) and installs those whose pages are unchanged since. */
  flush(): void {
    this.queueAge = 0;
    this.jit!.flush(this.gen, this.installBlock, this.dropBlock, this.known);
    this.capModules();
  }

  /** Compiles and installs everything queued or on the compile worker now, on this thread (tests). */
  settle(): void {
    this.flush();
    if (this.jit!.poll(this.gen, this.installBlock, this.dropBlock, true) !== 0) this.capModules();
  }

  private readonly installBlock = (page: number, slot: number, fn: BlockFn, n: number, end: number): void => {
    const jit = this.jit!;
    this.live[page] = 1;
    this.blocks[page]![slot] = fn;
    if (end >= 0 && end < 1024) this.ends[page]![end] = 1;
    this.blockLen[page]![slot] = n;
    const ix = this.index[page]!;
    if (ix[slot] >= 0) jit.leave(page * 4096 + slot * 4, ix[slot]);
    ix[slot] = jit.enter(page * 4096 + slot * 4, fn);
  };
  private readonly dropBlock = (page: number, slot: number): void => { this.blockLen[page]![slot] = 0; };
  /** Whether a block starts at the slot: compiled, or on its way (queued, or on the compile worker). */
  private readonly known = (page: number, slot: number): boolean =>
    this.blocks[page]?.[slot] != null || this.blockLen[page]?.[slot] === QUEUED;

  /**
   * A hard cap on modules: V8 aborts the process at ~64 k live ones (vm.max_map_count). Past the cap every
   * compiled block is dropped (the decoded handlers stay), which leaves the old modules to the GC.
   */
  private capModules(): void {
    const jit = this.jit!;
    if (jit.stats.modules - this.modulesAtReset >= MAX_MODULES) {
      this.modulesAtReset = jit.stats.modules;
      for (const p of this.used) this.dropBlocks(p);
      jit.stats.resets++;
    }
  }
}

/** Where instructions ran (bench/jit/profile.ts): counted only with XENO_JIT_PROFILE=1. */
export interface JitProfile {
  compiled: number; interpreted: number; calls: number; byName: Map<string, number>;
  /** Of the interpreted: those that ended a compiled block untranslated (CodeCache.ends), by name. */
  ends: number; endsByName: Map<string, number>;
}
const PROFILE: JitProfile | null = typeof process !== "undefined" && process.env.XENO_JIT_PROFILE === "1"
  ? { compiled: 0, interpreted: 0, calls: 0, byName: new Map(), ends: 0, endsByName: new Map() } : null;
function profileInterpreted(w: number, end: boolean): void {
  const p = PROFILE!;
  p.interpreted++;
  const name = decoder.nameOf(w);
  p.byName.set(name, (p.byName.get(name) ?? 0) + 1);
  if (end) { p.ends++; p.endsByName.set(name, (p.endsByName.get(name) ?? 0) + 1); }
}
/** The counts so far, or null when XENO_JIT_PROFILE is not 1. */
export function jitProfile(): JitProfile | null { return PROFILE; }

/** XENO_JIT=0 turns the compiling engine off (pure interpretation), for A/B measurements and bisecting. */
const JIT_ENABLED = typeof process === "undefined" || process.env.XENO_JIT !== "0";
/**
 * Executions of a block start before it is translated. XENO_JIT_HOT=1 forces the compiler: every block is
 * compiled (alone, at once) the first time it runs and runs compiled — for the oracle suites.
 */
const HOT_ENV = typeof process === "undefined" ? undefined : process.env.XENO_JIT_HOT;
const HOT = Math.max(1, Number(HOT_ENV ?? 1000) | 0);
/** The threshold for an owner whose default differs (see CodeCache.hot): XENO_JIT_HOT still wins. */
export function jitHot(fallback: number): number { return HOT_ENV !== undefined ? HOT : fallback; }
/** Modules compiled before all compiled code is dropped (see CodeCache.flush); XENO_JIT_MAX_MODULES overrides. */
const MAX_MODULES = Math.max(1, Number(process.env.XENO_JIT_MAX_MODULES ?? 8192) | 0);
/**
 * The wasm bytes of installed modules a cache keeps past a sweep (XENO_JIT_CODE_BUDGET, bytes): over it the
 * sweep evicts the oldest modules (JitEngine.evict). V8's machine code and metadata for a module are a few times
 * its wasm bytes (docs/benchmarks.md, session 24), so this bounds the compiled code's memory per engine.
 */
const CODE_BUDGET = envCount("XENO_JIT_CODE_BUDGET", 4 << 20, 0);
/** blockLen of a slot whose block is queued for compilation (blocks are at most 63 instructions). */
const QUEUED = 255;
/**
 * Instructions a part-filled queue waits (counted in the vCPUs' retired instructions) before it is compiled
 * anyway; XENO_JIT_FLUSH_INSNS overrides, for A/B runs. A queued block that stays hot does not wait for it (it
 * flushes the queue at 2 × the threshold, Cpu.run), so the wait costs little interpreting, and a longer wait
 * makes fuller modules — each module costs tens of KiB beside its code (docs/benchmarks.md, session 24).
 */
const FLUSH_INSNS = envCount("XENO_JIT_FLUSH_INSNS", 4_000_000, 1);

/** A whole number ≥ `min` from the environment variable `name`, else `def`; anything else is refused clearly. */
function envCount(name: string, def: number, min: number): number {
  const s = typeof process === "undefined" ? undefined : process.env[name];
  if (s === undefined || s === "") return def;
  const v = Number(s);
  if (!Number.isSafeInteger(v) || v < min) throw new RangeError(`${name}=${s}: want a whole number ≥ ${min}`);
  return v;
}

/** Where a vCPU's state block lives: VCPU_STATE_BYTES at a 4 KiB-aligned `offset` of `buffer` (state.ts). */
export interface StateBlock {
  buffer: ArrayBufferLike;
  offset: number;
}

export class Cpu {
  // `declare`: assigned once in the constructor, never first defined as undefined (a class field without an
  // initializer would be), so V8 keeps each field's exact typed-array map and the hot accessors stay monomorphic.
  /** The state block (state.ts) the views below cover. */
  declare readonly block: StateBlock;
  /** General-purpose registers, SP, PC: see state.ts for the layout. */
  declare readonly r: Int32Array;
  /** V0..V31 (128 bits each) with typed views over the block's vector area. */
  declare readonly vi32: Int32Array;
  declare readonly vu32: Uint32Array;
  declare readonly vu16: Uint16Array;
  declare readonly vu8: Uint8Array;
  declare readonly vi8: Int8Array;
  declare readonly vi16: Int16Array;
  declare readonly vf32: Float32Array;
  declare readonly vf64: Float64Array;
  /** System registers (sysregs.ts). */
  declare readonly sys: Int32Array;
  /** The block's PSTATE words (PS_*), current whenever run() is not executing (storePstate). */
  declare readonly ps: Int32Array;

  // PSTATE
  nzcv = 0; // N=8 Z=4 C=2 V=1
  daif = 0xf; // D=8 A=4 I=2 F=1; all masked at reset
  el = 1;
  spsel = 1;
  fpcr = 0;
  fpsr = 0;

  /** Set by a handler that changed PC (JUMP_BRANCH) or the translation context (JUMP_CONTEXT). */
  jumped = 0;
  /** Set by WFI/WFE/halting handlers to leave run(). */
  stop = STOP_BUDGET;

  /** Exclusive monitor (Arm ARM B2.9): RAM offset and size of the reserved location, -1 when open. */
  // They live in the state block only (PS_EXCL_*), not in fields synced around runs: compiled exclusives
  // (jit/translate.ts `exclusive`) read and write the same words, so the two engines always agree on them.
  get exclOff(): number { return this.ps[PS_EXCL_OFF]; }
  set exclOff(v: number) { this.ps[PS_EXCL_OFF] = v; }
  get exclSize(): number { return this.ps[PS_EXCL_SIZE]; }
  set exclSize(v: number) { this.ps[PS_EXCL_SIZE] = v; }
  get exclLo(): number { return this.ps[PS_EXCL_LO]; }
  set exclLo(v: number) { this.ps[PS_EXCL_LO] = v; }
  get exclHi(): number { return this.ps[PS_EXCL_HI]; }
  set exclHi(v: number) { this.ps[PS_EXCL_HI] = v; }

  /** The Event Register (WFE/SEV/SEVL, Arm ARM D1.16.1): 1 when an event is pending. */
  event = 0;
  /** PSTATE.IL: set by an illegal exception return; the next instruction then takes EC 0x0E (Arm ARM D1.4.4). */
  il = 0;

  /** Interrupt lines into this CPU (level-sensitive), set by the interrupt controller. */
  irqLine = 0;
  fiqLine = 0;
  /** A pending SError (asynchronous external abort): edge-like, cleared when taken (PSTATE.A unmasked). */
  serrorLine = 0;

  /** vCPU index within its domain: MPIDR_EL1 affinity (sysregs-el1.ts). */
  vcpuIndex = 0;

  /**
   * True when FP/SIMD instructions must trap at the current EL (CPACR_EL1.FPEN, Arm ARM D17.2.30), kept in
   * step by CPACR writes and EL changes. FP/SIMD handlers test it first:
   * `if (c.fpTrap) { c.fpAccessTrap(); return; }`. Reset: FPEN = 0b11 (reset value is UNKNOWN; we choose
   * "no trap" so bare-metal code and tests can use FP at once), so false.
   */
  fpTrap = false;

  /**
   * The system counter (CNTPCT_EL0) in ticks of CNTFRQ_EL0 (62.5 MHz), as an integer-valued number below
   * 2^53. The default reads the host-wide monotonic clock (src/common/host-clock.ts); a board installs its
   * domain's DomainClock, shared by all its vCPUs and continued across save/restore.
   */
  counter: () => number = hostCounter;
  /**
   * A platform handles exits (see STOP_HVC): hvc/smc, broadcasts and timer writes end run(). Off (the user-mode
   * runner, one CPU and no hypervisor): hvc/smc are UNDEFINED and there is nobody to broadcast to.
   */
  exits = false;
  /** The exit's details (valid when run() returned the matching STOP_* code). */
  exitEc = 0;
  exitIss = 0;
  exitInsn = 0;
  exitXlo = 0;
  exitXhi = 0;
  exitTimers = 0;

  /**
   * Called after a store-release (STLR) or a successful store-exclusive with the RAM offset it wrote, when vCPUs
   * of the domain sleep in WFE on other threads (the platform sets it: vcpu-link.ts wakeWfeSleepers); else null.
   */
  storeWake: ((off: number) => void) | null = null;

  /** Number of instructions retired since creation (approximate: counted per run() slice). */
  retired = 0;

  /** Exceptions targeting EL1 go here instead of the vector table when set (the user-mode runner's kernel). */
  onEl1: ((c: Cpu, vectorOffset: number) => void) | null = null;

  /** Decoded-instruction cache: for each RAM page holding code, one handler per word slot. */
  private readonly code: CodeCache;
  /** Hot code runs compiled: the cache has an engine and this vCPU's TLB is in the engine's memory. */
  private readonly jitOn: boolean;
  readonly mmu: Mmu;

  /**
   * `code`: share one CodeCache between the vCPUs of a domain that run in the same thread. `block`: where the
   * state lives (default: a private buffer); it is cleared to the reset state.
   */
  constructor(mmu: Mmu, code?: CodeCache, block?: StateBlock) {
    const b = block ?? { buffer: new ArrayBuffer(VCPU_STATE_BYTES), offset: 0 };
    if (b.offset % 4096 !== 0 || b.offset < 0 || b.offset + VCPU_STATE_BYTES > b.buffer.byteLength) {
      throw new RangeError(`vCPU state block at ${b.offset}: not a 4 KiB-aligned block inside its buffer`);
    }
    this.block = b;
    const buf = b.buffer, o = b.offset;
    new Uint8Array(buf, o, VCPU_STATE_BYTES).fill(0);
    this.r = new Int32Array(buf, o + ST_R, R_SLOTS);
    this.vi32 = new Int32Array(buf, o + ST_V, 128);
    this.vu32 = new Uint32Array(buf, o + ST_V, 128);
    this.vu16 = new Uint16Array(buf, o + ST_V, 256);
    this.vu8 = new Uint8Array(buf, o + ST_V, 512);
    this.vi8 = new Int8Array(buf, o + ST_V, 512);
    this.vi16 = new Int16Array(buf, o + ST_V, 256);
    this.vf32 = new Float32Array(buf, o + ST_V, 128);
    this.vf64 = new Float64Array(buf, o + ST_V, 64);
    this.ps = new Int32Array(buf, o + ST_PSTATE, PS_WORDS);
    this.ps[PS_EXCL_OFF] = -1; // the exclusive monitor starts open
    this.sys = new Int32Array(buf, o + ST_SYS, SYS_SLOTS);
    this.mmu = mmu;
    this.code = code ?? new CodeCache(mmu.ramSize >>> 12);
    mmu.setEl(this.el);
    const cache = this.code;
    mmu.onCodeWrite = (page) => cache.invalidatePage(page);
    this.jitOn = cache.compiling && mmu.tlbBase >= 0 && b.buffer === cache.jit!.memory.buffer && mmu.ram === b.buffer;
    resetSysRegs(this);
  }

  // ---------------------------------------------------------------------------------------------------------
  // The dispatch loop

  /**
   * Executes up to `budget` instructions (fewer when an instruction stops the loop: WFI, halt). Returns the
   * number executed. Pending unmasked interrupts are taken at slice and branch boundaries.
   */
  run(budget: number): number {
    if (!this.jitOn || !this.code.compiling) return this.runPlain(budget);
    const r = this.r, ps = this.ps;
    const mmu = this.mmu;
    const ram32 = mmu.i32;
    const cache = this.code, jit = cache.jit!, snaps = cache.words, hot = cache.hot, live = cache.live;
    const st = this.block.offset, tlb = mmu.tlbBase;
    let done = 0;
    let inBlock = false;
    this.stop = STOP_BUDGET;
    while (done < budget && this.stop === STOP_BUDGET) {
      if ((this.irqLine | this.fiqLine | this.serrorLine | this.il) !== 0) this.pendingEvents();
      try {
        let lo = r[PC2], hi = r[PC2 + 1];
        if ((lo & 3) !== 0) { this.pcAlignmentFault(); continue; }
        const pageOff = mmu.fetchPage(lo, hi);
        const page = pageOff >>> 12;
        let code = cache.pages[page];
        if (code === undefined) {
          code = cache.create(page);
          mmu.markCode(page);
        }
        cache.ran[page] = 1;
        const base = pageOff >> 2;
        // Where decoded handlers take their words: the page's snapshot (CodeCache.words), else RAM.
        const words = snaps !== null ? snaps[page]! : ram32, wb = snaps !== null ? 0 : base;
        let k = (lo & 0xfff) >>> 2;
        const tagLo = lo & -4096;
        const blocks = cache.blocks[page]!, blen = cache.blockLen[page]!, heat = cache.heat[page]!, ends = cache.ends[page]!;
        // Heat is counted where blocks start: where the loop (re)enters, at branch targets, and after an
        // instruction that ended a compiled block untranslated. Counting every instruction made each slot of a
        // hot straight run hot at once, and each was compiled as a block of its own (most of the compile work).
        let entry = true;
        // A block that left at its first instruction (a DC ZVA, MRS or FP use it hands to the interpreter) made
        // no progress: the interpreter runs that one instruction before compiled code is tried again.
        let stall = false;
        for (;;) {
          const b = blocks[k];
          if (b !== null && !stall && budget - done >= blen[k]) {
            // Compiled code, chaining through blocks of this page while the budget lasts: NZCV through the
            // state block; PC is set by the last block.
            ps[PS_NZCV] = this.nzcv;
            ps[PS_JIT_STOP] = 0;
            jit.cpu = this;
            inBlock = true;
            const masks = mmu.mR | (mmu.mW << 8) | (mmu.mX << 24) | (this.fpTrap ? 0 : MASK_FP) |
              (this.el === 1 ? MASK_EL1 | (this.spsel === 1 ? MASK_SP_EL0 : 0) : 0);
            let nd: number;
            if (!VERIFY) {
              nd = b(st, tlb, mmu.asid, masks, done, budget);
              // Then on through the dispatcher, block to block, until it finds nothing compiled or must stop.
              if (nd < budget && ps[PS_JIT_STOP] === 0) nd = jit.dispatch(st, tlb, mmu.asid, masks, nd, budget);
            } else nd = this.verifiedCall(b, st, tlb, masks, done, budget, page, k);
            if (PROFILE !== null) { PROFILE.calls++; PROFILE.compiled += nd - done; }
            stall = nd === done;
            done = nd;
            inBlock = false;
            this.nzcv = ps[PS_NZCV];
            // A slow path faulted: PC is the faulting instruction, the state exact; the MMU holds the fault.
            if ((ps[PS_JIT_STOP] & STOP_FAULT) !== 0) { this.memoryFault(); break; }
            lo = r[PC2];
            // A block that made no progress (stall) stays here for the interpreter's one instruction even with an
            // interrupt line up: leaving would reset `stall` in the next round, and with that interrupt masked
            // (a spinlock taken with IRQs off) the same block would be called again and again without ever
            // retiring anything — a livelock (seen in verify mode, which takes write permission back at every
            // check, so a compiled STXR at a block's start left there each time).
            if ((lo & -4096) === tagLo && r[PC2 + 1] === hi && done < budget && (this.irqLine === 0 || stall)) {
              k = (lo & 0xfff) >>> 2;
              entry = true;
              continue;
            }
            break;
          }
          if (b === null && entry) {
            const h = ++heat[k];
            if (h === hot) {
              cache.compile(page, k, ram32, base);
              if (blocks[k] !== null) continue; // compiled at once (XENO_JIT_HOT=1): run it now
            } else if (h === 2 * hot && blen[k] === QUEUED) {
              // Queued and still this hot: compile the part-filled batch now rather than after FLUSH_INSNS.
              jit.stats.flushHot++;
              cache.flush();
              if (blocks[k] !== null) continue;
            }
          }
          let h = code[k], w: number;
          if (h === LAZY) {
            w = ram32[base + k];
            h = code[k] = decoder.decode(w);
            live[page] = 1;
            if (snaps !== null) words[k] = w;
          } else w = words[wb + k]!;
          if (PROFILE !== null) profileInterpreted(w, ends[k] !== 0);
          h(this, w);
          done++;
          stall = false;
          if (this.jumped !== 0) {
            // Stay on this page for a branch within it; otherwise re-translate.
            const j = this.jumped;
            this.jumped = 0;
            lo = r[PC2];
            if (j === 1 && (lo & -4096) === tagLo && r[PC2 + 1] === hi && (lo & 3) === 0 && done < budget && this.stop === STOP_BUDGET && this.irqLine === 0) {
              k = (lo & 0xfff) >>> 2;
              entry = true;
              continue;
            }
            break;
          }
          entry = ends[k] !== 0;
          lo = r[PC2] = (lo + 4) | 0;
          if (++k === 1024) {
            if (lo === 0) r[PC2 + 1] = hi = (hi + 1) | 0; // crossed into the next 4 GiB
            break;
          }
          if (done >= budget) break; // exact budgets: tests and the scheduler rely on run(n) running n
        }
      } catch (e) {
        // Compiled code does not throw guest faults (its slow paths return them: STOP_FAULT above); anything
        // else thrown from inside it is a bug in Xeno, and the vCPU's state is not exact there.
        if (inBlock) throw e;
        if (e !== MMU_FAULT) throw e;
        this.memoryFault();
      }
    }
    cache.tick(done);
    this.retired += done;
    this.storePstate();
    return done;
  }

  /**
   * XENO_JIT_VERIFY=1: one compiled block (and the blocks it chains to inside its module; not the dispatcher),
   * then the interpreter over the same instructions from the same state, compared (jit/verify.ts).
   */
  private verifiedCall(b: BlockFn, st: number, tlb: number, masks: number, done: number, budget: number, page: number, k: number): number {
    // With vCPUs on other threads writing the same memory (snapshotWords), their stores between the two runs
    // would read as disagreements: blocks then run unchecked (counted).
    if (this.code.words !== null) { verifyStats.skipped++; return b(st, tlb, this.mmu.asid, masks, done, budget); }
    const check = this.check ??= new BlockCheck(this);
    return check.call(() => b(st, tlb, this.mmu.asid, masks, done, budget), done, (n) => {
      const ram = this.mmu.i32, out: number[] = [];
      for (let j = k; j < 1024 && out.length < n; j++) out.push(ram[page * 1024 + j]);
      return out;
    });
  }
  private check: BlockCheck | null = null;

  /** The state block's bytes (jit/verify.ts). */
  get stateBytes(): Uint8Array { return new Uint8Array(this.block.buffer, this.block.offset, VCPU_STATE_BYTES); }

  /**
   * Interprets exactly `n` instructions (fewer if one stops the loop) with the interrupt lines held low, and
   * without counting them in `retired` (jit/verify.ts re-runs a compiled block's instructions with it).
   */
  interpretExactly(n: number): number {
    const irq = this.irqLine, fiq = this.fiqLine, serr = this.serrorLine, retired = this.retired;
    this.irqLine = 0; this.fiqLine = 0; this.serrorLine = 0;
    try {
      return this.runPlain(n);
    } finally {
      this.irqLine = irq; this.fiqLine = fiq; this.serrorLine = serr; this.retired = retired;
    }
  }

  /** run() without block compilation: no heat counting or block lookups per instruction. */
  private runPlain(budget: number): number {
    const r = this.r;
    const mmu = this.mmu;
    const ram32 = mmu.i32;
    const pages = this.code.pages, ran = this.code.ran, snaps = this.code.words, live = this.code.live;
    let done = 0;
    this.stop = STOP_BUDGET;
    while (done < budget && this.stop === STOP_BUDGET) {
      if ((this.irqLine | this.fiqLine | this.serrorLine | this.il) !== 0) this.pendingEvents();
      try {
        let lo = r[PC2], hi = r[PC2 + 1];
        if ((lo & 3) !== 0) { this.pcAlignmentFault(); continue; }
        const pageOff = mmu.fetchPage(lo, hi);
        const page = pageOff >>> 12;
        let code = pages[page];
        if (code === undefined) {
          code = this.code.create(page);
          mmu.markCode(page);
        }
        ran[page] = 1; // for sweep(): once per page entry, not per instruction
        const base = pageOff >> 2;
        // Where decoded handlers take their words: the page's snapshot (CodeCache.words), else RAM.
        const words = snaps !== null ? snaps[page]! : ram32, wb = snaps !== null ? 0 : base;
        let k = (lo & 0xfff) >>> 2;
        const tagLo = lo & -4096;
        for (;;) {
          let h = code[k], w: number;
          if (h === LAZY) {
            w = ram32[base + k];
            h = code[k] = decoder.decode(w);
            live[page] = 1;
            if (snaps !== null) words[k] = w;
          } else w = words[wb + k]!;
          h(this, w);
          done++;
          if (this.jumped !== 0) {
            // Stay on this page for a branch within it; otherwise re-translate.
            const j = this.jumped;
            this.jumped = 0;
            lo = r[PC2];
            if (j === 1 && (lo & -4096) === tagLo && r[PC2 + 1] === hi && (lo & 3) === 0 && done < budget && this.stop === STOP_BUDGET && this.irqLine === 0) {
              k = (lo & 0xfff) >>> 2;
              continue;
            }
            break;
          }
          lo = r[PC2] = (lo + 4) | 0;
          if (++k === 1024) {
            if (lo === 0) r[PC2 + 1] = hi = (hi + 1) | 0; // crossed into the next 4 GiB
            break;
          }
          if (done >= budget) break; // exact budgets: tests and the scheduler rely on run(n) running n
        }
      } catch (e) {
        if (e !== MMU_FAULT) throw e;
        this.memoryFault();
      }
    }
    this.retired += done;
    this.storePstate();
    return done;
  }

  /** Writes the PSTATE fields this object runs with into the state block (state.ts PS_*). */
  storePstate(): void {
    const p = this.ps;
    p[PS_NZCV] = this.nzcv; p[PS_DAIF] = this.daif; p[PS_EL] = this.el; p[PS_SPSEL] = this.spsel;
    p[PS_FPCR] = this.fpcr; p[PS_FPSR] = this.fpsr;
    p[PS_EVENT] = this.event; p[PS_IL] = this.il;
  }

  /**
   * Takes PSTATE from the state block (after its words were written, e.g. by a restore) and rebuilds what
   * derives from it and the system registers: the MMU's EL and translation regime, the FP trap flag.
   */
  loadPstate(): void {
    const p = this.ps;
    this.nzcv = p[PS_NZCV] & 0xf; this.daif = p[PS_DAIF] & 0xf; this.el = p[PS_EL]; this.spsel = p[PS_SPSEL];
    this.fpcr = p[PS_FPCR]; this.fpsr = p[PS_FPSR];
    this.event = p[PS_EVENT] & 1; this.il = p[PS_IL] & 1;
    this.mmu.setEl(this.el);
    this.updateFpTrap();
  }

  /** Drops the decoded instructions of one RAM page (IC IVAU, writes to code). */
  invalidateCodePage(page: number): void { this.code.invalidatePage(page); }

  /** IC IALLU / IC IVAU and similar: drop every decoded instruction. */
  invalidateAllCode(): void {
    this.code.invalidateAll();
  }

  // ---------------------------------------------------------------------------------------------------------
  // Register helpers used by instruction handlers are in regs.ts; PSTATE helpers here.

  /** Switches the live SP to the bank selected by (el, spsel), saving the old one. */
  private selectSp(el: number, spsel: number): void {
    const r = this.r;
    const oldBank = (this.el === 0 || this.spsel === 0 ? SP_EL0 : SP_EL1) * 2;
    r[oldBank] = r[SP2]; r[oldBank + 1] = r[SP2 + 1];
    this.el = el;
    this.spsel = spsel;
    const newBank = (el === 0 || spsel === 0 ? SP_EL0 : SP_EL1) * 2;
    r[SP2] = r[newBank]; r[SP2 + 1] = r[newBank + 1];
    this.mmu.setEl(el);
    this.updateFpTrap();
  }

  /** Recomputes fpTrap from CPACR_EL1.FPEN and the EL: 0b01 traps EL0 only, 0b11 nothing, else both. */
  updateFpTrap(): void {
    const fpen = (this.sys[CPACR_EL1] >>> 20) & 3;
    this.fpTrap = fpen === 3 ? false : fpen === 1 ? this.el === 0 : true;
  }

  /** Access to FP/SIMD trapped by CPACR_EL1.FPEN: EC 0x07 (ISS CV = 1, COND = 0b1110 for AArch64 traps). */
  fpAccessTrap(): void {
    this.syncException(EC_FP_ACCESS, 0x1e00000, 0);
  }

  /** MSR SPSel. */
  setSpSel(v: number): void { this.selectSp(this.el, v & 1); }

  /** Reads SP_EL0 / SP_EL1 regardless of which is live (MRS SP_EL0 etc.): returns lo, hi in out. */
  bankedSp(bank: number, out: Int32Array): void {
    const live = (this.el === 0 || this.spsel === 0 ? SP_EL0 : SP_EL1) === bank;
    const k = live ? SP2 : bank * 2;
    out[0] = this.r[k]; out[1] = this.r[k + 1];
  }
  setBankedSp(bank: number, lo: number, hi: number): void {
    const live = (this.el === 0 || this.spsel === 0 ? SP_EL0 : SP_EL1) === bank;
    const k = live ? SP2 : bank * 2;
    this.r[k] = lo; this.r[k + 1] = hi;
  }

  /** PSTATE as an SPSR value (Arm ARM C5.2.18): NZCV 31:28, IL 20, DAIF 9:6, M[3:0] = EL << 2 | SPSel. */
  spsr(): number {
    return ((this.nzcv << 28) | (this.il << 20) | (this.daif << 6) | (this.el << 2) | (this.el === 0 ? 0 : this.spsel)) | 0;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Exceptions

  /**
   * Takes a synchronous exception to EL1 (or EL2 for hvc/smc): ESR = ec:il:iss, ELR = PC + retOffset.
   * Handlers call this and return; it sets `jumped`.
   */
  syncException(ec: number, iss: number, retOffset: number, farLo = 0, farHi = 0, setFar = false): void {
    if (ec === EC_HVC || ec === EC_SMC) {
      if (this.exits) {
        // An exit to the hypervisor ("EL2"), which returns to the next instruction unless it changes PC.
        const r = this.r;
        const lo = (r[PC2] + retOffset) | 0;
        if ((lo >>> 0) < (r[PC2] >>> 0)) r[PC2 + 1] = (r[PC2 + 1] + 1) | 0;
        r[PC2] = lo;
        this.jumped = JUMP_CONTEXT;
        this.exitEc = ec;
        this.exitIss = iss;
        this.stop = STOP_HVC;
        return;
      }
      ec = EC_UNKNOWN; iss = 0; retOffset = 0;
    }
    const s = this.sys;
    s[ESR_EL1] = (ec << 26) | (1 << 25) | (iss & 0x1ffffff);
    s[ESR_EL1 + 1] = 0;
    if (setFar) { s[FAR_EL1] = farLo; s[FAR_EL1 + 1] = farHi; }
    const vec = this.el === 0 ? 0x400 : this.spsel ? 0x200 : 0;
    this.enterEl1(vec + VEC_SYNC, retOffset);
  }

  /** Saves PSTATE/return address and jumps to VBAR_EL1 + offset at EL1h with DAIF masked. */
  private enterEl1(offset: number, retOffset: number): void {
    const r = this.r, s = this.sys;
    s[SPSR_EL1] = this.spsr(); s[SPSR_EL1 + 1] = 0;
    const lo = (r[PC2] + retOffset) | 0;
    s[ELR_EL1] = lo;
    s[ELR_EL1 + 1] = (lo >>> 0) < (r[PC2] >>> 0) ? (r[PC2 + 1] + 1) | 0 : r[PC2 + 1];
    this.exclOff = -1; // exception entry clears the local monitor (Arm ARM B2.9.5... "may" clear; we do)
    this.il = 0; // PSTATE.IL is cleared on exception entry (saved in SPSR.IL above)
    this.jumped = JUMP_CONTEXT;
    if (this.onEl1 !== null) { this.onEl1(this, offset); return; }
    this.selectSp(1, 1);
    this.daif = 0xf;
    const v = (s[VBAR_EL1] & -2048) + offset;
    r[PC2] = v | 0;
    r[PC2 + 1] = s[VBAR_EL1 + 1];
  }

  private takeInterrupt(offset: number): void {
    const vec = this.el === 0 ? 0x400 : this.spsel ? 0x200 : 0;
    this.enterEl1(vec + offset, 0);
    this.jumped = 0; // taken between instructions: the loop re-reads PC anyway
  }

  /**
   * Between instructions, when an interrupt line is up or PSTATE.IL is set: takes the highest-priority
   * unmasked asynchronous exception (SError, then FIQ, then IRQ; the Arm ARM leaves their relative priority
   * IMPLEMENTATION DEFINED), else the Illegal Execution State exception (EC 0x0E, ELR = this instruction).
   * All target EL1, so PSTATE.{A,I,F} mask them at EL0 and EL1 alike (Arm ARM D1.13.1).
   */
  private pendingEvents(): void {
    const daif = this.daif;
    if (this.serrorLine !== 0 && (daif & DAIF_A) === 0) {
      this.serrorLine = 0;
      // ESR for an SError with IDS = 0 and no further syndrome (ARMv8.0 without RAS): EC 0x2F, IL = 1.
      this.sys[ESR_EL1] = (EC_SERROR << 26) | (1 << 25); this.sys[ESR_EL1 + 1] = 0;
      this.takeInterrupt(VEC_SERROR);
    } else if (this.fiqLine !== 0 && (daif & DAIF_F) === 0) this.takeInterrupt(VEC_FIQ);
    else if (this.irqLine !== 0 && (daif & DAIF_I) === 0) this.takeInterrupt(VEC_IRQ);
    else if (this.il !== 0) { this.syncException(EC_ILLEGAL, 0, 0); this.jumped = 0; }
  }

  /**
   * ERET from EL1 (Arm ARM D1.11 "Exception return"): restores PSTATE from SPSR_EL1 and PC from ELR_EL1.
   * Legal targets are EL0t (M = 0b00000), EL1t (0b00100) and EL1h (0b00101); any other M (AArch32, EL2,
   * EL3, reserved) is an illegal return (D1.11.4): EL and SP stay, NZCV/DAIF are restored, PSTATE.IL is set
   * and PC = ELR, so the next instruction takes the Illegal Execution State exception.
   */
  eret(): void {
    const s = this.sys, r = this.r;
    const spsr = s[SPSR_EL1];
    const m = spsr & 0x1f;
    let el = this.el, sp = this.spsel, il = (spsr >>> 20) & 1;
    if (m === 0 || m === 4 || m === 5) { el = m >>> 2; sp = m & 1; } else il = 1;
    this.nzcv = (spsr >>> 28) & 0xf;
    this.daif = (spsr >>> 6) & 0xf;
    this.il = il;
    this.selectSp(el, sp);
    r[PC2] = s[ELR_EL1];
    r[PC2 + 1] = s[ELR_EL1 + 1];
    this.exclOff = -1;
    this.jumped = JUMP_CONTEXT;
  }

  /** Converts the MMU's fault record into an Instruction or Data Abort (Arm ARM D17.2.40 ISS encodings). */
  private memoryFault(): void {
    const m = this.mmu;
    this.jumped = 0;
    if (m.faultStage2 !== 0 && this.exits) { this.stop = STOP_STAGE2; return; } // the hypervisor's to handle
    const lower = this.el === 0;
    if (m.faultFetch) {
      this.syncException(lower ? EC_IABT_LOWER : EC_IABT_SAME, m.faultStatus, 0, m.faultVaLo, m.faultVaHi, true);
    } else {
      this.syncException(lower ? EC_DABT_LOWER : EC_DABT_SAME, (m.faultWrite << 6) | m.faultStatus, 0,
        m.faultVaLo, m.faultVaHi, true);
    }
    this.jumped = 0;
  }

  private pcAlignmentFault(): void {
    const r = this.r;
    this.syncException(EC_PC_ALIGN, 0, 0, r[PC2], r[PC2 + 1], true);
    this.jumped = 0;
  }

  /**
   * Ends the current instruction (PC += 4) with an exit to the platform: STOP_BROADCAST for inner-shareable
   * maintenance or SEV (`insn`, operand xlo/xhi). No-op without `exits`. Called by the instruction's handler
   * after it has done its own, local part.
   */
  broadcastExit(insn: number, xlo: number, xhi: number): void {
    if (!this.exits) return;
    this.exitInsn = insn; this.exitXlo = xlo; this.exitXhi = xhi;
    this.exitAfter(STOP_BROADCAST);
  }

  /** A generic-timer register of `timer` was written: STOP_TIMER after this instruction (see exitTimers). */
  timerExit(timer: number): void {
    if (!this.exits) return;
    this.exitTimers |= 1 << timer;
    this.exitAfter(STOP_TIMER);
  }

  private exitAfter(code: number): void {
    endBlock(this);
    this.stop = code;
  }

  /** Raises UNDEFINED for the instruction at PC (EC 0, Arm ARM D1.10.4). */
  undefinedInstruction(_i: number): void {
    this.syncException(EC_UNKNOWN, 0, 0);
  }
}
