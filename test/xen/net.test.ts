/**
 * Boots Debian's stock arm64 kernel as a Xen DomU with one vif served by netback, and plays the other end of
 * the wire in TypeScript: a host at 10.0.0.1 (MAC 02:00:00:00:00:01) that answers ARP, ICMP echo, TCP (with
 * RST) and UDP (with ICMP port unreachable), and checks every checksum of every frame the guest sends. In one
 * boot, with the guest's own xen-netfront (loaded by the initramfs) and busybox:
 *  - eth0 appears with the configured MAC; netback is connected with two queues (xen_netfront.max_queues=2 on
 *    the command line; keys under queue-0/ and queue-1/, rx-0/rx-1/tx-0/tx-1 in the guest's sysfs), so every
 *    transfer below runs over a multi-queue vif;
 *  - `ping -c 3 10.0.0.1` gets 3 replies (ARP answered synchronously inside the guest's notification, the
 *    echo replies delivered from the test's loop between guest slices);
 *  - `ping -s 8000` with MTU 9000: 8042-byte frames, so multi-slot tx (netfront's SG frags) and multi-slot rx;
 *  - a TCP SYN (`nc`) and a UDP datagram (`traceroute`) arrive with correct checksums although netfront
 *    offloads them (NETTXF_csum_blank): netback completed them;
 *  - a TCP upload (`nc -e` sending the output of `seq 1 30000`, 168,894 bytes) to a minimal TCP receiver in
 *    the peer goes through TSO: netfront sends GSO super-packets (feature-gso-tcpv4), netback cuts them into
 *    MTU-sized segments (counted in gsoPackets/gsoSegments), every segment's checksums verify and the bytes
 *    put together in sequence order are exactly what the guest sent;
 *  - a TCP download (the peer's minimal TCP sender → busybox `nc -l` in the guest, 1 MiB in 1448-byte segments,
 *    each window's segments handed to netback as one batch) goes through receive-side GSO: netfront advertised
 *    feature-gso-tcpv4 (read in XenStore), netback joined the segments into GSO packets (rxGsoPackets), the
 *    guest's md5sum of what it received equals the sender's, its eth0 counts no rx errors or drops, its kernel log
 *    has no netfront complaint (Invalid extra type, Bad GSO type, GSO size, slots, offset);
 *  - echo requests sent *to* the guest (56 and 5000 bytes of payload) are answered with the same payload;
 *  - unbinding and rebinding the driver (sysfs) closes and reconnects the vif; ping works again.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { Machine } from "../../src/hv/machine.js";
import { XenStore } from "../../src/xenstore/index.js";
import { attachNetBack, type NetBack } from "../../src/backends/net/index.js";
import { foldComplement, onesSum } from "../../src/backends/net/checksum.js";
import { framedCommand, framedOutput, machineRunner } from "./run-machine.js";

const BOOT_MS = 12 * 60_000;
const DOMID = 11;
const GUEST_MAC = "00:16:3e:00:00:0b", HOST_MAC = "02:00:00:00:00:01";
const GUEST_IP = [10, 0, 0, 2], HOST_IP = [10, 0, 0, 1];

const macBytes = (s: string): number[] => s.split(":").map((x) => parseInt(x, 16));
const ipEq = (f: Uint8Array, at: number, ip: number[]): boolean => ip.every((b, i) => f[at + i] === b);
const u16 = (f: Uint8Array, at: number): number => (f[at]! << 8) | f[at + 1]!;
const put16 = (f: Uint8Array, at: number, v: number): void => { f[at] = v >> 8; f[at + 1] = v & 0xff; };
const u32 = (f: Uint8Array, at: number): number => ((f[at]! << 24) | (f[at + 1]! << 16) | (f[at + 2]! << 8) | f[at + 3]!) >>> 0;
const put32 = (f: Uint8Array, at: number, v: number): void => { put16(f, at, v >>> 16); put16(f, at + 2, v & 0xffff); };
const TCP_FIN = 0x01, TCP_SYN = 0x02, TCP_ACK = 0x10;
/** The peer's TCP receiver: its port and initial sequence number. */
const SINK_PORT = 5001, SINK_ISN = 0x10000000;
/** The peer's TCP sender: its port, the guest's listening port, initial sequence number, segment size, bytes. */
const SRC_PORT = 40100, DL_PORT = 5002, SRC_ISN = 0x7fffff00, SRC_MSS = 1448, DL_BYTES = 1 << 20;
/** Byte i of the download (a pattern no shorter period hides). */
const dlByte = (i: number): number => (i * 7 + (i >>> 10) + (i >>> 17)) & 0xff;

