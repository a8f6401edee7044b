/**
 * Advanced SIMD shift by immediate (vector and scalar) and modified immediate (MOVI/MVNI/ORR/BIC), Arm ARM
 * C4.1.95. The fixed-point conversions in the shift group (SCVTF/UCVTF/FCVTZS/FCVTZU) and FMOV (vector,
 * immediate) belong to simd-fp.ts and are not registered here.
 *
 *   shift by immediate:        0 Q U 011110 immh immb opcode(5) 1 Rn Rd    (immh != 0)
 *   scalar shift by immediate: 0 1 U 111110 immh immb opcode(5) 1 Rn Rd
 *   modified immediate:        0 Q op 0111100000 a b c cmode o2 1 d e f g h Rd
 *
 * immh's highest set bit gives the element size; right shifts are 2*esize - immh:immb, left shifts
 * immh:immb - esize. 64-bit lanes use (lo, hi) pairs, except the saturating forms (BigInt: rare).
 */
import type { Cpu } from "./cpu.js";
import type { Decoder } from "./decoder.js";
import { add64, R } from "../../common/int64.js";
import {
  T32, asr64, bit64, finish, finishScalar, get, getBig, getU, lsr64, put, putBig, sat, satBig, shl64,
} from "./simd-util.js";

/** Element size from immh (0 for immh = 0: caller refuses). */
function immhSize(immh: number): number {
  return immh >= 8 ? 3 : immh >= 4 ? 2 : immh >= 2 ? 1 : 0;
}

const P2 = new Float64Array(66);
for (let k = 0; k < 66; k++) P2[k] = Math.pow(2, k);

/** Shift kinds handled by shiftImm. */
const SSHR = 0, SSRA = 1, SRSHR = 2, SRSRA = 3, SRI = 4, SHL = 5, SLI = 6, SQSHLU = 7, SQSHL = 8;

/** Same-size shifts by immediate (vector and scalar). */
function shiftImm(c: Cpu, i: number, kind: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const immh = (i >>> 19) & 15, q = (i >>> 30) & 1, u = (i >>> 29) & 1, scalar = (i >>> 28) & 1;
  const size = immhSize(immh);
  // Scalar forms exist for D only, except the saturating left shifts.
  if (immh === 0 || (scalar === 0 && size === 3 && q === 0) || (scalar !== 0 && size !== 3 && kind < SQSHLU)) {
    c.undefinedInstruction(i); return;
  }
  const esize = 8 << size, immhb = (i >>> 16) & 127;
  const left = kind >= SHL;
  const sh = left ? immhb - esize : 2 * esize - immhb;
  const d = i & 31, n = (i >>> 5) & 31;
  const elems = scalar !== 0 ? 1 : (8 << q) >> size;
  const signed = u === 0;
  if (size === 3) {
    const v = c.vi32;
    for (let e = 0; e < elems; e++) {
      const kn = (n << 2) + 2 * e, kd = (d << 2) + 2 * e;
      const alo = v[kn], ahi = v[kn + 1], dlo = v[kd], dhi = v[kd + 1];
      let lo: number, hi: number;
      switch (kind) {
        case SSHR: case SSRA: case SRSHR: case SRSRA: {
          lo = signed ? asr64(alo, ahi, sh) : lsr64(alo, ahi, sh); hi = R[0];
          if (kind === SRSHR || kind === SRSRA) { lo = add64(lo, hi, bit64(alo, ahi, sh - 1, signed), 0); hi = R[0]; }
          if (kind === SSRA || kind === SRSRA) { lo = add64(lo, hi, dlo, dhi); hi = R[0]; }
          break;
        }
        case SRI: {
          if (sh === 64) { lo = dlo; hi = dhi; break; }
          const slo = lsr64(alo, ahi, sh), shi = R[0];
          const mlo = lsr64(-1, -1, sh), mhi = R[0];
          lo = slo | (dlo & ~mlo); hi = shi | (dhi & ~mhi);
          break;
        }
        case SHL: lo = shl64(alo, ahi, sh); hi = R[0]; break;
        case SLI: {
          const slo = shl64(alo, ahi, sh), shi = R[0];
          const mlo = shl64(-1, -1, sh), mhi = R[0];
          lo = slo | (dlo & ~mlo); hi = shi | (dhi & ~mhi);
          break;
        }
        default: {
          // SQSHL/UQSHL/SQSHLU on 64-bit lanes (rare): BigInt.
          const a = getBig(c, n, e, kind === SQSHLU || signed);
          putBig(c, d, e, satBig(c, a << BigInt(sh), kind === SQSHL && signed));
          continue;
        }
      }
      v[kd] = lo; v[kd + 1] = hi;
    }
  } else {
    const ones = esize === 32 ? 0xffffffff : (1 << esize) - 1;
    for (let e = 0; e < elems; e++) {
      let r: number;
      switch (kind) {
        case SSHR: case SSRA: case SRSHR: case SRSRA: {
          const a = get(c, n, e, size, signed);
          r = kind === SRSHR || kind === SRSRA ? Math.floor((a + P2[sh - 1]) / P2[sh]) : Math.floor(a / P2[sh]);
          if (kind === SSRA || kind === SRSRA) r += getU(c, d, e, size);
          break;
        }
        case SRI: {
          if (sh === esize) continue;
          const a = getU(c, n, e, size), x = getU(c, d, e, size);
          r = (a >>> sh) | (x & ~(ones >>> sh));
          break;
        }
        case SHL: r = getU(c, n, e, size) * P2[sh]; break;
        case SLI: r = (getU(c, n, e, size) << sh) | (getU(c, d, e, size) & ((1 << sh) - 1)); break;
        default: {
          const a = get(c, n, e, size, kind === SQSHLU || signed);
          r = a === 0 ? 0 : sat(c, a * P2[sh], size, kind === SQSHL && signed);
        }
      }
      put(c, d, e, size, r);
    }
  }
  if (scalar !== 0) finishScalar(c, d, size); else finish(c, d, q);
}

