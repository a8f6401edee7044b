/**
 * The P2M and stage 2 with crafted inputs: frames the balloon gives back (XENMEM_decrease_reservation) leave
 * the guest's physical address space — zeroed, counted free in the pool, faulting for loads, stores,
 * instruction fetches and page-table walks (also through TLB entries made before the release), refused to
 * hypercall buffers and grants — and come back zeroed with XENMEM_populate_physmap. The CPU side is a real
 * Cpu running instructions with the MMU on (identity-mapped 1 GiB block, or 4 KiB pages through tables), with
 * the stage-2 abort delivered as the machine's EL2 handler does (XenDomain.stage2Abort).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ADD_X, BASE, D, ISB, LDR_X, NOP, PageTables, REG, STR_X, TCR_48, type Machine, code, machine, msr, pc,
  peek64, poke64, runAt as runRaw, setPc, setx, spinVectors, sysreg, x } from "../unit/system-asm.js";
import { ELR_EL1, ESR_EL1, FAR_EL1, SCTLR_EL1, SPSR_EL1 } from "../../src/cpu/arm64/sysregs.js";
import { EC_DABT_LOWER, EC_DABT_SAME, EC_IABT_SAME, STOP_BUDGET, STOP_STAGE2 } from "../../src/cpu/arm64/cpu.js";
import { ACC_WRITE, FSC_STAGE2, MMU_FAULT, Mmu } from "../../src/mmu/mmu.js";
import { FramePool } from "../../src/hv/frame-pool.js";
import { P2m, P2M_MAPPED, P2M_NO_FRAMES, P2M_NOT_MAPPED, P2M_NOT_RAM, P2M_OK, P2M_OVER_MAX } from "../../src/xen/p2m.js";
import { XenDomain, type XenHost } from "../../src/xen/domain.js";
import { DOMID_SELF, EFAULT, EINVAL, HC_memory_op, HC_vcpu_op, HC_xen_version } from "../../src/xen/abi.js";
import { VCPUOP_register_vcpu_info } from "../../src/xen/vcpu-op.js";
import { GNTST_bad_page } from "../../src/xen/grant-table.js";

const MiB = 1 << 20;
const VBAR = BASE, CODE = BASE + 0x1000, POOL = BASE + 0x100000, DATA = BASE + 0x200000;
/** Hypercall argument pages (mapped for the whole test). */
const ARG = BASE + 0x300000, ARR = BASE + 0x301000;
const MAIR = 0xff;
const gfnOf = (pa: number): number => pa / 4096;

// -------------------------------------------------------------------------------------------------------------
// The P2M alone

