/**
 * A disk image file as blkback's "file" back-end sees it (libxl's `type=file` with a loop device in a real
 * dom0): a regular file whose size is a whole number of 512-byte sectors, opened once at attach time, read and
 * written synchronously at byte positions (pread/pwrite through fs.readSync/writeSync, straight from or into
 * the caller's buffer — for blkback, the guest's granted pages), flushed with fdatasync. The same operations
 * are plain functions of a descriptor (preadFully, pwriteFully, zeroRange) for blkback's I/O thread, which
 * takes the descriptor over (release()).
 *
 * Discard: Node has no fallocate(PUNCH_HOLE), so a discarded range is overwritten with zeros — allowed, since
 * blkif.h leaves discarded contents undefined (we advertise no discard-zeroes-data), and what a guest that
 * discards for secrecy wants anyway. It costs a write of the whole range, except for a range that ends at the
 * end of the image, which is truncated away and re-extended as a hole (see zero()).
 *
 * A qcow2 image (xl's `format=qcow2`, served by Xen's qdisk back-end there) goes through src/storage/qcow2.ts:
 * the same operations at virtual-disk positions, mapped to clusters of the file; a discard there gives whole
 * clusters back to the image. The I/O thread opens its own Qcow2Image over the descriptor it is handed
 * (openThreadImage): metadata is written through, so each thread that serves the disk starts from the file.
 */
import { closeSync, fdatasyncSync, fstatSync, ftruncateSync, openSync, statSync } from "node:fs";
import { SECTOR_SIZE } from "./blkif.js";
import { StorageError, preadUpTo, pwriteAll } from "../../storage/block-image.js";
import { Qcow2Image } from "../../storage/qcow2.js";

/** Image formats blkback serves. */
export type DiskFormat = "raw" | "qcow2";

export type BlkErrorCode =
  | "EBLK_NO_IMAGE"     // the image path does not exist (or cannot be stat'ed)
  | "EBLK_NOT_FILE"     // the path is a directory or not a regular file
  | "EBLK_BAD_SIZE"     // the size is 0 or not a multiple of 512
  | "EBLK_OPEN"         // open(2) failed (permissions, …)
  | "EBLK_FORMAT"       // a qcow2 image refused (damaged, or a feature not supported: src/storage/qcow2.ts)
  | "EBLK_CONFIG";      // a bad devid / vdev

export class BlkError extends Error {
  constructor(readonly code: BlkErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BlkError";
  }
}

/** Zeros written per discard chunk (one reused buffer). */
export const ZERO_CHUNK = 64 * 1024;

/**
 * The artificial delay for tests and measurements, to play a slow disk (NFS, a throttled device) without one:
 * $XENO_BLK_TEST_DELAY_MS = "MS" (every image) or "MS:TEXT" (images whose path contains TEXT) makes every
 * operation on image `path` sleep MS milliseconds first (at most 60 s). 0 when unset, malformed or not this image.
 */
