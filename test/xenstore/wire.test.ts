import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Connection } from "../../src/xenstore/connection.js";
import { XenStore } from "../../src/xenstore/store.js";
import { XENSTORE_PAYLOAD_MAX, XsType } from "../../src/xenstore/wire.js";
import { MessageReader, encode, parts, rng, strings, type XsMessage } from "./xs-client.js";

interface Wired {
  store: XenStore;
  conn: Connection;
  reader: MessageReader;
  closed: string[];
}

function wire(domid = 0, store = new XenStore()): Wired {
  const reader = new MessageReader();
  const closed: string[] = [];
  const conn = new Connection(store, domid, (b) => reader.feed(b), { onClose: (r) => closed.push(r) });
  return { store, conn, reader, closed };
}

/** Send one request, return the replies/events it produced. */
function ask(w: Wired, type: number, payload: Uint8Array | string, txId = 0, reqId = 77): XsMessage[] {
  w.conn.handleBytes(encode(type, reqId, txId, payload));
  return w.reader.messages.splice(0);
}

function ok1(w: Wired, type: number, payload: Uint8Array | string, txId = 0): XsMessage {
  const r = ask(w, type, payload, txId);
  assert.equal(r.length, 1, `one reply to type ${type}`);
  assert.equal(r[0]!.type, type, `reply type (payload ${JSON.stringify(r[0]!.payload.toString("latin1"))})`);
  return r[0]!;
}

function err1(w: Wired, type: number, payload: Uint8Array | string, txId = 0): string {
  const r = ask(w, type, payload, txId);
  assert.equal(r.length, 1);
  assert.equal(r[0]!.type, XsType.ERROR);
  assert.equal(r[0]!.reqId, 77);
  assert.equal(r[0]!.txId, txId);
  return r[0]!.payload.toString("latin1");
}

const writeReq = (path: string, value: string): Buffer => Buffer.concat([strings(path), Buffer.from(value, "latin1")]);

