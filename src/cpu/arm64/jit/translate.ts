/**
 * The A64 → WebAssembly translator: a straight run of instructions on one code page becomes one wasm function
 * that works on the vCPU's state block and the domain's RAM directly (both in the domain's WebAssembly.Memory).
 *
 * Contract (the compiled block, `BlockFn` in engine.ts): called with the state block's and the TLB's byte
 * offsets, the current ASID, the masks (MASK_* below), the instructions retired so far in this run and the run's
 * budget, with PC = the block's first instruction; it returns the new count (unchanged when it did not enter:
 * no room in the budget, or a stop was requested). Registers, SP and NZCV live in the state block (registers
 * cached in locals within the block; NZCV in the PSTATE word, which the run loop syncs around the call). On
 * return PC holds the next instruction to run. Memory accesses look up the TLB inline (the Mmu's arrays, which
 * live in the same memory at mmu.ts TLB_*); a miss, MMIO, a fault or a write to a page holding decoded code goes
 * to the slow-path imports `rd`/`wr` (the Mmu's own read/write). A fault does not throw through the block: the
 * import sets STOP_FAULT in the stop word and the block leaves at that instruction through its shared exit
 * (see translate and sharedExit), which stores the registers dirty so far, NZCV, PC, and returns the count —
 * the state exact for the run loop, which then takes the exception. A slow-path write that invalidated decoded
 * code ends the block after that instruction, so a block never runs code older than its own stores.
 *
 * Regions: a direct branch to an instruction of the same block (a loop's back edge, a jump over part of it) is
 * a wasm branch inside the function (translate's second pass, openRegion, branchInside), with the registers
 * kept in locals across it. Page memos: the accesses of one base register skip the TLB while they stay on the
 * page it last gave them (memo).
 *
 * What is translated: integer data processing (immediate and register forms), loads and stores of general and
 * SIMD&FP registers in every addressing mode but the unprivileged one (and SIMD&FP literals), pairs, branches
 * (unconditional ones end a block), HINT, barriers, MRS of a few registers, and the Advanced SIMD integer forms
 * WebAssembly SIMD computes exactly (simd.ts; here DUP/INS (general), UMOV/SMOV, LD1/ST1). Anything else ends
 * the block before it and runs in the interpreter — which stays the reference.
 * Reserved encodings are left to the interpreter too (the decoder's verdict gates every word).
 */
import { Code, I32, I64, V128, OP, SPLAT, EXTRACT_U, EXTRACT_S, REPLACE, type FuncBody } from "./wasm.js";
import { vecOp, ld, put, V_A, N_V128, HAS_SIMD } from "./simd.js";
import { TLB_ASID, TLB_OFF, TLB_PERM, TLB_SLOT_MASK, TLB_TAG_HI, TLB_TAG_LO } from "../../../mmu/mmu.js";
import { decodeBitMask } from "../dp-imm.js";
import { COND, ST_PSTATE, ST_SYS, ST_V, SP_EL0, PS_NZCV, PS_JIT_HI, PS_JIT_STOP, PS_EXCL_OFF, PS_EXCL_LO, PS_EXCL_PAIR } from "../state.js";
import { TPIDR_EL0, TPIDR_EL1, TPIDRRO_EL0, CTR_EL0_VALUE, DCZID_EL0_VALUE } from "../sysregs.js";
import type { Decoder } from "../decoder.js";

/** Byte offsets inside the state block (state.ts). */
const OFF_SP = 32 * 8, OFF_PC = 33 * 8, OFF_NZCV = ST_PSTATE + 4 * PS_NZCV, OFF_HI = ST_PSTATE + 4 * PS_JIT_HI;


// Locals: parameters 0..5, then i64 temporaries, then i32 temporaries.
const P_ST = 0, P_TLB = 1, P_ASID = 2, P_MASKS = 3, P_DONE = 4, P_BUDGET = 5;
const L_PC0 = 6, L_A = 7, T0 = 8, T1 = 9, T2 = 10, T3 = 11, T4 = 12, T5 = 13, T6 = 14, T7 = 15;
const N_I64 = 10;
const W_LO = 16, W_HI = 17, W_X = 18, W_E = 19, W_0 = 20, W_CW = 21, W_MR = 22, W_MW = 23;
const N_I32 = 8;
/** Guest registers held in locals within a block: X0..X30 at R_LOCAL + n, SP at R_LOCAL + 31. */
const R_LOCAL = 24, N_REGS = 32;
/** Lazy flags (see `fk`): the last flag-setting operation's operands and result (i64), and i32 scratch. */
const F_A = 56, F_B = 57, F_R = 58, F_T = 59, M_A = 60, M_B = 61, M_R = 62;
/**
 * The shared exit (see translate): K = instructions retired, T = PC offset from pc0 to leave with, DM = the
 * registers dirty so far (bit r), FK = the lazy-flag kind now (FK_CODE).
 */
const L_K = 63, L_T = 64, L_DM = 65, L_FK = 66;
/** A region's next segment (see translate): the index the loop's br_table dispatches on. */
const L_NEXT = V_A + N_V128;
/**
 * The page memos (see `memo`): N_MEMO of them, each the page's address (i64; bits 11:0 clear), the RAM offset of
 * its first byte and its TLB permission byte (0 until filled, so an unfilled memo never matches).
 */
const N_MEMO = 4, MEMO_PAGE = L_NEXT + 1, MEMO_OFF = MEMO_PAGE + N_MEMO, MEMO_PERM = MEMO_OFF + N_MEMO;
/** The locals declaration every block function uses. */
export const BLOCK_LOCALS: [number, number][] = [[N_I64, I64], [N_I32, I32], [N_REGS, I64], [4, I64], [7, I32], [N_V128, V128], [1, I32],
  [N_MEMO, I64], [2 * N_MEMO, I32]];
// simd.ts's v128 locals come right after L_FK.
if (V_A !== L_FK + 1) throw new Error("translate.ts: simd.ts V_A must follow L_FK");

/**
 * Flag state during translation: NZCV exact in the state block, or held as the operation that made it; or, at
 * a region's label (FK_DYN), whatever local L_FK says at run time (each way in may bring another kind).
 */
const FK_MEM = 0, FK_ADD = 1, FK_LOGIC = 2, FK_DYN = 3;
/** The runtime code of a flag state in local L_FK: 0 memory; 1 + (kind − 1) · 4 + sub · 2 + (1 − sf) otherwise. */
function fkCode(fk: number, sub: number, sf: number): number { return fk === FK_MEM ? 0 : 1 + (fk - 1) * 4 + sub * 2 + (1 - sf); }
/** Nesting depth of the block's top level: its body is inside the shared exit's `block`. */
const TOP = 1;
/** PS_JIT_STOP bit set by a slow path that faulted (engine.ts): the block leaves at that instruction. */
export const STOP_FAULT = 2;

/** Import function indices in the module (engine.ts declares them in this order), and the block type. */
export const IMPORT_RD = 0, IMPORT_WR = 1;
/** DC ZVA's block (DCZID_EL0.BS = 4, as sys-insns.ts); the wr import zeroes it when given this size. */
export const ZVA_BYTES = 64;

/**
 * The masks parameter: mR | mW << 8 | mX << 24 (the MMU's permission masks for the current EL) and these bits:
 * SP_EL0 is banked (EL1, SPSel = 1); EL is 1; FP/SIMD does not trap (CPACR_EL1.FPEN).
 */
export const MASK_SP_EL0 = 1 << 16, MASK_EL1 = 1 << 17, MASK_FP = 1 << 18;

/** Byte offset of word `ps` of the PSTATE area in the state block. */
const psOff = (ps: number): number => ST_PSTATE + 4 * ps;
const OFF_STOP = psOff(PS_JIT_STOP);
/** The exclusive monitor's words (Cpu.exclOff/exclSize, then exclLo/exclHi): two doublewords, 8-aligned. */
const OFF_EXCL = psOff(PS_EXCL_OFF), OFF_EXCL_VAL = psOff(PS_EXCL_LO), OFF_EXCL_PAIR = psOff(PS_EXCL_PAIR);
if ((OFF_EXCL & 7) !== 0 || (OFF_EXCL_VAL & 7) !== 0 || (OFF_EXCL_PAIR & 7) !== 0 || psOff(PS_EXCL_OFF + 1) !== psOff(PS_EXCL_OFF) + 4) throw new Error("translate.ts: the monitor's words must be two aligned doublewords");
const OFF_SP_EL0 = SP_EL0 * 8, OFF_TPIDR_EL1 = ST_SYS + 4 * TPIDR_EL1, OFF_TPIDR_EL0 = ST_SYS + 4 * TPIDR_EL0;
const OFF_TPIDRRO_EL0 = ST_SYS + 4 * TPIDRRO_EL0;

/**
 * Where direct branches may chain to: the function index (in the module being built) of the block that starts
 * at word slot `slot` of the page being translated, or -1 (the block returns to the run loop there).
 */
export type ChainLookup = (slot: number) => number;

/** Truth masks: bit f of CONDMASK[cond] = COND[cond << 4 | f]. */
const CONDMASK = new Int32Array(16);
for (let c = 0; c < 16; c++) for (let f = 0; f < 16; f++) if (COND[(c << 4) | f]) CONDMASK[c] |= 1 << f;

const BM = new Int32Array(2);

/**
 * Longest block, in instructions (XENO_JIT_MAX_BLOCK, 1..200: the CodeCache keeps a block's length in a byte,
 * 255 meaning "queued").
 */
export const MAX_BLOCK = Math.min(200, Math.max(1, Number((typeof process === "undefined" ? undefined : process.env.XENO_JIT_MAX_BLOCK) ?? 63) | 0));

/**
 * XENO_JIT_REGIONS=0: no regions (every direct branch leaves the function, as before 2026-12-07 session 24).
 * On by default.
 */
const REGIONS = typeof process === "undefined" || process.env.XENO_JIT_REGIONS !== "0";
/** XENO_JIT_MEMOS=0: no page memos (every access reads the TLB, as before 2026-12-07 session 24). On by default. */
const MEMOS = typeof process === "undefined" || process.env.XENO_JIT_MEMOS !== "0";

/**
 * The index (from the block's first instruction) a direct branch at index p of `words[at + p]` goes to, or -1
 * when the word is not B, B.cond, CBZ/CBNZ or TBZ/TBNZ (BL is a call: it stays an exit).
 */
function branchTarget(w: number, p: number): number {
  if ((w & 0xfc000000) === 0x14000000) return p + ((w << 6) >> 6);
  if ((w & 0xff000010) === 0x54000000 || (w & 0x7e000000) === 0x34000000) return p + ((w << 8) >> 13);
  if ((w & 0x7e000000) === 0x36000000) return p + ((w << 13) >> 18);
  return -1;
}

/** Low `w` bits set (1 ≤ w ≤ 64), as a (lo, hi) pair. */
function maskLo(w: number): number { return w >= 32 ? -1 : (1 << w) - 1; }
function maskHi(w: number): number { return w >= 64 ? -1 : w <= 32 ? 0 : (1 << (w - 32)) - 1; }

/**
 * Fixed code sequences recorded the first time they are emitted and copied after that: the TLB slot computation
 * (slot), the TLB hit test by size and permission (hit) and the RAM address (ramAddr) make up about a third of
 * a memory access's ~150 emitter calls, and the translator runs mostly before V8 has optimized it (cold: tens of
 * µs of CPU per guest instruction; docs/cpu-internals.md, "The translator's cold cost"). Their bytes depend only
 * on their arguments (locals and offsets are constants).
 */
const TPL_SLOT = 0, TPL_RAM = 1, TPL_HIT = 2, TPL_N = TPL_HIT + 2 * 17;
const TEMPLATES: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(TPL_N).fill(undefined);

export class Translator {
  readonly c = new Code();
  /** Instructions of the last translation; whether it needs the memory-access locals. */
  private k = 0;

  /** Full DMB/DSB (CRm<1:0> = 11) emit a host fence: vCPUs on other threads share the memory (JitEngine.fences). */
  fences = false;

  constructor(private readonly decoder: Decoder) {}

  /**
   * Translates words[at..] (at most `max`, never past the page: the caller bounds max). Returns the number
   * of instructions the body covers (0: the first one is not translatable; nothing usable was emitted).
   */
  translate(words: Int32Array, at: number, max: number, chain: ChainLookup): number {
    this.region = false;
    const n = this.emit(words, at, max, chain);
    if (n === 0 || !REGIONS) return n;
    // A region: direct branches from the block into itself (a loop, or a jump over some of it) become wasm
    // branches, with the registers kept in locals across them. Its first pass gave the extent, the registers
    // (all loaded at entry now, the ones it writes dirty from the start: every way in to a label finds the same
    // locals valid) and the flag kinds; the second emits the function again with a label at each target.
    const starts = this.starts, segOf = this.segOf;
    segOf.fill(-1);
    let back = false, m = 0, toFirst = false;
    for (let p = 0; p < n; p++) {
      const j = branchTarget(words[at + p] | 0, p);
      if (j < 0 || j >= n) continue;
      if (j <= p) back = true;
      if (j === 0) toFirst = true;
      if (segOf[j] < 0) { segOf[j] = 1; m++; }
    }
    if (m === 0) return n;
    let s = 0;
    starts[0] = 0;
    for (let j = 1; j < n; j++) if (segOf[j] > 0) starts[++s] = j;
    for (let j = 0; j < n; j++) segOf[j] = -1;
    for (let k = 0; k <= s; k++) segOf[starts[k]] = k;
    this.segs = s + 1;
    this.back = back;
    this.entryLabel = toFirst;
    this.preCached.set(this.cached); this.preDirty.set(this.dirty);
    this.preFk = this.fkUsed;
    const untranslatableAt = this.untranslatableAt, branched = this.branched;
    this.region = true;
    const n2 = this.emit(words, at, n, chain);
    this.region = false;
    if (n2 !== n) throw new Error(`translate: a region's second pass covered ${n2} instructions, its first ${n}`);
    this.untranslatableAt = untranslatableAt; this.branched = branched;
    return n;
  }

  /** Whether the emission under way is a region's second pass (translate). */
  private region = false;
  /** The region's segments: their first instructions (starts[0] = 0), and each instruction's segment or -1. */
  private readonly starts = new Int32Array(MAX_BLOCK + 1);
  private readonly segOf = new Int32Array(MAX_BLOCK + 1);
  private segs = 0;
  /** Whether some branch goes back (a loop, with a br_table over the segments at its top). */
  private back = false;
  /** Whether something branches back to the first instruction (its flags then come as FK_DYN). */
  private entryLabel = false;
  /** Nesting depths: of the loop's label, and of each segment's block (its code follows that block's end). */
  private loopDepth = 0;
  private readonly segDepth = new Int32Array(MAX_BLOCK + 1);
  /** Instructions in the region. */
  private regionN = 0;
  /** The first pass's registers used and written, and flag kinds. */
  private readonly preCached = new Uint8Array(32);
  private readonly preDirty = new Uint8Array(32);
  private preFk = 0;
  /** Instructions a direct branch seen so far in this pass goes forward to (their indices from the first). */
  private readonly fwd = new Uint8Array(MAX_BLOCK + 2);
  /** Nesting depth of the current segment's top level (TOP outside regions). */
  private top = TOP;