function ethFrame(type: number, payloadLen: number): Uint8Array {
  const f = new Uint8Array(14 + payloadLen);
  f.set(macBytes(GUEST_MAC), 0); f.set(macBytes(HOST_MAC), 6); put16(f, 12, type);
  return f;
}

/** An IPv4 packet from the host to the guest in an Ethernet frame; the L4 part is filled by the caller. */
function ipv4Frame(proto: number, l4len: number): Uint8Array {
  const f = ethFrame(0x0800, 20 + l4len);
  f[14] = 0x45; put16(f, 16, 20 + l4len); f[22] = 64; f[23] = proto;
  f.set(HOST_IP, 26); f.set(GUEST_IP, 30);
  put16(f, 24, foldComplement(onesSum(f, 14, 20)));
  return f;
}

/** Checksum verification of one frame from the guest; returns a description of what is wrong, or null. */
function badChecksum(f: Uint8Array): string | null {
  const type = u16(f, 12);
  if (type === 0x0800) {
    const ihl = (f[14]! & 15) * 4, total = u16(f, 16), proto = f[23]!;
    if (foldComplement(onesSum(f, 14, ihl)) !== 0) return "IPv4 header";
    if ((u16(f, 20) & 0x3fff) !== 0) return null; // fragments: L4 checked on the first only, skip
    const l4 = 14 + ihl, len = total - ihl;
    if (proto === 1) return foldComplement(onesSum(f, l4, len)) === 0 ? null : "ICMP";
    if (proto === 6 || proto === 17) {
      if (proto === 17 && u16(f, l4 + 6) === 0) return null; // UDP without checksum
      const s = onesSum(f, l4, len, onesSum(f, 26, 8) + proto + len);
      return foldComplement(s) === 0 ? null : proto === 6 ? "TCP" : "UDP";
    }
    return null;
  }
  if (type === 0x86dd) {
    let next = f[20]!, l4 = 54;
    const end = 54 + u16(f, 18);
    while (next === 0 || next === 43 || next === 60) { next = f[l4]!; l4 += (f[l4 + 1]! + 1) * 8; }
    if (next !== 58 && next !== 6 && next !== 17) return null;
    const len = end - l4;
    const s = onesSum(f, l4, len, onesSum(f, 22, 32) + len + next);
    return foldComplement(s) === 0 ? null : `IPv6 next header ${next}`;
  }
  return null;
}

/** The host at 10.0.0.1. */
class Peer {
  back: NetBack | null = null;
  /** Replies waiting for the test loop (delivered between guest slices). */
  readonly queue: Uint8Array[] = [];
  readonly seen = { arp: 0, echoRequests: 0, bigEchoRequests: 0, tcpSyn: 0, udp: 0, other: 0, frames: 0, maxFrame: 0 };
  readonly bad: string[] = [];
  readonly echoReplies = new Map<number, Uint8Array>();
  /**
   * A TCP receiver on SINK_PORT, one connection at a time: SYN answered with SYN+ACK (MSS 8960, window 65535,
   * no window scaling), in-order data kept, every segment ACKed at once (cumulatively), FIN answered with FIN+ACK.
   */
  readonly sink = { rcvNxt: 0, port: 0, data: [] as Uint8Array[], bytes: 0, segments: 0, fin: false };
  /**
   * A TCP sender to the guest's DL_PORT: SYN (no window scaling, so the guest's window is at most 65535),
   * then as many SRC_MSS segments as the guest's window allows, handed to netback as one batch (receive(f,
   * more) + flushRx) each time an ACK opens the window; FIN after the last byte. No retransmission: netback's
   * rx queue does not drop within a 64 KiB window. A RST (listener not up yet) lets the test send SYN again.
   */
  readonly src = { state: "idle" as "idle" | "syn" | "reset" | "est" | "fin" | "done", una: 0, nxt: 0, wnd: 0, rcvNxt: 0,
    segments: 0, batches: 0 };

