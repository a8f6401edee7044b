/**
 * The PCIe host bridge (src/devices/pci) and virtio-blk over virtio-pci (src/devices/virtio), driven from the
 * host side as a driver would drive them: ECAM config reads, BAR sizing and placement, the capability list,
 * feature negotiation, a split queue in "guest RAM", reads and writes on raw and qcow2 images (qemu-img as the
 * oracle: `check` clean and `compare` against a raw copy of the same writes), INTx through the swizzle, and
 * hostile rings: a descriptor loop, a head or index past the queue, an indirect descriptor, rings outside RAM
 * (DEVICE_NEEDS_RESET), buffers outside RAM or with lengths running past it, sectors past the end, a write to a
 * read-only disk (an I/O error for that request, the device going on), a chain without a status byte.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pcieHostDtNode } from "../../src/devices/pci/pcie-host.js";
import { Driver as GenericDriver, RAM, RAM_BASE } from "./virtio-driver.js";
import { VirtioBlk, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH } from "../../src/devices/virtio/virtio-blk.js";
import { RawImage } from "../../src/storage/block-image.js";
import { Qcow2Image } from "../../src/storage/qcow2.js";

const dir = mkdtempSync(join(tmpdir(), "xeno-vblk-"));
after(() => rmSync(dir, { recursive: true, force: true }));

class Driver extends GenericDriver<VirtioBlk> {
  /** A block request with header at 0x10000, data at 0x20000 (len bytes), status at 0x30000; returns the status. */
  request(type: number, sector: number, len: number): number {
    const h = 0x10000;
    this.dv.setUint32(h, type, true); this.dv.setUint32(h + 4, 0, true);
    this.dv.setUint32(h + 8, sector >>> 0, true); this.dv.setUint32(h + 12, Math.floor(sector / 2 ** 32), true);
    this.mem.bytes[0x30000] = 0xff;
    const chain: [number, number, number][] = [[RAM_BASE + h, 16, 1]];
    if (len > 0) chain.push([RAM_BASE + 0x20000, len, type === VIRTIO_BLK_T_OUT ? 1 : 3]);
    chain.push([RAM_BASE + 0x30000, 1, 2]);
    this.submit(chain);
    const u = this.usedEntries();
    assert.equal(u.length, 1, "one used entry");
    return this.mem.bytes[0x30000]!;
  }
}

function rawDisk(name: string, bytes: number): string {
  const p = join(dir, name);
  writeFileSync(p, new Uint8Array(bytes));
  return p;
}

test("PCIe ECAM: the host bridge at 00:00.0, the virtio-blk function at 00:01.0, absent functions read all ones", () => {
  const d = new Driver((m) => new VirtioBlk(m, RawImage.open(rawDisk("a.raw", 1 << 20), true)));
  assert.equal(d.host.ecam.read(0, 4) >>> 0, 0x00081b36, "gpex host bridge IDs");
  assert.equal(d.host.ecam.read(0x08, 4) >>> 8, 0x060000, "class: host bridge");
  assert.equal(d.cfg(0), 0x10421af4, "virtio 1.x block device (0x1040 + 2)");
  assert.equal(d.cfg(0x08) & 0xff, 1, "revision 1 (modern)");
  assert.equal(d.cfg(0x3d, 1), 1, "INTA");
  assert.equal(d.host.ecam.read(2 << 15, 4) >>> 0, 0xffffffff, "slot 2 is empty");
  assert.equal(d.host.ecam.read((1 << 15) | (1 << 12), 2) >>> 0, 0xffff, "function 1 is absent");
  assert.equal(d.host.ecam.read(1 << 20, 4) >>> 0, 0xffffffff, "bus 1 is empty");
  d.setCfg(0x00, 4, 0); assert.equal(d.cfg(0), 0x10421af4, "IDs are read-only");
  d.probe();
  assert.deepEqual([...d.caps.keys()].sort(), [1, 2, 3, 4], "common, notify, ISR and device capabilities");
  assert.equal(d.caps.get(2)!.extra, 4, "notify_off_multiplier");
  // Memory decode off: the BAR decodes nothing (all ones).
  d.setCfg(0x04, 2, 0);
  assert.equal(d.r(d.caps.get(1)!.off + 0x12, 2) & 0xffff, 0xffff);
  d.setCfg(0x04, 2, 0x6);
  assert.equal(d.common(0x12, 2), 1, "num_queues");
  const dt = pcieHostDtNode(1);
  assert.equal(dt.props.compatible, "pci-host-ecam-generic");
  assert.equal((dt.props["interrupt-map"] as number[]).length, 16 * 8, "INTA..INTD of slots 0..3");
});

