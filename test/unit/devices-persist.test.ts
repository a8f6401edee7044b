/**
 * Save/restore of the board devices (GICv2, PL011, PL031): each is driven into a non-trivial state through its
 * MMIO registers and input lines, saved, restored into a fresh instance (directly and through structuredClone),
 * and must then read the same, drive the same outputs and behave the same afterwards; save(restore(save(x)))
 * equals save(x). Bad states (version, shape, out-of-range values, wrong lengths) are refused with StateError
 * and leave the target as it was.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Gicv2 } from "../../src/devices/gic/gicv2.js";
import type { Gicv2State } from "../../src/devices/gic/gicv2-state.js";
import {
  GICC_ABPR, GICC_AHPPIR, GICC_APR0, GICC_BPR, GICC_CTLR, GICC_EOIR, GICC_HPPIR, GICC_IAR, GICC_PMR, GICC_RPR,
  GICD_CTLR, GICD_ICFGR, GICD_IGROUPR, GICD_IPRIORITYR, GICD_ISACTIVER, GICD_ISENABLER, GICD_ISPENDR,
  GICD_ITARGETSR, GICD_SGIR,
} from "../../src/devices/gic/gicv2-regs.js";
import { INT_RT, INT_RX, LCRH_FEN, Pl011, UARTCR, UARTDR, UARTFR, UARTIBRD, UARTIFLS, UARTIMSC, UARTLCR_H,
  UARTMIS, UARTRIS, type Pl011State } from "../../src/devices/pl011/pl011.js";
import { Pl031, RTCDR, RTCICR, RTCIMSC, RTCLR, RTCMIS, RTCMR, RTCRIS, type Pl031State } from "../../src/devices/pl031/pl031.js";
import { LatchedIrq } from "../../src/devices/mmio.js";
import { StateError } from "../../src/common/state.js";
import { fuzzRestore } from "../state-mutate.js";

/** Asserts `f` throws a StateError naming `field` (a substring). */
function refuses(f: () => void, field: string): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof StateError, `expected StateError, got ${String(e)}`);
    assert.equal(e.code, "STATE_INVALID");
    assert.ok(e.field.includes(field), `field ${e.field} should name ${field}`);
    return true;
  }, `should refuse a bad ${field}`);
}

/** A mutated deep copy of a state. */
function mutate<T>(s: T, f: (x: Record<string, unknown>) => void): T {
  const c = structuredClone(s) as Record<string, unknown>;
  f(c);
  return c as T;
}

// ---------------------------------------------------------------------------------------------------------
// GICv2

function gic(cpus = 2, irqs = 96) {
  const g = new Gicv2({ cpus, irqs });
  const irq: boolean[] = new Array(cpus).fill(false);
  const fiq: boolean[] = new Array(cpus).fill(false);
  let reports = 0;
  g.onIrqChange = (c, a) => { irq[c] = a; reports++; };
  g.onFiqChange = (c, a) => { fiq[c] = a; };
  const dr = (c: number, off: number) => g.distributor(c).read(off, 4) >>> 0;
  const dw = (c: number, off: number, v: number, size = 4) => g.distributor(c).write(off, size, v, 0);
  const cr = (c: number, off: number) => g.cpuInterface(c).read(off, 4) >>> 0;
  const cw = (c: number, off: number, v: number) => g.cpuInterface(c).write(off, 4, v, 0);
  return { g, irq, fiq, dr, dw, cr, cw, reports: () => reports };
}
type G = ReturnType<typeof gic>;

/** Every side-effect-free register of every CPU's view (distributor words, CPU interface registers but IAR). */
function gicRegs(s: G): number[] {
  const out: number[] = [];
  for (let c = 0; c < s.g.cpus; c++) {
    for (let off = 0; off < 0x1000; off += 4) out.push(s.dr(c, off));
    for (const off of [GICC_CTLR, GICC_PMR, GICC_BPR, GICC_RPR, GICC_HPPIR, GICC_ABPR, GICC_AHPPIR, GICC_APR0]) out.push(s.cr(c, off));
    out.push(s.irq[c] ? 1 : 0, s.fiq[c] ? 1 : 0);
  }
  return out;
}

