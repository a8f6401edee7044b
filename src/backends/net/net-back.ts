/**
 * netback: the dom0 half of one vif (Linux drivers/net/xen-netback, protocol in xen/include/public/io/netif.h),
 * on the rings Linux netfront (drivers/net/xen-netfront.c) sets up: one or more queues (multi-queue: a tx/rx
 * ring pair and event channel(s) per queue, the number the front-end chose within multi-queue-max-queues),
 * copy mode only (no page flipping, no persistent mappings): every access to guest memory goes through
 * GrantTable.grantedPage — the two ring pages (read-write) on every pass, each tx buffer (read-only) and each
 * rx buffer (read-write) per use — and every offset and length inside a granted page is bounded by the page.
 *
 * Threading: everything runs synchronously in the domain's worker thread. The guest's EVTCHNOP_send on a
 * queue's tx (or single) port runs that queue's tx ring inside the hypercall; frames from the wire come in through receive(),
 * called by the host (switch, uplink, tests) between guest slices or from inside `out` of another vif.
 *
 * TX (guest → wire), following xenvif_tx_build_gops / xenvif_count_requests:
 *  - a packet is a first request (size = whole packet, flags), its extra-info slots (NETTXF_extra_info,
 *    chained by XEN_NETIF_EXTRA_FLAG_MORE), then fragments while NETTXF_more_data; the first slot's own
 *    length is what the fragments leave of the total;
 *  - one response per slot, in ring order (extra slots get NETIF_RSP_NULL), so the response index always
 *    equals the request index and responses land in the slots of the requests they answer;
 *  - recoverable faults answer NETIF_RSP_ERROR and drop the packet: more than XEN_NETIF_NR_SLOTS_MIN slots,
 *    a fragment bigger than what is left, a first slot shorter than an Ethernet header, a frame over the vif's
 *    MTU, a bad grant, a checksum that cannot be completed, a GSO packet gso.ts refuses (type not offered,
 *    size 0, headers or lengths that do not describe one TCP packet, segments over the MTU);
 *  - faults only a malicious front-end commits fail the vif (xenvif_fatal_tx_err → here dev.fatal): request
 *    indexes more than a ring ahead, a packet whose slots run past req_prod or exceed FATAL_SKB_SLOTS, a slot
 *    crossing its page, an unknown extra type;
 *  - NETTXF_csum_blank frames get their TCP/UDP checksum completed (checksum.ts) before `out` sees them;
 *  - a packet with a XEN_NETIF_EXTRA_TYPE_GSO extra (up to 64 KiB of one TCP stream) is cut into MTU-sized
 *    segments with complete headers and checksums (gso.ts) and `out` gets each segment;
 *  - RING_FINAL_CHECK_FOR_REQUESTS before returning (req_event = req_cons + 1, then re-check), so the
 *    front-end notifies again for the next packet; responses are pushed with
 *    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY's test on rsp_event.
 *
 * RX (wire → guest), following xenvif_rx_action in copy mode: a frame takes ceil(len / 4096) posted
 * requests; each gets the next piece copied to offset 0 of its granted page and a response in its own slot
 * (same id, status = bytes, NETRXF_more_data on all but the last). With rx GSO negotiated (the front-end's
 * feature-gso-tcpv4/-tcpv6), TCP segments are first joined into GSO packets (gro.ts; receive's `more` and
 * flushRx() mark the end of a batch): such a packet's first slot carries NETRXF_extra_info | csum_blank |
 * data_validated and the GSO extra goes in the slot after it (xenvif_rx_skb's order), and a segment delivered
 * alone whose checksums gro.ts verified carries data_validated; any other frame goes as it came, unmarked
 * (the guest verifies). With several queues a frame goes to the queue of its flow (steer.ts: a hash of its
 * addresses and ports, as xenvif_select_queue), so a flow keeps its order. With too few posted buffers the
 * frame waits in its queue's bounded rx queue (RX_QUEUE_BYTES, as Linux netback's per-queue rx queue) and req_event is set so the
 * guest's refill notifies; the queue drains on that notification (either port) and on poll(). A full queue
 * drops (counted): the host side can send far faster than an interpreted guest refills its ring, and without
 * the queue a TCP window's worth of frames was lost per refill (measured: 0.29 MB/s host→guest, resets).
 *
 * Sharing: a tx pass takes at most TX_BUDGET_SLOTS slots of one ring and leaves the rest for the next
 * notification or poll(); poll() serves the queues round-robin from a rotating first one, so no queue of a
 * busy vif waits behind another. Between domains the credit scheduler shares the pCPUs: tx work runs inside
 * the guest's own hypercalls (its own slice), and poll() once per slice of the domain; where domains' frames
 * meet — the bridge daemon's queue towards one receiver — the daemon shares it by deficit round robin per
 * sending port (src/net/stream-port.ts), so a flooding domain drops only its own frames.
 *
 * Hot path: requests are read field by field into preallocated arrays (one read per field: the guest can
 * rewrite its ring at any time, so each value is read once and then only the copy is used); the tx frame
 * buffer is reused (GSO segments are built in place in it); `out` gets a subarray view of it (one small view
 * object per frame or segment, the only allocation). The public types are in types.ts.
 */
import type { BackendDevice } from "../xenbus-backend.js";
import type { HostEndpoint } from "../../xen/event-channel.js";
import { completeChecksum } from "./checksum.js";
import { TxCredit } from "./credit.js";
import { TcpSegmenter } from "./gso.js";
import { TcpCoalescer } from "./gro.js";
import { flowQueue } from "./steer.js";
import {
  ETH_HLEN, EXTRA_FLAGS, EXTRA_GSO_SIZE, EXTRA_GSO_TYPE, EXTRA_TYPE, FATAL_SKB_SLOTS, NETRXF_more_data,
  NETRXF_csum_blank, NETRXF_data_validated, NETRXF_extra_info,
  NETTXF_csum_blank, NETTXF_extra_info, NETTXF_more_data, NET_RX_RING_SIZE, NET_TX_RING_SIZE, RXREQ_GREF, RXREQ_ID,
  RXRSP_FLAGS, RXRSP_ID, RXRSP_OFFSET, RXRSP_STATUS, RX_ENTRY, SRING_ENTRIES, SRING_REQ_EVENT, SRING_REQ_PROD,
  SRING_RSP_EVENT, SRING_RSP_PROD, TXREQ_FLAGS, TXREQ_GREF, TXREQ_ID, TXREQ_OFFSET, TXREQ_SIZE, TXRSP_ID,
  TXRSP_STATUS, TX_ENTRY, VLAN_ETH_HLEN, XEN_NETIF_EXTRA_FLAG_MORE, XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_EXTRA_TYPE_MAX,
  XEN_NETIF_EXTRA_TYPE_MCAST_ADD, XEN_NETIF_EXTRA_TYPE_MCAST_DEL, XEN_NETIF_MAX_TX_SIZE, XEN_NETIF_NR_SLOTS_MIN,
  XEN_NETIF_RSP_ERROR, XEN_NETIF_RSP_NULL, XEN_NETIF_RSP_OKAY, XEN_PAGE_SIZE, needsNotify,
} from "./netif.js";
import type { NetBack, NetBackendOptions, NetBackStats, NetFrontKeys } from "./types.js";
import { checkNetBackState, type NetBackState, type NetQueueState } from "./net-back-state.js";
import { StateError } from "../../common/state.js";

