/**
 * HYPERVISOR_sched_op(cmd, arg) (xen/common/sched/core.c do_sched_op; public/sched.h).
 */
import { EINVAL, ENOSYS, EPERM } from "./abi.js";
import type { GuestMemory } from "./guest-memory.js";
import type { SharedInfo } from "./shared-info.js";
import { NR_EVTCHN_2L } from "./event-channel.js";

export const SCHEDOP_yield = 0, SCHEDOP_block = 1, SCHEDOP_shutdown = 2, SCHEDOP_poll = 3,
  SCHEDOP_remote_shutdown = 4, SCHEDOP_shutdown_code = 5, SCHEDOP_watchdog = 6;
export const SHUTDOWN_poweroff = 0, SHUTDOWN_reboot = 1, SHUTDOWN_suspend = 2, SHUTDOWN_crash = 3,
  SHUTDOWN_watchdog = 4, SHUTDOWN_soft_reset = 5;
/** Most ports SCHEDOP_poll accepts (sched.h: "nr_ports ... at most 128"). */
const MAX_POLL_PORTS = 128;

/** What sched_op needs from the scheduler: stop the domain, or park the calling vCPU until an interrupt. */
export interface SchedHost {
  shutdown(reason: number): void;
  /** The calling vCPU sleeps until its IRQ line is asserted (the event upcall PPI or any other interrupt). */
  block(vcpu: number): void;
  yield(vcpu: number): void;
  /**
   * SHUTDOWN_suspend from vCPU `vcpu` (Linux's do_suspend, drivers/xen/manage.c, after the toolstack wrote
   * control/shutdown = "suspend"): returns the hypercall's result — 0 when the host takes the suspend (it
   * stops the domain here and saves it: "resumed in a new domain" is 0 in the saved x0), 1 "cancelled"
   * (public/sched.h: the domain goes on as it was; what the guest gets when no suspend was asked). Absent: 1.
   */
  suspend?(vcpu: number): number;
}

export function schedOp(mem: GuestMemory, si: SharedInfo, host: SchedHost, vcpu: number, cmd: number, lo: number,
  hi: number): number {
  switch (cmd) {
    case SCHEDOP_yield: host.yield(vcpu); return 0;
    case SCHEDOP_block:
      // vcpu_block_enable_events: sleep unless an upcall is already pending (Arm has no upcall mask).
      if (!si.upcallPending(vcpu)) host.block(vcpu);
      return 0;
    case SCHEDOP_shutdown: {
      mem.copyIn(lo, hi, 4);
      const reason = mem.sv.getUint32(0, true);
      if (reason > SHUTDOWN_soft_reset) return -EINVAL;
      // The toolstack's suspend (src/hv/machine.ts), or "cancelled" (1), which Linux handles as a checkpoint.
      if (reason === SHUTDOWN_suspend) return host.suspend?.(vcpu) ?? 1;
      host.shutdown(reason);
      return 0;
    }
    case SCHEDOP_poll: {
      // struct sched_poll: ports handle @0 (VA of evtchn_port_t[]), nr_ports u32 @8, timeout u64 @16.
      mem.copyIn(lo, hi, 24);
      const plo = mem.sv.getUint32(0, true), phi = mem.sv.getUint32(4, true), n = mem.sv.getUint32(8, true);
      if (n > MAX_POLL_PORTS) return -EINVAL;
      const ports = new Uint8Array(n * 4);
      if (n > 0) mem.copyIn(plo, phi, n * 4, ports);
      const pv = new DataView(ports.buffer);
      for (let i = 0; i < n; i++) {
        const p = pv.getUint32(i * 4, true);
        if (p >= NR_EVTCHN_2L) return -EINVAL;
        if (si.isPending(p)) return 0;
      }
      // Timeouts are not tracked: the vCPU sleeps until any interrupt (its timer bounds the wait).
      host.block(vcpu);
      return 0;
    }
    case SCHEDOP_shutdown_code: mem.copyIn(lo, hi, 4); return 0;
    case SCHEDOP_remote_shutdown: return -EPERM;
    default: return -ENOSYS;
  }
}
