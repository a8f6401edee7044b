/**
 * Unit tests of blkback with a crafted guest: a XenDomain over an 8 MiB SharedArrayBuffer (a fake host), a
 * grant frame the test fills as a guest's gnttab would, a blkif ring page the test produces requests on, an
 * unbound event channel, and the front-end's XenStore keys written from a domain-5 session. The image is a
 * temporary file; every check compares it (and the guest memory) byte for byte.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { XenDomain } from "../../src/xen/domain.js";
import { XenStore } from "../../src/xenstore/index.js";
import { attachBlkBack, BlkError } from "../../src/backends/blk/index.js";
import { BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_RESERVED_1,
  BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER, BLKIF_RING_SIZE, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY,
  SRING_REQ_EVENT, SRING_REQ_PROD, SRING_RSP_EVENT,
  VDISK_READONLY } from "../../src/backends/blk/blkif.js";
import { GTF_permit_access } from "../../src/xen/grant-table.js";
import { BACK, BASE, DATA_GFN, DEVID, DOMID, FakeHost, FRONT, Harness, IND_GFN, NDATA, PAGE, RAM, RING_GFN, RING_REF,
  dataRef, md5, outside, patternBytes, type Req, type Seg } from "./blk-harness.js";

test("attach: clear errors for a missing image, a directory, a bad size", () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-blk-"));
  try {
    const xen = new XenDomain({ ram: new SharedArrayBuffer(RAM), ramBase: BASE, vcpus: 1, host: new FakeHost(), domid: DOMID, store: "none" });
    const store = new XenStore();
    const attach = (path: string, devid = DEVID, vdev = "xvda"): unknown => {
      try { attachBlkBack(xen, store, { path, devid, vdev, readOnly: false }, () => {}); return null; }
      catch (e) { return e; }
    };
    const code = (e: unknown): string => (e instanceof BlkError ? e.code : `not a BlkError: ${String(e)}`);
    assert.equal(code(attach(join(dir, "absent.img"))), "EBLK_NO_IMAGE");
    mkdirSync(join(dir, "d"));
    assert.equal(code(attach(join(dir, "d"))), "EBLK_NOT_FILE");
    assert.match(String(attach(join(dir, "d"))), /is a directory/);
    writeFileSync(join(dir, "odd.img"), new Uint8Array(1000));
    assert.equal(code(attach(join(dir, "odd.img"))), "EBLK_BAD_SIZE");
    assert.match(String(attach(join(dir, "odd.img"))), /size 1000 is not a positive multiple of 512/);
    writeFileSync(join(dir, "empty.img"), new Uint8Array(0));
    assert.equal(code(attach(join(dir, "empty.img"))), "EBLK_BAD_SIZE");
    writeFileSync(join(dir, "ok.img"), new Uint8Array(4096));
    assert.equal(code(attach(join(dir, "ok.img"), 0)), "EBLK_CONFIG");
    assert.equal(code(attach(join(dir, "ok.img"), DEVID, "../x")), "EBLK_CONFIG");
    // None of the failures left a device behind.
    const s = store.connect(0, () => {});
    assert.throws(() => store.read(s, null, `/local/domain/0/backend/vbd/${DOMID}/${DEVID}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("XenStore: the keys libxl and blkback write, InitWait, then Connected on the front-end's Initialised", () => {
  const h = new Harness({ bytes: 3 << 20, connect: false });
  try {
    const b = (k: string): string | null => h.read(`${BACK}/${k}`);
    assert.equal(b("params"), h.path);
    assert.equal(b("type"), "file");
    assert.equal(b("mode"), "w");
    assert.equal(b("dev"), "xvda");
    assert.equal(b("device-type"), "disk");
    assert.equal(b("removable"), "0");
    assert.equal(b("bootable"), "1");
    assert.equal(b("frontend"), FRONT);
    assert.equal(b("frontend-id"), String(DOMID));
    assert.equal(b("sectors"), String((3 << 20) / 512));
    assert.equal(b("info"), "0");
    assert.equal(b("sector-size"), "512");
    assert.equal(b("physical-sector-size"), "512");
    assert.equal(b("feature-flush-cache"), "1");
    assert.equal(b("feature-barrier"), "1");
    assert.equal(b("feature-discard"), "1");
    assert.equal(b("discard-granularity"), "512");
    assert.equal(b("discard-alignment"), "0");
    assert.equal(b("discard-secure"), "0");
    assert.equal(b("max-ring-page-order"), "4");
    assert.equal(b("multi-queue-max-queues"), "1", "one queue per vCPU");
    assert.equal(b("feature-persistent"), null, "not offered by default (XENO_BLK_PERSISTENT=1 offers it)");
    assert.equal(b("feature-max-indirect-segments"), "256");
    assert.equal(h.read(`${FRONT}/virtual-device`), String(DEVID));
    assert.equal(h.read(`${FRONT}/device-type`), "disk");
    assert.equal(h.read(`${FRONT}/backend-id`), "0");
    assert.equal(h.backState(), 2);
    assert.ok(!h.back.connected);
    h.frontConnect();
    assert.equal(h.backState(), 4);
    assert.ok(h.back.connected);
    assert.equal(h.xen.evtchn.state[h.port], 2 /* ECS_INTERDOMAIN */);
  } finally { h.done(); }
});

