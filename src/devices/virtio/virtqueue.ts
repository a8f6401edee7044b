/**
 * A split virtqueue (virtio 1.2 section 2.7), the device's side: descriptor table, available ring (driver →
 * device) and used ring (device → driver) in guest RAM, at addresses the driver chose.
 *
 *   descriptor (16 bytes): le64 addr, le32 len, le16 flags (NEXT 1, WRITE 2, INDIRECT 4), le16 next
 *   available ring: le16 flags (NO_INTERRUPT 1), le16 idx, le16 ring[size], (le16 used_event)
 *   used ring:      le16 flags, le16 idx, { le32 id, le32 len }[size], (le16 avail_event)
 *
 * Everything the guest wrote is checked before use:
 *  - the three areas are inside RAM and aligned (16, 2, 4) when the queue is enabled (setup());
 *  - the available index may run ahead of the device by at most the queue size, a head index is below the size;
 *  - a chain's `next` is below the size, and a chain has at most `size` descriptors (so a loop ends there);
 *  - INDIRECT is refused (VIRTIO_F_INDIRECT_DESC is not offered); a readable descriptor after a writable one
 *    is refused (2.7.4.2: "device-readable before device-writable");
 *  - each buffer [addr, addr+len) must lie in RAM: a buffer that does not is kept in the chain with offset -1,
 *    so the device can fail that request (an I/O error to the guest) and go on.
 * A broken ring (the first three) is not recoverable per request: the caller sets DEVICE_NEEDS_RESET.
 *
 * Hot path: the chain lands in preallocated typed arrays (one set per queue, sized at setup), nothing else is
 * allocated per request. Ring fields are read with a DataView over the guest's memory; the queue runs on the
 * thread of the vCPU that notified it (the driver's writes before its notify store are visible: same thread).
 */
import type { DmaMemory } from "../dma.js";

export const VIRTQ_DESC_F_NEXT = 1, VIRTQ_DESC_F_WRITE = 2, VIRTQ_DESC_F_INDIRECT = 4;
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;

/** What pop() found: a chain (its head, >= 0), nothing to do, or a broken ring. */
export const VQ_EMPTY = -1, VQ_BROKEN = -2;

export class SplitQueue {
  size = 0;
  private descOff = 0;
  private availOff = 0;
  private usedOff = 0;
  private lastAvail = 0;
  private usedIdx = 0;
  private readonly view: DataView;
  /** The chain pop() found: per segment its offset in RAM (-1: not all RAM), length, device-writable. */
  segOff = new Float64Array(0);
  segLen = new Uint32Array(0);
  segWrite = new Uint8Array(0);
  segs = 0;
  /** Why the ring broke (for the log), when pop() returned VQ_BROKEN. */
  broken = "";

  constructor(private readonly mem: DmaMemory) {
    const b = mem.bytes;
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  /**
   * Enables the queue at the driver's addresses; returns an error string (the queue stays off) when the size is
   * not a power of two up to `max` or an area is misaligned or not in RAM.
   */
  setup(size: number, desc: number, avail: number, used: number, max: number): string | null {
    if (!(size > 0 && size <= max && (size & (size - 1)) === 0)) return `queue size ${size} is not a power of two up to ${max}`;
    if (desc % 16 !== 0 || avail % 2 !== 0 || used % 4 !== 0) return "a ring area is misaligned";
    const d = this.mem.offsetOf(desc, 16 * size), a = this.mem.offsetOf(avail, 6 + 2 * size), u = this.mem.offsetOf(used, 6 + 8 * size);
    if (d < 0 || a < 0 || u < 0) return "a ring area is outside guest RAM";
    this.size = size; this.descOff = d; this.availOff = a; this.usedOff = u;
    this.lastAvail = 0; this.usedIdx = 0;
    if (this.segOff.length < size) {
      this.segOff = new Float64Array(size); this.segLen = new Uint32Array(size); this.segWrite = new Uint8Array(size);
    }
    return null;
  }

  reset(): void { this.size = 0; this.lastAvail = 0; this.usedIdx = 0; this.segs = 0; }

  get enabled(): boolean { return this.size > 0; }

  /** The driver asked for no interrupts (a hint: 2.7.7). */
  get noInterrupt(): boolean { return (this.view.getUint16(this.availOff, true) & VIRTQ_AVAIL_F_NO_INTERRUPT) !== 0; }

  /** Takes the next available chain into segOff/segLen/segWrite; returns its head, VQ_EMPTY or VQ_BROKEN. */
  pop(): number {
    const v = this.view, size = this.size;
    const availIdx = v.getUint16(this.availOff + 2, true);
    const pending = (availIdx - this.lastAvail) & 0xffff;
    if (pending === 0) return VQ_EMPTY;
    if (pending > size) return this.fail(`available index ${availIdx} is ${pending} ahead of the device (queue size ${size})`);
    const head = v.getUint16(this.availOff + 4 + 2 * (this.lastAvail % size), true);
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    if (head >= size) return this.fail(`head ${head} is not below the queue size ${size}`);
    let i = head, n = 0, sawWrite = false;
    for (;;) {
      if (n >= size) return this.fail(`the chain from ${head} is longer than the queue (a loop)`);
      const at = this.descOff + 16 * i;
      const lo = v.getUint32(at, true), hi = v.getUint32(at + 4, true);
      const len = v.getUint32(at + 8, true), flags = v.getUint16(at + 12, true), next = v.getUint16(at + 14, true);
      if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) return this.fail("an indirect descriptor (VIRTIO_F_INDIRECT_DESC was not offered)");
      const w = (flags & VIRTQ_DESC_F_WRITE) !== 0;
      if (!w && sawWrite) return this.fail(`descriptor ${i}: device-readable after device-writable`);
      sawWrite ||= w;
      this.segOff[n] = this.mem.offsetOf(hi * 2 ** 32 + lo, len);
      this.segLen[n] = len;
      this.segWrite[n] = w ? 1 : 0;
      n++;
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) break;
      if (next >= size) return this.fail(`descriptor ${i}: next ${next} is not below the queue size ${size}`);
      i = next;
    }
    this.segs = n;
    return head;
  }

  private fail(why: string): number { this.broken = why; return VQ_BROKEN; }

  /** Returns chain `head` to the driver, `len` bytes written into its buffers. */
  push(head: number, len: number): void {
    const v = this.view, slot = this.usedOff + 4 + 8 * (this.usedIdx % this.size);
    v.setUint32(slot, head, true);
    v.setUint32(slot + 4, len, true);
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    // The index last: the driver reads the element only after it sees the new index (2.7.8).
    v.setUint16(this.usedOff + 2, this.usedIdx, true);
  }
}
