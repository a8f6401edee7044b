/**
 * bench/jit/zva: the compiled DC ZVA loop of clear_page/memset (DC ZVA; ADD #64; SUBS; B.NE) zeroing 32 MiB, 20
 * times after one warm-up, on one vCPU with every block compiled at its first run; prints the process CPU time
 * and the engine's slow-path writes. With a directory, runs that checkout's build (its dist/) instead of this
 * one, for an A/B of the translator's DC ZVA:
 *
 *   node dist/bench/jit/zva.js [DIR]
 *
 * Timings never decide pass/fail (test/unit/jit-zva.test.ts checks the zeroing); record results in docs/benchmarks.md.
 */
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

process.env.XENO_JIT_HOT = "1";
const root = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), "../../.."));
const mod = (p: string): string => pathToFileURL(path.join(root, "dist/src", p)).href;
// Another checkout's modules, typed as this one's (the same source files at another revision).
const { Mmu } = await import(mod("mmu/mmu.js")) as typeof import("../../src/mmu/mmu.js");
const { Cpu, CodeCache, sharedDecoder } = await import(mod("cpu/arm64/cpu.js")) as typeof import("../../src/cpu/arm64/cpu.js");
const { JitEngine, soloJitMemory } = await import(mod("cpu/arm64/jit/engine.js")) as typeof import("../../src/cpu/arm64/jit/engine.js");
const { VBAR_EL1 } = await import(mod("cpu/arm64/sysregs.js")) as typeof import("../../src/cpu/arm64/sysregs.js");
const { PC2 } = await import(mod("cpu/arm64/state.js")) as typeof import("../../src/cpu/arm64/state.js");

const BASE = 0x40000000, RAM = 48 << 20, CODE = 0x1000, DATA = 0x100000, BLOCKS = (32 << 20) / 64, REPS = 20;
const { memory, stateAt, tlbAt, jitAt } = soloJitMemory(RAM);
const mmu = new Mmu(memory.buffer, BASE, undefined, RAM, tlbAt);
const engine = new JitEngine(memory, sharedDecoder(), false, jitAt);
const c = new Cpu(mmu, new CodeCache(RAM >>> 12, engine), { buffer: memory.buffer, offset: stateAt });
const dv = new DataView(memory.buffer);
// loop: DC ZVA, x0; ADD x0, x0, #64; SUBS x3, x3, #1; B.NE loop; BRK #0
[0xd50b7420, 0x91010000, 0xf1000463, 0x54ffffa1, 0xd4200000].forEach((w, k) => dv.setInt32(CODE + 4 * k, w | 0, true));
c.sys[VBAR_EL1] = (BASE + 0x80000) | 0;
let t0 = process.cpuUsage(), slow0 = 0;
for (let rep = 0; rep <= REPS; rep++) {
  if (rep === 1) { t0 = process.cpuUsage(); slow0 = engine.stats.slowWrites; }
  c.r[0] = (BASE + DATA) | 0; c.r[6] = BLOCKS; c.r[PC2] = (BASE + CODE) | 0;
  for (let left = 4 * BLOCKS; left > 0;) left -= c.run(Math.min(left, 50_000));
}
const u = process.cpuUsage(t0);
console.log(`${root}: ${((u.user + u.system) / 1000).toFixed(0)} ms CPU for ${REPS} x 32 MiB zeroed by DC ZVA ` +
  `(${REPS * BLOCKS} DC ZVAs); ${engine.stats.slowWrites - slow0} slow-path writes`);
