/**
 * A small WebAssembly binary encoder: just what the A64 translator emits (WebAssembly Core Specification 2.0,
 * section 5 "Binary Format"). Function bodies are written into a growable byte buffer with one method per
 * opcode family; `moduleBytes` wraps bodies into a module that imports the domain's memory and the slow-path
 * functions. No BigInt: 64-bit constants are given as (lo, hi) 32-bit halves.
 */

/** Value types. */
export const I32 = 0x7f, I64 = 0x7e, V128 = 0x7b;
/** Block type "no result". */
export const VOID = 0x40;

/** Opcodes (spec 5.4). */
export const OP = {
  unreachable: 0x00, nop: 0x01, block: 0x02, loop: 0x03, if: 0x04, else: 0x05, end: 0x0b, br: 0x0c, brIf: 0x0d,
  return: 0x0f, call: 0x10, callIndirect: 0x11, returnCall: 0x12, drop: 0x1a, select: 0x1b,
  localGet: 0x20, localSet: 0x21, localTee: 0x22,
  i32Load: 0x28, i64Load: 0x29, i32Load8s: 0x2c, i32Load8u: 0x2d, i32Load16s: 0x2e, i32Load16u: 0x2f,
  i64Load8s: 0x30, i64Load8u: 0x31, i64Load16s: 0x32, i64Load16u: 0x33, i64Load32s: 0x34, i64Load32u: 0x35,
  i32Store: 0x36, i64Store: 0x37, i32Store8: 0x3a, i32Store16: 0x3b, i64Store8: 0x3c, i64Store16: 0x3d,
  i64Store32: 0x3e,
  i32Const: 0x41, i64Const: 0x42,
  i32Eqz: 0x45, i32Eq: 0x46, i32Ne: 0x47, i32LtS: 0x48, i32LtU: 0x49, i32GtS: 0x4a, i32GtU: 0x4b, i32LeS: 0x4c,
  i32LeU: 0x4d, i32GeS: 0x4e, i32GeU: 0x4f,
  i64Eqz: 0x50, i64Eq: 0x51, i64Ne: 0x52, i64LtS: 0x53, i64LtU: 0x54, i64GtS: 0x55, i64GtU: 0x56, i64LeS: 0x57,
  i64LeU: 0x58, i64GeS: 0x59, i64GeU: 0x5a,
  i32Clz: 0x67, i32Ctz: 0x68, i32Popcnt: 0x69, i32Add: 0x6a, i32Sub: 0x6b, i32Mul: 0x6c, i32DivS: 0x6d,
  i32DivU: 0x6e, i32RemS: 0x6f, i32RemU: 0x70, i32And: 0x71, i32Or: 0x72, i32Xor: 0x73, i32Shl: 0x74,
  i32ShrS: 0x75, i32ShrU: 0x76, i32Rotl: 0x77, i32Rotr: 0x78,
  i64Clz: 0x79, i64Ctz: 0x7a, i64Popcnt: 0x7b, i64Add: 0x7c, i64Sub: 0x7d, i64Mul: 0x7e, i64DivS: 0x7f,
  i64DivU: 0x80, i64RemS: 0x81, i64RemU: 0x82, i64And: 0x83, i64Or: 0x84, i64Xor: 0x85, i64Shl: 0x86,
  i64ShrS: 0x87, i64ShrU: 0x88, i64Rotl: 0x89, i64Rotr: 0x8a,
  i32WrapI64: 0xa7, i64ExtendI32s: 0xac, i64ExtendI32u: 0xad,
  i32Extend8s: 0xc0, i32Extend16s: 0xc1, i64Extend8s: 0xc2, i64Extend16s: 0xc3, i64Extend32s: 0xc4,
} as const;

/**
 * Fixed-width SIMD opcodes (spec 5.4.8 "Vector Instructions": the 0xFD prefix, then the opcode as u32 LEB128).
 * Lane-shaped families are tables indexed by the lane size log2 − 3 (0: i8x16, 1: i16x8, 2: i32x4, 3: i64x2);
 * -1 where wasm has no such instruction. The widening families (EXTEND_*, EXTMUL_*) are indexed by the size of
 * the source lanes (0: i8x16 → i16x8, 1: i16x8 → i32x4, 2: i32x4 → i64x2).
 */
