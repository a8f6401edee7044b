import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { XenStore, type XsSession } from "../../src/xenstore/store.js";
import type { XenStoreError } from "../../src/xenstore/errors.js";

const enc = (s: string): Buffer => Buffer.from(s);
const txt = (b: Uint8Array): string => Buffer.from(b).toString();

function errno(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    const x = e as XenStoreError;
    assert.equal(x.name, "XenStoreError", String(e));
    assert.equal(x.code, `XENSTORE_${x.errno}`);
    return x.errno;
  }
  assert.fail("expected a XenStoreError");
}

interface Client {
  s: XsSession;
  events: string[];
}

function client(store: XenStore, domid: number): Client {
  const events: string[] = [];
  const s = store.connect(domid, (p, t) => events.push(`${p} ${t}`));
  return { s, events };
}

/** dom0 sets up a guest's home as libxl does: /local/domain/<id> owned by dom0, readable by the guest. */
function guestHome(store: XenStore, d0: XsSession, domid: number): void {
  const home = `/local/domain/${domid}`;
  store.mkdir(d0, null, home);
  store.setPerms(d0, null, home, ["n0", `r${domid}`]);
  store.mkdir(d0, null, `${home}/data`);
  store.setPerms(d0, null, `${home}/data`, [`n${domid}`]);
}

/** The subtree at path as {path: value}, or null if it is missing. */
function dump(store: XenStore, s: XsSession, path: string): Record<string, string> | null {
  const out: Record<string, string> = {};
  const visit = (p: string): void => {
    out[p] = txt(store.read(s, null, p));
    for (const c of store.directory(s, null, p)) visit(`${p}/${c}`);
  };
  try {
    visit(path);
  } catch {
    return null;
  }
  return out;
}

describe("xenstore store: tree and paths", () => {
  it("starts with /local/domain/0, /vm, /tool", () => {
    const store = new XenStore();
    const { s } = client(store, 0);
    assert.deepEqual(store.directory(s, null, "/"), ["local", "vm", "tool"]);
    assert.equal(txt(store.read(s, null, "/local/domain/0/name")), "Domain-0");
    assert.equal(txt(store.read(s, null, "/local/domain/0/domid")), "0");
    assert.deepEqual(store.getPerms(s, null, "/"), ["n0"]);
  });

  it("write creates parents, mkdir keeps values, rm removes subtrees", () => {
    const store = new XenStore();
    const { s } = client(store, 0);
    store.write(s, null, "/a/b/c", enc("v"));
    assert.equal(txt(store.read(s, null, "/a/b")), "");
    store.write(s, null, "/a/b", enc("x"));
    store.mkdir(s, null, "/a/b");
    assert.equal(txt(store.read(s, null, "/a/b")), "x");
    assert.deepEqual(store.directory(s, null, "/a/b"), ["c"]);
    store.write(s, null, "/a/bin", Buffer.from([0, 1, 2, 0]));
    assert.deepEqual([...store.read(s, null, "/a/bin")], [0, 1, 2, 0]);
    store.rm(s, null, "/a/b");
    assert.equal(errno(() => store.read(s, null, "/a/b/c")), "ENOENT");
    store.rm(s, null, "/a/nothing"); // missing, parent exists: fine
    assert.equal(errno(() => store.rm(s, null, "/no/such")), "ENOENT");
    assert.equal(errno(() => store.rm(s, null, "/")), "EINVAL");
  });

  it("the caller's buffer is copied", () => {
    const store = new XenStore();
    const { s } = client(store, 0);
    const b = enc("abc");
    store.write(s, null, "/k", b);
    b[0] = 0x7a;
    assert.equal(txt(store.read(s, null, "/k")), "abc");
  });

  it("rejects malformed paths with EINVAL", () => {
    const store = new XenStore();
    const { s } = client(store, 0);
    for (const p of ["", "/a//b", "/a/", "/a b", "/a/é", "/a/b.c", "/" + "x".repeat(3072)]) {
      assert.equal(errno(() => store.write(s, null, p, enc("v"))), "EINVAL", JSON.stringify(p.slice(0, 20)));
    }
    assert.equal(errno(() => store.read(s, null, "@introduceDomain")), "EINVAL");
    store.write(s, null, "/" + "x".repeat(3071), enc("ok")); // exactly XENSTORE_ABS_PATH_MAX
  });

  it("relative paths are under the caller's home; guests are limited to 2048 bytes there", () => {
    const store = new XenStore();
    const d0 = client(store, 0).s;
    guestHome(store, d0, 5);
    const g = client(store, 5).s;
    store.write(g, null, "data/x", enc("1"));
    assert.equal(txt(store.read(d0, null, "/local/domain/5/data/x")), "1");
    assert.equal(txt(store.read(d0, null, "name")), "Domain-0"); // dom0's relative base is /local/domain/0
    const long = "data/" + "y".repeat(2043);
    assert.equal(long.length, 2048);
    store.write(g, null, long, enc("ok"));
    assert.equal(errno(() => store.write(g, null, long + "z", enc("no"))), "EINVAL");
  });
});