test("read, write, flush, barrier and discard round trips against the image file", () => {
  const h = new Harness({ bytes: 1 << 20 });
  try {
    const orig = h.image();
    // WRITE of two segments: sectors 2..7 of page 0, then 0..3 of page 1 → 10 sectors at sector 100.
    const src0 = patternBytes(PAGE, 11), src1 = patternBytes(PAGE, 12);
    h.u8.set(src0, h.dataOff(0));
    h.u8.set(src1, h.dataOff(1));
    assert.equal(h.one({ op: BLKIF_OP_WRITE, sector: 100, segs: [{ gref: dataRef(0), first: 2, last: 7 }, { gref: dataRef(1), first: 0, last: 3 }] }), BLKIF_RSP_OKAY);
    const img = h.image();
    const expect = Buffer.concat([src0.subarray(1024, 4096), src1.subarray(0, 2048)]);
    assert.ok(img.subarray(100 * 512, 110 * 512).equals(expect));
    assert.ok(img.subarray(0, 100 * 512).equals(orig.subarray(0, 100 * 512)));
    assert.ok(img.subarray(110 * 512).equals(orig.subarray(110 * 512)));
    assert.equal(h.back.stats.bytesWritten, 10 * 512);

    // READ it back into pages 2 and 3 at other sector offsets; bytes outside the named sectors stay.
    h.u8.fill(0xee, h.dataOff(2), h.dataOff(4));
    const before = h.u8.slice();
    assert.equal(h.one({ op: BLKIF_OP_READ, sector: 100, segs: [{ gref: dataRef(2), first: 5, last: 7 }, { gref: dataRef(3), first: 1, last: 7 }] }), BLKIF_RSP_OKAY);
    assert.ok(Buffer.from(h.u8.subarray(h.dataOff(2) + 5 * 512, h.dataOff(3))).equals(expect.subarray(0, 3 * 512)));
    assert.ok(Buffer.from(h.u8.subarray(h.dataOff(3) + 512, h.dataOff(4))).equals(expect.subarray(3 * 512)));
    const ring = h.off(RING_GFN);
    assert.deepEqual(outside(h.u8, [[h.dataOff(2) + 5 * 512, h.dataOff(3)], [h.dataOff(3) + 512, h.dataOff(4)], [ring, ring + PAGE]]),
      outside(before, [[h.dataOff(2) + 5 * 512, h.dataOff(3)], [h.dataOff(3) + 512, h.dataOff(4)], [ring, ring + PAGE]]));
    assert.equal(h.u8[h.dataOff(2) + 5 * 512 - 1], 0xee);
    assert.equal(h.u8[h.dataOff(3) + 511], 0xee);

    // 11 full pages (the most a request carries), the last sector of the disk included.
    const last = (1 << 20) / 512 - 88;
    for (let k = 0; k < 11; k++) h.u8.set(patternBytes(PAGE, 100 + k), h.dataOff(k));
    const big = Buffer.from(h.u8.subarray(h.dataOff(0), h.dataOff(11)));
    const full = Array.from({ length: 11 }, (_, k) => ({ gref: dataRef(k), first: 0, last: 7 }));
    assert.equal(h.one({ op: BLKIF_OP_WRITE, sector: last, segs: full }), BLKIF_RSP_OKAY);
    assert.ok(h.image().subarray(last * 512).equals(big));
    h.u8.fill(0, h.dataOff(0), h.dataOff(11));
    assert.equal(h.one({ op: BLKIF_OP_READ, sector: last, segs: full }), BLKIF_RSP_OKAY);
    assert.ok(Buffer.from(h.u8.subarray(h.dataOff(0), h.dataOff(11))).equals(big));

    // Pure flush and barrier (no segments); a flush carrying data is a write.
    assert.equal(h.one({ op: BLKIF_OP_FLUSH_DISKCACHE }), BLKIF_RSP_OKAY);
    assert.equal(h.one({ op: BLKIF_OP_WRITE_BARRIER }), BLKIF_RSP_OKAY);
    h.u8.set(patternBytes(PAGE, 77), h.dataOff(5));
    assert.equal(h.one({ op: BLKIF_OP_FLUSH_DISKCACHE, sector: 8, segs: [{ gref: dataRef(5), first: 0, last: 7 }] }), BLKIF_RSP_OKAY);
    assert.ok(h.image().subarray(8 * 512, 16 * 512).equals(patternBytes(PAGE, 77)));
    h.u8.set(patternBytes(PAGE, 78), h.dataOff(5));
    assert.equal(h.one({ op: BLKIF_OP_WRITE_BARRIER, sector: 16, segs: [{ gref: dataRef(5), first: 0, last: 0 }] }), BLKIF_RSP_OKAY);
    assert.ok(h.image().subarray(16 * 512, 17 * 512).equals(patternBytes(PAGE, 78).subarray(0, 512)));

    // DISCARD inside the disk: zeros there, nothing else moves; to the end: zeros, same size.
    const pre = h.image();
    assert.equal(h.one({ op: BLKIF_OP_DISCARD, sector: 50, count: 300 }), BLKIF_RSP_OKAY);
    const post = h.image();
    assert.ok(post.subarray(50 * 512, 350 * 512).every((x) => x === 0));
    assert.ok(post.subarray(0, 50 * 512).equals(pre.subarray(0, 50 * 512)));
    assert.ok(post.subarray(350 * 512).equals(pre.subarray(350 * 512)));
    assert.equal(h.one({ op: BLKIF_OP_DISCARD, sector: 2000, count: 2048 - 2000 }), BLKIF_RSP_OKAY);
    assert.equal(statSync(h.path).size, 1 << 20);
    assert.ok(h.image().subarray(2000 * 512).every((x) => x === 0));
    assert.ok(h.image().subarray(350 * 512, 2000 * 512).equals(pre.subarray(350 * 512, 2000 * 512)));
    assert.equal(h.one({ op: BLKIF_OP_DISCARD, sector: 10, count: 0 }), BLKIF_RSP_OKAY);

    // Unknown and unoffered operations.
    for (const op of [BLKIF_OP_RESERVED_1, 7, 99, 255]) assert.equal(h.one({ op }), BLKIF_RSP_EOPNOTSUPP);
    const s = h.back.stats;
    assert.equal(s.errors, 0);
    assert.equal(s.unsupported, 4);
    assert.equal(s.discards, 3);
    assert.equal(s.flushes, 4);
    // Each request asked for a notification and got one; the back-end re-armed req_event.
    assert.ok(h.xen.sharedInfo.isPending(h.port));
    assert.equal(h.ring(SRING_REQ_EVENT), h.reqProd + 1);
  } finally { h.done(); }
});

