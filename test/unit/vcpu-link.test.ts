/**
 * The vCPU link's broadcast ring (src/machine/vcpu-link.ts): a thread that missed broadcasts applies each of
 * them in order, or all of their effects at once when the ring no longer holds them; and an issuer applies what
 * it missed before it publishes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { BC_CODE_PAGE, BC_INSN, BC_RING, L_ACK, L_BC_LOCK, L_BC_SEQ, LINK_VIEW_BYTES, publishBroadcast, takeBroadcasts, type BroadcastSink } from "../../src/machine/vcpu-link.js";

function link(): Int32Array { return new Int32Array(new SharedArrayBuffer(LINK_VIEW_BYTES)); }

/** A sink that records what it was given. */
function recorder(): BroadcastSink & { got: number[]; all: number } {
  const r = { got: [] as number[], all: 0, apply: (k: number, insn: number, xlo: number) => { r.got.push(k === BC_CODE_PAGE ? -xlo : insn); }, applyAll: () => { r.all++; } };
  return r;
}

/** Publishes a broadcast from thread 1 whose insn word is `tag`, and releases the lock as an issuer does. */
function publish(w: Int32Array, tag: number): number {
  const seq = publishBroadcast(w, 1, BC_INSN, tag, 0, 0, () => {});
  Atomics.store(w, L_BC_LOCK, 0);
  return seq;
}

test("a thread that missed broadcasts applies each one, in order", () => {
  const w = link();
  for (let i = 1; i <= 5; i++) publish(w, 100 + i);
  const r = recorder();
  assert.equal(takeBroadcasts(w, 0, r), 5);
  assert.deepEqual(r.got, [101, 102, 103, 104, 105]);
  assert.equal(r.all, 0);
  assert.equal(takeBroadcasts(w, 5, r), 5, "nothing new: nothing applied");
  assert.equal(r.got.length, 5);
});

test("a thread too far behind for the ring applies everything at once", () => {
  const w = link();
  for (let i = 1; i <= BC_RING + 6; i++) publish(w, i);
  const r = recorder();
  assert.equal(takeBroadcasts(w, 0, r), BC_RING + 6);
  assert.equal(r.all, 1);
  assert.deepEqual(r.got, []);
  // BC_RING - 2 behind is still read from the ring.
  const r2 = recorder();
  assert.equal(takeBroadcasts(w, 8, r2), BC_RING + 6);
  assert.equal(r2.all, 0);
  assert.deepEqual(r2.got, Array.from({ length: BC_RING - 2 }, (_, i) => 9 + i));
});

test("sequence numbers wrap past 2^31", () => {
  const w = link();
  Atomics.store(w, L_BC_SEQ, 0x7ffffffe);
  for (let i = 1; i <= 4; i++) publish(w, i);
  const r = recorder();
  assert.equal(takeBroadcasts(w, 0x7ffffffe, r), (0x7ffffffe + 4) | 0);
  assert.deepEqual(r.got, [1, 2, 3, 4]);
});

test("an issuer applies the broadcasts it missed before it publishes its own", () => {
  const w = link();
  publish(w, 7);
  publish(w, 8);
  const r = recorder();
  let seen = 0;
  const seq = publishBroadcast(w, 2, BC_INSN, 9, 0, 0, () => { seen = takeBroadcasts(w, seen, r); });
  assert.equal(seq, 3);
  assert.deepEqual(r.got, [7, 8], "thread 2 applied 7 and 8 before marking 9 as its own");
  assert.equal(Atomics.load(w, L_ACK + 2), 3);
});

test("the ring holds a boot's bursts: 1,000 broadcasts behind are still applied one by one", () => {
  // A thread asleep while another flushes a process's pages (one TLBI per page) falls hundreds behind; with a
  // ring of 64 it then dropped its whole TLB and every decoded and compiled block (docs/cpu-internals.md).
  assert.ok(BC_RING >= 1024);
  const w = link();
  for (let i = 1; i <= 1000; i++) publish(w, i);
  const r = recorder();
  assert.equal(takeBroadcasts(w, 0, r), 1000);
  assert.equal(r.all, 0);
  assert.equal(r.got.length, 1000);
  assert.deepEqual(r.got.slice(0, 3), [1, 2, 3]);
});

test("a run of equal broadcasts taken in one call is applied once; an equal one after another kind again", () => {
  const w = link();
  const code = (page: number): void => { publishBroadcast(w, 1, BC_CODE_PAGE, 0, page, 0, () => {}); Atomics.store(w, L_BC_LOCK, 0); };
  for (let i = 0; i < 40; i++) code(7); // ftrace patching one kernel text page, an IC IVAU per instruction
  code(8);
  code(7);
  publish(w, 5);
  publish(w, 5);
  const r = recorder();
  assert.equal(takeBroadcasts(w, 0, r), 44);
  assert.deepEqual(r.got, [-7, -8, -7, 5]);
});
