/**
 * One XenStore for every domain: the store lives in the hypervisor process's main thread (with xenstored's
 * socket); each domain's worker thread reaches it through this link.
 *
 *  - The guest's xenbus ring: the worker's XenbusRing hands request bytes to a RemotePeer, which posts them to
 *    the main thread; there a real Connection for the guest's domid parses them against the store and posts
 *    the reply bytes back (xs-bytes), which the worker writes into the ring. Asynchronous, as xenstored is.
 *  - dom0 code in the worker (back-ends, the domain's introduction) calls RemoteStore, a *synchronous* proxy:
 *    the worker posts the call and sleeps in Atomics.wait on a shared reply buffer until the main thread has
 *    run it against the store and written the reply. The main thread never waits for a worker, so this cannot
 *    deadlock; a call takes a round trip of the main thread's event loop (~0.1 ms). Watch events for those
 *    sessions travel back as messages (xs-watch) that the worker's loop delivers to the session's sink.
 *
 * Reply buffer (SharedArrayBuffer): Int32 [0] state (0 idle, 1 call pending, 2 reply ready), [1] reply length;
 * bytes from 8: the reply as UTF-8 JSON {ok: true, v} | {ok: false, errno, msg}.
 */
import { Connection, XenStore, XenStoreError, XS_ERR, type XsSession, type XsErrno, type StoreApi } from "../xenstore/index.js";
import type { XenbusPeer } from "../xen/xenbus-ring.js";

/** Size of the reply buffer (JSON of at most a directory listing or a 4 KiB value). */
export const STORE_LINK_BYTES = 1 << 20;
/** How long a worker waits for the main thread before giving up on a call. */
const CALL_TIMEOUT_MS = 30_000;

const IDLE = 0, PENDING = 1, READY = 2;

/** Worker → main messages of the link. */
export type StoreLinkUp =
  | { type: "xs-call"; op: string; args: unknown[] }
  | { type: "xs-open"; domid: number }
  | { type: "xs-bytes"; bytes: Uint8Array }
  | { type: "xs-close"; reason: string };
/** Main → worker messages of the link. */
export type StoreLinkDown =
  | { type: "xs-watch"; sid: number; path: string; token: string }
  | { type: "xs-bytes"; bytes: Uint8Array }
  | { type: "xs-closed"; reason: string };

/** The guest's side of the link in a save file (src/hv/save-store.ts checks it when reading). */
export interface SavedGuestLink {
  watches: { path: string; token: string; relative: boolean; depth: number }[];
  /** Reply and watch-event bytes the store had sent that the guest's ring had not taken, in order. */
  replies: Uint8Array[];
}

export function newStoreLinkBuffer(): SharedArrayBuffer { return new SharedArrayBuffer(8 + STORE_LINK_BYTES); }

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1");

// ---------------------------------------------------------------------------------------------------------------
// Worker side

interface RemoteSession { sid: number; sink: (path: string, token: string) => void }
interface RemoteTx { sid: number; id: number }

export class RemoteStore implements StoreApi {
  private readonly ctl: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly sessions = new Map<number, RemoteSession>();
  private readonly decoder = new TextDecoder();

  constructor(private readonly post: (m: StoreLinkUp) => void, buffer: SharedArrayBuffer) {
    this.ctl = new Int32Array(buffer, 0, 2);
    this.bytes = new Uint8Array(buffer, 8);
  }

