/**
 * Memory and address translation for one vCPU: VMSAv8-64 stage 1 for the EL1&0 regime with the 4K granule
 * (Arm ARM D5 "The AArch64 Virtual Memory System Architecture"), a direct-mapped software TLB mapping guest
 * virtual pages straight to offsets in the domain's RAM buffer, and a stage-2 map through which a hypervisor
 * takes frames out of the guest's physical address space (`stage2`).
 *
 * Hot path (read8..write64): one TLB slot read, a tag compare, a permission-mask test, an ASID test, then a
 * DataView access. Everything else (walks, faults, page-crossing and MMIO accesses) is the slow path.
 *
 * Faults: the slow path records the fault in `fault*` fields and throws the singleton MMU_FAULT (no allocation);
 * the CPU catches it and takes the Data/Instruction Abort with ESR/FAR built from those fields.
 *
 * Stage 2: guest-physical = buffer offset + ramBase (the domain's RAM is one buffer), so the stage-2 tables
 * reduce to one byte per 4 KiB frame saying whether the frame is mapped. It is consulted where a TLB entry is
 * made or a descriptor read — translate() and walk(), i.e. on TLB misses only — so a TLB hit costs nothing
 * more. Whoever unmaps frames calls dropUnmapped() on every MMU of the domain (`peers`) before the guest runs
 * again, so no entry made before the unmap still gives access.
 */
import { R } from "../common/int64.js";
import { atomic64, type Ld64, type St64 } from "./atomic64.js";

/** Access kinds. */
export const ACC_READ = 0, ACC_WRITE = 1, ACC_FETCH = 2;

/** TLB permission bits (folded into each entry). */
export const P_R0 = 1, P_W0 = 2, P_X0 = 4, P_R1 = 8, P_W1 = 16, P_X1 = 32;
const P_ALL = 63;

/** Fault status codes (ESR_ELx.ISS.DFSC/IFSC, Arm ARM D17.2.40), level added to the *_L0 base. */
export const FSC_ADDR_SIZE_L0 = 0x00, FSC_TRANS_L0 = 0x04, FSC_ACCESS_L0 = 0x08, FSC_PERM_L0 = 0x0c;
export const FSC_EXTERNAL = 0x10, FSC_EXTERNAL_WALK_L0 = 0x14, FSC_ALIGN = 0x21;

/** Physical address size in bits for each TCR_EL1.IPS value, capped at the 48 bits advertised in PARange. */
const PA_BITS = [32, 36, 40, 42, 44, 48, 48, 48];

/** The one object thrown for a guest memory fault; details are in the Mmu's fault* fields. */
export const MMU_FAULT = { mmuFault: true } as const;

/** A memory-mapped I/O region handler for physical addresses outside RAM. Size 8 returns lo and puts hi in R[0]. */
export interface MmioBus {
  /** Returns the value, or throws MMU_FAULT via mmu.externalAbort when nothing decodes the address. */
  read(pa: number, size: number): number;
  write(pa: number, size: number, lo: number, hi: number): void;
  /** True if some device decodes this physical address. */
  claims(pa: number): boolean;
}

/**
 * Stage-2 map: byte k describes the 4 KiB frame at buffer offset k * 4096 (guest-physical ramBase + k * 4096);
 * 0 = not mapped (an access faults at stage 2), anything else = mapped. Shared by the domain's MMUs and owned
 * by the hypervisor's P2M (src/xen/p2m.ts).
 */
export type Stage2Map = Uint8Array;

/** A lazy restore's page loaders by stage-2 map (every MMU of a domain shares its map, new ones too). */
const lazyLoaders = new WeakMap<Stage2Map, (page: number) => void>();

/** Registers (or with null removes) the loader of stage-2 map `map`'s lazy pages (Mmu.lazyLoad; src/hv/lazy-ram.ts). */
export function setLazyLoader(map: Stage2Map, f: ((page: number) => void) | null): void {
  if (f === null) lazyLoaders.delete(map); else lazyLoaders.set(map, f);
}

/** Fault status recorded for a stage-2 fault: Translation fault, level 3 (what ESR_EL2.ISS.DFSC would say). */
export const FSC_STAGE2 = FSC_TRANS_L0 + 3;

// 16K entries, indexed by VA bits [25:12] XOR VA bits [47:34]: the kernel's linear map, its image/vmalloc area
// and user space (which differ in the high VA bits) do not evict each other. The top byte (TBI tag) is not
// part of the index, so a tagged and an untagged alias share a slot.
const TLB_BITS = 14;
const TLB_SIZE = 1 << TLB_BITS;
const TLB_MASK = TLB_SIZE - 1;

const MMIO_TLB_MASK = 63;

/**
 * The TLB area: six arrays of TLB_SIZE entries at these byte offsets (tag low/high words, ASID, RAM offset:
 * Int32; permissions and mapping size: Uint8). Generated code addresses them with these offsets.
 */
export const TLB_TAG_LO = 0, TLB_TAG_HI = 4 * TLB_SIZE, TLB_ASID = 8 * TLB_SIZE, TLB_OFF = 12 * TLB_SIZE,
  TLB_PERM = 16 * TLB_SIZE, TLB_SHIFT = 17 * TLB_SIZE;
/** Bytes of one MMU's TLB area (a multiple of 4 KiB), and the slot mask. */
export const TLB_AREA_BYTES = 18 * TLB_SIZE, TLB_SLOT_MASK = TLB_MASK;

/** The TLB slot of VA (lo, hi): for code outside this module that probes the TLB directly. */
export function tlbSlot(lo: number, hi: number): number { return ((lo >>> 12) ^ (hi >>> 2)) & TLB_MASK; }
const TWO32 = 4294967296;

export class Mmu {
  readonly ram: ArrayBufferLike;
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  readonly dv: DataView;
  /** Physical address of RAM's first byte, and its size (bytes, multiple of 4 KiB, below 2 GiB). */
  readonly ramBase: number;
  readonly ramSize: number;

