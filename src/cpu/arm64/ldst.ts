/**
 * Loads and stores of general-purpose registers (Arm ARM C4.1.88): all addressing modes (unsigned offset,
 * unscaled, pre/post-index, register offset with extend/shift, literal, unprivileged), pairs, exclusives,
 * acquire/release. ARMv8.0 only: LSE atomics, LDAPR, LDLAR/STLLR, CAS/CASP, pointer-authenticated loads and
 * STGP are not registered, so they decode as UNDEFINED.
 *
 * Single-register forms are registered once per valid (size, opc) pair, so a handler never sees a reserved
 * combination; the handler recomputes kind = size << 2 | opc from the word and switches on it (gpAccess).
 *
 * CONSTRAINED UNPREDICTABLE choices (Arm ARM K1.2): a load with writeback where Rt == Rn writes the loaded value
 * first and then the written-back address (the address wins, as QEMU does); a store with writeback where
 * Rt == Rn stores the register's value from before the writeback; LDP with Rt == Rt2 leaves Rt2's value;
 * STXR with Ws == Rt or Ws == Rn stores the old register values and then writes the status.
 */
import type { Decoder } from "./decoder.js";
import type { Cpu } from "./cpu.js";
import type { Mmu } from "../../mmu/mmu.js";
import { ACC_READ, ACC_WRITE, FSC_ALIGN, P_R0, P_W0, tlbSlot } from "../../mmu/mmu.js";
import { setW, setX, spSlot } from "./regs.js";
import { PC2, PS_EXCL_PAIR } from "./state.js";

// -------------------------------------------------------------------------------------------------------------
// Address arithmetic. Results: low word returned, high word in eaHi (module scratch: no allocation).

/** High word of the last effective address computed by eaOff / eaReg / eaLiteral (a live export). */
export let eaHi = 0;

/** base (doubled slot n of r) + off, off a signed 32-bit number, with carry/borrow into the high word. */
export function eaOff(r: Int32Array, n: number, off: number): number {
  const s = (r[n] >>> 0) + off;
  const h = r[n + 1];
  eaHi = s > 0xffffffff ? (h + 1) | 0 : s < 0 ? (h - 1) | 0 : h;
  return s | 0;
}

/**
 * Register-offset address: Xn|SP + (extend(Rm, option) << (S ? shift : 0)), Arm ARM C6.2 "LDR (register)".
 * option (bits 15:13): 010 UXTW, 011 LSL/UXTX, 110 SXTW, 111 SXTX (x0x are reserved and not registered).
 */
export function eaReg(r: Int32Array, i: number, shift: number): number {
  const n = spSlot((i >>> 5) & 31), m = ((i >>> 16) & 31) << 1;
  const option = (i >>> 13) & 7;
  let olo = r[m], ohi = (option & 1) !== 0 ? r[m + 1] : (option & 4) !== 0 ? olo >> 31 : 0;
  const s = (i & 0x1000) !== 0 ? shift : 0;
  if (s !== 0) { ohi = (ohi << s) | (olo >>> (32 - s)); olo <<= s; }
  const l = (r[n] >>> 0) + (olo >>> 0);
  eaHi = (r[n + 1] + ohi + (l > 0xffffffff ? 1 : 0)) | 0;
  return l | 0;
}

/** PC + sext(imm19) * 4 (literal loads, Arm ARM C6.2 "LDR (literal)"). */
export function eaLiteral(r: Int32Array, i: number): number {
  return eaOff(r, PC2, ((i << 8) >> 13) << 2);
}


// -------------------------------------------------------------------------------------------------------------
// Single-register accesses

/**
 * The access of a single-register integer load/store at (lo, hi). kind = size << 2 | opc:
 * 0 STRB, 1 LDRB, 2 LDRSB Xt, 3 LDRSB Wt, 4 STRH, 5 LDRH, 6 LDRSH Xt, 7 LDRSH Wt, 8 STR Wt, 9 LDR Wt,
 * 10 LDRSW, 12 STR Xt, 13 LDR Xt, 14 PRFM (a hint: no access, never faults). 11 and 15 are never registered.
 */
