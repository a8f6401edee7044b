/**
 * Save/restore of the Xen guest-ABI state (XenDomain.save/restore composing shared_info and vcpu_info
 * registrations, event channels, the grant table with its v1 shadows, HVM params and runstate areas) and of the
 * xenbus ring's host side. A domain is driven through hypercalls into a non-trivial state, its RAM copied and
 * its state restored into a fresh domain built with the same options: the restored one must save the same,
 * re-drive the upcall lines and answer every later hypercall exactly as the original does. Bad states are
 * refused with StateError and leave the target domain as it was (including parts a later refusal rolled back).
 * Same test MMU as hypercalls.test.ts: stage 1 off, guest VA = PA.
 */
import { test } from "node:test";
import { createHash } from "node:crypto";
import assert from "node:assert/strict";
import { Mmu } from "../../src/mmu/mmu.js";
import { XenDomain, type XenDomainState, type XenHost } from "../../src/xen/domain.js";
import type { HostEndpoint } from "../../src/xen/event-channel.js";
import { DOMID_SELF, HC_event_channel_op, HC_grant_table_op, HC_hvm_op, HC_memory_op, HC_vcpu_op, HC_vm_assist }
  from "../../src/xen/abi.js";
import { XenbusRing, XENSTORE_RING_SIZE, XS_RING_RSP, XS_RING_RSP_CONS, XS_RING_RSP_PROD,
  type XenbusPeer, type XenbusRingState } from "../../src/xen/xenbus-ring.js";
import { ByteRing } from "../../src/xen/byte-ring.js";
import { encodeMessage } from "../../src/xenstore/index.js";
import { StateError } from "../../src/common/state.js";
import { fuzzRestore } from "../state-mutate.js";

const BASE = 0x40000000, RAM = 8 << 20;
const ARG = BASE + 0x100000, ARR = BASE + 0x101000;
const SI_GFN = (BASE + 0x200000) / 4096, VI_GFN = (BASE + 0x201000) / 4096;
const TWO32 = 4294967296;
const off = (gpa: number): number => gpa - BASE;

class FakeHost implements XenHost {
  lines = new Map<number, boolean>();
  raised: number[] = [];
  setUpcall(v: number, level: boolean): void { this.lines.set(v, level); if (level) this.raised.push(v); }
  counter(): number { return 62_500_000; }
  log(): void {}
  shutdown(): void {}
  block(): void {}
  yield(): void {}
}

interface H { d: XenDomain; mmu: Mmu; dv: DataView; u8: Uint8Array; host: FakeHost; ram: SharedArrayBuffer }

function setup(ram = new SharedArrayBuffer(RAM), restoring = false): H {
  const host = new FakeHost();
  const d = new XenDomain({ ram, ramBase: BASE, vcpus: 3, host, store: "late", console: true, restoring });
  return { d, mmu: new Mmu(ram, BASE), dv: new DataView(ram), u8: new Uint8Array(ram), host, ram };
}

function hc(h: H, nr: number, args: number[], vcpu = 0): number {
  const r = new Int32Array(80);
  args.forEach((a, i) => { r[2 * i] = a >>> 0; r[2 * i + 1] = Math.floor(a / TWO32) | 0; });
  r[32] = nr;
  h.d.hypercall(vcpu, r, h.mmu);
  return r[1] === -1 ? r[0] : (r[1] >>> 0) * TWO32 + (r[0] >>> 0);
}

