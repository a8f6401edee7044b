/**
 * MMU tests: stage-1 translation (VMSAv8-64, 4K granule, 48-bit VA) exercised by real instructions on a Cpu:
 * page tables built in guest RAM, the MMU enabled with MSR, and faults checked through ESR_EL1/FAR_EL1/ELR_EL1
 * and the vector PC (Arm ARM D5, D1.10, D17.2.40).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AT, BASE, D, DC_ZVA, ERET, ISB, LDR_X, PageTables, REG, STR_X, SVC, TCR_48, TLBI, type Machine,
  machine, msr, peek64, poke64, pc, runAt, setx, spinVectors, sysreg, x,
} from "./system-asm.js";
import { ELR_EL1, ESR_EL1, FAR_EL1, PAR_EL1, SCTLR_EL1, SPSR_EL1 } from "../../src/cpu/arm64/sysregs.js";
import { ACC_FETCH, ACC_READ, ACC_WRITE } from "../../src/mmu/mmu.js";

const VBAR = BASE; // vectors: "B ." everywhere
const CODE = BASE + 0x1000; // identity-mapped code used by the tests
const POOL = BASE + 0x100000; // page tables
const DATA = BASE + 0x200000; // data pages
const USER = BASE + 0x300000; // EL0 code pages
const MAIR = 0xff | (0x44 << 8) | (0x04 << 16); // Attr0 Normal WB, Attr1 Normal NC, Attr2 Device-nGnRE

/** A machine with an identity-mapped 1 GiB block over RAM (EL1 RW), the MMU on, VBAR at BASE, EL1h. */
function setup(): { m: Machine; pt: PageTables } {
  const m = machine();
  spinVectors(m, VBAR);
  const pt = new PageTables(m, POOL);
  pt.block(BigInt(BASE), BASE, 1);
  const c = m.cpu;
  setx(c, 0, VBAR); setx(c, 1, TCR_48); setx(c, 2, pt.root); setx(c, 4, MAIR);
  setx(c, 3, c.sys[SCTLR_EL1] | 1);
  runAt(m, CODE, [msr(REG.VBAR_EL1, 0), msr(REG.TCR_EL1, 1), msr(REG.TTBR0_EL1, 2), msr(REG.MAIR_EL1, 4),
    msr(REG.SCTLR_EL1, 3), ISB]);
  assert.equal(m.mmu.mmuOn, true);
  return { m, pt };
}

/** Runs one instruction at CODE with X0 = va; returns X1. */
function load(m: Machine, va: bigint | number): bigint {
  setx(m.cpu, 0, va);
  runAt(m, CODE, [LDR_X(1, 0)]);
  return x(m.cpu, 1);
}

interface Abort { ec: number; fsc: number; wnr?: number; far: bigint; elr: bigint; vec: number; }

function expectAbort(m: Machine, a: Abort): void {
  const c = m.cpu;
  const esr = Number(sysreg(c, ESR_EL1));
  assert.equal(esr >>> 26, a.ec, `EC ${(esr >>> 26).toString(16)} (ESR ${esr.toString(16)})`);
  assert.equal((esr >>> 25) & 1, 1, "IL");
  assert.equal(esr & 0x3f, a.fsc, `FSC ${(esr & 0x3f).toString(16)}`);
  if (a.wnr !== undefined) assert.equal((esr >>> 6) & 1, a.wnr, "WnR");
  assert.equal(sysreg(c, FAR_EL1), a.far, "FAR");
  assert.equal(sysreg(c, ELR_EL1), a.elr, "ELR");
  assert.equal(pc(c), BigInt(VBAR + a.vec), "vector");
  assert.equal(c.el, 1);
}

/** Faulting load/store at EL1 from CODE. */
function expectDataAbort(m: Machine, va: bigint, fsc: number, write = false): void {
  setx(m.cpu, 0, va);
  runAt(m, CODE, [write ? STR_X(1, 0) : LDR_X(1, 0)], 3);
  expectAbort(m, { ec: 0x25, fsc, wnr: write ? 1 : 0, far: va, elr: BigInt(CODE), vec: 0x200 });
  assert.equal(Number(sysreg(m.cpu, SPSR_EL1)) & 0x1f, 0x5, "SPSR.M = EL1h");
}

