/**
 * A minimal ELF64 reader for static AArch64 Linux executables (ELF spec; "ELF for the Arm 64-bit
 * Architecture"). Dynamic executables (PT_INTERP) are refused: the user-mode runner has no dynamic loader.
 */
export const PT_LOAD = 1, PT_INTERP = 3, PT_PHDR = 6;
export const PF_X = 1, PF_W = 2, PF_R = 4;
const EM_AARCH64 = 183;

export interface Segment { vaddr: number; memsz: number; offset: number; filesz: number; flags: number; }

export interface ElfImage {
  type: number; // 2 = ET_EXEC, 3 = ET_DYN (static-pie)
  entry: number;
  phoff: number;
  phentsize: number;
  phnum: number;
  segments: Segment[];
  /** Virtual address of the program headers if a segment maps them (PT_PHDR or the first PT_LOAD). */
  phdrVaddr: number;
}

export class ElfError extends Error {
  readonly code = "XENO_ELF_INVALID";
  constructor(file: string, what: string) { super(`${file}: ${what}`); }
}

export function parseElf(file: string, b: Uint8Array): ElfImage {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < 64 || dv.getUint32(0, false) !== 0x7f454c46) throw new ElfError(file, "not an ELF file");
  if (b[4] !== 2 || b[5] !== 1) throw new ElfError(file, "not a 64-bit little-endian ELF");
  const type = dv.getUint16(16, true);
  if (dv.getUint16(18, true) !== EM_AARCH64) throw new ElfError(file, "not an AArch64 executable (e_machine)");
  if (type !== 2 && type !== 3) throw new ElfError(file, `not an executable (e_type ${type})`);
  const num = (o: number): number => {
    const v = dv.getBigUint64(o, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(file, `value at offset ${o} out of range`);
    return Number(v);
  };
  const entry = num(24), phoff = num(32);
  const phentsize = dv.getUint16(54, true), phnum = dv.getUint16(56, true);
  if (phentsize < 56 || phoff + phentsize * phnum > b.length) throw new ElfError(file, "program headers out of bounds");
  const segments: Segment[] = [];
  let phdrVaddr = -1;
  for (let k = 0; k < phnum; k++) {
    const o = phoff + k * phentsize;
    const ptype = dv.getUint32(o, true);
    if (ptype === PT_INTERP) throw new ElfError(file, "dynamically linked (PT_INTERP): build it with -static");
    if (ptype === PT_PHDR) phdrVaddr = num(o + 16);
    if (ptype !== PT_LOAD) continue;
    const s: Segment = { flags: dv.getUint32(o + 4, true), offset: num(o + 8), vaddr: num(o + 16), filesz: num(o + 32), memsz: num(o + 40) };
    if (s.filesz > s.memsz || s.offset + s.filesz > b.length) throw new ElfError(file, `segment ${k} out of bounds`);
    if (s.vaddr + s.memsz > 2 ** 47) throw new ElfError(file, `segment ${k} outside the 47-bit user address space`);
    segments.push(s);
  }
  if (segments.length === 0) throw new ElfError(file, "no loadable segments");
  if (phdrVaddr < 0) {
    const s = segments.find((x) => x.offset <= phoff && phoff + phentsize * phnum <= x.offset + x.filesz);
    if (s !== undefined) phdrVaddr = s.vaddr + (phoff - s.offset);
  }
  return { type, entry, phoff, phentsize, phnum, segments, phdrVaddr };
}
