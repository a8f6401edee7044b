/**
 * Advanced SIMD two-register miscellaneous (integer opcodes), its scalar counterpart, across-lanes reductions,
 * and scalar pairwise ADDP (Arm ARM C4.1.95).
 *
 *   two-reg misc:        0 Q U 01110 size 10000 opcode(5) 10 Rn Rd
 *   scalar two-reg misc: 0 1 U 11110 size 10000 opcode(5) 10 Rn Rd
 *   across lanes:        0 Q U 01110 size 11000 opcode(5) 10 Rn Rd
 *   scalar pairwise:     0 1 U 11110 size 11000 opcode(5) 10 Rn Rd   (ADDP Dd, Vn.2D only; the rest are FP)
 */
import type { Cpu } from "./cpu.js";
import type { Decoder } from "./decoder.js";
import { add64, sub64, fromNumber, R } from "../../common/int64.js";
import {
  T8, T32, clearHigh, finish, finishScalar, get, getBig, getU, put, putBig, sat, satBig, satS, satU, QC,
} from "./simd-util.js";
import { compare } from "./simd-same.js";

/** Bit-reversed bytes (RBIT). */
const RBIT8 = new Uint8Array(256);
for (let x = 0; x < 256; x++) {
  let r = 0;
  for (let k = 0; k < 8; k++) r |= ((x >> k) & 1) << (7 - k);
  RBIT8[x] = r;
}

/** REV16/REV32/REV64: reverse `size` elements within 2^(cont) byte containers. */
function rev(c: Cpu, i: number, contLog: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const size = (i >>> 22) & 3, q = (i >>> 30) & 1;
  if (size >= contLog) { c.undefinedInstruction(i); return; }
  const d = i & 31, n = (i >>> 5) & 31, u = c.vu8;
  const bytes = 8 << q, cmask = (1 << contLog) - 1, emask = (1 << size) - 1, last = (1 << contLog) - (1 << size);
  for (let k = 0; k < bytes; k++) {
    const base = k & ~cmask, w = k & cmask;
    // Element position within the container mirrors; byte order within the element is kept.
    T8[base + (last - (w & ~emask)) + (w & emask)] = u[(n << 4) + k];
  }
  for (let k = 0; k < bytes; k++) u[(d << 4) + k] = T8[k];
  finish(c, d, q);
}

/** SADDLP/UADDLP (acc = false) and SADALP/UADALP (acc = true). */
function addlp(c: Cpu, i: number, acc: boolean): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const size = (i >>> 22) & 3, q = (i >>> 30) & 1, signed = ((i >>> 29) & 1) === 0;
  if (size === 3) { c.undefinedInstruction(i); return; }
  const d = i & 31, n = (i >>> 5) & 31, elems = (4 << q) >> size, ws = size + 1;
  if (size < 2) {
    for (let e = 0; e < elems; e++) {
      const s = get(c, n, 2 * e, size, signed) + get(c, n, 2 * e + 1, size, signed);
      put(c, d, e, ws, acc ? get(c, d, e, ws, false) + s : s);
    }
  } else {
    const v = c.vi32;
    for (let e = 0; e < elems; e++) {
      let lo = fromNumber(get(c, n, 2 * e, 2, signed) + get(c, n, 2 * e + 1, 2, signed)), hi = R[0];
      const kd = (d << 2) + 2 * e;
      if (acc) { lo = add64(v[kd], v[kd + 1], lo, hi); hi = R[0]; }
      v[kd] = lo; v[kd + 1] = hi;
    }
  }
  finish(c, d, q);
}

