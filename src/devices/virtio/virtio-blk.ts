/**
 * virtio-blk (virtio 1.2 section 5.2) over the PCI transport, backed by a disk image (src/storage's BlockImage:
 * raw or qcow2). One request queue of up to 256 descriptors; requests are served synchronously when the driver
 * rings the doorbell (on the notifying vCPU's thread: the vCPU waits for the disk, as on a plain emulator
 * without an I/O thread).
 *
 * A request is a chain (5.2.6): a 16-byte header (le32 type, le32 reserved, le64 sector) in device-readable
 * buffers, then the data (readable for OUT, writable for IN and GET_ID), then one writable status byte, the
 * chain's last. The framing is not assumed (2.7.4.4): the header and the data may be split over buffers anywhere.
 *
 * Types served: IN (read), OUT (write), FLUSH, GET_ID (the serial, 20 bytes). Others get UNSUPP. Checked for
 * each request, answered with IOERR and the request completed (the device stays usable): a buffer outside
 * RAM, a header shorter than 16 bytes, a data length not a multiple of 512, sectors past the disk's end, a write
 * to a read-only disk (VIRTIO_BLK_F_RO offered), the image's own errors (StorageError: corrupt qcow2, host I/O).
 * A chain without a writable status byte in RAM cannot be answered: it is completed with 0 bytes written and
 * counted. A broken ring (loops, indexes past the size) sets DEVICE_NEEDS_RESET (virtio-pci.ts).
 *
 * Features: VERSION_1, SEG_MAX, BLK_SIZE (512), FLUSH, RO when read-only. Not offered: indirect descriptors,
 * event index, multiple queues, discard, write zeroes, config WCE (the cache mode is write-back: FLUSH syncs).
 */
import { R } from "../../common/int64.js";
import type { BlockImage } from "../../storage/block-image.js";
import type { DmaMemory } from "../dma.js";
import { VirtioPciDevice } from "./virtio-pci.js";

export const VIRTIO_ID_BLOCK = 2;
/** Feature bits (5.2.3). */
export const VIRTIO_BLK_F_SEG_MAX = 2, VIRTIO_BLK_F_RO = 5, VIRTIO_BLK_F_BLK_SIZE = 6, VIRTIO_BLK_F_FLUSH = 9;
/** Request types and status values (5.2.6). */
export const VIRTIO_BLK_T_IN = 0, VIRTIO_BLK_T_OUT = 1, VIRTIO_BLK_T_FLUSH = 4, VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_S_OK = 0, VIRTIO_BLK_S_IOERR = 1, VIRTIO_BLK_S_UNSUPP = 2;
export const VIRTIO_BLK_ID_BYTES = 20;
const SECTOR = 512, QUEUE_SIZE = 256, HEADER = 16, CONFIG_SIZE = 0x3c;

/** The disk a virtio-blk device serves (BlockImage satisfies it; tests may give a smaller one). */
export type VirtioBlkDisk = Pick<BlockImage, "bytes" | "readOnly" | "read" | "write" | "flush">;

export class VirtioBlk extends VirtioPciDevice {
  private readonly blkConfig = new Uint8Array(CONFIG_SIZE);
  private readonly header = new Uint8Array(HEADER);
  private readonly headerView = new DataView(this.header.buffer);
  private readonly serial = new Uint8Array(VIRTIO_BLK_ID_BYTES);
  private readonly readOnly: boolean;
  /** Counters for tests and diagnostics. */
  readonly stats = { requests: 0, readBytes: 0, writeBytes: 0, ioErrors: 0, unsupported: 0, unanswerable: 0 };
  /** The last request error (for the log): "" when none. */
  lastRequestError = "";

  constructor(mem: DmaMemory, private readonly disk: VirtioBlkDisk, o: { readOnly?: boolean; serial?: string } = {}) {
    const readOnly = disk.readOnly || o.readOnly === true;
    super(mem, {
      type: VIRTIO_ID_BLOCK, classCode: 0x010000, queues: 1, maxQueueSize: QUEUE_SIZE, configSize: CONFIG_SIZE,
      features: [(1 << VIRTIO_BLK_F_SEG_MAX) | (1 << VIRTIO_BLK_F_BLK_SIZE) | (1 << VIRTIO_BLK_F_FLUSH) | (readOnly ? 1 << VIRTIO_BLK_F_RO : 0), 0],
    });
    this.readOnly = readOnly;
    // struct virtio_blk_config (5.2.4): le64 capacity (512-byte sectors) @0, le32 size_max @8, le32 seg_max @12,
    // geometry @16, le32 blk_size @20, topology @24, writeback @32, …, le16 num_queues @34.
    const cv = new DataView(this.blkConfig.buffer);
    const sectors = Math.floor(disk.bytes / SECTOR);
    cv.setUint32(0, sectors >>> 0, true);
    cv.setUint32(4, Math.floor(sectors / 2 ** 32), true);
    cv.setUint32(12, QUEUE_SIZE - 2, true); // seg_max: the header and the status take two descriptors
    cv.setUint32(20, SECTOR, true);
    cv.setUint16(34, 1, true);
    this.serial.set(new TextEncoder().encode((o.serial ?? "").slice(0, VIRTIO_BLK_ID_BYTES)));
  }

  protected configRead(off: number, size: number): number {
    let v = 0;
    for (let k = size - 1; k >= 0; k--) v = v * 256 + (off + k < CONFIG_SIZE ? this.blkConfig[off + k]! : 0);
    if (size === 8) { R[0] = Math.floor(v / 2 ** 32) | 0; return v >>> 0 | 0; }
    return v | 0;
  }

  protected serve(q: number): void { this.drain(q); }

