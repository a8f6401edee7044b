/**
 * The XenStore side of one split-driver device, as dom0's toolstack and back-end drivers do it
 * (tools/libs/light/libxl_device.c libxl__device_generic_add; Linux drivers/xen/xenbus/xenbus_probe_backend.c;
 * protocol in xen/include/public/io/xenbus.h):
 *
 *   /local/domain/0/backend/<type>/<domid>/<devid>   "n0 r<domid>"   frontend, frontend-id, online, state, …
 *   /local/domain/<domid>/device/<type>/<devid>      "n<domid> r0"   backend, backend-id, state, …
 *
 * Both directories are written in one go (the guest's xenbus probes the device when its directory appears),
 * then the back-end advertises its features and goes Initialising → InitWait. It watches the front-end's
 * state: on Initialised (or Connected, for front-ends that skip a step) it calls `connect`, which reads the
 * ring references and event channel and returns null or an error; on Closing/Closed it calls `disconnect`
 * and follows the front-end down, back to InitWait once the front-end resets to Initialising (driver rebind).
 *
 * Everything runs in-process on the domain's own XenStore as domain 0; watch events arrive synchronously
 * (the store lets in-process sinks make further requests).
 */
import { XenStoreError, type StoreApi, type StoreSessionRef } from "../xenstore/index.js";
import { StateError } from "../common/state.js";

/** enum xenbus_state (io/xenbus.h). */
export const XenbusStateUnknown = 0, XenbusStateInitialising = 1, XenbusStateInitWait = 2,
  XenbusStateInitialised = 3, XenbusStateConnected = 4, XenbusStateClosing = 5, XenbusStateClosed = 6,
  XenbusStateReconfiguring = 7, XenbusStateReconfigured = 8;

export interface BackendDeviceOptions {
  store: StoreApi;
  /** The front-end's domain and the back-end's (0: Xeno plays dom0). */
  domid: number;
  backendDomid?: number;
  /** Device class as in the paths: "vbd", "vif", … */
  type: string;
  /** Device id (vbd: the xvd number, e.g. 51712 for xvda; vif: 0, 1, …). */
  devid: number;
  /** Extra keys for the back-end directory (params, mode, mac, …), written before the device appears. */
  backend: Record<string, string>;
  /** Extra keys for the front-end directory (virtual-device, mac, …). */
  frontend: Record<string, string>;
  /** Keys the back-end advertises before InitWait (feature-*, sectors, …). */
  features?: Record<string, string>;
  /** The front-end is ready: read its keys (dev.front) and connect; return null or a reason for failing. */
  connect(dev: BackendDevice): string | null;
  /** The front-end is going away (or the device is removed): drop rings and channels. */
  disconnect(dev: BackendDevice): void;
  log(line: string): void;
  /**
   * Save/restore: attach to the device a restored XenStore already holds instead of creating it — nothing is
   * written, only the front-end's state is watched again; `connected` is the saved connection flag (the
   * caller re-attaches the ring itself). The back-end directory must exist.
   */
  existing?: { connected: boolean };
}

/** How often a device's creation transaction is tried when other writers conflict with it (EAGAIN). */
const TX_TRIES = 10;

export class BackendDevice {
  readonly backPath: string;
  readonly frontPath: string;
  readonly domid: number;
  readonly devid: number;
  connected = false;
  private readonly store: StoreApi;
  private readonly s: StoreSessionRef;
  private readonly token: string;
  private removed = false;
  /** Set by unplug(): called once the front-end has closed (or gave up). */
  private unplugged: (() => void) | null = null;

