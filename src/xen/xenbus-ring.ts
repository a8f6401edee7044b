/**
 * XenStore's side of a guest's xenbus: the shared ring page (xen/include/public/io/xs_wire.h, struct
 * xenstore_domain_interface) between the guest's xenbus driver and a XenStore Connection for its domid — what
 * xenstored's domain.c does with a domain's interface page (readchn/writechn, domain_can_read/write).
 *
 * Requests: on each guest notification, the bytes between req_cons and req_prod go to the Connection (any
 * fragmentation: messages may wrap and arrive over several notifications) and req_cons advances. Replies and
 * watch events: the Connection's output is queued and written into rsp as space allows; whatever does not fit
 * waits until the guest consumes and notifies (Linux xb_read notifies when it frees a full ring). The guest's
 * store port is notified once per batch when either index moved.
 *
 * A misbehaving guest: indexes with prod - cons > 1024 (either ring), or a message the Connection cannot parse
 * back into sync (payload length > 4096), make the connection *ignored*, as xenstored's ignore_connection does:
 * the Connection closes (its watches and transactions go), `error` in the page says why
 * (XENSTORE_ERROR_RINGIDX / _PROTO, advertised by XENSTORE_SERVER_FEATURE_ERROR) and later notifications do
 * nothing. Backpressure: while more than `maxQueuedBytes` of output wait for the guest, no more requests are
 * read (the guest's request ring fills and it waits) and watch events are dropped (counted), so a guest that
 * never reads its replies cannot make the host buffer without bound.
 */
import { ByteRing } from "./byte-ring.js";
import { StateError, stateArray, stateBytes, stateInt, stateObject, stateStringOrNull, stateVersion } from "../common/state.js";

/** xs_wire.h: XENSTORE_RING_SIZE and the layout of struct xenstore_domain_interface. */
export const XENSTORE_RING_SIZE = 1024;
export const XS_RING_REQ = 0, XS_RING_RSP = 1024, XS_RING_REQ_CONS = 2048, XS_RING_REQ_PROD = 2052,
  XS_RING_RSP_CONS = 2056, XS_RING_RSP_PROD = 2060, XS_RING_SERVER_FEATURES = 2064, XS_RING_CONNECTION = 2068,
  XS_RING_ERROR = 2072, XS_RING_EVTCHN_PORT = 2076;
/** Size of struct xenstore_domain_interface (it must fit in the page). */
export const XS_RING_INTERFACE_SIZE = 2080;
/** server_features bits (xs_wire.h). */
export const XENSTORE_SERVER_FEATURE_RECONNECTION = 1, XENSTORE_SERVER_FEATURE_ERROR = 2;
/** `connection` values. */
export const XENSTORE_CONNECTED = 0, XENSTORE_RECONNECT = 1;
/** `error` values. */
export const XENSTORE_ERROR_NONE = 0, XENSTORE_ERROR_COMM = 1, XENSTORE_ERROR_RINGIDX = 2, XENSTORE_ERROR_PROTO = 3;

/** xsd_sockmsg type of unsolicited watch events (xs_wire.h XS_WATCH_EVENT). */
const XS_WATCH_EVENT = 15;
/** xs_wire.h: struct xsd_sockmsg header bytes and XENSTORE_PAYLOAD_MAX. */
const XS_HEADER = 16, XS_PAYLOAD_MAX = 4096;
/** Saved output beyond which a state is refused (a working ring holds at most maxQueuedBytes plus a burst). */
const MAX_SAVED_OUTPUT = 16 << 20;

/**
 * Saved host side of a xenbus ring. The ring page (indexes, data, error, features) is guest RAM, saved with
 * it; the XenStore connection (peer) is wiring, attached after restore, and its own partial-request state is
 * the store's to save.
 */
export interface XenbusRingState {
  version: 1;
  /** Why the connection is ignored, or null. */
  broken: string | null;
  /** Output not yet in the ring, oldest first: whole messages, except the first may be the rest of one that
   * was partly written. */
  pending: Uint8Array[];
  stats: XenbusRingStats;
}
/** Default cap on output waiting for the guest (replies are never dropped; see the file comment). */
const DEFAULT_MAX_QUEUED = 64 * 1024;