describe("xenstore wire: requests and replies", () => {
  it("answers READ/WRITE/DIRECTORY/GET_PERMS with the spec's payloads and echoes req_id", () => {
    const w = wire();
    const r = ok1(w, XsType.WRITE, writeReq("/a/b", "v\0with nul"));
    assert.equal(r.reqId, 77);
    assert.equal(r.payload.toString("latin1"), "OK\0");
    assert.equal(ok1(w, XsType.READ, strings("/a/b")).payload.toString("latin1"), "v\0with nul");
    assert.deepEqual(parts(ok1(w, XsType.DIRECTORY, strings("/a")).payload), ["b"]);
    assert.equal(ok1(w, XsType.DIRECTORY, strings("/a/b")).payload.length, 0);
    assert.deepEqual(parts(ok1(w, XsType.GET_PERMS, strings("/a/b")).payload), ["n0"]);
    ok1(w, XsType.SET_PERMS, strings("/a/b", "b0", "r3"));
    assert.deepEqual(parts(ok1(w, XsType.GET_PERMS, strings("/a/b")).payload), ["b0", "r3"]);
    assert.equal(ok1(w, XsType.GET_DOMAIN_PATH, strings("12")).payload.toString("latin1"), "/local/domain/12\0");
    assert.equal(ok1(w, XsType.IS_DOMAIN_INTRODUCED, strings("0")).payload.toString("latin1"), "T\0");
    assert.equal(ok1(w, XsType.IS_DOMAIN_INTRODUCED, strings("4")).payload.toString("latin1"), "F\0");
    assert.equal(err1(w, XsType.READ, strings("/nope")), "ENOENT\0");
    ok1(w, XsType.MKDIR, strings("/m"));
    ok1(w, XsType.RM, strings("/m"));
    ok1(w, XsType.INTRODUCE, strings("4", "12345", "7"));
    assert.equal(ok1(w, XsType.IS_DOMAIN_INTRODUCED, strings("4")).payload.toString("latin1"), "T\0");
    ok1(w, XsType.SET_TARGET, strings("4", "0"));
    ok1(w, XsType.RESUME, strings("4"));
    ok1(w, XsType.RELEASE, strings("4"));
    assert.match(ok1(w, XsType.CONTROL, strings("help")).payload.toString("latin1"), /quota/);
    assert.equal(err1(w, XsType.GET_QUOTA, strings()), "ENOSYS\0");
  });

  it("WATCH: OK first, then the initial event with req_id 0; events carry path and token", () => {
    const w = wire();
    const r = ask(w, XsType.WATCH, strings("/w", "tk"));
    assert.deepEqual(
      r.map((m) => [m.type, m.reqId, m.payload.toString("latin1")]),
      [
        [XsType.WATCH, 77, "OK\0"],
        [XsType.WATCH_EVENT, 0, "/w\0tk\0"],
      ],
    );
    const r2 = ask(w, XsType.WRITE, writeReq("/w/x", "1"));
    assert.deepEqual(
      r2.map((m) => m.type),
      [XsType.WRITE, XsType.WATCH_EVENT],
    );
    assert.deepEqual(parts(r2[1]!.payload), ["/w/x", "tk"]);
    ok1(w, XsType.UNWATCH, strings("/w", "tk"));
    assert.equal(err1(w, XsType.UNWATCH, strings("/w", "tk")), "ENOENT\0");
    assert.equal(ask(w, XsType.WATCH, strings("/w", "a")).length, 2);
    ok1(w, XsType.RESET_WATCHES, strings());
    assert.deepEqual(ask(w, XsType.WRITE, writeReq("/w/y", "1")).map((m) => m.type), [XsType.WRITE]);
  });

  it("a guest ring connection resolves relative paths and gets relative events", () => {
    const store = new XenStore();
    const d0 = wire(0, store);
    ok1(d0, XsType.MKDIR, strings("/local/domain/3"));
    ok1(d0, XsType.SET_PERMS, strings("/local/domain/3", "b3"));
    const g = wire(3, store);
    ask(g, XsType.WATCH, strings("device", "dev"));
    const r = ask(g, XsType.WRITE, writeReq("device/vbd/768/state", "1"));
    assert.deepEqual(r.map((m) => m.type), [XsType.WRITE, XsType.WATCH_EVENT]);
    assert.deepEqual(parts(r[1]!.payload), ["device/vbd/768/state", "dev"]);
    assert.equal(ok1(d0, XsType.READ, strings("/local/domain/3/device/vbd/768/state")).payload.toString(), "1");
    assert.equal(err1(g, XsType.READ, strings("/local/domain/0/name")), "EACCES\0");
    assert.equal(err1(g, XsType.INTRODUCE, strings("5", "1", "1")), "EACCES\0");
    assert.equal(err1(g, XsType.CONTROL, strings("help")), "EACCES\0");
  });

  it("transactions over the wire: start, tx_id in the header, EAGAIN on conflict, ENOENT for unknown ids", () => {
    const store = new XenStore();
    const a = wire(0, store);
    const b = wire(0, store);
    ok1(a, XsType.WRITE, writeReq("/n", "0"));
    const ta = Number(parts(ok1(a, XsType.TRANSACTION_START, strings("")).payload)[0]);
    const tb = Number(parts(ok1(b, XsType.TRANSACTION_START, strings("")).payload)[0]);
    assert.ok(ta > 0 && tb > 0 && ta !== tb);
    ok1(a, XsType.READ, strings("/n"), ta);
    ok1(b, XsType.READ, strings("/n"), tb);
    const wr = ok1(a, XsType.WRITE, writeReq("/n", "1"), ta);
    assert.equal(wr.txId, ta);
    ok1(b, XsType.WRITE, writeReq("/n", "1"), tb);
    ok1(a, XsType.TRANSACTION_END, strings("T"), ta);
    assert.equal(err1(b, XsType.TRANSACTION_END, strings("T"), tb), "EAGAIN\0");
    assert.equal(err1(b, XsType.READ, strings("/n"), tb), "ENOENT\0");
    assert.equal(err1(a, XsType.READ, strings("/n"), ta), "ENOENT\0"); // ended
    assert.equal(err1(a, XsType.READ, strings("/n"), 999), "ENOENT\0");
    assert.equal(err1(b, XsType.TRANSACTION_END, strings("T")), "ENOENT\0"); // tx_id 0
    const tc = Number(parts(ok1(b, XsType.TRANSACTION_START, strings("")).payload)[0]);
    assert.equal(err1(b, XsType.TRANSACTION_END, strings("X"), tc), "EINVAL\0");
    assert.equal(err1(b, XsType.TRANSACTION_START, strings(""), tc), "EBUSY\0");
    ok1(b, XsType.TRANSACTION_END, strings("F"), tc);
    // a transaction belongs to its connection
    const td = Number(parts(ok1(a, XsType.TRANSACTION_START, strings("")).payload)[0]);
    assert.equal(err1(b, XsType.READ, strings("/n"), td), "ENOENT\0");
  });

  it("DIRECTORY too big for one payload is E2BIG; DIRECTORY_PART pages through it as libxenstore does", () => {
    const w = wire();
    const names: string[] = [];
    for (let i = 0; i < 300; i++) names.push(`child-with-a-fairly-long-name-${String(i).padStart(4, "0")}`);
    for (const n of names) ok1(w, XsType.WRITE, writeReq(`/big/${n}`, ""));
    assert.equal(err1(w, XsType.DIRECTORY, strings("/big")), "E2BIG\0");
    // xs_directory_part: offsets into the byte list; a chunk ending in "\0\0" is the last.
    let off = 0;
    let gen = "";
    let all = Buffer.alloc(0);
    for (;;) {
      const p = ok1(w, XsType.DIRECTORY_PART, strings("/big", String(off))).payload;
      const g = p.subarray(0, p.indexOf(0)).toString();
      if (off === 0) gen = g;
      assert.equal(g, gen);
      const rest = p.subarray(p.indexOf(0) + 1);
      all = Buffer.concat([all, rest]);
      off += rest.length;
      if (rest.length <= 1 || rest[rest.length - 2] === 0) break;
    }
    assert.deepEqual(parts(all.subarray(0, all.length - 1)), names);
    // offset past the end: gen and an empty list
    const end = ok1(w, XsType.DIRECTORY_PART, strings("/big", "999999")).payload.toString("latin1");
    assert.equal(end, `${gen}\0\0`);
  });
});

