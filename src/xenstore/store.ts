/**
 * XenStore: the tree, permissions, watches, transactions, quotas and domain records of docs/xenstore.txt,
 * independent of any transport. Clients are `XsSession`s (one per socket connection or xenbus ring, or an
 * in-process caller such as the toolstack); `Connection` (connection.ts) speaks the wire protocol on top.
 *
 * Semantics follow C xenstored (tools/xenstore/xenstored_*.c, Xen 4.17, the version Debian 12 ships):
 * - dom0 is privileged: full access, exempt from quotas, may use INTRODUCE/RELEASE/RESUME/SET_TARGET.
 * - a missing node answers ENOENT only if the caller may access its nearest existing ancestor, else EACCES
 *   (errno_from_parents: existence is not leaked).
 * - new nodes inherit the parent's permissions; an unprivileged creator becomes the owner.
 * - transactions see a snapshot (O(1), copy-on-write, tree.ts); every node read, written, created or removed
 *   in one (rm: each node of the subtree, as xenstored's delnode_sub) is recorded with the generation it had
 *   in the snapshot — even when the transaction itself removed it first — and commit fails with EAGAIN if any
 *   of them has changed since (a node's generation changes with its value, permissions or set of children).
 * - quotas (per domain, unprivileged only): nodes owned 1000, value size 2048, watches 128, open transactions
 *   10, permission entries per node 5, nodes accessed per transaction 1024. Exceeding one answers ENOSPC as C
 *   xenstored does (E2BIG for watches); oxenstored's "EQUOTA" is not used.
 * Watch events are queued while a request is being processed and delivered after its reply (beginRequest /
 * endRequest), so a client always sees the OK of a WATCH before the watch's initial event.
 */

import { XS_ERR, type XenStoreError } from "./errors.js";
import { INTRODUCE_DOMAIN, RELEASE_DOMAIN, parentPath, pathDepth, resolvePath } from "./path.js";
import { WatchTable } from "./watches.js";
import {
  DOM0_ONLY,
  PERM_OWNER,
  PERM_READ,
  PERM_WRITE,
  type PermList,
  formatPerm,
  inheritPerms,
  ownerOf,
  parsePerm,
  permDomid,
  permFor,
} from "./perms.js";
import { Tree, XsNode, emptyValue, walk } from "./tree.js";
import { DOMID_FIRST_RESERVED } from "./wire.js";

export interface XsQuotas {
  /** Nodes a domain may own. */
  nodes: number;
  /** Bytes in one node's value. */
  nodeSize: number;
  /** Watches of one session. */
  watches: number;
  /** Open transactions of one session. */
  transactions: number;
  /** Permission entries of one node. */
  perms: number;
  /** Nodes one transaction may read or write. */
  transactionNodes: number;
}

/** xenstored's defaults (xenstored_core.c quota_*). */
export const DEFAULT_QUOTAS: Readonly<XsQuotas> = Object.freeze({
  nodes: 1000,
  nodeSize: 2048,
  watches: 128,
  transactions: 10,
  perms: 5,
  transactionNodes: 1024,
});

/** Receives the watch events of one session: path (relative if the watch was) and token. */
export type WatchEventSink = (path: string, token: string) => void;

/** One client of the store. */
export class XsSession {
  readonly domid: number;
  readonly sink: WatchEventSink;
  readonly transactions = new Map<number, Transaction>();
  watchCount = 0;
  closed = false;
  /** Called once when the store drops the session (its domain was released). */
  onClosed: (() => void) | undefined;
  /**
   * Asked when a watch event for this session is about to be queued: true drops it there (its transport's
   * output is full: the socket server says so for a client that does not read). Unset: every event is queued.
   */
  deaf: (() => boolean) | undefined;
  /** Bytes of watch events queued for this session and not yet handed to its sink (header + path + token). */
  queuedBytes = 0;
  constructor(domid: number, sink: WatchEventSink) {
    this.domid = domid;
    this.sink = sink;
  }
}

/** A change recorded by a transaction, fired as a watch event when it commits. */
interface Change {
  path: string;
  perms: PermList;
  rm: boolean;
}