/** Per-element unary ops on B/H/S lanes (vector only): CLS, CLZ, CNT, NOT, RBIT. */
function bitCount(c: Cpu, i: number, kind: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const size = (i >>> 22) & 3, q = (i >>> 30) & 1;
  if (kind === 2 ? size !== 0 : kind === 3 ? size !== 0 : kind === 4 ? size !== 1 : size === 3) {
    c.undefinedInstruction(i); return;
  }
  const d = i & 31, n = (i >>> 5) & 31;
  if (kind >= 2) {
    // Byte-wise: CNT (2), NOT (3), RBIT (4).
    const u = c.vu8, bytes = 8 << q;
    for (let k = 0; k < bytes; k++) {
      let x = u[(n << 4) + k];
      if (kind === 2) { x = x - ((x >> 1) & 0x55); x = (x & 0x33) + ((x >> 2) & 0x33); x = (x + (x >> 4)) & 15; }
      else if (kind === 3) x = ~x;
      else x = RBIT8[x];
      u[(d << 4) + k] = x;
    }
  } else {
    const bits = 8 << size, elems = (8 << q) >> size;
    for (let e = 0; e < elems; e++) {
      const x = getU(c, n, e, size);
      let r: number;
      if (kind === 1) r = Math.clz32(x) - (32 - bits);
      else r = Math.clz32(((x >>> 1) ^ x) & ((bits === 32 ? 0x7fffffff : (1 << (bits - 1)) - 1))) - (33 - bits);
      put(c, d, e, size, r);
    }
  }
  finish(c, d, q);
}

/** ABS (0), NEG (1), SQABS (2), SQNEG (3), vector and scalar. */
function absNeg(c: Cpu, i: number, kind: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const size = (i >>> 22) & 3, q = (i >>> 30) & 1, scalar = (i >>> 28) & 1;
  if (scalar !== 0 ? kind < 2 && size !== 3 : size === 3 && q === 0) { c.undefinedInstruction(i); return; }
  const d = i & 31, n = (i >>> 5) & 31;
  const elems = scalar !== 0 ? 1 : (8 << q) >> size;
  if (size === 3) {
    const v = c.vi32;
    for (let e = 0; e < elems; e++) {
      const kn = (n << 2) + 2 * e, kd = (d << 2) + 2 * e;
      const lo = v[kn], hi = v[kn + 1];
      const negate = kind === 1 || kind === 3 || hi < 0;
      if (kind >= 2 && negate && lo === 0 && hi === -0x80000000) {
        c.fpsr |= QC; v[kd] = -1; v[kd + 1] = 0x7fffffff; continue;
      }
      if (negate) { v[kd] = sub64(0, 0, lo, hi); v[kd + 1] = R[0]; } else { v[kd] = lo; v[kd + 1] = hi; }
    }
  } else {
    for (let e = 0; e < elems; e++) {
      const a = get(c, n, e, size, true);
      const r = kind === 0 || kind === 2 ? Math.abs(a) : -a;
      put(c, d, e, size, kind >= 2 ? satS(c, r, size) : r);
    }
  }
  if (scalar !== 0) finishScalar(c, d, size); else finish(c, d, q);
}

/** SUQADD (signed acc + unsigned Vn) and USQADD (unsigned acc + signed Vn), vector and scalar. */
function sqaddAcc(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const size = (i >>> 22) & 3, q = (i >>> 30) & 1, scalar = (i >>> 28) & 1, u = (i >>> 29) & 1;
  if (scalar === 0 && size === 3 && q === 0) { c.undefinedInstruction(i); return; }
  const d = i & 31, n = (i >>> 5) & 31, elems = scalar !== 0 ? 1 : (8 << q) >> size;
  for (let e = 0; e < elems; e++) {
    if (size === 3) {
      // Rare: 64-bit lanes through BigInt.
      putBig(c, d, e, satBig(c, getBig(c, d, e, u === 0) + getBig(c, n, e, u === 1), u === 0));
    } else {
      put(c, d, e, size, sat(c, get(c, d, e, size, u === 0) + get(c, n, e, size, u === 1), size, u === 0));
    }
  }
  if (scalar !== 0) finishScalar(c, d, size); else finish(c, d, q);
}

/**
 * Narrowing: XTN (0), SQXTN (1), UQXTN (2), SQXTUN (3). Vector forms write the lower half (zeroing the upper)
 * or, for the "2" forms, the upper half; the scalar forms write one element.
 */
