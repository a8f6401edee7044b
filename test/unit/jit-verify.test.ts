/**
 * The compiler checked against the interpreter, block by block (issue 10's verify mode, as a test): random
 * blocks of translatable A64 instructions — integer data processing, loads and stores of general and SIMD&FP
 * registers in every addressing mode, DC ZVA, MRS CTR_EL0/DCZID_EL0, LDXR/STXR (the exclusive monitor, compared too), the Advanced SIMD integer forms (SIMD_GROUPS; one block in eight with
 * FP/SIMD disabled, so they trap), conditional branches inside and a branch at the end — run from the same state by an interpreting vCPU and by one that compiles every block on
 * its first run (XENO_JIT_HOT=1). Registers, V registers, SP, PC, NZCV, the data memory, the instruction count and any
 * exception taken (ESR, FAR, ELR) must agree. Half the registers point into a data window, so most accesses
 * hit RAM; the rest fault, which checks the exact-state contract of compiled code's slow paths.
 *
 *   XENO_SEED=n          reproduce (printed at the start)
 *   XENO_JIT_BLOCKS=n    number of blocks (default 10000)
 */
process.env.XENO_JIT_HOT = "1";
const { test } = await import("node:test");
const assert: typeof import("node:assert/strict") = (await import("node:assert/strict")).default;
const { Mmu } = await import("../../src/mmu/mmu.js");
const { Cpu, CodeCache, sharedDecoder } = await import("../../src/cpu/arm64/cpu.js");
const { JitEngine, soloJitMemory } = await import("../../src/cpu/arm64/jit/engine.js");
const { Translator } = await import("../../src/cpu/arm64/jit/translate.js");
const { CPACR_EL1, ESR_EL1, FAR_EL1, ELR_EL1, VBAR_EL1 } = await import("../../src/cpu/arm64/sysregs.js");
const { PC2, SP2, PS_EXCL_OFF, PS_EXCL_SIZE, PS_EXCL_LO, PS_EXCL_HI, PS_EXCL_PAIR } = await import("../../src/cpu/arm64/state.js");

const BASE = 0x40000000, RAM = 1 << 20, CODE = 0x1000, DATA = 0x40000, DATA_LEN = 0x10000;
const SEED = process.env.XENO_SEED !== undefined ? Number(process.env.XENO_SEED) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0;
const COUNT = Number(process.env.XENO_JIT_BLOCKS ?? 10000);

/**
 * Advanced SIMD integer encoding groups, FMOV (general), and LDAR/STLR (Arm ARM C4.1.95 / C4.1.88 / C4.1.96 diagrams; '0'/'1' fixed, 'x' random), as
 * [mask, value]: the translator keeps the words it takes, so reserved field values and forms it leaves to the
 * interpreter simply are drawn again.
 */
