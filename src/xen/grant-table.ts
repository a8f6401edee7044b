/**
 * Grant tables, version 1 only (xen/common/grant_table.c; public/grant_table.h). The guest owns the entries;
 * the hypervisor only sizes the table and maps its frames: for an auto-translated guest, frame k is whatever
 * guest frame the guest named in XENMEM_add_to_physmap(XENMAPSPACE_grant_table, idx = k) — in Xeno that guest
 * frame *is* the grant frame (see shared-info.ts for the model). Backends read entries with `entry`.
 */
import { DOMID_SELF, EINVAL, ENOSYS, EPERM, XEN_PAGE_SIZE } from "./abi.js";
import { addVa, type GuestMemory } from "./guest-memory.js";
import { MAX_GRANT_FRAMES } from "./layout.js";
import { StateError, stateArray, stateBytes, stateInt, stateObject, stateVersion } from "../common/state.js";

/**
 * Saved hypervisor-side grant-table state. The entries of mapped frames are guest RAM (saved with it); the
 * contents of frames the guest unmapped (the v1 shadows) have no guest frame and are saved here.
 */
export interface GrantTableState {
  version: 1;
  /** Grant-table ABI version in use (only 1 is offered). */
  grantVersion: number;
  nrFrames: number;
  /** Per grant frame 0..maxFrames-1: the guest frame it is mapped at, or -1. */
  frameGfn: number[];
  /** Contents (4096 bytes) of frames not mapped anywhere, by frame index, ascending. */
  shadows: { frame: number; data: Uint8Array }[];
}

/** GNTTABOP_* (grant_table.h). */
export const GNTTABOP_map_grant_ref = 0, GNTTABOP_unmap_grant_ref = 1, GNTTABOP_setup_table = 2,
  GNTTABOP_dump_table = 3, GNTTABOP_transfer = 4, GNTTABOP_copy = 5, GNTTABOP_query_size = 6,
  GNTTABOP_unmap_and_replace = 7, GNTTABOP_set_version = 8, GNTTABOP_get_status_frames = 9,
  GNTTABOP_get_version = 10, GNTTABOP_swap_grant_ref = 11, GNTTABOP_cache_flush = 12;
/** GNTST_* status codes. */
export const GNTST_okay = 0, GNTST_general_error = -1, GNTST_bad_domain = -2, GNTST_bad_gntref = -3,
  GNTST_permission_denied = -8, GNTST_bad_page = -9;
/** grant_entry_v1.flags bits. */
export const GTF_type_mask = 3, GTF_permit_access = 1, GTF_readonly = 1 << 2, GTF_reading = 1 << 3,
  GTF_writing = 1 << 4, GTF_sub_page = 1 << 8;
/** XENMAPIDX_grant_table_status: idx bit 31 selects v2 status frames. */
export const XENMAPIDX_grant_table_status = 0x80000000;
/** Entries per v1 frame (8-byte grant_entry_v1). */
export const GRANT_ENTRIES_V1_PER_FRAME = XEN_PAGE_SIZE / 8;

export class GrantTable {
  version = 1;
  /** Frames in use (grows on setup_table / add_to_physmap, up to maxFrames). Xen starts with 1. */
  nrFrames = 1;
  readonly maxFrames = MAX_GRANT_FRAMES;
  /** Guest frame where grant frame k is mapped, or -1. */
  readonly frameGfn = new Float64Array(MAX_GRANT_FRAMES).fill(-1);
  /** Contents of frames not mapped anywhere (kept when a frame moves or is unmapped). */
  private readonly shadow = new Map<number, Uint8Array>();
  /** Per ref: pins (low 16 bits) and writable pins (high 16 bits) held by back-ends (pin/unpin); made on first use. */
  private pins: Uint32Array | null = null;

  constructor(private readonly mem: GuestMemory, readonly domid: number) {}

  save(): GrantTableState {
    const shadows = [...this.shadow.keys()].sort((a, b) => a - b).map((frame) => ({ frame, data: this.shadow.get(frame)!.slice() }));
    return { version: 1, grantVersion: this.version, nrFrames: this.nrFrames, frameGfn: Array.from(this.frameGfn), shadows };
  }

