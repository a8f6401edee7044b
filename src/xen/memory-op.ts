/**
 * HYPERVISOR_memory_op(cmd, arg) (xen/common/memory.c; public/memory.h). The low 6 bits of cmd are the
 * sub-op (MEMOP_CMD_MASK); the rest is the start extent of a continuation (MEMOP_EXTENT_SHIFT), which Xeno never
 * creates (a batch runs to its end) but honours as Xen does when a guest passes one.
 *
 * The balloon's sub-ops move frames between the domain's P2M (p2m.ts) and the hypervisor's frame account:
 * decrease_reservation unmaps, zeroes and gives back; populate_physmap claims, zeroes and maps. Their return
 * value is the number of extents done, and everything wrong with a request stops the batch there or returns
 * the start extent, exactly where Xen's do_memory_op / decrease_reservation / populate_physmap do:
 *  - the xen_memory_reservation struct unreadable, nr_extents too large to encode a continuation, start extent
 *    >= nr_extents, another domain named, or extent_order > 9 (CONFIG_DOMU_MAX_ORDER on Arm): the start extent;
 *  - an extent-list entry unreadable, a frame outside RAM, a frame already given back (decrease), the domain at
 *    max_pages or the pool empty (populate), XENMEMF_populate_on_demand on oneself: stop, extents done so far.
 * Xeno is stricter than Xen in three places, each refused the same way (stop the batch), never silently done:
 * an extent is all or nothing (Xen removes the pages before the bad one); populating a frame that is mapped
 * (Xen replaces it, leaking the old page into tot_pages); giving back a frame that holds the hypervisor's
 * shared_info, a vcpu_info or a grant frame (Xen unmaps it and keeps the page; in Xeno that page *is* the
 * frame, see shared-info.ts).
 * XENMEM_increase_reservation allocates frames without mapping them for an auto-translated guest (Xen's
 * increase_reservation skips the write-back); Xeno declines it (0 extents), and Linux never uses it on Arm.
 *
 * XENMEM_add_to_physmap_batch (Linux: XENMEM_add_to_physmap_range) is what Linux's privcmd driver issues to map
 * another domain's frames (XENMAPSPACE_gmfn_foreign) into frames the balloon gave back (drivers/xen/xlate_mmu.c).
 * As in Xen (xenmem_add_to_physmap_batch), each entry's result goes to errs[] and the call itself returns 0: a
 * DomU is never privileged for another domain, so every foreign entry fails (-EPERM, Xen's XSM answer for a
 * domain that exists; Xeno does not tell a DomU which domains exist, where Xen returns -ESRCH for one that does
 * not). Linux then still points the user's PTE at the given-back frame ("userspace may decide to continue");
 * a touch of it takes the stage-2 abort (stage2-abort.ts) — the frame stays unmapped, zero and in the pool.
 */
import { DOMID_SELF, EACCES, EDOM, EILSEQ, EINVAL, ENOSYS, EOPNOTSUPP, EPERM, ESRCH, XEN_PAGE_SIZE } from "./abi.js";
import { addVa, GuestFault, u64, type GuestMemory } from "./guest-memory.js";
import type { GrantTable } from "./grant-table.js";
import type { SharedInfo } from "./shared-info.js";
import { P2M_OK, type P2m } from "./p2m.js";
import type { Mmu } from "../mmu/mmu.js";

export const XENMEM_increase_reservation = 0, XENMEM_decrease_reservation = 1, XENMEM_maximum_ram_page = 2,
  XENMEM_current_reservation = 3, XENMEM_maximum_reservation = 4, XENMEM_populate_physmap = 6,
  XENMEM_add_to_physmap = 7, XENMEM_memory_map = 9, XENMEM_exchange = 11, XENMEM_maximum_gpfn = 14,
  XENMEM_remove_from_physmap = 15, XENMEM_add_to_physmap_batch = 23;
export const XENMAPSPACE_shared_info = 0, XENMAPSPACE_grant_table = 1, XENMAPSPACE_gmfn = 2,
  XENMAPSPACE_gmfn_range = 3, XENMAPSPACE_gmfn_foreign = 4, XENMAPSPACE_dev_mmio = 5;
const MEMOP_CMD_MASK = 0x3f, MEMOP_EXTENT_SHIFT = 6;
/** xen/arch/arm/include/asm/config.h CONFIG_DOMU_MAX_ORDER: the largest extent a DomU may name. */
export const DOMU_MAX_ORDER = 9;
/** public/memory.h XENMEMF_populate_on_demand (mem_flags bit 16). */
const XENMEMF_populate_on_demand = 1 << 16;
/** Scratch: no MMUs (a hypercall always has a caller; tests may call without one). */
const NO_MMUS: readonly Mmu[] = [];

