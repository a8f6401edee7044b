/**
 * blkback's I/O thread (src/backends/blk/io-thread.ts): a slow disk ($XENO_BLK_TEST_DELAY_MS, here per image)
 * stalls neither the thread that notifies it nor another domain's disk in that thread; completions ring the
 * thread's doorbell; grants stay pinned (GTF_reading/GTF_writing) exactly while a request is in flight; save()
 * drains; close() and a front-end that goes away never wait for the disk; an idle thread ends and the next
 * request starts another (the hand-over raced on purpose). And the A/B: with $XENO_BLK_SYNC=1
 * the same slow request blocks the notifying thread for the whole delay. Inline service (blk-back.ts INLINE_*):
 * a request finding the thread idle is answered inside the notify; behind a queued flush it is queued too; a
 * slow inline request sends the disk back to its thread.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readlinkSync } from "node:fs";
import { setBlkIoDoorbell } from "../../src/backends/blk/index.js";
import { BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_RSP_OKAY, SRING_RSP_PROD } from "../../src/backends/blk/blkif.js";
import { GTF_permit_access, GTF_reading, GTF_writing } from "../../src/xen/grant-table.js";
import { IoQueue, Q_STATE, STATE_NONE, STATE_RUNNING } from "../../src/backends/blk/io-queue.js";
import { Harness, dataRef } from "./blk-harness.js";

/** The slow disk's delay per operation. */
const DELAY = 600;

/** A Harness whose image is slow (and, with sync, served on the notifying thread). */
function slowDisk(o: { sync?: boolean } = {}): Harness {
  const saved = { d: process.env.XENO_BLK_TEST_DELAY_MS, s: process.env.XENO_BLK_SYNC };
  process.env.XENO_BLK_TEST_DELAY_MS = `${DELAY}:xeno-blk-`; // every Harness image is under a xeno-blk-* dir
  if (o.sync) process.env.XENO_BLK_SYNC = "1";
  try { return new Harness(); } finally {
    if (saved.d === undefined) delete process.env.XENO_BLK_TEST_DELAY_MS; else process.env.XENO_BLK_TEST_DELAY_MS = saved.d;
    if (saved.s === undefined) delete process.env.XENO_BLK_SYNC; else process.env.XENO_BLK_SYNC = saved.s;
  }
}

const sleep = (ms: number): void => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); };
const flags = (h: Harness, ref: number): number => h.dv.getUint16(h.xen.gnttab.entryOffset(ref), true);
/** The guest's gnttab_end_foreign_access_ref_v1: clear the entry unless the back-end still uses it. */
const guestEndAccess = (h: Harness, ref: number): boolean => {
  const f = flags(h, ref);
  if ((f & (GTF_reading | GTF_writing)) !== 0) return false;
  h.dv.setUint16(h.xen.gnttab.entryOffset(ref), 0, true);
  return true;
};
/** A one-page WRITE of data page k at `sector`. */
const write = (k: number, sector: number): { op: number; sector: number; segs: { gref: number; first: number; last: number }[] } =>
  ({ op: BLKIF_OP_WRITE, sector, segs: [{ gref: dataRef(k), first: 0, last: 7 }] });

