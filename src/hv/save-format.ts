/**
 * Xeno's save file (docs/save-format.md): xl's file header (tools/xl/xl_saverestore.c) with the domain config
 * as JSON, then a libxl v2 stream (docs/libxl-migration-stream.pandoc) whose LIBXC_CONTEXT carries a libxc v3
 * stream (docs/libxc-migration-stream.pandoc): Xeno's domain-state record, guest RAM in PAGE_DATA batches, END;
 * then a CRC-32 of every byte before it, and libxl's END.
 *
 * The writer takes a byte sink; the reader a byte source and checks everything as it reads — every length
 * against its record type's bound, padding zero, page numbers inside the domain, page types known, the config's
 * memory against the state's, the checksum at the end — and throws SaveFormatError (stable `code`, the byte
 * offset, what to do). It fills the caller's RAM view as pages arrive (from a file: read by the kernel straight
 * into their places, ByteSource.readInto); the caller builds nothing until the reader returns, so a refused
 * stream leaves nothing behind.
 */
import { fstatSync, readSync, readvSync } from "node:fs";
import { getSystemErrorName } from "node:util";
import type { FileHandle } from "node:fs/promises";
import { crc32 } from "node:zlib";
import { CodecError, decodeState, encodeState } from "./save-codec.js";
import { JOB_FAILED, JOB_OK, PageJobs, crc32Combine, type LazyTables, type PageJobsMessage } from "./save-jobs.js";

/** xl_saverestore.c savefileheader_magic: 32 bytes, NUL and CR included. */
export const XL_MAGIC = Buffer.from("Xen saved domain, xl format\n \0 \r", "latin1");
/** SAVEFILE_BYTEORDER_VALUE, written in the saving host's order (little-endian here). */
const XL_BYTEORDER = 0x01020304;
/** XL_MANDATORY_FLAG_JSON | XL_MANDATORY_FLAG_STREAMv2. */
const XL_FLAG_JSON = 1, XL_FLAG_STREAMV2 = 2;
const XL_HEADER_BYTES = 48;

/** libxl stream header: "LibxlFmt", version 2, options (bit 0: big-endian; bit 1: legacy). Big-endian fields. */
const LIBXL_IDENT = Buffer.from("LibxlFmt", "latin1");
const LIBXL_VERSION = 2;
export const LIBXL_REC_END = 0x0, LIBXL_REC_LIBXC_CONTEXT = 0x1;
/**
 * Xeno's libxl-level record: the CRC-32 (zlib's, as gzip and PNG use) of every byte of the stream before this
 * record, u32 little-endian. Mandatory (bit 31 clear). It catches corruption, not forgery: anyone who can write
 * the file can recompute any unkeyed checksum. (A SHA-256 cost three times as much: docs/benchmarks.md.)
 */
export const LIBXL_REC_XENO_CHECKSUM = 0x58450003;
/** The checksum record of files written before 2026-12-07's reader change: SHA-256, 32 bytes. Refused, named. */
const LIBXL_REC_XENO_SHA256 = 0x58450002;

/** libxc image header: marker all ones, "XENF", version 3, options (bit 0 big-endian). Big-endian fields. */
const XENF_ID = 0x58454e46, XENF_VERSION = 3;
/** libxc domain header type: Xen defines 1 (x86 PV) and 2 (x86 HVM) only; this is Xeno's Arm DomU. */
export const DHDR_TYPE_XENO_ARM = 0x58410001;
export const LIBXC_REC_END = 0x0, LIBXC_REC_PAGE_DATA = 0x1;
/** Xeno's libxc-level record: the domain's state (DomainSnapshot and its XenStore part). Mandatory. */
export const LIBXC_REC_XENO_DOMAIN = 0x58450001;
/** Bit 31 of a record type: optional (a reader that does not know it skips it). */
export const REC_OPTIONAL = 0x80000000;
/**
 * Xeno's optional libxc-level record of a live stream: a drain mark (u32 sequence, u32 zero). The receiving
 * hypervisor, having read every record before it, answers SYNC_ACK on its stream socket, which the two CLIs
 * carry back to the sender (src/hv/save-live.ts): the sender pauses the domain only once the pre-copy's bytes
 * left the pipes and sockets between them. A reader without a way to answer (a file) skips it.
 */
export const LIBXC_REC_XENO_SYNC = (REC_OPTIONAL | 0x58450004) >>> 0;
/** The answer to a SYNC record: 8 bytes, "\0XSA" and the record's sequence (u32 LE). Its first byte is 0, so
 * the sending CLI tells it from xl's messages (all text) on the same pipe. */
export const SYNC_ACK_MAGIC = 0x41535800; // bytes 00 'X' 'S' 'A' read as u32 LE
export const SYNC_ACK_BYTES = 8;

export const PAGE_SIZE = 4096;
/** Pages per PAGE_DATA record (libxc's MAX_BATCH_SIZE). */
export const MAX_BATCH = 1024;
/** XEN_DOMCTL_PFINFO types (public/domctl.h, in bits 63..60 of a pfn entry): a normal page with data, and
 * "allocate only" — Xeno's all-zero page, sent without data (the restored memory starts zeroed). */
export const PFINFO_NOTAB = 0x0, PFINFO_XALLOC = 0xe;

const MAX_CONFIG_BYTES = 1 << 20;
const MAX_STATE_BYTES = 64 << 20;
const MAX_OPTIONAL_BYTES = 16 << 20;
const XENO_DOMAIN_VERSION = 1;
const XENO_DOMAIN_FIXED = 16;

export type SaveFormatCode =
  | "SAVE_TRUNCATED" | "SAVE_MAGIC" | "SAVE_HEADER" | "SAVE_RECORD" | "SAVE_UNKNOWN_RECORD" | "SAVE_PAGE"
  | "SAVE_CONFIG" | "SAVE_STATE" | "SAVE_MISMATCH" | "SAVE_CHECKSUM";

export class SaveFormatError extends Error {
  constructor(readonly code: SaveFormatCode, readonly offset: number, message: string) {
    super(`${message} (at byte ${offset} of the stream)`);
    this.name = "SaveFormatError";
  }
}

/** What goes in a save besides RAM: the config (xl header) and the state (Xeno's domain record). */
export interface SaveContents {
  /** The domain config (JSON object): Xeno's DomainSpec. */
  config: Record<string, unknown>;
  /** Guest RAM pages (pfn 0 = RAM_BASE). */
  ramPages: number;
  vcpus: number;
  /** Structured-clone data: the DomainSnapshot and the store's part (see save-restore.ts SavedDomain). */
  state: unknown;
}

/**
 * Where a save stream goes. `write` resolves once the sink is done with `b` (copied it, or handed it to the
 * kernel): the writer reuses the buffer for its next record.
 */
export interface ByteSink { write(b: Uint8Array): Promise<void> }

