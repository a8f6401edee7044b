/**
 * bench/density/create-cost: what a domain costs in this process before its first instruction, apart from the
 * isolate of the thread that would hold it.
 *
 *   node --expose-gc dist/bench/density/create-cost.js [--domains N] [--memory MiB]
 *
 * Builds N Xen DomUs of the stock kernel (Machine, as a domain thread does; kernel and initramfs in shared
 * buffers, as the hypervisor's image cache hands them) without running them, and prints each one's growth of
 * RSS (guest RAM the loaded kernel and initramfs touched included), V8 heap and ArrayBuffers after a full GC.
 * The hypervisor's per-domain figure at creation (bench/density/probe) adds the threads' isolates.
 */
import { readFileSync } from "node:fs";
import { ensureImages } from "../../src/images/index.js";
import { Machine } from "../../src/hv/machine.js";

const arg = (name: string, def: number): number => { const k = process.argv.indexOf(name); return k >= 0 ? Number(process.argv[k + 1]) : def; };
const shared = (b: Buffer): Uint8Array => { const u = new Uint8Array(new SharedArrayBuffer(b.length)); u.set(b); return u; };
const gc = (globalThis as { gc?: () => void }).gc;
const mib = (x: number): string => (x / 2 ** 20).toFixed(2);

const images = await ensureImages({});
const kernel = shared(readFileSync(images.kernel)), initrd = shared(readFileSync(images.initrd));
const held: Machine[] = [];
gc?.();
let prev = process.memoryUsage();
for (let i = 0; i < arg("--domains", 4); i++) {
  held.push(new Machine({ memMiB: arg("--memory", 64), vcpus: 1, xen: true, kernel, initrd, cmdline: "console=hvc0", consoleOut: () => {} }));
  gc?.();
  const m = process.memoryUsage();
  console.log(`domain ${i + 1}: RSS +${mib(m.rss - prev.rss)} MiB, V8 heap used +${mib(m.heapUsed - prev.heapUsed)}, ` +
    `ArrayBuffers +${mib(m.arrayBuffers - prev.arrayBuffers)}, external +${mib(m.external - prev.external)}`);
  prev = m;
}
if (gc === undefined) console.log("(run with --expose-gc for figures after a full GC)");
for (const m of held) m.dispose();
