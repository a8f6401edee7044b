/**
 * System instructions (Arm ARM C4.1.87 "Branches, Exception Generating and System instructions", C5 "The
 * A64 System Instruction Class"): exception generation (SVC/HVC/SMC/BRK), hints, barriers, MRS/MSR, and the
 * system-register table.
 *
 * Each system register is decoded to its own handler pair at decode time: the decoder sees MRS/MSR patterns
 * with the register's op0:op1:CRn:CRm:op2 fixed, so executing MRS is one indirect call and a slot copy.
 */
import type { Decoder } from "./decoder.js";
import type { Cpu } from "./cpu.js";
import { EC_SVC, EC_HVC, EC_SMC, EC_BRK, EC_SYSREG, EC_WFX, STOP_WFI, STOP_WFE } from "./cpu.js";
import { setX } from "./regs.js";
import { PC2 } from "./state.js";
import { SCTLR_EL1, TPIDR_EL0, TPIDRRO_EL0, CTR_EL0_VALUE, DCZID_EL0_VALUE } from "./sysregs.js";
import {
  type SysReg, SYSHI, constant, stored, SCTLR_DZE, SCTLR_NTWE, SCTLR_NTWI, SCTLR_UCT,
} from "./sys-defs.js";
export {
  type SysReg, SYSHI, constant, endBlock, stored, SCTLR_M, SCTLR_UMA, SCTLR_DZE, SCTLR_UCT, SCTLR_NTWI,
  SCTLR_NTWE, SCTLR_WXN, SCTLR_UCI,
} from "./sys-defs.js";
import { el1SysRegs } from "./sysregs-el1.js";
import { timerSysRegs } from "./sys-timer.js";
import { register as registerSysInsns } from "./sys-insns.js";

function encBits(s: SysReg): string {
  const b = (v: number, n: number): string => v.toString(2).padStart(n, "0");
  return b(s.op0 - 2, 1) + b(s.op1, 3) + b(s.crn, 4) + b(s.crm, 4) + b(s.op2, 3);
}

/** ISS for a trapped MSR/MRS/SYS (EC 0x18, Arm ARM D17.2.40 "Exception from MSR, MRS, or System instruction"). */
export function sysregIss(i: number): number {
  const op0 = ((i >>> 19) & 3), op2 = (i >>> 5) & 7, op1 = (i >>> 16) & 7, crn = (i >>> 12) & 15, crm = (i >>> 8) & 15;
  const rt = i & 31, dir = (i >>> 21) & 1;
  return (op0 << 20) | (op2 << 17) | (op1 << 14) | (crn << 10) | (rt << 5) | (crm << 1) | dir;
}

/** Registers a system register's MRS and MSR encodings. */
export function defSysReg(d: Decoder, s: SysReg): void {
  const e = encBits(s);
  const el0Ok = s.el0 === true;
  const el0Fn = typeof s.el0 === "function" ? s.el0 : null;
  const rd = s.read, wr = s.write;
  if (rd !== undefined) {
    d.def("1101010100 1 1" + e + "xxxxx", "MRS " + s.name, (c, i) => {
      if (c.el === 0 && !el0Ok && !el0Allowed(c, i, el0Fn)) return;
      const lo = rd(c);
      if (c.jumped !== 0) return; // the read raised an exception (e.g. SP_EL0 while it is the live SP)
      setX(c, i & 31, lo, SYSHI[0]);
    });
  }
  if (wr !== undefined) {
    d.def("1101010100 0 1" + e + "xxxxx", "MSR " + s.name, (c, i) => {
      if (c.el === 0 && !el0Ok && !el0Allowed(c, i, el0Fn)) return;
      const t = (i & 31) << 1;
      wr(c, c.r[t], c.r[t + 1]);
    });
  }
}

/** EL0 access check for a system register or instruction: raises UNDEFINED or the EC 0x18 trap when refused. */
export function el0Allowed(c: Cpu, i: number, fn: ((c: Cpu) => boolean) | null): boolean {
  if (fn === null) { c.undefinedInstruction(i); return false; }
  if (fn(c)) return true;
  c.syncException(EC_SYSREG, sysregIss(i), 0);
  return false;
}