export class Transaction {
  /**
   * Path → generation the node had in the snapshot (-1: absent there), for every node read, written, created
   * or removed. Taken from `base`, not `tree`: once the transaction has changed a path, its own tree no longer
   * says what the snapshot held there (after rm of a subtree, a node written again below it is absent in
   * `tree` but existed in the snapshot; recording it as absent made every commit fail with EAGAIN).
   */
  readonly accessed = new Map<string, number>();
  /** Paths whose node was created, changed or removed (including parents whose children changed). */
  readonly modified = new Set<string>();
  readonly changes: Change[] = [];
  /** Owned-node count changes by domid, applied to the quota check until commit. */
  readonly nodeDelta = new Map<number, number>();
  /** The snapshot as it was when the transaction started; never mutated (its nodes are frozen, tree.ts). */
  readonly base: Tree;
  constructor(
    readonly id: number,
    readonly session: XsSession,
    readonly tree: Tree,
  ) {
    this.base = new Tree(tree.root, 0); // epoch 0 belongs to no version: nothing may mutate through it
  }
}

interface DomainRecord {
  domid: number;
  gfn: number;
  evtchn: number;
  /** @releaseDomain already fired for a shutdown; cleared by RESUME. */
  shutdown: boolean;
  /** SET_TARGET: the domain this one acts for, or -1. */
  target: number;
}

export interface XenStoreOptions {
  quotas?: Partial<XsQuotas>;
}

export interface IntroduceEvent {
  domid: number;
  gfn: number;
  evtchn: number;
}

/** Parse a decimal domid as xenstored does for INTRODUCE etc.; EINVAL if not a plain number below 65536. */
export function parseDomid(s: string): number {
  if (s.length === 0 || s.length > 5) throw XS_ERR.EINVAL;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) throw XS_ERR.EINVAL;
    v = v * 10 + c;
  }
  if (v > 0xffff) throw XS_ERR.EINVAL;
  return v;
}

export class XenStore {
  readonly quotas: XsQuotas;
  private main: Tree;
  private gen = 0;
  private epochs = 1;
  private nextTxId = 1;
  private readonly activeTx = new Map<number, Transaction>();
  private readonly nodeCounts = new Map<number, number>();
  private readonly specialPerms = new Map<string, PermList>([
    [INTRODUCE_DOMAIN, DOM0_ONLY],
    [RELEASE_DOMAIN, DOM0_ONLY],
  ]);
  private readonly watches = new WatchTable((s, perms) => this.access(s, perms));
  private readonly sessions = new Set<XsSession>();
  private readonly domains = new Map<number, DomainRecord>();
  private hold = 0;
  private readonly introduceListeners: ((e: IntroduceEvent) => void)[] = [];
  private readonly releaseListeners: ((domid: number) => void)[] = [];

  constructor(opts: XenStoreOptions = {}) {
    this.quotas = { ...DEFAULT_QUOTAS, ...opts.quotas };
    this.main = new Tree(new XsNode(emptyValue(), DOM0_ONLY, ++this.gen, this.epochs, null), this.epochs);
    // The tree xenstored starts with plus what Debian's xen-init-dom0 writes for dom0.
    const s = this.connect(0, () => {});
    for (const p of ["/local/domain/0", "/vm", "/tool"]) this.mkdir(s, null, p);
    this.write(s, null, "/local/domain/0/name", Buffer.from("Domain-0"));
    this.write(s, null, "/local/domain/0/domid", Buffer.from("0"));
    this.disconnect(s);
  }

  // ---------------------------------------------------------------- sessions

  /** A new client of domain `domid` (0 = privileged, e.g. the unix socket). */
  connect(domid: number, sink: WatchEventSink): XsSession {
    const s = new XsSession(domid, sink);
    this.sessions.add(s);
    return s;
  }

  /** Drop a client: its watches and open transactions go. */
  disconnect(s: XsSession): void {
    if (!this.sessions.delete(s)) return;
    this.resetWatches(s);
    s.closed = true;
  }

  // ---------------------------------------------------------------- helpers

  private privileged(s: XsSession): boolean {
    return s.domid === 0;
  }

