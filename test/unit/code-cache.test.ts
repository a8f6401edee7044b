/**
 * The decode cache's sweep (CodeCache.sweep): pages not entered since the previous sweep are dropped, and a
 * dropped page runs correctly when it runs again: decoded afresh from RAM, including code written while it was
 * dropped (by the guest or by another agent), and with write tracking (Mmu.codePage) restored.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Mmu } from "../../src/mmu/mmu.js";
import { Cpu, CodeCache, sharedDecoder } from "../../src/cpu/arm64/cpu.js";
import { JitEngine, soloJitMemory } from "../../src/cpu/arm64/jit/engine.js";
import { ADD_X, BASE, NOP, STR_X, setPc, setx, x } from "./system-asm.js";

const CODE = BASE + 0x1000;
const OTHER = BASE + 0x3000;
const PAGE = (CODE - BASE) >>> 12;

/** MMU off (VA = PA), EL1, a decode cache the test can inspect; `blocks`: compile hot blocks (user-mode runner). */
function setup(blocks = false) {
  let mmu: Mmu, cache: CodeCache, cpu: Cpu;
  if (blocks) {
    const { memory, stateAt, tlbAt, jitAt } = soloJitMemory(1 << 20);
    mmu = new Mmu(memory.buffer, BASE, undefined, 1 << 20, tlbAt);
    cache = new CodeCache(mmu.ramSize >>> 12, new JitEngine(memory, sharedDecoder(), false, jitAt));
    cpu = new Cpu(mmu, cache, { buffer: memory.buffer, offset: stateAt });
  } else {
    mmu = new Mmu(new ArrayBuffer(1 << 20), BASE);
    cache = new CodeCache(mmu.ramSize >>> 12);
    cpu = new Cpu(mmu, cache);
  }
  const dv = new DataView(mmu.ram as ArrayBuffer);
  /** Writes words to RAM behind the CPU's back (no invalidation: another agent, or the test). */
  const poke = (pa: number, words: number[]): void => words.forEach((w, k) => dv.setInt32(pa - BASE + 4 * k, w, true));
  /** Runs `n` instructions from `pa` with x0 = 0 and returns x0. */
  const runFrom = (pa: number, n: number): bigint => { setx(cpu, 0, 0); setPc(cpu, pa); cpu.run(n); return x(cpu, 0); };
  return { mmu, cache, cpu, poke, runFrom };
}

