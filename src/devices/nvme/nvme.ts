/**
 * An NVM Express controller as a PCI function (NVMe Base 1.4c; the PCI header of section 2: class 01h/08h/02h,
 * BAR0/1 a 64-bit memory BAR holding the registers of section 3.1), serving one namespace over a disk image
 * (src/storage's BlockImage: raw or qcow2). This is the storage of an HVM guest whose OS has no virtio drivers;
 * Linux's nvme driver and AAVMF's NvmExpressDxe drive it.
 *
 *   registers   CAP, VS, INTMS/INTMC, CC, CSTS, AQA, ASQ, ACQ (CMB absent: CMBLOC = CMBSZ = 0; NSSR not offered)
 *   doorbells   0x1000 + 8·y: SQ y tail, 0x1004 + 8·y: CQ y head (DSTRD 0), y = 0 (admin) .. MAX_IO_QUEUES
 *   admin       Delete/Create I/O SQ and CQ, Get Log Page (error, SMART, firmware slot), Identify (controller,
 *               namespace, active namespace list, namespace descriptors), Abort, Set/Get Features,
 *               Asynchronous Event Request (held until an event)
 *   NVM         Flush, Write, Read, Dataset Management (deallocate: BlockImage.discard)
 *
 * Commands run synchronously when the host rings a submission doorbell (on that vCPU's thread, as virtio-blk),
 * so nothing is ever in flight: Abort finds no command to abort, and a queue is deleted with nothing pending.
 * Completions carry the phase tag (section 4.6); a full completion queue stops fetching from its submission
 * queues until the host frees an entry (CQ head doorbell). Interrupts are INTx (pin-based, section 7.5.1): the
 * line is up while a completion queue with interrupts enabled holds entries the host has not consumed, unless
 * masked by INTMS. No MSI or MSI-X capability (the host bridge has no MSI controller), so there is one vector.
 *
 * Never trusting the host: queue bases must be page aligned and the whole queue in guest RAM; queue sizes 2 ..
 * MQES + 1; queue ids below the allocated count and not in use; CC's fields what CAP allows (else CSTS.CFS,
 * the controller does not become ready); every command field checked with its status code (Invalid Field,
 * Invalid Queue Identifier, Invalid Queue Size, Completion Queue Invalid, Invalid Namespace, LBA Out of Range,
 * Namespace Write Protected, …); PRPs through nvme-prp.ts (RAM only, else Data Transfer Error). A doorbell write
 * for a queue that does not exist or with a value past the queue is ignored and reported as an asynchronous
 * event (Invalid Doorbell Register / Write Value) when the host has one outstanding (section 4.1). Nothing
 * outside the guest's RAM is read or written.
 */
import { R } from "../../common/int64.js";
import type { BlockImage } from "../../storage/block-image.js";
import type { DmaMemory } from "../dma.js";
import { PciFunction } from "../pci/pci-function.js";
import * as D from "./nvme-defs.js";
import { AERL, identifyController, identifyNamespace, NVME_DEVICE, NVME_VENDOR, NVME_VERSION, nsDescriptors,
  type NvmeIdentity } from "./nvme-identify.js";
import { PrpWalker } from "./nvme-prp.js";

/** I/O queue pairs offered (Number of Queues' maximum); queue ids 1..MAX_IO_QUEUES. */
export const MAX_IO_QUEUES = 16;
/** Largest queue (CAP.MQES + 1 entries). */
export const MAX_QUEUE_ENTRIES = 2048;
/** MDTS: 2^7 pages = 512 KiB per command. */
const MDTS = 7, MAX_PAGES = 1 << MDTS;
const BAR_SIZE = 0x4000;
const LBA = 512;
const NQ = MAX_IO_QUEUES + 1;

/** The disk a controller serves (BlockImage satisfies it). */
export type NvmeDisk = Pick<BlockImage, "bytes" | "readOnly" | "read" | "write" | "flush" | "discard">;

export interface NvmeOptions {
  readOnly?: boolean;
  /** Serial number (Identify SN, Linux's /sys/block/nvme0n1/device/serial): the vdev name. */
  serial?: string;
}

