/**
 * Data processing — immediate (Arm ARM C4.1.86): PC-relative addressing, add/subtract (immediate),
 * logical (immediate), move wide, bitfield, extract.
 */
import type { Decoder } from "./decoder.js";
import type { Cpu } from "./cpu.js";
import { setW, setX, setXsp, spSlot } from "./regs.js";

/** ADD/ADDS/SUB/SUBS (immediate): sf op S 100010 sh imm12 Rn Rd. Rn and (non-flag-setting) Rd may be SP. */
function addSubImm(c: Cpu, i: number): void {
  const r = c.r;
  const sf = i >>> 31, sub = (i >>> 30) & 1, setFlags = (i >>> 29) & 1;
  const imm = ((i >>> 10) & 0xfff) << (((i >>> 22) & 1) * 12);
  const n = spSlot((i >>> 5) & 31), d = i & 31;
  const alo = r[n];
  if (sf === 0) {
    const a = alo >>> 0;
    const res = sub ? a - imm : a + imm;
    const v = res | 0;
    if (setFlags) {
      // Carry: unsigned result fits 32 bits for add; for sub, C = NOT borrow.
      const cflag = sub ? (a >= imm ? 1 : 0) : (res > 0xffffffff ? 1 : 0);
      const vflag = sub ? ((alo ^ imm) & (alo ^ v)) >>> 31 : (~(alo ^ imm) & (alo ^ v)) >>> 31;
      c.nzcv = ((v >>> 31) << 3) | ((v === 0 ? 1 : 0) << 2) | (cflag << 1) | vflag;
      setW(c, d, v);
    } else setXsp(c, d, v, 0);
    return;
  }
  const ahi = r[n + 1];
  let lo: number, hi: number, carry: number;
  if (sub) {
    const l = (alo >>> 0) - imm;
    lo = l | 0;
    const borrow = l < 0 ? 1 : 0;
    hi = (ahi - borrow) | 0;
    carry = borrow && ahi === 0 ? 0 : 1; // no borrow out of bit 63 unless a borrow ripples through hi = 0
  } else {
    const l = (alo >>> 0) + imm;
    lo = l | 0;
    const cin = l > 0xffffffff ? 1 : 0;
    hi = (ahi + cin) | 0;
    carry = cin && ahi === -1 ? 1 : 0;
  }
  if (setFlags) {
    // Overflow: operand signs equal (add) / differ (sub, imm is non-negative) and result sign differs.
    const vflag = sub ? (ahi & ~hi) >>> 31 : (~ahi & hi) >>> 31;
    c.nzcv = ((hi >>> 31) << 3) | ((lo === 0 && hi === 0 ? 1 : 0) << 2) | (carry << 1) | vflag;
    setX(c, d, lo, hi);
  } else setXsp(c, d, lo, hi);
}

export function register(d: Decoder): void {
  d.def("xxx100010xxxxxxxxxxxxxxxxxxxxxxx", "ADD/SUB (immediate)", addSubImm);
}
