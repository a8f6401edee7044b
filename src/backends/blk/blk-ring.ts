/**
 * One connected queue of a blkback disk (Linux's struct xen_blkif_ring): its shared ring (1..16 pages), the
 * event channel bound to it, and its persistent grants when negotiated. A BlkRing lives for one connection:
 * disconnect() makes it dead (no more answers on it; its persistent grants released as their requests
 * complete) and a reconnection makes new ones, so a request still in flight from an old connection finds its
 * ring dead when it completes and is dropped (blkfront re-issues those after it reconnects).
 */
import type { GrantTable } from "../../xen/grant-table.js";
import type { EventChannels, HostEndpoint } from "../../xen/event-channel.js";
import type { XenDomain } from "../../xen/domain.js";
import { BlkBackRing } from "./blkif.js";
import { MAX_PERSISTENT_GRANTS, PersistentGrants } from "./persistent-grants.js";
import type { ConnectPlan } from "./blk-negotiate.js";
import type { BlkBackState } from "./blk-state.js";

/**
 * The rings of a connect plan, attached (xen_blkif_map): every page a writable full-page grant to
 * `backendDom`, indexes sane (BACK_RING_ATTACH); channels not bound yet. A string says why not.
 */
export function openRings(xen: XenDomain, plan: ConnectPlan, backendDom: number): BlkRing[] | string {
  const rings: BlkRing[] = [];
  for (let q = 0; q < plan.queues.length; q++) {
    const { refs, port } = plan.queues[q]!;
    const pages: number[] = [];
    for (const ref of refs) {
      const off = xen.gnttab.grantedPage(ref, backendDom, true);
      if (off < 0) return `mapping ring-ref ${ref} port ${port}: grant status ${off}`;
      pages.push(off);
    }
    const ring = new BlkBackRing(xen.mem.u8, xen.mem.i32, pages);
    if (!ring.attach()) return `ring-ref ${refs[0]}: req_prod ${ring.reqProd} more than a ring ahead of rsp_prod ${ring.rspProd}`;
    rings.push(new BlkRing(q, refs, port, ring, plan.persistent ? new PersistentGrants(xen.gnttab, backendDom, MAX_PERSISTENT_GRANTS, performance.now()) : null, backendDom));
  }
  return rings;
}

/**
 * The rings of a saved state checked by checkBlkState (every ring page and persistent grant a writable
 * full-page grant to `backendDom`), with their indexes; the persistent grants pinned again. Channels not attached.
 */
export function restoreRings(xen: XenDomain, s: BlkBackState, backendDom: number): BlkRing[] {
  return s.rings.map((x, q) => {
    const ring = new BlkBackRing(xen.mem.u8, xen.mem.i32, x.ringRefs.map((ref) => xen.gnttab.grantedPage(ref, backendDom, true)));
    ring.reqCons = x.reqCons;
    ring.rspProdPvt = x.rspProdPvt;
    const pgnt = s.persistent ? new PersistentGrants(xen.gnttab, backendDom, MAX_PERSISTENT_GRANTS, performance.now()) : null;
    for (const ref of x.pgrants) pgnt!.adopt(ref);
    return new BlkRing(q, x.ringRefs, x.port, ring, pgnt, backendDom);
  });
}

export class BlkRing {
  /** Our end of the event channel while live. */
  endpoint: HostEndpoint | null = null;
  live = true;
  /** Responses written since the last publish(). */
  dirty = false;
  /** Requests taken from this ring (not saved: for tests and diagnostics). */
  taken = 0;

  constructor(readonly queue: number, readonly refs: readonly number[], readonly port: number, readonly ring: BlkBackRing,
    readonly pgnt: PersistentGrants | null, private readonly backendDom: number) {}

  /**
   * The ring grants still name the pages we use. The guest could revoke or redirect them while connected;
   * Xen would keep the pages mapped, Xeno looks the grants up before each pass and fails the device instead of
   * writing into a page the guest may have reclaimed.
   */
  pagesValid(gnttab: GrantTable): boolean {
    const pages = this.ring.pages;
    for (let i = 0; i < this.refs.length; i++) if (gnttab.grantedPage(this.refs[i]!, this.backendDom, true) !== pages[i]) return false;
    return true;
  }

  /** Publishes the responses written (RING_PUSH_RESPONSES_AND_CHECK_NOTIFY) and notifies when the guest asked. */
  publish(evtchn: EventChannels): void {
    if (!this.dirty) return;
    this.dirty = false;
    if (this.ring.pushResponses() && this.live) evtchn.hostNotify(this.port);
  }

  /** The connection ended: no more answers; the persistent grants go as their requests complete. */
  kill(evtchn: EventChannels): void {
    if (!this.live) return;
    this.live = false;
    if (this.endpoint !== null) { evtchn.hostUnbind(this.port, this.endpoint); this.endpoint = null; }
    this.pgnt?.release();
  }
}