  private access(s: XsSession, perms: PermList): number {
    return permFor(perms, s.domid, this.domains.get(s.domid)?.target ?? -1);
  }

  private resolve(s: XsSession, raw: string, special: boolean): string {
    if (s.closed) throw XS_ERR.EINVAL;
    return resolvePath(raw, s.domid, this.privileged(s), special);
  }

  /** ENOENT if the caller may `want` on the nearest existing ancestor of a missing path, else EACCES. */
  private missing(s: XsSession, tree: Tree, path: string, want: number): XenStoreError {
    return this.access(s, tree.deepestExisting(path).node.perms) & want ? XS_ERR.ENOENT : XS_ERR.EACCES;
  }

  /** Record path in the transaction's read/write set with its generation in the snapshot (first touch only). */
  private note(s: XsSession, tx: Transaction | null, path: string): void {
    if (tx === null || tx.accessed.has(path)) return;
    if (!this.privileged(s) && tx.accessed.size >= this.quotas.transactionNodes) throw XS_ERR.ENOSPC;
    tx.accessed.set(path, tx.base.get(path)?.gen ?? -1);
  }

  private ownedCount(tx: Transaction | null, domid: number): number {
    return (this.nodeCounts.get(domid) ?? 0) + (tx?.nodeDelta.get(domid) ?? 0);
  }

  private countNodes(tx: Transaction | null, domid: number, delta: number): void {
    const m = tx === null ? this.nodeCounts : tx.nodeDelta;
    m.set(domid, (m.get(domid) ?? 0) + delta);
  }

  private changed(tx: Transaction | null, path: string, perms: PermList, rm: boolean): void {
    if (tx !== null) tx.changes.push({ path, perms, rm });
    else this.queueEvents(path, perms, rm);
  }

  private tree(tx: Transaction | null): Tree {
    return tx === null ? this.main : tx.tree;
  }

  /** The node at path if the caller may read it (transaction-aware); ENOENT/EACCES otherwise. */
  readNode(s: XsSession, tx: Transaction | null, raw: string): XsNode {
    const path = this.resolve(s, raw, false);
    const tree = this.tree(tx);
    const node = tree.get(path);
    this.note(s, tx, path);
    if (node === undefined) throw this.missing(s, tree, path, PERM_READ);
    if (!(this.access(s, node.perms) & PERM_READ)) throw XS_ERR.EACCES;
    return node;
  }

  // ---------------------------------------------------------------- requests

  /** Hold watch events until endRequest (a transport brackets each request so its reply goes first). */
  beginRequest(): void {
    this.hold++;
  }

  endRequest(): void {
    if (this.hold > 0) this.hold--;
    if (this.hold === 0) this.flushEvents();
  }

  private done(): void {
    if (this.hold === 0) this.flushEvents();
  }

  read(s: XsSession, tx: Transaction | null, path: string): Uint8Array {
    return this.readNode(s, tx, path).value;
  }

  directory(s: XsSession, tx: Transaction | null, path: string): string[] {
    const n = this.readNode(s, tx, path);
    return n.children === null ? [] : [...n.children.keys()];
  }

  /** Permissions in wire form ("b0", "r5"), owner first. */
  getPerms(s: XsSession, tx: Transaction | null, raw: string): string[] {
    return this.getPermList(s, tx, raw).map(formatPerm);
  }

  getPermList(s: XsSession, tx: Transaction | null, raw: string): PermList {
    const path = this.resolve(s, raw, true);
    const special = this.specialPerms.get(path);
    if (path.charCodeAt(0) === 0x40) {
      if (special === undefined) throw XS_ERR.ENOENT;
      if (!(this.access(s, special) & PERM_READ)) throw XS_ERR.EACCES;
      return special;
    }
    return this.readNode(s, tx, path).perms;
  }

