/**
 * Save/restore of netback: a connected vif with split event channels and a rate limit, one tx packet held on
 * the ring by the rate limit and one wire frame waiting for rx buffers, is saved with its domain; the domain
 * is restored over a copy of its RAM (ports left detached), the device nodes copied into a new store, and
 * restoreNetBack rebuilds the vif. Both then send the held packet when the window ends and deliver the
 * queued frame when the guest posts a buffer, identically. Refusals: identity, grants, ports, undrained rings,
 * queue sizes, credit; save refuses requests in flight.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { XenDomain, type XenHost } from "../../src/xen/domain.js";
import { XenStore, type StoreApi } from "../../src/xenstore/index.js";
import { attachNetBack, restoreNetBack, type NetBack, type NetBackState } from "../../src/backends/net/index.js";
import { StateError } from "../../src/common/state.js";
import { seg } from "./net-harness.js";

const BASE = 0x40000000, RAM = 8 << 20, PAGE = 4096, DOMID = 5;
const GFN0 = BASE / PAGE, GNT_GFN = GFN0 + 0x300, TX_RING_GFN = GFN0 + 0x310, RX_RING_GFN = GFN0 + 0x311;
const TX_DATA_GFN = GFN0 + 0x400, RX_BUF_GFN = GFN0 + 0x500;
const TX_RING_REF = 8, RX_RING_REF = 9, TX_REF0 = 16, RX_REF0 = 64;
const MAC = "00:16:3e:12:34:56";
const VIF = { devid: 0, mac: MAC, mtu: 1500, bridge: "xenbr0", rate: { bytesPerInterval: 150, intervalUsecs: 1_000_000 } };
const FRONT = `/local/domain/${DOMID}/device/vif/0`;

class FakeHost implements XenHost {
  setUpcall(): void {}
  counter(): number { return 0; }
  log(): void {}
  shutdown(): void {}
  block(): void {}
  yield(): void {}
}
const off = (gfn: number): number => gfn * PAGE - BASE;
const newDomain = (ram: SharedArrayBuffer, restoring = false): XenDomain =>
  new XenDomain({ ram, ramBase: BASE, vcpus: 1, host: new FakeHost(), domid: DOMID, store: "none", restoring });

/** One side: domain, store, vif, the clock, the wire's frames, and netfront's ring indexes (read from RAM). */
class Side {
  readonly dv: DataView;
  readonly u8: Uint8Array;
  readonly frames: number[][] = [];
  clock = { t: 1000 };
  back!: NetBack;
  txProd: number; rxProd: number; txCons: number; rxCons: number;
  constructor(readonly ram: SharedArrayBuffer, readonly xen: XenDomain, readonly store: StoreApi,
    readonly txPort: number, readonly rxPort: number) {
    this.dv = new DataView(ram); this.u8 = new Uint8Array(ram);
    this.txProd = this.dv.getUint32(off(TX_RING_GFN), true); this.rxProd = this.dv.getUint32(off(RX_RING_GFN), true);
    this.txCons = this.dv.getUint32(off(TX_RING_GFN) + 8, true); this.rxCons = this.dv.getUint32(off(RX_RING_GFN) + 8, true);
  }
  out = (f: Uint8Array): void => { this.frames.push([...f]); };
  /** One single-slot tx packet of `len` bytes from data page k, pushed and notified. */
  send(len: number, k: number, seed: number): void {
    const data = off(TX_DATA_GFN + k);
    for (let i = 0; i < len; i++) this.u8[data + i] = (i * seed + 3) & 0xff;
    const e = off(TX_RING_GFN) + 64 + (this.txProd & 255) * 12;
    this.dv.setUint32(e, TX_REF0 + k, true); this.dv.setUint16(e + 4, 0, true); this.dv.setUint16(e + 6, 0, true);
    this.dv.setUint16(e + 8, this.txProd & 255, true); this.dv.setUint16(e + 10, len, true);
    this.txProd++;
    this.dv.setUint32(off(TX_RING_GFN), this.txProd, true);
    assert.equal(this.xen.evtchn.send(this.txPort), 0);
  }
  postRx(n: number): void {
    for (let k = 0; k < n; k++) {
      const id = this.rxProd & 255, e = off(RX_RING_GFN) + 64 + id * 8;
      this.dv.setUint16(e, id, true); this.dv.setUint32(e + 4, RX_REF0 + id, true);
      this.rxProd++;
    }
    this.dv.setUint32(off(RX_RING_GFN), this.rxProd, true);
    assert.equal(this.xen.evtchn.send(this.rxPort), 0);
  }
  responses(): number[][] {
    const r: number[][] = [];
    for (const prod = this.dv.getUint32(off(TX_RING_GFN) + 8, true); this.txCons !== prod; this.txCons++) {
      const e = off(TX_RING_GFN) + 64 + (this.txCons & 255) * 12;
      r.push([0, this.dv.getUint16(e, true), this.dv.getInt16(e + 2, true)]);
    }
    for (const prod = this.dv.getUint32(off(RX_RING_GFN) + 8, true); this.rxCons !== prod; this.rxCons++) {
      const e = off(RX_RING_GFN) + 64 + (this.rxCons & 255) * 8;
      const id = this.dv.getUint16(e, true), status = this.dv.getInt16(e + 6, true);
      r.push([1, id, status, ...this.u8.subarray(off(RX_BUF_GFN + id), off(RX_BUF_GFN + id) + Math.max(status, 0))]);
    }
    return r;
  }
}

