/**
 * Loads and stores (ldst.ts, simd-ldst.ts): every addressing mode, pairs, exclusives, acquire/release, SIMD
 * structures; fault atomicity (no partial register state), 64-bit address carry, UNDEFINED post-v8.0 encodings.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { CPACR_EL1, ESR_EL1, FAR_EL1 } from "../../src/cpu/arm64/sysregs.js";
import { sharedDecoder } from "../../src/cpu/arm64/cpu.js";
import { CODE, getV, getX, haveAsm, machine, peek64, poke64, setV, setX, words } from "./ldst-asm.js";

const skip = !haveAsm ? "aarch64-linux-gnu-as not installed" : false;
const DATA = 0x10000;

/** Fills RAM [off, off+len) with byte k = (k * 7 + 3) & 0xff, relative to off. */
function pattern(u8: Uint8Array, off: number, len: number): void {
  for (let k = 0; k < len; k++) u8[off + k] = (k * 7 + 3) & 0xff;
}
const pat = (k: number): number => (k * 7 + 3) & 0xff;
/** Little-endian value of `bytes` pattern bytes starting at pattern index k. */
function patVal(k: number, bytes: number): bigint {
  let v = 0n;
  for (let b = bytes - 1; b >= 0; b--) v = (v << 8n) | BigInt(pat(k + b));
  return v;
}

function esr(c: { sys: Int32Array }): number { return c.sys[ESR_EL1] >>> 0; }
function far(c: { sys: Int32Array }): bigint {
  return (BigInt(c.sys[FAR_EL1 + 1] >>> 0) << 32n) | BigInt(c.sys[FAR_EL1] >>> 0);
}

test("LDR/STR unsigned offset: all sizes, sign and zero extension", { skip }, () => {
  const m = machine(`
    ldrb w2, [x1, #1]
    ldrsb x3, [x1, #1]
    ldrsb w4, [x1, #1]
    ldrh w5, [x1, #2]
    ldrsh x6, [x1, #2]
    ldrsh w7, [x1, #2]
    ldr w8, [x1, #4]
    ldrsw x9, [x1, #4]
    ldr x10, [x1, #8]
    strb w11, [x1, #64]
    strh w11, [x1, #66]
    str w11, [x1, #68]
    str x11, [x1, #72]
    prfm pldl1keep, [x1, #8]
  `);
  const { c, mmu } = m;
  mmu.u8.set([0x00, 0x80, 0x34, 0xf2, 0x78, 0x56, 0x34, 0x92, 1, 2, 3, 4, 5, 6, 7, 8], DATA);
  setX(c, 1, BigInt(DATA));
  for (const r of [2, 3, 4, 5, 6, 7, 8, 9, 10]) setX(c, r, -1n);
  setX(c, 11, 0x1122334455667788n);
  c.run(m.n + 1);
  assert.equal(c.r[66], CODE + 4 * m.n + 4);
  assert.equal(getX(c, 2), 0x80n);
  assert.equal(getX(c, 3), 0xffffffffffffff80n);
  assert.equal(getX(c, 4), 0xffffff80n);
  assert.equal(getX(c, 5), 0xf234n);
  assert.equal(getX(c, 6), 0xfffffffffffff234n);
  assert.equal(getX(c, 7), 0xfffff234n);
  assert.equal(getX(c, 8), 0x92345678n);
  assert.equal(getX(c, 9), 0xffffffff92345678n);
  assert.equal(getX(c, 10), 0x0807060504030201n);
  assert.equal(mmu.u8[DATA + 64], 0x88);
  assert.equal(mmu.dv.getUint16(DATA + 66, true), 0x7788);
  assert.equal(mmu.dv.getUint32(DATA + 68, true), 0x55667788);
  assert.equal(peek64(mmu, DATA + 72), 0x1122334455667788n);
  assert.deepEqual(m.exc, []);
});

test("LDUR/STUR: negative and unaligned offsets; XZR as target and source", { skip }, () => {
  const m = machine(`
    ldur x2, [x1, #-3]
    ldur w3, [x1, #-256]
    ldursw x4, [x1, #255]
    stur x5, [x1, #-7]
    sturh wzr, [x1, #-5]
    ldur xzr, [x1]
  `);
  const { c, mmu } = m;
  pattern(mmu.u8, DATA, 1024);
  setX(c, 1, BigInt(DATA + 512));
  setX(c, 5, 0x0123456789abcdefn);
  c.run(m.n + 1);
  assert.equal(getX(c, 2), patVal(509, 8));
  assert.equal(getX(c, 3), patVal(256, 4));
  assert.equal(getX(c, 4), BigInt.asUintN(64, BigInt.asIntN(32, patVal(767, 4))));
  assert.equal(peek64(mmu, DATA + 505), 0x012345670000cdefn);
  assert.equal(getX(c, 31), 0n);
});

