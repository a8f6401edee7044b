/**
 * Advanced SIMD three same (Arm ARM C4.1.95 "Advanced SIMD three same") and Advanced SIMD scalar three same,
 * integer opcodes 00000..10111 only (11xxx are floating point, simd-fp.ts).
 *
 *   vector: 0 Q U 01110 size 1 Rm opcode 1 Rn Rd
 *   scalar: 0 1 U 11110 size 1 Rm opcode 1 Rn Rd
 *
 * Hot operations (ADD/SUB, compares, logical, pairwise min/max/add) have dedicated loops; the rest share a
 * generic element loop over an operation function. 64-bit lanes use int32 pairs for add/sub/compare and
 * BigInt for the rarely executed saturating and register-shift forms.
 */
import type { Cpu } from "./cpu.js";
import type { Decoder } from "./decoder.js";
import { add64, sub64, R } from "../../common/int64.js";
import {
  T32, asr64, bit64, clearHigh, finish, finishScalar, get, getBig, lsr64, put, putBig, sat, satBig, shl64, smulhi32,
  QC,
} from "./simd-util.js";

/** Element operation on exact values read signed or unsigned; `acc` is Vd's old element (accumulating ops). */
export type Op = (c: Cpu, a: number, b: number, size: number, acc: number) => number;
/** The same on 64-bit lanes (BigInt: rare paths only). */
export type Op64 = (c: Cpu, a: bigint, b: bigint, acc: bigint) => bigint;

interface Spec {
  op: Op;
  op64: Op64 | null;
  signed: boolean;
  /** Allowed element sizes (bit per size) for the vector and the scalar form (0: no scalar form). */
  vsizes: number;
  ssizes: number;
  /** SSHL/USHL/SRSHL/URSHL: 64-bit lanes through int32 pairs instead of BigInt (compilers emit these). */
  shift64?: { round: boolean };
}

const P2 = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
function pow2(s: number): number { return s < P2.length ? P2[s] : Math.pow(2, s); }

/** Shift left by s >= 0 (modular; s >= esize gives 0 after truncation by put). */
function shlN(a: number, s: number, size: number): number { return s >= (8 << size) ? 0 : a * pow2(s); }
/** Shift right by s >= 1 (floor division: arithmetic for signed values, logical for unsigned). */
function shrN(a: number, s: number, size: number): number {
  if (s >= (8 << size)) return a < 0 ? -1 : 0;
  return Math.floor(a / pow2(s));
}
/** Rounding shift right by s >= 1. */
function rshrN(a: number, s: number, size: number): number {
  if (s > (8 << size)) return 0;
  return Math.floor((a + pow2(s - 1)) / pow2(s));
}

const shadd: Op = (_c, a, b) => Math.floor((a + b) / 2);
const srhadd: Op = (_c, a, b) => Math.floor((a + b + 1) / 2);
const shsub: Op = (_c, a, b) => Math.floor((a - b) / 2);
const sqadd: Op = (c, a, b, size) => sat(c, a + b, size, true);
const uqadd: Op = (c, a, b, size) => sat(c, a + b, size, false);
const sqsub: Op = (c, a, b, size) => sat(c, a - b, size, true);
const uqsub: Op = (c, a, b, size) => sat(c, a - b, size, false);

const sqadd64: Op64 = (c, a, b) => satBig(c, a + b, true);
const uqadd64: Op64 = (c, a, b) => satBig(c, a + b, false);
const sqsub64: Op64 = (c, a, b) => satBig(c, a - b, true);
const uqsub64: Op64 = (c, a, b) => satBig(c, a - b, false);

