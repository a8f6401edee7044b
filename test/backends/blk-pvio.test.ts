/**
 * blkback's negotiated features against a crafted (and hostile) front-end: persistent grants (kept across
 * requests, bounded per ring, read-only or redirected grants, released on disconnect), multi-page rings
 * (orders 0..4, entries straddling pages, two laps), multi-queue (one ring per vCPU, each answered on its own
 * ring; bad queue setups refused), the per-pass ring budget, and a seeded fuzz over all three at once.
 * The switches (XENO_BLK_PERSISTENT, XENO_BLK_MAX_RING_ORDER, XENO_BLK_MAX_QUEUES) are checked too.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { BLKIF_ENTRY_SIZE, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_RSP_ERROR,
  BLKIF_RSP_OKAY, SRING_HEADER, SRING_REQ_EVENT, SRING_REQ_PROD, SRING_RSP_EVENT, SRING_RSP_PROD } from "../../src/backends/blk/blkif.js";
import { GTF_reading, GTF_writing } from "../../src/xen/grant-table.js";
import { MAX_PERSISTENT_GRANTS, PGNT_FULL, PersistentGrants } from "../../src/backends/blk/persistent-grants.js";
import { BACK, BASE, DATA_GFN, DEVID, DOMID, FakeHost, GNT_GFN, Harness, NDATA, PAGE, dataRef, outside, patternBytes, type Req } from "./blk-harness.js";
import { XenDomain } from "../../src/xen/domain.js";
import { XenStore } from "../../src/xenstore/index.js";
import { BlkBack, type BlkBackState } from "../../src/backends/blk/index.js";
import { StateError } from "../../src/common/state.js";

// Persistent grants are offered only with XENO_BLK_PERSISTENT=1 (blk-negotiate.ts): on for this file's disks.
process.env.XENO_BLK_PERSISTENT = "1";

/** A front-end ring of 2^order pages for queue q (its own pages, grants, indirect pages and port). */
class FrontRing {
  reqProd = 0;
  rspCons = 0;
  readonly size: number;
  readonly gfns: number[];
  readonly refs: number[];
  readonly port: number;
  private readonly e = new Uint8Array(BLKIF_ENTRY_SIZE);
  private readonly ev = new DataView(this.e.buffer);

  constructor(readonly h: Harness, readonly q: number, order: number) {
    this.size = 32 << order;
    this.gfns = Array.from({ length: 1 << order }, (_, i) => GNT_GFN + 128 + q * 16 + i);
    this.refs = this.gfns.map((_, i) => 400 + q * 16 + i);
    this.refs.forEach((ref, i) => { h.u8.fill(0, h.off(this.gfns[i]!), h.off(this.gfns[i]!) + PAGE); h.grant(ref, this.gfns[i]!); });
    // Writable indirect pages (persistent grants must be writable), one per slot of the first 32.
    for (let k = 0; k < 32; k++) h.grant(this.indRef(k), this.indGfn(k));
    h.dv.setUint32(h.off(this.gfns[0]!) + SRING_REQ_EVENT, 1, true);
    h.dv.setUint32(h.off(this.gfns[0]!) + SRING_RSP_EVENT, 1, true);
    this.port = q === 0 ? h.port : h.xen.evtchn.allocUnbound(0);
  }

  refsOfIndirect(n: number): number[] { return Array.from({ length: n }, (_, k) => this.indRef(k)); }
  indGfn(k: number): number { return GNT_GFN + 192 + this.q * 32 + k; }
  indRef(k: number): number { return 100 + this.q * 32 + k; }
  /** Buffer offset of byte v of the (virtually contiguous) ring. */
  at(v: number): number { return this.h.off(this.gfns[v >>> 12]!) + (v & (PAGE - 1)); }
  /** Whether slot i's entry straddles two pages. */
  straddles(i: number): boolean { const v = SRING_HEADER + i * BLKIF_ENTRY_SIZE; return (v & (PAGE - 1)) + BLKIF_ENTRY_SIZE > PAGE; }

  put(r: Req): void {
    const e = this.e, dv = this.ev;
    e.fill(0);
    e[0] = r.op;
    dv.setUint32(8, r.id ?? this.reqProd, true);
    dv.setUint32(12, 0xabc00000, true);
    dv.setUint32(16, r.sector ?? 0, true);
    const segs = r.segs ?? [];
    if (r.op === BLKIF_OP_INDIRECT) {
      const k = this.reqProd & 31;
      e[1] = r.indOp ?? BLKIF_OP_READ;
      dv.setUint16(2, r.nseg ?? segs.length, true);
      dv.setUint32(28, this.indRef(k), true);
      segs.forEach((s, i) => {
        const o = this.h.off(this.indGfn(k)) + i * 8;
        this.h.dv.setUint32(o, s.gref, true);
        this.h.u8[o + 4] = s.first;
        this.h.u8[o + 5] = s.last;
      });
    } else {
      e[1] = r.nseg ?? segs.length;
      segs.forEach((s, i) => { dv.setUint32(24 + i * 8, s.gref, true); e[28 + i * 8] = s.first; e[29 + i * 8] = s.last; });
    }
    const v = SRING_HEADER + (this.reqProd & (this.size - 1)) * BLKIF_ENTRY_SIZE;
    for (let i = 0; i < BLKIF_ENTRY_SIZE; i++) this.h.u8[this.at(v + i)] = e[i]!;
    this.reqProd++;
  }