/**
 * Narrowing right shifts: SHRN/RSHRN (kind 0), SQSHRN/SQRSHRN (1), UQSHRN/UQRSHRN (2), SQSHRUN/SQRSHRUN (3).
 * Vector forms write the lower half (zeroing the upper) or, for the "2" forms, the upper half.
 */
function shiftNarrow(c: Cpu, i: number, kind: number, round: boolean): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const immh = (i >>> 19) & 15, q = (i >>> 30) & 1, scalar = (i >>> 28) & 1;
  if (immh === 0 || immh >= 8) { c.undefinedInstruction(i); return; }
  const size = immhSize(immh), esize = 8 << size, sh = 2 * esize - ((i >>> 16) & 127);
  const d = i & 31, n = (i >>> 5) & 31, elems = scalar !== 0 ? 1 : 8 >> size;
  const signedSrc = kind === 1 || kind === 3;
  for (let e = 0; e < elems; e++) {
    let r: number;
    if (size < 2) {
      const a = get(c, n, e, size + 1, signedSrc);
      r = round ? Math.floor((a + P2[sh - 1]) / P2[sh]) : Math.floor(a / P2[sh]);
      if (kind !== 0) r = sat(c, r, size, kind === 1);
    } else if (kind === 0) {
      const v = c.vi32, kn = (n << 2) + 2 * e, alo = v[kn], ahi = v[kn + 1];
      r = lsr64(alo, ahi, sh);
      if (round) r = (r + bit64(alo, ahi, sh - 1, false)) | 0;
    } else {
      // Saturating narrow from 64-bit lanes (rare): BigInt.
      const a = getBig(c, n, e, signedSrc), b = BigInt(sh);
      const s = round ? (a + (1n << (b - 1n))) >> b : a >> b;
      const lim = kind === 1 ? 0x7fffffffn : 0xffffffffn, low = kind === 1 ? -0x80000000n : 0n;
      r = Number(s > lim ? (c.fpsr |= 1 << 27, lim) : s < low ? (c.fpsr |= 1 << 27, low) : s);
    }
    T32[e] = r;
  }
  if (scalar !== 0) { put(c, d, 0, size, T32[0]); finishScalar(c, d, size); return; }
  const part = q ? elems : 0;
  for (let e = 0; e < elems; e++) put(c, d, e + part, size, T32[e]);
  finish(c, d, q);
}

/** SSHLL/USHLL (SXTL/UXTL): widen the lower or upper half and shift left. */
function shiftLong(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const immh = (i >>> 19) & 15, q = (i >>> 30) & 1, signed = ((i >>> 29) & 1) === 0;
  if (immh === 0 || immh >= 8) { c.undefinedInstruction(i); return; }
  const size = immhSize(immh), esize = 8 << size, sh = ((i >>> 16) & 127) - esize;
  const d = i & 31, n = (i >>> 5) & 31, elems = 8 >> size, part = q ? elems : 0;
  for (let e = 0; e < elems; e++) T32[e] = get(c, n, e + part, size, signed);
  if (size < 2) {
    for (let e = 0; e < elems; e++) put(c, d, e, size + 1, T32[e] * P2[sh]);
  } else {
    const v = c.vi32;
    for (let e = 0; e < elems; e++) {
      const a = T32[e];
      v[(d << 2) + 2 * e] = shl64(a, signed ? a >> 31 : 0, sh);
      v[(d << 2) + 2 * e + 1] = R[0];
    }
  }
}

