/**
 * Boot images (kernel Image, initramfs) shared by every domain that boots from the same file.
 *
 * Each distinct file (same path, size, mtime and inode) is read once into a SharedArrayBuffer; domains get a
 * Uint8Array view of it, which postMessage/workerData pass to the worker thread without copying (a
 * SharedArrayBuffer is shared, not cloned). Before this, every create read the ~26 MiB kernel in the main
 * thread and structured-cloned it into the worker: two transient 26 MiB copies per domain, and the worker's copy
 * often stayed resident after it was dropped (freed into that thread's malloc arena, not returned to the OS) —
 * measured in docs/benchmarks.md ("bench/density", memory overhead per domain).
 *
 * The bytes are read-only by convention: Machine only copies them into guest RAM. An entry lives while a domain
 * holds it (acquire/release by reference count); a file replaced on disk (new mtime/size/inode) gets a new
 * entry, the old one goes when its last domain does.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { describeKind, openRegular, readAll, type OpenRegularOptions } from "../common/host-file.js";

interface Entry { key: string; bytes: Uint8Array; refs: number }

/** A reference to a shared image; give it back with ImageCache.release when the domain is gone. */
export interface ImageRef { readonly bytes: Uint8Array; readonly key: string }

export class ImageCache {
  private readonly entries = new Map<string, Entry>();

  /**
   * As `acquire`, without blocking this thread: opened and read asynchronously; anything but a regular file,
   * or a file over `o.maxBytes`, is refused with a HostFileError (src/common/host-file.ts) saying what it is.
   */
  async acquireAsync(path: string, o: OpenRegularOptions): Promise<ImageRef> {
    const { fh, st } = await openRegular(path, o);
    try {
      const key = `${path}\0${st.dev}:${st.ino}\0${st.size}\0${st.mtimeMs}`;
      let e = this.entries.get(key);
      if (e === undefined) {
        const bytes = new Uint8Array(new SharedArrayBuffer(st.size));
        await readAll(fh, bytes, path, o.what);
        e = this.entries.get(key); // another create of the same file may have read it meanwhile
        if (e === undefined) {
          e = { key, bytes, refs: 0 };
          this.entries.set(key, e);
        }
      }
      e.refs++;
      return { bytes: e.bytes, key };
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  /**
   * The file's bytes in a SharedArrayBuffer (read now unless an unchanged copy is cached); throws fs errors.
   * Synchronous: opened with O_NONBLOCK and refused unless a regular file, so a FIFO cannot block the thread.
   */
  acquire(path: string): ImageRef {
    const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new Error(`${path} is ${describeKind(st)}; give a regular file`);
      // Keyed by what changes when the file is replaced or rewritten; stat of the open fd, so the bytes read
      // below belong to the file that was stat'ed.
      const key = `${path}\0${st.dev}:${st.ino}\0${st.size}\0${st.mtimeMs}`;
      let e = this.entries.get(key);
      if (e === undefined) {
        const bytes = new Uint8Array(new SharedArrayBuffer(st.size));
        let off = 0;
        while (off < st.size) {
          const n = readSync(fd, bytes, off, st.size - off, off);
          if (n === 0) throw new Error(`${path}: file shrank while being read (${off} of ${st.size} bytes)`);
          off += n;
        }
        e = { key, bytes, refs: 0 };
        this.entries.set(key, e);
      }
      e.refs++;
      return { bytes: e.bytes, key };
    } finally {
      closeSync(fd);
    }
  }

  release(ref: ImageRef): void {
    const e = this.entries.get(ref.key);
    if (e === undefined) return;
    if (--e.refs <= 0) this.entries.delete(ref.key);
  }

  /** Distinct images held and their total bytes (for tests and `dmesg`). */
  get size(): { images: number; bytes: number } {
    let bytes = 0;
    for (const e of this.entries.values()) bytes += e.bytes.byteLength;
    return { images: this.entries.size, bytes };
  }
}
