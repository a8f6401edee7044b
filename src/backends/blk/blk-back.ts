/**
 * blkback: the block back-end for one virtual disk of one domain (Linux drivers/block/xen-blkback, protocol
 * xen/include/public/io/blkif.h), serving a disk image file to the guest's xen-blkfront.
 *
 * XenStore: a BackendDevice of type "vbd" with the keys libxl writes (params, type, mode, dev, device-type,
 * removable, bootable; front: virtual-device, device-type) and those blkback advertises (sectors, info,
 * sector-size, physical-sector-size, feature-flush-cache, feature-barrier, feature-discard + discard-*,
 * feature-max-indirect-segments 256: BLKIF_OP_INDIRECT, whose segment list lives in granted pages, so blkfront
 * sends up to 32 segments — 128 KiB — per request instead of 11; 32 is blkfront's own default, and only the guest
 * can raise it, with `xen_blkfront.max_indirect_segments=256` on its command line: a 1 MiB O_DIRECT read or write
 * is then one request instead of eight, and the domain thread's CPU per MiB fell by half (reads) to two thirds
 * (writes) in bench/io/wakeups — most of a request's cost is the guest kernel's own work per request, not this
 * back-end's; docs/benchmarks.md, session 25), and the offers negotiated in
 * blk-negotiate.ts: feature-persistent (persistent-grants.ts; with XENO_BLK_PERSISTENT=1 only: it costs the guest a
 * copy of every byte, measured slower here), max-ring-page-order 4 (rings of up to 16 pages,
 * 512 requests), multi-queue-max-queues = the guest's vCPUs (one ring per vCPU, each with its own event channel).
 *
 * Connect (front-end Initialised): the front-end's keys are read (blk-negotiate.ts); every ring page must be a
 * writable full-page grant to dom0 (GrantTable.grantedPage); each queue's unbound port is bound as a host
 * endpoint whose notify() serves the rings. Each queue is a BlkRing (blk-ring.ts) living for one connection.
 *
 * Serving (run): the rings are served round-robin, at most RING_BUDGET requests of one ring per pass and
 * MAX_REQUESTS_PER_RUN in all, so a busy queue cannot starve the others of the same disk; between domains, a disk
 * takes a request only while it is not too far ahead, in cost, of the other domains' disks in use (io-share.ts:
 * the fair share, so a flat-out writer cannot take a random reader's host CPU; held requests wait in the ring, as
 * a throttled disk's do under its limit, blk-limit.ts). Each request is copied
 * out of its ring and validated completely (blk-request.ts: operation, segment count, sectors inside the page,
 * the range inside the disk, every grant with the right permission) before any byte moves; a bad request gets
 * BLKIF_RSP_ERROR and changes nothing, an unknown operation BLKIF_RSP_EOPNOTSUPP. A guest whose req_prod runs
 * more than a ring ahead is misbehaving: the device is failed (xenbus error node, Closing), as blkback halts such
 * a ring. Nothing is thrown out of notify() and every guest access goes through a granted page offset, so guest
 * memory outside granted pages and host memory are never touched.
 *
 * File I/O runs off the vCPU thread (blk-io.ts, io-thread.ts): a validated request's grants are held (pinned,
 * or kept as persistent grants), its segments become (RAM offset, length) runs in a slot of the disk's queue,
 * and the disk's I/O thread moves the bytes, in submission order across all rings (so a flush covers every write
 * queued before it). Completions are taken without blocking by service() after every slice (src/hv/machine.ts
 * poll; the I/O thread rings the domain thread's doorbell) and on every notify: grants given back, then the
 * response posted on the ring the request came on — so responses may come out of order (refusals at once, I/O
 * as it completes), as with Linux blkback. At most IO_SLOTS requests per disk are in flight; the rest wait in
 * their rings. save() drains first; close() never waits (the thread finishes the operation in progress, drops
 * the rest and closes the image; abandoned requests keep their grants pinned so their pages are never written
 * after the guest could reuse them); a front-end that disconnects gets no answers for requests of its old
 * rings, whose grants are released as they complete. With $XENO_BLK_SYNC=1 (A/B) requests are served
 * synchronously inside notify(): every request completes before the guest runs again.
 *
 * Hot path: no allocation and no message per request — one reused request copy (BlkRequest), per-slot scratch
 * arrays, the queue's typed views; data moves between the file and the granted guest pages directly. A request
 * that fails half-way (host I/O error) may have moved part of its data, as a real disk's would; it is answered
 * BLKIF_RSP_ERROR (that request only).
 */
import type { XenDomain } from "../../xen/domain.js";
import type { HostEndpoint } from "../../xen/event-channel.js";
import type { StoreApi } from "../../xenstore/index.js";
import { BackendDevice } from "../xenbus-backend.js";
import { BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER,
  BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY, DISCARD_NR_SECTORS, IND_OP, MAX_INDIRECT_SEGMENTS,
  REQ_NR_SEGMENTS, REQ_SECTOR, SECTOR_SIZE, VDISK_READONLY, readU64 } from "./blkif.js";