  /** WRITE: store a copy of value at path, creating missing parents with empty values. */
  write(s: XsSession, tx: Transaction | null, raw: string, value: Uint8Array): void {
    const path = this.resolve(s, raw, false);
    if (!this.privileged(s) && value.length > this.quotas.nodeSize) throw XS_ERR.ENOSPC;
    const tree = this.tree(tx);
    const node = tree.get(path);
    if (node === undefined) {
      this.create(s, tx, tree, path, new Uint8Array(value));
    } else {
      if (!(this.access(s, node.perms) & PERM_WRITE)) throw XS_ERR.EACCES;
      this.note(s, tx, path);
      const m = tree.mutable(path)!;
      m.value = new Uint8Array(value);
      m.gen = ++this.gen;
      tx?.modified.add(path);
      this.changed(tx, path, m.perms, false);
    }
    this.done();
  }

  /** MKDIR: ensure path exists (an existing node is left alone, but must be writable, as in xenstored). */
  mkdir(s: XsSession, tx: Transaction | null, raw: string): void {
    const path = this.resolve(s, raw, false);
    const tree = this.tree(tx);
    const node = tree.get(path);
    if (node !== undefined) {
      this.note(s, tx, path);
      if (!(this.access(s, node.perms) & PERM_WRITE)) throw XS_ERR.EACCES;
      return;
    }
    this.create(s, tx, tree, path, emptyValue());
    this.done();
  }

  private create(s: XsSession, tx: Transaction | null, tree: Tree, path: string, value: Uint8Array): void {
    const { node: anc, end } = tree.deepestExisting(path);
    if (!(this.access(s, anc.perms) & PERM_WRITE)) throw XS_ERR.EACCES;
    const ancPath = end === 1 ? "/" : path.substring(0, end);
    const first = end === 1 ? 1 : end + 1; // index of the first missing segment
    let fresh = 1;
    for (let i = first; i < path.length; i++) if (path.charCodeAt(i) === 0x2f) fresh++;
    const perms = inheritPerms(anc.perms, s.domid);
    const owner = ownerOf(perms);
    if (!this.privileged(s) && this.ownedCount(tx, owner) + fresh > this.quotas.nodes) throw XS_ERR.ENOSPC;
    this.note(s, tx, ancPath);
    if (tx !== null) {
      for (let i = first; i <= path.length; i++) {
        if (i === path.length || path.charCodeAt(i) === 0x2f) {
          const p = path.substring(0, i);
          this.note(s, tx, p);
          tx.modified.add(p);
        }
      }
      tx.modified.add(ancPath);
    }
    let parent = tree.mutable(ancPath)!;
    parent.gen = ++this.gen;
    let i = first;
    while (i <= path.length) {
      let j = path.indexOf("/", i);
      if (j < 0) j = path.length;
      parent = tree.addChild(parent, path.substring(i, j), j === path.length ? value : emptyValue(), perms, ++this.gen);
      i = j + 1;
    }
    this.countNodes(tx, owner, fresh);
    this.changed(tx, path, perms, false);
  }

  /** RM: remove path and its subtree; fine if path is missing but its parent exists. */
  rm(s: XsSession, tx: Transaction | null, raw: string): void {
    const path = this.resolve(s, raw, false);
    if (path === "/") throw XS_ERR.EINVAL;
    const tree = this.tree(tx);
    const node = tree.get(path);
    const ppath = parentPath(path);
    const parent = tree.get(ppath);
    if (node === undefined) {
      this.note(s, tx, path);
      const err = this.missing(s, tree, path, PERM_WRITE);
      if (err.errno === "ENOENT" && parent !== undefined) return;
      throw err;
    }
    if (!(this.access(s, node.perms) & PERM_WRITE)) throw XS_ERR.EACCES;
    this.note(s, tx, path);
    this.note(s, tx, ppath);
    // Every node removed joins the read/write set, as in xenstored (delnode_sub → access_node(DELETE)): a change
    // by another connection anywhere in the subtree is a conflict, else the commit would silently drop it.
    if (tx !== null) this.noteSubtree(s, tx, path, node);
    this.removeSubtree(tx, tree, path);
    if (tx !== null) {
      tx.modified.add(path);
      tx.modified.add(ppath);
    }
    this.changed(tx, path, node.perms, true);
    this.done();
  }