test("pre/post-index writeback, SP as base", { skip }, () => {
  const m = machine(`
    ldr x2, [x1, #8]!
    ldr x3, [x1], #-16
    str w4, [sp, #-16]!
    ldrb w5, [sp], #3
    ldrsh x6, [x7, #-2]!
  `);
  const { c, mmu } = m;
  pattern(mmu.u8, DATA, 256);
  setX(c, 1, BigInt(DATA + 16));
  setX(c, 31 + 1, BigInt(DATA + 128)); // slot 32 = SP
  setX(c, 4, 0xaabbccddn);
  setX(c, 7, BigInt(DATA + 42));
  c.run(m.n + 1);
  assert.equal(getX(c, 2), patVal(24, 8));
  assert.equal(getX(c, 3), patVal(24, 8));
  assert.equal(getX(c, 1), BigInt(DATA + 8));
  assert.equal(mmu.dv.getUint32(DATA + 112, true), 0xaabbccdd);
  assert.equal(getX(c, 5), 0xddn);
  assert.equal(getX(c, 32), BigInt(DATA + 115));
  assert.equal(getX(c, 6), BigInt.asUintN(64, BigInt.asIntN(16, patVal(40, 2))));
  assert.equal(getX(c, 7), BigInt(DATA + 40));
});

test("writeback with Rt == Rn: the written-back address wins for loads", { skip }, () => {
  const m = machine(`
    ldr x1, [x1, #8]!
    str x2, [x2], #8
  `);
  const { c, mmu } = m;
  pattern(mmu.u8, DATA, 64);
  setX(c, 1, BigInt(DATA));
  setX(c, 2, BigInt(DATA + 32));
  c.run(m.n + 1);
  assert.equal(getX(c, 1), BigInt(DATA + 8));
  assert.equal(peek64(mmu, DATA + 32), BigInt(DATA + 32));
  assert.equal(getX(c, 2), BigInt(DATA + 40));
});

test("register offset: LSL, UXTW, SXTW, SXTX, byte forms", { skip }, () => {
  const m = machine(`
    ldr x2, [x1, x3, lsl #3]
    ldr w4, [x1, w5, uxtw #2]
    ldrh w6, [x1, w7, sxtw #1]
    ldrsb x8, [x1, x9, sxtx]
    ldrb w10, [x1, w5, uxtw]
    ldr x11, [x1, x3]
    str x12, [x1, w7, sxtw #3]
  `);
  const { c, mmu } = m;
  pattern(mmu.u8, DATA, 1024);
  setX(c, 1, BigInt(DATA + 512));
  setX(c, 3, 5n);
  setX(c, 5, 0xdead000000000007n); // UXTW ignores the high word
  setX(c, 7, 0x12345678fffffffdn); // SXTW of -3
  setX(c, 9, -100n);
  setX(c, 12, 0x5555666677778888n);
  c.run(m.n + 1);
  assert.equal(getX(c, 2), patVal(512 + 40, 8));
  assert.equal(getX(c, 4), patVal(512 + 28, 4));
  assert.equal(getX(c, 6), patVal(512 - 6, 2));
  assert.equal(getX(c, 8), BigInt.asUintN(64, BigInt.asIntN(8, patVal(412, 1))));
  assert.equal(getX(c, 10), patVal(519, 1));
  assert.equal(getX(c, 11), patVal(517, 8));
  assert.equal(peek64(mmu, DATA + 512 - 24), 0x5555666677778888n);
});

test("literal loads: LDR W/X, LDRSW, PRFM, SIMD S/D/Q", { skip }, () => {
  const m = machine(`
    ldr x2, lit
    ldr w3, lit
    ldrsw x4, lit + 4
    prfm pldl1keep, lit
    ldr q5, lit
    ldr d6, lit + 8
    ldr s7, lit
    b .
    .p2align 4
    lit: .quad 0x8877665544332211, 0x00ffeeddccbbaa99
  `);
  const { c } = m;
  for (const v of [5, 6, 7]) setV(c, v, -1n);
  c.run(8);
  assert.equal(getX(c, 2), 0x8877665544332211n);
  assert.equal(getX(c, 3), 0x44332211n);
  assert.equal(getX(c, 4), 0xffffffff88776655n);
  assert.equal(getV(c, 5), 0x00ffeeddccbbaa998877665544332211n);
  assert.equal(getV(c, 6), 0x00ffeeddccbbaa99n);
  assert.equal(getV(c, 7), 0x44332211n);
});