import { BlkError, DiskImage, type DiskFormat } from "./disk-image.js";
import { IO_DISCARD, IO_FLAG_SYNC, IO_FLUSH, IO_OK, IO_READ, IO_SHORT_READ, IO_SLOTS, IO_WRITE } from "./io-queue.js";
import { StateError } from "../../common/state.js";
import { BlkIo, KIND_OTHER, KIND_READ, KIND_WRITE } from "./blk-io.js";
import { BlkRequest } from "./blk-request.js";
import { BlkRing, openRings, restoreRings } from "./blk-ring.js";
import { blkOffer, offerKeys, readFrontend, type BlkOffer } from "./blk-negotiate.js";
import { BlkLimit, type BlkLimitConfig } from "./blk-limit.js";
import { DiskShare, SHARE_RETRY_MS, shareNow } from "./io-share.js";
import { checkBlkState, type BlkBackState, type BlkBackStats } from "./blk-state.js";

export type { BlkBackState, BlkBackStats } from "./blk-state.js";

export interface BlkDiskConfig {
  /** Image file (a regular file, size a positive multiple of 512). */
  path: string;
  /** Virtual device number (docs/misc/vbd-interface: xvda = 202 << 8 = 51712, xvdb = 51728, …). */
  devid: number;
  /** Its name, for the `dev` key ("xvda"). */
  vdev: string;
  readOnly: boolean;
  /** Image format (default raw; qcow2 through src/storage/qcow2.ts). */
  format?: DiskFormat;
  /** Xeno's optional I/O limit (disk spec `rate=`, `iops=`; blk-limit.ts). */
  limit?: BlkLimitConfig;
  /** devtype=cdrom (an HVM domain's: its firmware's boot order, boot= letter d; PV disks refuse it). */
  cdrom?: boolean;
  /** vdev nvmeN: an HVM domain's emulated NVMe controller rather than virtio-blk (PV disks refuse it). */
  nvme?: boolean;
}

/** The back-end's domain: Xeno plays dom0. */
const BACKEND_DOM = 0;
/** Most requests taken per notification/poll over all rings (a guard against rings that refill from another
 * thread, not a limit a well-behaved guest meets). */
const MAX_REQUESTS_PER_RUN = 1024;
/** Most requests of one ring per pass before the next ring's turn (Linux's blkback takes a whole ring per
 * kthread wake-up; with one thread serving all queues here, a pass is the unit of fairness). */
const RING_BUDGET = 8;
/** Guest-caused errors logged before the log goes quiet (the stats keep counting). */
const MAX_LOGGED_ERRORS = 20;
/** dispatch() result for a request handed to the I/O thread: answered when it completes (not a BLKIF_RSP_*). */
const PENDING = 1;
/** How long save() waits for requests in flight to complete before refusing. */
const SAVE_DRAIN_MS = 10_000;
/**
 * Inline service: a read or write that finds the disk's I/O thread idle (nothing queued or unanswered) is served
 * right here, on the domain's thread, inside the guest's notify, instead of waking the I/O thread and then being
 * woken by it. Why (bench/io/fair.ts, docs/benchmarks.md session 22): at queue depth 1 every request otherwise
 * costs two thread wake-ups, and on a busy host each waits for a CPU (0.3–1.6 ms measured per read, as much as
 * the guest's own work per read), which is where a random reader lost most next to another domain writing flat
 * out; and a writer's copies into the host's page cache then run on its own domain thread, inside the pCPU the
 * credit scheduler gave it, instead of on an extra thread competing with every other domain. What it must not do
 * is let a slow disk stall the vCPUs: an inline request that takes longer than INLINE_SLOW_MS sends the disk back
 * to its thread for INLINE_BACKOFF_MS (counted: stats.inlineBackoffs), so a slow disk stalls a slice by one
 * request per backoff at most. Never inline: flushes and barriers (fdatasync is the slow operation), discards,
 * qcow2 images (their metadata is the I/O thread's), disks with a test delay.
 * Opt-in ($XENO_BLK_INLINE=1 in the hypervisor's environment): on the loaded host of session 22 it could not be
 * shown to help (docs/benchmarks.md), and a throttled disk (blk-limit.ts) still needs two wake-ups per request
 * while an unlimited one then needs none, which makes io-fair's "can the guest go twice as fast" control say yes
 * where the limited run cannot keep up (its lower bound failed at 54 % and 73 %). To be measured on a quiet host.
 */
const INLINE_SLOW_MS = 2;
const INLINE_BACKOFF_MS = 1000;

/** INLINE_SLOW_MS, or $XENO_BLK_INLINE_SLOW_MS (tests: 0 makes every inline request slow). */
function inlineSlowMs(): number {
  const v = Number(process.env.XENO_BLK_INLINE_SLOW_MS ?? INLINE_SLOW_MS);
  return Number.isFinite(v) && v >= 0 ? v : INLINE_SLOW_MS;
}

