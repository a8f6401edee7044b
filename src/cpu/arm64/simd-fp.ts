/**
 * Advanced SIMD floating point, vector and scalar forms (Arm ARM C4.1.95: "Advanced SIMD three same",
 * "two-register miscellaneous", "across lanes", "scalar pairwise", "vector x indexed element", "shift by
 * immediate" fixed-point conversions, "modified immediate" FMOV), single and double lanes (no FEAT_FP16).
 *
 * Every instruction copies its source registers into a small scratch register file (XS), computes the lanes
 * there with the IEEE core from fp.ts, and copies the result back. That costs a few dozen word moves but makes
 * aliasing (Vd = Vn in pairwise and by-element forms) and the reductions' intermediate values uniform, and keeps
 * the per-lane code identical to the scalar instructions'. The scratch is a plain object with the fields the core
 * reads (register views, fpcr, fpsr); FPSR is copied back after the lanes run. No allocation per instruction.
 */
import type { Decoder, Handler } from "./decoder.js";
import { trapsFp } from "./fp.js";
import type { Cpu } from "./cpu.js";
import {
  binD, binS, fmaD, fmaS, fmaCoreD, fmaCoreS, sqrtD, sqrtS, frintD, frintS, toFixed, fromFixed, cvtSD, cvtDS,
  cvtDSOdd, cvtHD, cvtSH, nanDtoS, pickNaND, pickNaNS, fzD, fzS, isSNaND, isSNaNS, putD, putS, expandImmD,
  expandImmS, IHI, IOC, DZC, OFC, UFC, IXC, FPCR_FZ, RN, RP, RM, RZ, TIEAWAY,
  OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MAX, OP_MIN, OP_MAXNM, OP_MINNM, OP_ABD, OP_MULX,
} from "./fp.js";

// ---------------------------------------------------------------------------------------------------------------
// Scratch register file: registers 0..7 (XA = Vd copy, XN = Vn, XM = Vm, XR = results).

const XBUF = new ArrayBuffer(8 * 16);
interface Scratch { vi32: Int32Array; vf32: Float32Array; vf64: Float64Array; vu16: Uint16Array; fpcr: number; fpsr: number }
const XS: Scratch = {
  vi32: new Int32Array(XBUF), vf32: new Float32Array(XBUF), vf64: new Float64Array(XBUF), vu16: new Uint16Array(XBUF),
  fpcr: 0, fpsr: 0,
};
// The core only touches the fields above; the cast lets it run on the scratch file (see header).
const X = XS as unknown as Cpu;
const XA = 0, XN = 1, XM = 2, XR = 3;

function load(c: Cpu, xr: number, n: number): void {
  const s = c.vi32, d = XS.vi32;
  d[4 * xr] = s[4 * n]; d[4 * xr + 1] = s[4 * n + 1]; d[4 * xr + 2] = s[4 * n + 2]; d[4 * xr + 3] = s[4 * n + 3];
}
function begin(c: Cpu): void { XS.fpcr = c.fpcr; XS.fpsr = c.fpsr; }
/** Copies the result register to Vd: `words` 32-bit words (the rest zeroed), and FPSR back. */
function store(c: Cpu, d: number, words: number): void {
  const s = XS.vi32, v = c.vi32;
  for (let k = 0; k < 4; k++) v[4 * d + k] = k < words ? s[4 * XR + k] : 0;
  c.fpsr = XS.fpsr;
}

// ---------------------------------------------------------------------------------------------------------------
// Per-lane operations

const OP_FMLA = 20, OP_FMLS = 21, OP_RECPS = 22, OP_RSQRTS = 23, OP_CMEQ = 24, OP_CMGE = 25, OP_CMGT = 26,
  OP_ACGE = 27, OP_ACGT = 28;
const PAIR = 0x100;

/** FPCompareEQ/GE/GT (abs for FACGE/FACGT) on scratch lanes; bi < 0 compares with +0.0. */
function cmpLane(op: number, dbl: boolean, ai: number, bi: number, swap = false): boolean {
  let a: number, b: number, nan: boolean, snan: boolean;
  if (dbl) {
    a = XS.vf64[ai]; b = bi < 0 ? 0 : XS.vf64[bi];
    if ((XS.fpcr & FPCR_FZ) !== 0) { a = fzD(X, a); b = fzD(X, b); }
    nan = a !== a || b !== b;
    const v = XS.vi32;
    snan = nan && (isSNaND(v[2 * ai + 1], v[2 * ai]) || (bi >= 0 && isSNaND(v[2 * bi + 1], v[2 * bi])));
  } else {
    a = XS.vf32[ai]; b = bi < 0 ? 0 : XS.vf32[bi];
    if ((XS.fpcr & FPCR_FZ) !== 0) { a = fzS(X, a); b = fzS(X, b); }
    nan = a !== a || b !== b;
    snan = nan && (isSNaNS(XS.vi32[ai]) || (bi >= 0 && isSNaNS(XS.vi32[bi])));
  }
  if (nan) {
    if (snan || op !== OP_CMEQ) XS.fpsr |= IOC;
    return false;
  }
  if (op === OP_ACGE || op === OP_ACGT) { a = Math.abs(a); b = Math.abs(b); }
  if (swap) { const t = a; a = b; b = t; }
  if (op === OP_CMEQ) return a === b;
  if (op === OP_CMGE || op === OP_ACGE) return a >= b;
  return a > b;
}

