/**
 * The event-channel upcall as a level-sensitive PPI (INTID 31) per vCPU whose level is vcpu_info's
 * evtchn_upcall_pending — the model of Xen's new vGIC (vcpu_update_evtchn_irq) and what ARM-DOMU-ABI.md 4.6
 * recommends. The hypervisor raises the line when it sets the flag; the guest clears the flag in memory
 * without trapping, so the line is re-sampled when the guest ends the interrupt: the wrapper below watches
 * the vCPU's GIC CPU interface for an EOI/deactivation of INTID 31 and lowers the line first if the flag is
 * clear (otherwise a level interrupt would fire again at once, for nothing, until the next resample).
 */
import type { MmioDevice } from "../devices/mmio.js";
import { GUEST_EVTCHN_PPI } from "./abi.js";

/** GICv2 CPU interface registers that end an interrupt (GIC architecture spec v2, 4.4.5, 4.4.10, 4.4.15). */
const GICC_EOIR = 0x10, GICC_AEOIR = 0x24, GICC_DIR = 0x1000;

/** Wraps a GICC window so writes ending INTID 31 call `resample` before the GIC sees them. */
export function withUpcallResample(gicc: MmioDevice, resample: () => void): MmioDevice {
  return {
    size: gicc.size,
    supports64: gicc.supports64,
    read: (offset, size) => gicc.read(offset, size),
    write: (offset, size, value, hi) => {
      if ((offset === GICC_EOIR || offset === GICC_AEOIR || offset === GICC_DIR) && (value & 0x3ff) === GUEST_EVTCHN_PPI) resample();
      gicc.write(offset, size, value, hi);
    },
  };
}