export interface WriteProgress { pages: number; totalPages: number; bytes: number }

/**
 * Writes a save stream of `c` with RAM from `ram` (at least ramPages × 4096 bytes; read while the domain is
 * paused). Returns the bytes written and the pages sent as zero. `progress` is called after each PAGE_DATA record.
 */
export async function writeSave(sink: ByteSink, c: SaveContents, ram: Uint8Array, progress?: (p: WriteProgress) => void): Promise<{ bytes: number; zeroPages: number; dataMap: Uint8Array }> {
  if (ram.length < c.ramPages * PAGE_SIZE) throw new RangeError(`RAM view ${ram.length} bytes < ${c.ramPages} pages`);
  const w = new SaveStreamWriter(sink);
  w.dataMap = new Uint8Array(c.ramPages);
  await w.header(c.config);
  await w.domain(c.state, c.ramPages, c.vcpus);
  const all = { length: c.ramPages, at: (i: number): number => i };
  await w.pages(ram, all, (sent) => progress?.({ pages: sent, totalPages: c.ramPages, bytes: w.bytes }));
  await w.end();
  return { bytes: w.bytes, zeroPages: w.zeroPages, dataMap: w.dataMap };
}

/** Page numbers for SaveStreamWriter.pages: `length` of them, the i-th at(i). */
export interface PageList { length: number; at(i: number): number | undefined }

/**
 * The save stream written part by part, for a live migration (src/hv/save-live.ts) as for a file: `header`,
 * then PAGE_DATA batches (`pages`, any number of times, a page any number of times: the reader keeps the last
 * copy) and the domain record (`domain`, once) in any order, then `end` (libxc END, the checksum, libxl END).
 * A live stream sends pages while the domain runs, then its state and the pages written meanwhile.
 */
export class SaveStreamWriter {
  bytes = 0;
  /** Page entries written as XALLOC (all zero) and with data, over every `pages` call. */
  zeroPages = 0;
  dataPages = 0;
  private crc = 0;
  private readonly pfns = Buffer.alloc(8 * MAX_BATCH);
  /**
   * The PAGE_DATA record being built, reused for every record (the sink is done with it when its write
   * resolves): a live migration's sender wrote ~50 MiB of fresh 4 MiB buffers per round otherwise, and V8
   * answered that external memory with full (mark-compact) collections, one of which could fall in the pause
   * (docs/benchmarks.md, session 24). Allocated at the first record: the largest one's size.
   */
  private rec: Buffer | null = null;
  /**
   * When set (one byte per RAM page): 1 for every page sent with data, over every `pages` call — a superset of
   * the pages not all zero when the stream ends, which save-spare-memory.ts zeroes again.
   */
  dataMap: Uint8Array | null = null;
  constructor(private readonly sink: ByteSink) {}

  private async out(b: Uint8Array): Promise<void> { this.crc = crcOf(b, this.crc); this.bytes += b.length; await this.sink.write(b); }

  /** xl header + config (JSON text with its NUL, as xl writes strlen + 1), libxl header, LIBXC_CONTEXT, libxc headers. */
  async header(configObj: Record<string, unknown>): Promise<void> {
    const config = Buffer.from(`${JSON.stringify(configObj)}\0`, "utf8");
    const h = Buffer.alloc(XL_HEADER_BYTES + 4);
    XL_MAGIC.copy(h, 0);
    h.writeUInt32LE(XL_BYTEORDER, 32);
    h.writeUInt32LE(XL_FLAG_JSON | XL_FLAG_STREAMV2, 36);
    h.writeUInt32LE(0, 40);
    h.writeUInt32LE(4 + config.length, 44);
    h.writeUInt32LE(config.length, 48);
    await this.out(h);
    await this.out(config);
    const lx = Buffer.alloc(16);
    LIBXL_IDENT.copy(lx, 0);
    lx.writeUInt32BE(LIBXL_VERSION, 8);
    lx.writeUInt32BE(0, 12);
    await this.out(lx);
    await this.out(record(LIBXL_REC_LIBXC_CONTEXT, null));
    const ih = Buffer.alloc(24 + 16);
    ih.writeBigUInt64BE(0xffffffffffffffffn, 0);
    ih.writeUInt32BE(XENF_ID, 8);
    ih.writeUInt32BE(XENF_VERSION, 12);
    ih.writeUInt16BE(0, 16);
    ih.writeUInt32LE(DHDR_TYPE_XENO_ARM, 24);
    ih.writeUInt16LE(12, 28); // page_shift
    ih.writeUInt32LE(4, 32); // xen_major, xen_minor: the Xen ABI Xeno speaks (src/xen/abi.ts)
    ih.writeUInt32LE(17, 36);
    await this.out(ih);
  }

  /** Xeno's domain record: version, RAM pages, vCPUs, reserved; the state's JSON. */
  async domain(state: unknown, ramPages: number, vcpus: number): Promise<void> {
    const json = Buffer.from(encodeState(state), "utf8");
    if (json.length > MAX_STATE_BYTES - XENO_DOMAIN_FIXED) throw new RangeError(`domain state ${json.length} bytes > ${MAX_STATE_BYTES}`);
    const dom = Buffer.alloc(XENO_DOMAIN_FIXED + json.length);
    dom.writeUInt32LE(XENO_DOMAIN_VERSION, 0);
    dom.writeUInt32LE(ramPages, 4);
    dom.writeUInt32LE(vcpus, 8);
    json.copy(dom, XENO_DOMAIN_FIXED);
    await this.out(record(LIBXC_REC_XENO_DOMAIN, dom));
  }

