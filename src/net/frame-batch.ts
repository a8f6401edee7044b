/**
 * Ethernet frames crossing a thread boundary in batches: a domain's worker thread and the hypervisor's main
 * thread (where the bridge sockets are) exchange one message per batch instead of one per frame
 * (src/hv/vm-host.ts netRx, src/hv/vm-worker.ts). A message costs a structured clone, a port wake-up and, on
 * the worker side, a doorbell ring; at ~6,000 frames for 8 MiB of TCP that was a cost per frame the batch pays
 * once per slice (worker → host) or once per socket read (host → worker).
 *
 * Layout of a batch: `bytes` holds the frames back to back; `meta` holds two u32 per frame, the vif's devid
 * and the frame's length, in order. The staging buffer is reused; a flush copies the used part out (one
 * allocation per batch, none per frame), so the message's buffers can be transferred. It is allocated at the
 * first frame: a domain without vifs (or one that sends nothing) costs none of it.
 */

/** One batch as it travels in a message (both buffers transferable). */
export interface FrameBatch {
  meta: Uint32Array;
  bytes: Uint8Array;
}

/** The buffers to transfer with a batch's message (flush() made them: plain ArrayBuffers, owned by the batch). */
export function batchTransfer(b: FrameBatch): ArrayBuffer[] {
  return [b.meta.buffer as ArrayBuffer, b.bytes.buffer as ArrayBuffer];
}

/** Largest frame a batch carries: netif's u16 packet size plus an Ethernet header and a VLAN tag. */
const MAX_FRAME = 0xffff + 18;

export class FrameBatcher {
  private buf: Uint8Array | null = null;
  private meta: Uint32Array | null = null;
  private used = 0;
  private count = 0;

  /**
   * `capacity` bytes and `maxFrames` frames per batch (at least one largest frame); `emit` gets each batch
   * (it owns the buffers).
   */
  constructor(private readonly capacity: number, private readonly maxFrames: number, private readonly emit: (b: FrameBatch) => void) {}

  /** Frames waiting for flush(). */
  get pending(): number { return this.count; }

  /** Copies `frame` (of vif `vif`) into the batch, flushing first when it would not fit. */
  add(vif: number, frame: Uint8Array): void {
    const len = frame.length;
    if (len > MAX_FRAME) throw new RangeError(`frame of ${len} bytes (at most ${MAX_FRAME})`);
    let buf = this.buf, meta = this.meta;
    if (buf === null || meta === null) {
      buf = this.buf = new Uint8Array(Math.max(this.capacity, MAX_FRAME));
      meta = this.meta = new Uint32Array(2 * this.maxFrames);
    }
    if (this.used + len > buf.length || this.count === this.maxFrames) this.flush();
    buf.set(frame, this.used);
    meta[2 * this.count] = vif;
    meta[2 * this.count + 1] = len;
    this.used += len;
    this.count++;
  }

  /** Emits what is batched (nothing when empty). */
  flush(): void {
    if (this.count === 0 || this.buf === null || this.meta === null) return;
    const b: FrameBatch = { meta: this.meta.slice(0, 2 * this.count), bytes: this.buf.slice(0, this.used) };
    this.used = 0;
    this.count = 0;
    this.emit(b);
  }
}

/**
 * Calls `fn` for each frame of a batch received in a message, with a view of its bytes (valid as long as the
 * batch). Checks the layout first (a batch comes from another thread of the same process, but a bad one
 * must not read past its buffer): returns false and calls nothing when the lengths do not add up.
 */
export function forEachFrame(b: FrameBatch, fn: (vif: number, frame: Uint8Array) => void): boolean {
  const { meta, bytes } = b;
  if (!(meta instanceof Uint32Array) || !(bytes instanceof Uint8Array) || (meta.length & 1) !== 0) return false;
  let total = 0;
  for (let i = 1; i < meta.length; i += 2) total += meta[i]!;
  if (total !== bytes.length) return false;
  let at = 0;
  for (let i = 0; i < meta.length; i += 2) {
    const len = meta[i + 1]!;
    fn(meta[i]!, bytes.subarray(at, at + len));
    at += len;
  }
  return true;
}
