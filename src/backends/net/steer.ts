/**
 * Receive steering for a multi-queue vif: which queue's rx ring a frame from the wire goes to. As Linux
 * netback's xenvif_select_queue (skb_get_hash(skb) % num_queues, without a front-end-configured Toeplitz
 * hash), every frame of one flow — same IPv4/IPv6 addresses and, for TCP and UDP, ports — lands on the same
 * queue, so a flow's frames keep their order; frames without such a flow (ARP, other protocols) go to queue 0.
 * One VLAN tag is looked through. Reads only inside [0, len); allocates nothing.
 */
const ETHERTYPE_VLAN = 0x8100, ETHERTYPE_IPV4 = 0x0800, ETHERTYPE_IPV6 = 0x86dd;
const IPPROTO_TCP = 6, IPPROTO_UDP = 17;

/** Mixes one 32-bit word into a running hash (multiply, then fold the high half down). */
function mix(h: number, w: number): number {
  h = Math.imul(h ^ w, 0x9e3779b1);
  return (h ^ (h >>> 16)) >>> 0;
}

/** MurmurHash3's fmix32 finaliser: every input bit reaches the low bits the modulo keeps. */
function fmix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The queue (0 .. n - 1) for frame f[0, len). */
export function flowQueue(f: Uint8Array, len: number, n: number): number {
  if (n <= 1 || len < 14) return 0;
  let l3 = 14, type = (f[12]! << 8) | f[13]!;
  if (type === ETHERTYPE_VLAN) {
    if (len < 18) return 0;
    type = (f[16]! << 8) | f[17]!;
    l3 = 18;
  }
  let h = 0x811c9dc5, proto: number, l4: number;
  if (type === ETHERTYPE_IPV4) {
    if (len < l3 + 20) return 0;
    const ihl = (f[l3]! & 0x0f) * 4;
    if (ihl < 20) return 0;
    for (let i = l3 + 12; i < l3 + 20; i += 4) h = mix(h, (f[i]! << 24) | (f[i + 1]! << 16) | (f[i + 2]! << 8) | f[i + 3]!);
    proto = f[l3 + 9]!;
    // A fragment after the first has no ports: hash it by addresses only (and the first one too, so both agree).
    const frag = ((f[l3 + 6]! & 0x3f) << 8) | f[l3 + 7]!;
    l4 = frag !== 0 ? -1 : l3 + ihl;
  } else if (type === ETHERTYPE_IPV6) {
    if (len < l3 + 40) return 0;
    for (let i = l3 + 8; i < l3 + 40; i += 4) h = mix(h, (f[i]! << 24) | (f[i + 1]! << 16) | (f[i + 2]! << 8) | f[i + 3]!);
    proto = f[l3 + 6]!; // extension headers are not followed: such frames hash by addresses
    l4 = l3 + 40;
  } else return 0;
  if (l4 >= 0 && (proto === IPPROTO_TCP || proto === IPPROTO_UDP) && len >= l4 + 4) {
    h = mix(h, (proto << 24) | 0);
    h = mix(h, (f[l4]! << 24) | (f[l4 + 1]! << 16) | (f[l4 + 2]! << 8) | f[l4 + 3]!);
  }
  return fmix(h) % n;
}
