/**
 * Advanced SIMD integer / permute / data-movement instructions (simd-*.ts).
 *
 * 1. Hand-checked cases for the instructions glibc's string routines lean on (values from the Arm ARM
 *    pseudocode), assembled with the cross assembler when installed.
 * 2. A differential fuzz against qemu-aarch64 (-cpu cortex-a57, an ARMv8.0 core): random instruction words drawn
 *    from every encoding pattern simd.ts registers, run on random register contents in a tiny static harness
 *    under qemu and in Xeno; all 32 V registers, X0..X7, FPSR.QC and UNDEFINED-ness must agree. Skipped when
 *    the cross compiler or qemu is missing.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cpu, sharedDecoder } from "../../src/cpu/arm64/cpu.js";
import { Mmu } from "../../src/mmu/mmu.js";
import { ESR_EL1 } from "../../src/cpu/arm64/sysregs.js";
import type { Decoder, Handler } from "../../src/cpu/arm64/decoder.js";
import { register as registerSimd } from "../../src/cpu/arm64/simd.js";

function have(cmd: string): boolean {
  try { execFileSync("which", [cmd], { stdio: "ignore" }); return true; } catch { return false; }
}
const hasAs = have("aarch64-linux-gnu-as") && have("aarch64-linux-gnu-objcopy");
const hasQemu = have("aarch64-linux-gnu-gcc") && have("qemu-aarch64-static");
const work = join(tmpdir(), `xeno-simd-isa-${process.getuid?.() ?? 0}`);
mkdirSync(work, { recursive: true });

function asm(src: string): Uint32Array {
  writeFileSync(join(work, "a.s"), src + "\n");
  execFileSync("aarch64-linux-gnu-as", ["-o", join(work, "a.o"), join(work, "a.s")]);
  execFileSync("aarch64-linux-gnu-objcopy", ["-O", "binary", "-j", ".text", join(work, "a.o"), join(work, "a.bin")]);
  const b = readFileSync(join(work, "a.bin"));
  return new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

class Machine {
  readonly mmu = new Mmu(new ArrayBuffer(1 << 20), 0);
  readonly c = new Cpu(this.mmu);
  undef = false;
  constructor() { this.c.onEl1 = () => { this.undef = true; }; }
  /** Runs the words at 0x1000 (one instruction each). */
  exec(words: ArrayLike<number>): void {
    const ram = new Int32Array(this.mmu.ram as ArrayBuffer);
    for (let k = 0; k < words.length; k++) ram[(0x1000 >> 2) + k] = words[k] | 0;
    this.c.invalidateAllCode();
    this.undef = false;
    this.c.r[66] = 0x1000; this.c.r[67] = 0;
    this.c.run(words.length);
  }
  setB(v: number, bytes: number[]): void { for (let k = 0; k < 16; k++) this.c.vu8[16 * v + k] = bytes[k % bytes.length]; }
  bytes(v: number): number[] { return Array.from(this.c.vu8.subarray(16 * v, 16 * v + 16)); }
  hex(v: number): string { return this.bytes(v).map((b) => b.toString(16).padStart(2, "0")).join(""); }
}

const skipAs = !hasAs && "no aarch64 cross assembler";

