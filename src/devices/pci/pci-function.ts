/**
 * One PCI function as the host bridge (pcie-host.ts) sees it: a 4 KiB configuration space (PCI Local Bus 3.0
 * chapter 6, type 0 header; PCIe Base 4.0 section 7.2 for the extended 4 KiB), memory BARs that the firmware or
 * the OS sizes and places, a capability list, and legacy INTx.
 *
 * The config space is a byte array with a write mask beside it: a guest write changes only the bits the mask
 * allows, so read-only registers (IDs, class, capabilities, the BAR type bits) stay as the device set them, and
 * BAR sizing falls out of the mask — writing all ones to a BAR reads back ~(size - 1) with the type bits, as
 * the spec's sizing procedure expects (section 6.2.5.1). Status's RW1C bits are not modelled (none is ever set:
 * no parity or abort errors happen here); its Interrupt Status bit (3) follows the INTx level.
 *
 * Subclasses implement barRead/barWrite for their BARs and call setIntx() to raise or lower INTx. The host
 * bridge decodes a BAR only while Memory Space Enable (command bit 1) is set, and passes INTx on only while
 * Interrupt Disable (command bit 10) is clear.
 */

/** Header registers (PCI Local Bus 3.0 section 6.1, figure 6-1). */
export const PCI_VENDOR_ID = 0x00, PCI_DEVICE_ID = 0x02, PCI_COMMAND = 0x04, PCI_STATUS = 0x06, PCI_REVISION_ID = 0x08,
  PCI_CLASS_PROG = 0x09, PCI_HEADER_TYPE = 0x0e, PCI_BAR0 = 0x10, PCI_SUBSYSTEM_VENDOR_ID = 0x2c,
  PCI_SUBSYSTEM_ID = 0x2e, PCI_CAPABILITY_LIST = 0x34, PCI_INTERRUPT_LINE = 0x3c, PCI_INTERRUPT_PIN = 0x3d;
/** Command register bits. */
export const PCI_COMMAND_IO = 0x1, PCI_COMMAND_MEMORY = 0x2, PCI_COMMAND_MASTER = 0x4, PCI_COMMAND_INTX_DISABLE = 0x400;
/** Status register bits. */
export const PCI_STATUS_INTERRUPT = 0x08, PCI_STATUS_CAP_LIST = 0x10;
/** Capability IDs (PCI Code and ID Assignment 1.11 section 2). */
export const PCI_CAP_ID_VNDR = 0x09;
/** Config space size of a PCIe function; a type 0 header has six BARs. */
export const PCI_CONFIG_BYTES = 4096, PCI_BARS = 6;
/** BAR low bits (section 6.2.5.1): memory, 32-bit, not prefetchable = 0; 64-bit = 0b100. */
const BAR_MEM_TYPE_64 = 0x4;

export interface PciIds {
  vendor: number;
  device: number;
  revision: number;
  /** Class code: base class << 16 | sub-class << 8 | programming interface. */
  classCode: number;
  subsystemVendor?: number;
  subsystem?: number;
  /** Interrupt pin: 1 = INTA … 4 = INTD, 0 = none. */
  pin?: number;
}

export abstract class PciFunction {
  readonly config = new Uint8Array(PCI_CONFIG_BYTES);
  private readonly wmask = new Uint8Array(PCI_CONFIG_BYTES);
  /** BAR sizes (0: no BAR); a power of two of at least 16 bytes (4 KiB in practice, as Linux prefers). */
  readonly barSize = new Array<number>(PCI_BARS).fill(0);
  private lastCap = 0;
  private intx = false;
  /** Set by the host bridge when the function is plugged: BARs or command changed, INTx changed. */
  onRemap: () => void = () => {};
  onIntx: () => void = () => {};

  constructor(ids: PciIds) {
    this.put16(PCI_VENDOR_ID, ids.vendor);
    this.put16(PCI_DEVICE_ID, ids.device);
    this.config[PCI_REVISION_ID] = ids.revision;
    this.config[PCI_CLASS_PROG] = ids.classCode & 0xff;
    this.config[PCI_CLASS_PROG + 1] = (ids.classCode >>> 8) & 0xff;
    this.config[PCI_CLASS_PROG + 2] = (ids.classCode >>> 16) & 0xff;
    this.config[PCI_HEADER_TYPE] = 0; // type 0, single function
    this.put16(PCI_SUBSYSTEM_VENDOR_ID, ids.subsystemVendor ?? 0);
    this.put16(PCI_SUBSYSTEM_ID, ids.subsystem ?? 0);
    this.config[PCI_INTERRUPT_PIN] = ids.pin ?? 0;
    // Writable: command's IO/memory/master/INTx-disable bits, the interrupt line (a scratch byte for software).
    this.wmask[PCI_COMMAND] = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    this.wmask[PCI_COMMAND + 1] = PCI_COMMAND_INTX_DISABLE >>> 8;
    this.wmask[PCI_INTERRUPT_LINE] = 0xff;
  }