  /**
   * Loads a saved state after checking it as XENMAPSPACE_grant_table and setup_table check a guest's requests:
   * version 1, 1..maxFrames frames in use, each mapped frame in use and at a guest frame inside the domain's
   * buffer, no two at the same guest frame, shadows only for unmapped frames in use, 4096 bytes each. Nothing is
   * copied into guest memory (it holds the saved RAM). A bad state throws StateError and changes nothing.
   */
  restore(state: GrantTableState): void {
    const C = "gnttab";
    const s = stateVersion(C, state, 1);
    const version = stateInt(C, "grantVersion", s.grantVersion, 1, 1);
    const nrFrames = stateInt(C, "nrFrames", s.nrFrames, 1, this.maxFrames);
    const seen = new Map<number, number>();
    const gfns = stateArray(C, "frameGfn", s.frameGfn, this.maxFrames).map((x, k) => {
      const gfn = stateInt(C, `frameGfn[${k}]`, x, -1, Number.MAX_SAFE_INTEGER);
      if (gfn < 0) return gfn;
      if (k >= nrFrames) throw new StateError(C, `frameGfn[${k}]`, `frame ${k} mapped but only ${nrFrames} in use`);
      if (this.mem.frameOffset(gfn) < 0) throw new StateError(C, `frameGfn[${k}]`, `guest frame ${gfn} is outside the domain`);
      if (seen.has(gfn)) throw new StateError(C, `frameGfn[${k}]`, `guest frame ${gfn} already holds frame ${seen.get(gfn)}`);
      seen.set(gfn, k);
      return gfn;
    });
    const shadow = new Map<number, Uint8Array>();
    stateArray(C, "shadows", s.shadows, -1).forEach((x, i) => {
      const o = stateObject(C, `shadows[${i}]`, x);
      const frame = stateInt(C, `shadows[${i}].frame`, o.frame, 0, nrFrames - 1);
      if (gfns[frame] >= 0 || shadow.has(frame)) throw new StateError(C, `shadows[${i}].frame`, `frame ${frame} is mapped or has a shadow already`);
      shadow.set(frame, stateBytes(C, `shadows[${i}].data`, o.data, XEN_PAGE_SIZE).slice());
    });

    this.version = version;
    this.nrFrames = nrFrames;
    this.frameGfn.set(gfns);
    this.shadow.clear();
    for (const [k, v] of shadow) this.shadow.set(k, v);
  }

  /** XENMAPSPACE_grant_table: maps frame `idx` at guest frame `gfn`. Returns 0 or -errno. */
  mapFrame(idx: number, gfn: number): number {
    if ((idx & XENMAPIDX_grant_table_status) !== 0) return -EINVAL; // v2 status frames: v1 only here
    if (!Number.isInteger(idx) || idx < 0 || idx >= this.maxFrames) return -EINVAL;
    const off = this.mem.frameOffset(gfn);
    if (off < 0) return -EINVAL;
    const u8 = this.mem.u8;
    const old = this.frameGfn[idx];
    if (old === gfn) return 0;
    // The frame's current contents follow it (fresh frames are zeroed, as Xen allocates them).
    const cur = old >= 0 ? u8.slice(this.mem.frameOffset(old), this.mem.frameOffset(old) + XEN_PAGE_SIZE) : this.shadow.get(idx);
    if (cur !== undefined) u8.set(cur, off); else u8.fill(0, off, off + XEN_PAGE_SIZE);
    this.mem.markDirty(off, XEN_PAGE_SIZE);
    this.shadow.delete(idx);
    // A guest frame holds one grant frame: a frame previously mapped at gfn goes back to the shadow.
    for (let k = 0; k < this.maxFrames; k++) if (k !== idx && this.frameGfn[k] === gfn) this.unmapFrame(k);
    this.frameGfn[idx] = gfn;
    if (idx >= this.nrFrames) this.nrFrames = idx + 1;
    return 0;
  }

  unmapFrame(k: number): void {
    const gfn = this.frameGfn[k];
    if (gfn < 0) return;
    const off = this.mem.frameOffset(gfn);
    this.shadow.set(k, this.mem.u8.slice(off, off + XEN_PAGE_SIZE));
    this.frameGfn[k] = -1;
  }

  /** The grant frame mapped at guest frame gfn, or -1. */
  frameAt(gfn: number): number {
    for (let k = 0; k < this.maxFrames; k++) if (this.frameGfn[k] === gfn) return k;
    return -1;
  }