const SIMD_GROUPS: [number, number][] = [
  "0xx01110xx1xxxxxxxxxx1xxxxxxxxxx", // three same (ADD/SUB, logic, compares, MUL/MLA/MLS, max/min, pairwise)
  "0xx01110xx1xxxxx100001xxxxxxxxxx", // ADD/SUB (vector)
  "0xx01110xx1xxxxx000111xxxxxxxxxx", // AND/BIC/ORR/ORN/EOR/BSL/BIT/BIF
  "0xx01110xx1xxxxx0011x1xxxxxxxxxx", // CMGT/CMHI/CMGE/CMHS
  "0xx01110xx1xxxxx1001x1xxxxxxxxxx", // MLA/MLS/MUL
  "0xx011110xxxx0xx000001xxxxxxxxxx", // SSHR/USHR (vector, B/H/S)
  "0xx0111100000xxxxxxx01xxxxxxxxxx", // modified immediate
  "01x11110xx1xxxxxxxxxx1xxxxxxxxxx", // scalar three same (ADD/SUB D, compares D)
  "0xx01110xx1xxxxxxxxx00xxxxxxxxxx", // three different (widening add/sub/multiply)
  "0xx01111xxxxxxxxxxxxx0xxxxxxxxxx", // vector x indexed element
  "0xx011110xxxxxxxxxxxx1xxxxxxxxxx", // shift by immediate, modified immediate
  "01x111110xxxxxxxxxxxx1xxxxxxxxxx", // scalar shift by immediate
  "0xx01110xx10000xxxxx10xxxxxxxxxx", // two-register miscellaneous
  "01x11110xx10000xxxxx10xxxxxxxxxx", // scalar two-register miscellaneous
  "0xx01110xx11000xxxxx10xxxxxxxxxx", // across lanes
  "0x001110xx0xxxxx0xxx10xxxxxxxxxx", // permute
  "0x101110000xxxxx0xxxx0xxxxxxxxxx", // EXT
  "0x001110000xxxxx0xxx00xxxxxxxxxx", // TBL/TBX
  "0xx01110000xxxxx0xxxx1xxxxxxxxxx", // copy (DUP, INS, UMOV, SMOV)
  "01011110000xxxxx000001xxxxxxxxxx", // DUP (element, scalar)
  "0x001100xx0xxxxxxxxxxxxxxxxxxxxx", // LD1-4/ST1-4 (multiple structures), post-index or not
  "0x001101xxxxxxxxxxxxxxxxxxxxxxxx", // LD1-4/ST1-4 (single structure), post-index or not
  "x0011110xx1xx11x000000xxxxxxxxxx", // FMOV (general) and its neighbours in FP<->integer
  "xx0010001x011111111111xxxxxxxxxx", // LDAR / STLR (B/H/W/X): unaligned addresses leave to the interpreter
  "xx0010000x0xxxxxxxxxxxxxxxxxxxxx", // LDXR/LDAXR, STXR/STLXR (B/H/W/X): unaligned or missing the TLB, interpreted
  "1x0010000x1xxxxxxxxxxxxxxxxxxxxx", // LDXP/LDAXP, STXP/STLXP (W and X pairs)
].map((p) => {
  let mask = 0, value = 0;
  for (let k = 0; k < 32; k++) if (p[k] !== "x") { mask |= 1 << (31 - k); if (p[k] === "1") value |= 1 << (31 - k); }
  return [mask | 0, value | 0];
});

/** xorshift32 */
function rng(seed: number): () => number {
  let s = seed || 1;
  return () => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return s >>> 0; };
}