test("P2M: release and populate validate every frame and move exact counts in the pool", () => {
  const buf = new Uint8Array(4 * MiB);
  const ramBytes = 3 * MiB, ramFrames = ramBytes / 4096, first = gfnOf(BASE);
  const pool = new FramePool(ramFrames + 10);
  assert.ok(pool.claim(ramFrames));
  const p = new P2m(buf, BASE, ramBytes, pool);
  assert.equal(p.pages, ramFrames);
  assert.equal(pool.freeFrames, 10);

  // Out of range, the Xen area, and non-integers are not RAM; nothing moves.
  for (const g of [first - 1, first + ramFrames, gfnOf(BASE + 3 * MiB + 4096), NaN, Infinity, 1.5, -1]) {
    assert.equal(p.release(g, 1, []), P2M_NOT_RAM, `release ${g}`);
    assert.equal(p.populate(g, 1), P2M_NOT_RAM, `populate ${g}`);
  }
  assert.equal(p.release(first + ramFrames - 1, 2, []), P2M_NOT_RAM, "an extent running past RAM");
  assert.equal(p.isMapped(gfnOf(BASE + 3 * MiB)), true, "the Xen area stays mapped");
  assert.equal(pool.freeFrames, 10);

  // A frame with data, and an untouched one: both come back zero; only the first needed writing.
  const g = first + 100;
  buf.fill(0xaa, 100 * 4096, 101 * 4096);
  assert.equal(p.release(g, 2, []), P2M_OK);
  assert.equal(p.pages, ramFrames - 2);
  assert.equal(pool.freeFrames, 12, "exactly the released frames are free");
  assert.equal(pool.claimedFrames, ramFrames - 2);
  assert.equal(buf.subarray(100 * 4096, 102 * 4096).some((b) => b !== 0), false, "scrubbed");
  assert.deepEqual([p.scrubbedFrames, p.zeroFrames], [1, 1]);
  assert.deepEqual([p.isMapped(g), p.isMapped(g + 1), p.isMapped(g + 2)], [false, false, true]);
  assert.equal(p.releasedFrames, 2);

  // Twice is refused, whole extents only.
  assert.equal(p.release(g, 1, []), P2M_NOT_MAPPED);
  assert.equal(p.release(g + 1, 2, []), P2M_NOT_MAPPED, "half of this extent is gone already");
  assert.equal(p.isMapped(g + 2), true, "and its other frame stays");
  assert.equal(pool.freeFrames, 12);

  // Populate: not over a mapped frame, not past max_pages, not past the pool; zeroed.
  assert.equal(p.populate(g + 1, 2), P2M_MAPPED, "g+2 is mapped");
  p.maxPages = ramFrames - 1;
  assert.equal(p.populate(g, 2), P2M_OVER_MAX);
  p.maxPages = ramFrames;
  assert.ok(pool.claim(12));
  assert.equal(p.populate(g, 1), P2M_NO_FRAMES);
  pool.release(12);
  buf[100 * 4096 + 5] = 7; // the host wrote a released frame: populate zeroes it again
  assert.equal(p.populate(g, 1), P2M_OK);
  assert.equal(buf[100 * 4096 + 5], 0);
  assert.equal(pool.freeFrames, 11);
  assert.equal(p.pages, ramFrames - 1);
  assert.equal(p.populate(g, 1), P2M_MAPPED, "a second populate is refused");
  assert.equal(p.populate(g + 1, 1), P2M_OK);
  assert.equal(pool.freeFrames, 10);
  assert.equal(p.pages, ramFrames);
  assert.equal(pool.freeFrames + pool.claimedFrames, pool.totalFrames);
});

// -------------------------------------------------------------------------------------------------------------
// Stage 2 on a running vCPU

class Host implements XenHost {
  logs: string[] = [];
  setUpcall(): void {}
  counter(): number { return 0; }
  log(line: string): void { this.logs.push(line); }
  shutdown(): void {}
  block(): void {}
  yield(): void {}
}

interface Rig { m: Machine; pt: PageTables; d: XenDomain; pool: FramePool; other: Mmu; host: Host }

/**
 * vCPU 0: a Cpu with the MMU on (an identity 1 GiB block over RAM at EL1, VBAR = BASE with "B ." vectors).
 * vCPU 1: a second MMU (stage 1 off) that makes the hypercalls. Both have the P2M as stage 2 and are peers, as
 * in the machine; vCPU 0's stage-2 aborts go to XenDomain.stage2Abort, as the machine's EL2 handler sends them.
 */
function rig(): Rig {
  const m = machine(8 * MiB);
  spinVectors(m, VBAR);
  const pt = new PageTables(m, POOL);
  pt.block(BigInt(BASE), BASE, 1);
  const c = m.cpu;
  setx(c, 0, VBAR); setx(c, 1, TCR_48); setx(c, 2, pt.root); setx(c, 4, MAIR);
  setx(c, 3, c.sys[SCTLR_EL1] | 1);
  runAt(m, CODE, [msr(REG.VBAR_EL1, 0), msr(REG.TCR_EL1, 1), msr(REG.TTBR0_EL1, 2), msr(REG.MAIR_EL1, 4),
    msr(REG.SCTLR_EL1, 3), ISB]);
  assert.equal(m.mmu.mmuOn, true);
  const host = new Host();
  const pool = new FramePool(4096);
  assert.ok(pool.claim(7 * 256));
  const d = new XenDomain({ ram: m.mmu.ram, ramBase: BASE, vcpus: 2, host, pool });
  const other = new Mmu(m.mmu.ram, BASE, m.mmu.codePage);
  const peers = [m.mmu, other];
  for (const u of peers) { u.stage2 = d.account.map; u.peers = peers; }
  c.exits = true; // a stage-2 fault ends run() with STOP_STAGE2, as on the board
  domain = d;
  return { m, pt, d, pool, other, host };
}

