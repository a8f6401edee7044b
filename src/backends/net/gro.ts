/**
 * Receive-side coalescing (the back-end's half of the front-end's feature-gso-tcpv4 / feature-gso-tcpv6): frames
 * from the wire that are consecutive, in-order TCP segments of one flow are joined into one large frame, which
 * netback hands to the guest as one GSO packet (XEN_NETIF_EXTRA_TYPE_GSO with gso.size = the segments' payload
 * size). On an interpreted guest CPU the per-packet work of netfront and the TCP/IP stack is what limits
 * throughput, so one packet per ~44 segments instead of one per segment is what counts (docs/networking.md).
 *
 * When segments may be joined follows Linux GRO (net/ipv4/tcp_offload.c tcp_gro_receive, net/ipv4/af_inet.c
 * inet_gro_receive, net/ipv6/ip6_offload.c): same Ethernet header, same addresses, ports, TOS/TTL (traffic
 * class/flow/hop limit for IPv6) and DF bit, no IPv4 options or fragments, no IPv6 extension headers, TCP
 * header of the same length with byte-identical options, the same ack number, only ACK (and PSH) set, a
 * sequence number that continues the held data exactly, a payload no larger than the first segment's (its
 * size is the GSO size); a smaller segment or one with PSH is joined and ends the packet. Each segment's
 * IPv4 header checksum and TCP checksum are verified before it is held (so the joined packet can be marked
 * NETRXF_data_validated | NETRXF_csum_blank); a segment that fails is delivered alone, unmarked, and the guest
 * drops it as it would on Xen. Untagged frames only (VLAN-tagged ones are delivered as they come).
 *
 * The joined packet has the first segment's headers with: IPv4 total length and header checksum recomputed
 * (IPv6 payload length), the last segment's window and PSH, and the TCP checksum field holding the
 * pseudo-header sum over the joined length (CHECKSUM_PARTIAL, as netfront's checksum_setup expects of a GSO
 * packet). A segment held alone is delivered unchanged and marked data_validated only.
 *
 * Memory: one preallocated buffer of XEN_NETIF_MAX_TX_SIZE bytes; each joined segment's payload is copied
 * into it once. Nothing is allocated per frame.
 */
import { ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_TCP, foldComplement, onesSum } from "./checksum.js";
import { GSO_TCPV4, GSO_TCPV6 } from "./gso.js";

/** The largest joined frame: what one rx packet can carry (netif's u16 sizes; 16 data slots + the extra). */
export const GRO_MAX_FRAME = 0xffff;
/** TCP flag bits (RFC 9293 §3.1). */
const TCP_FIN = 0x01, TCP_SYN = 0x02, TCP_RST = 0x04, TCP_PSH = 0x08, TCP_ACK = 0x10;
const ETH = 14;

export class TcpCoalescer {
  /** The held packet: the first segment's headers, then every joined payload. */
  readonly buf = new Uint8Array(GRO_MAX_FRAME);
  /** Bytes held (0: nothing held). */
  len = 0;
  /** Segments joined, and the GSO size (the first segment's payload length). */
  segs = 0;
  mss = 0;
  /** GSO_TCPV4 or GSO_TCPV6 while something is held. */
  type = 0;
  /** No more segments may be joined (a short segment, PSH, or full). */
  private closed = false;
  private l4 = 0;
  private hdrLen = 0;
  private nextSeq = 0;

  /** `v4`/`v6`: whether the front-end takes TCPv4/TCPv6 GSO packets now (asked per new packet). */
  constructor(private readonly v4: () => boolean, private readonly v6: () => boolean) {}

  /**
   * Tries to join `f` to the held packet. Returns true when it did (the caller keeps going); false when it
   * cannot be joined: the caller delivers what is held (take()), then calls start(f).
   */
  join(f: Uint8Array): boolean {
    if (this.len === 0 || this.closed) return false;
    const len = f.length, b = this.buf, hl = this.hdrLen, l4 = this.l4;
    if (len <= hl) return false;
    // Same Ethernet header, same IP header except the fields that vary per segment, same TCP header except
    // sequence number, window and checksum (and PSH): compared byte by byte.
    if (this.type === GSO_TCPV4) {
      for (let i = 0; i < ETH + 2; i++) if (f[i] !== b[i]) return false; // MACs, ethertype, version/IHL, TOS
      if (((f[ETH + 2]! << 8) | f[ETH + 3]!) !== len - ETH) return false; // total length: not padded
      if ((f[ETH + 6]! & 0xbf) !== 0 || f[ETH + 7] !== 0 || (f[ETH + 6]! & 0x40) !== (b[ETH + 6]! & 0x40)) return false;
      for (let i = ETH + 8; i < ETH + 10; i++) if (f[i] !== b[i]) return false; // TTL, protocol
      for (let i = ETH + 12; i < ETH + 20; i++) if (f[i] !== b[i]) return false; // addresses
      if (foldComplement(onesSum(f, ETH, 20)) !== 0) return false; // the IP header checksum holds
    } else {
      for (let i = 0; i < ETH + 4; i++) if (f[i] !== b[i]) return false; // MACs, ethertype, version/class/flow
      if (((f[ETH + 4]! << 8) | f[ETH + 5]!) !== len - ETH - 40) return false;
      for (let i = ETH + 6; i < ETH + 40; i++) if (f[i] !== b[i]) return false; // next header, hop limit, addresses
    }
    for (let i = l4; i < l4 + 4; i++) if (f[i] !== b[i]) return false; // ports
    const seq = ((f[l4 + 4]! << 24) | (f[l4 + 5]! << 16) | (f[l4 + 6]! << 8) | f[l4 + 7]!) >>> 0;
    if (seq !== this.nextSeq) return false;
    for (let i = l4 + 8; i < l4 + 13; i++) if (f[i] !== b[i]) return false; // ack, data offset
    const flags = f[l4 + 13]!;
    if ((flags & ~TCP_PSH) !== TCP_ACK) return false;
    for (let i = l4 + 18; i < hl; i++) if (f[i] !== b[i]) return false; // urgent pointer, options
    const n = len - hl;
    if (n > this.mss || this.len + n > GRO_MAX_FRAME) return false;
    if (!this.tcpChecksumOk(f, len)) return false;
    b.set(f.subarray(hl, len), this.len);
    this.len += n;
    this.segs++;
    this.nextSeq = (seq + n) >>> 0;
    b[l4 + 14] = f[l4 + 14]!; b[l4 + 15] = f[l4 + 15]!; // the latest window
    if ((flags & TCP_PSH) !== 0) { b[l4 + 13] = b[l4 + 13]! | TCP_PSH; this.closed = true; }
    if (n < this.mss || this.len + this.mss > GRO_MAX_FRAME) this.closed = true;
    return true;
  }

