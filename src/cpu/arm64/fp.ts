/**
 * Scalar floating point (Arm ARM C4.1.95 "Data Processing -- Scalar Floating-Point and Advanced SIMD") and the
 * IEEE 754 core shared with the Advanced SIMD FP group (simd-fp.ts).
 *
 * Model. Values are read from the V register file as JS doubles (c.vf64 / c.vf32) and computed with JS
 * arithmetic in round-to-nearest, which is exactly IEEE for double; single-precision results use Math.fround,
 * exact for + - * / sqrt (53 >= 2*24+2, so the double rounding is harmless). Everything Arm specifies beyond
 * that is done here, following the Arm ARM pseudocode (FPProcessNaNs, FPRound, FPRoundInt, FPToFixed, FixedToFP,
 * FPMulAdd, FPRecipEstimate, FPRSqrtEstimate):
 *  - NaNs never come from JS arithmetic: a NaN result is built from the operands' integer bits (first signalling
 *    NaN quieted, else first quiet NaN; the default NaN for invalid operations or FPCR.DN) and returned as bits
 *    in NANW; writers store those bits as integers (Float64Array stores may canonicalize NaN payloads).
 *  - Rounding modes, IXC/UFC/OFC, FPCR.FZ: from the round-to-nearest result r and the sign of the residual
 *    (exact - r), obtained with error-free transforms (TwoSum, Dekker's TwoProduct), with a BigInt exact
 *    fallback where those could lose bits (huge/tiny operands). The residual is only computed when it can matter:
 *    a non-nearest rounding mode, IXC not yet set (the flags are cumulative, so once set the check is free), a
 *    tiny or infinite result.
 *  - Single precision from a double that is not exact (fused multiply-add, 64-bit integer sources) uses
 *    round-to-odd to the double first, which makes the second rounding correct.
 *  - Fused multiply-add on doubles: Dekker product + TwoSum chain with a check that the final rounding is
 *    decided; otherwise exact BigInt arithmetic (rare).
 *
 * This file is larger than the usual module: the IEEE core and the scalar handlers are kept together because the
 * group list (isa.ts) is fixed; the core is exported for simd-fp.ts.
 */
import type { Decoder, Handler } from "./decoder.js";
import type { Cpu } from "./cpu.js";
import { COND } from "./state.js";
import { setW, setX } from "./regs.js";

// ---------------------------------------------------------------------------------------------------------------
// FPCR / FPSR bits (Arm ARM D17.2.48 FPCR, D17.2.49 FPSR)

export const FPCR_AHP = 1 << 26, FPCR_DN = 1 << 25, FPCR_FZ = 1 << 24, FPCR_RMODE = 3 << 22;
export const IOC = 1, DZC = 2, OFC = 4, UFC = 8, IXC = 16, IDC = 128;

/** Rounding modes (FPCR.RMode encoding), plus TIEAWAY for FCVTA/FRINTA and ODD for FCVTXN. */
export const RN = 0, RP = 1, RM = 2, RZ = 3, TIEAWAY = 4, ODD = 5;

const MIN_D = 2.2250738585072014e-308; // smallest normal double, 2^-1022
const MIN_S = 1.1754943508222875e-38; // 2^-126
const MAX_D = 1.7976931348623157e308;
const MAX_S = 3.4028234663852886e38;
const TWO32 = 4294967296;

/** NaN result bits of the last core operation that returned NaN: double [lo, hi]; single in [0]. */
export const NANW = new Int32Array(2);

// Scratch for bit casts (reused; no allocation per instruction).
const SF64 = new Float64Array(1);
const SI64 = new Int32Array(SF64.buffer);
const SF32 = new Float32Array(1);
const SI32 = new Int32Array(SF32.buffer);

/** Integer results of FP->int conversions: lo is returned, hi here. */
export const IHI = new Int32Array(1);

// ---------------------------------------------------------------------------------------------------------------
// Bit helpers

export function isNaND(hi: number, lo: number): boolean {
  return (hi & 0x7ff00000) === 0x7ff00000 && ((hi & 0xfffff) | lo) !== 0;
}
export function isSNaND(hi: number, lo: number): boolean {
  return (hi & 0x7ff80000) === 0x7ff00000 && ((hi & 0x7ffff) | lo) !== 0;
}
export function isNaNS(w: number): boolean { return (w & 0x7f800000) === 0x7f800000 && (w & 0x7fffff) !== 0; }
export function isSNaNS(w: number): boolean { return (w & 0x7fc00000) === 0x7f800000 && (w & 0x3fffff) !== 0; }

/** 2^k as a double, exact for -1074 <= k <= 1023. */
export function pow2(k: number): number {
  if (k >= -1022) { SI64[0] = 0; SI64[1] = (k + 1023) << 20; } else {
    const s = k + 1074;
    if (s >= 32) { SI64[0] = 0; SI64[1] = 1 << (s - 32); } else { SI64[0] = 1 << s; SI64[1] = 0; }
  }
  return SF64[0];
}

function nextUpD(r: number): number {
  if (r === 0) return 5e-324;
  SF64[0] = r;
  if (r > 0) { if (++SI64[0] === 0) SI64[1]++; } else { if (SI64[0]-- === 0) SI64[1]--; }
  return SF64[0];
}
function nextDownD(r: number): number { return -nextUpD(-r); }
function nextUpS(r: number): number {
  if (r === 0) return 1.401298464324817e-45;
  SF32[0] = r;
  if (r > 0) SI32[0]++; else SI32[0]--;
  return SF32[0];
}
function nextDownS(r: number): number { return -nextUpS(-r); }

/** Bits of a double (lo returned, hi in IHI[0]); NaN-safe only for non-NaN values. */
export function bitsD(v: number): number { SF64[0] = v; IHI[0] = SI64[1]; return SI64[0]; }
export function fromBitsD(lo: number, hi: number): number { SI64[0] = lo; SI64[1] = hi; return SF64[0]; }
export function bitsS(v: number): number { SF32[0] = v; return SI32[0]; }
export function fromBitsS(w: number): number { SI32[0] = w; return SF32[0]; }

// ---------------------------------------------------------------------------------------------------------------
// NaNs (Arm ARM FPProcessNaN / FPProcessNaNs / FPProcessNaNs3)

/** Picks the NaN result of up to three operands (pass 0,0 for absent ones); bits into NANW; returns NaN. */
export function pickNaND(c: Cpu, ahi: number, alo: number, bhi: number, blo: number, chi: number, clo: number): number {
  let hi: number, lo: number;
  if (isSNaND(ahi, alo)) { hi = ahi; lo = alo; } else if (isSNaND(bhi, blo)) { hi = bhi; lo = blo; }
  else if (isSNaND(chi, clo)) { hi = chi; lo = clo; } else if (isNaND(ahi, alo)) { hi = ahi; lo = alo; }
  else if (isNaND(bhi, blo)) { hi = bhi; lo = blo; } else { hi = chi; lo = clo; }
  if ((hi & 0x80000) === 0) c.fpsr |= IOC;
  if ((c.fpcr & FPCR_DN) !== 0) { NANW[0] = 0; NANW[1] = 0x7ff80000; } else { NANW[0] = lo; NANW[1] = hi | 0x80000; }
  return NaN;
}
export function pickNaNS(c: Cpu, a: number, b: number, d: number): number {
  let w: number;
  if (isSNaNS(a)) w = a; else if (isSNaNS(b)) w = b; else if (isSNaNS(d)) w = d;
  else if (isNaNS(a)) w = a; else if (isNaNS(b)) w = b; else w = d;
  if ((w & 0x400000) === 0) c.fpsr |= IOC;
  NANW[0] = (c.fpcr & FPCR_DN) !== 0 ? 0x7fc00000 : w | 0x400000;
  return NaN;
}
/** The default NaN for an invalid operation (sets IOC). */
export function invalidD(c: Cpu): number { c.fpsr |= IOC; NANW[0] = 0; NANW[1] = 0x7ff80000; return NaN; }
export function invalidS(c: Cpu): number { c.fpsr |= IOC; NANW[0] = 0x7fc00000; return NaN; }