export class BlkBack {
  readonly stats: BlkBackStats = {
    requests: 0, reads: 0, writes: 0, indirect: 0, flushes: 0, discards: 0, bytesRead: 0, bytesWritten: 0, errors: 0,
    unsupported: 0, ioErrors: 0, outOfRequests: 0, inline: 0, inlineBackoffs: 0,
  };
  readonly device: BackendDevice;
  readonly disk: DiskImage;
  /** What this disk offers (fixed at attach; set by the XENO_BLK_* variables, see blk-negotiate.ts). */
  readonly offer: BlkOffer;
  /** The connected queues (empty while disconnected). */
  private rings: BlkRing[] = [];
  /** Negotiated at the last connect: persistent grants, ring page order. */
  private persistent = false;
  private ringOrder = 0;
  /** The ring whose turn comes first in the next pass. */
  private nextRing = 0;
  private closed = false;
  private loggedErrors = 0;
  private busy = false;
  /** The request being served, and grant places for a synchronous one. */
  private readonly r: BlkRequest;
  private readonly syncPins = new Uint32Array(MAX_INDIRECT_SEGMENTS);
  private readonly syncPents = new Uint16Array(MAX_INDIRECT_SEGMENTS);
  /** File I/O runs on a thread of its own (false: in notify(), as before: $XENO_BLK_SYNC=1, for A/B). */
  readonly threaded: boolean;
  /** The I/O queue and thread (null: synchronous, or not connected yet). */
  private io: BlkIo | null = null;
  /** The I/O limit (null: none), when a throttled disk may go on (0: not throttled), the data bytes of the
   * request dispatch() just served (what the limit charges). */
  private readonly limit: BlkLimit | null;
  private throttledUntil = 0;
  private lastBytes = 0;
  /** This disk's place in the fair share between domains (io-share.ts; null: none — no table, or turned off). */
  private share: DiskShare | null = null;
  /** Inline service allowed for this disk (see INLINE_SLOW_MS), and not before this time (a backoff). */
  private readonly inlineOk: boolean;
  private readonly inlineSlow = inlineSlowMs();
  private inlineAfter = 0;
  /** collect()'s sink, bound once. */
  private readonly sink = (ring: BlkRing, s: number, io: number): void => this.completed(ring, s, io);

  /**
   * Creates the device in XenStore for a new disk; or, with `saved` (see BlkBack.restore), rebuilds a saved
   * back-end over the restored domain and store: everything is checked first, and a refusal (StateError) leaves
   * nothing open or attached.
   */
  constructor(private readonly xen: XenDomain, store: StoreApi, readonly config: BlkDiskConfig,
    private readonly log: (line: string) => void, saved?: BlkBackState) {
    const { devid, vdev } = config;
    if (!Number.isInteger(devid) || devid <= 0 || devid > 0x7fffffff) throw new BlkError("EBLK_CONFIG", `bad virtual device number ${devid}`);
    if (!/^[a-z][a-z0-9]*$/.test(vdev)) throw new BlkError("EBLK_CONFIG", `bad virtual device name ${JSON.stringify(vdev)}`);
    this.threaded = process.env.XENO_BLK_SYNC !== "1";
    this.offer = blkOffer(xen.vcpus);
    const lim = config.limit;
    try {
      this.limit = lim !== undefined && ((lim.bytesPerSecond ?? 0) > 0 || (lim.iops ?? 0) > 0)
        ? new BlkLimit(lim.bytesPerSecond ?? 0, lim.iops ?? 0, performance.now()) : null;
    } catch (e) { throw new BlkError("EBLK_CONFIG", (e as Error).message); }
    this.r = new BlkRequest(xen.gnttab, xen.mem.u8, BACKEND_DOM);
    const restored = saved === undefined ? null
      : checkBlkState(saved, config, xen, this.offer, BACKEND_DOM, Object.keys(this.stats) as (keyof BlkBackStats)[], MAX_LOGGED_ERRORS);
    this.disk = new DiskImage(config.path, config.readOnly, config.format ?? "raw");
    this.inlineOk = this.disk.format === "raw" && this.disk.delayMs === 0 && process.env.XENO_BLK_INLINE === "1";
    if (restored !== null && this.disk.sectors !== restored.sectors) {
      this.disk.close();
      throw new StateError("blkback", "sectors", `${restored.sectors} saved, ${config.path} has ${this.disk.sectors}`);
    }
    const ro = config.readOnly;
    const features: Record<string, string> = {
      ...offerKeys(this.offer),
      sectors: String(this.disk.sectors),
      info: String(ro ? VDISK_READONLY : 0),
      "sector-size": String(SECTOR_SIZE),
      "physical-sector-size": String(SECTOR_SIZE),
      "feature-flush-cache": "1",
      "feature-barrier": "1",
      "feature-max-indirect-segments": String(MAX_INDIRECT_SEGMENTS),
    };
    if (!ro) {
      Object.assign(features, {
        "feature-discard": "1", "discard-granularity": String(SECTOR_SIZE), "discard-alignment": "0", "discard-secure": "0",
      });
    }
    try {
      this.device = new BackendDevice({
        store, domid: xen.domid, backendDomid: BACKEND_DOM, type: "vbd", devid,
        backend: {
          params: config.path, type: "file", mode: ro ? "r" : "w", dev: vdev, "device-type": "disk",
          removable: "0", bootable: "1",
        },
        frontend: { "virtual-device": String(devid), "device-type": "disk" },
        features,
        connect: (dev) => this.connect(dev),
        disconnect: () => this.disconnect(),
        log,
        existing: restored === null ? undefined : { connected: restored.connected },
      });
    } catch (e) {
      this.disk.close();
      throw e;
    }
    if (restored !== null) this.load(restored);
  }

