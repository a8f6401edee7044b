/**
 * Flattened device tree (DTB) writer and reader.
 *
 * Format: Devicetree Specification v0.4, chapter 5 "Flattened Devicetree (DTB) Format". A blob is
 *   header (40 bytes) | memory reservation block (8-aligned) | structure block (4-aligned) | strings block
 * with every integer big-endian. The structure block is a token stream: FDT_BEGIN_NODE name\0 (padded to 4),
 * FDT_PROP len nameoff value (padded to 4), FDT_END_NODE, and one FDT_END at the end. Property names live once
 * each in the strings block (deduplicated) and are referred to by offset.
 *
 * Builder: `node(name, props, children)` with property values made by the helpers in `prop` (u32, u64, cells,
 * reg, str, strs, phandle, empty, bytes). Properties keep insertion order (a plain object with non-numeric keys
 * does), and are written before child nodes, as the spec requires.
 */

/** Header magic, spec 5.2. */
export const FDT_MAGIC = 0xd00dfeed;
/** We write version 17, compatible back to 16 (spec 5.2: last_comp_version is 16 for v17). */
export const FDT_VERSION = 17;
export const FDT_LAST_COMP_VERSION = 16;
/** Structure block tokens, spec 5.4.1. */
export const FDT_BEGIN_NODE = 0x1;
export const FDT_END_NODE = 0x2;
export const FDT_PROP = 0x3;
export const FDT_NOP = 0x4;
export const FDT_END = 0x9;
/** Size of the v17 header in bytes (ten u32 fields), spec 5.2. */
export const FDT_HEADER_SIZE = 40;
/** Node and property names are at most 31 characters, spec 2.2.1 and 2.2.4. */
const MAX_NAME = 31;

export type FdtErrorCode =
  | "EFDT_BAD_NAME" | "EFDT_DUP_PROP" | "EFDT_DUP_NODE" | "EFDT_BAD_VALUE"
  | "EFDT_TRUNCATED" | "EFDT_BAD_MAGIC" | "EFDT_BAD_VERSION" | "EFDT_BAD_STRUCT";

/** A malformed tree (when writing) or blob (when reading); `offset` is the byte offset in the blob if any. */
export class FdtError extends Error {
  constructor(readonly code: FdtErrorCode, message: string, readonly offset?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "FdtError";
  }
}

export interface FdtProp { name: string; value: Uint8Array }
export interface FdtNode { name: string; props: FdtProp[]; children: FdtNode[] }
/** A /memreserve/ entry (spec 5.3): physical range the OS must not use. */
export interface FdtReserve { address: bigint; size: bigint }
export interface Fdt {
  root: FdtNode;
  memReserve: FdtReserve[];
  /** Physical id of the boot CPU (header field boot_cpuid_phys). */
  bootCpuidPhys: number;
}

/** A node: props as an ordered record of values built with `prop`, children in order. */
export function node(name: string, props: Record<string, Uint8Array> = {}, children: FdtNode[] = []): FdtNode {
  return { name, props: Object.entries(props).map(([n, value]) => ({ name: n, value })), children };
}

function u32be(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new FdtError("EFDT_BAD_VALUE", `cell value ${v} is not a u32`);
    dv.setUint32(i * 4, v);
  });
  return out;
}

function u64be(values: readonly (number | bigint)[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => {
    const b = BigInt(v);
    if (b < 0n || b > 0xffffffffffffffffn) throw new FdtError("EFDT_BAD_VALUE", `value ${v} is not a u64`);
    dv.setBigUint64(i * 8, b);
  });
  return out;
}

/** Split a value into `n` 32-bit cells, most significant first (spec 2.3.5: reg is address/size cells). */
function toCells(v: number | bigint, n: number): number[] {
  let b = BigInt(v);
  if (b < 0n || b >= 1n << BigInt(32 * n)) throw new FdtError("EFDT_BAD_VALUE", `value ${v} does not fit in ${n} cell(s)`);
  const out = new Array<number>(n);
  for (let i = n - 1; i >= 0; i--) { out[i] = Number(b & 0xffffffffn); b >>= 32n; }
  return out;
}

const utf8 = new TextEncoder();

