/**
 * A guest's stage-2 fault, handled as Xen on Arm handles one that no MMIO handler or P2M fix-up claims
 * (xen/arch/arm/traps.c do_trap_stage2_abort_guest → inject_dabt_exception / inject_iabt_exception →
 * inject_abt64_exception): a synchronous abort is injected into the guest at EL1 with
 *  - ESR_EL1: EC = Data or Instruction Abort "from the current EL" when the guest was at EL1, "from a lower
 *    EL" when at EL0; IL = 1; ISS = 0 — so DFSC/IFSC = 0b000000 ("address size fault, level 0"), WnR = 0 and
 *    ISV = 0 whatever the access was;
 *  - FAR_EL1 = the faulting virtual address (Xen's HFAR; for a fault on a stage-1 descriptor, the address
 *    whose walk read it);
 *  - ELR_EL1 = the faulting instruction, SPSR_EL1 = PSTATE, then EL1h with D, A, I, F masked at the
 *    synchronous vector for the guest's mode.
 * In Xeno the only stage-2 faults are accesses to RAM frames the balloon gave back (p2m.ts); device addresses
 * reach the MMIO bus before stage 2 is consulted.
 *
 * What Linux does with it (arch/arm64/mm/fault.c, fault_info[0] "ttbr address size fault", do_bad): nothing
 * handles it, so in the kernel it is an oops ("Unhandled fault" / die_kernel_fault) and a user program is
 * killed with SIGKILL.
 */
import { EC_DABT_LOWER, EC_DABT_SAME, EC_IABT_LOWER, EC_IABT_SAME, type Cpu } from "../cpu/arm64/cpu.js";

/** Injects the abort for the stage-2 fault recorded in `c.mmu` (faultStage2 = 1). No allocation. */
export function injectStage2Abort(c: Cpu): void {
  const m = c.mmu;
  const lower = c.el === 0;
  const ec = m.faultFetch !== 0 ? (lower ? EC_IABT_LOWER : EC_IABT_SAME) : (lower ? EC_DABT_LOWER : EC_DABT_SAME);
  c.syncException(ec, 0, 0, m.faultVaLo, m.faultVaHi, true);
  // Taken between instructions (the faulting one did not complete): the run loop re-reads PC, and a stale
  // `jumped` would make it skip advancing PC past the handler's first instruction.
  c.jumped = 0;
}