describe("xenstore wire: parser", () => {
  const requests = [
    encode(XsType.WRITE, 1, 0, writeReq("/p/a", "alpha")),
    encode(XsType.WRITE, 2, 0, writeReq("/p/b", "beta")),
    encode(XsType.READ, 3, 0, strings("/p/a")),
    encode(XsType.DIRECTORY, 4, 0, strings("/p")),
    encode(XsType.READ, 5, 0, strings("/missing")),
    encode(XsType.TRANSACTION_START, 6, 0, strings("")),
  ];
  const all = Buffer.concat(requests);
  const expect = (msgs: XsMessage[]): void => {
    assert.deepEqual(
      msgs.map((m) => [m.type, m.reqId, m.payload.toString("latin1")]),
      [
        [XsType.WRITE, 1, "OK\0"],
        [XsType.WRITE, 2, "OK\0"],
        [XsType.READ, 3, "alpha"],
        [XsType.DIRECTORY, 4, "a\0b\0"],
        [XsType.ERROR, 5, "ENOENT\0"],
        [XsType.TRANSACTION_START, 6, "1\0"],
      ],
    );
  };

  it("handles several messages in one chunk", () => {
    const w = wire();
    w.conn.handleBytes(all);
    expect(w.reader.messages);
  });

  it("handles input one byte at a time", () => {
    const w = wire();
    for (let i = 0; i < all.length; i++) w.conn.handleBytes(all.subarray(i, i + 1));
    expect(w.reader.messages);
  });

  it("handles random fragmentation (seeded)", () => {
    const next = rng(1234);
    for (let round = 0; round < 200; round++) {
      const w = wire();
      let i = 0;
      while (i < all.length) {
        const n = 1 + (next() % 40);
        w.conn.handleBytes(all.subarray(i, i + n));
        i += n;
      }
      expect(w.reader.messages);
    }
  });

  it("answers malformed requests with XS_ERROR and keeps going", () => {
    const w = wire();
    assert.equal(err1(w, XsType.READ, "/no-nul"), "EINVAL\0");
    assert.equal(err1(w, XsType.READ, ""), "EINVAL\0");
    assert.equal(err1(w, XsType.READ, strings("/a", "extra")), "EINVAL\0");
    assert.equal(err1(w, XsType.WRITE, "/no-nul-at-all"), "EINVAL\0");
    assert.equal(err1(w, XsType.WATCH, strings("/only-path")), "EINVAL\0");
    assert.equal(err1(w, XsType.WATCH, "/w\0tok"), "EINVAL\0"); // token not terminated
    assert.equal(err1(w, XsType.SET_PERMS, strings("/local", "q0")), "EINVAL\0");
    assert.equal(err1(w, XsType.INTRODUCE, strings("x", "1", "1")), "EINVAL\0");
    assert.equal(err1(w, XsType.GET_DOMAIN_PATH, strings("99999999")), "EINVAL\0");
    assert.equal(err1(w, 999, strings("/a")), "ENOSYS\0");
    assert.equal(err1(w, XsType.WATCH_EVENT, strings("/a", "t")), "ENOSYS\0");
    assert.equal(err1(w, XsType.ERROR, strings("EINVAL")), "ENOSYS\0");
    assert.equal(err1(w, 20, strings("1")), "ENOSYS\0"); // RESTRICT: removed
    assert.equal(err1(w, XsType.READ, strings("/bad//path")), "EINVAL\0");
    assert.equal(ok1(w, XsType.READ, strings("/local/domain/0/name")).payload.toString(), "Domain-0");
    assert.equal(w.conn.stats.internalErrors, 0);
  });

  it("a payload longer than XENSTORE_PAYLOAD_MAX gets E2BIG and closes the connection", () => {
    const w = wire();
    const h = Buffer.alloc(16);
    h.writeUInt32LE(XsType.READ, 0);
    h.writeUInt32LE(9, 4);
    h.writeUInt32LE(XENSTORE_PAYLOAD_MAX + 1, 12);
    w.conn.handleBytes(Buffer.concat([h, Buffer.alloc(100)]));
    const r = w.reader.messages.splice(0);
    assert.equal(r.length, 1);
    assert.equal(r[0]!.type, XsType.ERROR);
    assert.equal(r[0]!.payload.toString("latin1"), "E2BIG\0");
    assert.equal(w.closed.length, 1);
    assert.equal(w.conn.isClosed, true);
    w.conn.handleBytes(encode(XsType.READ, 1, 0, strings("/local"))); // ignored
    assert.equal(w.reader.messages.length, 0);
    // exactly the maximum is fine
    const w2 = wire();
    const big = Buffer.concat([strings("/x"), Buffer.alloc(XENSTORE_PAYLOAD_MAX - 3, 0x61)]);
    assert.equal(big.length, XENSTORE_PAYLOAD_MAX);
    ok1(w2, XsType.WRITE, big);
    assert.equal(ok1(w2, XsType.READ, strings("/x")).payload.length, XENSTORE_PAYLOAD_MAX - 3);
  });
});

