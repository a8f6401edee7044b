/**
 * Reads the bridge capture of one bench/net host → guest transfer (XENO_NET_PCAP=DIR: the daemon's
 * `<bridge>-uplink_passt_.pcap`, what passt sent, and `<bridge>-vif_N.pcap`, what the guest sent; src/net/pcap.ts)
 * and says where the retransmissions come from:
 *  - passt's data segments to the guest: first sends, resends (sequence below the highest byte sent), resend bursts;
 *  - holes in passt's first sends (the sequence jumps past the highest byte sent): frames passt dropped itself
 *    (a short send on its socket; tap_send_frames "dropped N frames due to short send");
 *  - the guest's stalls (an ACK number it repeated 3+ times) and how many of them sit at one of passt's holes; the
 *    rest were lost after passt (the bridge, netback).
 *
 *   node dist/bench/net/pcap-storm.js UPLINK.pcap VIF.pcap [GUEST_PORT, default 5001]
 */
import { readFileSync } from "node:fs";

interface Seg { len: number; seq: number; ack: number; toGuest: boolean }

function* segments(file: string, port: number): Generator<Seg> {
  const b = readFileSync(file);
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  if (b.length < 24 || dv.getUint32(0, true) !== 0xa1b2c3d4) throw new Error(`${file}: not a little-endian classic pcap file`);
  for (let o = 24; o + 16 <= b.length;) {
    const incl = dv.getUint32(o + 8, true), f = o + 16;
    o = f + incl;
    if (o > b.length || incl < 34 || dv.getUint16(f + 12) !== 0x0800) continue;
    const ip = f + 14, ihl = (b[ip]! & 15) * 4;
    if (b[ip + 9] !== 6 || incl < 14 + ihl + 20) continue;
    const tcp = ip + ihl;
    const sport = dv.getUint16(tcp), dport = dv.getUint16(tcp + 2);
    if (sport !== port && dport !== port) continue;
    yield { len: dv.getUint16(ip + 2) - ihl - (b[tcp + 12]! >> 4) * 4, seq: dv.getUint32(tcp + 4), ack: dv.getUint32(tcp + 8), toGuest: dport === port };
  }
}

const [uplink, vif, portArg] = process.argv.slice(2);
if (uplink === undefined || vif === undefined) {
  process.stderr.write("usage: node dist/bench/net/pcap-storm.js UPLINK.pcap VIF.pcap [GUEST_PORT]\n");
  process.exit(2);
}
const port = Number(portArg ?? 5001);
let data = 0, first = 0, resends = 0, bursts = 0, holeBytes = 0, inResend = false;
let hi: number | null = null;
const holes = new Set<number>();
for (const s of segments(uplink, port)) {
  if (!s.toGuest || s.len <= 0) continue;
  data++;
  if (hi === null) hi = s.seq;
  const d = (s.seq - hi) | 0;
  if (d >= 0) {
    first++;
    if (d > 0) { holes.add(hi); holeBytes += d; }
    hi = (s.seq + s.len) >>> 0;
    inResend = false;
  } else {
    resends++;
    if (!inResend) { bursts++; inResend = true; }
  }
}
const acks = new Map<number, number>();
for (const s of segments(vif, port)) if (!s.toGuest) acks.set(s.ack, (acks.get(s.ack) ?? 0) + 1);
const stalls = [...acks].filter(([, n]) => n >= 3).map(([a]) => a);
const atHoles = stalls.filter((a) => holes.has(a)).length;
console.log(JSON.stringify({ passtDataSegments: data, firstSends: first, resends, resendBursts: bursts, passtHoles: holes.size, holeBytes,
  guestStalls: stalls.length, stallsAtPasstHoles: atHoles, stallsAfterPasst: stalls.length - atHoles }));
