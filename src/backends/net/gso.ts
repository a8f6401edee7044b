/**
 * TCP segmentation offload for the tx path: the back-end's half of feature-gso-tcpv4 / feature-gso-tcpv6.
 *
 * With the feature offered, Linux netfront sets NETIF_F_TSO(6) and its TCP stack hands it super-packets of up
 * to 64 KiB: one Ethernet frame with one IP and one TCP header, sent as one ring packet whose first request
 * carries NETTXF_extra_info (+ csum_blank) and a XEN_NETIF_EXTRA_TYPE_GSO slot with gso.size = the MSS and
 * gso.type = TCPV4/TCPV6 (xennet_start_xmit). Linux netback turns that into a GSO skb (xenvif_set_skb_gso) and
 * leaves the cutting to the stack or the NIC; Xeno's wire wants MTU-sized frames, so the cutting happens here,
 * as Linux's tcp_gso_segment / inet_gso_segment / ipv6_gso_segment would do it: every segment gets a copy of
 * the Ethernet (+ VLAN) / IP / TCP headers with
 *  - IPv4: total length of the segment, id = the packet's id + segment index (mod 2^16), header checksum
 *    recomputed; IPv6: payload length of the segment;
 *  - TCP: sequence number advanced by the payload before it, FIN and PSH only on the last segment, CWR only on
 *    the first, the checksum computed in full over pseudo-header, header and payload (the guest left only the
 *    pseudo-header sum there, NETTXF_csum_blank; whatever it wrote is ignored).
 *
 * Everything is validated before the first segment exists, so a packet is either cut completely or refused
 * (the caller answers NETIF_RSP_ERROR): gso.size 0, a GSO type the back-end did not offer or that does not
 * match the frame (TCPv4 on IPv6, UDP, …), IPv4 options or a bad header length, IPv4 fragments, IPv6
 * extension headers, an IP length that disagrees with the frame (either way), a TCP header length outside
 * 20..60 or the frame, no payload, a segment that would exceed the vif's MTU. Linux netback fails the whole
 * vif for a zero size or an unknown type (xenvif_set_skb_gso → xenvif_fatal_tx_err); here only the packet is
 * dropped. IPv4 options and IPv6 extension headers would be legal: netfront's TCP traffic does not carry them,
 * and refusing keeps the header copy a fixed, small size.
 *
 * The frame is read from the back-end's own copy (gathered from the grants), never from guest memory, so no
 * field can change between the checks and the use. Segments are built in place in that copy, without copying
 * payload: segment i's payload already sits at hdrLen + i × mss, so its headers are written into the
 * hdrLen bytes in front of it — bytes of the previous segment, which `out` has already had and may not keep.
 * The headers are saved first (a 128-byte scratch array), so the only per-segment allocation is the
 * subarray view handed to `out`, as for an ordinary frame.
 */

import { ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_TCP, foldComplement, l3Offset, onesSum } from "./checksum.js";

/** XEN_NETIF_GSO_TYPE_* (netif.h), repeated here to keep this module free of ring knowledge. */
export const GSO_TCPV4 = 1, GSO_TCPV6 = 2;
/** TCP flags byte (RFC 9293 §3.1; CWR from RFC 3168). */
const TCP_FIN = 0x01, TCP_PSH = 0x08, TCP_CWR = 0x80;
/** Largest header block: Ethernet + two VLAN tags (22) + IPv6 (40) + TCP with full options (60). */
const MAX_HEADERS = 128;

/** Why a GSO packet was refused (for the log). */
export type GsoRefusal = string;

export class TcpSegmenter {
  /** The packet's headers, saved by begin(): segments after the first overwrite them in the frame (reused). */
  private readonly hdr = new Uint8Array(MAX_HEADERS);
  private f: Uint8Array = new Uint8Array(0);
  private v6 = false;
  private l3 = 0;
  private l4 = 0;
  private hdrLen = 0;
  private mss = 0;
  private payload = 0;
  /** Payload bytes already cut, and the segment index. */
  private done = 0;
  private index = 0;
  private seq0 = 0;
  private id0 = 0;
  /** Ones'-complement sum of the pseudo-header's addresses and protocol (the length is added per segment). */
  private pseudo = 0;
  /** Offset in the frame of the segment next() built last. */
  start = 0;

  /**
   * `mtu`: the largest IP packet a segment may be; `maxFrame`: the largest Ethernet frame (MTU + 18);
   * `tcpv4`/`tcpv6`: the GSO types the back-end advertised (feature-gso-tcpv4/-tcpv6).
   */
  constructor(private readonly mtu: number, private readonly maxFrame: number, private readonly tcpv4: boolean,
    private readonly tcpv6: boolean) {}

  /** Whether a GSO type was offered to the front-end (the extra is refused otherwise). */
  offered(type: number): boolean {
    return (type === GSO_TCPV4 && this.tcpv4) || (type === GSO_TCPV6 && this.tcpv6);
  }