/** Writes a core result (NaN: from NANW) to the double at vf64 index k of `c` (any register file view). */
export function putD(c: Cpu, k: number, r: number): void {
  if (r !== r) { c.vi32[2 * k] = NANW[0]; c.vi32[2 * k + 1] = NANW[1]; } else c.vf64[k] = r;
}
export function putS(c: Cpu, k: number, r: number): void {
  if (r !== r) c.vi32[k] = NANW[0]; else c.vf32[k] = r;
}

// ---------------------------------------------------------------------------------------------------------------
// Flush-to-zero, rounding, exception flags (Arm ARM FPUnpack, FPRound)

export function fzD(c: Cpu, a: number): number {
  if (a !== 0 && a > -MIN_D && a < MIN_D) { c.fpsr |= IDC; return a < 0 ? -0 : 0; }
  return a;
}
export function fzS(c: Cpu, a: number): number {
  if (a !== 0 && a > -MIN_S && a < MIN_S) { c.fpsr |= IDC; return a < 0 ? -0 : 0; }
  return a;
}

/** True when the residual of a round-to-nearest result r can change the result or the flags. */
export function needD(c: Cpu, r: number): boolean {
  const x = r < 0 ? -r : r;
  return (c.fpsr & IXC) === 0 || (c.fpcr & FPCR_RMODE) !== 0 || x <= MIN_D || x === Infinity;
}
export function needS(c: Cpu, r: number): boolean {
  const x = r < 0 ? -r : r;
  return (c.fpsr & IXC) === 0 || (c.fpcr & FPCR_RMODE) !== 0 || x <= MIN_S || x === Infinity;
}

/**
 * Set by a caller whose round-to-nearest result overflowed: whether the exact magnitude reaches 2^(emax+1), in
 * which case a truncating rounding mode overflows too (Arm FPRound checks the exponent after rounding).
 * Consumed (reset to true) by the overflow path.
 */
let ovGE = true;
function overflowD(c: Cpu, neg: boolean, rm: number): number {
  const big = ovGE;
  ovGE = true;
  if (rm === RN || (rm === RP && !neg) || (rm === RM && neg)) { c.fpsr |= OFC | IXC; return neg ? -Infinity : Infinity; }
  c.fpsr |= big ? OFC | IXC : IXC;
  return neg ? -MAX_D : MAX_D;
}
function overflowS(c: Cpu, neg: boolean, rm: number): number {
  const big = ovGE;
  ovGE = true;
  if (rm === RN || (rm === RP && !neg) || (rm === RM && neg)) { c.fpsr |= OFC | IXC; return neg ? -Infinity : Infinity; }
  c.fpsr |= big ? OFC | IXC : IXC;
  return neg ? -MAX_S : MAX_S;
}
const TWO128 = 2.0 ** 128, TWO1023 = 2.0 ** 1023;

/**
 * FPRound for doubles: r is the round-to-nearest result and res has the sign of (exact - r), 0 iff exact
 * (for an overflowed r, res is non-zero). Applies FPCR.RMode and FZ and sets IXC/UFC/OFC.
 */
export function finD(c: Cpu, r: number, res: number): number {
  const fpcr = c.fpcr;
  const rm = (fpcr >>> 22) & 3;
  if (r === Infinity || r === -Infinity) return res !== 0 ? overflowD(c, r < 0, rm) : r;
  const x = r < 0 ? -r : r;
  if (x <= MIN_D) {
    // Tininess is detected before rounding (Arm FPRound): exact magnitude below 2^-1022.
    const tiny = x < MIN_D ? (x !== 0 || res !== 0) : res !== 0 && (res < 0) !== (r < 0);
    if (tiny) {
      if ((fpcr & FPCR_FZ) !== 0) { c.fpsr |= UFC; return (r !== 0 ? r < 0 : res < 0) ? -0 : 0; }
      if (res !== 0) c.fpsr |= UFC;
    }
  }
  if (res === 0) return r;
  c.fpsr |= IXC;
  if (rm === RN) return r;
  if (rm === RP) { if (res > 0) r = nextUpD(r); }
  else if (rm === RM) { if (res < 0) r = nextDownD(r); }
  else if (r > 0 && res < 0) r = nextDownD(r);
  else if (r < 0 && res > 0) r = nextUpD(r);
  if (r === Infinity || r === -Infinity) c.fpsr |= OFC;
  return r;
}

/** FPRound for singles: r = fround(exact) in round-to-nearest, res has the sign of (exact - r). */
export function finS(c: Cpu, r: number, res: number): number {
  const fpcr = c.fpcr;
  const rm = (fpcr >>> 22) & 3;
  if (r === Infinity || r === -Infinity) return res !== 0 ? overflowS(c, r < 0, rm) : r;
  const x = r < 0 ? -r : r;
  if (x <= MIN_S) {
    const tiny = x < MIN_S ? (x !== 0 || res !== 0) : res !== 0 && (res < 0) !== (r < 0);
    if (tiny) {
      if ((fpcr & FPCR_FZ) !== 0) { c.fpsr |= UFC; return (r !== 0 ? r < 0 : res < 0) ? -0 : 0; }
      if (res !== 0) c.fpsr |= UFC;
    }
  }
  if (res === 0) return r;
  c.fpsr |= IXC;
  if (rm === RN) return r;
  if (rm === RP) { if (res > 0) r = nextUpS(r); }
  else if (rm === RM) { if (res < 0) r = nextDownS(r); }
  else if (r > 0 && res < 0) r = nextDownS(r);
  else if (r < 0 && res > 0) r = nextUpS(r);
  if (r === Infinity || r === -Infinity) c.fpsr |= OFC;
  return r;
}

/**
 * Rounds the exact value d + t (d a double, t the exact error or anything with its sign) to single precision
 * with FPRound semantics. Round-to-odd to double first makes the single rounding correct.
 */
export function roundOddToS(c: Cpu, d: number, t: number): number {
  if (d === Infinity || d === -Infinity) return d; // exact infinity (operands infinite)
  if (t !== 0) {
    SF64[0] = d;
    if ((SI64[0] & 1) === 0) d = t > 0 ? nextUpD(d) : nextDownD(d);
  }
  const r = Math.fround(d);
  if (r === Infinity || r === -Infinity) ovGE = d >= TWO128 || d <= -TWO128;
  return finS(c, r, d - r);
}

/** Error of s = RN(a + b) (TwoSum): a + b = s + err exactly; for an overflowed s, returns s (non-zero). */
export function twoSumErr(a: number, b: number, s: number): number {
  if (s - s !== 0) return (a - a === 0 && b - b === 0) ? s : 0;
  const bb = s - a;
  return (a - (s - bb)) + (b - bb);
}

const SPLIT = 134217729; // 2^27 + 1 (Dekker/Veltkamp)
/** Error of p = RN(a * b): a*b = p + err. Only exact for |a|,|b| < 2^995 and |p| >= 2^-960 (caller checks). */
function twoProdErr(a: number, b: number, p: number): number {
  let t = SPLIT * a;
  const ah = t - (t - a), al = a - ah;
  t = SPLIT * b;
  const bh = t - (t - b), bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}
const BIG = 2.0 ** 990, SMALL = 2.0 ** -960;
function prodSafe(a: number, b: number, p: number): boolean {
  const x = a < 0 ? -a : a, y = b < 0 ? -b : b, z = p < 0 ? -p : p;
  return x < BIG && y < BIG && z < BIG && z > SMALL;
}