describe("xenstore store: permissions", () => {
  it("guests see only what the perms allow; missing nodes under unreadable parents are EACCES", () => {
    const store = new XenStore();
    const d0 = client(store, 0).s;
    guestHome(store, d0, 5);
    guestHome(store, d0, 6);
    store.write(d0, null, "/tool/secret", enc("s"));
    const g5 = client(store, 5).s;
    assert.equal(errno(() => store.read(g5, null, "/tool/secret")), "EACCES");
    assert.equal(errno(() => store.read(g5, null, "/tool/nothing")), "EACCES");
    assert.equal(errno(() => store.directory(g5, null, "/")), "EACCES");
    // home readable, not writable
    assert.deepEqual(store.directory(g5, null, "/local/domain/5"), ["data"]);
    assert.equal(errno(() => store.write(g5, null, "/local/domain/5/x", enc("1"))), "EACCES");
    assert.equal(errno(() => store.read(g5, null, "/local/domain/5/nothing")), "ENOENT");
    // another guest's home
    assert.equal(errno(() => store.read(g5, null, "/local/domain/6/data")), "EACCES");
    assert.equal(errno(() => store.write(g5, null, "/local/domain/6/data/x", enc("1"))), "EACCES");
  });

  it("creation inherits the parent's perms; an unprivileged creator owns, dom0 keeps the parent's owner", () => {
    const store = new XenStore();
    const d0 = client(store, 0).s;
    guestHome(store, d0, 5);
    store.setPerms(d0, null, "/local/domain/5/data", ["n0", "b5", "r7"]);
    const g5 = client(store, 5).s;
    store.write(g5, null, "data/a/b", enc("1"));
    assert.deepEqual(store.getPerms(d0, null, "/local/domain/5/data/a"), ["n5", "b5", "r7"]);
    assert.deepEqual(store.getPerms(d0, null, "/local/domain/5/data/a/b"), ["n5", "b5", "r7"]);
    store.write(d0, null, "/local/domain/5/data/by-dom0", enc("1"));
    assert.deepEqual(store.getPerms(d0, null, "/local/domain/5/data/by-dom0"), ["n0", "b5", "r7"]);
    const g7 = client(store, 7).s;
    assert.equal(txt(store.read(g7, null, "/local/domain/5/data/a/b")), "1");
    assert.equal(errno(() => store.write(g7, null, "/local/domain/5/data/a/b", enc("2"))), "EACCES");
    const g8 = client(store, 8).s;
    assert.equal(errno(() => store.read(g8, null, "/local/domain/5/data/a/b")), "EACCES");
  });

  it("owners may set perms but not give the node away; others get EACCES; bad perms EINVAL", () => {
    const store = new XenStore();
    const d0 = client(store, 0).s;
    guestHome(store, d0, 5);
    const g5 = client(store, 5).s;
    const g6 = client(store, 6).s;
    store.write(g5, null, "data/x", enc("1"));
    assert.equal(errno(() => store.read(g6, null, "/local/domain/5/data/x")), "EACCES");
    store.setPerms(g5, null, "data/x", ["b5", "r6"]);
    assert.equal(txt(store.read(g6, null, "/local/domain/5/data/x")), "1");
    assert.equal(errno(() => store.setPerms(g5, null, "data/x", ["b6"])), "EPERM");
    assert.equal(errno(() => store.setPerms(g6, null, "/local/domain/5/data/x", ["b6"])), "EACCES");
    assert.equal(errno(() => store.setPerms(d0, null, "/local/domain/5/data/x", ["x5"])), "EINVAL");
    assert.equal(errno(() => store.setPerms(d0, null, "/local/domain/5/data/x", [])), "EINVAL");
    store.setPerms(d0, null, "/local/domain/5/data/x", ["r6"]); // dom0 may change the owner
    assert.deepEqual(store.getPerms(d0, null, "/local/domain/5/data/x"), ["r6"]);
    // write-only: no read
    store.setPerms(d0, null, "/local/domain/5/data", ["n0", "w9"]);
    const g9 = client(store, 9).s;
    store.write(g9, null, "/local/domain/5/data/drop", enc("x"));
    assert.equal(errno(() => store.read(g9, null, "/local/domain/5/data")), "EACCES");
  });

  it("SET_TARGET gives a domain its target's rights", () => {
    const store = new XenStore();
    const d0 = client(store, 0).s;
    guestHome(store, d0, 5);
    store.introduce(d0, 5, 1, 1);
    store.introduce(d0, 9, 1, 1);
    const g9 = client(store, 9).s;
    assert.equal(errno(() => store.write(g9, null, "/local/domain/5/data/x", enc("1"))), "EACCES");
    assert.equal(errno(() => store.setTarget(g9, 9, 5)), "EACCES");
    store.setTarget(d0, 9, 5);
    store.write(g9, null, "/local/domain/5/data/x", enc("1"));
    assert.equal(txt(store.read(g9, null, "/local/domain/5")), "");
  });
});

