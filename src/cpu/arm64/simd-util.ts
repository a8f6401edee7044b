/**
 * Shared helpers for the Advanced SIMD integer handlers (simd-*.ts): lane access by element size, saturation
 * with FPSR.QC, zeroing of the unused upper part of Vd, and scratch storage for results that must be computed
 * before Vd is written (Vd may alias Vn/Vm). Nothing here allocates.
 *
 * Element sizes follow the Arm ARM `size` field: 0 = B (8), 1 = H (16), 2 = S (32), 3 = D (64). Lanes of 8..32
 * bits are handled as JS numbers (exact); 64-bit lanes as (lo, hi) int32 pairs, or BigInt in rarely executed
 * saturating/shift paths (marked where used).
 */
import type { Cpu } from "./cpu.js";
import { R } from "../../common/int64.js";

/** FPSR.QC, the cumulative saturation bit (Arm ARM C5.2.10). */
export const QC = 1 << 27;

/** Scratch for a full 128-bit result or up to 16 64-bit (lo, hi) pairs. Reused by every handler. */
const scratch = new ArrayBuffer(128);
export const T8 = new Uint8Array(scratch);
export const T16 = new Uint16Array(scratch);
export const T32 = new Int32Array(scratch);

/** Signed maxima per element size 0..2 and unsigned maxima. */
const SMAX = [0x7f, 0x7fff, 0x7fffffff];
const UMAX = [0xff, 0xffff, 0xffffffff];

export function rd(i: number): number { return i & 31; }
export function rn(i: number): number { return (i >>> 5) & 31; }
export function rm(i: number): number { return (i >>> 16) & 31; }

/** Unsigned element e (size 0..2) of V[reg]. */
export function getU(c: Cpu, reg: number, e: number, size: number): number {
  return size === 0 ? c.vu8[(reg << 4) + e] : size === 1 ? c.vu16[(reg << 3) + e] : c.vu32[(reg << 2) + e];
}

/** Signed element e (size 0..2) of V[reg]. */
export function getS(c: Cpu, reg: number, e: number, size: number): number {
  return size === 0 ? c.vi8[(reg << 4) + e] : size === 1 ? c.vi16[(reg << 3) + e] : c.vi32[(reg << 2) + e];
}

export function get(c: Cpu, reg: number, e: number, size: number, signed: boolean): number {
  return signed ? getS(c, reg, e, size) : getU(c, reg, e, size);
}

/** Stores element e (size 0..2) of V[reg], truncating v modulo 2^esize (v any exact integer-valued double). */
export function put(c: Cpu, reg: number, e: number, size: number, v: number): void {
  if (size === 0) c.vu8[(reg << 4) + e] = v;
  else if (size === 1) c.vu16[(reg << 3) + e] = v;
  else c.vu32[(reg << 2) + e] = v;
}

/** 64-bit element e of V[reg] as BigInt (rare paths only). */
export function getBig(c: Cpu, reg: number, e: number, signed: boolean): bigint {
  const k = (reg << 2) + (e << 1);
  const u = (BigInt(c.vu32[k + 1]) << 32n) | BigInt(c.vu32[k]);
  return signed ? BigInt.asIntN(64, u) : u;
}

export function putBig(c: Cpu, reg: number, e: number, v: bigint): void {
  const k = (reg << 2) + (e << 1);
  const u = BigInt.asUintN(64, v);
  c.vu32[k] = Number(u & 0xffffffffn);
  c.vu32[k + 1] = Number(u >> 32n);
}

/** Zeroes bits 127:64 of V[d] (64-bit vector forms). */
export function clearHigh(c: Cpu, d: number): void {
  const k = d << 2;
  c.vi32[k + 2] = 0; c.vi32[k + 3] = 0;
}

/** Completes a vector write: Q = 0 forms zero the upper 64 bits. */
export function finish(c: Cpu, d: number, q: number): void {
  if (q === 0) clearHigh(c, d);
}