// Exact arithmetic (BigInt) for the rare cases the error-free transforms cannot handle.
let BM = 0n; // mantissa of the last decompose (BigInt), exponent below
let BE = 0;
/** x (finite, non-zero) = BM * 2^BE exactly; returns true when negative. Rare path (allocates BigInts). */
function decompose(x: number): boolean {
  SF64[0] = x;
  const hi = SI64[1], lo = SI64[0];
  const e = (hi >>> 20) & 0x7ff;
  const mhi = (hi & 0xfffff) + (e === 0 ? 0 : 0x100000);
  BM = (BigInt(mhi) << 32n) | BigInt(lo >>> 0);
  BE = (e === 0 ? 1 : e) - 1075;
  return hi < 0;
}
/** Sign of (x*y - z) exactly, for finite x, y, z. */
function cmpProd(x: number, y: number, z: number): number {
  let p = 0n, pe = 0;
  if (x !== 0 && y !== 0) {
    const nx = decompose(x); const mx = BM, ex = BE;
    const ny = decompose(y);
    p = mx * BM; pe = ex + BE;
    if (nx !== ny) p = -p;
  }
  let q = 0n, qe = 0;
  if (z !== 0) { const nz = decompose(z); q = nz ? -BM : BM; qe = BE; }
  const e = Math.min(pe, qe);
  const d = (p << BigInt(pe - e)) - (q << BigInt(qe - e));
  return d > 0n ? 1 : d < 0n ? -1 : 0;
}

/** Residual sign of r = RN(a*b) (doubles). */
function mulResD(a: number, b: number, r: number): number {
  if (r - r !== 0) return (a - a === 0 && b - b === 0) ? r : 0;
  if (a === 0 || b === 0) return 0;
  return prodSafe(a, b, r) ? twoProdErr(a, b, r) : cmpProd(a, b, r);
}
/** Residual sign of r = RN(a/b). */
function divResD(a: number, b: number, r: number): number {
  if (r - r !== 0) return (a - a === 0) ? r : 0;
  if (a === 0 || b - b !== 0) return 0;
  let s: number;
  const p = r * b;
  if (r !== 0 && prodSafe(r, b, p)) s = (a - p) - twoProdErr(r, b, p);
  else s = -cmpProd(r, b, a);
  return b < 0 ? -s : s;
}
/** Residual sign of r = RN(sqrt(a)), a > 0 finite. */
function sqrtResD(a: number, r: number): number {
  const p = r * r;
  return prodSafe(r, r, p) ? (a - p) - twoProdErr(r, r, p) : -cmpProd(r, r, a);
}

/**
 * Rounds the exact value (-1)^neg * M * 2^E (M > 0) to a format of precision P bits, normal exponent range
 * [EMIN, EMAX], honouring FPCR (RMode or rmOverride, FZ) and setting flags. Returns the value as a double.
 * Rare path (BigInt).
 */
function roundBig(c: Cpu, neg: boolean, M: bigint, E: number, P: number, EMIN: number, EMAX: number, rm: number): number {
  const L = M.toString(2).length;
  const lead = E + L - 1;
  const tiny = lead < EMIN;
  if (tiny && (c.fpcr & FPCR_FZ) !== 0 && P !== 11) { c.fpsr |= UFC; return neg ? -0 : 0; }
  let q = (lead > EMIN ? lead : EMIN) - (P - 1);
  let mant: bigint;
  let inexact = false;
  if (q <= E) mant = M << BigInt(E - q);
  else {
    const sh = BigInt(q - E);
    mant = M >> sh;
    const rem = M - (mant << sh);
    if (rem !== 0n) {
      inexact = true;
      const half = 1n << (sh - 1n);
      let up: boolean;
      switch (rm) {
        case RN: up = rem > half || (rem === half && (mant & 1n) === 1n); break;
        case RP: up = !neg; break;
        case RM: up = neg; break;
        case TIEAWAY: up = rem >= half; break;
        case ODD: up = false; mant |= 1n; break;
        default: up = false;
      }
      if (up) { mant += 1n; if (mant === 1n << BigInt(P)) { mant >>= 1n; q++; } }
    }
  }
  if (mant !== 0n && q + mant.toString(2).length - 1 > EMAX) {
    c.fpsr |= OFC | IXC;
    const maxv = (2 - pow2(1 - P)) * pow2(EMAX);
    const inf = rm === RN || rm === TIEAWAY || (rm === RP && !neg) || (rm === RM && neg);
    return neg ? (inf ? -Infinity : -maxv) : (inf ? Infinity : maxv);
  }
  if (inexact) { c.fpsr |= IXC; if (tiny) c.fpsr |= UFC; }
  const v = Number(mant) * pow2(q);
  return neg ? -v : v;
}

// ---------------------------------------------------------------------------------------------------------------
// Arithmetic

export const OP_ADD = 0, OP_SUB = 1, OP_MUL = 2, OP_DIV = 3, OP_MAX = 4, OP_MIN = 5, OP_MAXNM = 6, OP_MINNM = 7,
  OP_NMUL = 8, OP_ABD = 9, OP_MULX = 10;

/** True for negative numbers, -0 and -∞ (not for NaN). */
function signBit(x: number): boolean { return x < 0 || 1 / x < 0; }

function rmode(c: Cpu): number { return (c.fpcr >>> 22) & 3; }

/** Sum of two values whose exact sum is zero (x + -x, or signed zeros): +0, or -0 in round-down. */
function zeroSum(c: Cpu, a: number, b: number): number {
  if (a === 0 && b === 0 && (1 / a < 0) === (1 / b < 0)) return a;
  return rmode(c) === RM ? -0 : 0;
}

/** FPMax/FPMin on non-NaN values (+0 > -0). */
function fmax(a: number, b: number): number {
  if (a === b) return a === 0 && 1 / a < 0 ? b : a;
  return a > b ? a : b;
}
function fmin(a: number, b: number): number {
  if (a === b) return a === 0 && 1 / a > 0 ? b : a;
  return a < b ? a : b;
}

/**
 * Binary operation on the doubles at vf64 indices ai, bi (Arm FPAdd, FPSub, FPMul, FPDiv, FPMax, FPMin,
 * FPMaxNum, FPMinNum, FPMulX, FNMUL, FABD). Returns the result; a NaN result's bits are in NANW.
 */
export function binD(c: Cpu, op: number, ai: number, bi: number): number {
  let a = c.vf64[ai], b = c.vf64[bi];
  if ((c.fpcr & FPCR_FZ) !== 0) { a = fzD(c, a); b = fzD(c, b); }
  if (a !== a || b !== b) {
    const v = c.vi32;
    const ahi = v[2 * ai + 1], alo = v[2 * ai], bhi = v[2 * bi + 1], blo = v[2 * bi];
    if (op === OP_MAXNM || op === OP_MINNM) {
      // FPMaxNum/FPMinNum: a quiet NaN against a number is treated as missing.
      const qa = a !== a && !isSNaND(ahi, alo), qb = b !== b && !isSNaND(bhi, blo);
      if (qa && b === b) a = op === OP_MAXNM ? -Infinity : Infinity;
      else if (qb && a === a) b = op === OP_MAXNM ? -Infinity : Infinity;
      else return pickNaND(c, ahi, alo, bhi, blo, 0, 0);
    } else {
      pickNaND(c, ahi, alo, bhi, blo, 0, 0);
      if (op === OP_NMUL) NANW[1] ^= 0x80000000;
      else if (op === OP_ABD) NANW[1] &= 0x7fffffff;
      return NaN;
    }
  }
  let r: number;
  switch (op) {
    case OP_ADD: case OP_SUB: case OP_ABD:
      if (op !== OP_ADD) b = -b;
      r = a + b;
      if (r !== r) return invalidD(c);
      if (r === 0) return op === OP_ABD ? 0 : zeroSum(c, a, b); // FABD is |a - b|: never -0
      if (needD(c, r)) {
        if (r - r !== 0 && a - a === 0 && b - b === 0) {
          const h = a * 0.5 + b * 0.5, ah = h < 0 ? -h : h;
          ovGE = ah > TWO1023 || (ah === TWO1023 && (twoSumErr(a * 0.5, b * 0.5, h) < 0) === (h < 0));
        }
        r = finD(c, r, twoSumErr(a, b, r));
      }
      return op === OP_ABD ? Math.abs(r) : r;
    case OP_MUL: case OP_NMUL: case OP_MULX:
      r = a * b;
      if (r !== r) {
        if (op === OP_MULX) return signBit(a) !== signBit(b) ? -2 : 2; // 0 × ∞ is ±2; a zero's sign counts
        invalidD(c);
        if (op === OP_NMUL) NANW[1] ^= 0x80000000;
        return NaN;
      }
      if (needD(c, r)) {
        if (r - r !== 0 && a - a === 0 && b - b === 0) {
          const aa = a < 0 ? -a : a, bb = b < 0 ? -b : b;
          ovGE = aa > bb ? cmpProd(aa * 0.5, bb, TWO1023) >= 0 : cmpProd(aa, bb * 0.5, TWO1023) >= 0;
        }
        r = finD(c, r, mulResD(a, b, r));
      }
      return op === OP_NMUL ? -r : r;
    case OP_DIV:
      r = a / b;
      if (r !== r) return invalidD(c);
      if (b === 0 && a - a === 0) { c.fpsr |= DZC; return r; }
      if (needD(c, r)) {
        if (r - r !== 0 && a - a === 0) ovGE = cmpProd(TWO1023, b < 0 ? -b : b, (a < 0 ? -a : a) * 0.5) <= 0;
        r = finD(c, r, divResD(a, b, r));
      }
      return r;
    case OP_MAX: case OP_MAXNM: return fmax(a, b);
    default: return fmin(a, b);
  }
}

