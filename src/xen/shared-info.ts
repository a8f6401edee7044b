/**
 * The shared_info page and the per-vCPU vcpu_info areas (xen/include/public/xen.h), with the atomic bit
 * operations of the 2-level event ABI (xen/common/event_2l.c) on them.
 *
 * Model: Xen keeps shared_info in its own memory and maps it over the guest frame the guest names in
 * XENMEM_add_to_physmap. Xeno's guest memory is one buffer, so the mapped page *is* that guest frame: at map
 * time the hypervisor's current contents (kept in a private shadow page until then) are copied over the frame
 * and from then on both sides read and write it there. vcpu_info likewise: vCPU 0 uses shared_info slot 0 until
 * it registers its own area; other vCPUs have a private dummy (events to them are lost until they register, as
 * in Xen, whose registration then marks everything pending).
 *
 * Atomicity: guest vCPUs of a domain run in one thread between these calls, but the guest updates the same
 * words with LDXR/STXR (compare-and-swap against the loaded value in this emulator) or LSE atomics, so every
 * read-modify-write here uses Atomics on the shared buffer: a guest exclusive pair that straddles a hypervisor
 * update fails its store and retries.
 */
import { SI_EVTCHN_MASK, SI_EVTCHN_PENDING, SI_WC_NSEC, SI_WC_SEC, SI_WC_SEC_HI, SI_WC_VERSION, VCPU_INFO_SIZE,
  VI_PENDING_SEL, VI_UPCALL_PENDING, XEN_PAGE_SIZE, EINVAL } from "./abi.js";
import type { GuestMemory } from "./guest-memory.js";
import { StateError, stateArray, stateBytes, stateInt, stateVersion } from "../common/state.js";

/** Bytes of each unregistered secondary vCPU's private dummy vcpu_info. */
const DUMMY_VI_BYTES = 64;

/**
 * Saved hypervisor-side state of shared_info and the vcpu_info registrations. Pages that live in guest RAM
 * (a mapped shared_info, registered vcpu_info areas: pending/mask bits, selectors, upcall flags, wallclock)
 * are saved with RAM, not here; what is here is where they are and what has no guest frame.
 */
export interface SharedInfoState {
  version: 1;
  vcpus: number;
  /** Guest frame shared_info is mapped at, or -1 (then `shadow` holds the page). */
  gfn: number;
  /** The hypervisor's own copy of the page while it is not mapped (4096 bytes), else an empty array. */
  shadow: Uint8Array;
  /** Per vCPU: guest-physical address of its registered vcpu_info, or -1. */
  vcpuInfo: number[];
  /** Per vCPU, 64 bytes each: the private dummy vcpu_info of a secondary vCPU not registered yet (else zero). */
  dummies: Uint8Array;
}

export class SharedInfo {
  /** Where shared_info lives now: the shadow page, or the guest frame `gfn` (>= 0). */
  gfn = -1;
  private u8: Uint8Array;
  private i32: Int32Array;
  private base = 0;
  private readonly shadowU8: Uint8Array;
  private readonly shadowI32: Int32Array;

  /** Per vCPU: buffer views and byte offset of its vcpu_info, and the registered guest address (or -1). */
  private readonly viU8: Uint8Array[] = [];
  private readonly viI32: Int32Array[] = [];
  private readonly viOff: number[] = [];
  readonly viGpa: number[] = [];

  constructor(private readonly mem: GuestMemory, readonly vcpus: number) {
    const shadow = new SharedArrayBuffer(XEN_PAGE_SIZE);
    this.shadowU8 = new Uint8Array(shadow);
    this.shadowI32 = new Int32Array(shadow);
    this.u8 = this.shadowU8;
    this.i32 = this.shadowI32;
    for (let v = 0; v < vcpus; v++) {
      if (v === 0) { this.viU8.push(this.u8); this.viI32.push(this.i32); this.viOff.push(0); }
      else {
        const dummy = new SharedArrayBuffer(DUMMY_VI_BYTES);
        this.viU8.push(new Uint8Array(dummy)); this.viI32.push(new Int32Array(dummy)); this.viOff.push(0);
      }
      this.viGpa.push(-1);
    }
  }

  /**
   * Sets the wallclock (shared_info wc_*): wall-clock time at which the guest's virtual counter read 0
   * (xen/common/time.c update_domain_wallclock_time; Arm CNTVOFF = domain creation). Seqlock-style version.
   */
  setWallclock(sec: number, nsec: number): void {
    const dv = new DataView(this.u8.buffer, this.u8.byteOffset);
    const b = this.base;
    const ver = dv.getUint32(b + SI_WC_VERSION, true);
    dv.setUint32(b + SI_WC_VERSION, (ver + 1) | 1, true);
    dv.setUint32(b + SI_WC_SEC, sec >>> 0, true);
    dv.setUint32(b + SI_WC_NSEC, nsec >>> 0, true);
    dv.setUint32(b + SI_WC_SEC_HI, Math.floor(sec / 4294967296) >>> 0, true);
    dv.setUint32(b + SI_WC_VERSION, ((ver + 1) | 1) + 1, true);
  }

