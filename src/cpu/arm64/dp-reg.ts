/**
 * Data processing — register (Arm ARM C4.1.89): logical (shifted register), add/subtract (shifted and extended
 * register), add/subtract with carry, conditional compare, conditional select, data processing with 1, 2 and 3
 * sources. CRC32* (optional in ARMv8.0, advertised absent in ID_AA64ISAR0_EL1) and the pointer-authentication
 * encodings are left unmatched, so they decode as UNDEFINED.
 *
 * 32-bit forms (sf = 0) compute on the low word and write Wd zero-extended; flags come from the 32-bit result.
 * 64-bit values are (lo, hi) int32 pairs; helpers return the low word and leave the high word in module scratch.
 */
import type { Decoder } from "./decoder.js";
import type { Cpu } from "./cpu.js";
import { setW, setX, setXsp, spSlot } from "./regs.js";
import { COND } from "./state.js";
import { R as I64, mul64, umulhi32 } from "../../common/int64.js";

const TWO32 = 4294967296;

// Scratch for 64-bit results (no allocation): operand after shift/extend, and results of helpers.
let OL = 0, OH = 0;
let RH = 0;

/** Shifts a 64-bit pair by 0..63 (type: 0 LSL, 1 LSR, 2 ASR, 3 ROR); result in (OL, OH). */
function shift64(lo: number, hi: number, type: number, a: number): void {
  if (a === 0) { OL = lo; OH = hi; return; }
  switch (type) {
    case 0:
      if (a < 32) { OH = (hi << a) | (lo >>> (32 - a)); OL = lo << a; }
      else { OH = lo << (a - 32); OL = 0; }
      return;
    case 1:
      if (a < 32) { OL = (lo >>> a) | (hi << (32 - a)); OH = hi >>> a; }
      else { OL = (hi >>> (a - 32)) | 0; OH = 0; }
      return;
    case 2:
      if (a < 32) { OL = (lo >>> a) | (hi << (32 - a)); OH = hi >> a; }
      else { OL = hi >> (a - 32); OH = hi >> 31; }
      return;
    default:
      if (a < 32) { OL = (lo >>> a) | (hi << (32 - a)); OH = (hi >>> a) | (lo << (32 - a)); }
      else if (a === 32) { OL = hi; OH = lo; }
      else { const b = a - 32; OL = (hi >>> b) | (lo << (32 - b)); OH = (lo >>> b) | (hi << (32 - b)); }
  }
}

/** Shifts a 32-bit value by 0..31 (type as shift64). */
function shift32(v: number, type: number, a: number): number {
  switch (type) {
    case 0: return v << a;
    case 1: return (v >>> a) | 0;
    case 2: return v >> a;
    default: return a === 0 ? v : (v >>> a) | (v << (32 - a));
  }
}

/** Arm ARM AddWithCarry, 32-bit: returns the result; sets NZCV when s !== 0. */
function awc32(c: Cpu, a: number, b: number, cin: number, s: number): number {
  const l = (a >>> 0) + (b >>> 0) + cin;
  const res = l | 0;
  if (s !== 0) {
    c.nzcv = ((res >>> 31) << 3) | (res === 0 ? 4 : 0) | (l > 0xffffffff ? 2 : 0) | ((~(a ^ b) & (a ^ res)) >>> 31);
  }
  return res;
}

/** Arm ARM AddWithCarry, 64-bit: returns the low word, high word in RH; sets NZCV when s !== 0. */
function awc64(c: Cpu, alo: number, ahi: number, blo: number, bhi: number, cin: number, s: number): number {
  const l = (alo >>> 0) + (blo >>> 0) + cin;
  const h = (ahi >>> 0) + (bhi >>> 0) + (l > 0xffffffff ? 1 : 0);
  const lo = l | 0, hi = h | 0;
  RH = hi;
  if (s !== 0) {
    c.nzcv = ((hi >>> 31) << 3) | ((lo | hi) === 0 ? 4 : 0) | (h > 0xffffffff ? 2 : 0) |
      ((~(ahi ^ bhi) & (ahi ^ hi)) >>> 31);
  }
  return lo;
}

