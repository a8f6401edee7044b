/**
 * Data processing — immediate (Arm ARM C4.1.86): PC-relative addressing, add/subtract (immediate),
 * logical (immediate), move wide, bitfield, extract.
 *
 * 32-bit forms (sf = 0) compute on the low word and write Wd zero-extended; flags come from the 32-bit result.
 */
import type { Decoder } from "./decoder.js";
import type { Cpu } from "./cpu.js";
import { setW, setX, setXsp, spSlot } from "./regs.js";
import { PC2 } from "./state.js";

const TWO32 = 4294967296;

// ---------------------------------------------------------------------------------------------------------------
// Bitmask immediates (Arm ARM J1 DecodeBitMasks with immediate = TRUE), computed for each N:immr:imms the first
// time it is decoded (all 8,192 at start-up cost 3-9 ms of every `xeno run-user`, in unoptimized code).
// Index (N << 12) | (immr << 6) | imms. BM[2k], BM[2k+1] = lo, hi of the 64-bit replicated mask; BM_OK[k] = 1
// once computed and valid, 2 for reserved encodings, 0 not computed yet. Elements of size <= 32 replicate identically into both halves, so the 32-bit form
// (N = 0) uses the low word.

const BM = new Int32Array(8192 * 2);
const BM_OK = new Uint8Array(8192);

/** Computes entry k of BM/BM_OK; returns BM_OK[k] (1 valid, 2 reserved). */
function bitmask(k: number): number {
  const n = k >>> 12, immr = (k >>> 6) & 63, imms = k & 63;
  const x = (n << 6) | (~imms & 63);
  if (x < 2) return (BM_OK[k] = 2); // len < 1: reserved
  const len = 31 - Math.clz32(x);
  const levels = (1 << len) - 1;
  const s = imms & levels, r = immr & levels;
  if (s === levels) return (BM_OK[k] = 2); // all-ones element: reserved
  const esize = 1 << len;
  let lo: number, hi: number;
  if (esize === 64) {
    // s + 1 ones (s <= 62) as lo/hi words, rotated right by r in two 32-bit halves (no BigInt: the BigInt form
    // of the whole table took ~16 ms of `xeno run-user busybox true`).
    const ones = s + 1;
    const wlo = ones >= 32 ? -1 : (1 << ones) - 1;
    const whi = ones <= 32 ? 0 : ones === 64 ? -1 : (1 << (ones - 32)) - 1;
    if (r === 0) { lo = wlo; hi = whi; }
    else if (r === 32) { lo = whi; hi = wlo; }
    else if (r < 32) { lo = (wlo >>> r) | (whi << (32 - r)); hi = (whi >>> r) | (wlo << (32 - r)); }
    else { const q = r - 32; lo = (whi >>> q) | (wlo << (32 - q)); hi = (wlo >>> q) | (whi << (32 - q)); }
    lo |= 0; hi |= 0;
  } else {
    const emask = esize === 32 ? -1 : (1 << esize) - 1;
    const welem = (1 << (s + 1)) - 1; // s + 1 <= 31
    let e = r === 0 ? welem : ((welem >>> r) | (welem << (esize - r))) & emask;
    for (let w = esize; w < 32; w <<= 1) e |= e << w;
    lo = hi = e | 0;
  }
  BM[2 * k] = lo;
  BM[2 * k + 1] = hi;
  return (BM_OK[k] = 1);
}

/** Bitmask immediate for N:immr:imms (tests and other groups): returns lo, hi in out; false when reserved. */
export function decodeBitMask(n: number, immr: number, imms: number, out: Int32Array): boolean {
  const k = ((n & 1) << 12) | ((immr & 63) << 6) | (imms & 63);
  if (BM_OK[k] === 0) bitmask(k);
  out[0] = BM[2 * k]; out[1] = BM[2 * k + 1];
  return BM_OK[k] === 1;
}

// ---------------------------------------------------------------------------------------------------------------

/** ADR / ADRP: op immlo 10000 immhi Rd. ADRP: (PC & ~0xfff) + (imm << 12). */
function adr(c: Cpu, i: number): void {
  const r = c.r;
  const imm = (((i << 8) >> 13) << 2) | ((i >>> 29) & 3); // sext(immhi:immlo, 21)
  let base = r[PC2] >>> 0, off = imm;
  if (i < 0) { base -= base & 0xfff; off = imm * 4096; }
  const l = base + off; // exact, in (-2^33, 2^34)
  const carry = Math.floor(l / TWO32);
  setX(c, i & 31, l | 0, (r[PC2 + 1] + carry) | 0);
}