/** Frames waiting for the guest's rx buffers, at most this many bytes (then dropped), unless the options say. */
export const RX_QUEUE_BYTES = 512 * 1024;
const RX_DONE = 1, RX_NO_BUFFERS = 0, RX_FAILED = -1;
/**
 * How a queued rx frame is delivered (one number per frame, kept beside it): GSO size in the low 16 bits (0:
 * not a GSO packet), GSO type (XEN_NETIF_GSO_TYPE_*) at RXM_TYPE_SHIFT, and the checksum marks.
 */
export const RXM_SIZE = 0xffff, RXM_TYPE_SHIFT = 16, RXM_VALIDATED = 1 << 20, RXM_PARTIAL = 1 << 21;
/** Rate limit of the vif's log: lines per window. */
const LOG_LINES = 10, LOG_WINDOW_MS = 10_000;
/** Most tx slots one pass handles before leaving the rest to the next notification or poll(). */
const TX_BUDGET_SLOTS = 4 * NET_TX_RING_SIZE;
const TX_MASK = NET_TX_RING_SIZE - 1, RX_MASK = NET_RX_RING_SIZE - 1;
/** Slot scratch: the first slot plus up to FATAL_SKB_SLOTS fragments. */
const MAX_SLOTS = FATAL_SKB_SLOTS + 1;

/** One queue's connection to the front-end's rings (replaced on every reconnect; `live` guards callbacks). */
interface Queue {
  /** Queue number (the front-end's queue-N directory when there are several). */
  idx: number;
  /** False once its vif is detached or reconnected: callbacks of an old queue do nothing. */
  live: boolean;
  txRef: number;
  rxRef: number;
  /** Buffer offsets of the two ring pages. */
  txPage: number;
  rxPage: number;
  txPort: number;
  rxPort: number;
  /** Private ring indexes (BACK_RING: req_cons, rsp_prod_pvt) and the last rsp_prod we published. */
  txReqCons: number;
  txRspPvt: number;
  txRspPushed: number;
  rxReqCons: number;
  rxRspPvt: number;
  rxRspPushed: number;
  /** The front-end takes multi-slot rx packets (its feature-sg). */
  rxSg: boolean;
  /** The front-end takes TCPv4 / TCPv6 GSO packets on rx (gro.ts; see NetFrontKeys). */
  rxGso4: boolean;
  rxGso6: boolean;
  /** Our ends of the event channel(s) while bound (null once unbound or closed by the guest). */
  txEp: HostEndpoint | null;
  rxEp: HostEndpoint | null;
  /** Frames waiting for this queue's rx buffers (copies), oldest first, their RXM_* words, their total bytes. */
  rxq: Uint8Array[];
  rxMeta: number[];
  rxQueued: number;
}

export class NetBackend implements NetBack {
  readonly stats: NetBackStats = {
    txFrames: 0, txBytes: 0, txErrors: 0, txDropped: 0, rxFrames: 0, rxBytes: 0, rxDropped: 0, rxErrors: 0,
    csumCompleted: 0, fatal: 0, txThrottled: 0, gsoPackets: 0, gsoSegments: 0, rxGsoPackets: 0, rxGsoSegments: 0,
  };
  private dev: BackendDevice | null = null;
  /** The connected queues (empty: not connected). */
  private qs: Queue[] = [];
  /** poll()'s first queue, rotating. */
  private rr = 0;
  private readonly u8: Uint8Array;
  private readonly i32: Int32Array;
  private readonly dv: DataView;
  private readonly maxFrame: number;
  /** The frame being assembled from tx slots (reused for every packet). */
  private readonly frame = new Uint8Array(XEN_NETIF_MAX_TX_SIZE);
  /** Tx slot scratch (reused): index 0 is the first slot, then the fragments. */
  private readonly slotGref = new Uint32Array(MAX_SLOTS);
  private readonly slotOff = new Uint16Array(MAX_SLOTS);
  private readonly slotSize = new Uint16Array(MAX_SLOTS);
  private readonly slotId = new Uint16Array(MAX_SLOTS);
  /** Cuts GSO super-packets into MTU-sized frames, in place in `frame`. */
  private readonly gso: TcpSegmenter;
  /** Joins TCP segments from the wire into GSO packets for the guest (null: rx GSO not offered). */
  private readonly gro: TcpCoalescer | null;
  private readonly rxQueueMax: number;
  /** Backpressure thresholds (bytes in one queue) and whether the host was asked to stop (onRxBacklog). */
  private readonly rxStop: number;
  private readonly rxResume: number;
  private backlogged = false;
  private inTx = false;
  /** The rate limit's credit (null: unlimited) and its clock. */
  private readonly credit: TxCredit | null;
  private readonly now: () => number;
  /** Inside connect(): a failure is reported through its return value (connectFailure), not dev.fatal. */
  private connecting = false;
  private connectFailure: string | null = null;
  private logWindow = 0;
  private logLines = 0;
  private logDropped = 0;