function gpAccess(c: Cpu, kind: number, t: number, lo: number, hi: number): void {
  const m = c.mmu, r = c.r;
  switch (kind) {
    case 0: m.write8(lo, hi, r[t << 1]); return;
    case 1: setW(c, t, m.read8(lo, hi)); return;
    case 2: { const v = (m.read8(lo, hi) << 24) >> 24; setX(c, t, v, v >> 31); return; }
    case 3: setW(c, t, (m.read8(lo, hi) << 24) >> 24); return;
    case 4: m.write16(lo, hi, r[t << 1] & 0xffff); return;
    case 5: setW(c, t, m.read16(lo, hi)); return;
    case 6: { const v = (m.read16(lo, hi) << 16) >> 16; setX(c, t, v, v >> 31); return; }
    case 7: setW(c, t, (m.read16(lo, hi) << 16) >> 16); return;
    case 8: m.write32(lo, hi, r[t << 1]); return;
    case 9: setW(c, t, m.read32(lo, hi)); return;
    case 10: { const v = m.read32(lo, hi); setX(c, t, v, v >> 31); return; }
    case 12: m.write64(lo, hi, r[t << 1], r[(t << 1) | 1]); return;
    case 13: { const v = m.read64(lo, hi); setX(c, t, v, m.out[0]); return; }
    default: return; // PRFM
  }
}

/** kind (size << 2 | opc) of a single-register load/store word. */
function kindOf(i: number): number { return ((i >>> 28) & 0xc) | ((i >>> 22) & 3); }

/** LDR/STR (immediate, unsigned offset): size 111 0 01 opc imm12 Rn Rt; offset = imm12 << size. */
function ldstUimm(c: Cpu, i: number): void {
  const r = c.r;
  const lo = eaOff(r, spSlot((i >>> 5) & 31), ((i >>> 10) & 0xfff) << (i >>> 30));
  gpAccess(c, kindOf(i), i & 31, lo, eaHi);
}

/** LDR X/STR X (unsigned offset): the commonest loads and stores, specialised. */
function ldrXUimm(c: Cpu, i: number): void {
  const r = c.r, m = c.mmu;
  const lo = eaOff(r, spSlot((i >>> 5) & 31), ((i >>> 10) & 0xfff) << 3);
  const v = m.read64(lo, eaHi);
  const t = i & 31;
  if (t !== 31) { r[t << 1] = v; r[(t << 1) | 1] = m.out[0]; }
}
function strXUimm(c: Cpu, i: number): void {
  const r = c.r;
  const lo = eaOff(r, spSlot((i >>> 5) & 31), ((i >>> 10) & 0xfff) << 3);
  const t = (i & 31) << 1;
  c.mmu.write64(lo, eaHi, r[t], r[t + 1]);
}

/** LDR W/STR W/LDRB/STRB (unsigned offset), specialised likewise. */
function ldrWUimm(c: Cpu, i: number): void {
  const r = c.r;
  const lo = eaOff(r, spSlot((i >>> 5) & 31), ((i >>> 10) & 0xfff) << 2);
  const v = c.mmu.read32(lo, eaHi);
  const t = i & 31;
  if (t !== 31) { r[t << 1] = v; r[(t << 1) | 1] = 0; }
}
function strWUimm(c: Cpu, i: number): void {
  const r = c.r;
  const lo = eaOff(r, spSlot((i >>> 5) & 31), ((i >>> 10) & 0xfff) << 2);
  c.mmu.write32(lo, eaHi, r[(i & 31) << 1]);
}
function ldrBUimm(c: Cpu, i: number): void {
  const r = c.r;
  const lo = eaOff(r, spSlot((i >>> 5) & 31), (i >>> 10) & 0xfff);
  const v = c.mmu.read8(lo, eaHi);
  const t = i & 31;
  if (t !== 31) { r[t << 1] = v; r[(t << 1) | 1] = 0; }
}
function strBUimm(c: Cpu, i: number): void {
  const r = c.r;
  const lo = eaOff(r, spSlot((i >>> 5) & 31), (i >>> 10) & 0xfff);
  c.mmu.write8(lo, eaHi, r[(i & 31) << 1]);
}

/** LDUR/STUR/PRFUM (unscaled): size 111 0 00 opc 0 imm9 00 Rn Rt. */
function ldstUnscaled(c: Cpu, i: number): void {
  const lo = eaOff(c.r, spSlot((i >>> 5) & 31), (i << 11) >> 23);
  gpAccess(c, kindOf(i), i & 31, lo, eaHi);
}