function narrow(c: Cpu, i: number, kind: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const size = (i >>> 22) & 3, q = (i >>> 30) & 1, scalar = (i >>> 28) & 1;
  if (size === 3) { c.undefinedInstruction(i); return; }
  const d = i & 31, n = (i >>> 5) & 31, elems = scalar !== 0 ? 1 : 8 >> size;
  const v = c.vi32;
  for (let e = 0; e < elems; e++) {
    let r: number;
    if (size < 2) {
      const a = get(c, n, e, size + 1, kind === 1 || kind === 3);
      r = kind === 0 ? a : kind === 2 ? satU(c, a, size) : kind === 1 ? satS(c, a, size) : satU(c, a, size);
    } else {
      const lo = v[(n << 2) + 2 * e], hi = v[(n << 2) + 2 * e + 1];
      if (kind === 0) r = lo;
      else if (kind === 1) {
        if (hi === lo >> 31) r = lo; else { c.fpsr |= QC; r = hi < 0 ? -0x80000000 : 0x7fffffff; }
      } else if (kind === 2) {
        if (hi === 0) r = lo; else { c.fpsr |= QC; r = -1; }
      } else {
        if (hi === 0) r = lo; else { c.fpsr |= QC; r = hi < 0 ? 0 : -1; }
      }
    }
    T32[e] = r;
  }
  if (scalar !== 0) { put(c, d, 0, size, T32[0]); finishScalar(c, d, size); return; }
  const part = q ? elems : 0;
  for (let e = 0; e < elems; e++) put(c, d, e + part, size, T32[e]);
  finish(c, d, q);
}

/** SHLL/SHLL2: widen and shift left by the source element size. */
function shll(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const size = (i >>> 22) & 3, q = (i >>> 30) & 1;
  if (size === 3) { c.undefinedInstruction(i); return; }
  const d = i & 31, n = (i >>> 5) & 31, elems = 8 >> size, part = q ? elems : 0;
  for (let e = 0; e < elems; e++) T32[e] = getU(c, n, e + part, size);
  if (size < 2) {
    const mul = size === 0 ? 256 : 65536;
    for (let e = 0; e < elems; e++) put(c, d, e, size + 1, T32[e] * mul);
  } else {
    for (let e = 0; e < elems; e++) { c.vi32[(d << 2) + 2 * e] = 0; c.vi32[(d << 2) + 2 * e + 1] = T32[e]; }
  }
}

/** Across lanes: ADDV (0), SADDLV/UADDLV (1), SMAXV/UMAXV (2), SMINV/UMINV (3). */
function acrossLanes(c: Cpu, i: number, kind: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const size = (i >>> 22) & 3, q = (i >>> 30) & 1, signed = ((i >>> 29) & 1) === 0;
  if (size === 3 || (size === 2 && q === 0)) { c.undefinedInstruction(i); return; }
  const d = i & 31, n = (i >>> 5) & 31, elems = (8 << q) >> size;
  let r = get(c, n, 0, size, signed);
  if (kind === 3 && size === 0 && !signed) {
    // UMINV .16B/.8B (string routines).
    const u = c.vu8, b = n << 4;
    for (let e = 1; e < elems; e++) if (u[b + e] < r) r = u[b + e];
  } else {
    for (let e = 1; e < elems; e++) {
      const x = get(c, n, e, size, signed);
      r = kind <= 1 ? r + x : kind === 2 ? (x > r ? x : r) : (x < r ? x : r);
    }
  }
  if (kind === 1) {
    if (size === 2) {
      const lo = fromNumber(r);
      c.vi32[d << 2] = lo; c.vi32[(d << 2) + 1] = R[0];
      clearHigh(c, d);
    } else { put(c, d, 0, size + 1, r); finishScalar(c, d, size + 1); }
    return;
  }
  put(c, d, 0, size, r);
  finishScalar(c, d, size);
}

/** ADDP Dd, Vn.2D. */
function addpScalar(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const d = i & 31, n = (i >>> 5) & 31, v = c.vi32;
  const lo = add64(v[n << 2], v[(n << 2) + 1], v[(n << 2) + 2], v[(n << 2) + 3]);
  v[d << 2] = lo; v[(d << 2) + 1] = R[0];
  clearHigh(c, d);
}

