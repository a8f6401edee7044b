/**
 * Store buffering between vCPU threads (Arm ARM B2.3, the "SB" litmus test): with a DMB between each vCPU's store
 * and its load, at least one of the two loads must see the other vCPU's store. vCPU 0 (home thread) stores 1 to
 * x, DMB ISH, loads y; vCPU 1 (its own thread) stores 1 to y, DMB ISH, loads x; both loads 0 is forbidden. An
 * x86-64 host reorders a store with a later load (its store buffer) unless fenced, so this checks that a full
 * DMB is a host fence (system.ts) — what Linux's smp_mb() between a store of a task's state and a load of a
 * wake-up condition relies on. R rounds; in each, both meet at a counter (LDXR/STXR) and spin until both
 * arrived, so the two sequences run at about the same time; vCPU 0 counts rounds where both loaded 0.
 * (On this x86-64 host the interpreter passed this test without the fence too — 0 of 200,000 rounds: its stores
 * leave the store buffer within the few instructions it takes to get to the load — so it guards faster engines,
 * whose store and load are nanoseconds apart.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Board } from "../../src/machine/board.js";
import { RAM_BASE } from "../../src/machine/layout.js";
import { PC2 } from "../../src/cpu/arm64/state.js";
import { DomainClock } from "../../src/common/domain-clock.js";
import { startVcpuThreads } from "../../src/hv/vcpu-thread.js";

const R = 100_000;
const hi = (x: number): number => x >>> 16, lo = (x: number): number => x & 0xffff;

// data: +0 arrivals, +64 x, +128 y, +192 vCPU 1's load of the round, +200 vCPU 1's round, +256 forbidden
// outcomes, +264 done. x and y on lines of their own.
const SOURCE = `
.text
_start:
    movz x0, #0x0003
    movk x0, #0xc400, lsl #16      // PSCI CPU_ON (SMC64)
    mov  x1, #1
    adr  x2, entry1
    mov  x3, #0
    hvc  #0
    adr  x20, data
    add  x21, x20, #64             // x
    add  x22, x20, #128            // y
    add  x23, x20, #192            // vCPU 1's load
    add  x24, x20, #200            // vCPU 1's round
    mov  x14, #0                   // forbidden outcomes
    mov  x9, #1
    movz x15, #${lo(R)}
    movk x15, #${hi(R)}, lsl #16
1:  bl   meet
    mov  x4, #1
    str  x4, [x21]                 // x = 1
    dmb  ish
    ldr  x5, [x22]                 // r0 = y
2:  ldar x6, [x24]                 // vCPU 1 finished the round
    cmp  x6, x9
    b.ne 2b
    ldr  x7, [x23]                 // r1
    orr  x5, x5, x7
    cbnz x5, 3f
    add  x14, x14, #1              // r0 = r1 = 0
3:  str  xzr, [x21]                // reset x and y for the next round
    str  xzr, [x22]
    add  x9, x9, #1
    cmp  x9, x15
    b.le 1b
    str  x14, [x20, #256]
    add  x4, x20, #264
    mov  x5, #1
    stlr x5, [x4]
4:  wfi
    b    4b

entry1:
    adr  x20, data
    add  x21, x20, #64
    add  x22, x20, #128
    add  x23, x20, #192
    add  x24, x20, #200
    mov  x9, #1
    movz x15, #${lo(R)}
    movk x15, #${hi(R)}, lsl #16
5:  bl   meet
    mov  x4, #1
    str  x4, [x22]                 // y = 1
    dmb  ish
    ldr  x5, [x21]                 // r1 = x
    str  x5, [x23]
    stlr x9, [x24]                 // round done
6:  ldr  x6, [x21]                 // wait until vCPU 0 reset x for the next round
    cbnz x6, 6b
    add  x9, x9, #1
    cmp  x9, x15
    b.le 5b
7:  wfi
    b    7b

// meet: arrivals += 1, then spin until arrivals = 2 * round (x9)
meet:
    ldxr x6, [x20]
    add  x6, x6, #1
    stxr w7, x6, [x20]
    cbnz w7, meet
    lsl  x8, x9, #1
8:  ldar x6, [x20]
    cmp  x6, x8
    b.lo 8b
    ret
.balign 4096                       // data on a page of its own: stores to a code page drop its compiled blocks
data: .fill 34, 8, 0
`;

test("two vCPUs on two threads: a DMB between a store and a load orders them (store-buffering litmus test)", { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-vcpu-sb-"));
  let bin: Buffer;
  try {
    writeFileSync(join(dir, "p.s"), SOURCE);
    execFileSync("aarch64-linux-gnu-as", ["-march=armv8-a", "-o", join(dir, "p.o"), join(dir, "p.s")]);
    execFileSync("aarch64-linux-gnu-objcopy", ["-O", "binary", "-j", ".text", join(dir, "p.o"), join(dir, "p.bin")]);
    bin = readFileSync(join(dir, "p.bin"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const dataOff = bin.length - 34 * 8;
  const clock = new DomainClock();
  const b = new Board({ memMiB: 16, vcpus: 2, consoleOut: () => {}, clock });
  new Uint8Array(b.ram, 0, bin.length).set(bin);
  const v0 = b.vcpus[0]!;
  v0.cpu.r[PC2] = RAM_BASE; v0.cpu.r[PC2 + 1] = 0;
  v0.online = true;
  const doorbell = new SharedArrayBuffer(4);
  const threads = startVcpuThreads(b, clock, { doorbell, sched: null });
  const words = new Int32Array(b.ram, dataOff, 34 * 2);
  const bell = new Int32Array(doorbell);
  const t0 = Date.now();
  try {
    while (Atomics.load(words, 66) === 0) {
      if (Date.now() - t0 > 240_000) assert.fail(`not done in 240 s: round ${words[50]}`);
      const seen = Atomics.load(bell, 0);
      const w = b.runSlice();
      assert.notEqual(w, -1, `the board stopped: ${b.reason}`);
      if (w > 0) Atomics.wait(bell, 0, seen, Math.min(w, 20));
    }
    const forbidden = words[64]!;
    process.stderr.write(`# ${R} rounds: both loads 0 (forbidden with the DMBs) ${forbidden} times; ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    assert.equal(forbidden, 0, "a load passed the store before its DMB");
    // Hot code runs compiled on both threads (each its own engine), unless XENO_JIT=0 turns the compiler off.
    if (process.env.XENO_JIT !== "0") {
      assert.ok((b.jitStats()?.blocks ?? 0) > 0, "the home thread compiled no block");
      assert.ok(b.remoteJitBlocks() > 0, "vCPU 1's thread compiled no block");
    }
  } finally {
    b.quitRemotes(true);
    await Promise.all(threads.map((t) => new Promise((r) => { t.once("exit", r); setTimeout(r, 2000); })));
  }
});