/** Shift amount of the register-shift forms: the signed low byte of Vm's element. */
function shAmt(b: number): number { return (b << 24) >> 24; }
const sshl: Op = (_c, a, b, size) => { const s = shAmt(b); return s >= 0 ? shlN(a, s, size) : shrN(a, -s, size); };
const srshl: Op = (_c, a, b, size) => { const s = shAmt(b); return s >= 0 ? shlN(a, s, size) : rshrN(a, -s, size); };
function qshlS(c: Cpu, a: number, s: number, size: number, signed: boolean): number {
  if (a === 0) return 0;
  return sat(c, a * pow2(Math.min(s, (8 << size) + 1)), size, signed);
}
const sqshl: Op = (c, a, b, size) => { const s = shAmt(b); return s >= 0 ? qshlS(c, a, s, size, true) : shrN(a, -s, size); };
const uqshl: Op = (c, a, b, size) => { const s = shAmt(b); return s >= 0 ? qshlS(c, a, s, size, false) : shrN(a, -s, size); };
const sqrshl: Op = (c, a, b, size) => { const s = shAmt(b); return s >= 0 ? qshlS(c, a, s, size, true) : rshrN(a, -s, size); };
const uqrshl: Op = (c, a, b, size) => { const s = shAmt(b); return s >= 0 ? qshlS(c, a, s, size, false) : rshrN(a, -s, size); };

function shAmt64(b: bigint): number { return Number(BigInt.asIntN(8, b)); }
/** 64-bit register shifts (BigInt: rare). `round` adds the rounding constant for right shifts. */
function shl64big(c: Cpu, a: bigint, b: bigint, signed: boolean, round: boolean, saturate: boolean): bigint {
  const s = shAmt64(b);
  if (s >= 0) {
    const r = a << BigInt(Math.min(s, 65));
    return saturate ? satBig(c, r, signed) : r;
  }
  const n = BigInt(Math.min(-s, 66));
  return round ? (a + (1n << (n - 1n))) >> n : a >> n;
}
const sshl64: Op64 = (c, a, b) => shl64big(c, a, b, true, false, false);
const ushl64: Op64 = (c, a, b) => shl64big(c, a, b, false, false, false);
const srshl64: Op64 = (c, a, b) => shl64big(c, a, b, true, true, false);
const urshl64: Op64 = (c, a, b) => shl64big(c, a, b, false, true, false);
const sqshl64: Op64 = (c, a, b) => shl64big(c, a, b, true, false, true);
const uqshl64: Op64 = (c, a, b) => shl64big(c, a, b, false, false, true);
const sqrshl64: Op64 = (c, a, b) => shl64big(c, a, b, true, true, true);
const uqrshl64: Op64 = (c, a, b) => shl64big(c, a, b, false, true, true);

const max: Op = (_c, a, b) => (a > b ? a : b);
const min: Op = (_c, a, b) => (a < b ? a : b);
const abd: Op = (_c, a, b) => Math.abs(a - b);
const aba: Op = (_c, a, b, _s, acc) => acc + Math.abs(a - b);
const mul: Op = (_c, a, b) => Math.imul(a, b);
const mla: Op = (_c, a, b, _s, acc) => acc + Math.imul(a, b);
const mls: Op = (_c, a, b, _s, acc) => acc - Math.imul(a, b);

/** Polynomial (carry-less) multiply of two bytes, low 8 bits (PMUL) or full 16 bits (PMULL). */
export function pmul8(a: number, b: number): number {
  let r = 0;
  for (let k = 0; k < 8; k++) if ((b >>> k) & 1) r ^= a << k;
  return r;
}
const pmul: Op = (_c, a, b) => pmul8(a, b);

/** SQDMULH / SQRDMULH on H or S elements: high half of 2*a*b (+ rounding), saturating only for MIN*MIN. */
export function sqdmulh(c: Cpu, a: number, b: number, size: number, round: boolean): number {
  if (size === 1) {
    const p = 2 * a * b + (round ? 0x8000 : 0);
    return sat(c, Math.floor(p / 65536), 1, true);
  }
  if (a === -0x80000000 && b === -0x80000000) { c.fpsr |= QC; return 0x7fffffff; }
  // 64-bit product p = a*b; result = (2p + r) >> 32 = (p + r/2) >> 31.
  let lo = Math.imul(a, b), hi = smulhi32(a, b);
  if (round) {
    const l = (lo >>> 0) + 0x40000000;
    if (l > 0xffffffff) hi = (hi + 1) | 0;
    lo = l | 0;
  }
  return (hi << 1) | (lo >>> 31);
}
const sqdmulhOp: Op = (c, a, b, size) => sqdmulh(c, a, b, size, false);
const sqrdmulhOp: Op = (c, a, b, size) => sqdmulh(c, a, b, size, true);

