/**
 * Advanced SIMD integer instructions that read and write V registers only, translated to WebAssembly SIMD
 * (v128). The V registers stay in the vCPU state block (ST_V + 16 · n, little-endian, as the interpreter's typed
 * views see them): each instruction loads its sources with v128.load, computes, and stores Vd with v128.store, so
 * Vd may alias a source freely and nothing is cached between instructions. The 64-bit (Q = 0) forms zero bits
 * 127:64 of Vd, as the interpreter's `finish` does.
 *
 * Only forms wasm computes exactly are taken (modular arithmetic, logic, compares, shuffles, widening multiplies);
 * saturating, rounding, halving and floating-point forms stay interpreted. Validity follows the interpreter's
 * handlers (simd-same.ts, simd-long.ts, simd-shift.ts, simd-misc.ts, simd-perm.ts): an encoding one of them
 * treats as UNDEFINED is not taken here, so the interpreter raises the exception.
 *
 * The forms that also touch general registers or memory (DUP/INS (general), UMOV/SMOV, LD1/ST1) live in
 * translate.ts, which has the register cache and the inline TLB.
 */
import {
  Code, SIMD, SPLAT, EXTRACT_U, REPLACE, EQ, NE, LT_S, GT_S, GT_U, LE_S, GE_S, GE_U, ABS, NEG, SHL, SHR_S, SHR_U,
  ADD, SUB, MUL, MIN_S, MIN_U, MAX_S, MAX_U, EXTEND_LOW_S, EXTEND_HIGH_S, EXTEND_LOW_U, EXTEND_HIGH_U,
  EXTMUL_LOW_S, EXTMUL_HIGH_S, EXTMUL_LOW_U, EXTMUL_HIGH_U,
} from "./wasm.js";
import { ST_V } from "../state.js";

/** The v128 locals of every block function: translate.ts BLOCK_LOCALS declares N_V128 of them from V_A on. */
export const V_A = 67, V_B = 68, N_V128 = 2;
/** The state block's offset (the block function's first parameter). */
const P_ST = 0;

/** Byte offset of Vr in the state block. */
export function vOff(r: number): number { return ST_V + 16 * r; }

/**
 * Whether this host's WebAssembly has fixed-width SIMD (V8 in Node 20 on x64 and arm64 has): a module with one
 * function returning a v128.const validates. Without it nothing here (nor translate.ts's SIMD forms) is taken.
 */
export const HAS_SIMD = WebAssembly.validate(new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type section: () → v128
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x0a, 0x16, 0x01, 0x14, 0x00, 0xfd, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b, // v128.const 0
]));

/** Shuffle lane pattern scratch (translation time only). */
const LANES = new Uint8Array(16);

/** Pushes Vr. */
export function ld(c: Code, r: number): void { c.get(P_ST); c.vmem(SIMD.load, 4, vOff(r)); }
/** Pushes the state block address for the closing put(). */
export function begin(c: Code): void { c.get(P_ST); }
/** Pops a v128 into Vd (begin() pushed the address): with q = 0 bits 127:64 become zero. */
export function put(c: Code, d: number, q: number): void {
  if (q === 0) { c.i64(0, 0); c.lane(REPLACE[3], 1); }
  c.vmem(SIMD.store, 4, vOff(d));
}
function zero(c: Code): void { c.v128(0, 0, 0, 0); }
/** A v128 constant of the byte b in every lane. */
function bytes(c: Code, b: number): void { const x = (b & 0xff) * 0x01010101; c.v128(x, x, x, x); }

/** Element size (log2 bytes) from imm5's lowest set bit, or -1 (x0000, reserved). */
function imm5Size(imm5: number): number {
  return (imm5 & 1) ? 0 : (imm5 & 2) ? 1 : (imm5 & 4) ? 2 : (imm5 & 8) ? 3 : -1;
}
/** Element size from a shift-by-immediate immh (highest set bit). */
function immhSize(immh: number): number { return immh >= 8 ? 3 : immh >= 4 ? 2 : immh >= 2 ? 1 : 0; }

