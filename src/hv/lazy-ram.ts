/**
 * A lazy restore's page loader (docs/save-restore.md, "The lazy restore"). The save file was read and checked
 * whole first (save-jobs.ts checkJob: every record, the stream's CRC-32), but its pages with data were not
 * written into the new domain memory: each page's file offset and CRC-32 were recorded instead, and its state
 * word set to ABSENT. The domain then runs, and a page is loaded the first time anything touches it — a vCPU's
 * TLB fill or table walk (Mmu.lazyLoad, routed by the stage-2 value STAGE2_LAZY), a host path resolving a guest
 * frame (GuestMemory.frameOffset / physOffset) — or by the hypervisor's main thread in the background.
 *
 * Any thread may load a page: the state word is taken ABSENT → LOADING with a compare-and-swap, the page read
 * from the file (pread on the descriptor every thread shares), its CRC-32 compared with the one recorded at the
 * check (a file changed since fails: the page is never used), copied into place, and the word stored LOADED
 * (waiters woken). A thread finding LOADING waits on the word. So no page's contents are used unchecked, and
 * each is written once, before anything reads it.
 */
import { readSync } from "node:fs";
import { crc32 } from "node:zlib";
import { PAGE_ABSENT, PAGE_FAILED, PAGE_LOADED, PAGE_LOADING, type LazyTables } from "./save-jobs.js";
import type { PageLoader } from "../xen/guest-memory.js";
import type { XenDomain } from "../xen/domain.js";
import type { Board } from "../machine/board.js";
import { setLazyLoader } from "../mmu/mmu.js";

/** The stage-2 byte of a page not loaded yet: mapped (≠ 0) for every P2M check, but not 1, so fills route to the loader. */
export const STAGE2_LAZY = 2;

/** What a worker is sent to load pages of the domain memory (structured-clone: buffers stay shared). */
export interface LazyRamMessage extends LazyTables {
  fd: number;
  memory: SharedArrayBuffer;
  /** Int32 words: LOADED_COUNT (pages loaded so far), TOTAL (pages absent after the check), FAILED (a page failed). */
  ctl: SharedArrayBuffer;
}

const LOADED_COUNT = 0, TOTAL = 1, FAILED = 2;

/** A page whose file bytes could not be read or no longer match the check: the domain cannot go on. */
export class LazyLoadError extends Error {
  readonly code = "LAZY_LOAD";
  constructor(readonly page: number, why: string) {
    super(`page ${page} of the lazily restored memory: ${why} (the save file changed or became unreadable after it was checked)`);
  }
}

export class LazyRam implements PageLoader {
  private readonly state: Int32Array;
  private readonly crcs: Int32Array;
  private readonly offs: Float64Array;
  private readonly ctl: Int32Array;
  private readonly mem: Uint8Array;
  private readonly scratch = new Uint8Array(4096);
  /** The next page the background loader looks at. */
  private cursor = 0;
  /** Pages this side loaded (for reports). */
  loadedHere = 0;

  constructor(readonly m: LazyRamMessage) {
    this.state = new Int32Array(m.state);
    this.crcs = new Int32Array(m.crcs);
    this.offs = new Float64Array(m.offs);
    this.ctl = new Int32Array(m.ctl);
    this.mem = new Uint8Array(m.memory);
  }

  /** Makes a message for the tables of a checked file (the main thread: counts the pages left absent). */
  static message(fd: number, memory: SharedArrayBuffer, t: LazyTables): LazyRamMessage {
    const ctl = new Int32Array(new SharedArrayBuffer(3 * 4));
    const state = new Int32Array(t.state);
    let n = 0;
    for (let p = 0; p < state.length; p++) if (state[p] === PAGE_ABSENT) n++;
    ctl[TOTAL] = n;
    return { ...t, fd, memory, ctl: ctl.buffer as SharedArrayBuffer };
  }

  get total(): number { return this.ctl[TOTAL]!; }
  get loaded(): number { return Atomics.load(this.ctl, LOADED_COUNT); }
  get done(): boolean { return this.loaded >= this.total; }
  get failed(): boolean { return Atomics.load(this.ctl, FAILED) !== 0; }

  /** True while buffer page `p` has not been loaded (it is absent or being loaded). */
  absent(p: number): boolean { return p >= 0 && p < this.state.length && Atomics.load(this.state, p) !== PAGE_LOADED; }

  /** Buffer page `p` holds its saved bytes when this returns (loaded here or by another thread); throws LazyLoadError. */
  ensure(p: number): void {
    const st = this.state;
    if (p < 0 || p >= st.length) return;
    let s = Atomics.load(st, p);
    if (s === PAGE_LOADED) return;
    if (s === PAGE_ABSENT && Atomics.compareExchange(st, p, PAGE_ABSENT, PAGE_LOADING) === PAGE_ABSENT) { this.load(p); return; }
    while ((s = Atomics.load(st, p)) === PAGE_LOADING) Atomics.wait(st, p, PAGE_LOADING, 1000);
    if (s === PAGE_FAILED) throw new LazyLoadError(p, "its load failed");
  }

  /** ensure() for every page of buffer bytes [off, off + len). */
  ensureRange(off: number, len: number): void {
    if (len <= 0) return;
    const last = Math.floor((off + len - 1) / 4096);
    for (let p = Math.floor(off / 4096); p <= last; p++) this.ensure(p);
  }

  /** Loads every page still absent (a save, a migration, a move, the dirty log: they read RAM whole). */
  loadAll(): void {
    for (let p = 0; p < this.state.length; p++) if (this.state[p] !== PAGE_LOADED) this.ensure(p);
  }

