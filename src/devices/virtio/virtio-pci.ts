/**
 * The virtio PCI transport, modern interface only (virtio 1.2 section 4.1; no legacy I/O BAR, device IDs
 * 0x1040 + type, revision 1, VIRTIO_F_VERSION_1 required of the driver). The structures sit in one 32-bit memory
 * BAR (BAR 0, 16 KiB), each found through a vendor-specific capability (4.1.4):
 *
 *   0x0000  common configuration (4.1.4.3): features, status, queue select/size/enable/addresses
 *   0x1000  ISR status (4.1.4.5): bit 0 queue interrupt, bit 1 configuration change; reading clears it
 *   0x2000  device-specific configuration (virtio-blk's capacity, …)
 *   0x3000  notifications (4.1.4.4): queue q's doorbell at 0x3000 + 4 q (notify_off_multiplier 4)
 *
 * Interrupts are INTx (4.1.5.3): raised while the ISR is non-zero, lowered when the driver reads it. MSI-X is
 * not offered, so msix_config and queue_msix_vector read VIRTIO_MSI_NO_VECTOR. The optional
 * VIRTIO_PCI_CAP_PCI_CFG window (4.1.4.9) is not provided: drivers reach the BAR directly.
 *
 * The driver is checked: FEATURES_OK stays clear when it accepts a feature not offered or not VERSION_1; a
 * queue enabled with a bad size or rings outside RAM, or a broken ring found while serving a notify, sets
 * DEVICE_NEEDS_RESET (2.1.2) with a configuration-change interrupt, and the device serves nothing more until
 * the driver resets it (status 0).
 */
import { R } from "../../common/int64.js";
import type { DmaMemory } from "../dma.js";
import { PCI_CAP_ID_VNDR, PciFunction } from "../pci/pci-function.js";
import { SplitQueue, VQ_BROKEN, VQ_EMPTY } from "./virtqueue.js";

/** Device status bits (2.1). */
export const VIRTIO_STATUS_ACKNOWLEDGE = 1, VIRTIO_STATUS_DRIVER = 2, VIRTIO_STATUS_DRIVER_OK = 4,
  VIRTIO_STATUS_FEATURES_OK = 8, VIRTIO_STATUS_NEEDS_RESET = 0x40, VIRTIO_STATUS_FAILED = 0x80;
/** Feature bit 32 (6.1): the device and driver speak virtio 1.x. */
export const VIRTIO_F_VERSION_1 = 32;
/** Capability cfg_type values (4.1.4). */
export const VIRTIO_PCI_CAP_COMMON_CFG = 1, VIRTIO_PCI_CAP_NOTIFY_CFG = 2, VIRTIO_PCI_CAP_ISR_CFG = 3, VIRTIO_PCI_CAP_DEVICE_CFG = 4;
export const VIRTIO_MSI_NO_VECTOR = 0xffff;
/** Red Hat's virtio vendor ID; modern device IDs are 0x1040 + the virtio device type (4.1.2.1). */
export const VIRTIO_PCI_VENDOR = 0x1af4, VIRTIO_PCI_DEVICE_BASE = 0x1040;

/** Where the structures are in BAR 0. */
export const COMMON_OFF = 0x0000, ISR_OFF = 0x1000, DEVICE_OFF = 0x2000, NOTIFY_OFF = 0x3000, BAR_SIZE = 0x4000;
const NOTIFY_MULTIPLIER = 4;

/**
 * Common configuration offsets (struct virtio_pci_common_cfg). Read as 32-bit words: msix_config (0x10) shares one
 * with num_queues (0x12), device_status (0x14) with config_generation (0x15) and queue_select (0x16), queue_size
 * (0x18) with queue_msix_vector (0x1a), queue_enable (0x1c) with queue_notify_off (0x1e).
 */
const C_DFSELECT = 0x00, C_DF = 0x04, C_GFSELECT = 0x08, C_GF = 0x0c, C_MSIX = 0x10, C_STATUS = 0x14,
  C_QSELECT = 0x16, C_QSIZE = 0x18, C_QENABLE = 0x1c, C_QDESC = 0x20, C_QDRIVER = 0x28, C_QDEVICE = 0x30, COMMON_SIZE = 0x38;

