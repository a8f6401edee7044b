/**
 * The generic timer's CPU interface (Arm ARM D11 "The Generic Timer in AArch64 state"): the system counter
 * (CNTPCT_EL0/CNTVCT_EL0, CNTFRQ_EL0), the EL1 physical and virtual timers (CNTP_* / CNTV_*) and the EL0
 * access controls in CNTKCTL_EL1. The timers here are registers only: every guest write ends the CPU's run with
 * a STOP_TIMER exit, and the board (re)evaluates the timer interrupt with timerDeadline/timerFiring.
 *
 * Counter frequency: 62.5 MHz (a 16 ns tick), the value QEMU's virt board used for years and well inside
 * what Linux and Xen expect (both read CNTFRQ_EL0 or the device tree's clock-frequency).
 */
import type { Cpu } from "./cpu.js";
import { COUNTER_HZ } from "../../common/domain-clock.js";
import { hostNowMs } from "../../common/host-clock.js";
import { type SysReg, SYSHI } from "./sys-defs.js";
import { CNTKCTL_EL1, CNTP_CTL_EL0, CNTP_CVAL_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0, CNTVOFF_EL2 } from "./sysregs.js";

/** CNTFRQ_EL0 in Hz (the domain clock's rate, common/domain-clock.ts). */
export const CNTFRQ_HZ = COUNTER_HZ;
const TICKS_PER_MS = CNTFRQ_HZ / 1000;
const TWO32 = 4294967296;

/** CNTKCTL_EL1 bits (Arm ARM D17.10.x): EL0 access to the counters and timers. */
export const CNTKCTL_EL0PCTEN = 1 << 0, CNTKCTL_EL0VCTEN = 1 << 1, CNTKCTL_EL0VTEN = 1 << 8,
  CNTKCTL_EL0PTEN = 1 << 9;
/** CNTx_CTL_EL0 bits. */
export const CTL_ENABLE = 1, CTL_IMASK = 2, CTL_ISTATUS = 4;

/** Timer numbers for Cpu.exitTimers (bit 1 << timer) and the helpers below. */
export const TIMER_PHYS = 0, TIMER_VIRT = 1;

/**
 * Default system counter of a bare Cpu: the host clock (CLOCK_MONOTONIC, the same in every thread;
 * common/host-clock.ts) in 62.5 MHz ticks. A board gives its vCPUs the domain's clock instead
 * (common/domain-clock.ts: counting from 0 at domain creation, kept across save/restore).
 */
export function hostCounter(): number {
  return Math.floor(hostNowMs() * TICKS_PER_MS);
}

/** The timer's counter: CNTPCT for the physical timer, CNTVCT = CNTPCT - CNTVOFF for the virtual one. */
function count(c: Cpu, timer: number): number {
  const p = c.counter();
  if (timer === TIMER_PHYS) return p;
  const s = c.sys;
  return p - ((s[CNTVOFF_EL2 + 1] >>> 0) * TWO32 + (s[CNTVOFF_EL2] >>> 0));
}

function cvalOf(c: Cpu, timer: number): number {
  const k = timer === TIMER_PHYS ? CNTP_CVAL_EL0 : CNTV_CVAL_EL0;
  return (c.sys[k + 1] >>> 0) * TWO32 + (c.sys[k] >>> 0);
}

/** True when the timer's interrupt output is asserted: ENABLE, not IMASK, and counter >= CVAL (D11.2.4). */
export function timerFiring(c: Cpu, timer: number): boolean {
  const ctl = c.sys[timer === TIMER_PHYS ? CNTP_CTL_EL0 : CNTV_CTL_EL0];
  return (ctl & (CTL_ENABLE | CTL_IMASK)) === CTL_ENABLE && count(c, timer) >= cvalOf(c, timer);
}

/**
 * Physical counter value (CNTPCT ticks) at which the timer's output will assert, or -1 when it is disabled
 * or masked. For the devices layer to schedule a wake-up.
 */
export function timerDeadline(c: Cpu, timer: number): number {
  const ctl = c.sys[timer === TIMER_PHYS ? CNTP_CTL_EL0 : CNTV_CTL_EL0];
  if ((ctl & (CTL_ENABLE | CTL_IMASK)) !== CTL_ENABLE) return -1;
  return cvalOf(c, timer) + (c.counter() - count(c, timer));
}

/** Splits a non-negative counter value into SYSHI[0] (hi) and the returned lo word. */
function split(v: number): number {
  const h = Math.floor(v / TWO32);
  SYSHI[0] = h | 0;
  return (v - h * TWO32) | 0;
}

