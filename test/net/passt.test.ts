/**
 * The daemon with its passt uplink (Debian package passt; these tests fail, not skip, without it), and a test
 * client playing the guest with hand-built frames: ARP for the gateway, DHCP, UDP and a TCP handshake with data
 * to listeners on the host's 127.0.0.1 through the gateway address, a host connection to a forwarded port
 * arriving at the guest as a SYN, the guard keeping passt out of the guests' own ARP, and passt restarted
 * after it dies. ICMP is not tested: passt needs ping sockets, which Debian's default
 * net.ipv4.ping_group_range ("1 0") does not allow.
 *
 * Debugging: XENO_NET_LOG=1 prints the daemon's log (with passt's) at the end; XENO_PASST_ARGS adds passt
 * arguments, e.g. "--pcap /tmp/uplink.pcap" (not --debug/--trace: passt 0.0~git20230309 segfaults in its TCP
 * debug logging when a guest opens a connection).
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createSocket, type RemoteInfo } from "node:dgram";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, createConnection, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connectBridge, ensureBridge, type BridgeClient } from "../../src/net/bridge-client.js";
import { BridgeDaemon } from "../../src/net/bridge-daemon.js";
import { parseForward } from "../../src/net/passt.js";
import {
  TCP_ACK, TCP_PSH, TCP_SYN, arpRequest, dhcpDiscover, eth, parse, tcp, udp, type Parsed,
} from "./frames.js";

const GUEST_MAC = "02:00:0a:00:02:0f", GUEST_IP = "10.0.2.15";
const OTHER_MAC = "02:00:0a:00:02:10", OTHER_IP = "10.0.2.16";
const GW = "10.0.2.2", PASST_MAC = "9a:55:9a:55:9a:55";
const GUEST_PORT = 8080;

function passtMissing(): string | undefined {
  try {
    execFileSync("sh", ["-c", "command -v passt"], { stdio: "pipe" });
    return undefined;
  } catch {
    return "passt is not installed: apt-get install -y passt (Debian package passt, the bridge's uplink to the host)";
  }
}

/** A free TCP port on 127.0.0.1 (closed again; the small race is acceptable in a test). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A guest on the bridge: sends frames, and waits for the first received frame matching a predicate. */
class Guest {
  private readonly frames: Parsed[] = [];
  client!: BridgeClient;
  constructor(readonly mac: string, readonly ip: string) {}
  async connect(runDir: string, name: string): Promise<this> {
    this.client = await connectBridge(name, (f) => this.frames.push(parse(f)), { runDir });
    return this;
  }
  send(f: Buffer): void {
    assert.ok(this.client.send(f));
  }
  async expect(what: string, pred: (p: Parsed) => boolean, ms = 5000): Promise<Parsed> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) return this.frames.splice(i, 1)[0]!;
      if (Date.now() > deadline) {
        throw new Error(`${this.mac}: no ${what} within ${ms} ms; got ${JSON.stringify(this.frames.map((p) => ({ ...p, tcp: p.tcp && { ...p.tcp, data: p.tcp.data.length } })))}`);
      }
      await sleep(20);
    }
  }
  /** Whether a matching frame arrives within `ms`. */
  async sees(pred: (p: Parsed) => boolean, ms: number): Promise<boolean> {
    return this.expect("", pred, ms).then(() => true, () => false);
  }
}

let runDir = "";
let daemon: BridgeDaemon;
let hostFwdPort = 0;
const logs: string[] = [];

/** Set when passt is not installed: every test then fails with this message (a failing before() hook would
 * only cancel them, without saying why). */
const missing = passtMissing();
function needPasst(): void {
  if (missing !== undefined) assert.fail(missing);
}

before(async () => {
  if (missing !== undefined) return;
  runDir = mkdtempSync(join(tmpdir(), "xeno-passt-"));
  hostFwdPort = await freePort();
  daemon = await BridgeDaemon.start({
    name: "br-passt", runDir, log: (l) => logs.push(l),
    uplink: { forwards: [parseForward(`tcp:127.0.0.1/${hostFwdPort}:${GUEST_PORT}`)], extraArgs: (process.env["XENO_PASST_ARGS"] ?? "").split(" ").filter(Boolean) },
  });
});