  /**
   * Rebuilds a saved back-end (Firecracker's Persist::restore shape): `xen` already restored, with the rings'
   * event channels left detached (XenDomain.restore without endpoints for them); `store` holding the device.
   */
  static restore(args: { xen: XenDomain; store: StoreApi; config: BlkDiskConfig; log: (line: string) => void }, state: BlkBackState): BlkBack {
    return new BlkBack(args.xen, args.store, args.config, args.log, state);
  }

  save(): BlkBackState {
    const C = "blkback";
    if (this.closed) throw new StateError(C, "(root)", "the device is closed");
    if (this.busy) throw new StateError(C, "ring", "serving requests: save between runs");
    if (!this.drain(SAVE_DRAIN_MS)) throw new StateError(C, "ring", `${this.inFlight} requests still in flight after ${SAVE_DRAIN_MS} ms (a slow disk): save again`);
    if (this.device.unplugging) throw new StateError(C, "(root)", "hot-unplug in progress: finish it before saving");
    for (const { ring: r, queue } of this.rings) {
      if (r.reqCons !== r.rspProdPvt || r.rspProd !== r.rspProdPvt) {
        throw new StateError(C, `rings[${queue}]`, `requests in flight (req_cons ${r.reqCons}, rsp_prod_pvt ${r.rspProdPvt}, rsp_prod ${r.rspProd}): drain before saving`);
      }
    }
    return {
      version: 2, devid: this.config.devid, vdev: this.config.vdev, readOnly: this.config.readOnly, sectors: this.disk.sectors,
      connected: this.device.connected, persistent: this.persistent, ringOrder: this.ringOrder,
      rings: this.rings.map((x) => ({ ringRefs: [...x.refs], port: x.port, reqCons: x.ring.reqCons, rspProdPvt: x.ring.rspProdPvt,
        pgrants: x.pgnt?.refs() ?? [] })),
      stats: { ...this.stats }, loggedErrors: this.loggedErrors,
    };
  }

  /** Applies a checked state (after the device is attached in XenStore): rings re-attached, persistent grants pinned again. */
  private load(s: BlkBackState): void {
    Object.assign(this.stats, s.stats);
    this.loggedErrors = s.loggedErrors;
    if (s.rings.length === 0 || !this.device.connected) return;
    this.persistent = s.persistent;
    this.ringOrder = s.ringOrder;
    this.rings = restoreRings(this.xen, s, BACKEND_DOM);
    for (const r of this.rings) {
      const ep = this.newEndpoint(r);
      if (this.xen.evtchn.hostAttach(r.port, ep) === 0) r.endpoint = ep; // checked: a detached port to us
    }
    this.startIo();
  }

  /** Some ring is attached and its event channel bound. */
  get connected(): boolean { return this.rings.length > 0; }

  /** Negotiated now: queues, ring page order, persistent grants kept (over all rings). */
  get queues(): number { return this.rings.length; }
  get ringPageOrder(): number { return this.ringOrder; }
  get persistentGrants(): number | null {
    if (!this.persistent || this.rings.length === 0) return null;
    let n = 0;
    for (const r of this.rings) n += r.pgnt!.count;
    return n;
  }

  /** The I/O limit or the fair share holds requests back now (they wait in the rings). */
  get throttled(): boolean { return this.throttledUntil !== 0; }

  /** Times the fair share between domains held this disk's requests back (io-share.ts); 0 without a share. */
  get shareWaits(): number { return this.share?.waits ?? 0; }

  /** Requests taken per queue since the connection (empty while disconnected). */
  get requestsPerQueue(): number[] { return this.rings.map((r) => r.taken); }

  /** Serves requests the guest queued without notifying (cheap when the rings are idle or disconnected). */
  poll(): void { this.run(); }

  /** Requests handed to the I/O thread and not answered yet. */
  get inFlight(): number { return this.io?.inFlight ?? 0; }

