/**
 * The hypervisor's view of a domain's memory, as Xen's copy_{from,to}_guest (xen/arch/arm/guestcopy.c):
 *  - guest-physical frames (gfn = IPA >> 12): a frame is valid when the whole 4 KiB page lies in the domain's
 *    RAM buffer (the DT memory node plus the hypervisor-reserved area above it, see layout.ts);
 *  - guest-virtual buffers (hypercall pointer arguments and guest handles inside structs): translated page by
 *    page through the *calling* vCPU's stage-1 tables (Mmu.probe with EL1 permissions, no TLB fill).
 *
 * Both respect the P2M (`stage2`, p2m.ts): a RAM frame the balloon gave back is not the guest's any more, so a
 * buffer in it faults (EFAULT) and it is not "RAM" for grants, shared_info or vcpu_info (isRamFrame).
 *
 * Every failure throws the GuestFault for EFAULT (or the errno given); the dispatcher turns it into the
 * hypercall's return value, so a bad guest pointer can never reach memory outside the buffer or throw through
 * the hypervisor. Struct copies go through a reused scratch page (no allocation per hypercall).
 */
import { ACC_READ, ACC_WRITE, type Mmu } from "../mmu/mmu.js";
import { EFAULT, XEN_PAGE_SIZE } from "./abi.js";

/** A guest-caused failure inside a hypercall: the dispatcher returns -errno. */
export class GuestFault {
  constructor(readonly errno: number) {}
}
/** The one EFAULT instance (thrown on the hot paths without allocating). */
export const EFAULT_FAULT = new GuestFault(EFAULT);

const TWO32 = 4294967296;

export class GuestMemory {
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  readonly dv: DataView;
  /** Scratch page for struct copies: `copyIn` fills it, handlers read/modify it, `copyOut` writes it back. */
  readonly scratch = new Uint8Array(XEN_PAGE_SIZE);
  readonly sv = new DataView(this.scratch.buffer);
  /** The calling vCPU's MMU (set by the dispatcher before each hypercall). */
  mmu: Mmu | null = null;
  /**
   * The dirty log of a live migration (a byte per buffer frame, shared with the vCPUs' MMUs: Mmu.dirty), or
   * null. Host-side writes into guest pages mark it: copies to the guest here, grants a back-end uses for
   * writing (grant-table.ts). Writes Xen makes in place (shared_info, vcpu_info, grant entries, the rings of the
   * Xen area) are not marked one by one: a live migration sends those pages again at the end (XenDomain.hostPages).
   */
  dirty: Uint8Array | null = null;

  /**
   * The host wrote buffer range [off, off+len) of guest RAM (a copy to the guest, a grant a back-end wrote
   * through: DMA, as the guest sees it). Marks the frames dirty when logging (see `dirty`), and drops the decoded
   * and compiled instructions of any that hold code, on every MMU of the domain (`mmu.peers`), as a guest store
   * there would: code the guest loads by DMA runs as loaded even without cache maintenance, as under QEMU.
   */
  markDirty(off: number, len: number): void {
    if (len <= 0) return;
    const first = off >>> 12, last = (off + len - 1) >>> 12;
    const d = this.dirty;
    if (d !== null) for (let p = first; p <= last; p++) d[p] = 1;
    const m = this.mmu;
    if (m === null) return;
    const code = m.codePage, at = this.mmuPageOffset;
    for (let p = first + at; p <= last + at; p++) {
      if (p < code.length && code[p] !== 0) for (const peer of m.peers) peer.onCodeWrite(p);
    }
  }

  /**
   * A lazy restore's loader (src/hv/lazy-ram.ts): some pages of the buffer hold their saved bytes only once
   * loaded. Every host path that names a guest frame resolves it through frameOffset or physOffset (vaOffset,
   * so copyIn/copyOut; grant entries and granted pages; shared_info, vcpu_info; the balloon's loadFrames), and
   * those load the page first, before its offset leaves this object. Null: every page is in place.
   */
  lazy: PageLoader | null = null;