/** Post-index: size 111 0 00 opc 0 imm9 01 Rn Rt. Access at Xn|SP, then Xn|SP += sext(imm9). */
function ldstPost(c: Cpu, i: number): void {
  const r = c.r;
  const n = spSlot((i >>> 5) & 31);
  const lo = r[n], hi = r[n + 1];
  const nlo = eaOff(r, n, (i << 11) >> 23), nhi = eaHi;
  gpAccess(c, kindOf(i), i & 31, lo, hi);
  r[n] = nlo; r[n + 1] = nhi;
}

/** Pre-index: size 111 0 00 opc 0 imm9 11 Rn Rt. Xn|SP += sext(imm9), access at the new address. */
function ldstPre(c: Cpu, i: number): void {
  const r = c.r;
  const n = spSlot((i >>> 5) & 31);
  const lo = eaOff(r, n, (i << 11) >> 23), hi = eaHi;
  gpAccess(c, kindOf(i), i & 31, lo, hi);
  r[n] = lo; r[n + 1] = hi;
}

/** Register offset: size 111 0 00 opc 1 Rm option S 10 Rn Rt; the index is shifted by size when S = 1. */
function ldstReg(c: Cpu, i: number): void {
  const lo = eaReg(c.r, i, i >>> 30);
  gpAccess(c, kindOf(i), i & 31, lo, eaHi);
}

/**
 * LDTR/STTR and friends (unprivileged): size 111 0 00 opc 0 imm9 10 Rn Rt. At EL1 the access is checked
 * against EL0 permissions (Arm ARM D5.4.3): the MMU's permission masks are switched for this one access.
 * (Without PAN/UAO/HCR_EL2.E2H in ARMv8.0 there is no other case.)
 */
function ldstUnpriv(c: Cpu, i: number): void {
  const lo = eaOff(c.r, spSlot((i >>> 5) & 31), (i << 11) >> 23), hi = eaHi;
  const m = c.mmu;
  if (c.el === 0) { gpAccess(c, kindOf(i), i & 31, lo, hi); return; }
  const mr = m.mR, mw = m.mW;
  m.mR = P_R0; m.mW = P_W0;
  try {
    gpAccess(c, kindOf(i), i & 31, lo, hi);
  } finally {
    m.mR = mr; m.mW = mw;
  }
}

/** LDR (literal): opc 011 0 00 imm19 Rt. opc 00 LDR Wt, 01 LDR Xt, 10 LDRSW, 11 PRFM. */
function ldrLiteral(c: Cpu, i: number): void {
  const lo = eaLiteral(c.r, i), hi = eaHi;
  const m = c.mmu, t = i & 31;
  switch (i >>> 30) {
    case 0: setW(c, t, m.read32(lo, hi)); return;
    case 1: { const v = m.read64(lo, hi); setX(c, t, v, m.out[0]); return; }
    case 2: { const v = m.read32(lo, hi); setX(c, t, v, v >> 31); return; }
    default: return; // PRFM (literal)
  }
}

// -------------------------------------------------------------------------------------------------------------
// Pairs: opc 101 0 mode L imm7 Rt2 Rn Rt (mode: 000 no-allocate offset, 001 post, 010 offset, 011 pre).
// opc 00: 32-bit, 01: LDPSW (load only; not for LDNP), 10: 64-bit.

/** The access of LDP/STP/LDPSW/LDNP/STNP at (lo, hi). */
function pairAccess(c: Cpu, i: number, lo: number, hi: number): void {
  const r = c.r, m = c.mmu;
  const opc = i >>> 30, t = i & 31, t2 = (i >>> 10) & 31;
  if (opc === 2) {
    const l2 = (lo >>> 0) + 8, lo2 = l2 | 0, hi2 = l2 > 0xffffffff ? (hi + 1) | 0 : hi;
    if ((i & 0x400000) !== 0) {
      const a = m.read64(lo, hi), ah = m.out[0];
      const b = m.read64(lo2, hi2), bh = m.out[0];
      setX(c, t, a, ah);
      setX(c, t2, b, bh);
    } else {
      // Both values are read before either store, so STP Xt, Xt2 with a faulting second half is still exact.
      const a = r[t << 1], ah = r[(t << 1) | 1], b = r[t2 << 1], bh = r[(t2 << 1) | 1];
      m.write64(lo, hi, a, ah);
      m.write64(lo2, hi2, b, bh);
    }
    return;
  }
  const l2 = (lo >>> 0) + 4, lo2 = l2 | 0, hi2 = l2 > 0xffffffff ? (hi + 1) | 0 : hi;
  if ((i & 0x400000) !== 0) {
    const a = m.read32(lo, hi);
    const b = m.read32(lo2, hi2);
    if (opc === 1) { setX(c, t, a, a >> 31); setX(c, t2, b, b >> 31); } // LDPSW
    else { setW(c, t, a); setW(c, t2, b); }
  } else {
    const a = r[t << 1], b = r[t2 << 1];
    m.write32(lo, hi, a);
    m.write32(lo2, hi2, b);
  }
}