  constructor(private readonly o: NetBackendOptions) {
    this.u8 = o.mem.u8;
    this.i32 = o.mem.i32;
    this.dv = o.mem.dv;
    this.maxFrame = Math.min(o.mtu + VLAN_ETH_HLEN, XEN_NETIF_MAX_TX_SIZE);
    this.gso = new TcpSegmenter(o.mtu, this.maxFrame, o.gsoTcpv4, o.gsoTcpv6);
    this.rxQueueMax = o.rxQueueBytes ?? RX_QUEUE_BYTES;
    this.rxStop = this.rxQueueMax >>> 1;
    this.rxResume = this.rxQueueMax >>> 3;
    o.onRxBacklog?.(false); // a fresh vif takes frames (the host may have stopped for a vif it replaces)
    this.gro = o.rxGso === false ? null : new TcpCoalescer(() => this.qs[0]?.rxGso4 === true, () => this.qs[0]?.rxGso6 === true);
    this.now = o.now ?? (() => performance.now());
    this.credit = o.rate === undefined ? null : new TxCredit(o.rate.bytesPerInterval, o.rate.intervalUsecs, this.now());
  }

  get device(): BackendDevice {
    if (this.dev === null) throw new Error("netback: no device attached");
    return this.dev;
  }

  get connected(): boolean { return this.qs.length > 0; }

  /** The number of connected queues (0: not connected). */
  get queues(): number { return this.qs.length; }

  /** Called once by attachNetBack with the XenStore device and the vif's MAC (for save()). */
  attachDevice(dev: BackendDevice, mac = ""): void { this.dev = dev; this.mac = mac; }
  private mac = "";

  // -------------------------------------------------------------------------------------------------------
  // Save/restore (net-back-state.ts)

  save(): NetBackState {
    const C = "netback";
    const dev = this.device, qs = this.qs;
    if (this.inTx) throw new StateError(C, "queue", "serving the tx ring: save between runs");
    if (dev.unplugging) throw new StateError(C, "(root)", "hot-unplug in progress: finish it before saving");
    for (const q of qs) {
      if (q.txReqCons !== q.txRspPvt || q.txRspPvt !== q.txRspPushed || q.rxReqCons !== q.rxRspPvt || q.rxRspPvt !== q.rxRspPushed) {
        throw new StateError(C, q.idx === 0 ? "queue" : `moreQueues[${q.idx - 1}]`, "requests in flight: drain before saving");
      }
    }
    // The packet the coalescer is joining goes into the saved queue (and this one's): a migration's snapshot
    // must not lose it (it would be the only copy of those segments: the bridge has sent them already).
    this.queueHeld();
    const rate = this.o.rate;
    const qstate = (q: Queue): NetQueueState => ({ txRef: q.txRef, rxRef: q.rxRef, txPort: q.txPort, rxPort: q.rxPort,
      txCons: q.txReqCons, rxCons: q.rxReqCons, rxSg: q.rxSg, rxGso4: q.rxGso4, rxGso6: q.rxGso6 });
    const q0 = qs[0];
    return {
      version: 1, devid: dev.devid, mac: this.mac, mtu: this.o.mtu, gsoTcpv4: this.o.gsoTcpv4, gsoTcpv6: this.o.gsoTcpv6,
      rate: rate === undefined ? null : { bytesPerInterval: rate.bytesPerInterval, intervalUsecs: rate.intervalUsecs },
      connected: dev.connected,
      queue: q0 === undefined ? null : qstate(q0),
      rxQueue: q0 === undefined ? [] : q0.rxq.map((f) => f.slice()),
      rxMeta: q0 === undefined ? [] : q0.rxMeta.slice(),
      ...(qs.length > 1 ? { moreQueues: qs.slice(1).map((q) => ({ ...qstate(q), rxQueue: q.rxq.map((f) => f.slice()), rxMeta: q.rxMeta.slice() })) } : {}),
      credit: this.credit === null ? null : this.credit.save(this.now()),
      stats: { ...this.stats },
    };
  }

  /** Checks a saved state against this vif's configuration and the restored domain (StateError if bad). */
  checkSaved(state: NetBackState, devid: number, mac: string): NetBackState {
    const rate = this.o.rate;
    return checkNetBackState(state, {
      devid, mac, mtu: this.o.mtu, gsoTcpv4: this.o.gsoTcpv4, gsoTcpv6: this.o.gsoTcpv6, rate: rate === undefined ? null : rate,
      burst: this.credit?.burst ?? 0, gnttab: this.o.gnttab, evtchn: this.o.evtchn, i32: this.i32,
      statKeys: Object.keys(this.stats) as (keyof NetBackStats)[], rxQueueBytes: this.rxQueueMax, maxQueues: this.o.maxQueues ?? 1,
    });
  }

  /** Applies a state checkSaved returned, once the device is attached (re-attaches the channels). */
  loadSaved(s: NetBackState): void {
    Object.assign(this.stats, s.stats);
    if (s.credit !== null) this.credit?.load(s.credit, this.now());
    if (s.queue === null || !this.device.connected) return;
    const gt = this.o.gnttab;
    const saved = [{ ...s.queue, rxQueue: s.rxQueue, rxMeta: s.rxMeta }, ...(s.moreQueues ?? [])];
    const qs: Queue[] = saved.map((k, idx) => ({
      idx, live: true,
      txRef: k.txRef, rxRef: k.rxRef, txPage: gt.grantedPage(k.txRef, 0, true), rxPage: gt.grantedPage(k.rxRef, 0, true),
      txPort: k.txPort, rxPort: k.rxPort, txReqCons: k.txCons, txRspPvt: k.txCons, txRspPushed: k.txCons,
      rxReqCons: k.rxCons, rxRspPvt: k.rxCons, rxRspPushed: k.rxCons, rxSg: k.rxSg, rxGso4: k.rxGso4, rxGso6: k.rxGso6,
      txEp: null, rxEp: null, rxq: k.rxQueue.slice(), rxMeta: k.rxMeta.slice(), rxQueued: k.rxQueue.reduce((a, f) => a + f.length, 0),
    }));
    for (const q of qs) {
      const [txEp, rxEp] = this.endpoints(q);
      // Checked: every port is a distinct detached host port to dom 0, so these succeed.
      if (this.o.evtchn.hostAttach(q.txPort, txEp) !== 0) { for (const x of qs) this.unbind(x); return; }
      q.txEp = txEp;
      if (rxEp !== null && this.o.evtchn.hostAttach(q.rxPort, rxEp) === 0) q.rxEp = rxEp;
    }
    this.qs = qs;
    // The host learns whether this copy wants frames (the one it replaces may have asked it to stop).
    this.backlogged = qs.some((q) => q.rxQueued > this.rxStop);
    this.o.onRxBacklog?.(this.backlogged);
  }