  /** Loads frames gfn..gfn+n-1 of a lazy restore (those inside the buffer) before the caller rewrites them. */
  loadFrames(gfn: number, n: number): void {
    if (this.lazy === null) return;
    for (let k = 0; k < n; k++) this.frameOffset(gfn + k);
  }

  /** The domain's stage-2 map (P2m.map: a byte per buffer frame, 0 = not mapped); null = all mapped. */
  stage2: Uint8Array | null = null;

  /**
   * `ram`: the buffer whose first `bufferBytes` (default: all of it) are the domain's RAM at guest-physical
   * `base`; `ramBytes`: the part of it the DT memory node describes (guest-allocatable RAM); the rest (up to
   * bufferBytes) is the hypervisor-reserved area. Nothing past bufferBytes is reachable through this object.
   * `byteOffset`: where that RAM starts in `ram` (a firmware board keeps its flash before RAM in the same
   * buffer, src/machine/firmware.ts: the flash is not RAM, so it is outside this view and no guest-named frame
   * reaches it); the MMUs number pages from the buffer's start, so their page numbers are this view's plus
   * byteOffset / 4096 (mmuPageOffset).
   */
  constructor(readonly ram: ArrayBufferLike, readonly base: number, readonly ramBytes: number, bufferBytes = ram.byteLength, byteOffset = 0) {
    this.u8 = new Uint8Array(ram, byteOffset, bufferBytes);
    this.i32 = new Int32Array(ram, byteOffset, bufferBytes >>> 2);
    this.dv = new DataView(ram, byteOffset, bufferBytes);
    this.mmuPageOffset = byteOffset / XEN_PAGE_SIZE;
  }

  /** The MMUs' page number of this view's page 0 (constructor `byteOffset` / 4096). */
  readonly mmuPageOffset: number;

  get bufferBytes(): number { return this.u8.length; }

  /** Byte offset in the buffer of guest frame `gfn` when the whole frame is inside it, else -1. */
  frameOffset(gfn: number): number {
    if (!Number.isSafeInteger(gfn) || gfn < 0) return -1;
    const off = gfn * XEN_PAGE_SIZE - this.base;
    if (off < 0 || off + XEN_PAGE_SIZE > this.u8.length) return -1;
    if (this.lazy !== null) this.lazy.ensure(off / XEN_PAGE_SIZE);
    return off;
  }

  /** True if `gfn` is ordinary guest RAM (inside the DT memory node) and mapped in the P2M. */
  isRamFrame(gfn: number): boolean {
    const off = this.frameOffset(gfn);
    return off >= 0 && off + XEN_PAGE_SIZE <= this.ramBytes && (this.stage2 === null || this.stage2[off >>> 12] !== 0);
  }

  /** Buffer offset of the guest-physical range [gpa, gpa+len), or -1 if any of it is outside the buffer. */
  physOffset(gpa: number, len: number): number {
    const off = gpa - this.base;
    if (!(Number.isSafeInteger(off) && off >= 0 && len >= 0 && off + len <= this.u8.length)) return -1;
    if (this.lazy !== null) this.lazy.ensureRange(off, Math.max(len, 1));
    return off;
  }

  /**
   * Buffer offset of guest VA (lo, hi) for an access of `len` bytes that must not cross a page; throws EFAULT
   * when it does not translate (with EL1 read or write permission) or lands outside the buffer.
   */
  vaOffset(lo: number, hi: number, len: number, write: boolean): number {
    const m = this.mmu;
    if (m === null) throw EFAULT_FAULT;
    const pa = m.probe(lo | 0, hi | 0, write ? ACC_WRITE : ACC_READ, false);
    if (pa < 0) throw EFAULT_FAULT;
    const off = this.physOffset(pa, len);
    if (off < 0) throw EFAULT_FAULT;
    // Stage 2: the range lies in one frame (callers split at page boundaries); it must be mapped.
    if (this.stage2 !== null && this.stage2[off >>> 12] === 0) throw EFAULT_FAULT;
    return off;
  }

