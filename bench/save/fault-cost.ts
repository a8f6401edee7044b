/**
 * bench/save/fault-cost: what a restore's first writes into a fresh domain memory cost on this host — one byte
 * written to each of 12,500 pages (the data pages of an idle 256 MiB guest's save) of a new shared
 * `WebAssembly.Memory` of 257 MiB, then the same pages again (already faulted in), then 12,500 pages of a plain
 * ArrayBuffer of the same size; five rounds. The first row is what the spare memory (src/hv/save-spare-memory.ts)
 * saves a restore. Host-only: no guest, no hypervisor.
 *
 *   node dist/bench/save/fault-cost.js [--rounds N]
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "5" } } });
const rounds = Number(values.rounds);
const PAGES = 12_500;
const WASM_PAGES = 257 * 16; // 64 KiB wasm pages: 257 MiB, the 256 MiB guest plus Xen's area
const ms = (u: NodeJS.CpuUsage): string => ((u.user + u.system) / 1000).toFixed(1);

for (let r = 0; r < rounds; r++) {
  const mem = new WebAssembly.Memory({ initial: WASM_PAGES, maximum: WASM_PAGES, shared: true });
  const u8 = new Uint8Array(mem.buffer);
  // Pages spread over the memory (stride of 5 pages), as a guest's data pages are.
  const at = (p: number): number => ((p * 4096 * 5) % u8.length) + (p & 3);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let p = 0; p < PAGES; p++) u8[at(p)] = 1;
  const first = process.cpuUsage(c0);
  const wall = performance.now() - t0;
  const c1 = process.cpuUsage();
  for (let p = 0; p < PAGES; p++) u8[at(p)] = 2;
  const again = process.cpuUsage(c1);
  const plain = new Uint8Array(new ArrayBuffer(257 << 20));
  const c2 = process.cpuUsage();
  for (let p = 0; p < PAGES; p++) plain[(p * 4096 * 5) % plain.length] = 1;
  const plainFirst = process.cpuUsage(c2);
  console.log(`round ${r + 1}: first writes ${ms(first)} ms CPU (sys ${(first.system / 1000).toFixed(1)}), ` +
    `wall ${wall.toFixed(1)} ms; again ${ms(again)} ms; ArrayBuffer first writes ${ms(plainFirst)} ms`);
}