  constructor(private readonly o: BackendDeviceOptions) {
    const bdom = o.backendDomid ?? 0;
    this.store = o.store;
    this.domid = o.domid;
    this.devid = o.devid;
    this.backPath = `/local/domain/${bdom}/backend/${o.type}/${o.domid}/${o.devid}`;
    this.frontPath = `/local/domain/${o.domid}/device/${o.type}/${o.devid}`;
    this.token = `xeno-back:${this.backPath}`;
    this.s = this.store.connect(bdom, (path, token) => { if (token === this.token) this.frontendChanged(path); });
    if (o.existing !== undefined) {
      if (this.state === XenbusStateUnknown) {
        this.store.disconnect(this.s);
        throw new StateError(`${o.type}-backend`, "devid", `${this.backPath} is not in the restored store`);
      }
      this.connected = o.existing.connected;
      this.store.watch(this.s, `${this.frontPath}/state`, this.token);
      return;
    }

    const st = this.store, s = this.s;
    // A transaction another writer's change conflicted with (EAGAIN) is done again, as libxl's loops do: e.g.
    // a restored domain's nodes written by the toolstack while the worker builds its new back-ends.
    for (let attempt = 1; ; attempt++) {
      const tx = st.transactionStart(s);
      const t = st.transaction(s, tx);
      const w = (path: string, value: string): void => st.write(s, t, path, Buffer.from(value, "latin1"));
      for (const p of [this.backPath, this.frontPath]) { try { st.rm(s, t, p); } catch { /* absent */ } }
      st.mkdir(s, t, this.backPath);
      st.setPerms(s, t, this.backPath, [`n${bdom}`, `r${o.domid}`]);
      st.mkdir(s, t, this.frontPath);
      st.setPerms(s, t, this.frontPath, [`n${o.domid}`, `r${bdom}`]);
      for (const [k, v] of Object.entries({
        frontend: this.frontPath, "frontend-id": String(o.domid), online: "1", state: String(XenbusStateInitialising), ...o.backend,
      })) w(`${this.backPath}/${k}`, v);
      for (const [k, v] of Object.entries({
        backend: this.backPath, "backend-id": String(bdom), state: String(XenbusStateInitialising), ...o.frontend,
      })) w(`${this.frontPath}/${k}`, v);
      try {
        st.transactionEnd(s, tx, true);
        break;
      } catch (e) {
        if (!(e instanceof XenStoreError && e.errno === "EAGAIN") || attempt >= TX_TRIES) throw e;
      }
    }

    for (const [k, v] of Object.entries(o.features ?? {})) this.writeBack(k, v);
    this.setState(XenbusStateInitWait);
    st.watch(s, `${this.frontPath}/state`, this.token);
  }

  /** A key of the front-end directory, or undefined when absent or unreadable. */
  front(key: string): string | undefined {
    try { return Buffer.from(this.store.read(this.s, null, `${this.frontPath}/${key}`)).toString("latin1"); }
    catch { return undefined; }
  }

  /** A front-end key as a non-negative integer (decimal), or -1 when absent or malformed. */
  frontInt(key: string): number {
    const v = this.front(key);
    if (v === undefined || !/^\d{1,10}$/.test(v.trim())) return -1;
    return Number(v.trim());
  }

  writeBack(key: string, value: string): void {
    if (this.removed) return;
    this.store.write(this.s, null, `${this.backPath}/${key}`, Buffer.from(value, "latin1"));
  }

  get state(): number {
    try { return Number(Buffer.from(this.store.read(this.s, null, `${this.backPath}/state`)).toString("latin1")); }
    catch { return XenbusStateUnknown; }
  }

  setState(state: number): void { this.writeBack("state", String(state)); }

  /** The back-end failed: says why in error/<backend path>/error as xenbus_dev_fatal does, and closes. */
  fatal(reason: string): void {
    this.o.log(`${this.backPath}: ${reason}`);
    try {
      // xenbus_dev_fatal: error/<nodename relative to the back-end's home>/error.
      const rel = this.backPath.slice(`/local/domain/${this.o.backendDomid ?? 0}/`.length);
      this.store.write(this.s, null, `/local/domain/${this.o.backendDomid ?? 0}/error/${rel}/error`, Buffer.from(reason, "latin1"));
    } catch { /* best effort */ }
    this.drop();
    this.setState(XenbusStateClosing);
  }