// ---------------------------------------------------------------------------------------------------------------
// Logical (shifted register): sf opc 01010 shift N Rm imm6 Rn Rd. opc: AND, ORR, EOR, ANDS; N inverts Rm.

function logShift(c: Cpu, i: number): void {
  const r = c.r;
  const sf = i >>> 31, opc = (i >>> 29) & 3, type = (i >>> 22) & 3, a = (i >>> 10) & 63;
  const m = ((i >>> 16) & 31) << 1, n = ((i >>> 5) & 31) << 1, d = i & 31;
  const inv = (i >> 21) & 1 ? -1 : 0;
  if (sf === 0) {
    if (a >= 32) { c.undefinedInstruction(i); return; }
    const b = shift32(r[m], type, a) ^ inv;
    const x = r[n];
    const v = opc === 1 ? x | b : opc === 2 ? x ^ b : x & b;
    if (opc === 3) c.nzcv = ((v >>> 31) << 3) | (v === 0 ? 4 : 0);
    setW(c, d, v);
    return;
  }
  shift64(r[m], r[m + 1], type, a);
  const bl = OL ^ inv, bh = OH ^ inv;
  const xl = r[n], xh = r[n + 1];
  let lo: number, hi: number;
  if (opc === 1) { lo = xl | bl; hi = xh | bh; }
  else if (opc === 2) { lo = xl ^ bl; hi = xh ^ bh; }
  else {
    lo = xl & bl; hi = xh & bh;
    if (opc === 3) c.nzcv = ((hi >>> 31) << 3) | ((lo | hi) === 0 ? 4 : 0);
  }
  setX(c, d, lo, hi);
}

/** MOV (register) = ORR Xd/Wd, ZR, Rm: the common case gets its own handler. */
function movReg64(c: Cpu, i: number): void {
  const d = i & 31;
  if (d !== 31) { const r = c.r, m = ((i >>> 16) & 31) << 1; r[d << 1] = r[m]; r[(d << 1) | 1] = r[m + 1]; }
}
function movReg32(c: Cpu, i: number): void {
  const d = i & 31;
  if (d !== 31) { const r = c.r; r[d << 1] = r[((i >>> 16) & 31) << 1]; r[(d << 1) | 1] = 0; }
}

// ---------------------------------------------------------------------------------------------------------------
// Add/subtract (shifted register): sf op S 01011 shift 0 Rm imm6 Rn Rd. Shift 11 is reserved. Rn/Rd: 31 = ZR.

function addSubShift(c: Cpu, i: number): void {
  const r = c.r;
  const sf = i >>> 31, sub = (i >>> 30) & 1, s = (i >>> 29) & 1, type = (i >>> 22) & 3, a = (i >>> 10) & 63;
  const m = ((i >>> 16) & 31) << 1, n = ((i >>> 5) & 31) << 1, d = i & 31;
  if (type === 3) { c.undefinedInstruction(i); return; }
  if (sf === 0) {
    if (a >= 32) { c.undefinedInstruction(i); return; }
    const b = shift32(r[m], type, a);
    setW(c, d, sub ? awc32(c, r[n], ~b, 1, s) : awc32(c, r[n], b, 0, s));
    return;
  }
  shift64(r[m], r[m + 1], type, a);
  const lo = sub ? awc64(c, r[n], r[n + 1], ~OL, ~OH, 1, s) : awc64(c, r[n], r[n + 1], OL, OH, 0, s);
  setX(c, d, lo, RH);
}

