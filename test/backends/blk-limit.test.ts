/**
 * A disk's I/O limit (blk-limit.ts; disk spec `rate=`, `iops=`): the token buckets alone, then blkback with a
 * front-end that keeps its ring full — after the burst, the rate holds within 10 % over 2 s, throttled requests wait in the ring
 * (none refused), and the I/O thread rings the domain thread's doorbell when a throttled disk may go on.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { BlkLimit, BURST_MS, MIN_BURST_BYTES } from "../../src/backends/blk/blk-limit.js";
import { setBlkIoDoorbell } from "../../src/backends/blk/index.js";
import { BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_WRITE, BLKIF_RSP_OKAY } from "../../src/backends/blk/blkif.js";
import { Harness, dataRef } from "./blk-harness.js";

const sleep = (ms: number): void => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); };

test("BlkLimit: a burst, then the rate; a request larger than the burst still goes (debt); dueIn", () => {
  const l = new BlkLimit(1_000_000, 100, 0);
  // The burst: max(128 KiB, BURST_MS of 1 MB/s) bytes, BURST_MS of 100 requests.
  let n = 0;
  while (l.ready) { l.charge(4096); n++; }
  assert.equal(n, Math.min(BURST_MS * 100 / 1000, Math.ceil(Math.max(MIN_BURST_BYTES, 1_000_000 * BURST_MS / 1000) / 4096)));
  assert.ok(l.dueIn() > 0 && l.dueIn() <= 10 + 1e-6, `${l.dueIn()} ms`);
  l.refill(10);
  assert.ok(l.ready);
  const big = new BlkLimit(100_000, 0, 0);
  big.charge(1 << 20); // 1 MiB at 100 KB/s: goes, then ~9 s of debt
  assert.ok(!big.ready);
  assert.ok(Math.abs(big.dueIn() - ((1 << 20) - MIN_BURST_BYTES) / 100) < 1, `${big.dueIn()}`);
  big.refill(big.dueIn() + 0.01);
  assert.ok(big.ready);
  assert.throws(() => new BlkLimit(-1, 0, 0), /bad bytes per second/);
});

/**
 * Keeps `depth` requests on h's ring, serving as the domain loop does (service() after each "slice"): `warmMs`
 * first (the burst is spent), then `ms` measured; returns the measured seconds and the stats at their start.
 */
function flatOut(h: Harness, warmMs: number, ms: number, depth: number, req: () => Parameters<Harness["put"]>[0]):
  { secs: number; refused: number; at: { bytesWritten: number; flushes: number } } {
  let t0 = performance.now(), warm = true;
  let refused = 0, at = { bytesWritten: 0, flushes: 0 };
  for (;;) {
    if (warm && performance.now() - t0 >= warmMs) { warm = false; t0 = performance.now(); at = { ...h.back.stats }; }
    if (!warm && performance.now() - t0 >= ms) break;
    let queued = false;
    while (h.reqProd - h.rspCons < depth) { h.put(req()); queued = true; }
    if (queued) h.push();
    h.back.service();
    for (const [, , status] of h.responses()) if (status !== BLKIF_RSP_OKAY) refused++;
    sleep(1);
  }
  return { secs: (performance.now() - t0) / 1000, refused, at };
}

test("blkback with rate=2MB/s: flat out, after the burst, 2 s within 10 % of the rate; nothing refused", () => {
  const h = new Harness({ bytes: 4 << 20, connect: false });
  try {
    h.back.close();
    const RATE = 2_000_000;
    (h as { back: Harness["back"] }).back = new (h.back.constructor as typeof import("../../src/backends/blk/blk-back.js").BlkBack)(
      h.xen, h.store, { path: h.path, devid: 51712, vdev: "xvda", readOnly: false, limit: { bytesPerSecond: RATE } }, (l) => h.logs.push(l));
    h.frontConnect();
    assert.equal(h.backState(), 4);
    // 64 KiB writes (16 segments of 4 KiB over 16 data pages).
    const segs = Array.from({ length: 11 }, (_, k) => ({ gref: dataRef(k), first: 0, last: 7 }));
    const { secs, refused, at } = flatOut(h, 1500, 2000, 16, () => ({ op: BLKIF_OP_WRITE, sector: 0, segs }));
    const rate = (h.back.stats.bytesWritten - at.bytesWritten) / secs;
    process.stderr.write(`# rate=2MB/s: ${(rate / 1e6).toFixed(3)} MB/s over ${secs.toFixed(2)} s after the burst (writes of 44 KiB)\n`);
    assert.equal(refused, 0);
    assert.ok(Math.abs(rate - RATE) / RATE < 0.1, `${rate} B/s`);
  } finally { h.done(); }
});

test("blkback with iops=200: flushes flat out, after the burst, 2 s within 10 %; a throttled disk's I/O thread rings the doorbell", () => {
  const bell = new SharedArrayBuffer(4);
  setBlkIoDoorbell(bell);
  const h = new Harness({ connect: false });
  try {
    h.back.close();
    const IOPS = 200;
    (h as { back: Harness["back"] }).back = new (h.back.constructor as typeof import("../../src/backends/blk/blk-back.js").BlkBack)(
      h.xen, h.store, { path: h.path, devid: 51712, vdev: "xvda", readOnly: false, limit: { iops: IOPS } }, (l) => h.logs.push(l));
    h.frontConnect();
    const { secs, refused, at } = flatOut(h, 1500, 2000, 24, () => ({ op: BLKIF_OP_FLUSH_DISKCACHE }));
    const iops = (h.back.stats.flushes - at.flushes) / secs;
    process.stderr.write(`# iops=200: ${iops.toFixed(1)} requests/s over ${secs.toFixed(2)} s\n`);
    assert.equal(refused, 0);
    assert.ok(Math.abs(iops - IOPS) / IOPS < 0.1, `${iops} IOPS`);
    // Throttled now (the ring is full of flushes): without any service() call, the doorbell rings within a few ms
    // of due. (Synchronous disks have no I/O thread and so no timer: they resume at the next slice's service().)
    if (!h.back.threaded) return;
    const db = new Int32Array(bell);
    for (let i = 0; i < 100 && !h.back.throttled; i++) {
      while (h.reqProd - h.rspCons < 32) h.put({ op: BLKIF_OP_FLUSH_DISKCACHE });
      h.push();
      h.responses();
    }
    assert.ok(h.back.throttled, "throttled");
    assert.equal(h.back.inFlight, 0);
    // Wait on the doorbell as the domain loop does (a late ring of the last completion may come first: wait again).
    const t0 = performance.now();
    let rang = false;
    while (!rang && performance.now() - t0 < 500) {
      const seen = Atomics.load(db, 0);
      if (h.back.completions) break; // due already (between the checks above and here): the ring may be gone by
      rang = Atomics.wait(db, 0, seen, 500 - (performance.now() - t0)) !== "timed-out" && h.back.completions;
    }
    assert.ok(rang || h.back.completions, "the doorbell rang for the throttled disk");
    assert.ok(h.back.completions, `service() has work (after ${(performance.now() - t0).toFixed(1)} ms)`);
    assert.equal(h.backState(), 4, "still connected");
  } finally { h.done(); setBlkIoDoorbell(null); }
});
