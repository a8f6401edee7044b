/**
 * Unit tests of the xenbus ring transport (src/xen/xenbus-ring.ts) against a real XenStore and Connection, with
 * the test playing the guest's xenbus driver on a crafted page: requests split and wrapped around the u32
 * index space, replies larger than the ring, watch events, the domain nodes written at creation, and hostile
 * indexes and messages (the connection is ignored, nothing throws, nothing outside the ring page changes).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { XenStore, Connection, XsType, encodeMessage } from "../../src/xenstore/index.js";
import { ByteRing } from "../../src/xen/byte-ring.js";
import { XenbusRing, XENSTORE_RING_SIZE, XS_RING_REQ, XS_RING_RSP, XS_RING_REQ_CONS, XS_RING_REQ_PROD,
  XS_RING_RSP_CONS, XS_RING_RSP_PROD, XS_RING_ERROR, XS_RING_SERVER_FEATURES, XENSTORE_ERROR_RINGIDX,
  XENSTORE_ERROR_PROTO, XENSTORE_SERVER_FEATURE_ERROR } from "../../src/xen/xenbus-ring.js";
import { introduceDomain, uuidString } from "../../src/xen/xenstore-domain.js";

const PAGE = 4096, RING_PAGE = PAGE; // the ring page sits between two sentinel pages
const DOMID = 5;
const SENTINEL = 0xa5;

interface Guest {
  store: XenStore;
  ring: XenbusRing;
  conn: Connection;
  u8: Uint8Array;
  dv: DataView;
  req: ByteRing;
  rsp: ByteRing;
  notifies: number;
  logs: string[];
  /** Sends a request (optionally in pieces, kicking after each). */
  send(type: number, payload: string, reqId?: number, pieces?: number): void;
  /** Reads every complete message from the response ring. */
  recv(): { type: number; reqId: number; payload: string }[];
}

function setup(opts: { maxQueuedBytes?: number; startIndex?: number } = {}): Guest {
  const buf = new SharedArrayBuffer(3 * PAGE);
  const u8 = new Uint8Array(buf), i32 = new Int32Array(buf), dv = new DataView(buf);
  u8.fill(SENTINEL, 0, PAGE);
  u8.fill(SENTINEL, 2 * PAGE);
  const start = opts.startIndex ?? 0;
  for (const off of [XS_RING_REQ_CONS, XS_RING_REQ_PROD, XS_RING_RSP_CONS, XS_RING_RSP_PROD]) dv.setUint32(RING_PAGE + off, start, true);
  const store = new XenStore();
  introduceDomain(store, { domid: DOMID, name: "guest-five", uuid: new Uint8Array(16).fill(0x11), memKiB: 65536, vcpus: 2,
    storeGfn: 0x1234, storePort: 1, consoleGfn: 0x1233, consolePort: 2 });
  const g = { store, u8, dv, notifies: 0, logs: [] as string[] } as Guest;
  g.ring = new XenbusRing({ u8, i32, pageOffset: RING_PAGE, notify: () => { g.notifies++; }, log: (l) => g.logs.push(l),
    maxQueuedBytes: opts.maxQueuedBytes });
  g.conn = new Connection(store, DOMID, (b) => g.ring.send(b), { onClose: (why) => g.ring.fail(XENSTORE_ERROR_PROTO, why) });
  g.ring.attach(g.conn);
  // The guest's view: it produces requests and consumes responses.
  g.req = new ByteRing(u8, i32, RING_PAGE + XS_RING_REQ, XENSTORE_RING_SIZE, RING_PAGE + XS_RING_REQ_CONS, RING_PAGE + XS_RING_REQ_PROD);
  g.rsp = new ByteRing(u8, i32, RING_PAGE + XS_RING_RSP, XENSTORE_RING_SIZE, RING_PAGE + XS_RING_RSP_CONS, RING_PAGE + XS_RING_RSP_PROD);
  let pendingIn = Buffer.alloc(0);
  g.send = (type, payload, reqId = 1, pieces = 1) => {
    const msg = encodeMessage(type, reqId, 0, Buffer.from(payload, "latin1"));
    const step = Math.ceil(msg.length / pieces);
    for (let off = 0; off < msg.length; off += step) {
      const part = msg.subarray(off, Math.min(off + step, msg.length));
      let done = 0;
      while (done < part.length) {
        const n = g.req.write(part, done);
        assert.ok(n > 0, "request ring has space");
        done += n;
        g.ring.kick();
      }
    }
  };
  g.recv = () => {
    const chunk = new Uint8Array(XENSTORE_RING_SIZE);
    for (;;) {
      const n = g.rsp.read(chunk);
      assert.ok(n >= 0);
      if (n === 0) break;
      pendingIn = Buffer.concat([pendingIn, chunk.subarray(0, n)]);
      g.ring.kick(); // Linux xb_read notifies after freeing a full ring; always kicking is harmless
    }
    const msgs: { type: number; reqId: number; payload: string }[] = [];
    while (pendingIn.length >= 16 && pendingIn.length >= 16 + pendingIn.readUInt32LE(12)) {
      const len = pendingIn.readUInt32LE(12);
      msgs.push({ type: pendingIn.readUInt32LE(0), reqId: pendingIn.readUInt32LE(4), payload: pendingIn.toString("latin1", 16, 16 + len) });
      pendingIn = pendingIn.subarray(16 + len);
    }
    return msgs;
  };
  return g;
}