function frame(len: number, seed: number): Uint8Array {
  const f = new Uint8Array(len).map((_, i) => (i * seed) & 0xff);
  f.set([0x00, 0x16, 0x3e, 0x12, 0x34, 0x56, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5]);
  return f;
}

function copyTree(from: StoreApi, to: StoreApi, path: string): void {
  const a = from.connect(0, () => {}), b = to.connect(0, () => {});
  const walk = (p: string): void => {
    to.write(b, null, p, from.read(a, null, p));
    to.setPerms(b, null, p, from.getPerms(a, null, p));
    for (const c of from.directory(a, null, p)) walk(`${p}/${c}`);
  };
  walk(path);
  from.disconnect(a); to.disconnect(b);
}

function original(o: { rxGso?: boolean } = {}): Side {
  const ram = new SharedArrayBuffer(RAM);
  const xen = newDomain(ram);
  const store = new XenStore();
  assert.equal(xen.gnttab.mapFrame(0, GNT_GFN), 0);
  const dv = new DataView(ram);
  const grant = (ref: number, gfn: number, ro = false): void => {
    const e = off(GNT_GFN) + ref * 8;
    dv.setUint16(e + 2, 0, true); dv.setUint32(e + 4, gfn, true); dv.setUint16(e, 1 | (ro ? 4 : 0), true);
  };
  grant(TX_RING_REF, TX_RING_GFN); grant(RX_RING_REF, RX_RING_GFN);
  for (let k = 0; k < 4; k++) grant(TX_REF0 + k, TX_DATA_GFN + k, true);
  for (let k = 0; k < 32; k++) grant(RX_REF0 + k, RX_BUF_GFN + k);
  for (const g of [TX_RING_GFN, RX_RING_GFN]) { dv.setUint32(off(g) + 4, 1, true); dv.setUint32(off(g) + 12, 1, true); }
  const txPort = xen.evtchn.allocUnbound(0), rxPort = xen.evtchn.allocUnbound(0);
  const side = new Side(ram, xen, store, txPort, rxPort);
  side.back = attachNetBack(xen, store, VIF, side.out, () => {}, () => side.clock.t);
  const gs = store.connect(DOMID, () => {});
  for (const [k, v] of Object.entries({ "tx-ring-ref": TX_RING_REF, "rx-ring-ref": RX_RING_REF, "event-channel-tx": txPort,
    "event-channel-rx": rxPort, "request-rx-copy": 1, "feature-sg": 1, ...(o.rxGso ? { "feature-gso-tcpv4": 1 } : {}),
    state: 4 })) store.write(gs, null, `${FRONT}/${k}`, Buffer.from(String(v)));
  assert.ok(side.back.connected);
  // Traffic: a 100-byte packet goes; the next waits for the rate limit's window. Two rx buffers, three frames.
  side.send(100, 0, 7);
  side.send(100, 1, 11);
  assert.equal(side.frames.length, 1);
  side.postRx(2);
  for (let k = 0; k < 3; k++) assert.ok(side.back.receive(frame(200 + k, k + 1)));
  assert.equal(side.responses().length, 3); // one tx response, two rx
  return side;
}