/** The wire-protocol side: a XenStore Connection (src/xenstore/connection.ts) or a test double. */
export interface XenbusPeer {
  handleBytes(chunk: Uint8Array): void;
  readonly isClosed: boolean;
  close(reason?: string): void;
}

export interface XenbusRingOptions {
  /** Views over the domain's memory buffer (the same buffer). */
  u8: Uint8Array;
  i32: Int32Array;
  /** Byte offset of the ring page in the buffer (chosen by the hypervisor, not the guest). */
  pageOffset: number;
  /** Notify the guest on its store event channel. */
  notify(): void;
  /** Diagnostics (rate-limited by the caller). */
  log(line: string): void;
  maxQueuedBytes?: number;
}

export interface XenbusRingStats {
  requestBytes: number;
  responseBytes: number;
  notifiesIn: number;
  notifiesOut: number;
  droppedWatchEvents: number;
}

export class XenbusRing {
  readonly stats: XenbusRingStats = { requestBytes: 0, responseBytes: 0, notifiesIn: 0, notifiesOut: 0, droppedWatchEvents: 0 };
  /** Why the connection is ignored, or null while it works. */
  broken: string | null = null;
  private readonly req: ByteRing;
  private readonly rsp: ByteRing;
  private readonly i32: Int32Array;
  private readonly base: number;
  private readonly o: XenbusRingOptions;
  private readonly maxQueued: number;
  private peer: XenbusPeer | null = null;
  /** Output waiting for ring space: whole messages, the head partly written (headOff bytes). */
  private readonly queue: Uint8Array[] = [];
  private headOff = 0;
  private queuedBytes = 0;
  /** Reused request scratch (one ring's worth: no allocation per notification). */
  private readonly scratch = new Uint8Array(XENSTORE_RING_SIZE);
  private inKick = false;
  private moved = false;

  constructor(o: XenbusRingOptions) {
    if (o.pageOffset < 0 || o.pageOffset + 4096 > o.u8.length || (o.pageOffset & 0xfff) !== 0) {
      throw new RangeError(`xenbus ring page offset ${o.pageOffset} outside the buffer`);
    }
    this.o = o;
    this.i32 = o.i32;
    this.base = (o.u8.byteOffset - o.i32.byteOffset + o.pageOffset) >>> 2; // i32 indexes from its own start (ByteRing)
    const p = o.pageOffset;
    this.req = new ByteRing(o.u8, o.i32, p + XS_RING_REQ, XENSTORE_RING_SIZE, p + XS_RING_REQ_CONS, p + XS_RING_REQ_PROD);
    this.rsp = new ByteRing(o.u8, o.i32, p + XS_RING_RSP, XENSTORE_RING_SIZE, p + XS_RING_RSP_CONS, p + XS_RING_RSP_PROD);
    this.maxQueued = o.maxQueuedBytes ?? DEFAULT_MAX_QUEUED;
    // What we offer: error reporting only (no reconnection protocol).
    Atomics.store(this.i32, this.base + XS_RING_SERVER_FEATURES / 4, XENSTORE_SERVER_FEATURE_ERROR);
  }

  save(): XenbusRingState {
    // Plain Uint8Array copies (the queue may hold Buffers, whose slice() is a view and clones differently).
    const pending = this.queue.map((m, i) => new Uint8Array(m.subarray(i === 0 ? this.headOff : 0)));
    return { version: 1, broken: this.broken, pending, stats: { ...this.stats } };
  }