test("LDP/STP/LDPSW/LDNP/STNP: offset, pre, post", { skip }, () => {
  const m = machine(`
    ldp x2, x3, [x1, #-16]
    ldp w4, w5, [x1, #4]!
    ldpsw x6, x7, [x1], #-8
    stp x8, x9, [x10, #16]
    stp w8, w9, [x10], #-64
    ldnp x11, x12, [x13]
    stnp w8, w9, [x13, #-8]
    stp x8, x9, [sp, #-16]!
  `);
  const { c, mmu } = m;
  pattern(mmu.u8, DATA, 1024);
  setX(c, 1, BigInt(DATA + 512));
  setX(c, 8, 0x1111111122222222n);
  setX(c, 9, 0x33333333c4444444n);
  setX(c, 10, BigInt(DATA + 768));
  setX(c, 13, BigInt(DATA + 128));
  setX(c, 32, BigInt(DATA + 960));
  c.run(m.n + 1);
  assert.equal(getX(c, 2), patVal(496, 8));
  assert.equal(getX(c, 3), patVal(504, 8));
  assert.equal(getX(c, 4), patVal(516, 4));
  assert.equal(getX(c, 5), patVal(520, 4));
  assert.equal(getX(c, 6), BigInt.asUintN(64, BigInt.asIntN(32, patVal(516, 4))));
  assert.equal(getX(c, 7), BigInt.asUintN(64, BigInt.asIntN(32, patVal(520, 4))));
  assert.equal(getX(c, 1), BigInt(DATA + 508));
  assert.equal(peek64(mmu, DATA + 768), 0xc444444422222222n);
  assert.equal(peek64(mmu, DATA + 784), 0x1111111122222222n);
  assert.equal(peek64(mmu, DATA + 792), 0x33333333c4444444n);
  assert.equal(getX(c, 10), BigInt(DATA + 704));
  assert.equal(getX(c, 11), patVal(128, 8));
  assert.equal(getX(c, 12), patVal(136, 8));
  assert.equal(peek64(mmu, DATA + 120), 0xc444444422222222n);
  assert.equal(getX(c, 32), BigInt(DATA + 944));
  assert.equal(peek64(mmu, DATA + 952), 0x33333333c4444444n);
});

test("64-bit address arithmetic carries into and borrows from the high word", { skip }, () => {
  // 1 MiB of RAM just below 4 GiB: bases with a high word of 1 reach it with negative offsets.
  const base = 0xfff00000;
  const m = machine(`
    ldur x2, [x1, #-8]
    ldr x3, [x4, #16]
    ldp x5, x6, [x1, #-16]
    ldr x7, [x8, x9]
  `, 1 << 20, base);
  const { c, mmu } = m;
  poke64(mmu, 0xffff8, 0x1234n);
  poke64(mmu, 0xffff0, 0x5678n);
  setX(c, 1, 0x100000000n);
  setX(c, 4, 0xffffffe8n);
  setX(c, 8, 0x1fffffff0n);
  setX(c, 9, -0x100000000n); // 0x1fffffff0 - 2^32 = 0xfffffff0
  c.run(m.n + 1);
  assert.equal(getX(c, 2), 0x1234n);
  assert.equal(getX(c, 3), 0x1234n);
  assert.equal(getX(c, 5), 0x5678n);
  assert.equal(getX(c, 6), 0x1234n);
  assert.equal(getX(c, 7), 0x5678n);
  // Carry out of the low word lands above RAM: the abort reports the full 64-bit address.
  const m2 = machine(`ldr x2, [x1, #24]`, 1 << 20, base);
  setX(m2.c, 1, 0xfffffff0n);
  m2.c.run(2);
  assert.equal(m2.exc.length, 1);
  assert.equal(far(m2.c), 0x100000008n);
});

test("faulting loads leave no partial state; no writeback", { skip }, () => {
  // RAM ends at 1 MiB: the second half of each access is outside RAM (external abort).
  const m = machine(`ldp x2, x3, [x1], #16`);
  setX(m.c, 1, BigInt((1 << 20) - 8));
  setX(m.c, 2, 7n); setX(m.c, 3, 9n);
  m.c.run(2);
  assert.equal(m.exc.length, 1);
  assert.equal(getX(m.c, 2), 7n);
  assert.equal(getX(m.c, 3), 9n);
  assert.equal(getX(m.c, 1), BigInt((1 << 20) - 8));
  assert.equal(far(m.c), BigInt(1 << 20));
  assert.equal(m.c.r[66], CODE);

  const m2 = machine(`ld1 {v0.16b, v1.16b, v2.16b, v3.16b}, [x1], #64`);
  setX(m2.c, 1, BigInt((1 << 20) - 48));
  for (let v = 0; v < 4; v++) setV(m2.c, v, BigInt(v + 1));
  m2.c.run(2);
  assert.equal(m2.exc.length, 1);
  for (let v = 0; v < 4; v++) assert.equal(getV(m2.c, v), BigInt(v + 1));
  assert.equal(getX(m2.c, 1), BigInt((1 << 20) - 48));

  const m3 = machine(`ldp q0, q1, [x1]`);
  setX(m3.c, 1, BigInt((1 << 20) - 24));
  setV(m3.c, 0, 5n);
  m3.c.run(2);
  assert.equal(m3.exc.length, 1);
  assert.equal(getV(m3.c, 0), 5n);
});

