/**
 * System instructions (Arm ARM C5.3 "A64 System instructions for cache maintenance, address translation and
 * TLB maintenance"): DC, IC, TLBI and AT via the SYS encoding, plus MSR (immediate) for PSTATE fields (C5.2,
 * C6.2.229) and ERET (C6.2.98).
 *
 * SYS encoding: 1101010100 0 01 op1 CRn CRm op2 Rt. Each operation is its own decoder pattern; unallocated
 * encodings stay UNDEFINED. Operations that are EL1-only are UNDEFINED at EL0; the ones SCTLR_EL1 can open
 * to EL0 (DC ZVA with DZE; DC CVAC/CVAU/CIVAC and IC IVAU with UCI) trap with EC 0x18 when closed.
 *
 * Caches are not modelled (guest memory is coherent), so data-cache maintenance is a no-op that neither
 * translates nor faults: the Arm ARM allows maintenance by VA to fault on translation but not required for
 * correctness of software that only cleans/invalidates valid mappings. Instruction-cache maintenance drops
 * decoded instructions; TLB maintenance drops software-TLB entries.
 */
import type { Decoder } from "./decoder.js";
import type { Cpu } from "./cpu.js";
import { EC_SYSREG } from "./cpu.js";
import { sysregIss } from "./system.js";
import { endBlock, SCTLR_DZE, SCTLR_UCI, SCTLR_UMA } from "./sys-defs.js";
import { MAIR_EL1, PAR_EL1, SCTLR_EL1 } from "./sysregs.js";
import { ACC_READ, ACC_WRITE } from "../../mmu/mmu.js";

const TWO32 = 4294967296;

/** DC ZVA block size: DCZID_EL0.BS = 4 (16 words). */
const ZVA_BYTES = 64;

function sysPattern(op1: number, crn: number, crm: number, op2: number): string {
  const b = (v: number, n: number): string => v.toString(2).padStart(n, "0");
  return "1101010100 0 01 " + b(op1, 3) + b(crn, 4) + b(crm, 4) + b(op2, 3) + " xxxxx";
}

/** EL0 permission check for an operation SCTLR_EL1 can enable: false after raising the EC 0x18 trap. */
function el0Enabled(c: Cpu, i: number, sctlrBit: number): boolean {
  if (c.el !== 0 || (c.sys[SCTLR_EL1] & sctlrBit) !== 0) return true;
  c.syncException(EC_SYSREG, sysregIss(i), 0);
  return false;
}

// ---------------------------------------------------------------------------------------------------------------
// Data cache

/** DC ZVA: zero the 64-byte block holding Xt, with write permission (faults are data aborts with WnR = 1). */
function dcZva(c: Cpu, i: number): void {
  if (!el0Enabled(c, i, SCTLR_DZE)) return;
  const t = (i & 31) << 1;
  c.mmu.zeroBlock(c.r[t], c.r[t + 1], ZVA_BYTES);
}

/** DC CVAC/CVAU/CIVAC (EL0 with SCTLR_EL1.UCI): no-op. */
function dcVaEl0(c: Cpu, i: number): void {
  el0Enabled(c, i, SCTLR_UCI);
}

/** DC IVAC/ISW/CSW/CISW: EL1 only; no-op. (DC IVAC may require write permission; not checked.) */
function dcEl1(c: Cpu, i: number): void {
  if (c.el === 0) c.undefinedInstruction(i);
}

// ---------------------------------------------------------------------------------------------------------------
// Instruction cache

/** IC IALLU / IC IALLUIS: drop every decoded instruction (IS: on every vCPU of the domain). */
function icIallu(c: Cpu, i: number): void {
  if (c.el === 0) { c.undefinedInstruction(i); return; }
  c.invalidateAllCode();
  if (((i >>> 8) & 15) === 1) c.broadcastExit(i, 0, 0);
}

/**
 * IC IVAU (EL0 with SCTLR_EL1.UCI): drop the decoded instructions of the RAM page holding VA Xt. Broadcast
 * to the Inner Shareable domain (IC IVAU affects all PEs to the PoU). A VA that does not translate is ignored.
 */
function icIvau(c: Cpu, i: number): void {
  if (!el0Enabled(c, i, SCTLR_UCI)) return;
  const t = (i & 31) << 1;
  const lo = c.r[t], hi = c.r[t + 1];
  invalidateVa(c, lo, hi);
  c.broadcastExit(i, lo, hi);
}