/** Serves memory_op `cmd` (arg at guest VA lo, hi) for domain `domid`, whose P2M is `p2m`. */
export function memoryOp(mem: GuestMemory, si: SharedInfo, gt: GrantTable, p2m: P2m, domid: number, cmd: number,
  lo: number, hi: number): number {
  const dv = mem.sv;
  const self = (dom: number): boolean => dom === DOMID_SELF || dom === domid;
  switch (cmd & MEMOP_CMD_MASK) {
    case XENMEM_add_to_physmap: {
      mem.copyIn(lo, hi, 24);
      const dom = dv.getUint16(0, true), space = dv.getUint32(4, true), idx = u64(dv, 8), gpfn = u64(dv, 16);
      if (!self(dom)) return -ESRCH;
      // Xen: "Foreign mapping is only possible via add_to_physmap_batch".
      if (space === XENMAPSPACE_gmfn_foreign) return -ENOSYS;
      return addToPhysmapOne(si, gt, p2m, space, idx, gpfn);
    }
    case XENMEM_add_to_physmap_batch:
      return addToPhysmapBatch(mem, si, gt, p2m, self, Math.floor(cmd / 2 ** MEMOP_EXTENT_SHIFT), lo, hi);
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
    case XENMEM_decrease_reservation: case XENMEM_populate_physmap: case XENMEM_increase_reservation:
      return reservation(mem, si, gt, p2m, domid, cmd, lo, hi);
    case XENMEM_current_reservation: case XENMEM_maximum_reservation: {
      mem.copyIn(lo, hi, 2);
      if (!self(dv.getUint16(0, true))) return -ESRCH;
      return (cmd & MEMOP_CMD_MASK) === XENMEM_current_reservation ? p2m.pages : p2m.maxPages;
    }
    case XENMEM_maximum_ram_page: case XENMEM_maximum_gpfn:
      return Math.floor((mem.base + mem.bufferBytes) / XEN_PAGE_SIZE) - 1;
    default: return -ENOSYS;
  }
}

/** One mapping of add_to_physmap(_batch), not a foreign one: shared_info or a grant frame at `gpfn`. */
function addToPhysmapOne(si: SharedInfo, gt: GrantTable, p2m: P2m, space: number, idx: number, gpfn: number): number {
  // The frame must be mapped: in Xeno the page it receives is the frame itself (shared-info.ts), and a
  // frame the balloon gave back must stay unmapped and zero.
  if (p2m.isRam(gpfn) && !p2m.isMapped(gpfn)) return -EINVAL;
  switch (space) {
    case XENMAPSPACE_shared_info: return idx !== 0 ? -EINVAL : si.map(gpfn);
    case XENMAPSPACE_grant_table: return gt.mapFrame(idx, gpfn);
    case XENMAPSPACE_gmfn: case XENMAPSPACE_gmfn_range: case XENMAPSPACE_dev_mmio: return -EOPNOTSUPP;
    default: return -EINVAL;
  }
}

/** Scratch for one errs[] entry (no allocation per entry). */
const errBuf = new Uint8Array(4);
const errView = new DataView(errBuf.buffer);

/**
 * XENMEM_add_to_physmap_batch, as xen/common/memory.c do_memory_op + xenmem_add_to_physmap_batch. struct
 * xen_add_to_physmap_batch (arm64): domid u16 @0, space u16 @2, size u16 @4, u.foreign_domid u16 @6, idxs @8,
 * gpfns @16, errs @24 (guest handles: VAs of xen_ulong_t[], xen_pfn_t[], int[]). Whole-call refusals come first
 * (struct unreadable -EFAULT, another domain -ESRCH as add_to_physmap here, gmfn_range -EOPNOTSUPP, dev_mmio
 * -EACCES: not the hardware domain, a start extent past size -EILSEQ); then each entry is mapped on its own and
 * its result written to errs[k]; an unreadable idxs/gpfns entry or unwritable errs entry stops with -EFAULT.
 * Returns 0 when every entry has a result, whatever the results (Linux relies on that, see the file comment).
 */
