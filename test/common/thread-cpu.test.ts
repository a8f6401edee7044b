/**
 * The thread CPU clock (src/common/thread-cpu.ts) against the process's own CPU time (process.cpuUsage): a
 * sleeping thread's clock stands still while wall time passes; a busy thread's advances; another thread's work
 * advances the process's CPU time but not this thread's clock. Bounds allow the clock's lag of up to a scheduler
 * tick (≤ 10 ms) and a loaded host (the busy loops run until the clocks say so, not for a fixed time).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import { threadCpu } from "../../src/common/thread-cpu.js";

const TICK_S = 0.012;
const processCpuS = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
const sleep = (ms: number): void => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); };

test("the thread CPU clock counts this thread's run time, not wall time or other threads' work", async () => {
  const clock = threadCpu();
  assert.ok(clock !== null, "this Linux host has /proc/thread-self/schedstat (a host without it counts wall time)");
  assert.equal(threadCpu(), clock, "one clock per thread");

  // Asleep for 300 ms of wall time: the clock barely moves.
  let c0 = clock.seconds();
  sleep(300);
  const asleep = clock.seconds() - c0;
  assert.ok(asleep >= 0 && asleep < 0.05, `asleep 300 ms, the clock moved ${asleep.toFixed(4)} s`);

  // Busy until the clock has advanced 150 ms: it does, and never by more than the whole process's CPU time.
  c0 = clock.seconds();
  const p0 = processCpuS();
  for (const end = Date.now() + 60_000; clock.seconds() - c0 < 0.15;) assert.ok(Date.now() < end, "the clock advances while busy");
  const busy = clock.seconds() - c0, proc = processCpuS() - p0;
  assert.ok(busy <= proc + TICK_S, `busy: this thread ${busy.toFixed(3)} s, the process ${proc.toFixed(3)} s`);

  // Another thread busy for 200 ms of its own CPU while this one waits for it: the process's CPU time grows by
  // that, this thread's clock does not.
  const w = new Worker(`
    const { parentPort } = require("node:worker_threads");
    const { readFileSync } = require("node:fs");
    const own = () => Number(readFileSync("/proc/thread-self/schedstat", "latin1").split(" ")[0]) / 1e9;
    const c0 = own();
    for (const end = Date.now() + 60000; own() - c0 < 0.2 && Date.now() < end;) {}
    parentPort.postMessage(own() - c0);`, { eval: true });
  c0 = clock.seconds();
  const q0 = processCpuS();
  const other = await new Promise<number>((resolve, reject) => { w.once("message", resolve); w.once("error", reject); });
  await w.terminate();
  const mine = clock.seconds() - c0, all = processCpuS() - q0;
  assert.ok(other >= 0.2, `the worker ran ${other.toFixed(3)} s`);
  assert.ok(all >= other - TICK_S, `the process's CPU time grew ${all.toFixed(3)} s, the worker's ${other.toFixed(3)} s`);
  assert.ok(mine < other / 2, `this thread's clock moved ${mine.toFixed(3)} s while the worker ran ${other.toFixed(3)} s`);
  process.stdout.write(`# asleep 300 ms: +${(asleep * 1000).toFixed(1)} ms; busy: +${(busy * 1000).toFixed(0)} ms (process +${(proc * 1000).toFixed(0)} ms); ` +
    `a worker's ${(other * 1000).toFixed(0)} ms: this thread +${(mine * 1000).toFixed(1)} ms, the process +${(all * 1000).toFixed(0)} ms\n`);
});