const xatp = (h: H, space: number, idx: number, gpfn: number): number => {
  h.dv.setUint16(off(ARG), DOMID_SELF, true); h.dv.setUint16(off(ARG) + 2, 0, true);
  h.dv.setUint32(off(ARG) + 4, space, true);
  h.dv.setBigUint64(off(ARG) + 8, BigInt(idx), true); h.dv.setBigUint64(off(ARG) + 16, BigInt(gpfn), true);
  return hc(h, HC_memory_op, [7, ARG]);
};
/** EVTCHNOP `cmd` with u32 arguments at ARG; returns [rc, the struct's u32 words after the call]. */
function evop(h: H, cmd: number, words: number[]): [number, number[]] {
  words.forEach((w, i) => h.dv.setUint32(off(ARG) + 4 * i, w, true));
  const rc = hc(h, HC_event_channel_op, [cmd, ARG]);
  return [rc, Array.from({ length: 6 }, (_, i) => h.dv.getUint32(off(ARG) + 4 * i, true))];
}
const SELF2 = DOMID_SELF | (DOMID_SELF << 16);

interface Busy { h: H; loopA: number; loopB: number; timer: number; ipi: number; eps: Map<number, HostEndpoint>; notified: number[] }

/** A domain after a Linux-like boot plus extra: shared_info mapped, vcpu_info for vCPUs 0-1 (2 left on its
 * dummy), loopback pair, VIRQ timer on vCPU 1, IPI on vCPU 2, store and console connected to host endpoints,
 * grant frames mapped/moved/unmapped (a v1 shadow), a runstate area, vm_assist. */
function busy(): Busy {
  const h = setup();
  assert.equal(xatp(h, 0, 0, SI_GFN), 0);
  for (let v = 0; v < 2; v++) {
    h.dv.setBigUint64(off(ARG), BigInt(VI_GFN), true); h.dv.setUint32(off(ARG) + 8, v * 64, true);
    assert.equal(hc(h, HC_vcpu_op, [10, v, ARG]), 0);
  }
  const [, a1] = evop(h, 6, [SELF2]);
  const loopA = a1[1];
  const [, b1] = evop(h, 0, [DOMID_SELF, loopA]);
  const loopB = b1[2];
  const [rcT, t] = evop(h, 1, [0, 1]);
  assert.equal(rcT, 0);
  const [rcI, ip] = evop(h, 7, [2]);
  assert.equal(rcI, 0);
  const notified: number[] = [];
  const eps = new Map<number, HostEndpoint>();
  const storeEp: HostEndpoint = { remoteDom: 0, notify: () => notified.push(h.d.storePort) };
  assert.equal(h.d.connectStore(storeEp), 0);
  eps.set(h.d.storePort, storeEp);
  const consEp: HostEndpoint = { remoteDom: 0, notify: () => notified.push(h.d.consolePort) };
  assert.equal(h.d.evtchn.hostBind(h.d.consolePort, consEp), 0);
  eps.set(h.d.consolePort, consEp);
  // Mask the IPI port, make it pending.
  const si = off(SI_GFN * 4096);
  h.u8[si + 560 + (ip[1] >> 3)] |= 1 << (ip[1] & 7);
  assert.equal(evop(h, 4, [ip[1]])[0], 0);
  // Grant table: frames 0, 1, 3 mapped; frame 1's entries written, then it is moved away and unmapped.
  const win = h.d.layout.gnttabBase / 4096;
  assert.equal(xatp(h, 1, 0, win), 0);
  assert.equal(xatp(h, 1, 1, win + 1), 0);
  h.dv.setUint32(off((win + 1) * 4096) + 8, 0x12345678, true);
  assert.equal(xatp(h, 1, 3, win + 3), 0);
  h.d.gnttab.unmapFrame(1);
  h.u8.fill(0x77, off((win + 1) * 4096), off((win + 2) * 4096)); // the old frame's RAM is reused
  // Runstate area for vCPU 1; vm_assist.
  h.dv.setBigUint64(off(ARG), BigInt(ARR), true);
  assert.equal(hc(h, HC_vcpu_op, [5, 1, ARG]), 0);
  assert.equal(hc(h, HC_vm_assist, [0, 5]), 0);
  // Console output the back-end has not read yet: the magic pages are RAM and must survive the restore.
  h.u8.set(new TextEncoder().encode("unread output"), off(h.d.consoleGfn * 4096) + 1024);
  h.dv.setUint32(off(h.d.consoleGfn * 4096) + 3084, 13, true);
  return { h, loopA, loopB, timer: t[2], ipi: ip[1], eps, notified };
}