/** sext(imm7) scaled by the pair's element size (opc 00/01: 4 bytes, 10: 8 bytes). */
function pairOff(i: number): number { return ((i << 10) >> 25) << (2 + (i >>> 31)); }

/** LDP/STP of X registers (opc 10), specialised: function prologues and epilogues are made of these. */
function pairX(c: Cpu, i: number, lo: number, hi: number): void {
  const r = c.r, m = c.mmu, t = i & 31, t2 = (i >>> 10) & 31;
  const l2 = (lo >>> 0) + 8, lo2 = l2 | 0, hi2 = l2 > 0xffffffff ? (hi + 1) | 0 : hi;
  if ((i & 0x400000) !== 0) {
    const a = m.read64(lo, hi), ah = m.out[0];
    const b = m.read64(lo2, hi2), bh = m.out[0];
    if (t !== 31) { r[t << 1] = a; r[(t << 1) | 1] = ah; }
    if (t2 !== 31) { r[t2 << 1] = b; r[(t2 << 1) | 1] = bh; }
  } else {
    const b = r[t2 << 1], bh = r[(t2 << 1) | 1];
    m.write64(lo, hi, r[t << 1], r[(t << 1) | 1]);
    m.write64(lo2, hi2, b, bh);
  }
}
function pairXOffset(c: Cpu, i: number): void {
  const lo = eaOff(c.r, spSlot((i >>> 5) & 31), ((i << 10) >> 25) << 3);
  pairX(c, i, lo, eaHi);
}
function pairXPost(c: Cpu, i: number): void {
  const r = c.r, n = spSlot((i >>> 5) & 31);
  const lo = r[n], hi = r[n + 1];
  const nlo = eaOff(r, n, ((i << 10) >> 25) << 3), nhi = eaHi;
  pairX(c, i, lo, hi);
  r[n] = nlo; r[n + 1] = nhi;
}
function pairXPre(c: Cpu, i: number): void {
  const r = c.r, n = spSlot((i >>> 5) & 31);
  const lo = eaOff(r, n, ((i << 10) >> 25) << 3), hi = eaHi;
  pairX(c, i, lo, hi);
  r[n] = lo; r[n + 1] = hi;
}

function pairOffset(c: Cpu, i: number): void {
  const lo = eaOff(c.r, spSlot((i >>> 5) & 31), pairOff(i));
  pairAccess(c, i, lo, eaHi);
}
function pairPost(c: Cpu, i: number): void {
  const r = c.r, n = spSlot((i >>> 5) & 31);
  const lo = r[n], hi = r[n + 1];
  const nlo = eaOff(r, n, pairOff(i)), nhi = eaHi;
  pairAccess(c, i, lo, hi);
  r[n] = nlo; r[n + 1] = nhi;
}
function pairPre(c: Cpu, i: number): void {
  const r = c.r, n = spSlot((i >>> 5) & 31);
  const lo = eaOff(r, n, pairOff(i)), hi = eaHi;
  pairAccess(c, i, lo, hi);
  r[n] = lo; r[n + 1] = hi;
}

// -------------------------------------------------------------------------------------------------------------
// Exclusives and acquire/release (Arm ARM B2.9 "Synchronization and semaphores", C6.2 LDXR/STXR/LDAR/STLR).
//
// The exclusive monitor is emulated the way QEMU does it: LDXR records the RAM offset, size and the value read;
// STXR succeeds when the monitor is armed for that location and size *and* memory still holds the recorded
// value, checked and written with one Atomics.compareExchange so that vCPUs on other threads sharing the RAM
// SharedArrayBuffer see a single atomic update. (An ABA change by another thread goes unnoticed, which the
// architecture's "IMPLEMENTATION DEFINED" global monitor granule semantics tolerate for the LL/SC idiom.)
// Acquire/release accesses to RAM use Atomics loads/stores, which are sequentially consistent in the JS memory
// model and so give other threads at least the ordering LDAR/STLR promise.

