/**
 * Random A64 instruction-sequence generator for the qemu-vs-xeno oracle test (random.test.ts).
 *
 * A sequence is a list of *units*; a unit is one instruction, or a few that only make sense together (a base
 * copy + a pre-indexed load; a conditional branch + the instruction it skips + its label; a divisor set-up + a
 * divide). Units keep the sequence valid when the failure reducer runs them one at a time.
 *
 * Register conventions shared with the harness (random/harness.ts):
 *   x0..x27  random inputs, free for generated code (31 encodes XZR, or SP where the encoding says so — SP is
 *            only ever *read*, it holds the harness's output-record pointer, identical under both emulators);
 *   x28      base of the scratch window (512 bytes, x28 points at its middle): never written by generated code,
 *            loads/stores stay inside [x28 - 256, x28 + 256);
 *   x29, x30 harness (input-record pointer, link register): never touched;
 *   v0..v7   random FP/vector inputs; FP and SIMD ops use only these.
 * Everything is ARMv8.0-A (the assembler runs with `.arch armv8-a`).
 */

/** Deterministic PRNG (sfc32: small, fast, good enough for test generation), seeded with a 32-bit number. */
export class Rng {
  private a: number; private b: number; private c: number; private d: number;
  constructor(seed: number) {
    this.a = 0x9e3779b9; this.b = 0x243f6a88; this.c = 0xb7e15162; this.d = seed >>> 0;
    for (let i = 0; i < 16; i++) this.u32();
  }
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  /** Integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number { return lo + Math.floor((this.u32() / 4294967296) * (hi - lo + 1)); }
  bool(p = 0.5): boolean { return this.u32() / 4294967296 < p; }
  pick<T>(xs: readonly T[]): T { return xs[this.int(0, xs.length - 1)]!; }
  u64(): bigint { return (BigInt(this.u32()) << 32n) | BigInt(this.u32()); }
  /** Pick by weight: entries are [weight, value]. */
  weighted<T>(xs: readonly (readonly [number, T])[]): T {
    let total = 0;
    for (const [w] of xs) total += w;
    let r = (this.u32() / 4294967296) * total;
    for (const [w, v] of xs) { if ((r -= w) < 0) return v; }
    return xs[xs.length - 1]![1];
  }
}

export interface Unit {
  /** Assembly lines (GNU as syntax). Labels are numeric local labels (`1:` / `1f`). */
  lines: string[];
  /** Touches the scratch window (the harness resets and dumps it for such sequences). */
  mem: boolean;
}

export interface Sequence {
  index: number;
  units: Unit[];
  /** Inputs x0..x27 (unsigned 64-bit). */
  x: bigint[];
  /** Input NZCV in bits 31:28. */
  nzcv: number;
  /** Inputs v0..v7, two unsigned 64-bit halves each: [v0.lo, v0.hi, v1.lo, ...]. */
  v: bigint[];
  mem: boolean;
}

export const NUM_X_INPUTS = 28;
export const NUM_V = 8;
/** Scratch window: x28 points at its middle; accesses stay in [-WINDOW_HALF, WINDOW_HALF). */
export const WINDOW_HALF = 256;

const M64 = (1n << 64n) - 1n;

// ---------------------------------------------------------------------------------------------------- inputs

const INT_SPECIAL: readonly bigint[] = [
  0n, 1n, 2n, M64, M64 - 1n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0xfffffffen, 0x100000000n,
  0x8000000000000000n, 0x7fffffffffffffffn, 0xffffffff80000000n, 0xffffffff7fffffffn, 0x00000000ffff0000n,
  0x5555555555555555n, 0xaaaaaaaaaaaaaaaan, 0x8000000000000001n, 0x0000000100000001n,
];

export function randomInt64(r: Rng): bigint {
  switch (r.int(0, 9)) {
    case 0: case 1: return r.pick(INT_SPECIAL);
    case 2: return BigInt(r.int(0, 64));
    case 3: return (M64 + 1n - BigInt(r.int(1, 64))) & M64; // small negative
    case 4: return 1n << BigInt(r.int(0, 63));
    case 5: return BigInt(r.u32()); // 32-bit, zero-extended
    case 6: { const v = r.u32(); return BigInt.asUintN(64, BigInt(v | 0)); } // 32-bit, sign-extended
    default: return r.u64();
  }
}

const F64_SPECIAL: readonly bigint[] = [
  0x0000000000000000n, 0x8000000000000000n, // ±0
  0x7ff0000000000000n, 0xfff0000000000000n, // ±inf
  0x7ff8000000000000n, 0xfff8000000000000n, // default-ish qNaNs
  0x7ff80000deadbeefn, 0x7ff0000000000001n, 0xfff4000000000123n, // qNaN with payload, sNaNs
  0x0000000000000001n, 0x800fffffffffffffn, 0x0008000000000000n, // denormals
  0x0010000000000000n, 0x7fefffffffffffffn, // min normal, max
  0x3ff0000000000000n, 0xbff0000000000000n, 0x3fe0000000000000n, // 1, -1, 0.5
  0x4004000000000000n, 0xc004000000000000n, 0x3ff8000000000000n, // 2.5, -2.5, 1.5
  0x43e0000000000000n, 0xc3e0000000000000n, 0x41e0000000000000n, 0x43f0000000000000n, // 2^63, -2^63, 2^31, 2^64
  0xc1e0000000000000n, 0x41dfffffffc00000n, 0x3fb999999999999an, // -2^31, 2^31-1, 0.1
];
const F32_SPECIAL: readonly number[] = [
  0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7fc0beef, 0x7f800001, 0xffa00001,
  0x00000001, 0x807fffff, 0x00400000, 0x00800000, 0x7f7fffff, 0x3f800000, 0xbf800000, 0x3f000000,
  0x40200000, 0xc0200000, 0x3fc00000, 0x5f000000, 0xdf000000, 0x4f000000, 0x5f800000, 0xcf000000, 0x3dcccccd,
];

function f64bits(x: number): bigint {
  const b = new DataView(new ArrayBuffer(8));
  b.setFloat64(0, x);
  return b.getBigUint64(0);
}
function f32bits(x: number): number {
  const b = new DataView(new ArrayBuffer(4));
  b.setFloat32(0, x);
  return b.getUint32(0);
}

