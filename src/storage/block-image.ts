/**
 * A disk image as a back-end or an emulated disk sees it: `bytes` of virtual disk, read and written at byte
 * positions straight from or into the caller's buffer (for blkback, the guest's granted pages), discarded
 * (the range reads as zeros afterwards) and flushed (what was written is on stable storage). Two formats:
 * raw (the file is the disk) and qcow2 (qcow2.ts: clusters mapped through L1/L2 tables, allocated on write,
 * backing files). Everything is synchronous (fs.readSync/writeSync): callers run it on a thread of their own
 * (blkback's I/O thread) or accept the wait.
 *
 * Errors: StorageError with a stable `code`, the file, and what to do. A broken or hostile image is refused at
 * open or fails the one request that meets the damage (STORAGE_CORRUPT), never reads or writes host memory
 * outside the caller's buffer range.
 */
import { closeSync, fdatasyncSync, fstatSync, openSync, readSync, writeSync } from "node:fs";

export type StorageErrorCode =
  | "STORAGE_OPEN"         // the file cannot be opened (missing, permissions)
  | "STORAGE_FORMAT"       // not the format asked for, or a format this code does not read
  | "STORAGE_UNSUPPORTED"  // a valid image using a feature refused here (encryption, external data file, …)
  | "STORAGE_CORRUPT"      // metadata that points outside the file, overlaps other metadata, or is inconsistent
  | "STORAGE_RANGE"        // a request outside the virtual disk
  | "STORAGE_READ_ONLY"    // a write to an image opened read-only
  | "STORAGE_IO";          // the host's read/write failed or came up short

export class StorageError extends Error {
  constructor(readonly code: StorageErrorCode, readonly path: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StorageError";
  }
}

export type ImageFormat = "raw" | "qcow2";

export interface BlockImage {
  readonly format: ImageFormat;
  readonly path: string;
  /** Virtual size in bytes. */
  readonly bytes: number;
  readonly readOnly: boolean;
  /** Reads [pos, pos+len) of the virtual disk into buf[off, off+len). Throws StorageError. */
  read(buf: Uint8Array, off: number, len: number, pos: number): void;
  /** Writes buf[off, off+len) at [pos, pos+len) of the virtual disk. Throws StorageError. */
  write(buf: Uint8Array, off: number, len: number, pos: number): void;
  /** [pos, pos+len) reads as zeros afterwards (and its space may be given back). */
  discard(pos: number, len: number): void;
  /** Data and metadata written so far are on stable storage (fdatasync). */
  flush(): void;
  close(): void;
}

/** The first bytes of a qcow2 file: "QFI\xfb" (QEMU docs/interop/qcow2.txt, "magic"). */
export const QCOW2_MAGIC = 0x514649fb;

/** pread until `len` bytes are in buf[off..]; returns how many were read (fewer at end of file). */
export function preadUpTo(fd: number, buf: Uint8Array, off: number, len: number, pos: number): number {
  let done = 0;
  while (done < len) {
    const n = readSync(fd, buf, off + done, len - done, pos + done);
    if (n <= 0) break;
    done += n;
  }
  return done;
}

/** pwrite until buf[off, off+len) is at `pos`. */
export function pwriteAll(fd: number, buf: Uint8Array, off: number, len: number, pos: number): void {
  let done = 0;
  while (done < len) {
    const n = writeSync(fd, buf, off + done, len - done, pos + done);
    if (n <= 0) throw new Error(`write of ${len - done} bytes at ${pos + done} made no progress`);
    done += n;
  }
}

/** Which format `fd` holds, by its magic (a file shorter than 4 bytes, or anything else, is raw). */
export function probeFormat(fd: number): ImageFormat {
  const b = new Uint8Array(4);
  if (preadUpTo(fd, b, 0, 4, 0) < 4) return "raw";
  return new DataView(b.buffer).getUint32(0) === QCOW2_MAGIC ? "qcow2" : "raw";
}

/** Opens `path` for reading (and writing unless readOnly); StorageError STORAGE_OPEN saying why not. */
export function openFile(path: string, readOnly: boolean, what: string): number {
  try { return openSync(path, readOnly ? "r" : "r+"); }
  catch (e) { throw new StorageError("STORAGE_OPEN", path, `${what} ${path}: ${(e as Error).message}`, { cause: e }); }
}

/**
 * A raw image (the file is the disk): used as a qcow2 backing file and where a BlockImage over a raw file is
 * wanted. Reads past the end of the file (a file shorter than `bytes`) give zeros.
 */
export class RawImage implements BlockImage {
  readonly format = "raw";
  readonly bytes: number;
  private fd: number;
  private zeros: Uint8Array | null = null;

  /** Over an open descriptor (owned from now on: close() closes it). */
  constructor(fd: number, readonly path: string, readonly readOnly: boolean) {
    this.fd = fd;
    this.bytes = fstatSync(fd).size;
  }

  static open(path: string, readOnly: boolean): RawImage {
    return new RawImage(openFile(path, readOnly, "raw image"), path, readOnly);
  }

  private check(len: number, pos: number): void {
    if (!(Number.isInteger(pos) && Number.isInteger(len) && pos >= 0 && len >= 0 && pos + len <= this.bytes)) {
      throw new StorageError("STORAGE_RANGE", this.path, `${this.path}: bytes ${pos}+${len} are outside the ${this.bytes}-byte disk`);
    }
  }

  read(buf: Uint8Array, off: number, len: number, pos: number): void {
    this.check(len, pos);
    let n: number;
    try { n = preadUpTo(this.fd, buf, off, len, pos); }
    catch (e) { throw new StorageError("STORAGE_IO", this.path, `${this.path}: read of ${len} bytes at ${pos}: ${(e as Error).message}`, { cause: e }); }
    if (n < len) buf.fill(0, off + n, off + len);
  }

  write(buf: Uint8Array, off: number, len: number, pos: number): void {
    if (this.readOnly) throw new StorageError("STORAGE_READ_ONLY", this.path, `${this.path} is open read-only`);
    this.check(len, pos);
    try { pwriteAll(this.fd, buf, off, len, pos); }
    catch (e) { throw new StorageError("STORAGE_IO", this.path, `${this.path}: write of ${len} bytes at ${pos}: ${(e as Error).message}`, { cause: e }); }
  }

  discard(pos: number, len: number): void {
    this.check(len, pos);
    const z = this.zeros ??= new Uint8Array(64 * 1024);
    for (let done = 0; done < len;) {
      const n = Math.min(z.length, len - done);
      this.write(z, 0, n, pos + done);
      done += n;
    }
  }

  flush(): void {
    if (!this.readOnly) fdatasyncSync(this.fd);
  }

  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    closeSync(fd);
  }
}
