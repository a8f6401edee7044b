/**
 * The netback test harness (used by net.test.ts and net-gro.test.ts): a XenDomain on a SharedArrayBuffer with a
 * fake host, an in-process XenStore, and Front playing netfront — grant entries written as the guest writes
 * them, rings initialised and filled by hand, the guest's EVTCHNOP_send as evtchn.send(port); frame builders.
 */
import assert from "node:assert/strict";
import { XenDomain, type XenHost } from "../../src/xen/domain.js";
import { XenStore, type XsSession } from "../../src/xenstore/index.js";
import { attachNetBack, type NetBack } from "../../src/backends/net/index.js";
import { foldComplement, onesSum } from "../../src/backends/net/checksum.js";
import {
  NETTXF_extra_info, NETTXF_more_data, XEN_NETIF_EXTRA_FLAG_MORE, needsNotify, NET_RX_RING_SIZE,
} from "../../src/backends/net/netif.js";
export const BASE = 0x40000000, RAM = 8 << 20, PAGE = 4096;
export const DOMID = 5;
export const GFN0 = BASE / PAGE;
/** Guest frames: grant frame 0, the two rings, tx data pages, rx buffer pages. */
export const GNT_GFN = GFN0 + 0x300, TX_RING_GFN = GFN0 + 0x310, RX_RING_GFN = GFN0 + 0x311;
export const TX_DATA_GFN = GFN0 + 0x400, RX_BUF_GFN = GFN0 + 0x500;
export const TX_PAGES = 32;
/** Grant refs: rings 8 and 9, tx data pages 16.., rx buffers 64.. (one per rx slot), specials 400... */
export const TX_RING_REF = 8, RX_RING_REF = 9, TX_REF0 = 16, RX_REF0 = 64;
export const REF_OTHER_DOM = 400, REF_READONLY_RX = 401, REF_NOT_RAM = 402, REF_UNUSED = 403, REF_OUT_OF_RANGE = 100_000;
export const GTF_permit_access = 1, GTF_readonly = 4;
export const MAC = "00:16:3e:12:34:56";

export class FakeHost implements XenHost {
  logs: string[] = [];
  setUpcall(): void {}
  counter(): number { return 62_500_000; }
  log(line: string): void { this.logs.push(line); }
  shutdown(): void {}
  block(): void {}
  yield(): void {}
}

export const off = (gfn: number): number => gfn * PAGE - BASE;

/** The guest side: netfront's view of the rings, written directly into guest memory. */
export class Front {
  txProd = 0; rxProd = 0; txCons = 0; rxCons = 0;
  txPort = 0; rxPort = 0;
  /** The ring pages (another queue of a multi-queue vif uses others). */
  txRingGfn = TX_RING_GFN; rxRingGfn = RX_RING_GFN;
  /** Tolerate a corrupt rsp_prod (the fuzz run corrupts its own rings). */
  lenient = false;
  /** When set, packet data the guest writes is mirrored here (the fuzz's expected memory image). */
  shadow: Uint8Array | null = null;
  readonly dv: DataView;
  readonly u8: Uint8Array;
  constructor(readonly d: XenDomain) { this.dv = d.mem.dv; this.u8 = d.mem.u8; }

  grant(ref: number, gfn: number, flags = GTF_permit_access, dom = 0): void {
    const e = off(GNT_GFN) + ref * 8;
    this.dv.setUint16(e, flags, true); this.dv.setUint16(e + 2, dom, true); this.dv.setUint32(e + 4, gfn, true);
  }

  /** SHARED_RING_INIT on both rings and FRONT_RING_INIT. */
  initRings(): void {
    for (const g of [this.txRingGfn, this.rxRingGfn]) {
      this.u8.fill(0, off(g), off(g) + PAGE);
      this.dv.setUint32(off(g) + 4, 1, true); this.dv.setUint32(off(g) + 12, 1, true);
    }
    this.txProd = this.rxProd = this.txCons = this.rxCons = 0;
  }

  txReq(i: number, r: { gref: number; offset?: number; flags?: number; id?: number; size: number }): void {
    const e = off(this.txRingGfn) + 64 + (i & 255) * 12;
    this.dv.setUint32(e, r.gref, true); this.dv.setUint16(e + 4, r.offset ?? 0, true);
    this.dv.setUint16(e + 6, r.flags ?? 0, true); this.dv.setUint16(e + 8, r.id ?? (i & 255), true);
    this.dv.setUint16(e + 10, r.size, true);
  }