  /**
   * service() has work: the I/O thread completed requests that are not answered yet, or a throttled disk may
   * take requests again (the I/O thread rings the doorbell then, so an idle domain wakes for it).
   */
  get completions(): boolean {
    return (this.io !== null && this.io.completions) || (this.throttledUntil !== 0 && performance.now() >= this.throttledUntil);
  }

  /**
   * For the domain's loop after every slice (src/hv/machine.ts poll): answers the requests the I/O thread
   * completed (one Atomics.load when there are none), and takes the requests that waited for a free slot.
   */
  service(): void {
    if (this.completions) this.run();
    else if (this.io !== null && this.inFlight > 0) this.io.ensure(); // a thread that could not be started: again
  }

  /**
   * Waits (blocking this thread, at most `timeoutMs`) until every request handed to the I/O thread completed,
   * and answers them; new requests are not taken. True when none is in flight. For save() and tests.
   */
  drain(timeoutMs: number): boolean {
    const io = this.io;
    if (io === null) return true;
    const end = performance.now() + timeoutMs;
    for (;;) {
      const done = io.doneCount;
      if (!this.busy && io.completions) {
        this.busy = true;
        try { this.collect(); } finally { this.busy = false; }
      }
      if (this.inFlight === 0) return true;
      const left = end - performance.now();
      if (left <= 0 || this.busy) return false;
      io.waitDone(done, left);
    }
  }

