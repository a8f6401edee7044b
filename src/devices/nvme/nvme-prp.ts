/**
 * PRP walking (NVMe Base 1.4c section 4.3): a command's data pointer (PRP1, PRP2) turned into a list of ranges of
 * guest RAM, each checked before any byte moves.
 *
 *   PRP1   the first page, with an offset (dword aligned) into it
 *   PRP2   when the data ends in the next page: that page (offset 0); when it needs more pages: a PRP list pointer
 *          (dword aligned offset), whose 8-byte entries name pages (offset 0); the last entry of a list page points
 *          to the next list page when more entries follow
 *
 * Every page and every list entry must be in the guest's RAM (DmaMemory.offsetOf: not the flash, not MMIO, not
 * past the end) or the command fails with Data Transfer Error; a misaligned entry fails with PRP Offset Invalid.
 * The walk is bounded by the transfer length (the caller caps it at MDTS), so a list pointing back at itself ends.
 *
 * Hot path (every read and write): the result lives in typed arrays owned by the walker, reused per command;
 * physically adjacent pages merge into one range, so a contiguous buffer costs one disk call.
 */
import type { DmaMemory } from "../dma.js";
import { PAGE, SC_DATA_TRANSFER_ERROR, SC_PRP_OFFSET_INVALID, SC_SUCCESS } from "./nvme-defs.js";

const TWO32 = 2 ** 32;

export class PrpWalker {
  /** The ranges: offsets into mem.bytes and lengths; `count` of them valid after walk(). */
  readonly off: Float64Array;
  readonly len: Uint32Array;
  count = 0;
  /** Why the last walk failed (for the device's log). */
  why = "";
  private readonly view: DataView;

  constructor(private readonly mem: DmaMemory, maxPages: number) {
    this.off = new Float64Array(maxPages + 1);
    this.len = new Uint32Array(maxPages + 1);
    this.view = new DataView(mem.bytes.buffer, mem.bytes.byteOffset, mem.bytes.byteLength);
  }

  /**
   * Maps `bytes` (> 0, at most maxPages pages beyond the first) described by PRP1 (lo, hi) and PRP2 (lo, hi).
   * Returns SC_SUCCESS or the status for the command.
   */
  walk(p1lo: number, p1hi: number, p2lo: number, p2hi: number, bytes: number): number {
    this.count = 0;
    if ((p1lo & 3) !== 0) return this.fail(SC_PRP_OFFSET_INVALID, "PRP1 is not dword aligned");
    const first = Math.min(bytes, PAGE - (p1lo & (PAGE - 1)));
    let st = this.add(p1hi * TWO32 + (p1lo >>> 0), first);
    if (st !== SC_SUCCESS) return st;
    let left = bytes - first;
    if (left === 0) return SC_SUCCESS;
    const p2 = p2hi * TWO32 + (p2lo >>> 0);
    if (left <= PAGE) {
      if ((p2lo & (PAGE - 1)) !== 0) return this.fail(SC_PRP_OFFSET_INVALID, "PRP2 (a data page) has an offset");
      return this.add(p2, left);
    }
    // PRP2 is a list pointer.
    if ((p2lo & 3) !== 0) return this.fail(SC_PRP_OFFSET_INVALID, "the PRP list pointer is not dword aligned");
    let entry = p2;
    while (left > 0) {
      const at = this.mem.offsetOf(entry, 8);
      if (at < 0) return this.fail(SC_DATA_TRANSFER_ERROR, `PRP list entry at 0x${entry.toString(16)} is outside guest RAM`);
      const lo = this.view.getUint32(at, true), hi = this.view.getUint32(at + 4, true);
      const lastInPage = ((entry + 8) % PAGE) === 0;
      if (lastInPage && left > PAGE) {
        // The last entry of a list page with more than one page to go: the next list page (section 4.3).
        if ((lo & (PAGE - 1)) !== 0) return this.fail(SC_PRP_OFFSET_INVALID, "a PRP list's next-list pointer has an offset");
        entry = hi * TWO32 + lo;
        continue;
      }
      if ((lo & (PAGE - 1)) !== 0) return this.fail(SC_PRP_OFFSET_INVALID, "a PRP list entry has an offset");
      const n = Math.min(left, PAGE);
      st = this.add(hi * TWO32 + lo, n);
      if (st !== SC_SUCCESS) return st;
      left -= n;
      entry += 8;
    }
    return SC_SUCCESS;
  }

  private add(pa: number, n: number): number {
    const at = this.mem.offsetOf(pa, n);
    if (at < 0) return this.fail(SC_DATA_TRANSFER_ERROR, `a data page at 0x${pa.toString(16)} (+${n}) is outside guest RAM`);
    const k = this.count;
    if (k > 0 && this.off[k - 1]! + this.len[k - 1]! === at) { this.len[k - 1]! += n; return SC_SUCCESS; }
    if (k === this.off.length) return this.fail(SC_DATA_TRANSFER_ERROR, "more PRP entries than the transfer needs");
    this.off[k] = at; this.len[k] = n; this.count = k + 1;
    return SC_SUCCESS;
  }

  private fail(status: number, why: string): number {
    this.why = why;
    this.count = 0;
    return status;
  }

  /** Copies src[0, n) into the walked ranges (n ≤ the walked length). */
  copyIn(src: Uint8Array, n: number): void {
    const m = this.mem.bytes;
    let done = 0;
    for (let i = 0; i < this.count && done < n; i++) {
      const k = Math.min(this.len[i]!, n - done);
      m.set(src.subarray(done, done + k), this.off[i]!);
      this.mem.written?.(this.off[i]!, k);
      done += k;
    }
  }

  /** Copies the walked ranges' first n bytes out into dst[0, n). */
  copyOut(dst: Uint8Array, n: number): void {
    const m = this.mem.bytes;
    let done = 0;
    for (let i = 0; i < this.count && done < n; i++) {
      const k = Math.min(this.len[i]!, n - done), o = this.off[i]!;
      dst.set(m.subarray(o, o + k), done);
      done += k;
    }
  }
}