  /** Our ends of a queue's event channel(s): the tx (or single) port runs tx and drains rx; a separate rx
   * port only drains rx. Each goes quiet once its queue is replaced. */
  private endpoints(q: Queue): [HostEndpoint, HostEndpoint | null] {
    const txEp: HostEndpoint = {
      remoteDom: 0,
      notify: () => { if (q.live) { this.runTx(q); if (q.rxq.length > 0) this.drainRx(q); } },
      closed: () => { q.txEp = null; this.channelClosed(q, q.txPort); },
    };
    if (q.rxPort === q.txPort) return [txEp, null];
    const rxEp: HostEndpoint = {
      remoteDom: 0,
      // Rx-port events say the guest posted buffers: queued frames go in.
      notify: () => { if (q.live && q.rxq.length > 0) this.drainRx(q); },
      closed: () => { q.rxEp = null; this.channelClosed(q, q.rxPort); },
    };
    return [txEp, rxEp];
  }

  // -------------------------------------------------------------------------------------------------------
  // Connection

  /**
   * Maps each queue's rings and binds its event channel(s) (xenvif_connect_data per queue): both ring grants
   * must be read-write grants to domain 0 of RAM pages no other ring of the vif uses, and each ring's unanswered
   * requests must fit in the ring (the check of xenvif_map_frontend_data_rings). All queues or none: a bad
   * queue unbinds the ones bound before it. Returns null or why not (naming the queue when there are several).
   */
  connect(k: NetFrontKeys): string | null {
    this.detach();
    const n = k.queues.length;
    if (n < 1 || n > (this.o.maxQueues ?? 1)) return `${n} queues asked for; at most ${this.o.maxQueues ?? 1} offered`;
    const gt = this.o.gnttab, ev = this.o.evtchn;
    const pages = new Set<number>();
    const qs: Queue[] = [];
    const undo = (why: string): string => { for (const q of qs) this.unbind(q); return why; };
    for (let idx = 0; idx < n; idx++) {
      const qk = k.queues[idx]!, at = n > 1 ? `queue-${idx}/` : "";
      const txPage = gt.grantedPage(qk.txRef, 0, true);
      if (txPage < 0) return undo(`mapping ${at}tx-ring-ref ${qk.txRef}: grant error ${txPage}`);
      const rxPage = gt.grantedPage(qk.rxRef, 0, true);
      if (rxPage < 0) return undo(`mapping ${at}rx-ring-ref ${qk.rxRef}: grant error ${rxPage}`);
      if (txPage === rxPage) return undo(`${at}tx and rx rings are the same page`);
      if (pages.has(txPage) || pages.has(rxPage)) return undo(`${at}a ring page another queue uses`);
      pages.add(txPage).add(rxPage);
      // BACK_RING_ATTACH: start from the published rsp_prod (a reconnect continues where the last one stopped).
      const txRsp = this.load(txPage + SRING_RSP_PROD), rxRsp = this.load(rxPage + SRING_RSP_PROD);
      if (((this.load(txPage + SRING_REQ_PROD) - txRsp) >>> 0) > NET_TX_RING_SIZE) return undo(`${at}tx ring indexes corrupt`);
      if (((this.load(rxPage + SRING_REQ_PROD) - rxRsp) >>> 0) > NET_RX_RING_SIZE) return undo(`${at}rx ring indexes corrupt`);
      const q: Queue = {
        idx, live: true, txRef: qk.txRef, rxRef: qk.rxRef, txPage, rxPage, txPort: qk.txPort, rxPort: qk.rxPort,
        txReqCons: txRsp, txRspPvt: txRsp, txRspPushed: txRsp, rxReqCons: rxRsp, rxRspPvt: rxRsp, rxRspPushed: rxRsp,
        rxSg: k.sg, rxGso4: this.gro !== null && k.sg && k.gsoTcpv4, rxGso6: this.gro !== null && k.sg && k.gsoTcpv6,
        txEp: null, rxEp: null, rxq: [], rxMeta: [], rxQueued: 0,
      };
      const [txEp, rxEp] = this.endpoints(q);
      // A port bound already (another queue's, or anything else) is refused by hostBind.
      let rc = ev.hostBind(qk.txPort, txEp);
      if (rc !== 0) return undo(`${at}binding event channel ${qk.txPort}: ${rc}`);
      q.txEp = txEp;
      qs.push(q);
      if (rxEp !== null) {
        rc = ev.hostBind(qk.rxPort, rxEp);
        if (rc !== 0) return undo(`${at}binding event channel ${qk.rxPort}: ${rc}`);
        q.rxEp = rxEp;
      }
    }
    this.qs = qs;
    const q0 = qs[0]!;
    this.say(`vif connected: ${n > 1 ? `${n} queues, ` : ""}tx-ring-ref ${k.queues.map((x) => x.txRef).join(",")} rx-ring-ref ` +
      `${k.queues.map((x) => x.rxRef).join(",")} ports ${k.queues.map((x) => `${x.txPort}/${x.rxPort}`).join(",")}${k.sg ? " sg" : ""}` +
      `${q0.rxGso4 ? " rx-gso-tcpv4" : ""}${q0.rxGso6 ? " rx-gso-tcpv6" : ""}`);
    // Xen's bind_interdomain marks the binding side pending: requests queued while the port was unbound
    // (netfront notifies before it announces Connected) are picked up now. A violation found in them is
    // returned as the connect failure (BackendDevice then fails the device; it is not Connected yet).
    this.connectFailure = null;
    this.connecting = true;
    try { for (const q of qs) if (q.live) this.runTx(q); } finally { this.connecting = false; }
    return this.connectFailure;
  }

  /** The front-end is going away (or the device is being removed): stop touching its rings. */
  disconnect(): void {
    if (this.qs.length > 0) this.say("vif disconnected");
    this.detach();
  }

  /** Forgets the rings and unbinds our ends of the channels (the guest's ports become unbound, as in Xen). */
  private detach(): void {
    this.clearRxQueue();
    const qs = this.qs;
    this.qs = [];
    for (const q of qs) { q.live = false; this.unbind(q); }
  }

