/**
 * HYPERVISOR_vcpu_op(cmd, vcpuid, arg) as Xen on Arm accepts it (xen/arch/arm/domain.c do_vcpu_op): only
 * register_vcpu_info (10) and register_runstate_memory_area (5); every other cmd is -EINVAL, a bad vcpuid
 * -ENOENT. (Linux on Arm brings CPUs up with PSCI, not VCPUOP_up.)
 */
import { EINVAL, ENOENT } from "./abi.js";
import { u64, type GuestMemory } from "./guest-memory.js";
import type { SharedInfo } from "./shared-info.js";
import { StateError, stateArray, stateInt, stateNumber, stateVersion } from "../common/state.js";

/** Saved runstate registrations: per vCPU the guest VA (lo, hi u32 halves; lo -1 = none), and the start time. */
export interface RunstateState {
  version: 1;
  lo: number[];
  hi: number[];
  /** Domain start on the virtual-counter clock (ns): runstate time[RUNNING] counts from it. */
  startNs: number;
}

export const VCPUOP_initialise = 0, VCPUOP_up = 1, VCPUOP_down = 2, VCPUOP_is_up = 3,
  VCPUOP_get_runstate_info = 4, VCPUOP_register_runstate_memory_area = 5, VCPUOP_register_vcpu_info = 10;
/** struct vcpu_runstate_info (48 bytes): state i32 @0, state_entry_time u64 @8, time[4] u64 @16. */
export const RUNSTATE_SIZE = 48, RUNSTATE_running = 0;

/** Per-vCPU runstate areas (guest VAs; -1 = none) and the clock that fills them. */
export class Runstate {
  readonly lo: number[];
  readonly hi: number[];
  constructor(vcpus: number, private readonly nowNs: () => number, private startNs: number) {
    this.lo = new Array<number>(vcpus).fill(-1);
    this.hi = new Array<number>(vcpus).fill(0);
  }

  save(): RunstateState {
    return { version: 1, lo: this.lo.slice(), hi: this.hi.slice(), startNs: this.startNs };
  }

  /**
   * Loads saved registrations (StateError, nothing changed, on a bad one). The areas are guest *virtual*
   * addresses, translated at each update through the vCPU's page tables as Xen does, so only their form is
   * checked here (u32 halves, or none).
   */
  restore(state: RunstateState): void {
    const C = "runstate";
    const s = stateVersion(C, state, 1);
    const n = this.lo.length;
    const lo = stateArray(C, "lo", s.lo, n).map((x, v) => stateInt(C, `lo[${v}]`, x, -1, 0xffffffff));
    const hi = stateArray(C, "hi", s.hi, n).map((x, v) => stateInt(C, `hi[${v}]`, x, 0, 0xffffffff));
    for (let v = 0; v < n; v++) if (lo[v] < 0 && hi[v] !== 0) throw new StateError(C, `hi[${v}]`, "set without an area");
    const startNs = stateNumber(C, "startNs", s.startNs, 0, Number.MAX_SAFE_INTEGER);
    for (let v = 0; v < n; v++) { this.lo[v] = lo[v]; this.hi[v] = hi[v]; }
    this.startNs = startNs;
  }

  /** Writes vCPU v's runstate (always "running" since creation: no steal time) at its registered VA. */
  update(mem: GuestMemory, v: number): void {
    if (this.lo[v] < 0) return;
    const dv = mem.sv, now = this.nowNs();
    mem.scratch.fill(0, 0, RUNSTATE_SIZE);
    dv.setInt32(0, RUNSTATE_running, true);
    dv.setBigUint64(8, BigInt(Math.floor(now)), true);
    dv.setBigUint64(16, BigInt(Math.max(0, Math.floor(now - this.startNs))), true);
    mem.copyOut(this.lo[v], this.hi[v], RUNSTATE_SIZE);
  }
}

export function vcpuOp(mem: GuestMemory, si: SharedInfo, rs: Runstate, cmd: number, vcpuid: number, lo: number,
  hi: number): number {
  if (vcpuid < 0 || vcpuid >= si.vcpus) return -ENOENT;
  switch (cmd) {
    case VCPUOP_register_vcpu_info: {
      // struct vcpu_register_vcpu_info: mfn u64 @0 (a gfn), offset u32 @8, rsvd u32 @12.
      mem.copyIn(lo, hi, 16);
      const gfn = u64(mem.sv, 0), offset = mem.sv.getUint32(8, true);
      return si.registerVcpuInfo(vcpuid, gfn, offset);
    }
    case VCPUOP_register_runstate_memory_area: {
      // The argument is a guest VA (union { XEN_GUEST_HANDLE(vcpu_runstate_info) h; uint64_t p; }). Xen copies
      // the runstate there at once; a VA that does not translate is refused here (-EFAULT from copyOut).
      mem.copyIn(lo, hi, 8);
      const alo = mem.sv.getUint32(0, true), ahi = mem.sv.getUint32(4, true);
      const plo = rs.lo[vcpuid], phi = rs.hi[vcpuid];
      rs.lo[vcpuid] = alo; rs.hi[vcpuid] = ahi;
      try { rs.update(mem, vcpuid); } catch (e) { rs.lo[vcpuid] = plo; rs.hi[vcpuid] = phi; throw e; }
      return 0;
    }
    default: return -EINVAL;
  }
}
