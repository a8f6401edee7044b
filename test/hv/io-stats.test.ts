/**
 * xentop's per-domain I/O figures as the worker publishes them (src/hv/io-stats.ts): the sums over the domain's
 * blkbacks and netbacks land at their words and read back, packets included, and they fit in the stats words the
 * worker shares with the host (vm-worker.ts STAT_WORDS from STAT_IO).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { IO_WORDS, publishIo, readIo } from "../../src/hv/io-stats.js";
import { STAT_IO, STAT_WORDS } from "../../src/hv/vm-worker.js";

test("publishIo sums the back-ends' counters; readIo reads them back; they fit the shared stats words", () => {
  assert.ok(STAT_IO + IO_WORDS <= STAT_WORDS, `${STAT_IO} + ${IO_WORDS} words within ${STAT_WORDS}`);
  const blk = [
    { stats: { outOfRequests: 1, reads: 10, writes: 20, bytesRead: 4096, bytesWritten: 8 << 20 } },
    { stats: { outOfRequests: 0, reads: 5, writes: 0, bytesRead: 1024, bytesWritten: 0 } },
  ];
  const net = [
    { stats: { txBytes: 1500, rxBytes: 3000, txFrames: 1, rxFrames: 2 } },
    { stats: { txBytes: 100, rxBytes: 0, txFrames: 3, rxFrames: 0 } },
  ];
  const out = new Float64Array(STAT_WORDS).fill(-1);
  publishIo(blk, net, out, STAT_IO);
  assert.deepEqual(readIo(out, STAT_IO), {
    vbdOo: 1, vbdRd: 15, vbdWr: 20, vbdRsect: 10, vbdWsect: 16384, netTxBytes: 1600, netRxBytes: 3000, netTxPackets: 4, netRxPackets: 2,
  });
  // The words before STAT_IO and after its block are not touched.
  for (let i = 0; i < STAT_IO; i++) assert.equal(out[i], -1);
  for (let i = STAT_IO + IO_WORDS; i < STAT_WORDS; i++) assert.equal(out[i], -1);
});
