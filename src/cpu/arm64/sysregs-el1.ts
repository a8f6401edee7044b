/**
 * The EL1 system registers (Arm ARM D17 "AArch64 System Register Descriptions") and the identification
 * registers, which describe exactly an ARMv8.0-A PE with EL0 and EL1 in AArch64 only, FP and AdvSIMD, a
 * 4K-granule VMSA with 48-bit physical addresses and 16-bit ASIDs, minimal v8 debug, and nothing optional
 * (no AES/SHA/CRC32/atomics/PAuth/SVE/PMU/RAS/GIC system registers, no EL2/EL3).
 *
 * Identity: MIDR_EL1 is an Arm Cortex-A53 r0p4 (0x410FD034). A real part number, because Linux looks CPUs up
 * by MIDR for errata and vulnerability lists: the A53 is on its "not affected" lists for Spectre-v2/BHB,
 * Meltdown (no KPTI) and SSB, and r0p4 is past the A53 errata that need kernel workarounds at EL1. A made-up
 * implementer would make Linux assume the worst and enable every mitigation.
 */
import type { Cpu } from "./cpu.js";
import { type SysReg, SYSHI, constant, endBlock, stored, SCTLR_M, SCTLR_UMA, SCTLR_WXN } from "./sys-defs.js";
import {
  ACTLR_EL1, AFSR0_EL1, AFSR1_EL1, AMAIR_EL1, CONTEXTIDR_EL1, CPACR_EL1, CSSELR_EL1, DBGBCR0_EL1, DBGBCR1_EL1,
  DBGBVR0_EL1, DBGBVR1_EL1, DBGWCR0_EL1, DBGWCR1_EL1, DBGWVR0_EL1, DBGWVR1_EL1, ELR_EL1, ESR_EL1, FAR_EL1,
  MAIR_EL1, MDCCINT_EL1, MDSCR_EL1, OSDLR_EL1, OSLSR_EL1, PAR_EL1, SCTLR_EL1, SPSR_EL1, TCR_EL1, TPIDR_EL1,
  TTBR0_EL1, TTBR1_EL1, VBAR_EL1,
} from "./sysregs.js";
import { SP_EL0 } from "./state.js";

type Enc = [number, number, number, number, number];

/** MIDR_EL1: Arm (0x41), variant 0, architecture 0xF (see ID registers), part 0xD03 (Cortex-A53), r0p4. */
export const MIDR = 0x410fd034;

/**
 * SCTLR_EL1 (D17.2.118) in ARMv8.0: bits 11, 20, 22, 23, 28, 29 are RES1; writable: M A C SA SA0 CP15BEN ITD
 * SED UMA I DZE UCT nTWI nTWE WXN UCI. EE and E0E read as 0: little-endian only (ID_AA64MMFR0_EL1.BigEnd = 0,
 * BigEndEL0 = 0). Alignment (A), SP alignment (SA, SA0) and cacheability (C, I) are stored but not enforced.
 */
export const SCTLR_RES1 = 0x30d00800;
const SCTLR_WRITABLE = 0x3f | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 12) | (1 << 14) | (1 << 15) | (1 << 16) |
  (1 << 18) | (1 << 19) | (1 << 26);
/** Reset value (architecturally UNKNOWN apart from M/C/I = 0): EL0 may use WFI/WFE, CTR, DC ZVA, cache ops. */
const SCTLR_RESET = SCTLR_RES1 | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 18) | (1 << 26);

/** TCR_EL1 (D17.2.131) fields defined in ARMv8.0: all of the low word except bit 6; IPS, AS, TBI0, TBI1. */
const TCR_LO_MASK = ~(1 << 6);
const TCR_HI_MASK = 0x77;

/**
 * ID_AA64PFR0_EL1: EL0 = EL1 = 0b0001 (AArch64 only), EL2 = EL3 = 0 (not implemented), FP = 0 and
 * AdvSIMD = 0 (implemented, no half-precision arithmetic), GIC = 0 (no system-register GIC interface), RAS,
 * SVE, CSV2, CSV3 = 0.
 */
