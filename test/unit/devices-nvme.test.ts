/**
 * The NVMe controller (src/devices/nvme) driven from the host side as Linux's nvme driver drives it: the PCI
 * function on a PcieHost (IDs, class, a 64-bit BAR), CC.EN / CSTS.RDY, the admin queue, Identify, Number of
 * Queues, I/O queue pairs, Read / Write / Flush / Dataset Management through PRP1, PRP2 and PRP lists (chained),
 * phase tags across wraps, a full completion queue holding back fetches, INTx and INTMS, shutdown, and every
 * hostile input the device must answer with a status code: queue ids never created or in use, queue sizes 1 and
 * past MQES, queues or PRPs outside RAM (the flash, MMIO, past the end), misaligned PRPs, LBAs past the end,
 * transfers past MDTS, unknown opcodes and CNS values, namespaces that do not exist, a write to a read-only
 * namespace, doorbells for missing queues or past a queue (ignored, reported by an Asynchronous Event).
 * qemu-img is the oracle for the qcow2 image's consistency.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LatchedIrq } from "../../src/devices/mmio.js";
import { PcieHost, PCIE_MMIO_BASE } from "../../src/devices/pci/pcie-host.js";
import { NvmeController, MAX_QUEUE_ENTRIES } from "../../src/devices/nvme/nvme.js";
import * as D from "../../src/devices/nvme/nvme-defs.js";
import { RawImage, type BlockImage } from "../../src/storage/block-image.js";
import { Qcow2Image } from "../../src/storage/qcow2.js";
import { configFileSpec } from "../../src/cli/create.js";
import { bootOrderFile } from "../../src/machine/firmware.js";
import { ram, RAM, RAM_BASE } from "./virtio-driver.js";

const dir = mkdtempSync(join(tmpdir(), "xeno-nvme-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Where the test driver keeps things in its 1 MiB of "guest RAM" (offsets from RAM_BASE). */
const ASQ = 0x1000, ACQ = 0x2000, IOSQ = 0x3000, IOCQ = 0x4000, LIST = 0x8000, DATA = 0x10000, ID = 0x80000;
/** Status Field of a completion without the phase: SC | SCT << 8 | DNR << 14 (as nvme-defs encodes them). */
interface Cqe { dw0: number; sqhd: number; sqid: number; cid: number; phase: number; status: number }

class NvmeDriver {
  readonly irq = [new LatchedIrq(), new LatchedIrq(), new LatchedIrq(), new LatchedIrq()];
  readonly host = new PcieHost(this.irq);
  readonly mem = ram();
  readonly dv = new DataView(this.mem.bytes.buffer);
  readonly bar = PCIE_MMIO_BASE + 0x100000;
  readonly dev: NvmeController;
  // Per queue (0 admin, 1 I/O): base, size, tail, CQ head, expected phase.
  sq = [{ base: ASQ, size: 8, tail: 0 }, { base: IOSQ, size: 16, tail: 0 }];
  cq = [{ base: ACQ, size: 8, head: 0, phase: 1 }, { base: IOCQ, size: 16, head: 0, phase: 1 }];
  cid = 0;

  constructor(readonly disk: BlockImage, o: { readOnly?: boolean } = {}) {
    this.dev = new NvmeController(this.mem, disk, { serial: "nvme0", ...o });
    this.host.plug(1, this.dev);
  }
  cfg(reg: number, size = 4): number { return this.host.ecam.read((1 << 15) | reg, size) >>> 0; }
  setCfg(reg: number, size: number, v: number): void { this.host.ecam.write((1 << 15) | reg, size, v, 0); }
  r(off: number, size = 4): number { return this.host.mmio.read(this.bar - PCIE_MMIO_BASE + off, size) >>> 0; }
  w(off: number, v: number, size = 4): void { this.host.mmio.write(this.bar - PCIE_MMIO_BASE + off, size, v, 0); }
  get intx(): boolean { return this.irq[(1 + 0) % 4]!.level; } // slot 1, INTA: line 1

  probe(): void {
    this.setCfg(0x10, 4, 0xffffffff); this.setCfg(0x14, 4, 0xffffffff);
    assert.equal(this.cfg(0x10), 0xffffc004, "BAR 0 sizes as 16 KiB of 64-bit memory");
    this.setCfg(0x10, 4, this.bar); this.setCfg(0x14, 4, 0);
    this.setCfg(0x04, 2, 0x6);
  }

  /** Admin queue of `asqs`/`acqs` entries, CC with 64/16-byte I/O entries, EN. */
  enable(asqs = 8, acqs = 8): void {
    this.w(D.REG_CC, 0);
    this.sq[0] = { base: ASQ, size: asqs, tail: 0 }; this.cq[0] = { base: ACQ, size: acqs, head: 0, phase: 1 };
    this.w(D.REG_AQA, ((acqs - 1) << 16) | (asqs - 1));
    this.w(D.REG_ASQ, RAM_BASE + ASQ); this.w(D.REG_ASQ + 4, 0);
    this.w(D.REG_ACQ, RAM_BASE + ACQ); this.w(D.REG_ACQ + 4, 0);
    this.w(D.REG_CC, (6 << 16) | (4 << 20) | 1);
  }

  /** Writes command `dw` (16 dwords; CID filled in) into SQ q and rings its tail doorbell (unless ring = false). */
  put(q: number, dw: number[], ring = true): number {
    const s = this.sq[q]!, at = s.base + s.tail * 64, cid = (++this.cid) & 0xffff;
    for (let i = 0; i < 16; i++) this.dv.setUint32(at + 4 * i, (dw[i] ?? 0) >>> 0, true);
    this.dv.setUint32(at, ((dw[0] ?? 0) & 0xffff | (cid << 16)) >>> 0, true);
    s.tail = (s.tail + 1) % s.size;
    if (ring) this.w(D.DOORBELL_BASE + 8 * q, s.tail);
    return cid;
  }

  /** The next completion on CQ q, or null when its phase says none is there; consumed and the head rung. */
  take(q: number, ring = true): Cqe | null {
    const c = this.cq[q]!, at = c.base + c.head * 16;
    const dw3 = this.dv.getUint32(at + 12, true);
    if (((dw3 >>> 16) & 1) !== c.phase) return null;
    const e = { dw0: this.dv.getUint32(at, true), sqhd: this.dv.getUint16(at + 8, true), sqid: this.dv.getUint16(at + 10, true),
      cid: dw3 & 0xffff, phase: (dw3 >>> 16) & 1, status: dw3 >>> 17 };
    c.head = (c.head + 1) % c.size;
    if (c.head === 0) c.phase ^= 1;
    if (ring) this.w(D.DOORBELL_BASE + 8 * q + 4, c.head);
    return e;
  }