/** Two CPUs brought up as Linux does, then: SPIs pending (level and edge), one active, SGIs with sources. */
function busyGic(): G {
  const s = gic();
  const { dw, cw, g } = s;
  for (let i = 32; i < 96; i += 4) dw(0, GICD_ITARGETSR + i, 0x01010101);
  dw(0, GICD_ITARGETSR + 64, 0x02, 1); // SPI 64 to CPU 1
  for (let i = 0; i < 96; i += 4) { dw(0, GICD_IPRIORITYR + i, 0xa0a0a0a0); dw(1, GICD_IPRIORITYR + i, 0x90909090); }
  dw(0, GICD_IPRIORITYR + 40, 0x60, 1);
  dw(0, GICD_IPRIORITYR + 5, 0x20, 1); // SGI 5 on CPU 0 above everything
  dw(0, GICD_ICFGR + 12, 0x2 << 0); // SPI 48 edge
  dw(0, GICD_IGROUPR + 4, 1 << 5); // SPI 37 group 1
  dw(0, GICD_CTLR, 3);
  dw(0, GICD_ISENABLER + 4, 0xffffffff); dw(0, GICD_ISENABLER + 8, 0xffffffff);
  for (let c = 0; c < 2; c++) { dw(c, GICD_ISENABLER, 0xffff0000); cw(c, GICC_PMR, 0xf0); cw(c, GICC_CTLR, 0x3 | (1 << 9)); }
  cw(1, GICC_BPR, 4);
  g.setIrq(33, true); // level SPI
  g.setIrq(40, true); // higher priority
  g.setIrq(48, true); g.setIrq(48, false); // edge latched
  g.setPpi(1, 14, true); // PPI 30 on CPU 1
  g.setIrq(64, true);
  dw(0, GICD_ISPENDR + 4, 1 << 7); // SPI 39 pending by software
  dw(0, GICD_SGIR, (0x3 << 16) | 5); // SGI 5 to CPUs 0 and 1 from CPU 0
  dw(1, GICD_SGIR, (0x1 << 16) | 5); // and from CPU 1 to CPU 0
  assert.equal(s.cr(0, GICC_IAR), 5); // SGI 5 from CPU 0: active on CPU 0, source 1 still pending (EOImode)
  dw(0, GICD_ISACTIVER + 8, 1 << 2); // SPI 66 active by software
  return s;
}

test("gicv2: save/restore round trip reads, drives and behaves the same", () => {
  const a = busyGic();
  const st = a.g.save();
  for (const state of [st, structuredClone(st)]) {
    const b = gic();
    b.g.restore(state);
    assert.deepEqual(gicRegs(b), gicRegs(a));
    assert.ok(b.reports() >= 2, "restore reports every CPU's IRQ output");
    assert.deepEqual(b.g.save(), st);
    // The same acknowledge/EOI/line sequence gives the same answers on both.
    const seq = (s: G): number[] => {
      const r: number[] = [];
      for (let k = 0; k < 4; k++) for (let c = 0; c < 2; c++) {
        const v = s.cr(c, GICC_IAR);
        r.push(v, s.irq[c] ? 1 : 0);
        if (v < 1020) s.cw(c, GICC_EOIR, v);
      }
      s.g.setIrq(40, false); s.g.setIrq(33, false);
      r.push(...gicRegs(s));
      return r;
    };
    const ra = seq(busyGic()), rb = seq(b); // a fresh original (the build is deterministic) against the restored one
    assert.deepEqual(rb, ra);
  }
});

test("gicv2: bad states are refused and leave the GIC unchanged", () => {
  const a = busyGic();
  const st = a.g.save();
  const b = busyGic();
  b.cw(0, GICC_PMR, 0x80); // differs from st
  const before = gicRegs(b), saved = b.g.save();
  const bad: [Gicv2State, string][] = [
    [mutate(st, (x) => { x.version = 2; }), "version"],
    [mutate(st, (x) => { x.cpus = 3; }), "cpus"],
    [mutate(st, (x) => { x.irqs = 128; }), "irqs"],
    [mutate(st, (x) => { x.ctlr = 4; }), "ctlr"],
    [mutate(st, (x) => { x.priority = new Uint8Array(10); }), "priority"],
    [mutate(st, (x) => { (x.priority as Uint8Array)[70] = 0xa1; }), "priority[70]"],
    [mutate(st, (x) => { (x.target as Uint8Array)[50] = 0x04; }), "target[50]"],
    [mutate(st, (x) => { (x.target as Uint8Array)[3] = 0x01; }), "target[3]"],
    [mutate(st, (x) => { x.enable = new Int32Array(3); }), "enable"],
    [mutate(st, (x) => { x.latch = [0, 0, 0, 0] as unknown as Int32Array; }), "latch"],
    [mutate(st, (x) => { (x.enable as Int32Array)[1] = 0; }), "enable[1]"],
    [mutate(st, (x) => { (x.edge as Int32Array)[0] &= ~1; }), "edge[0]"],
    [mutate(st, (x) => { (x.sgiSources as Uint8Array)[16 + 5] = 0x04; }), "sgiSources[21]"],
    [mutate(st, (x) => { (x.sgiSources as Uint8Array)[3] = 0x01; }), "latch[0]"],
    [mutate(st, (x) => { (x.cpu as { bpr: number }[])[1].bpr = 1; }), "cpu[1].bpr"],
    [mutate(st, (x) => { (x.cpu as { pmr: number }[])[0].pmr = 0xf1; }), "cpu[0].pmr"],
    [mutate(st, (x) => { (x.cpu as { ctlr: number }[])[0].ctlr = 0x800; }), "cpu[0].ctlr"],
    [mutate(st, (x) => { x.cpu = [(x.cpu as unknown[])[0]]; }), "cpu"],
    [mutate(st, (x) => { x.sgiSources = new Uint8Array(31); }), "sgiSources"],
  ];
  for (const [s, field] of bad) {
    refuses(() => b.g.restore(s), field);
    assert.deepEqual(gicRegs(b), before);
    assert.deepEqual(b.g.save(), saved);
  }
  refuses(() => b.g.restore(null as unknown as Gicv2State), "(root)");
});