test("exclusives: LDXR/STXR success, failure without or after a lost reservation", { skip }, () => {
  const m = machine(`
    ldxr x2, [x1]
    stxr w3, x4, [x1]
    stxr w5, x4, [x1]
    ldaxr w6, [x1]
    stlxr w7, w8, [x9]
    ldxr w6, [x1]
    stxrh w10, w8, [x1]
    ldxrb w11, [x12]
    stxrb w13, w14, [x12]
    ldaxrh w15, [x16]
    stlxrh w17, w14, [x16]
    ldxr x2, [x1]
    clrex
    stxr w18, x4, [x1]
  `);
  const { c, mmu } = m;
  poke64(mmu, DATA, 0x1111222233334444n);
  poke64(mmu, DATA + 64, 0x8877665544332211n);
  setX(c, 1, BigInt(DATA));
  setX(c, 4, 0xaaaabbbbccccddddn);
  setX(c, 8, 0x12345678n);
  setX(c, 9, BigInt(DATA + 8));
  setX(c, 12, BigInt(DATA + 65));
  setX(c, 14, 0xfedcn);
  setX(c, 16, BigInt(DATA + 70));
  for (const r of [3, 5, 7, 10, 13, 17, 18]) setX(c, r, 99n);
  c.run(m.n + 1);
  assert.equal(c.r[66], CODE + 4 * m.n + 4);
  assert.equal(getX(c, 2), 0xaaaabbbbccccddddn);
  assert.equal(getX(c, 3), 0n, "STXR after LDXR succeeds");
  assert.equal(getX(c, 5), 1n, "second STXR fails: the monitor was cleared");
  assert.equal(getX(c, 6), 0xccccddddn);
  assert.equal(getX(c, 7), 1n, "STXR to another address fails");
  assert.equal(getX(c, 10), 1n, "STXR of a different size than the LDXR fails");
  assert.equal(peek64(mmu, DATA), 0xaaaabbbbccccddddn);
  assert.equal(peek64(mmu, DATA + 8), 0n);
  assert.equal(getX(c, 11), 0x22n);
  assert.equal(getX(c, 13), 0n);
  assert.equal(getX(c, 15), 0x8877n);
  assert.equal(getX(c, 17), 0n);
  assert.equal(peek64(mmu, DATA + 64), 0xfedc66554433dc11n);
  assert.equal(getX(c, 18), 1n, "CLREX clears the monitor");
});

test("exclusives: the store-exclusive fails when memory changed since the load", { skip }, () => {
  const m = machine(`
    ldxr w2, [x1]
    str w3, [x1]
    stxr w4, w5, [x1]
    ldxr x2, [x6]
    str w3, [x6, #4]
    stxr w7, x5, [x6]
    ldxrb w2, [x9]
    strb w3, [x1, #3]
    stxrb w8, w5, [x9]
  `);
  const { c, mmu } = m;
  setX(c, 1, BigInt(DATA));
  setX(c, 3, 0x77n);
  setX(c, 5, 0x55n);
  setX(c, 6, BigInt(DATA + 16));
  setX(c, 9, BigInt(DATA + 2));
  c.run(m.n + 1);
  assert.equal(getX(c, 4), 1n);
  assert.equal(mmu.dv.getUint32(DATA, true), 0x77550077);
  assert.equal(getX(c, 7), 1n);
  assert.equal(peek64(mmu, DATA + 16), 0x77_00000000n);
  // The neighbouring byte changed but ours did not: the byte exclusive still succeeds.
  assert.equal(getX(c, 8), 0n);
  assert.equal(mmu.u8[DATA + 2], 0x55);
  assert.equal(mmu.u8[DATA + 3], 0x77);
});

test("exclusive pairs: LDXP/STXP W and X, LDAXP/STLXP", { skip }, () => {
  const m = machine(`
    ldxp w2, w3, [x1]
    stxp w4, w5, w6, [x1]
    ldaxp x7, x8, [x9]
    stlxp w10, x5, x6, [x9]
    ldxp x7, x8, [x9]
    str xzr, [x9, #8]
    stxp w11, x6, x5, [x9]
  `);
  const { c, mmu } = m;
  poke64(mmu, DATA, 0x1111111122222222n);
  poke64(mmu, DATA + 16, 0x3333333344444444n);
  poke64(mmu, DATA + 24, 0x5555555566666666n);
  setX(c, 1, BigInt(DATA));
  setX(c, 5, 0xaaaaaaaabbbbbbbbn);
  setX(c, 6, 0xccccccccddddddddn);
  setX(c, 9, BigInt(DATA + 16));
  c.run(m.n + 1);
  assert.equal(getX(c, 2), 0x22222222n);
  assert.equal(getX(c, 3), 0x11111111n);
  assert.equal(getX(c, 4), 0n);
  assert.equal(peek64(mmu, DATA), 0xddddddddbbbbbbbbn);
  assert.equal(getX(c, 10), 0n);
  assert.equal(peek64(mmu, DATA + 16), 0xaaaaaaaabbbbbbbbn);
  assert.equal(getX(c, 7), 0xaaaaaaaabbbbbbbbn);
  assert.equal(getX(c, 8), 0xccccccccddddddddn);
  assert.equal(getX(c, 11), 1n, "high doubleword changed: STXP fails");
  assert.equal(peek64(mmu, DATA + 16), 0xaaaaaaaabbbbbbbbn, "and the low doubleword is left as it was");
});

