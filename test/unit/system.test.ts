/**
 * System-level CPU tests: system registers (ID values, storage, access control from EL0), PSTATE access,
 * exception entry and return (SVC/ERET, IRQ/FIQ/SError, illegal return, PC alignment), WFI/WFE traps,
 * CPACR_EL1.FPEN, the generic timer registers and instruction-cache maintenance. Arm ARM references inline.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ADD_X, BASE, DAIFCLR, DAIFSET, ERET, HVC, IC_IALLU, ISB, MSR_SPSEL, NOP, REG, SEVL, SVC, TLBI, WFE, WFI,
  type Machine, machine, mrs, msr, pc, runAt, setPc, setx, spinVectors, sysreg, x, type Enc,
} from "./system-asm.js";
import { ELR_EL1, ESR_EL1, FAR_EL1, SCTLR_EL1, SPSR_EL1 } from "../../src/cpu/arm64/sysregs.js";
import { Cpu, STOP_BROADCAST, STOP_BUDGET, STOP_HVC, STOP_TIMER, STOP_WFI } from "../../src/cpu/arm64/cpu.js";
import { applyBroadcast } from "../../src/cpu/arm64/sys-insns.js";
import { timerFiring, TIMER_VIRT } from "../../src/cpu/arm64/sys-timer.js";

const VBAR = BASE;
const CODE = BASE + 0x1000;
const USER = BASE + 0x2000;

/** MMU off, VBAR = BASE with "B ." vectors, EL1h. */
function setup(): Machine {
  const m = machine(1 << 20);
  spinVectors(m, VBAR);
  setx(m.cpu, 0, VBAR);
  runAt(m, CODE, [msr(REG.VBAR_EL1, 0)]);
  return m;
}

function read(m: Machine, e: Enc): bigint {
  runAt(m, CODE, [mrs(1, e)]);
  return x(m.cpu, 1);
}
function write(m: Machine, e: Enc, v: bigint | number): void {
  setx(m.cpu, 1, v);
  runAt(m, CODE, [msr(e, 1)]);
}
const esr = (m: Machine): number => Number(sysreg(m.cpu, ESR_EL1));

/** Enters EL0 at USER running `words` (then "B ."), via ERET with SPSR = EL0t and the given DAIF. */
function atEl0(m: Machine, words: number[], steps = words.length, daif = 0): void {
  const c = m.cpu;
  runAt(m, USER, [...words, 0x14000000]); // write the code (executes nothing: el is 1, steps below)
  c.sys[SPSR_EL1] = daif << 6; c.sys[SPSR_EL1 + 1] = 0;
  setx(c, 5, USER);
  setPc(c, CODE);
  runAt(m, CODE, [msr(REG.ELR_EL1, 5), ERET], 2 + steps);
}

test("identification registers describe ARMv8.0-A with FP/AdvSIMD only", () => {
  const m = setup();
  m.cpu.vcpuIndex = 17;
  assert.equal(read(m, REG.MIDR_EL1), 0x410fd034n);
  assert.equal(read(m, REG.MPIDR_EL1), 0x8000_0101n, "bit 31 RES1, Aff0 = 1, Aff1 = 1");
  assert.equal(read(m, REG.ID_AA64PFR0_EL1), 0x11n, "EL0/EL1 AArch64, no EL2/EL3, FP and AdvSIMD");
  assert.equal(read(m, REG.ID_AA64ISAR0_EL1), 0n);
  assert.equal(read(m, REG.ID_AA64ISAR2_EL1), 0n, "reserved ID space reads as zero");
  assert.equal(read(m, REG.ID_PFR0_EL1), 0n, "no AArch32");
  const mmfr0 = read(m, REG.ID_AA64MMFR0_EL1);
  assert.equal(mmfr0 & 0xfn, 5n, "PARange 48 bits");
  assert.equal((mmfr0 >> 4n) & 0xfn, 2n, "16-bit ASIDs");
  assert.equal((mmfr0 >> 20n) & 0xfn, 0n, "TGran16 not supported");
  assert.equal((mmfr0 >> 24n) & 0xfn, 0xfn, "TGran64 not supported");
  assert.equal((mmfr0 >> 28n) & 0xfn, 0n, "TGran4 supported");
  const dfr0 = read(m, REG.ID_AA64DFR0_EL1);
  assert.equal(dfr0 & 0xfn, 6n);
  assert.equal((dfr0 >> 8n) & 0xfn, 0n, "no PMU");
  assert.equal(read(m, REG.CLIDR_EL1), 0x0a200023n);
  write(m, REG.CSSELR_EL1, 2);
  assert.equal(read(m, REG.CSSELR_EL1), 2n);
  assert.equal(read(m, REG.CCSIDR_EL1), 0x703fe07an);
  assert.equal(read(m, REG.DCZID_EL0), 4n, "64-byte DC ZVA, permitted");
  assert.equal(read(m, REG.CNTFRQ_EL0), 62_500_000n);
  assert.equal(read(m, REG.CurrentEL), 4n);
});

