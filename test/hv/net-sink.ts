/**
 * A station on a Xeno bridge, written in the test (test/hv/io-fair.test.ts): a client of the bridge daemon with its own MAC and IPv4 address that answers ARP for its address and ICMP echo requests from
 * the addresses it is told to (RFC 826, RFC 792), counts the frames it gets per source MAC, and can read slowly
 * (`slow(bytesPerSecond)`), which makes the daemon's queue towards it fill when a guest sends faster — a slow
 * receiver that two domains share. It speaks the daemon's stream framing on its own unix socket.
 */
import { createConnection, type Socket } from "node:net";
import { bridgeSocketPath } from "../../src/net/paths.js";
import { StreamFrameDecoder, encodeStreamFrame } from "../../src/net/framing.js";
import { ARP_OP_REPLY, ARP_OP_REQUEST, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETH_HEADER_LEN, IPPROTO_ICMP, etherTypeOf, macAt, parseArp,
  parseMac, parseIpv4, writeMac } from "../../src/net/ethernet.js";

/** Slow reading: this many bytes every SLOW_TICK_MS at most. */
const SLOW_TICK_MS = 20;

export class NetSink {
  /** Frames and bytes received per source MAC. */
  readonly frames = new Map<number, number>();
  readonly bytes = new Map<number, number>();
  /** Echo requests answered, per source IPv4 address. */
  readonly echoed = new Map<number, number>();
  private slowTimer: NodeJS.Timeout | null = null;
  private readonly dec = new StreamFrameDecoder((f) => this.frame(f));

  private constructor(private readonly sock: Socket, private readonly mac: number, private readonly ip: number,
    private readonly replyTo: Set<number>) {
    // Paused mode: Node keeps at most its high-water mark (64 KiB) read ahead, so reading slowly here leaves the
    // rest in the kernel's socket buffer and then in the daemon's queue for this port.
    sock.on("readable", () => { if (this.slowTimer === null) this.take(Infinity); });
    sock.on("error", () => {});
  }

  static async open(bridge: string, runDir: string, mac: string, ip: string, replyTo: string[]): Promise<NetSink> {
    const sock = createConnection(bridgeSocketPath(bridge, process.env, runDir));
    await new Promise<void>((resolve, reject) => { sock.once("connect", resolve); sock.once("error", reject); });
    return new NetSink(sock, parseMac(mac), parseIpv4(ip), new Set(replyTo.map(parseIpv4)));
  }

  /** Read at most `bytesPerSecond` (0: as fast as frames come, again). */
  slow(bytesPerSecond: number): void {
    if (this.slowTimer !== null) { clearInterval(this.slowTimer); this.slowTimer = null; }
    if (bytesPerSecond <= 0) { this.take(Infinity); return; }
    const chunk = Math.max(1, Math.round((bytesPerSecond * SLOW_TICK_MS) / 1000));
    this.slowTimer = setInterval(() => this.take(chunk), SLOW_TICK_MS);
  }

  close(): void { this.slow(0); this.sock.destroy(); }

  private take(max: number): void {
    while (max > 0 && this.sock.readableLength > 0) {
      const c = this.sock.read(Math.min(max, this.sock.readableLength)) as Buffer | null;
      if (c === null) break;
      max -= c.length;
      this.dec.push(c);
    }
  }

  private send(f: Uint8Array): void { if (!this.sock.destroyed) this.sock.write(encodeStreamFrame(f)); }

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
      this.send(r);
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
    this.send(r);
  }
}