function invalidateVa(c: Cpu, lo: number, hi: number): void {
  const m = c.mmu;
  const pa = m.probe(lo, hi, ACC_READ, c.el === 0);
  if (pa < 0) return;
  const off = pa - m.ramBase;
  if (off >= 0 && off < m.ramSize) c.invalidateCodePage(Math.floor(off / 4096));
}

// ---------------------------------------------------------------------------------------------------------------
// TLB maintenance (C5.5; EL1 only): VMALLE1, VAE1, ASIDE1, VAAE1, VALE1, VAALE1 and their IS forms.
// Xt for the VA forms: ASID in bits 63:48, VA[55:12] in bits 43:0. Last-level (VAL) forms may over-invalidate.

/** Applies the TLBI `op2` with operand (xlo, xhi) to this vCPU's TLB. */
function tlbiLocal(c: Cpu, op2: number, xlo: number, xhi: number): void {
  const m = c.mmu;
  if (op2 === 0) { m.flushAll(); return; } // VMALLE1
  const asid = (xhi >>> 16) & m.asidMask;
  if (op2 === 2) { m.flushAsid(asid); return; } // ASIDE1
  // VA[55:12] = Xt[43:0]; the top byte is not compared by flushVa.
  const vlo = xlo << 12;
  const vhi = ((xhi << 12) | (xlo >>> 20)) & 0x00ffffff;
  m.flushVa(vlo, vhi, op2 === 3 || op2 === 7 ? -2 : asid); // VAAE1/VAALE1: any ASID
}

function tlbi(c: Cpu, i: number): void {
  if (c.el === 0) { c.undefinedInstruction(i); return; }
  const t = (i & 31) << 1;
  const xlo = c.r[t], xhi = c.r[t + 1];
  tlbiLocal(c, (i >>> 5) & 7, xlo, xhi);
  if (((i >>> 8) & 15) === 3) c.broadcastExit(i, xlo, xhi);
}

/**
 * Applies maintenance broadcast by another vCPU (its STOP_BROADCAST exit) to `c`: TLBI ...IS, IC IALLUIS, IC IVAU
 * (translated with c's own tables, which in a domain are shared) and SEV.
 */
export function applyBroadcast(c: Cpu, insn: number, xlo: number, xhi: number): void {
  if (insn === (0xd503209f | 0)) { c.event = 1; return; } // SEV
  const crn = (insn >>> 12) & 15, crm = (insn >>> 8) & 15;
  if (crn === 8) tlbiLocal(c, (insn >>> 5) & 7, xlo, xhi);
  else if (crn === 7 && crm === 1) c.invalidateAllCode();
  else if (crn === 7 && crm === 5) invalidateVa(c, xlo, xhi);
}

/**
 * Applies to `c` what any maintenance broadcasts could have asked, when which ones is no longer known (a vCPU
 * thread that fell too far behind, src/machine/vcpu-link.ts): every TLB entry (TLBI VMALLE1IS) and every decoded
 * instruction (IC IALLUIS) dropped, and the event register set (SEV; WFE may wake spuriously, Arm ARM D1.16.1).
 */
export function applyAllBroadcasts(c: Cpu): void {
  c.mmu.flushAll();
  c.invalidateAllCode();
  c.event = 1;
}

// ---------------------------------------------------------------------------------------------------------------
// Address translation: AT S1E1R, S1E1W, S1E0R, S1E0W (C5.5.x; EL1 only) -> PAR_EL1 (D17.2.99).

function at(c: Cpu, i: number): void {
  if (c.el === 0) { c.undefinedInstruction(i); return; }
  const op2 = (i >>> 5) & 7;
  const t = (i & 31) << 1;
  const m = c.mmu;
  const pa = m.probe(c.r[t], c.r[t + 1], (op2 & 1) !== 0 ? ACC_WRITE : ACC_READ, op2 >= 2);
  const s = c.sys;
  if (pa < 0) {
    // F = 1, FST = fault status, PTW (8) and S (9) for a stage-2 fault on the walk; bit 11 RES1.
    const s2 = m.faultStage2 !== 0;
    s[PAR_EL1] = 1 | ((s2 ? 0x04 : m.faultStatus) << 1) | (s2 ? 0x300 : 0) | 0x800;
    s[PAR_EL1 + 1] = 0;
    return;
  }
  // F = 0: PA[47:12], SH (8:7), NS (9) = 0, bit 11 RES1; ATTR (63:56) = MAIR_EL1.Attr<AttrIndx>
  // (Device-nGnRnE, 0x00, with the MMU off).
  const idx = m.walkAttrIdx;
  const attr = idx < 0 ? 0 : idx < 4 ? (s[MAIR_EL1] >>> (8 * idx)) & 0xff : (s[MAIR_EL1 + 1] >>> (8 * (idx - 4))) & 0xff;
  const phi = Math.floor(pa / TWO32);
  s[PAR_EL1] = ((pa - phi * TWO32) & -4096) | (m.walkSh << 7) | 0x800;
  s[PAR_EL1 + 1] = (phi & 0xffff) | (attr << 24);
}