/** FRECPS (2 - a*b) / FRSQRTS ((3 - a*b) / 2), fused (Arm FPRecipStepFused, FPRSqrtStepFused). */
function stepLane(op: number, dbl: boolean, ai: number, bi: number): number {
  let a: number, b: number;
  if (dbl) {
    a = XS.vf64[ai]; b = XS.vf64[bi];
    if ((XS.fpcr & FPCR_FZ) !== 0) { a = fzD(X, a); b = fzD(X, b); }
  } else {
    a = XS.vf32[ai]; b = XS.vf32[bi];
    if ((XS.fpcr & FPCR_FZ) !== 0) { a = fzS(X, a); b = fzS(X, b); }
  }
  a = -a;
  if (a !== a || b !== b) {
    const v = XS.vi32;
    if (dbl) return pickNaND(X, v[2 * ai + 1] ^ 0x80000000, v[2 * ai], v[2 * bi + 1], v[2 * bi], 0, 0);
    return pickNaNS(X, v[ai] ^ 0x80000000, v[bi], 0);
  }
  const infA = a - a !== 0, infB = b - b !== 0;
  if ((infA && b === 0) || (infB && a === 0)) return op === OP_RECPS ? 2 : 1.5;
  if (infA || infB) return (a < 0) !== (b < 0) ? -Infinity : Infinity;
  if (op === OP_RECPS) return dbl ? fmaCoreD(X, 2, a, b) : fmaCoreS(X, 2, a, b);
  // (3 + a*b) / 2 with one rounding: halve an operand that halves exactly. When neither is that large, |a*b| is
  // far below half an ulp of 1.5 and only its sign matters (as the sticky bit): it is left unhalved, since
  // halving a denormal may round it to zero (FRSQRTS of two denormals toward zero gave 1.5, not 1.4999…).
  const lim = dbl ? 4.450147717014403e-308 : 2.350988701644575e-38;
  if (a >= lim || a <= -lim) a *= 0.5; else if (b >= lim || b <= -lim) b *= 0.5;
  return dbl ? fmaCoreD(X, 1.5, a, b) : fmaCoreS(X, 1.5, a, b);
}

/** One lane of a three-same operation: result into scratch lane index ri (same element size). */
function lane3(op: number, dbl: boolean, ai: number, bi: number, acc: number, ri: number): void {
  let r: number;
  if (op >= OP_CMEQ) {
    const t = cmpLane(op, dbl, ai, bi) ? -1 : 0;
    if (dbl) { XS.vi32[2 * ri] = t; XS.vi32[2 * ri + 1] = t; } else XS.vi32[ri] = t;
    return;
  }
  if (op === OP_FMLA || op === OP_FMLS) {
    const neg = op === OP_FMLS ? 1 : 0;
    r = dbl ? fmaD(X, acc, ai, bi, 0, neg) : fmaS(X, acc, ai, bi, 0, neg);
  } else if (op === OP_RECPS || op === OP_RSQRTS) r = stepLane(op, dbl, ai, bi);
  else r = dbl ? binD(X, op, ai, bi) : binS(X, op, ai, bi);
  if (dbl) putD(X, ri, r); else putS(X, ri, r);
}

// ---------------------------------------------------------------------------------------------------------------
// FRECPE / FRSQRTE (Arm ARM shared/functions/float: FPRecipEstimate, RecipEstimate, FPRSqrtEstimate,
// RecipSqrtEstimate), ARMv8.0 (no increased precision).

const RECIP = new Uint16Array(256); // RecipEstimate(256 + k)
const RSQRT = new Uint16Array(512); // RecipSqrtEstimate(k), k in 128..511
for (let k = 256; k < 512; k++) {
  const a = k * 2 + 1;
  const b = Math.floor((1 << 19) / a);
  RECIP[k - 256] = (b + 1) >> 1;
}
for (let k = 128; k < 512; k++) {
  let a = k;
  if (a < 256) a = a * 2 + 1; else { a = (a >> 1) << 1; a = (a + 1) * 2; }
  let b = 512;
  while (a * (b + 1) * (b + 1) < 2 ** 28) b++;
  RSQRT[k] = (b + 1) >> 1;
}

const TWO44 = 2 ** 44, TWO51 = 2 ** 51, TWO52 = 2 ** 52;