  push(notify = true): void {
    Atomics.store(new Int32Array(this.h.ram), this.at(SRING_REQ_PROD) >> 2, this.reqProd | 0);
    if (notify) assert.equal(this.h.xen.evtchn.send(this.port), 0);
  }

  /** Responses published since the last call: [id, op, status]. Requests that waited for an I/O slot are
   * taken as the domain loop's service() would. */
  responses(): [number, number, number][] {
    for (let i = 0; i < 1000; i++) {
      assert.ok(this.h.back.drain(10_000));
      this.h.back.poll();
      if (this.h.back.inFlight === 0) break;
    }
    const out: [number, number, number][] = [];
    const prod = this.h.dv.getUint32(this.at(SRING_RSP_PROD), true);
    for (; this.rspCons !== prod; this.rspCons++) {
      const o = this.at(SRING_HEADER + (this.rspCons & (this.size - 1)) * BLKIF_ENTRY_SIZE);
      assert.equal(this.h.dv.getUint32(o + 4, true), 0xabc00000);
      out.push([this.h.dv.getUint32(o, true), this.h.u8[o + 8]!, this.h.dv.getInt16(o + 10, true)]);
    }
    return out;
  }

  one(r: Req): number {
    this.put(r);
    this.push();
    const rs = this.responses();
    assert.equal(rs.length, 1, this.h.logs.slice(-3).join(" | "));
    return rs[0]![2];
  }
}

/** The front-end keys for `queues` rings of 2^order pages (ring-page-order written when `order` is set). */
function connect(h: Harness, o: { queues?: number; order?: number; persistent?: boolean; keys?: Record<string, string> } = {}): FrontRing[] {
  const nq = o.queues ?? 1, order = o.order ?? 0;
  const rings = Array.from({ length: nq }, (_, q) => new FrontRing(h, q, order));
  const keys: Record<string, string> = { "ring-ref": "", "event-channel": "" };
  if (o.persistent ?? true) keys["feature-persistent"] = "1";
  if (nq > 1) keys["multi-queue-num-queues"] = String(nq);
  if (o.order !== undefined) keys["ring-page-order"] = String(order);
  for (const r of rings) {
    const dir = nq > 1 ? `queue-${r.q}/` : "";
    keys[`${dir}event-channel`] = String(r.port);
    if (o.order === undefined) keys[`${dir}ring-ref`] = String(r.refs[0]);
    else r.refs.forEach((ref, i) => { keys[`${dir}ring-ref${i}`] = String(ref); });
  }
  h.frontConnect({ ...keys, ...o.keys });
  return rings;
}

const withEnv = <T>(vars: Record<string, string>, f: () => T): T => {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try { return f(); } finally {
    for (const [k, v] of Object.entries(saved)) { if (v === undefined) delete process.env[k]; else process.env[k] = v; }
  }
};
const flags = (h: Harness, ref: number): number => h.dv.getUint16(h.xen.gnttab.entryOffset(ref), true);
const seg = (k: number, first = 0, last = 7): { gref: number; first: number; last: number } => ({ gref: dataRef(k), first, last });
const errorNode = (h: Harness): string => h.read(`/local/domain/0/error/${BACK.slice("/local/domain/0/".length)}/error`) ?? "";

