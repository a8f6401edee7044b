/**
 * qcow2 refcounts (QEMU docs/interop/qcow2.txt, "Host cluster management"): a two-level table — the refcount
 * table (in memory here, written through) of refcount block offsets, each block an array of 2^refcount_order-bit
 * counters, one per host cluster. A cluster is in use while its count is non-zero; `qemu-img check` compares
 * these counts with the references it finds, so every allocation and release here updates them exactly, in an
 * order that leaves at worst a leaked cluster (never a reference to a free one) if the host stops half-way:
 * the count goes up before a reference is written, and down after it is gone.
 *
 * Allocation is at the end of the file (`end`): new refcount blocks, a grown refcount table, L2 tables and data
 * clusters all land there. Clusters freed by a discard keep count 0 and are not reused (the file does not
 * shrink; `qemu-img check` reports them as free space, not as errors).
 */
import type { Qcow2Header } from "./qcow2-header.js";
import { MAX_HOST_OFFSET, MAX_REFTABLE_BYTES, corrupt, u64 } from "./qcow2-header.js";
import { StorageError, preadUpTo, pwriteAll } from "./block-image.js";

/** Refcount blocks kept in memory (each one cluster), least recently used replaced. */
const BLOCK_CACHE = 4;

export class Refcounts {
  private readonly cs: number;
  private readonly bits: number;
  /** Counters per block, and the largest count one can hold. */
  private readonly perBlock: number;
  private readonly max: number;
  /** Refcount block offsets by table index (0: no block, all its clusters free). */
  private table: Float64Array;
  private tableOffset: number;
  private tableClusters: number;
  /** Offsets of every refcount block (overlap checks: data must never be written over one). */
  readonly blocks = new Set<number>();
  private readonly cacheOff: Float64Array;
  private readonly cacheBuf: Uint8Array[] = [];
  private readonly cacheUse: Float64Array;
  private tick = 0;
  /** The next host offset allocate() tries (a cluster boundary at or past the end of the file). */
  end: number;

  constructor(private readonly fd: number, private readonly path: string, h: Qcow2Header, fileSize: number,
    /** Whether a host range holds other metadata (header, L1, L2 tables): a refcount block there is corrupt. */
    isOtherMeta: (off: number) => boolean) {
    this.cs = h.clusterSize;
    this.bits = 2 ** h.refcountOrder;
    this.perBlock = (this.cs * 8) / this.bits;
    this.max = this.bits >= 53 ? 2 ** 53 - 1 : 2 ** this.bits - 1;
    this.tableOffset = h.refcountTableOffset;
    this.tableClusters = h.refcountTableClusters;
    const raw = new Uint8Array(this.tableClusters * this.cs);
    if (preadUpTo(fd, raw, 0, raw.length, this.tableOffset) !== raw.length) throw corrupt(path, "refcount table cut short by the end of the file");
    const dv = new DataView(raw.buffer);
    this.table = new Float64Array(raw.length / 8);
    for (let i = 0; i < this.table.length; i++) {
      const off = u64(dv, i * 8, `refcount table entry ${i}`, path);
      if (off === 0) continue;
      // Bits 0-8 are reserved (must be zero), the block must be a whole cluster inside the file, apart from
      // other metadata and not listed twice.
      if (off % this.cs !== 0) throw corrupt(path, `refcount block ${i} at ${off} is not cluster-aligned`);
      if (off + this.cs > fileSize) throw corrupt(path, `refcount block ${i} at ${off} is past the end of the ${fileSize}-byte file`);
      if (isOtherMeta(off) || this.inTable(off) || this.blocks.has(off)) throw corrupt(path, `refcount block ${i} at ${off} overlaps other metadata`);
      this.blocks.add(off);
      this.table[i] = off;
    }
    this.cacheOff = new Float64Array(BLOCK_CACHE).fill(-1);
    this.cacheUse = new Float64Array(BLOCK_CACHE);
    for (let i = 0; i < BLOCK_CACHE; i++) this.cacheBuf.push(new Uint8Array(this.cs));
    this.end = Math.ceil(fileSize / this.cs) * this.cs;
  }

  /** Whether host offset `off` lies inside the refcount table. */
  inTable(off: number): boolean {
    return off >= this.tableOffset && off < this.tableOffset + this.tableClusters * this.cs;
  }

