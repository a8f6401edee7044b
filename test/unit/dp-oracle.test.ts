/**
 * Differential test of the integer data-processing groups against qemu-aarch64-static: random instruction words
 * from every dp-imm / dp-reg encoding (registers restricted to X0..X7 and 31), run on edge-biased register
 * values and flags, one instruction per case. Skipped when the cross toolchain or qemu is missing.
 * DP_ORACLE_CASES=n (default 3000) and DP_ORACLE_SEED=s change the run.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cpu, sharedDecoder } from "../../src/cpu/arm64/cpu.js";
import { Mmu } from "../../src/mmu/mmu.js";

function have(cmd: string): boolean {
  try { execFileSync("which", [cmd], { stdio: "ignore" }); return true; } catch { return false; }
}
const tools = have("aarch64-linux-gnu-gcc") && have("qemu-aarch64-static");

/** Encodings to fuzz (bit 31 first, x = random). */
const PATTERNS = [
  "xxx100010xxxxxxxxxxxxxxxxxxxxxxx", // add/sub imm
  "xxx100100xxxxxxxxxxxxxxxxxxxxxxx", // logical imm
  "xxx100101xxxxxxxxxxxxxxxxxxxxxxx", // move wide
  "xxx100110xxxxxxxxxxxxxxxxxxxxxxx", // bitfield
  "x00100111x0xxxxxxxxxxxxxxxxxxxxx", // extr
  "xxx01010xxxxxxxxxxxxxxxxxxxxxxxx", // logical shifted
  "xxx01011xx0xxxxxxxxxxxxxxxxxxxxx", // add/sub shifted
  "xxx01011001xxxxxxxxxxxxxxxxxxxxx", // add/sub extended
  "xxx11010000xxxxx000000xxxxxxxxxx", // adc/sbc
  "xx111010010xxxxxxxxxx0xxxxx0xxxx", // ccmp/ccmn
  "xx011010100xxxxxxxxx0xxxxxxxxxxx", // csel
  "x101101011000000000xxxxxxxxxxxxx", // dp1
  "x0011010110xxxxx00xxxxxxxxxxxxxx", // dp2
  "x0011011xxxxxxxxxxxxxxxxxxxxxxxx", // dp3
];

let seed = Number(process.env.DP_ORACLE_SEED ?? 12345) >>> 0;
function rnd(): number { // xorshift32
  seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
  return seed;
}

const EDGE32 = [0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe, 0x80000001, 0xff, 0x100, 0xffff, 0x8000,
  0x7f, 0x80, 63, 64, 31, 32, 33];
function val32(): number {
  const k = rnd() % 4;
  return k === 0 ? EDGE32[rnd() % EDGE32.length] : k === 1 ? rnd() % 300 : rnd();
}
/** A 64-bit value as [lo, hi] (unsigned 32-bit numbers). */
function val64(): [number, number] {
  switch (rnd() % 6) {
    case 0: return [val32(), 0];
    case 1: { const v = val32(); return [v, v & 0x80000000 ? 0xffffffff : 0]; }
    case 2: return [val32(), val32()];
    case 3: return [rnd(), rnd() % 0x200000]; // < 2^53
    case 4: return [0, val32()];
    default: return [rnd(), rnd()];
  }
}

function randomWord(pat: string): number {
  let w = 0;
  for (let k = 0; k < 32; k++) {
    const ch = pat[k], bit = 31 - k;
    if (ch === "1" || (ch === "x" && (rnd() & 1))) w |= 1 << bit;
  }
  // Registers: map 8..30 into 0..7 at the usual Rd/Rn/Rm/Ra positions (keeps X9/X10/X28/SP setup intact).
  for (const pos of [0, 5, 16, 10]) {
    if (pos === 10 && ((w >>> 24) & 0x1f) !== 0x1b) continue; // Ra only in dp3
    const f = (w >>> pos) & 31;
    if (f >= 8 && f < 31) w = (w & ~(31 << pos)) | ((f & 7) << pos);
  }
  // Shifted-register forms: often LSL #0 (the commonest, with fast-path handlers).
  if (pat.startsWith("xxx0101") && (rnd() & 1)) w &= ~((3 << 22) | (63 << 10));
  // Bitfield: often a valid 64-bit LSR/ASR #imm (imms = 63, N = sf = 1).
  if (pat.startsWith("xxx100110") && (rnd() & 3) === 0) w |= (1 << 31) | (1 << 22) | (63 << 10);
  return w | 0;
}

interface Case { w: number; regs: [number, number][]; nzcv: number; sp: [number, number]; }

const hex = (v: number): string => "0x" + (v >>> 0).toString(16);
const hex64 = (lo: number, hi: number): string =>
  "0x" + (hi >>> 0).toString(16).padStart(8, "0") + (lo >>> 0).toString(16).padStart(8, "0");