// Fast paths for the commonest forms (LSL #0): ADD/SUB Xd, Xn, Xm and CMP/CMN/ADDS/SUBS.
function add64(c: Cpu, i: number): void {
  const r = c.r, m = ((i >>> 16) & 31) << 1, n = ((i >>> 5) & 31) << 1, d = i & 31;
  const l = (r[n] >>> 0) + (r[m] >>> 0);
  setX(c, d, l | 0, (r[n + 1] + r[m + 1] + (l > 0xffffffff ? 1 : 0)) | 0);
}
function sub64(c: Cpu, i: number): void {
  const r = c.r, m = ((i >>> 16) & 31) << 1, n = ((i >>> 5) & 31) << 1, d = i & 31;
  const l = (r[n] >>> 0) - (r[m] >>> 0);
  setX(c, d, l | 0, (r[n + 1] - r[m + 1] - (l < 0 ? 1 : 0)) | 0);
}
function adds64(c: Cpu, i: number): void {
  const r = c.r, m = ((i >>> 16) & 31) << 1, n = ((i >>> 5) & 31) << 1;
  setX(c, i & 31, awc64(c, r[n], r[n + 1], r[m], r[m + 1], 0, 1), RH);
}
function subs64(c: Cpu, i: number): void {
  const r = c.r, m = ((i >>> 16) & 31) << 1, n = ((i >>> 5) & 31) << 1;
  setX(c, i & 31, awc64(c, r[n], r[n + 1], ~r[m], ~r[m + 1], 1, 1), RH);
}
function add32(c: Cpu, i: number): void {
  const r = c.r;
  setW(c, i & 31, (r[((i >>> 5) & 31) << 1] + r[((i >>> 16) & 31) << 1]) | 0);
}
function sub32(c: Cpu, i: number): void {
  const r = c.r;
  setW(c, i & 31, (r[((i >>> 5) & 31) << 1] - r[((i >>> 16) & 31) << 1]) | 0);
}
function adds32(c: Cpu, i: number): void {
  const r = c.r;
  setW(c, i & 31, awc32(c, r[((i >>> 5) & 31) << 1], r[((i >>> 16) & 31) << 1], 0, 1));
}
function subs32(c: Cpu, i: number): void {
  const r = c.r;
  setW(c, i & 31, awc32(c, r[((i >>> 5) & 31) << 1], ~r[((i >>> 16) & 31) << 1], 1, 1));
}

/**
 * Add/subtract (extended register): sf op S 01011 00 1 Rm option imm3 Rn Rd. Rn is Xn|SP; Rd is Xd|SP unless
 * flags are set. option: UXTB UXTH UXTW UXTX SXTB SXTH SXTW SXTX, then LSL #imm3 (0..4).
 */
function addSubExt(c: Cpu, i: number): void {
  const r = c.r;
  const sf = i >>> 31, sub = (i >>> 30) & 1, s = (i >>> 29) & 1;
  const opt = (i >>> 13) & 7, sh = (i >>> 10) & 7;
  const m = ((i >>> 16) & 31) << 1, n = spSlot((i >>> 5) & 31), d = i & 31;
  if (sh > 4) { c.undefinedInstruction(i); return; }
  let bl = r[m], bh = r[m + 1];
  switch (opt) {
    case 0: bl &= 0xff; bh = 0; break;
    case 1: bl &= 0xffff; bh = 0; break;
    case 2: bh = 0; break;
    case 3: break;
    case 4: bl = (bl << 24) >> 24; bh = bl >> 31; break;
    case 5: bl = (bl << 16) >> 16; bh = bl >> 31; break;
    case 6: bh = bl >> 31; break;
    default: break;
  }
  if (sf === 0) {
    const b = bl << sh;
    const v = sub ? awc32(c, r[n], ~b, 1, s) : awc32(c, r[n], b, 0, s);
    if (s) setW(c, d, v); else setXsp(c, d, v, 0);
    return;
  }
  if (sh !== 0) { bh = (bh << sh) | (bl >>> (32 - sh)); bl <<= sh; }
  const lo = sub ? awc64(c, r[n], r[n + 1], ~bl, ~bh, 1, s) : awc64(c, r[n], r[n + 1], bl, bh, 0, s);
  if (s) setX(c, d, lo, RH); else setXsp(c, d, lo, RH);
}

// ---------------------------------------------------------------------------------------------------------------
// ADC/ADCS/SBC/SBCS: sf op S 11010000 Rm 000000 Rn Rd.