/** Generic element-wise loop. */
function binop(c: Cpu, i: number, s: Spec): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const size = (i >>> 22) & 3, q = (i >>> 30) & 1, scalar = (i >>> 28) & 1;
  if ((((scalar !== 0 ? s.ssizes : s.vsizes) >> size) & 1) === 0 || (scalar === 0 && size === 3 && q === 0)) {
    c.undefinedInstruction(i); return;
  }
  const d = i & 31, n = (i >>> 5) & 31, m = (i >>> 16) & 31;
  const elems = scalar !== 0 ? 1 : (8 << q) >> size;
  const signed = s.signed;
  if (size === 3 && s.shift64 !== undefined) {
    const v = c.vi32, round = s.shift64.round;
    for (let e = 0; e < elems; e++) {
      const kn = (n << 2) + 2 * e, km = (m << 2) + 2 * e, kd = (d << 2) + 2 * e;
      const alo = v[kn], ahi = v[kn + 1], sh = (v[km] << 24) >> 24;
      let lo: number, hi: number;
      if (sh >= 0) { lo = shl64(alo, ahi, sh); hi = R[0]; }
      else {
        lo = signed ? asr64(alo, ahi, -sh) : lsr64(alo, ahi, -sh); hi = R[0];
        if (round) { lo = add64(lo, hi, bit64(alo, ahi, -sh - 1, signed), 0); hi = R[0]; }
      }
      v[kd] = lo; v[kd + 1] = hi;
    }
  } else if (size === 3) {
    // Rare: BigInt lanes (saturating / register-shift on 64-bit elements).
    const op64 = s.op64!;
    for (let e = 0; e < elems; e++) {
      putBig(c, d, e, op64(c, getBig(c, n, e, signed), getBig(c, m, e, signed), getBig(c, d, e, signed)));
    }
  } else {
    const op = s.op;
    for (let e = 0; e < elems; e++) {
      put(c, d, e, size, op(c, get(c, n, e, size, signed), get(c, m, e, size, signed), size, get(c, d, e, size, signed)));
    }
  }
  if (scalar !== 0) finishScalar(c, d, size); else finish(c, d, q);
}

// ------------------------------------------------------------------------------------------------------------
// Dedicated loops

/** ADD/SUB (vector and scalar D). */
function addSub(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const size = (i >>> 22) & 3, q = (i >>> 30) & 1, scalar = (i >>> 28) & 1, sub = (i >>> 29) & 1;
  if (scalar !== 0 ? size !== 3 : size === 3 && q === 0) { c.undefinedInstruction(i); return; }
  const d = i & 31, n = (i >>> 5) & 31, m = (i >>> 16) & 31;
  if (size === 3) {
    const v = c.vi32;
    const elems = scalar !== 0 ? 1 : 2;
    for (let e = 0; e < elems; e++) {
      const kn = (n << 2) + 2 * e, km = (m << 2) + 2 * e, kd = (d << 2) + 2 * e;
      const lo = sub ? sub64(v[kn], v[kn + 1], v[km], v[km + 1]) : add64(v[kn], v[kn + 1], v[km], v[km + 1]);
      v[kd] = lo; v[kd + 1] = R[0];
    }
    if (scalar !== 0) clearHigh(c, d);
    return;
  }
  const words = q ? 4 : 2;
  if (size === 2) {
    const v = c.vi32;
    for (let e = 0; e < words; e++) v[(d << 2) + e] = sub ? v[(n << 2) + e] - v[(m << 2) + e] : v[(n << 2) + e] + v[(m << 2) + e];
  } else if (size === 1) {
    const v = c.vu16;
    for (let e = 0; e < words * 2; e++) v[(d << 3) + e] = sub ? v[(n << 3) + e] - v[(m << 3) + e] : v[(n << 3) + e] + v[(m << 3) + e];
  } else {
    const v = c.vu8;
    for (let e = 0; e < words * 4; e++) v[(d << 4) + e] = sub ? v[(n << 4) + e] - v[(m << 4) + e] : v[(n << 4) + e] + v[(m << 4) + e];
  }
  finish(c, d, q);
}

