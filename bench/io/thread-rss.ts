/**
 * What an idle blkback I/O thread costs: starts N of them (src/backends/blk/io-thread.ts, with the resource
 * limits blkback gives them, each over an empty queue and /dev/null), waits for them to settle in Atomics.wait,
 * prints the process's RSS growth, then closes them.
 *
 *   node dist/bench/io/thread-rss.js [N]     (default 8)
 */
import { Worker } from "node:worker_threads";
import { openSync } from "node:fs";
import { IoQueue, RING_EVERY, Q_CLOSING, Q_ENDED, Q_KICK, Q_STATE, STATE_RUNNING, type IoThreadData } from "../../src/backends/blk/io-queue.js";

const n = Number(process.argv[2] ?? 8);
const url = new URL("../../src/backends/blk/io-thread.js", import.meta.url);
const base = process.memoryUsage().rss;
const qs: IoQueue[] = [];
for (let i = 0; i < n; i++) {
  const q = new IoQueue();
  qs.push(q);
  Atomics.store(q.ctl, Q_STATE, STATE_RUNNING); // the thread owns the queue (as BlkBack starts one)
  const data: IoThreadData = { queue: q.buffer, ram: new SharedArrayBuffer(4096), fd: openSync("/dev/null", "r"), bytes: 4096, doorbell: null, delayMs: 0, idleMs: 60_000, ringEvery: RING_EVERY, name: "" };
  new Worker(url, { workerData: data, stdout: false, stderr: false, trackUnmanagedFds: false,
    resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 } }).unref();
}
await new Promise((r) => setTimeout(r, 2000));
const grew = (process.memoryUsage().rss - base) / 2 ** 20;
console.log(`${n} idle I/O threads: RSS +${grew.toFixed(1)} MiB, ${(grew / n).toFixed(1)} MiB each`);
for (const q of qs) { Atomics.store(q.ctl, Q_CLOSING, 1); Atomics.add(q.ctl, Q_KICK, 1); Atomics.notify(q.ctl, Q_KICK); }
await new Promise((r) => setTimeout(r, 500));
console.log(`ended: ${qs.filter((q) => Atomics.load(q.ctl, Q_ENDED) === 1).length} of ${n}`);
