/**
 * vCPU save/restore (src/cpu/arm64/vcpu-state.ts) and the state block (state.ts): a vCPU driven into a
 * non-trivial state by real instructions is saved, restored into a fresh vCPU elsewhere, and both then run
 * the same code to the same result; bad states are refused and change nothing.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Cpu } from "../../src/cpu/arm64/cpu.js";
import { Mmu } from "../../src/mmu/mmu.js";
import { StateError } from "../../src/common/state.js";
import { restoreVcpu, saveVcpu, type VcpuState } from "../../src/cpu/arm64/vcpu-state.js";
import { SYSREG_SLOTS, sysregKey } from "../../src/cpu/arm64/sysregs.js";
import { el1SysRegs } from "../../src/cpu/arm64/sysregs-el1.js";
import { timerSysRegs } from "../../src/cpu/arm64/sys-timer.js";
import { baseSysRegs } from "../../src/cpu/arm64/system.js";
import { ST_R, VCPU_STATE_BYTES } from "../../src/cpu/arm64/state.js";
import { ADD_X, BASE, NOP, REG, code, machine, msr, runAt, setPc, setx, x, type Machine } from "./system-asm.js";

const CODE = BASE + 0x1000;
// CMP X0, X1 (SUBS XZR, X0, X1); FMOV D2, X0; LDXR X4, [X5]; MSR TPIDR_EL0/VBAR/MAIR/TTBR0 from X6.
const CMP_X0_X1 = 0xeb01001f | 0;
const FMOV_D2_X0 = 0x9e670002 | 0;
const LDXR_X4_X5 = 0xc85f7ca4 | 0;
const TPIDR_EL0: [number, number, number, number, number] = [3, 3, 13, 0, 2];

function busy(m: Machine): void {
  const c = m.cpu;
  setx(c, 0, 0x1122334455667788n); setx(c, 1, 0x1122334455667788n); setx(c, 5, BASE + 0x3000);
  setx(c, 6, 0x0123456789abcdefn); setx(c, 7, BASE + 0x8000);
  runAt(m, CODE, [CMP_X0_X1, FMOV_D2_X0, LDXR_X4_X5, msr(TPIDR_EL0, 6), msr(REG.MAIR_EL1, 6), msr(REG.VBAR_EL1, 7),
    msr(REG.TTBR0_EL1, 6), ADD_X(8, 0, 1)]);
}

test("the state block: registers live at documented offsets of the block the vCPU was given", () => {
  const buf = new SharedArrayBuffer(3 * VCPU_STATE_BYTES);
  const mmu = new Mmu(new ArrayBuffer(1 << 20), BASE);
  const c = new Cpu(mmu, undefined, { buffer: buf, offset: 2 * VCPU_STATE_BYTES });
  setx(c, 3, 0xdeadbeefn);
  assert.equal(new Int32Array(buf, 2 * VCPU_STATE_BYTES + ST_R, 8)[6], 0xdeadbeef | 0, "X3 lo at block + 0x18");
  assert.throws(() => new Cpu(mmu, undefined, { buffer: buf, offset: 100 }), RangeError);
  assert.throws(() => new Cpu(mmu, undefined, { buffer: buf, offset: 3 * VCPU_STATE_BYTES }), RangeError);
});

test("every saved system register is named by its real encoding (cross-checked with the MRS/MSR tables)", () => {
  const defs = [...el1SysRegs(), ...timerSysRegs(), ...baseSysRegs()];
  const keys = new Set<string>();
  const missing: string[] = [];
  for (const [name, , op0, op1, crn, crm, op2] of SYSREG_SLOTS) {
    keys.add(sysregKey(op0, op1, crn, crm, op2));
    const d = defs.find((r) => r.name === name);
    if (d === undefined) { missing.push(name); continue; }
    assert.deepEqual([d.op0, d.op1, d.crn, d.crm, d.op2], [op0, op1, crn, crm, op2], name);
  }
  // CNTVOFF_EL2 is the hypervisor's (EL2) register: no EL1 MRS/MSR, its encoding is the Arm ARM's (D17.10.15).
  assert.deepEqual(missing, ["CNTVOFF_EL2"]);
  assert.equal(keys.size, SYSREG_SLOTS.length, "no two registers share a key");
  assert.ok(keys.has("S3_0_C1_C0_0"), "SCTLR_EL1");
});

test("save → restore into a fresh vCPU → both run on identically; save(restore(save)) is the same state", () => {
  const a = machine();
  busy(a);
  const s1 = saveVcpu(a.cpu);
  assert.notEqual(s1.exclusive, null, "the LDXR left the monitor open");
  assert.equal(s1.nzcv, 0b0110, "Z and C from the CMP");
  assert.deepEqual(s1.sysregs[sysregKey(3, 3, 13, 0, 2)], [0x89abcdef | 0, 0x01234567]);

  const b = machine();
  const clone = structuredClone(s1);
  restoreVcpu(b.cpu, clone, 4 << 20);
  assert.deepEqual(saveVcpu(b.cpu), s1);
  // Both run the same code from here (memory identical in both: it is the same program and data).
  b.dv.setBigUint64(0x3000, a.dv.getBigUint64(0x3000, true), true);
  const tail = [0xb2400000 | 0 /* ORR X0, X0, #1 */, ADD_X(9, 8, 7), NOP];
  for (const m of [a, b]) { code(m, CODE + 0x100, tail); setPc(m.cpu, CODE + 0x100); m.cpu.run(3); }
  assert.deepEqual(saveVcpu(b.cpu), saveVcpu(a.cpu));
  assert.equal(x(b.cpu, 9), x(a.cpu, 9));
});

test("bad states are refused with StateError naming the field, and leave the vCPU untouched", () => {
  const a = machine();
  busy(a);
  const good = saveVcpu(a.cpu);
  const b = machine();
  const before = saveVcpu(b.cpu);
  const bad: [string, (s: VcpuState) => void][] = [
    ["version", (s) => { (s as { version: number }).version = 2; }],
    ["r", (s) => { s.r = new Int32Array(10); }],
    ["r[31]", (s) => { s.r[62] = 1; }],
    ["r.pc", (s) => { s.r[66] = 2; }],
    ["v", (s) => { s.v = new Uint8Array(16); }],
    ["el", (s) => { s.el = 2; }],
    ["nzcv", (s) => { s.nzcv = 16; }],
    ["exclusive.off", (s) => { s.exclusive = { off: 4 << 20, size: 8, lo: 0, hi: 0 }; }],
    ["exclusive.size", (s) => { s.exclusive = { off: 0, size: 3, lo: 0, hi: 0 }; }],
    ["sysregs.S3_7_C15_C15_7", (s) => { s.sysregs["S3_7_C15_C15_7"] = [0, 0]; }],
    ["sysregs.S3_0_C1_C0_0[1]", (s) => { s.sysregs["S3_0_C1_C0_0"] = [0, 2 ** 40]; }],
  ];
  for (const [field, spoil] of bad) {
    const s = structuredClone(good);
    spoil(s);
    assert.throws(() => restoreVcpu(b.cpu, s, 4 << 20), (e: unknown) => e instanceof StateError && e.field === field && e.code === "STATE_INVALID", field);
    assert.deepEqual(saveVcpu(b.cpu), before, `unchanged after refusing ${field}`);
  }
});