after(async () => {
  await daemon?.close();
  if (runDir !== "") rmSync(runDir, { recursive: true, force: true });
  if (process.env["XENO_NET_LOG"]) console.log(logs.join("\n"));
});

describe("bridge with passt uplink", () => {
  const guest = new Guest(GUEST_MAC, GUEST_IP);
  const other = new Guest(OTHER_MAC, OTHER_IP);

  it("passt is up before the daemon listens", async () => {
    needPasst();
    assert.ok(daemon.uplink?.isReady, logs.join("\n"));
    await guest.connect(runDir, "br-passt");
    await other.connect(runDir, "br-passt");
    // Both attached to the switch before anyone sends (a client is connected before the daemon accepted it).
    const deadline = Date.now() + 5000;
    while (daemon.clientCount < 2) {
      if (Date.now() > deadline) assert.fail(`clients not attached: ${daemon.clientCount}`);
      await sleep(20);
    }
  });

  it("connects to passt's own socket, which passt gave the host's large buffers", () => {
    needPasst();
    // passt raises SO_SNDBUF to the host's maximum only on a connection it accepts (src/net/passt.ts): with the
    // old -F socketpair it stayed at wmem_default and passt dropped frames on short sends (the receive storm).
    const cmd = daemon.uplink!.commandLine;
    const sock = cmd[cmd.indexOf("-s") + 1]!;
    // The daemon removed the socket's directory once connected: nothing left in $TMPDIR, no one else can connect.
    assert.ok(cmd.includes("-1") && !existsSync(join(sock, "..")), cmd.join(" "));
    const pid = daemon.uplink!.pid!;
    // `ss -xmp`: the connection passt accepted on its socket (local address = the socket's path), with its
    // skmem (tb = the send buffer in bytes), beside passt's pid.
    const out = execFileSync("ss", ["-x", "-m", "-p"], { encoding: "utf8" });
    const line = out.split("\n").find((l) => l.includes(`${sock} `) && l.includes(`pid=${pid},`));
    const m = line === undefined ? null : /skmem:\([^)]*\btb(\d+)/.exec(line);
    assert.ok(m !== null, `passt[${pid}]'s socket not in ss -xmp:\n${out.slice(0, 2000)}`);
    const wmemMax = Number(readFileSync("/proc/sys/net/core/wmem_max", "utf8"));
    // passt asks for INT_MAX/2 when the host allows 4 MiB (sock_probe_mem); the kernel doubles the capped value.
    if (2 * wmemMax >= 4 << 20) assert.ok(Number(m[1]) >= 4 << 20, `passt's send buffer ${m[1]} B (wmem_max ${wmemMax})`);
    else assert.fail(`net.core.wmem_max is ${wmemMax}: passt keeps small buffers and drops on short sends; raise it (docs/networking.md)`);
  });

  it("answers the guest's ARP for the gateway", async () => {
    needPasst();
    guest.send(arpRequest(GUEST_MAC, GUEST_IP, GW));
    const r = await guest.expect("ARP reply", (p) => p.arp?.op === 2);
    assert.deepEqual(r.arp, { op: 2, senderMac: PASST_MAC, senderIp: GW, targetMac: GUEST_MAC, targetIp: GUEST_IP });
    assert.equal(r.dst, GUEST_MAC);
    assert.equal(daemon.uplink!.stats().owner, GUEST_MAC);
  });

  it("offers the guest 10.0.2.15 by DHCP", async () => {
    needPasst();
    guest.send(dhcpDiscover(GUEST_MAC, 0x1234));
    const r = await guest.expect("DHCPOFFER", (p) => p.udp?.sport === 67 && p.udp.dport === 68);
    const d = r.udp!.data;
    assert.equal(d[0], 2, "BOOTREPLY");
    assert.equal(d.readUInt32BE(4), 0x1234, "xid");
    assert.equal([...d.subarray(16, 20)].join("."), GUEST_IP, "yiaddr");
  });

  it("carries a UDP datagram to a host listener on 127.0.0.1 via the gateway, and the answer back", async () => {
    needPasst();
    const server = createSocket("udp4");
    await new Promise<void>((r) => server.bind(0, "127.0.0.1", r));
    const port = server.address().port;
    const got = new Promise<[Buffer, RemoteInfo]>((r) => server.once("message", (m, ri) => r([m, ri])));
    try {
      guest.send(eth(PASST_MAC, GUEST_MAC, 0x0800, udp(GUEST_IP, 40000, GW, port, Buffer.from("hello host"))));
      const [msg, rinfo] = await Promise.race([got, sleep(5000).then(() => assert.fail("no datagram on the host"))]);
      assert.equal(msg.toString(), "hello host");
      server.send("hello guest", rinfo.port, rinfo.address);
      const r = await guest.expect("UDP answer", (p) => p.udp?.dport === 40000);
      assert.equal(r.udp!.data.toString(), "hello guest");
      assert.deepEqual([r.ip!.src, r.udp!.sport, r.ip!.dst], [GW, port, GUEST_IP]);
    } finally {
      server.close();
    }
  });

  it("opens a TCP connection to a host listener through the gateway and sends data", async () => {
    needPasst();
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    const conn = new Promise<Socket>((r) => server.once("connection", r));
    try {
      const iss = 1000;
      guest.send(eth(PASST_MAC, GUEST_MAC, 0x0800, tcp(GUEST_IP, 40001, GW, port, iss, 0, TCP_SYN)));
      const synAck = await guest.expect("SYN-ACK", (p) => p.tcp?.dport === 40001 && (p.tcp.flags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK));
      assert.equal(synAck.tcp!.ack, iss + 1);
      assert.deepEqual([synAck.ip!.src, synAck.tcp!.sport], [GW, port]);
      const sock = await Promise.race([conn, sleep(5000).then(() => assert.fail("no connection on the host"))]);
      const data = new Promise<string>((r) => sock.once("data", (d) => r(d.toString())));
      // The handshake's ACK on its own, as real stacks send it: passt 2023 drops data riding on that ACK
      // (tcp_tap_handler returns after marking the connection established when the ACK is the last packet
      // of its batch).
      const irs = synAck.tcp!.seq;
      guest.send(eth(PASST_MAC, GUEST_MAC, 0x0800, tcp(GUEST_IP, 40001, GW, port, iss + 1, irs + 1, TCP_ACK)));
      guest.send(eth(PASST_MAC, GUEST_MAC, 0x0800,
        tcp(GUEST_IP, 40001, GW, port, iss + 1, irs + 1, TCP_ACK | TCP_PSH, Buffer.from("ping"))));
      assert.equal(await Promise.race([data, sleep(5000).then(() => "(nothing)")]), "ping");
      const ack = await guest.expect("ACK of the data", (p) => p.tcp?.dport === 40001 && p.tcp.ack === iss + 1 + 4);
      assert.equal(ack.tcp!.flags & TCP_ACK, TCP_ACK);
      // And data the other way.
      sock.write("pong");
      const pong = await guest.expect("data from the host", (p) => p.tcp?.dport === 40001 && p.tcp.data.length > 0);
      assert.equal(pong.tcp!.data.toString(), "pong");
      assert.equal(pong.tcp!.seq, irs + 1);
      sock.destroy();
    } finally {
      server.close();
    }
  });

  it("delivers a host connection to a forwarded port as a SYN to 10.0.2.15", async () => {
    needPasst();
    const c = createConnection(hostFwdPort, "127.0.0.1");
    c.on("error", () => {});
    try {
      const syn = await guest.expect("SYN", (p) => p.tcp?.dport === GUEST_PORT && (p.tcp.flags & TCP_SYN) !== 0);
      assert.equal(syn.ip!.dst, GUEST_IP);
      assert.equal(syn.dst, GUEST_MAC);
      assert.equal(syn.src, PASST_MAC);
      assert.equal(syn.ip!.src, GW, "the host's loopback appears as the gateway");
    } finally {
      c.destroy();
    }
  });

  it("keeps passt out of the guests' own ARP, and serves only the uplink owner", async () => {
    needPasst();
    // The owner ARPs for the other guest: the other guest gets the request, passt must not answer it.
    guest.send(arpRequest(GUEST_MAC, GUEST_IP, OTHER_IP));
    const req = await other.expect("ARP request", (p) => p.arp?.op === 1 && p.arp.targetIp === OTHER_IP);
    assert.equal(req.arp!.senderIp, GUEST_IP);
    assert.equal(await guest.sees((p) => p.arp?.op === 2 && p.arp.senderIp === OTHER_IP, 500), false, "passt answered for another guest");
    // The other guest is not the owner: passt does not see its ARP for the gateway.
    other.send(arpRequest(OTHER_MAC, OTHER_IP, GW));
    assert.equal(await other.sees((p) => p.arp?.op === 2, 500), false);
    assert.ok(daemon.uplink!.stats().guard.notOwner >= 1);
  });

  it("restarts passt when it dies", async () => {
    needPasst();
    const pid = daemon.uplink!.pid!;
    const cmd = daemon.uplink!.commandLine, dir = join(cmd[cmd.indexOf("-s") + 1]!, "..");
    process.kill(pid, "SIGKILL");
    const deadline = Date.now() + 20_000; // restart backoff 0.25 s + readiness (up to 15 s on a loaded host)
    while (!(daemon.uplink!.isReady && daemon.uplink!.pid !== pid)) {
      if (Date.now() > deadline) assert.fail(`passt not restarted:\n${logs.join("\n")}`);
      await sleep(50);
    }
    assert.ok(logs.some((l) => new RegExp(`passt\\[${pid}\\] exited \\(SIGKILL\\)`).test(l)), logs.join("\n"));
    guest.send(arpRequest(GUEST_MAC, GUEST_IP, GW));
    const r = await guest.expect("ARP reply from the new passt", (p) => p.arp?.op === 2 && p.arp.senderIp === GW);
    assert.equal(r.arp!.senderMac, PASST_MAC);
    assert.equal(daemon.uplink!.stats().starts, 2);
    assert.ok(!existsSync(dir), `the dead passt's socket directory ${dir} is left`);
    const now = daemon.uplink!.commandLine;
    assert.ok(!existsSync(join(now[now.indexOf("-s") + 1]!, "..")), "the new passt's socket directory is left");
  });

  it("stops passt on close", async () => {
    needPasst();
    const pid = daemon.uplink!.pid!;
    guest.client.close();
    other.client.close();
    await daemon.close();
    assert.throws(() => process.kill(pid, 0), { code: "ESRCH" });
  });
});