test("indirect requests: feature-max-indirect-segments 256; 32- and 256-segment reads and writes; hostile ones refused", () => {
  const h = new Harness({ bytes: 1 << 20 });
  try {
    assert.equal(h.read(`${BACK}/feature-max-indirect-segments`), "256");
    const orig = h.image();
    // WRITE of 32 whole pages (128 KiB, what Linux's blkfront sends) at sector 64, pages in reverse order.
    for (let k = 0; k < NDATA; k++) h.u8.set(patternBytes(PAGE, 300 + k), h.dataOff(k));
    const segs32 = Array.from({ length: NDATA }, (_, k) => ({ gref: dataRef(NDATA - 1 - k), first: 0, last: 7 }));
    assert.equal(h.one({ op: BLKIF_OP_INDIRECT, indOp: BLKIF_OP_WRITE, sector: 64, segs: segs32 }), BLKIF_RSP_OKAY);
    const expect = Buffer.concat(Array.from({ length: NDATA }, (_, k) => Buffer.from(patternBytes(PAGE, 300 + NDATA - 1 - k))));
    const img = h.image();
    assert.ok(img.subarray(64 * 512, 64 * 512 + NDATA * PAGE).equals(expect));
    assert.ok(img.subarray(0, 64 * 512).equals(orig.subarray(0, 64 * 512)));
    assert.ok(img.subarray(64 * 512 + NDATA * PAGE).equals(orig.subarray(64 * 512 + NDATA * PAGE)));
    // READ it back with partial-page segments: 256 segments of one sector each (the most), 8 per page.
    h.u8.fill(0, h.dataOff(0), h.dataOff(NDATA));
    const segs256 = Array.from({ length: 256 }, (_, i) => ({ gref: dataRef(i >> 3), first: i & 7, last: i & 7 }));
    assert.equal(h.one({ op: BLKIF_OP_INDIRECT, indOp: BLKIF_OP_READ, sector: 64, segs: segs256 }), BLKIF_RSP_OKAY);
    assert.ok(Buffer.from(h.u8.subarray(h.dataOff(0), h.dataOff(NDATA))).equals(expect));
    assert.equal(h.back.stats.indirect, 2);
    assert.equal(h.back.stats.bytesRead, NDATA * PAGE);

    // Hostile: nothing moves, each gets BLKIF_RSP_ERROR and the device stays connected.
    h.grant(40, IND_GFN, { dom: 3 });          // indirect page granted to another domain
    h.grant(41, IND_GFN, { flags: 0 });         // not a grant
    const before = h.u8.slice(), img2 = h.image();
    const one = (i: number): Seg[] => Array.from({ length: i }, (_, k) => ({ gref: dataRef(k % NDATA), first: 0, last: 7 }));
    const cases: [string, Req][] = [
      ["0 segments", { op: BLKIF_OP_INDIRECT, indOp: BLKIF_OP_READ, nseg: 0 }],
      ["257 segments", { op: BLKIF_OP_INDIRECT, indOp: BLKIF_OP_READ, nseg: 257, segs: one(257) }],
      ["65535 segments", { op: BLKIF_OP_INDIRECT, indOp: BLKIF_OP_WRITE, nseg: 65535 }],
      ["indirect_op FLUSH", { op: BLKIF_OP_INDIRECT, indOp: BLKIF_OP_FLUSH_DISKCACHE, segs: one(4) }],
      ["indirect_op INDIRECT", { op: BLKIF_OP_INDIRECT, indOp: BLKIF_OP_INDIRECT, segs: one(4) }],
      ["indirect page of another domain", { op: BLKIF_OP_INDIRECT, indOp: BLKIF_OP_READ, segs: one(4), indRefs: [40] }],
      ["indirect page not granted", { op: BLKIF_OP_INDIRECT, indOp: BLKIF_OP_READ, segs: one(4), indRefs: [41] }],
      ["indirect ref out of range", { op: BLKIF_OP_INDIRECT, indOp: BLKIF_OP_READ, segs: one(4), indRefs: [0xffffffff] }],
      ["a bad segment among 40", { op: BLKIF_OP_INDIRECT, indOp: BLKIF_OP_READ, segs: [...one(39), { gref: dataRef(1), first: 6, last: 8 }] }],
      ["a foreign data grant", { op: BLKIF_OP_INDIRECT, indOp: BLKIF_OP_WRITE, segs: [...one(3), { gref: 40, first: 0, last: 7 }] }],
      ["past the end of the disk", { op: BLKIF_OP_INDIRECT, indOp: BLKIF_OP_READ, sector: 2048 - 8 * 31, segs: one(32) }],
    ];
    for (const [what, r] of cases) assert.equal(h.one(r), BLKIF_RSP_ERROR, what);
    const ind = [h.off(IND_GFN), h.off(IND_GFN + BLKIF_RING_SIZE)] as [number, number], ring = [h.off(RING_GFN), h.off(RING_GFN) + PAGE] as [number, number];
    assert.deepEqual(outside(h.u8, [ind, ring]), outside(before, [ind, ring]));
    assert.ok(h.image().equals(img2));
    assert.ok(h.back.connected);
    // A read-only disk refuses indirect writes too.
    const ro = new Harness({ readOnly: true });
    try {
      assert.equal(ro.one({ op: BLKIF_OP_INDIRECT, indOp: BLKIF_OP_WRITE, segs: one(12) }), BLKIF_RSP_ERROR);
      assert.equal(ro.one({ op: BLKIF_OP_INDIRECT, indOp: BLKIF_OP_READ, segs: one(12) }), BLKIF_RSP_OKAY);
    } finally { ro.done(); }
  } finally { h.done(); }
});