  /** The refcount of host cluster number `c`. */
  get(c: number): number {
    const ti = Math.floor(c / this.perBlock);
    if (ti >= this.table.length || this.table[ti] === 0) return 0;
    return this.entry(this.cacheBuf[this.load(this.table[ti]!)]!, c - ti * this.perBlock);
  }

  /** Adds `delta` (+1 or -1) to the refcount of host cluster `c`, creating its refcount block if needed. */
  add(c: number, delta: number): void {
    const ti = Math.floor(c / this.perBlock);
    const slot = this.load(this.blockFor(ti));
    const buf = this.cacheBuf[slot]!, i = c - ti * this.perBlock;
    const v = this.entry(buf, i) + delta;
    if (v < 0) throw corrupt(this.path, `refcount of cluster ${c} (offset ${c * this.cs}) would drop below zero`);
    if (v > this.max) throw new StorageError("STORAGE_UNSUPPORTED", this.path, `qcow2 image ${this.path}: refcount of cluster ${c} would exceed ${this.max} (refcount_bits ${this.bits})`);
    this.setEntry(buf, i, v, this.cacheOff[slot]!);
  }

  /** Releases every host cluster overlapping [off, off+len) once (a data cluster, or a compressed run). */
  free(off: number, len: number): void {
    const first = Math.floor(off / this.cs), last = Math.floor((off + len - 1) / this.cs);
    for (let c = first; c <= last; c++) this.add(c, -1);
  }

  /**
   * `n` contiguous clusters at the end of the file with refcount 1 each; returns the first's offset. The
   * caller writes them (until then they read as zeros: past the end of the file or in a hole).
   */
  allocate(n: number): number {
    const start = this.freeRunAtEnd(n);
    this.end = start + n * this.cs;
    if (this.end > MAX_HOST_OFFSET) throw new StorageError("STORAGE_UNSUPPORTED", this.path, `qcow2 image ${this.path}: the file would grow past 2^52 bytes`);
    for (let k = 0; k < n; k++) this.add(start / this.cs + k, 1);
    return start;
  }

  /**
   * `end`, after checking that the n clusters from there are free. Everything from `end` on lies past the end
   * of the file; a count there comes from a crash between a refcount update and the write it was for, or from
   * damage. Either way qemu-img must repair it first: skipping such clusters could send allocations (and a
   * sparse file) as far as a damaged block says.
   */
  private freeRunAtEnd(n: number): number {
    const start = this.end;
    for (let k = 0; k < n; k++) {
      const c = start / this.cs + k, v = this.get(c);
      if (v !== 0) {
        throw corrupt(this.path, `cluster ${c} past the end of the file has refcount ${v} (leaked or damaged refcounts; qemu-img check -r all repairs them)`);
      }
    }
    return start;
  }

  /** The refcount block for table index ti, made (and the table grown) if missing. */
  private blockFor(ti: number): number {
    if (ti >= this.table.length) this.grow(ti + 1);
    const have = this.table[ti]!;
    if (have !== 0) return have;
    // A new block at the end: zeros on disk first, then the table entry, then its own count (which may be in
    // itself — a block covers the clusters around it — or need yet another block).
    const off = this.freeRunAtEnd(1);
    this.end = off + this.cs;
    const slot = this.victim();
    this.cacheBuf[slot]!.fill(0);
    this.cacheOff[slot] = off;
    this.cacheUse[slot] = ++this.tick;
    pwriteAll(this.fd, this.cacheBuf[slot]!, 0, this.cs, off);
    this.table[ti] = off;
    this.blocks.add(off);
    this.writeTableEntry(ti);
    this.add(off / this.cs, 1);
    return off;
  }

