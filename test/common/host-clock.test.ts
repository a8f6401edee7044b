/**
 * The host clock (src/common/host-clock.ts): one origin in every thread, monotonic.
 *
 * Cross-thread: the main thread and a worker ping-pong through shared memory. For each round the main thread
 * reads t0, pings, the worker reads tw and answers, the main thread reads t1: causality says t0 <= tw <= t1 if
 * both threads read one clock. (On Node 20 performance.now() itself happens to share the process's origin
 * across workers, so the two offsets agree; a runtime that follows the hr-time spec's per-worker origin would
 * show them apart by the worker's start-up time, and this test still holds.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import { HOST_CLOCK_OFFSET_MS, hostNowMs } from "../../src/common/host-clock.js";

/** Allowed disagreement between two threads' readings, ms (each thread's calibration errs by < ~0.1 µs). */
const TOLERANCE_MS = 0.002;
const ROUNDS = 2000;

test("two threads read the same clock (causal ping-pong within 2 µs)", async () => {
  const words = new Int32Array(new SharedArrayBuffer(8)), times = new Float64Array(new SharedArrayBuffer(16));
  Atomics.store(words, 1, -1);
  const w = new Worker(new URL("./host-clock-worker.js", import.meta.url), { workerData: { words: words.buffer, times: times.buffer, rounds: ROUNDS } });
  try {
    const exited = new Promise<number>((res, rej) => { w.once("exit", res); w.once("error", rej); });
    // Wait (without blocking the event loop the worker's start needs) for it to be ready.
    while (Atomics.load(words, 1) !== 0) await new Promise((r) => setTimeout(r, 1));
    let worstEarly = 0, worstLate = 0, bestRtt = Infinity;
    for (let seq = 1; seq <= ROUNDS; seq++) {
      const t0 = hostNowMs();
      Atomics.store(words, 0, seq);
      while (Atomics.load(words, 1) < seq) { /* spin */ }
      const t1 = hostNowMs();
      const tw = times[0]!;
      worstEarly = Math.max(worstEarly, t0 - tw);
      worstLate = Math.max(worstLate, tw - t1);
      bestRtt = Math.min(bestRtt, t1 - t0);
    }
    assert.equal(await exited, 0);
    console.log(`offsets: main ${HOST_CLOCK_OFFSET_MS.toFixed(6)} ms, worker ${times[1]!.toFixed(6)} ms (thread origins ` +
      `${(HOST_CLOCK_OFFSET_MS - times[1]!).toFixed(3)} ms apart); worker read before t0 by <= ${(worstEarly * 1e3).toFixed(3)} µs, ` +
      `after t1 by <= ${(worstLate * 1e3).toFixed(3)} µs; best round trip ${(bestRtt * 1e3).toFixed(3)} µs`);
    assert.ok(worstEarly <= TOLERANCE_MS, `worker read ${worstEarly} ms before the ping`);
    assert.ok(worstLate <= TOLERANCE_MS, `worker read ${worstLate} ms after the answer`);
  } finally {
    await w.terminate();
  }
});

test("monotonic: a million reads never go backwards", () => {
  let prev = hostNowMs(), backwards = 0;
  for (let i = 0; i < 1_000_000; i++) {
    const t = hostNowMs();
    if (t < prev) backwards++;
    prev = t;
  }
  assert.equal(backwards, 0);
});

test("it is CLOCK_MONOTONIC: agrees with process.hrtime within 10 µs", () => {
  const a = hostNowMs();
  const h = Number(process.hrtime.bigint()) / 1e6;
  const b = hostNowMs();
  assert.ok(h >= a - 0.01 && h <= b + 0.01, `${a} ${h} ${b}`);
});