test("notification hold-off: batched requests, rsp_event respected, req_event re-armed", () => {
  const h = new Harness();
  try {
    h.xen.sharedInfo.clearPending(h.port);
    // The guest is not waiting for responses (rsp_event far ahead): answers but no event.
    h.dv.setUint32(h.off(RING_GFN) + SRING_RSP_EVENT, 1000, true);
    for (let i = 0; i < BLKIF_RING_SIZE; i++) h.put({ op: BLKIF_OP_READ, sector: i, segs: [{ gref: dataRef(i % NDATA), first: 0, last: 0 }] });
    h.push();
    const rs = h.responses();
    assert.equal(rs.length, BLKIF_RING_SIZE);
    assert.ok(rs.every(([id, op, st], i) => id === i && op === BLKIF_OP_READ && st === BLKIF_RSP_OKAY));
    assert.ok(!h.xen.sharedInfo.isPending(h.port));
    // Wrap-around: the next batch uses the same slots again; now the guest waits for the 3rd response.
    h.dv.setUint32(h.off(RING_GFN) + SRING_RSP_EVENT, h.rspCons + 3, true);
    for (let i = 0; i < 5; i++) h.put({ op: BLKIF_OP_FLUSH_DISKCACHE });
    h.push();
    assert.equal(h.responses().length, 5);
    assert.ok(h.xen.sharedInfo.isPending(h.port));
    assert.equal(h.ring(SRING_REQ_EVENT), h.reqProd + 1);
    // Requests published without a notification are served by poll().
    h.put({ op: BLKIF_OP_FLUSH_DISKCACHE });
    Atomics.store(new Int32Array(h.ram), (h.off(RING_GFN) + SRING_REQ_PROD) >> 2, h.reqProd);
    assert.equal(h.responses().length, 0);
    h.back.poll();
    assert.equal(h.responses().length, 1);
  } finally { h.done(); }
});

test("read-only disk: writes, barriers and discards refused, the image byte-identical; reads and flushes work", () => {
  const content = patternBytes(256 * 1024, 3);
  const h = new Harness({ readOnly: true, content });
  try {
    assert.equal(h.read(`${BACK}/mode`), "r");
    assert.equal(h.read(`${BACK}/info`), String(VDISK_READONLY));
    assert.equal(h.read(`${BACK}/feature-discard`), null);
    const sum = md5(h.image());
    h.u8.set(patternBytes(PAGE, 9), h.dataOff(0));
    const seg = [{ gref: dataRef(0), first: 0, last: 7 }];
    assert.equal(h.one({ op: BLKIF_OP_WRITE, sector: 0, segs: seg }), BLKIF_RSP_ERROR);
    assert.equal(h.one({ op: BLKIF_OP_WRITE_BARRIER, sector: 0, segs: seg }), BLKIF_RSP_ERROR);
    assert.equal(h.one({ op: BLKIF_OP_WRITE_BARRIER }), BLKIF_RSP_ERROR);
    assert.equal(h.one({ op: BLKIF_OP_FLUSH_DISKCACHE, sector: 0, segs: seg }), BLKIF_RSP_ERROR);
    assert.equal(h.one({ op: BLKIF_OP_DISCARD, sector: 0, count: 8 }), BLKIF_RSP_ERROR);
    assert.equal(h.one({ op: BLKIF_OP_FLUSH_DISKCACHE }), BLKIF_RSP_OKAY);
    assert.equal(h.one({ op: BLKIF_OP_READ, sector: 8, segs: seg }), BLKIF_RSP_OKAY);
    assert.ok(Buffer.from(h.u8.subarray(h.dataOff(0), h.dataOff(1))).equals(content.subarray(8 * 512, 16 * 512)));
    // A READ writes into the guest's page: a read-only grant is refused for it.
    h.grant(dataRef(1), DATA_GFN + 1, { readonly: true });
    assert.equal(h.one({ op: BLKIF_OP_READ, sector: 8, segs: [{ gref: dataRef(1), first: 0, last: 7 }] }), BLKIF_RSP_ERROR);
    assert.equal(md5(h.image()), sum);
    assert.equal(h.back.stats.errors, 6);
    assert.equal(h.back.stats.bytesWritten, 0);
  } finally { h.done(); }
});