test("exclusives and acquire/release: alignment faults", { skip }, () => {
  for (const src of ["ldxr w2, [x1]", "stxr w3, x2, [x1]", "ldar x2, [x1]", "stlrh w2, [x1]", "ldxp x2, x3, [x4]"]) {
    const m = machine(src);
    setX(m.c, 1, BigInt(DATA + 2 + 1));
    setX(m.c, 4, BigInt(DATA + 8));
    m.c.run(2);
    assert.equal(m.exc.length, 1, src);
    assert.equal(esr(m.c) >>> 26, 0x25, src);
    assert.equal(esr(m.c) & 0x3f, 0x21, src);
    assert.equal((esr(m.c) >>> 6) & 1, src.startsWith("st") ? 1 : 0, src);
  }
});

test("LDAR/STLR: all sizes", { skip }, () => {
  const m = machine(`
    ldarb w2, [x1]
    ldarh w3, [x1]
    ldar w4, [x1]
    ldar x5, [x1]
    stlrb w6, [x7]
    stlrh w6, [x8]
    stlr w6, [x9]
    stlr x6, [x10]
  `);
  const { c, mmu } = m;
  poke64(mmu, DATA, 0xf1f2f3f4f5f6f7f8n);
  setX(c, 1, BigInt(DATA));
  setX(c, 6, 0x0102030405060708n);
  setX(c, 7, BigInt(DATA + 16));
  setX(c, 8, BigInt(DATA + 32));
  setX(c, 9, BigInt(DATA + 48));
  setX(c, 10, BigInt(DATA + 64));
  c.run(m.n + 1);
  assert.equal(getX(c, 2), 0xf8n);
  assert.equal(getX(c, 3), 0xf7f8n);
  assert.equal(getX(c, 4), 0xf5f6f7f8n);
  assert.equal(getX(c, 5), 0xf1f2f3f4f5f6f7f8n);
  assert.equal(peek64(mmu, DATA + 16), 0x08n);
  assert.equal(peek64(mmu, DATA + 32), 0x0708n);
  assert.equal(peek64(mmu, DATA + 48), 0x05060708n);
  assert.equal(peek64(mmu, DATA + 64), 0x0102030405060708n);
});

test("post-v8.0 and unallocated load/store encodings are UNDEFINED", { skip }, () => {
  const d = sharedDecoder();
  const ws = words(`
    .arch armv8.5-a+memtag
    ldadd x1, x2, [x3]
    swp w1, w2, [x3]
    cas x1, x2, [x3]
    casp x0, x1, x2, x3, [x4]
    ldapr x1, [x2]
    ldlar x1, [x2]
    stllr w1, [x2]
    stgp x1, x2, [x3]
    .inst 0xb8c00c20
    .inst 0xf8e00c20
    .inst 0xf8800c20
    .inst 0x68400000
    .inst 0xec400000
    .inst 0xfc800c20
    .inst 0xfc000820
  `);
  // .inst: size 10 opc 11 (pre-index); LDRAA (v8.3 pointer auth); PRFM pre-index; LDNP with opc 01; SIMD LDNP
  // opc 11; SIMD size 11 opc 10 (pre-index); SIMD unprivileged (STTR D).
  for (const w of ws) assert.equal(d.nameOf(w), "UNDEFINED", (w >>> 0).toString(16));
  // Reserved field values checked when executed: LD3R with S = 1; ST1 "replicate" (L = 0); LD1 single H lane
  // with size<0> = 1.
  for (const w of [0x4d40f420, 0x0d00c420, 0x0d404420]) {
    const m = machine([w]);
    setX(m.c, 1, BigInt(DATA));
    m.c.run(2);
    assert.equal(m.exc.length, 1, (w >>> 0).toString(16));
    assert.equal(esr(m.c) >>> 26, 0);
  }
});

