/**
 * Persistent grants of one blkback ring (blkif.h "feature-persistent"; Linux drivers/block/xen-blkback/blkback.c
 * get_persistent_gnt / add_persistent_gnt / free_persistent_gnts): when both ends advertise the feature, the
 * front-end reuses a fixed pool of granted pages for all its I/O (copying data in and out of them), and the
 * back-end keeps each grant mapped from its first use until the ring disconnects, instead of mapping and
 * unmapping it per request.
 *
 * In Xeno "mapped" is GrantTable.pin: the guest's entry gets GTF_reading|GTF_writing (so its
 * gnttab_end_foreign_access sees the page in use), and the page's offset in the domain's buffer is read once,
 * at the pin, and kept — as Xen keeps a mapping to the frame the entry named when it was mapped, whatever the
 * guest writes into the entry later. As in Linux (which maps them without GNTMAP_readonly), persistent grants
 * are mapped writable whatever the request: a front-end that negotiated the feature and grants a page read-only
 * gets BLKIF_RSP_ERROR for that request.
 *
 * Bound: at most `max` grants per ring (Linux's xen_blkif_max_pgrants, 1056). A grant met when the table is
 * full is used for its request only (pinned and unpinned like any grant without the feature), as Linux does
 * (it sets overflow_max_grants and maps the rest per request). And as Linux's purge_persistent_gnt, run at most
 * every PURGE_INTERVAL_MS by the ring's owner (purge()): grants no request has used for PGRANT_TIMEOUT_MS are
 * unmapped, and once the table overflowed, 5 % of the bound more (LRU_PERCENT_CLEAN), those used longest ago
 * first, so that a front-end whose pool moved on gets its new grants kept. Grants in use are never purged.
 *
 * Release: disconnect() unpins every entry no request in flight uses; the others as their last request
 * completes (put). A released table takes no new grants.
 *
 * Allocation: the tables are typed arrays made once per ring connection; use/put allocate nothing.
 */
import type { GrantTable } from "../../xen/grant-table.js";
import { GRANT_ENTRIES_V1_PER_FRAME } from "../../xen/grant-table.js";

/** Linux blkback's default xen_blkif_max_pgrants (module parameter max_persistent_grants). */
export const MAX_PERSISTENT_GRANTS = 1056;
/** Linux blkback: LRU_INTERVAL (100 ms), xen_blkif_pgrant_timeout (60 s), LRU_PERCENT_CLEAN (5). */
export const PURGE_INTERVAL_MS = 100, PGRANT_TIMEOUT_MS = 60_000, LRU_PERCENT_CLEAN = 5;

/** use() when the table is full: the caller pins the grant for this request only (below every GNTST_* code). */
export const PGNT_FULL = -1000;

export class PersistentGrants {
  /** Per grant ref: its entry + 1, or 0 (the table's index; refs are < the grant table's maxFrames · 512). */
  private readonly index: Int16Array;
  /** Per entry: the ref, the page's buffer offset, requests in flight using it. */
  private readonly ref: Uint32Array;
  private readonly off: Float64Array;
  private readonly active: Uint16Array;
  /** Per entry: the purge epoch it was last used in (purge() counts epochs of PURGE_INTERVAL_MS). */
  private readonly used: Float64Array;
  private epoch = 0;
  private lastPurge: number;
  /** Grants were met while the table was full since the last purge (Linux's overflow_max_grants). */
  private overflowed = false;
  /** Free entries (a stack). */
  private readonly free: Int16Array;
  private nfree: number;
  private released = false;
  /** Grants met while the table was full (Linux's overflow_max_grants, as a count for the stats). */
  overflows = 0;

  constructor(private readonly gnttab: GrantTable, private readonly backendDom: number, readonly max = MAX_PERSISTENT_GRANTS, now = 0) {
    this.lastPurge = now;
    if (!Number.isInteger(max) || max < 0 || max > 0x7ffe) throw new RangeError(`persistent grants: bad bound ${max}`);
    this.index = new Int16Array(gnttab.maxFrames * GRANT_ENTRIES_V1_PER_FRAME);
    this.ref = new Uint32Array(max);
    this.off = new Float64Array(max);
    this.active = new Uint16Array(max);
    this.used = new Float64Array(max);
    this.free = new Int16Array(max);
    for (let i = 0; i < max; i++) this.free[i] = max - 1 - i;
    this.nfree = max;
  }

