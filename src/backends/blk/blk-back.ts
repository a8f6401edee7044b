/**
 * blkback: the block back-end for one virtual disk of one domain (Linux drivers/block/xen-blkback, protocol
 * xen/include/public/io/blkif.h), serving a disk image file to the guest's xen-blkfront.
 *
 * XenStore: a BackendDevice of type "vbd" with the keys libxl writes (params, type, mode, dev, device-type,
 * removable, bootable; front: virtual-device, device-type) and those blkback advertises (sectors, info,
 * sector-size, physical-sector-size, feature-flush-cache, feature-barrier, feature-discard + discard-*,
 * max-ring-page-order 0, feature-max-indirect-segments 256: BLKIF_OP_INDIRECT, whose segment list lives in
 * granted pages, so blkfront sends up to 32 segments — 128 KiB — per request instead of 11). Not offered:
 * feature-persistent (we copy through grants, nothing to keep mapped), multi-queue and multi-page rings.
 *
 * Connect (front-end Initialised): ring-ref (or ring-ref0 with ring-page-order 0), event-channel and protocol
 * are read; the ring grant must be a writable full-page grant to dom0 (GrantTable.grantedPage); the
 * front-end's unbound port is bound as a host endpoint whose notify() serves the ring.
 *
 * Requests are taken in order and each is copied out of the ring, validated completely
 * (operation, segment count, sector bounds inside the page, the whole range inside the disk, every segment's
 * grant with the right permission: a READ writes into the guest's pages so it needs a writable grant, a WRITE
 * only reads them) before any byte moves; a bad request gets BLKIF_RSP_ERROR and changes nothing, an unknown
 * operation BLKIF_RSP_EOPNOTSUPP. A guest whose req_prod runs more than a ring ahead is misbehaving: the device
 * is failed (xenbus error node, Closing), as blkback halts such a ring. Nothing is thrown out of notify() and
 * every guest access goes through a granted page offset, so guest memory outside granted pages and host memory
 * are never touched.
 *
 * File I/O runs off the vCPU thread: after validation, each request's grants are pinned (GrantTable.pin sets
 * GTF_reading/GTF_writing in the guest's entries, as Xen's map does, so the guest's gnttab_end_foreign_access
 * defers freeing a page still in use), its segments become (RAM offset, length) runs, and it goes into a slot of
 * the disk's shared queue (io-queue.ts) for the disk's I/O thread (io-thread.ts), which only moves bytes between
 * the image and those runs, in order (so a flush covers every write queued before it). Completions are taken
 * without blocking by service() after every slice (src/hv/machine.ts poll; the I/O thread rings the domain
 * thread's doorbell so an idle domain wakes for them) and on every notify: grants unpinned, then the response
 * posted — so responses may come out of order (refusals at once, I/O as it completes), as with Linux blkback.
 * At most IO_SLOTS = a ring's worth of requests is in flight. save() drains first; close() never waits (the
 * thread finishes the operation in progress, drops the rest and closes the image; abandoned requests keep their
 * grants pinned so their pages are never written after the guest could reuse them); a front-end that
 * disconnects gets no answers for requests of the old ring, whose grants are released as they complete.
 * With $XENO_BLK_SYNC=1 (A/B) requests are served synchronously inside notify(), as before: every request
 * completes before the guest runs again, and a slow disk stalls the whole domain thread.
 *
 * Hot path: no allocation and no message per request — one reused request copy, per-segment and per-slot
 * scratch arrays, the queue's typed views, Atomics for the hand-over; data moves between the file and the
 * granted guest pages directly (pread/pwrite on the guest's buffer at the granted offsets), so no bounce buffer
 * is needed. A request that fails half-way (host I/O error) may have moved part of its data, as a real disk's
 * would; it is answered BLKIF_RSP_ERROR (that request only).
 */
import { Worker } from "node:worker_threads";
import type { XenDomain } from "../../xen/domain.js";
import type { HostEndpoint } from "../../xen/event-channel.js";
import type { StoreApi } from "../../xenstore/index.js";
import { BackendDevice } from "../xenbus-backend.js";
import { BLKIF_ENTRY_SIZE, BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_RING_SIZE, BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT,
  BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY,
  BlkBackRing, DISCARD_NR_SECTORS, IND_GREFS, IND_NR_SEGMENTS, IND_OP, MAX_INDIRECT_SEGMENTS, REQ_NR_SEGMENTS,
  REQ_ID, REQ_OPERATION, REQ_SECTOR, REQ_SEG, SECTOR_SHIFT, SECTOR_SIZE, SECTORS_PER_PAGE, SEGS_PER_INDIRECT_FRAME, SEG_FIRST,
  SEG_GREF, SEG_LAST, SEG_SIZE, VDISK_READONLY, readU64 } from "./blkif.js";
import { BlkError, DiskImage } from "./disk-image.js";
import { F_LEN, F_POS, F_RUNS, IO_DISCARD, IO_FLAG_SYNC, IO_FLUSH, IO_OK, IO_READ, IO_SHORT_READ, IO_SLOTS, IO_WRITE, IoQueue,
  Q_CLOSING, Q_DONE, Q_KICK, Q_STATE, Q_SUBMITTED, STATE_CLOSED, STATE_NONE, STATE_RUNNING, ioIdleMs, S_MSG_LEN, S_NRUNS, S_OP, S_STATUS, blkIoDoorbell, type IoThreadData } from "./io-queue.js";
