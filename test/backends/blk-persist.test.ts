/**
 * Save/restore of blkback: a connected disk that served requests (and has one queued but not yet taken) is
 * saved with its domain; the domain is restored over a copy of its RAM with the ring's event channel left
 * detached, the store's device nodes copied into a new store, and BlkBack.restore rebuilds the back-end over a
 * copy of the image at another path. The restored back-end then serves the queued request and later ones
 * exactly as the original does. Refusals: identity, size, grant, port, undrained ring; save refuses while
 * requests are in flight.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { XenDomain, type XenHost } from "../../src/xen/domain.js";
import { XenStore, type StoreApi } from "../../src/xenstore/index.js";
import { attachBlkBack, BlkBack, type BlkBackState, type BlkDiskConfig } from "../../src/backends/blk/index.js";
import { BLKIF_ENTRY_SIZE, BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_RING_SIZE, SRING_HEADER, SRING_REQ_EVENT, SRING_REQ_PROD,
  SRING_RSP_EVENT, SRING_RSP_PROD } from "../../src/backends/blk/blkif.js";
import { GTF_permit_access } from "../../src/xen/grant-table.js";
import { StateError } from "../../src/common/state.js";

const BASE = 0x40000000, RAM = 8 << 20, DOMID = 5, DEVID = 51712, PAGE = 4096;
const GNT_GFN = (BASE + 0x300000) / PAGE, RING_GFN = GNT_GFN + 1, DATA_GFN = GNT_GFN + 16;
const RING_REF = 8, dataRef = (k: number): number => 16 + k;
const FRONT = `/local/domain/${DOMID}/device/vbd/${DEVID}`;

class FakeHost implements XenHost {
  setUpcall(): void {}
  counter(): number { return 0; }
  log(): void {}
  shutdown(): void {}
  block(): void {}
  yield(): void {}
}

const off = (gfn: number): number => gfn * PAGE - BASE;
const newDomain = (ram: SharedArrayBuffer, restoring = false): XenDomain =>
  new XenDomain({ ram, ramBase: BASE, vcpus: 1, host: new FakeHost(), domid: DOMID, store: "none", restoring });

/** One side (original or restored): its domain, store, back-end and the guest's ring indexes. */
class Side {
  readonly dv: DataView;
  readonly u8: Uint8Array;
  reqProd = 0;
  rspCons = 0;
  logs: string[] = [];
  back!: BlkBack;
  constructor(readonly ram: SharedArrayBuffer, readonly xen: XenDomain, readonly store: StoreApi, readonly port: number) {
    this.dv = new DataView(ram);
    this.u8 = new Uint8Array(ram);
    const r = this.dv.getUint32(off(RING_GFN) + SRING_REQ_PROD, true);
    this.reqProd = r;
    this.rspCons = this.dv.getUint32(off(RING_GFN) + SRING_RSP_PROD, true);
  }
  /** Queues READ/WRITE of one page at `sector` with data page k; publishes req_prod; notifies if asked. */
  req(op: number, sector: number, k: number, notify = true): void {
    const o = off(RING_GFN) + SRING_HEADER + (this.reqProd & (BLKIF_RING_SIZE - 1)) * BLKIF_ENTRY_SIZE;
    this.u8.fill(0, o, o + BLKIF_ENTRY_SIZE);
    this.dv.setUint8(o, op); this.dv.setUint8(o + 1, 1); this.dv.setUint16(o + 2, DEVID, true);
    this.dv.setUint32(o + 8, 1000 + this.reqProd, true);
    this.dv.setUint32(o + 16, sector, true);
    this.dv.setUint32(o + 24, dataRef(k), true); this.dv.setUint8(o + 28, 0); this.dv.setUint8(o + 29, 7);
    this.reqProd++;
    Atomics.store(new Int32Array(this.ram), (off(RING_GFN) + SRING_REQ_PROD) >> 2, this.reqProd | 0);
    if (notify) assert.equal(this.xen.evtchn.send(this.port), 0);
  }
  responses(): [number, number, number][] {
    assert.ok(this.back.drain(10_000), "requests in flight completed"); // with the I/O thread (the default)
    const out: [number, number, number][] = [];
    const prod = this.dv.getUint32(off(RING_GFN) + SRING_RSP_PROD, true);
    for (; this.rspCons !== prod; this.rspCons++) {
      const o = off(RING_GFN) + SRING_HEADER + (this.rspCons & (BLKIF_RING_SIZE - 1)) * BLKIF_ENTRY_SIZE;
      out.push([this.dv.getUint32(o, true), this.dv.getUint8(o + 8), this.dv.getInt16(o + 10, true)]);
    }
    return out;
  }
  data(k: number): Uint8Array { return this.u8.slice(off(DATA_GFN + k), off(DATA_GFN + k) + PAGE); }
}