  private noteSubtree(s: XsSession, tx: Transaction, path: string, node: XsNode): void {
    if (node.children === null) return;
    for (const [name, child] of node.children) {
      const p = path === "/" ? `/${name}` : `${path}/${name}`;
      this.note(s, tx, p);
      this.noteSubtree(s, tx, p, child);
    }
  }

  private removeSubtree(tx: Transaction | null, tree: Tree, path: string): void {
    const ppath = parentPath(path);
    const p = tree.mutable(ppath)!;
    const leaf = path.substring(ppath === "/" ? 1 : ppath.length + 1);
    const node = p.children!.get(leaf)!;
    p.children!.delete(leaf);
    p.gen = ++this.gen;
    walk(node, (n) => this.countNodes(tx, ownerOf(n.perms), -1));
  }

  /** SET_PERMS: perms in packed form (perms.ts), owner first. */
  setPermList(s: XsSession, tx: Transaction | null, raw: string, list: PermList): void {
    const path = this.resolve(s, raw, true);
    if (list.length === 0) throw XS_ERR.EINVAL;
    const priv = this.privileged(s);
    if (!priv && list.length > this.quotas.perms) throw XS_ERR.ENOSPC;
    const frozen = Object.isFrozen(list) ? list : Object.freeze(list.slice());
    if (path.charCodeAt(0) === 0x40) {
      const cur = this.specialPerms.get(path);
      if (cur === undefined) throw XS_ERR.ENOENT;
      if (!(this.access(s, cur) & PERM_OWNER)) throw XS_ERR.EACCES;
      if (!priv && ownerOf(list) !== ownerOf(cur)) throw XS_ERR.EPERM;
      this.specialPerms.set(path, frozen);
      return;
    }
    const tree = this.tree(tx);
    const node = tree.get(path);
    this.note(s, tx, path);
    if (node === undefined) throw this.missing(s, tree, path, PERM_WRITE);
    const acc = this.access(s, node.perms);
    if (!(acc & PERM_OWNER) || !(acc & PERM_WRITE)) throw XS_ERR.EACCES;
    const oldOwner = ownerOf(node.perms);
    const newOwner = ownerOf(frozen);
    if (!priv && newOwner !== oldOwner) throw XS_ERR.EPERM;
    const m = tree.mutable(path)!;
    m.perms = frozen;
    m.gen = ++this.gen;
    if (oldOwner !== newOwner) {
      this.countNodes(tx, oldOwner, -1);
      this.countNodes(tx, newOwner, 1);
    }
    tx?.modified.add(path);
    this.changed(tx, path, frozen, false);
    this.done();
  }

  /** SET_PERMS with permissions in wire form ("b0", "r5"), owner first; EINVAL if one is malformed. */
  setPerms(s: XsSession, tx: Transaction | null, path: string, perms: readonly string[]): void {
    this.setPermList(s, tx, path, perms.map(parsePerm));
  }

  // ---------------------------------------------------------------- watches

  watch(s: XsSession, raw: string, token: string, depth = -1): void {
    const path = this.resolve(s, raw, true);
    const c0 = raw.charCodeAt(0);
    const quota = this.privileged(s) ? Infinity : this.quotas.watches;
    this.watches.add(s, path, token, c0 !== 0x2f && c0 !== 0x40, depth, quota);
    this.done();
  }

  /** The watches of a session (absolute paths; `relative`: the guest registered it relative to its home). */
  sessionWatches(s: XsSession): { path: string; token: string; relative: boolean; depth: number }[] {
    return this.watches.ofSession(s);
  }

  /**
   * Puts back a watch of a restored domain's guest (saved with sessionWatches): no initial event (the guest had
   * it before the save), no quota check (it was within quota when registered). `path` must be absolute or '@'.
   */
  restoreWatch(s: XsSession, path: string, token: string, relative: boolean, depth: number): void {
    const c0 = path.charCodeAt(0);
    if (c0 !== 0x2f && c0 !== 0x40) throw XS_ERR.EINVAL;
    this.watches.add(s, this.resolve(s, path, true), token, relative, depth, Infinity, false);
  }

  unwatch(s: XsSession, raw: string, token: string): void {
    this.watches.remove(s, this.resolve(s, raw, true), token);
  }