/** ERET to (va, mode) from CODE; the caller inspects the result. */
function eretTo(m: Machine, va: bigint | number, spsr: number, steps = 4): void {
  const c = m.cpu;
  c.sys[SPSR_EL1] = spsr; c.sys[SPSR_EL1 + 1] = 0;
  setx(c, 5, va);
  runAt(m, CODE, [msr(REG.ELR_EL1, 5), ERET], steps);
}

const val = (pa: number): bigint => 0x1111_0000_0000_0000n + BigInt(pa);
function fill(m: Machine, pa: number): void { poke64(m, pa, val(pa)); }

test("translation through four levels of 4K pages, TTBR0 and TTBR1", () => {
  const { m, pt } = setup();
  const va = 0x0000_1234_5678_9000n;
  pt.page(va, DATA);
  fill(m, DATA + 0x10);
  setx(m.cpu, 0, va);
  runAt(m, CODE, [LDR_X(1, 0, 0x10)]);
  assert.equal(x(m.cpu, 1), val(DATA + 0x10));
  // Store through the mapping lands in the physical page.
  setx(m.cpu, 1, 0xfeedn);
  runAt(m, CODE, [STR_X(1, 0, 0x18)]);
  assert.equal(peek64(m, DATA + 0x18), 0xfeedn);
  // Upper range through TTBR1 (VA bit 55 set).
  const pt1 = new PageTables(m, POOL + 0x40000);
  const hiVa = 0xffff_8000_0000_3000n;
  pt1.page(hiVa, DATA + 0x1000);
  fill(m, DATA + 0x1008);
  setx(m.cpu, 2, pt1.root);
  runAt(m, CODE, [msr(REG.TTBR1_EL1, 2), ISB]);
  assert.equal(load(m, hiVa + 8n), val(DATA + 0x1008));
});

test("1 GiB and 2 MiB block descriptors", () => {
  const { m, pt } = setup();
  // 1 GiB block at VA 0x80_0000_0000 (level 1) onto RAM.
  pt.block(0x80_0000_0000n, BASE, 1);
  fill(m, DATA + 0x28);
  assert.equal(load(m, 0x80_0000_0000n + BigInt(DATA - BASE + 0x28)), val(DATA + 0x28));
  // 2 MiB block at VA 0x2_0020_0000 (level 2) onto DATA.
  pt.block(0x2_0020_0000n, DATA, 2);
  fill(m, DATA + 0x1238);
  assert.equal(load(m, 0x2_0020_1238n), val(DATA + 0x1238));
  // An address at the end of the 2 MiB block.
  fill(m, DATA + 0x1ffff8);
  assert.equal(load(m, 0x2_003f_fff8n), val(DATA + 0x1ffff8));
});

test("translation faults at each level report DFSC 0b0001LL, WnR, FAR, ELR and the vector", () => {
  const { m, pt } = setup();
  expectDataAbort(m, 0x0000_8000_0000_0000n, 0x04); // level 0 entry invalid
  expectDataAbort(m, 0xc000_0000n, 0x05); // level 1 entry invalid (level 0 table exists)
  pt.page(0x8000_0000n, DATA);
  expectDataAbort(m, 0x8020_0000n, 0x06); // level 2
  expectDataAbort(m, 0x8000_1008n, 0x07); // level 3
  expectDataAbort(m, 0x8000_1008n, 0x07, true); // a store: WnR = 1
  // Outside the 48-bit TTBR0 range (bit 48 set, bit 55 clear): level 0 translation fault.
  expectDataAbort(m, 0x0001_0000_0000_0000n, 0x04);
  // TTBR1 walks disabled by TCR_EL1.EPD1: level 0 translation fault.
  setx(m.cpu, 1, TCR_48 | (1n << 23n));
  runAt(m, CODE, [msr(REG.TCR_EL1, 1), ISB]);
  expectDataAbort(m, 0xffff_0000_0000_0000n, 0x04);
  // A level-3 descriptor with bits[1:0] = 0b01 is reserved (translation fault, level 3).
  const s = pt.page(0x8000_2000n, DATA);
  pt.set(s, BigInt(DATA) | D.AF | 1n);
  expectDataAbort(m, 0x8000_2000n, 0x07);
});