  /**
   * Hot-unplug as libxl's device removal does it: online = 0 and state Closing; the front-end (blkfront,
   * netfront) lets go and reaches Closed; then `done` runs once (the caller removes the device). The caller
   * bounds the wait (a front-end holding a busy disk may never let go) and then calls forceUnplug(), as
   * `xl block-detach` falls back to a forced removal. (No timers here: a domain's thread never yields to its
   * event loop.)
   *
   * A mounted disk does not make the wait longer with the guests Xeno boots, and no order of states here would
   * change that: since "xen-blkfront: sanitize the removal state machine" (C. Hellwig, July 2021, Linux 5.14)
   * blkfront_closing no longer checks bd_openers ("Device in use; refusing to close" is gone); on the back-end's
   * Closing it stops the queues, marks the disk dead (blk_mark_disk_dead) and goes Closed at once, open or not.
   * The demo's 6.1.0-57-cloud-arm64 xen-blkfront.ko has no "refusing to close" string and calls
   * blk_mark_disk_dead and xenbus_frontend_closed; test/cli/detach sees the mounted disk detached at once. The
   * front-end decides this, so Xen with the same guest kernel should do the same (not tried). A guest kernel
   * older than 5.14 refuses while the disk is open, and then the bounded wait and -f apply.
   */
  unplug(done: () => void): void {
    if (this.removed || this.unplugged !== null) return;
    let fired = false;
    this.unplugged = (): void => { if (fired) return; fired = true; done(); };
    this.writeBack("online", "0");
    this.setState(XenbusStateClosing);
    const fs = this.frontInt("state");
    if (fs === XenbusStateClosed || fs === XenbusStateUnknown || fs < 0) this.unplugged();
  }

  /** A hot-unplug is waiting for the front-end (no save then: the toolstack's callback is not data). */
  get unplugging(): boolean { return this.unplugged !== null; }

  /** Ends an unplug() that the front-end did not answer. */
  forceUnplug(): void { this.unplugged?.(); }

  /** Hot-unplug / domain teardown: disconnect, then remove both directories. */
  remove(): void {
    if (this.removed) return;
    this.drop();
    this.removed = true;
    try { this.store.unwatch(this.s, `${this.frontPath}/state`, this.token); } catch { /* gone */ }
    for (const p of [this.backPath, this.frontPath]) { try { this.store.rm(this.s, null, p); } catch { /* gone */ } }
    this.store.disconnect(this.s);
  }

  private drop(): void {
    if (!this.connected) return;
    this.connected = false;
    this.o.disconnect(this);
  }

  private frontendChanged(_path: string): void {
    if (this.removed) return;
    const fs = this.frontInt("state");
    switch (fs) {
      case XenbusStateInitialised:
      case XenbusStateConnected: {
        if (this.connected) { if (this.state !== XenbusStateConnected) this.setState(XenbusStateConnected); return; }
        if (this.state !== XenbusStateInitWait && this.state !== XenbusStateConnected) return;
        const err = this.o.connect(this);
        if (err !== null) { this.fatal(err); return; }
        this.connected = true;
        this.setState(XenbusStateConnected);
        return;
      }
      case XenbusStateClosing:
        this.drop();
        this.setState(XenbusStateClosing);
        return;
      case XenbusStateClosed:
      case XenbusStateUnknown:
      case -1:
        this.drop();
        if (this.unplugged !== null) { this.unplugged(); return; }
        if (this.state !== XenbusStateClosed && this.state !== XenbusStateUnknown) this.setState(XenbusStateClosed);
        return;
      case XenbusStateInitialising:
        if (this.unplugged !== null) return;
        // The front-end driver (re)probed after a close: offer the device again.
        if (this.state === XenbusStateClosed || this.state === XenbusStateClosing) this.setState(XenbusStateInitWait);
        return;
      default:
        return;
    }
  }
}