/** Property value helpers (spec 2.2.4 table 2.3: empty, u32, u64, string, prop-encoded-array, phandle, stringlist). */
export const prop = {
  /** A boolean property: present with no value. */
  empty: (): Uint8Array => new Uint8Array(0),
  u32: (v: number): Uint8Array => u32be([v]),
  u64: (v: number | bigint): Uint8Array => u64be([v]),
  /** A <cell cell ...> array of u32s. */
  cells: (...v: number[]): Uint8Array => u32be(v),
  /** A `reg`/`ranges`-style list of (address, size) pairs in the given cell counts. */
  reg: (pairs: readonly (readonly [number | bigint, number | bigint])[], addressCells = 2, sizeCells = 2): Uint8Array =>
    u32be(pairs.flatMap(([a, s]) => [...toCells(a, addressCells), ...toCells(s, sizeCells)])),
  /** A cell array where each value is split into `n` cells (e.g. 64-bit values as 2 cells). */
  wide: (n: number, ...v: (number | bigint)[]): Uint8Array => u32be(v.flatMap((x) => toCells(x, n))),
  str: (s: string): Uint8Array => prop.strs(s),
  /** A stringlist: each string NUL-terminated, concatenated. */
  strs: (...list: string[]): Uint8Array => {
    for (const s of list) if (s.includes("\0")) throw new FdtError("EFDT_BAD_VALUE", `string ${JSON.stringify(s)} contains NUL`);
    return utf8.encode(list.map((s) => s + "\0").join(""));
  },
  /** A phandle value (a u32, spec 2.3.3); the same encoding serves `phandle` and references like `interrupt-parent`. */
  phandle: (h: number): Uint8Array => u32be([h]),
  bytes: (b: ArrayLike<number>): Uint8Array => Uint8Array.from(b),
};

/** Hands out unique phandles (1, 2, …; 0 and 0xffffffff are reserved, spec 2.3.3). */
export class PhandleAllocator {
  private next = 1;
  alloc(): number {
    if (this.next >= 0xffffffff) throw new FdtError("EFDT_BAD_VALUE", "phandles exhausted");
    return this.next++;
  }
}

// Node names: node-name[@unit-address], spec 2.2.1 table 2.1 characters; property names: spec 2.2.4.1 table 2.2.
const NODE_NAME_RE = /^[A-Za-z0-9,._+-]+(@[A-Za-z0-9,._+-]+)?$/;
const PROP_NAME_RE = /^[A-Za-z0-9,._+?#-]+$/;

function checkNodeName(name: string, path: string): void {
  const base = name.split("@")[0]!;
  if (!NODE_NAME_RE.test(name) || base.length > MAX_NAME) {
    throw new FdtError("EFDT_BAD_NAME", `bad node name ${JSON.stringify(name)} under ${path || "/"}`);
  }
}

function checkPropName(name: string, path: string): void {
  if (!PROP_NAME_RE.test(name) || name.length > MAX_NAME) {
    throw new FdtError("EFDT_BAD_NAME", `bad property name ${JSON.stringify(name)} in ${path || "/"}`);
  }
}

/** Growable big-endian byte sink for the structure block. */
class Sink {
  buf = new Uint8Array(1024);
  len = 0;
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }
  u32(v: number): void {
    this.ensure(4);
    new DataView(this.buf.buffer).setUint32(this.len, v);
    this.len += 4;
  }
  /** Append bytes then zero-pad to a 4-byte boundary (tokens are 4-aligned, spec 5.4.2). */
  bytesPadded(b: Uint8Array): void {
    const padded = (b.length + 3) & ~3;
    this.ensure(padded);
    this.buf.set(b, this.len);
    this.buf.fill(0, this.len + b.length, this.len + padded);
    this.len += padded;
  }
}

export interface WriteFdtOptions {
  memReserve?: readonly FdtReserve[];
  bootCpuidPhys?: number;
}