export const SIMD = {
  load: 0x00, store: 0x0b, const: 0x0c, shuffle: 0x0d, swizzle: 0x0e,
  not: 0x4d, and: 0x4e, andnot: 0x4f, or: 0x50, xor: 0x51, bitselect: 0x52,
  i8x16Popcnt: 0x62,
} as const;
export const SPLAT = [0x0f, 0x10, 0x11, 0x12];
export const EXTRACT_U = [0x16, 0x19, 0x1b, 0x1d];
export const EXTRACT_S = [0x15, 0x18, 0x1b, 0x1d];
export const REPLACE = [0x17, 0x1a, 0x1c, 0x1e];
export const EQ = [0x23, 0x2d, 0x37, 0xd6], NE = [0x24, 0x2e, 0x38, 0xd7];
export const LT_S = [0x25, 0x2f, 0x39, 0xd8], LT_U = [0x26, 0x30, 0x3a, -1];
export const GT_S = [0x27, 0x31, 0x3b, 0xd9], GT_U = [0x28, 0x32, 0x3c, -1];
export const LE_S = [0x29, 0x33, 0x3d, 0xda], GE_S = [0x2b, 0x35, 0x3f, 0xdb], GE_U = [0x2c, 0x36, 0x40, -1];
export const ABS = [0x60, 0x80, 0xa0, 0xc0], NEG = [0x61, 0x81, 0xa1, 0xc1];
export const SHL = [0x6b, 0x8b, 0xab, 0xcb], SHR_S = [0x6c, 0x8c, 0xac, 0xcc], SHR_U = [0x6d, 0x8d, 0xad, 0xcd];
export const ADD = [0x6e, 0x8e, 0xae, 0xce], SUB = [0x71, 0x91, 0xb1, 0xd1], MUL = [-1, 0x95, 0xb5, 0xd5];
export const MIN_S = [0x76, 0x96, 0xb6, -1], MIN_U = [0x77, 0x97, 0xb7, -1];
export const MAX_S = [0x78, 0x98, 0xb8, -1], MAX_U = [0x79, 0x99, 0xb9, -1];
export const EXTEND_LOW_S = [0x87, 0xa7, 0xc7], EXTEND_HIGH_S = [0x88, 0xa8, 0xc8];
export const EXTEND_LOW_U = [0x89, 0xa9, 0xc9], EXTEND_HIGH_U = [0x8a, 0xaa, 0xca];
export const EXTMUL_LOW_S = [0x9c, 0xbc, 0xdc], EXTMUL_HIGH_S = [0x9d, 0xbd, 0xdd];
export const EXTMUL_LOW_U = [0x9e, 0xbe, 0xde], EXTMUL_HIGH_U = [0x9f, 0xbf, 0xdf];

/** A growable byte buffer with LEB128 writers. */
export class Bytes {
  buf: Uint8Array<ArrayBuffer> = new Uint8Array(4096);
  len = 0;
  reset(): void { this.len = 0; }
  byte(b: number): void {
    if (this.len === this.buf.length) this.room(1);
    this.buf[this.len++] = b;
  }
  /** Makes room for n more bytes. */
  private room(n: number): void {
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const b = new Uint8Array(size); b.set(this.buf.subarray(0, this.len)); this.buf = b;
  }
  bytes(b: ArrayLike<number>): void {
    if (this.len + b.length > this.buf.length) this.room(b.length);
    if (b instanceof Uint8Array) this.buf.set(b, this.len);
    else for (let k = 0; k < b.length; k++) this.buf[this.len + k] = b[k];
    this.len += b.length;
  }
  u32(v: number): void {
    v >>>= 0;
    do { let b = v & 0x7f; v >>>= 7; if (v !== 0) b |= 0x80; this.byte(b); } while (v !== 0);
  }
  s32(v: number): void {
    v |= 0;
    for (;;) {
      const b = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) { this.byte(b); return; }
      this.byte(b | 0x80);
    }
  }
  /** Signed LEB128 of the 64-bit value hi:lo (two's complement), without BigInt. */
  s64(lo: number, hi: number): void {
    if ((hi === 0 && lo >= 0) || (hi === -1 && lo < 0)) { this.s32(lo); return; }
    lo >>>= 0; hi |= 0;
    for (;;) {
      const b = lo & 0x7f;
      // Arithmetic shift of the pair right by 7.
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>= 7;
      const signClear = (b & 0x40) === 0;
      if ((hi === 0 && lo === 0 && signClear) || (hi === -1 && lo === 0xffffffff && !signClear)) { this.byte(b); return; }
      this.byte(b | 0x80);
    }
  }
  name(s: string): void { this.u32(s.length); for (let k = 0; k < s.length; k++) this.byte(s.charCodeAt(k)); }
  /** Appends `inner` as a size-prefixed vector body. */
  sized(inner: Bytes): void { this.u32(inner.len); this.bytes(inner.buf.subarray(0, inner.len)); }
  view(): Uint8Array { return this.buf.subarray(0, this.len); }
}