test("hostile requests: bad grants, sector ranges and segment counts get BLKIF_RSP_ERROR, nothing changes", () => {
  const h = new Harness();
  try {
    const img = h.image();
    // Grants: other domain, read-only (for a READ), invalid type, sub-page, a frame outside RAM, an unmapped
    // grant frame's ref, out of range refs.
    h.grant(100, DATA_GFN + 6, { dom: 3 });
    h.grant(101, DATA_GFN + 6, { readonly: true });
    h.grant(102, DATA_GFN + 6, { flags: 0 });
    h.grant(103, DATA_GFN + 6, { flags: GTF_permit_access | (1 << 8) });
    h.grant(104, 0x10, {});                       // below RAM
    h.grant(105, (BASE + RAM) / PAGE - 1, {});    // the Xen area at the top of the buffer, not guest RAM
    h.grant(106, 0xffffffff, {});
    h.u8.fill(0x5a, h.dataOff(6), h.dataOff(7));
    const before = h.u8.slice();
    const ring = h.off(RING_GFN);
    const rd = (gref: number, first = 0, last = 7, sector = 0): Req => ({ op: BLKIF_OP_READ, sector, segs: [{ gref, first, last }] });
    const wr = (gref: number, first = 0, last = 7, sector = 0): Req => ({ op: BLKIF_OP_WRITE, sector, segs: [{ gref, first, last }] });
    const cases: [string, Req][] = [
      ["other domain (read)", rd(100)], ["other domain (write)", wr(100)],
      ["read into a read-only grant", rd(101)],
      ["invalid entry", rd(102)], ["sub-page entry", wr(103)], ["frame below RAM", wr(104)], ["frame in the Xen area", rd(105)],
      ["frame 2^32-1", rd(106)], ["ref in an unmapped grant frame", rd(600)], ["ref 2^32-1", rd(0xffffffff)],
      ["last_sect 8", rd(dataRef(6), 0, 8)], ["first > last", wr(dataRef(6), 5, 4)], ["first 255", rd(dataRef(6), 255, 255)],
      ["beyond the disk", rd(dataRef(6), 0, 7, 2048 - 7)], ["start beyond the disk", wr(dataRef(6), 0, 0, 2048)],
      ["sector 2^32", { ...rd(dataRef(6)), sectorHi: 1 }], ["sector 2^64-1", { ...wr(dataRef(6)), sector: 0xffffffff, sectorHi: 0xffffffff }],
      ["read with 0 segments", { op: BLKIF_OP_READ, nseg: 0 }], ["write with 0 segments", { op: BLKIF_OP_WRITE, nseg: 0 }],
      ["12 segments", { op: BLKIF_OP_READ, nseg: 12, segs: Array.from({ length: 11 }, (_, k) => ({ gref: dataRef(k), first: 0, last: 0 })) }],
      ["255 segments", { op: BLKIF_OP_WRITE, nseg: 255 }],
      ["good segments then a bad one", { op: BLKIF_OP_READ, segs: [{ gref: dataRef(6), first: 0, last: 7 }, { gref: 100, first: 0, last: 7 }] }],
      ["discard beyond the disk", { op: BLKIF_OP_DISCARD, sector: 2000, count: 49 }],
      ["discard 2^64 sectors", { op: BLKIF_OP_DISCARD, sector: 1, count: 0xffffffff, countHi: 0xffffffff }],
      ["flush with a bad segment", { op: BLKIF_OP_FLUSH_DISKCACHE, segs: [{ gref: dataRef(6), first: 3, last: 9 }] }],
    ];
    for (const [what, r] of cases) assert.equal(h.one(r), BLKIF_RSP_ERROR, what);
    assert.equal(h.back.stats.errors, cases.length);
    assert.deepEqual(outside(h.u8, [[ring, ring + PAGE]]), outside(before, [[ring, ring + PAGE]]));
    assert.ok(h.image().equals(img));
    assert.ok(h.back.connected, "bad requests do not fail the device");
    // The same ref with the grant made valid works (the errors above were the grants').
    h.grant(100, DATA_GFN + 6, {});
    assert.equal(h.one(wr(100)), BLKIF_RSP_OKAY);
    assert.ok(h.image().subarray(0, PAGE).every((x) => x === 0x5a));
    // Logs are rate-limited.
    assert.ok(h.logs.filter((l) => l.includes("op ")).length <= 20);
  } finally { h.done(); }
});

test("a req_prod far ahead of the responses fails the device (xenbus error, Closing) without looping", () => {
  const h = new Harness();
  try {
    assert.equal(h.one({ op: BLKIF_OP_FLUSH_DISKCACHE }), BLKIF_RSP_OKAY);
    const img = h.image();
    Atomics.store(new Int32Array(h.ram), (h.off(RING_GFN) + SRING_REQ_PROD) >> 2, (h.reqProd + BLKIF_RING_SIZE + 1) | 0);
    assert.equal(h.xen.evtchn.send(h.port), 0);
    assert.equal(h.responses().length, 0);
    assert.ok(!h.back.connected);
    assert.equal(h.backState(), 5);
    assert.match(h.read(`/local/domain/0/error/${BACK.slice("/local/domain/0/".length)}/error`) ?? "", /bogus ring requests/);
    // Further events on the old channel are ignored.
    const n = h.back.stats.requests;
    assert.equal(h.xen.evtchn.send(h.port), 0);
    h.back.poll();
    assert.equal(h.back.stats.requests, n);
    assert.ok(h.image().equals(img));
    // Exactly one ring ahead is legal (a full ring): a fresh device serves all of it.
  } finally { h.done(); }
  const g = new Harness();
  try {
    for (let i = 0; i < BLKIF_RING_SIZE; i++) g.put({ op: BLKIF_OP_FLUSH_DISKCACHE });
    g.push();
    assert.equal(g.responses().length, BLKIF_RING_SIZE);
    assert.ok(g.back.connected);
    // A req_prod behind req_cons (u32 wrap: "4 billion ahead") is the same misbehaviour.
    Atomics.store(new Int32Array(g.ram), (g.off(RING_GFN) + SRING_REQ_PROD) >> 2, g.reqProd - 1);
    g.xen.evtchn.send(g.port);
    assert.equal(g.backState(), 5);
  } finally { g.done(); }
});