function randomF64(r: Rng): bigint {
  switch (r.int(0, 5)) {
    case 0: case 1: return r.pick(F64_SPECIAL);
    case 2: return f64bits(r.int(-100000, 100000)); // integers
    case 3: return f64bits(r.int(-1000, 1000) / 8); // halves/quarters: rounding ties
    case 4: return f64bits((r.u32() / 4294967296 - 0.5) * 2 ** r.int(-60, 70));
    default: return r.u64();
  }
}
function randomF32(r: Rng): number {
  switch (r.int(0, 5)) {
    case 0: case 1: return r.pick(F32_SPECIAL);
    case 2: return f32bits(r.int(-100000, 100000));
    case 3: return f32bits(r.int(-1000, 1000) / 8);
    case 4: return f32bits((r.u32() / 4294967296 - 0.5) * 2 ** r.int(-30, 40));
    default: return r.u32();
  }
}
/** One 64-bit half of a V register: a double, two floats, or raw bits. */
function randomVHalf(r: Rng): bigint {
  switch (r.int(0, 3)) {
    case 0: case 1: return randomF64(r);
    case 2: return (BigInt(randomF32(r)) << 32n) | BigInt(randomF32(r));
    default: return r.bool(0.3) ? BigInt(r.pick(F32_SPECIAL)) : r.u64(); // low float special, rest zero
  }
}

// ------------------------------------------------------------------------------------------------- registers

const X = (n: number) => (n === 31 ? "xzr" : `x${n}`);
const W = (n: number) => (n === 31 ? "wzr" : `w${n}`);
const R = (sf: boolean, n: number) => (sf ? X(n) : W(n));
/** Register operand where encoding 31 is SP (only ever read). */
const RSP = (sf: boolean, n: number) => (n === 31 ? (sf ? "sp" : "wsp") : R(sf, n));

/** A general register 0..27 (never x28..x30). */
const gr = (r: Rng) => r.int(0, 27);
/** Registers written earlier in the current sequence: sources prefer them, so results feed later instructions. */
const recent: number[] = [];
const written = (n: number) => { if (n !== 31) recent.push(n); return n; };
/** A destination 0..27. */
const dreg = (r: Rng) => written(gr(r));
/** A source register: mostly 0..27, sometimes 31 (XZR). */
const src = (r: Rng) => (r.bool(0.04) ? 31 : recent.length && r.bool(0.35) ? r.pick(recent) : gr(r));
/** A destination register: mostly 0..27, rarely 31 (result discarded). */
const dst = (r: Rng) => (r.bool(0.02) ? 31 : dreg(r));