describe("xenstore store: watches", () => {
  it("fires once on registration, then on the path and anything below it", () => {
    const store = new XenStore();
    const a = client(store, 0);
    store.watch(a.s, "/w", "tok");
    assert.deepEqual(a.events, ["/w tok"]);
    store.write(a.s, null, "/w/x/y", enc("1"));
    store.write(a.s, null, "/wx", enc("1")); // a sibling sharing the prefix: no event
    store.write(a.s, null, "/w", enc("2"));
    store.setPerms(a.s, null, "/w/x", ["b0"]);
    store.mkdir(a.s, null, "/w/x"); // exists already: no change, no event
    assert.deepEqual(a.events, ["/w tok", "/w/x/y tok", "/w tok", "/w/x tok"]);
    assert.equal(errno(() => store.watch(a.s, "/w", "tok")), "EEXIST");
    store.watch(a.s, "/w", "tok2");
    a.events.length = 0;
    store.unwatch(a.s, "/w", "tok");
    store.write(a.s, null, "/w", enc("3"));
    assert.deepEqual(a.events, ["/w tok2"]);
    assert.equal(errno(() => store.unwatch(a.s, "/w", "tok")), "ENOENT");
  });

  it("removing a parent of the watched path reports the watched path", () => {
    const store = new XenStore();
    const a = client(store, 0);
    store.write(a.s, null, "/p/q/r", enc("1"));
    store.watch(a.s, "/p/q/r", "deep");
    store.watch(a.s, "/", "root");
    a.events.length = 0;
    store.rm(a.s, null, "/p");
    assert.deepEqual(a.events.sort(), ["/p root", "/p/q/r deep"]);
  });

  it("relative watches get relative paths; guests get no events for nodes they cannot read", () => {
    const store = new XenStore();
    const d0 = client(store, 0);
    guestHome(store, d0.s, 5);
    const g = client(store, 5);
    store.watch(g.s, "data", "t");
    store.watch(g.s, "/tool", "abs");
    assert.deepEqual(g.events, ["data t", "/tool abs"]);
    g.events.length = 0;
    store.write(d0.s, null, "/local/domain/5/data/k", enc("1"));
    store.write(d0.s, null, "/tool/hidden", enc("1"));
    assert.deepEqual(g.events, ["data/k t"]);
  });

  it("a sink that writes from inside an event gets each event once", () => {
    const store = new XenStore();
    const seen: string[] = [];
    const s: XsSession = store.connect(0, (p) => {
      seen.push(p);
      if (p === "/r/a") store.write(s, null, "/r/b", enc("1"));
    });
    store.watch(s, "/r", "t");
    store.write(s, null, "/r/a", enc("1"));
    assert.deepEqual(seen, ["/r", "/r/a", "/r/b"]);
  });

  it("@introduceDomain/@releaseDomain reach dom0, and guests only when granted", () => {
    const store = new XenStore();
    const d0 = client(store, 0);
    const g = client(store, 5);
    store.watch(d0.s, "@introduceDomain", "i");
    store.watch(d0.s, "@releaseDomain", "r");
    store.watch(g.s, "@releaseDomain", "gr");
    d0.events.length = 0;
    g.events.length = 0;
    store.introduce(d0.s, 7, 123, 4);
    assert.deepEqual(d0.events, ["@introduceDomain i"]);
    store.introduce(d0.s, 7, 123, 4); // again: no second event
    assert.equal(store.isIntroduced(7), true);
    store.domainShutdown(7);
    store.domainShutdown(7); // once until RESUME
    assert.deepEqual(g.events, []);
    store.setPerms(d0.s, null, "@releaseDomain", ["n0", "r5"]);
    assert.deepEqual(store.getPerms(d0.s, null, "@releaseDomain"), ["n0", "r5"]);
    store.resume(d0.s, 7);
    store.domainShutdown(7);
    assert.deepEqual(g.events, ["@releaseDomain gr"]);
    assert.deepEqual(d0.events, ["@introduceDomain i", "@releaseDomain r", "@releaseDomain r"]);
  });
});

