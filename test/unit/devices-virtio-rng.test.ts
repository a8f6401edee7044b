/**
 * virtio-rng over virtio-pci (src/devices/virtio/virtio-rng.ts), driven from the host side (virtio-driver.ts): the
 * PCI identity and capabilities (no device configuration), buffers filled with random bytes (split over a chain,
 * capped per chain), and the hostile cases: a buffer outside RAM or running past it, a device-readable buffer
 * (returned with 0 bytes, counted, the device goes on), a descriptor loop and a head past the queue
 * (DEVICE_NEEDS_RESET, serving again after a reset). Nothing outside the buffers is written.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtioRng, VIRTIO_RNG_MAX_FILL } from "../../src/devices/virtio/virtio-rng.js";
import { Driver, RAM, RAM_BASE } from "./virtio-driver.js";

function rng(): Driver<VirtioRng> {
  const d = new Driver((m) => new VirtioRng(m));
  d.probe();
  d.init();
  return d;
}
const allEqual = (b: Uint8Array): boolean => b.every((x) => x === b[0]);

test("virtio-rng: a virtio 1.x entropy device without configuration; buffers come back full of random bytes", () => {
  const d = rng();
  assert.equal(d.cfg(0), 0x10441af4, "virtio 1.x entropy device (0x1040 + 4)");
  assert.equal(d.cfg(0x08) >>> 8, 0xff0000, "class 0xff (other), as QEMU's virtio-rng-pci");
  assert.deepEqual([...d.caps.keys()].sort(), [1, 2, 3], "common, notify and ISR: no device configuration capability");
  const m = d.mem.bytes;
  m.fill(0xee, 0x10000, 0x12000);
  d.submit([[RAM_BASE + 0x10000, 512, 2]]);
  assert.deepEqual(d.usedEntries(), [[0, 512]]);
  const a = m.slice(0x10000, 0x10200);
  assert.ok(!allEqual(a), "512 random bytes are not all equal");
  assert.equal(m[0x10200], 0xee, "nothing past the buffer");
  // A chain of two buffers is filled across both.
  d.submit([[RAM_BASE + 0x11000, 16, 3], [RAM_BASE + 0x11800, 48, 2]], 3, 3);
  assert.deepEqual(d.usedEntries(), [[3, 64]]);
  assert.ok(!allEqual(m.subarray(0x11000, 0x11010)) && !allEqual(m.subarray(0x11800, 0x11830)));
  assert.equal(m[0x11010], 0xee);
  assert.equal(d.irq[1]!.level, true, "INTA of slot 1");
  assert.deepEqual(d.dev.stats, { requests: 2, bytes: 576, badRequests: 0 });
});

test("virtio-rng: a chain larger than the per-request cap gets the cap's worth", () => {
  const d = rng();
  d.mem.bytes.fill(0xee);
  d.submit([[RAM_BASE + 0x10000, VIRTIO_RNG_MAX_FILL + 4096, 2]]);
  assert.deepEqual(d.usedEntries(), [[0, VIRTIO_RNG_MAX_FILL]]);
  assert.equal(d.mem.bytes[0x10000 + VIRTIO_RNG_MAX_FILL], 0xee, "the rest untouched");
});

test("virtio-rng hostile chains: bad buffers come back with 0 bytes; loops and heads past the queue reset the device", () => {
  const d = rng();
  const m = d.mem.bytes;
  m.fill(0xee);
  for (const [what, chain] of [
    ["a buffer in the flash", [[0x1000, 64, 2]]],
    ["a buffer running past RAM", [[RAM_BASE + RAM - 8, 64, 2]]],
    ["a 0xfffffff0-byte buffer", [[RAM_BASE + 0x10000, 0xfffffff0, 2]]],
    ["a device-readable buffer", [[RAM_BASE + 0x10000, 64, 0]]],
    ["a good buffer then one outside RAM", [[RAM_BASE + 0x10000, 64, 3], [0x2000_0000, 64, 2]]],
  ] as [string, [number, number, number][]][]) {
    d.submit(chain);
    assert.deepEqual(d.usedEntries(), [[0, 0]], `${what}: returned with 0 bytes`);
    assert.equal(d.common(0x14, 1), 0xf, `${what}: the device stays live`);
  }
  assert.ok(m.every((x, i) => x === 0xee || (i >= 0x1000 && i < 0x4000)), "nothing written outside the rings");
  assert.equal(d.dev.stats.badRequests, 5);
  d.submit([[RAM_BASE + 0x10000, 64, 3, 1], [RAM_BASE + 0x10000, 64, 3, 0]]);
  assert.equal(d.common(0x14, 1) & 0x40, 0x40, "a loop: DEVICE_NEEDS_RESET");
  d.submit([[RAM_BASE + 0x10000, 64, 2]], 0);
  assert.deepEqual(d.usedEntries(), [], "nothing served while it needs a reset");
  d.init();
  d.submit([[RAM_BASE + 0x10000, 64, 2]], 200);
  assert.equal(d.common(0x14, 1) & 0x40, 0x40, "a head past the queue: DEVICE_NEEDS_RESET");
  d.init();
  d.submit([[RAM_BASE + 0x10000, 64, 2]]);
  assert.deepEqual(d.usedEntries(), [[0, 64]], "serves again after a reset");
  assert.ok(!allEqual(m.subarray(0x10000, 0x10040)));
});