test("feature-persistent: grants kept across requests (in use for the guest), data right, read-only refused, redirects ignored, released on disconnect", () => {
  const h = new Harness({ connect: false });
  try {
    assert.equal(h.read(`${BACK}/feature-persistent`), "1");
    const [fr] = connect(h);
    assert.equal(h.backState(), 4, h.logs.join("\n"));
    for (let k = 0; k < 8; k++) h.u8.set(patternBytes(PAGE, 50 + k), h.dataOff(k));
    assert.equal(fr!.one({ op: BLKIF_OP_WRITE, sector: 0, segs: [0, 1, 2, 3].map((k) => seg(k)) }), BLKIF_RSP_OKAY);
    assert.equal(fr!.one({ op: BLKIF_OP_READ, sector: 0, segs: [4, 5, 6, 7].map((k) => seg(k)) }), BLKIF_RSP_OKAY);
    for (let k = 0; k < 4; k++) assert.deepEqual(h.u8.subarray(h.dataOff(4 + k), h.dataOff(5 + k)), patternBytes(PAGE, 50 + k));
    assert.equal(h.back.persistentGrants, 8, "8 grants kept");
    assert.equal(h.xen.gnttab.pinned, 8);
    // Kept mapped: the guest's gnttab_end_foreign_access sees them in use.
    for (let k = 0; k < 8; k++) assert.equal(flags(h, dataRef(k)) & (GTF_reading | GTF_writing), GTF_reading | GTF_writing);
    // Reusing them keeps the count.
    assert.equal(fr!.one({ op: BLKIF_OP_WRITE, sector: 64, segs: [0, 1, 2, 3].map((k) => seg(k)) }), BLKIF_RSP_OKAY);
    assert.equal(h.back.persistentGrants, 8);
    // Persistent grants are mapped writable: a read-only grant is an error even for a WRITE, and is not kept.
    h.grant(dataRef(10), DATA_GFN + 10, { readonly: true });
    assert.equal(fr!.one({ op: BLKIF_OP_WRITE, sector: 0, segs: [seg(10)] }), BLKIF_RSP_ERROR);
    assert.equal(h.back.persistentGrants, 8);
    assert.equal(h.xen.gnttab.pinned, 8);
    // The guest redirects a kept grant to another frame: blkback keeps the page it mapped (as Xen's mapping).
    const page20 = h.u8.slice(h.dataOff(20), h.dataOff(21));
    h.grant(dataRef(4), DATA_GFN + 20);
    assert.equal(fr!.one({ op: BLKIF_OP_READ, sector: 64, segs: [seg(4)] }), BLKIF_RSP_OKAY);
    assert.deepEqual(h.u8.subarray(h.dataOff(4), h.dataOff(5)), patternBytes(PAGE, 50), "into the page mapped first");
    assert.deepEqual(h.u8.subarray(h.dataOff(20), h.dataOff(21)), page20, "the new frame untouched");
    // …and revoking it outright (flags 0, which gnttab_end_foreign_access would not do while in use) changes nothing.
    h.grant(dataRef(5), DATA_GFN + 5, { flags: 0 });
    assert.equal(fr!.one({ op: BLKIF_OP_READ, sector: 64, segs: [seg(5)] }), BLKIF_RSP_OKAY);
    // Disconnect: every kept grant unpinned, the guest's entries no longer in use.
    h.grant(dataRef(5), DATA_GFN + 5);
    h.frontWrite("state", "5");
    assert.equal(h.backState(), 5);
    assert.equal(h.xen.gnttab.pinned, 0);
    for (let k = 0; k < 8; k++) assert.equal(flags(h, dataRef(k)) & (GTF_reading | GTF_writing), 0, `ref ${dataRef(k)} released`);
    assert.equal(h.back.persistentGrants, null);
    // Reconnect (driver rebind): a fresh table.
    h.frontWrite("state", "1");
    assert.equal(h.backState(), 2);
    const [fr2] = connect(h);
    assert.equal(h.backState(), 4, h.logs.join("\n"));
    assert.equal(fr2!.one({ op: BLKIF_OP_READ, sector: 0, segs: [seg(9)] }), BLKIF_RSP_OKAY);
    assert.equal(h.back.persistentGrants, 1);
  } finally { h.done(); }
});

test("feature-persistent: at most 1056 grants per ring (the rest per request), a request in flight at disconnect keeps its grant until done; off by default", () => {
  const h = new Harness({ connect: false });
  try {
    for (let f = 1; f < 4; f++) assert.equal(h.xen.gnttab.mapFrame(f, GNT_GFN + 320 + f), 0);
    const [fr] = connect(h);
    // 6 indirect reads of 256 fresh refs each (512..2047), all onto the data pages.
    const refs = Array.from({ length: 1536 }, (_, i) => 512 + i);
    for (const ref of refs) h.grant(ref, DATA_GFN + (ref % NDATA));
    for (let b = 0; b < 6; b++) {
      const segs = refs.slice(b * 256, b * 256 + 256).map((gref) => ({ gref, first: 0, last: 0 }));
      assert.equal(fr!.one({ op: BLKIF_OP_INDIRECT, indOp: BLKIF_OP_READ, sector: 0, segs }), BLKIF_RSP_OKAY, h.logs.slice(-2).join("|"));
    }
    // The indirect page of slot k is kept too (Linux maps indirect pages persistently as well). The bound held;
    // a purge may have run since the overflow (serve, at most every 100 ms: 5 % of the bound, 52, fewer).
    const kept = h.back.persistentGrants!;
    assert.ok(kept <= MAX_PERSISTENT_GRANTS && kept >= MAX_PERSISTENT_GRANTS - 52, `${kept} kept`);
    assert.equal(h.xen.gnttab.pinned, kept, "the overflow's pins went back with their requests");
    const keptInd = fr!.refsOfIndirect(6).filter((ref) => (flags(h, ref) & GTF_reading) !== 0).length;
    const keptData = refs.filter((ref) => (flags(h, ref) & GTF_reading) !== 0).length;
    assert.equal(keptData + keptInd, kept, `every grant beyond the kept ones released (${keptInd} indirect pages kept)`);
    h.frontWrite("state", "6");
    assert.equal(h.xen.gnttab.pinned, 0);
  } finally { h.done(); }

  // Slow disk: the front-end goes away with a request in flight on a kept grant (I/O thread only).
  if (process.env.XENO_BLK_SYNC !== "1") {
  const s = withEnv({ XENO_BLK_TEST_DELAY_MS: "400:xeno-blk-" }, () => new Harness({ connect: false }));
  try {
    const [fr] = connect(s);
    fr!.put({ op: BLKIF_OP_WRITE, sector: 8, segs: [seg(3)] });
    fr!.push();
    assert.equal(s.back.inFlight, 1);
    s.frontWrite("state", "5");
    assert.equal(s.xen.gnttab.pinned, 1, "still in use by the request in flight");
    assert.ok(s.back.drain(5000));
    assert.equal(s.xen.gnttab.pinned, 0, "released when it completed");
    assert.equal(flags(s, dataRef(3)) & (GTF_reading | GTF_writing), 0);
  } finally { s.done(); }
  }

  // Off (the default, and XENO_BLK_PERSISTENT=0): not offered, a front-end's feature-persistent ignored, grants
  // pinned per request only.
  const o = withEnv({ XENO_BLK_PERSISTENT: "0" }, () => new Harness({ connect: false }));
  try {
    assert.equal(o.read(`${BACK}/feature-persistent`), null);
    const [fr] = connect(o, { persistent: true });
    assert.equal(fr!.one({ op: BLKIF_OP_WRITE, sector: 0, segs: [seg(1)] }), BLKIF_RSP_OKAY);
    assert.equal(o.back.persistentGrants, null);
    assert.equal(o.xen.gnttab.pinned, 0);
    o.grant(dataRef(2), DATA_GFN + 2, { readonly: true });
    assert.equal(fr!.one({ op: BLKIF_OP_WRITE, sector: 0, segs: [seg(2)] }), BLKIF_RSP_OKAY, "a read-only grant is fine for a WRITE without the feature");
  } finally { o.done(); }
});

