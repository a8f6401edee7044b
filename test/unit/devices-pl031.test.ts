/** PL031 RTC tests (ARM DDI 0224C): IDs, counting from the clock hook, load, match interrupt. */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  Pl031, RTCCR, RTCDR, RTCICR, RTCIMSC, RTCLR, RTCMIS, RTCMR, RTCRIS, pl031DtNode,
} from "../../src/devices/pl031/pl031.js";
import { LatchedIrq } from "../../src/devices/mmio.js";

function setup(start = 1_700_000_000.25) {
  let now = start;
  const irq = new LatchedIrq();
  const rtc = new Pl031(irq, () => now);
  const r = (off: number) => rtc.read(off, 4) >>> 0;
  const w = (off: number, v: number) => rtc.write(off, 4, v);
  return { rtc, irq, r, w, advance: (s: number) => { now += s; } };
}

test("IDs and DT node", () => {
  const { r } = setup();
  const id = (base: number) => [0, 4, 8, 12].reduce((v, k, i) => v | ((r(base + k) & 0xff) << (8 * i)), 0) >>> 0;
  assert.equal(id(0xfe0), 0x00041031);
  assert.equal(id(0xff0), 0xb105f00d);
  assert.equal(r(RTCCR), 1);
  const n = pl031DtNode(0x09010000, 34, 0x8000);
  assert.deepEqual(n.props.compatible, ["arm,pl031", "arm,primecell"]);
  assert.deepEqual(n.props.interrupts, [0, 2, 4]);
});

test("counts seconds from the clock hook; LR loads the counter", () => {
  const { r, w, advance } = setup();
  assert.equal(r(RTCDR), 1_700_000_000);
  advance(0.7);
  assert.equal(r(RTCDR), 1_700_000_000);
  advance(0.1);
  assert.equal(r(RTCDR), 1_700_000_001);
  advance(59);
  assert.equal(r(RTCDR), 1_700_000_060);
  w(RTCLR, 1000);
  assert.equal(r(RTCDR), 1000);
  assert.equal(r(RTCLR), 1000);
  advance(3);
  assert.equal(r(RTCDR), 1003);
  w(RTCLR, 0xffffffff);
  advance(1);
  assert.equal(r(RTCDR), 0, "wraps at 2^32");
});

test("match interrupt: set when the counter reaches MR, masked by IMSC, cleared by ICR", () => {
  const { rtc, irq, r, w, advance } = setup(100);
  w(RTCLR, 100);
  w(RTCMR, 105);
  assert.equal(rtc.secondsUntilMatch(), -1, "masked");
  w(RTCIMSC, 1);
  assert.equal(rtc.secondsUntilMatch(), 5);
  advance(4);
  rtc.poll();
  assert.equal(r(RTCRIS), 0);
  advance(3); // passes 105 without an access exactly at 105
  rtc.poll();
  assert.equal(irq.level, true);
  assert.equal(r(RTCMIS), 1);
  w(RTCICR, 1);
  assert.equal(irq.level, false);
  assert.equal(r(RTCRIS), 0);
  // Loading the counter past MR is not a match.
  w(RTCMR, 200);
  w(RTCLR, 300);
  advance(1);
  assert.equal(r(RTCRIS), 0);
  // MR written equal to the counter matches at once.
  w(RTCMR, r(RTCDR));
  assert.equal(irq.level, true);
  w(RTCIMSC, 0);
  assert.equal(irq.level, false);
  assert.equal(r(RTCRIS), 1);
});