test(`compiled blocks agree with the interpreter (seed ${SEED}, ${COUNT} blocks)`, () => {
  console.log(`# jit verify: XENO_SEED=${SEED} XENO_JIT_BLOCKS=${COUNT} node --test dist/test/unit/jit-verify.test.js`);
  const rand = rng(SEED);
  // The reference: an interpreting vCPU over a plain buffer.
  const mmuA = new Mmu(new ArrayBuffer(RAM), BASE);
  const a = new Cpu(mmuA, new CodeCache(RAM >>> 12));
  // The compiled one: RAM, state block, TLB and engine area in one memory.
  const { memory, stateAt, tlbAt, jitAt } = soloJitMemory(RAM);
  const mmuB = new Mmu(memory.buffer, BASE, undefined, RAM, tlbAt);
  const cacheB = new CodeCache(RAM >>> 12, new JitEngine(memory, sharedDecoder(), false, jitAt));
  const b = new Cpu(mmuB, cacheB, { buffer: memory.buffer, offset: stateAt });
  const ramA = new Uint8Array(mmuA.ram as ArrayBuffer), ramB = new Uint8Array(memory.buffer, 0, RAM);
  const dvA = new DataView(mmuA.ram as ArrayBuffer);
  const tr = new Translator(sharedDecoder());
  const one = new Int32Array(1);
  /** Advanced SIMD words drawn, by encoding name (printed, and checked to be a real share of the blocks). */
  const simdNames = new Map<string, number>();
  /** A random word the translator takes as one non-branch instruction. */
  const word = (): number => {
    for (;;) {
      // op0 groups: 100x data processing (immediate), x101 data processing (register), x1x0 loads and stores;
      // and the Advanced SIMD integer groups (SIMD_GROUPS), about one word in four.
      let w = rand() | 0;
      // Now and then DC ZVA (even registers point into the data window, odd ones mostly fault).
      if (rand() % 32 === 0) { one[0] = w = (0xd50b7420 | (rand() % 31)) | 0; if (tr.translate(one, 0, 1, () => -1) === 1) return w; }
      // And MRS of CTR_EL0 / DCZID_EL0 (constants at EL1).
      if (rand() % 64 === 0) return ((rand() % 2 === 0 ? 0xd53b0020 : 0xd53b00e0) | (rand() % 32)) | 0;
      const pick = rand() % 4;
      if (pick === 0) w = (w & ~(0xf << 25)) | ((8 | (rand() & 1)) << 25);
      else if (pick === 1) w = (w & ~(0x7 << 25)) | (5 << 25);
      else if (pick === 2) w = (w & ~(0x5 << 25)) | (4 << 25);
      else {
        // A group, then words of it until one is taken: each group gets its share, however sparse.
        const g = SIMD_GROUPS[rand() % SIMD_GROUPS.length];
        for (let k = 0; k < 256; k++) {
          one[0] = w = ((rand() | 0) & ~g[0]) | g[1];
          if (tr.translate(one, 0, 1, () => -1) === 1) {
            const name = sharedDecoder().nameOf(w);
            simdNames.set(name, (simdNames.get(name) ?? 0) + 1);
            return w;
          }
        }
        continue;
      }
      one[0] = w;
      if (tr.translate(one, 0, 1, () => -1) === 1) return w;
    }
  };
  // Exceptions go to a vector table in RAM (zeros: UDF, which counts as an instruction run), not to a fetch
  // abort at physical 0 that would never retire anything.
  for (const c of [a, b]) { c.sys[VBAR_EL1] = (BASE + 0x80000) | 0; c.sys[VBAR_EL1 + 1] = 0; }
  // B.cond +8 (cond in bits 3:0), CBZ/CBNZ X/W +8 and TBZ/TBNZ +8 (bit number in bits 23:19), register x0..x3.
  const condBranches = [0x54000040, 0xb4000040, 0x35000041, 0x36000042, 0x37000043].map((w) => w | 0);
  const branches = [0x14000001 | 0, 0x54000020 | 0, 0xb4000020 | 0, 0x36080020 | 0, 0xd65f03c0 | 0]; // B, B.EQ, CBZ, TBZ, RET
  let compiled = 0, faults = 0, fpTraps = 0, armed = 0;
  for (let iter = 0; iter < COUNT; iter++) {
    const page = CODE + ((iter % 32) << 12); // a fresh page each time round, so blocks get compiled anew
    const n = 1 + (rand() % 8);
    const words: number[] = [];
    for (let k = 0; k < n; k++) {
      words.push(word());
      // Now and then a conditional branch inside the block: taken, it skips the next instruction.
      if (rand() % 4 === 0) words.push(condBranches[rand() % condBranches.length] | ((rand() % 16) << (rand() % 2 === 0 ? 0 : 19)) & ~0x10);
    }
    // One block in four gets an exclusive pair on one base register (x16/x18/x20: aligned into the data window
    // below): LDXR then STXR of the same size (or LDXP then STXP), with instructions between that may break the
    // reservation.
    // Or a lone STXR there, against the monitor as set up below (same size and base register).
    // exKind 0..3: LDXR/STXR of 1 << exKind bytes; 4, 5: LDXP/STXP of two W / two X registers (8, 16 bytes).
    const exKind = rand() % 6, exBytes = exKind < 4 ? 1 << exKind : 8 << (exKind - 4), exBase = 16 + 2 * (rand() % 3);
    if (rand() % 4 === 0) {
      const at = rand() % (words.length + 1), lone = rand() % 2 === 0, o0 = (rand() & 1) << 15;
      const t2 = exKind < 4 ? 31 : rand() % 31;
      const sz = exKind < 4 ? exKind << 30 : 0x80000000 | ((exKind - 4) << 30) | 0x200000;
      const ldxr = (sz | 0x085f0000 | (t2 << 10) | (exBase << 5) | (rand() % 31) | o0) | 0;
      const stxr = (sz | 0x08000000 | ((rand() % 31) << 16) | (t2 << 10) | (exBase << 5) | (rand() % 31) | o0) | 0;
      if (lone) words.splice(at, 0, stxr);
      else {
        words.splice(at, 0, ldxr);
        words.splice(at + 1 + (rand() % (words.length - at)), 0, stxr);
      }
    }
    if (rand() % 2 === 0) words.push(branches[rand() % branches.length]);
    // Same code, data and registers on both sides.
    for (let k = 0; k < words.length; k++) dvA.setInt32(page + 4 * k, words[k], true);
    for (let k = 0; k < DATA_LEN; k += 4) dvA.setUint32(DATA + k, rand(), true);
    ramB.set(ramA);
    a.invalidateAllCode(); b.invalidateAllCode();
    for (let r = 0; r < 31; r++) {
      let lo = rand() | 0, hi = rand() | 0;
      if (r % 2 === 0) { lo = (BASE + DATA + (rand() % (DATA_LEN - 512))) | 0; hi = 0; }
      a.r[2 * r] = b.r[2 * r] = lo; a.r[2 * r + 1] = b.r[2 * r + 1] = hi;
    }
    a.r[SP2] = b.r[SP2] = (BASE + DATA + 0x8000) | 0; a.r[SP2 + 1] = b.r[SP2 + 1] = 0;
    for (const r of [16, 18, 20]) { a.r[2 * r] &= rand() % 4 !== 0 ? -16 : -1; b.r[2 * r] = a.r[2 * r]; }
    // The exclusive monitor: open, or armed (by an LDXR before the block) at a base register's address, with
    // memory there unchanged or not.
    // Open as after CLREX or an exception (which keep the recorded value): a store-exclusive must fail even
    // where memory still holds it.
    {
      const size = exBytes, off = (a.r[2 * exBase] - BASE) & -size;
      a.exclOff = rand() % 3 === 0 ? -1 : off; a.exclSize = size;
      a.exclLo = size === 1 ? ramA[off] : size === 2 ? dvA.getUint16(off, true) : dvA.getInt32(off, true);
      a.exclHi = size >= 8 ? dvA.getInt32(off + 4, true) : 0;
      a.ps[PS_EXCL_PAIR] = size === 16 ? dvA.getInt32(off + 8, true) : rand() | 0;
      a.ps[PS_EXCL_PAIR + 1] = size === 16 ? dvA.getInt32(off + 12, true) : rand() | 0;
      if (rand() % 3 === 0) { if (size === 16 && rand() % 2 === 0) a.ps[PS_EXCL_PAIR + 1] ^= 1; else a.exclLo ^= 1; }
    }
    b.exclOff = a.exclOff; b.exclSize = a.exclSize; b.exclLo = a.exclLo; b.exclHi = a.exclHi;
    b.ps[PS_EXCL_PAIR] = a.ps[PS_EXCL_PAIR]; b.ps[PS_EXCL_PAIR + 1] = a.ps[PS_EXCL_PAIR + 1];
    for (let k = 0; k < 128; k++) a.vi32[k] = b.vi32[k] = rand() | 0;
    a.nzcv = b.nzcv = rand() & 15;
    a.r[PC2] = b.r[PC2] = (BASE + page) | 0; a.r[PC2 + 1] = b.r[PC2 + 1] = 0;
    // One block in eight with FP/SIMD disabled (CPACR_EL1.FPEN = 0): its first FP/SIMD instruction traps.
    const fpen = rand() % 8 === 0 ? 0 : 3;
    for (const c of [a, b]) {
      c.sys[ESR_EL1] = 0; c.sys[FAR_EL1] = 0; c.sys[FAR_EL1 + 1] = 0; c.sys[ELR_EL1] = 0;
      c.sys[CPACR_EL1] = fpen << 20; c.updateFpTrap();
    }
    const budget = words.length;
    const na = a.run(budget), nb = b.run(budget);
    const where = `seed ${SEED} block ${iter}: ${words.map((w) => (w >>> 0).toString(16).padStart(8, "0") + " " + sharedDecoder().nameOf(w)).join("; ")}`;
    assert.equal(nb, na, `instructions run, ${where}`);
    for (let k = 0; k < 2 * 36; k++) if (a.r[k] !== b.r[k]) assert.fail(`r[${k}] ${a.r[k]} vs compiled ${b.r[k]}, ${where}`);
    assert.equal(b.nzcv, a.nzcv, `NZCV, ${where}`);
    for (let k = 0; k < 128; k++) if (a.vi32[k] !== b.vi32[k]) assert.fail(`V word ${k} ${a.vi32[k]} vs compiled ${b.vi32[k]}, ${where}`);
    for (const k of [PS_EXCL_OFF, PS_EXCL_SIZE, PS_EXCL_LO, PS_EXCL_HI, PS_EXCL_PAIR, PS_EXCL_PAIR + 1]) assert.equal(b.ps[k], a.ps[k], `exclusive monitor word ${k}, ${where}`);
    if (a.exclOff !== -1) armed++;
    assert.equal(b.sys[ESR_EL1], a.sys[ESR_EL1], `ESR, ${where}`);
    assert.equal(b.sys[FAR_EL1], a.sys[FAR_EL1], `FAR, ${where}`);
    assert.equal(b.sys[ELR_EL1], a.sys[ELR_EL1], `ELR, ${where}`);
    for (let k = DATA; k < DATA + DATA_LEN; k++) if (ramA[k] !== ramB[k]) assert.fail(`data byte ${k.toString(16)}: ${ramA[k]} vs compiled ${ramB[k]}, ${where}`);
    if (a.sys[ESR_EL1] !== 0) faults++;
    if ((a.sys[ESR_EL1] >>> 26) === 0x07) fpTraps++;
    compiled++;
  }
  const simdWords = [...simdNames.values()].reduce((x, y) => x + y, 0);
  console.log(`# ${simdWords} Advanced SIMD words: ${[...simdNames].sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${v}`).join(", ")}`);
  assert.ok(simdWords >= COUNT / 2, `Advanced SIMD words drawn (${simdWords})`);
  const s = cacheB.jit!.stats;
  console.log(`# ${compiled} blocks compared, ${faults} took an exception (${fpTraps} the FP/SIMD access trap), ${armed} left the monitor armed; engine: ${JSON.stringify(s)}`);
  if (COUNT >= 2000) assert.ok(armed > 0, "some blocks left the monitor armed");
  // (ESR shows the last exception of a block; about 10 in 3,000 blocks end with the FP/SIMD trap.)
  if (COUNT >= 2000) assert.ok(fpTraps > 0, "some blocks took the FP/SIMD access trap");
  assert.ok(s.blocks >= COUNT / 2, `most blocks ran compiled (${s.blocks} installed for ${COUNT})`);
  assert.equal(s.failed, 0, "no module failed to compile");
});