  /**
   * The pages `list` of `ram` in PAGE_DATA batches of up to MAX_BATCH; an all-zero page is XALLOC without data.
   * A page is copied when its batch is built, so one written meanwhile is sent as it was then or later (a live
   * migration's dirty log sends it again). `progress(sent)` after each record, with the pages of `list` sent.
   */
  async pages(ram: Uint8Array, list: PageList, progress?: (sent: number) => void): Promise<void> {
    const pfns = this.pfns;
    const data: number[] = [];
    const u32 = (ram.byteOffset & 3) === 0 ? new Uint32Array(ram.buffer, ram.byteOffset, ram.length >>> 2) : null;
    for (let first = 0; first < list.length; first += MAX_BATCH) {
      const n = Math.min(MAX_BATCH, list.length - first);
      data.length = 0;
      for (let i = 0; i < n; i++) {
        const pfn = list.at(first + i);
        if (pfn === undefined || pfn < 0 || (pfn + 1) * PAGE_SIZE > ram.length) throw new RangeError(`page ${String(pfn)} outside the RAM view`);
        const zero = isZero(ram, u32, pfn * PAGE_SIZE);
        pfns.writeUInt32LE(pfn, 8 * i);
        pfns.writeUInt32LE(((zero ? PFINFO_XALLOC : PFINFO_NOTAB) << 28) >>> 0, 8 * i + 4);
        if (!zero) { data.push(pfn); if (this.dataMap !== null) this.dataMap[pfn] = 1; } else this.zeroPages++;
      }
      // The record built in one buffer (header, count, pfns, pages: a multiple of 8 bytes, so no padding), each
      // page copied once, as it is now (one written meanwhile is sent again by a live migration's next round).
      const len = 8 + 8 * n + PAGE_SIZE * data.length;
      // Every byte of rec[0, 8 + len) is written below.
      const rec = (this.rec ??= Buffer.allocUnsafe(8 + 8 + 8 * MAX_BATCH + PAGE_SIZE * MAX_BATCH)).subarray(0, 8 + len);
      rec.writeUInt32LE(LIBXC_REC_PAGE_DATA, 0);
      rec.writeUInt32LE(len, 4);
      rec.writeUInt32LE(n, 8);
      rec.writeUInt32LE(0, 12);
      pfns.copy(rec, 16, 0, 8 * n);
      let o = 16 + 8 * n;
      for (const pfn of data) { rec.set(ram.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE), o); o += PAGE_SIZE; }
      this.dataPages += data.length;
      await this.out(rec);
      progress?.(first + n);
    }
  }

  /** A drain mark (LIBXC_REC_XENO_SYNC) with sequence `seq`: inside the libxc part, before the domain record. */
  async sync(seq: number): Promise<void> {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(seq >>> 0, 0);
    await this.out(record(LIBXC_REC_XENO_SYNC, b));
  }

  /** libxc END, the checksum of everything before it, libxl END. */
  async end(): Promise<void> {
    await this.out(record(LIBXC_REC_END, null));
    const sum = Buffer.alloc(4);
    sum.writeUInt32LE(this.crc >>> 0, 0);
    await this.out(record(LIBXL_REC_XENO_CHECKSUM, sum));
    await this.out(record(LIBXL_REC_END, null));
  }
}

/** Whether the page at byte `at` of `ram` is all zero, read in place (`u32`: a word view of the same RAM, or null). */
function isZero(ram: Uint8Array, u32: Uint32Array<ArrayBufferLike> | null, at: number): boolean {
  const end = at + PAGE_SIZE;
  if (u32 !== null) {
    // Pages start 4 KiB-aligned in the domain memory: 32-bit words, eight ORed per test (most pages of an idle
    // guest are zero and are read whole).
    for (let i = at >>> 2, e = end >>> 2; i < e; i += 8) {
      if ((u32[i]! | u32[i + 1]! | u32[i + 2]! | u32[i + 3]! | u32[i + 4]! | u32[i + 5]! | u32[i + 6]! | u32[i + 7]!) !== 0) return false;
    }
    return true;
  }
  for (let i = at; i < end; i++) if (ram[i] !== 0) return false;
  return true;
}

/**
 * The CRC-32 of `b` continued from `crc`. An empty view is skipped: zlib's crc32 is given a null pointer for an
 * empty ArrayBuffer and then returns its initial value, 0, not `crc` (Node 20.20).
 */
function crcOf(b: Uint8Array, crc: number): number { return b.length === 0 ? crc : crc32(b, crc); }

