/**
 * Advanced SIMD integer, permute and data-movement instructions (Arm ARM C4.1.95 "Data Processing -- Scalar
 * Floating-Point and Advanced SIMD", the non-floating-point, non-load/store encodings). The groups live in
 * simd-*.ts; floating point is simd-fp.ts / fp.ts, loads and stores simd-ldst.ts. Crypto (AES/SHA/PMULL.1Q),
 * dot product and RDM (SQRDMLAH) are not ARMv8.0 base and stay UNDEFINED. Every handler first honours
 * CPACR_EL1.FPEN through Cpu.fpTrap (EC 0x07).
 */
import type { Decoder } from "./decoder.js";
import { register as same } from "./simd-same.js";
import { register as long } from "./simd-long.js";
import { register as misc } from "./simd-misc.js";
import { register as shift } from "./simd-shift.js";
import { register as perm } from "./simd-perm.js";

export function register(d: Decoder): void {
  same(d);
  long(d);
  misc(d);
  shift(d);
  perm(d);
}
