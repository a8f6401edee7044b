/**
 * The device tree Xeno hands the kernel (Linux Documentation/arch/arm64/booting.rst: x0 = its physical
 * address). Nodes follow the Linux bindings and mirror QEMU virt's tree for the same devices.
 */
import { node, prop, writeFdt, PhandleAllocator, type FdtNode } from "./fdt.js";
import type { DtNode, DtValue } from "../devices/dt.js";
import { gicv2DtNode } from "../devices/gic/gicv2.js";
import { pl011DtNodes } from "../devices/pl011/pl011.js";
import { pl031DtNode } from "../devices/pl031/pl031.js";
import { GICC_BASE, GICD_BASE, PPI_HYP_TIMER, PPI_PHYS_TIMER, PPI_SEC_PHYS_TIMER, PPI_VIRT_TIMER, RAM_BASE, RTC_BASE,
  RTC_INTID, UART_BASE, UART_INTID } from "./layout.js";

export interface BoardDtOptions {
  ramBytes: number;
  vcpus: number;
  bootargs: string;
  /** Physical range of the initial ramdisk, if any. */
  initrd?: { start: number; end: number };
  /** Further root-level nodes (e.g. Xen's /hypervisor), given the GIC's phandle. */
  extraNodes?: (gicPhandle: number) => DtNode[];
}

/** Converts a device's self-description into an FDT node. */
function fromDt(n: DtNode, children: FdtNode[] = []): FdtNode {
  const props: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(n.props)) props[k] = encode(v);
  return node(n.name, props, children);
}

function encode(v: DtValue): Uint8Array {
  if (v === true) return prop.empty();
  if (typeof v === "string") return prop.str(v);
  if (v.length > 0 && typeof v[0] === "string") return prop.strs(...(v as string[]));
  return prop.cells(...(v as number[]));
}

const u64 = (v: number): [number, number] => [Math.floor(v / 2 ** 32), v >>> 0];

export function boardDtb(o: BoardDtOptions): Uint8Array {
  const ph = new PhandleAllocator();
  const gicPh = ph.alloc(), clkPh = ph.alloc();
  const { clock, uart } = pl011DtNodes(UART_BASE, UART_INTID, clkPh);
  // Timer PPIs: type 1 (PPI), number relative to 16, flags = CPU mask (GICv2 binding) | level-high.
  const cpuMask = ((1 << Math.min(o.vcpus, 8)) - 1) << 8;
  const ppi = (intid: number): number[] => [1, intid - 16, cpuMask | 4];
  const chosen: Record<string, Uint8Array> = {
    bootargs: prop.str(o.bootargs),
    "stdout-path": prop.str(`/${uart.name}`),
  };
  if (o.initrd !== undefined) {
    chosen["linux,initrd-start"] = prop.u64(o.initrd.start);
    chosen["linux,initrd-end"] = prop.u64(o.initrd.end);
  }
  const cpus: FdtNode[] = [];
  for (let k = 0; k < o.vcpus; k++) {
    // reg = MPIDR affinity (Aff1 = k / 16, Aff0 = k % 16, as the CPU's MPIDR_EL1 reports).
    const mpidr = ((k >> 4) << 8) | (k & 15);
    cpus.push(node(`cpu@${mpidr.toString(16)}`, {
      device_type: prop.str("cpu"),
      compatible: prop.strs("arm,cortex-a53", "arm,armv8"),
      reg: prop.u32(mpidr),
      "enable-method": prop.str("psci"),
    }));
  }
  const root = node("", {
    compatible: prop.str("linux,dummy-virt"),
    model: prop.str("Xeno virtual machine"),
    "#address-cells": prop.u32(2),
    "#size-cells": prop.u32(2),
    "interrupt-parent": prop.phandle(gicPh),
  }, [
    node("chosen", chosen),
    node(`memory@${RAM_BASE.toString(16)}`, {
      device_type: prop.str("memory"),
      reg: prop.cells(...u64(RAM_BASE), ...u64(o.ramBytes)),
    }),
    node("cpus", { "#address-cells": prop.u32(1), "#size-cells": prop.u32(0) }, cpus),
    node("psci", {
      compatible: prop.strs("arm,psci-1.0", "arm,psci-0.2"),
      method: prop.str("hvc"),
    }),
    node("timer", {
      compatible: prop.strs("arm,armv8-timer"),
      interrupts: prop.cells(...ppi(PPI_SEC_PHYS_TIMER), ...ppi(PPI_PHYS_TIMER), ...ppi(PPI_VIRT_TIMER), ...ppi(PPI_HYP_TIMER)),
      "always-on": prop.empty(),
    }),
    fromDt(gicv2DtNode(GICD_BASE, GICC_BASE, gicPh)),
    fromDt(clock),
    fromDt(uart),
    fromDt(pl031DtNode(RTC_BASE, RTC_INTID, clkPh)),
    ...(o.extraNodes?.(gicPh) ?? []).map((n) => fromDt(n)),
  ]);
  return writeFdt(root);
}