test("connect failures: ring-ref not granted / read-only / missing, bad protocol, bad port, multi-page ring", () => {
  const cases: [string, (h: Harness) => void, RegExp][] = [
    ["ring-ref not granted", (h) => { h.grant(RING_REF, RING_GFN, { flags: 0 }); h.frontConnect(); }, /mapping ring-ref 8/],
    ["ring granted read-only", (h) => { h.grant(RING_REF, RING_GFN, { readonly: true }); h.frontConnect(); }, /mapping ring-ref/],
    ["ring granted to another domain", (h) => { h.grant(RING_REF, RING_GFN, { dom: 9 }); h.frontConnect(); }, /mapping ring-ref/],
    ["ring-ref out of range", (h) => h.frontConnect({ "ring-ref": "70000" }), /mapping ring-ref 70000/],
    ["ring-ref missing", (h) => h.frontConnect({ "ring-ref": "" }), /reading ring-ref/],
    ["ring-ref garbage", (h) => h.frontConnect({ "ring-ref": "8x" }), /reading ring-ref/],
    ["event-channel missing", (h) => h.frontConnect({ "event-channel": "" }), /reading event-channel/],
    ["event-channel not unbound", (h) => h.frontConnect({ "event-channel": "77" }), /binding event-channel 77/],
    ["x86_32 protocol", (h) => h.frontConnect({ protocol: "x86_32-abi" }), /unknown fe protocol x86_32-abi/],
    ["ring-page-order 5", (h) => h.frontConnect({ "ring-page-order": "5", "ring-ref0": "8" }), /ring page order 5 exceeds max:4/],
    ["ring-page-order 2, ring-ref1 missing", (h) => h.frontConnect({ "ring-page-order": "2", "ring-ref0": "8" }), /reading ring-ref1/],
    ["ring-page-order garbage", (h) => h.frontConnect({ "ring-page-order": "-1" }), /ring page order -1/],
    ["4 queues (1 vCPU)", (h) => h.frontConnect({ "multi-queue-num-queues": "4" }), /requested 4 queues \(multi-queue-num-queues\), at most 1/],
    ["0 queues", (h) => h.frontConnect({ "multi-queue-num-queues": "0" }), /requested 0 queues/],
    ["ring indexes garbage", (h) => {
      h.dv.setUint32(h.off(RING_GFN) + SRING_REQ_PROD, 1000, true);
      h.frontConnect();
    }, /more than a ring ahead/],
  ];
  for (const [what, f, re] of cases) {
    const h = new Harness({ connect: false });
    try {
      assert.doesNotThrow(() => f(h), what);
      assert.equal(h.backState(), 5, what);
      assert.ok(!h.back.connected, what);
      assert.match(h.read(`/local/domain/0/error/${BACK.slice("/local/domain/0/".length)}/error`) ?? "", re, what);
      assert.notEqual(h.xen.evtchn.state[h.port], 2, `${what}: port not bound`);
    } finally { h.done(); }
  }
  // Accepted variants: no protocol key, x86_64-abi, ring-ref0 with ring-page-order 0.
  for (const keys of <Record<string, string>[]>[{ protocol: "" }, { protocol: "x86_64-abi" }, { "ring-ref": "", "ring-ref0": "8", "ring-page-order": "0" }]) {
    const h = new Harness({ connect: false });
    try {
      h.frontConnect(keys);
      assert.equal(h.backState(), 4, JSON.stringify(keys));
      assert.equal(h.one({ op: BLKIF_OP_FLUSH_DISKCACHE }), BLKIF_RSP_OKAY);
    } finally { h.done(); }
  }
});

test("ring grant revoked while connected: the device fails instead of writing into a page the guest reclaimed", () => {
  const h = new Harness();
  try {
    h.grant(RING_REF, RING_GFN, { flags: 0 });
    h.put({ op: BLKIF_OP_FLUSH_DISKCACHE });
    h.push();
    assert.equal(h.back.stats.requests, 0);
    assert.equal(h.backState(), 5);
    assert.match(h.read(`/local/domain/0/error/${BACK.slice("/local/domain/0/".length)}/error`) ?? "", /grant revoked/);
  } finally { h.done(); }
});

test("front-end close and reconnect (driver rebind), guest closing its port, close() removes the device", () => {
  const h = new Harness();
  try {
    const oldPort = h.port;
    assert.equal(h.one({ op: BLKIF_OP_FLUSH_DISKCACHE }), BLKIF_RSP_OKAY);
    h.frontWrite("state", "5");
    assert.ok(!h.back.connected);
    assert.equal(h.backState(), 5);
    h.frontWrite("state", "6");
    assert.equal(h.backState(), 6);
    // Events on the old channel after the disconnect are ignored.
    h.put({ op: BLKIF_OP_FLUSH_DISKCACHE });
    h.push();
    assert.equal(h.responses().length, 0);
    // The guest rebinds: state 1, fresh ring (re-initialised) and a new port.
    h.frontWrite("state", "1");
    assert.equal(h.backState(), 2);
    const r = h.off(RING_GFN);
    h.u8.fill(0, r, r + PAGE);
    h.dv.setUint32(r + SRING_REQ_EVENT, 1, true);
    h.dv.setUint32(r + SRING_RSP_EVENT, 1, true);
    h.reqProd = 0; h.rspCons = 0;
    const port2 = h.xen.evtchn.allocUnbound(0);
    h.frontConnect({ "event-channel": String(port2) });
    assert.equal(h.backState(), 4);
    (h as { port: number }).port = port2;
    assert.equal(h.one({ op: BLKIF_OP_FLUSH_DISKCACHE }), BLKIF_RSP_OKAY);
    // The stale port is still ignored.
    assert.equal(h.xen.evtchn.send(oldPort), 0);
    // The guest closes its port: the back-end stops serving (it cannot notify any more).
    assert.equal(h.xen.evtchn.close(port2), 0);
    assert.ok(!h.back.connected);
    h.back.poll();
    // close(): both directories go, the image is closed; again is a no-op.
    h.back.close();
    assert.equal(h.read(BACK), null);
    assert.equal(h.read(FRONT), null);
    assert.ok(!h.back.disk.open);
    h.back.close();
  } finally { h.done(); }
});