test("a slow disk of one domain stalls neither its thread nor another domain's disk there; its completion rings the doorbell", () => {
  const doorbell = new SharedArrayBuffer(4), db = new Int32Array(doorbell);
  setBlkIoDoorbell(doorbell);
  const a = slowDisk();
  const b = new Harness();
  try {
    assert.ok(a.back.threaded && b.back.threaded);
    a.u8.fill(0x77, a.dataOff(0), a.dataOff(1));
    // B's I/O thread started before A's write: a thread's start took most of the window once at load 20
    // (fresh30: B completed 1 request in 300 ms), which says nothing about A's slow disk.
    assert.equal(b.one({ op: BLKIF_OP_READ, sector: 0, segs: [{ gref: dataRef(0), first: 0, last: 7 }] }), BLKIF_RSP_OKAY);
    a.put(write(0, 8));
    const t0 = performance.now();
    a.push(); // the guest's notify: copied, validated, pinned, queued — not written yet
    const notifyMs = performance.now() - t0;
    assert.ok(notifyMs < DELAY / 3, `notify took ${notifyMs.toFixed(1)} ms`);
    assert.equal(a.back.inFlight, 1);
    // Domain B, same thread, meanwhile: its requests complete one after another.
    let bDone = 0, bMax = 0;
    // At least 5, for half the delay at least and while A's write is surely in flight (not past 0.8 × DELAY).
    while ((bDone < 5 || performance.now() - t0 < DELAY / 2) && performance.now() - t0 < DELAY * 0.8) {
      const t = performance.now();
      assert.equal(b.one({ op: BLKIF_OP_READ, sector: bDone % 64, segs: [{ gref: dataRef(bDone % 8), first: 0, last: 7 }] }), BLKIF_RSP_OKAY);
      bMax = Math.max(bMax, performance.now() - t);
      bDone++;
    }
    assert.ok(!a.back.completions, "A's write is still in flight");
    assert.ok(bDone >= 5, `B completed ${bDone} requests`);
    // Now the thread idles as a domain loop does, on its doorbell: A's completion wakes it.
    // B's last completions may ring it too (fresh21 woke early once): wait until A's is there.
    const deadline = performance.now() + 10 * DELAY;
    while (!a.back.completions) {
      const seen = Atomics.load(db, 0);
      if (a.back.completions) break;
      const left = deadline - performance.now();
      assert.ok(left > 0, "the I/O thread rang the doorbell for A's completion");
      Atomics.wait(db, 0, seen, left);
    }
    const aMs = performance.now() - t0;
    assert.ok(a.back.completions);
    assert.ok(aMs >= DELAY * 0.9, `A completed after ${aMs.toFixed(0)} ms`);
    a.back.service(); // what Machine.poll does after the wake-up: answer, notify the guest
    const rs = a.responses();
    assert.deepEqual(rs.map((r) => [r[1], r[2]]), [[BLKIF_OP_WRITE, BLKIF_RSP_OKAY]]);
    assert.ok(a.image().subarray(8 * 512, 16 * 512).every((x) => x === 0x77), "the write is in the image");
    assert.equal(a.back.stats.bytesWritten, 4096);
    process.stdout.write(`# slow disk ${DELAY} ms/op: notify ${notifyMs.toFixed(2)} ms; meanwhile the other domain completed ${bDone} ` +
      `requests (slowest ${bMax.toFixed(2)} ms); the slow write answered after ${aMs.toFixed(0)} ms\n`);
  } finally { a.done(); b.done(); setBlkIoDoorbell(null); }
});

test("A/B: with XENO_BLK_SYNC=1 the same slow write blocks the notifying thread (every domain on it) for the whole delay", () => {
  const a = slowDisk({ sync: true });
  try {
    assert.ok(!a.back.threaded);
    a.put(write(0, 8));
    const t0 = performance.now();
    a.push();
    const notifyMs = performance.now() - t0;
    assert.ok(notifyMs >= DELAY * 0.9, `notify took ${notifyMs.toFixed(0)} ms`);
    assert.deepEqual(a.responses().map((r) => r[2]), [BLKIF_RSP_OKAY]); // answered before push() returned
    process.stdout.write(`# XENO_BLK_SYNC=1, slow disk ${DELAY} ms/op: notify blocked the thread ${notifyMs.toFixed(0)} ms\n`);
  } finally { a.done(); }
});

test("grants stay pinned while in flight (the guest cannot end access), and are released before the response", () => {
  const h = slowDisk();
  try {
    // A READ writes into page 1 (a writable pin: reading + writing), a WRITE reads page 2 (reading only).
    h.put({ op: BLKIF_OP_READ, sector: 0, segs: [{ gref: dataRef(1), first: 0, last: 7 }] });
    h.put(write(2, 8));
    h.push();
    assert.equal(h.back.inFlight, 2);
    assert.equal(flags(h, dataRef(1)), GTF_permit_access | GTF_reading | GTF_writing);
    assert.equal(flags(h, dataRef(2)), GTF_permit_access | GTF_reading);
    assert.equal(h.xen.gnttab.pinned, 2);
    assert.ok(!guestEndAccess(h, dataRef(1)) && !guestEndAccess(h, dataRef(2)), "end_foreign_access defers while in use");
    const rs = h.responses(); // drains
    assert.deepEqual(rs.map((r) => r[2]), [BLKIF_RSP_OKAY, BLKIF_RSP_OKAY]);
    assert.equal(flags(h, dataRef(1)), GTF_permit_access);
    assert.equal(flags(h, dataRef(2)), GTF_permit_access);
    assert.equal(h.xen.gnttab.pinned, 0);
    assert.ok(guestEndAccess(h, dataRef(2)), "and then it can");
    // A refused request pins nothing: one good segment, then a grant the guest has ended.
    assert.notEqual(h.one({ op: BLKIF_OP_WRITE, sector: 0, segs: [{ gref: dataRef(3), first: 0, last: 7 }, { gref: dataRef(2), first: 0, last: 7 }] }), BLKIF_RSP_OKAY);
    assert.equal(h.xen.gnttab.pinned, 0);
    assert.equal(flags(h, dataRef(3)), GTF_permit_access);
  } finally { h.done(); }
});