test("dp oracle: random data-processing instructions vs qemu-aarch64", { skip: !tools && "no cross toolchain/qemu" }, () => {
  const ncases = Number(process.env.DP_ORACLE_CASES ?? 3000);
  const mmu = new Mmu(new ArrayBuffer(1 << 20), 0);
  const c = new Cpu(mmu);
  const base = 0x1000;
  const cases: Case[] = [];
  const results: (number[] | null)[] = [];
  let undef = 0;
  while (cases.length < ncases) {
    const w = randomWord(PATTERNS[rnd() % PATTERNS.length]);
    const cs: Case = { w, regs: [], nzcv: rnd() & 15, sp: [rnd() & ~15, rnd() % 0x10000] };
    for (let k = 0; k < 8; k++) cs.regs.push(val64());
    // Interpreter.
    const at = base + 4 * cases.length;
    mmu.write32(at, 0, w);
    c.r.fill(0);
    for (let k = 0; k < 8; k++) { c.r[2 * k] = cs.regs[k][0]; c.r[2 * k + 1] = cs.regs[k][1]; }
    c.r[64] = cs.sp[0]; c.r[65] = cs.sp[1];
    c.nzcv = cs.nzcv;
    c.r[66] = at; c.r[67] = 0;
    c.run(1);
    if (c.r[66] !== at + 4 || c.r[67] !== 0) { undef++; mmu.write32(at, 0, 0xd503201f); /* NOP */ continue; }
    const out: number[] = [];
    for (let k = 0; k < 16; k++) out.push(c.r[k] >>> 0);
    out.push((c.nzcv << 28) >>> 0, 0, c.r[64] >>> 0, c.r[65] >>> 0);
    results.push(out);
    cases.push(cs);
  }
  // qemu program.
  const lines: string[] = [".text", ".global _start", "_start:", "  adrp x28, buf", "  add x28, x28, :lo12:buf"];
  cases.forEach((cs, k) => {
    for (let j = 0; j < 8; j++) lines.push(`  ldr x${j}, =${hex64(cs.regs[j][0], cs.regs[j][1])}`);
    lines.push(`  ldr x9, =${hex64(cs.sp[0], cs.sp[1])}`, "  mov sp, x9");
    lines.push(`  mov x9, #${hex(cs.nzcv << 28)}`, "  msr nzcv, x9");
    lines.push(`  .inst ${hex(cs.w)}`);
    lines.push("  mrs x9, nzcv", "  mov x10, sp");
    for (let j = 0; j < 8; j += 2) lines.push(`  stp x${j}, x${j + 1}, [x28], #16`);
    lines.push("  stp x9, x10, [x28], #16");
    if (k % 64 === 63) lines.push(`  b 1f`, "  .ltorg", "1:");
  });
  lines.push("  mov x0, #1", "  adrp x1, buf", "  add x1, x1, :lo12:buf", `  ldr x2, =${cases.length * 80}`,
    "  mov x8, #64", "  svc #0", "  mov x0, #0", "  mov x8, #93", "  svc #0", "  .ltorg",
    ".bss", ".balign 16", `buf: .space ${cases.length * 80}`);
  const dir = mkdtempSync(join(tmpdir(), "dp-oracle-"));
  try {
    writeFileSync(join(dir, "t.S"), lines.join("\n") + "\n");
    execFileSync("aarch64-linux-gnu-gcc", ["-nostdlib", "-static", "-o", join(dir, "t"), join(dir, "t.S")]);
    const buf = execFileSync("qemu-aarch64-static", [join(dir, "t")], { maxBuffer: 1 << 28 });
    assert.equal(buf.length, cases.length * 80, "qemu output size");
    const u32 = new Uint32Array(buf.buffer, buf.byteOffset, buf.length / 4);
    const bad: string[] = [];
    const names = ["x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "nzcv", "sp"];
    cases.forEach((cs, k) => {
      const mine = results[k]!;
      for (let j = 0; j < 10; j++) {
        const ql = u32[k * 20 + 2 * j], qh = u32[k * 20 + 2 * j + 1];
        if (ql !== mine[2 * j] || qh !== mine[2 * j + 1]) {
          let dis = "";
          if (bad.length < 40) try {
            writeFileSync(join(dir, "w.bin"), Buffer.from(new Int32Array([cs.w]).buffer));
            dis = execFileSync("aarch64-linux-gnu-objdump", ["-D", "-b", "binary", "-m", "aarch64", join(dir, "w.bin")])
              .toString().split("\n").filter((l) => l.includes("0:")).pop()?.trim() ?? "";
          } catch { /* ignore */ }
          bad.push(`${hex(cs.w)} [${sharedDecoder().nameOf(cs.w)}] ${dis}: ${names[j]} qemu=${hex64(ql, qh)} xeno=${hex64(mine[2 * j], mine[2 * j + 1])}` +
            ` in: ${cs.regs.map(([l, h]) => hex64(l, h)).join(" ")} nzcv=${cs.nzcv}`);
          break;
        }
      }
    });
    if (bad.length > 0) assert.fail(`${bad.length} mismatches of ${cases.length} (${undef} undefined skipped):\n` + bad.slice(0, 40).join("\n"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