/** Completes a scalar write of one element of `size`: everything above it becomes zero. */
export function finishScalar(c: Cpu, d: number, size: number): void {
  const k = d << 2;
  if (size === 0) { c.vu8[(d << 4) + 1] = 0; c.vu16[(d << 3) + 1] = 0; }
  else if (size === 1) c.vu16[(d << 3) + 1] = 0;
  if (size <= 2) c.vi32[k + 1] = 0;
  c.vi32[k + 2] = 0; c.vi32[k + 3] = 0;
}

/** Signed saturation of an exact value to `size` (0..2); sets QC when clamped. */
export function satS(c: Cpu, v: number, size: number): number {
  const max = SMAX[size];
  if (v > max) { c.fpsr |= QC; return max; }
  if (v < -max - 1) { c.fpsr |= QC; return -max - 1; }
  return v;
}

/** Unsigned saturation of an exact value to `size` (0..2); sets QC when clamped. */
export function satU(c: Cpu, v: number, size: number): number {
  const max = UMAX[size];
  if (v > max) { c.fpsr |= QC; return max; }
  if (v < 0) { c.fpsr |= QC; return 0; }
  return v;
}

export function sat(c: Cpu, v: number, size: number, signed: boolean): number {
  return signed ? satS(c, v, size) : satU(c, v, size);
}

const I64_MAX = (1n << 63n) - 1n, I64_MIN = -(1n << 63n), U64_MAX = (1n << 64n) - 1n;

/** 64-bit saturation of a BigInt (rare paths). */
export function satBig(c: Cpu, v: bigint, signed: boolean): bigint {
  const lo = signed ? I64_MIN : 0n, hi = signed ? I64_MAX : U64_MAX;
  if (v > hi) { c.fpsr |= QC; return hi; }
  if (v < lo) { c.fpsr |= QC; return lo; }
  return v;
}

/** Signed 32x32 -> high 32 bits of the 64-bit product. */
export function smulhi32(a: number, b: number): number {
  a |= 0; b |= 0;
  const a0 = a & 0xffff, a1 = a >> 16, b0 = b & 0xffff, b1 = b >> 16;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0;
  // Exact: each term < 2^47 in magnitude.
  const mid = (p00 / 65536 | 0) >>> 0;
  const t = p01 + p10 + mid; // |t| < 2^33
  return (a1 * b1 + Math.floor(t / 65536)) | 0;
}

/** Unsigned 32x32 -> high 32 bits. */
export function umulhi32u(a: number, b: number): number {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const t = a0 * b1 + a1 * b0 + ((a0 * b0) >>> 16); // < 2^34, exact
  return (a1 * b1 + Math.floor(t / 65536)) | 0;
}

/** 64-bit (lo, hi) logical shift left by s (0..∞); returns lo, R[0] = hi. */
export function shl64(lo: number, hi: number, s: number): number {
  if (s >= 64) { R[0] = 0; return 0; }
  if (s === 0) { R[0] = hi; return lo; }
  if (s >= 32) { R[0] = lo << (s - 32); return 0; }
  R[0] = (hi << s) | (lo >>> (32 - s));
  return lo << s;
}

/** 64-bit logical shift right; returns lo, R[0] = hi. */
export function lsr64(lo: number, hi: number, s: number): number {
  if (s >= 64) { R[0] = 0; return 0; }
  if (s === 0) { R[0] = hi; return lo; }
  if (s >= 32) { R[0] = 0; return hi >>> (s - 32); }
  R[0] = hi >>> s;
  return (lo >>> s) | (hi << (32 - s));
}

/** 64-bit arithmetic shift right (s >= 64 gives the sign); returns lo, R[0] = hi. */
export function asr64(lo: number, hi: number, s: number): number {
  if (s >= 64) s = 63;
  if (s === 0) { R[0] = hi; return lo; }
  if (s >= 32) { R[0] = hi >> 31; return hi >> (s - 32); }
  R[0] = hi >> s;
  return (lo >>> s) | (hi << (32 - s));
}

/** Bit b (0..63) of a 64-bit value; b >= 64 means bit 63 when `signed`, else 0. */
export function bit64(lo: number, hi: number, b: number, signed: boolean): number {
  if (b >= 64) return signed ? hi >>> 31 : 0;
  return b >= 32 ? (hi >>> (b - 32)) & 1 : (lo >>> b) & 1;
}
