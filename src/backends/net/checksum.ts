/**
 * Completing the L4 checksum of a frame a guest sent with NETTXF_csum_blank (Linux CHECKSUM_PARTIAL).
 *
 * Linux netfront always offloads IPv4 TCP/UDP checksums (NETIF_F_IP_CSUM is set unconditionally and no
 * back-end key turns it off), so every TCP segment and UDP datagram it sends arrives with the checksum field
 * holding only the pseudo-header sum. Linux netback passes such frames on as CHECKSUM_PARTIAL and lets the
 * stack or NIC finish them; Xeno's wire (switch, uplink) wants finished frames, so the back-end finishes them
 * here, the way skb_checksum_help would: zero the field, sum pseudo-header + L4 header + payload (RFC 1071),
 * store the complement. The field's previous contents are ignored, so a guest that left garbage there still
 * gets a correct checksum.
 *
 * Handled: Ethernet, up to two VLAN tags (802.1Q/802.1ad), IPv4 without fragmentation, IPv6 with
 * hop-by-hop / routing / destination-options extension headers, TCP and UDP. Anything else with csum_blank
 * cannot be finished (Linux's skb_checksum_setup answers -EPROTO the same way) and the caller drops it.
 */

export const ETHERTYPE_IPV4 = 0x0800, ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100, ETHERTYPE_QINQ = 0x88a8;
export const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_HOPOPTS = 0, IPPROTO_ROUTING = 43, IPPROTO_FRAGMENT = 44, IPPROTO_DSTOPTS = 60;
/** Offset of the checksum field in the L4 header. */
const TCP_CSUM = 16, UDP_CSUM = 6;
const TCP_MIN = 20, UDP_MIN = 8;
/** At most this many IPv6 extension headers are walked. */
const MAX_EXT_HEADERS = 8;

/** Why a checksum could not be completed (null = done). */
export type ChecksumFailure = "not-ip" | "truncated" | "fragment" | "protocol";

/** One's-complement sum of `len` bytes of `b` from `off`, as 16-bit big-endian words, added to `sum`. */
export function onesSum(b: Uint8Array, off: number, len: number, sum = 0): number {
  let s = sum;
  const end = off + len - 1;
  let i = off;
  // Doubles hold the unfolded sum exactly: 32 K words × 0xffff stays far below 2^53.
  for (; i < end; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (i === end) s += b[i]! << 8;
  return s;
}

/** Folds a sum to 16 bits and complements it. */
export function foldComplement(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}

/**
 * Where the L3 header of the Ethernet frame `f[0, len)` starts, after up to two VLAN tags (802.1Q/802.1ad); its
 * ethertype is the two bytes in front of it. -1 when the frame ends first.
 */
export function l3Offset(f: Uint8Array, len: number): number {
  if (len < 14) return -1;
  let at = 12;
  let type = (f[at]! << 8) | f[at + 1]!;
  for (let tags = 0; (type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ) && tags < 2; tags++) {
    at += 4;
    if (at + 2 > len) return -1;
    type = (f[at]! << 8) | f[at + 1]!;
  }
  return at + 2;
}

/**
 * Completes the TCP/UDP checksum of the Ethernet frame `f[0, len)` in place. Returns null on success or why
 * it could not (nothing written then).
 */
export function completeChecksum(f: Uint8Array, len: number): ChecksumFailure | null {
  const l3 = l3Offset(f, len);
  if (l3 < 0) return "truncated";
  const type = (f[l3 - 2]! << 8) | f[l3 - 1]!;
  if (type === ETHERTYPE_IPV4) return ipv4(f, len, l3);
  if (type === ETHERTYPE_IPV6) return ipv6(f, len, l3);
  return "not-ip";
}

function ipv4(f: Uint8Array, len: number, l3: number): ChecksumFailure | null {
  if (l3 + 20 > len || f[l3]! >> 4 !== 4) return "truncated";
  const ihl = (f[l3]! & 0xf) * 4;
  const total = (f[l3 + 2]! << 8) | f[l3 + 3]!;
  // The IP length, not the frame's: short frames are padded to 60 bytes on the wire.
  if (ihl < 20 || total < ihl || l3 + total > len) return "truncated";
  const frag = ((f[l3 + 6]! << 8) | f[l3 + 7]!) & 0x3fff; // MF flag + fragment offset
  if (frag !== 0) return "fragment";
  const proto = f[l3 + 9]!;
  const l4 = l3 + ihl, l4len = total - ihl;
  // Pseudo-header: source and destination addresses, zero + protocol, L4 length.
  const pseudo = onesSum(f, l3 + 12, 8) + proto + l4len;
  return finish(f, l4, l4len, proto, pseudo);
}

function ipv6(f: Uint8Array, len: number, l3: number): ChecksumFailure | null {
  if (l3 + 40 > len || f[l3]! >> 4 !== 6) return "truncated";
  const payload = (f[l3 + 4]! << 8) | f[l3 + 5]!;
  if (l3 + 40 + payload > len) return "truncated";
  let next = f[l3 + 6]!;
  let l4 = l3 + 40;
  const end = l3 + 40 + payload;
  for (let n = 0; n < MAX_EXT_HEADERS && (next === IPPROTO_HOPOPTS || next === IPPROTO_ROUTING || next === IPPROTO_DSTOPTS); n++) {
    if (l4 + 8 > end) return "truncated";
    const hlen = (f[l4 + 1]! + 1) * 8;
    next = f[l4]!;
    l4 += hlen;
  }
  if (next === IPPROTO_FRAGMENT) return "fragment";
  if (l4 > end) return "truncated";
  const l4len = end - l4;
  // Pseudo-header: addresses, u32 upper-layer length, 3 zero bytes + next header.
  const pseudo = onesSum(f, l3 + 8, 32) + Math.floor(l4len / 0x10000) + (l4len & 0xffff) + next;
  return finish(f, l4, l4len, next, pseudo);
}

function finish(f: Uint8Array, l4: number, l4len: number, proto: number, pseudo: number): ChecksumFailure | null {
  let at: number;
  if (proto === IPPROTO_TCP) { if (l4len < TCP_MIN) return "truncated"; at = l4 + TCP_CSUM; }
  else if (proto === IPPROTO_UDP) { if (l4len < UDP_MIN) return "truncated"; at = l4 + UDP_CSUM; }
  else return "protocol";
  f[at] = 0; f[at + 1] = 0;
  let c = foldComplement(onesSum(f, l4, l4len, pseudo));
  if (proto === IPPROTO_UDP && c === 0) c = 0xffff; // RFC 768: 0 means "no checksum"
  f[at] = c >> 8; f[at + 1] = c & 0xff;
  return null;
}