test("save() drains the requests in flight first, then saves a quiet ring", () => {
  const h = slowDisk();
  try {
    h.put(write(0, 8));
    h.push();
    assert.equal(h.back.inFlight, 1);
    const t0 = performance.now();
    const st = h.back.save();
    assert.ok(performance.now() - t0 >= DELAY * 0.5, "it waited for the disk");
    assert.equal(h.back.inFlight, 0);
    assert.equal(st.rings[0]!.reqCons, 1);
    assert.equal(st.rings[0]!.rspProdPvt, 1);
    assert.equal(h.ring(SRING_RSP_PROD), 1, "the response is published");
    assert.deepEqual(h.responses().map((r) => r[2]), [BLKIF_RSP_OKAY]);
  } finally { h.done(); }
});

/** The process's open descriptors naming `path`. */
const openOn = (path: string): number => readdirSync("/proc/self/fd").filter((fd) => {
  try { return readlinkSync(`/proc/self/fd/${fd}`) === path; } catch { return false; }
}).length;

test("close() with requests in flight returns at once: the one in progress finishes, the rest are dropped, the thread closes the image", () => {
  const h = slowDisk();
  try {
    h.u8.fill(0x42, h.dataOff(0), h.dataOff(1));
    h.u8.fill(0x43, h.dataOff(1), h.dataOff(2));
    const before = h.image();
    assert.equal(h.one(write(2, 0)), BLKIF_RSP_OKAY); // the I/O thread is up (it may start late on a loaded host)
    h.put(write(0, 16));
    h.put(write(1, 24));
    h.push();
    assert.equal(h.back.inFlight, 2);
    assert.equal(openOn(h.path), 1);
    sleep(DELAY / 3); // the first is in progress (sleeping in the I/O thread)
    const t0 = performance.now();
    h.back.close();
    const closeMs = performance.now() - t0;
    assert.ok(closeMs < DELAY / 3, `close took ${closeMs.toFixed(1)} ms`);
    for (let i = 0; i < 40 && openOn(h.path) > 0; i++) sleep(50);
    assert.equal(openOn(h.path), 0, "the I/O thread closed the image");
    const img = h.image();
    assert.ok(img.subarray(16 * 512, 24 * 512).every((x) => x === 0x42), "the write in progress finished");
    assert.ok(img.subarray(24 * 512, 32 * 512).equals(before.subarray(24 * 512, 32 * 512)), "the queued one was dropped");
    // Abandoned: their pages stay pinned, so the guest never reuses a page the thread might still write.
    assert.equal(h.xen.gnttab.pinned, 2);
  } finally { h.done(); }
});

test("the front-end goes away with a request in flight: no answer on the dead ring, the grant released when it completes", () => {
  const h = slowDisk();
  try {
    h.put(write(0, 8));
    h.push();
    assert.equal(h.xen.evtchn.close(h.port), 0); // the guest closes its port: blkback disconnects
    assert.ok(!h.back.connected);
    assert.equal(h.xen.gnttab.pinned, 1);
    for (let i = 0; i < 40 && !h.back.completions; i++) sleep(50);
    h.back.service();
    assert.equal(h.xen.gnttab.pinned, 0);
    assert.equal(h.back.inFlight, 0);
    assert.equal(h.ring(SRING_RSP_PROD), 0, "nothing answered");
  } finally { h.done(); }
});

/** A Harness made with these variables in the environment (restored after). */
function withEnv(vars: Record<string, string>): Harness {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try { return new Harness(); } finally {
    for (const [k, v] of Object.entries(saved)) { if (v === undefined) delete process.env[k]; else process.env[k] = v; }
  }
}

/** A Harness whose I/O threads end after `idleMs` without work (requests always go through the thread: no inline). */
function quickIdle(idleMs: number): Harness {
  return withEnv({ XENO_BLK_IO_IDLE_MS: String(idleMs), XENO_BLK_INLINE: "0" });
}
const ioState = (h: Harness): number => Atomics.load((h.back as unknown as { io: { q: IoQueue } }).io.q.ctl, Q_STATE); // reaching in