test("persistent grants purged as Linux's purge_persistent_gnt: every 100 ms, idle ones after 60 s, 5 % of the bound after an overflow; never one in use", () => {
  const h = new Harness({ connect: false });
  try {
    assert.equal(h.xen.gnttab.mapFrame(1, GNT_GFN + 321), 0);
    const refs = Array.from({ length: 220 }, (_, i) => 512 + i);
    for (const ref of refs) h.grant(ref, DATA_GFN + (ref % NDATA));
    const pg = new PersistentGrants(h.xen.gnttab, 0, 200, 0);
    for (const ref of refs.slice(0, 200)) { assert.ok(pg.use(ref) >= 0); pg.put(pg.entry); }
    assert.equal(pg.count, 200);
    assert.equal(pg.use(refs[200]!), PGNT_FULL, "full: the caller maps it for the request only");
    assert.equal(pg.purge(50), 0, "not due before 100 ms");
    assert.equal(pg.purge(150), 10, "after the overflow: 5 % of 200");
    assert.equal(pg.count, 190);
    assert.equal(h.xen.gnttab.pinned, 190);
    // One in use (no put) survives the timeout; the idle rest go after 60 s.
    assert.ok(pg.use(refs[150]!) >= 0);
    const busy = pg.entry;
    assert.equal(pg.purge(150 + 60_100), 189);
    assert.equal(pg.count, 1);
    assert.equal(h.xen.gnttab.pinned, 1);
    pg.put(busy);
    pg.release();
    assert.equal(h.xen.gnttab.pinned, 0);
  } finally { h.done(); }
});

test("multi-page rings, orders 0..4: every slot (entries straddling pages included), two laps, data right; bad ring pages refused", () => {
  for (let order = 0; order <= 4; order++) {
    const h = new Harness({ connect: false });
    try {
      assert.equal(h.read(`${BACK}/max-ring-page-order`), "4");
      const [fr] = connect(h, { order, persistent: order % 2 === 0 });
      assert.equal(h.backState(), 4, h.logs.join("\n"));
      assert.equal(h.back.ringPageOrder, order);
      for (let k = 0; k < NDATA; k++) h.u8.set(patternBytes(PAGE, 700 + k), h.dataOff(k));
      const model = Buffer.from(h.image());
      let straddling = 0;
      for (let lap = 0; lap < 2; lap++) {
        for (let i = 0; i < fr!.size; i++) {
          const n = lap * fr!.size + i, k = n % NDATA, p = (n * 7) % 256;
          if (fr!.straddles(i)) straddling++;
          fr!.put({ op: i % 9 === 8 ? BLKIF_OP_FLUSH_DISKCACHE : BLKIF_OP_WRITE, id: n, sector: p * 8, segs: i % 9 === 8 ? [] : [seg(k)] });
          if (i % 9 !== 8) model.set(patternBytes(PAGE, 700 + k), p * PAGE);
        }
        fr!.push();
        const rs = fr!.responses();
        assert.equal(rs.length, fr!.size, `order ${order} lap ${lap}: ${h.logs.slice(-2).join(" | ")}`);
        assert.deepEqual(rs.map((x) => x[0]).sort((a, b) => a - b), Array.from({ length: fr!.size }, (_, i) => lap * fr!.size + i));
        assert.ok(rs.every((x) => x[2] === BLKIF_RSP_OKAY));
      }
      assert.ok(h.image().equals(model), `order ${order}: the image`);
      // (64 + 112·i crosses a page boundary first at entry 72: rings of 4 pages and more.)
      if (order >= 2) assert.ok(straddling > 0, "some entries straddle pages");
      assert.equal(h.back.stats.errors, 0);
    } finally { h.done(); }
  }
  const cases: [string, (h: Harness) => void, RegExp][] = [
    ["page 1 granted read-only", (h) => { const r = new FrontRing(h, 0, 1); h.grant(r.refs[1]!, r.gfns[1]!, { readonly: true });
      h.frontConnect({ "ring-ref": "", "ring-page-order": "1", "ring-ref0": String(r.refs[0]), "ring-ref1": String(r.refs[1]) }); }, /mapping ring-ref 401/],
    ["order 3 offered 0 (XENO_BLK_MAX_RING_ORDER=0)", (h) => h.frontConnect({ "ring-page-order": "3" }), /exceeds max:0/],
  ];
  for (const [what, f, re] of cases) {
    const h = withEnv({ XENO_BLK_MAX_RING_ORDER: what.includes("offered 0") ? "0" : "4" }, () => new Harness({ connect: false }));
    try {
      f(h);
      assert.equal(h.backState(), 5, what);
      assert.match(errorNode(h), re, what);
    } finally { h.done(); }
  }
  // A page of a 4-page ring revoked while connected: the device fails.
  const h = new Harness({ connect: false });
  try {
    const [fr] = connect(h, { order: 2 });
    h.grant(fr!.refs[3]!, fr!.gfns[3]!, { flags: 0 });
    fr!.put({ op: BLKIF_OP_FLUSH_DISKCACHE });
    fr!.push();
    assert.equal(h.backState(), 5);
    assert.match(errorNode(h), /revoked/);
  } finally { h.done(); }
});