/** Registers "MRS Xt, <reg>" as reading zero for every register matching a pattern (reserved ID space). */
export function defRazRange(d: Decoder, name: string, encPattern: string): void {
  d.def("1101010100 1 1" + encPattern + "xxxxx", "MRS " + name, (c, i) => {
    if (c.el === 0) { c.undefinedInstruction(i); return; }
    setX(c, i & 31, 0, 0);
  });
}

/** The registers every context needs; the EL1 set is in sysregs-el1.ts. */
export function baseSysRegs(): SysReg[] {
  return [
    stored("TPIDR_EL0", [3, 3, 13, 0, 2], TPIDR_EL0, true),
    stored("TPIDRRO_EL0", [3, 3, 13, 0, 3], TPIDRRO_EL0, true, true),
    {
      name: "NZCV", op0: 3, op1: 3, crn: 4, crm: 2, op2: 0, el0: true,
      read: (c) => { SYSHI[0] = 0; return c.nzcv << 28; },
      write: (c, lo) => { c.nzcv = (lo >>> 28) & 0xf; },
    },
    {
      name: "FPCR", op0: 3, op1: 3, crn: 4, crm: 4, op2: 0, el0: true,
      // Writable: AHP(26) DN(25) FZ(24) RMode(23:22); other bits RES0 in ARMv8.0 without the trapping extension.
      read: (c) => { SYSHI[0] = 0; return c.fpcr; },
      write: (c, lo) => { c.fpcr = lo & 0x07c00000; },
    },
    {
      name: "FPSR", op0: 3, op1: 3, crn: 4, crm: 4, op2: 1, el0: true,
      // Cumulative flags: QC(27), IDC(7), IXC(4), UFC(3), OFC(2), DZC(1), IOC(0).
      read: (c) => { SYSHI[0] = 0; return c.fpsr; },
      write: (c, lo) => { c.fpsr = lo & 0x0800009f; },
    },
    {
      // DCZID_EL0: block size 2^4 words = 64 bytes; DZP (bit 4) set at EL0 when SCTLR_EL1.DZE forbids DC ZVA
      // there (Arm ARM D17.2.34).
      name: "DCZID_EL0", op0: 3, op1: 3, crn: 0, crm: 0, op2: 7, el0: true,
      read: (c) => { SYSHI[0] = 0; return c.el === 0 && (c.sys[SCTLR_EL1] & SCTLR_DZE) === 0 ? DCZID_EL0_VALUE | 16 : DCZID_EL0_VALUE; },
    },
    // CTR_EL0: IminLine = DminLine = 4 (64-byte lines), L1Ip = PIPT (0b11), CWG = ERG = 4 (Arm ARM D17.2.33).
    // EL0 reads trap (EC 0x18) unless SCTLR_EL1.UCT.
    constant("CTR_EL0", [3, 3, 0, 0, 1], CTR_EL0_VALUE, 0,
      (c) => (c.sys[SCTLR_EL1] & SCTLR_UCT) !== 0),
  ];
}

/** SVC/HVC/SMC/BRK: 11010100 opc imm16 op2 LL (Arm ARM C6.2). */
function svc(c: Cpu, i: number): void { c.syncException(EC_SVC, (i >>> 5) & 0xffff, 4); }
function hvc(c: Cpu, i: number): void {
  if (c.el === 0) { c.undefinedInstruction(i); return; }
  c.syncException(EC_HVC, (i >>> 5) & 0xffff, 4);
}
function smc(c: Cpu, i: number): void {
  if (c.el === 0) { c.undefinedInstruction(i); return; }
  c.syncException(EC_SMC, (i >>> 5) & 0xffff, 4);
}
function brk(c: Cpu, i: number): void { c.syncException(EC_BRK, (i >>> 5) & 0xffff, 0); }

/**
 * Hints: NOP, YIELD, WFE, WFI, SEV, SEVL and the rest of the hint space (executes as NOP, Arm ARM C6.2.102).
 * WFI/WFE at EL0 trap to EL1 (EC 0x01) unless SCTLR_EL1.nTWI/nTWE. WFE with the Event Register set clears it
 * and continues; otherwise WFI and WFE leave the loop (STOP_WFI / STOP_WFE) and the platform sleeps until an
 * interrupt or event (for WFE: wfe.ts lists the wake-up events, including the exclusive monitor's clear, which
 * spin-wait loops such as Linux's __cmpwait rely on).
 * SEV is forwarded to the other vCPUs as a STOP_BROADCAST exit.
 */
