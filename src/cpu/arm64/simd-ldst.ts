/**
 * Loads and stores of SIMD&FP registers (Arm ARM C4.1.88): LDR/STR of B/H/S/D/Q in every addressing mode
 * (unsigned offset, unscaled, pre/post-index, register offset, literal for S/D/Q), LDP/STP/LDNP/STNP of S/D/Q,
 * and the Advanced SIMD structure loads/stores (C3.2.x "Advanced SIMD load/store multiple structures" and
 * "single structure"): LD1..LD4/ST1..ST4, single-lane forms and LD1R..LD4R, with and without post-index.
 *
 * Register bits are moved through the integer views (vi32/vu16/vu8) only, never the float views, so NaN payloads
 * survive. Scalar loads zero the rest of the 128-bit register; 64-bit arrangements zero the upper half; lane
 * loads leave the other lanes alone. Loads read all of memory into a scratch buffer before writing any register,
 * so a fault leaves no partial register state (stores may be partly done, as the architecture allows).
 *
 * Every handler first honours CPACR_EL1.FPEN through Cpu.fpTrap (EC 0x07). Address arithmetic (64-bit with
 * carry) is shared with ldst.ts.
 */
import type { Decoder } from "./decoder.js";
import type { Cpu } from "./cpu.js";
import { spSlot } from "./regs.js";
import { eaHi, eaLiteral, eaOff, eaReg } from "./ldst.js";

// -------------------------------------------------------------------------------------------------------------
// Single-register accesses. kind = size << 2 | opc with V = 1:
// 0 STR Bt, 1 LDR Bt, 2 STR Qt, 3 LDR Qt, 4 STR Ht, 5 LDR Ht, 8 STR St, 9 LDR St, 12 STR Dt, 13 LDR Dt.

/** log2 of the access size of a kind. */
function scaleOf(kind: number): number { return (kind & 2) !== 0 ? 4 : kind >> 2; }

function fpAccess(c: Cpu, kind: number, t: number, lo: number, hi: number): void {
  const m = c.mmu, v = c.vi32, k = t << 2;
  switch (kind) {
    case 0: m.write8(lo, hi, c.vu8[t << 4]); return;
    case 1: { const x = m.read8(lo, hi); v[k] = x; v[k + 1] = 0; v[k + 2] = 0; v[k + 3] = 0; return; }
    case 2: {
      const l2 = (lo >>> 0) + 8, hi2 = l2 > 0xffffffff ? (hi + 1) | 0 : hi;
      const a = v[k], b = v[k + 1], d = v[k + 2], e = v[k + 3];
      m.write64(lo, hi, a, b);
      m.write64(l2 | 0, hi2, d, e);
      return;
    }
    case 3: {
      const l2 = (lo >>> 0) + 8, hi2 = l2 > 0xffffffff ? (hi + 1) | 0 : hi;
      const a = m.read64(lo, hi), b = m.out[0];
      const d = m.read64(l2 | 0, hi2), e = m.out[0];
      v[k] = a; v[k + 1] = b; v[k + 2] = d; v[k + 3] = e;
      return;
    }
    case 4: m.write16(lo, hi, c.vu16[t << 3]); return;
    case 5: { const x = m.read16(lo, hi); v[k] = x; v[k + 1] = 0; v[k + 2] = 0; v[k + 3] = 0; return; }
    case 8: m.write32(lo, hi, v[k]); return;
    case 9: { const x = m.read32(lo, hi); v[k] = x; v[k + 1] = 0; v[k + 2] = 0; v[k + 3] = 0; return; }
    case 12: m.write64(lo, hi, v[k], v[k + 1]); return;
    default: { const x = m.read64(lo, hi); v[k] = x; v[k + 1] = m.out[0]; v[k + 2] = 0; v[k + 3] = 0; return; }
  }
}

function kindOf(i: number): number { return ((i >>> 28) & 0xc) | ((i >>> 22) & 3); }

