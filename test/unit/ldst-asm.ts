/**
 * Test helpers for the load/store unit tests: assemble A64 snippets with the GNU cross assembler and run them on
 * a bare Cpu (MMU off, EL1, flat physical memory). Tests that need the assembler skip when it is missing.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Mmu } from "../../src/mmu/mmu.js";
import { Cpu } from "../../src/cpu/arm64/cpu.js";

export const AS = "aarch64-linux-gnu-as";
export const OBJCOPY = "aarch64-linux-gnu-objcopy";

function has(cmd: string): boolean {
  try { execFileSync(cmd, ["--version"], { stdio: "ignore" }); return true; } catch { return false; }
}
export const haveAsm = has(AS) && has(OBJCOPY);

/** Assembles `src` (one instruction per line) into its .text bytes. */
export function asm(src: string): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), "xeno-ldst-"));
  try {
    const s = join(dir, "a.s"), o = join(dir, "a.o"), b = join(dir, "a.bin");
    writeFileSync(s, ".text\n" + src + "\n");
    execFileSync(AS, ["-o", o, s]);
    execFileSync(OBJCOPY, ["-O", "binary", "-j", ".text", o, b]);
    return new Uint8Array(readFileSync(b));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Instruction words of `src`. */
export function words(src: string): number[] {
  const b = asm(src);
  const out: number[] = [];
  for (let k = 0; k < b.length; k += 4) out.push(b[k] | (b[k + 1] << 8) | (b[k + 2] << 16) | (b[k + 3] << 24));
  return out;
}

export interface Machine {
  c: Cpu;
  mmu: Mmu;
  /** Number of instructions in the snippet. */
  n: number;
  /** Vector offsets of exceptions taken (the run stops at the first). */
  exc: number[];
}

export const CODE = 0x1000;
/** WFI: ends a run (Cpu.stop = STOP_WFI) with PC at the next instruction. */
export const WFI = 0xd503207f;

/**
 * A Cpu over `ramSize` bytes of RAM at physical `ramBase`, with `src` (assembly, or instruction words) at
 * ramBase + CODE, followed by a WFI. After a clean run PC = ramBase + CODE + 4 * (n + 1).
 */
export function machine(src: string | number[], ramSize = 1 << 20, ramBase = 0): Machine {
  const mmu = new Mmu(new ArrayBuffer(ramSize), ramBase);
  const c = new Cpu(mmu);
  const code = typeof src === "string" ? asm(src) : new Uint8Array(new Int32Array(src).buffer);
  mmu.u8.set(code, CODE);
  // Tests run n + 1 instructions: the snippet, then this WFI (which leaves PC after itself).
  mmu.dv.setUint32(CODE + code.length, WFI, true);
  c.r[66] = ramBase + CODE; c.r[67] = 0;
  const exc: number[] = [];
  c.onEl1 = (cc, off) => { exc.push(off); cc.stop = 2; };
  return { c, mmu, n: code.length >> 2, exc };
}

export function setX(c: Cpu, n: number, v: bigint): void {
  const u = BigInt.asUintN(64, v);
  c.r[2 * n] = Number(u & 0xffffffffn) | 0;
  c.r[2 * n + 1] = Number(u >> 32n) | 0;
}
export function getX(c: Cpu, n: number): bigint {
  return (BigInt(c.r[2 * n + 1] >>> 0) << 32n) | BigInt(c.r[2 * n] >>> 0);
}
/** V register n as a 128-bit unsigned bigint. */
export function getV(c: Cpu, n: number): bigint {
  let v = 0n;
  for (let k = 3; k >= 0; k--) v = (v << 32n) | BigInt(c.vu32[4 * n + k]);
  return v;
}
export function setV(c: Cpu, n: number, v: bigint): void {
  for (let k = 0; k < 4; k++) { c.vu32[4 * n + k] = Number((v >> BigInt(32 * k)) & 0xffffffffn); }
}
/** Little-endian 64-bit RAM read at a RAM offset. */
export function peek64(mmu: Mmu, off: number): bigint {
  return mmu.dv.getBigUint64(off, true);
}
export function poke64(mmu: Mmu, off: number, v: bigint): void {
  mmu.dv.setBigUint64(off, BigInt.asUintN(64, v), true);
}