/** A fresh domain over a copy of `src`'s RAM (what the RAM restore does before the components load). */
function fresh(src: H): H {
  const ram = new SharedArrayBuffer(RAM);
  new Uint8Array(ram).set(src.u8);
  const h = setup(ram, true);
  assert.deepEqual(h.u8.subarray(off(h.d.consoleGfn * 4096), off(h.d.consoleGfn * 4096) + 4096),
    src.u8.subarray(off(h.d.consoleGfn * 4096), off(h.d.consoleGfn * 4096) + 4096), "restoring: the magic pages are left alone");
  return h;
}

/** The same hypercalls and host events on a domain; returns every answer and the RAM afterwards. */
function drive(b: Busy, h: H): unknown[] {
  const out: unknown[] = [];
  for (let p = 0; p < 12; p++) out.push(evop(h, 5, [DOMID_SELF, p]));
  out.push(evop(h, 4, [b.loopB]), evop(h, 4, [b.loopA]), evop(h, 9, [b.ipi]), evop(h, 4, [b.h.d.storePort]));
  out.push(h.d.evtchn.raiseVirq(0, 1), h.d.evtchn.hostNotify(h.d.consolePort), evop(h, 8, [b.loopA, 2]));
  out.push(evop(h, 1, [0, 1]), evop(h, 7, [1]), evop(h, 3, [b.loopB]), evop(h, 6, [SELF2]));
  h.dv.setBigUint64(off(ARG), BigInt(VI_GFN), true); h.dv.setUint32(off(ARG) + 8, 64, true);
  out.push(hc(h, HC_vcpu_op, [10, 1, ARG])); // already registered: -EINVAL
  h.dv.setUint32(off(ARG) + 8, 128, true);
  out.push(hc(h, HC_vcpu_op, [10, 2, ARG])); // vCPU 2 registers now
  h.dv.setUint16(off(ARG), DOMID_SELF, true);
  out.push(hc(h, HC_grant_table_op, [6, ARG, 1]), h.dv.getUint32(off(ARG) + 4, true));
  const win = h.d.layout.gnttabBase / 4096;
  out.push(xatp(h, 1, 1, win + 6)); // frame 1 comes back from its shadow
  out.push(h.dv.getUint32(off((win + 6) * 4096) + 8, true));
  for (const idx of [0, 1, 2, 17, 18, 5]) {
    h.dv.setUint16(off(ARG), DOMID_SELF, true); h.dv.setUint32(off(ARG) + 4, idx, true);
    out.push(hc(h, HC_hvm_op, [1, ARG]), h.dv.getBigUint64(off(ARG) + 8, true));
  }
  out.push(xatp(h, 0, 0, SI_GFN + 5)); // shared_info moves: its contents follow
  out.push(evop(h, 4, [b.loopA]));
  out.push([...h.host.lines], h.host.raised.slice(), h.d.vmAssist, h.d.gnttab.nrFrames);
  // All of RAM (shared_info, vcpu_info, grant frames, …) but the wallclock, which is each domain's creation time.
  const ram = h.u8.slice();
  ram.fill(0, off((SI_GFN + 5) * 4096) + 1072, off((SI_GFN + 5) * 4096) + 1088);
  ram.fill(0, off(SI_GFN * 4096) + 1072, off(SI_GFN * 4096) + 1088);
  out.push(createHash("sha256").update(ram).digest("hex"));
  return out;
}

function refuses(f: () => void, field: string): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof StateError, `expected StateError, got ${String(e)}`);
    assert.equal(e.code, "STATE_INVALID");
    assert.ok(e.field.includes(field), `field ${e.field} should name ${field}`);
    return true;
  }, `should refuse a bad ${field}`);
}

