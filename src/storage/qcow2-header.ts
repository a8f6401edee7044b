/**
 * The qcow2 header and its extensions (QEMU docs/interop/qcow2.txt, "Header" and "Header extensions"), parsed
 * and checked before anything else of the image is read. Every limit here is a guard against a hostile image
 * as much as a format rule: sizes that would make us allocate too much, offsets outside the file or not on a
 * cluster boundary, and features whose meaning we do not implement are refused with a message naming the field.
 */
import { StorageError, QCOW2_MAGIC } from "./block-image.js";

/** Incompatible feature bits (qcow2.txt, header bytes 72-79). */
export const INCOMPAT_DIRTY = 1, INCOMPAT_CORRUPT = 2, INCOMPAT_DATA_FILE = 4, INCOMPAT_COMPRESSION = 8, INCOMPAT_EXTL2 = 16;
/** Header extension types (qcow2.txt, "Header extensions"). */
export const EXT_END = 0, EXT_BACKING_FORMAT = 0xe2792aca, EXT_FEATURE_NAMES = 0x6803f857, EXT_BITMAPS = 0x23852875,
  EXT_CRYPTO = 0x0537be77, EXT_DATA_FILE = 0x44415441;
/** Header byte offsets written after open. */
export const HDR_REFTABLE_OFFSET = 48, HDR_AUTOCLEAR = 88;
/** Fixed header lengths: version 2, and the smallest version 3 header. */
const V2_HEADER = 72, V3_HEADER = 104;
/** QEMU's own limits (block/qcow2.h: QCOW_MAX_L1_SIZE, QCOW_MAX_REFTABLE_SIZE): larger tables are refused. */
export const MAX_L1_BYTES = 32 * 1024 * 1024, MAX_REFTABLE_BYTES = 8 * 1024 * 1024;
/** Cluster sizes QEMU supports: 512 bytes to 2 MiB. */
const MIN_CLUSTER_BITS = 9, MAX_CLUSTER_BITS = 21;
/** The largest virtual size accepted: 2^52 bytes (4 PiB), so every byte offset stays an exact double. */
export const MAX_VIRTUAL_SIZE = 2 ** 52;
/** The largest host offset accepted anywhere (every offset is a double; qcow2 allows 2^56). */
export const MAX_HOST_OFFSET = 2 ** 52;

export interface Qcow2Header {
  version: 2 | 3;
  clusterBits: number;
  clusterSize: number;
  size: number;
  l1Size: number;
  l1Offset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  refcountOrder: number;
  nbSnapshots: number;
  incompatible: number;
  compatible: number;
  autoclear: number;
  headerLength: number;
  compressionType: number;
  /** Backing file name as stored (null: none) and its format from the extension (null: probe). */
  backingFile: string | null;
  backingFormat: string | null;
}

/** Reads a big-endian u64 that must be below 2^52 (true offsets and sizes); throws naming `field` otherwise. */
export function u64(dv: DataView, at: number, field: string, path: string): number {
  const hi = dv.getUint32(at), lo = dv.getUint32(at + 4);
  if (hi >= 0x100000) throw corrupt(path, `${field} = 0x${hi.toString(16)}${lo.toString(16).padStart(8, "0")} is beyond 2^52`);
  return hi * 0x100000000 + lo;
}

export function corrupt(path: string, what: string): StorageError {
  return new StorageError("STORAGE_CORRUPT", path, `qcow2 image ${path}: ${what} (the image is damaged: qemu-img check ${path})`);
}

/**
 * Parses the header in `h` (the file's first cluster, or as much of it as the file has; `fileSize` is the
 * file's size). Refuses what this implementation cannot read: versions other than 2 and 3, encryption,
 * external data files, extended L2 entries, unknown incompatible features.
 */