test("SIMD&FP LDR/STR B/H/S/D/Q: all modes, scalar loads zero the register", { skip }, () => {
  const m = machine(`
    ldr b0, [x1, #3]
    ldr h1, [x1, #2]
    ldr s2, [x1, #4]
    ldr d3, [x1, #8]
    ldr q4, [x1, #16]
    ldur q5, [x1, #-1]
    ldr q6, [x1, x2, lsl #4]
    ldr d7, [x1, w3, sxtw #3]
    ldr s8, [x1], #4
    ldr h9, [x1, #2]!
    str q4, [x4, #32]
    str d3, [x4], #-8
    stur s2, [x4, #3]
    str h1, [x4, #-32]!
    str b0, [x4, x2]
    str q4, [x4, x2, lsl #4]
  `);
  const { c, mmu } = m;
  pattern(mmu.u8, DATA, 1024);
  for (let v = 0; v < 10; v++) setV(c, v, -1n);
  setX(c, 1, BigInt(DATA + 256));
  setX(c, 2, 3n);
  setX(c, 3, 0xfffffffen);
  setX(c, 4, BigInt(DATA + 512));
  c.run(m.n + 1);
  const pv = (k: number, n: number): bigint => patVal(256 + k, n);
  assert.equal(getV(c, 0), pv(3, 1));
  assert.equal(getV(c, 1), pv(2, 2));
  assert.equal(getV(c, 2), pv(4, 4));
  assert.equal(getV(c, 3), pv(8, 8));
  assert.equal(getV(c, 4), pv(16, 16));
  assert.equal(getV(c, 5), pv(-1, 16));
  assert.equal(getV(c, 6), pv(48, 16));
  assert.equal(getV(c, 7), pv(-16, 8));
  assert.equal(getV(c, 8), pv(0, 4));
  assert.equal(getV(c, 9), pv(6, 2));
  assert.equal(getX(c, 1), BigInt(DATA + 262));
  const u8 = mmu.u8, X = DATA + 512;
  for (let k = 0; k < 16; k++) assert.equal(u8[X + 32 + k], pat(256 + 16 + k));
  for (let k = 0; k < 8; k++) assert.equal(u8[X + k], pat(256 + 8 + k));
  for (let k = 0; k < 4; k++) assert.equal(u8[X - 8 + 3 + k], pat(256 + 4 + k));
  assert.equal(getX(c, 4), BigInt(X - 40));
  assert.equal(mmu.dv.getUint16(X - 40, true), Number(pv(2, 2)));
  assert.equal(u8[X - 40 + 3], pat(256 + 3));
  for (let k = 0; k < 16; k++) assert.equal(u8[X - 40 + 48 + k], pat(256 + 16 + k));
});

test("SIMD&FP LDP/STP/LDNP/STNP of S/D/Q", { skip }, () => {
  const m = machine(`
    ldp s0, s1, [x1, #-8]
    ldp d2, d3, [x1, #16]!
    ldp q4, q5, [x1], #-32
    ldnp q6, q7, [x1, #64]
    stp q4, q5, [x2, #-32]!
    stp d2, d3, [x2], #64
    stnp s0, s1, [x2, #8]
  `);
  const { c, mmu } = m;
  pattern(mmu.u8, DATA, 1024);
  for (let v = 0; v < 8; v++) setV(c, v, -1n);
  setX(c, 1, BigInt(DATA + 256));
  setX(c, 2, BigInt(DATA + 640));
  c.run(m.n + 1);
  const pv = (k: number, n: number): bigint => patVal(256 + k, n);
  assert.equal(getV(c, 0), pv(-8, 4));
  assert.equal(getV(c, 1), pv(-4, 4));
  assert.equal(getV(c, 2), pv(16, 8));
  assert.equal(getV(c, 3), pv(24, 8));
  assert.equal(getV(c, 4), pv(16, 16));
  assert.equal(getV(c, 5), pv(32, 16));
  assert.equal(getX(c, 1), BigInt(DATA + 240));
  assert.equal(getV(c, 6), patVal(240 + 64, 16));
  assert.equal(getV(c, 7), patVal(240 + 80, 16));
  const dv = mmu.dv;
  assert.equal(dv.getBigUint64(DATA + 608, true), pv(16, 8));
  assert.equal(dv.getBigUint64(DATA + 640 - 8, true), pv(40, 8));
  assert.equal(dv.getBigUint64(DATA + 608 + 8 - 0, true), pv(24, 8));
  assert.equal(getX(c, 2), BigInt(DATA + 672));
  assert.equal(dv.getUint32(DATA + 680, true), Number(pv(-8, 4)));
  assert.equal(dv.getUint32(DATA + 684, true), Number(pv(-4, 4)));
});

// ---------------------------------------------------------------------------------------------------------
// Structures: compare with a reference model of the Arm ARM pseudocode.

/** Reference LDn/STn (multiple structures) on byte arrays. */
function refMulti(vregs: Uint8Array[], mem: Uint8Array, t: number, nregs: number, selem: number, esize: number,
  q: boolean, load: boolean): void {
  const rpt = selem === 1 ? nregs : 1;
  const elements = (q ? 16 : 8) / esize;
  let a = 0;
  for (let r = 0; r < rpt; r++) {
    for (let e = 0; e < elements; e++) {
      for (let s = 0; s < selem; s++) {
        const tt = (t + r + s) % 32;
        for (let b = 0; b < esize; b++) {
          if (load) vregs[tt][e * esize + b] = mem[a + b]; else mem[a + b] = vregs[tt][e * esize + b];
        }
        a += esize;
      }
    }
  }
  if (load && !q) for (let r = 0; r < Math.max(rpt, selem); r++) vregs[(t + r) % 32].fill(0, 8);
}

const ARR: [string, number, boolean][] = [["8b", 1, false], ["16b", 1, true], ["4h", 2, false], ["8h", 2, true],
  ["2s", 4, false], ["4s", 4, true], ["1d", 8, false], ["2d", 8, true]];