test("access flag faults at levels 1, 2 and 3", () => {
  const { m, pt } = setup();
  pt.page(0x8000_0000n, DATA, D.AP_RW_EL1);
  expectDataAbort(m, 0x8000_0000n, 0x0b);
  pt.block(0x2_0000_0000n, DATA, 2, D.AP_RW_EL1);
  expectDataAbort(m, 0x2_0000_0010n, 0x0a, true);
  pt.block(0x80_4000_0000n, BASE, 1, D.AP_RW_EL1);
  expectDataAbort(m, 0x80_4000_0000n, 0x09);
  // Setting AF (software-managed) and invalidating makes the access succeed.
  pt.page(0x8000_0000n, DATA, D.AF | D.AP_RW_EL1);
  setx(m.cpu, 2, 0x8000_0000n >> 12n);
  runAt(m, CODE, [TLBI.VAE1(2)]);
  fill(m, DATA);
  assert.equal(load(m, 0x8000_0000n), val(DATA));
});

test("permission faults: write to read-only, EL0 access to EL1-only, execute-never", () => {
  const { m, pt } = setup();
  const c = m.cpu;
  // EL1 store to a read-only page: permission fault level 3, WnR = 1. Loads work.
  pt.page(0x8000_0000n, DATA, D.AF | D.AP_RO_EL1);
  fill(m, DATA);
  assert.equal(load(m, 0x8000_0000n), val(DATA));
  expectDataAbort(m, 0x8000_0000n, 0x0f, true);
  // Level-2 block permission fault reports level 2.
  pt.block(0x2_0000_0000n, DATA, 2, D.AF | D.AP_RO_ALL);
  expectDataAbort(m, 0x2_0000_0100n, 0x0e, true);

  // EL0: user code page (AP = RO at EL0 and EL1, executable at EL0) loads from an EL1-only page.
  const uva = 0x1000_0000n;
  pt.page(uva, USER, D.AF | D.AP_RO_ALL | D.PXN);
  m.dv.setInt32(USER - BASE, LDR_X(1, 0), true);
  m.dv.setInt32(USER - BASE + 4, SVC(0), true); // back to EL1 (vector 0x400)
  setx(c, 0, 0x8000_0000n);
  eretTo(m, uva, 0x0); // EL0t, interrupts unmasked
  expectAbort(m, { ec: 0x24, fsc: 0x0f, wnr: 0, far: 0x8000_0000n, elr: uva, vec: 0x400 });
  assert.equal(Number(sysreg(c, SPSR_EL1)) & 0x1f, 0, "SPSR.M = EL0t");
  // The same load from an EL0-readable page succeeds.
  pt.page(0x8000_1000n, DATA + 0x1000, D.AF | D.AP_RO_ALL);
  fill(m, DATA + 0x1000);
  setx(c, 0, 0x8000_1000n);
  eretTo(m, uva, 0x0, 3);
  assert.equal(c.el, 0);
  assert.equal(x(c, 1), val(DATA + 0x1000));
  c.run(1); // SVC
  assert.equal(c.el, 1);
  assert.equal(Number(sysreg(c, ESR_EL1)) >>> 26, 0x15);

  // EL1 instruction fetch from a PXN page: instruction abort, same EL (EC 0x21), FAR = ELR = target.
  const xva = 0x1000_1000n;
  pt.page(xva, USER + 0x1000, D.AF | D.AP_RO_EL1 | D.PXN);
  eretTo(m, xva, 0x3c5);
  expectAbort(m, { ec: 0x21, fsc: 0x0f, far: xva, elr: xva, vec: 0x200 });
  // EL0 fetch from a UXN page: EC 0x20, lower-EL vector.
  const uxn = 0x1000_2000n;
  pt.page(uxn, USER + 0x2000, D.AF | D.AP_RO_ALL | D.UXN);
  eretTo(m, uxn, 0x0);
  expectAbort(m, { ec: 0x20, fsc: 0x0f, far: uxn, elr: uxn, vec: 0x400 });
  // EL0 fetch from a page EL0 cannot read (AP = EL1 only, no UXN): not executable at EL0.
  const priv = 0x1000_3000n;
  pt.page(priv, USER + 0x3000, D.AF | D.AP_RO_EL1);
  eretTo(m, priv, 0x0);
  expectAbort(m, { ec: 0x20, fsc: 0x0f, far: priv, elr: priv, vec: 0x400 });
  // EL1 fetch from memory writable at EL0 (AP = 0b01) is implicitly PXN.
  const uw = 0x1000_4000n;
  pt.page(uw, USER + 0x4000, D.AF | D.AP_RW_ALL);
  eretTo(m, uw, 0x3c5);
  expectAbort(m, { ec: 0x21, fsc: 0x0f, far: uw, elr: uw, vec: 0x200 });
});

