/**
 * QEMU's fw_cfg, MMIO flavour (src/devices/fw-cfg/fw-cfg.ts), against docs/specs/fw_cfg.txt as EDK2's
 * QemuFwCfgLib drives it: the selector written byte-swapped, the signature and the ID with the DMA bit, the
 * file directory, data reads of 1/2/4/8 bytes in item order, DMA (select + read, skip, past the end, write
 * refused) through a descriptor in guest RAM, and hostile descriptors (outside RAM, a buffer running past RAM,
 * a huge length) answered with ERROR and nothing else touched.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { R } from "../../src/common/int64.js";
import { DMA_ERROR, DMA_READ, DMA_SELECT, DMA_SKIP, DMA_WRITE, FW_CFG_DMA, FW_CFG_FILE_DIR, FW_CFG_ID, FW_CFG_NB_CPUS, FW_CFG_SELECTOR,
  FW_CFG_SIGNATURE, FwCfg, le, type DmaMemory } from "../../src/devices/fw-cfg/fw-cfg.js";

const RAM_BASE = 0x40000000, RAM = 1 << 20;
function ram(): DmaMemory {
  const bytes = new Uint8Array(RAM);
  return { bytes, offsetOf: (pa, len) => (pa >= RAM_BASE && len >= 0 && pa + len <= RAM_BASE + RAM ? pa - RAM_BASE : -1) };
}
const swap16 = (v: number): number => ((v & 0xff) << 8) | (v >>> 8);
const swap32 = (v: number): number => (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
/** QemuFwCfgSelectItem: MmioWrite16(selector, SwapBytes16(item)). */
const select = (f: FwCfg, key: number): void => f.write(FW_CFG_SELECTOR, 2, swap16(key), 0);
/** Bytes as a little-endian CPU stores what it read from the data register. */
function readBytes(f: FwCfg, n: number, width = 1): number[] {
  const out: number[] = [];
  while (out.length < n) {
    const lo = f.read(0, width) >>> 0, hi = width === 8 ? R[0]! >>> 0 : 0;
    for (let k = 0; k < width; k++) out.push(k < 4 ? (lo >>> (8 * k)) & 0xff : (hi >>> (8 * (k - 4))) & 0xff);
  }
  return out.slice(0, n);
}

test("fw_cfg: signature, ID with DMA, data reads of every width in item order, fixed items, past the end reads 0", () => {
  const f = new FwCfg(ram());
  select(f, FW_CFG_SIGNATURE);
  assert.equal(String.fromCharCode(...readBytes(f, 4)), "QEMU");
  select(f, FW_CFG_SIGNATURE);
  assert.equal(String.fromCharCode(...readBytes(f, 4, 4)), "QEMU", "a 32-bit read is string-preserving");
  select(f, FW_CFG_ID);
  assert.deepEqual(readBytes(f, 4), [3, 0, 0, 0], "traditional interface + DMA");
  f.set(FW_CFG_NB_CPUS, le(2, 2));
  select(f, FW_CFG_NB_CPUS);
  assert.deepEqual(readBytes(f, 2, 2), [2, 0]);
  assert.deepEqual(readBytes(f, 3), [0, 0, 0], "past the end");
  select(f, 0x1234);
  assert.deepEqual(readBytes(f, 8, 8), [0, 0, 0, 0, 0, 0, 0, 0], "an item that does not exist reads as zeros");
  // The DMA register reads as "QEMU CFG".
  const lo = f.read(FW_CFG_DMA, 8) >>> 0, hi = R[0]! >>> 0;
  assert.equal(Buffer.from([...[0, 1, 2, 3].map((k) => (lo >>> (8 * k)) & 0xff), ...[0, 1, 2, 3].map((k) => (hi >>> (8 * k)) & 0xff)]).toString("latin1"), "QEMU CFG");
});

test("fw_cfg: the file directory lists files sorted by name with their keys and sizes; 8-byte reads", () => {
  const f = new FwCfg(ram());
  const kb = f.addFile("etc/boot-fail-wait", le(5, 4));
  const ka = f.addFile("bootorder", new TextEncoder().encode("/virtio-mmio@a000000\n"));
  select(f, FW_CFG_FILE_DIR);
  const d = Buffer.from(readBytes(f, 4 + 64 * 2, 8));
  assert.equal(d.readUInt32BE(0), 2);
  const entry = (i: number): [number, number, string] => [d.readUInt32BE(4 + 64 * i), d.readUInt16BE(8 + 64 * i), d.subarray(12 + 64 * i, 12 + 64 * i + 56).toString("latin1").replace(/\0+$/, "")];
  assert.deepEqual(entry(0), [21, ka, "bootorder"]);
  assert.deepEqual(entry(1), [4, kb, "etc/boot-fail-wait"]);
  select(f, ka);
  assert.equal(Buffer.from(readBytes(f, 21, 8)).toString(), "/virtio-mmio@a000000\n");
  assert.throws(() => f.addFile("x".repeat(56), new Uint8Array(1)), /1\.\.55 bytes/);
});