/** A record: type, body length (both little-endian), body, zero padding to 8. */
function record(type: number, body: Uint8Array | null): Buffer {
  const len = body?.length ?? 0;
  const r = Buffer.alloc(8 + ((len + 7) & ~7));
  r.writeUInt32LE(type >>> 0, 0);
  r.writeUInt32LE(len, 4);
  if (body !== null) r.set(body, 8);
  return r;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

/**
 * Where the reader gets bytes: `read(n)` gives up to n bytes (fewer only at the end; empty at the end).
 * `readInto`, when the source has it, fills `views` in order with the next bytes and returns how many it
 * wrote (fewer than their total only at the end): a file's pages go from the kernel straight into the domain's
 * memory, with no buffer between.
 */
export interface ByteSource {
  read(n: number): Promise<Uint8Array>;
  readInto?(views: readonly Uint8Array[]): Promise<number>;
  /**
   * When the source can read `views`' bytes later (a file whose size holds them; views of a shared memory):
   * fills what it has buffered now (`prefix`, in order) and leaves the rest as page job `job` (-1: none) of
   * `bytes`, read by settle(); the source moves past them. Null: read them now (readInto).
   */
  defer?(views: readonly Uint8Array[], streamPos: number): { prefix: Uint8Array[]; job: number; bytes: number } | null;
  /** Runs the deferred jobs (every one so far), checks their reads, and returns their CRC-32s by job number. */
  settle?(early: boolean): Promise<number[]>;
}

/** Reading a file's pages on two threads (save-jobs.ts): how to offer jobs to a helper thread, and whether it lives. */
export interface PageHelper {
  offer(m: PageJobsMessage): boolean;
  alive(): boolean;
  /** After the pages were read: how long (wall, ms), and how many jobs (PAGE_DATA records) each thread read. */
  report?(r: { ms: number; main: number; helper: number }): void;
}

/** How long the reader waits for a helper thread's part of a file's pages before it fails the read. */
const HELPER_DEADLINE_MS = 60_000;

/** The most copyStream hands its sink at once. */
const FORWARD_PIECE = 1 << 20;

/**
 * How much fileSource's `read` reads ahead: enough for a PAGE_DATA record's header and pfns (8 KiB) with few
 * calls; small, because the pages after them go straight to the domain's memory (readInto).
 */
const FILE_CHUNK = 16 << 10;

/** fileSource lets the event loop run after this many bytes read (≈ 5–10 ms of reading on this host). */
const FILE_YIELD_BYTES = 16 << 20;

/**
 * A file (read from its start) as a ByteSource. `read` reads at least FILE_CHUNK bytes into a new buffer
 * (what was left of the last one moved to its start) and gives views of it; a view stays valid after later
 * reads: a buffer is never reused. `readInto` takes what is buffered, then reads the rest with one readv
 * per call (the kernel copies from the page cache into the views).
 *
 * The reads are synchronous (fs.readSync/readvSync on the handle's fd): through the thread pool each of a
 * restore's ~80 reads waited for a pool thread and then for the event loop, which cost a 256 MiB guest's
 * restore ~20 ms more (docs/benchmarks.md, 2026-12-07 restore). Every FILE_YIELD_BYTES the source lets the
 * event loop run (setImmediate), so a large file does not hold the hypervisor's requests for long.
 */
export function fileSource(fh: FileHandle, helper: PageHelper | null = null, lazy: boolean | (() => boolean) = false): ByteSource & { lazyTables(): LazyTables | null } {
  let buf = Buffer.alloc(0), pos = 0, eof = false;
  /** A lazy restore's tables (save-jobs.ts LazyTables), made with the page jobs: one entry per page of the memory. */
  let tables: LazyTables | null = null;
  /** The file's size when opened: a deferred read must fit it (a file cut later fails its job: SAVE_TRUNCATED). */
  const size = fstatSync(fh.fd).size;
  let jobs: PageJobs | null = null;
  const crcs: number[] = [];
  /** The file offset of the byte after `buf`. */
  let filePos = 0;
  let sinceYield = 0;
  const counted = async (n: number): Promise<void> => {
    sinceYield += n;
    if (sinceYield >= FILE_YIELD_BYTES) { sinceYield = 0; await new Promise<void>((r) => setImmediate(r)); }
  };
  return {
    lazyTables: () => tables,
    async read(n: number): Promise<Uint8Array> {
      if (buf.length - pos < n && !eof) {
        const left = buf.length - pos;
        const next = Buffer.allocUnsafe(Math.max(FILE_CHUNK, n)); // only bytes read into it are handed out
        buf.copy(next, 0, pos);
        let have = left;
        while (have < n && !eof) {
          const bytesRead = readSync(fh.fd, next, have, next.length - have, filePos);
          if (bytesRead === 0) eof = true;
          have += bytesRead;
          filePos += bytesRead;
        }
        await counted(have - left);
        buf = next.subarray(0, have);
        pos = 0;
      }
      const take = Math.min(n, buf.length - pos);
      const r = buf.subarray(pos, pos + take);
      pos += take;
      return r;
    },
    defer(views: readonly Uint8Array[], streamPos: number): { prefix: Uint8Array[]; job: number; bytes: number } | null {
      let total = 0;
      for (const v of views) total += v.length;
      const buffered = buf.length - pos;
      if (views.length === 0 || !(views[0]!.buffer instanceof SharedArrayBuffer) || filePos + Math.max(0, total - buffered) > size) return null;
      if (jobs === null) {
        const mem = views[0]!.buffer, pages = Math.ceil(mem.byteLength / PAGE_SIZE);
        // Asked once the memory exists: a lazy read pays off only in a memory whose pages are not faulted in yet.
        if (typeof lazy === "function" ? lazy() : lazy) tables = { state: new SharedArrayBuffer(pages * 4), crcs: new SharedArrayBuffer(pages * 4), offs: new SharedArrayBuffer(pages * 8) };
        jobs = new PageJobs(fh.fd, mem, tables);
      }
      const prefix: Uint8Array[] = [];
      let i = 0, off = 0;
      while (i < views.length && pos < buf.length) {
        const v = views[i]!, n = Math.min(v.length - off, buf.length - pos);
        v.set(buf.subarray(pos, pos + n), off);
        prefix.push(v.subarray(off, off + n));
        pos += n; off += n; total -= n; streamPos += n;
        if (off === v.length) { i++; off = 0; }
      }
      if (i === views.length) return { prefix, job: -1, bytes: 0 };
      const rest = off === 0 ? views.slice(i) : [views[i]!.subarray(off), ...views.slice(i + 1)];
      const job = jobs.add(filePos, streamPos, rest);
      filePos += total;
      return { prefix, job, bytes: total };
    },
    async settle(early: boolean): Promise<number[]> {
      if (jobs === null) return crcs;
      if (early) { jobs.runAllHere(); return crcs; }
      const t0 = performance.now();
      const results = await jobs.run(helper === null ? null : (m) => helper.offer(m), FILE_YIELD_BYTES,
        () => helper?.alive() ?? false, HELPER_DEADLINE_MS);
      helper?.report?.({ ms: performance.now() - t0, ...jobs.split });
      crcs.length = 0;
      for (const r of results) {
        if (r.status === JOB_FAILED) {
          const e = new Error(`${getSystemErrorName(r.errno)}: reading the save file's pages at byte ${r.streamPos}`) as NodeJS.ErrnoException;
          e.code = getSystemErrorName(r.errno); e.syscall = "readv";
          throw e;
        }
        if (r.status !== JOB_OK) {
          throw new SaveFormatError("SAVE_TRUNCATED", r.streamPos + r.got, `the stream ends inside PAGE_DATA pages (${r.got} of ${r.bytes} bytes): the file is truncated (it was cut while it was read)`);
        }
        crcs.push(r.crc);
      }
      return crcs;
    },
    async readInto(views: readonly Uint8Array[]): Promise<number> {
      let got = 0, i = 0, off = 0; // views[i] is filled up to off
      while (i < views.length && pos < buf.length) {
        const v = views[i]!, n = Math.min(v.length - off, buf.length - pos);
        v.set(buf.subarray(pos, pos + n), off);
        pos += n; off += n; got += n;
        if (off === v.length) { i++; off = 0; }
      }
      while (i < views.length && !eof) {
        // libuv passes at most IOV_MAX (1,024) views per readv and a read may come back short: go on from
        // where it ended.
        const rest = off === 0 ? views.slice(i) : [views[i]!.subarray(off), ...views.slice(i + 1)];
        const bytesRead = readvSync(fh.fd, rest, filePos);
        if (bytesRead === 0) { eof = true; break; }
        filePos += bytesRead; got += bytesRead;
        await counted(bytesRead);
        let n = bytesRead;
        while (n > 0) {
          const k = Math.min(n, views[i]!.length - off);
          n -= k; off += k;
          if (off === views[i]!.length) { i++; off = 0; }
        }
      }
      return got;
    },
  };
}

/** A byte array as a ByteSource (tests). */
export function bufferSource(b: Uint8Array): ByteSource {
  let pos = 0;
  return { read: (n) => { const r = b.subarray(pos, Math.min(b.length, pos + n)); pos += r.length; return Promise.resolve(r); } };
}

export interface ReadOptions {
  /**
   * Called once the config and the domain record are read and agree: returns the RAM view (ramPages × 4096
   * bytes, zeroed) that pages are written into, or throws to refuse the domain (its message is reported).
   */
  ram(config: Record<string, unknown>, ramPages: number, vcpus: number): Uint8Array;
  /** RAM pages the config describes (the reader refuses a state of another size: SAVE_MISMATCH). */
  configPages(config: Record<string, unknown>): number;
  progress?(p: WriteProgress): void;
  /** A live stream's drain mark (LIBXC_REC_XENO_SYNC) was read, every record before it taken: answer it. */
  sync?(seq: number): void;
}

export interface ReadResult {
  config: Record<string, unknown>;
  ramPages: number;
  vcpus: number;
  state: unknown;
  /** Pages sent with data and as zero (type only). */
  dataPages: number;
  zeroPages: number;
  bytes: number;
}

/** Reads and checks a whole save stream (see the file comment); throws SaveFormatError on anything wrong. */
export async function readSave(src: ByteSource, o: ReadOptions): Promise<ReadResult> {
  const r = new Reader(src);
  // xl header.
  const h = await r.take(XL_HEADER_BYTES, "the xl header");
  if (!XL_MAGIC.equals(h.subarray(0, 32))) {
    throw new SaveFormatError("SAVE_MAGIC", 0, "not a Xen/Xeno saved domain: the file does not start with xl's magic \"Xen saved domain, xl format\"");
  }
  const order = h.readUInt32LE(32);
  if (order !== XL_BYTEORDER) {
    throw new SaveFormatError("SAVE_HEADER", 32, order === 0x04030201 ? "saved on a big-endian host: Xeno reads little-endian files only" :
      `byte-order marker 0x${order.toString(16)} is not 0x01020304`);
  }
  const mandatory = h.readUInt32LE(36), optLen = h.readUInt32LE(44);
  if ((mandatory & ~(XL_FLAG_JSON | XL_FLAG_STREAMV2)) !== 0) {
    throw new SaveFormatError("SAVE_HEADER", 36, `unknown mandatory flags 0x${mandatory.toString(16)}: the file needs a newer reader`);
  }
  if (mandatory !== (XL_FLAG_JSON | XL_FLAG_STREAMV2)) {
    throw new SaveFormatError("SAVE_HEADER", 36, "a legacy (v1 stream or non-JSON config) xl file: Xeno reads JSON config + stream v2 only");
  }
  // Optional flags are ignored when unknown (xl: "skip, or skip tail, if not understood").
  if (optLen < 4 || optLen > MAX_CONFIG_BYTES + 4) throw new SaveFormatError("SAVE_HEADER", 44, `optional data length ${optLen}: want 4..${MAX_CONFIG_BYTES + 4}`);
  const opt = await r.take(optLen, "the config");
  const cfgLen = opt.readUInt32LE(0);
  if (cfgLen < 1 || cfgLen > optLen - 4) throw new SaveFormatError("SAVE_CONFIG", XL_HEADER_BYTES, `config length ${cfgLen} does not fit the ${optLen - 4} bytes of optional data`);
  const cfgBytes = opt.subarray(4, 4 + cfgLen);
  if (cfgBytes[cfgLen - 1] !== 0) throw new SaveFormatError("SAVE_CONFIG", XL_HEADER_BYTES + 4, "the config does not end with NUL");
  let config: Record<string, unknown>;
  try {
    const v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(cfgBytes.subarray(0, cfgLen - 1))) as unknown;
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("not a JSON object");
    config = v as Record<string, unknown>;
  } catch (e) {
    throw new SaveFormatError("SAVE_CONFIG", XL_HEADER_BYTES + 4, `the config is not a JSON object: ${(e as Error).message}`);
  }
  let configPages: number;
  try { configPages = o.configPages(config); } catch (e) { throw new SaveFormatError("SAVE_CONFIG", XL_HEADER_BYTES + 4, `bad config: ${(e as Error).message}`); }

  // libxl header.
  const lx = await r.take(16, "the libxl stream header");
  if (!LIBXL_IDENT.equals(lx.subarray(0, 8))) throw new SaveFormatError("SAVE_MAGIC", r.pos - 16, "no libxl stream (\"LibxlFmt\") after the xl header");
  if (lx.readUInt32BE(8) !== LIBXL_VERSION) throw new SaveFormatError("SAVE_HEADER", r.pos - 8, `libxl stream version ${lx.readUInt32BE(8)}: Xeno reads version 2`);
  if (lx.readUInt32BE(12) !== 0) throw new SaveFormatError("SAVE_HEADER", r.pos - 4, `libxl stream options 0x${lx.readUInt32BE(12).toString(16)}: Xeno reads little-endian, non-legacy streams`);

  let result: ReadResult | null = null;
  for (;;) {
    const start = r.pos;
    const before = r.mark(); // every byte before this record, for the checksum record
    const { type, body } = await r.record("libxl", (t) => t === LIBXL_REC_XENO_CHECKSUM ? 4 : t === LIBXL_REC_XENO_SHA256 ? 32
      : t === LIBXL_REC_END || t === LIBXL_REC_LIBXC_CONTEXT ? 0 : -1);
    if (type === LIBXL_REC_LIBXC_CONTEXT) {
      if (result !== null) throw new SaveFormatError("SAVE_RECORD", start, "a second LIBXC_CONTEXT: one domain per file");
      result = await readLibxc(r, o, config, configPages);
    } else if (type === LIBXL_REC_XENO_CHECKSUM) {
      if (result === null) throw new SaveFormatError("SAVE_RECORD", start, "the checksum comes before the domain's memory");
      // The pages left for later are read here (on two threads when a helper is there), then the sum checked.
      if (body.length !== 4 || body.readUInt32LE(0) !== await r.checksum(before)) throw new SaveFormatError("SAVE_CHECKSUM", start, "the CRC-32 checksum does not match: the file is corrupt (bytes changed since it was saved)");
      const end = await r.record("libxl", (t) => t === LIBXL_REC_END ? 0 : -1);
      if (end.type !== LIBXL_REC_END) throw new SaveFormatError("SAVE_RECORD", r.pos, "a record after the checksum: only END may follow it");
      if ((await src.read(1)).length !== 0) throw new SaveFormatError("SAVE_RECORD", r.pos, "bytes after the END record");
      result.bytes = r.pos;
      return result;
    } else if (type === LIBXL_REC_XENO_SHA256) {
      throw new SaveFormatError("SAVE_CHECKSUM", start, "the file's checksum is a SHA-256 record (0x58450002) of a Xeno build before 2026-12-07; this build writes and checks a CRC-32 (0x58450003): save the domain again with this build");
    } else if (type === LIBXL_REC_END) {
      throw new SaveFormatError("SAVE_CHECKSUM", start, "END without the checksum record: the file is incomplete or not written by Xeno");
    }
    // Optional records of other types were skipped by record().
  }
}

