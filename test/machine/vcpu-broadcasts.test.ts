/**
 * TLB maintenance across vCPU threads (src/machine/vcpu-link.ts broadcasts): a TLBI ...IS must be complete on
 * every vCPU before the issuer goes on, including on a vCPU that was not running guest code when it was issued
 * (waiting for a hypercall's answer, asleep in WFI) and that missed several broadcasts meanwhile.
 *
 * A bare board with two vCPUs on two threads and the MMU on (page tables written here): VA 0x1000 maps page A or
 * page B, holding 0xA and 0xB. For g = 1..N, vCPU 0 (home thread) maps VA 0x1000 to B when g is odd and A when
 * g is even, then `tlbi vae1is` for that VA and then for another VA (0x2000), `dsb ish`, and publishes g; vCPU 1
 * (its own thread), which loaded VA 0x1000 in the previous round and so has it in its TLB, waits for g making
 * hypercalls (PSCI_VERSION) — each is a window in which its thread runs no guest code — then loads VA 0x1000
 * and counts a value that is not the one mapped for g (a stale TLB entry), and acknowledges g.
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

const N = 3000;
/** RAM offsets: the level 1, 2, 3 tables; pages A, B and the page behind VA 0x2000. */
const L1 = 0x10000, L2 = 0x11000, L3 = 0x12000, PAGE_A = 0x20000, PAGE_B = 0x21000, PAGE_Y = 0x22000;
/** Stage-1 descriptor attributes: AF (bit 10), inner shareable (SH = 11, bits 9:8), AttrIndx 0 (MAIR attr 0). */
const ATTRS = (1 << 10) | (3 << 8);
const hi = (x: number): number => x >>> 16, lo = (x: number): number => x & 0xffff;
const movImm = (reg: string, x: number): string => `movz ${reg}, #${lo(x)}\n    movk ${reg}, #${hi(x)}, lsl #16`;

const SOURCE = `
.text
_start:
    bl   mmu_on
    movz x0, #0x0003
    movk x0, #0xc400, lsl #16      // PSCI CPU_ON (SMC64)
    mov  x1, #1                    // vCPU 1
    adr  x2, entry1
    mov  x3, #0
    hvc  #0
    adr  x20, data
    ${movImm("x21", RAM_BASE + L3 + 8)}   // the level 3 entry of VA 0x1000
    ${movImm("x22", RAM_BASE + PAGE_A + ATTRS + 3)}
    ${movImm("x23", RAM_BASE + PAGE_B + ATTRS + 3)}
    mov  x24, #1                   // VA 0x1000 >> 12
    mov  x25, #2                   // VA 0x2000 >> 12
    add  x26, x20, #8              // &ack
    mov  x9, #1
1:  tst  x9, #1
    csel x7, x23, x22, ne          // odd: B, even: A
    str  x7, [x21]
    dsb  ishst
    tlbi vae1is, x24
    tlbi vae1is, x25
    dsb  ish
    stlr x9, [x20]                 // gen = g
2:  ldar x4, [x26]             // until vCPU 1 acknowledged g
    cmp  x4, x9
    b.ne 2b
    add  x9, x9, #1
    cmp  x9, #${N}
    b.le 1b
3:  wfi
    b    3b

entry1:
    bl   mmu_on
    adr  x20, data
    add  x26, x20, #8              // &ack
    mov  x24, #0x1000
    mov  x14, #0
    mov  x9, #1
4:  movz x0, #0
    movk x0, #0x8400, lsl #16      // PSCI_VERSION: a hypercall, answered by the home thread
    hvc  #0
    ldar x4, [x20]
    cmp  x4, x9
    b.ne 4b
    ldr  x12, [x24]                // through this vCPU's TLB
    tst  x9, #1
    mov  x5, #0xa
    mov  x6, #0xb
    csel x5, x6, x5, ne
    cmp  x12, x5
    b.eq 5f
    add  x14, x14, #1              // a stale translation
5:  stlr x9, [x26]             // ack = g
    add  x9, x9, #1
    cmp  x9, #${N}
    b.le 4b
    str  x14, [x20, #16]
    add  x4, x20, #24
    mov  x5, #1
    stlr x5, [x4]                  // done
6:  wfi
    b    6b

mmu_on:
    mov  x0, #0xff                 // MAIR attr 0: normal, write-back
    msr  mair_el1, x0
    ${movImm("x0", 25 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23))} // T0SZ 25, WB, inner shareable, 4K, EPD1
    movk x0, #2, lsl #32           // IPS: 40 bits
    msr  tcr_el1, x0
    ${movImm("x0", RAM_BASE + L1)}
    msr  ttbr0_el1, x0
    isb
    mrs  x0, sctlr_el1
    orr  x0, x0, #1                // M
    msr  sctlr_el1, x0
    isb
    ret
.balign 64
data: .quad 0, 0, 0, 0             // gen, ack, stale loads, done (vCPU 1)
`;

