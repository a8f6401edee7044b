/**
 * qcow2 images (QEMU docs/interop/qcow2.txt), read and written: the virtual disk is cut into clusters
 * (2^cluster_bits bytes), each mapped through a two-level table — the L1 table (in memory, written through)
 * of L2 table offsets, each L2 table (cached, written through) of cluster descriptors: unallocated (read from
 * the backing file, or zeros), all-zeros (version 3), a host cluster, or compressed data (deflate; zstd is
 * refused when met). Writes allocate clusters at the end of the file (qcow2-refcount.ts keeps the counts
 * `qemu-img check` verifies); a partial write to a cluster that has no host cluster of its own yet fills the
 * rest of it from what it read as before (copy-on-write from the backing file, the compressed data, or zeros).
 *
 * Refused at open, with the reason: encryption, external data files, extended L2 entries, unknown incompatible
 * features; for writing also images marked dirty or corrupt and images with internal snapshots. Everything a
 * file says is checked before it is used: table offsets inside the file, cluster-aligned and apart from other
 * metadata, sizes within QEMU's own limits, the backing chain at most MAX_BACKING_DEPTH deep and without loops.
 *
 * Hot path (a cluster whose L2 table is cached): no allocation; the mapping of one cluster goes through the
 * scratch fields m*.
 */