/** Writes an FWCfgDmaAccess at RAM offset `at` and starts it as EDK2 does (two 32-bit writes, high first). */
function dma(f: FwCfg, m: DmaMemory, at: number, control: number, length: number, addr: number, wide = false): number {
  const dv = new DataView(m.bytes.buffer);
  dv.setUint32(at, control); dv.setUint32(at + 4, length);
  dv.setUint32(at + 8, Math.floor(addr / 2 ** 32)); dv.setUint32(at + 12, addr >>> 0);
  const pa = RAM_BASE + at;
  if (wide) f.write(FW_CFG_DMA, 8, swap32(0), swap32(pa));
  else { f.write(FW_CFG_DMA, 4, swap32(0), 0); f.write(FW_CFG_DMA + 4, 4, swap32(pa), 0); }
  return dv.getUint32(at);
}

test("fw_cfg: DMA select+read, skip, reads past the item's end zero-filled, write refused; control written back", () => {
  const m = ram(), f = new FwCfg(m);
  const data = new Uint8Array(300).map((_, i) => i & 0xff);
  const key = f.addFile("etc/test", data);
  m.bytes.fill(0xee, 0x1000, 0x1200);
  assert.equal(dma(f, m, 0x100, (key << 16) | DMA_SELECT | DMA_READ, 100, RAM_BASE + 0x1000), 0);
  assert.deepEqual([...m.bytes.subarray(0x1000, 0x1064)], [...data.subarray(0, 100)]);
  assert.equal(dma(f, m, 0x100, DMA_SKIP, 150, 0, true), 0, "skip (64-bit doorbell)");
  assert.equal(dma(f, m, 0x100, DMA_READ, 0x100, RAM_BASE + 0x1000), 0);
  assert.deepEqual([...m.bytes.subarray(0x1000, 0x1032)], [...data.subarray(250, 300)]);
  assert.ok(m.bytes.subarray(0x1032, 0x1100).every((b) => b === 0), "past the end: zeros");
  assert.equal(m.bytes[0x1100], 0xee, "nothing beyond the requested length");
  assert.equal(dma(f, m, 0x100, (key << 16) | DMA_SELECT | DMA_WRITE, 4, RAM_BASE + 0x1000), DMA_ERROR, "items are read-only");
  assert.equal(f.stats.dmaErrors, 1);
  // READ with WRITE (and SKIP) set reads, as QEMU's fw_cfg_dma_transfer takes READ first; WRITE with SKIP is a write.
  m.bytes.fill(0xee, 0x1000, 0x1010);
  assert.equal(dma(f, m, 0x100, (key << 16) | DMA_SELECT | DMA_READ | DMA_WRITE | DMA_SKIP, 8, RAM_BASE + 0x1000), 0);
  assert.deepEqual([...m.bytes.subarray(0x1000, 0x1008)], [...data.subarray(0, 8)]);
  assert.equal(dma(f, m, 0x100, DMA_WRITE | DMA_SKIP, 4, RAM_BASE + 0x1000), DMA_ERROR);
  assert.equal(f.stats.dmaErrors, 2);
});

test("fw_cfg: hostile DMA — descriptor outside RAM, buffer past RAM, huge length: ERROR (where it can be written), no byte moved", () => {
  const m = ram(), f = new FwCfg(m);
  const key = f.addFile("etc/test", new Uint8Array(64).fill(7));
  const snapshot = Buffer.from(m.bytes);
  // Descriptor outside RAM: nothing to write back, nothing touched.
  f.write(FW_CFG_DMA, 8, 0, swap32(0x1000));
  assert.ok(Buffer.from(m.bytes).equals(snapshot));
  // The buffer runs past the end of RAM.
  assert.equal(dma(f, m, 0x200, (key << 16) | DMA_SELECT | DMA_READ, 64, RAM_BASE + RAM - 16), DMA_ERROR);
  assert.ok(m.bytes.subarray(RAM - 16).every((b) => b === 0), "no partial copy");
  // A 4 GiB - 1 length.
  assert.equal(dma(f, m, 0x200, (key << 16) | DMA_SELECT | DMA_READ, 0xffffffff, RAM_BASE), DMA_ERROR);
  // A descriptor straddling the end of RAM.
  const before = Buffer.from(m.bytes.subarray(RAM - 8));
  f.write(FW_CFG_DMA, 4, 0, 0); f.write(FW_CFG_DMA + 4, 4, swap32(RAM_BASE + RAM - 8), 0);
  assert.ok(Buffer.from(m.bytes.subarray(RAM - 8)).equals(before));
  assert.equal(f.stats.dmaErrors, 4, "outside RAM, past RAM, huge, straddling");
  // Seeded fuzz of descriptors: every outcome stays inside RAM's bytes and the device keeps answering.
  let x = 12345;
  const rnd = (): number => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
  for (let i = 0; i < 2000; i++) {
    const at = (rnd() % (RAM / 16)) * 16;
    if (at + 16 > RAM) continue;
    dma(f, m, at, rnd(), rnd() % 0x20000, RAM_BASE - 0x1000 + (rnd() % (RAM + 0x2000)));
  }
  select(f, FW_CFG_SIGNATURE);
  assert.equal(String.fromCharCode(...readBytes(f, 4)), "QEMU");
  process.stderr.write(`# fw_cfg DMA fuzz: ${f.stats.dmaTransfers} transfers, ${f.stats.dmaErrors} errors\n`);
});