  /** Submits on q and returns its completion (asserting one came, for this CID). */
  cmd(q: number, dw: number[]): Cqe {
    const cid = this.put(q, dw);
    const e = this.take(q);
    assert.ok(e !== null, `a completion for opcode 0x${((dw[0] ?? 0) & 0xff).toString(16)} on queue ${q}`);
    assert.equal(e.cid, cid, "the completion's CID");
    assert.equal(e.sqid, q, "the completion's SQ id");
    return e;
  }

  admin(opc: number, f: { nsid?: number; prp1?: number; prp2?: number; dw10?: number; dw11?: number; dw12?: number; dw13?: number } = {}): Cqe {
    const p1 = f.prp1 ?? 0, p2 = f.prp2 ?? 0;
    return this.cmd(0, [opc, f.nsid ?? 0, 0, 0, 0, 0, p1 >>> 0, Math.floor(p1 / 2 ** 32), p2 >>> 0, Math.floor(p2 / 2 ** 32),
      f.dw10 ?? 0, f.dw11 ?? 0, f.dw12 ?? 0, f.dw13 ?? 0]);
  }

  /** Number of Queues, I/O CQ 1 and SQ 1 of 16 entries. */
  ioQueues(): void {
    assert.equal(this.admin(D.ADM_SET_FEATURES, { dw10: D.FEAT_NUM_QUEUES, dw11: 0x00030003 }).status, 0);
    this.sq[1] = { base: IOSQ, size: 16, tail: 0 }; this.cq[1] = { base: IOCQ, size: 16, head: 0, phase: 1 };
    assert.equal(this.admin(D.ADM_CREATE_CQ, { prp1: RAM_BASE + IOCQ, dw10: (15 << 16) | 1, dw11: 0b11 }).status, 0, "create CQ 1");
    assert.equal(this.admin(D.ADM_CREATE_SQ, { prp1: RAM_BASE + IOSQ, dw10: (15 << 16) | 1, dw11: (1 << 16) | 1 }).status, 0, "create SQ 1");
  }

  /** An NVM command on SQ 1. */
  io(opc: number, slba: number, nlb: number, prp1: number, prp2 = 0, o: { nsid?: number; dw12?: number; dw10?: number; dw11?: number } = {}): Cqe {
    return this.cmd(1, [opc, o.nsid ?? 1, 0, 0, 0, 0, prp1 >>> 0, Math.floor(prp1 / 2 ** 32), prp2 >>> 0, Math.floor(prp2 / 2 ** 32),
      o.dw10 ?? slba >>> 0, o.dw11 ?? Math.floor(slba / 2 ** 32), o.dw12 ?? ((nlb - 1) & 0xffff)]);
  }
}

function rawDisk(name: string, bytes: number, fill?: (b: Uint8Array) => void): string {
  const p = join(dir, name), b = new Uint8Array(bytes);
  fill?.(b);
  writeFileSync(p, b);
  return p;
}

function ready(disk?: BlockImage, o: { readOnly?: boolean } = {}): NvmeDriver {
  const d = new NvmeDriver(disk ?? RawImage.open(rawDisk(`d${Math.random().toString(36).slice(2)}.raw`, 1 << 20), false), o);
  d.probe(); d.enable();
  assert.equal(d.r(D.REG_CSTS) & 3, D.CSTS_RDY, "ready");
  d.ioQueues();
  return d;
}

test("PCI function: QEMU's NVMe IDs, class 01/08/02 (NVM Express), INTA, a 64-bit 16 KiB BAR", () => {
  const d = new NvmeDriver(RawImage.open(rawDisk("ids.raw", 1 << 20), true));
  assert.equal(d.cfg(0), 0x00101b36, "vendor 1b36, device 0010");
  assert.equal(d.cfg(0x08) >>> 8, 0x010802, "mass storage, non-volatile memory, NVM Express");
  assert.equal(d.cfg(0x3d, 1), 1, "INTA");
  d.probe();
  assert.equal(d.cfg(0x10), (d.bar | 4) >>> 0, "placed");
  const cap = d.r(D.REG_CAP), capHi = d.r(D.REG_CAP + 4);
  assert.equal(cap & 0xffff, MAX_QUEUE_ENTRIES - 1, "MQES");
  assert.ok((cap & D.CAP_CQR) !== 0, "contiguous queues required");
  assert.equal(capHi & 0xf, 0, "DSTRD 0");
  assert.ok((capHi & D.CAP_HI_CSS_NVM) !== 0, "NVM command set");
  assert.equal((capHi >>> 16) & 0xff, 0, "MPSMIN = MPSMAX = 4 KiB");
  assert.equal(d.r(D.REG_VS), 0x00010400, "NVMe 1.4");
  assert.equal(d.host.mmio.read(d.bar - PCIE_MMIO_BASE, 8) >>> 0, cap, "CAP as one 8-byte read");
});

