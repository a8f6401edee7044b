/**
 * A disk image file as blkback's "file" back-end sees it (libxl's `type=file` with a loop device in a real
 * dom0): a regular file whose size is a whole number of 512-byte sectors, opened once at attach time, read and
 * written synchronously at byte positions (pread/pwrite through fs.readSync/writeSync, straight from or into
 * the caller's buffer — for blkback, the guest's granted pages), flushed with fdatasync.
 *
 * Discard: Node has no fallocate(PUNCH_HOLE), so a discarded range is overwritten with zeros — allowed, since
 * blkif.h leaves discarded contents undefined (we advertise no discard-zeroes-data), and what a guest that
 * discards for secrecy wants anyway. It costs a write of the whole range, except for a range that ends at the
 * end of the image, which is truncated away and re-extended as a hole (see zero()).
 */
import { closeSync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readSync, statSync, writeSync } from "node:fs";
import { SECTOR_SIZE } from "./blkif.js";

export type BlkErrorCode =
  | "EBLK_NO_IMAGE"     // the image path does not exist (or cannot be stat'ed)
  | "EBLK_NOT_FILE"     // the path is a directory or not a regular file
  | "EBLK_BAD_SIZE"     // the size is 0 or not a multiple of 512
  | "EBLK_OPEN"         // open(2) failed (permissions, …)
  | "EBLK_CONFIG";      // a bad devid / vdev

export class BlkError extends Error {
  constructor(readonly code: BlkErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BlkError";
  }
}

/** Zeros written per discard chunk (one reused buffer). */
const ZERO_CHUNK = 64 * 1024;

export class DiskImage {
  readonly bytes: number;
  readonly sectors: number;
  private fd: number;
  private zeros: Uint8Array | null = null;

  /** Opens `path` (read-only when `readOnly`); throws BlkError with a clear message when it cannot serve. */
  constructor(readonly path: string, readonly readOnly: boolean) {
    let st;
    try { st = statSync(path); }
    catch (e) { throw new BlkError("EBLK_NO_IMAGE", `disk image ${path}: ${(e as Error).message}`, { cause: e }); }
    if (st.isDirectory()) throw new BlkError("EBLK_NOT_FILE", `disk image ${path} is a directory`);
    if (!st.isFile()) throw new BlkError("EBLK_NOT_FILE", `disk image ${path} is not a regular file`);
    try { this.fd = openSync(path, readOnly ? "r" : "r+"); }
    catch (e) { throw new BlkError("EBLK_OPEN", `disk image ${path}: ${(e as Error).message}`, { cause: e }); }
    // The size of what we opened (the path may have been replaced since the stat).
    const size = fstatSync(this.fd).size;
    if (size === 0 || size % SECTOR_SIZE !== 0) {
      closeSync(this.fd);
      this.fd = -1;
      throw new BlkError("EBLK_BAD_SIZE", `disk image ${path}: size ${size} is not a positive multiple of ${SECTOR_SIZE} bytes`);
    }
    this.bytes = size;
    this.sectors = size / SECTOR_SIZE;
  }

  get open(): boolean { return this.fd >= 0; }

  /**
   * Reads exactly `len` bytes at file position `pos` into buf[off, off+len); false on a short read (the file
   * shrank under us). Throws on I/O errors.
   */
  read(buf: Uint8Array, off: number, len: number, pos: number): boolean {
    let done = 0;
    while (done < len) {
      const n = readSync(this.fd, buf, off + done, len - done, pos + done);
      if (n <= 0) return false;
      done += n;
    }
    return true;
  }

  /** Writes buf[off, off+len) at file position `pos`. Throws on I/O errors (ENOSPC, EIO, EBADF when read-only). */
  write(buf: Uint8Array, off: number, len: number, pos: number): void {
    let done = 0;
    while (done < len) {
      const n = writeSync(this.fd, buf, off + done, len - done, pos + done);
      if (n <= 0) throw new Error(`write of ${len - done} bytes at ${pos + done} made no progress`);
      done += n;
    }
  }

  /**
   * Zeros [pos, pos+len). A range that runs to the end of the image is cut off and the file extended back to
   * its size (ftruncate twice): the tail becomes a hole, so a whole-device discard (mkfs) costs nothing and
   * leaves the file sparse. Anything else is overwritten with zeros in ZERO_CHUNK pieces.
   */
  zero(pos: number, len: number): void {
    if (len > 0 && pos + len === this.bytes) {
      ftruncateSync(this.fd, pos);
      ftruncateSync(this.fd, this.bytes);
      return;
    }
    const z = this.zeros ??= new Uint8Array(ZERO_CHUNK);
    for (let done = 0; done < len;) {
      const n = Math.min(len - done, z.length);
      this.write(z, 0, n, pos + done);
      done += n;
    }
  }

  /** fdatasync: the data written so far is on stable storage. */
  flush(): void {
    fdatasyncSync(this.fd);
  }

  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    closeSync(fd);
  }
}