function adcSbc(c: Cpu, i: number): void {
  const r = c.r;
  const sf = i >>> 31, sub = (i >>> 30) & 1, s = (i >>> 29) & 1;
  const m = ((i >>> 16) & 31) << 1, n = ((i >>> 5) & 31) << 1, d = i & 31;
  const cin = (c.nzcv >>> 1) & 1;
  const inv = sub ? -1 : 0;
  if (sf === 0) { setW(c, d, awc32(c, r[n], r[m] ^ inv, cin, s)); return; }
  const lo = awc64(c, r[n], r[n + 1], r[m] ^ inv, r[m + 1] ^ inv, cin, s);
  setX(c, d, lo, RH);
}

// ---------------------------------------------------------------------------------------------------------------
// Conditional compare: sf op 1 11010010 Rm|imm5 cond o(11) 0 Rn 0 nzcv. op: 0 CCMN, 1 CCMP. Bit 11: immediate.

function condCmp(c: Cpu, i: number): void {
  if (COND[(((i >>> 12) & 15) << 4) | c.nzcv] === 0) { c.nzcv = i & 15; return; }
  const r = c.r;
  const sf = i >>> 31, sub = (i >>> 30) & 1, n = ((i >>> 5) & 31) << 1;
  const f = (i >>> 16) & 31;
  let bl: number, bh: number;
  if ((i & 0x800) !== 0) { bl = f; bh = 0; } else { bl = r[f << 1]; bh = r[(f << 1) | 1]; }
  if (sf === 0) { if (sub) awc32(c, r[n], ~bl, 1, 1); else awc32(c, r[n], bl, 0, 1); return; }
  if (sub) awc64(c, r[n], r[n + 1], ~bl, ~bh, 1, 1); else awc64(c, r[n], r[n + 1], bl, bh, 0, 1);
}

// ---------------------------------------------------------------------------------------------------------------
// Conditional select: sf op 0 11010100 Rm cond 0 o2 Rn Rd. (op, o2): CSEL, CSINC, CSINV, CSNEG.

function condSel(c: Cpu, i: number): void {
  const r = c.r;
  const sf = i >>> 31, d = i & 31;
  if (COND[(((i >>> 12) & 15) << 4) | c.nzcv] !== 0) {
    const n = ((i >>> 5) & 31) << 1;
    if (sf === 0) setW(c, d, r[n]); else setX(c, d, r[n], r[n + 1]);
    return;
  }
  const m = ((i >>> 16) & 31) << 1;
  const op = ((i >>> 29) & 2) | ((i >>> 10) & 1); // 0 CSEL, 1 CSINC, 2 CSINV, 3 CSNEG
  let lo = r[m], hi = r[m + 1];
  if (sf === 0) {
    setW(c, d, op === 0 ? lo : op === 1 ? (lo + 1) | 0 : op === 2 ? ~lo : -lo | 0);
    return;
  }
  switch (op) {
    case 1: lo = (lo + 1) | 0; if (lo === 0) hi = (hi + 1) | 0; break;
    case 2: lo = ~lo; hi = ~hi; break;
    case 3: hi = lo === 0 ? -hi | 0 : ~hi; lo = -lo | 0; break;
    default: break;
  }
  setX(c, d, lo, hi);
}

// ---------------------------------------------------------------------------------------------------------------
// Data processing (1 source): sf 1 0 11010110 00000 opcode Rn Rd: RBIT REV16 REV32/REV REV CLZ CLS.

function rbit32(v: number): number {
  v = ((v >>> 1) & 0x55555555) | ((v & 0x55555555) << 1);
  v = ((v >>> 2) & 0x33333333) | ((v & 0x33333333) << 2);
  v = ((v >>> 4) & 0x0f0f0f0f) | ((v & 0x0f0f0f0f) << 4);
  v = ((v >>> 8) & 0x00ff00ff) | ((v & 0x00ff00ff) << 8);
  return (v >>> 16) | (v << 16);
}
function bswap32(v: number): number {
  return (v << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);
}
function rev16(v: number): number {
  return ((v >>> 8) & 0x00ff00ff) | ((v & 0x00ff00ff) << 8);
}

