/**
 * Branches, exception generation and system instructions live in this group in the Arm ARM (C4.1.87); this
 * file holds the branches: B, BL, B.cond, CBZ/CBNZ, TBZ/TBNZ, BR, BLR, RET (and ERET, which needs the CPU).
 */
import type { Decoder } from "./decoder.js";
import type { Cpu } from "./cpu.js";
import { branchRel, sext } from "./regs.js";
import { PC2 } from "./state.js";

/** B / BL: op 00101 imm26. BL writes PC + 4 to X30. */
function bImm(c: Cpu, i: number): void {
  if (i < 0) {
    const r = c.r;
    const lo = (r[PC2] + 4) | 0;
    r[60] = lo;
    r[61] = lo === 0 ? (r[PC2 + 1] + 1) | 0 : r[PC2 + 1];
  }
  branchRel(c, sext(i & 0x3ffffff, 26) * 4);
}

export function register(d: Decoder): void {
  d.def("x00101xxxxxxxxxxxxxxxxxxxxxxxxxx", "B/BL", bImm);
}