  /** XENMAPSPACE_shared_info: maps the page at guest frame `gfn` (ordinary RAM). Returns 0 or -errno. */
  map(gfn: number): number {
    const off = this.mem.frameOffset(gfn);
    if (off < 0 || !this.mem.isRamFrame(gfn)) return -EINVAL;
    if (gfn === this.gfn) return 0;
    const m = this.mem;
    m.u8.set(this.u8.subarray(this.base, this.base + XEN_PAGE_SIZE), off);
    if (this.gfn < 0) this.shadowU8.fill(0);
    this.relocate(m.u8, m.i32, off, gfn);
    return 0;
  }

  /** XENMEM_remove_from_physmap of the shared_info frame: the page returns to the hypervisor's shadow. */
  unmap(): void {
    if (this.gfn < 0) return;
    this.shadowU8.set(this.u8.subarray(this.base, this.base + XEN_PAGE_SIZE));
    this.relocate(this.shadowU8, this.shadowI32, 0, -1);
  }

  private relocate(u8: Uint8Array, i32: Int32Array, base: number, gfn: number): void {
    this.u8 = u8; this.i32 = i32; this.base = base; this.gfn = gfn;
    if (this.viGpa[0] < 0) { this.viU8[0] = u8; this.viI32[0] = i32; this.viOff[0] = base; }
  }

  /**
   * VCPUOP_register_vcpu_info: vCPU `v`'s vcpu_info moves to guest frame `gfn` + `offset`. Xen 4.17
   * (xen/common/domain.c map_vcpu_info): offset 8-aligned and the struct inside the page (-EINVAL), the frame
   * RAM (-EINVAL), once per vCPU (-EINVAL). The old contents are copied (dummy → zeroes), then every selector
   * bit is set and an upcall marked pending "just to make sure nothing gets lost" (a spurious upcall).
   */
  registerVcpuInfo(v: number, gfn: number, offset: number): number {
    if (this.viGpa[v] >= 0) return -EINVAL;
    if ((offset & 7) !== 0 || offset < 0 || offset > XEN_PAGE_SIZE - VCPU_INFO_SIZE) return -EINVAL;
    if (!this.mem.isRamFrame(gfn)) return -EINVAL;
    const off = this.mem.frameOffset(gfn) + offset;
    const m = this.mem;
    const old = this.viU8[v], oldOff = this.viOff[v];
    if (v === 0) m.u8.set(old.subarray(oldOff, oldOff + VCPU_INFO_SIZE), off);
    else m.u8.fill(0, off, off + VCPU_INFO_SIZE);
    this.viU8[v] = m.u8; this.viI32[v] = m.i32; this.viOff[v] = off;
    this.viGpa[v] = gfn * XEN_PAGE_SIZE + offset;
    const k = (off + VI_PENDING_SEL) >> 2;
    Atomics.store(m.i32, k, -1);
    Atomics.store(m.i32, k + 1, -1);
    Atomics.store(m.u8, off + VI_UPCALL_PENDING, 1);
    return 0;
  }

  save(): SharedInfoState {
    const dummies = new Uint8Array(this.vcpus * DUMMY_VI_BYTES);
    for (let v = 1; v < this.vcpus; v++) {
      if (this.viGpa[v] < 0) dummies.set(this.viU8[v].subarray(0, DUMMY_VI_BYTES), v * DUMMY_VI_BYTES);
    }
    return {
      version: 1, vcpus: this.vcpus, gfn: this.gfn,
      shadow: this.gfn < 0 ? this.shadowU8.slice() : new Uint8Array(0),
      vcpuInfo: this.viGpa.slice(), dummies,
    };
  }