test("an idle I/O thread ends (the image stays open); the next request starts another; close() then closes the image itself", () => {
  const h = quickIdle(150);
  try {
    assert.equal(h.one(write(0, 8)), BLKIF_RSP_OKAY);
    assert.equal(ioState(h), STATE_RUNNING);
    for (let i = 0; i < 60 && ioState(h) !== STATE_NONE; i++) sleep(50);
    assert.equal(ioState(h), STATE_NONE, "the idle thread ended");
    assert.equal(openOn(h.path), 1, "the image is still open");
    h.u8.fill(0x31, h.dataOff(3), h.dataOff(4));
    assert.equal(h.one(write(3, 40)), BLKIF_RSP_OKAY);
    assert.ok(h.image().subarray(40 * 512, 48 * 512).every((x) => x === 0x31));
    for (let i = 0; i < 60 && ioState(h) !== STATE_NONE; i++) sleep(50);
    h.back.close();
    assert.equal(openOn(h.path), 0, "no thread: close() closed the image");
  } finally { h.done(); }
});

test("the hand-over between an I/O thread ending while idle and the next request, raced: every request is served", () => {
  const h = quickIdle(2);
  try {
    let seed = 7;
    for (let i = 0; i < 30; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      sleep(seed % 5); // around the idle time: either side of the thread's give-up
      assert.equal(h.one({ op: BLKIF_OP_READ, sector: i, segs: [{ gref: dataRef(i % 8), first: 0, last: 7 }] }), BLKIF_RSP_OKAY, `request ${i}`);
    }
    assert.equal(h.back.inFlight, 0);
  } finally { h.done(); }
});

test("inline: with its I/O thread idle a read or write is served in the notify itself; behind a queued flush it waits its turn", () => {
  const h = withEnv({ XENO_BLK_INLINE: "1", XENO_BLK_INLINE_SLOW_MS: "1000000" }); // no backoff, however loaded the host (a preempted request looks slow)
  try {
    h.u8.fill(0x5a, h.dataOff(0), h.dataOff(1));
    assert.equal(h.one(write(0, 16)), BLKIF_RSP_OKAY);
    assert.equal(h.one({ op: BLKIF_OP_READ, sector: 16, segs: [{ gref: dataRef(1), first: 0, last: 7 }] }), BLKIF_RSP_OKAY);
    assert.ok(h.u8.subarray(h.dataOff(1), h.dataOff(2)).every((x) => x === 0x5a), "the read brought the write back");
    assert.equal(h.back.stats.inline, 2, "both served inline");
    assert.equal(h.xen.gnttab.pinned, 0, "inline requests hold no pins after the answer");
    // A flush always goes to the thread; the write behind it in the same pass finds it in flight and follows it
    // there, so it cannot overtake the flush.
    h.put({ op: BLKIF_OP_FLUSH_DISKCACHE, id: 90 });
    h.put({ ...write(2, 24), id: 91 });
    h.push();
    assert.equal(h.back.inFlight, 2, "the flush and the write are queued for the thread");
    assert.deepEqual(h.responses().map((r) => [r[0], r[2]]), [[90, BLKIF_RSP_OKAY], [91, BLKIF_RSP_OKAY]], "answered in order");
    assert.equal(h.back.stats.inline, 2, "neither went inline");
    assert.equal(h.back.stats.inlineBackoffs, 0);
  } finally { h.done(); }
});

test("inline: a slow inline request sends the disk back to its thread for a while (the vCPUs never wait twice on a slow disk)", () => {
  const h = withEnv({ XENO_BLK_INLINE: "1", XENO_BLK_INLINE_SLOW_MS: "0" }); // every inline request counts as slow
  try {
    assert.equal(h.one(write(0, 8)), BLKIF_RSP_OKAY);
    assert.deepEqual([h.back.stats.inline, h.back.stats.inlineBackoffs], [1, 1], "inline once, then backed off");
    assert.equal(h.one(write(1, 16)), BLKIF_RSP_OKAY);
    assert.deepEqual([h.back.stats.inline, h.back.stats.inlineBackoffs], [1, 1], "the next one went through the thread");
  } finally { h.done(); }
  const off = new Harness(); // the default: off
  try {
    assert.equal(off.one(write(0, 8)), BLKIF_RSP_OKAY);
    assert.equal(off.back.stats.inline, 0, "without XENO_BLK_INLINE=1: through the thread");
  } finally { off.done(); }
});
