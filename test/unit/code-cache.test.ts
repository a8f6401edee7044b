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
import { compileWorker } from "../../src/cpu/arm64/jit/compiler.js";
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

test("a write to a page with nothing decoded since its last invalidation resets nothing; one decoded again is invalidated", () => {
  const s = setup();
  s.poke(CODE, [ADD_X(0, 0, 1), NOP, NOP, NOP]);
  assert.equal(s.runFrom(CODE, 1), 1n);
  guestStore(s, CODE + 8, NOP, NOP);
  assert.deepEqual([s.cache.invalidations, s.cache.cleanInvalidations], [1, 0], "decoded: invalidated");
  guestStore(s, CODE + 8, NOP, NOP);
  guestStore(s, CODE, ADD_X(0, 0, 3), NOP);
  assert.deepEqual([s.cache.invalidations, s.cache.cleanInvalidations], [3, 2], "nothing decoded since: nothing to reset");
  assert.equal(s.runFrom(CODE, 1), 3n, "the new code, decoded afresh");
  guestStore(s, CODE, ADD_X(0, 0, 5), NOP);
  assert.deepEqual([s.cache.invalidations, s.cache.cleanInvalidations], [4, 2], "decoded again: invalidated");
  assert.equal(s.runFrom(CODE, 1), 5n);
});

test("with the compiler: a page whose block was compiled after a clean invalidation is invalidated by the next write", () => {
  const s = setup(true);
  s.poke(CODE, [ADD_X(0, 0, 1), ADD_X(0, 0, 1), ADD_X(0, 0, 1), NOP]);
  assert.equal(s.runFrom(CODE, 3), 3n);
  guestStore(s, CODE + 12, NOP, NOP);
  guestStore(s, CODE + 12, NOP, NOP);
  assert.equal(s.cache.cleanInvalidations, 1);
  for (let k = 0; k < 2100; k++) assert.equal(s.runFrom(CODE, 3), 3n);
  if (!s.cache.compiling) return; // XENO_JIT=0: nothing compiled
  s.cache.settle();
  assert.notEqual(s.cache.blocks[PAGE]![0], null, "hot block compiled");
  guestStore(s, CODE, ADD_X(0, 0, 2), ADD_X(0, 0, 2));
  assert.equal(s.cache.blocks[PAGE]![0], null, "the write dropped the compiled block");
  assert.equal(s.runFrom(CODE, 3), 5n);
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

test("with the compile worker (XENO_JIT_ASYNC=1): hot blocks are translated and compiled beside the vCPU, installed between runs, and run as interpreted; a page written meanwhile drops them", () => {
  const sleep = (ms: number): void => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); };
  const { memory, stateAt, tlbAt, jitAt } = soloJitMemory(1 << 20, true);
  const mmu = new Mmu(memory.buffer, BASE, undefined, 1 << 20, tlbAt);
  const engine = new JitEngine(memory, sharedDecoder(), true, jitAt);
  process.env.XENO_JIT_ASYNC = "1";
  const cache = new CodeCache(mmu.ramSize >>> 12, engine, true);
  delete process.env.XENO_JIT_ASYNC;
  if (!cache.compiling) return; // XENO_JIT=0: nothing compiles
  assert.ok(engine.async, "background compilation on");
  const cpu = new Cpu(mmu, cache, { buffer: memory.buffer, offset: stateAt });
  const dv = new DataView(mmu.ram as ArrayBuffer);
  const poke = (pa: number, words: number[]): void => words.forEach((w, k) => dv.setInt32(pa - BASE + 4 * k, w, true));
  const runFrom = (pa: number, n: number): bigint => { setx(cpu, 0, 0); setPc(cpu, pa); cpu.run(n); return x(cpu, 0); };
  // Until the worker has loaded, batches are compiled here; wait for it so that this test is about the worker.
  const w = compileWorker()!;
  for (let t = 0; !w.ready && t < 30_000; t += 5) sleep(5);
  assert.ok(w.ready, "the compile worker loaded");
  poke(CODE, [ADD_X(0, 0, 1), ADD_X(0, 0, 1), ADD_X(0, 0, 1), NOP]);
  let runs = 0;
  for (; runs < 200_000 && cache.blocks[PAGE]?.[0] == null; runs++) {
    assert.equal(runFrom(CODE, 3), 3n);
    if (runs > 2000) sleep(1); // queued: give the worker time
  }
  assert.notEqual(cache.blocks[PAGE]![0], null, `compiled by the worker within ${runs} runs`);
  assert.ok(engine.stats.worker >= 1, `batches from the worker: ${engine.stats.worker}`);
  assert.equal(engine.stats.failed, 0);
  for (let k = 0; k < 10; k++) assert.equal(runFrom(CODE, 3), 3n, "the compiled block");
  assert.equal(engine.stats.late, 0, "no batch had to be done here");
  // New code in the page: its blocks go (the write is seen as a guest's would be), and whatever is translated
  // from the old words is dropped at install by the page's generation.
  poke(CODE, [ADD_X(0, 0, 2), ADD_X(0, 0, 2), ADD_X(0, 0, 2), NOP]);
  cpu.invalidateCodePage(PAGE);
  for (let k = 0; k < 3000; k++) assert.equal(runFrom(CODE, 3), 6n);
  cache.settle();
  assert.equal(runFrom(CODE, 3), 6n);
});

