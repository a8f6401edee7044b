/**
 * Differential fuzz of loads/stores against qemu-aarch64: random load/store instructions (all addressing modes,
 * pairs, SIMD&FP registers, structures) run once under qemu inside a generated static program that loads a
 * random register state, executes the instruction and dumps registers and memory; the same instruction then
 * runs on Xeno's Cpu from the same state. Skips when the cross toolchain or qemu is missing.
 * Seed with LDST_SEED, size with LDST_CASES.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Mmu } from "../../src/mmu/mmu.js";
import { Cpu } from "../../src/cpu/arm64/cpu.js";
import { WFI, haveAsm, words } from "./ldst-asm.js";

const QEMU = "qemu-aarch64-static";
function has(cmd: string, arg: string): boolean {
  try { execFileSync(cmd, [arg], { stdio: "ignore" }); return true; } catch { return false; }
}
const skip = !haveAsm || !has(QEMU, "--version") || !has("aarch64-linux-gnu-ld", "--version")
  ? "cross toolchain or qemu-aarch64-static missing" : false;

const N = Number(process.env.LDST_CASES ?? 600);
let seed = Number(process.env.LDST_SEED ?? 12345) >>> 0;
function rnd(): number { // xorshift32
  seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
  return seed;
}
const ri = (lo: number, hi: number): number => lo + (rnd() % (hi - lo + 1));
const pick = <T>(a: readonly T[]): T => a[rnd() % a.length];

const DATA_BASE = 0x600000, DATA_SZ = 1024, STATE_SZ = 768;
const stateBase = (): number => DATA_BASE + N * DATA_SZ;
const outBase = (): number => stateBase() + N * STATE_SZ;

/** Registers that hold bases / indexes; targets are drawn from the rest so writeback never aliases. */
const TARGETS = [0, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 30];
function two(): [number, number] {
  const a = pick(TARGETS);
  let b = pick(TARGETS);
  while (b === a) b = pick(TARGETS);
  return [a, b];
}
const base = (): string => `x${ri(1, 5)}`;
const log2 = (n: number): number => Math.log2(n);

const GP: [string, string, number][] = [["ldrb", "w", 1], ["ldrsb", "w", 1], ["ldrsb", "x", 1], ["strb", "w", 1],
  ["ldrh", "w", 2], ["ldrsh", "w", 2], ["ldrsh", "x", 2], ["strh", "w", 2], ["ldr", "w", 4], ["ldrsw", "x", 4],
  ["str", "w", 4], ["ldr", "x", 8], ["str", "x", 8]];
const FPR: [string, number][] = [["b", 1], ["h", 2], ["s", 4], ["d", 8], ["q", 16]];

function regOffset(size: number): string {
  const s = pick([0, log2(size)]);
  switch (rnd() % 4) {
    case 0: return s === 0 && rnd() % 2 ? `x7` : `x7, lsl #${s}`;
    case 1: return `w8, sxtw${s ? ` #${s}` : ""}`;
    case 2: return `w9, uxtw${s ? ` #${s}` : ""}`;
    default: return `x7, sxtx${s ? ` #${s}` : ""}`;
  }
}

/** An address operand for a single-register access of `size` bytes (unscaled mnemonic flag in [1]). */
function addr(size: number, allowUnpriv: boolean): [string, "u" | "t" | ""] {
  const n = base();
  switch (rnd() % (allowUnpriv ? 6 : 5)) {
    case 0: return [`[${n}, #${ri(0, 24) * size}]`, ""];
    case 1: return [`[${n}, #${ri(-64, 63)}]!`, ""];
    case 2: return [`[${n}], #${ri(-64, 63)}`, ""];
    case 3: return [`[${n}, ${regOffset(size)}]`, ""];
    case 4: return [`[${n}, #${ri(-64, 63)}]`, "u"];
    default: return [`[${n}, #${ri(-64, 63)}]`, "t"];
  }
}