test("hierarchical permissions and WXN (checked through the MMU's translation probe)", () => {
  const { m, pt } = setup();
  const mmu = m.mmu;
  // APTable[0]: no EL0 access below; APTable[1]: read-only below; PXNTable; UXNTable.
  const t = pt.slot(0x4_0000_0000n, 1);
  poke64(m, t, BigInt(pt.alloc()) | D.TABLE | D.VALID | D.AP_TABLE_NO_EL0);
  pt.page(0x4_0000_0000n, DATA, D.AF | D.AP_RW_ALL | D.UXN);
  assert.equal(mmu.probe(0, 4, ACC_READ, true), -1);
  assert.equal(mmu.faultStatus, 0x0f);
  assert.ok(mmu.probe(0, 4, ACC_WRITE, false) >= 0);
  const t2 = pt.slot(0x4_4000_0000n, 1);
  poke64(m, t2, BigInt(pt.alloc()) | D.TABLE | D.VALID | D.AP_TABLE_RO | D.PXN_TABLE);
  pt.page(0x4_4000_0000n, DATA, D.AF | D.AP_RW_EL1);
  assert.ok(mmu.probe(0x40000000, 4, ACC_READ, false) >= 0);
  assert.equal(mmu.probe(0x40000000, 4, ACC_WRITE, false), -1);
  assert.equal(mmu.probe(0x40000000, 4, ACC_FETCH, false), -1);
  // WXN: writable memory is execute-never.
  pt.page(0x9000_0000n, DATA, D.AF | D.AP_RW_EL1);
  pt.page(0x9000_1000n, DATA, D.AF | D.AP_RO_EL1);
  assert.ok(mmu.probe(0x90000000, 0, ACC_FETCH, false) >= 0);
  mmu.sctlr |= 1 << 19;
  assert.equal(mmu.probe(0x90000000, 0, ACC_FETCH, false), -1);
  assert.ok(mmu.probe(0x90001000, 0, ACC_FETCH, false) >= 0);
  mmu.sctlr &= ~(1 << 19);
});

test("AT S1E1R/S1E1W/S1E0R/S1E0W write PAR_EL1", () => {
  const { m, pt } = setup();
  const c = m.cpu;
  pt.page(0x8000_0000n, DATA + 0x3000, D.AF | D.AP_RO_EL1 | D.attr(1) | D.SH_INNER);
  const at = (insn: number, va: bigint): bigint => {
    setx(c, 0, va);
    runAt(m, CODE, [insn]);
    return sysreg(c, PAR_EL1);
  };
  const ok = at(AT.S1E1R(0), 0x8000_0123n);
  assert.equal(ok & 1n, 0n, "F = 0");
  assert.equal(ok & 0x0000_ffff_ffff_f000n, BigInt(DATA + 0x3000), "PA");
  assert.equal(ok >> 56n, 0x44n, "ATTR from MAIR Attr1");
  assert.equal((ok >> 7n) & 3n, 3n, "SH inner");
  const w = at(AT.S1E1W(0), 0x8000_0000n);
  assert.equal(w & 1n, 1n);
  assert.equal((w >> 1n) & 0x3fn, 0x0fn, "permission fault level 3");
  const u = at(AT.S1E0R(0), 0x8000_0000n);
  assert.equal(u & 1n, 1n);
  assert.equal((u >> 1n) & 0x3fn, 0x0fn);
  const tf = at(AT.S1E0W(0), 0xc000_0000n);
  assert.equal((tf >> 1n) & 0x3fn, 0x05n, "translation fault level 1");
  // AT never takes an exception.
  assert.equal(pc(c), BigInt(CODE + 4));
});

