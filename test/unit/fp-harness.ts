/**
 * Differential test harness for FP/SIMD instructions: each case is one instruction with inputs in V0..V3 and
 * X0..X3, an FPCR value and NZCV; outputs are V0, X0, FPSR, NZCV. The same cases run under qemu-aarch64-static
 * (one generated static program, the oracle) and on Xeno's Cpu (one instruction each), and are compared.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cpu } from "../../src/cpu/arm64/cpu.js";
import { Mmu } from "../../src/mmu/mmu.js";

export interface FpCase {
  insn: string;
  /** V0..V3 as 4 x 32-bit words each (lane 0 first). */
  v: number[][];
  /** X0..X3 as [lo, hi]. */
  x: [number, number][];
  fpcr: number;
  nzcv: number;
}

export interface FpResult { v0: number[]; x0: [number, number]; fpsr: number; nzcv: number }

export function haveTools(): boolean {
  return existsSync("/usr/bin/qemu-aarch64-static") && existsSync("/usr/bin/aarch64-linux-gnu-as");
}

const hex = (w: number): string => "0x" + (w >>> 0).toString(16);

/** Assembles the instructions, returning their words. */
export function assemble(insns: string[], dir: string): number[] {
  const src = ".text\n" + insns.map((s) => s + "\n").join("");
  writeFileSync(join(dir, "i.s"), src);
  execFileSync("aarch64-linux-gnu-as", ["-march=armv8-a", "-o", join(dir, "i.o"), join(dir, "i.s")]);
  execFileSync("aarch64-linux-gnu-objcopy", ["-O", "binary", "-j", ".text", join(dir, "i.o"), join(dir, "i.bin")]);
  const b = readFileSync(join(dir, "i.bin"));
  const out: number[] = [];
  for (let k = 0; k < insns.length; k++) out.push(b.readInt32LE(4 * k));
  return out;
}

const IN_WORDS = 4 * 4 + 4 * 2 + 2; // V0..V3, X0..X3, fpcr, nzcv
const OUT_WORDS = 4 + 2 + 2;

/** Runs the cases under qemu. */
export function runQemu(cases: FpCase[]): FpResult[] {
  const dir = mkdtempSync(join(tmpdir(), "xeno-fp-"));
  const data: string[] = [];
  let code = ".text\n.globl _start\n_start:\n adrp x20, inp\n add x20, x20, :lo12:inp\n adrp x21, outp\n add x21, x21, :lo12:outp\n";
  for (const cs of cases) {
    const words: number[] = [];
    for (const q of cs.v) words.push(...q);
    for (const [lo, hi] of cs.x) words.push(lo, hi);
    words.push(cs.fpcr, cs.nzcv << 28);
    data.push(" .word " + words.map(hex).join(","));
    code += " ldp q0, q1, [x20]\n ldp q2, q3, [x20, #32]\n ldp x0, x1, [x20, #64]\n ldp x2, x3, [x20, #80]\n" +
      " ldr w9, [x20, #96]\n msr fpcr, x9\n msr fpsr, xzr\n ldr w9, [x20, #100]\n msr nzcv, x9\n" +
      ` ${cs.insn}\n` +
      " mrs x9, fpsr\n mrs x10, nzcv\n str q0, [x21]\n str x0, [x21, #16]\n stp w9, w10, [x21, #24]\n" +
      ` add x20, x20, #${IN_WORDS * 4}\n add x21, x21, #${OUT_WORDS * 4}\n`;
  }
  code += ` mov x0, #1\n adrp x1, outp\n add x1, x1, :lo12:outp\n ldr x2, =${cases.length * OUT_WORDS * 4}\n mov x8, #64\n svc #0\n` +
    " mov x0, #0\n mov x8, #93\n svc #0\n .ltorg\n";
  const src = code + ".data\n.balign 16\ninp:\n" + data.join("\n") + "\n.bss\n.balign 16\noutp: .space " +
    (cases.length * OUT_WORDS * 4) + "\n";
  writeFileSync(join(dir, "p.s"), src);
  execFileSync("aarch64-linux-gnu-as", ["-march=armv8-a", "-o", join(dir, "p.o"), join(dir, "p.s")]);
  execFileSync("aarch64-linux-gnu-ld", ["-static", "-o", join(dir, "p"), join(dir, "p.o")]);
  const out = execFileSync("qemu-aarch64-static", [join(dir, "p")], { maxBuffer: 1 << 28 });
  const res: FpResult[] = [];
  for (let k = 0; k < cases.length; k++) {
    const o = k * OUT_WORDS * 4;
    const w = (j: number): number => out.readInt32LE(o + 4 * j);
    res.push({ v0: [w(0), w(1), w(2), w(3)], x0: [w(4), w(5)], fpsr: w(6), nzcv: (w(7) >>> 28) & 15 });
  }
  return res;
}