  private call(op: string, ...args: unknown[]): unknown {
    Atomics.store(this.ctl, 0, PENDING);
    this.post({ type: "xs-call", op, args });
    const deadline = Date.now() + CALL_TIMEOUT_MS;
    while (Atomics.load(this.ctl, 0) === PENDING) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`xenstore link: the hypervisor did not answer ${op} within ${CALL_TIMEOUT_MS / 1000} s`);
      Atomics.wait(this.ctl, 0, PENDING, left);
    }
    const n = this.ctl[1];
    const reply = JSON.parse(this.decoder.decode(this.bytes.subarray(0, n))) as { ok: boolean; v?: unknown; errno?: XsErrno; msg?: string };
    Atomics.store(this.ctl, 0, IDLE);
    if (!reply.ok) {
      const e = reply.errno !== undefined ? XS_ERR[reply.errno] : undefined;
      throw e ?? new Error(`xenstore link: ${op}: ${reply.msg ?? "failed"}`);
    }
    return reply.v;
  }

  private sid(s: object): number { return (s as RemoteSession).sid; }
  private tx(t: object | null): number { return t === null ? 0 : (t as RemoteTx).id; }

  /** A watch event for one of this thread's sessions (from the worker's message loop). */
  deliver(m: { sid: number; path: string; token: string }): void {
    const s = this.sessions.get(m.sid);
    if (s === undefined) return;
    try { s.sink(m.path, m.token); } catch { /* the sink's problem; as the store does */ }
  }

  connect(domid: number, sink: (path: string, token: string) => void): object {
    const sid = this.call("connect", domid) as number;
    const s: RemoteSession = { sid, sink };
    this.sessions.set(sid, s);
    return s;
  }
  disconnect(s: object): void { this.sessions.delete(this.sid(s)); this.call("disconnect", this.sid(s)); }
  read(s: object, tx: object | null, path: string): Uint8Array {
    return Buffer.from(this.call("read", this.sid(s), this.tx(tx), path) as string, "latin1");
  }
  directory(s: object, tx: object | null, path: string): string[] { return this.call("directory", this.sid(s), this.tx(tx), path) as string[]; }
  write(s: object, tx: object | null, path: string, value: Uint8Array): void { this.call("write", this.sid(s), this.tx(tx), path, latin1(value)); }
  mkdir(s: object, tx: object | null, path: string): void { this.call("mkdir", this.sid(s), this.tx(tx), path); }
  rm(s: object, tx: object | null, path: string): void { this.call("rm", this.sid(s), this.tx(tx), path); }
  getPerms(s: object, tx: object | null, path: string): string[] { return this.call("getPerms", this.sid(s), this.tx(tx), path) as string[]; }
  setPerms(s: object, tx: object | null, path: string, perms: readonly string[]): void {
    this.call("setPerms", this.sid(s), this.tx(tx), path, [...perms]);
  }
  watch(s: object, path: string, token: string): void { this.call("watch", this.sid(s), path, token); }
  unwatch(s: object, path: string, token: string): void { this.call("unwatch", this.sid(s), path, token); }
  transactionStart(s: object): number { return this.call("transactionStart", this.sid(s)) as number; }
  transaction(s: object, id: number): object { const t: RemoteTx = { sid: this.sid(s), id }; return t; }
  transactionEnd(s: object, id: number, commit: boolean): void { this.call("transactionEnd", this.sid(s), id, commit); }
  introduce(s: object, domid: number, gfn: number, evtchn: number): void { this.call("introduce", this.sid(s), domid, gfn, evtchn); }
}

/** The guest's xenbus ring's peer in the worker: bytes go to the main thread's Connection and back. */
export class RemoteXenbusPeer implements XenbusPeer {
  private closed = false;
  constructor(private readonly post: (m: StoreLinkUp) => void, domid: number) {
    post({ type: "xs-open", domid });
  }
  get isClosed(): boolean { return this.closed; }
  handleBytes(chunk: Uint8Array): void {
    if (this.closed) return;
    this.post({ type: "xs-bytes", bytes: chunk.slice() });
  }
  close(reason = "closed"): void {
    if (this.closed) return;
    this.closed = true;
    this.post({ type: "xs-close", reason });
  }
  /** The main thread closed the connection (e.g. the domain was released). */
  remoteClosed(): void { this.closed = true; }
}

// ---------------------------------------------------------------------------------------------------------------
// Main-thread side