  txExtra(i: number, type: number, flags = 0, body: number[] = []): void {
    const e = off(this.txRingGfn) + 64 + (i & 255) * 12;
    this.u8.fill(0, e, e + 12);
    this.u8[e] = type; this.u8[e + 1] = flags;
    body.forEach((b, k) => { this.u8[e + 2 + k] = b; });
  }

  /** Queues one packet: data copied into tx pages, one slot per chunk; returns the slots used. */
  sendPacket(data: Uint8Array, o: { chunks?: number[]; flags?: number; extras?: { type: number; body?: number[] }[];
    offsets?: number[]; page0?: number } = {}): number {
    const chunks = o.chunks ?? [data.length];
    const start = this.txProd;
    let pos = 0, slot = this.txProd;
    chunks.forEach((len, k) => {
      const page = (o.page0 ?? 0) + k, offset = o.offsets?.[k] ?? 0;
      this.u8.set(data.subarray(pos, pos + len), off(TX_DATA_GFN + page) + offset);
      this.shadow?.set(data.subarray(pos, pos + len), off(TX_DATA_GFN + page) + offset);
      const more = k < chunks.length - 1 ? NETTXF_more_data : 0;
      const extra = k === 0 && o.extras !== undefined ? NETTXF_extra_info : 0;
      this.txReq(slot, { gref: TX_REF0 + page, offset, size: k === 0 ? data.length : len,
        flags: (k === 0 ? o.flags ?? 0 : 0) | more | extra, id: (slot & 255) });
      slot++;
      if (k === 0) {
        o.extras?.forEach((x, j) => {
          this.txExtra(slot++, x.type, j < o.extras!.length - 1 ? XEN_NETIF_EXTRA_FLAG_MORE : 0, x.body);
        });
      }
      pos += len;
    });
    this.txProd = slot;
    return slot - start;
  }

  /** RING_PUSH_REQUESTS_AND_CHECK_NOTIFY + notify_remote_via_irq on the tx ring. */
  pushTx(force = false): void {
    const at = off(this.txRingGfn);
    const old = this.dv.getUint32(at, true);
    this.dv.setUint32(at, this.txProd >>> 0, true);
    if (force || needsNotify(this.txProd >>> 0, old, this.dv.getUint32(at + 4, true))) this.d.evtchn.send(this.txPort);
  }

  txResponses(): { id: number; status: number }[] {
    const at = off(this.txRingGfn), prod = this.dv.getUint32(at + 8, true);
    if (((prod - this.txCons) >>> 0) > 256) {
      // "Illegal number of responses" (only the fuzz does this: it grants a ring page as an rx buffer).
      assert.ok(this.lenient, `tx rsp_prod ${prod} rsp_cons ${this.txCons}`);
      this.txCons = prod;
    }
    const r: { id: number; status: number }[] = [];
    for (; this.txCons !== prod; this.txCons = (this.txCons + 1) >>> 0) {
      const e = at + 64 + (this.txCons & 255) * 12;
      r.push({ id: this.dv.getUint16(e, true), status: this.dv.getInt16(e + 2, true) });
    }
    this.dv.setUint32(at + 12, (this.txCons + 1) >>> 0, true); // rsp_event = rsp_cons + 1
    return r;
  }

  /** Posts n rx buffers (id = slot index, gref = RX_REF0 + id) and pushes. */
  postRx(n: number, gref?: (id: number) => number): void {
    for (let k = 0; k < n; k++) {
      const id = this.rxProd & 255;
      const e = off(this.rxRingGfn) + 64 + id * 8;
      this.dv.setUint16(e, id, true); this.dv.setUint32(e + 4, gref ? gref(id) : RX_REF0 + id, true);
      this.rxProd++;
    }
    const at = off(this.rxRingGfn), old = this.dv.getUint32(at, true);
    this.dv.setUint32(at, this.rxProd >>> 0, true);
    if (needsNotify(this.rxProd >>> 0, old, this.dv.getUint32(at + 4, true))) this.d.evtchn.send(this.rxPort);
  }

