/**
 * HYPERVISOR_memory_op(cmd, arg) (xen/common/memory.c; public/memory.h). The low 6 bits of cmd are the
 * sub-op (MEMOP_CMD_MASK); the rest is a continuation start extent, which guests pass as 0.
 *
 * The balloon's sub-ops keep the domain's P2M (which RAM frames are populated, `MemoryAccount.populated`) and
 * the hypervisor's frame pool (src/hv/frame-pool.ts) in step: decrease_reservation takes populated frames out
 * (scrubbed, counted free in the pool), populate_physmap claims frames from the pool and puts them back
 * (zeroed). A frame given back twice, or a populate beyond max_pages or the pool's free frames, stops the
 * batch there (the return value is the number of extents done, as in Xen).
 */
import { DOMID_SELF, EINVAL, ENOSYS, EOPNOTSUPP, ESRCH, XEN_PAGE_SIZE } from "./abi.js";
import { u64, type GuestMemory } from "./guest-memory.js";
import type { GrantTable } from "./grant-table.js";
import type { SharedInfo } from "./shared-info.js";

export const XENMEM_increase_reservation = 0, XENMEM_decrease_reservation = 1, XENMEM_maximum_ram_page = 2,
  XENMEM_current_reservation = 3, XENMEM_maximum_reservation = 4, XENMEM_populate_physmap = 6,
  XENMEM_add_to_physmap = 7, XENMEM_memory_map = 9, XENMEM_exchange = 11, XENMEM_maximum_gpfn = 14,
  XENMEM_remove_from_physmap = 15, XENMEM_add_to_physmap_batch = 23;
export const XENMAPSPACE_shared_info = 0, XENMAPSPACE_grant_table = 1, XENMAPSPACE_gmfn = 2,
  XENMAPSPACE_gmfn_range = 3, XENMAPSPACE_gmfn_foreign = 4, XENMAPSPACE_dev_mmio = 5;
const MEMOP_CMD_MASK = 0x3f;

/**
 * The machine-frame pool as the Xen layer sees it: claim and give back frames (the hypervisor's FramePool,
 * src/hv/frame-pool.ts, satisfies it; the Xen layer does not import the hypervisor's).
 */
export interface FramePool {
  /** Takes n frames if that many are free (all or nothing). */
  claim(n: number): boolean;
  /** Gives n claimed frames back. */
  release(n: number): void;
}

/** Domain memory accounting the reservation sub-ops read and update. */
export interface MemoryAccount {
  domid: number;
  /** Pages the domain currently has (tot_pages) and may have (max_pages). */
  pages: number;
  maxPages: number;
  /** P2M of ordinary RAM: 1 byte per frame from the first RAM frame, 1 = populated. */
  populated: Uint8Array;
  /** The pool the domain's frames come from (null: unaccounted, e.g. unit tests). */
  pool: FramePool | null;
}

/** A fully populated account for `ramBytes` of RAM. */
export function newMemoryAccount(domid: number, ramBytes: number, pool: FramePool | null): MemoryAccount {
  const pages = Math.floor(ramBytes / XEN_PAGE_SIZE);
  return { domid, pages, maxPages: pages, populated: new Uint8Array(pages).fill(1), pool };
}

export function memoryOp(mem: GuestMemory, si: SharedInfo, gt: GrantTable, acct: MemoryAccount, cmd: number,
  lo: number, hi: number): number {
  const dv = mem.sv;
  const self = (dom: number): boolean => dom === DOMID_SELF || dom === acct.domid;
  switch (cmd & MEMOP_CMD_MASK) {
    case XENMEM_add_to_physmap: {
      mem.copyIn(lo, hi, 24);
      const dom = dv.getUint16(0, true), space = dv.getUint32(4, true), idx = u64(dv, 8), gpfn = u64(dv, 16);
      if (!self(dom)) return -ESRCH;
      switch (space) {
        case XENMAPSPACE_shared_info: return idx !== 0 ? -EINVAL : si.map(gpfn);
        case XENMAPSPACE_grant_table: return gt.mapFrame(idx, gpfn);
        case XENMAPSPACE_gmfn: case XENMAPSPACE_gmfn_range: case XENMAPSPACE_dev_mmio: return -EOPNOTSUPP;
        default: return -EINVAL;
      }
    }
    case XENMEM_remove_from_physmap: {
      mem.copyIn(lo, hi, 16);
      if (!self(dv.getUint16(0, true))) return -ESRCH;
      const gpfn = u64(dv, 8);
      if (mem.frameOffset(gpfn) < 0) return -EINVAL;
      if (gpfn === si.gfn) si.unmap();
      const k = gt.frameAt(gpfn);
      if (k >= 0) gt.unmapFrame(k);
      return 0;
    }
    case XENMEM_decrease_reservation: case XENMEM_populate_physmap: case XENMEM_increase_reservation: {
      // struct xen_memory_reservation: extent_start @0 (VA of xen_pfn_t[]), nr_extents @8, extent_order @16,
      // mem_flags @20, domid @24.
      mem.copyIn(lo, hi, 32);
      const elo = dv.getUint32(0, true), ehi = dv.getUint32(4, true), n = u64(dv, 8), order = dv.getUint32(16, true);
      if (!self(dv.getUint16(24, true))) return -ESRCH;
      if ((cmd & MEMOP_CMD_MASK) === XENMEM_increase_reservation) return 0; // not for auto-translated guests
      if (order > 9 || !Number.isFinite(n)) return -EINVAL;
      const pages = 2 ** order;
      const grow = (cmd & MEMOP_CMD_MASK) === XENMEM_populate_physmap;
      const base = mem.base / XEN_PAGE_SIZE;
      const p2m = acct.populated;
      let done = 0;
      for (; done < n; done++) {
        const gfn = mem.readU64At(elo, ehi, done);
        if (gfn % pages !== 0 || !mem.isRamFrame(gfn) || !mem.isRamFrame(gfn + pages - 1)) break;
        const first = gfn - base;
        let have = 0;
        for (let k = 0; k < pages; k++) have += p2m[first + k];
        if (!grow) {
          if (have !== pages) break; // giving back a frame it does not have
        } else {
          const need = pages - have;
          if (acct.pages + need > acct.maxPages) break;
          if (need > 0 && acct.pool !== null && !acct.pool.claim(need)) break;
          acct.pages += need;
        }
        const off = mem.frameOffset(gfn);
        mem.u8.fill(0, off, off + pages * XEN_PAGE_SIZE);
        p2m.fill(grow ? 1 : 0, first, first + pages);
        if (!grow) {
          acct.pages -= pages;
          acct.pool?.release(pages);
        }
      }
      return done;
    }
    case XENMEM_current_reservation: case XENMEM_maximum_reservation: {
      mem.copyIn(lo, hi, 2);
      if (!self(dv.getUint16(0, true))) return -ESRCH;
      return (cmd & MEMOP_CMD_MASK) === XENMEM_current_reservation ? acct.pages : acct.maxPages;
    }
    case XENMEM_maximum_ram_page: case XENMEM_maximum_gpfn:
      return Math.floor((mem.base + mem.bufferBytes) / XEN_PAGE_SIZE) - 1;
    default: return -ENOSYS;
  }
}