/** Serialise a tree (root named "") to a DTB blob. Throws FdtError on invalid names or duplicates. */
export function writeFdt(root: FdtNode, opts: WriteFdtOptions = {}): Uint8Array {
  if (root.name !== "") throw new FdtError("EFDT_BAD_NAME", `the root node's name must be empty, not ${JSON.stringify(root.name)}`);
  const strings = new Map<string, number>(); // property name → offset in the strings block (deduplicated)
  const stringParts: string[] = [];
  let stringsLen = 0;
  const nameOff = (name: string): number => {
    let off = strings.get(name);
    if (off === undefined) {
      off = stringsLen;
      strings.set(name, off);
      stringParts.push(name + "\0");
      stringsLen += utf8.encode(name).length + 1;
    }
    return off;
  };

  const st = new Sink();
  const walk = (n: FdtNode, path: string): void => {
    if (path !== "") checkNodeName(n.name, path.slice(0, path.lastIndexOf("/")));
    st.u32(FDT_BEGIN_NODE);
    st.bytesPadded(utf8.encode(n.name + "\0"));
    const seen = new Set<string>();
    for (const p of n.props) {
      checkPropName(p.name, path);
      if (seen.has(p.name)) throw new FdtError("EFDT_DUP_PROP", `duplicate property ${p.name} in ${path || "/"}`);
      seen.add(p.name);
      st.u32(FDT_PROP);
      st.u32(p.value.length);
      st.u32(nameOff(p.name));
      st.bytesPadded(p.value);
    }
    const kids = new Set<string>();
    for (const c of n.children) {
      if (kids.has(c.name)) throw new FdtError("EFDT_DUP_NODE", `duplicate node ${c.name} under ${path || "/"}`);
      kids.add(c.name);
      walk(c, `${path}/${c.name}`);
    }
    st.u32(FDT_END_NODE);
  };
  walk(root, "");
  st.u32(FDT_END);

  const reserves = opts.memReserve ?? [];
  const offRsv = (FDT_HEADER_SIZE + 7) & ~7; // reservation block is 8-aligned (spec 5.3)
  const rsvSize = (reserves.length + 1) * 16; // plus the terminating (0, 0) entry
  const offStruct = offRsv + rsvSize; // already 8-aligned, hence 4-aligned (spec 5.4)
  const offStrings = offStruct + st.len; // strings block has no alignment requirement (spec 5.5)
  const stringsBytes = utf8.encode(stringParts.join(""));
  const total = offStrings + stringsBytes.length;

  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  // Header fields in order, spec 5.2 struct fdt_header.
  const header = [FDT_MAGIC, total, offStruct, offStrings, offRsv, FDT_VERSION, FDT_LAST_COMP_VERSION,
    opts.bootCpuidPhys ?? 0, stringsBytes.length, st.len];
  header.forEach((v, i) => dv.setUint32(i * 4, v));
  reserves.forEach((r, i) => {
    dv.setBigUint64(offRsv + i * 16, r.address);
    dv.setBigUint64(offRsv + i * 16 + 8, r.size);
  });
  out.set(st.buf.subarray(0, st.len), offStruct);
  out.set(stringsBytes, offStrings);
  return out;
}

const utf8d = new TextDecoder("utf-8", { fatal: false });

/** Read a NUL-terminated string at `off` within `[off, end)`; returns the string and the offset past the NUL. */
function cstr(b: Uint8Array, off: number, end: number, what: string): [string, number] {
  const nul = b.indexOf(0, off);
  if (nul < 0 || nul >= end) throw new FdtError("EFDT_TRUNCATED", `unterminated ${what}`, off);
  return [utf8d.decode(b.subarray(off, nul)), nul + 1];
}