  /** Copies `len` bytes (<= 4096) from guest VA (lo, hi) into `dst` (default: the scratch page). */
  copyIn(lo: number, hi: number, len: number, dst: Uint8Array = this.scratch): void {
    this.copy(lo, hi, len, dst, false);
  }

  /** Copies `len` bytes of `src` (default: the scratch page) to guest VA (lo, hi). */
  copyOut(lo: number, hi: number, len: number, src: Uint8Array = this.scratch): void {
    this.copy(lo, hi, len, src, true);
  }

  private copy(lo: number, hi: number, len: number, buf: Uint8Array, write: boolean): void {
    if (len > buf.length) throw EFAULT_FAULT;
    let done = 0;
    lo >>>= 0; hi >>>= 0;
    while (done < len) {
      const chunk = Math.min(len - done, XEN_PAGE_SIZE - (lo & 0xfff));
      const off = this.vaOffset(lo, hi, chunk, write);
      if (write) { this.u8.set(buf.subarray(done, done + chunk), off); this.markDirty(off, chunk); }
      else buf.set(this.u8.subarray(off, off + chunk), done);
      done += chunk;
      lo += chunk;
      if (lo >= TWO32) { lo -= TWO32; hi = (hi + 1) >>> 0; }
    }
  }

  /** Reads a u64 at guest VA (lo, hi) + index*8 (for arrays of xen_pfn_t); returns a number (exact below 2^53). */
  readU64At(lo: number, hi: number, index: number): number {
    const [l, h] = addVa(lo, hi, index * 8);
    this.copyIn(l, h, 8, this.small);
    return this.smallView.getUint32(4, true) * TWO32 + this.smallView.getUint32(0, true);
  }

  /** Writes a u64 (given as a number below 2^53, or -1 for all-ones) at guest VA (lo, hi) + index*8. */
  writeU64At(lo: number, hi: number, index: number, v: number): void {
    const [l, h] = addVa(lo, hi, index * 8);
    if (v < 0) { this.smallView.setInt32(0, -1, true); this.smallView.setInt32(4, -1, true); }
    else { this.smallView.setUint32(0, v >>> 0, true); this.smallView.setUint32(4, Math.floor(v / TWO32), true); }
    this.copyOut(l, h, 8, this.small);
  }

  private readonly small = new Uint8Array(8);
  private readonly smallView = new DataView(this.small.buffer);
}

/**
 * Loads pages of a lazily restored domain memory on first touch (src/hv/lazy-ram.ts LazyRam). Page numbers
 * are the buffer's (byte offset / 4096). ensure may throw (the page's saved bytes no longer check): the
 * access that needed it must not go on.
 */
export interface PageLoader {
  ensure(page: number): void;
  ensureRange(off: number, len: number): void;
}

/** A 64-bit VA (lo, hi as unsigned 32-bit halves) plus a non-negative byte count, with carry. */
export function addVa(lo: number, hi: number, n: number): [number, number] {
  const s = (lo >>> 0) + n;
  return [s % TWO32, ((hi >>> 0) + Math.floor(s / TWO32)) >>> 0];
}

/** Reads a u64 field of a scratch struct as a number; values >= 2^53 come back as Infinity (always invalid). */
export function u64(dv: DataView, off: number): number {
  const hi = dv.getUint32(off + 4, true);
  return hi >= 0x200000 ? Infinity : hi * TWO32 + dv.getUint32(off, true);
}

/** Writes a u64 field (number below 2^53; negative writes all-ones, e.g. INVALID_GFN / ~0). */
export function setU64(dv: DataView, off: number, v: number): void {
  if (v < 0) { dv.setInt32(off, -1, true); dv.setInt32(off + 4, -1, true); return; }
  dv.setUint32(off, v >>> 0, true);
  dv.setUint32(off + 4, Math.floor(v / TWO32), true);
}