/** FRECPE on scratch lane ai; result written to lane ri. */
function recpeLane(dbl: boolean, ai: number, ri: number): void {
  const v = XS.vi32;
  let sign: number, exp: number, frac: number, a: number;
  if (dbl) {
    const hi = v[2 * ai + 1], lo = v[2 * ai];
    a = XS.vf64[ai];
    if ((XS.fpcr & FPCR_FZ) !== 0) a = fzD(X, a);
    if (a !== a) { putD(X, ri, pickNaND(X, hi, lo, 0, 0, 0, 0)); return; }
    sign = hi & 0x80000000; exp = (hi >>> 20) & 0x7ff; frac = (hi & 0xfffff) * 4294967296 + (lo >>> 0);
  } else {
    const w = v[ai];
    a = XS.vf32[ai];
    if ((XS.fpcr & FPCR_FZ) !== 0) a = fzS(X, a);
    if (a !== a) { putS(X, ri, pickNaNS(X, w, 0, 0)); return; }
    sign = w & 0x80000000; exp = (w >>> 23) & 0xff; frac = (w & 0x7fffff) * 536870912;
  }
  const neg = sign !== 0;
  let r: number;
  const rm = (XS.fpcr >>> 22) & 3;
  if (a === Infinity || a === -Infinity) r = neg ? -0 : 0;
  else if (a === 0) { XS.fpsr |= DZC; r = neg ? -Infinity : Infinity; }
  else if ((dbl && Math.abs(a) < 2 ** -1024) || (!dbl && Math.abs(a) < 2 ** -128)) {
    const inf = rm === RN || (rm === RP && !neg) || (rm === RM && neg);
    r = inf ? (neg ? -Infinity : Infinity) : (dbl ? (neg ? -1.7976931348623157e308 : 1.7976931348623157e308)
      : (neg ? -3.4028234663852886e38 : 3.4028234663852886e38));
    XS.fpsr |= OFC | IXC;
  } else if ((XS.fpcr & FPCR_FZ) !== 0 && Math.abs(a) >= (dbl ? 2 ** 1022 : 2 ** 126)) {
    r = neg ? -0 : 0;
    XS.fpsr |= UFC;
  } else {
    if (exp === 0) {
      if (frac < TWO51) { exp = -1; frac = (frac * 4) % TWO52; } else frac = (frac * 2) % TWO52;
    }
    const scaled = 256 + (Math.floor(frac / TWO44) & 0xff);
    let rexp = (dbl ? 2045 : 253) - exp;
    const est = RECIP[scaled - 256] & 0xff;
    let top20 = est << 12; // fraction<51:32>
    if (rexp === 0) top20 = (1 << 19) | (est << 11);
    else if (rexp === -1) { top20 = (1 << 18) | (est << 10); rexp = 0; }
    if (dbl) { v[2 * ri] = 0; v[2 * ri + 1] = sign | (rexp << 20) | top20; } else v[ri] = sign | (rexp << 23) | (top20 << 3);
    return;
  }
  if (dbl) XS.vf64[ri] = r; else XS.vf32[ri] = r;
}

/** FRSQRTE on scratch lane ai; result written to lane ri. */
function rsqrteLane(dbl: boolean, ai: number, ri: number): void {
  const v = XS.vi32;
  let exp: number, frac: number, a: number;
  if (dbl) {
    const hi = v[2 * ai + 1], lo = v[2 * ai];
    a = XS.vf64[ai];
    if ((XS.fpcr & FPCR_FZ) !== 0) a = fzD(X, a);
    if (a !== a) { putD(X, ri, pickNaND(X, hi, lo, 0, 0, 0, 0)); return; }
    exp = (hi >>> 20) & 0x7ff; frac = (hi & 0xfffff) * 4294967296 + (lo >>> 0);
  } else {
    const w = v[ai];
    a = XS.vf32[ai];
    if ((XS.fpcr & FPCR_FZ) !== 0) a = fzS(X, a);
    if (a !== a) { putS(X, ri, pickNaNS(X, w, 0, 0)); return; }
    exp = (w >>> 23) & 0xff; frac = (w & 0x7fffff) * 536870912;
  }
  let r: number;
  if (a === 0) { XS.fpsr |= DZC; r = 1 / a; }
  else if (a < 0) {
    XS.fpsr |= IOC;
    if (dbl) { v[2 * ri] = 0; v[2 * ri + 1] = 0x7ff80000; } else v[ri] = 0x7fc00000;
    return;
  } else if (a === Infinity) r = 0;
  else {
    if (exp === 0) {
      while (frac < TWO51) { frac *= 2; exp--; }
      frac = (frac * 2) % TWO52;
    }
    const scaled = (exp & 1) === 0 ? 256 + (Math.floor(frac / TWO44) & 0xff) : 128 + (Math.floor(frac / (TWO44 * 2)) & 0x7f);
    const rexp = Math.floor(((dbl ? 3068 : 380) - exp) / 2);
    const est = RSQRT[scaled] & 0xff;
    if (dbl) { v[2 * ri] = 0; v[2 * ri + 1] = ((rexp & 0x7ff) << 20) | (est << 12); }
    else v[ri] = ((rexp & 0xff) << 23) | (est << 15);
    return;
  }
  if (dbl) XS.vf64[ri] = r; else XS.vf32[ri] = r;
}

