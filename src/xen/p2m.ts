/**
 * A domain's P2M (physical-to-machine map), reduced to what Xeno's memory model has. A domain's memory is one
 * buffer and guest-physical address = buffer offset + RAM base, so there is no translation to keep: the P2M
 * says, per 4 KiB frame, whether the frame is in the guest's physical address space (mapped) or not, and
 * counts the frames the domain holds (Xen's tot_pages / max_pages) against the hypervisor's frame account.
 *
 * `map` is also the stage-2 map of every vCPU's MMU (Mmu.stage2): a guest load, store, instruction fetch or
 * page-table walk that reaches an unmapped frame takes a stage-2 fault, which the hypervisor injects into the
 * guest as an abort (stage2-abort.ts). Host-side accesses where the guest names the address (hypercall
 * buffers, grant references, shared_info/vcpu_info frames) check the same map through GuestMemory.
 *
 * Frames enter and leave through the balloon sub-ops (memory-op.ts, after xen/common/memory.c):
 *  - release (XENMEM_decrease_reservation): the frames are unmapped, zeroed (Xen scrubs freed pages; here only
 *    frames that hold data are written, see scrub) and given back to the account; their decoded instructions
 *    are dropped at once, their TLB entries by flushTlbs().
 *  - populate (XENMEM_populate_physmap): frames are claimed from the account, zeroed and mapped again.
 * Both are all-or-nothing per extent and refuse frames outside the RAM the device tree describes. What this
 * does not do (and cannot, with one buffer per domain): give the host pages back early — a released frame's
 * bytes stay allocated until the domain ends (docs/memory.md).
 *
 * The Xen area above RAM (grant window, magic pages; layout.ts) is always mapped and never counted.
 */
import { XEN_PAGE_SIZE } from "./abi.js";
import type { Mmu } from "../mmu/mmu.js";
import { StateError, stateBytes, stateInt, stateVersion } from "../common/state.js";

/** A saved P2M: which frames are mapped, tot_pages and max_pages (the frames' bytes are RAM, saved with it). */
export interface P2mState {
  version: 1;
  pages: number;
  maxPages: number;
  /** One byte per frame of the buffer (1 mapped, 0 given back), as P2m.map. */
  map: Uint8Array;
}

/**
 * The hypervisor's machine-frame account a domain's frames come from and go back to (src/hv/frame-pool.ts
 * FramePool satisfies it): claim is all or nothing, release gives back frames claimed before.
 */
export interface FrameAccount {
  claim(n: number): boolean;
  release(n: number): void;
  readonly freeFrames: number;
}

/** Why a release or populate was refused (the balloon sub-ops stop their batch there). */
export const P2M_OK = 0, P2M_NOT_RAM = -1, P2M_NOT_MAPPED = -2, P2M_MAPPED = -3, P2M_OVER_MAX = -4, P2M_NO_FRAMES = -5;

export class P2m {
  /** One byte per 4 KiB frame of the domain's buffer: 1 = mapped, 0 = not in the guest's address space. */
  readonly map: Uint8Array;
  /**
   * The vCPUs' stage-2 map (Mmu.stage2, indexed by the MMU's page numbers): `map` itself, or on a firmware board
   * (flash before RAM in the domain memory: constructor `mmuPageOffset`) the flash's pages, always mapped,
   * followed by `map` (a view of the same shared bytes).
   */
  readonly stage2Map: Uint8Array;
  /** The MMUs' page number of this map's frame 0. */
  private readonly mmuPageOffset: number;
  /** First guest frame of RAM and the number of RAM frames (the DT memory node). */
  readonly firstGfn: number;
  readonly ramFrames: number;
  /** Frames the domain holds (tot_pages: the mapped RAM frames) and may hold (max_pages; xl mem-max). */
  pages: number;
  maxPages: number;

  /** Frames scrubbed that held data, and frames found zero already (left untouched: see scrub). */
  scrubbedFrames = 0;
  zeroFrames = 0;
  private readonly i32: Int32Array;

  /**
   * `u8`: the domain's RAM buffer at guest-physical `base`, of which the first `ramBytes` are RAM (fully
   * populated at creation; the creator has claimed those frames from `account` already).
   */
  constructor(u8: Uint8Array, base: number, ramBytes: number, readonly account: FrameAccount | null, mmuPageOffset = 0) {
    if (base % XEN_PAGE_SIZE !== 0 || ramBytes % XEN_PAGE_SIZE !== 0 || ramBytes > u8.length || u8.length % XEN_PAGE_SIZE !== 0) {
      throw new RangeError(`P2M: RAM ${ramBytes} bytes at ${base.toString(16)} does not fit a ${u8.length}-byte buffer in frames`);
    }
    this.i32 = new Int32Array(u8.buffer, u8.byteOffset, u8.length >> 2);
    // Shared: vCPUs of the domain running on other threads read it as their stage 2 (src/machine/remote-vcpu.ts).
    this.mmuPageOffset = mmuPageOffset;
    this.stage2Map = new Uint8Array(new SharedArrayBuffer(mmuPageOffset + u8.length / XEN_PAGE_SIZE)).fill(1);
    this.map = this.stage2Map.subarray(mmuPageOffset);
    this.firstGfn = base / XEN_PAGE_SIZE;
    this.ramFrames = ramBytes / XEN_PAGE_SIZE;
    this.pages = this.ramFrames;
    this.maxPages = this.ramFrames;
  }

