/**
 * GICv2 tests (ARM IHI 0048B): probing as Linux's irq-gic.c does, enable/pending/ack/EOI, priority masking and
 * preemption, SGIs with target filters and source IDs, PPI banking, level vs edge, spurious IDs, and the
 * MmioRouter that puts the GIC on a CPU's bus.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Gicv2, gicv2DtNode } from "../../src/devices/gic/gicv2.js";
import {
  GICC_AIAR, GICC_BPR, GICC_CTLR, GICC_DIR, GICC_EOIR, GICC_HPPIR, GICC_IAR, GICC_IIDR, GICC_PMR, GICC_RPR,
  GICD_CPENDSGIR, GICD_CTLR, GICD_ICENABLER, GICD_ICFGR, GICD_ICPENDR, GICD_IGROUPR, GICD_IPRIORITYR,
  GICD_ISACTIVER, GICD_ISENABLER, GICD_ISPENDR, GICD_ITARGETSR, GICD_PIDR0, GICD_SGIR, GICD_SPENDSGIR, GICD_TYPER,
} from "../../src/devices/gic/gicv2-regs.js";
import { MmioRouter } from "../../src/devices/mmio.js";
import { R } from "../../src/common/int64.js";

const GICD_BASE = 0x08000000, GICC_BASE = 0x08010000;

/** A GIC plus per-CPU accessors and recorded IRQ outputs. */
function setup(cpus = 1, irqs = 128) {
  const gic = new Gicv2({ cpus, irqs });
  const irq: boolean[] = new Array(cpus).fill(false);
  const changes: string[] = [];
  gic.onIrqChange = (c, a) => { irq[c] = a; changes.push(`${c}:${a ? 1 : 0}`); };
  const dr = (c: number, off: number, size = 4) => gic.distributor(c).read(off, size) >>> 0;
  const dw = (c: number, off: number, v: number, size = 4) => gic.distributor(c).write(off, size, v, 0);
  const cr = (c: number, off: number) => gic.cpuInterface(c).read(off, 4) >>> 0;
  const cw = (c: number, off: number, v: number) => gic.cpuInterface(c).write(off, 4, v, 0);
  return { gic, irq, changes, dr, dw, cr, cw };
}

/** Linux-style bring-up (gic_dist_init + gic_cpu_init): all SPIs to CPU 0, priority 0xa0, PMR 0xf0, enabled. */
function linuxInit(s: ReturnType<typeof setup>, cpus = 1): void {
  const { dr, dw, cw, gic } = s;
  dw(0, GICD_CTLR, 0);
  const nirq = ((dr(0, GICD_TYPER) & 0x1f) + 1) * 32;
  for (let i = 32; i < nirq; i += 4) dw(0, GICD_ITARGETSR + i, 0x01010101);
  for (let i = 32; i < nirq; i += 16) dw(0, GICD_ICFGR + i / 4, 0); // level
  for (let i = 32; i < nirq; i += 4) dw(0, GICD_IPRIORITYR + i, 0xa0a0a0a0);
  for (let i = 32; i < nirq; i += 32) dw(0, GICD_ICENABLER + i / 8, 0xffffffff);
  dw(0, GICD_CTLR, 1);
  for (let c = 0; c < cpus; c++) {
    dw(c, GICD_ICENABLER, 0xffff0000);
    dw(c, GICD_ISENABLER, 0x0000ffff);
    for (let i = 0; i < 32; i += 4) dw(c, GICD_IPRIORITYR + i, 0xa0a0a0a0);
    cw(c, GICC_PMR, 0xf0);
    cw(c, GICC_CTLR, 1);
  }
  assert.equal(gic.badAccesses, 0);
}