function sentinelsIntact(u8: Uint8Array): boolean {
  for (let i = 0; i < PAGE; i++) if (u8[i] !== SENTINEL || u8[2 * PAGE + i] !== SENTINEL) return false;
  return true;
}

const dom0 = (store: XenStore) => store.connect(0, () => {});
const readNode = (store: XenStore, path: string): string => Buffer.from(store.read(dom0(store), null, path)).toString("latin1");

test("domain nodes as libxl writes them; INTRODUCE fires @introduceDomain", () => {
  const store = new XenStore();
  const events: string[] = [];
  const w = store.connect(0, (p, t) => events.push(`${p} ${t}`));
  store.watch(w, "@introduceDomain", "intro");
  events.length = 0;
  const uuid = Uint8Array.from({ length: 16 }, (_, i) => i);
  introduceDomain(store, { domid: 3, name: "web", uuid, memKiB: 131072, vcpus: 2, storeGfn: 0x40001, storePort: 1,
    consoleGfn: 0x40000, consolePort: 2 });
  assert.deepEqual(events, ["@introduceDomain intro"]);
  assert.ok(store.isIntroduced(3));
  const s = store.connect(0, () => {});
  const r = (p: string): string => Buffer.from(store.read(s, null, p)).toString();
  assert.equal(uuidString(uuid), "00010203-0405-0607-0809-0a0b0c0d0e0f");
  const vm = "/vm/00010203-0405-0607-0809-0a0b0c0d0e0f";
  assert.equal(r("/local/domain/3/name"), "web");
  assert.equal(r("/local/domain/3/domid"), "3");
  assert.equal(r("/local/domain/3/vm"), vm);
  assert.equal(r(`${vm}/name`), "web");
  assert.equal(r("/local/domain/3/memory/target"), "131072");
  assert.equal(r("/local/domain/3/cpu/1/availability"), "online");
  assert.equal(r("/local/domain/3/store/port"), "1");
  assert.equal(r("/local/domain/3/store/ring-ref"), String(0x40001));
  assert.equal(r("/local/domain/3/console/port"), "2");
  assert.equal(r("/local/domain/3/console/ring-ref"), String(0x40000));
  assert.equal(r("/local/domain/3/control/platform-feature-xs_reset_watches"), "1");
  assert.deepEqual(store.getPerms(s, null, "/local/domain/3"), ["n0", "r3"]);
  assert.deepEqual(store.getPerms(s, null, "/local/domain/3/name"), ["n0", "r3"]);
  assert.deepEqual(store.getPerms(s, null, "/local/domain/3/control/shutdown"), ["n3"]);
  assert.deepEqual(store.getPerms(s, null, "/local/domain/3/device"), ["n3"]);
  // The guest reads its home, writes only where it owns, and cannot touch another domain.
  const g = store.connect(3, () => {});
  assert.equal(Buffer.from(store.read(g, null, "name")).toString(), "web");
  store.write(g, null, "control/feature-poweroff", Buffer.from("1"));
  assert.throws(() => store.write(g, null, "name", Buffer.from("evil")), /EACCES/);
  assert.throws(() => store.read(g, null, "/local/domain/0/name"), /EACCES/);
});