/** Five code pages of the same three-instruction block, made hot and compiled together into one module. */
function fivePagesCompiled(s: ReturnType<typeof setup>): number[] {
  const pas = [1, 2, 3, 4, 5].map((k) => BASE + 0x10_000 + k * 0x1000);
  for (const pa of pas) s.poke(pa, [ADD_X(0, 0, 1), ADD_X(0, 0, 1), ADD_X(0, 0, 1), NOP]);
  // Each block reaches the threshold (queued, not yet compiled: the queue waits for more), then one module.
  for (const pa of pas) for (let k = 0; k < s.cache.hot; k++) assert.equal(s.runFrom(pa, 3), 3n);
  s.cache.settle();
  return pas;
}

test("with the compiler: a module most of whose blocks went with their pages is evicted at the sweep; its survivor runs interpreted, then compiled again", () => {
  const s = setup(true);
  // XENO_JIT=0: nothing compiles; XENO_JIT_HOT=1: every block is a module of its own (not what is tested here).
  if (!s.cache.compiling || s.cache.hot === 1) return;
  const jit = s.cache.jit!;
  const pas = fivePagesCompiled(s);
  assert.equal(jit.stats.modules, 1, "one module");
  assert.equal(jit.stats.liveModules, 1);
  assert.equal(jit.stats.liveBlocks, 5);
  assert.ok(jit.stats.liveBytes > 0);
  const p0 = (pas[0]! - BASE) >>> 12;
  // Only the first page runs between sweeps: the other four are dropped with their blocks at the second sweep.
  s.cache.sweep(s.mmu.codePage);
  assert.equal(s.runFrom(pas[0]!, 3), 3n);
  assert.equal(jit.stats.liveBlocks, 5, "a sweep after all ran drops nothing");
  s.cache.sweep(s.mmu.codePage);
  assert.equal(s.cache.size, 1, "four pages dropped");
  // One block of five left (< a quarter): the module is evicted with it.
  assert.equal(jit.stats.evicted, 1);
  assert.equal(jit.stats.liveModules, 0);
  assert.equal(jit.stats.liveBlocks, 0);
  assert.equal(jit.stats.liveBytes, 0);
  assert.notEqual(s.cache.pages[p0], undefined, "the page itself is kept (it ran)");
  assert.equal(s.cache.blocks[p0]![0], null, "its block evicted");
  assert.equal(s.cache.heat[p0]![0], 0, "and cold again");
  // Interpreted, then compiled again once hot, into a module of its own.
  for (let k = 0; k < s.cache.hot; k++) assert.equal(s.runFrom(pas[0]!, 3), 3n);
  s.cache.settle();
  assert.notEqual(s.cache.blocks[p0]![0], null, "compiled again");
  assert.equal(jit.stats.liveModules, 1);
  assert.equal(jit.stats.liveBlocks, 1);
  assert.equal(s.runFrom(pas[0]!, 3), 3n);
  // Still running: kept by the next sweeps (one block of one is not sparse).
  s.cache.sweep(s.mmu.codePage);
  assert.equal(s.runFrom(pas[0]!, 3), 3n);
  s.cache.sweep(s.mmu.codePage);
  assert.equal(jit.stats.evicted, 1);
  assert.equal(jit.stats.liveModules, 1);
});

test("with the compiler: over the code budget the sweep evicts modules, oldest first, and the code runs on", () => {
  const s = setup(true);
  // XENO_JIT=0: nothing compiles; XENO_JIT_HOT=1: every block is a module of its own (not what is tested here).
  if (!s.cache.compiling || s.cache.hot === 1) return;
  const jit = s.cache.jit!;
  const pas = fivePagesCompiled(s);
  // A second module: a block on a sixth page.
  const pa6 = BASE + 0x10_000 + 6 * 0x1000, p6 = (pa6 - BASE) >>> 12;
  s.poke(pa6, [ADD_X(0, 0, 2), NOP]);
  for (let k = 0; k < s.cache.hot; k++) assert.equal(s.runFrom(pa6, 1), 2n);
  s.cache.settle();
  assert.equal(jit.stats.liveModules, 2);
  const all = jit.stats.liveBytes;
  // A budget that fits the second (smaller) module but not both: the first, older, goes.
  s.cache.codeBudget = all - 1;
  for (const pa of [...pas, pa6]) s.runFrom(pa, 1); // every page ran: nothing is swept for being cold
  s.cache.sweep(s.mmu.codePage);
  assert.equal(jit.stats.evicted, 1);
  assert.equal(jit.stats.liveModules, 1);
  assert.equal(jit.stats.liveBlocks, 1);
  for (const pa of pas) assert.equal(s.cache.blocks[(pa - BASE) >>> 12]![0], null);
  assert.notEqual(s.cache.blocks[p6]![0], null, "the newer module stays");
  // Budget 0: everything goes at the next sweep; the code runs on, interpreted.
  s.cache.codeBudget = 0;
  for (const pa of [...pas, pa6]) s.runFrom(pa, 1);
  s.cache.sweep(s.mmu.codePage);
  assert.equal(jit.stats.liveModules, 0);
  assert.equal(jit.stats.liveBytes, 0);
  assert.equal(s.cache.blocks[p6]![0], null);
  for (const pa of pas) assert.equal(s.runFrom(pa, 3), 3n);
  assert.equal(s.runFrom(pa6, 1), 2n);
});