/** The domain of the last rig(): vCPU 0's stage-2 exits go to its stage2Abort, as the board sends them. */
let domain: XenDomain | null = null;
/** As the board's runVcpu does with an exit: the hypervisor handles a stage-2 fault (Xen injects an abort). */
function exit(m: Machine): void {
  if (m.cpu.stop !== STOP_STAGE2) return;
  m.cpu.stop = STOP_BUDGET;
  domain!.stage2Abort(m.cpu);
}
function runAt(m: Machine, pa: number, words: number[], steps = words.length): number {
  const n = runRaw(m, pa, words, steps);
  exit(m);
  return n;
}
function run1(m: Machine): void { m.cpu.run(1); exit(m); }

const TWO32 = 4294967296;
/** Hypercall from vCPU 1 (stage 1 off: pointers are guest-physical). */
function hc(r: Rig, nr: number, args: number[]): number {
  const regs = new Int32Array(80);
  args.forEach((a, i) => { regs[2 * i] = a >>> 0; regs[2 * i + 1] = Math.floor(a / TWO32) | 0; });
  regs[32] = nr;
  r.d.hypercall(1, regs, r.other);
  return regs[1] === -1 ? regs[0] : (regs[1] >>> 0) * TWO32 + (regs[0] >>> 0);
}
/** XENMEM_decrease_reservation (1) or populate_physmap (6) of order-0 frames at guest-physical `pas`. */
function resv(r: Rig, cmd: 1 | 6, pas: number[]): number {
  pas.forEach((pa, i) => r.m.dv.setBigUint64(ARR - BASE + i * 8, BigInt(gfnOf(pa)), true));
  const o = ARG - BASE;
  r.m.dv.setBigUint64(o, BigInt(ARR), true);
  r.m.dv.setBigUint64(o + 8, BigInt(pas.length), true);
  r.m.dv.setUint32(o + 16, 0, true); r.m.dv.setUint32(o + 20, 0, true);
  r.m.dv.setUint16(o + 24, DOMID_SELF, true);
  return hc(r, HC_memory_op, [cmd, ARG]);
}

/** Expects vCPU 0 at the EL1 synchronous vector with Xen's injected abort (ISS = 0) for `far` at `elr`. */
function expectInjected(m: Machine, ec: number, far: number, elr: number): void {
  const esr = Number(sysreg(m.cpu, ESR_EL1));
  assert.equal(esr >>> 26, ec, `EC ${(esr >>> 26).toString(16)}`);
  assert.equal((esr >>> 25) & 1, 1, "IL");
  assert.equal(esr & 0x1ffffff, 0, "ISS 0, as Xen's inject_abt64_exception");
  assert.equal(sysreg(m.cpu, FAR_EL1), BigInt(far), "FAR = the faulting VA");
  assert.equal(sysreg(m.cpu, ELR_EL1), BigInt(elr), "ELR = the faulting instruction");
  assert.equal(pc(m.cpu), BigInt(VBAR + 0x200), "current EL, SP_ELx synchronous vector");
  assert.equal(m.cpu.daif, 0xf);
}

/** vCPU 0 runs LDR X1, [X0] at CODE with X0 = va; returns X1. */
function load(m: Machine, va: number): bigint {
  setx(m.cpu, 0, va);
  setx(m.cpu, 1, 0);
  runAt(m, CODE, [LDR_X(1, 0)]);
  return x(m.cpu, 1);
}