test("system register storage, RES0/RES1 bits and OS lock", () => {
  const m = setup();
  write(m, REG.TPIDR_EL1, 0x1234_5678_9abc_def0n);
  assert.equal(read(m, REG.TPIDR_EL1), 0x1234_5678_9abc_def0n);
  write(m, REG.VBAR_EL1, 0xffff_0000_1234_5fffn);
  assert.equal(read(m, REG.VBAR_EL1), 0xffff_0000_1234_5800n, "VBAR bits 10:0 RES0");
  write(m, REG.VBAR_EL1, VBAR);
  write(m, REG.SCTLR_EL1, 0x0300_0000); // EE, E0E only: little-endian, RES1 bits read as 1
  assert.equal(read(m, REG.SCTLR_EL1), 0x30d0_0800n);
  assert.equal(read(m, REG.OSLSR_EL1), 0xan, "OS lock set at reset");
  write(m, REG.OSLAR_EL1, 0);
  assert.equal(read(m, REG.OSLSR_EL1), 0x8n);
  write(m, REG.NZCV, 0xa000_0000);
  assert.equal(m.cpu.nzcv, 0xa);
  write(m, REG.DAIF, 0x140);
  assert.equal(m.cpu.daif, 0x5);
  assert.equal(read(m, REG.DAIF), 0x140n);
});

test("SPSel, SP_EL0 and MSR (immediate) DAIFSet/DAIFClr", () => {
  const m = setup();
  const c = m.cpu;
  setx(c, 31, 0); // (XZR stays zero)
  c.r[64] = 0x1000; // SP (live: SP_EL1)
  setx(c, 2, 0x2000);
  runAt(m, CODE, [msr(REG.SP_EL0, 2), mrs(3, REG.SP_EL0), mrs(4, REG.SPSel)]);
  assert.equal(x(c, 3), 0x2000n);
  assert.equal(x(c, 4), 1n);
  runAt(m, CODE, [MSR_SPSEL(0), mrs(4, REG.SPSel)]);
  assert.equal(c.spsel, 0);
  assert.equal(x(c, 4), 0n);
  assert.equal(c.r[64], 0x2000, "live SP is SP_EL0");
  // SP_EL0 is UNDEFINED while it is the live SP.
  runAt(m, CODE, [mrs(3, REG.SP_EL0)], 1);
  assert.equal(esr(m) >>> 26, 0);
  assert.equal(pc(c), BigInt(VBAR), "current EL with SP0: vector offset 0");
  assert.equal(c.spsel, 1, "exception entry selects SP_EL1");
  assert.equal(c.r[64], 0x1000);
  c.daif = 0;
  runAt(m, CODE, [DAIFSET(0xa)]);
  assert.equal(c.daif, 0xa);
  runAt(m, CODE, [DAIFCLR(0x2)]);
  assert.equal(c.daif, 0x8);
});

