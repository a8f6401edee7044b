/**
 * Receive-side GSO (gro.ts, net-back.ts rxFrame): TCP segments from the wire joined into GSO packets for a
 * front-end that advertises feature-gso-tcpv4 / -tcpv6, delivered as netfront reads them (first data slot with
 * NETRXF_extra_info | csum_blank | data_validated, the GSO extra slot right after it, then the data). Checked
 * field by field and against an independent reassembly: negotiation (each front-end key), joining and every
 * reason not to join, the rx queue, hostile rings and grants, and a seeded fuzz with recorded counts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { foldComplement, onesSum } from "../../src/backends/net/checksum.js";
import {
  NETRXF_csum_blank, NETRXF_data_validated, NETRXF_extra_info, NETRXF_more_data, XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_GSO_TYPE_TCPV4, XEN_NETIF_GSO_TYPE_TCPV6, XEN_NETIF_RSP_ERROR,
} from "../../src/backends/net/netif.js";
import {
  RX_RING_GFN, REF_READONLY_RX, REF_OUT_OF_RANGE, off, type Harness, setup, seg, type SegOpts, assertOnlyPagesChanged,
  WRITABLE,
} from "./net-harness.js";

const TCP_FIN = 0x01, TCP_SYN = 0x02, TCP_PSH = 0x08, TCP_ACK = 0x10, TCP_URG = 0x20;
const MSS = 1448;
const GSO_KEYS = { "feature-gso-tcpv4": "1", "feature-gso-tcpv6": "1", "feature-ipv6-csum-offload": "1" };

/** A vif whose front-end takes rx GSO (netfront's keys), with `n` rx buffers posted. */
function gsoSetup(keys: Record<string, string> = GSO_KEYS, post = 200, o: { rxGso?: boolean } = {}): Harness {
  const h = setup({ connect: false, rxGso: o.rxGso });
  h.connectFront({ keys });
  assert.ok(h.back.connected, h.logs.join("\n"));
  if (post > 0) h.f.postRx(post);
  return h;
}

/** A packet as netfront assembles it from the rx ring. */
interface RxPacket { bytes: Uint8Array; flags: number; gso: { size: number; type: number } | null; slots: number; error: boolean }

/** Reads every response the back-end produced, the way xennet_get_responses / xennet_get_extras do. */
function packets(h: Harness): RxPacket[] {
  const out: RxPacket[] = [];
  const at = off(RX_RING_GFN);
  const prod = h.f.dv.getUint32(at + 8, true);
  let i = h.f.rxCons;
  while (i !== prod) {
    const e = (k: number): number => at + 64 + (k & 255) * 8;
    const flags = h.f.dv.getUint16(e(i) + 4, true);
    const parts: Uint8Array[] = [];
    let error = false, gso: RxPacket["gso"] = null, slots = 0;
    let cur = i, curFlags = flags;
    for (;;) {
      const id = h.f.dv.getUint16(e(cur) + 0, true), status = h.f.dv.getInt16(e(cur) + 6, true);
      const offset = h.f.dv.getUint16(e(cur) + 2, true);
      slots++;
      if (status < 0) error = true;
      else { assert.ok(offset + status <= 4096); parts.push(h.f.rxBuffer(id, status)); }
      if (cur === i && (flags & NETRXF_extra_info) !== 0) {
        cur++;
        const x = e(cur);
        assert.equal(h.f.u8[x], XEN_NETIF_EXTRA_TYPE_GSO, "the only extra: GSO");
        assert.equal(h.f.u8[x + 1], 0, "no more extras");
        gso = { size: h.f.dv.getUint16(x + 2, true), type: h.f.u8[x + 4]! };
      }
      if ((curFlags & NETRXF_more_data) === 0) break;
      cur++;
      assert.notEqual(cur, prod, "more_data on the last response");
      curFlags = h.f.dv.getUint16(e(cur) + 4, true);
    }
    const len = parts.reduce((a, p) => a + p.length, 0), bytes = new Uint8Array(len);
    let p = 0;
    for (const part of parts) { bytes.set(part, p); p += part.length; }
    out.push({ bytes, flags, gso, slots, error });
    i = cur + 1;
  }
  h.f.rxCons = prod;
  h.f.dv.setUint32(at + 12, (prod + 1) >>> 0, true);
  return out;
}