/** Residual sign of single r = fround(a/b) where d = a/b in double; for roundOddToS. */
function divErrS(a: number, b: number, d: number): number {
  if (d - d !== 0 || a === 0 || b - b !== 0) return 0;
  const p = d * b;
  const s = (a - p) - twoProdErr(d, b, p);
  return b < 0 ? -s : s;
}

/** Binary operation on the singles at vf32 indices ai, bi (see binD). */
export function binS(c: Cpu, op: number, ai: number, bi: number): number {
  let a = c.vf32[ai], b = c.vf32[bi];
  if ((c.fpcr & FPCR_FZ) !== 0) { a = fzS(c, a); b = fzS(c, b); }
  if (a !== a || b !== b) {
    const v = c.vi32;
    const wa = v[ai], wb = v[bi];
    if (op === OP_MAXNM || op === OP_MINNM) {
      const qa = a !== a && !isSNaNS(wa), qb = b !== b && !isSNaNS(wb);
      if (qa && b === b) a = op === OP_MAXNM ? -Infinity : Infinity;
      else if (qb && a === a) b = op === OP_MAXNM ? -Infinity : Infinity;
      else return pickNaNS(c, wa, wb, 0);
    } else {
      pickNaNS(c, wa, wb, 0);
      if (op === OP_NMUL) NANW[0] ^= 0x80000000;
      else if (op === OP_ABD) NANW[0] &= 0x7fffffff;
      return NaN;
    }
  }
  let d: number, r: number;
  switch (op) {
    case OP_ADD: case OP_SUB: case OP_ABD:
      if (op !== OP_ADD) b = -b;
      d = a + b;
      if (d !== d) return invalidS(c);
      if (d === 0) return op === OP_ABD ? 0 : zeroSum(c, a, b); // FABD is |a - b|: never -0
      r = Math.fround(d);
      if (needS(c, r)) r = roundOddToS(c, d, twoSumErr(a, b, d));
      return op === OP_ABD ? Math.abs(r) : r;
    case OP_MUL: case OP_NMUL: case OP_MULX:
      d = a * b; // exact in double
      if (d !== d) {
        if (op === OP_MULX) return signBit(a) !== signBit(b) ? -2 : 2; // 0 × ∞ is ±2; a zero's sign counts
        invalidS(c);
        if (op === OP_NMUL) NANW[0] ^= 0x80000000;
        return NaN;
      }
      r = Math.fround(d);
      if (needS(c, r)) {
        if (r - r !== 0) ovGE = d >= TWO128 || d <= -TWO128;
        r = finS(c, r, d - r === 0 || d - d !== 0 ? 0 : d - r);
      }
      return op === OP_NMUL ? -r : r;
    case OP_DIV:
      d = a / b;
      if (d !== d) return invalidS(c);
      if (b === 0 && a - a === 0) { c.fpsr |= DZC; return d; }
      r = Math.fround(d);
      if (needS(c, r)) r = roundOddToS(c, d, divErrS(a, b, d));
      return r;
    case OP_MAX: case OP_MAXNM: return fmax(a, b);
    default: return fmin(a, b);
  }
}

/** FSQRT on the double at vf64 index ai. */
export function sqrtD(c: Cpu, ai: number): number {
  let a = c.vf64[ai];
  if ((c.fpcr & FPCR_FZ) !== 0) a = fzD(c, a);
  if (a !== a) return pickNaND(c, c.vi32[2 * ai + 1], c.vi32[2 * ai], 0, 0, 0, 0);
  if (a === 0) return a;
  if (a < 0) return invalidD(c);
  let r = Math.sqrt(a);
  if (a !== Infinity && needD(c, r)) r = finD(c, r, sqrtResD(a, r));
  return r;
}
export function sqrtS(c: Cpu, ai: number): number {
  let a = c.vf32[ai];
  if ((c.fpcr & FPCR_FZ) !== 0) a = fzS(c, a);
  if (a !== a) return pickNaNS(c, c.vi32[ai], 0, 0);
  if (a === 0) return a;
  if (a < 0) return invalidS(c);
  const d = Math.sqrt(a);
  let r = Math.fround(d);
  if (a !== Infinity && needS(c, r)) {
    const p = d * d;
    r = roundOddToS(c, d, (a - p) - twoProdErr(d, d, p));
  }
  return r;
}

// ---------------------------------------------------------------------------------------------------------------
// Fused multiply-add (Arm FPMulAdd): addend + x*y with one rounding.

let fmaInvalid = false;
/**
 * The special cases of FPMulAdd for non-NaN operands; returns NaN when the general path must run, or NaN with
 * fmaInvalid set for an invalid operation.
 */
function fmaSpecial(c: Cpu, z: number, x: number, y: number): number {
  fmaInvalid = false;
  const infP = x - x !== 0 || y - y !== 0, zeroP = x === 0 || y === 0;
  if (infP && zeroP) { fmaInvalid = true; return NaN; }
  const infA = z - z !== 0;
  const signP = (x < 0 || (x === 0 && 1 / x < 0)) !== (y < 0 || (y === 0 && 1 / y < 0));
  if (infA && infP && (z < 0) !== signP) { fmaInvalid = true; return NaN; }
  if (infA) return z;
  if (infP) return signP ? -Infinity : Infinity;
  if (zeroP) {
    if (z !== 0) return z;
    const signA = 1 / z < 0;
    if (signA === signP) return z;
    return rmode(c) === RM ? -0 : 0;
  }
  return NaN;
}

/** Exact BigInt fused multiply-add; rare path. */
function fmaBig(c: Cpu, z: number, x: number, y: number, P: number, EMIN: number, EMAX: number): number {
  const nx = decompose(x); const mx = BM, ex = BE;
  const ny = decompose(y);
  let p = mx * BM; const pe = ex + BE;
  if (nx !== ny) p = -p;
  let q = 0n, qe = pe;
  if (z !== 0) { const nz = decompose(z); q = nz ? -BM : BM; qe = BE; }
  const e = Math.min(pe, qe);
  const s = (p << BigInt(pe - e)) + (q << BigInt(qe - e));
  if (s === 0n) return rmode(c) === RM ? -0 : 0;
  const neg = s < 0n;
  return roundBig(c, neg, neg ? -s : s, e, P, EMIN, EMAX, rmode(c));
}

const FMA_LIM = 2.0 ** 900, FMA_TINY = 2.0 ** -900;