/** 64-bit signed/unsigned comparisons on (lo, hi) pairs. */
function cmp64(alo: number, ahi: number, blo: number, bhi: number, signed: boolean): number {
  if (ahi !== bhi) return signed ? (ahi < bhi ? -1 : 1) : ((ahi >>> 0) < (bhi >>> 0) ? -1 : 1);
  return alo === blo ? 0 : (alo >>> 0) < (blo >>> 0) ? -1 : 1;
}

/** Compare kinds: 0 GT, 1 GE, 2 EQ, 3 TST, 4 LE, 5 LT (the last two only for compare-with-zero). */
export function cmpTrue(kind: number, r: number): boolean {
  switch (kind) {
    case 0: return r > 0;
    case 1: return r >= 0;
    case 2: return r === 0;
    case 4: return r <= 0;
    default: return r < 0;
  }
}

/**
 * Compares Vn with Vm (zero = false) or with zero (zero = true): lanes become all ones when true. CMTST (kind 3)
 * tests (a & b) != 0.
 */
export function compare(c: Cpu, i: number, kind: number, signed: boolean, zero: boolean): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const size = (i >>> 22) & 3, q = (i >>> 30) & 1, scalar = (i >>> 28) & 1;
  if (scalar !== 0 ? size !== 3 : size === 3 && q === 0) { c.undefinedInstruction(i); return; }
  const d = i & 31, n = (i >>> 5) & 31, m = zero ? 31 : (i >>> 16) & 31;
  if (size === 3) {
    const v = c.vi32;
    const elems = scalar !== 0 ? 1 : 2;
    for (let e = 0; e < elems; e++) {
      const kn = (n << 2) + 2 * e, km = (m << 2) + 2 * e, kd = (d << 2) + 2 * e;
      const alo = v[kn], ahi = v[kn + 1];
      const blo = zero ? 0 : v[km], bhi = zero ? 0 : v[km + 1];
      const t = kind === 3 ? ((alo & blo) | (ahi & bhi)) !== 0 : cmpTrue(kind, cmp64(alo, ahi, blo, bhi, signed));
      v[kd] = v[kd + 1] = t ? -1 : 0;
    }
    if (scalar !== 0) clearHigh(c, d);
    return;
  }
  const elems = (8 << q) >> size;
  if (kind === 2 && !zero && size === 0) {
    // CMEQ .16B / .8B: the string routines' workhorse.
    const u = c.vu8, bn = n << 4, bm = m << 4, bd = d << 4;
    for (let e = 0; e < elems; e++) u[bd + e] = u[bn + e] === u[bm + e] ? 0xff : 0;
  } else {
    for (let e = 0; e < elems; e++) {
      const a = get(c, n, e, size, signed);
      const b = zero ? 0 : get(c, m, e, size, signed);
      const t = kind === 3 ? (a & b) !== 0 : cmpTrue(kind, a - b);
      put(c, d, e, size, t ? -1 : 0);
    }
  }
  finish(c, d, q);
}