/** Runs the cases on Xeno's interpreter. */
export function runXeno(cases: FpCase[]): FpResult[] {
  const dir = mkdtempSync(join(tmpdir(), "xeno-fpi-"));
  const words = assemble(cases.map((c) => c.insn), dir);
  const size = Math.max(1 << 20, ((cases.length * 4 + 0x1000 + 0xfffff) >>> 20) << 20);
  const mmu = new Mmu(new ArrayBuffer(size), 0);
  const cpu = new Cpu(mmu);
  for (let k = 0; k < words.length; k++) mmu.i32[(0x1000 >>> 2) + k] = words[k];
  const res: FpResult[] = [];
  for (let k = 0; k < cases.length; k++) {
    const cs = cases[k];
    for (let r = 0; r < 4; r++) for (let j = 0; j < 4; j++) cpu.vi32[4 * r + j] = cs.v[r][j];
    for (let r = 0; r < 4; r++) { cpu.r[2 * r] = cs.x[r][0]; cpu.r[2 * r + 1] = cs.x[r][1]; }
    cpu.fpcr = cs.fpcr; cpu.fpsr = 0; cpu.nzcv = cs.nzcv;
    cpu.r[66] = 0x1000 + 4 * k; cpu.r[67] = 0;
    cpu.run(1);
    res.push({ v0: [cpu.vi32[0], cpu.vi32[1], cpu.vi32[2], cpu.vi32[3]], x0: [cpu.r[0], cpu.r[1]], fpsr: cpu.fpsr, nzcv: cpu.nzcv });
  }
  return res;
}

/** Compares; returns descriptions of mismatches (at most `max`). */
export function compare(cases: FpCase[], a: FpResult[], b: FpResult[], max = 20): string[] {
  const bad: string[] = [];
  const h = (w: number): string => (w >>> 0).toString(16).padStart(8, "0");
  const fmt = (r: FpResult): string =>
    `v0=${r.v0.slice().reverse().map(h).join("_")} x0=${h(r.x0[1])}${h(r.x0[0])} fpsr=${h(r.fpsr)} nzcv=${r.nzcv}`;
  let count = 0;
  for (let k = 0; k < cases.length; k++) {
    const x = a[k], y = b[k];
    if (x.v0.every((w, j) => w === y.v0[j]) && x.x0[0] === y.x0[0] && x.x0[1] === y.x0[1] && x.fpsr === y.fpsr &&
      x.nzcv === y.nzcv) continue;
    count++;
    if (bad.length < max) {
      const cs = cases[k];
      bad.push(`${cs.insn} fpcr=${h(cs.fpcr)} in v1=${cs.v[1].slice().reverse().map(h).join("_")} v2=${cs.v[2].slice().reverse().map(h).join("_")} v3=${cs.v[3].slice().reverse().map(h).join("_")} v0=${cs.v[0].slice().reverse().map(h).join("_")} x1=${h(cs.x[1][1])}${h(cs.x[1][0])}\n   qemu: ${fmt(x)}\n   xeno: ${fmt(y)}`);
    }
  }
  if (count > max) bad.push(`... ${count} mismatches in total`);
  return bad;
}

// ---------------------------------------------------------------------------------------------------------------
// Interesting inputs

/** Deterministic PRNG (xorshift32). */
export class Rng {
  constructor(private s: number) {}
  next(): number { let x = this.s; x ^= x << 13; x ^= x >>> 17; x ^= x << 5; this.s = x; return x >>> 0; }
  pick<T>(a: readonly T[]): T { return a[this.next() % a.length]; }
}