/** A guest store (STR X2, [X1]) run from OTHER: writes 8 bytes at `pa` through the MMU's write path. */
function guestStore(s: ReturnType<typeof setup>, pa: number, lo: number, hi: number): void {
  s.poke(OTHER, [STR_X(2, 1, 0)]);
  setx(s.cpu, 1, pa);
  setx(s.cpu, 2, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
  setPc(s.cpu, OTHER);
  s.cpu.run(1);
}

test("a page run since the last sweep is kept; one not run is dropped and runs again when entered", () => {
  const s = setup();
  s.poke(CODE, [ADD_X(0, 0, 1), ADD_X(0, 0, 2)]);
  assert.equal(s.runFrom(CODE, 2), 3n);
  assert.equal(s.cache.size, 1);
  assert.equal(s.mmu.codePage[PAGE], 1);
  assert.equal(s.cache.sweep(s.mmu.codePage), 0, "entered since the last sweep: kept");
  assert.notEqual(s.cache.pages[PAGE], undefined);
  assert.equal(s.cache.sweep(s.mmu.codePage), 1, "not entered since: dropped");
  assert.equal(s.cache.pages[PAGE], undefined);
  assert.equal(s.cache.size, 0);
  assert.equal(s.mmu.codePage[PAGE], 0, "no longer tracked for writes");
  assert.equal(s.runFrom(CODE, 2), 3n, "re-decoded, same result");
  assert.equal(s.cache.size, 1);
  assert.equal(s.mmu.codePage[PAGE], 1, "tracked again");
  // Kept while it keeps running.
  for (let k = 0; k < 3; k++) {
    assert.equal(s.cache.sweep(s.mmu.codePage), 0);
    assert.equal(s.runFrom(CODE, 2), 3n);
  }
});

test("a page changed while dropped runs the new code: written behind the CPU's back or by a guest store", () => {
  const s = setup();
  s.poke(CODE, [ADD_X(0, 0, 1), NOP]);
  assert.equal(s.runFrom(CODE, 1), 1n);
  s.cache.sweep(s.mmu.codePage);
  s.cache.sweep(s.mmu.codePage);
  assert.equal(s.cache.pages[PAGE], undefined);
  // Without a sweep such a write needs IC IALLU (system.test.ts); a dropped page has nothing stale to drop.
  s.poke(CODE, [ADD_X(0, 0, 5)]);
  assert.equal(s.runFrom(CODE, 1), 5n);
  // Dropped again, then a guest store (fast path: the page is no longer marked as code).
  s.cache.sweep(s.mmu.codePage);
  s.cache.sweep(s.mmu.codePage);
  guestStore(s, CODE, ADD_X(0, 0, 7), NOP);
  assert.equal(s.runFrom(CODE, 2), 7n);
  // Decoded again: a guest store to it invalidates as before.
  guestStore(s, CODE, ADD_X(0, 0, 9), NOP);
  assert.equal(s.runFrom(CODE, 2), 9n);
});

test("a kept page is still invalidated by writes and IC maintenance; self-modifying code after a re-decode", () => {
  const s = setup();
  // x1 = CODE + 8; STR X2, [X1] rewrites the next two words, which then run in the same run() call.
  s.poke(CODE, [STR_X(2, 1, 0), NOP, ADD_X(0, 0, 1), NOP]);
  const selfModify = (imm: number): bigint => {
    setx(s.cpu, 0, 0);
    setx(s.cpu, 1, CODE + 8);
    setx(s.cpu, 2, BigInt(ADD_X(0, 0, imm) >>> 0));
    setPc(s.cpu, CODE);
    s.cpu.run(4);
    return x(s.cpu, 0);
  };
  assert.equal(selfModify(3), 3n);
  s.cache.sweep(s.mmu.codePage);
  assert.equal(selfModify(4), 4n, "kept page");
  s.cache.sweep(s.mmu.codePage);
  s.cache.sweep(s.mmu.codePage);
  assert.equal(s.cache.pages[PAGE], undefined);
  assert.equal(selfModify(6), 6n, "re-decoded page");
  // invalidateAll only walks the pages held; a dropped page is decoded from RAM anyway.
  s.cache.sweep(s.mmu.codePage);
  s.cache.sweep(s.mmu.codePage);
  s.cpu.invalidateAllCode();
  s.cpu.invalidateCodePage(PAGE);
  s.poke(CODE + 8, [ADD_X(0, 0, 2)]);
  setx(s.cpu, 0, 0); setPc(s.cpu, CODE + 8); s.cpu.run(1);
  assert.equal(x(s.cpu, 0), 2n);
});

test("with the compiler: a dropped page's compiled blocks go too, and the page runs the new code", () => {
  const s = setup(true);
  s.poke(CODE, [ADD_X(0, 0, 1), ADD_X(0, 0, 1), ADD_X(0, 0, 1), NOP]);
  for (let k = 0; k < 2100; k++) assert.equal(s.runFrom(CODE, 3), 3n);
  if (!s.cache.compiling) return; // XENO_JIT=0: nothing compiled to drop
  s.cache.settle();
  assert.notEqual(s.cache.blocks[PAGE]![0], null, "hot block compiled");
  s.cache.sweep(s.mmu.codePage);
  s.cache.sweep(s.mmu.codePage);
  assert.equal(s.cache.pages[PAGE], undefined);
  assert.equal(s.cache.blocks[PAGE], undefined);
  assert.equal(s.cache.heat[PAGE], undefined);
  s.poke(CODE, [ADD_X(0, 0, 2), ADD_X(0, 0, 2), ADD_X(0, 0, 2)]);
  for (let k = 0; k < 2100; k++) assert.equal(s.runFrom(CODE, 3), 6n);
});
