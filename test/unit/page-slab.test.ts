/** PageSlab (src/cpu/arm64/page-slab.ts): slots reused lowest first, zeroed, chunks at the top let go when empty. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { PageSlab, SLOTS_PER_CHUNK } from "../../src/cpu/arm64/page-slab.js";

test("slots are zeroed, reused lowest first, and empty top chunks are trimmed", () => {
  const s = new PageSlab(64);
  const a = Array.from({ length: SLOTS_PER_CHUNK + 3 }, () => s.alloc());
  assert.deepEqual(a, a.map((_, k) => k), "handed out in order");
  assert.equal(s.slots, SLOTS_PER_CHUNK + 3);
  assert.equal(s.bytes, 2 * SLOTS_PER_CHUNK * 64);
  // Distinct memory per slot.
  new Uint8Array(s.buffer(5), s.offset(5), 64).fill(7);
  assert.equal(new Uint8Array(s.buffer(4), s.offset(4), 64)[63], 0);
  assert.equal(new Uint8Array(s.buffer(6), s.offset(6), 64)[0], 0);
  // A released slot comes back first, zeroed.
  s.release(5);
  s.release(2);
  assert.equal(s.alloc(), 2);
  assert.equal(s.alloc(), 5);
  assert.ok(new Uint8Array(s.buffer(5), s.offset(5), 64).every((b) => b === 0), "zeroed again");
  assert.throws(() => { s.release(SLOTS_PER_CHUNK + 3); }, /not in use/);
  // The top chunk goes once all its slots are free; not before, and never a lower one.
  assert.equal(s.trim(), 0);
  for (let k = SLOTS_PER_CHUNK; k < SLOTS_PER_CHUNK + 3; k++) s.release(k);
  s.release(0);
  assert.equal(s.trim(), 1);
  assert.equal(s.bytes, SLOTS_PER_CHUNK * 64);
  assert.throws(() => { s.release(SLOTS_PER_CHUNK); }, /not in use/);
  assert.equal(s.alloc(), 0, "the lowest free slot");
  assert.throws(() => new PageSlab(12), /multiple of 8/);
});
