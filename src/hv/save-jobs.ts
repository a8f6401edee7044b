/**
 * A save file's page data read by two threads at once (docs/save-format.md, "Reading a file"): the reader
 * (save-format.ts) checks every record header and pfn list first and leaves each PAGE_DATA record's pages as
 * a job — a file offset and the places in the new domain memory its bytes go — and then the hypervisor's main
 * thread and a helper (a worker thread with no domain in it: vm-worker.ts) take jobs from one shared counter,
 * each reading its jobs with readv straight into the memory (the kernel copies from the page cache and faults
 * the fresh pages in: most of a restore's CPU, docs/benchmarks.md) and computing their CRC-32. The stream's
 * checksum is then the CRC-32s of its pieces combined in order (crc32Combine), so nothing is read twice.
 *
 * The helper is optional and may come late (a thread still loading takes nothing: the counter is past the
 * last job when it looks); the main thread runs whatever the helper did not take. The file descriptor stays
 * open until every job a helper took has ended (the caller waits: PageJobs.finish), so a helper never reads
 * a descriptor closed or reused under it. A job that reads short (the file was truncated after it was
 * checked) or fails reports it in its result words; the reader turns that into SAVE_TRUNCATED / EIO.
 */
import { readSync, readvSync } from "node:fs";
import { crc32 } from "node:zlib";

/** Words of the control array (Int32Array over `ctl`). */
const NEXT = 0; // the next job to take (Atomics.add); ≥ count: none left
const HELPER_DONE = 1; // jobs the helper ended (Atomics.add + notify)
const CTL_WORDS = 2;

/** Per job in `jobs` (Float64Array): file offset, stream offset, first run, end run, bytes. */
const JOB_WORDS = 5;
/** Per job in `results` (Int32Array): status, CRC-32 of its bytes, bytes read. */
const RES_WORDS = 3;
export const JOB_PENDING = 0, JOB_OK = 1, JOB_SHORT = 2, JOB_FAILED = 3;

/** What a helper thread is sent (structured-clone: shared buffers stay shared). */
export interface PageJobsMessage {
  fd: number;
  /** The domain memory's buffer (RAM from byte 0). */
  memory: SharedArrayBuffer;
  ctl: SharedArrayBuffer;
  jobs: SharedArrayBuffer;
  /** (byte offset in memory, length) pairs, Float64. */
  runs: SharedArrayBuffer;
  results: SharedArrayBuffer;
  count: number;
  /**
   * A lazy restore's check pass (lazy-ram.ts): the jobs' whole pages are not written into `memory` but read
   * into a scratch buffer, and each page's file offset and CRC-32 recorded for the loader (its state word set
   * to not loaded). A job's leading partial page (the rest of one the reader had buffered) is written as
   * before. Null: the pages go into the memory.
   */
  lazy: LazyTables | null;
}

/** Per buffer page of the domain memory: load state (Int32), CRC-32 (Int32) and file offset (Float64). */
export interface LazyTables { state: SharedArrayBuffer; crcs: SharedArrayBuffer; offs: SharedArrayBuffer }

/** lazy-ram.ts's page states (LazyTables.state). */
export const PAGE_LOADED = 0, PAGE_ABSENT = 1, PAGE_LOADING = 2, PAGE_FAILED = 3;

/** A job's outcome, read by the main thread once every job has ended. */
export interface JobResult { status: number; crc: number; got: number; bytes: number; streamPos: number; errno: number }

/** The jobs of one file read (main-thread side): added during the reader's pass, then run by two threads. */
export class PageJobs {
  private readonly jobList: number[] = [];
  private readonly runList: number[] = [];
  private sealed: PageJobsMessage | null = null;
  /** Jobs the main thread ran itself. */
  private mine = 0;
  /** Jobs run so far by settle() before the helper was offered any (they are not in the shared table). */
  private readonly early: JobResult[] = [];
  private firstShared = 0;
  private helperRan = 0;

  constructor(private readonly fd: number, private readonly memory: SharedArrayBuffer, private readonly lazy: LazyTables | null = null) {}

  get count(): number { return this.jobList.length / JOB_WORDS; }

