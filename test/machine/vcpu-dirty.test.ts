/**
 * Dirty logging (a live migration's pre-copy, Board.setDirtyLog / dirtyRound) with a vCPU on a thread of its own,
 * on a bare board with a small program (assembled with aarch64-linux-gnu-as): vCPU 0 starts vCPU 1 with PSCI
 * CPU_ON, and vCPU 1, in its worker thread, waits for a command word and writes the command to data page
 * (command & 15). The log must mark the page vCPU 1 wrote and no other; after a round (the log taken, write
 * permission dropped on every thread) a second write to the same page must be marked again — vCPU 1's TLB entry,
 * filled with write permission in the round before, must not let it through unlogged.
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

const SOURCE = `
.text
_start:
    movz x0, #0x0003
    movk x0, #0xc400, lsl #16      // PSCI CPU_ON (SMC64)
    mov  x1, #1                    // vCPU 1
    adr  x2, entry1
    mov  x3, #0
    hvc  #0
1:  wfi
    b    1b
entry1:
    adr  x20, data
    add  x7, x20, #8
    mov  x5, #0
2:  ldar x4, [x20]                 // the command
    cmp  x4, x5
    b.eq 2b
    mov  x5, x4
    and  x6, x4, #15
    lsl  x6, x6, #12
    str  x4, [x20, x6]             // to data page (command & 15)
    stlr x4, [x7]                  // done: the command back
    b    2b
.balign 4096                       // data on pages of their own
data: .quad 0, 0
.balign 4096
.skip 4 * 4096
`;

test("dirty log with a vCPU on its own thread: its writes are marked, again after a round", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-vcpu-dirty-"));
  let bin: Buffer;
  try {
    writeFileSync(join(dir, "p.s"), SOURCE);
    execFileSync("aarch64-linux-gnu-as", ["-march=armv8-a", "-o", join(dir, "p.o"), join(dir, "p.s")]);
    execFileSync("aarch64-linux-gnu-objcopy", ["-O", "binary", "-j", ".text", join(dir, "p.o"), join(dir, "p.bin")]);
    bin = readFileSync(join(dir, "p.bin"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const dataOff = bin.length - 5 * 4096, dataPage = dataOff / 4096;
  assert.equal(dataOff % 4096, 0);
  const clock = new DomainClock();
  const b = new Board({ memMiB: 16, vcpus: 2, consoleOut: () => {}, clock });
  new Uint8Array(b.ram, 0, bin.length).set(bin);
  const v0 = b.vcpus[0]!;
  v0.cpu.r[PC2] = RAM_BASE; v0.cpu.r[PC2 + 1] = 0;
  v0.online = true;
  const doorbell = new SharedArrayBuffer(4);
  const threads = startVcpuThreads(b, clock, { doorbell, sched: null });
  const words = new Int32Array(b.ram, dataOff, 4);
  const bell = new Int32Array(doorbell);
  /** Runs the board until vCPU 1 has done command `cmd`. */
  const command = (cmd: number): void => {
    Atomics.store(words, 0, cmd);
    const t0 = Date.now();
    while (Atomics.load(words, 2) !== cmd) {
      if (Date.now() - t0 > 60_000) assert.fail(`vCPU 1 did not do command ${cmd} in 60 s`);
      const seen = Atomics.load(bell, 0);
      const w = b.runSlice();
      assert.notEqual(w, -1, `the board stopped: ${b.reason}`);
      if (w > 0) Atomics.wait(bell, 0, seen, Math.min(w, 5));
    }
  };
  try {
    command(3); // vCPU 1 runs on its thread, page 3's translation in its TLB with write permission
    const log = b.newDirtyLog();
    b.setDirtyLog(log);
    command(1);
    assert.equal(log[dataPage + 1], 1, "vCPU 1's write to data page 1 was not logged");
    command(19); // page 3 again: its TLB entry lost write permission when the log started
    assert.equal(log[dataPage + 3], 1, "vCPU 1's write to data page 3 (written before the log started) was not logged");
    assert.equal(log[dataPage + 2], 0, "data page 2 was never written, but is marked");
    log.fill(0);
    b.dirtyRound();
    command(17); // page 1 again: filled with write permission in the round before
    assert.equal(log[dataPage + 1], 1, "vCPU 1's second write to data page 1, after a round, was not logged");
    assert.equal(log[dataPage + 3], 0, "data page 3 was not written in this round, but is marked");
    b.setDirtyLog(null);
  } finally {
    b.quitRemotes(true);
    await Promise.all(threads.map((t) => new Promise((r) => { t.once("exit", r); setTimeout(r, 2000); })));
  }
});