/**
 * What netfront + the guest's stack accept of a GSO packet: IPv4 header checksum, lengths, and the TCP checksum
 * completed from the pseudo-header sum in the field (CHECKSUM_PARTIAL: csum_start = TCP header) verifies.
 */
function checkGsoPacket(p: RxPacket, v6 = false): void {
  const f = p.bytes;
  assert.equal(p.flags & (NETRXF_csum_blank | NETRXF_data_validated), NETRXF_csum_blank | NETRXF_data_validated);
  let l4: number, pseudo: number;
  if (v6) {
    assert.equal((f[18]! << 8) | f[19]!, f.length - 54, "IPv6 payload length");
    l4 = 54; pseudo = onesSum(f, 22, 32) + 6 + (f.length - l4);
  } else {
    assert.equal((f[16]! << 8) | f[17]!, f.length - 14, "IP total length");
    assert.equal(foldComplement(onesSum(f, 14, 20)), 0, "IP header checksum");
    l4 = 34; pseudo = onesSum(f, 26, 8) + 6 + (f.length - l4);
  }
  // The field holds the folded pseudo-header sum: complete as skb_checksum_help would, then verify.
  const field = (f[l4 + 16]! << 8) | f[l4 + 17]!;
  assert.equal(field, (~foldComplement(pseudo)) & 0xffff, "pseudo-header sum in the checksum field");
  const c = new Uint8Array(f); c[l4 + 16] = 0; c[l4 + 17] = 0;
  const full = foldComplement(onesSum(c, l4, c.length - l4, pseudo));
  c[l4 + 16] = full >> 8; c[l4 + 17] = full & 0xff;
  assert.equal(foldComplement(onesSum(c, l4, c.length - l4, pseudo)), 0);
}

/** Stream offset and payload of a packet (IPv4 or IPv6, TCP); checks the payload is the stream's bytes. */
function payloadOf(f: Uint8Array, seed = 0): { seq: number; n: number; flags: number } {
  const v6 = ((f[12]! << 8) | f[13]!) === 0x86dd;
  const l4 = v6 ? 54 : 14 + (f[14]! & 15) * 4;
  const thl = (f[l4 + 12]! >> 4) * 4, seq = new DataView(f.buffer, f.byteOffset).getUint32(l4 + 4);
  for (let i = l4 + thl, s = seq; i < f.length; i++, s++) {
    if (f[i] !== ((s * 7 + (s >>> 8) + seed) & 0xff)) assert.fail(`payload byte at stream offset ${s}`);
  }
  return { seq, n: f.length - l4 - thl, flags: f[l4 + 13]! };
}

function feed(h: Harness, frames: Uint8Array[]): void {
  frames.forEach((f, i) => assert.ok(h.back.receive(f, i < frames.length - 1)));
}

// ---------------------------------------------------------------------------------------------------------

test("rx GSO negotiation: each front-end key as Linux netback reads it; off without feature-sg or with rxGso false", () => {
  const cases: [Record<string, string>, boolean, boolean, boolean?][] = [
    [GSO_KEYS, true, true],
    [{ "feature-gso-tcpv4": "1" }, true, false],
    [{ "feature-gso-tcpv4": "1", "feature-no-csum-offload": "1" }, false, false],
    [{ "feature-gso-tcpv6": "1" }, false, false], // IPv6 GSO needs feature-ipv6-csum-offload
    [{ "feature-gso-tcpv4": "yes", "feature-gso-tcpv6": "2", "feature-ipv6-csum-offload": "1" }, false, false],
    [{}, false, false],
    [{ ...GSO_KEYS, "feature-sg": "0" }, false, false],
    [GSO_KEYS, false, false, false],
  ];
  for (const [keys, v4, v6, rxGso] of cases) {
    const h = gsoSetup(keys, 40, { rxGso });
    const line = h.logs.find((l) => l.includes("vif connected")) ?? "";
    assert.equal(line.includes("rx-gso-tcpv4"), v4, `${JSON.stringify(keys)}: ${line}`);
    assert.equal(line.includes("rx-gso-tcpv6"), v6, `${JSON.stringify(keys)}: ${line}`);
    feed(h, [seg(1000, MSS), seg(1000 + MSS, MSS)]);
    const p = packets(h);
    assert.equal(p.length, v4 ? 1 : 2, JSON.stringify(keys));
    const v6f = [seg(5000, MSS, { v6: true }), seg(5000 + MSS, MSS, { v6: true })];
    feed(h, v6f);
    assert.equal(packets(h).length, v6 ? 1 : 2, JSON.stringify(keys));
  }
});

