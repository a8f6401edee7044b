/**
 * xentop's per-domain I/O figures as the worker publishes them (src/hv/io-stats.ts): the sums over the domain's
 * blkbacks and netbacks land at their words and read back, packets included, and they fit in the stats words the
 * worker shares with the host (vm-worker.ts STAT_WORDS from STAT_IO).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { IO_ALL_WORDS, IO_DEV_MAX, publishIo, readIo } from "../../src/hv/io-stats.js";
import { STAT_IO, STAT_WORDS } from "../../src/hv/vm-worker.js";

test("publishIo sums the back-ends' counters; readIo reads them back; they fit the shared stats words", () => {
  assert.ok(STAT_IO + IO_ALL_WORDS <= STAT_WORDS, `${STAT_IO} + ${IO_ALL_WORDS} words within ${STAT_WORDS}`);
  const blk = [
    { stats: { outOfRequests: 1, reads: 10, writes: 20, bytesRead: 4096, bytesWritten: 8 << 20 }, device: { devid: 51712 } },
    { stats: { outOfRequests: 0, reads: 5, writes: 0, bytesRead: 1024, bytesWritten: 0 }, device: { devid: 51728 } },
  ];
  const net = [
    { stats: { txBytes: 1500, rxBytes: 3000, txFrames: 1, rxFrames: 2 }, device: { devid: 0 } },
    { stats: { txBytes: 100, rxBytes: 0, txFrames: 3, rxFrames: 0 }, device: { devid: 1 } },
  ];
  const out = new Float64Array(STAT_WORDS).fill(-1);
  publishIo(blk, net, out, STAT_IO);
  assert.deepEqual(readIo(out, STAT_IO), {
    vbdOo: 1, vbdRd: 15, vbdWr: 20, vbdRsect: 10, vbdWsect: 16384, netTxBytes: 1600, netRxBytes: 3000, netTxPackets: 4, netRxPackets: 2,
    vbds: [
      { devid: 51712, reads: 10, writes: 20, readBytes: 4096, writeBytes: 8 << 20 },
      { devid: 51728, reads: 5, writes: 0, readBytes: 1024, writeBytes: 0 },
    ],
    vifs: [
      { devid: 0, txPackets: 1, txBytes: 1500, rxPackets: 2, rxBytes: 3000 },
      { devid: 1, txPackets: 3, txBytes: 100, rxPackets: 0, rxBytes: 0 },
    ],
  });
  // A device removed (hot-unplug): its slot is cleared, not left with stale figures.
  publishIo(blk.slice(0, 1), [], out, STAT_IO);
  assert.deepEqual(readIo(out, STAT_IO).vbds!.map((d) => d.devid), [51712]);
  assert.deepEqual(readIo(out, STAT_IO).vifs, []);
  // More devices than there are slots: the first IO_DEV_MAX are reported (the sums still cover all).
  const many = Array.from({ length: IO_DEV_MAX + 3 }, (_, i) => ({ stats: { outOfRequests: 0, reads: 1, writes: 0, bytesRead: 0, bytesWritten: 0 }, device: { devid: i } }));
  publishIo(many, [], out, STAT_IO);
  assert.equal(readIo(out, STAT_IO).vbds!.length, IO_DEV_MAX);
  assert.equal(readIo(out, STAT_IO).vbdRd, IO_DEV_MAX + 3);
  // The words before STAT_IO and after its block are not touched.
  for (let i = 0; i < STAT_IO; i++) assert.equal(out[i], -1);
  for (let i = STAT_IO + IO_ALL_WORDS; i < STAT_WORDS; i++) assert.equal(out[i], -1);
});