  /** netback's `out`: one frame from the guest (a view valid during the call only). */
  onFrame = (f: Uint8Array): void => {
    this.seen.frames++;
    this.seen.maxFrame = Math.max(this.seen.maxFrame, f.length);
    const why = badChecksum(f);
    if (why !== null) this.bad.push(`${why} checksum in a ${f.length}-byte frame`);
    const type = u16(f, 12);
    if (type === 0x0806 && u16(f, 20) === 1 && ipEq(f, 38, HOST_IP)) {
      // ARP request for us: answered at once, from inside the guest's notification (re-entrant receive).
      this.seen.arp++;
      const r = ethFrame(0x0806, 28);
      r.set(f.subarray(6, 12), 0);
      put16(r, 14, 1); put16(r, 16, 0x0800); r[18] = 6; r[19] = 4; put16(r, 20, 2);
      r.set(macBytes(HOST_MAC), 22); r.set(HOST_IP, 28); r.set(f.subarray(22, 32), 32);
      assert.ok(this.back!.receive(r), "ARP reply delivered");
      return;
    }
    if (type !== 0x0800 || !ipEq(f, 30, HOST_IP)) { this.seen.other++; return; }
    const ihl = (f[14]! & 15) * 4, l4 = 14 + ihl, len = u16(f, 16) - ihl, proto = f[23]!;
    if (proto === 6 && u16(f, l4 + 2) === SRC_PORT) { this.tcpSource(f, l4, len); return; }
    if (proto === 1 && f[l4] === 8) {
      // Echo request → echo reply with the same id, sequence and data.
      this.seen.echoRequests++;
      if (f.length > 4096) this.seen.bigEchoRequests++;
      const r = ipv4Frame(1, len);
      r.set(f.subarray(l4, l4 + len), 34);
      r[34] = 0; put16(r, 36, 0); put16(r, 36, foldComplement(onesSum(r, 34, len)));
      r.set(f.subarray(6, 12), 0);
      this.queue.push(r);
    } else if (proto === 1 && f[l4] === 0) {
      this.echoReplies.set(u16(f, l4 + 6), f.slice(l4 + 8, l4 + len));
    } else if (proto === 6 && u16(f, l4 + 2) === SINK_PORT) {
      this.tcpSink(f, l4, len);
    } else if (proto === 6 && (f[l4 + 13]! & 0x02) !== 0) {
      // SYN → RST+ACK (connection refused).
      this.seen.tcpSyn++;
      const r = ipv4Frame(6, 20);
      r.set(f.subarray(l4 + 2, l4 + 4), 34); r.set(f.subarray(l4, l4 + 2), 36);
      const seq = ((f[l4 + 4]! << 24) | (f[l4 + 5]! << 16) | (f[l4 + 6]! << 8) | f[l4 + 7]!) >>> 0;
      const ack = (seq + 1) >>> 0;
      r[42] = ack >>> 24; r[43] = (ack >>> 16) & 0xff; r[44] = (ack >>> 8) & 0xff; r[45] = ack & 0xff;
      r[46] = 0x50; r[47] = 0x14; // RST, ACK
      put16(r, 50, foldComplement(onesSum(r, 34, 20, onesSum(r, 26, 8) + 6 + 20)));
      this.queue.push(r);
    } else if (proto === 17) {
      // UDP → ICMP port unreachable quoting the IP header and 8 bytes (what traceroute waits for).
      this.seen.udp++;
      const quote = Math.min(ihl + 8, u16(f, 16));
      const r = ipv4Frame(1, 8 + quote);
      r[34] = 3; r[35] = 3;
      r.set(f.subarray(14, 14 + quote), 42);
      put16(r, 36, foldComplement(onesSum(r, 34, 8 + quote)));
      this.queue.push(r);
    } else this.seen.other++;
  };

