/**
 * One XenStore client speaking the wire protocol (docs/xenstore.txt; xs_wire.h), independent of transport:
 * the unix socket server feeds it socket data, a guest's xenbus ring transport feeds it bytes copied out of
 * the request ring. Input may arrive in any fragmentation (a header split across chunks, several messages in
 * one chunk); every complete message is answered through `output`, in order, followed by any watch events it
 * caused. Watch events for this client raised by others arrive through `output` at any time.
 *
 * Malformed input never throws: a bad payload (missing NUL, bad argument) answers XS_ERROR "EINVAL", an
 * unknown type "ENOSYS"; a header announcing more than XENSTORE_PAYLOAD_MAX bytes cannot be resynchronised,
 * so it answers "E2BIG" and closes the connection (xenstored kills such connections too).
 *
 * Per message: the header and payload go into buffers owned by the connection (reused); arguments are decoded
 * as latin1 strings (bytes ↔ chars one to one, so tokens and paths round-trip exactly); a reply is built in a
 * reused scratch buffer and handed to `output` as one fresh Buffer the transport may keep.
 */

import { XS_ERR, isXenStoreError } from "./errors.js";
import { domainPath } from "./path.js";
import { formatPerm, parsePerm } from "./perms.js";
import { parseDomid, type Transaction, type XenStore, type XsSession } from "./store.js";
import { XENSTORE_PAYLOAD_MAX, XS_HEADER_SIZE, XsType } from "./wire.js";

export interface ConnectionOptions {
  /** Called once when the connection closes itself (protocol violation, domain released). */
  onClose?: (reason: string) => void;
  /**
   * Asked before each request is read: true stops reading (handleBytes returns how far it got) until the
   * transport feeds the rest again. The socket server says so while a client's unread replies pile up.
   */
  hold?: () => boolean;
}

/** Counters for tests and metrics. */
export interface ConnectionStats {
  requests: number;
  errors: number;
  /** Exceptions other than XenStore errors caught while handling a request (bugs); answered EIO. */
  internalErrors: number;
  watchEvents: number;
}

const MAX_ARGS = 64;
const OUT_MAX = XS_HEADER_SIZE + XENSTORE_PAYLOAD_MAX;

export class Connection {
  readonly domid: number;
  readonly session: XsSession;
  readonly stats: ConnectionStats = { requests: 0, errors: 0, internalErrors: 0, watchEvents: 0 };
  private readonly store: XenStore;
  private readonly output: (bytes: Buffer) => void;
  private readonly onClose: ((reason: string) => void) | undefined;
  private readonly hold: (() => boolean) | undefined;
  private closed = false;

  // Parser state: header bytes collected so far, then payload bytes.
  private readonly hdr = Buffer.alloc(XS_HEADER_SIZE);
  private hdrFill = 0;
  private readonly body = Buffer.alloc(XENSTORE_PAYLOAD_MAX);
  private bodyLen = -1; // -1 while reading a header
  private bodyFill = 0;
  private type = 0;
  private reqId = 0;
  private txId = 0;

  // Argument offsets of the current payload: string k is body[argStart[k] .. argEnd[k]).
  private readonly argStart = new Int32Array(MAX_ARGS);
  private readonly argEnd = new Int32Array(MAX_ARGS);

  // Reply scratch.
  private readonly out = Buffer.alloc(OUT_MAX);
  private outPos = XS_HEADER_SIZE;

  constructor(store: XenStore, domid: number, output: (bytes: Buffer) => void, opts: ConnectionOptions = {}) {
    this.store = store;
    this.domid = domid;
    this.output = output;
    this.onClose = opts.onClose;
    this.hold = opts.hold;
    this.session = store.connect(domid, (path, token) => this.sendWatchEvent(path, token));
    this.session.onClosed = () => this.close("domain released");
  }