async function readLibxc(r: Reader, o: ReadOptions, config: Record<string, unknown>, configPages: number): Promise<ReadResult> {
  const ih = await r.take(24, "the libxc image header");
  if (ih.readBigUInt64BE(0) !== 0xffffffffffffffffn || ih.readUInt32BE(8) !== XENF_ID) throw new SaveFormatError("SAVE_MAGIC", r.pos - 24, "no libxc image header (marker, \"XENF\")");
  if (ih.readUInt32BE(12) !== XENF_VERSION) throw new SaveFormatError("SAVE_HEADER", r.pos - 12, `libxc stream version ${ih.readUInt32BE(12)}: Xeno reads version 3`);
  if (ih.readUInt16BE(16) !== 0) throw new SaveFormatError("SAVE_HEADER", r.pos - 8, "libxc stream options: Xeno reads little-endian streams");
  const dh = await r.take(16, "the libxc domain header");
  if (dh.readUInt32LE(0) !== DHDR_TYPE_XENO_ARM) {
    throw new SaveFormatError("SAVE_HEADER", r.pos - 16, `domain type 0x${dh.readUInt32LE(0).toString(16)} is not Xeno's Arm DomU (x86 images cannot run here)`);
  }
  if (dh.readUInt16LE(4) !== 12) throw new SaveFormatError("SAVE_HEADER", r.pos - 12, `page shift ${dh.readUInt16LE(4)}: Xeno's pages are 4 KiB (12)`);

  let ram: Uint8Array | null = null, state: unknown, ramPages = 0, vcpus = 0, dataPages = 0, zeroPages = 0;
  /**
   * Pages this stream wrote data into. The RAM view starts zeroed (ReadOptions.ram), so an all-zero page is
   * written only when an earlier record of the stream (a live migration's round) gave it data: zero-filling
   * every XALLOC page would touch — and make the host commit — memory the guest never used.
   */
  let written: Uint8Array | null = null;
  /** The number (1, 2, …) of the last PAGE_DATA record that named each page: a page twice in one is refused. */
  let seen: Uint32Array | null = null, seq = 0;
  let domainRead = false;
  /** A live stream's pages before the domain record: RAM comes from the config's size and vCPUs. */
  let earlyVcpus = -1;
  const limit = (t: number): number => t === LIBXC_REC_END ? 0 : t === LIBXC_REC_XENO_DOMAIN ? MAX_STATE_BYTES
    : t === LIBXC_REC_PAGE_DATA ? 8 + 8 * MAX_BATCH + PAGE_SIZE * MAX_BATCH : t === LIBXC_REC_XENO_SYNC ? 8 : -1;
  for (;;) {
    const start = r.pos;
    const hdr = await r.header("libxc", limit);
    const type = hdr.type;
    if (type === LIBXC_REC_PAGE_DATA) {
      if (ram === null) {
        // A live stream (pre-copy): pages come while the domain still runs, before its state. The config says
        // how much RAM and how many vCPUs; the domain record must agree when it comes.
        ramPages = configPages;
        earlyVcpus = typeof config.vcpus === "number" && Number.isInteger(config.vcpus) ? config.vcpus : -1;
        if (earlyVcpus < 1 || earlyVcpus > 8) throw new SaveFormatError("SAVE_CONFIG", start, `the config's vcpus ${String(config.vcpus)}: want 1..8`);
        try { ram = o.ram(config, ramPages, earlyVcpus); } catch (e) { throw new SaveFormatError("SAVE_MISMATCH", start, (e as Error).message); }
        if (ram.length < ramPages * PAGE_SIZE) throw new RangeError("ReadOptions.ram: view too small");
        written = new Uint8Array(ramPages);
      }
      seen ??= new Uint32Array(ramPages);
      const n = await readPageData(r, hdr.len, start, ram, ramPages, written!, seen, ++seq);
      dataPages += n.data; zeroPages += n.zero;
      o.progress?.({ pages: Math.min(dataPages + zeroPages, ramPages), totalPages: ramPages, bytes: r.pos });
      continue;
    }
    const body = await r.body(hdr);
    if (type === LIBXC_REC_XENO_SYNC) {
      if (body.length !== 8) throw new SaveFormatError("SAVE_RECORD", start + 4, `sync record of ${body.length} bytes: want 8`);
      o.sync?.(body.readUInt32LE(0));
      continue;
    }
    if (type === LIBXC_REC_END) {
      if (!domainRead) throw new SaveFormatError("SAVE_RECORD", start, "the libxc stream ended without the domain record");
      return { config, ramPages, vcpus, state, dataPages, zeroPages, bytes: 0 };
    }
    if (type === LIBXC_REC_XENO_DOMAIN) {
      if (domainRead) throw new SaveFormatError("SAVE_RECORD", start, "a second domain record");
      if (body.length < XENO_DOMAIN_FIXED) throw new SaveFormatError("SAVE_RECORD", start, `domain record of ${body.length} bytes < ${XENO_DOMAIN_FIXED}`);
      const v = body.readUInt32LE(0);
      if (v !== XENO_DOMAIN_VERSION) throw new SaveFormatError("SAVE_STATE", start + 8, `domain record version ${v}: this build reads ${XENO_DOMAIN_VERSION}`);
      ramPages = body.readUInt32LE(4);
      vcpus = body.readUInt32LE(8);
      if (ramPages !== configPages) {
        throw new SaveFormatError("SAVE_MISMATCH", start + 12, `the config describes ${configPages} RAM pages (${configPages >> 8} MiB) but the saved memory has ${ramPages}: the config does not match the memory`);
      }
      if (vcpus < 1 || vcpus > 8) throw new SaveFormatError("SAVE_STATE", start + 16, `${vcpus} vCPUs: want 1..8`);
      try { state = decodeState(new TextDecoder("utf-8", { fatal: true }).decode(body.subarray(XENO_DOMAIN_FIXED))); } catch (e) {
        throw new SaveFormatError("SAVE_STATE", start + 8 + XENO_DOMAIN_FIXED, e instanceof CodecError ? e.message : `domain state is not UTF-8 JSON: ${(e as Error).message}`);
      }
      if (ram === null) {
        try { ram = o.ram(config, ramPages, vcpus); } catch (e) { throw new SaveFormatError("SAVE_MISMATCH", start, (e as Error).message); }
        if (ram.length < ramPages * PAGE_SIZE) throw new RangeError("ReadOptions.ram: view too small");
        written = new Uint8Array(ramPages);
      } else if (vcpus !== earlyVcpus) {
        throw new SaveFormatError("SAVE_MISMATCH", start + 16, `the domain record has ${vcpus} vCPUs, the config its pages came with ${earlyVcpus}`);
      }
      domainRead = true;
      continue;
    }
    throw new Error(`libxc record type 0x${type.toString(16)} passed the limit but is not handled`); // not reached
  }
}