/**
 * A vCPU on a fresh solo memory with `prog` at CODE, x16 → DATA, PC at CODE (with `jit` an engine too:
 * this file's XENO_JIT_HOT=1 compiles each block at its first run); `blocks()` counts the blocks the engine installed.
 */
function loadProgram(prog: number[], jit: boolean): { c: InstanceType<typeof Cpu>; dv: DataView; blocks: () => number } {
  const { memory, stateAt, tlbAt, jitAt } = soloJitMemory(RAM);
  const mmu = new Mmu(memory.buffer, BASE, undefined, RAM, tlbAt);
  const cache = new CodeCache(RAM >>> 12, jit ? new JitEngine(memory, sharedDecoder(), false, jitAt) : null);
  const c = new Cpu(mmu, cache, { buffer: memory.buffer, offset: stateAt });
  const dv = new DataView(memory.buffer);
  prog.forEach((w, k) => dv.setInt32(CODE + 4 * k, w, true));
  c.sys[VBAR_EL1] = (BASE + 0x80000) | 0;
  c.r[2 * 16] = (BASE + DATA) | 0;
  c.r[PC2] = (BASE + CODE) | 0;
  return { c, dv, blocks: () => (jit ? cache.jit!.stats.blocks : 0) };
}

test("an LDXR/STXR retry loop runs compiled and agrees with the interpreter", () => {
  // x16 → a doubleword in RAM; loop: LDXR x1, [x16]; ADD x1, x1, #1; STXR w2, x1, [x16]; CBNZ w2, loop;
  // SUBS x3, x3, #1; B.NE loop; BRK — 100 atomic increments, then a reservation broken by a plain store
  // (STR x4, [x16] between LDXR and STXR) and one cleared by CLREX must fail the store-exclusive on both sides.
  const prog = [0xc85f7e01, 0x91000421, 0xc8027e01, 0x35ffffa2, 0xf1000463, 0x54ffff61,
    0xc85f7e01, 0xf9000204, 0xc8027e01, 0xc85f7e01, 0xd503305f, 0xc8057e01, 0xd4200000].map((w) => w | 0);
  const run = (jit: boolean): { x2: number; x5: number; mem: number; n: number; blocks: number } => {
    const { c, dv, blocks } = loadProgram(prog, jit);
    dv.setUint32(DATA, 41, true);
    c.r[2 * 3] = 100; c.r[2 * 4] = 7;
    const n = c.run(607);
    return { x2: c.r[4], x5: c.r[10], mem: dv.getUint32(DATA, true), n, blocks: blocks() };
  };
  const i = run(false), j = run(true);
  assert.deepEqual({ ...j, blocks: 0 }, { ...i, blocks: 0 });
  assert.equal(i.mem, 7, "the plain store between LDXR and STXR stays (41 + 100, then overwritten; the STXR fails)");
  assert.equal(i.x2, 1, "the STXR after a plain store fails");
  assert.equal(i.x5, 1, "the STXR after CLREX fails");
  assert.ok(j.blocks > 0, "the loop was compiled");
});