test("unknown system registers and EL1-only registers at EL0 are UNDEFINED; enable bits trap with EC 0x18", () => {
  const m = setup();
  const c = m.cpu;
  // HCR_EL2 (EL2 is not implemented): UNDEFINED at EL1.
  runAt(m, CODE, [mrs(1, [3, 4, 1, 1, 0])], 1);
  assert.equal(esr(m), 0x0200_0000, "EC 0, IL 1");
  assert.equal(sysreg(c, ELR_EL1), BigInt(CODE));
  assert.equal(pc(c), BigInt(VBAR + 0x200));
  // EL0: MRS SCTLR_EL1 -> UNDEFINED, lower-EL vector.
  atEl0(m, [mrs(1, REG.SCTLR_EL1)], 1);
  assert.equal(esr(m), 0x0200_0000);
  assert.equal(pc(c), BigInt(VBAR + 0x400));
  assert.equal(sysreg(c, ELR_EL1), BigInt(USER));
  // EL0: CTR_EL0 with SCTLR_EL1.UCT = 0 traps with EC 0x18 and the MRS ISS.
  c.sys[SCTLR_EL1] &= ~(1 << 15);
  atEl0(m, [mrs(7, REG.CTR_EL0)], 1);
  const iss = (3 << 20) | (1 << 17) | (3 << 14) | (0 << 10) | (7 << 5) | (0 << 1) | 1;
  assert.equal(esr(m), (0x18 << 26) | (1 << 25) | iss);
  c.sys[SCTLR_EL1] |= 1 << 15;
  atEl0(m, [mrs(7, REG.CTR_EL0)], 1);
  assert.equal(c.el, 0);
  assert.equal(x(c, 7) >> 31n, 1n);
  c.el = 1; c.mmu.setEl(1);
  // EL0: DAIF needs SCTLR_EL1.UMA; DAIFSet too.
  atEl0(m, [DAIFSET(2)], 1);
  assert.equal(esr(m) >>> 26, 0x18);
  // EL0 counter access per CNTKCTL_EL1.EL0VCTEN.
  atEl0(m, [mrs(1, REG.CNTVCT_EL0)], 1);
  assert.equal(esr(m) >>> 26, 0x18);
  write(m, REG.CNTKCTL_EL1, 2);
  c.counter = () => 0x1_2345_6789;
  atEl0(m, [mrs(1, REG.CNTVCT_EL0)], 1);
  assert.equal(c.el, 0);
  assert.equal(x(c, 1), 0x1_2345_6789n);
});

test("SVC from EL0 and ERET: ESR, ELR, SPSR, vectors and PSTATE restore", () => {
  const m = setup();
  const c = m.cpu;
  c.nzcv = 0;
  atEl0(m, [ADD_X(0, 0, 5), SVC(0x42)], 2, 0x0);
  assert.equal(c.el, 1);
  assert.equal(esr(m), (0x15 << 26) | (1 << 25) | 0x42);
  assert.equal(sysreg(c, ELR_EL1), BigInt(USER + 8), "preferred return: the next instruction");
  assert.equal(sysreg(c, SPSR_EL1), 0n, "EL0t, DAIF clear");
  assert.equal(pc(c), BigInt(VBAR + 0x400));
  assert.equal(c.daif, 0xf);
  // Return with NZCV set in SPSR.
  c.sys[SPSR_EL1] = 0x6000_0000 | 0x80;
  setPc(c, CODE);
  runAt(m, CODE, [ERET], 1);
  assert.equal(c.el, 0);
  assert.equal(c.nzcv, 6);
  assert.equal(c.daif, 2);
  assert.equal(pc(c), BigInt(USER + 8));
  // SVC at EL1 (SPSel = 1): current-EL SPx vector; SPSR.M = EL1h.
  c.el = 1; c.spsel = 1; c.mmu.setEl(1); c.daif = 0;
  runAt(m, CODE, [NOP, SVC(1)], 2);
  assert.equal(pc(c), BigInt(VBAR + 0x200));
  assert.equal(sysreg(c, SPSR_EL1) & 0x3ffn, 0x5n);
  assert.equal(sysreg(c, ELR_EL1), BigInt(CODE + 8));
  // HVC without a hypervisor (exits off): UNDEFINED.
  runAt(m, CODE, [HVC(0)], 1);
  assert.equal(esr(m) >>> 26, 0);
  // With exits: run() ends at once with STOP_HVC, EC and immediate, PC past the hvc; nothing else runs.
  c.exits = true;
  assert.equal(runAt(m, CODE, [HVC(0xea1), NOP, NOP], 3), 1);
  assert.deepEqual([c.stop, c.exitEc, c.exitIss, Number(pc(c))], [STOP_HVC, 0x16, 0xea1, CODE + 4]);
  c.exits = false;
  // ERET at EL0: UNDEFINED.
  atEl0(m, [ERET], 1);
  assert.equal(esr(m) >>> 26, 0);
  assert.equal(sysreg(c, ELR_EL1), BigInt(USER));
});