const ID_AA64PFR0 = 0x11;
/**
 * ID_AA64MMFR0_EL1: PARange = 0b0101 (48 bits), ASIDBits = 0b0010 (16), BigEnd = 0, SNSMem = 0,
 * BigEndEL0 = 0, TGran16 = 0b0000 (not supported), TGran64 = 0b1111 (not supported), TGran4 = 0b0000
 * (supported).
 */
const ID_AA64MMFR0 = 0x5 | (0x2 << 4) | (0xf << 24);
/**
 * ID_AA64DFR0_EL1: DebugVer = 0b0110 (ARMv8 debug), TraceVer = 0, PMUVer = 0 (no PMU: Linux then leaves the
 * PMU registers alone), BRPs = 1 and WRPs = 1 (two breakpoints, two watchpoints; registers store only),
 * CTX_CMPs = 0 (one context-aware breakpoint).
 */
const ID_AA64DFR0 = 0x6 | (1 << 12) | (1 << 20);

/**
 * CLIDR_EL1: L1 separate I/D (Ctype1 = 0b011), L2 unified (Ctype2 = 0b100), LoUIS = 1, LoC = 2, LoUU = 1, as
 * on a Cortex-A53. Caches are not modelled: maintenance instructions are no-ops (memory is coherent).
 */
const CLIDR = 0x0a200023;
/** CCSIDR_EL1 for CSSELR = L1 D (32 KiB, 4-way), L1 I (32 KiB, 2-way), L2 (512 KiB, 16-way); 64-byte lines. */
function ccsidr(csselr: number): number {
  switch (csselr & 0xf) {
    case 0: return 0x700fe01a; // L1 D: WT=0 WB RA WA, NumSets-1 = 127, Assoc-1 = 3, LineSize = 2 (64 B)
    case 1: return 0x201fe00a; // L1 I: RA, 256 sets, 2-way
    case 2: return 0x703fe07a; // L2: WB RA WA, 512 sets, 16-way
    default: return 0;
  }
}

/**
 * MPIDR_EL1: bit 31 RES1, U (30) = 0 (multiprocessor), MT = 0; affinity from the vCPU index as Xen lays it
 * out for guests (vcpuid_to_vaffinity, xen/arch/arm/domain.c): Aff0 = index mod 16 (GICv3 SGI target lists
 * cover 16 Aff0 values), Aff1 = index / 16.
 */
export function mpidr(index: number): number {
  return (0x80000000 | (index & 0xf) | (((index >>> 4) & 0xff) << 8) | (((index >>> 12) & 0xff) << 16)) | 0;
}

/** System-register state after a cold reset (values the Arm ARM leaves UNKNOWN are chosen and documented). */
export function resetSysRegs(c: Cpu): void {
  const s = c.sys;
  s[SCTLR_EL1] = SCTLR_RESET;
  c.mmu.sctlr = SCTLR_RESET;
  // CPACR_EL1.FPEN = 0b11: FP/SIMD usable at EL0 and EL1 (reset value UNKNOWN; Linux programs it).
  s[CPACR_EL1] = 3 << 20;
  // OS lock locked after a cold reset (OSLSR_EL1.OSLK = 1) with OSLM = 0b10 (OS lock implemented).
  s[OSLSR_EL1] = 0x8 | 0x2;
  c.mmu.regimeChanged(true);
  c.updateFpTrap();
}

/** A register whose writes change the translation regime: keeps the Mmu's copy in step. */
function regimeReg(name: string, enc: Enc, slot: number,
  apply: (c: Cpu, lo: number, hi: number) => void): SysReg {
  const [op0, op1, crn, crm, op2] = enc;
  return {
    name, op0, op1, crn, crm, op2,
    read: (c) => { SYSHI[0] = c.sys[slot + 1]; return c.sys[slot]; },
    write: apply,
  };
}

/** A storage register with a write mask (RES0 bits read as zero). */
function masked(name: string, enc: Enc, slot: number, loMask: number, hiMask: number): SysReg {
  const [op0, op1, crn, crm, op2] = enc;
  return {
    name, op0, op1, crn, crm, op2,
    read: (c) => { SYSHI[0] = c.sys[slot + 1]; return c.sys[slot]; },
    write: (c, lo, hi) => { c.sys[slot] = lo & loMask; c.sys[slot + 1] = hi & hiMask; },
  };
}