  /** A job: `views` (of `memory`, in stream order) are filled from file offset `filePos` (stream offset `streamPos`). */
  add(filePos: number, streamPos: number, views: readonly Uint8Array[]): number {
    if (this.sealed !== null) throw new Error("PageJobs.add after the jobs were handed out");
    let bytes = 0;
    const first = this.runList.length / 2;
    for (const v of views) {
      if (v.buffer !== this.memory) throw new Error("PageJobs.add: a view outside the domain memory");
      this.runList.push(v.byteOffset, v.length);
      bytes += v.length;
    }
    this.jobList.push(filePos, streamPos, first, this.runList.length / 2, bytes);
    return this.count - 1;
  }

  /**
   * Runs every job added so far on this thread, now (the reader needs their pages written before it goes on:
   * a page the stream names again). Their results are kept for run().
   */
  runAllHere(): void {
    if (this.sealed !== null) throw new Error("PageJobs.runAllHere after the jobs were handed out");
    const n = this.count;
    if (this.firstShared === n) return;
    const m = { ...this.seal(this.firstShared), lazy: null }; // pages the stream names again: written now
    for (let i = 0; i < m.count; i++) runJob(m, i);
    const res = new Int32Array(m.results), jobs = new Float64Array(m.jobs);
    for (let i = 0; i < m.count; i++) this.early.push(resultOf(res, jobs, i));
    this.mine += m.count;
    this.firstShared = n;
  }

  /**
   * Runs the jobs not run yet: offers them to a helper (`offer`: posts the message to a thread with no domain
   * in it; null or false: none), takes and runs jobs here until none is left (letting the event loop run every
   * `yieldBytes`), then waits for those the helper took (`helperAlive` false: it ended, its jobs failed).
   * Returns every job's result in stream order.
   */
  async run(offer: ((m: PageJobsMessage) => boolean) | null, yieldBytes: number, helperAlive: () => boolean,
    deadlineMs: number): Promise<JobResult[]> {
    const m = this.seal(this.firstShared);
    this.sealed = m;
    const helped = m.count > 1 && offer !== null && offer(m);
    const ctl = new Int32Array(m.ctl);
    const jobs = new Float64Array(m.jobs);
    let since = 0, ranHere = 0;
    for (;;) {
      const i = Atomics.add(ctl, NEXT, 1);
      if (i >= m.count) break;
      runJob(m, i);
      ranHere++;
      since += jobs[i * JOB_WORDS + 4]!;
      if (since >= yieldBytes) { since = 0; await new Promise<void>((r) => setImmediate(r)); }
    }
    // NEXT is past the last job now: the helper takes no more; wait for those it took.
    if (helped) await this.waitHelper(m, m.count - ranHere, helperAlive, deadlineMs);
    this.mine += ranHere;
    this.helperRan = m.count - ranHere;
    const res = new Int32Array(m.results);
    const out = this.early.slice();
    for (let i = 0; i < m.count; i++) out.push(resultOf(res, jobs, i));
    return out;
  }

  /** Jobs the main thread ran, and the helper (after run). */
  get split(): { main: number; helper: number } { return { main: this.mine, helper: this.helperRan }; }

  private async waitHelper(m: PageJobsMessage, helperJobs: number, helperAlive: () => boolean, deadlineMs: number): Promise<void> {
    const ctl = new Int32Array(m.ctl);
    const end = performance.now() + deadlineMs;
    for (;;) {
      const done = Atomics.load(ctl, HELPER_DONE);
      if (done >= helperJobs) return;
      if (!helperAlive()) throw ioError("the helper thread reading the save file ended before its part was read");
      const left = end - performance.now();
      if (left <= 0) throw ioError(`the helper thread reading the save file did not end its part in ${deadlineMs} ms`);
      const ms = Math.min(left, 100);
      const w = waitAsync(ctl, HELPER_DONE, done, ms);
      if (w.async) {
        // A pending Atomics.waitAsync does not keep Node's event loop alive: a timer beside it does.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([w.value, new Promise<void>((r) => { timer = setTimeout(r, ms); })]);
        clearTimeout(timer);
      }
    }
  }

  private seal(from: number): PageJobsMessage {
    const count = this.count - from;
    const jobs = new Float64Array(new SharedArrayBuffer(Math.max(1, count) * JOB_WORDS * 8));
    jobs.set(this.jobList.slice(from * JOB_WORDS));
    const runs = new Float64Array(new SharedArrayBuffer(Math.max(1, this.runList.length) * 8));
    runs.set(this.runList);
    return {
      fd: this.fd, memory: this.memory, ctl: new SharedArrayBuffer(CTL_WORDS * 4), jobs: jobs.buffer as SharedArrayBuffer,
      runs: runs.buffer as SharedArrayBuffer, results: new SharedArrayBuffer(Math.max(1, count) * RES_WORDS * 4), count,
      lazy: this.lazy,
    };
  }
}