test("enable, Identify controller / namespace / active namespace list / descriptors, Get Features, Get Log Page", () => {
  const d = new NvmeDriver(RawImage.open(rawDisk("id.raw", 3 << 20), false));
  d.probe(); d.enable();
  assert.equal(d.r(D.REG_CSTS), D.CSTS_RDY);
  let e = d.admin(D.ADM_IDENTIFY, { prp1: RAM_BASE + ID, dw10: D.CNS_CONTROLLER });
  assert.equal(e.status, 0); assert.equal(e.sqhd, 1, "SQ head after one command");
  const s = (at: number, n: number): string => new TextDecoder().decode(d.mem.bytes.subarray(ID + at, ID + at + n)).trimEnd();
  assert.equal(s(4, 20), "nvme0", "serial"); assert.equal(s(24, 40), "Xeno NVMe Ctrl", "model");
  assert.equal(d.dv.getUint32(ID + 80, true), 0x00010400, "VER");
  assert.equal(d.dv.getUint32(ID + 516, true), 1, "one namespace");
  assert.equal(d.mem.bytes[ID + 512], 0x66); assert.equal(d.mem.bytes[ID + 513], 0x44);
  assert.match(s(768, 64).replace(/\0+$/, ""), /^nqn\.2026-12\.org\.xeno:nvme:nvme0$/, "SUBNQN");
  // Identify into a buffer that straddles a page: PRP1 with an offset and PRP2.
  e = d.admin(D.ADM_IDENTIFY, { nsid: 1, prp1: RAM_BASE + ID + 0x800, prp2: RAM_BASE + ID + 0x3000, dw10: D.CNS_NAMESPACE });
  assert.equal(e.status, 0);
  assert.equal(d.dv.getUint32(ID + 0x800, true), (3 << 20) / 512, "NSZE in the first part");
  assert.equal(d.dv.getUint32(ID + 0x800 + 128, true), 9 << 16, "LBA format 0 (512 bytes)");
  e = d.admin(D.ADM_IDENTIFY, { prp1: RAM_BASE + ID + 0x800, prp2: RAM_BASE + ID + 0x3000, dw10: D.CNS_CONTROLLER });
  assert.equal(d.dv.getUint16(ID + 0x3000, true), 2500, "power state 0 (byte 2048) at the start of the PRP2 page");
  e = d.admin(D.ADM_IDENTIFY, { nsid: 0, prp1: RAM_BASE + ID, dw10: D.CNS_ACTIVE_NS_LIST });
  assert.equal(e.status, 0); assert.equal(d.dv.getUint32(ID, true), 1); assert.equal(d.dv.getUint32(ID + 4, true), 0);
  e = d.admin(D.ADM_IDENTIFY, { nsid: 1, prp1: RAM_BASE + ID, dw10: D.CNS_ACTIVE_NS_LIST });
  assert.equal(e.status, 0); assert.equal(d.dv.getUint32(ID, true), 0, "no namespace after 1");
  assert.equal(d.admin(D.ADM_IDENTIFY, { nsid: 0xfffffffe, prp1: RAM_BASE + ID, dw10: D.CNS_ACTIVE_NS_LIST }).status, D.SC_INVALID_NS);
  e = d.admin(D.ADM_IDENTIFY, { nsid: 1, prp1: RAM_BASE + ID, dw10: D.CNS_NS_DESCRIPTORS });
  assert.equal(e.status, 0); assert.equal(d.mem.bytes[ID], 3, "a UUID descriptor"); assert.equal(d.mem.bytes[ID + 1], 16);
  assert.equal(d.admin(D.ADM_IDENTIFY, { nsid: 2, prp1: RAM_BASE + ID, dw10: D.CNS_NAMESPACE }).status, D.SC_INVALID_NS, "namespace 2");
  assert.equal(d.admin(D.ADM_IDENTIFY, { prp1: RAM_BASE + ID, dw10: 0x10 }).status, D.SC_INVALID_FIELD, "CNS 10h");
  assert.equal(d.admin(D.ADM_IDENTIFY, { prp1: 0x100000, dw10: D.CNS_CONTROLLER }).status, D.SC_DATA_TRANSFER_ERROR, "into the flash");
  assert.equal(d.admin(D.ADM_IDENTIFY, { prp1: RAM_BASE + RAM - 0x800, dw10: D.CNS_CONTROLLER }).status, D.SC_DATA_TRANSFER_ERROR, "PRP2 0: page 0");
  assert.equal(d.admin(D.ADM_IDENTIFY, { prp1: RAM_BASE + ID + 2, dw10: D.CNS_CONTROLLER }).status, D.SC_PRP_OFFSET_INVALID, "PRP1 not dword aligned");
  assert.equal(d.admin(D.ADM_IDENTIFY, { prp1: RAM_BASE + ID + 0x800, prp2: RAM_BASE + ID + 0x3010, dw10: D.CNS_CONTROLLER }).status,
    D.SC_PRP_OFFSET_INVALID, "PRP2 data page with an offset");
  // Features.
  e = d.admin(D.ADM_GET_FEATURES, { dw10: D.FEAT_NUM_QUEUES });
  assert.equal(e.status, 0); assert.equal(e.dw0, 0x000f000f, "16 queue pairs before Set Features");
  e = d.admin(D.ADM_SET_FEATURES, { dw10: D.FEAT_NUM_QUEUES, dw11: 0x00ff00ff });
  assert.equal(e.status, 0); assert.equal(e.dw0, 0x000f000f, "capped at 16 pairs");
  assert.equal(d.admin(D.ADM_SET_FEATURES, { dw10: D.FEAT_NUM_QUEUES, dw11: 0 }).status, D.SC_CMD_SEQ_ERROR, "set twice");
  assert.equal(d.admin(D.ADM_SET_FEATURES, { dw10: D.FEAT_VOLATILE_WC, dw11: 0 }).status, 0);
  assert.equal(d.admin(D.ADM_GET_FEATURES, { dw10: D.FEAT_VOLATILE_WC }).dw0, 0, "write cache off");
  assert.equal(d.admin(D.ADM_SET_FEATURES, { dw10: D.FEAT_POWER_MGMT, dw11: 1 }).status, D.SC_INVALID_FIELD, "power state 1");
  assert.equal(d.admin(D.ADM_SET_FEATURES, { dw10: D.FEAT_IRQ_CONFIG, dw11: 5 }).status, D.SC_INVALID_FIELD, "vector 5");
  assert.equal(d.admin(D.ADM_SET_FEATURES, { dw10: 0x80 }).status, D.SC_INVALID_FIELD, "feature 80h");
  assert.equal(d.admin(D.ADM_SET_FEATURES, { dw10: D.FEAT_ARBITRATION | (1 << 31) }).status, D.SC_FEATURE_NOT_SAVEABLE, "save");
  assert.equal(d.admin(D.ADM_GET_FEATURES, { dw10: 0x03 }).status, D.SC_INVALID_FIELD, "LBA range type");
  // Logs.
  d.mem.bytes.fill(0xee, ID, ID + 0x1000);
  e = d.admin(D.ADM_GET_LOG_PAGE, { nsid: 0xffffffff, prp1: RAM_BASE + ID, dw10: D.LOG_SMART | (127 << 16) });
  assert.equal(e.status, 0); assert.equal(d.mem.bytes[ID + 3], 100, "available spare 100%"); assert.equal(d.mem.bytes[ID + 511], 0);
  assert.equal(d.mem.bytes[ID + 512], 0xee, "512 bytes, no more");
  assert.equal(d.admin(D.ADM_GET_LOG_PAGE, { prp1: RAM_BASE + ID, dw10: 0x70 | (127 << 16) }).status, D.SC_INVALID_LOG_PAGE);
  assert.equal(d.admin(D.ADM_GET_LOG_PAGE, { prp1: RAM_BASE + ID, dw10: D.LOG_SMART | (127 << 16), dw12: 4096 }).status, D.SC_INVALID_FIELD, "offset past the log");
  assert.equal(d.admin(0x7f).status, D.SC_INVALID_OPCODE, "admin opcode 7Fh");
  const abort = d.admin(D.ADM_ABORT, { dw10: 1 << 16 });
  assert.equal(abort.status, 0); assert.equal(abort.dw0 & 1, 1, "nothing aborted");
});