test("stage 2: a released frame faults for loads and stores, also through a TLB entry made before; populate maps it back zeroed", () => {
  const r = rig();
  const { m, d, pool } = r;
  poke64(m, DATA, 0x1122334455667788n);
  assert.equal(load(m, DATA), 0x1122334455667788n);
  // The TLB now maps DATA: a hit needs no walk.
  assert.equal(m.mmu.read32(DATA, 0), 0x55667788);
  const free0 = pool.freeFrames, pages0 = d.account.pages;

  assert.equal(resv(r, 1, [DATA]), 1);
  assert.equal(pool.freeFrames, free0 + 1, "exactly one frame more is free");
  assert.equal(d.account.pages, pages0 - 1);
  assert.equal(peek64(m, DATA), 0n, "zeroed");
  assert.equal(d.account.isMapped(gfnOf(DATA)), false);

  // The MMU's own paths: each faults at stage 2 (the TLB entry made above is gone).
  for (const [what, f] of [
    ["read", () => m.mmu.read32(DATA, 0)], ["write", () => m.mmu.write64(DATA + 8, 0, 1, 2)],
    ["exclusive", () => m.mmu.ramOffset(DATA, 0, ACC_WRITE)],
  ] as const) {
    assert.throws(f, (e) => e === MMU_FAULT, what);
    assert.equal(m.mmu.faultStage2, 1, what);
    assert.equal(m.mmu.faultStatus, FSC_STAGE2, what);
    assert.equal(m.mmu.faultS1ptw, 0, what);
    assert.equal(Math.floor(m.mmu.faultIpa / 4096), gfnOf(DATA), what);
  }
  assert.equal(peek64(m, DATA + 8), 0n, "the store did not land");

  // An instruction: the guest takes the abort Xen injects.
  const aborts0 = d.stage2Aborts;
  setx(m.cpu, 0, DATA); setx(m.cpu, 1, 0x99);
  runAt(m, CODE, [LDR_X(1, 0)], 1);
  expectInjected(m, EC_DABT_SAME, DATA, CODE);
  assert.equal(x(m.cpu, 1), 0x99n, "the load did not complete");
  setx(m.cpu, 0, DATA + 0x10);
  runAt(m, CODE, [STR_X(1, 0)], 1);
  expectInjected(m, EC_DABT_SAME, DATA + 0x10, CODE);
  assert.equal(d.stage2Aborts, aborts0 + 2);
  assert.match(r.host.logs.join("\n"), /stage-2 abort: read at gpa 40200000/);
  assert.equal(peek64(m, DATA + 0x10), 0n);

  // Given back twice: refused, the pool does not move.
  assert.equal(resv(r, 1, [DATA]), 0);
  assert.equal(pool.freeFrames, free0 + 1);
  // A batch stops at the first bad extent; the good ones before it count.
  assert.equal(resv(r, 1, [DATA + 0x1000, DATA, DATA + 0x2000]), 1);
  assert.equal(pool.freeFrames, free0 + 2);

  // Populate: mapped again, zeroed, the pool pays for it; a second populate is refused.
  assert.equal(resv(r, 6, [DATA, DATA + 0x1000]), 2);
  assert.equal(pool.freeFrames, free0);
  assert.equal(d.account.pages, pages0);
  assert.equal(resv(r, 6, [DATA]), 0);
  assert.equal(load(m, DATA), 0n, "readable again, and zero");
  setx(m.cpu, 0, DATA); setx(m.cpu, 1, 0x42);
  runAt(m, CODE, [STR_X(1, 0)]);
  assert.equal(peek64(m, DATA), 0x42n, "writable again");
  assert.equal(pool.freeFrames + pool.claimedFrames, pool.totalFrames);
});

