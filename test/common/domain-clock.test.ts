/**
 * DomainClock (src/common/domain-clock.ts): a domain's counter and wall clock from the host clock plus an
 * offset; save/restore continuity; refusal of bad state; the board's vCPUs and RTC on the one clock.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { COUNTER_HZ, DomainClock, type DomainClockState } from "../../src/common/domain-clock.js";
import { StateError } from "../../src/common/state.js";
import { hostNowMs } from "../../src/common/host-clock.js";
import { Board } from "../../src/machine/board.js";
import { RTCDR } from "../../src/devices/pl031/pl031.js";

const TICKS_PER_MS = COUNTER_HZ / 1000;
const WALL0 = 1_700_000_000_000; // ms since the epoch: 2023-11-14

/** A DomainClock on a fake host clock (ms) that the test advances. */
function fake(startMs = 123_456.789) {
  let t = startMs;
  const clock = new DomainClock(() => t, () => WALL0);
  return { clock, advance: (ms: number) => { t += ms; } };
}

test("counts from 0 at creation at 62.5 MHz; the wall clock advances with it", () => {
  const { clock, advance } = fake();
  assert.equal(clock.now(), 0);
  assert.equal(clock.wallMs(), WALL0);
  advance(1000);
  assert.equal(clock.now(), COUNTER_HZ);
  assert.equal(clock.wallMs(), WALL0 + 1000);
  advance(0.000016); // one 16 ns tick
  assert.equal(clock.now(), COUNTER_HZ + 1);
});

test("keeps running while nothing runs (a paused domain's counter is real time, as on Xen)", () => {
  const { clock, advance } = fake();
  advance(250);
  assert.equal(clock.now(), 250 * TICKS_PER_MS);
});

test("save/restore: the counter continues from the saved value, with no jump for the time spent saved", () => {
  const a = fake(5_000);
  a.advance(42_000); // the guest ran 42 s
  const saved = a.clock.save();
  assert.deepEqual(saved, { version: 1, counter: 42_000 * TICKS_PER_MS, wallMs: WALL0 + 42_000 });
  const copy = structuredClone(saved); // plain data: crosses postMessage and files unchanged
  assert.deepEqual(copy, saved);

  // Restored an hour later, in another thread or process whose clock reads something else entirely.
  const b = fake(9_999_999.5);
  b.advance(3_600_000);
  b.clock.restore(copy);
  assert.equal(b.clock.now(), saved.counter);
  assert.equal(b.clock.wallMs(), saved.wallMs);
  b.advance(10);
  assert.equal(b.clock.now(), saved.counter + 10 * TICKS_PER_MS);
  assert.equal(b.clock.wallMs(), saved.wallMs + 10);

  // Restoring into the same clock after time passed: back to the saved value, then on.
  a.advance(777);
  a.clock.restore(saved);
  assert.equal(a.clock.now(), saved.counter);
});

test("on the real host clock: never backwards across save and restore", () => {
  const a = new DomainClock();
  const before = a.now();
  const s = a.save();
  assert.ok(s.counter >= before);
  const b = new DomainClock();
  b.restore(s);
  let prev = s.counter;
  for (let i = 0; i < 100_000; i++) {
    const v = b.now();
    assert.ok(v >= prev, `${v} < ${prev}`);
    prev = v;
  }
  // Continuity: the restored counter is within a few ms of the saved one (no jump).
  assert.ok(b.now() - s.counter < 1000 * TICKS_PER_MS);
  assert.ok(Number.isInteger(b.now()));
  assert.ok(hostNowMs() > 0);
});

test("bad state is refused with StateError and leaves the clock unchanged", () => {
  const { clock, advance } = fake();
  advance(1234);
  const good: DomainClockState = clock.save();
  const bad: [unknown, string][] = [
    [null, "(root)"],
    ["x", "(root)"],
    [{ ...good, version: 2 }, "version"],
    [{ counter: good.counter, wallMs: good.wallMs }, "version"],
    [{ ...good, counter: -1 }, "counter"],
    [{ ...good, counter: 1.5 }, "counter"],
    [{ ...good, counter: "5" }, "counter"],
    [{ ...good, counter: 2 ** 53 }, "counter"],
    [{ ...good, counter: undefined }, "counter"],
    [{ ...good, wallMs: -5 }, "wallMs"],
    [{ ...good, wallMs: NaN }, "wallMs"],
    [{ ...good, wallMs: 1e300 }, "wallMs"],
  ];
  for (const [s, field] of bad) {
    const now = clock.now(), wall = clock.wallMs();
    assert.throws(() => clock.restore(s), (e: unknown) => e instanceof StateError && e.code === "STATE_INVALID" &&
      e.component === "clock" && e.field === field, JSON.stringify(s));
    assert.equal(clock.now(), now);
    assert.equal(clock.wallMs(), wall);
  }
  advance(1);
  assert.equal(clock.now(), 1235 * TICKS_PER_MS);
});

test("the board's vCPUs and its RTC read the one clock it is given", () => {
  const { clock, advance } = fake();
  const board = new Board({ memMiB: 16, vcpus: 2, consoleOut: () => {}, clock });
  assert.equal(board.clock, clock);
  advance(3000);
  for (const v of board.vcpus) assert.equal(v.cpu.counter(), 3000 * TICKS_PER_MS);
  assert.equal(board.rtc.read(RTCDR, 4) >>> 0, WALL0 / 1000 + 3);
  // Restoring the clock moves every reader at once.
  clock.restore({ version: 1, counter: 10 * COUNTER_HZ, wallMs: WALL0 + 500_000 });
  for (const v of board.vcpus) assert.equal(v.cpu.counter(), 10 * COUNTER_HZ);
  assert.equal(board.rtc.read(RTCDR, 4) >>> 0, WALL0 / 1000 + 500);
});

test("a board without a clock gets its own DomainClock, counting from ~0", () => {
  const board = new Board({ memMiB: 16, vcpus: 1, consoleOut: () => {} });
  const c = board.vcpus[0]!.cpu.counter();
  assert.ok(c >= 0 && c < 10 * COUNTER_HZ, String(c));
  assert.ok(Math.abs(board.clock.wallMs() - Date.now()) < 1000);
});