/** z + x*y for doubles (no NaN operands; FZ already applied). */
export function fmaCoreD(c: Cpu, z: number, x: number, y: number): number {
  const sp = fmaSpecial(c, z, x, y);
  if (sp === sp) return sp;
  if (fmaInvalid) return invalidD(c);
  const p = x * y;
  const ap = p < 0 ? -p : p, az = z < 0 ? -z : z;
  const ax = x < 0 ? -x : x, ay = y < 0 ? -y : y;
  if (ap < FMA_LIM && ap > FMA_TINY && az < FMA_LIM && (az > FMA_TINY || z === 0) && ax < BIG && ay < BIG) {
    const e = twoProdErr(x, y, p); // x*y = p + e
    const s = p + z, t = twoSumErr(p, z, s); // p + z = s + t
    const u = t + e, v = twoSumErr(t, e, u); // t + e = u + v
    const r = s + u, w = twoSumErr(s, u, r); // exact = r + w + v
    if (r === 0 && w === 0 && v === 0) return rmode(c) === RM ? -0 : 0;
    let ok = v === 0;
    if (!ok && r !== 0) {
      // r is the correctly rounded result when |w + v| stays clearly below half an ulp of r (a quarter at a
      // power of two, where the ulp below is smaller).
      SF64[0] = r;
      const ex = (SI64[1] >>> 20) & 0x7ff;
      const pw2 = (SI64[1] & 0xfffff) === 0 && SI64[0] === 0;
      const ulp = pow2((ex === 0 ? 1 : ex) - 1075);
      const aw = (w < 0 ? -w : w) + (v < 0 ? -v : v);
      ok = aw * (pw2 ? 4.25 : 2.25) < ulp;
    }
    if (ok) return needD(c, r) ? finD(c, r, w + v) : r;
  }
  return fmaBig(c, z, x, y, 53, -1022, 1023);
}

/** z + x*y for singles given as doubles (no NaN operands; FZ already applied). */
export function fmaCoreS(c: Cpu, z: number, x: number, y: number): number {
  const sp = fmaSpecial(c, z, x, y);
  if (sp === sp) return sp;
  if (fmaInvalid) return invalidS(c);
  const p = x * y; // exact: 48-bit product, exponent within double range
  const d = p + z;
  const t = twoSumErr(p, z, d);
  if (d === 0 && t === 0) return rmode(c) === RM ? -0 : 0;
  return roundOddToS(c, d, t);
}

/** Fused multiply-add on V-register doubles at vf64 indices: (negA ? -A : A) + (negX ? -X : X) * Y. */
export function fmaD(c: Cpu, ai: number, xi: number, yi: number, negA: number, negX: number): number {
  const f = c.vf64;
  let z = f[ai], x = f[xi], y = f[yi];
  if ((c.fpcr & FPCR_FZ) !== 0) { z = fzD(c, z); x = fzD(c, x); y = fzD(c, y); }
  if (negA !== 0) z = -z;
  if (negX !== 0) x = -x;
  if (z !== z || x !== x || y !== y) {
    const v = c.vi32;
    const zhi = v[2 * ai + 1] ^ (negA << 31), xhi = v[2 * xi + 1] ^ (negX << 31);
    const zn = z !== z && !isSNaND(zhi, v[2 * ai]);
    if (zn && x === x && y === y && ((x === 0 && y - y !== 0) || (y === 0 && x - x !== 0))) return invalidD(c);
    return pickNaND(c, zhi, v[2 * ai], xhi, v[2 * xi], v[2 * yi + 1], v[2 * yi]);
  }
  return fmaCoreD(c, z, x, y);
}
export function fmaS(c: Cpu, ai: number, xi: number, yi: number, negA: number, negX: number): number {
  const f = c.vf32;
  let z = f[ai], x = f[xi], y = f[yi];
  if ((c.fpcr & FPCR_FZ) !== 0) { z = fzS(c, z); x = fzS(c, x); y = fzS(c, y); }
  if (negA !== 0) z = -z;
  if (negX !== 0) x = -x;
  if (z !== z || x !== x || y !== y) {
    const v = c.vi32;
    const zw = v[ai] ^ (negA << 31), xw = v[xi] ^ (negX << 31);
    const zn = z !== z && !isSNaNS(zw);
    if (zn && x === x && y === y && ((x === 0 && y - y !== 0) || (y === 0 && x - x !== 0))) return invalidS(c);
    return pickNaNS(c, zw, xw, v[yi]);
  }
  return fmaCoreS(c, z, x, y);
}

// ---------------------------------------------------------------------------------------------------------------
// Rounding to integral, conversions (Arm FPRoundInt, FPToFixed, FixedToFP, FPConvert)

/** Rounds a finite double to an integral value with mode RN/RP/RM/RZ/TIEAWAY; zero keeps the input's sign. */
export function roundIntD(x: number, mode: number): number {
  if (!(x > -4503599627370496 && x < 4503599627370496)) return x; // |x| >= 2^52: already integral
  let r: number, d: number;
  switch (mode) {
    case RN: r = Math.floor(x); d = x - r; if (d > 0.5 || (d === 0.5 && r % 2 !== 0)) r += 1; break;
    case RP: r = Math.ceil(x); break;
    case RM: r = Math.floor(x); break;
    case TIEAWAY: r = Math.trunc(x); d = x - r; if (d >= 0.5) r += 1; else if (d <= -0.5) r -= 1; break;
    default: r = Math.trunc(x);
  }
  if (r === 0) return x < 0 || (x === 0 && 1 / x < 0) ? -0 : 0;
  return r;
}

/** FRINT* on the double at vf64 index ai: mode < 0 means FPCR.RMode; exact sets IXC when the value changes. */
export function frintD(c: Cpu, ai: number, mode: number, exact: boolean): number {
  let a = c.vf64[ai];
  if ((c.fpcr & FPCR_FZ) !== 0) a = fzD(c, a);
  if (a !== a) return pickNaND(c, c.vi32[2 * ai + 1], c.vi32[2 * ai], 0, 0, 0, 0);
  const r = roundIntD(a, mode < 0 ? rmode(c) : mode);
  if (exact && r !== a) c.fpsr |= IXC;
  return r;
}
export function frintS(c: Cpu, ai: number, mode: number, exact: boolean): number {
  let a = c.vf32[ai];
  if ((c.fpcr & FPCR_FZ) !== 0) a = fzS(c, a);
  if (a !== a) return pickNaNS(c, c.vi32[ai], 0, 0);
  const r = roundIntD(a, mode < 0 ? rmode(c) : mode);
  if (exact && r !== a) c.fpsr |= IXC;
  return r;
}

/**
 * FPToFixed: x (a double value; NaN allowed) times 2^fbits, rounded with `mode` to a signed/unsigned 32- or
 * 64-bit integer with saturation. Returns lo; hi in IHI[0] (0 for 32-bit results).
 */
export function toFixed(c: Cpu, x: number, fbits: number, unsigned: boolean, is64: boolean, mode: number): number {
  IHI[0] = 0;
  if (x !== x) { c.fpsr |= IOC; return 0; }
  if (fbits !== 0) x *= pow2(fbits);
  const r = roundIntD(x, mode);
  if (is64) {
    if (unsigned) {
      if (r >= 18446744073709551616) { c.fpsr |= IOC; IHI[0] = -1; return -1; }
      if (r < 0) { c.fpsr |= IOC; return 0; }
    } else {
      if (r >= 9223372036854775808) { c.fpsr |= IOC; IHI[0] = 0x7fffffff; return -1; }
      if (r < -9223372036854775808) { c.fpsr |= IOC; IHI[0] = -0x80000000; return 0; }
    }
    if (r !== x) c.fpsr |= IXC;
    const hi = Math.floor(r / TWO32);
    IHI[0] = hi | 0;
    return (r - hi * TWO32) | 0;
  }
  if (unsigned) {
    if (r > 4294967295) { c.fpsr |= IOC; return -1; }
    if (r < 0) { c.fpsr |= IOC; return 0; }
  } else {
    if (r > 2147483647) { c.fpsr |= IOC; return 0x7fffffff; }
    if (r < -2147483648) { c.fpsr |= IOC; return -0x80000000; }
  }
  if (r !== x) c.fpsr |= IXC;
  return r | 0;
}