test("rx GSO: 60 in-order segments become a 45-segment and a 15-segment packet, laid out as netfront reads them", () => {
  const h = gsoSetup();
  const SEQ = 0xffff0000; // wraps inside the first packet
  const frames = Array.from({ length: 60 }, (_, k) => seg(SEQ + k * MSS, MSS, { win: 0x7000 + k, flags: TCP_ACK | (k === 59 ? TCP_PSH : 0) }));
  feed(h, frames);
  const p = packets(h);
  assert.equal(p.length, 2);
  const [a, b] = p as [RxPacket, RxPacket];
  // First packet: 45 × 1448 + 66 bytes of headers = 65226 bytes, 16 data slots + the extra.
  assert.equal(a.bytes.length, 66 + 45 * MSS);
  assert.equal(a.slots, 16);
  assert.equal(a.flags, NETRXF_extra_info | NETRXF_more_data | NETRXF_csum_blank | NETRXF_data_validated);
  assert.deepEqual(a.gso, { size: MSS, type: XEN_NETIF_GSO_TYPE_TCPV4 });
  checkGsoPacket(a);
  assert.deepEqual(payloadOf(a.bytes), { seq: SEQ, n: 45 * MSS, flags: TCP_ACK });
  assert.equal(new DataView(a.bytes.buffer).getUint16(48), 0x7000 + 44, "the last joined segment's window");
  assert.deepEqual(a.bytes.subarray(0, 14), frames[0]!.subarray(0, 14));
  assert.deepEqual(b.gso, { size: MSS, type: XEN_NETIF_GSO_TYPE_TCPV4 });
  checkGsoPacket(b);
  assert.deepEqual(payloadOf(b.bytes), { seq: (SEQ + 45 * MSS) >>> 0, n: 15 * MSS, flags: TCP_ACK | TCP_PSH });
  const s = h.back.stats;
  assert.deepEqual({ p: s.rxGsoPackets, s: s.rxGsoSegments, f: s.rxFrames, e: s.rxErrors, d: s.rxDropped },
    { p: 2, s: 60, f: 2, e: 0, d: 0 });
  // One segment alone (end of a batch): as it came, marked validated, no extra slot.
  feed(h, [seg(7, 100)]);
  const [one] = packets(h) as [RxPacket];
  assert.equal(one.flags, NETRXF_data_validated);
  assert.equal(one.gso, null);
  assert.deepEqual(one.bytes, seg(7, 100));
  // IPv6 joins the same way (GSO type TCPV6).
  feed(h, Array.from({ length: 5 }, (_, k) => seg(9000 + k * MSS, MSS, { v6: true })));
  const [v6] = packets(h) as [RxPacket];
  assert.deepEqual(v6.gso, { size: MSS, type: XEN_NETIF_GSO_TYPE_TCPV6 });
  checkGsoPacket(v6, true);
  assert.deepEqual(payloadOf(v6.bytes), { seq: 9000, n: 5 * MSS, flags: TCP_ACK });
});