/** Serves one worker's link against the hypervisor's store. */
export class StoreLinkHost {
  private readonly ctl: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly encoder = new TextEncoder();
  private readonly sessions = new Map<number, XsSession>();
  private nextSid = 1;
  private conn: Connection | null = null;
  /** While the domain moves between threads: what would go down, queued for the new worker (hold/rebind). */
  private held: StoreLinkDown[] | null = null;
  /** The next xs-open is the moved domain's peer: it takes over the guest's connection, watches and all. */
  private adopting = false;
  /** A domain restored from a file: its guest's watches and undelivered replies, put on the next xs-open's connection. */
  private restoring: SavedGuestLink | null = null;

  constructor(private readonly store: XenStore, buffer: SharedArrayBuffer, private down: (m: StoreLinkDown) => void,
    private readonly log: (line: string) => void) {
    this.ctl = new Int32Array(buffer, 0, 2);
    this.bytes = new Uint8Array(buffer, 8);
  }

  private send(m: StoreLinkDown): void {
    if (this.held !== null) this.held.push(m); else this.down(m);
  }

  /**
   * The domain is leaving its worker thread (asked to save itself): from now on replies and watch events for
   * it are held here, not posted to a worker that will not read them. Messages the old worker posted before it
   * saved are still handled as they arrive (their replies are held too).
   */
  hold(): void { if (this.held === null) this.held = []; }

  /**
   * The domain was restored in another thread, whose messages go to `down`. The guest's store connection stays
   * (its watches, transactions and partly received request are the guest's state) and is taken over by the new
   * worker's xs-open; the old worker's dom0 sessions (back-ends' watches) are closed — the restored back-ends
   * open their own. Held replies go to the new worker; held watch events of the old sessions are dropped.
   */
  rebind(down: (m: StoreLinkDown) => void): void {
    this.closeSessions();
    this.down = down;
    this.adopting = this.conn !== null;
    const q = this.held ?? [];
    this.held = null;
    for (const m of q) if (m.type !== "xs-watch") down(m);
  }

  /** The move did not happen (the domain could not be saved): what was held goes to the same worker. */
  resume(): void {
    const q = this.held ?? [];
    this.held = null;
    for (const m of q) this.down(m);
  }

  /**
   * While held for a save (hold()): the guest's side of the link for a save file — its watches and the replies
   * and watch events not yet delivered to its ring. A string says why it cannot be saved now (a transaction
   * open, a request half received): resume() and try again.
   */
  guestSave(): SavedGuestLink | string {
    const c = this.conn;
    if (c === null) return { watches: [], replies: [] };
    if (c.session.transactions.size > 0) return "the guest has a XenStore transaction open";
    if (!c.betweenRequests) return "the guest is in the middle of sending a XenStore request";
    const replies: Uint8Array[] = [];
    for (const m of this.held ?? []) if (m.type === "xs-bytes") replies.push(m.bytes);
    return { watches: this.store.sessionWatches(c.session), replies };
  }

  /**
   * The domain is restored from a file: the guest connection the worker opens next gets these watches back
   * (without initial events) and these replies first. Throws XenStoreError when a watch is malformed (checked
   * when the connection opens: the worker then fails its xenbus, the toolstack destroys the domain).
   */
  restoreGuest(saved: SavedGuestLink): void { this.restoring = saved; }

  /** Handles a link message from the worker; false if it was not one. */
  handle(m: { type: string }): boolean {
    switch (m.type) {
      case "xs-call": this.serve(m as Extract<StoreLinkUp, { type: "xs-call" }>); return true;
      case "xs-open": {
        const domid = (m as Extract<StoreLinkUp, { type: "xs-open" }>).domid;
        if (this.adopting && this.conn !== null) { this.adopting = false; return true; } // the moved domain's
        this.conn?.close("reopened");
        this.conn = new Connection(this.store, domid, (b) => this.send({ type: "xs-bytes", bytes: new Uint8Array(b) }),
          { onClose: (reason) => this.send({ type: "xs-closed", reason }) });
        const r = this.restoring;
        this.restoring = null;
        if (r !== null) {
          try {
            for (const w of r.watches) this.store.restoreWatch(this.conn.session, w.path, w.token, w.relative, w.depth);
          } catch (e) {
            this.log(`xenstore link: a restored watch was refused (${(e as Error).message}): the guest's store connection is closed`);
            this.conn.close("restored watch refused");
            return true;
          }
          for (const b of r.replies) this.send({ type: "xs-bytes", bytes: b });
        }
        return true;
      }
      case "xs-bytes": this.conn?.handleBytes((m as Extract<StoreLinkUp, { type: "xs-bytes" }>).bytes); return true;
      case "xs-close": this.conn?.close((m as Extract<StoreLinkUp, { type: "xs-close" }>).reason); this.conn = null; return true;
      default: return false;
    }
  }