describe("xenstore store: transactions", () => {
  it("see a snapshot, publish on commit, and discard on abort", () => {
    const store = new XenStore();
    const a = client(store, 0);
    store.write(a.s, null, "/t/v", enc("0"));
    store.watch(a.s, "/t", "w");
    a.events.length = 0;
    const id = store.transactionStart(a.s);
    const tx = store.transaction(a.s, id);
    store.write(a.s, tx, "/t/v", enc("1"));
    store.write(a.s, tx, "/t/new/deep", enc("n"));
    store.write(a.s, null, "/other", enc("x")); // outside, untouched by the transaction
    assert.equal(txt(store.read(a.s, null, "/t/v")), "0");
    assert.equal(txt(store.read(a.s, tx, "/t/v")), "1");
    assert.deepEqual(a.events, []);
    store.transactionEnd(a.s, id, true);
    assert.equal(txt(store.read(a.s, null, "/t/v")), "1");
    assert.equal(txt(store.read(a.s, null, "/t/new/deep")), "n");
    assert.equal(txt(store.read(a.s, null, "/other")), "x");
    assert.deepEqual(a.events, ["/t/v w", "/t/new/deep w"]);

    // The snapshot does not see later writes (and reading them makes the commit fail).
    const id3 = store.transactionStart(a.s);
    store.write(a.s, null, "/other", enc("y"));
    assert.equal(txt(store.read(a.s, store.transaction(a.s, id3), "/other")), "x");
    assert.equal(errno(() => store.transactionEnd(a.s, id3, true)), "EAGAIN");

    const id2 = store.transactionStart(a.s);
    store.rm(a.s, store.transaction(a.s, id2), "/t");
    store.transactionEnd(a.s, id2, false);
    assert.equal(txt(store.read(a.s, null, "/t/v")), "1");
    assert.equal(errno(() => store.transaction(a.s, id2)), "ENOENT");
  });

  it("commit fails with EAGAIN when a node read or written changed meanwhile", () => {
    const store = new XenStore();
    const a = client(store, 0).s;
    const b = client(store, 0).s;
    store.write(a, null, "/c", enc("0"));
    const ta = store.transactionStart(a);
    const tb = store.transactionStart(b);
    const va = Number(txt(store.read(a, store.transaction(a, ta), "/c")));
    const vb = Number(txt(store.read(b, store.transaction(b, tb), "/c")));
    store.write(a, store.transaction(a, ta), "/c", enc(String(va + 1)));
    store.write(b, store.transaction(b, tb), "/c", enc(String(vb + 1)));
    store.transactionEnd(a, ta, true);
    assert.equal(errno(() => store.transactionEnd(b, tb, true)), "EAGAIN");
    assert.equal(txt(store.read(a, null, "/c")), "1");
    // a read-only conflict counts too
    const tc = store.transactionStart(b);
    store.read(b, store.transaction(b, tc), "/c");
    store.write(a, null, "/c", enc("5"));
    assert.equal(errno(() => store.transactionEnd(b, tc, true)), "EAGAIN");
    // reading a missing node, which then appears
    const td = store.transactionStart(b);
    assert.equal(errno(() => store.read(b, store.transaction(b, td), "/later")), "ENOENT");
    store.write(a, null, "/later", enc("1"));
    assert.equal(errno(() => store.transactionEnd(b, td, true)), "EAGAIN");
  });

  it("disjoint transactions both commit; changes below an untouched node survive", () => {
    const store = new XenStore();
    const a = client(store, 0).s;
    store.write(a, null, "/x/a", enc("0"));
    store.write(a, null, "/x/b", enc("0"));
    store.write(a, null, "/x/a/child", enc("c"));
    const t1 = store.transactionStart(a);
    const t2 = store.transactionStart(a);
    store.write(a, store.transaction(a, t1), "/x/a", enc("1"));
    store.write(a, store.transaction(a, t2), "/x/b", enc("2"));
    store.write(a, null, "/x/a/child", enc("changed outside"));
    store.transactionEnd(a, t1, true);
    store.transactionEnd(a, t2, true);
    assert.equal(txt(store.read(a, null, "/x/a")), "1");
    assert.equal(txt(store.read(a, null, "/x/b")), "2");
    assert.equal(txt(store.read(a, null, "/x/a/child")), "changed outside");
  });

  it("rm then re-create inside a transaction commits as one replacement", () => {
    const store = new XenStore();
    const a = client(store, 0).s;
    store.write(a, null, "/r/old/x", enc("1"));
    const t = store.transactionStart(a);
    const tx = store.transaction(a, t);
    store.rm(a, tx, "/r");
    store.write(a, tx, "/r/new", enc("2"));
    store.transactionEnd(a, t, true);
    assert.deepEqual(store.directory(a, null, "/r"), ["new"]);
    assert.equal(errno(() => store.read(a, null, "/r/old/x")), "ENOENT");
  });

  // A device directory rebuilt in one transaction, as a toolstack does on restore: rm the subtree, write it
  // again. Nodes first touched after the rm existed in the snapshot, so they must be recorded with the
  // generation they had there, not as absent (that made every commit fail with EAGAIN, forever).
  const VIF = "/local/domain/1/device/vif";
  function vifStore(): { store: XenStore; a: XsSession } {
    const store = new XenStore();
    const a = client(store, 0).s;
    store.write(a, null, `${VIF}/0/mac`, enc("00:16:3e:00:00:01"));
    store.write(a, null, `${VIF}/0/state`, enc("4"));
    store.write(a, null, `${VIF}/0/backend`, enc("/local/domain/0/backend/vif/1/0"));
    store.write(a, null, `${VIF}/1/x`, enc("1"));
    return { store, a };
  }

  it("rm of a subtree then writes below it in the same transaction commit", () => {
    const { store, a } = vifStore();
    const w = client(store, 0);
    store.watch(w.s, "/local/domain/1/device", "dev");
    w.events.length = 0;
    const owned = store.ownedNodes(0);
    const t = store.transactionStart(a);
    const tx = store.transaction(a, t);
    store.rm(a, tx, VIF);
    assert.equal(errno(() => store.read(a, tx, `${VIF}/0/mac`)), "ENOENT");
    store.write(a, tx, `${VIF}/0/mac`, enc("00:16:3e:00:00:02"));
    store.write(a, tx, `${VIF}/0/state`, enc("1"));
    store.transactionEnd(a, t, true);
    assert.deepEqual(store.directory(a, null, VIF), ["0"]);
    assert.deepEqual(store.directory(a, null, `${VIF}/0`), ["mac", "state"]);
    assert.equal(txt(store.read(a, null, `${VIF}/0/mac`)), "00:16:3e:00:00:02");
    assert.equal(txt(store.read(a, null, `${VIF}/0/state`)), "1");
    assert.equal(store.ownedNodes(0), owned - 3); // 7 nodes under vif/ (itself included) became 4
    assert.deepEqual(w.events, [`${VIF} dev`, `${VIF}/0/mac dev`, `${VIF}/0/state dev`]);
    assert.equal(store.openTransactions(), 0);
  });

  it("rm then mkdir of the same path, or of a path below it, commit", () => {
    const { store, a } = vifStore();
    const t1 = store.transactionStart(a);
    store.rm(a, store.transaction(a, t1), VIF);
    store.mkdir(a, store.transaction(a, t1), VIF);
    store.transactionEnd(a, t1, true);
    assert.deepEqual(store.directory(a, null, VIF), []);

    const { store: s2, a: a2 } = vifStore();
    const t2 = s2.transactionStart(a2);
    s2.rm(a2, s2.transaction(a2, t2), VIF);
    s2.mkdir(a2, s2.transaction(a2, t2), `${VIF}/0`);
    s2.transactionEnd(a2, t2, true);
    assert.deepEqual(s2.directory(a2, null, VIF), ["0"]);
    assert.deepEqual(s2.directory(a2, null, `${VIF}/0`), []);
  });

  it("write, rm, write again in one transaction commits the last state", () => {
    const { store, a } = vifStore();
    const t = store.transactionStart(a);
    const tx = store.transaction(a, t);
    store.write(a, tx, `${VIF}/0/mac`, enc("first"));
    store.write(a, tx, `${VIF}/2/new`, enc("created in the transaction"));
    store.rm(a, tx, VIF);
    store.write(a, tx, `${VIF}/0/mac`, enc("second"));
    store.write(a, tx, `${VIF}/2/new`, enc("again"));
    store.transactionEnd(a, t, true);
    assert.deepEqual(store.directory(a, null, VIF), ["0", "2"]);
    assert.deepEqual(store.directory(a, null, `${VIF}/0`), ["mac"]);
    assert.equal(txt(store.read(a, null, `${VIF}/0/mac`)), "second");
    assert.equal(txt(store.read(a, null, `${VIF}/2/new`)), "again");
  });

  it("rm and rewrite still conflicts with another connection's change to any node it removed or rewrote", () => {
    // xenstored records every node rm deletes (delnode_sub → access_node(NODE_ACCESS_DELETE)), so a change
    // anywhere in the removed subtree is a conflict, not only at the nodes written again.
    const outside: [string, (store: XenStore, b: XsSession) => void][] = [
      ["a rewritten node's value", (st, b) => st.write(b, null, `${VIF}/0/mac`, enc("outside"))],
      ["a removed node not written again", (st, b) => st.write(b, null, `${VIF}/1/x`, enc("outside"))],
      ["a node removed outside", (st, b) => st.rm(b, null, `${VIF}/0/backend`)],
      ["a node created below the subtree", (st, b) => st.write(b, null, `${VIF}/0/extra`, enc("outside"))],
      ["a node's permissions", (st, b) => st.setPerms(b, null, `${VIF}/1`, ["n0", "r1"])],
      ["the whole subtree removed", (st, b) => st.rm(b, null, VIF)],
      [
        "another transaction's commit",
        (st, b) => {
          const t = st.transactionStart(b);
          st.write(b, st.transaction(b, t), `${VIF}/1/x`, enc("other tx"));
          st.transactionEnd(b, t, true);
        },
      ],
    ];
    for (const [what, change] of outside) {
      const { store, a } = vifStore();
      const b = client(store, 0).s;
      const t = store.transactionStart(a);
      const tx = store.transaction(a, t);
      store.rm(a, tx, VIF);
      store.write(a, tx, `${VIF}/0/mac`, enc("mine"));
      change(store, b);
      const before = JSON.stringify(dump(store, a, VIF));
      assert.equal(errno(() => store.transactionEnd(a, t, true)), "EAGAIN", what);
      assert.equal(JSON.stringify(dump(store, a, VIF)), before, `${what}: the store is as the other left it`);
      // the retry, as libxenstore's callers do, then commits
      const t2 = store.transactionStart(a);
      store.rm(a, store.transaction(a, t2), VIF);
      store.write(a, store.transaction(a, t2), `${VIF}/0/mac`, enc("mine"));
      store.transactionEnd(a, t2, true);
      assert.equal(txt(store.read(a, null, `${VIF}/0/mac`)), "mine", what);
    }
  });
});