import { StateError, stateBool, stateInt, stateObject, stateVersion } from "../../common/state.js";

export interface BlkDiskConfig {
  /** Image file (a regular file, size a positive multiple of 512). */
  path: string;
  /** Virtual device number (docs/misc/vbd-interface: xvda = 202 << 8 = 51712, xvdb = 51728, …). */
  devid: number;
  /** Its name, for the `dev` key ("xvda"). */
  vdev: string;
  readOnly: boolean;
}

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
}

/**
 * Saved blkback state. save() first waits (up to SAVE_DRAIN_MS) for the requests in flight in the I/O thread
 * and answers them, then checks that every request taken is answered and published, and refuses otherwise. Requests
 * the guest queued but blkback has not taken yet are in the ring page (guest RAM) and are served after restore.
 * Wiring, given to restore: the domain, the store (whose restored tree holds the device's nodes), the image
 * file (config.path: the same contents, perhaps another path) and the log.
 */
export interface BlkBackState {
  version: 1;
  /** Disk identity as the guest knows it: virtual device, name, read-only, size in sectors. */
  devid: number;
  vdev: string;
  readOnly: boolean;
  sectors: number;
  /** The xenbus connection is up (then `ring` is set). */
  connected: boolean;
  ring: { ringRef: number; port: number; reqCons: number; rspProdPvt: number } | null;
  stats: BlkBackStats;
  loggedErrors: number;
}

/** The back-end's domain: Xeno plays dom0. */
const BACKEND_DOM = 0;
/** Most requests taken per notification/poll (a guard against a ring that refills from another thread, not a
 * limit a well-behaved guest meets). */
const MAX_REQUESTS_PER_RUN = 1024;
/** Guest-caused errors logged before the log goes quiet (the stats keep counting). */
const MAX_LOGGED_ERRORS = 20;

/** dispatch() result for a request handed to the I/O thread: answered when it completes (not a BLKIF_RSP_*). */
const PENDING = 1;
/** How long save() waits for requests in flight to complete before refusing. */
const SAVE_DRAIN_MS = 10_000;
/** The I/O thread's entry (io-thread.ts, next to this file in dist/). */
const IO_THREAD_URL = new URL("./io-thread.js", import.meta.url);
/** Request kinds kept per slot for the stats at completion. */
const KIND_READ = 0, KIND_WRITE = 1, KIND_OTHER = 2;

/** Protocols whose requests have the 64-bit layout (io/protocols.h XEN_IO_PROTO_ABI_ARM / _X86_64). */
const PROTOCOLS_64 = new Set(["arm-abi", "x86_64-abi"]);

export class BlkBack {
  readonly stats: BlkBackStats = {
    requests: 0, reads: 0, writes: 0, indirect: 0, flushes: 0, discards: 0, bytesRead: 0, bytesWritten: 0, errors: 0,
    unsupported: 0, ioErrors: 0, outOfRequests: 0,
  };
  readonly device: BackendDevice;
  readonly disk: DiskImage;
  private ring: BlkBackRing | null = null;
  private ringRef = -1;
  private port = 0;
  /** Bumped at every connect/disconnect: a host endpoint from an older connection ignores its events
   * (the event-channel layer has no host-side close, see disconnect()). */
  private generation = 0;
  private closed = false;
  /** Our end of the event channel while connected. */
  private endpoint: HostEndpoint | null = null;
  private loggedErrors = 0;
  private busy = false;
  /** The request being served (copied out of the ring). */
  private readonly req = new Uint8Array(BLKIF_ENTRY_SIZE);
  private readonly reqView = new DataView(this.req.buffer);
  /** The request's segments (copied once from the ring entry or its indirect pages), then each one's guest
   * buffer offset and length. */
  private readonly segGref = new Uint32Array(MAX_INDIRECT_SEGMENTS);
  private readonly segFirst = new Uint8Array(MAX_INDIRECT_SEGMENTS);
  private readonly segLast = new Uint8Array(MAX_INDIRECT_SEGMENTS);
  private readonly segOff = new Float64Array(MAX_INDIRECT_SEGMENTS);
  private readonly segLen = new Int32Array(MAX_INDIRECT_SEGMENTS);

