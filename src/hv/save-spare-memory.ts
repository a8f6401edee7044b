/**
 * A spare domain memory for the next restore: the memory of a domain that was saved (to a file, or a live
 * migration's stream) and then destroyed, zeroed again in the background and kept for a while, so that a
 * restore of the same size reads its pages into memory the process has already faulted in.
 *
 * Why: a restore into a new `WebAssembly.Memory` pays one page fault per page it writes (12,500 for an idle
 * 256 MiB guest: 22–36 ms of CPU on a quiet host, 130–160 ms on a freshly booted VM of this host where the
 * second-level faults are slow; docs/benchmarks.md, sessions 23 and 25), all of it on the restore's critical
 * path. Xen does the same with a domain's freed pages: it scrubs them (in its idle loop) and gives them to the
 * next domain.
 *
 * Safety: a memory is offered only after its domain's Machine left its worker thread (DomainRunner.destroy
 * resolved: the worker let it go, or was terminated), and only when the domain stayed paused from its save to
 * its destroy (no vCPU ran, its back-ends drained by the save, net frames held in the worker), so nothing
 * writes it any more. The scrub zeroes every page that is not all zero — RAM, the vCPU state blocks, the TLB
 * and compiler areas after it — so a taken memory is as a new one: all zero (the reader relies on that:
 * save-format.ts writes an XALLOC page only when an earlier record gave it data). Pages that were never
 * touched read as zero and are not written, so the scrub does not fault them in. It runs in slices
 * (SCRUB_SLICE_PAGES, ~0.5 ms each) so the event loop stays responsive; a memory still being scrubbed is not
 * given out.
 *
 * Cost: the spare's resident pages (those the old domain touched: ~50–60 MiB for an idle 256 MiB guest) stay
 * in the hypervisor process until a restore takes it, a newer spare replaces it, or KEEP_MS pass. One at most.
 * XENO_SPARE_MEMORY=0 turns it off (every restore allocates a new memory), for A/B.
 */

/** How long a scrubbed spare is kept for a restore before it is let go (the GC then frees it). */
const KEEP_MS = 60_000;
/** Pages zeroed (marked RAM pages) or scanned (the rest) per slice of the scrub: ~0.5 ms each. */
const SCRUB_SLICE_PAGES = 1024;
const PAGE = 4096;

export const SPARE_MEMORY = process.env.XENO_SPARE_MEMORY !== "0";

/**
 * A memory being scrubbed: pages below `scanFrom` are zeroed where `dataMap` marks them, pages from `scanFrom`
 * to the end are read and zeroed where not zero; `at` is the next page to look at.
 */
interface Spare { memory: WebAssembly.Memory; u8: Uint8Array; u32: Uint32Array; dataMap: Uint8Array; scanFrom: number; at: number; ready: boolean; timer: NodeJS.Timeout | null }

export class SpareMemory {
  private spare: Spare | null = null;
  /** Restores that took the spare, and of them those that finished its scrub first. */
  taken = 0;
  finishedOnTake = 0;

  constructor(private readonly enabled = SPARE_MEMORY, private readonly keepMs = KEEP_MS) {}

  /** Bytes held (resident or not) by the spare, 0 when there is none. */
  get bytes(): number { return this.spare?.memory.buffer.byteLength ?? 0; }

  /**
   * A memory nothing writes any more (see the safety note above) whose RAM (`dataMap.length` pages from offset
   * 0) was all zero at its save but for the pages marked in `dataMap` (the save's SaveStreamWriter.dataMap).
   * The domain stayed paused from the save to its destroy, so only the host can have written RAM since, and
   * only in the pages it writes in place (XenDomain.hostPages: the Xen area at the top of RAM — grant frames,
   * console and store rings —, shared_info and vcpu_info, which hold data in a guest that ran, and ring pages
   * granted to back-ends, which the save drained): the marked pages below the last `scanBytes` of RAM are
   * zeroed without reading them, and the last `scanBytes` of RAM and the tail after it (vCPU state blocks,
   * TLBs, the compiler's area) are read and zeroed where not zero. In slices; then kept for the next restore of
   * its size. Replaces an older spare.
   */
  offer(memory: WebAssembly.Memory, dataMap: Uint8Array, scanBytes: number): void {
    if (!this.enabled) return;
    const ramBytes = dataMap.length * PAGE;
    if (ramBytes > memory.buffer.byteLength || scanBytes % PAGE !== 0 || scanBytes > ramBytes) return; // not a domain memory as saved
    this.drop();
    const s: Spare = { memory, u8: new Uint8Array(memory.buffer), u32: new Uint32Array(memory.buffer), dataMap,
      scanFrom: (ramBytes - scanBytes) / PAGE, at: 0, ready: false, timer: null };
    this.spare = s;
    const slice = (): void => {
      if (this.spare !== s || s.ready) return; // replaced, dropped or taken meanwhile
      if (!this.step(s, SCRUB_SLICE_PAGES)) { setImmediate(slice); return; }
      s.timer = setTimeout(() => { if (this.spare === s) this.spare = null; }, this.keepMs);
      s.timer.unref();
    };
    setImmediate(slice);
  }

  /**
   * The spare if it has exactly `bytes` (it is then the caller's: all zero, its scrub finished here if the
   * slices had not yet), else null (the caller allocates a new memory).
   */
  take(bytes: number): WebAssembly.Memory | null {
    const s = this.spare;
    if (s === null || s.memory.buffer.byteLength !== bytes) return null;
    if (!s.ready) { this.step(s, Infinity); this.finishedOnTake++; }
    this.drop();
    this.taken++;
    return s.memory;
  }

  /** Lets the spare go (the hypervisor closing). */
  drop(): void {
    if (this.spare?.timer) clearTimeout(this.spare.timer);
    this.spare = null;
  }

  /** Scrubs up to `pages` pages' worth of `s`; whether it is all zero now. */
  private step(s: Spare, pages: number): boolean {
    const end = s.u8.length / PAGE;
    for (; pages > 0 && s.at < s.scanFrom; s.at++) {
      if (s.dataMap[s.at] === 1) { s.u8.fill(0, s.at * PAGE, (s.at + 1) * PAGE); pages--; }
    }
    for (; pages > 0 && s.at < end; s.at++, pages--) scrub(s.u8, s.u32, s.at * PAGE, (s.at + 1) * PAGE);
    s.ready = s.at >= end;
    return s.ready;
  }
}

/**
 * Zeroes the pages of [from, to) (page-aligned) that are not all zero; returns `to`. Reads 32-bit words, eight
 * ORed per test (as save-format.ts's zero check): a page that is zero is read once and not written.
 */
export function scrub(u8: Uint8Array, u32: Uint32Array, from: number, to: number): number {
  for (let pg = from; pg < to; pg += PAGE) {
    for (let i = pg >>> 2, e = (pg + PAGE) >>> 2; i < e; i += 8) {
      if ((u32[i]! | u32[i + 1]! | u32[i + 2]! | u32[i + 3]! | u32[i + 4]! | u32[i + 5]! | u32[i + 6]! | u32[i + 7]!) !== 0) {
        u8.fill(0, pg, pg + PAGE);
        break;
      }
    }
  }
  return to;
}