/** LDR/STR (SIMD&FP, unsigned offset): size 111 1 01 opc imm12 Rn Rt. */
function fpUimm(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const kind = kindOf(i);
  const lo = eaOff(c.r, spSlot((i >>> 5) & 31), ((i >>> 10) & 0xfff) << scaleOf(kind));
  fpAccess(c, kind, i & 31, lo, eaHi);
}

/** LDUR/STUR (SIMD&FP): size 111 1 00 opc 0 imm9 00 Rn Rt. */
function fpUnscaled(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const lo = eaOff(c.r, spSlot((i >>> 5) & 31), (i << 11) >> 23);
  fpAccess(c, kindOf(i), i & 31, lo, eaHi);
}

/** Post-index (SIMD&FP): imm9 01. */
function fpPost(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const r = c.r, n = spSlot((i >>> 5) & 31);
  const lo = r[n], hi = r[n + 1];
  const nlo = eaOff(r, n, (i << 11) >> 23), nhi = eaHi;
  fpAccess(c, kindOf(i), i & 31, lo, hi);
  r[n] = nlo; r[n + 1] = nhi;
}

/** Pre-index (SIMD&FP): imm9 11. */
function fpPre(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const r = c.r, n = spSlot((i >>> 5) & 31);
  const lo = eaOff(r, n, (i << 11) >> 23), hi = eaHi;
  fpAccess(c, kindOf(i), i & 31, lo, hi);
  r[n] = lo; r[n + 1] = hi;
}

/** Register offset (SIMD&FP): size 111 1 00 opc 1 Rm option S 10 Rn Rt; S shifts by the access size. */
function fpReg(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const kind = kindOf(i);
  const lo = eaReg(c.r, i, scaleOf(kind));
  fpAccess(c, kind, i & 31, lo, eaHi);
}

/** LDR (literal, SIMD&FP): opc 011 1 00 imm19 Rt; opc 00 S, 01 D, 10 Q (11 unallocated). */
function fpLiteral(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const lo = eaLiteral(c.r, i);
  const opc = i >>> 30;
  fpAccess(c, opc === 0 ? 9 : opc === 1 ? 13 : 3, i & 31, lo, eaHi);
}

// -------------------------------------------------------------------------------------------------------------
// Pairs: opc 101 1 mode L imm7 Rt2 Rn Rt; opc 00 S, 01 D, 10 Q.

function fpPairAccess(c: Cpu, i: number, lo: number, hi: number): void {
  const m = c.mmu, v = c.vi32;
  const opc = i >>> 30, k = (i & 31) << 2, k2 = ((i >>> 10) & 31) << 2;
  const l2 = (lo >>> 0) + (4 << opc), lo2 = l2 | 0, hi2 = l2 > 0xffffffff ? (hi + 1) | 0 : hi;
  const load = (i & 0x400000) !== 0;
  if (opc === 0) {
    if (load) {
      const a = m.read32(lo, hi), b = m.read32(lo2, hi2);
      v[k] = a; v[k + 1] = 0; v[k + 2] = 0; v[k + 3] = 0;
      v[k2] = b; v[k2 + 1] = 0; v[k2 + 2] = 0; v[k2 + 3] = 0;
    } else {
      const a = v[k], b = v[k2];
      m.write32(lo, hi, a);
      m.write32(lo2, hi2, b);
    }
  } else if (opc === 1) {
    if (load) {
      const a = m.read64(lo, hi), ah = m.out[0];
      const b = m.read64(lo2, hi2), bh = m.out[0];
      v[k] = a; v[k + 1] = ah; v[k + 2] = 0; v[k + 3] = 0;
      v[k2] = b; v[k2 + 1] = bh; v[k2 + 2] = 0; v[k2 + 3] = 0;
    } else {
      const a = v[k], ah = v[k + 1], b = v[k2], bh = v[k2 + 1];
      m.write64(lo, hi, a, ah);
      m.write64(lo2, hi2, b, bh);
    }
  } else {
    // Q pair: 32 bytes at lo; the four doublewords at lo, +8, +16, +24.
    const s = SCR32;
    if (load) {
      readWords(c, lo, hi, 32);
      v[k] = s[0]; v[k + 1] = s[1]; v[k + 2] = s[2]; v[k + 3] = s[3];
      v[k2] = s[4]; v[k2 + 1] = s[5]; v[k2 + 2] = s[6]; v[k2 + 3] = s[7];
    } else {
      s[0] = v[k]; s[1] = v[k + 1]; s[2] = v[k + 2]; s[3] = v[k + 3];
      s[4] = v[k2]; s[5] = v[k2 + 1]; s[6] = v[k2 + 2]; s[7] = v[k2 + 3];
      writeWords(c, lo, hi, 32);
    }
  }
}