/**
 * FixedToFP: the 64-bit integer (lo, hi), signed or unsigned, divided by 2^fbits, rounded per FPCR to double
 * (single = false) or single. For 32-bit sources pass hi = sign extension (signed) or 0.
 */
export function fromFixed(c: Cpu, lo: number, hi: number, signed: boolean, fbits: number, single: boolean): number {
  const h = (signed ? (hi | 0) : (hi >>> 0)) * TWO32, l = lo >>> 0;
  let d = h + l, t = twoSumErr(h, l, d);
  if (fbits !== 0) { const s = pow2(-fbits); d *= s; t *= s; }
  if (single) return t === 0 && Math.fround(d) === d ? d : roundOddToS(c, d, t);
  return t === 0 ? d : finD(c, d, t);
}

/** FCVT single (bits w) -> double; NaN bits in NANW. */
export function cvtSD(c: Cpu, w: number): number {
  if (isNaNS(w)) {
    if ((w & 0x400000) === 0) c.fpsr |= IOC;
    if ((c.fpcr & FPCR_DN) !== 0) { NANW[0] = 0; NANW[1] = 0x7ff80000; }
    else { NANW[1] = (w & 0x80000000) | 0x7ff80000 | ((w & 0x3fffff) >>> 3); NANW[0] = (w & 7) << 29; }
    return NaN;
  }
  const a = fromBitsS(w);
  return (c.fpcr & FPCR_FZ) !== 0 ? fzS(c, a) : a;
}
/** FCVT double (lo, hi) -> single; NaN bits in NANW[0]. */
export function cvtDS(c: Cpu, lo: number, hi: number): number {
  if (isNaND(hi, lo)) {
    if ((hi & 0x80000) === 0) c.fpsr |= IOC;
    NANW[0] = (c.fpcr & FPCR_DN) !== 0 ? 0x7fc00000 : (hi & 0x80000000) | 0x7fc00000 | ((hi & 0x7ffff) << 3) | (lo >>> 29);
    return NaN;
  }
  let a = fromBitsD(lo, hi);
  if ((c.fpcr & FPCR_FZ) !== 0) a = fzD(c, a);
  const r = Math.fround(a);
  if (r - r !== 0) ovGE = a >= TWO128 || a <= -TWO128;
  return needS(c, r) ? finS(c, r, a - a !== 0 ? 0 : a - r) : r;
}
/** FCVTXN: double -> single with round-to-odd (no FPCR rounding mode), NaN as cvtDS. */
export function cvtDSOdd(c: Cpu, lo: number, hi: number): number {
  if (isNaND(hi, lo)) return cvtDS(c, lo, hi);
  let a = fromBitsD(lo, hi);
  if ((c.fpcr & FPCR_FZ) !== 0) a = fzD(c, a);
  if (a === 0 || a - a !== 0) return a;
  const neg = decompose(a);
  return roundBig(c, neg, BM, BE, 24, -126, 127, ODD);
}

/** Half-precision bits -> double value (exact); NaN bits (as a double) in NANW. AHP is not modelled. */
export function cvtHD(c: Cpu, h: number): number {
  const e = (h >>> 10) & 31, m = h & 0x3ff, neg = (h & 0x8000) !== 0;
  if (e === 31) {
    if (m === 0) return neg ? -Infinity : Infinity;
    if ((m & 0x200) === 0) c.fpsr |= IOC;
    if ((c.fpcr & FPCR_DN) !== 0) { NANW[0] = 0; NANW[1] = 0x7ff80000; }
    else { NANW[0] = 0; NANW[1] = (neg ? 0x80000000 : 0) | 0x7ff80000 | ((m & 0x1ff) << 10); }
    return NaN;
  }
  const v = e === 0 ? m * pow2(-24) : (1024 + m) * pow2(e - 25);
  return neg ? -v : v;
}
/** The single NaN bits for a half NaN produced by cvtHD (NANW holds the double form). */
export function nanDtoS(): number {
  const hi = NANW[1], lo = NANW[0];
  return (hi & 0x80000000) | 0x7fc00000 | ((hi & 0x7ffff) << 3) | (lo >>> 29);
}

/**
 * Rounds a double value to half precision bits (FPRound with N = 16: FZ does not apply). NaN inputs are given as
 * sign + 9 payload bits below the quiet bit (`nanSign`, `payload`), with `snan` telling whether it signals.
 */
export function toHalf(c: Cpu, x: number, rm: number): number {
  const neg = x < 0 || (x === 0 && 1 / x < 0);
  const sign = neg ? 0x8000 : 0;
  const a = neg ? -x : x;
  if (a === Infinity) return sign | 0x7c00;
  if (a === 0) return sign;
  SF64[0] = a;
  const e = ((SI64[1] >>> 20) & 0x7ff) - 1023;
  let mode = rm;
  if (rm === RP) mode = neg ? RZ : RP; else if (rm === RM) mode = neg ? RP : RZ;
  if (e > 15) return sign | overflowHalf(c, neg, rm);
  let q = (e > -14 ? e : -14) - 10;
  const s = a * pow2(-q);
  let m = roundIntD(s, mode);
  const inexact = m !== s;
  if (m >= 2048) { m /= 2; q++; }
  if (q + 10 > 15) return sign | overflowHalf(c, neg, rm);
  if (inexact) { c.fpsr |= IXC; if (e < -14) c.fpsr |= UFC; }
  if (m < 1024) return sign | m;
  return sign | ((q + 25) << 10) | (m - 1024);
}
function overflowHalf(c: Cpu, neg: boolean, rm: number): number {
  c.fpsr |= OFC | IXC;
  return rm === RN || (rm === RP && !neg) || (rm === RM && neg) ? 0x7c00 : 0x7bff;
}
/** FCVT to half from double bits. */
export function cvtDH(c: Cpu, lo: number, hi: number): number {
  if (isNaND(hi, lo)) {
    if ((hi & 0x80000) === 0) c.fpsr |= IOC;
    if ((c.fpcr & FPCR_DN) !== 0) return 0x7e00;
    return ((hi >>> 16) & 0x8000) | 0x7e00 | ((hi >>> 10) & 0x1ff);
  }
  let a = fromBitsD(lo, hi);
  if ((c.fpcr & FPCR_FZ) !== 0) a = fzD(c, a);
  return toHalf(c, a, rmode(c));
}
/** FCVT to half from single bits. */
export function cvtSH(c: Cpu, w: number): number {
  if (isNaNS(w)) {
    if ((w & 0x400000) === 0) c.fpsr |= IOC;
    if ((c.fpcr & FPCR_DN) !== 0) return 0x7e00;
    return ((w >>> 16) & 0x8000) | 0x7e00 | ((w >>> 13) & 0x1ff);
  }
  let a = fromBitsS(w);
  if ((c.fpcr & FPCR_FZ) !== 0) a = fzS(c, a);
  return toHalf(c, a, rmode(c));
}

// ---------------------------------------------------------------------------------------------------------------
// Comparisons (Arm FPCompare, FPCompareEQ/GE/GT)

/** FPCompare of doubles at vf64 indices (bi < 0: compare with +0.0); returns NZCV. */
export function cmpD(c: Cpu, ai: number, bi: number, signal: boolean): number {
  let a = c.vf64[ai], b = bi < 0 ? 0 : c.vf64[bi];
  if ((c.fpcr & FPCR_FZ) !== 0) { a = fzD(c, a); b = fzD(c, b); }
  if (a !== a || b !== b) {
    const v = c.vi32;
    if (signal || isSNaND(v[2 * ai + 1], v[2 * ai]) || (bi >= 0 && isSNaND(v[2 * bi + 1], v[2 * bi]))) c.fpsr |= IOC;
    return 3;
  }
  return a === b ? 6 : a < b ? 8 : 2;
}
export function cmpS(c: Cpu, ai: number, bi: number, signal: boolean): number {
  let a = c.vf32[ai], b = bi < 0 ? 0 : c.vf32[bi];
  if ((c.fpcr & FPCR_FZ) !== 0) { a = fzS(c, a); b = fzS(c, b); }
  if (a !== a || b !== b) {
    const v = c.vi32;
    if (signal || isSNaNS(v[ai]) || (bi >= 0 && isSNaNS(v[bi]))) c.fpsr |= IOC;
    return 3;
  }
  return a === b ? 6 : a < b ? 8 : 2;
}

