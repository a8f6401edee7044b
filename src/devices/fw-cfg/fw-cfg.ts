/**
 * QEMU's firmware configuration device, MMIO flavour (QEMU docs/specs/fw_cfg.txt; hw/nvram/fw_cfg.c), as
 * QEMU's virt board has it at 0x0902_0000 ("qemu,fw-cfg-mmio" in the device tree): the firmware selects an item
 * by a 16-bit key and reads its bytes, through the data register or by DMA.
 *
 * Registers (offsets in the 0x18-byte window; all big-endian where they are wider than a byte):
 *   0x00  data: reads return the selected item's next bytes in order (1, 2, 4 or 8 at a time; past the end, 0)
 *   0x08  selector (16 bits): selects an item and rewinds it to offset 0
 *   0x10  DMA address (64 bits; reads give the signature "QEMU CFG"): writing its low half (0x14) — or all 64
 *         bits at 0x10 — starts a transfer described by the FWCfgDmaAccess at that guest-physical address:
 *         be32 control, be32 length, be64 address. control: ERROR 0x01, READ 0x02, SKIP 0x04, SELECT 0x08 (key
 *         in bits 31-16), WRITE 0x10; with more than one of READ, WRITE and SKIP the first in that order is done,
 *         as QEMU does. On completion the device writes control back as 0 or ERROR.
 *
 * Items: the signature (0x0000, "QEMU"), the interface ID (0x0001: bit 0 traditional, bit 1 DMA), and what the
 * board adds: fixed keys (FW_CFG_NB_CPUS, …) and named files, listed in the file directory (0x0019: be32
 * count, then per file be32 size, be16 select, be16 reserved, 56-byte name) with keys from 0x0020. Items are
 * read-only: a DMA write is refused with ERROR, as QEMU does for items without a write callback.
 *
 * The guest's DMA descriptor and buffer are checked against guest RAM (DmaMemory) before any byte moves: a
 * descriptor or buffer outside RAM is answered with ERROR (if the descriptor itself is readable) and nothing
 * else happens.
 */
import { R } from "../../common/int64.js";
import type { MmioDevice } from "../mmio.js";
import { reg64, type DtNode } from "../dt.js";
import type { DmaMemory } from "../dma.js";

export type { DmaMemory } from "../dma.js";

/** Well-known keys (fw_cfg.txt "Selector Register"; include/standard-headers/linux/qemu_fw_cfg.h). */
export const FW_CFG_SIGNATURE = 0x00, FW_CFG_ID = 0x01, FW_CFG_UUID = 0x02, FW_CFG_NOGRAPHIC = 0x04, FW_CFG_NB_CPUS = 0x05,
  FW_CFG_KERNEL_SIZE = 0x08, FW_CFG_INITRD_SIZE = 0x0b, FW_CFG_MAX_CPUS = 0x0f, FW_CFG_CMDLINE_SIZE = 0x14,
  FW_CFG_FILE_DIR = 0x19, FW_CFG_FILE_FIRST = 0x20;
/** FW_CFG_ID feature bits. */
export const FW_CFG_VERSION = 0x01, FW_CFG_VERSION_DMA = 0x02;
/** DMA control bits. */
export const DMA_ERROR = 0x01, DMA_READ = 0x02, DMA_SKIP = 0x04, DMA_SELECT = 0x08, DMA_WRITE = 0x10;
/** The value the DMA address register reads as: "QEMU CFG". */
export const FW_CFG_DMA_SIGNATURE_HI = 0x51454d55, FW_CFG_DMA_SIGNATURE_LO = 0x20434647;
/** Register offsets and the window size. */
export const FW_CFG_DATA = 0x00, FW_CFG_SELECTOR = 0x08, FW_CFG_DMA = 0x10, FW_CFG_WINDOW = 0x18;
/** File names are at most 55 bytes and a NUL (struct FWCfgFile). */
export const FW_CFG_MAX_FILE_PATH = 56;
/** The largest single DMA transfer served (the rest of a longer one is refused with ERROR). */
const MAX_DMA_BYTES = 64 * 1024 * 1024;