  save(): P2mState {
    return { version: 1, pages: this.pages, maxPages: this.maxPages, map: this.map.slice() };
  }

  /**
   * Loads a saved P2M of a domain of the same size (StateError, nothing changed, otherwise): every byte 0 or 1,
   * the Xen area mapped, `pages` equal to the mapped RAM frames. The frames it holds stay claimed by the caller
   * (a domain moving threads keeps its claim; a restore from a file claims `pages` first). The caller flushes
   * the TLBs of its MMUs before the guest runs (the map is every MMU's stage 2).
   */
  restore(state: P2mState): void {
    const C = "p2m";
    const s = stateVersion(C, state, 1);
    const map = stateBytes(C, "map", s.map, this.map.length);
    let mapped = 0;
    for (let k = 0; k < map.length; k++) {
      const b = map[k]!;
      if (b > 1) throw new StateError(C, `map[${k}]`, `${b} is not 0 or 1`);
      if (k < this.ramFrames) mapped += b;
      else if (b !== 1) throw new StateError(C, `map[${k}]`, "a frame of the Xen area must stay mapped");
    }
    const pages = stateInt(C, "pages", s.pages, mapped, mapped);
    const maxPages = stateInt(C, "maxPages", s.maxPages, 0, 0x7fffffff);
    this.map.set(map);
    this.pages = pages;
    this.maxPages = maxPages;
  }

  /** True if frames gfn..gfn+n-1 are all RAM (mapped or not). */
  isRam(gfn: number, n = 1): boolean {
    return Number.isSafeInteger(gfn) && Number.isInteger(n) && n >= 1 && gfn >= this.firstGfn &&
      gfn - this.firstGfn + n <= this.ramFrames;
  }

  /** True if guest frame `gfn` is in the buffer and mapped (RAM in the P2M, or the Xen area). */
  isMapped(gfn: number): boolean {
    const k = gfn - this.firstGfn;
    return Number.isSafeInteger(k) && k >= 0 && k < this.map.length && this.map[k] !== 0;
  }

  /** RAM frames not mapped now (given back by the balloon). */
  get releasedFrames(): number { return this.ramFrames - this.pages; }

  /**
   * Takes frames gfn..gfn+n-1 out of the guest's address space: every one must be mapped RAM (P2M_NOT_RAM /
   * P2M_NOT_MAPPED otherwise, nothing changed). They are zeroed, their decoded code on `mmus` is dropped, and
   * they go back to the account. The caller runs flushTlbs(mmus) before the guest runs again.
   */
  release(gfn: number, n: number, mmus: readonly Mmu[]): number {
    if (!this.isRam(gfn, n)) return P2M_NOT_RAM;
    const first = gfn - this.firstGfn, map = this.map;
    for (let k = first; k < first + n; k++) if (map[k] === 0) return P2M_NOT_MAPPED;
    map.fill(0, first, first + n);
    this.scrub(first, n);
    // Decoded instructions of these frames must not run again if they are populated later (then zeroed).
    const at = this.mmuPageOffset;
    for (const m of mmus) {
      for (let k = first + at; k < first + n + at; k++) if (m.codePage[k] !== 0) m.onCodeWrite(k);
    }
    this.pages -= n;
    this.account?.release(n);
    return P2M_OK;
  }

  /**
   * Puts frames gfn..gfn+n-1 back: every one must be RAM that is not mapped (P2M_NOT_RAM / P2M_MAPPED), the
   * domain must stay within maxPages (P2M_OVER_MAX) and the account must have n free frames (P2M_NO_FRAMES).
   * They come back zeroed (they were zeroed when released; zeroed again in case the host wrote them).
   */
  populate(gfn: number, n: number): number {
    if (!this.isRam(gfn, n)) return P2M_NOT_RAM;
    const first = gfn - this.firstGfn, map = this.map;
    for (let k = first; k < first + n; k++) if (map[k] !== 0) return P2M_MAPPED;
    if (this.pages + n > this.maxPages) return P2M_OVER_MAX;
    if (this.account !== null && !this.account.claim(n)) return P2M_NO_FRAMES;
    this.scrub(first, n);
    map.fill(1, first, first + n);
    this.pages += n;
    return P2M_OK;
  }

  /**
   * Zeroes buffer frames first..first+n-1, writing only frames that are not zero already. Writing zeros makes
   * a page the guest never touched resident (the host's anonymous mapping commits it on the first write, and
   * reading it does not), so a balloon giving back untouched memory costs the host nothing (docs/memory.md).
   */
  private scrub(first: number, n: number): void {
    const i32 = this.i32, words = XEN_PAGE_SIZE >> 2;
    for (let f = first; f < first + n; f++) {
      const w0 = f * words;
      let k = w0;
      while (k < w0 + words && i32[k] === 0) k++;
      if (k === w0 + words) { this.zeroFrames++; continue; }
      i32.fill(0, k, w0 + words); // words before k are zero already
      this.scrubbedFrames++;
    }
  }

  /**
   * After releases: every MMU of the domain drops its TLB entries for unmapped frames (one pass each). `mmus`
   * are those of this thread; tlbFlushes counts the calls, so the platform can have vCPUs on other threads do
   * the same before the hypercall returns (src/hv/machine.ts).
   */
  flushTlbs(mmus: readonly Mmu[]): void {
    for (const m of mmus) m.dropUnmapped(this.stage2Map);
    this.tlbFlushes++;
  }

  tlbFlushes = 0;
}