  rxResponses(): { id: number; offset: number; flags: number; status: number }[] {
    const at = off(this.rxRingGfn), prod = this.dv.getUint32(at + 8, true);
    if (((prod - this.rxCons) >>> 0) > 256) {
      // "Illegal number of responses" (only the fuzz does this: it grants a ring page as an rx buffer).
      assert.ok(this.lenient, `rx rsp_prod ${prod} rsp_cons ${this.rxCons}`);
      this.rxCons = prod;
    }
    const r: { id: number; offset: number; flags: number; status: number }[] = [];
    for (; this.rxCons !== prod; this.rxCons = (this.rxCons + 1) >>> 0) {
      const e = at + 64 + (this.rxCons & 255) * 8;
      r.push({ id: this.dv.getUint16(e, true), offset: this.dv.getUint16(e + 2, true),
        flags: this.dv.getUint16(e + 4, true), status: this.dv.getInt16(e + 6, true) });
    }
    this.dv.setUint32(at + 12, (this.rxCons + 1) >>> 0, true);
    return r;
  }

  rxBuffer(id: number, len: number): Uint8Array { return this.u8.slice(off(RX_BUF_GFN + id), off(RX_BUF_GFN + id) + len); }

  /** Whether the back-end notified port p since the last call (pending bit, then cleared). */
  notified(p: number): boolean {
    const was = this.d.sharedInfo.isPending(p);
    this.d.sharedInfo.clearPending(p);
    return was;
  }
}

export interface Harness {
  d: XenDomain; store: XenStore; back: NetBack; f: Front; gs: XsSession; frames: Uint8Array[]; logs: string[];
  front(key: string): string | null; backKey(key: string): string | null;
  connectFront(o?: { split?: boolean; sg?: boolean; keys?: Record<string, string>; before?: () => void }): void;
  setFrontState(s: number): void;
}

export function setup(o: { split?: boolean; sg?: boolean; mtu?: number; connect?: boolean; out?: (f: Uint8Array) => void;
  rate?: { bytesPerInterval: number; intervalUsecs: number }; now?: () => number; gso?: boolean; rxGso?: boolean;
  onRxBacklog?: (full: boolean) => void } = {}): Harness {
  const ram = new SharedArrayBuffer(RAM);
  const host = new FakeHost();
  const d = new XenDomain({ ram, ramBase: BASE, vcpus: 1, host, domid: DOMID, store: "none" });
  const store = new XenStore();
  const frames: Uint8Array[] = [], logs: string[] = [];
  const back = attachNetBack(d, store, { devid: 0, mac: MAC, mtu: o.mtu ?? 1500, bridge: "xenbr0", rate: o.rate, gso: o.gso, rxGso: o.rxGso },
    o.out ?? ((fr) => frames.push(fr.slice())), (l) => logs.push(l), o.now, o.onRxBacklog);
  assert.equal(d.gnttab.mapFrame(0, GNT_GFN), 0);
  const f = new Front(d);
  f.grant(TX_RING_REF, TX_RING_GFN);
  f.grant(RX_RING_REF, RX_RING_GFN);
  for (let k = 0; k < TX_PAGES; k++) f.grant(TX_REF0 + k, TX_DATA_GFN + k, GTF_permit_access | GTF_readonly);
  for (let k = 0; k < NET_RX_RING_SIZE; k++) f.grant(RX_REF0 + k, RX_BUF_GFN + k);
  f.grant(REF_OTHER_DOM, TX_DATA_GFN, GTF_permit_access, 3);
  f.grant(REF_READONLY_RX, RX_BUF_GFN, GTF_permit_access | GTF_readonly);
  f.grant(REF_NOT_RAM, 0x10, GTF_permit_access);
  const gs = store.connect(DOMID, () => {});
  const dom0 = store.connect(0, () => {});
  const fp = `/local/domain/${DOMID}/device/vif/0`, bp = `/local/domain/0/backend/vif/${DOMID}/0`;
  const rd = (p: string): string | null => { try { return Buffer.from(store.read(dom0, null, p)).toString(); } catch { return null; } };
  const h: Harness = {
    d, store, back, f, gs, frames, logs,
    front: (k) => rd(`${fp}/${k}`), backKey: (k) => rd(`${bp}/${k}`),
    setFrontState: (s) => store.write(gs, null, `${fp}/state`, Buffer.from(String(s))),
    connectFront: (c = {}) => {
      // A reconnecting netfront has unbound its old ports (xennet_disconnect_backend).
      for (const p of new Set([f.txPort, f.rxPort])) if (p !== 0) d.evtchn.close(p);
      f.initRings();
      f.txPort = d.evtchn.allocUnbound(0);
      f.rxPort = c.split ? d.evtchn.allocUnbound(0) : f.txPort;
      const keys: Record<string, string> = {
        "tx-ring-ref": String(TX_RING_REF), "rx-ring-ref": String(RX_RING_REF),
        ...(c.split ? { "event-channel-tx": String(f.txPort), "event-channel-rx": String(f.rxPort) }
          : { "event-channel": String(f.txPort) }),
        "request-rx-copy": "1", "feature-rx-notify": "1", "feature-sg": c.sg === false ? "0" : "1",
        ...c.keys,
      };
      for (const k of ["event-channel", "event-channel-tx", "event-channel-rx"]) {
        try { store.rm(gs, null, `${fp}/${k}`); } catch { /* absent */ }
      }
      for (const [k, v] of Object.entries(keys)) store.write(gs, null, `${fp}/${k}`, Buffer.from(v));
      c.before?.();
      h.setFrontState(4); // netfront goes straight to Connected
    },
  };
  if (o.connect !== false) {
    h.connectFront({ split: o.split, sg: o.sg });
    assert.ok(back.connected, logs.join("\n"));
    f.notified(f.txPort); f.notified(f.rxPort); // hostBind marks the port pending
  }
  return h;
}