  /**
   * Hot-unplug / teardown: removes the device from XenStore and closes the image. Idempotent. Never waits for
   * the disk: requests still in flight are abandoned to the I/O thread, which finishes the one it is doing,
   * drops the rest and closes the file; their grants stay pinned (the guest sees the pages still in use, as
   * with a stuck back-end in Xen), so a page is never written after the guest could have reused it.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try { this.device.remove(); } finally {
      this.disconnect();
      this.stopIo();
      this.disk.close();
      this.share?.release();
      this.share = null;
    }
  }

  /**
   * Lets go of this copy of a device that lives on in another thread (its state was saved and restored there):
   * the image file is closed, the store is not touched (the device's nodes are the restored copy's now).
   */
  release(): void {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.rings) r.live = false; // nothing more is answered from here (the endpoints are the restored copy's)
    this.stopIo(); // its I/O thread ends (a save drained the requests in flight; it closes the file if it holds it)
    this.disk.close();
    this.share?.release(); // the restored copy claims its own
    this.share = null;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Connection (blkback's connect_ring / xen_blkif_map / xen_blkif_disconnect)

  private connect(dev: BackendDevice): string | null {
    if (this.closed) return "device closed";
    const plan = readFrontend(dev, this.offer);
    if (typeof plan === "string") return plan;
    const rings = openRings(this.xen, plan, BACKEND_DOM);
    if (typeof rings === "string") return rings;
    for (const r of rings) {
      const ep = this.newEndpoint(r);
      const rc = this.xen.evtchn.hostBind(r.port, ep);
      if (rc !== 0) {
        for (const x of rings) x.kill(this.xen.evtchn);
        return `binding event-channel ${r.port}: ${rc}`;
      }
      r.endpoint = ep;
    }
    this.startIo();
    this.rings = rings;
    this.persistent = plan.persistent;
    this.ringOrder = plan.order;
    this.nextRing = 0;
    this.loggedErrors = 0;
    const where = rings.map((r) => `${r.refs.length > 1 ? `ring-refs ${r.refs.join(",")}` : `ring-ref ${r.refs[0]}`}, event-channel ${r.port}`).join("; ");
    this.log(`blkback ${this.config.vdev}: connected (${where}; ${rings.length} queue${rings.length > 1 ? "s" : ""}, ring order ${plan.order}` +
      `${plan.persistent ? ", persistent grants" : ""}, ${this.disk.sectors} sectors${this.config.readOnly ? ", read-only" : ""})`);
    return null;
  }

  /** Our end of ring r's event channel (a dead ring's endpoint goes quiet). */
  private newEndpoint(r: BlkRing): HostEndpoint {
    return {
      remoteDom: BACKEND_DOM,
      notify: () => { if (r.live) this.run(); },
      closed: () => { if (r.live) { r.endpoint = null; this.portClosed(r.port); } },
    };
  }

  /** Drops the rings and unbinds our ends of the channels (the guest's ports are unbound again, as in Xen). */
  private disconnect(): void {
    for (const r of this.rings) r.kill(this.xen.evtchn);
    this.rings = [];
    this.throttledUntil = 0;
  }

  /** The guest closed one of the channels while connected: the device cannot go on. */
  private portClosed(port: number): void {
    this.log(`blkback ${this.config.vdev}: the front-end closed event channel ${port}`);
    this.disconnect();
  }

  /** Fails the device (xenbus_dev_fatal: logged, error node, Closing); the rings are dropped. */
  private fail(reason: string): void {
    this.device.fatal(reason); // logs, and calls disconnect() when connected
    this.disconnect();
  }

  // ---------------------------------------------------------------------------------------------------------
  // The rings (blkback's do_block_io_op / __do_block_io_op)

  private run(): void {
    if (this.busy) return;
    if (this.rings.length === 0) {
      // Disconnected with requests still in flight: their grants go back as they complete.
      if (this.completions) { this.busy = true; try { this.collect(); } finally { this.busy = false; } }
      return;
    }
    this.busy = true; // fatal() writes XenStore, whose watchers could re-enter through a notify
    try {
      this.serve();
    } catch (e) {
      // A bug here, not the guest's doing: fail this device, never the host.
      this.fail(`internal error: ${(e as Error)?.stack ?? String(e)}`);
    } finally {
      this.busy = false;
    }
  }

  private serve(): void {
    const rings = this.rings, nr = rings.length, gnttab = this.xen.gnttab;
    for (let k = 0; k < nr; k++) {
      if (!rings[k]!.pagesValid(gnttab)) { this.fail(`ring-ref ${rings[k]!.refs.join(",")}: grant revoked or changed while connected`); return; }
    }
    // Persistent grants unused for a minute, or the oldest after an overflow, go (purge_persistent_gnt).
    if (this.persistent) { const now = performance.now(); for (let k = 0; k < nr; k++) rings[k]!.pgnt?.purge(now); }
    let budget = MAX_REQUESTS_PER_RUN;
    const io = this.io, limit = this.limit, share = this.share;
    this.throttledUntil = 0;
    if (limit !== null) limit.refill(performance.now());
    for (;;) {
      // Answers first: they free ring slots (and queue slots) for the requests below.
      if (io !== null) this.collect();
      let took = 0;
      const start = this.nextRing;
      this.nextRing = start + 1 < nr ? start + 1 : 0;
      for (let k = 0; k < nr && budget > 0; k++) {
        const r = rings[(start + k) % nr]!, ring = r.ring;
        let n = ring.unconsumed();
        if (n === 0) n = ring.finalCheck();
        if (n < 0) {
          for (let j = 0; j < nr; j++) rings[j]!.publish(this.xen.evtchn);
          this.fail(`Frontend provided bogus ring requests (queue ${r.queue}: req_prod ${ring.reqProd}, rsp_prod ${ring.rspProdPvt}). Halting ring processing`);
          return;
        }
        // The queue can be fuller than the rings allow while requests of an earlier connection complete; the
        // rest waits for service() after those.
        if (io !== null && n > IO_SLOTS - io.inFlight) this.stats.outOfRequests++;
        if (io !== null) n = Math.min(n, IO_SLOTS - io.inFlight);
        n = Math.min(n, RING_BUDGET, budget);
        let i = 0;
        for (; i < n; i++) {
          if (limit !== null && !limit.ready) { this.throttle(); break; }
          const now = share !== null ? shareNow() : 0;
          // A request that is its disk's only one (nothing in flight, nothing after it on this ring) is never held:
          // that is a reader at queue depth 1, whose guest already sleeps on it — holding it frees no CPU and only
          // slows it (io-fair at load 25: a writer whose guest was starved of CPU held such a reader at one read per
          // 10 ms, 76 IOPS). It is still charged, so it holds back the others.
          if (share !== null && (io === null || io.inFlight > 0 || n - i > 1) && !share.mayGo(now)) { this.holdForShare(); break; }
          ring.takeRequest(this.r.req);
          this.stats.requests++;
          this.lastBytes = 0;
          const status = this.dispatch(r);
          limit?.charge(this.lastBytes);
          share?.charge(now, this.lastBytes);
          if (status === PENDING) continue;
          if (status === BLKIF_RSP_ERROR) this.stats.errors++;
          else if (status === BLKIF_RSP_EOPNOTSUPP) this.stats.unsupported++;
          // An indirect request is answered with its indirect_op (blkfront checks the operation it gets back).
          const op = this.r.op;
          ring.putResponse(this.r.req, op === BLKIF_OP_INDIRECT ? this.r.req[IND_OP]! : op, status);
          r.dirty = true;
        }
        took += i;
        budget -= i;
        r.taken += i;
        r.publish(this.xen.evtchn);
        if (this.throttledUntil !== 0) return;
      }
      if (took === 0 || budget === 0) break;
    }
  }

  /**
   * The limit stops the rings (their requests wait there): resume when the buckets refill — at service() after
   * a slice, woken by the I/O thread's doorbell when the domain idles (synchronous disks have no such timer:
   * they resume at the next slice).
   */
  private throttle(): void {
    const ms = this.limit!.dueIn();
    this.throttledUntil = performance.now() + ms;
    this.io?.wakeIn(ms);
  }

  /**
   * Another domain's disk in use is too far behind this one (io-share.ts): the rings keep their requests and are
   * looked at again at the next completion, or SHARE_RETRY_MS later (the I/O thread's timer) when none is in
   * flight — no timer wake-ups while completions will come anyway.
   */
  private holdForShare(): void {
    // Every 1000th hold is logged (a count of how often the share held this disk, never a flood).
    if (this.share!.waits % 1000 === 1) this.log(`blkback ${this.config.vdev}: held back by the fair share between domains (${this.share!.waits} times so far)`);
    this.throttledUntil = performance.now() + SHARE_RETRY_MS;
    if (this.inFlight === 0) this.io?.wakeIn(SHARE_RETRY_MS);
  }

  /** Takes the I/O thread's completions, answers them and publishes the answers. */
  private collect(): void {
    if (this.io === null || this.io.collect(this.sink) === 0) return;
    this.share?.touch(shareNow()); // a reader between two requests is still using its disk
    for (let k = 0; k < this.rings.length; k++) this.rings[k]!.publish(this.xen.evtchn);
  }

  /** One completion (collect's sink): stats, then the answer on its ring unless that connection is gone. */
  private completed(ring: BlkRing, s: number, io: number): void {
    const x = this.io!;
    let status = BLKIF_RSP_OKAY;
    if (io === IO_OK) {
      if (x.slotKind[s] === KIND_READ) this.stats.bytesRead += x.slotBytes[s]!;
      else if (x.slotKind[s] === KIND_WRITE) this.stats.bytesWritten += x.slotBytes[s]!;
    } else {
      this.stats.errors++;
      if (io === IO_SHORT_READ) status = this.bad("short read (the image shrank?)", x.slotOp[s]);
      else {
        this.stats.ioErrors++;
        status = this.bad(`I/O error on ${this.config.path}: ${x.errorText(s)}`, x.slotOp[s]);
      }
    }
    if (ring.live) { ring.ring.putResponseId(x.slotId, s * 8, x.slotOp[s]!, status); ring.dirty = true; }
  }

  /** Serves the request in `this.r` from ring `ring`; returns its status (or PENDING). */
  private dispatch(ring: BlkRing): number {
    const req = this.r.req, op = this.r.op;
    switch (op) {
      case BLKIF_OP_READ:
        this.stats.reads++;
        return this.readWrite(ring, false, false);
      case BLKIF_OP_WRITE:
        this.stats.writes++;
        return this.readWrite(ring, true, false);
      case BLKIF_OP_WRITE_BARRIER:
      case BLKIF_OP_FLUSH_DISKCACHE:
        this.stats.flushes++;
        // With segments, a write whose data must be stable when answered; without, a pure cache flush.
        if (req[REQ_NR_SEGMENTS] !== 0) return this.readWrite(ring, true, true);
        // A pure flush on a read-only disk has nothing to flush; a barrier is a write (blkif.h), refused.
        if (this.config.readOnly) return op === BLKIF_OP_FLUSH_DISKCACHE ? BLKIF_RSP_OKAY : this.bad("barrier on a read-only disk");
        if (this.io !== null) { this.io.submit(ring, this.r, IO_FLUSH, 0, 0, 0, KIND_OTHER, 0); return PENDING; }
        try { this.disk.flush(); } catch (e) { return this.ioError(e); }
        return BLKIF_RSP_OKAY;
      case BLKIF_OP_DISCARD:
        this.stats.discards++;
        return this.discard(ring);
      case BLKIF_OP_INDIRECT: {
        const iop = req[IND_OP]!;
        if (iop !== BLKIF_OP_READ && iop !== BLKIF_OP_WRITE) return this.bad(`indirect request with operation ${iop}`);
        this.stats.indirect++;
        if (iop === BLKIF_OP_READ) this.stats.reads++;
        else this.stats.writes++;
        return this.readWrite(ring, iop === BLKIF_OP_WRITE, false);
      }
      default:
        // RESERVED_1 and anything else.
        return BLKIF_RSP_EOPNOTSUPP;
    }
  }

  /**
   * READ (write = false) or WRITE (write = true; `flush`: then fdatasync), direct or indirect: parsed and
   * mapped by BlkRequest, then queued for the I/O thread (or done here when synchronous).
   */
  private readWrite(ring: BlkRing, write: boolean, flush: boolean): number {
    if (write && this.config.readOnly) return this.bad("write to a read-only disk");
    const r = this.r, pgnt = ring.pgnt;
    const nseg = r.load(pgnt);
    if (nseg < 0) return this.bad(r.why);
    // Inline (see INLINE_SLOW_MS): only with nothing queued or unanswered, so it cannot pass a flush or a write
    // queued before it.
    const inline = this.io !== null && this.inlineOk && !flush && this.io.inFlight === 0 && performance.now() >= this.inlineAfter;
    const io = inline ? null : this.io;
    const pins = io !== null ? io.slotPins : this.syncPins, pents = io !== null ? io.slotPents : this.syncPents;
    const base = io !== null ? io.nextSlot * MAX_INDIRECT_SEGMENTS : 0;
    if (!r.map(nseg, write, this.disk.sectors, pgnt, io !== null, pins, pents, base)) return this.bad(r.why);
    this.lastBytes = r.total;
    if (io !== null) {
      io.submit(ring, r, (write ? IO_WRITE : IO_READ) | (flush ? IO_FLAG_SYNC : 0), r.sector * SECTOR_SIZE, 0, nseg,
        write ? KIND_WRITE : KIND_READ, r.total);
      return PENDING;
    }
    // Safe: every segOff/segLen range lies inside a page the grant table returned (a whole frame of the
    // domain's RAM inside its buffer). Segments adjacent in guest memory go in one call; the disk range is contiguous.
    const u8 = this.xen.mem.u8;
    let pos = r.sector * SECTOR_SIZE;
    const t0 = inline ? performance.now() : 0;
    try {
      for (let i = 0; i < nseg;) {
        const off = r.segOff[i]!;
        let len = r.segLen[i++]!;
        while (i < nseg && r.segOff[i] === off + len) len += r.segLen[i++]!;
        if (write) this.disk.write(u8, off, len, pos);
        else if (!this.disk.read(u8, off, len, pos)) return this.bad(`short read at byte ${pos} (the image shrank?)`);
        pos += len;
      }
      if (flush) this.disk.flush();
    } catch (e) { return this.ioError(e); } finally {
      r.release(pgnt, pins, pents, base);
      if (inline) {
        this.stats.inline++;
        const t1 = performance.now();
        if (t1 - t0 > this.inlineSlow) { this.inlineAfter = t1 + INLINE_BACKOFF_MS; this.stats.inlineBackoffs++; }
      }
    }
    if (write) this.stats.bytesWritten += r.total;
    else this.stats.bytesRead += r.total;
    return BLKIF_RSP_OKAY;
  }

  /** DISCARD: the range must lie inside a writable disk; its contents become zeros (see DiskImage.zero). */
  private discard(ring: BlkRing): number {
    if (this.config.readOnly) return this.bad("discard on a read-only disk");
    const sector = readU64(this.r.view, REQ_SECTOR), count = readU64(this.r.view, DISCARD_NR_SECTORS);
    if (!(sector + count <= this.disk.sectors)) return this.bad(`discard of sectors ${sector}+${count} beyond the disk`);
    if (count === 0) return BLKIF_RSP_OKAY;
    if (this.io !== null) { this.io.submit(ring, this.r, IO_DISCARD, sector * SECTOR_SIZE, count * SECTOR_SIZE, 0, KIND_OTHER, 0); return PENDING; }
    try { this.disk.zero(sector * SECTOR_SIZE, count * SECTOR_SIZE); } catch (e) { return this.ioError(e); }
    return BLKIF_RSP_OKAY;
  }

  // ---------------------------------------------------------------------------------------------------------
  // The I/O thread (blk-io.ts)

  /** Sets up the disk's I/O queue and thread at the first connection; on failure, stays synchronous (logged). */
  private startIo(): void {
    if (this.share === null && !this.closed) this.share = DiskShare.claim(this.xen.domid);
    if (!this.threaded || this.io !== null || this.closed) return;
    this.io = BlkIo.start(this.disk, this.xen.mem.ram, this.xen.gnttab, (l) => this.log(`blkback ${this.config.vdev}: ${l}`), this.xen.domid);
  }

  /** Asks the I/O thread to end (see close()); completed requests give their grants back, nothing is answered. */
  private stopIo(): void {
    const io = this.io;
    if (io === null) return;
    if (!this.busy) io.collect(this.sink); // the rings are dead by now: no answers
    io.stop();
  }

  /** Host I/O failed (EIO, ENOSPC, …): BLKIF_RSP_ERROR for this request only. */
  private ioError(e: unknown): number {
    this.stats.ioErrors++;
    return this.bad(`I/O error on ${this.config.path}: ${(e as Error)?.message ?? String(e)}`);
  }

  /** A request refused: logged (up to MAX_LOGGED_ERRORS per connection) and answered BLKIF_RSP_ERROR. */
  private bad(why: string, op: number = this.r.op): number {
    if (this.loggedErrors < MAX_LOGGED_ERRORS) {
      this.loggedErrors++;
      this.log(`blkback ${this.config.vdev}: op ${op}: ${why}${this.loggedErrors === MAX_LOGGED_ERRORS ? " (further errors not logged)" : ""}`);
    }
    return BLKIF_RSP_ERROR;
  }
}

/**
 * Attaches a disk image to domain `xen` as a vbd: opens the image (throws BlkError when it cannot be served)
 * and creates the device in XenStore; the guest's blkfront connects when it probes the device.
 */
export function attachBlkBack(xen: XenDomain, store: StoreApi, disk: BlkDiskConfig, log: (line: string) => void): BlkBack {
  return new BlkBack(xen, store, disk, log);
}