test("LD1-LD4/ST1-ST4 multiple structures: every arrangement and register count, post-index", { skip }, () => {
  interface Case { src: string; t: number; nregs: number; selem: number; esize: number; q: boolean; load: boolean; post: number }
  const cases: Case[] = [];
  let k = 0;
  for (const load of [true, false]) {
    for (const [arr, esize, q] of ARR) {
      for (const [selem, nregs] of [[1, 1], [1, 2], [1, 3], [1, 4], [2, 2], [3, 3], [4, 4]]) {
        if (selem > 1 && arr === "1d") continue;
        const t = (k * 7 + 29) % 32; // exercise wrap-around past V31
        const regs = Array.from({ length: nregs }, (_, j) => `v${(t + j) % 32}.${arr}`).join(", ");
        const op = (load ? "ld" : "st") + selem;
        const bytes = nregs * (q ? 16 : 8);
        const form = k % 3;
        const src = form === 0 ? `${op} {${regs}}, [x1]` : form === 1 ? `${op} {${regs}}, [x1], #${bytes}` : `${op} {${regs}}, [x1], x2`;
        cases.push({ src, t, nregs, selem, esize, q, load, post: form === 0 ? 0 : form === 1 ? bytes : -24 });
        k++;
      }
    }
  }
  const ws = words(cases.map((x) => x.src).join("\n"));
  for (let j = 0; j < cases.length; j++) {
    const x = cases[j];
    const m = machine([ws[j]]);
    const { c, mmu } = m;
    pattern(mmu.u8, DATA, 256);
    const vregs: Uint8Array[] = [];
    for (let v = 0; v < 32; v++) {
      for (let b = 0; b < 16; b++) c.vu8[16 * v + b] = (v * 16 + b + 0x40) & 0xff;
      vregs.push(c.vu8.slice(16 * v, 16 * v + 16));
    }
    setX(c, 1, BigInt(DATA + 64));
    setX(c, 2, -24n);
    const mem = mmu.u8.slice(DATA + 64, DATA + 128);
    refMulti(vregs, mem, x.t, x.nregs, x.selem, x.esize, x.q, x.load);
    c.run(2);
    assert.equal(c.r[66], CODE + 8, x.src);
    assert.deepEqual(m.exc, [], x.src);
    for (let v = 0; v < 32; v++) assert.deepEqual(c.vu8.slice(16 * v, 16 * v + 16), vregs[v], `${x.src}: v${v}`);
    assert.deepEqual(mmu.u8.slice(DATA + 64, DATA + 128), mem, x.src);
    assert.equal(getX(c, 1), BigInt(DATA + 64 + x.post), x.src);
  }
  // LD2-LD4 with the 1D arrangement are reserved.
  const m = machine("ld1 {v0.1d}, [x1]");
  m.mmu.i32[CODE >> 2] = 0x0c408c20; // LD2 {v0.1d, v1.1d}: UNDEFINED at execution
  setX(m.c, 1, BigInt(DATA));
  m.c.run(2);
  assert.equal(m.exc.length, 1);
  assert.equal(esr(m.c) >>> 26, 0);
});