function dp1(c: Cpu, i: number): void {
  const r = c.r;
  const sf = i >>> 31, op = (i >>> 10) & 7, n = ((i >>> 5) & 31) << 1, d = i & 31;
  const lo = r[n], hi = r[n + 1];
  if (sf === 0) {
    switch (op) {
      case 0: setW(c, d, rbit32(lo)); return;
      case 1: setW(c, d, rev16(lo)); return;
      case 2: setW(c, d, bswap32(lo)); return;
      case 4: setW(c, d, Math.clz32(lo)); return;
      case 5: setW(c, d, Math.clz32(lo ^ (lo >> 1)) - 1); return;
      default: c.undefinedInstruction(i); return;
    }
  }
  switch (op) {
    case 0: setX(c, d, rbit32(hi), rbit32(lo)); return;
    case 1: setX(c, d, rev16(lo), rev16(hi)); return;
    case 2: setX(c, d, bswap32(lo), bswap32(hi)); return;
    case 3: setX(c, d, bswap32(hi), bswap32(lo)); return;
    case 4: setX(c, d, hi !== 0 ? Math.clz32(hi) : 32 + Math.clz32(lo), 0); return;
    case 5: {
      // CLS = CLZ(x EOR (x ASR 1)) - 1
      const zh = hi ^ (hi >> 1), zl = lo ^ ((lo >>> 1) | (hi << 31));
      setX(c, d, (zh !== 0 ? Math.clz32(zh) : 32 + Math.clz32(zl)) - 1, 0);
      return;
    }
    default: c.undefinedInstruction(i); return;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Data processing (2 source): sf 0 0 11010110 Rm opcode Rn Rd: UDIV SDIV LSLV LSRV ASRV RORV.

/**
 * Unsigned 64-bit division (b != 0): returns the quotient's low word, high word in RH. No BigInt: Number
 * division where exact (both < 2^53: floor of the correctly rounded quotient is exact), 16-bit long division
 * for 32-bit divisors, and for divisors >= 2^32 (quotient < 2^32) an estimate corrected by exact remainders.
 */
function udiv64(alo: number, ahi: number, blo: number, bhi: number): number {
  const ah = ahi >>> 0, bh = bhi >>> 0, al = alo >>> 0, bl = blo >>> 0;
  if (ah < 0x200000 && bh < 0x200000) {
    const q = Math.floor((ah * TWO32 + al) / (bh * TWO32 + bl));
    const qh = Math.floor(q / TWO32);
    RH = qh | 0;
    return (q - qh * TWO32) | 0;
  }
  if (bh === 0) {
    const qh = Math.floor(ah / bl);
    let rem = ah - qh * bl;
    let x = rem * 65536 + (al >>> 16);
    const q1 = Math.floor(x / bl);
    rem = x - q1 * bl;
    x = rem * 65536 + (al & 0xffff);
    const q0 = Math.floor(x / bl);
    RH = qh | 0;
    return ((q1 << 16) | q0) | 0;
  }
  if (ah < bh) { RH = 0; return 0; }
  // q* < 2^32. Estimate, step down by one so q <= q*, then correct upwards (at most a few steps).
  let q = Math.floor((ah * TWO32 + al) / (bh * TWO32 + bl)) - 1;
  if (q < 0) q = 0;
  if (q > 0xffffffff) q = 0xffffffff;
  // rem = a - q * b (q * b <= a, so the 64-bit product is exact).
  const pl = Math.imul(q, blo) >>> 0;
  const ph = (umulhi32(q, blo) + Math.imul(q, bhi)) >>> 0;
  let rl = al - pl;
  let rh = ah - ph - (rl < 0 ? 1 : 0);
  if (rl < 0) rl += TWO32;
  while (rh > bh || (rh === bh && rl >= bl)) {
    q++;
    rl -= bl;
    rh -= bh + (rl < 0 ? 1 : 0);
    if (rl < 0) rl += TWO32;
  }
  RH = 0;
  return q | 0;
}
function dp2(c: Cpu, i: number): void {
  const r = c.r;
  const sf = i >>> 31, op = (i >>> 10) & 63;
  const m = ((i >>> 16) & 31) << 1, n = ((i >>> 5) & 31) << 1, d = i & 31;
  if (sf === 0) {
    const a = r[n], b = r[m];
    switch (op) {
      case 2: setW(c, d, b === 0 ? 0 : Math.floor((a >>> 0) / (b >>> 0)) | 0); return;
      case 3: setW(c, d, b === 0 ? 0 : Math.trunc(a / b) | 0); return; // INT_MIN / -1 wraps to INT_MIN
      case 8: setW(c, d, a << (b & 31)); return;
      case 9: setW(c, d, a >>> (b & 31)); return;
      case 10: setW(c, d, a >> (b & 31)); return;
      case 11: setW(c, d, shift32(a, 3, b & 31)); return;
      default: c.undefinedInstruction(i); return;
    }
  }
  const alo = r[n], ahi = r[n + 1], blo = r[m], bhi = r[m + 1];
  switch (op) {
    case 2:
      if ((blo | bhi) === 0) { setX(c, d, 0, 0); return; }
      setX(c, d, udiv64(alo, ahi, blo, bhi), RH);
      return;
    case 3: {
      if ((blo | bhi) === 0) { setX(c, d, 0, 0); return; }
      // |a| / |b| unsigned, then fix the sign; INT64_MIN / -1 gives 2^63 = INT64_MIN naturally.
      let xl = alo, xh = ahi, yl = blo, yh = bhi;
      if (xh < 0) { xh = xl === 0 ? -xh | 0 : ~xh; xl = -xl | 0; }
      if (yh < 0) { yh = yl === 0 ? -yh | 0 : ~yh; yl = -yl | 0; }
      let ql = udiv64(xl, xh, yl, yh), qh = RH;
      if ((ahi ^ bhi) < 0) { qh = ql === 0 ? -qh | 0 : ~qh; ql = -ql | 0; }
      setX(c, d, ql, qh);
      return;
    }
    case 8: case 9: case 10: case 11:
      shift64(alo, ahi, op - 8, blo & 63);
      setX(c, d, OL, OH);
      return;
    default: c.undefinedInstruction(i); return;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Data processing (3 source): sf op54 11011 op31 Rm o0 Ra Rn Rd.

/** High 64 bits of the unsigned 128-bit product a * b: returns lo word, hi word in RH. */
function umulh64(alo: number, ahi: number, blo: number, bhi: number): number {
  const p00h = umulhi32(alo, blo) >>> 0;
  const p01l = Math.imul(alo, bhi) >>> 0, p01h = umulhi32(alo, bhi) >>> 0;
  const p10l = Math.imul(ahi, blo) >>> 0, p10h = umulhi32(ahi, blo) >>> 0;
  const p11l = Math.imul(ahi, bhi) >>> 0, p11h = umulhi32(ahi, bhi);
  const mid = p00h + p01l + p10l; // < 3 * 2^32
  const c1 = mid >= 0x200000000 ? 2 : mid >= TWO32 ? 1 : 0;
  const t = p01h + p10h + p11l + c1; // < 4 * 2^32
  const c2 = Math.floor(t / TWO32);
  RH = (p11h + c2) | 0;
  return t | 0;
}

function dp3(c: Cpu, i: number): void {
  const r = c.r;
  const sf = i >>> 31, op31 = (i >>> 21) & 7, o0 = (i >>> 15) & 1;
  const m = ((i >>> 16) & 31) << 1, a = ((i >>> 10) & 31) << 1, n = ((i >>> 5) & 31) << 1, d = i & 31;
  if ((i & 0x60000000) !== 0) { c.undefinedInstruction(i); return; }
  if (sf === 0) {
    if (op31 !== 0) { c.undefinedInstruction(i); return; }
    const p = Math.imul(r[n], r[m]);
    setW(c, d, o0 ? (r[a] - p) | 0 : (r[a] + p) | 0);
    return;
  }
  let pl: number, ph: number;
  switch (op31) {
    case 0: // MADD / MSUB
      pl = mul64(r[n], r[n + 1], r[m], r[m + 1]);
      ph = I64[0];
      break;
    case 1: case 5: { // SMADDL/SMSUBL, UMADDL/UMSUBL: 32 x 32 -> 64
      const x = r[n], y = r[m];
      pl = Math.imul(x, y);
      ph = umulhi32(x, y);
      if (op31 === 1) ph = (ph - (x < 0 ? y : 0) - (y < 0 ? x : 0)) | 0;
      break;
    }
    case 2: case 6: { // SMULH, UMULH (Ra is ignored; o0 must be 0)
      if (o0 !== 0) { c.undefinedInstruction(i); return; }
      const xl = r[n], xh = r[n + 1], yl = r[m], yh = r[m + 1];
      let lo = umulh64(xl, xh, yl, yh), hi = RH;
      if (op31 === 2) {
        // Signed high = unsigned high - (x < 0 ? y : 0) - (y < 0 ? x : 0)  (mod 2^64)
        if (xh < 0) { const l = (lo >>> 0) - (yl >>> 0); hi = (hi - yh - (l < 0 ? 1 : 0)) | 0; lo = l | 0; }
        if (yh < 0) { const l = (lo >>> 0) - (xl >>> 0); hi = (hi - xh - (l < 0 ? 1 : 0)) | 0; lo = l | 0; }
      }
      setX(c, d, lo, hi);
      return;
    }
    default: c.undefinedInstruction(i); return;
  }
  const al = r[a], ah = r[a + 1];
  if (o0 === 0) {
    const l = (al >>> 0) + (pl >>> 0);
    setX(c, d, l | 0, (ah + ph + (l > 0xffffffff ? 1 : 0)) | 0);
  } else {
    const l = (al >>> 0) - (pl >>> 0);
    setX(c, d, l | 0, (ah - ph - (l < 0 ? 1 : 0)) | 0);
  }
}

export function register(d: Decoder): void {
  d.def("xxx01010xxxxxxxxxxxxxxxxxxxxxxxx", "AND/BIC/ORR/ORN/EOR/EON/ANDS/BICS (shifted register)", logShift);
  d.def("10101010000xxxxx00000011111xxxxx", "MOV (register, 64)", movReg64);
  d.def("00101010000xxxxx00000011111xxxxx", "MOV (register, 32)", movReg32);
  d.def("xxx01011xx0xxxxxxxxxxxxxxxxxxxxx", "ADD/SUB (shifted register)", addSubShift);
  d.def("10001011000xxxxx000000xxxxxxxxxx", "ADD (register, 64)", add64);
  d.def("11001011000xxxxx000000xxxxxxxxxx", "SUB (register, 64)", sub64);
  d.def("10101011000xxxxx000000xxxxxxxxxx", "ADDS (register, 64)", adds64);
  d.def("11101011000xxxxx000000xxxxxxxxxx", "SUBS (register, 64)", subs64);
  d.def("00001011000xxxxx000000xxxxxxxxxx", "ADD (register, 32)", add32);
  d.def("01001011000xxxxx000000xxxxxxxxxx", "SUB (register, 32)", sub32);
  d.def("00101011000xxxxx000000xxxxxxxxxx", "ADDS (register, 32)", adds32);
  d.def("01101011000xxxxx000000xxxxxxxxxx", "SUBS (register, 32)", subs32);
  d.def("xxx01011001xxxxxxxxxxxxxxxxxxxxx", "ADD/SUB (extended register)", addSubExt);
  d.def("xxx11010000xxxxx000000xxxxxxxxxx", "ADC/ADCS/SBC/SBCS", adcSbc);
  d.def("xx111010010xxxxxxxxxx0xxxxx0xxxx", "CCMN/CCMP", condCmp);
  d.def("xx011010100xxxxxxxxx0xxxxxxxxxxx", "CSEL/CSINC/CSINV/CSNEG", condSel);
  d.def("x101101011000000000xxxxxxxxxxxxx", "RBIT/REV16/REV32/REV/CLZ/CLS", dp1);
  d.def("x0011010110xxxxx00xxxxxxxxxxxxxx", "UDIV/SDIV/LSLV/LSRV/ASRV/RORV", dp2);
  d.def("x0011011xxxxxxxxxxxxxxxxxxxxxxxx", "MADD/MSUB/SMADDL/SMSUBL/UMADDL/UMSUBL/SMULH/UMULH", dp3);
}
