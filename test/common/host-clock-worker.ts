/**
 * Worker side of host-clock.test.ts: answers each ping on the shared words with its own hostNowMs() reading.
 * words[0]: sequence number the main thread bumps to ping, words[1]: the last sequence answered;
 * times[0]: the worker's reading for that ping, times[1]: its calibrated offset.
 */
import { workerData } from "node:worker_threads";
import { HOST_CLOCK_OFFSET_MS, hostNowMs } from "../../src/common/host-clock.js";

const { words: wb, times: tb, rounds } = workerData as { words: SharedArrayBuffer; times: SharedArrayBuffer; rounds: number };
const words = new Int32Array(wb), times = new Float64Array(tb);
times[1] = HOST_CLOCK_OFFSET_MS;
Atomics.store(words, 1, 0);
Atomics.notify(words, 1);
for (let seq = 1; seq <= rounds; seq++) {
  while (Atomics.load(words, 0) < seq) { /* spin: a wait would add µs of wake-up latency to every round */ }
  times[0] = hostNowMs();
  Atomics.store(words, 1, seq);
}