  // Software TLB, direct-mapped (tlbSlot). perm === 0 marks an empty slot. The arrays live at TLB_* offsets of
  // one area: in the domain's WebAssembly.Memory when the constructor is given one (compiled code then looks
  // entries up itself, src/cpu/arm64/jit), else in a private buffer.
  readonly tagLo: Int32Array;
  readonly tagHi: Int32Array;
  readonly tlbAsid: Int32Array; // -1: global (nG = 0)
  readonly tlbOff: Int32Array; // RAM offset of the page
  readonly tlbPerm: Uint8Array;
  readonly tlbShift: Uint8Array; // log2 of the mapping that filled the entry (12, 21, 30)
  /** Byte offset of the TLB area in `ram`'s buffer, or -1 when it is private. */
  readonly tlbBase: number;
  // A small TLB for device (MMIO) pages, consulted by the slow paths only (the fast paths never hit MMIO).
  private readonly mTagLo = new Int32Array(MMIO_TLB_MASK + 1);
  private readonly mTagHi = new Int32Array(MMIO_TLB_MASK + 1);
  private readonly mAsid = new Int32Array(MMIO_TLB_MASK + 1);
  private readonly mPerm = new Uint8Array(MMIO_TLB_MASK + 1);
  private readonly mPa = new Float64Array(MMIO_TLB_MASK + 1);
  /**
   * VA page numbers (top byte ignored) that entries filled from blocks may cover: [blockFirst, blockEnd) for
   * 1 GiB blocks, [block2First, block2End) for 2 MiB blocks. TLBI by VA outside both is O(1); inside the 2 MiB
   * range it checks the 512 slots of that 2 MiB region (Linux maps its linear map with 2 MiB blocks and flushes
   * vmalloc/user pages one by one, so a whole-TLB scan there cost 13 % of a boot).
   */
  private blockFirst = Infinity;
  private blockEnd = -Infinity;
  private block2First = Infinity;
  private block2End = -Infinity;

  /** Permission masks for the current exception level (set by setEl). */
  mR = P_R1; mW = P_W1; mX = P_X1;
  el = 1;
  /** Current ASID (from TTBR0 or TTBR1 per TCR.A1). */
  asid = 0;

  // Translation-regime registers (written by the CPU's system-register code; call regimeChanged() after).
  sctlr = 0;
  tcrLo = 0; tcrHi = 0;
  ttbr0Lo = 0; ttbr0Hi = 0;
  ttbr1Lo = 0; ttbr1Hi = 0;

  /** The domain's stage-2 map (null: everything in the buffer is mapped, e.g. the bare board). */
  stage2: Stage2Map | null = null;

  /**
   * A frame whose stage-2 byte is neither 0 (unmapped) nor 1: a lazy restore's page not loaded yet. The
   * loader registered for this MMU's stage-2 map (setLazyLoader) loads it and sets the byte to 1, before the
   * TLB fill or table-walk read that found it goes on. Never reached on a TLB hit.
   */
  private lazyLoad(page: number): void {
    const f = this.stage2 === null ? undefined : lazyLoaders.get(this.stage2);
    if (f === undefined) throw new Error(`stage-2 byte ${this.stage2?.[page]} for page ${page} without a lazy loader`);
    f(page);
  }
  /**
   * A ROM window (a firmware board's flash: src/machine/firmware.ts): guest-physical [0, romBytes) is buffer
   * offset [0, romBytes), and RAM follows it in the buffer (ramBase is then RAM's physical base - romBytes).
   * `rom` has a byte per 4 KiB frame of the window: non-zero = ROMD (reads and fetches come from the buffer,
   * entered in the TLB without write permission), 0 = the device answers reads too. Writes always go to the
   * MMIO bus (the flash's command interface). 0 / null: no window (every other board).
   */
  romBytes = 0;
  rom: Uint8Array | null = null;
  mmio: MmioBus | null = null;

  // Fault record for the last MMU_FAULT. faultStage2 = 1: a stage-2 fault on guest-physical faultIpa;
  // faultS1ptw = 1 when that address was a stage-1 descriptor (ESR_EL2.ISS.S1PTW).
  faultVaLo = 0; faultVaHi = 0; faultStatus = 0; faultWrite = 0; faultFetch = 0; faultStage2 = 0; faultIpa = 0;
  faultS1ptw = 0;
  /** Physical address of the last slow-path MMIO access. */
  lastPa = 0;

  /**
   * Dirty logging (live migration, src/hv/save-live.ts): while set, a byte per RAM page of the domain (shared by
   * its MMUs and the Xen layer; 1 = written since the last round). A TLB entry then gets write permission only
   * when a write fills it, and that fill marks the page; entries filled by reads or fetches are entered without
   * it, so the first write after a round misses and comes here. `dropWrite` (each round) takes write permission
   * from every entry. The hot paths are unchanged: they test the same permission bits.
   */
  dirty: Uint8Array | null = null;
  /**
   * With `dirty` set: called when a write fills TLB entry `x` (with write permission) for RAM page `page`, before
   * the write; `first`: the page's dirty byte was clear. The compiler's verify mode (jit/verify.ts) copies a page
   * before its first write and later takes write permission back from exactly these entries (dropWriteAt).
   */
  onWriteFill: ((page: number, x: number, first: boolean) => void) | null = null;

  /** RAM pages holding decoded instructions: writes to them take the slow path and call onCodeWrite. */
  readonly codePage: Uint8Array;
  onCodeWrite: (page: number) => void = () => {};

  /** Scratch: high half of read64 results (out[0]). Reused, never reallocated. */
  readonly out = new Int32Array(2);
  /**
   * Single-copy atomic doubleword access (atomic64.ts), set by useAtomic64 when other threads share the RAM:
   * aligned 64-bit RAM loads and stores then go through it. Null: two 32-bit halves (one thread).
   */
  private ld64: Ld64 | null = null;
  private st64: St64 | null = null;
  /** Where ld64 leaves the high word: a word of this vCPU's own (scratch), and a view of it. */
  private a64Scratch = 0;
  private a64Hi: Int32Array = this.out;

  /**
   * MMUs whose vCPUs share one decode cache (the vCPUs of a domain in one thread). markCode removes write
   * permission for a newly decoded page from every one of them, so any vCPU's write invalidates it.
   */
  peers: Mmu[] = [this];

