/**
 * Test helpers for the system-level CPU and MMU tests: instruction encoders for the handful of instructions
 * those tests execute (Arm ARM C6 encodings), a machine factory, and a 4K-granule page-table builder.
 */
import { Mmu } from "../../src/mmu/mmu.js";
import { Cpu } from "../../src/cpu/arm64/cpu.js";

/** System register encodings [op0, op1, CRn, CRm, op2]. */
export type Enc = [number, number, number, number, number];
export const REG = {
  SCTLR_EL1: [3, 0, 1, 0, 0], TCR_EL1: [3, 0, 2, 0, 2], TTBR0_EL1: [3, 0, 2, 0, 0], TTBR1_EL1: [3, 0, 2, 0, 1],
  MAIR_EL1: [3, 0, 10, 2, 0], VBAR_EL1: [3, 0, 12, 0, 0], ELR_EL1: [3, 0, 4, 0, 1], SPSR_EL1: [3, 0, 4, 0, 0],
  ESR_EL1: [3, 0, 5, 2, 0], FAR_EL1: [3, 0, 6, 0, 0], PAR_EL1: [3, 0, 7, 4, 0], SP_EL0: [3, 0, 4, 1, 0],
  SPSel: [3, 0, 4, 2, 0], CurrentEL: [3, 0, 4, 2, 2], DAIF: [3, 3, 4, 2, 1], NZCV: [3, 3, 4, 2, 0],
  CPACR_EL1: [3, 0, 1, 0, 2], MIDR_EL1: [3, 0, 0, 0, 0], MPIDR_EL1: [3, 0, 0, 0, 5],
  ID_AA64PFR0_EL1: [3, 0, 0, 4, 0], ID_AA64ISAR0_EL1: [3, 0, 0, 6, 0], ID_AA64MMFR0_EL1: [3, 0, 0, 7, 0],
  ID_AA64DFR0_EL1: [3, 0, 0, 5, 0], ID_PFR0_EL1: [3, 0, 0, 1, 0], ID_AA64ISAR2_EL1: [3, 0, 0, 6, 2],
  CTR_EL0: [3, 3, 0, 0, 1], DCZID_EL0: [3, 3, 0, 0, 7], CNTFRQ_EL0: [3, 3, 14, 0, 0], CNTVCT_EL0: [3, 3, 14, 0, 2],
  CNTPCT_EL0: [3, 3, 14, 0, 1], CNTKCTL_EL1: [3, 0, 14, 1, 0], CNTV_CTL_EL0: [3, 3, 14, 3, 1],
  CNTV_CVAL_EL0: [3, 3, 14, 3, 2], CNTV_TVAL_EL0: [3, 3, 14, 3, 0], TPIDR_EL1: [3, 0, 13, 0, 4],
  CLIDR_EL1: [3, 1, 0, 0, 1], CSSELR_EL1: [3, 2, 0, 0, 0], CCSIDR_EL1: [3, 1, 0, 0, 0],
  OSLAR_EL1: [2, 0, 1, 0, 4], OSLSR_EL1: [2, 0, 1, 1, 4], MDSCR_EL1: [2, 0, 0, 2, 2], ISR_EL1: [3, 0, 12, 1, 0],
} satisfies Record<string, Enc>;

const sysBits = (e: Enc): number => ((e[0] - 2) << 19) | (e[1] << 16) | (e[2] << 12) | (e[3] << 8) | (e[4] << 5);
export const mrs = (rt: number, e: Enc): number => (0xd5300000 | sysBits(e) | rt) | 0;
export const msr = (e: Enc, rt: number): number => (0xd5100000 | sysBits(e) | rt) | 0;
/** SYS #op1, Cn, Cm, #op2, Xt (DC/IC/TLBI/AT). */
export const sys = (op1: number, crn: number, crm: number, op2: number, rt: number): number =>
  (0xd5080000 | (op1 << 16) | (crn << 12) | (crm << 8) | (op2 << 5) | rt) | 0;