  /**
   * Holds `f` as the start of a new packet if it is a TCP segment that could be joined to (a negotiated GSO type,
   * untagged, no IP options or extension headers, only ACK/PSH, payload, valid checksums). Returns false (and
   * holds nothing) otherwise: the caller delivers `f` as it is. Nothing may be held when it is called.
   */
  start(f: Uint8Array): boolean {
    const len = f.length;
    if (len < ETH + 40) return false;
    const type = (f[12]! << 8) | f[13]!;
    let l4: number;
    if (type === ETHERTYPE_IPV4) {
      if (!this.v4() || f[ETH] !== 0x45 || f[ETH + 9] !== IPPROTO_TCP) return false;
      if (((f[ETH + 2]! << 8) | f[ETH + 3]!) !== len - ETH) return false;
      if ((f[ETH + 6]! & 0xbf) !== 0 || f[ETH + 7] !== 0) return false; // MF or a fragment offset
      if (foldComplement(onesSum(f, ETH, 20)) !== 0) return false;
      l4 = ETH + 20;
      this.type = GSO_TCPV4;
    } else if (type === ETHERTYPE_IPV6) {
      if (!this.v6() || f[ETH]! >> 4 !== 6 || f[ETH + 6] !== IPPROTO_TCP) return false;
      if (((f[ETH + 4]! << 8) | f[ETH + 5]!) !== len - ETH - 40) return false;
      l4 = ETH + 40;
      this.type = GSO_TCPV6;
    } else return false;
    if (l4 + 20 > len) return false;
    const thl = (f[l4 + 12]! >> 4) * 4, flags = f[l4 + 13]!;
    if (thl < 20 || l4 + thl >= len) return false; // no payload: nothing to join
    if ((flags & ~TCP_PSH) !== TCP_ACK || (flags & (TCP_SYN | TCP_FIN | TCP_RST)) !== 0) return false;
    this.l4 = l4;
    this.hdrLen = l4 + thl;
    if (!this.tcpChecksumOk(f, len)) return false;
    this.buf.set(f);
    this.len = len;
    this.segs = 1;
    this.mss = len - this.hdrLen;
    const seq = ((f[l4 + 4]! << 24) | (f[l4 + 5]! << 16) | (f[l4 + 6]! << 8) | f[l4 + 7]!) >>> 0;
    this.nextSeq = (seq + this.mss) >>> 0;
    this.closed = (flags & TCP_PSH) !== 0 || this.len + this.mss > GRO_MAX_FRAME;
    return true;
  }

  /**
   * Finishes the held packet for delivery and returns its length (0: nothing held); the bytes are buf[0, len).
   * With more than one segment the headers are rewritten as described at the top; a single segment is left
   * as it came. The caller must call clear() once it has delivered or copied it.
   */
  finish(): number {
    const len = this.len;
    if (len === 0 || this.segs === 1) return len;
    const b = this.buf, l4 = this.l4;
    let pseudo: number;
    if (this.type === GSO_TCPV4) {
      put16(b, ETH + 2, len - ETH);
      b[ETH + 10] = 0; b[ETH + 11] = 0;
      put16(b, ETH + 10, foldComplement(onesSum(b, ETH, 20)));
      pseudo = onesSum(b, ETH + 12, 8) + IPPROTO_TCP + (len - l4);
    } else {
      put16(b, ETH + 4, len - ETH - 40);
      pseudo = onesSum(b, ETH + 8, 32) + IPPROTO_TCP + (len - l4);
    }
    // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, not complemented (what a sender with
    // checksum offload leaves there, and what netfront's skb_checksum_setup expects of a csum_blank packet).
    put16(b, l4 + 16, (~foldComplement(pseudo)) & 0xffff);
    return len;
  }

  /** Forgets the held packet. */
  clear(): void { this.len = 0; this.segs = 0; this.closed = false; }

  /** Whether a joined packet is full or ended (deliver it now rather than wait for more). */
  get done(): boolean { return this.closed; }

  /** The TCP checksum of the segment f[0, len) verifies (l4 and the IP version as start() found them). */
  private tcpChecksumOk(f: Uint8Array, len: number): boolean {
    const l4 = this.l4, tcpLen = len - l4;
    const pseudo = this.type === GSO_TCPV4 ? onesSum(f, ETH + 12, 8) : onesSum(f, ETH + 8, 32);
    return foldComplement(onesSum(f, l4, tcpLen, pseudo + IPPROTO_TCP + tcpLen)) === 0;
  }
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff; b[at + 1] = v & 0xff;
}