export interface VirtioDeviceInfo {
  /** The virtio device type (5: 2 block, 1 net, 4 entropy). */
  type: number;
  /** PCI class code for the function (base class, sub-class, interface). */
  classCode: number;
  /** Feature bits offered, as two 32-bit words (VERSION_1 is added). */
  features: [number, number];
  queues: number;
  /** Largest queue size the device accepts (a power of two). */
  maxQueueSize: number;
  /** Size of the device-specific configuration structure in bytes. */
  configSize: number;
}

export abstract class VirtioPciDevice extends PciFunction {
  private readonly features: [number, number];
  private readonly driverFeatures: [number, number] = [0, 0];
  private dfSelect = 0;
  private gfSelect = 0;
  private status = 0;
  private generation = 0;
  private qSelect = 0;
  private isr = 0;
  protected readonly queues: SplitQueue[];
  private readonly qSize: number[];
  private readonly qAddr: number[]; // desc lo, hi, driver lo, hi, device lo, hi per queue
  private readonly qEnable: boolean[];
  /** Counters for tests and diagnostics. */
  readonly vstats = { notifies: 0, resets: 0, needsReset: 0 };
  /** Why the device last set DEVICE_NEEDS_RESET ("" when it has not). */
  lastError = "";

  constructor(protected readonly mem: DmaMemory, readonly info: VirtioDeviceInfo) {
    super({
      vendor: VIRTIO_PCI_VENDOR, device: VIRTIO_PCI_DEVICE_BASE + info.type, revision: 1, classCode: info.classCode,
      subsystemVendor: VIRTIO_PCI_VENDOR, subsystem: 0x1100, pin: 1,
    });
    this.features = [info.features[0] >>> 0, (info.features[1] | (1 << (VIRTIO_F_VERSION_1 - 32))) >>> 0];
    this.addMemoryBar(0, BAR_SIZE);
    // struct virtio_pci_cap (4.1.4): cap_vndr, cap_next (added by addCapability), cap_len, cfg_type, bar, id,
    // padding[2], le32 offset, le32 length; the notify capability adds le32 notify_off_multiplier.
    const cap = (type: number, off: number, len: number, extra: number[] = []): void => {
      this.addCapability(PCI_CAP_ID_VNDR, [16 + extra.length, type, 0, 0, 0, 0, ...le32(off), ...le32(len), ...extra]);
    };
    cap(VIRTIO_PCI_CAP_COMMON_CFG, COMMON_OFF, COMMON_SIZE);
    cap(VIRTIO_PCI_CAP_ISR_CFG, ISR_OFF, 1);
    // A device without configuration (virtio-rng) has no DEVICE_CFG capability: Linux's virtio_pci_modern refuses
    // one of length 0 ("bad capability len") and maps the structure only when the capability is present.
    if (info.configSize > 0) cap(VIRTIO_PCI_CAP_DEVICE_CFG, DEVICE_OFF, info.configSize);
    cap(VIRTIO_PCI_CAP_NOTIFY_CFG, NOTIFY_OFF, NOTIFY_MULTIPLIER * info.queues, le32(NOTIFY_MULTIPLIER));
    this.queues = Array.from({ length: info.queues }, () => new SplitQueue(mem));
    this.qSize = new Array<number>(info.queues).fill(info.maxQueueSize);
    this.qAddr = new Array<number>(6 * info.queues).fill(0);
    this.qEnable = new Array<boolean>(info.queues).fill(false);
  }

  /** The features both sides agreed to (valid once FEATURES_OK is set): bit `n`. */
  protected negotiated(bit: number): boolean {
    return ((this.driverFeatures[bit >>> 5]! >>> (bit & 31)) & 1) === 1;
  }

  /** Reads of the device-specific configuration (offset inside it). */
  protected abstract configRead(offset: number, size: number): number;
  /** Writes to it (most fields are read-only). */
  protected configWrite(_offset: number, _size: number, _value: number): void {}
  /** The driver rang queue `q`'s doorbell (the queue is enabled and the device live). */
  protected abstract serve(q: number): void;
  /** The device was reset (status 0): drop request state. */
  protected onReset(): void {}