test("probe: TYPER, IDs, ITARGETSR banked bits, GICC_IIDR matches gic_check_gic400", () => {
  const s = setup(4, 256);
  assert.equal(s.dr(0, GICD_TYPER) & 0x1f, 7); // ITLinesNumber: 256 lines
  assert.equal((s.dr(0, GICD_TYPER) >> 5) & 7, 3); // CPUNumber: 4 CPUs
  assert.equal((s.dr(0, GICD_PIDR0 + 8) >> 4) & 0xf, 2); // PIDR2.ArchRev = GICv2
  assert.equal(s.dr(0, 0xff0), 0x0d);
  assert.equal(s.dr(0, 0xffc), 0xb1);
  for (let c = 0; c < 4; c++) {
    assert.equal(s.dr(c, GICD_ITARGETSR), (0x01010101 << c) >>> 0);
    assert.equal(s.dr(c, GICD_ITARGETSR + 31, 1), 1 << c);
  }
  assert.equal(s.cr(0, GICC_IIDR) & 0xff0fff, 0x02043b);
  assert.equal(s.dr(0, GICD_ICFGR), 0xaaaaaaaa); // SGIs edge
  const node = gicv2DtNode(GICD_BASE, GICC_BASE, 1);
  assert.deepEqual(node.props.compatible, ["arm,cortex-a15-gic"]);
  assert.deepEqual(node.props.reg, [0, GICD_BASE, 0, 0x1000, 0, GICC_BASE, 0, 0x2000]);
  assert.deepEqual(node.props["#interrupt-cells"], [3]);
});

test("SPI level: enable, pending, ack, EOI; spurious when nothing pending", () => {
  const s = setup();
  linuxInit(s);
  const { gic, dw, dr, cr, cw, irq } = s;
  assert.equal(cr(0, GICC_IAR), 1023);
  gic.setIrq(33, true);
  assert.equal(irq[0], false, "disabled interrupt is not signalled");
  assert.ok(gic.isPending(33));
  assert.equal(dr(0, GICD_ISPENDR + 4), 2);
  dw(0, GICD_ISENABLER + 4, 2);
  assert.equal(irq[0], true);
  assert.equal(cr(0, GICC_HPPIR), 33);
  assert.equal(cr(0, GICC_IAR), 33);
  assert.equal(irq[0], false, "active interrupt no longer signalled");
  assert.equal(cr(0, GICC_RPR), 0xa0);
  assert.ok(gic.isActive(33) && gic.isPending(33), "level still high: active and pending");
  assert.equal(cr(0, GICC_IAR), 1023);
  gic.setIrq(33, false);
  cw(0, GICC_EOIR, 33);
  assert.equal(cr(0, GICC_RPR), 0xff);
  assert.ok(!gic.isActive(33));
  assert.equal(irq[0], false);
  // Line still high at EOI: re-signalled.
  gic.setIrq(33, true);
  assert.equal(cr(0, GICC_IAR), 33);
  cw(0, GICC_EOIR, 33);
  assert.equal(irq[0], true);
  gic.setIrq(33, false);
  assert.equal(irq[0], false);
  // ICPENDR cannot clear a level interrupt whose line is high; ISPENDR latches a software pend.
  gic.setIrq(40, true);
  dw(0, GICD_ISENABLER + 4, 1 << 8);
  dw(0, GICD_ICPENDR + 4, 1 << 8);
  assert.ok(gic.isPending(40));
  gic.setIrq(40, false);
  assert.ok(!gic.isPending(40));
  dw(0, GICD_ISPENDR + 4, 1 << 8);
  assert.ok(gic.isPending(40));
  assert.equal(cr(0, GICC_IAR), 40);
  assert.ok(!gic.isPending(40), "ack clears the software latch");
  cw(0, GICC_EOIR, 40);
});

test("edge vs level configuration", () => {
  const s = setup();
  linuxInit(s);
  const { gic, dw, dr, cr, cw, irq } = s;
  dw(0, GICD_ICFGR + 8, 2 << ((34 - 32) * 2)); // INTID 34 edge
  assert.equal(dr(0, GICD_ICFGR + 8), 2 << 4, "configuration reads back (gic_configure_irq checks)");
  dw(0, GICD_ISENABLER + 4, 1 << 2);
  gic.setIrq(34, true);
  gic.setIrq(34, false); // a pulse
  assert.ok(gic.isPending(34), "edge latched");
  assert.equal(irq[0], true);
  assert.equal(cr(0, GICC_IAR), 34);
  assert.ok(!gic.isPending(34));
  gic.setIrq(34, true); // another edge while active: active and pending
  assert.ok(gic.isPending(34) && gic.isActive(34));
  assert.equal(irq[0], false);
  cw(0, GICC_EOIR, 34);
  assert.equal(irq[0], true);
  assert.equal(cr(0, GICC_IAR), 34);
  cw(0, GICC_EOIR, 34);
  assert.equal(irq[0], false, "holding an edge line high does not re-trigger");
});