/** Emits instructions into a function body. */
export class Code extends Bytes {
  // The common forms (a local below 128, a constant in -64..63, a memarg offset below 128: one-byte LEBs) are
  // written straight into the buffer: the translator makes ~60 of these calls per guest instruction, most of
  // them before V8 has optimized it (docs/cpu-internals.md, "the translator's cold cost").
  op(o: number): void {
    if (this.len === this.buf.length) this.room1();
    this.buf[this.len++] = o;
  }
  get(l: number): void { this.opU7(OP.localGet, l); }
  set(l: number): void { this.opU7(OP.localSet, l); }
  tee(l: number): void { this.opU7(OP.localTee, l); }
  i32(v: number): void {
    if (v >= -64 && v < 64 && this.len + 2 <= this.buf.length) {
      const b = this.buf, n = this.len; b[n] = OP.i32Const; b[n + 1] = v & 0x7f; this.len = n + 2; return;
    }
    this.byte(OP.i32Const); this.s32(v);
  }
  i64(lo: number, hi: number): void {
    if (hi === (lo >> 31) && lo >= -64 && lo < 64 && this.len + 2 <= this.buf.length) {
      const b = this.buf, n = this.len; b[n] = OP.i64Const; b[n + 1] = lo & 0x7f; this.len = n + 2; return;
    }
    this.byte(OP.i64Const); this.s64(lo, hi);
  }
  /** A load or store with its memarg (alignment hint log2, constant offset). */
  mem(o: number, align: number, offset: number): void {
    if (offset >= 0 && offset < 128 && this.len + 3 <= this.buf.length) {
      const b = this.buf, n = this.len; b[n] = o; b[n + 1] = align; b[n + 2] = offset; this.len = n + 3; return;
    }
    this.byte(o); this.u32(align); this.u32(offset);
  }
  /** Opcode `o` with an unsigned LEB immediate, one byte when v < 128. */
  private opU7(o: number, v: number): void {
    if (v >= 0 && v < 128 && this.len + 2 <= this.buf.length) {
      const b = this.buf, n = this.len; b[n] = o; b[n + 1] = v; this.len = n + 2; return;
    }
    this.byte(o); this.u32(v);
  }
  /** Grows the buffer for one more byte (op's rare path: kept out of it so the common path stays small). */
  private room1(): void { const n = this.len; this.byte(0); this.len = n; }
  call(f: number): void { this.byte(OP.call); this.u32(f); }
  /** A SIMD instruction without immediates (SIMD table). */
  simd(o: number): void { this.byte(0xfd); this.u32(o); }
  /** A SIMD load or store with its memarg. */
  vmem(o: number, align: number, offset: number): void { this.simd(o); this.u32(align); this.u32(offset); }
  /** A SIMD lane instruction (extract_lane, replace_lane) with its lane index. */
  lane(o: number, idx: number): void { this.simd(o); this.byte(idx); }
  /** v128.const of four little-endian 32-bit words. */
  v128(w0: number, w1: number, w2: number, w3: number): void {
    this.simd(SIMD.const);
    this.le32(w0); this.le32(w1); this.le32(w2); this.le32(w3);
  }
  private le32(w: number): void { this.byte(w & 0xff); this.byte((w >>> 8) & 0xff); this.byte((w >>> 16) & 0xff); this.byte(w >>> 24); }
  /** i8x16.shuffle of the two v128 operands: result byte k = byte lanes[k] of (first : second), 0..31. */
  shuffle(lanes: ArrayLike<number>): void { this.simd(SIMD.shuffle); for (let k = 0; k < 16; k++) this.byte(lanes[k]); }
  /** Call through table `table` with function type `type`. */
  callIndirect(type: number, table: number): void { this.byte(OP.callIndirect); this.u32(type); this.u32(table); }
  /** Tail call of function `f` (the tail-call proposal, in Node 20). */
  returnCall(f: number): void { this.byte(OP.returnCall); this.u32(f); }
  /** Nesting of if/block/loop constructs opened by if() and block() and not yet end()ed. */
  depth = 0;
  override reset(): void { super.reset(); this.depth = 0; }
  if(type: number = VOID): void { this.byte(OP.if); this.byte(type); this.depth++; }
  block(type: number = VOID): void { this.byte(OP.block); this.byte(type); this.depth++; }
  loop(type: number = VOID): void { this.byte(OP.loop); this.byte(type); this.depth++; }
  /** br_table over the labels at relative depths 0..n-1 (the operand picks one; n-1 past the end). */
  brTable(n: number): void { this.byte(0x0e); this.u32(n - 1); for (let k = 0; k < n; k++) this.u32(k); }
  else(): void { this.byte(OP.else); }
  end(): void { this.byte(OP.end); if (this.depth > 0) this.depth--; }
  br(depth: number): void { this.byte(OP.br); this.u32(depth); }
  brIf(depth: number): void { this.byte(OP.brIf); this.u32(depth); }
}