/** Parse a DTB blob (version ≥ 16) into a tree. Property values are copies. */
export function readFdt(blob: Uint8Array): Fdt {
  if (blob.length < FDT_HEADER_SIZE) throw new FdtError("EFDT_TRUNCATED", `blob is ${blob.length} bytes, shorter than a header`);
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const h = (i: number): number => dv.getUint32(i * 4);
  if (h(0) !== FDT_MAGIC) throw new FdtError("EFDT_BAD_MAGIC", `bad magic 0x${h(0).toString(16)} (want 0xd00dfeed)`, 0);
  const [total, offStruct, offStrings, offRsv, version, lastComp, bootCpuidPhys, sizeStrings, sizeStruct] =
    [h(1), h(2), h(3), h(4), h(5), h(6), h(7), h(8), h(9)];
  if (lastComp > FDT_VERSION || version < 16) {
    throw new FdtError("EFDT_BAD_VERSION", `unsupported version ${version} (last compatible ${lastComp})`);
  }
  if (total > blob.length) throw new FdtError("EFDT_TRUNCATED", `totalsize ${total} exceeds the ${blob.length}-byte buffer`);
  if (offStruct + sizeStruct > total || offStrings + sizeStrings > total || offRsv > total || offStruct % 4 !== 0) {
    throw new FdtError("EFDT_BAD_STRUCT", "block offsets/sizes are out of range or misaligned");
  }

  const memReserve: FdtReserve[] = [];
  for (let o = offRsv; ; o += 16) {
    if (o + 16 > total) throw new FdtError("EFDT_TRUNCATED", "memory reservation block is not terminated", o);
    const address = dv.getBigUint64(o), size = dv.getBigUint64(o + 8);
    if (address === 0n && size === 0n) break;
    memReserve.push({ address, size });
  }

  const endStruct = offStruct + sizeStruct;
  const endStrings = offStrings + sizeStrings;
  let o = offStruct;
  const token = (): number => {
    if (o + 4 > endStruct) throw new FdtError("EFDT_TRUNCATED", "structure block ends without FDT_END", o);
    const t = dv.getUint32(o);
    o += 4;
    return t;
  };
  const stack: FdtNode[] = [];
  let root: FdtNode | undefined;
  for (;;) {
    const at = o;
    const t = token();
    if (t === FDT_NOP) continue;
    if (t === FDT_BEGIN_NODE) {
      const [name, next] = cstr(blob, o, endStruct, "node name");
      o = (next + 3) & ~3;
      const n: FdtNode = { name, props: [], children: [] };
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(n);
      else if (root) throw new FdtError("EFDT_BAD_STRUCT", "second root node", at);
      else root = n;
      stack.push(n);
    } else if (t === FDT_PROP) {
      const cur = stack[stack.length - 1];
      if (!cur) throw new FdtError("EFDT_BAD_STRUCT", "property outside any node", at);
      if (o + 8 > endStruct) throw new FdtError("EFDT_TRUNCATED", "truncated property header", at);
      const len = dv.getUint32(o), nameoff = dv.getUint32(o + 4);
      o += 8;
      if (o + len > endStruct) throw new FdtError("EFDT_TRUNCATED", "property value runs past the structure block", at);
      if (offStrings + nameoff >= endStrings) throw new FdtError("EFDT_BAD_STRUCT", `property name offset ${nameoff} out of range`, at);
      const [name] = cstr(blob, offStrings + nameoff, endStrings, "property name");
      cur.props.push({ name, value: blob.slice(o, o + len) });
      o = (o + len + 3) & ~3;
    } else if (t === FDT_END_NODE) {
      if (!stack.pop()) throw new FdtError("EFDT_BAD_STRUCT", "FDT_END_NODE without a node", at);
    } else if (t === FDT_END) {
      if (stack.length !== 0 || !root) throw new FdtError("EFDT_BAD_STRUCT", "FDT_END inside an open node", at);
      return { root, memReserve, bootCpuidPhys };
    } else {
      throw new FdtError("EFDT_BAD_STRUCT", `unknown token 0x${t.toString(16)}`, at);
    }
  }
}

/** Find a node by absolute path like "/cpus/cpu@0" (exact name match per component). */
export function findNode(root: FdtNode, path: string): FdtNode | undefined {
  let n: FdtNode | undefined = root;
  for (const part of path.split("/").filter((s) => s !== "")) {
    n = n.children.find((c) => c.name === part);
    if (!n) return undefined;
  }
  return n;
}

export function getProp(n: FdtNode, name: string): Uint8Array | undefined {
  return n.props.find((p) => p.name === name)?.value;
}

/** Decoders for property values (the inverses of `prop`). */
export const decode = {
  cells: (v: Uint8Array): number[] => {
    if (v.length % 4) throw new FdtError("EFDT_BAD_VALUE", `value of ${v.length} bytes is not a cell array`);
    const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
    return Array.from({ length: v.length / 4 }, (_, i) => dv.getUint32(i * 4));
  },
  u32: (v: Uint8Array): number => {
    if (v.length !== 4) throw new FdtError("EFDT_BAD_VALUE", `value of ${v.length} bytes is not a u32`);
    return decode.cells(v)[0]!;
  },
  u64: (v: Uint8Array): bigint => {
    if (v.length !== 8) throw new FdtError("EFDT_BAD_VALUE", `value of ${v.length} bytes is not a u64`);
    return new DataView(v.buffer, v.byteOffset, 8).getBigUint64(0);
  },
  strs: (v: Uint8Array): string[] => {
    if (v.length === 0 || v[v.length - 1] !== 0) throw new FdtError("EFDT_BAD_VALUE", "string value is not NUL-terminated");
    return utf8d.decode(v.subarray(0, v.length - 1)).split("\0");
  },
  str: (v: Uint8Array): string => {
    const s = decode.strs(v);
    if (s.length !== 1) throw new FdtError("EFDT_BAD_VALUE", "value is a string list, not one string");
    return s[0]!;
  },
};