/** MOVI/MVNI/ORR/BIC (vector, immediate): AdvSIMDExpandImm (Arm ARM J1, shared/functions/vector). */
function modImm(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const q = (i >>> 30) & 1, op = (i >>> 29) & 1, cmode = (i >>> 12) & 15;
  const imm8 = (((i >>> 16) & 7) << 5) | ((i >>> 5) & 31);
  const d = i & 31;
  let lo: number, hi: number;
  if (cmode < 8) {
    lo = hi = imm8 << (8 * (cmode >> 1));
  } else if (cmode < 12) {
    const h = imm8 << (8 * ((cmode >> 1) & 1));
    lo = hi = h | (h << 16);
  } else if (cmode === 12) {
    lo = hi = (imm8 << 8) | 0xff;
  } else if (cmode === 13) {
    lo = hi = (imm8 << 16) | 0xffff;
  } else if (op === 0) {
    lo = hi = imm8 * 0x01010101;
  } else {
    // MOVI 64-bit: each immediate bit becomes a byte of ones.
    lo = 0; hi = 0;
    for (let k = 0; k < 4; k++) {
      if ((imm8 >> k) & 1) lo |= 0xff << (8 * k);
      if ((imm8 >> (k + 4)) & 1) hi |= 0xff << (8 * k);
    }
  }
  const v = c.vi32, k = d << 2;
  const logic = (cmode & 1) === 1 && cmode < 12;
  if (logic) {
    // ORR (op = 0) or BIC (op = 1) into Vd.
    const words = q ? 4 : 2;
    for (let w = 0; w < words; w++) v[k + w] = op === 0 ? v[k + w] | lo : v[k + w] & ~lo;
  } else {
    const inv = op === 1 && cmode !== 14;
    if (inv) { lo = ~lo; hi = ~hi; }
    v[k] = lo; v[k + 1] = hi; v[k + 2] = lo; v[k + 3] = hi;
  }
  finish(c, d, q);
}

export function register(d: Decoder): void {
  const V = (u: string, op: string) => `0x${u}011110xxxxxxx${op}1xxxxxxxxxx`;
  const S = (u: string, op: string) => `01${u}111110xxxxxxx${op}1xxxxxxxxxx`;
  const both = (u: string, op: string, name: string, kind: number) => {
    const h = (c: Cpu, i: number) => shiftImm(c, i, kind);
    d.def(V(u, op), name, h);
    d.def(S(u, op), name + " (scalar)", h);
  };
  both("x", "00000", "SSHR/USHR", SSHR);
  both("x", "00010", "SSRA/USRA", SSRA);
  both("x", "00100", "SRSHR/URSHR", SRSHR);
  both("x", "00110", "SRSRA/URSRA", SRSRA);
  both("1", "01000", "SRI", SRI);
  both("0", "01010", "SHL", SHL);
  both("1", "01010", "SLI", SLI);
  both("1", "01100", "SQSHLU", SQSHLU);
  both("x", "01110", "SQSHL/UQSHL (immediate)", SQSHL);
  const nar = (u: string, op: string, name: string, kind: number, round: boolean, scalar: boolean) => {
    const h = (c: Cpu, i: number) => shiftNarrow(c, i, kind, round);
    d.def(V(u, op), name, h);
    if (scalar) d.def(S(u, op), name + " (scalar)", h);
  };
  nar("0", "10000", "SHRN", 0, false, false);
  nar("0", "10001", "RSHRN", 0, true, false);
  nar("1", "10000", "SQSHRUN", 3, false, true);
  nar("1", "10001", "SQRSHRUN", 3, true, true);
  nar("0", "10010", "SQSHRN", 1, false, true);
  nar("0", "10011", "SQRSHRN", 1, true, true);
  nar("1", "10010", "UQSHRN", 2, false, true);
  nar("1", "10011", "UQRSHRN", 2, true, true);
  d.def(V("x", "10100"), "SSHLL/USHLL", shiftLong);
  // Modified immediate, o2 = 0; cmode 1111 (FMOV) is left to simd-fp.ts.
  // The op bit is fixed in each pattern so these are more specific than the shift-by-immediate patterns that
  // also match immh = 0.
  for (const op of ["0", "1"]) {
    d.def(`0x${op}0111100000xxx0xxx01xxxxxxxxxx`, "MOVI/MVNI/ORR/BIC (vector, immediate)", modImm);
    d.def(`0x${op}0111100000xxx10xx01xxxxxxxxxx`, "MOVI/MVNI/ORR/BIC (vector, immediate)", modImm);
    d.def(`0x${op}0111100000xxx110x01xxxxxxxxxx`, "MOVI/MVNI (vector, immediate, MSL)", modImm);
    d.def(`0x${op}0111100000xxx111001xxxxxxxxxx`, "MOVI (vector, immediate, 8/64-bit)", modImm);
  }
}
