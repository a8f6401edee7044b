/**
 * A user process's address space as a small kernel would keep it: VMAs (what may be mapped), a physical page
 * allocator over the RAM buffer, and real VMSAv8-64 stage-1 page tables (4K granule, 4 levels, 48-bit VA) that
 * the CPU's MMU walks. Pages are populated on demand from translation faults, like Linux does.
 *
 * VAs are JS numbers (user space is below 2^47, exact as doubles); vpn = va / 4096.
 */
import type { Mmu } from "../mmu/mmu.js";

export const PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;
export const PAGE = 4096;
export const USER_TOP = 2 ** 47;

export interface Vma { start: number; end: number; prot: number; name: string; }

/** Stage-1 descriptor bits (Arm ARM D5.3): valid|page, AttrIndx 0, SH inner, AF, nG; AP[2:1]; UXN/PXN (hi). */
const D_PAGE = 3, D_TABLE = 3, D_SH_INNER = 3 << 8, D_AF = 1 << 10, D_NG = 1 << 11;
const AP_RW_EL0 = 1 << 6, AP_RO_ALL = 3 << 6;
const HI_PXN = 1 << 21, HI_UXN = 1 << 22;

export class OutOfMemory extends Error {
  readonly code = "XENO_USER_OOM";
  constructor() { super("user-mode runner: guest RAM exhausted (raise it with --mem MiB)"); }
}

export class AddressSpace {
  readonly vmas: Vma[] = []; // sorted by start, non-overlapping
  private readonly free: number[] = [];
  private nextPage = 1; // page 0 is never handed out
  private readonly pages = new Map<number, number>(); // vpn -> ppn (RAM page index)
  readonly root: number; // RAM page of the level-0 table
  private readonly dv: DataView;
  private readonly u8: Uint8Array;
  private readonly totalPages: number;

  constructor(private readonly mmu: Mmu) {
    this.dv = mmu.dv;
    this.u8 = mmu.u8;
    this.totalPages = mmu.ramSize / PAGE;
    this.root = this.allocPage();
  }

  /** Physical address of the level-0 table (for TTBR0). */
  get rootPa(): number { return this.mmu.ramBase + this.root * PAGE; }

  allocPage(): number {
    let p = this.free.pop();
    if (p === undefined) {
      if (this.nextPage >= this.totalPages) throw new OutOfMemory();
      // Never handed out before: still zero as the process's new WebAssembly.Memory came (UserProcess makes one
      // per address space; nothing writes RAM outside pages handed out here). Clearing it again only made the
      // host commit the page early: ~9 ms of `busybox true`'s start-up.
      return this.nextPage++;
    }
    // A reused page is cleared here, and decoded code cached for it is dropped.
    this.u8.fill(0, p * PAGE, (p + 1) * PAGE);
    if (this.mmu.codePage[p]) this.mmu.onCodeWrite(p);
    return p;
  }

  // -----------------------------------------------------------------------------------------------------------
  // VMAs

  findVma(va: number): Vma | undefined {
    for (const v of this.vmas) if (va >= v.start && va < v.end) return v;
    return undefined;
  }

  /** Adds a VMA (page-aligned), first removing whatever overlaps it. */
  addVma(start: number, end: number, prot: number, name: string): void {
    this.unmap(start, end);
    const v: Vma = { start, end, prot, name };
    let k = 0;
    while (k < this.vmas.length && this.vmas[k].start < start) k++;
    this.vmas.splice(k, 0, v);
  }

  /** Removes [start, end) from the VMAs and frees its pages. */
  unmap(start: number, end: number): void {
    const out: Vma[] = [];
    for (const v of this.vmas) {
      if (v.end <= start || v.start >= end) { out.push(v); continue; }
      if (v.start < start) out.push({ ...v, end: start });
      if (v.end > end) out.push({ ...v, start: end });
    }
    this.vmas.length = 0;
    this.vmas.push(...out);
    for (let vpn = start / PAGE; vpn < end / PAGE; vpn++) {
      const p = this.pages.get(vpn);
      if (p === undefined) continue;
      this.pages.delete(vpn);
      this.setPte(vpn, 0, 0);
      this.free.push(p);
    }
    this.mmu.flushAll();
  }

  /** Changes protection of [start, end) (VMAs split as needed; present pages re-described). */
  protect(start: number, end: number, prot: number): boolean {
    for (let a = start; a < end; a += PAGE) if (this.findVma(a) === undefined) return false;
    const out: Vma[] = [];
    for (const v of this.vmas) {
      if (v.end <= start || v.start >= end) { out.push(v); continue; }
      if (v.start < start) out.push({ ...v, end: start });
      out.push({ ...v, start: Math.max(v.start, start), end: Math.min(v.end, end), prot });
      if (v.end > end) out.push({ ...v, start: end });
    }
    this.vmas.length = 0;
    this.vmas.push(...out);
    for (let vpn = start / PAGE; vpn < end / PAGE; vpn++) {
      const p = this.pages.get(vpn);
      if (p !== undefined) this.writePte(vpn, p, prot);
    }
    this.mmu.flushAll();
    return true;
  }

