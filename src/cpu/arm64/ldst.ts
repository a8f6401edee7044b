/**
 * Loads and stores of general-purpose registers (Arm ARM C4.1.88): all addressing modes (unsigned offset,
 * unscaled, pre/post-index, register offset with extend/shift, literal), pairs, exclusives, acquire/release.
 */
import type { Decoder } from "./decoder.js";
import type { Cpu } from "./cpu.js";
import { setW, setX, spSlot } from "./regs.js";

/**
 * LDR/STR (immediate, unsigned offset), integer: size 111 0 01 opc imm12 Rn Rt.
 * opc: 00 store, 01 load zero-extend, 10 load sign-extend to 64, 11 load sign-extend to 32 (size < 3) / PRFM.
 */
function ldstUimm(c: Cpu, i: number): void {
  const r = c.r;
  const size = i >>> 30, opc = (i >>> 22) & 3;
  const n = spSlot((i >>> 5) & 31), t = i & 31;
  const off = ((i >>> 10) & 0xfff) << size;
  const l = (r[n] >>> 0) + off;
  const lo = l | 0, hi = l > 0xffffffff ? (r[n + 1] + 1) | 0 : r[n + 1];
  const m = c.mmu;
  if (opc === 0) {
    const tl = r[t << 1];
    switch (size) {
      case 0: m.write8(lo, hi, tl); return;
      case 1: m.write16(lo, hi, tl); return;
      case 2: m.write32(lo, hi, tl); return;
      default: m.write64(lo, hi, tl, r[(t << 1) | 1]); return;
    }
  }
  if (opc === 1) {
    switch (size) {
      case 0: setW(c, t, m.read8(lo, hi)); return;
      case 1: setW(c, t, m.read16(lo, hi)); return;
      case 2: setW(c, t, m.read32(lo, hi)); return;
      default: { const v = m.read64(lo, hi); setX(c, t, v, m.out[0]); return; }
    }
  }
  if (size === 3) { if (opc === 2) return; /* PRFM: a hint */ c.undefinedInstruction(i); return; }
  if (size === 2 && opc === 3) { c.undefinedInstruction(i); return; }
  let v = size === 0 ? (m.read8(lo, hi) << 24) >> 24 : size === 1 ? (m.read16(lo, hi) << 16) >> 16 : m.read32(lo, hi);
  if (opc === 2) setX(c, t, v, v >> 31);
  else { v = v & 0xffffffff; setW(c, t, v); }
}

export function register(d: Decoder): void {
  d.def("xx11100100xxxxxxxxxxxxxxxxxxxxxx", "LDR/STR (unsigned offset)", ldstUimm);
  d.def("xx11100101xxxxxxxxxxxxxxxxxxxxxx", "LDR (unsigned offset)", ldstUimm);
  d.def("xx11100110xxxxxxxxxxxxxxxxxxxxxx", "LDRS (unsigned offset, 64)", ldstUimm);
  d.def("xx11100111xxxxxxxxxxxxxxxxxxxxxx", "LDRS (unsigned offset, 32)", ldstUimm);
}