/** sext(imm7) << (2 + opc). */
function fpPairOff(i: number): number { return ((i << 10) >> 25) << (2 + (i >>> 30)); }

function fpPairOffset(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const lo = eaOff(c.r, spSlot((i >>> 5) & 31), fpPairOff(i));
  fpPairAccess(c, i, lo, eaHi);
}
function fpPairPost(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const r = c.r, n = spSlot((i >>> 5) & 31);
  const lo = r[n], hi = r[n + 1];
  const nlo = eaOff(r, n, fpPairOff(i)), nhi = eaHi;
  fpPairAccess(c, i, lo, hi);
  r[n] = nlo; r[n + 1] = nhi;
}
function fpPairPre(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const r = c.r, n = spSlot((i >>> 5) & 31);
  const lo = eaOff(r, n, fpPairOff(i)), hi = eaHi;
  fpPairAccess(c, i, lo, hi);
  r[n] = lo; r[n + 1] = hi;
}

// -------------------------------------------------------------------------------------------------------------
// Structure loads/stores. Scratch: up to 64 bytes (LD4 of four Q registers), reused (no allocation).

const SCR = new ArrayBuffer(64);
const SCR8 = new Uint8Array(SCR);
const SCR16 = new Uint16Array(SCR);
const SCR32 = new Int32Array(SCR);

/** Reads `bytes` (a multiple of 8) from (lo, hi) into SCR, doubleword by doubleword. */
function readWords(c: Cpu, lo: number, hi: number, bytes: number): void {
  const m = c.mmu;
  for (let k = 0; k < bytes; k += 8) {
    const l = (lo >>> 0) + k;
    const w = m.read64(l | 0, l > 0xffffffff ? (hi + 1) | 0 : hi);
    SCR32[k >> 2] = w; SCR32[(k >> 2) + 1] = m.out[0];
  }
}

/** Writes `bytes` (a multiple of 8) of SCR to (lo, hi). */
function writeWords(c: Cpu, lo: number, hi: number, bytes: number): void {
  const m = c.mmu;
  for (let k = 0; k < bytes; k += 8) {
    const l = (lo >>> 0) + k;
    m.write64(l | 0, l > 0xffffffff ? (hi + 1) | 0 : hi, SCR32[k >> 2], SCR32[(k >> 2) + 1]);
  }
}

/** Post-index writeback: Xn|SP += (Rm == 31 ? imm : Xm). */
function structWriteback(c: Cpu, i: number, n: number, imm: number): void {
  const r = c.r, rm = (i >>> 16) & 31;
  const l = (r[n] >>> 0) + (rm === 31 ? imm : r[rm << 1] >>> 0);
  r[n + 1] = (r[n + 1] + (rm === 31 ? 0 : r[(rm << 1) | 1]) + (l > 0xffffffff ? 1 : 0)) | 0;
  r[n] = l | 0;
}