  /** The worker is gone: its sessions and connection go (watches, open transactions). */
  dispose(): void {
    this.conn?.close("domain destroyed");
    this.conn = null;
    this.closeSessions();
  }

  /** Closes the worker's dom0 sessions (their watches and transactions go); no call is left pending. */
  private closeSessions(): void {
    for (const s of this.sessions.values()) this.store.disconnect(s);
    this.sessions.clear();
    // A worker that died mid-call must not leave a later one waiting on a stale state.
    Atomics.store(this.ctl, 0, IDLE);
  }

  private serve(m: { op: string; args: unknown[] }): void {
    let reply: unknown;
    try {
      reply = { ok: true, v: this.run(m.op, m.args) ?? null };
    } catch (e) {
      reply = e instanceof XenStoreError ? { ok: false, errno: e.errno, msg: e.message }
        : { ok: false, msg: e instanceof Error ? e.message : String(e) };
      if (!(e instanceof XenStoreError)) this.log(`xenstore link: ${m.op} failed: ${(e as Error)?.message ?? e}`);
    }
    const r = this.encoder.encodeInto(JSON.stringify(reply), this.bytes);
    this.ctl[1] = r.written;
    Atomics.store(this.ctl, 0, READY);
    Atomics.notify(this.ctl, 0);
  }

  private session(sid: unknown): XsSession {
    const s = this.sessions.get(sid as number);
    if (s === undefined) throw XS_ERR.EINVAL;
    return s;
  }

  private run(op: string, a: unknown[]): unknown {
    const st = this.store;
    const s = (): XsSession => this.session(a[0]);
    const tx = () => (a[1] === 0 ? null : st.transaction(s(), a[1] as number));
    const path = (i: number): string => { if (typeof a[i] !== "string") throw XS_ERR.EINVAL; return a[i] as string; };
    switch (op) {
      case "connect": {
        const domid = a[0] as number;
        if (!Number.isInteger(domid) || domid !== 0) throw XS_ERR.EACCES; // dom0 code only (back-ends, toolstack)
        const sid = this.nextSid++;
        this.sessions.set(sid, st.connect(domid, (p, token) => this.send({ type: "xs-watch", sid, path: p, token })));
        return sid;
      }
      case "disconnect": { const x = this.sessions.get(a[0] as number); if (x) { st.disconnect(x); this.sessions.delete(a[0] as number); } return null; }
      case "read": return latin1(st.read(s(), tx(), path(2)));
      case "directory": return st.directory(s(), tx(), path(2));
      case "write": return st.write(s(), tx(), path(2), Buffer.from(String(a[3]), "latin1"));
      case "mkdir": return st.mkdir(s(), tx(), path(2));
      case "rm": return st.rm(s(), tx(), path(2));
      case "getPerms": return st.getPerms(s(), tx(), path(2));
      case "setPerms": return st.setPerms(s(), tx(), path(2), a[3] as string[]);
      case "watch": return st.watch(s(), path(1), String(a[2]));
      case "unwatch": return st.unwatch(s(), path(1), String(a[2]));
      case "transactionStart": return st.transactionStart(s());
      case "transactionEnd": return st.transactionEnd(s(), a[1] as number, a[2] === true);
      case "introduce": return st.introduce(s(), a[1] as number, a[2] as number, a[3] as number);
      default: throw new Error(`unknown op ${op}`);
    }
  }
}