test("priority masking and preemption by group priority", () => {
  const s = setup();
  linuxInit(s);
  const { gic, dw, cr, cw, irq } = s;
  dw(0, GICD_ISENABLER + 4, 0xf);
  dw(0, GICD_IPRIORITYR + 32, 0x80, 1);
  dw(0, GICD_IPRIORITYR + 33, 0x40, 1);
  dw(0, GICD_IPRIORITYR + 34, 0xf0, 1);
  dw(0, GICD_IPRIORITYR + 35, 0x4f, 1); // reads back 0x48: 5 priority bits
  assert.equal(s.dr(0, GICD_IPRIORITYR + 32), 0x48f04080);
  gic.setIrq(34, true); // priority 0xf0 == PMR: masked
  assert.equal(irq[0], false);
  assert.equal(cr(0, GICC_IAR), 1023);
  cw(0, GICC_PMR, 0xf8);
  assert.equal(irq[0], true);
  cw(0, GICC_PMR, 0);
  assert.equal(irq[0], false, "PMR 0 masks everything");
  cw(0, GICC_PMR, 0xf0);
  gic.setIrq(34, false);
  gic.setIrq(32, true);
  assert.equal(cr(0, GICC_IAR), 32); // running priority 0x80
  gic.setIrq(33, true); // 0x40 preempts 0x80
  assert.equal(irq[0], true);
  assert.equal(cr(0, GICC_IAR), 33);
  assert.equal(cr(0, GICC_RPR), 0x40);
  gic.setIrq(35, true);
  assert.equal(irq[0], false, "0x48 does not preempt 0x40");
  cw(0, GICC_BPR, 1); // clamped to the minimum 2
  assert.equal(cr(0, GICC_BPR), 2);
  cw(0, GICC_BPR, 4); // group priority = bits [7:5]: 0x48 → 0x40, not below running 0x40
  assert.equal(irq[0], false);
  gic.setIrq(33, false);
  cw(0, GICC_EOIR, 33); // drop to 0x80: 0x48 (group 0x40) preempts
  assert.equal(cr(0, GICC_RPR), 0x80);
  assert.equal(irq[0], true);
  assert.equal(cr(0, GICC_IAR), 35);
  gic.setIrq(35, false);
  cw(0, GICC_EOIR, 35);
  gic.setIrq(32, false);
  cw(0, GICC_EOIR, 32);
  assert.equal(cr(0, GICC_RPR), 0xff);
  assert.equal(irq[0], false);
});

test("ties go to the lowest INTID; GICC/GICD disable stops signalling", () => {
  const s = setup();
  linuxInit(s);
  const { gic, dw, cr, cw, irq } = s;
  dw(0, GICD_ISENABLER + 8, 0xffffffff);
  gic.setIrq(70, true);
  gic.setIrq(65, true);
  assert.equal(cr(0, GICC_HPPIR), 65);
  dw(0, GICD_CTLR, 0);
  assert.equal(irq[0], false);
  assert.equal(cr(0, GICC_IAR), 1023);
  dw(0, GICD_CTLR, 1);
  cw(0, GICC_CTLR, 0);
  assert.equal(irq[0], false);
  cw(0, GICC_CTLR, 1);
  assert.equal(irq[0], true);
});

test("EOImode: EOIR drops priority, DIR deactivates", () => {
  const s = setup();
  linuxInit(s);
  const { gic, dw, cr, cw, irq } = s;
  cw(0, GICC_CTLR, 1 | (1 << 9));
  dw(0, GICD_ISENABLER + 4, 1);
  gic.setIrq(32, true);
  assert.equal(cr(0, GICC_IAR), 32);
  cw(0, GICC_EOIR, 32);
  assert.equal(cr(0, GICC_RPR), 0xff);
  assert.ok(gic.isActive(32), "still active until DIR");
  assert.equal(irq[0], false);
  cw(0, GICC_DIR, 32);
  assert.ok(!gic.isActive(32));
  assert.equal(irq[0], true, "line still high: pending again");
  dw(0, GICD_ISACTIVER + 4, 0); // harmless
});