test("an LDXP/STXP retry loop runs compiled and agrees with the interpreter", () => {
  // loop: LDXP x1, x2, [x16]; ADD x1, x1, #1; STXP w3, x1, x2, [x16]; CBNZ w3, loop; SUBS x5, x5, #1; B.NE loop
  // (50 increments of a 128-bit pair's low half); then a pair whose second doubleword a plain store changes
  // (LDXP; STR x4, [x16, #8]; STXP w6 …: fails), then LDXP/STXP of two W registers (succeeds); BRK.
  const prog = [0xc87f0a01, 0x91000421, 0xc8230a01, 0x35ffffa3, 0xf10004a5, 0x54ffff61,
    0xc87f0a01, 0xf9000604, 0xc8260a01, 0x887f2207, 0x88292207, 0xd4200000].map((w) => w | 0);
  const run = (jit: boolean): { x6: number; x9: number; lo: number; hi: number; x7: number; n: number; blocks: number } => {
    const { c, dv, blocks } = loadProgram(prog, jit);
    dv.setUint32(DATA, 1000, true); dv.setUint32(DATA + 8, 0xabcdef, true);
    c.r[2 * 5] = 50; c.r[2 * 4] = 7;
    const n = c.run(306);
    return { x6: c.r[12], x9: c.r[18], x7: c.r[14], lo: dv.getUint32(DATA, true), hi: dv.getUint32(DATA + 8, true), n, blocks: blocks() };
  };
  const i = run(false), j = run(true);
  assert.deepEqual({ ...j, blocks: 0 }, { ...i, blocks: 0 });
  assert.deepEqual([i.lo, i.hi, i.x6, i.x9, i.x7], [1050, 7, 1, 0, 1050], "50 increments; the STXP after a store to the second doubleword fails; the W pair's succeeds");
  assert.ok(j.blocks > 0, "the loop was compiled");
});