/** A function type: parameter and result value types. */
export interface FuncType { params: number[]; results: number[] }

/** One function of a module: its type index, its locals beyond the parameters (runs of one type), its body. */
export interface FuncBody { type: number; locals: [count: number, type: number][]; code: Uint8Array }

/**
 * A module importing memory `e.m` (with the given page limits, shared or not), with `tableMin` ≥ 0 a function
 * table `e.t`, and functions `e.<name>`, and exporting its own functions as "0", "1", …
 */
/**
 * moduleBytes' buffers, reused from module to module (one thread builds one module at a time): three new ones
 * per module, grown by doubling, were malloc churn beside V8's long-lived allocations (docs/benchmarks.md,
 * session 24: what a boot leaves resident).
 */
const SCRATCH_OUT = new Bytes(), SCRATCH_SEC = new Bytes(), SCRATCH_BODY = new Bytes();

export function moduleBytes(types: FuncType[], imports: { name: string; type: number }[],
  mem: { pages: number; maxPages: number; shared: boolean }, funcs: FuncBody[], tableMin = -1, names?: readonly string[]): Uint8Array<ArrayBuffer> {
  const out = SCRATCH_OUT, sec = SCRATCH_SEC, body = SCRATCH_BODY;
  out.reset();
  out.bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  // Type section.
  sec.reset();
  sec.u32(types.length);
  for (const t of types) {
    sec.byte(0x60);
    sec.u32(t.params.length); for (const p of t.params) sec.byte(p);
    sec.u32(t.results.length); for (const r of t.results) sec.byte(r);
  }
  out.byte(1); out.sized(sec);
  // Import section: the memory, then the functions (which take function indices 0..imports-1).
  sec.reset();
  sec.u32(imports.length + 1 + (tableMin >= 0 ? 1 : 0));
  sec.name("e"); sec.name("m"); sec.byte(0x02);
  sec.byte(mem.shared ? 0x03 : 0x01); sec.u32(mem.pages); sec.u32(mem.maxPages);
  // With tableMin ≥ 0: a function table "e.t" (table 0) of at least that many entries.
  if (tableMin >= 0) { sec.name("e"); sec.name("t"); sec.byte(0x01); sec.byte(0x70); sec.byte(0x00); sec.u32(tableMin); }
  for (const im of imports) { sec.name("e"); sec.name(im.name); sec.byte(0x00); sec.u32(im.type); }
  out.byte(2); out.sized(sec);
  // Function section.
  sec.reset();
  sec.u32(funcs.length);
  for (const f of funcs) sec.u32(f.type);
  out.byte(3); out.sized(sec);
  // Export section.
  sec.reset();
  sec.u32(funcs.length);
  for (let k = 0; k < funcs.length; k++) { sec.name(String(k)); sec.byte(0x00); sec.u32(imports.length + k); }
  out.byte(7); out.sized(sec);
  // Code section.
  sec.reset();
  sec.u32(funcs.length);
  for (const f of funcs) {
    body.reset();
    body.u32(f.locals.length);
    for (const [n, t] of f.locals) { body.u32(n); body.byte(t); }
    body.bytes(f.code);
    sec.sized(body);
  }
  out.byte(10); out.sized(sec);
  // The "name" custom section (spec 7.4.1), function names only: for profiles (XENO_JIT_NAMES).
  if (names !== undefined) {
    sec.reset();
    sec.name("name");
    body.reset();
    body.u32(names.length);
    for (let k = 0; k < names.length; k++) { body.u32(imports.length + k); body.name(names[k]); }
    sec.byte(1); sec.sized(body);
    out.byte(0); out.sized(sec);
  }
  return out.buf.slice(0, out.len);
}
