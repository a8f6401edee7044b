/**
 * WFE on vCPU threads (src/cpu/arm64/wfe.ts; remote-vcpu.ts wfeSleep, board.ts wfeWoken): a bare board with a
 * small program (assembled with aarch64-linux-gnu-as), vCPU 0 at home, vCPU 1 on its own thread.
 *  1. A lock contest: both take a test-and-set lock N times the way Linux's __cmpwait waits (`sevl; wfe;
 *     ldaxr; cbnz → wfe`), add 1 to a plain counter inside and release with STLR. The counter must be 2N: WFE
 *     that sleeps still wakes when the holder's store clears the waiter's monitor.
 *  2. WFE sleeps: vCPU 1 waits for a flag the same way while vCPU 0 counts half a second on CNTVCT, then sets
 *     the flag with a plain STR. vCPU 1's thread must run guest code for under 30 % of that half second (a WFE
 *     that ends slices in a spin, as before, runs it all), and must see the flag.
 *  3. SEV: vCPU 1, its monitor open (CLREX), waits with a bare `wfe` loop for a word that vCPU 0 sets before SEV;
 *     vCPU 0 (at home) waits for the answers with __cmpwait too.
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

const N = 20_000;
const DELAY_TICKS = 31_250_000; // 0.5 s of the 62.5 MHz counter
const hi = (x: number): number => x >>> 16, lo = (x: number): number => x & 0xffff;

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
    add  x0, x20, #56
    bl   waitnz                    // vCPU 1 runs on its thread
    bl   contest
    add  x0, x20, #16
    bl   waitnz                    // vCPU 1 is done with the contest and waits for the flag
    mrs  x9, cntvct_el0
    movz x10, #${lo(DELAY_TICKS)}
    movk x10, #${hi(DELAY_TICKS)}, lsl #16
    add  x10, x9, x10
1:  mrs  x9, cntvct_el0            // half a second, busy
    cmp  x9, x10
    b.lo 1b
    mov  x4, #1
    str  x4, [x20, #24]            // flag: a plain store clears vCPU 1's monitor
    add  x0, x20, #32
    bl   waitnz                    // ack (vCPU 0's own WFE, at home)
    mov  x4, #1
    str  x4, [x20, #40]            // sevflag
    sev
    add  x0, x20, #48
    bl   waitnz                    // sevack
8:  wfi
    b    8b

entry1:
    adr  x20, data
    mov  x4, #1
    add  x21, x20, #56
    stlr x4, [x21]                 // hello
    bl   contest
    mov  x4, #1
    add  x21, x20, #16
    stlr x4, [x21]                 // done: vCPU 1 waits for the flag next
    add  x0, x20, #24
    bl   waitnz
    mov  x4, #1
    str  x4, [x20, #32]            // ack
    clrex
3:  ldr  x4, [x20, #40]
    cbnz x4, 4f
    wfe                            // monitor open: SEV wakes it
    b    3b
4:  mov  x4, #1
    str  x4, [x20, #48]            // sevack
9:  wfi
    b    9b

contest:
    movz x5, #${lo(N)}
    movk x5, #${hi(N)}, lsl #16
1:  sevl
    wfe
2:  ldaxr w1, [x20]
    cbnz w1, 3f
    mov  w2, #1
    stxr w3, w2, [x20]
    cbnz w3, 2b
    ldr  x6, [x20, #8]
    add  x6, x6, #1
    str  x6, [x20, #8]
    stlr wzr, [x20]
    subs x5, x5, #1
    b.ne 1b
    ret
3:  wfe                            // until the holder's release clears the monitor
    b    2b

waitnz:                            // until [x0] != 0, as __cmpwait
    sevl
    wfe
1:  ldaxr x4, [x0]
    cbnz x4, 2f
    wfe
    b    1b
2:  ret
.balign 4096                       // data on a page of its own: stores to a code page drop its compiled blocks
data: .quad 0, 0, 0, 0, 0, 0, 0, 0
`;

test("WFE on vCPU threads: sleeps, and wakes on a cleared monitor and on SEV", { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-vcpu-wfe-"));
  let bin: Buffer;
  try {
    writeFileSync(join(dir, "p.s"), SOURCE);
    execFileSync("aarch64-linux-gnu-as", ["-march=armv8-a", "-o", join(dir, "p.o"), join(dir, "p.s")]);
    execFileSync("aarch64-linux-gnu-objcopy", ["-O", "binary", "-j", ".text", join(dir, "p.o"), join(dir, "p.bin")]);
    bin = readFileSync(join(dir, "p.bin"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const dataOff = bin.length - 64;
  const clock = new DomainClock();
  const b = new Board({ memMiB: 16, vcpus: 2, consoleOut: () => {}, clock });
  new Uint8Array(b.ram, 0, bin.length).set(bin);
  const v0 = b.vcpus[0]!;
  v0.cpu.r[PC2] = RAM_BASE; v0.cpu.r[PC2 + 1] = 0;
  v0.online = true;
  const doorbell = new SharedArrayBuffer(4);
  const threads = startVcpuThreads(b, clock, { doorbell, sched: null });
  assert.equal(threads.length, 1);
  const words = new Int32Array(b.ram, dataOff, 16);
  const bell = new Int32Array(doorbell);
  const t0 = Date.now();
  let waitFrom = -1, cpuFrom = 0, waitMs = -1, cpuInWait = 0;
  try {
    while (Atomics.load(words, 12) === 0) {
      if (Date.now() - t0 > 150_000) assert.fail(`not done in 150 s: counter ${words[2]}, done ${words[4]}, flag ${words[6]}, ack ${words[8]}, sevflag ${words[10]}`);
      if (waitFrom < 0 && Atomics.load(words, 4) !== 0) { waitFrom = performance.now(); cpuFrom = b.remoteCpuSeconds(); }
      if (waitFrom >= 0 && waitMs < 0 && Atomics.load(words, 6) !== 0) {
        waitMs = performance.now() - waitFrom;
        cpuInWait = (b.remoteCpuSeconds() - cpuFrom) * 1000;
      }
      const seen = Atomics.load(bell, 0);
      const w = b.runSlice();
      assert.notEqual(w, -1, `the board stopped: ${b.reason}`);
      if (w > 0) Atomics.wait(bell, 0, seen, Math.min(w, 20));
    }
    process.stderr.write(`# counter ${words[2]} (want ${2 * N}); vCPU 1 waited ${waitMs.toFixed(0)} ms for the flag and ran ` +
      `${cpuInWait.toFixed(1)} ms of guest code meanwhile; ${((Date.now() - t0) / 1000).toFixed(1)} s in all\n`);
    assert.equal(words[2], 2 * N, "increments under the lock were lost: WFE let both vCPUs in");
    assert.ok(waitMs > 200, `vCPU 1's wait for the flag was seen for ${waitMs} ms, not about 500`);
    assert.ok(cpuInWait < 0.3 * waitMs, `vCPU 1 ran ${cpuInWait.toFixed(1)} ms of its ${waitMs.toFixed(0)} ms in WFE: it spun instead of sleeping`);
  } finally {
    b.quitRemotes(true);
    await Promise.all(threads.map((t) => new Promise((r) => { t.once("exit", r); setTimeout(r, 2000); })));
  }
});