interface RamViews { u16: Uint16Array; b64: BigInt64Array }
const viewsByMmu = new WeakMap<Mmu, RamViews>();
let lastMmu: Mmu | null = null;
let lastViews: RamViews | null = null;

/** Extra views over an Mmu's RAM for the atomic paths, created once per Mmu. */
function ramViews(m: Mmu): RamViews {
  if (m === lastMmu && lastViews !== null) return lastViews;
  let v = viewsByMmu.get(m);
  if (v === undefined) {
    v = { u16: new Uint16Array(m.ram), b64: new BigInt64Array(m.ram) };
    viewsByMmu.set(m, v);
  }
  lastMmu = m; lastViews = v;
  return v;
}


/**
 * RAM offset of (lo, hi) for an access of kind acc, from the TLB when it hits, else by translation (which
 * faults as the access would). Returns -1 for a physical address outside RAM (MMIO). Writes to pages holding
 * decoded code notify the CPU (TLB entries of such pages never carry write permission, so a hit is safe).
 */
function ramOff(m: Mmu, lo: number, hi: number, acc: number): number {
  const x = tlbSlot(lo, hi);
  if (m.tagLo[x] === (lo & -4096) && m.tagHi[x] === hi && (m.tlbPerm[x] & (acc === ACC_WRITE ? m.mW : m.mR)) !== 0) {
    const a = m.tlbAsid[x];
    if (a === -1 || a === m.asid) return m.tlbOff[x] + (lo & 0xfff);
  }
  const off = m.translate(lo, hi, acc);
  if (off >= 0 && acc === ACC_WRITE && m.codePage[off >>> 12] !== 0) m.onCodeWrite(off >>> 12);
  return off;
}

/** As ramOff, but an exclusive to non-RAM is an external abort. */
function exclOff(m: Mmu, lo: number, hi: number, acc: number): number {
  const off = ramOff(m, lo, hi, acc);
  if (off < 0) return m.externalAbort(lo, hi, acc);
  return off;
}

/** High word of the last load64 result. */
let ldHi = 0;

/**
 * 64-bit read of aligned RAM word pair k, k+1 of i32 that is consistent against a concurrent writer of the
 * whole doubleword: re-reads the high word and retries if it changed. Returns lo; hi in ldHi.
 */
function load64(i32: Int32Array, k: number): number {
  for (;;) {
    const h = Atomics.load(i32, k + 1);
    const l = Atomics.load(i32, k);
    if (Atomics.load(i32, k + 1) === h) { ldHi = h; return l; }
  }
}

/**
 * 64-bit compare-and-swap at 8-aligned RAM offset off. BigInt is confined to this path (STXR/STXP of 64 bits):
 * JS has no other way to compare-and-swap 64 bits atomically, and store-exclusives are rare next to plain
 * loads and stores.
 */
function cas64(m: Mmu, off: number, elo: number, ehi: number, nlo: number, nhi: number): boolean {
  const b64 = ramViews(m).b64;
  const expected = (BigInt(ehi) << 32n) | BigInt(elo >>> 0);
  return Atomics.compareExchange(b64, off >> 3, expected, (BigInt(nhi) << 32n) | BigInt(nlo >>> 0)) === expected;
}

/** Compare-and-swap of the byte/halfword at off (bytes = 1 or 2) through its containing aligned 32-bit word. */
function casSub(i32: Int32Array, off: number, bytes: number, expected: number, v: number): boolean {
  const k = off >> 2, sh = (off & 3) << 3, mask = (bytes === 1 ? 0xff : 0xffff);
  for (;;) {
    const w = Atomics.load(i32, k);
    if (((w >>> sh) & mask) !== expected) return false;
    const nw = (w & ~(mask << sh)) | ((v & mask) << sh);
    if (Atomics.compareExchange(i32, k, w, nw) === w) return true;
    // Another thread changed a neighbouring byte: retry against the new word.
  }
}