test("multi-queue: multi-queue-max-queues = vCPUs; each queue answered on its own ring; bad queue setups refused; the ring budget shares the I/O slots", () => {
  const h = new Harness({ connect: false, vcpus: 2 });
  try {
    assert.equal(h.read(`${BACK}/multi-queue-max-queues`), "2");
    const [q0, q1] = connect(h, { queues: 2, order: 1 });
    assert.equal(h.backState(), 4, h.logs.join("\n"));
    assert.equal(h.back.queues, 2);
    for (let k = 0; k < 4; k++) h.u8.set(patternBytes(PAGE, 300 + k), h.dataOff(k));
    for (let i = 0; i < 4; i++) q0!.put({ op: BLKIF_OP_WRITE, id: 100 + i, sector: i * 8, segs: [seg(i)] });
    q0!.push();
    for (let i = 0; i < 4; i++) q1!.put({ op: BLKIF_OP_READ, id: 200 + i, sector: i * 8, segs: [seg(8 + i)] });
    q1!.push();
    assert.deepEqual(q0!.responses().map((x) => x[0]).sort(), [100, 101, 102, 103]);
    assert.deepEqual(q1!.responses().map((x) => x[0]).sort(), [200, 201, 202, 203]);
    for (let k = 0; k < 4; k++) assert.deepEqual(h.u8.subarray(h.dataOff(8 + k), h.dataOff(9 + k)), patternBytes(PAGE, 300 + k));
    assert.deepEqual(h.back.requestsPerQueue, [4, 4]);
    // Disconnect unbinds both channels.
    h.frontWrite("state", "6");
    assert.notEqual(h.xen.evtchn.state[q0!.port], 2);
    assert.notEqual(h.xen.evtchn.state[q1!.port], 2);
  } finally { h.done(); }

  const cases: [string, (h: Harness) => void, RegExp][] = [
    ["3 queues of 2", (h) => connect(h, { queues: 2, keys: { "multi-queue-num-queues": "3" } }), /requested 3 queues/],
    ["queue-1 on queue-0's port", (h) => connect(h, { queues: 2, keys: { "queue-1/event-channel": String(h.port) } }), /binding event-channel/],
    ["queue-1 ring-ref missing", (h) => connect(h, { queues: 2, keys: { "queue-1/ring-ref": "" } }), /reading queue-1\/ring-ref/],
  ];
  for (const [what, f, re] of cases) {
    const x = new Harness({ connect: false, vcpus: 2 });
    try {
      if (what === "queue-1 ring-ref missing") {
        // connect() writes queue-1/ring-ref; remove it as a front-end that forgot it.
        const rings = [new FrontRing(x, 0, 0), new FrontRing(x, 1, 0)];
        x.frontConnect({ "ring-ref": "", "event-channel": "", "multi-queue-num-queues": "2", "queue-0/ring-ref": String(rings[0]!.refs[0]),
          "queue-0/event-channel": String(rings[0]!.port), "queue-1/event-channel": String(rings[1]!.port) });
      } else f(x);
      assert.equal(x.backState(), 5, what);
      assert.match(errorNode(x), re, what);
      assert.ok(!x.back.connected);
      assert.notEqual(x.xen.evtchn.state[x.port], 2, `${what}: queue 0's port not left bound`);
    } finally { x.done(); }
  }
  assert.equal(withEnv({ XENO_BLK_MAX_QUEUES: "1" }, () => { const x = new Harness({ connect: false, vcpus: 2 }); try { return x.read(`${BACK}/multi-queue-max-queues`); } finally { x.done(); } }), "1");

  // Fairness: queue 0 full (512 requests), queue 1 with 4, one notification; a slow disk keeps every
  // taken request in flight, so what each ring got of the 32 I/O slots shows: both got their turn.
  if (process.env.XENO_BLK_SYNC === "1") return; // (synchronous: nothing stays in flight)
  const s = withEnv({ XENO_BLK_TEST_DELAY_MS: "20:xeno-blk-" }, () => new Harness({ connect: false, vcpus: 2 }));
  try {
    const [a, b] = connect(s, { queues: 2, order: 4 });
    for (let i = 0; i < a!.size; i++) a!.put({ op: BLKIF_OP_FLUSH_DISKCACHE, id: i });
    a!.push(false);
    for (let i = 0; i < 4; i++) b!.put({ op: BLKIF_OP_FLUSH_DISKCACHE, id: 1000 + i });
    b!.push();
    const [ta, tb] = s.back.requestsPerQueue;
    assert.equal(tb, 4, `queue 1 served at once (queue 0 took ${ta})`);
    assert.equal(ta! + tb!, 32, "the I/O slots filled");
    process.stderr.write(`# fairness: one pass took ${ta} of queue 0's 512 and ${tb} of queue 1's 4\n`);
    // (close() does not wait for the rest: the I/O thread drops it.)
  } finally { s.done(); }
});