/** ADD/ADDS/SUB/SUBS (immediate): sf op S 100010 sh imm12 Rn Rd. Rn and (non-flag-setting) Rd may be SP. */
function addSubImm(c: Cpu, i: number): void {
  const r = c.r;
  const sf = i >>> 31, sub = (i >>> 30) & 1, setFlags = (i >>> 29) & 1;
  const imm = ((i >>> 10) & 0xfff) << (((i >>> 22) & 1) * 12);
  const n = spSlot((i >>> 5) & 31), d = i & 31;
  const alo = r[n];
  if (sf === 0) {
    const a = alo >>> 0;
    const res = sub ? a - imm : a + imm;
    const v = res | 0;
    if (setFlags) {
      // Carry: unsigned result fits 32 bits for add; for sub, C = NOT borrow.
      const cflag = sub ? (a >= imm ? 1 : 0) : (res > 0xffffffff ? 1 : 0);
      const vflag = sub ? ((alo ^ imm) & (alo ^ v)) >>> 31 : (~(alo ^ imm) & (alo ^ v)) >>> 31;
      c.nzcv = ((v >>> 31) << 3) | ((v === 0 ? 1 : 0) << 2) | (cflag << 1) | vflag;
      setW(c, d, v);
    } else setXsp(c, d, v, 0);
    return;
  }
  const ahi = r[n + 1];
  let lo: number, hi: number, carry: number;
  if (sub) {
    const l = (alo >>> 0) - imm;
    lo = l | 0;
    const borrow = l < 0 ? 1 : 0;
    hi = (ahi - borrow) | 0;
    carry = borrow && ahi === 0 ? 0 : 1; // no borrow out of bit 63 unless a borrow ripples through hi = 0
  } else {
    const l = (alo >>> 0) + imm;
    lo = l | 0;
    const cin = l > 0xffffffff ? 1 : 0;
    hi = (ahi + cin) | 0;
    carry = cin && ahi === -1 ? 1 : 0;
  }
  if (setFlags) {
    // Overflow: operand signs equal (add) / differ (sub, imm is non-negative) and result sign differs.
    const vflag = sub ? (ahi & ~hi) >>> 31 : (~ahi & hi) >>> 31;
    c.nzcv = ((hi >>> 31) << 3) | ((lo === 0 && hi === 0 ? 1 : 0) << 2) | (carry << 1) | vflag;
    setX(c, d, lo, hi);
  } else setXsp(c, d, lo, hi);
}

// Fast paths: ADD/SUB Xd|SP, Xn|SP, #imm (no flags), the commonest immediate forms.
function addImm64(c: Cpu, i: number): void {
  const r = c.r, n = spSlot((i >>> 5) & 31);
  const l = (r[n] >>> 0) + (((i >>> 10) & 0xfff) << (((i >>> 22) & 1) * 12));
  setXsp(c, i & 31, l | 0, l > 0xffffffff ? (r[n + 1] + 1) | 0 : r[n + 1]);
}
function subImm64(c: Cpu, i: number): void {
  const r = c.r, n = spSlot((i >>> 5) & 31);
  const l = (r[n] >>> 0) - (((i >>> 10) & 0xfff) << (((i >>> 22) & 1) * 12));
  setXsp(c, i & 31, l | 0, l < 0 ? (r[n + 1] - 1) | 0 : r[n + 1]);
}

/** AND/ORR/EOR/ANDS (immediate): sf opc 100100 N immr imms Rn Rd. Rd may be SP except for ANDS. */
function logImm(c: Cpu, i: number): void {
  const k = (i >>> 10) & 0x1fff;
  const sf = i >>> 31;
  if ((BM_OK[k] !== 1 && (BM_OK[k] === 2 || bitmask(k) === 2)) || (sf === 0 && k >= 0x1000)) { c.undefinedInstruction(i); return; }
  const r = c.r;
  const opc = (i >>> 29) & 3, n = ((i >>> 5) & 31) << 1, d = i & 31;
  const mlo = BM[2 * k], mhi = BM[2 * k + 1];
  let lo: number, hi: number;
  if (opc === 1) { lo = r[n] | mlo; hi = r[n + 1] | mhi; }
  else if (opc === 2) { lo = r[n] ^ mlo; hi = r[n + 1] ^ mhi; }
  else { lo = r[n] & mlo; hi = r[n + 1] & mhi; }
  if (sf === 0) {
    if (opc === 3) { c.nzcv = ((lo >>> 31) << 3) | (lo === 0 ? 4 : 0); setW(c, d, lo); }
    else setXsp(c, d, lo, 0);
    return;
  }
  if (opc === 3) { c.nzcv = ((hi >>> 31) << 3) | ((lo | hi) === 0 ? 4 : 0); setX(c, d, lo, hi); }
  else setXsp(c, d, lo, hi);
}

