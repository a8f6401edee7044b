/**
 * Advanced SIMD data movement (Arm ARM C4.1.95): copy (DUP, INS, UMOV, SMOV, scalar DUP), permute
 * (ZIP/UZP/TRN), extract (EXT) and table lookup (TBL/TBX).
 *
 *   copy:        0 Q op 01110000 imm5 0 imm4 1 Rn Rd
 *   scalar copy: 0 1 0 11110000 imm5 0 0000 1 Rn Rd
 *   permute:     0 Q 001110 size 0 Rm 0 opcode(3) 10 Rn Rd
 *   extract:     0 Q 101110 00 0 Rm 0 imm4 0 Rn Rd
 *   table:       0 Q 001110 00 0 Rm 0 len op 00 Rn Rd
 *
 * Results that mix elements are built in scratch bytes first (Vd may alias a source).
 */
import type { Cpu } from "./cpu.js";
import type { Decoder } from "./decoder.js";
import { setW, setX } from "./regs.js";
import { T8, clearHigh, finish, finishScalar } from "./simd-util.js";

/** Element size from imm5 (lowest set bit), or -1 for the reserved x0000. */
function imm5Size(imm5: number): number {
  return (imm5 & 1) ? 0 : (imm5 & 2) ? 1 : (imm5 & 4) ? 2 : (imm5 & 8) ? 3 : -1;
}

/** DUP (element), vector and scalar. */
function dupElement(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const imm5 = (i >>> 16) & 31, q = (i >>> 30) & 1, scalar = (i >>> 28) & 1;
  const size = imm5Size(imm5);
  if (size < 0 || (scalar === 0 && size === 3 && q === 0)) { c.undefinedInstruction(i); return; }
  const idx = imm5 >>> (size + 1), d = i & 31, n = (i >>> 5) & 31;
  const u = c.vu8, eb = 1 << size, src = (n << 4) + idx * eb;
  for (let k = 0; k < eb; k++) T8[k] = u[src + k];
  const bytes = scalar !== 0 ? eb : 8 << q;
  for (let k = 0; k < bytes; k++) u[(d << 4) + k] = T8[k & (eb - 1)];
  if (scalar !== 0) finishScalar(c, d, size); else finish(c, d, q);
}

/** DUP (general): replicate Wn/Xn. */
function dupGeneral(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const imm5 = (i >>> 16) & 31, q = (i >>> 30) & 1;
  const size = imm5Size(imm5);
  if (size < 0 || (size === 3 && q === 0)) { c.undefinedInstruction(i); return; }
  const d = i & 31, n = (i >>> 5) & 31, lo = c.r[n << 1], hi = c.r[(n << 1) | 1];
  const v = c.vi32, k = d << 2;
  let w = lo;
  if (size === 0) w = (lo & 0xff) * 0x01010101;
  else if (size === 1) w = (lo & 0xffff) | (lo << 16);
  v[k] = w; v[k + 1] = size === 3 ? hi : w;
  if (q) { v[k + 2] = w; v[k + 3] = size === 3 ? hi : w; } else clearHigh(c, d);
}

/** UMOV (signed = false) and SMOV: element to a general register. */
function mov(c: Cpu, i: number, signed: boolean): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const imm5 = (i >>> 16) & 31, q = (i >>> 30) & 1;
  const size = imm5Size(imm5);
  // UMOV: W for B/H/S (Q=0), X for D (Q=1). SMOV: W for B/H (Q=0), X for B/H/S (Q=1).
  const ok = signed ? size >= 0 && size < 2 + q : size >= 0 && (q === 1 ? size === 3 : size < 3);
  if (!ok) { c.undefinedInstruction(i); return; }
  const idx = imm5 >>> (size + 1), d = i & 31, n = (i >>> 5) & 31;
  if (size === 3) { setX(c, d, c.vi32[(n << 2) + 2 * idx], c.vi32[(n << 2) + 2 * idx + 1]); return; }
  let v: number;
  if (size === 0) v = signed ? c.vi8[(n << 4) + idx] : c.vu8[(n << 4) + idx];
  else if (size === 1) v = signed ? c.vi16[(n << 3) + idx] : c.vu16[(n << 3) + idx];
  else v = c.vi32[(n << 2) + idx];
  if (q === 1) setX(c, d, v, signed ? v >> 31 : 0);
  else setW(c, d, v);
}

/** INS (general): Vd.Ts[idx] = Rn. The rest of Vd is kept. */
function insGeneral(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const imm5 = (i >>> 16) & 31, size = imm5Size(imm5);
  if (size < 0) { c.undefinedInstruction(i); return; }
  const idx = imm5 >>> (size + 1), d = i & 31, n = (i >>> 5) & 31, lo = c.r[n << 1];
  if (size === 0) c.vu8[(d << 4) + idx] = lo;
  else if (size === 1) c.vu16[(d << 3) + idx] = lo;
  else if (size === 2) c.vi32[(d << 2) + idx] = lo;
  else { c.vi32[(d << 2) + 2 * idx] = lo; c.vi32[(d << 2) + 2 * idx + 1] = c.r[(n << 1) | 1]; }
}