test("I/O queue creation and deletion: every bad field gets its status", () => {
  const d = new NvmeDriver(RawImage.open(rawDisk("q.raw", 1 << 20), false));
  d.probe(); d.enable();
  assert.equal(d.admin(D.ADM_SET_FEATURES, { dw10: D.FEAT_NUM_QUEUES, dw11: 0x00010001 }).dw0, 0x00010001, "two pairs");
  const cq = (qid: number, size: number, dw11 = 0b11, base = RAM_BASE + IOCQ): number =>
    d.admin(D.ADM_CREATE_CQ, { prp1: base, dw10: ((size - 1) << 16) | qid, dw11 }).status;
  const sq = (qid: number, size: number, cqid: number, base = RAM_BASE + IOSQ, pc = 1): number =>
    d.admin(D.ADM_CREATE_SQ, { prp1: base, dw10: ((size - 1) << 16) | qid, dw11: (cqid << 16) | pc }).status;
  assert.equal(cq(0, 16), D.SC_INVALID_QID, "CQ 0 is the admin queue");
  assert.equal(cq(3, 16), D.SC_INVALID_QID, "CQ 3: only 2 allocated");
  assert.equal(cq(0xffff, 16), D.SC_INVALID_QID, "CQ 65535");
  assert.equal(cq(1, 1), D.SC_INVALID_QSIZE, "one entry");
  assert.equal(cq(1, 0x10000), D.SC_INVALID_QSIZE, "65536 entries (past MQES)");
  assert.equal(cq(1, MAX_QUEUE_ENTRIES + 1), D.SC_INVALID_QSIZE, "MQES + 2");
  assert.equal(cq(1, 16, 0b10), D.SC_INVALID_FIELD, "not physically contiguous");
  assert.equal(cq(1, 16, 0b11 | (1 << 16)), D.SC_INVALID_VECTOR, "vector 1 without MSI-X");
  assert.equal(cq(1, 16, 0b11, RAM_BASE + IOCQ + 0x10), D.SC_INVALID_FIELD, "base not page aligned");
  assert.equal(cq(1, 16, 0b11, 0x1000), D.SC_INVALID_FIELD, "base in the flash");
  assert.equal(cq(1, 16, 0b11, 0x10000000), D.SC_INVALID_FIELD, "base in the PCI MMIO window");
  assert.equal(cq(1, MAX_QUEUE_ENTRIES, 0b11, RAM_BASE + RAM - 0x1000), D.SC_INVALID_FIELD, "runs past RAM");
  assert.equal(cq(1, 16, 0b11, 2 ** 52), D.SC_INVALID_FIELD, "a 64-bit address far away");
  assert.equal(sq(1, 16, 1), D.SC_CQ_INVALID, "SQ on a CQ that does not exist");
  assert.equal(cq(1, 16), 0, "CQ 1");
  assert.equal(cq(1, 16), D.SC_INVALID_QID, "CQ 1 again");
  assert.equal(sq(1, 16, 0), D.SC_CQ_INVALID, "SQ on the admin CQ");
  assert.equal(sq(1, 16, 2), D.SC_CQ_INVALID, "SQ on CQ 2 (not created)");
  assert.equal(sq(3, 16, 1), D.SC_INVALID_QID, "SQ 3");
  assert.equal(sq(1, 1, 1), D.SC_INVALID_QSIZE, "SQ of one entry");
  assert.equal(sq(1, 16, 1, RAM_BASE + IOSQ, 0), D.SC_INVALID_FIELD, "SQ not contiguous");
  assert.equal(sq(1, 16, 1, 0x04000000), D.SC_INVALID_FIELD, "SQ in the variable flash");
  assert.equal(sq(1, 16, 1), 0, "SQ 1");
  assert.equal(sq(2, 16, 1, RAM_BASE + IOSQ + 0x2000), 0, "SQ 2 on CQ 1 too");
  assert.equal(d.admin(D.ADM_DELETE_CQ, { dw10: 1 }).status, D.SC_INVALID_QUEUE_DELETION, "CQ 1 is in use");
  assert.equal(d.admin(D.ADM_DELETE_CQ, { dw10: 2 }).status, D.SC_INVALID_QID, "CQ 2 does not exist");
  assert.equal(d.admin(D.ADM_DELETE_CQ, { dw10: 0 }).status, D.SC_INVALID_QID, "the admin CQ");
  assert.equal(d.admin(D.ADM_DELETE_SQ, { dw10: 0 }).status, D.SC_INVALID_QID, "the admin SQ");
  assert.equal(d.admin(D.ADM_DELETE_SQ, { dw10: 9 }).status, D.SC_INVALID_QID, "SQ 9");
  assert.equal(d.admin(D.ADM_DELETE_SQ, { dw10: 1 }).status, 0);
  assert.equal(d.admin(D.ADM_DELETE_SQ, { dw10: 2 }).status, 0);
  assert.equal(d.admin(D.ADM_DELETE_SQ, { dw10: 2 }).status, D.SC_INVALID_QID, "deleted already");
  assert.equal(d.admin(D.ADM_DELETE_CQ, { dw10: 1 }).status, 0);
  // CC's I/O entry sizes must be 64 and 16 bytes.
  d.w(D.REG_CC, 0); d.enable();
  d.w(D.REG_CC, 0); d.w(D.REG_AQA, (7 << 16) | 7); d.w(D.REG_CC, (5 << 16) | (4 << 20) | 1);
  d.sq[0]!.tail = 0; d.cq[0] = { base: ACQ, size: 8, head: 0, phase: 1 };
  assert.equal(d.r(D.REG_CSTS) & 3, D.CSTS_RDY);
  assert.equal(cq(1, 16), 0, "CQ with 16-byte entries");
  assert.equal(sq(1, 16, 1), D.SC_INVALID_FIELD, "CC.IOSQES 5");
});

