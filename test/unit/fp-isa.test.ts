/**
 * Scalar floating point (src/cpu/arm64/fp.ts) against qemu-aarch64-static as the oracle: random and boundary
 * inputs (NaN payloads, signed zeros, denormals, infinities, integer-conversion limits, ties) under several FPCR
 * settings (rounding modes, FZ, DN), comparing the destination register, FPSR and NZCV bit for bit.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { haveTools, makeCases, runQemu, runXeno, compare } from "./fp-harness.js";

const skip = !haveTools() && "qemu-aarch64-static / aarch64-linux-gnu-as not installed";

function diff(insns: string[], per: number, dbl: boolean, seed: number): void {
  const cases = makeCases(insns, per, dbl, seed);
  const bad = compare(cases, runQemu(cases), runXeno(cases));
  assert.deepEqual(bad, [], bad.join("\n"));
}

const ARITH = ["fadd", "fsub", "fmul", "fdiv", "fmax", "fmin", "fmaxnm", "fminnm", "fnmul"];

test("scalar arithmetic (double)", { skip }, () => diff(ARITH.map((o) => `${o} d0, d1, d2`), 300, true, 1));
test("scalar arithmetic (single)", { skip }, () => diff(ARITH.map((o) => `${o} s0, s1, s2`), 300, false, 2));
test("fused multiply-add (double)", { skip }, () =>
  diff(["fmadd", "fmsub", "fnmadd", "fnmsub"].map((o) => `${o} d0, d1, d2, d3`), 500, true, 3));
test("fused multiply-add (single)", { skip }, () =>
  diff(["fmadd", "fmsub", "fnmadd", "fnmsub"].map((o) => `${o} s0, s1, s2, s3`), 500, false, 4));
const UNARY = ["fmov", "fabs", "fneg", "fsqrt", "frintn", "frintp", "frintm", "frintz", "frinta", "frintx", "frinti"];
test("scalar unary (double)", { skip }, () => diff(UNARY.map((o) => `${o} d0, d1`), 200, true, 5));
test("scalar unary (single)", { skip }, () => diff(UNARY.map((o) => `${o} s0, s1`), 200, false, 6));
test("fcvt between precisions", { skip }, () => {
  diff(["fcvt s0, d1", "fcvt h0, d1"], 400, true, 7);
  diff(["fcvt d0, s1", "fcvt h0, s1"], 400, false, 8);
  diff(["fcvt s0, h1", "fcvt d0, h1"], 400, false, 9);
});
const CVT = ["fcvtns", "fcvtnu", "fcvtps", "fcvtpu", "fcvtms", "fcvtmu", "fcvtzs", "fcvtzu", "fcvtas", "fcvtau"];
test("fp to integer", { skip }, () => {
  diff(CVT.flatMap((o) => [`${o} w0, d1`, `${o} x0, d1`]), 150, true, 10);
  diff(CVT.flatMap((o) => [`${o} w0, s1`, `${o} x0, s1`]), 150, false, 11);
  diff(["fcvtzs w0, d1, #1", "fcvtzs x0, d1, #32", "fcvtzu w0, d1, #31", "fcvtzu x0, d1, #64", "fcvtzs x0, d1, #63"], 200, true, 12);
  diff(["fcvtzs w0, s1, #1", "fcvtzs x0, s1, #32", "fcvtzu w0, s1, #32", "fcvtzu x0, s1, #64"], 200, false, 13);
});
test("integer to fp", { skip }, () => {
  diff(["scvtf d0, x1", "ucvtf d0, x1", "scvtf s0, x1", "ucvtf s0, x1", "scvtf d0, w1", "ucvtf d0, w1",
    "scvtf s0, w1", "ucvtf s0, w1", "scvtf d0, x1, #3", "ucvtf s0, x1, #64", "scvtf s0, w1, #32", "ucvtf d0, w1, #7"],
  200, true, 14);
});
test("fmov general and immediate", { skip }, () => {
  diff(["fmov w0, s1", "fmov s0, w1", "fmov x0, d1", "fmov d0, x1", "fmov x0, v1.d[1]", "fmov v0.d[1], x1",
    "fmov d0, #1.0", "fmov s0, #-0.125", "fmov d0, #31.0", "fmov s0, #1.9375"], 20, true, 15);
});
test("compare and select", { skip }, () => {
  diff(["fcmp d1, d2", "fcmpe d1, d2", "fcmp d1, #0.0", "fcmpe d1, #0.0", "fccmp d1, d2, #5, eq",
    "fccmpe d1, d2, #10, lt", "fcsel d0, d1, d2, gt", "fcsel d0, d1, d2, vs"], 200, true, 16);
  diff(["fcmp s1, s2", "fcmpe s1, s2", "fcmp s1, #0.0", "fcmpe s1, #0.0", "fccmp s1, s2, #3, ne",
    "fccmpe s1, s2, #0, ge", "fcsel s0, s1, s2, mi"], 200, false, 17);
});

/** Hard fused multiply-add inputs: cancellation, products near half an ulp of the addend, tiny results. */
test("fused multiply-add hard cases", { skip }, async () => {
  const { Rng, FPCRS } = await import("./fp-harness.js");
  const g = new Rng(99);
  const f = new Float64Array(1), w = new Int32Array(f.buffer);
  const fs = new Float32Array(1), ws = new Int32Array(fs.buffer);
  const rnd = (e: number): number => (1 + (g.next() * 4294967296 + g.next()) / 2 ** 64) * 2 ** e * (g.next() & 1 ? -1 : 1);
  const cases: import("./fp-harness.js").FpCase[] = [];
  const dq = (x: number): number[] => { f[0] = x; return [w[0], w[1], 0, 0]; };
  const sq = (x: number): number[] => { fs[0] = x; return [ws[0], 0, 0, 0]; };
  for (let k = 0; k < 1500; k++) {
    const kind = k % 6;
    const ex = (g.next() % 200) - 100, ey = (g.next() % 200) - 100;
    let x = rnd(ex), y = rnd(ey), z: number;
    if (kind === 0) z = -(x * y);
    else if (kind === 1) z = -(x * y) * (1 + ((g.next() % 9) - 4) * 2 ** -52);
    else if (kind === 2) z = rnd(ex + ey + 53) ; // product near half an ulp of z
    else if (kind === 3) { x = rnd(-540); y = rnd(-530); z = rnd(-1070) * (g.next() & 1 ? 1 : 0); } // tiny
    else if (kind === 4) { x = rnd(600); y = rnd(420); z = -(x * y); } // huge
    else { z = 2 ** (ex + ey + 53) * (g.next() & 1 ? 1 : -1); x = 1 + 2 ** -52 * (g.next() % 3); y = 2 ** (ex + ey) * (1 + 2 ** -52); }
    const fpcr = g.pick(FPCRS);
    for (const op of ["fmadd", "fmsub", "fnmadd", "fnmsub"]) {
      if (g.next() % 4 !== 0) continue;
      cases.push({ insn: `${op} d0, d1, d2, d3`, v: [[0, 0, 0, 0], dq(x), dq(y), dq(z)], x: [[0, 0], [0, 0], [0, 0], [0, 0]], fpcr, nzcv: 0 });
    }
    // Single precision: products are exact in double; near-ties of the single rounding.
    const xs = Math.fround(rnd(ex % 40)), ys = Math.fround(rnd(ey % 40));
    const zs = kind === 0 ? Math.fround(-(xs * ys)) : kind === 2 ? Math.fround(rnd((ex % 40) + (ey % 40) + 24)) :
      Math.fround(-(xs * ys) * (1 + ((g.next() % 9) - 4) * 2 ** -23));
    cases.push({ insn: "fmadd s0, s1, s2, s3", v: [[0, 0, 0, 0], sq(xs), sq(ys), sq(zs)], x: [[0, 0], [0, 0], [0, 0], [0, 0]], fpcr, nzcv: 0 });
  }
  const bad = compare(cases, runQemu(cases), runXeno(cases));
  assert.deepEqual(bad, [], bad.join("\n"));
});