  private unbind(q: Queue): void {
    if (q.txEp !== null) { this.o.evtchn.hostUnbind(q.txPort, q.txEp); q.txEp = null; }
    if (q.rxEp !== null) { this.o.evtchn.hostUnbind(q.rxPort, q.rxEp); q.rxEp = null; }
  }

  private channelClosed(q: Queue, port: number): void {
    if (!q.live) return;
    this.say(`front-end closed event channel ${port}: rings detached`);
    this.detach();
  }

  /** A protocol violation by the front-end: detach and fail the device (xenvif_fatal_tx_err + xenbus_dev_fatal). */
  private fail(reason: string): void {
    this.detach();
    this.stats.fatal++;
    if (this.connecting) this.connectFailure = `netback: ${reason}`;
    else if (this.dev !== null) this.dev.fatal(`netback: ${reason}`);
    else this.say(`fatal: ${reason}`);
  }

  /** The ring grants still name the pages we attached (the guest may end or retarget them at any time). */
  private ringsValid(q: Queue): boolean {
    const gt = this.o.gnttab;
    if (gt.grantedPage(q.txRef, 0, true) === q.txPage && gt.grantedPage(q.rxRef, 0, true) === q.rxPage) return true;
    this.fail("ring grant revoked or retargeted while connected");
    return false;
  }

  close(): void {
    this.detach();
    this.dev?.remove();
  }

  poll(): void {
    const qs = this.qs, n = qs.length;
    if (n === 0) return;
    this.flushRx();
    // Round-robin: a different queue goes first on each pass (each pass takes at most a budget per ring).
    const first = this.rr = (this.rr + 1) % n;
    for (let i = 0; i < n; i++) {
      const q = qs[(first + i) % n]!;
      if (!q.live) return; // the vif was failed or detached meanwhile
      this.runTx(q);
      if (q.rxq.length > 0) this.drainRx(q);
    }
  }

  service(): number {
    const c = this.credit;
    if (c === null) return Infinity;
    const now = this.now();
    if (c.expire(now)) for (const q of this.qs) if (q.live) this.runTx(q);
    return c.dueIn(this.now());
  }

  // -------------------------------------------------------------------------------------------------------
  // TX: guest → wire

  /** One pass over the tx ring; never throws (an internal error fails the vif, not the host). */
  private runTx(q: Queue): void {
    // Re-entered from `out`: the running pass re-reads req_prod before it returns (another queue's requests
    // wait for their next notification or poll()).
    if (this.inTx || !q.live) return;
    this.inTx = true;
    try {
      this.txPass(q);
    } catch (e) {
      this.say(`internal error in tx: ${(e as Error)?.stack ?? e}`);
      this.fail("internal error");
    } finally {
      this.inTx = false;
    }
  }

  private txPass(q: Queue): void {
    if (!this.ringsValid(q)) return;
    const prodAt = q.txPage + SRING_REQ_PROD;
    let budget = TX_BUDGET_SLOTS;
    for (;;) {
      const prod = this.load(prodAt);
      const avail = (prod - q.txReqCons) >>> 0;
      if (avail > NET_TX_RING_SIZE) {
        this.fail(`impossible number of tx requests: req_prod ${prod}, req_cons ${q.txReqCons}`);
        return;
      }
      if (avail === 0) {
        // RING_FINAL_CHECK_FOR_REQUESTS: ask for an event at the next request, then look once more.
        this.store(q.txPage + SRING_REQ_EVENT, q.txReqCons + 1);
        if (this.load(prodAt) === prod) break;
        continue;
      }
      if (budget <= 0) break; // the rest waits for the next notification or poll()
      // The rate limit charges the packet's first-slot size before anything else (netback's order); over the
      // limit, the requests stay on the ring until service() finds the window ended.
      if (this.credit !== null &&
        !this.credit.take(this.dv.getUint16(q.txPage + SRING_ENTRIES + (q.txReqCons & TX_MASK) * TX_ENTRY + TXREQ_SIZE, true), this.now())) {
        this.stats.txThrottled++;
        break;
      }
      const used = this.txPacket(q, prod);
      if (used < 0 || !q.live) return; // failed (or disconnected by `out`)
      budget -= used;
      if ((q.txRspPvt - q.txRspPushed) >>> 0 >= NET_TX_RING_SIZE / 4) this.pushTx(q); // free slots early
    }
    this.pushTx(q);
  }