/** MOVN/MOVZ/MOVK: sf opc 100101 hw imm16 Rd. opc 01 and (sf = 0, hw >= 2) are unallocated. */
function movWide(c: Cpu, i: number): void {
  const sf = i >>> 31, opc = (i >>> 29) & 3, hw = (i >>> 21) & 3, d = i & 31;
  if (opc === 1 || (sf === 0 && hw >= 2)) { c.undefinedInstruction(i); return; }
  const imm = (i >>> 5) & 0xffff;
  const sh = (hw & 1) << 4;
  if (opc === 3) { // MOVK
    if (d === 31) return;
    const r = c.r, k = (d << 1) | (hw >>> 1);
    r[k] = (r[k] & ~(0xffff << sh)) | (imm << sh);
    if (sf === 0) r[(d << 1) | 1] = 0;
    return;
  }
  let lo = 0, hi = 0;
  if (hw < 2) lo = imm << sh; else hi = imm << sh;
  if (opc === 0) { lo = ~lo; hi = sf === 0 ? 0 : ~hi; } // MOVN
  setX(c, d, lo, hi);
}

// 64-bit shift helpers for the bitfield group: result in (XL, XH).
let XL = 0, XH = 0;
/** Logical shift right of a 64-bit pair by 0..63. */
function lsr64(lo: number, hi: number, a: number): void {
  if (a === 0) { XL = lo; XH = hi; }
  else if (a < 32) { XL = (lo >>> a) | (hi << (32 - a)); XH = hi >>> a; }
  else { XL = hi >>> (a - 32); XH = 0; }
}
/** Shift left of a 64-bit pair by 0..63. */
function lsl64(lo: number, hi: number, a: number): void {
  if (a === 0) { XL = lo; XH = hi; }
  else if (a < 32) { XH = (hi << a) | (lo >>> (32 - a)); XL = lo << a; }
  else { XH = lo << (a - 32); XL = 0; }
}
/** Keeps the low `w` (1..64) bits of a pair, zero- or sign-extending from bit w-1. */
function field64(lo: number, hi: number, w: number, signed: boolean): void {
  if (w <= 32) {
    const v = w === 32 ? lo : signed ? (lo << (32 - w)) >> (32 - w) : lo & ((1 << w) - 1);
    XL = v; XH = signed ? v >> 31 : 0;
  } else if (w === 64) { XL = lo; XH = hi; }
  else { XL = lo; XH = signed ? (hi << (64 - w)) >> (64 - w) : hi & ((1 << (w - 32)) - 1); }
}

/**
 * SBFM/BFM/UBFM: sf opc 100110 N immr imms Rn Rd (aliases LSL/LSR/ASR #imm, [SU]BFX, [SU]BFIZ, BFI, BFXIL,
 * SXTB/H/W, UXTB/H). With S = imms, R = immr: S >= R moves Rn<S:R> to bit 0; S < R moves Rn<S:0> to bit
 * datasize - R (Arm ARM DecodeBitMasks with immediate = FALSE gives exactly these masks).
 */
function bitfield(c: Cpu, i: number): void {
  const sf = i >>> 31, opc = (i >>> 29) & 3, nbit = (i >>> 22) & 1;
  const R = (i >>> 16) & 63, S = (i >>> 10) & 63;
  if (opc === 3 || nbit !== sf || (sf === 0 && ((R | S) & 32) !== 0)) { c.undefinedInstruction(i); return; }
  const r = c.r, n = ((i >>> 5) & 31) << 1, d = i & 31;
  if (sf === 0) {
    const src = r[n];
    let v: number;
    if (S >= R) {
      const w = S - R + 1;
      const x = src >>> R;
      if (opc === 0) v = (x << (32 - w)) >> (32 - w);
      else if (opc === 2) v = w === 32 ? x | 0 : x & ((1 << w) - 1);
      else { const m = w === 32 ? -1 : (1 << w) - 1; v = (r[d << 1] & ~m) | (x & m); }
    } else {
      const w = S + 1, sh = 32 - R; // w + sh <= 32
      const m = (1 << w) - 1; // w <= 31
      if (opc === 0) v = ((src << (32 - w)) >> (32 - w)) << sh;
      else if (opc === 2) v = (src & m) << sh;
      else v = (r[d << 1] & ~(m << sh)) | ((src & m) << sh);
    }
    setW(c, d, v);
    return;
  }
  const slo = r[n], shi = r[n + 1];
  if (S >= R) {
    const w = S - R + 1;
    lsr64(slo, shi, R);
    if (opc !== 1) { field64(XL, XH, w, opc === 0); setX(c, d, XL, XH); return; }
    const xl = XL, xh = XH;
    field64(-1, -1, w, false); // mask
    const dl = r[d << 1], dh = r[(d << 1) | 1];
    setX(c, d, (dl & ~XL) | (xl & XL), (dh & ~XH) | (xh & XH));
    return;
  }
  const w = S + 1, sh = 64 - R;
  if (opc !== 1) {
    field64(slo, shi, w, opc === 0);
    lsl64(XL, XH, sh);
    setX(c, d, XL, XH);
    return;
  }
  field64(slo, shi, w, false);
  lsl64(XL, XH, sh);
  const xl = XL, xh = XH;
  field64(-1, -1, w, false);
  lsl64(XL, XH, sh);
  const dl = r[d << 1], dh = r[(d << 1) | 1];
  setX(c, d, (dl & ~XL) | xl, (dh & ~XH) | xh);
}