  /**
   * A backend in domain `backendDom` uses grant `ref` (the checks of Xen's map_grant_ref/gnttab_copy for a
   * full-page access grant): the ref is in range and its frame mapped; the entry is GTF_permit_access (not
   * sub-page or transitive) for exactly `backendDom`; `write` needs the entry not GTF_readonly; the granted
   * frame is this domain's ordinary RAM. Returns the buffer offset (in this domain's GuestMemory) of the
   * granted page, or a GNTST_* code (< 0). Never touches memory outside the domain's buffer.
   *
   * For an access finished before the guest runs again (backends run in the granting domain's thread), so
   * GTF_reading/GTF_writing (which tell the guest a mapping is still live) are not set; see pin() otherwise.
   */
  grantedPage(ref: number, backendDom: number, write: boolean): number {
    const e = this.entryOffset(ref);
    if (e < 0) return GNTST_bad_gntref;
    const dv = this.mem.dv;
    const flags = dv.getUint16(e, true), dom = dv.getUint16(e + 2, true), frame = dv.getUint32(e + 4, true);
    if ((flags & GTF_type_mask) !== GTF_permit_access || (flags & GTF_sub_page) !== 0) return GNTST_bad_gntref;
    if (dom !== backendDom) return GNTST_permission_denied;
    if (write && (flags & GTF_readonly) !== 0) return GNTST_permission_denied;
    if (!this.mem.isRamFrame(frame)) return GNTST_bad_page;
    const off = this.mem.frameOffset(frame);
    // The back-end writes the page before the guest runs again (same thread): marking now is marking after.
    if (write) this.mem.markDirty(off, XEN_PAGE_SIZE);
    return off;
  }

  /**
   * grantedPage for an access that outlives the call (blkback's I/O thread using the page while the guest
   * runs): as Xen's map_grant_ref (_set_status_v1), the checks and the setting of GTF_reading (and GTF_writing
   * when `write`) in the guest's entry are one compare-and-swap, so the guest's gnttab_end_foreign_access sees
   * the grant in use and defers freeing the page until unpin(). Returns the page's buffer offset or a GNTST_*
   * code (< 0: nothing pinned). Pins are counted per ref; each successful pin needs one unpin(ref, write).
   */
  pin(ref: number, backendDom: number, write: boolean): number {
    const e = this.entryOffset(ref);
    if (e < 0) return GNTST_bad_gntref;
    const i32 = this.mem.i32, i = e >> 2; // the entry is 8-byte aligned: flags u16 | domid u16 << 16
    const set = GTF_reading | (write ? GTF_writing : 0);
    for (;;) {
      const w = Atomics.load(i32, i), flags = w & 0xffff;
      if ((flags & GTF_type_mask) !== GTF_permit_access || (flags & GTF_sub_page) !== 0) return GNTST_bad_gntref;
      if (w >>> 16 !== backendDom) return GNTST_permission_denied;
      if (write && (flags & GTF_readonly) !== 0) return GNTST_permission_denied;
      if ((w | set) === w || Atomics.compareExchange(i32, i, w, w | set) === w) break;
    }
    // The frame as it is now (Xen reads it once, with the pin, into its active entry; so does the caller).
    const frame = this.mem.dv.getUint32(e + 4, true);
    const pins = this.pins ??= new Uint32Array(this.maxFrames * GRANT_ENTRIES_V1_PER_FRAME);
    pins[ref] += write ? 0x10001 : 1; // low half: pins, high half: writable pins
    if (!this.mem.isRamFrame(frame)) { this.unpin(ref, write); return GNTST_bad_page; }
    const off = this.mem.frameOffset(frame);
    if (write) this.mem.markDirty(off, XEN_PAGE_SIZE); // and again at unpin, after the I/O thread wrote it
    return off;
  }

  /** Drops a pin taken by pin(ref, …, write): the last writable one clears GTF_writing, the last one GTF_reading. */
  unpin(ref: number, write: boolean): void {
    const pins = this.pins;
    if (pins === null || !Number.isInteger(ref) || ref < 0 || ref >= pins.length || pins[ref] === 0) return;
    const n = pins[ref] = pins[ref]! - (write ? 0x10001 : 1);
    const clear = (n === 0 ? GTF_reading : 0) | ((n >>> 16) === 0 ? GTF_writing : 0);
    const e = this.entryOffset(ref);
    if (write && e >= 0) { const off = this.mem.frameOffset(this.mem.dv.getUint32(e + 4, true)); if (off >= 0) this.mem.markDirty(off, XEN_PAGE_SIZE); }
    // A grant frame the guest unmapped meanwhile keeps its flags in the shadow copy (its own doing).
    if (clear !== 0 && e >= 0) Atomics.and(this.mem.i32, e >> 2, ~clear);
  }

  /** Grants pinned now (for checks: a save needs none). */
  get pinned(): number {
    let n = 0;
    if (this.pins !== null) for (let i = 0; i < this.pins.length; i++) if (this.pins[i] !== 0) n++;
    return n;
  }

