/**
 * Save files on disk (xl save / restore): the stream of save-format.ts written from a paused domain's memory,
 * or read into a new domain memory. What a file holds besides RAM is a SavedDomain: the domid it ran as, its
 * DomainSnapshot (machine.ts) and its part of the XenStore (save-store.ts).
 */
import { rm, type FileHandle } from "node:fs/promises";
import { LazyRam, type LazyRamMessage } from "./lazy-ram.js";
import { openRegular } from "../common/host-file.js";
import type { DomainSnapshot } from "./machine.js";
import type { DomainSpec } from "./protocol.js";
import { fileSource, readSave, writeSave, PAGE_SIZE, type ByteSource, type PageHelper, type WriteProgress } from "./save-format.js";
import { checkSavedStore, type SavedStore } from "./save-store.js";
import { boardTailBytes } from "../machine/board.js";

export interface SavedDomain {
  version: 1;
  domid: number;
  snapshot: DomainSnapshot;
  store: SavedStore;
  /**
   * A live migration's: the wall time (ms since the epoch) the source asked its domain to pause, so the
   * receiver can report the downtime to its first guest instruction (meaningful when both hosts' clocks agree:
   * the same machine, or synchronised ones). Absent in save files.
   */
  pausedAt?: number;
  /**
   * The guest suspended itself (Xen's suspend protocol: `xeno save --suspend`) from vCPU `vcpu`, whose
   * SHUTDOWN_suspend returns 0 when restored: it resumes as in a new domain, reconnecting its front-ends.
   * Absent: a transparent save (the guest does not know it was saved).
   */
  suspended?: { vcpu: number };
}


/**
 * Writes `saved` with RAM from `memory` to `path` (replaced); a failed write removes the partial file. The
 * path is opened as the hypervisor opens disks (src/common/host-file.ts: without blocking, created 0600 if
 * missing): a FIFO, directory or device is refused with a HostFileError before anything is written to it or
 * removed, and only a regular file is truncated.
 */
export async function writeSaveFile(path: string, spec: DomainSpec, saved: SavedDomain, memory: WebAssembly.Memory,
  progress?: (p: WriteProgress) => void): Promise<{ bytes: number; zeroPages: number; dataMap: Uint8Array }> {
  // The board's whole RAM (for a Xen DomU the guest's memory and the Xen area above it: grant frames, rings).
  // After RAM: the vCPU state and TLB areas (boardTailBytes); a restore allocates RAM + that, Board checks it.
  const ramPages = (memory.buffer.byteLength - boardTailBytes(spec.vcpus)) / PAGE_SIZE;
  const ram = new Uint8Array(memory.buffer, 0, ramPages * PAGE_SIZE);
  const { fh } = await openRegular(path, { what: "save file", write: true, create: true });
  try {
    await fh.truncate(0);
    let pending: Buffer[] = [], n = 0;
    // Gather small records into ~4 MiB writes.
    const flush = async (): Promise<void> => { if (n === 0) return; const b = Buffer.concat(pending, n); pending = []; n = 0; await fh.write(b); };
    const r = await writeSave({ write: async (b) => { pending.push(Buffer.from(b)); n += b.length; if (n >= 4 << 20) await flush(); } },
      { config: { ...spec } as unknown as Record<string, unknown>, ramPages, vcpus: spec.vcpus, state: saved }, ram, progress);
    await flush();
    await fh.sync();
    await fh.close();
    return r;
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(path, { force: true }).catch(() => undefined);
    throw e;
  }
}

/**
 * Where a reader gets the domain memory of `bytes` (RAM and the board's tail): an all-zero shared memory of
 * exactly that size (the spare of save-spare-memory.ts), or null for a new one.
 */
export type MemoryFor = (bytes: number) => WebAssembly.Memory | null;

export interface ReadSaveFile {
  config: Record<string, unknown>;
  saved: SavedDomain;
  memory: WebAssembly.Memory;
  dataPages: number;
  zeroPages: number;
  bytes: number;
  /**
   * A lazy read (readSaveFile `lazy`): the file was checked whole, but these pages were left out of `memory`
   * (lazy-ram.ts); the file stays open (`fh`) until they are all loaded, and whoever ends the load closes it.
   * Absent: every page is in `memory`.
   */
  lazy?: { fh: FileHandle; message: LazyRamMessage };
}