/**
 * A PAGE_DATA record's body (after its header, `len` bytes, at stream offset `start`) into `ram`: its count and
 * pfn entries read and checked whole first — every page inside the domain, each at most once, a known type, the
 * length exact — and only then its pages, straight into their places (Reader.takeInto: one readv from a file).
 * An all-zero (XALLOC) page is written only if an earlier record gave it data (`written`), the memory starting
 * zeroed; `seen` and `seq` find a page named twice in this record.
 */
async function readPageData(r: Reader, len: number, start: number, ram: Uint8Array, ramPages: number,
  written: Uint8Array, seen: Uint32Array, seq: number): Promise<{ data: number; zero: number }> {
  if (len < 8) throw new SaveFormatError("SAVE_RECORD", start, "PAGE_DATA shorter than its count");
  const head = await r.take(8, "a PAGE_DATA count");
  const count = head.readUInt32LE(0);
  if (count < 1 || count > MAX_BATCH) throw new SaveFormatError("SAVE_PAGE", start + 8, `PAGE_DATA count ${count}: want 1..${MAX_BATCH}`);
  if (head.readUInt32LE(4) !== 0) throw new SaveFormatError("SAVE_RECORD", start + 12, "PAGE_DATA reserved field not zero");
  if (len < 8 + 8 * count) throw new SaveFormatError("SAVE_RECORD", start, `PAGE_DATA of ${len} bytes cannot hold ${count} pfns`);
  const pfnBytes = await r.take(8 * count, "PAGE_DATA pfn entries");
  // The entries as 32-bit words (lo, hi per pfn) in a reused scratch array: a copy of ≤ 8 KiB instead of two
  // bounds-checked readUInt32LE calls per entry in each of the loops below (65,792 entries for a 256 MiB guest).
  // Little-endian words, as the file's: Xeno runs on little-endian hosts only (WebAssembly memory is too).
  new Uint8Array(PFN_WORDS.buffer, 0, 8 * count).set(pfnBytes);
  let pfns = PFN_WORDS;
  let withData = 0;
  for (let i = 0; i < count; i++) {
    const at = start + 16 + 8 * i;
    const lo = pfns[2 * i]!, hi = pfns[2 * i + 1]!;
    const t = hi >>> 28;
    if ((hi & 0x0fffffff) !== 0) throw new SaveFormatError("SAVE_PAGE", at, `pfn entry ${i}: page number 0x${(hi & 0x0fffffff).toString(16)}${lo.toString(16).padStart(8, "0")} is outside the domain's ${ramPages} pages`);
    if (lo >= ramPages) throw new SaveFormatError("SAVE_PAGE", at, `pfn entry ${i}: page number ${lo} is outside the domain's ${ramPages} pages`);
    if (t === PFINFO_NOTAB) withData++;
    else if (t !== PFINFO_XALLOC) throw new SaveFormatError("SAVE_PAGE", at, `pfn entry ${i}: page type 0x${t.toString(16)} (Xeno writes 0 = data and 0xE = all-zero)`);
    // Xeno's writer names a page once per record (libxc's batches too); twice would make the record's meaning
    // depend on the order its pages are placed in.
    if (seen[lo] === seq) throw new SaveFormatError("SAVE_PAGE", at, `pfn entry ${i}: page ${lo} is named twice in one PAGE_DATA record`);
    seen[lo] = seq;
  }
  if (len !== 8 + 8 * count + PAGE_SIZE * withData) {
    throw new SaveFormatError("SAVE_RECORD", start, `PAGE_DATA of ${len} bytes: ${count} pfns with ${withData} pages of data take ${8 + 8 * count + PAGE_SIZE * withData}`);
  }
  // A page an earlier record gave data is written again (a live stream's rounds): that record's pages, if
  // left for later (a file's, save-jobs.ts), are read first, so the last copy wins.
  for (let i = 0; i < count; i++) if (written[pfns[2 * i]!] !== 0) { pfns = PFN_WORDS.slice(0, 2 * count); await r.settleEarly(); break; }
  // The pages with data as views of their places in RAM, consecutive pages joined into one view.
  const views: Uint8Array[] = [];
  let runStart = -1, runEnd = -1, zero = 0;
  for (let i = 0; i < count; i++) {
    const pfn = pfns[2 * i]!, t = pfns[2 * i + 1]! >>> 28;
    if (t === PFINFO_NOTAB) {
      written[pfn] = 1;
      if (pfn === runEnd) { runEnd++; continue; }
      if (runStart >= 0) views.push(ram.subarray(runStart * PAGE_SIZE, runEnd * PAGE_SIZE));
      runStart = pfn; runEnd = pfn + 1;
    } else {
      // A page sent again (live rounds) may have become zero since.
      if (written[pfn] !== 0) { ram.fill(0, pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE); written[pfn] = 0; }
      zero++;
    }
  }
  if (runStart >= 0) views.push(ram.subarray(runStart * PAGE_SIZE, runEnd * PAGE_SIZE));
  if (withData > 0) await r.takeInto(views, PAGE_SIZE * withData, "PAGE_DATA pages");
  return { data: withData, zero };
}