export class NvmeController extends PciFunction {
  // Registers.
  private cc = 0;
  private csts = 0;
  private aqa = 0;
  private readonly asq = [0, 0];
  private readonly acq = [0, 0];
  private intms = 0;
  // Queues, indexed by queue id (0 = admin): typed arrays, no objects per queue.
  private readonly sqValid = new Uint8Array(NQ);
  private readonly sqBase = new Float64Array(NQ); // offset in mem.bytes
  private readonly sqSize = new Uint32Array(NQ);
  private readonly sqHead = new Uint32Array(NQ);
  private readonly sqTail = new Uint32Array(NQ);
  private readonly sqCq = new Uint16Array(NQ);
  private readonly cqValid = new Uint8Array(NQ);
  private readonly cqBase = new Float64Array(NQ);
  private readonly cqSize = new Uint32Array(NQ);
  private readonly cqHead = new Uint32Array(NQ);
  private readonly cqTail = new Uint32Array(NQ);
  private readonly cqPhase = new Uint8Array(NQ);
  private readonly cqIen = new Uint8Array(NQ);
  /** Number of Queues (0-based counts allocated): set at most once per reset (section 5.21.1.7). */
  private nsqa = MAX_IO_QUEUES - 1;
  private ncqa = MAX_IO_QUEUES - 1;
  private queuesSet = false;
  /** Outstanding Asynchronous Event Requests' command ids, and events waiting for one. */
  private readonly aerCids: number[] = [];
  private readonly events: number[] = [];
  private errorEventMasked = false;
  /** Feature values (current). */
  private readonly features = new Uint32Array(0x0c);
  private writeCache = true;
  // Scratch, reused per command (no allocation on the I/O path).
  private readonly sqe = new Uint32Array(16);
  private readonly view: DataView;
  private readonly words: Int32Array;
  private readonly prp: PrpWalker;
  private readonly scratch = new Uint8Array(D.PAGE);
  private dw0 = 0;
  private readonly idCtrl: Uint8Array;
  private readonly idNs: Uint8Array;
  private readonly idDesc: Uint8Array;
  private readonly blocks: number;
  private readonly readOnly: boolean;
  /** Counters for tests and diagnostics. */
  readonly stats = { commands: 0, errors: 0, readBytes: 0, writeBytes: 0, badDoorbells: 0, fatal: 0, resets: 0 };
  /** Why the last command failed or the controller went fatal ("" when nothing has). */
  lastError = "";

  constructor(private readonly mem: DmaMemory, private readonly disk: NvmeDisk, o: NvmeOptions = {}) {
    super({ vendor: NVME_VENDOR, device: NVME_DEVICE, revision: 2, classCode: 0x010802,
      subsystemVendor: 0x1af4, subsystem: 0x1100, pin: 1 });
    this.addMemoryBar(0, BAR_SIZE, true);
    this.readOnly = disk.readOnly || o.readOnly === true;
    this.blocks = Math.floor(disk.bytes / LBA);
    this.view = new DataView(mem.bytes.buffer, mem.bytes.byteOffset, mem.bytes.byteLength);
    this.words = new Int32Array(mem.bytes.buffer, mem.bytes.byteOffset, mem.bytes.byteLength >>> 2);
    this.prp = new PrpWalker(mem, MAX_PAGES);
    const id: NvmeIdentity = { serial: (o.serial ?? "").slice(0, 20), blocks: this.blocks, readOnly: this.readOnly,
      mdts: MDTS, dsm: true, vwc: true };
    this.idCtrl = identifyController(id, 0);
    this.idNs = identifyNamespace(id);
    this.idDesc = nsDescriptors(id.serial);
    this.resetFeatures();
  }

  // ---- registers ----

  barRead(_bar: number, off: number, size: number): number {
    if (size === 8) { const lo = this.reg32(off); R[0] = this.reg32(off + 4) | 0; return lo | 0; }
    const w = this.reg32(off & ~3), sh = (off & 3) * 8;
    return size === 4 ? w | 0 : size === 2 ? (w >>> sh) & 0xffff : (w >>> sh) & 0xff;
  }

  private reg32(off: number): number {
    switch (off) {
      // CAP (3.1.1): MQES, CQR, TO 7.5 s; high word: DSTRD 0, CSS NVM, MPSMIN = MPSMAX = 0 (4 KiB).
      case D.REG_CAP: return (MAX_QUEUE_ENTRIES - 1) | D.CAP_CQR | (15 << D.CAP_TO_SHIFT);
      case D.REG_CAP + 4: return D.CAP_HI_CSS_NVM;
      case D.REG_VS: return NVME_VERSION;
      case D.REG_INTMS: case D.REG_INTMC: return this.intms;
      case D.REG_CC: return this.cc;
      case D.REG_CSTS: return this.csts;
      case D.REG_AQA: return this.aqa;
      case D.REG_ASQ: return this.asq[0]!;
      case D.REG_ASQ + 4: return this.asq[1]!;
      case D.REG_ACQ: return this.acq[0]!;
      case D.REG_ACQ + 4: return this.acq[1]!;
      default: return 0; // reserved, NSSR (not supported), CMBLOC/CMBSZ (no CMB), doorbells (write-only)
    }
  }

