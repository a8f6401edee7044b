/**
 * bench/density/jit-memory: what the compiler keeps in memory for one booted domain, taken apart (issue 10's
 * density goal: memory per domain beyond guest RAM ≤ 16 MiB with compiled code counted).
 *
 *   node [V8 flags] dist/bench/density/jit-memory.js [--memory MiB] [--idle SEC]
 *
 * Boots the demo images as a Xen DomU in this process (no toolstack, as bench/jit/profile) to the guest's ready
 * marker, lets it idle --idle seconds (default 30; the decode cache's sweeps run then), and reads this process's
 * memory at each step: RSS and its kinds from /proc/self/smaps (guest memory — the domain's WebAssembly.Memory,
 * the one mapping at least the size of RAM; executable anonymous mappings — V8's JIT code and the wasm code
 * spaces; V8 heap pages; the rest), V8's heap and code statistics, and the engine's counters (modules and blocks
 * compiled, the modules still holding installed blocks and their wasm bytes). Then it drops every compiled block
 * (Board.dropCompiled: the modules become garbage, collected at once) and reads again: the difference is what the
 * compiled code held. Run it with XENO_JIT=0 for the machine without the compiler, and with V8 flags
 * (--no-wasm-tier-up, --liftoff-only, …) for what they change. A measuring tool: figures go to
 * docs/benchmarks.md by hand.
 */
import { readFileSync } from "node:fs";
import * as v8 from "node:v8";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { Machine } from "../../src/hv/machine.js";
import { collectGarbage } from "../../src/machine/board.js";
import { smapsBreakdown } from "./smaps.js";

const arg = (name: string, def: number): number => { const k = process.argv.indexOf(name); return k >= 0 ? Number(process.argv[k + 1]) : def; };
const memMiB = arg("--memory", 64), idle = arg("--idle", 30);

interface Kinds { rss: number; guest: number; exec: number; v8: number; other: number; file: number; big: string[] }

/** This process's resident KiB by mapping kind (see the header; smaps.ts). */
function kinds(): Kinds {
  const b = smapsBreakdown("self", memMiB * 2 ** 20, 2048);
  return { rss: b.rssKiB, guest: b.ramKiB, exec: b.execKiB, v8: b.v8KiB, other: b.otherKiB, file: b.fileKiB, big: b.big };
}

const mib = (kib: number): string => (kib / 1024).toFixed(1);
let m: Machine;

function report(what: string): Kinds {
  const k = kinds(), h = v8.getHeapStatistics(), c = v8.getHeapCodeStatistics(), mu = process.memoryUsage();
  const spaces = v8.getHeapSpaceStatistics().filter((s) => s.space_used_size > 1 << 20)
    .map((s) => `${s.space_name} ${(s.space_used_size / 2 ** 20).toFixed(1)}`).join(", ");
  console.log(`${what}: RSS ${mib(k.rss)} MiB = guest memory ${mib(k.guest)} + executable anon ${mib(k.exec)} + V8 heap pages ` +
    `${mib(k.v8)} + other anon ${mib(k.other)} + file ${mib(k.file)}`);
  if (process.argv.includes("--verbose")) console.log(`  mappings other than guest memory with 2 MiB or more resident: ${k.big.join("; ")}`);
  console.log(`  V8 heap used ${(h.used_heap_size / 2 ** 20).toFixed(1)} MiB of ${(h.total_heap_size / 2 ** 20).toFixed(1)} (${spaces}); ` +
    `code+metadata ${(c.code_and_metadata_size / 2 ** 20).toFixed(1)} MiB; external ${(mu.external / 2 ** 20).toFixed(1)} MiB; ` +
    `malloced ${(h.malloced_memory / 2 ** 20).toFixed(1)} MiB`);
  const s = m.board.jitStats();
  if (s !== null) {
    console.log(`  engine: ${s.modules} modules / ${s.blocks} blocks compiled (${(s.blocks / Math.max(1, s.modules)).toFixed(1)} per module), ` +
      `${s.liveModules} modules holding ${s.liveBlocks} installed blocks (${(s.liveBytes / 1024).toFixed(0)} KiB of wasm); ` +
      `${m.codePages} decoded pages; resets ${s.resets}; queues compiled full/waited/hot ${s.flushFull}/${s.flushAge}/${s.flushHot}; modules evicted ${s.evicted}`);
  }
  return k;
}

const images = await ensureImages({ onProgress: (t) => process.stderr.write(`images: ${t}\n`) });
let out = "";
m = new Machine({
  memMiB, vcpus: 1, xen: true,
  kernel: readFileSync(images.kernel), initrd: readFileSync(images.initrd), cmdline: "console=hvc0",
  consoleOut: (b) => { out = (out + Buffer.from(b).toString("latin1")).slice(-4096); },
});
collectGarbage();
const k0 = report("created");
const c0 = process.cpuUsage();
const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** Runs the machine until `until()` or `ms` of wall time, sleeping while every vCPU waits (as the worker does). */
function run(until: () => boolean, ms: number): void {
  const end = performance.now() + ms;
  while (!until() && performance.now() < end && m.state === "running") {
    const w = m.runSlice();
    if (w > 0) Atomics.wait(sleeper, 0, 0, Math.min(w, end - performance.now()));
  }
}
run(() => out.includes(GUEST_READY_MARKER), 3600_000);
if (!out.includes(GUEST_READY_MARKER)) throw new Error(`no ready marker (state ${m.state}); console tail ${JSON.stringify(out.slice(-300))}`);
const cpu = process.cpuUsage(c0);
console.log(`booted: ${(m.retired / 1e6).toFixed(0)} M instructions, ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s CPU (process)`);
// Idle in steps of 10 s, reporting each: the decode cache's sweeps and the board's GCs happen in this time.
let k1 = report("at the marker (again)");
for (let t = 0; t < idle; t += 10) {
  run(() => false, Math.min(10, idle - t) * 1000);
  k1 = report(`idle ${Math.min(t + 10, idle)} s`);
}
collectGarbage();
const k2 = report("after a full GC");
m.board.dropCompiled();
const k3 = report("compiled code dropped, GC");
console.log(`beyond the created machine, idle: +${mib(k1.rss - k0.rss)} MiB RSS (guest memory +${mib(k1.guest - k0.guest)}, rest +${mib(k1.rss - k1.guest - k0.rss + k0.guest)}); ` +
  `dropping the compiled code gave back ${mib(k2.rss - k3.rss)} MiB (executable ${mib(k2.exec - k3.exec)}, V8 heap pages ${mib(k2.v8 - k3.v8)}, other ${mib(k2.other - k3.other)})`);
process.exit(0);
