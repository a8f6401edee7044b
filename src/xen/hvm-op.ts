/**
 * HYPERVISOR_hvm_op(op, arg) on Arm (xen/arch/arm/hvm.c; public/hvm/hvm_op.h, hvm/params.h): get_param of the
 * params the toolstack sets for a DomU; set_param is the toolstack's (a guest gets -EPERM on those, -EINVAL
 * on others, as hvm_allow_set_param).
 */
import { DOMID_SELF, EINVAL, ENOSYS, EPERM, ESRCH } from "./abi.js";
import type { GuestMemory } from "./guest-memory.js";
import { stateArray, stateInt, stateVersion } from "../common/state.js";

/** Saved HVM params: HVM_NR_PARAMS 64-bit values as (lo, hi) u32 pairs. */
export interface HvmParamsState {
  version: 1;
  values: number[];
}

export const HVMOP_set_param = 0, HVMOP_get_param = 1;
export const HVM_PARAM_CALLBACK_IRQ = 0, HVM_PARAM_STORE_PFN = 1, HVM_PARAM_STORE_EVTCHN = 2,
  HVM_PARAM_CONSOLE_PFN = 17, HVM_PARAM_CONSOLE_EVTCHN = 18;
export const HVM_NR_PARAMS = 39;
/** Params a guest may read (xen/arch/arm/hvm.c hvm_allow_get_param). */
const GUEST_READABLE = new Set([HVM_PARAM_CALLBACK_IRQ, HVM_PARAM_STORE_PFN, HVM_PARAM_STORE_EVTCHN,
  HVM_PARAM_CONSOLE_PFN, HVM_PARAM_CONSOLE_EVTCHN]);
/** HVM_PARAM_CALLBACK_IRQ as libxl sets it on Arm: type PPI (2) << 56 | flags level-low (2) << 8 | PPI 31. */
export const CALLBACK_IRQ_HI = 0x02000000, CALLBACK_IRQ_LO = 0x21f;

/** HVM params as 64-bit values (lo, hi pairs: ~0 "not yet" markers do not fit a double exactly). */
export class HvmParams {
  readonly v = new Uint32Array(HVM_NR_PARAMS * 2);
  set(index: number, lo: number, hi = 0): void { this.v[index * 2] = lo >>> 0; this.v[index * 2 + 1] = hi >>> 0; }
  /** Sets a param to a number below 2^53, or -1 for all-ones. */
  setNumber(index: number, x: number): void {
    if (x < 0) this.set(index, 0xffffffff, 0xffffffff); else this.set(index, x >>> 0, Math.floor(x / 4294967296));
  }
  save(): HvmParamsState { return { version: 1, values: Array.from(this.v) }; }
  /** Loads saved values (each a u32; StateError, nothing changed, otherwise). Their meaning (ports, frames)
   * is checked by the domain, which knows its ports and frames. */
  restore(state: HvmParamsState): void {
    const C = "hvm-params";
    const s = stateVersion(C, state, 1);
    const values = stateArray(C, "values", s.values, HVM_NR_PARAMS * 2).map((x, i) => stateInt(C, `values[${i}]`, x, 0, 0xffffffff));
    this.v.set(values);
  }
  lo(index: number): number { return this.v[index * 2]; }
  hi(index: number): number { return this.v[index * 2 + 1]; }
}

export function hvmOp(mem: GuestMemory, params: HvmParams, domid: number, op: number, lo: number, hi: number): number {
  if (op !== HVMOP_get_param && op !== HVMOP_set_param) return -ENOSYS;
  // struct xen_hvm_param: domid u16 @0, pad @2, index u32 @4, value u64 @8.
  mem.copyIn(lo, hi, 16);
  const dv = mem.sv;
  const dom = dv.getUint16(0, true), index = dv.getUint32(4, true);
  if (index >= HVM_NR_PARAMS) return -EINVAL;
  if (dom !== DOMID_SELF && dom !== domid) return -ESRCH;
  if (op === HVMOP_set_param) return GUEST_READABLE.has(index) ? -EPERM : -EINVAL;
  if (!GUEST_READABLE.has(index)) return -EINVAL;
  dv.setUint32(8, params.lo(index), true);
  dv.setUint32(12, params.hi(index), true);
  mem.copyOut(lo, hi, 16);
  return 0;
}
