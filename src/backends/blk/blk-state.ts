/**
 * blkback's saved state (docs/save-restore.md) and its checks against the configuration and the restored
 * domain (grant table, RAM, event channels), done before anything is opened or attached.
 *
 * Version 2 (multi-queue, multi-page rings, persistent grants): per ring its page grants, port, indexes and
 * the refs of its persistent grants, which restore pins again (the guest's entries, in the saved RAM, still
 * say GTF_reading|GTF_writing; the pin counts themselves are hypervisor state the grant table does not save).
 * Version 1 (one single-page ring, no persistent grants) is still read.
 */
import type { XenDomain } from "../../xen/domain.js";
import { StateError, stateArray, stateBool, stateInt, stateObject, stateVersion } from "../../common/state.js";
import { BLKIF_MAX_RING_ORDER, BlkBackRing, blkifRingSize } from "./blkif.js";
import { MAX_PERSISTENT_GRANTS } from "./persistent-grants.js";
import type { BlkDiskConfig } from "./blk-back.js";
import type { BlkOffer } from "./blk-negotiate.js";

export interface BlkBackStats {
  /** Requests taken from the ring (all operations, good or bad). */
  requests: number;
  reads: number;
  writes: number;
  /** Reads and writes among the above that came as BLKIF_OP_INDIRECT. */
  indirect: number;
  flushes: number;
  discards: number;
  bytesRead: number;
  bytesWritten: number;
  /** Requests answered BLKIF_RSP_ERROR (bad requests and I/O errors). */
  errors: number;
  /** Requests answered BLKIF_RSP_EOPNOTSUPP. */
  unsupported: number;
  /** Host I/O errors among `errors`. */
  ioErrors: number;
  /** Times requests waited on the ring because every I/O slot was taken (Linux blkback's oo_req; xentop VBD_OO). */
  outOfRequests: number;
  /** Reads and writes served on the domain's thread, the I/O thread idle (blk-back.ts INLINE_*). */
  inline: number;
  /** Times an inline request took longer than INLINE_SLOW_MS and the disk went back to its thread for a while. */
  inlineBackoffs: number;
}

/** One saved ring (queue). */
export interface BlkRingState {
  /** Grants of the ring pages (2^ringOrder). */
  ringRefs: number[];
  port: number;
  reqCons: number;
  rspProdPvt: number;
  /** Refs of the ring's persistent grants (empty without the feature). */
  pgrants: number[];
}

/**
 * Saved blkback state. save() first waits (up to 10 s) for the requests in flight in the I/O thread and answers
 * them, then checks that every request taken is answered and published, and refuses otherwise. Requests the
 * guest queued but blkback has not taken yet are in the ring pages (guest RAM) and are served after restore.
 * Wiring, given to restore: the domain, the store (whose restored tree holds the device's nodes), the image
 * file (config.path: the same contents, perhaps another path) and the log.
 */
export interface BlkBackState {
  version: 2;
  /** Disk identity as the guest knows it: virtual device, name, read-only, size in sectors. */
  devid: number;
  vdev: string;
  readOnly: boolean;
  sectors: number;
  /** The xenbus connection is up (then `rings` has one ring per queue). */
  connected: boolean;
  /** Negotiated: persistent grants, ring page order. */
  persistent: boolean;
  ringOrder: number;
  rings: BlkRingState[];
  stats: BlkBackStats;
  loggedErrors: number;
}

/** Version 1, as saved before multi-queue (read by restore). */
interface BlkBackStateV1 {
  version: 1;
  devid: number; vdev: string; readOnly: boolean; sectors: number; connected: boolean;
  ring: { ringRef: number; port: number; reqCons: number; rspProdPvt: number } | null;
  stats: BlkBackStats; loggedErrors: number;
}

const C = "blkback";
/** Counters added after the formats were first saved (absent in older states: 0). */
const LATER_STATS: ReadonlySet<string> = new Set(["outOfRequests", "inline", "inlineBackoffs"]);

/**
 * Checks a saved state (version 1 or 2) against the configuration, the offer and the restored domain: ring
 * grants as connect() checks them, detached ports to dom0, quiet rings, persistent grants writable grants to
 * dom0 within the bound. Returns it as version 2; throws StateError.
 */