  /**
   * Grows the refcount table to at least `minEntries`: a new, larger table at the end of the file (written
   * whole, counted), the header switched to it in one write, then the old table's clusters released.
   */
  private grow(minEntries: number): void {
    const perCluster = this.cs / 8;
    let clusters = Math.ceil(Math.max(minEntries, this.table.length * 2) / perCluster);
    // Enough entries to count the new table's own clusters and the blocks made for them too.
    while (Math.ceil((this.end / this.cs + clusters + 4) / this.perBlock) > clusters * perCluster) clusters++;
    if (clusters * this.cs > MAX_REFTABLE_BYTES) {
      throw new StorageError("STORAGE_UNSUPPORTED", this.path, `qcow2 image ${this.path}: the refcount table would exceed ${MAX_REFTABLE_BYTES} bytes`);
    }
    const oldOff = this.tableOffset, oldClusters = this.tableClusters;
    const table = new Float64Array(clusters * perCluster);
    table.set(this.table);
    const off = this.freeRunAtEnd(clusters);
    this.end = off + clusters * this.cs;
    this.table = table;
    this.tableOffset = off;
    this.tableClusters = clusters;
    const raw = new Uint8Array(clusters * this.cs), dv = new DataView(raw.buffer);
    for (let i = 0; i < table.length; i++) setU64(dv, i * 8, table[i]!);
    pwriteAll(this.fd, raw, 0, raw.length, off);
    for (let k = 0; k < clusters; k++) this.add(off / this.cs + k, 1); // may add blocks: entries written to the new table
    const hdr = new Uint8Array(12), hv = new DataView(hdr.buffer);
    setU64(hv, 0, off);
    hv.setUint32(8, clusters);
    pwriteAll(this.fd, hdr, 0, 12, 48); // refcount_table_offset and refcount_table_clusters (qcow2.txt bytes 48-59)
    for (let k = 0; k < oldClusters; k++) this.add(oldOff / this.cs + k, -1);
  }

  private writeTableEntry(ti: number): void {
    const b = new Uint8Array(8);
    setU64(new DataView(b.buffer), 0, this.table[ti]!);
    pwriteAll(this.fd, b, 0, 8, this.tableOffset + ti * 8);
  }

  /** The cache slot holding the block at `off`, read in if needed. */
  private load(off: number): number {
    for (let s = 0; s < BLOCK_CACHE; s++) {
      if (this.cacheOff[s] === off) { this.cacheUse[s] = ++this.tick; return s; }
    }
    const s = this.victim();
    const buf = this.cacheBuf[s]!;
    if (preadUpTo(this.fd, buf, 0, this.cs, off) !== this.cs) throw corrupt(this.path, `refcount block at ${off} cut short by the end of the file`);
    this.cacheOff[s] = off;
    this.cacheUse[s] = ++this.tick;
    return s;
  }

  private victim(): number {
    let s = 0;
    for (let i = 1; i < BLOCK_CACHE; i++) if (this.cacheUse[i]! < this.cacheUse[s]!) s = i;
    return s;
  }

  /** Counter i of a block (qcow2.txt: sub-byte counters are packed from the least significant bit). */
  private entry(b: Uint8Array, i: number): number {
    switch (this.bits) {
      case 1: case 2: case 4: {
        const per = 8 / this.bits;
        return (b[Math.floor(i / per)]! >> ((i % per) * this.bits)) & (this.bits === 4 ? 15 : this.bits === 2 ? 3 : 1);
      }
      case 8: return b[i]!;
      case 16: return (b[i * 2]! << 8) | b[i * 2 + 1]!;
      case 32: return ((b[i * 4]! << 24) | (b[i * 4 + 1]! << 16) | (b[i * 4 + 2]! << 8) | b[i * 4 + 3]!) >>> 0;
      default: {
        const dv = new DataView(b.buffer, b.byteOffset + i * 8, 8);
        const hi = dv.getUint32(0);
        if (hi > 0x1fffff) throw corrupt(this.path, `a 64-bit refcount above 2^53`);
        return hi * 0x100000000 + dv.getUint32(4);
      }
    }
  }

  /** Sets counter i of the block cached in `b` (at host offset `blockOff`) and writes the bytes it lives in. */
  private setEntry(b: Uint8Array, i: number, v: number, blockOff: number): void {
    let at: number, len: number;
    switch (this.bits) {
      case 1: case 2: case 4: {
        const per = 8 / this.bits, shift = (i % per) * this.bits, mask = ((1 << this.bits) - 1) << shift;
        at = Math.floor(i / per);
        b[at] = (b[at]! & ~mask) | ((v << shift) & mask);
        len = 1;
        break;
      }
      case 8: at = i; b[at] = v; len = 1; break;
      case 16: at = i * 2; b[at] = v >> 8; b[at + 1] = v & 0xff; len = 2; break;
      case 32: at = i * 4; new DataView(b.buffer, b.byteOffset).setUint32(at, v); len = 4; break;
      default: at = i * 8; setU64(new DataView(b.buffer, b.byteOffset), at, v); len = 8; break;
    }
    pwriteAll(this.fd, b, at, len, blockOff + at);
  }
}

/** Writes a non-negative integer below 2^53 as a big-endian u64. */
export function setU64(dv: DataView, at: number, v: number): void {
  dv.setUint32(at, Math.floor(v / 0x100000000));
  dv.setUint32(at + 4, v >>> 0);
}