const CONDS = ["eq", "ne", "cs", "cc", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al", "nv"];
/** Conditions valid in every alias (CSET/CINC/... forbid AL and NV). */
const cond14 = (r: Rng) => CONDS[r.int(0, 13)]!;
const cond16 = (r: Rng) => CONDS[r.int(0, 15)]!;

const hex = (v: bigint | number) => "0x" + v.toString(16);
const one = (line: string): Unit => ({ lines: [line], mem: false });

// ------------------------------------------------------------------------------------------- logical immediates

/** A valid A64 bitmask immediate for a `size`-bit operation (Arm ARM DecodeBitMasks): a rotated run of ones,
 *  replicated in elements of 2..size bits, never all-ones. */
export function randomBitmask(r: Rng, size: 32 | 64): bigint {
  const sizes = size === 64 ? [2, 4, 8, 16, 32, 64] : [2, 4, 8, 16, 32];
  const e = r.pick(sizes);
  const ones = r.int(1, e - 1);
  const rot = r.int(0, e - 1);
  const emask = (1n << BigInt(e)) - 1n;
  let elem = (1n << BigInt(ones)) - 1n;
  elem = ((elem >> BigInt(rot)) | (elem << BigInt(e - rot))) & emask;
  let v = 0n;
  for (let i = 0; i < size; i += e) v |= elem << BigInt(i);
  return v;
}

// --------------------------------------------------------------------------------------- integer generators

type Gen = (r: Rng) => Unit;

const addSubImm: Gen = (r) => {
  const sf = r.bool(0.6), op = r.pick(["add", "adds", "sub", "subs"]);
  const setsFlags = op.endsWith("s");
  const d = setsFlags ? dst(r) : dreg(r); // Rd 31 is SP for ADD/SUB (imm): never write SP
  const n = r.bool(0.05) ? 31 : gr(r); // Rn 31 reads SP
  const imm = r.bool(0.3) ? r.int(0, 8) : r.int(0, 4095);
  const sh = r.bool(0.25) ? ", lsl #12" : "";
  return one(`${op} ${setsFlags ? R(sf, d) : RSP(sf, d)}, ${RSP(sf, n)}, #${imm}${sh}`);
};

const addSubShifted: Gen = (r) => {
  const sf = r.bool(0.6), op = r.pick(["add", "adds", "sub", "subs"]);
  const sh = r.pick(["lsl", "lsr", "asr"]), amt = r.int(0, sf ? 63 : 31);
  const tail = r.bool(0.3) ? "" : `, ${sh} #${amt}`;
  return one(`${op} ${R(sf, dst(r))}, ${R(sf, src(r))}, ${R(sf, src(r))}${tail}`);
};

const addSubExt: Gen = (r) => {
  const sf = r.bool(0.6), op = r.pick(["add", "adds", "sub", "subs"]);
  const setsFlags = op.endsWith("s");
  const d = setsFlags ? dst(r) : dreg(r);
  const n = r.bool(0.08) ? 31 : gr(r);
  const ext = sf ? r.pick(["uxtb", "uxth", "uxtw", "uxtx", "sxtb", "sxth", "sxtw", "sxtx"])
    : r.pick(["uxtb", "uxth", "uxtw", "sxtb", "sxth", "sxtw"]);
  const mIsX = sf && ext.endsWith("x");
  const amt = r.int(0, 4);
  return one(`${op} ${setsFlags ? R(sf, d) : RSP(sf, d)}, ${RSP(sf, n)}, ${R(mIsX, src(r))}, ${ext} #${amt}`);
};

const adcSbc: Gen = (r) => {
  const sf = r.bool(0.6), op = r.pick(["adc", "adcs", "sbc", "sbcs", "ngc", "ngcs"]);
  if (op.startsWith("ngc")) return one(`${op} ${R(sf, dst(r))}, ${R(sf, src(r))}`);
  return one(`${op} ${R(sf, dst(r))}, ${R(sf, src(r))}, ${R(sf, src(r))}`);
};

const logicalShifted: Gen = (r) => {
  const sf = r.bool(0.6), op = r.pick(["and", "orr", "eor", "bic", "orn", "eon", "ands", "bics"]);
  const sh = r.pick(["lsl", "lsr", "asr", "ror"]), amt = r.int(0, sf ? 63 : 31);
  const tail = r.bool(0.3) ? "" : `, ${sh} #${amt}`;
  return one(`${op} ${R(sf, dst(r))}, ${R(sf, src(r))}, ${R(sf, src(r))}${tail}`);
};

const logicalImm: Gen = (r) => {
  const sf = r.bool(0.6), op = r.pick(["and", "orr", "eor", "ands"]);
  const d = op === "ands" ? dst(r) : dreg(r); // Rd 31 is SP for AND/ORR/EOR (imm)
  return one(`${op} ${R(sf, d)}, ${R(sf, src(r))}, #${hex(randomBitmask(r, sf ? 64 : 32))}`);
};

const moveWide: Gen = (r) => {
  const sf = r.bool(0.6), op = r.pick(["movz", "movn", "movk"]);
  const hw = r.int(0, sf ? 3 : 1);
  const imm = r.bool(0.2) ? r.pick([0, 1, 0xffff, 0x8000, 0x7fff]) : r.int(0, 0xffff);
  return one(`${op} ${R(sf, dst(r))}, #${hex(imm)}, lsl #${hw * 16}`);
};

const bitfield: Gen = (r) => {
  const sf = r.bool(0.6), size = sf ? 64 : 32;
  const d = R(sf, dst(r)), n = R(sf, src(r));
  const kind = r.int(0, 10);
  if (kind <= 5) {
    const op = r.pick(["sbfx", "ubfx", "bfxil", "bfi", "sbfiz", "ubfiz"]);
    const lsb = r.int(0, size - 1), width = r.int(1, size - lsb);
    return one(`${op} ${d}, ${n}, #${lsb}, #${width}`);
  }
  if (kind <= 7) return one(`${r.pick(["lsl", "lsr", "asr", "ror"])} ${d}, ${n}, #${r.int(0, size - 1)}`);
  if (kind === 8) {
    // Sign/zero-extension aliases of SBFM/UBFM.
    const op = r.pick(["sxtb", "sxth", "sxtw", "uxtb", "uxth"]);
    if (op === "sxtw") return one(`sxtw ${X(dst(r))}, ${W(src(r))}`);
    if (op.startsWith("u")) return one(`${op} ${W(dst(r))}, ${W(src(r))}`);
    return one(`${op} ${d}, ${W(src(r))}`);
  }
  // Raw forms with arbitrary immr/imms (covers imms < immr, the "insert" shapes).
  return one(`${r.pick(["sbfm", "ubfm", "bfm"])} ${d}, ${n}, #${r.int(0, size - 1)}, #${r.int(0, size - 1)}`);
};

const extr: Gen = (r) => {
  const sf = r.bool(0.6);
  return one(`extr ${R(sf, dst(r))}, ${R(sf, src(r))}, ${R(sf, src(r))}, #${r.int(0, sf ? 63 : 31)}`);
};

const condSel: Gen = (r) => {
  const sf = r.bool(0.6);
  switch (r.int(0, 3)) {
    case 0: case 1:
      return one(`${r.pick(["csel", "csinc", "csinv", "csneg"])} ${R(sf, dst(r))}, ${R(sf, src(r))}, ${R(sf, src(r))}, ${cond16(r)}`);
    case 2: return one(`${r.pick(["cset", "csetm"])} ${R(sf, dst(r))}, ${cond14(r)}`);
    default: return one(`${r.pick(["cinc", "cinv", "cneg"])} ${R(sf, dst(r))}, ${R(sf, src(r))}, ${cond14(r)}`);
  }
};

const condCmp: Gen = (r) => {
  const sf = r.bool(0.6), op = r.pick(["ccmp", "ccmn"]);
  const rhs = r.bool() ? R(sf, src(r)) : `#${r.int(0, 31)}`;
  return one(`${op} ${R(sf, src(r))}, ${rhs}, #${r.int(0, 15)}, ${cond16(r)}`);
};

const multiply: Gen = (r) => {
  const sf = r.bool(0.6);
  switch (r.int(0, 5)) {
    case 0: case 1:
      return one(`${r.pick(["madd", "msub"])} ${R(sf, dst(r))}, ${R(sf, src(r))}, ${R(sf, src(r))}, ${R(sf, src(r))}`);
    case 2:
      return one(`${r.pick(["smaddl", "umaddl", "smsubl", "umsubl"])} ${X(dst(r))}, ${W(src(r))}, ${W(src(r))}, ${X(src(r))}`);
    case 3: return one(`${r.pick(["smulh", "umulh"])} ${X(dst(r))}, ${X(src(r))}, ${X(src(r))}`);
    case 4: return one(`${r.pick(["mul", "mneg"])} ${R(sf, dst(r))}, ${R(sf, src(r))}, ${R(sf, src(r))}`);
    default: return one(`${r.pick(["smull", "umull", "smnegl", "umnegl"])} ${X(dst(r))}, ${W(src(r))}, ${W(src(r))}`);
  }
};

const divide: Gen = (r) => {
  const sf = r.bool(0.6), op = r.pick(["udiv", "sdiv"]);
  const d = dst(r), n = src(r), m = src(r);
  const lines: string[] = [];
  // Often force the interesting divisors: 0, and -1 with a dividend of INT_MIN.
  const special = r.int(0, 3);
  if (special === 0 && m !== 31) lines.push(`movz ${R(sf, m)}, #0`);
  if (special === 1 && m !== 31 && n !== 31 && m !== n) {
    lines.push(`movn ${R(sf, m)}, #0`);
    lines.push(sf ? `movz ${X(n)}, #0x8000, lsl #48` : `movz ${W(n)}, #0x8000, lsl #16`);
  }
  lines.push(`${op} ${R(sf, d)}, ${R(sf, n)}, ${R(sf, m)}`);
  return { lines, mem: false };
};

const shiftVar: Gen = (r) => {
  const sf = r.bool(0.6);
  return one(`${r.pick(["lslv", "lsrv", "asrv", "rorv"])} ${R(sf, dst(r))}, ${R(sf, src(r))}, ${R(sf, src(r))}`);
};

const dataProc1: Gen = (r) => {
  const sf = r.bool(0.6);
  const op = sf ? r.pick(["clz", "cls", "rbit", "rev", "rev16", "rev32"]) : r.pick(["clz", "cls", "rbit", "rev", "rev16"]);
  return one(`${op} ${R(sf, dst(r))}, ${R(sf, src(r))}`);
};

const adr: Gen = (r) => {
  if (r.bool(0.7)) return one(`adr ${X(dst(r))}, . + ${r.int(-4096, 4096)}`);
  return one(`adrp ${X(dst(r))}, . + ${r.int(-64, 64) * 4096}`);
};

/** Integer generators that produce exactly one instruction (usable as the skipped instruction of a branch). */
const SINGLE_INT: readonly (readonly [number, Gen])[] = [
  [3, addSubImm], [3, addSubShifted], [2, addSubExt], [1, adcSbc], [3, logicalShifted], [2, logicalImm],
  [2, moveWide], [2, bitfield], [1, extr], [2, condSel], [1, condCmp], [2, multiply], [1, shiftVar],
  [1, dataProc1],
];

const INT_GENS: readonly (readonly [number, Gen])[] = [...SINGLE_INT, [1.5, divide], [0.5, adr]];

// ------------------------------------------------------------------------------------------------- branches

const branch: Gen = (r) => {
  const skipped = r.weighted(SINGLE_INT)(r).lines[0]!;
  const sf = r.bool(0.6);
  let br: string;
  switch (r.int(0, 5)) {
    case 0: case 1: br = `b.${cond16(r)} 1f`; break;
    case 2: br = `${r.pick(["cbz", "cbnz"])} ${R(sf, src(r))}, 1f`; break;
    case 3: case 4: br = `${r.pick(["tbz", "tbnz"])} ${R(sf, src(r))}, #${r.int(0, sf ? 63 : 31)}, 1f`; break;
    default: br = "b 1f";
  }
  return { lines: [br, skipped, "1:"], mem: false };
};

// ---------------------------------------------------------------------------------------------- loads/stores

interface LsOp { op: string; size: number; reg: (n: number) => string; load: boolean }
const LS_OPS: readonly LsOp[] = [
  { op: "ldr", size: 8, reg: X, load: true }, { op: "ldr", size: 4, reg: W, load: true },
  { op: "ldrb", size: 1, reg: W, load: true }, { op: "ldrsb", size: 1, reg: W, load: true },
  { op: "ldrsb", size: 1, reg: X, load: true }, { op: "ldrh", size: 2, reg: W, load: true },
  { op: "ldrsh", size: 2, reg: W, load: true }, { op: "ldrsh", size: 2, reg: X, load: true },
  { op: "ldrsw", size: 4, reg: X, load: true },
  { op: "str", size: 8, reg: X, load: false }, { op: "str", size: 4, reg: W, load: false },
  { op: "strb", size: 1, reg: W, load: false }, { op: "strh", size: 2, reg: W, load: false },
];
const FP_LS_OPS: readonly LsOp[] = [
  { op: "ldr", size: 8, reg: (n) => `d${n}`, load: true }, { op: "ldr", size: 4, reg: (n) => `s${n}`, load: true },
  { op: "ldr", size: 16, reg: (n) => `q${n}`, load: true }, { op: "ldr", size: 2, reg: (n) => `h${n}`, load: true },
  { op: "ldr", size: 1, reg: (n) => `b${n}`, load: true },
  { op: "str", size: 8, reg: (n) => `d${n}`, load: false }, { op: "str", size: 4, reg: (n) => `s${n}`, load: false },
  { op: "str", size: 16, reg: (n) => `q${n}`, load: false },
];
/** LDUR/STUR spelling of an LDR/STR op. */
const unscaled = (op: string) => (op.startsWith("ldr") ? "ldur" + op.slice(3) : "stur" + op.slice(3));

/** Random offset in [lo, hi] that is a multiple of `align`. */
const aligned = (r: Rng, lo: number, hi: number, align: number) =>
  align * r.int(Math.ceil(lo / align), Math.floor(hi / align));

/** Copy of the base in a fresh register, displaced by k (returns the set-up line). */
function baseCopy(r: Rng, c: number, k: number): string {
  return k >= 0 ? `add x${c}, x28, #${k}` : `sub x${c}, x28, #${-k}`;
}

const loadStore: Gen = (r) => {
  const fp = r.bool(0.15);
  const o = r.pick(fp ? FP_LS_OPS : LS_OPS);
  const t = fp ? r.int(0, NUM_V - 1) : (o.load ? dst(r) : src(r));
  const rt = o.reg(t);
  const H = WINDOW_HALF, s = o.size;
  switch (r.int(0, 5)) {
    case 0: case 1: // unsigned scaled offset from x28
      return { lines: [`${o.op} ${rt}, [x28, #${aligned(r, 0, H - s, s)}]`], mem: true };
    case 2: // unscaled, possibly negative / misaligned
      return { lines: [`${unscaled(o.op)} ${rt}, [x28, #${r.int(-H, Math.min(255, H - s))}]`], mem: true };
    case 3: { // register offset: index set up in a scratch register
      const k = gr(r);
      if (!fp && t === k && !o.load) return { lines: [`${o.op} ${rt}, [x28, #0]`], mem: true };
      if (r.bool()) {
        const scaled = r.bool();
        const idx = r.int(0, Math.floor((H - s) / (scaled ? s : 1)));
        return { lines: [`movz x${k}, #${idx}`, `${o.op} ${rt}, [x28, x${k}${scaled ? `, lsl #${Math.log2(s)}` : ""}]`], mem: true };
      }
      const neg = r.int(1, H); // sign-extended negative W index
      return { lines: [`movn w${k}, #${neg - 1}`, `${o.op} ${rt}, [x28, w${k}, sxtw]`], mem: true };
    }
    default: { // pre/post-index on a copy of the base
      let c = gr(r);
      if (!fp && c === t) c = (c + 1) % 28;
      const k = aligned(r, -128, 128, r.bool(0.8) ? 8 : 1);
      const pre = r.bool();
      // Access address: pre → base+k+off, post → base+k; both must lie inside the window.
      const off = pre ? r.int(Math.max(-256, -H - k), Math.min(255, H - s - k)) : r.int(-256, 255);
      const addr = pre ? `[x${c}, #${off}]!` : `[x${c}], #${off}`;
      return { lines: [baseCopy(r, c, k), `${o.op} ${rt}, ${addr}`], mem: true };
    }
  }
};

const loadStorePair: Gen = (r) => {
  const kind = r.pick(["x", "x", "w", "sw", "d", "q"]);
  const load = kind === "sw" ? true : r.bool();
  const op = kind === "sw" ? "ldpsw" : load ? "ldp" : "stp";
  const s = kind === "x" || kind === "d" ? 8 : kind === "q" ? 16 : 4;
  const fp = kind === "d" || kind === "q";
  const reg = (n: number) => fp ? `${kind}${n}` : kind === "x" || kind === "sw" ? X(n) : W(n);
  const t1 = fp ? r.int(0, NUM_V - 1) : load ? dst(r) : src(r);
  let t2 = fp ? r.int(0, NUM_V - 1) : load ? dst(r) : src(r);
  if (load && t1 === t2) t2 = fp ? (t2 + 1) % NUM_V : (t1 + 1) % 28; // LDP Rt == Rt2 is UNPREDICTABLE
  const H = WINDOW_HALF;
  const lo = -64 * s, hi = 63 * s; // imm7, scaled
  if (r.bool(0.6)) {
    const off = aligned(r, Math.max(lo, -H), Math.min(hi, H - 2 * s), s);
    return { lines: [`${op} ${reg(t1)}, ${reg(t2)}, [x28, #${off}]`], mem: true };
  }
  let c = gr(r);
  while (!fp && (c === t1 || c === t2)) c = (c + 1) % 28; // writeback base must differ from Rt/Rt2
  const k = aligned(r, -128, 128, 8);
  const pre = r.bool();
  const off = pre ? aligned(r, Math.max(lo, -H - k), Math.min(hi, H - 2 * s - k), s) : aligned(r, lo, hi, s);
  const addr = pre ? `[x${c}, #${off}]!` : `[x${c}], #${off}`;
  return { lines: [baseCopy(r, c, k), `${op} ${reg(t1)}, ${reg(t2)}, ${addr}`], mem: true };
};

/** Exclusives, acquire/release, PC-relative literal loads, SIMD structure loads/stores. */
const loadStoreMore: Gen = (r) => {
  const H = WINDOW_HALF;
  let c = gr(r);
  switch (r.int(0, 4)) {
    case 0: { // LDAR/STLR (any size; must be naturally aligned to be single-copy atomic, and it is)
      const [sfx, size, reg] = r.pick([["", 8, X], ["", 4, W], ["b", 1, W], ["h", 2, W]] as const);
      const k = aligned(r, -H, H - size, size), t = r.bool() ? dst(r) : src(r);
      if (t === c) c = (c + 1) % 28;
      const op = r.bool() ? `ldar${sfx}` : `stlr${sfx}`;
      return { lines: [baseCopy(r, c, k), `${op} ${reg(t)}, [x${c}]`], mem: true };
    }
    case 1: { // LDXR + STXR to the same address: succeeds (status 0) on both emulators
      const [sfx, size, reg] = r.pick([["", 8, X], ["", 4, W], ["b", 1, W], ["h", 2, W]] as const);
      const k = aligned(r, -H, H - size, size);
      const t = dreg(r), v = src(r);
      let st = dreg(r);
      while (c === t || c === st || st === v || c === v) { c = (c + 1) % 28; st = (st + 3) % 28; }
      const acq = r.bool() ? "a" : "", rel = r.bool() ? "l" : "";
      return { lines: [baseCopy(r, c, k), `ld${acq}xr${sfx} ${reg(t)}, [x${c}]`, `st${rel}xr${sfx} w${st}, ${reg(v)}, [x${c}]`], mem: true };
    }
    case 2: { // literal: load instruction words of this very code
      const [op, reg] = r.pick([["ldr", X], ["ldr", W], ["ldrsw", X]] as const);
      return one(`${op} ${reg(dst(r))}, . + ${4 * r.int(-6, 6)}`);
    }
    case 3: { // LD1/ST1 multiple, LD2..4/ST2..4
      const a = r.pick(ARR_ALL.filter((x) => x !== "1d")), n = r.int(1, 4), bytes = (a.startsWith("16") || a.startsWith("8h") || a.startsWith("4s") || a.startsWith("2d") ? 16 : 8) * n;
      const first = r.int(0, NUM_V - n);
      const list = "{" + Array.from({ length: n }, (_, i) => `v${first + i}.${a}`).join(", ") + "}";
      const op = `${r.bool() ? "ld" : "st"}${r.bool(0.5) || n === 1 ? 1 : n}`;
      const k = aligned(r, -H, H - bytes, 8);
      const post = r.bool(0.3) ? `, #${bytes}` : "";
      return { lines: [baseCopy(r, c, k), `${op} ${list}, [x${c}]${post}`], mem: true };
    }
    default: { // single lane / replicate
      const e = r.pick(["b", "h", "s", "d"]), sz = { b: 1, h: 2, s: 4, d: 8 }[e]!, n = r.int(1, 2);
      const first = r.int(0, NUM_V - n), k = aligned(r, -H, H - sz * n, sz);
      const arr = { b: "16b", h: "8h", s: "4s", d: "2d" }[e]!;
      if (r.bool(0.3)) {
        const list = "{" + Array.from({ length: n }, (_, i) => `v${first + i}.${arr}`).join(", ") + "}";
        return { lines: [baseCopy(r, c, k), `ld${n}r ${list}, [x${c}]`], mem: true };
      }
      const list = "{" + Array.from({ length: n }, (_, i) => `v${first + i}.${e}`).join(", ") + "}";
      return { lines: [baseCopy(r, c, k), `${r.bool() ? "ld" : "st"}${n} ${list}[${r.int(0, 16 / sz - 1)}], [x${c}]`], mem: true };
    }
  }
};

/** FPCR: rounding mode (bits 23:22), FZ (24), DN (25) for the rest of the sequence (the harness resets FPCR). */
const fpcr: Gen = (r) => {
  const k = dreg(r);
  const bits = (r.int(0, 3) << 6) | (r.bool(0.3) ? 1 << 8 : 0) | (r.bool(0.3) ? 1 << 9 : 0); // bits 31:16
  return { lines: [`movz x${k}, #${hex(bits)}, lsl #16`, `msr fpcr, x${k}`], mem: false };
};

// ------------------------------------------------------------------------------------------------ scalar FP

const vr = (r: Rng) => r.int(0, NUM_V - 1);

/** An FMOV (immediate) constant: ±(16+m)/16 × 2^e, m 0..15, e -3..4 (Arm ARM VFPExpandImm). */
function fmovImm(r: Rng): string {
  const v = ((16 + r.int(0, 15)) / 16) * 2 ** r.int(-3, 4);
  return (r.bool() ? "-" : "") + (Number.isInteger(v) ? v.toFixed(1) : String(v));
}

const fp: Gen = (r) => {
  const p = r.bool(0.55) ? "d" : "s";
  const F = (n: number) => `${p}${n}`;
  const sf = r.bool(0.6);
  switch (r.int(0, 13)) {
    case 0: case 1: case 2:
      return one(`${r.pick(["fadd", "fsub", "fmul", "fdiv", "fmax", "fmin", "fmaxnm", "fminnm", "fnmul"])} ${F(vr(r))}, ${F(vr(r))}, ${F(vr(r))}`);
    case 3: return one(`${r.pick(["fmadd", "fmsub", "fnmadd", "fnmsub"])} ${F(vr(r))}, ${F(vr(r))}, ${F(vr(r))}, ${F(vr(r))}`);
    case 4: case 5:
      return one(`${r.pick(["fneg", "fabs", "fsqrt", "fmov", "frintn", "frintz", "frintm", "frintp", "frinta", "frintx", "frinti"])} ${F(vr(r))}, ${F(vr(r))}`);
    case 6: return one(p === "d" ? `fcvt s${vr(r)}, d${vr(r)}` : `fcvt d${vr(r)}, s${vr(r)}`);
    case 7: {
      if (r.bool(0.25)) return one(`${r.pick(["fcvtzs", "fcvtzu"])} ${R(sf, dst(r))}, ${F(vr(r))}, #${r.int(1, sf ? 64 : 32)}`);
      return one(`${r.pick(["fcvtzs", "fcvtzu", "fcvtns", "fcvtnu", "fcvtms", "fcvtps", "fcvtas", "fcvtau"])} ${R(sf, dst(r))}, ${F(vr(r))}`);
    }
    case 8: {
      if (r.bool(0.25)) return one(`${r.pick(["scvtf", "ucvtf"])} ${F(vr(r))}, ${R(sf, src(r))}, #${r.int(1, sf ? 64 : 32)}`);
      return one(`${r.pick(["scvtf", "ucvtf"])} ${F(vr(r))}, ${R(sf, src(r))}`);
    }
    case 9: return one(`${r.pick(["fcmp", "fcmpe"])} ${F(vr(r))}, ${r.bool(0.2) ? "#0.0" : F(vr(r))}`);
    case 10: return one(`${r.pick(["fccmp", "fccmpe"])} ${F(vr(r))}, ${F(vr(r))}, #${r.int(0, 15)}, ${cond16(r)}`);
    case 11: return one(`fcsel ${F(vr(r))}, ${F(vr(r))}, ${F(vr(r))}, ${cond16(r)}`);
    case 12: {
      const k = r.int(0, 2);
      if (k === 0) return one(`fmov ${F(vr(r))}, #${fmovImm(r)}`);
      const g = p === "d" ? X : W;
      return one(k === 1 ? `fmov ${g(dst(r))}, ${F(vr(r))}` : `fmov ${F(vr(r))}, ${g(src(r))}`);
    }
    default: // FMOV to/from the top half of a 128-bit register
      return one(r.bool() ? `fmov x${dst(r) % 28}, v${vr(r)}.d[1]` : `fmov v${vr(r)}.d[1], ${X(src(r))}`);
  }
};

// ------------------------------------------------------------------------------------------------ SIMD integer

const ARR_ALL = ["8b", "16b", "4h", "8h", "2s", "4s", "2d"];
const ARR_NO2D = ["8b", "16b", "4h", "8h", "2s", "4s"];
const esize = (a: string) => ({ b: 8, h: 16, s: 32, d: 64 } as Record<string, number>)[a.slice(-1)]!;

const simd: Gen = (r) => {
  const V = (n: number, a: string) => `v${n}.${a}`;
  switch (r.int(0, 11)) {
    case 0: case 1: {
      const a = r.pick(ARR_ALL);
      return one(`${r.pick(["add", "sub", "cmeq", "cmgt", "cmge", "cmhi", "cmhs", "cmtst", "addp"])} ${V(vr(r), a)}, ${V(vr(r), a)}, ${V(vr(r), a)}`);
    }
    case 2: case 3: {
      const a = r.pick(ARR_NO2D);
      return one(`${r.pick(["mul", "umaxp", "uminp", "smaxp", "sminp", "umax", "umin", "smax", "smin", "uabd", "sabd"])} ${V(vr(r), a)}, ${V(vr(r), a)}, ${V(vr(r), a)}`);
    }
    case 4: {
      const a = r.pick(["8b", "16b"]);
      if (r.bool(0.2)) return one(`${r.pick(["not", "cnt", "rbit"])} ${V(vr(r), a)}, ${V(vr(r), a)}`);
      return one(`${r.pick(["and", "orr", "eor", "bic", "orn", "bsl", "bit", "bif"])} ${V(vr(r), a)}, ${V(vr(r), a)}, ${V(vr(r), a)}`);
    }
    case 5: {
      const a = r.pick(ARR_ALL);
      if (r.bool()) return one(`${r.pick(["neg", "abs"])} ${V(vr(r), a)}, ${V(vr(r), a)}`);
      return one(`${r.pick(["cmeq", "cmgt", "cmge", "cmle", "cmlt"])} ${V(vr(r), a)}, ${V(vr(r), a)}, #0`);
    }
    case 6: { // DUP / UMOV / SMOV / INS
      const a = r.pick(ARR_ALL), e = a.slice(-1), sz = esize(a);
      const lane = r.int(0, 128 / sz - 1);
      switch (r.int(0, 4)) {
        case 0: return one(`dup ${V(vr(r), a)}, ${sz === 64 ? X(src(r)) : W(src(r))}`);
        case 1: return one(`dup ${V(vr(r), a)}, v${vr(r)}.${e}[${r.int(0, 128 / sz - 1)}]`);
        case 2: return one(sz === 64 ? `umov ${X(dst(r))}, v${vr(r)}.d[${lane}]` : `umov ${W(dst(r))}, v${vr(r)}.${e}[${lane}]`);
        case 3: {
          if (sz === 64 || (sz === 32 && r.bool())) return one(`smov ${X(dst(r))}, v${vr(r)}.s[${r.int(0, 3)}]`);
          return one(`smov ${r.bool() ? X(dst(r)) : W(dst(r))}, v${vr(r)}.${sz === 8 ? "b" : "h"}[${r.int(0, sz === 8 ? 15 : 7)}]`);
        }
        default:
          if (r.bool()) return one(`ins v${vr(r)}.${e}[${lane}], ${sz === 64 ? X(src(r)) : W(src(r))}`);
          return one(`ins v${vr(r)}.${e}[${lane}], v${vr(r)}.${e}[${r.int(0, 128 / sz - 1)}]`);
      }
    }
    case 7: { // MOVI / MVNI
      switch (r.int(0, 3)) {
        case 0: return one(`movi ${V(vr(r), r.pick(["8b", "16b"]))}, #${hex(r.int(0, 255))}`);
        case 1: {
          let m = 0n;
          for (let i = 0; i < 8; i++) if (r.bool()) m |= 0xffn << BigInt(8 * i);
          return one(r.bool() ? `movi d${vr(r)}, #${hex(m)}` : `movi v${vr(r)}.2d, #${hex(m)}`);
        }
        case 2: return one(`${r.pick(["movi", "mvni"])} ${V(vr(r), r.pick(["2s", "4s"]))}, #${hex(r.int(0, 255))}, lsl #${r.pick([0, 8, 16, 24])}`);
        default: return one(`${r.pick(["movi", "mvni"])} ${V(vr(r), r.pick(["4h", "8h"]))}, #${hex(r.int(0, 255))}, lsl #${r.pick([0, 8])}`);
      }
    }
    case 8: { // shifts by immediate
      const a = r.pick(ARR_ALL), sz = esize(a);
      if (r.bool(0.35)) return one(`shl ${V(vr(r), a)}, ${V(vr(r), a)}, #${r.int(0, sz - 1)}`);
      return one(`${r.pick(["ushr", "sshr", "usra", "ssra", "urshr", "srshr"])} ${V(vr(r), a)}, ${V(vr(r), a)}, #${r.int(1, sz)}`);
    }
    case 9: { // permutes
      const a = r.pick(ARR_ALL);
      if (r.bool(0.8)) {
        const op = r.pick(["zip1", "zip2", "uzp1", "uzp2", "trn1", "trn2"]);
        return one(`${op} ${V(vr(r), a)}, ${V(vr(r), a)}, ${V(vr(r), a)}`);
      }
      const b = r.pick(["8b", "16b"]);
      return one(`ext ${V(vr(r), b)}, ${V(vr(r), b)}, ${V(vr(r), b)}, #${r.int(0, b === "8b" ? 7 : 15)}`);
    }
    case 10: { // across-lanes reductions
      const a = r.pick(["8b", "16b", "4h", "8h", "4s"]), e = { b: "b", h: "h", s: "s" }[a.slice(-1)]!;
      return one(`${r.pick(["addv", "umaxv", "uminv", "smaxv", "sminv"])} ${e}${vr(r)}, ${V(vr(r), a)}`);
    }
    default: { // widening/narrowing
      const k = r.int(0, 2);
      const [n, w] = r.pick([["8b", "8h"], ["4h", "4s"], ["2s", "2d"]] as const);
      const n2 = n === "8b" ? "16b" : n === "4h" ? "8h" : "4s";
      if (k === 0) return one(`${r.pick(["uxtl", "sxtl"])} ${V(vr(r), w)}, ${V(vr(r), n)}`);
      if (k === 1) return one(r.bool() ? `xtn ${V(vr(r), n)}, ${V(vr(r), w)}` : `xtn2 ${V(vr(r), n2)}, ${V(vr(r), w)}`);
      return one(`${r.pick(["uaddl", "saddl", "umull", "smull", "usubl"])} ${V(vr(r), w)}, ${V(vr(r), n)}, ${V(vr(r), n)}`);
    }
  }
};

/** More Advanced SIMD integer: saturating, halving, widening/narrowing, shifts by register, table lookups,
 *  by-element and scalar forms. */
const simdMore: Gen = (r) => {
  const V = (n: number, a: string) => `v${n}.${a}`;
  const three = (ops: string[], arrs: string[]) => {
    const a = r.pick(arrs);
    return one(`${r.pick(ops)} ${V(vr(r), a)}, ${V(vr(r), a)}, ${V(vr(r), a)}`);
  };
  const NARROW = [["8b", "8h", "16b"], ["4h", "4s", "8h"], ["2s", "2d", "4s"]] as const;
  switch (r.int(0, 13)) {
    case 0: return three(["sqadd", "uqadd", "sqsub", "uqsub", "sshl", "ushl", "srshl", "urshl", "sqshl", "uqshl"], ARR_ALL);
    case 1:
      if (r.bool(0.25)) return three(["sqdmulh", "sqrdmulh"], ["4h", "8h", "2s", "4s"]);
      return three(["shadd", "uhadd", "srhadd", "urhadd", "shsub", "uhsub", "mla", "mls", "saba", "uaba"], ARR_NO2D);
    case 2: {
      const a = r.pick(ARR_ALL);
      const ops = a === "2d" ? ["sqabs", "sqneg"] : ["sqabs", "sqneg", "cls", "clz"];
      if (r.bool(0.3) && a.endsWith("b")) return one(`${r.pick(["rev16", "rev32", "rev64", "cnt"])} ${V(vr(r), a)}, ${V(vr(r), a)}`);
      return one(`${r.pick(ops)} ${V(vr(r), a)}, ${V(vr(r), a)}`);
    }
    case 3: { // narrowing shifts / saturating narrows
      const [n, w, n2] = r.pick(NARROW), sz = esize(n);
      const hi = r.bool(0.3);
      const dstA = hi ? n2 : n, op2 = hi ? "2" : "";
      if (r.bool()) return one(`${r.pick(["shrn", "rshrn", "sqshrn", "uqshrn", "sqrshrn", "uqrshrn", "sqshrun", "sqrshrun"])}${op2} ${V(vr(r), dstA)}, ${V(vr(r), w)}, #${r.int(1, sz)}`);
      return one(`${r.pick(["sqxtn", "uqxtn", "sqxtun"])}${op2} ${V(vr(r), dstA)}, ${V(vr(r), w)}`);
    }
    case 4: { // widening/long
      const [n, w, n2] = r.pick(NARROW), hi = r.bool(0.3);
      const srcA = hi ? n2 : n, op2 = hi ? "2" : "";
      if (r.bool(0.3)) return one(`${r.pick(["sshll", "ushll"])}${op2} ${V(vr(r), w)}, ${V(vr(r), srcA)}, #${r.int(0, esize(n) - 1)}`);
      if (r.bool(0.3)) return one(`${r.pick(["uaddw", "saddw", "usubw", "ssubw"])}${op2} ${V(vr(r), w)}, ${V(vr(r), w)}, ${V(vr(r), srcA)}`);
      return one(`${r.pick(["smull", "umull", "smlal", "umlal", "smlsl", "umlsl", "sabdl", "uabdl", "uaddl", "saddl", "ssubl", "usubl"])}${op2} ${V(vr(r), w)}, ${V(vr(r), srcA)}, ${V(vr(r), srcA)}`);
    }
    case 5: { // pairwise long, across-lanes long
      const [a, w] = r.pick([["8b", "4h"], ["16b", "8h"], ["4h", "2s"], ["8h", "4s"], ["2s", "1d"], ["4s", "2d"]] as const);
      if (r.bool(0.35) && a !== "2s") {
        const e = { b: "h", h: "s", s: "d" }[a.slice(-1)]!;
        return one(`${r.pick(["saddlv", "uaddlv"])} ${e}${vr(r)}, ${V(vr(r), a)}`);
      }
      return one(`${r.pick(["saddlp", "uaddlp", "sadalp", "uadalp"])} ${V(vr(r), w)}, ${V(vr(r), a)}`);
    }
    case 6: { // table lookups
      const a = r.pick(["8b", "16b"]), n = r.int(1, 3), first = r.int(0, NUM_V - n);
      const list = Array.from({ length: n }, (_, i) => `v${first + i}.16b`).join(", ");
      return one(`${r.pick(["tbl", "tbx"])} ${V(vr(r), a)}, {${list}}, ${V(vr(r), a)}`);
    }
    case 7: { // by element
      const a = r.pick(["4h", "8h", "2s", "4s"]), e = a.slice(-1), lanesN = e === "h" ? 8 : 4;
      const m = e === "h" ? r.int(0, 7) : vr(r);
      return one(`${r.pick(["mul", "mla", "mls", "sqdmulh", "sqrdmulh"])} ${V(vr(r), a)}, ${V(vr(r), a)}, v${m}.${e}[${r.int(0, lanesN - 1)}]`);
    }
    case 8: { // shift-insert and accumulate
      const a = r.pick(ARR_ALL), sz = esize(a);
      if (r.bool()) return one(`sli ${V(vr(r), a)}, ${V(vr(r), a)}, #${r.int(0, sz - 1)}`);
      return one(`${r.pick(["sri", "ursra", "srsra"])} ${V(vr(r), a)}, ${V(vr(r), a)}, #${r.int(1, sz)}`);
    }
    case 9: { // scalar D forms
      switch (r.int(0, 3)) {
        case 0: return one(`${r.pick(["add", "sub", "cmeq", "cmgt", "cmhi", "cmge", "cmhs", "cmtst", "sshl", "ushl", "sqadd", "uqadd"])} d${vr(r)}, d${vr(r)}, d${vr(r)}`);
        case 1: return one(`${r.pick(["ushr", "sshr", "srshr", "urshr", "usra", "ssra"])} d${vr(r)}, d${vr(r)}, #${r.int(1, 64)}`);
        case 2: return one(`${r.pick(["neg", "abs", "sqabs", "sqneg"])} d${vr(r)}, d${vr(r)}`);
        default: return one(`addp d${vr(r)}, v${vr(r)}.2d`);
      }
    }
    case 10: return three(["pmul"], ["8b", "16b"]);
    case 11: {
      const [n, w] = r.pick(NARROW);
      return one(`${r.pick(["addhn", "raddhn", "subhn", "rsubhn"])} ${V(vr(r), n)}, ${V(vr(r), w)}, ${V(vr(r), w)}`);
    }
    default: return three(["umaxp", "sminp", "addp", "uzp2", "trn2"], ARR_NO2D);
  }
};

/** Advanced SIMD floating point on 2S/4S/2D. */
const simdFp: Gen = (r) => {
  const a = r.pick(["2s", "4s", "2d"]), V = (n: number) => `v${n}.${a}`;
  switch (r.int(0, 7)) {
    case 0: case 1:
      return one(`${r.pick(["fadd", "fsub", "fmul", "fdiv", "fmax", "fmin", "fmaxnm", "fminnm", "fabd", "fmla", "fmls", "fmulx", "faddp", "fmaxp", "fminp", "frecps", "frsqrts"])} ${V(vr(r))}, ${V(vr(r))}, ${V(vr(r))}`);
    case 2: return one(`${r.pick(["fcmeq", "fcmgt", "fcmge", "facgt", "facge"])} ${V(vr(r))}, ${V(vr(r))}, ${V(vr(r))}`);
    case 3: return one(`${r.pick(["fcmeq", "fcmgt", "fcmge", "fcmle", "fcmlt"])} ${V(vr(r))}, ${V(vr(r))}, #0.0`);
    case 4: return one(`${r.pick(["fabs", "fneg", "fsqrt", "frintn", "frintm", "frintp", "frintz", "frinta", "frintx", "frinti", "frecpe", "frsqrte", "fcvtzs", "fcvtzu", "fcvtns", "fcvtas", "scvtf", "ucvtf"])} ${V(vr(r))}, ${V(vr(r))}`);
    case 5: {
      const e = a.slice(-1), n = e === "d" ? 2 : 4;
      return one(`${r.pick(["fmul", "fmla", "fmls", "fmulx"])} ${V(vr(r))}, ${V(vr(r))}, v${vr(r)}.${e}[${r.int(0, n - 1)}]`);
    }
    case 6: {
      const k = r.int(0, 3);
      if (k === 0) return one(`${r.pick(["fcvtl"])} v${vr(r)}.2d, v${vr(r)}.2s`);
      if (k === 1) return one(`${r.pick(["fcvtn", "fcvtxn"])} v${vr(r)}.2s, v${vr(r)}.2d`);
      if (k === 2) return one(`${r.pick(["fmaxv", "fminv", "fmaxnmv", "fminnmv"])} s${vr(r)}, v${vr(r)}.4s`);
      return one(`${r.pick(["fcvtzs", "scvtf", "ucvtf", "fcvtzu"])} ${V(vr(r))}, ${V(vr(r))}, #${r.int(1, esize(a))}`);
    }
    default: { // scalar pairwise, half-precision conversions
      if (r.bool()) return one(`${r.pick(["faddp", "fmaxp", "fminp", "fmaxnmp"])} ${r.bool() ? `d${vr(r)}, v${vr(r)}.2d` : `s${vr(r)}, v${vr(r)}.2s`}`);
      return one(r.pick([`fcvt h${vr(r)}, s${vr(r)}`, `fcvt s${vr(r)}, h${vr(r)}`, `fcvt h${vr(r)}, d${vr(r)}`, `fcvt d${vr(r)}, h${vr(r)}`]));
    }
  }
};

// ------------------------------------------------------------------------------------------------- sequences

/** The mix: weighted towards integer data processing. */
const CLASSES: readonly (readonly [number, Gen])[] = [
  [60, (r) => r.weighted(INT_GENS)(r)],
  [8, branch],
  [9, loadStore],
  [5, loadStorePair],
  [3, loadStoreMore],
  [1.5, fpcr],
  [10, fp],
  [4, simd],
  [3, simdMore],
  [2, simdFp],
];

export interface GenOptions { minLen?: number; maxLen?: number }

export function generateSequence(r: Rng, index: number, opt: GenOptions = {}): Sequence {
  const len = r.int(opt.minLen ?? 4, opt.maxLen ?? 10);
  recent.length = 0;
  const units: Unit[] = [];
  for (let i = 0; i < len; i++) units.push(r.weighted(CLASSES)(r));
  const x: bigint[] = [];
  for (let i = 0; i < NUM_X_INPUTS; i++) x.push(randomInt64(r));
  const v: bigint[] = [];
  for (let i = 0; i < 2 * NUM_V; i++) v.push(randomVHalf(r) & M64);
  return { index, units, x, nzcv: r.int(0, 15) << 28, v, mem: units.some((u) => u.mem) };
}

export function generateSequences(seed: number, count: number, opt: GenOptions = {}): Sequence[] {
  const r = new Rng(seed);
  const out: Sequence[] = [];
  for (let i = 0; i < count; i++) out.push(generateSequence(r, i, opt));
  return out;
}

/** Initial contents of the scratch window (2 × WINDOW_HALF bytes), fixed per binary. */
export function windowInit(seed: number): Uint8Array {
  const r = new Rng(seed ^ 0x5a5a1234);
  const b = new Uint8Array(2 * WINDOW_HALF);
  for (let i = 0; i < b.length; i += 8) {
    const v = randomInt64(r);
    for (let j = 0; j < 8; j++) b[i + j] = Number((v >> BigInt(8 * j)) & 0xffn);
  }
  return b;
}
