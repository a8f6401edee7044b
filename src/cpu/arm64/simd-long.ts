/**
 * Advanced SIMD three different (Arm ARM C4.1.95: widening, wide and narrowing ops), the scalar three different
 * group (SQDMLAL/SQDMLSL/SQDMULL), and the integer "by element" groups (vector and scalar x indexed element).
 *
 *   three different:    0 Q U 01110 size 1 Rm opcode(4) 00 Rn Rd     (Q=1: the "2" forms, upper half sources)
 *   scalar three diff:  0 1 U 11110 size 1 Rm opcode(4) 00 Rn Rd
 *   by element:         0 Q U 01111 size L M Rm opcode(4) H 0 Rn Rd
 *   scalar by element:  0 1 U 11111 size L M Rm opcode(4) H 0 Rn Rd
 *
 * Widening results are computed into scratch (as 64-bit (lo, hi) pairs) before Vd is written, because Vd may
 * alias a source whose later elements the wider result overwrites.
 */
import type { Cpu } from "./cpu.js";
import type { Decoder } from "./decoder.js";
import { add64, sub64, fromNumber, umulhi32, R } from "../../common/int64.js";
import { T32, finish, finishScalar, get, put, sat, smulhi32, QC } from "./simd-util.js";
import { pmul8, sqdmulh } from "./simd-same.js";

/** Long opcodes (bits 15:12 of three-different). */
const ADDL = 0, ADDW = 1, SUBL = 2, SUBW = 3, ADDHN = 4, ABAL = 5, SUBHN = 6, ABDL = 7, MLAL = 8, QDMLAL = 9,
  MLSL = 10, QDMLSL = 11, MULL = 12, QDMULL = 13, PMULL = 14;

/** Saturating signed 64-bit add of pairs; returns lo, R[0] = hi. */
function sqadd64(c: Cpu, alo: number, ahi: number, blo: number, bhi: number): number {
  const lo = add64(alo, ahi, blo, bhi), hi = R[0];
  if (((ahi ^ bhi) & 0x80000000) === 0 && ((ahi ^ hi) & 0x80000000) !== 0) {
    c.fpsr |= QC;
    R[0] = ahi < 0 ? -0x80000000 : 0x7fffffff;
    return ahi < 0 ? 0 : -1;
  }
  return lo;
}

/**
 * Computes `elems` widened results of op `opc` into T32 pairs. Sources: narrow elements of Vn at e + part (or the
 * wide Vn element e for the W forms) and of Vm at e + part, or Vm's element `mIdx` when mIdx >= 0 (by element).
 * `acc` ops read Vd's wide element e.
 */