  /**
   * Consumes one packet starting at req_cons (req_prod = prod), answers all of its slots, sends it to `out`
   * when it is good. Returns the slots consumed, or -1 when the vif was failed.
   */
  private txPacket(q: Queue, prod: number): number {
    const u8 = this.u8, dv = this.dv;
    const ring = q.txPage + SRING_ENTRIES;
    const start = q.txReqCons;
    let idx = start;
    let e = ring + (idx & TX_MASK) * TX_ENTRY;
    this.slotGref[0] = dv.getUint32(e + TXREQ_GREF, true);
    this.slotOff[0] = dv.getUint16(e + TXREQ_OFFSET, true);
    const flags = dv.getUint16(e + TXREQ_FLAGS, true);
    this.slotId[0] = dv.getUint16(e + TXREQ_ID, true);
    const total = dv.getUint16(e + TXREQ_SIZE, true);
    idx++;

    // Extra-info slots (xenvif_get_extras): each must be there already and have a known type.
    let extras = 0, gso = false, mcast = false, gsoSize = 0, gsoType = 0;
    if ((flags & NETTXF_extra_info) !== 0) {
      let more = true;
      while (more) {
        if (idx === prod) { this.fail("missing extra info"); return -1; }
        e = ring + (idx & TX_MASK) * TX_ENTRY;
        const type = u8[e + EXTRA_TYPE]!, eflags = u8[e + EXTRA_FLAGS]!;
        idx++;
        extras++;
        if (type === 0 || type >= XEN_NETIF_EXTRA_TYPE_MAX) { this.fail(`invalid extra type ${type}`); return -1; }
        if (type === XEN_NETIF_EXTRA_TYPE_GSO) {
          // Read once (the guest may rewrite the slot); the last GSO extra counts, as in xenvif_get_extras.
          gso = true;
          gsoSize = dv.getUint16(e + EXTRA_GSO_SIZE, true);
          gsoType = u8[e + EXTRA_GSO_TYPE]!;
        }
        else if (type === XEN_NETIF_EXTRA_TYPE_MCAST_ADD || type === XEN_NETIF_EXTRA_TYPE_MCAST_DEL) mcast = true;
        // HASH and XDP extras carry nothing a copying back-end needs.
        more = (eflags & XEN_NETIF_EXTRA_FLAG_MORE) !== 0;
      }
    }
    if (mcast) {
      // A multicast filter update, not a packet (netback answers it and moves on). No filter is kept —
      // every multicast frame is delivered — so the update is trivially satisfied.
      this.respondTx(q, this.slotId[0]!, XEN_NETIF_RSP_OKAY, extras);
      q.txReqCons = idx;
      return idx - start;
    }

    // Fragments (xenvif_count_requests). `rest` is what the total leaves for the first slot, u16 as in Linux.
    let n = 1, rest = total;
    let drop: string | null = null;
    let more = (flags & NETTXF_more_data) !== 0;
    while (more) {
      if (idx === prod) { this.fail(`packet's slots run past req_prod ${prod}`); return -1; }
      if (n > FATAL_SKB_SLOTS) { this.fail(`packet using more than ${FATAL_SKB_SLOTS + 1} slots`); return -1; }
      e = ring + (idx & TX_MASK) * TX_ENTRY;
      const off = dv.getUint16(e + TXREQ_OFFSET, true), size = dv.getUint16(e + TXREQ_SIZE, true);
      const fflags = dv.getUint16(e + TXREQ_FLAGS, true);
      this.slotGref[n] = dv.getUint32(e + TXREQ_GREF, true);
      this.slotOff[n] = off;
      this.slotSize[n] = size;
      this.slotId[n] = dv.getUint16(e + TXREQ_ID, true);
      idx++;
      if (drop === null && n >= XEN_NETIF_NR_SLOTS_MIN) drop = `packet using more than ${XEN_NETIF_NR_SLOTS_MIN} slots`;
      if (drop === null && size > rest) drop = `slot of ${size} bytes but only ${rest} left of the packet`;
      rest = (rest - size) & 0xffff;
      if (off + size > XEN_PAGE_SIZE) { this.fail(`tx slot crosses its page: offset ${off} size ${size}`); return -1; }
      more = (fflags & NETTXF_more_data) !== 0;
      n++;
    }
    this.slotSize[0] = rest;
    if (drop === null) {
      if (rest < ETH_HLEN) drop = `first slot of ${rest} bytes`;
      else if (this.slotOff[0]! + rest > XEN_PAGE_SIZE) {
        this.fail(`tx slot crosses its page: offset ${this.slotOff[0]} size ${rest}`);
        return -1;
      } else if (!gso && total > this.maxFrame) drop = `frame of ${total} bytes over the MTU`; // GSO: gso.begin checks
    }

    let status = XEN_NETIF_RSP_OKAY;
    if (drop === null) drop = this.gather(n);
    if (drop === null && gso) {
      // Every segment's checksums are computed in full, whatever csum_blank says.
      drop = this.gso.begin(this.frame, total, gsoType, gsoSize);
    } else if (drop === null && (flags & NETTXF_csum_blank) !== 0) {
      const why = completeChecksum(this.frame, total);
      if (why !== null) drop = `checksum cannot be completed (${why})`;
      else this.stats.csumCompleted++;
    }
    if (drop !== null) {
      status = XEN_NETIF_RSP_ERROR;
      this.stats.txErrors++;
      this.say(`tx packet dropped: ${drop}`);
    }
    // One response per slot, in ring order: first, its extras (NULL), then the fragments.
    this.respondTx(q, this.slotId[0]!, status, extras);
    for (let k = 1; k < n; k++) this.respondTx(q, this.slotId[k]!, status, 0);
    q.txReqCons = idx;

    if (status === XEN_NETIF_RSP_OKAY) {
      if (!gso) this.emit(0, total);
      else {
        this.stats.gsoPackets++;
        for (let len = this.gso.next(); len > 0; len = this.gso.next()) {
          this.stats.gsoSegments++;
          this.emit(this.gso.start, len);
        }
      }
    }
    return idx - start;
  }

  /** Hands frame[start, start + len) to `out`; a throwing sink loses only that frame. */
  private emit(start: number, len: number): void {
    this.stats.txFrames++;
    this.stats.txBytes += len;
    try {
      this.o.out(this.frame.subarray(start, start + len));
    } catch (err) {
      this.stats.txDropped++;
      this.say(`tx sink failed: ${(err as Error)?.message ?? err}`);
    }
  }

  /** Copies the n slots' bytes (read-only grants) into the frame buffer; null or why not. */
  private gather(n: number): string | null {
    const gt = this.o.gnttab, u8 = this.u8, frame = this.frame;
    let pos = 0;
    for (let k = 0; k < n; k++) {
      const size = this.slotSize[k]!;
      if (size === 0) continue; // nothing to read: netback answers empty slots without touching the grant
      const page = gt.grantedPage(this.slotGref[k]!, 0, false);
      if (page < 0) return `tx grant ${this.slotGref[k]} refused (${page})`;
      const off = page + this.slotOff[k]!; // offset + size <= 4096 was checked for every slot
      frame.set(u8.subarray(off, off + size), pos);
      pos += size;
    }
    return null;
  }

  /** Writes the response for a request (and NULL responses for its `extras` extra slots) at rsp_prod_pvt. */
  private respondTx(q: Queue, id: number, status: number, extras: number): void {
    const ring = q.txPage + SRING_ENTRIES, dv = this.dv;
    let e = ring + (q.txRspPvt & TX_MASK) * TX_ENTRY;
    dv.setUint16(e + TXRSP_ID, id, true);
    dv.setInt16(e + TXRSP_STATUS, status, true);
    q.txRspPvt = (q.txRspPvt + 1) >>> 0;
    for (let i = 0; i < extras; i++) {
      e = ring + (q.txRspPvt & TX_MASK) * TX_ENTRY;
      dv.setUint16(e + TXRSP_ID, 0, true);
      dv.setInt16(e + TXRSP_STATUS, XEN_NETIF_RSP_NULL, true);
      q.txRspPvt = (q.txRspPvt + 1) >>> 0;
    }
  }