export const TLBI = {
  VMALLE1: (rt = 31) => sys(0, 8, 7, 0, rt), VAE1: (rt: number) => sys(0, 8, 7, 1, rt),
  ASIDE1: (rt: number) => sys(0, 8, 7, 2, rt), VAAE1: (rt: number) => sys(0, 8, 7, 3, rt),
  VALE1: (rt: number) => sys(0, 8, 7, 5, rt), VMALLE1IS: (rt = 31) => sys(0, 8, 3, 0, rt),
};
export const AT = {
  S1E1R: (rt: number) => sys(0, 7, 8, 0, rt), S1E1W: (rt: number) => sys(0, 7, 8, 1, rt),
  S1E0R: (rt: number) => sys(0, 7, 8, 2, rt), S1E0W: (rt: number) => sys(0, 7, 8, 3, rt),
};
export const DC_ZVA = (rt: number): number => sys(3, 7, 4, 1, rt);
export const IC_IALLU = sys(0, 7, 5, 0, 31);
export const LDR_X = (rt: number, rn: number, off = 0): number => (0xf9400000 | ((off >> 3) << 10) | (rn << 5) | rt) | 0;
export const STR_X = (rt: number, rn: number, off = 0): number => (0xf9000000 | ((off >> 3) << 10) | (rn << 5) | rt) | 0;
export const LDR_W = (rt: number, rn: number, off = 0): number => (0xb9400000 | ((off >> 2) << 10) | (rn << 5) | rt) | 0;
export const ADD_X = (rd: number, rn: number, imm: number): number => (0x91000000 | (imm << 10) | (rn << 5) | rd) | 0;
export const SVC = (imm: number): number => (0xd4000001 | (imm << 5)) | 0;
export const HVC = (imm: number): number => (0xd4000002 | (imm << 5)) | 0;
export const ERET = 0xd69f03e0 | 0;
export const NOP = 0xd503201f | 0;
export const WFI = 0xd503207f | 0;
export const WFE = 0xd503205f | 0;
export const SEVL = 0xd50320bf | 0;
export const ISB = 0xd5033fdf | 0;
export const B = (byteOff: number): number => (0x14000000 | ((byteOff >> 2) & 0x3ffffff)) | 0;
export const B_SELF = B(0);
export const DAIFSET = (imm: number): number => (0xd50340df | (imm << 8)) | 0;
export const DAIFCLR = (imm: number): number => (0xd50340ff | (imm << 8)) | 0;
export const MSR_SPSEL = (imm: number): number => (0xd50040bf | (imm << 8)) | 0;

/** Physical base of RAM in the test machine (as on a typical arm64 board). */
export const BASE = 0x40000000;

export interface Machine { mmu: Mmu; cpu: Cpu; dv: DataView; }

export function machine(ramBytes = 4 << 20): Machine {
  const mmu = new Mmu(new ArrayBuffer(ramBytes), BASE);
  const cpu = new Cpu(mmu);
  return { mmu, cpu, dv: new DataView(mmu.ram as ArrayBuffer) };
}

/** Register value as a BigInt (tests only). */
export function x(c: Cpu, n: number): bigint {
  return (BigInt(c.r[2 * n + 1] >>> 0) << 32n) | BigInt(c.r[2 * n] >>> 0);
}
export function setx(c: Cpu, n: number, v: bigint | number): void {
  const b = BigInt.asUintN(64, BigInt(v));
  c.r[2 * n] = Number(b & 0xffffffffn) | 0;
  c.r[2 * n + 1] = Number(b >> 32n) | 0;
}
export const pc = (c: Cpu): bigint => x(c, 33);
export const setPc = (c: Cpu, v: bigint | number): void => setx(c, 33, v);
export function sysreg(c: Cpu, slot: number): bigint {
  return (BigInt(c.sys[slot + 1] >>> 0) << 32n) | BigInt(c.sys[slot] >>> 0);
}

