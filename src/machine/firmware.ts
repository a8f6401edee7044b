/**
 * Firmware boot on QEMU virt's memory map (hw/arm/virt.c), what a `type = "hvm"` domain runs: UEFI firmware
 * (Debian's AAVMF, EDK2's ArmVirtQemu) executing in place from flash at guest-physical 0, which finds the
 * board in the device tree QEMU places at the start of RAM and its settings in fw_cfg.
 *
 *   0x0000_0000  flash bank 0, 64 MiB: the firmware code (read-only)
 *   0x0400_0000  flash bank 1, 64 MiB: the domain's variable store (a copy of AAVMF_VARS.fd; written back)
 *   0x0800_0000  GICv2 (distributor, CPU interface)      0x0900_0000  PL011 (the serial console)
 *   0x0901_0000  PL031                                   0x0902_0000  fw_cfg (with DMA)
 *   0x1000_0000  PCIe: 32-bit MMIO window, I/O window (0x3eff_0000), ECAM (0x3f00_0000; devices/pci/pcie-host.ts)
 *   0x4000_0000  RAM; the device tree at its start
 *
 * The disks are virtio-blk functions on the PCIe bus (slots 1, 2, … in the order given), the NICs virtio-net
 * functions after them, then the virtio-rng function (unless `rng` is false); INTx on SPIs 3..6.
 *
 * The banks are CFI flash (src/devices/flash/cfi-flash.ts) over the board's ROM window (Board romBytes): in
 * read-array mode the CPU reads and executes the bytes in place, and every write is a flash command.
 */
import { CfiFlash, cfiFlashDtNode } from "../devices/flash/cfi-flash.js";
import { FwCfg, fwCfgDtNode, le, FW_CFG_MAX_CPUS, FW_CFG_NB_CPUS, FW_CFG_UUID } from "../devices/fw-cfg/fw-cfg.js";
import { NvmeController, type NvmeDisk } from "../devices/nvme/nvme.js";
import { PcieHost, pcieHostDtNode, PCIE_ECAM_BASE, PCIE_INTX_INTID_BASE, PCIE_MMIO_BASE, PCIE_PIO_BASE } from "../devices/pci/pcie-host.js";
import { VirtioBlk, type VirtioBlkDisk } from "../devices/virtio/virtio-blk.js";
import { VirtioNet, type VirtioNetOptions } from "../devices/virtio/virtio-net.js";
import { VirtioRng } from "../devices/virtio/virtio-rng.js";
import type { DmaMemory } from "../devices/dma.js";
import type { DtNode } from "../devices/dt.js";
import { boardDtb } from "./board-fdt.js";
import { MachineError, type Board } from "./board.js";
import { FLASH_BANK_BYTES, FLASH_BYTES, FLASH_SECTOR, RAM_BASE } from "./layout.js";

export { FLASH_BANK_BYTES, FLASH_BYTES, FLASH_SECTOR } from "./layout.js";
/** fw_cfg's window (VIRT_FW_CFG). */
export const FW_CFG_BASE = 0x09020000;
/** The device tree's place and largest size: the start of RAM, as QEMU puts it for firmware (arm_load_dtb). */
export const FW_DTB_MAX = 2 * 1024 * 1024;

export interface FirmwareImages {
  /** The firmware (AAVMF_CODE.fd): exactly one bank, read-only to the guest. */
  code: Uint8Array;
  /** The domain's variable store (its copy of AAVMF_VARS.fd): exactly one bank. */
  vars: Uint8Array;
  /** The guest changed vars[offset, offset+bytes.length): write it back to the domain's file. */
  onVarsChange?: (offset: number, bytes: Uint8Array) => void;
  /** SMBIOS-style UUID of the domain (fw_cfg FW_CFG_UUID), 16 bytes. */
  uuid?: Uint8Array;
  /** Disks, each a virtio-blk function on the PCIe bus (slot 1 first); readOnly refuses the guest's writes. */
  disks?: readonly FirmwareDisk[];
  /** NICs, each a virtio-net function on the PCIe bus after the disks. */
  nics?: readonly VirtioNetOptions[];
  /**
   * Bytes of RAM from RAM_BASE the device tree's memory node describes and the devices may DMA to (default: all
   * of the board's RAM). PV on HVM keeps the top of RAM for Xen's grant window and magic pages (src/xen/layout.ts).
   */
  ramBytes?: number;
  /** Further root-level device-tree nodes (PV on HVM: Xen's /hypervisor), given the GIC's phandle. */
  extraDtNodes?: (gicPhandle: number) => DtNode[];
  /**
   * xl's boot= letters, e.g. "cd": the disks (c), the cdroms (d) and the NICs (n), each group in slot order,
   * listed in this order in fw_cfg's "bootorder" file, which the firmware follows (bootOrderFile). Absent: no
   * file, and the firmware tries what it finds in its own order.
   */
  bootOrder?: string;
  /**
   * A virtio-rng function (the host's CSPRNG for the guest's hw_random and the firmware's EFI_RNG_PROTOCOL) on
   * the PCIe bus after the NICs: default true (config key virtio_rng, docs/hvm.md).
   */
  rng?: boolean;
}