  /** One pass of translate: emits the block's function into this.c; `max` bounds its instructions. */
  private emit(words: Int32Array, at: number, max: number, chain: ChainLookup): number {
    const c = this.c;
    c.reset();
    this.chain = chain;
    this.slot0 = at & 1023;
    this.stored = false;
    this.cached.fill(0);
    this.dirty.fill(0);
    this.fpChecked = false;
    this.fk = FK_MEM;
    this.fkNow = 0;
    this.fkUsed = 0;
    this.exits = 0;
    this.untranslatableAt = -1;
    this.fwd.fill(0);
    this.memoSlot.fill(-1); this.memoCount = 0;
    // Enter only with room in the budget and no stop request (a slow path saw an interrupt or a code write).
    // done + n: n patched below, as a two-byte LEB (n < 8192).
    c.get(P_DONE); c.op(OP.i32Const); const lenAt = c.len; c.byte(0x80); c.byte(0); c.op(OP.i32Add);
    c.get(P_BUDGET); c.op(OP.i32GtS);
    c.get(P_ST); c.mem(OP.i32Load, 2, OFF_STOP); c.op(OP.i32Or);
    c.if(); c.get(P_DONE); c.op(OP.return); c.end();
    // pc0 = PC; the permission masks.
    c.get(P_ST); c.mem(OP.i64Load, 3, OFF_PC); c.set(L_PC0);
    c.get(P_MASKS); c.i32(0xff); c.op(OP.i32And); c.set(W_MR);
    c.get(P_MASKS); c.i32(8); c.op(OP.i32ShrU); c.i32(0xff); c.op(OP.i32And); c.set(W_MW);
    c.i32(0); c.set(W_CW);
    c.block(); // the shared exit's label: the body runs inside it (depth TOP)
    this.top = TOP;
    if (this.region) this.openRegion(max);
    const limit = Math.min(max, MAX_BLOCK);
    let n = 0, branched = false;
    while (n < limit) {
      this.k = n;
      if (this.region && n > 0 && this.segOf[n] > 0) {
        // A label: the previous segment falls through into this one (its block ends here).
        c.end();
        this.top = c.depth;
        this.fk = FK_DYN; this.fkNow = -1; this.fpChecked = false;
      }
      const mark = c.len, fk = this.fk, fSub = this.fSub, fSf = this.fSf, fkNow = this.fkNow, exits = this.exits;
      const r = this.insn(words[at + n] | 0);
      if (r === 0) { // not translatable: ends the block before it
        c.len = mark; this.stored = false;
        this.untranslatableAt = n;
        this.fk = fk; this.fSub = fSub; this.fSf = fSf; this.fkNow = fkNow; this.exits = exits;
        break;
      }
      const j = REGIONS ? branchTarget(words[at + n] | 0, n) : -1;
      if (j > n && j <= MAX_BLOCK) this.fwd[j] = 1;
      n++;
      if (r === 2) { // a branch: the block has left already
        // Unless a branch of the block comes to the next instruction (a loop's body jumped over, the rest of
        // an if/else): a region then goes on there (translate).
        if (n < limit && this.fwd[n]) continue;
        branched = true;
        break;
      }
      this.syncFk();
      if (this.stored) {
        // A slow-path store that invalidated decoded code ends the block after this instruction.
        this.stored = false;
        c.get(W_CW); c.if(); this.leave(n, 4 * n); c.end();
      }
    }
    this.branched = branched;
    if (n === 0) return 0;
    if (!branched) { this.k = n - 1; this.exitTo(4 * n); }
    c.op(OP.unreachable); // every path has returned, tail-called or gone to the shared exit
    if (this.region && this.back) { c.end(); c.op(OP.unreachable); } // the loop
    c.end();
    if (this.exits !== 0) this.sharedExit();
    else c.op(OP.unreachable);
    c.buf[lenAt] = 0x80 | (n & 0x7f); c.buf[lenAt + 1] = n >>> 7;
    c.end();
    return n;
  }

  /**
   * A region's prologue (second pass): the first pass's registers loaded into their locals, those it writes
   * marked dirty (DM too), then the loop (when a branch goes back) and one block per segment after the first,
   * outermost last; a segment's code follows its block's end, so a branch forward to it is a `br` out of that
   * block and falling off the previous segment enters it. A branch back sets L_NEXT and goes to the loop's top,
   * whose br_table (in the innermost block, segment 0's) goes to the segment.
   */
  private openRegion(n: number): void {
    const c = this.c;
    this.regionN = n;
    let dm = 0;
    for (let r = 0; r < N_REGS; r++) {
      if (this.preCached[r]) { c.get(P_ST); c.mem(OP.i64Load, 3, Translator.regOff(r)); c.set(R_LOCAL + r); this.cached[r] = 1; }
      if (this.preDirty[r]) { this.dirty[r] = 1; dm |= r === 31 ? -0x80000000 : 1 << r; }
    }
    if (dm !== 0) { c.i32(dm); c.set(L_DM); }
    const m = this.segs - 1;
    // Without a loop, a branch back would be a translator bug: a depth no label has fails the module's validation.
    this.loopDepth = 1 << 20;
    if (this.back) { c.loop(); this.loopDepth = c.depth; }
    for (let s = m; s >= 1; s--) { c.block(); this.segDepth[s] = c.depth; }
    if (this.back) {
      c.block();
      c.get(L_NEXT); c.brTable(m + 1); // L_NEXT = s: out of segment s's block (s = 0: this one)
      c.end();
    }
    this.top = c.depth;
    if (this.entryLabel) { this.fk = FK_DYN; this.fkNow = -1; }
  }

  /**
   * A direct branch inside a region to instruction j (a label) from instruction k: the count so far moves to
   * j's position (P_DONE += k + 1 − j, so that done + j is what has retired there); going back also checks the
   * budget and the stop word (as a block's entry does), leaving at j when either says so.
   */
  private branchInside(j: number): void {
    const c = this.c, k = this.k, s = this.segOf[j];
    this.syncFk();
    if (k + 1 - j !== 0) { c.get(P_DONE); c.i32(k + 1 - j); c.op(OP.i32Add); c.set(P_DONE); }
    if (j > k) { c.br(c.depth - this.segDepth[s]); return; }
    c.get(P_DONE); c.i32(this.regionN); c.op(OP.i32Add); c.get(P_BUDGET); c.op(OP.i32GtS);
    c.get(P_ST); c.mem(OP.i32Load, 2, OFF_STOP); c.op(OP.i32Or);
    c.if(); this.leave(j, 4 * j); c.end();
    c.i32(s); c.set(L_NEXT);
    c.br(c.depth - this.loopDepth);
  }

  /**
   * The shared exit, after the body's block: slow paths that faulted, exits to the run loop and traps go here
   * with K and T set (leave), instead of each storing the state inline — most of a block's code before. It
   * stores the registers dirty at that point (DM), NZCV of the flag state then (FK), PC = pc0 + T, and returns
   * done + K. A register is only ever dirty in its local once written at the top level, and DM has its bit from
   * that write on, so the stores are exact wherever the exit was taken from.
   */
  private sharedExit(): void {
    const c = this.c;
    for (let r = 0; r < N_REGS; r++) {
      if (!this.dirty[r]) continue;
      c.get(L_DM); c.i32(r === 31 ? -0x80000000 : 1 << r); c.op(OP.i32And);
      c.if(); c.get(P_ST); c.get(R_LOCAL + r); c.mem(OP.i64Store, 3, Translator.regOff(r)); c.end();
    }
    const fk = this.fk, fSub = this.fSub, fSf = this.fSf;
    for (let code = 1; code <= 8; code++) {
      if ((this.fkUsed & (1 << code)) === 0) continue;
      const kind = code <= 4 ? FK_ADD : FK_LOGIC, sub = ((code - 1) >> 1) & 1, sf = 1 - ((code - 1) & 1);
      c.get(L_FK); c.i32(code); c.op(OP.i32Eq);
      c.if();
      this.fk = kind; this.fSub = sub; this.fSf = sf;
      this.flagsValue(); this.setNzcv();
      c.end();
    }
    this.fk = fk; this.fSub = fSub; this.fSf = fSf;
    c.get(P_ST); c.get(L_PC0); c.get(L_T); c.op(OP.i64ExtendI32s); c.op(OP.i64Add); c.mem(OP.i64Store, 3, OFF_PC);
    c.get(P_DONE); c.get(L_K); c.op(OP.i32Add);
    c.op(OP.return);
  }

  /** Goes to the shared exit retiring k instructions, with PC = pc0 + off. */
  private leave(k: number, off: number): void {
    const c = this.c;
    c.i32(k); c.set(L_K); c.i32(off); c.set(L_T);
    c.br(c.depth - TOP);
    this.exits++;
  }

  /**
   * Makes L_FK hold the translation's flag state: after each instruction at the top level, and before an exit
   * inside one (then for that path only).
   */
  private syncFk(): void {
    if (this.fk === FK_DYN) return; // L_FK holds it already
    const code = fkCode(this.fk, this.fSub, this.fSf);
    if (code === this.fkNow) return;
    const c = this.c;
    c.i32(code); c.set(L_FK);
    this.fkUsed |= 1 << code;
    if (c.depth === this.top) this.fkNow = code;
  }
  /** What L_FK holds at this point of the block (its runtime code), and every code it held. */
  private fkNow = 0;
  private fkUsed = 0;
  /** Branches to the shared exit emitted. */
  private exits = 0;

  private chain: ChainLookup = () => -1;
  private slot0 = 0;
  /** After translate(): the index (from `at`) of the instruction that ended the block untranslated, or -1. */
  untranslatableAt = -1;
  /** After translate(): whether the block ended with a branch (else: an untranslatable instruction, or length). */
  branched = false;

  /** Pushes done + instructions retired so far in this block. */
  private retire(k: number): void { const c = this.c; c.get(P_DONE); c.i32(k); c.op(OP.i32Add); }

  /**
   * Leaves the block for the instruction at pc0 + off (PC set here), retiring this.k + 1 instructions: tail-calls
   * the block there when it is on this page and in this module, else returns to the run loop.
   */
  private exitTo(off: number): void {
    const c = this.c;
    if (this.region && off >= 0 && (off >> 2) < this.regionN && (this.segOf[off >> 2] > 0 || (off === 0 && this.entryLabel))) {
      this.branchInside(off >> 2);
      return;
    }
    const slot = this.slot0 + (off >> 2);
    const idx = slot >= 0 && slot < 1024 ? this.chain(slot) : -1;
    if (idx >= 0) {
      this.writeBack();
      this.setPc(off);
      c.get(P_ST); c.get(P_TLB); c.get(P_ASID); c.get(P_MASKS); this.retire(this.k + 1); c.get(P_BUDGET);
      c.returnCall(idx);
    } else {
      this.syncFk();
      this.leave(this.k + 1, off);
    }
  }

  /** Set by a store emitter: the instruction may have written decoded code (W_CW). */
  private stored = false;

  // ---------------------------------------------------------------------------------------------------------
  // Registers

  /**
   * Register caching: within a block a register lives in a local once read or written at the block's top level
   * (`cached`); writes leave it `dirty` there, and every way out of the block — returns, tail calls, and slow
   * paths (which may throw a fault) — stores the dirty ones first (writeBack), so the state block is exact
   * wherever the run loop or the MMU looks at it. Reads and writes inside conditional code use the local when
   * it is cached (writing memory too, so both paths agree) and memory otherwise.
   */
  private readonly cached = new Uint8Array(N_REGS);
  private readonly dirty = new Uint8Array(N_REGS);

  /** Byte offset in the state block of cached register r (31 = SP). */
  private static regOff(r: number): number { return r === 31 ? OFF_SP : r * 8; }

  /** Pushes register r (0..30, 31 = SP) as an i64, caching it when at top level. */
  private reg(r: number): void {
    const c = this.c;
    if (this.cached[r]) { c.get(R_LOCAL + r); return; }
    c.get(P_ST); c.mem(OP.i64Load, 3, Translator.regOff(r));
    if (c.depth === this.top) {
      if (this.region) throw new Error("translate: a region's register was not loaded at its entry");
      c.tee(R_LOCAL + r); this.cached[r] = 1;
    }
  }
  /** Pops an i64 into register r (0..30, 31 = SP). */
  private setReg(r: number): void {
    const c = this.c;
    if (c.depth === this.top) {
      c.set(R_LOCAL + r); this.cached[r] = 1;
      if (!this.dirty[r]) {
        if (this.region) throw new Error("translate: a region's register was not marked dirty at its entry");
        this.dirty[r] = 1; c.get(L_DM); c.i32(r === 31 ? -0x80000000 : 1 << r); c.op(OP.i32Or); c.set(L_DM); }
      return;
    }
    c.set(T7);
    if (this.cached[r]) { c.get(T7); c.set(R_LOCAL + r); }
    c.get(P_ST); c.get(T7); c.mem(OP.i64Store, 3, Translator.regOff(r));
  }
  /** Stores the dirty cached registers and lazy flags into the state block (before any way out of the block). */
  private writeBack(): void {
    const c = this.c;
    if (this.fk !== FK_MEM) { this.flagsValue(); this.setNzcv(); }
    for (let r = 0; r < N_REGS; r++) if (this.dirty[r]) { c.get(P_ST); c.get(R_LOCAL + r); c.mem(OP.i64Store, 3, Translator.regOff(r)); }
  }