test("ordering across queues: a flush on one queue is answered after a write taken before it on another, with the data in the image", () => {
  if (process.env.XENO_BLK_SYNC === "1") return; // (synchronous: each request completes before the next is taken)
  const h = withEnv({ XENO_BLK_TEST_DELAY_MS: "150:xeno-blk-" }, () => new Harness({ connect: false, vcpus: 2 }));
  try {
    const [q0, q1] = connect(h, { queues: 2 });
    h.u8.set(patternBytes(PAGE, 4242), h.dataOff(5));
    q0!.put({ op: BLKIF_OP_WRITE, id: 1, sector: 40, segs: [seg(5)] });
    q0!.push();
    q1!.put({ op: BLKIF_OP_FLUSH_DISKCACHE, id: 2 });
    q1!.push();
    assert.equal(h.back.inFlight, 2, "both with the I/O thread");
    // Wait for the flush's answer alone, then look at the write: the queue is served in submission order.
    let flushed = false;
    for (let i = 0; i < 100 && !flushed; i++) {
      h.back.drain(20);
      flushed = h.dv.getUint32(q1!.at(SRING_RSP_PROD), true) === 1;
      if (flushed) {
        assert.equal(h.dv.getUint32(q0!.at(SRING_RSP_PROD), true), 1, "the write was answered no later than the flush");
        assert.deepEqual(new Uint8Array(h.image().subarray(40 * 512, 40 * 512 + PAGE)), patternBytes(PAGE, 4242), "the write is in the image");
      }
    }
    assert.ok(flushed);
  } finally { h.done(); }
});

