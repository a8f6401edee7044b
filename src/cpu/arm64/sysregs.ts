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

/**
 * The storage slots above by architectural encoding (op0, op1, CRn, CRm, op2; Arm ARM D17), so a saved vCPU
 * names its system registers as the architecture does, not by this file's declaration order. Every slot
 * holding state is here (SP_EL0_SHADOW holds none); test/unit/vcpu-state.test.ts checks each encoding against
 * the MRS/MSR tables.
 */
export const SYSREG_SLOTS: ReadonlyArray<readonly [name: string, slot: number, op0: number, op1: number, crn: number, crm: number, op2: number]> = [
  ["SCTLR_EL1", SCTLR_EL1, 3, 0, 1, 0, 0], ["ACTLR_EL1", ACTLR_EL1, 3, 0, 1, 0, 1], ["CPACR_EL1", CPACR_EL1, 3, 0, 1, 0, 2],
  ["TTBR0_EL1", TTBR0_EL1, 3, 0, 2, 0, 0], ["TTBR1_EL1", TTBR1_EL1, 3, 0, 2, 0, 1], ["TCR_EL1", TCR_EL1, 3, 0, 2, 0, 2],
  ["SPSR_EL1", SPSR_EL1, 3, 0, 4, 0, 0], ["ELR_EL1", ELR_EL1, 3, 0, 4, 0, 1],
  ["AFSR0_EL1", AFSR0_EL1, 3, 0, 5, 1, 0], ["AFSR1_EL1", AFSR1_EL1, 3, 0, 5, 1, 1], ["ESR_EL1", ESR_EL1, 3, 0, 5, 2, 0],
  ["FAR_EL1", FAR_EL1, 3, 0, 6, 0, 0], ["PAR_EL1", PAR_EL1, 3, 0, 7, 4, 0],
  ["MAIR_EL1", MAIR_EL1, 3, 0, 10, 2, 0], ["AMAIR_EL1", AMAIR_EL1, 3, 0, 10, 3, 0], ["VBAR_EL1", VBAR_EL1, 3, 0, 12, 0, 0],
  ["CONTEXTIDR_EL1", CONTEXTIDR_EL1, 3, 0, 13, 0, 1], ["TPIDR_EL1", TPIDR_EL1, 3, 0, 13, 0, 4],
  ["CNTKCTL_EL1", CNTKCTL_EL1, 3, 0, 14, 1, 0], ["CSSELR_EL1", CSSELR_EL1, 3, 2, 0, 0, 0],
  ["TPIDR_EL0", TPIDR_EL0, 3, 3, 13, 0, 2], ["TPIDRRO_EL0", TPIDRRO_EL0, 3, 3, 13, 0, 3],
  ["CNTP_CTL_EL0", CNTP_CTL_EL0, 3, 3, 14, 2, 1], ["CNTP_CVAL_EL0", CNTP_CVAL_EL0, 3, 3, 14, 2, 2],
  ["CNTV_CTL_EL0", CNTV_CTL_EL0, 3, 3, 14, 3, 1], ["CNTV_CVAL_EL0", CNTV_CVAL_EL0, 3, 3, 14, 3, 2],
  ["CNTVOFF_EL2", CNTVOFF_EL2, 3, 4, 14, 0, 3],
  ["MDCCINT_EL1", MDCCINT_EL1, 2, 0, 0, 2, 0], ["MDSCR_EL1", MDSCR_EL1, 2, 0, 0, 2, 2],
  ["DBGBVR0_EL1", DBGBVR0_EL1, 2, 0, 0, 0, 4], ["DBGBCR0_EL1", DBGBCR0_EL1, 2, 0, 0, 0, 5],
  ["DBGWVR0_EL1", DBGWVR0_EL1, 2, 0, 0, 0, 6], ["DBGWCR0_EL1", DBGWCR0_EL1, 2, 0, 0, 0, 7],
  ["DBGBVR1_EL1", DBGBVR1_EL1, 2, 0, 0, 1, 4], ["DBGBCR1_EL1", DBGBCR1_EL1, 2, 0, 0, 1, 5],
  ["DBGWVR1_EL1", DBGWVR1_EL1, 2, 0, 0, 1, 6], ["DBGWCR1_EL1", DBGWCR1_EL1, 2, 0, 0, 1, 7],
  ["OSLAR_EL1", OSLAR_EL1, 2, 0, 1, 0, 4], ["OSLSR_EL1", OSLSR_EL1, 2, 0, 1, 1, 4], ["OSDLR_EL1", OSDLR_EL1, 2, 0, 1, 3, 4],
];

/** The assembler's generic name of an encoding, "S<op0>_<op1>_C<n>_C<m>_<op2>": a saved state's sysreg key. */
export function sysregKey(op0: number, op1: number, crn: number, crm: number, op2: number): string {
  return `S${op0}_${op1}_C${crn}_C${crm}_${op2}`;
}

/**
 * CTR_EL0: IminLine = DminLine = 4 (64-byte lines), L1Ip = PIPT (0b11), CWG = ERG = 4 (Arm ARM D17.2.33); and
 * DCZID_EL0 where DC ZVA is allowed (BS = 4: 64-byte blocks, D17.2.34). The MRS handlers (system.ts) and compiled
 * MRS at EL1 (jit/translate.ts) both read these.
 */
export const CTR_EL0_VALUE = (1 << 31) | (4 << 24) | (4 << 20) | (4 << 16) | (3 << 14) | 4;
export const DCZID_EL0_VALUE = 4;