import { closeSync, fdatasyncSync, fstatSync, realpathSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { constants as zlibConstants, inflateRawSync } from "node:zlib";
import { type BlockImage, RawImage, StorageError, openFile, preadUpTo, probeFormat, pwriteAll } from "./block-image.js";
import { HDR_AUTOCLEAR, INCOMPAT_COMPRESSION, INCOMPAT_CORRUPT, INCOMPAT_DIRTY, MAX_HOST_OFFSET, corrupt, parseHeader, type Qcow2Header } from "./qcow2-header.js";
import { Refcounts } from "./qcow2-refcount.js";

/** Backing files deeper than this are refused (a chain that long is a mistake or a loop through other names). */
export const MAX_BACKING_DEPTH = 16;
/** Bytes of L2 tables cached (at least two tables whatever the cluster size). */
const L2_CACHE_BYTES = 4 * 1024 * 1024;
/** What lookup() found (in mType). */
const UNALLOCATED = 0, ZERO = 1, NORMAL = 2, COMPRESSED = 3;
/** L1/L2 entry flags in the high word: bit 63 COPIED (refcount is exactly 1), bit 62 compressed. */
const COPIED = 0x80000000, COMPRESSED_BIT = 0x40000000;
/** L2 entry bit 0 (version 3): the cluster reads as zeros. */
const ZERO_BIT = 1;

export interface Qcow2OpenOptions {
  /** Backing files already open above this one (real paths), for loop detection. */
  chain?: string[];
  /** fromFd: leave the descriptor open when the image is refused (its owner closes it). */
  keepFdOnError?: boolean;
}

export class Qcow2Image implements BlockImage {
  readonly format = "qcow2";
  readonly bytes: number;
  readonly header: Qcow2Header;
  /** The backing image (null: none), opened read-only. */
  readonly backing: BlockImage | null;
  private fd: number;
  private readonly cs: number;
  private readonly cbits: number;
  /** L2 entries per table, as a power of two. */
  private readonly l2bits: number;
  /** L1: L2 table offsets (0: none) and their COPIED flags. */
  private readonly l1Off: Float64Array;
  private readonly l1Copied: Uint8Array;
  /** Offsets of every L2 table (overlap checks). */
  private readonly l2Tables = new Set<number>();
  private readonly refs: Refcounts;
  private readonly cacheOff: Float64Array;
  private readonly cacheBuf: Uint8Array[] = [];
  private readonly cacheDv: DataView[] = [];
  private readonly cacheUse: Float64Array;
  private tick = 0;
  /** One cluster of scratch (copy-on-write), one of zeros, and the last decompressed cluster. */
  private readonly scratch: Uint8Array;
  private zeros: Uint8Array | null = null;
  private inflated: Uint8Array | null = null;
  private inflatedFrom = -1;
  private readonly eight = new Uint8Array(8);
  private readonly eightDv = new DataView(this.eight.buffer);
  /** lookup()'s result: kind, host offset, compressed length; the L2 cache slot and entry index it came from. */
  private mType = 0;
  private mOff = 0;
  private mLen = 0;
  private mCopied = false;
  private mIdx = 0;

  private constructor(fd: number, readonly path: string, readonly readOnly: boolean, chain: string[]) {
    this.fd = fd;
    const fileSize = fstatSync(fd).size;
    // The header and its extensions lie in the first cluster: read cluster_bits (bytes 20-23), then that cluster
    // (parseHeader checks the magic and the range of cluster_bits).
    const first = new Uint8Array(Math.min(fileSize, 24));
    preadUpTo(fd, first, 0, first.length, 0);
    const cbits = first.length === 24 ? new DataView(first.buffer).getUint32(20) : 0;
    const whole = new Uint8Array(Math.min(fileSize, cbits >= 9 && cbits <= 21 ? 2 ** cbits : 4096));
    preadUpTo(fd, whole, 0, whole.length, 0);
    const h = parseHeader(whole, fileSize, path);
    this.header = h;
    if (!readOnly) {
      if ((h.incompatible & INCOMPAT_DIRTY) !== 0) throw this.refuse(`is marked dirty (its refcounts may be stale); repair it first: qemu-img check -r all ${path}`);
      if ((h.incompatible & INCOMPAT_CORRUPT) !== 0) throw this.refuse(`is marked corrupt; repair it first: qemu-img check -r all ${path}`);
      if (h.nbSnapshots !== 0) throw this.refuse(`has ${h.nbSnapshots} internal snapshot(s), which are not written here; open it read-only, or delete them (qemu-img snapshot -l/-d)`);
    }
    this.bytes = h.size;
    this.cs = h.clusterSize;
    this.cbits = h.clusterBits;
    this.l2bits = h.clusterBits - 3;

    // L1: every entry a cluster-aligned L2 table inside the file, apart from the other metadata.
    const l1raw = new Uint8Array(h.l1Size * 8);
    if (preadUpTo(fd, l1raw, 0, l1raw.length, h.l1Offset) !== l1raw.length) throw corrupt(path, "L1 table cut short by the end of the file");
    const dv = new DataView(l1raw.buffer);
    this.l1Off = new Float64Array(h.l1Size);
    this.l1Copied = new Uint8Array(h.l1Size);
    for (let i = 0; i < h.l1Size; i++) {
      const hi = dv.getUint32(i * 8), lo = dv.getUint32(i * 8 + 4);
      const off = (hi & 0x00ffffff) * 0x100000000 + ((lo & 0xfffffe00) >>> 0);
      if (off === 0) continue;
      if ((lo & 0x1ff) !== 0 || (hi & 0x7f000000) !== 0) throw corrupt(path, `L1 entry ${i} has reserved bits set`);
      if (off % this.cs !== 0) throw corrupt(path, `L2 table ${i} at ${off} is not cluster-aligned`);
      if (off + this.cs > fileSize) throw corrupt(path, `L2 table ${i} at ${off} is past the end of the ${fileSize}-byte file`);
      if (this.inFixedMeta(off) || this.l2Tables.has(off)) throw corrupt(path, `L2 table ${i} at ${off} overlaps other metadata`);
      this.l2Tables.add(off);
      this.l1Off[i] = off;
      this.l1Copied[i] = (hi & COPIED) !== 0 ? 1 : 0;
    }
    this.refs = new Refcounts(fd, path, h, fileSize, (off) => this.inFixedMeta(off) || this.l2Tables.has(off));

    const slots = Math.max(2, Math.min(64, Math.floor(L2_CACHE_BYTES / this.cs)));
    this.cacheOff = new Float64Array(slots).fill(-1);
    this.cacheUse = new Float64Array(slots);
    for (let i = 0; i < slots; i++) {
      const b = new Uint8Array(this.cs);
      this.cacheBuf.push(b);
      this.cacheDv.push(new DataView(b.buffer));
    }
    this.scratch = new Uint8Array(this.cs);

    this.backing = h.backingFile === null ? null : openBacking(path, h.backingFile, h.backingFormat, chain);
    try {
      // Autoclear features (bitmaps) we do not maintain must be cleared by a writer (qcow2.txt, bytes 88-95).
      if (!readOnly && h.version === 3 && h.autoclear !== 0) {
        this.eight.fill(0);
        pwriteAll(fd, this.eight, 0, 8, HDR_AUTOCLEAR);
      }
    } catch (e) { this.backing?.close(); throw e; }
  }

  /** Opens `path` as qcow2 (read-write unless readOnly). Throws StorageError; nothing stays open then. */
  static open(path: string, readOnly: boolean, options: Qcow2OpenOptions = {}): Qcow2Image {
    return Qcow2Image.fromFd(openFile(path, readOnly, "qcow2 image"), path, readOnly, options);
  }

  /** Over an open descriptor, which it owns from now on (closed here on failure). */
  static fromFd(fd: number, path: string, readOnly: boolean, options: Qcow2OpenOptions = {}): Qcow2Image {
    try { return new Qcow2Image(fd, path, readOnly, options.chain ?? []); }
    catch (e) {
      if (options.keepFdOnError !== true) closeSync(fd);
      if (e instanceof StorageError) throw e;
      throw new StorageError("STORAGE_IO", path, `qcow2 image ${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  private refuse(why: string): StorageError {
    return new StorageError("STORAGE_UNSUPPORTED", this.path, `qcow2 image ${this.path} ${why}`);
  }

  /** Header cluster, L1 table, refcount table, refcount blocks: never data, never an L2 table. */
  private inFixedMeta(off: number): boolean {
    const h = this.header;
    if (off < this.cs) return true;
    if (off + this.cs > h.l1Offset && off < h.l1Offset + h.l1Size * 8) return true;
    const refs = (this as unknown as { refs?: Refcounts }).refs; // undefined while the refcount table itself is being loaded
    if (refs === undefined) {
      return off >= h.refcountTableOffset && off < h.refcountTableOffset + h.refcountTableClusters * this.cs;
    }
    return refs.inTable(off) || refs.blocks.has(off);
  }

  private checkRange(len: number, pos: number): void {
    if (!(Number.isInteger(pos) && Number.isInteger(len) && pos >= 0 && len >= 0 && pos + len <= this.bytes)) {
      throw new StorageError("STORAGE_RANGE", this.path, `${this.path}: bytes ${pos}+${len} are outside the ${this.bytes}-byte disk`);
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Mapping

  /** The L2 cache slot of the table at `off`, read in if needed. */
  private l2(off: number): number {
    const n = this.cacheOff.length;
    for (let s = 0; s < n; s++) {
      if (this.cacheOff[s] === off) { this.cacheUse[s] = ++this.tick; return s; }
    }
    let s = 0;
    for (let i = 1; i < n; i++) if (this.cacheUse[i]! < this.cacheUse[s]!) s = i;
    this.cacheOff[s] = -1;
    if (preadUpTo(this.fd, this.cacheBuf[s]!, 0, this.cs, off) !== this.cs) throw corrupt(this.path, `L2 table at ${off} cut short by the end of the file`);
    this.cacheOff[s] = off;
    this.cacheUse[s] = ++this.tick;
    return s;
  }

  /** Maps virtual cluster `vc` (sets m*); mSlot -1 when its L2 table does not exist. */
  private lookup(vc: number): void {
    const l1i = Math.floor(vc / 2 ** this.l2bits);
    const l2off = this.l1Off[l1i]!;
    this.mOff = 0; this.mLen = 0; this.mCopied = false;
    if (l2off === 0) { this.mType = UNALLOCATED; return; }
    const s = this.l2(l2off), idx = vc - l1i * 2 ** this.l2bits;
    this.mIdx = idx;
    const dv = this.cacheDv[s]!, hi = dv.getUint32(idx * 8), lo = dv.getUint32(idx * 8 + 4);
    if ((hi & COMPRESSED_BIT) !== 0) {
      // Compressed (qcow2.txt "Compressed Clusters Descriptor"): x = 62 - (cluster_bits - 8) bits of host
      // offset, then the number of 512-byte sectors beyond the first that the data spans.
      const x = 70 - this.cbits, offHiBits = x - 32;
      const off = (hi & ((1 << offHiBits) - 1)) * 0x100000000 + lo;
      const extra = (hi & 0x3fffffff) >>> offHiBits;
      if (off < this.cs || off >= MAX_HOST_OFFSET) throw corrupt(this.path, `compressed cluster ${vc} at host offset ${off}`);
      this.mType = COMPRESSED; this.mOff = off; this.mLen = (extra + 1) * 512 - (off & 511);
      return;
    }
    const off = (hi & 0x00ffffff) * 0x100000000 + ((lo & 0xfffffe00) >>> 0);
    this.mCopied = (hi & COPIED) !== 0;
    if ((lo & ZERO_BIT) !== 0) {
      if (this.header.version < 3) throw corrupt(this.path, `cluster ${vc} has the zero flag in a version 2 image`);
      this.mType = ZERO; this.mOff = off;
      if (off !== 0 && off % this.cs !== 0) throw corrupt(this.path, `cluster ${vc} at host offset ${off} is not cluster-aligned`);
      return;
    }
    if ((lo & 0x1fe) !== 0 || (hi & 0x3f000000) !== 0) throw corrupt(this.path, `L2 entry of cluster ${vc} has reserved bits set`);
    if (off === 0) { this.mType = UNALLOCATED; return; }
    if (off % this.cs !== 0) throw corrupt(this.path, `cluster ${vc} at host offset ${off} is not cluster-aligned`);
    this.mType = NORMAL; this.mOff = off;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Reading

  read(buf: Uint8Array, off: number, len: number, pos: number): void {
    this.checkRange(len, pos);
    this.assertOpen();
    while (len > 0) {
      const vc = Math.floor(pos / this.cs), inOff = pos - vc * this.cs;
      const n = Math.min(len, this.cs - inOff);
      this.lookup(vc);
      this.readMapped(buf, off, n, pos, inOff);
      off += n; pos += n; len -= n;
    }
  }

  /** Reads n bytes of the cluster lookup() just mapped (from byte inOff; `pos` is the virtual position). */
  private readMapped(buf: Uint8Array, off: number, n: number, pos: number, inOff: number): void {
    switch (this.mType) {
      case UNALLOCATED:
        if (this.backing !== null) readClamped(this.backing, buf, off, n, pos);
        else buf.fill(0, off, off + n);
        return;
      case ZERO:
        buf.fill(0, off, off + n);
        return;
      case NORMAL: {
        // A data cluster may run past the end of the file (its tail never written): that part reads as zeros.
        const got = this.pread(buf, off, n, this.mOff + inOff);
        if (got < n) buf.fill(0, off + got, off + n);
        return;
      }
      default: {
        const c = this.inflate(this.mOff, this.mLen);
        buf.set(c.subarray(inOff, inOff + n), off);
      }
    }
  }

  /** The cluster compressed at host [off, off+len) (qcow2.txt: raw deflate, or zstd when the header says so). */
  private inflate(off: number, len: number): Uint8Array {
    if (this.inflatedFrom === off && this.inflated !== null) return this.inflated;
    if ((this.header.incompatible & INCOMPAT_COMPRESSION) !== 0 && this.header.compressionType === 1) {
      throw this.refuse(`has a zstd-compressed cluster, which is not read here: qemu-img convert -O qcow2 -c -o compression_type=zlib`);
    }
    const input = new Uint8Array(len);
    const got = this.pread(input, 0, len, off);
    let out: Uint8Array;
    try {
      // maxOutputLength: a hostile stream cannot inflate to more than one cluster.
      out = inflateRawSync(input.subarray(0, got), { maxOutputLength: this.cs, finishFlush: zlibConstants.Z_SYNC_FLUSH /* no error for a stream cut short: the length check below decides */ });
    } catch (e) {
      throw corrupt(this.path, `compressed cluster at ${off} does not inflate (${(e as Error).message})`);
    }
    if (out.length !== this.cs) throw corrupt(this.path, `compressed cluster at ${off} inflates to ${out.length} bytes, not ${this.cs}`);
    this.inflated = out;
    this.inflatedFrom = off;
    return out;
  }

  private pread(buf: Uint8Array, off: number, len: number, pos: number): number {
    try { return preadUpTo(this.fd, buf, off, len, pos); }
    catch (e) { throw new StorageError("STORAGE_IO", this.path, `${this.path}: read of ${len} bytes at ${pos}: ${(e as Error).message}`, { cause: e }); }
  }

  private pwrite(buf: Uint8Array, off: number, len: number, pos: number): void {
    try { pwriteAll(this.fd, buf, off, len, pos); }
    catch (e) { throw new StorageError("STORAGE_IO", this.path, `${this.path}: write of ${len} bytes at ${pos}: ${(e as Error).message}`, { cause: e }); }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Writing

  write(buf: Uint8Array, off: number, len: number, pos: number): void {
    const refs = this.writable();
    this.checkRange(len, pos);
    while (len > 0) {
      const vc = Math.floor(pos / this.cs), inOff = pos - vc * this.cs;
      const n = Math.min(len, this.cs - inOff);
      this.writeCluster(refs, vc, buf, off, n, inOff, pos);
      off += n; pos += n; len -= n;
    }
  }

  private writable(): Refcounts {
    this.assertOpen();
    if (this.readOnly) throw new StorageError("STORAGE_READ_ONLY", this.path, `${this.path} is open read-only`);
    return this.refs;
  }

  /** Writes buf[off, off+n) at byte inOff of virtual cluster vc (virtual position pos). */
  private writeCluster(refs: Refcounts, vc: number, buf: Uint8Array, off: number, n: number, inOff: number, pos: number): void {
    const slot = this.l2ForWrite(refs, vc);
    this.lookup(vc);
    if (this.mType === NORMAL && (this.mCopied || refs.get(this.mOff / this.cs) === 1)) {
      if (this.inFixedMeta(this.mOff) || this.l2Tables.has(this.mOff)) throw corrupt(this.path, `data cluster ${vc} at ${this.mOff} overlaps metadata`);
      // Every cluster in use lies below the allocation point; one beyond it was never allocated (a write there
      // would grow a sparse file to wherever the entry points).
      if (this.mOff >= refs.end) throw corrupt(this.path, `data cluster ${vc} at ${this.mOff} is past the end of the file`);
      this.pwrite(buf, off, n, this.mOff + inOff);
      if (!this.mCopied) this.setL2(slot, this.mIdx, this.mOff, 0);
      return;
    }
    // A cluster of its own: the old contents around the new bytes first (copy-on-write), then the reference.
    const oldType = this.mType, oldOff = this.mOff, oldLen = this.mLen, idx = this.mIdx;
    const host = refs.allocate(1);
    if (n === this.cs) {
      this.pwrite(buf, off, n, host);
    } else {
      const c = this.scratch;
      this.readMapped(c, 0, this.cs, pos - inOff, 0);
      c.set(buf.subarray(off, off + n), inOff);
      this.pwrite(c, 0, this.cs, host);
    }
    this.setL2(this.l2(this.l1Off[Math.floor(vc / 2 ** this.l2bits)]!), idx, host, 0);
    this.dropRef(refs, oldType, oldOff, oldLen);
  }

  /** Drops this L2 entry's old reference (after the entry no longer points at it). */
  private dropRef(refs: Refcounts, type: number, off: number, len: number): void {
    if (type === NORMAL || (type === ZERO && off !== 0)) refs.add(off / this.cs, -1);
    else if (type === COMPRESSED) refs.free(off & ~511, len + (off & 511));
  }

  /**
   * The cache slot of vc's L2 table, ready for writing: made (all unallocated) when the L1 entry is empty,
   * copied when it is shared (refcount above 1).
   */
  private l2ForWrite(refs: Refcounts, vc: number): number {
    const l1i = Math.floor(vc / 2 ** this.l2bits);
    const old = this.l1Off[l1i]!;
    if (old !== 0 && (this.l1Copied[l1i] === 1 || refs.get(old / this.cs) === 1)) {
      if (this.l1Copied[l1i] === 0) this.setL1(l1i, old);
      return this.l2(old);
    }
    const host = refs.allocate(1);
    const c = this.scratch;
    if (old === 0) c.fill(0);
    else c.set(this.cacheBuf[this.l2(old)]!);
    this.pwrite(c, 0, this.cs, host);
    this.l2Tables.add(host);
    this.setL1(l1i, host);
    if (old !== 0) { refs.add(old / this.cs, -1); if (refs.get(old / this.cs) === 0) this.l2Tables.delete(old); }
    return this.l2(host);
  }

  private setL1(i: number, off: number): void {
    this.l1Off[i] = off;
    this.l1Copied[i] = 1;
    this.eightDv.setUint32(0, (Math.floor(off / 0x100000000) | COPIED) >>> 0);
    this.eightDv.setUint32(4, off >>> 0);
    this.pwrite(this.eight, 0, 8, this.header.l1Offset + i * 8);
  }

  /** Sets L2 entry idx of the cached table in `slot` to host cluster `off` (COPIED) or the given flags, and writes it. */
  private setL2(slot: number, idx: number, off: number, zero: number): void {
    const dv = this.cacheDv[slot]!;
    const hi = off === 0 ? 0 : (Math.floor(off / 0x100000000) | COPIED) >>> 0;
    dv.setUint32(idx * 8, hi);
    dv.setUint32(idx * 8 + 4, (off >>> 0) | zero);
    this.pwrite(this.cacheBuf[slot]!, idx * 8, 8, this.cacheOff[slot]! + idx * 8);
  }

  /**
   * [pos, pos+len) reads as zeros afterwards. Whole clusters lose their host cluster (given back: count 0) and
   * become zero clusters (version 3) or unallocated (version 2 without a backing file); the rest is written
   * with zeros.
   */
  discard(pos: number, len: number): void {
    const refs = this.writable();
    this.checkRange(len, pos);
    while (len > 0) {
      const vc = Math.floor(pos / this.cs), inOff = pos - vc * this.cs;
      const n = Math.min(len, this.cs - inOff);
      const v3 = this.header.version === 3;
      if (n < this.cs || (!v3 && this.backing !== null)) {
        const z = this.zeros ??= new Uint8Array(this.cs);
        this.writeCluster(refs, vc, z, 0, n, inOff, pos);
      } else {
        this.lookup(vc);
        const unalloc = this.mType === UNALLOCATED && this.backing === null;
        if (!unalloc && !(this.mType === ZERO && this.mOff === 0)) {
          const slot = this.l2ForWrite(refs, vc);
          this.lookup(vc);
          const t = this.mType, o = this.mOff, l = this.mLen;
          this.setL2(slot, this.mIdx, 0, v3 ? ZERO_BIT : 0);
          this.dropRef(refs, t, o, l);
        }
      }
      pos += n; len -= n;
    }
  }

  flush(): void {
    if (this.readOnly || this.fd < 0) return;
    try { fdatasyncSync(this.fd); }
    catch (e) { throw new StorageError("STORAGE_IO", this.path, `${this.path}: fdatasync: ${(e as Error).message}`, { cause: e }); }
  }

  private assertOpen(): void {
    if (this.fd < 0) throw new StorageError("STORAGE_IO", this.path, `${this.path} is closed`);
  }

  /** Closes the backing chain but not this image's own descriptor (handed to another owner); returns it. */
  release(): number {
    const fd = this.fd;
    this.fd = -1;
    this.backing?.close();
    return fd;
  }

  close(): void {
    const fd = this.release();
    if (fd >= 0) closeSync(fd);
  }
}

/** Reads from a backing image, which may be smaller than the overlay: past its end is zeros. */
function readClamped(img: BlockImage, buf: Uint8Array, off: number, n: number, pos: number): void {
  const have = Math.max(0, Math.min(n, img.bytes - pos));
  if (have > 0) img.read(buf, off, have, pos);
  if (have < n) buf.fill(0, off + have, off + n);
}

/** Opens the backing file named in `path`'s header, read-only: relative to its directory, no loops, bounded depth. */
function openBacking(path: string, name: string, format: string | null, chain: string[]): BlockImage {
  if (/^[a-z0-9+.-]+:/i.test(name) && !name.startsWith("file:")) {
    throw new StorageError("STORAGE_UNSUPPORTED", path, `qcow2 image ${path}: backing file ${JSON.stringify(name)} is not a local file (protocols and json: names are not supported)`);
  }
  const file = name.startsWith("file:") ? name.slice(5) : name;
  const target = isAbsolute(file) ? file : resolve(dirname(path), file);
  let real: string;
  try { real = realpathSync(target); }
  catch (e) { throw new StorageError("STORAGE_OPEN", path, `qcow2 image ${path}: backing file ${target}: ${(e as Error).message}`, { cause: e }); }
  const self = safeRealpath(path);
  const seen = [...chain, self];
  if (seen.includes(real)) throw new StorageError("STORAGE_CORRUPT", path, `qcow2 image ${path}: backing file loop: ${[...seen, real].join(" → ")}`);
  if (seen.length > MAX_BACKING_DEPTH) throw new StorageError("STORAGE_UNSUPPORTED", path, `qcow2 image ${path}: backing chain deeper than ${MAX_BACKING_DEPTH}`);
  const fd = openFile(target, true, `backing file of ${path}:`);
  let fmt = format;
  if (fmt === null) {
    try { fmt = probeFormat(fd); } catch (e) { closeSync(fd); throw new StorageError("STORAGE_IO", target, `backing file ${target}: ${(e as Error).message}`, { cause: e }); }
  }
  if (fmt === "raw") return new RawImage(fd, target, true);
  if (fmt === "qcow2") return Qcow2Image.fromFd(fd, target, true, { chain: seen });
  closeSync(fd);
  throw new StorageError("STORAGE_UNSUPPORTED", path, `qcow2 image ${path}: backing file ${target} has format ${fmt}; only raw and qcow2 are read`);
}

function safeRealpath(p: string): string {
  try { return realpathSync(p); } catch { return resolve(p); }
}