export interface FirmwareDisk {
  /** The image (NVMe needs `discard` too, for Dataset Management: BlockImage has it). */
  disk: VirtioBlkDisk | NvmeDisk;
  readOnly: boolean;
  /** What VIRTIO_BLK_T_GET_ID answers (up to 20 bytes; Linux shows it as /sys/block/vda/serial). */
  serial?: string;
  /** A cdrom (xl's devtype=cdrom): letter d of the boot order rather than c. */
  cdrom?: boolean;
  /**
   * An NVMe controller (src/devices/nvme; vdev nvmeN) in the disk's slot rather than virtio-blk; `serial` is its
   * serial number. FirmwareDevices.disks lists the virtio-blk disks only.
   */
  nvme?: boolean;
}

export interface FirmwareDevices {
  code: CfiFlash;
  vars: CfiFlash;
  fwCfg: FwCfg;
  pcie: PcieHost;
  disks: VirtioBlk[];
  nics: VirtioNet[];
  /** The virtio-rng function, or null without one. */
  rng: VirtioRng | null;
}

/**
 * Sets up `board` (made with romBytes = FLASH_BYTES) for firmware boot: the flash banks with the images, fw_cfg,
 * the device tree at the start of RAM, vCPU 0 at the first flash instruction. Call once, before it runs.
 */
export function bootFirmware(board: Board, fw: FirmwareImages): FirmwareDevices {
  if (board.romBytes !== FLASH_BYTES) throw new MachineError("MACHINE_BOOT", `firmware boot needs a board with ${FLASH_BYTES >>> 20} MiB of flash (romBytes)`);
  for (const [what, img] of [["firmware code", fw.code], ["variable store", fw.vars]] as const) {
    if (img.length !== FLASH_BANK_BYTES) {
      throw new MachineError("MACHINE_FIRMWARE", `${what}: ${img.length} bytes; a flash bank is exactly ${FLASH_BANK_BYTES} (64 MiB, as AAVMF_CODE.fd and AAVMF_VARS.fd are)`);
    }
  }
  const ram = board.ram;
  const bank0 = new Uint8Array(ram, 0, FLASH_BANK_BYTES), bank1 = new Uint8Array(ram, FLASH_BANK_BYTES, FLASH_BANK_BYTES);
  copySparse(bank0, fw.code);
  copySparse(bank1, fw.vars);
  const code = new CfiFlash({
    bytes: bank0, sectorSize: FLASH_SECTOR, readOnly: true,
    onModeChange: (romd) => board.setRomd(0, FLASH_BANK_BYTES, romd),
    onChange: (off, len) => board.memoryChanged(off, len),
  });
  const vars = new CfiFlash({
    bytes: bank1, sectorSize: FLASH_SECTOR, readOnly: false,
    onModeChange: (romd) => board.setRomd(FLASH_BANK_BYTES, FLASH_BANK_BYTES, romd),
    onChange: (off, len) => { board.memoryChanged(FLASH_BANK_BYTES + off, len); fw.onVarsChange?.(off, bank1.subarray(off, off + len)); },
  });
  board.mapDevice(0, code);
  board.mapDevice(FLASH_BANK_BYTES, vars);

  const allRam = board.ramBytes - board.romBytes;
  const memBytes = fw.ramBytes ?? allRam;
  if (!Number.isInteger(memBytes) || memBytes <= FW_DTB_MAX || memBytes > allRam || memBytes % 4096 !== 0) {
    throw new MachineError("MACHINE_FIRMWARE", `RAM for the firmware: ${memBytes} bytes of the board's ${allRam}`);
  }
  const ramBytes = new Uint8Array(ram, board.romBytes, memBytes);
  // Guest RAM for the devices' DMA: only [RAM_BASE, RAM_BASE + memBytes) (not the flash, not MMIO).
  const dma: DmaMemory = {
    bytes: ramBytes,
    offsetOf: (pa, len) => (Number.isSafeInteger(pa) && pa >= RAM_BASE && len >= 0 && pa + len <= RAM_BASE + memBytes ? pa - RAM_BASE : -1),
    written: (off, len) => board.memoryChanged(board.romBytes + off, len),
  };
  const fwCfg = new FwCfg(dma);
  fwCfg.set(FW_CFG_NB_CPUS, le(board.vcpus.length, 2));
  fwCfg.set(FW_CFG_MAX_CPUS, le(board.vcpus.length, 2));
  fwCfg.set(FW_CFG_UUID, fw.uuid ?? new Uint8Array(16));
  board.mapDevice(FW_CFG_BASE, fwCfg);

  const pcie = new PcieHost([0, 1, 2, 3].map((k) => board.gic.spiLine(PCIE_INTX_INTID_BASE + k)));
  const disks: VirtioBlk[] = [];
  (fw.disks ?? []).forEach((d, i) => {
    const o = { readOnly: d.readOnly, ...(d.serial !== undefined ? { serial: d.serial } : {}) };
    if (d.nvme === true) {
      if (!("discard" in d.disk)) throw new MachineError("MACHINE_FIRMWARE", `disk ${i}: an NVMe disk needs an image with discard`);
      pcie.plug(1 + i, new NvmeController(dma, d.disk, o));
    } else {
      const blk = new VirtioBlk(dma, d.disk, o);
      pcie.plug(1 + i, blk);
      disks.push(blk);
    }
  });
  const nicSlots: number[] = [];
  const nics = (fw.nics ?? []).map((n) => {
    const slot = pcie.freeSlot();
    if (slot < 0) throw new MachineError("MACHINE_FIRMWARE", "more disks and NICs than PCI slots (31)");
    const nic = new VirtioNet(dma, n);
    pcie.plug(slot, nic);
    nicSlots.push(slot);
    return nic;
  });
  // The entropy device last, so it takes no slot a disk or NIC had before it existed.
  let rng: VirtioRng | null = null;
  if (fw.rng !== false) {
    const slot = pcie.freeSlot();
    if (slot < 0) throw new MachineError("MACHINE_FIRMWARE", "more disks, NICs and the virtio-rng device than PCI slots (31): virtio_rng = 0 frees one");
    rng = new VirtioRng(dma);
    pcie.plug(slot, rng);
  }
  if (fw.bootOrder !== undefined) {
    const order = bootOrderFile(fw.bootOrder, (fw.disks ?? []).map((d, i) => ({ slot: 1 + i, cdrom: d.cdrom === true, nvme: d.nvme === true })), nicSlots);
    // No device of the letters given: no file (as QEMU without bootindex), the firmware's own order.
    if (order.length > 0) fwCfg.addFile("bootorder", order);
  }
  board.mapDevice(PCIE_MMIO_BASE, pcie.mmio);
  board.mapDevice(PCIE_PIO_BASE, pcie.pio);
  board.mapDevice(PCIE_ECAM_BASE, pcie.ecam);

  const dtb = boardDtb({
    ramBytes: memBytes, vcpus: board.vcpus.length, bootargs: "",
    extraNodes: (gicPh) => [cfiFlashDtNode(0, FLASH_BANK_BYTES, 2), fwCfgDtNode(FW_CFG_BASE), pcieHostDtNode(gicPh),
      ...(fw.extraDtNodes?.(gicPh) ?? [])],
  });
  if (dtb.length > FW_DTB_MAX) throw new MachineError("MACHINE_DTB", "device tree larger than 2 MiB");
  ramBytes.set(dtb, 0);
  // QEMU starts firmware at the flash base with the registers zero (the firmware knows where the DT is).
  board.startAt(0, 0);
  return { code, vars, fwCfg, pcie, disks, nics, rng };
}