// ---------------------------------------------------------------------------------------------------------
// Frames

export function mac(s: string): number[] { return s.split(":").map((x) => parseInt(x, 16)); }

export function eth(dst: string, src: string, type: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + payload.length);
  f.set(mac(dst), 0); f.set(mac(src), 6); f[12] = type >> 8; f[13] = type & 0xff; f.set(payload, 14);
  return f;
}

export function ipv4(proto: number, src: number[], dst: number[], l4: Uint8Array): Uint8Array {
  const p = new Uint8Array(20 + l4.length);
  p[0] = 0x45; p[2] = p.length >> 8; p[3] = p.length & 0xff; p[6] = 0x40; p[8] = 64; p[9] = proto;
  p.set(src, 12); p.set(dst, 16);
  const c = foldComplement(onesSum(p, 0, 20)); p[10] = c >> 8; p[11] = c & 0xff;
  p.set(l4, 20);
  return p;
}

export function ipv6(next: number, l4: Uint8Array): Uint8Array {
  const p = new Uint8Array(40 + l4.length);
  p[0] = 0x60; p[4] = l4.length >> 8; p[5] = l4.length & 0xff; p[6] = next; p[7] = 64;
  p[8] = 0xfe; p[9] = 0x80; p[23] = 1; p[24] = 0xfe; p[25] = 0x80; p[39] = 2;
  p.set(l4, 40);
  return p;
}

export function udp(len: number, garbageCsum: number): Uint8Array {
  const u = new Uint8Array(8 + len);
  u[0] = 0x30; u[1] = 0x39; u[2] = 0x00; u[3] = 0x35; u[4] = u.length >> 8; u[5] = u.length & 0xff;
  u[6] = garbageCsum >> 8; u[7] = garbageCsum & 0xff;
  for (let i = 8; i < u.length; i++) u[i] = (i * 7 + 3) & 0xff;
  return u;
}

export function tcp(len: number): Uint8Array {
  const t = new Uint8Array(20 + len);
  t[0] = 0xc0; t[1] = 0x01; t[2] = 0x00; t[3] = 0x50; t[7] = 1; t[12] = 0x50; t[13] = 0x18; t[14] = 0xff;
  for (let i = 20; i < t.length; i++) t[i] = (i * 13) & 0xff;
  return t;
}

/** Independent check: the L4 checksum of an IPv4 or IPv6 frame verifies (sum with pseudo-header = 0xffff). */
export function l4ChecksumOk(f: Uint8Array): boolean {
  const type = (f[12]! << 8) | f[13]!;
  let sum: number, l4: number, len: number;
  if (type === 0x0800) {
    const ihl = (f[14]! & 15) * 4, total = (f[16]! << 8) | f[17]!;
    l4 = 14 + ihl; len = total - ihl;
    sum = onesSum(f, 26, 8) + f[23]! + len;
  } else {
    l4 = 54; len = (f[18]! << 8) | f[19]!;
    sum = onesSum(f, 22, 32) + len + f[20]!;
  }
  sum = onesSum(f, l4, len, sum);
  return foldComplement(sum) === 0;
}

export const GUEST_MAC = MAC, PEER = "02:00:00:00:00:01";
export const pattern = (n: number, seed = 1): Uint8Array => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 17 + (i >> 8)) & 0xff;
  return b;
};
export const plainFrame = (n: number, seed = 1): Uint8Array => {
  const f = pattern(n, seed);
  if (n < 14) return f;
  f.set(mac(PEER), 0); f.set(mac(GUEST_MAC), 6); f[12] = 0x88; f[13] = 0xb5; // local experimental ethertype
  return f;
};