  /**
   * RAM is the first `ramBytes` of `ram` (default: all of it; the board's buffer is the domain's
   * WebAssembly.Memory, whose tail holds the vCPU state blocks, not RAM). `codePage`: pass the same array to
   * every MMU of a domain that shares a decode cache.
   */
  constructor(ram: ArrayBufferLike, ramBase: number, codePage?: Uint8Array, ramBytes = ram.byteLength, tlbAt = -1) {
    if (ramBytes % 4096 !== 0 || ramBytes >= 0x80000000 || ramBytes > ram.byteLength) {
      throw new RangeError(`RAM size ${ramBytes} must be a multiple of 4 KiB below 2 GiB, inside its buffer`);
    }
    if (tlbAt !== -1 && (tlbAt % 4096 !== 0 || tlbAt < ramBytes || tlbAt + TLB_AREA_BYTES > ram.byteLength)) {
      throw new RangeError(`TLB area at ${tlbAt}: not a 4 KiB-aligned area of ${TLB_AREA_BYTES} bytes after RAM, inside its buffer`);
    }
    const tb = tlbAt === -1 ? new ArrayBuffer(TLB_AREA_BYTES) : ram, to = tlbAt === -1 ? 0 : tlbAt;
    this.tlbBase = tlbAt;
    this.tagLo = new Int32Array(tb, to + TLB_TAG_LO, TLB_SIZE);
    this.tagHi = new Int32Array(tb, to + TLB_TAG_HI, TLB_SIZE);
    this.tlbAsid = new Int32Array(tb, to + TLB_ASID, TLB_SIZE);
    this.tlbOff = new Int32Array(tb, to + TLB_OFF, TLB_SIZE);
    this.tlbPerm = new Uint8Array(tb, to + TLB_PERM, TLB_SIZE);
    this.tlbShift = new Uint8Array(tb, to + TLB_SHIFT, TLB_SIZE);
    this.tlbPerm.fill(0); // an area reused from an earlier MMU (a moved or restored domain) starts empty
    this.ram = ram;
    this.u8 = new Uint8Array(ram, 0, ramBytes);
    this.i32 = new Int32Array(ram, 0, ramBytes >>> 2);
    this.dv = new DataView(ram, 0, ramBytes);
    this.ramBase = ramBase;
    this.ramSize = ramBytes;
    this.codePage = codePage ?? new Uint8Array(ramBytes >>> 12);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Regime state

  setEl(el: number): void {
    this.el = el;
    if (el === 0) { this.mR = P_R0; this.mW = P_W0; this.mX = P_X0; }
    else { this.mR = P_R1; this.mW = P_W1; this.mX = P_X1; }
  }

  /** Re-derives the current ASID; call after writing TTBR0/TTBR1/TCR. Flushes when SCTLR.M or TCR changed. */
  regimeChanged(flush: boolean): void {
    const a1 = (this.tcrLo >>> 22) & 1;
    const as16 = (this.tcrHi >>> 4) & 1; // TCR_EL1.AS (bit 36): 16-bit ASIDs
    const src = a1 ? this.ttbr1Hi : this.ttbr0Hi;
    this.asid = (src >>> 16) & (as16 ? 0xffff : 0xff);
    if (flush) this.flushAll();
  }

  get mmuOn(): boolean { return (this.sctlr & 1) !== 0; }

  /** The domain's lock word for 128-bit exclusives across threads (setPairLock), or null (one thread). */
  private pairLock: Int32Array | null = null;
  private pairLockAt = 0;

  /** Shares lock word `index` of `words` (a SharedArrayBuffer view) with the domain's other MMUs for LDXP/STXP. */
  setPairLock(words: Int32Array, index: number): void { this.pairLock = words; this.pairLockAt = index; }

  /** Takes the pair lock (a spinlock held for a few loads and compare-and-swaps); no-op without one. */
  lockPairs(): void {
    const l = this.pairLock;
    if (l !== null) while (Atomics.compareExchange(l, this.pairLockAt, 0, 1) !== 0) { /* another vCPU's LDXP/STXP */ }
  }

  unlockPairs(): void { if (this.pairLock !== null) Atomics.store(this.pairLock, this.pairLockAt, 0); }

  /** Whether vCPUs of other threads share this MMU's RAM (setPairLock was called): DMB/DSB then fence (system.ts). */
  get sharedRam(): boolean { return this.pairLock !== null; }

  /**
   * Stores the doubleword (lo, hi) at 8-aligned RAM offset `off` for STLR: one 64-bit store with useAtomic64,
   * else two 32-bit atomic stores, low word first (one thread: nobody can see them apart).
   */
  storeRam64(off: number, lo: number, hi: number): void {
    if (this.st64 !== null) { this.st64(off, lo, hi); return; }
    Atomics.store(this.i32, off >> 2, lo);
    Atomics.store(this.i32, (off >> 2) + 1, hi);
  }

  /**
   * Makes aligned 64-bit RAM accesses single-copy atomic (atomic64.ts) over `memory` (whose buffer is this
   * MMU's RAM); `scratch`: the byte offset of a 4-byte word in it that only this vCPU uses.
   */
  useAtomic64(memory: WebAssembly.Memory, scratch: number): void {
    const { ld, st } = atomic64(memory);
    this.ld64 = ld;
    this.st64 = st;
    this.a64Scratch = scratch;
    this.a64Hi = new Int32Array(memory.buffer, scratch, 1);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Hot path. Each: TLB hit -> direct access; anything else -> slow path.

  read8(lo: number, hi: number): number {
    const x = ((lo >>> 12) ^ (hi >>> 2)) & TLB_MASK;
    if (this.tagLo[x] === (lo & -4096) && this.tagHi[x] === hi && (this.tlbPerm[x] & this.mR) !== 0) {
      const a = this.tlbAsid[x];
      if (a === -1 || a === this.asid) return this.u8[this.tlbOff[x] + (lo & 0xfff)];
    }
    return this.readSlow(lo, hi, 1);
  }

  read16(lo: number, hi: number): number {
    const x = ((lo >>> 12) ^ (hi >>> 2)) & TLB_MASK;
    if (this.tagLo[x] === (lo & -4096) && this.tagHi[x] === hi && (this.tlbPerm[x] & this.mR) !== 0 && (lo & 0xfff) <= 0xffe) {
      const a = this.tlbAsid[x];
      if (a === -1 || a === this.asid) return this.dv.getUint16(this.tlbOff[x] + (lo & 0xfff), true);
    }
    return this.readSlow(lo, hi, 2);
  }

  read32(lo: number, hi: number): number {
    const x = ((lo >>> 12) ^ (hi >>> 2)) & TLB_MASK;
    if (this.tagLo[x] === (lo & -4096) && this.tagHi[x] === hi && (this.tlbPerm[x] & this.mR) !== 0 && (lo & 0xfff) <= 0xffc) {
      const a = this.tlbAsid[x];
      if (a === -1 || a === this.asid) return this.dv.getInt32(this.tlbOff[x] + (lo & 0xfff), true);
    }
    return this.readSlow(lo, hi, 4);
  }

  /** Returns the low word; the high word is in out[0]. */
  read64(lo: number, hi: number): number {
    const x = ((lo >>> 12) ^ (hi >>> 2)) & TLB_MASK;
    if (this.tagLo[x] === (lo & -4096) && this.tagHi[x] === hi && (this.tlbPerm[x] & this.mR) !== 0 && (lo & 0xfff) <= 0xff8) {
      const a = this.tlbAsid[x];
      if (a === -1 || a === this.asid) {
        const o = this.tlbOff[x] + (lo & 0xfff);
        if (this.ld64 !== null && (o & 7) === 0) {
          const l = this.ld64(o, this.a64Scratch);
          this.out[0] = this.a64Hi[0]!;
          return l;
        }
        this.out[0] = this.dv.getInt32(o + 4, true);
        return this.dv.getInt32(o, true);
      }
    }
    const l = this.readSlow(lo, hi, 8);
    return l;
  }

  write8(lo: number, hi: number, v: number): void {
    const x = ((lo >>> 12) ^ (hi >>> 2)) & TLB_MASK;
    if (this.tagLo[x] === (lo & -4096) && this.tagHi[x] === hi && (this.tlbPerm[x] & this.mW) !== 0) {
      const a = this.tlbAsid[x];
      if (a === -1 || a === this.asid) { this.u8[this.tlbOff[x] + (lo & 0xfff)] = v; return; }
    }
    this.writeSlow(lo, hi, 1, v, 0);
  }

  write16(lo: number, hi: number, v: number): void {
    const x = ((lo >>> 12) ^ (hi >>> 2)) & TLB_MASK;
    if (this.tagLo[x] === (lo & -4096) && this.tagHi[x] === hi && (this.tlbPerm[x] & this.mW) !== 0 && (lo & 0xfff) <= 0xffe) {
      const a = this.tlbAsid[x];
      if (a === -1 || a === this.asid) { this.dv.setUint16(this.tlbOff[x] + (lo & 0xfff), v, true); return; }
    }
    this.writeSlow(lo, hi, 2, v, 0);
  }

  write32(lo: number, hi: number, v: number): void {
    const x = ((lo >>> 12) ^ (hi >>> 2)) & TLB_MASK;
    if (this.tagLo[x] === (lo & -4096) && this.tagHi[x] === hi && (this.tlbPerm[x] & this.mW) !== 0 && (lo & 0xfff) <= 0xffc) {
      const a = this.tlbAsid[x];
      if (a === -1 || a === this.asid) { this.dv.setInt32(this.tlbOff[x] + (lo & 0xfff), v, true); return; }
    }
    this.writeSlow(lo, hi, 4, v, 0);
  }

  write64(lo: number, hi: number, vlo: number, vhi: number): void {
    const x = ((lo >>> 12) ^ (hi >>> 2)) & TLB_MASK;
    if (this.tagLo[x] === (lo & -4096) && this.tagHi[x] === hi && (this.tlbPerm[x] & this.mW) !== 0 && (lo & 0xfff) <= 0xff8) {
      const a = this.tlbAsid[x];
      if (a === -1 || a === this.asid) {
        const o = this.tlbOff[x] + (lo & 0xfff);
        if (this.st64 !== null && (o & 7) === 0) { this.st64(o, vlo, vhi); return; }
        this.dv.setInt32(o, vlo, true);
        this.dv.setInt32(o + 4, vhi, true);
        return;
      }
    }
    this.writeSlow(lo, hi, 8, vlo, vhi);
  }

  /**
   * RAM offset of the 4 KiB page holding the instruction at (lo, hi), checked for execute permission.
   * Throws MMU_FAULT (faultFetch = 1) on a translation/permission fault or when the page is not RAM.
   */
  fetchPage(lo: number, hi: number): number {
    const x = ((lo >>> 12) ^ (hi >>> 2)) & TLB_MASK;
    if (this.tagLo[x] === (lo & -4096) && this.tagHi[x] === hi && (this.tlbPerm[x] & this.mX) !== 0) {
      const a = this.tlbAsid[x];
      if (a === -1 || a === this.asid) return this.tlbOff[x];
    }
    const off = this.translate(lo, hi, ACC_FETCH);
    if (off < 0) return this.externalAbort(lo, hi, ACC_FETCH);
    return off & -4096;
  }

  /**
   * RAM offset for an access of `size` bytes at (lo, hi) that must not cross a page and must be RAM
   * (exclusives, atomics, DC ZVA). Throws MMU_FAULT on a fault; alignment is the caller's check.
   */
  ramOffset(lo: number, hi: number, acc: number): number {
    // TLB hit: exclusives and atomics (every spinlock) come here, so they must not walk each time. Code pages
    // have no write permission in the TLB, so writes to them still reach onCodeWrite below.
    const x = ((lo >>> 12) ^ (hi >>> 2)) & TLB_MASK;
    if (this.tagLo[x] === (lo & -4096) && this.tagHi[x] === hi && (this.tlbPerm[x] & (acc === ACC_WRITE ? this.mW : this.mR)) !== 0) {
      const a = this.tlbAsid[x];
      if (a === -1 || a === this.asid) return this.tlbOff[x] + (lo & 0xfff);
    }
    const off = this.translate(lo, hi, acc);
    if (off < 0) return this.externalAbort(lo, hi, acc);
    if (acc === ACC_WRITE && this.codePage[off >>> 12]) this.onCodeWrite(off >>> 12);
    return off;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Slow path

  /** MMIO TLB hit for (lo, hi) with permission `mask`: sets lastPa and returns true. */
  private mmioHit(lo: number, hi: number, mask: number): boolean {
    const m = (lo >>> 12) & MMIO_TLB_MASK;
    if (this.mTagLo[m] !== (lo & -4096) || this.mTagHi[m] !== hi || (this.mPerm[m] & mask) === 0) return false;
    const a = this.mAsid[m];
    if (a !== -1 && a !== this.asid) return false;
    this.lastPa = this.mPa[m] + (lo & 0xfff);
    return true;
  }

  private readSlow(lo: number, hi: number, size: number): number {
    if ((lo & 0xfff) > 4096 - size) return this.readSplit(lo, hi, size);
    const off = this.mmioHit(lo, hi, this.mR) ? -1 : this.translate(lo, hi, ACC_READ);
    if (off >= 0) {
      switch (size) {
        case 1: return this.u8[off];
        case 2: return this.dv.getUint16(off, true);
        case 4: return this.dv.getInt32(off, true);
        default:
          if (this.ld64 !== null && (off & 7) === 0) { const l = this.ld64(off, this.a64Scratch); this.out[0] = this.a64Hi[0]!; return l; }
          this.out[0] = this.dv.getInt32(off + 4, true);
          return this.dv.getInt32(off, true);
      }
    }
    if (this.mmio === null || !this.mmio.claims(this.lastPa)) return this.externalAbort(lo, hi, ACC_READ);
    const v = this.mmio.read(this.lastPa, size);
    if (size === 8) this.out[0] = R[0];
    return v;
  }

  /** A read crossing a page boundary, byte by byte (each byte translated; faults report the failing byte). */
  private readSplit(lo: number, hi: number, size: number): number {
    let vlo = 0, vhi = 0;
    for (let k = 0; k < size; k++) {
      const alo = (lo + k) | 0;
      const ahi = (alo >>> 0) < (lo >>> 0) ? (hi + 1) | 0 : hi;
      const b = this.read8(alo, ahi);
      if (k < 4) vlo |= b << (8 * k); else vhi |= b << (8 * (k - 4));
    }
    if (size === 8) this.out[0] = vhi;
    return size === 4 || size === 8 ? vlo | 0 : vlo;
  }

  private writeSlow(lo: number, hi: number, size: number, vlo: number, vhi: number): void {
    if ((lo & 0xfff) > 4096 - size) {
      for (let k = 0; k < size; k++) {
        const alo = (lo + k) | 0;
        const ahi = (alo >>> 0) < (lo >>> 0) ? (hi + 1) | 0 : hi;
        this.write8(alo, ahi, k < 4 ? vlo >>> (8 * k) : vhi >>> (8 * (k - 4)));
      }
      return;
    }
    const off = this.mmioHit(lo, hi, this.mW) ? -1 : this.translate(lo, hi, ACC_WRITE);
    if (off >= 0) {
      if (this.codePage[off >>> 12]) this.onCodeWrite(off >>> 12);
      switch (size) {
        case 1: this.u8[off] = vlo; return;
        case 2: this.dv.setUint16(off, vlo & 0xffff, true); return;
        case 4: this.dv.setInt32(off, vlo, true); return;
        default:
          if (this.st64 !== null && (off & 7) === 0) { this.st64(off, vlo, vhi); return; }
          this.dv.setInt32(off, vlo, true);
          this.dv.setInt32(off + 4, vhi, true);
          return;
      }
    }
    if (this.mmio === null || !this.mmio.claims(this.lastPa)) { this.externalAbort(lo, hi, ACC_WRITE); return; }
    this.mmio.write(this.lastPa, size, vlo, vhi);
  }

  /** Records a synchronous external abort at (lo, hi) and throws. */
  externalAbort(lo: number, hi: number, acc: number): never {
    return this.fault(lo, hi, acc, FSC_EXTERNAL);
  }

  fault(lo: number, hi: number, acc: number, status: number): never {
    this.faultVaLo = lo; this.faultVaHi = hi; this.faultStatus = status;
    this.faultWrite = acc === ACC_WRITE ? 1 : 0; this.faultFetch = acc === ACC_FETCH ? 1 : 0;
    this.faultStage2 = 0; this.faultS1ptw = 0;
    throw MMU_FAULT;
  }

  /** Records a stage-2 fault for the access at VA (lo, hi) on guest-physical `ipa` and throws. */
  private stage2Fault(lo: number, hi: number, acc: number, ipa: number, s1ptw: number): never {
    this.faultVaLo = lo; this.faultVaHi = hi; this.faultStatus = FSC_STAGE2;
    this.faultWrite = acc === ACC_WRITE ? 1 : 0; this.faultFetch = acc === ACC_FETCH ? 1 : 0;
    this.faultStage2 = 1; this.faultIpa = ipa; this.faultS1ptw = s1ptw;
    throw MMU_FAULT;
  }

  /**
   * Translates (lo, hi) for `acc` at the current EL and fills the TLB. Returns the RAM offset of the byte, or
   * -1 when the physical address is outside RAM (then lastPa holds it). Throws MMU_FAULT on a fault.
   */
  translate(lo: number, hi: number, acc: number): number {
    let pa: number, perm: number, shift: number, asid: number;
    if ((this.sctlr & 1) === 0) {
      // MMU off: flat mapping (Arm ARM D5.2.9). Addresses beyond the PA range fault with an address size fault.
      if ((hi >>> 16) !== 0) return this.fault(lo, hi, acc, FSC_ADDR_SIZE_L0);
      pa = (hi >>> 0) * TWO32 + (lo >>> 0);
      perm = P_ALL; shift = 12; asid = -1;
    } else {
      pa = this.walk(lo, hi, acc);
      perm = this.walkPerm; shift = this.walkShift; asid = this.walkGlobal ? -1 : this.asid;
      const need = acc === ACC_READ ? this.mR : acc === ACC_WRITE ? this.mW : this.mX;
      if ((perm & need) === 0) return this.fault(lo, hi, acc, FSC_PERM_L0 + this.walkLevel);
    }
    let off = pa - this.ramBase;
    if (off >= this.romBytes && off < this.ramSize) {
      // Stage 2 (only RAM frames can be unmapped; device addresses go to the MMIO bus as before).
      const s2 = this.stage2;
      if (s2 !== null && s2[off >>> 12] !== 1) {
        if (s2[off >>> 12] === 0) return this.stage2Fault(lo, hi, acc, pa, 0);
        this.lazyLoad(off >>> 12); // a lazy restore's page not loaded yet (src/hv/lazy-ram.ts): before the fill
      }
    } else if (pa < this.romBytes && acc !== ACC_WRITE && this.rom![pa >>> 12] !== 0) {
      // ROMD flash: read and execute in place; a write (a flash command) misses the TLB and reaches the device.
      off = pa;
      perm &= ~(P_W0 | P_W1);
    } else {
      this.lastPa = pa;
      // Remember the device page: a driver polling a register must not walk the tables on every access.
      const m = (lo >>> 12) & MMIO_TLB_MASK;
      this.mTagLo[m] = lo & -4096; this.mTagHi[m] = hi; this.mAsid[m] = asid; this.mPerm[m] = perm;
      this.mPa[m] = pa - (pa % 4096);
      return -1;
    }
    // Fill the TLB. Pages holding decoded code are entered without write permission so writes reach onCodeWrite.
    const x = ((lo >>> 12) ^ (hi >>> 2)) & TLB_MASK;
    const pageOff = off - (off % 4096);
    this.tagLo[x] = lo & -4096;
    this.tagHi[x] = hi;
    this.tlbAsid[x] = asid;
    this.tlbOff[x] = pageOff;
    if (this.dirty !== null) {
      // Dirty logging: a write fill marks the page; any other fill leaves write permission out.
      if (acc === ACC_WRITE) {
        const pg = pageOff >>> 12;
        if (this.onWriteFill !== null) this.onWriteFill(pg, x, this.dirty[pg] === 0);
        this.dirty[pg] = 1;
      } else perm &= ~(P_W0 | P_W1);
    }
    this.tlbPerm[x] = this.codePage[pageOff >>> 12] ? perm & ~(P_W0 | P_W1) : perm;
    this.tlbShift[x] = shift;
    if (shift > 12) {
      // Remember the VA page range block-derived entries may cover, so TLBI by VA outside it stays O(1).
      const vp = (hi & 0x00ffffff) * 1048576 + (lo >>> 12);
      const span = 2 ** (shift - 12);
      const first = vp - (vp % span);
      if (shift === 21) {
        if (first < this.block2First) this.block2First = first;
        if (first + span > this.block2End) this.block2End = first + span;
      } else {
        if (first < this.blockFirst) this.blockFirst = first;
        if (first + span > this.blockEnd) this.blockEnd = first + span;
      }
    }
    return off;
  }

  // Results of the last walk (scratch fields: no allocation).
  walkPerm = 0; walkShift = 12; walkLevel = 0; walkGlobal = false;
  /** AttrIndx (descriptor bits 4:2, an index into MAIR_EL1) and SH[1:0] (bits 9:8) of the last leaf. */
  walkAttrIdx = 0; walkSh = 0;

  /**
   * Stage-1 walk (Arm ARM D5.2 "The VMSAv8-64 address translation system"; pseudocode
   * AArch64.TranslationTableWalk), 4K granule. TnSZ outside 16..39 is clamped (one of the CONSTRAINED
   * UNPREDICTABLE behaviours the Arm ARM permits, and what QEMU does). Returns the output address; sets
   * walkPerm/walkShift/walkLevel/walkGlobal/walkAttrIdx/walkSh. Faults (MMU_FAULT) with:
   *  - Translation fault level 0 when TCR.EPDn is set or the VA lies outside the TTBRn range (the Arm ARM's
   *    pseudocode reports both "as a level 0 fault" for AArch64);
   *  - Address size fault (level of the descriptor, 0 for the TTBR) when a table or output address exceeds
   *    the PA size min(TCR.IPS, 48 bits);
   *  - Synchronous external abort on a table walk (0b0101LL) when a descriptor is not in RAM;
   *  - Translation fault level n for an invalid descriptor, Access flag fault level n when AF = 0 (no
   *    hardware AF management in ARMv8.0).
   */
  private walk(lo: number, hi: number, acc: number): number {
    const upper = (hi >>> 23) & 1; // VA bit 55 selects TTBR1
    const tcr = this.tcrLo;
    let tsz = upper ? (tcr >>> 16) & 63 : tcr & 63;
    const epd = upper ? (tcr >>> 23) & 1 : (tcr >>> 7) & 1;
    const tbi = upper ? (this.tcrHi >>> 6) & 1 : (this.tcrHi >>> 5) & 1; // TBI1 bit 38, TBI0 bit 37
    if (epd) return this.fault(lo, hi, acc, FSC_TRANS_L0);
    if (tsz < 16) tsz = 16; else if (tsz > 39) tsz = 39;
    const inBits = 64 - tsz; // 25..48
    // Bits [63:inBits] (bits [55:inBits] under TBI) must all equal VA bit 55.
    let hiMask: number, loMask: number;
    if (inBits >= 32) { hiMask = -1 << (inBits - 32); loMask = 0; } else { hiMask = -1; loMask = -1 << inBits; }
    if (tbi) hiMask &= 0x00ffffff;
    const ex = upper ? -1 : 0;
    if ((hi & hiMask) !== (ex & hiMask) || (lo & loMask) !== (ex & loMask)) return this.fault(lo, hi, acc, FSC_TRANS_L0);
    const vaHi = inBits >= 32 ? hi & ~(-1 << (inBits - 32)) : 0;
    const vaLo = inBits >= 32 ? lo : lo & ~loMask;
    const va = (vaHi >>> 0) * TWO32 + (vaLo >>> 0);
    const start = 4 - Math.ceil((inBits - 12) / 9);
    // Output size: TCR_EL1.IPS (bits 34:32) capped at the advertised PARange (48 bits, ID_AA64MMFR0_EL1).
    const paLimit = 2 ** PA_BITS[this.tcrHi & 7];
    let level = start;
    const tlo = upper ? this.ttbr1Lo : this.ttbr0Lo;
    const thi = upper ? this.ttbr1Hi : this.ttbr0Hi;
    let table = (thi & 0xffff) * TWO32 + ((tlo & -2) >>> 0); // BADDR[47:1]
    if (table >= paLimit) return this.fault(lo, hi, acc, FSC_ADDR_SIZE_L0);
    // Hierarchical permissions from table descriptors (D5.4.5).
    let apTable = 0, uxnTable = 0, pxnTable = 0;
    for (;;) {
      const shift = 12 + 9 * (3 - level);
      // Index bits [shift+8:shift] of the VA, in 32-bit integer arithmetic (bits above the input size are 0).
      const idx = level === 0 ? (vaHi >>> 7) & 511
        : level === 1 ? (((vaHi & 0x7f) << 2) | (vaLo >>> 30)) & 511
        : level === 2 ? (vaLo >>> 21) & 511 : (vaLo >>> 12) & 511;
      const dpa = table + idx * 8;
      let doff = dpa - this.ramBase;
      if (doff < this.romBytes || doff + 8 > this.ramSize) {
        // Tables in ROMD flash (firmware's initial identity map) are read in place; anything else aborts.
        if (dpa < this.romBytes && this.rom![dpa >>> 12] !== 0) doff = dpa;
        else return this.fault(lo, hi, acc, FSC_EXTERNAL_WALK_L0 + level);
      }
      // The descriptor's own frame must be mapped at stage 2 (a stage-2 fault on the walk, S1PTW = 1).
      const s2 = this.stage2;
      if (s2 !== null && s2[doff >>> 12] !== 1) {
        if (s2[doff >>> 12] === 0) return this.stage2Fault(lo, hi, acc, dpa, 1);
        this.lazyLoad(doff >>> 12); // a table in a page a lazy restore has not loaded yet: before the read
      }
      // One 64-bit read when other threads may be writing the table (a torn descriptor would map garbage).
      let dlo: number, dhi: number;
      if (this.ld64 !== null) { dlo = this.ld64(doff, this.a64Scratch); dhi = this.a64Hi[0]!; }
      else { dlo = this.dv.getInt32(doff, true); dhi = this.dv.getInt32(doff + 4, true); }
      if ((dlo & 1) === 0) return this.fault(lo, hi, acc, FSC_TRANS_L0 + level);
      const isTable = (dlo & 2) !== 0 && level < 3;
      // OA/next-table address bits [47:12]. Bits [51:48] are ignored: Linux keeps PTE_DBM / its software
      // write bit at bit 51 even on ARMv8.0, where hardware (e.g. Cortex-A53) ignores it.
      const oa = (dhi & 0xffff) * TWO32 + ((dlo & -4096) >>> 0);
      if (isTable) {
        if (oa >= paLimit) return this.fault(lo, hi, acc, FSC_ADDR_SIZE_L0 + level);
        apTable |= (dhi >>> 29) & 3; // APTable bits 62:61
        uxnTable |= (dhi >>> 28) & 1; // UXNTable bit 60
        pxnTable |= (dhi >>> 27) & 1; // PXNTable bit 59
        table = oa;
        level++;
        continue;
      }
      // Leaf: a page at level 3 (bits[1:0] = 0b11), a block at level 1 or 2 (0b01). Level-0 blocks and
      // level-3 descriptors with bit 1 clear are invalid (reserved) for the 4K granule.
      if (level === 3 ? (dlo & 2) === 0 : level === 0) return this.fault(lo, hi, acc, FSC_TRANS_L0 + level);
      if (oa >= paLimit) return this.fault(lo, hi, acc, FSC_ADDR_SIZE_L0 + level);
      if ((dlo & 0x400) === 0) return this.fault(lo, hi, acc, FSC_ACCESS_L0 + level); // AF, software-managed
      // AP[2:1] (bits 7:6) combined with APTable (D5.4.5): APTable[0] removes EL0 access, APTable[1] writes.
      const ap = (dlo >>> 6) & 3;
      let el0R = (ap & 1) !== 0, el0W = ap === 1, el1W = (ap & 2) === 0;
      if (apTable & 1) { el0R = false; el0W = false; }
      if (apTable & 2) { el0W = false; el1W = false; }
      const uxn = ((dhi >>> 22) & 1) | uxnTable;
      const pxn = ((dhi >>> 21) & 1) | pxnTable;
      let perm = P_R1;
      if (el1W) perm |= P_W1;
      if (el0R) perm |= P_R0;
      if (el0W) perm |= P_W0;
      // Execute (pseudocode AArch64.CheckPermission): EL0 needs EL0 read access; EL1 never executes memory
      // writable at EL0; SCTLR_EL1.WXN makes writable memory execute-never at the EL that can write it.
      const wxn = (this.sctlr >>> 19) & 1;
      if (!uxn && el0R && !(wxn && el0W)) perm |= P_X0;
      if (!pxn && !el0W && !(wxn && el1W)) perm |= P_X1;
      this.walkPerm = perm;
      this.walkShift = shift;
      this.walkLevel = level;
      this.walkGlobal = (dlo & 0x800) === 0; // nG
      this.walkAttrIdx = (dlo >>> 2) & 7;
      this.walkSh = (dlo >>> 8) & 3;
      const blockMask = 2 ** shift;
      return oa - (oa % blockMask) + (va % blockMask);
    }
  }

  /**
   * Address translation for AT S1E*: the stage-1 output address of (lo, hi) for `acc` with the permissions of
   * EL0 (el0) or EL1, without filling the TLB or throwing. Returns -1 on a fault, with faultStatus (and
   * faultStage2 for a stage-2 fault on a table walk) set. walkAttrIdx/walkSh describe the mapping.
   */
  probe(lo: number, hi: number, acc: number, el0: boolean): number {
    if ((this.sctlr & 1) === 0) {
      this.walkAttrIdx = -1; this.walkSh = 2; // MMU off: Device-nGnRnE, outer shareable (D5.2.9)
      if ((hi >>> 16) !== 0) { this.faultStatus = FSC_ADDR_SIZE_L0; this.faultStage2 = 0; return -1; }
      return (hi >>> 0) * TWO32 + (lo >>> 0);
    }
    try {
      const pa = this.walk(lo, hi, acc);
      const need = acc === ACC_READ ? (el0 ? P_R0 : P_R1) : acc === ACC_WRITE ? (el0 ? P_W0 : P_W1) : (el0 ? P_X0 : P_X1);
      if ((this.walkPerm & need) === 0) { this.faultStatus = FSC_PERM_L0 + this.walkLevel; this.faultStage2 = 0; return -1; }
      return pa;
    } catch (e) {
      if (e !== MMU_FAULT) throw e;
      return -1;
    }
  }

  /**
   * DC ZVA: zeroes the naturally aligned block of `size` bytes (a power of two <= 4096) holding (lo, hi),
   * with write permission. Faults as a write (WnR = 1) at (lo, hi); a block outside RAM (Device memory or
   * nothing) gives an Alignment fault, as DC ZVA to Device memory does (Arm ARM C6.2.81).
   */
  zeroBlock(lo: number, hi: number, size: number): void {
    const x = ((lo >>> 12) ^ (hi >>> 2)) & TLB_MASK;
    let off = -1;
    if (this.tagLo[x] === (lo & -4096) && this.tagHi[x] === hi && (this.tlbPerm[x] & this.mW) !== 0) {
      const a = this.tlbAsid[x];
      if (a === -1 || a === this.asid) off = this.tlbOff[x] + (lo & 0xfff);
    }
    if (off < 0) {
      off = this.translate(lo, hi, ACC_WRITE);
      if (off < 0) this.fault(lo, hi, ACC_WRITE, FSC_ALIGN);
      if (this.codePage[off >>> 12]) this.onCodeWrite(off >>> 12);
    }
    off -= lo & (size - 1);
    // Word stores: cheaper than a TypedArray.fill call for the 64-byte blocks of clear_page/memset.
    const i32 = this.i32;
    for (let k = off >> 2, e = (off + size) >> 2; k < e; k++) i32[k] = 0;
  }

  /** ASID width mask per TCR_EL1.AS (bit 36): 16 or 8 bits. */
  get asidMask(): number { return (this.tcrHi >>> 4) & 1 ? 0xffff : 0xff; }

  // ---------------------------------------------------------------------------------------------------------
  // TLB maintenance (TLBI), Arm ARM D5.10

  flushAll(): void {
    this.mPerm.fill(0);
    this.tlbPerm.fill(0);
    this.blockFirst = Infinity;
    this.blockEnd = -Infinity;
    this.block2First = Infinity;
    this.block2End = -Infinity;
  }

  /** TLBI ASIDE1: non-global entries of one ASID. */
  flushAsid(asid: number): void {
    this.mPerm.fill(0);
    for (let x = 0; x < TLB_SIZE; x++) if (this.tlbAsid[x] === asid) this.tlbPerm[x] = 0;
  }

  /**
   * TLBI VAE1 / VAAE1 / VALE1: entries translating the page of VA (lo, hi); asid = -2 for all ASIDs (VAA),
   * else that ASID's entries and global ones. Entries filled from blocks covering the VA go too. The top byte
   * is not compared (tagged addresses may have filled entries under any tag).
   */
  flushVa(lo: number, hi: number, asid: number): void {
    this.mPerm.fill(0);
    const hiM = hi & 0x00ffffff;
    const vp = hiM * 1048576 + (lo >>> 12);
    const sh = this.tlbShift;
    if (vp < this.blockFirst || vp >= this.blockEnd) {
      if (vp < this.block2First || vp >= this.block2End) {
        this.flushSlot(((lo >>> 12) ^ (hi >>> 2)) & TLB_MASK, lo, hiM, asid, -4096); // 4K entries only: the VA's own slot
        return;
      }
      // Entries for any 4 KiB page of the VA's 2 MiB region: the slots of its 512 pages (the slot does not
      // depend on the top byte, so tagged aliases are among them). Entries from 4 KiB pages compare 4 KiB.
      const p0 = (lo & -0x200000) >>> 12, hx = hi >>> 2;
      for (let p = p0; p < p0 + 512; p++) {
        const x = (p ^ hx) & TLB_MASK;
        this.flushSlot(x, lo, hiM, asid, sh[x] === 12 ? -4096 : -0x200000);
      }
      return;
    }
    for (let x = 0; x < TLB_SIZE; x++) {
      const s = sh[x];
      this.flushSlot(x, lo, hiM, asid, s === 12 ? -4096 : s === 21 ? -0x200000 : -0x40000000);
    }
  }

  private flushSlot(x: number, lo: number, hiM: number, asid: number, mask: number): void {
    if (this.tlbPerm[x] === 0) return;
    const a = this.tlbAsid[x];
    if (asid !== -2 && a !== -1 && a !== asid) return;
    if ((this.tagHi[x] & 0x00ffffff) === hiM && ((this.tagLo[x] ^ lo) & mask) === 0) this.tlbPerm[x] = 0;
  }

  /**
   * After the hypervisor unmapped frames in stage-2 map `s2` (this MMU's `stage2`): drops every TLB entry
   * whose frame is no longer mapped, so the next access walks and faults (MMIO TLB entries are never RAM).
   * One pass over the TLB (16 K entries) however many frames went: once per batch, on every MMU of the domain.
   */
  dropUnmapped(s2: Stage2Map): void {
    const perm = this.tlbPerm, off = this.tlbOff;
    for (let x = 0; x < TLB_SIZE; x++) if (perm[x] !== 0 && s2[off[x] >>> 12] === 0) perm[x] = 0;
  }

  /** A dirty-logging round (see `dirty`): no entry keeps write permission, so the next write to any page marks it. */
  dropWrite(): void {
    const perm = this.tlbPerm;
    for (let x = 0; x < TLB_SIZE; x++) perm[x] &= ~(P_W0 | P_W1);
  }

  /** Takes write permission from TLB entry x (see onWriteFill). */
  dropWriteAt(x: number): void { this.tlbPerm[x] &= ~(P_W0 | P_W1); }

  /** Marks a RAM page as holding decoded instructions: removes write permission from TLB entries for it. */
  markCode(page: number): void {
    if (this.codePage[page]) return;
    this.codePage[page] = 1;
    const off = page << 12;
    for (const m of this.peers) {
      for (let x = 0; x < TLB_SIZE; x++) if (m.tlbOff[x] === off) m.tlbPerm[x] &= ~(P_W0 | P_W1);
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Physical access for the hypervisor, loaders and tests (not guest-visible paths).

  physOffset(pa: number, len: number): number {
    const off = pa - this.ramBase;
    if (off < 0 || len < 0 || off + len > this.ramSize) throw new RangeError(`physical range ${pa.toString(16)}+${len} outside RAM`);
    return off;
  }
}