test("requests split, wrapped around the u32 index space; replies and watch events come back", () => {
  const g = setup({ startIndex: 0xfffffff0 });
  assert.equal(g.dv.getUint32(RING_PAGE + XS_RING_SERVER_FEATURES, true), XENSTORE_SERVER_FEATURE_ERROR);
  g.send(XsType.READ, "name\0", 7, 5);
  assert.deepEqual(g.recv(), [{ type: XsType.READ, reqId: 7, payload: "guest-five" }]);
  assert.ok(g.notifies > 0);
  // The guest writes its feature flag and watches control/shutdown; the toolstack then asks for a poweroff.
  g.send(XsType.WRITE, "control/feature-poweroff\x001", 8);
  assert.deepEqual(g.recv(), [{ type: XsType.WRITE, reqId: 8, payload: "OK\0" }]);
  assert.equal(readNode(g.store, `/local/domain/${DOMID}/control/feature-poweroff`), "1");
  g.send(XsType.WATCH, "control/shutdown\0tok\0", 9);
  assert.deepEqual(g.recv(), [
    { type: XsType.WATCH, reqId: 9, payload: "OK\0" },
    { type: XsType.WATCH_EVENT, reqId: 0, payload: "control/shutdown\0tok\0" },
  ]);
  const before = g.notifies;
  g.store.write(dom0(g.store), null, `/local/domain/${DOMID}/control/shutdown`, Buffer.from("poweroff"));
  assert.ok(g.notifies > before, "an unsolicited watch event notifies the guest");
  assert.deepEqual(g.recv(), [{ type: XsType.WATCH_EVENT, reqId: 0, payload: "control/shutdown\0tok\0" }]);
  assert.ok(g.ring.stats.requestBytes > 0 && g.ring.broken === null);
  assert.ok(sentinelsIntact(g.u8));
});

test("a reply larger than the ring waits for the guest to consume", () => {
  const g = setup();
  const big = "x".repeat(3000);
  g.store.write(dom0(g.store), null, `/local/domain/${DOMID}/data/big`, Buffer.from(big));
  g.send(XsType.READ, "data/big\0", 3);
  assert.equal(g.rsp.fill(), XENSTORE_RING_SIZE, "ring full");
  assert.ok(g.ring.pending > 0);
  const msgs = g.recv();
  assert.equal(msgs.length, 1);
  assert.equal(msgs[0]!.payload, big);
  assert.equal(g.ring.pending, 0);
  assert.ok(sentinelsIntact(g.u8));
});

test("hostile request indexes: the connection is ignored, nothing read outside the page", () => {
  const g = setup();
  g.send(XsType.WATCH, "control/shutdown\0t\0", 1);
  g.recv();
  g.dv.setUint32(RING_PAGE + XS_RING_REQ_PROD, 0x7fffffff, true); // prod - cons far beyond 1024
  assert.doesNotThrow(() => g.ring.kick());
  assert.match(g.ring.broken ?? "", /request ring indexes corrupt/);
  assert.equal(g.dv.getUint32(RING_PAGE + XS_RING_ERROR, true), XENSTORE_ERROR_RINGIDX);
  assert.ok(g.conn.isClosed, "its watches and transactions are gone");
  assert.equal(g.store.watchTotal(), 0);
  // Later notifications and store events do nothing.
  const rspProd = g.dv.getUint32(RING_PAGE + XS_RING_RSP_PROD, true);
  g.ring.kick();
  g.store.write(dom0(g.store), null, `/local/domain/${DOMID}/control/shutdown`, Buffer.from("poweroff"));
  assert.equal(g.dv.getUint32(RING_PAGE + XS_RING_RSP_PROD, true), rspProd);
  assert.ok(sentinelsIntact(g.u8));
});

