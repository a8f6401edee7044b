/**
 * Fixed-size slots for the decode cache's per-page tables (CodeCache: a compiled block's length, heat, end
 * marks and dispatcher slot per word of a code page: 8 KiB a page), carved from 256 KiB chunks and reused.
 *
 * Why not one typed array each: a boot creates and drops thousands of code pages (the sweep drops cold ones,
 * they come back), and four small ArrayBuffers per page are four malloc'd blocks among V8's own long-lived
 * ones. glibc keeps what such churn frees (it can only give back the top of its heap), so the freed tables
 * stayed resident: ~19 MiB of a booted domain with the compiler on and nothing compiled (XENO_JIT_HOT=60000,
 * bench/density/jit-memory, docs/benchmarks.md session 24). Slots here are reused, a chunk is one allocation
 * large enough for its own mapping, and chunks at the top that fall empty are let go (trim).
 */
export const SLOTS_PER_CHUNK = 32;

export class PageSlab {
  private readonly chunks: ArrayBuffer[] = [];
  /** Per chunk: a bit per slot in use. */
  private readonly used: number[] = [];
  private live = 0;

  constructor(readonly slotBytes: number) {
    if (slotBytes <= 0 || slotBytes % 8 !== 0) throw new RangeError(`PageSlab: slot size ${slotBytes} is not a positive multiple of 8`);
  }

  /** Slots in use, and the bytes of the chunks held. */
  get slots(): number { return this.live; }
  get bytes(): number { return this.chunks.length * SLOTS_PER_CHUNK * this.slotBytes; }

  /** A free slot, zeroed: the lowest one, so long-lived slots gather in the low chunks and the top ones can go. */
  alloc(): number {
    let c = 0;
    while (c < this.chunks.length && this.used[c] === -1) c++;
    if (c === this.chunks.length) {
      this.chunks.push(new ArrayBuffer(SLOTS_PER_CHUNK * this.slotBytes));
      this.used.push(0);
    }
    const free = ~this.used[c]!;
    const bit = 31 - Math.clz32(free & -free);
    this.used[c] = this.used[c]! | (1 << bit);
    this.live++;
    const slot = c * SLOTS_PER_CHUNK + bit;
    new Uint8Array(this.chunks[c]!, bit * this.slotBytes, this.slotBytes).fill(0);
    return slot;
  }

  /** Gives a slot back (its views must no longer be used). */
  release(slot: number): void {
    const c = (slot / SLOTS_PER_CHUNK) | 0, bit = 1 << (slot % SLOTS_PER_CHUNK);
    if (c >= this.chunks.length || (this.used[c]! & bit) === 0) throw new Error(`PageSlab.release: slot ${slot} is not in use`);
    this.used[c] = this.used[c]! & ~bit;
    this.live--;
  }

  /** The buffer and byte offset of a slot. */
  buffer(slot: number): ArrayBuffer { return this.chunks[(slot / SLOTS_PER_CHUNK) | 0]!; }
  offset(slot: number): number { return (slot % SLOTS_PER_CHUNK) * this.slotBytes; }

  /** Lets the empty chunks at the top go (to the GC, which frees them). Returns how many. */
  trim(): number {
    let n = 0;
    while (this.chunks.length > 0 && this.used[this.used.length - 1] === 0) { this.chunks.pop(); this.used.pop(); n++; }
    return n;
  }
}