function longCore(c: Cpu, opc: number, signed: boolean, size: number, part: number, elems: number,
  d: number, n: number, m: number, mIdx: number): void {
  const ws = size + 1;
  if (size < 2) {
    for (let e = 0; e < elems; e++) {
      const a = opc === ADDW || opc === SUBW ? get(c, n, e, ws, signed) : get(c, n, e + part, size, signed);
      const b = get(c, m, mIdx >= 0 ? mIdx : e + part, size, signed);
      let r: number;
      switch (opc) {
        case ADDL: case ADDW: r = a + b; break;
        case SUBL: case SUBW: r = a - b; break;
        case ABAL: r = get(c, d, e, ws, false) + Math.abs(a - b); break;
        case ABDL: r = Math.abs(a - b); break;
        case MLAL: r = get(c, d, e, ws, false) + a * b; break;
        case MLSL: r = get(c, d, e, ws, false) - a * b; break;
        case MULL: r = a * b; break;
        case QDMULL: r = sat(c, 2 * a * b, ws, true); break;
        case QDMLAL: r = sat(c, get(c, d, e, ws, true) + sat(c, 2 * a * b, ws, true), ws, true); break;
        case QDMLSL: r = sat(c, get(c, d, e, ws, true) - sat(c, 2 * a * b, ws, true), ws, true); break;
        default: r = pmul8(a & 0xff, b & 0xff); // PMULL.8B
      }
      T32[e] = r;
    }
    for (let e = 0; e < elems; e++) put(c, d, e, ws, T32[e]);
    return;
  }
  // size = 2: 32-bit sources, 64-bit results as (lo, hi) pairs.
  const v = c.vi32;
  for (let e = 0; e < elems; e++) {
    const kd = (d << 2) + 2 * e;
    const b = get(c, m, mIdx >= 0 ? mIdx : e + part, 2, signed);
    let lo: number, hi: number;
    if (opc === ADDW || opc === SUBW) {
      const kn = (n << 2) + 2 * e;
      const bhi = signed && b < 0 ? -1 : 0;
      lo = opc === ADDW ? add64(v[kn], v[kn + 1], b, bhi) : sub64(v[kn], v[kn + 1], b, bhi);
      hi = R[0];
    } else {
      const a = get(c, n, e + part, 2, signed);
      switch (opc) {
        case ADDL: lo = fromNumber(a + b); hi = R[0]; break;
        case SUBL: lo = fromNumber(a - b); hi = R[0]; break;
        case ABDL: lo = fromNumber(Math.abs(a - b)); hi = R[0]; break;
        case ABAL: {
          const x = fromNumber(Math.abs(a - b)), xh = R[0];
          lo = add64(v[kd], v[kd + 1], x, xh); hi = R[0];
          break;
        }
        default: {
          // Products: exact 64-bit a*b.
          const plo = Math.imul(a, b), phi = signed ? smulhi32(a, b) : umulhi32(a, b);
          if (opc === MULL) { lo = plo; hi = phi; }
          else if (opc === MLAL) { lo = add64(v[kd], v[kd + 1], plo, phi); hi = R[0]; }
          else if (opc === MLSL) { lo = sub64(v[kd], v[kd + 1], plo, phi); hi = R[0]; }
          else {
            // Saturating doubling: 2*a*b overflows only for MIN * MIN.
            let dlo: number, dhi: number;
            if (a === -0x80000000 && b === -0x80000000) { c.fpsr |= QC; dlo = -1; dhi = 0x7fffffff; }
            else { dlo = plo << 1; dhi = (phi << 1) | (plo >>> 31); }
            if (opc === QDMULL) { lo = dlo; hi = dhi; }
            else if (opc === QDMLAL) { lo = sqadd64(c, v[kd], v[kd + 1], dlo, dhi); hi = R[0]; }
            else {
              // acc - p = acc + (-p), but -MIN overflows: saturate directly in that case.
              if (dlo === 0 && dhi === -0x80000000) {
                if (v[kd + 1] >= 0) { c.fpsr |= QC; lo = -1; hi = 0x7fffffff; }
                else { lo = sub64(v[kd], v[kd + 1], dlo, dhi); hi = R[0]; }
              } else {
                const nlo = sub64(0, 0, dlo, dhi), nhi = R[0];
                lo = sqadd64(c, v[kd], v[kd + 1], nlo, nhi); hi = R[0];
              }
            }
          }
        }
      }
    }
    T32[2 * e] = lo; T32[2 * e + 1] = hi;
  }
  for (let e = 0; e < elems; e++) { v[(d << 2) + 2 * e] = T32[2 * e]; v[(d << 2) + 2 * e + 1] = T32[2 * e + 1]; }
}

/** ADDHN/RADDHN/SUBHN/RSUBHN: high halves of wide sums/differences, written to the lower or upper half. */
function narrowHigh(c: Cpu, i: number, sub: boolean, round: boolean): void {
  const size = (i >>> 22) & 3, q = (i >>> 30) & 1;
  if (size === 3) { c.undefinedInstruction(i); return; }
  const d = i & 31, n = (i >>> 5) & 31, m = (i >>> 16) & 31;
  const elems = 8 >> size, ws = size + 1;
  if (size < 2) {
    const esz = 8 << size, r = round ? 1 << (esz - 1) : 0, div = esz === 8 ? 256 : 65536;
    for (let e = 0; e < elems; e++) {
      const a = get(c, n, e, ws, false), b = get(c, m, e, ws, false);
      T32[e] = Math.floor(((sub ? a - b : a + b) + r) / div);
    }
  } else {
    const v = c.vi32;
    for (let e = 0; e < elems; e++) {
      const kn = (n << 2) + 2 * e, km = (m << 2) + 2 * e;
      const lo = sub ? sub64(v[kn], v[kn + 1], v[km], v[km + 1]) : add64(v[kn], v[kn + 1], v[km], v[km + 1]);
      let hi = R[0];
      if (round && (lo >>> 0) >= 0x80000000) hi = (hi + 1) | 0;
      T32[e] = hi;
    }
  }
  const part = q ? elems : 0;
  for (let e = 0; e < elems; e++) put(c, d, e + part, size, T32[e]);
  finish(c, d, q);
}

/** Three different, all opcodes. */
function threeDiff(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const size = (i >>> 22) & 3, q = (i >>> 30) & 1, u = (i >>> 29) & 1, opc = (i >>> 12) & 15;
  const scalar = (i >>> 28) & 1;
  if (opc === ADDHN || opc === SUBHN) {
    narrowHigh(c, i, opc === SUBHN, u === 1);
    return;
  }
  const qd = opc === QDMLAL || opc === QDMLSL || opc === QDMULL;
  if (size === 3 || opc === 15 || (u === 1 && (qd || opc === PMULL)) || (qd && size === 0) ||
    (opc === PMULL && size !== 0) || (scalar !== 0 && !qd)) {
    c.undefinedInstruction(i); return;
  }
  const d = i & 31, n = (i >>> 5) & 31, m = (i >>> 16) & 31;
  const elems = scalar !== 0 ? 1 : 8 >> size;
  longCore(c, opc, u === 0, size, scalar !== 0 ? 0 : q * elems, elems, d, n, m, -1);
  if (scalar !== 0) finishScalar(c, d, size + 1);
}