test("a region (a loop with a branch over part of it and flags of two kinds meeting at a label) agrees with the interpreter at every budget", () => {
  // x0 = 0; x1 = 37; l2: LDR x2, [x16], #8; TST x2, #1; B.EQ l7; ADDS x0, x0, x2; B l8; l7: SUB x0, x0, x2;
  // l8: CSINC x3, x3, x3, HI (C and Z from the ADDS or from the TST: the label's flags are known only at run time);
  // SUBS x1, x1, #1; B.NE l2; BRK. One region: the loop's back edge, the B.EQ forward, the B over l7 (the
  // region goes on after it). Every budget from 1 to 300 stops it at another point, inside or between calls.
  const prog = [0xd2800000, 0xd28004a1, 0xf8408602, 0xf240005f, 0x54000060, 0xab020000, 0x14000002, 0xcb020000,
    0x9a838463, 0xf1000421, 0x54ffff01, 0xd4200000].map((w) => w | 0);
  const run = (jit: boolean, budget: number): { regs: number[]; nzcv: number; pc: number; n: number; blocks: number } => {
    const { c, dv, blocks } = loadProgram(prog, jit);
    const next = rng(7);
    for (let k = 0; k < 40; k++) { dv.setUint32(DATA + 8 * k, next(), true); dv.setUint32(DATA + 8 * k + 4, next(), true); }
    let n = 0;
    // Twice: the first call compiles (HOT=1), the second runs the compiled region from where the first stopped.
    n += c.run(budget);
    n += c.run(budget);
    return { regs: Array.from(c.r.subarray(0, 8)).concat([c.r[32], c.r[33]]), nzcv: c.nzcv, pc: c.r[PC2], n, blocks: blocks() };
  };
  let compiled = 0;
  for (let budget = 1; budget <= 300; budget++) {
    const i = run(false, budget), j = run(true, budget);
    assert.deepEqual({ ...j, blocks: 0 }, { ...i, blocks: 0 }, `budget ${budget}`);
    if (j.blocks > 0) compiled++;
  }
  assert.ok(compiled > 250, `the loop ran compiled (${compiled} of 300 budgets)`);
});