test("single-structure lane loads/stores and LDnR replicate", { skip }, () => {
  const srcs: string[] = [];
  const lanes: [string, number, number][] = [["b", 1, 16], ["h", 2, 8], ["s", 4, 4], ["d", 8, 2]];
  for (const load of [true, false]) {
    for (const [sfx, esize, n] of lanes) {
      for (let selem = 1; selem <= 4; selem++) {
        const lane = (selem * 5 + esize) % n;
        const t = (selem * 9 + esize * 3) % 32;
        const regs = Array.from({ length: selem }, (_, j) => `v${(t + j) % 32}.${sfx}`).join(", ");
        const post = selem % 2 === 0 ? `, #${selem * esize}` : selem === 3 ? ", x2" : "";
        srcs.push(`${load ? "ld" : "st"}${selem} {${regs}}[${lane}], [x1]${post}`);
      }
    }
  }
  for (const [arr] of ARR) {
    for (let selem = 1; selem <= 4; selem++) {
      const t = (selem * 11) % 32;
      const regs = Array.from({ length: selem }, (_, j) => `v${(t + j) % 32}.${arr}`).join(", ");
      srcs.push(`ld${selem}r {${regs}}, [x1]${selem === 2 ? ", x2" : ""}`);
    }
  }
  const ws = words(srcs.join("\n"));
  for (let j = 0; j < srcs.length; j++) {
    const src = srcs[j];
    const m = machine([ws[j]]);
    const { c, mmu } = m;
    pattern(mmu.u8, DATA + 64, 192);
    for (let v = 0; v < 32; v++) for (let b = 0; b < 16; b++) c.vu8[16 * v + b] = (v * 16 + b + 0x40) & 0xff;
    const before = c.vu8.slice();
    setX(c, 1, BigInt(DATA + 64));
    setX(c, 2, 40n);
    c.run(2);
    assert.equal(c.r[66], CODE + 8, src);
    // Reference: parse the operands back out of the source.
    const mm = /^(ld|st)(\d)(r?) \{([^}]*)\}(?:\[(\d+)\])?, \[x1\](?:, (#\d+|x2))?$/.exec(src);
    assert.ok(mm, src);
    const load = mm[1] === "ld", selem = Number(mm[2]), rep = mm[3] === "r";
    const regs = mm[4].split(", ").map((s) => /v(\d+)\.(\w+)/.exec(s)!);
    const vs = regs.map((x) => Number(x[1]));
    const arrName = regs[0][2];
    const esize = rep ? ARR.find((a) => a[0] === arrName)![1] : { b: 1, h: 2, s: 4, d: 8 }[arrName]!;
    const exp = before.slice();
    const mem = mmu.u8.slice(DATA + 64, DATA + 96);
    const orig = new Uint8Array(32); pattern(orig, 0, 32);
    if (rep) {
      const q = ARR.find((a) => a[0] === arrName)![2];
      for (let s = 0; s < selem; s++) {
        for (let b = 0; b < 16; b++) exp[16 * vs[s] + b] = b < (q ? 16 : 8) ? orig[s * esize + (b % esize)] : 0;
      }
    } else {
      const lane = Number(mm[5]);
      for (let s = 0; s < selem; s++) {
        for (let b = 0; b < esize; b++) {
          if (load) exp[16 * vs[s] + lane * esize + b] = orig[s * esize + b];
          else orig[s * esize + b] = before[16 * vs[s] + lane * esize + b];
        }
      }
    }
    assert.deepEqual(c.vu8, exp, src);
    assert.deepEqual(mem, orig, src);
    const post = mm[6] === undefined ? 0 : mm[6] === "x2" ? 40 : Number(mm[6].slice(1));
    assert.equal(getX(c, 1), BigInt(DATA + 64 + post), src);
  }
});

test("LDTR/STTR use EL0 permissions at EL1", { skip }, () => {
  // Identity map of the first 2 MiB with 4K pages (T0SZ = 25: level-1 start). Page 0x10 (DATA) is EL1-only;
  // page 0x11 is EL0 read/write.
  const m = machine(`
    ldr x2, [x1]
    ldtr x3, [x4]
    sttr x3, [x4, #8]
    ldtrb w5, [x1]
  `, 4 << 20);
  const { c, mmu } = m;
  const L1 = 0x200000, L2 = 0x201000, L3 = 0x202000;
  poke64(mmu, L1, BigInt(L2 | 3));
  poke64(mmu, L2, BigInt(L3 | 3));
  for (let p = 0; p < 512; p++) {
    const ap = p === 0x11 ? 1 : 0; // AP[2:1] = 01: EL0 RW
    poke64(mmu, L3 + 8 * p, BigInt((p << 12) | 0x400 | (ap << 6) | 3));
  }
  mmu.sctlr = 1; mmu.tcrLo = 25; mmu.ttbr0Lo = L1; mmu.ttbr0Hi = 0;
  mmu.regimeChanged(true);
  poke64(mmu, DATA, 0x42n);
  poke64(mmu, 0x11000, 0x43n);
  setX(c, 1, BigInt(DATA));
  setX(c, 4, 0x11000n);
  setX(c, 5, 77n);
  c.run(m.n + 1);
  assert.equal(getX(c, 2), 0x42n);
  assert.equal(getX(c, 3), 0x43n);
  assert.equal(peek64(mmu, 0x11008), 0x43n);
  // The EL0-inaccessible page: permission fault, level 3; the register is untouched.
  assert.equal(m.exc.length, 1);
  assert.equal(esr(c) & 0x3f, 0x0f);
  assert.equal(getX(c, 5), 77n);
  assert.equal(far(c), BigInt(DATA));
  // Masks restored: running again, the privileged load still works (and the LDTRB faults again).
  c.r[66] = CODE; m.exc.length = 0;
  setX(c, 2, 0n);
  c.run(m.n + 1);
  assert.equal(getX(c, 2), 0x42n);
  assert.equal(m.exc.length, 1);
  assert.equal(far(c), BigInt(DATA));
});

test("SIMD&FP loads/stores trap when CPACR_EL1.FPEN disables FP", { skip }, () => {
  for (const src of ["ldr q0, [x1]", "ldp d0, d1, [x1]", "ld1 {v0.16b}, [x1]", "ld1r {v0.4s}, [x1]", "str s0, [x1], #4"]) {
    const m = machine(src);
    setX(m.c, 1, BigInt(DATA));
    m.c.sys[CPACR_EL1] = 0;
    m.c.updateFpTrap();
    m.c.run(2);
    assert.equal(m.exc.length, 1, src);
    assert.equal(esr(m.c) >>> 26, 0x07, src);
    assert.equal(getX(m.c, 1), BigInt(DATA), src);
  }
});