function mutate(s: XenDomainState, f: (x: Record<string, any>) => void): XenDomainState { // any: tests poke at nested fields freely
  const c = structuredClone(s) as unknown as Record<string, any>;
  f(c);
  return c as unknown as XenDomainState;
}

test("xen domain: save/restore round trip answers every later hypercall as the original", () => {
  const b = busy();
  const st = b.h.d.save();
  assert.equal(st.sharedInfo.gfn, SI_GFN);
  assert.equal(st.gnttab.shadows.length, 1);
  for (const state of [st, structuredClone(st)]) {
    const r = fresh(b.h);
    const notified: number[] = [];
    const eps = new Map<number, HostEndpoint>([...b.eps].map(([p, ep]) => [p, { remoteDom: ep.remoteDom, notify: () => notified.push(p) }]));
    r.d.restore(state, { endpoints: eps });
    assert.deepEqual(r.d.save(), st);
    assert.deepEqual(r.d.evtchn.detachedHostPorts(), []);
    // Upcall lines raised where evtchn_upcall_pending is set; never lowered (that is the guest's EOI's to do).
    for (let v = 0; v < 3; v++) assert.equal(r.host.lines.get(v), b.h.d.upcallLevel(v) ? true : undefined, `vCPU ${v}'s line`);
    r.host.raised = []; r.host.lines.clear();
    const orig = busy(); // a deterministic twin of b.h, driven alongside
    orig.h.host.raised = []; orig.h.host.lines.clear();
    const dr = drive(b, r), dorig = drive(orig, orig.h);
    for (let i = 0; i < dorig.length; i++) assert.deepEqual(dr[i], dorig[i], `answer ${i}`);
    assert.deepEqual(notified, orig.notified.slice(b.notified.length));
  }
});

test("xen domain: restore raises pending upcall lines and never lowers one (the guest's EOI does)", () => {
  const b = busy();
  const st = b.h.d.save();
  const quiet = [0, 1, 2].filter((v) => !b.h.d.upcallLevel(v));
  const pending = [0, 1, 2].filter((v) => b.h.d.upcallLevel(v));
  assert.ok(quiet.length > 0 && pending.length > 0, `want vCPUs with and without a pending upcall: ${pending} / ${quiet}`);
  const r = fresh(b.h);
  // The GIC's restored state has these lines high (flag cleared by the handler, EOI not yet written).
  for (const v of quiet) r.host.lines.set(v, true);
  r.d.restore(st, { endpoints: b.eps });
  for (const v of quiet) assert.equal(r.host.lines.get(v), true, `vCPU ${v}'s line was lowered at restore`);
  for (const v of pending) assert.equal(r.host.lines.get(v), true, `vCPU ${v}'s pending upcall was not raised`);
});

test("xen domain: restore without endpoints leaves host ports detached until hostAttach", () => {
  const b = busy();
  const r = fresh(b.h);
  r.d.restore(b.h.d.save());
  const store = r.d.storePort, cons = r.d.consolePort;
  assert.deepEqual(r.d.evtchn.detachedHostPorts(), [store, cons]);
  assert.equal(evop(r, 4, [store])[0], 0, "a send on a detached port is dropped");
  const [rc, st] = evop(r, 5, [DOMID_SELF, store]);
  assert.equal(rc, 0);
  assert.deepEqual([st[2], st[4] & 0xffff, st[5]], [2, 0, 0], "status: interdomain, remote dom 0");
  const got: number[] = [];
  assert.equal(r.d.evtchn.hostAttach(store, { remoteDom: 1, notify: () => got.push(1) }), -22, "wrong remote domain");
  assert.equal(r.d.evtchn.hostAttach(b.loopA, { remoteDom: 1, notify: () => got.push(1) }), -22, "not a host port");
  assert.equal(r.d.evtchn.hostAttach(store, { remoteDom: 0, notify: () => got.push(store) }), 0);
  assert.equal(r.d.evtchn.hostAttach(store, { remoteDom: 0, notify: () => got.push(store) }), -22, "attached already");
  assert.deepEqual(r.d.evtchn.detachedHostPorts(), [cons]);
  evop(r, 4, [store]);
  assert.deepEqual(got, [store]);
});