test("stage 2: instruction fetch from a released frame (decoded code dropped) and a page-table walk through one", () => {
  const r = rig();
  const { m } = r;
  // Code in its own frame, run once so it is decoded and in the TLB.
  const FN = DATA + 0x4000;
  code(m, FN, [ADD_X(2, 2, 1), NOP]);
  setx(m.cpu, 2, 0);
  setPc(m.cpu, FN);
  run1(m);
  assert.equal(x(m.cpu, 2), 1n);
  assert.equal(m.mmu.codePage[(FN - BASE) >>> 12], 1, "decoded");
  assert.equal(resv(r, 1, [FN]), 1);
  assert.throws(() => m.mmu.fetchPage(FN, 0), (e) => e === MMU_FAULT);
  assert.equal(m.mmu.faultFetch, 1);
  setPc(m.cpu, FN);
  run1(m);
  expectInjected(m, EC_IABT_SAME, FN, FN);
  assert.equal(x(m.cpu, 2), 1n, "nothing ran from the released frame");
  // Populated again it is zeros: the old decoded ADD must not run (0x00000000 is UDF: Undefined, EC 0).
  assert.equal(resv(r, 6, [FN]), 1);
  setPc(m.cpu, FN);
  run1(m);
  assert.equal(x(m.cpu, 2), 1n, "the stale decode did not run");
  assert.equal(Number(sysreg(m.cpu, ESR_EL1)) >>> 26, 0, "UDF at the zeroed frame");

  // 4 KiB mappings whose level-3 table lives in a frame that is then given back: a walk through it faults at
  // stage 2. (A TLB entry made by an earlier walk through that table maps a frame that is still the guest's;
  // it goes with the guest's own TLBI, as it must after changing its tables.)
  const VA = 0x10_0000_0000, VA2 = VA + 0x1000;
  const slot = r.pt.page(BigInt(VA), DATA, D.AF | D.AP_RW_EL1);
  r.pt.page(BigInt(VA2), DATA + 0x1000, D.AF | D.AP_RW_EL1);
  poke64(m, DATA, 0x77n);
  assert.equal(load(m, VA), 0x77n);
  const table = slot & -4096;
  assert.equal(resv(r, 1, [table]), 1);
  setx(m.cpu, 0, VA2); setx(m.cpu, 1, 0);
  runAt(m, CODE, [LDR_X(1, 0)], 1);
  expectInjected(m, EC_DABT_SAME, VA2, CODE);
  assert.equal(m.mmu.faultS1ptw, 1, "the fault was on the stage-1 walk");
  assert.equal(Math.floor(m.mmu.faultIpa / 4096), gfnOf(table));
  assert.equal(x(m.cpu, 1), 0n);
});

test("stage 2 at EL0: the abort is 'from a lower EL' at the EL0 vector", () => {
  const r = rig();
  const { m } = r;
  assert.equal(resv(r, 1, [DATA]), 1);
  // User pages for code and data (the identity block is EL1-only); the data page is the released frame.
  const UCODE = 0x20_0000_0000, UDATA = 0x20_0000_1000;
  r.pt.page(BigInt(UCODE), CODE + 0x1000, D.AF | D.AP_RO_ALL);
  r.pt.page(BigInt(UDATA), DATA, D.AF | D.AP_RW_ALL | D.UXN | D.PXN);
  code(m, CODE + 0x1000, [LDR_X(1, 0)]);
  m.mmu.flushAll();
  // ERET to EL0t at UCODE (SPSR_EL1.M = 0), then run the load there.
  m.cpu.sys[SPSR_EL1] = 0; m.cpu.sys[SPSR_EL1 + 1] = 0;
  m.cpu.sys[ELR_EL1] = UCODE; m.cpu.sys[ELR_EL1 + 1] = UCODE / TWO32;
  m.cpu.eret();
  m.cpu.jumped = 0;
  assert.equal(m.cpu.el, 0);
  setx(m.cpu, 0, UDATA);
  run1(m);
  expectAtLowerVector(m, UDATA, UCODE);
});