/** Widens the low (part 0) or high (part 1) half of the v128 on the stack: lanes of `size` to size + 1. */
function extend(c: Code, part: number, signed: boolean, size: number): void {
  c.simd((part ? (signed ? EXTEND_HIGH_S : EXTEND_HIGH_U) : (signed ? EXTEND_LOW_S : EXTEND_LOW_U))[size]);
}
/** Widening multiply of the low or high halves of the two v128 on the stack. */
function extmul(c: Code, part: number, signed: boolean, size: number): void {
  c.simd((part ? (signed ? EXTMUL_HIGH_S : EXTMUL_HIGH_U) : (signed ? EXTMUL_LOW_S : EXTMUL_LOW_U))[size]);
}

/** Lane-wise multiply of the two v128 on the stack; bytes (wasm has no i8x16.mul) through two i16x8 products. */
function mul(c: Code, size: number): void {
  if (size > 0) { c.simd(MUL[size]); return; }
  c.set(V_B); c.set(V_A);
  // Even bytes: the low byte of each 16-bit product. Odd bytes: the product of the high bytes, shifted back up.
  c.get(V_A); c.get(V_B); c.simd(MUL[1]);
  c.get(V_A); c.i32(8); c.simd(SHR_U[1]); c.get(V_B); c.i32(8); c.simd(SHR_U[1]); c.simd(MUL[1]); c.i32(8); c.simd(SHL[1]);
  c.v128(0x00ff00ff, 0x00ff00ff, 0x00ff00ff, 0x00ff00ff); c.simd(SIMD.bitselect);
}

/** Compare kinds. */
const K_GT = 0, K_HI = 1, K_GE = 2, K_HS = 3, K_EQ = 4, K_TST = 5, K_LE = 6, K_LT = 7;
const CMP_OPS = [GT_S, GT_U, GE_S, GE_U, EQ, NE, LE_S, LT_S];

/** Lanes of all ones where (a kind b) for the two v128 on the stack. */
function compare(c: Code, kind: number, size: number): void {
  if (kind === K_TST) { c.simd(SIMD.and); zero(c); c.simd(NE[size]); return; }
  if (size === 3 && (kind === K_HI || kind === K_HS)) {
    // wasm has no unsigned i64x2 compares: flipping both sign bits turns them into signed ones.
    c.set(V_B); c.v128(0, 0x80000000 | 0, 0, 0x80000000 | 0); c.simd(SIMD.xor);
    c.get(V_B); c.v128(0, 0x80000000 | 0, 0, 0x80000000 | 0); c.simd(SIMD.xor);
    kind = kind === K_HI ? K_GT : K_GE;
  }
  c.simd(CMP_OPS[kind][size]);
}

const CMP_REG: Record<string, number> = {
  "CMGT (register)": K_GT, "CMHI (register)": K_HI, "CMGE (register)": K_GE, "CMHS (register)": K_HS,
  "CMEQ (register)": K_EQ, "CMTST (register)": K_TST,
};
const CMP_ZERO: Record<string, number> = {
  "CMGT (zero)": K_GT, "CMGE (zero)": K_GE, "CMEQ (zero)": K_EQ, "CMLE (zero)": K_LE, "CMLT (zero)": K_LT,
};

/**
 * Byte `b` of element `e` of register `reg` (0: the shuffle's first operand, 1: its second), as an i8x16.shuffle
 * lane index.
 */
function lane(reg: number, e: number, eb: number, b: number): number { return reg * 16 + e * eb + b; }
/** Element `i` of the concatenation first[0..elems) : second[0..elems), byte b. */
function cat(i: number, elems: number, eb: number, b: number): number {
  return i < elems ? lane(0, i, eb, b) : lane(1, i - elems, eb, b);
}

/**
 * Translates word `w` (decoded as `name`) when it is one of the register-only forms taken here: calls `ok`
 * (the FP/SIMD access check, which may leave the block) before emitting anything, emits the instruction and
 * returns true; returns false, having emitted nothing, for anything else.
 */