  /** Grants kept mapped now. */
  get count(): number { return this.max - this.nfree; }

  /**
   * The page of grant `ref` for a request: its buffer offset, with the entry's in-flight count raised (the
   * caller puts it back with put(entry) — the entry is `this.entry` after the call); PGNT_FULL when the table
   * is full (or released) and the caller must pin the grant for this request only; or a GNTST_* code (< 0, >
   * PGNT_FULL) when the grant is not a writable full-page grant to us (nothing kept).
   */
  use(ref: number): number {
    if (ref >= 0 && ref < this.index.length) {
      const k = this.index[ref]! - 1;
      if (k >= 0) { this.active[k]++; this.used[k] = this.epoch; this.entry = k; return this.off[k]!; }
    }
    if (this.nfree === 0 || this.released) { this.overflows++; this.overflowed = true; return PGNT_FULL; }
    const page = this.gnttab.pin(ref, this.backendDom, true);
    if (page < 0) return page;
    const k = this.free[--this.nfree]!;
    this.index[ref] = k + 1;
    this.ref[k] = ref;
    this.off[k] = page;
    this.active[k] = 1;
    this.used[k] = this.epoch;
    this.entry = k;
    return page;
  }

  /**
   * purge_persistent_gnt, for the ring's owner to call between requests (cheap when not due): every
   * PURGE_INTERVAL_MS, unmaps the grants unused for PGRANT_TIMEOUT_MS and, after an overflow of a full table,
   * LRU_PERCENT_CLEAN % of the bound (plus any excess) among the unused ones, oldest first. Returns how many.
   */
  purge(now: number): number {
    if (now - this.lastPurge < PURGE_INTERVAL_MS || this.released) return 0;
    this.epoch += Math.floor((now - this.lastPurge) / PURGE_INTERVAL_MS);
    this.lastPurge = now;
    const old = this.epoch - PGRANT_TIMEOUT_MS / PURGE_INTERVAL_MS;
    let n = 0;
    for (let k = 0; k < this.max; k++) {
      if (this.index[this.ref[k]!] === k + 1 && this.active[k] === 0 && this.used[k]! <= old) { this.drop(k); n++; }
    }
    if (this.overflowed && this.nfree === 0) {
      // The least recently used idle entries (rare: only after an overflow; allocation is fine here).
      const clean = Math.floor(this.max / 100) * LRU_PERCENT_CLEAN;
      const idle: number[] = [];
      for (let k = 0; k < this.max; k++) if (this.index[this.ref[k]!] === k + 1 && this.active[k] === 0) idle.push(k);
      idle.sort((a, b) => this.used[a]! - this.used[b]!);
      for (let i = 0; i < idle.length && i < clean; i++) { this.drop(idle[i]!); n++; }
    }
    this.overflowed = false;
    return n;
  }

  /** The entry use() last returned a page of. */
  entry = -1;

  /** A request using entry `k` is done with it (after a released table's last one, the grant is unpinned). */
  put(k: number): void {
    if (this.active[k] === 0) return;
    if (--this.active[k] === 0 && this.released) this.drop(k);
  }

  /** The ring disconnected: unpins every grant not in use; the rest go at their last put(). Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (let k = 0; k < this.max; k++) if (this.index[this.ref[k]!] === k + 1 && this.active[k] === 0) this.drop(k);
  }

  private drop(k: number): void {
    const ref = this.ref[k]!;
    if (this.index[ref] !== k + 1) return;
    this.index[ref] = 0;
    this.gnttab.unpin(ref, true);
    this.free[this.nfree++] = k;
  }

  /** The refs kept now, ascending (save: restore re-pins them with adopt()). */
  refs(): number[] {
    const out: number[] = [];
    for (let r = 0; r < this.index.length; r++) if (this.index[r] !== 0) out.push(r);
    return out;
  }

  /** Restore: keeps grant `ref` again (pins it as use() would). Returns 0 or the GNTST_* code / PGNT_FULL. */
  adopt(ref: number): number {
    const page = this.use(ref);
    if (page < 0) return page;
    this.active[this.entry]--;
    return 0;
  }
}