  // The I/O thread (see the file comment; null: synchronous, $XENO_BLK_SYNC=1, or not started yet).
  /** File I/O runs on a thread of its own (false: in notify(), as before: $XENO_BLK_SYNC=1, for A/B). */
  readonly threaded: boolean;
  private q: IoQueue | null = null;
  /** What each I/O thread of this disk is started with (set with the queue). */
  private io: IoThreadData | null = null;
  /** Slots filled (our copy of Q_SUBMITTED) and completions taken back (≤ Q_DONE). */
  private submitted = 0;
  private collected = 0;
  /** Per slot, what answering needs and only this thread knows: the request id, the response operation, the
   * connection it came on, its kind and bytes for the stats, the grants it pinned. */
  private readonly slotId = new Uint8Array(IO_SLOTS * 8);
  private readonly slotOp = new Uint8Array(IO_SLOTS);
  private readonly slotGen = new Int32Array(IO_SLOTS);
  private readonly slotKind = new Uint8Array(IO_SLOTS);
  private readonly slotBytes = new Float64Array(IO_SLOTS);
  private readonly slotPins = new Uint32Array(IO_SLOTS * MAX_INDIRECT_SEGMENTS);
  private readonly slotNPins = new Uint16Array(IO_SLOTS);
  private readonly slotPinWrite = new Uint8Array(IO_SLOTS);

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
    const restored = saved === undefined ? null : this.checkSaved(saved);
    this.disk = new DiskImage(config.path, config.readOnly);
    if (restored !== null && this.disk.sectors !== restored.sectors) {
      this.disk.close();
      throw new StateError("blkback", "sectors", `${restored.sectors} saved, ${config.path} has ${this.disk.sectors}`);
    }
    const ro = config.readOnly;
    const features: Record<string, string> = {
      "max-ring-page-order": "0",
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
   * Rebuilds a saved back-end (Firecracker's Persist::restore shape): `xen` already restored, with the ring's
   * event channel left detached (XenDomain.restore without an endpoint for it); `store` holding the device.
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
    const r = this.ring;
    if (r !== null && (r.reqCons !== r.rspProdPvt || r.rspProd !== r.rspProdPvt)) {
      throw new StateError(C, "ring", `requests in flight (req_cons ${r.reqCons}, rsp_prod_pvt ${r.rspProdPvt}, rsp_prod ${r.rspProd}): drain before saving`);
    }
    return {
      version: 1, devid: this.config.devid, vdev: this.config.vdev, readOnly: this.config.readOnly, sectors: this.disk.sectors,
      connected: this.device.connected,
      ring: r === null ? null : { ringRef: this.ringRef, port: this.port, reqCons: r.reqCons, rspProdPvt: r.rspProdPvt },
      stats: { ...this.stats }, loggedErrors: this.loggedErrors,
    };
  }

  /** Checks a saved state against the configuration and the restored domain (grant, port, ring indexes). */
  private checkSaved(saved: BlkBackState): BlkBackState {
    const C = "blkback";
    const s = stateVersion(C, saved, 1);
    const cfg = this.config;
    stateInt(C, "devid", s.devid, cfg.devid, cfg.devid);
    if (s.vdev !== cfg.vdev) throw new StateError(C, "vdev", `${String(s.vdev)} saved, configured ${cfg.vdev}`);
    if (stateBool(C, "readOnly", s.readOnly) !== cfg.readOnly) throw new StateError(C, "readOnly", "differs from the configuration");
    const sectors = stateInt(C, "sectors", s.sectors, 1, Number.MAX_SAFE_INTEGER);
    const connected = stateBool(C, "connected", s.connected);
    const loggedErrors = stateInt(C, "loggedErrors", s.loggedErrors, 0, MAX_LOGGED_ERRORS);
    const so = stateObject(C, "stats", s.stats);
    const stats = {} as BlkBackStats;
    for (const k of Object.keys(this.stats) as (keyof BlkBackStats)[]) stats[k] = stateInt(C, `stats.${k}`, so[k], 0, Number.MAX_SAFE_INTEGER);
    let ring: BlkBackState["ring"] = null;
    if (s.ring !== null) {
      const ro = stateObject(C, "ring", s.ring);
      const ringRef = stateInt(C, "ring.ringRef", ro.ringRef, 0, 0xffffffff);
      const port = stateInt(C, "ring.port", ro.port, 1, 4095);
      const reqCons = stateInt(C, "ring.reqCons", ro.reqCons, 0, 0xffffffff);
      const rspProdPvt = stateInt(C, "ring.rspProdPvt", ro.rspProdPvt, 0, 0xffffffff);
      // The ring grant as connect() checks it, in the restored grant table and RAM.
      const page = this.xen.gnttab.grantedPage(ringRef, BACKEND_DOM, true);
      if (page < 0) throw new StateError(C, "ring.ringRef", `grant ${ringRef}: status ${page}`);
      if (!this.xen.evtchn.detachedHostPorts().includes(port) || this.xen.evtchn.remoteDom[port] !== BACKEND_DOM) {
        throw new StateError(C, "ring.port", `${port} is not a detached channel to dom ${BACKEND_DOM}`);
      }
      const probe = new BlkBackRing(this.xen.mem.u8, this.xen.mem.i32, page);
      if (reqCons !== rspProdPvt || rspProdPvt !== probe.rspProd) {
        throw new StateError(C, "ring.reqCons", `req_cons ${reqCons}, rsp_prod_pvt ${rspProdPvt}, rsp_prod ${probe.rspProd}: not drained`);
      }
      if (((probe.reqProd - rspProdPvt) >>> 0) > BLKIF_RING_SIZE) throw new StateError(C, "ring", `req_prod ${probe.reqProd} more than a ring ahead`);
      ring = { ringRef, port, reqCons, rspProdPvt };
    }
    if (connected !== (ring !== null)) throw new StateError(C, "connected", "connected exactly when a ring is saved");
    return { version: 1, devid: cfg.devid, vdev: cfg.vdev, readOnly: cfg.readOnly, sectors, connected, ring, stats, loggedErrors };
  }

  /** Applies a checked state (after the device is attached in XenStore). */
  private load(r: BlkBackState): void {
    Object.assign(this.stats, r.stats);
    this.loggedErrors = r.loggedErrors;
    if (r.ring === null || !this.device.connected) return;
    const x = r.ring;
    const ring = new BlkBackRing(this.xen.mem.u8, this.xen.mem.i32, this.xen.gnttab.grantedPage(x.ringRef, BACKEND_DOM, true));
    ring.reqCons = x.reqCons;
    ring.rspProdPvt = x.rspProdPvt;
    const ep = this.newEndpoint();
    if (this.xen.evtchn.hostAttach(x.port, ep) !== 0) return; // checked above: cannot fail
    this.startIo();
    this.endpoint = ep;
    this.ring = ring;
    this.ringRef = x.ringRef;
    this.port = x.port;
  }

  /** The ring is attached and its event channel bound. */
  get connected(): boolean { return this.ring !== null; }

  /** Serves requests the guest queued without notifying (cheap when the ring is idle or disconnected). */
  poll(): void { this.run(); }

  /** Requests handed to the I/O thread and not answered yet. */
  get inFlight(): number { return (this.submitted - this.collected) >>> 0; }

  /** The I/O thread completed requests that are not answered yet (what service() would post). */
  get completions(): boolean {
    const q = this.q;
    return q !== null && (Atomics.load(q.ctl, Q_DONE) >>> 0) !== this.collected;
  }

  /**
   * For the domain's loop after every slice (src/hv/machine.ts poll): answers the requests the I/O thread
   * completed (one Atomics.load when there are none), and takes the requests that waited for a free slot.
   */
  service(): void {
    if (this.completions) this.run();
    else if (this.q !== null && this.inFlight > 0) this.ensureIo(); // a thread that could not be started: again
  }

  /**
   * Waits (blocking this thread, at most `timeoutMs`) until every request handed to the I/O thread completed,
   * and answers them; new requests are not taken. True when none is in flight. For save() and tests.
   */
  drain(timeoutMs: number): boolean {
    const q = this.q;
    if (q === null) return true;
    const end = performance.now() + timeoutMs;
    for (;;) {
      const done = Atomics.load(q.ctl, Q_DONE);
      if (!this.busy && (done >>> 0) !== this.collected) {
        this.busy = true;
        try {
          this.collect();
          if (this.ring?.pushResponses()) this.xen.evtchn.hostNotify(this.port);
        } finally { this.busy = false; }
      }
      if (this.inFlight === 0) return true;
      const left = end - performance.now();
      if (left <= 0 || this.busy) return false;
      Atomics.wait(q.ctl, Q_DONE, done, left);
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
      this.stopIo();
      this.disk.close();
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // The I/O thread

  /**
   * Sets up the disk's I/O queue at the first connection and starts its thread; on failure, stays synchronous
   * and says so.
   */
  private startIo(): void {
    if (!this.threaded || this.q !== null || this.closed) return;
    const ram = this.xen.mem.ram;
    if (!(ram instanceof SharedArrayBuffer)) { this.log(`blkback ${this.config.vdev}: guest RAM is not shared: I/O stays on the vCPU thread`); return; }
    const q = new IoQueue();
    this.io = { queue: q.buffer, ram, fd: this.disk.descriptor, bytes: this.disk.bytes, doorbell: blkIoDoorbell(),
      delayMs: this.disk.delayMs, idleMs: ioIdleMs() };
    Atomics.store(q.ctl, Q_STATE, STATE_RUNNING);
    if (!this.spawnIo()) { this.io = null; return; }
    this.q = q;
  }

  /**
   * Starts an I/O thread for the queue, whose Q_STATE this thread just set to STATE_RUNNING (the new thread owns
   * the queue from then on). False when it could not be started: Q_STATE is back to STATE_NONE, logged.
   */
  private spawnIo(): boolean {
    try {
      // trackUnmanagedFds off: the descriptor was opened on this thread; an I/O thread uses it and, at close, closes it.
      const w = new Worker(IO_THREAD_URL, { workerData: this.io!, stdout: false, stderr: false, trackUnmanagedFds: false,
        resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 } });
      // Events reach a thread whose event loop runs (tests, the main thread); a domain worker's never does, and
      // the I/O thread catches every I/O error itself.
      w.on("error", (e) => this.log(`blkback ${this.config.vdev}: I/O thread failed: ${e.message}`));
      w.unref();
      return true;
    } catch (e) {
      Atomics.store(new Int32Array(this.io!.queue, 0, Q_STATE + 1), Q_STATE, STATE_NONE);
      this.log(`blkback ${this.config.vdev}: cannot start an I/O thread (${(e as Error)?.message ?? String(e)})`);
      return false;
    }
  }

  /**
   * After a submission (and from service() while requests wait): an I/O thread that ended while idle is
   * started again. The thread gives the queue up with a compare-and-swap RUNNING → NONE and then looks at
   * Q_SUBMITTED once more; this thread publishes Q_SUBMITTED and then swaps NONE → RUNNING: whichever order
   * they come in, exactly one of them owns the queue and serves the request (io-thread.ts).
   */
  private ensureIo(): void {
    const ctl = this.q!.ctl;
    if (Atomics.load(ctl, Q_STATE) === STATE_NONE && Atomics.compareExchange(ctl, Q_STATE, STATE_NONE, STATE_RUNNING) === STATE_NONE) {
      this.spawnIo();
    }
  }

  /**
   * Asks the I/O thread to end (see close()); answers nothing more. The descriptor: closed here when no thread
   * owns the queue (NONE → CLOSED), else the thread closes it once the operation in progress is done.
   */
  private stopIo(): void {
    const q = this.q;
    if (q === null) return;
    // Completed requests give their grants back now; the guest hears nothing more on this ring.
    if (!this.busy) { this.generation++; this.collect(); }
    Atomics.store(q.ctl, Q_CLOSING, 1);
    Atomics.add(q.ctl, Q_KICK, 1);
    Atomics.notify(q.ctl, Q_KICK);
    if (Atomics.compareExchange(q.ctl, Q_STATE, STATE_NONE, STATE_CLOSED) !== STATE_NONE) this.disk.release();
  }

  /**
   * Hands the request in `this.req` (validated, its grants pinned as slotPins[s·256 …] / slotNPins[s]) to the I/O
   * thread in slot s = submitted mod IO_SLOTS: `op`, file position `pos` and, for READ/WRITE, the runs in
   * segOff/segLen (adjacent ones merged), for DISCARD the length `len`. Returns PENDING.
   */
  private submit(op: number, pos: number, len: number, nseg: number, kind: number, bytes: number): number {
    const q = this.q!;
    const s = this.submitted & (IO_SLOTS - 1);
    const w = IoQueue.word(s), f = IoQueue.num(s), r = IoQueue.run(s);
    let nruns = 0;
    for (let i = 0; i < nseg;) {
      const off = this.segOff[i]!;
      let l = this.segLen[i++]!;
      while (i < nseg && this.segOff[i] === off + l) l += this.segLen[i++]!;
      q.f64[f + F_RUNS + nruns] = off;
      q.runLen[r + nruns++] = l;
    }
    q.slot[w + S_OP] = op;
    q.slot[w + S_NRUNS] = nruns;
    q.slot[w + S_MSG_LEN] = 0;
    q.f64[f + F_POS] = pos;
    q.f64[f + F_LEN] = len;
    const req = this.req, reqOp = req[REQ_OPERATION]!;
    for (let i = 0; i < 8; i++) this.slotId[s * 8 + i] = req[REQ_ID + i]!;
    this.slotOp[s] = reqOp === BLKIF_OP_INDIRECT ? req[IND_OP]! : reqOp;
    this.slotGen[s] = this.generation;
    this.slotKind[s] = kind;
    this.slotBytes[s] = bytes;
    // Publish: the Atomics store orders the slot's contents before the count the I/O thread reads.
    this.submitted = (this.submitted + 1) >>> 0;
    Atomics.store(q.ctl, Q_SUBMITTED, this.submitted | 0);
    Atomics.add(q.ctl, Q_KICK, 1);
    Atomics.notify(q.ctl, Q_KICK);
    this.ensureIo();
    return PENDING;
  }

  /**
   * Takes the I/O thread's completions in order: unpins each request's grants (before its response is
   * visible: blkfront ends its grants when it sees the response, and fails the device if one is still in
   * use), then answers it on the ring it came on (a request from an earlier connection is dropped: blkfront
   * re-issues those after it reconnects). Returns how many were taken. Not published: the caller pushes.
   */
  private collect(): number {
    const q = this.q!, gnttab = this.xen.gnttab, ring = this.ring;
    const done = Atomics.load(q.ctl, Q_DONE) >>> 0;
    let k = 0;
    for (; this.collected !== done; k++) {
      const s = this.collected & (IO_SLOTS - 1), w = IoQueue.word(s);
      const writable = this.slotPinWrite[s] === 1, base = s * MAX_INDIRECT_SEGMENTS;
      for (let i = 0, n = this.slotNPins[s]!; i < n; i++) gnttab.unpin(this.slotPins[base + i]!, writable);
      this.slotNPins[s] = 0;
      const io = q.slot[w + S_STATUS]!;
      let status = BLKIF_RSP_OKAY;
      if (io === IO_OK) {
        if (this.slotKind[s] === KIND_READ) this.stats.bytesRead += this.slotBytes[s]!;
        else if (this.slotKind[s] === KIND_WRITE) this.stats.bytesWritten += this.slotBytes[s]!;
      } else {
        this.stats.errors++;
        if (io === IO_SHORT_READ) status = this.bad("short read (the image shrank?)", this.slotOp[s]);
        else {
          this.stats.ioErrors++;
          const t = IoQueue.text(s);
          const why = Buffer.from(q.msg.subarray(t, t + q.slot[w + S_MSG_LEN]!)).toString("utf8");
          status = this.bad(`I/O error on ${this.config.path}: ${why}`, this.slotOp[s]);
        }
      }
      if (ring !== null && this.slotGen[s] === this.generation) ring.putResponseId(this.slotId, s * 8, this.slotOp[s]!, status);
      this.collected = (this.collected + 1) >>> 0;
    }
    return k;
  }

  /**
   * Lets go of this copy of a device that lives on in another thread (its state was saved and restored there):
   * the image file is closed, the store is not touched (the device's nodes are the restored copy's now).
   */
  release(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopIo(); // its I/O thread ends (a save drained the requests in flight; it closes the file if it holds it)
    this.disk.close();
  }

  // ---------------------------------------------------------------------------------------------------------
  // Connection (blkback's connect_ring / xen_blkif_map / xen_blkif_disconnect)

  private connect(dev: BackendDevice): string | null {
    if (this.closed) return "device closed";
    // Single page, single queue: anything else was not offered.
    if (dev.front("ring-page-order") !== undefined && dev.frontInt("ring-page-order") !== 0) {
      return `ring-page-order ${dev.front("ring-page-order")} not supported (max-ring-page-order 0)`;
    }
    if (dev.front("multi-queue-num-queues") !== undefined && dev.frontInt("multi-queue-num-queues") !== 1) {
      return `multi-queue-num-queues ${dev.front("multi-queue-num-queues")} not supported`;
    }
    let ref = dev.frontInt("ring-ref");
    if (ref < 0) ref = dev.frontInt("ring-ref0");
    if (ref < 0) return "reading ring-ref: missing or malformed";
    const port = dev.frontInt("event-channel");
    if (port < 0) return "reading event-channel: missing or malformed";
    const protocol = dev.front("protocol");
    if (protocol !== undefined && !PROTOCOLS_64.has(protocol)) return `unknown fe protocol ${protocol}`;

    const off = this.xen.gnttab.grantedPage(ref, BACKEND_DOM, true);
    if (off < 0) return `mapping ring-ref ${ref} port ${port}: grant status ${off}`;
    const ring = new BlkBackRing(this.xen.mem.u8, this.xen.mem.i32, off);
    if (!ring.attach()) return `ring-ref ${ref}: req_prod ${ring.reqProd} more than a ring ahead of rsp_prod ${ring.rspProd}`;

    const ep = this.newEndpoint();
    const rc = this.xen.evtchn.hostBind(port, ep);
    if (rc !== 0) return `binding event-channel ${port}: ${rc}`;
    this.startIo();
    this.endpoint = ep;
    this.ring = ring;
    this.ringRef = ref;
    this.port = port;
    this.loggedErrors = 0;
    this.log(`blkback ${this.config.vdev}: connected (ring-ref ${ref}, event-channel ${port}, ${this.disk.sectors} sectors${this.config.readOnly ? ", read-only" : ""})`);
    return null;
  }

  /** Our end of the ring's event channel for a new connection (older connections' endpoints go quiet). */
  private newEndpoint(): HostEndpoint {
    const gen = ++this.generation;
    return {
      remoteDom: BACKEND_DOM,
      notify: () => { if (gen === this.generation) this.run(); },
      closed: () => { if (gen === this.generation) { this.endpoint = null; this.portClosed(); } },
    };
  }

  /** Drops the ring and unbinds our end of the channel (the guest's port is unbound again, as in Xen). */
  private disconnect(): void {
    this.generation++;
    if (this.endpoint !== null) { this.xen.evtchn.hostUnbind(this.port, this.endpoint); this.endpoint = null; }
    this.ring = null;
    this.ringRef = -1;
    this.port = 0;
  }

  /** The guest closed its end of the channel while connected: nothing can be answered any more. */
  private portClosed(): void {
    this.log(`blkback ${this.config.vdev}: the front-end closed event channel ${this.port}`);
    this.disconnect();
  }

  /** Fails the device (xenbus_dev_fatal: logged, error node, Closing); the ring is dropped. */
  private fail(reason: string): void {
    this.device.fatal(reason); // logs, and calls disconnect() when connected
    this.disconnect();
  }

  // ---------------------------------------------------------------------------------------------------------
  // The ring (blkback's do_block_io_op / __do_block_io_op)

  private run(): void {
    if (this.busy) return;
    if (this.ring === null) {
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
    const ring = this.ring!;
    // The guest could have revoked the ring grant (Xen would keep the page mapped; we look it up each time).
    if (this.xen.gnttab.grantedPage(this.ringRef, BACKEND_DOM, true) !== ring.pageOffset) {
      this.fail(`ring-ref ${this.ringRef}: grant revoked or changed while connected`);
      return;
    }
    let budget = MAX_REQUESTS_PER_RUN;
    let notify = false;
    const q = this.q;
    for (;;) {
      // Answers first: they free ring slots (and queue slots) for the requests below.
      if (q !== null && this.collect() > 0 && ring.pushResponses()) notify = true;
      let n = ring.unconsumed();
      if (n === 0) n = ring.finalCheck();
      if (n < 0) {
        if (ring.pushResponses()) notify = true;
        if (notify) this.xen.evtchn.hostNotify(this.port);
        this.fail(`Frontend provided bogus ring requests (req_prod ${ring.reqProd}, rsp_prod ${ring.rspProdPvt}). Halting ring processing`);
        return;
      }
      // The queue can be fuller than the ring allows while requests of an earlier connection complete; the
      // rest waits for service() after those.
      if (q !== null && n > IO_SLOTS - this.inFlight) this.stats.outOfRequests++;
      if (q !== null) n = Math.min(n, IO_SLOTS - this.inFlight);
      if (n === 0 || budget === 0) break;
      for (; n > 0 && budget > 0; n--, budget--) {
        ring.takeRequest(this.req);
        this.stats.requests++;
        const status = this.dispatch();
        if (status === PENDING) continue;
        if (status === BLKIF_RSP_ERROR) this.stats.errors++;
        else if (status === BLKIF_RSP_EOPNOTSUPP) this.stats.unsupported++;
        // An indirect request is answered with its indirect_op (blkfront checks the operation it gets back).
        const op = this.req[REQ_OPERATION]!;
        ring.putResponse(this.req, op === BLKIF_OP_INDIRECT ? this.req[IND_OP]! : op, status);
      }
      if (ring.pushResponses()) notify = true;
    }
    if (notify) this.xen.evtchn.hostNotify(this.port);
  }

  /** Serves the request in `this.req`; returns its status. */
  private dispatch(): number {
    const op = this.req[REQ_OPERATION]!;
    switch (op) {
      case BLKIF_OP_READ:
        this.stats.reads++;
        return this.readWrite(false, false);
      case BLKIF_OP_WRITE:
        this.stats.writes++;
        return this.readWrite(true, false);
      case BLKIF_OP_WRITE_BARRIER:
      case BLKIF_OP_FLUSH_DISKCACHE:
        this.stats.flushes++;
        // With segments, a write whose data must be stable when answered; without, a pure cache flush.
        if (this.req[REQ_NR_SEGMENTS] !== 0) return this.readWrite(true, true);
        // A pure flush on a read-only disk has nothing to flush; a barrier is a write (blkif.h), refused.
        if (this.config.readOnly) return op === BLKIF_OP_FLUSH_DISKCACHE ? BLKIF_RSP_OKAY : this.bad("barrier on a read-only disk");
        if (this.q !== null) return this.submit(IO_FLUSH, 0, 0, 0, KIND_OTHER, 0);
        try { this.disk.flush(); } catch (e) { return this.ioError(e); }
        return BLKIF_RSP_OKAY;
      case BLKIF_OP_DISCARD:
        this.stats.discards++;
        return this.discard();
      case BLKIF_OP_INDIRECT: {
        const iop = this.req[IND_OP]!;
        if (iop !== BLKIF_OP_READ && iop !== BLKIF_OP_WRITE) return this.bad(`indirect request with operation ${iop}`);
        this.stats.indirect++;
        if (iop === BLKIF_OP_READ) this.stats.reads++;
        else this.stats.writes++;
        return this.readWrite(iop === BLKIF_OP_WRITE, false);
      }
      default:
        // RESERVED_1 and anything else.
        return BLKIF_RSP_EOPNOTSUPP;
    }
  }

  /**
   * Copies the segment list of the request in `this.req` into segGref/segFirst/segLast: from the ring entry
   * (1..11 segments) or, for BLKIF_OP_INDIRECT, from its indirect pages (1..MAX_INDIRECT_SEGMENTS segments,
   * 512 per page; each page a grant to us, read-only is enough). Each field is read once: the guest may rewrite
   * its pages meanwhile, and only the copy is used. Returns the segment count, or -1 after this.bad().
   */
  private loadSegments(): number {
    const req = this.req, dv = this.reqView;
    if (req[REQ_OPERATION] !== BLKIF_OP_INDIRECT) {
      const nseg = req[REQ_NR_SEGMENTS]!;
      if (nseg === 0 || nseg > BLKIF_MAX_SEGMENTS_PER_REQUEST) { this.bad(`bad number of segments ${nseg}`); return -1; }
      for (let i = 0; i < nseg; i++) {
        const s = REQ_SEG + i * SEG_SIZE;
        this.segGref[i] = dv.getUint32(s + SEG_GREF, true);
        this.segFirst[i] = req[s + SEG_FIRST]!;
        this.segLast[i] = req[s + SEG_LAST]!;
      }
      return nseg;
    }
    const nseg = dv.getUint16(IND_NR_SEGMENTS, true);
    if (nseg === 0 || nseg > MAX_INDIRECT_SEGMENTS) { this.bad(`bad number of indirect segments ${nseg}`); return -1; }
    const u8 = this.xen.mem.u8;
    for (let p = 0, i = 0; i < nseg; p++) {
      const gref = dv.getUint32(IND_GREFS + p * 4, true);
      const page = this.xen.gnttab.grantedPage(gref, BACKEND_DOM, false);
      if (page < 0) { this.bad(`indirect page ${p}: grant ${gref}: status ${page}`); return -1; }
      // Safe: `page` is a whole granted frame inside the domain's RAM; k < 512 keeps e + 8 within it.
      for (let k = 0; k < SEGS_PER_INDIRECT_FRAME && i < nseg; k++, i++) {
        const e = page + k * SEG_SIZE;
        this.segGref[i] = (u8[e]! | (u8[e + 1]! << 8) | (u8[e + 2]! << 16) | (u8[e + 3]! << 24)) >>> 0;
        this.segFirst[i] = u8[e + SEG_FIRST]!;
        this.segLast[i] = u8[e + SEG_LAST]!;
      }
    }
    return nseg;
  }

  /**
   * READ (write = false) or WRITE (write = true; `flush`: then fdatasync), direct or indirect. The segments
   * cover consecutive sectors from sector_number; each names a granted page and the sectors within it.
   */
  private readWrite(write: boolean, flush: boolean): number {
    const dv = this.reqView;
    if (write && this.config.readOnly) return this.bad("write to a read-only disk");
    const nseg = this.loadSegments();
    if (nseg < 0) return BLKIF_RSP_ERROR;
    const gnttab = this.xen.gnttab;
    // Handed to the I/O thread, the pages are used while the guest runs: pin each grant (GTF_reading/writing in
    // the guest's entry, as Xen's map) in the slot this request will take, and unpin them all if it is refused.
    const q = this.q, s = this.submitted & (IO_SLOTS - 1), pins = this.slotPins, base = s * MAX_INDIRECT_SEGMENTS;
    let npins = 0;
    let total = 0, refused = BLKIF_RSP_OKAY;
    for (let i = 0; i < nseg; i++) {
      const first = this.segFirst[i]!, last = this.segLast[i]!;
      if (last >= SECTORS_PER_PAGE || last < first) { refused = this.bad(`segment ${i}: sectors ${first}..${last}`); break; }
      // A READ fills the guest's page: it needs a grant the guest made writable. A WRITE only reads it.
      const gref = this.segGref[i]!;
      const page = q !== null ? gnttab.pin(gref, BACKEND_DOM, !write) : gnttab.grantedPage(gref, BACKEND_DOM, !write);
      if (page < 0) { refused = this.bad(`segment ${i}: grant ${gref}: status ${page}`); break; }
      if (q !== null) pins[base + npins++] = gref;
      this.segOff[i] = page + first * SECTOR_SIZE;
      this.segLen[i] = (last - first + 1) * SECTOR_SIZE;
      total += this.segLen[i]!;
    }
    const sector = readU64(dv, REQ_SECTOR);
    if (refused === BLKIF_RSP_OKAY && !(sector + total / SECTOR_SIZE <= this.disk.sectors)) {
      refused = this.bad(`sectors ${sector}+${total >> SECTOR_SHIFT} beyond the disk`);
    }
    if (refused !== BLKIF_RSP_OKAY) {
      for (let i = 0; i < npins; i++) gnttab.unpin(pins[base + i]!, !write);
      return refused;
    }
    if (q !== null) {
      this.slotNPins[s] = npins;
      this.slotPinWrite[s] = write ? 0 : 1;
      return this.submit((write ? IO_WRITE : IO_READ) | (flush ? IO_FLAG_SYNC : 0), sector * SECTOR_SIZE, 0, nseg, write ? KIND_WRITE : KIND_READ, total);
    }
    // Safe: every segOff/segLen range lies inside a page grantedPage returned (a whole frame of the domain's
    // RAM inside its buffer). Segments adjacent in guest memory go in one call; the disk range is contiguous.
    const u8 = this.xen.mem.u8;
    let pos = sector * SECTOR_SIZE;
    try {
      for (let i = 0; i < nseg;) {
        const off = this.segOff[i]!;
        let len = this.segLen[i++]!;
        while (i < nseg && this.segOff[i] === off + len) len += this.segLen[i++]!;
        if (write) this.disk.write(u8, off, len, pos);
        else if (!this.disk.read(u8, off, len, pos)) return this.bad(`short read at byte ${pos} (the image shrank?)`);
        pos += len;
      }
      if (flush) this.disk.flush();
    } catch (e) { return this.ioError(e); }
    if (write) this.stats.bytesWritten += total;
    else this.stats.bytesRead += total;
    return BLKIF_RSP_OKAY;
  }

  /** DISCARD: the range must lie inside a writable disk; its contents become zeros (see DiskImage.zero). */
  private discard(): number {
    if (this.config.readOnly) return this.bad("discard on a read-only disk");
    const sector = readU64(this.reqView, REQ_SECTOR), count = readU64(this.reqView, DISCARD_NR_SECTORS);
    if (!(sector + count <= this.disk.sectors)) return this.bad(`discard of sectors ${sector}+${count} beyond the disk`);
    if (count === 0) return BLKIF_RSP_OKAY;
    if (this.q !== null) return this.submit(IO_DISCARD, sector * SECTOR_SIZE, count * SECTOR_SIZE, 0, KIND_OTHER, 0);
    try { this.disk.zero(sector * SECTOR_SIZE, count * SECTOR_SIZE); } catch (e) { return this.ioError(e); }
    return BLKIF_RSP_OKAY;
  }

  /** Host I/O failed (EIO, ENOSPC, …): BLKIF_RSP_ERROR for this request only. */
  private ioError(e: unknown): number {
    this.stats.ioErrors++;
    return this.bad(`I/O error on ${this.config.path}: ${(e as Error)?.message ?? String(e)}`);
  }

  /** A request refused: logged (up to MAX_LOGGED_ERRORS per connection) and answered BLKIF_RSP_ERROR. */
  private bad(why: string, op: number = this.req[REQ_OPERATION]!): number {
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