const SCRATCH = new Int32Array(2);

export function el1SysRegs(): SysReg[] {
  return [
    // --- Translation regime (D17.2): writes update the Mmu; SCTLR.M/WXN or TCR changes flush the TLB.
    regimeReg("SCTLR_EL1", [3, 0, 1, 0, 0], SCTLR_EL1, (c, lo) => {
      const old = c.sys[SCTLR_EL1];
      const v = (lo & SCTLR_WRITABLE) | SCTLR_RES1;
      c.sys[SCTLR_EL1] = v; c.sys[SCTLR_EL1 + 1] = 0;
      c.mmu.sctlr = v;
      c.mmu.regimeChanged(((old ^ v) & (SCTLR_M | SCTLR_WXN)) !== 0);
      endBlock(c); // translation of the next instruction may change (the guest follows with ISB anyway)
    }),
    regimeReg("TCR_EL1", [3, 0, 2, 0, 2], TCR_EL1, (c, lo, hi) => {
      const s = c.sys;
      const nlo = lo & TCR_LO_MASK, nhi = hi & TCR_HI_MASK;
      const flush = nlo !== s[TCR_EL1] || nhi !== s[TCR_EL1 + 1];
      s[TCR_EL1] = nlo; s[TCR_EL1 + 1] = nhi;
      c.mmu.tcrLo = nlo; c.mmu.tcrHi = nhi;
      c.mmu.regimeChanged(flush);
    }),
    regimeReg("TTBR0_EL1", [3, 0, 2, 0, 0], TTBR0_EL1, (c, lo, hi) => {
      // Entries are ASID-tagged: a new ASID or table base needs no flush (the OS issues TLBIs as required).
      c.sys[TTBR0_EL1] = lo; c.sys[TTBR0_EL1 + 1] = hi;
      c.mmu.ttbr0Lo = lo; c.mmu.ttbr0Hi = hi;
      c.mmu.regimeChanged(false);
    }),
    regimeReg("TTBR1_EL1", [3, 0, 2, 0, 1], TTBR1_EL1, (c, lo, hi) => {
      c.sys[TTBR1_EL1] = lo; c.sys[TTBR1_EL1 + 1] = hi;
      c.mmu.ttbr1Lo = lo; c.mmu.ttbr1Hi = hi;
      c.mmu.regimeChanged(false);
    }),
    stored("MAIR_EL1", [3, 0, 10, 2, 0], MAIR_EL1),
    stored("AMAIR_EL1", [3, 0, 10, 3, 0], AMAIR_EL1),
    stored("CONTEXTIDR_EL1", [3, 0, 13, 0, 1], CONTEXTIDR_EL1),

    // --- Exception handling
    masked("VBAR_EL1", [3, 0, 12, 0, 0], VBAR_EL1, ~0x7ff, -1), // bits 10:0 RES0 (2 KiB-aligned table)
    stored("ELR_EL1", [3, 0, 4, 0, 1], ELR_EL1),
    // SPSR_EL1: NZCV, SS (21), IL (20), DAIF, M[4:0]; the other bits are RES0 in ARMv8.0.
    masked("SPSR_EL1", [3, 0, 4, 0, 0], SPSR_EL1, 0xf03003df | 0, 0),
    masked("ESR_EL1", [3, 0, 5, 2, 0], ESR_EL1, -1, 0),
    stored("FAR_EL1", [3, 0, 6, 0, 0], FAR_EL1),
    stored("AFSR0_EL1", [3, 0, 5, 1, 0], AFSR0_EL1),
    stored("AFSR1_EL1", [3, 0, 5, 1, 1], AFSR1_EL1),
    stored("PAR_EL1", [3, 0, 7, 4, 0], PAR_EL1),
    {
      // ISR_EL1: pending A (8), I (7), F (6).
      name: "ISR_EL1", op0: 3, op1: 0, crn: 12, crm: 1, op2: 0,
      read: (c) => {
        SYSHI[0] = 0;
        return (c.serrorLine ? 0x100 : 0) | (c.irqLine ? 0x80 : 0) | (c.fiqLine ? 0x40 : 0);
      },
    },
    constant("RVBAR_EL1", [3, 0, 12, 0, 1], 0), // EL1 is the highest EL: RVBAR_EL1 exists; reset is at 0

    // --- PSTATE access (C5.2)
    {
      name: "SPSel", op0: 3, op1: 0, crn: 4, crm: 2, op2: 0,
      read: (c) => { SYSHI[0] = 0; return c.spsel; },
      write: (c, lo) => { c.setSpSel(lo & 1); endBlock(c); },
    },
    {
      name: "CurrentEL", op0: 3, op1: 0, crn: 4, crm: 2, op2: 2,
      read: (c) => { SYSHI[0] = 0; return c.el << 2; },
    },
    {
      // DAIF: EL0 access when SCTLR_EL1.UMA, else trap (EC 0x18). A write may unmask a pending interrupt,
      // so it ends the block and the run loop takes it before the next instruction.
      name: "DAIF", op0: 3, op1: 3, crn: 4, crm: 2, op2: 1,
      el0: (c) => (c.sys[SCTLR_EL1] & SCTLR_UMA) !== 0,
      read: (c) => { SYSHI[0] = 0; return c.daif << 6; },
      write: (c, lo) => { c.daif = (lo >>> 6) & 0xf; endBlock(c); },
    },
    {
      // SP_EL0 at EL1: UNDEFINED while it is the current stack pointer (PSTATE.SP = 0), C5.2.16.
      name: "SP_EL0", op0: 3, op1: 0, crn: 4, crm: 1, op2: 0,
      read: (c) => {
        if (c.spsel === 0) { c.undefinedInstruction(0); return 0; }
        c.bankedSp(SP_EL0, SCRATCH);
        SYSHI[0] = SCRATCH[1];
        return SCRATCH[0];
      },
      write: (c, lo, hi) => {
        if (c.spsel === 0) { c.undefinedInstruction(0); return; }
        c.setBankedSp(SP_EL0, lo, hi);
      },
    },

    // --- Thread ID, FP/SIMD access control, implementation defined
    stored("TPIDR_EL1", [3, 0, 13, 0, 4], TPIDR_EL1),
    {
      // CPACR_EL1: FPEN (21:20) and TTA (28); FPEN changes whether FP/SIMD instructions trap (Cpu.fpTrap).
      name: "CPACR_EL1", op0: 3, op1: 0, crn: 1, crm: 0, op2: 2,
      read: (c) => { SYSHI[0] = 0; return c.sys[CPACR_EL1]; },
      write: (c, lo) => { c.sys[CPACR_EL1] = lo & 0x10300000; c.updateFpTrap(); },
    },
    stored("ACTLR_EL1", [3, 0, 1, 0, 1], ACTLR_EL1),

    // --- Identification (D17.2; all read-only, EL1 only: Linux emulates EL0 reads after the UNDEFINED trap)
    constant("MIDR_EL1", [3, 0, 0, 0, 0], MIDR),
    { name: "MPIDR_EL1", op0: 3, op1: 0, crn: 0, crm: 0, op2: 5, read: (c) => { SYSHI[0] = 0; return mpidr(c.vcpuIndex); } },
    constant("REVIDR_EL1", [3, 0, 0, 0, 6], 0),
    constant("ID_AA64PFR0_EL1", [3, 0, 0, 4, 0], ID_AA64PFR0),
    constant("ID_AA64PFR1_EL1", [3, 0, 0, 4, 1], 0),
    constant("ID_AA64ZFR0_EL1", [3, 0, 0, 4, 4], 0),
    constant("ID_AA64DFR0_EL1", [3, 0, 0, 5, 0], ID_AA64DFR0),
    constant("ID_AA64DFR1_EL1", [3, 0, 0, 5, 1], 0),
    constant("ID_AA64AFR0_EL1", [3, 0, 0, 5, 4], 0),
    constant("ID_AA64AFR1_EL1", [3, 0, 0, 5, 5], 0),
    constant("ID_AA64ISAR0_EL1", [3, 0, 0, 6, 0], 0), // no AES, SHA1/2, CRC32, atomics, RDM, ...
    constant("ID_AA64ISAR1_EL1", [3, 0, 0, 6, 1], 0), // no DPB, PAuth, JSCVT, FCMA, LRCPC, ...
    constant("ID_AA64MMFR0_EL1", [3, 0, 0, 7, 0], ID_AA64MMFR0),
    constant("ID_AA64MMFR1_EL1", [3, 0, 0, 7, 1], 0), // no HAFDBS, VMID16, VHE, HPDS, LOR, PAN
    constant("ID_AA64MMFR2_EL1", [3, 0, 0, 7, 2], 0),
    // The AArch32 ID registers (ID_PFR0_EL1 ... MVFR2_EL1, CRm 1..3) read as zero through the RAZ range in
    // system.ts: AArch32 is not implemented at any EL.
    constant("CLIDR_EL1", [3, 1, 0, 0, 1], CLIDR),
    { name: "CCSIDR_EL1", op0: 3, op1: 1, crn: 0, crm: 0, op2: 0, read: (c) => { SYSHI[0] = 0; return ccsidr(c.sys[CSSELR_EL1]); } },
    masked("CSSELR_EL1", [3, 2, 0, 0, 0], CSSELR_EL1, 0xf, 0),
    constant("AIDR_EL1", [3, 1, 0, 0, 7], 0),

    // --- Debug (D2, minimal): storage so Linux's debug-monitors and hw_breakpoint set-up work; no debug
    // events are generated.
    stored("MDSCR_EL1", [2, 0, 0, 2, 2], MDSCR_EL1),
    stored("MDCCINT_EL1", [2, 0, 0, 2, 0], MDCCINT_EL1),
    constant("MDRAR_EL1", [2, 0, 1, 0, 0], 0),
    {
      // OSLAR_EL1 (write-only): OSLK (bit 0) sets OSLSR_EL1.OSLK (bit 1).
      name: "OSLAR_EL1", op0: 2, op1: 0, crn: 1, crm: 0, op2: 4,
      write: (c, lo) => { c.sys[OSLSR_EL1] = (c.sys[OSLSR_EL1] & ~2) | ((lo & 1) << 1); },
    },
    { name: "OSLSR_EL1", op0: 2, op1: 0, crn: 1, crm: 1, op2: 4, read: (c) => { SYSHI[0] = 0; return c.sys[OSLSR_EL1]; } },
    masked("OSDLR_EL1", [2, 0, 1, 3, 4], OSDLR_EL1, 1, 0),
    {
      // MDCCSR_EL0 (DCC status, RAZ: no debugger): EL0 reads unless MDSCR_EL1.TDCC (bit 12).
      name: "MDCCSR_EL0", op0: 2, op1: 3, crn: 0, crm: 1, op2: 0,
      el0: (c) => (c.sys[MDSCR_EL1] & 0x1000) === 0,
      read: () => { SYSHI[0] = 0; return 0; },
    },
    stored("DBGBVR0_EL1", [2, 0, 0, 0, 4], DBGBVR0_EL1),
    stored("DBGBCR0_EL1", [2, 0, 0, 0, 5], DBGBCR0_EL1),
    stored("DBGWVR0_EL1", [2, 0, 0, 0, 6], DBGWVR0_EL1),
    stored("DBGWCR0_EL1", [2, 0, 0, 0, 7], DBGWCR0_EL1),
    stored("DBGBVR1_EL1", [2, 0, 0, 1, 4], DBGBVR1_EL1),
    stored("DBGBCR1_EL1", [2, 0, 0, 1, 5], DBGBCR1_EL1),
    stored("DBGWVR1_EL1", [2, 0, 0, 1, 6], DBGWVR1_EL1),
    stored("DBGWCR1_EL1", [2, 0, 0, 1, 7], DBGWCR1_EL1),

    // --- PMU: none (ID_AA64DFR0_EL1.PMUVer = 0). PMUSERENR_EL0 is RAZ/WI at EL1 for software that clears it
    // unconditionally; every other PMU register is UNDEFINED.
    {
      name: "PMUSERENR_EL0", op0: 3, op1: 3, crn: 9, crm: 14, op2: 0,
      read: () => { SYSHI[0] = 0; return 0; },
      write: () => {},
    },
  ];
}
