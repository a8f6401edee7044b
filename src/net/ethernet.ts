/**
 * Ethernet II frame layout (IEEE 802.3 clause 3.1.1) and the few ARP / IPv4 / UDP fields the switch and the
 * uplink guard look at. Frames are plain byte arrays starting at the destination MAC; no preamble, no FCS
 * (what netfront, QEMU's stream netdev and passt all exchange).
 *
 * MAC addresses are handled as numbers on the hot path: 48 bits fit exactly in a double (< 2^53), so a MAC
 * table keyed by number needs no string per frame.
 */

import { NetError } from "./errors.js";

/** Destination MAC (6) + source MAC (6) + EtherType (2). */
export const ETH_HEADER_LEN = 14;
/** Shortest frame accepted: a bare header (the 60-byte 802.3 minimum is padding that virtual links omit). */
export const MIN_FRAME = ETH_HEADER_LEN;
/** Longest frame accepted: a 65535-byte payload (passt's ETH_MAX_MTU, the IPv4 total-length limit) + header. */
export const MAX_FRAME = 65535 + ETH_HEADER_LEN;

/** EtherTypes (IEEE Registration Authority). */
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;

/** The broadcast address ff:ff:ff:ff:ff:ff as a number. */
export const MAC_BROADCAST = 0xffff_ffff_ffff;

/** The MAC at `off` in `b` as a 48-bit number (big-endian, as transmitted). */
export function macAt(b: Uint8Array, off: number): number {
  const lo = ((b[off + 2]! << 24) | (b[off + 3]! << 16) | (b[off + 4]! << 8) | b[off + 5]!) >>> 0;
  return (b[off]! * 256 + b[off + 1]!) * 0x1_0000_0000 + lo;
}

/** Group (multicast or broadcast) address: the I/G bit, bit 0 of the first octet (IEEE 802-2014 8.2). */
export function isGroupMacAt(b: Uint8Array, off: number): boolean {
  return (b[off]! & 1) !== 0;
}

/** Destination is 01:80:c2:00:00:0X: IEEE 802.1D reserved link-local groups (STP, pause, LACP, 802.1X) that a
 * bridge must not forward (802.1Q-2018 8.6.3 table 8-1; Linux's bridge drops them unless group_fwd_mask says). */
export function isReservedGroupMacAt(b: Uint8Array, off: number): boolean {
  return b[off] === 0x01 && b[off + 1] === 0x80 && b[off + 2] === 0xc2 && b[off + 3] === 0 && b[off + 4] === 0 &&
    (b[off + 5]! & 0xf0) === 0;
}

export function formatMac(mac: number): string {
  return mac.toString(16).padStart(12, "0").replace(/(..)(?!$)/g, "$1:");
}

/** "52:54:00:12:34:56" (or with '-') → number; throws NET_BAD_OPTION. */
export function parseMac(s: string): number {
  const m = /^([0-9a-fA-F]{2})([:-][0-9a-fA-F]{2}){5}$/.exec(s);
  if (m === null) throw new NetError("NET_BAD_OPTION", `'${s}' is not a MAC address (expected xx:xx:xx:xx:xx:xx)`);
  return parseInt(s.replace(/[:-]/g, ""), 16);
}

export function writeMac(b: Uint8Array, off: number, mac: number): void {
  const hi = Math.floor(mac / 0x1_0000_0000), lo = mac >>> 0;
  b[off] = hi >>> 8; b[off + 1] = hi & 0xff;
  b[off + 2] = lo >>> 24; b[off + 3] = (lo >>> 16) & 0xff; b[off + 4] = (lo >>> 8) & 0xff; b[off + 5] = lo & 0xff;
}

/** Dotted-quad IPv4 → 32-bit unsigned number; throws NET_BAD_OPTION. */
export function parseIpv4(s: string): number {
  const parts = s.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) {
    throw new NetError("NET_BAD_OPTION", `'${s}' is not an IPv4 address`);
  }
  return parts.reduce((a, p) => a * 256 + Number(p), 0);
}

export function formatIpv4(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
}

export function etherTypeOf(frame: Uint8Array): number {
  return (frame[12]! << 8) | frame[13]!;
}

/** ARP over Ethernet/IPv4 (RFC 826): the 28-byte body after the Ethernet header. */
export const ARP_LEN = 28;
export const ARP_OP_REQUEST = 1;
export const ARP_OP_REPLY = 2;

export interface ArpView {
  op: number;
  senderMac: number;
  senderIp: number;
  targetMac: number;
  targetIp: number;
}

/** The ARP fields of an Ethernet/IPv4 ARP frame, or undefined if it is not one (htype 1, ptype 0x0800, 6/4). */
export function parseArp(frame: Uint8Array): ArpView | undefined {
  const o = ETH_HEADER_LEN;
  if (frame.length < o + ARP_LEN || etherTypeOf(frame) !== ETHERTYPE_ARP) return undefined;
  if (frame[o] !== 0 || frame[o + 1] !== 1 || frame[o + 2] !== 0x08 || frame[o + 3] !== 0 ||
      frame[o + 4] !== 6 || frame[o + 5] !== 4) return undefined;
  const ip = (p: number): number => ((frame[p]! << 24) | (frame[p + 1]! << 16) | (frame[p + 2]! << 8) | frame[p + 3]!) >>> 0;
  return {
    op: (frame[o + 6]! << 8) | frame[o + 7]!,
    senderMac: macAt(frame, o + 8), senderIp: ip(o + 14),
    targetMac: macAt(frame, o + 18), targetIp: ip(o + 24),
  };
}

/** IP protocol numbers (IANA). */
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** For an IPv4 frame carrying UDP (RFC 791, RFC 768): the destination port, else -1. Fragments other than the
 * first carry no UDP header and give -1. */
export function ipv4UdpDestPort(frame: Uint8Array): number {
  const o = ETH_HEADER_LEN;
  if (frame.length < o + 20 || etherTypeOf(frame) !== ETHERTYPE_IPV4 || frame[o]! >> 4 !== 4) return -1;
  if (frame[o + 9] !== IPPROTO_UDP) return -1;
  if ((((frame[o + 6]! << 8) | frame[o + 7]!) & 0x1fff) !== 0) return -1; // fragment offset
  const ihl = (frame[o]! & 0xf) * 4;
  if (ihl < 20 || frame.length < o + ihl + 8) return -1;
  return (frame[o + ihl + 2]! << 8) | frame[o + ihl + 3]!;
}