  /**
   * Loads saved host-side state (StateError, nothing changed, when bad: every whole message must be a
   * well-formed xsd_sockmsg of at most XENSTORE_PAYLOAD_MAX payload). Does not touch the ring page or notify;
   * the caller attaches the store connection and kicks once the domain is whole.
   */
  restore(state: XenbusRingState): void {
    const C = "xenbus-ring";
    const s = stateVersion(C, state, 1);
    const broken = stateStringOrNull(C, "broken", s.broken);
    let total = 0;
    const pending = stateArray(C, "pending", s.pending, -1).map((x, i) => {
      const m = stateBytes(C, `pending[${i}]`, x, -1);
      if (m.length === 0) throw new StateError(C, `pending[${i}]`, "empty message");
      // The first entry may be the tail of a message; every later one is a whole one (header + payload).
      const whole = i === 0 || (m.length >= XS_HEADER && m.length === XS_HEADER + new DataView(m.buffer, m.byteOffset).getUint32(12, true));
      if (!whole || m.length > XS_HEADER + XS_PAYLOAD_MAX) {
        throw new StateError(C, `pending[${i}]`, `${m.length} bytes is not a xenstore message`);
      }
      total += m.length;
      return new Uint8Array(m);
    });
    if (total > MAX_SAVED_OUTPUT) throw new StateError(C, "pending", `${total} bytes of output`);
    if (broken !== null && pending.length > 0) throw new StateError(C, "pending", "output for an ignored connection");
    const so = stateObject(C, "stats", s.stats);
    const stats = {} as XenbusRingStats;
    for (const k of Object.keys(this.stats) as (keyof XenbusRingStats)[]) stats[k] = stateInt(C, `stats.${k}`, so[k], 0, Number.MAX_SAFE_INTEGER);

    this.broken = broken;
    this.queue.length = 0;
    this.queue.push(...pending);
    this.headOff = 0;
    this.queuedBytes = total;
    Object.assign(this.stats, stats);
    this.moved = false;
  }

  /** Connects the wire-protocol side (once). */
  attach(peer: XenbusPeer): void {
    this.peer = peer;
  }

  /** Output of the store: one complete message (reply or watch event); the ring keeps the reference. */
  send(msg: Uint8Array): void {
    if (this.broken !== null) return;
    if (this.queuedBytes > this.maxQueued && msg.length >= 4 && msg[0] === XS_WATCH_EVENT && msg[1] === 0 && msg[2] === 0 && msg[3] === 0) {
      this.stats.droppedWatchEvents++;
      return;
    }
    this.queue.push(msg);
    this.queuedBytes += msg.length;
    this.flush();
    if (!this.inKick) this.notifyIfMoved();
  }

  /** The guest notified its store port: write what waits, read new requests, answer them. */
  kick(): void {
    this.stats.notifiesIn++;
    this.service();
  }

  /** What kick() does, without a notification from the guest (after a restore: output held, requests queued). */
  service(): void {
    if (this.broken !== null || this.inKick) return;
    this.inKick = true;
    try {
      this.flush();
      const peer = this.peer;
      while (peer !== null && this.broken === null && this.queuedBytes <= this.maxQueued) {
        const n = this.req.read(this.scratch);
        if (n < 0) { this.fail(XENSTORE_ERROR_RINGIDX, `request ring indexes corrupt (cons ${this.req.cons} prod ${this.req.prod})`); break; }
        if (n === 0) break;
        this.moved = true;
        this.stats.requestBytes += n;
        peer.handleBytes(this.scratch.subarray(0, n));
        if (peer.isClosed && this.broken === null) this.fail(XENSTORE_ERROR_PROTO, "the store closed the connection");
      }
    } finally {
      this.inKick = false;
    }
    this.notifyIfMoved();
  }

  /** Bytes of output waiting for ring space. */
  get pending(): number { return this.queuedBytes; }

  /** Stops serving the guest: error code in the page, the peer closed, output dropped. Idempotent. */
  fail(code: number, why: string): void {
    if (this.broken !== null) return;
    this.broken = why;
    Atomics.store(this.i32, this.base + XS_RING_ERROR / 4, code);
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.headOff = 0;
    this.o.log(`xenbus: ignoring the guest's store connection: ${why}`);
    const peer = this.peer;
    if (peer !== null && !peer.isClosed) peer.close(`xenbus: ${why}`);
  }

  private flush(): void {
    while (this.queue.length > 0 && this.broken === null) {
      const head = this.queue[0]!;
      const n = this.rsp.write(head, this.headOff);
      if (n < 0) { this.fail(XENSTORE_ERROR_RINGIDX, `response ring indexes corrupt (cons ${this.rsp.cons} prod ${this.rsp.prod})`); return; }
      if (n === 0) return;
      this.moved = true;
      this.stats.responseBytes += n;
      this.queuedBytes -= n;
      this.headOff += n;
      if (this.headOff === head.length) { this.queue.shift(); this.headOff = 0; }
    }
  }

  private notifyIfMoved(): void {
    if (!this.moved || this.broken !== null) return;
    this.moved = false;
    this.stats.notifiesOut++;
    this.o.notify();
  }
}
