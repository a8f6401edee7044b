/**
 * vCPUs on threads of their own (src/machine/remote-vcpu.ts, src/hv/vcpu-thread.ts), on a bare board with a
 * small program (assembled with aarch64-linux-gnu-as): vCPU 0 starts vCPU 1 with PSCI CPU_ON (a hypercall vCPU 0
 * makes at home; vCPU 1 then runs in a worker thread), they meet on a flag (STLR / LDAR across threads), vCPU 0
 * stores two 64-bit patterns in turn until vCPU 1 has loaded the doubleword K times, counting values that are
 * neither (a torn doubleword: Arm makes aligned 64-bit accesses single-copy atomic), then both add 1 to a shared
 * counter N times with LDXR/STXR. The counter must be exactly 2N (no lost update between threads) and no torn value seen.
 * (On this x86-64 host the torn check also passed with doublewords moved as two 32-bit halves — a cache line moves
 * between cores whole — so that part guards hosts and JITs where it does not.)
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

const N = 300_000, K = 300_000;
const hi = (x: number): number => x >>> 16, lo = (x: number): number => x & 0xffff;

const SOURCE = `
.text
_start:
    movz x0, #0x0003
    movk x0, #0xc400, lsl #16      // PSCI CPU_ON (SMC64)
    mov  x1, #1                    // vCPU 1
    adr  x2, entry1
    mov  x3, #0
    hvc  #0
    adr  x20, data
    add  x22, x20, #24
1:  ldar x4, [x22]                 // vCPU 1 says hello from its thread
    cbz  x4, 1b
    orr  x10, xzr, #0x1111111111111111
    orr  x11, xzr, #0x2222222222222222
2:  str  x10, [x20, #16]            // until the reader is done
    str  x11, [x20, #16]
    ldr  x6, [x20, #40]
    cbz  x6, 2b
    b    count
entry1:
    adr  x20, data
    mov  x4, #1
    add  x22, x20, #24
    stlr x4, [x22]
    orr  x10, xzr, #0x1111111111111111
    orr  x11, xzr, #0x2222222222222222
    mov  x14, #0
    movz x5, #${lo(K)}
    movk x5, #${hi(K)}, lsl #16
3:  ldr  x12, [x20, #16]
    cmp  x12, x10
    b.eq 4f
    cmp  x12, x11
    b.eq 4f
    cbz  x12, 4f
    add  x14, x14, #1              // neither pattern: torn
4:  subs x5, x5, #1
    b.ne 3b
    str  x14, [x20, #32]
    mov  x4, #1
    str  x4, [x20, #40]            // reader done
count:
    movz x5, #${lo(N)}
    movk x5, #${hi(N)}, lsl #16
5:  ldxr x7, [x20]
    add  x7, x7, #1
    stxr w8, x7, [x20]
    cbnz w8, 5b
    subs x5, x5, #1
    b.ne 5b
    add  x21, x20, #8
6:  ldxr x7, [x21]                 // done += 1
    add  x7, x7, #1
    stxr w8, x7, [x21]
    cbnz w8, 6b
7:  wfi
    b    7b
.balign 4096                       // data on a page of its own: stores to a code page drop its compiled blocks
data: .quad 0, 0, 0, 0, 0, 0
`;

test("two vCPUs on two threads: CPU_ON, a rendezvous, no torn doubleword, no lost exclusive update", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-vcpu-threads-"));
  let bin: Buffer;
  try {
    writeFileSync(join(dir, "p.s"), SOURCE);
    execFileSync("aarch64-linux-gnu-as", ["-march=armv8-a", "-o", join(dir, "p.o"), join(dir, "p.s")]);
    execFileSync("aarch64-linux-gnu-objcopy", ["-O", "binary", "-j", ".text", join(dir, "p.o"), join(dir, "p.bin")]);
    bin = readFileSync(join(dir, "p.bin"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const dataOff = bin.length - 48;
  const clock = new DomainClock();
  const b = new Board({ memMiB: 16, vcpus: 2, consoleOut: () => {}, clock });
  new Uint8Array(b.ram, 0, bin.length).set(bin);
  const v0 = b.vcpus[0]!;
  v0.cpu.r[PC2] = RAM_BASE; v0.cpu.r[PC2 + 1] = 0;
  v0.online = true;
  const doorbell = new SharedArrayBuffer(4);
  const threads = startVcpuThreads(b, clock, { doorbell, sched: null });
  assert.equal(threads.length, 1);
  const words = new Int32Array(b.ram, dataOff, 12);
  const bell = new Int32Array(doorbell);
  const t0 = Date.now();
  try {
    while (Atomics.load(words, 2) < 2) {
      if (Date.now() - t0 > 90_000) assert.fail(`not done in 90 s: counter ${words[0]}, done ${words[2]}, hello ${words[6]}`);
      const seen = Atomics.load(bell, 0);
      const w = b.runSlice();
      assert.notEqual(w, -1, `the board stopped: ${b.reason}`);
      if (w > 0) Atomics.wait(bell, 0, seen, Math.min(w, 20));
    }
    const counter = words[0]! + words[1]! * 2 ** 32, torn = words[8]!;
    process.stderr.write(`# counter ${counter} (want ${2 * N}), torn doublewords seen ${torn} of ${K} loads, ` +
      `vCPU 1's thread ran ${(b.remoteCpuSeconds() * 1000).toFixed(0)} ms, ${((Date.now() - t0) / 1000).toFixed(1)} s in all\n`);
    assert.equal(torn, 0, "vCPU 1 saw a doubleword vCPU 0 never stored");
    assert.equal(counter, 2 * N, "LDXR/STXR increments were lost between the threads");
    assert.ok(b.remoteCpuSeconds() > 0, "vCPU 1 ran in its own thread");
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