function hint(c: Cpu, i: number): void {
  const op = (i >>> 5) & 0x7f;
  if (op === 4 || op === 5) { // SEV, SEVL
    c.event = 1;
    if (op === 4) c.broadcastExit(i, 0, 0);
    return;
  }
  if (op === 3 || op === 2) { // WFI, WFE
    if (c.el === 0 && (c.sys[SCTLR_EL1] & (op === 3 ? SCTLR_NTWI : SCTLR_NTWE)) === 0) {
      // ISS: CV = 1, COND = 0b1110 (AArch64), TI = 1 for WFE.
      c.syncException(EC_WFX, 0x1e00000 | (op === 2 ? 1 : 0), 0);
      return;
    }
    if (op === 2 && c.event !== 0) { c.event = 0; return; }
    c.stop = op === 2 ? STOP_WFE : STOP_WFI;
    c.jumped = 1;
    const r = c.r;
    const lo = (r[PC2] + 4) | 0; // continue after the WFI when woken
    if (lo === 0) r[PC2 + 1] = (r[PC2 + 1] + 1) | 0;
    r[PC2] = lo;
  }
}

/**
 * A word of this thread's own: a read-modify-write of it (Atomics.add) is a full fence of the host's memory
 * accesses — LOCK XADD on x86-64, which neither the CPU nor V8's compiler moves plain loads or stores across.
 */
const FENCE = new Int32Array(new SharedArrayBuffer(4));

/**
 * DSB, DMB, ISB, CLREX: Arm ARM C6.2. Memory is sequentially consistent within one thread. Between vCPUs on
 * threads (the MMU's RAM is shared: Mmu.sharedRam) a full DMB/DSB (CRm<1:0> = 11: SY, ISH, OSH, NSH — loads and
 * stores both sides) is a host fence: an x86-64 host keeps every order of plain accesses but store → load (its
 * store buffer), which Linux's smp_mb() is there for (a store of the task state, then a load of the wake-up
 * condition, against the waker's store then load). The LD and ST forms need nothing on such a host. ISB ends
 * the block so context changes made by MSR take effect for the next instruction.
 */
function barrier(c: Cpu, i: number): void {
  const op2 = (i >>> 5) & 7;
  if (op2 === 2) { c.exclOff = -1; return; } // CLREX
  if (op2 === 4 || op2 === 5) { // DSB, DMB
    if ((i & 0x300) === 0x300 && c.mmu.sharedRam) Atomics.add(FENCE, 0, 0);
    return;
  }
  if (op2 === 6) { // ISB
    const r = c.r;
    const lo = (r[PC2] + 4) | 0;
    if (lo === 0) r[PC2 + 1] = (r[PC2 + 1] + 1) | 0;
    r[PC2] = lo;
    c.jumped = 2;
  }
}

export function register(d: Decoder): void {
  d.def("11010100 000 xxxxxxxxxxxxxxxx 000 01", "SVC", svc);
  d.def("11010100 000 xxxxxxxxxxxxxxxx 000 10", "HVC", hvc);
  d.def("11010100 000 xxxxxxxxxxxxxxxx 000 11", "SMC", smc);
  d.def("11010100 001 xxxxxxxxxxxxxxxx 000 00", "BRK", brk);
  d.def("1101010100 0 00 011 0010 xxxx xxx 11111", "HINT", hint);
  d.def("1101010100 0 00 011 0011 xxxx xxx 11111", "barrier", barrier);
  for (const s of baseSysRegs()) defSysReg(d, s);
  for (const s of el1SysRegs()) defSysReg(d, s);
  for (const s of timerSysRegs()) defSysReg(d, s);
  // Reserved ID register space op0 = 3, op1 = 0, CRn = 0, CRm = 1..7 reads as zero (Arm ARM D12.3.1); the
  // registers defined in it (ID_AA64*) are more specific patterns and win.
  defRazRange(d, "ID space (RAZ)", "1 000 0000 0001 xxx");
  defRazRange(d, "ID space (RAZ)", "1 000 0000 001x xxx");
  defRazRange(d, "ID space (RAZ)", "1 000 0000 01xx xxx");
  registerSysInsns(d);
}
