/**
 * The instruction set: every instruction group registers its encodings here (Arm ARM C4.1 groups).
 * Each group file exports `register(d: Decoder)`; this is the only place that lists them.
 */
import type { Decoder } from "./decoder.js";
import { register as dpImm } from "./dp-imm.js";
import { register as dpReg } from "./dp-reg.js";
import { register as branch } from "./branch.js";
import { register as ldst } from "./ldst.js";
import { register as system } from "./system.js";
import { register as fp } from "./fp.js";
import { register as simd } from "./simd.js";
import { register as simdLdst } from "./simd-ldst.js";
import { register as simdFp } from "./simd-fp.js";

export function registerAll(d: Decoder): void {
  dpImm(d);
  dpReg(d);
  branch(d);
  ldst(d);
  system(d);
  fp(d);
  simd(d);
  simdLdst(d);
  simdFp(d);
}