/** By-element index and Vm register (size 1: H:L:M and Rm<3:0>; size 2: H:L and M:Rm). */
function elemIndex(i: number, size: number): number {
  const h = (i >>> 11) & 1, l = (i >>> 21) & 1, mbit = (i >>> 20) & 1;
  return size === 1 ? (h << 2) | (l << 1) | mbit : (h << 1) | l;
}
function elemReg(i: number, size: number): number {
  return size === 1 ? (i >>> 16) & 15 : (i >>> 16) & 31;
}

/** By element, integer opcodes. */
function byElement(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const size = (i >>> 22) & 3, q = (i >>> 30) & 1, u = (i >>> 29) & 1, opc = (i >>> 12) & 15;
  const scalar = (i >>> 28) & 1;
  if (size === 0 || size === 3) { c.undefinedInstruction(i); return; }
  const d = i & 31, n = (i >>> 5) & 31, m = elemReg(i, size), idx = elemIndex(i, size);
  if (opc === 0 || opc === 4 || opc === 8 || opc === 12 || opc === 13) {
    // Same-size: MLA (U=1,0000), MLS (U=1,0100), MUL (U=0,1000), SQDMULH (1100), SQRDMULH (1101).
    const elems = scalar !== 0 ? 1 : (8 << q) >> size;
    const b = get(c, m, idx, size, true);
    for (let e = 0; e < elems; e++) {
      const a = get(c, n, e, size, true);
      let r: number;
      switch (opc) {
        case 0: r = get(c, d, e, size, true) + Math.imul(a, b); break;
        case 4: r = get(c, d, e, size, true) - Math.imul(a, b); break;
        case 8: r = Math.imul(a, b); break;
        default: r = sqdmulh(c, a, b, size, opc === 13);
      }
      put(c, d, e, size, r);
    }
    if (scalar !== 0) finishScalar(c, d, size); else finish(c, d, q);
    return;
  }
  // Long: SMLAL/UMLAL 0010, SQDMLAL 0011, SMLSL/UMLSL 0110, SQDMLSL 0111, SMULL/UMULL 1010, SQDMULL 1011.
  const lop = opc === 2 ? MLAL : opc === 3 ? QDMLAL : opc === 6 ? MLSL : opc === 7 ? QDMLSL : opc === 10 ? MULL : QDMULL;
  const elems = scalar !== 0 ? 1 : 4 >> (size - 1);
  longCore(c, lop, u === 0, size, scalar !== 0 ? 0 : q * elems, elems, d, n, m, idx);
  if (scalar !== 0) finishScalar(c, d, size + 1);
}

export function register(d: Decoder): void {
  // Three different: every opcode except 1111 (unallocated); reserved combinations are refused in threeDiff.
  d.def("0xx01110xx1xxxxx0xxx00xxxxxxxxxx", "Advanced SIMD three different", threeDiff);
  d.def("0xx01110xx1xxxxx10xx00xxxxxxxxxx", "Advanced SIMD three different", threeDiff);
  d.def("0xx01110xx1xxxxx110x00xxxxxxxxxx", "Advanced SIMD three different", threeDiff);
  d.def("0xx01110xx1xxxxx111000xxxxxxxxxx", "PMULL", threeDiff);
  for (const op of ["1001", "1011", "1101"]) {
    d.def(`01011110xx1xxxxx${op}00xxxxxxxxxx`, "SQDMLAL/SQDMLSL/SQDMULL (scalar)", threeDiff);
  }
  // By element (integer). U=0: 0010 0011 0110 0111 1000 1010 1011 1100 1101; U=1: 0000 0010 0100 0110 1010.
  for (const op of ["0010", "0011", "0110", "0111", "1000", "1010", "1011", "1100", "1101"]) {
    d.def(`0x001111xxxxxxxx${op}x0xxxxxxxxxx`, "Advanced SIMD vector x indexed element (integer)", byElement);
  }
  for (const op of ["0000", "0010", "0100", "0110", "1010"]) {
    d.def(`0x101111xxxxxxxx${op}x0xxxxxxxxxx`, "Advanced SIMD vector x indexed element (integer)", byElement);
  }
  for (const op of ["0011", "0111", "1011", "1100", "1101"]) {
    d.def(`01011111xxxxxxxx${op}x0xxxxxxxxxx`, "Advanced SIMD scalar x indexed element (integer)", byElement);
  }
}