export function vecOp(c: Code, w: number, name: string, ok: () => void): boolean {
  if (!HAS_SIMD) return false;
  const q = (w >>> 30) & 1, u = (w >>> 29) & 1, scalar = (w >>> 28) & 1, size = (w >>> 22) & 3;
  const d = w & 31, n = (w >>> 5) & 31, m = (w >>> 16) & 31;
  const cmpReg = CMP_REG[name.replace(", scalar)", ")")];
  if (cmpReg !== undefined) {
    if (scalar !== 0 ? size !== 3 : size === 3 && q === 0) return false;
    ok(); begin(c); ld(c, n); ld(c, m); compare(c, cmpReg, size); put(c, d, scalar !== 0 ? 0 : q);
    return true;
  }
  const cmpZero = CMP_ZERO[name.replace(" (scalar)", "")];
  if (cmpZero !== undefined) {
    if (scalar !== 0 ? size !== 3 : size === 3 && q === 0) return false;
    ok(); begin(c); ld(c, n); zero(c); compare(c, cmpZero, size); put(c, d, scalar !== 0 ? 0 : q);
    return true;
  }
  switch (name) {
    case "ADD/SUB (vector)": case "ADD/SUB (scalar)":
      if (scalar !== 0 ? size !== 3 : size === 3 && q === 0) return false;
      ok(); begin(c); ld(c, n); ld(c, m); c.simd((u ? SUB : ADD)[size]); put(c, d, scalar !== 0 ? 0 : q);
      return true;
    case "AND/BIC/ORR/ORN/EOR/BSL/BIT/BIF (vector)": {
      ok(); begin(c);
      // bitselect(a, b, m) = (a & m) | (b & ~m).
      switch ((u << 2) | size) {
        case 0: ld(c, n); ld(c, m); c.simd(SIMD.and); break;
        case 1: ld(c, n); ld(c, m); c.simd(SIMD.andnot); break;
        case 2: ld(c, n); ld(c, m); c.simd(SIMD.or); break;
        case 3: ld(c, n); ld(c, m); c.simd(SIMD.not); c.simd(SIMD.or); break;
        case 4: ld(c, n); ld(c, m); c.simd(SIMD.xor); break;
        case 5: ld(c, n); ld(c, m); ld(c, d); c.simd(SIMD.bitselect); break; // BSL: Vd selects Vn
        case 6: ld(c, n); ld(c, d); ld(c, m); c.simd(SIMD.bitselect); break; // BIT: Vn where Vm
        default: ld(c, d); ld(c, n); ld(c, m); c.simd(SIMD.bitselect); break; // BIF: Vn where not Vm
      }
      put(c, d, q);
      return true;
    }
    case "MUL": case "MLA": case "MLS":
      if (size === 3) return false;
      ok(); begin(c);
      if (name !== "MUL") ld(c, d);
      ld(c, n); ld(c, m); mul(c, size);
      if (name !== "MUL") c.simd((name === "MLA" ? ADD : SUB)[size]);
      put(c, d, q);
      return true;
    case "SMAX": case "UMAX": case "SMIN": case "UMIN": {
      if (size === 3) return false;
      const ops = name === "SMAX" ? MAX_S : name === "UMAX" ? MAX_U : name === "SMIN" ? MIN_S : MIN_U;
      ok(); begin(c); ld(c, n); ld(c, m); c.simd(ops[size]); put(c, d, q);
      return true;
    }
    case "ADDP (vector)": case "SMAXP/UMAXP": case "SMINP/UMINP": {
      const add = name === "ADDP (vector)";
      if (size === 3 && (!add || q === 0)) return false;
      // Even and odd elements of the concatenation Vn:Vm (Vn the low half of the result), then the operation.
      const eb = 1 << size, elems = (8 << q) >> size;
      ok(); begin(c);
      for (let odd = 0; odd < 2; odd++) {
        LANES.fill(0);
        for (let p = 0; p < elems; p++) for (let b = 0; b < eb; b++) LANES[p * eb + b] = cat(2 * p + odd, elems, eb, b);
        ld(c, n); ld(c, m); c.shuffle(LANES);
      }
      c.simd(add ? ADD[size] : name === "SMAXP/UMAXP" ? (u ? MAX_U : MAX_S)[size] : (u ? MIN_U : MIN_S)[size]);
      put(c, d, q);
      return true;
    }
    // (The decoder names a handler by its last registration: threeDiff's is the scalar one.)
    case "Advanced SIMD three different": case "SQDMLAL/SQDMLSL/SQDMULL (scalar)": {
      if (size === 3 || scalar !== 0) return false;
      const opc = (w >>> 12) & 15, signed = u === 0;
      switch (opc) {
        case 12: // SMULL/UMULL(2)
          ok(); begin(c); ld(c, n); ld(c, m); extmul(c, q, signed, size); put(c, d, 1);
          return true;
        case 8: case 10: // SMLAL/UMLAL(2), SMLSL/UMLSL(2)
          ok(); begin(c); ld(c, d); ld(c, n); ld(c, m); extmul(c, q, signed, size);
          c.simd((opc === 8 ? ADD : SUB)[size + 1]); put(c, d, 1);
          return true;
        case 0: case 2: // SADDL/UADDL(2), SSUBL/USUBL(2)
          ok(); begin(c); ld(c, n); extend(c, q, signed, size); ld(c, m); extend(c, q, signed, size);
          c.simd((opc === 0 ? ADD : SUB)[size + 1]); put(c, d, 1);
          return true;
        case 1: case 3: // SADDW/UADDW(2), SSUBW/USUBW(2)
          ok(); begin(c); ld(c, n); ld(c, m); extend(c, q, signed, size);
          c.simd((opc === 1 ? ADD : SUB)[size + 1]); put(c, d, 1);
          return true;
        default: return false;
      }
    }
    case "Advanced SIMD vector x indexed element (integer)": case "Advanced SIMD scalar x indexed element (integer)": {
      if (size === 0 || size === 3 || scalar !== 0) return false;
      const opc = (w >>> 12) & 15, signed = u === 0;
      const mr = size === 1 ? (w >>> 16) & 15 : m;
      const h = (w >>> 11) & 1, l = (w >>> 21) & 1, mb = (w >>> 20) & 1;
      const idx = size === 1 ? (h << 2) | (l << 1) | mb : (h << 1) | l;
      /** Vm's element idx in every lane. */
      const elem = (): void => { ld(c, mr); c.lane(EXTRACT_U[size], idx); c.simd(SPLAT[size]); };
      switch (opc) {
        case 8: case 0: case 4: // MUL, MLA, MLS (by element)
          ok(); begin(c);
          if (opc !== 8) ld(c, d);
          ld(c, n); elem(); c.simd(MUL[size]);
          if (opc !== 8) c.simd((opc === 0 ? ADD : SUB)[size]);
          put(c, d, q);
          return true;
        case 10: case 2: case 6: // SMULL/UMULL, SMLAL/UMLAL, SMLSL/UMLSL (by element)
          ok(); begin(c);
          if (opc !== 10) ld(c, d);
          ld(c, n); elem(); extmul(c, q, signed, size);
          if (opc !== 10) c.simd((opc === 2 ? ADD : SUB)[size + 1]);
          put(c, d, 1);
          return true;
        default: return false;
      }
    }
    case "SSHR/USHR": case "SSRA/USRA": case "SHL":
    case "SSHR/USHR (scalar)": case "SSRA/USRA (scalar)": case "SHL (scalar)": {
      // The scalar forms exist for D only: the vector operation on lane 0, the rest zeroed.
      const immh = (w >>> 19) & 15;
      if (immh === 0) return false;
      const sz = immhSize(immh), esize = 8 << sz, immhb = (w >>> 16) & 127, signed = u === 0;
      if (scalar !== 0 ? sz !== 3 : sz === 3 && q === 0) return false;
      ok(); begin(c);
      if (name.startsWith("SHL")) {
        ld(c, n);
        if (immhb - esize !== 0) { c.i32(immhb - esize); c.simd(SHL[sz]); }
      } else {
        // Right shifts by 1..esize; wasm takes the amount modulo the lane width, so esize is special.
        const sh = 2 * esize - immhb, acc = name.startsWith("SSRA/USRA");
        if (acc) ld(c, d);
        if (!signed && sh === esize) zero(c);
        else { ld(c, n); c.i32(sh === esize ? esize - 1 : sh); c.simd((signed ? SHR_S : SHR_U)[sz]); }
        if (acc) c.simd(ADD[sz]);
      }
      put(c, d, scalar !== 0 ? 0 : q);
      return true;
    }
    case "SSHLL/USHLL": {
      const immh = (w >>> 19) & 15;
      if (immh === 0 || immh >= 8) return false;
      const sz = immhSize(immh), sh = ((w >>> 16) & 127) - (8 << sz);
      ok(); begin(c); ld(c, n); extend(c, q, u === 0, sz);
      if (sh !== 0) { c.i32(sh); c.simd(SHL[sz + 1]); }
      put(c, d, 1);
      return true;
    }
    case "SHRN": case "XTN": {
      // The low half of each wide element (after a right shift for SHRN), into Vd's lower half (upper zeroed)
      // or, for the "2" forms, its upper half (lower kept).
      let sz = size, sh = 0;
      if (name === "SHRN") {
        const immh = (w >>> 19) & 15;
        if (immh === 0 || immh >= 8) return false;
        sz = immhSize(immh); sh = 2 * (8 << sz) - ((w >>> 16) & 127);
      } else if (size === 3) return false;
      const eb = 1 << sz;
      ok(); begin(c);
      if (q) ld(c, d);
      ld(c, n);
      if (sh !== 0) { c.i32(sh); c.simd(SHR_U[sz + 1]); }
      if (!q) zero(c);
      // Operands: (Vd, narrowed) for the "2" forms, else (narrowed, zero).
      for (let k = 0; k < 8; k++) {
        const src = ((k / eb) | 0) * 2 * eb + (k % eb);
        if (q) { LANES[k] = k; LANES[k + 8] = 16 + src; } else { LANES[k] = src; LANES[k + 8] = 16; }
      }
      c.shuffle(LANES);
      put(c, d, 1);
      return true;
    }
    case "MOVI/MVNI/ORR/BIC (vector, immediate)": case "MOVI/MVNI (vector, immediate, MSL)":
    case "MOVI (vector, immediate, 8/64-bit)": {
      const op = u, cmode = (w >>> 12) & 15, imm8 = (((w >>> 16) & 7) << 5) | ((w >>> 5) & 31);
      let lo: number, hi: number;
      // AdvSIMDExpandImm (Arm ARM J1, shared/functions/vector), as simd-shift.ts modImm.
      if (cmode < 8) lo = hi = imm8 << (8 * (cmode >> 1));
      else if (cmode < 12) { const x = imm8 << (8 * ((cmode >> 1) & 1)); lo = hi = x | (x << 16); }
      else if (cmode === 12) lo = hi = (imm8 << 8) | 0xff;
      else if (cmode === 13) lo = hi = (imm8 << 16) | 0xffff;
      else if (op === 0) lo = hi = imm8 * 0x01010101;
      else {
        lo = 0; hi = 0;
        for (let k = 0; k < 4; k++) {
          if ((imm8 >> k) & 1) lo |= 0xff << (8 * k);
          if ((imm8 >> (k + 4)) & 1) hi |= 0xff << (8 * k);
        }
      }
      ok(); begin(c);
      if ((cmode & 1) === 1 && cmode < 12) { // ORR (op 0) / BIC (op 1) into Vd
        ld(c, d); c.v128(lo, hi, lo, hi); c.simd(op === 0 ? SIMD.or : SIMD.andnot);
        put(c, d, q);
      } else {
        if (op === 1 && cmode !== 14) { lo = ~lo; hi = ~hi; }
        c.v128(lo, hi, q ? lo : 0, q ? hi : 0);
        put(c, d, 1);
      }
      return true;
    }
    case "ABS": case "NEG": case "ABS (scalar)": case "NEG (scalar)":
      if (scalar !== 0 ? size !== 3 : size === 3 && q === 0) return false;
      ok(); begin(c); ld(c, n); c.simd((name.startsWith("ABS") ? ABS : NEG)[size]); put(c, d, scalar !== 0 ? 0 : q);
      return true;
    case "NOT":
      ok(); begin(c); ld(c, n); c.simd(SIMD.not); put(c, d, q);
      return true;
    case "CNT":
      if (size !== 0) return false;
      ok(); begin(c); ld(c, n); c.simd(SIMD.i8x16Popcnt); put(c, d, q);
      return true;
    case "REV64": case "REV32": case "REV16": {
      const contLog = name === "REV64" ? 3 : name === "REV32" ? 2 : 1;
      if (size >= contLog) return false;
      // Elements mirror within each 2^contLog-byte container; bytes within an element keep their order.
      const cmask = (1 << contLog) - 1, emask = (1 << size) - 1, last = (1 << contLog) - (1 << size);
      for (let k = 0; k < 16; k++) { const x = k & cmask; LANES[(k & ~cmask) + (last - (x & ~emask)) + (x & emask)] = k; }
      ok(); begin(c); ld(c, n); zero(c); c.shuffle(LANES); put(c, d, q);
      return true;
    }
    case "ADDV": case "SMAXV/UMAXV": case "SMINV/UMINV": {
      if (size === 3 || (size === 2 && q === 0)) return false;
      const ops = name === "ADDV" ? ADD : name === "SMAXV/UMAXV" ? (u ? MAX_U : MAX_S) : (u ? MIN_U : MIN_S);
      ok();
      // Fold halves: lane k with lane k + s, s = half the width down to one element; lane 0 holds the result.
      ld(c, n); c.set(V_A);
      for (let s = (8 << q) >> 1; s >= 1 << size; s >>= 1) {
        for (let k = 0; k < 16; k++) LANES[k] = (k + s) & 15;
        // V_A op shuffle(V_A, V_A): the shuffle reads its first operand only.
        c.get(V_A); c.get(V_A); c.get(V_A); c.shuffle(LANES); c.simd(ops[size]); c.set(V_A);
      }
      begin(c); zero(c); c.get(V_A); c.lane(EXTRACT_U[size], 0); c.lane(REPLACE[size], 0); put(c, d, 1);
      return true;
    }
    case "UZP1": case "UZP2": case "TRN1": case "TRN2": case "ZIP1": case "ZIP2": {
      if (size === 3 && q === 0) return false;
      const part = (w >>> 14) & 1, eb = 1 << size, elems = (8 << q) >> size, half = elems >> 1;
      LANES.fill(0);
      const set = (re: number, reg: number, e: number): void => {
        for (let b = 0; b < eb; b++) LANES[re * eb + b] = lane(reg, e, eb, b);
      };
      for (let p = 0; p < half; p++) {
        if (name.startsWith("UZP")) { set(p, 0, 2 * p + part); set(p + half, 1, 2 * p + part); }
        else if (name.startsWith("TRN")) { set(2 * p, 0, 2 * p + part); set(2 * p + 1, 1, 2 * p + part); }
        else { set(2 * p, 0, part * half + p); set(2 * p + 1, 1, part * half + p); }
      }
      ok(); begin(c); ld(c, n); ld(c, m); c.shuffle(LANES); put(c, d, q);
      return true;
    }
    case "EXT": {
      const pos = (w >>> 11) & 15, nb = 8 << q;
      if (q === 0 && pos >= 8) return false;
      LANES.fill(0);
      for (let k = 0; k < nb; k++) { const j = k + pos; LANES[k] = j < nb ? j : 16 + j - nb; }
      ok(); begin(c); ld(c, n); ld(c, m); c.shuffle(LANES); put(c, d, q);
      return true;
    }
    case "TBL/TBX": {
      // i8x16.swizzle gives 0 for an index ≥ 16; table register k sees index − 16k (wrapping bytes stay ≥ 16).
      const len = (w >>> 13) & 3, tbx = (w >>> 12) & 1;
      ok();
      ld(c, m); c.set(V_A);
      begin(c);
      if (tbx) ld(c, d);
      for (let k = 0; k <= len; k++) {
        ld(c, (n + k) & 31); c.get(V_A);
        if (k !== 0) { bytes(c, 16 * k); c.simd(SUB[0]); }
        c.simd(SIMD.swizzle);
        if (k !== 0) c.simd(SIMD.or);
      }
      // TBX keeps Vd's byte where the index is out of the table.
      if (tbx) { c.get(V_A); bytes(c, 16 * (len + 1)); c.simd(GE_U[0]); c.simd(SIMD.bitselect); }
      put(c, d, q);
      return true;
    }
    case "DUP (element)": case "DUP (element, scalar)": case "INS (element)": {
      const imm5 = m, sz = imm5Size(imm5);
      if (sz < 0) return false;
      const idx = imm5 >>> (sz + 1);
      if (name !== "INS (element)" && scalar === 0) { // DUP (element) (named as its scalar form)
        if (sz === 3 && q === 0) return false;
        ok(); begin(c); ld(c, n); c.lane(EXTRACT_U[sz], idx); c.simd(SPLAT[sz]); put(c, d, q);
      } else if (name === "INS (element)") {
        const si = ((w >>> 11) & 15) >>> sz;
        ok(); begin(c); ld(c, d); ld(c, n); c.lane(EXTRACT_U[sz], si); c.lane(REPLACE[sz], idx); put(c, d, 1);
      } else {
        ok(); begin(c); zero(c); ld(c, n); c.lane(EXTRACT_U[sz], idx); c.lane(REPLACE[sz], 0); put(c, d, 1);
      }
      return true;
    }
    default: return false;
  }
}