test("CMEQ/UMAXP/ADDP/SHRN/UMINV/BIC/ORR as used by strlen/memchr", { skip: skipAs }, () => {
  const m = new Machine();
  const s = Array.from(Buffer.from("hello, world!\0ab"));
  m.setB(1, s);
  m.exec(asm(`
    cmeq v2.16b, v1.16b, #0
    umaxp v3.16b, v2.16b, v2.16b
    addp v4.2d, v2.2d, v2.2d
    shrn v5.8b, v2.8h, #4
    uminv b6, v1.16b
    movi v7.16b, #0x0f
    bic v8.16b, v1.16b, v7.16b
    orr v9.16b, v1.16b, v7.16b
    cnt v10.16b, v1.16b
    rev64 v11.16b, v1.16b
    umov x0, v5.d[0]
  `));
  assert.equal(m.undef, false);
  const z = s.map((b) => (b === 0 ? 0xff : 0));
  assert.deepEqual(m.bytes(2), z);
  assert.equal(m.hex(3).slice(0, 16), "000000000000ff00");
  assert.equal(m.hex(6), "00" + "0".repeat(30));
  assert.deepEqual(m.bytes(8), s.map((b) => b & 0xf0));
  assert.deepEqual(m.bytes(9), s.map((b) => b | 0x0f));
  assert.deepEqual(m.bytes(11).slice(0, 8), s.slice(0, 8).reverse());
  // SHRN #4 on the CMEQ mask: nibble per byte; byte 13 is the NUL.
  assert.equal(m.c.vu8[16 * 5 + 6], 0xf0);
  assert.equal(m.c.r[0] >>> 0, m.c.vu32[20]);
});