  barWrite(_bar: number, off: number, size: number, value: number, hi: number): void {
    if (size === 8) { this.barWrite(0, off, 4, value, 0); this.barWrite(0, off + 4, 4, hi, 0); return; }
    if (size !== 4 || (off & 3) !== 0) return; // registers are written as dwords (section 3.1)
    const v = value >>> 0;
    if (off >= D.DOORBELL_BASE) { this.doorbell(off - D.DOORBELL_BASE, v); return; }
    switch (off) {
      case D.REG_INTMS: this.intms |= v & 1; this.updateIntx(); return; // one vector: bit 0
      case D.REG_INTMC: this.intms &= ~v & 1; this.updateIntx(); return;
      case D.REG_CC: this.writeCc(v); return;
      // AQA, ASQ, ACQ may change only while disabled (section 3.1.8: "shall not be modified while CC.EN = 1").
      case D.REG_AQA: if (!this.enabled) this.aqa = v & 0x0fff0fff; return;
      case D.REG_ASQ: if (!this.enabled) this.asq[0] = v & ~(D.PAGE - 1); return;
      case D.REG_ASQ + 4: if (!this.enabled) this.asq[1] = v; return;
      case D.REG_ACQ: if (!this.enabled) this.acq[0] = v & ~(D.PAGE - 1); return;
      case D.REG_ACQ + 4: if (!this.enabled) this.acq[1] = v; return;
      default: return; // read-only or reserved
    }
  }

  private get enabled(): boolean { return (this.cc & D.CC_EN) !== 0; }
  /** Ready and not fatal: the state in which doorbells are served. */
  private get live(): boolean { return (this.csts & (D.CSTS_RDY | D.CSTS_CFS)) === D.CSTS_RDY; }

  private writeCc(v: number): void {
    const was = this.cc;
    v &= D.CC_WRITABLE;
    if ((was & D.CC_EN) !== 0 && (v & D.CC_EN) === 0) { this.cc = v; this.reset(); return; }
    if ((was & D.CC_EN) === 0 && (v & D.CC_EN) !== 0) { this.cc = v; this.start(); return; }
    // While enabled only SHN matters (the other fields "shall not be modified"); while disabled, all may change.
    this.cc = (was & D.CC_EN) !== 0 ? (was & ~(3 << D.CC_SHN_SHIFT)) | (v & (3 << D.CC_SHN_SHIFT)) : v;
    if ((this.cc >>> D.CC_SHN_SHIFT & 3) !== 0 && (was >>> D.CC_SHN_SHIFT & 3) === 0) this.shutdown();
  }

  /** CC.EN 0 → 1 (section 7.6.1): check CC and the admin queue, then ready. */
  private start(): void {
    const cc = this.cc;
    const css = (cc >>> D.CC_CSS_SHIFT) & 7, mps = (cc >>> D.CC_MPS_SHIFT) & 15, ams = (cc >>> D.CC_AMS_SHIFT) & 7;
    if (css !== 0 || mps !== 0 || ams !== 0) { this.fatal(`CC: command set ${css}, page size 2^${12 + mps}, arbitration ${ams} not offered`); return; }
    const sqs = (this.aqa & 0xfff) + 1, cqs = ((this.aqa >>> 16) & 0xfff) + 1;
    if (sqs < 2 || cqs < 2) { this.fatal(`AQA: admin queues of ${sqs} and ${cqs} entries (at least 2)`); return; }
    const sq = this.mem.offsetOf(this.asq[1]! * 2 ** 32 + this.asq[0]!, sqs * D.SQE_BYTES);
    const cq = this.mem.offsetOf(this.acq[1]! * 2 ** 32 + this.acq[0]!, cqs * D.CQE_BYTES);
    if (sq < 0 || cq < 0) { this.fatal("ASQ/ACQ: the admin queues are not in guest RAM"); return; }
    this.openSq(0, sq, sqs, 0);
    this.openCq(0, cq, cqs, true);
    this.csts = D.CSTS_RDY;
  }

  private fatal(why: string): void {
    this.lastError = why;
    this.stats.fatal++;
    this.csts |= D.CSTS_CFS;
  }

  /** CC.EN 1 → 0: a controller reset (section 7.3.2): queues deleted, outstanding AERs dropped, CSTS cleared. */
  private reset(): void {
    this.stats.resets++;
    this.sqValid.fill(0); this.cqValid.fill(0);
    this.aerCids.length = 0; this.events.length = 0; this.errorEventMasked = false;
    this.intms = 0;
    this.csts = 0;
    this.resetFeatures();
    this.setIntx(false);
  }

  private resetFeatures(): void {
    this.features.fill(0);
    this.features[D.FEAT_TEMP_THRESHOLD] = 0x157;
    this.features[D.FEAT_NUM_QUEUES] = ((MAX_IO_QUEUES - 1) << 16) | (MAX_IO_QUEUES - 1);
    this.features[D.FEAT_ASYNC_EVENT] = 0;
    this.nsqa = this.ncqa = MAX_IO_QUEUES - 1;
    this.queuesSet = false;
    this.writeCache = true;
  }

  /** CC.SHN set: write back what the disk holds, then report the shutdown complete (section 7.6.2). */
  private shutdown(): void {
    try { this.disk.flush(); } catch (e) { this.lastError = `shutdown flush: ${(e as Error).message}`; }
    this.csts = (this.csts & ~(3 << 2)) | D.CSTS_SHST_COMPLETE;
  }

  // ---- queues ----

  private openSq(q: number, base: number, size: number, cq: number): void {
    this.sqValid[q] = 1; this.sqBase[q] = base; this.sqSize[q] = size; this.sqHead[q] = 0; this.sqTail[q] = 0; this.sqCq[q] = cq;
  }