test("rx GSO: every reason not to join (Linux GRO's), each frame still delivered once and in order", () => {
  const h = gsoSetup();
  const S = 100_000;
  type Case = [string, Uint8Array, number]; // name, the frame after seg(S, MSS), packets expected
  const next = S + MSS;
  const cases: Case[] = [
    ["out of order", seg(next + 1, MSS), 2],
    ["retransmission", seg(S, MSS), 2],
    ["other port", seg(next, MSS, { sport: 81 }), 2],
    ["other ack", seg(next, MSS, { ack: 0x2000 }), 2],
    ["other options", seg(next, MSS, { opts: [1, 1, 8, 10, 0, 0, 0, 8, 0, 0, 0, 9] }), 2],
    ["other TTL", seg(next, MSS, { ttl: 63 }), 2],
    ["FIN", seg(next, MSS, { flags: TCP_ACK | TCP_FIN }), 2],
    ["URG", seg(next, MSS, { flags: TCP_ACK | TCP_URG }), 2],
    ["bad TCP checksum", seg(next, MSS, { badCsum: true }), 2],
    ["larger than the first", seg(next, MSS + 1), 2],
    ["IP fragment", seg(next, MSS, { frag: true }), 2],
    ["VLAN tag", seg(next, MSS, { vlan: true }), 2],
    ["joins", seg(next, MSS), 1],
    ["short segment joins", seg(next, 10), 1],
  ];
  for (const [name, second, want] of cases) {
    feed(h, [seg(S, MSS), second, seg(9, 1, { sport: 99 })]);
    const p = packets(h);
    assert.equal(p.length, want + 1, name);
    if (want === 2) {
      assert.deepEqual(p[0]!.bytes, seg(S, MSS), `${name}: the first as it came`);
      assert.deepEqual(p[1]!.bytes, second, `${name}: the second as it came`);
      const bad = name === "bad TCP checksum" || name === "IP fragment" || name === "VLAN tag" || name === "FIN" || name === "URG";
      assert.equal(p[1]!.flags, bad ? 0 : NETRXF_data_validated, `${name}: marks`);
    } else checkGsoPacket(p[0]!);
  }
  // A short segment, PSH, SYN, IP options, a bad IP header checksum: never held for more.
  for (const [name, first] of [["PSH", seg(S, MSS, { flags: TCP_ACK | TCP_PSH })], ["short", seg(S, 100)],
    ["SYN", seg(S, MSS, { flags: TCP_ACK | TCP_SYN })], ["IP options", seg(S, MSS, { ipOpts: true })]] as const) {
    feed(h, [first, seg(S + (name === "short" ? 100 : MSS), MSS)]);
    assert.equal(packets(h).length, 2, name);
  }
  const badIp = seg(S, MSS); badIp[24] ^= 1; // TTL changed under the header checksum
  feed(h, [badIp, seg(S + MSS, MSS)]);
  const p = packets(h);
  assert.equal(p[0]!.flags, 0, "a bad IP header checksum is not marked");
  assert.equal(h.back.stats.rxDropped, 0);
  assert.equal(h.back.stats.rxErrors, 0);
});

test("rx GSO: a packet waits in the rx queue for 17 slots, then lands whole; disconnect drops what is held", () => {
  const h = gsoSetup(GSO_KEYS, 10);
  feed(h, Array.from({ length: 45 }, (_, k) => seg(k * MSS, MSS)));
  assert.deepEqual(packets(h), [], "10 buffers do not take a 17-slot packet");
  assert.equal(h.f.dv.getUint32(off(RX_RING_GFN) + 4, true), 17, "req_event asks for 17 slots");
  h.f.postRx(7);
  const [p] = packets(h) as [RxPacket];
  checkGsoPacket(p);
  assert.equal(p.slots, 16);
  assert.deepEqual(payloadOf(p.bytes), { seq: 0, n: 45 * MSS, flags: TCP_ACK });
  // A held segment (more = true) is dropped, counted, when the front-end goes away.
  assert.ok(h.back.receive(seg(45 * MSS, MSS), true));
  h.setFrontState(5);
  assert.ok(!h.back.connected);
  assert.equal(h.back.stats.rxDropped, 1);
});

test("rx GSO hostile front-end: bad and read-only buffer grants, refs out of range, indexes far ahead; no stray writes", () => {
  const h = gsoSetup(GSO_KEYS, 0);
  const before = h.f.u8.slice();
  // Buffers: 20 posted, the third a read-only grant, the ninth a ref beyond the grant table.
  h.f.postRx(20, (id) => (id === 2 ? REF_READONLY_RX : id === 8 ? REF_OUT_OF_RANGE : 64 + id));
  const ten = Array.from({ length: 10 }, (_, k) => seg(k * MSS, MSS));
  ten.forEach((f, i) => assert.equal(h.back.receive(f, i < 9), i < 9, "held; the packet fails on its bad grants"));
  const [p] = packets(h) as [RxPacket];
  assert.ok(p.error, "the packet carries error statuses");
  assert.equal(h.back.stats.rxErrors, 1);
  assertOnlyPagesChanged(h.f.u8, before, WRITABLE);
  // req_prod more than a ring ahead: the vif is failed (xenvif_fatal), the host goes on.
  h.f.dv.setUint32(off(RX_RING_GFN), h.f.rxProd + 300, true);
  assert.equal(h.back.receive(seg(0, MSS)), false);
  assert.ok(!h.back.connected);
  assert.equal(h.back.stats.fatal, 1);
});

/** Deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FUZZ_RECORDED = { packets: 1538, gso: 898, joined: 5430, plain: 613, marked: 304, errors: 27, dropped: 17, fatal: 0 };

test("rx GSO fuzz (seed 0x6e0, 400 rounds): mutated segments, random buffers; every GSO packet valid, bytes as sent", () => {
  const rnd = prng(0x6e0);
  const h = gsoSetup(GSO_KEYS, 0);
  const before = h.f.u8.slice();
  const counts = { packets: 0, gso: 0, joined: 0, plain: 0, marked: 0, errors: 0, dropped: 0, fatal: 0 };
  let seq = 0x7fff0000;
  for (let round = 0; round < 400; round++) {
    if (!h.back.connected) { h.connectFront({ keys: GSO_KEYS }); counts.fatal++; }
    const batch: Uint8Array[] = [];
    const n = 1 + Math.floor(rnd() * 30), v6 = rnd() < 0.2, mss = rnd() < 0.7 ? MSS : 1 + Math.floor(rnd() * 1500);
    for (let k = 0; k < n; k++) {
      const r = rnd();
      let len = mss;
      if (r < 0.05) len = 1 + Math.floor(rnd() * mss);
      const o: SegOpts = { v6 };
      if (r > 0.97) o.badCsum = true;
      else if (r > 0.95) o.flags = TCP_ACK | TCP_PSH;
      else if (r > 0.94) o.ack = 0x1001;
      const s = r > 0.92 && r <= 0.93 ? seq + 1 : seq;
      const f = seg(s, len, o);
      if (r > 0.9 && r <= 0.92) f[14 + Math.floor(rnd() * 60)] ^= 1 << Math.floor(rnd() * 8); // a flipped header bit
      batch.push(f);
      seq = (seq + len) >>> 0;
    }
    batch.forEach((f, i) => { if (!h.back.receive(f, i < batch.length - 1)) counts.dropped++; });
    // The guest posts a random number of buffers (sometimes read-only), then reads what arrived.
    const post = Math.floor(rnd() * 64);
    const free = 256 - ((h.f.rxProd - h.f.rxCons) >>> 0);
    h.f.postRx(Math.min(post, free), (id) => (rnd() < 0.01 ? REF_READONLY_RX : 64 + id));
    for (const p of packets(h)) {
      counts.packets++;
      if (p.error) { counts.errors++; continue; }
      if (p.gso !== null) {
        counts.gso++;
        checkGsoPacket(p, p.gso.type === XEN_NETIF_GSO_TYPE_TCPV6);
        const body = payloadOf(p.bytes);
        assert.ok(p.gso.size > 0 && body.n > p.gso.size, "a GSO packet holds more than one segment");
        counts.joined += Math.ceil(body.n / p.gso.size);
      } else {
        counts.plain++;
        if (p.flags & NETRXF_data_validated) {
          counts.marked++;
          // Marked validated: its checksums really verify.
          const f = p.bytes, isV6 = ((f[12]! << 8) | f[13]!) === 0x86dd, l4 = isV6 ? 54 : 34;
          const pseudo = isV6 ? onesSum(f, 22, 32) : onesSum(f, 26, 8);
          assert.equal(foldComplement(onesSum(f, l4, f.length - l4, pseudo + 6 + f.length - l4)), 0, "marked but wrong");
        }
      }
      assert.equal(p.flags & ~(NETRXF_extra_info | NETRXF_more_data | NETRXF_csum_blank | NETRXF_data_validated), 0);
    }
  }
  assertOnlyPagesChanged(h.f.u8, before, WRITABLE);
  console.log(`# rx gso fuzz: ${JSON.stringify(counts)}`);
  if (FUZZ_RECORDED.packets !== 0) assert.deepEqual(counts, FUZZ_RECORDED);
  assert.equal(XEN_NETIF_RSP_ERROR, -1);
});