// ---------------------------------------------------------------------------------------------------------------
// Scalar handlers

/** FP data-processing (2 source) opcode -> core op. */
const OP2 = [OP_MUL, OP_DIV, OP_ADD, OP_SUB, OP_MAX, OP_MIN, OP_MAXNM, OP_MINNM, OP_NMUL];

function zeroUpperD(c: Cpu, d: number): void { c.vi32[4 * d + 2] = 0; c.vi32[4 * d + 3] = 0; }
function zeroUpperS(c: Cpu, d: number): void { const v = c.vi32; v[4 * d + 1] = 0; v[4 * d + 2] = 0; v[4 * d + 3] = 0; }
function writeD(c: Cpu, d: number, r: number): void { putD(c, 2 * d, r); zeroUpperD(c, d); }
function writeS(c: Cpu, d: number, r: number): void { putS(c, 4 * d, r); zeroUpperS(c, d); }
function writeH(c: Cpu, d: number, h: number): void {
  const v = c.vi32; v[4 * d] = h & 0xffff; v[4 * d + 1] = 0; v[4 * d + 2] = 0; v[4 * d + 3] = 0;
}

/** FMUL/FDIV/FADD/FSUB/FMAX/FMIN/FMAXNM/FMINNM/FNMUL (scalar): M0S 11110 type 1 Rm opcode 10 Rn Rd. */
function fp2src(c: Cpu, i: number): void {
  const type = (i >>> 22) & 3, opc = (i >>> 12) & 15;
  const m = (i >>> 16) & 31, n = (i >>> 5) & 31, d = i & 31;
  if (opc > 8) { c.undefinedInstruction(i); return; }
  if (type === 1) writeD(c, d, binD(c, OP2[opc], 2 * n, 2 * m));
  else if (type === 0) writeS(c, d, binS(c, OP2[opc], 4 * n, 4 * m));
  else c.undefinedInstruction(i);
}

/** FP data-processing (1 source): FMOV, FABS, FNEG, FSQRT, FCVT, FRINT*. opcode in bits 20:15. */
function fp1src(c: Cpu, i: number): void {
  const type = (i >>> 22) & 3, opc = (i >>> 15) & 63, n = (i >>> 5) & 31, d = i & 31;
  const v = c.vi32;
  if ((opc & 0x3c) === 0x04) { // FCVT: opc<1:0> = destination type
    const to = opc & 3;
    if (to === type || to === 2 || type === 2) { c.undefinedInstruction(i); return; }
    if (type === 0) {
      const w = v[4 * n];
      if (to === 1) writeD(c, d, cvtSD(c, w)); else writeH(c, d, cvtSH(c, w));
    } else if (type === 1) {
      const lo = v[4 * n], hi = v[4 * n + 1];
      if (to === 0) writeS(c, d, cvtDS(c, lo, hi)); else writeH(c, d, cvtDH(c, lo, hi));
    } else {
      const r = cvtHD(c, v[4 * n] & 0xffff);
      if (to === 1) writeD(c, d, r);
      else if (r !== r) { v[4 * d] = nanDtoS(); zeroUpperS(c, d); } else writeS(c, d, r);
    }
    return;
  }
  if (type === 1) {
    const lo = v[4 * n], hi = v[4 * n + 1];
    switch (opc) {
      case 0: v[4 * d] = lo; v[4 * d + 1] = hi; zeroUpperD(c, d); return; // FMOV
      case 1: v[4 * d] = lo; v[4 * d + 1] = hi & 0x7fffffff; zeroUpperD(c, d); return; // FABS
      case 2: v[4 * d] = lo; v[4 * d + 1] = hi ^ 0x80000000; zeroUpperD(c, d); return; // FNEG
      case 3: writeD(c, d, sqrtD(c, 2 * n)); return;
      case 8: case 9: case 10: case 11: case 12: // FRINTN/P/M/Z/A
        writeD(c, d, frintD(c, 2 * n, FRINT_MODE[opc - 8], false)); return;
      case 14: writeD(c, d, frintD(c, 2 * n, -1, true)); return; // FRINTX
      case 15: writeD(c, d, frintD(c, 2 * n, -1, false)); return; // FRINTI
    }
  } else if (type === 0) {
    const w = v[4 * n];
    switch (opc) {
      case 0: v[4 * d] = w; zeroUpperS(c, d); return;
      case 1: v[4 * d] = w & 0x7fffffff; zeroUpperS(c, d); return;
      case 2: v[4 * d] = w ^ 0x80000000; zeroUpperS(c, d); return;
      case 3: writeS(c, d, sqrtS(c, 4 * n)); return;
      case 8: case 9: case 10: case 11: case 12:
        writeS(c, d, frintS(c, 4 * n, FRINT_MODE[opc - 8], false)); return;
      case 14: writeS(c, d, frintS(c, 4 * n, -1, true)); return;
      case 15: writeS(c, d, frintS(c, 4 * n, -1, false)); return;
    }
  }
  c.undefinedInstruction(i);
}
/** FRINTN, FRINTP, FRINTM, FRINTZ, FRINTA. */
export const FRINT_MODE = [RN, RP, RM, RZ, TIEAWAY];

/** FCMP/FCMPE (register or #0.0): type 1 Rm 00 1000 Rn E Z 000. */
function fcmp(c: Cpu, i: number): void {
  const type = (i >>> 22) & 3, m = (i >>> 16) & 31, n = (i >>> 5) & 31;
  const signal = (i & 0x10) !== 0, zero = (i & 8) !== 0;
  if (type === 1) c.nzcv = cmpD(c, 2 * n, zero ? -1 : 2 * m, signal);
  else if (type === 0) c.nzcv = cmpS(c, 4 * n, zero ? -1 : 4 * m, signal);
  else c.undefinedInstruction(i);
}

/** FCCMP/FCCMPE: type 1 Rm cond 01 Rn op nzcv. */
function fccmp(c: Cpu, i: number): void {
  const type = (i >>> 22) & 3, m = (i >>> 16) & 31, n = (i >>> 5) & 31, cond = (i >>> 12) & 15;
  if (type > 1) { c.undefinedInstruction(i); return; }
  if (COND[(cond << 4) | c.nzcv] === 0) { c.nzcv = i & 15; return; }
  const signal = (i & 0x10) !== 0;
  c.nzcv = type === 1 ? cmpD(c, 2 * n, 2 * m, signal) : cmpS(c, 4 * n, 4 * m, signal);
}

/** FCSEL: type 1 Rm cond 11 Rn Rd. */
function fcsel(c: Cpu, i: number): void {
  const type = (i >>> 22) & 3, m = (i >>> 16) & 31, n = (i >>> 5) & 31, cond = (i >>> 12) & 15, d = i & 31;
  if (type > 1) { c.undefinedInstruction(i); return; }
  const s = COND[(cond << 4) | c.nzcv] !== 0 ? n : m;
  const v = c.vi32;
  const lo = v[4 * s], hi = type === 1 ? v[4 * s + 1] : 0;
  v[4 * d] = lo; v[4 * d + 1] = hi; v[4 * d + 2] = 0; v[4 * d + 3] = 0;
}