  private openCq(q: number, base: number, size: number, ien: boolean): void {
    this.cqValid[q] = 1; this.cqBase[q] = base; this.cqSize[q] = size; this.cqHead[q] = 0; this.cqTail[q] = 0;
    this.cqPhase[q] = 1; this.cqIen[q] = ien ? 1 : 0;
  }

  /** A doorbell write at `off` past 0x1000 (section 3.1.24/25). */
  private doorbell(off: number, v: number): void {
    if (!this.live) return;
    const q = off >>> 3, isCq = (off & 4) !== 0;
    if (q >= NQ || (isCq ? this.cqValid[q] : this.sqValid[q]) !== 1) {
      this.badDoorbell(D.AEN_INVALID_DB_REGISTER, `${isCq ? "CQ" : "SQ"} ${q} doorbell: no such queue`);
      return;
    }
    if (!isCq) {
      if (v >= this.sqSize[q]!) { this.badDoorbell(D.AEN_INVALID_DB_VALUE, `SQ ${q} tail ${v} past its ${this.sqSize[q]} entries`); return; }
      this.sqTail[q] = v;
      this.serveSq(q);
    } else {
      const size = this.cqSize[q]!, head = this.cqHead[q]!;
      // The new head may move forward only over entries the controller posted (head .. tail).
      const posted = (this.cqTail[q]! - head + size) % size, moved = (v - head + size) % size;
      if (v >= size || moved > posted) { this.badDoorbell(D.AEN_INVALID_DB_VALUE, `CQ ${q} head ${v}: not within the ${posted} posted entries`); return; }
      this.cqHead[q] = v;
      // Room again: submission queues waiting on this CQ go on.
      for (let s = 0; s < NQ; s++) if (this.sqValid[s] === 1 && this.sqCq[s] === q && this.sqHead[s] !== this.sqTail[s]) this.serveSq(s);
    }
    this.updateIntx();
  }

  private badDoorbell(info: number, why: string): void {
    this.stats.badDoorbells++;
    this.lastError = why;
    // Reported once until the host reads the Error Information log page (section 5.2: the event type is masked).
    if (this.errorEventMasked) return;
    this.errorEventMasked = true;
    this.events.push(D.AEN_TYPE_ERROR | (info << 8) | (D.LOG_ERROR << 16));
    this.deliverEvents();
  }

  private deliverEvents(): void {
    while (this.events.length > 0 && this.aerCids.length > 0 && this.live) {
      if (this.cqFull(0)) return;
      const cid = this.aerCids.shift()!;
      this.post(0, 0, cid, D.SC_SUCCESS, this.events.shift()!);
    }
    this.updateIntx();
  }

  private cqFull(cq: number): boolean { return (this.cqTail[cq]! + 1) % this.cqSize[cq]! === this.cqHead[cq]; }

  /** Fetches and runs SQ `q`'s entries up to its tail, while its CQ has room. */
  private serveSq(q: number): void {
    const cq = this.sqCq[q]!;
    while (this.sqValid[q] === 1 && this.sqHead[q] !== this.sqTail[q] && this.live) {
      if (this.cqValid[cq] !== 1 || this.cqFull(cq)) return;
      const at = this.sqBase[q]! + this.sqHead[q]! * D.SQE_BYTES;
      for (let i = 0; i < 16; i++) this.sqe[i] = this.view.getUint32(at + 4 * i, true);
      this.sqHead[q] = (this.sqHead[q]! + 1) % this.sqSize[q]!;
      this.stats.commands++;
      this.dw0 = 0;
      const status = q === 0 ? this.admin() : this.io();
      if (status === D.HELD) continue;
      if (status !== D.SC_SUCCESS) this.stats.errors++;
      this.post(cq, q, this.sqe[0]! >>> 16, status, this.dw0);
    }
    if (q === 0 && this.events.length > 0) this.deliverEvents(); // an event waiting for the AER just fetched
  }

  /** Writes a completion entry (section 4.6): DW0, DW2 = SQ head | SQ id, DW3 = CID | phase | status. */
  private post(cq: number, sq: number, cid: number, status: number, dw0: number): void {
    const tail = this.cqTail[cq]!, at = this.cqBase[cq]! + tail * D.CQE_BYTES;
    this.view.setUint32(at, dw0 >>> 0, true);
    this.view.setUint32(at + 4, 0, true);
    this.view.setUint32(at + 8, (this.sqHead[sq]! | (sq << 16)) >>> 0, true);
    // The dword holding the phase tag last, with a sequentially consistent store: a host polling the phase on
    // another vCPU thread sees the rest of the entry once it sees the new phase. (A little-endian host is assumed,
    // as everywhere the guest's RAM is a typed array.)
    Atomics.store(this.words, (at + 12) >>> 2, (cid | (this.cqPhase[cq]! << 16) | (status << 17)) | 0);
    this.mem.written?.(at, D.CQE_BYTES);
    const next = tail + 1;
    if (next === this.cqSize[cq]) { this.cqTail[cq] = 0; this.cqPhase[cq] = this.cqPhase[cq]! ^ 1; } else this.cqTail[cq] = next;
  }