function restoreFrom(a: Side, st: NetBackState): Side {
  const ram = new SharedArrayBuffer(RAM);
  new Uint8Array(ram).set(a.u8);
  const xen = newDomain(ram, true);
  xen.restore(structuredClone(a.xen.save()));
  const store = new XenStore();
  copyTree(a.store, store, "/local/domain");
  const b = new Side(ram, xen, store, a.txPort, a.rxPort);
  b.txCons = a.txCons; b.rxCons = a.rxCons;
  b.clock.t = a.clock.t;
  b.back = restoreNetBack({ xen, store, vif: VIF, out: b.out, log: () => {}, now: () => b.clock.t }, structuredClone(st));
  return b;
}

function refuses(f: () => void, field: string): void {
  assert.throws(f, (e: unknown) => e instanceof StateError && e.code === "STATE_INVALID" && e.field.includes(field),
    `should refuse a bad ${field}`);
}

test("netback: save/restore of a connected, rate-limited vif with a held packet and a queued frame", () => {
  const a = original();
  const st = a.back.save();
  assert.equal(st.rxQueue.length, 1);
  assert.ok(st.credit !== null && st.credit.wakeIn !== null);
  assert.deepEqual(st.queue, { txRef: TX_RING_REF, rxRef: RX_RING_REF, txPort: a.txPort, rxPort: a.rxPort, txCons: 1, rxCons: 2, rxSg: true,
    rxGso4: false, rxGso6: false });
  const b = restoreFrom(a, st);
  assert.deepEqual(b.back.save(), st);
  assert.deepEqual(b.xen.evtchn.detachedHostPorts(), []);
  for (const s of [a, b]) {
    assert.equal(s.back.service() > 0, true, "still waiting for the window");
    s.clock.t += 1001;
    assert.equal(s.back.service(), Infinity);
    s.postRx(1);
    s.send(60, 2, 13);
  }
  assert.deepEqual(b.frames, a.frames.slice(1));
  assert.equal(b.frames.length, 2);
  assert.deepEqual(b.responses(), a.responses());
  assert.deepEqual(b.back.stats, a.back.stats);
  assert.deepEqual(b.back.save(), a.back.save());
});

test("netback: a joined rx GSO packet waiting for buffers is saved with its GSO size and delivered the same after restore", () => {
  const a = original({ rxGso: true });
  // Ten segments in one batch join into one packet; no buffers are free, so it waits behind the queued frame.
  for (let k = 0; k < 10; k++) assert.ok(a.back.receive(seg(5000 + k * 1448, 1448), k < 9));
  const st = a.back.save();
  assert.equal(st.queue?.rxGso4, true);
  assert.equal(st.rxQueue.length, 2);
  assert.equal(st.rxQueue[1]!.length, 66 + 10 * 1448);
  assert.equal(st.rxMeta[0], 0, "the plain frame: no GSO, no checksum marks");
  assert.equal(st.rxMeta[1]! & 0x3ffff, 1448 | (1 << 16), "GSO size 1448, type TCPV4");
  const b = restoreFrom(a, st);
  assert.deepEqual(b.back.save(), st);
  for (const s of [a, b]) s.postRx(1 + 4 + 1); // the plain frame, then 4 data slots and the GSO extra
  const ra = a.responses(), rb = b.responses();
  assert.deepEqual(rb, ra);
  const rx = ra.filter((r) => r[0] === 1);
  assert.equal(rx.length, 6);
  assert.deepEqual([rx[2]![1], rx[2]![2]], [1, 0], "the extra slot after the first data slot: type GSO, flags 0");
  assert.deepEqual(b.back.stats, a.back.stats);
  assert.equal(a.back.stats.rxGsoPackets, 1);
});