/** FRECPX (scalar): exponent-only reciprocal (Arm FPRecpX). */
function recpxLane(dbl: boolean, ai: number, ri: number): void {
  const v = XS.vi32;
  if (dbl) {
    const hi = v[2 * ai + 1], lo = v[2 * ai];
    let a = XS.vf64[ai];
    if ((XS.fpcr & FPCR_FZ) !== 0) a = fzD(X, a);
    if (a !== a) { putD(X, ri, pickNaND(X, hi, lo, 0, 0, 0, 0)); return; }
    const e = (hi >>> 20) & 0x7ff;
    v[2 * ri] = 0;
    v[2 * ri + 1] = (hi & 0x80000000) | ((e === 0 || a === 0 ? 0x7fe : (~e & 0x7ff)) << 20);
  } else {
    const w = v[ai];
    let a = XS.vf32[ai];
    if ((XS.fpcr & FPCR_FZ) !== 0) a = fzS(X, a);
    if (a !== a) { putS(X, ri, pickNaNS(X, w, 0, 0)); return; }
    const e = (w >>> 23) & 0xff;
    v[ri] = (w & 0x80000000) | ((e === 0 || a === 0 ? 0xfe : (~e & 0xff)) << 23);
  }
}

// Two-register miscellaneous operations: kind | mode << 8.
const M_ABS = 1, M_NEG = 2, M_SQRT = 3, M_RINT = 4, M_RINTX = 5, M_RINTI = 6, M_CVTS = 7, M_CVTU = 8, M_SCVTF = 9,
  M_UCVTF = 10, M_CMGT0 = 11, M_CMEQ0 = 12, M_CMLT0 = 13, M_CMGE0 = 14, M_CMLE0 = 15, M_RECPE = 16, M_RSQRTE = 17,
  M_RECPX = 18;