for (const format of ["raw", "qcow2"] as const) {
  test(`Read / Write / Flush / Dataset Management on a ${format} image through PRP1, PRP2, PRP lists; qemu-img agrees`, () => {
    const path = join(dir, `rw.${format}`), ref = rawDisk(`rw-ref-${format}.raw`, 4 << 20);
    execFileSync("qemu-img", ["create", "-q", "-f", format, path, "4M"]);
    const img = format === "qcow2" ? Qcow2Image.open(path, false) : RawImage.open(path, false);
    const d = ready(img);
    const refBytes = new Uint8Array(readFileSync(ref));
    const pattern = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed * 13 + (i >>> 9)) & 0xff);
    const write = (slba: number, data: Uint8Array, prp1: number, prp2 = 0): void => {
      d.mem.bytes.set(data, prp1 - RAM_BASE);
      assert.equal(d.io(D.NVM_WRITE, slba, data.length / 512, prp1, prp2).status, 0, `write at ${slba}`);
      refBytes.set(data, slba * 512);
    };
    // One block in one page (PRP1), 8 blocks across two pages (PRP1 with an offset + PRP2).
    write(0, pattern(512, 1), RAM_BASE + DATA);
    const two = pattern(4096, 2);
    d.mem.bytes.set(two.subarray(0, 2048), DATA + 0x800); d.mem.bytes.set(two.subarray(2048), DATA + 0x5000);
    assert.equal(d.io(D.NVM_WRITE, 16, 8, RAM_BASE + DATA + 0x800, RAM_BASE + DATA + 0x5000).status, 0);
    refBytes.set(two, 16 * 512);
    // 64 KiB through a PRP list of scattered pages (descending addresses), the first page with an offset.
    const big = pattern(65536, 3);
    const pages: number[] = [];
    for (let i = 0; i < 16; i++) pages.push(DATA + 0x20000 + (15 - i) * 0x1000);
    const first = DATA + 0x40000 + 0x200; // 0xe00 bytes in the first page, then 15 whole pages and 0x200
    d.mem.bytes.set(big.subarray(0, 0xe00), first);
    let at = 0xe00;
    for (let i = 0; i < 16 && at < big.length; i++) {
      const n = Math.min(4096, big.length - at);
      d.mem.bytes.set(big.subarray(at, at + n), pages[i]!);
      d.dv.setUint32(LIST + 8 * i, RAM_BASE + pages[i]!, true); d.dv.setUint32(LIST + 8 * i + 4, 0, true);
      at += n;
    }
    assert.equal(d.io(D.NVM_WRITE, 100, 128, RAM_BASE + first, RAM_BASE + LIST).status, 0, "PRP list");
    refBytes.set(big, 100 * 512);
    // A list that starts 16 bytes before a page end: one entry, then the pointer to the next list page.
    d.dv.setUint32(LIST + 0x1000 - 16, RAM_BASE + pages[0]!, true); d.dv.setUint32(LIST + 0x1000 - 8, RAM_BASE + LIST + 0x3000, true);
    d.dv.setUint32(LIST + 0x3000, RAM_BASE + pages[1]!, true); d.dv.setUint32(LIST + 0x3008, RAM_BASE + pages[2]!, true);
    d.mem.bytes.fill(0, DATA + 0x60000, DATA + 0x64000);
    assert.equal(d.io(D.NVM_READ, 100, 32, RAM_BASE + DATA + 0x60000, RAM_BASE + LIST + 0x1000 - 16).status, 0, "chained PRP list");
    assert.deepEqual(d.mem.bytes.subarray(DATA + 0x60000, DATA + 0x61000), refBytes.subarray(100 * 512, 100 * 512 + 4096));
    assert.deepEqual(d.mem.bytes.subarray(pages[0]!, pages[0]! + 0x1000), refBytes.subarray(100 * 512 + 4096, 100 * 512 + 8192));
    assert.deepEqual(d.mem.bytes.subarray(pages[2]!, pages[2]! + 0x1000), refBytes.subarray(100 * 512 + 12288, 100 * 512 + 16384));
    // Read everything back, 8 blocks at a time into one page.
    for (const [slba, n] of [[0, 1], [16, 8], [100, 8], [108, 8], [220, 8]] as const) {
      assert.equal(d.io(D.NVM_READ, slba, n, RAM_BASE + DATA + 0x70000).status, 0);
      assert.deepEqual(d.mem.bytes.subarray(DATA + 0x70000, DATA + 0x70000 + n * 512), refBytes.subarray(slba * 512, (slba + n) * 512), `LBA ${slba}`);
    }
    // FUA write, Flush (namespace 1 and all namespaces).
    write(300, pattern(512, 4), RAM_BASE + DATA);
    assert.equal(d.io(D.NVM_WRITE, 301, 1, RAM_BASE + DATA, 0, { dw12: 1 << 30 }).status, 0, "FUA");
    refBytes.set(pattern(512, 4), 301 * 512);
    assert.equal(d.io(D.NVM_FLUSH, 0, 1, 0).status, 0);
    assert.equal(d.io(D.NVM_FLUSH, 0, 1, 0, 0, { nsid: 0xffffffff }).status, 0, "flush all namespaces");
    // Dataset Management: deallocate LBAs 16..23 and 300..300; they read as zeros.
    for (const [k, [slba, n]] of [[16, 8], [300, 1]].entries()) {
      d.dv.setUint32(DATA + 0x7f000 + 16 * k, 0, true); d.dv.setUint32(DATA + 0x7f000 + 16 * k + 4, n!, true);
      d.dv.setUint32(DATA + 0x7f000 + 16 * k + 8, slba!, true); d.dv.setUint32(DATA + 0x7f000 + 16 * k + 12, 0, true);
      refBytes.fill(0, slba! * 512, (slba! + n!) * 512);
    }
    assert.equal(d.io(D.NVM_DSM, 0, 1, RAM_BASE + DATA + 0x7f000, 0, { dw10: 1, dw11: 1 << 2 }).status, 0, "deallocate");
    assert.equal(d.io(D.NVM_READ, 16, 8, RAM_BASE + DATA + 0x70000).status, 0);
    assert.ok(d.mem.bytes.subarray(DATA + 0x70000, DATA + 0x71000).every((b) => b === 0), "deallocated reads zeros");
    d.dv.setUint32(DATA + 0x7f008, 8190, true);
    assert.equal(d.io(D.NVM_DSM, 0, 1, RAM_BASE + DATA + 0x7f000, 0, { dw10: 0, dw11: 1 << 2 }).status, D.SC_LBA_RANGE, "range past the end");
    assert.equal(d.dev.stats.writeBytes, 512 + 4096 + 65536 + 1024);
    img.flush(); img.close();
    writeFileSync(ref, refBytes);
    if (format === "qcow2") execFileSync("qemu-img", ["check", "-q", path]);
    execFileSync("qemu-img", ["compare", "-q", "-f", format, "-F", "raw", path, ref]);
  });
}