test("hostile response indexes and an oversized message are protocol errors", () => {
  const g = setup();
  g.dv.setUint32(RING_PAGE + XS_RING_RSP_CONS, 0x80000000, true);
  g.send(XsType.READ, "name\0", 1);
  assert.match(g.ring.broken ?? "", /response ring indexes corrupt/);
  assert.equal(g.dv.getUint32(RING_PAGE + XS_RING_ERROR, true), XENSTORE_ERROR_RINGIDX);

  const h = setup();
  const hdr = Buffer.alloc(16);
  hdr.writeUInt32LE(XsType.WRITE, 0); hdr.writeUInt32LE(100000, 12); // len > XENSTORE_PAYLOAD_MAX
  h.req.write(hdr);
  h.ring.kick();
  assert.ok(h.conn.isClosed);
  assert.ok(h.ring.broken !== null);
  assert.equal(h.dv.getUint32(RING_PAGE + XS_RING_ERROR, true), XENSTORE_ERROR_PROTO);
  assert.ok(sentinelsIntact(g.u8) && sentinelsIntact(h.u8));
});

test("a guest that never reads its replies: requests stop being consumed, watch events are dropped", () => {
  const g = setup({ maxQueuedBytes: 4096 });
  g.store.write(dom0(g.store), null, `/local/domain/${DOMID}/data/big`, Buffer.from("y".repeat(2000)));
  g.send(XsType.WATCH, "data\0w\0", 1);
  let sent = 0;
  const msg = encodeMessage(XsType.READ, 2, 0, Buffer.from("data/big\0"));
  for (let i = 0; i < 200; i++) {
    if (g.req.write(msg) !== msg.length) break; // the guest's ring is full: it would wait
    sent++;
    g.ring.kick();
  }
  assert.ok(sent < 200, "the request ring filled up");
  assert.ok(g.ring.pending <= 4096 + 2016 + 64, `queued ${g.ring.pending}`);
  for (let i = 0; i < 50; i++) g.store.write(dom0(g.store), null, `/local/domain/${DOMID}/data/k${i}`, Buffer.from("v"));
  assert.ok(g.ring.stats.droppedWatchEvents > 0);
  assert.ok(g.ring.pending <= 4096 + 2016 + 64);
  // Once the guest reads, everything flows again: every request gets its reply.
  let replies = 0;
  for (let i = 0; i < 1000 && replies < sent; i++) replies += g.recv().filter((m) => m.reqId === 2).length;
  assert.equal(replies, sent);
  assert.equal(g.ring.broken, null);
});

test("seeded fuzz: random indexes and bytes never throw or touch memory outside the ring", () => {
  let seed = 12345;
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed; };
  for (let round = 0; round < 200; round++) {
    const g = setup({ startIndex: rnd() });
    for (let step = 0; step < 30; step++) {
      const what = rnd() % 4;
      if (what === 0) g.dv.setUint32(RING_PAGE + [XS_RING_REQ_CONS, XS_RING_REQ_PROD, XS_RING_RSP_CONS, XS_RING_RSP_PROD][rnd() % 4]!, rnd(), true);
      else if (what === 1) for (let k = 0; k < 64; k++) g.u8[RING_PAGE + (rnd() % 2048)] = rnd() & 0xff;
      else if (what === 2) { const p = g.dv.getUint32(RING_PAGE + XS_RING_REQ_PROD, true); g.dv.setUint32(RING_PAGE + XS_RING_REQ_PROD, (p + (rnd() % 1100)) >>> 0, true); }
      assert.doesNotThrow(() => g.ring.kick());
    }
    assert.ok(sentinelsIntact(g.u8), `round ${round}`);
    assert.equal(g.conn.stats.internalErrors, 0);
  }
});
