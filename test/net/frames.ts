/**
 * Test helpers: build and parse the Ethernet / ARP / IPv4 / UDP / TCP / DHCP frames a guest would send, small
 * and explicit (RFC 826, 791, 768, 793, 2131), so the tests can play guest against the switch and passt.
 */

import { formatMac, macAt, parseIpv4, parseMac, writeMac } from "../../src/net/ethernet.js";

export const BROADCAST = "ff:ff:ff:ff:ff:ff";

export function eth(dst: string, src: string, type: number, payload: Uint8Array): Buffer {
  const f = Buffer.alloc(14 + payload.length);
  writeMac(f, 0, parseMac(dst));
  writeMac(f, 6, parseMac(src));
  f.writeUInt16BE(type, 12);
  f.set(payload, 14);
  return f;
}

function ip4(b: Buffer, off: number, a: string): void {
  b.writeUInt32BE(parseIpv4(a), off);
}

export function arpRequest(srcMac: string, srcIp: string, targetIp: string): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0); // Ethernet
  a.writeUInt16BE(0x0800, 2);
  a[4] = 6; a[5] = 4;
  a.writeUInt16BE(1, 6); // request
  writeMac(a, 8, parseMac(srcMac));
  ip4(a, 14, srcIp);
  ip4(a, 24, targetIp);
  return eth(BROADCAST, srcMac, 0x0806, a);
}

/** One's-complement sum of 16-bit words (RFC 1071). */
function csum(parts: Uint8Array[]): number {
  let s = 0;
  for (const p of parts) {
    for (let i = 0; i < p.length; i += 2) s += (p[i]! << 8) | (p[i + 1] ?? 0);
  }
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

export function ipv4(src: string, dst: string, proto: number, l4: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + l4.length, 2);
  h.writeUInt16BE(0x4000, 6); // DF
  h[8] = 64;
  h[9] = proto;
  ip4(h, 12, src);
  ip4(h, 16, dst);
  h.writeUInt16BE(csum([h]), 10);
  return Buffer.concat([h, l4]);
}

function pseudo(src: string, dst: string, proto: number, len: number): Buffer {
  const p = Buffer.alloc(12);
  ip4(p, 0, src);
  ip4(p, 4, dst);
  p[9] = proto;
  p.writeUInt16BE(len, 10);
  return p;
}

export function udp(src: string, sport: number, dst: string, dport: number, data: Uint8Array): Buffer {
  const u = Buffer.alloc(8 + data.length);
  u.writeUInt16BE(sport, 0);
  u.writeUInt16BE(dport, 2);
  u.writeUInt16BE(u.length, 4);
  u.set(data, 8);
  u.writeUInt16BE(csum([pseudo(src, dst, 17, u.length), u]) || 0xffff, 6);
  return ipv4(src, dst, 17, u);
}

export const TCP_FIN = 0x01, TCP_SYN = 0x02, TCP_RST = 0x04, TCP_PSH = 0x08, TCP_ACK = 0x10;

export function tcp(src: string, sport: number, dst: string, dport: number,
                    seq: number, ack: number, flags: number, data: Uint8Array = Buffer.alloc(0)): Buffer {
  const syn = (flags & TCP_SYN) !== 0;
  const hl = syn ? 24 : 20; // a SYN carries MSS (RFC 879) like every real stack
  const t = Buffer.alloc(hl + data.length);
  t.writeUInt16BE(sport, 0);
  t.writeUInt16BE(dport, 2);
  t.writeUInt32BE(seq >>> 0, 4);
  t.writeUInt32BE(ack >>> 0, 8);
  t[12] = (hl / 4) << 4;
  t[13] = flags;
  t.writeUInt16BE(65535, 14);
  if (syn) t.set([2, 4, 0x05, 0xb4], 20); // MSS 1460
  t.set(data, hl);
  t.writeUInt16BE(csum([pseudo(src, dst, 6, t.length), t]), 16);
  return ipv4(src, dst, 6, t);
}

/** DHCPDISCOVER (RFC 2131 4.4.1) from `mac`, from 0.0.0.0:68 to 255.255.255.255:67. */
export function dhcpDiscover(mac: string, xid: number): Buffer {
  const d = Buffer.alloc(240 + 4);
  d[0] = 1; d[1] = 1; d[2] = 6; // BOOTREQUEST, Ethernet, hlen
  d.writeUInt32BE(xid, 4);
  d.writeUInt16BE(0x8000, 10); // broadcast flag
  writeMac(d, 28, parseMac(mac));
  d.writeUInt32BE(0x63825363, 236); // magic cookie
  d.set([53, 1, 1, 255], 240); // DHCP message type = DISCOVER; end
  return eth(BROADCAST, mac, 0x0800, udp("0.0.0.0", 68, "255.255.255.255", 67, d));
}

export interface Parsed {
  dst: string;
  src: string;
  type: number;
  arp?: { op: number; senderMac: string; senderIp: string; targetMac: string; targetIp: string };
  ip?: { src: string; dst: string; proto: number };
  udp?: { sport: number; dport: number; data: Buffer };
  tcp?: { sport: number; dport: number; seq: number; ack: number; flags: number; data: Buffer };
}

const ipStr = (b: Buffer, o: number): string => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

export function parse(frame: Buffer): Parsed {
  const p: Parsed = { dst: formatMac(macAt(frame, 0)), src: formatMac(macAt(frame, 6)), type: frame.readUInt16BE(12) };
  const b = frame.subarray(14);
  if (p.type === 0x0806 && b.length >= 28) {
    p.arp = {
      op: b.readUInt16BE(6), senderMac: formatMac(macAt(b, 8)), senderIp: ipStr(b, 14),
      targetMac: formatMac(macAt(b, 18)), targetIp: ipStr(b, 24),
    };
  } else if (p.type === 0x0800 && b.length >= 20) {
    const ihl = (b[0]! & 0xf) * 4;
    const total = b.readUInt16BE(2);
    p.ip = { src: ipStr(b, 12), dst: ipStr(b, 16), proto: b[9]! };
    const l4 = b.subarray(ihl, total);
    if (p.ip.proto === 17 && l4.length >= 8) {
      p.udp = { sport: l4.readUInt16BE(0), dport: l4.readUInt16BE(2), data: l4.subarray(8) };
    } else if (p.ip.proto === 6 && l4.length >= 20) {
      const off = (l4[12]! >> 4) * 4;
      p.tcp = {
        sport: l4.readUInt16BE(0), dport: l4.readUInt16BE(2), seq: l4.readUInt32BE(4), ack: l4.readUInt32BE(8),
        flags: l4[13]!, data: l4.subarray(off),
      };
    }
  }
  return p;
}