/**
 * (rpt, selem) for each multiple-structure opcode (bits 15:12), packed as rpt << 4 | selem; 0 = unallocated.
 * 0000 LD4/ST4, 0010 LD1/ST1 x4, 0100 LD3/ST3, 0110 LD1/ST1 x3, 0111 LD1/ST1 x1, 1000 LD2/ST2, 1010 LD1/ST1 x2.
 */
const MULTI = new Uint8Array([0x14, 0, 0x41, 0, 0x13, 0, 0x31, 0x11, 0x12, 0, 0x21, 0, 0, 0, 0, 0]);

/**
 * LD1..LD4 / ST1..ST4 (multiple structures): 0 Q 0011000 L 000000 opcode size Rn Rt, and post-index
 * 0 Q 0011001 L 0 Rm opcode size Rn Rt. Element e of structure s of register block r is at memory element
 * (r * elements + e) * selem + s and belongs to V[(t + r + s) mod 32] (Arm ARM C7.2 LD1..LD4 pseudocode).
 */
function ldstMulti(c: Cpu, i: number): void {
  const pk = MULTI[(i >>> 12) & 15];
  const q = (i >>> 30) & 1, size = (i >>> 10) & 3;
  const rpt = pk >>> 4, selem = pk & 15;
  if (pk === 0 || (size === 3 && q === 0 && selem !== 1)) { c.undefinedInstruction(i); return; }
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const r = c.r, n = spSlot((i >>> 5) & 31), t = i & 31;
  const dbytes = 8 << q, total = dbytes * rpt * selem;
  const lo = r[n], hi = r[n + 1];
  const load = (i & 0x400000) !== 0;
  const v = c.vi32;
  if (selem === 1) {
    // LD1/ST1: registers are consecutive blocks of memory.
    const words = dbytes >> 2;
    if (load) {
      readWords(c, lo, hi, total);
      for (let b = 0; b < rpt; b++) {
        const k = ((t + b) & 31) << 2, s = b * words;
        v[k] = SCR32[s]; v[k + 1] = SCR32[s + 1];
        if (q !== 0) { v[k + 2] = SCR32[s + 2]; v[k + 3] = SCR32[s + 3]; } else { v[k + 2] = 0; v[k + 3] = 0; }
      }
    } else {
      for (let b = 0; b < rpt; b++) {
        const k = ((t + b) & 31) << 2, s = b * words;
        SCR32[s] = v[k]; SCR32[s + 1] = v[k + 1];
        if (q !== 0) { SCR32[s + 2] = v[k + 2]; SCR32[s + 3] = v[k + 3]; }
      }
      writeWords(c, lo, hi, total);
    }
  } else {
    // LD2/LD3/LD4 (rpt = 1): interleaved elements.
    const elements = dbytes >> size;
    if (load) {
      readWords(c, lo, hi, total);
      for (let s = 0; s < selem; s++) {
        const tt = (t + s) & 31;
        for (let e = 0; e < elements; e++) {
          const x = e * selem + s;
          switch (size) {
            case 0: c.vu8[(tt << 4) + e] = SCR8[x]; break;
            case 1: c.vu16[(tt << 3) + e] = SCR16[x]; break;
            case 2: v[(tt << 2) + e] = SCR32[x]; break;
            default: v[(tt << 2) + 2 * e] = SCR32[2 * x]; v[(tt << 2) + 2 * e + 1] = SCR32[2 * x + 1]; break;
          }
        }
        if (q === 0) { v[(tt << 2) + 2] = 0; v[(tt << 2) + 3] = 0; }
      }
    } else {
      for (let s = 0; s < selem; s++) {
        const tt = (t + s) & 31;
        for (let e = 0; e < elements; e++) {
          const x = e * selem + s;
          switch (size) {
            case 0: SCR8[x] = c.vu8[(tt << 4) + e]; break;
            case 1: SCR16[x] = c.vu16[(tt << 3) + e]; break;
            case 2: SCR32[x] = v[(tt << 2) + e]; break;
            default: SCR32[2 * x] = v[(tt << 2) + 2 * e]; SCR32[2 * x + 1] = v[(tt << 2) + 2 * e + 1]; break;
          }
        }
      }
      writeWords(c, lo, hi, total);
    }
  }
  if ((i & 0x800000) !== 0) structWriteback(c, i, n, total);
}