/** AND/BIC/ORR/ORN (U=0) and EOR/BSL/BIT/BIF (U=1), selected by size. */
function logical(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const q = (i >>> 30) & 1, op = ((i >>> 27) & 4) | ((i >>> 22) & 3);
  const v = c.vi32, d = (i & 31) << 2, n = ((i >>> 5) & 31) << 2, m = ((i >>> 16) & 31) << 2;
  const words = q ? 4 : 2;
  for (let e = 0; e < words; e++) {
    const a = v[n + e], b = v[m + e], x = v[d + e];
    let r: number;
    switch (op) {
      case 0: r = a & b; break;
      case 1: r = a & ~b; break;
      case 2: r = a | b; break;
      case 3: r = a | ~b; break;
      case 4: r = a ^ b; break;
      case 5: r = (x & a) | (~x & b); break; // BSL: Vd selects
      case 6: r = (b & a) | (~b & x); break; // BIT: insert a where b
      default: r = (~b & a) | (b & x); // BIF: insert a where not b
    }
    v[d + e] = r;
  }
  finish(c, d >> 2, q);
}

/**
 * Pairwise ops over the concatenation Vm:Vn (Vn supplies the low half of the result): kind 0 ADDP, 1 MAXP,
 * 2 MINP. Scalar ADDP Dd, Vn.2D is handled in simd-misc.ts.
 */
function pairwise(c: Cpu, i: number, kind: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const size = (i >>> 22) & 3, q = (i >>> 30) & 1, signed = ((i >>> 29) & 1) === 0 || kind === 0;
  if (size === 3 && (kind !== 0 || q === 0)) { c.undefinedInstruction(i); return; }
  const d = i & 31, n = (i >>> 5) & 31, m = (i >>> 16) & 31;
  if (size === 3) {
    const v = c.vi32;
    const lo0 = add64(v[n << 2], v[(n << 2) + 1], v[(n << 2) + 2], v[(n << 2) + 3]), hi0 = R[0];
    const lo1 = add64(v[m << 2], v[(m << 2) + 1], v[(m << 2) + 2], v[(m << 2) + 3]), hi1 = R[0];
    v[d << 2] = lo0; v[(d << 2) + 1] = hi0; v[(d << 2) + 2] = lo1; v[(d << 2) + 3] = hi1;
    return;
  }
  const elems = (8 << q) >> size, half = elems >> 1;
  // Results go to scratch first: Vd may alias Vn or Vm.
  for (let e = 0; e < elems; e++) {
    const src = e < half ? n : m, k = 2 * (e < half ? e : e - half);
    const a = get(c, src, k, size, signed), b = get(c, src, k + 1, size, signed);
    T32[e] = kind === 0 ? a + b : kind === 1 ? (a > b ? a : b) : (a < b ? a : b);
  }
  for (let e = 0; e < elems; e++) put(c, d, e, size, T32[e]);
  finish(c, d, q);
}

// ------------------------------------------------------------------------------------------------------------

const B = 1, H = 2, S = 4, D = 8, BHS = 7, ALL = 15;

function spec(op: Op, op64: Op64 | null, signed: boolean, vsizes: number, ssizes: number): Spec {
  return { op, op64, signed, vsizes, ssizes, shift64: undefined };
}

