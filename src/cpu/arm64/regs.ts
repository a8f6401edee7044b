/**
 * Register access helpers for instruction handlers. All tiny and monomorphic so V8 inlines them.
 *
 * Reading Xn (n = 31 means XZR): c.r[n << 1] / c.r[(n << 1) | 1] directly — slot 31 always holds zero.
 * Reading Xn|SP (n = 31 means SP): use spSlot(n).
 */
import type { Cpu } from "./cpu.js";
import { JUMP_BRANCH, PC2, SP2 } from "./state.js";

/** Doubled slot index of Xn where 31 means SP. */
export function spSlot(n: number): number { return n === 31 ? SP2 : n << 1; }

/** Writes Xd (d = 31: XZR, discarded). */
export function setX(c: Cpu, d: number, lo: number, hi: number): void {
  if (d !== 31) { const r = c.r; r[d << 1] = lo; r[(d << 1) | 1] = hi; }
}

/** Writes Wd, zero-extending (d = 31: discarded). */
export function setW(c: Cpu, d: number, v: number): void {
  if (d !== 31) { const r = c.r; r[d << 1] = v; r[(d << 1) | 1] = 0; }
}

/** Writes Xd|SP (d = 31: SP). */
export function setXsp(c: Cpu, d: number, lo: number, hi: number): void {
  const k = d === 31 ? SP2 : d << 1;
  c.r[k] = lo; c.r[k + 1] = hi;
}

/** Branches to PC + offset (offset a signed byte count, |offset| < 2^31). */
export function branchRel(c: Cpu, offset: number): void {
  const r = c.r;
  const old = r[PC2];
  const lo = (old + offset) | 0;
  // Unsigned carry/borrow out of the low word.
  const sum = (old >>> 0) + offset;
  if (sum > 0xffffffff) r[PC2 + 1] = (r[PC2 + 1] + 1) | 0;
  else if (sum < 0) r[PC2 + 1] = (r[PC2 + 1] - 1) | 0;
  r[PC2] = lo;
  c.jumped = JUMP_BRANCH;
}

/** Branches to an absolute address (lo, hi). */
export function branchAbs(c: Cpu, lo: number, hi: number): void {
  c.r[PC2] = lo; c.r[PC2 + 1] = hi;
  c.jumped = JUMP_BRANCH;
}

/** Sign-extends the low `bits` bits of v. */
export function sext(v: number, bits: number): number { return (v << (32 - bits)) >> (32 - bits); }