/** mulberry32. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FUZZ_SEED = 0x9e1f_0016, FUZZ_REQUESTS = 3000;

test(`fuzz: ${FUZZ_REQUESTS} requests (seed ${FUZZ_SEED.toString(16)}) on 2 queues × 4-page rings with persistent grants; hostile grants, redirects and revocations; the image and pages follow a model; memory outside granted pages unchanged; nothing pinned after disconnect`, () => {
  const DISK = 512 * 1024, SECTORS = DISK / 512;
  const h = new Harness({ bytes: DISK, connect: false, vcpus: 2 });
  try {
    const r = rng(FUZZ_SEED);
    const int = (n: number): number => Math.floor(r() * n);
    const rings = connect(h, { queues: 2, order: 2 });
    assert.equal(h.backState(), 4, h.logs.join("\n"));
    for (let k = 0; k < NDATA; k++) h.u8.set(patternBytes(PAGE, 900 + k), h.dataOff(k));
    const model = Buffer.from(h.image());
    // The model of the grants: per data ref, the page it names now and whether the entry is a writable grant
    // to dom0; `kept`: refs blkback keeps, with the page it mapped first.
    const cur = new Map<number, { page: number; ok: boolean }>();
    for (let k = 0; k < NDATA; k++) cur.set(dataRef(k), { page: k, ok: true });
    const RO = [60, 61], OTHER = 62, INVALID = 63;
    for (const ref of RO) h.grant(ref, DATA_GFN + ref - 40, { readonly: true }); // pages 20, 21
    h.grant(OTHER, DATA_GFN + 22, { dom: 9 });
    h.grant(INVALID, DATA_GFN + 23, { flags: 0 });
    // Kept per ring (each ring has its own table, as Linux's per-ring tree): ref → the page it was mapped at.
    const keptBy = [new Map<number, number>(), new Map<number, number>()];
    // Writable: the data pages, ring and indirect pages, and the grant frame (the test rewrites entries; pins
    // set GTF_reading/GTF_writing in them).
    const writable: [number, number][] = [[h.dataOff(0), h.dataOff(NDATA)], [h.off(GNT_GFN), h.off(GNT_GFN) + PAGE]];
    for (const fr of rings) {
      for (const g of fr.gfns) writable.push([h.off(g), h.off(g) + PAGE]);
      writable.push([h.off(fr.indGfn(0)), h.off(fr.indGfn(32))]);
    }
    const frozen = outside(h.u8, writable);
    const counts = { ok: 0, error: 0, redirects: 0, revocations: 0, restores: 0, batches: 0 };
    let done = 0;
    while (done < FUZZ_REQUESTS) {
      // Between batches, the guest plays with its grants.
      const x = r();
      const ref = dataRef(int(NDATA));
      if (x < 0.15) { const p = int(NDATA); h.grant(ref, DATA_GFN + p); cur.set(ref, { page: p, ok: true }); counts.redirects++; }
      else if (x < 0.25) { h.grant(ref, DATA_GFN + cur.get(ref)!.page, { flags: 0 }); cur.get(ref)!.ok = false; counts.revocations++; }
      else if (x < 0.4) { h.grant(ref, DATA_GFN + cur.get(ref)!.page); cur.get(ref)!.ok = true; counts.restores++; }
      const fr = rings[int(2)]!, kept = keptBy[fr.q]!;
      const batch = 1 + int(32);
      const reqs: { req: Req; valid: boolean; pages: number[] }[] = [];
      for (let b = 0; b < batch && done + reqs.length < FUZZ_REQUESTS; b++) {
        const kind = int(10);
        if (kind === 0) { reqs.push({ req: { op: BLKIF_OP_FLUSH_DISKCACHE, id: int(0xffffffff) }, valid: true, pages: [] }); continue; }
        const indirect = kind >= 7, write = r() < 0.5, hostile = r() < 0.3;
        const nseg = hostile && r() < 0.15 ? (indirect ? 257 + int(100) : 12 + int(50)) : 1 + int(indirect ? 40 : 11);
        const segs: { gref: number; first: number; last: number }[] = [];
        let sectors = 0, valid = nseg <= (indirect ? 256 : 11);
        const pages: number[] = [];
        // Validity follows blkback's order: segments are mapped one by one; the first bad one stops the
        // request, and grants mapped before it stay kept.
        let stopped = !valid;
        for (let i = 0; i < Math.min(nseg, indirect ? 256 : 11); i++) {
          let first = int(8), last = first + int(8 - first);
          let gref = dataRef(int(NDATA));
          if (hostile && r() < 0.15) { first = 3 + int(10); last = int(12); }
          const y = r();
          if (hostile && y < 0.1) gref = RO[int(2)]!;
          else if (hostile && y < 0.15) gref = OTHER;
          else if (hostile && y < 0.2) gref = INVALID;
          else if (hostile && y < 0.25) gref = 5000 + int(1 << 20);
          segs.push({ gref, first, last });
          sectors += last - first + 1;
          if (stopped) continue;
          if (last > 7 || first > last) { valid = false; stopped = true; continue; }
          let page = kept.get(gref);
          if (page === undefined) {
            const c = cur.get(gref);
            if (c === undefined || !c.ok) { valid = false; stopped = true; continue; }
            page = c.page;
            kept.set(gref, page);
          }
          pages.push(page);
        }
        const sector = hostile && r() < 0.2 ? SECTORS - int(8) : int(SECTORS - sectors + 1);
        if (sector + sectors > SECTORS) valid = false;
        const req: Req = indirect ? { op: BLKIF_OP_INDIRECT, indOp: write ? BLKIF_OP_WRITE : BLKIF_OP_READ, nseg, segs, sector }
          : { op: write ? BLKIF_OP_WRITE : BLKIF_OP_READ, nseg, segs, sector };
        req.id = int(0xffffffff);
        reqs.push({ req, valid, pages });
      }
      const shadow = h.u8.slice(h.dataOff(0), h.dataOff(NDATA));
      for (const { req } of reqs) fr.put(req);
      fr.push();
      const rs = fr.responses();
      assert.equal(rs.length, reqs.length);
      const answered = new Set<number>();
      for (const [id, , status] of rs) {
        const i = reqs.findIndex((q, k) => !answered.has(k) && (q.req.id! >>> 0) === id);
        assert.ok(i >= 0);
        answered.add(i);
        assert.equal(status, reqs[i]!.valid ? BLKIF_RSP_OKAY : BLKIF_RSP_ERROR, `request ${done + i}: ${JSON.stringify(reqs[i]!.req)} ${h.logs.slice(-2).join(" | ")}`);
        if (status === BLKIF_RSP_OKAY) counts.ok++; else counts.error++;
      }
      for (const { req, valid, pages } of reqs) {
        if (!valid || req.op === BLKIF_OP_FLUSH_DISKCACHE) continue;
        const rw = req.op === BLKIF_OP_INDIRECT ? req.indOp : req.op;
        let pos = req.sector! * 512;
        req.segs!.forEach((sg, i) => {
          const a = pages[i]! * PAGE + sg.first * 512, n = (sg.last - sg.first + 1) * 512;
          if (rw === BLKIF_OP_READ) shadow.set(model.subarray(pos, pos + n), a);
          else model.set(shadow.subarray(a, a + n), pos);
          pos += n;
        });
      }
      const now = Buffer.from(h.u8.subarray(h.dataOff(0), h.dataOff(NDATA)));
      if (!now.equals(shadow)) {
        const bad = [...Array(NDATA).keys()].filter((p) => !now.subarray(p * PAGE, (p + 1) * PAGE).equals(shadow.subarray(p * PAGE, (p + 1) * PAGE)));
        assert.fail(`data pages ${bad.join(",")} after request ${done}: ${JSON.stringify(reqs.map((q) => [q.req.op, q.req.indOp, q.valid, q.pages, q.req.segs?.map((x) => x.gref)]))} kept ${JSON.stringify([...kept])}`);
      }
      done += reqs.length;
      counts.batches++;
    }
    assert.ok(h.image().equals(model), "the image matches the model");
    assert.deepEqual(outside(h.u8, writable), frozen, "memory outside writable granted pages unchanged");
    // Kept: the data refs used plus the indirect pages.
    const pg = h.back.persistentGrants!, keptData = keptBy[0]!.size + keptBy[1]!.size;
    assert.ok(pg >= keptData && pg <= keptData + 64, `${pg} kept, model ${keptData} data refs`);
    const perQueue = h.back.requestsPerQueue;
    assert.ok(perQueue.every((n) => n > 500), `both queues served: ${perQueue.join(", ")}`);
    h.frontWrite("state", "6");
    assert.equal(h.xen.gnttab.pinned, 0, "nothing pinned after disconnect");
    process.stderr.write(`# fuzz seed ${FUZZ_SEED.toString(16)}: ${done} requests in ${counts.batches} batches: ${counts.ok} ok, ${counts.error} refused; ` +
      `${counts.redirects} redirects, ${counts.revocations} revocations, ${counts.restores} re-grants; ${pg} persistent grants at the end; per queue ${perQueue.join(", ")}\n`);
  } finally { h.done(); }
});

/** The restore path for a Harness: its domain over a copy of the RAM (ring ports detached), the device's nodes
 * in a new store, BlkBack.restore. */
