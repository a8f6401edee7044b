/**
 * Single-copy atomic 64-bit RAM accesses for vCPUs that share memory across threads. Arm makes an aligned
 * 64-bit load or store single-copy atomic (Arm ARM B2.2.1), and an SMP kernel relies on it everywhere (pointers
 * read with READ_ONCE while another CPU writes them). The interpreter's usual path moves a doubleword as two
 * 32-bit halves, which another thread can see torn (its new low word with the old high word). This module is a
 * tiny WebAssembly module over the domain memory whose `ld` and `st` move the doubleword in one 64-bit access:
 * `ld` is an i64.atomic.load; `st` a plain i64.store, which V8 emits as one aligned 64-bit store (a single `mov`
 * on x86-64, `str` on arm64) — an atomic store (xchg on x86-64) would cost more for nothing on these hosts.
 * Callers pass 8-aligned offsets only (unaligned doublewords are not single-copy atomic on Arm either).
 *
 * Measured on this machine (a loop of calls, Node 20): ~5 ns per ld and ~4 ns per st, against ~1.5 ns for the
 * two 32-bit DataView reads; so only boards with vCPUs on several threads use it (Mmu.useAtomic64).
 */

/** ld(offset, scratch): returns the low word of the doubleword at `offset`, and writes its high word at `scratch`. */
export type Ld64 = (offset: number, scratch: number) => number;
/** st(offset, lo, hi): stores the doubleword (lo, hi) at `offset`. */
export type St64 = (offset: number, lo: number, hi: number) => void;

const section = (id: number, b: number[]): number[] => [id, b.length, ...b]; // every section here is < 128 bytes
const vec = (items: number[][]): number[] => [items.length, ...items.flat()];
const name = (s: string): number[] => [s.length, ...[...s].map((c) => c.charCodeAt(0))];
const I32 = 0x7f, I64 = 0x7e, FUNC = 0x60;
// ld: (local $v i64) scratch; offset; i64.atomic.load; tee $v; 32; shr_u; i64.store32 -> scratch; $v; wrap
const LD = [1, 1, I64, 0x20, 1, 0x20, 0, 0xfe, 0x11, 3, 0, 0x22, 2, 0x42, 32, 0x88, 0x3e, 2, 0, 0x20, 2, 0xa7, 0x0b];
// st: offset; extend_u(lo); extend_u(hi) << 32; or; i64.store
const ST = [0, 0x20, 0, 0x20, 1, 0xad, 0x20, 2, 0xad, 0x42, 32, 0x86, 0x84, 0x37, 3, 0, 0x0b];
const MODULE = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
  ...section(1, vec([[FUNC, 2, I32, I32, 1, I32], [FUNC, 3, I32, I32, I32, 0]])),
  // import m.mem: a shared memory, min 0 pages, max 65536 (any domain memory fits)
  ...section(2, vec([[...name("m"), ...name("mem"), 2, 3, 0, 0x80, 0x80, 0x04]])),
  ...section(3, vec([[0], [1]])),
  ...section(7, vec([[...name("ld"), 0, 0], [...name("st"), 0, 1]])),
  ...section(10, vec([[LD.length, ...LD], [ST.length, ...ST]])),
]);
let compiled: WebAssembly.Module | null = null;

/** The ld/st pair over `memory` (a shared WebAssembly.Memory). */
export function atomic64(memory: WebAssembly.Memory): { ld: Ld64; st: St64 } {
  compiled ??= new WebAssembly.Module(MODULE);
  const e = new WebAssembly.Instance(compiled, { m: { mem: memory } }).exports as unknown as { ld: Ld64; st: St64 };
  return { ld: e.ld, st: e.st };
}