test("hostile NVM commands: LBAs past the end, MDTS, PRPs outside RAM or misaligned, namespaces, opcodes, read-only", () => {
  const d = ready();
  const blocks = (1 << 20) / 512;
  const buf = RAM_BASE + DATA;
  assert.equal(d.io(D.NVM_READ, blocks, 1, buf).status, D.SC_LBA_RANGE, "the LBA after the last");
  assert.equal(d.io(D.NVM_READ, blocks - 1, 2, buf, buf + 0x1000).status, D.SC_LBA_RANGE, "running past the end");
  assert.equal(d.io(D.NVM_WRITE, 2 ** 63, 1, buf).status, D.SC_LBA_RANGE, "LBA 2^63");
  assert.equal(d.io(D.NVM_READ, 0xffffffff * 2 ** 32, 1, buf).status, D.SC_LBA_RANGE, "LBA high word all ones");
  assert.equal(d.io(D.NVM_READ, 0, 65536, buf).status, D.SC_INVALID_FIELD, "65536 blocks: past MDTS");
  assert.equal(d.io(D.NVM_READ, 0, 1025, buf).status, D.SC_INVALID_FIELD, "MDTS + 1 block");
  assert.equal(d.io(D.NVM_READ, 0, 1, 0x0).status, D.SC_DATA_TRANSFER_ERROR, "PRP1 in the code flash");
  assert.equal(d.io(D.NVM_READ, 0, 1, 0x09000000).status, D.SC_DATA_TRANSFER_ERROR, "PRP1 on the PL011");
  assert.equal(d.io(D.NVM_READ, 0, 1, RAM_BASE + RAM - 256).status, D.SC_DATA_TRANSFER_ERROR, "PRP1 running past RAM");
  assert.equal(d.io(D.NVM_READ, 0, 1, RAM_BASE - 4096).status, D.SC_DATA_TRANSFER_ERROR, "PRP1 just below RAM");
  assert.equal(d.io(D.NVM_READ, 0, 1, 2 ** 62).status, D.SC_DATA_TRANSFER_ERROR, "PRP1 at 2^62");
  assert.equal(d.io(D.NVM_READ, 0, 9, buf, 0x0).status, D.SC_DATA_TRANSFER_ERROR, "PRP2 0 for a second page");
  assert.equal(d.io(D.NVM_READ, 0, 1, buf + 1).status, D.SC_PRP_OFFSET_INVALID, "PRP1 not dword aligned");
  assert.equal(d.io(D.NVM_READ, 0, 16, buf, buf + 0x1000 + 8).status, D.SC_PRP_OFFSET_INVALID, "PRP2 as data page with an offset");
  assert.equal(d.io(D.NVM_READ, 0, 16, buf, buf + 0x1000 + 2).status, D.SC_PRP_OFFSET_INVALID, "list pointer not dword aligned");
  assert.equal(d.io(D.NVM_READ, 0, 24, buf, 0x10000000).status, D.SC_DATA_TRANSFER_ERROR, "list in the PCI window");
  d.dv.setUint32(LIST, RAM_BASE + DATA + 0x1000, true); d.dv.setUint32(LIST + 4, 0, true);
  d.dv.setUint32(LIST + 8, 0x04000000, true); d.dv.setUint32(LIST + 12, 0, true);
  assert.equal(d.io(D.NVM_WRITE, 0, 24, buf, RAM_BASE + LIST).status, D.SC_DATA_TRANSFER_ERROR, "a list entry in the variable flash");
  d.dv.setUint32(LIST + 8, RAM_BASE + DATA + 0x2010, true);
  assert.equal(d.io(D.NVM_WRITE, 0, 24, buf, RAM_BASE + LIST).status, D.SC_PRP_OFFSET_INVALID, "a list entry with an offset");
  // A list whose next-list pointer points back at itself: the walk ends with the transfer's length.
  for (let i = 0; i < 511; i++) { d.dv.setUint32(LIST + 8 * i, RAM_BASE + DATA + 0x1000, true); d.dv.setUint32(LIST + 8 * i + 4, 0, true); }
  d.dv.setUint32(LIST + 4088, RAM_BASE + LIST, true); d.dv.setUint32(LIST + 4092, 0, true);
  assert.equal(d.io(D.NVM_READ, 0, 1024, buf, RAM_BASE + LIST).status, 0, "a self-pointing list: bounded by MDTS, all pages the same one");
  assert.equal(d.io(D.NVM_READ, 0, 1, buf, 0, { nsid: 2 }).status, D.SC_INVALID_NS, "namespace 2");
  assert.equal(d.io(D.NVM_READ, 0, 1, buf, 0, { nsid: 0 }).status, D.SC_INVALID_NS, "namespace 0");
  assert.equal(d.io(D.NVM_READ, 0, 1, buf, 0, { nsid: 0xffffffff }).status, D.SC_INVALID_NS, "broadcast read");
  assert.equal(d.io(0x05, 0, 1, buf).status, D.SC_INVALID_OPCODE, "Compare");
  assert.equal(d.io(0x08, 0, 1, buf).status, D.SC_INVALID_OPCODE, "Write Zeroes (not in ONCS)");
  assert.equal(d.io(0xff, 0, 1, buf).status, D.SC_INVALID_OPCODE, "opcode FFh");
  assert.equal(d.io(D.NVM_READ | (1 << 14), 0, 1, buf).status, D.SC_INVALID_FIELD, "an SGL");
  assert.equal(d.io(D.NVM_WRITE | (1 << 8), 0, 1, buf).status, D.SC_INVALID_FIELD, "fused");
  assert.equal(d.dev.stats.readBytes, 1024 * 512, "only the self-pointing list moved data");
  // Still works.
  d.mem.bytes.fill(0x5a, DATA, DATA + 512);
  assert.equal(d.io(D.NVM_WRITE, 7, 1, buf).status, 0);
  d.mem.bytes.fill(0, DATA, DATA + 512);
  assert.equal(d.io(D.NVM_READ, 7, 1, buf).status, 0);
  assert.equal(d.mem.bytes[DATA + 511], 0x5a);

  const ro = ready(RawImage.open(rawDisk("ro.raw", 1 << 20), true));
  assert.equal(ro.io(D.NVM_WRITE, 0, 1, buf).status, D.SC_NS_WRITE_PROTECTED, "a write to a read-only disk");
  assert.equal(ro.io(D.NVM_DSM, 0, 1, buf, 0, { dw10: 0, dw11: 1 << 2 }).status, D.SC_NS_WRITE_PROTECTED, "deallocate on it");
  assert.equal(ro.io(D.NVM_READ, 0, 1, buf).status, 0, "reads work");
  assert.equal(ro.admin(D.ADM_IDENTIFY, { nsid: 1, prp1: RAM_BASE + ID, dw10: D.CNS_NAMESPACE }).status, 0);
  assert.equal(ro.mem.bytes[ID + 99], 1, "NSATTR: write protected");
});