function changed(c: Cpu, timer: number): void {
  c.timerExit(timer);
}

/** CNTKCTL_EL1 predicate for EL0 access (false: the access traps to EL1 with EC 0x18). */
function kctl(bits: number): (c: Cpu) => boolean {
  return (c) => (c.sys[CNTKCTL_EL1] & bits) !== 0;
}

function timerRegs(timer: number, crm: number, ctlSlot: number, cvalSlot: number, el0Bit: number): SysReg[] {
  const el0 = kctl(el0Bit);
  const name = timer === TIMER_PHYS ? "CNTP" : "CNTV";
  return [
    {
      // TVAL: a signed 32-bit view of CVAL - counter; writing sets CVAL = counter + SignExtend(TVAL).
      name: name + "_TVAL_EL0", op0: 3, op1: 3, crn: 14, crm, op2: 0, el0,
      read: (c) => {
        const now = count(c, timer);
        const nl = split(now);
        SYSHI[0] = 0;
        return (c.sys[cvalSlot] - nl) | 0;
      },
      write: (c, lo) => {
        const v = count(c, timer) + lo; // lo is the sign-extended TVAL (an int32)
        if (v >= 0) { c.sys[cvalSlot] = split(v); c.sys[cvalSlot + 1] = SYSHI[0]; }
        else { c.sys[cvalSlot] = v | 0; c.sys[cvalSlot + 1] = -1; } // only before the counter passes 2^31
        changed(c, timer);
      },
    },
    {
      name: name + "_CTL_EL0", op0: 3, op1: 3, crn: 14, crm, op2: 1, el0,
      read: (c) => {
        SYSHI[0] = 0;
        const ctl = c.sys[ctlSlot] & (CTL_ENABLE | CTL_IMASK);
        // ISTATUS: the timer condition is met (reported whether or not IMASK is set; 0 when disabled).
        const met = (ctl & CTL_ENABLE) !== 0 && count(c, timer) >= cvalOf(c, timer);
        return met ? ctl | CTL_ISTATUS : ctl;
      },
      write: (c, lo) => { c.sys[ctlSlot] = lo & (CTL_ENABLE | CTL_IMASK); changed(c, timer); },
    },
    {
      name: name + "_CVAL_EL0", op0: 3, op1: 3, crn: 14, crm, op2: 2, el0,
      read: (c) => { SYSHI[0] = c.sys[cvalSlot + 1]; return c.sys[cvalSlot]; },
      write: (c, lo, hi) => { c.sys[cvalSlot] = lo; c.sys[cvalSlot + 1] = hi; changed(c, timer); },
    },
  ];
}

export function timerSysRegs(): SysReg[] {
  return [
    {
      name: "CNTFRQ_EL0", op0: 3, op1: 3, crn: 14, crm: 0, op2: 0,
      // Read-only here: only the highest EL (the hypervisor) programs the frequency.
      el0: kctl(CNTKCTL_EL0PCTEN | CNTKCTL_EL0VCTEN),
      read: () => { SYSHI[0] = 0; return CNTFRQ_HZ; },
    },
    {
      name: "CNTPCT_EL0", op0: 3, op1: 3, crn: 14, crm: 0, op2: 1, el0: kctl(CNTKCTL_EL0PCTEN),
      read: (c) => split(count(c, TIMER_PHYS)),
    },
    {
      name: "CNTVCT_EL0", op0: 3, op1: 3, crn: 14, crm: 0, op2: 2, el0: kctl(CNTKCTL_EL0VCTEN),
      read: (c) => split(count(c, TIMER_VIRT)),
    },
    ...timerRegs(TIMER_PHYS, 2, CNTP_CTL_EL0, CNTP_CVAL_EL0, CNTKCTL_EL0PTEN),
    ...timerRegs(TIMER_VIRT, 3, CNTV_CTL_EL0, CNTV_CVAL_EL0, CNTKCTL_EL0VTEN),
    // EL0 access controls and the event stream (EVNTEN/EVNTDIR/EVNTI, not generated: WFE does not wait).
    {
      name: "CNTKCTL_EL1", op0: 3, op1: 0, crn: 14, crm: 1, op2: 0,
      read: (c) => { SYSHI[0] = 0; return c.sys[CNTKCTL_EL1]; },
      write: (c, lo) => { c.sys[CNTKCTL_EL1] = lo & 0x3ff; },
    },
  ];
}
