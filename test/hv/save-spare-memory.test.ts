/**
 * The spare memory (src/hv/save-spare-memory.ts) on real shared WebAssembly memories: what a restore takes is
 * all zero — the pages a save sent with data, whatever the host wrote in the scanned top of RAM and the tail
 * after RAM — whether the background scrub finished or the take finishes it; a memory of another size, or any
 * memory with the switch off, is not given out. (test/hv/save-spare.test.ts covers it with a real guest.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { SpareMemory } from "../../src/hv/save-spare-memory.js";

const PAGE = 4096;
const RAM_PAGES = 512, SCAN_PAGES = 16, TAIL_BYTES = 2 * 65536;

/** A "domain memory": RAM_PAGES of RAM, then a tail; data in pages `data` (marked), dirt in the scanned top and the tail. */
function dirtyMemory(): { memory: WebAssembly.Memory; dataMap: Uint8Array } {
  const pages = (RAM_PAGES * PAGE + TAIL_BYTES) / 65536;
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const u8 = new Uint8Array(memory.buffer);
  const dataMap = new Uint8Array(RAM_PAGES);
  for (let p = 0; p < RAM_PAGES - SCAN_PAGES; p += 3) { dataMap[p] = 1; u8.fill(0xa5, p * PAGE, (p + 1) * PAGE); }
  // Unmarked, in the scanned top of RAM (a ring page the host wrote after the save), a single last byte.
  u8[(RAM_PAGES - 2) * PAGE + PAGE - 1] = 7;
  // The tail: a vCPU state block.
  u8[RAM_PAGES * PAGE + 100] = 9;
  u8[u8.length - 1] = 1;
  return { memory, dataMap };
}

function nonZeroPages(m: WebAssembly.Memory): number {
  const u8 = new Uint8Array(m.buffer);
  let n = 0;
  for (let p = 0; p < u8.length; p += PAGE) if (u8.subarray(p, p + PAGE).some((b) => b !== 0)) n++;
  return n;
}

test("a spare taken at once (its scrub finished by the take) is all zero", () => {
  const s = new SpareMemory(true);
  const { memory, dataMap } = dirtyMemory();
  assert.ok(nonZeroPages(memory) > 100);
  s.offer(memory, dataMap, SCAN_PAGES * PAGE);
  assert.equal(s.bytes, memory.buffer.byteLength);
  assert.equal(s.take(memory.buffer.byteLength + 65536), null, "another size is not given out");
  const got = s.take(memory.buffer.byteLength);
  assert.equal(got, memory);
  assert.equal(s.finishedOnTake, 1);
  assert.equal(nonZeroPages(got!), 0);
  assert.equal(s.take(memory.buffer.byteLength), null, "taken once");
  assert.equal(s.bytes, 0);
});

test("a spare scrubbed in the background is all zero; a newer offer replaces it", async () => {
  const s = new SpareMemory(true);
  const a = dirtyMemory(), b = dirtyMemory();
  s.offer(a.memory, a.dataMap, SCAN_PAGES * PAGE);
  s.offer(b.memory, b.dataMap, SCAN_PAGES * PAGE);
  // The slices run on setImmediate: wait until they have run (not a fixed time: a turn of the loop each).
  for (let i = 0; i < 1000 && s.finishedOnTake === 0 && nonZeroPages(b.memory) > 0; i++) await new Promise((r) => setImmediate(r));
  const got = s.take(b.memory.buffer.byteLength);
  assert.equal(got, b.memory);
  assert.equal(s.finishedOnTake, 0, "the background scrub had finished");
  assert.equal(nonZeroPages(got!), 0);
  assert.ok(nonZeroPages(a.memory) > 0, "the replaced one was let go as it was (nothing takes it)");
});

test("unmarked pages below the scanned top are trusted zero (the save's map), and a bad map is refused", () => {
  const s = new SpareMemory(true);
  const { memory, dataMap } = dirtyMemory();
  dataMap[0] = 0; // page 0 holds data but the map says it was sent zero: the scrub does not look there
  s.offer(memory, dataMap, SCAN_PAGES * PAGE);
  const got = s.take(memory.buffer.byteLength)!;
  assert.equal(nonZeroPages(got), 1, "only the page the map hid");
  s.offer(memory, new Uint8Array(RAM_PAGES * 4), 0); // a map larger than the memory
  assert.equal(s.bytes, 0);
  assert.equal(s.take(memory.buffer.byteLength), null);
});

test("XENO_SPARE_MEMORY=0's switch: nothing is kept", () => {
  const s = new SpareMemory(false);
  const { memory, dataMap } = dirtyMemory();
  s.offer(memory, dataMap, SCAN_PAGES * PAGE);
  assert.equal(s.bytes, 0);
  assert.equal(s.take(memory.buffer.byteLength), null);
});