export class FwCfg implements MmioDevice {
  readonly size = FW_CFG_WINDOW;
  readonly supports64 = true;
  private readonly items = new Map<number, Uint8Array>();
  private readonly files: { name: string; key: number }[] = [];
  private cur: Uint8Array | null = null;
  private off = 0;
  private dmaHi = 0;
  /** Counts for tests and diagnostics. */
  readonly stats = { dmaTransfers: 0, dmaErrors: 0 };

  constructor(private readonly mem: DmaMemory) {
    this.set(FW_CFG_SIGNATURE, new TextEncoder().encode("QEMU"));
    this.set(FW_CFG_ID, le(FW_CFG_VERSION | FW_CFG_VERSION_DMA, 4));
    this.rebuildDir();
    this.select(0);
  }

  /** Sets fixed item `key` (below FW_CFG_FILE_FIRST). */
  set(key: number, data: Uint8Array): void {
    if (!Number.isInteger(key) || key < 0 || key >= FW_CFG_FILE_FIRST || key === FW_CFG_FILE_DIR) throw new RangeError(`fw_cfg: key 0x${key.toString(16)} is not a fixed item`);
    this.items.set(key, data);
  }

  /** Adds (or replaces) a named file, listed in the directory; returns its key. */
  addFile(name: string, data: Uint8Array): number {
    const nb = new TextEncoder().encode(name);
    if (nb.length === 0 || nb.length >= FW_CFG_MAX_FILE_PATH) throw new RangeError(`fw_cfg: file name ${JSON.stringify(name)} must be 1..55 bytes`);
    let f = this.files.find((x) => x.name === name);
    if (f === undefined) {
      f = { name, key: FW_CFG_FILE_FIRST + this.files.length };
      this.files.push(f);
    }
    this.items.set(f.key, data);
    this.rebuildDir();
    return f.key;
  }