/** One lane of a two-register-misc operation (also fixed-point conversions with fbits). */
function laneMisc(kind: number, mode: number, dbl: boolean, ai: number, ri: number, fbits: number): void {
  const v = XS.vi32;
  switch (kind) {
    case M_ABS: case M_NEG:
      if (dbl) { v[2 * ri] = v[2 * ai]; v[2 * ri + 1] = kind === M_ABS ? v[2 * ai + 1] & 0x7fffffff : v[2 * ai + 1] ^ 0x80000000; }
      else v[ri] = kind === M_ABS ? v[ai] & 0x7fffffff : v[ai] ^ 0x80000000;
      return;
    case M_SQRT: if (dbl) putD(X, ri, sqrtD(X, ai)); else putS(X, ri, sqrtS(X, ai)); return;
    case M_RINT: case M_RINTX: case M_RINTI: {
      const m = kind === M_RINT ? mode : -1, exact = kind === M_RINTX;
      if (dbl) putD(X, ri, frintD(X, ai, m, exact)); else putS(X, ri, frintS(X, ai, m, exact));
      return;
    }
    case M_CVTS: case M_CVTU: {
      let a = dbl ? XS.vf64[ai] : XS.vf32[ai];
      if ((XS.fpcr & FPCR_FZ) !== 0) a = dbl ? fzD(X, a) : fzS(X, a);
      const lo = toFixed(X, a, fbits, kind === M_CVTU, dbl, mode);
      if (dbl) { v[2 * ri] = lo; v[2 * ri + 1] = IHI[0]; } else v[ri] = lo;
      return;
    }
    case M_SCVTF: case M_UCVTF: {
      const signed = kind === M_SCVTF;
      const lo = v[dbl ? 2 * ai : ai];
      const hi = dbl ? v[2 * ai + 1] : signed ? lo >> 31 : 0;
      const r = fromFixed(X, lo, hi, signed, fbits, !dbl);
      if (dbl) XS.vf64[ri] = r; else XS.vf32[ri] = r;
      return;
    }
    case M_RECPE: recpeLane(dbl, ai, ri); return;
    case M_RSQRTE: rsqrteLane(dbl, ai, ri); return;
    case M_RECPX: recpxLane(dbl, ai, ri); return;
    default: { // compare with zero
      let t: boolean;
      switch (kind) {
        case M_CMGT0: t = cmpLane(OP_CMGT, dbl, ai, -1); break;
        case M_CMEQ0: t = cmpLane(OP_CMEQ, dbl, ai, -1); break;
        case M_CMGE0: t = cmpLane(OP_CMGE, dbl, ai, -1); break;
        default: t = cmpLane(kind === M_CMLT0 ? OP_CMGT : OP_CMGE, dbl, ai, -1, true); // 0 > a, 0 >= a
      }
      const m = t ? -1 : 0;
      if (dbl) { v[2 * ri] = m; v[2 * ri + 1] = m; } else v[ri] = m;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Handlers

/** Three same (vector): 0 Q U 01110 a sz 1 Rm opcode 1 Rn Rd; scalar: 01 U 11110 a sz 1 Rm opcode 1 Rn Rd. */
function make3same(op: number, scalar: boolean): (c: Cpu, i: number) => void {
  const pair = (op & PAIR) !== 0, o = op & 0xff;
  return (c, i) => {
    const q = (i >>> 30) & 1, dbl = ((i >>> 22) & 1) === 1;
    if (!scalar && dbl && q === 0) { c.undefinedInstruction(i); return; }
    const n = (i >>> 5) & 31, m = (i >>> 16) & 31, d = i & 31;
    begin(c);
    load(c, XN, n); load(c, XM, m);
    if (o === OP_FMLA || o === OP_FMLS) load(c, XA, d);
    if (scalar) {
      if (dbl) lane3(o, true, 2 * XN, 2 * XM, 2 * XA, 2 * XR); else lane3(o, false, 4 * XN, 4 * XM, 4 * XA, 4 * XR);
      store(c, d, dbl ? 2 : 1);
      return;
    }
    const lanes = dbl ? 2 : q === 1 ? 4 : 2;
    const base = dbl ? 2 : 4;
    for (let j = 0; j < lanes; j++) {
      if (pair) {
        // Pairs from the concatenation Vm:Vn (Vn's lanes first).
        const k = 2 * j;
        const ai = k < lanes ? base * XN + k : base * XM + k - lanes;
        const bi = k + 1 < lanes ? base * XN + k + 1 : base * XM + k + 1 - lanes;
        lane3(o, dbl, ai, bi, 0, base * XR + j);
      } else lane3(o, dbl, base * XN + j, base * XM + j, base * XA + j, base * XR + j);
    }
    store(c, d, q === 1 ? 4 : 2);
  };
}

/** Two-register misc (vector / scalar). */
function makeMisc(kind: number, mode: number, scalar: boolean): (c: Cpu, i: number) => void {
  return (c, i) => {
    const q = (i >>> 30) & 1, dbl = ((i >>> 22) & 1) === 1;
    if (!scalar && dbl && q === 0) { c.undefinedInstruction(i); return; }
    const n = (i >>> 5) & 31, d = i & 31;
    begin(c);
    load(c, XN, n);
    if (scalar) {
      laneMisc(kind, mode, dbl, dbl ? 2 * XN : 4 * XN, dbl ? 2 * XR : 4 * XR, 0);
      store(c, d, dbl ? 2 : 1);
      return;
    }
    const lanes = dbl ? 2 : q === 1 ? 4 : 2, base = dbl ? 2 : 4;
    for (let j = 0; j < lanes; j++) laneMisc(kind, mode, dbl, base * XN + j, base * XR + j, 0);
    store(c, d, q === 1 ? 4 : 2);
  };
}

/** FCVTL/FCVTL2: widen the lower/upper half of Vn (4H->4S, 2S->2D). */
function fcvtl(c: Cpu, i: number): void {
  const q = (i >>> 30) & 1, dbl = ((i >>> 22) & 1) === 1, n = (i >>> 5) & 31, d = i & 31;
  begin(c);
  load(c, XN, n);
  if (dbl) {
    for (let j = 0; j < 2; j++) putD(X, 2 * XR + j, cvtSD(X, XS.vi32[4 * XN + 2 * q + j]));
  } else {
    for (let j = 0; j < 4; j++) {
      const r = cvtHD(X, XS.vu16[8 * XN + 4 * q + j]);
      if (r !== r) XS.vi32[4 * XR + j] = nanDtoS(); else XS.vf32[4 * XR + j] = r;
    }
  }
  store(c, d, 4);
}

/** FCVTN/FCVTN2 (4S->4H, 2D->2S) and FCVTXN/FCVTXN2 (2D->2S, round to odd), into the lower or upper half. */
function makeNarrow(odd: boolean, scalar: boolean): (c: Cpu, i: number) => void {
  return (c, i) => {
    const q = (i >>> 30) & 1, dbl = ((i >>> 22) & 1) === 1, n = (i >>> 5) & 31, d = i & 31;
    if (odd && !dbl) { c.undefinedInstruction(i); return; }
    begin(c);
    load(c, XN, n);
    const v = XS.vi32;
    if (scalar) {
      putS(X, 4 * XR, cvtDSOdd(X, v[4 * XN], v[4 * XN + 1]));
      store(c, d, 1);
      return;
    }
    load(c, XR, d); // FCVTN2 keeps the lower half
    const half = q === 1 ? 2 : 0;
    if (dbl) {
      for (let j = 0; j < 2; j++) {
        const lo = v[4 * XN + 2 * j], hi = v[4 * XN + 2 * j + 1];
        putS(X, 4 * XR + half + j, odd ? cvtDSOdd(X, lo, hi) : cvtDS(X, lo, hi));
      }
    } else {
      for (let j = 0; j < 4; j++) XS.vu16[8 * XR + 2 * half + j] = cvtSH(X, v[4 * XN + j]);
    }
    if (q === 0) { v[4 * XR + 2] = 0; v[4 * XR + 3] = 0; }
    store(c, d, 4);
  };
}

/** Across lanes (4S only): FMAXNMV, FMINNMV, FMAXV, FMINV; reduction tree op(op(e0,e1), op(e2,e3)). */
function makeAcross(op: number): (c: Cpu, i: number) => void {
  return (c, i) => {
    const q = (i >>> 30) & 1, sz = (i >>> 22) & 1, n = (i >>> 5) & 31, d = i & 31;
    if (q === 0 || sz === 1) { c.undefinedInstruction(i); return; }
    begin(c);
    load(c, XN, n);
    putS(X, 4 * XA, binS(X, op, 4 * XN, 4 * XN + 1));
    putS(X, 4 * XA + 1, binS(X, op, 4 * XN + 2, 4 * XN + 3));
    putS(X, 4 * XR, binS(X, op, 4 * XA, 4 * XA + 1));
    store(c, d, 1);
  };
}

/** Scalar pairwise: FADDP, FMAXP, FMINP, FMAXNMP, FMINNMP (Sd/Dd from the two lanes of Vn). */
function makeScalarPair(op: number): (c: Cpu, i: number) => void {
  return (c, i) => {
    const dbl = ((i >>> 22) & 1) === 1, n = (i >>> 5) & 31, d = i & 31;
    begin(c);
    load(c, XN, n);
    if (dbl) putD(X, 2 * XR, binD(X, op, 2 * XN, 2 * XN + 1)); else putS(X, 4 * XR, binS(X, op, 4 * XN, 4 * XN + 1));
    store(c, d, dbl ? 2 : 1);
  };
}

/** Vector/scalar x indexed element: FMLA, FMLS, FMUL, FMULX (size 1x: bit 22 = sz). */
function makeByElem(op: number, scalar: boolean): (c: Cpu, i: number) => void {
  return (c, i) => {
    const q = (i >>> 30) & 1, dbl = ((i >>> 22) & 1) === 1;
    const L = (i >>> 21) & 1, H = (i >>> 11) & 1;
    if (dbl && (L === 1 || (!scalar && q === 0))) { c.undefinedInstruction(i); return; }
    const idx = dbl ? H : (H << 1) | L;
    const n = (i >>> 5) & 31, m = (i >>> 16) & 31, d = i & 31;
    begin(c);
    load(c, XN, n); load(c, XM, m);
    if (op === OP_FMLA || op === OP_FMLS) load(c, XA, d);
    const base = dbl ? 2 : 4;
    const lanes = scalar ? 1 : dbl ? 2 : q === 1 ? 4 : 2;
    for (let j = 0; j < lanes; j++) lane3(op, dbl, base * XN + j, base * XM + idx, base * XA + j, base * XR + j);
    store(c, d, scalar ? (dbl ? 2 : 1) : q === 1 ? 4 : 2);
  };
}

/** Fixed-point conversions (shift by immediate): SCVTF/UCVTF/FCVTZS/FCVTZU with #fbits, vector or scalar. */
function makeFixed(kind: number, scalar: boolean): (c: Cpu, i: number) => void {
  return (c, i) => {
    const q = (i >>> 30) & 1, immh = (i >>> 19) & 15, immhb = (i >>> 16) & 127;
    let dbl: boolean, fbits: number;
    if ((immh & 8) !== 0) { dbl = true; fbits = 128 - immhb; }
    else if ((immh & 4) !== 0) { dbl = false; fbits = 64 - immhb; }
    else { c.undefinedInstruction(i); return; } // immh 001x is FP16 (not implemented), 0000 other encodings
    if (!scalar && dbl && q === 0) { c.undefinedInstruction(i); return; }
    const n = (i >>> 5) & 31, d = i & 31;
    begin(c);
    load(c, XN, n);
    const base = dbl ? 2 : 4;
    const lanes = scalar ? 1 : dbl ? 2 : q === 1 ? 4 : 2;
    for (let j = 0; j < lanes; j++) laneMisc(kind, RZ, dbl, base * XN + j, base * XR + j, fbits);
    store(c, d, scalar ? (dbl ? 2 : 1) : q === 1 ? 4 : 2);
  };
}

/** FMOV (vector, immediate): 0 Q op 0111100000 abc 1111 0 1 defgh Rd. */
function fmovVecImm(c: Cpu, i: number): void {
  const q = (i >>> 30) & 1, op = (i >>> 29) & 1, d = i & 31;
  const imm8 = (((i >>> 16) & 7) << 5) | ((i >>> 5) & 31);
  const v = c.vi32;
  if (op === 1) {
    if (q === 0) { c.undefinedInstruction(i); return; }
    const hi = expandImmD(imm8);
    v[4 * d] = 0; v[4 * d + 1] = hi; v[4 * d + 2] = 0; v[4 * d + 3] = hi;
  } else {
    const w = expandImmS(imm8);
    v[4 * d] = w; v[4 * d + 1] = w; v[4 * d + 2] = q ? w : 0; v[4 * d + 3] = q ? w : 0;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Registration

const b5 = (v: number): string => v.toString(2).padStart(5, "0");

export function register(d: Decoder): void {
  // Every form here is FP/SIMD: each traps when CPACR_EL1.FPEN disables it (fp.ts trapsFp).
  const def = (pattern: string, name: string, h: Handler): void => d.def(pattern, name, trapsFp(h));
  // Three same: [U, a, opcode, op]
  const SAME: [number, number, number, number, string][] = [
    [0, 0, 0x18, OP_MAXNM, "FMAXNM"], [0, 0, 0x19, OP_FMLA, "FMLA"], [0, 0, 0x1a, OP_ADD, "FADD"],
    [0, 0, 0x1b, OP_MULX, "FMULX"], [0, 0, 0x1c, OP_CMEQ, "FCMEQ"], [0, 0, 0x1e, OP_MAX, "FMAX"],
    [0, 0, 0x1f, OP_RECPS, "FRECPS"],
    [0, 1, 0x18, OP_MINNM, "FMINNM"], [0, 1, 0x19, OP_FMLS, "FMLS"], [0, 1, 0x1a, OP_SUB, "FSUB"],
    [0, 1, 0x1e, OP_MIN, "FMIN"], [0, 1, 0x1f, OP_RSQRTS, "FRSQRTS"],
    [1, 0, 0x18, OP_MAXNM | PAIR, "FMAXNMP"], [1, 0, 0x1a, OP_ADD | PAIR, "FADDP"], [1, 0, 0x1b, OP_MUL, "FMUL"],
    [1, 0, 0x1c, OP_CMGE, "FCMGE"], [1, 0, 0x1d, OP_ACGE, "FACGE"], [1, 0, 0x1e, OP_MAX | PAIR, "FMAXP"],
    [1, 0, 0x1f, OP_DIV, "FDIV"],
    [1, 1, 0x18, OP_MINNM | PAIR, "FMINNMP"], [1, 1, 0x1a, OP_ABD, "FABD"], [1, 1, 0x1c, OP_CMGT, "FCMGT"],
    [1, 1, 0x1d, OP_ACGT, "FACGT"], [1, 1, 0x1e, OP_MIN | PAIR, "FMINP"],
  ];
  const SCALAR_SAME = new Set(["FMULX", "FCMEQ", "FRECPS", "FRSQRTS", "FCMGE", "FACGE", "FABD", "FCMGT", "FACGT"]);
  for (const [u, a, opc, op, name] of SAME) {
    def(`0x${u}01110${a}x1xxxxx${b5(opc)}1xxxxxxxxxx`, name + " (vector)", make3same(op, false));
    if (SCALAR_SAME.has(name)) def(`01${u}11110${a}x1xxxxx${b5(opc)}1xxxxxxxxxx`, name + " (scalar)", make3same(op, true));
  }

  // Two-register misc: [U, a, opcode, kind, mode, name, scalarToo, vectorToo]
  const MISC: [number, number, number, number, number, string, boolean, boolean][] = [
    [0, 0, 0x18, M_RINT, RN, "FRINTN", false, true], [0, 0, 0x19, M_RINT, RM, "FRINTM", false, true],
    [0, 0, 0x1a, M_CVTS, RN, "FCVTNS", true, true], [0, 0, 0x1b, M_CVTS, RM, "FCVTMS", true, true],
    [0, 0, 0x1c, M_CVTS, TIEAWAY, "FCVTAS", true, true], [0, 0, 0x1d, M_SCVTF, 0, "SCVTF", true, true],
    [0, 1, 0x0c, M_CMGT0, 0, "FCMGT (zero)", true, true], [0, 1, 0x0d, M_CMEQ0, 0, "FCMEQ (zero)", true, true],
    [0, 1, 0x0e, M_CMLT0, 0, "FCMLT (zero)", true, true], [0, 1, 0x0f, M_ABS, 0, "FABS", false, true],
    [0, 1, 0x18, M_RINT, RP, "FRINTP", false, true], [0, 1, 0x19, M_RINT, RZ, "FRINTZ", false, true],
    [0, 1, 0x1a, M_CVTS, RP, "FCVTPS", true, true], [0, 1, 0x1b, M_CVTS, RZ, "FCVTZS", true, true],
    [0, 1, 0x1d, M_RECPE, 0, "FRECPE", true, true], [0, 1, 0x1f, M_RECPX, 0, "FRECPX", true, false],
    [1, 0, 0x18, M_RINT, TIEAWAY, "FRINTA", false, true], [1, 0, 0x19, M_RINTX, 0, "FRINTX", false, true],
    [1, 0, 0x1a, M_CVTU, RN, "FCVTNU", true, true], [1, 0, 0x1b, M_CVTU, RM, "FCVTMU", true, true],
    [1, 0, 0x1c, M_CVTU, TIEAWAY, "FCVTAU", true, true], [1, 0, 0x1d, M_UCVTF, 0, "UCVTF", true, true],
    [1, 1, 0x0c, M_CMGE0, 0, "FCMGE (zero)", true, true], [1, 1, 0x0d, M_CMLE0, 0, "FCMLE (zero)", true, true],
    [1, 1, 0x0f, M_NEG, 0, "FNEG", false, true], [1, 1, 0x19, M_RINTI, 0, "FRINTI", false, true],
    [1, 1, 0x1a, M_CVTU, RP, "FCVTPU", true, true], [1, 1, 0x1b, M_CVTU, RZ, "FCVTZU", true, true],
    [1, 1, 0x1d, M_RSQRTE, 0, "FRSQRTE", true, true], [1, 1, 0x1f, M_SQRT, 0, "FSQRT", false, true],
  ];
  for (const [u, a, opc, kind, mode, name, sc, vec] of MISC) {
    if (vec) def(`0x${u}01110${a}x10000${b5(opc)}10xxxxxxxxxx`, name + " (vector)", makeMisc(kind, mode, false));
    if (sc) def(`01${u}11110${a}x10000${b5(opc)}10xxxxxxxxxx`, name + " (scalar)", makeMisc(kind, mode, true));
  }
  def("0x0011100x100001011110xxxxxxxxxx", "FCVTL", fcvtl);
  def("0x0011100x100001011010xxxxxxxxxx", "FCVTN", makeNarrow(false, false));
  def("0x1011100x100001011010xxxxxxxxxx", "FCVTXN (vector)", makeNarrow(true, false));
  def("011111100x100001011010xxxxxxxxxx", "FCVTXN (scalar)", makeNarrow(true, true));

  // Across lanes and scalar pairwise.
  def("0x1011100x110000110010xxxxxxxxxx", "FMAXNMV", makeAcross(OP_MAXNM));
  def("0x1011101x110000110010xxxxxxxxxx", "FMINNMV", makeAcross(OP_MINNM));
  def("0x1011100x110000111110xxxxxxxxxx", "FMAXV", makeAcross(OP_MAX));
  def("0x1011101x110000111110xxxxxxxxxx", "FMINV", makeAcross(OP_MIN));
  def("011111100x110000110010xxxxxxxxxx", "FMAXNMP (scalar)", makeScalarPair(OP_MAXNM));
  def("011111101x110000110010xxxxxxxxxx", "FMINNMP (scalar)", makeScalarPair(OP_MINNM));
  def("011111100x110000110110xxxxxxxxxx", "FADDP (scalar)", makeScalarPair(OP_ADD));
  def("011111100x110000111110xxxxxxxxxx", "FMAXP (scalar)", makeScalarPair(OP_MAX));
  def("011111101x110000111110xxxxxxxxxx", "FMINP (scalar)", makeScalarPair(OP_MIN));

  // By element: 0 Q U 01111 1 sz L M Rm opcode H 0 Rn Rd (scalar: 01 U 11111 ...).
  const ELEM: [number, number, number, string][] = [
    [0, 0x1, OP_FMLA, "FMLA"], [0, 0x5, OP_FMLS, "FMLS"], [0, 0x9, OP_MUL, "FMUL"], [1, 0x9, OP_MULX, "FMULX"],
  ];
  for (const [u, opc, op, name] of ELEM) {
    const o = opc.toString(2).padStart(4, "0");
    def(`0x${u}011111xxxxxxx${o}x0xxxxxxxxxx`, name + " (by element)", makeByElem(op, false));
    def(`01${u}111111xxxxxxx${o}x0xxxxxxxxxx`, name + " (scalar, by element)", makeByElem(op, true));
  }

  // Fixed-point conversions (shift by immediate): opcode 11100 SCVTF/UCVTF, 11111 FCVTZS/FCVTZU.
  // immh = 1xxx (64-bit lanes) or 01xx (32-bit lanes); immh = 0000 is the modified-immediate group.
  const FIXED: [string, number, string][] = [
    ["0x0011110", M_SCVTF, "SCVTF (vector, fixed)"], ["0x1011110", M_UCVTF, "UCVTF (vector, fixed)"],
    ["010111110", M_SCVTF, "SCVTF (scalar, fixed)"], ["011111110", M_UCVTF, "UCVTF (scalar, fixed)"],
  ];
  for (const [pre, kind, name] of FIXED) {
    const scalar = pre.startsWith("01");
    for (const immh of ["1xxx", "01xx"]) {
      def(`${pre}${immh}xxx111001xxxxxxxxxx`, name, makeFixed(kind, scalar));
      const cvt = kind === M_SCVTF ? M_CVTS : M_CVTU;
      def(`${pre}${immh}xxx111111xxxxxxxxxx`, name.replace(kind === M_SCVTF ? "SCVTF" : "UCVTF", kind === M_SCVTF ? "FCVTZS" : "FCVTZU"),
        makeFixed(cvt, scalar));
    }
  }

  def("0xx0111100000xxx111101xxxxxxxxxx", "FMOV (vector, immediate)", fmovVecImm);
}