test("phase tags across wraps, a full CQ holds back fetching, INTx follows unconsumed entries and INTMS", () => {
  const d = ready();
  // Admin CQ of 8: 20 commands wrap it twice; the phase flips each time (take() checks it).
  for (let i = 0; i < 20; i++) assert.equal(d.admin(D.ADM_GET_FEATURES, { dw10: D.FEAT_NUM_QUEUES }).status, 0);
  assert.equal(d.intx, false, "all consumed: INTx low");
  // Six reads on SQ 1 (16 entries) into CQ 1 made 4 entries long: the CQ holds 3 (one slot stays empty).
  assert.equal(d.admin(D.ADM_DELETE_SQ, { dw10: 1 }).status, 0);
  assert.equal(d.admin(D.ADM_DELETE_CQ, { dw10: 1 }).status, 0);
  d.sq[1] = { base: IOSQ, size: 16, tail: 0 }; d.cq[1] = { base: IOCQ, size: 4, head: 0, phase: 1 };
  d.mem.bytes.fill(0, IOCQ, IOCQ + 0x1000);
  assert.equal(d.admin(D.ADM_CREATE_CQ, { prp1: RAM_BASE + IOCQ, dw10: (3 << 16) | 1, dw11: 0b11 }).status, 0);
  assert.equal(d.admin(D.ADM_CREATE_SQ, { prp1: RAM_BASE + IOSQ, dw10: (15 << 16) | 1, dw11: (1 << 16) | 1 }).status, 0);
  const cids: number[] = [];
  for (let i = 0; i < 5; i++) cids.push(d.put(1, [D.NVM_READ, 1, 0, 0, 0, 0, RAM_BASE + DATA, 0, 0, 0, i, 0, 0], false));
  d.w(D.DOORBELL_BASE + 8, d.sq[1]!.tail);
  assert.equal(d.intx, true, "entries posted: INTx up");
  assert.equal(d.dev.stats.readBytes, 3 * 512, "three fetched: the CQ is full");
  d.w(D.REG_INTMS, 1);
  assert.equal(d.intx, false, "masked");
  assert.equal(d.r(D.REG_INTMS), 1);
  d.w(D.REG_INTMC, 1);
  assert.equal(d.intx, true, "unmasked");
  const got: number[] = [];
  for (let e = d.take(1); e !== null; e = d.take(1)) { assert.equal(e.status, 0); got.push(e.cid); }
  assert.deepEqual(got, cids, "all five completed in order once the host consumed entries (wrapping the 4-entry CQ)");
  assert.equal(d.dev.stats.readBytes, 5 * 512);
  assert.equal(d.intx, false, "consumed: INTx low");
  // A CQ with interrupts disabled never raises INTx.
  assert.equal(d.admin(D.ADM_DELETE_SQ, { dw10: 1 }).status, 0);
  assert.equal(d.admin(D.ADM_DELETE_CQ, { dw10: 1 }).status, 0);
  d.sq[1] = { base: IOSQ, size: 16, tail: 0 }; d.cq[1] = { base: IOCQ, size: 16, head: 0, phase: 1 };
  d.mem.bytes.fill(0, IOCQ, IOCQ + 0x1000);
  assert.equal(d.admin(D.ADM_CREATE_CQ, { prp1: RAM_BASE + IOCQ, dw10: (15 << 16) | 1, dw11: 0b01 }).status, 0);
  assert.equal(d.admin(D.ADM_CREATE_SQ, { prp1: RAM_BASE + IOSQ, dw10: (15 << 16) | 1, dw11: (1 << 16) | 1 }).status, 0);
  d.put(1, [D.NVM_FLUSH, 1]);
  assert.equal(d.intx, false, "polled queue: no interrupt");
  assert.equal(d.take(1)?.status, 0);
});

test("hostile doorbells: missing queues, values past the queue, a CQ head past what was posted; AERs report them", () => {
  const d = ready();
  // Four AERs outstanding (AERL 3); a fifth is refused.
  const aers = [0, 1, 2, 3].map(() => d.put(0, [D.ADM_ASYNC_EVENT]));
  assert.equal(d.take(0), null, "AERs are held");
  assert.equal(d.admin(D.ADM_ASYNC_EVENT).status, D.SC_AER_LIMIT, "a fifth AER");
  const db = D.DOORBELL_BASE;
  d.w(db + 8 * 5, 1); // SQ 5 was never created
  let e = d.take(0);
  assert.ok(e !== null, "an AER completed");
  assert.equal(e.cid, aers[0]); assert.equal(e.status, 0);
  assert.equal(e.dw0, D.AEN_TYPE_ERROR | (D.AEN_INVALID_DB_REGISTER << 8) | (D.LOG_ERROR << 16), "invalid doorbell register");
  d.w(db + 8 + 0, 16);       // SQ 1's tail = its size
  d.w(db + 8 + 0, 0xffffffff);
  d.w(db + 8 * 1 + 4, 9);    // CQ 1's head past the entries posted (none)
  d.w(db + 8 * 1000, 1);     // far past the doorbells, inside the BAR
  d.w(db + 8 * 3 + 4, 0);    // CQ 3 was never created
  assert.equal(d.take(0), null, "the error event is masked until the log page is read");
  assert.equal(d.dev.stats.badDoorbells, 6);
  assert.equal(d.admin(D.ADM_GET_LOG_PAGE, { prp1: RAM_BASE + ID, dw10: D.LOG_ERROR | (15 << 16) }).status, 0);
  d.w(db, 99); // the admin SQ's tail past its 8 entries
  e = d.take(0);
  assert.ok(e !== null); assert.equal(e.cid, aers[1]);
  assert.equal(e.dw0, D.AEN_TYPE_ERROR | (D.AEN_INVALID_DB_VALUE << 8) | (D.LOG_ERROR << 16), "invalid doorbell value");
  // Still works: a write and a read on SQ 1.
  d.mem.bytes.fill(0x33, DATA, DATA + 512);
  assert.equal(d.io(D.NVM_WRITE, 3, 1, RAM_BASE + DATA).status, 0);
  assert.equal(d.io(D.NVM_READ, 3, 1, RAM_BASE + DATA + 0x1000).status, 0);
  assert.equal(d.mem.bytes[DATA + 0x1000], 0x33);
  assert.equal(d.r(D.REG_CSTS) & D.CSTS_CFS, 0, "not fatal");
});