  /** INTx: up while an interrupt-enabled CQ holds entries not yet consumed, unless vector 0 is masked. */
  private updateIntx(): void {
    let pending = false;
    for (let q = 0; q < NQ && !pending; q++) pending = this.cqValid[q] === 1 && this.cqIen[q] === 1 && this.cqHead[q] !== this.cqTail[q];
    this.setIntx(pending && (this.intms & 1) === 0);
  }

  private fail(status: number, why: string): number {
    this.lastError = why;
    return status;
  }

  // ---- admin commands (section 5) ----

  private admin(): number {
    const e = this.sqe, opc = e[0]! & 0xff;
    if ((e[0]! >>> 8 & 3) !== 0) return this.fail(D.SC_INVALID_FIELD, "fused admin command");
    if ((e[0]! >>> 14 & 3) !== 0) return this.fail(D.SC_INVALID_FIELD, "SGLs are not supported (PSDT)");
    switch (opc) {
      case D.ADM_CREATE_CQ: return this.createCq();
      case D.ADM_CREATE_SQ: return this.createSq();
      case D.ADM_DELETE_SQ: return this.deleteSq();
      case D.ADM_DELETE_CQ: return this.deleteCq();
      case D.ADM_IDENTIFY: return this.identify();
      case D.ADM_GET_LOG_PAGE: return this.getLogPage();
      case D.ADM_SET_FEATURES: return this.setFeatures();
      case D.ADM_GET_FEATURES: return this.getFeatures();
      case D.ADM_ABORT:
        // Nothing is ever in flight (commands complete when fetched); an outstanding AER is not aborted either
        // (section 5.1: DW0 bit 0 = 1, "command not aborted").
        this.dw0 = 1;
        return D.SC_SUCCESS;
      case D.ADM_ASYNC_EVENT:
        if (this.aerCids.length > AERL) return this.fail(D.SC_AER_LIMIT, "more than AERL+1 asynchronous event requests");
        this.aerCids.push(e[0]! >>> 16); // completed by deliverEvents when an event happens
        return D.HELD;
      default: return this.fail(D.SC_INVALID_OPCODE, `admin opcode 0x${opc.toString(16)}`);
    }
  }

  /** Checks a queue's PRP1 and size; returns its offset in RAM, or -1 (with lastError). */
  private queueMemory(what: string, entries: number, entry: number): number {
    const e = this.sqe;
    if ((e[6]! & (D.PAGE - 1)) !== 0) { this.lastError = `${what}: PRP1 is not page aligned`; return -1; }
    const at = this.mem.offsetOf(e[7]! * 2 ** 32 + e[6]!, entries * entry);
    if (at < 0) this.lastError = `${what}: ${entries} entries at 0x${(e[7]! * 2 ** 32 + e[6]!).toString(16)} are not all in guest RAM`;
    return at;
  }

  private createCq(): number {
    const e = this.sqe, qid = e[10]! & 0xffff, size = (e[10]! >>> 16) + 1;
    const pc = e[11]! & 1, ien = (e[11]! >>> 1) & 1, iv = e[11]! >>> 16;
    if (qid === 0 || qid > this.ncqa + 1 || qid >= NQ || this.cqValid[qid] === 1) return this.fail(D.SC_INVALID_QID, `create CQ ${qid}`);
    if (size < 2 || size > MAX_QUEUE_ENTRIES) return this.fail(D.SC_INVALID_QSIZE, `create CQ ${qid}: ${size} entries`);
    if (pc !== 1) return this.fail(D.SC_INVALID_FIELD, `create CQ ${qid}: not physically contiguous (CAP.CQR)`);
    if (iv !== 0) return this.fail(D.SC_INVALID_VECTOR, `create CQ ${qid}: interrupt vector ${iv} (INTx: vector 0 only)`);
    if (((this.cc >>> D.CC_IOCQES_SHIFT) & 15) !== D.CQES_LOG2) return this.fail(D.SC_INVALID_FIELD, "create CQ: CC.IOCQES is not 4 (16-byte entries)");
    const at = this.queueMemory(`create CQ ${qid}`, size, D.CQE_BYTES);
    if (at < 0) return D.SC_INVALID_FIELD;
    this.openCq(qid, at, size, ien === 1);
    return D.SC_SUCCESS;
  }

