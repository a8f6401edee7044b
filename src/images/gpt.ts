/**
 * A GUID partition table written into a disk image file (UEFI 2.10 section 5: the protective MBR, the primary GPT
 * header at LBA 1 with its 128-entry array at LBA 2..33, and the backup array and header in the last 33 sectors).
 * `xeno image debian --uefi` lays out its disk with it (an EFI system partition and a Linux root), so the build
 * needs no partitioning tool on the host (sfdisk is in Debian's `fdisk` package, often absent) and no loop device.
 * Checked against util-linux (`partx`, `blkid`) in test/images/gpt.test.ts, and by AAVMF and Linux booting it.
 */
import { randomUUID } from "node:crypto";
import { open } from "node:fs/promises";
import { crc32 } from "node:zlib";

export const SECTOR = 512;
/** Entries in each partition array, 128 bytes each (the minimum array is 16 KiB: UEFI 2.10 section 5.3.1). */
const ENTRIES = 128, ENTRY_BYTES = 128;
const ARRAY_SECTORS = (ENTRIES * ENTRY_BYTES) / SECTOR; // 32
/** First sector a partition may use: MBR + header + array. */
export const FIRST_USABLE = 2 + ARRAY_SECTORS;

/** Partition type GUIDs: UEFI 2.10 table 5.9 (ESP); the Discoverable Partitions Specification (root, arm64). */
export const ESP_TYPE = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
export const LINUX_ROOT_ARM64_TYPE = "b921b045-1df0-41c3-af44-4c6f280d3fae";

export interface GptPartition {
  type: string;
  /** The partition's own GUID (PARTUUID= on Linux's command line); random when absent. */
  guid?: string;
  /** First and last sector, inclusive. */
  first: number;
  last: number;
  name: string;
}

/** A GUID in its on-disk form: the first three fields little-endian, the last two as written (UEFI 2.10 appendix A). */
export function guidBytes(guid: string): Buffer {
  const hex = guid.replace(/-/g, "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`bad GUID '${guid}'`);
  const b = Buffer.from(hex, "hex");
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  return b;
}

/** Sectors of a disk of `bytes` (whole sectors). */
export const sectorsOf = (bytes: number): number => Math.floor(bytes / SECTOR);
/** The last sector a partition may use on a disk of `sectors` (before the backup array and header). */
export const lastUsable = (sectors: number): number => sectors - 1 - ARRAY_SECTORS - 1;

function header(sectors: number, primary: boolean, diskGuid: Buffer, arrayCrc: number): Buffer {
  const h = Buffer.alloc(SECTOR);
  const my = primary ? 1 : sectors - 1, alt = primary ? sectors - 1 : 1;
  h.write("EFI PART", 0, "latin1");
  h.writeUInt32LE(0x0001_0000, 8); // revision 1.0
  h.writeUInt32LE(92, 12); // header size
  // 16: header CRC32, computed over the 92 bytes with this field zero (below); 20: reserved
  h.writeBigUInt64LE(BigInt(my), 24);
  h.writeBigUInt64LE(BigInt(alt), 32);
  h.writeBigUInt64LE(BigInt(FIRST_USABLE), 40);
  h.writeBigUInt64LE(BigInt(lastUsable(sectors)), 48);
  diskGuid.copy(h, 56);
  h.writeBigUInt64LE(BigInt(primary ? 2 : sectors - 1 - ARRAY_SECTORS), 72); // the entry array's first sector
  h.writeUInt32LE(ENTRIES, 80);
  h.writeUInt32LE(ENTRY_BYTES, 84);
  h.writeUInt32LE(arrayCrc, 88);
  h.writeUInt32LE(crc32(h.subarray(0, 92)), 16);
  return h;
}

/**
 * Writes a protective MBR and both GPTs into `path` (an existing file of whole sectors, at least 1 MiB), leaving
 * every other sector as it is. Partitions must lie in the usable area and not overlap.
 */
export async function writeGpt(path: string, partitions: readonly GptPartition[], diskGuid: string = randomUUID()): Promise<void> {
  const fh = await open(path, "r+");
  try {
    const size = (await fh.stat()).size;
    if (size % SECTOR !== 0 || size < 1 << 20) throw new Error(`${path}: ${size} bytes is not a disk of whole sectors of at least 1 MiB`);
    const sectors = size / SECTOR;
    if (partitions.length > ENTRIES) throw new Error(`at most ${ENTRIES} partitions`);
    const sorted = [...partitions].sort((a, b) => a.first - b.first);
    sorted.forEach((p, i) => {
      if (!(Number.isSafeInteger(p.first) && Number.isSafeInteger(p.last) && p.first >= FIRST_USABLE && p.last >= p.first && p.last <= lastUsable(sectors))) {
        throw new Error(`partition '${p.name}' (sectors ${p.first}..${p.last}) is outside ${FIRST_USABLE}..${lastUsable(sectors)}`);
      }
      if (i > 0 && p.first <= sorted[i - 1]!.last) throw new Error(`partition '${p.name}' overlaps '${sorted[i - 1]!.name}'`);
    });

    // The entry array (UEFI 2.10 table 5.7): type, unique GUID, first and last LBA, attributes, UTF-16LE name.
    const array = Buffer.alloc(ENTRIES * ENTRY_BYTES);
    partitions.forEach((p, i) => {
      const e = array.subarray(i * ENTRY_BYTES, (i + 1) * ENTRY_BYTES);
      guidBytes(p.type).copy(e, 0);
      guidBytes(p.guid ?? randomUUID()).copy(e, 16);
      e.writeBigUInt64LE(BigInt(p.first), 32);
      e.writeBigUInt64LE(BigInt(p.last), 40);
      const name = Buffer.from(p.name, "utf16le");
      if (name.length > 72) throw new Error(`partition name '${p.name}' is longer than 36 UTF-16 units`);
      name.copy(e, 56);
    });
    const arrayCrc = crc32(array);
    const disk = guidBytes(diskGuid);

    // The protective MBR (UEFI 2.10 section 5.2.3): one partition of type 0xEE from LBA 1 over the whole disk.
    const mbr = Buffer.alloc(SECTOR);
    const rec = mbr.subarray(446, 462);
    rec.set([0x00, 0x00, 0x02, 0x00, 0xee, 0xff, 0xff, 0xff]); // not bootable, CHS 0/0/2, type, CHS "unknown"
    rec.writeUInt32LE(1, 8);
    rec.writeUInt32LE(Math.min(sectors - 1, 0xffff_ffff), 12);
    mbr[510] = 0x55; mbr[511] = 0xaa;

    await fh.write(mbr, 0, SECTOR, 0);
    await fh.write(header(sectors, true, disk, arrayCrc), 0, SECTOR, SECTOR);
    await fh.write(array, 0, array.length, 2 * SECTOR);
    await fh.write(array, 0, array.length, (sectors - 1 - ARRAY_SECTORS) * SECTOR);
    await fh.write(header(sectors, false, disk, arrayCrc), 0, SECTOR, (sectors - 1) * SECTOR);
  } finally {
    await fh.close();
  }
}