/** Copies every node under `path` (values and permissions) from one store to another. */
function copyTree(from: StoreApi, to: StoreApi, path: string): void {
  const a = from.connect(0, () => {}), b = to.connect(0, () => {});
  const walk = (p: string): void => {
    to.write(b, null, p, from.read(a, null, p));
    to.setPerms(b, null, p, from.getPerms(a, null, p));
    for (const c of from.directory(a, null, p)) walk(`${p}/${c}`);
  };
  walk(path);
  from.disconnect(a); to.disconnect(b);
}

function original(dir: string): { side: Side; config: BlkDiskConfig } {
  const path = join(dir, "disk.img");
  writeFileSync(path, new Uint8Array(1 << 20).map((_, i) => (i * 7) & 0xff));
  const ram = new SharedArrayBuffer(RAM);
  const xen = newDomain(ram);
  assert.equal(xen.gnttab.mapFrame(0, GNT_GFN), 0);
  const port = xen.evtchn.allocUnbound(0);
  const store = new XenStore();
  const side = new Side(ram, xen, store, port);
  const grant = (ref: number, gfn: number): void => {
    const e = xen.gnttab.entryOffset(ref);
    side.dv.setUint16(e + 2, 0, true); side.dv.setUint32(e + 4, gfn, true); side.dv.setUint16(e, GTF_permit_access, true);
  };
  side.dv.setUint32(off(RING_GFN) + SRING_REQ_EVENT, 1, true);
  side.dv.setUint32(off(RING_GFN) + SRING_RSP_EVENT, 1, true);
  grant(RING_REF, RING_GFN);
  for (let k = 0; k < 8; k++) grant(dataRef(k), DATA_GFN + k);
  const config = { path, devid: DEVID, vdev: "xvda", readOnly: false };
  side.back = attachBlkBack(xen, store, config, (l) => side.logs.push(l));
  const g = store.connect(DOMID, () => {});
  for (const [k, v] of Object.entries({ "ring-ref": String(RING_REF), "event-channel": String(port), protocol: "arm-abi", state: "3" })) {
    store.write(g, null, `${FRONT}/${k}`, Buffer.from(v));
  }
  assert.ok(side.back.connected, side.logs.join("\n"));
  // Some traffic: a write from page 0, a read into page 1; then one request queued without a notification.
  side.u8.fill(0x5a, off(DATA_GFN), off(DATA_GFN) + PAGE);
  side.req(BLKIF_OP_WRITE, 8, 0);
  side.req(BLKIF_OP_READ, 0, 1);
  assert.deepEqual(side.responses().map((r) => r[2]), [0, 0]);
  side.req(BLKIF_OP_READ, 8, 2, false);
  return { side, config };
}

/** The restore path: domain over copied RAM (ring port left detached), device nodes in a new store, image copy. */
function restored(src: Side, config: BlkDiskConfig, dir: string, st: BlkBackState): Side {
  const xs = src.xen.save();
  const ram = new SharedArrayBuffer(RAM);
  new Uint8Array(ram).set(src.u8);
  const xen = newDomain(ram, true);
  xen.restore(structuredClone(xs));
  const store = new XenStore();
  copyTree(src.store, store, "/local/domain");
  const path = join(dir, "disk-restored.img");
  copyFileSync(config.path, path);
  const side = new Side(ram, xen, store, src.port);
  side.back = BlkBack.restore({ xen, store, config: { ...config, path }, log: (l) => side.logs.push(l) }, structuredClone(st));
  return side;
}

function refuses(f: () => void, field: string): void {
  assert.throws(f, (e: unknown) => e instanceof StateError && e.code === "STATE_INVALID" && e.field.includes(field),
    `should refuse a bad ${field}`);
}

