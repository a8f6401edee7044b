/**
 * The board's wake-ups (src/machine/board.ts runSlice) on a fake domain clock: a vCPU waiting in WFI is woken
 * by its generic timer and by the PL031's match (alarm) interrupt, and the sleep runSlice reports ends at the
 * next of them. A two-instruction guest (`wfi; b .-4`) with the GIC programmed as Linux's irq-gic.c does.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { DomainClock, COUNTER_HZ } from "../../src/common/domain-clock.js";
import { Board } from "../../src/machine/board.js";
import { RTC_INTID } from "../../src/machine/layout.js";
import { RTCDR, RTCIMSC, RTCMR, RTCRIS, RTC_INT } from "../../src/devices/pl031/pl031.js";
import { GICC_CTLR, GICC_PMR, GICD_CTLR, GICD_IPRIORITYR, GICD_ISENABLER, GICD_ITARGETSR } from "../../src/devices/gic/gicv2-regs.js";
import { PC2 } from "../../src/cpu/arm64/state.js";
import { CNTV_CTL_EL0, CNTV_CVAL_EL0 } from "../../src/cpu/arm64/sysregs.js";

const WFI = 0xd503207f, B_BACK = 0x17ffffff; // wfi; b .-4
const WALL0 = 1_700_000_000_250; // a quarter second past a whole second

function setup() {
  let t = 1000;
  const clock = new DomainClock(() => t, () => WALL0);
  const board = new Board({ memMiB: 16, vcpus: 1, consoleOut: () => {}, clock });
  const ram = new Uint32Array(board.ram);
  ram[0] = WFI; ram[1] = B_BACK;
  const v = board.vcpus[0]!;
  v.cpu.r[PC2] = 0x40000000; v.cpu.r[PC2 + 1] = 0;
  v.online = true;
  // irq-gic.c bring-up for SPI RTC_INTID and PPI 27 on CPU 0.
  const d = board.gic.distributor(0), c = board.gic.cpuInterface(0);
  d.write(GICD_ITARGETSR + RTC_INTID, 1, 1, 0);
  d.write(GICD_IPRIORITYR + RTC_INTID, 1, 0xa0, 0);
  d.write(GICD_IPRIORITYR + 27, 1, 0xa0, 0);
  d.write(GICD_ISENABLER + 4 * (RTC_INTID >> 5), 4, 1 << (RTC_INTID & 31), 0);
  d.write(GICD_ISENABLER, 4, 1 << 27, 0);
  d.write(GICD_CTLR, 4, 1, 0);
  c.write(GICC_PMR, 4, 0xf0, 0);
  c.write(GICC_CTLR, 4, 1, 0);
  return { board, v, advance: (ms: number) => { t += ms; } };
}

test("a vCPU in WFI sleeps, then wakes when its virtual timer fires", () => {
  const { board, v, advance } = setup();
  // CNTV_CVAL = now + 5 ms, enabled.
  const cval = board.clock.now() + 5 * (COUNTER_HZ / 1000);
  v.cpu.sys[CNTV_CVAL_EL0] = cval; v.cpu.sys[CNTV_CVAL_EL0 + 1] = 0; v.cpu.sys[CNTV_CTL_EL0] = 1;
  const w = board.runSlice();
  assert.equal(v.waiting !== 0, true, "in WFI");
  assert.ok(Math.abs(w - 5) < 1e-9, `sleep ${w} ms`);
  advance(5);
  board.runSlice();
  assert.equal(v.cpu.irqLine, 1, "timer interrupt pending");
});

test("a vCPU in WFI wakes for the RTC's match interrupt, and the sleep ends at the match", () => {
  const { board, v, advance } = setup();
  const r = (off: number) => board.rtc.read(off, 4) >>> 0;
  const dr = r(RTCDR);
  assert.equal(dr, Math.floor(WALL0 / 1000));
  board.rtc.write(RTCMR, 4, dr + 2); // alarm in 2 s (counting from a quarter second past dr: 1.75 s)
  board.rtc.write(RTCIMSC, 4, RTC_INT);
  const w = board.runSlice();
  assert.notEqual(v.waiting, 0, "in WFI");
  // No timer is armed: the RTC's match is the only deadline (runSlice caps a sleep at 1 s).
  assert.equal(w, 1000);
  advance(1000);
  const w2 = board.runSlice();
  assert.ok(Math.abs(w2 - 750) < 1e-6, `sleep ${w2} ms until the match`);
  advance(750);
  board.runSlice();
  assert.equal(v.cpu.irqLine, 1, "RTC interrupt pending at the CPU without any RTC register access");
  assert.equal(r(RTCRIS), RTC_INT);
});
