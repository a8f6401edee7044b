/**
 * Where Xeno puts the hypervisor's guest-visible pages, and the `/hypervisor` device-tree node that tells the
 * guest (Linux Documentation/devicetree/bindings/arm/xen.txt; written by libxl_arm.c make_hypervisor_node and
 * xen/arch/arm/domain_build.c make_hypervisor_node).
 *
 * Real Xen puts the grant-table window at 0x3800_0000 and the magic pages at 0x3900_0000, below RAM
 * (arch-arm.h GUEST_GNTTAB_BASE, GUEST_MAGIC_BASE). Xeno's guest memory is one buffer starting at RAM_BASE,
 * and the MMU maps only that buffer as memory (atomics on MMIO are impossible). So the "Xen area" is carved
 * from the top of that buffer instead and left out of the DT memory node: the guest learns the grant window
 * from `/hypervisor` reg[0] and the magic pages from HVM params, exactly as the ABI says it must (it must not
 * rely on the arch-arm.h constants). Linux memremaps both (they are not System RAM).
 *
 *   top of buffer - XEN_AREA_BYTES:  grant frames 0..MAX_GRANT_FRAMES-1 (the window reg[0] describes)
 *   + MAGIC_OFFSET:                  console ring, XenStore ring, mem-access ring, vPL011 ring
 *                                    (xg_dom_arm.c alloc_magic_pages order)
 */
import type { DtNode } from "../devices/dt.js";
import { reg64, DT_GIC_PPI, DT_IRQ_LEVEL_LOW } from "../devices/dt.js";
import { GUEST_EVTCHN_PPI, XEN_MAJOR, XEN_MINOR, XEN_PAGE_SIZE } from "./abi.js";

/** Default max_grant_frames (xen/common/grant_table.c opt_max_grant_frames = 64 → 32768 v1 entries). */
export const MAX_GRANT_FRAMES = 64;
/** Bytes reserved at the top of the RAM buffer for the Xen area (outside the DT memory node). */
export const XEN_AREA_BYTES = 0x100000;
export const GNTTAB_OFFSET = 0;
export const GNTTAB_BYTES = MAX_GRANT_FRAMES * XEN_PAGE_SIZE;
export const MAGIC_OFFSET = 0x80000;
/** Magic page indexes (xg_dom_arm.c: CONSOLE_PFN_OFFSET 0, XENSTORE 1, MEMACCESS 2, VUART 3). */
export const MAGIC_CONSOLE = 0, MAGIC_XENSTORE = 1, MAGIC_MEMACCESS = 2, MAGIC_VUART = 3, NR_MAGIC_PAGES = 4;

/** Guest-physical layout of the Xen area for a RAM buffer of `bufferBytes` at `ramBase`. */
export interface XenAreaLayout {
  /** Bytes of ordinary RAM (the DT memory node): the buffer minus the Xen area. */
  ramBytes: number;
  /** Guest-physical base of the grant window (reg[0] of /hypervisor) and its size. */
  gnttabBase: number;
  gnttabBytes: number;
  /** Guest frame number of magic page 0 (console); store is +1. */
  magicGfn: number;
}

export function xenAreaLayout(ramBase: number, bufferBytes: number): XenAreaLayout {
  const area = bufferBytes - XEN_AREA_BYTES;
  return {
    ramBytes: area,
    gnttabBase: ramBase + area + GNTTAB_OFFSET,
    gnttabBytes: GNTTAB_BYTES,
    magicGfn: (ramBase + area + MAGIC_OFFSET) / XEN_PAGE_SIZE,
  };
}

/**
 * The `/hypervisor` node as Xen writes it for a guest: compatible "xen,xen-<major>.<minor>", "xen,xen";
 * reg[0] = grant-table window (no extended regions: Linux then logs "No extended regions are found" only if
 * CONFIG_XEN_UNPOPULATED_ALLOC, and falls back to ballooned pages); interrupts = the event-channel PPI,
 * level-low with CPU mask 0xf (libxl set_interrupt(GUEST_EVTCHN_PPI, 0xf, DT_IRQ_TYPE_LEVEL_LOW));
 * interrupt-parent = the GIC (libxl puts it at the root; being explicit does no harm).
 */
export function hypervisorDtNode(layout: XenAreaLayout, gicPhandle: number): DtNode {
  return {
    name: "hypervisor",
    props: {
      compatible: [`xen,xen-${XEN_MAJOR}.${XEN_MINOR}`, "xen,xen"],
      reg: reg64(layout.gnttabBase, layout.gnttabBytes),
      interrupts: [DT_GIC_PPI, GUEST_EVTCHN_PPI - 16, (0xf << 8) | DT_IRQ_LEVEL_LOW],
      "interrupt-parent": [gicPhandle],
    },
  };
}