function expectAtLowerVector(m: Machine, far: number, elr: number): void {
  const esr = Number(sysreg(m.cpu, ESR_EL1));
  assert.equal(esr >>> 26, EC_DABT_LOWER, `EC ${(esr >>> 26).toString(16)}`);
  assert.equal(esr & 0x1ffffff, 0);
  assert.equal(sysreg(m.cpu, FAR_EL1), BigInt(far));
  assert.equal(sysreg(m.cpu, ELR_EL1), BigInt(elr));
  assert.equal(pc(m.cpu), BigInt(VBAR + 0x400), "lower EL (AArch64) synchronous vector");
  assert.equal(m.cpu.el, 1);
}

test("host side: hypercall buffers, grants, shared_info and vcpu_info refuse released frames", () => {
  const r = rig();
  const { m, d } = r;
  assert.equal(resv(r, 1, [DATA]), 1);
  // A hypercall writing into a released frame: -EFAULT, nothing written.
  assert.equal(hc(r, HC_xen_version, [1, DATA]), -EFAULT);
  assert.equal(peek64(m, DATA), 0n);
  // An extent list inside a released frame stops the batch at 0.
  const o = ARG - BASE;
  m.dv.setBigUint64(o, BigInt(DATA), true);
  m.dv.setBigUint64(o + 8, 1n, true);
  assert.equal(hc(r, HC_memory_op, [1, ARG]), 0);
  // shared_info cannot be placed there, and the frame holding it cannot be given back.
  const xatp = (gpfn: number): number => {
    m.dv.setUint16(o, DOMID_SELF, true); m.dv.setUint16(o + 2, 0, true); m.dv.setUint32(o + 4, 0, true);
    m.dv.setBigUint64(o + 8, 0n, true); m.dv.setBigUint64(o + 16, BigInt(gpfn), true);
    return hc(r, HC_memory_op, [7, ARG]);
  };
  assert.equal(xatp(gfnOf(DATA)), -EINVAL);
  const SI = DATA + 0x5000;
  assert.equal(xatp(gfnOf(SI)), 0);
  assert.equal(resv(r, 1, [SI]), 0, "the shared_info frame stays");
  // vcpu_info likewise (VCPUOP_register_vcpu_info: mfn @0, offset @8).
  const vcpuInfo = (pa: number): number => {
    m.dv.setBigUint64(o, BigInt(gfnOf(pa)), true); m.dv.setUint32(o + 8, 0, true); m.dv.setUint32(o + 12, 0, true);
    return hc(r, HC_vcpu_op, [VCPUOP_register_vcpu_info, 0, ARG]);
  };
  assert.equal(vcpuInfo(DATA), -EINVAL);
  assert.equal(vcpuInfo(DATA + 0x6000), 0);
  assert.equal(resv(r, 1, [DATA + 0x6000]), 0, "the vcpu_info frame stays");
  assert.equal(d.account.isMapped(gfnOf(DATA + 0x6000)), true);
  // A grant naming a released frame: a backend gets GNTST_bad_page.
  const win = d.layout.gnttabBase;
  const gx = (xatpSpace: number, idx: number, gpfn: number): number => {
    m.dv.setUint16(o, DOMID_SELF, true); m.dv.setUint32(o + 4, xatpSpace, true);
    m.dv.setBigUint64(o + 8, BigInt(idx), true); m.dv.setBigUint64(o + 16, BigInt(gpfn), true);
    return hc(r, HC_memory_op, [7, ARG]);
  };
  assert.equal(gx(1, 0, gfnOf(win)), 0);
  m.dv.setUint16(win - BASE + 8 * 3, 1, true); // GTF_permit_access
  m.dv.setUint16(win - BASE + 8 * 3 + 2, 0, true); // to dom0
  m.dv.setUint32(win - BASE + 8 * 3 + 4, gfnOf(DATA), true);
  assert.equal(d.gnttab.grantedPage(3, 0, true), GNTST_bad_page);
  assert.equal(resv(r, 6, [DATA]), 1);
  assert.equal(d.gnttab.grantedPage(3, 0, true), DATA - BASE, "granted again once populated");
});
