/** QEMU stream framing, the uplink guard and the option parsers: the pure parts of the daemon. */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_FRAME, parseMac } from "../../src/net/ethernet.js";
import { StreamFrameDecoder, encodeStreamFrame } from "../../src/net/framing.js";
import { parseForward, passtArgs, passtPortSpec } from "../../src/net/passt.js";
import { bridgeSocketPath, checkBridgeName } from "../../src/net/paths.js";
import { UplinkGuard } from "../../src/net/uplink-guard.js";
import { BROADCAST, arpRequest, dhcpDiscover, eth, ipv4, udp } from "./frames.js";

describe("stream framing", () => {
  const frames = [Buffer.alloc(14, 1), Buffer.alloc(1500, 2), Buffer.alloc(MAX_FRAME, 3), Buffer.alloc(60, 4)];
  const stream = Buffer.concat(frames.map(encodeStreamFrame));

  it("encodes a 4-byte big-endian length, then the frame", () => {
    assert.deepEqual([...encodeStreamFrame(Buffer.from([9, 8, 7]))], [0, 0, 0, 3, 9, 8, 7]);
  });

  for (const [what, size] of [["one chunk", stream.length], ["byte by byte", 1], ["7-byte chunks", 7], ["4 KiB chunks", 4096]] as const) {
    it(`decodes ${what}`, () => {
      const got: Buffer[] = [];
      const d = new StreamFrameDecoder((f) => got.push(f));
      for (let i = 0; i < stream.length; i += size) d.push(stream.subarray(i, i + size));
      assert.equal(got.length, frames.length);
      got.forEach((f, i) => assert.ok(f.equals(frames[i]!), `frame ${i}`));
      assert.equal(d.pendingBytes, 0);
    });
  }

  it("copies frames out of the chunk", () => {
    const got: Buffer[] = [];
    const chunk = encodeStreamFrame(Buffer.alloc(20, 5));
    new StreamFrameDecoder((f) => got.push(f)).push(chunk);
    chunk.fill(0);
    assert.equal(got[0]![0], 5);
  });

  for (const len of [0, 13, MAX_FRAME + 1, 0xffffffff]) {
    it(`fails for good on length prefix ${len}`, () => {
      const got: Buffer[] = [];
      const d = new StreamFrameDecoder((f) => got.push(f));
      const bad = Buffer.alloc(4);
      bad.writeUInt32BE(len);
      d.push(encodeStreamFrame(Buffer.alloc(20)));
      assert.throws(() => d.push(Buffer.concat([bad, Buffer.alloc(64)])), { code: "NET_BAD_LENGTH" });
      assert.throws(() => d.push(encodeStreamFrame(Buffer.alloc(20))), { code: "NET_BAD_LENGTH" });
      assert.equal(got.length, 1);
    });
  }
});