  private tcpSink(f: Uint8Array, l4: number, len: number): void {
    const s = this.sink;
    const flags = f[l4 + 13]!, thl = (f[l4 + 12]! >> 4) * 4, seq = u32(f, l4 + 4), n = len - thl;
    if ((flags & TCP_SYN) !== 0) {
      Object.assign(s, { rcvNxt: (seq + 1) >>> 0, port: u16(f, l4), data: [], bytes: 0, segments: 0, fin: false });
      this.tcpReply(TCP_SYN | TCP_ACK, SINK_ISN, true);
      return;
    }
    if (n > 0) s.segments++;
    if (n > 0 && seq === s.rcvNxt) {
      s.data.push(f.slice(l4 + thl, l4 + len));
      s.bytes += n;
      s.rcvNxt = (s.rcvNxt + n) >>> 0;
    }
    if ((flags & TCP_FIN) !== 0 && ((seq + n) >>> 0) === s.rcvNxt && !s.fin) {
      s.rcvNxt = (s.rcvNxt + 1) >>> 0;
      s.fin = true;
      this.tcpReply(TCP_FIN | TCP_ACK, (SINK_ISN + 1) >>> 0, false);
    } else if (n > 0 || (flags & TCP_FIN) !== 0) this.tcpReply(TCP_ACK, (SINK_ISN + (s.fin ? 2 : 1)) >>> 0, false);
  }

  private tcpReply(flags: number, seq: number, mss: boolean): void {
    const s = this.sink, thl = mss ? 24 : 20;
    const r = ipv4Frame(6, thl);
    put16(r, 34, SINK_PORT); put16(r, 36, s.port); put32(r, 38, seq); put32(r, 42, s.rcvNxt);
    r[46] = (thl / 4) << 4; r[47] = flags; put16(r, 48, 0xffff);
    if (mss) { r[54] = 2; r[55] = 4; put16(r, 56, 8960); } // MSS option (RFC 9293 §3.2)
    put16(r, 50, foldComplement(onesSum(r, 34, thl, onesSum(r, 26, 8) + 6 + thl)));
    // At once, from inside the guest's notification (as ARP): the guest's window is not held up until the
    // next slice boundary.
    assert.ok(this.back!.receive(r), "TCP reply delivered");
  }

  /** Opens the download connection (again after a RST). */
  connect(): void {
    const s = this.src;
    s.state = "syn";
    this.srcSegment(TCP_SYN, SRC_ISN, 0, 0, true);
  }

  private tcpSource(f: Uint8Array, l4: number, len: number): void {
    const s = this.src, flags = f[l4 + 13]!, thl = (f[l4 + 12]! >> 4) * 4;
    if ((flags & 0x04) !== 0) { if (s.state === "syn") s.state = "reset"; return; }
    if ((flags & TCP_ACK) === 0) return;
    const ack = u32(f, l4 + 8), seq = u32(f, l4 + 4);
    if (s.state === "syn" && (flags & TCP_SYN) !== 0 && ack === ((SRC_ISN + 1) >>> 0)) {
      Object.assign(s, { state: "est", una: ack, nxt: ack, rcvNxt: (seq + 1) >>> 0 });
    }
    if (s.state === "idle" || s.state === "syn" || s.state === "reset") return;
    if (((ack - s.una) >>> 0) <= ((s.nxt - s.una) >>> 0)) s.una = ack;
    s.wnd = u16(f, l4 + 14);
    const n = len - thl;
    if ((flags & TCP_FIN) !== 0) { s.rcvNxt = (seq + n + 1) >>> 0; this.srcSegment(TCP_ACK, s.nxt, 0, 0, false); }
    if (s.state === "fin" && s.una === s.nxt) { s.state = "done"; return; }
    if (s.state === "est") this.pump();
  }

