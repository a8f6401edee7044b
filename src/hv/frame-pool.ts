/**
 * The hypervisor's machine-frame pool: how many 4 KiB frames the host gives Xeno for guests, and how many are
 * free (xl info's total_memory / free_memory). Domains claim their frames at creation, give them back when the
 * balloon driver releases pages (XENMEM_decrease_reservation) and when they are destroyed, and claim again on
 * XENMEM_populate_physmap. The counters live in a SharedArrayBuffer and change with Atomics, so every domain's
 * worker thread accounts against the one pool.
 *
 * What "free" means today (docs/memory.md): each domain's RAM is its own SharedArrayBuffer (guest-physical =
 * buffer offset). A frame the balloon releases is unmapped from the domain's P2M (src/xen/p2m.ts: the guest's
 * accesses to it fault), zeroed, and counted free here, so a new domain can be created into it; but the host
 * pages behind it stay allocated to the old domain's buffer until that domain ends, because a SharedArrayBuffer
 * cannot give part of itself back (its only size change is grow()). The exception: a frame the guest never
 * wrote was never resident, and releasing it does not make it so (the P2M writes zeros only over data) —
 * though Debian's kernel zeroes each page itself before giving it back (init_on_alloc, xen_scrub_pages).
 * This pool therefore accounts frames, not host memory; a single machine-memory buffer with per-domain P2M
 * indirection would make the return physical. FramePool is the FrameAccount src/xen's P2M accounts against.
 *
 * Layout of the buffer (Int32Array): [0] total frames, [1] free frames, [2] frames claimed by domains (for
 * a consistency check: total = free + claimed).
 */
import type { FrameAccount } from "../xen/p2m.js";

export const FRAME_BYTES = 4096;
const TOTAL = 0, FREE = 1, CLAIMED = 2;

export class FramePool implements FrameAccount {
  readonly buffer: SharedArrayBuffer;
  private readonly c: Int32Array;

  /** A new pool of `totalFrames` frames, or a view of an existing pool's buffer (another thread's). */
  constructor(totalFramesOrBuffer: number | SharedArrayBuffer) {
    if (typeof totalFramesOrBuffer === "number") {
      const n = totalFramesOrBuffer;
      if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) throw new RangeError(`frame pool size ${n}: 0..2^31-1 frames`);
      this.buffer = new SharedArrayBuffer(16);
      this.c = new Int32Array(this.buffer);
      this.c[TOTAL] = n;
      this.c[FREE] = n;
    } else {
      if (totalFramesOrBuffer.byteLength < 12) throw new RangeError("not a frame pool buffer");
      this.buffer = totalFramesOrBuffer;
      this.c = new Int32Array(this.buffer);
    }
  }

  /** A pool of `bytes` of host memory (rounded down to frames). */
  static ofBytes(bytes: number): FramePool { return new FramePool(Math.floor(bytes / FRAME_BYTES)); }

  get totalFrames(): number { return Atomics.load(this.c, TOTAL); }
  get freeFrames(): number { return Atomics.load(this.c, FREE); }
  get claimedFrames(): number { return Atomics.load(this.c, CLAIMED); }

  /** Takes n frames if that many are free (all or nothing); false otherwise. */
  claim(n: number): boolean {
    if (!Number.isInteger(n) || n < 0) return false;
    for (;;) {
      const free = Atomics.load(this.c, FREE);
      if (free < n) return false;
      if (Atomics.compareExchange(this.c, FREE, free, free - n) === free) {
        Atomics.add(this.c, CLAIMED, n);
        return true;
      }
    }
  }

  /** Gives n frames back (n must have been claimed). */
  release(n: number): void {
    if (!Number.isInteger(n) || n <= 0) return;
    Atomics.sub(this.c, CLAIMED, n);
    Atomics.add(this.c, FREE, n);
  }
}