test("CC: a bad admin queue or CC field is fatal (CFS), a reset recovers; shutdown reports SHST complete", () => {
  const d = new NvmeDriver(RawImage.open(rawDisk("cc.raw", 1 << 20), false));
  d.probe();
  d.w(D.REG_AQA, (7 << 16) | 7);
  d.w(D.REG_ASQ, 0x1000); d.w(D.REG_ASQ + 4, 0); // in the flash
  d.w(D.REG_ACQ, RAM_BASE + ACQ); d.w(D.REG_ACQ + 4, 0);
  d.w(D.REG_CC, (6 << 16) | (4 << 20) | 1);
  assert.equal(d.r(D.REG_CSTS), D.CSTS_CFS, "fatal, not ready");
  d.w(D.DOORBELL_BASE, 1);
  assert.equal(d.dev.stats.commands, 0, "no command fetched while fatal");
  d.w(D.REG_CC, 0);
  assert.equal(d.r(D.REG_CSTS), 0, "reset clears CFS");
  d.w(D.REG_AQA, 0); d.w(D.REG_ASQ, RAM_BASE + ASQ); d.w(D.REG_CC, (6 << 16) | (4 << 20) | 1);
  assert.equal(d.r(D.REG_CSTS), D.CSTS_CFS, "one-entry admin queues");
  d.w(D.REG_CC, 0);
  d.w(D.REG_AQA, (7 << 16) | 7);
  d.w(D.REG_CC, (6 << 16) | (4 << 20) | (1 << 7) | 1);
  assert.equal(d.r(D.REG_CSTS), D.CSTS_CFS, "8 KiB pages (MPSMAX is 4 KiB)");
  d.w(D.REG_CC, 0);
  d.w(D.REG_CC, (6 << 16) | (4 << 20) | (1 << 4) | 1);
  assert.equal(d.r(D.REG_CSTS), D.CSTS_CFS, "command set 1");
  d.w(D.REG_CC, 0);
  d.w(D.REG_AQA, (4095 << 16) | 4095); d.w(D.REG_ASQ, RAM_BASE + RAM - 0x1000);
  d.w(D.REG_CC, (6 << 16) | (4 << 20) | 1);
  assert.equal(d.r(D.REG_CSTS), D.CSTS_CFS, "a 4096-entry admin SQ running past RAM");
  d.enable();
  assert.equal(d.r(D.REG_CSTS), D.CSTS_RDY, "ready after a reset with good values");
  d.ioQueues();
  d.w(D.REG_ASQ, 0); assert.equal(d.r(D.REG_ASQ), RAM_BASE + ASQ, "ASQ is fixed while enabled");
  d.w(D.REG_CC, (6 << 16) | (4 << 20) | (1 << 14) | 1);
  assert.equal(d.r(D.REG_CSTS), D.CSTS_RDY | D.CSTS_SHST_COMPLETE, "normal shutdown complete");
  d.w(D.REG_CC, 0);
  assert.equal(d.r(D.REG_CSTS), 0);
  assert.equal(d.intx, false);
  // After a reset the I/O queues are gone: their doorbells do nothing, creating them again works.
  d.enable();
  assert.equal(d.admin(D.ADM_CREATE_SQ, { prp1: RAM_BASE + IOSQ, dw10: (15 << 16) | 1, dw11: (1 << 16) | 1 }).status, D.SC_CQ_INVALID, "CQ 1 is gone");
  d.ioQueues();
  assert.equal(d.io(D.NVM_READ, 0, 1, RAM_BASE + DATA).status, 0);
  assert.equal(d.dev.stats.resets, 6, "each CC.EN 1 → 0");
});

test("config: vdev=nvmeN makes an NVMe disk of a type=\"hvm\" domain; a PV domain or a cdrom refuses it with the reason", () => {
  const img = rawDisk("cfg.raw", 1 << 20), kernel = rawDisk("Image", 4096);
  const spec = (lines: string[]): ReturnType<typeof configFileSpec> => {
    const f = join(dir, `c${Math.random().toString(36).slice(2)}.cfg`);
    writeFileSync(f, ['name = "n"', "memory = 128", ...lines, ""].join("\n"));
    return configFileSpec(f);
  };
  const hvm = spec(['type = "hvm"', `disk = [ '${img},raw,nvme0,rw', '${img},raw,xvdb,ro' ]`]);
  assert.deepEqual(hvm.disks.map((x) => [x.vdev, x.devid, x.nvme === true]), [["nvme0", 259 << 8, true], ["xvdb", 51728, false]]);
  assert.throws(() => spec([`kernel = "${kernel}"`, `disk = [ '${img},raw,nvme0,rw' ]`]), /vdev nvme0 is an emulated NVMe disk, which only type="hvm" domains have/);
  assert.throws(() => spec(['type = "hvm"', `disk = [ '${img},raw,nvme1,devtype=cdrom' ]`]), /an NVMe disk cannot be a cdrom/);
});

test("fw_cfg bootorder: an NVMe disk is listed by its slot (/pci@i0cf8/nvme@S), beside virtio-blk's scsi@S/disk@0,0", () => {
  const f = new TextDecoder().decode(bootOrderFile("cd", [{ slot: 1, cdrom: false, nvme: true }, { slot: 2, cdrom: false }, { slot: 3, cdrom: true }], []));
  assert.equal(f, "/pci@i0cf8/nvme@1\n/pci@i0cf8/scsi@2/disk@0,0\n/pci@i0cf8/scsi@3/disk@0,0\0");
});