test("netback: bad states are refused with nothing attached; save refuses requests in flight", () => {
  const a = original();
  const st = a.back.save();
  const m = (f: (x: Record<string, any>) => void): NetBackState => { // any: tests poke at fields freely
    const c = structuredClone(st) as unknown as Record<string, any>;
    f(c);
    return c as unknown as NetBackState;
  };
  const bad: [NetBackState, string][] = [
    [m((x) => { x.version = 9; }), "version"],
    [m((x) => { x.devid = 1; }), "devid"],
    [m((x) => { x.mac = "00:16:3e:00:00:01"; }), "mac"],
    [m((x) => { x.mtu = 9000; }), "mtu"],
    [m((x) => { x.gsoTcpv4 = false; }), "gsoTcpv4"],
    [m((x) => { x.gsoTcpv6 = "yes"; }), "gsoTcpv6"],
    [m((x) => { x.queue.rxGso4 = true; x.queue.rxSg = false; }), "queue.rxGso4"],
    [m((x) => { x.queue.rxGso6 = 1; }), "queue.rxGso6"],
    [m((x) => { x.rxMeta = [1448 | (1 << 16)]; }), "rxMeta[0]"], // GSO type 1 was not negotiated
    [m((x) => { x.queue.rxGso4 = true; x.rxMeta = [1 << 16]; }), "rxMeta[0]"], // a type without a size
    [m((x) => { x.queue.rxGso4 = true; x.rxMeta = [65535 | (1 << 16)]; }), "rxMeta[0]"], // size ≥ the frame
    [m((x) => { x.rxMeta = [0, 0]; }), "rxMeta"],
    [m((x) => { x.rxMeta = [-1]; }), "rxMeta[0]"],
    [m((x) => { x.rate = null; }), "rate"],
    [m((x) => { x.queue.txRef = 3; }), "queue.txRef"],
    [m((x) => { x.queue.rxRef = TX_RING_REF; }), "queue.rxRef"],
    [m((x) => { x.queue.rxPort = 9; }), "queue.rxPort"],
    [m((x) => { x.queue.txCons = 0; }), "queue.txCons"],
    [m((x) => { x.queue = null; }), "connected"],
    [m((x) => { x.rxQueue.push(new Uint8Array(5)); }), "rxQueue[1]"],
    [m((x) => { x.rxQueue = Array.from({ length: 10 }, () => new Uint8Array(60000)); }), "rxQueue"],
    [m((x) => { x.credit.remaining = 1 << 20; }), "credit.remaining"],
    [m((x) => { x.credit = null; }), "credit"],
    [m((x) => { x.stats.rxFrames = 0.5; }), "stats.rxFrames"],
  ];
  for (const [s, field] of bad) {
    const ram = new SharedArrayBuffer(RAM);
    new Uint8Array(ram).set(a.u8);
    const xen = newDomain(ram, true);
    xen.restore(a.xen.save());
    const store = new XenStore();
    copyTree(a.store, store, "/local/domain");
    refuses(() => restoreNetBack({ xen, store, vif: VIF, out: () => {}, log: () => {} }, s), field);
    assert.deepEqual(xen.evtchn.detachedHostPorts(), [a.txPort, a.rxPort]);
    const ok = restoreNetBack({ xen, store, vif: VIF, out: () => {}, log: () => {} }, st);
    assert.ok(ok.connected);
    assert.deepEqual(xen.evtchn.detachedHostPorts(), []);
  }
  // A taken request not yet answered (only possible mid-run): save refuses.
  const q = (a.back as unknown as { qs: { txReqCons: number }[] }).qs[0]!; // reaching in to fake a mid-run state
  q.txReqCons++;
  refuses(() => a.back.save(), "queue");
  q.txReqCons--;
  assert.ok(a.back.save());
});
