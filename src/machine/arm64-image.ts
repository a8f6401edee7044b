/**
 * arm64 Linux kernel Image header parsing.
 *
 * Source: Linux Documentation/arch/arm64/booting.rst, "4. Call the kernel image". The first 64 bytes are
 *   u32 code0; u32 code1; u64 text_offset; u64 image_size; u64 flags; u64 res2, res3, res4;
 *   u32 magic = 0x644d5241 ("ARM\x64"); u32 res5 (PE/COFF header offset when the Image is also an EFI app)
 * all little-endian. The loader places the Image at a 2 MiB-aligned base + text_offset, with image_size bytes
 * (including BSS) free from there, and enters at the first byte with x0 = the DTB's physical address.
 */

/** Offsets and values from booting.rst's header layout. */
const OFF_TEXT_OFFSET = 8;
const OFF_IMAGE_SIZE = 16;
const OFF_FLAGS = 24;
const OFF_MAGIC = 56;
const OFF_RES5 = 60;
export const ARM64_IMAGE_MAGIC = 0x644d5241; // "ARM\x64", little-endian
export const ARM64_HEADER_SIZE = 64;
/** flags bit 0: kernel endianness (1 = big-endian). */
const FLAG_BE = 1n << 0n;
/** flags bits 1-2: kernel page size (0 unspecified, 1 4K, 2 16K, 3 64K). */
const FLAG_PAGE_SHIFT = 1n;
/** flags bit 3: physical placement (0: 2 MiB-aligned base close to the start of DRAM; 1: anywhere). */
const FLAG_PLACEMENT_ANY = 1n << 3n;
/** Before v3.17, image_size is 0 and text_offset is 0x80000 (booting.rst, note on image_size). */
const LEGACY_TEXT_OFFSET = 0x80000;
/** Required alignment of the base the Image's text_offset is added to. */
export const ARM64_IMAGE_BASE_ALIGN = 0x200000;

export type ImageFormatCode = "EIMAGE_TOO_SHORT" | "EIMAGE_GZIP" | "EIMAGE_COMPRESSED" | "EIMAGE_ELF" | "EIMAGE_ZBOOT" | "EIMAGE_BAD_MAGIC";

/** The input is not an arm64 Image; the message says what it looks like instead. */
export class ImageFormatError extends Error {
  constructor(readonly code: ImageFormatCode, message: string) {
    super(message);
    this.name = "ImageFormatError";
  }
}

export interface Arm64ImageHeader {
  code0: number;
  code1: number;
  /** Byte offset from a 2 MiB-aligned base at which the Image must be placed. */
  textOffset: number;
  /** Bytes the kernel needs from its load address (covers BSS); at least the file size when unknown (legacy). */
  imageSize: number;
  bigEndian: boolean;
  /** Kernel page size in bytes, or null when the header leaves it unspecified. */
  pageSize: 4096 | 16384 | 65536 | null;
  /** True when the Image may be placed anywhere in RAM; false when it should sit near the start of DRAM. */
  placementAnywhere: boolean;
  /** True for pre-3.17 headers (image_size 0): sizes and flags are assumed, not read. */
  legacy: boolean;
  /** Offset of the PE/COFF header when code0 starts with "MZ" (an EFI-stub kernel), else null. */
  peHeaderOffset: number | null;
  raw: { flags: bigint };
}

function u64n(dv: DataView, off: number, what: string): number {
  const v = dv.getBigUint64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ImageFormatError("EIMAGE_BAD_MAGIC", `${what} 0x${v.toString(16)} is implausibly large`);
  return Number(v);
}

/** Recognise common non-Image inputs so the error can say what to do. */
function sniff(b: Uint8Array): ImageFormatError | null {
  const ascii = (off: number, s: string): boolean => [...s].every((c, i) => b[off + i] === c.charCodeAt(0));
  if (b[0] === 0x1f && b[1] === 0x8b) {
    return new ImageFormatError("EIMAGE_GZIP", "this is a gzip-compressed file (a vmlinuz?), not an arm64 Image; gunzip it first (zlib.gunzipSync)");
  }
  if (ascii(0, "\x7fELF")) return new ImageFormatError("EIMAGE_ELF", "this is an ELF file (a vmlinux?), not an arm64 Image; use the Image (arch/arm64/boot/Image)");
  if (ascii(0, "\xfd7zXZ")) return new ImageFormatError("EIMAGE_COMPRESSED", "this is an xz-compressed file, not an arm64 Image; decompress it first");
  if (b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) {
    return new ImageFormatError("EIMAGE_COMPRESSED", "this is a zstd-compressed file, not an arm64 Image; decompress it first");
  }
  // EFI zboot (drivers/firmware/efi/libstub/zboot-header.S): "MZ", then "zimg" at 4, payload offset/size at 8/12,
  // compression type (NUL-padded) at 24. It is a PE application wrapping a compressed Image.
  if (ascii(0, "MZ") && ascii(4, "zimg")) {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const comp = String.fromCharCode(...b.subarray(24, 32)).replace(/\0.*$/s, "");
    return new ImageFormatError("EIMAGE_ZBOOT",
      `this is an EFI zboot kernel (${comp || "compressed"} payload at offset ${dv.getUint32(8, true)}, ` +
      `${dv.getUint32(12, true)} bytes), not a bare Image; extract and decompress the payload first`);
  }
  return null;
}

/** Parse and validate the 64-byte arm64 Image header at the start of `image`. */
export function parseArm64Image(image: Uint8Array): Arm64ImageHeader {
  const other = sniff(image);
  if (other) throw other;
  if (image.length < ARM64_HEADER_SIZE) {
    throw new ImageFormatError("EIMAGE_TOO_SHORT", `${image.length} bytes is too short for an arm64 Image header (${ARM64_HEADER_SIZE})`);
  }
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const magic = dv.getUint32(OFF_MAGIC, true);
  if (magic !== ARM64_IMAGE_MAGIC) {
    throw new ImageFormatError("EIMAGE_BAD_MAGIC", `no arm64 Image magic "ARM\\x64" at offset 56 (found 0x${magic.toString(16).padStart(8, "0")})`);
  }
  const code0 = dv.getUint32(0, true), code1 = dv.getUint32(4, true);
  const imageSize = u64n(dv, OFF_IMAGE_SIZE, "image_size");
  const flags = dv.getBigUint64(OFF_FLAGS, true);
  const legacy = imageSize === 0;
  const pageBits = Number((flags >> FLAG_PAGE_SHIFT) & 3n);
  // "MZ" in the low half of code0 marks a kernel built with the EFI stub; res5 then points at the PE header.
  const isPe = (code0 & 0xffff) === 0x5a4d;
  return {
    code0, code1,
    textOffset: legacy ? LEGACY_TEXT_OFFSET : u64n(dv, OFF_TEXT_OFFSET, "text_offset"),
    imageSize: legacy ? image.length : imageSize,
    bigEndian: legacy ? false : (flags & FLAG_BE) !== 0n,
    pageSize: legacy ? null : ([null, 4096, 16384, 65536] as const)[pageBits]!,
    placementAnywhere: legacy ? false : (flags & FLAG_PLACEMENT_ANY) !== 0n,
    legacy,
    peHeaderOffset: isPe ? dv.getUint32(OFF_RES5, true) : null,
    raw: { flags },
  };
}
