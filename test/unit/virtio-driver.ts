/**
 * A minimal modern virtio-pci driver for the device tests (test/unit/devices-virtio-*.test.ts), driving a device
 * on a PcieHost from the host side: ECAM config, BAR placement, capabilities, feature negotiation, split queues in
 * a 1 MiB "guest RAM" at 0x4000_0000 (queue q's rings at 0x1000/0x2000/0x3000 + q * 0x4000).
 */
import assert from "node:assert/strict";
import { LatchedIrq } from "../../src/devices/mmio.js";
import type { DmaMemory } from "../../src/devices/dma.js";
import { PcieHost, PCIE_MMIO_BASE } from "../../src/devices/pci/pcie-host.js";
import type { VirtioPciDevice } from "../../src/devices/virtio/virtio-pci.js";

export const RAM_BASE = 0x40000000, RAM = 1 << 20;

export function ram(): DmaMemory {
  const bytes = new Uint8Array(RAM);
  return { bytes, offsetOf: (pa, len) => (Number.isSafeInteger(pa) && pa >= RAM_BASE && len >= 0 && pa + len <= RAM_BASE + RAM ? pa - RAM_BASE : -1) };
}

/** A minimal modern virtio-pci driver for slot 1 (what Linux's virtio_pci_modern and EDK2's Virtio10Dxe do). */
export class Driver<D extends VirtioPciDevice = VirtioPciDevice> {
  readonly irq = [new LatchedIrq(), new LatchedIrq(), new LatchedIrq(), new LatchedIrq()];
  readonly host = new PcieHost(this.irq);
  readonly mem = ram();
  readonly dv = new DataView(this.mem.bytes.buffer);
  readonly bar = PCIE_MMIO_BASE + 0x100000;
  caps = new Map<number, { off: number; len: number; extra: number }>();
  qsize = 8;
  desc = RAM_BASE + 0x1000; avail = RAM_BASE + 0x2000; used = RAM_BASE + 0x3000;
  availIdx = [0, 0]; usedSeen = [0, 0];
  /** Queue q's rings: queue 0 at desc/avail/used, queue q at those + q * 0x4000. */
  ring(q: number): { desc: number; avail: number; used: number } {
    return { desc: this.desc + q * 0x4000, avail: this.avail + q * 0x4000, used: this.used + q * 0x4000 };
  }

  readonly dev: D;
  constructor(make: (mem: DmaMemory) => D, readonly slot = 1) { this.dev = make(this.mem); this.host.plug(slot, this.dev); }
  cfg(reg: number, size = 4): number { return this.host.ecam.read((this.slot << 15) | reg, size) >>> 0; }
  setCfg(reg: number, size: number, v: number): void { this.host.ecam.write((this.slot << 15) | reg, size, v, 0); }
  r(off: number, size: number): number { return this.host.mmio.read(this.bar - PCIE_MMIO_BASE + off, size) >>> 0; }
  w(off: number, size: number, v: number): void { this.host.mmio.write(this.bar - PCIE_MMIO_BASE + off, size, v, 0); }
  common(o: number, size: number): number { return this.r(this.caps.get(1)!.off + o, size); }
  setCommon(o: number, size: number, v: number): void { this.w(this.caps.get(1)!.off + o, size, v); }

  /** Places BAR 0, enables memory decode, walks the vendor capabilities. */
  probe(): void {
    this.setCfg(0x10, 4, 0xffffffff);
    assert.equal(this.cfg(0x10), 0xffffc000, "BAR 0 sizes as 16 KiB of 32-bit memory");
    this.setCfg(0x10, 4, this.bar);
    this.setCfg(0x04, 2, 0x6); // memory + bus master
    for (let at = this.cfg(0x34, 1); at !== 0; at = this.cfg(at + 1, 1)) {
      if (this.cfg(at, 1) !== 0x09) continue;
      const type = this.cfg(at + 3, 1);
      assert.equal(this.cfg(at + 4, 1), 0, "in BAR 0");
      this.caps.set(type, { off: this.cfg(at + 8), len: this.cfg(at + 12), extra: this.cfg(at + 2, 1) > 16 ? this.cfg(at + 16) : 0 });
    }
  }

  /** Status, features (VERSION_1 plus `want` of the offered low word), queues 0..nq-1 at size qsize, DRIVER_OK. */
  init(want = 0, nq = 1): void {
    this.setCommon(0x14, 1, 0); this.setCommon(0x14, 1, 1); this.setCommon(0x14, 1, 3);
    this.setCommon(0x08, 4, 0); this.setCommon(0x0c, 4, want);
    this.setCommon(0x08, 4, 1); this.setCommon(0x0c, 4, 1);
    this.setCommon(0x14, 1, 0xb);
    assert.equal(this.common(0x14, 1), 0xb, "FEATURES_OK accepted");
    for (let q = 0; q < nq; q++) {
      const r = this.ring(q);
      this.setCommon(0x16, 2, q);
      this.setCommon(0x18, 2, this.qsize);
      for (const [o, a] of [[0x20, r.desc], [0x28, r.avail], [0x30, r.used]] as const) { this.setCommon(o, 4, a >>> 0); this.setCommon(o + 4, 4, 0); }
      this.setCommon(0x1c, 2, 1);
    }
    this.setCommon(0x14, 1, 0xf);
    this.availIdx = [0, 0]; this.usedSeen = [0, 0];
  }

  /** Writes descriptors [addr, len, flags, next?] from index `first`, publishes `head` on queue `q`, rings its doorbell. */
  submit(descs: [number, number, number, number?][], head = 0, first = 0, q = 0): void {
    const m = this.dv, r = this.ring(q), d = r.desc - RAM_BASE;
    descs.forEach(([addr, len, flags, next], k) => {
      const at = d + 16 * (first + k);
      m.setUint32(at, addr >>> 0, true); m.setUint32(at + 4, Math.floor(addr / 2 ** 32), true);
      m.setUint32(at + 8, len >>> 0, true); m.setUint16(at + 12, flags, true); m.setUint16(at + 14, next ?? first + k + 1, true);
    });
    const a = r.avail - RAM_BASE;
    m.setUint16(a + 4 + 2 * (this.availIdx[q]! % this.qsize), head, true);
    this.availIdx[q] = (this.availIdx[q]! + 1) & 0xffff;
    m.setUint16(a + 2, this.availIdx[q]!, true);
    this.w(this.caps.get(2)!.off + q * this.caps.get(2)!.extra, 2, q);
  }

  /** The used ring's new entries since the last call: [id, len]. */
  usedEntries(q = 0): [number, number][] {
    const u = this.ring(q).used - RAM_BASE, idx = this.dv.getUint16(u + 2, true), out: [number, number][] = [];
    for (; this.usedSeen[q] !== idx; this.usedSeen[q] = (this.usedSeen[q]! + 1) & 0xffff) {
      const at = u + 4 + 8 * (this.usedSeen[q]! % this.qsize);
      out.push([this.dv.getUint32(at, true), this.dv.getUint32(at + 4, true)]);
    }
    return out;
  }

}