test("TBL/TBX/EXT/ZIP/DUP/INS/SMOV", { skip: skipAs }, () => {
  const m = new Machine();
  m.setB(1, Array.from({ length: 16 }, (_, k) => k * 3));
  m.setB(2, Array.from({ length: 16 }, (_, k) => 100 + k));
  m.setB(3, [15, 0, 31, 16, 32, 255, 1, 17, 2, 3, 4, 5, 6, 7, 8, 9]);
  m.setB(9, [0xaa]);
  m.c.r[8] = -2; m.c.r[9] = -1;
  m.exec(asm(`
    tbl v4.16b, {v1.16b, v2.16b}, v3.16b
    mov v5.16b, v9.16b
    tbx v5.8b, {v1.16b}, v3.8b
    ext v6.16b, v1.16b, v2.16b, #3
    zip1 v7.8h, v1.8h, v2.8h
    dup v8.4s, w4
    ins v8.b[15], v2.b[0]
    smov x6, v9.b[3]
  `));
  assert.equal(m.undef, false);
  assert.deepEqual(m.bytes(4), [45, 0, 115, 100, 0, 0, 3, 101, 6, 9, 12, 15, 18, 21, 24, 27]);
  assert.deepEqual(m.bytes(5), [45, 0, 0xaa, 0xaa, 0xaa, 0xaa, 3, 0xaa, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(m.bytes(6), [9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42, 45, 100, 101, 102]);
  assert.deepEqual(m.bytes(7).slice(0, 8), [0, 3, 100, 101, 6, 9, 102, 103]);
  assert.deepEqual(m.bytes(8), [0xfe, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 100]);
  assert.equal(m.c.r[12], -86); assert.equal(m.c.r[13], -1);
});

test("CPACR_EL1.FPEN trap (EC 0x07) before any SIMD register is touched", () => {
  const m = new Machine();
  m.setB(1, [1]); m.setB(2, [2]); m.setB(0, [9]);
  m.c.fpTrap = true;
  m.exec([0x4e228420]); // add v0.16b, v1.16b, v2.16b
  assert.equal(m.undef, true);
  assert.equal(m.c.sys[ESR_EL1] >>> 26, 0x07);
  assert.deepEqual(m.bytes(0), new Array(16).fill(9));
  m.c.fpTrap = false;
  m.exec([0x4e228420]);
  assert.equal(m.undef, false);
  assert.deepEqual(m.bytes(0), new Array(16).fill(3));
});

test("CPACR_EL1.FPEN trap (EC 0x07) for floating point, scalar and vector, and FP<->integer moves", () => {
  const m = new Machine();
  // fadd d0, d1, d2; fadd v0.2d, v1.2d, v2.2d; fmov x0, d1; fcvtzs x0, d1; fmov d0, #1.0
  for (const w of [0x1e622820, 0x4e62d420, 0x9e660020, 0x9e780020, 0x1e6e1000]) {
    m.setB(0, [9]); m.c.r[0] = 77; m.c.r[1] = 0;
    m.c.fpTrap = true;
    m.exec([w]);
    assert.equal(m.undef, true, `${w.toString(16)} trapped`);
    assert.equal(m.c.sys[ESR_EL1] >>> 26, 0x07, `${w.toString(16)}: EC 0x07`);
    assert.deepEqual(m.bytes(0), new Array(16).fill(9), `${w.toString(16)}: V0 untouched`);
    assert.equal(m.c.r[0], 77, `${w.toString(16)}: X0 untouched`);
    m.c.fpTrap = false;
    m.exec([w]);
    assert.equal(m.undef, false, `${w.toString(16)} runs with FP enabled`);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Differential fuzz against qemu

/** Every pattern simd.ts registers, with its name. */
function simdPatterns(): { mask: number; value: number; name: string }[] {
  const out: { mask: number; value: number; name: string }[] = [];
  const fake = {
    def(pattern: string, name: string, _h: Handler) {
      const p = pattern.replace(/[\s_]/g, "");
      let mask = 0, value = 0;
      for (let k = 0; k < 32; k++) {
        if (p[k] !== "x") { mask |= 1 << (31 - k); if (p[k] === "1") value |= 1 << (31 - k); }
      }
      out.push({ mask: mask >>> 0, value: value >>> 0, name });
    },
  };
  registerSimd(fake as unknown as Decoder);
  return out;
}

/** xorshift32: deterministic inputs. */
function rng(seed: number): () => number {
  let s = seed | 0 || 1;
  return () => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return s >>> 0; };
}

const SPECIAL32 = [0, 0xffffffff, 0x80000000, 0x7fffffff, 0x00000001, 0x80008000, 0x7fff7fff, 0x80808080, 0x7f7f7f7f,
  0xffff0000, 0x0000ffff, 0x00ff00ff, 0x01020304, 0xfffefdfc, 0x40000000, 0xc0000000];

function randWord32(r: () => number): number {
  const k = r() % 8;
  if (k < 4) return r();
  if (k < 6) return SPECIAL32[r() % SPECIAL32.length];
  if (k === 6) return r() % 64; // small (shift amounts, indices)
  return (r() % 64) - 32 >>> 0;
}

const HARNESS_C = String.raw`
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
extern void run_case(uint8_t *st, void *code);
__asm__(
".globl run_case\n"
"run_case:\n"
"  stp x29, x30, [sp, #-96]!\n  stp x19, x20, [sp, #16]\n  stp d8, d9, [sp, #32]\n  stp d10, d11, [sp, #48]\n"
"  stp d12, d13, [sp, #64]\n  stp d14, d15, [sp, #80]\n  mov x19, x0\n  mov x20, x1\n"
"  ldp q0, q1, [x19, #0]\n ldp q2, q3, [x19, #32]\n ldp q4, q5, [x19, #64]\n ldp q6, q7, [x19, #96]\n"
"  ldp q8, q9, [x19, #128]\n ldp q10, q11, [x19, #160]\n ldp q12, q13, [x19, #192]\n ldp q14, q15, [x19, #224]\n"
"  ldp q16, q17, [x19, #256]\n ldp q18, q19, [x19, #288]\n ldp q20, q21, [x19, #320]\n ldp q22, q23, [x19, #352]\n"
"  ldp q24, q25, [x19, #384]\n ldp q26, q27, [x19, #416]\n ldp q28, q29, [x19, #448]\n ldp q30, q31, [x19, #480]\n"
"  add x9, x19, #512\n ldp x0, x1, [x9, #0]\n ldp x2, x3, [x9, #16]\n ldp x4, x5, [x9, #32]\n ldp x6, x7, [x9, #48]\n"
"  msr fpsr, xzr\n  blr x20\n"
"  stp q0, q1, [x19, #0]\n stp q2, q3, [x19, #32]\n stp q4, q5, [x19, #64]\n stp q6, q7, [x19, #96]\n"
"  stp q8, q9, [x19, #128]\n stp q10, q11, [x19, #160]\n stp q12, q13, [x19, #192]\n stp q14, q15, [x19, #224]\n"
"  stp q16, q17, [x19, #256]\n stp q18, q19, [x19, #288]\n stp q20, q21, [x19, #320]\n stp q22, q23, [x19, #352]\n"
"  stp q24, q25, [x19, #384]\n stp q26, q27, [x19, #416]\n stp q28, q29, [x19, #448]\n stp q30, q31, [x19, #480]\n"
"  add x9, x19, #512\n stp x0, x1, [x9, #0]\n stp x2, x3, [x9, #16]\n stp x4, x5, [x9, #32]\n stp x6, x7, [x9, #48]\n"
"  mrs x8, fpsr\n  str x8, [x19, #576]\n"
"  ldp x19, x20, [sp, #16]\n  ldp d8, d9, [sp, #32]\n  ldp d10, d11, [sp, #48]\n  ldp d12, d13, [sp, #64]\n"
"  ldp d14, d15, [sp, #80]\n  ldp x29, x30, [sp], #96\n  ret\n");
static volatile int sigill;
static void on_ill(int s, siginfo_t *si, void *uc) {
  (void)s; (void)si; sigill = 1; ((ucontext_t *)uc)->uc_mcontext.pc += 4;
}
int main(int argc, char **argv) {
  if (argc < 3) return 2;
  FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
  struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_sigaction = on_ill; sa.sa_flags = SA_SIGINFO;
  sigaction(SIGILL, &sa, 0);
  uint32_t *code = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  uint8_t rec[580], st[592];
  while (fread(rec, 1, 580, in) == 580) {
    uint32_t w; memcpy(&w, rec, 4);
    code[0] = w; code[1] = 0xd65f03c0;
    __builtin___clear_cache((char *)code, (char *)(code + 2));
    memset(st, 0, sizeof st);
    memcpy(st, rec + 4, 576);
    sigill = 0;
    run_case(st, code);
    uint32_t f = sigill; memcpy(st + 584, &f, 4);
    fwrite(st, 1, 588, out);
  }
  fclose(out);
  return 0;
}
`;

function buildHarness(): string {
  const exe = join(work, "simd-harness");
  const src = join(work, "simd-harness.c");
  const prev = existsSync(src) ? readFileSync(src, "utf8") : "";
  if (prev !== HARNESS_C || !existsSync(exe)) {
    writeFileSync(src, HARNESS_C);
    execFileSync("aarch64-linux-gnu-gcc", ["-O1", "-static", "-o", exe, src]);
  }
  return exe;
}

/** GPR-touching encodings: keep Rd/Rn within X0..X7 (the harness's own registers live above). */
const GPR = /^(DUP \(general\)|INS \(general\)|UMOV|SMOV)$/;

test("differential fuzz vs qemu-aarch64 (cortex-a57)", { skip: !hasQemu && "no aarch64 gcc/qemu" }, (t) => {
  const PER_PATTERN = Number(process.env.SIMD_FUZZ_PER_PATTERN ?? 32);
  const pats = simdPatterns();
  const dec = sharedDecoder();
  const myNames = new Set(pats.map((p) => p.name));
  const r = rng(0x5eed1234);
  const words: number[] = [];
  for (const p of pats) {
    for (let k = 0; k < PER_PATTERN; k++) {
      let w = ((r() & ~p.mask) | p.value) >>> 0;
      if (GPR.test(p.name)) w = (w & ~(0x18 | 0x300)) >>> 0;
      // PMULL Vd.1Q (size 11) is the Crypto extension, which cortex-a57 has and ARMv8.0 base does not.
      if ((w & 0xbf20fc00) === 0x0e20e000 && ((w >>> 22) & 3) === 3) continue;
      if (!myNames.has(dec.nameOf(w | 0))) continue; // a more specific encoding elsewhere (FP) wins
      words.push(w);
    }
  }
  const REC = 580, OUT = 588;
  const inBuf = Buffer.alloc(words.length * REC);
  for (let k = 0; k < words.length; k++) {
    inBuf.writeUInt32LE(words[k], k * REC);
    for (let j = 0; j < 144; j++) inBuf.writeUInt32LE(randWord32(r), k * REC + 4 + 4 * j);
    if (r() & 1) {
      // Make registers near-copies of each other so equal lanes (CMEQ, min/max ties, zero differences) occur.
      const base = k * REC + 4, src = base + 16 * (r() % 32);
      for (let v = 0; v < 32; v++) {
        if (r() % 3 === 0) continue;
        for (let b = 0; b < 16; b++) if (r() % 4 !== 0) inBuf[base + 16 * v + b] = inBuf[src + b];
      }
    }
  }
  const inPath = join(work, "in.bin"), outPath = join(work, "out.bin");
  writeFileSync(inPath, inBuf);
  execFileSync("qemu-aarch64-static", ["-cpu", "cortex-a57", buildHarness(), inPath, outPath]);
  const outBuf = readFileSync(outPath);
  assert.equal(outBuf.length, words.length * OUT);

  const m = new Machine();
  const failures: string[] = [];
  const byName = new Map<string, number>();
  let undefs = 0;
  for (let k = 0; k < words.length; k++) {
    const c = m.c;
    const rec = inBuf.subarray(k * REC + 4, k * REC + REC);
    for (let b = 0; b < 512; b++) c.vu8[b] = rec[b];
    for (let x = 0; x < 16; x++) c.r[x] = rec.readInt32LE(512 + 4 * x);
    c.fpsr = 0;
    m.exec([words[k]]);
    const exp = outBuf.subarray(k * OUT, (k + 1) * OUT);
    const expIll = exp.readUInt32LE(584) !== 0;
    const name = dec.nameOf(words[k] | 0);
    let bad = "";
    if (expIll && m.undef) undefs++;
    if (expIll !== m.undef) bad = `undef: qemu ${expIll} xeno ${m.undef}`;
    else if (!expIll) {
      for (let v = 0; v < 32 && !bad; v++) {
        for (let b = 0; b < 16; b++) {
          if (c.vu8[16 * v + b] !== exp[16 * v + b]) {
            bad = `v${v}: qemu ${exp.subarray(16 * v, 16 * v + 16).toString("hex")} xeno ${Buffer.from(c.vu8.subarray(16 * v, 16 * v + 16)).toString("hex")}`;
            break;
          }
        }
      }
      for (let x = 0; x < 16 && !bad; x++) {
        if (c.r[x] !== exp.readInt32LE(512 + 4 * x)) bad = `x${x >> 1}: qemu ${exp.readBigUInt64LE(512 + 8 * (x >> 1)).toString(16)} xeno ${(c.r[x | 1] >>> 0).toString(16)}:${(c.r[x & ~1] >>> 0).toString(16)}`;
      }
      const qc = (exp.readUInt32LE(576) >>> 27) & 1;
      if (!bad && qc !== ((c.fpsr >>> 27) & 1)) bad = `QC: qemu ${qc} xeno ${(c.fpsr >>> 27) & 1}`;
    }
    if (bad) {
      byName.set(name, (byName.get(name) ?? 0) + 1);
      if ((byName.get(name) ?? 0) <= 3) failures.push(`${words[k].toString(16).padStart(8, "0")} ${name}: ${bad}`);
    }
  }
  t.diagnostic(`${words.length} cases, ${undefs} UNDEFINED in both`);
  const summary = [...byName].map(([n, c]) => `${n}: ${c}`).join(", ");
  assert.equal(failures.length, 0, `${words.length} cases; failures by encoding: ${summary}\n${failures.join("\n")}`);
});