export function checkBlkState(saved: BlkBackState | BlkBackStateV1, cfg: BlkDiskConfig, xen: XenDomain, offer: BlkOffer,
  backendDom: number, statKeys: readonly (keyof BlkBackStats)[], maxLogged: number): BlkBackState {
  const s0 = stateObject(C, "(root)", saved);
  const v = stateInt(C, "version", s0.version, 1, 2);
  const s = stateVersion(C, saved, v) as unknown as Record<string, unknown>;
  stateInt(C, "devid", s.devid, cfg.devid, cfg.devid);
  if (s.vdev !== cfg.vdev) throw new StateError(C, "vdev", `${String(s.vdev)} saved, configured ${cfg.vdev}`);
  if (stateBool(C, "readOnly", s.readOnly) !== cfg.readOnly) throw new StateError(C, "readOnly", "differs from the configuration");
  const sectors = stateInt(C, "sectors", s.sectors, 1, Number.MAX_SAFE_INTEGER);
  const connected = stateBool(C, "connected", s.connected);
  const loggedErrors = stateInt(C, "loggedErrors", s.loggedErrors, 0, maxLogged);
  const so = stateObject(C, "stats", s.stats);
  const stats = {} as BlkBackStats;
  // outOfRequests, inline and inlineBackoffs came after both versions' first saves: a state without them counts from 0.
  for (const k of statKeys) stats[k] = stateInt(C, `stats.${k}`, LATER_STATS.has(k) && so[k] === undefined ? 0 : so[k], 0, Number.MAX_SAFE_INTEGER);

  let persistent = false, ringOrder = 0;
  let raw: { at: string; o: Record<string, unknown>; refs: unknown; pgrants: unknown }[] = [];
  if (v === 1) {
    if (s.ring !== null) {
      const ro = stateObject(C, "ring", s.ring);
      raw = [{ at: "ring", o: ro, refs: [ro.ringRef], pgrants: [] }];
    }
  } else {
    persistent = stateBool(C, "persistent", s.persistent);
    ringOrder = stateInt(C, "ringOrder", s.ringOrder, 0, BLKIF_MAX_RING_ORDER);
    raw = stateArray(C, "rings", s.rings, -1).map((x, i) => {
      const o = stateObject(C, `rings[${i}]`, x);
      return { at: `rings[${i}]`, o, refs: o.ringRefs, pgrants: o.pgrants };
    });
  }
  if (persistent && !offer.persistent) throw new StateError(C, "persistent", "saved with persistent grants, which this host does not offer (set XENO_BLK_PERSISTENT=1)");
  if (ringOrder > offer.maxRingOrder) throw new StateError(C, "ringOrder", `${ringOrder} saved, at most ${offer.maxRingOrder} offered`);
  if (raw.length > offer.maxQueues) throw new StateError(C, "rings", `${raw.length} queues saved, at most ${offer.maxQueues} offered`);
  const ports = new Set<number>();
  const detached = xen.evtchn.detachedHostPorts();
  const rings = raw.map(({ at, o, refs, pgrants }): BlkRingState => {
    const ringRefs = stateArray(C, `${at}.ringRefs`, refs, 1 << ringOrder).map((r, k) => stateInt(C, `${at}.ringRefs[${k}]`, r, 0, 0xffffffff));
    if (ringRefs.length !== 1 << ringOrder) throw new StateError(C, `${at}.ringRefs`, `${ringRefs.length} pages for ring order ${ringOrder}`);
    const port = stateInt(C, `${at}.port`, o.port, 1, 4095);
    const reqCons = stateInt(C, `${at}.reqCons`, o.reqCons, 0, 0xffffffff);
    const rspProdPvt = stateInt(C, `${at}.rspProdPvt`, o.rspProdPvt, 0, 0xffffffff);
    const pages = ringRefs.map((ref, k) => {
      const page = xen.gnttab.grantedPage(ref, backendDom, true);
      if (page < 0) throw new StateError(C, `${at}.ringRefs[${k}]`, `grant ${ref}: status ${page}`);
      return page;
    });
    if (ports.has(port) || !detached.includes(port) || xen.evtchn.remoteDom[port] !== backendDom) {
      throw new StateError(C, `${at}.port`, `${port} is not a detached channel to dom ${backendDom} (or is used twice)`);
    }
    ports.add(port);
    const probe = new BlkBackRing(xen.mem.u8, xen.mem.i32, pages);
    if (reqCons !== rspProdPvt || rspProdPvt !== probe.rspProd) {
      throw new StateError(C, `${at}.reqCons`, `req_cons ${reqCons}, rsp_prod_pvt ${rspProdPvt}, rsp_prod ${probe.rspProd}: not drained`);
    }
    if (((probe.reqProd - rspProdPvt) >>> 0) > blkifRingSize(ringOrder)) throw new StateError(C, at, `req_prod ${probe.reqProd} more than a ring ahead`);
    const pgList = stateArray(C, `${at}.pgrants`, pgrants, -1);
    if (pgList.length > MAX_PERSISTENT_GRANTS) throw new StateError(C, `${at}.pgrants`, `${pgList.length} persistent grants, at most ${MAX_PERSISTENT_GRANTS}`);
    const pg = pgList.map((r, k) => {
      const ref = stateInt(C, `${at}.pgrants[${k}]`, r, 0, 0xffffffff);
      const page = xen.gnttab.grantedPage(ref, backendDom, true);
      if (page < 0) throw new StateError(C, `${at}.pgrants[${k}]`, `persistent grant ${ref}: status ${page}`);
      return ref;
    });
    if (!persistent && pg.length > 0) throw new StateError(C, `${at}.pgrants`, "persistent grants without the feature");
    if (new Set(pg).size !== pg.length) throw new StateError(C, `${at}.pgrants`, "a grant listed twice");
    return { ringRefs, port, reqCons, rspProdPvt, pgrants: pg };
  });
  if (connected !== (rings.length > 0)) throw new StateError(C, "connected", "connected exactly when rings are saved");
  return { version: 2, devid: cfg.devid, vdev: cfg.vdev, readOnly: cfg.readOnly, sectors, connected, persistent, ringOrder, rings, stats, loggedErrors };
}