test("DC ZVA zeroes 64 bytes through the MMU and needs write permission", () => {
  const { m, pt } = setup();
  const c = m.cpu;
  pt.page(0x8000_0000n, DATA, D.AF | D.AP_RW_EL1);
  for (let k = 0; k < 128; k += 8) poke64(m, DATA + k, -1n);
  setx(c, 0, 0x8000_0047n);
  runAt(m, CODE, [DC_ZVA(0)]);
  assert.equal(peek64(m, DATA + 0x38), 0xffff_ffff_ffff_ffffn);
  for (let k = 0x40; k < 0x80; k += 8) assert.equal(peek64(m, DATA + k), 0n);
  pt.page(0x8000_1000n, DATA, D.AF | D.AP_RO_EL1);
  setx(c, 0, 0x8000_1040n);
  runAt(m, CODE, [DC_ZVA(0)], 2);
  expectAbort(m, { ec: 0x25, fsc: 0x0f, wnr: 1, far: 0x8000_1040n, elr: BigInt(CODE), vec: 0x200 });
});

test("MMU off: flat mapping, address size fault above 48 bits, external abort outside RAM", () => {
  const m = machine();
  spinVectors(m, VBAR);
  const c = m.cpu;
  setx(c, 0, VBAR);
  runAt(m, CODE, [msr(REG.VBAR_EL1, 0)]);
  fill(m, DATA);
  assert.equal(load(m, DATA), val(DATA));
  expectDataAbort(m, 0x0001_0000_0000_0000n, 0x00);
  expectDataAbort(m, 0x1000n, 0x10);
});

// ---------------------------------------------------------------------------------------------------------------
// ASID-tagged TLB and TLB maintenance