  /** Finds a free, page-aligned range of `len` bytes, searching down from `below`. */
  findFree(len: number, below: number): number {
    let top = below;
    for (let k = this.vmas.length - 1; k >= 0; k--) {
      const v = this.vmas[k];
      if (v.start >= top) continue;
      if (v.end <= top - len) return top - len;
      top = v.start;
    }
    return top - len >= 0x10000 ? top - len : -1;
  }

  // -----------------------------------------------------------------------------------------------------------
  // Pages

  /** The RAM page backing vpn, populating it when the VMA allows; -1 when not mappable. */
  pageFor(vpn: number): number {
    const p = this.pages.get(vpn);
    if (p !== undefined) return p;
    const v = this.findVma(vpn * PAGE);
    if (v === undefined) return -1;
    const np = this.allocPage();
    this.pages.set(vpn, np);
    this.writePte(vpn, np, v.prot);
    return np;
  }

  /** Moves the pages of [from, from+len) to [to, to+len) (mremap). */
  movePages(from: number, to: number, len: number): void {
    for (let k = 0; k < len / PAGE; k++) {
      const p = this.pages.get(from / PAGE + k);
      if (p === undefined) continue;
      this.pages.delete(from / PAGE + k);
      this.setPte(from / PAGE + k, 0, 0);
      const v = this.findVma(to + k * PAGE);
      this.pages.set(to / PAGE + k, p);
      this.writePte(to / PAGE + k, p, v ? v.prot : PROT_READ | PROT_WRITE);
    }
    this.mmu.flushAll();
  }

  private writePte(vpn: number, ppn: number, prot: number): void {
    if ((prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) === 0) { this.setPte(vpn, 0, 0); return; }
    const pa = this.mmu.ramBase + ppn * PAGE;
    const lo = ((pa % 2 ** 32) | D_PAGE | D_SH_INNER | D_AF | D_NG | ((prot & PROT_WRITE) ? AP_RW_EL0 : AP_RO_ALL)) | 0;
    const hi = (Math.floor(pa / 2 ** 32) | HI_PXN | ((prot & PROT_EXEC) ? 0 : HI_UXN)) | 0;
    this.setPte(vpn, lo, hi);
  }

  /** Writes the level-3 descriptor for vpn, creating intermediate tables. */
  private setPte(vpn: number, lo: number, hi: number): void {
    let table = this.root;
    for (let level = 0; level < 3; level++) {
      const idx = Math.floor(vpn / 2 ** (9 * (3 - level))) % 512;
      const o = table * PAGE + idx * 8;
      let d = this.dv.getInt32(o, true);
      if ((d & 1) === 0) {
        if (lo === 0 && hi === 0) return; // nothing to clear
        const t = this.allocPage();
        const tpa = this.mmu.ramBase + t * PAGE;
        this.dv.setInt32(o, ((tpa % 2 ** 32) | D_TABLE) | 0, true);
        this.dv.setInt32(o + 4, Math.floor(tpa / 2 ** 32), true);
        d = this.dv.getInt32(o, true);
      }
      const dhi = this.dv.getInt32(o + 4, true);
      table = ((dhi & 0xffff) * 2 ** 32 + ((d & -4096) >>> 0) - this.mmu.ramBase) / PAGE;
    }
    const o = table * PAGE + (vpn % 512) * 8;
    this.dv.setInt32(o, lo, true);
    this.dv.setInt32(o + 4, hi, true);
  }

  // -----------------------------------------------------------------------------------------------------------
  // Kernel-side copies (syscalls): return false on a bad user address (EFAULT).

  copyIn(va: number, len: number, out: Uint8Array, outOff = 0): boolean {
    let done = 0;
    while (done < len) {
      const a = va + done;
      const p = this.pageFor(Math.floor(a / PAGE));
      if (p < 0 || a >= USER_TOP) return false;
      const o = a % PAGE;
      const n = Math.min(PAGE - o, len - done);
      out.set(this.u8.subarray(p * PAGE + o, p * PAGE + o + n), outOff + done);
      done += n;
    }
    return true;
  }

  copyOut(va: number, data: Uint8Array): boolean {
    let done = 0;
    while (done < data.length) {
      const a = va + done;
      const p = this.pageFor(Math.floor(a / PAGE));
      if (p < 0 || a >= USER_TOP) return false;
      const o = a % PAGE;
      const n = Math.min(PAGE - o, data.length - done);
      if (this.mmu.codePage[p]) this.mmu.onCodeWrite(p);
      this.u8.set(data.subarray(done, done + n), p * PAGE + o);
      done += n;
    }
    return true;
  }

  /** Reads a NUL-terminated string (at most `max` bytes); null on a bad address or no terminator. */
  readCString(va: number, max = 4096): string | null {
    const bytes: number[] = [];
    for (let k = 0; k < max; k++) {
      const a = va + k;
      const p = this.pageFor(Math.floor(a / PAGE));
      if (p < 0) return null;
      const b = this.u8[p * PAGE + (a % PAGE)];
      if (b === 0) return Buffer.from(bytes).toString("utf8");
      bytes.push(b);
    }
    return null;
  }
}