/** Doubles as [lo, hi] word pairs. */
export const D_SPECIAL: [number, number][] = [
  [0, 0], [0, 0x80000000], [0, 0x3ff00000], [0, 0xbff00000], [0, 0x3ff80000], [0, 0x40040000], [0, 0x3fe00000],
  [0, 0x40080000], [0xffffffff, 0x7fefffff], [0xffffffff, 0xffefffff], [0, 0x00100000], [0, 0x80100000],
  [1, 0], [0xffffffff, 0x000fffff], [0, 0x80080000], [0, 0x7ff00000], [0, 0xfff00000],
  [0x1234, 0x7ff80000], [0x5678, 0x7ff00000], [0x9abc, 0xfff80001], [0x1, 0xfff00000],
  [0, 0x41e00000], [0xffe00000, 0x41dfffff], [0x00200000, 0xc1e00000], [0, 0xc1e00000], [0, 0x43e00000],
  [0, 0xc3e00000], [0, 0x43f00000], [0xffffffff, 0x43efffff], [0, 0x41f00000], [0x00100000, 0xc1e00000],
  [0x9999999a, 0x3fb99999], [0x55555555, 0x3fd55555], [0, 0x3ff00001], [1, 0x3ff00000], [0xffffffff, 0x3fefffff],
  [0, 0x3fe80000], [0, 0x3ff40000], [0, 0x3ffc0000], [0, 0xbfe00000], [0, 0xc0040000], [0xffffffff, 0x7fdfffff],
  [0, 0x7fe00000], [0, 0x3ca00000], [0, 0x01a00000], [0, 0x36a00000], [0, 0x47e00000], [0x20000000, 0x47efffff],
  [0, 0x38100000], [0xe0000000, 0x380fffff], [0, 0x3e700000], [0, 0x40e00000], [0, 0x40effe00], [0, 0x3f100000],
];
/** Singles as words. */
export const S_SPECIAL: number[] = [
  0, 0x80000000, 0x3f800000, 0xbf800000, 0x3fc00000, 0x40200000, 0x3f000000, 0x40400000, 0x7f7fffff, 0xff7fffff,
  0x00800000, 0x80800000, 1, 0x007fffff, 0x80400000, 0x7f800000, 0xff800000, 0x7fc01234, 0x7f805678, 0xffc00001,
  0xff800001, 0x4f000000, 0x4effffff, 0xcf000000, 0xcf000001, 0x5f000000, 0xdf000000, 0x5f800000, 0x5f7fffff,
  0x4f800000, 0x3dcccccd, 0x3eaaaaab, 0x3f800001, 0x3f7fffff, 0x3f400000, 0x3fa00000, 0x3fe00000, 0xbf000000,
  0x7effffff, 0x7f000000, 0x33800000, 0x0c800000, 0x477fe000, 0x477ff000, 0x38800000, 0x387fc000, 0x33000000,
  0x46fffe00,
];

export function randD(g: Rng): [number, number] {
  const k = g.next() % 8;
  if (k < 4) return g.pick(D_SPECIAL);
  if (k === 4) return [g.next() | 0, g.next() | 0];
  if (k === 5) return [g.next() | 0, (0x3f000000 + (g.next() % 0x01400000)) | 0];
  const [lo, hi] = g.pick(D_SPECIAL);
  return [(lo + (g.next() % 5) - 2) | 0, hi | 0];
}
export function randS(g: Rng): number {
  const k = g.next() % 8;
  if (k < 4) return g.pick(S_SPECIAL) | 0;
  if (k === 4) return g.next() | 0;
  if (k === 5) return (0x3a000000 + (g.next() % 0x0b000000)) | 0;
  return (g.pick(S_SPECIAL) + (g.next() % 5) - 2) | 0;
}
export const FPCRS = [0, 0, 0, 0, 0x400000, 0x800000, 0xc00000, 0x1000000, 0x2000000, 0x1c00000];

/** A V register value: lanes of doubles or singles. */
export function randV(g: Rng, dbl: boolean): number[] {
  if (dbl) { const a = randD(g), b = randD(g); return [a[0] | 0, a[1] | 0, b[0] | 0, b[1] | 0]; }
  return [randS(g), randS(g), randS(g), randS(g)];
}
/** X register value: mix of special integers and random. */
export function randX(g: Rng): [number, number] {
  const SPECIAL: [number, number][] = [[0, 0], [1, 0], [-1, -1], [0x7fffffff, 0], [0x80000000, -1], [0, 0x80000000],
    [-1, 0x7fffffff], [0x80000000, 0], [-1, 0], [0x00000400, 0x00200000], [0x00000401, 0x00200000],
    [0xfffffc01, 0x001fffff], [0x80, 0x0], [0x1000001, 0], [0x1000003, 0], [0x123456, 0x00100000], [-2, -1]];
  const k = g.next() % 3;
  if (k === 0) return g.pick(SPECIAL);
  if (k === 1) return [g.next() | 0, g.next() | 0];
  return [g.next() | 0, (g.next() % 16) - 8];
}

/** Builds n cases of instruction insn with double or single lanes in V1..V3 and random X1. */
export function makeCases(insns: string[], perInsn: number, dbl: boolean, seed: number): FpCase[] {
  const g = new Rng(seed);
  const out: FpCase[] = [];
  for (const insn of insns) {
    for (let k = 0; k < perInsn; k++) {
      out.push({
        insn,
        v: [randV(g, dbl), randV(g, dbl), randV(g, dbl), randV(g, dbl)],
        x: [randX(g), randX(g), randX(g), randX(g)],
        fpcr: g.pick(FPCRS),
        nzcv: g.next() & 15,
      });
    }
  }
  return out;
}