  /** RING_PUSH_RESPONSES_AND_CHECK_NOTIFY on the tx ring. */
  private pushTx(q: Queue): void {
    const old = q.txRspPushed, now = q.txRspPvt;
    if (old === now) return;
    this.store(q.txPage + SRING_RSP_PROD, now);
    q.txRspPushed = now;
    if (needsNotify(now, old, this.load(q.txPage + SRING_RSP_EVENT))) this.o.evtchn.hostNotify(q.txPort);
  }

  // -------------------------------------------------------------------------------------------------------
  // RX: wire → guest

  receive(frame: Uint8Array, more = false): boolean {
    const qs = this.qs;
    const len = frame.length;
    if (qs.length === 0 || len < ETH_HLEN || len > (qs[0]!.rxSg ? XEN_NETIF_MAX_TX_SIZE : XEN_PAGE_SIZE)) {
      this.stats.rxDropped++;
      return false;
    }
    try {
      const g = this.gro;
      if (g !== null && (qs[0]!.rxGso4 || qs[0]!.rxGso6)) {
        // A segment that continues the held packet is joined; anything else first lets the held packet go.
        if (g.join(frame)) return g.done || !more ? this.flushHeld() : true;
        this.flushHeld();
        if (this.qs !== qs) { this.stats.rxDropped++; return false; } // the flush failed the vif
        if (g.start(frame)) return g.done || !more ? this.flushHeld() : true;
      }
      return this.deliver(this.queueOf(frame, len), frame, len, 0);
    } catch (e) {
      this.say(`internal error in rx: ${(e as Error)?.stack ?? e}`);
      this.fail("internal error");
      this.stats.rxDropped++;
      return false;
    }
  }

  /** The connected queue a frame goes to (its flow's: steer.ts); the vif must be connected. */
  private queueOf(frame: Uint8Array, len: number): Queue {
    const qs = this.qs;
    return qs.length === 1 ? qs[0]! : qs[flowQueue(frame, len, qs.length)]!;
  }

  flushRx(): void {
    try { this.flushHeld(); } catch (e) {
      this.say(`internal error in rx: ${(e as Error)?.stack ?? e}`);
      this.fail("internal error");
    }
  }

  /** Delivers (or queues) the packet the coalescer holds; false when it was dropped or nothing was held. */
  private flushHeld(): boolean {
    const g = this.gro;
    if (g === null || g.len === 0) return false;
    const segs = g.segs, len = g.finish();
    let ok = false;
    if (this.qs.length > 0) {
      // One segment goes as it came, marked validated (gro.ts verified its checksums); several as a GSO packet.
      const meta = segs > 1 ? RXM_VALIDATED | RXM_PARTIAL | (g.type << RXM_TYPE_SHIFT) | g.mss : RXM_VALIDATED;
      if (segs > 1) { this.stats.rxGsoPackets++; this.stats.rxGsoSegments += segs; }
      ok = this.deliver(this.queueOf(g.buf, len), g.buf, len, meta);
    }
    g.clear();
    return ok;
  }

  /** Moves the packet the coalescer holds to its rx queue as it is (no ring access; dropped if the queue is full). */
  private queueHeld(): void {
    const g = this.gro;
    if (g === null || g.len === 0) return;
    const segs = g.segs, len = g.finish();
    const meta = segs > 1 ? RXM_VALIDATED | RXM_PARTIAL | (g.type << RXM_TYPE_SHIFT) | g.mss : RXM_VALIDATED;
    const q = this.qs.length > 0 ? this.queueOf(g.buf, len) : null;
    if (q !== null && q.rxQueued + len <= this.rxQueueMax) {
      if (segs > 1) { this.stats.rxGsoPackets++; this.stats.rxGsoSegments += segs; }
      q.rxq.push(g.buf.slice(0, len));
      q.rxMeta.push(meta);
      q.rxQueued += len;
    } else this.stats.rxDropped += segs;
    g.clear();
  }

  /**
   * Delivers frame[0, len) with `meta` (RXM_*) to the queue's buffers, or queues a copy behind the frames
   * already waiting there; false (counted) when that queue is full or the delivery failed.
   */
  private deliver(q: Queue, frame: Uint8Array, len: number, meta: number): boolean {
    if (q.rxq.length > 0) this.drainRx(q);
    if (q.rxq.length === 0) {
      const r = this.rxFrame(q, frame, len, meta);
      if (r !== RX_NO_BUFFERS) return r === RX_DONE;
    }
    if (q.rxQueued + len > this.rxQueueMax) {
      this.stats.rxDropped++;
      this.say(`rx queue ${q.idx} full (${q.rxQueued} bytes waiting for the guest's buffers): a ${len}-byte frame dropped (${this.stats.rxDropped} so far)`);
      return false;
    }
    q.rxq.push(frame.slice(0, len));
    q.rxMeta.push(meta);
    q.rxQueued += len;
    if (!this.backlogged && q.rxQueued > this.rxStop) {
      // Frames pile up faster than the guest posts buffers: the host stops sending (its socket read pauses,
      // the bridge queues, passt's window stalls) instead of this queue overflowing and dropping.
      this.backlogged = true;
      this.o.onRxBacklog?.(true);
    }
    return true;
  }

  /** Backlog gone (every queue below rxResume): the host may send again. */
  private backlogCleared(): void {
    const qs = this.qs;
    for (let i = 0; i < qs.length; i++) if (qs[i]!.rxQueued >= this.rxResume) return;
    this.backlogged = false;
    this.o.onRxBacklog?.(false);
  }

  /** Delivers the queue's waiting frames while the guest has buffers on its ring. */
  private drainRx(q: Queue): void {
    while (q.rxq.length > 0 && q.live) {
      const f = q.rxq[0]!;
      const r = this.rxFrame(q, f, f.length, q.rxMeta[0]!);
      if (r === RX_NO_BUFFERS) return;
      q.rxq.shift();
      q.rxMeta.shift();
      q.rxQueued -= f.length;
      if (this.backlogged && q.rxQueued < this.rxResume) this.backlogCleared();
    }
  }

  private clearRxQueue(): void {
    for (const q of this.qs) {
      this.stats.rxDropped += q.rxq.length;
      q.rxq.length = 0;
      q.rxMeta.length = 0;
      q.rxQueued = 0;
    }
    if (this.gro !== null && this.gro.len > 0) { this.stats.rxDropped += this.gro.segs; this.gro.clear(); }
    if (this.backlogged) { this.backlogged = false; this.o.onRxBacklog?.(false); }
  }