/**
 * Reads a save file into a new domain memory. `configPages` checks the config (throws to refuse it) and
 * returns its RAM pages. `helper`: a thread that reads part of the pages beside this one (save-jobs.ts). Throws HostFileError for a path that is missing, unreadable or not a regular file
 * (opened without blocking: src/common/host-file.ts), SaveFormatError for a bad stream, Error for a state
 * that does not fit.
 */
export async function readSaveFile(path: string, configPages: (cfg: Record<string, unknown>) => number,
  progress?: (p: WriteProgress) => void, helper: PageHelper | null = null, memoryFor?: MemoryFor, lazy: boolean | (() => boolean) = false): Promise<ReadSaveFile> {
  const { fh } = await openRegular(path, { what: "save file" });
  let keep = false;
  try {
    // The pages are read after the records are checked, by this thread and `helper` (save-jobs.ts); the
    // descriptor is closed below only after both ended (the reader waits for the helper's part). Lazy: the
    // pages are read and checked but not written (save-jobs.ts checkJob); the descriptor stays open for the
    // loader when any page was left out.
    const src = fileSource(fh, helper, lazy);
    const r = await readSaveStream(src, configPages, progress, memoryFor);
    const t = src.lazyTables();
    if (t === null) return r;
    const message = LazyRam.message(fh.fd, r.memory.buffer as unknown as SharedArrayBuffer, t);
    if (new LazyRam(message).total === 0) return r; // nothing was left out
    keep = true;
    return { ...r, lazy: { fh, message } };
  } finally {
    if (!keep) await fh.close();
  }
}

/** readSaveFile's reading and checks, from any byte source (a migration's stream socket: save-live.ts). */
export async function readSaveStream(src: ByteSource, configPages: (cfg: Record<string, unknown>) => number,
  progress?: (p: WriteProgress) => void, memoryFor?: MemoryFor, sync?: (seq: number) => void): Promise<ReadSaveFile> {
  let memory: WebAssembly.Memory | null = null;
  {
    const r = await readSave(src, {
      configPages,
      ram: (cfg, pages, vcpus) => {
        if (cfg.vcpus !== vcpus) throw new Error(`the config has ${String(cfg.vcpus)} vCPUs, the saved state ${vcpus}: the config does not match the state`);
        const bytes = pages * PAGE_SIZE + boardTailBytes(vcpus);
        memory = memoryFor?.(bytes) ?? new WebAssembly.Memory({ initial: bytes / 65536, maximum: bytes / 65536, shared: true });
        return new Uint8Array(memory.buffer, 0, pages * PAGE_SIZE);
      },
      progress,
      ...(sync !== undefined ? { sync } : {}),
    });
    const s = r.state as Partial<SavedDomain> | null;
    if (s === null || typeof s !== "object" || s.version !== 1) throw new Error("the saved domain record is not version 1");
    if (typeof s.domid !== "number" || !Number.isInteger(s.domid) || s.domid < 1 || s.domid >= 0x7ff0) throw new Error(`saved domid ${String(s.domid)}: want 1..32751`);
    if (s.snapshot === null || typeof s.snapshot !== "object") throw new Error("the saved domain has no machine state");
    const uuid = r.config.uuid;
    if (typeof uuid !== "string") throw new Error("the saved config has no uuid");
    checkSavedStore(s.store, s.domid, uuid);
    if (s.suspended !== undefined) {
      const v = (s.suspended as { vcpu?: unknown } | null)?.vcpu;
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= r.vcpus) throw new Error(`the saved suspend names vCPU ${String(v)}: want 0..${r.vcpus - 1}`);
    }
    return { config: r.config, saved: s as SavedDomain, memory: memory!, dataPages: r.dataPages, zeroPages: r.zeroPages, bytes: r.bytes };
  }
}