/** Faults unless (lo) is aligned to `bytes` (a power of two up to 16). */
function checkAlign(m: Mmu, lo: number, hi: number, bytes: number, acc: number): void {
  if ((lo & (bytes - 1)) !== 0) m.fault(lo, hi, acc, FSC_ALIGN);
}

/** LDXR/LDAXR (B/H/W/X): size 001000 0 1 0 Rs o0 Rt2 Rn Rt. Arms the monitor. */
function ldxr(c: Cpu, i: number): void {
  const r = c.r, m = c.mmu;
  const size = i >>> 30, bytes = 1 << size;
  const n = spSlot((i >>> 5) & 31), t = i & 31;
  const lo = r[n], hi = r[n + 1];
  checkAlign(m, lo, hi, bytes, ACC_READ);
  const off = exclOff(m, lo, hi, ACC_READ);
  let vlo: number, vhi = 0;
  switch (size) {
    case 0: vlo = Atomics.load(m.u8, off); break;
    case 1: vlo = Atomics.load(ramViews(m).u16, off >> 1); break;
    case 2: vlo = Atomics.load(m.i32, off >> 2); break;
    default: vlo = load64(m.i32, off >> 2); vhi = ldHi; break;
  }
  c.exclOff = off; c.exclSize = bytes; c.exclLo = vlo; c.exclHi = vhi;
  setX(c, t, vlo, vhi);
}

/** STXR/STLXR (B/H/W/X): size 001000 0 0 0 Rs o0 Rt2 Rn Rt. Ws = 0 on success, 1 on failure. */
function stxr(c: Cpu, i: number): void {
  const r = c.r, m = c.mmu;
  const size = i >>> 30, bytes = 1 << size;
  const n = spSlot((i >>> 5) & 31), t = i & 31, s = (i >>> 16) & 31;
  const lo = r[n], hi = r[n + 1], vlo = r[t << 1], vhi = r[(t << 1) | 1];
  checkAlign(m, lo, hi, bytes, ACC_WRITE);
  const off = exclOff(m, lo, hi, ACC_WRITE);
  let ok = false;
  if (c.exclOff === off && c.exclSize === bytes) {
    switch (size) {
      case 0: case 1: ok = casSub(m.i32, off, bytes, c.exclLo, vlo); break;
      case 2: ok = Atomics.compareExchange(m.i32, off >> 2, c.exclLo, vlo) === c.exclLo; break;
      default: ok = cas64(m, off, c.exclLo, c.exclHi, vlo, vhi); break;
    }
  }
  c.exclOff = -1;
  setW(c, s, ok ? 0 : 1);
  if (ok && c.storeWake !== null) c.storeWake(off); // a WFE sleeper's monitor on another thread: wfe.ts
}

/** LDXP/LDAXP (W or X pair): 1 sz 001000 0 1 1 Rs o0 Rt2 Rn Rt; aligned to the pair's total size. */
function ldxp(c: Cpu, i: number): void {
  const r = c.r, m = c.mmu;
  const x = (i >>> 30) & 1, bytes = 8 << x;
  const n = spSlot((i >>> 5) & 31), t = i & 31, t2 = (i >>> 10) & 31;
  const lo = r[n], hi = r[n + 1];
  checkAlign(m, lo, hi, bytes, ACC_READ);
  const off = exclOff(m, lo, hi, ACC_READ);
  if (x === 1) m.lockPairs();
  const a = load64(m.i32, off >> 2), ah = ldHi;
  c.exclOff = off; c.exclSize = bytes; c.exclLo = a; c.exclHi = ah;
  if (x === 0) { setW(c, t, a); setW(c, t2, ah); return; }
  const b = load64(m.i32, (off >> 2) + 2), bh = ldHi;
  m.unlockPairs();
  c.ps[PS_EXCL_PAIR] = b; c.ps[PS_EXCL_PAIR + 1] = bh; // the monitor's second doubleword (state.ts)
  setX(c, t, a, ah);
  setX(c, t2, b, bh);
}