  /**
   * Copies frame[0, len) into the guest's buffers (xenvif_rx_skb): the first piece, then the GSO extra slot
   * when `meta` carries a GSO size (extras go after the first data slot, where netfront's xennet_get_extras
   * looks), then the rest, 4 KiB per slot. RX_DONE, RX_NO_BUFFERS (nothing consumed), or RX_FAILED (dropped).
   */
  private rxFrame(q: Queue, frame: Uint8Array, len: number, meta: number): number {
    if (!this.ringsValid(q)) { this.stats.rxDropped++; return RX_FAILED; }
    const prod = this.load(q.rxPage + SRING_REQ_PROD);
    const avail = (prod - q.rxReqCons) >>> 0;
    if (avail > NET_RX_RING_SIZE) {
      this.fail(`impossible number of rx requests: req_prod ${prod}, req_cons ${q.rxReqCons}`);
      this.stats.rxDropped++;
      return RX_FAILED;
    }
    const gsoSize = meta & RXM_SIZE;
    const data = Math.ceil(len / XEN_PAGE_SIZE), need = data + (gsoSize !== 0 ? 1 : 0);
    if (avail < need) {
      // xenvif_rx_ring_slots_available: have the guest's next refill notify (feature-rx-notify), then look
      // again — the guest may have posted buffers between our read of req_prod and the req_event store.
      this.store(q.rxPage + SRING_REQ_EVENT, q.rxReqCons + need);
      if (((this.load(q.rxPage + SRING_REQ_PROD) - q.rxReqCons) >>> 0) < need) return RX_NO_BUFFERS;
    }
    const gt = this.o.gnttab, u8 = this.u8, dv = this.dv;
    const ring = q.rxPage + SRING_ENTRIES;
    // NETRXF_* of the first slot: csum_blank | data_validated for a GSO packet (CHECKSUM_PARTIAL, as Linux
    // netback marks one), data_validated for a segment whose checksum was verified; extra_info before a GSO slot.
    let first = (meta & RXM_VALIDATED) !== 0 ? NETRXF_data_validated : 0;
    if ((meta & RXM_PARTIAL) !== 0) first |= NETRXF_csum_blank;
    if (gsoSize !== 0) first |= NETRXF_extra_info;
    let pos = 0, ok = true;
    for (let k = 0; k < data; k++) {
      let e = ring + (q.rxReqCons & RX_MASK) * RX_ENTRY;
      const id = dv.getUint16(e + RXREQ_ID, true), gref = dv.getUint32(e + RXREQ_GREF, true);
      q.rxReqCons = (q.rxReqCons + 1) >>> 0;
      const chunk = Math.min(XEN_PAGE_SIZE, len - pos);
      const page = gt.grantedPage(gref, 0, true);
      let status = chunk;
      if (page < 0) { status = XEN_NETIF_RSP_ERROR; ok = false; }
      else u8.set(data === 1 && len === frame.length ? frame : frame.subarray(pos, pos + chunk), page); // chunk <= 4096 at offset 0
      // The response goes to rsp_prod_pvt, which equals the index of the request just read: its own slot.
      e = ring + (q.rxRspPvt & RX_MASK) * RX_ENTRY;
      dv.setUint16(e + RXRSP_ID, id, true);
      dv.setUint16(e + RXRSP_OFFSET, 0, true);
      dv.setUint16(e + RXRSP_FLAGS, (k < data - 1 ? NETRXF_more_data : 0) | (k === 0 ? first : 0), true);
      dv.setInt16(e + RXRSP_STATUS, status, true);
      q.rxRspPvt = (q.rxRspPvt + 1) >>> 0;
      pos += chunk;
      if (k === 0 && gsoSize !== 0) {
        // The extra slot: its request's buffer is not used (netfront puts it back on the ring). The whole
        // 8-byte entry is the netif_extra_info: type, flags, gso.size, gso.type, pad, gso.features.
        q.rxReqCons = (q.rxReqCons + 1) >>> 0;
        e = ring + (q.rxRspPvt & RX_MASK) * RX_ENTRY;
        u8[e + EXTRA_TYPE] = XEN_NETIF_EXTRA_TYPE_GSO;
        u8[e + EXTRA_FLAGS] = 0;
        dv.setUint16(e + EXTRA_GSO_SIZE, gsoSize, true);
        u8[e + EXTRA_GSO_TYPE] = (meta >>> RXM_TYPE_SHIFT) & 3;
        u8[e + EXTRA_GSO_TYPE + 1] = 0;
        dv.setUint16(e + EXTRA_GSO_TYPE + 2, 0, true);
        q.rxRspPvt = (q.rxRspPvt + 1) >>> 0;
      }
    }
    this.pushRx(q);
    if (!ok) {
      this.stats.rxErrors++;
      this.say("rx frame hit a bad grant in a posted buffer");
      return RX_FAILED;
    }
    this.stats.rxFrames++;
    this.stats.rxBytes += len;
    return RX_DONE;
  }

  private pushRx(q: Queue): void {
    const old = q.rxRspPushed, now = q.rxRspPvt;
    if (old === now) return;
    this.store(q.rxPage + SRING_RSP_PROD, now);
    q.rxRspPushed = now;
    if (needsNotify(now, old, this.load(q.rxPage + SRING_RSP_EVENT))) this.o.evtchn.hostNotify(q.rxPort);
  }

  // -------------------------------------------------------------------------------------------------------
  // Shared-ring index words: Atomics, the ordering the protocol's barriers pair with once a vCPU runs in
  // another thread (ring pages are 4 KiB-aligned in the buffer, so every index word is 4-aligned).

  private load(off: number): number { return Atomics.load(this.i32, off >>> 2) >>> 0; }
  private store(off: number, v: number): void { Atomics.store(this.i32, off >>> 2, v | 0); }

  /** The vif's log, at most LOG_LINES per LOG_WINDOW_MS (a hostile guest can cause one line per packet). */
  private say(line: string): void {
    const now = Date.now();
    if (now - this.logWindow > LOG_WINDOW_MS) {
      if (this.logDropped > 0) this.o.log(`netback: (${this.logDropped} lines suppressed)`);
      this.logWindow = now; this.logLines = 0; this.logDropped = 0;
    }
    if (this.logLines++ < LOG_LINES) this.o.log(`netback: ${line}`);
    else this.logDropped++;
  }
}
