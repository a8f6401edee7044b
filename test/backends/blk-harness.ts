/**
 * The crafted guest of the blkback unit tests (blk.test.ts, blk-io.test.ts): a XenDomain over an 8 MiB
 * SharedArrayBuffer (a fake host), a grant frame the test fills as a guest's gnttab would, a blkif ring page the
 * test produces requests on, an unbound event channel, and the front-end's XenStore keys written from a
 * domain-5 session. The image is a temporary file.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { XenDomain, type XenHost } from "../../src/xen/domain.js";
import { XenStore, type XsSession } from "../../src/xenstore/index.js";
import { attachBlkBack, type BlkBack } from "../../src/backends/blk/index.js";
import { BLKIF_OP_DISCARD, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_RING_SIZE, BLKIF_ENTRY_SIZE, SRING_HEADER, SRING_REQ_EVENT,
  SRING_REQ_PROD, SRING_RSP_EVENT, SRING_RSP_PROD } from "../../src/backends/blk/blkif.js";
import { GTF_permit_access, GTF_readonly } from "../../src/xen/grant-table.js";

export const BASE = 0x40000000, RAM = 8 << 20, DOMID = 5, DEVID = 51712;
export const PAGE = 4096;
/** Guest frames: the grant frame, the ring, 32 data pages (all ordinary RAM). */
export const GNT_GFN = (BASE + 0x300000) / PAGE, RING_GFN = GNT_GFN + 1, DATA_GFN = GNT_GFN + 16, NDATA = 32;
export const RING_REF = 8;
/** One guest page per ring slot for an indirect request's segment list (up to 512 segments), granted
 * read-only as ref IND_REF + slot. */
export const IND_GFN = GNT_GFN + 64, IND_REF = 300;
/** Grant ref of data page k (k < NDATA). */
export const dataRef = (k: number): number => 16 + k;
export const BACK = `/local/domain/0/backend/vbd/${DOMID}/${DEVID}`;
export const FRONT = `/local/domain/${DOMID}/device/vbd/${DEVID}`;

export class FakeHost implements XenHost {
  logs: string[] = [];
  setUpcall(): void {}
  counter(): number { return 0; }
  log(line: string): void { this.logs.push(line); }
  shutdown(): void {}
  block(): void {}
  yield(): void {}
}

export interface Seg { gref: number; first: number; last: number }
export interface Req { op: number; nseg?: number; id?: number; sector?: number; segs?: Seg[]; handle?: number;
  /** INDIRECT: indirect_op, and the indirect page refs (default: the slot's page); segs (≤ 512) go in that page. */
  indOp?: number; indRefs?: number[];
  /** DISCARD: nr_sectors; sectorHi/countHi: raw high words for hostile u64s. */
  count?: number; sectorHi?: number; countHi?: number }

export class Harness {
  readonly ram = new SharedArrayBuffer(RAM);
  readonly u8 = new Uint8Array(this.ram);
  readonly dv = new DataView(this.ram);
  readonly xen: XenDomain;
  readonly store = new XenStore();
  readonly dom0: XsSession;
  readonly guest: XsSession;
  readonly logs: string[] = [];
  readonly dir: string;
  readonly path: string;
  readonly port: number;
  back!: BlkBack;
  /** Guest-side ring indexes. */
  reqProd = 0;
  rspCons = 0;

  constructor(o: { readOnly?: boolean; bytes?: number; content?: Uint8Array; connect?: boolean; vcpus?: number } = {}) {
    this.dir = mkdtempSync(join(tmpdir(), "xeno-blk-"));
    this.path = join(this.dir, "disk.img");
    const bytes = o.content?.length ?? o.bytes ?? 1 << 20;
    writeFileSync(this.path, o.content ?? patternBytes(bytes, 1));
    this.xen = new XenDomain({ ram: this.ram, ramBase: BASE, vcpus: o.vcpus ?? 1, host: new FakeHost(), domid: DOMID, store: "none" });
    assert.equal(this.xen.gnttab.mapFrame(0, GNT_GFN), 0);
    this.port = this.xen.evtchn.allocUnbound(0);
    this.dom0 = this.store.connect(0, () => {});
    this.guest = this.store.connect(DOMID, () => {});
    // SHARED_RING_INIT as blkfront does.
    const r = this.off(RING_GFN);
    this.dv.setUint32(r + SRING_REQ_EVENT, 1, true);
    this.dv.setUint32(r + SRING_RSP_EVENT, 1, true);
    this.grant(RING_REF, RING_GFN);
    for (let k = 0; k < NDATA; k++) this.grant(dataRef(k), DATA_GFN + k);
    for (let k = 0; k < BLKIF_RING_SIZE; k++) this.grant(IND_REF + k, IND_GFN + k, { readonly: true });
    this.back = attachBlkBack(this.xen, this.store, { path: this.path, devid: DEVID, vdev: "xvda", readOnly: o.readOnly ?? false },
      (l) => this.logs.push(l));
    if (o.connect ?? true) {
      this.frontConnect();
      assert.equal(this.backState(), 4, this.logs.join("\n"));
      assert.ok(this.back.connected);
    }
  }

  off(gfn: number): number { return gfn * PAGE - BASE; }
  dataOff(k: number): number { return this.off(DATA_GFN + k); }

  /** Writes grant entry `ref` as a guest does: domid, frame, then flags. */
  grant(ref: number, gfn: number, o: { readonly?: boolean; dom?: number; flags?: number } = {}): void {
    const e = this.xen.gnttab.entryOffset(ref);
    assert.ok(e >= 0);
    this.dv.setUint16(e + 2, o.dom ?? 0, true);
    this.dv.setUint32(e + 4, gfn, true);
    this.dv.setUint16(e, o.flags ?? (GTF_permit_access | (o.readonly ? GTF_readonly : 0)), true);
  }