/** readPageData's copy of a record's pfn entries (one reader at a time: used before any await, or copied first). */
const PFN_WORDS = new Uint32Array(2 * MAX_BATCH);

interface RecordHeader { level: string; type: number; len: number; start: number }

/** Reads exact byte counts and framed records, with the CRC-32 of everything it read (unless `hashing` is false). */
class Reader {
  pos = 0;
  /** The CRC-32 of the bytes read since the last deferred job (all of them when none was), and their count. */
  private crc = 0;
  private segLen = 0;
  /**
   * The stream before that, in pieces (flat: CRC-32, length, job): bytes read here (job -1, CRC known) and
   * deferred page jobs (ByteSource.defer: their CRC-32 comes from settle). Empty when nothing was deferred.
   */
  private readonly segs: number[] = [];
  constructor(private readonly src: ByteSource, private readonly hashing = true) {}

  /** Where the stream is now, for checksum(): every byte before this point. */
  mark(): { segs: number; crc: number; len: number } { return { segs: this.segs.length, crc: this.crc, len: this.segLen }; }

  /**
   * The CRC-32 of every byte before `m` (a mark()): the deferred jobs read first (settle), their CRC-32s and
   * the pieces read here combined in order (save-jobs.ts crc32Combine).
   */
  async checksum(m: { segs: number; crc: number; len: number }): Promise<number> {
    if (m.segs === 0) return m.crc >>> 0;
    const jobCrcs = await this.src.settle!(false);
    let sum = 0;
    for (let k = 0; k < m.segs; k += 3) {
      const job = this.segs[k + 2]!;
      sum = crc32Combine(sum, job < 0 ? this.segs[k]! : jobCrcs[job]!, this.segs[k + 1]!);
    }
    return crc32Combine(sum, m.crc, m.len);
  }

  /** Deferred page jobs are run now, here (a page named again must be written in stream order). */
  async settleEarly(): Promise<void> { if (this.segs.length > 0) await this.src.settle!(true); }

  /**
   * The next n bytes. When the source gives them in one piece (a file chunk holding them) they are not copied;
   * else they are gathered into a buffer of their own.
   */
  async take(n: number, what: string): Promise<Buffer> {
    let out: Buffer;
    const first = n === 0 ? new Uint8Array(0) : await this.src.read(n);
    if (first.length === n) out = Buffer.from(first.buffer, first.byteOffset, n);
    else {
      if (first.length === 0) throw new SaveFormatError("SAVE_TRUNCATED", this.pos, `the stream ends inside ${what} (0 of ${n} bytes): the file is truncated`);
      out = Buffer.allocUnsafe(n); // filled below, or the stream is refused
      out.set(first, 0);
      let got = first.length;
      while (got < n) {
        const b = await this.src.read(n - got);
        if (b.length === 0) throw new SaveFormatError("SAVE_TRUNCATED", this.pos + got, `the stream ends inside ${what} (${got} of ${n} bytes): the file is truncated`);
        out.set(b, got);
        got += b.length;
      }
    }
    if (this.hashing) { this.crc = crcOf(out, this.crc); this.segLen += n; }
    this.pos += n;
    return out;
  }