test("feature negotiation: FEATURES_OK refused without VERSION_1 or with a feature not offered", () => {
  const d = new Driver((m) => new VirtioBlk(m, RawImage.open(rawDisk("b.raw", 1 << 20), false)));
  d.probe();
  d.setCommon(0x14, 1, 3);
  d.setCommon(0x00, 4, 1);
  assert.equal(d.common(0x04, 4) & 1, 1, "VERSION_1 offered (bit 32)");
  d.setCommon(0x14, 1, 0xb);
  assert.equal(d.common(0x14, 1) & 8, 0, "no VERSION_1: FEATURES_OK stays clear");
  d.setCommon(0x14, 1, 0);
  d.setCommon(0x14, 1, 3);
  d.setCommon(0x08, 4, 1); d.setCommon(0x0c, 4, 1);
  d.setCommon(0x08, 4, 0); d.setCommon(0x0c, 4, 1 << 28); // indirect descriptors: not offered
  d.setCommon(0x14, 1, 0xb);
  assert.equal(d.common(0x14, 1) & 8, 0, "an unoffered feature: FEATURES_OK stays clear");
  d.init(1 << 9);
  const cap = d.caps.get(4)!.off;
  assert.equal(d.r(cap, 4) + d.r(cap + 4, 4) * 2 ** 32, 2048, "capacity in sectors");
  assert.equal(d.r(cap + 20, 4), 512, "blk_size");
});

for (const format of ["raw", "qcow2"] as const) {
  test(`virtio-blk on a ${format} image: writes and reads through the queue; qemu-img check and compare agree`, () => {
    const path = join(dir, `c.${format}`);
    execFileSync("qemu-img", ["create", "-q", "-f", format, path, "4M"]);
    const img = format === "raw" ? RawImage.open(path, false) : Qcow2Image.open(path, false);
    const d = new Driver((m) => new VirtioBlk(m, img, { serial: "xeno-disk-1" }));
    d.probe(); d.init();
    const pattern = new Uint8Array(4096).map((_, i) => (i * 7 + 3) & 0xff);
    d.mem.bytes.set(pattern, 0x20000);
    assert.equal(d.request(VIRTIO_BLK_T_OUT, 5, 4096), VIRTIO_BLK_S_OK);
    assert.equal(d.irq[(1 + 0) % 4]!.level, true, "INTA of slot 1 is line 1");
    assert.equal(d.r(d.caps.get(3)!.off, 1), 1, "ISR: queue interrupt");
    assert.equal(d.irq[1]!.level, false, "reading the ISR lowers INTx");
    d.mem.bytes.fill(0, 0x20000, 0x21000);
    assert.equal(d.request(VIRTIO_BLK_T_IN, 5, 4096), VIRTIO_BLK_S_OK);
    assert.deepEqual(d.mem.bytes.subarray(0x20000, 0x21000), pattern, "read back");
    assert.equal(d.request(VIRTIO_BLK_T_FLUSH, 0, 0), VIRTIO_BLK_S_OK);
    assert.equal(d.request(VIRTIO_BLK_T_GET_ID, 0, 20), VIRTIO_BLK_S_OK);
    assert.equal(Buffer.from(d.mem.bytes.subarray(0x20000, 0x2000b)).toString(), "xeno-disk-1");
    // The same write on a raw copy made by qemu-io's oracle route: a raw file with the pattern at 5 * 512.
    img.close();
    const ref = rawDisk(`ref-${format}.raw`, 4 << 20);
    const refBytes = readFileSync(ref); refBytes.set(pattern, 5 * 512); writeFileSync(ref, refBytes);
    if (format === "qcow2") execFileSync("qemu-img", ["check", "-q", path]);
    execFileSync("qemu-img", ["compare", "-q", "-f", format, "-F", "raw", path, ref]);
  });
}

