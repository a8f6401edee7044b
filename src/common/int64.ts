/**
 * 64-bit integer helpers over pairs of 32-bit halves (lo, hi), so the interpreter's hot paths never touch BigInt.
 *
 * Convention: every value is a signed int32 pair (lo|0, hi|0). Helpers that produce a 64-bit result return the
 * low half and leave the high half in `R[0]` (a module scratch slot, reused: no allocation). 128-bit results
 * (umulh/smulh) leave the high 64 bits in `R[0]` (lo) / `R[1]` (hi) as documented per function.
 */

/** Scratch for multi-word results. R[0] = high half of the last 64-bit result. */
export const R = new Int32Array(4);

const TWO32 = 4294967296;

/** (a + b) as 64-bit; returns lo, R[0] = hi. */
export function add64(alo: number, ahi: number, blo: number, bhi: number): number {
  const l = (alo >>> 0) + (blo >>> 0);
  R[0] = (ahi + bhi + (l > 0xffffffff ? 1 : 0)) | 0;
  return l | 0;
}

/** (a - b) as 64-bit; returns lo, R[0] = hi. */
export function sub64(alo: number, ahi: number, blo: number, bhi: number): number {
  const l = (alo >>> 0) - (blo >>> 0);
  R[0] = (ahi - bhi - (l < 0 ? 1 : 0)) | 0;
  return l | 0;
}

/** Unsigned 32x32 -> high 32 bits of the 64-bit product. */
export function umulhi32(a: number, b: number): number {
  a >>>= 0;
  b >>>= 0;
  const a0 = a & 0xffff, a1 = a >>> 16;
  const b0 = b & 0xffff, b1 = b >>> 16;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) | 0;
}

/** Low 64 bits of a 64x64 product (sign-agnostic); returns lo, R[0] = hi. */
export function mul64(alo: number, ahi: number, blo: number, bhi: number): number {
  R[0] = (umulhi32(alo, blo) + Math.imul(alo, bhi) + Math.imul(ahi, blo)) | 0;
  return Math.imul(alo, blo);
}

/** Unsigned 64-bit value as a JS number (exact below 2^53). */
export function toNumberU(lo: number, hi: number): number {
  return (hi >>> 0) * TWO32 + (lo >>> 0);
}

/** Signed 64-bit value as a JS number (exact within ±2^53). */
export function toNumberS(lo: number, hi: number): number {
  return (hi | 0) * TWO32 + (lo >>> 0);
}

/** A JS integer (|n| < 2^53) to a pair; returns lo, R[0] = hi. */
export function fromNumber(n: number): number {
  const hi = Math.floor(n / TWO32);
  R[0] = hi | 0;
  return (n - hi * TWO32) | 0;
}

/** Rare-path conversions to/from BigInt (for tests, syscalls, and rarely executed instructions). */
export function toBigU(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
export function toBigS(lo: number, hi: number): bigint {
  return BigInt.asIntN(64, toBigU(lo, hi));
}
/** BigInt to pair; returns lo, R[0] = hi. */
export function fromBig(v: bigint): number {
  const u = BigInt.asUintN(64, v);
  R[0] = Number(u >> 32n) | 0;
  return Number(u & 0xffffffffn) | 0;
}

/** Hex of a pair, 16 digits (diagnostics). */
export function hex64(lo: number, hi: number): string {
  return (hi >>> 0).toString(16).padStart(8, "0") + (lo >>> 0).toString(16).padStart(8, "0");
}