  /** Sends what the window allows as one batch; the FIN once everything is sent. */
  private pump(): void {
    const s = this.src;
    const frames: Uint8Array[] = [];
    for (;;) {
      const off = (s.nxt - SRC_ISN - 1) >>> 0, inFlight = (s.nxt - s.una) >>> 0;
      const n = Math.min(SRC_MSS, DL_BYTES - off, s.wnd - inFlight);
      if (n <= 0 || off >= DL_BYTES) break;
      frames.push(this.srcFrame(TCP_ACK, s.nxt, off, n, false));
      s.nxt = (s.nxt + n) >>> 0;
      s.segments++;
    }
    if (((s.nxt - SRC_ISN - 1) >>> 0) === DL_BYTES && s.state === "est") {
      frames.push(this.srcFrame(TCP_FIN | TCP_ACK, s.nxt, 0, 0, false));
      s.nxt = (s.nxt + 1) >>> 0;
      s.state = "fin";
    }
    if (frames.length === 0) return;
    s.batches++;
    frames.forEach((fr, i) => assert.ok(this.back!.receive(fr, i < frames.length - 1), "download segment taken"));
  }

  private srcSegment(flags: number, seq: number, off: number, n: number, syn: boolean): void {
    assert.ok(this.back!.receive(this.srcFrame(flags, seq, off, n, syn)), "download control segment taken");
  }

  private srcFrame(flags: number, seq: number, off: number, n: number, syn: boolean): Uint8Array {
    const thl = syn ? 24 : 20;
    const r = ipv4Frame(6, thl + n);
    put16(r, 34, SRC_PORT); put16(r, 36, DL_PORT); put32(r, 38, seq); put32(r, 42, syn ? 0 : this.src.rcvNxt);
    r[46] = (thl / 4) << 4; r[47] = syn ? TCP_SYN : flags; put16(r, 48, 0xffff);
    if (syn) { r[54] = 2; r[55] = 4; put16(r, 56, 1460); }
    for (let i = 0; i < n; i++) r[34 + thl + i] = dlByte(off + i);
    put16(r, 50, foldComplement(onesSum(r, 34, thl + n, onesSum(r, 26, 8) + 6 + thl + n)));
    return r;
  }

  /** Delivers queued replies; returns how many the guest took. */
  flush(): number {
    let n = 0;
    for (const r of this.queue.splice(0)) if (this.back!.receive(r)) n++;
    return n;
  }

  /** An echo request from the host to the guest. */
  ping(id: number, seq: number, data: Uint8Array): boolean {
    const r = ipv4Frame(1, 8 + data.length);
    r[34] = 8; put16(r, 38, id); put16(r, 40, seq); r.set(data, 42);
    put16(r, 36, foldComplement(onesSum(r, 34, 8 + data.length)));
    return this.back!.receive(r);
  }
}