function gen(): string {
  const kind = rnd() % 8;
  if (kind <= 1) {
    const [mn, rk, size] = pick(GP);
    const [a, u] = addr(size, true);
    const m = u === "" ? mn : mn.replace(/^(ld|st)r/, `$1${u}r`);
    return `${m} ${rk}${pick(TARGETS)}, ${a}`;
  }
  if (kind === 2) {
    const [r, size] = pick(FPR);
    const [a, u] = addr(size, false);
    return `${u === "u" ? "ldur" : "ldr"} ${r}${ri(0, 31)}, ${a}`.replace(/^ld/, rnd() % 2 ? "ld" : "st");
  }
  if (kind === 3) {
    const [t, t2] = two();
    const [mn, rk, size] = pick([["ldp", "x", 8], ["stp", "x", 8], ["ldp", "w", 4], ["stp", "w", 4], ["ldpsw", "x", 4],
      ["ldnp", "x", 8], ["stnp", "w", 4]] as [string, string, number][]);
    const imm = ri(-8, 7) * size, n = base();
    const mode = mn.includes("np") ? 0 : rnd() % 3;
    const a = mode === 0 ? `[${n}, #${imm}]` : mode === 1 ? `[${n}, #${imm}]!` : `[${n}], #${imm}`;
    return `${mn} ${rk}${t}, ${rk}${t2}, ${a}`;
  }
  if (kind === 4) {
    const [r, size] = pick(FPR.slice(2));
    const t = ri(0, 31), t2 = (t + ri(1, 31)) % 32;
    const mn = pick(["ldp", "stp", "ldnp", "stnp"]);
    const imm = ri(-4, 3) * size, n = base();
    const mode = mn.includes("np") ? 0 : rnd() % 3;
    const a = mode === 0 ? `[${n}, #${imm}]` : mode === 1 ? `[${n}, #${imm}]!` : `[${n}], #${imm}`;
    return `${mn} ${r}${t}, ${r}${t2}, ${a}`;
  }
  // Structures.
  const ARR: [string, number, number][] = [["8b", 1, 8], ["16b", 1, 16], ["4h", 2, 8], ["8h", 2, 16], ["2s", 4, 8],
    ["4s", 4, 16], ["1d", 8, 8], ["2d", 8, 16]];
  const t = ri(0, 31), n = base();
  const load = rnd() % 2 === 0;
  const form = rnd() % 3;
  if (kind <= 6) {
    const [arr, , dbytes] = pick(ARR);
    let selem = ri(1, 4), nregs = selem;
    if (arr === "1d") selem = 1;
    if (selem === 1) nregs = ri(1, 4);
    const regs = Array.from({ length: nregs }, (_, j) => `v${(t + j) % 32}.${arr}`).join(", ");
    const post = form === 0 ? "" : form === 1 ? `, #${nregs * dbytes}` : ", x6";
    return `${load ? "ld" : "st"}${selem} {${regs}}, [${n}]${post}`;
  }
  const selem = ri(1, 4);
  if (load && rnd() % 3 === 0) {
    const [arr, esize] = pick(ARR);
    const regs = Array.from({ length: selem }, (_, j) => `v${(t + j) % 32}.${arr}`).join(", ");
    const post = form === 0 ? "" : form === 1 ? `, #${selem * esize}` : ", x6";
    return `ld${selem}r {${regs}}, [${n}]${post}`;
  }
  const [sfx, esize] = pick([["b", 1], ["h", 2], ["s", 4], ["d", 8]] as [string, number][]);
  const regs = Array.from({ length: selem }, (_, j) => `v${(t + j) % 32}.${sfx}`).join(", ");
  const post = form === 0 ? "" : form === 1 ? `, #${selem * esize}` : ", x6";
  return `${load ? "ld" : "st"}${selem} {${regs}}[${ri(0, 16 / esize - 1)}], [${n}]${post}`;
}