test("xen domain: bad states are refused, and parts already loaded are put back", () => {
  const b = busy();
  const st = b.h.d.save();
  const win = b.h.d.layout.gnttabBase / 4096;
  const bad: [XenDomainState, string][] = [
    [mutate(st, (x) => { x.version = 2; }), "version"],
    [mutate(st, (x) => { x.domid = 2; }), "domid"],
    [mutate(st, (x) => { x.vcpus = 2; }), "vcpus"],
    [mutate(st, (x) => { x.uuid[3] ^= 1; }), "uuid"],
    [mutate(st, (x) => { x.consolePort = 0; }), "consolePort"],
    [mutate(st, (x) => { x.vmAssist = 1; }), "vmAssist"],
    [mutate(st, (x) => { x.sharedInfo.gfn = (BASE + RAM - 4096) / 4096; }), "gfn"], // the Xen area is not RAM
    [mutate(st, (x) => { x.sharedInfo.gfn = -1; }), "shadow"], // unmapped needs the 4 KiB shadow
    [mutate(st, (x) => { x.sharedInfo.vcpuInfo[1] = VI_GFN * 4096 + 4; }), "vcpuInfo[1]"],
    [mutate(st, (x) => { x.sharedInfo.vcpuInfo[1] = VI_GFN * 4096 + 4056; }), "vcpuInfo[1]"],
    [mutate(st, (x) => { x.sharedInfo.vcpuInfo = [-1]; }), "vcpuInfo"],
    [mutate(st, (x) => { x.sharedInfo.dummies[0] = 1; }), "dummies[0]"],
    [mutate(st, (x) => { x.evtchn.state[0] = 0; }), "state[0]"],
    [mutate(st, (x) => { x.evtchn.state[9] = 3; }), "state[9]"], // PIRQ: never bound in a DomU
    [mutate(st, (x) => { x.evtchn.notifyVcpu[b.timer] = 3; }), `notifyVcpu[${b.timer}]`],
    [mutate(st, (x) => { x.evtchn.remotePort[b.loopA] = 40; }), `remotePort[${b.loopA}]`],
    [mutate(st, (x) => { x.evtchn.state[40] = 4; x.evtchn.notifyVcpu[40] = 1; x.evtchn.virqOf[40] = 0; }), "virqOf[40]"],
    [mutate(st, (x) => { x.evtchn.virqOf = new Int32Array(10); }), "virqOf"],
    [mutate(st, (x) => { x.evtchn.remoteDom[5] = 0x10000; }), "remoteDom[5]"],
    [mutate(st, (x) => { x.evtchn.remotePort[7] = -2; }), "remotePort[7]"],
    [mutate(st, (x) => { x.evtchn.virqOf[7] = 24; }), "virqOf[7]"],
    [mutate(st, (x) => { x.evtchn.notifyVcpu[4095] = -1; }), "notifyVcpu[4095]"],
    [mutate(st, (x) => { x.gnttab.grantVersion = 2; }), "grantVersion"],
    [mutate(st, (x) => { x.gnttab.nrFrames = 65; }), "nrFrames"],
    [mutate(st, (x) => { x.gnttab.frameGfn[3] = 2 ** 40; }), "frameGfn[3]"],
    [mutate(st, (x) => { x.gnttab.frameGfn[3] = win; }), "frameGfn[3]"], // two frames at one guest frame
    [mutate(st, (x) => { x.gnttab.frameGfn[10] = win + 10; }), "frameGfn[10]"], // beyond nrFrames
    [mutate(st, (x) => { x.gnttab.shadows[0].frame = 0; }), "shadows[0].frame"], // frame 0 is mapped
    [mutate(st, (x) => { x.gnttab.shadows[0].data = new Uint8Array(100); }), "shadows[0].data"],
    [mutate(st, (x) => { x.params.values[2 * 2] = 9; }), "params.values[4]"], // store port 9 is not this domain's
    [mutate(st, (x) => { x.params.values[2 * 1] = 5; x.params.values[3] = 0; }), "params.values[2]"],
    [mutate(st, (x) => { x.params.values[2 * 30] = 1; }), "params.values[60]"],
    [mutate(st, (x) => { x.params.values.pop(); }), "values"],
    [mutate(st, (x) => { x.runstate.lo[0] = -2; }), "lo[0]"],
    [mutate(st, (x) => { x.runstate.startNs = -1; }), "startNs"],
  ];
  // The target: a restored copy driven a little further, so that any partial load would show.
  const r = fresh(b.h);
  r.d.restore(st, { endpoints: b.eps });
  evop(r, 7, [0]);
  assert.equal(xatp(r, 0, 0, SI_GFN + 7), 0);
  const before = r.d.save();
  for (const [s, field] of bad) {
    refuses(() => r.d.restore(s, { endpoints: b.eps }), field);
    assert.deepEqual(r.d.save(), before);
    assert.deepEqual(r.d.evtchn.detachedHostPorts(), []);
  }
  // Endpoints must fit the ports they are given for.
  refuses(() => r.d.restore(st, { endpoints: new Map([[b.loopA, { remoteDom: 0, notify: () => {} }]]) }), `endpoints[${b.loopA}]`);
  refuses(() => r.d.restore(st, { endpoints: new Map([[r.d.storePort, { remoteDom: 3, notify: () => {} }]]) }), "endpoints");
  assert.deepEqual(r.d.save(), before);
  // The endpoints in place before a refused restore are still attached.
  const n = b.notified.length;
  evop(r, 4, [r.d.storePort]);
  assert.equal(b.notified.length, n + 1);
});