  private createSq(): number {
    const e = this.sqe, qid = e[10]! & 0xffff, size = (e[10]! >>> 16) + 1;
    const pc = e[11]! & 1, cqid = e[11]! >>> 16;
    if (qid === 0 || qid > this.nsqa + 1 || qid >= NQ || this.sqValid[qid] === 1) return this.fail(D.SC_INVALID_QID, `create SQ ${qid}`);
    if (size < 2 || size > MAX_QUEUE_ENTRIES) return this.fail(D.SC_INVALID_QSIZE, `create SQ ${qid}: ${size} entries`);
    if (pc !== 1) return this.fail(D.SC_INVALID_FIELD, `create SQ ${qid}: not physically contiguous (CAP.CQR)`);
    if (cqid === 0 || cqid >= NQ || this.cqValid[cqid] !== 1) return this.fail(D.SC_CQ_INVALID, `create SQ ${qid}: CQ ${cqid} does not exist`);
    if (((this.cc >>> D.CC_IOSQES_SHIFT) & 15) !== D.SQES_LOG2) return this.fail(D.SC_INVALID_FIELD, "create SQ: CC.IOSQES is not 6 (64-byte entries)");
    const at = this.queueMemory(`create SQ ${qid}`, size, D.SQE_BYTES);
    if (at < 0) return D.SC_INVALID_FIELD;
    this.openSq(qid, at, size, cqid);
    return D.SC_SUCCESS;
  }

  private deleteSq(): number {
    const qid = this.sqe[10]! & 0xffff;
    if (qid === 0 || qid >= NQ || this.sqValid[qid] !== 1) return this.fail(D.SC_INVALID_QID, `delete SQ ${qid}`);
    this.sqValid[qid] = 0; // nothing of it is in flight: its fetched commands have completed
    return D.SC_SUCCESS;
  }

  private deleteCq(): number {
    const qid = this.sqe[10]! & 0xffff;
    if (qid === 0 || qid >= NQ || this.cqValid[qid] !== 1) return this.fail(D.SC_INVALID_QID, `delete CQ ${qid}`);
    for (let s = 1; s < NQ; s++) if (this.sqValid[s] === 1 && this.sqCq[s] === qid) return this.fail(D.SC_INVALID_QUEUE_DELETION, `delete CQ ${qid}: SQ ${s} still uses it`);
    this.cqValid[qid] = 0;
    this.updateIntx();
    return D.SC_SUCCESS;
  }

  /** Copies `data[0, n)` to the command's PRPs (a host buffer of `n` bytes). */
  private dataIn(data: Uint8Array, n: number): number {
    const e = this.sqe;
    const st = this.prp.walk(e[6]!, e[7]!, e[8]!, e[9]!, n);
    if (st !== D.SC_SUCCESS) return this.fail(st, this.prp.why);
    this.prp.copyIn(data, n);
    return D.SC_SUCCESS;
  }

  private identify(): number {
    const e = this.sqe, cns = e[10]! & 0xff, nsid = e[1]! >>> 0;
    switch (cns) {
      case D.CNS_CONTROLLER: return this.dataIn(this.idCtrl, D.PAGE);
      case D.CNS_NAMESPACE:
        if (nsid !== 1) return this.fail(D.SC_INVALID_NS, `identify namespace ${nsid}`);
        return this.dataIn(this.idNs, D.PAGE);
      case D.CNS_NS_DESCRIPTORS:
        if (nsid !== 1) return this.fail(D.SC_INVALID_NS, `identify descriptors of namespace ${nsid}`);
        return this.dataIn(this.idDesc, D.PAGE);
      case D.CNS_ACTIVE_NS_LIST: {
        // Active NSIDs greater than NSID (section 5.15.2.3); FFFFFFFEh and FFFFFFFFh are invalid here.
        if (nsid >= 0xfffffffe) return this.fail(D.SC_INVALID_NS, `active namespace list after ${nsid}`);
        const b = this.scratch;
        b.fill(0);
        if (nsid < 1) b[0] = 1;
        return this.dataIn(b, D.PAGE);
      }
      default: return this.fail(D.SC_INVALID_FIELD, `identify CNS ${cns}`);
    }
  }

  private getLogPage(): number {
    const e = this.sqe, lid = e[10]! & 0xff;
    const dwords = ((e[11]! & 0xffff) * 0x10000 + (e[10]! >>> 16)) + 1;
    const offset = e[13]! * 2 ** 32 + e[12]!;
    const size = lid === D.LOG_ERROR ? 64 : lid === D.LOG_SMART || lid === D.LOG_FW_SLOT ? 512 : 0;
    if (size === 0) return this.fail(D.SC_INVALID_LOG_PAGE, `log page 0x${lid.toString(16)}`);
    const nsid = e[1]! >>> 0;
    if (nsid !== 0 && nsid !== 0xffffffff && !(lid === D.LOG_SMART && nsid === 1)) return this.fail(D.SC_INVALID_NS, `log page ${lid} for namespace ${nsid}`);
    if ((offset & 3) !== 0 || offset >= size) return this.fail(D.SC_INVALID_FIELD, `log page ${lid}: offset ${offset} of ${size} bytes`);
    const bytes = dwords * 4;
    if (bytes > MAX_PAGES * D.PAGE) return this.fail(D.SC_INVALID_FIELD, `log page ${lid}: ${bytes} bytes exceed MDTS`);
    const b = this.scratch;
    b.fill(0);
    if (lid === D.LOG_SMART) {
      // SMART / Health (figure 194): composite temperature 300 K, 100% spare, threshold 10%; counters zero.
      b[1] = 300 & 0xff; b[2] = 300 >>> 8; b[3] = 100; b[4] = 10;
    } else if (lid === D.LOG_FW_SLOT) {
      b[0] = 1; // AFI: slot 1 active
      for (let i = 0; i < 8; i++) b[8 + i] = i < 3 ? "1.0".charCodeAt(i) : 0x20;
    }
    // Reading the Error Information log clears the masked error event (section 5.2).
    if (lid === D.LOG_ERROR && (e[10]! & (1 << 15)) === 0) this.errorEventMasked = false;
    // Bytes past the log read as zeros (the scratch page is zeroed; larger transfers walk past it in pieces).
    const st = this.prp.walk(e[6]!, e[7]!, e[8]!, e[9]!, bytes);
    if (st !== D.SC_SUCCESS) return this.fail(st, this.prp.why);
    const src = b.subarray(offset);
    this.prp.copyIn(src, Math.min(bytes, src.length));
    if (bytes > src.length) this.zeroFrom(src.length, bytes);
    return D.SC_SUCCESS;
  }

