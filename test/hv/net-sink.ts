/**
 * A station on a Xeno bridge, written in the test (test/hv/io-fair.test.ts): a port of the bridge daemon
 * (connectBridge) with its own MAC and IPv4 address that answers ARP for its address and ICMP echo requests from
 * the addresses it is told to (RFC 826, RFC 792), counts the frames it gets per source MAC, and can read slowly
 * (`slow`: the socket read for one turn of the event loop every `everyMs`), which makes the daemon's queue
 * towards it fill when a guest sends faster — a slow receiver that two domains share.
 */
import { connectBridge, type BridgeClient } from "../../src/net/bridge-client.js";
import { ARP_OP_REPLY, ARP_OP_REQUEST, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETH_HEADER_LEN, IPPROTO_ICMP, etherTypeOf, macAt, parseArp,
  parseMac, parseIpv4, writeMac } from "../../src/net/ethernet.js";

export class NetSink {
  /** Frames and bytes received per source MAC. */
  readonly frames = new Map<number, number>();
  readonly bytes = new Map<number, number>();
  /** Echo requests answered, per source IPv4 address. */
  readonly echoed = new Map<number, number>();
  private slowTimer: NodeJS.Timeout | null = null;

  private constructor(private readonly client: BridgeClient | null, private readonly mac: number, private readonly ip: number,
    private readonly replyTo: Set<number>) {}

  static async open(bridge: string, runDir: string, mac: string, ip: string, replyTo: string[]): Promise<NetSink> {
    let sink: NetSink | null = null;
    const client = await connectBridge(bridge, (f) => sink!.frame(f), { runDir });
    sink = new NetSink(client, parseMac(mac), parseIpv4(ip), new Set(replyTo.map(parseIpv4)));
    return sink;
  }

  /** Read for one event-loop turn every `everyMs` (0: read freely again). */
  slow(everyMs: number): void {
    if (this.slowTimer !== null) { clearInterval(this.slowTimer); this.slowTimer = null; }
    if (everyMs <= 0) { this.client!.pauseReading(false); return; }
    this.client!.pauseReading(true);
    this.slowTimer = setInterval(() => { this.client!.pauseReading(false); setImmediate(() => this.client!.pauseReading(true)); }, everyMs);
  }

  close(): void { this.slow(0); this.client?.close(); }

  private frame(f: Uint8Array): void {
    const src = macAt(f, 6);
    this.frames.set(src, (this.frames.get(src) ?? 0) + 1);
    this.bytes.set(src, (this.bytes.get(src) ?? 0) + f.length);
    const type = etherTypeOf(f);
    if (type === ETHERTYPE_ARP) {
      const a = parseArp(f);
      if (a === undefined || a.op !== ARP_OP_REQUEST || a.targetIp !== this.ip) return;
      const r = new Uint8Array(ETH_HEADER_LEN + 28);
      writeMac(r, 0, a.senderMac);
      writeMac(r, 6, this.mac);
      r[12] = 0x08; r[13] = 0x06;
      r.set([0, 1, 0x08, 0, 6, 4, 0, ARP_OP_REPLY], 14);
      writeMac(r, 22, this.mac);
      new DataView(r.buffer).setUint32(28, this.ip);
      writeMac(r, 32, a.senderMac);
      new DataView(r.buffer).setUint32(38, a.senderIp);
      this.client!.send(r);
      return;
    }
    if (type !== ETHERTYPE_IPV4) return;
    const o = ETH_HEADER_LEN, dv = new DataView(f.buffer, f.byteOffset, f.length);
    if (f.length < o + 28 || f[o + 9] !== IPPROTO_ICMP || (dv.getUint16(o + 6) & 0x3fff) !== 0) return; // whole ICMP datagrams only
    const ihl = (f[o]! & 0xf) * 4, srcIp = dv.getUint32(o + 12), dstIp = dv.getUint32(o + 16);
    if (dstIp !== this.ip || f[o + ihl] !== 8 || !this.replyTo.has(srcIp)) return;
    // The echo reply: addresses swapped (the IP header checksum is unchanged by the swap), type 0, ICMP checksum redone.
    const r = new Uint8Array(f);
    const rv = new DataView(r.buffer);
    writeMac(r, 0, src);
    writeMac(r, 6, this.mac);
    rv.setUint32(o + 12, dstIp);
    rv.setUint32(o + 16, srcIp);
    const icmp = o + ihl, end = o + dv.getUint16(o + 2);
    r[icmp] = 0;
    rv.setUint16(icmp + 2, 0);
    let sum = 0;
    for (let i = icmp; i < end; i += 2) sum += (r[i]! << 8) | (i + 1 < end ? r[i + 1]! : 0);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    rv.setUint16(icmp + 2, ~sum & 0xffff);
    this.echoed.set(srcIp, (this.echoed.get(srcIp) ?? 0) + 1);
    this.client!.send(r);
  }
}