  /**
   * Frames (buffer page numbers) the guest grants writable to `backendDom` now, into `out`: pages its
   * back-ends may write in place at any time (ring pages, persistent grants, posted rx buffers). A live
   * migration sends them again once the domain is paused (XenDomain.hostPages).
   */
  writableGrantedPages(backendDom: number, out: Set<number>): void {
    const dv = this.mem.dv;
    for (let ref = 0; ref < this.nrFrames * GRANT_ENTRIES_V1_PER_FRAME; ref++) {
      const e = this.entryOffset(ref);
      if (e < 0) { ref += GRANT_ENTRIES_V1_PER_FRAME - 1 - (ref % GRANT_ENTRIES_V1_PER_FRAME); continue; } // frame not mapped
      const flags = dv.getUint16(e, true);
      if ((flags & GTF_type_mask) !== GTF_permit_access || (flags & GTF_readonly) !== 0 || dv.getUint16(e + 2, true) !== backendDom) continue;
      const off = this.mem.frameOffset(dv.getUint32(e + 4, true));
      if (off >= 0) out.add(off >>> 12);
    }
  }

  /**
   * Reads v1 entry `ref` for a backend: buffer offset of the 8-byte entry (flags u16 @0, domid u16 @2,
   * frame u32 @4), or -1 when the ref is out of range or its frame is not mapped.
   */
  entryOffset(ref: number): number {
    if (!Number.isInteger(ref) || ref < 0 || ref >= this.nrFrames * GRANT_ENTRIES_V1_PER_FRAME) return -1;
    const gfn = this.frameGfn[Math.floor(ref / GRANT_ENTRIES_V1_PER_FRAME)];
    if (gfn < 0) return -1;
    return this.mem.frameOffset(gfn) + (ref % GRANT_ENTRIES_V1_PER_FRAME) * 8;
  }
}

const isSelf = (gt: GrantTable, dom: number): boolean => dom === DOMID_SELF || dom === gt.domid;

/**
 * HYPERVISOR_grant_table_op(cmd, uop, count). setup_table, query_size, set_version and get_version take
 * exactly one struct (count = 1, else -EINVAL, as gnttab_setup_table & co); the mapping/copy ops are
 * for in-guest backends and answer -ENOSYS here.
 */
export function grantTableOp(gt: GrantTable, mem: GuestMemory, cmd: number, lo: number, hi: number, count: number): number {
  const dv = mem.sv;
  switch (cmd) {
    case GNTTABOP_query_size: {
      if (count !== 1) return -EINVAL;
      mem.copyIn(lo, hi, 16);
      if (!isSelf(gt, dv.getUint16(0, true))) { dv.setInt16(12, GNTST_bad_domain, true); }
      else {
        dv.setUint32(4, gt.nrFrames, true);
        dv.setUint32(8, gt.maxFrames, true);
        dv.setInt16(12, GNTST_okay, true);
      }
      mem.copyOut(lo, hi, 16);
      return 0;
    }
    case GNTTABOP_setup_table: {
      if (count !== 1) return -EINVAL;
      mem.copyIn(lo, hi, 24);
      const dom = dv.getUint16(0, true), n = dv.getUint32(4, true);
      const flo = dv.getUint32(16, true), fhi = dv.getUint32(20, true);
      if (!isSelf(gt, dom)) dv.setInt16(8, GNTST_bad_domain, true);
      else if (n > gt.maxFrames) dv.setInt16(8, GNTST_general_error, true);
      else {
        if (n > gt.nrFrames) gt.nrFrames = n;
        // The list gets the guest frame of each grant frame (INVALID_GFN = ~0 when not mapped yet).
        for (let k = 0; k < n; k++) {
          const [l, h] = addVa(flo, fhi, k * 8);
          mem.writeU64At(l, h, 0, gt.frameGfn[k]);
        }
        dv.setInt16(8, GNTST_okay, true);
      }
      mem.copyOut(lo, hi, 24);
      return 0;
    }
    case GNTTABOP_set_version: {
      if (count !== 1) return -EINVAL;
      mem.copyIn(lo, hi, 4);
      const want = dv.getUint32(0, true);
      const rc = want === 1 ? 0 : -EINVAL; // v2 is not offered (Arm's default max version is 1)
      dv.setUint32(0, gt.version, true);
      mem.copyOut(lo, hi, 4);
      return rc;
    }
    case GNTTABOP_get_version: {
      if (count !== 1) return -EINVAL;
      mem.copyIn(lo, hi, 8);
      if (!isSelf(gt, dv.getUint16(0, true))) return -EPERM;
      dv.setUint32(4, gt.version, true);
      mem.copyOut(lo, hi, 8);
      return 0;
    }
    case GNTTABOP_get_status_frames: return -EINVAL; // v2 only
    default: return -ENOSYS;
  }
}