/** Atomics.waitAsync (V8 has it; this project's TypeScript lib, ES2022, does not declare it). */
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, i: number, v: number, ms: number): { async: false; value: string } | { async: true; value: Promise<string> };
}).waitAsync;

/** An error the hypervisor reports as EIO, "cannot read" (an errno-style error: code and syscall set). */
function ioError(message: string): NodeJS.ErrnoException {
  const e = new Error(message) as NodeJS.ErrnoException;
  e.code = "EIO"; e.syscall = "readv";
  return e;
}

function resultOf(res: Int32Array, jobs: Float64Array, i: number): JobResult {
  const s = res[i * RES_WORDS]!;
  return { status: s, crc: res[i * RES_WORDS + 1]! >>> 0, got: s === JOB_FAILED ? 0 : res[i * RES_WORDS + 2]!, bytes: jobs[i * JOB_WORDS + 4]!,
    streamPos: jobs[i * JOB_WORDS + 1]!, errno: s === JOB_FAILED ? res[i * RES_WORDS + 2]! : 0 };
}

/** The helper's side (vm-worker.ts): takes and runs jobs until none is left. Returns how many it ran. */
export function helpWithPageJobs(m: PageJobsMessage): number {
  const ctl = new Int32Array(m.ctl);
  let n = 0;
  for (;;) {
    const i = Atomics.add(ctl, NEXT, 1);
    if (i >= m.count) return n;
    runJob(m, i);
    n++;
    Atomics.add(ctl, HELPER_DONE, 1);
    Atomics.notify(ctl, HELPER_DONE);
  }
}

/**
 * Job `i`: readv from its file offset into its views (going on after a short read, at most IOV_MAX views per
 * call as libuv passes them), then the CRC-32 of what it read. Never throws: the outcome is in its result words.
 */
function runJob(m: PageJobsMessage, i: number): void {
  if (m.lazy !== null) { checkJob(m, m.lazy, i); return; }
  const jobs = new Float64Array(m.jobs), runs = new Float64Array(m.runs), res = new Int32Array(m.results);
  const filePos = jobs[i * JOB_WORDS]!, first = jobs[i * JOB_WORDS + 2]!, end = jobs[i * JOB_WORDS + 3]!, bytes = jobs[i * JOB_WORDS + 4]!;
  const views: Uint8Array[] = [];
  let got = 0, status = JOB_OK, crc = 0;
  try {
    for (let r = first; r < end; r++) views.push(new Uint8Array(m.memory, runs[2 * r]!, runs[2 * r + 1]!));
    let v = 0, off = 0;
    while (got < bytes) {
      const rest = off === 0 ? views.slice(v, v + 1024) : [views[v]!.subarray(off), ...views.slice(v + 1, v + 1024)];
      const n = readvSync(m.fd, rest, filePos + got);
      if (n === 0) { status = JOB_SHORT; break; }
      got += n;
      let k = n;
      while (k > 0) {
        const take = Math.min(k, views[v]!.length - off);
        k -= take; off += take;
        if (off === views[v]!.length) { v++; off = 0; }
      }
    }
    if (status === JOB_OK) for (const x of views) crc = crc32(x, crc);
  } catch (e) {
    status = JOB_FAILED;
    got = typeof (e as NodeJS.ErrnoException).errno === "number" ? (e as NodeJS.ErrnoException).errno! : -5;
  }
  res[i * RES_WORDS + 1] = crc | 0;
  res[i * RES_WORDS + 2] = got;
  Atomics.store(res, i * RES_WORDS, status);
}

/**
 * The CRC-32 (zlib's: reflected, polynomial 0xEDB88320, pre- and post-inverted) of A followed by B, from
 * crcA, crcB and B's length: crcA multiplied by x^(8·lenB) modulo the polynomial, XOR crcB (the conditioning
 * cancels out; the identity zlib's crc32_combine rests on).
 */
export function crc32Combine(crcA: number, crcB: number, lenB: number): number {
  if (lenB === 0) return crcA >>> 0;
  return (mulModP(xPow8n(lenB), crcA >>> 0) ^ crcB) >>> 0;
}