export function register(d: Decoder): void {
  const V = (op: string) => `0xx01110xx1xxxxx${op}1xxxxxxxxxx`;
  const Sc = (op: string) => `01x11110xx1xxxxx${op}1xxxxxxxxxx`;
  /** Registers the U=0 / U=1 pair of an opcode through the generic loop. */
  const gen = (op: string, nameS: string, s0: Spec | null, nameU: string, s1: Spec | null) => {
    for (const [u, name, s] of [["0", nameS, s0], ["1", nameU, s1]] as const) {
      if (s === null) continue;
      const h = (c: Cpu, i: number) => binop(c, i, s);
      d.def(`0x${u}01110xx1xxxxx${op}1xxxxxxxxxx`, name, h);
      if (s.ssizes !== 0) d.def(`01${u}11110xx1xxxxx${op}1xxxxxxxxxx`, name + " (scalar)", h);
    }
  };
  gen("00000", "SHADD", spec(shadd, null, true, BHS, 0), "UHADD", spec(shadd, null, false, BHS, 0));
  gen("00001", "SQADD", spec(sqadd, sqadd64, true, ALL, ALL), "UQADD", spec(uqadd, uqadd64, false, ALL, ALL));
  gen("00010", "SRHADD", spec(srhadd, null, true, BHS, 0), "URHADD", spec(srhadd, null, false, BHS, 0));
  d.def(V("00011"), "AND/BIC/ORR/ORN/EOR/BSL/BIT/BIF (vector)", logical);
  gen("00100", "SHSUB", spec(shsub, null, true, BHS, 0), "UHSUB", spec(shsub, null, false, BHS, 0));
  gen("00101", "SQSUB", spec(sqsub, sqsub64, true, ALL, ALL), "UQSUB", spec(uqsub, uqsub64, false, ALL, ALL));
  const cmgt = (c: Cpu, i: number) => compare(c, i, 0, true, false);
  const cmhi = (c: Cpu, i: number) => compare(c, i, 0, false, false);
  const cmge = (c: Cpu, i: number) => compare(c, i, 1, true, false);
  const cmhs = (c: Cpu, i: number) => compare(c, i, 1, false, false);
  const cmtst = (c: Cpu, i: number) => compare(c, i, 3, false, false);
  const cmeq = (c: Cpu, i: number) => compare(c, i, 2, false, false);
  for (const [p, name, h] of [["000110", "CMGT", cmgt], ["100110", "CMHI", cmhi], ["000111", "CMGE", cmge],
    ["100111", "CMHS", cmhs], ["010001", "CMTST", cmtst], ["110001", "CMEQ", cmeq]] as const) {
    const u = p[0], op = p.slice(1);
    d.def(`0x${u}01110xx1xxxxx${op}1xxxxxxxxxx`, `${name} (register)`, h);
    d.def(`01${u}11110xx1xxxxx${op}1xxxxxxxxxx`, `${name} (register, scalar)`, h);
  }
  const sh64 = (x: Spec, round: boolean): Spec => { x.shift64 = { round }; return x; };
  gen("01000", "SSHL", sh64(spec(sshl, sshl64, true, ALL, D), false), "USHL", sh64(spec(sshl, ushl64, false, ALL, D), false));
  gen("01001", "SQSHL (register)", spec(sqshl, sqshl64, true, ALL, ALL), "UQSHL (register)", spec(uqshl, uqshl64, false, ALL, ALL));
  gen("01010", "SRSHL", sh64(spec(srshl, srshl64, true, ALL, D), true), "URSHL", sh64(spec(srshl, urshl64, false, ALL, D), true));
  gen("01011", "SQRSHL", spec(sqrshl, sqrshl64, true, ALL, ALL), "UQRSHL", spec(uqrshl, uqrshl64, false, ALL, ALL));
  gen("01100", "SMAX", spec(max, null, true, BHS, 0), "UMAX", spec(max, null, false, BHS, 0));
  gen("01101", "SMIN", spec(min, null, true, BHS, 0), "UMIN", spec(min, null, false, BHS, 0));
  gen("01110", "SABD", spec(abd, null, true, BHS, 0), "UABD", spec(abd, null, false, BHS, 0));
  gen("01111", "SABA", spec(aba, null, true, BHS, 0), "UABA", spec(aba, null, false, BHS, 0));
  d.def(V("10000"), "ADD/SUB (vector)", addSub);
  d.def(Sc("10000"), "ADD/SUB (scalar)", addSub);
  gen("10010", "MLA", spec(mla, null, false, BHS, 0), "MLS", spec(mls, null, false, BHS, 0));
  gen("10011", "MUL", spec(mul, null, false, BHS, 0), "PMUL", spec(pmul, null, false, B, 0));
  d.def(V("10100"), "SMAXP/UMAXP", (c, i) => pairwise(c, i, 1));
  d.def(V("10101"), "SMINP/UMINP", (c, i) => pairwise(c, i, 2));
  gen("10110", "SQDMULH", spec(sqdmulhOp, null, true, H | S, H | S), "SQRDMULH", spec(sqrdmulhOp, null, true, H | S, H | S));
  d.def("0x001110xx1xxxxx101111xxxxxxxxxx", "ADDP (vector)", (c, i) => pairwise(c, i, 0));
}