describe("xenstore store: quotas", () => {
  it("limit guests (nodes, value size, watches, transactions, perms); dom0 is exempt", () => {
    const store = new XenStore({ quotas: { nodes: 6, nodeSize: 16, watches: 2, transactions: 2, perms: 2 } });
    const d0 = client(store, 0).s;
    guestHome(store, d0, 5);
    const g = client(store, 5).s;
    for (let i = 0; i < 5; i++) store.write(g, null, `data/n${i}`, enc("v"));
    assert.equal(store.ownedNodes(5), 6); // data itself + 5
    store.rm(g, null, "data/n0");
    store.write(g, null, "data/again", enc("v"));
    assert.equal(errno(() => store.write(g, null, "data/one-too-many", enc("v"))), "ENOSPC");
    assert.equal(errno(() => store.write(g, null, "data/n1", Buffer.alloc(17))), "ENOSPC");
    store.write(g, null, "data/n1", Buffer.alloc(16));
    store.watch(g, "data", "1");
    store.watch(g, "data", "2");
    assert.equal(errno(() => store.watch(g, "data", "3")), "E2BIG");
    store.transactionStart(g);
    store.transactionStart(g);
    assert.equal(errno(() => store.transactionStart(g)), "ENOSPC");
    assert.equal(errno(() => store.setPerms(g, null, "data/n1", ["b5", "r1", "r2"])), "ENOSPC");
    // dom0: none of these apply
    for (let i = 0; i < 10; i++) store.write(d0, null, `/big/n${i}`, Buffer.alloc(100));
    for (let i = 0; i < 5; i++) store.watch(d0, "/big", String(i));
    for (let i = 0; i < 5; i++) store.transactionStart(d0);
  });

  it("a guest's rm in a transaction counts every removed node toward the transaction's node quota", () => {
    // As xenstored's access_node for each node delnode_sub removes; refused before anything is removed.
    const store = new XenStore({ quotas: { transactionNodes: 6 } });
    const d0 = client(store, 0).s;
    guestHome(store, d0, 5);
    const g = client(store, 5).s;
    for (let i = 0; i < 5; i++) store.write(g, null, `data/sub/n${i}`, enc("v"));
    const t = store.transactionStart(g);
    const tx = store.transaction(g, t);
    // data/sub, its parent data, and 5 children: 7 nodes
    assert.equal(errno(() => store.rm(g, tx, "data/sub")), "ENOSPC");
    assert.equal(store.directory(g, tx, "data/sub").length, 5);
    store.transactionEnd(g, t, false);
    store.rm(g, null, "data/sub/n4");
    const t2 = store.transactionStart(g);
    store.rm(g, store.transaction(g, t2), "data/sub"); // 6 nodes: within the quota
    store.transactionEnd(g, t2, true);
    assert.deepEqual(store.directory(g, null, "data"), []);
    // dom0 is exempt
    for (let i = 0; i < 10; i++) store.write(d0, null, `/big/n${i}`, enc("v"));
    const t3 = store.transactionStart(d0);
    store.rm(d0, store.transaction(d0, t3), "/big");
    store.transactionEnd(d0, t3, true);
  });
});

