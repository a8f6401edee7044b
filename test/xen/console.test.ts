/**
 * Unit tests of the PV console back-end (src/backends/console) on a crafted xencons_interface page, the test
 * playing hvc_xen: output drained to the sink across the ring's wrap, input fed as the guest consumes, the
 * input routing latch, and hostile indexes (resync or hold, never an access outside the page).
 * The end-to-end check (Linux's hvc0 as the console, a shell command over it) boots the real kernel in
 * xenbus.test.ts, together with the XenStore checks, to keep boots few.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConsoleBack } from "../../src/backends/console/index.js";
import { ByteRing } from "../../src/xen/byte-ring.js";
import { consoleRoles } from "../../src/hv/xen-pv.js";
import { XENCONS_IN, XENCONS_IN_CONS, XENCONS_IN_PROD, XENCONS_IN_SIZE, XENCONS_OUT, XENCONS_OUT_CONS, XENCONS_OUT_PROD,
  XENCONS_OUT_SIZE, XENCONS_CONNECTION, XENCONSOLE_CONNECTED, XENCONSOLE_DISCONNECTED } from "../../src/xen/console-ring.js";

const PAGE = 4096, CONS_PAGE = PAGE, SENTINEL = 0x5a;

function setup(maxInputBytes?: number) {
  const buf = new SharedArrayBuffer(3 * PAGE);
  const u8 = new Uint8Array(buf), i32 = new Int32Array(buf), dv = new DataView(buf);
  u8.fill(SENTINEL, 0, PAGE);
  u8.fill(SENTINEL, 2 * PAGE);
  u8[CONS_PAGE + XENCONS_CONNECTION] = XENCONSOLE_DISCONNECTED; // as the toolstack leaves it
  let out = "";
  const t = { notifies: 0, logs: [] as string[] };
  const back = new ConsoleBack({ u8, i32, pageOffset: CONS_PAGE, notify: () => { t.notifies++; }, log: (l) => t.logs.push(l),
    output: (b) => { out += Buffer.from(b).toString("latin1"); }, maxInputBytes });
  // The guest's side: it produces `out` and consumes `in`.
  const gOut = new ByteRing(u8, i32, CONS_PAGE + XENCONS_OUT, XENCONS_OUT_SIZE, CONS_PAGE + XENCONS_OUT_CONS, CONS_PAGE + XENCONS_OUT_PROD);
  const gIn = new ByteRing(u8, i32, CONS_PAGE + XENCONS_IN, XENCONS_IN_SIZE, CONS_PAGE + XENCONS_IN_CONS, CONS_PAGE + XENCONS_IN_PROD);
  const read = (): string => { const b = new Uint8Array(XENCONS_IN_SIZE); const n = gIn.read(b); return Buffer.from(b.subarray(0, n)).toString("latin1"); };
  const intact = (): boolean => {
    for (let i = 0; i < PAGE; i++) if (u8[i] !== SENTINEL || u8[2 * PAGE + i] !== SENTINEL) return false;
    return true;
  };
  return { back, u8, dv, t, gOut, gIn, read, intact, out: () => out };
}

test("output: drained on notify and on poll, across the ring's wrap; connection set", () => {
  const c = setup();
  assert.equal(c.u8[CONS_PAGE + XENCONS_CONNECTION], XENCONSOLE_CONNECTED);
  assert.equal(c.back.active, false);
  c.dv.setUint32(CONS_PAGE + XENCONS_OUT_CONS, 0xfffffffc, true); // free-running indexes about to wrap
  c.dv.setUint32(CONS_PAGE + XENCONS_OUT_PROD, 0xfffffffc, true);
  let text = "";
  for (let i = 0; i < 100; i++) {
    const line = `line ${i} ${"z".repeat(i % 37)}\n`;
    text += line;
    assert.equal(c.gOut.write(Buffer.from(line)), line.length);
    if (i % 2 === 0) c.back.kick(); else c.back.poll();
  }
  assert.equal(c.out(), text);
  assert.equal(c.back.active, true);
  assert.ok(c.t.notifies > 0, "the guest hears that its output was consumed");
  assert.equal(c.back.stats.outBytes, text.length);
  // A full ring (the guest then yields) drains in one go.
  const big = "q".repeat(XENCONS_OUT_SIZE);
  assert.equal(c.gOut.write(Buffer.from(big)), XENCONS_OUT_SIZE);
  c.back.poll();
  assert.ok(c.out().endsWith(big));
  assert.ok(c.intact());
});

test("input: fed up to the ring's space, the rest after the guest consumes; capped", () => {
  const c = setup(4000);
  const notes0 = c.t.notifies;
  c.back.input(Buffer.from("ls\n"));
  assert.ok(c.t.notifies > notes0);
  assert.equal(c.read(), "ls\n");
  const long = Buffer.alloc(3000, 0x41);
  c.back.input(long);
  assert.equal(c.gIn.fill(), XENCONS_IN_SIZE);
  assert.equal(c.back.pendingInput, 3000 - XENCONS_IN_SIZE);
  let got = c.read();
  c.back.kick(); // hvc_xen notifies after reading
  got += c.read();
  c.back.kick();
  got += c.read();
  assert.equal(got, "A".repeat(3000));
  // Beyond the cap input is dropped, counted.
  c.back.input(Buffer.alloc(1024, 0x42)); // fills the ring
  c.back.input(Buffer.alloc(5000, 0x43));
  assert.equal(c.back.pendingInput, 4000);
  assert.equal(c.back.stats.droppedInput, 1000);
  assert.ok(c.intact());
});

test("hostile indexes: output resynchronised, input held, nothing outside the page", () => {
  const c = setup();
  c.dv.setUint32(CONS_PAGE + XENCONS_OUT_PROD, 0x40000000, true); // prod - cons far beyond 2048
  assert.doesNotThrow(() => c.back.kick());
  assert.equal(c.back.stats.badOutIndexes, 1);
  assert.equal(c.out(), "", "garbage is not passed on");
  assert.equal(c.dv.getUint32(CONS_PAGE + XENCONS_OUT_CONS, true), 0x40000000, "cons := prod");
  c.gOut.write(Buffer.from("ok again\n"));
  c.back.kick();
  assert.equal(c.out(), "ok again\n");

  c.dv.setUint32(CONS_PAGE + XENCONS_IN_CONS, 0x12345678, true);
  c.back.input(Buffer.from("held"));
  assert.equal(c.back.stats.badInIndexes, 1);
  assert.equal(c.back.pendingInput, 4);
  assert.equal(c.dv.getUint32(CONS_PAGE + XENCONS_IN_PROD, true), 0, "nothing written while corrupt");
  c.dv.setUint32(CONS_PAGE + XENCONS_IN_CONS, 0, true); // the guest repairs its index
  c.back.kick();
  assert.equal(c.read(), "held");

  let seed = 99;
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed; };
  for (let i = 0; i < 5000; i++) {
    const off = [XENCONS_IN_CONS, XENCONS_IN_PROD, XENCONS_OUT_CONS, XENCONS_OUT_PROD][rnd() % 4]!;
    c.dv.setUint32(CONS_PAGE + off, rnd() % 3 === 0 ? rnd() : (c.dv.getUint32(CONS_PAGE + off, true) + rnd() % 3000) >>> 0, true);
    assert.doesNotThrow(() => { if (i % 3 === 0) c.back.input(Buffer.from("x")); else c.back.kick(); });
  }
  assert.ok(c.intact());
});

test("console roles from the command line: which console the Machine shows and feeds", () => {
  assert.deepEqual(consoleRoles(""), { hvcOutput: true, hvcInput: true });
  assert.deepEqual(consoleRoles("console=hvc0"), { hvcOutput: true, hvcInput: true });
  assert.deepEqual(consoleRoles("console=ttyAMA0"), { hvcOutput: false, hvcInput: false });
  assert.deepEqual(consoleRoles("console=hvc0 console=ttyAMA0"), { hvcOutput: true, hvcInput: false });
  assert.deepEqual(consoleRoles("console=ttyAMA0,115200 quiet console=hvc0"), { hvcOutput: true, hvcInput: true });
  assert.deepEqual(consoleRoles("quiet -- console=ttyAMA0"), { hvcOutput: true, hvcInput: true });
});