  /**
   * Serves every chain available on queue `q`: each popped chain (in the queue's segments) goes to chain(q), whose
   * result is the byte count for the used ring; a broken ring sets DEVICE_NEEDS_RESET and stops; the queue
   * interrupt once, when any chain was used.
   */
  protected drain(q: number): void {
    const vq = this.queues[q]!;
    let done = 0;
    for (;;) {
      const head = vq.pop();
      if (head === VQ_EMPTY) break;
      if (head === VQ_BROKEN) { this.needsReset(vq.broken); return; }
      vq.push(head, this.chain(q));
      done++;
    }
    if (done > 0) this.interruptQueue(q);
  }
  /** One popped chain of queue `q` (drain): returns the bytes written into the guest's buffers. */
  protected chain(_q: number): number { return 0; }

  /** Used buffers were returned on a queue: the queue interrupt (unless the driver asked for none). */
  protected interruptQueue(q: number): void {
    if (this.queues[q]!.noInterrupt) return;
    this.isr |= 1;
    this.setIntx(true);
  }

  /** The ring or a request broke the device's rules: DEVICE_NEEDS_RESET and a configuration interrupt. */
  protected needsReset(why: string): void {
    this.lastError = why;
    this.vstats.needsReset++;
    if ((this.status & VIRTIO_STATUS_NEEDS_RESET) !== 0) return;
    this.status |= VIRTIO_STATUS_NEEDS_RESET;
    this.isr |= 2;
    this.setIntx(true);
  }

  /** Queue `q` is enabled and the device live (DRIVER_OK, not NEEDS_RESET): a device may use it unprompted. */
  protected serving(q: number): boolean { return this.live && this.qEnable[q] === true; }

  private get live(): boolean {
    return (this.status & VIRTIO_STATUS_DRIVER_OK) !== 0 && (this.status & VIRTIO_STATUS_NEEDS_RESET) === 0;
  }

  private reset(): void {
    this.vstats.resets++;
    this.status = 0; this.isr = 0; this.dfSelect = 0; this.gfSelect = 0; this.qSelect = 0;
    this.driverFeatures[0] = 0; this.driverFeatures[1] = 0;
    this.qSize.fill(this.info.maxQueueSize); this.qAddr.fill(0); this.qEnable.fill(false);
    for (const q of this.queues) q.reset();
    this.setIntx(false);
    this.onReset();
  }

  barRead(_bar: number, off: number, size: number): number {
    if (size === 8) {
      // Only the 64-bit queue addresses are 8 bytes wide; any other 8-byte read is two 4-byte ones.
      const lo = this.barRead(0, off, 4);
      R[0] = this.barRead(0, off + 4, 4) | 0;
      return lo;
    }
    if (off < COMMON_OFF + COMMON_SIZE) return sub(this.commonWord(off & ~3), off, size, (off & 3) + size <= 4 ? 0 : this.commonWord((off & ~3) + 4));
    if (off === ISR_OFF) {
      const v = this.isr;
      this.isr = 0;
      this.setIntx(false);
      return v;
    }
    if (off >= DEVICE_OFF && off < DEVICE_OFF + this.info.configSize) return this.configRead(off - DEVICE_OFF, size);
    return 0;
  }

  barWrite(_bar: number, off: number, size: number, value: number, hi: number): void {
    if (size === 8) { this.barWrite(0, off, 4, value, 0); this.barWrite(0, off + 4, 4, hi, 0); return; }
    if (off >= NOTIFY_OFF && off < NOTIFY_OFF + NOTIFY_MULTIPLIER * this.info.queues) {
      const q = (off - NOTIFY_OFF) / NOTIFY_MULTIPLIER;
      this.vstats.notifies++;
      if (Number.isInteger(q) && this.live && this.qEnable[q]) this.serve(q);
      return;
    }
    if (off >= DEVICE_OFF && off < DEVICE_OFF + this.info.configSize) { this.configWrite(off - DEVICE_OFF, size, value); return; }
    if (off < COMMON_OFF + COMMON_SIZE) this.commonWrite(off, size, value);
  }