describe("xenstore wire: fuzz", () => {
  const SEED = 0x5eed2026;
  const COUNT = 20000;
  const PATHS = ["/", "/local", "/local/domain/0", "/f", "/f/a", "/f/a/b", "f", "f/x", "@introduceDomain", "@releaseDomain", "//", "/f/", "", "/f/\xff"];

  it(`survives ${COUNT} random messages (seed ${SEED.toString(16)}) from dom0 and a guest, and still answers`, () => {
    const next = rng(SEED);
    const store = new XenStore();
    let conns = [wire(0, store), wire(7, store)];
    let replies = 0;
    let errors = 0;
    const pick = <T>(a: readonly T[]): T => a[next() % a.length]!;
    for (let i = 0; i < COUNT; i++) {
      const w = conns[next() % conns.length]!;
      const type = next() % 4 === 0 ? next() % 30 : pick([1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 14, 22]);
      let payload: Buffer;
      switch (next() % 5) {
        case 0: {
          // random bytes with NULs sprinkled in
          const n = next() % 64;
          payload = Buffer.alloc(n);
          for (let k = 0; k < n; k++) payload[k] = next() % 3 === 0 ? 0 : next() & 0xff;
          break;
        }
        case 1:
          payload = strings(pick(PATHS));
          break;
        case 2:
          payload = strings(pick(PATHS), pick(["tok", "b0", "r7", "n7", "T", "F", "0", "1"]), pick(["b7", "r0", "2", ""]));
          break;
        case 3:
          payload = writeReq(pick(PATHS), "v".repeat(next() % 3000));
          break;
        default:
          payload = strings(String(next() % 20), String(next()), String(next() % 100));
      }
      const txId = next() % 3 === 0 ? next() % 12 : 0;
      const msg = encode(type, i, txId, payload);
      // Deliver whole or in random pieces; occasionally glue two messages together.
      if (next() % 2 === 0) w.conn.handleBytes(msg);
      else {
        let o = 0;
        while (o < msg.length) {
          const n = 1 + (next() % 50);
          w.conn.handleBytes(msg.subarray(o, o + n));
          o += n;
        }
      }
      const got = w.reader.messages.splice(0).filter((m) => m.type !== XsType.WATCH_EVENT);
      assert.equal(got.length, 1, `message ${i} (type ${type}) got ${got.length} replies`);
      assert.equal(got[0]!.reqId, i);
      replies++;
      if (got[0]!.type === XsType.ERROR) errors++;
      // Now and then a header that lies about the length: E2BIG and a new connection.
      if (next() % 997 === 0) {
        const h = Buffer.alloc(16);
        h.writeUInt32LE(2, 0);
        h.writeUInt32LE(0xffffffff, 12);
        w.conn.handleBytes(h);
        assert.equal(w.conn.isClosed, true);
        conns = conns.map((c) => (c === w ? wire(c.conn.domid, store) : c));
      }
    }
    for (const w of conns) {
      assert.equal(w.conn.stats.internalErrors, 0);
      ok1(w, XsType.GET_DOMAIN_PATH, strings("7"));
    }
    const d0 = conns[0]!;
    ok1(d0, XsType.WRITE, writeReq("/after-fuzz", "alive"));
    assert.equal(ok1(d0, XsType.READ, strings("/after-fuzz")).payload.toString(), "alive");
    assert.equal(replies, COUNT);
    // Both outcomes are well represented (the fuzz is not just bouncing off the parser).
    assert.ok(errors > COUNT / 10 && errors < COUNT * 0.9, `errors ${errors} of ${COUNT}`);
  });
});