describe("xenstore store: domains", () => {
  it("INTRODUCE/RELEASE are dom0's; release drops the domain's nodes, sessions and fires @releaseDomain", () => {
    const store = new XenStore();
    const d0 = client(store, 0);
    guestHome(store, d0.s, 5);
    const g = client(store, 5);
    assert.equal(errno(() => store.introduce(g.s, 5, 1, 1)), "EACCES");
    assert.equal(errno(() => store.introduce(d0.s, 0, 1, 1)), "EINVAL");
    const seen: number[] = [];
    store.onIntroduce((e) => seen.push(e.domid, e.gfn, e.evtchn));
    store.introduce(d0.s, 5, 0x39000, 3);
    assert.deepEqual(seen, [5, 0x39000, 3]);
    assert.equal(store.isIntroduced(5), true);
    assert.equal(store.isIntroduced(6), false);
    store.write(g.s, null, "data/mine/x", enc("1"));
    store.watch(d0.s, "@releaseDomain", "r");
    d0.events.length = 0;
    assert.equal(errno(() => store.release(g.s, 5)), "EACCES");
    store.release(d0.s, 5);
    assert.equal(store.isIntroduced(5), false);
    assert.equal(g.s.closed, true);
    assert.equal(errno(() => store.read(d0.s, null, "/local/domain/5/data")), "ENOENT"); // owned by 5
    assert.deepEqual(store.directory(d0.s, null, "/local/domain/5"), []); // owned by dom0: stays
    assert.ok(d0.events.includes("@releaseDomain r"));
    assert.equal(errno(() => store.release(d0.s, 5)), "ENOENT");
    assert.equal(errno(() => store.resume(d0.s, 5)), "ENOENT");
  });
});