  /** Pushes Xn (31: XZR). */
  private x(n: number): void {
    if (n === 31) { this.c.i64(0, 0); return; }
    this.reg(n);
  }
  /** Pushes Xn|SP (31: SP). */
  private xsp(n: number): void { this.reg(n); }
  /** Pushes Wn (31: WZR). */
  private wr(n: number): void {
    if (n === 31) { this.c.i32(0); return; }
    this.reg(n); this.c.op(OP.i32WrapI64);
  }
  private wsp(n: number): void { this.reg(n); this.c.op(OP.i32WrapI64); }
  /** Pops an i64 into Xd (31: discarded). */
  private setX(d: number): void {
    if (d === 31) { this.c.op(OP.drop); return; }
    this.setReg(d);
  }
  /** Pops an i64 into Xd|SP. */
  private setXsp(d: number): void { this.setReg(d); }
  /** Pops an i32 into Wd (zero-extended to Xd; 31 discarded). */
  private setW(d: number): void { this.c.op(OP.i64ExtendI32u); this.setX(d); }
  private setWsp(d: number): void { this.c.op(OP.i64ExtendI32u); this.setXsp(d); }
  /** PC = pc0 + off. */
  private setPc(off: number): void {
    const c = this.c;
    c.get(P_ST); c.get(L_PC0); c.i64(off, off < 0 ? -1 : 0); c.op(OP.i64Add); c.mem(OP.i64Store, 3, OFF_PC);
  }
  /** Pushes pc0 + off. */
  private pcPlus(off: number): void { const c = this.c; c.get(L_PC0); c.i64(off, off < 0 ? -1 : 0); c.op(OP.i64Add); }

  // ---------------------------------------------------------------------------------------------------------
  // Flags

  /** Pushes the i32 NZCV word. */
  private nzcv(): void { const c = this.c; c.get(P_ST); c.mem(OP.i32Load, 2, OFF_NZCV); }
  /** Pops an i32 into NZCV. */
  private setNzcv(): void { const c = this.c; c.set(W_0); c.get(P_ST); c.get(W_0); c.mem(OP.i32Store, 2, OFF_NZCV); }
  /**
   * Lazy flags. A flag-setting ADD/SUB (carry-in 0 or 1) or logical operation at the block's top level does not
   * compute NZCV: it leaves its operands and result in F_A, F_B, F_R (zero-extended when 32-bit) and `fk` says
   * which it was. Conditions read from them directly (CMP + B.cond is one compare); anything else that reads
   * NZCV, and every way out of the block (writeBack), computes NZCV from them first, so the state block is exact
   * wherever the run loop, the MMU or a fault looks at it.
   */
  private fk = FK_MEM;
  /** For FK_ADD: a subtraction (r = a + ~b + 1), and the operation's width. */
  private fSub = 0;
  private fSf = 0;

  /** Pushes F_A/F_B/F_R (l) as the lazy operation's width: an i64, or an i32 when 32-bit. */
  private fget(l: number): void { const c = this.c; c.get(l); if (!this.fSf) c.op(OP.i32WrapI64); }

  /** Pushes the i32 NZCV word of the lazy operation (fk ≠ FK_MEM). */
  private flagsValue(): void {
    const c = this.c;
    if (this.fk === FK_DYN) { this.dynFlagsValue(); return; }
    if (this.fk === FK_LOGIC) {
      if (this.fSf) this.logicValue(1, F_R);
      else { c.get(F_R); c.op(OP.i32WrapI64); c.set(M_R); this.logicValue(0, M_R); }
      return;
    }
    // ADD: b' = the addend actually added (~b for a subtraction).
    if (this.fSf) {
      c.get(F_B); if (this.fSub) { c.i64(-1, -1); c.op(OP.i64Xor); } c.set(F_T);
      this.addValue(1, F_A, F_T, F_R, this.fSub);
    } else {
      c.get(F_A); c.op(OP.i32WrapI64); c.set(M_A);
      c.get(F_B); c.op(OP.i32WrapI64); if (this.fSub) { c.i32(-1); c.op(OP.i32Xor); } c.set(M_B);
      c.get(F_R); c.op(OP.i32WrapI64); c.set(M_R);
      this.addValue(0, M_A, M_B, M_R, this.fSub);
    }
  }
  /**
   * Pushes the i32 NZCV word at a region's label (FK_DYN): by L_FK at run time, over the kinds the region's
   * first pass saw (preFk; code 0: the state block holds it).
   */
  private dynFlagsValue(): void {
    const c = this.c;
    const fk = this.fk, fSub = this.fSub, fSf = this.fSf;
    c.get(L_FK); c.op(OP.i32Eqz); c.if(I32); this.nzcv(); c.else();
    let open = 0;
    for (let code = 1; code <= 8; code++) {
      if ((this.preFk & (1 << code)) === 0) continue;
      c.get(L_FK); c.i32(code); c.op(OP.i32Eq); c.if(I32);
      this.fk = code <= 4 ? FK_ADD : FK_LOGIC; this.fSub = ((code - 1) >> 1) & 1; this.fSf = 1 - ((code - 1) & 1);
      this.flagsValue();
      c.else();
      open++;
    }
    c.op(OP.unreachable);
    for (let k = 0; k < open; k++) c.end();
    c.end();
    this.fk = fk; this.fSub = fSub; this.fSf = fSf;
  }
  /** Makes NZCV in the state block exact (at the top level: later reads go to memory). */
  private flushFlags(): void {
    if (this.fk === FK_MEM) return;
    this.flagsValue(); this.setNzcv();
    this.fk = FK_MEM;
  }

  /** Pushes 1 when condition `cond` holds. */
  private cond(cond: number): void {
    const c = this.c;
    if (cond >= 14) { c.i32(1); return; }
    if (this.fk === FK_DYN && c.depth === this.top) this.flushFlags(); // once, then from memory
    if (this.fk === FK_ADD && this.fSub) {
      // CMP/SUBS: compare the operands.
      const ops64 = [OP.i64Eq, OP.i64Ne, OP.i64GeU, OP.i64LtU, 0, 0, 0, 0, OP.i64GtU, OP.i64LeU, OP.i64GeS, OP.i64LtS, OP.i64GtS, OP.i64LeS];
      const ops32 = [OP.i32Eq, OP.i32Ne, OP.i32GeU, OP.i32LtU, 0, 0, 0, 0, OP.i32GtU, OP.i32LeU, OP.i32GeS, OP.i32LtS, OP.i32GtS, OP.i32LeS];
      const o = this.fSf ? ops64[cond] : ops32[cond];
      if (o !== 0) { this.fget(F_A); this.fget(F_B); c.op(o); return; }
    }
    if ((this.fk === FK_ADD || this.fk === FK_LOGIC) && cond <= 5 && cond !== 2 && cond !== 3) {
      // EQ/NE/MI/PL from the result (any lazy kind).
      this.fget(F_R);
      if (cond <= 1) c.op(this.fSf ? OP.i64Eqz : OP.i32Eqz);
      else if (this.fSf) { c.i64(0, 0); c.op(OP.i64LtS); } else { c.i32(0); c.op(OP.i32LtS); }
      if ((cond & 1) !== 0) c.op(OP.i32Eqz);
      return;
    }
    if (this.fk === FK_LOGIC && cond >= 10) {
      // V = 0: GE is N = 0, LT N = 1, GT Z = 0 and N = 0, LE the opposite.
      this.fget(F_R);
      const o = this.fSf ? [OP.i64GeS, OP.i64LtS, OP.i64GtS, OP.i64LeS][cond - 10] : [OP.i32GeS, OP.i32LtS, OP.i32GtS, OP.i32LeS][cond - 10];
      if (this.fSf) c.i64(0, 0); else c.i32(0);
      c.op(o);
      return;
    }
    c.i32(CONDMASK[cond]);
    if (this.fk === FK_MEM) this.nzcv(); else this.flagsValue();
    c.op(OP.i32ShrU); c.i32(1); c.op(OP.i32And);
  }
  /** NZCV of a logical result in local `r` (i64 when sf, else i32): lazily at the top level. */
  private logicFlags(sf: number, r: number): void {
    const c = this.c;
    if (c.depth === this.top) {
      c.get(r); if (!sf) c.op(OP.i64ExtendI32u); c.set(F_R);
      this.fk = FK_LOGIC; this.fSf = sf; this.fSub = 0;
      return;
    }
    this.logicValue(sf, r); this.setNzcv();
    this.fk = FK_MEM;
  }
  /** Pushes the NZCV word of a logical result in local `r`: N, Z; C = V = 0. */
  private logicValue(sf: number, r: number): void {
    const c = this.c;
    if (sf) {
      c.get(r); c.i64(63, 0); c.op(OP.i64ShrU); c.op(OP.i32WrapI64); c.i32(3); c.op(OP.i32Shl);
      c.get(r); c.op(OP.i64Eqz); c.i32(2); c.op(OP.i32Shl); c.op(OP.i32Or);
    } else {
      c.get(r); c.i32(31); c.op(OP.i32ShrU); c.i32(3); c.op(OP.i32Shl);
      c.get(r); c.op(OP.i32Eqz); c.i32(2); c.op(OP.i32Shl); c.op(OP.i32Or);
    }
  }
  /**
   * NZCV of r = a + b + cin (locals; b is the addend actually added, i.e. ~operand for subtractions), stored.
   * `cin`: 0, 1, or -1 for "the carry flag" (then local W_X holds it).
   */
  private addFlags(sf: number, a: number, b: number, r: number, cin: number): void {
    this.addValue(sf, a, b, r, cin); this.setNzcv();
    this.fk = FK_MEM;
  }
  /** Pushes the NZCV word of r = a + b + cin (as addFlags). */
  private addValue(sf: number, a: number, b: number, r: number, cin: number): void {
    const c = this.c;
    if (sf) {
      c.get(r); c.i64(63, 0); c.op(OP.i64ShrU); c.op(OP.i32WrapI64); c.i32(3); c.op(OP.i32Shl);
      c.get(r); c.op(OP.i64Eqz); c.i32(2); c.op(OP.i32Shl); c.op(OP.i32Or);
      // C: cin = 0 → r <u a; cin = 1 → r <=u a; variable → (r <u a) | (cin & r == a).
      if (cin === 0) { c.get(r); c.get(a); c.op(OP.i64LtU); }
      else if (cin === 1) { c.get(r); c.get(a); c.op(OP.i64LeU); }
      else { c.get(r); c.get(a); c.op(OP.i64LtU); c.get(W_X); c.get(r); c.get(a); c.op(OP.i64Eq); c.op(OP.i32And); c.op(OP.i32Or); }
      c.i32(1); c.op(OP.i32Shl); c.op(OP.i32Or);
      // V: ((a ^ r) & (b ^ r)) >>> 63.
      c.get(a); c.get(r); c.op(OP.i64Xor); c.get(b); c.get(r); c.op(OP.i64Xor); c.op(OP.i64And);
      c.i64(63, 0); c.op(OP.i64ShrU); c.op(OP.i32WrapI64); c.op(OP.i32Or);
    } else {
      c.get(r); c.i32(31); c.op(OP.i32ShrU); c.i32(3); c.op(OP.i32Shl);
      c.get(r); c.op(OP.i32Eqz); c.i32(2); c.op(OP.i32Shl); c.op(OP.i32Or);
      if (cin === 0) { c.get(r); c.get(a); c.op(OP.i32LtU); }
      else if (cin === 1) { c.get(r); c.get(a); c.op(OP.i32LeU); }
      else { c.get(r); c.get(a); c.op(OP.i32LtU); c.get(W_X); c.get(r); c.get(a); c.op(OP.i32Eq); c.op(OP.i32And); c.op(OP.i32Or); }
      c.i32(1); c.op(OP.i32Shl); c.op(OP.i32Or);
      c.get(a); c.get(r); c.op(OP.i32Xor); c.get(b); c.get(r); c.op(OP.i32Xor); c.op(OP.i32And);
      c.i32(31); c.op(OP.i32ShrU); c.op(OP.i32Or);
    }
  }

