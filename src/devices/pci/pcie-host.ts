/**
 * A generic PCIe host bridge with an ECAM configuration window (PCIe Base 4.0 section 7.2.2; Linux
 * Documentation/devicetree/bindings/pci/host-generic-pci.yaml, "pci-host-ecam-generic"), laid out as QEMU's virt
 * board lays out its gpex bridge (hw/arm/virt.c: VIRT_PCIE_ECAM, VIRT_PCIE_MMIO, VIRT_PCIE_PIO, and
 * create_pcie_irq_map), so firmware built for that board (AAVMF's FdtPciHostBridgeLib) and Linux's
 * pci-host-generic driver find it from the device tree:
 *
 *   0x1000_0000 .. 0x3eff_0000  32-bit MMIO window: the BARs the firmware assigns (PCI address = CPU address)
 *   0x3eff_0000 .. 0x3f00_0000  I/O window (64 KiB; no function here has I/O BARs: reads as ones)
 *   0x3f00_0000 .. 0x4000_0000  ECAM: 16 MiB, buses 0..15, 1 MiB per bus, 4 KiB per function
 *
 * Bus 0 only, function 0 of each slot only: slot 0 is the host bridge itself, devices take slots 1..31.
 * Config reads of absent functions return all ones (the "no device" answer); writes to them are dropped.
 *
 * Legacy INTx: four level-sensitive SPIs (QEMU's PCIE irq base, SPIs 3..6), with the standard swizzle
 * (INTA of slot s on line (s + 0) % 4, INTB on (s + 1) % 4, …), written into the device tree's interrupt-map.
 * A line is the OR of the functions routed to it. MSI/MSI-X are not offered (no GICv2m frame, no capability).
 *
 * Hot path (a virtio notify write): the BAR decode is a short array scan rebuilt only when a BAR or a command
 * register changes; nothing is allocated per access.
 */
import { R } from "../../common/int64.js";
import type { IrqLine, MmioDevice } from "../mmio.js";
import { cells64, DT_GIC_SPI, DT_IRQ_LEVEL_HIGH, reg64, type DtNode } from "../dt.js";
import { PCI_BARS, PCI_COMMAND_MEMORY, PCI_INTERRUPT_PIN, PciHostBridgeFunction, type PciFunction } from "./pci-function.js";

/** QEMU virt's windows (hw/arm/virt.c base_memmap). */
export const PCIE_MMIO_BASE = 0x10000000, PCIE_MMIO_SIZE = 0x2eff0000;
export const PCIE_PIO_BASE = 0x3eff0000, PCIE_PIO_SIZE = 0x00010000;
export const PCIE_ECAM_BASE = 0x3f000000, PCIE_ECAM_SIZE = 0x01000000;
/** Buses the ECAM window covers (1 MiB each). */
export const PCIE_BUSES = PCIE_ECAM_SIZE >>> 20;
/** The INTx lines: GIC interrupt IDs 35..38 (SPIs 3..6, QEMU's irqmap[VIRT_PCIE]). */
export const PCIE_INTX_INTID_BASE = 32 + 3;
export const PCI_SLOTS = 32;

export class PcieHost {
  private readonly slots: (PciFunction | null)[] = new Array<PciFunction | null>(PCI_SLOTS).fill(null);
  /** Decoded BARs: [base, end) → slots[slot], bar. Rebuilt on remap. */
  private decBase: number[] = [];
  private decEnd: number[] = [];
  private decFn: PciFunction[] = [];
  private decBar: number[] = [];
  private readonly lineLevel = [false, false, false, false];
  /** Counters for tests and diagnostics: config accesses to absent functions, MMIO that decoded to no BAR. */
  readonly stats = { absentConfig: 0, unclaimedMmio: 0 };

  /** The ECAM window, the 32-bit MMIO window and the I/O window as MMIO devices, to map at their bases. */
  readonly ecam: MmioDevice;
  readonly mmio: MmioDevice;
  readonly pio: MmioDevice;

  constructor(private readonly intx: readonly IrqLine[]) {
    if (intx.length !== 4) throw new RangeError("a PCIe host bridge has four INTx lines");
    this.plug(0, new PciHostBridgeFunction());
    this.ecam = {
      size: PCIE_ECAM_SIZE,
      read: (off, size) => this.configAccess(off, size, false, 0),
      write: (off, size, value) => { this.configAccess(off, size, true, value); },
    };
    this.mmio = {
      size: PCIE_MMIO_SIZE,
      supports64: true,
      read: (off, size) => this.mmioRead(PCIE_MMIO_BASE + off, size),
      write: (off, size, value, hi) => this.mmioWrite(PCIE_MMIO_BASE + off, size, value, hi),
    };
    this.pio = {
      size: PCIE_PIO_SIZE,
      read: (_off, size) => (size >= 4 ? -1 : (1 << (8 * size)) - 1), // no I/O BARs: the bus floats high
      write: () => {},
    };
  }

  /** Puts `fn` at bus 0, slot `slot` (1..31), function 0. */
  plug(slot: number, fn: PciFunction): void {
    if (!(Number.isInteger(slot) && slot >= 0 && slot < PCI_SLOTS) || this.slots[slot] !== null) {
      throw new RangeError(`PCI slot ${slot} is taken or out of range`);
    }
    this.slots[slot] = fn;
    fn.onRemap = () => this.remap();
    fn.onIntx = () => this.updateLine(this.lineOf(slot, fn));
  }