test("IRQ, FIQ and SError are taken when unmasked, to the right vector with the right ELR", () => {
  const m = setup();
  const c = m.cpu;
  c.daif = 0xf;
  c.irqLine = 1;
  runAt(m, CODE, [NOP, NOP, DAIFCLR(2), NOP, NOP], 4);
  assert.equal(pc(c), BigInt(VBAR + 0x280), "IRQ, current EL with SPx");
  assert.equal(sysreg(c, ELR_EL1), BigInt(CODE + 12), "the instruction after DAIFClr");
  assert.equal(Number(sysreg(c, SPSR_EL1)) & 0x3ff, (0xd << 6) | 5, "SPSR.I = 0");
  assert.equal(c.daif, 0xf);
  // From EL0: lower-EL vector 0x480.
  atEl0(m, [NOP, NOP], 1);
  assert.equal(pc(c), BigInt(VBAR + 0x480));
  assert.equal(sysreg(c, ELR_EL1), BigInt(USER), "taken before the first EL0 instruction");
  c.irqLine = 0;
  // FIQ from EL0: 0x500.
  c.fiqLine = 1;
  atEl0(m, [NOP], 1);
  assert.equal(pc(c), BigInt(VBAR + 0x500));
  c.fiqLine = 0;
  // SError at EL1 once PSTATE.A is clear: 0x380, ESR EC 0x2F, the line is consumed.
  c.serrorLine = 1;
  runAt(m, CODE, [NOP, DAIFCLR(4), NOP], 3);
  assert.equal(pc(c), BigInt(VBAR + 0x380));
  assert.equal(esr(m) >>> 26, 0x2f);
  assert.equal(c.serrorLine, 0);
  // A masked interrupt stays pending: ISR_EL1 shows it.
  c.irqLine = 1;
  assert.equal(read(m, REG.ISR_EL1), 0x80n);
  c.irqLine = 0;
});

test("illegal exception return sets PSTATE.IL; the next instruction takes EC 0x0E", () => {
  const m = setup();
  const c = m.cpu;
  for (const mode of [0x9 /* EL2h */, 0x10 /* AArch32 */, 0x1 /* reserved */]) {
    c.sys[SPSR_EL1] = 0x3c0 | mode;
    setx(c, 5, CODE + 0x100);
    runAt(m, CODE, [msr(REG.ELR_EL1, 5), ERET], 3);
    assert.equal(c.el, 1, "EL unchanged");
    assert.equal(esr(m), (0x0e << 26) | (1 << 25), `mode ${mode}`);
    assert.equal(sysreg(c, ELR_EL1), BigInt(CODE + 0x100));
    assert.equal((Number(sysreg(c, SPSR_EL1)) >>> 20) & 1, 1, "SPSR.IL");
    assert.equal(c.il, 0, "cleared on entry");
    assert.equal(pc(c), BigInt(VBAR + 0x200));
  }
});

test("PC alignment fault on a misaligned return address", () => {
  const m = setup();
  const c = m.cpu;
  c.sys[SPSR_EL1] = 0x3c5;
  setx(c, 5, CODE + 0x102);
  runAt(m, CODE, [msr(REG.ELR_EL1, 5), ERET], 3);
  assert.equal(esr(m) >>> 26, 0x22);
  assert.equal(sysreg(c, FAR_EL1), BigInt(CODE + 0x102));
  assert.equal(sysreg(c, ELR_EL1), BigInt(CODE + 0x102));
  assert.equal(pc(c), BigInt(VBAR + 0x200));
});

test("WFI/WFE: trap at EL0 unless nTWI/nTWE, stop the loop at EL1, SEVL makes WFE fall through", () => {
  const m = setup();
  const c = m.cpu;
  const n = runAt(m, CODE, [NOP, WFI, NOP], 3);
  assert.equal(n, 2);
  assert.equal(c.stop, STOP_WFI);
  assert.equal(pc(c), BigInt(CODE + 8));
  assert.equal(runAt(m, CODE, [SEVL, WFE, NOP], 3), 3, "event register set: WFE does not wait");
  c.sys[SCTLR_EL1] &= ~((1 << 16) | (1 << 18));
  atEl0(m, [WFI], 1);
  assert.equal(esr(m), (0x01 << 26) | (1 << 25) | 0x1e00000);
  atEl0(m, [WFE], 1);
  assert.equal(esr(m), (0x01 << 26) | (1 << 25) | 0x1e00001);
});