test("host I/O trouble: an image truncated behind the back-end gives error responses, not exceptions", () => {
  const h = new Harness({ bytes: 64 * 1024 });
  try {
    truncateSync(h.path, 32 * 1024);
    const seg = [{ gref: dataRef(0), first: 0, last: 7 }];
    assert.equal(h.one({ op: BLKIF_OP_READ, sector: 0, segs: seg }), BLKIF_RSP_OKAY);
    assert.equal(h.one({ op: BLKIF_OP_READ, sector: 100, segs: seg }), BLKIF_RSP_ERROR);
    assert.ok(h.logs.some((l) => /short read/.test(l)), h.logs.join("\n"));
    assert.ok(h.back.connected);
  } finally { h.done(); }
});

/** mulberry32: a small seeded PRNG. */
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

const FUZZ_SEED = 0x5eed_b10c, FUZZ_REQUESTS = 3000;

/**
 * The fuzz, with inline service (blk-back.ts INLINE_*: each request that finds the I/O thread idle is served in
 * the notify — the first of a batch, and those after it until a flush or discard is queued) or without
 * ($XENO_BLK_INLINE=0: every request through the thread): the same hostile stream must give the same answers.
 */
for (const inline of [true, false]) test(`fuzz: ${FUZZ_REQUESTS} random requests (seed ${FUZZ_SEED.toString(16)}, inline service ${inline ? "on" : "off"}), no exception, the image follows a model, memory outside granted pages unchanged`, () => {
  const DISK = 512 * 1024, SECTORS = DISK / 512;
  // Inline on: no backoff, whatever the host's load (a preempted request would look slow and send the disk to its thread).
  const vars: Record<string, string> = inline ? { XENO_BLK_INLINE: "1", XENO_BLK_INLINE_SLOW_MS: "1000000" } : { XENO_BLK_INLINE: "0" };
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  let h: Harness;
  try { h = new Harness({ bytes: DISK }); } finally { for (const [k, v] of Object.entries(saved)) { if (v === undefined) delete process.env[k]; else process.env[k] = v; } }
  try {
    const r = rng(FUZZ_SEED);
    const int = (n: number): number => Math.floor(r() * n);
    const model = Buffer.from(h.image());
    // Some data refs are read-only grants, one is another domain's, one invalid.
    const roRefs = new Set([dataRef(20), dataRef(21)]);
    for (const ref of roRefs) h.grant(ref, DATA_GFN + ref - dataRef(0), { readonly: true });
    h.grant(dataRef(22), DATA_GFN + 22, { dom: 9 });
    h.grant(dataRef(23), DATA_GFN + 23, { flags: 0 });
    for (let k = 0; k < NDATA; k++) h.u8.set(patternBytes(PAGE, 1000 + k), h.dataOff(k));
    // Memory the back-end may legitimately write: writable data pages and the ring page.
    // (The indirect pages too: the test, playing the guest, writes segment lists there.)
    const writable: [number, number][] = [[h.off(RING_GFN), h.off(RING_GFN) + PAGE], [h.off(IND_GFN), h.off(IND_GFN + BLKIF_RING_SIZE)]];
    for (let k = 0; k < NDATA; k++) if (!roRefs.has(dataRef(k)) && k !== 22 && k !== 23) writable.push([h.dataOff(k), h.dataOff(k + 1)]);
    const frozen = outside(h.u8, writable);
    const ops = [BLKIF_OP_READ, BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_OP_WRITE, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_WRITE_BARRIER,
      BLKIF_OP_DISCARD, BLKIF_OP_INDIRECT, BLKIF_OP_INDIRECT, 4, 200];
    const counts = { ok: 0, error: 0, unsupported: 0 };
    let done = 0, batches = 0;
    while (done < FUZZ_REQUESTS) {
      const batch = 1 + int(BLKIF_RING_SIZE);
      const reqs: { req: Req; valid: boolean }[] = [];
      for (let b = 0; b < batch && done + reqs.length < FUZZ_REQUESTS; b++) {
        const op = ops[int(ops.length)]!;
        const hostile = r() < 0.3;
        let valid = true;
        const req: Req = { op, id: int(0xffffffff) };
        if (op === BLKIF_OP_DISCARD) {
          req.sector = hostile ? int(SECTORS * 2) : int(SECTORS);
          req.count = hostile ? int(SECTORS * 2) : int(Math.min(64, SECTORS - req.sector + 1));
          if (hostile && r() < 0.2) req.countHi = int(0xffffffff);
          valid = req.sector + req.count <= SECTORS && !req.countHi;
        } else if (op <= BLKIF_OP_FLUSH_DISKCACHE || op === BLKIF_OP_INDIRECT) {
          const indirect = op === BLKIF_OP_INDIRECT;
          // INDIRECT: READ or WRITE (hostile: anything), up to 256 segments (hostile: up to 399).
          if (indirect) req.indOp = hostile && r() < 0.2 ? int(8) : int(2);
          const maxSeg = indirect ? 256 : 11;
          const nseg = op >= BLKIF_OP_WRITE_BARRIER && !indirect && r() < 0.5 ? 0
            : hostile && r() < 0.3 ? int(indirect ? 400 : 256) : 1 + int(indirect ? 64 : 11);
          const segs: Seg[] = [];
          let sectors = 0;
          for (let i = 0; i < Math.min(nseg, maxSeg); i++) {
            let first = int(8), last = first + int(8 - first);
            let gref = dataRef(int(NDATA));
            if (hostile && r() < 0.2) { first = int(256); last = int(256); }
            if (hostile && r() < 0.2) gref = int(1 << 20);
            if (gref === RING_REF) gref = 0; // a READ into the ring page would be the guest's own foot
            segs.push({ gref, first, last });
            sectors += last - first + 1;
            const write = indirect ? req.indOp !== BLKIF_OP_READ : op !== BLKIF_OP_READ;
            if (last > 7 || first > last || gref >= dataRef(NDATA) || gref < dataRef(0) || gref === dataRef(22) || gref === dataRef(23) ||
              (!write && roRefs.has(gref))) valid = false;
          }
          req.segs = segs;
          req.nseg = nseg;
          if (nseg > maxSeg || (nseg === 0 && (op <= BLKIF_OP_WRITE || indirect))) valid = false;
          if (indirect && req.indOp! > BLKIF_OP_WRITE) valid = false;
          req.sector = hostile ? int(SECTORS * 2) : int(Math.max(1, SECTORS - sectors));
          if (hostile && r() < 0.1) req.sectorHi = 1 + int(0xfffffffe);
          // A pure flush (no segments) names no sectors: its sector_number is ignored (nr_sects 0, as blkback).
          if (nseg > 0 && (req.sector + sectors > SECTORS || req.sectorHi)) valid = false;
        }
        reqs.push({ req, valid });
      }
      const shadow = h.u8.slice(h.dataOff(0), h.dataOff(NDATA)); // the data pages as the batch starts
      for (const { req } of reqs) h.put(req);
      h.push();
      const rs = h.responses();
      assert.equal(rs.length, reqs.length);
      // Responses may come in any order (refusals at once, the rest as the I/O thread completes them): match
      // each to the first unanswered request with its id.
      const answered = new Set<number>();
      rs.forEach(([id, op, status]) => {
        const i = reqs.findIndex((x, k) => !answered.has(k) && x.req.id === id);
        assert.ok(i >= 0, `a response for id ${id}`);
        answered.add(i);
        const { req, valid } = reqs[i]!;
        assert.equal(op, req.op === BLKIF_OP_INDIRECT ? req.indOp : req.op);
        if (req.op === 4 || req.op === 200) { assert.equal(status, BLKIF_RSP_EOPNOTSUPP); counts.unsupported++; return; }
        assert.equal(status, valid ? BLKIF_RSP_OKAY : BLKIF_RSP_ERROR, `request ${done + i}: ${JSON.stringify(req)} ${h.logs.slice(-2).join(" | ")}`);
        if (status === BLKIF_RSP_OKAY) counts.ok++; else counts.error++;
      });
      // The model: the successful requests, in order, between the model disk and the shadow data pages.
      for (const { req, valid } of reqs) {
        if (!valid || (req.op > BLKIF_OP_FLUSH_DISKCACHE && req.op !== BLKIF_OP_DISCARD && req.op !== BLKIF_OP_INDIRECT)) continue;
        if (req.op === BLKIF_OP_DISCARD) { model.fill(0, req.sector! * 512, (req.sector! + req.count!) * 512); continue; }
        const rw = req.op === BLKIF_OP_INDIRECT ? req.indOp : req.op;
        let pos = req.sector! * 512;
        for (const sg of req.segs!.slice(0, req.nseg)) {
          const a = (sg.gref - dataRef(0)) * PAGE + sg.first * 512, n = (sg.last - sg.first + 1) * 512;
          if (rw === BLKIF_OP_READ) shadow.set(model.subarray(pos, pos + n), a);
          else model.set(shadow.subarray(a, a + n), pos);
          pos += n;
        }
      }
      assert.ok(Buffer.from(h.u8.subarray(h.dataOff(0), h.dataOff(NDATA))).equals(shadow), `data pages after request ${done}`);
      if (++batches % 16 === 0) assert.ok(h.image().equals(model), `image after request ${done}`);
      done += reqs.length;
    }
    assert.ok(h.image().equals(model), "the image matches the model");
    assert.deepEqual(outside(h.u8, writable), frozen, "memory outside writable granted pages unchanged");
    assert.ok(h.back.connected);
    assert.equal(h.back.stats.requests, FUZZ_REQUESTS);
    assert.ok(counts.ok > 500 && counts.error > 200 && counts.unsupported > 100, JSON.stringify(counts));
    assert.equal(h.xen.gnttab.pinned, 0, "no grant left pinned");
    const { inline: served, inlineBackoffs } = h.back.stats;
    if (inline) assert.ok(served > 100, `requests served inline: ${served}`); else assert.equal(served, 0);
    process.stdout.write(`# blk fuzz: ${FUZZ_REQUESTS} requests, seed ${FUZZ_SEED.toString(16)}, inline ${inline ? "on" : "off"}: ` +
      `${JSON.stringify(counts)}; served inline ${served}, backoffs ${inlineBackoffs}\n`);
  } finally { h.done(); }
});