function restoreCopy(h: Harness, st: BlkBackState, vcpus: number): { back: BlkBack; xen: XenDomain } {
  const xs = h.xen.save();
  const ram = new SharedArrayBuffer(h.ram.byteLength);
  new Uint8Array(ram).set(h.u8);
  const xen = new XenDomain({ ram, ramBase: BASE, vcpus, host: new FakeHost(), domid: DOMID, store: "none", restoring: true });
  xen.restore(structuredClone(xs));
  const store = new XenStore();
  const a = h.store.connect(0, () => {}), b = store.connect(0, () => {});
  const walk = (p: string): void => {
    store.write(b, null, p, h.store.read(a, null, p));
    store.setPerms(b, null, p, h.store.getPerms(a, null, p));
    for (const c of h.store.directory(a, null, p)) walk(`${p}/${c}`);
  };
  walk("/local/domain");
  return { back: BlkBack.restore({ xen, store, config: { path: h.path, devid: DEVID, vdev: "xvda", readOnly: false }, log: () => {} }, structuredClone(st)), xen };
}

test("save/restore: 2 queues × 4-page rings with persistent grants (re-pinned on restore); version 1 states still read", () => {
  const h = new Harness({ connect: false, vcpus: 2 });
  try {
    const [q0, q1] = connect(h, { queues: 2, order: 2 });
    assert.equal(q0!.one({ op: BLKIF_OP_WRITE, sector: 0, segs: [seg(0), seg(1)] }), BLKIF_RSP_OKAY);
    assert.equal(q1!.one({ op: BLKIF_OP_READ, sector: 0, segs: [seg(2)] }), BLKIF_RSP_OKAY);
    const st = h.back.save();
    assert.equal(st.version, 2);
    assert.equal(st.persistent, true);
    assert.equal(st.ringOrder, 2);
    assert.deepEqual(st.rings.map((r) => [r.ringRefs, r.port, r.pgrants]), [[q0!.refs, q0!.port, [dataRef(0), dataRef(1)]], [q1!.refs, q1!.port, [dataRef(2)]]]);
    const { back, xen } = restoreCopy(h, st, 2);
    try {
      assert.equal(back.queues, 2);
      assert.equal(back.persistentGrants, 3);
      assert.equal(xen.gnttab.pinned, 3, "the persistent grants pinned again");
      assert.deepEqual(back.save(), st);
    } finally { back.close(); }
    assert.equal(xen.gnttab.pinned, 0, "released at close");
    // A host that offers less than the state needs refuses it (before anything is opened or attached).
    assert.throws(() => withEnv({ XENO_BLK_MAX_QUEUES: "1" }, () => restoreCopy(h, st, 2)), (e: unknown) => e instanceof StateError && e.field === "rings");
    assert.throws(() => withEnv({ XENO_BLK_MAX_RING_ORDER: "1" }, () => restoreCopy(h, st, 2)), (e: unknown) => e instanceof StateError && e.field === "ringOrder");
    assert.throws(() => withEnv({ XENO_BLK_PERSISTENT: "0" }, () => restoreCopy(h, st, 2)), (e: unknown) => e instanceof StateError && e.field === "persistent");
  } finally { h.done(); }

  // Version 1 (one single-page ring, no persistent grants): read as version 2.
  const v = new Harness({ connect: false });
  try {
    const [fr] = connect(v, { persistent: false });
    assert.equal(fr!.one({ op: BLKIF_OP_FLUSH_DISKCACHE }), BLKIF_RSP_OKAY);
    const st = v.back.save();
    const r = st.rings[0]!;
    const v1 = { version: 1, devid: st.devid, vdev: st.vdev, readOnly: st.readOnly, sectors: st.sectors, connected: true,
      ring: { ringRef: r.ringRefs[0], port: r.port, reqCons: r.reqCons, rspProdPvt: r.rspProdPvt }, stats: st.stats, loggedErrors: st.loggedErrors };
    const { back } = restoreCopy(v, v1 as unknown as BlkBackState, 1);
    try { assert.deepEqual(back.save(), st); } finally { back.close(); }
  } finally { v.done(); }
});