export function parseHeader(h: Uint8Array, fileSize: number, path: string): Qcow2Header {
  const dv = new DataView(h.buffer, h.byteOffset, h.byteLength);
  const unsupported = (what: string): StorageError =>
    new StorageError("STORAGE_UNSUPPORTED", path, `qcow2 image ${path}: ${what}`);
  if (h.length < V2_HEADER || dv.getUint32(0) !== QCOW2_MAGIC) {
    throw new StorageError("STORAGE_FORMAT", path, `${path} is not a qcow2 image (no QFI\\xfb magic); for a raw image say format=raw`);
  }
  const version = dv.getUint32(4);
  if (version !== 2 && version !== 3) throw unsupported(`version ${version} (only 2 and 3 are read; qemu-img amend -o compat=1.1 ${path})`);
  const clusterBits = dv.getUint32(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) throw corrupt(path, `cluster_bits ${clusterBits} is outside 9..21`);
  const clusterSize = 2 ** clusterBits;
  const size = u64(dv, 24, "size", path);
  if (size > MAX_VIRTUAL_SIZE) throw unsupported(`virtual size ${size} is above 2^52 bytes`);
  const cryptMethod = dv.getUint32(32);
  if (cryptMethod !== 0) {
    throw unsupported(`encrypted (crypt_method ${cryptMethod}${cryptMethod === 1 ? ", AES" : cryptMethod === 2 ? ", LUKS" : ""}); ` +
      `encryption is not supported: decrypt it with qemu-img convert --object secret,… -O qcow2`);
  }
  const l1Size = dv.getUint32(36);
  if (l1Size * 8 > MAX_L1_BYTES) throw unsupported(`L1 table of ${l1Size} entries is larger than QEMU's limit of ${MAX_L1_BYTES} bytes`);
  const l2Entries = clusterSize / 8;
  const needL1 = Math.ceil(size / (clusterSize * l2Entries));
  if (l1Size < needL1) throw corrupt(path, `L1 table of ${l1Size} entries cannot map ${size} bytes (needs ${needL1})`);
  const l1Offset = u64(dv, 40, "l1_table_offset", path);
  const refcountTableOffset = u64(dv, 48, "refcount_table_offset", path);
  const refcountTableClusters = dv.getUint32(56);
  if (refcountTableClusters === 0) throw corrupt(path, "refcount table of 0 clusters");
  if (refcountTableClusters * clusterSize > MAX_REFTABLE_BYTES) {
    throw unsupported(`refcount table of ${refcountTableClusters} clusters is larger than QEMU's limit of ${MAX_REFTABLE_BYTES} bytes`);
  }
  const nbSnapshots = dv.getUint32(60);
  checkRange(path, "L1 table", l1Offset, l1Size * 8, clusterSize, fileSize);
  checkRange(path, "refcount table", refcountTableOffset, refcountTableClusters * clusterSize, clusterSize, fileSize);

  let incompatible = 0, compatible = 0, autoclear = 0, refcountOrder = 4, headerLength = V2_HEADER, compressionType = 0;
  if (version === 3) {
    if (h.length < V3_HEADER) throw corrupt(path, "version 3 header cut short");
    if (dv.getUint32(72) !== 0 || dv.getUint32(80) !== 0 || dv.getUint32(88) !== 0) {
      throw unsupported(`feature bits above bit 31 are set (incompatible ${hex64(dv, 72)}, compatible ${hex64(dv, 80)}, autoclear ${hex64(dv, 88)})`);
    }
    incompatible = dv.getUint32(76);
    compatible = dv.getUint32(84);
    autoclear = dv.getUint32(92);
    refcountOrder = dv.getUint32(96);
    if (refcountOrder > 6) throw corrupt(path, `refcount_order ${refcountOrder} is above 6`);
    headerLength = dv.getUint32(100);
    if (headerLength < V3_HEADER || headerLength > Math.min(h.length, clusterSize) || headerLength % 8 !== 0) {
      throw corrupt(path, `header_length ${headerLength} is not a multiple of 8 between ${V3_HEADER} and the cluster size`);
    }
    if (headerLength > V3_HEADER) compressionType = h[104]!;
    if ((incompatible & INCOMPAT_DATA_FILE) !== 0) throw unsupported("uses an external data file (data_file); not supported");
    if ((incompatible & INCOMPAT_EXTL2) !== 0) throw unsupported("uses extended L2 entries (subclusters); not supported: qemu-img convert -O qcow2 to a plain one");
    const known = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_COMPRESSION;
    if ((incompatible & ~known) !== 0) throw unsupported(`unknown incompatible features 0x${(incompatible & ~known).toString(16)}`);
    if ((incompatible & INCOMPAT_COMPRESSION) !== 0 && compressionType > 1) throw unsupported(`unknown compression type ${compressionType}`);
    if ((incompatible & INCOMPAT_COMPRESSION) === 0 && compressionType !== 0) throw corrupt(path, `compression type ${compressionType} without its incompatible bit`);
  }

  // Header extensions: from the end of the fixed header to an end marker, inside the first cluster.
  let backingFormat: string | null = null;
  let at = headerLength;
  const limit = Math.min(h.length, clusterSize);
  for (;;) {
    if (at + 8 > limit) throw corrupt(path, `header extensions run past the first cluster (at byte ${at})`);
    const type = dv.getUint32(at), len = dv.getUint32(at + 4);
    if (type === EXT_END) break;
    if (len > limit - at - 8) throw corrupt(path, `header extension 0x${type.toString(16)} of ${len} bytes runs past the first cluster`);
    const data = h.subarray(at + 8, at + 8 + len);
    if (type === EXT_BACKING_FORMAT) backingFormat = new TextDecoder().decode(data);
    else if (type === EXT_CRYPTO) throw unsupported("has an encryption header; encryption is not supported");
    else if (type === EXT_DATA_FILE) throw unsupported("names an external data file; not supported");
    at += 8 + Math.ceil(len / 8) * 8;
  }

  let backingFile: string | null = null;
  const backingOffset = u64(dv, 8, "backing_file_offset", path);
  const backingSize = dv.getUint32(16);
  if (backingOffset !== 0) {
    if (backingSize === 0 || backingSize > 1023) throw corrupt(path, `backing file name of ${backingSize} bytes (1..1023 allowed)`);
    if (backingOffset + backingSize > limit) throw corrupt(path, `backing file name at ${backingOffset}+${backingSize} is outside the first cluster`);
    backingFile = new TextDecoder().decode(h.subarray(backingOffset, backingOffset + backingSize));
  }
  return { version, clusterBits, clusterSize, size, l1Size, l1Offset, refcountTableOffset, refcountTableClusters, refcountOrder,
    nbSnapshots, incompatible, compatible, autoclear, headerLength, compressionType, backingFile, backingFormat };
}

function hex64(dv: DataView, at: number): string {
  return `0x${dv.getUint32(at).toString(16)}${dv.getUint32(at + 4).toString(16).padStart(8, "0")}`;
}

/** A metadata table: cluster-aligned, not on the header cluster, inside the file. */
function checkRange(path: string, what: string, off: number, len: number, clusterSize: number, fileSize: number): void {
  if (len === 0) return;
  if (off % clusterSize !== 0) throw corrupt(path, `${what} offset ${off} is not cluster-aligned`);
  if (off === 0) throw corrupt(path, `${what} at offset 0 overlaps the header`);
  if (off + len > fileSize) throw corrupt(path, `${what} at ${off}+${len} runs past the end of the ${fileSize}-byte file`);
}