  /**
   * Loads a saved state into this (freshly built) SharedInfo, over guest RAM that already holds the saved
   * RAM: nothing is copied into guest memory. The shared_info frame and every vcpu_info address are checked as
   * XENMAPSPACE_shared_info and VCPUOP_register_vcpu_info check a guest's (RAM frame, 8-aligned, inside the
   * page); a bad state throws StateError and changes nothing.
   */
  restore(state: SharedInfoState): void {
    const C = "shared-info";
    const s = stateVersion(C, state, 1);
    stateInt(C, "vcpus", s.vcpus, this.vcpus, this.vcpus);
    const gfn = stateInt(C, "gfn", s.gfn, -1, Number.MAX_SAFE_INTEGER);
    if (gfn >= 0 && !this.mem.isRamFrame(gfn)) throw new StateError(C, "gfn", `${gfn} is not a RAM frame of the domain`);
    const shadow = stateBytes(C, "shadow", s.shadow, gfn < 0 ? XEN_PAGE_SIZE : 0);
    const dummies = stateBytes(C, "dummies", s.dummies, this.vcpus * DUMMY_VI_BYTES);
    const gpas = stateArray(C, "vcpuInfo", s.vcpuInfo, this.vcpus).map((x, v) => {
      const gpa = stateInt(C, `vcpuInfo[${v}]`, x, -1, Number.MAX_SAFE_INTEGER);
      if (gpa < 0) return gpa;
      const g = Math.floor(gpa / XEN_PAGE_SIZE), o = gpa % XEN_PAGE_SIZE;
      if ((o & 7) !== 0 || o > XEN_PAGE_SIZE - VCPU_INFO_SIZE || !this.mem.isRamFrame(g)) {
        throw new StateError(C, `vcpuInfo[${v}]`, `0x${gpa.toString(16)} is not an 8-aligned vcpu_info inside a RAM page`);
      }
      return gpa;
    });
    for (let v = 0; v < this.vcpus; v++) {
      if (v !== 0 && gpas[v] < 0) continue;
      if (dummies.subarray(v * DUMMY_VI_BYTES, (v + 1) * DUMMY_VI_BYTES).some((b) => b !== 0)) {
        throw new StateError(C, `dummies[${v}]`, "set for a vCPU without a dummy vcpu_info");
      }
    }

    if (gfn < 0) { this.shadowU8.set(shadow); this.relocate(this.shadowU8, this.shadowI32, 0, -1); }
    else this.relocate(this.mem.u8, this.mem.i32, this.mem.frameOffset(gfn), gfn);
    const m = this.mem;
    for (let v = 0; v < this.vcpus; v++) {
      const gpa = gpas[v];
      this.viGpa[v] = gpa;
      if (gpa >= 0) {
        this.viU8[v] = m.u8; this.viI32[v] = m.i32;
        this.viOff[v] = m.frameOffset(Math.floor(gpa / XEN_PAGE_SIZE)) + gpa % XEN_PAGE_SIZE;
      } else if (v === 0) {
        this.viU8[0] = this.u8; this.viI32[0] = this.i32; this.viOff[0] = this.base;
      } else {
        const dummy = new SharedArrayBuffer(DUMMY_VI_BYTES);
        this.viU8[v] = new Uint8Array(dummy); this.viI32[v] = new Int32Array(dummy); this.viOff[v] = 0;
        this.viU8[v].set(dummies.subarray(v * DUMMY_VI_BYTES, (v + 1) * DUMMY_VI_BYTES));
      }
    }
  }

  // -------------------------------------------------------------------------------------------------------
  // 2-level bitmaps (port p: bit p & 63 of u64 word p >> 6)

  private bitIndex(area: number, port: number): number {
    return (this.base + area + ((port >>> 6) << 3) + ((port & 32) >>> 3)) >> 2;
  }

  /** Atomically sets port's pending bit; true if it was already set. */
  testAndSetPending(port: number): boolean {
    const bit = 1 << (port & 31);
    return (Atomics.or(this.i32, this.bitIndex(SI_EVTCHN_PENDING, port), bit) & bit) !== 0;
  }

  clearPending(port: number): void {
    Atomics.and(this.i32, this.bitIndex(SI_EVTCHN_PENDING, port), ~(1 << (port & 31)));
  }

  isPending(port: number): boolean {
    return (Atomics.load(this.i32, this.bitIndex(SI_EVTCHN_PENDING, port)) & (1 << (port & 31))) !== 0;
  }

  isMasked(port: number): boolean {
    return (Atomics.load(this.i32, this.bitIndex(SI_EVTCHN_MASK, port)) & (1 << (port & 31))) !== 0;
  }

  setMask(port: number): void {
    Atomics.or(this.i32, this.bitIndex(SI_EVTCHN_MASK, port), 1 << (port & 31));
  }

  /** Atomically clears port's mask bit; true if it was set. */
  testAndClearMask(port: number): boolean {
    const bit = 1 << (port & 31);
    return (Atomics.and(this.i32, this.bitIndex(SI_EVTCHN_MASK, port), ~bit) & bit) !== 0;
  }

  /** Atomically sets selector bit `word` (0..63) in vCPU v's evtchn_pending_sel; true if it was set. */
  testAndSetSel(v: number, word: number): boolean {
    const bit = 1 << (word & 31);
    const k = (this.viOff[v] + VI_PENDING_SEL + ((word & 32) >>> 3)) >> 2;
    return (Atomics.or(this.viI32[v], k, bit) & bit) !== 0;
  }

  /** Atomically sets vCPU v's evtchn_upcall_pending; true if it was already set. */
  testAndSetUpcall(v: number): boolean {
    return Atomics.exchange(this.viU8[v], this.viOff[v] + VI_UPCALL_PENDING, 1) !== 0;
  }

  upcallPending(v: number): boolean {
    return Atomics.load(this.viU8[v], this.viOff[v] + VI_UPCALL_PENDING) !== 0;
  }

  /** Test helper: vCPU v's evtchn_pending_sel as [lo, hi]. */
  pendingSel(v: number): [number, number] {
    const k = (this.viOff[v] + VI_PENDING_SEL) >> 2;
    return [Atomics.load(this.viI32[v], k) >>> 0, Atomics.load(this.viI32[v], k + 1) >>> 0];
  }
}