test("hostile requests: buffers outside RAM, lengths past RAM, sectors past the end, odd lengths, unknown types, read-only writes → an error status; the device goes on", () => {
  const path = rawDisk("d.raw", 1 << 20);
  const d = new Driver((m) => new VirtioBlk(m, RawImage.open(path, false), { readOnly: true }));
  d.probe(); d.init();
  assert.equal(d.common(0x04, 4) & (1 << 5), 1 << 5, "VIRTIO_BLK_F_RO offered");
  d.mem.bytes.fill(0xab, 0x20000, 0x20200);
  assert.equal(d.request(VIRTIO_BLK_T_OUT, 0, 512), VIRTIO_BLK_S_IOERR, "write to a read-only disk");
  assert.equal(readFileSync(path).subarray(0, 512).every((b) => b === 0), true, "the file is unchanged");
  assert.equal(d.request(VIRTIO_BLK_T_IN, 2048, 512), VIRTIO_BLK_S_IOERR, "past the end (2048 sectors)");
  assert.equal(d.request(VIRTIO_BLK_T_IN, 2 ** 60, 512), VIRTIO_BLK_S_IOERR, "a huge sector");
  assert.equal(d.request(VIRTIO_BLK_T_IN, 0, 100), VIRTIO_BLK_S_IOERR, "not whole sectors");
  assert.equal(d.request(99, 0, 0), VIRTIO_BLK_S_UNSUPP, "unknown type");
  const h = RAM_BASE + 0x10000, st = RAM_BASE + 0x30000;
  for (const [what, addr, len] of [["a buffer in flash", 0x1000, 512], ["a buffer past RAM", RAM_BASE + RAM - 256, 512],
    ["a length running past RAM", RAM_BASE + 0x20000, 0xffffffff], ["a 2^52 address", 2 ** 52, 512]] as const) {
    d.dv.setUint32(0x10000, VIRTIO_BLK_T_IN, true);
    d.mem.bytes[0x30000] = 0xff;
    d.submit([[h, 16, 1], [addr, len, 3], [st, 1, 2]]);
    assert.equal(d.usedEntries().length, 1, what);
    assert.equal(d.mem.bytes[0x30000], VIRTIO_BLK_S_IOERR, what);
  }
  // No writable status byte: completed with nothing written, counted.
  d.submit([[h, 16, 0]]);
  assert.deepEqual(d.usedEntries(), [[0, 0]]);
  assert.equal(d.dev.stats.unanswerable, 1);
  assert.equal(d.common(0x14, 1), 0xf, "still live: no DEVICE_NEEDS_RESET for request errors");
  assert.equal(d.request(VIRTIO_BLK_T_IN, 0, 512), VIRTIO_BLK_S_OK, "and serving");
});

test("hostile rings: a descriptor loop, a head or next past the queue, an indirect descriptor, an index far ahead, rings outside RAM → DEVICE_NEEDS_RESET; a reset recovers", () => {
  const d = new Driver((m) => new VirtioBlk(m, RawImage.open(rawDisk("e.raw", 1 << 20), false)));
  d.probe();
  const h = RAM_BASE + 0x10000;
  const cases: [string, () => void][] = [
    ["a loop", () => d.submit([[h, 16, 1, 1], [h, 16, 1, 0]])],
    ["a head past the queue", () => d.submit([[h, 16, 0]], 200)],
    ["a next past the queue", () => d.submit([[h, 16, 1, 9]])],
    ["an indirect descriptor", () => d.submit([[h, 16, 4]])],
    ["readable after writable", () => d.submit([[h, 16, 3], [h, 16, 0]])],
    ["an index far ahead", () => { d.dv.setUint16(d.avail - RAM_BASE + 2, 100, true); d.w(d.caps.get(2)!.off, 2, 0); }],
  ];
  for (const [what, go] of cases) {
    d.init();
    go();
    assert.equal(d.common(0x14, 1) & 0x40, 0x40, `${what}: DEVICE_NEEDS_RESET`);
    assert.equal(d.r(d.caps.get(3)!.off, 1) & 2, 2, `${what}: a configuration-change interrupt`);
    assert.equal(d.usedEntries().length, 0, `${what}: nothing completed`);
  }
  d.init();
  assert.equal(d.request(VIRTIO_BLK_T_IN, 0, 512), VIRTIO_BLK_S_OK, "after a reset the device serves again");
  // Rings outside RAM: refused when the queue is enabled.
  d.used = 0x1000;
  d.setCommon(0x14, 1, 0); d.setCommon(0x14, 1, 3);
  d.setCommon(0x08, 4, 1); d.setCommon(0x0c, 4, 1); d.setCommon(0x14, 1, 0xb);
  d.setCommon(0x18, 2, 8);
  for (const [o, a] of [[0x20, d.desc], [0x28, d.avail], [0x30, d.used]] as const) { d.setCommon(o, 4, a >>> 0); d.setCommon(o + 4, 4, 0); }
  d.setCommon(0x1c, 2, 1);
  assert.equal(d.common(0x1c, 2), 0, "the queue stays disabled");
  assert.match(d.dev.lastError, /outside guest RAM/);
  d.setCommon(0x18, 2, 3); // not a power of two
  assert.equal(d.common(0x14, 1) & 0x40, 0x40);
});