export function testDelayMs(path: string): number {
  const env = process.env.XENO_BLK_TEST_DELAY_MS;
  if (env === undefined || env === "") return 0;
  const colon = env.indexOf(":");
  if (colon >= 0 && !path.includes(env.slice(colon + 1))) return 0;
  const v = Number(colon >= 0 ? env.slice(0, colon) : env);
  return Number.isFinite(v) && v > 0 ? Math.min(v, 60_000) : 0;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** Blocks this thread for `ms` (nothing ever notifies `sleeper`). */
export function testDelay(ms: number): void {
  if (ms > 0) Atomics.wait(sleeper, 0, 0, ms);
}

/**
 * pread(2) until `len` bytes are in buf[off, off+len) from file position `pos`; false on a short read (end of
 * file: the file shrank under us). Throws on I/O errors.
 */
export function preadFully(fd: number, buf: Uint8Array, off: number, len: number, pos: number): boolean {
  return preadUpTo(fd, buf, off, len, pos) === len;
}

/** pwrite(2) until buf[off, off+len) is at file position `pos`. Throws on I/O errors. */
export const pwriteFully = pwriteAll;

/**
 * Zeros [pos, pos+len) of a file of `bytes` bytes. A range that runs to the end of the image is cut off and
 * the file extended back to its size (ftruncate twice): the tail becomes a hole, so a whole-device discard
 * (mkfs) costs nothing and leaves the file sparse. Anything else is overwritten from `zeros` (all zero bytes)
 * in pieces of its length.
 */
export function zeroRange(fd: number, bytes: number, pos: number, len: number, zeros: Uint8Array): void {
  if (len > 0 && pos + len === bytes) {
    ftruncateSync(fd, pos);
    ftruncateSync(fd, bytes);
    return;
  }
  for (let done = 0; done < len;) {
    const n = Math.min(len - done, zeros.length);
    pwriteFully(fd, zeros, 0, n, pos + done);
    done += n;
  }
}

export class DiskImage {
  readonly bytes: number;
  readonly sectors: number;
  private fd: number;
  private zeros: Uint8Array | null = null;
  /** The qcow2 mapping (null: raw, the file is the disk). */
  private readonly qcow2: Qcow2Image | null = null;
  /** Test only ($XENO_BLK_TEST_DELAY_MS at open): every operation sleeps this long first (a slow disk). */
  readonly delayMs: number;

  /** Opens `path` (read-only when `readOnly`); throws BlkError with a clear message when it cannot serve. */
  constructor(readonly path: string, readonly readOnly: boolean, readonly format: DiskFormat = "raw") {
    let st;
    try { st = statSync(path); }
    catch (e) { throw new BlkError("EBLK_NO_IMAGE", `disk image ${path}: ${(e as Error).message}`, { cause: e }); }
    if (st.isDirectory()) throw new BlkError("EBLK_NOT_FILE", `disk image ${path} is a directory`);
    if (!st.isFile()) throw new BlkError("EBLK_NOT_FILE", `disk image ${path} is not a regular file`);
    try { this.fd = openSync(path, readOnly ? "r" : "r+"); }
    catch (e) { throw new BlkError("EBLK_OPEN", `disk image ${path}: ${(e as Error).message}`, { cause: e }); }
    if (format === "qcow2") {
      try { this.qcow2 = Qcow2Image.fromFd(this.fd, path, readOnly); }
      catch (e) {
        this.fd = -1; // closed by fromFd
        throw new BlkError(e instanceof StorageError && e.code === "STORAGE_OPEN" ? "EBLK_OPEN" : "EBLK_FORMAT", (e as Error).message, { cause: e });
      }
    }
    // The size of what we opened (the path may have been replaced since the stat): for qcow2, the virtual disk's.
    const size = this.qcow2 !== null ? this.qcow2.bytes : fstatSync(this.fd).size;
    if (size === 0 || size % SECTOR_SIZE !== 0) {
      if (this.qcow2 !== null) this.qcow2.close();
      else closeSync(this.fd);
      this.fd = -1;
      throw new BlkError("EBLK_BAD_SIZE", `disk image ${path}: size ${size} is not a positive multiple of ${SECTOR_SIZE} bytes`);
    }
    this.bytes = size;
    this.sectors = size / SECTOR_SIZE;
    this.delayMs = testDelayMs(path);
  }

  get open(): boolean { return this.fd >= 0; }
  /** The open file descriptor (-1 when closed or released), for handing over with release(). */
  get descriptor(): number { return this.fd; }

  /**
   * Reads exactly `len` bytes at file position `pos` into buf[off, off+len); false on a short read (the file
   * shrank under us). Throws on I/O errors.
   */
  read(buf: Uint8Array, off: number, len: number, pos: number): boolean {
    testDelay(this.delayMs);
    if (this.qcow2 !== null) { this.qcow2.read(buf, off, len, pos); return true; }
    return preadFully(this.fd, buf, off, len, pos);
  }

  /** Writes buf[off, off+len) at file position `pos`. Throws on I/O errors (ENOSPC, EIO, EBADF when read-only). */
  write(buf: Uint8Array, off: number, len: number, pos: number): void {
    testDelay(this.delayMs);
    if (this.qcow2 !== null) this.qcow2.write(buf, off, len, pos);
    else pwriteFully(this.fd, buf, off, len, pos);
  }

  /** Zeros [pos, pos+len) (see zeroRange). */
  zero(pos: number, len: number): void {
    testDelay(this.delayMs);
    if (this.qcow2 !== null) { this.qcow2.discard(pos, len); return; }
    zeroRange(this.fd, this.bytes, pos, len, this.zeros ??= new Uint8Array(ZERO_CHUNK));
  }

  /** fdatasync: the data written so far is on stable storage. */
  flush(): void {
    testDelay(this.delayMs);
    if (this.qcow2 !== null) this.qcow2.flush();
    else fdatasyncSync(this.fd);
  }

  /**
   * Hands the open file descriptor to another owner (blkback's I/O thread, which closes it when it ends): this
   * object no longer reads, writes or closes it. Returns it (-1 when closed already).
   */
  release(): number {
    const fd = this.fd;
    this.fd = -1;
    this.qcow2?.release(); // its backing files: the new owner opens its own
    return fd;
  }

  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    if (this.qcow2 !== null) this.qcow2.close();
    else closeSync(fd);
  }
}

/**
 * For blkback's I/O thread: the qcow2 image over descriptor `fd` (which stays the caller's on failure: the
 * thread closes it when it ends), or null for a raw disk.
 */
export function openThreadImage(fd: number, path: string, readOnly: boolean, format: DiskFormat): Qcow2Image | null {
  return format === "qcow2" ? Qcow2Image.fromFd(fd, path, readOnly, { keepFdOnError: true }) : null;
}
