/**
 * virtio-net over virtio-pci (src/devices/virtio/virtio-net.ts), driven from the host side (virtio-driver.ts): the
 * MAC and link status in its configuration, a transmitted frame reaching the send callback without its
 * virtio_net_hdr, a received frame landing after a header with num_buffers = 1 (split over two buffers), and the
 * hostile cases: a transmit buffer outside RAM, a device-writable buffer in a transmit chain, a runt and an
 * oversized frame (returned unsent, counted), a receive buffer too small or readable (frame dropped, buffer
 * returned), no receive buffer posted (dropped, counted), a descriptor loop on either queue (DEVICE_NEEDS_RESET).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtioNet } from "../../src/devices/virtio/virtio-net.js";
import { Driver, RAM, RAM_BASE } from "./virtio-driver.js";

function nic(): { d: Driver<VirtioNet>; sent: Uint8Array[] } {
  const sent: Uint8Array[] = [];
  const d = new Driver((m) => new VirtioNet(m, { mac: "00:16:3e:12:34:56", mtu: 1500, send: (f) => { sent.push(f.slice()); } }));
  d.probe();
  d.init(1 << 5 | 1 << 16, 2);
  return { d, sent };
}
const frame = (n: number): Uint8Array => new Uint8Array(n).map((_, i) => (i * 13 + 1) & 0xff);
const TX = 1, RX = 0;

test("virtio-net: MAC and link up in the config; a frame sent and one received", () => {
  const { d, sent } = nic();
  assert.equal(d.cfg(0), 0x10411af4, "virtio 1.x network device (0x1040 + 1)");
  const c = d.caps.get(4)!.off;
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((k) => d.r(c + k, 1)), [0x00, 0x16, 0x3e, 0x12, 0x34, 0x56]);
  assert.equal(d.r(c + 6, 2), 1, "VIRTIO_NET_S_LINK_UP");
  // Transmit: the header (12 bytes) and a 60-byte frame in two buffers.
  const f = frame(60);
  d.mem.bytes.fill(0, 0x10000, 0x1000c);
  d.mem.bytes.set(f, 0x11000);
  d.submit([[RAM_BASE + 0x10000, 12, 1], [RAM_BASE + 0x11000, 60, 0]], 0, 0, TX);
  assert.deepEqual(d.usedEntries(TX), [[0, 0]]);
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0], f, "the frame without its header");
  assert.equal(d.irq[1]!.level, true, "INTA of slot 1");
  // Receive into a chain of two writable buffers (40 + 2000 bytes).
  d.submit([[RAM_BASE + 0x20000, 40, 3], [RAM_BASE + 0x21000, 2000, 2]], 0, 0, RX);
  const g = frame(300);
  assert.equal(d.dev.receive(g), true);
  assert.deepEqual(d.usedEntries(RX), [[0, 312]]);
  const hdr = d.mem.bytes.subarray(0x20000, 0x2000c);
  assert.deepEqual([...hdr], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], "num_buffers = 1, the rest zero");
  assert.deepEqual(d.mem.bytes.subarray(0x2000c, 0x20028), g.subarray(0, 28));
  assert.deepEqual(d.mem.bytes.subarray(0x21000, 0x21000 + 272), g.subarray(28));
  assert.equal(d.dev.receive(g), false, "no buffer posted: dropped");
  assert.equal(d.dev.stats.rxNoBuffer, 1);
});

test("virtio-net hostile chains: bad transmit buffers are returned unsent, bad receive buffers unused; loops reset the device", () => {
  const { d, sent } = nic();
  const h = RAM_BASE + 0x10000;
  for (const [what, chain] of [
    ["a buffer outside RAM", [[h, 12, 1], [0x1000, 60, 0]]],
    ["a buffer running past RAM", [[h, 12, 1], [RAM_BASE + RAM - 8, 60, 0]]],
    ["a writable buffer", [[h, 12, 1], [h + 0x1000, 60, 2]]],
    ["a runt", [[h, 12, 1], [h + 0x1000, 10, 0]]],
    ["an oversized frame", [[h, 12, 1], [h + 0x1000, 1519, 0]]],
  ] as [string, [number, number, number][]][]) {
    d.submit(chain, 0, 0, TX);
    assert.equal(d.usedEntries(TX).length, 1, `${what}: returned`);
    assert.equal(sent.length, 0, `${what}: not sent`);
  }
  assert.equal(d.dev.stats.txDropped, 5);
  d.submit([[RAM_BASE + 0x20000, 100, 2]], 0, 0, RX);
  assert.equal(d.dev.receive(frame(300)), false, "too small");
  assert.deepEqual(d.usedEntries(RX), [[0, 0]]);
  d.submit([[RAM_BASE + 0x20000, 2000, 0]], 0, 0, RX);
  assert.equal(d.dev.receive(frame(300)), false, "a readable receive buffer");
  assert.equal(d.common(0x14, 1), 0xf, "still live");
  d.submit([[h, 12, 1, 1], [h, 60, 1, 0]], 0, 0, TX);
  assert.equal(d.common(0x14, 1) & 0x40, 0x40, "a transmit loop: DEVICE_NEEDS_RESET");
  d.init(0, 2);
  d.submit([[RAM_BASE + 0x20000, 2000, 3, 0]], 0, 0, RX);
  assert.equal(d.dev.receive(frame(60)), false);
  assert.equal(d.common(0x14, 1) & 0x40, 0x40, "a receive loop: DEVICE_NEEDS_RESET");
});