const POLY = 0xedb88320;

/** a·b modulo the CRC polynomial, both in the reflected bit order (bit 31 is x^0). */
function mulModP(a: number, b: number): number {
  let p = 0;
  for (let m = 0x80000000; m !== 0; m >>>= 1) {
    if ((a & m) !== 0) p ^= b;
    b = (b & 1) !== 0 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** x^(2^k) modulo the polynomial, k = 0..63 (reflected). */
const X2N: number[] = (() => {
  const t: number[] = [];
  let p = 0x40000000; // x^1
  for (let k = 0; k < 64; k++) { t.push(p); p = mulModP(p, p); }
  return t;
})();

/** x^(8·n) modulo the polynomial (n < 2^53). */
function xPow8n(n: number): number {
  let p = 0x80000000; // x^0
  for (let k = 3; n > 0; k++) {
    if (n % 2 === 1) p = mulModP(X2N[k]!, p);
    n = Math.floor(n / 2);
  }
  return p;
}

/** The check pass's scratch (per thread): 64 pages, so a first restore faults in only these (not 4 MiB). */
let scratch: Uint8Array | null = null;
const SCRATCH_PAGES = 64;
/** x^(8·4096) modulo the polynomial: crc32Combine's factor for one page. */
const X_PAGE = xPow8n(4096);

/**
 * Job `i` of a lazy restore's check pass: its bytes read from the file into a reused scratch buffer, each whole
 * page's CRC-32 and file offset stored for the loader and its state set to absent; the job's CRC-32 is the
 * pages' combined (one multiply per page), so the stream's checksum is checked as for an eager read and
 * nothing is hashed twice. A leading partial page is read into its place. Never throws, like runJob.
 */
function checkJob(m: PageJobsMessage, t: LazyTables, i: number): void {
  const jobs = new Float64Array(m.jobs), runs = new Float64Array(m.runs), res = new Int32Array(m.results);
  const state = new Int32Array(t.state), crcs = new Int32Array(t.crcs), offs = new Float64Array(t.offs);
  const filePos = jobs[i * JOB_WORDS]!, first = jobs[i * JOB_WORDS + 2]!, end = jobs[i * JOB_WORDS + 3]!, bytes = jobs[i * JOB_WORDS + 4]!;
  let got = 0, status = JOB_OK, crc = 0;
  const buf = scratch ??= new Uint8Array(SCRATCH_PAGES * 4096);
  try {
    for (let r = first; r < end && status === JOB_OK; r++) {
      let at = runs[2 * r]!, len = runs[2 * r + 1]!;
      const head = (4096 - (at % 4096)) % 4096;
      if (head > 0) {
        // The rest of a page the reader had buffered the start of: into its place (this page is not lazy).
        const v = new Uint8Array(m.memory, at, Math.min(head, len));
        let n = 0;
        while (n < v.length) { const k = readSync(m.fd, v, n, v.length - n, filePos + got + n); if (k === 0) break; n += k; }
        got += n;
        if (n < v.length) { status = JOB_SHORT; break; }
        crc = crc32(v, crc);
        at += v.length; len -= v.length;
      }
      while (len > 0) {
        const want = Math.min(len, buf.length);
        let n = 0;
        while (n < want) { const k = readSync(m.fd, buf, n, want - n, filePos + got + n); if (k === 0) break; n += k; }
        if (n < want) { got += n; status = JOB_SHORT; break; }
        for (let o = 0; o < want; o += 4096) {
          const pc = crc32(buf.subarray(o, o + 4096));
          const page = (at + o) / 4096;
          crcs[page] = pc | 0;
          offs[page] = filePos + got + o;
          Atomics.store(state, page, PAGE_ABSENT);
          crc = (mulModP(X_PAGE, crc >>> 0) ^ pc) >>> 0;
        }
        got += want; at += want; len -= want;
      }
    }
  } catch (e) {
    status = JOB_FAILED;
    got = typeof (e as NodeJS.ErrnoException).errno === "number" ? (e as NodeJS.ErrnoException).errno! : -5;
  }
  if (status === JOB_OK && got !== bytes) status = JOB_SHORT;
  res[i * RES_WORDS + 1] = crc | 0;
  res[i * RES_WORDS + 2] = got;
  Atomics.store(res, i * RES_WORDS, status);
}