test("netback: the stock kernel's netfront pings a TypeScript host; multi-slot frames; checksum offload completed",
  { timeout: BOOT_MS + 120_000 }, async () => {
    const t0 = Date.now();
    const images = await ensureImages({ onProgress: (msg) => process.stderr.write(`# images: ${msg}\n`) });
    const store = new XenStore();
    let out = "";
    const logs: string[] = [];
    const m = new Machine({
      memMiB: 256, vcpus: 1, xen: true, xenstore: store, domid: DOMID, name: "xeno-net-test",
      kernel: readFileSync(images.kernel), initrd: readFileSync(images.initrd),
      // Two queues although the guest has one vCPU (netfront takes its max_queues parameter as given): the
      // whole test runs over a multi-queue vif (keys under queue-N/, flows steered to a ring each).
      cmdline: "console=hvc0 xen_netfront.max_queues=2",
      consoleOut: (b) => { out += Buffer.from(b).toString("latin1"); },
    });
    const log = (line: string): void => { logs.push(line); process.stderr.write(`# ${line}\n`); };
    const peer = new Peer();
    let back: NetBack | null = null;
    try {
      back = attachNetBack(m.xen!, store, { devid: 0, mac: GUEST_MAC, mtu: 9000, bridge: "xenbr0" }, peer.onFrame, log);
      peer.back = back;
      const runner = machineRunner(m, () => out, Date.now() + BOOT_MS);
      // The peer's queued replies go in between guest slices (the predicate runs once per ~50 ms burst).
      const runUntil = (pred: () => boolean, what: string): Promise<void> => runner(() => { peer.flush(); return pred(); }, what);
      const times: string[] = [];
      const mark = (what: string, since: number): void => { times.push(`${what} ${((Date.now() - since) / 1000).toFixed(1)} s`); };

      let t = Date.now();
      await runUntil(() => out.includes(GUEST_READY_MARKER), "guest ready marker");
      mark("boot to ready marker", t);

      let n = 0;
      const sh = async (cmd: string): Promise<string> => {
        const k = ++n + 1000, from = out.length;
        m.input(Buffer.from(framedCommand(cmd, k)));
        await runUntil(() => framedOutput(out.slice(from), k) !== undefined, `output of: ${cmd}`);
        return framedOutput(out.slice(from), k)!;
      };

      t = Date.now();
      const up = await sh("for i in $(seq 1 120); do [ -e /sys/class/net/eth0 ] && break; sleep 1; done; " +
        "ip link set eth0 mtu 9000 && ip addr add 10.0.0.2/24 dev eth0 && ip link set eth0 up; cat /sys/class/net/eth0/address");
      mark("eth0 up", t);
      assert.match(up, new RegExp(`^${GUEST_MAC}$`, "m"), up);
      assert.ok(back.connected, logs.join("\n"));
      assert.equal(back.device.state, 4);
      // Multi-queue negotiated: netfront wrote 2 queues' keys; the guest's eth0 has two queue pairs.
      assert.equal(back.queues, 2, logs.join("\n"));
      const fq = (k: string): string => Buffer.from(store.read(store.connect(0, () => {}), null, `/local/domain/${DOMID}/device/vif/0/${k}`)).toString();
      assert.equal(fq("multi-queue-num-queues"), "2");
      assert.match(fq("queue-1/tx-ring-ref"), /^\d+$/);
      assert.match(await sh("echo $(ls /sys/class/net/eth0/queues)"), /^rx-0 rx-1 tx-0 tx-1$/m); // one line: the END marker needs its own

      t = Date.now();
      const ping = await sh("ping -c 3 10.0.0.1");
      mark("ping -c 3", t);
      assert.match(ping, /3 packets transmitted, 3 packets received/, ping);
      assert.ok(peer.seen.arp >= 1, "the guest resolved 10.0.0.1");

      t = Date.now();
      const big = await sh("ping -c 2 -s 8000 10.0.0.1");
      mark("ping -s 8000", t);
      assert.match(big, /2 packets transmitted, 2 packets received/, big);
      assert.equal(peer.seen.bigEchoRequests, 2, "8042-byte frames: multi-slot tx");
      assert.ok(peer.seen.maxFrame >= 8042);

      t = Date.now();
      const csumBefore = back.stats.csumCompleted;
      const nc = await sh("nc 10.0.0.1 7 </dev/null; echo nc-rc=$?");
      assert.match(nc, /nc-rc=[1-9]/, nc);
      assert.ok(peer.seen.tcpSyn >= 1, nc);
      const tr = await sh("traceroute -n -m 1 -q 1 -w 2 10.0.0.1 2>&1");
      assert.ok(peer.seen.udp >= 1, tr);
      assert.match(tr, /^\s*1\s+10\.0\.0\.1\s/m, `the port unreachable reached traceroute: ${tr}`);
      assert.match(nc, /refused/i, nc);
      mark("nc + traceroute", t);
      assert.ok(back.stats.csumCompleted - csumBefore >= 2, `csum_blank frames completed: ${back.stats.csumCompleted - csumBefore}`);

      // A TCP upload through TSO: netfront sends GSO super-packets, netback segments them, the bytes arrive.
      t = Date.now();
      const gso0 = { p: back.stats.gsoPackets, s: back.stats.gsoSegments };
      const upload = await sh("seq 1 30000 > /tmp/blob && printf '%s\\n' '#!/bin/sh' 'cat /tmp/blob' > /tmp/tx && " +
        "chmod +x /tmp/tx && nc 10.0.0.1 5001 -e /tmp/tx; echo nc-upload-rc=$?");
      await runUntil(() => peer.sink.fin, "the upload's FIN")
        .catch((e: Error) => { throw new Error(`${e.message}\nsink ${JSON.stringify({ ...peer.sink, data: undefined })} ` +
          `netback ${JSON.stringify(back?.stats)}`); });
      mark("TCP upload 168,894 bytes", t);
      const want = Array.from({ length: 30000 }, (_, i) => i + 1).join("\n") + "\n";
      assert.equal(peer.sink.bytes, want.length, upload);
      assert.ok(Buffer.concat(peer.sink.data).equals(Buffer.from(want)), "the upload arrived intact and in order");
      const gso = { p: back.stats.gsoPackets - gso0.p, s: back.stats.gsoSegments - gso0.s };
      process.stderr.write(`# upload: ${JSON.stringify(gso)} GSO packets/segments, ${peer.sink.segments} data segments at the peer\n`);
      assert.ok(gso.p >= 1, `the guest sent GSO packets: ${JSON.stringify(back.stats)}`);
      assert.ok(gso.s > gso.p, `GSO packets were cut into several segments each: ${JSON.stringify(gso)}`);
      assert.ok(peer.seen.maxFrame <= 9014, `no frame over the MTU: ${peer.seen.maxFrame}`);

      // A download through receive-side GSO: the peer's sender → `nc -l` in the guest; the guest's md5sum.
      t = Date.now();
      const dom0 = store.connect(0, () => {});
      const fk = (k: string): string => {
        try { return Buffer.from(store.read(dom0, null, `/local/domain/${DOMID}/device/vif/0/${k}`)).toString(); } catch { return "(absent)"; }
      };
      assert.equal(fk("feature-gso-tcpv4"), "1", "netfront advertises rx GSO for TCPv4");
      const rx0 = { p: back.stats.rxGsoPackets, s: back.stats.rxGsoSegments };
      // nc -e: the receiving program holds the socket itself (as bench/net does; a plain `nc -l` in the
      // background read stdin's EOF and stopped short).
      await sh(`printf '%s\\n' '#!/bin/sh' 'cat > /tmp/dl; echo dl-done > /tmp/dl.done' > /tmp/rx && chmod +x /tmp/rx && ` +
        `(nc -l -p ${DL_PORT} -e /tmp/rx &) ; sleep 1; echo listening`);
      for (let tries = 0; peer.src.state !== "done"; tries++) {
        assert.ok(tries < 20, `download: ${JSON.stringify(peer.src)} netback ${JSON.stringify(back.stats)}`);
        if (peer.src.state === "idle" || peer.src.state === "reset") peer.connect();
        await runUntil(() => peer.src.state === "done" || peer.src.state === "reset", "the download")
          .catch((e: Error) => { throw new Error(`${e.message}\nsrc ${JSON.stringify(peer.src)} netback ${JSON.stringify(back?.stats)}`); });
      }
      const sum = await sh("for i in $(seq 1 60); do [ -e /tmp/dl.done ] && break; sleep 1; done; wc -c < /tmp/dl; md5sum /tmp/dl; " +
        "cat /sys/class/net/eth0/statistics/rx_errors /sys/class/net/eth0/statistics/rx_dropped; dmesg | grep -ci -e 'invalid extra' -e 'bad gso' -e 'gso size' -e 'too many slots' " +
        "-e 'need more slots' -e 'rx->offset' -e 'missing extra'");
      mark(`TCP download ${DL_BYTES} bytes`, t);
      const wantMd5 = createHash("md5").update(Uint8Array.from({ length: DL_BYTES }, (_, i) => dlByte(i))).digest("hex");
      assert.match(sum, new RegExp(`^\\s*${DL_BYTES}\\s*$`, "m"), sum);
      assert.match(sum, new RegExp(`^${wantMd5}\\s+/tmp/dl$`, "m"), `the guest received the bytes sent: ${sum}`);
      // After md5sum's line: eth0's rx_errors, rx_dropped, and the count of netfront complaints in dmesg.
      const tail = sum.split("\n").filter((l) => l.trim() !== "").slice(-3);
      assert.deepEqual(tail, ["0", "0", "0"], `eth0 rx errors, rx dropped, netfront complaints: ${sum}`);
      const rxg = { p: back.stats.rxGsoPackets - rx0.p, s: back.stats.rxGsoSegments - rx0.s };
      process.stderr.write(`# download: ${JSON.stringify(rxg)} rx GSO packets/segments, ${peer.src.segments} segments in ` +
        `${peer.src.batches} batches\n# guest: ${sum.replace(/\n/g, "\n# guest: ")}\n`);
      assert.ok(rxg.p >= 1 && rxg.s > rxg.p * 4, `segments were joined into GSO packets: ${JSON.stringify(rxg)}`);

      // The host pings the guest: one small, one multi-slot (both directions) request.
      t = Date.now();
      const payloads = [new Uint8Array(56).map((_, i) => i), new Uint8Array(5000).map((_, i) => (i * 7) & 0xff)];
      for (const [seq, data] of payloads.entries()) {
        assert.ok(peer.ping(0x4242, seq, data), "echo request delivered");
        await runUntil(() => peer.echoReplies.has(seq), `echo reply ${seq}`);
        assert.deepEqual(peer.echoReplies.get(seq), data);
      }
      mark("host → guest echo ×2", t);

      // Driver rebind: netfront closes (the back-end follows it down and unbinds its channel ends), is probed
      // again and reconnects with new rings and ports.
      t = Date.now();
      const connects = logs.filter((l) => /vif connected/.test(l)).length;
      const reload = await sh("ip link set eth0 down; echo vif-0 > /sys/bus/xen/drivers/vif/unbind; echo unbind-rc=$?; " +
        "[ -e /sys/class/net/eth0 ] || echo eth0-gone; echo vif-0 > /sys/bus/xen/drivers/vif/bind; " +
        "for i in $(seq 1 60); do [ -e /sys/class/net/eth0 ] && break; sleep 1; done; " +
        "ip addr add 10.0.0.2/24 dev eth0 && ip link set eth0 up && ping -c 1 10.0.0.1");
      mark("netfront unbind/bind + ping", t);
      assert.match(reload, /^unbind-rc=0$/m, reload);
      assert.match(reload, /^eth0-gone$/m, reload);
      assert.match(reload, /1 packets transmitted, 1 packets received/, reload);
      assert.equal(logs.filter((l) => /vif connected/.test(l)).length, connects + 1, logs.join("\n"));
      assert.ok(back.connected);

      assert.deepEqual(peer.bad, [], "every checksum from the guest verifies");
      assert.equal(back.stats.txErrors, 0, logs.join("\n"));
      assert.equal(back.stats.rxErrors, 0);
      assert.equal(back.stats.fatal, 0);
      assert.doesNotMatch(out, /Kernel panic|kernel BUG|Oops|Call trace:/i);
      assert.doesNotMatch(out, /xen_netfront.*(fail|error|Disabled)|netfront.*broken/i);
      const netLines = out.split("\n").filter((l) => /^\[\s*\d+\.\d+\].*(netfront|eth0)/.test(l)).map((l) => l.trim());
      process.stderr.write(netLines.map((l) => `# guest: ${l}\n`).join(""));
      process.stderr.write(`# timings: ${times.join("; ")}; total ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
      process.stderr.write(`# netback ${JSON.stringify(back.stats)}\n# peer ${JSON.stringify(peer.seen)}\n`);

      back.close();
      assert.ok(!back.connected);
    } finally {
      back?.close();
      m.dispose();
    }
  });