  /** No request is partly received (a saved domain's connection must be between requests). */
  get betweenRequests(): boolean {
    return this.hdrFill === 0 && this.bodyLen < 0;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Feed bytes from the transport (any fragmentation). Returns how many were taken: all of them, unless
   * `hold` said stop at a message boundary (the caller feeds the rest later) or the connection closed.
   */
  handleBytes(chunk: Uint8Array): number {
    let i = 0;
    const n = chunk.length;
    while (i < n && !this.closed) {
      if (this.bodyLen < 0 && this.hdrFill === 0 && this.hold !== undefined && this.hold()) return i;
      if (this.bodyLen < 0) {
        const take = Math.min(XS_HEADER_SIZE - this.hdrFill, n - i);
        this.hdr.set(chunk.subarray(i, i + take), this.hdrFill);
        this.hdrFill += take;
        i += take;
        if (this.hdrFill < XS_HEADER_SIZE) break;
        this.type = this.hdr.readUInt32LE(0);
        this.reqId = this.hdr.readUInt32LE(4);
        this.txId = this.hdr.readUInt32LE(8);
        const len = this.hdr.readUInt32LE(12);
        this.hdrFill = 0;
        if (len > XENSTORE_PAYLOAD_MAX) {
          this.replyError("E2BIG");
          this.close(`payload length ${len} > ${XENSTORE_PAYLOAD_MAX}`);
          return i;
        }
        this.bodyLen = len;
        this.bodyFill = 0;
      } else {
        const take = Math.min(this.bodyLen - this.bodyFill, n - i);
        this.body.set(chunk.subarray(i, i + take), this.bodyFill);
        this.bodyFill += take;
        i += take;
      }
      if (this.bodyLen >= 0 && this.bodyFill === this.bodyLen) {
        this.process();
        this.bodyLen = -1;
      }
    }
    return i;
  }

  /** Drop the client: its watches and transactions go. Idempotent. */
  close(reason = "closed"): void {
    if (this.closed) return;
    this.closed = true;
    this.store.disconnect(this.session);
    this.onClose?.(reason);
  }

  // ---------------------------------------------------------------- dispatch

  private process(): void {
    this.stats.requests++;
    this.store.beginRequest();
    try {
      this.dispatch();
    } catch (e) {
      if (isXenStoreError(e)) this.replyError(e.errno);
      else {
        this.stats.internalErrors++;
        this.replyError("EIO");
      }
    } finally {
      this.store.endRequest();
    }
  }

  private tx(): Transaction | null {
    return this.txId === 0 ? null : this.store.transaction(this.session, this.txId);
  }

  private dispatch(): void {
    const store = this.store;
    const s = this.session;
    switch (this.type) {
      case XsType.READ: {
        const v = store.read(s, this.tx(), this.oneArg());
        this.begin();
        this.putBytes(v);
        return this.finish();
      }
      case XsType.WRITE: {
        // <path>|<value|>: the value is everything after the first NUL, NULs included.
        const nul = this.body.indexOf(0, 0);
        if (nul < 0 || nul >= this.bodyLen) throw XS_ERR.EINVAL;
        const path = this.body.toString("latin1", 0, nul);
        store.write(s, this.tx(), path, this.body.subarray(nul + 1, this.bodyLen));
        return this.ok();
      }
      case XsType.MKDIR:
        store.mkdir(s, this.tx(), this.oneArg());
        return this.ok();
      case XsType.RM:
        store.rm(s, this.tx(), this.oneArg());
        return this.ok();
      case XsType.DIRECTORY: {
        const node = store.readNode(s, this.tx(), this.oneArg());
        this.begin();
        if (node.children !== null) for (const name of node.children.keys()) this.putString(name);
        return this.finish();
      }
      case XsType.DIRECTORY_PART:
        return this.directoryPart();
      case XsType.GET_PERMS: {
        const perms = store.getPermList(s, this.tx(), this.oneArg());
        this.begin();
        for (const p of perms) this.putString(formatPerm(p));
        return this.finish();
      }
      case XsType.SET_PERMS: {
        const n = this.splitArgs();
        if (n < 2) throw XS_ERR.EINVAL;
        const list: number[] = [];
        for (let k = 1; k < n; k++) list.push(parsePerm(this.arg(k)));
        store.setPermList(s, this.tx(), this.arg(0), list);
        return this.ok();
      }
      case XsType.WATCH: {
        // <wpath>|<token>|[<depth>|]; tx_id is ignored.
        const n = this.splitArgs();
        if (n < 2) throw XS_ERR.EINVAL;
        const depth = n >= 3 && this.argEnd[2]! > this.argStart[2]! ? this.decimal(this.arg(2)) : -1;
        const path = this.arg(0);
        const token = this.arg(1);
        store.watch(s, path, token, depth); // the initial event is held until endRequest: the OK goes first
        return this.ok();
      }
      case XsType.UNWATCH: {
        const n = this.splitArgs();
        if (n < 2) throw XS_ERR.EINVAL;
        store.unwatch(s, this.arg(0), this.arg(1));
        return this.ok();
      }
      case XsType.RESET_WATCHES:
        store.resetWatches(s);
        return this.ok();
      case XsType.TRANSACTION_START: {
        if (this.txId !== 0) throw XS_ERR.EBUSY;
        const id = store.transactionStart(s);
        this.begin();
        this.putString(String(id));
        return this.finish();
      }
      case XsType.TRANSACTION_END: {
        const a = this.oneArg();
        if (a !== "T" && a !== "F") throw XS_ERR.EINVAL;
        if (this.txId === 0) throw XS_ERR.ENOENT;
        store.transactionEnd(s, this.txId, a === "T");
        return this.ok();
      }
      case XsType.INTRODUCE: {
        const n = this.splitArgs();
        if (n < 3) throw XS_ERR.EINVAL;
        const domid = parseDomid(this.arg(0));
        const gfn = Number(this.arg(1)); // signed decimal (docs/xenstore.txt)
        const evtchn = this.decimal(this.arg(2));
        if (!Number.isInteger(gfn)) throw XS_ERR.EINVAL;
        store.introduce(s, domid, gfn, evtchn);
        return this.ok();
      }
      case XsType.RELEASE:
        store.release(s, parseDomid(this.oneArg()));
        return this.ok();
      case XsType.GET_DOMAIN_PATH: {
        const domid = parseDomid(this.oneArg());
        this.begin();
        this.putString(domainPath(domid));
        return this.finish();
      }
      case XsType.IS_DOMAIN_INTRODUCED: {
        const domid = parseDomid(this.oneArg());
        this.begin();
        this.putString(store.isIntroduced(domid) ? "T" : "F");
        return this.finish();
      }
      case XsType.RESUME:
        store.resume(s, parseDomid(this.oneArg()));
        return this.ok();
      case XsType.SET_TARGET: {
        const n = this.splitArgs();
        if (n < 2) throw XS_ERR.EINVAL;
        store.setTarget(s, parseDomid(this.arg(0)), parseDomid(this.arg(1)));
        return this.ok();
      }
      case XsType.CONTROL:
        return this.control();
      default:
        // WATCH_EVENT and ERROR are replies only; RESTRICT is gone; features/quotas are optional.
        throw XS_ERR.ENOSYS;
    }
  }

  /** DIRECTORY_PART <path>|<offset>| → <gencnt>|<child>|*, a final chunk ending in an extra NUL (xenstored). */
  private directoryPart(): void {
    const n = this.splitArgs();
    if (n < 2) throw XS_ERR.EINVAL;
    const node = this.store.readNode(this.session, this.tx(), this.arg(0));
    const offset = this.decimal(this.arg(1));
    this.begin();
    this.putString(String(node.gen));
    let pos = 0; // byte offset of the current child in the concatenated "name\0name\0…" list
    let complete = true;
    if (node.children !== null) {
      for (const name of node.children.keys()) {
        const size = name.length + 1;
        if (pos >= offset) {
          // Keep one byte for the terminating NUL of the final chunk.
          if (this.outPos + size + 1 > OUT_MAX) {
            complete = false;
            break;
          }
          this.putString(name);
        }
        pos += size;
      }
    }
    if (complete) this.putByte(0);
    this.finish();
  }

  private control(): void {
    if (this.domid !== 0) throw XS_ERR.EACCES;
    const n = this.splitArgs();
    if (n < 1) throw XS_ERR.EINVAL;
    const cmd = this.arg(0);
    this.begin();
    switch (cmd) {
      case "help":
        this.putString("check\nhelp\nlog\nprint\nquota\n");
        break;
      case "check":
      case "log":
      case "logfile":
      case "print":
        this.putString("OK");
        break;
      case "quota": {
        const q = this.store.quotas;
        this.putString(
          `nodes: ${q.nodes}\nnode-size: ${q.nodeSize}\nwatches: ${q.watches}\ntransactions: ${q.transactions}\n` +
            `permissions: ${q.perms}\ntransaction-nodes: ${q.transactionNodes}\n`,
        );
        break;
      }
      default:
        throw XS_ERR.EINVAL;
    }
    this.finish();
  }

  // ---------------------------------------------------------------- arguments

  /** The payload as exactly one NUL-terminated string (xenstored onearg); EINVAL otherwise. */
  private oneArg(): string {
    const len = this.bodyLen;
    if (len === 0 || this.body[len - 1] !== 0) throw XS_ERR.EINVAL;
    const nul = this.body.indexOf(0, 0);
    if (nul !== len - 1) throw XS_ERR.EINVAL;
    return this.body.toString("latin1", 0, nul);
  }

  /** Split the payload into NUL-terminated strings; EINVAL if bytes follow the last NUL or too many. */
  private splitArgs(): number {
    const len = this.bodyLen;
    let n = 0;
    let start = 0;
    while (start < len) {
      const nul = this.body.indexOf(0, start);
      if (nul < 0 || nul >= len || n === MAX_ARGS) throw XS_ERR.EINVAL;
      this.argStart[n] = start;
      this.argEnd[n] = nul;
      n++;
      start = nul + 1;
    }
    return n;
  }

  private arg(k: number): string {
    return this.body.toString("latin1", this.argStart[k]!, this.argEnd[k]!);
  }

  private decimal(s: string): number {
    if (!/^[0-9]{1,10}$/.test(s)) throw XS_ERR.EINVAL;
    return Number(s);
  }

  // ---------------------------------------------------------------- replies

  private begin(): void {
    this.outPos = XS_HEADER_SIZE;
  }

  private putBytes(b: Uint8Array): void {
    if (this.outPos + b.length > OUT_MAX) throw XS_ERR.E2BIG;
    this.out.set(b, this.outPos);
    this.outPos += b.length;
  }

  private putByte(v: number): void {
    if (this.outPos + 1 > OUT_MAX) throw XS_ERR.E2BIG;
    this.out[this.outPos++] = v;
  }

  /** A string and its NUL. */
  private putString(str: string): void {
    if (this.outPos + str.length + 1 > OUT_MAX) throw XS_ERR.E2BIG;
    this.outPos += this.out.write(str, this.outPos, "latin1");
    this.out[this.outPos++] = 0;
  }

  private finish(type = this.type): void {
    const len = this.outPos - XS_HEADER_SIZE;
    this.out.writeUInt32LE(type, 0);
    this.out.writeUInt32LE(this.reqId, 4);
    this.out.writeUInt32LE(this.txId, 8);
    this.out.writeUInt32LE(len, 12);
    this.emit(Buffer.from(this.out.subarray(0, this.outPos)));
  }

  private ok(): void {
    this.begin();
    this.putString("OK");
    this.finish();
  }

  private replyError(errno: string): void {
    this.stats.errors++;
    this.begin();
    this.putString(errno);
    this.finish(XsType.ERROR);
  }

  private sendWatchEvent(path: string, token: string): void {
    if (this.closed) return;
    const len = path.length + token.length + 2;
    if (len > XENSTORE_PAYLOAD_MAX) return; // cannot be expressed; xenstored drops it as well
    const m = Buffer.allocUnsafe(XS_HEADER_SIZE + len);
    m.writeUInt32LE(XsType.WATCH_EVENT, 0);
    m.writeUInt32LE(0, 4); // req_id and tx_id are 0 (docs/xenstore.txt WATCH_EVENT)
    m.writeUInt32LE(0, 8);
    m.writeUInt32LE(len, 12);
    let p = XS_HEADER_SIZE + m.write(path, XS_HEADER_SIZE, "latin1");
    m[p++] = 0;
    p += m.write(token, p, "latin1");
    m[p] = 0;
    this.stats.watchEvents++;
    this.emit(m);
  }

  private emit(b: Buffer): void {
    try {
      this.output(b);
    } catch (e) {
      this.close(`output failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}