// ---------------------------------------------------------------------------------------------------------
// PL011

function uart() {
  const irq = new LatchedIrq();
  const out: number[] = [];
  const u = new Pl011(irq, (b) => { for (const x of b) out.push(x); });
  const r = (off: number) => u.read(off, 4) >>> 0;
  const w = (off: number, v: number) => u.write(off, 4, v);
  return { u, irq, out, r, w };
}
type U = ReturnType<typeof uart>;
const UART_REGS = [UARTFR, UARTIBRD, UARTLCR_H, UARTCR, UARTIFLS, UARTIMSC, UARTRIS, UARTMIS, 0x028, 0x020, 0x048];
const uartRegs = (s: U): number[] => [...UART_REGS.map((o) => s.r(o)), s.irq.level ? 1 : 0];

function busyUart(): U {
  const s = uart();
  s.w(UARTIBRD, 13); s.w(0x028, 1); s.w(UARTIFLS, 0x12); s.w(UARTLCR_H, LCRH_FEN | (3 << 5));
  s.w(UARTCR, 0x301); s.w(UARTIMSC, INT_RX | INT_RT); s.w(0x048, 2);
  // 40 bytes offered, 32 fit; read 3 so the ring's head is not at 0.
  const n = s.u.input(new Uint8Array(40).map((_, i) => 0x41 + i));
  assert.equal(n, 32);
  for (let i = 0; i < 3; i++) s.r(UARTDR);
  s.u.input(new Uint8Array([1, 2]));
  s.w(UARTDR, 0x5a);
  return s;
}

test("pl011: save/restore round trip (registers, FIFO in order, interrupt line)", () => {
  const a = busyUart();
  const st = a.u.save();
  assert.equal(st.rx.length, 31);
  for (const state of [st, structuredClone(st)]) {
    const b = uart();
    b.u.restore(state);
    assert.deepEqual(uartRegs(b), uartRegs(a));
    assert.equal(b.irq.level, true);
    assert.deepEqual(b.u.save(), st);
    const c = busyUart(); // a fresh original (deterministic build) to drain alongside
    const drain = (s: U): number[] => { const r: number[] = []; while ((s.r(UARTFR) & 0x10) === 0) r.push(s.r(UARTDR), s.irq.level ? 1 : 0); return r; };
    assert.deepEqual(drain(b), drain(c));
    assert.equal(b.irq.level, false);
  }
});

test("pl011: bad states are refused and leave the UART unchanged", () => {
  const a = busyUart();
  const st = a.u.save();
  const b = uart();
  b.w(UARTIMSC, INT_RT);
  const before = uartRegs(b), saved = b.u.save();
  const bad: [Pl011State, string][] = [
    [mutate(st, (x) => { x.version = 0; }), "version"],
    [mutate(st, (x) => { x.ibrd = 0x10000; }), "ibrd"],
    [mutate(st, (x) => { x.imsc = -1; }), "imsc"],
    [mutate(st, (x) => { x.ris = 0x20; }), "ris"],
    [mutate(st, (x) => { x.rx = new Uint8Array(33); }), "rx"],
    [mutate(st, (x) => { x.lcrh = 0; }), "rx"], // 31 bytes do not fit the 1-byte holding register
    [mutate(st, (x) => { x.rx = new Uint8Array(2); }), "ris"], // RX interrupt below the trigger level
    [mutate(st, (x) => { x.rx = [1, 2] as unknown as Uint8Array; }), "rx"],
    [mutate(st, (x) => { x.cr = 1.5; }), "cr"],
  ];
  for (const [s, field] of bad) {
    refuses(() => b.u.restore(s), field);
    assert.deepEqual(uartRegs(b), before);
    assert.deepEqual(b.u.save(), saved);
  }
});

// ---------------------------------------------------------------------------------------------------------
// PL031