/** VFPExpandImm (Arm ARM shared/functions/float): imm8 -> high 32 bits of a double. */
export function expandImmD(imm8: number): number {
  const b6 = (imm8 >>> 6) & 1;
  return ((imm8 & 0x80) << 24) | ((b6 ^ 1) << 30) | (b6 ? 0x3fc00000 : 0) | ((imm8 & 0x3f) << 16);
}
/** VFPExpandImm for single precision: imm8 -> the 32-bit pattern. */
export function expandImmS(imm8: number): number {
  const b6 = (imm8 >>> 6) & 1;
  return ((imm8 & 0x80) << 24) | ((b6 ^ 1) << 30) | (b6 ? 0x3e000000 : 0) | ((imm8 & 0x3f) << 19);
}

/** FMOV (scalar, immediate): type 1 imm8 100 00000 Rd. */
function fmovImm(c: Cpu, i: number): void {
  const type = (i >>> 22) & 3, imm8 = (i >>> 13) & 0xff, d = i & 31;
  const v = c.vi32;
  if (type === 1) { v[4 * d] = 0; v[4 * d + 1] = expandImmD(imm8); zeroUpperD(c, d); }
  else if (type === 0) { v[4 * d] = expandImmS(imm8); zeroUpperS(c, d); }
  else c.undefinedInstruction(i);
}

/** FMADD/FMSUB/FNMADD/FNMSUB: 11111 type o1 Rm o0 Ra Rn Rd. */
function fp3src(c: Cpu, i: number): void {
  const type = (i >>> 22) & 3, o1 = (i >>> 21) & 1, o0 = (i >>> 15) & 1;
  const m = (i >>> 16) & 31, a = (i >>> 10) & 31, n = (i >>> 5) & 31, d = i & 31;
  // FMADD: a + n*m; FMSUB: a - n*m; FNMADD: -a - n*m; FNMSUB: -a + n*m (negations applied to the operands,
  // so a NaN operand comes out with its sign flipped, as in the Arm pseudocode).
  const negX = o0 ^ o1;
  if (type === 1) writeD(c, d, fmaD(c, 2 * a, 2 * n, 2 * m, o1, negX));
  else if (type === 0) writeS(c, d, fmaS(c, 4 * a, 4 * n, 4 * m, o1, negX));
  else c.undefinedInstruction(i);
}

/** Rounding mode for FCVT{N,P,M,Z}{S,U} from rmode bits, and FCVTA. */
const CVT_MODE = [RN, RP, RM, RZ];

/** Reads the FP operand of a conversion to integer as a double (NaN stays NaN); FZ applied. */
function cvtSrc(c: Cpu, type: number, n: number): number {
  if (type === 1) { const a = c.vf64[2 * n]; return (c.fpcr & FPCR_FZ) !== 0 ? fzD(c, a) : a; }
  const a = c.vf32[4 * n];
  return (c.fpcr & FPCR_FZ) !== 0 ? fzS(c, a) : a;
}

/** Conversion between FP and integer: sf 0 0 11110 type 1 rmode opcode 000000 Rn Rd. */
function fpInt(c: Cpu, i: number): void {
  const sf = i >>> 31, type = (i >>> 22) & 3, rm = (i >>> 19) & 3, opc = (i >>> 16) & 7;
  const n = (i >>> 5) & 31, d = i & 31;
  const v = c.vi32, r = c.r;
  if (opc >= 6) { // FMOV (general)
    if (rm === 0 && sf === 0 && type === 0) {
      if (opc === 6) setW(c, d, v[4 * n]); else { v[4 * d] = r[2 * n]; zeroUpperS(c, d); }
    } else if (rm === 0 && sf === 1 && type === 1) {
      if (opc === 6) setX(c, d, v[4 * n], v[4 * n + 1]);
      else { v[4 * d] = r[2 * n]; v[4 * d + 1] = r[2 * n + 1]; zeroUpperD(c, d); }
    } else if (rm === 1 && sf === 1 && type === 2) { // Vn.D[1]
      if (opc === 6) setX(c, d, v[4 * n + 2], v[4 * n + 3]);
      else { v[4 * d + 2] = r[2 * n]; v[4 * d + 3] = r[2 * n + 1]; }
    } else c.undefinedInstruction(i);
    return;
  }
  if (type > 1) { c.undefinedInstruction(i); return; }
  if (opc === 2 || opc === 3) { // SCVTF/UCVTF
    if (rm !== 0) { c.undefinedInstruction(i); return; }
    const signed = opc === 2;
    const lo = r[2 * n];
    const hi = sf === 1 ? r[2 * n + 1] : signed ? lo >> 31 : 0;
    const res = fromFixed(c, lo, hi, signed, 0, type === 0);
    if (type === 1) writeD(c, d, res); else writeS(c, d, res);
    return;
  }
  // FCVT{N,P,M,Z}{S,U} (opc 0/1 with rmode), FCVTA{S,U} (rmode 0, opc 4/5).
  let mode: number;
  if (opc <= 1) mode = CVT_MODE[rm];
  else if (rm === 0 && opc <= 5) mode = TIEAWAY;
  else { c.undefinedInstruction(i); return; }
  const lo = toFixed(c, cvtSrc(c, type, n), 0, (opc & 1) !== 0, sf === 1, mode);
  if (sf === 1) setX(c, d, lo, IHI[0]); else setW(c, d, lo);
}

/** Conversion between FP and fixed-point: sf 0 0 11110 type 0 rmode opcode scale Rn Rd. */
function fpFixed(c: Cpu, i: number): void {
  const sf = i >>> 31, type = (i >>> 22) & 3, rmo = (i >>> 16) & 31, scale = (i >>> 10) & 63;
  const n = (i >>> 5) & 31, d = i & 31;
  if (type > 1 || (sf === 0 && scale < 32)) { c.undefinedInstruction(i); return; }
  const fbits = 64 - scale;
  const r = c.r;
  if (rmo === 2 || rmo === 3) { // SCVTF/UCVTF
    const signed = rmo === 2;
    const lo = r[2 * n];
    const hi = sf === 1 ? r[2 * n + 1] : signed ? lo >> 31 : 0;
    const res = fromFixed(c, lo, hi, signed, fbits, type === 0);
    if (type === 1) writeD(c, d, res); else writeS(c, d, res);
  } else if (rmo === 0x18 || rmo === 0x19) { // FCVTZS/FCVTZU
    const lo = toFixed(c, cvtSrc(c, type, n), fbits, rmo === 0x19, sf === 1, RZ);
    if (sf === 1) setX(c, d, lo, IHI[0]); else setW(c, d, lo);
  } else c.undefinedInstruction(i);
}

/**
 * `h` behind CPACR_EL1.FPEN: with FP/SIMD disabled at this EL the instruction takes the access trap (EC 0x07)
 * before anything is read or written (Arm ARM D8.2; the SIMD&FP loads/stores and integer SIMD handlers check it
 * themselves).
 */
export function trapsFp(h: Handler): Handler {
  return (c, i) => { if (c.fpTrap) { c.fpAccessTrap(); return; } h(c, i); };
}

export function register(d: Decoder): void {
  const def = (pattern: string, name: string, h: Handler): void => d.def(pattern, name, trapsFp(h));
  def("000 11110 xx 1 xxxxx xxxx 10 xxxxx xxxxx", "FP 2-source", fp2src);
  def("000 11110 xx 1 xxxxxx 10000 xxxxx xxxxx", "FP 1-source", fp1src);
  def("000 11110 xx 1 xxxxx 001000 xxxxx xx000", "FCMP", fcmp);
  def("000 11110 xx 1 xxxxxxxx 100 00000 xxxxx", "FMOV (scalar, immediate)", fmovImm);
  def("000 11110 xx 1 xxxxx xxxx 01 xxxxx xxxxx", "FCCMP", fccmp);
  def("000 11110 xx 1 xxxxx xxxx 11 xxxxx xxxxx", "FCSEL", fcsel);
  def("000 11111 xx x xxxxx x xxxxx xxxxx xxxxx", "FP 3-source", fp3src);
  def("x00 11110 xx 1 xx xxx 000000 xxxxx xxxxx", "FP<->int", fpInt);
  def("x00 11110 xx 0 xx xxx xxxxxx xxxxx xxxxx", "FP<->fixed", fpFixed);
}
