/**
 * The fair share of the disk service between domains (src/backends/blk/io-share.ts), on its own with a simulated
 * clock: a flat-out writer next to a reader at queue depth 1 is held to the reader's cost (within the allowance);
 * nobody is held back by a domain that stopped using its disk; a domain that comes back neither banks credit nor
 * keeps a debt; disks of one domain do not hold each other back; slots are given back. The real-kernel check is
 * test/hv/io-fair.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { DiskShare, SHARE_ACTIVE_MS, SHARE_ALLOWANCE, SHARE_FORGET_MS, SHARE_HOLD_MAX_MS, SHARE_REQ_COST, SHARE_SLOTS, newBlkShareBuffer, setBlkShare } from "../../src/backends/blk/io-share.js";

const W = 128 << 10, R = 4096;

function claim(domid: number): DiskShare {
  const s = DiskShare.claim(domid);
  assert.ok(s !== null, `a slot for domain ${domid}`);
  return s;
}

test("no table, or XENO_BLK_SHARE=0: no share", () => {
  setBlkShare(null);
  assert.equal(DiskShare.claim(1), null);
  setBlkShare(newBlkShareBuffer());
  process.env.XENO_BLK_SHARE = "0";
  try { assert.equal(DiskShare.claim(1), null); } finally { delete process.env.XENO_BLK_SHARE; }
  assert.throws(() => setBlkShare(new SharedArrayBuffer(8)), /blk share table: 8 bytes/);
  setBlkShare(null);
});

test("a flat-out writer next to a reader at queue depth 1: the writer gets the reader's cost (within the allowance), the reader is never held", () => {
  setBlkShare(newBlkShareBuffer());
  try {
    const a = claim(1), b = claim(2);
    // 2 simulated seconds in 0.1 ms steps: B reads once every 1 ms (a completion 0.5 ms after each request: its
    // think time between); A takes a 128 KiB write whenever the share lets it, at most 8 in flight, each done 0.2 ms later.
    let aReqs = 0, bReqs = 0, bHeld = 0, aInFlight = 0;
    const aDone: number[] = [];
    for (let t = 1000; t < 3000; t += 0.1) {
      while (aDone.length > 0 && aDone[0]! <= t) { aDone.shift(); aInFlight--; a.touch(t); }
      if (Math.abs((t - 1000) % 1 - 0.5) < 0.05) b.touch(t);
      if (Math.abs((t - 1000) % 1) < 0.05 || Math.abs((t - 1000) % 1 - 1) < 0.05) {
        if (b.mayGo(t)) { b.charge(t, R); bReqs++; } else bHeld++;
      }
      while (aInFlight < 8 && a.mayGo(t)) { a.charge(t, W); aReqs++; aInFlight++; aDone.push(t + 0.2); }
    }
    const aCost = aReqs * (SHARE_REQ_COST + W), bCost = bReqs * (SHARE_REQ_COST + R);
    assert.equal(bHeld, 0, "the reader is never held back");
    assert.ok(bReqs >= 1990 && bReqs <= 2010, `B's reads: ${bReqs}`);
    // A ends at most the allowance plus one request ahead of B.
    assert.ok(aCost <= bCost + SHARE_ALLOWANCE + SHARE_REQ_COST + W, `A's cost ${aCost}, B's ${bCost}`);
    assert.ok(aCost >= bCost - (SHARE_REQ_COST + W), `A's cost ${aCost}, B's ${bCost}`);
    assert.ok(a.waits > 0);
    a.release(); b.release();
  } finally { setBlkShare(null); }
});

test("a domain that stopped using its disk holds nobody back; coming back it banks no credit and keeps no debt", () => {
  setBlkShare(newBlkShareBuffer());
  try {
    const a = claim(1), b = claim(2);
    let t = 5000;
    b.charge(t, R); // B reads once, then nothing
    // While B is in use, A may go the allowance (+ one request) ahead, no further.
    let n = 0;
    while (a.mayGo(t)) { a.charge(t, W); n++; }
    assert.equal(n, Math.floor((SHARE_ALLOWANCE + SHARE_REQ_COST + R) / (SHARE_REQ_COST + W)) + 1);
    // B's last request is SHARE_ACTIVE_MS old: A goes on alone, as far as it likes.
    t += SHARE_ACTIVE_MS + 0.1;
    for (let i = 0; i < 10; i++) { assert.ok(a.mayGo(t)); a.charge(t, W); }
    // B back after a short pause: it kept its place, so A (far ahead now) is held until B catches up.
    assert.ok(b.mayGo(t));
    b.charge(t, R);
    assert.ok(!a.mayGo(t), "A held behind B after B's short pause");
    // B stops for longer than SHARE_FORGET_MS.
    t += SHARE_ACTIVE_MS + SHARE_FORGET_MS + 0.1;
    for (let i = 0; i < 1000; i++) { assert.ok(a.mayGo(t)); a.charge(t, W); }
    // B comes back: level with A (its old low vt is no credit), so A is not held behind it for 1000 requests.
    assert.ok(b.mayGo(t));
    b.charge(t, R);
    assert.ok(b.vt >= a.vt - (SHARE_REQ_COST + W), `B rejoined at ${b.vt}, A at ${a.vt}`);
    assert.ok(a.mayGo(t), "A may go on right away");
    // A stops for a while; B reads alone (its vt climbs past A's); A comes back: no debt from B's solo time.
    t += SHARE_ACTIVE_MS + 0.1;
    for (let i = 0; i < 5000; i++) { t += 0.3; assert.ok(b.mayGo(t)); b.charge(t, R); }
    assert.ok(b.vt > a.vt + SHARE_ALLOWANCE);
    assert.ok(a.mayGo(t + 0.01), "A rejoins level with B");
    a.release(); b.release();
  } finally { setBlkShare(null); }
});

test("disks of one domain do not hold each other back; slots are given back and reused; a full table gives none", () => {
  setBlkShare(newBlkShareBuffer());
  try {
    const x = claim(3), y = claim(3);
    const t = 100;
    y.charge(t, R);
    for (let i = 0; i < 100; i++) { assert.ok(x.mayGo(t)); x.charge(t, W); }
    x.release(); y.release();
    const all: DiskShare[] = [];
    for (let i = 0; i < SHARE_SLOTS; i++) all.push(claim(10 + i));
    assert.equal(all[0]!.slot, x.slot, "a released slot is claimed again");
    assert.equal(DiskShare.claim(999), null, "no free slot");
    all[5]!.release();
    assert.equal(claim(999).slot, all[5]!.slot);
  } finally { setBlkShare(null); }
});

test("next to a domain in use that moves little, a held disk still takes one request every SHARE_HOLD_MAX_MS", () => {
  setBlkShare(newBlkShareBuffer());
  try {
    const a = claim(1), b = claim(2);
    let t = 100;
    b.charge(t, R);
    while (a.mayGo(t)) a.charge(t, W); // A reaches the allowance
    // 1 simulated second: B only keeps its disk in use (a completion every 20 ms, no new cost); A tries every 1 ms.
    let took = 0;
    for (let i = 0; i < 1000; i++) {
      t += 1;
      if (i % 20 === 0) b.touch(t);
      if (a.mayGo(t)) { a.charge(t, W); took++; }
    }
    assert.ok(took >= 1000 / (SHARE_HOLD_MAX_MS + 1) - 1 && took <= 1000 / SHARE_HOLD_MAX_MS + 1, `A took ${took} requests in 1 s`);
    a.release(); b.release();
  } finally { setBlkShare(null); }
});