test("two vCPUs on two threads: a TLBI ...IS issued while the other vCPU ran no guest code still reaches it", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-vcpu-bc-"));
  let bin: Buffer;
  try {
    writeFileSync(join(dir, "p.s"), SOURCE);
    execFileSync("aarch64-linux-gnu-as", ["-march=armv8-a", "-o", join(dir, "p.o"), join(dir, "p.s")]);
    execFileSync("aarch64-linux-gnu-objcopy", ["-O", "binary", "-j", ".text", join(dir, "p.o"), join(dir, "p.bin")]);
    bin = readFileSync(join(dir, "p.bin"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(bin.length < L1, "the program fits below the page tables");
  const dataOff = bin.length - 32;
  const clock = new DomainClock();
  const b = new Board({ memMiB: 16, vcpus: 2, consoleOut: () => {}, clock });
  new Uint8Array(b.ram, 0, bin.length).set(bin);
  // Page tables: VA 0x4000_0000.. (level 1 entry 1) is RAM, identity-mapped by a 1 GiB block; VA 0..2 MiB goes
  // through a level 2 and a level 3 table: VA 0x1000 -> page B to start with, VA 0x2000 -> page Y.
  const dv = new DataView(b.ram);
  const desc = (off: number, pa: number, low: number): void => { dv.setUint32(off, (pa + low) >>> 0, true); dv.setUint32(off + 4, 0, true); };
  desc(L1, RAM_BASE + L2, 3);
  desc(L1 + 8, RAM_BASE, ATTRS | 1);
  desc(L2, RAM_BASE + L3, 3);
  desc(L3 + 8, RAM_BASE + PAGE_B, ATTRS | 3);
  desc(L3 + 16, RAM_BASE + PAGE_Y, ATTRS | 3);
  dv.setUint32(PAGE_A, 0xa, true);
  dv.setUint32(PAGE_B, 0xb, true);
  const v0 = b.vcpus[0]!;
  v0.cpu.r[PC2] = RAM_BASE; v0.cpu.r[PC2 + 1] = 0;
  v0.online = true;
  const doorbell = new SharedArrayBuffer(4);
  const threads = startVcpuThreads(b, clock, { doorbell, sched: null });
  assert.equal(threads.length, 1);
  const words = new Int32Array(b.ram, dataOff, 8);
  const bell = new Int32Array(doorbell);
  const t0 = Date.now();
  try {
    while (Atomics.load(words, 6) === 0) {
      if (Date.now() - t0 > 90_000) assert.fail(`not done in 90 s: gen ${words[0]}, ack ${words[2]}`);
      const seen = Atomics.load(bell, 0);
      const w = b.runSlice();
      assert.notEqual(w, -1, `the board stopped: ${b.reason}`);
      if (w > 0) Atomics.wait(bell, 0, seen, Math.min(w, 20));
    }
    const stale = words[4]!;
    process.stderr.write(`# ${N} remaps: vCPU 1 loaded through a stale translation ${stale} times; ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    assert.equal(Atomics.load(words, 2), N, "vCPU 1 acknowledged every round");
    assert.equal(stale, 0, "a TLBI ...IS did not reach the vCPU on the other thread");
  } finally {
    b.quitRemotes(true);
    await Promise.all(threads.map((t) => new Promise((r) => { t.once("exit", r); setTimeout(r, 2000); })));
  }
});