  /**
   * Checks `f[0, len)` as a TCP super-packet of GSO `type` with MSS `mss` and prepares to cut it. Returns
   * null (then call next() until it returns 0) or why the packet must be refused. Nothing is written on refusal.
   */
  begin(f: Uint8Array, len: number, type: number, mss: number): GsoRefusal | null {
    if (!this.offered(type)) return `GSO type ${type} not negotiated`;
    if (mss === 0) return "GSO size 0";
    const l3 = l3Offset(f, len);
    if (l3 < 0) return "GSO packet truncated in its Ethernet header or VLAN tags";
    const ethertype = (f[l3 - 2]! << 8) | f[l3 - 1]!;
    let l4: number;
    if (type === GSO_TCPV4) {
      if (ethertype !== ETHERTYPE_IPV4) return `TCPv4 GSO on ethertype 0x${ethertype.toString(16)}`;
      if (l3 + 20 > len) return "TCPv4 GSO packet truncated in its IP header";
      const vhl = f[l3]!;
      if (vhl >> 4 !== 4) return `TCPv4 GSO packet with IP version ${vhl >> 4}`;
      if ((vhl & 0xf) !== 5) return `TCPv4 GSO packet with IP header length ${(vhl & 0xf) * 4} (options are not segmented)`;
      const total = (f[l3 + 2]! << 8) | f[l3 + 3]!;
      if (total !== len - l3) return `IP total length ${total} but ${len - l3} bytes after the Ethernet header`;
      if ((((f[l3 + 6]! << 8) | f[l3 + 7]!) & 0x3fff) !== 0) return "TCPv4 GSO on an IP fragment";
      if (f[l3 + 9] !== IPPROTO_TCP) return `TCPv4 GSO on IP protocol ${f[l3 + 9]}`;
      l4 = l3 + 20;
      // Pseudo-header (RFC 9293 §3.1): source, destination, zero + protocol; the TCP length is per segment.
      this.pseudo = onesSum(f, l3 + 12, 8) + IPPROTO_TCP;
      this.id0 = (f[l3 + 4]! << 8) | f[l3 + 5]!;
    } else {
      if (ethertype !== ETHERTYPE_IPV6) return `TCPv6 GSO on ethertype 0x${ethertype.toString(16)}`;
      if (l3 + 40 > len) return "TCPv6 GSO packet truncated in its IP header";
      if (f[l3]! >> 4 !== 6) return `TCPv6 GSO packet with IP version ${f[l3]! >> 4}`;
      const plen = (f[l3 + 4]! << 8) | f[l3 + 5]!;
      if (plen !== len - l3 - 40) return `IPv6 payload length ${plen} but ${len - l3 - 40} bytes after the IPv6 header`;
      if (f[l3 + 6] !== IPPROTO_TCP) return `TCPv6 GSO with next header ${f[l3 + 6]} (only TCP directly is segmented)`;
      l4 = l3 + 40;
      // Pseudo-header (RFC 8200 §8.1): addresses, upper-layer length (per segment), zero + next header.
      this.pseudo = onesSum(f, l3 + 8, 32) + IPPROTO_TCP;
      this.id0 = 0;
    }
    if (l4 + 20 > len) return "GSO packet truncated in its TCP header";
    const thl = (f[l4 + 12]! >> 4) * 4;
    if (thl < 20 || l4 + thl > len) return `TCP header length ${thl} in a ${len}-byte packet`;
    const hdrLen = l4 + thl, payload = len - hdrLen;
    if (payload === 0) return "GSO packet without payload";
    const largest = Math.min(mss, payload);
    if (hdrLen - l3 + largest > this.mtu || hdrLen + largest > this.maxFrame) {
      return `GSO size ${mss}: ${hdrLen - l3 + largest}-byte segments exceed the MTU ${this.mtu}`;
    }
    this.f = f; this.v6 = type === GSO_TCPV6; this.l3 = l3; this.l4 = l4; this.hdrLen = hdrLen;
    this.mss = mss; this.payload = payload; this.done = 0; this.index = 0;
    this.seq0 = ((f[l4 + 4]! << 24) | (f[l4 + 5]! << 16) | (f[l4 + 6]! << 8) | f[l4 + 7]!) >>> 0;
    this.hdr.set(f.subarray(0, hdrLen));
    return null;
  }

  /** Builds the next segment at `start` in the frame and returns its length, or 0 when the packet is done. */
  next(): number {
    const payload = this.payload, done = this.done;
    if (done >= payload) return 0;
    const f = this.f, h = this.hdr, hl = this.hdrLen, l3 = this.l3, l4 = this.l4;
    const n = Math.min(this.mss, payload - done);
    const base = done; // = index × mss: the headers go just in front of this segment's payload
    for (let i = 0; i < hl; i++) f[base + i] = h[i]!;
    const last = done + n === payload;
    if (this.v6) {
      put16(f, base + l3 + 4, hl - l4 + n);
    } else {
      const ip = base + l3;
      put16(f, ip + 2, hl - l3 + n);
      put16(f, ip + 4, (this.id0 + this.index) & 0xffff);
      f[ip + 10] = 0; f[ip + 11] = 0;
      put16(f, ip + 10, foldComplement(onesSum(f, ip, 20)));
    }
    const tcp = base + l4;
    const seq = (this.seq0 + done) >>> 0;
    f[tcp + 4] = seq >>> 24; f[tcp + 5] = (seq >>> 16) & 0xff; f[tcp + 6] = (seq >>> 8) & 0xff; f[tcp + 7] = seq & 0xff;
    let flags = h[l4 + 13]!;
    if (!last) flags &= ~(TCP_FIN | TCP_PSH);
    if (this.index > 0) flags &= ~TCP_CWR;
    f[tcp + 13] = flags;
    const tcpLen = hl - l4 + n;
    f[tcp + 16] = 0; f[tcp + 17] = 0;
    put16(f, tcp + 16, foldComplement(onesSum(f, tcp, tcpLen, this.pseudo + tcpLen)));
    this.done = done + n;
    this.index++;
    this.start = base;
    return hl + n;
  }

  /** Segments the packet begin() accepted is cut into. */
  get segments(): number { return Math.ceil(this.payload / this.mss); }
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff; b[at + 1] = v & 0xff;
}