  /**
   * a (local, i64 if sf else i32 — W_0..: callers use T0/T1/T2 for 64-bit and W_LO/W_HI/W_X… for 32-bit)
   * plus or minus b with optional flags; result pushed.
   */
  private addSub(sf: number, sub: number, flags: number, a: number, b: number, r: number): void {
    const c = this.c;
    if (flags && c.depth === this.top) {
      // Lazy flags: keep a, b (as given) and the result.
      if (sf) { c.get(a); c.set(F_A); c.get(b); c.set(F_B); }
      else { c.get(a); c.op(OP.i64ExtendI32u); c.set(F_A); c.get(b); c.op(OP.i64ExtendI32u); c.set(F_B); }
      this.addSub(sf, sub, 0, a, b, r);
      c.get(r); if (!sf) c.op(OP.i64ExtendI32u); c.set(F_R);
      this.fk = FK_ADD; this.fSub = sub; this.fSf = sf;
      return;
    }
    if (sf) {
      if (sub) { c.get(b); c.i64(-1, -1); c.op(OP.i64Xor); c.set(b); }
      c.get(a); c.get(b); c.op(OP.i64Add);
      if (sub) { c.i64(1, 0); c.op(OP.i64Add); }
      c.set(r);
    } else {
      if (sub) { c.get(b); c.i32(-1); c.op(OP.i32Xor); c.set(b); }
      c.get(a); c.get(b); c.op(OP.i32Add);
      if (sub) { c.i32(1); c.op(OP.i32Add); }
      c.set(r);
    }
    if (flags) this.addFlags(sf, a, b, r, sub);
    c.get(r);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Memory

  /**
   * After a slow-path call: when it faulted (STOP_FAULT; the MMU holds the fault), leave at this instruction
   * through the shared exit, so the run loop finds the state exact and takes the exception.
   */
  private afterSlow(): void {
    const c = this.c;
    c.get(P_ST); c.mem(OP.i32Load, 2, OFF_STOP); c.i32(STOP_FAULT); c.op(OP.i32And);
    c.if(); this.leave(this.k, 4 * this.k); c.end();
  }

  /** Splits address local L_A into W_LO/W_HI and computes the TLB slot address W_E (tlb + 4x) and x (W_X). */
  private slot(): void {
    const c = this.c;
    const t = TEMPLATES[TPL_SLOT];
    if (t !== undefined) { c.bytes(t); return; }
    const mark = c.len;
    c.get(L_A); c.op(OP.i32WrapI64); c.set(W_LO);
    c.get(L_A); c.i64(32, 0); c.op(OP.i64ShrU); c.op(OP.i32WrapI64); c.set(W_HI);
    c.get(W_LO); c.i32(12); c.op(OP.i32ShrU); c.get(W_HI); c.i32(2); c.op(OP.i32ShrU); c.op(OP.i32Xor);
    c.i32(TLB_SLOT_MASK); c.op(OP.i32And); c.set(W_X);
    c.get(P_TLB); c.get(W_X); c.i32(2); c.op(OP.i32Shl); c.op(OP.i32Add); c.set(W_E);
    TEMPLATES[TPL_SLOT] = c.buf.slice(mark, c.len);
  }
  /** Pushes 1 when the TLB entry at W_E/W_X maps the access (size bytes, permission mask local) at W_LO/W_HI. */
  private hit(size: number, maskLocal: number): void {
    const c = this.c;
    // One template per permission local and size (1..16; others are emitted each time).
    const key = (maskLocal === W_MR || maskLocal === W_MW) && size >= 1 && size <= 16 ? TPL_HIT + (maskLocal === W_MR ? 0 : 1) + 2 * size : -1;
    const t = key >= 0 && key < TPL_N ? TEMPLATES[key] : undefined;
    if (t !== undefined) { c.bytes(t); return; }
    const mark = c.len;
    c.get(W_E); c.mem(OP.i32Load, 2, TLB_TAG_LO); c.get(W_LO); c.i32(-4096); c.op(OP.i32And); c.op(OP.i32Eq);
    c.get(W_E); c.mem(OP.i32Load, 2, TLB_TAG_HI); c.get(W_HI); c.op(OP.i32Eq); c.op(OP.i32And);
    c.get(P_TLB); c.get(W_X); c.op(OP.i32Add); c.mem(OP.i32Load8u, 0, TLB_PERM); c.get(maskLocal); c.op(OP.i32And);
    c.i32(0); c.op(OP.i32Ne); c.op(OP.i32And);
    if (size > 1) { c.get(W_LO); c.i32(0xfff); c.op(OP.i32And); c.i32(0x1000 - size); c.op(OP.i32LeU); c.op(OP.i32And); }
    c.get(W_E); c.mem(OP.i32Load, 2, TLB_ASID); c.tee(W_0); c.get(P_ASID); c.op(OP.i32Eq);
    c.get(W_0); c.i32(-1); c.op(OP.i32Eq); c.op(OP.i32Or); c.op(OP.i32And);
    if (key >= 0 && key < TPL_N) TEMPLATES[key] = c.buf.slice(mark, c.len);
  }
  /** Pushes the RAM offset of the hit access (entry W_E, address W_LO). */
  private ramAddr(): void {
    const c = this.c;
    const t = TEMPLATES[TPL_RAM];
    if (t !== undefined) { c.bytes(t); return; }
    const mark = c.len;
    c.get(W_E); c.mem(OP.i32Load, 2, TLB_OFF); c.get(W_LO); c.i32(0xfff); c.op(OP.i32And); c.op(OP.i32Add);
    TEMPLATES[TPL_RAM] = c.buf.slice(mark, c.len);
  }
  /**
   * Page memos: the accesses of one base register (memoReg, set by the load/store instruction being translated)
   * remember the last page the TLB gave them in locals, so the next access to that page — a loop walking a
   * buffer — checks one compare, the in-page bound and the permission instead of reading the TLB. A memo lives
   * for one call of the function: the TLB entries it copies change only between calls (TLB maintenance, fills
   * by the interpreter, code pages marked when the interpreter decodes them) or through a slow path of this
   * call, which is a TLB miss of its own and refills only its own entry. Returns the memo for this access, or -1
   * (no base register, or all N_MEMO taken by others in this block).
   */
  private memo(): number {
    const r = this.memoReg;
    // Only in a region with a loop: elsewhere an access rarely meets its page again within one call, and the
    // memo's code (beside the TLB path it falls back to) made a kernel boot's modules bigger for nothing.
    if (r < 0 || !MEMOS || !this.region || !this.back) return -1;
    let m = this.memoSlot[r];
    if (m < 0) {
      if (this.memoCount === N_MEMO) return -1;
      m = this.memoSlot[r] = this.memoCount++;
    }
    return m;
  }
  private memoReg = -1;
  private readonly memoSlot = new Int8Array(32);
  private memoCount = 0;
  /** Pushes 1 when memo m maps the access (size bytes, permission mask local) at L_A; sets W_LO. */
  private memoHit(m: number, size: number, maskLocal: number): void {
    const c = this.c;
    c.get(L_A); c.op(OP.i32WrapI64); c.set(W_LO);
    c.get(L_A); c.i64(-4096, -1); c.op(OP.i64And); c.get(MEMO_PAGE + m); c.op(OP.i64Eq);
    c.get(MEMO_PERM + m); c.get(maskLocal); c.op(OP.i32And); c.i32(0); c.op(OP.i32Ne); c.op(OP.i32And);
    if (size > 1) { c.get(W_LO); c.i32(0xfff); c.op(OP.i32And); c.i32(0x1000 - size); c.op(OP.i32LeU); c.op(OP.i32And); }
  }
  /** After a TLB hit (entry W_E/W_X for L_A): memo m remembers it. */
  private memoFill(m: number): void {
    const c = this.c;
    c.get(L_A); c.i64(-4096, -1); c.op(OP.i64And); c.set(MEMO_PAGE + m);
    c.get(W_E); c.mem(OP.i32Load, 2, TLB_OFF); c.set(MEMO_OFF + m);
    c.get(P_TLB); c.get(W_X); c.op(OP.i32Add); c.mem(OP.i32Load8u, 0, TLB_PERM); c.set(MEMO_PERM + m);
  }
  /** Loads `size` bytes at address L_A, zero-extended: pushes an i64. */
  private load(size: number): void {
    const c = this.c;
    const m = this.memo();
    const ld = size === 1 ? OP.i64Load8u : size === 2 ? OP.i64Load16u : size === 4 ? OP.i64Load32u : OP.i64Load;
    const al = size === 1 ? 0 : size === 2 ? 1 : size === 4 ? 2 : 3;
    if (m >= 0) {
      this.memoHit(m, size, W_MR);
      c.if(I64);
      c.get(MEMO_OFF + m); c.get(W_LO); c.i32(0xfff); c.op(OP.i32And); c.op(OP.i32Add); c.mem(ld, al, 0);
      c.else();
    }
    this.slot();
    this.hit(size, W_MR);
    c.if(I64);
    if (m >= 0) this.memoFill(m);
    this.ramAddr();
    c.mem(ld, al, 0);
    c.else();
    c.get(W_LO); c.get(W_HI); c.i32(size); c.call(IMPORT_RD);
    this.afterSlow();
    c.op(OP.i64ExtendI32u);
    if (size === 8) {
      c.get(P_ST); c.mem(OP.i64Load32u, 2, OFF_HI); c.i64(32, 0); c.op(OP.i64Shl); c.op(OP.i64Or);
    }
    c.end();
    if (m >= 0) c.end();
  }
  /** Stores the low `size` bytes of i64 local `v` at address L_A. */
  private store(size: number, v: number): void {
    const c = this.c;
    const m = this.memo();
    const st = size === 1 ? OP.i64Store8 : size === 2 ? OP.i64Store16 : size === 4 ? OP.i64Store32 : OP.i64Store;
    const al = size === 1 ? 0 : size === 2 ? 1 : size === 4 ? 2 : 3;
    if (m >= 0) {
      this.memoHit(m, size, W_MW);
      c.if();
      c.get(MEMO_OFF + m); c.get(W_LO); c.i32(0xfff); c.op(OP.i32And); c.op(OP.i32Add); c.get(v); c.mem(st, al, 0);
      c.else();
    }
    this.slot();
    this.hit(size, W_MW);
    c.if();
    if (m >= 0) this.memoFill(m);
    this.ramAddr(); c.get(v);
    c.mem(st, al, 0);
    c.else();
    c.get(W_LO); c.get(W_HI); c.i32(size);
    c.get(v); c.op(OP.i32WrapI64); c.get(v); c.i64(32, 0); c.op(OP.i64ShrU); c.op(OP.i32WrapI64);
    c.call(IMPORT_WR); c.get(W_CW); c.op(OP.i32Or); c.set(W_CW);
    this.afterSlow();
    c.end();
    if (m >= 0) c.end();
    this.stored = true;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Instructions. Each returns 1 (translated), 2 (a branch: PC written, the block ends) or 0 (not translated).

  private insn(w: number): number {
    this.memoReg = -1;
    const name = this.decoder.nameOf(w);
    if (name === "UNDEFINED") return 0;
    const op0 = (w >>> 25) & 0xf;
    if ((op0 & 0xe) === 0x8) return this.dpImm(w);
    if ((op0 & 0x7) === 0x5) return this.dpReg(w);
    if ((op0 & 0x5) === 0x4) return this.ldst(w, name);
    if ((op0 & 0xe) === 0xa) return this.branch(w);
    if ((op0 & 0x7) === 0x7) return this.simd(w, name);
    return 0;
  }

  private dpImm(w: number): number {
    const c = this.c;
    const sf = w >>> 31, d = w & 31, n = (w >>> 5) & 31;
    switch ((w >>> 23) & 7) {
      case 0: case 1: { // ADR / ADRP
        const imm = (((w << 8) >> 13) << 2) | ((w >>> 29) & 3);
        if (w < 0) {
          this.pcPlus(4 * this.k); c.i64(-4096, -1); c.op(OP.i64And);
          c.i64(imm << 12, imm >> 20); c.op(OP.i64Add);
        } else this.pcPlus(4 * this.k + imm);
        this.setX(d);
        return 1;
      }
      case 2: { // ADD/SUB (immediate)
        const sub = (w >>> 30) & 1, s = (w >>> 29) & 1;
        const imm = ((w >>> 10) & 0xfff) << (((w >>> 22) & 1) * 12);
        if (sf) { this.xsp(n); c.set(T0); c.i64(imm, 0); c.set(T1); this.addSub(1, sub, s, T0, T1, T2); }
        else { this.wsp(n); c.set(W_LO); c.i32(imm); c.set(W_HI); this.addSub(0, sub, s, W_LO, W_HI, W_E); }
        if (s) { if (sf) this.setX(d); else this.setW(d); } else if (sf) this.setXsp(d); else this.setWsp(d);
        return 1;
      }
      case 4: { // logical (immediate)
        const nb = (w >>> 22) & 1;
        if (sf === 0 && nb) return 0;
        if (!decodeBitMask(nb, (w >>> 16) & 63, (w >>> 10) & 63, BM)) return 0;
        const opc = (w >>> 29) & 3;
        const o = opc === 1 ? OP.i64Or : opc === 2 ? OP.i64Xor : OP.i64And;
        this.x(n); c.i64(BM[0], sf ? BM[1] : 0); c.op(o);
        if (opc === 3) {
          if (sf) { c.tee(T0); this.logicFlags(1, T0); this.setX(d); }
          else { c.op(OP.i32WrapI64); c.tee(W_LO); this.logicFlags(0, W_LO); this.setW(d); }
        } else {
          if (!sf) { c.i64(-1, 0); c.op(OP.i64And); }
          this.setXsp(d);
        }
        return 1;
      }
      case 5: { // MOVN/MOVZ/MOVK
        const opc = (w >>> 29) & 3, hw = (w >>> 21) & 3;
        if (opc === 1 || (sf === 0 && hw >= 2)) return 0;
        const imm = (w >>> 5) & 0xffff, sh = 16 * hw;
        const lo = sh < 32 ? imm << sh : 0, hi = sh >= 32 ? imm << (sh - 32) : 0;
        if (opc === 3) {
          const mlo = sh < 32 ? ~(0xffff << sh) : -1, mhi = sh >= 32 ? ~(0xffff << (sh - 32)) : -1;
          this.x(d); c.i64(mlo, sf ? mhi : 0); c.op(OP.i64And); c.i64(lo, hi); c.op(OP.i64Or);
        } else if (opc === 0) c.i64(~lo, sf ? ~hi : 0);
        else c.i64(lo, hi);
        this.setX(d);
        return 1;
      }
      case 6: return this.bitfield(w);
      case 7: { // EXTR
        if (((w >>> 29) & 3) !== 0 || ((w >>> 22) & 1) !== sf || ((w >>> 21) & 1) !== 0) return 0;
        const m = (w >>> 16) & 31, lsb = (w >>> 10) & 63;
        if (!sf && lsb >= 32) return 0;
        if (sf) {
          if (lsb === 0) this.x(m);
          else { this.x(m); c.i64(lsb, 0); c.op(OP.i64ShrU); this.x(n); c.i64(64 - lsb, 0); c.op(OP.i64Shl); c.op(OP.i64Or); }
          this.setX(d);
        } else {
          if (lsb === 0) this.wr(m);
          else { this.wr(m); c.i32(lsb); c.op(OP.i32ShrU); this.wr(n); c.i32(32 - lsb); c.op(OP.i32Shl); c.op(OP.i32Or); }
          this.setW(d);
        }
        return 1;
      }
      default: return 0;
    }
  }

  private bitfield(w: number): number {
    const c = this.c;
    const sf = w >>> 31, opc = (w >>> 29) & 3, nb = (w >>> 22) & 1;
    const R = (w >>> 16) & 63, S = (w >>> 10) & 63, n = (w >>> 5) & 31, d = w & 31;
    if (opc === 3 || nb !== sf || (sf === 0 && ((R | S) & 32) !== 0)) return 0;
    const size = sf ? 64 : 32;
    if (sf) {
      if (S >= R) {
        const wd = S - R + 1;
        if (opc === 1) { // BFXIL-like: dst = (dst & ~mask) | ((src >>> R) & mask)
          this.x(d); c.i64(~maskLo(wd), ~maskHi(wd)); c.op(OP.i64And);
          this.x(n); c.i64(R, 0); c.op(OP.i64ShrU); c.i64(maskLo(wd), maskHi(wd)); c.op(OP.i64And); c.op(OP.i64Or);
        } else {
          this.x(n); c.i64(size - 1 - S, 0); c.op(OP.i64Shl); c.i64(size - wd, 0);
          c.op(opc === 0 ? OP.i64ShrS : OP.i64ShrU);
        }
      } else {
        const wd = S + 1, pos = size - R;
        if (opc === 1) {
          const ml = maskLo(wd), mh = maskHi(wd);
          // mask << pos, computed here
          const sl = pos >= 32 ? 0 : ml << pos;
          const sh = pos >= 32 ? ml << (pos - 32) : pos === 0 ? mh : (mh << pos) | (ml >>> (32 - pos));
          this.x(d); c.i64(~sl, ~sh); c.op(OP.i64And);
          this.x(n); c.i64(ml, mh); c.op(OP.i64And); c.i64(pos, 0); c.op(OP.i64Shl); c.op(OP.i64Or);
        } else if (opc === 0) {
          this.x(n); c.i64(size - wd, 0); c.op(OP.i64Shl); c.i64(size - wd, 0); c.op(OP.i64ShrS); c.i64(pos, 0); c.op(OP.i64Shl);
        } else {
          this.x(n); c.i64(maskLo(wd), maskHi(wd)); c.op(OP.i64And); c.i64(pos, 0); c.op(OP.i64Shl);
        }
      }
      this.setX(d);
      return 1;
    }
    if (S >= R) {
      const wd = S - R + 1;
      const m = maskLo(wd);
      if (opc === 1) {
        this.wr(d); c.i32(~m); c.op(OP.i32And);
        this.wr(n); c.i32(R); c.op(OP.i32ShrU); c.i32(m); c.op(OP.i32And); c.op(OP.i32Or);
      } else {
        this.wr(n); c.i32(size - 1 - S); c.op(OP.i32Shl); c.i32(size - wd); c.op(opc === 0 ? OP.i32ShrS : OP.i32ShrU);
      }
    } else {
      const wd = S + 1, pos = size - R, m = maskLo(wd);
      if (opc === 1) {
        this.wr(d); c.i32(~(m << pos)); c.op(OP.i32And);
        this.wr(n); c.i32(m); c.op(OP.i32And); c.i32(pos); c.op(OP.i32Shl); c.op(OP.i32Or);
      } else if (opc === 0) {
        this.wr(n); c.i32(size - wd); c.op(OP.i32Shl); c.i32(size - wd); c.op(OP.i32ShrS); c.i32(pos); c.op(OP.i32Shl);
      } else {
        this.wr(n); c.i32(m); c.op(OP.i32And); c.i32(pos); c.op(OP.i32Shl);
      }
    }
    this.setW(d);
    return 1;
  }

  /** Pushes Rm shifted by (type, amount): i64 when sf, else i32. type 3 = ROR. */
  private shifted(sf: number, m: number, type: number, amount: number): void {
    const c = this.c;
    if (sf) {
      this.x(m);
      if (amount !== 0) { c.i64(amount, 0); c.op(type === 0 ? OP.i64Shl : type === 1 ? OP.i64ShrU : type === 2 ? OP.i64ShrS : OP.i64Rotr); }
    } else {
      this.wr(m);
      if (amount !== 0) { c.i32(amount); c.op(type === 0 ? OP.i32Shl : type === 1 ? OP.i32ShrU : type === 2 ? OP.i32ShrS : OP.i32Rotr); }
    }
  }

  private dpReg(w: number): number {
    const c = this.c;
    const sf = w >>> 31, d = w & 31, n = (w >>> 5) & 31, m = (w >>> 16) & 31;
    const op1 = (w >>> 28) & 1, op2 = (w >>> 21) & 0xf;
    if (op1 === 0) {
      if ((op2 & 8) === 0) { // logical (shifted register)
        const opc = (w >>> 29) & 3, type = (w >>> 22) & 3, amt = (w >>> 10) & 63, inv = (w >>> 21) & 1;
        if (!sf && amt >= 32) return 0;
        const o = sf ? (opc === 1 ? OP.i64Or : opc === 2 ? OP.i64Xor : OP.i64And) : (opc === 1 ? OP.i32Or : opc === 2 ? OP.i32Xor : OP.i32And);
        if (sf) {
          this.x(n); this.shifted(1, m, type, amt);
          if (inv) { c.i64(-1, -1); c.op(OP.i64Xor); }
          c.op(o);
          if (opc === 3) { c.tee(T0); this.logicFlags(1, T0); }
          this.setX(d);
        } else {
          this.wr(n); this.shifted(0, m, type, amt);
          if (inv) { c.i32(-1); c.op(OP.i32Xor); }
          c.op(o);
          if (opc === 3) { c.tee(W_LO); this.logicFlags(0, W_LO); }
          this.setW(d);
        }
        return 1;
      }
      const sub = (w >>> 30) & 1, s = (w >>> 29) & 1;
      if ((op2 & 1) === 0) { // add/sub (shifted register)
        const type = (w >>> 22) & 3, amt = (w >>> 10) & 63;
        if (type === 3 || (!sf && amt >= 32)) return 0;
        if (sf) { this.x(n); c.set(T0); this.shifted(1, m, type, amt); c.set(T1); this.addSub(1, sub, s, T0, T1, T2); this.setX(d); }
        else { this.wr(n); c.set(W_LO); this.shifted(0, m, type, amt); c.set(W_HI); this.addSub(0, sub, s, W_LO, W_HI, W_E); this.setW(d); }
        return 1;
      }
      // add/sub (extended register)
      const opt = (w >>> 13) & 7, imm3 = (w >>> 10) & 7;
      if (((w >>> 22) & 3) !== 0 || imm3 > 4) return 0;
      this.x(m);
      switch (opt) {
        case 0: c.i64(0xff, 0); c.op(OP.i64And); break;
        case 1: c.i64(0xffff, 0); c.op(OP.i64And); break;
        case 2: c.i64(-1, 0); c.op(OP.i64And); break;
        case 4: c.op(OP.i64Extend8s); break;
        case 5: c.op(OP.i64Extend16s); break;
        case 6: c.op(OP.i64Extend32s); break;
        default: break;
      }
      if (imm3 !== 0) { c.i64(imm3, 0); c.op(OP.i64Shl); }
      if (sf) { c.set(T1); this.xsp(n); c.set(T0); this.addSub(1, sub, s, T0, T1, T2); }
      else { c.op(OP.i32WrapI64); c.set(W_HI); this.wsp(n); c.set(W_LO); this.addSub(0, sub, s, W_LO, W_HI, W_E); c.op(OP.i64ExtendI32u); }
      if (s) this.setX(d); else this.setXsp(d);
      return 1;
    }
    switch (op2) {
      case 0: { // ADC/ADCS/SBC/SBCS
        if (((w >>> 10) & 63) !== 0) return 0;
        const sub = (w >>> 30) & 1, s = (w >>> 29) & 1;
        this.flushFlags();
        this.nzcv(); c.i32(1); c.op(OP.i32ShrU); c.i32(1); c.op(OP.i32And); c.set(W_X);
        if (sf) {
          this.x(n); c.set(T0); this.x(m); if (sub) { c.i64(-1, -1); c.op(OP.i64Xor); } c.set(T1);
          c.get(T0); c.get(T1); c.op(OP.i64Add); c.get(W_X); c.op(OP.i64ExtendI32u); c.op(OP.i64Add); c.set(T2);
          if (s) this.addFlags(1, T0, T1, T2, -1);
          c.get(T2); this.setX(d);
        } else {
          this.wr(n); c.set(W_LO); this.wr(m); if (sub) { c.i32(-1); c.op(OP.i32Xor); } c.set(W_HI);
          c.get(W_LO); c.get(W_HI); c.op(OP.i32Add); c.get(W_X); c.op(OP.i32Add); c.set(W_E);
          if (s) this.addFlags(0, W_LO, W_HI, W_E, -1);
          c.get(W_E); this.setW(d);
        }
        return 1;
      }
      case 2: { // CCMN/CCMP (register or immediate)
        if (((w >>> 29) & 1) !== 1 || (w & 0x10) !== 0 || (w & 0x400) !== 0) return 0;
        const sub = (w >>> 30) & 1, imm = (w & 0x800) !== 0;
        this.cond((w >>> 12) & 15);
        c.if();
        if (sf) {
          this.x(n); c.set(T0);
          if (imm) c.i64(m, 0); else this.x(m);
          c.set(T1); this.addSub(1, sub, 1, T0, T1, T2); c.op(OP.drop);
        } else {
          this.wr(n); c.set(W_LO);
          if (imm) c.i32(m); else this.wr(m);
          c.set(W_HI); this.addSub(0, sub, 1, W_LO, W_HI, W_E); c.op(OP.drop);
        }
        c.else();
        c.i32(w & 15); this.setNzcv();
        c.end();
        this.fk = FK_MEM;
        return 1;
      }
      case 4: { // CSEL/CSINC/CSINV/CSNEG
        if (((w >>> 29) & 1) !== 0 || (w & 0x800) !== 0) return 0;
        const op = ((w >>> 29) & 2) | ((w >>> 10) & 1);
        if (sf) {
          this.x(n);
          this.x(m);
          if (op === 1) { c.i64(1, 0); c.op(OP.i64Add); }
          else if (op === 2) { c.i64(-1, -1); c.op(OP.i64Xor); }
          else if (op === 3) { c.set(T0); c.i64(0, 0); c.get(T0); c.op(OP.i64Sub); }
          this.cond((w >>> 12) & 15); c.op(OP.select);
          this.setX(d);
        } else {
          this.wr(n);
          this.wr(m);
          if (op === 1) { c.i32(1); c.op(OP.i32Add); }
          else if (op === 2) { c.i32(-1); c.op(OP.i32Xor); }
          else if (op === 3) { c.set(W_LO); c.i32(0); c.get(W_LO); c.op(OP.i32Sub); }
          this.cond((w >>> 12) & 15); c.op(OP.select);
          this.setW(d);
        }
        return 1;
      }
      case 6: return ((w >>> 30) & 1) ? this.dp1(w) : this.dp2(w);
      default:
        if (op2 >= 8) return this.dp3(w);
        return 0;
    }
  }

  /** v = ((v >>> s) & mask) | ((v & mask) << s), on the i64 (or i32) in local `l`. */
  private swap(sf: number, l: number, s: number, mlo: number, mhi: number): void {
    const c = this.c;
    if (sf) {
      c.get(l); c.i64(s, 0); c.op(OP.i64ShrU); c.i64(mlo, mhi); c.op(OP.i64And);
      c.get(l); c.i64(mlo, mhi); c.op(OP.i64And); c.i64(s, 0); c.op(OP.i64Shl); c.op(OP.i64Or); c.set(l);
    } else {
      c.get(l); c.i32(s); c.op(OP.i32ShrU); c.i32(mlo); c.op(OP.i32And);
      c.get(l); c.i32(mlo); c.op(OP.i32And); c.i32(s); c.op(OP.i32Shl); c.op(OP.i32Or); c.set(l);
    }
  }

  private dp1(w: number): number {
    const c = this.c;
    const sf = w >>> 31, d = w & 31, n = (w >>> 5) & 31, opc = (w >>> 10) & 63;
    if (((w >>> 16) & 31) !== 0 || ((w >>> 29) & 1) !== 0) return 0;
    if (sf) {
      this.x(n); c.set(T0);
      switch (opc) {
        case 0:
          this.swap(1, T0, 1, 0x55555555, 0x55555555); this.swap(1, T0, 2, 0x33333333, 0x33333333);
          this.swap(1, T0, 4, 0x0f0f0f0f, 0x0f0f0f0f); this.swap(1, T0, 8, 0x00ff00ff, 0x00ff00ff);
          this.swap(1, T0, 16, 0x0000ffff, 0x0000ffff); c.get(T0); c.i64(32, 0); c.op(OP.i64Rotl); break;
        case 1: this.swap(1, T0, 8, 0x00ff00ff, 0x00ff00ff); c.get(T0); break;
        case 2: this.swap(1, T0, 8, 0x00ff00ff, 0x00ff00ff); this.swap(1, T0, 16, 0x0000ffff, 0x0000ffff); c.get(T0); break;
        case 3:
          this.swap(1, T0, 8, 0x00ff00ff, 0x00ff00ff); this.swap(1, T0, 16, 0x0000ffff, 0x0000ffff);
          c.get(T0); c.i64(32, 0); c.op(OP.i64Rotl); break;
        case 4: c.get(T0); c.op(OP.i64Clz); break;
        case 5: c.get(T0); c.get(T0); c.i64(1, 0); c.op(OP.i64ShrS); c.op(OP.i64Xor); c.op(OP.i64Clz); c.i64(1, 0); c.op(OP.i64Sub); break;
        default: return 0;
      }
      this.setX(d);
      return 1;
    }
    this.wr(n); c.set(W_LO);
    switch (opc) {
      case 0:
        this.swap(0, W_LO, 1, 0x55555555, 0); this.swap(0, W_LO, 2, 0x33333333, 0);
        this.swap(0, W_LO, 4, 0x0f0f0f0f, 0); this.swap(0, W_LO, 8, 0x00ff00ff, 0);
        c.get(W_LO); c.i32(16); c.op(OP.i32Rotl); break;
      case 1: this.swap(0, W_LO, 8, 0x00ff00ff, 0); c.get(W_LO); break;
      case 2: this.swap(0, W_LO, 8, 0x00ff00ff, 0); c.get(W_LO); c.i32(16); c.op(OP.i32Rotl); break;
      case 4: c.get(W_LO); c.op(OP.i32Clz); break;
      case 5: c.get(W_LO); c.get(W_LO); c.i32(1); c.op(OP.i32ShrS); c.op(OP.i32Xor); c.op(OP.i32Clz); c.i32(1); c.op(OP.i32Sub); break;
      default: return 0;
    }
    this.setW(d);
    return 1;
  }

  private dp2(w: number): number {
    const c = this.c;
    const sf = w >>> 31, d = w & 31, n = (w >>> 5) & 31, m = (w >>> 16) & 31, opc = (w >>> 10) & 63;
    if (((w >>> 29) & 1) !== 0) return 0;
    if (opc === 2 || opc === 3) {
      const signed = opc === 3;
      if (sf) {
        this.x(n); c.set(T0); this.x(m); c.set(T1);
        c.get(T1); c.op(OP.i64Eqz);
        c.if(I64); c.i64(0, 0);
        c.else();
        if (signed) {
          c.get(T0); c.i64(0, 0x80000000 | 0); c.op(OP.i64Eq); c.get(T1); c.i64(-1, -1); c.op(OP.i64Eq); c.op(OP.i32And);
          c.if(I64); c.get(T0); c.else(); c.get(T0); c.get(T1); c.op(OP.i64DivS); c.end();
        } else { c.get(T0); c.get(T1); c.op(OP.i64DivU); }
        c.end();
        this.setX(d);
      } else {
        this.wr(n); c.set(W_LO); this.wr(m); c.set(W_HI);
        c.get(W_HI); c.op(OP.i32Eqz);
        c.if(I32); c.i32(0);
        c.else();
        if (signed) {
          c.get(W_LO); c.i32(0x80000000 | 0); c.op(OP.i32Eq); c.get(W_HI); c.i32(-1); c.op(OP.i32Eq); c.op(OP.i32And);
          c.if(I32); c.get(W_LO); c.else(); c.get(W_LO); c.get(W_HI); c.op(OP.i32DivS); c.end();
        } else { c.get(W_LO); c.get(W_HI); c.op(OP.i32DivU); }
        c.end();
        this.setW(d);
      }
      return 1;
    }
    if (opc < 8 || opc > 11) return 0;
    const t = opc - 8;
    if (sf) {
      this.x(n); this.x(m);
      c.op(t === 0 ? OP.i64Shl : t === 1 ? OP.i64ShrU : t === 2 ? OP.i64ShrS : OP.i64Rotr);
      this.setX(d);
    } else {
      this.wr(n); this.wr(m);
      c.op(t === 0 ? OP.i32Shl : t === 1 ? OP.i32ShrU : t === 2 ? OP.i32ShrS : OP.i32Rotr);
      this.setW(d);
    }
    return 1;
  }

  /** Pushes the high 64 bits of the unsigned 128-bit product of i64 locals a and b (clobbers T2..T6). */
  private umulh(a: number, b: number): void {
    const c = this.c;
    const lo32 = (l: number) => { c.get(l); c.i64(-1, 0); c.op(OP.i64And); };
    const hi32 = (l: number) => { c.get(l); c.i64(32, 0); c.op(OP.i64ShrU); };
    // T2 = a0*b0, T3 = a0*b1, T4 = a1*b0, T5 = a1*b1
    lo32(a); lo32(b); c.op(OP.i64Mul); c.set(T2);
    lo32(a); hi32(b); c.op(OP.i64Mul); c.set(T3);
    hi32(a); lo32(b); c.op(OP.i64Mul); c.set(T4);
    hi32(a); hi32(b); c.op(OP.i64Mul); c.set(T5);
    // T6 = (T2 >>> 32) + (T3 & M) + (T4 & M)
    hi32(T2); lo32(T3); c.op(OP.i64Add); lo32(T4); c.op(OP.i64Add); c.set(T6);
    c.get(T5); hi32(T3); c.op(OP.i64Add); hi32(T4); c.op(OP.i64Add); hi32(T6); c.op(OP.i64Add);
  }

  private dp3(w: number): number {
    const c = this.c;
    const sf = w >>> 31, d = w & 31, n = (w >>> 5) & 31, m = (w >>> 16) & 31, a = (w >>> 10) & 31;
    const op31 = (w >>> 21) & 7, o0 = (w >>> 15) & 1;
    if (((w >>> 29) & 3) !== 0) return 0;
    if (!sf && op31 !== 0) return 0;
    switch (op31) {
      case 0:
        if (sf) { this.x(a); this.x(n); this.x(m); c.op(OP.i64Mul); c.op(o0 ? OP.i64Sub : OP.i64Add); this.setX(d); }
        else { this.wr(a); this.wr(n); this.wr(m); c.op(OP.i32Mul); c.op(o0 ? OP.i32Sub : OP.i32Add); this.setW(d); }
        return 1;
      case 1: case 5: {
        const ext = op31 === 1 ? OP.i64ExtendI32s : OP.i64ExtendI32u;
        this.x(a); this.wr(n); c.op(ext); this.wr(m); c.op(ext); c.op(OP.i64Mul); c.op(o0 ? OP.i64Sub : OP.i64Add);
        this.setX(d);
        return 1;
      }
      case 2: case 6: {
        if (o0) return 0;
        this.x(n); c.set(T0); this.x(m); c.set(T1);
        this.umulh(T0, T1);
        if (op31 === 2) { // signed: subtract (a < 0 ? b : 0) + (b < 0 ? a : 0)
          c.get(T0); c.i64(63, 0); c.op(OP.i64ShrS); c.get(T1); c.op(OP.i64And); c.op(OP.i64Sub);
          c.get(T1); c.i64(63, 0); c.op(OP.i64ShrS); c.get(T0); c.op(OP.i64And); c.op(OP.i64Sub);
        }
        this.setX(d);
        return 1;
      }
      default: return 0;
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Loads and stores

  /**
   * The access of a single-register load/store of kind = size << 2 | opc (ldst.ts gpAccess) at L_A; Rt = t.
   * Loads leave their value in T3 (written to Rt by the caller's order); stores read Rt themselves.
   */
  private access(kind: number, t: number): void {
    const c = this.c;
    const size = 1 << (kind >>> 2);
    switch (kind) {
      case 0: case 4: case 8: case 12: this.x(t); c.set(T3); this.store(size, T3); return;
      case 14: return; // PRFM
      default: break;
    }
    this.load(size);
    switch (kind) {
      case 2: c.op(OP.i64Extend8s); break;
      case 3: c.op(OP.i64Extend8s); c.i64(-1, 0); c.op(OP.i64And); break;
      case 6: c.op(OP.i64Extend16s); break;
      case 7: c.op(OP.i64Extend16s); c.i64(-1, 0); c.op(OP.i64And); break;
      case 10: c.op(OP.i64Extend32s); break;
      default: break;
    }
    c.set(T3);
  }
  /**
   * LDAR / STLR (B/H/W/X) with one thread per domain: a load or store of Rt at [Xn|SP], which must be aligned (else
   * the block leaves at it and the interpreter takes the alignment fault). The ordering they give is program
   * order, which compiled code keeps on one thread. With vCPUs on other threads (`fences`) they stay with the
   * interpreter: it makes them atomic accesses and wakes WFE sleepers after a store-release (ldst.ts stlr).
   */
  private ordered(w: number, load: boolean): number {
    if (this.fences) return 0;
    const c = this.c, size = w >>> 30, t = w & 31, n = (w >>> 5) & 31;
    this.xsp(n); c.set(L_A);
    if (size !== 0) {
      c.get(L_A); c.op(OP.i32WrapI64); c.i32((1 << size) - 1); c.op(OP.i32And);
      c.if(); this.leave(this.k, 4 * this.k); c.end();
    }
    const kind = (size << 2) | (load ? 1 : 0);
    this.access(kind, t);
    if (load) { c.get(T3); this.setX(t); }
    return 1;
  }
  /**
   * LDXR/LDAXR and STXR/STLXR (B/H/W/X) with one thread per domain, as the interpreter does them (ldst.ts ldxr,
   * stxr) on the same monitor words of the state block (Cpu.exclOff … are views of them): LDXR records the RAM
   * offset, size and value read; STXR stores and sets Ws = 0 when the monitor is armed for that offset and size
   * and memory still holds the recorded value, else sets Ws = 1 and stores nothing; either way the monitor opens.
   * An unaligned address or a TLB miss (a first touch, MMIO, a code page, a fault) leaves the block at the
   * instruction, and the interpreter does it (fills the TLB, or faults). The acquire/release forms need nothing
   * more on one thread. With vCPUs on other threads (`fences`) they stay with the interpreter, whose compare-and-
   * swap makes them atomic against the other threads and wakes WFE sleepers.
   */
  private exclusive(w: number, load: boolean): number {
    if (this.fences) return 0;
    const c = this.c, size = w >>> 30, bytes = 1 << size, t = w & 31, n = (w >>> 5) & 31, s = (w >>> 16) & 31;
    this.xsp(n); c.set(L_A);
    if (size !== 0) {
      c.get(L_A); c.op(OP.i32WrapI64); c.i32(bytes - 1); c.op(OP.i32And);
      c.if(); this.leave(this.k, 4 * this.k); c.end();
    }
    if (!load) { this.x(t); c.set(T3); } // Rt before Ws is written (as the interpreter reads it)
    this.slot();
    this.hit(bytes, load ? W_MR : W_MW); c.op(OP.i32Eqz);
    c.if(); this.leave(this.k, 4 * this.k); c.end();
    this.ramAddr(); c.set(W_X); // the RAM offset (the TLB index is not needed any more)
    const ld64 = size === 0 ? OP.i64Load8u : size === 1 ? OP.i64Load16u : size === 2 ? OP.i64Load32u : OP.i64Load;
    if (load) {
      c.get(W_X); c.mem(ld64, size, 0); c.set(T3);
      // exclOff = off, exclSize = bytes; exclLo/exclHi = the value (zero-extended, as the interpreter records it).
      c.get(P_ST); c.get(W_X); c.op(OP.i64ExtendI32u); c.i64(0, bytes); c.op(OP.i64Or); c.mem(OP.i64Store, 3, OFF_EXCL);
      c.get(P_ST); c.get(T3); c.mem(OP.i64Store, 3, OFF_EXCL_VAL);
      c.get(T3); this.setX(t);
      return 1;
    }
    // Armed for this offset and size, and memory unchanged (compared at the access's width, as stxr does).
    c.get(P_ST); c.mem(OP.i64Load, 3, OFF_EXCL); c.get(W_X); c.op(OP.i64ExtendI32u); c.i64(0, bytes); c.op(OP.i64Or); c.op(OP.i64Eq);
    if (size === 3) { c.get(W_X); c.mem(OP.i64Load, 3, 0); c.get(P_ST); c.mem(OP.i64Load, 3, OFF_EXCL_VAL); c.op(OP.i64Eq); }
    else {
      c.get(W_X); c.mem(size === 0 ? OP.i32Load8u : size === 1 ? OP.i32Load16u : OP.i32Load, size, 0);
      c.get(P_ST); c.mem(OP.i32Load, 2, OFF_EXCL_VAL); c.op(OP.i32Eq);
    }
    c.op(OP.i32And); c.tee(W_0);
    c.if();
    c.get(W_X); c.get(T3);
    c.mem(size === 0 ? OP.i64Store8 : size === 1 ? OP.i64Store16 : size === 2 ? OP.i64Store32 : OP.i64Store, size, 0);
    c.end();
    c.get(P_ST); c.i32(-1); c.mem(OP.i32Store, 2, OFF_EXCL); // the monitor opens
    c.get(W_0); c.op(OP.i32Eqz); this.setW(s);
    return 1;
  }
  /**
   * LDXP/LDAXP and STXP/STLXP (two W registers: one doubleword; two X registers: two), one thread per domain, as
   * ldst.ts ldxp/stxp: the monitor records the first doubleword and, for X pairs, the second (PS_EXCL_PAIR); a
   * store-exclusive stores both halves only when the monitor is armed for that offset and size and memory holds
   * what was recorded. Unaligned (to the pair's size) or a TLB miss: the interpreter, as for `exclusive`.
   */
  private exclusivePair(w: number, load: boolean): number {
    if (this.fences) return 0;
    const c = this.c, x = (w >>> 30) & 1, bytes = 8 << x;
    const t = w & 31, n = (w >>> 5) & 31, t2 = (w >>> 10) & 31, s = (w >>> 16) & 31;
    this.xsp(n); c.set(L_A);
    c.get(L_A); c.op(OP.i32WrapI64); c.i32(bytes - 1); c.op(OP.i32And);
    c.if(); this.leave(this.k, 4 * this.k); c.end();
    if (!load) { // the registers before Ws is written (as the interpreter reads them)
      if (x) { this.x(t); c.set(T3); this.x(t2); c.set(T4); }
      else { this.x(t); c.i64(-1, 0); c.op(OP.i64And); this.x(t2); c.i64(32, 0); c.op(OP.i64Shl); c.op(OP.i64Or); c.set(T3); }
    }
    this.slot();
    this.hit(bytes, load ? W_MR : W_MW); c.op(OP.i32Eqz);
    c.if(); this.leave(this.k, 4 * this.k); c.end();
    this.ramAddr(); c.set(W_X);
    if (load) {
      c.get(W_X); c.mem(OP.i64Load, 3, 0); c.set(T3);
      c.get(P_ST); c.get(W_X); c.op(OP.i64ExtendI32u); c.i64(0, bytes); c.op(OP.i64Or); c.mem(OP.i64Store, 3, OFF_EXCL);
      c.get(P_ST); c.get(T3); c.mem(OP.i64Store, 3, OFF_EXCL_VAL);
      if (x) {
        c.get(W_X); c.mem(OP.i64Load, 3, 8); c.set(T4);
        c.get(P_ST); c.get(T4); c.mem(OP.i64Store, 3, OFF_EXCL_PAIR);
        c.get(T3); this.setX(t); c.get(T4); this.setX(t2);
      } else {
        c.get(T3); c.i64(-1, 0); c.op(OP.i64And); this.setX(t);
        c.get(T3); c.i64(32, 0); c.op(OP.i64ShrU); this.setX(t2);
      }
      return 1;
    }
    c.get(P_ST); c.mem(OP.i64Load, 3, OFF_EXCL); c.get(W_X); c.op(OP.i64ExtendI32u); c.i64(0, bytes); c.op(OP.i64Or); c.op(OP.i64Eq);
    c.get(W_X); c.mem(OP.i64Load, 3, 0); c.get(P_ST); c.mem(OP.i64Load, 3, OFF_EXCL_VAL); c.op(OP.i64Eq); c.op(OP.i32And);
    if (x) { c.get(W_X); c.mem(OP.i64Load, 3, 8); c.get(P_ST); c.mem(OP.i64Load, 3, OFF_EXCL_PAIR); c.op(OP.i64Eq); c.op(OP.i32And); }
    c.tee(W_0);
    c.if();
    c.get(W_X); c.get(T3); c.mem(OP.i64Store, 3, 0);
    if (x) { c.get(W_X); c.get(T4); c.mem(OP.i64Store, 3, 8); }
    c.end();
    c.get(P_ST); c.i32(-1); c.mem(OP.i32Store, 2, OFF_EXCL); // the monitor opens
    c.get(W_0); c.op(OP.i32Eqz); this.setW(s);
    return 1;
  }
  private isLoad(kind: number): boolean { return kind !== 0 && kind !== 4 && kind !== 8 && kind !== 12 && kind !== 14; }

  /** Byte offset of half `h` (0 low, 1 high doubleword) of Vt in the state block. */
  private static vOff(t: number, h: number): number { return ST_V + 16 * t + 8 * h; }

  /**
   * Before the block's first FP/SIMD instruction: leave it (to the interpreter, which takes the trap) when
   * CPACR_EL1.FPEN traps at this EL (MASK_FP clear). Checked once per block at its top level.
   */
  private fpOk(): void {
    const c = this.c;
    if (this.fpChecked) return;
    c.get(P_MASKS); c.i32(MASK_FP); c.op(OP.i32And); c.op(OP.i32Eqz);
    c.if(); this.leave(this.k, 4 * this.k); c.end();
    if (c.depth === this.top) this.fpChecked = true;
  }
  private fpChecked = false;

  /**
   * Loads `size` bytes (1..16) at L_A into T0 (low doubleword) and T1 (high; zero below 16 bytes): both are
   * read before Vt is written, so a fault on the second half leaves Vt as it was.
   */
  private fpLoad(size: number): void {
    const c = this.c;
    if (size === 16) {
      this.load(8); c.set(T0);
      c.get(L_A); c.i64(8, 0); c.op(OP.i64Add); c.set(L_A);
      this.load(8); c.set(T1);
    } else { this.load(size); c.set(T0); c.i64(0, 0); c.set(T1); }
  }
  /** Writes T0/T1 to Vt. */
  private setV(t: number): void {
    const c = this.c;
    c.get(P_ST); c.get(T0); c.mem(OP.i64Store, 3, Translator.vOff(t, 0));
    c.get(P_ST); c.get(T1); c.mem(OP.i64Store, 3, Translator.vOff(t, 1));
  }
  /** Stores the low `size` bytes (1..16) of Vt at L_A. */
  private fpStore(size: number, t: number): void {
    const c = this.c;
    c.get(P_ST); c.mem(OP.i64Load, 3, Translator.vOff(t, 0)); c.set(T0);
    if (size === 16) { c.get(P_ST); c.mem(OP.i64Load, 3, Translator.vOff(t, 1)); c.set(T1); }
    this.store(size === 16 ? 8 : size, T0);
    if (size === 16) { c.get(L_A); c.i64(8, 0); c.op(OP.i64Add); c.set(L_A); this.store(8, T1); }
  }

  /** LDR/STR/LDP/STP of SIMD&FP registers (B, H, S, D, Q) in the addressing modes of the GP forms. */
  private fpLdst(w: number, name: string): number {
    const c = this.c;
    const t = w & 31, n = (w >>> 5) & 31, op = (w >>> 27) & 7;
    if (op === 1) return this.simdStruct(w, name);
    if (op === 7) {
      const kind = ((w >>> 28) & 0xc) | ((w >>> 22) & 3);
      if (kind !== 0 && kind !== 1 && kind !== 2 && kind !== 3 && kind !== 4 && kind !== 5 && kind !== 8 && kind !== 9 && kind !== 12 && kind !== 13) return 0;
      const size = kind === 2 || kind === 3 ? 16 : 1 << (kind >>> 2), load = (kind & 1) !== 0;
      const scale = size === 16 ? 4 : kind >>> 2;
      let mode = -1; // -1 no writeback, 1 post, 3 pre
      if ((w & 0x01000000) !== 0) {
        this.fpOk();
        this.xsp(n); c.i64(((w >>> 10) & 0xfff) << scale, 0); c.op(OP.i64Add); c.set(L_A);
      } else if ((w & 0x200000) !== 0) {
        if (((w >>> 10) & 3) !== 2) return 0;
        const opt = (w >>> 13) & 7, m = (w >>> 16) & 31;
        if ((opt & 2) === 0) return 0;
        this.fpOk();
        this.xsp(n);
        if (opt === 2) { this.wr(m); c.op(OP.i64ExtendI32u); }
        else if (opt === 6) { this.wr(m); c.op(OP.i64ExtendI32s); }
        else this.x(m);
        if ((w & 0x1000) !== 0 && scale !== 0) { c.i64(scale, 0); c.op(OP.i64Shl); }
        c.op(OP.i64Add); c.set(L_A);
      } else {
        const m9 = (w >>> 10) & 3, imm9 = (w << 11) >> 23;
        if (m9 === 2) return 0;
        this.fpOk();
        this.xsp(n); c.set(T5);
        c.get(T5); c.i64(imm9, imm9 >> 31); c.op(OP.i64Add); c.set(T4);
        c.get(m9 === 1 ? T5 : T4); c.set(L_A);
        if (m9 !== 0) mode = m9;
      }
      if (load) { this.fpLoad(size); this.setV(t); } else this.fpStore(size, t);
      if (mode !== -1) { c.get(T4); this.setXsp(n); }
      return 1;
    }
    if (op === 5) { // pairs: opc 101 1 mode L imm7 Rt2 Rn Rt; opc 00 S, 01 D, 10 Q
      const opc = w >>> 30, mode = (w >>> 23) & 3, load = (w >>> 22) & 1, t2 = (w >>> 10) & 31;
      if (opc === 3 || !name.includes("P")) return 0;
      const size = 4 << opc, off = ((w << 10) >> 25) * size;
      this.fpOk();
      this.xsp(n); c.set(T5);
      c.get(T5);
      if (mode !== 1) { c.i64(off, off >> 31); c.op(OP.i64Add); }
      c.set(L_A);
      if (load) {
        this.fpLoad(size); c.get(T0); c.set(T2); c.get(T1); c.set(T3);
        c.get(L_A); c.i64(size === 16 ? 8 : size, 0); c.op(OP.i64Add); c.set(L_A);
        this.fpLoad(size);
        // Vt from T2/T3, Vt2 from T0/T1 (Vt2 wins when t === t2, as the interpreter writes it second).
        c.get(P_ST); c.get(T2); c.mem(OP.i64Store, 3, Translator.vOff(t, 0));
        c.get(P_ST); c.get(T3); c.mem(OP.i64Store, 3, Translator.vOff(t, 1));
        this.setV(t2);
      } else {
        this.fpStore(size, t);
        c.get(L_A); c.i64(size === 16 ? 8 : size, 0); c.op(OP.i64Add); c.set(L_A);
        this.fpStore(size, t2);
      }
      if (mode === 1 || mode === 3) { c.get(T5); c.i64(off, off >> 31); c.op(OP.i64Add); this.setXsp(n); }
      return 1;
    }
    return 0;
  }

  private ldst(w: number, name: string): number {
    const c = this.c;
    this.memoReg = (w >>> 5) & 31; // the base register (literals: none, below)
    if ((w & 0x04000000) !== 0) return this.fpLdst(w, name); // SIMD&FP registers
    const t = w & 31, n = (w >>> 5) & 31;
    const op = (w >>> 27) & 7; // bits 29:27
    if (op === 7) { // single register: size 111 V 0x ...
      const kind = ((w >>> 28) & 0xc) | ((w >>> 22) & 3);
      if (kind === 11 || kind === 15) return 0;
      if ((w & 0x01000000) !== 0) { // unsigned offset
        this.xsp(n); c.i64(((w >>> 10) & 0xfff) << (w >>> 30), 0); c.op(OP.i64Add); c.set(L_A);
        this.access(kind, t);
        if (this.isLoad(kind)) { c.get(T3); this.setX(t); }
        return 1;
      }
      const imm9 = (w << 11) >> 23;
      if ((w & 0x200000) !== 0) { // register offset
        if (((w >>> 10) & 3) !== 2) return 0;
        const opt = (w >>> 13) & 7, m = (w >>> 16) & 31;
        if ((opt & 2) === 0) return 0;
        this.xsp(n);
        if (opt === 2) { this.wr(m); c.op(OP.i64ExtendI32u); }
        else if (opt === 6) { this.wr(m); c.op(OP.i64ExtendI32s); }
        else this.x(m);
        if ((w & 0x1000) !== 0 && (w >>> 30) !== 0) { c.i64(w >>> 30, 0); c.op(OP.i64Shl); }
        c.op(OP.i64Add); c.set(L_A);
        this.access(kind, t);
        if (this.isLoad(kind)) { c.get(T3); this.setX(t); }
        return 1;
      }
      const mode = (w >>> 10) & 3;
      if (mode === 2) return 0; // unprivileged
      if (mode !== 0 && kind === 14) return 0;
      if (mode === 0) { // unscaled
        this.xsp(n); c.i64(imm9, imm9 >> 31); c.op(OP.i64Add); c.set(L_A);
        this.access(kind, t);
        if (this.isLoad(kind)) { c.get(T3); this.setX(t); }
        return 1;
      }
      // post (01) / pre (11) index: the new base in T4; loads write Rt, then the base (the address wins).
      this.xsp(n); c.tee(L_A); c.i64(imm9, imm9 >> 31); c.op(OP.i64Add); c.set(T4);
      if (mode === 3) { c.get(T4); c.set(L_A); }
      this.access(kind, t);
      if (this.isLoad(kind)) { c.get(T3); this.setX(t); }
      c.get(T4); this.setXsp(n);
      return 1;
    }
    if (name === "LDAR" || name === "STLR") return this.ordered(w, name === "LDAR");
    if (name === "LDXR/LDAXR" || name === "STXR/STLXR") return this.exclusive(w, name === "LDXR/LDAXR");
    if (name === "LDXP/LDAXP" || name === "STXP/STLXP") return this.exclusivePair(w, name === "LDXP/LDAXP");
    if (op === 3 && ((w >>> 24) & 3) === 0) { // LDR (literal)
      const opc = w >>> 30;
      if (opc === 3) return 1; // PRFM (literal)
      const imm = ((w << 8) >> 13) << 2;
      this.memoReg = -1;
      this.pcPlus(4 * this.k + imm); c.set(L_A);
      this.load(opc === 1 ? 8 : 4);
      if (opc === 2) c.op(OP.i64Extend32s);
      this.setX(t);
      return 1;
    }
    if (op === 5) { // pairs: opc 101 V mode(3) L imm7 Rt2 Rn Rt
      const opc = w >>> 30, mode = (w >>> 23) & 3, load = (w >>> 22) & 1, t2 = (w >>> 10) & 31;
      if (opc === 3 || !name.includes("P")) return 0;
      if (opc === 1 && !load) return 0;
      const sz = opc === 2 ? 8 : 4, off = ((w << 10) >> 25) * sz;
      this.xsp(n); c.set(T5);
      c.get(T5);
      if (mode !== 1) { c.i64(off, off >> 31); c.op(OP.i64Add); }
      c.set(L_A);
      if (load) {
        this.load(sz); if (opc === 1) c.op(OP.i64Extend32s); c.set(T0);
        c.get(L_A); c.i64(sz, 0); c.op(OP.i64Add); c.set(L_A);
        this.load(sz); if (opc === 1) c.op(OP.i64Extend32s); c.set(T1);
        c.get(T0); this.setX(t); c.get(T1); this.setX(t2);
      } else {
        this.x(t); c.set(T0); this.x(t2); c.set(T1);
        this.store(sz, T0);
        c.get(L_A); c.i64(sz, 0); c.op(OP.i64Add); c.set(L_A);
        this.store(sz, T1);
      }
      if (mode === 1 || mode === 3) { c.get(T5); c.i64(off, off >> 31); c.op(OP.i64Add); this.setXsp(n); }
      return 1;
    }
    return 0;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Branches (end the block) and NOP

  private branch(w: number): number {
    const c = this.c, k4 = 4 * this.k;
    if ((w & ~31) === (0xd50b7420 | 0)) return this.dcZva(w & 31);
    if ((w & 0xfffff01f) === (0xd503201f | 0)) { // HINT: all but WFE, WFI, SEV, SEVL execute as NOP
      const op = (w >>> 5) & 0x7f;
      return op >= 2 && op <= 5 ? 0 : 1;
    }
    if ((w & 0xfffff09f) === (0xd503309f | 0)) { // DSB, DMB, ISB: nothing to resync here
      // Ordering: a full DSB/DMB is a host fence with vCPUs on other threads (system.ts barrier): atomic.fence.
      if (this.fences && (w & 0x300) === 0x300 && ((w >>> 5) & 6) === 4) { c.op(0xfe); c.u32(3); c.op(0); }
      return 1;
    }
    if ((w & 0x7c000000) === 0x14000000) { // B / BL
      if (w < 0) { this.pcPlus(k4 + 4); this.setX(30); }
      this.exitTo(k4 + ((w << 6) >> 6) * 4);
      return 2;
    }
    // Conditional branches leave the block when taken; not taken, the block goes on (a superblock), so code
    // with branches that are mostly not taken runs as one function.
    if ((w & 0xff000010) === 0x54000000) { // B.cond
      this.cond(w & 15);
      c.if(); this.exitTo(k4 + ((w << 8) >> 13) * 4); c.end();
      return 1;
    }
    if ((w & 0x7e000000) === 0x34000000) { // CBZ / CBNZ
      const t = w & 31;
      if (w < 0) { this.x(t); c.op(OP.i64Eqz); } else { this.wr(t); c.op(OP.i32Eqz); }
      if ((w & 0x1000000) !== 0) c.op(OP.i32Eqz);
      c.if(); this.exitTo(k4 + ((w << 8) >> 13) * 4); c.end();
      return 1;
    }
    if ((w & 0x7e000000) === 0x36000000) { // TBZ / TBNZ
      const t = w & 31, bit = ((w >>> 26) & 32) | ((w >>> 19) & 31);
      this.x(t); c.i64(bit, 0); c.op(OP.i64ShrU); c.i64(1, 0); c.op(OP.i64And); c.op(OP.i64Eqz);
      if ((w & 0x1000000) !== 0) c.op(OP.i32Eqz);
      c.if(); this.exitTo(k4 + ((w << 13) >> 18) * 4); c.end();
      return 1;
    }
    const opc = w & 0xfffffc1f;
    if (opc === (0xd61f0000 | 0) || opc === (0xd65f0000 | 0) || opc === (0xd63f0000 | 0)) { // BR / RET / BLR
      const n = (w >>> 5) & 31;
      this.x(n); c.set(T0);
      if (opc === (0xd63f0000 | 0)) { this.pcPlus(k4 + 4); this.setX(30); }
      this.writeBack();
      c.get(P_ST); c.get(T0); c.mem(OP.i64Store, 3, OFF_PC);
      this.retire(this.k + 1); c.op(OP.return);
      return 2;
    }
    return this.mrs(w);
  }

  /**
   * MRS of the registers kernel and libc code read all the time (SP_EL0 is Linux's `current`, TPIDR_EL1 its
   * per-CPU offset, TPIDR_EL0 the user thread pointer), and of CTR_EL0 and DCZID_EL0 at EL1 (cache maintenance
   * and clear_page loops read them for line and block sizes). Where the architecture would trap (SP_EL0 at EL0 or
   * while it is the stack pointer, TPIDR_EL1 at EL0), the block returns to the run loop at this instruction.
   */
  private mrs(w: number): number {
    const c = this.c, t = w & 31, enc = w & ~31;
    let off: number, need: number;
    if (enc === (0xd5384100 | 0)) { off = OFF_SP_EL0; need = MASK_SP_EL0; }
    else if (enc === (0xd538d080 | 0)) { off = OFF_TPIDR_EL1; need = MASK_EL1; }
    else if (enc === (0xd53bd040 | 0)) { off = OFF_TPIDR_EL0; need = 0; }
    else if (enc === (0xd53bd060 | 0)) { off = OFF_TPIDRRO_EL0; need = 0; }
    else if (enc === (0xd53b0020 | 0) || enc === (0xd53b00e0 | 0)) {
      // CTR_EL0 and DCZID_EL0 at EL1: constants (system.ts). At EL0 (SCTLR_EL1.UCT / DZE decide) the interpreter.
      c.get(P_MASKS); c.i32(MASK_EL1); c.op(OP.i32And); c.op(OP.i32Eqz);
      c.if(); this.leave(this.k, 4 * this.k); c.end();
      c.i64(enc === (0xd53b0020 | 0) ? CTR_EL0_VALUE : DCZID_EL0_VALUE, 0); this.setX(t);
      return 1;
    } else return 0;
    if (need !== 0) {
      c.get(P_MASKS); c.i32(need); c.op(OP.i32And); c.op(OP.i32Eqz);
      c.if(); this.leave(this.k, 4 * this.k); c.end();
    }
    c.get(P_ST); c.mem(OP.i64Load, 2, off); this.setX(t);
    return 1;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Advanced SIMD: the forms on V registers only are simd.ts's; here the ones that also touch X registers or
  // memory (through the register cache and the inline TLB).

  private readonly fpOkFn = (): void => this.fpOk();

  private simd(w: number, name: string): number {
    const c = this.c;
    if (name === "FP<->int") return this.fmovGeneral(w);
    if (vecOp(c, w, name, this.fpOkFn)) return 1;
    if (!HAS_SIMD) return 0;
    const q = (w >>> 30) & 1, imm5 = (w >>> 16) & 31, d = w & 31, n = (w >>> 5) & 31;
    const size = (imm5 & 1) ? 0 : (imm5 & 2) ? 1 : (imm5 & 4) ? 2 : (imm5 & 8) ? 3 : -1;
    if (size < 0) return 0;
    const idx = imm5 >>> (size + 1);
    switch (name) {
      case "DUP (general)": // every lane = Wn / Xn
        if (size === 3 && q === 0) return 0;
        this.fpOk(); c.get(P_ST);
        if (size === 3) this.x(n); else this.wr(n);
        c.simd(SPLAT[size]); put(c, d, q);
        return 1;
      case "INS (general)": // Vd[idx] = Wn / Xn, the rest kept
        this.fpOk(); c.get(P_ST); ld(c, d);
        if (size === 3) this.x(n); else this.wr(n);
        c.lane(REPLACE[size], idx); put(c, d, 1);
        return 1;
      case "UMOV": case "SMOV": {
        // UMOV: W for B/H/S (Q = 0), X for D (Q = 1). SMOV: W for B/H (Q = 0), X for B/H/S (Q = 1).
        const signed = name === "SMOV";
        if (signed ? size >= 2 + q : q === 1 ? size !== 3 : size >= 3) return 0;
        this.fpOk(); ld(c, n);
        if (size === 3) { c.lane(EXTRACT_U[3], idx); this.setX(d); return 1; }
        c.lane((signed ? EXTRACT_S : EXTRACT_U)[size], idx);
        if (q === 1) { c.op(OP.i64ExtendI32s); this.setX(d); } else this.setW(d);
        return 1;
      }
      default: return 0;
    }
  }

  /**
   * DC ZVA Xt at EL1 (clear_page and memset's loops): the 64-byte block holding Xt, zeroed in RAM with eight
   * doubleword stores when the TLB maps it writable (as a store's fast path: a code page, a dirty-logged page or
   * a miss has no write permission there), else through the wr import (size ZVA_BYTES), as the interpreter's
   * handler does (same faults, same code-page invalidation, which ends the block like a store that hit code).
   * Until 2026-12-07 every DC ZVA took the import: 95 % of a boot's slow-path writes (792 k of 830 k in the
   * first 600 M instructions). At EL0 (SCTLR_EL1.DZE decides) the block leaves for the interpreter.
   */
  private dcZva(t: number): number {
    const c = this.c;
    c.get(P_MASKS); c.i32(MASK_EL1); c.op(OP.i32And); c.op(OP.i32Eqz);
    c.if(); this.leave(this.k, 4 * this.k); c.end();
    // The block is in Xt's page whatever Xt's low bits; the slow path takes Xt itself (the FAR of a fault).
    this.x(t); c.set(L_A);
    this.slot();
    this.hit(1, W_MW);
    c.if();
    this.ramAddr(); c.i32(-ZVA_BYTES); c.op(OP.i32And); c.set(W_X);
    for (let k = 0; k < ZVA_BYTES; k += 8) { c.get(W_X); c.i64(0, 0); c.mem(OP.i64Store, 3, k); }
    c.else();
    c.get(W_LO); c.get(W_HI); c.i32(ZVA_BYTES); c.i32(0); c.i32(0);
    c.call(IMPORT_WR); c.get(W_CW); c.op(OP.i32Or); c.set(W_CW);
    this.afterSlow();
    c.end();
    this.stored = true;
    return 1;
  }

  /**
   * FMOV (general), the bit-exact moves between general and SIMD&FP registers: Wd ← Sn, Sd ← Wn, Xd ← Dn,
   * Dd ← Xn, Xd ← Vn.D[1], Vd.D[1] ← Xn. Writing Sd or Dd clears the rest of Vd; writing Vd.D[1] keeps D[0]. The
   * converting forms of the group stay interpreted.
   */
  private fmovGeneral(w: number): number {
    const c = this.c;
    const sf = w >>> 31, type = (w >>> 22) & 3, rmode = (w >>> 19) & 3, opcode = (w >>> 16) & 7;
    const d = w & 31, n = (w >>> 5) & 31;
    if (opcode !== 6 && opcode !== 7) return 0;
    // half: -1 the low word (S), 0 the low doubleword (D), 1 the high doubleword (V.D[1]).
    const half = sf === 0 && type === 0 && rmode === 0 ? -1 : sf === 1 && type === 1 && rmode === 0 ? 0
      : sf === 1 && type === 2 && rmode === 1 ? 1 : -2;
    if (half === -2) return 0;
    this.fpOk();
    if (opcode === 6) { // to a general register
      c.get(P_ST);
      if (half < 0) { c.mem(OP.i32Load, 2, Translator.vOff(n, 0)); this.setW(d); } else { c.mem(OP.i64Load, 3, Translator.vOff(n, half)); this.setX(d); }
      return 1;
    }
    c.get(P_ST);
    if (half < 0) { this.wr(n); c.op(OP.i64ExtendI32u); } else this.x(n);
    c.mem(OP.i64Store, 3, Translator.vOff(d, half < 0 ? 0 : half));
    if (half <= 0) { c.get(P_ST); c.i64(0, 0); c.mem(OP.i64Store, 3, Translator.vOff(d, 1)); }
    return 1;
  }

  /**
   * LD1/ST1 of one to four registers (multiple structures), and LD1/ST1 of one lane and LD1R (single structure),
   * with and without post-index; LD2..LD4/ST2..ST4 stay interpreted. As simd-ldst.ts: loads read all of memory
   * before writing any register (a fault leaves them as they were); stores go doubleword by doubleword (or
   * element) in address order, so a fault leaves the same bytes written.
   */
  private simdStruct(w: number, name: string): number {
    if (!HAS_SIMD) return 0;
    const c = this.c;
    const q = (w >>> 30) & 1, load = (w & 0x400000) !== 0, post = (w & 0x800000) !== 0;
    const t = w & 31, n = (w >>> 5) & 31, m = (w >>> 16) & 31, size = (w >>> 10) & 3;
    let total: number;
    if (name.startsWith("LD1-4/ST1-4 (multiple structures")) {
      const opcode = (w >>> 12) & 15;
      const rpt = opcode === 7 ? 1 : opcode === 10 ? 2 : opcode === 6 ? 3 : opcode === 2 ? 4 : 0;
      if (rpt === 0) return 0;
      const dw = (1 + q) * rpt; // doublewords, at most 8 (T0..T7)
      total = 8 * dw;
      this.fpOk();
      this.xsp(n); c.set(L_A);
      for (let k = 0; k < dw; k++) {
        if (k !== 0) { c.get(L_A); c.i64(8, 0); c.op(OP.i64Add); c.set(L_A); }
        const r = (t + ((k / (1 + q)) | 0)) & 31, h = q ? k & 1 : 0;
        if (load) { this.load(8); c.set(T0 + k); }
        else { c.get(P_ST); c.mem(OP.i64Load, 3, Translator.vOff(r, h)); c.set(T0); this.store(8, T0); }
      }
      if (load) {
        for (let b = 0; b < rpt; b++) {
          const r = (t + b) & 31;
          c.get(P_ST); c.get(T0 + (1 + q) * b); c.mem(OP.i64Store, 3, Translator.vOff(r, 0));
          c.get(P_ST); if (q) c.get(T0 + 2 * b + 1); else c.i64(0, 0); c.mem(OP.i64Store, 3, Translator.vOff(r, 1));
        }
      }
    } else if (name.startsWith("LD1-4/ST1-4 (single structure")) {
      const opcode = (w >>> 13) & 7, s = (w >>> 12) & 1;
      if ((opcode & 1) !== 0 || (w & 0x200000) !== 0) return 0; // two to four elements
      // Lane index from Q:S:size, as simd-ldst.ts ldstSingle (Arm ARM C7.2 "LD1 (single structure)").
      let scale = opcode >> 1, index = 0, replicate = false;
      switch (scale) {
        case 0: index = (q << 3) | (s << 2) | size; break;
        case 1: if ((size & 1) !== 0) return 0; index = (q << 2) | (s << 1) | (size >> 1); break;
        case 2:
          if ((size & 2) !== 0) return 0;
          if ((size & 1) === 0) index = (q << 1) | s;
          else { if (s !== 0) return 0; index = q; scale = 3; }
          break;
        default:
          if (!load || s !== 0) return 0;
          scale = size; replicate = true;
          break;
      }
      const eb = 1 << scale, at = Translator.vOff(t, 0) + index * eb;
      total = eb;
      this.fpOk();
      this.xsp(n); c.set(L_A);
      if (load) {
        this.load(eb); c.set(T0);
        c.get(P_ST); c.get(T0);
        if (replicate) { if (scale < 3) c.op(OP.i32WrapI64); c.simd(SPLAT[scale]); put(c, t, q); }
        else c.mem(scale === 0 ? OP.i64Store8 : scale === 1 ? OP.i64Store16 : scale === 2 ? OP.i64Store32 : OP.i64Store, scale, at);
      } else {
        c.get(P_ST);
        c.mem(scale === 0 ? OP.i64Load8u : scale === 1 ? OP.i64Load16u : scale === 2 ? OP.i64Load32u : OP.i64Load, scale, at);
        c.set(T0);
        this.store(eb, T0);
      }
    } else return 0;
    // Post-index: Xn|SP += Xm, or the bytes transferred when Rm = 31.
    if (post) { this.xsp(n); if (m === 31) c.i64(total, 0); else this.x(m); c.op(OP.i64Add); this.setXsp(n); }
    return 1;
  }
}

/**
 * The dispatcher's body (engine.ts): with the block signature, it loops — stop or budget reached: return; PC
 * through the TLB with execute permission (mask bits 31:24), else return; mark the RAM page entered ("ran");
 * the entry map at jitAt keyed by the instruction's RAM offset, else return; call the block through table 0;
 * a block that made no progress (it bailed) ends the loop.
 */
export function dispatcherBody(jitAt: number): FuncBody {
  const c = new Code();
  const LO = 6, HI = 7, X = 8, E = 9, PA = 10, H = 11, ND = 12, MRAM = 13, PC = 14, MPG = 15;
  const bail = (): void => { c.if(); c.get(P_DONE); c.op(OP.return); c.end(); };
  const mapAt = jitAt, ranAt = jitAt + (1 << 19);
  // The page of the last PC the TLB translated (MPG; -1: none) and its RAM offset (MRAM), for this call (the
  // same argument as the blocks' page memos, translate.ts `memo`): a dispatch on that page skips the TLB, and its
  // "ran" byte is set already.
  c.i64(-1, -1); c.set(MPG);
  c.op(OP.loop); c.byte(0x40);
  c.get(P_DONE); c.get(P_BUDGET); c.op(OP.i32GeS); c.get(P_ST); c.mem(OP.i32Load, 2, OFF_STOP); c.op(OP.i32Or); bail();
  c.get(P_ST); c.mem(OP.i64Load, 3, OFF_PC); c.tee(PC); c.op(OP.i32WrapI64); c.set(LO);
  c.get(LO); c.i32(3); c.op(OP.i32And); bail();
  c.get(PC); c.i64(-4096, -1); c.op(OP.i64And); c.get(MPG); c.op(OP.i64Eq);
  c.if();
  c.get(MRAM); c.get(LO); c.i32(0xfff); c.op(OP.i32And); c.op(OP.i32Add); c.set(PA);
  c.else();
  c.get(PC); c.i64(32, 0); c.op(OP.i64ShrU); c.op(OP.i32WrapI64); c.set(HI);
  c.get(LO); c.i32(12); c.op(OP.i32ShrU); c.get(HI); c.i32(2); c.op(OP.i32ShrU); c.op(OP.i32Xor);
  c.i32(TLB_SLOT_MASK); c.op(OP.i32And); c.set(X);
  c.get(P_TLB); c.get(X); c.i32(2); c.op(OP.i32Shl); c.op(OP.i32Add); c.set(E);
  c.get(E); c.mem(OP.i32Load, 2, TLB_TAG_LO); c.get(LO); c.i32(-4096); c.op(OP.i32And); c.op(OP.i32Eq);
  c.get(E); c.mem(OP.i32Load, 2, TLB_TAG_HI); c.get(HI); c.op(OP.i32Eq); c.op(OP.i32And);
  c.get(P_TLB); c.get(X); c.op(OP.i32Add); c.mem(OP.i32Load8u, 0, TLB_PERM); c.get(P_MASKS); c.i32(24); c.op(OP.i32ShrU);
  c.op(OP.i32And); c.i32(0); c.op(OP.i32Ne); c.op(OP.i32And);
  c.get(E); c.mem(OP.i32Load, 2, TLB_ASID); c.tee(H); c.get(P_ASID); c.op(OP.i32Eq); c.get(H); c.i32(-1); c.op(OP.i32Eq);
  c.op(OP.i32Or); c.op(OP.i32And);
  c.op(OP.i32Eqz); bail();
  c.get(E); c.mem(OP.i32Load, 2, TLB_OFF); c.tee(MRAM); c.get(LO); c.i32(0xfff); c.op(OP.i32And); c.op(OP.i32Add); c.set(PA);
  c.get(PC); c.i64(-4096, -1); c.op(OP.i64And); c.set(MPG);
  c.get(PA); c.i32(12); c.op(OP.i32ShrU); c.i32(1); c.mem(OP.i32Store8, 0, ranAt);
  c.end();
  c.get(PA); c.i32(2); c.op(OP.i32ShrU); c.i32(0xffff); c.op(OP.i32And); c.i32(3); c.op(OP.i32Shl); c.set(H);
  c.get(H); c.mem(OP.i32Load, 2, mapAt); c.get(PA); c.i32(1); c.op(OP.i32Add); c.op(OP.i32Ne); bail();
  c.get(P_ST); c.get(P_TLB); c.get(P_ASID); c.get(P_MASKS); c.get(P_DONE); c.get(P_BUDGET);
  c.get(H); c.mem(OP.i32Load, 2, mapAt + 4);
  c.callIndirect(0, 0);
  c.tee(ND); c.get(P_DONE); c.op(OP.i32Eq); bail();
  c.get(ND); c.set(P_DONE);
  c.br(0);
  c.end();
  c.get(P_DONE);
  c.end();
  return { type: 0, locals: [[8, I32], [2, I64]], code: c.buf.slice(0, c.len) };
}
