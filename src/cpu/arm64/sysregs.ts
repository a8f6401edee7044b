/**
 * Storage for system registers: `Cpu.sys` is an Int32Array with two slots (lo, hi) per 64-bit register at the
 * indices below (already doubled). Registers whose writes have side effects (SCTLR, TCR, TTBRx, DAIF, ...) are
 * handled by the MSR/MRS code in system.ts, which keeps the MMU's copies in step.
 *
 * Names follow the Arm ARM's (D17 "AArch64 System Register Descriptions").
 */
let next = 0;
const reg = (): number => { const k = next; next += 2; return k; };

export const SCTLR_EL1 = reg();
export const TCR_EL1 = reg();
export const TTBR0_EL1 = reg();
export const TTBR1_EL1 = reg();
export const MAIR_EL1 = reg();
export const AMAIR_EL1 = reg();
export const VBAR_EL1 = reg();
export const ELR_EL1 = reg();
export const SPSR_EL1 = reg();
export const ESR_EL1 = reg();
export const FAR_EL1 = reg();
export const AFSR0_EL1 = reg();
export const AFSR1_EL1 = reg();
export const PAR_EL1 = reg();
export const CONTEXTIDR_EL1 = reg();
export const TPIDR_EL0 = reg();
export const TPIDRRO_EL0 = reg();
export const TPIDR_EL1 = reg();
export const CPACR_EL1 = reg();
export const MDSCR_EL1 = reg();
export const CSSELR_EL1 = reg();
export const CNTKCTL_EL1 = reg();
export const SP_EL0_SHADOW = reg(); // unused: SP_EL0 lives in Cpu.r (state.ts); kept so indices stay stable
export const ACTLR_EL1 = reg();
export const MDCCINT_EL1 = reg();
export const OSLAR_EL1 = reg();
export const OSDLR_EL1 = reg();
// Generic timer (the devices layer reads/writes these through hooks in system.ts).
export const CNTV_CTL_EL0 = reg();
export const CNTV_CVAL_EL0 = reg();
export const CNTP_CTL_EL0 = reg();
export const CNTP_CVAL_EL0 = reg();
export const CNTVOFF_EL2 = reg();
// Debug breakpoint/watchpoint registers: two of each (ID_AA64DFR0_EL1.BRPs = WRPs = 1), storage only.
export const DBGBVR0_EL1 = reg();
export const DBGBVR1_EL1 = reg();
export const DBGBCR0_EL1 = reg();
export const DBGBCR1_EL1 = reg();
export const DBGWVR0_EL1 = reg();
export const DBGWVR1_EL1 = reg();
export const DBGWCR0_EL1 = reg();
export const DBGWCR1_EL1 = reg();
export const OSLSR_EL1 = reg(); // OS lock status, written through OSLAR_EL1
/** Room for registers added later without reshuffling. */
export const SYS_SLOTS = 256;
if (next > SYS_SLOTS) throw new Error("sysregs: SYS_SLOTS too small");