test("SGIs: target list, others, self; source CPU in IAR; EOI with the IAR value", () => {
  const s = setup(4);
  linuxInit(s, 4);
  const { gic, dw, cr, cw, irq } = s;
  dw(1, GICD_SGIR, (0b1100 << 16) | 5); // CPU 1 → CPUs 2, 3, SGI 5
  assert.deepEqual(irq, [false, false, true, true]);
  assert.equal(cr(2, GICC_IAR), (1 << 10) | 5);
  assert.equal(cr(3, GICC_HPPIR), (1 << 10) | 5);
  assert.equal(cr(3, GICC_IAR), (1 << 10) | 5);
  cw(2, GICC_EOIR, (1 << 10) | 5);
  cw(3, GICC_EOIR, (1 << 10) | 5);
  assert.deepEqual(irq, [false, false, false, false]);

  dw(0, GICD_SGIR, (1 << 24) | 3); // all but self
  assert.deepEqual(irq, [false, true, true, true]);
  for (let c = 1; c < 4; c++) { assert.equal(cr(c, GICC_IAR), 3); cw(c, GICC_EOIR, 3); }
  dw(2, GICD_SGIR, (2 << 24) | (0xff << 16) | 7); // self only: list ignored
  assert.deepEqual(irq, [false, false, true, false]);
  assert.equal(cr(2, GICC_IAR), (2 << 10) | 7);
  cw(2, GICC_EOIR, (2 << 10) | 7);

  // Two sources pending the same SGI: taken one at a time, lowest source first.
  dw(3, GICD_SGIR, (1 << 16) | 1);
  dw(2, GICD_SGIR, (1 << 16) | 1);
  assert.equal(s.dr(0, GICD_SPENDSGIR, 4), 0b1100 << 8);
  assert.equal(cr(0, GICC_IAR), (2 << 10) | 1);
  assert.equal(irq[0], false, "active and pending from CPU 3");
  cw(0, GICC_EOIR, (2 << 10) | 1);
  assert.equal(cr(0, GICC_IAR), (3 << 10) | 1);
  cw(0, GICC_EOIR, (3 << 10) | 1);
  assert.equal(cr(0, GICC_IAR), 1023);

  // SPENDSGIR/CPENDSGIR, and SGI bits in ISPENDR/ICENABLER are not writable.
  dw(1, GICD_SPENDSGIR + 2, 0x01, 1); // SGI 2 on CPU 1, "from" CPU 0
  assert.equal(irq[1], true);
  dw(1, GICD_ICPENDR, 0xffff);
  dw(1, GICD_ICENABLER, 0xffff);
  assert.equal(irq[1], true);
  dw(1, GICD_CPENDSGIR + 2, 0xff, 1);
  assert.equal(irq[1], false);
  assert.equal(gic.isPending(2, 1), false);
});

test("PPIs are banked per CPU", () => {
  const s = setup(2);
  linuxInit(s, 2);
  const { gic, dw, dr, cr, cw, irq } = s;
  dw(0, GICD_ISENABLER, 1 << 30); // CPU 0 enables its timer PPI
  dw(1, GICD_IPRIORITYR + 30, 0x20, 1);
  assert.equal(dr(0, GICD_IPRIORITYR + 28) >>> 16 & 0xff, 0xa0);
  assert.equal(dr(1, GICD_IPRIORITYR + 28) >>> 16 & 0xff, 0x20);
  gic.setPpi(1, 14, true); // PPI 14 = INTID 30 on CPU 1: not enabled there
  assert.deepEqual(irq, [false, false]);
  gic.setPpi(0, 30, true);
  assert.deepEqual(irq, [true, false]);
  assert.equal(cr(1, GICC_IAR), 1023);
  assert.equal(cr(0, GICC_IAR), 30);
  dw(1, GICD_ISENABLER, 1 << 30);
  assert.deepEqual(irq, [false, true]);
  assert.equal(cr(1, GICC_IAR), 30);
  assert.ok(gic.isActive(30, 0) && gic.isActive(30, 1));
  gic.setPpi(0, 30, false);
  cw(0, GICC_EOIR, 30);
  assert.ok(!gic.isActive(30, 0) && gic.isActive(30, 1));
  // PPI configuration is writable and banked.
  dw(1, GICD_ICFGR + 4, 2 << 28);
  assert.equal(dr(1, GICD_ICFGR + 4), 2 << 28);
  assert.equal(dr(0, GICD_ICFGR + 4), 0);
});

