/**
 * jit-stall.test.ts's scenario, in a worker so that a livelock shows as a missing answer instead of a hung test:
 * a compiled block whose first instruction hands over to the interpreter (an LDXR at an unaligned address leaves
 * the block at once; the interpreter takes the alignment fault) while a masked interrupt line is up (DAIF is
 * all-masked at reset). Posts the instructions run(8) retired.
 */
import { parentPort } from "node:worker_threads";
const { Mmu } = await import("../../src/mmu/mmu.js");
const { Cpu, CodeCache, sharedDecoder } = await import("../../src/cpu/arm64/cpu.js");
const { JitEngine, soloJitMemory } = await import("../../src/cpu/arm64/jit/engine.js");
const { VBAR_EL1 } = await import("../../src/cpu/arm64/sysregs.js");
const { PC2 } = await import("../../src/cpu/arm64/state.js");

const BASE = 0x40000000, RAM = 1 << 20, CODE = 0x1000, DATA = 0x40000;
const { memory, stateAt, tlbAt, jitAt } = soloJitMemory(RAM);
const mmu = new Mmu(memory.buffer, BASE, undefined, RAM, tlbAt);
const cache = new CodeCache(RAM >>> 12, new JitEngine(memory, sharedDecoder(), false, jitAt));
const c = new Cpu(mmu, cache, { buffer: memory.buffer, offset: stateAt });
const dv = new DataView(memory.buffer);
dv.setInt32(CODE, 0xc85f7e01 | 0, true); // LDXR x1, [x16]
dv.setInt32(CODE + 4, 0xd4200000 | 0, true); // BRK #0
c.sys[VBAR_EL1] = (BASE + 0x80000) | 0;
c.r[2 * 16] = (BASE + DATA + 4) | 0; // not 8-aligned: the compiled LDXR leaves at once
c.r[PC2] = (BASE + CODE) | 0;
c.irqLine = 1; // up, and masked (PSTATE.I = 1 from reset)
const n = c.run(8);
parentPort!.postMessage({ n, blocks: cache.jit!.stats.blocks });
