/**
 * DC ZVA compiled (translate.ts dcZva): the 64-byte block zeroed in wasm when the TLB maps it writable, through
 * the MMU's zeroBlock otherwise. Checked against the interpreter and against what the architecture says: a
 * clear_page-style loop from an unaligned address zeroes whole aligned blocks and nothing past them, without
 * a slow-path call per block once the page is in the TLB; and a DC ZVA onto a page holding a compiled block
 * drops that block (the next run there sees the zeros, not the old code).
 */
process.env.XENO_JIT_HOT = "1";
const { test } = await import("node:test");
const assert: typeof import("node:assert/strict") = (await import("node:assert/strict")).default;
const { Mmu } = await import("../../src/mmu/mmu.js");
const { Cpu, CodeCache, sharedDecoder } = await import("../../src/cpu/arm64/cpu.js");
const { JitEngine, soloJitMemory } = await import("../../src/cpu/arm64/jit/engine.js");
const { ESR_EL1, ELR_EL1, VBAR_EL1 } = await import("../../src/cpu/arm64/sysregs.js");
const { PC2 } = await import("../../src/cpu/arm64/state.js");

const BASE = 0x40000000, RAM = 1 << 20, CODE = 0x1000, CODE2 = 0x3000, DATA = 0x40000;

/** A vCPU at EL1 on a fresh memory with `prog` at CODE (`jit`: every block compiled at its first run). */
function vcpu(prog: number[], jit: boolean): { c: InstanceType<typeof Cpu>; dv: DataView; engine: InstanceType<typeof JitEngine> | null } {
  const { memory, stateAt, tlbAt, jitAt } = soloJitMemory(RAM);
  const mmu = new Mmu(memory.buffer, BASE, undefined, RAM, tlbAt);
  const engine = jit ? new JitEngine(memory, sharedDecoder(), false, jitAt) : null;
  const c = new Cpu(mmu, new CodeCache(RAM >>> 12, engine), { buffer: memory.buffer, offset: stateAt });
  const dv = new DataView(memory.buffer);
  prog.forEach((w, k) => dv.setInt32(CODE + 4 * k, w | 0, true));
  c.sys[VBAR_EL1] = (BASE + 0x80000) | 0;
  c.r[PC2] = (BASE + CODE) | 0;
  return { c, dv, engine };
}

test("a DC ZVA loop zeroes whole aligned blocks, compiled as interpreted, without a slow path per block", () => {
  // loop: DC ZVA, x0; ADD x0, x0, #64; SUBS x3, x3, #1; B.NE loop; BRK #0 — 64 blocks from DATA + 5.
  const prog = [0xd50b7420, 0x91010000, 0xf1000463, 0x54ffffa1, 0xd4200000];
  const BLOCKS = 64, SPAN = BLOCKS * 64 + 256;
  const run = (jit: boolean): { bytes: Uint8Array; n: number; slow: number } => {
    const { c, dv, engine } = vcpu(prog, jit);
    for (let k = 0; k < SPAN; k++) dv.setUint8(DATA + k, 0xa5);
    c.r[0] = (BASE + DATA + 5) | 0; c.r[6] = BLOCKS;
    const n = c.run(4 * BLOCKS);
    return { bytes: new Uint8Array(dv.buffer.slice(DATA, DATA + SPAN)), n, slow: engine?.stats.slowWrites ?? 0 };
  };
  const i = run(false), j = run(true);
  assert.equal(j.n, i.n);
  assert.deepEqual(j.bytes, i.bytes, "memory after the loop, compiled against interpreted");
  for (let k = 0; k < SPAN; k++) assert.equal(i.bytes[k], k < BLOCKS * 64 ? 0 : 0xa5, `byte ${k} after zeroing from DATA + 5`);
  // The first DC ZVA fills the TLB through the slow path (its page was never touched); the rest hit it.
  assert.ok(j.slow <= 2, `slow-path writes for ${BLOCKS} blocks of one page: ${j.slow}`);
});

test("DC ZVA onto a page with a compiled block drops the block", () => {
  // At CODE2: MOVZ x5, #1; BRK #0 (run once: the MOVZ block is compiled). At CODE: DC ZVA, x17 (x17 → CODE2 +
  // 12, unaligned); BR x18 (x18 → CODE2). After the zeroing, CODE2 holds 0 (UDF): the vCPU takes an Undefined Instruction
  // exception there instead of running the old MOVZ.
  const check = (jit: boolean): void => {
    const { c, dv, engine } = vcpu([0xd50b7431, 0xd61f0240], jit);
    dv.setInt32(CODE2, 0xd2800025 | 0, true); dv.setInt32(CODE2 + 4, 0xd4200000 | 0, true);
    c.r[PC2] = (BASE + CODE2) | 0;
    c.run(1);
    assert.equal(c.r[10], 1, "the MOVZ ran");
    if (engine !== null) assert.ok(engine.stats.blocks >= 1, "the MOVZ block was compiled");
    c.r[10] = 0; c.r[34] = (BASE + CODE2 + 12) | 0; c.r[36] = (BASE + CODE2) | 0; c.r[PC2] = (BASE + CODE) | 0;
    c.run(3);
    assert.equal(dv.getInt32(CODE2, true), 0, "the block holding CODE2 was zeroed");
    assert.equal(c.r[10], 0, "x5: the old MOVZ did not run again");
    assert.equal(c.sys[ESR_EL1] >>> 26, 0, "an Undefined Instruction exception (EC 0) at CODE2");
    assert.equal(c.sys[ELR_EL1], (BASE + CODE2) | 0, "ELR at CODE2");
  };
  check(false);
  check(true);
});