// ---------------------------------------------------------------------------------------------------------
// xenbus ring (host side)

const PAGE = 4096;

class Peer implements XenbusPeer {
  chunks: number[][] = [];
  isClosed = false;
  handleBytes(c: Uint8Array): void { this.chunks.push([...c]); }
  close(): void { this.isClosed = true; }
}

function ringOn(buf: SharedArrayBuffer) {
  const u8 = new Uint8Array(buf), i32 = new Int32Array(buf);
  let notifies = 0;
  const ring = new XenbusRing({ u8, i32, pageOffset: PAGE, notify: () => { notifies++; }, log: () => {}, maxQueuedBytes: 256 });
  const peer = new Peer();
  ring.attach(peer);
  const rsp = new ByteRing(u8, i32, PAGE + XS_RING_RSP, XENSTORE_RING_SIZE, PAGE + XS_RING_RSP_CONS, PAGE + XS_RING_RSP_PROD);
  return { ring, peer, rsp, u8, notifies: () => notifies };
}

test("xenbus ring: queued output (a message half written) survives save/restore", () => {
  const buf = new SharedArrayBuffer(3 * PAGE);
  const a = ringOn(buf);
  const msg = (n: number, len: number): Buffer => encodeMessage(2, n, 0, Buffer.alloc(len, 0x30 + n));
  for (let n = 0; n < 4; n++) a.ring.send(msg(n, 400)); // 4 x 416 bytes: two and a half fit the 1 KiB ring
  assert.ok(a.ring.pending > 0);
  const st = a.ring.save();
  assert.equal(st.pending.length, 2);
  assert.ok(st.pending[0].length < 416, "the first is a tail");
  for (const state of [st, structuredClone(st)]) {
    const copy = new SharedArrayBuffer(3 * PAGE);
    new Uint8Array(copy).set(new Uint8Array(buf));
    const b = ringOn(copy);
    b.ring.restore(state);
    assert.deepEqual(b.ring.save(), st);
    assert.equal(b.ring.pending, a.ring.pending);
    // The guest drains both rings alike.
    const drain = (x: ReturnType<typeof ringOn>, out: number[]): void => {
      const tmp = new Uint8Array(XENSTORE_RING_SIZE);
      for (let k = 0; k < 4; k++) { const n = x.rsp.read(tmp); out.push(...tmp.subarray(0, n)); x.ring.kick(); }
    };
    const copyA = new SharedArrayBuffer(3 * PAGE);
    new Uint8Array(copyA).set(new Uint8Array(buf));
    const a2 = ringOn(copyA); // a twin of `a` (so `a` stays as saved for the next iteration)
    for (let n = 0; n < 4; n++) a2.ring.send(msg(n, 400));
    const oa: number[] = [], ob: number[] = [];
    drain(a2, oa); drain(b, ob);
    // b starts where the saved ring was (its first bytes already in the page); a2 wrote everything itself.
    assert.equal(ob.length, st.pending.reduce((n, p) => n + p.length, 0) + XENSTORE_RING_SIZE);
    assert.deepEqual(ob, oa.slice(oa.length - ob.length));
    assert.equal(b.ring.pending, 0);
  }
});

