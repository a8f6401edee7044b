/**
 * Saved netback state (NetBackState) and its checks, for net-back.ts (the engine) and index.ts (restoreNetBack).
 *
 * What is in flight and what is saved: netback answers every tx request it takes before it returns, and writes
 * every rx response as it fills a buffer, so between runs both rings are drained as far as netback's side goes
 * (req_cons = rsp_prod_pvt = the published rsp_prod); save() checks it and refuses otherwise. Requests the guest
 * queued and netback has not taken (tx held back by the rate limit, rx buffers posted in advance) are in the
 * ring pages, guest RAM, and are served after restore. Frames from the wire still waiting for rx buffers are
 * recorded (`rxQueue`), as Linux netback's rx queue holds them.
 *
 * Wiring, given to restore: the domain (memory, grant table, event channels), the store holding the device, the
 * `out` sink, the log and the clock.
 */
import type { EventChannels } from "../../xen/event-channel.js";
import type { GrantTable } from "../../xen/grant-table.js";
import type { NetBackStats } from "./types.js";
import type { TxCreditState } from "./credit.js";
import { ETH_HLEN, NET_RX_RING_SIZE, NET_TX_RING_SIZE, SRING_REQ_PROD, SRING_RSP_PROD, XEN_NETIF_MAX_TX_SIZE,
  XEN_PAGE_SIZE } from "./netif.js";
import { StateError, stateArray, stateBool, stateBytes, stateInt, stateNumber, stateObject, stateVersion }
  from "../../common/state.js";

export interface NetQueueState {
  txRef: number;
  rxRef: number;
  txPort: number;
  /** Equal to txPort with a single event channel. */
  rxPort: number;
  /** req_cons = rsp_prod_pvt = rsp_prod of each ring (drained). */
  txCons: number;
  rxCons: number;
  /** The front-end takes multi-slot rx packets. */
  rxSg: boolean;
  /** Rx GSO negotiated (absent in states saved before rx GSO: false). */
  rxGso4: boolean;
  rxGso6: boolean;
}

export interface NetBackState {
  version: 1;
  /** vif identity and what was offered: must match the configuration the vif is restored with. */
  devid: number;
  mac: string;
  mtu: number;
  gsoTcpv4: boolean;
  /** feature-gso-tcpv6 offered (absent in states saved before it was: their guests saw 0 and send no TSO6). */
  gsoTcpv6?: boolean;
  rate: { bytesPerInterval: number; intervalUsecs: number } | null;
  /** The xenbus connection is up (then `queue` is set). */
  connected: boolean;
  /** Queue 0 (the only one without multi-queue). */
  queue: NetQueueState | null;
  /** Frames from the wire waiting for queue 0's rx buffers, oldest first. */
  rxQueue: Uint8Array[];
  /**
   * For each queued frame, how it is delivered (net-back.ts RXM_*: GSO size and type, checksum marks); absent in
   * states saved before rx GSO (all 0: plain frames).
   */
  rxMeta: number[];
  /** Queues 1.. of a multi-queue vif, each with its own waiting frames (absent with one queue, and in states
   * saved before multi-queue). */
  moreQueues?: (NetQueueState & { rxQueue: Uint8Array[]; rxMeta: number[] })[];
  /** The rate limit's credit (times relative to the clock at save), null without a rate limit. */
  credit: TxCreditState | null;
  stats: NetBackStats;
}

/** What the checks compare against: the configuration and the restored domain. */
export interface NetRestoreContext {
  devid: number;
  mac: string;
  mtu: number;
  gsoTcpv4: boolean;
  gsoTcpv6: boolean;
  rate: { bytesPerInterval: number; intervalUsecs: number } | null;
  /** max(BYTES, 128 KiB) of the configured rate. */
  burst: number;
  gnttab: GrantTable;
  evtchn: EventChannels;
  i32: Int32Array;
  statKeys: readonly (keyof NetBackStats)[];
  rxQueueBytes: number;
  /** Queues this vif offers (multi-queue-max-queues): a state with more is refused. */
  maxQueues: number;
}

const C = "netback";
/** Counters a state saved by an older build may lack. */
const LATER_STATS: ReadonlySet<string> = new Set(["rxGsoPackets", "rxGsoSegments"]);
/** Largest RXM_* word: size, type (2 bits), VALIDATED (bit 20), PARTIAL (bit 21). */
const RXM_MAX = (1 << 22) - 1;