/** INS (element): Vd.Ts[imm5 index] = Vn.Ts[imm4 index]. */
function insElement(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const imm5 = (i >>> 16) & 31, imm4 = (i >>> 11) & 15, size = imm5Size(imm5);
  if (size < 0) { c.undefinedInstruction(i); return; }
  const di = imm5 >>> (size + 1), si = imm4 >>> size, d = i & 31, n = (i >>> 5) & 31;
  const eb = 1 << size, u = c.vu8;
  for (let k = 0; k < eb; k++) T8[k] = u[(n << 4) + si * eb + k];
  for (let k = 0; k < eb; k++) u[(d << 4) + di * eb + k] = T8[k];
}

/** Copies element `se` of register `s` (eb bytes) to scratch element `de`. */
function copyEl(u: Uint8Array, s: number, se: number, de: number, eb: number): void {
  const src = (s << 4) + se * eb, dst = de * eb;
  for (let k = 0; k < eb; k++) T8[dst + k] = u[src + k];
}

/** UZP1/UZP2 (kind 0), TRN1/TRN2 (1), ZIP1/ZIP2 (2). */
function permute(c: Cpu, i: number, kind: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const size = (i >>> 22) & 3, q = (i >>> 30) & 1, part = (i >>> 14) & 1;
  if (size === 3 && q === 0) { c.undefinedInstruction(i); return; }
  const d = i & 31, n = (i >>> 5) & 31, m = (i >>> 16) & 31, u = c.vu8;
  const eb = 1 << size, elems = (8 << q) >> size, half = elems >> 1;
  for (let p = 0; p < half; p++) {
    if (kind === 0) {
      copyEl(u, n, 2 * p + part, p, eb);
      copyEl(u, m, 2 * p + part, p + half, eb);
    } else if (kind === 1) {
      copyEl(u, n, 2 * p + part, 2 * p, eb);
      copyEl(u, m, 2 * p + part, 2 * p + 1, eb);
    } else {
      copyEl(u, n, part * half + p, 2 * p, eb);
      copyEl(u, m, part * half + p, 2 * p + 1, eb);
    }
  }
  const bytes = 8 << q;
  for (let k = 0; k < bytes; k++) u[(d << 4) + k] = T8[k];
  finish(c, d, q);
}

/** EXT: bytes imm4.. of the concatenation Vm:Vn. */
function ext(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const q = (i >>> 30) & 1, pos = (i >>> 11) & 15;
  if (q === 0 && pos >= 8) { c.undefinedInstruction(i); return; }
  const d = i & 31, n = (i >>> 5) & 31, m = (i >>> 16) & 31, u = c.vu8, bytes = 8 << q;
  for (let k = 0; k < bytes; k++) {
    const j = k + pos;
    T8[k] = j < bytes ? u[(n << 4) + j] : u[(m << 4) + j - bytes];
  }
  for (let k = 0; k < bytes; k++) u[(d << 4) + k] = T8[k];
  finish(c, d, q);
}

/** TBL (out-of-range index gives 0) / TBX (keeps Vd's byte) over 1..4 consecutive table registers. */
function tbl(c: Cpu, i: number): void {
  if (c.fpTrap) { c.fpAccessTrap(); return; }
  const q = (i >>> 30) & 1, len = (i >>> 13) & 3, tbx = (i >>> 12) & 1;
  const d = i & 31, n = (i >>> 5) & 31, m = (i >>> 16) & 31, u = c.vu8, bytes = 8 << q;
  const limit = (len + 1) << 4;
  for (let k = 0; k < bytes; k++) {
    const idx = u[(m << 4) + k];
    T8[k] = idx < limit ? u[(((n + (idx >> 4)) & 31) << 4) + (idx & 15)] : tbx ? u[(d << 4) + k] : 0;
  }
  for (let k = 0; k < bytes; k++) u[(d << 4) + k] = T8[k];
  finish(c, d, q);
}

export function register(d: Decoder): void {
  d.def("0x001110000xxxxx000001xxxxxxxxxx", "DUP (element)", dupElement);
  d.def("01011110000xxxxx000001xxxxxxxxxx", "DUP (element, scalar)", dupElement);
  d.def("0x001110000xxxxx000011xxxxxxxxxx", "DUP (general)", dupGeneral);
  d.def("0x001110000xxxxx001011xxxxxxxxxx", "SMOV", (c, i) => mov(c, i, true));
  d.def("0x001110000xxxxx001111xxxxxxxxxx", "UMOV", (c, i) => mov(c, i, false));
  d.def("01001110000xxxxx000111xxxxxxxxxx", "INS (general)", insGeneral);
  d.def("01101110000xxxxx0xxxx1xxxxxxxxxx", "INS (element)", insElement);
  for (const [op, name, kind] of [["001", "UZP1", 0], ["101", "UZP2", 0], ["010", "TRN1", 1], ["110", "TRN2", 1],
    ["011", "ZIP1", 2], ["111", "ZIP2", 2]] as const) {
    d.def(`0x001110xx0xxxxx0${op}10xxxxxxxxxx`, name, (c, i) => permute(c, i, kind));
  }
  d.def("0x101110000xxxxx0xxxx0xxxxxxxxxx", "EXT", ext);
  d.def("0x001110000xxxxx0xxx00xxxxxxxxxx", "TBL/TBX", tbl);
}