  /** Declares BAR `index` as memory of `size` bytes (a power of two, ≥ 16); 64-bit BARs take index and index+1. */
  protected addMemoryBar(index: number, size: number, is64 = false): void {
    if (!(index >= 0 && index < PCI_BARS - (is64 ? 1 : 0)) || size < 16 || (size & (size - 1)) !== 0 || size > 2 ** 31) {
      throw new RangeError(`PCI BAR ${index}: size ${size} must be a power of two from 16 bytes to 2 GiB`);
    }
    this.barSize[index] = size;
    const at = PCI_BAR0 + 4 * index;
    this.config[at] = is64 ? BAR_MEM_TYPE_64 : 0;
    // Address bits below the size are read-only zeros: this is what makes sizing work.
    const mask = ~(size - 1) >>> 0;
    for (let k = 0; k < 4; k++) this.wmask[at + k] = (mask >>> (8 * k)) & 0xff & (k === 0 ? 0xf0 : 0xff);
    if (is64) this.wmask.fill(0xff, at + 4, at + 8);
  }

  /** Appends a capability with body `bytes` (after the ID and next bytes); returns its config-space offset. */
  protected addCapability(id: number, body: readonly number[]): number {
    const at = this.lastCap === 0 ? 0x40 : alignUp(this.lastCap + this.config[this.lastCap + 2]!, 4);
    const len = 2 + body.length;
    if (at + len > 0x100) throw new RangeError("PCI capabilities do not fit in the first 256 bytes of config space");
    this.config[at] = id;
    this.config[at + 1] = 0;
    this.config.set(body, at + 2);
    if (this.lastCap === 0) this.config[PCI_CAPABILITY_LIST] = at;
    else this.config[this.lastCap + 1] = at;
    this.lastCap = at;
    this.put16(PCI_STATUS, this.get16(PCI_STATUS) | PCI_STATUS_CAP_LIST);
    return at;
  }

  /** The guest-physical address BAR `index` is placed at (the low word's type bits masked off). */
  barAddress(index: number): number {
    const at = PCI_BAR0 + 4 * index;
    const lo = (this.get32(at) & ~0xf) >>> 0;
    return (this.config[at]! & BAR_MEM_TYPE_64) !== 0 ? this.get32(at + 4) * 2 ** 32 + lo : lo;
  }

  get command(): number { return this.get16(PCI_COMMAND); }

  /** The function's INTx output after Interrupt Disable (what reaches the host bridge's line). */
  get intxOut(): boolean { return this.intx && (this.command & PCI_COMMAND_INTX_DISABLE) === 0; }

  /** Sets the device's INTx level (the Interrupt Status bit follows it). */
  protected setIntx(level: boolean): void {
    if (level === this.intx) return;
    this.intx = level;
    const st = this.get16(PCI_STATUS);
    this.put16(PCI_STATUS, level ? st | PCI_STATUS_INTERRUPT : st & ~PCI_STATUS_INTERRUPT);
    this.onIntx();
  }

  /** Config read of `size` (1, 2, 4) bytes at `reg`, little-endian; bytes past 4 KiB read as ones. */
  readConfig(reg: number, size: number): number {
    let v = 0;
    for (let k = size - 1; k >= 0; k--) v = (v << 8) | (reg + k < PCI_CONFIG_BYTES ? this.config[reg + k]! : 0xff);
    return v >>> 0;
  }

  /** Config write: only the mask's bits change; BAR or command changes are told to the host bridge. */
  writeConfig(reg: number, size: number, value: number): void {
    let remap = false;
    const intxBefore = this.intxOut;
    for (let k = 0; k < size && reg + k < PCI_CONFIG_BYTES; k++) {
      const at = reg + k, m = this.wmask[at]!;
      if (m === 0) continue;
      const b = (value >>> (8 * k)) & 0xff;
      this.config[at] = (this.config[at]! & ~m) | (b & m);
      if ((at >= PCI_BAR0 && at < PCI_BAR0 + 4 * PCI_BARS) || at === PCI_COMMAND || at === PCI_COMMAND + 1) remap = true;
    }
    if (remap) this.onRemap();
    if (this.intxOut !== intxBefore) this.onIntx();
  }

  /** A read of `size` bytes at `offset` in BAR `bar` (for 8 bytes: lo returned, hi in int64's R[0]). */
  abstract barRead(bar: number, offset: number, size: number): number;
  abstract barWrite(bar: number, offset: number, size: number, value: number, hi: number): void;

  protected get16(at: number): number { return this.config[at]! | (this.config[at + 1]! << 8); }
  protected get32(at: number): number { return (this.get16(at) | (this.get16(at + 2) << 16)) >>> 0; }
  protected put16(at: number, v: number): void { this.config[at] = v & 0xff; this.config[at + 1] = (v >>> 8) & 0xff; }
  protected put32(at: number, v: number): void { this.put16(at, v & 0xffff); this.put16(at + 2, v >>> 16); }
}

function alignUp(v: number, a: number): number { return Math.ceil(v / a) * a; }

/** The host bridge's own function at 00:00.0 (QEMU's gpex: Red Hat's vendor ID 0x1b36, device 0x0008). */
export class PciHostBridgeFunction extends PciFunction {
  constructor() {
    super({ vendor: 0x1b36, device: 0x0008, revision: 0, classCode: 0x060000 }); // class: bridge, host bridge
  }
  barRead(): number { return 0; }
  barWrite(): void {}
}
