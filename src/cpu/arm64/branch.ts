/**
 * Branches, exception generation and system instructions live in this group in the Arm ARM (C4.1.87); this
 * file holds the branches: B, BL, B.cond, CBZ/CBNZ, TBZ/TBNZ, BR, BLR, RET. ERET is with the system
 * instructions (it needs the CPU's exception state). The pointer-authentication forms (BRAA, RETAA, ...) are not
 * matched, so they are UNDEFINED as on a v8.0 core.
 */
import type { Decoder } from "./decoder.js";
import type { Cpu } from "./cpu.js";
import { branchAbs, branchRel } from "./regs.js";
import { COND, PC2 } from "./state.js";

/** Writes PC + 4 to X30 (the link of BL/BLR). */
function link(c: Cpu): void {
  const r = c.r;
  const lo = (r[PC2] + 4) | 0;
  r[60] = lo;
  r[61] = lo === 0 ? (r[PC2 + 1] + 1) | 0 : r[PC2 + 1];
}

/** B / BL: op 00101 imm26. BL writes PC + 4 to X30. */
function bImm(c: Cpu, i: number): void {
  if (i < 0) link(c);
  branchRel(c, ((i << 6) >> 6) * 4);
}

/** B.cond: 0101010 0 imm19 0 cond. */
function bCond(c: Cpu, i: number): void {
  if (COND[((i & 15) << 4) | c.nzcv] !== 0) branchRel(c, ((i << 8) >> 13) * 4);
}

/** CBZ / CBNZ: sf 011010 op imm19 Rt. */
function cbz(c: Cpu, i: number): void {
  const r = c.r, t = (i & 31) << 1;
  const v = i < 0 ? r[t] | r[t + 1] : r[t];
  if ((v === 0) !== ((i & 0x1000000) !== 0)) branchRel(c, ((i << 8) >> 13) * 4);
}

/** TBZ / TBNZ: b5 011011 op b40 imm14 Rt. */
function tbz(c: Cpu, i: number): void {
  const r = c.r;
  const bit = (i >>> 19) & 31;
  const w = r[((i & 31) << 1) | (i >>> 31)];
  if ((((w >>> bit) & 1) === 0) !== ((i & 0x1000000) !== 0)) branchRel(c, ((i << 13) >> 18) * 4);
}

/** BR / RET: 1101011 0000/0010 11111 000000 Rn 00000. Rn = 31 reads XZR. */
function br(c: Cpu, i: number): void {
  const r = c.r, n = ((i >>> 5) & 31) << 1;
  branchAbs(c, r[n], r[n + 1]);
}

/** BLR: 1101011 0001 11111 000000 Rn 00000. The target is read before X30 is written (BLR X30). */
function blr(c: Cpu, i: number): void {
  const r = c.r, n = ((i >>> 5) & 31) << 1;
  const lo = r[n], hi = r[n + 1];
  link(c);
  branchAbs(c, lo, hi);
}

export function register(d: Decoder): void {
  d.def("x00101xxxxxxxxxxxxxxxxxxxxxxxxxx", "B/BL", bImm);
  d.def("01010100xxxxxxxxxxxxxxxxxxx0xxxx", "B.cond", bCond);
  d.def("x011010xxxxxxxxxxxxxxxxxxxxxxxxx", "CBZ/CBNZ", cbz);
  d.def("x011011xxxxxxxxxxxxxxxxxxxxxxxxx", "TBZ/TBNZ", tbz);
  d.def("1101011000011111000000xxxxx00000", "BR", br);
  d.def("1101011000111111000000xxxxx00000", "BLR", blr);
  d.def("1101011001011111000000xxxxx00000", "RET", br);
}