  /** FW_CFG_FILE_DIR: sorted by name, as QEMU keeps it (fw_cfg_add_file). */
  private rebuildDir(): void {
    const sorted = [...this.files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const d = new Uint8Array(4 + 64 * sorted.length);
    const dv = new DataView(d.buffer);
    dv.setUint32(0, sorted.length);
    sorted.forEach((f, i) => {
      const at = 4 + 64 * i;
      dv.setUint32(at, this.items.get(f.key)!.length);
      dv.setUint16(at + 4, f.key);
      d.set(new TextEncoder().encode(f.name), at + 8);
    });
    this.items.set(FW_CFG_FILE_DIR, d);
  }

  private select(key: number): void {
    // Bit 14 (write) and bit 15 (architecture-specific) are part of the key; no such item exists here.
    this.cur = this.items.get(key) ?? null;
    this.off = 0;
  }

  read(offset: number, size: number): number {
    if (offset >= FW_CFG_DATA && offset + size <= FW_CFG_DATA + 8) {
      // Data: the next `size` bytes in order — as a big-endian value, so a little-endian CPU storing the
      // register's value to memory gets the bytes in the item's order (fw_cfg.txt "string-preserving").
      // first: bytes 0-3 (or all of a narrower read), second: bytes 4-7 of an 8-byte read; each big-endian.
      let first = 0, second = 0;
      for (let k = 0; k < size; k++) {
        const b = this.cur !== null && this.off < this.cur.length ? this.cur[this.off]! : 0;
        if (this.cur !== null && this.off < this.cur.length) this.off++;
        if (k < 4) first = (first << 8) | b; else second = (second << 8) | b;
      }
      if (size === 8) {
        // The low word (returned) holds bytes 0-3, the high word (R[0]) bytes 4-7.
        R[0] = bswap32(second);
        return bswap32(first);
      }
      return size === 4 ? bswap32(first) : size === 2 ? ((first & 0xff) << 8) | (first >>> 8) : first;
    }
    if (offset === FW_CFG_SELECTOR && size === 2) return 0; // write-only
    if (offset >= FW_CFG_DMA && offset < FW_CFG_DMA + 8) {
      // The signature, big-endian: byte 0 is 'Q'.
      const sig = offset === FW_CFG_DMA ? [FW_CFG_DMA_SIGNATURE_HI, FW_CFG_DMA_SIGNATURE_LO] : [FW_CFG_DMA_SIGNATURE_LO, 0];
      if (size === 8) { R[0] = bswap32(sig[1]!); return bswap32(sig[0]!); }
      if (size === 4) return bswap32(sig[0]!);
    }
    if (size === 8) R[0] = 0;
    return 0;
  }

  write(offset: number, size: number, value: number, hi: number): void {
    if (offset === FW_CFG_SELECTOR && size === 2) {
      // Big-endian: the CPU's little-endian 16-bit store puts the key's high byte first.
      this.select(((value & 0xff) << 8) | ((value >>> 8) & 0xff));
      return;
    }
    if (offset === FW_CFG_DMA && size === 8) { this.dma(bswap32(value), bswap32(hi)); return; }
    if (offset === FW_CFG_DMA && size === 4) { this.dmaHi = bswap32(value); return; }
    if (offset === FW_CFG_DMA + 4 && size === 4) { this.dma(this.dmaHi, bswap32(value)); this.dmaHi = 0; return; }
    // Data writes are ignored (fw_cfg.txt: writing the data register has no effect since QEMU 2.4).
  }

  /** Runs the DMA transfer whose FWCfgDmaAccess is at guest-physical (hi, lo). */
  private dma(hiAddr: number, loAddr: number): void {
    this.stats.dmaTransfers++;
    const pa = (hiAddr >>> 0) * 2 ** 32 + (loAddr >>> 0);
    const m = this.mem.bytes;
    const at = this.mem.offsetOf(pa, 16);
    if (at < 0) { this.stats.dmaErrors++; return; } // nowhere to report it: the guest sees its descriptor unchanged
    const dv = new DataView(m.buffer, m.byteOffset, m.byteLength);
    const control = dv.getUint32(at), length = dv.getUint32(at + 4);
    const addrHi = dv.getUint32(at + 8), addrLo = dv.getUint32(at + 12);
    const done = (ok: boolean): void => {
      if (!ok) this.stats.dmaErrors++;
      dv.setUint32(at, ok ? 0 : DMA_ERROR);
    };
    if ((control & DMA_SELECT) !== 0) this.select(control >>> 16);
    // The operation, in QEMU's order (fw_cfg_dma_transfer): READ, else WRITE, else SKIP, else nothing to do.
    if ((control & DMA_READ) === 0 && (control & DMA_WRITE) !== 0) { done(false); return; } // every item is read-only
    if ((control & (DMA_READ | DMA_SKIP)) === 0) { done(true); return; }
    if (length > MAX_DMA_BYTES) { done(false); return; }
    const avail = this.cur === null ? 0 : Math.max(0, this.cur.length - this.off);
    if ((control & DMA_READ) !== 0) {
      const dst = this.mem.offsetOf(addrHi * 2 ** 32 + addrLo, length);
      if (dst < 0) { done(false); return; }
      const n = Math.min(length, avail);
      if (n > 0) m.set(this.cur!.subarray(this.off, this.off + n), dst);
      if (n < length) m.fill(0, dst + n, dst + length); // past the item's end: zeros, as QEMU gives
      this.mem.written?.(dst, length);
    }
    this.off += Math.min(length, avail);
    done(true);
  }
}

function bswap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | ((v >>> 24) & 0xff)) >>> 0;
}

/** `n` bytes of v, little-endian (the fixed numeric items are little-endian: fw_cfg.txt). */
export function le(v: number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let k = 0; k < n && k < 6; k++) b[k] = Math.floor(v / 2 ** (8 * k)) & 0xff;
  return b;
}

/** The device tree node QEMU's virt board gives it (Linux Documentation/devicetree/bindings/firmware/qemu,fw-cfg-mmio.yaml). */
export function fwCfgDtNode(base: number): DtNode {
  return {
    name: `fw-cfg@${base.toString(16)}`,
    props: { compatible: "qemu,fw-cfg-mmio", reg: reg64(base, FW_CFG_WINDOW), "dma-coherent": true },
  };
}