test("SPI routing by ITARGETSR (byte and word access)", () => {
  const s = setup(2);
  linuxInit(s, 2);
  const { gic, dw, dr, cr, cw, irq } = s;
  dw(0, GICD_ISENABLER + 4, 0xffffffff);
  dw(0, GICD_ITARGETSR + 41, 2, 1);
  assert.equal(dr(1, GICD_ITARGETSR + 40), 0x01010201);
  gic.setIrq(41, true);
  assert.deepEqual(irq, [false, true]);
  dw(0, GICD_ITARGETSR + 41, 3, 1); // both: first to acknowledge wins
  assert.deepEqual(irq, [true, true]);
  assert.equal(cr(0, GICC_IAR), 41);
  assert.deepEqual(irq, [false, false], "active on CPU 0: withdrawn from CPU 1");
  assert.equal(cr(1, GICC_IAR), 1023);
  gic.setIrq(41, false);
  cw(0, GICC_EOIR, 41);
  assert.deepEqual(irq, [false, false]);
});

test("group 1 and AckCtl; AIAR acknowledges group 1 only", () => {
  const s = setup();
  linuxInit(s);
  const { gic, dw, cr, cw } = s;
  dw(0, GICD_CTLR, 3);
  cw(0, GICC_CTLR, 3);
  dw(0, GICD_IGROUPR + 4, 1);
  dw(0, GICD_ISENABLER + 4, 1);
  gic.setIrq(32, true);
  assert.equal(cr(0, GICC_IAR), 1022, "group 1 without AckCtl");
  assert.equal(cr(0, GICC_AIAR), 32);
  cw(0, 0x24, 32); // AEOIR
  gic.setIrq(32, false);
  assert.ok(!gic.isActive(32));
  let fiq = false;
  gic.onFiqChange = (_c, a) => { fiq = a; };
  dw(0, GICD_IGROUPR + 4, 0);
  cw(0, GICC_CTLR, 3 | 8); // FIQEn: group 0 as FIQ
  gic.setIrq(32, true);
  assert.equal(fiq, true);
  assert.equal(s.irq[0], false);
});

test("MmioRouter: decoding, 64-bit split, unassigned addresses", () => {
  const gic = new Gicv2({ cpus: 1, irqs: 64 });
  const bus = new MmioRouter();
  bus.map(GICD_BASE, gic.distributor(0));
  bus.map(GICC_BASE, gic.cpuInterface(0));
  assert.throws(() => bus.map(GICD_BASE + 0x800, gic.distributor(0)), { code: "MMIO_MAP" });
  assert.ok(bus.claims(GICD_BASE) && bus.claims(GICC_BASE + 0x1fff));
  assert.ok(!bus.claims(GICD_BASE + 0x1000) && !bus.claims(GICC_BASE + 0x2000) && !bus.claims(0));
  assert.equal(bus.read(GICD_BASE + GICD_TYPER, 4), 1);
  bus.write(GICD_BASE + GICD_IPRIORITYR + 32, 8, 0x11223344, 0x55667788);
  assert.equal(bus.read(GICD_BASE + GICD_IPRIORITYR + 32, 4) >>> 0, 0x10203040);
  const lo = bus.read(GICD_BASE + GICD_IPRIORITYR + 32, 8);
  assert.equal(lo >>> 0, 0x10203040);
  assert.equal(R[0] >>> 0, 0x50607088);
});

test("no allocation growth on the access path (smoke)", () => {
  const s = setup(2);
  linuxInit(s, 2);
  const { gic, dw, cr, cw } = s;
  dw(0, GICD_ISENABLER + 4, 1);
  for (let i = 0; i < 50000; i++) {
    gic.setIrq(32, true);
    const v = cr(0, GICC_IAR);
    gic.setIrq(32, false);
    cw(0, GICC_EOIR, v);
    dw(0, GICD_SGIR, (2 << 16) | 1);
    cw(1, GICC_EOIR, cr(1, GICC_IAR));
  }
  assert.equal(cr(0, GICC_IAR), 1023);
  assert.equal(gic.badAccesses, 0);
});
