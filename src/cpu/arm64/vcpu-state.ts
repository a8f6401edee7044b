/**
 * A vCPU's saved state (src/common/state.ts conventions): the general-purpose file, the vector file, PSTATE
 * with the exclusive monitor, and the system registers keyed by their architectural encoding. What derives
 * from it is rebuilt on restore: the MMU's EL and translation-regime copies (its TLB is flushed), the FP trap
 * flag. Interrupt lines are not saved: the GIC drives them again after its own restore. Exits in flight are
 * not state: save happens between runs, when run() has returned and its exit has been handled.
 */
import { StateError, stateBytes, stateInt, stateVersion } from "../../common/state.js";
import type { Cpu } from "./cpu.js";
import { PC2, R_SLOTS, PS_DAIF, PS_EL, PS_EVENT, PS_EXCL_HI, PS_EXCL_LO, PS_EXCL_OFF, PS_EXCL_SIZE, PS_FPCR, PS_FPSR,
  PS_IL, PS_NZCV, PS_SPSEL } from "./state.js";
import { SCTLR_EL1, SYSREG_SLOTS, TCR_EL1, TTBR0_EL1, TTBR1_EL1, sysregKey } from "./sysregs.js";

export interface VcpuState {
  version: 1;
  /** X0..X30, XZR (0), SP (live), PC, SP_EL0, SP_EL1 as lo, hi pairs (state.ts). */
  r: Int32Array;
  /** V0..V31, 16 bytes each, little-endian. */
  v: Uint8Array;
  nzcv: number;
  daif: number;
  el: number;
  spsel: number;
  fpcr: number;
  fpsr: number;
  /** The exclusive monitor: null when open, else the reserved RAM offset, size and the loaded value. */
  exclusive: { off: number; size: number; lo: number; hi: number } | null;
  event: number;
  il: number;
  /** System registers by encoding key (sysregKey: "S3_0_C1_C0_0" is SCTLR_EL1): [lo, hi]. */
  sysregs: Record<string, [number, number]>;
}

const C = "vcpu";
const KEYS = new Map(SYSREG_SLOTS.map(([, slot, op0, op1, crn, crm, op2]) => [sysregKey(op0, op1, crn, crm, op2), slot]));

/** The vCPU's state now (call between runs). */
export function saveVcpu(c: Cpu): VcpuState {
  c.storePstate();
  const sysregs: Record<string, [number, number]> = {};
  for (const [key, slot] of KEYS) sysregs[key] = [c.sys[slot]!, c.sys[slot + 1]!];
  return {
    version: 1,
    r: c.r.slice(),
    v: c.vu8.slice(),
    nzcv: c.nzcv, daif: c.daif, el: c.el, spsel: c.spsel, fpcr: c.fpcr, fpsr: c.fpsr,
    exclusive: c.exclOff < 0 ? null : { off: c.exclOff, size: c.exclSize, lo: c.exclLo, hi: c.exclHi },
    event: c.event, il: c.il,
    sysregs,
  };
}

const i32 = (field: string, v: unknown): number => stateInt(C, field, v, -0x80000000, 0x7fffffff);

/**
 * Loads `state` into `c` (a vCPU of a domain with `ramBytes` of RAM). Everything is checked before anything
 * changes: a refused state (StateError) leaves `c` as it was. Registers absent from `state.sysregs` keep their
 * reset values (a state saved before a register existed); unknown ones are refused.
 */
export function restoreVcpu(c: Cpu, state: unknown, ramBytes: number): void {
  const s = stateVersion(C, state, 1) as unknown as VcpuState;
  if (!(s.r instanceof Int32Array) || s.r.length !== R_SLOTS) throw new StateError(C, "r", `not an Int32Array of ${R_SLOTS}`);
  if (s.r[62] !== 0 || s.r[63] !== 0) throw new StateError(C, "r[31]", "XZR must read zero");
  if ((s.r[PC2]! & 3) !== 0) throw new StateError(C, "r.pc", "PC is not 4-byte aligned");
  stateBytes(C, "v", s.v, 512);
  const nzcv = stateInt(C, "nzcv", s.nzcv, 0, 15), daif = stateInt(C, "daif", s.daif, 0, 15);
  const el = stateInt(C, "el", s.el, 0, 1), spsel = stateInt(C, "spsel", s.spsel, 0, 1);
  const fpcr = i32("fpcr", s.fpcr), fpsr = i32("fpsr", s.fpsr);
  const event = stateInt(C, "event", s.event, 0, 1), il = stateInt(C, "il", s.il, 0, 1);
  let ex = { off: -1, size: 0, lo: 0, hi: 0 };
  if (s.exclusive !== null) {
    const e = s.exclusive;
    if (e === undefined || typeof e !== "object") throw new StateError(C, "exclusive", "not null or an object");
    const size = stateInt(C, "exclusive.size", e.size, 1, 16);
    if ((size & (size - 1)) !== 0) throw new StateError(C, "exclusive.size", `${size} is not 1, 2, 4, 8 or 16`);
    ex = { off: stateInt(C, "exclusive.off", e.off, 0, ramBytes - size), size, lo: i32("exclusive.lo", e.lo), hi: i32("exclusive.hi", e.hi) };
  }
  if (s.sysregs === null || typeof s.sysregs !== "object") throw new StateError(C, "sysregs", "not an object");
  const regs: [number, number, number][] = [];
  for (const [key, val] of Object.entries(s.sysregs)) {
    const slot = KEYS.get(key);
    if (slot === undefined) throw new StateError(C, `sysregs.${key}`, "not a system register this vCPU has");
    if (!Array.isArray(val) || val.length !== 2) throw new StateError(C, `sysregs.${key}`, "not a [lo, hi] pair");
    regs.push([slot, i32(`sysregs.${key}[0]`, val[0]), i32(`sysregs.${key}[1]`, val[1])]);
  }
  // All checked: write the block, then rebuild what derives from it.
  c.r.set(s.r);
  c.vu8.set(s.v);
  for (const [slot, lo, hi] of regs) { c.sys[slot] = lo; c.sys[slot + 1] = hi; }
  const p = c.ps;
  p[PS_NZCV] = nzcv; p[PS_DAIF] = daif; p[PS_EL] = el; p[PS_SPSEL] = spsel; p[PS_FPCR] = fpcr; p[PS_FPSR] = fpsr;
  p[PS_EXCL_OFF] = ex.off; p[PS_EXCL_SIZE] = ex.size; p[PS_EXCL_LO] = ex.lo; p[PS_EXCL_HI] = ex.hi;
  p[PS_EVENT] = event; p[PS_IL] = il;
  reloadFromBlock(c);
}

/**
 * Makes Cpu `c` and its MMU follow its state block after someone else wrote it (a restore; the vCPU's other
 * thread, src/machine/remote-vcpu.ts): PSTATE fields, the MMU's translation registers, an empty TLB.
 */
export function reloadFromBlock(c: Cpu): void {
  c.loadPstate();
  const m = c.mmu, sys = c.sys;
  m.sctlr = sys[SCTLR_EL1]!;
  m.tcrLo = sys[TCR_EL1]!; m.tcrHi = sys[TCR_EL1 + 1]!;
  m.ttbr0Lo = sys[TTBR0_EL1]!; m.ttbr0Hi = sys[TTBR0_EL1 + 1]!;
  m.ttbr1Lo = sys[TTBR1_EL1]!; m.ttbr1Hi = sys[TTBR1_EL1 + 1]!;
  m.regimeChanged(true);
  c.jumped = 0;
}