  /** The first free slot (for the next device), or -1. */
  freeSlot(): number { return this.slots.indexOf(null); }

  /** The INTx line (0..3) slot `slot`'s pin reaches, or -1 without a pin (the swizzle of PCI-to-PCI bridges, 9.1 of the bridge spec). */
  private lineOf(slot: number, fn: PciFunction): number {
    const pin = fn.config[PCI_INTERRUPT_PIN]!;
    return pin === 0 ? -1 : (slot + pin - 1) % 4;
  }

  private updateLine(line: number): void {
    if (line < 0) return;
    let level = false;
    for (let s = 0; s < PCI_SLOTS; s++) {
      const f = this.slots[s];
      if (f !== null && f !== undefined && this.lineOf(s, f) === line && f.intxOut) { level = true; break; }
    }
    if (level !== this.lineLevel[line]) { this.lineLevel[line] = level; this.intx[line]!.set(level); }
  }

  /** ECAM: offset = bus << 20 | device << 15 | function << 12 | register (PCIe 4.0 table 7-1). */
  private configAccess(off: number, size: number, write: boolean, value: number): number {
    const bus = off >>> 20, slot = (off >>> 15) & 31, func = (off >>> 12) & 7, reg = off & 0xfff;
    const fn = bus === 0 && func === 0 ? this.slots[slot] : null;
    if (fn === null || fn === undefined || (reg & (size - 1)) !== 0) {
      // Absent function (or a misaligned access, which ECAM does not define): all ones, writes dropped.
      this.stats.absentConfig++;
      return write ? 0 : size >= 4 ? -1 : (1 << (8 * size)) - 1;
    }
    if (write) { fn.writeConfig(reg, size, value); return 0; }
    return fn.readConfig(reg, size) | 0;
  }

  /** Rebuilds the BAR decode from every function's BARs and Memory Space Enable. */
  private remap(): void {
    const base: number[] = [], end: number[] = [], fns: PciFunction[] = [], bars: number[] = [];
    for (const f of this.slots) {
      if (f === null || (f.command & PCI_COMMAND_MEMORY) === 0) continue;
      for (let b = 0; b < PCI_BARS; b++) {
        const size = f.barSize[b]!;
        if (size === 0) continue;
        const at = f.barAddress(b);
        // A BAR outside the window (not yet placed: 0, or being sized: all ones) decodes nothing.
        if (at < PCIE_MMIO_BASE || at + size > PCIE_MMIO_BASE + PCIE_MMIO_SIZE) continue;
        base.push(at); end.push(at + size); fns.push(f); bars.push(b);
      }
    }
    this.decBase = base; this.decEnd = end; this.decFn = fns; this.decBar = bars;
  }

  private find(pa: number): number {
    const b = this.decBase;
    for (let i = 0; i < b.length; i++) if (pa >= b[i]! && pa < this.decEnd[i]!) return i;
    return -1;
  }

  private mmioRead(pa: number, size: number): number {
    const i = this.find(pa);
    if (i < 0) { this.stats.unclaimedMmio++; if (size === 8) R[0] = -1; return -1; } // master abort: all ones
    return this.decFn[i]!.barRead(this.decBar[i]!, pa - this.decBase[i]!, size);
  }

  private mmioWrite(pa: number, size: number, value: number, hi: number): void {
    const i = this.find(pa);
    if (i < 0) { this.stats.unclaimedMmio++; return; }
    this.decFn[i]!.barWrite(this.decBar[i]!, pa - this.decBase[i]!, size, value, hi);
  }
}

/**
 * The bridge's device-tree node (host-generic-pci.yaml, pci-bus.yaml; as QEMU's create_pcie): the ECAM window,
 * bus range, the I/O and 32-bit memory ranges (3 address cells: space code, then the PCI address; 2 CPU
 * address cells; 2 size cells), and the INTx interrupt-map for slots 0..3 with mask 0x1800 (the slot number's
 * low two bits) and the pin, the GIC's unit address taking no cells (it has no #address-cells).
 */
export function pcieHostDtNode(gicPhandle: number): DtNode {
  const ranges = [
    0x01000000, 0, 0, ...cells64(PCIE_PIO_BASE), ...cells64(PCIE_PIO_SIZE), // I/O space at PCI address 0
    0x02000000, ...cells64(PCIE_MMIO_BASE), ...cells64(PCIE_MMIO_BASE), ...cells64(PCIE_MMIO_SIZE), // 32-bit memory
  ];
  const map: number[] = [];
  for (let slot = 0; slot < 4; slot++) {
    for (let pin = 1; pin <= 4; pin++) {
      const intid = PCIE_INTX_INTID_BASE + ((slot + pin - 1) % 4);
      map.push(slot << 11, 0, 0, pin, gicPhandle, DT_GIC_SPI, intid - 32, DT_IRQ_LEVEL_HIGH);
    }
  }
  return {
    name: `pcie@${PCIE_ECAM_BASE.toString(16)}`,
    props: {
      compatible: "pci-host-ecam-generic",
      device_type: "pci",
      reg: reg64(PCIE_ECAM_BASE, PCIE_ECAM_SIZE),
      "bus-range": [0, PCIE_BUSES - 1],
      "linux,pci-domain": [0],
      "#address-cells": [3],
      "#size-cells": [2],
      "#interrupt-cells": [1],
      ranges,
      "interrupt-map-mask": [0x1800, 0, 0, 7],
      "interrupt-map": map,
      "dma-coherent": true,
    },
  };
}