/** Checks everything in a saved state; returns a clean copy or throws StateError. Changes nothing. */
export function checkNetBackState(state: unknown, x: NetRestoreContext): NetBackState {
  const s = stateVersion(C, state, 1);
  stateInt(C, "devid", s.devid, x.devid, x.devid);
  if (s.mac !== x.mac) throw new StateError(C, "mac", `${String(s.mac)} saved, configured ${x.mac}`);
  stateInt(C, "mtu", s.mtu, x.mtu, x.mtu);
  if (stateBool(C, "gsoTcpv4", s.gsoTcpv4) !== x.gsoTcpv4) throw new StateError(C, "gsoTcpv4", "differs from the configuration");
  // Offering more than the guest saw is harmless (it sends no TSO6 it was not offered); offering less is not.
  if (s.gsoTcpv6 !== undefined && stateBool(C, "gsoTcpv6", s.gsoTcpv6) && !x.gsoTcpv6) {
    throw new StateError(C, "gsoTcpv6", "offered when saved, not by this configuration");
  }
  const rate = s.rate === null ? null : stateObject(C, "rate", s.rate);
  if ((rate === null) !== (x.rate === null) ||
    (rate !== null && (rate.bytesPerInterval !== x.rate!.bytesPerInterval || rate.intervalUsecs !== x.rate!.intervalUsecs))) {
    throw new StateError(C, "rate", "differs from the configuration");
  }
  const connected = stateBool(C, "connected", s.connected);
  const so = stateObject(C, "stats", s.stats);
  const stats = {} as NetBackStats;
  // Counters added later count from 0 in a state saved without them.
  for (const k of x.statKeys) stats[k] = so[k] === undefined && LATER_STATS.has(k) ? 0 : stateInt(C, `stats.${k}`, so[k], 0, Number.MAX_SAFE_INTEGER);

  const pages = new Set<number>(), ports = new Set<number>();
  const queue = s.queue === null ? null : checkQueue(stateObject(C, "queue", s.queue), "queue", x, pages, ports);
  if (connected !== (queue !== null)) throw new StateError(C, "connected", "connected exactly when a queue is saved");
  const rx0 = checkRx(s.rxQueue, s.rxMeta, "", queue, x);
  const more = s.moreQueues === undefined ? [] : stateArray(C, "moreQueues", s.moreQueues, -1);
  if (more.length > 0 && queue === null) throw new StateError(C, "moreQueues", "queues saved for a disconnected vif");
  if (1 + more.length > x.maxQueues) throw new StateError(C, "moreQueues", `${1 + more.length} queues saved, ${x.maxQueues} offered`);
  const moreQueues = more.map((m, i) => {
    const at = `moreQueues[${i}]`, o = stateObject(C, at, m);
    const q = checkQueue(o, at, x, pages, ports);
    if (q.rxSg !== queue!.rxSg || q.rxGso4 !== queue!.rxGso4 || q.rxGso6 !== queue!.rxGso6) throw new StateError(C, at, "features differ from queue 0's");
    return { ...q, ...checkRx(o.rxQueue, o.rxMeta, `${at}.`, q, x) };
  });

  let credit: TxCreditState | null = null;
  if ((s.credit === null) !== (x.rate === null)) throw new StateError(C, "credit", "present exactly with a rate limit");
  if (s.credit !== null) {
    const c = stateObject(C, "credit", s.credit);
    credit = {
      remaining: stateInt(C, "credit.remaining", c.remaining, 0, x.burst),
      windowStartIn: stateNumber(C, "credit.windowStartIn", c.windowStartIn, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
      wakeIn: c.wakeIn === null ? null : stateNumber(C, "credit.wakeIn", c.wakeIn, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
    };
  }
  return { version: 1, devid: x.devid, mac: x.mac, mtu: x.mtu, gsoTcpv4: x.gsoTcpv4, gsoTcpv6: x.gsoTcpv6, rate: x.rate, connected, queue,
    rxQueue: rx0.rxQueue, rxMeta: rx0.rxMeta, ...(moreQueues.length > 0 ? { moreQueues } : {}), credit, stats };
}

/** One saved queue, checked as connect() checks the front-end's keys; its pages and ports join `pages`/`ports`
 * (no two queues may share one). */
function checkQueue(q: Record<string, unknown>, at: string, x: NetRestoreContext, pages: Set<number>, ports: Set<number>): NetQueueState {
  const u32 = (n: string): number => stateInt(C, `${at}.${n}`, q[n], 0, 0xffffffff);
  const txRef = u32("txRef"), rxRef = u32("rxRef"), txCons = u32("txCons"), rxCons = u32("rxCons");
  const txPort = stateInt(C, `${at}.txPort`, q.txPort, 1, 4095), rxPort = stateInt(C, `${at}.rxPort`, q.rxPort, 1, 4095);
  const rxSg = stateBool(C, `${at}.rxSg`, q.rxSg);
  const rxGso4 = q.rxGso4 === undefined ? false : stateBool(C, `${at}.rxGso4`, q.rxGso4);
  const rxGso6 = q.rxGso6 === undefined ? false : stateBool(C, `${at}.rxGso6`, q.rxGso6);
  if ((rxGso4 || rxGso6) && !rxSg) throw new StateError(C, `${at}.rxGso4`, "rx GSO without feature-sg");
  // As connect() checks them: read-write grants to dom 0 of two distinct pages, in the restored grant table.
  const txPage = x.gnttab.grantedPage(txRef, 0, true), rxPage = x.gnttab.grantedPage(rxRef, 0, true);
  if (txPage < 0) throw new StateError(C, `${at}.txRef`, `grant ${txRef}: status ${txPage}`);
  if (rxPage < 0) throw new StateError(C, `${at}.rxRef`, `grant ${rxRef}: status ${rxPage}`);
  if (txPage === rxPage) throw new StateError(C, `${at}.rxRef`, "tx and rx rings are the same page");
  if (pages.has(txPage) || pages.has(rxPage)) throw new StateError(C, `${at}.txRef`, "a ring page another queue uses");
  pages.add(txPage).add(rxPage);
  const detached = x.evtchn.detachedHostPorts();
  for (const [n, p] of [["txPort", txPort], ["rxPort", rxPort]] as const) {
    if (!detached.includes(p) || x.evtchn.remoteDom[p] !== 0) throw new StateError(C, `${at}.${n}`, `${p} is not a detached channel to dom 0`);
  }
  if (ports.has(txPort) || ports.has(rxPort)) throw new StateError(C, `${at}.txPort`, "an event channel another queue uses");
  ports.add(txPort).add(rxPort);
  const load = (off: number): number => Atomics.load(x.i32, off >>> 2) >>> 0;
  const ring = (n: string, page: number, cons: number, size: number): void => {
    if (load(page + SRING_RSP_PROD) !== cons) throw new StateError(C, `${at}.${n}`, `${cons}, the page's rsp_prod is ${load(page + SRING_RSP_PROD)}: not drained`);
    if (((load(page + SRING_REQ_PROD) - cons) >>> 0) > size) throw new StateError(C, `${at}.${n}`, "req_prod more than a ring ahead");
  };
  ring("txCons", txPage, txCons, NET_TX_RING_SIZE);
  ring("rxCons", rxPage, rxCons, NET_RX_RING_SIZE);
  return { txRef, rxRef, txPort, rxPort, txCons, rxCons, rxSg, rxGso4, rxGso6 };
}

/** A queue's waiting frames and their RXM_* words (`at`: "" for queue 0's top-level keys, "moreQueues[i]." else). */
function checkRx(rq: unknown, rm: unknown, at: string, queue: NetQueueState | null, x: NetRestoreContext): { rxQueue: Uint8Array[]; rxMeta: number[] } {
  let total = 0;
  const max = queue?.rxSg === true ? XEN_NETIF_MAX_TX_SIZE : XEN_PAGE_SIZE;
  const rxQueue = stateArray(C, `${at}rxQueue`, rq, -1).map((f, i) => {
    const b = stateBytes(C, `${at}rxQueue[${i}]`, f, -1);
    if (b.length < ETH_HLEN || b.length > max) throw new StateError(C, `${at}rxQueue[${i}]`, `frame of ${b.length} bytes`);
    total += b.length;
    return new Uint8Array(b);
  });
  if (total > x.rxQueueBytes) throw new StateError(C, `${at}rxQueue`, `${total} bytes queued, at most ${x.rxQueueBytes}`);
  if (rxQueue.length > 0 && queue === null) throw new StateError(C, `${at}rxQueue`, "frames queued for a disconnected vif");
  const rxMeta = rm === undefined ? rxQueue.map(() => 0) : stateArray(C, `${at}rxMeta`, rm, rxQueue.length).map((m, i) => {
    const v = stateInt(C, `${at}rxMeta[${i}]`, m, 0, RXM_MAX);
    const size = v & 0xffff, type = (v >>> 16) & 0xf;
    // A GSO packet: a negotiated type, and a size that leaves at least two segments' worth of frame.
    if (size !== 0 && !((type === 1 && queue?.rxGso4 === true) || (type === 2 && queue?.rxGso6 === true))) {
      throw new StateError(C, `${at}rxMeta[${i}]`, `GSO type ${type} was not negotiated`);
    }
    if ((size === 0) !== (type === 0) || (size !== 0 && size >= rxQueue[i]!.length)) {
      throw new StateError(C, `${at}rxMeta[${i}]`, `GSO size ${size} type ${type} for a ${rxQueue[i]!.length}-byte frame`);
    }
    return v;
  });
  return { rxQueue, rxMeta };
}