  /**
   * The next `total` bytes (the sum of the views' lengths) into `views`, in order: read by the source straight
   * into them when it can (readInto), else taken and copied.
   */
  async takeInto(views: readonly Uint8Array[], total: number, what: string): Promise<void> {
    const d = this.hashing ? this.src.defer?.(views, this.pos) ?? null : null;
    if (d !== null) {
      // Read later, on two threads (save-jobs.ts); what the source had buffered is in place already.
      for (const v of d.prefix) { this.crc = crcOf(v, this.crc); this.segLen += v.length; }
      if (d.job >= 0) {
        this.segs.push(this.crc, this.segLen, -1, 0, d.bytes, d.job);
        this.crc = 0; this.segLen = 0;
      }
      this.pos += total;
      return;
    }
    if (this.src.readInto === undefined) {
      const b = await this.take(total, what);
      let o = 0;
      for (const v of views) { v.set(b.subarray(o, o + v.length)); o += v.length; }
      return;
    }
    const got = await this.src.readInto(views);
    if (got < total) throw new SaveFormatError("SAVE_TRUNCATED", this.pos + got, `the stream ends inside ${what} (${got} of ${total} bytes): the file is truncated`);
    if (this.hashing) { for (const v of views) this.crc = crcOf(v, this.crc); this.segLen += total; }
    this.pos += total;
  }

  /** Passes the next n bytes to `sink` in the pieces the source gives (not hashed: copyStream's use). */
  async forward(n: number, sink: ByteSink, what: string): Promise<void> {
    let got = 0;
    while (got < n) {
      const b = await this.src.read(Math.min(n - got, FORWARD_PIECE));
      if (b.length === 0) throw new SaveFormatError("SAVE_TRUNCATED", this.pos + got, `the stream ends inside ${what} (${got} of ${n} bytes): the file is truncated`);
      await sink.write(b);
      got += b.length;
    }
    this.pos += n;
  }

  /**
   * The next record of a stream `level`; `limit(type)` is the longest body known for the type (-1: unknown).
   * Unknown optional records are skipped (the next one is returned); unknown mandatory ones refused.
   */
  async record(level: string, limit: (type: number) => number): Promise<{ type: number; body: Buffer }> {
    const h = await this.header(level, limit);
    return { type: h.type, body: await this.body(h) };
  }

  /**
   * The next known record's header (its body is read next: `body`, or by the caller): unknown optional
   * records are skipped, unknown mandatory ones refused, the length checked against `limit(type)`.
   */
  async header(level: string, limit: (type: number) => number): Promise<RecordHeader> {
    for (;;) {
      const start = this.pos;
      const hdr = await this.take(8, `a ${level} record header`);
      const type = hdr.readUInt32LE(0), len = hdr.readUInt32LE(4);
      const max = limit(type);
      if (max < 0 && (type & REC_OPTIONAL) === 0) {
        throw new SaveFormatError("SAVE_UNKNOWN_RECORD", start, `unknown mandatory ${level} record type 0x${type.toString(16)}: written by a newer or other tool, cannot be restored here`);
      }
      const bound = max < 0 ? MAX_OPTIONAL_BYTES : max;
      if (len > bound) throw new SaveFormatError("SAVE_RECORD", start + 4, `${level} record type 0x${type.toString(16)} of ${len} bytes > ${bound}`);
      const h = { level, type, len, start };
      if (max >= 0) return h;
      await this.body(h); // optional and unknown: skipped
    }
  }

  /** The body of the record whose header was just read (its padding checked to be zero). */
  async body(h: RecordHeader): Promise<Buffer> {
    const padded = (h.len + 7) & ~7;
    const all = await this.take(padded, `a ${h.level} record body (type 0x${h.type.toString(16)}, ${h.len} bytes)`);
    for (let i = h.len; i < padded; i++) if (all[i] !== 0) throw new SaveFormatError("SAVE_RECORD", h.start + 8 + i, "record padding is not zero");
    return all.subarray(0, h.len);
  }
}

/**
 * Copies one save stream from `src` to `sink` and stops after its last record (libxl's END), leaving whatever
 * follows in `src` unread: `xeno migrate-receive` reads the stream and then the sender's go-ahead from the
 * same pipe. It follows the framing only (headers, record lengths with the same bounds as readSave); the
 * hypervisor checks the contents when it restores. Returns the bytes copied.
 */
export async function copyStream(src: ByteSource, sink: ByteSink): Promise<number> {
  const r = new Reader(src, false); // framing only: the hypervisor checks the checksum
  const pass = async (n: number, what: string): Promise<Buffer> => { const b = await r.take(n, what); await sink.write(b); return b; };
  const h = await pass(XL_HEADER_BYTES, "the xl header");
  if (!XL_MAGIC.equals(h.subarray(0, 32))) throw new SaveFormatError("SAVE_MAGIC", 0, "not a Xen/Xeno saved domain: no xl magic");
  const optLen = h.readUInt32LE(44);
  if (optLen > MAX_CONFIG_BYTES + 4) throw new SaveFormatError("SAVE_HEADER", 44, `optional data length ${optLen} > ${MAX_CONFIG_BYTES + 4}`);
  await pass(optLen + 16, "the config and libxl header");
  let inLibxc = false;
  for (;;) {
    const hdr = await pass(8, "a record header");
    const type = hdr.readUInt32LE(0), len = hdr.readUInt32LE(4);
    const max = inLibxc ? 8 + 8 * MAX_BATCH + PAGE_SIZE * MAX_BATCH : MAX_STATE_BYTES;
    if (len > Math.max(max, MAX_STATE_BYTES)) throw new SaveFormatError("SAVE_RECORD", r.pos - 4, `record of ${len} bytes is longer than any Xeno writes`);
    // The body is passed on as it comes, not gathered first: a live migration's last records then reach the
    // hypervisor without waiting behind a whole 4 MiB record in this process (latency in the downtime).
    await r.forward((len + 7) & ~7, sink, "a record body");
    if (!inLibxc && type === LIBXL_REC_LIBXC_CONTEXT) { await pass(40, "the libxc headers"); inLibxc = true; }
    else if (inLibxc && type === LIBXC_REC_END) inLibxc = false;
    else if (!inLibxc && type === LIBXL_REC_END) return r.pos;
  }
}