describe("uplink guard", () => {
  const PASST = "9a:55:9a:55:9a:55", A = "02:00:00:00:00:0a", B = "02:00:00:00:00:0b";
  const present = new Set<number>();
  const guard = (ownerMac?: string): UplinkGuard => new UplinkGuard({
    passtMac: parseMac(PASST), arpTargets: [0x0a000202], isPresent: (m) => present.has(m),
    ...(ownerMac === undefined ? {} : { ownerMac: parseMac(ownerMac) }),
  });
  const toGw = (src: string): Buffer => eth(PASST, src, 0x0800, udp("10.0.2.15", 1000, "10.0.2.2", 53, Buffer.from("x")));

  it("passes ARP for the gateway, DHCP and unicast to passt; drops the rest", () => {
    const g = guard();
    assert.equal(g.allow(arpRequest(A, "10.0.2.15", "10.0.2.2")), true);
    assert.equal(g.allow(dhcpDiscover(A, 1)), true);
    assert.equal(g.allow(toGw(A)), true);
    assert.equal(g.allow(arpRequest(A, "10.0.2.15", "10.0.2.16")), false, "ARP for another guest");
    assert.equal(g.allow(arpRequest(A, "0.0.0.0", "10.0.2.15")), false, "address probe");
    assert.equal(g.allow(eth(B, A, 0x0800, ipv4("10.0.2.15", "10.0.2.16", 17, Buffer.alloc(8)))), false, "unicast to a guest");
    assert.equal(g.allow(eth("01:00:5e:00:00:fb", A, 0x0800, udp("10.0.2.15", 5353, "224.0.0.251", 5353, Buffer.alloc(4)))), false, "mDNS");
    assert.equal(g.allow(eth(BROADCAST, A, 0x0800, udp("10.0.2.15", 138, "10.0.2.255", 138, Buffer.alloc(4)))), false, "other broadcast");
    assert.deepEqual(g.stats, { passed: 3, notOwner: 0, notForUplink: 5 });
  });

  it("serves one owner at a time: the first station, until it leaves the switch", () => {
    const g = guard();
    present.clear();
    assert.equal(g.allow(toGw(A)), true);
    present.add(parseMac(A));
    assert.equal(g.allow(toGw(B)), false, "B while A is present");
    assert.equal(g.allow(dhcpDiscover(B, 2)), false, "B gets no DHCP lease");
    present.delete(parseMac(A)); // A aged out or its port closed
    assert.equal(g.allow(toGw(B)), true);
    assert.equal(g.ownerMac, parseMac(B));
  });

  it("honours a pinned owner", () => {
    const g = guard(B);
    present.clear();
    assert.equal(g.allow(toGw(A)), false);
    assert.equal(g.allow(toGw(B)), true);
  });
});

describe("options", () => {
  it("parses --forward specs into passt's syntax", () => {
    assert.equal(passtPortSpec(parseForward("tcp:8080:80")), "8080:80");
    assert.equal(passtPortSpec(parseForward("tcp:2222")), "2222:2222");
    assert.equal(passtPortSpec(parseForward("udp:127.0.0.1/5000-5009:6000")), "127.0.0.1/5000-5009:6000-6009");
    for (const bad of ["tcp:0:80", "sctp:80", "tcp:80:70000", "tcp:90-80", "tcp:1.2.3/80", "tcp:80:"]) {
      assert.throws(() => parseForward(bad), { code: "NET_BAD_OPTION" }, bad);
    }
  });

  it("builds the passt command line", () => {
    assert.deepEqual(passtArgs({ forwards: [parseForward("tcp:127.0.0.1/8080:80")] }),
      ["-f", "-e", "-F", "3", "-4", "-a", "10.0.2.15", "-n", "24", "-g", "10.0.2.2", "-M", "9a:55:9a:55:9a:55",
        "-t", "127.0.0.1/8080:80", "-u", "none"]);
    assert.deepEqual(passtArgs({}, "/tmp/xeno-passt-x/passt.sock").slice(0, 6),
      ["-f", "-e", "-s", "/tmp/xeno-passt-x/passt.sock", "-1", "-4"]);
    assert.deepEqual(passtArgs({ dns: ["1.1.1.1"], dnsForward: "10.0.2.3", dhcp: false, forwards: [parseForward("udp:53")], quiet: true }).slice(13),
      ["-D", "1.1.1.1", "--dns-forward", "10.0.2.3", "--no-dhcp", "-u", "53:53", "-q"]);
  });

  it("checks bridge names and places sockets under $XENO_RUN_DIR/net", () => {
    assert.equal(bridgeSocketPath("xenbr0", {}), "/run/xeno/net/xenbr0.sock");
    assert.equal(bridgeSocketPath("xenbr0", { XENO_RUN_DIR: "/tmp/x" }), "/tmp/x/net/xenbr0.sock");
    for (const bad of ["", "..", "a/b", "sixteen-chars-xx", "br 0"]) assert.throws(() => checkBridgeName(bad), { code: "NET_BAD_NAME" }, bad);
  });
});