/**
 * LD1..LD4 / ST1..ST4 (single structure) and LD1R..LD4R: 0 Q 0011010 L R 00000 opcode S size Rn Rt, and
 * post-index 0 Q 0011011 L R Rm opcode S size Rn Rt. selem = opcode<0>:R + 1; opcode<2:1> selects the element
 * size (3: replicate), and Q:S:size the lane (Arm ARM C7.2 "LD1 (single structure)" decode).
 */
function ldstSingle(c: Cpu, i: number): void {
  const q = (i >>> 30) & 1, load = (i & 0x400000) !== 0;
  const opcode = (i >>> 13) & 7, s = (i >>> 12) & 1, size = (i >>> 10) & 3;
  const selem = (((opcode & 1) << 1) | ((i >>> 21) & 1)) + 1;
  let scale = opcode >> 1, index = 0, replicate = false;
  switch (scale) {
    case 0: index = (q << 3) | (s << 2) | size; break;
    case 1:
      if ((size & 1) !== 0) { c.undefinedInstruction(i); return; }
      index = (q << 2) | (s << 1) | (size >> 1);
      break;
    case 2:
      if ((size & 2) !== 0) { c.undefinedInstruction(i); return; }
      if ((size & 1) === 0) index = (q << 1) | s;
      else {
        if (s !== 0) { c.undefinedInstruction(i); return; }
        index = q; scale = 3;
      }
      break;
    default:
      if (!load || s !== 0) { c.undefinedInstruction(i); return; }
      scale = size; replicate = true;
      break;
  }
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const r = c.r, m = c.mmu, n = spSlot((i >>> 5) & 31), t = i & 31;
  const ebytes = 1 << scale, total = selem * ebytes;
  const lo = r[n], hi = r[n + 1];
  const vu8 = c.vu8, vu16 = c.vu16, v = c.vi32;
  if (load) {
    // Read every element first (scratch), then write the registers.
    for (let k = 0; k < selem; k++) {
      const l = (lo >>> 0) + k * ebytes, alo = l | 0, ahi = l > 0xffffffff ? (hi + 1) | 0 : hi;
      switch (scale) {
        case 0: SCR32[2 * k] = m.read8(alo, ahi); break;
        case 1: SCR32[2 * k] = m.read16(alo, ahi); break;
        case 2: SCR32[2 * k] = m.read32(alo, ahi); break;
        default: SCR32[2 * k] = m.read64(alo, ahi); SCR32[2 * k + 1] = m.out[0]; break;
      }
    }
    for (let k = 0; k < selem; k++) {
      const tt = (t + k) & 31, x = SCR32[2 * k];
      if (!replicate) {
        switch (scale) {
          case 0: vu8[(tt << 4) + index] = x; break;
          case 1: vu16[(tt << 3) + index] = x; break;
          case 2: v[(tt << 2) + index] = x; break;
          default: v[(tt << 2) + 2 * index] = x; v[(tt << 2) + 2 * index + 1] = SCR32[2 * k + 1]; break;
        }
        continue;
      }
      // Replicate: build the 32-bit pattern (or 64-bit pair) and fill the 64- or 128-bit register.
      let w0: number, w1: number;
      switch (scale) {
        case 0: w0 = w1 = (x & 0xff) * 0x01010101; break;
        case 1: w0 = w1 = (x & 0xffff) | (x << 16); break;
        case 2: w0 = w1 = x; break;
        default: w0 = x; w1 = SCR32[2 * k + 1]; break;
      }
      const b = tt << 2;
      v[b] = w0; v[b + 1] = w1;
      if (q !== 0) { v[b + 2] = w0; v[b + 3] = w1; } else { v[b + 2] = 0; v[b + 3] = 0; }
    }
  } else {
    for (let k = 0; k < selem; k++) {
      const tt = (t + k) & 31;
      const l = (lo >>> 0) + k * ebytes, alo = l | 0, ahi = l > 0xffffffff ? (hi + 1) | 0 : hi;
      switch (scale) {
        case 0: m.write8(alo, ahi, vu8[(tt << 4) + index]); break;
        case 1: m.write16(alo, ahi, vu16[(tt << 3) + index]); break;
        case 2: m.write32(alo, ahi, v[(tt << 2) + index]); break;
        default: m.write64(alo, ahi, v[(tt << 2) + 2 * index], v[(tt << 2) + 2 * index + 1]); break;
      }
    }
  }
  if ((i & 0x800000) !== 0) structWriteback(c, i, n, total);
}