/** Every page that differs between `before` and now must be in `allowed` (gfns). */
export function assertOnlyPagesChanged(u8: Uint8Array, before: Uint8Array, allowed: Set<number>): void {
  for (let p = 0; p < RAM / PAGE; p++) {
    const a = p * PAGE;
    let same = true;
    for (let i = a; i < a + PAGE; i += 1) if (u8[i] !== before[i]) { same = false; break; }
    if (!same) assert.ok(allowed.has(GFN0 + p), `page gfn ${(GFN0 + p).toString(16)} was written`);
  }
}
export const WRITABLE = new Set<number>([TX_RING_GFN, RX_RING_GFN, ...Array.from({ length: NET_RX_RING_SIZE }, (_, k) => RX_BUF_GFN + k)]);

export interface SegOpts { flags?: number; v6?: boolean; ack?: number; win?: number; sport?: number; ttl?: number;
  badCsum?: boolean; opts?: number[]; ipOpts?: boolean; frag?: boolean; seed?: number; vlan?: boolean }

/** A TCP segment from the peer to the guest (10.0.2.2:80 → 10.0.2.15:40000), checksums valid unless asked. */
export function seg(seq: number, n: number, o: SegOpts = {}): Uint8Array {
  const opts = o.opts ?? [1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9]; // NOP NOP timestamps
  const thl = 20 + opts.length;
  const t = new Uint8Array(thl + n);
  const dv = new DataView(t.buffer);
  dv.setUint16(0, o.sport ?? 80); dv.setUint16(2, 40000); dv.setUint32(4, seq >>> 0); dv.setUint32(8, o.ack ?? 0x1000);
  t[12] = (thl / 4) << 4; t[13] = o.flags ?? 0x10 /* ACK */; dv.setUint16(14, o.win ?? 0x7000);
  t.set(opts, 20);
  // Payload: a function of the stream offset, so any reassembly can be checked.
  for (let i = 0; i < n; i++) t[thl + i] = ((seq + i) * 7 + ((seq + i) >>> 8) + (o.seed ?? 0)) & 0xff;
  let l3: Uint8Array, type: number;
  if (o.v6) {
    l3 = new Uint8Array(40 + t.length);
    l3[0] = 0x60; l3[4] = t.length >> 8; l3[5] = t.length & 0xff; l3[6] = 6; l3[7] = o.ttl ?? 64;
    l3[8] = 0xfe; l3[9] = 0x80; l3[23] = 2; l3[24] = 0xfe; l3[25] = 0x80; l3[39] = 15;
    l3.set(t, 40);
    const c = foldComplement(onesSum(l3, 40, t.length, onesSum(l3, 8, 32) + 6 + t.length));
    l3[40 + 16] = c >> 8; l3[40 + 17] = c & 0xff;
    type = 0x86dd;
  } else {
    const ihl = o.ipOpts ? 24 : 20;
    l3 = new Uint8Array(ihl + t.length);
    l3[0] = 0x40 | (ihl / 4); l3[2] = l3.length >> 8; l3[3] = l3.length & 0xff; l3[4] = seq & 0xff;
    l3[6] = o.frag ? 0x20 : 0x40; l3[8] = o.ttl ?? 64; l3[9] = 6;
    l3.set([10, 0, 2, 2], 12); l3.set([10, 0, 2, 15], 16);
    if (o.ipOpts) l3.set([1, 1, 1, 0], 20);
    const hc = foldComplement(onesSum(l3, 0, ihl)); l3[10] = hc >> 8; l3[11] = hc & 0xff;
    l3.set(t, ihl);
    const c = foldComplement(onesSum(l3, ihl, t.length, onesSum(l3, 12, 8) + 6 + t.length));
    l3[ihl + 16] = c >> 8; l3[ihl + 17] = c & 0xff;
    type = 0x0800;
  }
  if (o.badCsum) l3[l3.length - 1] ^= 0x5a;
  const f = eth(GUEST_MAC, PEER, type, l3);
  if (!o.vlan) return f;
  const v = new Uint8Array(f.length + 4);
  v.set(f.subarray(0, 12)); v[12] = 0x81; v[15] = 3; v.set(f.subarray(12), 16);
  return v;
}
