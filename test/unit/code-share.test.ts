/**
 * The code cache (src/cpu/arm64/jit/compile-worker.ts) with engines compiling on their own thread, as the
 * hypervisor's domain threads do: three memories laid out alike, one compile worker. A block compiled for the
 * first is installed from the first's module in the second, which holds the same words at the same place; the
 * third holds other words there and must compile its own (the cache compares the words, it does not trust the place).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ADD_X, BASE, NOP, setPc, setx, x } from "./system-asm.js";

// Read by engine.ts when it loads: wait for the cache's answer however loaded the host is (a late answer would
// make the engine compile for itself, correctly, and this test would not be about the cache).
process.env.XENO_JIT_SHARE_WAIT_MS = "20000";
const { Mmu } = await import("../../src/mmu/mmu.js");
const { Cpu, CodeCache, sharedDecoder } = await import("../../src/cpu/arm64/cpu.js");
const { JitEngine, soloJitMemory } = await import("../../src/cpu/arm64/jit/engine.js");
const { compileWorkerClient, existingCompileWorker, useCompileWorker } = await import("../../src/cpu/arm64/jit/compiler.js");

const CODE = BASE + 0x1000;
const PAGE = (CODE - BASE) >>> 12;

function domain(words: number[]) {
  const { memory, stateAt, tlbAt, jitAt } = soloJitMemory(1 << 20, true);
  const mmu = new Mmu(memory.buffer, BASE, undefined, 1 << 20, tlbAt);
  const engine = new JitEngine(memory, sharedDecoder(), true, jitAt);
  const cache = new CodeCache(mmu.ramSize >>> 12, engine);
  const cpu = new Cpu(mmu, cache, { buffer: memory.buffer, offset: stateAt });
  const dv = new DataView(mmu.ram as ArrayBuffer);
  words.forEach((w, k) => dv.setInt32(CODE - BASE + 4 * k, w, true));
  /** Runs the block at CODE until it is compiled (and settled), checking x0 each time; then once more compiled. */
  const run = (want: bigint): void => {
    for (let k = 0; k < 2 * cache.hot + 10; k++) { setx(cpu, 0, 0); setPc(cpu, CODE); cpu.run(3); assert.equal(x(cpu, 0), want); }
    cache.settle();
    assert.notEqual(cache.blocks[PAGE]?.[0] ?? null, null, "the block is compiled");
    setx(cpu, 0, 0); setPc(cpu, CODE); cpu.run(3); assert.equal(x(cpu, 0), want);
  };
  return { engine, cache, run, mmu, cpu };
}

/**
 * Starts the process's compile worker (the code cache) and waits until it is loaded; false when there is nothing
 * to share (no compiling engine, or XENO_JIT_SHARE=0).
 */
function startCache(): boolean {
  if (!domain([]).cache.compiling || process.env.XENO_JIT_SHARE === "0") return false;
  if (existingCompileWorker() === null) useCompileWorker(compileWorkerClient());
  const w = existingCompileWorker()!;
  for (let t = 0; !w.ready && t < 30_000; t += 5) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
  assert.ok(w.ready, "the compile worker loaded");
  return true;
}

test("the code cache: same words at the same place share a module; other words compile their own", () => {
  if (!startCache()) return; // no compiler or no cache: nothing to share
  const three = [ADD_X(0, 0, 1), ADD_X(0, 0, 1), ADD_X(0, 0, 1), NOP];
  const a = domain(three), b = domain(three), c = domain([ADD_X(0, 0, 2), ADD_X(0, 0, 2), ADD_X(0, 0, 2), NOP]);
  a.run(3n);
  assert.equal(a.engine.stats.modules, 1, "the first compiles");
  assert.equal(a.engine.stats.sharedBlocks, 0);
  b.run(3n);
  assert.equal(b.engine.stats.modules, 0, `the second compiles nothing: ${JSON.stringify(b.engine.stats)}`);
  assert.ok(b.engine.stats.sharedBlocks >= 1 && b.engine.stats.sharedModules === 1, JSON.stringify(b.engine.stats));
  c.run(6n);
  assert.equal(c.engine.stats.sharedBlocks, 0, "other words: nothing shared");
  assert.equal(c.engine.stats.modules, 1);
  a.run(3n);
  for (const d of [a, b, c]) assert.equal(d.engine.stats.failed, 0);
});

test("a shared module whose blocks were left and taken again is evicted whole (table slots reused within it)", () => {
  if (!startCache()) return; // no compiler or no cache: nothing to share
  // Three blocks on three pages (X, Y, Z), compiled into one module by the first domain, served to the second.
  const at = [CODE + 0x1000, CODE + 0x2000, CODE + 0x3000];
  const make = () => {
    const d = domain([]);
    const dv = new DataView(d.mmu.ram as ArrayBuffer);
    at.forEach((a, i) => [ADD_X(0, 0, i + 1), ADD_X(0, 0, i + 1), ADD_X(0, 0, i + 1), NOP]
      .forEach((wd, k) => dv.setInt32(a - BASE + 4 * k, wd, true)));
    /** Runs the blocks `list` in turn until they are hot (queued together: one module), checking x0 each time. */
    const hot = (...list: number[]): void => {
      for (let k = 0; k < 2 * d.cache.hot + 10; k++) {
        for (const i of list) {
          setx(d.cpu, 0, 0); setPc(d.cpu, at[i]); d.cpu.run(3); assert.equal(x(d.cpu, 0), BigInt(3 * (i + 1)));
        }
      }
    };
    return { ...d, hot };
  };
  const a = make();
  a.hot(0, 1, 2);
  a.cache.settle();
  assert.equal(a.engine.stats.modules, 1, `one module: ${JSON.stringify(a.engine.stats)}`);
  const b = make();
  b.hot(0, 1, 2);
  b.cache.settle();
  const st = (): typeof b.engine.stats => b.engine.stats; // read afresh (no narrowing across the steps below)
  assert.ok(st().sharedBlocks === 3 && st().modules === 0, JSON.stringify(st()));
  assert.equal(b.engine.stats.liveModules, 1);
  // X and Y leave (their pages invalidated; Z keeps the module's record alive); Y's table slot, freed last, goes
  // to X when X is installed again from the kept module, and X's to Y.
  b.cache.invalidatePage((at[0] - BASE) >>> 12);
  b.cache.invalidatePage((at[1] - BASE) >>> 12);
  b.hot(0); b.cache.settle();
  b.hot(1); b.cache.settle();
  assert.ok(st().sharedBlocks === 5 && st().liveModules === 1, JSON.stringify(st()));
  // A budget of 0 evicts every module: each installed block is dropped once, at the place it is installed now.
  b.cache.codeBudget = 0;
  b.cache.sweep();
  assert.equal(b.engine.stats.liveBlocks, 0, JSON.stringify(b.engine.stats));
  b.hot(0, 1, 2);
  assert.equal(b.engine.stats.failed, 0);
});