test("loads/stores match qemu-aarch64 on random instructions and states", { skip }, () => {
  const insns: string[] = [];
  for (let k = 0; k < N; k++) insns.push(gen());
  const ws = words(insns.join("\n"));
  assert.equal(ws.length, N);

  // Initial state: data bytes, X registers (bases and indexes in range), V registers.
  const data = new Uint8Array(N * DATA_SZ);
  for (let k = 0; k < data.length; k++) data[k] = rnd() & 0xff;
  const state = new DataView(new ArrayBuffer(N * STATE_SZ));
  for (let k = 0; k < N; k++) {
    const s = k * STATE_SZ;
    for (let r = 0; r < 31; r++) { state.setUint32(s + 8 * r, rnd(), true); state.setUint32(s + 8 * r + 4, rnd(), true); }
    const area = DATA_BASE + k * DATA_SZ + 512;
    for (let r = 1; r <= 5; r++) state.setBigUint64(s + 8 * r, BigInt(area + ri(0, 15)), true);
    state.setBigInt64(s + 48, BigInt(ri(-40, 40)), true);
    state.setBigInt64(s + 56, BigInt(ri(-16, 16)), true);
    state.setInt32(s + 64, ri(-16, 16), true);
    state.setInt32(s + 72, ri(0, 16), true);
    for (let b = 256; b < STATE_SZ; b += 4) state.setUint32(s + b, rnd(), true);
  }

  // The qemu program.
  const L: string[] = [".text", ".global _start", "_start:"];
  for (let k = 0; k < N; k++) {
    const st = stateBase() + k * STATE_SZ, out = outBase() + k * STATE_SZ;
    L.push(`ldr x29, =${out}`, "mov sp, x29", `ldr x30, =${st}`, "add x29, x30, #256");
    for (let q = 0; q < 32; q += 2) L.push(`ldp q${q}, q${q + 1}, [x29, #${q * 16}]`);
    for (let r = 0; r < 30; r += 2) L.push(`ldp x${r}, x${r + 1}, [x30, #${r * 8}]`);
    L.push("ldr x30, [x30, #240]", `.inst ${ws[k] >>> 0}`);
    for (let r = 0; r < 30; r += 2) L.push(`stp x${r}, x${r + 1}, [sp, #${r * 8}]`);
    L.push("str x30, [sp, #240]", "add x30, sp, #256");
    for (let q = 0; q < 32; q += 2) L.push(`stp q${q}, q${q + 1}, [x30, #${q * 16}]`);
    if (k % 256 === 255) L.push("b 1f", ".ltorg", "1:");
  }
  const total = N * (DATA_SZ + 2 * STATE_SZ);
  L.push(`ldr x1, =${DATA_BASE}`, `ldr x2, =${total}`, "mov x0, #1", "mov x8, #64", "svc #0",
    "mov x0, #0", "mov x8, #93", "svc #0", ".ltorg", ".data", ".balign 4096");
  for (let k = 0; k < data.length; k += 64) L.push(".byte " + Array.from(data.subarray(k, k + 64)).join(","));
  const sb = new Uint8Array(state.buffer);
  for (let k = 0; k < sb.length; k += 64) L.push(".byte " + Array.from(sb.subarray(k, k + 64)).join(","));
  L.push(`.zero ${N * STATE_SZ}`);

  const dir = mkdtempSync(join(tmpdir(), "xeno-ldst-diff-"));
  let dump: Buffer;
  try {
    writeFileSync(join(dir, "p.s"), L.join("\n") + "\n");
    execFileSync("aarch64-linux-gnu-as", ["-o", join(dir, "p.o"), join(dir, "p.s")]);
    execFileSync("aarch64-linux-gnu-ld", ["-static", "-Ttext=0x400000", `-Tdata=0x${DATA_BASE.toString(16)}`, "-o", join(dir, "p"), join(dir, "p.o")]);
    dump = execFileSync(QEMU, [join(dir, "p")], { maxBuffer: 64 << 20 });
  } finally {
    if (process.env.LDST_KEEP === undefined) rmSync(dir, { recursive: true, force: true });
    else console.log("kept " + dir);
  }
  assert.equal(dump.length, total);

  // Xeno: one Cpu, each case's instruction in its own word slot, the same state.
  const mmu = new Mmu(new ArrayBuffer(8 << 20), 0);
  const c = new Cpu(mmu);
  mmu.u8.set(data, DATA_BASE);
  // Each instruction is followed by a WFI, which ends the run (the loop checks its budget only at branches).
  for (let k = 0; k < N; k++) { mmu.i32[(0x1000 >> 2) + 2 * k] = ws[k]; mmu.i32[(0x1000 >> 2) + 2 * k + 1] = WFI; }
  const failures: string[] = [];
  const qOut = new DataView(dump.buffer, dump.byteOffset + N * (DATA_SZ + STATE_SZ));
  for (let k = 0; k < N && failures.length < 10; k++) {
    const s = k * STATE_SZ;
    for (let r = 0; r < 31; r++) { c.r[2 * r] = state.getInt32(s + 8 * r, true); c.r[2 * r + 1] = state.getInt32(s + 8 * r + 4, true); }
    for (let b = 0; b < 128; b++) c.vi32[b] = state.getInt32(s + 256 + 4 * b, true);
    c.r[66] = 0x1000 + 8 * k; c.r[67] = 0;
    c.run(2);
    const why: string[] = [];
    if (c.r[66] !== 0x1000 + 8 * k + 8) why.push("exception");
    for (let r = 0; r < 31; r++) {
      const lo = qOut.getInt32(s + 8 * r, true), hi = qOut.getInt32(s + 8 * r + 4, true);
      if (c.r[2 * r] !== lo || c.r[2 * r + 1] !== hi) why.push(`x${r}`);
    }
    for (let v = 0; v < 32; v++) {
      for (let w = 0; w < 4; w++) if (c.vi32[4 * v + w] !== qOut.getInt32(s + 256 + 16 * v + 4 * w, true)) { why.push(`v${v}`); break; }
    }
    const d0 = k * DATA_SZ;
    for (let b = 0; b < DATA_SZ; b++) if (mmu.u8[DATA_BASE + d0 + b] !== dump[d0 + b]) { why.push(`mem+${b}`); break; }
    if (why.length > 0) failures.push(`${insns[k]}: ${why.join(" ")}`);
  }
  assert.deepEqual(failures, []);
});
