/**
 * Save/restore of the back-ends' host-side state. The console back-end: input queued beyond the `in` ring
 * survives, the guest then reads the same bytes and output flows as before; bad states are refused and change
 * nothing. (blkback: see blk-persist.test.ts.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConsoleBack } from "../../src/backends/console/index.js";
import type { ConsoleBackState } from "../../src/backends/console/index.js";
import { ByteRing } from "../../src/xen/byte-ring.js";
import { XENCONS_IN, XENCONS_IN_CONS, XENCONS_IN_PROD, XENCONS_IN_SIZE, XENCONS_OUT, XENCONS_OUT_CONS, XENCONS_OUT_PROD,
  XENCONS_OUT_SIZE } from "../../src/xen/console-ring.js";
import { StateError } from "../../src/common/state.js";

const PAGE = 4096;

function consoleOn(buf: SharedArrayBuffer) {
  const u8 = new Uint8Array(buf), i32 = new Int32Array(buf);
  const out: number[] = [];
  let notifies = 0;
  const back = new ConsoleBack({ u8, i32, pageOffset: PAGE, notify: () => { notifies++; }, output: (b) => out.push(...b),
    log: () => {}, maxInputBytes: 4096 });
  // The guest's side (hvc_xen): it consumes `in` and produces `out`.
  const gin = new ByteRing(u8, i32, PAGE + XENCONS_IN, XENCONS_IN_SIZE, PAGE + XENCONS_IN_CONS, PAGE + XENCONS_IN_PROD);
  const gout = new ByteRing(u8, i32, PAGE + XENCONS_OUT, XENCONS_OUT_SIZE, PAGE + XENCONS_OUT_CONS, PAGE + XENCONS_OUT_PROD);
  return { back, out, gin, gout, notifies: () => notifies };
}

function refuses(f: () => void, field: string): void {
  assert.throws(f, (e: unknown) => e instanceof StateError && e.code === "STATE_INVALID" && e.field.includes(field),
    `should refuse a bad ${field}`);
}

test("console back-end: queued input and counters survive save/restore", () => {
  const buf = new SharedArrayBuffer(3 * PAGE);
  const a = consoleOn(buf);
  a.gout.write(new TextEncoder().encode("hello from the guest\n"));
  a.back.kick();
  const input = new Uint8Array(3000).map((_, i) => i & 0xff);
  a.back.input(input);
  assert.equal(a.back.pendingInput, 3000 - XENCONS_IN_SIZE);
  const st = a.back.save();
  assert.equal(st.input.length, 3000 - XENCONS_IN_SIZE);
  for (const state of [st, structuredClone(st)]) {
    const copy = new SharedArrayBuffer(3 * PAGE);
    new Uint8Array(copy).set(new Uint8Array(buf));
    const b = consoleOn(copy);
    b.back.restore(state);
    assert.deepEqual(b.back.save(), st);
    assert.equal(b.back.active, true);
    // The guest reads everything, notifying after each read (hvc_xen does): all 3000 bytes, in order.
    const got: number[] = [];
    const tmp = new Uint8Array(XENCONS_IN_SIZE);
    for (let k = 0; k < 4; k++) { const n = b.gin.read(tmp); got.push(...tmp.subarray(0, n)); b.back.kick(); }
    assert.deepEqual(got, [...input]);
    assert.equal(b.back.pendingInput, 0);
    b.gout.write(new TextEncoder().encode("more"));
    b.back.kick();
    assert.equal(Buffer.from(b.out).toString(), "more");
    assert.equal(b.back.stats.outBytes, 25);
    assert.equal(b.back.stats.inBytes, 3000);
  }
});

test("console back-end: bad states are refused and change nothing", () => {
  const a = consoleOn(new SharedArrayBuffer(3 * PAGE));
  a.back.input(new Uint8Array(2000));
  const st = a.back.save();
  const b = consoleOn(new SharedArrayBuffer(3 * PAGE));
  b.back.input(new Uint8Array(1500).fill(7));
  const before = b.back.save();
  const m = (f: (x: Record<string, any>) => void): ConsoleBackState => { // any: tests poke at fields freely
    const c = structuredClone(st) as unknown as Record<string, any>;
    f(c);
    return c as unknown as ConsoleBackState;
  };
  const bad: [ConsoleBackState, string][] = [
    [m((x) => { x.version = 2; }), "version"],
    [m((x) => { x.active = 1; }), "active"],
    [m((x) => { x.inBad = "no"; }), "inBad"],
    [m((x) => { x.input = new Uint8Array(5000); }), "input"],
    [m((x) => { x.input = [1, 2, 3]; }), "input"],
    [m((x) => { x.stats.outBytes = -3; }), "stats.outBytes"],
    [m((x) => { x.stats = null; }), "stats"],
  ];
  for (const [s, field] of bad) {
    refuses(() => b.back.restore(s), field);
    assert.deepEqual(b.back.save(), before);
  }
});