  /** RESET_WATCHES: drop the session's watches and transactions. */
  resetWatches(s: XsSession): void {
    this.watches.removeSession(s);
    for (const id of s.transactions.keys()) this.activeTx.delete(id);
    s.transactions.clear();
  }

  private queueEvents(path: string, perms: PermList, rm: boolean): void {
    this.watches.queueChange(path, perms, rm);
  }

  private queueSpecial(name: string): void {
    this.watches.queueSpecial(name, this.specialPerms.get(name) ?? DOM0_ONLY);
  }

  /** Deliver queued watch events (transports call endRequest instead). */
  flushEvents(): void {
    this.watches.flush();
  }

  // ---------------------------------------------------------------- transactions

  transactionStart(s: XsSession): number {
    if (s.closed) throw XS_ERR.EINVAL;
    if (!this.privileged(s) && s.transactions.size >= this.quotas.transactions) throw XS_ERR.ENOSPC;
    let id = this.nextTxId;
    while (this.activeTx.has(id) || id === 0) id = (id + 1) >>> 0;
    this.nextTxId = (id + 1) >>> 0;
    // Freeze the current tree for both sides: each copies what it changes from now on (tree.ts).
    this.main.epoch = ++this.epochs;
    const tx = new Transaction(id, s, new Tree(this.main.root, ++this.epochs));
    s.transactions.set(id, tx);
    this.activeTx.set(id, tx);
    return id;
  }

  /** The session's open transaction `id`; ENOENT if there is none. */
  transaction(s: XsSession, id: number): Transaction {
    const tx = s.transactions.get(id);
    if (tx === undefined) throw XS_ERR.ENOENT;
    return tx;
  }

  /** TRANSACTION_END: commit (EAGAIN on conflict; the transaction is gone either way) or abort. */
  transactionEnd(s: XsSession, id: number, commit: boolean): void {
    const tx = this.transaction(s, id);
    s.transactions.delete(id);
    this.activeTx.delete(id);
    if (!commit) return;
    for (const [path, gen] of tx.accessed) {
      const n = this.main.get(path);
      if ((n === undefined ? -1 : n.gen) !== gen) throw XS_ERR.EAGAIN;
    }
    // Apply shallow paths first so parents exist before their new children. Nodes the transaction did not
    // touch are not in `modified`; validation above proved every touched one is as the snapshot had it.
    const paths = [...tx.modified].sort((a, b) => pathDepth(a) - pathDepth(b));
    for (const path of paths) this.applyFrom(tx.tree, path);
    for (const c of tx.changes) this.queueEvents(c.path, c.perms, c.rm);
    this.done();
  }

  private applyFrom(src: Tree, path: string): void {
    const t = src.get(path);
    const m = this.main.get(path);
    if (t === undefined) {
      if (m !== undefined && path !== "/") this.removeSubtree(null, this.main, path);
      return;
    }
    if (m === undefined) {
      const ppath = parentPath(path);
      const parent = this.main.mutable(ppath);
      if (parent === undefined) return; // its parent was removed by this same transaction later on
      parent.gen = ++this.gen;
      const leaf = path.substring(ppath === "/" ? 1 : ppath.length + 1);
      this.main.addChild(parent, leaf, t.value, t.perms, ++this.gen);
      this.countNodes(null, ownerOf(t.perms), 1);
      return;
    }
    const mm = this.main.mutable(path)!;
    if (ownerOf(mm.perms) !== ownerOf(t.perms)) {
      this.countNodes(null, ownerOf(mm.perms), -1);
      this.countNodes(null, ownerOf(t.perms), 1);
    }
    mm.value = t.value;
    mm.perms = t.perms;
    mm.gen = ++this.gen;
    if (mm.children !== null) {
      for (const name of [...mm.children.keys()]) {
        if (t.children === null || !t.children.has(name)) this.removeSubtree(null, this.main, path === "/" ? `/${name}` : `${path}/${name}`);
      }
    }
  }

  // ---------------------------------------------------------------- domains

  private requirePrivileged(s: XsSession): void {
    if (!this.privileged(s)) throw XS_ERR.EACCES;
  }

