/**
 * src/hv/idle-gc.ts: when a domain thread collects its garbage — after work then QUIET_MS of idle, or after a
 * domain came or went; never while busy, never twice within GAP_MS, never for an idle guest's short wake-ups.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { IDLE_GC_BUSY_MS, IDLE_GC_GAP_MS, IDLE_GC_QUIET_MS, IdleGc } from "../../src/hv/idle-gc.js";

/** Rounds of `len` ms each from `from` to `to`, idle or not; the times at which a GC was asked for. */
function run(g: IdleGc, from: number, to: number, len: number, idle: boolean, changedAt = -1): number[] {
  const gcs: number[] = [];
  for (let t = from; t < to; t += len) if (g.round(t, t + len, idle, t === changedAt)) gcs.push(t + len);
  return gcs;
}

test("a boot's work, then idle: one GC QUIET_MS after the work ended, none again while idle", () => {
  const g = new IdleGc(0);
  assert.deepEqual(run(g, 0, 20_000, 10, false), [], "no GC while busy");
  const gcs = run(g, 20_000, 200_000, 10, true);
  assert.deepEqual(gcs, [20_000 + IDLE_GC_QUIET_MS], "one GC, QUIET_MS after the last busy round");
});

test("an idle guest's wake-ups (never a busy round) cause no GC; a little work (< BUSY_MS) none either", () => {
  const g = new IdleGc(0);
  assert.deepEqual(run(g, 0, 120_000, 10, true), []);
  // 50 busy rounds of 10 ms: 500 ms of work, below IDLE_GC_BUSY_MS.
  assert.ok(500 < IDLE_GC_BUSY_MS);
  assert.deepEqual(run(g, 120_000, 120_500, 10, false), []);
  assert.deepEqual(run(g, 120_500, 240_000, 10, true), []);
});

test("a domain that came or went: a GC once QUIET_MS of idle passed, and at most one per GAP_MS", () => {
  const g = new IdleGc(0);
  const first = run(g, 0, 10_000, 10, true, 1000);
  assert.deepEqual(first, [IDLE_GC_QUIET_MS], "the change alone (no work) is enough, after QUIET_MS since the start");
  // Another change and more work right after: the next GC waits for GAP_MS since the first.
  assert.deepEqual(run(g, 10_000, 12_000, 10, false), []);
  const next = run(g, 12_000, 60_000, 10, true, 12_000);
  assert.deepEqual(next, [IDLE_GC_QUIET_MS + IDLE_GC_GAP_MS]);
});