function rtc(start: number) {
  let now = start;
  const irq = new LatchedIrq();
  const d = new Pl031(irq, () => now);
  const r = (off: number) => d.read(off, 4) >>> 0;
  const w = (off: number, v: number) => d.write(off, 4, v);
  return { d, irq, r, w, advance: (s: number) => { now += s; } };
}

test("pl031: the time base is saved relative to the host clock; alarms and the line survive", () => {
  const a = rtc(1_700_000_000.5);
  a.w(RTCLR, 1_000_000); // guest set its clock far from host time
  a.w(RTCIMSC, 1);
  a.w(RTCMR, 1_000_010);
  a.advance(3);
  assert.equal(a.r(RTCDR), 1_000_003);
  const st = a.d.save();
  for (const state of [st, structuredClone(st)]) {
    // Restored "later": 100 s of host time passed while saved; the guest's RTC kept counting.
    const b = rtc(1_700_000_103.5);
    b.d.restore(state);
    assert.deepEqual(b.d.save(), st);
    assert.equal(b.irq.level, false);
    assert.equal(b.r(RTCMR), 1_000_010);
    assert.equal(b.r(RTCIMSC), 1);
    assert.equal(b.r(RTCDR), 1_000_103);
    // The alarm time passed during the downtime: it fired on the first check.
    assert.equal(b.r(RTCRIS), 1);
    assert.equal(b.irq.level, true);
    b.w(RTCICR, 1);
    assert.equal(b.r(RTCMIS), 0);
  }
  // Restored at the same host time: identical readings and behaviour.
  const c = rtc(1_700_000_003.5);
  c.d.restore(st);
  assert.equal(c.r(RTCDR), a.r(RTCDR));
  a.advance(7); c.advance(7);
  assert.equal(c.r(RTCRIS), 1); assert.equal(a.r(RTCRIS), 1);
  assert.deepEqual(c.d.save(), a.d.save());
});

test("pl031: a pending alarm interrupt is re-driven; bad states are refused and change nothing", () => {
  const a = rtc(5000);
  a.w(RTCIMSC, 1);
  a.w(RTCMR, 5000); // equal now: matches at once
  assert.equal(a.irq.level, true);
  const st = a.d.save();
  const b = rtc(5000);
  b.d.restore(st);
  assert.equal(b.irq.level, true);
  const c = rtc(6000);
  c.w(RTCLR, 77);
  const saved = c.d.save();
  const bad: [Pl031State, string][] = [
    [mutate(st, (x) => { x.version = 2; }), "version"],
    [mutate(st, (x) => { x.offset = 2 ** 32; }), "offset"],
    [mutate(st, (x) => { x.offset = 0.5; }), "offset"],
    [mutate(st, (x) => { x.mr = -1; }), "mr"],
    [mutate(st, (x) => { x.imsc = 2; }), "imsc"],
    [mutate(st, (x) => { x.ris = "1"; }), "ris"],
    [mutate(st, (x) => { x.lastDr = 2 ** 32; }), "lastDr"],
  ];
  for (const [s, field] of bad) {
    refuses(() => c.d.restore(s), field);
    assert.deepEqual(c.d.save(), saved);
    assert.equal(c.r(RTCDR), 77);
    assert.equal(c.irq.level, false);
  }
});

// ---------------------------------------------------------------------------------------------------------
// Fuzz: one awkward value anywhere in a saved state: accepted (and then its own save restores again) or
// refused with StateError and nothing changed — never another exception, never a half-loaded device.

test("fuzz: mutated GIC, PL011 and PL031 states (seeded, 400 rounds each)", () => {
  const g = busyGic(), gs = g.g.save();
  const [gOk, gNo] = fuzzRestore(gs, 400, 0x61c, (s) => { g.g.restore(s); g.g.restore(g.g.save()); }, () => g.g.save(), () => g.g.restore(gs));
  const u = busyUart(), us = u.u.save();
  const [uOk, uNo] = fuzzRestore(us, 400, 0x011, (s) => { u.u.restore(s); u.u.restore(u.u.save()); }, () => u.u.save(), () => u.u.restore(us));
  const r = rtc(1e9); r.w(RTCIMSC, 1); r.w(RTCMR, 5);
  const rs = r.d.save();
  const [rOk, rNo] = fuzzRestore(rs, 400, 0x031, (s) => { r.d.restore(s); r.d.restore(r.d.save()); }, () => r.d.save(), () => r.d.restore(rs));
  // Both outcomes occur (the fuzz reaches the checks and the values the registers can hold).
  for (const [ok, no] of [[gOk, gNo], [uOk, uNo], [rOk, rNo]]) assert.ok(ok > 0 && no > 0, `${ok} accepted, ${no} refused`);
});