  /** INTRODUCE (dom0 only): start talking to a domain over its ring; fires @introduceDomain. */
  introduce(s: XsSession, domid: number, gfn: number, evtchn: number): void {
    this.requirePrivileged(s);
    if (domid === 0 || domid >= DOMID_FIRST_RESERVED) throw XS_ERR.EINVAL;
    if (this.domains.has(domid)) return; // re-introduction: xenstored only re-binds the channel
    const rec: DomainRecord = { domid, gfn, evtchn, shutdown: false, target: -1 };
    this.domains.set(domid, rec);
    this.queueSpecial(INTRODUCE_DOMAIN);
    for (const l of this.introduceListeners) l({ domid, gfn, evtchn });
    this.done();
  }

  /** RELEASE (dom0 only): forget a domain; its sessions close, the nodes it owns go; fires @releaseDomain. */
  release(s: XsSession, domid: number): void {
    this.requirePrivileged(s);
    if (!this.domains.has(domid)) throw XS_ERR.ENOENT;
    this.releaseDomain(domid);
  }

  /** The domain is gone (destroyed): as RELEASE, for the hypervisor side. No-op if not introduced. */
  releaseDomain(domid: number): void {
    if (!this.domains.delete(domid)) return;
    for (const s of [...this.sessions]) {
      if (s.domid !== domid) continue;
      this.disconnect(s);
      s.onClosed?.();
    }
    // docs/xenstore.txt: "When a domain is being removed from Xenstore nodes owned by that domain will be
    // removed together with all of those nodes' children."
    const owned: string[] = [];
    const visit = (n: XsNode, path: string): void => {
      if (path !== "/" && permDomid(n.perms[0]!) === domid) {
        owned.push(path);
        return;
      }
      if (n.children !== null) for (const [name, c] of n.children) visit(c, path === "/" ? `/${name}` : `${path}/${name}`);
    };
    visit(this.main.root, "/");
    for (const p of owned) {
      const n = this.main.get(p)!;
      this.removeSubtree(null, this.main, p);
      this.queueEvents(p, n.perms, true);
    }
    this.nodeCounts.delete(domid);
    for (const rec of this.domains.values()) if (rec.target === domid) rec.target = -1;
    this.queueSpecial(RELEASE_DOMAIN);
    for (const l of this.releaseListeners) l(domid);
    this.done();
  }

  /** The domain has shut down (hypervisor side): @releaseDomain fires once until RESUME. */
  domainShutdown(domid: number): void {
    const rec = this.domains.get(domid);
    if (rec === undefined || rec.shutdown) return;
    rec.shutdown = true;
    this.queueSpecial(RELEASE_DOMAIN);
    this.done();
  }

  isIntroduced(domid: number): boolean {
    return domid === 0 || this.domains.has(domid);
  }

  /** RESUME (dom0 only): re-arm @releaseDomain for the domain's next shutdown. */
  resume(s: XsSession, domid: number): void {
    this.requirePrivileged(s);
    const rec = this.domains.get(domid);
    if (rec === undefined) throw XS_ERR.ENOENT;
    rec.shutdown = false;
  }

  /** SET_TARGET (dom0 only): `domid` (a device-model stub domain) acts with `target`'s rights. */
  setTarget(s: XsSession, domid: number, target: number): void {
    this.requirePrivileged(s);
    const rec = this.domains.get(domid);
    if (rec === undefined || !this.isIntroduced(target)) throw XS_ERR.ENOENT;
    rec.target = target;
  }

  onIntroduce(l: (e: IntroduceEvent) => void): void {
    this.introduceListeners.push(l);
  }

  onRelease(l: (domid: number) => void): void {
    this.releaseListeners.push(l);
  }

  // ---------------------------------------------------------------- introspection

  /** Nodes owned by a domain (the quota's count). */
  ownedNodes(domid: number): number {
    return this.nodeCounts.get(domid) ?? 0;
  }

  /** Watches registered across all sessions. */
  watchTotal(): number {
    return this.watches.size;
  }

  openTransactions(): number {
    return this.activeTx.size;
  }
}