test("two ASIDs map one VA differently; TLBI VAE1/ASIDE1/VAAE1/VMALLE1 invalidate exactly their entries", () => {
  const { m, pt: ptA } = setup();
  const c = m.cpu;
  const ptB = new PageTables(m, POOL + 0x40000);
  ptB.block(BigInt(BASE), BASE, 1); // identity map (global) in both
  // The software TLB is direct-mapped on VA[23:12]: keep these VAs off the slots of CODE (1) and the vectors (0).
  const V = 0x1001_0000n, V2 = 0x1001_1000n, G = 0x1001_2000n;
  const P1 = DATA, P2 = DATA + 0x1000, P3 = DATA + 0x2000, P4 = DATA + 0x3000, P5 = DATA + 0x4000;
  for (const p of [P1, P2, P3, P4, P5]) fill(m, p);
  const ng = D.AF | D.AP_RW_EL1 | D.NG, glob = D.AF | D.AP_RW_EL1;
  const aV = ptA.page(V, P1, ng);
  const bV = ptB.page(V, P2, ng);
  const bV2 = ptB.page(V2, P3, ng);
  const aG = ptA.page(G, P4, glob);
  const bG = ptB.page(G, P4, glob);
  const asid = (pt: PageTables, a: number): void => {
    setx(c, 2, BigInt(pt.root) | (BigInt(a) << 48n));
    runAt(m, CODE, [msr(REG.TTBR0_EL1, 2), ISB]);
    assert.equal(m.mmu.asid, a);
  };
  const tlbi = (insn: number, a: number, va: bigint): void => {
    setx(c, 3, (BigInt(a) << 48n) | (va >> 12n));
    runAt(m, CODE, [insn]);
  };

  // Isolation: each ASID sees its own mapping of V, switching back and forth without any TLBI.
  asid(ptA, 1);
  assert.equal(load(m, V), val(P1));
  asid(ptB, 2);
  assert.equal(load(m, V), val(P2));
  asid(ptA, 1);
  assert.equal(load(m, V), val(P1));

  // A changed PTE is not seen while the old entry is cached (permitted), and is after TLBI VAE1 for it.
  ptA.set(aV, BigInt(P5) | ng | D.PAGE);
  assert.equal(load(m, V), val(P1), "stale entry survives without TLBI");
  tlbi(TLBI.VAE1(3), 2, V); // another ASID: ASID 1's entry stays
  assert.equal(load(m, V), val(P1), "VAE1 for ASID 2 leaves ASID 1");
  tlbi(TLBI.VAE1(3), 1, V);
  assert.equal(load(m, V), val(P5), "VAE1 for ASID 1 drops it");

  // ASIDE1: drops ASID 1's non-global entries only.
  ptA.set(aV, BigInt(P1) | ng | D.PAGE);
  assert.equal(load(m, V), val(P5)); // cached
  assert.equal(load(m, G), val(P4)); // global, cached
  asid(ptB, 2);
  assert.equal(load(m, V2), val(P3)); // ASID 2, cached
  ptB.set(bV2, BigInt(P5) | ng | D.PAGE);
  ptA.set(aG, BigInt(P5) | glob | D.PAGE);
  ptB.set(bG, BigInt(P5) | glob | D.PAGE);
  tlbi(TLBI.ASIDE1(3), 1, 0n);
  assert.equal(load(m, V2), val(P3), "ASIDE1 1 leaves ASID 2's entries");
  assert.equal(load(m, G), val(P4), "ASIDE1 leaves global entries");
  asid(ptA, 1);
  assert.equal(load(m, V), val(P1), "ASIDE1 1 dropped ASID 1's entry");

  // VAE1 also drops global entries for the VA, whatever the ASID operand.
  tlbi(TLBI.VAE1(3), 7, G);
  assert.equal(load(m, G), val(P5), "VAE1 drops a global entry");

  // VAAE1 drops the VA for all ASIDs: ASID 2's cached V2 goes, though issued under ASID 1.
  tlbi(TLBI.VAAE1(3), 0, V2);
  asid(ptB, 2);
  assert.equal(load(m, V2), val(P5), "VAAE1 dropped ASID 2's entry");

  // VMALLE1 drops everything.
  assert.equal(load(m, V), val(P2)); // (re)fill ASID 2's entry for V
  ptB.set(bV, BigInt(P3) | ng | D.PAGE);
  ptB.set(bG, BigInt(P1) | glob | D.PAGE);
  assert.equal(load(m, V), val(P2), "stale");
  runAt(m, CODE, [TLBI.VMALLE1()]);
  assert.equal(load(m, V), val(P3));
  assert.equal(load(m, G), val(P1));
});

test("8-bit ASIDs (TCR_EL1.AS = 0) compare only ASID[7:0]; block entries are invalidated by VA", () => {
  const { m, pt } = setup();
  const c = m.cpu;
  setx(c, 1, TCR_48 & ~(1n << 36n));
  runAt(m, CODE, [msr(REG.TCR_EL1, 1), ISB]);
  setx(c, 2, BigInt(pt.root) | (0x1234n << 48n));
  runAt(m, CODE, [msr(REG.TTBR0_EL1, 2), ISB]);
  assert.equal(m.mmu.asid, 0x34);
  const s = pt.block(0x2_0000_0000n, DATA, 2, D.AF | D.AP_RW_EL1 | D.NG);
  fill(m, DATA + 0x5000);
  fill(m, BASE + 0x5000);
  assert.equal(load(m, 0x2_0000_5000n), val(DATA + 0x5000));
  pt.set(s, BigInt(BASE) | D.AF | D.AP_RW_EL1 | D.NG | D.BLOCK);
  assert.equal(load(m, 0x2_0000_5000n), val(DATA + 0x5000), "stale");
  // TLBI VAE1 for another page inside the same 2 MiB block, with ASID bits above 7:0 set.
  setx(c, 3, (0xff34n << 48n) | (0x2_0010_0000n >> 12n));
  runAt(m, CODE, [TLBI.VAE1(3)]);
  assert.equal(load(m, 0x2_0000_5000n), val(BASE + 0x5000));
});
