/**
 * Building blocks for system-register tables (a leaf module, so the register tables in sysregs-el1.ts and
 * sys-timer.ts can be loaded in any order without import cycles through cpu.ts): the SysReg description,
 * the 64-bit read scratch, plain storage/constant registers, SCTLR_EL1 enable bits and endBlock.
 */
import type { Cpu } from "./cpu.js";
import { JUMP_CONTEXT, PC2 } from "./state.js";

/** SCTLR_EL1 bits that gate EL0 access to system instructions and registers (Arm ARM D17.2.118). */
export const SCTLR_M = 1 << 0, SCTLR_UMA = 1 << 9, SCTLR_DZE = 1 << 14, SCTLR_UCT = 1 << 15,
  SCTLR_NTWI = 1 << 16, SCTLR_NTWE = 1 << 18, SCTLR_WXN = 1 << 19, SCTLR_UCI = 1 << 26;

/**
 * Ends the current instruction and the decoded block: PC += 4 and a context change, so the run loop re-reads
 * PC, re-translates it and takes interrupts that the instruction unmasked. For MSR writes with side effects.
 */
export function endBlock(c: Cpu): void {
  const r = c.r;
  const lo = (r[PC2] + 4) | 0;
  if (lo === 0) r[PC2 + 1] = (r[PC2 + 1] + 1) | 0;
  r[PC2] = lo;
  c.jumped = JUMP_CONTEXT;
}

/** Scratch for 64-bit sysreg reads: read() returns lo and leaves hi in SYSHI[0]. */
export const SYSHI = new Int32Array(1);

export interface SysReg {
  name: string;
  op0: number; op1: number; crn: number; crm: number; op2: number;
  /**
   * EL0 access. Absent/false: the register is EL1-only and an EL0 access is UNDEFINED (EC 0x00), as the Arm
   * ARM's accessor pseudocode says ("if PSTATE.EL == EL0 then UNDEFINED"). true: always accessible. A
   * predicate: accessible when it returns true, else the access traps to EL1 with EC 0x18 (registers with an
   * EL1 enable such as SCTLR_EL1.UCT for CTR_EL0 or CNTKCTL_EL1 for the counters).
   */
  el0?: boolean | ((c: Cpu) => boolean);
  /**
   * Returns lo; hi in SYSHI[0]. Absent: write-only (MRS is UNDEFINED). May raise an exception instead
   * (c.syncException/undefinedInstruction), in which case Xt is left alone.
   */
  read?: (c: Cpu) => number;
  /** Absent: read-only (MSR is UNDEFINED). */
  write?: (c: Cpu, lo: number, hi: number) => void;
}

/** A plain storage register in Cpu.sys at `slot` (sysregs.ts). */
export function stored(name: string, enc: [number, number, number, number, number], slot: number,
  el0: boolean | ((c: Cpu) => boolean) = false, readOnlyEl0 = false): SysReg {
  const [op0, op1, crn, crm, op2] = enc;
  return {
    name, op0, op1, crn, crm, op2, el0,
    read: (c) => { SYSHI[0] = c.sys[slot + 1]; return c.sys[slot]; },
    write: readOnlyEl0
      ? (c, lo, hi) => { if (c.el === 0) { c.undefinedInstruction(0); return; } c.sys[slot] = lo; c.sys[slot + 1] = hi; }
      : (c, lo, hi) => { c.sys[slot] = lo; c.sys[slot + 1] = hi; },
  };
}

/** A constant (ID) register. */
export function constant(name: string, enc: [number, number, number, number, number], lo: number, hi = 0,
  el0: boolean | ((c: Cpu) => boolean) = false): SysReg {
  const [op0, op1, crn, crm, op2] = enc;
  return { name, op0, op1, crn, crm, op2, el0, read: () => { SYSHI[0] = hi; return lo; } };
}