/**
 * STXP/STLXP: 1 sz 001000 0 0 1 Rs o0 Rt2 Rn Rt. The 128-bit form cannot be one JS atomic operation: it
 * compare-and-swaps the low doubleword, then the high one, and undoes the first if the second fails — inside the
 * domain's pair lock when vCPUs run on several threads (Mmu.lockPairs; LDXP of 128 bits reads inside it too), so
 * no other vCPU's 128-bit exclusive sees or builds on a half-done pair (SLUB's cmpxchg_double would otherwise
 * combine one CPU's new freelist with another's counters).
 */
function stxp(c: Cpu, i: number): void {
  const r = c.r, m = c.mmu;
  const x = (i >>> 30) & 1, bytes = 8 << x;
  const n = spSlot((i >>> 5) & 31), t = i & 31, t2 = (i >>> 10) & 31, s = (i >>> 16) & 31;
  const lo = r[n], hi = r[n + 1];
  const a = r[t << 1], ah = r[(t << 1) | 1], b = r[t2 << 1], bh = r[(t2 << 1) | 1];
  checkAlign(m, lo, hi, bytes, ACC_WRITE);
  const off = exclOff(m, lo, hi, ACC_WRITE);
  let ok = false;
  if (c.exclOff === off && c.exclSize === bytes) {
    if (x === 0) ok = cas64(m, off, c.exclLo, c.exclHi, a, b);
    else {
      m.lockPairs();
      if (cas64(m, off, c.exclLo, c.exclHi, a, ah)) {
        ok = cas64(m, off + 8, c.ps[PS_EXCL_PAIR], c.ps[PS_EXCL_PAIR + 1], b, bh);
        if (!ok) cas64(m, off, a, ah, c.exclLo, c.exclHi);
      }
      m.unlockPairs();
    }
  }
  c.exclOff = -1;
  setW(c, s, ok ? 0 : 1);
  if (ok && c.storeWake !== null) c.storeWake(off); // a WFE sleeper's monitor on another thread: wfe.ts
}

/**
 * LDAR (B/H/W/X): size 001000 1 1 0 Rs 1 Rt2 Rn Rt. Must be aligned (ARMv8.0). RAM through Atomics; device
 * memory through the ordinary MMU path.
 */
function ldar(c: Cpu, i: number): void {
  const r = c.r, m = c.mmu;
  const size = i >>> 30;
  const n = spSlot((i >>> 5) & 31), t = i & 31;
  const lo = r[n], hi = r[n + 1];
  checkAlign(m, lo, hi, 1 << size, ACC_READ);
  const off = ramOff(m, lo, hi, ACC_READ);
  if (off < 0) { gpAccess(c, (size << 2) | 1, t, lo, hi); return; }
  switch (size) {
    case 0: setW(c, t, Atomics.load(m.u8, off)); return;
    case 1: setW(c, t, Atomics.load(ramViews(m).u16, off >> 1)); return;
    case 2: setW(c, t, Atomics.load(m.i32, off >> 2)); return;
    default: { const v = load64(m.i32, off >> 2); setX(c, t, v, ldHi); return; }
  }
}

/**
 * STLR (B/H/W/X): size 001000 1 0 0 Rs 1 Rt2 Rn Rt. A 64-bit STLR is one 64-bit store when other threads share
 * the RAM (Mmu.storeRam64, as every aligned doubleword store is then: src/mmu/atomic64.ts).
 */
function stlr(c: Cpu, i: number): void {
  const r = c.r, m = c.mmu;
  const size = i >>> 30;
  const n = spSlot((i >>> 5) & 31), t = i & 31;
  const lo = r[n], hi = r[n + 1];
  checkAlign(m, lo, hi, 1 << size, ACC_WRITE);
  const off = ramOff(m, lo, hi, ACC_WRITE);
  if (off < 0) { gpAccess(c, size << 2, t, lo, hi); return; }
  const v = r[t << 1];
  switch (size) {
    case 0: Atomics.store(m.u8, off, v); break;
    case 1: Atomics.store(ramViews(m).u16, off >> 1, v); break;
    case 2: Atomics.store(m.i32, off >> 2, v); break;
    default: m.storeRam64(off, v, r[(t << 1) | 1]); break;
  }
  if (c.storeWake !== null) c.storeWake(off); // a lock released: a WFE sleeper on another thread (wfe.ts)
}

// -------------------------------------------------------------------------------------------------------------