/**
 * fw_cfg's "bootorder" file as QEMU writes it (get_boot_devices_list: one OpenFirmware device path per line, the
 * last newline replaced by a NUL) for xl's boot= letters: c the disks, d the cdroms, n the NICs, each group in slot
 * order. The paths are the ones EDK2's QemuBootOrderLib translates (TranslatePciOfwNodes, on the root bus):
 * "/pci@i0cf8/scsi@S/disk@0,0" (a virtio-blk disk in slot S: PciRoot(0x0)/Pci(S,0x0)/HD(…)) and
 * "/pci@i0cf8/ethernet@S" (any other PCI device: PciRoot(0x0)/Pci(S,0x0)), which an NVMe disk uses too
 * ("/pci@i0cf8/nvme@S": its boot options' device paths start with PciRoot(0x0)/Pci(S,0x0)/NVMe(…), matched by that
 * prefix). The firmware then puts its boot options
 * for these devices first, in this order, and drops those of PCI devices not listed. A letter twice counts once.
 */
export function bootOrderFile(letters: string, disks: readonly { slot: number; cdrom: boolean; nvme?: boolean }[], nicSlots: readonly number[]): Uint8Array {
  if (!/^[cdn]*$/.test(letters)) throw new MachineError("MACHINE_FIRMWARE", `boot="${letters}": the letters are c (disk), d (cdrom) and n (network)`);
  const hex = (n: number): string => n.toString(16);
  const paths: string[] = [];
  for (const l of new Set(letters)) {
    if (l === "c" || l === "d") for (const d of disks) { if (d.cdrom === (l === "d")) paths.push(d.nvme === true ? `/pci@i0cf8/nvme@${hex(d.slot)}` : `/pci@i0cf8/scsi@${hex(d.slot)}/disk@0,0`); }
    else for (const s of nicSlots) paths.push(`/pci@i0cf8/ethernet@${hex(s)}`);
  }
  const text = new TextEncoder().encode(paths.map((p) => `${p}\n`).join(""));
  if (text.length > 0) text[text.length - 1] = 0; // QEMU: list[total - 1] = '\0'
  return text;
}

/** Copies `src` into `dst` page by page, skipping all-zero pages (the memory is zero already and stays uncommitted). */
function copySparse(dst: Uint8Array, src: Uint8Array): void {
  for (let at = 0; at < src.length; at += 4096) {
    const page = src.subarray(at, at + 4096);
    if (page.some((b) => b !== 0)) dst.set(page, at);
  }
}