test("blkback: save/restore of a connected disk; the restored one serves queued and later requests alike", () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-blkp-"));
  try {
    const { side: a, config } = original(dir);
    const st = a.back.save();
    assert.equal(st.connected, true);
    assert.deepEqual(st.rings, [{ ringRefs: [RING_REF], port: a.port, reqCons: 2, rspProdPvt: 2, pgrants: [] }]);
    const b = restored(a, config, dir, st);
    assert.deepEqual(b.back.save(), st);
    assert.ok(b.back.connected);
    assert.deepEqual(b.xen.evtchn.detachedHostPorts(), []);
    for (const s of [a, b]) {
      s.back.poll(); // the queued request
      s.req(BLKIF_OP_WRITE, 16, 3);
      s.req(BLKIF_OP_READ, 16, 4);
    }
    const ra = a.responses(), rb = b.responses();
    assert.deepEqual(rb, ra);
    assert.equal(ra.length, 3);
    for (const k of [2, 4]) assert.deepEqual(b.data(k), a.data(k));
    assert.deepEqual(readFileSync(join(dir, "disk-restored.img")), readFileSync(config.path));
    // Which requests were served inline depends on the host's timing (a slow one backs off): not compared.
    const served = (x: BlkBack): Record<string, number> => { const { inline: _i, inlineBackoffs: _b, ...rest } = x.stats; return rest; };
    assert.deepEqual(served(b.back), served(a.back));
    a.back.close(); b.back.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("blkback: bad states are refused with nothing attached; save refuses requests in flight", () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-blkp-"));
  try {
    const { side: a, config } = original(dir);
    const st = a.back.save();
    const m = (f: (x: Record<string, any>) => void): BlkBackState => { // any: tests poke at fields freely
      const c = structuredClone(st) as unknown as Record<string, any>;
      f(c);
      return c as unknown as BlkBackState;
    };
    const bad: [BlkBackState, string][] = [
      [m((x) => { x.version = 3; }), "version"],
      [m((x) => { x.devid = 51728; }), "devid"],
      [m((x) => { x.vdev = "xvdb"; }), "vdev"],
      [m((x) => { x.readOnly = true; }), "readOnly"],
      [m((x) => { x.sectors = 4096; }), "sectors"],
      [m((x) => { x.rings[0].ringRefs = [9]; }), "rings[0].ringRefs[0]"], // not granted
      [m((x) => { x.rings[0].ringRefs = [RING_REF, RING_REF]; }), "rings[0].ringRefs"], // two pages at order 0
      [m((x) => { x.ringOrder = 5; }), "ringOrder"],
      [m((x) => { x.rings[0].port = 3; }), "rings[0].port"],
      [m((x) => { x.rings.push(structuredClone(x.rings[0])); }), "rings"], // more queues than the 1-vCPU domain is offered
      [m((x) => { x.rings[0].reqCons = 1; }), "rings[0].reqCons"],
      [m((x) => { x.rings[0].rspProdPvt = 3; x.rings[0].reqCons = 3; }), "rings[0].reqCons"], // not what the page says
      [m((x) => { x.rings[0].pgrants = [RING_REF]; }), "rings[0].pgrants"], // persistent grants without the feature
      [m((x) => { x.rings = []; }), "connected"],
      [m((x) => { x.stats.reads = -1; }), "stats.reads"],
      [m((x) => { x.loggedErrors = 1000; }), "loggedErrors"],
    ];
    for (const [s, field] of bad) {
      const xs = a.xen.save();
      const ram = new SharedArrayBuffer(RAM);
      new Uint8Array(ram).set(a.u8);
      const xen = newDomain(ram, true);
      xen.restore(xs);
      const store = new XenStore();
      copyTree(a.store, store, "/local/domain");
      const before = xen.save();
      refuses(() => BlkBack.restore({ xen, store, config, log: () => {} }, s), field);
      assert.deepEqual(xen.evtchn.detachedHostPorts(), [a.port], "the port is still free for a correct restore");
      assert.deepEqual(xen.save(), before);
      const ok = BlkBack.restore({ xen, store, config, log: () => {} }, st); // and a correct restore then works
      assert.ok(ok.connected);
      ok.close();
    }
    // Requests taken but not answered (only possible mid-run): save refuses.
    const ring = (a.back as unknown as { rings: { ring: { reqCons: number } }[] }).rings[0]!.ring; // reaching in to fake a mid-run state
    ring.reqCons++;
    refuses(() => a.back.save(), "rings[0]");
    ring.reqCons--;
    assert.ok(a.back.save());
    a.back.close();
    refuses(() => a.back.save(), "(root)");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