  /** Serves the chain in the queue's segments; returns the bytes written into the guest's buffers. */
  protected chain(): number {
    this.stats.requests++;
    const vq = this.queues[0]!, n = vq.segs;
    // The status byte: the last byte of the last segment, which must be device-writable and in RAM.
    const last = n - 1;
    if (vq.segWrite[last] !== 1 || vq.segLen[last] === 0 || vq.segOff[last]! < 0) {
      this.stats.unanswerable++;
      this.lastRequestError = "no writable status byte in guest RAM";
      return 0;
    }
    const statusAt = vq.segOff[last]! + vq.segLen[last]! - 1;
    const status = this.execute(vq.segOff, vq.segLen, vq.segWrite, n);
    const bytes = this.mem.bytes;
    bytes[statusAt] = status.code;
    this.mem.written?.(statusAt, 1);
    return status.written + 1;
  }

  private readonly result = { code: 0, written: 0 };

  private fail(code: number, why: string): { code: number; written: number } {
    if (code === VIRTIO_BLK_S_UNSUPP) this.stats.unsupported++; else this.stats.ioErrors++;
    this.lastRequestError = why;
    this.result.code = code; this.result.written = 0;
    return this.result;
  }

  /**
   * Runs the request whose chain is segOff/segLen/segWrite[0, n) (the status byte, the last byte, excluded).
   * Readable bytes are [header, out-data]; writable bytes are [in-data, status].
   */
  private execute(segOff: Float64Array, segLen: Uint32Array, segWrite: Uint8Array, n: number): { code: number; written: number } {
    const m = this.mem.bytes;
    let readable = 0, writable = 0;
    for (let i = 0; i < n; i++) {
      if (segOff[i]! < 0) return this.fail(VIRTIO_BLK_S_IOERR, `buffer ${i} (${segLen[i]} bytes) is outside guest RAM`);
      if (segWrite[i] === 1) writable += segLen[i]!; else readable += segLen[i]!;
    }
    writable -= 1; // the status byte
    if (readable < HEADER) return this.fail(VIRTIO_BLK_S_IOERR, `the request header has ${readable} of 16 bytes`);
    // The header: the first 16 readable bytes, wherever the driver split them.
    let got = 0;
    for (let i = 0; i < n && got < HEADER && segWrite[i] === 0; i++) {
      const k = Math.min(segLen[i]!, HEADER - got), from = segOff[i]!;
      for (let b = 0; b < k; b++) this.header[got + b] = m[from + b]!; // byte copy: no view allocated per request
      got += k;
    }
    const hv = this.headerView;
    const type = hv.getUint32(0, true);
    const sector = hv.getUint32(12, true) * 2 ** 32 + hv.getUint32(8, true);
    const r = this.result;
    r.code = VIRTIO_BLK_S_OK; r.written = 0;
    switch (type) {
      case VIRTIO_BLK_T_IN: case VIRTIO_BLK_T_OUT: {
        const out = type === VIRTIO_BLK_T_OUT;
        const len = out ? readable - HEADER : writable;
        if (out && this.readOnly) return this.fail(VIRTIO_BLK_S_IOERR, "a write to a read-only disk");
        if (len % SECTOR !== 0) return this.fail(VIRTIO_BLK_S_IOERR, `a data length of ${len} bytes is not whole sectors`);
        const pos = sector * SECTOR;
        if (!(sector < 2 ** 44) || pos + len > this.disk.bytes) return this.fail(VIRTIO_BLK_S_IOERR, `sectors ${sector}+${len / SECTOR} are past the disk's end`);
        try {
          this.transfer(out, segOff, segLen, segWrite, n, pos);
        } catch (e) {
          return this.fail(VIRTIO_BLK_S_IOERR, `${out ? "write" : "read"} at sector ${sector}: ${(e as Error).message}`);
        }
        if (out) this.stats.writeBytes += len; else { this.stats.readBytes += len; r.written = len; }
        return r;
      }
      case VIRTIO_BLK_T_FLUSH:
        try { this.disk.flush(); } catch (e) { return this.fail(VIRTIO_BLK_S_IOERR, `flush: ${(e as Error).message}`); }
        return r;
      case VIRTIO_BLK_T_GET_ID: {
        // Up to 20 bytes of serial into the writable data (5.2.6.1: NUL-padded, no NUL when all 20 are used).
        let at = 0;
        for (let i = 0; i < n && at < VIRTIO_BLK_ID_BYTES; i++) {
          if (segWrite[i] !== 1) continue;
          const room = i === n - 1 ? segLen[i]! - 1 : segLen[i]!;
          const k = Math.min(room, VIRTIO_BLK_ID_BYTES - at);
          m.set(this.serial.subarray(at, at + k), segOff[i]!);
          at += k;
        }
        r.written = at;
        return r;
      }
      default:
        return this.fail(VIRTIO_BLK_S_UNSUPP, `request type ${type}`);
    }
  }

  /** Moves the data: readable bytes after the header to the disk (OUT), or the disk into writable bytes (IN). */
  private transfer(out: boolean, segOff: Float64Array, segLen: Uint32Array, segWrite: Uint8Array, n: number, pos: number): void {
    const m = this.mem.bytes;
    let skip = out ? HEADER : 0;
    for (let i = 0; i < n; i++) {
      if ((segWrite[i] === 1) === out) continue; // OUT reads readable segments; IN fills writable ones
      let off = segOff[i]!, len = segLen[i]!;
      if (!out && i === n - 1) len -= 1; // the status byte
      if (skip > 0) { const k = Math.min(skip, len); off += k; len -= k; skip -= k; }
      if (len === 0) continue;
      if (out) this.disk.write(m, off, len, pos);
      else { this.disk.read(m, off, len, pos); this.mem.written?.(off, len); }
      pos += len;
    }
  }

  protected onReset(): void { this.lastRequestError = ""; }
}