  /** Zeroes the walked ranges from byte `from` to `to`. */
  private zeroFrom(from: number, to: number): void {
    const p = this.prp, m = this.mem.bytes;
    let pos = 0;
    for (let i = 0; i < p.count; i++) {
      const o = p.off[i]!, n = p.len[i]!;
      const a = Math.max(pos, from), z = Math.min(pos + n, to);
      if (z > a) { m.fill(0, o + a - pos, o + z - pos); this.mem.written?.(o + a - pos, z - a); }
      pos += n;
    }
  }

  private setFeatures(): number {
    const e = this.sqe, fid = e[10]! & 0xff, v = e[11]! >>> 0;
    if ((e[10]! >>> 31) !== 0) return this.fail(D.SC_FEATURE_NOT_SAVEABLE, `set feature 0x${fid.toString(16)} saved`);
    switch (fid) {
      case D.FEAT_NUM_QUEUES: {
        const nsqr = v & 0xffff, ncqr = v >>> 16;
        if (nsqr === 0xffff || ncqr === 0xffff) return this.fail(D.SC_INVALID_FIELD, "number of queues 65536");
        // Once per controller reset (section 5.21.1.7: Command Sequence Error after I/O queues exist).
        if (this.queuesSet) return this.fail(D.SC_CMD_SEQ_ERROR, "number of queues set twice");
        this.queuesSet = true;
        this.nsqa = Math.min(nsqr, MAX_IO_QUEUES - 1);
        this.ncqa = Math.min(ncqr, MAX_IO_QUEUES - 1);
        this.features[fid] = (this.ncqa << 16) | this.nsqa;
        this.dw0 = this.features[fid]!;
        return D.SC_SUCCESS;
      }
      case D.FEAT_POWER_MGMT:
        if ((v & 0x1f) !== 0) return this.fail(D.SC_INVALID_FIELD, `power state ${v & 0x1f} (one state)`);
        break;
      case D.FEAT_IRQ_CONFIG:
        if ((v & 0xffff) !== 0) return this.fail(D.SC_INVALID_FIELD, `interrupt vector ${v & 0xffff} (INTx: vector 0 only)`);
        break;
      case D.FEAT_VOLATILE_WC:
        this.writeCache = (v & 1) === 1;
        break;
      case D.FEAT_ARBITRATION: case D.FEAT_TEMP_THRESHOLD: case D.FEAT_ERROR_RECOVERY: case D.FEAT_IRQ_COALESCE:
      case D.FEAT_WRITE_ATOMIC: case D.FEAT_ASYNC_EVENT:
        break;
      default: return this.fail(D.SC_INVALID_FIELD, `set feature 0x${fid.toString(16)}`);
    }
    this.features[fid] = v;
    return D.SC_SUCCESS;
  }

  private getFeatures(): number {
    const e = this.sqe, fid = e[10]! & 0xff, sel = (e[10]! >>> 8) & 7;
    if (fid === 0 || fid >= this.features.length || fid === 0x03) return this.fail(D.SC_INVALID_FIELD, `get feature 0x${fid.toString(16)}`);
    if (sel > 3) return this.fail(D.SC_INVALID_FIELD, `get feature select ${sel}`);
    if (sel === 3) { this.dw0 = 1 << 2; return D.SC_SUCCESS; } // capabilities: changeable, not saveable, not per namespace
    if (sel !== 0) {
      // Default and saved values (not saveable: saved = default).
      this.dw0 = fid === D.FEAT_NUM_QUEUES ? ((MAX_IO_QUEUES - 1) << 16) | (MAX_IO_QUEUES - 1)
        : fid === D.FEAT_TEMP_THRESHOLD ? 0x157 : fid === D.FEAT_VOLATILE_WC ? 1 : 0;
      return D.SC_SUCCESS;
    }
    this.dw0 = fid === D.FEAT_VOLATILE_WC ? (this.writeCache ? 1 : 0) : this.features[fid]!;
    return D.SC_SUCCESS;
  }