test("xenbus ring: bad states are refused and change nothing", () => {
  const a = ringOn(new SharedArrayBuffer(3 * PAGE));
  a.ring.send(encodeMessage(2, 1, 0, Buffer.alloc(2000)));
  const st = a.ring.save();
  const b = ringOn(new SharedArrayBuffer(3 * PAGE));
  b.ring.send(encodeMessage(2, 7, 0, Buffer.alloc(1500)));
  const before = b.ring.save();
  const m = (f: (x: Record<string, any>) => void): XenbusRingState => {
    const c = structuredClone(st) as unknown as Record<string, any>;
    f(c);
    return c as unknown as XenbusRingState;
  };
  const bad: [XenbusRingState, string][] = [
    [m((x) => { x.version = 3; }), "version"],
    [m((x) => { x.broken = 5; }), "broken"],
    [m((x) => { x.pending.push(new Uint8Array(20)); }), "pending[1]"], // header says 0 payload, 20 bytes
    [m((x) => { x.pending.push(new Uint8Array(0)); }), "pending[1]"],
    [m((x) => { x.pending[0] = new Uint8Array(5000); }), "pending[0]"],
    [m((x) => { x.pending = "abc"; }), "pending"],
    [m((x) => { x.broken = "gone"; }), "pending"],
    [m((x) => { x.stats.requestBytes = -1; }), "stats.requestBytes"],
    [m((x) => { delete x.stats; }), "stats"],
  ];
  for (const [s, field] of bad) {
    refuses(() => b.ring.restore(s), field);
    assert.deepEqual(b.ring.save(), before);
  }
});

test("fuzz: mutated domain and xenbus-ring states (seeded): accepted or refused whole, never another error", () => {
  const b = busy();
  const st = b.h.d.save();
  const r = fresh(b.h);
  r.d.restore(st, { endpoints: b.eps });
  const [ok, no] = fuzzRestore(st, 300, 0xd0d0, (s) => { r.d.restore(s, { endpoints: b.eps }); r.d.restore(r.d.save(), { endpoints: b.eps }); },
    () => r.d.save(), () => r.d.restore(st, { endpoints: b.eps }));
  assert.ok(ok > 0 && no > 0, `${ok} accepted, ${no} refused`);
  const a = ringOn(new SharedArrayBuffer(3 * PAGE));
  for (let n = 0; n < 4; n++) a.ring.send(encodeMessage(2, n, 0, Buffer.alloc(400, n)));
  const rst = a.ring.save();
  const [rok, rno] = fuzzRestore(rst, 300, 0xb05, (s) => { a.ring.restore(s); a.ring.restore(a.ring.save()); }, () => a.ring.save(), () => a.ring.restore(rst));
  assert.ok(rok > 0 && rno > 0, `${rok} accepted, ${rno} refused`);
});