// -------------------------------------------------------------------------------------------------------------

const FP_NAMES: Record<number, string> = { 0: "STR (B)", 1: "LDR (B)", 2: "STR (Q)", 3: "LDR (Q)", 4: "STR (H)",
  5: "LDR (H)", 8: "STR (S)", 9: "LDR (S)", 12: "STR (D)", 13: "LDR (D)" };

function bin(v: number, n: number): string { return v.toString(2).padStart(n, "0"); }

export function register(d: Decoder): void {
  for (const kind of [0, 1, 2, 3, 4, 5, 8, 9, 12, 13]) {
    const so = bin(kind >> 2, 2) + "111 1 00" + bin(kind & 3, 2);
    const uo = bin(kind >> 2, 2) + "111 1 01" + bin(kind & 3, 2);
    const name = FP_NAMES[kind] + " (SIMD&FP";
    d.def(uo + "xxxxxxxxxxxx xxxxx xxxxx", name + ", unsigned offset)", fpUimm);
    d.def(so + "0 xxxxxxxxx 00 xxxxx xxxxx", name + ", unscaled)", fpUnscaled);
    d.def(so + "0 xxxxxxxxx 01 xxxxx xxxxx", name + ", post-index)", fpPost);
    d.def(so + "0 xxxxxxxxx 11 xxxxx xxxxx", name + ", pre-index)", fpPre);
    d.def(so + "1 xxxxx x1x x 10 xxxxx xxxxx", name + ", register)", fpReg);
  }
  for (const opc of ["00", "01", "10"]) {
    d.def(opc + "011 1 00 xxxxxxxxxxxxxxxxxxx xxxxx", "LDR (literal, SIMD&FP)", fpLiteral);
    d.def(opc + "101 1 000 x xxxxxxx xxxxx xxxxx xxxxx", "LDNP/STNP (SIMD&FP)", fpPairOffset);
    d.def(opc + "101 1 001 x xxxxxxx xxxxx xxxxx xxxxx", "LDP/STP (SIMD&FP, post-index)", fpPairPost);
    d.def(opc + "101 1 010 x xxxxxxx xxxxx xxxxx xxxxx", "LDP/STP (SIMD&FP, offset)", fpPairOffset);
    d.def(opc + "101 1 011 x xxxxxxx xxxxx xxxxx xxxxx", "LDP/STP (SIMD&FP, pre-index)", fpPairPre);
  }
  d.def("0x 0011000 x 000000 xxxx xx xxxxx xxxxx", "LD1-4/ST1-4 (multiple structures)", ldstMulti);
  d.def("0x 0011001 x 0 xxxxx xxxx xx xxxxx xxxxx", "LD1-4/ST1-4 (multiple structures, post-index)", ldstMulti);
  d.def("0x 0011010 x x 00000 xxx x xx xxxxx xxxxx", "LD1-4/ST1-4 (single structure)", ldstSingle);
  d.def("0x 0011011 x x xxxxx xxx x xx xxxxx xxxxx", "LD1-4/ST1-4 (single structure, post-index)", ldstSingle);
}