  // ---- NVM commands (the NVM command set of the 1.4 Base spec, section 6) ----

  private io(): number {
    const e = this.sqe, opc = e[0]! & 0xff, nsid = e[1]! >>> 0;
    if ((e[0]! >>> 8 & 3) !== 0) return this.fail(D.SC_INVALID_FIELD, "fused commands are not supported");
    if ((e[0]! >>> 14 & 3) !== 0) return this.fail(D.SC_INVALID_FIELD, "SGLs are not supported (PSDT)");
    if (opc !== D.NVM_FLUSH && opc !== D.NVM_WRITE && opc !== D.NVM_READ && opc !== D.NVM_DSM) {
      return this.fail(D.SC_INVALID_OPCODE, `I/O opcode 0x${opc.toString(16)}`);
    }
    // Flush may name all namespaces (FFFFFFFFh); everything else namespace 1.
    if (nsid !== 1 && !(opc === D.NVM_FLUSH && nsid === 0xffffffff)) return this.fail(D.SC_INVALID_NS, `namespace ${nsid}`);
    switch (opc) {
      case D.NVM_FLUSH:
        try { this.disk.flush(); } catch (x) { return this.fail(D.SC_WRITE_FAULT, `flush: ${(x as Error).message}`); }
        return D.SC_SUCCESS;
      case D.NVM_DSM: return this.dsm();
      default: return this.rw(opc === D.NVM_WRITE);
    }
  }

  private rw(write: boolean): number {
    const e = this.sqe;
    const slba = e[11]! * 2 ** 32 + e[10]!, nlb = (e[12]! & 0xffff) + 1, fua = (e[12]! >>> 30) & 1;
    if (write && this.readOnly) return this.fail(D.SC_NS_WRITE_PROTECTED, "a write to a read-only namespace");
    if (nlb > (MAX_PAGES * D.PAGE) / LBA) return this.fail(D.SC_INVALID_FIELD, `${nlb} blocks exceed MDTS`);
    if (slba >= this.blocks || slba + nlb > this.blocks) return this.fail(D.SC_LBA_RANGE, `LBAs ${slba}+${nlb} past the ${this.blocks} of the namespace`);
    const bytes = nlb * LBA;
    const st = this.prp.walk(e[6]!, e[7]!, e[8]!, e[9]!, bytes);
    if (st !== D.SC_SUCCESS) return this.fail(st, this.prp.why);
    const p = this.prp, m = this.mem.bytes;
    let pos = slba * LBA;
    try {
      for (let i = 0; i < p.count; i++) {
        const o = p.off[i]!, n = p.len[i]!;
        if (write) this.disk.write(m, o, n, pos);
        else { this.disk.read(m, o, n, pos); this.mem.written?.(o, n); }
        pos += n;
      }
      if (write && (fua === 1 || !this.writeCache)) this.disk.flush();
    } catch (x) {
      return this.fail(write ? D.SC_WRITE_FAULT : D.SC_UNRECOVERED_READ, `${write ? "write" : "read"} at LBA ${slba}: ${(x as Error).message}`);
    }
    if (write) this.stats.writeBytes += bytes; else this.stats.readBytes += bytes;
    return D.SC_SUCCESS;
  }

  /** Dataset Management (section 6.7): with AD, each range is deallocated (it reads as zeros afterwards). */
  private dsm(): number {
    const e = this.sqe, nr = (e[10]! & 0xff) + 1, ad = (e[11]! >>> 2) & 1;
    const st = this.prp.walk(e[6]!, e[7]!, e[8]!, e[9]!, nr * 16);
    if (st !== D.SC_SUCCESS) return this.fail(st, this.prp.why);
    if (ad === 0) return D.SC_SUCCESS; // attributes only (IDR, IDW): hints, nothing to do
    if (this.readOnly) return this.fail(D.SC_NS_WRITE_PROTECTED, "deallocate on a read-only namespace");
    const b = this.scratch;
    this.prp.copyOut(b, nr * 16);
    const v = new DataView(b.buffer, 0, nr * 16); // one view per DSM command (not the read/write path)
    for (let r = 0; r < nr; r++) {
      const len = v.getUint32(16 * r + 4, true), slba = v.getUint32(16 * r + 12, true) * 2 ** 32 + v.getUint32(16 * r + 8, true);
      if (slba + len > this.blocks) return this.fail(D.SC_LBA_RANGE, `deallocate LBAs ${slba}+${len} past the namespace`);
    }
    try {
      for (let r = 0; r < nr; r++) {
        const len = v.getUint32(16 * r + 4, true), slba = v.getUint32(16 * r + 12, true) * 2 ** 32 + v.getUint32(16 * r + 8, true);
        if (len > 0) this.disk.discard(slba * LBA, len * LBA);
      }
    } catch (x) {
      return this.fail(D.SC_WRITE_FAULT, `deallocate: ${(x as Error).message}`);
    }
    return D.SC_SUCCESS;
  }
}