test("CPACR_EL1.FPEN drives Cpu.fpTrap; fpAccessTrap raises EC 0x07", () => {
  const m = setup();
  const c = m.cpu;
  assert.equal(c.fpTrap, false);
  write(m, REG.CPACR_EL1, 0);
  assert.equal(c.fpTrap, true);
  write(m, REG.CPACR_EL1, 1 << 20);
  assert.equal(c.fpTrap, false, "EL0-only trap, at EL1");
  atEl0(m, [NOP], 1);
  assert.equal(c.fpTrap, true, "EL0-only trap, at EL0");
  c.fpAccessTrap();
  assert.equal(esr(m) >>> 26, 0x07);
  assert.equal(c.el, 1);
  assert.equal(c.fpTrap, false);
  write(m, REG.CPACR_EL1, 3 << 20);
  assert.equal(read(m, REG.CPACR_EL1), 0x300000n);
});

test("generic timer: counter hook, TVAL/CVAL, ISTATUS and the timer-write exit", () => {
  const m = setup();
  const c = m.cpu;
  let now = 1000;
  c.counter = () => now;
  c.exits = true;
  const changes: number[] = [];
  const write = (e: Enc, v: number): void => {
    setx(c, 1, v);
    assert.equal(runAt(m, CODE, [msr(e, 1), NOP]), 1, "the exit ends run() after the MSR");
    assert.equal(c.stop, STOP_TIMER);
    assert.equal(Number(pc(c)), CODE + 4, "PC past the MSR");
    changes.push(c.exitTimers);
    c.exitTimers = 0;
  };
  assert.equal(read(m, REG.CNTPCT_EL0), 1000n);
  assert.equal(c.stop, STOP_BUDGET, "reads do not exit");
  write(REG.CNTV_TVAL_EL0, 500);
  assert.equal(read(m, REG.CNTV_CVAL_EL0), 1500n);
  write(REG.CNTV_CTL_EL0, 1);
  assert.equal(read(m, REG.CNTV_CTL_EL0), 1n, "not yet");
  assert.equal(timerFiring(c, TIMER_VIRT), false);
  now = 1600;
  assert.equal(read(m, REG.CNTV_CTL_EL0), 5n, "ISTATUS");
  assert.equal(read(m, REG.CNTV_TVAL_EL0), BigInt(0x1_0000_0000 - 100), "TVAL is CVAL - count, 32-bit");
  assert.equal(timerFiring(c, TIMER_VIRT), true);
  write(REG.CNTV_CTL_EL0, 3);
  assert.equal(timerFiring(c, TIMER_VIRT), false, "masked");
  assert.deepEqual(changes, [2, 2, 2], "bit 1 << TIMER_VIRT");
});

test("IC IALLU drops decoded instructions; TLBI ...IS is broadcast", () => {
  const m = setup();
  const c = m.cpu;
  setx(c, 0, 0);
  runAt(m, CODE, [NOP, NOP]);
  // A write the CPU does not observe (another agent, here the test writing RAM directly): the decoded NOP
  // may still execute (it does here, the decode cache holds the handler) until IC IALLU.
  m.dv.setInt32(CODE - BASE, ADD_X(0, 0, 2), true);
  setPc(c, CODE); c.run(1);
  assert.equal(x(c, 0), 0n, "stale decoded instruction");
  m.dv.setInt32(CODE - BASE + 0x800, IC_IALLU, true);
  m.dv.setInt32(CODE - BASE + 0x804, ISB, true);
  setPc(c, CODE + 0x800); c.run(2);
  setPc(c, CODE); c.run(1);
  assert.equal(x(c, 0), 2n, "after IC IALLU the new instruction executes");
  // Broadcast: an exit right after the IS instruction with the instruction and operand; the local form does
  // not exit; without exits (one CPU, no platform) nothing is broadcast.
  runAt(m, USER, [TLBI.VMALLE1IS(), TLBI.VMALLE1()]);
  assert.equal(c.stop, STOP_BUDGET, "no exits unless a platform handles them");
  c.exits = true;
  setx(c, 3, 0x1234);
  assert.equal(runAt(m, USER, [TLBI.VMALLE1IS(), TLBI.VMALLE1()]), 1);
  assert.equal(c.stop, STOP_BROADCAST);
  assert.deepEqual([c.exitInsn, c.exitXlo, Number(pc(c))], [TLBI.VMALLE1IS(), 0, USER + 4]);
  c.run(1);
  assert.equal(c.stop, STOP_BUDGET, "TLBI VMALLE1 (local) runs on");
  const other = new Cpu(m.mmu);
  applyBroadcast(other, c.exitInsn, c.exitXlo, c.exitXhi);
});