  /**
   * The background's step: loads up to `max` absent pages from where the last step ended, skipping pages
   * another thread is loading. Returns the pages it loaded; throws LazyLoadError as ensure.
   */
  loadSome(max: number): number {
    const st = this.state;
    let n = 0;
    while (n < max && this.cursor < st.length) {
      const p = this.cursor++;
      if (st[p] === PAGE_ABSENT && Atomics.compareExchange(st, p, PAGE_ABSENT, PAGE_LOADING) === PAGE_ABSENT) { this.load(p); n++; }
    }
    return n;
  }

  /** True when the background has looked at every page (some may still be loading on other threads). */
  get swept(): boolean { return this.cursor >= this.state.length; }

  private load(p: number): void {
    const buf = this.scratch;
    let why = "";
    try {
      let n = 0;
      while (n < 4096) { const k = readSync(this.m.fd, buf, n, 4096 - n, this.offs[p]! + n); if (k === 0) break; n += k; }
      if (n < 4096) why = `the file ends inside it (${n} of 4096 bytes)`;
      else if ((crc32(buf) | 0) !== this.crcs[p]) why = "its CRC-32 no longer matches the one checked";
    } catch (e) {
      why = `read failed: ${(e as Error).message}`;
    }
    if (why !== "") {
      Atomics.store(this.ctl, FAILED, 1);
      Atomics.store(this.state, p, PAGE_FAILED);
      Atomics.notify(this.state, p);
      throw new LazyLoadError(p, why);
    }
    this.mem.set(buf, p * 4096);
    Atomics.store(this.state, p, PAGE_LOADED);
    Atomics.add(this.ctl, LOADED_COUNT, 1);
    Atomics.notify(this.state, p);
    this.loadedHere++;
  }
}

/**
 * Hands `lazy` to a Xen domain being restored, once its P2M is loaded and before anything of its Xen state or
 * back-ends is restored: host paths load through GuestMemory.lazy; each absent page the P2M maps gets the
 * stage-2 byte STAGE2_LAZY, so a vCPU's first fill or walk of it loads it (Mmu.lazyLoad); an absent page the P2M
 * does not map (the balloon had it) is loaded now, so no later load can land over a page populated again.
 * A memory whose RAM does not start at byte 0 (a firmware board) is loaded whole.
 */
export function attachLazyRam(lazy: LazyRam, xen: XenDomain, board: Board): void {
  if (xen.mem.mmuPageOffset !== 0) { lazy.loadAll(); return; }
  xen.mem.lazy = lazy;
  const map = xen.account.map, s2 = xen.account.stage2Map;
  for (let p = 0; p < map.length; p++) {
    if (!lazy.absent(p)) continue;
    if (map[p] === 1) s2[p] = STAGE2_LAZY; else lazy.ensure(p);
  }
  setLazyLoader(s2, (i) => { lazy.ensure(i); Atomics.compareExchange(s2, i, STAGE2_LAZY, 1); });
  board.setStage2(s2); // before the restore below can walk a guest table (vaOffset): its pages load on the walk
}

/**
 * Loads every page still absent and takes the loader off (a save, a move, a migration's dirty log: they read
 * RAM whole, and the P2M saved must hold 0/1 only).
 */
export function finishLazyRam(lazy: LazyRam, xen: XenDomain): void {
  lazy.loadAll();
  const s2 = xen.account.stage2Map;
  for (let i = 0; i < s2.length; i++) if (s2[i] === STAGE2_LAZY) Atomics.compareExchange(s2, i, STAGE2_LAZY, 1);
  xen.mem.lazy = null;
  setLazyLoader(s2, null);
}

/** Pages the background loads per turn of the main thread's event loop (~5 ms at ~20 µs a page on this host). */
const BACKGROUND_SLICE_PAGES = 256;
/** How long the background waits for pages other threads are loading before it gives up on them. */
const STALL_MS = 30_000;

/**
 * The hypervisor main thread's background load of a lazy restore (after the domain's first slice): absent
 * pages in order, BACKGROUND_SLICE_PAGES per turn of the event loop (setImmediate), so requests are served
 * between; pages other threads are loading are left to them, and the end waits for them (their count). The
 * file is closed once every page is in — no thread can read it then — or, after a failure, by `onFail`'s caller
 * (once the domain is gone). Returns a function that says how far it is.
 */
export function loadInBackground(m: LazyRamMessage, fh: { close(): Promise<void> },
  done: (r: { ms: number; here: number; total: number }) => void, fail: (e: Error, close: () => Promise<void>) => void): () => { loaded: number; total: number } {
  const ram = new LazyRam(m);
  const t0 = performance.now();
  const close = (): Promise<void> => fh.close().catch(() => undefined);
  let lastLoaded = -1, stalledSince = performance.now();
  const step = (): void => {
    try {
      ram.loadSome(BACKGROUND_SLICE_PAGES);
    } catch (e) {
      fail(e as Error, close);
      return;
    }
    if (!ram.swept) { setImmediate(step); return; }
    if (ram.failed) { fail(new LazyLoadError(-1, "a page failed on another thread"), close); return; }
    if (!ram.done) {
      // A page another thread is loading. One that never ends (its thread was terminated inside the load: the
      // domain is gone) would keep this waiting: after STALL_MS without progress no thread reads any more.
      const n = ram.loaded;
      if (n !== lastLoaded) { lastLoaded = n; stalledSince = performance.now(); }
      if (performance.now() - stalledSince > STALL_MS) { fail(new LazyLoadError(-1, `no page loaded for ${STALL_MS} ms`), close); return; }
      setTimeout(step, 2);
      return;
    }
    void close();
    done({ ms: performance.now() - t0, here: ram.loadedHere, total: ram.total });
  };
  setImmediate(step);
  return () => ({ loaded: ram.loaded, total: ram.total });
}