/** LSR / ASR Xd, Xn, #sh (UBFM / SBFM with imms = 63). */
function lsrImm64(c: Cpu, i: number): void {
  const r = c.r, n = ((i >>> 5) & 31) << 1;
  lsr64(r[n], r[n + 1], (i >>> 16) & 63);
  setX(c, i & 31, XL, XH);
}
function asrImm64(c: Cpu, i: number): void {
  const r = c.r, n = ((i >>> 5) & 31) << 1, a = (i >>> 16) & 63;
  const lo = r[n], hi = r[n + 1];
  if (a === 0) setX(c, i & 31, lo, hi);
  else if (a < 32) setX(c, i & 31, (lo >>> a) | (hi << (32 - a)), hi >> a);
  else setX(c, i & 31, hi >> (a - 32), hi >> 31);
}

/** EXTR: sf 00 100111 N 0 Rm imms Rn Rd: (Rn:Rm) >> lsb. ROR (immediate) is EXTR with Rn = Rm. */
function extr(c: Cpu, i: number): void {
  const sf = i >>> 31, nbit = (i >>> 22) & 1, lsb = (i >>> 10) & 63;
  if (nbit !== sf || (sf === 0 && lsb >= 32)) { c.undefinedInstruction(i); return; }
  const r = c.r, m = ((i >>> 16) & 31) << 1, n = ((i >>> 5) & 31) << 1, d = i & 31;
  if (sf === 0) {
    setW(c, d, lsb === 0 ? r[m] : (r[m] >>> lsb) | (r[n] << (32 - lsb)));
    return;
  }
  const mlo = r[m], mhi = r[m + 1], nlo = r[n];
  if (lsb === 0) setX(c, d, mlo, mhi);
  else if (lsb < 32) setX(c, d, (mlo >>> lsb) | (mhi << (32 - lsb)), (mhi >>> lsb) | (nlo << (32 - lsb)));
  else if (lsb === 32) setX(c, d, mhi, nlo);
  else {
    const s = lsb - 32, nhi = r[n + 1];
    setX(c, d, (mhi >>> s) | (nlo << (32 - s)), (nlo >>> s) | (nhi << (32 - s)));
  }
}

export function register(d: Decoder): void {
  d.def("xxx10000xxxxxxxxxxxxxxxxxxxxxxxx", "ADR/ADRP", adr);
  d.def("xxx100010xxxxxxxxxxxxxxxxxxxxxxx", "ADD/SUB (immediate)", addSubImm);
  d.def("100100010xxxxxxxxxxxxxxxxxxxxxxx", "ADD (immediate, 64)", addImm64);
  d.def("110100010xxxxxxxxxxxxxxxxxxxxxxx", "SUB (immediate, 64)", subImm64);
  d.def("xxx100100xxxxxxxxxxxxxxxxxxxxxxx", "AND/ORR/EOR/ANDS (immediate)", logImm);
  d.def("xxx100101xxxxxxxxxxxxxxxxxxxxxxx", "MOVN/MOVZ/MOVK", movWide);
  d.def("xxx100110xxxxxxxxxxxxxxxxxxxxxxx", "SBFM/BFM/UBFM", bitfield);
  d.def("1101001101xxxxxx111111xxxxxxxxxx", "LSR (immediate, 64)", lsrImm64);
  d.def("1001001101xxxxxx111111xxxxxxxxxx", "ASR (immediate, 64)", asrImm64);
  d.def("x00100111x0xxxxxxxxxxxxxxxxxxxxx", "EXTR", extr);
}