describe("bridge-main with passt, started by ensureBridge", () => {
  it("serves a forwarded port, and takes passt down with it on SIGTERM", async (t) => {
    needPasst();
    const port = await freePort();
    const frames: Parsed[] = [];
    const c = await ensureBridge("br-pmain", (f) => frames.push(parse(f)), {
      runDir, idleExitSeconds: 0, daemonArgs: ["--forward", `tcp:127.0.0.1/${port}:22`],
    });
    const logPath = join(runDir, "net", "br-pmain.log");
    const daemonPid = Number(readFileSync(join(runDir, "net", "br-pmain.pid"), "utf8"));
    t.after(() => {
      try {
        process.kill(daemonPid, "SIGTERM"); // if an assertion fails before the test's own SIGTERM
      } catch { /* already gone */ }
    });
    const m = /passt\[(\d+)\] up: .* -t 127\.0\.0\.1\/(\d+):22/.exec(readFileSync(logPath, "utf8"));
    assert.ok(m !== null && Number(m[2]) === port, readFileSync(logPath, "utf8"));
    const passtPid = Number(m[1]);
    // The guest speaks first (passt learns its MAC), then the host connects to the forwarded port.
    c.send(arpRequest(GUEST_MAC, GUEST_IP, GW));
    const host = createConnection(port, "127.0.0.1");
    host.on("error", () => {});
    const deadline = Date.now() + 5000;
    while (!frames.some((p) => p.tcp?.dport === 22 && (p.tcp.flags & TCP_SYN) !== 0)) {
      if (Date.now() > deadline) assert.fail(`no SYN for port 22; got ${frames.length} frames`);
      await sleep(20);
    }
    host.destroy();
    process.kill(daemonPid, "SIGTERM");
    await c.closed;
    const gone = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    };
    const until = Date.now() + 5000;
    while (!(gone(daemonPid) && gone(passtPid))) {
      if (Date.now() > until) assert.fail(`still running: daemon ${!gone(daemonPid)}, passt ${!gone(passtPid)}`);
      await sleep(50);
    }
    assert.equal(existsSync(join(runDir, "net", "br-pmain.sock")), false);
  });
});