function addToPhysmapBatch(mem: GuestMemory, si: SharedInfo, gt: GrantTable, p2m: P2m, self: (dom: number) => boolean,
  start: number, lo: number, hi: number): number {
  if (start > 0xffff) return -EDOM;
  const dv = mem.sv;
  mem.copyIn(lo, hi, 32);
  const dom = dv.getUint16(0, true), space = dv.getUint16(2, true), size = dv.getUint16(4, true);
  const foreign = dv.getUint16(6, true);
  const ilo = dv.getUint32(8, true), ihi = dv.getUint32(12, true), glo = dv.getUint32(16, true), ghi = dv.getUint32(20, true);
  const elo = dv.getUint32(24, true), ehi = dv.getUint32(28, true);
  if (space === XENMAPSPACE_gmfn_range) return -EOPNOTSUPP;
  if (!self(dom)) return -ESRCH;
  if (space === XENMAPSPACE_dev_mmio) return -EACCES;
  if (size < start) return -EILSEQ;
  if (size === start) return start !== 0 ? -EILSEQ : 0;
  for (let k = start; k < size; k++) {
    const idx = mem.readU64At(ilo, ihi, k); // GuestFault (EFAULT) ends the call, as Xen's copy failures
    const gpfn = mem.readU64At(glo, ghi, k);
    let rc: number;
    if (space === XENMAPSPACE_gmfn_foreign) {
      // Xen's get_pg_owner + xsm_map_gmfn_foreign: oneself by DOMID_SELF is -EINVAL, by number -ESRCH; any other
      // domain: a DomU has no rights over it. The gpfn is never looked at (it is usually a given-back frame).
      rc = foreign === DOMID_SELF ? -EINVAL : self(foreign) ? -ESRCH : -EPERM;
    } else {
      rc = addToPhysmapOne(si, gt, p2m, space, idx, gpfn);
    }
    errView.setInt32(0, rc, true);
    const [l, h] = addVa(elo, ehi, k * 4);
    mem.copyOut(l, h, 4, errBuf);
  }
  return 0;
}

/**
 * increase_reservation / decrease_reservation / populate_physmap. struct xen_memory_reservation (arm64):
 * extent_start @0 (guest handle: VA of xen_pfn_t[]), nr_extents @8, extent_order @16, mem_flags @20, domid @24.
 */
function reservation(mem: GuestMemory, si: SharedInfo, gt: GrantTable, p2m: P2m, domid: number, cmd: number,
  lo: number, hi: number): number {
  const op = cmd & MEMOP_CMD_MASK;
  const start = Math.floor(cmd / 2 ** MEMOP_EXTENT_SHIFT);
  const dv = mem.sv;
  try {
    mem.copyIn(lo, hi, 32);
  } catch (e) {
    if (e instanceof GuestFault) return start;
    throw e;
  }
  const elo = dv.getUint32(0, true), ehi = dv.getUint32(4, true), n = u64(dv, 8), order = dv.getUint32(16, true);
  const flags = dv.getUint32(20, true), dom = dv.getUint16(24, true);
  if (!(n <= 0xffffffff >>> MEMOP_EXTENT_SHIFT) || start >= n) return start;
  if (dom !== DOMID_SELF && dom !== domid) return start; // XSM: a DomU may not adjust another domain
  if (order > DOMU_MAX_ORDER) return start;
  if (op === XENMEM_increase_reservation) return start;
  if (op === XENMEM_populate_physmap && (flags & XENMEMF_populate_on_demand) !== 0) return start;
  const pages = 2 ** order;
  const mmus = mem.mmu?.peers ?? NO_MMUS;
  let done = start, released = false;
  try {
    for (; done < n; done++) {
      let gfn: number;
      try {
        gfn = mem.readU64At(elo, ehi, done);
      } catch (e) {
        if (e instanceof GuestFault) break;
        throw e;
      }
      // A lazy restore's frames get their saved bytes first: the release and populate below zero them, and a
      // load after that would put the old bytes back over the zeroes (src/hv/lazy-ram.ts).
      mem.loadFrames(gfn, pages);
      if (op === XENMEM_decrease_reservation) {
        if (holdsHypervisorPage(si, gt, p2m, gfn, pages)) break;
        if (p2m.release(gfn, pages, mmus) !== P2M_OK) break;
        released = true;
      } else if (p2m.populate(gfn, pages) !== P2M_OK) break;
    }
  } finally {
    // Before the guest runs again: no vCPU may keep a translation to a frame given back.
    if (released) p2m.flushTlbs(mmus);
  }
  return done;
}

/** True if a frame in gfn..gfn+n-1 holds shared_info, a registered vcpu_info or a grant frame. */
function holdsHypervisorPage(si: SharedInfo, gt: GrantTable, p2m: P2m, gfn: number, n: number): boolean {
  if (!p2m.isRam(gfn, n)) return false; // release() refuses it anyway
  if (within(si.gfn, gfn, n)) return true;
  for (const gpa of si.viGpa) if (gpa >= 0 && within(Math.floor(gpa / XEN_PAGE_SIZE), gfn, n)) return true;
  for (let k = 0; k < gt.maxFrames; k++) if (within(gt.frameGfn[k], gfn, n)) return true;
  return false;
}

const within = (g: number, gfn: number, n: number): boolean => g >= gfn && g < gfn + n;