// ---------------------------------------------------------------------------------------------------------------
// MSR (immediate): 1101010100 0 00 op1 0100 CRm op2 11111. ARMv8.0 defines SPSel, DAIFSet and DAIFClr; other
// PSTATE fields (PAN, UAO, ...) are UNDEFINED.

function msrSpSel(c: Cpu, i: number): void {
  if (c.el === 0) { c.undefinedInstruction(i); return; }
  c.setSpSel((i >>> 8) & 1);
  endBlock(c);
}

/** DAIFSet / DAIFClr: EL0 needs SCTLR_EL1.UMA (else EC 0x18). Ends the block so an unmasked IRQ is taken. */
function msrDaif(c: Cpu, i: number): void {
  if (!el0Enabled(c, i, SCTLR_UMA)) return;
  const bits = (i >>> 8) & 15;
  c.daif = (i & 0x20) !== 0 ? c.daif & ~bits : c.daif | bits; // op2 = 7 (bit 5 set): clear
  endBlock(c);
}

/** ERET (EL1 only; UNDEFINED at EL0). */
function eret(c: Cpu, i: number): void {
  if (c.el === 0) { c.undefinedInstruction(i); return; }
  c.eret();
}

export function register(d: Decoder): void {
  // DC (CRn = 7)
  d.def(sysPattern(3, 7, 4, 1), "DC ZVA", dcZva);
  d.def(sysPattern(3, 7, 10, 1), "DC CVAC", dcVaEl0);
  d.def(sysPattern(3, 7, 11, 1), "DC CVAU", dcVaEl0);
  d.def(sysPattern(3, 7, 14, 1), "DC CIVAC", dcVaEl0);
  d.def(sysPattern(0, 7, 6, 1), "DC IVAC", dcEl1);
  d.def(sysPattern(0, 7, 6, 2), "DC ISW", dcEl1);
  d.def(sysPattern(0, 7, 10, 2), "DC CSW", dcEl1);
  d.def(sysPattern(0, 7, 14, 2), "DC CISW", dcEl1);
  // IC
  d.def(sysPattern(0, 7, 1, 0), "IC IALLUIS", icIallu);
  d.def(sysPattern(0, 7, 5, 0), "IC IALLU", icIallu);
  d.def(sysPattern(3, 7, 5, 1), "IC IVAU", icIvau);
  // TLBI (CRn = 8, CRm = 3 Inner Shareable, 7 local)
  const tlbiNames = ["VMALLE1", "VAE1", "ASIDE1", "VAAE1", "", "VALE1", "", "VAALE1"];
  for (const crm of [3, 7]) {
    for (let op2 = 0; op2 < 8; op2++) {
      if (tlbiNames[op2] === "") continue;
      d.def(sysPattern(0, 8, crm, op2), "TLBI " + tlbiNames[op2] + (crm === 3 ? "IS" : ""), tlbi);
    }
  }
  // AT S1E1R, S1E1W, S1E0R, S1E0W
  for (let op2 = 0; op2 < 4; op2++) d.def(sysPattern(0, 7, 8, op2), "AT", at);
  // MSR (immediate)
  d.def("1101010100 0 00 000 0100 xxxx 101 11111", "MSR SPSel, #imm", msrSpSel);
  d.def("1101010100 0 00 011 0100 xxxx 110 11111", "MSR DAIFSet, #imm", msrDaif);
  d.def("1101010100 0 00 011 0100 xxxx 111 11111", "MSR DAIFClr, #imm", msrDaif);
  d.def("1101011 0100 11111 000000 11111 00000", "ERET", eret);
}
