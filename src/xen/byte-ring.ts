/**
 * One direction of a Xen PV byte ring in a shared page: a data array of `size` bytes (a power of two) and two
 * free-running u32 indexes, producer and consumer; byte index i lives at data[i & (size - 1)] and
 * `prod - cons` (mod 2^32) is the fill, which must never exceed `size`. This is the shape of the XenStore
 * rings (xen/include/public/io/xs_wire.h: req/rsp with XENSTORE_RING_IDX) and of the console rings
 * (io/console.h: in/out with XENCONS_RING_IDX, MASK_XENCONS_IDX).
 *
 * The indexes are guest memory, so the guest can write anything there at any time. Every operation re-reads
 * both, checks the fill before copying anything (`-1` = corrupt: the caller decides between resync and
 * ignoring the guest), masks every position into the array and bounds every copy by the array size: whatever
 * the guest writes, a ByteRing touches only the bytes of its own array and its own index word.
 *
 * Index loads and stores are Atomics (sequentially consistent): the data copy happens after the index load
 * and before the index store, the ordering the protocol's barriers (virt_mb/virt_wmb in Linux) pair with,
 * which matters once a vCPU runs in another thread than the back-end.
 *
 * No saved state: the indexes and data are the shared page (guest RAM), and a ByteRing holds only where they
 * are; its owner rebuilds it over the restored RAM.
 */

export class ByteRing {
  private readonly mask: number;
  private readonly consIdx: number;
  private readonly prodIdx: number;

  /**
   * `u8`/`i32`: views over the same (shared) buffer; `dataOff`: byte offset of the array, `size` bytes;
   * `consOff`/`prodOff`: byte offsets of the u32 indexes (4-aligned). All host-chosen, checked here.
   */
  constructor(private readonly u8: Uint8Array, private readonly i32: Int32Array, private readonly dataOff: number,
    readonly size: number, consOff: number, prodOff: number) {
    if (size <= 0 || (size & (size - 1)) !== 0) throw new RangeError(`ring size ${size} is not a power of two`);
    for (const off of [consOff, prodOff]) {
      if (!Number.isInteger(off) || off < 0 || (off & 3) !== 0 || off + 4 > u8.length) throw new RangeError(`bad index offset ${off}`);
    }
    if (!Number.isInteger(dataOff) || dataOff < 0 || dataOff + size > u8.length) throw new RangeError(`ring data outside the buffer`);
    if (i32.buffer !== u8.buffer) throw new RangeError("u8 and i32 must view the same buffer");
    this.mask = size - 1;
    // i32 may start where u8 does (a domain's GuestMemory) or at the buffer's start: index from i32's own start.
    const at = u8.byteOffset - i32.byteOffset;
    if (at < 0 || (at & 3) !== 0) throw new RangeError("i32 must start at or before u8, 4-byte aligned");
    this.consIdx = (at + consOff) >>> 2;
    this.prodIdx = (at + prodOff) >>> 2;
  }

  get cons(): number { return Atomics.load(this.i32, this.consIdx) >>> 0; }
  get prod(): number { return Atomics.load(this.i32, this.prodIdx) >>> 0; }

  /** Bytes between consumer and producer, or -1 when the indexes are corrupt (fill > size). */
  fill(): number {
    const n = (this.prod - this.cons) >>> 0;
    return n > this.size ? -1 : n;
  }

  /**
   * As the consumer: copies up to `max` (default dst.length) available bytes into dst and advances cons.
   * Returns the count, or -1 (nothing touched) when the indexes are corrupt.
   */
  read(dst: Uint8Array, max = dst.length): number {
    const cons = this.cons;
    const fill = (this.prod - cons) >>> 0;
    if (fill > this.size) return -1;
    const n = Math.min(fill, max, dst.length);
    if (n === 0) return 0;
    const pos = cons & this.mask;
    const first = Math.min(n, this.size - pos);
    const base = this.dataOff;
    dst.set(this.u8.subarray(base + pos, base + pos + first), 0);
    if (first < n) dst.set(this.u8.subarray(base, base + n - first), first);
    Atomics.store(this.i32, this.consIdx, (cons + n) | 0);
    return n;
  }

  /**
   * As the producer: copies up to the free space of src[from..] into the ring and advances prod.
   * Returns the count, or -1 (nothing touched) when the indexes are corrupt.
   */
  write(src: Uint8Array, from = 0): number {
    const prod = this.prod;
    const fill = (prod - this.cons) >>> 0;
    if (fill > this.size) return -1;
    const n = Math.min(this.size - fill, src.length - from);
    if (n <= 0) return 0;
    const pos = prod & this.mask;
    const first = Math.min(n, this.size - pos);
    const base = this.dataOff;
    this.u8.set(src.subarray(from, from + first), base + pos);
    if (first < n) this.u8.set(src.subarray(from + first, from + n), base);
    Atomics.store(this.i32, this.prodIdx, (prod + n) | 0);
    return n;
  }

  /** As the consumer: drops everything (cons := prod), e.g. to resynchronise after corrupt indexes. */
  skip(): void {
    Atomics.store(this.i32, this.consIdx, this.prod | 0);
  }
}