const GP_NAMES = ["STRB", "LDRB", "LDRSB (X)", "LDRSB (W)", "STRH", "LDRH", "LDRSH (X)", "LDRSH (W)",
  "STR (W)", "LDR (W)", "LDRSW", "", "STR (X)", "LDR (X)", "PRFM", ""];

function bin(v: number, n: number): string { return v.toString(2).padStart(n, "0"); }

export function register(d: Decoder): void {
  for (let kind = 0; kind < 16; kind++) {
    if (kind === 11 || kind === 15) continue; // unallocated (size 10 opc 11, size 11 opc 11)
    const so = bin(kind >> 2, 2) + "111 0 00" + bin(kind & 3, 2);
    const uo = bin(kind >> 2, 2) + "111 0 01" + bin(kind & 3, 2);
    const name = GP_NAMES[kind];
    const prfm = kind === 14;
    d.def(uo + "xxxxxxxxxxxx xxxxx xxxxx", name + " (unsigned offset)",
      kind === 13 ? ldrXUimm : kind === 12 ? strXUimm : kind === 9 ? ldrWUimm : kind === 8 ? strWUimm :
        kind === 1 ? ldrBUimm : kind === 0 ? strBUimm : ldstUimm);
    d.def(so + "0 xxxxxxxxx 00 xxxxx xxxxx", (prfm ? "PRFUM" : name + " (unscaled)"), ldstUnscaled);
    d.def(so + "1 xxxxx x1x x 10 xxxxx xxxxx", name + " (register)", ldstReg);
    if (prfm) continue; // no pre/post-index or unprivileged PRFM
    d.def(so + "0 xxxxxxxxx 01 xxxxx xxxxx", name + " (post-index)", ldstPost);
    d.def(so + "0 xxxxxxxxx 11 xxxxx xxxxx", name + " (pre-index)", ldstPre);
    d.def(so + "0 xxxxxxxxx 10 xxxxx xxxxx", name.replace(/^(LD|ST)R/, "$1TR") + " (unprivileged)", ldstUnpriv);
  }
  d.def("xx 011 0 00 xxxxxxxxxxxxxxxxxxx xxxxx", "LDR/LDRSW/PRFM (literal)", ldrLiteral);

  // Pairs: 32-bit (opc 00), LDPSW (opc 01, load, not LDNP), 64-bit (opc 10).
  for (const opc of ["00", "10"]) {
    const x = opc === "10";
    d.def(opc + "101 0 000 x xxxxxxx xxxxx xxxxx xxxxx", "LDNP/STNP", x ? pairXOffset : pairOffset);
    d.def(opc + "101 0 001 x xxxxxxx xxxxx xxxxx xxxxx", "LDP/STP (post-index)", x ? pairXPost : pairPost);
    d.def(opc + "101 0 010 x xxxxxxx xxxxx xxxxx xxxxx", "LDP/STP (offset)", x ? pairXOffset : pairOffset);
    d.def(opc + "101 0 011 x xxxxxxx xxxxx xxxxx xxxxx", "LDP/STP (pre-index)", x ? pairXPre : pairPre);
  }
  d.def("01101 0 001 1 xxxxxxx xxxxx xxxxx xxxxx", "LDPSW (post-index)", pairPost);
  d.def("01101 0 010 1 xxxxxxx xxxxx xxxxx xxxxx", "LDPSW (offset)", pairOffset);
  d.def("01101 0 011 1 xxxxxxx xxxxx xxxxx xxxxx", "LDPSW (pre-index)", pairPre);

  // Exclusives and acquire/release: size 001000 o2 L o1 Rs o0 Rt2 Rn Rt.
  d.def("xx 001000 0 0 0 xxxxx x xxxxx xxxxx xxxxx", "STXR/STLXR", stxr);
  d.def("xx 001000 0 1 0 xxxxx x xxxxx xxxxx xxxxx", "LDXR/LDAXR", ldxr);
  d.def("1x 001000 0 0 1 xxxxx x xxxxx xxxxx xxxxx", "STXP/STLXP", stxp);
  d.def("1x 001000 0 1 1 xxxxx x xxxxx xxxxx xxxxx", "LDXP/LDAXP", ldxp);
  d.def("xx 001000 1 0 0 xxxxx 1 xxxxx xxxxx xxxxx", "STLR", stlr);
  d.def("xx 001000 1 1 0 xxxxx 1 xxxxx xxxxx xxxxx", "LDAR", ldar);
}