  frontWrite(key: string, value: string): void {
    this.store.write(this.guest, null, `${FRONT}/${key}`, Buffer.from(value));
  }

  frontConnect(keys: Record<string, string> = {}): void {
    const all = { "ring-ref": String(RING_REF), "event-channel": String(this.port), protocol: "arm-abi", ...keys };
    for (const [k, v] of Object.entries(all)) if (v !== "") this.frontWrite(k, v);
    this.frontWrite("state", "3");
  }

  read(path: string): string | null {
    try { return Buffer.from(this.store.read(this.dom0, null, path)).toString("latin1"); } catch { return null; }
  }

  backState(): number { return Number(this.read(`${BACK}/state`)); }

  ring(field: number): number { return this.dv.getUint32(this.off(RING_GFN) + field, true); }

  /** Queues one request (as RING_GET_REQUEST + req_prod_pvt++); call push() to publish. */
  put(r: Req): void {
    const o = this.off(RING_GFN) + SRING_HEADER + (this.reqProd & (BLKIF_RING_SIZE - 1)) * BLKIF_ENTRY_SIZE;
    const dv = this.dv;
    this.u8.fill(0, o, o + BLKIF_ENTRY_SIZE);
    dv.setUint8(o, r.op);
    dv.setUint16(o + 2, r.handle ?? DEVID, true);
    dv.setUint32(o + 8, r.id ?? this.reqProd, true);
    dv.setUint32(o + 12, 0xabc00000, true); // high half of the id: must come back as is
    dv.setUint32(o + 16, r.sector ?? 0, true);
    dv.setUint32(o + 20, r.sectorHi ?? 0, true);
    if (r.op === BLKIF_OP_DISCARD) {
      dv.setUint32(o + 24, r.count ?? 0, true);
      dv.setUint32(o + 28, r.countHi ?? 0, true);
    } else if (r.op === BLKIF_OP_INDIRECT) {
      // blkif_request_indirect: indirect_op @1, nr_segments u16 @2, handle @24, indirect_grefs @28; the
      // segment list fills the indirect pages (512 per page) in order.
      const segs = r.segs ?? [];
      dv.setUint8(o + 1, r.indOp ?? BLKIF_OP_READ);
      dv.setUint16(o + 2, r.nseg ?? segs.length, true);
      dv.setUint16(o + 24, r.handle ?? DEVID, true);
      const slot = this.reqProd & (BLKIF_RING_SIZE - 1);
      (r.indRefs ?? [IND_REF + slot]).forEach((ref, i) => dv.setUint32(o + 28 + i * 4, ref, true));
      assert.ok(segs.length <= 512);
      segs.forEach((sg, i) => {
        const e = this.off(IND_GFN + slot) + i * 8;
        dv.setUint32(e, sg.gref, true);
        dv.setUint8(e + 4, sg.first);
        dv.setUint8(e + 5, sg.last);
      });
    } else {
      const segs = r.segs ?? [];
      dv.setUint8(o + 1, r.nseg ?? segs.length);
      segs.forEach((s, i) => {
        dv.setUint32(o + 24 + i * 8, s.gref, true);
        dv.setUint8(o + 28 + i * 8, s.first);
        dv.setUint8(o + 29 + i * 8, s.last);
      });
    }
    this.reqProd++;
  }

  /** Publishes req_prod and notifies the back-end (always: the hold-off is checked separately). */
  push(): void {
    Atomics.store(new Int32Array(this.ram), (this.off(RING_GFN) + SRING_REQ_PROD) >> 2, this.reqProd | 0);
    assert.equal(this.xen.evtchn.send(this.port), 0);
  }

  /** Takes the responses published since the last call: [id low word, operation, status]. */
  responses(): [number, number, number][] {
    // With the I/O thread (the default; $XENO_BLK_SYNC=1 runs this file synchronously), answers come when the
    // requests complete: wait for those in flight, as the guest would.
    assert.ok(this.back.drain(10_000), "requests in flight completed");
    const out: [number, number, number][] = [];
    const prod = this.ring(SRING_RSP_PROD);
    for (; this.rspCons !== prod; this.rspCons++) {
      const o = this.off(RING_GFN) + SRING_HEADER + (this.rspCons & (BLKIF_RING_SIZE - 1)) * BLKIF_ENTRY_SIZE;
      assert.equal(this.dv.getUint32(o + 4, true), 0xabc00000, "id high half echoed");
      out.push([this.dv.getUint32(o, true), this.dv.getUint8(o + 8), this.dv.getInt16(o + 10, true)]);
    }
    return out;
  }

  /** One request, published and answered: its status. */
  one(r: Req): number {
    const id = r.id ?? this.reqProd;
    this.put({ ...r, id });
    this.push();
    const rs = this.responses();
    assert.equal(rs.length, 1, `one response (${this.logs.slice(-3).join(" | ")})`);
    assert.equal(rs[0]![0], id);
    assert.equal(rs[0]![1], r.op === BLKIF_OP_INDIRECT ? r.indOp ?? BLKIF_OP_READ : r.op, "the operation echoed (indirect_op for INDIRECT)");
    return rs[0]![2];
  }

  image(): Buffer { return readFileSync(this.path); }

  done(): void {
    this.back.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Deterministic bytes (an LCG), different per seed. */
export function patternBytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < n; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; b[i] = x >>> 24; }
  return b;
}

export const md5 = (b: Uint8Array): string => createHash("md5").update(b).digest("hex");

/** The guest buffer with the given byte ranges blanked out (to compare everything else). */
export function outside(u8: Uint8Array, ranges: [number, number][]): Uint8Array {
  const c = u8.slice();
  for (const [a, b] of ranges) c.fill(0, a, b);
  return c;
}