export function register(d: Decoder): void {
  const V = (u: string, op: string) => `0x${u}01110xx10000${op}10xxxxxxxxxx`;
  const S = (u: string, op: string) => `01${u}11110xx10000${op}10xxxxxxxxxx`;
  d.def(V("0", "00000"), "REV64", (c, i) => rev(c, i, 3));
  d.def(V("1", "00000"), "REV32", (c, i) => rev(c, i, 2));
  d.def(V("0", "00001"), "REV16", (c, i) => rev(c, i, 1));
  d.def(V("x", "00010"), "SADDLP/UADDLP", (c, i) => addlp(c, i, false));
  d.def(V("x", "00110"), "SADALP/UADALP", (c, i) => addlp(c, i, true));
  d.def(V("x", "00011"), "SUQADD/USQADD", sqaddAcc);
  d.def(S("x", "00011"), "SUQADD/USQADD (scalar)", sqaddAcc);
  d.def(V("0", "00100"), "CLS", (c, i) => bitCount(c, i, 0));
  d.def(V("1", "00100"), "CLZ", (c, i) => bitCount(c, i, 1));
  d.def(V("0", "00101"), "CNT", (c, i) => bitCount(c, i, 2));
  d.def("0x10111000100000010110xxxxxxxxxx", "NOT", (c, i) => bitCount(c, i, 3));
  d.def("0x10111001100000010110xxxxxxxxxx", "RBIT (vector)", (c, i) => bitCount(c, i, 4));
  const abs = (c: Cpu, i: number) => absNeg(c, i, 0), neg = (c: Cpu, i: number) => absNeg(c, i, 1);
  const sqabs = (c: Cpu, i: number) => absNeg(c, i, 2), sqneg = (c: Cpu, i: number) => absNeg(c, i, 3);
  for (const [f, name, u, op] of [[abs, "ABS", "0", "01011"], [neg, "NEG", "1", "01011"],
    [sqabs, "SQABS", "0", "00111"], [sqneg, "SQNEG", "1", "00111"]] as const) {
    d.def(V(u, op), name, f);
    d.def(S(u, op), name + " (scalar)", f);
  }
  for (const [kind, signed, u, op, name] of [[0, true, "0", "01000", "CMGT (zero)"], [1, true, "1", "01000", "CMGE (zero)"],
    [2, true, "0", "01001", "CMEQ (zero)"], [4, true, "1", "01001", "CMLE (zero)"], [5, true, "0", "01010", "CMLT (zero)"]] as const) {
    const h = (c: Cpu, i: number) => compare(c, i, kind, signed, true);
    d.def(V(u, op), name, h);
    d.def(S(u, op), name + " (scalar)", h);
  }
  d.def(V("0", "10010"), "XTN", (c, i) => narrow(c, i, 0));
  d.def(V("0", "10100"), "SQXTN", (c, i) => narrow(c, i, 1));
  d.def(V("1", "10100"), "UQXTN", (c, i) => narrow(c, i, 2));
  d.def(V("1", "10010"), "SQXTUN", (c, i) => narrow(c, i, 3));
  d.def(S("0", "10100"), "SQXTN (scalar)", (c, i) => narrow(c, i, 1));
  d.def(S("1", "10100"), "UQXTN (scalar)", (c, i) => narrow(c, i, 2));
  d.def(S("1", "10010"), "SQXTUN (scalar)", (c, i) => narrow(c, i, 3));
  d.def(V("1", "10011"), "SHLL", shll);
  const A = (u: string, op: string) => `0x${u}01110xx11000${op}10xxxxxxxxxx`;
  d.def(A("0", "11011"), "ADDV", (c, i) => acrossLanes(c, i, 0));
  d.def(A("x", "00011"), "SADDLV/UADDLV", (c, i) => acrossLanes(c, i, 1));
  d.def(A("x", "01010"), "SMAXV/UMAXV", (c, i) => acrossLanes(c, i, 2));
  d.def(A("x", "11010"), "SMINV/UMINV", (c, i) => acrossLanes(c, i, 3));
  d.def("0101111011110001101110xxxxxxxxxx", "ADDP (scalar)", addpScalar);
}