  /** The common configuration's 32-bit word at `off` (4-aligned), assembled from its fields. */
  private commonWord(off: number): number {
    const q = this.qSelect < this.info.queues ? this.qSelect : -1;
    switch (off) {
      case C_DFSELECT: return this.dfSelect;
      case C_DF: return this.dfSelect < 2 ? this.features[this.dfSelect]! : 0;
      case C_GFSELECT: return this.gfSelect;
      case C_GF: return this.gfSelect < 2 ? this.driverFeatures[this.gfSelect]! : 0;
      case C_MSIX: return VIRTIO_MSI_NO_VECTOR | (this.info.queues << 16);
      case C_STATUS: return this.status | (this.generation << 8) | (this.qSelect << 16);
      case C_QSIZE: return (q < 0 ? 0 : this.qSize[q]!) | (VIRTIO_MSI_NO_VECTOR << 16);
      case C_QENABLE: return (q < 0 ? 0 : this.qEnable[q] ? 1 : 0) | ((q < 0 ? 0 : q) << 16); // queue_notify_off = q
      case C_QDESC: case C_QDESC + 4: case C_QDRIVER: case C_QDRIVER + 4: case C_QDEVICE: case C_QDEVICE + 4:
        return q < 0 ? 0 : this.qAddr[6 * q + (off - C_QDESC) / 4]!;
      default: return 0;
    }
  }

  private commonWrite(off: number, size: number, value: number): void {
    const q = this.qSelect < this.info.queues ? this.qSelect : -1;
    const v16 = value & 0xffff;
    if (off === C_DFSELECT && size === 4) this.dfSelect = value >>> 0;
    else if (off === C_GFSELECT && size === 4) this.gfSelect = value >>> 0;
    else if (off === C_GF && size === 4) {
      // Features may change only before FEATURES_OK (3.1.1 step 5).
      if (this.gfSelect < 2 && (this.status & VIRTIO_STATUS_FEATURES_OK) === 0) this.driverFeatures[this.gfSelect] = value >>> 0;
    } else if (off === C_STATUS && size === 1) this.writeStatus(value & 0xff);
    else if (off === C_QSELECT && size === 2) this.qSelect = v16;
    else if (off === C_QSIZE && size === 2) { if (q >= 0 && !this.qEnable[q]) this.qSize[q] = v16; }
    else if (off === C_QENABLE && size === 2) { if (q >= 0 && v16 === 1 && !this.qEnable[q]) this.enableQueue(q); }
    else if (off >= C_QDESC && off < C_QDEVICE + 8 && size === 4 && (off & 3) === 0) {
      if (q >= 0 && !this.qEnable[q]) this.qAddr[6 * q + (off - C_QDESC) / 4] = value >>> 0;
    }
    // Anything else (read-only fields, MSI-X vectors without MSI-X, odd widths) is ignored.
  }

  private writeStatus(v: number): void {
    if (v === 0) { this.reset(); return; }
    if ((v & VIRTIO_STATUS_FEATURES_OK) !== 0 && (this.status & VIRTIO_STATUS_FEATURES_OK) === 0) {
      // 3.1.1 step 6: the device refuses a subset it does not offer, and a driver without VERSION_1.
      const ok = (this.driverFeatures[0]! & ~this.features[0]!) === 0 && (this.driverFeatures[1]! & ~this.features[1]!) === 0 &&
        this.negotiated(VIRTIO_F_VERSION_1);
      if (!ok) v &= ~VIRTIO_STATUS_FEATURES_OK;
    }
    // NEEDS_RESET is the device's bit: the driver cannot set or clear it.
    this.status = (v & ~VIRTIO_STATUS_NEEDS_RESET) | (this.status & VIRTIO_STATUS_NEEDS_RESET);
  }

  private enableQueue(q: number): void {
    const a = this.qAddr, at = 6 * q;
    const addr = (k: number): number => a[at + k + 1]! * 2 ** 32 + a[at + k]!;
    const err = this.queues[q]!.setup(this.qSize[q]!, addr(0), addr(2), addr(4), this.info.maxQueueSize);
    if (err !== null) { this.needsReset(`queue ${q}: ${err}`); return; }
    this.qEnable[q] = true;
  }
}

function le32(v: number): number[] { return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff]; }

/** `size` bytes at `off` out of a little-endian word (and the next one, for a read crossing into it). */
function sub(word: number, off: number, size: number, next: number): number {
  const shift = (off & 3) * 8;
  if (size === 4 && shift === 0) return word | 0;
  const v = shift === 0 ? word : (word >>> shift) | (next << (32 - shift));
  return size === 4 ? v | 0 : size === 2 ? v & 0xffff : v & 0xff;
}