/** Writes instruction words at physical address pa and drops decoded code (the test writes RAM directly). */
export function code(m: Machine, pa: number, words: number[]): void {
  words.forEach((w, k) => m.dv.setInt32(pa - BASE + 4 * k, w, true));
  m.cpu.invalidateAllCode();
}
export function poke64(m: Machine, pa: number, v: bigint): void { m.dv.setBigUint64(pa - BASE, BigInt.asUintN(64, v), true); }
export function peek64(m: Machine, pa: number): bigint { return m.dv.getBigUint64(pa - BASE, true); }

/** Fills a vector table at physical `pa` (2 KiB) with "B ." so an exception leaves PC at the vector entry. */
export function spinVectors(m: Machine, pa: number): void {
  code(m, pa, new Array<number>(512).fill(B_SELF));
}

/** Executes the words at `pa` (at the current EL) for `steps` instructions. */
export function runAt(m: Machine, pa: number, words: number[], steps = words.length): number {
  code(m, pa, words);
  setPc(m.cpu, pa);
  return m.cpu.run(steps);
}

// ---------------------------------------------------------------------------------------------------------------
// Page tables: 4K granule, 48-bit VA (T0SZ = T1SZ = 16), 4 levels starting at level 0.

/** Descriptor bits (Arm ARM D5.3). */
export const D = {
  VALID: 1n, TABLE: 2n, PAGE: 3n, BLOCK: 1n,
  AF: 1n << 10n, NG: 1n << 11n, SH_INNER: 3n << 8n,
  AP_RW_EL1: 0n << 6n, AP_RW_ALL: 1n << 6n, AP_RO_EL1: 2n << 6n, AP_RO_ALL: 3n << 6n,
  PXN: 1n << 53n, UXN: 1n << 54n,
  PXN_TABLE: 1n << 59n, UXN_TABLE: 1n << 60n, AP_TABLE_NO_EL0: 1n << 61n, AP_TABLE_RO: 1n << 62n,
  attr: (i: number): bigint => BigInt(i) << 2n,
};

export class PageTables {
  private next: number;
  readonly root: number;
  constructor(readonly m: Machine, pool: number) {
    this.next = pool;
    this.root = this.alloc();
  }
  alloc(): number {
    const pa = this.next;
    this.next += 4096;
    new Uint8Array(this.m.mmu.ram, pa - BASE, 4096).fill(0);
    return pa;
  }
  /** Address of the level-`level` descriptor for va, creating tables above it (with `tableBits`). */
  slot(va: bigint, level: number, tableBits = 0n): number {
    let table = this.root;
    for (let l = 0; l < level; l++) {
      const idx = Number((va >> BigInt(39 - 9 * l)) & 511n);
      const da = table + idx * 8;
      let d = peek64(this.m, da);
      if ((d & 3n) !== 3n) {
        const t = this.alloc();
        d = BigInt(t) | D.TABLE | D.VALID | tableBits;
        poke64(this.m, da, d);
      }
      table = Number(d & 0x0000fffffffff000n);
    }
    return table + Number((va >> BigInt(39 - 9 * level)) & 511n) * 8;
  }
  /** Maps a 4 KiB page (level 3). */
  page(va: bigint, pa: number, attrs: bigint = D.AF | D.AP_RW_EL1): number {
    const s = this.slot(va, 3);
    poke64(this.m, s, BigInt(pa) | attrs | D.PAGE);
    return s;
  }
  /** Maps a block at level 1 (1 GiB) or 2 (2 MiB). */
  block(va: bigint, pa: number, level: 1 | 2, attrs: bigint = D.AF | D.AP_RW_EL1): number {
    const s = this.slot(va, level);
    poke64(this.m, s, BigInt(pa) | attrs | D.BLOCK);
    return s;
  }
  set(slotPa: number, desc: bigint): void { poke64(this.m, slotPa, desc); }
}

/** TCR_EL1 for 48-bit VAs in both halves, 4K granules (TG1 = 0b10), 48-bit IPS, 16-bit ASIDs. */
export const TCR_48 = 16n | (16n << 16n) | (2n << 30n) | (5n << 32n) | (1n << 36n);
